/* daemon/pipeline_ring.c: a device's prediction ring (GET /v1/devices/{id}/predictions): per
 * scored reading its timestamp, score, state and predicted values, the newest `cap` of them.
 *
 * Layout. The newest entries are kept exactly, in the tail: a circular array of up to
 * tail_cap = min(cap, PIPE_RING_TAIL) entries, grown on demand (a device that never scores costs
 * nothing). When the ring holds more than the tail can, the tail's oldest PIPE_RING_BLOCK entries
 * are sealed into a compact block each time it is full; sealed blocks are kept oldest first in a
 * circular array of pointers, and the oldest block is dropped once the newer ones hold `cap`
 * entries without it. Only the newest `cap` entries are answered (`skip` hides the surplus at
 * the start of the oldest block), so a ring answers exactly what a plain ring of `cap` entries
 * would, timestamps, scores and states bit for bit. A tail entry's fields are packed together
 * (ent()), so a push touches one or two cache lines.
 *
 * A sealed block (a byte string; fields unaligned, read and written with memcpy):
 *   header  int64 ts0, uint32 dt, uint16 n, uint8 ts_mode, uint8 unused
 *   ts      RING_TS_REGULAR: nothing (entry k is ts0 + k * dt); RING_TS_DELTA: uint32 [n - 1]
 *           gaps to the previous entry; RING_TS_RAW: int64 [n]
 *   states  2 bits each, (n + 3) / 4 bytes
 *   scores  float [n], exact
 *   per channel: uint8 width, float lo, float hi, then width 0: nothing (every value equals
 *           lo), 16: uint16 q [n], the value lo + q * (hi - lo) / 65535 rounded to float,
 *           32: float [n] exact (a non-finite value in the block)
 * So a sealed predicted value is within (hi - lo) / 131070 of the prediction, plus float
 * rounding, where lo and hi are that channel's smallest and largest prediction among the
 * block's PIPE_RING_BLOCK readings: about 1/131,000 of the channel's local variation, not of its
 * magnitude (a value of 1500 varying by 30 over the block is kept to 0.0002). An 8-channel
 * entry takes about 21.5 bytes sealed against 45 exact.
 *
 * Threading: none of its own; the caller serialises access (the device's mutex). */
#include "err.h"
#include "pipeline_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { RING_TS_REGULAR = 0, RING_TS_DELTA = 1, RING_TS_RAW = 2 };

#define RING_HDR 16 /* ts0 8, dt 4, n 2, ts_mode 1, unused 1 */

/* Bytes of one exact tail entry with nch channels. */
static size_t entry_bytes(int nch)
{
    return sizeof(int64_t) + sizeof(float) + 1 + (size_t)nch * sizeof(float);
}

void pipeline__ring_init(struct pred_ring *r, size_t cap, int nch)
{
    memset(r, 0, sizeof *r);
    r->cap = cap;
    r->nch = nch;
    r->tail_cap = cap < PIPE_RING_TAIL ? cap : PIPE_RING_TAIL;
}

void pipeline__ring_deinit(struct pred_ring *r)
{
    if (!r)
        return;
    free(r->tail);
    for (size_t i = 0; i < r->blk_len; i++)
        free(r->blk[(r->blk_head + i) % r->blk_room]);
    free(r->blk);
    memset(r, 0, sizeof *r);
}

size_t pipeline__ring_len(const struct pred_ring *r)
{
    return r->sealed + r->tail_len - r->skip;
}

/* A tail entry, packed (entry_bytes(nch) apart, fields unaligned, read and written with
 * memcpy): int64 ts, float score, uint8 state, float pred [nch]. One entry's fields sit
 * together, so a push writes one or two cache lines of the device's tail, not one line in
 * each of four arrays (at 100k devices every one of them a miss). */
#define ENT_TS    0
#define ENT_SCORE 8
#define ENT_STATE 12
#define ENT_PRED  13

static unsigned char *ent(void *tail, size_t slot, int nch)
{
    return (unsigned char *)tail + slot * entry_bytes(nch);
}

static int64_t ent_ts(const unsigned char *e)
{
    int64_t v;
    memcpy(&v, e + ENT_TS, sizeof v);
    return v;
}

static float ent_score(const unsigned char *e)
{
    float v;
    memcpy(&v, e + ENT_SCORE, sizeof v);
    return v;
}

static float ent_pred(const unsigned char *e, int c)
{
    float v;
    memcpy(&v, e + ENT_PRED + (size_t)c * sizeof v, sizeof v);
    return v;
}

/* Makes room for one more tail entry while the tail has not wrapped (it grows 16, 32, ... up to
 * tail_cap). Returns 0 or ERR_NOMEM (the tail is then unchanged). */
static int tail_grow(struct pred_ring *r)
{
    if (r->tail_len < r->tail_room || r->tail_room == r->tail_cap)
        return 0;
    size_t room = r->tail_room ? 2 * r->tail_room : 16;
    if (room > r->tail_cap)
        room = r->tail_cap;
    void *mem = malloc(room * entry_bytes(r->nch));
    if (!mem)
        return ERR_NOMEM;
    /* Not wrapped yet: the entries are 0..tail_len - 1 in place. */
    size_t n = r->tail_len;
    if (n)
        memcpy(mem, r->tail, n * entry_bytes(r->nch));
    free(r->tail);
    r->tail = mem;
    r->tail_room = room;
    r->tail_head = n % room;
    return 0;
}

static void put_u16(unsigned char **p, uint16_t v)
{
    memcpy(*p, &v, sizeof v);
    *p += sizeof v;
}
static void put_u32(unsigned char **p, uint32_t v)
{
    memcpy(*p, &v, sizeof v);
    *p += sizeof v;
}
static void put_i64(unsigned char **p, int64_t v)
{
    memcpy(*p, &v, sizeof v);
    *p += sizeof v;
}
static void put_f32(unsigned char **p, float v)
{
    memcpy(*p, &v, sizeof v);
    *p += sizeof v;
}

/* Seals the tail's oldest n entries into a block appended to the sealed ones and removes them
 * from the tail. Returns 0 or ERR_NOMEM (nothing changed). */
static int seal(struct pred_ring *r, size_t n)
{
    const int C = r->nch;
    const size_t first = (r->tail_head + r->tail_room - r->tail_len) % r->tail_room;
#define AT(k) ent(r->tail, (first + (k)) % r->tail_room, C)
    if (r->blk == NULL) {
        /* Every block holds PIPE_RING_BLOCK entries (cap > tail_cap = PIPE_RING_TAIL here). The
         * blocks but the oldest hold fewer than cap entries, so at most ceil(cap / PIPE_RING_BLOCK)
         * + 1 are kept, plus the one being added before the oldest is dropped. */
        r->blk_room = r->cap / PIPE_RING_BLOCK + 3;
        if ((r->blk = calloc(r->blk_room, sizeof *r->blk)) == NULL)
            return ERR_NOMEM;
    }
    /* Timestamps: a constant step (the usual case), gaps of 32 bits, or raw. */
    int mode = RING_TS_REGULAR;
    int64_t dt0 = n > 1 ? ent_ts(AT(1)) - ent_ts(AT(0)) : 0;
    for (size_t k = 1; k < n; k++) {
        int64_t g = ent_ts(AT(k)) - ent_ts(AT(k - 1));
        if (g < 0 || g > (int64_t)UINT32_MAX) {
            mode = RING_TS_RAW;
            break;
        }
        if (g != dt0)
            mode = RING_TS_DELTA;
    }
    if (dt0 < 0 || dt0 > (int64_t)UINT32_MAX)
        mode = RING_TS_RAW;
    /* Per channel: the range and the width. */
    float lo[DETECTOR_MAX_CHANNELS], hi[DETECTOR_MAX_CHANNELS];
    uint8_t width[DETECTOR_MAX_CHANNELS];
    size_t bytes = RING_HDR +
                   (mode == RING_TS_RAW     ? 8 * n
                    : mode == RING_TS_DELTA ? 4 * (n - 1)
                                            : 0) +
                   (n + 3) / 4 + 4 * n;
    for (int c = 0; c < C; c++) {
        float a = ent_pred(AT(0), c), b = a;
        int finite = isfinite(a), same = 1;
        for (size_t k = 1; k < n; k++) {
            float v = ent_pred(AT(k), c);
            finite = finite && isfinite(v);
            same = same && memcmp(&v, &a, sizeof v) == 0;
            a = v < a ? v : a;
            b = v > b ? v : b;
        }
        if (same)
            a = b = ent_pred(AT(0), c);
        width[c] = same ? 0 : !finite || !isfinite(b - a) ? 32 : 16;
        lo[c] = a;
        hi[c] = b;
        bytes += 1 + 8 + (size_t)width[c] / 8 * n;
    }
    unsigned char *blk = malloc(bytes), *p = blk;
    if (!blk)
        return ERR_NOMEM;
    put_i64(&p, ent_ts(AT(0)));
    put_u32(&p, mode == RING_TS_REGULAR ? (uint32_t)dt0 : 0);
    put_u16(&p, (uint16_t)n);
    *p++ = (unsigned char)mode;
    *p++ = 0;
    for (size_t k = 1; k < n && mode != RING_TS_REGULAR; k++)
        if (mode == RING_TS_DELTA)
            put_u32(&p, (uint32_t)(ent_ts(AT(k)) - ent_ts(AT(k - 1))));
    if (mode == RING_TS_RAW)
        for (size_t k = 0; k < n; k++)
            put_i64(&p, ent_ts(AT(k)));
    memset(p, 0, (n + 3) / 4);
    for (size_t k = 0; k < n; k++)
        p[k / 4] |= (unsigned char)((AT(k)[ENT_STATE] & 3u) << (2 * (k % 4)));
    p += (n + 3) / 4;
    for (size_t k = 0; k < n; k++)
        put_f32(&p, ent_score(AT(k)));
    for (int c = 0; c < C; c++) {
        *p++ = width[c];
        put_f32(&p, lo[c]);
        put_f32(&p, hi[c]);
        const double span = (double)hi[c] - (double)lo[c];
        for (size_t k = 0; k < n && width[c] > 0; k++) {
            float v = ent_pred(AT(k), c);
            if (width[c] == 32) {
                put_f32(&p, v);
            } else {
                double q = round(((double)v - lo[c]) / span * 65535.0);
                put_u16(&p, (uint16_t)(q < 0 ? 0 : q > 65535 ? 65535 : q));
            }
        }
    }
#undef AT
    r->blk[(r->blk_head + r->blk_len) % r->blk_room] = blk;
    r->blk_len++;
    r->sealed += n;
    r->tail_len -= n;
    return 0;
}

/* Entries in the oldest sealed block. */
static size_t blk_n(const unsigned char *b)
{
    uint16_t n;
    memcpy(&n, b + 12, sizeof n);
    return n;
}

int pipeline__ring_push(struct pred_ring *r, int64_t ts, float score, uint8_t state,
                        const float *pred)
{
    if (r->cap == 0)
        return ERR_NOMEM; /* nothing is recorded */
    if (r->tail_len == r->tail_cap) {
        if (r->tail_cap < r->cap) {
            int rc = seal(r, PIPE_RING_BLOCK < r->tail_cap ? PIPE_RING_BLOCK : r->tail_cap);
            if (rc < 0)
                return rc;
            /* Drop the oldest blocks the newer entries no longer need. */
            while (r->blk_len > 0 &&
                   r->sealed - blk_n(r->blk[r->blk_head]) + r->tail_len + 1 >= r->cap) {
                r->sealed -= blk_n(r->blk[r->blk_head]);
                free(r->blk[r->blk_head]);
                r->blk[r->blk_head] = NULL;
                r->blk_head = (r->blk_head + 1) % r->blk_room;
                r->blk_len--;
            }
        } else {
            r->tail_len--; /* a plain ring: the oldest entry is overwritten */
        }
    }
    int rc = tail_grow(r);
    if (rc < 0)
        return rc;
    unsigned char *e = ent(r->tail, r->tail_head, r->nch);
    memcpy(e + ENT_TS, &ts, sizeof ts);
    memcpy(e + ENT_SCORE, &score, sizeof score);
    e[ENT_STATE] = state;
    memcpy(e + ENT_PRED, pred, (size_t)r->nch * sizeof *pred);
    r->tail_head = (r->tail_head + 1) % r->tail_room;
    r->tail_len++;
    /* Answer the newest cap entries only. */
    size_t total = r->sealed + r->tail_len;
    r->skip = total > r->cap ? total - r->cap : 0;
    return 0;
}

/* Calls fn for the entries of a sealed block from index `from` on; returns fn's stop or 0. */
static int blk_each(const unsigned char *b, int C, size_t from, pipeline__ring_fn fn, void *arg)
{
    int64_t ts0;
    uint32_t dt;
    uint16_t n;
    memcpy(&ts0, b, 8);
    memcpy(&dt, b + 8, 4);
    memcpy(&n, b + 12, 2);
    const int mode = b[14];
    const unsigned char *ts = b + RING_HDR;
    const unsigned char *states = ts + (mode == RING_TS_RAW     ? 8 * (size_t)n
                                        : mode == RING_TS_DELTA ? 4 * (size_t)(n - 1)
                                                                : 0);
    const unsigned char *scores = states + (n + 3) / 4;
    const unsigned char *ch[DETECTOR_MAX_CHANNELS];
    float lo[DETECTOR_MAX_CHANNELS], hi[DETECTOR_MAX_CHANNELS];
    double step[DETECTOR_MAX_CHANNELS];
    const unsigned char *p = scores + 4 * (size_t)n;
    for (int c = 0; c < C; c++) {
        ch[c] = p;
        memcpy(&lo[c], p + 1, 4);
        memcpy(&hi[c], p + 5, 4);
        step[c] = ((double)hi[c] - (double)lo[c]) / 65535.0;
        p += 9 + (size_t)p[0] / 8 * n;
    }
    int64_t t = ts0;
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && mode == RING_TS_REGULAR) {
            t += dt;
        } else if (k > 0 && mode == RING_TS_DELTA) {
            uint32_t g;
            memcpy(&g, ts + 4 * (k - 1), 4);
            t += g;
        } else if (mode == RING_TS_RAW) {
            memcpy(&t, ts + 8 * k, 8);
        }
        if (k < from)
            continue;
        float score, pred[DETECTOR_MAX_CHANNELS];
        memcpy(&score, scores + 4 * k, 4);
        for (int c = 0; c < C; c++) {
            const unsigned char *d = ch[c] + 9;
            if (ch[c][0] == 0) {
                pred[c] = lo[c];
            } else if (ch[c][0] == 32) {
                memcpy(&pred[c], d + 4 * k, 4);
            } else {
                uint16_t q;
                memcpy(&q, d + 2 * k, 2);
                pred[c] = (float)((double)lo[c] + q * step[c]);
            }
        }
        int stop = fn(arg, t, score, (uint8_t)((states[k / 4] >> (2 * (k % 4))) & 3u), pred);
        if (stop)
            return stop;
    }
    return 0;
}

int pipeline__ring_each(const struct pred_ring *r, pipeline__ring_fn fn, void *arg)
{
    size_t skip = r->skip;
    for (size_t i = 0; i < r->blk_len; i++) {
        const unsigned char *b = r->blk[(r->blk_head + i) % r->blk_room];
        size_t n = blk_n(b);
        if (skip >= n) {
            skip -= n;
            continue;
        }
        int stop = blk_each(b, r->nch, skip, fn, arg);
        skip = 0;
        if (stop)
            return stop;
    }
    if (r->tail_len == 0)
        return 0;
    const size_t first = (r->tail_head + r->tail_room - r->tail_len) % r->tail_room;
    float pred[DETECTOR_MAX_CHANNELS]; /* the entry's predictions, aligned for fn */
    for (size_t k = skip; k < r->tail_len; k++) {
        const unsigned char *e = ent(r->tail, (first + k) % r->tail_room, r->nch);
        memcpy(pred, e + ENT_PRED, (size_t)r->nch * sizeof *pred);
        int stop = fn(arg, ent_ts(e), ent_score(e), e[ENT_STATE], pred);
        if (stop)
            return stop;
    }
    return 0;
}

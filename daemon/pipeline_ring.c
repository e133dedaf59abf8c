/* daemon/pipeline_ring.c: a device's prediction ring (GET /v1/devices/{id}/predictions): per
 * scored reading its timestamp, score, state and predicted values, the newest `cap` of them.
 *
 * Layout. The newest entries are kept exactly, in the tail: a circular array of up to
 * tail_cap = min(cap, PIPE_RING_TAIL) entries, grown on demand (a device that never scores costs
 * nothing). When the ring holds more than the tail can, the tail's oldest block_len entries
 * (pipeline__ring_block_len: 60 for 8 channels) are sealed into a compact block each time it is
 * full; sealed blocks are kept oldest first in a circular array of pointers, and the oldest
 * block is dropped once the newer ones hold `cap` entries without it. Only the newest `cap`
 * entries are answered (`skip` hides the surplus at the start of the oldest block), so a ring
 * answers exactly what a plain ring of `cap` entries would, timestamps, scores and states bit
 * for bit. A tail entry's fields are packed together (ent()), so a push touches one or two cache
 * lines.
 *
 * The store. With a store, pipeline_score.c puts each sealed block to it as it is sealed
 * (pipeline__ring_next), oldest first, and a block is freed from memory once the writer reports
 * it committed together with every block before it (pipeline__ring_ack keeps the committed
 * prefix, ok_upto; pipeline__ring_settle frees it). So the live blocks are always a prefix in the
 * store (blk_mem of them, the oldest) and the rest in memory, numbered consecutively (seq): a
 * reader copies the memory part under the device's mutex, then reads the blocks below the
 * oldest in memory from the store (pipeline__ring_stored), with no gap and no duplicate. After a
 * failed put, the blocks after the committed prefix are put again (a put replaces its seq); a
 * block dropped beyond cap while in memory is never stored. The store keeps one block more than
 * the live ones (keep_from), so a reader whose snapshot is a block old still finds its oldest.
 * Sequence numbers only grow for a device (pipeline.c carries seq_next over a reset), so a late
 * report on a block of a ring that was reset never extends the new ring's prefix.
 *
 * A sealed block (a byte string; fields unaligned, read and written with memcpy):
 *   header  int64 ts0, uint32 dt, uint16 n, uint8 ts_mode, uint8 unused
 *   ts      RING_TS_REGULAR: nothing (entry k is ts0 + k * dt); RING_TS_DELTA: uint32 [n - 1]
 *           gaps to the previous entry; RING_TS_RAW: int64 [n]
 *   states  2 bits each, (n + 3) / 4 bytes
 *   scores  float [n], exact
 *   per channel: uint8 width, float lo, float hi, then width 0: nothing (every value equals
 *           lo), 16: uint16 q [n], the value lo + q * (hi - lo) / 65535 rounded to float,
 *           32: float [n] exact (a non-finite value in the block, or a tail sealed whole by
 *           pipeline__ring_seal_tail, so a restart answers its values bit for bit)
 * So a sealed predicted value is within (hi - lo) / 131070 of the prediction, plus float
 * rounding, where lo and hi are that channel's smallest and largest prediction among the
 * block's readings (at most PIPE_RING_BLOCK): about 1/131,000 of the channel's local variation,
 * not of its magnitude (a value of 1500 varying by 30 over the block is kept to 0.0002). An
 * 8-channel entry takes about 21.7 bytes sealed against 45 exact.
 *
 * A block's size. The store keeps a block as a row of up to 48 bytes besides the block, in
 * 4 KiB pages (storage/schema.c, preds), and a page holds whole rows: blocks of 64 8-channel
 * entries (1,384 bytes) went two to a page, a third of each page empty (measured with dbstat:
 * 72 KB of pages for 49 KB of blocks a device, docs/benchmarks.md). So a block holds the most
 * entries, up to PIPE_RING_BLOCK, for which a usual block (regular timestamps, 16-bit values)
 * stays within RING_BLOCK_BUDGET bytes, three rows to a page: 60 entries (1,303 bytes) for 8
 * channels, 64 for up to 7, never fewer than PIPE_RING_BLOCK_MIN. A tail sealed whole at
 * shutdown (32-bit values) goes in blocks of at most RING_EXACT_BUDGET bytes, two to a page: 52
 * entries (1,973 bytes) for 8 channels, so its up to 256 entries take three pages, not four
 * (64-entry exact blocks of 2,408 bytes went one to a page). The layout holds its n, so blocks
 * sealed with another size (schema 6 stored 64 entries whatever the channels) read back alike,
 * and a ring may hold blocks of both sizes.
 *
 * Threading: none of its own; the caller serialises access (the device's mutex), except
 * pipeline__ring_ack (any thread: atomics). */
#include "err.h"
#include "pipeline_int.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { RING_TS_REGULAR = 0, RING_TS_DELTA = 1, RING_TS_RAW = 2 };

#define RING_HDR 16 /* ts0 8, dt 4, n 2, ts_mode 1, unused 1 */

/* A third of a 4 KiB page less a row's other bytes in the store. The page: an 8-byte header;
 * per row a 2-byte cell pointer, the cell's payload length (2) and rowid (up to 7 bytes, below
 * 2^49 rows ever put), the record's header (10) and other columns (up to 27: device_id 3, seq 4,
 * n 1, nch 1, t0 6, t1 6, sum 6), 48 in all. Three rows fill the page at 1,314 bytes of block. */
#define RING_BLOCK_BUDGET 1310
/* Half a page less a row's other bytes, the same way: two rows fill it at 1,996 bytes. */
#define RING_EXACT_BUDGET 1990

/* Bytes of a block of n entries with nch channels of `width` bits each, regular timestamps. */
static size_t block_bytes(size_t n, int nch, size_t width)
{
    return RING_HDR + (n + 3) / 4 + 4 * n + (size_t)nch * (9 + width / 8 * n);
}

/* The most entries, from PIPE_RING_BLOCK down to PIPE_RING_BLOCK_MIN, within budget bytes. */
static size_t block_len(int nch, size_t width, size_t budget)
{
    size_t n = PIPE_RING_BLOCK;
    while (n > PIPE_RING_BLOCK_MIN && block_bytes(n, nch, width) > budget)
        n--;
    return n;
}

size_t pipeline__ring_block_len(int nch)
{
    return block_len(nch, 16, RING_BLOCK_BUDGET);
}

/* Bytes of one exact tail entry with nch channels. */
static size_t entry_bytes(int nch)
{
    return sizeof(int64_t) + sizeof(float) + 1 + (size_t)nch * sizeof(float);
}

void pipeline__ring_init(struct pred_ring *r, size_t cap, int nch, int64_t seq_next)
{
    memset(r, 0, offsetof(struct pred_ring, ack));
    r->cap = cap;
    r->nch = nch;
    r->tail_cap = cap < PIPE_RING_TAIL ? cap : PIPE_RING_TAIL;
    r->seq_next = r->sent_next = seq_next;
    /* Nothing of this ring is committed yet; a failure reported for an older one is moot. */
    atomic_store_explicit(&r->ack.ok_upto, seq_next - 1, memory_order_release);
    atomic_store_explicit(&r->ack.failed, 0, memory_order_release);
}

void pipeline__ring_deinit(struct pred_ring *r)
{
    if (!r)
        return;
    free(r->tail);
    for (size_t i = 0; i < r->blk_len; i++)
        free(r->blk[(r->blk_head + i) % r->blk_room]);
    free(r->blk);
    const int64_t seq = r->seq_next; /* kept: see "The store" above */
    memset(r, 0, offsetof(struct pred_ring, ack));
    r->seq_next = r->sent_next = seq;
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

/* Makes room for one more live block: the pointer array (and blk_n behind it) grows by half
 * when full, the blocks oldest first from 0. Returns 0 or ERR_NOMEM (nothing changed). */
static int blk_reserve(struct pred_ring *r)
{
    if (r->blk_len < r->blk_room)
        return 0;
    /* At most ceil(cap / block_len) + 1 blocks of block_len entries are live, plus the one
     * being added before the oldest is dropped; blocks sealed shorter (a tail at shutdown) may
     * need more. */
    size_t room = r->blk_room ? r->blk_room + r->blk_room / 2 + 1
                              : r->cap / pipeline__ring_block_len(r->nch) + 3;
    unsigned char **blk = malloc(room * (sizeof *blk + sizeof *r->blk_n));
    if (blk == NULL)
        return ERR_NOMEM;
    uint16_t *n = (uint16_t *)(blk + room);
    for (size_t i = 0; i < r->blk_len; i++) {
        blk[i] = r->blk[(r->blk_head + i) % r->blk_room];
        n[i] = r->blk_n[(r->blk_head + i) % r->blk_room];
    }
    free(r->blk);
    r->blk = blk;
    r->blk_n = n;
    r->blk_room = room;
    r->blk_head = 0;
    return 0;
}

/* Seals the tail's oldest n entries into a block appended to the sealed ones and removes them
 * from the tail; exact: every channel's values as floats (width 32, or 0 when constant).
 * Returns 0 or ERR_NOMEM (nothing changed). */
static int seal(struct pred_ring *r, size_t n, int exact)
{
    const int C = r->nch;
    const size_t first = (r->tail_head + r->tail_room - r->tail_len) % r->tail_room;
#define AT(k) ent(r->tail, (first + (k)) % r->tail_room, C)
    if (blk_reserve(r) != 0)
        return ERR_NOMEM;
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
        width[c] = same ? 0 : exact || !finite || !isfinite(b - a) ? 32 : 16;
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
    size_t at = (r->blk_head + r->blk_len) % r->blk_room;
    r->blk[at] = blk;
    r->blk_n[at] = (uint16_t)n;
    r->blk_len++;
    r->seq_next++;
    r->sealed += n;
    r->tail_len -= n;
    return 0;
}

/* Drops the oldest live blocks the newer entries no longer need (they hold cap without them),
 * from memory or, when stored, from the ring's account (the store trims them: keep_from). */
static void drop_old(struct pred_ring *r)
{
    while (r->blk_len > 0 && r->sealed - r->blk_n[r->blk_head] + r->tail_len >= r->cap) {
        r->sealed -= r->blk_n[r->blk_head];
        free(r->blk[r->blk_head]);
        r->blk[r->blk_head] = NULL;
        r->blk_head = (r->blk_head + 1) % r->blk_room;
        r->blk_len--;
        if (r->blk_mem > 0)
            r->blk_mem--;
    }
    size_t total = r->sealed + r->tail_len;
    r->skip = total > r->cap ? total - r->cap : 0;
}

int pipeline__ring_push(struct pred_ring *r, int64_t ts, float score, uint8_t state,
                        const float *pred)
{
    if (r->cap == 0)
        return ERR_NOMEM; /* nothing is recorded */
    if (r->tail_len == r->tail_cap) {
        if (r->tail_cap < r->cap) {
            const size_t len = pipeline__ring_block_len(r->nch);
            int rc = seal(r, len < r->tail_cap ? len : r->tail_cap, 0);
            if (rc < 0)
                return rc;
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
    drop_old(r);
    return 0;
}

/* A block's layout, from its header and each channel's width: where its parts start and its
 * length. Returns 0, or -1 when it does not fit in avail bytes or is malformed (a mode or
 * width that does not exist). */
struct blk_layout {
    int64_t ts0;
    uint32_t dt;
    uint16_t n;
    int mode;
    const unsigned char *ts, *states, *scores, *ch[DETECTOR_MAX_CHANNELS];
    size_t len;
};

static int blk_parse(const unsigned char *b, size_t avail, int C, struct blk_layout *l)
{
    if (avail < RING_HDR)
        return -1;
    memcpy(&l->ts0, b, 8);
    memcpy(&l->dt, b + 8, 4);
    memcpy(&l->n, b + 12, 2);
    l->mode = b[14];
    const size_t n = l->n;
    if (n == 0 || l->mode > RING_TS_RAW)
        return -1;
    size_t off = RING_HDR;
    l->ts = b + off;
    off += l->mode == RING_TS_RAW ? 8 * n : l->mode == RING_TS_DELTA ? 4 * (n - 1) : 0;
    l->states = b + off;
    off += (n + 3) / 4;
    l->scores = b + off;
    off += 4 * n;
    for (int c = 0; c < C; c++) {
        if (off + 9 > avail)
            return -1;
        const unsigned w = b[off];
        if (w != 0 && w != 16 && w != 32)
            return -1;
        l->ch[c] = b + off;
        off += 9 + w / 8 * n;
    }
    if (off > avail)
        return -1;
    l->len = off;
    return 0;
}

/* Calls fn for the entries of a well-formed sealed block from index `from` on; returns fn's stop
 * or 0. */
static int blk_each(const struct blk_layout *l, int C, size_t from, pipeline__ring_fn fn, void *arg)
{
    const size_t n = l->n;
    float lo[DETECTOR_MAX_CHANNELS], hi[DETECTOR_MAX_CHANNELS];
    double step[DETECTOR_MAX_CHANNELS];
    for (int c = 0; c < C; c++) {
        memcpy(&lo[c], l->ch[c] + 1, 4);
        memcpy(&hi[c], l->ch[c] + 5, 4);
        step[c] = ((double)hi[c] - (double)lo[c]) / 65535.0;
    }
    int64_t t = l->ts0;
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && l->mode == RING_TS_REGULAR) {
            t += l->dt;
        } else if (k > 0 && l->mode == RING_TS_DELTA) {
            uint32_t g;
            memcpy(&g, l->ts + 4 * (k - 1), 4);
            t += g;
        } else if (l->mode == RING_TS_RAW) {
            memcpy(&t, l->ts + 8 * k, 8);
        }
        if (k < from)
            continue;
        float score, pred[DETECTOR_MAX_CHANNELS];
        memcpy(&score, l->scores + 4 * k, 4);
        for (int c = 0; c < C; c++) {
            const unsigned char *d = l->ch[c] + 9;
            if (l->ch[c][0] == 0) {
                pred[c] = lo[c];
            } else if (l->ch[c][0] == 32) {
                memcpy(&pred[c], d + 4 * k, 4);
            } else {
                uint16_t q;
                memcpy(&q, d + 2 * k, 2);
                pred[c] = (float)((double)lo[c] + q * step[c]);
            }
        }
        int stop = fn(arg, t, score, (uint8_t)((l->states[k / 4] >> (2 * (k % 4))) & 3u), pred);
        if (stop)
            return stop;
    }
    return 0;
}

int pipeline__ring_block_each(const unsigned char *bytes, size_t len, uint32_t n, int nch,
                              size_t from, pipeline__ring_fn fn, void *arg)
{
    struct blk_layout l;
    if (nch < 1 || nch > DETECTOR_MAX_CHANNELS || blk_parse(bytes, len, nch, &l) != 0 ||
        l.len != len || l.n != n)
        return ERR_CORRUPT;
    return blk_each(&l, nch, from, fn, arg);
}

int pipeline__ring_each(const struct pred_ring *r, pipeline__ring_fn fn, void *arg)
{
    /* The skip applies to the oldest live block: in the store when blk_mem > 0. */
    size_t skip = r->blk_mem > 0 ? 0 : r->skip;
    for (size_t i = r->blk_mem; i < r->blk_len; i++) {
        const unsigned char *b = r->blk[(r->blk_head + i) % r->blk_room];
        size_t n = r->blk_n[(r->blk_head + i) % r->blk_room];
        if (skip >= n) {
            skip -= n;
            continue;
        }
        struct blk_layout l;
        (void)blk_parse(b, SIZE_MAX, r->nch, &l); /* sealed here: well-formed */
        int stop = blk_each(&l, r->nch, skip, fn, arg);
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

size_t pipeline__ring_stored(const struct pred_ring *r, int64_t *seq_lo, int64_t *seq_hi,
                             size_t *skip)
{
    const int64_t seq0 = r->seq_next - (int64_t)r->blk_len;
    *seq_lo = seq0;
    *seq_hi = seq0 + (int64_t)r->blk_mem;
    *skip = r->blk_mem > 0 ? r->skip : 0;
    size_t n = 0;
    for (size_t i = 0; i < r->blk_mem; i++)
        n += r->blk_n[(r->blk_head + i) % r->blk_room];
    return n - *skip;
}

/* The newest timestamp of a well-formed block. */
static int64_t blk_last_ts(const struct blk_layout *l)
{
    if (l->mode == RING_TS_REGULAR)
        return l->ts0 + (int64_t)l->dt * (l->n - 1);
    int64_t t = l->ts0;
    if (l->mode == RING_TS_RAW) {
        memcpy(&t, l->ts + 8 * ((size_t)l->n - 1), 8);
        return t;
    }
    for (size_t k = 1; k < l->n; k++) {
        uint32_t g;
        memcpy(&g, l->ts + 4 * (k - 1), 4);
        t += g;
    }
    return t;
}

int pipeline__ring_block(const struct pred_ring *r, size_t i, struct pred_block *b)
{
    if (i >= r->blk_len || i < r->blk_mem)
        return 0;
    const size_t at = (r->blk_head + i) % r->blk_room;
    struct blk_layout l;
    (void)blk_parse(r->blk[at], SIZE_MAX, r->nch, &l);
    const int64_t seq0 = r->seq_next - (int64_t)r->blk_len;
    b->seq = seq0 + (int64_t)i;
    /* One block more than the live ones: a reader's snapshot may be one block old. */
    b->keep_from = seq0 - 1;
    b->t0 = l.ts0;
    b->t1 = blk_last_ts(&l);
    b->n = r->blk_n[at];
    b->bytes = r->blk[at];
    b->len = l.len;
    return 1;
}

void pipeline__ring_ack(struct pred_ring *r, int64_t seq, int status)
{
    if (status != 0) {
        atomic_store_explicit(&r->ack.failed, 1, memory_order_release);
        return;
    }
    /* Reports come in the order of the puts (one writer, first in first out): a block extends
     * the committed prefix when it follows it. A block after a failed one does not (it is put
     * again after it); a report of a ring since reset never follows its prefix. */
    int_fast64_t want = seq - 1;
    atomic_compare_exchange_strong_explicit(&r->ack.ok_upto, &want, seq, memory_order_acq_rel,
                                            memory_order_relaxed);
}

void pipeline__ring_settle(struct pred_ring *r)
{
    const int64_t seq0 = r->seq_next - (int64_t)r->blk_len;
    const int64_t upto = atomic_load_explicit(&r->ack.ok_upto, memory_order_acquire);
    while (r->blk_mem < r->blk_len && seq0 + (int64_t)r->blk_mem <= upto) {
        const size_t at = (r->blk_head + r->blk_mem) % r->blk_room;
        free(r->blk[at]);
        r->blk[at] = NULL;
        r->blk_mem++;
    }
    /* A put failed: every block after the committed prefix is put again, in order. */
    if (atomic_load_explicit(&r->ack.failed, memory_order_relaxed) &&
        atomic_exchange_explicit(&r->ack.failed, 0, memory_order_acq_rel))
        r->sent_next = upto + 1;
}

int pipeline__ring_next(struct pred_ring *r, struct pred_block *b)
{
    const int64_t seq0 = r->seq_next - (int64_t)r->blk_len;
    const int64_t mem0 = seq0 + (int64_t)r->blk_mem; /* the oldest block in memory */
    if (r->sent_next < mem0)
        r->sent_next = mem0; /* those before are committed, or were dropped unsent */
    if (!pipeline__ring_block(r, (size_t)(r->sent_next - seq0), b))
        return 0;
    r->sent_next++;
    return 1;
}

void pipeline__ring_unsend(struct pred_ring *r, int64_t seq)
{
    if (seq < r->sent_next)
        r->sent_next = seq;
}

int pipeline__ring_seal_tail(struct pred_ring *r)
{
    const size_t len = block_len(r->nch, 32, RING_EXACT_BUDGET);
    while (r->tail_len > 0) {
        int rc = seal(r, r->tail_len < len ? r->tail_len : len, 1);
        if (rc)
            return rc;
    }
    drop_old(r);
    return 0;
}

int pipeline__ring_adopt(struct pred_ring *r, int64_t seq, uint32_t n)
{
    if (r->cap == 0 || n == 0 || n > UINT16_MAX || r->tail_len > 0 || r->blk_mem < r->blk_len)
        return ERR_INVAL;
    if (r->blk_len > 0 && seq != r->seq_next) { /* not the next one: forget those before */
        r->blk_len = r->blk_mem = 0;
        r->sealed = 0;
    }
    int rc = blk_reserve(r);
    if (rc)
        return rc;
    size_t at = (r->blk_head + r->blk_len) % r->blk_room;
    r->blk[at] = NULL;
    r->blk_n[at] = (uint16_t)n;
    r->blk_len++;
    r->blk_mem = r->blk_len;
    r->sealed += n;
    r->seq_next = r->sent_next = seq + 1;
    atomic_store_explicit(&r->ack.ok_upto, seq, memory_order_release);
    drop_old(r);
    return 0;
}

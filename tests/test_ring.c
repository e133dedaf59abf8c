/* tests/test_ring.c: unit tests of the prediction ring (daemon/pipeline_ring.c): it answers the
 * newest `cap` entries, oldest first, timestamps, scores and states exactly; the newest
 * PIPE_RING_TAIL - BLK predicted values exactly (BLK: a block's entries for NCH channels), older
 * ones within their block's stated bound (a channel's range over the block / 131,070, plus float
 * rounding), constant and non-finite channels exactly; any timestamps (regular, irregular, huge
 * gaps, repeats). With a store (simulated here: late, batched, failing commits), the stored part
 * and the memory part together answer the same entries bit for bit; a tail sealed at shutdown and
 * adopted after a restart answers as before; a malformed stored block is refused. A usual 8-channel
 * block is small enough for three to a page in the store, and blocks of schema 6 (64 entries) still
 * read back beside the newer ones. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pipeline_int.h"

#define NCH 8
#define BLK pipeline__ring_block_len(NCH)

/* What a test pushed: entry k's fields. */
struct pushed {
    size_t n;
    int64_t *ts;
    float *score;
    uint8_t *state;
    float *pred; /* [n][NCH] */
};

static void pushed_alloc(struct pushed *p, size_t n)
{
    p->n = n;
    p->ts = calloc(n, sizeof *p->ts);
    p->score = calloc(n, sizeof *p->score);
    p->state = calloc(n, 1);
    p->pred = calloc(n * NCH, sizeof *p->pred);
    assert_non_null(p->ts);
    assert_non_null(p->score);
    assert_non_null(p->state);
    assert_non_null(p->pred);
}

static void pushed_free(struct pushed *p)
{
    free(p->ts);
    free(p->score);
    free(p->state);
    free(p->pred);
}

/* Checks the walk against the pushed entries: entry i of the walk is pushed entry first + i. */
struct check {
    const struct pushed *p;
    size_t first, i, exact_from; /* pushed entries from exact_from on must be exact */
    int block_bound;             /* 1: older entries within their block's bound (cap > tail) */
    double worst;                /* the largest |error| / bound seen */
};

static int check_entry(void *arg, int64_t ts, float score, uint8_t state, const float *pred)
{
    struct check *c = arg;
    const struct pushed *p = c->p;
    size_t k = c->first + c->i++;
    assert_true(k < p->n);
    assert_true(ts == p->ts[k]);
    assert_memory_equal(&score, &p->score[k], sizeof score);
    assert_int_equal(state, p->state[k]);
    for (int ch = 0; ch < NCH; ch++) {
        float want = p->pred[k * NCH + ch];
        if (k >= c->exact_from || !c->block_bound || !isfinite(want)) {
            if (isnan(want))
                assert_true(isnan(pred[ch]));
            else
                assert_memory_equal(&pred[ch], &want, sizeof want);
            continue;
        }
        /* Sealed: blocks are the pushed entries BLK by BLK from the first one pushed. */
        size_t b0 = k / BLK * BLK;
        float lo = INFINITY, hi = -INFINITY;
        int finite = 1;
        for (size_t m = b0; m < b0 + BLK && m < p->n; m++) {
            float v = p->pred[m * NCH + ch];
            finite = finite && isfinite(v);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        if (!finite) { /* a block with a non-finite value keeps the channel exactly */
            assert_memory_equal(&pred[ch], &want, sizeof want);
            continue;
        }
        double bound = ((double)hi - lo) / 131070.0 +
                       2 * (double)nextafterf(fabsf(want), INFINITY) - 2 * (double)fabsf(want);
        double err = fabs((double)pred[ch] - want);
        assert_true(err <= bound);
        if (bound > 0 && err / bound > c->worst)
            c->worst = err / bound;
    }
    return 0;
}

static uint64_t rng = 88172645463325252ull;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* Fills entry k: a pump-like channel set (levels from 1e-3 to 1e4, noise, a step at 3000, a
 * constant channel, a channel with a NaN now and then). */
static void fill(struct pushed *p, size_t k, int64_t ts)
{
    p->ts[k] = ts;
    p->score[k] = (float)uniform();
    p->state[k] = (uint8_t)(k / 37 % 4);
    static const double level[NCH] = {1500, 12.5, 0.003, 40, 65, 1e4, 0, 7};
    for (int ch = 0; ch < NCH; ch++) {
        double v = level[ch] * (1 + 0.01 * (uniform() - 0.5)) + (k >= 3000 ? level[ch] : 0);
        if (ch == 6)
            v = 42.0; /* constant */
        if (ch == 7 && k % 500 == 17)
            v = NAN;
        p->pred[k * NCH + ch] = (float)v;
    }
}

/* n entries, one a second from t0 ms, each filled by fill(). */
static void pushed_seconds(struct pushed *p, size_t n, int64_t t0)
{
    pushed_alloc(p, n);
    for (size_t k = 0; k < n; k++)
        fill(p, k, t0 + 1000 * (int64_t)k);
}

static void push_all(struct pred_ring *r, const struct pushed *p)
{
    float pred[NCH];
    for (size_t k = 0; k < p->n; k++) {
        memcpy(pred, p->pred + k * NCH, sizeof pred);
        assert_int_equal(pipeline__ring_push(r, p->ts[k], p->score[k], p->state[k], pred), 0);
    }
}

/* The default size: 2,000 answered of 5,000 pushed at 1 Hz. */
static void test_ring_newest_cap(void **state)
{
    (void)state;
    struct pushed p;
    pushed_seconds(&p, 5000, 1764000000000);
    struct pred_ring r;
    pipeline__ring_init(&r, 2000, NCH, 0);
    push_all(&r, &p);
    assert_int_equal(pipeline__ring_len(&r), 2000);
    struct check c = {
        .p = &p, .first = 3000, .block_bound = 1, .exact_from = p.n - (PIPE_RING_TAIL - BLK)};
    assert_int_equal(pipeline__ring_each(&r, check_entry, &c), 0);
    assert_int_equal(c.i, 2000);
    /* Sealed values are quantised, not copied: some error is seen, all within the bound. */
    assert_true(c.worst > 0.0 && c.worst <= 1.0);
    pipeline__ring_deinit(&r);
    pushed_free(&p);
}

/* Every count from empty to past a few wraps answers min(count, cap) entries, the newest. */
static void test_ring_every_length(void **state)
{
    (void)state;
    struct pushed p;
    pushed_seconds(&p, 1200, 0);
    static const size_t caps[] = {1, 50, 256, 257, 300, 700};
    for (size_t ci = 0; ci < sizeof caps / sizeof *caps; ci++) {
        struct pred_ring r;
        pipeline__ring_init(&r, caps[ci], NCH, 0);
        float pred[NCH];
        for (size_t k = 0; k < p.n; k++) {
            memcpy(pred, p.pred + k * NCH, sizeof pred);
            assert_int_equal(pipeline__ring_push(&r, p.ts[k], p.score[k], p.state[k], pred), 0);
            size_t want = k + 1 < caps[ci] ? k + 1 : caps[ci];
            assert_int_equal(pipeline__ring_len(&r), want);
            if (k % 97 == 0 || k + 1 == p.n) {
                struct pushed view = p;
                view.n = k + 1;
                struct check c = {.p = &view,
                                  .first = k + 1 - want,
                                  .block_bound = caps[ci] > PIPE_RING_TAIL,
                                  .exact_from = k + 1 > PIPE_RING_TAIL - BLK
                                                    ? k + 1 - (PIPE_RING_TAIL - BLK)
                                                    : 0};
                assert_int_equal(pipeline__ring_each(&r, check_entry, &c), 0);
                assert_int_equal(c.i, want);
            }
        }
        pipeline__ring_deinit(&r);
    }
    pushed_free(&p);
}

/* Irregular timestamps (jitter, repeats, a gap of 60 days, negative epochs) come back exactly. */
static void test_ring_timestamps(void **state)
{
    (void)state;
    struct pushed p;
    pushed_alloc(&p, 1500);
    int64_t ts = -5000000;
    for (size_t k = 0; k < p.n; k++) {
        if (k == 400)
            ts += 60LL * 86400 * 1000; /* over 32 bits of milliseconds */
        else if (k % 3 == 0)
            ts += (int64_t)(uniform() * 3000);
        else if (k % 7 != 0)
            ts += 1000; /* every seventh a repeat */
        fill(&p, k, ts);
    }
    struct pred_ring r;
    pipeline__ring_init(&r, 1000, NCH, 0);
    push_all(&r, &p);
    struct check c = {
        .p = &p, .first = 500, .block_bound = 1, .exact_from = p.n - (PIPE_RING_TAIL - BLK)};
    assert_int_equal(pipeline__ring_each(&r, check_entry, &c), 0);
    assert_int_equal(c.i, 1000);
    pipeline__ring_deinit(&r);
    pushed_free(&p);
}

/* The walk stops when the callback says so; cap 0 records nothing. */
static int stop_at_3(void *arg, int64_t ts, float score, uint8_t state, const float *pred)
{
    (void)ts, (void)score, (void)state, (void)pred;
    int *n = arg;
    return ++*n == 3 ? 7 : 0;
}

static void test_ring_stop_and_empty(void **state)
{
    (void)state;
    struct pred_ring r;
    float pred[NCH] = {0};
    pipeline__ring_init(&r, 0, NCH, 0);
    assert_int_equal(pipeline__ring_push(&r, 1, 0.5f, 1, pred), ERR_NOMEM);
    assert_int_equal(pipeline__ring_len(&r), 0);
    int n = 0;
    assert_int_equal(pipeline__ring_each(&r, stop_at_3, &n), 0);
    assert_int_equal(n, 0);
    pipeline__ring_deinit(&r);
    pipeline__ring_init(&r, 600, NCH, 0);
    for (int k = 0; k < 900; k++)
        assert_int_equal(pipeline__ring_push(&r, k, 0.5f, 1, pred), 0);
    assert_int_equal(pipeline__ring_each(&r, stop_at_3, &n), 7);
    assert_int_equal(n, 3);
    pipeline__ring_deinit(&r);
    pipeline__ring_deinit(NULL);
}

/* ---- the store hand-off ----
 *
 * A simulated store: puts queue up as the writer's queue does, and "transactions" take a run of
 * them, commit it (bytes kept by seq, reports ok in order) or fail it (reports failed). A ring
 * read is its stored part (pipeline__ring_stored, blocks from the simulated store, through
 * pipeline__ring_block_each) then its memory part (pipeline__ring_each). */
#define SIM_SEQ 512
struct sim_put {
    int64_t seq;
    uint32_t n;
    size_t len;
    unsigned char *bytes;
};
struct sim {
    struct sim_put q[SIM_SEQ]; /* queued puts, oldest first */
    size_t nq;
    unsigned char *bytes[SIM_SEQ]; /* committed block by seq */
    size_t len[SIM_SEQ];
    uint32_t n[SIM_SEQ];
};

static void sim_handoff(struct sim *s, struct pred_ring *r)
{
    pipeline__ring_settle(r);
    struct pred_block b;
    while (s->nq < SIM_SEQ && pipeline__ring_next(r, &b)) {
        assert_true(b.seq >= 0 && b.seq < SIM_SEQ);
        struct sim_put *p = &s->q[s->nq++];
        p->seq = b.seq;
        p->n = b.n;
        p->len = b.len;
        p->bytes = malloc(b.len);
        assert_non_null(p->bytes);
        memcpy(p->bytes, b.bytes, b.len);
    }
}

/* One transaction of the first k queued puts: committed (ok) or failed. */
static void sim_tx(struct sim *s, struct pred_ring *r, size_t k, int ok)
{
    k = k < s->nq ? k : s->nq;
    for (size_t i = 0; i < k; i++) {
        struct sim_put *p = &s->q[i];
        if (ok) {
            free(s->bytes[p->seq]);
            s->bytes[p->seq] = p->bytes;
            s->len[p->seq] = p->len;
            s->n[p->seq] = p->n;
        } else {
            free(p->bytes);
        }
        pipeline__ring_ack(r, p->seq, ok ? 0 : ERR_IO);
    }
    memmove(s->q, s->q + k, (s->nq - k) * sizeof *s->q);
    s->nq -= k;
}

static void sim_free(struct sim *s)
{
    for (size_t i = 0; i < s->nq; i++)
        free(s->q[i].bytes);
    for (size_t i = 0; i < SIM_SEQ; i++)
        free(s->bytes[i]);
}

/* Collects every entry of a walk. */
struct got {
    size_t n;
    int64_t ts[4096];
    float score[4096];
    uint8_t state[4096];
    float pred[4096][NCH];
};

static int got_entry(void *arg, int64_t ts, float score, uint8_t state, const float *pred)
{
    struct got *g = arg;
    assert_true(g->n < 4096);
    g->ts[g->n] = ts;
    g->score[g->n] = score;
    g->state[g->n] = state;
    memcpy(g->pred[g->n], pred, sizeof g->pred[0]);
    g->n++;
    return 0;
}

/* Reads the ring as the predictions answer does: stored blocks, then memory. */
static void read_all(const struct sim *s, const struct pred_ring *r, struct got *g)
{
    g->n = 0;
    int64_t lo, hi;
    size_t skip;
    size_t stored = pipeline__ring_stored(r, &lo, &hi, &skip);
    for (int64_t q = lo; q < hi; q++) {
        assert_non_null(s->bytes[q]); /* every block below memory's is committed */
        assert_int_equal(pipeline__ring_block_each(s->bytes[q], s->len[q], s->n[q], NCH,
                                                   q == lo ? skip : 0, got_entry, g),
                         0);
    }
    assert_int_equal(g->n, stored);
    assert_int_equal(pipeline__ring_each(r, got_entry, g), 0);
    assert_int_equal(g->n, pipeline__ring_len(r));
}

static void assert_same(const struct got *a, const struct got *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_true(a->ts[i] == b->ts[i]);
        assert_memory_equal(&a->score[i], &b->score[i], sizeof a->score[i]);
        assert_int_equal(a->state[i], b->state[i]);
        assert_memory_equal(a->pred[i], b->pred[i], sizeof a->pred[i]); /* bit for bit */
    }
}

/* With blocks handed to a store that commits late, in runs, and now and then fails a run, the
 * ring answers what a ring without a store answers, bit for bit, after every push; memory then
 * holds only the blocks not yet committed. */
static void test_ring_store_handoff(void **state)
{
    (void)state;
    /* Its own sequence, whatever ran before: how much of the ring sits in the store depends
     * on where the failed transactions fall (from 8 to 31 blocks at most over 13 sequences). */
    rng = 88172645463325252ull;
    struct pushed p;
    pushed_seconds(&p, 5000, 1764000000000);
    struct pred_ring r, ref;
    pipeline__ring_init(&r, 2000, NCH, 0);
    pipeline__ring_init(&ref, 2000, NCH, 0);
    struct sim *s = calloc(1, sizeof *s);
    struct got *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(s);
    assert_non_null(a);
    assert_non_null(b);
    float pred[NCH];
    size_t failures = 0, max_stored = 0;
    for (size_t k = 0; k < p.n; k++) {
        memcpy(pred, p.pred + k * NCH, sizeof pred);
        assert_int_equal(pipeline__ring_push(&r, p.ts[k], p.score[k], p.state[k], pred), 0);
        assert_int_equal(pipeline__ring_push(&ref, p.ts[k], p.score[k], p.state[k], pred), 0);
        sim_handoff(s, &r);
        /* The writer: now and then, a transaction of some queued puts; one in 4 fails. */
        if (uniform() < 0.01) { /* every 100 readings or so: puts queue up */
            int ok = uniform() > 1.0 / 4;
            failures += !ok && s->nq > 0;
            sim_tx(s, &r, 1 + (size_t)(uniform() * 6), ok);
        }
        if (k % 3 == 0 || k + 1 == p.n) {
            read_all(s, &r, a);
            read_all(s, &ref, b); /* no store: all in memory */
            assert_same(a, b);
            int64_t lo, hi;
            size_t skip;
            pipeline__ring_stored(&r, &lo, &hi, &skip);
            max_stored = (size_t)(hi - lo) > max_stored ? (size_t)(hi - lo) : max_stored;
        }
    }
    assert_true(failures > 0);
    print_message("max stored %zu failures %zu\n", max_stored, failures);
    assert_true(max_stored >= 10); /* much of the ring was answered from the store */
    /* Everything committed: memory holds the tail only. */
    for (int i = 0; i < 100 && s->nq + (size_t)(r.sent_next < r.seq_next); i++) {
        sim_tx(s, &r, SIM_SEQ, 1);
        sim_handoff(s, &r);
    }
    pipeline__ring_settle(&r);
    assert_int_equal(r.blk_mem, r.blk_len);
    read_all(s, &r, a);
    read_all(s, &ref, b);
    assert_same(a, b);
    free(a);
    free(b);
    sim_free(s);
    free(s);
    pipeline__ring_deinit(&r);
    pipeline__ring_deinit(&ref);
    pushed_free(&p);
}

/* A tail sealed at shutdown keeps its values exactly: a ring adopting the stored blocks after a
 * restart answers what the ring answered before, bit for bit; then it goes on as a ring. */
static void test_ring_seal_adopt(void **state)
{
    (void)state;
    struct pushed p;
    pushed_seconds(&p, 3000, 0);
    struct pred_ring r, back;
    pipeline__ring_init(&r, 1000, NCH, 0);
    struct sim *s = calloc(1, sizeof *s);
    struct got *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(s);
    assert_non_null(a);
    assert_non_null(b);
    float pred[NCH];
    for (size_t k = 0; k < 2900; k++) {
        memcpy(pred, p.pred + k * NCH, sizeof pred);
        assert_int_equal(pipeline__ring_push(&r, p.ts[k], p.score[k], p.state[k], pred), 0);
        sim_handoff(s, &r);
        sim_tx(s, &r, SIM_SEQ, 1);
    }
    read_all(s, &r, a); /* before the shutdown */
    assert_int_equal(pipeline__ring_seal_tail(&r), 0);
    assert_int_equal(r.tail_len, 0);
    sim_handoff(s, &r);
    sim_tx(s, &r, SIM_SEQ, 1);
    read_all(s, &r, b);
    assert_same(a, b);
    /* The restart: the live blocks' places, as store_preds_list reports them. */
    pipeline__ring_init(&back, 1000, NCH, 0);
    int64_t lo = r.seq_next - (int64_t)r.blk_len;
    for (int64_t q = lo - 3; q < r.seq_next; q++) /* older ones first, as the store has them */
        if (q >= 0 && s->bytes[q])
            assert_int_equal(pipeline__ring_adopt(&back, q, s->n[q]), 0);
    assert_int_equal(back.seq_next, r.seq_next);
    read_all(s, &back, b);
    assert_same(a, b);
    /* It goes on: the newest 1000 of all 3000, the 100 new ones exact. */
    for (size_t k = 2900; k < p.n; k++) {
        memcpy(pred, p.pred + k * NCH, sizeof pred);
        assert_int_equal(pipeline__ring_push(&back, p.ts[k], p.score[k], p.state[k], pred), 0);
        sim_handoff(s, &back);
        sim_tx(s, &back, SIM_SEQ, 1);
    }
    read_all(s, &back, b);
    assert_int_equal(b->n, 1000);
    for (size_t i = 0; i < b->n; i++)
        assert_true(b->ts[i] == p.ts[2000 + i]);
    for (size_t i = 900; i < 1000; i++)
        assert_memory_equal(b->pred[i], p.pred + (2000 + i) * NCH, sizeof b->pred[i]);
    /* A gap in the numbers at restore: only the run after it is adopted. */
    struct pred_ring g;
    pipeline__ring_init(&g, 1000, NCH, 0);
    assert_int_equal(pipeline__ring_adopt(&g, 3, 64), 0);
    assert_int_equal(pipeline__ring_adopt(&g, 5, 64), 0);
    assert_int_equal(pipeline__ring_len(&g), 64);
    assert_int_equal(g.seq_next, 6);
    pipeline__ring_deinit(&g);
    free(a);
    free(b);
    sim_free(s);
    free(s);
    pipeline__ring_deinit(&r);
    pipeline__ring_deinit(&back);
    pushed_free(&p);
}

static int count_entry(void *arg, int64_t ts, float score, uint8_t state, const float *pred)
{
    (void)ts, (void)score, (void)state, (void)pred;
    ++*(int *)arg;
    return 0;
}

/* A malformed block read back (truncated, longer, a wrong count, mode or width) is refused with
 * ERR_CORRUPT before any entry is reported; the intact block reads. */
static void test_ring_corrupt_block(void **state)
{
    (void)state;
    struct pred_ring r;
    pipeline__ring_init(&r, 1000, NCH, 0);
    float pred[NCH];
    for (int k = 0; k < 400; k++) {
        for (int c = 0; c < NCH; c++)
            pred[c] = (float)(k * c) * 0.5f;
        assert_int_equal(pipeline__ring_push(&r, 1000 * k, 0.25f, 1, pred), 0);
    }
    struct pred_block b;
    assert_int_equal(pipeline__ring_next(&r, &b), 1);
    unsigned char *buf = malloc(b.len + 16);
    assert_non_null(buf);
    int n = 0;
    memcpy(buf, b.bytes, b.len);
    assert_int_equal(pipeline__ring_block_each(buf, b.len, b.n, NCH, 0, count_entry, &n), 0);
    assert_int_equal(n, (int)b.n);
    n = 0;
    for (size_t cut = 0; cut < b.len; cut += 7) /* truncated anywhere */
        assert_int_equal(pipeline__ring_block_each(buf, cut, b.n, NCH, 0, count_entry, &n),
                         ERR_CORRUPT);
    assert_int_equal(pipeline__ring_block_each(buf, b.len + 16, b.n, NCH, 0, count_entry, &n),
                     ERR_CORRUPT);
    assert_int_equal(pipeline__ring_block_each(buf, b.len, b.n + 1, NCH, 0, count_entry, &n),
                     ERR_CORRUPT);
    assert_int_equal(pipeline__ring_block_each(buf, b.len, b.n, NCH - 1, 0, count_entry, &n),
                     ERR_CORRUPT);
    assert_int_equal(pipeline__ring_block_each(buf, b.len, b.n, 65, 0, count_entry, &n),
                     ERR_CORRUPT);
    buf[14] = 9; /* the timestamps' mode */
    assert_int_equal(pipeline__ring_block_each(buf, b.len, b.n, NCH, 0, count_entry, &n),
                     ERR_CORRUPT);
    buf[14] = b.bytes[14];
    memset(buf + 12, 0, 2); /* n = 0 */
    assert_int_equal(pipeline__ring_block_each(buf, b.len, 0, NCH, 0, count_entry, &n),
                     ERR_CORRUPT);
    memcpy(buf, b.bytes, b.len);
    /* A channel's width byte: the first channel's follows the header, ts, states and scores. */
    size_t w0 = 16 + (b.n + 3) / 4 + 4 * (size_t)b.n; /* regular timestamps: none stored */
    assert_true(buf[w0] == 0 || buf[w0] == 16 || buf[w0] == 32);
    buf[w0] = 8;
    assert_int_equal(pipeline__ring_block_each(buf, b.len, b.n, NCH, 0, count_entry, &n),
                     ERR_CORRUPT);
    assert_int_equal(n, 0);
    free(buf);
    pipeline__ring_deinit(&r);
}

/* The block size: an 8-channel block of regular timestamps fits three to a 4 KiB page with its
 * row's other bytes (at most 48 with its cell pointer: pipeline_ring.c), and is not needlessly
 * short; a block of 64 entries (schema 6's) would not fit so. Fewer channels keep 64, more never go
 * below the minimum. */
static void test_ring_block_size(void **state)
{
    (void)state;
    assert_int_equal(BLK, 60);
    assert_int_equal(pipeline__ring_block_len(1), PIPE_RING_BLOCK);
    assert_int_equal(pipeline__ring_block_len(7), PIPE_RING_BLOCK);
    assert_int_equal(pipeline__ring_block_len(64), PIPE_RING_BLOCK_MIN);
    struct pred_ring r;
    pipeline__ring_init(&r, 2000, NCH, 0);
    float pred[NCH];
    for (int k = 0; k < 1000; k++) {
        for (int c = 0; c < NCH; c++)
            pred[c] = 100.0f * c + (float)((k * 7919 + c * 104729) % 1000) * 0.01f;
        assert_int_equal(pipeline__ring_push(&r, 1764000000000 + 1000 * (int64_t)k, 0.5f, 1, pred),
                         0);
    }
    struct pred_block b;
    size_t blocks = 0;
    while (pipeline__ring_next(&r, &b)) {
        assert_int_equal(b.n, BLK);
        assert_true(8 + 3 * (48 + b.len) <= 4096);
        blocks++;
    }
    assert_true(blocks >= 10);
    /* 64 entries of the same channels: two to a page. */
    size_t len64 = 16 + 16 + 4 * 64 + NCH * (9 + 2 * 64);
    assert_true(8 + 3 * (48 + len64) > 4096);
    /* The tail sealed whole (exact values): two blocks to a page, three pages for 256 entries. */
    size_t tail = r.tail_len, exact = 0, exact_blocks = 0;
    assert_int_equal(tail, 1000 - 13 * BLK); /* sealed at pushes 257, 317, ..., 977 */
    assert_int_equal(pipeline__ring_seal_tail(&r), 0);
    while (pipeline__ring_next(&r, &b)) {
        assert_true(8 + 2 * (48 + b.len) <= 4096);
        exact += b.n;
        exact_blocks++;
    }
    assert_int_equal(exact, tail);
    assert_int_equal(exact_blocks, (tail + 51) / 52); /* 52 entries a block: 5, three pages */
    pipeline__ring_deinit(&r);
}

/* A block of schema 6 as its seal wrote it (64 entries, regular timestamps, 16-bit values),
 * encoded here from pipeline_ring.c's stated layout. */
static size_t old_block(unsigned char *out, const struct pushed *p, size_t k0, size_t n)
{
    unsigned char *w = out;
    int64_t ts0 = p->ts[k0];
    uint32_t dt = (uint32_t)(p->ts[k0 + 1] - p->ts[k0]);
    uint16_t n16 = (uint16_t)n;
    memcpy(w, &ts0, 8);
    memcpy(w + 8, &dt, 4);
    memcpy(w + 12, &n16, 2);
    w[14] = 0;
    w[15] = 0;
    w += 16;
    memset(w, 0, (n + 3) / 4);
    for (size_t k = 0; k < n; k++)
        w[k / 4] |= (unsigned char)((p->state[k0 + k] & 3u) << (2 * (k % 4)));
    w += (n + 3) / 4;
    for (size_t k = 0; k < n; k++, w += 4)
        memcpy(w, &p->score[k0 + k], 4);
    for (int c = 0; c < NCH; c++) { /* width 0 when constant, 32 with a non-finite value */
        float lo = INFINITY, hi = -INFINITY;
        int finite = 1;
        for (size_t k = 0; k < n; k++) {
            float v = p->pred[(k0 + k) * NCH + c];
            finite = finite && isfinite(v);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        const unsigned char width = !finite ? 32 : lo == hi ? 0 : 16;
        *w++ = width;
        memcpy(w, &lo, 4);
        memcpy(w + 4, &hi, 4);
        w += 8;
        for (size_t k = 0; k < n && width > 0; k++) {
            const float v = p->pred[(k0 + k) * NCH + c];
            if (width == 32) {
                memcpy(w, &v, 4);
                w += 4;
                continue;
            }
            uint16_t q = (uint16_t)round(((double)v - lo) / ((double)hi - lo) * 65535.0);
            memcpy(w, &q, 2);
            w += 2;
        }
    }
    return (size_t)(w - out);
}

/* After an upgrade: the stored blocks of 64 entries are adopted and answered (timestamps,
 * scores and states exactly, values within their bound), and the ring goes on with blocks of
 * the new size after them, the whole answering the newest cap entries in order. */
static void test_ring_old_blocks(void **state)
{
    (void)state;
    struct pushed p;
    pushed_seconds(&p, 1500, 1764000000000);
    struct sim *s = calloc(1, sizeof *s);
    struct got *g = malloc(sizeof *g);
    assert_non_null(s);
    assert_non_null(g);
    struct pred_ring r;
    pipeline__ring_init(&r, 1000, NCH, 0);
    for (int64_t q = 0; q < 10; q++) { /* 640 entries in schema 6's blocks */
        s->bytes[q] = malloc(16 + 16 + 4 * 64 + NCH * (9 + 4 * 64));
        assert_non_null(s->bytes[q]);
        s->len[q] = old_block(s->bytes[q], &p, 64 * (size_t)q, 64);
        s->n[q] = 64;
        assert_int_equal(pipeline__ring_adopt(&r, q, 64), 0);
    }
    assert_int_equal(pipeline__ring_len(&r), 640);
    float pred[NCH];
    for (size_t k = 640; k < p.n; k++) {
        memcpy(pred, p.pred + k * NCH, sizeof pred);
        assert_int_equal(pipeline__ring_push(&r, p.ts[k], p.score[k], p.state[k], pred), 0);
        sim_handoff(s, &r);
        sim_tx(s, &r, SIM_SEQ, 1);
    }
    read_all(s, &r, g);
    assert_int_equal(g->n, 1000);
    for (size_t i = 0; i < g->n; i++) {
        size_t k = p.n - 1000 + i;
        assert_true(g->ts[i] == p.ts[k]);
        assert_memory_equal(&g->score[i], &p.score[k], sizeof g->score[i]);
        assert_int_equal(g->state[i], p.state[k]);
        for (int c = 0; c < NCH; c++) { /* within the widest bound of the two block sizes */
            float lo = INFINITY, hi = -INFINITY;
            size_t b0 = k < 640 ? k / 64 * 64 : 640 + (k - 640) / BLK * BLK;
            size_t b1 = k < 640 ? b0 + 64 : b0 + BLK;
            for (size_t m = b0; m < b1 && m < p.n; m++) {
                float v = p.pred[m * NCH + c];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            float want = p.pred[k * NCH + c];
            if (!isfinite(want) || hi == lo) { /* its block keeps the channel exactly */
                assert_memory_equal(&g->pred[i][c], &want, sizeof want);
                continue;
            }
            double bound = ((double)hi - lo) / 131070.0 +
                           2 * (double)nextafterf(fabsf(want), INFINITY) - 2 * (double)fabsf(want);
            assert_true(fabs((double)g->pred[i][c] - want) <= bound);
        }
    }
    /* The entries from schema 6's blocks still answered: 1500 - 1000 = 500 < 640. */
    int64_t lo, hi;
    size_t skip;
    pipeline__ring_stored(&r, &lo, &hi, &skip);
    assert_true(lo <= 9);
    for (int64_t q = 10; q < r.seq_next; q++)
        if (s->bytes[q])
            assert_int_equal(s->n[q], BLK);
    free(g);
    sim_free(s);
    free(s);
    pipeline__ring_deinit(&r);
    pushed_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_newest_cap),    cmocka_unit_test(test_ring_every_length),
        cmocka_unit_test(test_ring_timestamps),    cmocka_unit_test(test_ring_stop_and_empty),
        cmocka_unit_test(test_ring_store_handoff), cmocka_unit_test(test_ring_seal_adopt),
        cmocka_unit_test(test_ring_corrupt_block), cmocka_unit_test(test_ring_block_size),
        cmocka_unit_test(test_ring_old_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/test_ring.c: unit tests of the prediction ring (daemon/pipeline_ring.c): it answers the
 * newest `cap` entries, oldest first, timestamps, scores and states exactly; the newest
 * PIPE_RING_TAIL - PIPE_RING_BLOCK predicted values exactly, older ones within their block's
 * stated bound (a channel's range over the block / 131,070, plus float rounding), constant and
 * non-finite channels exactly; any timestamps (regular, irregular, huge gaps, repeats). */
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
        /* Sealed: blocks are the pushed entries 64 by 64 from the first one pushed. */
        size_t b0 = k / PIPE_RING_BLOCK * PIPE_RING_BLOCK;
        float lo = INFINITY, hi = -INFINITY;
        int finite = 1;
        for (size_t m = b0; m < b0 + PIPE_RING_BLOCK; m++) {
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
    pushed_alloc(&p, 5000);
    for (size_t k = 0; k < p.n; k++)
        fill(&p, k, 1764000000000 + 1000 * (int64_t)k);
    struct pred_ring r;
    pipeline__ring_init(&r, 2000, NCH, 0);
    push_all(&r, &p);
    assert_int_equal(pipeline__ring_len(&r), 2000);
    struct check c = {.p = &p,
                      .first = 3000,
                      .block_bound = 1,
                      .exact_from = p.n - (PIPE_RING_TAIL - PIPE_RING_BLOCK)};
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
    pushed_alloc(&p, 1200);
    for (size_t k = 0; k < p.n; k++)
        fill(&p, k, 1000 * (int64_t)k);
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
                                  .exact_from = k + 1 > PIPE_RING_TAIL - PIPE_RING_BLOCK
                                                    ? k + 1 - (PIPE_RING_TAIL - PIPE_RING_BLOCK)
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
    struct check c = {.p = &p,
                      .first = 500,
                      .block_bound = 1,
                      .exact_from = p.n - (PIPE_RING_TAIL - PIPE_RING_BLOCK)};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_newest_cap),
        cmocka_unit_test(test_ring_every_length),
        cmocka_unit_test(test_ring_timestamps),
        cmocka_unit_test(test_ring_stop_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

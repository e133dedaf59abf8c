/* tests/test_daemon_pipeline.c: unit tests of the online pipeline's own pieces, without a store:
 * a device's silence as /metrics counts it (pipeline_silence), the overlap check of maintenance
 * periods (pipeline_maint_overlap), the seeded shard choice and its use when a batch is fed in
 * runs of one device's points (pipeline__feed_at), the seeded groups table and the walk over a
 * group's members (pipeline__group_next), the strict parse of a test hook's value
 * (pipeline__test_knob). Split from tests/test_daemon.c (ctest unit_daemon)
 * when that file neared 1,000 lines; run as unit_daemon_pipeline. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "log.h"
#include "pipeline.h"
#include "pipeline_events_int.h"
#include "pipeline_groups_int.h"
#include "pipeline_int.h"

/* pipeline_silence: the silence runs from the newest arrival, or from the start when none came
 * since; a bucket counts a silence strictly longer than its bound; a clock that went back gives
 * 0, never a negative age; counts accumulate over devices. */
static void test_silence(void **state)
{
    (void)state;
    const int64_t start = 1700000000000, now = start + 4000 * 1000;
    size_t silent[PIPELINE_SILENT_N] = {0};
    static const int after[PIPELINE_SILENT_N] = PIPELINE_SILENT_AFTER;
    assert_int_equal(after[0], 60);
    assert_int_equal(after[1], 300);
    assert_int_equal(after[2], 3600);
    /* Arrived a second ago: in no bucket. */
    assert_int_equal(pipeline_silence(now, now - 1000, start, silent), 1000);
    assert_int_equal(silent[0] + silent[1] + silent[2], 0);
    /* Exactly 60 s: not more than 60. One millisecond more: in the first bucket only. */
    assert_int_equal(pipeline_silence(now, now - 60000, start, silent), 60000);
    assert_int_equal(silent[0], 0);
    assert_int_equal(pipeline_silence(now, now - 60001, start, silent), 60001);
    assert_int_equal(silent[0], 1);
    assert_int_equal(silent[1], 0);
    /* 301 s: the first two. */
    (void)pipeline_silence(now, now - 301000, start, silent);
    assert_int_equal(silent[0], 2);
    assert_int_equal(silent[1], 1);
    assert_int_equal(silent[2], 0);
    /* None since the start (4,000 s ago): counted from the start, in all three. */
    assert_int_equal(pipeline_silence(now, -1, start, silent), 4000 * 1000);
    assert_int_equal(silent[0], 3);
    assert_int_equal(silent[1], 2);
    assert_int_equal(silent[2], 1);
    /* An arrival after the start counts from itself, not from the start. */
    assert_int_equal(pipeline_silence(now, start + 3990 * 1000, start, silent), 10000);
    assert_int_equal(silent[0], 3);
    /* The clock went back past the arrival: silent 0 ms, no bucket. */
    assert_int_equal(pipeline_silence(now, now + 5000, start, silent), 0);
    assert_int_equal(silent[0], 3);
    assert_int_equal(silent[1], 2);
    assert_int_equal(silent[2], 1);
}

/* pipeline_maint_overlap: half-open spans overlap when they share a moment (touching ones do
 * not), whichever starts first, one inside the other too; skip leaves one out (the current period
 * whose end moves); the first overlapping one is reported. */
static void test_maint_overlap(void **state)
{
    (void)state;
    const struct maint_span s[] = {{100, 200}, {200, 300}, {500, 600}};
    assert_int_equal(pipeline_maint_overlap(s, 3, (struct maint_span){0, 100}, -1), -1);
    assert_int_equal(pipeline_maint_overlap(s, 3, (struct maint_span){300, 500}, -1), -1);
    assert_int_equal(pipeline_maint_overlap(s, 3, (struct maint_span){600, 700}, -1), -1);
    assert_int_equal(pipeline_maint_overlap(s, 3, (struct maint_span){0, 101}, -1), 0);
    assert_int_equal(pipeline_maint_overlap(s, 3, (struct maint_span){199, 201}, -1), 0);
    assert_int_equal(pipeline_maint_overlap(s, 3, (struct maint_span){299, 501}, -1), 1);
    assert_int_equal(pipeline_maint_overlap(s, 3, (struct maint_span){520, 530}, -1), 2);
    assert_int_equal(pipeline_maint_overlap(s, 3, (struct maint_span){0, 1000}, -1), 0);
    assert_int_equal(pipeline_maint_overlap(s, 3, (struct maint_span){599, 1000}, -1), 2);
    /* The second period's end moved to 450: only itself is in the way, and skipped. */
    assert_int_equal(pipeline_maint_overlap(s, 3, (struct maint_span){200, 450}, 1), -1);
    assert_int_equal(pipeline_maint_overlap(s, 3, (struct maint_span){200, 501}, 1), 2);
    assert_int_equal(pipeline_maint_overlap(s, 3, (struct maint_span){150, 450}, 1), 0);
    assert_int_equal(pipeline_maint_overlap(s, 0, (struct maint_span){0, 1000}, -1), -1);
}

/* The pipeline's shard choice on the pipeline itself (test_common's test_nameidx_seeded_shards
 * checks a copy of the scheme): 512 device names that the old unseeded choice (32-bit FNV-1a
 * modulo 8) put all on shard 0 are fed to a pipeline of 8 shards. Their devices spread over
 * every shard (d->shard), and each device's points were scored on its d->shard: its channel
 * list (d->chl, made by the shard that scored its second point) is the one list of that shard's
 * index. Fails with pipeline__dev_k or pipeline__feed_at back on the unseeded hash (checked: per[s]
 * and cl->count fail). */
static uint32_t old_shard_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* Adds a point of device name at ts with one field, v = value. */
static void add_v(batch_t *b, const char *name, int64_t ts, double value)
{
    assert_int_equal(batch_point_begin(b, name, strlen(name), ts, 0), 0);
    assert_int_equal(batch_field_add(b, "v", 1, value), 0);
    assert_int_equal(batch_point_commit(b), 1);
}

/* Every device of these tests has the channels {v}: its channel list (d->chl, made by the shard
 * that scored its second point) is the one list of its shard's index. */
static void assert_shard_chlist(const pipeline_t *p, const struct dev *d)
{
    const nameidx_t *cl = &p->shards[d->shard].chlists;
    assert_int_equal(cl->count, 1);
    const void *only = NULL;
    for (size_t s = 0; s <= cl->mask; s++)
        if (cl->slots[s].item)
            only = cl->slots[s].item;
    assert_ptr_equal(d->chl, only);
}

static void test_pipeline_shards_seeded(void **state)
{
    (void)state;
    enum { N = 512, SHARDS = 8 };
    static char names[N][24];
    int found = 0;
    for (int t = 0; found < N && t < (1 << 20); t++) {
        int len = snprintf(names[found], sizeof names[found], "pump-%d", t);
        if (old_shard_hash(names[found], (size_t)len) % SHARDS == 0)
            found++;
    }
    assert_int_equal(found, N);
    pipeline_opts_t o;
    pipeline_opts_default(&o);
    o.workers = SHARDS;
    pipeline_t *p = NULL;
    assert_int_equal(pipeline_create(&p, &o, NULL), 0);
    assert_int_equal(p->nshards, SHARDS);
    batch_t b;
    batch_init(&b);
    for (int k = 0; k < 2; k++) /* the second point of a device attaches its channel list */
        for (int i = 0; i < N; i++)
            add_v(&b, names[i], 1000 + k * 1000, 1.0);
    pipeline_feed(p, &b);
    pipeline_drain(p);
    batch_deinit(&b);
    int per[SHARDS] = {0};
    for (int i = 0; i < N; i++) {
        struct dev *d = pipeline__find(p, names[i]);
        assert_non_null(d);
        assert_true(d->shard >= 0 && d->shard < SHARDS);
        per[d->shard]++;
        assert_shard_chlist(p, d);
    }
    for (int s = 0; s < SHARDS; s++)
        assert_true(per[s] >= 24); /* 64 on average; below 24: a chance under 1e-9 a shard */
    pipeline_destroy(p);
}

/* pipeline__feed_at hashes a name once per run of one device's points (the scan for one shard,
 * then the split): a batch of runs (each device's points one after another, the first run
 * before the first point of another shard) still sends every point to its device's d->shard.
 * Each device's 3 points are scored (last_ts, scored) and its channel list is its shard's. */
static void test_pipeline_feed_runs(void **state)
{
    (void)state;
    enum { N = 64, SHARDS = 4, RUN = 3 };
    pipeline_opts_t o;
    pipeline_opts_default(&o);
    o.workers = SHARDS;
    pipeline_t *p = NULL;
    assert_int_equal(pipeline_create(&p, &o, NULL), 0);
    batch_t b;
    batch_init(&b);
    char name[24];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < RUN; k++) {
            snprintf(name, sizeof name, "run-%d", i);
            add_v(&b, name, 1000 + k * 1000, (double)k);
        }
    pipeline_feed(p, &b);
    pipeline_drain(p);
    batch_deinit(&b);
    int per[SHARDS] = {0};
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "run-%d", i);
        struct dev *d = pipeline__find(p, name);
        assert_non_null(d);
        per[d->shard]++;
        assert_int_equal(d->last_ts, 1000 * RUN);
        assert_int_equal(d->scored, RUN);
        assert_shard_chlist(p, d);
    }
    int used = 0;
    for (int s = 0; s < SHARDS; s++)
        used += per[s] > 0;
    assert_true(used >= 2); /* the split path ran (all on one shard: a chance of 4^-63) */

    /* Review: points interleaving the devices (runs of one point: every point after the split
     * is hashed again), RUN rounds over all N; each device's points still reach its shard. */
    batch_init(&b);
    for (int k = 0; k < RUN; k++)
        for (int i = 0; i < N; i++) {
            snprintf(name, sizeof name, "run-%d", i);
            add_v(&b, name, 1000 * RUN + 1000 + k * 1000, (double)k);
        }
    pipeline_feed(p, &b);
    pipeline_drain(p);
    batch_deinit(&b);
    /* A batch moved whole to one shard (two devices of one shard, interleaved). */
    struct dev *one[2] = {NULL, NULL};
    for (int i = 0; i < N && one[1] == NULL; i++) {
        snprintf(name, sizeof name, "run-%d", i);
        struct dev *d = pipeline__find(p, name);
        if (one[0] == NULL)
            one[0] = d;
        else if (d->shard == one[0]->shard)
            one[1] = d;
    }
    assert_non_null(one[1]); /* 63 others, each on one[0]'s shard with chance 1/4 */
    batch_init(&b);
    for (int k = 0; k < RUN; k++)
        for (int j = 0; j < 2; j++)
            add_v(&b, one[j]->name, 1000 * 2 * RUN + 1000 + k * 1000, (double)k);
    pipeline_feed(p, &b);
    assert_int_equal(b.npoints, 0); /* moved into the shard's message, not copied */
    pipeline_drain(p);
    batch_deinit(&b);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "run-%d", i);
        struct dev *d = pipeline__find(p, name);
        int moved = d == one[0] || d == one[1];
        assert_int_equal(d->last_ts, 1000 * (moved ? 3 : 2) * RUN);
        assert_int_equal(d->scored, (moved ? 3 : 2) * RUN);
        assert_shard_chlist(p, d);
    }
    pipeline_destroy(p);
}

/* The groups table (pipeline_train.c, uthash) buckets group names by p->idx's seeded key: 256
 * names brute-forced so uthash's unseeded Jenkins hash agrees in its low 12 bits (one chain of
 * 256 with it) each get one group of their own, found again by name, and no bucket chain is long
 * (random hashes: at most 18 for 256 names in 200,000 trials; the bound is 32). */
static void test_groups_seeded(void **state)
{
    (void)state;
    enum { N = 256, BITS = 12 };
    static char names[N][24];
    static struct group *g[N];
    unsigned want = 0;
    int found = 0;
    for (int t = 0; found < N && t < (1 << 24); t++) {
        int len = snprintf(names[found], sizeof names[found], "g%d", t);
        unsigned hv;
        HASH_VALUE(names[found], (unsigned)len, hv);
        if (found == 0)
            want = hv & ((1u << BITS) - 1);
        if ((hv & ((1u << BITS) - 1)) == want)
            found++;
    }
    assert_int_equal(found, N);
    pipeline_opts_t o;
    pipeline_opts_default(&o);
    pipeline_t *p = NULL;
    assert_int_equal(pipeline_create(&p, &o, NULL), 0);
    for (int i = 0; i < N; i++) {
        g[i] = pipeline__group(p, names[i]);
        assert_non_null(g[i]);
        assert_string_equal(g[i]->name, names[i]);
    }
    for (int i = 0; i < N; i++)
        assert_ptr_equal(pipeline__group(p, names[i]), g[i]);
    assert_int_equal(HASH_COUNT(p->groups), N);
    unsigned most = 0;
    for (unsigned i = 0; i < p->groups->hh.tbl->num_buckets; i++)
        if (p->groups->hh.tbl->buckets[i].count > most)
            most = p->groups->hh.tbl->buckets[i].count;
    assert_true(most <= 32);
    pipeline_destroy(p);
}

/* pipeline__group_next (train_next's end, out of memory for its copy of g's members) sees every
 * device in g throughout the walk, whatever leaves or joins meanwhile, and ends (review, session
 * 57): standing on w1, w1 leaves g and joins again (at the list's end now); standing on w3, w0
 * (before it) leaves for good. The walk as first written went on after the member it stood on,
 * wherever that was: from w1's new place at the end it ended, w2-w5 never seen. */
static void test_group_walk(void **state)
{
    (void)state;
    enum { N = 6 };
    pipeline_opts_t o;
    pipeline_opts_default(&o);
    pipeline_t *p = NULL;
    assert_int_equal(pipeline_create(&p, &o, NULL), 0);
    struct group *g = pipeline__group(p, "walk"), *away = pipeline__group(p, "away");
    assert_non_null(g);
    assert_non_null(away);
    struct dev *d[N];
    for (int i = 0; i < N; i++) {
        char name[8];
        snprintf(name, sizeof name, "w%d", i);
        d[i] = pipeline__dev(p, name);
        assert_non_null(d[i]);
        assert_int_equal(pipeline__group_move(p, d[i], g), 0);
    }
    int seen[N] = {0}, steps = 0;
    struct group_walk w = {0};
    for (struct dev *e; (e = pipeline__group_next(p, g, &w)) != NULL;) {
        assert_true(++steps <= 4 * N);
        for (int i = 0; i < N; i++)
            seen[i] += e == d[i];
        if (e == d[1] && seen[1] == 1) {
            assert_int_equal(pipeline__group_move(p, d[1], away), 0);
            assert_int_equal(pipeline__group_move(p, d[1], g), 0);
        } else if (e == d[3] && seen[3] == 1) {
            assert_int_equal(pipeline__group_move(p, d[0], away), 0);
        }
    }
    for (int i = 1; i < N; i++)
        assert_true(seen[i] >= 1);
    /* The second reader's case (session 57): on b at index 1 of [a, b, c], a and b leave and b
     * joins again: [c, b], b at index 1 again. Going on from there skipped c. */
    struct group *g3 = pipeline__group(p, "walk3");
    assert_non_null(g3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pipeline__group_move(p, d[i], g3), 0);
    int seen3[3] = {0};
    struct group_walk w3 = {0};
    steps = 0;
    for (struct dev *e; (e = pipeline__group_next(p, g3, &w3)) != NULL;) {
        assert_true(++steps <= 12);
        for (int i = 0; i < 3; i++)
            seen3[i] += e == d[i];
        if (e == d[1] && seen3[1] == 1) {
            assert_int_equal(pipeline__group_move(p, d[0], away), 0);
            assert_int_equal(pipeline__group_move(p, d[1], away), 0);
            assert_int_equal(pipeline__group_move(p, d[1], g3), 0);
        }
    }
    assert_true(seen3[1] >= 1);
    assert_true(seen3[2] >= 1);
    pipeline_destroy(p);
}

/* ---- pipeline__group_next's restart rule, one case each (session 59) ------------------------
 * The walk goes on from the member it stood on while g->left is unchanged (joins only append),
 * else back to the start. Each case walks a real group of devices w0.. and checks the exact
 * order of the visits, so a walk that skips a member, or sees one twice where the rule says it
 * goes on, fails. A hook at each step changes the group under the walk. */
enum { WALK_MAX = 8, WALK_STEPS = 4 * WALK_MAX };

struct walk_fx {
    pipeline_t *p;
    struct group *g, *away; /* the walked group; a group to leave to */
    struct dev *d[WALK_MAX];
    int n; /* devices made: d[0..n-1] */
};

/* A pipeline with n devices w0..w(n-1): the first `in` join g in that order, the rest "away". */
static void walk_fx_init(struct walk_fx *f, int n, int in)
{
    assert_true(n <= WALK_MAX && in <= n);
    memset(f, 0, sizeof *f);
    pipeline_opts_t o;
    pipeline_opts_default(&o);
    assert_int_equal(pipeline_create(&f->p, &o, NULL), 0);
    f->g = pipeline__group(f->p, "walk");
    f->away = pipeline__group(f->p, "away");
    assert_non_null(f->g);
    assert_non_null(f->away);
    f->n = n;
    for (int i = 0; i < n; i++) {
        char name[16]; /* "w" and an int: room for any, so -Wformat-truncation stays quiet */
        snprintf(name, sizeof name, "w%d", i);
        f->d[i] = pipeline__dev(f->p, name);
        assert_non_null(f->d[i]);
        assert_int_equal(pipeline__group_move(f->p, f->d[i], i < in ? f->g : f->away), 0);
    }
}

/* Called with the index (in f->d) of the member the walk stands on and how many times the walk
 * has stood on it (1 the first time). */
typedef void walk_hook_fn(struct walk_fx *f, int k, int nth);

/* Walks f->g to its end, writing the index of each member visited to order[] (room for
 * WALK_STEPS; a walk longer than that fails the test). Returns the number of steps. */
static int walk_order(struct walk_fx *f, int *order, walk_hook_fn *hook)
{
    int seen[WALK_MAX] = {0}, steps = 0;
    struct group_walk w = {0};
    for (struct dev *e; (e = pipeline__group_next(f->p, f->g, &w)) != NULL;) {
        assert_true(steps < WALK_STEPS);
        int k = -1;
        for (int i = 0; i < f->n; i++)
            if (e == f->d[i])
                k = i;
        assert_true(k >= 0);
        order[steps++] = k;
        if (hook)
            hook(f, k, ++seen[k]);
    }
    assert_null(w.at); /* the walk stands past the end */
    return steps;
}

/* The visits were exactly want[0..nwant-1] (the first difference is printed). */
static void assert_order(const int *got, int ngot, const int *want, int nwant)
{
    for (int i = 0; i < ngot || i < nwant; i++)
        if (i >= ngot || i >= nwant || got[i] != want[i]) {
            print_error("visit %d: got member %d, want %d (k: w<k>; -1: the walk's end)\n", i,
                        i < ngot ? got[i] : -1, i < nwant ? want[i] : -1);
            fail();
        }
}

/* A group of `in` of n devices walked with hook; the visits must be exactly want[0..nwant-1]. */
static void walk_case(int n, int in, walk_hook_fn *hook, const int *want, int nwant)
{
    struct walk_fx f;
    walk_fx_init(&f, n, in);
    int order[WALK_STEPS];
    assert_order(order, walk_order(&f, order, hook), want, nwant);
    pipeline_destroy(f.p);
}

/* (a) Nothing changes: w0..w4 once each, in order, then NULL. */
static void test_group_walk_plain(void **state)
{
    (void)state;
    const int want[] = {0, 1, 2, 3, 4};
    walk_case(5, 5, NULL, want, 5);
}

/* On w2 the first time, w0 (before it) leaves g for good. */
static void leave_before(struct walk_fx *f, int k, int nth)
{
    if (k == 2 && nth == 1)
        assert_int_equal(pipeline__group_move(f->p, f->d[0], f->away), 0);
}

/* (b) [w0 w1 w2 w3 w4], on w2 w0 leaves: [w1 w2 w3 w4], w3 now at w2's old index. The walk
 * starts again: w1 w2 w3 w4, w0 not again. Going on at the old index + 1 skips w3. */
static void test_group_walk_leave_before(void **state)
{
    (void)state;
    const int want[] = {0, 1, 2, 1, 2, 3, 4};
    walk_case(5, 5, leave_before, want, 7);
}

/* On w1 the first time, w1 leaves g and joins it again (at the end). */
static void leave_rejoin(struct walk_fx *f, int k, int nth)
{
    if (k == 1 && nth == 1) {
        assert_int_equal(pipeline__group_move(f->p, f->d[1], f->away), 0);
        assert_int_equal(pipeline__group_move(f->p, f->d[1], f->g), 0);
    }
}

/* (c) [w0 w1 w2 w3], on w1 it leaves and joins again: [w0 w2 w3 w1]. The walk starts again:
 * w0 w2 w3 w1. Going on at the old index + 1 skips w2; going on after w1's new place (looking
 * for w->at) ends at once, w2 and w3 unseen. */
static void test_group_walk_leave_rejoin(void **state)
{
    (void)state;
    const int want[] = {0, 1, 0, 2, 3, 1};
    walk_case(4, 4, leave_rejoin, want, 6);
}

/* On w1, w3 (in "away") joins g: "away" loses a member, g loses none. */
static void join(struct walk_fx *f, int k, int nth)
{
    if (k == 1 && nth == 1)
        assert_int_equal(pipeline__group_move(f->p, f->d[3], f->g), 0);
}

/* (d) [w0 w1 w2], on w1 w3 joins from another group: [w0 w1 w2 w3]. Nobody moved, so the walk
 * goes on: w2 w3, each member once. A walk that restarts on a join (or on a leave from another
 * group) sees w0 and w1 twice. */
static void test_group_walk_join(void **state)
{
    (void)state;
    const int want[] = {0, 1, 2, 3};
    walk_case(4, 3, join, want, 4);
}

/* What is logged between said_begin and said_end (stderr, sent to a temporary file). */
struct said {
    FILE *f;
    int saved;
};

static void said_begin(struct said *s)
{
    s->f = tmpfile();
    assert_non_null(s->f);
    fflush(stderr);
    s->saved = dup(STDERR_FILENO);
    assert_true(s->saved >= 0);
    assert_true(dup2(fileno(s->f), STDERR_FILENO) >= 0);
}

/* Puts stderr back and what was logged since said_begin in said (n bytes, NUL-terminated). */
static void said_end(struct said *s, char *said, size_t n)
{
    fflush(stderr);
    assert_true(dup2(s->saved, STDERR_FILENO) >= 0);
    close(s->saved);
    rewind(s->f);
    const size_t got = fread(said, 1, n - 1, s->f);
    said[got] = '\0';
    fclose(s->f);
}

/* pipeline__test_knob with name set to value (NULL: unset) and bound max: its result, and in
 * said what it logged. */
static long long knob_max_said(const char *value, long long max, char *said, size_t n)
{
    static const char name[] = "VIGIL_TEST_UNIT_KNOB";
    if (value != NULL)
        assert_int_equal(setenv(name, value, 1), 0);
    else
        assert_int_equal(unsetenv(name), 0);
    struct said s;
    said_begin(&s);
    const long long x = pipeline__test_knob(name, max, "a unit test's knob");
    said_end(&s, said, n);
    assert_int_equal(unsetenv(name), 0);
    return x;
}

/* knob_max_said with a bound no test value reaches. */
static long long knob_said(const char *value, char *said, size_t n)
{
    return knob_max_said(value, LLONG_MAX, said, n);
}

/* Task stop63: a test hook's value is digits only, making a positive number; strtoll alone
 * took a leading blank or "+" (" 3000", "+3000" as 3000) and "-5" or "0" silently as unset.
 * Any other value is ignored (0: the knob's default) with a warning naming it; unset or empty
 * is 0 without a word; a value taken is said with what it does. */
static void test_knob_strict(void **state)
{
    (void)state;
    char said[512];
    log_set_level(LOG_LEVEL_INFO);
    assert_int_equal(knob_said("3000", said, sizeof said), 3000);
    assert_non_null(strstr(said, "VIGIL_TEST_UNIT_KNOB is 3000 (a test hook): a unit test's knob"));
    assert_int_equal(knob_said("007", said, sizeof said), 7);
    assert_int_equal(knob_said(NULL, said, sizeof said), 0);
    assert_string_equal(said, "");
    assert_int_equal(knob_said("", said, sizeof said), 0);
    assert_string_equal(said, "");
    static const char *const refused[] = {" 3000", "\t3000", "+3000", "-5",   "-0", "0",
                                          "3000 ", "3000ms", "3e3",   "0x10", "x"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char want[128];
        snprintf(want, sizeof want,
                 "VIGIL_TEST_UNIT_KNOB is \"%s\" (a test hook): not a positive whole number "
                 "(digits only), ignored",
                 refused[i]);
        assert_int_equal(knob_said(refused[i], said, sizeof said), 0);
        if (strstr(said, want) == NULL)
            fail_msg("%s: logged \"%s\"", refused[i], said);
    }
}

/* Review read64b: every knob was bounded at LLONG_MAX, and VIGIL_TEST_ARRIVALS_MS at
 * 9223372036854775807 made pass_begin's "now + period" overflow (UBSan: signed integer
 * overflow). Each knob has its own bound (a day in ms for the periods, PIPE_KNOB_MS_MAX); a
 * value above it is ignored with a warning that says so, not "not a positive whole number". */
static void test_knob_bounded(void **state)
{
    (void)state;
    char said[512];
    log_set_level(LOG_LEVEL_INFO);
    assert_int_equal(knob_max_said("86400000", PIPE_KNOB_MS_MAX, said, sizeof said), 86400000);
    static const char *const above[] = {"86400001", "9223372036854775807", "9223372036854775808",
                                        "99999999999999999999999"};
    for (size_t i = 0; i < sizeof above / sizeof above[0]; i++) {
        char want[128];
        snprintf(want, sizeof want,
                 "VIGIL_TEST_UNIT_KNOB is \"%s\" (a test hook): above 86400000, ignored", above[i]);
        assert_int_equal(knob_max_said(above[i], PIPE_KNOB_MS_MAX, said, sizeof said), 0);
        if (strstr(said, want) == NULL)
            fail_msg("%s: logged \"%s\"", above[i], said);
    }
    assert_int_equal(knob_max_said("1000001", PIPE_KNOB_COUNT_MAX, said, sizeof said), 0);
    assert_non_null(strstr(said, "above 1000000, ignored"));
}

/* The pipeline, device and event the episode lines below are said of: static, zeroed, the
 * device aligned as its type wants; only what the lines read is set. */
static struct pipeline ev_pipe[2];
static struct dev ev_dev;
static struct event ev;

/* n ends of ended_by, ids from id, of ev_dev's episodes, said through p. */
static void ends(pipeline_t *p, int ended_by, uint64_t id, int n)
{
    ev.ended_by = ended_by;
    for (int i = 0; i < n; i++) {
        ev.id = id + (uint64_t)i;
        pipeline__event_log_end(p, &ev_dev, &ev);
    }
}

/* read67a's finding 4: one limit of 10 lines a minute served every episode end, taken before
 * the level was known. At log.level = warn the unprinted "cleared" ends used it up, and the
 * warn "accepted automatically" end after them was only counted; at info a flapping fleet's
 * cleared ends pushed it out alike. Now a line below the level takes nothing, and the ends the
 * detector made by itself have their own limit. */
static void test_evlog_level(void **state)
{
    (void)state;
    char said[8192];
    struct said s;
    static char fleet[] = "fleet-1";
    ev_dev.name = fleet;
    atomic_store(&ev_pipe[0].events_logged, 1);
    atomic_store(&ev_pipe[1].events_logged, 1);
    log_set_level(LOG_LEVEL_WARN);
    said_begin(&s);
    ends(&ev_pipe[0], DET_END_CLEARED, 1, 2 * PIPE_EVLOG_BURST);
    ends(&ev_pipe[0], DET_END_ACCEPTED, 100, 1);
    said_end(&s, said, sizeof said);
    if (strstr(said, "event 100 ended: accepted automatically (") == NULL ||
        strstr(said, "more since") != NULL || strstr(said, "cleared") != NULL)
        fail_msg("at warn, logged \"%s\"", said);
    log_set_level(LOG_LEVEL_INFO);
    said_begin(&s);
    ends(&ev_pipe[1], DET_END_CLEARED, 1, 2 * PIPE_EVLOG_BURST);
    ends(&ev_pipe[1], DET_END_RELEASED, 200, 1);
    said_end(&s, said, sizeof said);
    if (strstr(said, "event 10 ended: cleared") == NULL ||
        strstr(said, "event 11 ended: cleared") != NULL ||
        strstr(said, "event 200 ended: released automatically (") == NULL)
        fail_msg("at info, logged \"%s\"", said);
}

/* Whether s is valid UTF-8 (lead bytes followed by their continuation bytes). */
static int utf8_whole(const char *s)
{
    for (const unsigned char *u = (const unsigned char *)s; *u;) {
        const int n = *u < 0x80 ? 1 : *u >= 0xF0 ? 4 : *u >= 0xE0 ? 3 : *u >= 0xC2 ? 2 : 0;
        if (n == 0)
            return 0;
        for (int k = 1; k < n; k++)
            if ((u[k] & 0xC0) != 0x80)
                return 0;
        u += n;
    }
    return 1;
}

/* read67a's finding 6: an opening's line names up to 3 channels in 256 bytes; a name that did
 * not fit was cut by snprintf wherever the room ended, in the middle of a UTF-8 character
 * ("ä" is 2 bytes: 24 and a half of them). Now it is cut between two characters and ends in
 * "…"; the names after it are left out. */
static void test_evlog_open_utf8(void **state)
{
    (void)state;
    char said[4096], name[BATCH_NAME_MAX + 1] = "";
    for (int i = 0; i < BATCH_NAME_MAX / 2; i++)
        strcat(name, "\xc3\xa4"); /* ä */
    struct pipeline *p = &ev_pipe[0];
    ev_dev.nch = 3;
    for (int c = 0; c < 3; c++) {
        ev_dev.ch[c] = name;
        ev.share[c] = (float)(3 - c);
    }
    log_set_level(LOG_LEVEL_INFO);
    struct said s;
    said_begin(&s);
    pipeline__event_log_open(p, &ev_dev, &ev);
    said_end(&s, said, sizeof said);
    ev_dev.nch = 0;
    if (!utf8_whole(said) || strstr(said, "\xc3\xa4 50%, \xc3\xa4") == NULL ||
        strstr(said, "\xc3\xa4\xe2\x80\xa6 33%)") == NULL)
        fail_msg("logged \"%s\"", said);
}

/* The review of ops68: a shard keeps the lines it says while scoring until it has let the device
 * go; an end another thread said in that moment (an operator's accept) was written before the
 * opening the shard still kept. Here the test is the shard between its unlock and its write,
 * and a thread ends the episode: its line waits for the shard's turn (struct evlog_lines.mu). */
struct say_end {
    pipeline_t *p;
    struct dev *d;
    atomic_int done;
};

static void *say_end_main(void *arg)
{
    struct say_end *a = arg;
    pthread_mutex_lock(&a->d->mu);
    pipeline__evlog_say(a->p, a->d, LOG_LEVEL_WARN, "anomaly: device 'turn-1': event 7 ended");
    pthread_mutex_unlock(&a->d->mu);
    atomic_store(&a->done, 1);
    return NULL;
}

static void test_evlog_turn(void **state)
{
    (void)state;
    pipeline_opts_t o;
    pipeline_opts_default(&o);
    struct say_end a = {.done = 0};
    assert_int_equal(pipeline_create(&a.p, &o, NULL), 0);
    a.d = pipeline__dev(a.p, "turn-1");
    assert_non_null(a.d);
    struct evlog_lines *l = &a.p->shards[a.d->shard].lines;
    log_set_level(LOG_LEVEL_INFO);
    char said[4096];
    struct said s;
    said_begin(&s);
    pthread_mutex_lock(&a.d->mu);
    a.d->log_to = l; /* score_point's */
    pipeline__evlog_say(a.p, a.d, LOG_LEVEL_INFO, "anomaly: device 'turn-1': event 7 opened");
    a.d->log_to = NULL;
    assert_int_equal(pipeline__evlog_hold(l), 1);
    pthread_mutex_unlock(&a.d->mu);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, say_end_main, &a), 0);
    usleep(200 * 1000);
    const int early = atomic_load(&a.done);
    pipeline__evlog_write(l);
    pthread_join(t, NULL);
    said_end(&s, said, sizeof said);
    pipeline_destroy(a.p);
    const char *opened = strstr(said, "event 7 opened"), *ended = strstr(said, "event 7 ended");
    if (early || opened == NULL || ended == NULL || ended < opened)
        fail_msg("the end written %s: \"%s\"", early ? "during the shard's turn" : "out of order",
                 said);
}

/* The same review: pipeline__evlog_say formatted into 2,046 bytes, so log_msg's "(a line of N
 * bytes, cut)" of a longer line said 2,045. */
static void test_evlog_long_line(void **state)
{
    (void)state;
    static char big[3001];
    memset(big, 'x', sizeof big - 1);
    log_set_level(LOG_LEVEL_INFO);
    char said[4096];
    struct said s;
    said_begin(&s);
    pipeline__evlog_say(&ev_pipe[0], &ev_dev, LOG_LEVEL_INFO, "anomaly: %s", big);
    said_end(&s, said, sizeof said);
    if (strstr(said, "... (a line of 3009 bytes, cut)\n") == NULL)
        fail_msg("logged \"%.80s...%s\"", said, said + (strlen(said) > 80 ? strlen(said) - 80 : 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silence),
        cmocka_unit_test(test_maint_overlap),
        cmocka_unit_test(test_pipeline_shards_seeded),
        cmocka_unit_test(test_pipeline_feed_runs),
        cmocka_unit_test(test_groups_seeded),
        cmocka_unit_test(test_group_walk),
        cmocka_unit_test(test_group_walk_plain),
        cmocka_unit_test(test_group_walk_leave_before),
        cmocka_unit_test(test_group_walk_leave_rejoin),
        cmocka_unit_test(test_group_walk_join),
        cmocka_unit_test(test_knob_strict),
        cmocka_unit_test(test_knob_bounded),
        cmocka_unit_test(test_evlog_level),
        cmocka_unit_test(test_evlog_open_utf8),
        cmocka_unit_test(test_evlog_turn),
        cmocka_unit_test(test_evlog_long_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

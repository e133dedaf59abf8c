/* tests/test_common.c: unit tests of common/ (timestamps, durations, bucket aggregates, batches,
 * the name index, monotonic condition variables). */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "agg.h"
#include "batch.h"
#include "err.h"
#include "mcond.h"
#include "nameidx.h"
#include "nice.h"
#include "sbuf.h"
#include "vtime.h"

static void test_rfc3339(void **state)
{
    int64_t ms;
    const char *s = "2026-11-28T10:00:00.123Z";
    assert_int_equal(vtime_parse_rfc3339(s, strlen(s), &ms), 0);
    assert_int_equal(ms, 1795860000123LL);
    s = "2026-11-28T12:00:00.123456+02:00";
    assert_int_equal(vtime_parse_rfc3339(s, strlen(s), &ms), 0);
    assert_int_equal(ms, 1795860000123LL);
    s = "1970-01-01T00:00:00Z";
    assert_int_equal(vtime_parse_rfc3339(s, strlen(s), &ms), 0);
    assert_int_equal(ms, 0);
    s = "2024-02-29T00:00:00.5Z";
    assert_int_equal(vtime_parse_rfc3339(s, strlen(s), &ms), 0);
    assert_int_equal(ms % 1000, 500);
    const char *bad[] = {"2023-02-29T00:00:00Z",     "2026-13-01T00:00:00Z",  "2026-11-28T10:00:00",
                         "2026-11-28T25:00:00Z",     "2026-11-28T10:00:00.Z", "2026-11-28",
                         "2026-11-28T10:00:00Zjunk", "1969-12-31T23:59:59Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(vtime_parse_rfc3339(bad[i], strlen(bad[i]), &ms), ERR_INVAL);
}

static void test_format_roundtrip(void **state)
{
    char buf[32];
    int64_t ms;
    for (int64_t t = 0; t < VTIME_MAX_MS; t = t * 3 + 7919) {
        vtime_format(t, buf, sizeof buf);
        assert_int_equal(vtime_parse(buf, &ms), 0);
        assert_int_equal(ms, t);
    }
    assert_int_equal(vtime_parse("1732780800123", &ms), 0);
    assert_int_equal(ms, 1732780800123LL);
    assert_int_equal(vtime_parse("12abc", &ms), ERR_INVAL);
    assert_int_equal(vtime_parse("-5", &ms), ERR_INVAL);
}

static void test_duration(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {{"0", 0},
                {"1", 1},
                {"60000", 60000},
                {"250ms", 250},
                {"1s", 1000},
                {"90s", 90000},
                {"1m", 60000},
                {"2h", 7200000},
                {"30d", 2592000000LL},
                {"1w", 604800000},
                {"366d", 31622400000LL},
                {"9223372036854775807ms", INT64_MAX}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        assert_int_equal(vtime_parse_duration(good[i].s, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    static const char *const bad[] = {"",
                                      "-1",
                                      "+1",
                                      " 1",
                                      "1 s",
                                      "1.5s",
                                      "1x",
                                      "s",
                                      "ms",
                                      "1S",
                                      "1ms ",
                                      "1sec",
                                      "1mss",
                                      "0x10",
                                      "9223372036854775808",
                                      "9223372036854775807s",
                                      "15250284453w"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        assert_int_equal(vtime_parse_duration(bad[i], &ms), ERR_INVAL);
        assert_int_equal(ms, 42);
    }
    assert_int_equal(vtime_parse_duration(NULL, &(int64_t){0}), ERR_INVAL);
}

static void test_agg_bucket_start(void **state)
{
    (void)state;
    assert_int_equal(agg_bucket_start(1500, 1000), 1000);
    assert_int_equal(agg_bucket_start(1000, 1000), 1000);
    assert_int_equal(agg_bucket_start(999, 1000), 0);
    assert_int_equal(agg_bucket_start(0, 7), 0);
    assert_int_equal(agg_bucket_start(13, 7), 7);
    assert_int_equal(agg_bucket_start(14, 7), 14);
    assert_int_equal(agg_bucket_start(-1, 1000), -1000);
    assert_int_equal(agg_bucket_start(-1000, 1000), -1000);
    /* 2024-11-28T08:00:59.999Z in minutes and days (UTC midnight). */
    assert_int_equal(agg_bucket_start(1732780859999LL, 60000), 1732780800000LL);
    assert_int_equal(agg_bucket_start(1732780859999LL, 86400000), 1732752000000LL);
}

static void test_agg_values(void **state)
{
    (void)state;
    agg_t a;
    agg_reset(&a);
    assert_int_equal(a.count, 0);
    assert_true(isnan(agg_mean(&a)));
    /* Added out of time order (as a descending read does): last is the newest one's. */
    static const double v[] = {3.5, -1.25, 8.0, 0.5};
    static const int64_t ts[] = {40, 30, 10, 20};
    for (int i = 0; i < 4; i++)
        agg_add(&a, ts[i], v[i]);
    assert_int_equal(a.count, 4);
    assert_true(a.min == -1.25 && a.max == 8.0 && a.last == 3.5);
    assert_true(agg_mean(&a) == 10.75 / 4);
    /* The first of two values at the newest timestamp stays last. */
    agg_add(&a, 40, 99.0);
    assert_true(a.last == 3.5);
    agg_reset(&a);
    agg_add(&a, 1, 0.1);
    agg_add(&a, 2, 0.2);
    assert_true(agg_mean(&a) == (0.1 + 0.2) / 2);
}

/* The compensated sum keeps what a plain double sum loses: 1e16 + 1 is 1e16 in double, so a
 * plain sum of 1e16, a million ones and -1e16 is 0; the exact one is 1e6. */
static void test_agg_compensated(void **state)
{
    (void)state;
    agg_t a;
    agg_reset(&a);
    double plain = 0;
    agg_add(&a, 0, 1e16);
    plain += 1e16;
    for (int i = 1; i <= 1000000; i++) {
        agg_add(&a, i, 1.0);
        plain += 1.0;
    }
    agg_add(&a, 1000001, -1e16);
    plain += -1e16;
    assert_true(plain == 0.0); /* the loss this guards against is real */
    assert_true(agg_mean(&a) == 1e6 / 1000002.0);
    /* A sum beyond DBL_MAX is kept scaled and the mean is still exact. */
    agg_reset(&a);
    agg_add(&a, 0, DBL_MAX);
    agg_add(&a, 1, DBL_MAX);
    agg_add(&a, 2, -DBL_MAX);
    assert_true(agg_mean(&a) == DBL_MAX / 3);
    agg_reset(&a);
    for (int i = 0; i < 4; i++)
        agg_add(&a, i, -DBL_MAX);
    assert_true(agg_mean(&a) == -DBL_MAX);
}

static void test_batch(void **state)
{
    batch_t b;
    batch_init(&b);
    assert_int_equal(batch_point_begin(&b, "pump-7", 6, 1000, 0), 0);
    assert_int_equal(batch_field_add(&b, "temp", 4, 71.2), 0);
    assert_int_equal(batch_field_add(&b, "vib", 3, 0.031), 0);
    assert_int_equal(batch_field_add(&b, "temp", 4, 72.5), 0); /* last value wins */
    assert_int_equal(batch_point_commit(&b), 1);
    /* An aborted point leaves nothing behind. */
    assert_int_equal(batch_point_begin(&b, "pump-8", 6, 2000, 1), 0);
    assert_int_equal(batch_field_add(&b, "x", 1, 1.0), 0);
    batch_point_abort(&b);
    /* A point without fields is dropped. */
    assert_int_equal(batch_point_begin(&b, "pump-9", 6, 3000, 2), 0);
    assert_int_equal(batch_point_commit(&b), 0);
    assert_int_equal(b.npoints, 1);
    assert_int_equal(b.nfields, 2);
    assert_string_equal(batch_str(&b, b.points[0].device), "pump-7");
    assert_string_equal(batch_str(&b, b.fields[0].name), "temp");
    assert_true(b.fields[0].value == 72.5);
    assert_int_equal(b.str_len, strlen("pump-7temp vib") + 2);
    const char *why;
    assert_int_equal(batch_name_check("a\nb", 3, &why), ERR_INVAL);
    assert_int_equal(batch_name_check("", 0, &why), ERR_INVAL);
    assert_int_equal(batch_name_check("pump 7/a=b", 10, &why), 0);
    /* UTF-8: accepted when valid, refused when not (overlong, surrogate, truncated, stray). */
    assert_int_equal(batch_name_check("Pumpe-\xc3\xa4\xe2\x82\xac\xf0\x9f\x94\xa7", 15, &why), 0);
    const char *bad_utf8[] = {"a\xff",    "\xc0\xaf", "\xed\xa0\x80",
                              "\xe2\x82", "\x80x",    "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        assert_int_equal(batch_name_check(bad_utf8[i], strlen(bad_utf8[i]), &why), ERR_INVAL);
        assert_string_equal(why, "is not valid UTF-8");
    }
    batch_deinit(&b);
    batch_deinit(NULL);
}

/* batch_points_filter's test: refuses the points whose timestamp is odd (in seconds), and
 * records the indexes it was asked about. */
struct seen {
    size_t idx[8], n;
};

static int even_second(void *arg, const batch_point_t *p, size_t i)
{
    struct seen *s = arg;
    s->idx[s->n++] = i;
    return (p->ts_ms / 1000) % 2 == 0;
}

/* Points 1..4 of five (point 0 before first stays whatever its time); points 1 and 3 have odd
 * seconds: removed, the others keep their order, their fields (one, two, three of them) and
 * their values, packed in order. */
static void test_batch_filter(void **state)
{
    (void)state;
    batch_t b;
    batch_init(&b);
    const int64_t ts[5] = {1000, 3000, 4000, 5000, 6000};
    char name[8];
    for (int k = 0; k < 5; k++) {
        assert_int_equal(batch_point_begin(&b, "dev", 3, ts[k], (uint32_t)(10 + k)), 0);
        for (int f = 0; f <= k % 3; f++) {
            int len = snprintf(name, sizeof name, "c%d", f);
            assert_int_equal(batch_field_add(&b, name, (size_t)len, 100.0 * k + f), 0);
        }
        assert_int_equal(batch_point_commit(&b), 1);
    }
    assert_int_equal(b.nfields, 1 + 2 + 3 + 1 + 2);
    struct seen s = {.n = 0};
    assert_int_equal(batch_points_filter(&b, 1, even_second, &s), 2);
    assert_int_equal(s.n, 4);
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(s.idx[i], i + 1);
    assert_int_equal(b.npoints, 3);
    assert_int_equal(b.nfields, 1 + 3 + 2);
    const uint32_t item[3] = {10, 12, 14}, nf[3] = {1, 3, 2};
    for (size_t i = 0, f0 = 0; i < 3; i++) {
        assert_int_equal(b.points[i].item, item[i]);
        assert_int_equal(b.points[i].nfields, nf[i]);
        assert_int_equal(b.points[i].field0, f0);
        for (uint32_t f = 0; f < nf[i]; f++)
            assert_true(b.fields[f0 + f].value == 100.0 * (item[i] - 10) + f);
        f0 += nf[i];
    }
    /* Nothing from first on: nothing asked, nothing removed. */
    s.n = 0;
    assert_int_equal(batch_points_filter(&b, 3, even_second, &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(b.npoints, 3);
    assert_int_equal(b.nfields, 6);
    batch_deinit(&b);
}

/* A thread's nice value is set before thread_create_niced returns, without waiting for the
 * thread to run its function (it is held on a mutex meanwhile). */
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static void *held_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&held);
    pthread_mutex_unlock(&held);
    return NULL;
}

/* How many of this process's threads have nice value n (from /proc/self/task/<tid>/stat). */
static int threads_at_nice(int n)
{
    DIR *dir = opendir("/proc/self/task");
    assert_non_null(dir);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        const char *p = strrchr(buf, ')'); /* fields after the command name; nice is the 17th */
        assert_non_null(p);
        p++;
        for (int field = 0; field < 16 && p; field++)
            p = strchr(p + 1, ' ');
        assert_non_null(p);
        count += atoi(p + 1) == n;
    }
    closedir(dir);
    return count;
}

static void test_thread_create_niced(void **state)
{
    (void)state;
    int base = getpriority(PRIO_PROCESS, 0);
    int n = base <= 16 ? 3 : 19 - base; /* nice stops at 19 */
    if (n == 0)
        fail_msg("the test runs at nice 19: no higher value to check");
    int before = threads_at_nice(base + n);
    pthread_t t[3];
    pthread_mutex_lock(&held);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(thread_create_niced(&t[i], n, held_main, NULL), 0);
        assert_int_equal(threads_at_nice(base + n), before + i + 1);
    }
    pthread_mutex_unlock(&held);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(getpriority(PRIO_PROCESS, 0), base); /* the caller's is unchanged */
}

/* An item of the name index tests: its name inline. */
struct named {
    size_t len;
    char name[24];
};

static int named_same(const void *item, const char *name, size_t len)
{
    const struct named *n = item;
    return n->len == len && memcmp(n->name, name, len) == 0;
}

static struct named *named_find(const nameidx_t *x, const char *name)
{
    size_t len = strlen(name);
    return nameidx_find_key(x, nameidx_key(x, name, len), name, len, named_same);
}

static nameidx_key_t named_key(const nameidx_t *x, const struct named *n)
{
    return nameidx_key(x, n->name, n->len);
}

/* The public hash the unseeded API took (nameidx_hash, removed in session 28): FNV-1a from FNV's
 * own start, then the finalizer; what a client can compute, so the tests brute-force collision
 * sets with it. */
static uint64_t public_hash(const char *name, size_t len)
{
    return nameidx_hash_seeded(0xcbf29ce484222325ULL, name, len);
}

/* Every slot's entry is reachable from its home slot: no empty slot lies between them (the
 * index's invariant, which backward-shift deletion keeps), and the load stays at most 1/2. */
static void assert_probe_chains(const nameidx_t *x)
{
    size_t used = 0;
    for (size_t i = 0; x->slots && i <= x->mask; i++) {
        if (x->slots[i].item == NULL)
            continue;
        used++;
        for (size_t j = (size_t)x->slots[i].hash & x->mask; j != i; j = (j + 1) & x->mask)
            assert_non_null(x->slots[j].item);
    }
    assert_int_equal(used, x->count);
    if (x->slots)
        assert_true(x->count * 2 <= x->mask + 1);
}

/* The name index: every added item is found by its name and no other, a removed one is not
 * found, removals in any order keep the rest reachable, and items added back are found again. */
/* nameidx_free's item function in the test: counts, and marks the item (len) so a second
 * call for the same item fails. */
static int freed;

static void count_freed(void *item)
{
    struct named *n = item;
    assert_true(n->len != (size_t)-1);
    n->len = (size_t)-1;
    freed++;
}

static void test_nameidx(void **state)
{
    (void)state;
    enum { N = 5000 };
    struct named *it = calloc(N, sizeof *it);
    assert_non_null(it);
    for (int i = 0; i < N; i++)
        it[i].len = (size_t)snprintf(it[i].name, sizeof it[i].name, "dev-%d", i);
    /* An index never seeded (all zero) finds nothing and refuses to add. */
    nameidx_t x = {0};
    assert_null(named_find(&x, "dev-0"));
    assert_int_equal(nameidx_add_key(&x, named_key(&x, &it[0]), &it[0]), ERR_INVAL);
    assert_int_equal(x.count, 0);
    assert_null(x.slots);
    assert_int_equal(nameidx_init_seeded(&x), 0);
    assert_null(named_find(&x, "dev-0"));
    assert_null(nameidx_peek_key(&x, named_key(&x, &it[0])));
    nameidx_del_key(&x, named_key(&x, &it[0]), &it[0]); /* empty: no-op */
    for (int i = 0; i < N; i++)
        assert_int_equal(nameidx_add_key(&x, named_key(&x, &it[i]), &it[i]), 0);
    assert_int_equal(x.count, N);
    assert_probe_chains(&x);
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(named_find(&x, it[i].name), &it[i]);
        assert_ptr_equal(nameidx_peek_key(&x, named_key(&x, &it[i])), &it[i]);
    }
    /* A prefix or an extension of a name is another name. */
    assert_null(named_find(&x, "dev-"));
    assert_null(named_find(&x, "dev-10000"));
    assert_null(named_find(&x, "dev-12x"));
    /* Remove two thirds, in an order unrelated to the slots; a second removal is a no-op. */
    for (int k = 0; k < N; k++) {
        int i = (int)(((unsigned)k * 7919u) % N);
        if (i % 3 != 0)
            nameidx_del_key(&x, named_key(&x, &it[i]), &it[i]);
    }
    nameidx_del_key(&x, named_key(&x, &it[1]), &it[1]);
    assert_int_equal(x.count, (N + 2) / 3);
    assert_probe_chains(&x);
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0)
            assert_ptr_equal(named_find(&x, it[i].name), &it[i]);
        else
            assert_null(named_find(&x, it[i].name));
    }
    for (int i = 0; i < N; i++)
        if (i % 3 != 0)
            assert_int_equal(nameidx_add_key(&x, named_key(&x, &it[i]), &it[i]), 0);
    assert_probe_chains(&x);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(named_find(&x, it[i].name), &it[i]);
    nameidx_deinit(&x);
    assert_null(x.slots);
    assert_int_equal(x.count, 0);
    assert_null(named_find(&x, "dev-1"));
    /* nameidx_free hands every item to its free function once, then empties the index. */
    for (int i = 0; i < N; i++)
        assert_int_equal(nameidx_add_key(&x, named_key(&x, &it[i]), &it[i]), 0);
    freed = 0;
    nameidx_free(&x, count_freed);
    assert_int_equal(freed, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(it[i].len, (size_t)-1); /* each marked once (count_freed) */
    assert_null(x.slots);
    assert_int_equal(x.count, 0);
    free(it);
}

/* Items whose keys collide (one key of x's seed given for different names, as if their hashes
 * were equal) are told apart by their names, and deleting one in the middle of a probe chain
 * keeps the later ones reachable. */
static void test_nameidx_collisions(void **state)
{
    (void)state;
    struct named it[6];
    nameidx_t x;
    assert_int_equal(nameidx_init_seeded(&x), 0);
    const nameidx_key_t k = {42, x.seed}; /* all share one home slot and one hash */
    for (int i = 0; i < 6; i++) {
        it[i].len = (size_t)snprintf(it[i].name, sizeof it[i].name, "c%d", i);
        assert_int_equal(nameidx_add_key(&x, k, &it[i]), 0);
    }
    for (int i = 0; i < 6; i++)
        assert_ptr_equal(nameidx_find_key(&x, k, it[i].name, it[i].len, named_same), &it[i]);
    assert_null(nameidx_find_key(&x, k, "c9", 2, named_same));
    nameidx_del_key(&x, k, &it[2]);
    nameidx_del_key(&x, k, &it[0]);
    assert_int_equal(x.count, 4);
    assert_probe_chains(&x);
    for (int i = 0; i < 6; i++)
        if (i == 0 || i == 2)
            assert_null(nameidx_find_key(&x, k, it[i].name, it[i].len, named_same));
        else
            assert_ptr_equal(nameidx_find_key(&x, k, it[i].name, it[i].len, named_same), &it[i]);
    nameidx_deinit(&x);
}

/* Per home slot, how many items live there, the most (*most) and the sum of every item's
 * distance from its home slot (the probes a lookup of each makes beyond the first). */
static size_t chain_cost(const nameidx_t *x, size_t *most)
{
    size_t *per = calloc(x->mask + 1, sizeof *per), sum = 0;
    assert_non_null(per);
    *most = 0;
    for (size_t i = 0; i <= x->mask; i++) {
        if (x->slots[i].item == NULL)
            continue;
        size_t home = (size_t)x->slots[i].hash & x->mask;
        sum += (i - home) & x->mask;
        if (++per[home] > *most)
            *most = per[home];
    }
    free(per);
    return sum;
}

/* Seeded indexes: each draws its own seed, hashes names itself (nameidx_key) and refuses a key
 * of another seed and a key of seed 0 (a bare public hash), so a caller cannot look up with the
 * wrong one; and names brute-forced to share a home slot under the public hash (what a client
 * could send as device names) spread out in a seeded index, where an index given the public
 * hashes (u: its own seed, but keys made from public_hash) keeps them in one chain. */
static void test_nameidx_seeded(void **state)
{
    (void)state;
    enum { N = 256, BITS = 12, TRIES = 1 << 24 };
    struct named *it = calloc(N, sizeof *it);
    assert_non_null(it);
    nameidx_t x, y, u;
    assert_int_equal(nameidx_init_seeded(&x), 0); /* getrandom works here: no fallback */
    assert_int_equal(nameidx_init_seeded(&y), 0);
    assert_int_equal(nameidx_init_seeded(&u), 0);
    assert_true(x.seed != 0 && y.seed != 0 && x.seed != y.seed);

    /* The collision set: N names whose public hashes agree in their low BITS bits, so they
     * share one home slot in any index of up to 2^BITS slots hashing them publicly. Bounded
     * search (about N << BITS names are tried). */
    const uint64_t want = public_hash("n0", 2) & ((1u << BITS) - 1);
    int found = 0;
    for (int t = 0; found < N && t < TRIES; t++) {
        char name[24];
        size_t len = (size_t)snprintf(name, sizeof name, "n%d", t);
        if ((public_hash(name, len) & ((1u << BITS) - 1)) == want) {
            memcpy(it[found].name, name, len + 1);
            it[found++].len = len;
        }
    }
    assert_int_equal(found, N);

    for (int i = 0; i < N; i++) {
        nameidx_key_t pub = {public_hash(it[i].name, it[i].len), u.seed};
        assert_int_equal(nameidx_add_key(&u, pub, &it[i]), 0);
        assert_int_equal(nameidx_add_key(&x, nameidx_key(&x, it[i].name, it[i].len), &it[i]), 0);
    }
    size_t most_u, most_x;
    size_t cost_u = chain_cost(&u, &most_u), cost_x = chain_cost(&x, &most_x);
    assert_int_equal(most_u, N); /* public hashes: one chain of all N, probes 0 + ... + N-1 */
    assert_int_equal(cost_u, (size_t)N * (N - 1) / 2);
    /* Seeded, at load 1/2: N names in 2N slots share a home slot a few at a time (more than 8
     * has a chance below 1e-5) and a lookup probes 1.5 slots on average (bound: 8 per name). */
    assert_true(most_x <= 8);
    assert_true(cost_x <= (size_t)N * 8);
    assert_probe_chains(&x);

    /* Lookups work, by key; the same name's key differs between the two seeded indexes. */
    for (int i = 0; i < N; i++) {
        nameidx_key_t k = nameidx_key(&x, it[i].name, it[i].len);
        assert_ptr_equal(nameidx_find_key(&x, k, it[i].name, it[i].len, named_same), &it[i]);
        assert_ptr_equal(nameidx_peek_key(&x, k), &it[i]);
        nameidx_key_t pub = {public_hash(it[i].name, it[i].len), u.seed};
        assert_ptr_equal(nameidx_find_key(&u, pub, it[i].name, it[i].len, named_same), &it[i]);
    }
    assert_null(nameidx_find_key(&x, nameidx_key(&x, "n-none", 6), "n-none", 6, named_same));
    nameidx_key_t kx = nameidx_key(&x, it[0].name, it[0].len);
    nameidx_key_t ky = nameidx_key(&y, it[0].name, it[0].len);
    assert_true(kx.h != ky.h);

    /* The wrong seed is refused: y's key and a bare public hash (a key of seed 0) find nothing
     * in x, add nothing and remove nothing; x's key adds nothing to y. */
    assert_int_equal(nameidx_add_key(&y, ky, &it[0]), 0);
    assert_null(nameidx_find_key(&x, ky, it[0].name, it[0].len, named_same));
    assert_null(nameidx_peek_key(&x, ky));
    const nameidx_key_t bare = {public_hash(it[0].name, it[0].len), 0};
    assert_null(nameidx_find_key(&x, bare, it[0].name, it[0].len, named_same));
    assert_null(nameidx_peek_key(&x, bare));
    assert_int_equal(nameidx_add_key(&x, bare, &it[0]), ERR_INVAL);
    assert_int_equal(nameidx_add_key(&y, kx, &it[1]), ERR_INVAL);
    nameidx_del_key(&x, bare, &it[0]);
    nameidx_del_key(&x, ky, &it[0]);
    assert_int_equal(x.count, N);
    assert_ptr_equal(nameidx_find_key(&x, kx, it[0].name, it[0].len, named_same), &it[0]);
    nameidx_del_key(&x, kx, &it[0]);
    assert_int_equal(x.count, N - 1);
    assert_null(nameidx_find_key(&x, kx, it[0].name, it[0].len, named_same));

    /* deinit keeps the seed: the emptied index is the same seeded index. */
    uint64_t seed = x.seed;
    nameidx_deinit(&x);
    assert_true(x.seed == seed);
    assert_int_equal(nameidx_add_key(&x, kx, &it[0]), 0);
    assert_ptr_equal(nameidx_find_key(&x, kx, it[0].name, it[0].len, named_same), &it[0]);
    nameidx_deinit(&x);
    nameidx_deinit(&y);
    nameidx_deinit(&u);
    free(it);
}

/* The pipeline's shard choice (pipeline.c's shard_of_key: the high half of the name's key in the
 * seeded device index, modulo the shards), checked here on the scheme itself (the pipeline
 * itself: test_daemon.c's test_pipeline_shards_seeded): names
 * brute-forced so that the old unseeded choice (32-bit FNV-1a modulo the shards) puts all of
 * them on one shard spread over every shard with a seeded key, one name keeps one shard for the
 * index's life, and another index (another pipeline) places them differently. */
static uint32_t fnv1a32(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int shard_of_key(nameidx_key_t k, uint32_t nshards)
{
    return (int)((uint32_t)(k.h >> 32) % nshards);
}

static void test_nameidx_seeded_shards(void **state)
{
    (void)state;
    enum { N = 512, SHARDS = 8, TRIES = 1 << 20 };
    struct named *it = calloc(N, sizeof *it);
    assert_non_null(it);
    int found = 0;
    for (int t = 0; found < N && t < TRIES; t++) {
        char name[24];
        size_t len = (size_t)snprintf(name, sizeof name, "pump-%d", t);
        if (fnv1a32(name, len) % SHARDS == 0) { /* the old choice: shard 0 for all */
            memcpy(it[found].name, name, len + 1);
            it[found++].len = len;
        }
    }
    assert_int_equal(found, N);
    nameidx_t x, y;
    assert_int_equal(nameidx_init_seeded(&x), 0);
    assert_int_equal(nameidx_init_seeded(&y), 0);
    int per[SHARDS] = {0}, moved = 0;
    for (int i = 0; i < N; i++) {
        int s = shard_of_key(nameidx_key(&x, it[i].name, it[i].len), SHARDS);
        assert_int_equal(s, shard_of_key(nameidx_key(&x, it[i].name, it[i].len), SHARDS));
        per[s]++;
        moved += s != shard_of_key(nameidx_key(&y, it[i].name, it[i].len), SHARDS);
    }
    /* 64 a shard on average; below 24 has a chance under 1e-9 per shard. */
    for (int s = 0; s < SHARDS; s++)
        assert_true(per[s] >= 24);
    assert_true(moved >= N / 2); /* 7/8 move on average */
    free(it);
}

/* mcond_add_ms carries whole seconds out of tv_nsec: the result is normalised (tv_nsec in
 * [0, 1e9)) whatever the milliseconds, and equals the sum counted in nanoseconds. */
static void test_mcond_add_ms(void **state)
{
    (void)state;
    const long nsecs[] = {0, 1, 999999, 500000000, 999000000, 999999999};
    const int64_t msecs[] = {0, 1, 999, 1000, 1001, 1500, 86400123, INT64_C(1) << 40};
    for (size_t i = 0; i < sizeof nsecs / sizeof nsecs[0]; i++) {
        for (size_t j = 0; j < sizeof msecs / sizeof msecs[0]; j++) {
            struct timespec ts = {.tv_sec = 100, .tv_nsec = nsecs[i]};
            mcond_add_ms(&ts, msecs[j]);
            assert_in_range(ts.tv_nsec, 0, 999999999);
            /* 100 s + nsec + ms, as (seconds, nanoseconds) without overflow at 2^40 ms */
            int64_t want_ns = nsecs[i] + (msecs[j] % 1000) * 1000000;
            int64_t want_s = 100 + msecs[j] / 1000 + want_ns / 1000000000;
            assert_int_equal(ts.tv_sec, want_s);
            assert_int_equal(ts.tv_nsec, want_ns % 1000000000);
        }
    }
    struct timespec ts = {.tv_sec = 7, .tv_nsec = 999999999};
    mcond_add_ms(&ts, 1);
    assert_int_equal(ts.tv_sec, 8);
    assert_int_equal(ts.tv_nsec, 999999);
}

/* vtime_mono_s is vtime_mono_ms's clock in seconds (the durations notify.c, writer.c and
 * retention.c log): read between two vtime_mono_ms readings, it lies between them (ms truncate,
 * so the upper bound takes one more ms). */
static void test_vtime_mono_s(void **state)
{
    (void)state;
    int64_t before = vtime_mono_ms();
    double s = vtime_mono_s();
    int64_t after = vtime_mono_ms();
    assert_true((double)before <= s * 1000.0 && s * 1000.0 < (double)(after + 1));
}

/* mcond_deadline is on CLOCK_MONOTONIC (between the monotonic time before the call and after
 * it, plus ms; a negative ms counts as 0), and a condition variable of mcond_init times out at
 * it: pthread_cond_timedwait on a CLOCK_REALTIME variable would take that monotonic deadline as
 * a time decades ago and return ETIMEDOUT at once too, so the wait's end is checked on the
 * monotonic clock. */
static void test_mcond_deadline(void **state)
{
    (void)state;
    const int64_t ms = 20;
    struct timespec t0, dl, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mcond_deadline(&dl, ms);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    mcond_add_ms(&t0, ms);
    mcond_add_ms(&t1, ms);
    int64_t lo = t0.tv_sec * INT64_C(1000000000) + t0.tv_nsec;
    int64_t hi = t1.tv_sec * INT64_C(1000000000) + t1.tv_nsec;
    int64_t at = dl.tv_sec * INT64_C(1000000000) + dl.tv_nsec;
    assert_true(lo <= at && at <= hi);

    struct timespec neg;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mcond_deadline(&neg, -5000);
    assert_true(neg.tv_sec > t0.tv_sec || (neg.tv_sec == t0.tv_sec && neg.tv_nsec >= t0.tv_nsec));

    pthread_cond_t cv;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    assert_int_equal(mcond_init(&cv), 0);
    pthread_mutex_lock(&mu);
    mcond_deadline(&dl, ms);
    int rc;
    while ((rc = pthread_cond_timedwait(&cv, &mu, &dl)) == 0)
        ; /* a spurious wake-up: wait on */
    pthread_mutex_unlock(&mu);
    assert_int_equal(rc, ETIMEDOUT);
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    assert_true(end.tv_sec > dl.tv_sec || (end.tv_sec == dl.tv_sec && end.tv_nsec >= dl.tv_nsec));
    pthread_cond_destroy(&cv);
    pthread_mutex_destroy(&mu);
}
/* A reference for a point's fields, built the obvious way: channel ids in first-seen order, a
 * repeated id overwriting the value in place (what batch_field_add promised before it had a
 * hash table), with pos[id] = 1 + its index (0: not seen) so the reference stays fast. Names
 * are "ch<id>" with a suffix of (id % 5) 'x's, so lengths vary. */
struct ref_point {
    uint32_t *id;
    double *value;
    size_t n, cap;
    size_t *pos;
    size_t pos_cap;
};

static int ref_name(char *buf, size_t size, uint32_t id)
{
    return snprintf(buf, size, "ch%u%.*s", id, (int)(id % 5), "xxxx");
}

static void ref_add(struct ref_point *r, uint32_t id, double value)
{
    if (id >= r->pos_cap) {
        size_t cap = r->pos_cap ? r->pos_cap : 64;
        while (cap <= id)
            cap *= 2;
        r->pos = realloc(r->pos, cap * sizeof *r->pos);
        assert_non_null(r->pos);
        memset(r->pos + r->pos_cap, 0, (cap - r->pos_cap) * sizeof *r->pos);
        r->pos_cap = cap;
    }
    if (r->pos[id] != 0) {
        r->value[r->pos[id] - 1] = value;
        return;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->id = realloc(r->id, r->cap * sizeof *r->id);
        r->value = realloc(r->value, r->cap * sizeof *r->value);
        assert_non_null(r->id);
        assert_non_null(r->value);
    }
    r->id[r->n] = id;
    r->value[r->n++] = value;
    r->pos[id] = r->n;
}

/* Adds one field to the open point and to the reference. */
static void both_add(batch_t *b, struct ref_point *r, uint32_t id, double value)
{
    char name[32];
    int len = ref_name(name, sizeof name, id);
    assert_int_equal(batch_field_add(b, name, (size_t)len, value), 0);
    ref_add(r, id, value);
}

/* Point i of the batch has exactly the reference's fields: same names, order and values. */
static void check_point(const batch_t *b, size_t i, const struct ref_point *r)
{
    char name[32];
    const batch_point_t *p = &b->points[i];
    assert_int_equal(p->nfields, r->n);
    for (size_t k = 0; k < r->n; k++) {
        const batch_field_t *f = &b->fields[p->field0 + k];
        int len = ref_name(name, sizeof name, r->id[k]);
        assert_int_equal(f->name_len, (uint32_t)len);
        assert_string_equal(batch_str(b, f->name), name);
        assert_true(f->value == r->value[k]);
    }
}

static void ref_free(struct ref_point *r)
{
    free(r->id);
    free(r->value);
    free(r->pos);
    memset(r, 0, sizeof *r);
}

/* A point with 50,000 distinct channels, then 30,000 more fields that mostly repeat earlier
 * ones (every 7th a new channel): the last value wins at the first position, in order, exactly
 * as the reference's linear version has it. */
static void test_batch_wide_point(void **state)
{
    (void)state;
    batch_t b;
    batch_init(&b);
    struct ref_point r = {0};
    assert_int_equal(batch_point_begin(&b, "wide", 4, 1000, 0), 0);
    for (uint32_t i = 0; i < 50000; i++)
        both_add(&b, &r, i, (double)i);
    for (uint32_t j = 0; j < 30000; j++) {
        uint32_t id = j % 7 == 0 ? 50000 + j : (j * 7919u) % 50000;
        both_add(&b, &r, id, 1e6 + j);
    }
    assert_int_equal(r.n, 50000 + (30000 + 6) / 7);
    assert_int_equal(batch_point_commit(&b), 1);
    assert_int_equal(b.npoints, 1);
    assert_int_equal(b.nfields, r.n);
    check_point(&b, 0, &r);
    ref_free(&r);
    batch_deinit(&b);
}

/* An aborted wide point leaves nothing behind, its names included: the next point (begun
 * explicitly, or implicitly by a begin over an open point) sees the same names as new, and a
 * repeat within it updates its own field, not one of the dropped point's. */
static void test_batch_wide_abort(void **state)
{
    (void)state;
    batch_t b;
    batch_init(&b);
    struct ref_point r0 = {0}, r1 = {0}, dropped = {0};
    assert_int_equal(batch_point_begin(&b, "a", 1, 1000, 0), 0);
    for (uint32_t i = 0; i < 20; i++)
        both_add(&b, &r0, i, (double)i);
    assert_int_equal(batch_point_commit(&b), 1);
    size_t str_len = b.str_len;

    assert_int_equal(batch_point_begin(&b, "b", 1, 2000, 1), 0);
    for (uint32_t i = 0; i < 1000; i++)
        both_add(&b, &dropped, i, -1.0);
    batch_point_abort(&b);
    assert_int_equal(b.npoints, 1);
    assert_int_equal(b.nfields, 20);
    assert_int_equal(b.str_len, str_len);

    /* Begin over an open wide point drops it too. */
    assert_int_equal(batch_point_begin(&b, "c", 1, 3000, 2), 0);
    for (uint32_t i = 500; i < 700; i++)
        both_add(&b, &dropped, i, -2.0);
    assert_int_equal(batch_point_begin(&b, "d", 1, 4000, 3), 0);
    for (uint32_t i = 0; i < 40; i++)
        both_add(&b, &r1, 1000 - i, (double)i); /* names the dropped points had */
    both_add(&b, &r1, 990, 99.0);               /* a repeat of this point's 11th field */
    both_add(&b, &r1, 3, 98.0);                 /* a name only the dropped points had here */
    assert_int_equal(batch_point_commit(&b), 1);

    /* A wide point with no fields left is dropped whole; the batch stays as it was. */
    assert_int_equal(batch_point_begin(&b, "e", 1, 5000, 4), 0);
    assert_int_equal(batch_point_commit(&b), 0);

    assert_int_equal(b.npoints, 2);
    assert_int_equal(b.nfields, r0.n + r1.n);
    check_point(&b, 0, &r0);
    check_point(&b, 1, &r1);
    assert_string_equal(batch_str(&b, b.points[1].device), "d");
    ref_free(&r0);
    ref_free(&r1);
    ref_free(&dropped);
    batch_deinit(&b);
}

/* Many points alternating small and large (1 to 2,000 channels, across the size where the
 * names start being indexed), each with repeats drawn at random among its own channels, some
 * points aborted, the batch reset halfway: every kept point matches its reference. */
static void test_batch_mixed_points(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {3, 40, 1, 17, 2000, 16, 5, 300, 15, 64, 2, 1000};
    enum { NPOINTS = 120 };
    batch_t b;
    batch_init(&b);
    struct ref_point *r = calloc(NPOINTS, sizeof *r);
    assert_non_null(r);
    uint32_t rng = 12345;
    size_t kept = 0;
    for (size_t k = 0; k < NPOINTS; k++) {
        if (k == NPOINTS / 2) {
            for (size_t i = 0; i < kept; i++)
                check_point(&b, i, &r[i]);
            for (size_t i = 0; i < kept; i++)
                ref_free(&r[i]);
            batch_reset(&b);
            kept = 0;
        }
        uint32_t n = sizes[k % (sizeof sizes / sizeof *sizes)];
        assert_int_equal(batch_point_begin(&b, "dev", 3, (int64_t)k, (uint32_t)k), 0);
        /* 2n adds over n channel ids (offset per point so points differ): about n distinct. */
        for (uint32_t j = 0; j < 2 * n; j++) {
            rng = rng * 1103515245u + 12345u;
            both_add(&b, &r[kept], (uint32_t)k * 7 + (rng >> 8) % n, (double)(k * 100000 + j));
        }
        if (k % 9 == 4) {
            batch_point_abort(&b);
            ref_free(&r[kept]);
            continue;
        }
        assert_int_equal(batch_point_commit(&b), 1);
        kept++;
    }
    assert_int_equal(b.npoints, kept);
    size_t nf = 0;
    for (size_t i = 0; i < kept; i++) {
        assert_int_equal(b.points[i].field0, nf);
        check_point(&b, i, &r[i]);
        nf += r[i].n;
    }
    assert_int_equal(b.nfields, nf);
    for (size_t i = 0; i < kept; i++)
        ref_free(&r[i]);
    free(r);
    batch_deinit(&b);
}

/* Names chosen so that FNV-1a (offset basis 2166136261, the unseeded hash) of each has its low 14
 * bits zero: a client can make such names in a second. With the table's slot taken from those
 * bits, 8,000 of them share one home slot and form one run of occupied slots, so each add
 * probes (and compares) every earlier name: the quadratic cost the table is there to remove.
 * The hash is seeded per table and mixed, so their slots spread: the longest run of occupied
 * slots stays short (no timing: the table is read directly). */
static void test_batch_wide_crafted_names(void **state)
{
    (void)state;
    static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    enum { N = 8000 };
    batch_t b;
    batch_init(&b);
    assert_int_equal(batch_point_begin(&b, "d", 1, 1000, 0), 0);
    uint64_t rng = 88172645463325252ull;
    char name[9];
    for (int made = 0; made < N;) {
        for (int i = 0; i < 7; i++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            name[i] = al[rng % 62];
        }
        uint32_t h = 2166136261u;
        for (int i = 0; i < 7; i++)
            h = (h ^ (unsigned char)name[i]) * 16777619u;
        /* (h ^ last) * P has its low 14 bits zero when h's low 14 bits are the last byte's. */
        if ((h & 0x3F00) != 0 || (h & 0xFF) == 0 || strchr(al, (int)(h & 0xFF)) == NULL)
            continue;
        name[7] = (char)(h & 0xFF);
        name[8] = '\0';
        assert_int_equal(batch_field_add(&b, name, 8, (double)made), 0);
        made++;
    }
    assert_true(b.hsize >= 2 * N);
    size_t run = 0, longest = 0;
    for (size_t s = 0; s < 2 * b.hsize; s++) { /* twice round: a run may wrap */
        run = b.hslots[s & (b.hsize - 1)] ? run + 1 : 0;
        if (run > longest)
            longest = run;
    }
    print_message("crafted names: %zu slots, longest run %zu\n", b.hsize, longest);
    assert_true(longest < 400);
    assert_int_equal(batch_point_commit(&b), 1);
    assert_true(b.points[0].nfields <= N);
    batch_deinit(&b);
}

/* sbuf_steal hands the data over and leaves the buffer empty; out of memory it returns NULL
 * and the emptied buffer still says so (api__body answers 500 by it: before session 26 the flag
 * was cleared with the data, and an out-of-memory /query answer went out as an empty 200). */
static void test_sbuf_steal(void **unused)
{
    (void)unused;
    sbuf_t s;
    sbuf_init(&s);
    size_t n = 99;
    assert_null(sbuf_steal(&s, &n)); /* empty: NULL, not out of memory */
    assert_int_equal(s.oom, 0);
    sbuf_printf(&s, "ab%d", 1);
    char *p = sbuf_steal(&s, &n);
    assert_non_null(p);
    assert_int_equal(n, 3);
    assert_string_equal(p, "ab1");
    assert_null(s.data);
    free(p);
    sbuf_printf(&s, "x");
    s.oom = 1; /* a later append failed */
    assert_null(sbuf_steal(&s, &n));
    assert_null(s.data);
    assert_int_equal(s.oom, 1);
    sbuf_deinit(&s);
    assert_int_equal(s.oom, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_agg_bucket_start),
        cmocka_unit_test(test_agg_values),
        cmocka_unit_test(test_agg_compensated),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_batch_filter),
        cmocka_unit_test(test_batch_wide_point),
        cmocka_unit_test(test_batch_wide_abort),
        cmocka_unit_test(test_batch_mixed_points),
        cmocka_unit_test(test_batch_wide_crafted_names),
        cmocka_unit_test(test_sbuf_steal),
        cmocka_unit_test(test_thread_create_niced),
        cmocka_unit_test(test_nameidx),
        cmocka_unit_test(test_nameidx_collisions),
        cmocka_unit_test(test_nameidx_seeded),
        cmocka_unit_test(test_nameidx_seeded_shards),
        cmocka_unit_test(test_vtime_mono_s),
        cmocka_unit_test(test_mcond_add_ms),
        cmocka_unit_test(test_mcond_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

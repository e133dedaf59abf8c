/* tests/test_common_nameidx.c: unit tests of common/nameidx.c (the index of items by name:
 * collisions, seeds, shards).
 * Part of test_common: tests/test_common.c runs them, in the order of the single file they were
 * moved from. */

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
#include "test_common_fx.h"

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
 * itself: test_daemon_pipeline.c's test_pipeline_shards_seeded): names
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

const struct CMUnitTest common_nameidx_tests[] = {
    cmocka_unit_test(test_nameidx),
    cmocka_unit_test(test_nameidx_collisions),
    cmocka_unit_test(test_nameidx_seeded),
    cmocka_unit_test(test_nameidx_seeded_shards),
};
const size_t common_nameidx_count = sizeof common_nameidx_tests / sizeof common_nameidx_tests[0];

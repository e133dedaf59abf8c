/* tests/test_storage_writes.c: unit tests of storage/, writes and queries: round trips, device and
 * channel indexes, overwrites, sorted batches, new and many channels, query filters and plans.
 *
 * Moved from tests/test_storage.c, whose main() runs this file's table with the others. */
#include "storage_fx.h"

/* ---- tests ---- */

/* The writer remembers each device's channels by field position, with short names kept beside
 * them (storage_int.h, STORE_CHAN_MEMO_NAME): names longer than that, sharing their first bytes,
 * and names of exactly that length that differ only in the last byte still map to their own
 * channels when a point names them in another order. */
static void test_channel_memo(void **state)
{
    fx_t *f = *state;
    const char *n1[] = {"temperature_sensor_a", "temperature_sensor_b", "abcdefghijk1"};
    const char *n2[] = {"temperature_sensor_b", "temperature_sensor_a", "abcdefghijk2"};
    const double v1[] = {1, 2, 3}, v2[] = {4, 5, 6}, v3[] = {7, 8, 9};
    write1(f->s, "m", 1000, 3, n1, v1);
    write1(f->s, "m", 2000, 3, n2, v2);
    write1(f->s, "m", 3000, 3, n2, v3);
    write1(f->s, "m", 4000, 3, n1, v1);
    const char *all[] = {"temperature_sensor_a", "temperature_sensor_b", "abcdefghijk1",
                         "abcdefghijk2"};
    /* Per channel, its value at ts 1000..4000 (NAN: none). */
    const double want[4][4] = {{1, 5, 8, 1}, {2, 4, 7, 2}, {3, NAN, NAN, 3}, {NAN, 6, 9, NAN}};
    got_t *g = malloc(sizeof *g);
    for (size_t c = 0; c < 4; c++) {
        assert_int_equal(query(f->s, "m", 0, INT64_MAX, &all[c], 1, 0, 0, g), 0);
        size_t k = 0;
        for (size_t t = 0; t < 4; t++) {
            if (isnan(want[c][t]))
                continue;
            assert_true(k < g->n);
            assert_int_equal(g->ts[k], 1000 * (int64_t)(t + 1));
            assert_int_equal(g->nv[k], 1);
            assert_true(g->vals[k][0] == want[c][t]);
            k++;
        }
        assert_int_equal(g->n, k);
    }
    free(g);
}

/* The writer's device index (devidx.c): every added device is found by name, a removed one is
 * not, and removals in any order keep the others reachable (backward-shift deletion). */
static void test_devidx(void **state)
{
    (void)state;
    enum { N = 3000 };
    store_dev_t **d = calloc(N, sizeof *d);
    assert_non_null(d);
    store_devidx_t x = {0};
    store__devidx_init(&x);
    char name[32];
    assert_null(store__devidx_find(&x, store__devidx_key(&x, "dev-0", 5), "dev-0", 5));
    for (int i = 0; i < N; i++) {
        int len = snprintf(name, sizeof name, "dev-%d", i);
        d[i] = calloc(1, sizeof *d[i] + (size_t)len + 1);
        assert_non_null(d[i]);
        d[i]->len = (size_t)len;
        memcpy(d[i]->name, name, (size_t)len);
        assert_int_equal(store__devidx_add(&x, store__devidx_key(&x, name, (size_t)len), d[i]), 0);
    }
    assert_int_equal(x.count, N);
    assert_true(x.count * 2 <= x.mask + 1);
    /* Remove two thirds, in an order unrelated to the slots. */
    for (int k = 0; k < N; k++) {
        int i = (int)(((unsigned)k * 7919u) % N);
        if (i % 3 != 0)
            store__devidx_del(&x, store__devidx_key(&x, d[i]->name, d[i]->len), d[i]);
    }
    store__devidx_del(&x, store__devidx_key(&x, d[1]->name, d[1]->len), d[1]); /* a no-op */
    assert_int_equal(x.count, N / 3);
    for (int i = 0; i < N; i++) {
        const char *nm = d[i]->name;
        store_dev_t *got =
            store__devidx_find(&x, store__devidx_key(&x, nm, d[i]->len), nm, d[i]->len);
        if (i % 3 == 0) {
            assert_ptr_equal(got, d[i]);
            assert_ptr_equal(store__devidx_peek(&x, store__devidx_key(&x, nm, d[i]->len)), d[i]);
        } else {
            assert_null(got);
        }
    }
    /* Added back, all are found again. */
    for (int i = 0; i < N; i++)
        if (i % 3 != 0)
            assert_int_equal(
                store__devidx_add(&x, store__devidx_key(&x, d[i]->name, d[i]->len), d[i]), 0);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(store__devidx_find(&x, store__devidx_key(&x, d[i]->name, d[i]->len),
                                            d[i]->name, d[i]->len),
                         d[i]);
    store__devidx_clear(&x);
    assert_null(x.slots);
    for (int i = 0; i < N; i++)
        free(d[i]);
    free(d);
}

/* The public hash the writer's device index once took (nameidx_hash, FNV-1a from FNV's start and
 * the finalizer; removed in session 28): what a client can compute to brute-force collisions. */
static uint64_t public_hash(const char *name, size_t len)
{
    return nameidx_hash_seeded(0xcbf29ce484222325ULL, name, len);
}

/* The writer's device index hashes names with a secret seed of its own (store__devidx_init,
 * store__devidx_key): device names brute-forced to share one home slot under the public hash
 * (what a client could send) spread out in it, and are all found; a name's key is the same on
 * every call, and another index (another store) has other keys for the same names. */
static void test_devidx_seeded(void **state)
{
    (void)state;
    enum { N = 256, BITS = 12, TRIES = 1 << 24 };
    store_dev_t **d = calloc(N, sizeof *d);
    assert_non_null(d);
    const uint64_t low = (1u << BITS) - 1, want = public_hash("n0", 2) & low;
    int found = 0;
    for (int t = 0; found < N && t < TRIES; t++) {
        char name[24];
        int len = snprintf(name, sizeof name, "n%d", t);
        if ((public_hash(name, (size_t)len) & low) != want)
            continue;
        d[found] = calloc(1, sizeof *d[found] + (size_t)len + 1);
        assert_non_null(d[found]);
        d[found]->len = (size_t)len;
        memcpy(d[found]->name, name, (size_t)len);
        found++;
    }
    assert_int_equal(found, N);
    store_devidx_t x = {0}, y = {0};
    store__devidx_init(&x);
    store__devidx_init(&y);
    assert_true(x.seed != 0 && y.seed != 0 && x.seed != y.seed);
    for (int i = 0; i < N; i++)
        assert_int_equal(store__devidx_add(&x, store__devidx_key(&x, d[i]->name, d[i]->len), d[i]),
                         0);
    assert_true(x.mask + 1 <= (1u << BITS)); /* so all N would share a home slot unseeded */
    /* Per home slot, how many names: at load 1/2 more than 8 has a chance below 1e-5. */
    size_t *per = calloc(x.mask + 1, sizeof *per), most = 0;
    assert_non_null(per);
    int differ = 0, other = 0;
    for (int i = 0; i < N; i++) {
        nameidx_key_t k = store__devidx_key(&x, d[i]->name, d[i]->len);
        assert_true(k.h == store__devidx_key(&x, d[i]->name, d[i]->len).h);
        differ += k.h != public_hash(d[i]->name, d[i]->len);
        other += k.h != store__devidx_key(&y, d[i]->name, d[i]->len).h;
        size_t n = ++per[k.h & x.mask];
        most = n > most ? n : most;
        assert_ptr_equal(store__devidx_find(&x, k, d[i]->name, d[i]->len), d[i]);
        /* y's key (another seed) finds nothing in x. */
        assert_null(store__devidx_find(&x, store__devidx_key(&y, d[i]->name, d[i]->len), d[i]->name,
                                       d[i]->len));
    }
    assert_int_equal(differ, N);
    assert_int_equal(other, N);
    assert_true(most <= 8);
    assert_null(store__devidx_find(&x, store__devidx_key(&x, "n-none", 6), "n-none", 6));
    free(per);
    store__devidx_clear(&x);
    for (int i = 0; i < N; i++)
        free(d[i]);
    free(d);
}

static void test_roundtrip_exact(void **state)
{
    fx_t *f = *state;
    const char *names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    const double vals[] = {0.1, -0.0, DBL_MAX, -DBL_MIN, 5e-324, 71.2, 1e300, -123456.789};
    write1(f->s, "pump-7", 1732780800123LL, 8, names, vals);
    got_t *g = malloc(sizeof *g);
    assert_int_equal(query(f->s, "pump-7", 0, INT64_MAX, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 1);
    assert_int_equal(g->ts[0], 1732780800123LL);
    assert_int_equal(g->nv[0], 8);
    for (size_t i = 0; i < 8; i++) {
        assert_string_equal(g->names[0][i], names[i]); /* channels in order of appearance */
        assert_memory_equal(&g->vals[0][i], &vals[i], sizeof(double));
    }
    free(g);
    /* An empty batch completes at once. */
    counter_t c;
    counter_init(&c);
    batch_t b;
    batch_init(&b);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.ok, 1);
    counter_deinit(&c);
}

static void test_overwrite(void **state)
{
    fx_t *f = *state;
    const char *ab[] = {"a", "b"}, *bc[] = {"b", "c"};
    const double v1[] = {1, 2}, v2[] = {3, 4};
    write1(f->s, "d", 1000, 2, ab, v1);
    write1(f->s, "d", 1000, 2, bc, v2); /* b replaced, a kept, c added */
    write1(f->s, "d", 2000, 2, ab, v1);
    write1(f->s, "d", 2000, 2, ab, v1); /* an identical retry changes nothing */
    got_t *g = malloc(sizeof *g);
    assert_int_equal(query(f->s, "d", 0, 10000, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->nv[0], 3);
    assert_true(got_val(g, 0, "a") == 1 && got_val(g, 0, "b") == 3 && got_val(g, 0, "c") == 4);
    assert_int_equal(g->nv[1], 2);
    devinfo_t d = device(f->s, "d", 0);
    assert_int_equal(d.points, 2);
    assert_int_equal(d.first, 1000);
    assert_int_equal(d.last, 2000);

    /* The same key twice within one batch (one transaction): merged, counted once. */
    batch_t b;
    batch_init(&b);
    const char *x[] = {"a"}, *y[] = {"c"};
    const double vx = 10, vy = 20;
    add_point(&b, "d", 500, 1, x, &vx);
    add_point(&b, "d", 500, 1, y, &vy);
    add_point(&b, "d", 1000, 1, x, &vx);
    assert_int_equal(store_write(f->s, &b), 0);
    batch_deinit(&b);
    assert_int_equal(query(f->s, "d", 0, 1001, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 2);
    assert_true(got_val(g, 0, "a") == 10 && got_val(g, 0, "c") == 20);
    assert_true(got_val(g, 1, "a") == 10 && got_val(g, 1, "b") == 3 && got_val(g, 1, "c") == 4);
    d = device(f->s, "d", 0);
    assert_int_equal(d.points, 3);
    assert_int_equal(d.first, 500);
    free(g);
}

/* Value the sorted-batch test writes for channel ch of device dev at ts. */
static double sorted_val(int dev, int64_t ts, int ch)
{
    return (double)ts * 0.25 + dev * 1000 + ch * 0.5;
}

/* The writer inserts a batch grouped by device and in ts order, several rows per statement: the
 * result is the same as writing the points one by one in batch order. */
static void test_sorted_batches(void **state)
{
    fx_t *f = *state;
    static const char *const ab[] = {"a", "b"}, *const ba[] = {"b", "a"}, *const b_only[] = {"b"};
    batch_t b;
    batch_init(&b);
    /* s0: 150 points, ts descending (more than two statements' worth); s1: 70 ascending with
     * the channels named in either order; s2: 5. Interleaved round robin. */
    for (int k = 0; k < 150; k++) {
        int64_t ts0 = 149 - k;
        double v0[] = {sorted_val(0, ts0, 0), sorted_val(0, ts0, 1)};
        add_point(&b, "s0", ts0, 2, ab, v0);
        if (k < 70) {
            double v_ba[] = {sorted_val(1, k, 1), sorted_val(1, k, 0)};
            double v_ab[] = {sorted_val(1, k, 0), sorted_val(1, k, 1)};
            add_point(&b, "s1", k, 2, k % 3 ? ba : ab, k % 3 ? v_ba : v_ab);
        }
        if (k < 5) {
            double v2[] = {sorted_val(2, k, 0), sorted_val(2, k, 1)};
            add_point(&b, "s2", 1000 + k, 2, ab, v2);
        }
        if (k == 40) {
            /* A later value of an existing (device, ts) in the same batch: it wins for b, a is
             * kept. */
            double v = -1;
            add_point(&b, "s1", 10, 1, b_only, &v);
        }
    }
    assert_int_equal(store_write(f->s, &b), 0);
    devinfo_t d = device(f->s, "s0", 0);
    assert_int_equal(d.points, 150);
    assert_int_equal(d.first, 0);
    assert_int_equal(d.last, 149);
    d = device(f->s, "s1", 0);
    assert_int_equal(d.points, 70);
    assert_int_equal(d.first, 0);
    assert_int_equal(d.last, 69);
    d = device(f->s, "s2", 0);
    assert_int_equal(d.points, 5);
    assert_int_equal(d.first, 1000);
    assert_int_equal(d.last, 1004);

    /* s0 again: ts 100..199, half of them existing, in statements that mix new rows and
     * conflicts; a new channel c on every point. */
    static const char *const bc[] = {"b", "c"};
    for (int64_t ts = 100; ts < 200; ts++) {
        double v[] = {-sorted_val(0, ts, 1), sorted_val(0, ts, 2)};
        add_point(&b, "s0", ts, 2, bc, v);
    }
    assert_int_equal(store_write(f->s, &b), 0);
    batch_deinit(&b);
    d = device(f->s, "s0", 0);
    assert_int_equal(d.points, 200);
    assert_int_equal(d.first, 0);
    assert_int_equal(d.last, 199);

    got_t *g = malloc(sizeof *g);
    assert_int_equal(query(f->s, "s0", 0, 1000, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 200);
    for (size_t i = 0; i < 200; i++) {
        int64_t ts = (int64_t)i;
        assert_int_equal(g->ts[i], ts);
        if (ts < 150)
            assert_true(got_val(g, i, "a") == sorted_val(0, ts, 0));
        else
            assert_true(isnan(got_val(g, i, "a")));
        assert_true(got_val(g, i, "b") ==
                    (ts < 100 ? sorted_val(0, ts, 1) : -sorted_val(0, ts, 1)));
        if (ts < 100)
            assert_true(isnan(got_val(g, i, "c")));
        else
            assert_true(got_val(g, i, "c") == sorted_val(0, ts, 2));
    }
    assert_int_equal(query(f->s, "s1", 0, 1000, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 70);
    for (size_t i = 0; i < 70; i++) {
        int64_t ts = (int64_t)i;
        assert_int_equal(g->ts[i], ts);
        assert_true(got_val(g, i, "a") == sorted_val(1, ts, 0));
        assert_true(got_val(g, i, "b") == (ts == 10 ? -1 : sorted_val(1, ts, 1)));
    }
    assert_int_equal(query(f->s, "s2", 0, 2000, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(g->ts[i], 1000 + (int64_t)i);
        assert_true(got_val(g, i, "a") == sorted_val(2, (int64_t)i, 0));
        assert_true(got_val(g, i, "b") == sorted_val(2, (int64_t)i, 1));
    }
    free(g);
}

static void test_new_channels(void **state)
{
    fx_t *f = *state;
    const char *c1[] = {"temp"}, *c2[] = {"vib", "temp"}, *c3[] = {"rpm"};
    const double v1[] = {1}, v2[] = {2, 3}, v3[] = {4};
    write1(f->s, "m", 1, 1, c1, v1);
    write1(f->s, "m", 2, 2, c2, v2);
    write1(f->s, "m", 3, 1, c3, v3);
    devinfo_t d = device(f->s, "m", 0);
    assert_int_equal(d.nch, 3);
    assert_string_equal(d.ch[0], "temp");
    assert_string_equal(d.ch[1], "vib");
    assert_string_equal(d.ch[2], "rpm");
    got_t *g = malloc(sizeof *g);
    assert_int_equal(query(f->s, "m", 0, 10, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 3);
    assert_true(got_val(g, 1, "vib") == 2 && got_val(g, 1, "temp") == 3);
    assert_true(isnan(got_val(g, 0, "vib")));
    free(g);
}

/* Checks every point of a wide device: channel "cK" holds K + 1000 * version(K). */
typedef struct wide {
    size_t points, values;
    int bad;
} wide_t;

static int check_wide(void *arg, int64_t ts, size_t n, const char *const *names, const double *vals)
{
    wide_t *w = arg;
    w->points++;
    w->values += n;
    for (size_t i = 0; i < n; i++) {
        int k = atoi(names[i] + 1);
        int rewritten = k == 5 || k == 150 || k == 299 || k == 300;
        if (vals[i] != (double)k + (rewritten ? 1000 : 0))
            w->bad++;
    }
    return 0;
}

static void test_many_channels(void **state)
{
    fx_t *f = *state;
    /* 300 channels: indexes past 127 take two-byte varints in the blob. */
    batch_t b;
    batch_init(&b);
    assert_int_equal(batch_point_begin(&b, "wide", 4, 77, 0), 0);
    for (int k = 0; k < 300; k++) {
        char name[8];
        int len = snprintf(name, sizeof name, "c%d", k);
        assert_int_equal(batch_field_add(&b, name, (size_t)len, (double)k), 0);
    }
    assert_int_equal(batch_point_commit(&b), 1);
    assert_int_equal(store_write(f->s, &b), 0);
    /* Overwrite three of them and add a new one at the same timestamp. */
    const char *names[] = {"c299", "c5", "c300", "c150"};
    const double vals[] = {1299, 1005, 1300, 1150};
    add_point(&b, "wide", 77, 4, names, vals);
    assert_int_equal(store_write(f->s, &b), 0);
    batch_deinit(&b);
    wide_t w = {0};
    store_query_t q = {"wide", 0, 100, NULL, 0, 0, 0, 0, 0};
    assert_int_equal(store_query(f->s, &q, check_wide, &w), 0);
    assert_int_equal(w.points, 1);
    assert_int_equal(w.values, 301);
    assert_int_equal(w.bad, 0);
    const char *sel[] = {"c300", "c0", "c200"};
    memset(&w, 0, sizeof w);
    q.channels = sel;
    q.nchannels = 3;
    assert_int_equal(store_query(f->s, &q, check_wide, &w), 0);
    assert_int_equal(w.values, 3);
    assert_int_equal(w.bad, 0);
    assert_int_equal(device(f->s, "wide", 0).points, 1);
}

/* The longest bucket chain of a device's channel table (writer.c, uthash), as the writer
 * publishes it (maint.c) at the commit of a transaction of its own: the test thread never reads
 * the writer's maps. */
static unsigned chan_chain_max(store_t *s, const char *dev)
{
    store__test_wstate_dev(s, dev);
    assert_int_equal(store__test_exec(s, "SELECT 1"), 0);
    store_test_wstate_t w;
    assert_int_equal(store__test_wstate(s, &w), 0);
    store__test_wstate_dev(s, "");
    assert_true(w.chan_chain_max > 0);
    return (unsigned)w.chan_chain_max;
}

/* Channel "k<t>" holds t at ts 1 and t + 0.5 at ts 2. */
static int check_chans(void *arg, int64_t ts, size_t n, const char *const *names,
                       const double *vals)
{
    wide_t *w = arg;
    w->points++;
    w->values += n;
    for (size_t i = 0; i < n; i++)
        if (vals[i] != atoi(names[i] + 1) + (ts == 2 ? 0.5 : 0))
            w->bad++;
    return 0;
}

/* A device's channel table (writer.c) buckets names by the device index's seeded key: 256 channel
 * names brute-forced so uthash's unseeded Jenkins hash agrees in its low 12 bits (one chain of
 * 256 with that hash: the table stops expanding) are stored and read back whole, and no bucket
 * chain is long, also after a reopen (the maps reloaded from the database, then written to
 * again). With random hashes
 * the longest chain of 256 names was at most 18 in 200,000 trials; the bound is 32. */
static void test_chans_seeded(void **state)
{
    fx_t *f = *state;
    enum { N = 256, BITS = 12, TRIES = 1 << 24 };
    char(*names)[16] = calloc(N, sizeof *names);
    const char **np = calloc(N, sizeof *np);
    double *vals = calloc(N, sizeof *vals);
    assert_true(names != NULL && np != NULL && vals != NULL);
    unsigned want = 0;
    int found = 0;
    for (int t = 0; found < N && t < TRIES; t++) {
        int len = snprintf(names[found], sizeof names[found], "k%d", t);
        unsigned hv;
        HASH_VALUE(names[found], (unsigned)len, hv);
        if (found == 0)
            want = hv & ((1u << BITS) - 1);
        if ((hv & ((1u << BITS) - 1)) != want)
            continue;
        np[found] = names[found];
        vals[found] = t;
        found++;
    }
    assert_int_equal(found, N);
    write1(f->s, "chans", 1, N, np, vals);
    /* The second point names them in reverse, so each is found in the table (not the memo). */
    for (int i = 0; i < N / 2; i++) {
        const char *c = np[i];
        np[i] = np[N - 1 - i];
        np[N - 1 - i] = c;
        double v = vals[i];
        vals[i] = vals[N - 1 - i] + 0.5;
        vals[N - 1 - i] = v + 0.5;
    }
    write1(f->s, "chans", 2, N, np, vals);
    for (int round = 0; round < 2; round++) {
        /* Review: after the reopen the names are written again (the same values at ts 2), so
         * each must be found in the table reloaded from the database under the hash chan_idx
         * uses; a miss would add a second channel of the name (or fail the write). */
        if (round == 1)
            write1(f->s, "chans", 2, N, np, vals);
        assert_int_equal(device(f->s, "chans", 0).nch, N);
        wide_t w = {0};
        store_query_t q = {"chans", 0, 100, NULL, 0, 0, 0, 0, 0};
        assert_int_equal(store_query(f->s, &q, check_chans, &w), 0);
        assert_int_equal(w.points, 2);
        assert_int_equal(w.values, 2 * N);
        assert_int_equal(w.bad, 0);
        assert_true(chan_chain_max(f->s, "chans") <= 32);
        store_close(f->s);
        f->s = open_store(f->dir, 0);
    }
    free(names);
    free(np);
    free(vals);
}

static void test_query_filters(void **state)
{
    fx_t *f = *state;
    batch_t b;
    batch_init(&b);
    /* ts 0..99: "a" on every point, "b" on even ones. */
    for (int64_t t = 0; t < 100; t++) {
        const char *ab[] = {"a", "b"};
        double v[] = {(double)t, (double)-t};
        add_point(&b, "q", t * 10, t % 2 == 0 ? 2 : 1, ab, v);
    }
    assert_int_equal(store_write(f->s, &b), 0);
    batch_deinit(&b);
    got_t *g = malloc(sizeof *g);
    /* [from, to): from inclusive, to exclusive. */
    assert_int_equal(query(f->s, "q", 100, 200, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 10);
    assert_int_equal(g->ts[0], 100);
    assert_int_equal(g->ts[9], 190);
    /* Channel filter: points without "b" are skipped and do not count toward limit. */
    const char *only_b[] = {"b"};
    assert_int_equal(query(f->s, "q", 0, 1000, only_b, 1, 5, 0, g), 0);
    assert_int_equal(g->n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(g->ts[i], (int64_t)i * 20);
        assert_int_equal(g->nv[i], 1);
        assert_true(got_val(g, i, "b") == -(double)(i * 2));
    }
    /* Newest first. */
    assert_int_equal(query(f->s, "q", 0, 1000, only_b, 1, 3, 1, g), 0);
    assert_int_equal(g->n, 3);
    assert_int_equal(g->ts[0], 980);
    assert_int_equal(g->ts[2], 940);
    assert_int_equal(query(f->s, "q", 0, 1000, NULL, 0, 0, 1, g), 0);
    assert_int_equal(g->n, 100);
    assert_int_equal(g->ts[0], 990);
    /* The callback stops the iteration. */
    memset(g, 0, sizeof *g);
    g->stop_after = 7;
    store_query_t qq = {"q", 0, 1000, NULL, 0, 0, 0, 0, 0};
    assert_int_equal(store_query(f->s, &qq, collect, g), 0);
    assert_int_equal(g->n, 7);
    /* Errors. */
    const char *bad[] = {"a", "nope"};
    assert_int_equal(query(f->s, "q", 0, 1000, bad, 2, 0, 0, g), ERR_INVAL);
    assert_int_equal(query(f->s, "nosuch", 0, 1000, NULL, 0, 0, 0, g), ERR_NOTFOUND);
    assert_int_equal(query(f->s, "q", 500, 500, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 0);
    free(g);
}

/* The range reads search readings_time by device and start time, in index order. */
static void test_index_used(void **state)
{
    const char *sqls[] = {store__sql_range_asc, store__sql_range_desc};
    const char *want[] = {"SEARCH readings USING INDEX readings_time (device_id=? AND t0>",
                          "SEARCH readings USING INDEX readings_time (device_id=? AND t0>"};
    assert_plans(*state, sqls, want, 2);
}

/* SQLite's "database is locked" (SQLITE_BUSY, here with no busy timeout: what the writer gets
 * once its 10 s have passed) from another connection's write transaction is ERR_LOCKED, named
 * as such: not ERR_IO, which the clients heard as a 500 "I/O error" (task store7). */
static void test_status_locked(void **state)
{
    fx_t *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/vigil.db", f->dir);
    sqlite3 *holder = NULL, *db = NULL;
    assert_int_equal(sqlite3_open(path, &holder), SQLITE_OK);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    assert_int_equal(rc & 0xff, SQLITE_BUSY);
    assert_int_equal(store__status(db, rc), ERR_LOCKED);
    assert_string_equal(err_str(ERR_LOCKED), "the database is locked by another process");
    assert_int_equal(sqlite3_exec(holder, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE; ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    sqlite3_close(holder);
    /* The other codes keep their mapping. */
    assert_int_equal(store__status(NULL, SQLITE_FULL), ERR_NOSPACE);
    assert_int_equal(store__status(NULL, SQLITE_CORRUPT), ERR_CORRUPT);
    assert_int_equal(store__status(NULL, SQLITE_IOERR), ERR_IO);
}

const struct CMUnitTest storage_writes_tests[] = {
    cmocka_unit_test_setup_teardown(test_status_locked, setup, teardown),
    cmocka_unit_test_setup_teardown(test_roundtrip_exact, setup, teardown),
    cmocka_unit_test_setup_teardown(test_channel_memo, setup, teardown),
    cmocka_unit_test(test_devidx),
    cmocka_unit_test(test_devidx_seeded),
    cmocka_unit_test_setup_teardown(test_chans_seeded, setup, teardown),
    cmocka_unit_test_setup_teardown(test_overwrite, setup, teardown),
    cmocka_unit_test_setup_teardown(test_sorted_batches, setup, teardown),
    cmocka_unit_test_setup_teardown(test_new_channels, setup, teardown),
    cmocka_unit_test_setup_teardown(test_many_channels, setup, teardown),
    cmocka_unit_test_setup_teardown(test_query_filters, setup, teardown),
    cmocka_unit_test_setup_teardown(test_index_used, setup, teardown),
};
const size_t storage_writes_ntests = sizeof storage_writes_tests / sizeof storage_writes_tests[0];

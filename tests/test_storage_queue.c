/* tests/test_storage_queue.c: unit tests of storage/, the writer and its queue: reopen, concurrent
 * submitters, the bounded queue, schema and lock checks at open, close committing what is queued,
 * commit hooks and the ops queue, and the queue's (and the lock wait's) bounds lowered for tests.
 *
 * Moved from tests/test_storage.c, whose main() runs this file's table with the others. */
#include "storage_fx.h"

static int counter_done(counter_t *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->done;
    pthread_mutex_unlock(&c->mu);
    return n;
}

static void test_reopen(void **state)
{
    fx_t *f = *state;
    const char *c1[] = {"x", "y"};
    const double v1[] = {1.25, 2.5};
    write1(f->s, "r1", 100, 2, c1, v1);
    write1(f->s, "r2", 200, 2, c1, v1);
    assert_int_equal(store_device_put(f->s, "r3", "{\"k\":1}", NULL), 0);
    store_close(f->s);
    f->s = open_store(f->dir, 0);
    /* The writer's maps were reloaded: old channels keep their idx, new ones follow. */
    const char *c2[] = {"z", "y"};
    const double v2[] = {9, 8};
    write1(f->s, "r1", 100, 2, c2, v2);
    write1(f->s, "r1", 300, 2, c1, v1);
    devinfo_t d = device(f->s, "r1", 0);
    assert_int_equal(d.nch, 3);
    assert_string_equal(d.ch[0], "x");
    assert_string_equal(d.ch[1], "y");
    assert_string_equal(d.ch[2], "z");
    assert_int_equal(d.points, 2);
    assert_int_equal(d.first, 100);
    assert_int_equal(d.last, 300);
    got_t *g = malloc(sizeof *g);
    assert_int_equal(query(f->s, "r1", 0, 1000, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 2);
    assert_true(got_val(g, 0, "x") == 1.25 && got_val(g, 0, "y") == 8 && got_val(g, 0, "z") == 9);
    free(g);
    assert_string_equal(device(f->s, "r3", 0).attrs, "{\"k\":1}");
    assert_int_equal(device(f->s, "r2", 0).points, 1);
}

typedef struct thr {
    store_t *s;
    int id;
    counter_t *c;
    int submitted;
} thr_t;

enum { THREADS = 4, BATCHES = 40, POINTS = 250 };

static void *submitter(void *arg)
{
    thr_t *t = arg;
    batch_t b;
    batch_init(&b);
    char dev[16];
    snprintf(dev, sizeof dev, "t%d", t->id);
    for (int i = 0; i < BATCHES; i++) {
        fill_batch(&b, dev, (int64_t)i * POINTS, POINTS);
        /* Half the threads also write to a shared device, same keys from every thread. */
        if (t->id % 2 == 0)
            fill_batch(&b, "shared", (int64_t)i * 10, 10);
        int err;
        while ((err = store_submit(t->s, &b, on_done, t->c)) == ERR_BUSY)
            usleep(1000);
        assert_int_equal(err, 0);
        t->submitted++;
    }
    batch_deinit(&b);
    return NULL;
}

static void test_concurrent_submit(void **state)
{
    fx_t *f = *state;
    counter_t c;
    counter_init(&c);
    pthread_t th[THREADS];
    thr_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        t[i] = (thr_t){f->s, i, &c, 0};
        assert_int_equal(pthread_create(&th[i], NULL, submitter, &t[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        total += t[i].submitted;
    }
    counter_wait(&c, total);
    assert_int_equal(c.ok, THREADS * BATCHES);
    assert_int_equal(c.bad, 0);
    counter_deinit(&c);
    got_t *g = malloc(sizeof *g);
    for (int i = 0; i < THREADS; i++) {
        char dev[16];
        snprintf(dev, sizeof dev, "t%d", i);
        devinfo_t d = device(f->s, dev, 0);
        assert_int_equal(d.points, BATCHES * POINTS);
        assert_int_equal(d.first, 0);
        assert_int_equal(d.last, BATCHES * POINTS - 1);
        /* Spot-check values through a query. */
        assert_int_equal(query(f->s, dev, 5000, 5010, NULL, 0, 0, 0, g), 0);
        assert_int_equal(g->n, 10);
        for (size_t k = 0; k < 10; k++)
            assert_true(got_val(g, k, "v") == (double)(5000 + (int64_t)k) * 0.5);
    }
    assert_int_equal(device(f->s, "shared", 0).points, 400);
    free(g);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.points_written, THREADS * BATCHES * POINTS + (THREADS / 2) * BATCHES * 10);
    assert_int_equal(st.readings_written, st.points_written);
    assert_int_equal(st.queue_readings, 0);
    assert_true(st.commits >= 1);
    assert_int_equal(st.commit_errors, 0);
    assert_true(st.db_bytes > 0);
    /* Cumulative histogram: non-decreasing, and the last bucket holds at most every commit. */
    for (int i = 1; i < 12; i++)
        assert_true(st.commit_buckets[i] >= st.commit_buckets[i - 1]);
    assert_true(st.commit_buckets[11] <= st.commits);
}

static void test_queue_full(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    f->s = open_store(f->dir, 100);
    counter_t c;
    counter_init(&c);
    batch_t b;
    batch_init(&b);
    store__test_hold(f->s, 1);
    /* One batch larger than queue_max is accepted while nothing is queued ... */
    fill_batch(&b, "big", 0, 500);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    assert_int_equal(b.npoints, 0);
    /* ... and then the queue is full. A refused batch is left untouched. */
    fill_batch(&b, "small", 0, 1);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), ERR_BUSY);
    assert_int_equal(b.npoints, 1);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.queue_readings, 500);
    assert_int_equal(st.queue_max, 100);
    store__test_hold(f->s, 0);
    counter_wait(&c, 1);
    /* Normal filling: 60 + 40 fit, one more does not. */
    store__test_hold(f->s, 1);
    batch_reset(&b);
    fill_batch(&b, "small", 0, 60);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    fill_batch(&b, "small", 60, 41);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), ERR_BUSY);
    batch_reset(&b);
    fill_batch(&b, "small", 60, 40);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    assert_int_equal(counter_done(&c), 1);
    store__test_hold(f->s, 0);
    counter_wait(&c, 3);
    assert_int_equal(c.ok, 3);
    assert_int_equal(device(f->s, "small", 0).points, 100);
    assert_int_equal(device(f->s, "big", 0).points, 500);
    batch_deinit(&b);
    counter_deinit(&c);
}

static void test_newer_schema(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    f->s = NULL;
    char path[128];
    snprintf(path, sizeof path, "%s/vigil.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    store_opts_t o;
    store_opts_default(&o);
    o.dir = f->dir;
    store_t *s = (store_t *)1;
    char msg[256];
    assert_int_equal(store_open(&s, &o, msg, sizeof msg), ERR_IO);
    assert_null(s);
    assert_non_null(strstr(msg, "newer"));
    /* The file was left alone. */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 99);
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* A file that is not a database is refused as corrupt. */
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 512; i++)
        fputs("not a database, ", fp);
    fclose(fp);
    o.dir = f->dir;
    assert_int_equal(store_open(&s, &o, msg, sizeof msg), ERR_CORRUPT);
    assert_null(s);
    /* Neither does a directory that cannot be created open. */
    o.dir = "/proc/vigil-no/such";
    assert_int_equal(store_open(&s, &o, msg, sizeof msg), ERR_IO);
}

static void test_dir_in_use(void **state)
{
    fx_t *f = *state;
    store_opts_t o;
    store_opts_default(&o);
    o.dir = f->dir;
    store_t *s2 = NULL;
    char msg[256];
    assert_int_equal(store_open(&s2, &o, msg, sizeof msg), ERR_IO);
    assert_null(s2);
    assert_non_null(strstr(msg, "in use"));
    /* The first store is unharmed. */
    const char *ch[] = {"v"};
    const double v = 3;
    write1(f->s, "still", 1, 1, ch, &v);
}

/* What the commit hook saw, and how many hook calls each done callback found already made. */
typedef struct hookrec {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int n;
    char dev[64][16];
    int64_t ts0[64];
    size_t npoints[64];
    int ndone, nok;
    int hooks_at_done[64];
} hookrec_t;

static void on_hook(void *arg, batch_t *b)
{
    hookrec_t *h = arg;
    pthread_mutex_lock(&h->mu);
    if (h->n < 64) {
        snprintf(h->dev[h->n], sizeof h->dev[0], "%s", batch_str(b, b->points[0].device));
        h->ts0[h->n] = b->points[0].ts_ms;
        h->npoints[h->n] = b->npoints;
    }
    h->n++;
    pthread_mutex_unlock(&h->mu);
}

static void on_hook_done(void *arg, int status)
{
    hookrec_t *h = arg;
    pthread_mutex_lock(&h->mu);
    if (h->ndone < 64)
        h->hooks_at_done[h->ndone] = h->n;
    h->ndone++;
    h->nok += status == 0;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->mu);
}

static int hook_count(hookrec_t *h)
{
    pthread_mutex_lock(&h->mu);
    int n = h->n;
    pthread_mutex_unlock(&h->mu);
    return n;
}

static void test_commit_hook(void **state)
{
    fx_t *f = *state;
    hookrec_t *h = calloc(1, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cond, NULL);
    store_set_commit_hook(f->s, on_hook, h);
    /* Five batches in one transaction: hooked in submission order, all before any done. */
    batch_t b;
    batch_init(&b);
    store__test_hold(f->s, 1);
    for (int i = 0; i < 5; i++) {
        char dev[16];
        snprintf(dev, sizeof dev, "h%d", i);
        fill_batch(&b, dev, 100 * i, (size_t)i + 1);
        assert_int_equal(store_submit(f->s, &b, on_hook_done, h), 0);
    }
    assert_int_equal(hook_count(h), 0);
    store__test_hold(f->s, 0);
    pthread_mutex_lock(&h->mu);
    while (h->ndone < 5)
        pthread_cond_wait(&h->cond, &h->mu);
    pthread_mutex_unlock(&h->mu);
    assert_int_equal(h->nok, 5);
    assert_int_equal(h->n, 5);
    for (int i = 0; i < 5; i++) {
        char dev[16];
        snprintf(dev, sizeof dev, "h%d", i);
        assert_string_equal(h->dev[i], dev);
        assert_int_equal(h->ts0[i], 100 * i);
        assert_int_equal(h->npoints[i], i + 1);
        assert_int_equal(h->hooks_at_done[i], 5);
    }
    /* store_write returns after its done callback, so after its hook. */
    fill_batch(&b, "h9", 7, 3);
    assert_int_equal(store_write(f->s, &b), 0);
    assert_int_equal(hook_count(h), 6);
    assert_string_equal(h->dev[5], "h9");
    /* Device and test jobs are not reading batches; an empty batch commits nothing. */
    assert_int_equal(store_device_put(f->s, "h-dev", NULL, NULL), 0);
    assert_int_equal(store_submit(f->s, &b, on_hook_done, h), 0);
    assert_int_equal(hook_count(h), 6);
    /* A failed transaction is not reported. */
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1"), 0);
    fill_batch(&b, "h-full", 0, 20000);
    assert_int_equal(store_write(f->s, &b), ERR_NOSPACE);
    assert_int_equal(hook_count(h), 6);
    batch_deinit(&b);
    /* The store refers to h until it is closed. */
    store_close(f->s);
    f->s = NULL;
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cond);
    free(h);
}

/* A commit hook that takes the batches it is given (as a pipeline does to avoid a copy). */
typedef struct stealer {
    pthread_mutex_t mu;
    batch_t got[4];
    int n;
} stealer_t;

static void on_hook_steal(void *arg, batch_t *b)
{
    stealer_t *st = arg;
    pthread_mutex_lock(&st->mu);
    if (st->n < 4) {
        st->got[st->n++] = *b;
        batch_init(b);
    }
    pthread_mutex_unlock(&st->mu);
}

static void test_commit_hook_steal(void **state)
{
    fx_t *f = *state;
    stealer_t *st = calloc(1, sizeof *st);
    pthread_mutex_init(&st->mu, NULL);
    store_set_commit_hook(f->s, on_hook_steal, st);
    static const char *const ch[] = {"x", "y"};
    batch_t b;
    batch_init(&b);
    /* Two devices interleaved, one of them backwards: the hook sees the submission order. */
    for (int k = 0; k < 100; k++) {
        double v[] = {k, -k};
        add_point(&b, "t0", 1000 - k, 2, ch, v);
        add_point(&b, "t1", k, 2, ch, v);
    }
    assert_int_equal(store_write(f->s, &b), 0);
    fill_batch(&b, "t2", 5, 3);
    assert_int_equal(store_write(f->s, &b), 0);
    batch_deinit(&b);
    pthread_mutex_lock(&st->mu);
    assert_int_equal(st->n, 2);
    batch_t *g = &st->got[0];
    assert_int_equal(g->npoints, 200);
    assert_int_equal(g->nfields, 400);
    for (int k = 0; k < 100; k++) {
        const batch_point_t *p0 = &g->points[2 * k], *p1 = &g->points[2 * k + 1];
        assert_string_equal(batch_str(g, p0->device), "t0");
        assert_int_equal(p0->ts_ms, 1000 - k);
        assert_string_equal(batch_str(g, p1->device), "t1");
        assert_int_equal(p1->ts_ms, k);
        assert_int_equal(p1->nfields, 2);
        assert_string_equal(batch_str(g, g->fields[p1->field0 + 1].name), "y");
        assert_true(g->fields[p1->field0 + 1].value == -k);
    }
    assert_int_equal(st->got[1].npoints, 3);
    assert_string_equal(batch_str(&st->got[1], st->got[1].points[0].device), "t2");
    pthread_mutex_unlock(&st->mu);
    /* The store kept nothing of the taken batches: what was committed reads back. */
    got_t *r = malloc(sizeof *r);
    assert_int_equal(query(f->s, "t0", 0, 2000, NULL, 0, 0, 0, r), 0);
    assert_int_equal(r->n, 100);
    assert_int_equal(r->ts[0], 901);
    assert_true(got_val(r, 0, "x") == 99 && got_val(r, 0, "y") == -99);
    free(r);
    store_close(f->s);
    f->s = NULL;
    for (int i = 0; i < st->n; i++)
        batch_deinit(&st->got[i]);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static void *flusher(void *arg)
{
    return (void *)(intptr_t)store_flush(arg);
}

static void test_ops_queue(void **state)
{
    fx_t *f = *state;
    /* A reading queue of 100, full: the puts do not care. */
    store_close(f->s);
    f->s = open_store(f->dir, 100);
    touch_device(f->s, "q");
    counter_t c;
    counter_init(&c);
    batch_t b;
    batch_init(&b);
    store__test_hold(f->s, 1);
    fill_batch(&b, "q", 100, 100);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    fill_batch(&b, "q", 200, 1);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), ERR_BUSY);
    batch_reset(&b);
    for (int i = 0; i < STORE_OPS_MAX; i++)
        assert_int_equal(store_event_put(f->s, "q", i, i, -1, NULL), 0);
    /* Beyond the bound: dropped and counted. */
    assert_int_equal(store_event_put(f->s, "q", -1, 0, -1, NULL), ERR_BUSY);
    assert_int_equal(store_detector_put(f->s, "q", 0, "x", 1, NULL, 0), ERR_BUSY);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.ops_queued, STORE_OPS_MAX);
    assert_int_equal(st.ops_dropped, 2);
    /* store_flush returns once everything queued before it is committed. */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flusher, f->s), 0);
    store__test_hold(f->s, 0);
    void *ret;
    pthread_join(th, &ret);
    assert_int_equal((int)(intptr_t)ret, 0);
    assert_int_equal(counter_done(&c), 1);
    store_stats_get(f->s, &st);
    assert_int_equal(st.ops_written, STORE_OPS_MAX);
    assert_int_equal(st.ops_queued, 0);
    events_t *e = malloc(sizeof *e);
    assert_int_equal(events(f->s, "q", 1, 0, INT64_MAX, 3, e), 0);
    assert_int_equal(e->n, 3);
    assert_int_equal(e->id[0], STORE_OPS_MAX - 1);
    free(e);
    /* Space again. */
    assert_int_equal(store_detector_put(f->s, "q", 0, "x", 1, NULL, 0), 0);
    /* A put lost with a failed transaction is counted, and puts wait out the disk-full
     * back-off like readings. */
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1"), 0);
    store__test_hold(f->s, 1);
    fill_batch(&b, "q-new", 0, 20000);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    assert_int_equal(store_model_put(f->s, "q", 1, NULL, NULL, 0, 0), 0);
    store__test_hold(f->s, 0);
    counter_wait(&c, 2);
    assert_int_equal(c.bad, 1);
    assert_int_equal(store_model_put(f->s, "q", 2, NULL, NULL, 0, 0), ERR_NOSPACE);
    store_stats_get(f->s, &st);
    assert_int_equal(st.ops_failed, 1);
    models_t *m = models(f->s, "q", 0);
    assert_int_equal(m->n, 0);
    free(m);
    batch_deinit(&b);
    counter_deinit(&c);
}

static void test_close_commits_queued(void **state)
{
    fx_t *f = *state;
    counter_t c;
    counter_init(&c);
    batch_t b;
    batch_init(&b);
    store__test_hold(f->s, 1);
    for (int i = 0; i < 5; i++) {
        fill_batch(&b, "late", (int64_t)i * 100, 100);
        assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    }
    assert_int_equal(store_event_put(f->s, "late", 1, 0, 10, NULL), 0);
    assert_int_equal(counter_done(&c), 0);
    store_close(f->s);
    /* Every callback ran, with success, before store_close returned, and the puts were written. */
    assert_int_equal(c.done, 5);
    assert_int_equal(c.ok, 5);
    f->s = open_store(f->dir, 0);
    assert_int_equal(device(f->s, "late", 0).points, 500);
    events_t *e = malloc(sizeof *e);
    assert_int_equal(events(f->s, "late", 0, 0, INT64_MAX, 0, e), 0);
    assert_int_equal(e->n, 1);
    free(e);
    batch_deinit(&b);
    counter_deinit(&c);
}

/* The store's two lowered bounds for tests (storage/testhooks.c's env_lowered: the queue's
 * VIGIL_TEST_OPS_MAX, the lock wait's VIGIL_TEST_BUSY_MS) read digits only, 1 to the bound
 * (common/posint.h, task knobs64); anything else leaves the bound. Main's strtol took " 3000"
 * and "+3000" as 3000. No store: both are read from the environment at store_open. */
static void test_lowered_bounds_strict(void **state)
{
    (void)state;
    const char *const names[] = {"VIGIL_TEST_OPS_MAX", "VIGIL_TEST_BUSY_MS"};
    const long long bounds[] = {STORE_OPS_MAX, STORE_BUSY_TIMEOUT_MS};
    const char *const refused[] = {" 3000", "\t3000", "+3000", "-5",
                                   "-0",    "0",      "3000 ", "3000ms",
                                   "3e3",   "0x10",   "10001", "9223372036854775808"};
    for (size_t k = 0; k < 2; k++) {
        long long got[2];
        assert_int_equal(setenv(names[k], "3000", 1), 0);
        got[0] = (long long)store__test_ops_max(), got[1] = (long long)store__test_busy_ms();
        assert_true(got[k] == 3000);
        for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
            assert_int_equal(setenv(names[k], refused[i], 1), 0);
            got[0] = (long long)store__test_ops_max(), got[1] = (long long)store__test_busy_ms();
            if (got[k] != bounds[k])
                fail_msg("%s=\"%s\": %lld, not the bound %lld", names[k], refused[i], got[k],
                         bounds[k]);
        }
        assert_int_equal(unsetenv(names[k]), 0);
    }
}

const struct CMUnitTest storage_queue_tests[] = {
    cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
    cmocka_unit_test_setup_teardown(test_concurrent_submit, setup, teardown),
    cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
    cmocka_unit_test_setup_teardown(test_newer_schema, setup, teardown),
    cmocka_unit_test_setup_teardown(test_dir_in_use, setup, teardown),
    cmocka_unit_test_setup_teardown(test_close_commits_queued, setup, teardown),
    cmocka_unit_test_setup_teardown(test_commit_hook, setup, teardown),
    cmocka_unit_test_setup_teardown(test_commit_hook_steal, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ops_queue, setup, teardown),
    cmocka_unit_test(test_lowered_bounds_strict),
};
const size_t storage_queue_ntests = sizeof storage_queue_tests / sizeof storage_queue_tests[0];

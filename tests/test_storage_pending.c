/* tests/test_storage_pending.c: unit tests of storage/, pending rows: the write log before
 * compaction, merge order, overwrites, a crashed writer and a concurrent reader.
 *
 * Moved from tests/test_storage.c, whose main() runs this file's table with the others. */
#include "storage_fx.h"

/* ---- pending readings (storage/pending.c) ---- */

/* Rows in the readings log. */
static int64_t log_rows(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/vigil.db", dir);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM readings_log", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* New readings wait as pending readings (no row) until STORE_PEND_POINTS of them fill one;
 * queries and device reports see them at once; the log keeps only what is still pending. */
static void test_pending_rows(void **state)
{
    fx_t *f = *state;
    const int P = STORE_PEND_POINTS, N = P + P / 2; /* batches of 4 points */
    for (int i = 0; i < P / 2 / 4; i++)
        write_series(f->s, "pr", i * 4, 1, 4, 0);
    int64_t pts;
    assert_int_equal(chunk_rows(f->dir, "pr", &pts), 0);
    check_series(f->s, "pr", 0, (size_t)P / 2, 0);
    /* Past STORE_PEND_POINTS: one row of them all, the rest pending again. */
    for (int i = P / 2 / 4; i < N / 4; i++)
        write_series(f->s, "pr", i * 4, 1, 4, 0);
    assert_int_equal(chunk_rows(f->dir, "pr", &pts), 1);
    assert_true(pts >= P && pts < N);
    check_series(f->s, "pr", 0, (size_t)N, 0);
    /* The log rows before the oldest pending reading's are gone; after everything is written
     * out, only the newest row stays. */
    assert_true(log_rows(f->dir) <= N - pts + 1);
    assert_int_equal(store__test_pend_flush(f->s), 0);
    assert_int_equal(log_rows(f->dir), 1);
    assert_true(chunk_rows(f->dir, "pr", &pts) >= 1); /* the last small row may be compacted */
    assert_int_equal(pts, N);
    check_series(f->s, "pr", 0, (size_t)N, 0);
}

/* A query merges rows and pending readings in order, both directions, with limits, ranges and
 * channel filters that cut across the boundary between them. */
static void test_pending_merge_order(void **state)
{
    fx_t *f = *state;
    write_series(f->s, "mo", 0, 10, 40, 0); /* ts 0..390 */
    assert_int_equal(store__test_pend_flush(f->s), 0);
    write_series(f->s, "mo", 400, 10, 20, 0); /* ts 400..590, pending */
    static const char *const c[] = {"c"};
    const double v = 42;
    write1(f->s, "mo", 595, 1, c, &v); /* pending, channel c only */
    int64_t pts;
    assert_int_equal(chunk_rows(f->dir, "mo", &pts), 1);
    assert_int_equal(pts, 40);
    got_t *g = malloc(sizeof *g);
    assert_int_equal(query(f->s, "mo", 0, 1000, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 61);
    for (size_t i = 0; i < 60; i++)
        assert_int_equal(g->ts[i], (int64_t)i * 10);
    assert_true(g->ts[60] == 595 && g->nv[60] == 1 && got_val(g, 60, "c") == 42);
    /* Limits across the boundary, both ways. */
    assert_int_equal(query(f->s, "mo", 350, 1000, NULL, 0, 7, 0, g), 0);
    assert_int_equal(g->n, 7);
    assert_true(g->ts[0] == 350 && g->ts[4] == 390 && g->ts[5] == 400 && g->ts[6] == 410);
    assert_int_equal(query(f->s, "mo", 0, 1000, NULL, 0, 25, 1, g), 0);
    assert_int_equal(g->n, 25);
    assert_int_equal(g->ts[0], 595);
    for (size_t i = 1; i < 25; i++)
        assert_int_equal(g->ts[i], 590 - (int64_t)(i - 1) * 10);
    /* A range inside the pending readings only, and one inside the rows only. */
    assert_int_equal(query(f->s, "mo", 455, 505, NULL, 0, 0, 1, g), 0);
    assert_true(g->n == 5 && g->ts[0] == 500 && g->ts[4] == 460);
    assert_int_equal(query(f->s, "mo", 100, 120, NULL, 0, 0, 0, g), 0);
    assert_true(g->n == 2 && g->ts[0] == 100 && g->ts[1] == 110);
    /* Channel filters: c is only in the pending readings, b everywhere but 595. */
    assert_int_equal(query(f->s, "mo", 0, 1000, c, 1, 0, 0, g), 0);
    assert_true(g->n == 1 && g->ts[0] == 595);
    static const char *const b[] = {"b"};
    assert_int_equal(query(f->s, "mo", 0, 1000, b, 1, 0, 1, g), 0);
    assert_true(g->n == 60 && g->ts[0] == 590 && g->ts[59] == 0);
    assert_true(g->vals[0][0] == ow_val(590, 1, 0));
    free(g);
}

/* Overwrites of pending readings, within one transaction and across transactions: the later
 * value of a (ts, channel) wins, the other channels stay, the point counters stay exact, and
 * the same holds after a reopen (rows and log replayed). */
static void test_pending_overwrite(void **state)
{
    fx_t *f = *state;
    static const char *const a[] = {"a"}, *const b[] = {"b"};
    /* One transaction: new points, an overwrite of one of them, new points again. */
    counter_t cnt;
    counter_init(&cnt);
    store__test_hold(f->s, 1);
    for (int k = 0; k < 3; k++) {
        batch_t bt;
        batch_init(&bt);
        if (k == 1) {
            const double v = -1;
            add_point(&bt, "ow", 3, 1, a, &v);
        } else {
            for (int64_t ts = k * 10; ts < k * 10 + 10; ts++) {
                const double v[] = {ow_val(ts, 0, 0), ow_val(ts, 1, 0)};
                static const char *const ab[] = {"a", "b"};
                add_point(&bt, "ow", ts, 2, ab, v);
            }
        }
        assert_int_equal(store_submit(f->s, &bt, on_done, &cnt), 0);
        batch_deinit(&bt);
    }
    store__test_hold(f->s, 0);
    counter_wait(&cnt, 3);
    assert_int_equal(cnt.ok, 3);
    counter_deinit(&cnt);
    /* Later transactions: new points (pending), then an overwrite of a pending one. */
    write_series(f->s, "ow", 30, 1, 10, 0);
    const double v = -2;
    write1(f->s, "ow", 35, 1, b, &v);
    write_series(f->s, "ow", 40, 1, 5, 0);
    for (int round = 0; round < 2; round++) {
        got_t *g = malloc(sizeof *g);
        assert_int_equal(query(f->s, "ow", 0, 100, NULL, 0, 0, 0, g), 0);
        assert_int_equal(g->n, 35);
        for (size_t i = 0; i < 35; i++) {
            int64_t ts = i < 10 ? (int64_t)i : (int64_t)i + 10;
            assert_int_equal(g->ts[i], ts);
            assert_true(got_val(g, i, "a") == (ts == 3 ? -1 : ow_val(ts, 0, 0)));
            assert_true(got_val(g, i, "b") == (ts == 35 ? -2 : ow_val(ts, 1, 0)));
        }
        free(g);
        assert_int_equal(device(f->s, "ow", 0).points, 35);
        store_close(f->s);
        f->s = open_store(f->dir, 0);
    }
}

/* The crash test's child: writes through a store and dies without closing it. Plain checks
 * (no cmocka in a forked child); the exit status says which step failed. */
static int child_series(store_t *s, const char *dev, int64_t ts0, size_t n, double off)
{
    static const char *const ch[] = {"a", "b"};
    batch_t b;
    batch_init(&b);
    for (size_t i = 0; i < n; i++) {
        int64_t ts = ts0 + (int64_t)i;
        const double v[] = {ow_val(ts, 0, off), ow_val(ts, 1, off)};
        if (batch_point_begin(&b, dev, strlen(dev), ts, 0) != 0)
            return -1;
        for (int c = 0; c < 2; c++)
            if (batch_field_add(&b, ch[c], 1, v[c]) != 0)
                return -1;
        batch_point_commit(&b);
    }
    int err = store_write(s, &b);
    batch_deinit(&b);
    return err;
}

#define CRASH_CP (STORE_PEND_POINTS + STORE_PEND_POINTS / 2)

static void crash_child(const char *dir)
{
    store_opts_t o;
    store_opts_default(&o);
    o.dir = dir;
    o.sync_full = 0; /* a process crash: the WAL's write() is enough */
    store_t *s = NULL;
    if (store_open(&s, &o, NULL, 0) != 0)
        _exit(10);
    int step = 11;
    /* cp: CRASH_CP points in batches of 8: one row, the rest pending. */
    for (int i = 0; i < CRASH_CP / 8; i++)
        if (child_series(s, "cp", i * 8, 8, 0) != 0)
            _exit(step);
    step++;
    /* cq: pending, then an overwrite that moves them into rows, then pending again. */
    if (child_series(s, "cq", 0, 30, 0) != 0 || child_series(s, "cq", 5, 1, 0.5) != 0 ||
        child_series(s, "cq", 30, 5, 0) != 0)
        _exit(step);
    step++;
    /* cr: pending readings, deleted, then created again with other points. */
    if (child_series(s, "cr", 0, 20, 0) != 0 || store_device_delete(s, "cr") != 0 ||
        child_series(s, "cr", 1000, 3, 0) != 0)
        _exit(step);
    _exit(0); /* no store_close: nothing written out, checkpointed or flushed */
}

/* Acknowledged readings survive a crash of the process: what was pending lives in the log and
 * is replayed at open, overwrites and deletions included; writing continues where it was. */
static void test_pending_crash(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    f->s = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        crash_child(f->dir);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    f->s = open_store(f->dir, 0);
    int64_t pts;
    assert_int_equal(chunk_rows(f->dir, "cp", &pts), 1);
    assert_true(pts < CRASH_CP);
    check_series(f->s, "cp", 0, CRASH_CP, 0);
    got_t *g = malloc(sizeof *g);
    assert_int_equal(query(f->s, "cq", 0, 100, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 35);
    for (size_t i = 0; i < 35; i++) {
        assert_int_equal(g->ts[i], (int64_t)i);
        double off = i == 5 ? 0.5 : 0;
        assert_true(got_val(g, i, "a") == ow_val((int64_t)i, 0, off));
    }
    assert_int_equal(device(f->s, "cq", 0).points, 35);
    check_series(f->s, "cr", 1000, 3, 0);
    free(g);
    /* Writing continues after the replayed pending readings, across another reopen. */
    write_series(f->s, "cp", CRASH_CP, 1, 10, 0);
    check_series(f->s, "cp", 0, CRASH_CP + 10, 0);
    store_close(f->s);
    f->s = open_store(f->dir, 0);
    check_series(f->s, "cp", 0, CRASH_CP + 10, 0);
    check_series(f->s, "cr", 1000, 3, 0);
    assert_int_equal(store__test_pend_flush(f->s), 0);
    check_series(f->s, "cp", 0, CRASH_CP + 10, 0);
    assert_int_equal(log_rows(f->dir), 1);
}

/* A reader running beside the writer sees each query as of one commit: the points written so
 * far, contiguous, never one twice or one missing, while pending readings become rows. */
typedef struct race {
    store_t *s;
    int stop;
    int bad;
    size_t queries;
    pthread_mutex_t mu;
} race_t;

static void *race_reader(void *arg)
{
    race_t *r = arg;
    got_t *g = malloc(sizeof *g);
    size_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
        store_query_t q = {"race", 0, INT64_MAX, NULL, 0, 0, 0, 0, 0};
        memset(g, 0, sizeof *g);
        int err = store_query(r->s, &q, collect, g);
        if (err == ERR_NOTFOUND)
            continue;
        int bad = err != 0 || g->n < seen;
        for (size_t i = 0; i < g->n && !bad; i++)
            bad = g->ts[i] != (int64_t)i || got_val(g, i, "a") != ow_val((int64_t)i, 0, 0);
        seen = g->n;
        pthread_mutex_lock(&r->mu);
        r->bad += bad;
        r->queries++;
        pthread_mutex_unlock(&r->mu);
    }
    free(g);
    return NULL;
}

static void test_pending_concurrent_reader(void **state)
{
    fx_t *f = *state;
    race_t r = {f->s, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, race_reader, &r), 0);
    /* 1000 points (the got_t bound) in batches of 1-3, so rows are cut at many places. */
    for (int64_t ts = 0; ts < 1000;) {
        size_t n = 1 + (size_t)(ts % 3);
        if (ts + (int64_t)n > 1000)
            n = (size_t)(1000 - ts);
        write_series(f->s, "race", ts, 1, n, 0);
        ts += (int64_t)n;
    }
    pthread_mutex_lock(&r.mu);
    r.stop = 1;
    pthread_mutex_unlock(&r.mu);
    assert_int_equal(pthread_join(th, NULL), 0);
    pthread_mutex_destroy(&r.mu);
    assert_int_equal(r.bad, 0);
    assert_true(r.queries > 0);
    int64_t pts;
    assert_true(chunk_rows(f->dir, "race", &pts) >= 1000 / (2 * STORE_PEND_POINTS));
    check_series(f->s, "race", 0, 1000, 0);
}

const struct CMUnitTest storage_pending_tests[] = {
    cmocka_unit_test_setup_teardown(test_pending_rows, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pending_merge_order, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pending_overwrite, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pending_crash, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pending_concurrent_reader, setup, teardown),
};
const size_t storage_pending_ntests =
    sizeof storage_pending_tests / sizeof storage_pending_tests[0];

/* tests/test_storage_idle.c: unit tests of storage/, the writer's idle work after a back-off
 * (task wake: an idle store compacts a device, or the queue after a full disk, when the back-off
 * ends, without polling; task maint5: after a failed client transaction, and a resumed run of
 * failures logged as any run's first), and compaction while a query reads.
 *
 * Split from test_storage_compaction.c (which had grown past 1,000 lines), whose table it
 * follows in tests/test_storage.c's main(); the helpers both use are in storage_fx.c. */
#include "storage_fx.h"

/* ---- Session 31 (task wake): the writer wakes when a compaction back-off ends ---- */

static uint64_t writer_waits(store_t *s)
{
    pthread_mutex_lock(&s->qmu);
    uint64_t n = s->writer_waits;
    pthread_mutex_unlock(&s->qmu);
    return n;
}

/* With no write, waits (up to wait_ms after end, the back-off's end) for "bad", now in rows
 * rows, to be compacted into one (before the idle work's wakes: several, until a write), and
 * checks the writer does not poll: at most 4 wakes up to it, none in the 500 ms after (an
 * untimed wait), and the back-off list empty. Returns the time (vtime_mono_ms) it was seen
 * compacted. */
static int64_t idle_compaction(fx_t *f, size_t rows, int64_t end, int64_t wait_ms)
{
    uint64_t w0 = writer_waits(f->s);
    while (rows > 1 && vtime_mono_ms() < end + wait_ms) {
        usleep(50000);
        rows = chunk_rows(f->dir, "bad", NULL);
    }
    assert_int_equal(rows, 1); /* before: several, until a write */
    int64_t at = vtime_mono_ms();
    uint64_t w1 = writer_waits(f->s);
    assert_true(w1 - w0 <= 4);
    usleep(500000);
    assert_int_equal(writer_waits(f->s), w1);
    assert_int_equal(wst(f->s).ncfail, 0);
    return at;
}

/* Task wake, item 1: an idle store (no write after the failure) compacts a device when its
 * back-off ends. "bad"'s compaction fails (a trigger); the trigger dropped, nothing is written:
 * within a bounded wait after its back-off's end it is in one row. Before: the writer slept
 * until the next write (no retention: an untimed wait), so "bad" kept its small rows. The
 * writer does not spin: a handful of wakes up to the compaction, none in the 500 ms after. */
static void test_compaction_idle_after_backoff(void **state)
{
    fx_t *f = *state;
    int64_t t0 = vtime_now_ms(), lb;
    bad_fails_once(f, t0, &lb);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(store__test_exec(f->s, "DROP TRIGGER inject_b"), 0);
    assert_int_equal(store_flush(f->s), 0);
    const store_cfail_t *e = cfail_of(f->s, "bad");
    assert_non_null(e);
    int64_t end = e->next_ms;
    assert_true(vtime_mono_ms() < end); /* the flushes came within its back-off */
    size_t rows = chunk_rows(f->dir, "bad", NULL);
    assert_true(rows > 1);
    /* No write from here: at most 3 s after the back-off's end (1 s), woken for the end. */
    assert_true(idle_compaction(f, rows, end, 3000) >= end);
    assert_bad_kept(f, 1, 0, t0, lb);
}

/* Task wake, item 1, the general back-off: after a full disk ("w0" and "w1" queued, the general
 * back-off at 1 s), the cap is lifted and nothing else is written: within a bounded wait after
 * the back-off's end the idle work compacts them (maint_nospace and the run end). Before: an
 * untimed wait (no retention) until the next write. */
static void test_maint_idle_after_backoff(void **state)
{
    fx_t *f = *state;
    uint64_t rng;
    batch_t b;
    full_disk_begin(f->s, &b, &rng);
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1073741823"), 0);
    assert_int_equal(store_flush(f->s), 0);
    int64_t end = wst(f->s).bo_maint.next_ms;
    assert_true(vtime_mono_ms() < end); /* still backing off: nothing compacted yet */
    assert_true(wst(f->s).ncompact > 0);
    size_t rows = chunk_rows(f->dir, "w0", NULL);
    assert_true(rows > 2);
    uint64_t w0 = writer_waits(f->s);
    while (wst(f->s).maint_nospace && vtime_mono_ms() < end + 3000)
        usleep(50000);
    usleep(100000); /* the transaction's commit, seen through a new connection */
    assert_false(wst(f->s).maint_nospace); /* before: still set, until a write */
    assert_true(vtime_mono_ms() >= end);
    assert_true(chunk_rows(f->dir, "w0", NULL) < rows);
    assert_int_equal(wst(f->s).bo_maint.fails, 0);
    uint64_t w1 = writer_waits(f->s);
    assert_true(w1 - w0 <= 4);
    usleep(500000);
    assert_int_equal(writer_waits(f->s), w1);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(st.maintenance_errors, 1);
    batch_deinit(&b);
}

/* ---- Session 32 (task maint5): the back-off's last loose ends ---- */

/* A client transaction fails: the device "x..." cannot be created. */
#define REFUSE_X_DEVICE                                                                            \
    "CREATE TRIGGER inject_x BEFORE INSERT ON devices WHEN NEW.name LIKE 'x%' BEGIN"               \
    " SELECT RAISE(ABORT, 'injected'); END"

/* Task maint5, item 1: after a failed client transaction the idle work is retried after a
 * bounded back-off, not only at the next write. "bad"'s compaction fails (a trigger, back-off
 * 1 s); the trigger dropped, a client transaction fails (a device the database refuses) within
 * that back-off; nothing is written after: "bad" is compacted within a bounded wait. Before:
 * the writer slept untimed after the failure, so "bad" kept its small rows until a write. No
 * busy loop: a handful of wakes up to the compaction, none in the 500 ms after. */
static void test_idle_work_after_client_failure(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    double v = 0;
    int64_t t0 = vtime_now_ms(), lb;
    bad_fails_once(f, t0, &lb);
    assert_int_equal(store__test_exec(f->s, "DROP TRIGGER inject_b"), 0);
    assert_int_equal(store__test_exec(f->s, REFUSE_X_DEVICE), 0);
    batch_t b;
    batch_init(&b);
    add_point(&b, "x1", t0, 1, ch, &v);
    assert_int_not_equal(store_write(f->s, &b), 0); /* the client transaction failed */
    batch_deinit(&b);
    const store_cfail_t *e = cfail_of(f->s, "bad");
    assert_non_null(e);
    int64_t end = e->next_ms;
    assert_true(vtime_mono_ms() < end); /* the failure came within its back-off */
    size_t rows = chunk_rows(f->dir, "bad", NULL);
    assert_true(rows > 1);
    /* No write from here: the retry comes 1 s after the failure, the back-off's end about as
     * soon; at most 4 s after the latter, woken for the retry and the end. */
    idle_compaction(f, rows, end, 4000);
    assert_bad_kept(f, 1, 1, t0, lb);
}

#define REFUSE_C1_TRIGGER                                                                          \
    "CREATE TRIGGER inject_c BEFORE INSERT ON readings WHEN NEW.n >= 2 AND NEW.device_id IN"       \
    " (SELECT id FROM devices WHERE name = 'c1') BEGIN SELECT RAISE(ABORT, 'injected'); END"

/* Task maint5, item 3: a device's run of compaction failures that resumes a remembered count
 * (maint4, item 3) logs its first failure with its name, as any run's first. "b1" keeps failing
 * (so compaction's run of failures, and its once-a-minute limit, lasts); "c1" fails (logged),
 * is compacted once its trigger is dropped (its run ends), and fails again with the trigger
 * back: a new run, resumed at count 1. Its name is logged twice. Before: once (the resumed
 * run's first failure was counted as a repeat within b1's minute, not logged). */
static void test_compaction_resumed_run_logged(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    int64_t t0 = vtime_now_ms(), l1 = t0, lc = t0;
    double v = 0;
    write1(f->s, "b1", t0, 1, ch, &v);
    write1(f->s, "c1", t0, 1, ch, &v);
    assert_int_equal(store__test_exec(f->s, REFUSE_B_TRIGGER), 0);
    assert_int_equal(store__test_exec(f->s, REFUSE_C1_TRIGGER), 0);
    errcap_t e;
    errcap_start(&e, f->dir);
    small_rows_until(f->s, "b1", &l1, 1);
    rounds_until_cfail(f->s, "c1", &lc);
    assert_int_equal(store__test_exec(f->s, "DROP TRIGGER inject_c"), 0);
    /* Its back-off's end (1 s) wakes the idle work, which compacts it: its run ends. */
    for (int i = 0; i < 80 && (cfail_of(f->s, "c1") != NULL || chunk_rows(f->dir, "c1", NULL) > 1);
         i++)
        usleep(50000);
    assert_null(cfail_of(f->s, "c1"));
    assert_int_equal(chunk_rows(f->dir, "c1", NULL), 1);
    assert_non_null(cfail_of(f->s, "b1")); /* compaction's run goes on */
    /* The compacted row ends at lc: the next rounds' rows go after it. */
    lc += 5000;
    write1(f->s, "c1", lc, 1, ch, &v);
    assert_int_equal(store__test_exec(f->s, REFUSE_C1_TRIGGER), 0);
    const store_cfail_t *c = rounds_until_cfail(f->s, "c1", &lc);
    assert_int_equal(c->fails, 2); /* resumed (maint4) */
    assert_int_equal(store_flush(f->s), 0);
    char *text = errcap_stop(&e);
    int nc = count_in(text, "compaction of device \"c1\"");
    int nb = count_in(text, "compaction of device \"b1\"");
    free(text);
    assert_int_equal(nc, 2); /* before: 1 */
    assert_int_equal(nb, 1); /* b1's repeats: counted, not logged */
    store_test_wstate_t w = wst(f->s);
    assert_true(w.bo_compact.fails >= 3);
    assert_int_equal(w.bo_compact.unlogged, w.bo_compact.fails - 3); /* all but three firsts */
}

/* Compaction while a query reads: a query of "cq" (three full rows of 300 points, which no
 * compaction merges, and 50 pending readings after them) calls back its first point, and there,
 * while its read transaction is open, the writer commits a late reading into the second row and
 * 48 readings after the pending ones, each its own small row (the late one makes the
 * transaction's runs go to rows directly), which the same transaction compacts with the pending
 * ones written out (STORE_COMPACT_ROWS small rows: late_small_rows). The query goes on
 * reading its snapshot and its copy of the pending readings: exactly the 950 points it began
 * with, in order, with their values, none of the new ones and none twice; the next query reads
 * all 999, the small rows merged. Deterministic: the writes are acknowledged before the callback
 * returns. */
struct cq_read {
    store_t *s;
    got_t *g;
};

#define CQ_LATE 48 /* 3 * STORE_COMPACT_ROWS */

static int cq_collect(void *arg, int64_t ts, size_t n, const char *const *names, const double *vals)
{
    struct cq_read *c = arg;
    if (c->g->n == 0)
        late_small_rows(c->s, "cq", CQ_LATE, 450500, 950000, 1000, -1, -1);
    return collect(c->g, ts, n, names, vals);
}

static void test_compaction_while_a_query_reads(void **state)
{
    fx_t *f = *state;
    for (int k = 0; k < 3; k++)
        write_series(f->s, "cq", 1000 + 300000 * k, 1000, 300, 0);
    write_series(f->s, "cq", 901000, 1000, 50, 0);
    int64_t pts;
    assert_int_equal(chunk_rows(f->dir, "cq", &pts), 3);
    assert_int_equal(pts, 900);
    assert_int_equal(device(f->s, "cq", 0).points, 950);
    got_t *g = calloc(1, sizeof *g);
    assert_non_null(g);
    struct cq_read c = {f->s, g};
    store_query_t q = {"cq", INT64_MIN, INT64_MAX, NULL, 0, 0, 0, 0, 0};
    assert_int_equal(store_query(f->s, &q, cq_collect, &c), 0);
    assert_int_equal(g->n, 950);
    for (size_t i = 0; i < 950; i++) {
        int64_t ts = 1000 + 1000 * (int64_t)i;
        assert_int_equal(g->ts[i], ts);
        assert_true(got_val(g, i, "a") == ow_val(ts, 0, 0));
        assert_true(got_val(g, i, "b") == ow_val(ts, 1, 0));
    }
    /* Committed meanwhile: the pending readings and the small rows written, and merged (else
     * 3 + 48 rows or more). */
    size_t rows = chunk_rows(f->dir, "cq", &pts);
    assert_int_equal(pts, 950 + CQ_LATE + 1);
    assert_true(rows <= 5);
    memset(g, 0, sizeof *g);
    assert_int_equal(query(f->s, "cq", INT64_MIN, INT64_MAX, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 950 + CQ_LATE + 1);
    assert_int_equal(g->ts[450], 450500);
    assert_true(got_val(g, 450, "a") == -1);
    assert_int_equal(g->ts[951], 951000); /* after the late one at index 450 */
    assert_int_equal(g->ts[950 + CQ_LATE], 950000 + 1000 * CQ_LATE);
    assert_true(got_val(g, 950 + CQ_LATE, "a") == -1 - CQ_LATE);
    free(g);
}

const struct CMUnitTest storage_idle_tests[] = {
    cmocka_unit_test_setup_teardown(test_compaction_idle_after_backoff, setup, teardown),
    cmocka_unit_test_setup_teardown(test_maint_idle_after_backoff, setup, teardown),
    cmocka_unit_test_setup_teardown(test_idle_work_after_client_failure, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_resumed_run_logged, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_while_a_query_reads, setup, teardown),
};
const size_t storage_idle_ntests = sizeof storage_idle_tests / sizeof storage_idle_tests[0];

/* tests/test_storage_fulldisk.c: unit tests of storage/, a full disk and out of memory: the writer
 * refusing and recovering, maintenance on a full disk, savepoints, space coming back and client
 * batches kept.
 *
 * Moved from tests/test_storage.c, whose main() runs this file's table with the others. */
#include "storage_fx.h"
#include "test_atomic.h"

static void test_disk_full(void **state)
{
    fx_t *f = *state;
    const char *ch[] = {"v"};
    const double v = 1;
    write1(f->s, "before", 1, 1, ch, &v);
    /* Review: the device index's seed, drawn at store_open, stays through the reload of the
     * maps after the failed transaction below (store__maps_load keeps a drawn seed). */
    store_test_wstate_t w;
    assert_int_equal(store__test_wstate(f->s, &w), 0);
    const uint64_t seed = w.didx_seed;
    assert_true(seed != 0);
    /* Caps the database at its current size (SQLite raises a smaller cap to the page count). */
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1"), 0);
    batch_t b;
    batch_init(&b);
    fill_batch(&b, "newdev", 0, 20000);
    assert_int_equal(store_write(f->s, &b), ERR_NOSPACE);
    assert_non_null(strstr(store_errmsg(f->s), "full"));
    /* Right after, submissions are refused quickly and the batch is left alone. */
    fill_batch(&b, "newdev", 0, 10);
    assert_int_equal(store_submit(f->s, &b, on_done, NULL), ERR_NOSPACE);
    assert_int_equal(b.npoints, 10);
    batch_reset(&b);
    /* Nothing of the failed transaction is visible, in the database or in the writer's maps. */
    device(f->s, "newdev", ERR_NOTFOUND);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_true(st.commit_errors >= 1);
    assert_int_equal(st.queue_readings, 0);
    assert_int_equal(store__test_wstate(f->s, &w), 0);
    assert_true(w.didx_seed == seed);
    /* Space returns: writes resume by themselves once the back-off has passed. */
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1073741823"), 0);
    int err = ERR_NOSPACE;
    for (int i = 0; i < 100 && err == ERR_NOSPACE; i++) {
        fill_batch(&b, "newdev", 0, 20000);
        err = store_write(f->s, &b);
        if (err == ERR_NOSPACE) {
            batch_reset(&b);
            usleep(50000);
        }
    }
    assert_int_equal(err, 0);
    batch_deinit(&b);
    devinfo_t d = device(f->s, "newdev", 0);
    assert_int_equal(d.points, 20000);
    assert_int_equal(d.nch, 1);
    assert_int_equal(device(f->s, "before", 0).points, 1);
    assert_int_equal(store__test_wstate(f->s, &w), 0);
    assert_true(w.didx_seed == seed);
}

/* n points of "big" from t0, 1 ms apart, of pseudo-random values (they do not compress, so the
 * database grows by new pages). */
static void add_big(batch_t *b, int64_t t0, int n, uint64_t *rng)
{
    static const char *const ch[] = {"v"};
    for (int i = 0; i < n; i++) {
        *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
        double v = (double)(*rng >> 11);
        add_point(b, "big", t0 + i, 1, ch, &v);
    }
}

/* Full disk during maintenance (task maint3, item 1a), made for real: PRAGMA max_page_count
 * caps the database at its page count in the transaction that gave "w0" and "w1" 15 small rows
 * of FD_CH random channels each (too few for a client transaction's compaction), so the idle
 * compaction right after needs overflow pages the file may not have: SQLITE_FULL,
 * ERR_NOSPACE, every step backing off together (bo_maint). Then 40 rounds 100 ms apart write
 * "tiny" (its pending readings fit in the pages there are) and, every third, "w0" at one late
 * ts again (a small row rewritten, which fits; with its 15 it makes "w0" due for a client
 * transaction's compaction). Asserts: all
 * 40 acknowledged and no commit error (a retry in a client transaction would have lost its
 * batch: SQLite rolls the whole transaction back for SQLITE_FULL there); the failures within
 * the back-off's bound for the time (the k-th at least 2^(k-1) - 1 s after the first: 3 in
 * 4 s, all in one run of the back-off; before, a client transaction whose maintenance had nothing
 * to do ended the back-off, so it stayed at 1 s: 4 in 3.1 s, the run count back at 1); none
 * counted as a savepoint rollback. With the cap raised, the devices
 * are compacted (they were queued again after each failure's reload) and the back-off ends;
 * every acknowledged point is there after a reopen. */
static void test_maint_full_disk(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    double v = 0;
    uint64_t rng;
    batch_t b;
    const int64_t t0 = full_disk_begin(f->s, &b, &rng);
    store_stats_t st;
    int64_t start = vtime_mono_ms();
    int ok = 0;
    for (int r = 1; r <= 40; r++) {
        add_point(&b, "tiny", t0 + r, 1, ch, &v);
        if (r % 3 == 0)
            add_wide(&b, "w0", t0 + 6999, &rng); /* rewrites its late row: no new page */
        if (store_write(f->s, &b) == 0)
            ok++;
        batch_reset(&b);
        usleep(100000);
    }
    store_stats_get(f->s, &st);
    int64_t elapsed = vtime_mono_ms() - start;
    uint64_t bound = 1;
    while (((INT64_C(1) << bound) - 1) * STORE_RETAIN_PERIOD_MIN_MS <= elapsed)
        bound++;
    assert_int_equal(ok, 40);
    assert_int_equal(st.commit_errors, 0);
    assert_true(st.maintenance_errors >= 2); /* retried */
    assert_true(st.maintenance_errors <= bound);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(wst(f->s).bo_maint.fails, st.maintenance_errors); /* one run: not ended */
    assert_int_equal(st.maintenance_rollbacks, 0);

    /* Space returns: within the back-off (at most 4 s now) and the next write, both compacted. */
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1073741823"), 0);
    size_t rows0 = 99, rows1 = 99;
    for (int r = 41; r <= 140 && (rows0 > 2 || rows1 > 2); r++) {
        add_point(&b, "tiny", t0 + r, 1, ch, &v);
        assert_int_equal(store_write(f->s, &b), 0);
        usleep(100000);
        rows0 = chunk_rows(f->dir, "w0", NULL);
        rows1 = chunk_rows(f->dir, "w1", NULL);
        ok++;
    }
    assert_true(rows0 <= 2);
    assert_true(rows1 <= 2);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(wst(f->s).bo_maint.fails, 0);
    assert_false(wst(f->s).maint_nospace);
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 0);

    store_close(f->s);
    f->s = open_store(f->dir, 0);
    assert_int_equal(all_points(f->s, "tiny").n, 1 + ok);
    assert_int_equal(all_points(f->s, "w0").n, 1 + 14 + 1);
    assert_int_equal(all_points(f->s, "w1").n, 1 + 14);
    batch_deinit(&b);
}

/* Preparing the maintenance savepoint fails (task maint3, item 1c; the test hook makes SQLite
 * refuse the statement, "SAVEPOINT" without a name, on the real prepare path): the client
 * transaction that meets it still commits its batch, the failure is counted once as
 * maintenance but not as a savepoint rollback (nothing ran), no commit error, and the points
 * are there. Would catch: the batch failed with the preparation (ERR_IO), the failure counted
 * as a rollback, or the maps reloaded as after an undone step. Then, unbroken, the device is
 * compacted and the back-off ends. */
static void test_maint_savepoint_prepare(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    int64_t t0 = vtime_now_ms();
    double v = 1;
    write1(f->s, "d", t0, 1, ch, &v);
    store__test_savepoint_break(f->s, 1);
    batch_t b;
    batch_init(&b);
    /* A late reading and a new one: small rows, so the transaction runs maintenance. */
    add_point(&b, "d", t0 - 1000, 1, ch, &v);
    add_point(&b, "d", t0 + 1000, 1, ch, &v);
    assert_int_equal(store_write(f->s, &b), 0);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.maintenance_errors, 1);
    assert_int_equal(st.maintenance_rollbacks, 0);
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(all_points(f->s, "d").n, 3);
    size_t rows = chunk_rows(f->dir, "d", NULL);
    assert_true(rows >= 2); /* not compacted: nothing ran */
    store__test_savepoint_break(f->s, 0);
    for (int r = 2; r <= 60 && rows > 1; r++) {
        add_point(&b, "d", t0 + r * 1000, 1, ch, &v);
        assert_int_equal(store_write(f->s, &b), 0);
        usleep(50000);
        rows = chunk_rows(f->dir, "d", NULL);
    }
    assert_int_equal(rows, 1);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(wst(f->s).bo_maint.fails, 0);
    store_stats_get(f->s, &st);
    assert_int_equal(st.maintenance_errors, 1);
    assert_int_equal(st.commit_errors, 0);
    batch_deinit(&b);
}

/* Out of memory in maintenance (task maint3, item 1b): run by hand under tests/fault/failalloc.c
 * (not by ctest: unit_storage_failalloc's filter, in tests/CMakeLists.txt, names one test):
 *   LD_PRELOAD=build/libvigil_failalloc.so VIGIL_TEST_ONLY=test_maint_oom
 *   VIGIL_FAILALLOC_FLAG=/tmp/x.flag VIGIL_FAILALLOC_THREAD=store-writer VIGIL_FAILALLOC_MIN=8192
 *   build/test_storage
 * skipped without. With the flag file present (8 KiB and more fail on the writer thread), the
 * rounds of test_maint_full_disk's "w0" (small rows of FD_CH channels: a batch's runs need
 * less) commit, and the idle compaction of its 15 rows (600 cells) fails: ERR_NOMEM,
 * counted once, every step backing off together; the flag removed, it is compacted. */
static void test_maint_oom(void **state)
{
    fx_t *f = *state;
    const char *flag = getenv("VIGIL_FAILALLOC_FLAG");
    if (flag == NULL || getenv("LD_PRELOAD") == NULL)
        skip();
    uint64_t rng = 1;
    int64_t t0 = vtime_now_ms();
    batch_t b;
    batch_init(&b);
    add_wide(&b, "w0", t0, &rng);
    assert_int_equal(store_write(f->s, &b), 0);
    assert_int_equal(test_write_atomic(flag, "8192\n"), 0);
    store__test_hold(f->s, 1);
    counter_t c;
    counter_init(&c);
    for (int r = 1; r <= 7; r++) {
        add_wide(&b, "w0", t0 + r * 1000 - 1001, &rng);
        add_wide(&b, "w0", t0 + r * 1000, &rng);
        assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    }
    store__test_hold(f->s, 0);
    counter_wait(&c, 7);
    store_stats_t st;
    for (int i = 0; i < 100; i++) {
        store_stats_get(f->s, &st);
        if (st.maintenance_errors > 0)
            break;
        usleep(20000);
    }
    unlink(flag);
    assert_int_equal(c.bad, 0);
    assert_int_equal(st.maintenance_errors, 1);
    assert_int_equal(st.commit_errors, 0);
    assert_true(chunk_rows(f->dir, "w0", NULL) >= 15);
    size_t rows = 99, n = 1 + 14;
    for (int r = 8; r <= 60 && rows > 1; r++) {
        add_wide(&b, "w0", t0 + r * 1000, &rng); /* pending: wakes the writer */
        assert_int_equal(store_write(f->s, &b), 0);
        n++;
        usleep(100000);
        rows = chunk_rows(f->dir, "w0", NULL);
    }
    assert_int_equal(rows, 1);
    store_stats_get(f->s, &st);
    assert_int_equal(st.maintenance_errors, 1);
    assert_int_equal(all_points(f->s, "w0").n, n);
    batch_deinit(&b);
    counter_deinit(&c);
}

/* ---- Review (session 30) of maint3: a writer that never idles after a full disk ---- */

/* A chain of client batches, each submitted from the previous one's callback (on the writer
 * thread, before its idle work), so the writer never idles while the chain runs: a saturated
 * writer. Each batch: a point of "tiny" and, every third, "w0"'s late row rewritten (which makes
 * "w0" due for a client transaction's compaction). The callback sleeps 20 ms after queueing the
 * next (the queue stays non-empty), so the chain is bounded in rate; it stops at stop or at the
 * first failure (a submit refused or a batch failed: a client's readings refused). */
typedef struct chain {
    store_t *s;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stop, running, sent, ok, bad;
    int64_t t0;
    uint64_t rng;
} chain_t;

static void chain_next(void *arg, int status);

/* mu held. */
static void chain_submit(chain_t *c)
{
    static const char *const ch[] = {"v"};
    double v = 3;
    batch_t b;
    batch_init(&b);
    c->sent++;
    add_point(&b, "tiny", c->t0 + 1000 + c->sent, 1, ch, &v);
    if (c->sent % 3 == 0)
        add_wide(&b, "w0", c->t0 + 6999, &c->rng);
    if (store_submit(c->s, &b, chain_next, c) != 0) {
        c->bad++;
        c->running = 0;
        pthread_cond_broadcast(&c->cond);
    }
    batch_deinit(&b);
}

static void chain_next(void *arg, int status)
{
    chain_t *c = arg;
    pthread_mutex_lock(&c->mu);
    if (status == 0)
        c->ok++;
    else
        c->bad++;
    if (c->stop || c->bad > 0 || c->sent >= 1000) {
        c->running = 0;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    chain_submit(c);
    pthread_mutex_unlock(&c->mu);
    usleep(20000);
}

static void chain_start(chain_t *c, store_t *s, int64_t t0)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->s = s;
    c->t0 = t0;
    c->rng = 7;
    c->running = 1;
    pthread_mutex_lock(&c->mu);
    chain_submit(c);
    pthread_mutex_unlock(&c->mu);
}

/* Whether the chain still submits batches (it stops at a failure, after 1,000 or when told). */
static int chain_running(chain_t *c)
{
    pthread_mutex_lock(&c->mu);
    int running = c->running;
    pthread_mutex_unlock(&c->mu);
    return running;
}

static void chain_stop(chain_t *c)
{
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    while (c->running)
        pthread_cond_wait(&c->cond, &c->mu);
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
}

/* After a full disk, a writer that never idles (the chain) with the cap raised again: the
 * devices are compacted while the chain runs (before the review's fix compaction after a full
 * disk waited for an idle transaction, which a saturated writer never has, and without
 * retention nothing else ended the wait: "w0" kept its 16 small rows as long as the chain ran),
 * and no client batch fails. */
static void test_maint_full_disk_busy(void **state)
{
    fx_t *f = *state;
    uint64_t rng;
    batch_t b;
    const int64_t t0 = full_disk_begin(f->s, &b, &rng);
    chain_t c;
    chain_start(&c, f->s, t0);
    usleep(300000);
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1073741823"), 0);
    size_t rows0 = 99, rows1 = 99;
    for (int i = 0; i < 80 && (rows0 > 2 || rows1 > 2); i++) {
        usleep(100000);
        rows0 = chunk_rows(f->dir, "w0", NULL);
        rows1 = chunk_rows(f->dir, "w1", NULL);
    }
    int running = chain_running(&c);
    chain_stop(&c);
    assert_true(running); /* compacted while the writer never idled */
    assert_int_equal(c.bad, 0);
    assert_true(rows0 <= 2);
    assert_true(rows1 <= 2);
    assert_int_equal(store_flush(f->s), 0); /* the writer's fields read after its work */
    assert_false(wst(f->s).maint_nospace);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(all_points(f->s, "tiny").n, 1 + c.ok);
    batch_deinit(&b);
}

/* After a full disk, with retention on (a sweep each second, nothing old enough to remove),
 * a saturated writer (the chain) for 5 s with the cap still on: no client batch fails. Before
 * the review's fix a retention step that removed nothing counted as a step that wrote: it ended
 * the general back-off and maint_nospace, so the next client transaction compacted "w0" again,
 * SQLite rolled back the whole transaction for SQLITE_FULL and the client's batch failed. The
 * general back-off stays one run (not ended by those steps). */
static void test_maint_full_disk_retention(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    f->s = open_retention(f->dir, 10000);
    uint64_t rng;
    batch_t b;
    const int64_t t0 = full_disk_begin(f->s, &b, &rng);
    chain_t c;
    chain_start(&c, f->s, t0);
    for (int i = 0; i < 50; i++) {
        usleep(100000);
        if (!chain_running(&c))
            break;
    }
    chain_stop(&c);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(c.bad, 0);
    assert_int_equal(st.commit_errors, 0);
    assert_true(st.retention_steps >= 2);
    assert_true(st.maintenance_errors >= 2); /* compaction retried */
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(wst(f->s).bo_maint.fails, st.maintenance_errors);
    assert_int_equal(all_points(f->s, "tiny").n, 1 + c.ok);
    batch_deinit(&b);
}

/* Task maint4, item 4: after a full disk that ends with nothing left to compact (test_maint_
 * full_disk's start, then "w0" and "w1" deleted), the general back-off's count ends once a
 * commit grows the database (space is back): rows of "big" (one channel, full rows, so nothing
 * to compact) with the cap raised. A write that fits in the pages there were does not end it.
 * Before: the count stayed, so the next unrelated failure would back off 2 s, not 1. */
static void test_maint_full_disk_space_back(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    double v = 0;
    uint64_t rng;
    batch_t b;
    const int64_t t0 = full_disk_begin(f->s, &b, &rng);
    assert_int_equal(store_device_delete(f->s, "w0"), 0);
    assert_int_equal(store_device_delete(f->s, "w1"), 0);
    write1(f->s, "tiny", t0 + 1, 1, ch, &v);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(wst(f->s).bo_maint.fails, 1); /* the database did not grow */
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1073741823"), 0);
    add_big(&b, t0, 20000, &rng);
    assert_int_equal(store_write(f->s, &b), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(wst(f->s).bo_maint.fails, 0); /* before: 1 */
    assert_int_equal(wst(f->s).nospace_pages, 0);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(st.maintenance_errors, 1);
    assert_int_equal(all_points(f->s, "big").n, 20000);
    batch_deinit(&b);
}

/* A submission's status and the writer's state its callback saw (published before it). */
typedef struct seen {
    store_t *s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, status;
    store_test_wstate_t w;
    int wst_err; /* store__test_wstate's (asserted by the test thread) */
} seen_t;

static void on_done_seen(void *arg, int status)
{
    seen_t *a = arg;
    store_test_wstate_t w;
    int err = store__test_wstate(a->s, &w);
    pthread_mutex_lock(&a->mu);
    a->w = w;
    a->wst_err = err;
    a->status = status;
    a->done = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* Task maint5, item 2: after a full disk (test_maint_full_disk's start: "w0" and "w1" queued,
 * maint_nospace set), a commit that grows the database and its files ends maint_nospace
 * itself, so compaction returns to client transactions without waiting for an idle compaction
 * to write. In one client transaction (the writer held while both are queued, so no idle work
 * runs between): the cap raised, then 20,000 one-channel points of "big". The state after that
 * commit (read in its callback, before any idle work): maint_nospace 0, the devices still
 * queued. Before: 1 (it ended only when an idle compaction wrote). Then they are compacted, no
 * commit failed. */
static void test_maint_nospace_space_back(void **state)
{
    fx_t *f = *state;
    uint64_t rng;
    batch_t b;
    const int64_t t0 = full_disk_begin(f->s, &b, &rng);
    size_t rows = chunk_rows(f->dir, "w0", NULL);
    assert_true(rows > 2);
    store__test_hold(f->s, 1);
    exec_arg_t ea;
    pthread_t th;
    exec_queue(&ea, &th, f->s, "PRAGMA max_page_count=1073741823"); /* first */
    add_big(&b, t0, 20000, &rng);
    seen_t a = {.s = f->s};
    pthread_mutex_init(&a.mu, NULL);
    pthread_cond_init(&a.cv, NULL);
    assert_int_equal(store_submit(f->s, &b, on_done_seen, &a), 0);
    store__test_hold(f->s, 0);
    pthread_mutex_lock(&a.mu);
    while (!a.done)
        pthread_cond_wait(&a.cv, &a.mu);
    pthread_mutex_unlock(&a.mu);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(ea.status, 0);
    assert_int_equal(a.status, 0);
    assert_int_equal(a.wst_err, 0);
    assert_true(a.w.ncompact > 0); /* not compacted by that commit */
    /* Review: the commit ends the back-off's run, not maint_nospace (see
     * test_review_maint5_nospace_client_batch); the idle compaction right after it does. */
    assert_true(a.w.maint_nospace);
    assert_int_equal(a.w.bo_maint.fails, 0);
    for (int i = 0; i < 60 && (chunk_rows(f->dir, "w0", NULL) >= rows || wst(f->s).maint_nospace);
         i++)
        usleep(50000);
    assert_true(chunk_rows(f->dir, "w0", NULL) < rows);
    assert_false(wst(f->s).maint_nospace); /* no write since: ended by the idle compaction */
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(all_points(f->s, "big").n, 20000);
    pthread_cond_destroy(&a.cv);
    pthread_mutex_destroy(&a.mu);
    batch_deinit(&b);
}

/* ---- Review of maint5 ---- */

/* A submission whose callback queues the next batch at once (in the writer's thread, after the
 * commit and before the idle work), so no idle transaction runs between the two. */
typedef struct rv_chain {
    store_t *s;
    batch_t *next;
    counter_t *c;
    int submitted;
} rv_chain_t;

static void on_done_chain(void *arg, int status)
{
    rv_chain_t *a = arg;
    if (a->next != NULL)
        a->submitted = store_submit(a->s, a->next, on_done, a->c);
    on_done(a->c, status);
}

#define RV_PAGES 3
#define RV_BIG   300

/* The committed database's page count, through a connection of its own. */
static int64_t db_page_count(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/vigil.db", dir);
    return sql_int_ro(path, "PRAGMA page_count", NULL);
}

/* Review of maint5, item 2: a commit that grows the database and its files while the disk is
 * still nearly full must not put compaction back into the next client transaction, where its
 * SQLITE_FULL rolls the client's batch back with it. After full_disk_start ("w0" and "w1"
 * queued, maint_nospace set), one client transaction raises the cap, writes 2,000 points of
 * "big" (new pages: the page count and the WAL file grow) and caps the database again at its
 * new size; its callback queues "w0"'s late row again (16 small rows: due for a client
 * transaction's compaction) and a point of "tiny", which fit without compaction. Main
 * accepts that batch (maint_nospace still set: no compaction in it; the idle compaction fails
 * instead); the branch refused it (the commit had ended maint_nospace, the client
 * transaction's compaction met SQLITE_FULL). */
static void test_review_maint5_nospace_client_batch(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    double v = 0;
    uint64_t rng;
    batch_t b, b2;
    const int64_t t0 = full_disk_begin(f->s, &b, &rng);
    batch_init(&b2);
    counter_t c;
    counter_init(&c);
    add_point(&b2, "tiny", t0 + 1, 1, ch, &v);
    add_wide(&b2, "w0", t0 + 6999, &rng); /* rewrites its late row: no new page */
    rv_chain_t a = {f->s, &b2, &c, -1};
    /* The cap raised by a few pages only: "big" takes some, compaction's rewrite does not fit
     * in the rest (a disk with a little space back). */
    int64_t pages = db_page_count(f->dir);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count=%lld", (long long)pages + RV_PAGES);
    store__test_hold(f->s, 1);
    exec_arg_t e1;
    pthread_t th1;
    exec_queue(&e1, &th1, f->s, sql); /* first */
    add_big(&b, t0, RV_BIG, &rng);
    assert_int_equal(store_submit(f->s, &b, on_done_chain, &a), 0);
    store__test_hold(f->s, 0);
    counter_wait(&c, 1);
    assert_int_equal(pthread_join(th1, NULL), 0);
    assert_int_equal(e1.status, 0);
    assert_int_equal(c.bad, 0);
    assert_true(db_page_count(f->dir) > pages); /* the database grew */
    assert_int_equal(a.submitted, 0);
    counter_wait(&c, 2);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(c.bad, 0); /* before the fix: 1, the second batch refused */
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(all_points(f->s, "big").n, RV_BIG);
    assert_int_equal(all_points(f->s, "tiny").n, 2);
    counter_deinit(&c);
    batch_deinit(&b);
    batch_deinit(&b2);
}

/* Writes one reading of "before", then caps the database at its size: the next transaction
 * that grows it fails with ERR_NOSPACE (SQLite raises a smaller cap to the page count). */
static void cap_disk(fx_t *f)
{
    const char *ch[] = {"v"};
    const double v = 1;
    write1(f->s, "before", 1, 1, ch, &v);
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1"), 0);
}

/* Submits a batch of 20,000 points of a new device, "newdev" (b and c initialised here: the
 * caller deinits them), whose transaction fails with ERR_NOSPACE on a disk capped by cap_disk. */
static void submit_too_big(fx_t *f, batch_t *b, counter_t *c)
{
    counter_init(c);
    batch_init(b);
    fill_batch(b, "newdev", 0, 20000);
    assert_int_equal(store_submit(f->s, b, on_done, c), 0);
}

/* store_close says what its final drain lost (task stopfail: vigild's stop exits 1 on it). With
 * the writer held, a batch and a detector save are queued on a full disk; the close's
 * transaction fails, the batch hears ERR_NOSPACE before store_close returns, and store_close
 * returns ERR_NOSPACE. Before, store_close returned nothing: the loss was only logged. */
static void test_close_reports_failure(void **state)
{
    fx_t *f = *state;
    cap_disk(f);
    store__test_hold(f->s, 1); /* so both are drained by the close itself */
    counter_t c;
    batch_t b;
    submit_too_big(f, &b, &c);
    assert_int_equal(store_detector_put(f->s, "before", 1, "x", 1, NULL, 0), 0);
    const int rc = store_close(f->s);
    f->s = NULL; /* closed, even when the check below fails */
    assert_int_equal(rc, ERR_NOSPACE);
    assert_int_equal(c.done, 1); /* called back before store_close returned */
    assert_int_equal(c.bad, 1);
    counter_deinit(&c);
    batch_deinit(&b);
}

/* A close whose drain commits (a batch and a detector save queued behind a held writer)
 * returns 0, and they are stored. */
static void test_close_clean(void **state)
{
    fx_t *f = *state;
    const char *ch[] = {"v"};
    const double v = 1;
    write1(f->s, "before", 1, 1, ch, &v);
    store__test_hold(f->s, 1);
    counter_t c;
    counter_init(&c);
    batch_t b;
    batch_init(&b);
    fill_batch(&b, "newdev", 0, 100);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    assert_int_equal(store_detector_put(f->s, "before", 1, "x", 1, NULL, 0), 0);
    const int rc = store_close(f->s);
    f->s = open_store(f->dir, 0); /* the fixture's teardown closes it */
    assert_int_equal(rc, 0);
    assert_int_equal(c.ok, 1);
    assert_int_equal(all_points(f->s, "newdev").n, 100);
    counter_deinit(&c);
    batch_deinit(&b);
}

/* Task leftovers2: a transaction of store_flush markers alone, committed after a full disk,
 * wrote nothing, so it is no recovery: the run of failed transactions (commit_fail_run, which
 * the health check reads), the last commit's time and the refusal window after the full disk
 * (refusing_until_ms) are as the failure left them. Before: the flush's commit set the run to
 * 0, the last commit to its own time and the window to 0 (submissions accepted again, and
 * /health read recovered, with nothing written). */
static void test_flush_only_no_recovery(void **state)
{
    fx_t *f = *state;
    cap_disk(f);
    batch_t b;
    batch_init(&b);
    fill_batch(&b, "newdev", 0, 20000);
    assert_int_equal(store_write(f->s, &b), ERR_NOSPACE);
    batch_deinit(&b);
    store_stats_t st1, st2;
    store_stats_get(f->s, &st1);
    assert_int_equal(st1.commit_fail_run, 1);
    assert_true(st1.refusing_until_ms > 0);
    assert_int_equal(store_flush(f->s), 0); /* committed: nothing to write */
    store_stats_get(f->s, &st2);
    assert_int_equal(st2.commits, st1.commits + 1);
    assert_int_equal(st2.commit_fail_run, 1);                       /* before: 0 */
    assert_int_equal(st2.commit_last_ms, st1.commit_last_ms);       /* before: the flush's */
    assert_int_equal(st2.refusing_until_ms, st1.refusing_until_ms); /* before: 0 */
    assert_int_equal(st2.commit_last_err, ERR_NOSPACE);
    /* The disk has room again: the first commit that writes (the PRAGMA's job, then a
     * reading) ends the run and the refusal, so an idle store recovers at its next write. */
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1073741823"), 0);
    const char *ch[] = {"v"};
    const double v = 2;
    write1(f->s, "newdev", 2, 1, ch, &v);
    store_stats_get(f->s, &st2);
    assert_int_equal(st2.commit_fail_run, 0);
    assert_true(st2.commit_last_ms >= st1.commit_last_ms);
    assert_int_equal(st2.refusing_until_ms, 0);
}

/* Task dup61, item 5 (session 61): the arrivals' write stats (vigil_arrivals_write_seconds_total,
 * vigil_arrivals_written_total) count only the upserts of transactions that committed. With the
 * writer held, an arrivals put of "before" and a batch that grows the capped database are queued:
 * one transaction, in which the upsert runs and then the batch's SQLITE_FULL rolls everything
 * back: no row stored, nothing counted. With the cap lifted, the same put commits and counts one
 * row. Before: the rolled-back upsert counted (arrivals_write_rows 1, its time in the seconds). */
static void test_arrivals_stats_committed_only(void **state)
{
    fx_t *f = *state;
    cap_disk(f);
    const store_arrival_t a = {"before", 5000, 4000, 3000};
    store__test_hold(f->s, 1);
    assert_int_equal(store_arrivals_put(f->s, &a, 1), 0); /* first: its upsert runs */
    counter_t c;
    batch_t b;
    submit_too_big(f, &b, &c);
    store__test_hold(f->s, 0);
    counter_wait(&c, 1);
    assert_int_equal(c.bad, 1); /* the transaction failed */
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 1);
    assert_int_equal(st.ops_failed, 1); /* the arrivals put, lost with it */
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM arrivals"), 0);
    assert_int_equal(st.arrivals_write_rows, 0); /* before: 1 */
    assert_true(st.arrivals_write_seconds == 0.0);
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1073741823"), 0);
    assert_int_equal(store_arrivals_put(f->s, &a, 1), 0);
    assert_int_equal(store_flush(f->s), 0);
    store_stats_get(f->s, &st);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM arrivals WHERE seen_ms = 5000"), 1);
    assert_int_equal(st.arrivals_write_rows, 1);
    assert_true(st.arrivals_write_seconds > 0.0);
    counter_deinit(&c);
    batch_deinit(&b);
}

const struct CMUnitTest storage_fulldisk_tests[] = {
    cmocka_unit_test_setup_teardown(test_close_reports_failure, setup, teardown),
    cmocka_unit_test_setup_teardown(test_close_clean, setup, teardown),
    cmocka_unit_test_setup_teardown(test_flush_only_no_recovery, setup, teardown),
    cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
    cmocka_unit_test_setup_teardown(test_maint_full_disk, setup, teardown),
    cmocka_unit_test_setup_teardown(test_maint_savepoint_prepare, setup, teardown),
    cmocka_unit_test_setup_teardown(test_maint_oom, setup, teardown),
    cmocka_unit_test_setup_teardown(test_maint_full_disk_busy, setup, teardown),
    cmocka_unit_test_setup_teardown(test_maint_full_disk_retention, setup, teardown),
    cmocka_unit_test_setup_teardown(test_maint_full_disk_space_back, setup, teardown),
    cmocka_unit_test_setup_teardown(test_maint_nospace_space_back, setup, teardown),
    cmocka_unit_test_setup_teardown(test_review_maint5_nospace_client_batch, setup, teardown),
    cmocka_unit_test_setup_teardown(test_arrivals_stats_committed_only, setup, teardown),
};
const size_t storage_fulldisk_ntests =
    sizeof storage_fulldisk_tests / sizeof storage_fulldisk_tests[0];

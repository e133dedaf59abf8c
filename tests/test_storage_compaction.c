/* tests/test_storage_compaction.c: unit tests of storage/, compaction failures and back-offs:
 * writes kept, back-off per device, the failure memory (logged, forgotten, remembered, noted at
 * open), a device woken at its back-off's end. The writer's idle work after a back-off and
 * compaction while a query reads are in test_storage_idle.c; the helpers both use are in
 * storage_fx.c.
 *
 * Moved from tests/test_storage.c, whose main() runs this file's table with the others. */
#include "storage_fx.h"
#include "compact_int.h"

static void cf_round(store_t *s, int64_t base)
{
    static const char *const ch[] = {"v"};
    counter_t c;
    counter_init(&c);
    batch_t b;
    batch_init(&b);
    double v = 0;
    write1(s, "c", base + 100000, 1, ch, &v); /* pending */
    store__test_hold(s, 1);
    add_point(&b, "c", base + 50000, 1, ch, &v); /* late: the pending reading becomes a row */
    assert_int_equal(store_submit(s, &b, on_done, &c), 0);
    for (int i = 1; i < CF_BATCHES; i++) {
        v = i;
        add_point(&b, "c", base + 100000 + i * 1000, 1, ch, &v);
        assert_int_equal(store_submit(s, &b, on_done, &c), 0);
    }
    store__test_hold(s, 0);
    counter_wait(&c, CF_BATCHES);
    assert_int_equal(c.ok, CF_BATCHES); /* every batch acknowledged */
    batch_deinit(&b);
    counter_deinit(&c);
}

static void test_compaction_fails_writes_kept(void **state)
{
    fx_t *f = *state;
    assert_int_equal(store__test_exec(f->s, "CREATE TRIGGER inject_compact BEFORE INSERT ON"
                                            " readings WHEN NEW.n >= 12"
                                            " BEGIN SELECT RAISE(ABORT, 'injected'); END"),
                     0);
    cf_round(f->s, 0);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(st.maintenance_errors, 1);
    assert_int_equal(st.maintenance_rollbacks, 1);
    /* Every reading, in as many rows as written (no row of 12 or more). */
    assert_int_equal(all_points(f->s, "c").n, CF_BATCHES + 1);
    assert_int_equal(device(f->s, "c", 0).points, CF_BATCHES + 1);
    int64_t points;
    assert_int_equal(chunk_rows(f->dir, "c", &points), CF_BATCHES + 1);
    assert_int_equal(points, CF_BATCHES + 1);

    /* Without the trigger, after the back-off, a round like it is compacted. */
    assert_int_equal(store__test_exec(f->s, "DROP TRIGGER inject_compact"), 0);
    usleep(1000 * (STORE_RETAIN_PERIOD_MIN_MS + 200));
    cf_round(f->s, 3600000);
    store_stats_get(f->s, &st);
    assert_int_equal(st.maintenance_errors, 1);
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(all_points(f->s, "c").n, 2 * (CF_BATCHES + 1));
    assert_true(chunk_rows(f->dir, "c", NULL) < 2 * (CF_BATCHES + 1));

    store_close(f->s);
    f->s = open_store(f->dir, 0);
    assert_int_equal(all_points(f->s, "c").n, 2 * (CF_BATCHES + 1));
    assert_int_equal(device(f->s, "c", 0).points, 2 * (CF_BATCHES + 1));
}

/* A device whose compaction fails persistently (a trigger refuses every row of 2 points or more
 * of device "bad", which only its compaction writes) is backed off alone (session 28, task
 * maint2). Over a bounded run of writer transactions (rounds, 100 ms apart), each of which gives
 * every written device small rows (a late reading moves the pending one into a row, the late one
 * a row of its own): its failed compaction attempts are bounded by its back-off (the k-th at
 * least 2^(k-1) - 1 s after the first) although other steps succeed between them; the other
 * devices are compacted; retention (a 10 s horizon, so a sweep each second) completes sweeps
 * meanwhile; every acknowledged reading is on disk after a reopen. "g0".."g2" get readings every
 * round, "bad" every bad_every-th.
 *
 * test_compaction_backoff: 100 rounds, "bad" every 12th (1.2 s): at most 4 attempts in 7 to
 * 15 s. With main's writer.c 8 (one each time "bad" is queued again: the others' successes
 * ended its back-off). test_compaction_backoff_others: 80 rounds, "bad" every 4th, so it is
 * queued again within each back-off: with main's writer.c it stays in the compact list with the
 * others, so no compaction of theirs and no retention step commits (0 sweeps, g0 154 rows). */
#define CB_GOOD 3

static void cb_run(fx_t *f, int rounds, int bad_every)
{
    static const char *const ch[] = {"v"};
    static const char *const good[CB_GOOD] = {"g0", "g1", "g2"};
    store_close(f->s);
    f->s = open_retention(f->dir, 10000);
    int64_t t0 = vtime_now_ms() + 3600000; /* later than the horizon all along */
    double v = 0;
    write1(f->s, "bad", t0, 1, ch, &v); /* pending; the device exists for the trigger */
    for (int g = 0; g < CB_GOOD; g++)
        write1(f->s, good[g], t0, 1, ch, &v);
    assert_int_equal(store__test_exec(f->s, "CREATE TRIGGER inject_bad BEFORE INSERT ON"
                                            " readings WHEN NEW.n >= 2 AND NEW.device_id ="
                                            " (SELECT id FROM devices WHERE name = 'bad')"
                                            " BEGIN SELECT RAISE(ABORT, 'injected'); END"),
                     0);
    store_stats_t st0, st;
    store_stats_get(f->s, &st0);
    int64_t start = vtime_mono_ms();
    size_t nbad = 1, ngood = 1;
    int64_t last_bad = t0;
    for (int r = 1; r <= rounds; r++) {
        batch_t b;
        batch_init(&b);
        int64_t ts = t0 + r * 1000;
        v = r;
        /* Late (1 ms before the device's pending reading, after its rows), then the newest. */
        for (int g = 0; g < CB_GOOD; g++) {
            add_point(&b, good[g], ts - 1001, 1, ch, &v);
            add_point(&b, good[g], ts, 1, ch, &v);
        }
        if (r % bad_every == 0) {
            add_point(&b, "bad", last_bad - 1, 1, ch, &v);
            add_point(&b, "bad", ts, 1, ch, &v);
            last_bad = ts;
            nbad += 2;
        }
        ngood += 2;
        assert_int_equal(store_write(f->s, &b), 0); /* acknowledged */
        batch_deinit(&b);
        usleep(100000); /* idle: compaction and retention in transactions of their own */
    }
    store_stats_get(f->s, &st);
    /* The k-th attempt comes at least 2^(k-1) - 1 s after the first. */
    int64_t elapsed = vtime_mono_ms() - start;
    uint64_t bound = 1;
    while (((INT64_C(1) << bound) - 1) * STORE_RETAIN_PERIOD_MIN_MS <= elapsed)
        bound++;
    uint64_t failed = st.maintenance_errors - st0.maintenance_errors;
    uint64_t commits = st.commits - st0.commits;
    assert_true(commits >= (uint64_t)rounds);
    assert_true(failed >= 1);
    assert_true(failed <= bound);
    assert_int_equal(st.commit_errors, 0);
    assert_true(st.retention_sweeps - st0.retention_sweeps >= 2);
    /* "bad" kept every small row (one point each, most of its points); the others were
     * compacted (without, most of their points would be rows of one point). */
    int64_t points;
    size_t rows = chunk_rows(f->dir, "bad", &points);
    assert_int_equal(rows, points);
    assert_true(rows >= (size_t)nbad / 2);
    for (int g = 0; g < CB_GOOD; g++) {
        rows = chunk_rows(f->dir, good[g], &points);
        assert_true(points >= (int64_t)ngood / 2);
        assert_true(rows < ngood / 4);
    }

    store_close(f->s);
    f->s = open_store(f->dir, 0);
    assert_int_equal(all_points(f->s, "bad").n, nbad);
    assert_int_equal(device(f->s, "bad", 0).points, nbad);
    for (int g = 0; g < CB_GOOD; g++) {
        assert_int_equal(all_points(f->s, good[g]).n, ngood);
        assert_int_equal(device(f->s, good[g], 0).points, ngood);
    }
}

static void test_compaction_backoff(void **state)
{
    cb_run(*state, 100, 12);
}

static void test_compaction_backoff_others(void **state)
{
    cb_run(*state, 80, 4);
}

/* Review of maint2: a deleted device leaves the compaction back-off list. Before, its entry
 * stayed until close, so compaction's recovery line was never logged, and after a maps reload
 * (every maintenance failure does one; next_id becomes the largest id left plus one) a device
 * created next could take the deleted largest id and with it the back-off. */
static void test_compaction_backoff_deleted(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    int64_t t0 = vtime_now_ms(), last = t0;
    double v = 0;
    write1(f->s, "bad", t0, 1, ch, &v);
    int64_t id = dev_id(f->s, "bad");
    assert_int_equal(store__test_exec(f->s, "CREATE TRIGGER inject_bad BEFORE INSERT ON"
                                            " readings WHEN NEW.n >= 2 AND NEW.device_id ="
                                            " (SELECT id FROM devices WHERE name = 'bad')"
                                            " BEGIN SELECT RAISE(ABORT, 'injected'); END"),
                     0);
    store_stats_t st;
    store_stats_get(f->s, &st);
    for (int r = 1; r <= 100 && st.maintenance_errors == 0; r++) {
        batch_t b;
        batch_init(&b);
        v = r;
        add_point(&b, "bad", last - 1, 1, ch, &v);
        add_point(&b, "bad", t0 + r * 1000, 1, ch, &v);
        last = t0 + r * 1000;
        assert_int_equal(store_write(f->s, &b), 0);
        batch_deinit(&b);
        usleep(20000);
        store_stats_get(f->s, &st);
    }
    assert_true(st.maintenance_errors >= 1);
    assert_int_equal(store_device_delete(f->s, "bad"), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(wst(f->s).ncfail, 0);
    /* A device created next does not inherit a back-off (here it gets a new id; after a maps
     * reload, next_id is the largest id left plus one, so a deleted largest id is reused). */
    write1(f->s, "new", t0, 1, ch, &v);
    assert_true(dev_id(f->s, "new") != id);
}

/* Task maint3, item 2a: a second device's first compaction failure within a minute of the
 * first's warning is logged with its name (before, the once-a-minute limit was shared by all
 * devices: it was counted, not logged); a repeat of the first device's stays limited. */
static void test_compaction_first_failure_logged(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    int64_t t0 = vtime_now_ms(), l1 = t0, l2 = t0;
    double v = 0;
    write1(f->s, "b1", t0, 1, ch, &v);
    write1(f->s, "b2", t0, 1, ch, &v);
    assert_int_equal(store__test_exec(f->s, REFUSE_B_TRIGGER), 0);
    errcap_t e;
    errcap_start(&e, f->dir);
    small_rows_until(f->s, "b1", &l1, 1);
    /* Each device's failures waited for by its own entry: since task wake b1 is also retried
     * (and fails again) when its back-off ends, so the store's total says nothing of b2. */
    rounds_until_cfail(f->s, "b2", &l2);
    const store_cfail_t *c1 = NULL;
    for (int r = 0; r < 400 && ((c1 = cfail_of(f->s, "b1")) == NULL || c1->fails < 2); r++)
        small_round(f->s, "b1", &l1), usleep(20000); /* after b1's back-off: a second failure */
    assert_true(c1 != NULL && c1->fails >= 2);
    char *text = errcap_stop(&e);
    int n1 = count_in(text, "compaction of device \"b1\""),
        n2 = count_in(text, "compaction of device \"b2\"");
    free(text);
    assert_int_equal(n1, 1); /* its repeats within the minute: counted, not logged */
    assert_int_equal(n2, 1); /* before: 0 */
    int fails = wst(f->s).bo_compact.fails;
    assert_true(fails >= 3);
    assert_int_equal(wst(f->s).bo_compact.unlogged, fails - 2); /* all but the two firsts */
}

/* Task maint3, item 2b: devices whose compaction failed once and that write no more small rows
 * leave the back-off list (w->cfail) a back-off's length after their back-off ended (before:
 * until close, so the list grew with every device that ever failed). 20 devices fail once each
 * (a trigger refuses their compaction; after each failure's reload the others are queued
 * again); the trigger dropped, 2.5 s later a write of another device ends a transaction: the list
 * is empty. Their first failures' warnings: at most STORE_MAINT_LOG_FIRST a minute. */
#define CF_DEVS 20

static void test_compaction_backoff_forgotten(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    int64_t t0 = vtime_now_ms();
    double v = 0;
    char dev[16];
    batch_t b;
    batch_init(&b);
    for (int i = 0; i < CF_DEVS; i++) {
        snprintf(dev, sizeof dev, "b%02d", i);
        add_point(&b, dev, t0, 1, ch, &v);
    }
    assert_int_equal(store_write(f->s, &b), 0);
    assert_int_equal(store__test_exec(f->s, REFUSE_B_TRIGGER), 0);
    errcap_t e;
    errcap_start(&e, f->dir);
    for (int i = 0; i < CF_DEVS; i++) {
        snprintf(dev, sizeof dev, "b%02d", i);
        add_point(&b, dev, t0 - 1, 1, ch, &v);
        add_point(&b, dev, t0 + 1000, 1, ch, &v);
    }
    assert_int_equal(store_write(f->s, &b), 0);
    store_stats_t st;
    for (int i = 0; i < 200; i++) {
        store_stats_get(f->s, &st);
        if (st.maintenance_errors >= CF_DEVS)
            break;
        usleep(10000);
    }
    assert_int_equal(st.maintenance_errors, CF_DEVS);
    assert_int_equal(store_flush(f->s), 0);
    char *text = errcap_stop(&e);
    int logged = count_in(text, "storage: compaction of device");
    free(text);
    assert_true(logged >= 2);
    assert_true(logged <= STORE_MAINT_LOG_FIRST);
    assert_int_equal(wst(f->s).ncfail, CF_DEVS);
    assert_int_equal(store__test_exec(f->s, "DROP TRIGGER inject_b"), 0);
    usleep(2500000);
    write1(f->s, "other", t0, 1, ch, &v);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(wst(f->s).ncfail, 0);
    store_stats_get(f->s, &st);
    assert_int_equal(st.maintenance_errors, CF_DEVS);
    assert_int_equal(st.commit_errors, 0);
    batch_deinit(&b);
}

/* Task maint3, item 2c: a maps reload (after any maintenance failure) keeps the compact list:
 * "q", queued with "bad" in the transaction whose compaction of "bad" fails, is compacted by
 * the idle work after, with no more small rows of its own (before: it waited for its next). */
static void test_compaction_requeued_after_reload(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    int64_t t0 = vtime_now_ms();
    double v = 0;
    batch_t b;
    batch_init(&b);
    add_point(&b, "bad", t0, 1, ch, &v);
    add_point(&b, "q", t0, 1, ch, &v);
    assert_int_equal(store_write(f->s, &b), 0);
    assert_int_equal(store__test_exec(f->s, REFUSE_B_TRIGGER), 0);
    /* Three rounds in one transaction (held), each a late reading and a new one per device:
     * rows of one point, which the trigger lets in. */
    store__test_hold(f->s, 1);
    counter_t c;
    counter_init(&c);
    for (int k = 1; k <= 3; k++) {
        add_point(&b, "bad", t0 + (k - 1) * 1000 - 1, 1, ch, &v);
        add_point(&b, "bad", t0 + k * 1000, 1, ch, &v);
        add_point(&b, "q", t0 + (k - 1) * 1000 - 1, 1, ch, &v);
        add_point(&b, "q", t0 + k * 1000, 1, ch, &v);
        assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    }
    store__test_hold(f->s, 0);
    counter_wait(&c, 3);
    assert_int_equal(c.bad, 0);
    size_t rows = 0;
    store_stats_t st;
    for (int i = 0; i < 100; i++) {
        usleep(20000);
        store_stats_get(f->s, &st);
        rows = chunk_rows(f->dir, "q", NULL);
        if (st.maintenance_errors >= 1 && rows == 1)
            break;
    }
    assert_int_equal(st.maintenance_errors, 1);
    assert_int_equal(rows, 1);
    int64_t points;
    size_t bad_rows = chunk_rows(f->dir, "bad", &points);
    assert_int_equal(bad_rows, points); /* refused: rows of one point */
    assert_int_equal(all_points(f->s, "q").n, 7);
    batch_deinit(&b);
    counter_deinit(&c);
}

/* ---- Session 31 (task maint4): the back-off's remaining cases ---- */

/* Writes one reading of "other" (no small row of the devices under test) every 100 ms until
 * dev is in one row, at most 30 times; returns its rows. */
static size_t rows_after_writes(fx_t *f, const char *dev, int64_t ts)
{
    static const char *const ch[] = {"v"};
    double v = 4;
    size_t rows = chunk_rows(f->dir, dev, NULL);
    for (int i = 0; i < 30 && rows > 1; i++) {
        write1(f->s, "other", ts + i, 1, ch, &v);
        assert_int_equal(store_flush(f->s), 0);
        usleep(100000);
        rows = chunk_rows(f->dir, dev, NULL);
    }
    return rows;
}

/* Task maint4, item 1: a device backing off keeps its small rows across a maps reload, and at
 * its back-off's end it is queued without a small row of its own. "bad"'s compaction fails (a
 * trigger), it gets one more small row during its back-off, then "b2"'s failure reloads the
 * maps; the trigger dropped and "bad"'s back-off over, writes of another device start
 * transactions and the idle work compacts "bad" into one row. Before: it waited for its next
 * small row (several rows). */
static void test_compaction_woken_after_backoff(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    int64_t t0 = vtime_now_ms(), lb = t0, l2 = t0;
    double v = 0;
    write1(f->s, "bad", t0, 1, ch, &v);
    write1(f->s, "b2", t0, 1, ch, &v);
    assert_int_equal(store__test_exec(f->s, REFUSE_B_TRIGGER), 0);
    small_rows_until(f->s, "bad", &lb, 1);
    small_round(f->s, "bad", &lb); /* in its back-off: counted, not queued */
    small_rows_until(f->s, "b2", &l2, 2);
    assert_int_equal(store_flush(f->s), 0);
    const store_cfail_t *e = cfail_of(f->s, "bad");
    assert_non_null(e);
    assert_true(vtime_mono_ms() < e->next_ms); /* b2's reload came within bad's back-off */
    int64_t wait = e->next_ms - vtime_mono_ms() + 100;
    assert_int_equal(store__test_exec(f->s, "DROP TRIGGER inject_b"), 0);
    usleep((useconds_t)wait * 1000);
    /* Task wake: the idle writer wakes at the back-off's end and compacts it without a write
     * (before: more than 2 rows here); the writes then find it in one row. */
    assert_int_equal(rows_after_writes(f, "bad", t0), 1);
    assert_bad_kept(f, 2, 0, t0, lb);
}

/* Task stmaint6, item 2: a device whose compaction back-off ends with no small rows is not
 * queued for a compaction of nothing (store__compact_wake hands the requeue small_rows -1: only
 * if it has small rows). "bad" (readings two days old, retention one day) fails its compaction
 * (a trigger); within its back-off a retention sweep deletes all its rows, which leaves it no
 * small rows (retention.c). Past its back-off's end the writer has seen that end (woken) and
 * ran no compaction (the published compact_runs unchanged, nothing queued). With the filter
 * disabled: "bad" is queued and compaction runs for it (compact_runs + 1). */
static void test_compaction_wake_no_small_rows(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    store_close(f->s);
    f->s = open_retention(f->dir, EVR_DAY);
    int64_t t0 = vtime_now_ms() - 2 * EVR_DAY, lb = t0;
    double v = 0;
    write1(f->s, "bad", t0, 1, ch, &v);
    assert_int_equal(store__test_exec(f->s, REFUSE_B_TRIGGER), 0);
    small_rows_until(f->s, "bad", &lb, 1);
    assert_int_equal(store_flush(f->s), 0);
    assert_true(chunk_rows(f->dir, "bad", NULL) > 1);
    assert_int_equal(store_retention_sweep(f->s), 0);
    assert_int_equal(chunk_rows(f->dir, "bad", NULL), 0);
    const store_cfail_t *e = cfail_of(f->s, "bad");
    assert_non_null(e);
    assert_true(vtime_mono_ms() < e->next_ms); /* the sweep came within its back-off */
    uint64_t runs = wst(f->s).compact_runs;
    int64_t wait = e->next_ms - vtime_mono_ms();
    assert_int_equal(store__test_exec(f->s, "DROP TRIGGER inject_b"), 0);
    if (wait > 0)
        usleep((useconds_t)wait * 1000);
    /* Until the writer (niced, maybe late under load) has seen the back-off's end: it publishes
     * after store__compact_wake, so that copy shows the wake's requeue too. At most 10 s. */
    for (int i = 0; i < 1000 && (e = cfail_of(f->s, "bad")) != NULL && !e->woken; i++)
        usleep(10000);
    /* (A compaction that ran would have ended its entry.) */
    assert_non_null(e);
    assert_int_equal(e->woken, 1); /* the writer saw its back-off's end */
    store_test_wstate_t w = wst(f->s);
    assert_int_equal(w.compact_runs, runs); /* with the filter disabled: runs + 1 */
    assert_int_equal(w.ncompact, 0);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.maintenance_errors, 1);
    assert_int_equal(st.commit_errors, 0);
}

/* w's compaction back-off list is in strictly increasing id order and store__cfail_find finds
 * each of its ids, and only those (ids 0 .. 2 * max). */
static void cfail_check(store_writer_t *w, int64_t max)
{
    for (size_t i = 1; i < w->ncfail; i++)
        assert_true(w->cfail[i - 1].id < w->cfail[i].id);
    size_t found = 0;
    for (int64_t id = 0; id <= 2 * max; id++) {
        store_cfail_t *f = store__cfail_find(w, id);
        if (f != NULL) {
            assert_int_equal(f->id, id);
            found++;
        }
    }
    assert_int_equal(found, w->ncfail);
}

/* Review of stmaint6: the back-off list stays in id order (store__cfail_find bisects it) through
 * failures in any order (even ids of 2 .. 200 scrambled, then one before and one after them), a
 * repeated failure of the same id (no second entry), removals (store__compact_forget: first,
 * last, middle) and the filter of store__compact_end_tx (every third entry succeeded). With
 * store__cfail_insert appending, or store__compact_forget moving the last entry in (main's
 * before stmaint6), it fails. */
static void test_review_stmaint6_cfail_order(void **state)
{
    (void)state;
    store_writer_t *w = calloc(1, sizeof *w);
    assert_non_null(w);
    const int64_t max = 200, now = vtime_mono_ms();
    int first;
    for (int64_t k = 0; k < max / 2; k++) { /* even ids of 2 .. 200, in a scrambled order */
        int64_t id = 2 * (1 + (k * 37) % 101 % 100);
        if (store__cfail_find(w, id) == NULL)
            assert_true(store__compact_failed(w, id, now, &first) > now);
    }
    assert_true(store__compact_failed(w, 2 * max + 2, now, &first) > now); /* last */
    assert_true(first);
    assert_true(store__compact_failed(w, 1, now, &first) > now); /* first */
    cfail_check(w, max + 1);
    size_t n = w->ncfail;
    assert_true(store__compact_failed(w, 100, now, &first) > now); /* again: the same entry */
    assert_false(first);
    assert_int_equal(w->ncfail, n);
    assert_int_equal(store__cfail_find(w, 100)->fails, 2);
    store__compact_forget(w, 1);
    store__compact_forget(w, 2 * max + 2);
    store__compact_forget(w, 100);
    store__compact_forget(w, 3); /* not there: nothing changes */
    assert_int_equal(w->ncfail, n - 3);
    cfail_check(w, max + 1);
    for (size_t i = 0; i < w->ncfail; i += 3)
        w->cfail[i].ok = 1;
    size_t ok = (w->ncfail + 2) / 3;
    assert_int_equal(store__compact_end_tx(w, 1), 0);
    assert_int_equal(w->ncfail, n - 3 - ok);
    cfail_check(w, max + 1);
    assert_null(store__cfail_find(w, 2)); /* the first entry, which succeeded */
    assert_true(store__compact_failed(w, 2, now, &first) > now); /* back, at its place */
    cfail_check(w, max + 1);
    store__compact_list_free(w);
    free(w);
}

/* Review of stmaint6: a store opened without store__test_wstate_on publishes nothing, and
 * store__test_wstate says so (ERR_INVAL) rather than hand a test a zeroed state it could take
 * for the writer's (no back-off, nothing queued: what many assertions expect). */
static void test_review_stmaint6_wstate_off(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    double v = 1;
    store_close(f->s);
    store__test_wstate_on = 0;
    f->s = open_store(f->dir, 0);
    store__test_wstate_on = 1;
    write1(f->s, "d", 1, 1, ch, &v);
    store_test_wstate_t w;
    w.ncfail = 7;
    assert_int_equal(store__test_wstate(f->s, &w), ERR_INVAL);
    assert_int_equal(w.ncfail, 0);
    store_close(f->s);
    f->s = open_store(f->dir, 0); /* the flag set: it publishes */
    assert_int_equal(store__test_wstate(f->s, &w), 0);
}

/* Task maint4, item 2: the devices the previous run left with small rows are queued at open.
 * "bad"'s compaction fails (a trigger) and the store is closed with its small rows; the trigger
 * dropped in the file, the reopened store has it in the compact list, and the first write of
 * another device lets the idle work compact it. Before: the list started empty, and "bad"
 * waited for its next small row. */
static void test_compaction_noted_at_open(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    int64_t t0 = vtime_now_ms(), lb = t0;
    double v = 0;
    write1(f->s, "bad", t0, 1, ch, &v);
    write1(f->s, "few", t0, 1, ch, &v);
    assert_int_equal(store__test_exec(f->s, REFUSE_B_TRIGGER), 0);
    small_rows_until(f->s, "bad", &lb, 1);
    small_round(f->s, "bad", &lb);
    assert_int_equal(store_flush(f->s), 0);
    size_t rows = chunk_rows(f->dir, "bad", NULL);
    assert_true(rows > 2);
    store_close(f->s);
    exec_file(f->dir, "DROP TRIGGER inject_b");
    f->s = open_store(f->dir, 0);
    /* Task wake: the idle writer compacts the devices noted at open at once, without a write
     * (before the wake it waited for one; read here, the list raced with it). Main before
     * maint4: never, nothing was queued. */
    for (int i = 0; i < 60 && chunk_rows(f->dir, "bad", NULL) > 1; i++)
        usleep(50000);
    assert_true(rows > 2);
    assert_int_equal(chunk_rows(f->dir, "bad", NULL), 1);
    assert_int_equal(all_points(f->s, "bad").n, 1 + 2 * (lb - t0) / 1000);
}

/* Task maint4, item 3: a device whose compaction fails again soon after a success resumes its
 * back-off's count (decaying, STORE_CFAIL_DECAY_MS per failure) instead of starting at 1 s.
 * "bad" fails once (1 s), is compacted after the trigger is dropped (its entry leaves the
 * list), and fails again with the trigger back: its count is 2 and its back-off 2 s. Before: 1
 * and 1 s. */
static void test_compaction_failures_remembered(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    double v = 0;
    int64_t t0 = vtime_now_ms(), lb;
    bad_fails_once(f, t0, &lb);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(cfail_of(f->s, "bad")->fails, 1);
    assert_int_equal(store__test_exec(f->s, "DROP TRIGGER inject_b"), 0);
    usleep(1100000);
    size_t rows = 99;
    for (int i = 0; i < 30 && (rows > 1 || wst(f->s).ncfail > 0); i++) {
        small_round(f->s, "bad", &lb);
        assert_int_equal(store_flush(f->s), 0);
        usleep(50000);
        rows = chunk_rows(f->dir, "bad", NULL);
    }
    assert_int_equal(rows, 1);
    assert_int_equal(wst(f->s).ncfail, 0); /* the success ended its run */
    /* The compacted row ends at lb: the next rounds' late readings go after it (rows of one
     * point again, which the trigger lets in), behind one newer pending reading. */
    lb += 5000;
    write1(f->s, "bad", lb, 1, ch, &v);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(store__test_exec(f->s, REFUSE_B_TRIGGER), 0);
    small_rows_until(f->s, "bad", &lb, 2);
    assert_int_equal(store_flush(f->s), 0);
    const store_cfail_t *e = cfail_of(f->s, "bad");
    assert_non_null(e);
    assert_int_equal(e->fails, 2); /* before: 1 */
    assert_true(e->next_ms - vtime_mono_ms() > 1000);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.maintenance_errors, 2);
    assert_int_equal(st.commit_errors, 0);
}

/* Review (task maint4, item 2): a device noted at open is queued with the small-row count main
 * gives it (none), not its rows' count: with 15 its next small row would make a client
 * transaction compact it (STORE_COMPACT_ROWS), so on a disk found full at open that
 * compaction's SQLITE_FULL would take with it a client batch main accepts (main compacts in a
 * client transaction only after STORE_COMPACT_ROWS new small rows). The idle work compacts it. */
static void test_compaction_noted_at_open_count(void **state)
{
    fx_t *f = *state;
    int64_t t0 = vtime_now_ms(), lb;
    bad_fails_once(f, t0, &lb);
    for (int i = 0; i < STORE_COMPACT_ROWS / 2; i++)
        small_round(f->s, "bad", &lb); /* in its back-off (1 s): counted, not queued */
    assert_int_equal(store_flush(f->s), 0);
    assert_true(chunk_rows(f->dir, "bad", NULL) >= STORE_COMPACT_ROWS);
    store_close(f->s);
    exec_file(f->dir, "DROP TRIGGER inject_b");
    /* Queued at open with no small rows counted (maint4's review: before, STORE_COMPACT_ROWS - 1,
     * so a client transaction's next small row compacted it), read with the writer held from
     * its start (else its idle work, since task wake, compacts it at once and empties the
     * list). */
    store__test_open_held = 1;
    f->s = open_store(f->dir, 0);
    store__test_open_held = 0;
    assert_int_equal(wst(f->s).ncompact, 1);
    assert_int_equal(wst(f->s).compact0_small_rows, 0);
    store__test_hold(f->s, 0);
    /* Task wake: the idle writer compacts it at open, before any client transaction. */
    for (int i = 0; i < 60 && chunk_rows(f->dir, "bad", NULL) > 1; i++)
        usleep(50000);
    assert_int_equal(chunk_rows(f->dir, "bad", NULL), 1);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(rows_after_writes(f, "bad", t0), 1);
}

const struct CMUnitTest storage_compaction_tests[] = {
    cmocka_unit_test_setup_teardown(test_compaction_fails_writes_kept, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_backoff, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_backoff_others, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_backoff_deleted, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_first_failure_logged, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_backoff_forgotten, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_requeued_after_reload, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_woken_after_backoff, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_wake_no_small_rows, setup, teardown),
    cmocka_unit_test(test_review_stmaint6_cfail_order),
    cmocka_unit_test_setup_teardown(test_review_stmaint6_wstate_off, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_noted_at_open, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_failures_remembered, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction_noted_at_open_count, setup, teardown),
};
const size_t storage_compaction_ntests =
    sizeof storage_compaction_tests / sizeof storage_compaction_tests[0];

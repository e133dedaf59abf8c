/* tests/test_storage_retention.c: unit tests of storage/, retention: sweeps, sweeps beside writes,
 * a failing sweep keeping writes, the index it uses, maintenance rolled back whole, the
 * horizon's edges (a row or event ending at it exactly, an event spanning it) and a retention
 * changed while open (store_set_retention).
 *
 * Moved from tests/test_storage.c, whose main() runs this file's table with the others. */
#include "storage_fx.h"

#include <stdatomic.h>

/* ---- retention (storage/retention.c) ---- */

#define DAY_MS (24LL * 3600 * 1000)

/* n points of channel "v" from ts0, step apart, in one batch; value i + base. */
static void write_spaced(store_t *s, const char *dev, int64_t ts0, int64_t step, size_t n,
                         double base)
{
    static const char *const ch[] = {"v"};
    batch_t b;
    batch_init(&b);
    for (size_t i = 0; i < n; i++) {
        double v = base + (double)i;
        add_point(&b, dev, ts0 + (int64_t)i * step, 1, ch, &v);
    }
    assert_int_equal(store_write(s, &b), 0);
    batch_deinit(&b);
}

static void test_retention_sweep(void **state)
{
    fx_t *f = *state;
    /* The fixture's store keeps everything (a sweep cannot be asked for): the data goes in
     * there, then the store is opened again with a retention of a day. */
    assert_int_equal(store_retention_sweep(f->s), ERR_INVAL);
    int64_t now = vtime_now_ms(), horizon = now - DAY_MS;

    /* "old": 600 points two hours apart, 10 to 60 days old: 600 rows (a row spans at most an
     * hour), all older than the horizon, more than two steps' worth (STORE_RETAIN_ROWS_PER_TX). */
    write_spaced(f->s, "old", now - 60 * DAY_MS, 2 * 3600 * 1000, 600, 0);
    assert_int_equal(chunk_rows(f->dir, "old", NULL), 600);
    /* "mixed", oldest first: a row 3 days old (300 points), a row spanning the horizon (600
     * points 2 s apart from 10 minutes before it), a row an hour old (300 points) and 50
     * pending readings (fewer than STORE_PEND_POINTS: not a row yet). */
    write_spaced(f->s, "mixed", now - 3 * DAY_MS, 1000, 300, 0);
    write_spaced(f->s, "mixed", horizon - 600000, 2000, 600, 1000);
    write_spaced(f->s, "mixed", now - 3600000, 1000, 300, 2000);
    write_spaced(f->s, "mixed", now - 1800000, 1000, 50, 3000);
    assert_int_equal(chunk_rows(f->dir, "mixed", NULL), 3);
    /* "pend": 50 readings 5 days old that are still pending: a sweep leaves them. */
    write_spaced(f->s, "pend", now - 5 * DAY_MS, 1000, 50, 0);
    assert_int_equal(chunk_rows(f->dir, "pend", NULL), 0);
    /* Events of "old": ended before the horizon (goes), active since then, ended after it,
     * recent (stay). */
    int64_t t5 = now - 5 * DAY_MS;
    assert_int_equal(store_event_put(f->s, "old", 1, t5, t5 + 60000, "{}"), 0);
    assert_int_equal(store_event_put(f->s, "old", 2, t5, -1, "{}"), 0);
    assert_int_equal(store_event_put(f->s, "old", 3, t5, now - 3600000, "{}"), 0);
    assert_int_equal(store_event_put(f->s, "old", 4, now - 60000, now - 1000, "{}"), 0);
    store_close(f->s);
    /* A sweep starts at open; store_retention_sweep waits for it and for one more. */
    f->s = open_retention(f->dir, DAY_MS);
    assert_int_equal(store_retention_sweep(f->s), 0);
    store_stats_t after, again;
    store_stats_get(f->s, &after);

    /* Old rows gone; the row spanning the horizon, newer rows and pending readings kept. */
    assert_int_equal(chunk_rows(f->dir, "old", NULL), 0);
    assert_int_equal(all_points(f->s, "old").n, 0);
    devinfo_t d = device(f->s, "old", 0);
    assert_int_equal(d.points, 0);
    assert_int_equal(d.first, -1);
    assert_int_equal(chunk_rows(f->dir, "mixed", NULL), 2);
    span_t sp = all_points(f->s, "mixed");
    assert_int_equal(sp.n, 950);
    assert_int_equal(sp.first, horizon - 600000);
    assert_int_equal(sp.last, now - 1800000 + 49000);
    d = device(f->s, "mixed", 0);
    assert_int_equal(d.points, 950);
    assert_int_equal(d.first, horizon - 600000);
    assert_int_equal(d.last, now - 1800000 + 49000);
    assert_int_equal(all_points(f->s, "pend").n, 50);
    assert_int_equal(device(f->s, "pend", 0).points, 50);
    events_t e;
    assert_int_equal(events(f->s, "old", 0, INT64_MIN, INT64_MAX, 0, &e), 0);
    assert_int_equal(e.n, 3);
    for (int i = 0; i < e.n; i++)
        assert_true(e.id[i] != 1);

    /* The counters since open: 601 rows of 900 points, one event, two sweeps; bounded steps:
     * 600 rows of one device take at least three transactions. */
    assert_int_equal(after.retention_chunks, 601);
    assert_int_equal(after.retention_points, 900);
    assert_int_equal(after.retention_events, 1);
    assert_int_equal(after.retention_sweeps, 2);
    assert_true(after.retention_steps >= 3);
    assert_true(after.retention_seconds > 0);

    /* New readings still go in; a second sweep finds nothing more. */
    write_spaced(f->s, "old", now - 60000, 1000, 10, 0);
    assert_int_equal(store_retention_sweep(f->s), 0);
    store_stats_get(f->s, &again);
    assert_int_equal(again.retention_chunks, after.retention_chunks);
    assert_int_equal(again.retention_sweeps, 3);
    assert_int_equal(all_points(f->s, "old").n, 10);
    assert_int_equal(device(f->s, "old", 0).first, now - 60000);

    /* The devices rows were written with the deletions: the same after a restart. */
    store_close(f->s);
    f->s = open_store(f->dir, 0);
    d = device(f->s, "mixed", 0);
    assert_int_equal(d.points, 950);
    assert_int_equal(d.first, horizon - 600000);
    assert_int_equal(all_points(f->s, "mixed").n, 950);
    d = device(f->s, "old", 0);
    assert_int_equal(d.points, 10);
    assert_int_equal(d.first, now - 60000);
}

/* The horizon's edges (README "Data retention": readings older than the horizon go, events that
 * ended before it): a row whose newest timestamp is the horizon exactly stays, one ending 1 ms
 * before it goes; an event that ended at the horizon stays, one that ended 1 ms before goes, one
 * that spans it stays whole. The sweep's clock is fixed (store__test_retain_clock), so the
 * horizon is a timestamp the test chose; the sweep at open, on the real clock (a horizon a day
 * before the data), deletes nothing. */
static void test_retention_horizon_edges(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    f->s = open_retention(f->dir, DAY_MS);
    int64_t h = vtime_now_ms() - 3600000; /* the horizon of the fixed sweep */
    /* "at": one row of 300 points 1 s apart ending at h; "before": the same ending at h - 1;
     * each then 50 pending readings after the horizon. */
    write_spaced(f->s, "at", h - 299000, 1000, 300, 0);
    write_spaced(f->s, "before", h - 1 - 299000, 1000, 300, 0);
    write_spaced(f->s, "at", h + 1000, 1000, 50, 300);
    write_spaced(f->s, "before", h + 1000, 1000, 50, 300);
    assert_int_equal(chunk_rows(f->dir, "at", NULL), 1);
    assert_int_equal(chunk_rows(f->dir, "before", NULL), 1);
    int64_t hr = 3600000;
    assert_int_equal(store_event_put(f->s, "at", 1, h - hr, h, "{}"), 0);          /* stays */
    assert_int_equal(store_event_put(f->s, "at", 2, h - hr, h - 1, "{}"), 0);      /* goes */
    assert_int_equal(store_event_put(f->s, "at", 3, h - hr, h + hr, "{}"), 0);     /* stays */
    assert_int_equal(store_event_put(f->s, "at", 4, h - 1, h + 1, "{}"), 0);       /* stays */
    assert_int_equal(store_event_put(f->s, "at", 5, h - 2 * hr, h - hr, "{}"), 0); /* goes */
    assert_int_equal(store_retention_sweep(f->s), 0); /* the real clock's: nothing to delete */
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.retention_chunks, 0);
    assert_int_equal(st.retention_events, 0);

    store__test_retain_clock(f->s, h + DAY_MS);
    assert_int_equal(store_retention_sweep(f->s), 0);
    store__test_retain_clock(f->s, 0);
    store_stats_get(f->s, &st);
    assert_int_equal(st.retention_chunks, 1);
    assert_int_equal(st.retention_points, 300);
    assert_int_equal(st.retention_events, 2);
    span_t sp = all_points(f->s, "at");
    assert_int_equal(sp.n, 350);
    assert_int_equal(sp.first, h - 299000);
    devinfo_t d = device(f->s, "at", 0);
    assert_int_equal(d.points, 350);
    assert_int_equal(d.first, h - 299000);
    sp = all_points(f->s, "before");
    assert_int_equal(sp.n, 50);
    assert_int_equal(sp.first, h + 1000);
    d = device(f->s, "before", 0);
    assert_int_equal(d.points, 50);
    assert_int_equal(d.first, h + 1000);
    events_t e;
    assert_int_equal(events(f->s, "at", 0, INT64_MIN, INT64_MAX, 0, &e), 0);
    assert_int_equal(e.n, 3);
    int64_t kept = 0;
    for (int i = 0; i < e.n; i++)
        kept |= (int64_t)1 << e.id[i];
    assert_int_equal(kept, (1 << 1) | (1 << 3) | (1 << 4));
}

/* A sweep shares the writer with ingest and deletions: run while another thread writes and
 * deletes devices, it still removes the old rows of every device that remains, and nothing
 * written meanwhile is lost. */
static void *sweeper(void *arg)
{
    return (void *)(intptr_t)store_retention_sweep(arg);
}

static void test_retention_with_writes(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    f->s = open_retention(f->dir, DAY_MS);
    int64_t now = vtime_now_ms();
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "d%03d", i);
        write_spaced(f->s, name, now - 10 * DAY_MS, 2 * 3600 * 1000, 4, 0);
    }
    assert_int_equal(store__test_pend_flush(f->s), 0); /* 4 rows each */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sweeper, f->s), 0);
    for (int i = 200; i < 300; i++) {
        snprintf(name, sizeof name, "d%03d", i);
        assert_int_equal(store_device_delete(f->s, name), 0);
        write_spaced(f->s, "live", now + i, 1, 1, i);
    }
    void *ret;
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_int_equal((int)(intptr_t)ret, 0);
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "d%03d", i);
        assert_int_equal(chunk_rows(f->dir, name, NULL), 0);
        assert_int_equal(device(f->s, name, 0).points, 0);
    }
    for (int i = 200; i < 300; i++) {
        snprintf(name, sizeof name, "d%03d", i);
        device(f->s, name, ERR_NOTFOUND);
    }
    assert_int_equal(all_points(f->s, "live").n, 100);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_true(st.retention_chunks >= 200 * 4 && st.retention_chunks <= 300 * 4);
}

/* The sweep's statements search indexes that exist (no new one): the rows of a device in
 * readings_time, the ended events through events_start. */
static void test_retention_index_used(void **state)
{
    const char *sqls[] = {store__sql_retain_rows, store__sql_retain_events};
    const char *want[] = {"SEARCH readings USING COVERING INDEX readings_time (device_id=?)",
                          "SEARCH events USING INDEX events_start (start_ts<?)"};
    assert_plans(*state, sqls, want, 2);
}

/* A retention step that fails in every transaction (a trigger refuses the deletion of events,
 * after the step has deleted readings rows in the same step) while a client writes: every write
 * is acknowledged (the step is rolled back to its savepoint and the client's readings commit;
 * before session 28 the transaction failed whole and the write got ERR_IO), no commit error is
 * counted, the maintenance errors are, the rows the failed steps deleted are all back (on disk
 * and in the writer's counters), and once the trigger is gone the sweep completes; after a
 * reopen every acknowledged reading is there. */
#define RF_HELD   10
#define RF_WRITES 30

static void test_retention_fails_writes_kept(void **state)
{
    fx_t *f = *state;
    int64_t now = vtime_now_ms();
    /* "old": 300 rows ten to 35 days old, and an event that ended before the horizon. */
    write_spaced(f->s, "old", now - 35 * DAY_MS, 2 * 3600 * 1000, 300, 0);
    assert_int_equal(chunk_rows(f->dir, "old", NULL), 300);
    int64_t t5 = now - 5 * DAY_MS;
    assert_int_equal(store_event_put(f->s, "old", 1, t5, t5 + 60000, "{}"), 0);
    store_close(f->s);
    exec_file(f->dir, "CREATE TRIGGER inject_events BEFORE DELETE ON events"
                      " BEGIN SELECT RAISE(ABORT, 'injected'); END");

    /* The sweep at open fails in an idle transaction: maintenance backs off for a second. */
    f->s = open_retention(f->dir, DAY_MS);
    store_stats_t st;
    for (int i = 0; i < 400; i++) {
        store_stats_get(f->s, &st);
        if (st.maintenance_errors > 0)
            break;
        usleep(50000);
    }
    assert_int_equal(st.maintenance_errors, 1);
    assert_int_equal(st.maintenance_rollbacks, 0);
    /* Writes queued while the writer is held (so no idle transaction takes the step) go in one
     * client transaction after the back-off, which runs the step and meets the failure. */
    static const char *const ch[] = {"v"};
    int64_t t0 = now - 600000;
    counter_t c;
    counter_init(&c);
    batch_t b;
    batch_init(&b);
    store__test_hold(f->s, 1);
    for (int i = 0; i < RF_HELD; i++) {
        double v = i;
        add_point(&b, "live", t0 + i * 1000, 1, ch, &v);
        assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    }
    usleep(1000 * (STORE_RETAIN_PERIOD_MIN_MS + 200));
    store__test_hold(f->s, 0);
    counter_wait(&c, RF_HELD);
    assert_int_equal(c.ok, RF_HELD);
    batch_deinit(&b);
    counter_deinit(&c);
    store_stats_get(f->s, &st);
    assert_int_equal(st.maintenance_rollbacks, 1);
    assert_int_equal(st.maintenance_errors, 2);
    /* The maps as committed right after that transaction (maintenance backs off 2 s now, so
     * no idle transaction has failed and reloaded them since): the undone step's deletions
     * are not in the published counters. */
    assert_int_equal(device(f->s, "old", 0).points, 300);
    assert_int_equal(device(f->s, "old", 0).first, now - 35 * DAY_MS);
    assert_int_equal(device(f->s, "live", 0).points, RF_HELD);
    /* More writes for about 2 s, each waited for, while the step keeps failing (in idle
     * transactions or in the writes' own). */
    for (int i = RF_HELD; i < RF_WRITES; i++) {
        write_spaced(f->s, "live", t0 + i * 1000, 1000, 1, i); /* asserts store_write's 0 */
        usleep(100000);
    }
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 0);
    assert_true(st.maintenance_errors >= 2);
    assert_true(st.maintenance_rollbacks >= 1);
    assert_true(st.maintenance_rollbacks < st.maintenance_errors); /* the idle one */
    assert_int_equal(st.retention_chunks, 0);
    assert_int_equal(st.retention_sweeps, 0);
    /* The failed steps' deletions are undone, in the file and in the maps. */
    assert_int_equal(chunk_rows(f->dir, "old", NULL), 300);
    assert_int_equal(all_points(f->s, "old").n, 300);
    devinfo_t d = device(f->s, "old", 0);
    assert_int_equal(d.points, 300);
    assert_int_equal(d.first, now - 35 * DAY_MS);
    assert_int_equal(all_points(f->s, "live").n, RF_WRITES);
    assert_int_equal(device(f->s, "live", 0).points, RF_WRITES);

    /* The failure stops: the sweep completes (after the back-off), and writes go on. */
    assert_int_equal(store__test_exec(f->s, "DROP TRIGGER inject_events"), 0);
    assert_int_equal(store_retention_sweep(f->s), 0);
    write_spaced(f->s, "live", t0 + RF_WRITES * 1000, 1000, 1, RF_WRITES);
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(st.retention_chunks, 300);
    assert_int_equal(st.retention_points, 300);
    assert_int_equal(st.retention_events, 1);
    assert_true(st.retention_sweeps >= 1);
    assert_int_equal(chunk_rows(f->dir, "old", NULL), 0);
    assert_int_equal(all_points(f->s, "old").n, 0);
    assert_int_equal(device(f->s, "old", 0).points, 0);

    /* Every acknowledged reading is on disk. */
    store_close(f->s);
    f->s = open_store(f->dir, 0);
    span_t sp = all_points(f->s, "live");
    assert_int_equal(sp.n, RF_WRITES + 1);
    assert_int_equal(sp.first, t0);
    assert_int_equal(sp.last, t0 + RF_WRITES * 1000);
    assert_int_equal(device(f->s, "live", 0).points, RF_WRITES + 1);
    assert_int_equal(all_points(f->s, "old").n, 0);
}

/* A maintenance step that makes SQLite roll back the whole transaction (RAISE(ROLLBACK) in a
 * trigger, as SQLite does itself for some SQLITE_IOERR, SQLITE_FULL and SQLITE_NOMEM): the
 * client's writes went with it, so every batch of the transaction is refused (none
 * acknowledged and lost), one commit error and one maintenance error are counted, no rollback
 * to the savepoint; the writer goes on afterwards, and only the acknowledged readings are on
 * disk after a reopen. */
static void test_maintenance_rollback_all(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    assert_int_equal(store__test_exec(f->s, "CREATE TRIGGER inject_all BEFORE INSERT ON"
                                            " readings WHEN NEW.n >= 12"
                                            " BEGIN SELECT RAISE(ROLLBACK, 'injected'); END"),
                     0);
    double v = 0;
    write1(f->s, "c", 100000, 1, ch, &v); /* pending */
    counter_t c;
    counter_init(&c);
    batch_t b;
    batch_init(&b);
    store__test_hold(f->s, 1);
    add_point(&b, "c", 50000, 1, ch, &v);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    for (int i = 1; i < CF_BATCHES; i++) {
        v = i;
        add_point(&b, "c", 100000 + i * 1000, 1, ch, &v);
        assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    }
    store__test_hold(f->s, 0);
    counter_wait(&c, CF_BATCHES);
    assert_int_equal(c.bad, CF_BATCHES);
    batch_deinit(&b);
    counter_deinit(&c);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 1);
    assert_int_equal(st.maintenance_errors, 1);
    assert_int_equal(st.maintenance_rollbacks, 0);
    assert_int_equal(all_points(f->s, "c").n, 1);
    assert_int_equal(device(f->s, "c", 0).points, 1);
    v = 7;
    write1(f->s, "c", 200000, 1, ch, &v);
    assert_int_equal(all_points(f->s, "c").n, 2);
    store_close(f->s);
    f->s = open_store(f->dir, 0);
    span_t sp = all_points(f->s, "c");
    assert_int_equal(sp.n, 2);
    assert_int_equal(sp.first, 100000);
    assert_int_equal(sp.last, 200000);
}

/* store_set_retention (a reload): the writer, idle and waiting a minute for its next sweep
 * (30 d: a sweep every minute at most), reckons again when told of a retention of 10 s (a sweep
 * a second), and that sweep deletes a 10-day-old row by the new retention without being asked;
 * 0 turns sweeps off (none can be asked for); a longer one (100 s) keeps a minute-old row that
 * 10 s would have deleted. Before, the retention was store_opts_t's, fixed at open. */
static void test_retention_set(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    f->s = open_retention(f->dir, 30 * DAY_MS);
    const int64_t now = vtime_now_ms();
    write_spaced(f->s, "s", now - 10 * DAY_MS, 1000, 300, 0); /* one row */
    assert_int_equal(store_retention_sweep(f->s), 0);
    assert_int_equal(chunk_rows(f->dir, "s", NULL), 1);

    store_set_retention(f->s, 10000);
    store_stats_t st;
    store_stats_get(f->s, &st);
    for (int i = 0; i < 200 && st.retention_points < 300; i++) { /* at most 10 s */
        usleep(50000);
        store_stats_get(f->s, &st);
    }
    assert_int_equal(st.retention_points, 300);
    assert_int_equal(chunk_rows(f->dir, "s", NULL), 0);
    assert_int_equal(device(f->s, "s", 0).points, 0);

    store_set_retention(f->s, 0);
    assert_int_equal(store_retention_sweep(f->s), ERR_INVAL);

    store_set_retention(f->s, 100000);
    write_spaced(f->s, "s", vtime_now_ms() - 60000, 1, 300, 0); /* one row, a minute old */
    assert_int_equal(store_retention_sweep(f->s), 0);
    assert_int_equal(chunk_rows(f->dir, "s", NULL), 1);
    assert_int_equal(device(f->s, "s", 0).points, 300);
    store_stats_get(f->s, &st);
    assert_int_equal(st.retention_points, 300);
}

/* A store_retention_sweep waiting for a sweep that cannot end (a trigger fails each step's
 * deletion of events) is answered ERR_INVAL within 5 s of retention turned off (a reload to 0),
 * the sweep left part-way dropped; with retention on again and the trigger gone, a sweep runs
 * to its end. Before (review of time3), the caller waited until retention was on again, or the
 * store closed. */
static atomic_int off_done;
static int off_rc;

static void *off_sweeper(void *arg)
{
    off_rc = store_retention_sweep(arg);
    atomic_store(&off_done, 1);
    return NULL;
}

static void test_retention_off_answers_waiter(void **state)
{
    fx_t *f = *state;
    const int64_t now = vtime_now_ms();
    write_spaced(f->s, "old", now - 10 * DAY_MS, 1000, 300, 0); /* one row */
    assert_int_equal(store_event_put(f->s, "old", 1, now - 5 * DAY_MS, now - 4 * DAY_MS, "{}"), 0);
    store_close(f->s);
    exec_file(f->dir, "CREATE TRIGGER inject_events BEFORE DELETE ON events"
                      " BEGIN SELECT RAISE(ABORT, 'injected'); END");
    f->s = open_retention(f->dir, DAY_MS);
    store_stats_t st;
    for (int i = 0; i < 400; i++) { /* the sweep at open fails: at most 20 s */
        store_stats_get(f->s, &st);
        if (st.maintenance_errors > 0)
            break;
        usleep(50000);
    }
    assert_true(st.maintenance_errors > 0);
    atomic_store(&off_done, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, off_sweeper, f->s), 0);
    usleep(500000); /* its request committed: it waits for the failing sweep */
    assert_int_equal(atomic_load(&off_done), 0);

    store_set_retention(f->s, 0);
    for (int i = 0; i < 100 && !atomic_load(&off_done); i++) /* at most 5 s */
        usleep(50000);
    const int done = atomic_load(&off_done);
    if (!done) { /* the old behaviour: only a close wakes it (ERR_CLOSED) */
        store_close(f->s);
        f->s = NULL;
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(done);
    assert_int_equal(off_rc, ERR_INVAL);

    assert_int_equal(store__test_exec(f->s, "DROP TRIGGER inject_events"), 0);
    store_set_retention(f->s, DAY_MS);
    assert_int_equal(store_retention_sweep(f->s), 0);
    assert_int_equal(chunk_rows(f->dir, "old", NULL), 0);
    assert_int_equal(device(f->s, "old", 0).points, 0);
    store_stats_get(f->s, &st);
    assert_int_equal(st.retention_points, 300);
    assert_int_equal(st.retention_events, 1);
}

const struct CMUnitTest storage_retention_tests[] = {
    cmocka_unit_test_setup_teardown(test_retention_off_answers_waiter, setup, teardown),
    cmocka_unit_test_setup_teardown(test_retention_set, setup, teardown),
    cmocka_unit_test_setup_teardown(test_retention_sweep, setup, teardown),
    cmocka_unit_test_setup_teardown(test_retention_with_writes, setup, teardown),
    cmocka_unit_test_setup_teardown(test_retention_fails_writes_kept, setup, teardown),
    cmocka_unit_test_setup_teardown(test_maintenance_rollback_all, setup, teardown),
    cmocka_unit_test_setup_teardown(test_retention_index_used, setup, teardown),
    cmocka_unit_test_setup_teardown(test_retention_horizon_edges, setup, teardown),
};
const size_t storage_retention_ntests =
    sizeof storage_retention_tests / sizeof storage_retention_tests[0];

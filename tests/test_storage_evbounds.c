/* tests/test_storage_evbounds.c: unit tests of storage/, the events' overlap bound and its upkeep
 * by retention's sweeps (lowered, once, for many devices, on the first sweep, when a step fails,
 * across a restart, out of memory).
 *
 * Moved from tests/test_storage_events.c (which grew near the 1,000-line limit) unchanged; the
 * brute-force overlap check they share is in storage_evq.h. tests/test_storage.c's main() runs
 * this file's table with the others. */
#include "storage_fx.h"
#include "storage_evq.h"
#include "test_atomic.h"

#define EVR_N   600
#define EVR_MIN 60000LL

/* Device dev's bound as stored (an infinite one reads as INT64_MAX). */
static int64_t evr_maxlen(const char *dir, int dev)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT ev_maxlen FROM devices WHERE name='%s'", evq_devs[dev]);
    return sql_int(dir, sql);
}

/* Old episodes of three devices ten days back (equal starts, zero lengths, active ones, some
 * days long, and on q0 one of eight days, the longest of all), recent ones, and on q1 and q2 one
 * that started with the old ones and ended after the horizon. A sweep with a retention of a day
 * deletes the old ended ones: each device's bound is then exactly the longest remaining ended
 * episode's length (q0's far below its eight days, q1's and q2's still their long survivor's),
 * and every range query, around old and recent episodes, matches the brute-force overlap. */
static void test_events_retention_lowers_bound(void **state)
{
    fx_t *f = *state;
    for (int d = 0; d < 3; d++)
        touch_device(f->s, evq_devs[d]);
    int64_t now = vtime_now_ms(), base = now - 10 * EVR_DAY, recent = now - EVR_DAY + 7200000;
    uint64_t rng = 0x2545f4914f6cdd1dULL;
    evq_ep_t *eps = calloc(EVR_N, sizeof *eps);
    int64_t next_id[3] = {1, 1, 1};
    for (size_t i = 0; i < EVR_N; i++) {
        evq_ep_t *e = &eps[i];
        e->dev = (int)(evq_rand(&rng) % 3);
        e->id = next_id[e->dev]++;
        e->start = (i % 3 == 0 ? recent : base) + (int64_t)(evq_rand(&rng) % 400) * EVR_MIN;
        int kind = (int)(evq_rand(&rng) % 10);
        e->end = kind < 2             ? e->start
                 : kind == 2          ? -1
                 : kind == 3 && i % 3 ? e->start + (int64_t)(evq_rand(&rng) % (3 * EVR_DAY))
                                      : e->start + (int64_t)(evq_rand(&rng) % (40 * EVR_MIN));
        e->live = 1;
    }
    eps[0] = (evq_ep_t){0, 1, 1000, base + EVR_MIN, base + 8 * EVR_DAY};
    eps[1] = (evq_ep_t){1, 1, 1000, base + 10 * EVR_MIN, now - 3600000};
    eps[2] = (evq_ep_t){2, 1, 1000, base + 5 * EVR_MIN, now - EVR_DAY + 3600000};
    for (size_t i = 0; i < EVR_N; i++) {
        const evq_ep_t *e = &eps[i];
        assert_int_equal(store_event_put(f->s, evq_devs[e->dev], e->id, e->start, e->end, NULL), 0);
    }
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(evr_maxlen(f->dir, 0), 8 * EVR_DAY - EVR_MIN);
    store_close(f->s);

    /* The horizon is now - a day plus the seconds this takes: no episode ends near it. */
    f->s = open_retention(f->dir, EVR_DAY);
    assert_int_equal(store_retention_sweep(f->s), 0);
    uint64_t deleted = 0;
    int64_t want[3] = {0, 0, 0};
    for (size_t i = 0; i < EVR_N; i++) {
        evq_ep_t *e = &eps[i];
        e->live = e->end == -1 || e->end >= now - EVR_DAY;
        deleted += !e->live;
        if (e->live && e->end != -1 && e->end - e->start > want[e->dev])
            want[e->dev] = e->end - e->start;
    }
    assert_true(deleted > STORE_RETAIN_EVENTS_PER_TX); /* more than one step's worth */
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.retention_events, deleted);

    /* Ranges around a random episode's start or end (deleted ones too), empty to two days long,
     * every device and the fleet, active or all, with and without a limit. */
    static const size_t limits[] = {0, 1, 2, 5, 17};
    for (int q = 0; q < 1500; q++) {
        const evq_ep_t *e = &eps[evq_rand(&rng) % EVR_N];
        int64_t at = e->end == -1 || evq_rand(&rng) % 2 ? e->start : e->end;
        int64_t from = at - 7200000 + (int64_t)(evq_rand(&rng) % 14400000);
        int64_t len = (int)(evq_rand(&rng) % 3) == 0   ? 0
                      : (int)(evq_rand(&rng) % 2) == 0 ? (int64_t)(evq_rand(&rng) % (10 * EVR_MIN))
                                                       : (int64_t)(evq_rand(&rng) % (2 * EVR_DAY));
        int dev = (int)(evq_rand(&rng) % 4) - 1;
        evq_check(f->s, eps, EVR_N, dev, evq_rand(&rng) % 5 == 0, from, from + len,
                  limits[evq_rand(&rng) % 5], 0);
    }
    for (int dev = -1; dev < 3; dev++)
        evq_check(f->s, eps, EVR_N, dev, 0, INT64_MIN, INT64_MAX, 0, 0);
    /* Just before q0's old long episode ended: only it reached there, and it is gone. */
    for (int dev = -1; dev < 3; dev++)
        evq_check(f->s, eps, EVR_N, dev, 0, base + 8 * EVR_DAY - 1, base + 8 * EVR_DAY, 0, 0);

    /* Each bound is exactly the longest remaining ended episode's: q0's went down from its
     * eight days, q1's and q2's kept their long survivor's. */
    for (int d = 0; d < 3; d++)
        assert_int_equal(evr_maxlen(f->dir, d), want[d]);
    assert_true(want[0] < 2 * EVR_DAY);
    assert_true(want[1] >= eps[1].end - eps[1].start && want[2] >= eps[2].end - eps[2].start);
    /* The bound is set by one search of the device's events, in the primary key. */
    const char *sqls[] = {store__sql_ev_maxlen_set};
    const char *plan[] = {"SEARCH events USING PRIMARY KEY (device_id=?)"};
    assert_plans(f, sqls, plan, 1);
    free(eps);
}

#define EVS_N   3000
#define EVS_NEW 5

/* Many episodes as long as their device's bound, the worst case for lowering it: q0's EVS_N
 * one-reading episodes (start = end, length 0) and q1's EVS_N of five minutes each, ten days back,
 * their starts interleaved so that every step of the sweep deletes both devices' (every one as
 * long as the bound), and recent ones (q0's of length 0, q1's of two minutes, q2's of ten
 * minutes, q2 has no old ones). A sweep with a day's retention deletes the old ones over many
 * steps and sets each bound again once: q0's and q1's (where setting them in every step that
 * deleted such an event sets them in each of the sweep's steps), and q2's, which lost nothing,
 * because the first sweep after open sets every device's (three in all); the bounds are then 0,
 * two and ten minutes and the queries match the brute force. A second sweep deletes nothing and
 * sets nothing. */
static void test_events_retention_bound_once(void **state)
{
    fx_t *f = *state;
    for (int d = 0; d < 3; d++)
        touch_device(f->s, evq_devs[d]);
    int64_t now = vtime_now_ms(), base = now - 10 * EVR_DAY, recent = now - 2 * 3600000;
    size_t n = 2 * EVS_N + 3 * EVS_NEW, k = 0;
    evq_ep_t *eps = calloc(n, sizeof *eps);
    for (int64_t i = 0; i < EVS_N; i++) {
        int64_t t = base + i * EVR_MIN;
        eps[k++] = (evq_ep_t){0, 0, i + 1, t, t};
        eps[k++] = (evq_ep_t){1, 0, i + 1, t + 1000, t + 1000 + 5 * EVR_MIN};
    }
    static const int64_t new_len[3] = {0, 2 * EVR_MIN, 10 * EVR_MIN};
    for (int d = 0; d < 3; d++)
        for (int64_t i = 0; i < EVS_NEW; i++) {
            int64_t t = recent + i * EVR_MIN;
            eps[k++] = (evq_ep_t){d, 1, EVS_N + 1 + i, t, t + new_len[d]};
        }
    assert_int_equal(k, n);
    for (size_t i = 0; i < n; i++) {
        const evq_ep_t *e = &eps[i];
        assert_int_equal(store_event_put(f->s, evq_devs[e->dev], e->id, e->start, e->end, NULL), 0);
    }
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(evr_maxlen(f->dir, 0), 0);
    assert_int_equal(evr_maxlen(f->dir, 1), 5 * EVR_MIN);
    assert_int_equal(evr_maxlen(f->dir, 2), 10 * EVR_MIN);
    store_close(f->s);

    f->s = open_retention(f->dir, EVR_DAY);
    assert_int_equal(store_retention_sweep(f->s), 0);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.retention_events, 2 * EVS_N);
    assert_true(st.retention_steps > 2 * EVS_N / STORE_RETAIN_EVENTS_PER_TX); /* many steps */
    assert_int_equal(store__test_bounds_set(f->s), 3);
    for (int d = 0; d < 3; d++)
        assert_int_equal(evr_maxlen(f->dir, d), new_len[d]);
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    for (int q = 0; q < 300; q++) {
        const evq_ep_t *e = &eps[evq_rand(&rng) % n];
        int64_t from = e->end - 20 * EVR_MIN + (int64_t)(evq_rand(&rng) % (40 * EVR_MIN));
        int64_t len = (int64_t)(evq_rand(&rng) % (30 * EVR_MIN));
        evq_check(f->s, eps, n, (int)(evq_rand(&rng) % 4) - 1, 0, from, from + len, 0, 0);
    }
    for (int dev = -1; dev < 3; dev++)
        evq_check(f->s, eps, n, dev, 0, INT64_MIN, INT64_MAX, 0, 0);

    assert_int_equal(store_retention_sweep(f->s), 0);
    store_stats_get(f->s, &st);
    assert_int_equal(st.retention_events, 2 * EVS_N);
    assert_int_equal(store__test_bounds_set(f->s), 3);
    free(eps);
}

/* More noted devices than one step sets (STORE_RETAIN_BOUNDS_PER_TX): EVM_DEVS devices, device j
 * with EVM_OLD old episodes of j + 1 minutes (each as long as its bound) and recent ones of j
 * minutes. The sweep sets the bounds in several follow-up steps, each device's once: every bound
 * ends exactly j minutes (a device skipped or set twice, as with the list's set and removed ends
 * apart, shows here) and the count is the number of devices. */
#define EVM_DEVS (3 * STORE_RETAIN_BOUNDS_PER_TX - 1)
#define EVM_OLD  40

/* bounds_many's devices and episodes, written to s and flushed. */
static void evm_fill(store_t *s)
{
    int64_t now = vtime_now_ms(), base = now - 10 * EVR_DAY, recent = now - 2 * 3600000;
    char dev[16];
    for (int j = 0; j < EVM_DEVS; j++) {
        snprintf(dev, sizeof dev, "m%02d", j);
        touch_device(s, dev);
        for (int64_t i = 0; i < EVM_OLD; i++) {
            int64_t t = base + i * EVR_MIN + j;
            assert_int_equal(store_event_put(s, dev, i + 1, t, t + (j + 1) * EVR_MIN, NULL), 0);
        }
        for (int64_t i = 0; i < 3; i++) {
            int64_t t = recent + i * EVR_MIN;
            assert_int_equal(store_event_put(s, dev, EVM_OLD + 1 + i, t, t + j * EVR_MIN, NULL), 0);
        }
    }
    assert_int_equal(store_flush(s), 0);
}

static void test_events_retention_bounds_many(void **state)
{
    fx_t *f = *state;
    evm_fill(f->s);
    store_close(f->s);

    f->s = open_retention(f->dir, EVR_DAY);
    assert_int_equal(store_retention_sweep(f->s), 0);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.retention_events, EVM_DEVS * EVM_OLD);
    assert_int_equal(store__test_bounds_set(f->s), EVM_DEVS);
    for (int j = 0; j < EVM_DEVS; j++) {
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT ev_maxlen FROM devices WHERE name='m%02d'", j);
        assert_int_equal(sql_int(f->dir, sql), j * EVR_MIN);
    }
}

/* A schema 9 state whose bounds are too large with no event as long left, as retention left it
 * before it lowered bounds (or a restart during a sweep, which forgets the noted devices): q0 and
 * q1 have old and recent episodes of a few minutes and a bound of eight days (set by SQL, as if
 * their eight-day episode had been deleted under the old code), q2 recent ones only and an exact
 * bound, r0 no episodes. The first sweep of the reopened store deletes the old episodes (none as
 * long as q0's or q1's bound, so none noted by the deletions) and still sets every device's bound
 * to its longest remaining ended episode, once: four bounds set. Range queries, in the inflated
 * bound's reach and elsewhere, match the brute-force overlap. A second sweep in the same process
 * deletes and sets nothing; a new process sets each bound once again in its first sweep. */
#define EVF_OLD 50
#define EVF_NEW 4

static void test_events_retention_first_sweep_bounds(void **state)
{
    fx_t *f = *state;
    for (int d = 0; d < 3; d++)
        touch_device(f->s, evq_devs[d]);
    touch_device(f->s, "r0");
    int64_t now = vtime_now_ms(), base = now - 10 * EVR_DAY, recent = now - 2 * 3600000;
    size_t n = 2 * EVF_OLD + 3 * EVF_NEW, k = 0;
    evq_ep_t *eps = calloc(n, sizeof *eps);
    for (int d = 0; d < 2; d++)
        for (int64_t i = 0; i < EVF_OLD; i++) {
            int64_t t = base + i * EVR_MIN + d;
            eps[k++] = (evq_ep_t){d, 0, i + 1, t, t + (i % 7 + 1) * EVR_MIN};
        }
    /* recent lengths: q0 up to 3, q1 up to 6, q2 up to 9 minutes */
    for (int d = 0; d < 3; d++)
        for (int64_t i = 0; i < EVF_NEW; i++) {
            int64_t t = recent + i * 10 * EVR_MIN;
            eps[k++] = (evq_ep_t){d, 1, EVF_OLD + 1 + i, t, t + (d + 1) * i * EVR_MIN};
        }
    assert_int_equal(k, n);
    for (size_t i = 0; i < n; i++) {
        const evq_ep_t *e = &eps[i];
        assert_int_equal(store_event_put(f->s, evq_devs[e->dev], e->id, e->start, e->end, NULL), 0);
    }
    assert_int_equal(store_flush(f->s), 0);
    store_close(f->s);
    f->s = NULL;

    char path[128];
    snprintf(path, sizeof path, "%s/vigil.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE devices SET ev_maxlen=%lld WHERE name IN ('q0', 'q1')",
             (long long)(8 * EVR_DAY));
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(evr_maxlen(f->dir, 0), 8 * EVR_DAY);
    assert_int_equal(evr_maxlen(f->dir, 2), 3 * 3 * EVR_MIN);

    f->s = open_retention(f->dir, EVR_DAY);
    assert_int_equal(store_retention_sweep(f->s), 0);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.retention_events, 2 * EVF_OLD);
    for (size_t i = 0; i < n; i++)
        eps[i].live = eps[i].start >= recent;
    static const int64_t want[3] = {3 * EVR_MIN, 6 * EVR_MIN, 9 * EVR_MIN};
    for (int d = 0; d < 3; d++)
        assert_int_equal(evr_maxlen(f->dir, d), want[d]);
    assert_int_equal(sql_int(f->dir, "SELECT ev_maxlen FROM devices WHERE name='r0'"), 0);
    assert_int_equal(store__test_bounds_set(f->s), 4); /* every device, once */

    uint64_t rng = 0x2545f4914f6cdd1dULL;
    for (int q = 0; q < 300; q++) {
        const evq_ep_t *e = &eps[evq_rand(&rng) % n];
        int64_t from = e->end - 20 * EVR_MIN + (int64_t)(evq_rand(&rng) % (40 * EVR_MIN));
        int64_t len = (int64_t)(evq_rand(&rng) % (30 * EVR_MIN));
        evq_check(f->s, eps, n, (int)(evq_rand(&rng) % 4) - 1, 0, from, from + len,
                  evq_rand(&rng) % 3, 0);
    }
    for (int dev = -1; dev < 3; dev++) {
        evq_check(f->s, eps, n, dev, 0, INT64_MIN, INT64_MAX, 0, 0);
        evq_check(f->s, eps, n, dev, 0, recent + 40 * EVR_MIN, now, 0, 0);
    }

    /* Nothing deleted, nothing noted: no bound recomputed. */
    assert_int_equal(store_retention_sweep(f->s), 0);
    store_stats_get(f->s, &st);
    assert_int_equal(st.retention_events, 2 * EVF_OLD);
    assert_int_equal(store__test_bounds_set(f->s), 4);
    store_close(f->s);

    /* A new process: each bound set once again, unchanged. */
    f->s = open_retention(f->dir, EVR_DAY);
    assert_int_equal(store_retention_sweep(f->s), 0);
    assert_int_equal(store__test_bounds_set(f->s), 4);
    for (int d = 0; d < 3; d++)
        assert_int_equal(evr_maxlen(f->dir, d), want[d]);
    free(eps);
}

/* ---- retention's bound steps when they fail (retention.c) ---- */

/* The devices whose stored bound is below their longest stored ended episode (EV_LEN's
 * length): the range queries would miss part of it. 0 while every bound is valid. */
static int64_t evr_invalid(const char *dir)
{
    return sql_int(dir, "SELECT count(*) FROM devices d WHERE ev_maxlen < coalesce((SELECT"
                        " max(max(end_ts - start_ts, 0)) FROM events e WHERE e.device_id = d.id"
                        " AND end_ts IS NOT NULL), 0)");
}

/* The devices whose bound is not exactly that length: a lowering not (yet) done. */
static int64_t evr_inexact(const char *dir)
{
    return sql_int(dir, "SELECT count(*) FROM devices d WHERE ev_maxlen <> coalesce((SELECT"
                        " max(max(end_ts - start_ts, 0)) FROM events e WHERE e.device_id = d.id"
                        " AND end_ts IS NOT NULL), 0)");
}

/* Makes every update of device m00's bound fail (a trigger raising an error, the SQLite error
 * a failed step meets) while on, or drops the trigger; the store must be closed. */
static void evm_inject(const char *dir, int on)
{
    char path[128];
    snprintf(path, sizeof path, "%s/vigil.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const char *sql = on ? "CREATE TRIGGER inject_bound BEFORE UPDATE OF ev_maxlen ON devices"
                           " WHEN NEW.name = 'm00' BEGIN SELECT RAISE(ABORT, 'injected'); END"
                         : "DROP TRIGGER inject_bound";
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Opens dir with a day's retention; its first sweep sets the bounds of bounds_many's devices in
 * three follow-up steps of 8, 8 and 7 devices, the list's last (the highest ids) first, and the
 * third, which holds m00 (the lowest id), fails on the injected trigger. Waits (at most 20 s)
 * for the first two; the writer's idle transaction of the third fails (a maintenance error, not
 * a commit error; maintenance backs off a second, idle transactions a minute), so after the
 * retry delay (STORE_RETAIN_PERIOD_MIN_MS) a flush's transaction runs the step again inside its
 * savepoint: the step is rolled back alone and the flush commits (since session 28; before, the
 * flush failed with ERR_IO and counted a commit error). Then checks the state the failures
 * leave: the two steps before committed (16 bounds, exact), the old episodes are gone, no sweep
 * has ended, no client transaction failed, and m00..m06 keep their old bounds, too large (j + 1
 * minutes for j minutes of episodes left) but valid. */
static store_t *evm_open_failing(const char *dir)
{
    store_t *s = open_retention(dir, EVR_DAY);
    for (int i = 0; i < 400 && store__test_bounds_set(s) < 2 * STORE_RETAIN_BOUNDS_PER_TX; i++)
        usleep(50000);
    /* The retry is due STORE_RETAIN_PERIOD_MIN_MS after the failed idle transaction, which may
     * come later than the poll saw the bounds on a loaded machine: flush until a flush's
     * transaction meets it (each flush commits), at most 5 s more. */
    usleep(1000 * STORE_RETAIN_PERIOD_MIN_MS);
    store_stats_t st;
    store_stats_get(s, &st);
    for (int i = 0; i < 50 && st.maintenance_rollbacks == 0; i++) {
        assert_int_equal(store_flush(s), 0);
        store_stats_get(s, &st);
        if (st.maintenance_rollbacks == 0)
            usleep(100000);
    }
    assert_int_equal(st.maintenance_rollbacks, 1);
    /* The idle transaction's and the flush's (and another idle one's, should an idle
     * transaction have met the retry before a flush did). */
    assert_true(st.maintenance_errors >= 2);
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(st.retention_events, EVM_DEVS * EVM_OLD);
    assert_int_equal(st.retention_sweeps, 0);
    assert_int_equal(store__test_bounds_set(s), 2 * STORE_RETAIN_BOUNDS_PER_TX);
    assert_int_equal(evr_invalid(dir), 0);
    assert_int_equal(evr_inexact(dir), EVM_DEVS - 2 * STORE_RETAIN_BOUNDS_PER_TX);
    assert_int_equal(sql_int(dir, "SELECT ev_maxlen FROM devices WHERE name='m00'"), EVR_MIN);
    return s;
}

/* A follow-up step that fails (an SQLite error setting a bound) rolls back and leaves every
 * bound valid; once the error is gone the same sweep finishes the lowering, setting each of the
 * remaining devices once: every bound exact, each device's set once (EVM_DEVS in all). */
static void test_events_retention_bound_step_fails(void **state)
{
    fx_t *f = *state;
    evm_fill(f->s);
    store_close(f->s);
    evm_inject(f->dir, 1);
    f->s = evm_open_failing(f->dir);
    /* The error goes (in a transaction of the writer's, before its retention step). */
    assert_int_equal(store__test_exec(f->s, "DROP TRIGGER inject_bound"), 0);
    assert_int_equal(store_retention_sweep(f->s), 0);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 0);
    assert_true(st.maintenance_errors >= 2);
    assert_int_equal(st.retention_events, EVM_DEVS * EVM_OLD);
    assert_true(st.retention_sweeps >= 1);
    assert_int_equal(store__test_bounds_set(f->s), EVM_DEVS);
    assert_int_equal(evr_invalid(f->dir), 0);
    assert_int_equal(evr_inexact(f->dir), 0);
    assert_int_equal(sql_int(f->dir, "SELECT ev_maxlen FROM devices WHERE name='m00'"), 0);
}

/* A restart in the middle of the follow-up steps (after the third failed: the noted list is
 * lost with the process) is finished by the next process's first sweep, which notes every
 * device: all bounds exact again, each device's set once in the new process. */
static void test_events_retention_bound_restart(void **state)
{
    fx_t *f = *state;
    evm_fill(f->s);
    store_close(f->s);
    evm_inject(f->dir, 1);
    f->s = evm_open_failing(f->dir);
    store_close(f->s);
    f->s = NULL;
    evm_inject(f->dir, 0);
    assert_int_equal(evr_inexact(f->dir), EVM_DEVS - 2 * STORE_RETAIN_BOUNDS_PER_TX);
    f->s = open_retention(f->dir, EVR_DAY);
    assert_int_equal(store_retention_sweep(f->s), 0);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(st.retention_events, 0); /* deleted before the restart */
    assert_int_equal(store__test_bounds_set(f->s), EVM_DEVS);
    assert_int_equal(evr_invalid(f->dir), 0);
    assert_int_equal(evr_inexact(f->dir), 0);
}

/* Out of memory while a sweep notes the devices that lost an episode as long as their bound
 * (retain_events' note_bounds): run under tests/fault/failalloc.c (ctest unit_storage_failalloc,
 * which sets LD_PRELOAD and VIGIL_FAILALLOC_THREAD=store-writer, VIGIL_FAILALLOC_MIN=16384);
 * skipped without it. The first sweep notes one device (the list's capacity: 512 ids, 4 KiB);
 * then EVO_DEVS devices get one old episode of 30 minutes each (their bound) and a recent one
 * of a minute. With the flag file present the second sweep deletes their old episodes, 256 a
 * step; the third step's noting must grow the list to 2,048 ids (16 KiB), which fails: those
 * devices are not noted. The bounds stay valid, the sweep ends, and no transaction failed (the
 * allocation that failed was the list's, not SQLite's); the next sweep, without the flag, must
 * still lower every bound to a minute. */
#define EVO_DEVS 600

static void test_events_retention_note_oom(void **state)
{
    fx_t *f = *state;
    const char *flag = getenv("VIGIL_FAILALLOC_FLAG");
    if (flag == NULL || getenv("LD_PRELOAD") == NULL)
        skip();
    unlink(flag);
    touch_device(f->s, "seed");
    store_close(f->s);
    f->s = open_retention(f->dir, EVR_DAY);
    assert_int_equal(store_retention_sweep(f->s), 0);
    assert_int_equal(store__test_bounds_set(f->s), 1);

    int64_t now = vtime_now_ms(), base = now - 10 * EVR_DAY, recent = now - 2 * 3600000;
    char dev[16];
    for (int j = 0; j < EVO_DEVS; j++) {
        snprintf(dev, sizeof dev, "o%03d", j);
        touch_device(f->s, dev);
        assert_int_equal(store_event_put(f->s, dev, 1, base + j, base + j + 30 * EVR_MIN, NULL), 0);
        assert_int_equal(store_event_put(f->s, dev, 2, recent, recent + EVR_MIN, NULL), 0);
    }
    assert_int_equal(store_flush(f->s), 0);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM devices WHERE ev_maxlen=%lld",
             (long long)(30 * EVR_MIN));
    assert_int_equal(sql_int(f->dir, sql), EVO_DEVS);

    assert_int_equal(test_write_atomic(flag, "16384\n"), 0);
    int rc = store_retention_sweep(f->s);
    unlink(flag);
    assert_int_equal(rc, 0);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(st.retention_events, EVO_DEVS);
    assert_int_equal(evr_invalid(f->dir), 0);
    /* The failure happened: the devices of the third step's 88 episodes were not noted. */
    assert_int_equal(evr_inexact(f->dir), EVO_DEVS - 2 * STORE_RETAIN_EVENTS_PER_TX);

    assert_int_equal(store_retention_sweep(f->s), 0);
    store_stats_get(f->s, &st);
    assert_int_equal(st.commit_errors, 0);
    assert_int_equal(evr_invalid(f->dir), 0);
    assert_int_equal(evr_inexact(f->dir), 0);
}

const struct CMUnitTest storage_evbounds_tests[] = {
    cmocka_unit_test_setup_teardown(test_events_retention_lowers_bound, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_retention_bound_once, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_retention_bounds_many, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_retention_bound_step_fails, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_retention_bound_restart, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_retention_note_oom, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_retention_first_sweep_bounds, setup, teardown),
};
const size_t storage_evbounds_ntests =
    sizeof storage_evbounds_tests / sizeof storage_evbounds_tests[0];

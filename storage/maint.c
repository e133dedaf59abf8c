/* storage/maint.c: maintenance in the writer's transactions: the compaction and retention steps,
 * which must not fail a client's writes, their savepoint and their back-offs.
 *
 *
 * In a client transaction the maintenance steps run after the jobs, inside SAVEPOINT maint.
 * The client's devices rows are written before it (flush_touched), so that rolling back to it
 * leaves exactly the client's writes. If a step fails (out of memory, a corrupt row, an SQLite
 * error), the writer asks SQLite what is left: if it rolled back the whole transaction itself
 * (sqlite3_get_autocommit, as it may for SQLITE_FULL, SQLITE_IOERR or SQLITE_NOMEM), the client's
 * jobs are lost and the transaction fails as any other; else it rolls back to the savepoint and
 * commits the jobs, and that COMMIT decides: a disk that is full or failing fails it there. The
 * maps then hold the steps' undone changes (counters, rows flags, the compact list), so after the
 * commit they are reloaded from the database, as after a failed transaction, which also
 * publishes the pending readings anew; retention's walk restarts (store__retain_end_tx). Each
 * failure is counted (stats.maintenance_errors) and backs off the step that failed, 1 s
 * doubling to a minute, so a failure that persists costs one attempt a minute: a device's
 * compaction (that device is not queued meanwhile, chunks.c; other devices are compacted),
 * retention's steps (compaction goes on), or, for a failure of no one step (the savepoint's
 * statements, an idle transaction's commit, or a full disk or exhausted memory in any step),
 * every step. Only a success of the same step ends its back-off; the general one only a step
 * that wrote (a device compacted, a retention step). After a full disk compaction runs only in
 * idle transactions until then (maint_steps). A run of failures logs a warning at its first and
 * at most one a minute after (the others counted), except that each device's first compaction
 * failure is logged with its name (at most STORE_MAINT_LOG_FIRST a minute), and an info line at
 * the recovery. A reload of the maps queues the compact list's devices again (chunks.c) and keeps
 * the small-row counts of devices backing off (maps.c); at a device's back-off's end it is queued
 * if it has small rows (store__compact_wake), without waiting for its next one; an idle writer
 * wakes for that end, and for the general back-off's end while devices are queued
 * (store__maint_wake_ms), not only for a client's write or retention's next step. A device's
 * failure count outlives its run (cpast: a success or a forgotten entry ends the run, a new run
 * resumes at the count less one a minute; its first failure is logged as a run's first). After
 * a full disk, a commit that grows the database ends the general back-off's run
 * (store__maint_committed), so an idle compaction runs next and may end maint_nospace. An idle
 * transaction is maintenance only: it fails whole, counted the same way and not in
 * commit_errors.
 *
 * The tests' copy of the writer's state (store__wstate_publish) is made here too, only in a
 * store opened with store__test_wstate_on (test_storage sets it; the daemon never does).
 *
 * Threads: the writer thread only (writer.c's run_transaction, idle_work and
 * store__writer_main); the back-offs and the savepoint's statements are the writer's.
 * store__test_wstate and store__test_wstate_dev: any thread (under qmu). */
#include "storage_int.h"
#include "compact_int.h"
#include "err.h"
#include "log.h"
#include "vtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sp_finalize(store_writer_t *w)
{
    sqlite3_finalize(w->sp_begin);
    sqlite3_finalize(w->sp_undo);
    sqlite3_finalize(w->sp_release);
    w->sp_begin = w->sp_undo = w->sp_release = NULL;
}

void store__maint_finalize(store_writer_t *w)
{
    sp_finalize(w);
    free(w->cpast);
    w->cpast = NULL;
    w->npast = w->past_cap = 0;
}

static int maint_prepare(store_t *s)
{
    static const char *const sql[3] = {"SAVEPOINT maint", "ROLLBACK TO maint", "RELEASE maint"};
    store_writer_t *w = &s->w;
    sqlite3_stmt **st[3] = {&w->sp_begin, &w->sp_undo, &w->sp_release};
    if (__atomic_load_n(&w->sp_broken, __ATOMIC_RELAXED))
        sp_finalize(w); /* test hook: prepared again, from a statement SQLite refuses */
    for (int i = 0; i < 3; i++) {
        if (*st[i] != NULL)
            continue;
        const char *text = __atomic_load_n(&w->sp_broken, __ATOMIC_RELAXED) ? "SAVEPOINT" : sql[i];
        int rc = sqlite3_prepare_v3(w->db, text, -1, SQLITE_PREPARE_PERSISTENT, st[i], NULL);
        if (rc != SQLITE_OK) {
            store__set_errmsg(s, "preparing '%s': %s", sql[i], sqlite3_errmsg(w->db));
            return store__status(w->db, rc) ? store__status(w->db, rc) : ERR_IO;
        }
    }
    return 0;
}

/* 1 when retention may take a step now: one is due and neither its back-off nor the general
 * one holds it back. */
static int retain_ready(store_t *s, int64_t now)
{
    int64_t due = store__retain_due_ms(s);
    return due >= 0 && due <= now && now >= s->w.bo_retain.next_ms && now >= s->w.bo_maint.next_ms;
}

/* 1 when a maintenance step may have work now: devices to compact (none backing off: they are
 * not queued) or a retention step due, unless every step backs off. */
int store__maint_due(store_t *s)
{
    int64_t now = vtime_mono_ms();
    return now >= s->w.bo_maint.next_ms && (s->w.ncompact > 0 || retain_ready(s, now));
}

/* Compaction, then a bounded step of a due retention sweep (retention.c) unless retention backs
 * off; w->maint_what names the step that failed. After a full disk (or exhausted memory), until
 * a step writes again, compaction runs only in idle transactions: SQLite rolls a whole
 * transaction back for SQLITE_FULL in a statement without a statement journal (compaction's
 * INSERT), so in a client transaction the retry would lose the client's jobs with it. */
int store__maint_steps(store_t *s, int idle)
{
    store_writer_t *w = &s->w;
    /* Idle after a full disk, a due retention step goes first and alone: it may free the space,
     * and compaction's SQLITE_FULL would roll its deletions back with the transaction. */
    int compact =
        idle ? !(w->maint_nospace && retain_ready(s, vtime_mono_ms())) : !w->maint_nospace;
    int err = compact ? store__compact_some(s, !idle) : 0;
    if (err) {
        w->maint_what = MAINT_COMPACT;
        return err;
    }
    if (vtime_mono_ms() < w->bo_retain.next_ms)
        return 0;
    if ((err = store__retain_step(s)) != 0)
        w->maint_what = MAINT_RETAIN;
    return err;
}

int64_t store__backoff_ms(int fails)
{
    int64_t backoff = STORE_RETAIN_PERIOD_MIN_MS;
    for (int i = 0; i < fails && backoff < STORE_RETAIN_PERIOD_MS; i++)
        backoff *= 2;
    return backoff > STORE_RETAIN_PERIOD_MS ? STORE_RETAIN_PERIOD_MS : backoff;
}

/* Counts a failure in b's log: a warning at the first of a run of failures, then at most one
 * per STORE_MAINT_LOG_MS (saying how many were not logged); the rest are counted for the
 * recovery's line. first: a device's first compaction failure, logged whatever the minute's
 * count (it does not start a new minute for the others). */
static void bo_log_fail(store_t *s, store_backoff_t *b, const char *what, int err, int kept,
                        int64_t next_ms, int64_t now, int first)
{
    b->fails++;
    int limited = b->fails > 1 && now - b->logged_ms < STORE_MAINT_LOG_MS;
    if (limited && !first) {
        b->unlogged++;
        return;
    }
    const char *outcome = kept == 2   ? "nothing ran, the transaction's writes committed"
                          : kept == 1 ? "rolled back, the transaction's other writes committed"
                                      : "its transaction rolled back";
    log_warn("storage: %s failed (%s): %s; %s; next try in %lld ms (%d failures in this run, %d"
             " since the last warning not logged)",
             what, err_str(err), s->w.tx_errmsg ? s->w.tx_errmsg : store_errmsg(s), outcome,
             next_ms >= now ? (long long)(next_ms - now) : 0LL, b->fails, b->unlogged);
    if (!limited) {
        b->logged_ms = now;
        b->unlogged = 0;
    }
}

/* 1 when a device's first compaction failure may be logged now: at most STORE_MAINT_LOG_FIRST
 * a STORE_MAINT_LOG_MS, so many devices failing at once do not flood the log (the rest are
 * counted, and limited as any repeat). */
static int first_log_ok(store_writer_t *w, int64_t now)
{
    if (w->cfirst_logged == 0 || now - w->cfirst_ms >= STORE_MAINT_LOG_MS) {
        w->cfirst_ms = now;
        w->cfirst_logged = 0;
    }
    if (w->cfirst_logged >= STORE_MAINT_LOG_FIRST)
        return 0;
    w->cfirst_logged++;
    return 1;
}

void store__bo_log_ok(store_backoff_t *b, const char *what)
{
    if (b->fails > 0)
        log_info("storage: %s succeeds again (after %d failures, %d of them not logged)", what,
                 b->fails, b->unlogged);
    b->fails = b->unlogged = 0;
    b->next_ms = 0;
}

static store_cfail_t *find_id(store_cfail_t *v, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id)
            return &v[i];
    return NULL;
}

/* The failures a remembered device still counts at now: its count less one per
 * STORE_CFAIL_DECAY_MS since its last back-off ended. */
static int past_fails(const store_cfail_t *p, int64_t now)
{
    int64_t gone = now > p->next_ms ? (now - p->next_ms) / STORE_CFAIL_DECAY_MS : 0;
    return gone >= p->fails ? 0 : p->fails - (int)gone;
}

/* Before a compaction failure of device id is charged: a device with no run in w->cfail (its
 * last one ended with a success, or was forgotten, chunks.c) resumes at the failures it still
 * counts, so one that fails now and then does not restart at STORE_RETAIN_PERIOD_MIN_MS each
 * time. Best effort: out of memory, it starts a new run. Returns 1 when it resumed one (this
 * failure is still its run's first, logged as such). */
static int past_resume(store_writer_t *w, int64_t id, int64_t now)
{
    if (store__cfail_find(w, id) != NULL)
        return 0;
    store_cfail_t *p = find_id(w->cpast, w->npast, id);
    int fails = p != NULL ? past_fails(p, now) : 0;
    store_cfail_t *f = fails > 0 ? store__cfail_insert(w, id) : NULL;
    if (f == NULL)
        return 0;
    f->fails = fails;
    return 1;
}

/* After it was charged: remembers its run's count (at most STORE_CFAIL_FAILS_MAX) and back-off
 * end, drops the devices whose count has decayed to none, and leaves its back-off's end to be
 * seen again (store__compact_wake). Best effort past STORE_CFAIL_PAST_MAX devices or memory. */
static void past_note(store_writer_t *w, int64_t id, int64_t now)
{
    store_cfail_t *f = store__cfail_find(w, id);
    if (f == NULL)
        return;
    f->woken = 0;
    size_t keep = 0;
    for (size_t i = 0; i < w->npast; i++)
        if (w->cpast[i].id != id && past_fails(&w->cpast[i], now) > 0)
            w->cpast[keep++] = w->cpast[i];
    w->npast = keep;
    if (w->npast >= STORE_CFAIL_PAST_MAX ||
        store__grow((void **)&w->cpast, &w->past_cap, w->npast + 1, sizeof *w->cpast))
        return;
    int fails = f->fails < STORE_CFAIL_FAILS_MAX ? f->fails : STORE_CFAIL_FAILS_MAX;
    w->cpast[w->npast++] = (store_cfail_t){.id = id, .fails = fails, .next_ms = f->next_ms};
}

void store__compact_past_forget(store_writer_t *w, int64_t id)
{
    store_cfail_t *p = find_id(w->cpast, w->npast, id);
    if (p != NULL)
        *p = w->cpast[--w->npast];
}

void store__compact_wake(store_t *s)
{
    store_writer_t *w = &s->w;
    if (w->ncfail == 0 || w->maps_stale || w->requeue_due)
        return;
    int64_t now = vtime_mono_ms();
    int due = 0;
    for (size_t i = 0; i < w->ncfail; i++)
        if (!w->cfail[i].woken && now >= w->cfail[i].next_ms)
            w->cfail[i].woken = due = 1;
    if (!due)
        return;
    /* Once per back-off's end: the devices whose back-off has passed go to the requeue
     * (chunks.c), which sorts them and walks the devices in id order once, queueing those that
     * have small rows (small_rows -1: only if they have) and are not queued yet: O(devices + n
     * log n) for n backing off (a lookup of each device in the list was O(devices x n): 66 ms
     * for 10,000 devices all backing off, measured). */
    w->nrequeue = 0;
    for (size_t i = 0; i < w->ncfail; i++) {
        if (now < w->cfail[i].next_ms)
            continue;
        if (store__grow((void **)&w->requeue, &w->requeue_cap, w->nrequeue + 1, sizeof *w->requeue))
            break; /* best effort: the rest wait for their next small row */
        w->requeue[w->nrequeue++] = (store_requeue_t){w->cfail[i].id, -1};
    }
    w->requeue_due = 1;
    store__compact_requeue(s);
}

int64_t store__maint_wake_ms(store_t *s)
{
    store_writer_t *w = &s->w;
    int64_t at = -1;
    /* As store__compact_wake: with the maps stale or a requeue due it does nothing, and a wake
     * for it would spin. */
    if (!w->maps_stale && !w->requeue_due)
        for (size_t i = 0; i < w->ncfail; i++)
            if (!w->cfail[i].woken && (at < 0 || w->cfail[i].next_ms < at))
                at = w->cfail[i].next_ms;
    if (w->ncompact > 0)
        at = 0; /* queued devices wait only for the general back-off */
    if (at >= 0 && at < w->bo_maint.next_ms)
        at = w->bo_maint.next_ms; /* nothing is compacted before it ends */
    return at;
}

static int64_t page_count(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A full disk ended with nothing left to compact (and no retention step to write) kept
 * bo_maint's count, so the next unrelated failure started at a longer back-off. A commit that
 * grew the database after it got new pages from the file system: the run ends there. One
 * PRAGMA per commit while the run lasts. Not maint_nospace (review of maint5: ending it here,
 * even with the files grown, let the next client transaction's compaction meet SQLITE_FULL on
 * a disk with a little space back and take the client's batch, which main accepts): with the
 * run ended, the idle work runs a compaction right after this commit, ahead of queued work
 * (writer.c's idle_work), and that ends maint_nospace if it writes. */
void store__maint_committed(store_t *s)
{
    store_writer_t *w = &s->w;
    if (w->nospace_pages == 0)
        return;
    if (w->bo_maint.fails == 0) {
        w->nospace_pages = 0; /* ended otherwise */
        return;
    }
    if (page_count(w->db) > w->nospace_pages) {
        w->nospace_pages = 0;
        store__bo_log_ok(&w->bo_maint, "maintenance (the database grew: space is back)");
    }
}

/* Counts and logs a failed maintenance step (err; the step is w->maint_what) and backs that
 * step off: a device's compaction (that device only), retention's steps, or, for a failure of
 * no one step (or a full disk or exhausted memory in any step), all of them. kept: 1 rolled
 * back to its savepoint, the client's writes committed; 2 the savepoint's statements could not
 * be prepared, nothing ran and the writes committed; 0 its transaction rolled back. */
void store__maint_failed(store_t *s, int err, int kept)
{
    store_writer_t *w = &s->w;
    int64_t now = vtime_mono_ms(), next = -1;
    pthread_mutex_lock(&s->smu);
    s->stats.maintenance_errors++;
    if (kept == 1)
        s->stats.maintenance_rollbacks++;
    pthread_mutex_unlock(&s->smu);
    /* A full disk or exhausted memory is no one device's fault: every step backs off together
     * (as before per-device back-offs), not each queued device's compaction in turn. */
    int shared = err == ERR_NOSPACE || err == ERR_NOMEM, first = 0;
    if (shared)
        w->maint_nospace = 1;
    if (w->maint_what == MAINT_COMPACT && !shared) {
        int resumed = past_resume(w, w->cfail_id, now);
        next = store__compact_failed(w, w->cfail_id, now, &first);
        first = first || resumed; /* each run's first failure is logged once */
        past_note(w, w->cfail_id, now);
    }
    if (next >= 0) {
        char what[128];
        snprintf(what, sizeof what, "compaction of device \"%s\" (id %lld)", w->cfail_name,
                 (long long)w->cfail_id);
        bo_log_fail(s, &w->bo_compact, what, err, kept, next, now, first && first_log_ok(w, now));
    } else if (w->maint_what == MAINT_RETAIN && !shared) {
        w->bo_retain.next_ms = now + store__backoff_ms(w->bo_retain.fails);
        bo_log_fail(s, &w->bo_retain, "a retention step", err, kept, w->bo_retain.next_ms, now, 0);
    } else {
        /* A full disk notes the database's size; any other failure of the general run leaves
         * only a success of a step to end it. */
        w->nospace_pages = err == ERR_NOSPACE ? page_count(w->db) : 0;
        w->bo_maint.next_ms = now + store__backoff_ms(w->bo_maint.fails);
        bo_log_fail(s, &w->bo_maint,
                    w->maint_what == MAINT_PREPARE ? "preparing the maintenance savepoint"
                    : shared                       ? "maintenance (out of space or memory)"
                                                   : "a maintenance transaction",
                    err, kept, w->bo_maint.next_ms, now, 0);
    }
}

/* A committed transaction whose maintenance ran without a failure: each step that ran ends its
 * own back-off (retention: a step ran, stepped; compaction: the failure list emptied). The
 * general back-off ends only when a step wrote something (compacted: a device's rows were
 * rewritten; removed: a retention step deleted or set something): a transaction whose steps
 * had nothing to do (the devices queued had too few small rows, nothing old enough to remove)
 * proves nothing of a full disk, and ending the back-off there kept it at 1 s. maint_nospace
 * ends only with a compaction that wrote: a retention step's deletions do not show that
 * compaction's rewrite fits, and a client transaction's compaction that meets SQLITE_FULL
 * takes the client's batch with it. */
void store__maint_succeeded(store_t *s, int stepped, int compacted, int removed)
{
    store_writer_t *w = &s->w;
    if (store__compact_end_tx(w, 1))
        store__bo_log_ok(&w->bo_compact, "compaction");
    if (stepped)
        store__bo_log_ok(&w->bo_retain, "retention");
    if (compacted || removed)
        store__bo_log_ok(&w->bo_maint, "maintenance");
    if (compacted)
        w->maint_nospace = 0;
}

/* The maintenance steps of a client transaction, in their savepoint (above). Returns 0 when
 * the client's jobs can still commit (*maint_err: the steps' failure, or 0; *undone: the steps
 * ran and were rolled back, so the maps must be reloaded), else the status that fails the
 * transaction. */
int store__maint_guarded(store_t *s, int *maint_err, int *undone)
{
    store_writer_t *w = &s->w;
    int err = maint_prepare(s);
    if (err) {
        *maint_err = err; /* nothing ran: counted, not as a rollback */
        w->maint_what = MAINT_PREPARE;
        return 0;
    }
    /* The client's devices rows, before the savepoint; the steps' inside it. Either way the
     * list is emptied, so the final flush_touched writes none of them again (nor, after the
     * rollback, the steps' undone counters). */
    if ((err = store__flush_touched(s)) != 0)
        return err;
    store__touched_clear(w);
    if ((err = store__step_done(s, w->sp_begin)) != 0)
        return err;
    int m = store__maint_steps(s, 0);
    if (m == 0)
        m = store__flush_touched(s);
    store__touched_clear(w);
    if (m == 0)
        return store__step_done(s, w->sp_release);
    *maint_err = m;
    if (sqlite3_get_autocommit(w->db))
        return m; /* SQLite rolled back the whole transaction: the jobs are lost with it */
    *undone = 1;
    err = store__step_done(s, w->sp_undo);
    return err ? err : store__step_done(s, w->sp_release);
}

/* Test: the longest bucket chain of the channel table of device name (w->didx), -1 when there
 * is no such device or it has no channels. */
static int chan_chain_max(store_writer_t *w, const char *name)
{
    size_t len = strlen(name);
    const store_dev_t *d =
        store__devidx_find(&w->didx, store__devidx_key(&w->didx, name, len), name, len);
    if (d == NULL || d->chans == NULL)
        return -1;
    unsigned most = 0;
    const UT_hash_table *t = d->chans->hh.tbl;
    for (unsigned i = 0; i < t->num_buckets; i++)
        most = t->buckets[i].count > most ? t->buckets[i].count : most;
    return (int)most;
}

void store__wstate_publish(store_t *s)
{
    /* Only for the tests (store__test_wstate_on at open): a daemon's store copies nothing. */
    if (!s->wpub_on)
        return;
    const store_writer_t *w = &s->w;
    store_test_wstate_t *p = &s->wpub;
    p->ncfail = w->ncfail;
    p->ncompact = w->ncompact;
    p->compact0_small_rows =
        w->ncompact > 0 && w->compact[0] != NULL ? w->compact[0]->small_rows : -1;
    p->maint_nospace = w->maint_nospace;
    p->bo_maint = w->bo_maint;
    p->bo_compact = w->bo_compact;
    p->nospace_pages = w->nospace_pages;
    p->compact_runs = w->compact_runs;
    p->didx_seed = w->didx.seed;
    p->chan_chain_max = s->wpub_dev[0] != '\0' ? chan_chain_max(&s->w, s->wpub_dev) : -1;
    size_t n = w->ncfail < STORE_TEST_CFAIL ? w->ncfail : STORE_TEST_CFAIL;
    if (n > 0)
        memcpy(p->cfail, w->cfail, n * sizeof *p->cfail);
}

int store__test_wstate(store_t *s, store_test_wstate_t *out)
{
    /* A store that does not publish would show a zeroed state a test could take for real. */
    if (!s->wpub_on) {
        *out = (store_test_wstate_t){0};
        return ERR_INVAL;
    }
    pthread_mutex_lock(&s->qmu);
    *out = s->wpub;
    pthread_mutex_unlock(&s->qmu);
    return 0;
}

void store__test_wstate_dev(store_t *s, const char *name)
{
    pthread_mutex_lock(&s->qmu);
    snprintf(s->wpub_dev, sizeof s->wpub_dev, "%s", name);
    pthread_mutex_unlock(&s->qmu);
}

/* storage/retention.c: the retention sweep. With store_opts_t.retention_ms set, the writer
 * deletes the readings rows (chunks) whose every timestamp is older than the horizon, now minus
 * the retention, and the anomaly events that ended before it; model versions are bounded per
 * device elsewhere and stay, and so do devices, channels and saved detectors.
 *
 * What is kept: a row goes only when its newest timestamp (t_last) is before the horizon, so a
 * row spanning the horizon stays whole until all of it is old: at least `retention` of readings
 * is kept, and at most about one row's span (an hour, usually minutes) plus one sweep period
 * more. A device's pending readings (pending.c: its newest, not yet a row) are never touched; old
 * ones become a row within STORE_PEND_AGE_MS and go with a later sweep. Deleted pages go to
 * SQLite's freelist and are reused by later writes: the file does not shrink (no VACUUM, which
 * would rewrite the whole database under the write lock), it stops growing once the retained
 * data is in steady state.
 *
 * How: a sweep fixes its clock (store_retention_now at its start: the wall clock, but one
 * stepped forward is followed only after an hour, vtime_steady_now) and walks the writer's device
 * map from a cursor. It runs in steps, one per writer transaction: every transaction of a busy
 * writer (so a saturated writer still sweeps) and idle transactions of its own while the queue
 * is empty (writer.c). The retention is live (store_set_retention, a reload): each step takes its
 * horizon from the sweep's clock minus the retention it reads, and the next sweep is due a tenth
 * of the retention as it is then after the last one ended; turned off, a sweep part-way is ended
 * (store__retain_off). A step visits at most STORE_RETAIN_DEVS_PER_TX devices and deletes at
 * most STORE_RETAIN_ROWS_PER_TX rows and
 * STORE_RETAIN_EVENTS_PER_TX events, so it adds a bounded, small amount of work to the transaction
 * it shares with other clients' readings. A device is read only when its oldest timestamp
 * (d->first_ts, in memory) is before the horizon; its rows are then found in the (device_id, t0,
 * t_last, n) index, oldest first, and deleted as one key range. Its counters follow (points minus
 * the rows' n, first_ts the next row's t0, or the oldest pending reading's, or none), written with
 * the devices row and published at commit like any write. The events go in batches through the
 * events_start index; the devices that lost one as long as their length bound (devices.ev_maxlen,
 * schema 9) are noted (r->lower) and, once the sweep's events are deleted, each has its bound set
 * again from its remaining ended events, once a sweep, at most STORE_RETAIN_BOUNDS_PER_TX devices a
 * step (set_bounds): one search of that device's events each, none for the others. Until then a
 * noted bound is the old one, too large but valid. A failed step is rolled back (with its idle
 * transaction, or to its savepoint in a client transaction, whose writes still commit: writer.c),
 * the maps are reloaded, and the walk starts again from the first device STORE_RETAIN_PERIOD_MIN_MS
 * later or after writer.c's maintenance back-off (1 s doubling to a minute), whichever is later;
 * the noted devices stay noted (a bound set again without need is still exact). The first sweep
 * after open notes every device at its start (note_all), so each bound is set exactly once per
 * process start: a restart forgets the list, and a database upgraded from schema 9 before retention
 * lowered bounds may hold bounds of events it already deleted; both are too large but valid
 * until then, and exact after it. So is a sweep that ran out of memory noting devices: the next
 * sweep notes every device again (note_all), as after a start.
 * Statements that cannot be prepared disable retention (logged; store_retention_sweep answers
 * ERR_IO) instead of failing every transaction they would join.
 *
 * Invariants: between transactions a device's rows still do not overlap, d->points counts its
 * rows' and pending points, d->first_ts is its oldest; the cursor (pos) is a device in the map or
 * NULL, moved past a deleted device (store__retain_forget) and dropped with the maps.
 *
 * Threads: writer thread only (the sweep's state is store_writer_t.ret); the counters go to
 * s->stats under smu after each commit. */
#include "storage_int.h"
#include "pending_int.h"
#include "err.h"
#include "log.h"
#include "path.h"
#include "vtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The retention clock across a restart. At each sweep's start the writer saves the time its
 * horizon was taken from, with the boot's id and CLOCK_BOOTTIME, in DIR/RETAIN_CLOCK_FILE
 * (clock_save); store_open reads it back before the writer starts, so before anything reads
 * the clock (store__retain_clock_load), or store_set_retention does when a reload first turns
 * retention on in a process started without it, before any sweep: in the same boot it starts
 * the clock from that time plus the time elapsed since, so that a wall clock stepped forward
 * (held in memory, vtime_steady_now) is still held after a restart. A missing file or another
 * boot's (the elapsed time is not known): the wall clock as it is, as before; an unreadable or
 * damaged one (garbage, cut short, a directory) likewise, with a warning naming it. */
#define RETAIN_CLOCK_FILE "retention-clock"
static void clock_save(store_t *s, int64_t now);
/* A failed save is logged once a process (the next sweeps would fail alike). */
static atomic_int clock_save_logged;

/* The oldest rows of a device (?1), at most ?2 of them: t0 order is time order (rows do not
 * overlap), so the deletable ones come first. */
const char store__sql_retain_rows[] =
    "SELECT t0, t_last, n FROM readings WHERE device_id=?1 ORDER BY t0 LIMIT ?2";
/* store__sql_retain_events and store__sql_ev_maxlen_set are in schema.c, beside the bound's
 * expression. */

/* The retention now (live: store_set_retention). Any thread. */
static int64_t retention(store_t *s)
{
    return __atomic_load_n(&s->w.ret.retention_ms, __ATOMIC_ACQUIRE);
}

/* Time from the end of a sweep to the start of the next: a tenth of the retention (as it is
 * now: a reload that shortens it brings the next sweep nearer), within the bounds. */
static int64_t period_ms(store_t *s)
{
    int64_t p = retention(s) / 10;
    if (p < STORE_RETAIN_PERIOD_MIN_MS)
        p = STORE_RETAIN_PERIOD_MIN_MS;
    return p > STORE_RETAIN_PERIOD_MS ? STORE_RETAIN_PERIOD_MS : p;
}

static int prepare(store_t *s, sqlite3_stmt **st, const char *sql)
{
    if (*st != NULL)
        return 0;
    int rc = sqlite3_prepare_v3(s->w.db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc == SQLITE_OK)
        return 0;
    store__set_errmsg(s, "preparing the retention sweep: %s", sqlite3_errmsg(s->w.db));
    return store__status(s->w.db, rc) ? store__status(s->w.db, rc) : ERR_IO;
}

/* Deletes the oldest rows of d that end before the horizon, at most budget of them; *removed is
 * their number, *more 1 when d has more such rows (the budget ran out on it). */
static int retain_device(store_t *s, store_dev_t *d, int64_t horizon, size_t budget,
                         size_t *removed, int *more)
{
    store_writer_t *w = &s->w;
    sqlite3_stmt *st = w->ret.rows;
    sqlite3_bind_int64(st, 1, d->id);
    sqlite3_bind_int64(st, 2, (int64_t)budget + 1);
    size_t k = 0;
    int64_t lo = 0, hi = 0, points = 0, next_t0 = 0;
    int has_next = 0, rc;
    *removed = 0;
    *more = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t t0 = sqlite3_column_int64(st, 0), t_last = sqlite3_column_int64(st, 1);
        if (k < budget && t_last < horizon) {
            if (k++ == 0)
                lo = t0;
            hi = t0;
            points += sqlite3_column_int64(st, 2);
            continue;
        }
        has_next = 1;
        next_t0 = t0;
        *more = k == budget && t_last < horizon;
        break;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        store__set_errmsg(s, "reading the rows of device %lld for retention: %s", (long long)d->id,
                          sqlite3_errmsg(w->db));
        return store__status(w->db, rc) ? store__status(w->db, rc) : ERR_IO;
    }
    *removed = k;
    if (k == 0)
        return 0;
    /* The k rows are exactly those with t0 in [lo, hi]: (device_id, t0) is unique. */
    sqlite3_bind_int64(w->chunk_del, 1, d->id);
    sqlite3_bind_int64(w->chunk_del, 2, lo);
    sqlite3_bind_int64(w->chunk_del, 3, hi);
    int err = store__step_done(s, w->chunk_del);
    if (err)
        return err;
    d->points -= points;
    if (has_next) {
        d->first_ts = next_t0;
    } else {
        /* No row is left: the pending readings (all later than the rows) hold the device's
         * oldest timestamp, or the device holds none. */
        d->has_rows = 0;
        d->small_rows = 0;
        if (d->pnpts > 0)
            d->first_ts = d->pbase;
        else
            d->first_ts = d->last_ts = -1;
    }
    w->ret.tx_chunks += k;
    w->ret.tx_points += (uint64_t)points;
    if ((err = store__touch(w, d)) != 0)
        return err;
    return store__pend_mark(w, d);
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts ids[0..n) and drops the repeats; returns how many are left. */
static size_t sort_unique(int64_t *ids, size_t n)
{
    if (n < 2)
        return n;
    qsort(ids, n, sizeof ids[0], cmp_id);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (ids[i] != ids[k - 1])
            ids[k++] = ids[i];
    return k;
}

/* Notes the devices ids[0..n) (sorted, unique) for set_bounds. The list is made unique again
 * before it grows, and grows to at least twice what it then holds, so its capacity (kept until
 * close) stays below four times the most devices a sweep noted plus a step's, and it fills up to
 * that capacity with repeats before it is made unique again. Out of memory (ERR_NOMEM) the
 * devices are not noted: their bounds stay as they are, larger than needed but valid, until the
 * sweep that notes every device (note_all; retain_events asks for one). */
static int note_bounds(store_retain_t *r, const int64_t *ids, size_t n)
{
    if (r->nlower + n > r->caplower) {
        r->nlower = sort_unique(r->lower, r->nlower);
        size_t cap = r->caplower;
        while (r->nlower + n > cap / 2)
            cap = cap ? 2 * cap : 2 * STORE_RETAIN_EVENTS_PER_TX;
        if (cap > r->caplower) {
            int64_t *p = realloc(r->lower, cap * sizeof *p);
            if (p == NULL)
                return ERR_NOMEM;
            r->lower = p;
            r->caplower = cap;
        }
    }
    memcpy(r->lower + r->nlower, ids, n * sizeof *ids);
    r->nlower += n;
    r->lower_sorted = 0;
    return 0;
}

/* At the start of the first sweep since open: notes every device of the maps, so that the sweep
 * sets each one's bound once, in the same follow-up steps, whatever it deletes. A bound can be
 * larger than needed without any device on the list: a database upgraded from schema 9 before
 * retention lowered bounds, whose retention had deleted the long events, or a restart during a
 * sweep, which forgets the list. Costs one search of each device's events per start (8 devices a
 * step) and the device count's ids (the list, kept until close). Out of memory nothing is noted
 * and the next sweep tries again; a device created after this keeps its bound by the triggers. */
static void note_all(store_t *s)
{
    store_retain_t *r = &s->w.ret;
    size_t n = HASH_COUNT(s->w.devs), k = 0;
    if (n == 0) {
        r->noted_all = 1;
        return;
    }
    int64_t *ids = malloc(n * sizeof *ids);
    if (ids == NULL)
        return;
    for (store_dev_t *d = s->w.devs; d != NULL && k < n; d = d->hh.next)
        ids[k++] = d->id;
    if (note_bounds(r, ids, sort_unique(ids, k)) == 0)
        r->noted_all = 1;
    free(ids);
}

/* Deletes at most STORE_RETAIN_EVENTS_PER_TX events that ended before the sweep's horizon and
 * notes each device that lost one as long as its bound (the others' bounds cannot go down);
 * events_done when none such is left. */
static int retain_events(store_t *s)
{
    store_writer_t *w = &s->w;
    store_retain_t *r = &w->ret;
    int64_t ids[STORE_RETAIN_EVENTS_PER_TX];
    size_t n = 0, k = 0;
    int rc;
    sqlite3_bind_int64(r->events, 1, r->horizon);
    sqlite3_bind_int64(r->events, 2, STORE_RETAIN_EVENTS_PER_TX);
    while ((rc = sqlite3_step(r->events)) == SQLITE_ROW) {
        /* the device, if the event was as long as its bound */
        if (n++ < STORE_RETAIN_EVENTS_PER_TX && sqlite3_column_int(r->events, 1))
            ids[k++] = sqlite3_column_int64(r->events, 0);
    }
    sqlite3_reset(r->events);
    sqlite3_clear_bindings(r->events);
    if (rc != SQLITE_DONE) {
        store__set_errmsg(s, "deleting events for retention: %s", sqlite3_errmsg(w->db));
        return store__status(w->db, rc) ? store__status(w->db, rc) : ERR_IO;
    }
    r->tx_events += n;
    r->events_done = n < STORE_RETAIN_EVENTS_PER_TX;
    /* Out of memory the bounds stay, larger than needed but valid, and the events are gone, so
     * no later deletion notes these devices again: the next sweep notes every device. */
    if (k > 0 && note_bounds(r, ids, sort_unique(ids, k)) != 0)
        r->noted_all = 0;
    return 0;
}

/* Sets the length bound (devices.ev_maxlen) of at most STORE_RETAIN_BOUNDS_PER_TX noted devices,
 * the last ones of the list, from their remaining ended events, in the open transaction: the
 * bound the migration would compute, so the queries still reach every remaining episode and stop
 * reading far back once a long one is gone. Called once the sweep's events are deleted, so each
 * noted device is searched once a sweep however many of its events went: one range search of its
 * events in the table's primary key (device_id, id), whose rows hold the times. They leave the
 * list at the commit (store__retain_end_tx), and stay on it if the transaction fails. */
static int set_bounds(store_t *s)
{
    store_retain_t *r = &s->w.ret;
    if (!r->lower_sorted) {
        r->nlower = sort_unique(r->lower, r->nlower);
        r->lower_sorted = 1;
    }
    size_t k = r->nlower < STORE_RETAIN_BOUNDS_PER_TX ? r->nlower : STORE_RETAIN_BOUNDS_PER_TX;
    int err = 0;
    for (size_t i = r->nlower - k; i < r->nlower && err == 0; i++) {
        sqlite3_bind_int64(r->bound, 1, r->lower[i]);
        err = store__step_done(s, r->bound);
    }
    if (err == 0)
        r->tx_bounds = k;
    return err;
}

int store__retain_step(store_t *s)
{
    store_writer_t *w = &s->w;
    store_retain_t *r = &w->ret;
    const int64_t keep = retention(s);
    if (keep <= 0 || r->disabled)
        return 0;
    int64_t now = vtime_mono_ms();
    if (now < store__retain_due_ms(s))
        return 0;
    int err = prepare(s, &r->rows, store__sql_retain_rows);
    if (err == 0)
        err = prepare(s, &r->events, store__sql_retain_events);
    if (err == 0)
        err = prepare(s, &r->bound, store__sql_ev_maxlen_set);
    if (err) {
        /* Never fail other clients' writes for it: retention stops, loudly. */
        log_error("storage: retention disabled: %s", store_errmsg(s));
        r->disabled = 1;
        return 0;
    }
    if (!r->active) {
        int64_t wall = __atomic_load_n(&r->test_wall_ms, __ATOMIC_ACQUIRE);
        if (wall == 0)
            clock_save(s, wall = store_retention_now(s));
        r->active = 1;
        r->periodic = 0; /* due until it ends */
        r->wall = wall;
        r->start_ms = now;
        r->walking = 0;
        r->events_done = 0;
        r->wait_cur = r->wait_next;
        r->wait_next = NULL;
        if (!r->noted_all)
            note_all(s);
    }
    /* Each step reads the retention: a reload's applies from the next one, a sweep's start
     * (its clock) staying. */
    r->horizon = r->wall < INT64_MIN + keep ? INT64_MIN : r->wall - keep;
    double t0 = vtime_mono_s();
    r->tx_step = 1;
    store_dev_t *d = r->walking ? r->pos : w->devs;
    r->walking = 1;
    size_t budget = STORE_RETAIN_ROWS_PER_TX;
    for (size_t seen = 0; d != NULL && budget > 0 && seen < STORE_RETAIN_DEVS_PER_TX; seen++) {
        if (d->has_rows && d->first_ts < r->horizon) {
            size_t removed;
            int more;
            if ((err = retain_device(s, d, r->horizon, budget, &removed, &more)) != 0)
                break;
            budget -= removed;
            if (more)
                break; /* this device again in the next step */
        }
        d = d->hh.next;
    }
    r->pos = d;
    if (err == 0 && !r->events_done)
        err = retain_events(s);
    if (err == 0 && r->events_done && r->nlower > 0)
        err = set_bounds(s);
    r->finishing = err == 0 && r->pos == NULL && r->events_done && r->nlower == r->tx_bounds;
    r->tx_seconds += vtime_mono_s() - t0;
    return err;
}

/* Calls back a list of JOB_RETAIN (linked through next) with status. */
static void wake(store_job_t *j, int status)
{
    while (j != NULL) {
        store_job_t *next = j->next;
        j->cb(j->arg, status); /* the waiter owns and frees the job */
        j = next;
    }
}

void store__retain_end_tx(store_t *s, int err)
{
    store_retain_t *r = &s->w.ret;
    if (r->disabled) {
        wake(r->wait_cur, ERR_IO);
        wake(r->wait_next, ERR_IO);
        r->wait_cur = r->wait_next = NULL;
        return;
    }
    if (!r->tx_step)
        return;
    int64_t now = vtime_mono_ms();
    store_job_t *done = NULL;
    if (err == 0) {
        pthread_mutex_lock(&s->smu);
        store_stats_t *st = &s->stats;
        st->retention_chunks += r->tx_chunks;
        st->retention_points += r->tx_points;
        st->retention_events += r->tx_events;
        st->retention_steps++;
        st->retention_seconds += r->tx_seconds;
        r->bounds_set += r->tx_bounds;
        if (r->finishing) {
            st->retention_sweeps++;
            st->retention_last_sweep_seconds = (double)(now - r->start_ms) / 1000.0;
        }
        pthread_mutex_unlock(&s->smu);
        r->nlower -= r->tx_bounds; /* set: the last ones of the list */
        if (r->finishing) {
            r->active = 0;
            r->walking = 0;
            done = r->wait_cur;
            r->wait_cur = NULL;
            /* A sweep asked for meanwhile starts at once; else one period after this one's
             * end, the period read when due (store__retain_due_ms). */
            r->ended_ms = now;
            r->periodic = r->wait_next == NULL;
            r->next_ms = 0;
        }
    } else if (r->active) {
        r->walking = 0;
        r->events_done = 0;
        r->next_ms = now + STORE_RETAIN_PERIOD_MIN_MS;
        r->periodic = 0;
    }
    r->tx_chunks = r->tx_points = r->tx_events = 0;
    r->tx_bounds = 0;
    r->tx_seconds = 0;
    r->tx_step = 0;
    r->finishing = 0;
    wake(done, 0);
}

int64_t store__retain_due_ms(store_t *s)
{
    const store_retain_t *r = &s->w.ret;
    if (retention(s) <= 0 || r->disabled)
        return -1;
    return r->periodic ? r->ended_ms + period_ms(s) : r->next_ms;
}

void store__retain_wait(store_t *s, store_job_t *j)
{
    store_retain_t *r = &s->w.ret;
    if (r->disabled) {
        j->cb(j->arg, ERR_IO);
        return;
    }
    if (retention(s) <= 0) { /* turned off since run_job looked */
        j->cb(j->arg, ERR_INVAL);
        return;
    }
    j->next = r->wait_next;
    r->wait_next = j;
    if (!r->active) {
        r->next_ms = 0;
        r->periodic = 0;
    }
}

void store__retain_off(store_t *s)
{
    store_retain_t *r = &s->w.ret;
    if (retention(s) > 0 || r->disabled || (!r->active && r->wait_next == NULL))
        return;
    /* No step runs while it is off (store__retain_due_ms): a sweep left part-way would resume,
     * once retention is on again, from its cursor with the clock of its start, however old,
     * and its waiters would wait until then. It ends here instead; the noted devices stay noted
     * for the next sweep, which starts afresh (due at once) when retention is on again. */
    store_job_t *cur = r->wait_cur, *next = r->wait_next;
    r->wait_cur = r->wait_next = NULL;
    r->active = 0;
    r->walking = 0;
    r->events_done = 0;
    r->periodic = 0;
    r->next_ms = 0;
    wake(cur, ERR_INVAL);
    wake(next, ERR_INVAL);
}

void store__retain_forget(store_writer_t *w, store_dev_t *d)
{
    if (w->ret.walking && w->ret.pos == d)
        w->ret.pos = d->hh.next;
}

void store__retain_deinit(store_t *s)
{
    store_retain_t *r = &s->w.ret;
    wake(r->wait_cur, ERR_CLOSED);
    wake(r->wait_next, ERR_CLOSED);
    r->wait_cur = r->wait_next = NULL;
    sqlite3_finalize(r->rows);
    sqlite3_finalize(r->events);
    sqlite3_finalize(r->bound);
    r->rows = r->events = r->bound = NULL;
    free(r->lower);
    r->lower = NULL;
    r->nlower = r->caplower = 0;
}

uint64_t store__test_bounds_set(store_t *s)
{
    pthread_mutex_lock(&s->smu);
    uint64_t n = s->w.ret.bounds_set;
    pthread_mutex_unlock(&s->smu);
    return n;
}

/* The boot's id (/proc/sys/kernel/random/boot_id) into id[size]; 0, or -1 when unreadable. */
static int boot_id(char *id, size_t size)
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f == NULL)
        return -1;
    int ok = fgets(id, (int)size, f) != NULL;
    fclose(f);
    id[strcspn(id, "\n")] = '\0';
    return ok && *id ? 0 : -1;
}

/* Saves the time a sweep's horizon was taken from (see clock_load): written to a
 * temporary file and renamed over the old one, not synced (a save lost to a crash leaves the
 * one before, or none: the clock is then the wall clock at the start, as before). A failure is
 * logged once. Writer thread. */
static void clock_save(store_t *s, int64_t now)
{
    char id[64], path[4096], tmp[4096 + 8];
    if (boot_id(id, sizeof id) != 0)
        return;
    path_join(path, sizeof path, s->dir, RETAIN_CLOCK_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* 0640 whatever the umask, as the database (storage.c); not through a link. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd >= 0 && fchmod(fd, 0640) != 0) {
        close(fd);
        fd = -1;
    }
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL && fd >= 0)
        close(fd);
    int ok = f != NULL && fprintf(f, "boot_id %s\nwall_ms %lld\nboot_ms %lld\n", id, (long long)now,
                                  (long long)vtime_boot_ms()) > 0;
    int err = errno;
    if (f != NULL && fclose(f) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        err = errno;
    }
    if (!ok && atomic_exchange(&clock_save_logged, 1) == 0) {
        log_warn("storage: cannot save retention's clock to %s: %s; a restart takes the wall "
                 "clock as it is",
                 path, strerror(err));
    }
}

/* A retention-clock file that is there but cannot be used: said, and the start goes on. */
static void clock_ignored(const char *path, const char *why)
{
    log_warn("storage: retention's clock in %s is ignored: %s; it starts from the wall clock as "
             "it is",
             path, why);
}

void store__retain_clock_load(store_t *s)
{
    char path[4096], id[64], saved[64] = "";
    long long wall = 0, boot = 0;
    path_join(path, sizeof path, s->dir, RETAIN_CLOCK_FILE);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno != ENOENT)
            clock_ignored(path, strerror(errno));
        return;
    }
    /* The whole file as clock_save writes it, its last newline included: a file cut short
     * (a number cut mid-way would still scan) or with more after it is damaged. */
    char nl = 0;
    errno = 0;
    int n = fscanf(f, "boot_id %63s wall_ms %lld boot_ms %lld%c", saved, &wall, &boot, &nl);
    const int rerr = ferror(f) ? errno : 0, more = n == 4 ? fgetc(f) : EOF;
    fclose(f);
    const int64_t mono = vtime_boot_ms();
    if (rerr) { /* a directory: EISDIR */
        clock_ignored(path, strerror(rerr));
        return;
    }
    if (n != 4 || nl != '\n' || more != EOF) {
        clock_ignored(path, "not the boot_id, wall_ms and boot_ms lines vigild writes");
        return;
    }
    /* A time outside vigil's is passed over too: the sum below would overflow. */
    if (boot < 0 || wall < VTIME_MIN_MS || wall > VTIME_MAX_MS) {
        clock_ignored(path, "a time out of range");
        return;
    }
    /* Another boot's CLOCK_BOOTTIME starts again: the time elapsed since is not known. */
    if (boot_id(id, sizeof id) != 0 || strcmp(id, saved) != 0)
        return;
    if (boot > mono) {
        clock_ignored(path, "saved later in this boot than now");
        return;
    }
    const int64_t now = (int64_t)wall + (mono - (int64_t)boot);
    vtime_steady_seed(&s->w.ret.clock, now, mono);
    char a[32];
    log_info("storage: retention's clock goes on from its last sweep: %s (the wall clock, if "
             "further ahead, is held as a step forward)",
             vtime_format(now, a, sizeof a));
}

int64_t store_retention_now(store_t *s)
{
    int event;
    const int64_t wall = vtime_now_ms(), mono = vtime_boot_ms(); /* a suspend is no step */
    const int64_t now = vtime_steady_now(&s->w.ret.clock, wall, mono, &event);
    char a[32], b[32];
    if (event == VTIME_STEADY_HELD)
        log_warn("storage: the wall clock (%s) leapt %lld s ahead of the time elapsed (%s); "
                 "retention's horizon and its refusal of old writes follow the elapsed time "
                 "until the clock has stayed ahead for an hour (a clock set ahead by mistake "
                 "deletes nothing meanwhile)",
                 vtime_format(wall, a, sizeof a), (long long)((wall - now) / 1000),
                 vtime_format(now, b, sizeof b));
    else if (event == VTIME_STEADY_TAKEN)
        log_warn("storage: the wall clock (%s) has stayed ahead for an hour; retention's "
                 "horizon follows it again",
                 vtime_format(wall, a, sizeof a));
    return now;
}

void store__test_retain_clock(store_t *s, int64_t wall_ms)
{
    __atomic_store_n(&s->w.ret.test_wall_ms, wall_ms, __ATOMIC_RELEASE);
}

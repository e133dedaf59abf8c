/* storage/query.c: everything that reads: time-range queries and device reports, in the read
 * transactions of reader.c's pool (reader_int.h).
 *
 * Invariants: a reader connection belongs to at most one thread at a time (taken from the free
 * list under rmu); each operation reads in one read transaction so the device row, its channels
 * and its readings come from the same snapshot, whatever the writer commits meanwhile (WAL); a
 * query takes the device's pending readings (pending.c) from memory only when they were
 * published by the commit its snapshot shows, else it retries with a new snapshot. No read
 * holds a reader connection while it waits for the writer (a maps reload, a commit's
 * publication: store__pend_wait, store__pend_sync): it ends its transaction and puts the
 * connection back first, and takes one again, with a new snapshot, after the wait, so the pool
 * is busy only with reading and callbacks and a read that needs no wait never queues behind
 * one that waits. A device list that waits part-way resumes after the last device it reported
 * (device_list): each device from one snapshot, not the whole walk.
 *
 * Threads: any thread. Callbacks run on the calling thread while it holds a reader connection
 * and no store lock; a slow callback only keeps that one connection (and the WAL) busy. */
#include "storage_int.h"
#include "pending_int.h"
#include "reader_int.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A device's channel names by idx (idx values are dense from 0). */
typedef struct chanlist {
    char **names;
    size_t n, cap;
} chanlist_t;

static void chans_clear(chanlist_t *cl)
{
    for (size_t i = 0; i < cl->n; i++)
        free(cl->names[i]);
    cl->n = 0;
}

static void chans_free(chanlist_t *cl)
{
    chans_clear(cl);
    free(cl->names);
    cl->names = NULL;
    cl->cap = 0;
}

static int chans_load(store_t *s, store_reader_t *r, int64_t dev, chanlist_t *cl)
{
    chans_clear(cl);
    sqlite3_bind_int64(r->chans, 1, dev);
    int rc, err = 0;
    while ((rc = sqlite3_step(r->chans)) == SQLITE_ROW) {
        if (sqlite3_column_int64(r->chans, 0) != (int64_t)cl->n) {
            store__set_errmsg(s, "channels of device %lld are not numbered densely",
                              (long long)dev);
            err = ERR_CORRUPT;
            break;
        }
        if (cl->n == cl->cap) {
            size_t cap = cl->cap ? cl->cap * 2 : 16;
            char **p = realloc(cl->names, cap * sizeof *p);
            if (p == NULL) {
                err = ERR_NOMEM;
                break;
            }
            cl->names = p;
            cl->cap = cap;
        }
        const char *t = (const char *)sqlite3_column_text(r->chans, 1);
        if ((cl->names[cl->n] = strdup(t ? t : "")) == NULL) {
            err = ERR_NOMEM;
            break;
        }
        cl->n++;
    }
    if (err == 0 && rc != SQLITE_DONE)
        err = store__read_fail(s, r, rc, "reading channels");
    sqlite3_reset(r->chans);
    return err;
}

/* Tries (with a new snapshot each time) to read a device's rows and its pending readings as of
 * the same commit; the writer publishes right after each COMMIT (inside it, store__wal_hook),
 * so a retry is rare and short. A snapshot ahead of the published generation waits for the
 * publication on the store's condition variable (store__pend_sync), woken by it rather than
 * polling, PEND_SYNC_MS in all for the call (a stalled writer: ERR_UNPUBLISHED); at most PEND_TRIES
 * snapshots bound the retries of a snapshot behind a writer that keeps publishing. While the
 * writer reloads its maps (the pending readings and counters withdrawn) a query or a device
 * report waits instead (store__pend_wait), at most STORE_PEND_WAIT_MS, and gives up at once if
 * the reload fails or has failed and is not being retried yet. Every such wait is made with the
 * reader connection back in the pool (the head comment). A caller's deadline (an InfluxQL
 * query's http.query_timeout: store_query_t.deadline_us, store_device_get_until) ends either
 * wait sooner, so that the query answers its timeout on time, not a second late; it bounds the
 * wait for a reader connection too, before the first read and after each wait (reader_take). */
#define PEND_TRIES   2000
#define PEND_SYNC_MS 1000

/* The message of a read that gave up on the withdrawn counters (what, of device dev). */
static void unavailable(store_t *s, const store_pwait_t *pw, const char *what, int64_t dev)
{
    store__set_errmsg(s, "%s of device %lld unavailable (%s)", what, (long long)dev,
                      pw->failed ? "the store's reload of them failed; it tries again"
                                 : "the store reloads them");
}

/* What report_device answers for a device whose counters a maps reload withdrew: the caller
 * ends its read, puts its reader connection back and waits for them (counters_wait), then reads
 * the device again in a new snapshot. */
#define WITHDRAWN 1

/* Reports the device at the current row of st (columns as in the dev_* statements). pw: the
 * call's wait for the published counters (one for all its devices); NULL: the counters are not
 * read (points, first_ts_ms and last_ts_ms -1), and it never answers WITHDRAWN. Returns 0 (cb
 * called; *stop set from its answer), WITHDRAWN (cb not called) or a failure. */
static int report_device(store_t *s, store_reader_t *r, sqlite3_stmt *st, chanlist_t *cl,
                         store_device_cb cb, void *arg, int *stop, store_pwait_t *pw)
{
    int64_t dev = sqlite3_column_int64(st, 0);
    store_device_info_t info;
    /* The devices row counts the rows; the writer's published counters add the pending
     * readings (pending.c). They are committed, and behind this snapshot by at most a
     * transaction between its COMMIT and its publication, none of whose writes is acknowledged
     * yet. While the writer reloads its maps they are withdrawn: the devices row's would miss
     * the pending readings (0 points for a device that has only those), so the report waits,
     * as a query does, holding no reader connection (the caller's counters_wait); it then reads
     * the device again, and the counters are as of the reload, that snapshot or a later
     * commit. */
    info.first_ts_ms = info.last_ts_ms = info.points = -1;
    int found = 1; /* not read (pw NULL): the -1s */
    if (pw != NULL && (found = store__pend_stats(s, dev, &info.first_ts_ms, &info.last_ts_ms,
                                                 &info.points, pw)) < 0)
        return WITHDRAWN;
    int err = chans_load(s, r, dev, cl);
    if (err)
        return err;
    info.id = (const char *)sqlite3_column_text(st, 1);
    info.attrs_json = (const char *)sqlite3_column_text(st, 2);
    if (info.attrs_json == NULL)
        info.attrs_json = "{}";
    info.created_ms = sqlite3_column_int64(st, 3);
    if (found == 0) {
        int nodata = sqlite3_column_type(st, 4) == SQLITE_NULL;
        info.first_ts_ms = nodata ? -1 : sqlite3_column_int64(st, 4);
        info.last_ts_ms = nodata ? -1 : sqlite3_column_int64(st, 5);
        info.points = sqlite3_column_int64(st, 6);
    }
    info.nchannels = cl->n;
    info.channels = (const char *const *)cl->names;
    *stop = cb(arg, &info) != 0;
    return 0;
}

/* Waits for the counters report_device found withdrawn (device dev), with the call's read
 * ended and its reader connection back in the pool. Returns 0 (read again, in a new snapshot)
 * or ERR_AGAIN (the reload failed, or the wait's bound or the caller's deadline passed) with
 * the message set. */
static int counters_wait(store_t *s, store_pwait_t *pw, int64_t dev)
{
    if (store__pend_wait(s, pw) == 0)
        return 0;
    unavailable(s, pw, "counters", dev);
    return ERR_AGAIN; /* transient: the client is told to retry (api__backend_error) */
}

/* store_device_get (counts 1) and store_device_find (counts 0). */
static int device_get(store_t *s, const char *device, int counts, int64_t deadline_us,
                      store_device_cb cb, void *arg)
{
    if (device == NULL)
        return ERR_NOTFOUND;
    chanlist_t cl = {0};
    store_pwait_t pw = {.deadline_us = deadline_us};
    int err, stop = 0;
    for (;;) {
        store_reader_t *r;
        if ((err = store__reader_take(s, deadline_us, &r)) != 0)
            break;
        int64_t dev = 0;
        err = store__read_begin(s, r);
        if (err == 0) {
            sqlite3_bind_text(r->dev_by_name, 1, device, -1, SQLITE_STATIC);
            int rc = sqlite3_step(r->dev_by_name);
            if (rc == SQLITE_ROW) {
                dev = sqlite3_column_int64(r->dev_by_name, 0);
                err = report_device(s, r, r->dev_by_name, &cl, cb, arg, &stop, counts ? &pw : NULL);
            } else {
                err =
                    rc == SQLITE_DONE ? ERR_NOTFOUND : store__read_fail(s, r, rc, "reading device");
            }
            sqlite3_reset(r->dev_by_name);
            sqlite3_clear_bindings(r->dev_by_name);
        }
        store__read_end(s, r);
        /* WITHDRAWN: nothing reported yet; after the wait the device is read again (it may
         * be gone by then: ERR_NOTFOUND, as a later call would answer). */
        if (err != WITHDRAWN || (err = counters_wait(s, &pw, dev)) != 0)
            break;
    }
    chans_free(&cl);
    return err;
}

int store_device_get(store_t *s, const char *device, store_device_cb cb, void *arg)
{
    return device_get(s, device, 1, 0, cb, arg);
}

int store_device_get_until(store_t *s, const char *device, int64_t deadline_us, store_device_cb cb,
                           void *arg)
{
    return device_get(s, device, 1, deadline_us, cb, arg);
}

int store_device_find(store_t *s, const char *device, store_device_cb cb, void *arg)
{
    return device_get(s, device, 0, 0, cb, arg);
}

/* Copies name into *buf (grown; *cap its size). 0 or ERR_NOMEM (also for a NULL name: SQLite's
 * answer for a NOT NULL column when it is out of memory). */
static int name_keep(char **buf, size_t *cap, const char *name)
{
    if (name == NULL)
        return ERR_NOMEM;
    size_t len = strlen(name) + 1;
    if (store__grow((void **)buf, cap, len, 1))
        return ERR_NOMEM;
    memcpy(*buf, name, len);
    return 0;
}

/* store_device_list (counts 1) and store_device_each (counts 0).
 *
 * A walk that meets withdrawn counters (a maps reload, counts 1 only) cannot wait where it is
 * without keeping its reader connection, nor start again (its callback has seen the devices
 * before), so it resumes: it ends its read, puts the connection back, waits (counters_wait),
 * and walks on in a new snapshot from after the last device it reported, as the next page of a
 * list would. The devices are by name, so each is reported at most once and in order, every
 * device present throughout the call is reported, and each device's row, channels and counters
 * still come from one snapshot; only the walk as a whole is no longer one snapshot: a device
 * created or deleted during the wait is listed or not as the later snapshot says. The limit
 * counts the devices reported across the resumptions. */
static int device_list(store_t *s, const char *after, size_t limit, int counts, int64_t deadline_us,
                       store_device_cb cb, void *arg)
{
    chanlist_t cl = {0};
    store_pwait_t pw = {.deadline_us = deadline_us};
    char *last = NULL; /* the last device reported (counts 1: where a resumed walk goes on) */
    size_t last_cap = 0;
    const char *from = after;
    size_t n = 0;
    int err, stop = 0;
    for (;;) {
        store_reader_t *r;
        if ((err = store__reader_take(s, deadline_us, &r)) != 0)
            break;
        sqlite3_stmt *st = r->dev_all;
        int64_t dev = 0;
        err = store__read_begin(s, r);
        if (err == 0 && from != NULL) {
            /* A cursor, not a lookup: the device named may have been deleted since the last
             * page (or during this call's wait). */
            st = r->dev_after;
            sqlite3_bind_text(st, 1, from, -1, SQLITE_TRANSIENT); /* last changes as it walks */
        }
        while (err == 0 && !stop && (limit == 0 || n < limit)) {
            int rc = sqlite3_step(st);
            if (rc != SQLITE_ROW) {
                if (rc != SQLITE_DONE)
                    err = store__read_fail(s, r, rc, "listing devices");
                break;
            }
            dev = sqlite3_column_int64(st, 0);
            err = report_device(s, r, st, &cl, cb, arg, &stop, counts ? &pw : NULL);
            if (err == 0) {
                n++;
                if (counts)
                    err = name_keep(&last, &last_cap, (const char *)sqlite3_column_text(st, 1));
            }
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        store__read_end(s, r);
        if (err != WITHDRAWN || (err = counters_wait(s, &pw, dev)) != 0)
            break;
        if (last != NULL)
            from = last;
    }
    free(last);
    chans_free(&cl);
    return err == ERR_NOMEM || err == ERR_NOTFOUND || err == ERR_AGAIN || err == 0 ? err : ERR_IO;
}

int store_device_list(store_t *s, const char *after, size_t limit, store_device_cb cb, void *arg)
{
    return device_list(s, after, limit, 1, 0, cb, arg);
}

int store_device_list_until(store_t *s, const char *after, size_t limit, int64_t deadline_us,
                            store_device_cb cb, void *arg)
{
    return device_list(s, after, limit, 1, deadline_us, cb, arg);
}

int store_device_each(store_t *s, store_device_cb cb, void *arg)
{
    return device_list(s, NULL, 0, 0, 0, cb, arg);
}

/* What a scan reports through: the query, the selection and the callback. */
typedef struct scan_ctx {
    const store_query_t *q;
    const chanlist_t *cl;
    const unsigned char *sel;
    store_point_cb cb;
    void *arg;
    const char **names;
    double *vals;
    size_t emitted;
    int stop;
} scan_ctx_t;

/* Reports the points of nc cells (sorted by (ts, idx)) that lie in [from, to) and hold a selected
 * channel, forwards or (desc) backwards, until the callback or the limit stops the scan. */
static void emit_cells(scan_ctx_t *x, const store_cell_t *c, size_t nc)
{
    const store_query_t *q = x->q;
    size_t i = q->desc ? nc : 0;
    while (!x->stop && (q->desc ? i > 0 : i < nc)) {
        size_t a, e;
        if (q->desc) {
            e = i;
            a = e - 1;
            while (a > 0 && c[a - 1].ts == c[e - 1].ts)
                a--;
            i = a;
        } else {
            a = i;
            e = a + 1;
            while (e < nc && c[e].ts == c[a].ts)
                e++;
            i = e;
        }
        int64_t ts = c[a].ts;
        if (ts < q->from_ms || ts >= q->to_ms)
            continue;
        size_t k = 0;
        for (size_t j = a; j < e; j++) {
            if ((uint64_t)c[j].idx < x->cl->n && x->sel[c[j].idx]) {
                x->names[k] = x->cl->names[c[j].idx];
                x->vals[k++] = c[j].v;
            }
        }
        if (k == 0)
            continue;
        x->emitted++;
        if (x->cb(x->arg, ts, k, x->names, x->vals) != 0 ||
            (q->limit != 0 && x->emitted >= q->limit))
            x->stop = 1;
    }
}

/* Runs the range scan of a query whose device and channel selection are resolved. sel[idx] is
 * nonzero for a selected channel; the device's pending readings (pending.c), plen bytes coded
 * from pbase, are in r->pbuf. A device's rows do not overlap and its pending points are later
 * than all of them (chunks.c, pending.c), so the rows in t0 order, then the pending points, give
 * the points in ts order; each row is decoded for the selected channels only (the others'
 * bytes are skipped) and its points in [from, to) reported, backwards for a descending query. */
static int scan(store_t *s, store_reader_t *r, const store_query_t *q, int64_t dev,
                const chanlist_t *cl, const unsigned char *sel, size_t plen, int64_t pbase,
                store_point_cb cb, void *arg)
{
    scan_ctx_t x = {q, cl, sel, cb, arg, NULL, NULL, 0, 0};
    x.names = malloc((cl->n ? cl->n : 1) * sizeof *x.names);
    x.vals = malloc((cl->n ? cl->n : 1) * sizeof *x.vals);
    size_t npc = 0;
    int err = 0;
    if (x.names == NULL || x.vals == NULL) {
        err = ERR_NOMEM;
    } else if (plen > 0) {
        size_t np;
        int64_t last;
        err =
            store__pend_decode(r->pbuf, plen, pbase, &r->pcells, &r->pcells_cap, &npc, &np, &last);
        if (err == ERR_CORRUPT)
            store__set_errmsg(s, "malformed pending readings (device %lld)", (long long)dev);
    }
    if (err) {
        free(x.names);
        free(x.vals);
        return err;
    }
    if (q->desc)
        emit_cells(&x, r->pcells, npc);
    sqlite3_stmt *st = q->desc ? r->range_desc : r->range_asc;
    int64_t lo =
        q->from_ms < INT64_MIN + STORE_CHUNK_SPAN_MS ? INT64_MIN : q->from_ms - STORE_CHUNK_SPAN_MS;
    sqlite3_bind_int64(st, 1, dev);
    sqlite3_bind_int64(st, 2, lo);
    sqlite3_bind_int64(st, 3, q->to_ms);
    sqlite3_bind_int64(st, 4, q->from_ms);
    int rc = SQLITE_DONE;
    while (!x.stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const store_cell_t *c;
        size_t nc, np;
        int64_t t0 = sqlite3_column_int64(st, 0);
        err = store__chunk_decode(&r->codec, t0, sqlite3_column_blob(st, 1),
                                  (size_t)sqlite3_column_bytes(st, 1), sel, cl->n, &c, &nc, &np);
        if (err == ERR_CORRUPT) {
            store__chunk_damaged(s, q->device, t0, sqlite3_column_int64(st, 2));
            if (q->skip_damaged) {
                err = 0;
                continue;
            }
        }
        if (err)
            break;
        emit_cells(&x, c, nc);
    }
    if (err == 0 && !x.stop && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = store__read_fail(s, r, rc, "reading readings");
    if (err == 0 && !q->desc)
        emit_cells(&x, r->pcells, npc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    free(x.names);
    free(x.vals);
    return err;
}

/* Reads the snapshot's pending generation (the newest log row's seq; pending.c). */
static int log_gen(store_t *s, store_reader_t *r, int64_t *gen)
{
    int rc = sqlite3_step(r->log_gen), err = 0;
    if (rc == SQLITE_ROW)
        *gen = sqlite3_column_int64(r->log_gen, 0);
    else
        err = store__read_fail(s, r, rc, "reading the readings log");
    sqlite3_reset(r->log_gen);
    return err;
}

/* Marks in sel (NULL: nothing marked) the channels of cl that q names, every one if q names
 * none. Returns 0, or ERR_INVAL when q names a channel cl lacks. */
static int chans_select(const store_query_t *q, const chanlist_t *cl, unsigned char *sel)
{
    if (q->channels == NULL || q->nchannels == 0) {
        if (sel != NULL)
            memset(sel, 1, cl->n);
        return 0;
    }
    /* Requests name a few channels of a device with a handful: a linear match suffices. */
    for (size_t i = 0; i < q->nchannels; i++) {
        size_t k = 0;
        while (k < cl->n && (q->channels[i] == NULL || strcmp(cl->names[k], q->channels[i])))
            k++;
        if (k == cl->n)
            return ERR_INVAL;
        if (sel != NULL)
            sel[k] = 1;
    }
    return 0;
}

int store_query(store_t *s, const store_query_t *q, store_point_cb cb, void *arg)
{
    if (q == NULL || q->device == NULL)
        return ERR_INVAL;
    store_reader_t *r = NULL; /* NULL while the query waits for the writer */
    chanlist_t cl = {0};
    unsigned char *sel = NULL;
    int64_t dev = 0, gen = 0, pbase = 0;
    size_t plen = 0;
    store_pwait_t pw = {.deadline_us = q->deadline_us};
    struct timespec sync_dl; /* the deadline of the waits for publications (sync_started) */
    int sync_started = 0;
    int err = 0;
    for (int tries = 0;; tries++) {
        if (r == NULL && (err = store__reader_take(s, q->deadline_us, &r)) != 0)
            break;
        err = store__read_begin(s, r);
        if (err == 0)
            err = log_gen(s, r, &gen);
        if (err == 0)
            err = store__device_id(s, r, q->device, &dev);
        if (err == 0 && (err = store__pend_copy(s, r, dev, gen, &pw, &plen, &pbase)) > 0) {
            int withdrawn = err == 2; /* a maps reload, not a commit not yet published */
            /* A channel the device lacks is answered now, not after the wait (up to a second
             * while the writer reloads its maps): this snapshot's channels decide. */
            if (tries == 0 && q->channels != NULL && q->nchannels > 0 &&
                ((err = chans_load(s, r, dev, &cl)) != 0 || (err = chans_select(q, &cl, NULL))))
                break;
            err = 1;
            /* The wait holds no reader connection (a read that needs no wait must not queue
             * behind it for the pool): the snapshot was to be dropped anyway, and the retry
             * takes a connection, and a new snapshot, again. */
            store__read_end(s, r);
            r = NULL;
            if (!withdrawn && !sync_started) {
                int64_t ms = __atomic_load_n(&s->psync_ms, __ATOMIC_ACQUIRE);
                store__wait_deadline(&sync_dl, ms > 0 ? ms : PEND_SYNC_MS, q->deadline_us);
                sync_started = 1;
            }
            if (withdrawn ? store__pend_wait(s, &pw) == 0
                          : tries + 1 < PEND_TRIES && store__pend_sync(s, gen, &sync_dl) == 0)
                continue;
            if (withdrawn)
                unavailable(s, &pw, "pending readings", dev);
            else
                store__set_errmsg(s,
                                  "pending readings of device %lld unavailable (the store's"
                                  " last commit not published yet)",
                                  (long long)dev);
            /* Transient either way; told apart so the client is told which (api/request.c). */
            err = withdrawn ? ERR_AGAIN : ERR_UNPUBLISHED;
        }
        break;
    }
    if (err == 0)
        err = chans_load(s, r, dev, &cl);
    if (err == 0 && (sel = calloc(cl.n ? cl.n : 1, 1)) == NULL)
        err = ERR_NOMEM;
    if (err == 0)
        err = chans_select(q, &cl, sel);
    if (err == 0)
        err = scan(s, r, q, dev, &cl, sel, plen, pbase, cb, arg);
    if (r != NULL)
        store__read_end(s, r);
    free(sel);
    chans_free(&cl);
    /* A damaged row is told apart from a failed read (as a damaged prediction block is). */
    return err == ERR_CORRUPT ? err : store__read_status(err);
}

int store_models_list(store_t *s, const char *device, store_model_cb cb, void *arg)
{
    if (device == NULL)
        return ERR_NOTFOUND;
    store_reader_t *r = store__reader_get(s);
    sqlite3_stmt *st = r->models_list;
    int err = store__read_on_device(s, r, device, st);
    if (err == 0) {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            if (cb(arg, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                   store__json_col(st, 2), sqlite3_column_int(st, 3)) != 0)
                break;
        err = store__rows_end(s, r, st, rc, "listing models");
    }
    return store__read_done(s, r, err);
}

int store_models_list_all(store_t *s, store_models_all_cb cb, void *arg)
{
    store_reader_t *r = store__reader_get(s);
    int err = store__read_begin(s, r);
    if (err == 0) {
        /* Read once at start-up: a statement prepared for the call, not kept on every reader.
         * The models_version index gives the order, so no sort. */
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(r->db,
                                    "SELECT d.name, m.version, m.created_ms, m.info,"
                                    " m.ckpt_id IS NOT NULL FROM models m CROSS JOIN devices d"
                                    " ON d.id=m.device_id ORDER BY m.device_id, m.version",
                                    -1, &st, NULL);
        if (rc == SQLITE_OK)
            while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                if (cb(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                       sqlite3_column_int64(st, 2), store__json_col(st, 3),
                       sqlite3_column_int(st, 4)) != 0) {
                    rc = SQLITE_DONE;
                    break;
                }
        if (rc != SQLITE_DONE)
            err = store__read_fail(s, r, rc, "listing models");
        sqlite3_finalize(st);
    }
    return store__read_done(s, r, err);
}

int store_model_get(store_t *s, const char *device, int64_t version, store_model_data_cb cb,
                    void *arg)
{
    if (device == NULL)
        return ERR_NOTFOUND;
    store_reader_t *r = store__reader_get(s);
    sqlite3_stmt *st = version < 0 ? r->model_latest : r->model_get;
    int err = store__read_on_device(s, r, device, st);
    if (err == 0) {
        if (version >= 0)
            sqlite3_bind_int64(st, 2, version);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const void *ckpt = sqlite3_column_blob(st, 2);
            size_t len = (size_t)sqlite3_column_bytes(st, 2);
            cb(arg, sqlite3_column_int64(st, 0), store__json_col(st, 1), len ? ckpt : NULL, len);
        }
        err = rc == SQLITE_DONE ? ERR_NOTFOUND : 0;
        int err2 = store__rows_end(s, r, st, rc, "reading a model");
        err = err2 ? err2 : err;
    }
    return store__read_done(s, r, err);
}

int store_events_query(store_t *s, const char *device, int active_only, int64_t from_ms,
                       int64_t to_ms, size_t limit, store_event_cb cb, void *arg)
{
    return store_events_query_tie(s, device, active_only, from_ms, to_ms, NULL, 0, limit, cb, arg);
}

int store_events_query_tie(store_t *s, const char *device, int active_only, int64_t from_ms,
                           int64_t to_ms, const char *tie_dev, int64_t tie_id, size_t limit,
                           store_event_cb cb, void *arg)
{
    store_reader_t *r = store__reader_get(s);
    sqlite3_stmt *st = device != NULL ? (active_only ? r->ev_dev_active : r->ev_dev)
                                      : (active_only ? r->ev_all_active : r->ev_all);
    int err = store__read_begin(s, r);
    if (err == 0 && device != NULL) {
        int64_t dev = 0;
        err = store__device_id(s, r, device, &dev);
        sqlite3_bind_int64(st, 1, dev);
        sqlite3_bind_text(st, 5, device, -1, SQLITE_STATIC);
    }
    if (err == 0) {
        if (!active_only)
            sqlite3_bind_int64(st, 2, from_ms);
        sqlite3_bind_int64(st, 3, to_ms);
        if (tie_dev != NULL) { /* NULL, unbound: no event at to_ms itself */
            sqlite3_bind_text(st, 6, tie_dev, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 7, tie_id);
        }
        sqlite3_bind_int64(st, 4, limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t end =
                sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 3);
            if (cb(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                   sqlite3_column_int64(st, 2), end, store__json_col(st, 4)) != 0)
                break;
        }
        err = store__rows_end(s, r, st, rc, "reading events");
    } else {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    return store__read_done(s, r, err);
}

int store_events_max_ids(store_t *s, store_event_max_cb cb, void *arg)
{
    store_reader_t *r = store__reader_get(s);
    int err = store__read_begin(s, r);
    if (err == 0) {
        /* Read once at start-up: a statement prepared for the call, as store_models_list_all. */
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(r->db,
                                    "SELECT d.name, e.m FROM (SELECT device_id, MAX(id) AS m"
                                    " FROM events GROUP BY device_id) e CROSS JOIN devices d"
                                    " ON d.id=e.device_id",
                                    -1, &st, NULL);
        if (rc == SQLITE_OK)
            while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                if (cb(arg, (const char *)sqlite3_column_text(st, 0),
                       sqlite3_column_int64(st, 1)) != 0) {
                    rc = SQLITE_DONE;
                    break;
                }
        if (rc != SQLITE_DONE)
            err = store__read_fail(s, r, rc, "reading the highest event ids");
        sqlite3_finalize(st);
    }
    return store__read_done(s, r, err);
}

int store_maint_load(store_t *s, store_maint_cb cb, void *arg)
{
    store_reader_t *r = store__reader_get(s);
    sqlite3_stmt *st = r->maint_all;
    int err = store__read_begin(s, r);
    if (err == 0) {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            if (cb(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                   sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 3)) != 0)
                break;
        err = store__rows_end(s, r, st, rc, "reading maintenance periods");
    }
    return store__read_done(s, r, err);
}

int store_detectors_load(store_t *s, store_detector_cb cb, void *arg)
{
    store_reader_t *r = store__reader_get(s);
    sqlite3_stmt *st = r->det_all, *ck = r->ckpt_get;
    int err = store__read_begin(s, r);
    if (err == 0) {
        /* The current checkpoint's row stays stepped (its bytes valid) while the detectors
         * that share it are reported. */
        int64_t cur = 0;
        const void *ckpt = NULL;
        size_t clen = 0;
        int rc, crc = SQLITE_DONE;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t id =
                sqlite3_column_type(st, 3) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 3);
            if (id != cur) {
                sqlite3_reset(ck);
                ckpt = NULL;
                clen = 0;
                cur = id;
                sqlite3_bind_int64(ck, 1, id);
                if ((crc = sqlite3_step(ck)) == SQLITE_ROW) {
                    ckpt = sqlite3_column_blob(ck, 0);
                    clen = (size_t)sqlite3_column_bytes(ck, 0);
                } else {
                    break; /* a dangling reference: corrupt (store__rows_end reports it) */
                }
            }
            const void *blob = sqlite3_column_blob(st, 2);
            size_t len = (size_t)sqlite3_column_bytes(st, 2);
            if (cb(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                   sqlite3_column_int64(st, 4), len ? blob : NULL, len, id, clen ? ckpt : NULL,
                   clen) != 0)
                break;
        }
        sqlite3_reset(ck);
        sqlite3_clear_bindings(ck);
        if (rc == SQLITE_ROW && crc != SQLITE_ROW && cur != 0) {
            /* Missing (the triggers never leave a reference dangling) or unreadable. */
            err = crc == SQLITE_DONE ? ERR_CORRUPT
                                     : store__read_fail(s, r, crc, "loading a checkpoint");
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
        } else {
            err = store__rows_end(s, r, st, rc, "loading detectors");
        }
    }
    return store__read_done(s, r, err);
}

/* ---- prediction blocks ---- */

int store_preds_read(store_t *s, const char *device, int64_t from_seq, int64_t to_seq,
                     store_pred_read_cb cb, void *arg)
{
    if (device == NULL)
        return ERR_NOTFOUND;
    store_reader_t *r = store__reader_get(s);
    sqlite3_stmt *st = r->preds_read;
    int err = store__read_on_device(s, r, device, st);
    if (err == 0) {
        sqlite3_bind_int64(st, 2, from_seq);
        sqlite3_bind_int64(st, 3, to_seq);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t seq = sqlite3_column_int64(st, 0), n = sqlite3_column_int64(st, 1);
            int64_t nch = sqlite3_column_int64(st, 2), sum = sqlite3_column_int64(st, 3);
            const void *blob = sqlite3_column_blob(st, 4);
            size_t len = (size_t)sqlite3_column_bytes(st, 4);
            if (blob == NULL || len == 0 || n < 1 || n > 65535 || nch < 1 || nch > 64 ||
                (uint32_t)sum != store__pred_sum(blob, len) || sum < 0 || sum > UINT32_MAX) {
                store__set_errmsg(s, "prediction block %lld of device \"%s\" is corrupt",
                                  (long long)seq, device);
                err = ERR_CORRUPT;
                break;
            }
            if (cb(arg, seq, (uint32_t)n, (int)nch, blob, len) != 0)
                break;
        }
        int e2 = store__rows_end(s, r, st, err ? SQLITE_DONE : rc, "reading prediction blocks");
        err = err ? err : e2;
    }
    store__read_end(s, r);
    return err == ERR_CORRUPT ? err : store__read_status(err);
}

int store_preds_list(store_t *s, store_pred_list_cb cb, void *arg)
{
    store_reader_t *r = store__reader_get(s);
    sqlite3_stmt *st = r->preds_all;
    int err = store__read_begin(s, r);
    if (err == 0) {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t n = sqlite3_column_int64(st, 2), nch = sqlite3_column_int64(st, 3);
            if (n < 1 || n > 65535 || nch < 1 || nch > 64)
                continue; /* unusable: store_preds_read would refuse it; the next put trims it */
            if (cb(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                   (uint32_t)n, (int)nch, sqlite3_column_int64(st, 4)) != 0)
                break;
        }
        err = store__rows_end(s, r, st, rc, "listing prediction blocks");
    }
    return store__read_done(s, r, err);
}

int store_preds_size(store_t *s, const char *device, int64_t *blocks, int64_t *bytes)
{
    *blocks = *bytes = 0;
    if (device == NULL)
        return ERR_NOTFOUND;
    store_reader_t *r = store__reader_get(s);
    sqlite3_stmt *st = r->preds_bytes;
    int err = store__read_on_device(s, r, device, st);
    if (err == 0) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *blocks = sqlite3_column_int64(st, 0);
            *bytes = sqlite3_column_int64(st, 1);
        }
        err = store__rows_end(s, r, st, rc, "sizing prediction blocks");
    }
    return store__read_done(s, r, err);
}

/* ---- database names (dbnames.c writes them) ---- */

int store_dbnames_load(store_t *s, size_t max, store_dbname_cb cb, void *arg)
{
    store_reader_t *r = store__reader_get(s);
    int err = store__read_begin(s, r);
    if (err == 0) {
        /* Read once at start-up: a statement prepared for the call, not kept on every reader. */
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(r->db, "SELECT name FROM dbnames ORDER BY seq LIMIT ?1", -1,
                                    &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, max == 0 || max > INT64_MAX ? -1 : (int64_t)max);
            while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                if (cb(arg, (const char *)sqlite3_column_text(st, 0)) != 0) {
                    rc = SQLITE_DONE;
                    break;
                }
        }
        if (rc != SQLITE_DONE)
            err = store__read_fail(s, r, rc, "reading database names");
        sqlite3_finalize(st);
    }
    store__read_end(s, r);
    return err == 0 || err == ERR_NOMEM ? err : ERR_IO;
}

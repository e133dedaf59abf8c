/* storage/writer.c: the writer thread. It takes everything queued, writes it in one transaction
 * (group commit), and reports every job's fate after COMMIT returns.
 *
 * Invariants: only this thread writes the database. Between transactions the maps (maps.c:
 * device name -> id, stats, channel name -> idx) equal the tables; a transaction adds to them as
 * it inserts, and a failed transaction marks them stale so they are reloaded from the database
 * before the next one. A batch's readings are grouped by device and written by chunks.c (many
 * timestamps per row; devices.points counts distinct timestamps exactly). When the queue is
 * empty, the writer compacts devices' small rows in transactions of their own. In a client
 * transaction the maintenance steps (compaction, retention) run in a savepoint: one that fails
 * is rolled back alone, the client's writes commit, and the maps are reloaded after (maint.c).
 * An asynchronous put (model, event, detector) never fails its transaction for its own input: an
 * unknown device or a non-object info makes it a no-op, so other clients' readings are not
 * rolled back for it (ops.c writes them).
 *
 * A point's device name is hashed once (write_batch): the same key finds it in w->didx and, for
 * a new device, adds it there and to w->devs (maps.c).
 *
 * Threads: store__writer_main is the writer thread; it holds qmu only to take work, to account
 * for it and to see whether the queue is empty, never while it runs SQL, the commit hook or a
 * callback. */
#include "storage_int.h"
#include "compact_int.h"
#include "pending_int.h"
#include "err.h"
#include "log.h"
#include "mcond.h"
#include "vtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const double commit_bounds[] = STORE_COMMIT_BUCKETS;

/* Runs a statement that returns no rows and resets it. Returns 0 or a status. */
static int step_done(store_t *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    int err = store__status(s->w.db, rc);
    /* The SQL names the statement; a long one (a multi-row insert) is cut so the reason fits.
     * A failure the connection did not record (a step failed without running, as
     * tests/fault/failmaint.c's) would read "not an error": then the code's own words. */
    const char *sql = sqlite3_sql(st);
    int recorded = (sqlite3_errcode(s->w.db) & 0xff) == (rc & 0xff);
    store__set_errmsg(s, "%.96s%s: %s", sql, strlen(sql) > 96 ? "..." : "",
                      recorded ? sqlite3_errmsg(s->w.db) : sqlite3_errstr(rc));
    return err ? err : ERR_IO;
}

static int touch(store_writer_t *w, store_dev_t *d)
{
    if (d->touched)
        return 0;
    if (w->ntouched == w->touched_cap) {
        size_t cap = w->touched_cap ? w->touched_cap * 2 : 64;
        store_dev_t **t = realloc(w->touched, cap * sizeof *t);
        if (t == NULL)
            return ERR_NOMEM;
        w->touched = t;
        w->touched_cap = cap;
    }
    w->touched[w->ntouched++] = d;
    d->touched = 1;
    return 0;
}

/* Inserts a new device row and map entry; k is its name's key in w->didx. attrs NULL: "{}".
 * Its id is new while the store is open, and its log_seq is the last committed log row
 * (pending.c relies on both). */
static int dev_create(store_t *s, const char *name, size_t len, nameidx_key_t k, const char *attrs,
                      store_dev_t **out)
{
    store_writer_t *w = &s->w;
    if (store__grow((void **)&w->created, &w->created_cap, w->ncreated + 1, sizeof *w->created))
        return ERR_NOMEM;
    sqlite3_bind_text(w->dev_ins, 1, name, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(w->dev_ins, 2, vtime_now_ms());
    sqlite3_bind_text(w->dev_ins, 3, attrs ? attrs : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(w->dev_ins, 4, w->next_id);
    sqlite3_bind_int64(w->dev_ins, 5, (int64_t)w->log_last);
    int err = step_done(s, w->dev_ins);
    if (err)
        return err;
    *out = store__dev_add(w, w->next_id++, name, len, k);
    if (*out == NULL)
        return ERR_NOMEM;
    (*out)->log_seq = w->log_last;
    w->created[w->ncreated++] = *out;
    return 0;
}

/* The idx of a device's channel, added (row and map) when new; *out is its map entry. */
static int chan_idx(store_t *s, store_dev_t *d, const char *name, size_t len, int64_t *idx,
                    store_chan_t **out)
{
    store_chan_t *c = NULL;
    unsigned hv = store__name_hash(&s->w, name, len);
    HASH_FIND_BYHASHVALUE(hh, d->chans, name, (unsigned)len, hv, c);
    if (c != NULL) {
        *idx = c->idx;
        *out = c;
        return 0;
    }
    store_writer_t *w = &s->w;
    int64_t n = d->nchans;
    sqlite3_bind_int64(w->chan_ins, 1, d->id);
    sqlite3_bind_int64(w->chan_ins, 2, n);
    sqlite3_bind_text(w->chan_ins, 3, name, (int)len, SQLITE_STATIC);
    int err = step_done(s, w->chan_ins);
    if (err == 0)
        err = store__chan_add(d, n, name, len, hv, out);
    *idx = n;
    return err;
}

static int grow(void **p, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * sz);
    if (q == NULL)
        return ERR_NOMEM;
    *p = q;
    *cap = n;
    return 0;
}

/* The helpers above, for chunks.c. */
int store__step_done(store_t *s, sqlite3_stmt *st)
{
    return step_done(s, st);
}

int store__grow(void **p, size_t *cap, size_t need, size_t sz)
{
    return grow(p, cap, need, sz);
}

int store__touch(store_writer_t *w, store_dev_t *d)
{
    return touch(w, d);
}

/* Maps one point's fields to channel idx (adding new channels) into w->pairs, sorted by idx,
 * one per idx (a repeated channel keeps the later value); sets *npairs. */
int store__encode_point(store_t *s, store_dev_t *d, const batch_t *b, const batch_point_t *p,
                        size_t *npairs)
{
    store_writer_t *w = &s->w;
    if (grow((void **)&w->pairs, &w->pairs_cap, p->nfields, sizeof *w->pairs))
        return ERR_NOMEM;
    size_t n = 0;
    for (uint32_t i = 0; i < p->nfields; i++) {
        const batch_field_t *f = &b->fields[p->field0 + i];
        const char *name = batch_str(b, f->name);
        int64_t idx;
        /* A device's points mostly name the same channels in the same order: the channel of the
         * previous point's field at this position is tried before the hash. */
        struct store_chan_memo *m = i < STORE_CHAN_MEMO ? &d->memo[i] : NULL;
        if (m != NULL && m->c != NULL && m->len == f->name_len &&
            memcmp(m->len <= STORE_CHAN_MEMO_NAME ? m->name : m->c->name, name, m->len) == 0) {
            idx = m->idx;
        } else {
            store_chan_t *c;
            int err = chan_idx(s, d, name, f->name_len, &idx, &c);
            if (err)
                return err;
            if (m != NULL) {
                m->c = c;
                m->idx = c->idx;
                m->len = (uint32_t)c->len;
                if (c->len <= STORE_CHAN_MEMO_NAME)
                    memcpy(m->name, c->name, c->len);
            }
        }
        /* Insertion sort (stable; points carry a handful of fields); a repeated idx keeps the
         * later value. */
        size_t j = n;
        while (j > 0 && w->pairs[j - 1].idx > idx)
            j--;
        if (j > 0 && w->pairs[j - 1].idx == idx) {
            w->pairs[j - 1].v = f->value;
            continue;
        }
        if (j < n)
            memmove(&w->pairs[j + 1], &w->pairs[j], (n - j) * sizeof *w->pairs);
        w->pairs[j].idx = idx;
        w->pairs[j].v = f->value;
        n++;
    }
    *npairs = n;
    return 0;
}

/* How many points (pass 1) or devices (pass 3) ahead write_batch prefetches. The prefetches
 * are written out in write_batch itself: a static helper holding only prefetches counts as a
 * pure function to GCC, which then drops its calls. */
#define PREFETCH_AHEAD 8

static int ord_cmp(const void *a, const void *b)
{
    const struct store_ord *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Writes a batch's points grouped by device and, within a device, in ts order (ties keep the
 * batch order, so a later value of a (device, channel, ts) still overwrites an earlier one).
 * A device's points then go into its part of the B-tree one after another, several rows per
 * statement, instead of interleaved with every other device's. */
static int write_batch(store_t *s, const batch_t *b)
{
    store_writer_t *w = &s->w;
    if (b->npoints == 0)
        return 0;
    if (grow((void **)&w->ord, &w->ord_cap, 2 * b->npoints, sizeof *w->ord) ||
        grow((void **)&w->nhash, &w->nhash_cap, b->npoints, sizeof *w->nhash))
        return ERR_NOMEM;
    struct store_ord *ord = w->ord, *sorted = w->ord + b->npoints;
    size_t n = 0, ndevs = 0;
    int err = 0;
    store_dev_t *d = NULL;
    /* Pass 0: the key of each point's device name (its only hashing), and its index slot
     * prefetched. In a large fleet the slots and devices are cache misses; pass 1 then finds
     * them on their way. */
    for (size_t i = 0; i < b->npoints; i++) {
        const batch_point_t *p = &b->points[i];
        w->nhash[i] = store__devidx_key(&w->didx, batch_str(b, p->device), p->device_len);
        store__devidx_prefetch(&w->didx, w->nhash[i]);
    }
    /* Pass 1: each point's device (consecutive points usually share one), counted; the device
     * of a point PREFETCH_AHEAD ahead is prefetched (the fields this pass reads). */
    for (size_t i = 0; i < b->npoints && err == 0; i++) {
        const batch_point_t *p = &b->points[i];
        if (i + PREFETCH_AHEAD < b->npoints) {
            const store_dev_t *pd = store__devidx_peek(&w->didx, w->nhash[i + PREFETCH_AHEAD]);
            if (pd != NULL) {
                __builtin_prefetch(&pd->run0, 1);
                __builtin_prefetch(pd->name);
            }
        }
        if (p->nfields == 0)
            continue;
        const char *name = batch_str(b, p->device);
        if (d == NULL || d->len != p->device_len || memcmp(d->name, name, d->len) != 0) {
            d = store__devidx_find(&w->didx, w->nhash[i], name, p->device_len);
            err = d ? 0 : dev_create(s, name, p->device_len, w->nhash[i], NULL, &d);
            if (err == 0 && d->nrun == 0)
                err = grow((void **)&w->run_devs, &w->run_devs_cap, ndevs + 1, sizeof *w->run_devs);
            if (err)
                break;
            if (d->nrun == 0)
                w->run_devs[ndevs++] = d;
        }
        d->nrun++;
        ord[n].d = d;
        ord[n].ts = p->ts_ms;
        ord[n].i = i;
        n++;
    }
    /* Pass 2: a stable counting sort by device, in order of first appearance. */
    size_t off = 0;
    for (size_t k = 0; k < ndevs; k++) {
        w->run_devs[k]->run0 = off;
        off += w->run_devs[k]->nrun;
        w->run_devs[k]->nrun = 0;
    }
    if (err == 0)
        for (size_t j = 0; j < n; j++)
            sorted[ord[j].d->run0 + ord[j].d->nrun++] = ord[j];
    /* Pass 3: each device's points in ts order, written. Ahead of device k, the hot fields of
     * device k + 2 * PREFETCH_AHEAD are prefetched (a few cache lines: storage_int.h), and
     * what device k + PREFETCH_AHEAD (in cache by then) will read beyond itself: the end of its
     * pending buffer, where its readings will be appended. */
    for (size_t k = 0; k < ndevs; k++) {
        store_dev_t *dd = w->run_devs[k];
        if (err == 0 && k + 2 * PREFETCH_AHEAD < ndevs) {
            const char *pd = (const char *)w->run_devs[k + 2 * PREFETCH_AHEAD];
            for (size_t line = 0; line < STORE_DEV_HOT_END; line += 64)
                __builtin_prefetch(pd + line);
            __builtin_prefetch(pd + STORE_DEV_HOT_END - 1);
        }
        if (err == 0 && k + PREFETCH_AHEAD < ndevs) {
            const store_dev_t *pd = w->run_devs[k + PREFETCH_AHEAD];
            if (pd->pbuf != NULL)
                __builtin_prefetch(pd->pbuf + pd->plen, 1);
        }
        struct store_ord *r = sorted + dd->run0;
        size_t m = dd->nrun;
        dd->nrun = 0; /* the scratch is left clean for the next batch, also on failure */
        if (err)
            continue;
        size_t j = 1;
        while (j < m && r[j - 1].ts <= r[j].ts)
            j++;
        if (j < m)
            qsort(r, m, sizeof *r, ord_cmp);
        err = store__write_run(s, dd, b, r, m);
    }
    return err;
}

static int do_put(store_t *s, store_job_t *j)
{
    store_writer_t *w = &s->w;
    size_t len = strlen(j->device);
    nameidx_key_t k = store__devidx_key(&w->didx, j->device, len);
    store_dev_t *d = store__devidx_find(&w->didx, k, j->device, len);
    if (d == NULL) {
        j->created = 1;
        return dev_create(s, j->device, len, k, j->text, &d);
    }
    j->created = 0;
    if (j->text == NULL)
        return 0;
    sqlite3_bind_int64(w->dev_attrs, 1, d->id);
    sqlite3_bind_text(w->dev_attrs, 2, j->text, -1, SQLITE_STATIC);
    return step_done(s, w->dev_attrs);
}

static int do_delete(store_t *s, store_job_t *j)
{
    store_writer_t *w = &s->w;
    size_t len = strlen(j->device);
    nameidx_key_t k = store__devidx_key(&w->didx, j->device, len);
    store_dev_t *d = store__devidx_find(&w->didx, k, j->device, len);
    if (d == NULL) {
        j->status = ERR_NOTFOUND;
        return 0;
    }
    sqlite3_stmt *del[] = {w->del_readings, w->del_chans, w->del_models, w->del_events, w->del_dets,
                           w->del_preds,    w->del_maint, w->del_arrs,   w->del_dev};
    for (size_t i = 0; i < sizeof del / sizeof del[0]; i++) {
        sqlite3_bind_int64(del[i], 1, d->id);
        int err = step_done(s, del[i]);
        if (err)
            return err;
    }
    for (size_t i = 0; i < w->ntouched; i++)
        if (w->touched[i] == d)
            w->touched[i] = NULL;
    for (size_t i = 0; i < w->ncompact; i++)
        if (w->compact[i] == d)
            w->compact[i] = NULL;
    store__compact_forget(w, d->id);
    store__compact_past_forget(w, d->id);
    /* Readers may still copy its published pending readings until the commit: it is freed at
     * publication (pending.c). */
    if (grow((void **)&w->dead, &w->dead_cap, w->ndead + 1, sizeof *w->dead))
        return ERR_NOMEM;
    store__pend_forget(w, d);
    store__retain_forget(w, d);
    store__devidx_del(&w->didx, k, d);
    HASH_DEL(w->devs, d);
    d->pdead = 1;
    w->dead[w->ndead++] = d;
    return 0;
}

static int run_job(store_t *s, store_job_t *j)
{
    switch (j->kind) {
    case JOB_BATCH:
        return write_batch(s, &j->batch);
    case JOB_PUT:
        return do_put(s, j);
    case JOB_DELETE:
        return do_delete(s, j);
    case JOB_MODEL:
    case JOB_EVENT:
    case JOB_MAINT:
    case JOB_MAINT_DEL:
    case JOB_DETECTOR:
    case JOB_PRED:
    case JOB_PRED_DROP:
        return store__op_write(s, j);
    case JOB_DBNAME:
        return store__dbname_write(s, j);
    case JOB_ARRIVALS:
        return store__arrivals_write(s, j);
    case JOB_FLUSH:
        return 0; /* its place in the queue is the point */
    case JOB_RETAIN:
        /* Once committed, it waits for the next sweep (store__retain_wait). */
        if (__atomic_load_n(&s->w.ret.retention_ms, __ATOMIC_ACQUIRE) <= 0)
            j->status = ERR_INVAL;
        return 0;
    case JOB_PFLUSH: {
        int err = 0;
        while (err == 0 && s->w.phead != NULL)
            err = store__pend_flush(s, s->w.phead);
        return err;
    }
    case JOB_EXEC: {
        char *e = NULL;
        if (sqlite3_exec(s->w.db, j->text, NULL, NULL, &e) != SQLITE_OK)
            j->status = ERR_IO;
        sqlite3_free(e);
        return 0;
    }
    }
    return ERR_IO;
}

/* Writes the changed devices' stats rows; one UPDATE per device per transaction. */
int store__flush_touched(store_t *s)
{
    store_writer_t *w = &s->w;
    for (size_t i = 0; i < w->ntouched; i++) {
        store_dev_t *d = w->touched[i];
        if (d == NULL)
            continue;
        /* The rows' counters: pending readings are all later than the rows, and replay adds
         * them at open (pending.c). */
        int64_t points = d->points - (int64_t)d->pnpts;
        sqlite3_bind_int64(w->dev_upd, 1, d->id);
        if (points > 0) { /* else first_ts and last_ts are NULL: no rows */
            sqlite3_bind_int64(w->dev_upd, 2, d->first_ts);
            sqlite3_bind_int64(w->dev_upd, 3, d->rlast);
        }
        sqlite3_bind_int64(w->dev_upd, 4, points);
        sqlite3_bind_int64(w->dev_upd, 5, (int64_t)d->log_seq);
        int err = step_done(s, w->dev_upd);
        if (err)
            return err;
    }
    return 0;
}

int store__wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    store_t *s = arg;
    if (s->w.publish_due) {
        s->w.publish_due = 0;
        store__test_pause(&s->w.publish_hold, &s->w.publish_held); /* test hook */
        store__pend_publish(s);
    }
    if (frames >= STORE_CHECKPOINT_PAGES)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

void store__touched_clear(store_writer_t *w)
{
    for (size_t i = 0; i < w->ntouched; i++)
        if (w->touched[i] != NULL)
            w->touched[i]->touched = 0;
    w->ntouched = 0;
}

/* Runs every job in one transaction (idle: no jobs, compaction of the small rows of any device
 * in the compact list) with a bounded step of a due retention sweep. Returns 0 once COMMIT
 * succeeded, else the status of the failure (ERR_NOSPACE, ERR_IO, ERR_NOMEM) with everything
 * rolled back. With jobs, a failed maintenance step is rolled back alone and does not fail the
 * jobs unless SQLite rolled back everything or the COMMIT fails (above). */
static int run_transaction(store_t *s, store_job_t *jobs, int idle, double *seconds)
{
    store_writer_t *w = &s->w;
    w->tx_readings = w->tx_points = 0;
    w->tx_ops = w->tx_ops_skipped = 0;
    w->tx_arr_seconds = 0;
    w->tx_arr_rows = 0;
    int err = 0, maint_err = 0, undone = 0, maint_ran = 0;
    w->maint_what = MAINT_NONE;
    w->cfail_id = 0;
    w->tx_errmsg = NULL;
    store__retain_off(s); /* a busy writer may never wait (below) */
    if (w->maps_stale && (err = store__maps_reload(s)) != 0) {
        w->tx_errmsg = store_errmsg(s);
        if (idle)
            store__maint_failed(s, err, 0);
        return err;
    }
    store__compact_requeue(s); /* after a reload that failed before */
    w->nrequeue = 0;           /* this transaction notes the devices it compacts */
    store__compact_wake(s);    /* devices whose back-off passed, with small rows */
    uint64_t compactions = w->compactions;
    double t0 = vtime_mono_s();
    w->seq = w->log_last + 1;
    w->txn++;
    w->loglen = 0;
    w->pchanged = 0;
    err = step_done(s, w->begin);
    for (store_job_t *j = jobs; err == 0 && j != NULL; j = j->next)
        err = run_job(s, j);
    if (err == 0)
        err = store__pend_end_tx(s);
    /* Devices with many small rows are compacted now rather than when the writer is idle,
     * which a saturated writer never is; the batch's commit (and fsync) covers it. */
    if (err == 0 && idle) {
        maint_ran = 1;
        err = store__maint_steps(s, 1);
    } else if (err == 0 && store__maint_due(s)) {
        maint_ran = 1;
        err = store__maint_guarded(s, &maint_err, &undone);
    }
    if (err == 0)
        err = store__flush_touched(s);
    /* Publication right after the commit is visible, inside COMMIT (store__wal_hook), before a
     * checkpoint that may run there for a while: a query whose snapshot shows this commit waits
     * for it (query.c). After undone maintenance the maps are wrong: reloaded instead. */
    w->publish_due = err == 0 && !undone;
    if (err == 0)
        err = step_done(s, w->commit);
    if (err == 0 && w->publish_due)
        store__pend_publish(s); /* nothing was written: no hook */
    w->publish_due = 0;
    store__touched_clear(w);
    if (err == 0) {
        *seconds = vtime_mono_s() - t0;
        if (undone) {
            /* The maps as committed; on failure maps_stale stays set and the next transaction
             * loads them (readers wait for the pending readings meanwhile, pgen -1). */
            w->tx_errmsg = store_errmsg(s); /* the step's, for maint_failed's line */
            w->maps_stale = 1;
            store__maps_reload(s);
        }
        int stepped = w->ret.tx_step;
        int removed = stepped && (w->ret.tx_chunks || w->ret.tx_events || w->ret.tx_bounds);
        store__retain_end_tx(s, maint_err);
        if (maint_err) {
            store__compact_end_tx(w, 0);
            store__maint_failed(s, maint_err, undone ? 1 : 2);
            store__compact_requeue(s); /* after the charge: a device backing off stays out */
        } else if (maint_ran) {
            store__maint_succeeded(s, stepped, w->compactions != compactions, removed);
        } else if (store__compact_end_tx(w, 1)) {
            /* Every device backing off was forgotten (chunks.c): the run ends. */
            store__bo_log_ok(&w->bo_compact, "compaction (no device backing off any more)");
        }
        store__maint_committed(s);
        return 0;
    }
    if (!sqlite3_get_autocommit(w->db))
        step_done(s, w->rollback);
    /* The maps may hold devices and channels that were rolled back, and stats that were not
     * committed: rebuild them from the database before the next transaction. */
    w->tx_errmsg = store_errmsg(s);
    w->maps_stale = 1;
    store__maps_reload(s);
    store__retain_end_tx(s, err);
    store__compact_end_tx(w, 0);
    if (idle || maint_err)
        store__maint_failed(s, maint_err ? maint_err : err, 0);
    store__compact_requeue(s);
    return err;
}

/* A transaction's outcome into the stats. wrote: it held a job other than store_flush markers
 * (a commit of markers alone is counted, but says nothing of the disk: it neither ends a run of
 * failures nor is the last commit the health check names); dets: its detector saves; models: its
 * model versions. */
static void account(store_t *s, int err, int wrote, size_t dets, size_t models, double seconds,
                    size_t devices, size_t ops)
{
    pthread_mutex_lock(&s->smu);
    store_stats_t *st = &s->stats;
    if (err == 0) {
        st->commits++;
        if (wrote) {
            st->commit_fail_run = 0;
            st->commit_last_ms = vtime_mono_ms();
        }
        st->readings_written += s->w.tx_readings;
        st->points_written += s->w.tx_points;
        st->commit_seconds_sum += seconds;
        st->ops_written += s->w.tx_ops;
        st->ops_skipped += s->w.tx_ops_skipped;
        st->arrivals_write_seconds += s->w.tx_arr_seconds;
        st->arrivals_write_rows += s->w.tx_arr_rows;
        for (size_t i = 0; i < sizeof commit_bounds / sizeof commit_bounds[0]; i++)
            if (seconds <= commit_bounds[i])
                st->commit_buckets[i]++;
    } else {
        st->commit_errors++;
        st->commit_errors_locked += err == ERR_LOCKED;
        st->commit_errors_nospace += err == ERR_NOSPACE;
        st->commit_fail_run++;
        st->commit_last_err = err;
        st->commit_fail_ms = vtime_mono_ms();
        st->ops_failed += ops;
        st->detector_saves_failed += dets;
        st->model_puts_failed += models;
    }
    st->devices = devices;
    pthread_mutex_unlock(&s->smu);
}

/* Idle work (qmu held on entry and return): while nothing is queued, transactions of their own
 * compact the devices' small rows and run the steps of a due retention sweep. A device whose
 * compaction failed backs off alone (maint_failed) and the work goes on with the others (the
 * next retention step too). After a full disk (maint_nospace) compaction runs only here, so
 * while devices are queued one such transaction runs even with work queued, once the back-off
 * allows (a failure backs it off, a compaction that wrote ends maint_nospace, one that did not
 * empties the list): else a writer that never idles would never compact again. Returns 0, or the
 * status of a transaction that failed otherwise (logged; the work stops there, and idle retention
 * waits STORE_RETAIN_PERIOD_MS). */
static int idle_work(store_t *s, int failing)
{
    double seconds;
    for (;;) {
        int queued = s->qhead != NULL;
        store__compact_wake(s);
        store__wstate_publish(s);
        if ((queued && !(s->w.maint_nospace && s->w.ncompact > 0)) || s->closing || s->hold ||
            failing || !store__maint_due(s))
            return 0;
        pthread_mutex_unlock(&s->qmu);
        int err = run_transaction(s, NULL, 1, &seconds); /* a failure is logged there */
        pthread_mutex_lock(&s->qmu);
        store__wstate_publish(s);
        if (err && s->w.maint_what != MAINT_COMPACT)
            return err;
        if (queued)
            return 0; /* one transaction ahead of queued work */
    }
}

/* Waits (qmu held) until work is queued or closing begins. Meanwhile it wakes up when a
 * retention sweep is due, or a compaction back-off ends (store__maint_wake_ms), and runs the
 * idle work; after a failed idle transaction, none runs for STORE_RETAIN_PERIOD_MS unless work
 * arrives (a full disk is not retried in a loop). After a failed client transaction none runs
 * before retry_ms (monotonic; 0: none failed), and then as usual: the compaction and retention
 * left queued are not stranded until the next write. It also wakes to load again maps whose
 * reload failed (at w.reload_retry_ms, store__maps_reload). */
static void wait_for_work(store_t *s, int64_t retry_ms)
{
    int64_t backoff = 0;
    while ((s->qhead == NULL || s->hold) && !s->closing) {
        store__retain_off(s); /* woken by store_set_retention; waiters only take their lock */
        int64_t now = vtime_mono_ms();
        int failing = now < retry_ms;
        int64_t due = s->hold ? -1 : failing ? retry_ms : store__retain_due_ms(s);
        if (due >= 0 && due < backoff)
            due = backoff;
        /* Retention backs off after a failure of its own or of no one step. */
        if (!failing && due >= 0 && due < s->w.bo_retain.next_ms)
            due = s->w.bo_retain.next_ms;
        if (!failing && due >= 0 && due < s->w.bo_maint.next_ms)
            due = s->w.bo_maint.next_ms;
        /* A back-off's end may give compaction work: a device's (queued then if it has small
         * rows) or the general one's with devices queued. Each is seen once, so with nothing
         * to do the wait is untimed (or until retention's step). */
        int64_t wake = s->hold || failing ? -1 : store__maint_wake_ms(s);
        if (wake >= 0 && wake < backoff)
            wake = backoff;
        if (wake >= 0 && (due < 0 || wake < due))
            due = wake;
        /* Maps whose reload failed are loaded again here, not at the next write: until then
         * every device report waits for their counters and gives up (ERR_AGAIN). */
        int64_t reload = s->hold || !s->w.maps_stale ? -1 : s->w.reload_retry_ms;
        if (reload >= 0 && reload <= now) {
            pthread_mutex_unlock(&s->qmu);
            store__maps_reload(s);     /* a failure is logged there and sets the next try */
            store__compact_requeue(s); /* the list the reload kept (once it succeeded) */
            pthread_mutex_lock(&s->qmu);
            continue;
        }
        if (reload >= 0 && (due < 0 || reload < due))
            due = reload;
        if (due < 0) {
            pthread_cond_wait(&s->qcond, &s->qmu);
            s->writer_waits++;
        } else if (due > now) {
            struct timespec dl;
            mcond_deadline(&dl, due - now);
            pthread_cond_timedwait(&s->qcond, &s->qmu, &dl);
            s->writer_waits++;
        } else if (idle_work(s, failing) != 0) {
            backoff = vtime_mono_ms() + STORE_RETAIN_PERIOD_MS;
        }
    }
}

void *store__writer_main(void *arg)
{
    store_t *s = arg;
    int failing = 0;
    int64_t retry_ms = 0; /* after a failed client transaction: the idle work's next try */
    store__errmsg_writer(s);
    pthread_mutex_lock(&s->qmu);
    for (;;) {
        wait_for_work(s, failing ? retry_ms : 0);
        if (s->qhead == NULL)
            break; /* closing and drained */
        /* Group commit: when little is queued, wait briefly for more so one fsync covers it. */
        if (s->opts.max_batch_delay_ms > 0 && !s->closing &&
            s->qpending < STORE_COALESCE_READINGS) {
            struct timespec dl;
            mcond_deadline(&dl, s->opts.max_batch_delay_ms);
            s->writer_waiting = 1;
            while (!s->closing && s->qpending < STORE_COALESCE_READINGS &&
                   pthread_cond_timedwait(&s->qcond, &s->qmu, &dl) != ETIMEDOUT)
                ;
            s->writer_waiting = 0;
        }
        store_job_t *jobs = s->qhead;
        size_t taken = s->qpending, ops = s->qops_pending, op_bytes = s->qop_bytes_pending;
        store_commit_hook hook = s->hook;
        void *hook_arg = s->hook_arg;
        const int closing = s->closing; /* what store_close waits for: its result (close_err) */
        s->qhead = s->qtail = NULL;
        s->qpending = 0;
        s->qops_pending = s->qop_bytes_pending = 0;
        pthread_mutex_unlock(&s->qmu);

        double seconds = 0;
        int err = run_transaction(s, jobs, 0, &seconds);
        /* A transaction of store_flush markers alone wrote nothing: its commit says nothing of
         * the disk, so it neither ends a run of failures (the log line, the health check's
         * count: account) nor the refusal after a full disk, nor resets their back-off (a
         * stop's flush after failed saves logged "writes succeed again" with nothing written,
         * and /health read recovered). */
        int wrote = 0;
        size_t dets = 0, models = 0;
        for (const store_job_t *j = jobs; j != NULL; j = j->next) {
            wrote |= j->kind != JOB_FLUSH;
            dets += j->kind == JOB_DETECTOR;
            models += j->kind == JOB_MODEL;
        }
        account(s, err, wrote, dets, models, seconds, HASH_COUNT(s->w.devs), ops);
        /* A lock another process holds (ERR_LOCKED) is said as such: the clients' 503 and the
         * log name it, and nothing of ours is at fault (the next transaction may pass). */
        int status = err == 0 || err == ERR_NOSPACE || err == ERR_LOCKED ? err : ERR_IO;
        if (err && closing && s->close_err == 0)
            s->close_err = status;
        if (err && (!failing || (err == ERR_LOCKED) != (s->w.last_err == ERR_LOCKED)))
            log_error("storage: write failed (%s): %s%s", err_str(err),
                      s->w.tx_errmsg ? s->w.tx_errmsg : store_errmsg(s),
                      err == ERR_LOCKED ? "; another process (an sqlite3 shell, a backup tool) "
                                          "holds a write transaction or an exclusive lock on the "
                                          "database: writes are refused (503) until it lets go"
                                        : "");
        else if (!err && failing && wrote)
            log_info("storage: writes succeed again");
        if (err || wrote) {
            failing = err != 0;
            s->w.last_err = err;
            /* The idle work backs off as a maintenance step does (1 s doubling to a minute), so
             * a full disk is not retried in a loop, and it is not left waiting for the next
             * write. */
            if (err && s->w.client_fails < 64) /* the back-off is a minute long before that */
                s->w.client_fails++;
            else if (err == 0)
                s->w.client_fails = 0;
            retry_ms = err ? vtime_mono_ms() + store__backoff_ms(s->w.client_fails - 1) : 0;
        }

        /* The space is released before the callbacks, so a producer woken by one can submit
         * again at once. */
        pthread_mutex_lock(&s->qmu);
        if (err || wrote)
            s->nospace_until_ms =
                err == ERR_NOSPACE ? vtime_mono_ms() + STORE_NOSPACE_BACKOFF_MS : 0;
        s->qreadings -= taken;
        s->qops -= ops;
        s->qop_bytes -= op_bytes;
        store__wstate_publish(s); /* before the callbacks: a waiter sees its commit's state */
        pthread_mutex_unlock(&s->qmu);

        /* Every committed batch goes to the hook before any submitter hears of the commit. */
        if (err == 0 && hook != NULL)
            for (store_job_t *j = jobs; j != NULL; j = j->next)
                if (j->kind == JOB_BATCH)
                    hook(hook_arg, &j->batch);

        while (jobs != NULL) {
            store_job_t *j = jobs;
            jobs = j->next;
            int st = j->status ? j->status : status;
            if (j->kind == JOB_BATCH) {
                j->cb(j->arg, st);
                store__job_free(j);
            } else if (j->kind == JOB_RETAIN && st == 0) {
                store__retain_wait(s, j); /* called back when its sweep has ended */
            } else if (store__job_async(j)) {
                if (j->kind == JOB_PRED && j->u.pred.cb != NULL)
                    j->u.pred.cb(j->u.pred.arg, j->u.pred.seq, st);
                store__job_free(j); /* nobody waits; account() counted a failure */
            } else {
                j->cb(j->arg, st); /* the waiter owns and frees the job; no touching it now */
            }
        }

        pthread_mutex_lock(&s->qmu);
        /* Idle: compact devices with small rows, a few per transaction, and step a due
         * retention sweep, until work arrives (after a failure: from retry_ms on). */
        idle_work(s, failing && vtime_mono_ms() < retry_ms);
    }
    pthread_mutex_unlock(&s->qmu);
    store__retain_deinit(s);
    store__maint_finalize(&s->w);
    return NULL;
}

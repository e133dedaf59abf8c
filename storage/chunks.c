/* storage/chunks.c: the writer's side of the readings rows (chunks): appending a batch's
 * readings, merging an overwrite into the rows it touches, and compaction of small rows.
 *
 * Layout: readings(device_id, t0, t_last, n, data), index (device_id, t0, t_last, n): one row
 * holds n timestamps t0..t_last of one device, coded by chunk.c, within the caps of
 * storage_int.h (points, values, span).
 *
 * A run whose readings are all newer than the device's newest goes to its pending readings
 * (pending.c), which become rows here (put_rows) once they fill one; a run that reaches back
 * first moves the pending readings into rows, so the merge below sees everything.
 *
 * Invariants (between transactions): a device's rows never overlap in time (each timestamp of a
 * device is in at most one row, so a (device, channel, ts) has one value, the newest written);
 * d->points is the sum of n over its rows, i.e. its distinct timestamps; d->last_ts is the
 * largest t_last. A run of a batch is split at d->last_ts: what lies after it cannot overlap
 * any row and is appended as new rows, one per device per batch (cut by the caps), without
 * reading anything; what lies at or before it (an overwrite, a retried batch, late data) is
 * merged with the rows it overlaps, which are read, merged (the new value wins per (ts,
 * channel)), deleted and written again, so the cost of an overwrite is that of the rows it
 * touches. Merging at write time keeps the reader a plain ordered scan and the point counters
 * exact.
 *
 * Compaction: a row of fewer than STORE_CHUNK_SMALL points (a device with few readings per batch)
 * is small. Compaction takes the device's newest rows of fewer than STORE_CHUNK_PARTIAL points
 * each, back from the newest while they hold at most STORE_CHUNK_POINTS points in all and lie
 * within one span of its newest timestamp, and writes them again as one row (they do not
 * overlap: concatenated, they are sorted). So a device that sends one reading vector per batch
 * ends up in rows of STORE_CHUNK_PARTIAL points or more, each point rewritten a bounded number
 * of times, and the newest data stays writable as new small rows.
 * It runs inside the next transaction once a device has STORE_COMPACT_ROWS small rows, and for
 * any device that wrote a small row when the writer is idle (writer.c).
 *
 * Threads: writer thread only. */
#include "storage_int.h"
#include "compact_int.h"
#include "pending_int.h"
#include "err.h"
#include "log.h"
#include "vtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows the compaction looks back through from a device's newest. */
#define COMPACT_SCAN 4096

static int64_t sat_sub(int64_t a, int64_t b)
{
    return a < INT64_MIN + b ? INT64_MIN : a - b;
}

/* w->cfail is kept sorted by id (each insertion and removal keeps the order, and
 * store__compact_end_tx's filter is stable), so a lookup is a binary search: queue_compact looks
 * up every device a requeue queues, 10,000 at once when so many fail together. The index at
 * which id is, or would be inserted. */
static size_t cfail_index(const store_writer_t *w, int64_t id)
{
    size_t lo = 0, hi = w->ncfail;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->cfail[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

store_cfail_t *store__cfail_find(store_writer_t *w, int64_t id)
{
    size_t i = cfail_index(w, id);
    return i < w->ncfail && w->cfail[i].id == id ? &w->cfail[i] : NULL;
}

store_cfail_t *store__cfail_insert(store_writer_t *w, int64_t id)
{
    size_t i = cfail_index(w, id);
    if (store__grow((void **)&w->cfail, &w->cfail_cap, w->ncfail + 1, sizeof *w->cfail))
        return NULL;
    memmove(&w->cfail[i + 1], &w->cfail[i], (w->ncfail - i) * sizeof *w->cfail);
    w->ncfail++;
    w->cfail[i] = (store_cfail_t){.id = id};
    return &w->cfail[i];
}

/* A device whose compaction failed is not queued during its back-off: its small rows wait, and
 * it is queued by its first small row after the back-off (or by a maps reload after it,
 * store__compact_requeue, if it was noted then). */
static int queue_compact(store_writer_t *w, store_dev_t *d)
{
    if (d->compact_queued)
        return 0;
    if (w->ncfail > 0) {
        store_cfail_t *f = store__cfail_find(w, d->id);
        if (f != NULL && vtime_mono_ms() < f->next_ms)
            return 0;
    }
    if (store__grow((void **)&w->compact, &w->compact_cap, w->ncompact + 1, sizeof *w->compact))
        return ERR_NOMEM;
    w->compact[w->ncompact++] = d;
    d->compact_queued = 1;
    return 0;
}

int64_t store__compact_failed(store_writer_t *w, int64_t id, int64_t now, int *first)
{
    store_cfail_t *f = store__cfail_find(w, id);
    *first = f == NULL;
    if (f == NULL && (f = store__cfail_insert(w, id)) == NULL)
        return -1;
    f->next_ms = now + store__backoff_ms(f->fails);
    f->fails++;
    f->ok = 0;
    return f->next_ms;
}

int store__compact_end_tx(store_writer_t *w, int ok)
{
    if (w->ncfail == 0)
        return 0;
    size_t keep = 0;
    int64_t now = vtime_mono_ms();
    for (size_t i = 0; i < w->ncfail; i++) {
        store_cfail_t *f = &w->cfail[i];
        if (ok && f->ok)
            continue;
        /* Its back-off passed a back-off's length ago: no failure since, forgotten (a failure
         * after that starts a new run at STORE_RETAIN_PERIOD_MIN_MS). */
        if (now - f->next_ms >= store__backoff_ms(f->fails - 1))
            continue;
        f->ok = 0;
        w->cfail[keep++] = *f;
    }
    w->ncfail = keep;
    return keep == 0;
}

static void requeue_note(store_writer_t *w, const store_dev_t *d)
{
    if (store__grow((void **)&w->requeue, &w->requeue_cap, w->nrequeue + 1, sizeof *w->requeue))
        return; /* best effort: it waits for its next small row */
    w->requeue[w->nrequeue++] = (store_requeue_t){d->id, d->small_rows};
}

void store__compact_save(store_writer_t *w)
{
    for (size_t i = 0; i < w->ncompact; i++)
        if (w->compact[i] != NULL)
            requeue_note(w, w->compact[i]);
    w->requeue_due = 1;
}

static int requeue_cmp(const void *a, const void *b)
{
    int64_t x = ((const store_requeue_t *)a)->id, y = ((const store_requeue_t *)b)->id;
    return (x > y) - (x < y);
}

void store__compact_requeue(store_t *s)
{
    store_writer_t *w = &s->w;
    if (!w->requeue_due || w->maps_stale)
        return; /* not reloaded, or the reload failed: the next one requeues */
    w->requeue_due = 0;
    if (w->nrequeue == 0)
        return; /* (qsort's base may not be NULL, even for none) */
    /* The maps list the devices in id order (store__maps_load): one walk. */
    qsort(w->requeue, w->nrequeue, sizeof *w->requeue, requeue_cmp);
    store_dev_t *d = w->devs;
    for (size_t i = 0; i < w->nrequeue; i++) {
        while (d != NULL && d->id < w->requeue[i].id)
            d = d->hh.next;
        if (d == NULL)
            break;
        if (d->id != w->requeue[i].id)
            continue; /* deleted */
        if (w->requeue[i].small_rows < 0 && d->small_rows == 0)
            continue; /* a back-off's end (store__compact_wake): nothing to compact */
        if (w->requeue[i].small_rows > d->small_rows)
            d->small_rows = w->requeue[i].small_rows;
        if (queue_compact(w, d) != 0)
            break;
    }
    w->nrequeue = 0;
}

void store__compact_forget(store_writer_t *w, int64_t id)
{
    store_cfail_t *f = store__cfail_find(w, id);
    if (f == NULL)
        return;
    size_t i = (size_t)(f - w->cfail);
    memmove(f, f + 1, (w->ncfail - i - 1) * sizeof *f); /* in id order still */
    w->ncfail--;
}

void store__compact_list_free(store_writer_t *w)
{
    free(w->compact);
    w->compact = NULL;
    w->ncompact = w->compact_cap = 0;
    free(w->cfail);
    w->cfail = NULL;
    w->ncfail = w->cfail_cap = 0;
    free(w->requeue);
    w->requeue = NULL;
    w->nrequeue = w->requeue_cap = 0;
}

/* Inserts rows for m >= 0 sorted unique cells, cut by the caps, and adds their points to d.
 * queue: a small row puts the device in the compact list. */
static int put_rows(store_t *s, store_dev_t *d, const store_cell_t *cells, size_t m, int queue)
{
    store_writer_t *w = &s->w;
    while (m > 0) {
        size_t np, k = store__chunk_cut(cells, m, &np);
        const unsigned char *data;
        size_t len;
        int err = store__chunk_encode(&w->codec, cells, k, &data, &len);
        if (err) {
            store__set_errmsg(s, "encoding a chunk of device %lld: %s", (long long)d->id,
                              err_str(err));
            return err;
        }
        sqlite3_stmt *st = w->chunk_ins;
        sqlite3_bind_int64(st, 1, d->id);
        sqlite3_bind_int64(st, 2, cells[0].ts);
        sqlite3_bind_int64(st, 3, cells[k - 1].ts);
        sqlite3_bind_int64(st, 4, (int64_t)np);
        sqlite3_bind_blob(st, 5, data, (int)len, SQLITE_STATIC);
        err = store__step_done(s, st);
        if (err)
            return err;
        d->points += (int64_t)np;
        if (np < STORE_CHUNK_SMALL) {
            d->small_rows++;
            if (queue && (err = queue_compact(w, d)) != 0)
                return err;
        }
        if (!d->has_rows || cells[k - 1].ts > d->rlast)
            d->rlast = cells[k - 1].ts;
        d->has_rows = 1;
        cells += k;
        m -= k;
        /* The devices row (counters of the rows only) is written before the commit. */
        if ((err = store__touch(w, d)) != 0)
            return err;
    }
    return 0;
}

/* Appends the cells of the rows of d with t0 in [lo, hi] and t_last >= from to w->mcells
 * (*nm cells), in ts order; *first / *last are the t0 of the first and last such row (*rows of
 * them), *points their points. A damaged row (ERR_CORRUPT) fails it, unless replace is set: then
 * the row counts among the rows (its points from its n column) with no cells, so that the caller
 * deletes it and writes what it merged in its place, and a warn line names it. */
static int read_rows(store_t *s, store_dev_t *d, int64_t lo, int64_t hi, int64_t from, int replace,
                     size_t *nm, int64_t *first, int64_t *last, size_t *rows, int64_t *points)
{
    store_writer_t *w = &s->w;
    sqlite3_stmt *st = w->chunk_range;
    sqlite3_bind_int64(st, 1, d->id);
    sqlite3_bind_int64(st, 2, lo);
    sqlite3_bind_int64(st, 3, hi);
    int rc, err = 0;
    *nm = *rows = 0;
    *points = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t t0 = sqlite3_column_int64(st, 0);
        if (sqlite3_column_int64(st, 1) < from)
            continue;
        const store_cell_t *c;
        size_t nc, np;
        err = store__chunk_decode(&w->codec, t0, sqlite3_column_blob(st, 3),
                                  (size_t)sqlite3_column_bytes(st, 3), NULL, 0, &c, &nc, &np);
        if (err == 0 &&
            store__grow((void **)&w->mcells, &w->mcells_cap, *nm + nc, sizeof *w->mcells))
            err = ERR_NOMEM;
        if (err == ERR_CORRUPT && replace) {
            /* Its values cannot be read, so none survive; a write into its span must not fail
             * the transaction (every job batched with it) on that account. */
            int64_t n = sqlite3_column_int64(st, 2);
            log_warn("storage: a write into the damaged readings chunk of device \"%s\" from "
                     "%lld to %lld ms replaces it: its %lld points (unreadable) are dropped and "
                     "the new readings stored (docs/reliability.md)",
                     d->name, (long long)t0, (long long)sqlite3_column_int64(st, 1), (long long)n);
            err = 0;
            if (*rows == 0)
                *first = t0;
            *last = t0;
            (*rows)++;
            *points += n;
            continue;
        }
        if (err == ERR_CORRUPT) {
            store__chunk_damaged(s, d->name, t0, sqlite3_column_int64(st, 1));
            break;
        }
        if (err) {
            store__set_errmsg(s, "reading the readings row (device %lld, t0 %lld): %s",
                              (long long)d->id, (long long)t0, err_str(err));
            break;
        }
        memcpy(w->mcells + *nm, c, nc * sizeof *c);
        *nm += nc;
        if (*rows == 0)
            *first = t0;
        *last = t0;
        (*rows)++;
        *points += (int64_t)np;
    }
    if (err == 0 && rc != SQLITE_DONE) {
        err = store__status(w->db, rc) ? store__status(w->db, rc) : ERR_IO;
        store__set_errmsg(s, "reading readings rows: %s", sqlite3_errmsg(w->db));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

static int delete_rows(store_t *s, store_dev_t *d, int64_t first, int64_t last)
{
    sqlite3_stmt *st = s->w.chunk_del;
    sqlite3_bind_int64(st, 1, d->id);
    sqlite3_bind_int64(st, 2, first);
    sqlite3_bind_int64(st, 3, last);
    return store__step_done(s, st);
}

/* Merges nn sorted unique cells into the rows of d they overlap (the new value wins). A damaged
 * row among them is replaced, its points dropped (read_rows' replace: read69e 1, a write into
 * its span failed the whole transaction, every job batched with it). */
static int merge_region(store_t *s, store_dev_t *d, const store_cell_t *nc, size_t nn)
{
    store_writer_t *w = &s->w;
    int64_t lo = nc[0].ts, hi = nc[nn - 1].ts, first = 0, last = 0, oldpts;
    size_t nm, rows;
    /* A row overlapping [lo, hi] starts at most one span before lo. */
    int err = read_rows(s, d, sat_sub(lo, STORE_CHUNK_SPAN_MS), hi, lo, 1, &nm, &first, &last,
                        &rows, &oldpts);
    if (err)
        return err;
    if (rows > 0 && (err = delete_rows(s, d, first, last)) != 0)
        return err;
    if (store__grow((void **)&w->ocells, &w->ocells_cap, nm + nn, sizeof *w->ocells))
        return ERR_NOMEM;
    size_t i = 0, j = 0, n = 0;
    const store_cell_t *old = w->mcells;
    while (i < nm || j < nn) {
        if (j == nn || (i < nm && (old[i].ts < nc[j].ts ||
                                   (old[i].ts == nc[j].ts && old[i].idx < nc[j].idx)))) {
            w->ocells[n++] = old[i++];
        } else {
            if (i < nm && old[i].ts == nc[j].ts && old[i].idx == nc[j].idx)
                i++; /* overwritten */
            w->ocells[n++] = nc[j++];
        }
    }
    d->points -= oldpts;
    return put_rows(s, d, w->ocells, n, 1);
}

/* The cells of m points r of b (ts order, ties in batch order) into w->cells: sorted by (ts,
 * idx), unique, a later value of a (ts, channel) replacing an earlier one. */
static int run_cells(store_t *s, store_dev_t *d, const batch_t *b, const struct store_ord *r,
                     size_t m, size_t *ncells, uint64_t *readings)
{
    store_writer_t *w = &s->w;
    size_t need = 0;
    for (size_t q = 0; q < m; q++)
        need += b->points[r[q].i].nfields;
    if (store__grow((void **)&w->cells, &w->cells_cap, need, sizeof *w->cells))
        return ERR_NOMEM;
    store_cell_t *c = w->cells;
    size_t n = 0, p0 = 0;
    *readings = 0;
    for (size_t q = 0; q < m; q++) {
        const batch_point_t *p = &b->points[r[q].i];
        size_t np;
        int err = store__encode_point(s, d, b, p, &np);
        if (err)
            return err;
        *readings += p->nfields;
        if (n == 0 || c[n - 1].ts != p->ts_ms) {
            p0 = n;
            for (size_t k = 0; k < np; k++)
                c[n++] = (store_cell_t){p->ts_ms, w->pairs[k].idx, w->pairs[k].v};
            continue;
        }
        /* A second point at the same ts (rare): its values join the first's, winning. */
        for (size_t k = 0; k < np; k++) {
            size_t at = p0;
            while (at < n && c[at].idx < w->pairs[k].idx)
                at++;
            if (at < n && c[at].idx == w->pairs[k].idx) {
                c[at].v = w->pairs[k].v;
                continue;
            }
            memmove(&c[at + 1], &c[at], (n - at) * sizeof *c);
            c[at] = (store_cell_t){p->ts_ms, w->pairs[k].idx, w->pairs[k].v};
            n++;
        }
    }
    *ncells = n;
    return 0;
}

int store__write_run(store_t *s, store_dev_t *d, const batch_t *b, const struct store_ord *r,
                     size_t m)
{
    store_writer_t *w = &s->w;
    size_t n;
    uint64_t readings;
    int err = run_cells(s, d, b, r, m, &n, &readings);
    if (err || n == 0)
        return err;
    const store_cell_t *c = w->cells;
    size_t k = 0;
    int had = d->points > 0; /* first_ts and last_ts are meaningful */
    if (had)
        while (k < n && c[k].ts <= d->last_ts)
            k++;
    if (k == 0 && d->pdirect_txn != w->txn) {
        /* The usual case: everything is newer than what the device holds; it waits in the
         * pending readings (pending.c) until they fill a row. */
        err = store__pend_append(s, d, c, n);
    } else {
        /* The rows must hold everything first (a merge reads only rows); the device's runs in
         * the rest of this transaction then go to rows directly (store__pend_flush). */
        err = store__pend_flush(s, d);
        /* The part at or before the newest stored timestamp, in clusters a span apart, merged. */
        for (size_t a = 0; a < k && err == 0;) {
            size_t e = a + 1;
            while (e < k && (uint64_t)c[e].ts - (uint64_t)c[e - 1].ts <= STORE_CHUNK_SPAN_MS)
                e++;
            err = merge_region(s, d, c + a, e - a);
            a = e;
        }
        if (err == 0)
            err = put_rows(s, d, c + k, n - k, 1);
    }
    if (err)
        return err;
    if (!had || c[0].ts < d->first_ts)
        d->first_ts = c[0].ts;
    if (!had || c[n - 1].ts > d->last_ts)
        d->last_ts = c[n - 1].ts;
    w->tx_points += m;
    w->tx_readings += readings;
    return store__pend_mark(w, d);
}

/* Merges the device's newest rows of fewer than STORE_CHUNK_PARTIAL points each (within one
 * span of its newest timestamp, STORE_CHUNK_POINTS points in all) into one row. */
static int compact_device(store_t *s, store_dev_t *d)
{
    store_writer_t *w = &s->w;
    sqlite3_stmt *st = w->chunk_tail;
    sqlite3_bind_int64(st, 1, d->id);
    sqlite3_bind_int64(st, 2, COMPACT_SCAN);
    int64_t newest = 0, lo = 0, sum = 0;
    size_t count = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t t0 = sqlite3_column_int64(st, 0);
        if (count == 0)
            newest = sqlite3_column_int64(st, 1);
        int64_t n = sqlite3_column_int64(st, 2);
        if (n >= STORE_CHUNK_PARTIAL || sum + n > STORE_CHUNK_POINTS ||
            (uint64_t)newest - (uint64_t)t0 > STORE_CHUNK_SPAN_MS)
            break;
        lo = t0;
        sum += n;
        count++;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        store__set_errmsg(s, "reading readings rows: %s", sqlite3_errmsg(w->db));
        return store__status(w->db, rc) ? store__status(w->db, rc) : ERR_IO;
    }
    d->small_rows = 0;
    if (count < 2)
        return 0;
    int64_t first = 0, last = 0, oldpts;
    size_t nm, rows;
    int err = read_rows(s, d, lo, INT64_MAX, lo, 0, &nm, &first, &last, &rows, &oldpts);
    if (err == 0 && rows > 0)
        err = delete_rows(s, d, first, last);
    if (err)
        return err;
    d->points -= oldpts;
    w->compactions++;
    return put_rows(s, d, w->mcells, nm, 0);
}

int store__put_rows(store_t *s, store_dev_t *d, const store_cell_t *cells, size_t m, int queue)
{
    return put_rows(s, d, cells, m, queue);
}

int store__compact_some(store_t *s, int force)
{
    store_writer_t *w = &s->w;
    size_t keep = 0, done = 0;
    int err = 0;
    for (size_t i = 0; i < w->ncompact; i++) {
        store_dev_t *d = w->compact[i];
        if (d == NULL)
            continue;
        if (err || done >= STORE_COMPACT_PER_TX || (force && d->small_rows < STORE_COMPACT_ROWS)) {
            w->compact[keep++] = d;
            continue;
        }
        d->compact_queued = 0;
        w->compact_runs++;
        /* Noted, should the transaction be undone and the maps reloaded (the list with them). */
        requeue_note(w, d);
        int64_t points = d->points;
        err = compact_device(s, d);
        /* Points stay as they are (the rows do not overlap); published if not. */
        if (err == 0 && d->points != points)
            err = store__pend_mark(w, d);
        if (err) {
            w->cfail_id = d->id;
            snprintf(w->cfail_name, sizeof w->cfail_name, "%s", d->name);
        } else if (w->ncfail > 0) {
            store_cfail_t *f = store__cfail_find(w, d->id);
            if (f != NULL)
                f->ok = 1;
        }
        done++;
    }
    w->ncompact = keep;
    return err;
}

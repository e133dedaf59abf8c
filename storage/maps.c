/* storage/maps.c: the writer's in-memory maps: device name -> device (id, the devices row's
 * counters, its channels) and, per device, channel name -> idx. They are loaded from the devices
 * and channels tables (store__maps_load) and added to as the writer inserts rows (writer.c).
 *
 * Invariants: between transactions the maps equal the tables; a failed transaction marks them
 * stale (maps_stale) and they are loaded again before the next one. Every device of w->devs is
 * in the device index w->didx once. A load replays the pending readings into the devices
 * (pending.c) and keeps the compact list (queued again after, chunks.c) and the small-row counts
 * of devices backing off; the load at open queues the devices the previous run left with small
 * rows (one query). A load that fails leaves the maps empty and stale; the writer loads them
 * again before its next transaction, and meanwhile, when idle, every few seconds
 * (store__maps_reload), so readers waiting for the counters need no write to get them back.
 *
 * The uthash tables of names (w->devs, each device's chans: names a client chooses) are given the
 * bucket value from the device index's seeded key (store__devidx_key of w->didx, low 32 bits),
 * not uthash's unseeded Jenkins hash, so a client cannot send names that share one bucket chain;
 * HASH_DEL uses the hash stored at add. The seed is chosen at the first load and kept by a
 * reload.
 *
 * Threads: the writer thread only; store__maps_load also runs at open, before the thread starts. */
#include "storage_int.h"
#include "compact_int.h"
#include "pending_int.h"
#include "err.h"
#include "log.h"
#include "vtime.h"

#include <stdlib.h>
#include <string.h>

void store__dev_free(store_dev_t *d)
{
    store_chan_t *c, *tmp;
    HASH_ITER(hh, d->chans, c, tmp)
    {
        HASH_DEL(d->chans, c);
        free(c);
    }
    free(d->pbuf);
    free(d);
}

/* Callers first take the devices out of s->pids (store__pend_index). */
void store__maps_free(store_writer_t *w)
{
    store_dev_t *d, *tmp;
    HASH_ITER(hh, w->devs, d, tmp)
    {
        HASH_DEL(w->devs, d);
        store__dev_free(d);
    }
    store__devidx_clear(&w->didx);
    store__pend_free_lists(w);
    w->ntouched = 0;
    w->ncompact = 0;
    w->ret.walking = 0; /* the retention walk restarts from the first device */
    w->ret.pos = NULL;
}

/* The bucket value of a name in a uthash table, from its key in the device index (file
 * comment): a device's (bucket_of(k) with k its key) or a channel's (name_hash). */
static unsigned bucket_of(nameidx_key_t k)
{
    return (unsigned)k.h;
}

unsigned store__name_hash(const store_writer_t *w, const char *name, size_t len)
{
    return bucket_of(store__devidx_key(&w->didx, name, len));
}

/* Adds a device to the map (no SQL); k is its name's key in w->didx. Returns NULL when out of
 * memory. */
store_dev_t *store__dev_add(store_writer_t *w, int64_t id, const char *name, size_t len,
                            nameidx_key_t k)
{
    store_dev_t *d = calloc(1, sizeof *d + len + 1);
    if (d == NULL)
        return NULL;
    d->id = id;
    d->first_ts = d->last_ts = -1;
    d->len = len;
    memcpy(d->name, name, len);
    /* w->devs is only walked and counted (lookups go through w->didx), but its buckets come
     * from the seeded hash as well. */
    HASH_ADD_KEYPTR_BYHASHVALUE(hh, w->devs, d->name, (unsigned)len, bucket_of(k), d);
    if (d->hh.tbl == NULL) {
        free(d);
        return NULL;
    }
    if (store__devidx_add(&w->didx, k, d) != 0) {
        HASH_DEL(w->devs, d);
        free(d);
        return NULL;
    }
    return d;
}

/* Adds a channel to a device's map (no SQL); hv is store__name_hash(w, name, len); *out (may be
 * NULL) is the entry. Returns 0 or ERR_NOMEM. */
int store__chan_add(store_dev_t *d, int64_t idx, const char *name, size_t len, unsigned hv,
                    store_chan_t **out)
{
    store_chan_t *c = malloc(sizeof *c + len + 1);
    if (c == NULL)
        return ERR_NOMEM;
    c->idx = idx;
    c->len = len;
    memcpy(c->name, name, len);
    c->name[len] = '\0';
    HASH_ADD_KEYPTR_BYHASHVALUE(hh, d->chans, c->name, (unsigned)len, hv, c);
    if (c->hh.tbl == NULL) {
        free(c);
        return ERR_NOMEM;
    }
    if (idx >= d->nchans)
        d->nchans = idx + 1;
    if (out != NULL)
        *out = c;
    return 0;
}

/* Notes a device to queue again after the load (chunks.c's store__compact_requeue) with its
 * small rows. Best effort: out of memory, it waits for its next small row. */
static void requeue_add(store_writer_t *w, int64_t id, int small_rows)
{
    if (store__grow((void **)&w->requeue, &w->requeue_cap, w->nrequeue + 1, sizeof *w->requeue))
        return;
    w->requeue[w->nrequeue++] = (store_requeue_t){id, small_rows};
}

/* At open: the devices whose newest STORE_COMPACT_ROWS rows hold two or more small ones (the
 * previous run stopped before compacting them), queued with no small rows counted (as main
 * counts them at open): the idle work compacts them, and a client transaction only after
 * STORE_COMPACT_ROWS new small rows, as before (with the rows' count, a device's next small row
 * would make a client transaction compact it, and on a disk found full at open that
 * compaction's SQLITE_FULL would take the client's batch with it). One query, one search of the
 * readings index per device (its newest rows); measured at open of a store of 1,000 devices in
 * docs/reliability.md (session 31). Best effort: a failure leaves them to their next small row,
 * as before. */
static void note_small_rows(store_writer_t *w)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(w->db,
                                "SELECT id, (SELECT count(*) FROM (SELECT n FROM readings"
                                " WHERE device_id = devices.id ORDER BY t0 DESC LIMIT ?1)"
                                " WHERE n < ?2) FROM devices ORDER BY id",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, STORE_COMPACT_ROWS);
        sqlite3_bind_int(st, 2, STORE_CHUNK_SMALL);
    }
    while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        int n = sqlite3_column_int(st, 1);
        if (n >= 2)
            requeue_add(w, sqlite3_column_int64(st, 0), 0);
    }
    sqlite3_finalize(st);
}

/* Test hook (store__test_reload_fail): whether this reload is to fail. */
static int reload_fails_now(store_writer_t *w)
{
    int n = __atomic_load_n(&w->reload_fail, __ATOMIC_ACQUIRE);
    if (n > 0)
        __atomic_compare_exchange_n(&w->reload_fail, &n, n - 1, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE);
    return n != 0;
}

int store__maps_load(store_t *s)
{
    store_writer_t *w = &s->w;
    sqlite3_stmt *st = NULL;
    int err = 0, rc;
    int first = w->didx.seed == 0; /* store_open's load */
    store__pend_index(s, 0);
    if (!first)
        __atomic_add_fetch(&w->reload_tries, 1, __ATOMIC_ACQ_REL);
    store__test_pause(&w->reload_hold, &w->reload_held); /* test hook: nothing published */
    int injected = !first && reload_fails_now(w);
    store__compact_save(w); /* the compact list goes with the maps: queued again after */
    /* So do the counts of devices with small rows outside it (backing off, chunks.c), so that
     * at its back-off's end such a device is queued (store__compact_wake) and a client
     * transaction compacts it once it has STORE_COMPACT_ROWS. */
    for (store_dev_t *d = w->devs; d != NULL; d = d->hh.next)
        if (d->small_rows > 0 && !d->compact_queued)
            requeue_add(w, d->id, d->small_rows);
    store__maps_free(w);
    if (first)
        store__devidx_init(&w->didx); /* a reload keeps the seed */
    w->next_id = 1;
    /* Devices in id order, so the hash's insertion-ordered list is sorted by id and the channels
     * (read in device_id order) can be attached by walking it once. */
    rc = sqlite3_prepare_v2(w->db,
                            "SELECT id, name, first_ts, last_ts, points, log_seq FROM devices"
                            " ORDER BY id",
                            -1, &st, NULL);
    if (injected)
        err = ERR_IO;
    while (err == 0 && rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        store_dev_t *d = store__dev_add(w, sqlite3_column_int64(st, 0), name, len,
                                        store__devidx_key(&w->didx, name, len));
        if (d == NULL) {
            err = ERR_NOMEM;
            break;
        }
        if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
            d->first_ts = sqlite3_column_int64(st, 2);
            d->last_ts = d->rlast = sqlite3_column_int64(st, 3);
        }
        d->points = sqlite3_column_int64(st, 4);
        d->has_rows = d->points > 0;
        d->log_seq = (uint64_t)sqlite3_column_int64(st, 5);
        w->next_id = d->id + 1;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (err == 0 && rc != SQLITE_DONE)
        err = store__status(w->db, rc) ? store__status(w->db, rc) : ERR_IO;
    if (err == 0) {
        rc = sqlite3_prepare_v2(w->db,
                                "SELECT device_id, idx, name FROM channels ORDER BY device_id, idx",
                                -1, &st, NULL);
        store_dev_t *cur = w->devs;
        while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(st, 0);
            while (cur != NULL && cur->id < id)
                cur = cur->hh.next;
            rc = SQLITE_OK;
            if (cur == NULL || cur->id != id)
                continue; /* an orphan channel row; harmless */
            const char *name = (const char *)sqlite3_column_text(st, 2);
            size_t len = (size_t)sqlite3_column_bytes(st, 2);
            err = store__chan_add(cur, sqlite3_column_int64(st, 1), name, len,
                                  store__name_hash(w, name, len), NULL);
            if (err)
                break;
        }
        sqlite3_finalize(st);
        if (err == 0 && rc != SQLITE_DONE)
            err = store__status(w->db, rc) ? store__status(w->db, rc) : ERR_IO;
    }
    if (err) {
        store__set_errmsg(s, "loading device maps: %s",
                          injected           ? "injected failure (test)"
                          : err == ERR_NOMEM ? "out of memory"
                                             : sqlite3_errmsg(w->db));
    } else if ((err = store__pend_replay(s)) == 0) {
        w->maps_stale = 0;
        store__pend_index(s, 1); /* may set maps_stale again when out of memory */
        if (first) {
            note_small_rows(w);
            store__compact_requeue(s);
        }
        return 0;
    }
    store__maps_free(w);
    w->maps_stale = 1;
    return err;
}

int store__maps_reload(store_t *s)
{
    store_writer_t *w = &s->w;
    int err = store__maps_load(s);
    if (err == 0 && !w->maps_stale) {
        if (w->reload_fails > 0)
            log_info("storage: device maps reloaded after %d failed attempt%s", w->reload_fails,
                     w->reload_fails == 1 ? "" : "s");
        __atomic_store_n(&w->reload_fails, 0, __ATOMIC_RELEASE); /* store_stats_get reads it */
        return 0;
    }
    /* Still stale (also after a load that ran out of memory indexing the pending readings):
     * the readers waiting for the counters answer ERR_AGAIN now, and the idle writer tries
     * again, so the readers' counters do not wait for the next write. */
    store__pend_reload_failed(s);
    if (w->reload_fails == 0)
        log_warn("storage: reloading the device maps failed (%s): %s; retrying",
                 err_str(err ? err : ERR_NOMEM), store_errmsg(s));
    if (w->reload_fails < 1000)
        __atomic_store_n(&w->reload_fails, w->reload_fails + 1, __ATOMIC_RELEASE);
    int64_t wait = STORE_RELOAD_RETRY_MS;
    for (int i = 1; i < w->reload_fails && wait < STORE_RELOAD_RETRY_MAX_MS; i++)
        wait *= 2;
    if (wait > STORE_RELOAD_RETRY_MAX_MS)
        wait = STORE_RELOAD_RETRY_MAX_MS;
    w->reload_retry_ms = vtime_mono_ms() + wait;
    return err;
}

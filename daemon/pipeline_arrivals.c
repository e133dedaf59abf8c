/* daemon/pipeline_arrivals.c: the devices' arrivals kept across a restart (session 59).
 *
 * A device's newest arrival (dev.seen_ms) and the arrival of its newest scored reading
 * (dev.last_ms, with last_ts) live in memory, written by the shards. The store keeps them in
 * a table of their own (storage/arrivals.c): the loop's timer flushes the devices whose values
 * changed since they were last queued (dev.arr_*) every PIPE_ARRIVALS_MS, in one asynchronous
 * put (one job, one pass of upserts in the writer's next transaction), and the stop flushes
 * them once more after the last scoring. The restore reads them back after the detectors and
 * before the catch-up, so /metrics' silence, the API's last_seen and the maintenance rule for a
 * clock behind read the stored values, not the start.
 *
 * Why 60 s: a clean stop writes the exact values; the period only bounds what a crash loses.
 * After a crash a device's restored arrival is at most one period (plus the flush's commit)
 * older than its true one, so a live device may count silent for up to that period plus the
 * downtime until its next reading; 60 s is the smallest threshold of vigil_devices_silent, so
 * a device that reads at least once a minute crosses none of the longer ones (300 s, 3600 s)
 * for this reason alone, and the flush costs one walk of the fleet a minute on the loop (a
 * relaxed load and a mutex per device, the walk /metrics makes) and one batched write.
 *
 * A put refused is tried again a second later. One lost with its transaction is counted in the
 * store's ops_failed, which each flush compares with its value at the last put: when it moved,
 * the flush queues every device again (one full put after each failure), since the marks
 * (dev.arr_*) say only what was queued, not what was committed (review of maint9).
 *
 * last_ms is restored only when the stored last_ts is the restored detector's (a save after the
 * flush, or none: the pair would not describe the same reading); a reading the catch-up scores
 * sets it to -1 as before (no arrival known).
 *
 * Threads: pipeline_arrivals_flush the loop thread only (the timer, then the stop after the
 * timer stopped): dev.arr_* and p->arr_* are its own; pipeline__arrivals_restore runs in
 * pipeline_restore, before the loop and the shards' readings. */
#include "pipeline_int.h"

#include "err.h"
#include "log.h"
#include "vtime.h"

#include <stdlib.h>

/* A put refused (the queue of puts full, the disk full) is tried again this much later. */
#define ARRIVALS_RETRY_MS 1000

int64_t pipeline__arrivals_every_ms(void)
{
    const char *v = getenv("VIGIL_TEST_ARRIVALS_MS");
    long long ms = v && *v ? strtoll(v, NULL, 10) : 0;
    if (ms <= 0)
        return PIPE_ARRIVALS_MS;
    log_warn("pipeline: VIGIL_TEST_ARRIVALS_MS is %lld (a test hook): the devices' arrivals are "
             "flushed every %lld ms",
             ms, ms);
    return ms;
}

struct arr_buf {
    store_arrival_t *v;
    struct dev **d;
    size_t n;
};

int pipeline_arrivals_flush(pipeline_t *p, int force)
{
    if (p->store == NULL)
        return 0;
    const int64_t now = vtime_mono_ms();
    if (!force && now < p->arr_next_ms)
        return 0;
    p->arr_next_ms = now + p->arr_every_ms;
    /* A put lost with its transaction (disk full, I/O error, another process's lock) left its
     * devices marked as written: a silent one would never be written again, not even by the
     * stop. Any asynchronous put lost since the last one was queued (the store's ops_failed
     * moved; read before this put is queued, so a failure of this one shows at the next) may
     * have been ours: every device is queued again, once. */
    store_stats_t st;
    store_stats_get(p->store, &st);
    const int redo = st.ops_failed != p->arr_ops_failed;
    /* The walk pipeline_metrics makes (see device_families): devices live as long as the
     * pipeline, and the first n's next pointers never change once seen under devs_lock. */
    pthread_rwlock_rdlock(&p->devs_lock);
    struct dev *d = p->devs;
    size_t n = HASH_COUNT(p->devs);
    pthread_rwlock_unlock(&p->devs_lock);
    if (n == 0)
        return 0;
    struct arr_buf b = {calloc(n, sizeof *b.v), calloc(n, sizeof *b.d), 0};
    int rc = b.v && b.d ? 0 : ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i > 0)
            d = d->hh.next; /* device i-1's next: never the tail's, which a HASH_ADD may write */
        int64_t seen = atomic_load_explicit(&d->seen_ms, memory_order_relaxed);
        pthread_mutex_lock(&d->mu);
        int64_t last_ms = d->last_ms, last_ts = d->last_ts;
        pthread_mutex_unlock(&d->mu);
        /* None arrived since the start or a forget (pipeline_forget: -1): nothing to keep; a
         * forgotten device's row went with its delete. */
        if (seen < 0 || atomic_load_explicit(&d->deleted, memory_order_relaxed))
            continue;
        if (!redo && seen == d->arr_seen && last_ms == d->arr_last && last_ts == d->arr_ts)
            continue;
        b.v[b.n] = (store_arrival_t){d->name, seen, last_ms, last_ts};
        b.d[b.n++] = d;
    }
    if (rc == 0 && b.n > 0) {
        rc = store_arrivals_put(p->store, b.v, b.n);
        if (rc == ERR_BUSY && force) { /* the stop: the queue drains, then once more */
            (void)store_flush(p->store);
            rc = store_arrivals_put(p->store, b.v, b.n);
        }
    }
    if (rc == 0) {
        p->arr_ops_failed = st.ops_failed;
        for (size_t i = 0; i < b.n; i++) {
            b.d[i]->arr_seen = b.v[i].seen_ms;
            b.d[i]->arr_last = b.v[i].last_ms;
            b.d[i]->arr_ts = b.v[i].last_ts;
        }
        if (p->arr_failing && b.n > 0)
            log_info("pipeline: the devices' arrivals are stored again");
        p->arr_failing = p->arr_failing && b.n == 0;
    } else {
        if (force) /* the stop's flush: nothing tries again (stop.c counts it as lost) */
            log_warn("pipeline: the arrivals of %zu devices not stored (%s) at the stop", b.n,
                     err_str(rc));
        else if (!p->arr_failing)
            log_warn("pipeline: the arrivals of %zu devices not stored (%s); tried again in %d "
                     "ms",
                     b.n, err_str(rc), ARRIVALS_RETRY_MS);
        p->arr_failing = 1;
        p->arr_next_ms = now + ARRIVALS_RETRY_MS;
    }
    free(b.v);
    free(b.d);
    return rc == 0 ? (int)b.n : rc;
}

static int on_arrival(void *arg, const store_arrival_t *a)
{
    pipeline_t *p = arg;
    struct dev *d = pipeline__dev(p, a->device);
    if (d == NULL)
        return ERR_NOMEM;
    pthread_mutex_lock(&d->mu);
    atomic_store_explicit(&d->seen_ms, a->seen_ms, memory_order_relaxed);
    if (a->last_ts >= 0 && a->last_ts == d->last_ts)
        d->last_ms = a->last_ms;
    d->arr_seen = a->seen_ms;
    d->arr_last = a->last_ms;
    d->arr_ts = a->last_ts;
    pthread_mutex_unlock(&d->mu);
    return 0;
}

int pipeline__arrivals_restore(pipeline_t *p)
{
    if (p->store == NULL)
        return 0;
    int rc = store_arrivals_load(p->store, on_arrival, p);
    if (rc)
        log_warn("pipeline: the devices' stored arrivals not restored (%s): their silence counts "
                 "from the start",
                 store_errmsg(p->store));
    return rc;
}

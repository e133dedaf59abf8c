/* daemon/pipeline_arrivals.c: the devices' arrivals kept across a restart (session 59).
 *
 * A device's newest arrival (dev.seen_ms) and the arrival of its newest scored reading
 * (dev.last_ms, with last_ts) live in memory, written by the shards. The store keeps them in
 * a table of their own (storage/arrivals.c): the loop's timer flushes the devices whose values
 * changed since they were last queued (dev.arr_*) every PIPE_ARRIVALS_MS, in a pass of
 * PIPE_ARRIVALS_SLICE devices a tick (250 ms), one asynchronous put a slice (one job, one pass
 * of upserts in the writer's next transaction), and the stop flushes them once more after the
 * last scoring, all in one walk and one put. The restore reads them back after the detectors and
 * before the catch-up, so /metrics' silence, the API's last_seen and the maintenance rule for a
 * clock behind read the stored values, not the start.
 *
 * Why 60 s: a clean stop writes the exact values; the period only bounds what a crash loses.
 * After a crash a device's restored arrival is at most one period (plus the flush's commit)
 * older than its true one, so a live device may count silent for up to that period plus the
 * downtime until its next reading; 60 s is the smallest threshold of vigil_devices_silent, so
 * a device that reads at least once a minute crosses none of the longer ones (300 s, 3600 s)
 * for this reason alone, and the flush costs one walk of the fleet a minute on the loop (a
 * relaxed load and a mutex per device, the walk /metrics makes) and batched writes.
 *
 * Why slices (session 60, bench/arrivals): one walk of 100,000 devices that all changed held
 * the loop thread about 45 ms (up to 60 ms) with the packing of its put, stalling the stream,
 * the timers and the event streams meanwhile. A slice is at most 8192 devices (about 4 ms on a
 * quiet machine) and its walk ends after 4 ms (under a heavy ingest 8192 took up to 14 ms), so
 * a pass of 100,000 takes 13 ticks or more (3 s and up), which a crash's loss bound adds to
 * the period.
 *
 * A put refused is tried again a second later, the pass resuming at that slice. One lost with
 * its transaction is counted in the store's ops_failed, which each pass compares at its start
 * with its value at the start of the last pass that ended: when it moved, the pass queues every
 * device again (one full pass after each failure), since the marks (dev.arr_*) say only what
 * was queued, not what was committed (review of maint9).
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
/* A slice's walk ends after this long on the loop thread even short of PIPE_ARRIVALS_SLICE
 * devices (the loop preempted, or the devices' mutexes contended, under a heavy ingest). */
#define ARRIVALS_SLICE_US 4000

void pipeline__arrivals_init(pipeline_t *p)
{
    long long ms = pipeline__test_knob("VIGIL_TEST_ARRIVALS_MS", PIPE_KNOB_MS_MAX,
                                       "the arrivals flush's period in ms");
    long long slice = pipeline__test_knob("VIGIL_TEST_ARRIVALS_SLICE", PIPE_KNOB_COUNT_MAX,
                                          "devices an arrivals tick walks");
    p->arr_every_ms = ms ? ms : PIPE_ARRIVALS_MS;
    p->arr_slice = slice ? (size_t)slice : PIPE_ARRIVALS_SLICE;
}

struct arr_buf {
    store_arrival_t *v;
    struct dev **d;
    size_t n;
};

/* Starts a pass when one is due (force: always, a pass of its own), reading the store's
 * ops_failed first. Returns the devices it walks (0: no pass, nothing to walk). */
static size_t pass_begin(pipeline_t *p, int64_t now, int force)
{
    if (!force && p->arr_n > 0) /* the pass under way goes on, once a refused put's wait ends */
        return now < p->arr_retry_ms ? 0 : p->arr_n;
    if (!force && now < p->arr_next_ms)
        return 0;
    if (!force)
        p->arr_next_ms = now + p->arr_every_ms;
    /* A put lost with its transaction (disk full, I/O error, another process's lock) left its
     * devices marked as written: a silent one would never be written again, not even by the
     * stop. Any asynchronous put lost since the last pass began (the store's ops_failed moved;
     * read before this pass's puts are queued, so a failure of one of them shows at the next)
     * may have been ours: this pass queues every device again. */
    store_stats_t st;
    store_stats_get(p->store, &st);
    p->arr_redo = st.ops_failed != p->arr_ops_failed;
    p->arr_pass_failed = st.ops_failed;
    p->arr_pass_us = p->arr_pass_devices = 0;
    /* The walk pipeline_metrics makes (see device_families): devices live as long as the
     * pipeline, and the first n's next pointers never change once seen under devs_lock. */
    pthread_rwlock_rdlock(&p->devs_lock);
    p->arr_cur = p->devs;
    p->arr_n = HASH_COUNT(p->devs);
    pthread_rwlock_unlock(&p->devs_lock);
    p->arr_i = 0;
    return p->arr_n;
}

/* Walks devices arr_i .. *end-1 of the pass into b (sized for them): those changed since last
 * queued (all when arr_redo). Unless force, stops early once it has held the loop for
 * ARRIVALS_SLICE_US (looked at every 256 devices), setting *end to where it stopped. Returns
 * the last device walked; the caller moves the cursor only when it keeps the slice. */
static struct dev *slice_walk(pipeline_t *p, size_t *end, int force, double t0, struct arr_buf *b)
{
    struct dev *d = p->arr_cur;
    for (size_t i = p->arr_i; i < *end; i++) {
        if (!force && i > p->arr_i && (i - p->arr_i) % 256 == 0 &&
            (vtime_mono_s() - t0) * 1e6 > ARRIVALS_SLICE_US) {
            *end = i;
            break;
        }
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
        if (!p->arr_redo && seen == d->arr_seen && last_ms == d->arr_last && last_ts == d->arr_ts)
            continue;
        b->v[b->n] = (store_arrival_t){d->name, seen, last_ms, last_ts};
        b->d[b->n++] = d;
    }
    return d;
}

int pipeline_arrivals_flush(pipeline_t *p, int force)
{
    if (p->store == NULL)
        return 0;
    const int64_t now = vtime_mono_ms();
    if (pass_begin(p, now, force) == 0)
        return 0;
    /* One slice a tick holds the loop for a bounded time whatever the fleet (bench/arrivals:
     * 100,000 devices in one walk held it about 45 ms); the stop walks them all at once. */
    const double t0 = vtime_mono_s();
    size_t end = force || p->arr_n - p->arr_i <= p->arr_slice ? p->arr_n : p->arr_i + p->arr_slice;
    struct arr_buf b = {calloc(end - p->arr_i, sizeof *b.v), calloc(end - p->arr_i, sizeof *b.d),
                        0};
    int rc = b.v && b.d ? 0 : ERR_NOMEM;
    struct dev *last = rc == 0 ? slice_walk(p, &end, force, t0, &b) : NULL;
    double waited = 0; /* the stop's wait for the queue to drain: not the walk's */
    if (rc == 0 && b.n > 0) {
        rc = store_arrivals_put(p->store, b.v, b.n);
        if (rc == ERR_BUSY && force) { /* the stop: the queue drains, then once more */
            log_info("pipeline: the store's queue is full at the stop: the arrivals of %zu "
                     "devices wait for it to drain",
                     b.n);
            const double tw = vtime_mono_s();
            (void)store_flush(p->store);
            waited = vtime_mono_s() - tw;
            rc = store_arrivals_put(p->store, b.v, b.n);
        }
    }
    if (rc == 0) {
        for (size_t i = 0; i < b.n; i++) {
            b.d[i]->arr_seen = b.v[i].seen_ms;
            b.d[i]->arr_last = b.v[i].last_ms;
            b.d[i]->arr_ts = b.v[i].last_ts;
        }
        if (p->arr_failing && b.n > 0)
            log_info("pipeline: the devices' arrivals are stored again");
        p->arr_failing = p->arr_failing && b.n == 0;
        p->arr_cur = last;
        p->arr_i = end;
        /* The loop's time: the walk and the put's packing (the stop's wait for the queue
         * excepted). */
        int64_t us = (int64_t)((vtime_mono_s() - t0 - waited) * 1e6);
        p->arr_pass_us = us > p->arr_pass_us ? us : p->arr_pass_us;
        p->arr_pass_devices += (int64_t)b.n;
        if (end == p->arr_n) { /* the pass is done */
            p->arr_n = 0;
            p->arr_ops_failed = p->arr_pass_failed;
            if (p->arr_pass_devices > 0) {
                atomic_store_explicit(&p->arr_flush_us, p->arr_pass_us, memory_order_relaxed);
                atomic_store_explicit(&p->arr_flush_devices, p->arr_pass_devices,
                                      memory_order_relaxed);
            }
        }
    } else {
        if (force) /* the stop's flush: nothing tries again (stop.c counts it as lost) */
            log_warn("pipeline: the arrivals of %zu devices not stored (%s) at the stop", b.n,
                     err_str(rc));
        else if (!p->arr_failing)
            log_warn("pipeline: the arrivals of %zu devices not stored (%s); tried again in %d "
                     "ms",
                     b.n, err_str(rc), ARRIVALS_RETRY_MS);
        p->arr_failing = 1;
        /* The pass resumes at this slice a second later (its devices not marked, the cursor
         * not moved). Started over from the first device instead, a pass that queues every
         * device (arr_redo) would queue its first slice again at each retry, and while the
         * queue stayed near full (one put of a few let in) it might never reach its last. */
        if (force) {
            p->arr_n = 0;
            p->arr_next_ms = now + ARRIVALS_RETRY_MS;
        } else {
            p->arr_retry_ms = now + ARRIVALS_RETRY_MS;
        }
    }
    free(b.v);
    free(b.d);
    return rc == 0 ? (int)b.n : rc;
}

struct restore_ctx {
    pipeline_t *p;
    size_t done; /* devices restored */
    int err;     /* the callback's own failure (0: none) */
};

static int on_arrival(void *arg, const store_arrival_t *a)
{
    struct restore_ctx *c = arg;
    struct dev *d = pipeline__dev(c->p, a->device);
    if (d == NULL) {
        c->err = ERR_NOMEM; /* store_arrivals_load stops here and returns 0: said below */
        return 1;
    }
    pthread_mutex_lock(&d->mu);
    atomic_store_explicit(&d->seen_ms, a->seen_ms, memory_order_relaxed);
    if (a->last_ts >= 0 && a->last_ts == d->last_ts)
        d->last_ms = a->last_ms;
    d->arr_seen = a->seen_ms;
    d->arr_last = a->last_ms;
    d->arr_ts = a->last_ts;
    pthread_mutex_unlock(&d->mu);
    c->done++;
    return 0;
}

int pipeline__arrivals_restore(pipeline_t *p)
{
    if (p->store == NULL)
        return 0;
    struct restore_ctx c = {p, 0, 0};
    int rc = store_arrivals_load(p->store, on_arrival, &c);
    /* Out of memory (a device of the table the restore had not made) or the store failing part
     * way (rows read, then an error): the devices read stay restored; for the others, silence
     * and last_seen count from this start (session 60: an out-of-memory stop said nothing). */
    if (rc == 0 && c.err != 0)
        rc = c.err;
    if (rc)
        log_warn("pipeline: the devices' stored arrivals restored for %zu devices, the rest not "
                 "(%s): their silence and last_seen count from the start",
                 c.done, c.err ? err_str(c.err) : store_errmsg(p->store));
    return rc;
}

void pipeline__arrivals_metrics(pipeline_t *p, sbuf_t *out)
{
    store_stats_t st = {0};
    if (p->store != NULL)
        store_stats_get(p->store, &st);
    sbuf_printf(out,
                "# HELP vigil_arrivals_flush_seconds The longest hold of the loop thread by the "
                "last arrivals flush that queued devices: one slice's walk and the packing of "
                "its put.\n"
                "# TYPE vigil_arrivals_flush_seconds gauge\nvigil_arrivals_flush_seconds %.6f\n"
                "# HELP vigil_arrivals_flush_devices Devices whose arrivals that flush queued.\n"
                "# TYPE vigil_arrivals_flush_devices gauge\nvigil_arrivals_flush_devices %lld\n"
                "# HELP vigil_arrivals_write_seconds_total Writer time spent upserting the "
                "devices' arrivals, inside transactions that committed (their commits: "
                "vigil_store_commit_seconds; failed ones, not counted here: "
                "vigil_store_commit_errors_total).\n"
                "# TYPE vigil_arrivals_write_seconds_total counter\n"
                "vigil_arrivals_write_seconds_total %.6f\n"
                "# HELP vigil_arrivals_written_total Devices' arrivals rows upserted by the "
                "writer in transactions that committed.\n"
                "# TYPE vigil_arrivals_written_total counter\n"
                "vigil_arrivals_written_total %llu\n",
                (double)atomic_load_explicit(&p->arr_flush_us, memory_order_relaxed) / 1e6,
                (long long)atomic_load_explicit(&p->arr_flush_devices, memory_order_relaxed),
                st.arrivals_write_seconds, (unsigned long long)st.arrivals_write_rows);
}

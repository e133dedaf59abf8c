/* daemon/health.c: vigild's health, from the store's counters (store_stats_get). The storage
 * check fails when (any of):
 * - the writer is stalled: work waits for it and no transaction finished (committed or failed:
 *   a writer refusing writes on a full disk is turning, not stuck) for the stall bound;
 * - the store refuses writes: the last client transaction failed (a full disk, I/O errors),
 *   none committed since, and that failure is recent: no older than the stall bound. One
 *   failure is enough: it is a client's readings refused now, and a probe wanting to ride out
 *   one blip has its own failure threshold. It passes again with the next commit, or once the
 *   last failure is older than the bound: a circuit breaker, not a latch. A vigild that a load
 *   balancer stops sending writes to (because it answered 503) would otherwise never commit
 *   again and stay out for good; after the bound it is let back in, and the next failure takes
 *   it out again for another bound. The daemon's own writes (predictions, detector state) are
 *   transactions of the same writer, so while the model runs they fail or commit too;
 * - the device maps' reload keeps failing: reads answer 503 meanwhile (storage/maps.c).
 * The systemd watchdog acts on the stall alone (main.c): a restart cures a stuck writer, not a
 * full disk.
 * Lock order: mu is never held across a store call, so it nests under nothing. */
#include "health.h"

#include "err.h"
#include "vtime.h"

#include <stdio.h>

void health_init(health_t *h, store_t *store, int64_t stall_ms)
{
    *h = (health_t){.store = store, .mu = PTHREAD_MUTEX_INITIALIZER};
    atomic_store(&h->stall_ms, stall_ms);
    h->progress_ms = vtime_mono_ms();
}

void health_deinit(health_t *h)
{
    pthread_mutex_destroy(&h->mu);
}

void health_progress_now(health_t *h)
{
    pthread_mutex_lock(&h->mu);
    h->progress_ms = vtime_mono_ms();
    pthread_mutex_unlock(&h->mu);
}

void health_set_stall(health_t *h, int64_t stall_ms)
{
    atomic_store(&h->stall_ms, stall_ms);
}

/* How long (ms) the writer has made no progress while work waits; 0 when it is making some. */
static int64_t stalled_for(health_t *h, const store_stats_t *st, int64_t now)
{
    uint64_t done = st->commits + st->commit_errors;
    int64_t idle = 0;
    pthread_mutex_lock(&h->mu);
    /* done only grows: a look (an HTTP thread, the loop's tick) whose counters were read before
     * another look's can take mu after it, and must not move done back (the next look would
     * take the same step for new progress and restart a stall's clock), */
    if (done > h->done || (st->queue_readings == 0 && st->ops_queued == 0)) {
        if (done > h->done)
            h->done = done;
        if (now > h->progress_ms) /* nor progress_ms, read by that look's clock */
            h->progress_ms = now;
    } else if (now > h->progress_ms) {
        idle = now - h->progress_ms;
    }
    pthread_mutex_unlock(&h->mu);
    return idle;
}

/* Appends one reason to why (size bytes, len used so far); returns the new length. */
static size_t reason(char *why, size_t size, size_t len, const char *text)
{
    if (len >= size)
        return len;
    int k = snprintf(why + len, size - len, "%s%s", len ? "; " : "", text);
    return k > 0 ? len + (size_t)k : len;
}

unsigned health_storage(health_t *h, char *why, size_t size)
{
    store_stats_t st;
    store_stats_get(h->store, &st);
    int64_t now = vtime_mono_ms(), bound = atomic_load(&h->stall_ms);
    int64_t idle = stalled_for(h, &st, now);
    unsigned failing = 0;
    size_t len = 0;
    char text[256];
    why[0] = '\0';
    if (idle > bound) {
        failing |= HEALTH_STALLED;
        snprintf(text, sizeof text,
                 "the storage writer has finished no transaction for %.1f s while %llu readings "
                 "and %llu other writes wait (bound %.1f s)",
                 (double)idle / 1000.0, (unsigned long long)st.queue_readings,
                 (unsigned long long)st.ops_queued, (double)bound / 1000.0);
        len = reason(why, size, len, text);
    }
    if (st.commit_fail_run > 0 && now - st.commit_fail_ms <= bound) {
        failing |= HEALTH_COMMITS;
        char since[64] = "none since start";
        if (st.commit_last_ms > 0)
            snprintf(since, sizeof since, "the last %.1f s ago",
                     (double)(now - st.commit_last_ms) / 1000.0);
        snprintf(text, sizeof text,
                 "writes are refused: the last %llu write transaction%s failed (%s), the latest "
                 "%.1f s ago (counts for %.1f s); commits: %s",
                 (unsigned long long)st.commit_fail_run, st.commit_fail_run == 1 ? "" : "s",
                 err_str(st.commit_last_err), (double)(now - st.commit_fail_ms) / 1000.0,
                 (double)bound / 1000.0, since);
        len = reason(why, size, len, text);
    }
    if (st.maps_reload_fails > 0) {
        failing |= HEALTH_MAPS_STALE;
        snprintf(text, sizeof text,
                 "reloading the device maps failed %d time%s in a row: reads answer 503 until "
                 "it succeeds",
                 st.maps_reload_fails, st.maps_reload_fails == 1 ? "" : "s");
        len = reason(why, size, len, text);
    }
    return failing;
}

size_t health_api_checks(void *ctx, api_check_t *checks)
{
    checks[0].name = "storage";
    checks[0].pass = health_storage(ctx, checks[0].message, sizeof checks[0].message) == 0;
    return 1;
}

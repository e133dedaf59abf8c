/* daemon/health.c: vigild's health, from the store's counters (store_stats_get). The storage
 * check fails when (any of):
 * - the writer is stalled: work waits for it and no transaction finished (committed or failed:
 *   a writer refusing writes on a full disk is turning, not stuck) for the stall bound;
 * - the store refuses writes: the last client transaction failed (a full disk, I/O errors),
 *   none committed since, and that failure is recent: no older than the stall bound, or a
 *   write the store refused without trying since (its back-off after a full disk) is, or the
 *   store refuses them now (refusing(): the window is never shorter than that back-off). One
 *   failure is enough: it is a client's readings refused now, and a probe wanting to ride out
 *   one blip has its own failure threshold. It passes again with the next commit, or once the
 *   last refused write is older than the bound and the store no longer refuses: a circuit
 *   breaker, not a latch. A vigild that a load balancer stops sending writes to (because it
 *   answered 503) would otherwise never commit again and stay out for good; after the bound it
 *   is let back in, and the next failure takes it out again for another bound. The daemon's own
 *   writes (predictions, detector state) are transactions of the same writer, so while the
 *   model runs they fail or commit too;
 * - the device maps' reload keeps failing: reads answer 503 meanwhile (storage/maps.c);
 * - the data folder or vigil.db at its path is not the one the store opened (moved or deleted
 *   while vigild runs: store_files_check; session 68, read68b found /healthz ok then).
 * The systemd watchdog acts on the stall alone (main.c): a restart cures a stuck writer, not a
 * full disk.
 * Lock order: mu is never held across a store call, so it nests under nothing. */
#include "health.h"

#include "err.h"
#include "vtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

/* Appends one reason (printf format) to why (size bytes, len used so far), after "; " when one
 * is there; returns the new length. A reason that does not fit is cut and the message ends with
 * "..." (over the previous reason's end when not even "; " fits): with size HEALTH_WHY_MAX that
 * never happens (health.h; test_daemon_health.c), and a smaller buffer says it was cut but may
 * lose the reasons past the cut. */
static size_t reason(char *why, size_t size, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t reason(char *why, size_t size, size_t len, const char *fmt, ...)
{
    if (len + 1 >= size)
        return len;
    int k = 0;
    if (len == 0 || len + 3 < size) {
        if (len > 0) {
            memcpy(why + len, "; ", 3);
            len += 2;
        }
        va_list ap;
        va_start(ap, fmt);
        k = vsnprintf(why + len, size - len, fmt, ap);
        va_end(ap);
        if (k >= 0 && len + (size_t)k < size)
            return len + (size_t)k;
    }
    if (size < 4)
        return size - 1;
    /* Cut (or no room even for "; "): say so, between two UTF-8 characters (a path in the data
     * folder's reason may hold longer ones; a JSON encoder refuses half of one). */
    size_t at = size - 4;
    while (at > 0 && ((unsigned char)why[at] & 0xC0) == 0x80)
        at--;
    memcpy(why + at, "...", 4);
    return size - 1; /* full: a later reason is not put after the "..." (read69a 4) */
}

/* When the last refused write was (monotonic ms): a failed transaction or, later, a submission
 * the store refused without trying (its back-off after a commit found the disk full). */
static int64_t last_refusal_ms(const store_stats_t *st)
{
    return st->write_refused_ms > st->commit_fail_ms ? st->write_refused_ms : st->commit_fail_ms;
}

/* Whether writes are refused (HEALTH_COMMITS): none committed since the last failure, and a
 * write was refused within the bound or the store refuses them now. Counting the writes refused
 * without trying matters when the bound is no longer than the store's back-off: writes sent during
 * it are refused without a transaction, so with only failed transactions counted, a 1 s bound let a
 * full disk read healthy between the back-off's end and the next failed commit, while clients were
 * being refused. */
static int refusing(const store_stats_t *st, int64_t now, int64_t bound)
{
    return st->commit_fail_run > 0 &&
           (now - last_refusal_ms(st) <= bound || now < st->refusing_until_ms);
}

unsigned health__reasons(const store_stats_t *st, int64_t idle, int64_t now, int64_t bound,
                         char *why, size_t size)
{
    unsigned failing = 0;
    size_t len = 0;
    why[0] = '\0';
    if (idle > bound) {
        failing |= HEALTH_STALLED;
        len = reason(why, size, len,
                     "the storage writer has finished no transaction for %.1f s while %llu "
                     "readings and %llu other writes wait (bound %.1f s)",
                     (double)idle / 1000.0, (unsigned long long)st->queue_readings,
                     (unsigned long long)st->ops_queued, (double)bound / 1000.0);
    }
    if (refusing(st, now, bound)) {
        failing |= HEALTH_COMMITS;
        char since[64] = "none since start", without[96] = "", backoff[96] = "";
        if (st->commit_last_ms > 0)
            snprintf(since, sizeof since, "the last %.1f s ago",
                     (double)(now - st->commit_last_ms) / 1000.0);
        if (st->write_refused_ms > st->commit_fail_ms)
            snprintf(without, sizeof without,
                     ", the latest refused without trying (disk full) "
                     "%.1f s ago",
                     (double)(now - st->write_refused_ms) / 1000.0);
        /* Under a bound shorter than the back-off the check may fail for the back-off alone:
         * say so, or "the latest 0.6 s ago (counts for 0.4 s)" would not explain the 503. */
        if (now < st->refusing_until_ms)
            snprintf(backoff, sizeof backoff,
                     ", and the store refuses writes without trying (disk full) for %.1f s more",
                     (double)(st->refusing_until_ms - now) / 1000.0);
        len = reason(why, size, len,
                     "writes are refused: the last %llu write transaction%s failed (%s), the "
                     "latest %.1f s ago%s (counts for %.1f s)%s; commits: %s",
                     (unsigned long long)st->commit_fail_run, st->commit_fail_run == 1 ? "" : "s",
                     err_str(st->commit_last_err), (double)(now - st->commit_fail_ms) / 1000.0,
                     without, (double)bound / 1000.0, backoff, since);
    }
    if (st->maps_reload_fails > 0) {
        failing |= HEALTH_MAPS_STALE;
        len = reason(why, size, len,
                     "reloading the device maps failed %d time%s in a row: reads answer 503 "
                     "until it succeeds",
                     st->maps_reload_fails, st->maps_reload_fails == 1 ? "" : "s");
    }
    return failing;
}

unsigned health_writer(health_t *h, char *why, size_t size)
{
    store_stats_t st;
    store_stats_get(h->store, &st);
    int64_t now = vtime_mono_ms(), bound = atomic_load(&h->stall_ms);
    return health__reasons(&st, stalled_for(h, &st, now), now, bound, why, size);
}

void health__files_reason(char *why, size_t size, const char *files)
{
    size_t len = strlen(why);
    if (len >= 3 && memcmp(why + len - 3, "...", 3) == 0)
        return; /* cut already (reason's "full"): its "..." stays the end */
    (void)reason(why, size, len, "%s", files);
}

unsigned health_storage(health_t *h, char *why, size_t size)
{
    unsigned failing = health_writer(h, why, size);
    char files[HEALTH_FILES_MAX]; /* the longest reason: 413 bytes (paths cut at 200) */
    if (store_files_check(h->store, files, sizeof files) != 0) {
        failing |= HEALTH_FILES;
        health__files_reason(why, size, files);
    }
    return failing;
}

size_t health_api_checks(void *ctx, api_check_t *checks)
{
    checks[0].name = "storage";
    checks[0].pass = health_storage(ctx, checks[0].message, sizeof checks[0].message) == 0;
    return 1;
}

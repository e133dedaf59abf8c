/* daemon/snapsched.c: snapshots on a schedule (snapsched.h).
 *
 * Its own thread, not the event loop (a copy takes seconds to minutes and would stall ingest),
 * not the writer (the copy reads while the writer writes, and the detectors' saves the copy
 * waits for go through the writer: it would wait on itself), and not the worker pool (its
 * threads score and train devices; a long copy there would hold up a device's work queued
 * behind it). The thread sleeps on a condition variable on the monotonic clock, so a stop or a
 * reload wakes it at once and a change of the wall clock moves no snapshot.
 *
 * Each attempt, whatever its result, starts the next interval: a failure is retried one
 * interval later, never in a tight loop, and a crash loop does not fill the disk (the first is
 * due one interval after the start). A snapshot asked for over HTTP meanwhile does not move the
 * schedule. One that meets another running is skipped (snapshots_take's ERR_BUSY) and logged.
 *
 * Lock: mu guards every_ms, anchor_ms and stopping; never held during a snapshot. */
#include "snapsched.h"
#include "err.h"
#include "log.h"
#include "mcond.h"
#include "vtime.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct snapsched {
    snapshots_t *snaps;
    pipeline_t *pipe;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC */
    int64_t every_ms;    /* 0: off */
    int64_t anchor_ms;   /* monotonic start of the running interval */
    int stopping;
};

/* Takes one snapshot and logs what became of it. Schedule thread. */
static void take_one(snapsched_t *s, int64_t every_ms)
{
    char *msg = NULL;
    int rc = snapshots_take(s->snaps, s->pipe, &msg);
    long long next_s = (long long)(every_ms / 1000);
    if (rc == 0)
        log_info("scheduled snapshot taken (storage.snapshot_every); next in %lld s", next_s);
    else if (rc == ERR_BUSY)
        log_warn("scheduled snapshot skipped: %s; next in %lld s", msg ? msg : err_str(rc), next_s);
    else if (rc != ERR_CLOSED) /* stopping: snapshots_take has said so */
        log_warn("scheduled snapshot failed: %s; next attempt in %lld s", msg ? msg : err_str(rc),
                 next_s);
    free(msg);
}

static void *run(void *arg)
{
    snapsched_t *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        if (s->every_ms == 0) {
            pthread_cond_wait(&s->wake, &s->mu);
            continue;
        }
        int64_t now = vtime_mono_ms(), due = s->anchor_ms + s->every_ms;
        if (now < due) {
            struct timespec ts;
            mcond_deadline(&ts, due - now);
            pthread_cond_timedwait(&s->wake, &s->mu, &ts);
            continue; /* woken early (a stop, a reload) or due: look again */
        }
        s->anchor_ms = now;
        int64_t every = s->every_ms;
        pthread_mutex_unlock(&s->mu);
        take_one(s, every);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int snapsched_start(snapsched_t **out, snapshots_t *snaps, pipeline_t *pipe, int64_t every_ms)
{
    *out = NULL;
    snapsched_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ERR_NOMEM;
    s->snaps = snaps;
    s->pipe = pipe;
    s->every_ms = every_ms;
    s->anchor_ms = vtime_mono_ms();
    int rc = mcond_init(&s->wake);
    if (rc != 0)
        goto fail_cond;
    pthread_mutex_init(&s->mu, NULL);
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        rc = ERR_NOMEM;
        goto fail_thread;
    }
    pthread_setname_np(s->thread, "snapshots");
    *out = s;
    return 0;
fail_thread:
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
fail_cond:
    free(s);
    return rc;
}

void snapsched_set_every(snapsched_t *s, int64_t every_ms)
{
    pthread_mutex_lock(&s->mu);
    if (s->every_ms != every_ms) {
        s->every_ms = every_ms;
        s->anchor_ms = vtime_mono_ms();
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->mu);
}

void snapsched_stop(snapsched_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    free(s);
}

void snapsched_metrics(snapsched_t *s, sbuf_t *out)
{
    pthread_mutex_lock(&s->mu);
    double every = (double)s->every_ms / 1000.0;
    pthread_mutex_unlock(&s->mu);
    sbuf_printf(out,
                "# HELP vigil_snapshot_interval_seconds Interval of scheduled snapshots "
                "(storage.snapshot_every); 0: off.\n"
                "# TYPE vigil_snapshot_interval_seconds gauge\n"
                "vigil_snapshot_interval_seconds %.3f\n",
                every);
}

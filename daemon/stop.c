/* daemon/stop.c: vigild's stop: the signal handlers' part in it, the pipeline's last scoring
 * and saves, and the teardown that frees what the start set up (daemon/main.c starts them).
 *
 * Shutdown order (SIGTERM or SIGINT): stop accepting HTTP connections and let running requests
 * finish; with --demo, ask the feed to stop and keep serving the stream until it has exited (at
 * most DEMO_STOP_WAIT_MS), so every line it sent is stored and acknowledged; then stop
 * accepting stream connections, flush what each one parsed, close storage (which commits
 * everything queued) and exit 0.
 *
 * Threads: the loop thread (the main thread) only; vigild__teardown runs after the loop's last
 * run, on the same thread. */
#include "vigild_int.h"

#include "err.h"
#include "log.h"
#include "pipeline.h"
#include "snapsched.h"
#include "snapshot.h"
#include "testhold.h"
#include "vtime.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tests only (test_maint.py StopTicks, test_stopqueue.py RestartEndRetried): with
 * $VIGIL_TEST_HOLD_DIR/<at> existing, the stop waits at point at (at most 60 s,
 * common/testhold.h): "stop-begin" once the loop has run its last (its maintenance timer closed:
 * no live tick can run any more) and before the first flush, so a test lets a held writer go
 * knowing only the stop's own ticks come after; "stop-tick" before the first maintenance tick,
 * "stop-saves" between it and the saves, "stop-saved" between the saves and the second tick, so
 * a test makes a period end, or kills vigild, there without a timing guess. Unset: one getenv. */
static void stop_hold(const char *at)
{
    test_hold_wait(getenv("VIGIL_TEST_HOLD_DIR"), at, NULL, "stop");
}

/* Scores everything committed and stops the pipeline's work (pipeline_stop: the training under
 * way ends and saves its detectors), saves every detector and waits for the saves' commit, then
 * frees the pipeline (it hands over its last prediction blocks) and waits for that commit.
 * Returns how many detectors' state was lost (the save was refused, or its transaction failed),
 * *other how many of the pipeline's other last writes were lost (prediction blocks, events),
 * *why the first reason (an ERR_); 0 when all were saved. started: as vigild__teardown's, for
 * the closing line's words (after a failed start no stop came: task knobs64). */
static int stop_pipeline(struct daemon *d, int started, uint64_t *other, int *why)
{
    *other = 0;
    if (d->backend.pipe == NULL)
        return 0;
    const double t0 = vtime_mono_s();
    stop_hold("stop-begin");
    store_flush(d->store);
    pipeline_drain(d->backend.pipe);
    /* A training that ends at the stop saves its detectors: ended and committed before the
     * stop's saves (else its failed save was counted as a "last write"), which supersede it
     * (each device's newest state). The model versions it stores are last writes. */
    store_stats_t begun, before, ticked, saved, after;
    store_stats_get(d->store, &begun);
    pipeline_stop(d->backend.pipe);
    int frc = store_flush(d->store);
    store_stats_get(d->store, &before);
    *other = (before.ops_failed - begun.ops_failed) -
             (before.detector_saves_failed - begun.detector_saves_failed);
    if (*other > 0)
        *why = frc ? frc : before.commit_last_err;
    int queued = 0, refused = 0;
    /* The periods that ended since the loop's last tick (its timer stopped with the stream,
     * before the flushes and the training's end above) end now, before the saves: a restore
     * takes a period that ended before a detector's save (its saved_ms) as seen by this vigild
     * (pipeline__maint_restore_ended), so none may end unseen before the save. The saves take
     * seconds with thousands of devices (a full queue waits for the writer): a period that ends
     * meanwhile is ended by a second tick, whose end_episode saves that device again, after its
     * end (a tick walks the devices only when a period's boundary passed). That tick comes
     * after the flush: its puts do not wait for a full queue (op_enqueue refuses them), and
     * save_all returns with up to STORE_OPS_MAX of its own still queued (the second reader's
     * finding); they are committed by the flush after pipeline_destroy. */
    stop_hold("stop-tick");
    pipeline_maint_tick(d->backend.pipe);
    /* The first tick's puts (an ended episode's event and its detector's save) are committed
     * before the saves, in transactions of their own: a failure of theirs (an event's insert)
     * does not take the stop's saves with it, and is counted apart. Its failed event ends are
     * "other" lost writes; its failed detector saves are not lost detectors: the stop's save
     * of that device, queued after them, holds the newer state (counted below if it fails
     * too). Counting them with the stop's saves said a detector lost whose state the stop's
     * own save had committed (review of stop3, session 58). */
    frc = store_flush(d->store);
    store_stats_get(d->store, &ticked);
    *other += (ticked.ops_failed - before.ops_failed) -
              (ticked.detector_saves_failed - before.detector_saves_failed);
    if (*other > 0 && *why == 0)
        *why = frc ? frc : ticked.commit_last_err;
    stop_hold("stop-saves");
    int lost = pipeline_save_all(d->backend.pipe, &queued, &refused);
    const int tried = queued + lost; /* queued, or refused (lost) */
    if (*why == 0)
        *why = refused;
    /* The saves are asynchronous: a failed transaction loses every put it held, counted by the
     * store (detector_saves_failed: exactly the detectors' saves, whatever else it held). They
     * are committed before the pipeline's last writes are queued, so a failure of those
     * (prediction blocks, events) does not take the detectors' state with it. The count is the
     * stop's saves, one a device: at most `queued`. */
    frc = store_flush(d->store);
    store_stats_get(d->store, &saved);
    stop_hold("stop-saved");
    pipeline_maint_tick(d->backend.pipe);
    uint64_t failed = saved.detector_saves_failed - ticked.detector_saves_failed;
    *other += (saved.ops_failed - ticked.ops_failed) - failed; /* none but the saves expected */
    if (failed > 0) {
        lost += failed < (uint64_t)queued ? (int)failed : queued;
        if (*why == 0)
            *why = frc ? frc : saved.commit_last_err;
    }
    /* The devices' arrivals as the last scoring left them, committed by the flush below: a
     * put refused here, or its transaction failed, counts as one of the other last writes. */
    int arc = pipeline_arrivals_flush(d->backend.pipe, 1);
    if (arc < 0) {
        (*other)++;
        if (*why == 0)
            *why = arc;
    }
    pipeline_log_flush(d->backend.pipe, 1); /* the counts no later line will say */
    pipeline_destroy(d->backend.pipe);
    d->backend.pipe = NULL;
    frc = store_flush(d->store);
    store_stats_get(d->store, &after);
    *other += after.ops_failed - saved.ops_failed;
    if (*other > 0 && *why == 0)
        *why = frc ? frc : after.commit_last_err;
    /* With thousands of devices the saves wait for the store's queue (seconds; systemd's
     * timeout is extended meanwhile): the log says what they were and how long they took. */
    /* Every detector the saves tried, and how many of them were lost, as the closing error line
     * counts them (once this said the saves queued only: 85 where that line said 200 lost,
     * read66b's finding 7). */
    char notsaved[64] = "";
    if (lost > 0)
        snprintf(notsaved, sizeof notsaved, ", %d of them not saved", lost);
    log_info("pipeline: %s (%d detectors%s, the devices' newest predictions) took %.1f s",
             started ? "the stop's last scoring and saves"
                     : "after the failed start, the scoring still queued and the saves",
             tried, notsaved, vtime_mono_s() - t0);
    return lost;
}

/* Ends the snapshot schedule before the pipeline it saves detectors of: a scheduled copy still
 * running is cancelled (snapshots_close, as for the POST's), so the stop does not wait for it. */
static void stop_schedule(struct daemon *d)
{
    if (d->backend.snaps)
        snapshots_close(d->backend.snaps);
    snapsched_stop(d->backend.sched);
    d->backend.sched = NULL;
}

/* The loop may end with the signal handles still open: they no longer keep it running, but
 * their handlers stay installed, so a second SIGTERM, a Ctrl-C or a SIGHUP while storage
 * flushes and detectors are saved (which can take long) is caught and has no effect. Closing
 * them here, as vigild once did, made libuv restore the default actions: a SIGHUP then ended
 * vigild unflushed, and so did a SIGTERM in the moment before vigild set SIG_IGN (CI saw it). */
static void signals_release(struct daemon *d)
{
    if (!d->signals_on)
        return;
    uv_unref((uv_handle_t *)&d->sigterm);
    uv_unref((uv_handle_t *)&d->sigint);
    uv_unref((uv_handle_t *)&d->sighup);
}

/* Closes the signal handles (a run of the loop finishes the closes) and ignores the three
 * signals from then on: after a stop has closed storage, or when a start fails (whose run of
 * the loop must not call the handlers). Only a signal in the moment between libuv's restore of
 * the default action and SIG_IGN can still end vigild, with everything already on disk. */
void vigild__signals_close(struct daemon *d)
{
    if (!d->signals_on)
        return;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    d->signals_on = 0;
}

static void on_stream_closed(void *arg)
{
    struct daemon *d = arg;
    d->stream = NULL;
    d->backend.stream = NULL;
    demo_kill(&d->demo); /* still running only when it outlived demo_stop's wait */
    notify_stop(&d->notify);
    if (d->maint_timer_on)
        uv_close((uv_handle_t *)&d->maint_timer, NULL);
    d->maint_timer_on = 0;
    if (d->health_timer_on)
        uv_close((uv_handle_t *)&d->health_timer, NULL);
    d->health_timer_on = 0;
    signals_release(d);
}

/* Loop thread: the demo feed has exited (or will not in time): the stream stops. */
static void close_stream(void *arg)
{
    struct daemon *d = arg;
    if (d->stream)
        stream_shutdown(d->stream, on_stream_closed, d);
    else
        on_stream_closed(d);
}

/* What the start's handler noted (vigild__start_signals): written only by it, read by the main
 * thread. The only mutable globals of vigild: a signal handler has no argument to carry them.
 * Atomic, not volatile sig_atomic_t: the handler runs on whichever thread the signal lands on
 * (the writer's, a shard's), and volatile orders nothing between threads; a lock-free atomic
 * is async-signal-safe (C11 7.14.1.1). */
static atomic_int start_stop_signum, start_hup;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the start's signal handler needs lock-free atomics");

static void on_start_signal(int signum)
{
    if (signum == SIGHUP) {
        atomic_store(&start_hup, 1);
    } else {
        int none = 0; /* the first stop signal is the one the log names */
        atomic_compare_exchange_strong(&start_stop_signum, &none, signum);
    }
}

void vigild__start_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_start_signal;
    sa.sa_flags = SA_RESTART; /* the start's reads and writes go on as if no signal came */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

int vigild__start_stop(void)
{
    return atomic_load(&start_stop_signum);
}

int vigild__start_signals_end(struct daemon *d)
{
    if (atomic_load(&start_hup))
        log_info("SIGHUP during the start: ignored (this start has just read the "
                 "configuration; send it again to reload)");
    int signum = atomic_load(&start_stop_signum);
    if (signum == 0)
        return 0;
    d->stopping = 1;
    /* As vigild__on_stop_signal: another process's lock delays the stop's saves by 5 s in all,
     * not 10 s each (review of ops66: this path had the start's waits). */
    store_stop_begin(d->store);
    log_info("signal %d during the start: stopping before serving (%s); nothing was "
             "acknowledged",
             signum,
             d->backend.pipe && !d->restored ? "the detectors' restore skipped"
                                             : "the start's work finished first");
    notify_send(&d->notify, "STOPPING=1\nSTATUS=stopping: a stop signalled during the start");
    notify_extend_start(&d->notify, "stopping: saving detectors");
    return signum;
}

void vigild__on_stop_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (d->stopping) {
        log_warn("second signal %d while stopping; still flushing", signum);
        return;
    }
    d->stopping = 1;
    /* Another process's lock on the database delays the stop by 5 s at most, not 10 s per
     * transaction and 10 s more for the final checkpoint (store_stop_begin). */
    store_stop_begin(d->store);
    /* A snapshot asked for from now on is refused (503), and a running one cancelled: a copy of
     * a large database must not hold the stop up beyond TimeoutStopSec=. (Before the log line,
     * which says the stop has begun.) */
    snapshots_close(d->backend.snaps);
    /* So is every HTTP request from now on (503): a client that reads the log line and then
     * sends must not find its request run (test_stop.py relies on it). */
    api_refuse(d->api);
    log_info("signal %d: stopping intake and flushing", signum);
    notify_send(&d->notify, "STOPPING=1\nSTATUS=stopping: flushing accepted readings");
    /* Flushing, waiting for training and saving every detector can outlast TimeoutStopSec=. */
    notify_extend_start(&d->notify, "stopping: flushing accepted readings, saving detectors");
    if (d->stream)
        stream_set_api(d->stream, NULL);
    /* Running handlers finish (their writes commit) and the listening socket closes. The API is
     * stopped before storage closes so no handler can write to a closed store. (No
     * MHD_quiesce_daemon first: with a thread pool and epoll it raced a worker's own removal of
     * the listen socket and aborted vigild with "Failed to remove listen FD from epoll set".) */
    api_stop(d->api);
    d->api = NULL;
    /* The demo feed (Ctrl-C reaches it too) sends its last lines, ends its output and reads
     * their answers before it exits: the stream keeps serving until then, or the lines it sent
     * as we stopped would be left unread and unacknowledged. */
    demo_stop(&d->demo, close_stream, d);
}

/* Once the loop has run its last (a normal stop, or a failed start): stops the schedule and the
 * pipeline, then frees the snapshots, the events hub, the store, the quota, the loop and the
 * systemd notification, in that order. Returns 0, or 1 when the stop lost what it had to write
 * (logged here, one error line naming it). started: the daemon ran (a stop), not a failed start,
 * whose log must not read "stopped, but". */
int vigild__teardown(struct daemon *d, int started)
{
    stop_schedule(d);
    uint64_t other = 0;
    int why = 0, lost = stop_pipeline(d, started, &other, &why);
    snapshots_destroy(d->backend.snaps);
    api_events_destroy(d->events); /* after the API and the pipeline, its two users */
    int crc = store_close_wal(d->store, &d->wal_kept);
    /* Acknowledged readings are never among the losses: a reading is acknowledged only once
     * committed. What store_close lost was never acknowledged (its submitters were told). */
    const char *when = started ? "stopped, but" : "after the failed start,";
    char others[128] = "";
    if (other > 0)
        snprintf(
            others, sizeof others,
            "%s%llu of the pipeline's last writes (prediction blocks, events, arrivals) %s lost",
            lost > 0 ? "; " : "", (unsigned long long)other, other == 1 ? "was" : "were");
    if (lost > 0)
        log_error("%s %d detector%s state could not be saved: %s; they start from their last "
                  "saved state next time%s",
                  when, lost, lost == 1 ? "'s" : "s'", err_str(why ? why : crc), others);
    else if (other > 0)
        log_error("%s %s: %s", when, others, err_str(why ? why : crc));
    else if (crc != 0)
        log_error("%s the store's last writes could not be committed: %s (no acknowledged "
                  "reading is among them)",
                  when, err_str(crc));
    if (d->health.store != NULL)
        health_deinit(&d->health);
    quota_destroy(d->quota);
    vigild__signals_close(d);
    uv_run(&d->loop, UV_RUN_DEFAULT); /* finishes the closes, which uv_loop_close needs */
    uv_loop_close(&d->loop);
    notify_deinit(&d->notify);
    return lost > 0 || other > 0 || crc != 0;
}

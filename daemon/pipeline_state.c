/* daemon/pipeline_state.c: a device's state on the event streams ("event: state", GET
 * /v1/events?types=state), bounded per device.
 *
 * Every scored reading compares its state with the one last published (dev.st_sent) and does
 * nothing more while they agree: no lock, no allocation, no hub call. A change (learning ->
 * normal at the first model too; a training, an acceptance or a maintenance that changes the
 * status at once, through pipeline__state_follows) is published at once when the device's last
 * state message is at least the interval (o.state_min_ms, which a reload changes:
 * pipeline_set_state_min_ms) old; else it is held: the device is pushed once onto p->held, and
 * later changes within the interval only update the state it has. The loop's
 * 250 ms tick (pipeline_maint_tick -> pipeline__state_flush) publishes, once the interval
 * ended, the state then current, unless it is the one last published (a warning that came
 * and went inside the interval is never sent) and no stream opened since that message (one
 * that did may have read the status in between: it is told the state again, state and
 * "previous" the same). So a stream holds every device's current state within about the
 * interval + 250 ms, and a flapping device costs one message per interval.
 *
 * Messages are published under the device's mu (lock order dev.mu -> the hub's, as anomaly
 * events are), so each device's messages reach the ring in the order of its changes and their
 * "previous" chain. At shutdown a held change is dropped with the hub (a client of the next run
 * gets a reset). A deleted device's held change is dropped and its chain starts again at
 * learning (pipeline_forget); the delete itself is no state message.
 *
 * Threads: pipeline__state_note whoever holds the device's mu (its shard, a training thread,
 * an API thread); pipeline__state_flush the loop thread only. */
#include "log.h"
#include "pipeline_int.h"

#include <stdlib.h>

/* The state interval now (a reload may change it). */
static unsigned interval(pipeline_t *p)
{
    return atomic_load_explicit(&p->state_min_ms, memory_order_relaxed);
}

void pipeline_set_state_min_ms(pipeline_t *p, unsigned ms)
{
    atomic_store_explicit(&p->state_min_ms, ms, memory_order_relaxed);
}

/* Publishes d's shown state if it is not the one last published (or again: even then), and
 * starts d's interval. Caller holds d->mu. */
static void publish(pipeline_t *p, struct dev *d, int64_t now_ms, int again)
{
    const uint8_t st = PIPE_SHOWN_STATE(d);
    if (st == d->st_sent && !again)
        return;
    /* Read before the message: a stream opened between the two gets it and counts as new (at
     * most one repeat more). */
    const uint64_t opened = api_events_opened(p->o.hub);
    char *js = pipeline__state_json(d, d->st_sent);
    if (js == NULL) {
        /* Not sent: the change is noticed again at the next reading. */
        log_warn("pipeline: state message of '%s' not published: out of memory", d->name);
        return;
    }
    api_events_publish(p->o.hub, API_EVENT_STATE, d->name, js);
    free(js);
    d->st_sent = st;
    d->st_opened = opened;
    d->st_next_ms = now_ms + (int64_t)interval(p);
}

/* Pushes d onto p->held (d->st_held set first). Caller holds d->mu. */
static void hold(pipeline_t *p, struct dev *d)
{
    d->st_held = 1;
    struct dev *top = atomic_load_explicit(&p->held, memory_order_relaxed);
    do
        d->held_next = top;
    while (!atomic_compare_exchange_weak_explicit(&p->held, &top, d, memory_order_release,
                                                  memory_order_relaxed));
}

void pipeline__state_note(pipeline_t *p, struct dev *d, int64_t now_ms)
{
    if (p->o.hub == NULL || d->st_held) /* held: the flush sends the state it then has */
        return;
    if (now_ms < d->st_next_ms)
        hold(p, d);
    else
        publish(p, d, now_ms, 0);
}

void pipeline__state_flush(pipeline_t *p, int64_t now_ms)
{
    if (atomic_load_explicit(&p->held, memory_order_relaxed) == NULL)
        return;
    struct dev *d = atomic_exchange_explicit(&p->held, NULL, memory_order_acquire);
    /* A reload that lowered the interval: no held change waits longer than the new one. */
    const int64_t latest = now_ms + (int64_t)interval(p);
    while (d) {
        struct dev *next = d->held_next; /* nobody writes it while d is off the stack */
        pthread_mutex_lock(&d->mu);
        if (d->st_next_ms > latest)
            d->st_next_ms = latest;
        if (atomic_load_explicit(&d->deleted, memory_order_relaxed)) {
            d->st_held = 0; /* pipeline_forget restarted its chain */
        } else if (now_ms >= d->st_next_ms) {
            d->st_held = 0;
            /* A held change that returned to the state last published is not sent, unless a
             * stream opened since that message: its reader may have read the status in
             * between (README: read it first) and would never hear the state it returned to
             * (task stflake). It is told again, "previous" the same state: one message. */
            publish(p, d, now_ms, api_events_opened(p->o.hub) != d->st_opened);
        } else {
            hold(p, d); /* its interval goes on: the next tick looks again */
        }
        pthread_mutex_unlock(&d->mu);
        d = next;
    }
}

/* daemon/pipeline_events.c: a device's anomaly events, opened, extended and closed as the
 * detector's state goes in and out of anomaly; see pipeline_int.h.
 *
 * Open, extend, close. After each scored reading the device's shard calls pipeline__track_event:
 * the reading that enters state anomaly opens an event (the next id, d->next_event_id, or in the
 * restore's catch-up the id of the stored row it opens again: event_next_id; the detector's
 * opened_by), every reading in the episode raises its peak (the likelihood, or the
 * reported score where higher: a trip's) and adds
 * to its channel shares and to d->lean (the shares signed by the side of the prediction each
 * reading was on), and the first reading out of anomaly ends it with the detector's ended_by
 * (PIPE_END_RESET when the detector started over). An operator's accept and a maintenance period
 * that begins (or ends, the device silent through it) end it too (pipeline__event_end, which
 * can also answer an episode with no kept event as an unstored event with id 0). Each opening
 * and each end is stored and published to the event streams (persist_event).
 *
 * The chain rule (docs/reliability.md, "One fault, one chain"). An event continues the one
 * before it when that one ended "cleared" at most continue_within() readings earlier (counted
 * in d->scored, same detector: d->gen), the ids are consecutive, and the same channel leads
 * both (largest share) on the same side of its prediction: it then carries the first event's
 * fault id. d->cleared remembers the candidate from its end (event_note_end) to the next opening
 * (event_link), which consumes it; an accept, a maintenance period, a rollback, a PUT of
 * weights or a training's swap breaks the chain (pipeline__event_chain_break, which stores
 * "chain_broken" on the cleared event so a restart does not bring it back). A maintenance
 * period that begins, a rollback, a PUT of weights and a training's swap also mark the event
 * open then (pipeline__event_break_open): should it still end cleared, it is not remembered.
 * A swap keeps d->gen (the detector and its state go on), so it breaks the chain explicitly:
 * the chain promises one fault seen by one model (task evcont6).
 *
 * Sides. An active event's side per channel is the sign of d->lean (on an exact tie, the side of
 * the channel's newest reading off its prediction: d->lean_seen, d->lean_up); at its end the
 * sides are fixed into e->above / e->below (event_sides_fix), which its JSON and stored row
 * name.
 *
 * Restore. At a restart an event restored active gets its sides back from d->lean as saved
 * with the detector (pipeline_store.c, blob format 5), or from its stored JSON when the save has
 * none (pipeline__event_sides_restore; its mark from the JSON either way), and d->cleared is
 * rebuilt from the newest stored event when it ended cleared, was not broken, and no more than
 * continue_within() readings were stored after its end before the stop
 * (pipeline__event_chain_restore, which first stores the end the restore gave an event stored
 * open that the saved detector was not in: end_lost_restore). A maintenance period
 * that began while vigild was stopped
 * (restored current or past, so never announced as beginning) breaks the rebuilt chain and marks
 * the event restored active.
 *
 * Invariants: d->events holds at most o.events events, oldest first (the oldest dropped for a
 * new one); only the last may be active (end_ts < 0); ids grow by one per event opened. An
 * ended event's sides never change. d->cleared names at most one event, the newest, ended
 * cleared, until the next opening or a break forgets it (its info owned, freed by
 * cleared_forget); the bound in readings is checked where it is used.
 *
 * Threads: every entry point runs with d->mu held and takes no other lock of the pipeline's
 * (under it persist_event and the chain break put to the store, and persist_event publishes to
 * the hub, as the step does). pipeline__track_event: the device's shard (point_finish), the
 * restore's catch-up included. pipeline__event_end: the shard (a reading in a maintenance
 * period), an API thread (accept, a maintenance POST or DELETE), the loop (a period's end by
 * the clock, pipeline_maint_tick) or the restore (a period that ended while vigild was
 * stopped). pipeline__event_chain_break: those and
 * the rollback and weights PUT. pipeline__event_break_open: the loop (pipeline_maint_tick),
 * an API thread (a maintenance DELETE, the rollback and weights PUT), a training thread (a
 * swap, pipeline_train.c's member_apply) or the restore.
 * pipeline__event_chain_restore and pipeline__event_sides_restore: the restore, before readings
 * flow; the chain restore queries the store, so not inside another query's callback.
 * pipeline__event_add / pipeline__events_clear: with d->mu, or d not shared. */
#include "err.h"
#include "log.h"
#include "pipeline_int.h"
#include "pipeline_events_int.h"
#include "vtime.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct event *pipeline__event_add(pipeline_t *p, struct dev *d)
{
    if (p->o.events == 0)
        return NULL;
    if (d->nevents == p->o.events) { /* drop the oldest */
        free(d->events[0].note);
        memmove(d->events, d->events + 1, (d->nevents - 1) * sizeof *d->events);
        d->nevents--;
    }
    if (d->nevents == d->events_room) {
        size_t room = d->events_room ? 2 * d->events_room : 1;
        if (room > p->o.events)
            room = p->o.events;
        struct event *ev = realloc(d->events, room * sizeof *ev);
        if (ev == NULL)
            return NULL;
        d->events = ev;
        d->events_room = room;
    }
    struct event *e = &d->events[d->nevents++];
    memset(e, 0, sizeof *e);
    return e;
}

void pipeline__events_clear(struct dev *d)
{
    for (size_t i = 0; i < d->nevents; i++)
        free(d->events[i].note);
    d->nevents = 0;
}

/* Queues the put of an event's row js (NULL, or no store: nothing) to the store: an
 * asynchronous job, refused when the queue is full or the disk is (logged with the error unless
 * quiet: the caller says it), never waited for. Returns 0 (queued, or nothing to put) or
 * store_event_put's code. */
static int row_put(pipeline_t *p, struct dev *d, uint64_t id, int64_t start_ts, int64_t end_ts,
                   const char *js, int quiet)
{
    int rc =
        js && p->store ? store_event_put(p->store, d->name, (int64_t)id, start_ts, end_ts, js) : 0;
    if (rc && !quiet)
        log_warn("pipeline: anomaly event of '%s' not saved (%s)", d->name,
                 rc == ERR_BUSY ? "store busy" : err_str(rc));
    return rc;
}

/* Stores the event as it opened or ended, with js (owned, freed; NULL: out of memory), and
 * publishes it to the event streams (GET /v1/events) as GET .../anomalies lists it now; when
 * stored_only, publishes it only when its put was queued (a restore's "restart" end that the
 * store refused stays open in the store until pipeline__restart_retry puts it again, which
 * publishes it then: the stream must not say it ended before) and logs no refusal (the restore
 * says it, once per row or in its summary). Returns row_put's status
 * (ERR_NOMEM when its JSON could not be made and there is a store). Caller holds d->mu. */
static int persist_js(pipeline_t *p, struct dev *d, const struct event *e, char *js,
                      int stored_only)
{
    int rc = js == NULL && p->store ? ERR_NOMEM
                                    : row_put(p, d, e->id, e->start_ts, e->end_ts, js, stored_only);
    if (rc == 0 || !stored_only)
        api_events_publish(p->o.hub, API_EVENT_ANOMALY, d->name, js);
    free(js);
    return rc;
}

static int persist_event(pipeline_t *p, struct dev *d, const struct event *e)
{
    if (p->store == NULL && p->o.hub == NULL)
        return 0;
    return persist_js(p, d, e, pipeline__event_json(d, e), 0);
}

/* The stored row's JSON with e's "restart" end set, all else (its channels) as stored; NULL
 * out of memory or when stored is no JSON object. Caller owns; free. */
static char *restart_json(const struct event *e, const char *stored)
{
    json_t *v = json_loads(stored, 0, NULL);
    char *s = NULL;
    if (!json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    json_object_set_new(v, "end_ts", json_integer(e->end_ts));
    json_object_set_new(v, "end", pipeline__jtime(e->end_ts));
    json_object_set_new(v, "active", json_false());
    json_object_set_new(v, "ended_by", json_string(pipeline__end_names[PIPE_END_RESTART]));
    (void)pipeline__dump(v, &s);
    return s;
}

int pipeline__event_restart_store(pipeline_t *p, struct dev *d, const struct event *e,
                                  const char *stored, const char *how, int quiet)
{
    /* A device restored without a detector knows no channels: its row's JSON is kept. A row
     * whose JSON is no object (or out of memory) gets a fresh one of the end, as e has it:
     * before session 61 its end failed as "out of memory" at every start. */
    if (p->store == NULL && p->o.hub == NULL)
        return 0;
    char *js = stored && d->nch == 0 ? restart_json(e, stored) : NULL;
    if (js == NULL)
        js = pipeline__event_json(d, e);
    /* A copy kept until the end is known stored, put again while vigild runs when its put is
     * refused now or its transaction fails (pipeline__restart_keep, session 61). */
    char *copy = js && p->store ? strdup(js) : NULL;
    int rc = persist_js(p, d, e, js, 1);
    if (rc == 0)
        atomic_fetch_add_explicit(&p->ended[PIPE_END_RESTART], 1, memory_order_relaxed);
    /* Not kept (out of memory: its JSON, the copy or the list): counted and said at the
     * restore's end; a refused one is then left open to the next restart. */
    const int kept = p->store == NULL || pipeline__restart_keep(p, d, e, copy, rc == 0, 0) == 0;
    if (quiet)
        return rc;
    if (rc) {
        log_warn("pipeline: anomaly event %llu of '%s' was stored open %s: its \"restart\" end "
                 "not stored (%s), %s",
                 (unsigned long long)e->id, d->name, how, err_str(rc),
                 kept ? "put again while vigild runs"
                      : "not kept to be put again (out of memory): left open to the next restart");
        return rc;
    }
    log_warn("pipeline: anomaly event %llu of '%s' was stored open %s: ended \"restart\" at %lld",
             (unsigned long long)e->id, d->name, how, (long long)e->end_ts);
    return 0;
}

/* An event continues the one before it when that one ended "cleared" at most
 * o.continue_within readings before it opened ([pipeline] event_continue_within; -1, "auto":
 * PIPE_CONTINUE_SHORTS err_short readings; docs/reliability.md, "One fault, one chain"): the
 * detector's quiet after an end is err_short readings, and a fault that is still there opens
 * again soon after it (the seventy-second round's overshoot in
 * tests/integration/test_evcont.py: 10 readings after the end); twice that leaves as much
 * again for an error that takes a few readings to build. 0: no event continues another. */
#define PIPE_CONTINUE_SHORTS 2

static uint64_t continue_within(const pipeline_t *p)
{
    if (p->o.continue_within >= 0)
        return (uint64_t)p->o.continue_within;
    return PIPE_CONTINUE_SHORTS * (uint64_t)p->o.det.err_short;
}

static int sign_of(float v)
{
    return v > 0 ? 1 : v < 0 ? -1 : 0; /* NaN: 0 */
}

/* The channel with the largest share (the first of equals), -1 when none has any. */
static int lead_channel(const float *share, int nch)
{
    int lead = -1;
    for (int c = 0; c < nch; c++)
        if (share[c] > 0 && (lead < 0 || share[c] > share[lead]))
            lead = c;
    return lead;
}

static int mask_side(uint64_t above, uint64_t below, int c)
{
    return (above >> c & 1) ? 1 : (below >> c & 1) ? -1 : 0;
}

/* The active event's side for channel c: the sign of d->lean, the newest leaning reading's on a
 * tie; 0 when no reading leaned it. */
static int lean_side(const struct dev *d, int c)
{
    const int side = sign_of(d->lean[c]);
    if (side != 0 || !(d->lean_seen >> c & 1))
        return side;
    return (d->lean_up >> c & 1) ? 1 : -1;
}

int pipeline__event_side(const struct dev *d, const struct event *e, int c)
{
    int side = e->end_ts < 0 ? lean_side(d, c) : 0;
    return side ? side : mask_side(e->above, e->below, c);
}

/* On the reading (or the operator's action) that ends e, the active event: its sides are
 * fixed from d->lean (a restored event's where d->lean has none). */
static void event_sides_fix(const struct dev *d, struct event *e)
{
    uint64_t above = 0, below = 0;
    for (int c = 0; c < d->nch; c++) {
        int side = lean_side(d, c);
        if (side == 0)
            side = mask_side(e->above, e->below, c);
        above |= (uint64_t)(side > 0) << c;
        below |= (uint64_t)(side < 0) << c;
    }
    e->above = above;
    e->below = below;
}

void pipeline__event_sides_restore(struct dev *d, struct event *e, const char *info_json)
{
    int lead;
    uint64_t fault;
    (void)pipeline__event_info_read(d, info_json, &e->above, &e->below, &lead, &fault, NULL);
    /* The row is stored when the event opens (and when a break marks it), so its sides are
     * the opening reading's (or, for the catch-up's provisional opening, those gathered up to
     * the reading that numbered it: read65): only a save older than blob format 5, which has
     * no lean, takes them as the whole episode's (a trip's reading can lean the other way from
     * the episode that goes on after it). */
    if (!e->lean_kept) {
        for (int c = 0; c < d->nch; c++)
            d->lean[c] = (float)mask_side(e->above, e->below, c) * e->share[c];
        d->lean_seen = e->above | e->below;
        d->lean_up = e->above;
    }
    if (pipeline__event_info_broken(info_json))
        e->chain_broken = 1; /* a period began while it was open (pipeline__event_break_open) */
}

/* Whether one of d's maintenance periods had begun by now_ms and not yet ended at ts (a
 * reading of an event): it began after that reading, or holds it. Caller holds d->mu. */
static int period_begun_since(const struct dev *d, int64_t ts, int64_t now_ms)
{
    for (int k = 0; k < d->nmaint; k++)
        if (d->maint[k].start_ms <= now_ms && d->maint[k].end_ms > ts)
            return 1;
    return 0;
}

static void cleared_forget(struct dev *d)
{
    free(d->cleared.info);
    d->cleared.info = NULL;
    d->cleared.id = 0;
}

void pipeline__event_chain_break(pipeline_t *p, struct dev *d)
{
    struct event *e = d->nevents ? &d->events[d->nevents - 1] : NULL;
    /* Stored "chain_broken", so that a restart does not restore the chain (review): the
     * cleared event is the newest (an opening consumes it), in d->events or restored. Only
     * within the bound: beyond it nothing continues it anyway, and an old row may be gone by
     * retention (a put would bring it back). */
    if (d->cleared.id != 0 && d->cleared.gen == d->gen && p->store != NULL &&
        d->scored - d->cleared.scored <= continue_within(p)) { /* else nothing can continue it */
        char *js = NULL;
        int64_t start_ts = d->cleared.start_ts, end_ts = d->cleared.end_ts;
        if (e && e->id == d->cleared.id && e->end_ts >= 0) {
            e->chain_broken = 1;
            js = pipeline__event_json(d, e);
            start_ts = e->start_ts, end_ts = e->end_ts;
        } else if (d->cleared.info) {
            js = pipeline__event_info_break(d->cleared.info);
        }
        row_put(p, d, d->cleared.id, start_ts, end_ts, js, 0);
        free(js);
    }
    cleared_forget(d);
}

/* Breaks the chain and marks the event open now, if any, chain_broken: should it still end
 * "cleared", it is not remembered (event_note_end), so that nothing after continues it. A
 * period's start: open across it (no reading in the period yet, which would have ended it
 * "maintenance"), readings timestamped before the period (a device whose clock is behind, a
 * late batch) may still end it "cleared". A rollback, new weights or a training's swap: another
 * model judges the readings from here (tasks evcont5, evcont6). Its row is stored with the
 * mark now (not published: the event itself did not change), so an event active across a
 * restart keeps it (pipeline__event_sides_restore reads it back). */
void pipeline__event_break_open(pipeline_t *p, struct dev *d)
{
    struct event *e = d->nevents ? &d->events[d->nevents - 1] : NULL;
    pipeline__event_chain_break(p, d);
    if (e == NULL || e->end_ts >= 0 || e->chain_broken)
        return;
    e->chain_broken = 1;
    if (p->store && !e->prov) { /* provisional: stored with the mark once numbered */
        char *js = pipeline__event_json(d, e);
        row_put(p, d, e->id, e->start_ts, e->end_ts, js, 0);
        free(js);
    }
}

/* Counts the points store_query reports (its limit bounds them): the count is all that is
 * wanted. */
static int count_point(void *arg, int64_t ts, size_t n, const char *const *ch, const double *v)
{
    (void)ts, (void)n, (void)ch, (void)v;
    ++*(uint64_t *)arg;
    return 0;
}

/* The newest stored event (store_events_query's first): its id, end and JSON (owned). */
struct newest_event {
    uint64_t id;
    int64_t start_ts, end_ts;
    char *info;
};

static int on_newest_event(void *arg, const char *device, int64_t id, int64_t start_ts,
                           int64_t end_ts, const char *info_json)
{
    struct newest_event *ne = arg;
    (void)device;
    ne->id = id > 0 ? (uint64_t)id : 0;
    ne->start_ts = start_ts;
    ne->end_ts = end_ts;
    if (ne->info == NULL)
        ne->info = strdup(info_json);
    return 0; /* limit 1: the only one */
}

/* The end the restore gave d's newest active event (pipeline_restore_events.c event_restore:
 * "restart", the event stored open while the saved detector was in no episode, its end lost: the
 * stop's first tick, whose event end failed while its detector saves committed, or a put the busy
 * store refused while vigild ran; docs/reliability.md, "Builds told apart, an event left open by a
 * failed stop, leftovers (session 59)") stored (the events read found it open), published and
 * counted, a warning logged. ne: d's newest stored row (info NULL: none, or the read failed).
 * When ne is a later event (this one's end was lost while vigild ran, and another opened and
 * ended after it), this one had ended by ne's opening reading: its end no later than that.
 * When ne is this one, ne then names the stored end, for the chain below. Left open, nothing
 * would end it: no reading ends an episode the restored detector is not in, and the next one it
 * opens has the next id. */
static void end_lost_restore(pipeline_t *p, struct dev *d, struct newest_event *ne)
{
    struct event *last = d->nevents ? &d->events[d->nevents - 1] : NULL;
    if (last == NULL || last->end_ts < 0 || last->ended_by != PIPE_END_RESTART)
        return;
    if (ne->info != NULL && ne->id > last->id && ne->start_ts < last->end_ts)
        last->end_ts = ne->start_ts > last->start_ts ? ne->start_ts : last->start_ts;
    (void)pipeline__event_restart_store(p, d, last, NULL,
                                        "while its saved detector was in no episode", 0);
    if (ne->info == NULL || ne->id != last->id)
        return;
    char *js = pipeline__event_json(d, last);
    if (js) {
        free(ne->info);
        ne->info = js;
    }
    ne->end_ts = last->end_ts;
}

void pipeline__event_chain_restore(pipeline_t *p, struct dev *d)
{
    uint64_t above, below, fault;
    int lead;
    const uint64_t within = continue_within(p);
    const int64_t now_ms = vtime_now_ms();
    const struct event *last = d->nevents ? &d->events[d->nevents - 1] : NULL;
    cleared_forget(d);
    /* A period restored current or past is never announced as beginning (the tick's
     * pipeline__event_break_open): one that began while vigild was stopped is taken as
     * beginning now, for the event open at the stop as for the cleared one below. */
    if (last && last->end_ts < 0 && period_begun_since(d, d->last_ts, now_ms))
        pipeline__event_break_open(p, d);
    if (p->store == NULL || d->det == NULL)
        return;
    struct newest_event ne = {0, -1, -1, NULL};
    (void)store_events_query(p->store, d->name, 0, VTIME_MIN_MS, VTIME_MAX_MS + 1, 1,
                             on_newest_event, &ne);
    end_lost_restore(p, d, &ne);
    if (ne.info == NULL || within == 0) {
        free(ne.info);
        return; /* none stored, or the store failed, or no chains: the chain is broken */
    }
    int why = pipeline__event_info_read(d, ne.info, &above, &below, &lead, &fault, NULL);
    if (pipeline__event_info_broken(ne.info))
        why = 0; /* broken after its end (pipeline__event_chain_break) */
    /* Not the newest the detector knows, or ended after the save (the catch-up ends it
     * again), or not cleared, or with no direction: nothing to continue. */
    const uint64_t id = ne.id;
    const int64_t end_ts = ne.end_ts;
    if (id == 0 || id != d->next_event_id || end_ts < 0 || end_ts > d->last_ts ||
        why != DET_END_CLEARED || lead < 0 || mask_side(above, below, lead) == 0) {
        free(ne.info);
        return;
    }
    /* The readings scored after its end before the stop: the store's (the saved detector had
     * scored every one up to d->last_ts), at most within + 1 counted. */
    uint64_t n = 0;
    store_query_t q = {.device = d->name,
                       .from_ms = end_ts + 1,
                       .to_ms = d->last_ts + 1,
                       .limit = (size_t)within + 1};
    if (store_query(p->store, &q, count_point, &n) != 0 || n > within) {
        free(ne.info);
        return;
    }
    d->cleared.id = id;
    d->cleared.info = ne.info;
    d->cleared.start_ts = ne.start_ts;
    d->cleared.end_ts = end_ts;
    d->cleared.fault = fault ? fault : id;
    d->cleared.scored = d->scored - n; /* d->scored: the save's, restored with the detector */
    d->cleared.gen = d->gen;
    d->cleared.ch = lead;
    d->cleared.side = mask_side(above, below, lead);
    /* A period began after its end, while vigild was stopped (one that began while it ran
     * broke the chain then, and the row says so): broken now, its row marked as the live
     * path marks it. */
    if (period_begun_since(d, end_ts, now_ms))
        pipeline__event_chain_break(p, d);
}

/* On the reading that opened e: e continues d's previous event when that one ended cleared
 * (d->cleared) within the bound, led by the same channel (e's largest share so far, the
 * opening reading's) on the same side of its prediction, and e's id follows its (e->prov: kept
 * only if so once numbered, event_settle). Consumes d->cleared. */
static void event_link(pipeline_t *p, struct dev *d, struct event *e)
{
    const int c = lead_channel(e->share, d->nch);
    if (d->cleared.id != 0 && (e->prov || d->cleared.id + 1 == e->id) && d->cleared.gen == d->gen &&
        c >= 0 && c == d->cleared.ch && lean_side(d, c) == d->cleared.side &&
        d->scored - d->cleared.scored <= continue_within(p)) {
        e->continues = d->cleared.id;
        e->fault = d->cleared.fault;
    }
    cleared_forget(d);
}

/* On the reading that ended e (its sides fixed): remembers it (d->cleared) when the detector
 * ended it cleared and its leading channel has a direction, so the next event may continue
 * it; forgets the previous one either way. */
static void event_note_end(struct dev *d, const struct event *e)
{
    const int c = lead_channel(e->share, d->nch);
    const int side = c >= 0 ? pipeline__event_side(d, e, c) : 0;
    cleared_forget(d);
    if (e->ended_by != DET_END_CLEARED || side == 0 || e->chain_broken)
        return; /* chain_broken: a period began, or another model came, while it was open */
    d->cleared.id = e->id;
    d->cleared.fault = e->fault ? e->fault : e->id;
    d->cleared.scored = d->scored;
    d->cleared.gen = d->gen;
    d->cleared.ch = c;
    d->cleared.side = side;
}

/* bsearch's order of dev.replay: by start time. */
static int replay_key_cmp(const void *a, const void *b)
{
    const int64_t x = ((const struct replay_key *)a)->start_ts;
    const int64_t y = ((const struct replay_key *)b)->start_ts;
    return (x > y) - (x < y);
}

/* The restore's catch-up's key of the stored row that began at ts, else NULL. d->mu. */
static struct replay_key *replay_key_at(struct dev *d, int64_t ts)
{
    const struct replay_key key = {.start_ts = ts}; /* d->replay: start_ts ascending */
    return d->replay ? bsearch(&key, d->replay, d->nreplay, sizeof key, replay_key_cmp) : NULL;
}

/* One past d's next id and every stored row's (d->replay_max: the device's highest stored id,
 * and the catch-up's keys'), d's next id raised to it. *unsaid set when that is known to be
 * past every stored row (d->replay_past, only in the restore's catch-up): no vigild logged an
 * episode of that id (event.unsaid). Caller holds d->mu. */
static uint64_t event_past_id(struct dev *d, int *unsaid)
{
    *unsaid = d->replay_past;
    uint64_t id = d->next_event_id + 1;
    if (id <= d->replay_max)
        id = d->replay_max + 1;
    d->next_event_id = id;
    return id;
}

/* The catch-up's first key that began after ts and that no replayed opening took, else NULL.
 * Caller holds d->mu. */
static struct replay_key *replay_key_after(struct dev *d, int64_t ts)
{
    size_t lo = 0, hi = d->nreplay; /* d->replay: start_ts ascending */
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (d->replay[mid].start_ts <= ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < d->nreplay; lo++)
        if (!d->replay[lo].hit)
            return &d->replay[lo];
    return NULL;
}

/* The catch-up's key of the stored row that began last before ts when no replayed opening took
 * it and it overlaps ts (still open, or ended at ts or later), else NULL: the replay opens that
 * row's episode later than the live run did (session 69, ops68's review: numbered past every
 * stored row, it was said "opened" again and listed twice). Caller holds d->mu. */
static struct replay_key *replay_key_over(struct dev *d, int64_t ts)
{
    size_t lo = 0, hi = d->nreplay; /* d->replay: start_ts ascending */
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (d->replay[mid].start_ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    struct replay_key *k = lo > 0 ? &d->replay[lo - 1] : NULL;
    return k && !k->hit && (k->end_ts < 0 || k->end_ts >= ts) ? k : NULL;
}

/* The id of the event a reading at ts opens, d's next id raised to it: the next one, or in the
 * restore's catch-up (d->replay, pipeline__event_replay_keys) the id of the stored row that
 * began at ts (the episode opened before the crash, opened again) or, none did, one past every
 * stored row's (event_past_id): a replay missing an earlier episode's readings (a retention
 * cut) numbered from the saved next id gave a later episode that one's id, and the upsert
 * overwrote correctly stored rows with other episodes (read63c's finding 3; task events64).
 * Past every stored row, not only those begun after the save: a row opened after the save
 * that began before its last reading (a clock stepped back since: timeline_step) is no key,
 * and an opening numbered from the saved next id took its id (review of events64). And 0, *prov
 * set, when no key began at ts but one not taken began after it: the replay may open a stored
 * row's episode earlier than the live run did (late readings it skipped as out of order,
 * stored and replayed in time order), numbered by event_settle (read64c's findings: before, a
 * new id, the episode listed twice, or its row ended "restart"). A stored row that began before ts
 * and overlaps it (replay_key_over) is the episode opened later: its id, *start_ts set to its
 * start (session 69). Caller holds d->mu. */
static uint64_t event_next_id(struct dev *d, int64_t ts, int *prov, int *unsaid, int *end_unsaid,
                              int64_t *start_ts)
{
    struct replay_key *k = replay_key_at(d, ts);
    *prov = *unsaid = *end_unsaid = 0;
    if (k == NULL && (k = replay_key_over(d, ts)) != NULL)
        *start_ts = k->start_ts; /* the stored episode, opened later: its row's start kept */
    if (k) {
        k->hit = 1;                  /* left_end: the row opened again */
        *end_unsaid = k->end_ts < 0; /* open at the kill: its end said by no vigild */
        if (d->next_event_id < k->id)
            d->next_event_id = k->id;
        return k->id;
    }
    if (d->replay_keyed && replay_key_after(d, ts)) {
        *prov = 1;
        return 0;
    }
    return event_past_id(d, unsaid);
}

/* Numbers the catch-up's provisional event e (event_next_id): k's id (the key's row opened
 * again, with e's earlier start) when a reading of e's reached k's start, else (NULL: e ends
 * first, or the catch-up does) one past every stored row, a separate episode (read64's finding
 * 1 stays repaired); keeps the chain event_link found only when e's id follows it; stores and
 * publishes its opening, as an opening numbered at once is. Caller holds d->mu. */
static void event_settle(pipeline_t *p, struct dev *d, struct event *e, struct replay_key *k)
{
    e->prov = 0;
    if (k) {
        e->id = k->id;
        k->hit = 1;
        e->end_unsaid = k->end_ts < 0;
        if (d->next_event_id < e->id)
            d->next_event_id = e->id;
    } else {
        e->id = event_past_id(d, &e->unsaid);
    }
    if (e->continues != 0 && e->continues + 1 != e->id)
        e->continues = e->fault = 0;
    persist_event(p, d, e);
    pipeline__event_log_open(p, d, e); /* said now that it has an id (if e->unsaid, or not
                                          in the restore: pipeline__evlog_due) */
}

void pipeline__event_replay_settle(pipeline_t *p, struct dev *d)
{
    pthread_mutex_lock(&d->mu);
    struct event *e = d->nevents ? &d->events[d->nevents - 1] : NULL;
    if (e && e->prov)
        event_settle(p, d, e, NULL);
    (void)pipeline__save_held(p, d); /* a save held for its id */
    pthread_mutex_unlock(&d->mu);
}

/* Opens, extends or closes the device's anomaly event after a step: its peak is the highest
 * likelihood or reported score of its readings, its channel shares their contributions weighted by
 * score, its lean the same signed by the side of the prediction each reading was on (d->last_x
 * against r->pred: the reading as the detector took it, missing channels carried forward); a new
 * event may continue the one before (event_link). Caller holds d->mu. */
void pipeline__track_event(pipeline_t *p, struct dev *d, int64_t ts,
                           const struct detector_result *r)
{
    struct event *cur = d->nevents ? &d->events[d->nevents - 1] : NULL;
    int active = cur && cur->end_ts < 0;
    /* An event restored active that opened after the saved detector's save (e->ahead: a crash):
     * the catch-up's readings before its start do not end it (the detector was in no episode
     * then), and the reading that enters anomaly again is its opening one replayed: the episode
     * goes on as this event (its id, its row), its lean and shares from that reading on, not as
     * a second event (before the review of session 59: ended "reset" at its start, and the same
     * episode stored again under the next id). Not when an earlier event opened after the save
     * too (its id not the saved next one's successor) and the reading is before this one's
     * start: that event's episode replays first, so this one is forgotten, and the replay opens
     * both again under their ids (before session 63: the earlier episode went on as this one,
     * and this one's was stored again under the next id). Nor, the device's keys read
     * (d->replay_keyed), when any replayed opening comes before its start: one the live run
     * did not open (late readings it skipped as out of order, stored and replayed in time
     * order) went on as this event, its row overwritten with that episode and ended at its
     * start (read64's finding 1); dropped, the opening is provisional (event_next_id, this
     * row's key after it): a reading of it that reaches this row's start, the episode still
     * open, makes it this row's episode again, with its earlier start (read64c's finding 1:
     * before, a new id, and this row ended "restart"), and one that ends it first makes it
     * another, numbered past every stored row; this row is then opened again by its key at
     * its start, or ended "restart" by left_end. The keys not read (or the highest ids not,
     * and this row no key: begun before the save's last reading), the successor of the saved
     * next id is this row's. */
    if (active && cur->ahead) {
        /* In a keyed catch-up, a reading not in anomaly at or after its start does not end it
         * either: the replay may open the episode a few readings after the live run did, and
         * then goes on with this row (session 69); a row it does not open again is ended after
         * the catch-up (left_end). Before, it was ended there and the later opening, numbered
         * past every stored row, said "opened" again. */
        if (r->state != DET_ANOMALY && (ts < cur->start_ts || d->replay_keyed))
            return;
        if (ts < cur->start_ts &&
            (cur->id > d->next_event_id + 1 || (d->replay_keyed && d->replay_max >= cur->id))) {
            free(cur->note);
            d->nevents--;
            active = 0;
        } else {
            cur->ahead = 0;
            cur->end_unsaid = 1; /* restored active: its row open at the kill */
            struct replay_key *k = replay_key_at(d, cur->start_ts);
            if (k && k->id == cur->id)
                k->hit = 1; /* gone on with: opened again (left_end) */
            if (d->next_event_id < cur->id)
                d->next_event_id = cur->id; /* kept at the saved one until now: event_restore */
            if (r->state == DET_ANOMALY) {
                memset(cur->share, 0, sizeof cur->share);
                memset(d->lean, 0, sizeof d->lean);
                d->lean_seen = d->lean_up = 0;
            }
        }
    }
    if (r->state == DET_ANOMALY) {
        if (!active) {
            if ((cur = pipeline__event_add(p, d)) == NULL)
                return; /* out of memory (or no events kept): the status still says anomaly */
            cur->start_ts = ts;
            cur->id =
                event_next_id(d, ts, &cur->prov, &cur->unsaid, &cur->end_unsaid, &cur->start_ts);
            cur->end_ts = -1;
            /* The detector names what opened the episode on the reading that entered state
             * anomaly; a detector restored in an episode whose event is gone names none. */
            cur->opened_by = (int)r->opened_by;
            /* Opened on a reading timestamped before a period vigild's clock has already
             * reached (a device clock behind, a late batch): open across the period's start as
             * one the tick marks (pipeline__event_break_open), and as the restore marks it
             * (pipeline__event_chain_restore), so a restart does not change what continues it
             * (review, session 31). */
            if (d->nmaint && period_begun_since(d, ts, vtime_now_ms()))
                cur->chain_broken = 1;
            memset(d->lean, 0, sizeof d->lean);
            d->lean_seen = d->lean_up = 0;
            atomic_fetch_add_explicit(&p->opened[cur->opened_by], 1, memory_order_relaxed);
            d->events_opened++;
        }
        /* The peak is the evidence: the likelihood, as the reported score is capped by the
         * onset filter at repeat_cap after an alarm-level reading (with confirm = 2 every
         * reading of an episode comes after one, so no score in it reaches the alarm level);
         * and the reported score where it is the higher (session 49): a trip (trip_level)
         * opens an episode on a reading whose reported score reaches 0.8 while the error's
         * likelihood can be below the alarm level (a one-reading event at peak 0.47, its
         * reading's anomaly_score 0.89), so no reading's score is above its event's peak. */
        const float peak = r->score > r->likelihood ? r->score : r->likelihood;
        if (peak > cur->peak)
            cur->peak = peak;
        for (int c = 0; c < d->nch; c++) {
            const float part = r->contrib[c] * r->score;
            cur->share[c] += part;
            const int side = sign_of(d->last_x[c] - r->pred[c]);
            d->lean[c] += (float)side * part;
            if (side != 0 && part > 0) {
                const uint64_t bit = (uint64_t)1 << c;
                d->lean_seen |= bit;
                d->lean_up = side > 0 ? d->lean_up | bit : d->lean_up & ~bit;
            }
        }
        if (!active) {
            event_link(p, d, cur);
            if (!cur->prov) { /* a provisional one is stored and said by event_settle */
                persist_event(p, d, cur);
                pipeline__event_log_open(p, d, cur);
            }
        } else if (cur->prov) { /* the key after its start, reached while open: its row's */
            struct replay_key *k = replay_key_after(d, cur->start_ts);
            if (k == NULL || k->start_ts <= ts)
                event_settle(p, d, cur, k);
        }
    } else if (active) {
        if (cur->prov) /* ended before the key after its start: another episode */
            event_settle(p, d, cur, NULL);
        /* No reason from the detector: it left state anomaly by starting over (a new
         * detector for a changed channel set is learning). */
        cur->ended_by = r->ended_by != DET_END_NONE ? (int)r->ended_by : PIPE_END_RESET;
        /* Not before its start: the device's clock stepped back while it was open
         * (pipeline_score.c timeline_step), as pipeline__event_end bounds it. */
        cur->end_ts = ts >= cur->start_ts ? ts : cur->start_ts;
        atomic_fetch_add_explicit(&p->ended[cur->ended_by], 1, memory_order_relaxed);
        event_sides_fix(d, cur);
        event_note_end(d, cur);
        persist_event(p, d, cur);
        pipeline__event_log_end(p, d, cur);
    }
}

char *pipeline__event_end(pipeline_t *p, struct dev *d, int why, char *note, int untracked)
{
    struct event *cur = d->nevents ? &d->events[d->nevents - 1] : NULL;
    struct event none = {.start_ts = d->since_ts, .end_ts = -1};
    /* An operator's accept or a maintenance period that begins breaks a chain, even when it
     * ends no event (the device in the quiet after a cleared end). */
    pipeline__event_chain_break(p, d);
    if (cur == NULL || cur->end_ts >= 0) {
        if (!untracked) {
            free(note);
            return NULL;
        }
        cur = &none;
    }
    if (cur != &none && cur->prov)
        event_settle(p, d, cur, NULL);
    if (cur != &none)
        event_sides_fix(d, cur);
    cur->ended_by = why;
    cur->end_ts = d->last_ts >= cur->start_ts ? d->last_ts : cur->start_ts;
    cur->note = note;
    atomic_fetch_add_explicit(&p->ended[why], 1, memory_order_relaxed);
    if (cur != &none) {
        persist_event(p, d, cur);
        pipeline__event_log_end(p, d, cur);
    }
    char *js = pipeline__event_json(d, cur);
    if (cur == &none)
        free(note);
    return js;
}

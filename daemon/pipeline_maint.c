/* daemon/pipeline_maint.c: planned maintenance. An operator puts a device in maintenance for a
 * while, from now or scheduled ahead (POST /v1/devices/{id}/maintenance): its readings are
 * stored as always, but those whose timestamps fall in a maintenance period are not given to
 * the detector (no score, prediction, event or training request: point_prepare skips them) and
 * are left out of its trainings' windows (pipeline__window_read), since a serviced pump's
 * readings are abnormal by design and are not its normal behaviour. The detector goes on after
 * the period from its state before, as after a gap in the feed. An anomaly open when the
 * maintenance begins ends "maintenance".
 *
 * When a period begins: for the readings, at its start by their own timestamps (the device's
 * clock), like everything else about them; the open episode ends at the POST when the period
 * is current then, else at the first reading timestamped in it (pipeline__maint_skip), so the
 * episode ends exactly where scoring stops, even for a device whose clock is off. The status,
 * the device and /metrics say "in maintenance" by vigild's clock (while a period is current),
 * so a device that is silent or whose clock is behind shows its last state until its first
 * reading in the period.
 *
 * When a period ends (the tick, a DELETE, or unseen while vigild was stopped: the restore), an
 * episode still open across it, the device silent through it, ends "maintenance" then, as its
 * limit alarms do (stale_end): else it stayed open after the work, and the first reading after
 * the period was scored with it (task maint5, session 56).
 *
 * Invariants: a device's periods (dev.maint) are ordered by start and never overlap; at most
 * STORE_MAINT_KEEP are kept, in memory and in the store (which trims the same way, by start), so
 * a new period is refused when all of them are current or scheduled; each keeps its note. Periods
 * are in wall-clock ms and readings are matched by their own timestamps, so the catch-up after a
 * restart and a training skip exactly the readings the live feed skipped.
 *
 * The event streams hear of every change: the POST, the DELETE and the cancel publish theirs,
 * and pipeline_maint_tick the periods that begin or end by the clock (a scheduled one whose
 * from passes, a current one whose until does), as the status and /metrics see them. Each
 * period remembers what the streams last heard of it (maint_told), so a change the API
 * announced is not announced again by the tick, and the fleet's earliest boundary not yet
 * announced (p->maint_next_ms) spares the tick any walk between boundaries. A period the tick
 * finds begun also breaks the device's chain of events and marks the event open then
 * (pipeline__event_break_open), as a POST of a current period breaks it, whether or not a
 * reading of the device falls in it; a DELETE of a period begun by the clock that the tick has
 * not yet seen begin (told scheduled) does so itself, since the tick then never sees it.
 *
 * A change is answered once the store committed it. A POST is applied, then stored (not
 * stored, it stays in effect until a restart: it may have ended an episode, which cannot be
 * un-ended); a DELETE (an end or a cancel) is stored, then applied, so one the store refuses
 * changes nothing meanwhile. p->maint_mu is held across each change, from reading the periods to
 * applying it, so changes reach memory in the order they reach the store; it serialises the
 * fleet's maintenance changes (operators' requests, each one commit).
 *
 * Threads: the API's functions are any thread (under p->maint_mu, then the device's mu: lock
 * order maint_mu -> dev.mu -> the hub's); restore runs on the main thread before readings flow;
 * pipeline__maint_skip on the device's shard; pipeline_maint_tick on the loop (one caller at a
 * time), each device under its mu, without maint_mu. */
#include "err.h"
#include "log.h"
#include "pipeline_int.h"
#include "pipeline_events_int.h"
#include "vtime.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* What the event streams last heard of a period (dev.maint_told): in the order periods go
 * through, so a state the clock reached is announced when it is beyond the one told. */
enum maint_told { TOLD_SCHEDULED, TOLD_CURRENT, TOLD_PAST };

/* The state of period m at now_ms, as enum maint_told. */
static unsigned char span_told(const struct maint_span *m, int64_t now_ms)
{
    return m->end_ms <= now_ms ? TOLD_PAST : m->start_ms <= now_ms ? TOLD_CURRENT : TOLD_SCHEDULED;
}

/* m's next boundary after now_ms (its start, else its end), INT64_MAX when past. */
static int64_t span_next(const struct maint_span *m, int64_t now_ms)
{
    return m->start_ms > now_ms ? m->start_ms : m->end_ms > now_ms ? m->end_ms : INT64_MAX;
}

/* Lowers the fleet's earliest boundary to t when t is earlier. Any thread. */
static void next_lower(pipeline_t *p, int64_t t)
{
    int_fast64_t cur = atomic_load_explicit(&p->maint_next_ms, memory_order_relaxed);
    while (t < cur && !atomic_compare_exchange_weak(&p->maint_next_ms, &cur, t))
        ;
}

int pipeline_maint_overlap(const struct maint_span *spans, int n, struct maint_span m, int skip)
{
    for (int k = 0; k < n; k++)
        if (k != skip && m.start_ms < spans[k].end_ms && spans[k].start_ms < m.end_ms)
            return k;
    return -1;
}

/* The index of d's period holding ts, or -1. Caller holds d->mu. */
static int find(const struct dev *d, int64_t ts)
{
    for (int k = d->nmaint; k-- > 0;) {
        if (ts >= d->maint[k].end_ms)
            return -1; /* after this one, and so after every older one */
        if (ts >= d->maint[k].start_ms)
            return k;
    }
    return -1;
}

int pipeline__maint_on(struct dev *d, int64_t now_ms)
{
    return find(d, now_ms) >= 0;
}

void pipeline__maint_clear(struct dev *d)
{
    for (int k = 0; k < d->nmaint; k++)
        free(d->maint_notes[k]);
    free(d->maint); /* and maint_notes and maint_told, in the same block */
    d->maint = NULL;
    d->maint_notes = NULL;
    d->maint_told = NULL;
    d->nmaint = 0;
}

/* Removes d's period k with its note. Caller holds d->mu. */
static void span_remove(struct dev *d, int k)
{
    free(d->maint_notes[k]);
    int after = d->nmaint - k - 1;
    memmove(d->maint + k, d->maint + k + 1, (size_t)after * sizeof *d->maint);
    memmove(d->maint_notes + k, d->maint_notes + k + 1, (size_t)after * sizeof *d->maint_notes);
    memmove(d->maint_told + k, d->maint_told + k + 1, (size_t)after);
    d->nmaint--;
}

/* Adds m to d's periods in start order, dropping the oldest when STORE_MAINT_KEEP are kept
 * (the caller makes sure it is past), with note (taken: freed on failure). m overlaps none;
 * the streams are taken to know its state at now_ms (its adder announces that, or nothing at a
 * restore). Returns m's index, or ERR_NOMEM. Caller holds d->mu. */
static int span_add(struct dev *d, struct maint_span m, char *note, int64_t now_ms)
{
    if (d->maint == NULL) {
        void *block = malloc(STORE_MAINT_KEEP * (sizeof *d->maint + sizeof *d->maint_notes + 1));
        if (block == NULL) {
            free(note);
            return ERR_NOMEM;
        }
        d->maint = block;
        d->maint_notes = (char **)(d->maint + STORE_MAINT_KEEP);
        d->maint_told = (unsigned char *)(d->maint_notes + STORE_MAINT_KEEP);
    }
    if (d->nmaint == STORE_MAINT_KEEP)
        span_remove(d, 0);
    int k = d->nmaint;
    while (k > 0 && d->maint[k - 1].start_ms > m.start_ms)
        k--;
    memmove(d->maint + k + 1, d->maint + k, (size_t)(d->nmaint - k) * sizeof *d->maint);
    memmove(d->maint_notes + k + 1, d->maint_notes + k,
            (size_t)(d->nmaint - k) * sizeof *d->maint_notes);
    memmove(d->maint_told + k + 1, d->maint_told + k, (size_t)(d->nmaint - k));
    d->maint[k] = m;
    d->maint_notes[k] = note;
    d->maint_told[k] = span_told(&m, now_ms);
    d->nmaint++;
    return k;
}

/* Periods of d not past at now_ms (the current and the scheduled ones). Caller holds d->mu. */
static int not_past(const struct dev *d, int64_t now_ms)
{
    int n = 0;
    for (int k = d->nmaint; k-- > 0 && d->maint[k].end_ms > now_ms;)
        n++;
    return n;
}

/* Whether period m is past, current or scheduled at now_ms. */
static const char *span_state(const struct maint_span *m, int64_t now_ms)
{
    static const char *const names[] = {"scheduled", "current", "past"};
    return names[span_told(m, now_ms)];
}

/* Period k of d as listed: {"from", "from_ts", "until", "until_ts", "note", "state"} (NULL: out
 * of memory). Caller holds d->mu. */
static json_t *span_json(const struct dev *d, int k, int64_t now_ms)
{
    const struct maint_span *m = &d->maint[k];
    char f[32], u[32];
    return json_pack("{s:s,s:I,s:s,s:I,s:o,s:s}", "from", vtime_format(m->start_ms, f, sizeof f),
                     "from_ts", (json_int_t)m->start_ms, "until",
                     vtime_format(m->end_ms, u, sizeof u), "until_ts", (json_int_t)m->end_ms,
                     "note", d->maint_notes[k] ? json_string(d->maint_notes[k]) : json_null(),
                     "state", span_state(m, now_ms));
}

/* The status's "maintenance": {"until", "note"} for the current period, or null. Caller holds
 * d->mu. */
static json_t *maint_json(const struct dev *d, int64_t now_ms)
{
    int k = find(d, now_ms);
    if (k < 0)
        return json_null();
    char t[32];
    return json_pack("{s:s,s:I,s:o}", "until", vtime_format(d->maint[k].end_ms, t, sizeof t),
                     "until_ts", (json_int_t)d->maint[k].end_ms, "note",
                     d->maint_notes[k] ? json_string(d->maint_notes[k]) : json_null());
}

json_t *pipeline__maint_status(struct dev *d)
{
    return maint_json(d, vtime_now_ms());
}

/* The anomaly open now is the maintenance's, not the device's: ended, not paged on. The
 * detector's episode ends with it (the status and vigil_device_state say normal through the
 * period, so no alert keeps firing) without learning the level: a fault still there when
 * scoring resumes opens a new episode and event. Nothing changes when none is open (no
 * allocation then: point_prepare calls it for every reading in a period). Caller holds d->mu. */
static void end_episode(pipeline_t *p, struct dev *d)
{
    char *ended = pipeline__event_end(p, d, PIPE_END_MAINT, NULL, 0);
    int det = d->det && detector_end_episode(d->det) == 0;
    if (det)
        pipeline__state_follows(p, d);
    if (ended || det)
        (void)pipeline__save(p, d);
    free(ended);
}

int pipeline__maint_skip(pipeline_t *p, struct dev *d, int64_t ts)
{
    int k = find(d, ts);
    if (k < 0)
        return 0;
    end_episode(p, d);
    /* A period vigild's clock has ended already left d's limit alarms to its readings (a clock
     * behind: stale_end): its first reading in the period ends them, as it ends the episode.
     * Ended by the clock, not only as told: in the up to 250 ms before the tick marks it past,
     * the tick's stale_end would take d as sending through and leave the alarms as they are.
     * While the period is current by the clock the alarms hold until its end (docs/operator.md:
     * the states hold through a period), which resets them (stale_end). */
    if (d->maint_told[k] == TOLD_PAST || span_told(&d->maint[k], vtime_now_ms()) == TOLD_PAST)
        pipeline__limits_reset(p, d, d->maint[k].end_ms);
    return 1;
}

/* Stores a period (or deletes it: del) and waits for its own commit, so an answered POST or
 * DELETE survives a crash and one that was not stored is not answered as if it were. Called
 * without d->mu: the copy was taken under it. Returns 0, or what the store said: ERR_NOSPACE,
 * ERR_CLOSED, ERR_LOCKED, else ERR_IO (codes the changes themselves never return, so the API
 * can tell). */
static int persist(pipeline_t *p, const char *device, struct maint_span m, const char *note,
                   int del)
{
    if (p->store == NULL)
        return 0;
    int rc = del ? store_maint_delete(p->store, device, m.start_ms)
                 : store_maint_put(p->store, device, m.start_ms, m.end_ms, note);
    if (rc == 0)
        return 0;
    log_warn("pipeline: maintenance of '%s' not stored: %s", device, err_str(rc));
    return rc == ERR_NOSPACE || rc == ERR_CLOSED || rc == ERR_LOCKED ? rc : ERR_IO;
}

/* The index of d's period that is exactly m, or -1. Caller holds d->mu. */
static int same(const struct dev *d, struct maint_span m)
{
    for (int k = 0; k < d->nmaint; k++)
        if (d->maint[k].start_ms == m.start_ms && d->maint[k].end_ms == m.end_ms)
            return k;
    return -1;
}

/* Dumps v (taken) into *out. Returns 0 or ERR_NOMEM. */
static int dump(json_t *v, char **out)
{
    *out = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    return *out ? 0 : ERR_NOMEM;
}

/* The streams' message (and a POST's answer) about d's period k at now_ms, into *out:
 * {"device", "maintenance" (as the status shows it), "period" (as listed; its "state" replaced
 * by state unless NULL)}. Returns 0 or ERR_NOMEM. Caller holds d->mu. */
static int change_json(const struct dev *d, int k, int64_t now_ms, const char *state, char **out)
{
    json_t *period = span_json(d, k, now_ms);
    if (period && state && json_object_set_new(period, "state", json_string(state))) {
        json_decref(period);
        period = NULL;
    }
    return dump(period ? json_pack("{s:s,s:o,s:o}", "device", d->name, "maintenance",
                                   maint_json(d, now_ms), "period", period)
                       : NULL,
                out);
}

/* pipeline_maint_start's change under d->mu: m the period asked (start -1: from now), note
 * taken. Sets *saved to the period as stored and *out to the answer (or to the period in the
 * way, on ERR_BUSY). A period given with the start and end of one already there is that one
 * again (its note replaced, stored again), not an overlap: the retry of a POST whose period
 * was not stored. */
static int maint_put(pipeline_t *p, struct dev *d, struct maint_span m, char *note, int64_t now_ms,
                     struct maint_span *saved, char **out)
{
    int cur = m.start_ms < 0 ? find(d, now_ms) : same(d, m);
    if (m.start_ms < 0)
        m.start_ms = cur >= 0 ? d->maint[cur].start_ms : now_ms;
    if (m.end_ms <= now_ms || m.end_ms <= m.start_ms) {
        free(note);
        return ERR_INVAL;
    }
    int clash = pipeline_maint_overlap(d->maint, d->nmaint, m, cur);
    if (clash >= 0 || (cur < 0 && not_past(d, now_ms) == STORE_MAINT_KEEP)) {
        free(note);
        if (clash < 0)
            return ERR_LIMIT;
        (void)dump(span_json(d, clash, now_ms), out);
        return ERR_BUSY;
    }
    int k = cur;
    if (cur >= 0) { /* a second POST replaces the end (and the note); ended nothing again */
        d->maint[cur].end_ms = m.end_ms;
        free(d->maint_notes[cur]);
        d->maint_notes[cur] = note;
    } else if ((k = span_add(d, m, note, now_ms)) < 0) {
        return k;
    }
    *saved = d->maint[k];
    next_lower(p, span_next(&d->maint[k], now_ms));
    if (cur < 0 && m.start_ms <= now_ms)
        end_episode(p, d); /* current already: it begins now */
    return change_json(d, k, now_ms, NULL, out);
}

int pipeline_maint_start(pipeline_t *p, const char *device, int64_t from_ms, int64_t until_ms,
                         int64_t minutes, const char *note, char **out)
{
    *out = NULL;
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    char *copy = note ? strdup(note) : NULL, *stored = note ? strdup(note) : NULL;
    if (note && (copy == NULL || stored == NULL)) {
        free(copy);
        free(stored);
        return ERR_NOMEM;
    }
    pthread_mutex_lock(&p->maint_mu); /* now: after any change this one waited for */
    const int64_t now_ms = vtime_now_ms();
    struct maint_span m = {from_ms, until_ms >= 0 ? until_ms : now_ms + minutes * 60000};
    struct maint_span saved = {-1, -1};
    pthread_mutex_lock(&d->mu);
    int rc = maint_put(p, d, m, copy, now_ms, &saved, out);
    pthread_mutex_unlock(&d->mu);
    /* Changed, even when only the answer was lost. Not stored, the change stays in effect (an
     * episode it ended stays ended) until a restart; *out still says what holds. */
    int src = saved.start_ms >= 0 ? persist(p, d->name, saved, stored, 0) : 0;
    free(stored);
    if (rc == 0) /* in effect (even if not stored): the streams hear it as the answer says */
        api_events_publish(p->o.hub, API_EVENT_MAINTENANCE, d->name, *out);
    pthread_mutex_unlock(&p->maint_mu);
    return rc ? rc : src;
}

/* Whether d has an anomaly episode open: its event active, or its detector in state anomaly
 * (an episode with no kept event). Caller holds d->mu. */
static int episode_open(const struct dev *d)
{
    const struct event *e = d->nevents ? &d->events[d->nevents - 1] : NULL;
    return (e && e->end_ts < 0) || (d->det && detector_get_state(d->det) == DET_ANOMALY);
}

/* Whether d sent through period m, by vigild's clock: the newest reading the detector took
 * ARRIVED while m was current or after (d->last_ms, restored at a restart; -1 from the catch-up:
 * none since) and lags that arrival by at least m's length (last_ms - last_ts), a clock behind
 * vigild's by more than the period (session 57). A last batch in flight at the period's start
 * (stamped just before it) lags by less: the device is silent, as in session 56. Only readings
 * the detector takes count (task maint8): one it does not (more than a day ahead, out of
 * order) says nothing of where the device's clock is, and arriving in the period it made a
 * silent device's episode outlive the period (seen_ms, any arrival, was read here before).
 * Caller holds d->mu. */
static int sent_through(const struct dev *d, struct maint_span m)
{
    return d->last_ms >= m.start_ms && d->last_ms - d->last_ts >= m.end_ms - m.start_ms;
}

/* After period m of d ended (its message published first, so a stream hears of the end, then
 * of what it ends), what no reading judged since the period began ends, as stale, unless d sent
 * through the period (sent_through): then its own readings judge both its episode and its limit
 * alarms, and its first reading in the period ends both (pipeline__maint_skip), one decision
 * for the two (task maint8: the alarms ended here while the episode stayed open, and the next
 * reading, still before the period, raised them again). Else the episode open across the
 * period when no reading at or after its end was scored (d->last_ts below it: none timestamped
 * in the period came, whose first would have ended it, pipeline__maint_skip, nor one after it,
 * a device's clock ahead, which judged it again) ends "maintenance" (end_episode: its end_ts
 * the last reading scored, as every maintenance end), and d's limit alarms no reading after
 * the period judged yet end (pipeline__limits_reset). Caller holds d->mu. */
static void stale_end(pipeline_t *p, struct dev *d, struct maint_span m)
{
    if (sent_through(d, m))
        return;
    if (d->last_ts < m.end_ms && episode_open(d))
        end_episode(p, d);
    pipeline__limits_reset(p, d, m.end_ms);
}

/* stale_end, called without d->mu. */
static void period_ended(pipeline_t *p, struct dev *d, struct maint_span m)
{
    pthread_mutex_lock(&d->mu);
    stale_end(p, d, m);
    pthread_mutex_unlock(&d->mu);
}

/* A DELETE's change is stored first and applied after, under p->maint_mu: one the store
 * refuses changes nothing, not even for a moment (applied and then undone, the period was ended
 * in between: readings of the device were scored and its status said no maintenance). While the
 * commit runs the period holds, as before the DELETE. */

int pipeline_maint_end(pipeline_t *p, const char *device)
{
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    pthread_mutex_lock(&p->maint_mu);
    const int64_t now_ms = vtime_now_ms();
    pthread_mutex_lock(&d->mu);
    int k = find(d, now_ms);
    struct maint_span was = k >= 0 ? d->maint[k] : (struct maint_span){0, 0}, ended = was;
    char *note = k >= 0 && d->maint_notes[k] ? strdup(d->maint_notes[k]) : NULL;
    pthread_mutex_unlock(&d->mu);
    ended.end_ms = now_ms > was.start_ms ? now_ms : was.start_ms + 1;
    int rc = k < 0 ? ERR_RANGE : persist(p, d->name, ended, note, 0);
    free(note);
    char *js = NULL;
    if (rc == 0) {
        pthread_mutex_lock(&d->mu);
        if ((k = same(d, was)) >= 0) { /* unless the device was deleted meanwhile */
            /* Begun by the clock (find said so) but not yet seen by the tick, which looks
             * every 250 ms and, the period told past here, never will: the DELETE does what
             * that look would have done. One the tick saw begin (or a POST made current) was
             * dealt with then. */
            if (d->maint_told[k] == TOLD_SCHEDULED)
                pipeline__event_break_open(p, d);
            d->maint[k].end_ms = ended.end_ms;
            d->maint_told[k] = TOLD_PAST; /* announced here, not again by the tick */
            /* The streams' message, as a POST's answer would put it: no maintenance now, the
             * period past. Composed at the period's new end, which is now except in its
             * start's own ms (then start + 1 ms): at now it would still say "current" though
             * the DELETE ended it (task evcont6). */
            (void)change_json(d, k, ended.end_ms, NULL, &js);
        }
        pthread_mutex_unlock(&d->mu);
        api_events_publish(p->o.hub, API_EVENT_MAINTENANCE, d->name, js);
        free(js);
        period_ended(p, d, ended);
    }
    pthread_mutex_unlock(&p->maint_mu);
    return rc;
}

/* Deleted from the store first, then from memory, as pipeline_maint_end: a cancel the store
 * refuses leaves the period scheduled throughout. */
int pipeline_maint_cancel(pipeline_t *p, const char *device, int64_t from_ms)
{
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    pthread_mutex_lock(&p->maint_mu);
    const int64_t now_ms = vtime_now_ms();
    pthread_mutex_lock(&d->mu);
    int k = d->nmaint;
    while (k-- > 0 && d->maint[k].start_ms != from_ms)
        ;
    int rc = k < 0 ? ERR_RANGE : d->maint[k].start_ms <= now_ms ? ERR_BUSY : 0;
    struct maint_span gone = k >= 0 ? d->maint[k] : (struct maint_span){0, 0};
    pthread_mutex_unlock(&d->mu);
    if (rc == 0)
        rc = persist(p, d->name, gone, NULL, 1);
    char *js = NULL;
    if (rc == 0) {
        pthread_mutex_lock(&d->mu);
        if ((k = same(d, gone)) >= 0) {
            /* The streams' message: the period with the state "cancelled" (never listed: it is
             * gone), and the maintenance now, which a scheduled period does not change. */
            (void)change_json(d, k, now_ms, "cancelled", &js);
            span_remove(d, k);
        }
        pthread_mutex_unlock(&d->mu);
        api_events_publish(p->o.hub, API_EVENT_MAINTENANCE, d->name, js);
        free(js);
    }
    pthread_mutex_unlock(&p->maint_mu);
    return rc;
}

int pipeline_maint_list(pipeline_t *p, const char *device, char **out)
{
    *out = NULL;
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    const int64_t now_ms = vtime_now_ms();
    json_t *periods = json_array();
    pthread_mutex_lock(&d->mu);
    for (int k = 0; periods && k < d->nmaint; k++)
        if (json_array_append_new(periods, span_json(d, k, now_ms))) {
            json_decref(periods);
            periods = NULL;
        }
    pthread_mutex_unlock(&d->mu);
    return dump(periods ? json_pack("{s:s,s:o}", "device", d->name, "periods", periods) : NULL,
                out);
}

int pipeline_maint_json(pipeline_t *p, const char *device, char **out)
{
    *out = NULL;
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    pthread_mutex_lock(&d->mu);
    json_t *v = d->nmaint ? pipeline__maint_status(d) : NULL;
    pthread_mutex_unlock(&d->mu);
    if (v == NULL)
        return ERR_RANGE; /* never in maintenance (or out of memory): null */
    *out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    return *out ? 0 : ERR_NOMEM;
}

/* store_maint_cb: a stored period goes back to its device with its note. */
static int on_period(void *arg, const char *device, int64_t start_ms, int64_t end_ms,
                     const char *note)
{
    pipeline_t *p = arg;
    struct dev *d = pipeline__dev(p, device);
    char *copy = note ? strdup(note) : NULL;
    if (d == NULL || (note && copy == NULL)) {
        free(copy);
        log_warn("pipeline: maintenance of '%s' not restored: out of memory", device);
        return 0;
    }
    struct maint_span m = {start_ms, end_ms};
    const int64_t now_ms = vtime_now_ms();
    pthread_mutex_lock(&d->mu);
    if (pipeline_maint_overlap(d->maint, d->nmaint, m, -1) < 0)
        (void)span_add(d, m, copy, now_ms); /* stored by this code: never overlapping */
    else
        free(copy);
    pthread_mutex_unlock(&d->mu);
    next_lower(p, span_next(&m, now_ms));
    return 0;
}

int pipeline__maint_restore(pipeline_t *p)
{
    int rc = store_maint_load(p->store, on_period, p);
    if (rc)
        log_warn("pipeline: maintenance periods not restored: %s", store_errmsg(p->store));
    return rc;
}

void pipeline__maint_restore_ended(pipeline_t *p, struct dev *d)
{
    pthread_mutex_lock(&d->mu);
    /* The newest period restored past (the tick, not yet running, has marked none past since):
     * one whose end no scored reading reached, the catch-up's included, ended unseen. A device
     * that sent readings after it is left alone (its limit states too). So is one whose
     * detector was saved after the period ended (det_saved_ms: a running vigild saves every
     * detector at its stop, after a last tick): that vigild saw the end and did this already,
     * and an episode open now was opened after it (a late batch timestamped before the
     * period), which the end must not close. A device restored without a detector
     * (det_saved_ms -1) has no episode open; its stale limit alarms end as before. */
    int k = d->nmaint;
    while (k-- > 0 && d->maint_told[k] != TOLD_PAST)
        ;
    if (k >= 0 && d->last_ts < d->maint[k].end_ms && d->maint[k].end_ms > d->det_saved_ms)
        stale_end(p, d, d->maint[k]);
    pthread_mutex_unlock(&d->mu);
}

/* Collects into msgs (room for STORE_MAINT_KEEP) the messages of d's periods whose state by the
 * clock went beyond what the streams heard, marking them heard, and lowers *next to d's next
 * boundary; *ended is set to the newest of them that ended (its end_ms stays -1 when none
 * did), and *began set when one began (current, or past already when it began and ended
 * between two looks). Returns how many. Caller holds d->mu. */
static int clock_changes(struct dev *d, int64_t now_ms, char **msgs, int64_t *next,
                         struct maint_span *ended, int *began)
{
    int n = 0;
    for (int k = 0; k < d->nmaint; k++) {
        unsigned char s = span_told(&d->maint[k], now_ms);
        int64_t t = span_next(&d->maint[k], now_ms);
        if (t < *next)
            *next = t;
        if (s <= d->maint_told[k])
            continue;
        if (d->maint_told[k] == TOLD_SCHEDULED)
            *began = 1;
        d->maint_told[k] = s; /* told, even when out of memory: a message is never retried */
        if (s == TOLD_PAST && d->maint[k].end_ms > ended->end_ms)
            *ended = d->maint[k];
        if (change_json(d, k, now_ms, NULL, &msgs[n]) == 0)
            n++;
    }
    return n;
}

void pipeline_maint_tick(pipeline_t *p)
{
    pipeline__state_flush(p, vtime_mono_ms()); /* the held state changes (pipeline_state.c) */
    pipeline__restart_retry(p);                /* the restore's "restart" ends not known stored */
    const int64_t now_ms = vtime_now_ms();
    if (now_ms < atomic_load(&p->maint_next_ms))
        return;
    /* Unknown from here until the walk's result is merged back: a boundary added meanwhile
     * lowers it (next_lower) on its own, whether the walk saw its device or not. */
    atomic_store(&p->maint_next_ms, INT64_MAX);
    /* The walk pipeline_metrics makes (see device_families): devices live as long as the
     * pipeline, and the first n's next pointers never change once seen under devs_lock. */
    pthread_rwlock_rdlock(&p->devs_lock);
    struct dev *d = p->devs;
    size_t n = HASH_COUNT(p->devs);
    pthread_rwlock_unlock(&p->devs_lock);
    int64_t next = INT64_MAX;
    char *msgs[STORE_MAINT_KEEP];
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            d = d->hh.next; /* device i-1's next: never the tail's, which a HASH_ADD may write */
        struct maint_span ended = {-1, -1}; /* a period that ended (end_ms -1: none) */
        int began = 0;
        pthread_mutex_lock(&d->mu);
        int nmsg = d->nmaint ? clock_changes(d, now_ms, msgs, &next, &ended, &began) : 0;
        /* A period that began by the clock breaks the device's chain, as one POSTed current
         * does (end_episode), though it ends no episode here (its first reading does,
         * pipeline__maint_skip): the device may send none in it. The event open now, if any,
         * is marked so that an end "cleared" on readings timestamped before the period is not
         * continued after it. Under d->mu, before its message is published, so a stream that
         * heard "current" finds the chain broken. This only queues event rows
         * (store_event_put, asynchronous: never waits for the writer), as persist_event does
         * under d->mu on the shards. */
        if (began)
            pipeline__event_break_open(p, d);
        pthread_mutex_unlock(&d->mu);
        for (int j = 0; j < nmsg; j++) { /* published unlocked, as the API's changes are */
            api_events_publish(p->o.hub, API_EVENT_MAINTENANCE, d->name, msgs[j]);
            free(msgs[j]);
        }
        if (ended.end_ms >= 0)
            period_ended(p, d, ended);
    }
    next_lower(p, next);
}

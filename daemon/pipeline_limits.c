/* daemon/pipeline_limits.c: limit alarms on a device's channels, now and forecast.
 *
 * A device's attributes may carry channel limits ({"limits":{"temp":{"max":90,"deadband":2}}},
 * pipeline__apply_limits). Each limited channel has a limit state: ok, forecast (a crossing of
 * a limit is forecast within o.limit_horizon steps, see Confirming) or exceeded (the newest reading
 * is at or beyond a limit, as the forecast route's time_to_limit counts a crossing). Every change
 * of it publishes one "event: limit" message (GET /v1/events?types=limit), is counted in
 * p->limit_alarms and is shown by the status and /metrics (pipeline_query.c).
 *
 * Which forecast. The detector's forecast predicts the device's normal behaviour: a healthy
 * pump's temperature climbing with its load is forecast to turn with the cycle, so a ramp it
 * has learnt raises no alarm. A fault's drift is what it does not predict: while the channel
 * departs from its prediction (the device in warning or anomaly, the channel with at least an
 * even share of the error), the least-squares line through its newest readings also counts,
 * when significant (detector_trend), and the earlier crossing wins ("by": "trend" or "model").
 * Measured on vigil-sim's pumps (session 21): the line alone, on every reading, crossed a max of
 * 85 within 60 s during 166-172 of 3,000 healthy readings (load ramps); the overheating pump's
 * model forecast fell back with the cycle while its temperature rose through the limit.
 *
 * Costs. A device without limits pays one test per scored reading (d->lim_on, a byte on a
 * cache line the step reads anyway, in point_finish). A device with limits pays a comparison per
 * limited channel present in the reading ("exceeded" is judged on every one), and the detector's
 * forecast once per o.limit_check_every readings, into a buffer of the device's (struct dev_limits,
 * made when its limits change), so the forecast allocates only its own scratch, as the forecast
 * route's does. The forecast runs under d->mu like the step it follows: no other lock is held.
 *
 * Clearing. "exceeded" clears on the first reading back inside the limit by more than the
 * channel's deadband (limits.CH.deadband, channel units, default 0: the first reading back
 * inside), SCADA's usual hysteresis: a value hovering within the deadband of the limit does
 * not flap, and a clean return clears at once (a count of readings would delay every clear).
 * "forecast" is judged again at each check only, so it changes at most once per check.
 *
 * Confirming. A crossing one check forecasts is often gone at the next (vigil-sim's pumps whose
 * fault feeds the model inputs it never saw: session 21 counted forecast/ok pairs 10 readings
 * apart), and one near the horizon's edge moves in and out of it, each time a message a crew
 * learns to ignore. So a forecast alarm is raised only when two checks in a row forecast a
 * crossing of the same limit within the horizon, and held while a check forecasts one within
 * 1.25 x the horizon (judge_forecast); a true forecast comes one check later (measured in
 * docs/architecture.md "Limit alarms"). The forecast route's time_to_limit reports the same
 * crossing (pipeline__limit_crossing), not the alarm.
 *
 * Limits a PUT changes: pipeline__apply_limits rebuilds the device's limit states at once,
 * keeping the state of a channel whose alarmed limit stays and publishing a final "ok" for an
 * alarm whose limit went (its state is gone); the new limits are judged at the device's next
 * scored reading. The states are not stored: after a restart they start at ok (since null) and
 * the first reading judges them. A limit on a channel the device has not sent has no state
 * until the channel exists. When a maintenance period of the device ends (pipeline_maint.c),
 * every alarm ends with "ok" (pipeline__limits_reset): readings in it were not judged, and a
 * device silent after the work would keep a stale state. A device that sent through the period
 * (a clock behind: pipeline_maint.c sent_through) keeps them then, as it keeps its episode, and
 * its first reading in the period ends both.
 *
 * Threads: pipeline__limits_check the device's shard (from point_finish); the others whoever
 * holds d->mu (pipeline__apply_limits: an API thread at a PUT, the shard at a channel change,
 * the restore). */
#include "err.h"
#include "log.h"
#include "pipeline_events_int.h"
#include "pipeline_int.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const lim_state_names[] = {"ok", "forecast", "exceeded"};
static const char *const side_names[] = {"max", "min"};

/* One limited channel. */
struct lim_chan {
    char *name;       /* owned copy of the channel's name (matched again at a rebuild) */
    int c;            /* its index in d->ch */
    float lim[2];     /* the max and the min (LIM_MAX, LIM_MIN); NaN: none */
    float deadband;   /* >= 0, channel units */
    uint8_t state;    /* enum pipe_lim_state */
    uint8_t side;     /* LIM_MAX or LIM_MIN: the limit of the current alarm (or the last one) */
    int64_t since_ts; /* the reading that entered the state; -1: none judged since the start */
    int steps;        /* the forecast's crossing: steps ahead, 0 when none */
    int by_trend;     /* the crossing is the readings' trend's, not the model's forecast */
    int64_t in_ms, at_ts;
    /* The newest reading that decided the state (judge_now, outside a forecast alarm, or a
     * forecast check); -1 none. A maintenance period's end ends only an alarm decided before
     * it (pipeline__limits_reset). */
    int64_t judged_ts;
    /* While ok: the limit (LIM_MAX, LIM_MIN) the previous check forecast a crossing of within
     * the horizon, -1 none; a second check in a row forecasting the same raises the alarm. */
    int8_t seen_side;
};

enum { LIM_MAX = 0, LIM_MIN = 1 };

/* A trend counts when its slope is at least this many standard errors (model/detector.c's
 * FORECAST_TREND_T, the forecast's rule for a persistence channel). */
#define LIM_TREND_T 3.0

/* A device's limit states: only a device with limits has one (d->limits). */
struct dev_limits {
    int until_check;    /* scored readings until the next forecast check */
    int horizon;        /* o.limit_horizon: a crossing within it raises a forecast alarm */
    int keep;           /* steps the buffers hold: clear_horizon(horizon), the alarm's hold */
    int nch;            /* channels they hold (d->nch at the rebuild) */
    float *mean, *band; /* forecast scratch [keep, nch]; NULL with keep 0 */
    int n;
    struct lim_chan ch[];
};

void pipeline__limits_free(struct dev *d)
{
    struct dev_limits *L = d->limits;
    if (L == NULL)
        return;
    for (int i = 0; i < L->n; i++)
        free(L->ch[i].name);
    free(L->mean);
    free(L->band);
    free(L);
    d->limits = NULL;
}

/* The side of l whose limit v reaches (at or beyond it), or -1 when v is inside both. */
static int beyond(const struct lim_chan *l, float v)
{
    if (!isnan(l->lim[LIM_MAX]) && v >= l->lim[LIM_MAX])
        return LIM_MAX;
    if (!isnan(l->lim[LIM_MIN]) && v <= l->lim[LIM_MIN])
        return LIM_MIN;
    return -1;
}

/* The index of channel name in d->ch, or -1. */
static int chan_index(const struct dev *d, const char *name)
{
    for (int c = 0; c < d->nch; c++)
        if (strcmp(d->ch[c], name) == 0)
            return c;
    return -1;
}

/* The device's newest value of l's channel, NAN when it has no such channel now. */
static float chan_reading(const struct dev *d, const struct lim_chan *l)
{
    int c = l->c < d->nch && strcmp(d->ch[l->c], l->name) == 0 ? l->c : chan_index(d, l->name);
    return c >= 0 ? d->last_x[c] : NAN;
}

/* The forecast's crossing of l as JSON ({"steps", "in_ms", "at_ts", "at", "by": "model" or
 * "trend"}), or null. */
static json_t *crossing_json(const struct lim_chan *l)
{
    if (l->steps == 0)
        return json_null();
    return json_pack("{s:i,s:I,s:I,s:o,s:s}", "steps", l->steps, "in_ms", (json_int_t)l->in_ms,
                     "at_ts", (json_int_t)l->at_ts, "at", pipeline__jtime(l->at_ts), "by",
                     l->by_trend ? "trend" : "model");
}

/* Publishes l's change from previous: the "event: limit" message {"device", "channel", "state",
 * "previous", "limit", "value" (the limit), "reading" (the channel's newest value, null when
 * the device has no such channel now), "ts", "time", "crossing"}. Caller holds d->mu. */
static void publish(pipeline_t *p, struct dev *d, const struct lim_chan *l, int previous)
{
    if (p->o.hub == NULL)
        return;
    float reading = chan_reading(d, l);
    const int64_t ts = d->last_ts; /* -1: none (a deleted device) */
    json_t *v = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:f,s:o,s:o,s:o,s:o}", "device", d->name, "channel", l->name, "state",
        lim_state_names[l->state], "previous", lim_state_names[previous], "limit",
        side_names[l->side], "value", (double)l->lim[l->side], "reading",
        isfinite(reading) ? json_real(reading) : json_null(), "ts",
        ts >= 0 ? json_integer(ts) : json_null(), "time",
        ts >= 0 ? pipeline__jtime(ts) : json_null(), "crossing", crossing_json(l));
    char *js = v ? json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(7)) : NULL;
    json_decref(v);
    if (js == NULL) {
        log_warn("pipeline: limit message of '%s' channel '%s' not published: out of memory",
                 d->name, l->name);
        return;
    }
    api_events_publish(p->o.hub, API_EVENT_LIMIT, d->name, js);
    free(js);
}

/* Logs l's change from previous (task ops67: limit alarms were in the event streams and
 * /metrics, never in the log): "limit: device 'X' channel 'c': exceeded its max 90 (reading
 * 91.5)" at warn, "... forecast to cross its max 90 (by model)", "... back within its limits
 * (was exceeded)", "... no longer forecast to cross its max 90" and, for an alarm ended without
 * a reading judging it (why: its limit removed, a maintenance period, out of memory), "...
 * alarm ended (was exceeded): why" at info; at most PIPE_EVLOG_BURST a minute as episodes'
 * lines, the warn ones and the info ones each (pipeline__evlog_due: not during the restore,
 * none taken below the log's level), the count of those left out said by the next one or at
 * the minute's end (pipeline_log_flush). Caller holds d->mu. */
static void log_change(pipeline_t *p, const struct dev *d, const struct lim_chan *l, int previous,
                       const char *why)
{
    const int warn = l->state == PIPE_LIM_EXCEEDED;
    char note[160];
    if (!pipeline__evlog_due(p, warn ? &p->limit_warn_log : &p->limit_log,
                             warn ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, 0, note, sizeof note))
        return;
    const float reading = chan_reading(d, l);
    if (l->state == PIPE_LIM_EXCEEDED)
        pipeline__evlog_say(p, d, LOG_LEVEL_WARN,
                            "limit: device '%s' channel '%s': exceeded its %s %g (reading %g)%s",
                            d->name, l->name, side_names[l->side], (double)l->lim[l->side],
                            (double)reading, note);
    else if (l->state == PIPE_LIM_FORECAST)
        pipeline__evlog_say(
            p, d, LOG_LEVEL_INFO,
            "limit: device '%s' channel '%s': forecast to cross its %s %g (by %s)%s", d->name,
            l->name, side_names[l->side], (double)l->lim[l->side], l->by_trend ? "trend" : "model",
            note);
    else if (why != NULL)
        pipeline__evlog_say(p, d, LOG_LEVEL_INFO,
                            "limit: device '%s' channel '%s': alarm ended (was %s): %s%s", d->name,
                            l->name, lim_state_names[previous], why, note);
    else if (previous == PIPE_LIM_FORECAST)
        pipeline__evlog_say(
            p, d, LOG_LEVEL_INFO,
            "limit: device '%s' channel '%s': no longer forecast to cross its %s %g%s", d->name,
            l->name, side_names[l->side], (double)l->lim[l->side], note);
    else
        pipeline__evlog_say(p, d, LOG_LEVEL_INFO,
                            "limit: device '%s' channel '%s': back within its limits (was %s)%s",
                            d->name, l->name, lim_state_names[previous], note);
}

/* Moves l to state (side: the limit it concerns) at the newest reading, counts an alarm and
 * publishes the change. Caller holds d->mu. */
static void set_state(pipeline_t *p, struct dev *d, struct lim_chan *l, int state, int side)
{
    int previous = l->state;
    if (previous == state && l->side == side)
        return;
    l->state = (uint8_t)state;
    l->side = (uint8_t)side;
    l->since_ts = d->last_ts;
    if (state != PIPE_LIM_FORECAST)
        l->steps = 0;
    if (state != PIPE_LIM_OK)
        atomic_fetch_add_explicit(&p->limit_alarms[state - 1], 1, memory_order_relaxed);
    publish(p, d, l, previous);
    log_change(p, d, l, previous, NULL);
}

/* Judges l on the newest reading's value v: exceeded at or beyond a limit; back to ok once v
 * is inside the alarmed limit by more than the deadband. Caller holds d->mu. */
static void judge_now(pipeline_t *p, struct dev *d, struct lim_chan *l, float v)
{
    int side = beyond(l, v);
    if (side >= 0) {
        set_state(p, d, l, PIPE_LIM_EXCEEDED, side);
        return;
    }
    if (l->state != PIPE_LIM_EXCEEDED)
        return;
    float edge = l->side == LIM_MAX ? l->lim[LIM_MAX] - l->deadband : l->lim[LIM_MIN] + l->deadband;
    if (l->side == LIM_MAX ? v >= edge : v <= edge)
        return; /* within the deadband: stays exceeded */
    set_state(p, d, l, PIPE_LIM_OK, l->side);
}

/* Whether channel c departs from the model's prediction now: the device is in warning or
 * anomaly and c carries at least an even share of the error (its contribution times the
 * channels is 1 or more). Caller holds d->mu. */
static int departing(const struct dev *d, int c)
{
    const struct detector_result *r = &d->last;
    return d->has_result && (r->state == DET_WARNING || r->state == DET_ANOMALY) &&
           c < DETECTOR_MAX_CHANNELS && r->contrib[c] * (float)d->nch >= 1.0f;
}

/* The step (1 the next reading) at which the least-squares line through channel c's newest
 * readings (detector_trend) reaches a limit, when that line is significant (its slope at least
 * LIM_TREND_T standard errors, as the forecast's own trend rule) and heads for the limit
 * within h steps; *side the limit. 0 when none. Caller holds d->mu. */
static int trend_crossing(const struct dev *d, int c, int h, int *side)
{
    double slope, se, level;
    if (d->det == NULL || detector_trend(d->det, c, &slope, &se, &level) != 0 ||
        !(fabs(slope) >= LIM_TREND_T * se) || slope == 0.0)
        return 0;
    *side = slope > 0 ? LIM_MAX : LIM_MIN;
    const double lim = *side == LIM_MAX ? d->lim_max[c] : d->lim_min[c];
    if (isnan(lim))
        return 0;
    /* The line's level at the newest reading is where the channel is heading from. A line
     * already at or past the limit, with the reading inside (else it is exceeded), is heading
     * from the reading: the line lags a channel that turned back (a temperature just back
     * from beyond its max, its line still rising above it, was forecast to cross "in 1 step"
     * from 20 degrees inside), and a reading near the limit on it crosses soon all the same. */
    double from = level;
    if ((lim - level) / slope <= 0.0)
        from = d->last_x[c];
    const double steps = fmax(ceil((lim - from) / slope), 1.0);
    return steps <= h ? (int)steps : 0;
}

int pipeline__limit_crossing(const struct dev *d, int c, const float *mean, int h, int *side,
                             int *by_trend)
{
    const float mx = d->lim_max[c], mn = d->lim_min[c];
    int k = 0;
    *side = -1;
    *by_trend = 0;
    for (int j = 0; mean && j < h && *side < 0; j++) {
        const float m = mean[(size_t)j * d->nch + c];
        *side = !isnan(mx) && m >= mx ? LIM_MAX : !isnan(mn) && m <= mn ? LIM_MIN : -1;
        k = j + 1;
    }
    if (*side < 0)
        k = 0;
    if (departing(d, c)) {
        /* The model forecasts the device's normal behaviour, which this channel has left:
         * where its own readings are heading says more. The earlier crossing counts. */
        int tside, tk = trend_crossing(d, c, h, &tside);
        if (tk > 0 && (k == 0 || tk < k)) {
            k = tk;
            *side = tside;
            *by_trend = 1;
        }
    }
    return k;
}

/* Steps the check looks ahead to hold a forecast alarm: 1.25 x horizon (rounded up). */
static int clear_horizon(int horizon)
{
    return horizon + (horizon + 3) / 4;
}

/* The forecast check: runs the detector's forecast (a device with a model only) over
 * L->keep steps and judges each channel not exceeded by its crossing (pipeline__limit_crossing):
 *   raised  when this check and the previous one both forecast a crossing of the same limit
 *           within the horizon (one check's crossing is often gone at the next: noise to a crew);
 *   held    while a check forecasts a crossing of it within 1.25 x horizon (a crossing hovering
 *           near the horizon's edge does not flap);
 *   cleared at the first check that forecasts none within 1.25 x horizon.
 * Caller holds d->mu. */
static void judge_forecast(pipeline_t *p, struct dev *d, struct dev_limits *L)
{
    const int nch = d->nch;
    int rc = ERR_RANGE; /* no model: no forecast by the model */
    if (L->keep > 0 && nch == L->nch && d->det && d->has_result && d->last.state != DET_LEARNING)
        rc = detector_forecast(d->det, L->mean, L->band, L->keep);
    const int64_t us = pipeline__step_us(d); /* as the forecast route */
    for (int i = 0; i < L->n; i++) {
        struct lim_chan *l = &L->ch[i];
        if (l->state == PIPE_LIM_EXCEEDED || L->keep == 0 || nch != L->nch) {
            l->seen_side = -1;
            continue;
        }
        int side, by_trend;
        int k =
            pipeline__limit_crossing(d, l->c, rc == 0 ? L->mean : NULL, L->keep, &side, &by_trend);
        l->judged_ts = d->last_ts;
        const int near = k > 0 && k <= L->horizon;
        const int confirmed = near && l->seen_side == side;
        l->seen_side = (int8_t)(near ? side : -1);
        if (l->state == PIPE_LIM_FORECAST ? k == 0 || side != l->side : !confirmed) {
            set_state(p, d, l, PIPE_LIM_OK, l->side);
            continue;
        }
        /* k: the crossing's step (1 the next reading). A crossing that moves keeps the state:
         * no message, the status shows the newest. */
        l->steps = k;
        l->by_trend = by_trend;
        l->in_ms = pipeline__step_ms(us, k);
        l->at_ts = d->last_ts + l->in_ms;
        set_state(p, d, l, PIPE_LIM_FORECAST, side);
    }
}

/* Ends l's alarm, if any, with its final "ok" message: its state is about to go (its limit
 * went, or a rebuild ran out of memory), and a stream must not see the channel's next alarm
 * come from an "ok" it was never told of; why (the log's) says why, as no reading came back
 * within the limits. Caller holds d->mu. */
static void end_alarm(pipeline_t *p, struct dev *d, struct lim_chan *l, const char *why)
{
    if (l->state == PIPE_LIM_OK)
        return;
    int previous = l->state;
    l->state = PIPE_LIM_OK;
    l->steps = 0;
    publish(p, d, l, previous);
    log_change(p, d, l, previous, why);
}

/* A number of a channel's limits object ({"min", "max", "deadband"}), or dflt. One beyond a
 * float (attributes stored before the API bounded them) is dflt too: as an infinite float a
 * limit is never reached, a deadband never lets an alarm clear, and neither has a JSON form. */
static float limit_field(json_t *l, const char *key, float dflt)
{
    json_t *x = json_object_get(l, key);
    float v = json_is_number(x) ? (float)json_number_value(x) : dflt;
    return isfinite(v) ? v : dflt;
}

/* A deadband as wide as the band between l's limits or wider (stored before the API refused
 * it) would let an alarm clear only beyond the other limit, that is never: it is clamped to half
 * the band, the widest that clears an alarm on either side inside both limits, and logged.
 * Caller holds d->mu. */
static void clamp_deadband(const struct dev *d, struct lim_chan *l)
{
    const float band = l->lim[LIM_MAX] - l->lim[LIM_MIN]; /* NaN without both */
    if (!(band > 0.0f && l->deadband >= band))
        return;
    log_warn("pipeline: '%s' channel '%s': stored deadband %g is not below max - min (%g); "
             "%g used",
             d->name, l->name, (double)l->deadband, (double)band, (double)(band / 2));
    l->deadband = band / 2;
}

/* Rebuilds d's limit states from d->lim_min, d->lim_max and the deadbands in lim (the "limits"
 * attribute, NULL: none) after they changed: a channel's state stays when the limit it alarmed
 * on stays, an alarm whose limit went gets its final ok message. Out of memory: d keeps no
 * limit states (logged; every open alarm gets its final ok message) and its next reading tries
 * again (pipeline__limits_check). Caller holds d->mu. */
static void rebuild(pipeline_t *p, struct dev *d, json_t *lim)
{
    struct dev_limits *old = d->limits;
    int n = 0;
    for (int c = 0; c < d->nch; c++)
        n += !isnan(d->lim_min[c]) || !isnan(d->lim_max[c]);
    struct dev_limits *L = NULL;
    if (n > 0) {
        const int H = p->o.limit_horizon > 0 ? p->o.limit_horizon : 0, keep = clear_horizon(H);
        L = calloc(1, sizeof *L + (size_t)n * sizeof L->ch[0]);
        if (L && keep > 0) {
            L->mean = malloc((size_t)keep * (size_t)d->nch * sizeof *L->mean);
            L->band = malloc((size_t)keep * (size_t)d->nch * sizeof *L->band);
        }
        if (L == NULL || (keep > 0 && (L->mean == NULL || L->band == NULL))) {
            if (L) {
                free(L->mean);
                free(L->band);
                free(L);
            }
            /* The old states may name channels d no longer has at those indices: dropped,
             * their alarms ended (the next reading raises them again). */
            log_warn("pipeline: limit alarms of '%s' off until its next reading: out of memory",
                     d->name);
            for (int i = 0; old && i < old->n; i++)
                end_alarm(p, d, &old->ch[i],
                          "limit alarms off until the next reading: out of memory");
            pipeline__limits_free(d);
            d->lim_on = 1; /* the next reading tries again */
            return;
        }
        L->horizon = H;
        L->keep = keep;
        L->nch = d->nch;
        L->until_check = 1; /* the forecast check at the next reading */
        for (int c = 0; c < d->nch; c++) {
            if (isnan(d->lim_min[c]) && isnan(d->lim_max[c]))
                continue;
            struct lim_chan *l = &L->ch[L->n];
            if ((l->name = strdup(d->ch[c])) == NULL)
                continue; /* out of memory: this channel has no alarms until the next change */
            l->c = c;
            l->lim[LIM_MAX] = d->lim_max[c];
            l->lim[LIM_MIN] = d->lim_min[c];
            l->deadband = limit_field(json_object_get(lim, d->ch[c]), "deadband", 0.0f);
            clamp_deadband(d, l);
            l->since_ts = l->judged_ts = -1;
            l->seen_side = -1;
            L->n++;
        }
    }
    /* Carry the old states over by channel name; an alarm whose limit went ends with "ok". */
    for (int i = 0; old && i < old->n; i++) {
        struct lim_chan *o = &old->ch[i], *nw = NULL;
        for (int j = 0; L && j < L->n && nw == NULL; j++)
            if (strcmp(L->ch[j].name, o->name) == 0)
                nw = &L->ch[j];
        /* A sighting confirms only a crossing of the limit it saw: one whose value a PUT
         * changed was never forecast by a check, and its first check is the rebuild's. */
        if (nw && o->seen_side >= 0 && nw->lim[o->seen_side] == o->lim[o->seen_side])
            nw->seen_side = o->seen_side;
        if (nw && (o->state == PIPE_LIM_OK || !isnan(nw->lim[o->side]))) {
            nw->state = o->state;
            nw->side = o->side;
            nw->since_ts = o->since_ts;
            nw->steps = o->steps;
            nw->in_ms = o->in_ms;
            nw->by_trend = o->by_trend;
            nw->at_ts = o->at_ts;
            nw->judged_ts = o->judged_ts;
        } else {
            end_alarm(p, d, o, "its limit was removed");
        }
    }
    pipeline__limits_free(d);
    d->limits = L;
    d->lim_built = d->lim_gen;
    d->lim_on = L != NULL;
}

void pipeline__limits_reset(pipeline_t *p, struct dev *d, int64_t end_ms)
{
    struct dev_limits *L = d->limits;
    for (int i = 0; L && i < L->n; i++) {
        struct lim_chan *l = &L->ch[i];
        if (l->judged_ts >= end_ms)
            continue; /* a reading after the period decided it: not stale */
        end_alarm(p, d, l, "a maintenance period ended, no reading judged since");
        l->since_ts = l->judged_ts = -1;
        l->seen_side = -1;
        L->until_check = 1; /* the forecast check at the next reading */
    }
}

void pipeline__apply_limits(pipeline_t *p, struct dev *d)
{
    json_t *a = d->attrs ? json_loads(d->attrs, 0, NULL) : NULL;
    json_t *lim = json_object_get(a, "limits");
    for (int c = 0; c < d->nch; c++) {
        json_t *l = json_object_get(lim, d->ch[c]);
        d->lim_max[c] = limit_field(l, "max", NAN);
        d->lim_min[c] = limit_field(l, "min", NAN);
        /* The API refuses such a limit; one stored anyway (damaged, or an older vigild's) was
         * dropped unsaid (read68b 4: the status showed no limits). Said at each apply. */
        static const char *const keys[] = {"max", "min", "deadband"};
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
            json_t *x = json_object_get(l, keys[k]);
            if (x && !(json_is_number(x) && isfinite((float)json_number_value(x))))
                log_warn("pipeline: device '%s': the stored limit %s of channel '%s' is not a "
                         "finite number: not applied (set the device's limits again)",
                         d->name, keys[k], d->ch[c]);
        }
    }
    d->lim_gen++;
    rebuild(p, d, lim);
    json_decref(a);
}

uint64_t pipeline__inputs_mask_of(const char *attrs, char *const *ch, int nch, const char *name)
{
    json_t *a = attrs ? json_loads(attrs, 0, NULL) : NULL;
    json_t *in = json_object_get(a, "inputs"), *x;
    uint64_t m = 0;
    size_t i;
    json_array_foreach(in, i, x)
    {
        for (int c = 0; c < nch; c++)
            if (json_is_string(x) && ch[c] && strcmp(ch[c], json_string_value(x)) == 0)
                m |= (uint64_t)1 << c;
    }
    json_decref(a);
    if (nch > 0 && m == (nch == 64 ? UINT64_MAX : ((uint64_t)1 << nch) - 1)) {
        log_warn("pipeline: device '%s': its \"inputs\" name every channel: all are scored "
                 "(one must be)",
                 name);
        return 0;
    }
    return m;
}

uint64_t pipeline__inputs_mask(const struct dev *d)
{
    return pipeline__inputs_mask_of(d->attrs, d->ch, d->nch, d->name);
}

void pipeline__limits_check(pipeline_t *p, struct dev *d)
{
    if (d->lim_built != d->lim_gen) { /* a rebuild ran out of memory: again */
        json_t *a = d->attrs ? json_loads(d->attrs, 0, NULL) : NULL;
        rebuild(p, d, json_object_get(a, "limits"));
        json_decref(a);
    }
    struct dev_limits *L = d->limits;
    if (L == NULL)
        return;
    for (int i = 0; i < L->n; i++) {
        struct lim_chan *l = &L->ch[i];
        if (!(d->last_present & (UINT64_C(1) << l->c)))
            continue; /* not in this reading (or not finite): judged at the next that has it */
        if (l->since_ts < 0)
            l->since_ts = d->last_ts; /* ok since the first reading judged */
        judge_now(p, d, l, d->last_x[l->c]);
        if (l->state != PIPE_LIM_FORECAST) /* a forecast alarm is decided by the checks */
            l->judged_ts = d->last_ts;
    }
    if (--L->until_check <= 0) {
        L->until_check = p->o.limit_check_every > 0 ? p->o.limit_check_every : 1;
        judge_forecast(p, d, L);
    }
}

void pipeline__limits_timeline(struct dev *d)
{
    if (d->limits)
        d->limits->until_check = 1;
}

json_t *pipeline__limits_status(const struct dev *d)
{
    json_t *v = json_object();
    const struct dev_limits *L = d->limits;
    for (int i = 0; v && L && i < L->n; i++) {
        const struct lim_chan *l = &L->ch[i];
        json_t *e =
            json_pack("{s:s,s:o,s:o,s:o,s:o,s:f,s:o,s:o}", "state", lim_state_names[l->state],
                      "since_ts", l->since_ts >= 0 ? json_integer(l->since_ts) : json_null(),
                      "since", l->since_ts >= 0 ? pipeline__jtime(l->since_ts) : json_null(), "max",
                      isnan(l->lim[LIM_MAX]) ? json_null() : json_real(l->lim[LIM_MAX]), "min",
                      isnan(l->lim[LIM_MIN]) ? json_null() : json_real(l->lim[LIM_MIN]), "deadband",
                      (double)l->deadband, "limit",
                      l->state == PIPE_LIM_OK ? json_null() : json_string(side_names[l->side]),
                      "crossing", crossing_json(l));
        json_object_set_new(v, l->name, e);
    }
    return v;
}

int pipeline__limits_copy(const struct dev *d, struct pipe_lim_copy *out)
{
    const struct dev_limits *L = d->limits;
    int n = 0;
    for (int i = 0; L && i < L->n; i++) {
        size_t len = strlen(L->ch[i].name);
        if (len > BATCH_NAME_MAX)
            len = BATCH_NAME_MAX;
        memcpy(out[n].name, L->ch[i].name, len);
        out[n].name[len] = '\0';
        out[n].state = L->ch[i].state;
        n++;
    }
    return n;
}

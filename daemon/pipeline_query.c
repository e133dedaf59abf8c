/* daemon/pipeline_query.c: the pipeline's JSON answers (status, anomalies, model versions) and
 * the JSON helpers they share with pipeline_predict.c (predictions, forecast). Any thread: each
 * function takes the device's mutex while it copies what it reports. The /metrics families are
 * in pipeline_metrics.c. */
#include "err.h"
#include "log.h"
#include "pipeline_groups_int.h"
#include "pipeline_int.h"
#include "pipeline_events_int.h"
#include "prom.h"
#include "sbuf.h"
#include "vtime.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const pipeline__state_names[4] = {"learning", "normal", "warning", "anomaly"};
/* event.ended_by's names (index 0: still active, null in the JSON). */
const char *const pipeline__end_names[PIPE_END_N] = {NULL,    "cleared",  "accepted",    "released",
                                                     "reset", "operator", "maintenance", "restart"};
/* event.opened_by's names (index 0: unknown, null in the JSON). */
const char *const pipeline__open_names[PIPE_OPEN_N] = {NULL, "error", "level", "step", "lasting"};
const char *const pipeline__kind_names[] = {"persistence", "linear", "lstm"};

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))

struct json_t *pipeline__jtime(int64_t ms)
{
    char t[32];
    return json_string(vtime_format(ms, t, sizeof t));
}

/* Finite floats as numbers, anything else as null (JSON has no NaN). */
json_t *pipeline__jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

int pipeline__dump(json_t *v, char **out)
{
    *out = json_dumps(v, JSON_FLAGS);
    json_decref(v);
    return *out ? 0 : ERR_NOMEM;
}

/* Channels ranked by their share, as [{"channel","share"}], at most n; with e (an event of
 * d, whose names and share these are), each with "side" "above" / "below" when known. */
static json_t *ranked(char *const *names, int nch, const float *share, int n, const struct dev *d,
                      const struct event *e)
{
    int order[DETECTOR_MAX_CHANNELS];
    double total = 0;
    for (int c = 0; c < nch; c++) {
        order[c] = c;
        total += share[c];
    }
    for (int i = 1; i < nch; i++) /* insertion sort: a handful of channels */
        for (int j = i; j > 0 && share[order[j]] > share[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    json_t *a = json_array();
    for (int i = 0; i < nch && i < n; i++) {
        double s = total > 0 ? share[order[i]] / total : 0;
        if (s <= 0)
            break;
        json_t *o = json_pack("{s:s,s:o}", "channel", names[order[i]], "share", json_real(s));
        const int side = e ? pipeline__event_side(d, e, order[i]) : 0;
        if (o && side)
            json_object_set_new(o, "side", json_string(side > 0 ? "above" : "below"));
        json_array_append_new(a, o);
    }
    return a;
}

char *pipeline__event_json(const struct dev *d, const struct event *e)
{
    json_t *v = json_pack("{s:s,s:I,s:I,s:o,s:o,s:o,s:b,s:o,s:o}", "device", d->name, "id",
                          (json_int_t)e->id, "start_ts", (json_int_t)e->start_ts, "start",
                          pipeline__jtime(e->start_ts), "end_ts",
                          e->end_ts >= 0 ? json_integer(e->end_ts) : json_null(), "end",
                          e->end_ts >= 0 ? pipeline__jtime(e->end_ts) : json_null(), "active",
                          e->end_ts < 0, "peak_score", pipeline__jnum(e->peak), "channels",
                          ranked(d->ch, d->nch, e->share, d->nch, d, e));
    int why = e->end_ts >= 0 && e->ended_by > 0 && e->ended_by < PIPE_END_N ? e->ended_by : 0;
    int how = e->opened_by > 0 && e->opened_by < PIPE_OPEN_N ? e->opened_by : 0;
    if (v) {
        json_object_set_new(v, "ended_by",
                            why ? json_string(pipeline__end_names[why]) : json_null());
        json_object_set_new(v, "opened_by",
                            how ? json_string(pipeline__open_names[how]) : json_null());
        if (e->note)
            json_object_set_new(v, "note", json_string(e->note));
        if (e->continues) { /* one fault that briefly cleared (docs/reliability.md) */
            json_object_set_new(v, "continues", json_integer((json_int_t)e->continues));
            json_object_set_new(v, "fault", json_integer((json_int_t)e->fault));
        }
        if (e->chain_broken)
            json_object_set_new(v, "chain_broken", json_true());
    }
    char *s = NULL;
    pipeline__dump(v, &s);
    return s;
}

/* The code (1 .. n - 1) of the string member key of o among names, 0 when absent or unknown. */
static int name_code(const json_t *o, const char *key, const char *const *names, int n)
{
    const char *name = json_string_value(json_object_get(o, key));
    for (int k = 1; name && k < n; k++)
        if (strcmp(name, names[k]) == 0)
            return k;
    return 0;
}

int pipeline__event_opened_by(const char *info_json)
{
    json_t *j = json_loads(info_json, 0, NULL);
    int how = name_code(j, "opened_by", pipeline__open_names, PIPE_OPEN_N);
    json_decref(j);
    return how;
}

int pipeline__event_info_read(const struct dev *d, const char *info_json, uint64_t *above,
                              uint64_t *below, int *lead, uint64_t *fault, float *share)
{
    *above = *below = *fault = 0;
    *lead = -1;
    json_t *j = json_loads(info_json, 0, NULL);
    json_t *chs = json_object_get(j, "channels"), *o;
    size_t i;
    json_array_foreach(chs, i, o)
    {
        const char *name = json_string_value(json_object_get(o, "channel"));
        const char *side = json_string_value(json_object_get(o, "side"));
        int c = 0;
        while (name && c < d->nch && strcmp(d->ch[c], name) != 0)
            c++;
        if (name == NULL || c == d->nch)
            continue;
        if (i == 0)
            *lead = c;
        json_t *sh = json_object_get(o, "share");
        if (share && json_is_number(sh))
            share[c] = (float)json_number_value(sh);
        if (side && strcmp(side, "above") == 0)
            *above |= (uint64_t)1 << c;
        else if (side && strcmp(side, "below") == 0)
            *below |= (uint64_t)1 << c;
    }
    json_t *f = json_object_get(j, "fault");
    if (json_is_integer(f) && json_integer_value(f) > 0)
        *fault = (uint64_t)json_integer_value(f);
    int why = name_code(j, "ended_by", pipeline__end_names, PIPE_END_N);
    json_decref(j);
    return why;
}

char *pipeline__event_info_break(const char *info_json)
{
    json_t *j = json_loads(info_json, 0, NULL);
    char *s = NULL;
    if (json_is_object(j) && json_object_set_new(j, "chain_broken", json_true()) == 0)
        s = json_dumps(j, JSON_FLAGS);
    json_decref(j);
    return s;
}

int pipeline__event_info_broken(const char *info_json)
{
    json_t *j = json_loads(info_json, 0, NULL);
    int broken = json_is_true(json_object_get(j, "chain_broken"));
    json_decref(j);
    return broken;
}

/* The channels a version's JSON says it was trained on; 0 when it does not say (recorded
 * before session 45, which did not write them). */
static int version_channels(const json_t *v)
{
    json_int_t c = json_integer_value(json_object_get(v, "channels"));
    return c > 0 && c <= DETECTOR_MAX_CHANNELS ? (int)c : 0;
}

int pipeline__version_served(const char *info_json, int *channels)
{
    json_t *j = json_loads(info_json, 0, NULL);
    const char *kind = json_string_value(json_object_get(j, "kind"));
    int served = -1;
    for (int k = 0; kind && json_is_true(json_object_get(j, "swapped")) && k < 3; k++)
        if (strcmp(kind, pipeline__kind_names[k]) == 0)
            served = k;
    if (channels)
        *channels = version_channels(j);
    json_decref(j);
    return served;
}

json_t *pipeline__predictors_json(char *const *ch, int nch, const uint8_t *persist,
                                  const uint8_t *season)
{
    json_t *o = json_object();
    for (int c = 0; o && c < nch; c++)
        json_object_set_new(o, ch[c],
                            json_string(season[c]    ? "seasonal profile"
                                        : persist[c] ? "persistence"
                                                     : "model"));
    return o;
}

/* Why a version serves or not, in words (docs/operator.md, "Reading the versions list"). */
static const char *version_decision(const struct detector_train_info *i)
{
    if (i->put)
        return "weights PUT by the operator: not validated; predicts every channel but those "
               "that have not moved (persistence)";
    if (!i->swapped)
        return "kept the serving predictor: no new one validated below val_mse_serving_before "
               "(an LSTM must also validate lstm_margin below the linear baseline and "
               "persistence, or beat a serving LSTM with model.kind = lstm)";
    if (!isfinite(i->val_mse_serving))
        return "first training: installed whatever validated best";
    return "validated below val_mse_serving_before (or model.kind = lstm put a trained LSTM "
           "over a linear or persistence predictor)";
}

char *pipeline__version_json(const struct detector_train_info *i, int64_t created_ms,
                             double seconds, int has_ckpt, size_t pooled, const struct dev *d)
{
    json_t *tl = json_array(), *vl = json_array();
    int ne = i->epochs < 64 ? i->epochs : 64;
    for (int e = 0; e < ne; e++) {
        json_array_append_new(tl, pipeline__jnum(i->train_loss[e]));
        json_array_append_new(vl, pipeline__jnum(i->val_loss[e]));
    }
    /* A PUT's version was not trained: its counts are null, as its costs are (0 read as a
     * perfect validation, read69b 4). */
    json_t *v = json_pack(
        "{s:I,s:o,s:I,s:s,s:b,s:b,s:s,s:{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}}", "version",
        (json_int_t)i->version, "created", pipeline__jtime(created_ms), "created_ms",
        (json_int_t)created_ms, "kind", pipeline__kind_names[i->kind], "swapped", i->swapped,
        "rollback", has_ckpt, "decision", version_decision(i), "metrics", "val_mse_lstm",
        pipeline__jnum(i->val_mse_lstm), "val_mse_linear", pipeline__jnum(i->val_mse_linear),
        "val_mse_persistence", pipeline__jnum(i->val_mse_persistence), "val_mse_serving_before",
        pipeline__jnum(i->val_mse_serving), "epochs",
        i->put ? json_null() : json_integer(i->epochs), "rows",
        i->put ? json_null() : json_integer((json_int_t)i->rows), "train_seconds",
        i->put ? json_null() : json_real(seconds), "train_loss", tl, "val_loss", vl);
    json_t *mt = json_object_get(v, "metrics");
    json_object_set_new(mt, "val_mse_lstm_alone", pipeline__jnum(i->val_mse_lstm_alone));
    json_object_set_new(mt, "val_mse_linear_alone", pipeline__jnum(i->val_mse_linear_alone));
    if (v && pooled > 0)
        json_object_set_new(json_object_get(v, "metrics"), "pooled_rows",
                            json_integer((json_int_t)pooled));
    if (v && d->nch > 0) {
        json_object_set_new(v, "channels", json_integer(d->nch));
        json_object_set_new(v, "predictors",
                            pipeline__predictors_json(d->ch, d->nch, i->persist, i->season));
    }
    char *s = NULL;
    pipeline__dump(v, &s);
    return s;
}

/* A kept version as an object, with "serving" set from the device's current state, and
 * "rollback" false when it was trained on other channels than the device has now (a channel
 * came since: the rollback would be refused). Such a version does not serve either, though
 * it was the last to (d->serving_version): the model learning again on the new channels does,
 * as the answer's "serving" says (version 0); listed true, it contradicted that. */
static json_t *version_obj(const struct dev *d, const struct version *v)
{
    json_t *o = v->info_json ? json_loads(v->info_json, 0, NULL) : NULL;
    if (o == NULL)
        o = json_pack("{s:I}", "version", (json_int_t)v->version);
    const int c = version_channels(o);
    const int fits = c <= 0 || c == d->nch;
    json_object_set_new(o, "serving", json_boolean(fits && v->version == d->serving_version));
    if (!fits)
        json_object_set_new(o, "rollback", json_false());
    return o;
}

/* What a status answer reports, copied under d->mu. Names are borrowed: a device, its channel
 * names (only ever appended) and groups live as long as the pipeline. */
struct status_copy {
    int has_result, nch, training;
    struct detector_result r;
    int64_t since_ts, last_ts;
    uint64_t scored, skipped_old, skipped_future, clock_steps, last_present;
    uint64_t missing; /* bit c: channel c missing (dev.missing) */
    float last_x[DETECTOR_MAX_CHANNELS];
    char *ch[DETECTOR_MAX_CHANNELS]; /* borrowed */
    const char *group;
    int nch_pred; /* channels in persist and season (0: no detector of these channels) */
    uint8_t persist[DETECTOR_MAX_CHANNELS], season[DETECTOR_MAX_CHANNELS];
};

int pipeline_status(pipeline_t *p, const char *device, char **out)
{
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    /* Only a copy under the lock (a few hundred ns): the shard thread steps this device under
     * the same mutex, and every status request of it takes it, so a thread preempted while
     * holding it (the machine is busy with ingest) would stall the others; the JSON is written
     * after. */
    struct status_copy c;
    pthread_mutex_lock(&d->mu);
    c.has_result = d->has_result;
    c.nch = d->nch;
    c.training = d->training;
    c.nch_pred = d->nch;
    c.r = d->last;
    c.since_ts = d->since_ts;
    c.last_ts = d->last_ts;
    c.scored = d->scored;
    c.skipped_old = d->skipped_old;
    c.skipped_future = d->skipped_future;
    c.clock_steps = d->clock_steps;
    c.last_present = d->last_present;
    c.missing = d->missing;
    memcpy(c.last_x, d->last_x, sizeof(float) * (size_t)d->nch);
    memcpy(c.ch, d->ch, sizeof(char *) * (size_t)d->nch);
    c.group = d->group ? d->group->name : NULL;
    if (d->det && c.nch == detector_channels(d->det))
        detector_predictors(d->det, c.persist, c.season);
    else
        c.nch_pred = 0;
    json_t *maint = pipeline__maint_status(d);
    json_t *limits = pipeline__limits_status(d); /* small: a device's limited channels */
    json_t *missing = c.has_result ? pipeline__missing_json(d) : NULL;
    pthread_mutex_unlock(&d->mu);

    json_t *v;
    if (!c.has_result) {
        v = json_pack("{s:s,s:s}", "device", d->name, "state", "learning");
    } else {
        const struct detector_result *r = &c.r;
        /* Learning: no model scored it (0 is no score; null since session 66). */
        const double score = r->state == DET_LEARNING ? NAN : r->score;
        json_t *imputed = json_array();
        json_t *latest = json_object();
        /* A missing channel has no current value: null, its last one's time in
         * missing_channels (read69b's finding 3: a dead sensor's stale value read as current).
         * One the newest reading only lacked keeps its value: a channel another source sends
         * less often is not stale between its readings. */
        for (int i = 0; i < c.nch; i++)
            json_object_set_new(latest, c.ch[i],
                                c.missing & (UINT64_C(1) << i) ? json_null()
                                                              : pipeline__jnum(c.last_x[i]));
        if (r->imputed) /* the channels this reading lacked (carried forward into the step) */
            for (int i = 0; i < c.nch; i++)
                if (!(c.last_present & (UINT64_C(1) << i)))
                    json_array_append_new(imputed, json_string(c.ch[i]));
        v = json_pack("{s:s,s:s,s:o,s:o,s:I,s:o,s:I,s:o,s:{s:I,s:s},s:o,s:o,s:I,s:I,s:I,s:I,s:b,"
                      "s:o}",
                      "device", d->name, "state", pipeline__state_names[r->state], "score",
                      pipeline__jnum(score), "threshold", pipeline__jnum(r->threshold), "since_ts",
                      (json_int_t)c.since_ts, "since", pipeline__jtime(c.since_ts), "last_ts",
                      (json_int_t)c.last_ts, "last", pipeline__jtime(c.last_ts), "model", "version",
                      (json_int_t)r->version, "kind", pipeline__kind_names[r->kind], "top_channels",
                      ranked(c.ch, c.nch, r->contrib, 3, NULL, NULL), "imputed_channels", imputed,
                      "readings_scored", (json_int_t)c.scored, "readings_not_scored_out_of_order",
                      (json_int_t)c.skipped_old, "readings_not_scored_future",
                      (json_int_t)c.skipped_future, "clock_steps_back", (json_int_t)c.clock_steps,
                      "training", c.training, "latest", latest);
    }
    if (v == NULL || limits == NULL || (c.has_result && missing == NULL)) {
        json_decref(v);
        json_decref(maint);
        json_decref(limits);
        json_decref(missing);
        return ERR_NOMEM;
    }
    if (missing)
        json_object_set_new(v, "missing_channels", missing);
    json_object_set_new(v, "group", c.group ? json_string(c.group) : json_null());
    if (c.has_result) /* what predicts each channel; null while no model serves */
        json_object_set_new(v, "predictors",
                            c.r.version > 0 && c.nch_pred > 0
                                ? pipeline__predictors_json(c.ch, c.nch_pred, c.persist, c.season)
                                : json_null());
    json_object_set_new(v, "maintenance", maint ? maint : json_null());
    json_object_set_new(v, "limits", limits);
    return pipeline__dump(v, out);
}

/* Whether a listing that has looked at n events is past deadline_us (CLOCK_MONOTONIC µs, the
 * clock api__q_deadline_passed reads; 0: none). Looked at every 256 events: each is made into
 * JSON and parsed, so 256 take some milliseconds at most. */
static int listing_late(int64_t deadline_us, size_t n)
{
    return deadline_us != 0 && (n & 255) == 0 && vtime_mono_us() >= deadline_us;
}

/* The upper end of a listing (pipeline_anomalies): events that started before to, and with
 * dev (not NULL) those that started at to whose (device, id) is below (dev, id), in the order
 * of the listings (newest start first, then device name bytewise, then id, all descending). */
struct ev_upto {
    int64_t to;
    const char *dev;
    int64_t id;
};

static int ev_below(const struct ev_upto *u, int64_t start, const char *dev, uint64_t id)
{
    if (start != u->to || u->dev == NULL)
        return start < u->to;
    int c = strcmp(dev, u->dev);
    return c < 0 || (c == 0 && u->id > 0 && id < (uint64_t)u->id);
}

/* Appends d's events of the range to arr (no store: the ones kept in memory), counting each
 * looked at in *seen. Returns 1 when deadline_us passed (listing_late; arr then cut), else 0. */
static int events_of(struct dev *d, json_t *arr, int active_only, int64_t from,
                     const struct ev_upto *to, int64_t deadline_us, size_t *seen)
{
    int late = 0;
    pthread_mutex_lock(&d->mu);
    for (size_t i = d->nevents; i-- > 0 && !(late = listing_late(deadline_us, ++*seen));) {
        const struct event *e = &d->events[i];
        int64_t end = e->end_ts < 0 ? INT64_MAX : e->end_ts;
        if ((active_only && e->end_ts >= 0) || !ev_below(to, e->start_ts, d->name, e->id) ||
            end < from)
            continue;
        char *s = pipeline__event_json(d, e);
        json_t *o = s ? json_loads(s, 0, NULL) : NULL;
        free(s);
        if (o)
            json_array_append_new(arr, o);
    }
    pthread_mutex_unlock(&d->mu);
    return late;
}

struct ev_ctx {
    pipeline_t *p;
    json_t *arr;
    uint64_t token;
    int active_only;
    int64_t from;        /* the range's start: an event ended before it is out */
    size_t n;            /* events the store reported */
    size_t listed;       /* of them, those listed (not left out) */
    int64_t deadline_us; /* CLOCK_MONOTONIC µs past which the read stops (0: none) */
    int timed_out;       /* it did: the listing is cut */
    /* The key of the last event the store reported (the lowest, in the listing's order);
     * last.dev is owned (NULL: none reported, or out of memory copying it). */
    struct ev_upto last;
};

/* A stored event whose details (its row's JSON) cannot be read: what the row's own columns say,
 * with "damaged" and a note, never left out unsaid (read68b 4: it vanished from the listing).
 * Not logged: every listing would say it again. NULL out of memory. */
static json_t *damaged_event(const char *device, int64_t id, int64_t start_ts, int64_t end_ts)
{
    json_t *o = json_pack("{s:s?,s:I,s:I,s:o,s:o,s:o,s:b,s:b,s:s}", "device", device, "id",
                          (json_int_t)id, "start_ts", (json_int_t)start_ts, "start",
                          pipeline__jtime(start_ts), "end_ts",
                          end_ts < 0 ? json_null() : json_integer(end_ts), "end",
                          end_ts < 0 ? json_null() : pipeline__jtime(end_ts), "active", end_ts < 0,
                          "damaged", 1, "note",
                          "the stored details of this event are damaged (not JSON): its channels, "
                          "peak and how it opened and ended cannot be read");
    return o;
}

/* One stored event; an active one is replaced by its live version: its peak and channels
 * grow, and it may have ended since (its end is written asynchronously, like its start), so
 * the listing agrees with /metrics' episode counters once they have counted the end. Then it
 * is left out where the request does not want it (active_only, or an end before from), as its
 * committed row would be. */
static int on_stored_event(void *arg, const char *device, int64_t id, int64_t start_ts,
                           int64_t end_ts, const char *info_json)
{
    struct ev_ctx *c = arg;
    json_t *o = NULL;
    c->n++;
    free((char *)c->last.dev);
    c->last = (struct ev_upto){.to = start_ts, .dev = device ? strdup(device) : NULL, .id = id};
    /* Each event's JSON is parsed: 10,000 of them take a tenth of a second or more. */
    if (listing_late(c->deadline_us, c->n)) {
        c->timed_out = 1;
        return 1;
    }
    if (end_ts < 0) {
        struct dev *d = pipeline__find(c->p, device);
        if (d) {
            pthread_mutex_lock(&d->mu);
            const struct event *e = NULL;
            for (size_t i = d->nevents; i-- > 0 && e == NULL;)
                if (d->events[i].id == (uint64_t)id)
                    e = &d->events[i];
            if (e && e->end_ts >= 0 && (c->active_only || e->end_ts < c->from)) {
                pthread_mutex_unlock(&d->mu);
                return 0; /* ended meanwhile: not active, or not in the range, any more */
            }
            if (e) {
                char *s = pipeline__event_json(d, e);
                o = s ? json_loads(s, 0, NULL) : NULL;
                free(s);
                if (e == &d->events[d->nevents - 1])
                    d->listed = c->token;
            }
            pthread_mutex_unlock(&d->mu);
        }
    }
    if (o == NULL) {
        o = json_loads(info_json, 0, NULL);
        if (!json_is_object(o)) { /* damaged (cut, or not JSON): listed with what the row says */
            json_decref(o);
            o = damaged_event(device, id, start_ts, end_ts);
        }
    }
    /* Saved before events told how they ended or opened: unknown, as an active one's end. */
    if (o && json_object_get(o, "ended_by") == NULL)
        json_object_set_new(o, "ended_by", json_null());
    if (o && json_object_get(o, "opened_by") == NULL)
        json_object_set_new(o, "opened_by", json_null());
    if (o)
        json_array_append_new(c->arr, o);
    c->listed++;
    return 0;
}

/* d's active event when the store's read did not list it, it comes after the key to, and (with
 * floor not NULL) it does not come after floor, the store's last row of a full page: an event
 * below that row is past the page's end, so the next page's read finds it (or this same code,
 * if it is still not committed). That keeps a page's work bounded by the page, not by the
 * devices in one ongoing fault: before, each page built the JSON of every such event (about
 * 99,000 a page with 100,000 devices at fault) only for the API to sort and cut them. */
static void unlisted_active(struct dev *d, json_t *arr, uint64_t token, const struct ev_upto *to,
                            const struct ev_upto *floor)
{
    pthread_mutex_lock(&d->mu);
    const struct event *cur = d->nevents ? &d->events[d->nevents - 1] : NULL;
    if (cur && cur->end_ts < 0 && d->listed != token &&
        ev_below(to, cur->start_ts, d->name, cur->id) &&
        !(floor && ev_below(floor, cur->start_ts, d->name, cur->id))) {
        char *s = pipeline__event_json(d, cur);
        json_t *o = s ? json_loads(s, 0, NULL) : NULL;
        free(s);
        /* Appended, not put in front: each caller sorts (api__events_page, InfluxQL's
         * ep_sort), and a front insert moves the whole array, quadratic in the devices (100,000
         * active events took 1.7 s more that way, on every page). */
        if (o)
            json_array_append_new(arr, o);
    }
    pthread_mutex_unlock(&d->mu);
}

/* The events of pipeline_anomalies as a JSON array into *out (caller owns; json_decref), the
 * read (the store's, or the events kept in memory without one) stopped at deadline_us
 * (CLOCK_MONOTONIC µs; 0: none). Returns 0, or
 * ERR_NOTFOUND, ERR_NOMEM, ERR_TIMEOUT, the store's error. */
static int anomalies_arr(pipeline_t *p, const char *device, int active_only, int64_t from,
                         const struct ev_upto *to, size_t limit, int64_t deadline_us, json_t **out)
{
    /* Looked up once: a delete meanwhile hides the device from later lookups, but its struct
     * lives on (pipeline_forget), so dv stays valid. */
    struct dev *dv = device ? pipeline__find(p, device) : NULL;
    if (device && dv == NULL)
        return ERR_NOTFOUND;
    json_t *arr = json_array();
    if (arr == NULL)
        return ERR_NOMEM;
    if (p->store) {
        /* limit + 1 listed events show where the page ends (the order is total: a page may end
         * inside one start time, and the next one goes on from its last event). A stored
         * active event that ended meanwhile is not listed when only active ones are
         * asked for or it ended before from (on_stored_event): the read is repeated with as many
         * more as were left out, else the API would see fewer than limit + 1 and end the pages
         * (next: null) before the older active events. */
        size_t want = limit < PIPELINE_EVENTS_READ ? limit + 1 : PIPELINE_EVENTS_READ;
        size_t cap = want;
        struct ev_ctx c = {0};
        for (;;) {
            free((char *)c.last.dev);
            c = (struct ev_ctx){.p = p,
                                .arr = arr,
                                .token = atomic_fetch_add(&p->list_token, 1) + 1,
                                .active_only = active_only,
                                .from = from,
                                .deadline_us = deadline_us};
            int rc = store_events_query_tie(p->store, device, active_only, from, to->to, to->dev,
                                            to->id, cap, on_stored_event, &c);
            if (rc == 0 && c.timed_out)
                rc = ERR_TIMEOUT;
            if (rc) {
                free((char *)c.last.dev);
                json_decref(arr);
                return rc;
            }
            if (c.n < cap || cap == PIPELINE_EVENTS_READ)
                break; /* the store has no more */
            if (c.listed >= want)
                break;
            cap = cap + (want - c.listed) < PIPELINE_EVENTS_READ ? cap + (want - c.listed)
                                                                 : PIPELINE_EVENTS_READ;
            json_array_clear(arr);
        }
        /* An event that just started may not be committed yet (its put is asynchronous): add
         * the active events the store did not list (after the key, as the store's rows). When
         * the store listed limit + 1 events, those after its last row cannot be on this page:
         * left out (the API cuts at limit). */
        const struct ev_upto *floor =
            limit < PIPELINE_EVENTS_READ && c.listed > limit && c.last.dev ? &c.last : NULL;
        if (device) {
            unlisted_active(dv, arr, c.token, to, floor);
        } else {
            pthread_rwlock_rdlock(&p->devs_lock);
            for (struct dev *d = p->devs; d; d = d->hh.next)
                unlisted_active(d, arr, c.token, to, floor);
            pthread_rwlock_unlock(&p->devs_lock);
        }
        free((char *)c.last.dev);
    } else {
        /* No store: the events kept in memory, the deadline looked at as the store's listing
         * looks at it (a fleet's worth of them is as long a listing). */
        size_t seen = 0;
        int late = 0;
        if (device) {
            late = events_of(dv, arr, active_only, from, to, deadline_us, &seen);
        } else {
            pthread_rwlock_rdlock(&p->devs_lock);
            for (struct dev *d = p->devs; d && !late; d = d->hh.next)
                late = events_of(d, arr, active_only, from, to, deadline_us, &seen);
            pthread_rwlock_unlock(&p->devs_lock);
        }
        if (late) {
            json_decref(arr);
            return ERR_TIMEOUT;
        }
    }
    *out = arr;
    return 0;
}

int pipeline_anomalies(pipeline_t *p, const char *device, int active_only, int64_t from, int64_t to,
                       const char *tie_dev, int64_t tie_id, size_t limit, char **out)
{
    json_t *arr;
    const struct ev_upto upto = {to, tie_dev, tie_id};
    int rc = anomalies_arr(p, device, active_only, from, &upto, limit, 0, &arr);
    return rc ? rc : pipeline__dump(json_pack("{s:o}", "anomalies", arr), out);
}

/* The string member key of o, NULL when absent or null. */
static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The annotation's text names the channels with at least this share of the episode (and the
 * first always): a six-sensor pump's text names the one or two that led, not every channel. */
#define EPISODE_TEXT_SHARE 0.1

/* Calls cb with the event object o (an element of anomalies_arr's array). Returns cb's. */
static int episode_call(const json_t *o, sbuf_t *names, api_episode_cb cb, void *arg)
{
    const json_t *chans = json_object_get(o, "channels"), *peak = json_object_get(o, "peak_score");
    const json_t *end = json_object_get(o, "end_ts");
    size_t i;
    const json_t *c;
    /* names holds both strings: the names, a NUL, then the names with their sides. */
    names->len = 0;
    json_array_foreach(chans, i, c)
        sbuf_printf(names, "%s%s", i ? ", " : "", jstr(c, "channel") ? jstr(c, "channel") : "");
    const size_t sides_at = names->len + 1;
    sbuf_append(names, "", 1);
    json_array_foreach(chans, i, c)
    {
        const char *side = jstr(c, "side");
        if (i > 0 && json_number_value(json_object_get(c, "share")) < EPISODE_TEXT_SHARE)
            break; /* ranked: the rest have less */
        sbuf_printf(names, "%s%s%s%s%s", i ? ", " : "",
                    jstr(c, "channel") ? jstr(c, "channel") : "", side ? " (" : "",
                    side ? side : "", side ? ")" : "");
    }
    const int ok = names->len > sides_at && !names->oom;
    api_episode_t e = {
        .device = jstr(o, "device"),
        .id = json_integer_value(json_object_get(o, "id")),
        .start_ms = json_integer_value(json_object_get(o, "start_ts")),
        .end_ms = json_is_integer(end) ? json_integer_value(end) : -1,
        .peak_score = json_is_number(peak) ? json_number_value(peak) : NAN,
        .channels = ok ? names->data : "",
        .channels_sides = ok ? names->data + sides_at : "",
        .ended_by = jstr(o, "ended_by"),
        .opened_by = jstr(o, "opened_by"),
        .note = jstr(o, "note"),
        .continues = json_integer_value(json_object_get(o, "continues")),
        .fault = json_integer_value(json_object_get(o, "fault")),
    };
    return cb(arg, &e);
}

int pipeline_anomalies_each(pipeline_t *p, const char *device, int64_t from, int64_t to,
                            size_t limit, int64_t deadline_us, api_episode_cb cb, void *arg)
{
    json_t *arr;
    const struct ev_upto upto = {to, NULL, 0};
    int rc = anomalies_arr(p, device, 0, from, &upto, limit, deadline_us, &arr);
    if (rc)
        return rc;
    /* anomalies_arr lists limit + 1 when there are more (and at most the read's cap, where the
     * list may be cut): either way not all of them, and the caller is told rather than handed
     * the newest limit as if they were all. */
    size_t n = json_array_size(arr);
    if (n > limit || n >= PIPELINE_EVENTS_READ) {
        json_decref(arr);
        return ERR_LIMIT;
    }
    sbuf_t names;
    sbuf_init(&names);
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        if (json_is_object(o) && jstr(o, "device") && episode_call(o, &names, cb, arg))
            break;
    }
    rc = names.oom ? ERR_NOMEM : 0;
    sbuf_deinit(&names);
    json_decref(arr);
    return rc;
}

/* store_model_get's callback for versions_peek: the channels the kept bytes' header says (a
 * linear model's or persistence's record is small and checked whole; an LSTM's checkpoint
 * header alone: one output a channel), 0 when it tells none. */
static void on_peek(void *arg, int64_t version, const char *info_json, const void *ckpt, size_t len)
{
    int *channels = arg;
    (void)version;
    (void)info_json;
    struct model_config mc;
    enum detector_kind kind;
    if (ckpt && len >= 4 && memcmp(ckpt, DETECTOR_PRED_MAGIC, 4) == 0)
        (void)detector_pred_check(ckpt, len, &kind, channels);
    else if (ckpt && model_checkpoint_peek(ckpt, len, &mc) == 0)
        *channels = mc.n_outputs;
}

/* A version recorded before session 45 does not say the channels it was trained on, so the
 * listing could not mark it as no rollback point when a channel came since. Its kept bytes'
 * header says them: read once a run, the first time d's versions are listed (at most
 * model.versions + 1 records, none deserialised), and written into its JSON in memory, where
 * the listing and pipeline_rollback's check read them. The reads hold no device lock. A
 * listing after which no version was appended (d->peek_todo 0) returns at once. */
static void versions_peek(pipeline_t *p, struct dev *d)
{
    /* Nothing appended since the last peek (the listing's common case): no lock. */
    if (p->store == NULL || !atomic_load_explicit(&d->peek_todo, memory_order_acquire))
        return;
    pthread_mutex_lock(&d->mu);
    atomic_store_explicit(&d->peek_todo, 0, memory_order_relaxed);
    uint32_t *want = d->nversions ? malloc(d->nversions * sizeof *want) : NULL;
    if (want == NULL && d->nversions) /* out of memory: the next listing tries again */
        atomic_store_explicit(&d->peek_todo, 1, memory_order_relaxed);
    size_t n = 0;
    for (size_t i = 0; want && i < d->nversions; i++) {
        struct version *v = &d->versions[i];
        int c = 0;
        if (v->has_ckpt && !v->peeked && v->info_json &&
            (pipeline__version_served(v->info_json, &c), c == 0))
            want[n++] = v->version;
        v->peeked = 1;
    }
    pthread_mutex_unlock(&d->mu);
    int *got = n ? calloc(n, sizeof *got) : NULL;
    for (size_t i = 0; got && i < n; i++)
        if (store_model_get(p->store, d->name, want[i], on_peek, &got[i]) != 0)
            got[i] = 0;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; got && i < n; i++) {
        for (size_t k = 0; got[i] > 0 && k < d->nversions; k++) {
            struct version *v = &d->versions[k];
            if (v->version != want[i] || v->info_json == NULL)
                continue;
            json_t *j = json_loads(v->info_json, 0, NULL);
            char *s = NULL;
            if (j && json_object_get(j, "channels") == NULL &&
                json_object_set_new(j, "channels", json_integer(got[i])) == 0 &&
                pipeline__dump(json_incref(j), &s) == 0 && s) {
                free(v->info_json);
                v->info_json = s;
            }
            json_decref(j);
        }
    }
    pthread_mutex_unlock(&d->mu);
    free(want);
    free(got);
}

int pipeline_models(pipeline_t *p, const char *device, char **out)
{
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    versions_peek(p, d);
    json_t *arr = json_array();
    pthread_mutex_lock(&d->mu);
    for (size_t i = d->nversions; i-- > 0;)
        json_array_append_new(arr, version_obj(d, &d->versions[i]));
    json_t *v =
        json_pack("{s:s,s:{s:I,s:s},s:s,s:b,s:o}", "device", d->name, "serving", "version",
                  (json_int_t)(d->has_result ? d->last.version : 0), "kind",
                  pipeline__kind_names[d->has_result ? d->last.kind : DET_KIND_PERSISTENCE],
                  "state", pipeline__state_names[d->has_result ? d->last.state : DET_LEARNING],
                  "training", d->training, "versions", arr);
    json_object_set_new(v, "group", d->group ? json_string(d->group->name) : json_null());
    uint8_t persist[DETECTOR_MAX_CHANNELS], season[DETECTOR_MAX_CHANNELS];
    if (d->det && d->has_result && d->last.version > 0 && d->nch == detector_channels(d->det)) {
        detector_predictors(d->det, persist, season);
        json_object_set_new(json_object_get(v, "serving"), "predictors",
                            pipeline__predictors_json(d->ch, d->nch, persist, season));
    }
    pthread_mutex_unlock(&d->mu);
    return pipeline__dump(v, out);
}

int pipeline_knows(pipeline_t *p, const char *device)
{
    return pipeline__find(p, device) != NULL;
}

int pipeline_adopt(pipeline_t *p, const char *device)
{
    struct dev *d = pipeline__dev(p, device);
    if (d == NULL)
        return ERR_NOMEM;
    /* Deleted before and sent readings again: a device again, as its first reading would make
     * it (pipeline_forget left it learning from nothing). */
    atomic_store_explicit(&d->deleted, 0, memory_order_relaxed);
    return 0;
}

void pipeline_set_attrs(pipeline_t *p, const char *device, const char *attrs_json)
{
    struct dev *d = pipeline__dev(p, device);
    if (d == NULL || attrs_json == NULL)
        return;
    char *copy = strdup(attrs_json);
    if (copy == NULL)
        return;
    /* The device's group (shared model): {"group":"name"}; none without the key. */
    json_t *a = json_loads(attrs_json, 0, NULL);
    const char *gname = json_string_value(json_object_get(a, "group"));
    struct group *g = gname && *gname ? pipeline__group(p, gname) : NULL;
    json_decref(a);
    pthread_mutex_lock(&d->mu);
    if (g != d->group && pipeline__group_move(p, d, g) == 0)
        log_info("pipeline: device '%s' %s%s%s", d->name, g ? "joins group '" : "leaves its group",
                 g ? g->name : "",
                 g ? "'; the group's next training gives it the shared model" : "");
    else if (g != d->group)
        log_warn("pipeline: device '%s' not moved to group '%s': out of memory", d->name,
                 g ? g->name : "(none)");
    free(d->attrs);
    d->attrs = copy;
    pipeline__apply_limits(p, d);
    if (pipeline__inputs_relearn(p, d))
        log_warn("pipeline: device '%s': its input channels changed but its detector could not "
                 "be made again: out of memory",
                 d->name);
    atomic_store_explicit(&d->deleted, 0, memory_order_relaxed); /* PUT again */
    pthread_mutex_unlock(&d->mu);
}

void pipeline_forget(pipeline_t *p, const char *device)
{
    struct dev *d = pipeline__dev(p, device);
    if (d == NULL)
        return;
    /* The struct stays (the /metrics walk relies on devices living as long as the pipeline):
     * everything it learnt goes, as a new device starts. */
    pthread_mutex_lock(&d->mu);
    d->again = 0; /* its request goes with it: not asked again as it leaves its group */
    if (d->group && pipeline__group_move(p, d, NULL) != 0)
        log_warn("pipeline: deleted device '%s' stays in group '%s': out of memory", d->name,
                 d->group->name);
    detector_destroy(d->det);
    d->det = NULL;
    d->gen++; /* a training under way is dropped when it ends */
    d->forget_gen = d->gen;
    d->has_result = 0;
    for (int c = 0; c < d->nch; c++) {
        free(d->ch[c]);
        d->ch[c] = NULL;
    }
    d->nch = 0;
    d->last_ts = d->last_ms = -1;
    atomic_store_explicit(&d->seen_ms, -1, memory_order_relaxed);
    d->dt_ms = 0.0;
    d->since_ts = d->scored_ns = 0;
    /* Its state messages start again from learning; a held change is dropped by the flush. */
    d->st_sent = DET_LEARNING;
    d->st_next_ms = 0;
    d->scored = d->since_save = d->skipped_old = d->skipped_future = d->last_present = 0;
    d->save_held = 0;
    d->clock_steps = 0;
    d->back_n = 0;
    d->back_step_at = 0;
    d->step_skip = (struct maint_span){0, 0}; /* its readings are gone: nothing to leave out */
    pipeline__events_clear(d);
    pipeline__maint_clear(d);
    d->next_event_id = 0;
    /* Its /metrics counter too: the same name put again starts from 0, as a new device (session
     * 69: the deleted device's count went on; a reset is what Prometheus' increase() expects). */
    d->events_opened = 0;
    pipeline__ring_deinit(&d->ring);
    memset(d->last_x, 0, sizeof d->last_x);
    pipeline__missing_init(d);
    memset(&d->last, 0, sizeof d->last);
    for (size_t i = 0; i < d->nversions; i++) {
        free(d->versions[i].info_json);
        d->versions[i].info_json = NULL;
    }
    d->nversions = 0;
    d->ver_floor = 0; /* its stored versions are deleted with it */
    d->serving_version = 0;
    free(d->attrs);
    d->attrs = NULL;
    pipeline__apply_limits(p, d);
    atomic_store_explicit(&d->deleted, 1, memory_order_relaxed);
    pthread_mutex_unlock(&d->mu);
    log_info("pipeline: device '%s' deleted: it starts learning again if readings come", device);
}

char *pipeline__state_json(const struct dev *d, int previous)
{
    json_t *v = json_pack("{s:s,s:s,s:s,s:I,s:o,s:o}", "device", d->name, "state",
                          pipeline__state_names[PIPE_SHOWN_STATE(d)], "previous",
                          pipeline__state_names[previous], "ts", (json_int_t)d->since_ts, "time",
                          pipeline__jtime(d->since_ts), "score",
                          d->has_result ? pipeline__jnum(d->since_score) : json_null());
    char *out;
    return pipeline__dump(v, &out) == 0 ? out : NULL;
}

/* api/model_routes.c: the endpoints of the online pipeline: status, predictions, forecast,
 * anomalies (and an operator's acceptance of one), planned maintenance, model versions,
 * retrain, rollback and weights. The answers are built by the backend (the daemon's pipeline) as
 * JSON text; this file validates parameters and bodies, maps errors and bounds the answers:
 * predictions and anomalies come in pages (the backend is asked for one page; this file adds its
 * "next"), a forecast's steps x channels are capped (docs/http-api.md "Pages, parameters and
 * methods"). Any thread. */
#include "api_int.h"
#include "batch.h"
#include "err.h"
#include "parse.h"
#include "sbuf.h"
#include "vtime.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Maps a pipeline error to an answer naming the device. */
static void fail(api_request_t *r, int rc, const char *what)
{
    if (rc == ERR_NOTFOUND)
        api__error(r, 404, "%s: device '%s' is not known to the pipeline (no readings yet?)", what,
                   r->seg[0] ? r->seg[0] : "");
    else if (rc == ERR_RANGE)
        api__error(r, 409, "%s: device '%s' has no model yet (still learning)", what, r->seg[0]);
    else if (rc == ERR_BUSY)
        api__error(r, 409, "%s: a training of device '%s' is already queued or running", what,
                   r->seg[0]);
    else
        api__backend_error(r, rc, what);
}

/* Answers 200 with the backend's JSON text (taking it), or maps the backend's error. */
static void answer(api_request_t *r, int rc, char *json, const char *what)
{
    if (rc || json == NULL) {
        free(json);
        fail(r, rc ? rc : ERR_NOMEM, what);
        return;
    }
    api__json_text(r, json);
}

static int have(api_request_t *r, const void *fn)
{
    if (fn == NULL) {
        api__error(r, 501, "the model pipeline is not running in this vigild");
        return 0;
    }
    return 1;
}

/* The optional true/false query parameter name into *val (absent: 0). Returns 0, or -1 with
 * a 400 answer naming it. */
static int arg_bool(api_request_t *r, const char *name, int *val)
{
    char buf[8];
    const char *a = api__arg(r, name, buf, sizeof buf);
    *val = 0;
    if (r->status)
        return -1;
    if (a && strcmp(a, "true") != 0 && strcmp(a, "false") != 0) {
        api__error(r, 400, "parameter '%s': want true or false", name);
        return -1;
    }
    *val = a && strcmp(a, "true") == 0;
    return 0;
}

void api__h_status(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    if (!have(r, be->pipe_status))
        return;
    char *out = NULL;
    int rc = be->pipe_status(be->ctx, r->seg[0], &out);
    answer(r, rc, out, "status");
}

/* The pipeline's answers are JSON texts with reals at 7 significant digits (floats): kept so
 * when one is parsed to add a page's continuation. */
#define PIPE_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))

/* Parses a pipeline answer to add "next" (takes json). Returns the object, or NULL with a 500
 * answer set. */
static json_t *parse_answer(api_request_t *r, char *json)
{
    json_t *v = json_loads(json, 0, NULL);
    free(json);
    if (v == NULL)
        api__error(r, 500, "reading the pipeline's answer: out of memory or invalid JSON");
    return v;
}

/* Answers status with v (takes it; NULL: a 500) written as the pipeline writes its answers
 * (PIPE_JSON_FLAGS): an event in it reads as the events listing shows it, its shares and
 * scores at 7 digits, not api__json's 17 (session 67). */
static void answer_pipe(api_request_t *r, unsigned status, json_t *v)
{
    char *s = v ? json_dumps(v, PIPE_JSON_FLAGS) : NULL;
    json_decref(v);
    if (s == NULL) {
        api__error(r, 500, "out of memory");
        return;
    }
    sbuf_t b;
    sbuf_init(&b);
    sbuf_append(&b, s, strlen(s));
    sbuf_append(&b, "\n", 1);
    free(s);
    api__body(r, status, "application/json", &b);
}

/* Answers 200 with v and next (a URL built in b, or null when b is NULL); takes v. */
static void answer_page(api_request_t *r, json_t *v, sbuf_t *next)
{
    if (next && next->oom) {
        json_decref(v);
        sbuf_deinit(next);
        api__error(r, 500, "out of memory");
        return;
    }
    int rc = json_object_set_new(v, "next", next ? json_string(next->data) : json_null());
    if (next)
        sbuf_deinit(next);
    if (rc != 0) {
        json_decref(v);
        v = NULL;
    }
    answer_pipe(r, 200, v);
}

/* Appends "&to=T" unless to is the open end of time (not a valid parameter value). */
static void next_to(sbuf_t *b, int64_t to)
{
    if (to <= VTIME_MAX_MS) {
        sbuf_append(b, "&to=", 4);
        api__time_value(b, to);
    }
}

/* The channels the device's detector models: the keys of "latest" in its status, or
 * API_FORECAST_CHANNELS_MAX when the status does not say (no reading scored yet). Returns the
 * count, or 0 with an answer set naming `what` (the device is unknown, or out of memory).
 * *name_bytes (NULL: not wanted): the names' total length (64 a name when not known). */
static size_t modeled_channels(api_request_t *r, const char *what, size_t *name_bytes)
{
    api_backend_t *be = &r->srv->be;
    char *out = NULL;
    int rc = be->pipe_status(be->ctx, r->seg[0], &out);
    if (rc || out == NULL) {
        answer(r, rc, out, what);
        return 0;
    }
    json_t *v = json_loads(out, 0, NULL);
    free(out);
    json_t *latest = json_object_get(v, "latest");
    size_t n = json_is_object(latest) ? json_object_size(latest) : 0, bytes = 0;
    const char *key;
    json_t *val;
    json_object_foreach(latest, key, val) bytes += strlen(key);
    if (n == 0) {
        n = API_FORECAST_CHANNELS_MAX;
        bytes = 64 * n;
    }
    if (name_bytes)
        *name_bytes = bytes;
    json_decref(v);
    return n;
}

void api__h_predictions(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    int64_t from, to;
    size_t limit;
    int desc;
    if (!have(r, be->pipe_predictions) || !have(r, be->pipe_status) ||
        api__arg_range(r, &from, &to) ||
        api__arg_limit(r, "limit", API_PREDICTIONS_PAGE, 100000, &limit) ||
        api__arg_order(r, &desc))
        return;
    /* One entry holds a predicted and an actual value of each of up to 64 channels, each
     * under its name: a page holds at most API_PREDICTIONS_PAGE of them and, by an upper
     * estimate of an entry's JSON (a number is at most 16 bytes, 4 more for quotes, colon
     * and comma; 128 for the rest), about API_PAGE_BYTES, whatever the limit. */
    size_t names, nch = modeled_channels(r, "predictions", &names);
    if (nch == 0)
        return;
    size_t entry = 2 * (names + 20 * nch) + 128;
    size_t page = limit < API_PREDICTIONS_PAGE ? limit : API_PREDICTIONS_PAGE;
    if (page > API_PAGE_BYTES / entry)
        page = API_PAGE_BYTES / entry ? API_PAGE_BYTES / entry : 1;
    char *out = NULL;
    int rc = be->pipe_predictions(be->ctx, r->seg[0], from, to, page, desc, &out);
    if (rc || out == NULL) {
        answer(r, rc, out, "predictions");
        return;
    }
    json_t *v = parse_answer(r, out);
    if (v == NULL)
        return;
    json_t *pts = json_object_get(v, "points");
    size_t n = json_array_size(pts);
    json_int_t last = n ? json_integer_value(json_object_get(json_array_get(pts, n - 1), "ts")) : 0;
    /* The next page continues after the last entry, in the same order: [last + 1, to) going
     * up, [from, last) going down (the last entry being the page's oldest). */
    if (n < page || (desc ? last <= from : last + 1 >= to)) { /* the range is exhausted */
        answer_page(r, v, NULL);
        return;
    }
    sbuf_t b;
    sbuf_init(&b);
    sbuf_append(&b, "/v1/devices/", 12);
    api__pct_encode(&b, r->seg[0]);
    sbuf_append(&b, "/predictions?from=", 18);
    api__time_value(&b, desc ? from : last + 1);
    sbuf_printf(&b, "&limit=%zu%s", limit, desc ? "&order=desc" : "");
    next_to(&b, desc ? last : to);
    answer_page(r, v, &b);
}

void api__h_forecast(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    size_t horizon;
    if (!have(r, be->pipe_forecast) || !have(r, be->pipe_status) ||
        api__arg_limit(r, "horizon", 60, 10000, &horizon))
        return;
    /* A forecast is one answer, not paged: its size (steps x channels, each with a mean and a
     * band) is capped by refusing a horizon beyond the device's share of the budget. */
    size_t nch = modeled_channels(r, "forecast", NULL);
    if (nch == 0)
        return;
    if (horizon * nch > API_FORECAST_VALUES) {
        api__error(r, 400,
                   "parameter 'horizon': %zu steps of %zu channels exceed %d forecast values; "
                   "at most %zu for device '%s'",
                   horizon, nch, API_FORECAST_VALUES, API_FORECAST_VALUES / nch, r->seg[0]);
        return;
    }
    char *out = NULL;
    int rc = be->pipe_forecast(be->ctx, r->seg[0], (int)horizon, &out);
    answer(r, rc, out, "forecast");
}

struct ev_item {
    json_int_t start_ts, id;
    const char *device;
    size_t pos;
};

/* The listings' order: newest start first, then device name, then id, all descending. */
static int by_key_desc(const void *a, const void *b)
{
    const struct ev_item *x = a, *y = b;
    if (x->start_ts != y->start_ts)
        return x->start_ts < y->start_ts ? 1 : -1;
    int c = strcmp(x->device, y->device);
    if (c != 0)
        return c < 0 ? 1 : -1;
    if (x->id != y->id)
        return x->id < y->id ? 1 : -1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

size_t api__events_page(json_t **arr, size_t limit, size_t max_bytes)
{
    size_t n = json_array_size(*arr);
    struct ev_item *it = calloc(n ? n : 1, sizeof *it);
    json_t *out = json_array();
    if (it == NULL || out == NULL) {
        free(it);
        json_decref(out);
        return SIZE_MAX;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(*arr, i);
        const char *dev = json_string_value(json_object_get(o, "device"));
        it[i] = (struct ev_item){json_integer_value(json_object_get(o, "start_ts")),
                                 json_integer_value(json_object_get(o, "id")), dev ? dev : "", i};
    }
    qsort(it, n, sizeof *it, by_key_desc);
    /* Each event's length as the answer prints it (and a comma): a page of events of 4,096
     * long channel names each stops at the byte bound, as the readings' pages do. */
    size_t k = 0, bytes = 0;
    for (; k < n && k < limit; k++) {
        json_t *o = json_array_get(*arr, it[k].pos);
        size_t len = json_dumpb(o, NULL, 0, PIPE_JSON_FLAGS) + 1;
        if (k > 0 && bytes + len > max_bytes)
            break;
        bytes += len;
        if (json_array_append(out, o) != 0) {
            free(it);
            json_decref(out);
            return SIZE_MAX;
        }
    }
    free(it);
    json_decref(*arr);
    *arr = out;
    return k;
}

/* The longest before= (its device name percent-decoded, plus the two numbers). */
#define BEFORE_MAX (BATCH_NAME_MAX + 48)

/* Parses before=<start_ts>,<device>,<id> (the page's last event, as its next gives it; the
 * device name between the first comma and the last, so it may hold commas): *start, dev (into
 * buf, NUL-terminated), *id. Returns 0, or -1 when malformed. */
static int parse_before(char *buf, int64_t *start, const char **dev, int64_t *id)
{
    char *c1 = strchr(buf, ','), *c2 = strrchr(buf, ',');
    if (c1 == NULL || c2 == c1 || c2 == c1 + 1)
        return -1;
    *c1 = *c2 = '\0';
    char *end;
    errno = 0;
    long long s = strtoll(buf, &end, 10);
    if (errno || end == buf || *end || !(buf[0] == '-' || isdigit((unsigned char)buf[0])))
        return -1;
    long long i = strtoll(c2 + 1, &end, 10);
    if (errno || end == c2 + 1 || *end || !isdigit((unsigned char)c2[1]) || i < 1)
        return -1;
    *start = s;
    *dev = c1 + 1;
    *id = i;
    return 0;
}

void api__h_anomalies(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    int64_t from, to;
    size_t limit;
    char bbuf[BEFORE_MAX + 1];
    int active;
    if (!have(r, be->pipe_anomalies) || api__arg_range(r, &from, &to) ||
        api__arg_limit(r, "limit", API_ANOMALIES_PAGE, API_ANOMALIES_PAGE, &limit) ||
        arg_bool(r, "active", &active))
        return;
    /* before=: where the previous page ended (its last event's start, device and id), so a
     * page may end inside one start time. Only the events after it are listed; to= still
     * bounds them (a cursor at or after to changes nothing). */
    const char *bv = api__arg(r, "before", bbuf, sizeof bbuf);
    if (r->status)
        return;
    int64_t bstart = 0, bid = 0;
    const char *bdev = NULL;
    if (bv && parse_before(bbuf, &bstart, &bdev, &bid) != 0) {
        api__error(r, 400,
                   "parameter 'before': want <start_ts>,<device>,<id> (the last event of a "
                   "page, as its 'next' gives it)");
        return;
    }
    int64_t upto = to;
    const char *tie_dev = NULL;
    if (bdev && bstart < to) {
        upto = bstart;
        tie_dev = bdev;
    }
    const char *dev = r->route == ROUTE_ANOMALIES ? NULL : r->seg[0];
    char *out = NULL;
    int rc = be->pipe_anomalies(be->ctx, dev, active, from, upto, tie_dev, bid, limit, &out);
    if (rc || out == NULL) {
        answer(r, rc, out, "anomalies");
        return;
    }
    json_t *v = parse_answer(r, out);
    if (v == NULL)
        return;
    json_t *arr = json_incref(json_object_get(v, "anomalies"));
    size_t n = json_array_size(arr), k;
    /* The page's bound leaves room for the rest of the answer: the next link holds up to two
     * percent-encoded device names (the path's and before='s, 600 bytes each) and four
     * numbers, about 1,400 bytes with the object around the array. */
    if (arr == NULL || (k = api__events_page(&arr, limit, API_PAGE_BYTES - 4096)) == SIZE_MAX) {
        json_decref(arr);
        json_decref(v);
        api__error(r, 500, "anomalies: out of memory");
        return;
    }
    if (json_object_set_new(v, "anomalies", arr) != 0) {
        json_decref(v);
        api__error(r, 500, "anomalies: out of memory");
        return;
    }
    if (k == n) { /* everything the range holds (as far as the backend read, see pipeline.h) */
        answer_page(r, v, NULL);
        return;
    }
    /* The next page: the events after this page's last one, in the listing's order. */
    const json_t *last = json_array_get(arr, k - 1);
    const char *ldev = json_string_value(json_object_get(last, "device"));
    sbuf_t b;
    sbuf_init(&b);
    if (dev) {
        sbuf_append(&b, "/v1/devices/", 12);
        api__pct_encode(&b, dev);
        sbuf_append(&b, "/anomalies?", 11);
    } else {
        sbuf_append(&b, "/v1/anomalies?", 14);
    }
    sbuf_printf(&b, "limit=%zu", limit);
    if (from > VTIME_MIN_MS) {
        sbuf_append(&b, "&from=", 6);
        api__time_value(&b, from);
    }
    next_to(&b, to);
    sbuf_printf(&b, "&before=%lld,",
                (long long)json_integer_value(json_object_get(last, "start_ts")));
    api__pct_encode(&b, ldev ? ldev : "");
    sbuf_printf(&b, ",%lld", (long long)json_integer_value(json_object_get(last, "id")));
    if (active)
        sbuf_append(&b, "&active=true", 12);
    answer_page(r, v, &b);
}

void api__h_model(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    if (!have(r, be->pipe_models))
        return;
    char *out = NULL;
    int rc = be->pipe_models(be->ctx, r->seg[0], &out);
    answer(r, rc, out, "model");
}

/* 409 to a retrain asked during an open anomaly episode, the device's or (session 66) another
 * member's of its group (res->device): the error names the device and the event (res->event:
 * its JSON text; NULL: none kept) and the two ways on, and "device" and "event" give them.
 * The text is built whole in an sbuf: two device ids of up to BATCH_NAME_MAX bytes each did
 * not fit the fixed buffers it had (char who[160], msg[1280]; read67a), and snprintf's cut,
 * inside a multi-byte UTF-8 character, made json_pack refuse it: the 409 was a 500 "out of
 * memory" (session 67). */
static void retrain_refused(api_request_t *r, const struct api_retrain *res)
{
    json_error_t jerr;
    json_t *e = res->event ? json_loads(res->event, 0, &jerr) : NULL;
    const char *dev = r->seg[0], *start = json_string_value(json_object_get(e, "start"));
    const char *holder = res->device ? res->device : "?";
    sbuf_t m;
    sbuf_init(&m);
    if (res->device && strcmp(res->device, dev) == 0)
        sbuf_printf(&m, "retrain: device '%s' has ", dev);
    else
        sbuf_printf(&m, "retrain: device '%s' is in a group with '%s', which has ", dev, holder);
    if (json_is_integer(json_object_get(e, "id")))
        sbuf_printf(&m, "anomaly event %lld, open since %s",
                    (long long)json_integer_value(json_object_get(e, "id")), start ? start : "?");
    else
        sbuf_printf(&m, "anomaly episode open");
    sbuf_printf(&m,
                ": a training now would learn the fault as its normal and the alarm would end. "
                "To take its level as normal and train on it, POST "
                "/v1/devices/%s/anomalies/accept (the event ends \"operator\"); to train on it "
                "anyway, POST /v1/devices/%s/model/retrain?force=true (which ends the event the "
                "same way)",
                holder, dev);
    json_t *v = m.oom ? NULL : json_pack("{s:s,s:s?}", "error", m.data, "device", res->device);
    sbuf_deinit(&m);
    if (v && e)
        json_object_set(v, "event", e);
    json_decref(e);
    answer_pipe(r, 409, v); /* the event as GET .../anomalies shows it */
}

/* Sets key of v to the JSON text t (NULL, or not JSON: nothing). */
static void set_text(json_t *v, const char *key, const char *t)
{
    json_error_t jerr;
    json_t *j = t ? json_loads(t, 0, &jerr) : NULL;
    if (v && j)
        json_object_set(v, key, j);
    json_decref(j);
}

/* A forced retrain refused (or failed) after it ended other members' episodes (session 67: a
 * detector reset during it, out of memory): the error answer fail() made keeps what was ended,
 * "ended_members" (and "ended_members_lost": true when the list is not whole), and its message
 * says so. Without memory for that, fail()'s answer stays. */
static void retrain_failed(api_request_t *r, const struct api_retrain *res)
{
    json_error_t jerr;
    json_t *v = r->resp ? json_loadb(r->resp, r->resp_len, 0, &jerr) : NULL;
    const char *msg = json_string_value(json_object_get(v, "error"));
    sbuf_t b;
    sbuf_init(&b);
    if (msg == NULL ||
        sbuf_printf(&b,
                    "%s; this retrain had already ended the anomaly episodes of the group's "
                    "members listed in ended_members (each as the operator's, its acceptance "
                    "asking the group's training)%s",
                    msg, res->ended_lost ? ", a list not whole (out of memory)" : "") != 0 ||
        json_object_set_new(v, "error", json_string(b.data)) != 0) {
        sbuf_deinit(&b);
        json_decref(v);
        return;
    }
    sbuf_deinit(&b);
    set_text(v, "ended_members", res->ended_others);
    if (res->ended_lost)
        json_object_set_new(v, "ended_members_lost", json_true());
    answer_pipe(r, r->status, v); /* the listing's precision, as the 202 and the 409 */
}

void api__h_retrain(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    int force;
    if (!have(r, be->pipe_retrain) || arg_bool(r, "force", &force))
        return;
    struct api_retrain res;
    int rc = be->pipe_retrain(be->ctx, r->seg[0], force, &res);
    if (rc == 0 && res.open) {
        retrain_refused(r, &res);
    } else if (rc == 0) {
        json_t *v = json_pack("{s:s,s:s}", "device", r->seg[0], "training", "queued");
        set_text(v, "ended", res.ended); /* a forced retrain's ended events */
        set_text(v, "ended_members", res.ended_others);
        if (v && res.ended_lost) /* out of memory: the list is not whole (read67c) */
            json_object_set_new(v, "ended_members_lost", json_true());
        answer_pipe(r, 202, v); /* the ended events as the listing shows them */
    } else {
        fail(r, rc, "retrain");
        if (res.ended_others || res.ended_lost)
            retrain_failed(r, &res);
    }
    free(res.device);
    free(res.event);
    free(res.ended);
    free(res.ended_others);
}

/* The longest operator's note an acceptance or a maintenance keeps, in bytes of UTF-8. */
#define NOTE_MAX 500
/* The longest maintenance, in minutes (a week). */
#define MAINT_MINUTES_MAX 10080

/* A maintenance's body beyond the note: minutes (0: not given), or from (-1: now) and until
 * (-1: not given) in epoch ms. */
struct maint_body {
    json_int_t minutes;
    int64_t from_ms, until_ms;
};

/* The optional timestamp field name of v into *ms (-1 when absent). Returns 0, or -1 with a
 * 400 answer naming it. */
static int body_time(api_request_t *r, json_t *v, const char *name, int64_t *ms)
{
    json_t *t = json_object_get(v, name);
    const char *why;
    *ms = -1;
    if (t && parse_json_time(t, ms, &why)) {
        api__error(r, 400, "field '%s': %s", name, why);
        return -1;
    }
    return 0;
}

/* Checks a maintenance's period: {"minutes": N} (an integer in [1, MAINT_MINUTES_MAX]), or
 * {"until": T} with an optional "from" (absent: now), until after from and after now, at most
 * MAINT_MINUTES_MAX minutes after from. Returns 0 with *mb, or -1 with a 400 answer naming the
 * field. */
static int maint_period(api_request_t *r, json_t *v, struct maint_body *mb)
{
    json_t *m = json_object_get(v, "minutes");
    if (body_time(r, v, "from", &mb->from_ms) || body_time(r, v, "until", &mb->until_ms))
        return -1;
    mb->minutes = 0;
    if (mb->until_ms < 0) {
        if (mb->from_ms >= 0) {
            api__error(r, 400, "field 'until': required with 'from'");
            return -1;
        }
        if (!json_is_integer(m) || json_integer_value(m) < 1 ||
            json_integer_value(m) > MAINT_MINUTES_MAX) {
            api__error(r, 400, "field 'minutes': %s an integer from 1 to %d (or give 'until')",
                       m ? "must be" : "required:", MAINT_MINUTES_MAX);
            return -1;
        }
        mb->minutes = json_integer_value(m);
        return 0;
    }
    const int64_t now_ms = vtime_now_ms(), from_ms = mb->from_ms >= 0 ? mb->from_ms : now_ms;
    const char *why = NULL;
    char week[64];
    snprintf(week, sizeof week, "at most a week (%d minutes) after 'from'", MAINT_MINUTES_MAX);
    if (m)
        why = "not with 'minutes' (give one of them)";
    else if (mb->from_ms >= 0 && mb->until_ms <= from_ms)
        why = "must be after 'from'";
    else if (mb->until_ms <= now_ms) /* without 'from' too: no 'from' to name then */
        why = mb->from_ms >= 0 ? "must be after now"
                               : "must be after now (without 'from' the period starts now)";
    else if (mb->until_ms - from_ms > (int64_t)MAINT_MINUTES_MAX * 60000)
        why = week;
    if (why) {
        api__error(r, 400, "field 'until': %s", why);
        return -1;
    }
    return 0;
}

/* An operator's body: {"note": "..."} (null: none) and, when mb is not NULL, a maintenance's
 * period (maint_period); without mb an empty body is no note. Returns 0 with *note borrowed
 * from *v (the caller json_decrefs *v, also on failure), or -1 with a 400 answer naming what is
 * wrong. */
static int operator_body(api_request_t *r, json_t **v, const char **note, struct maint_body *mb)
{
    *v = NULL;
    *note = NULL;
    json_error_t jerr;
    int rc = api__json_body(r, v, &jerr);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        api__json_error(r, &jerr,
                        mb ? "(the body is a JSON object of \"minutes\" or \"from\" and \"until\", "
                             "and \"note\")"
                           : "(the body is empty or a JSON object {\"note\": \"...\"})");
        return -1;
    }
    if (*v == NULL && mb == NULL)
        return 0; /* no body: no note */
    if (!json_is_object(*v)) {
        api__error(r, 400,
                   mb ? "body must be a JSON object {\"minutes\": N, \"note\": \"...\"} or "
                        "{\"from\": T, \"until\": T, \"note\": \"...\"}"
                      : "body must be empty or a JSON object {\"note\": \"...\"}");
        return -1;
    }
    const char *key;
    json_t *val;
    json_object_foreach(*v, key, val)
    {
        if (mb &&
            (strcmp(key, "minutes") == 0 || strcmp(key, "from") == 0 || strcmp(key, "until") == 0))
            continue;
        if (strcmp(key, "note") != 0) {
            api__error(r, 400, "field '%.64s': unknown (the body takes only %s)", key,
                       mb ? "\"minutes\", \"from\", \"until\" and \"note\"" : "\"note\"");
            return -1;
        }
        if (json_is_null(val))
            continue;
        if (!json_is_string(val)) {
            api__error(r, 400, "field 'note': must be a string");
            return -1;
        }
        if (json_string_length(val) > NOTE_MAX) {
            api__error(r, 400, "field 'note': longer than %d bytes", NOTE_MAX);
            return -1;
        }
        *note = json_string_value(val);
    }
    return mb ? maint_period(r, *v, mb) : 0;
}

void api__h_accept(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    if (!have(r, be->pipe_accept))
        return;
    json_t *v;
    const char *note;
    if (operator_body(r, &v, &note, NULL) == 0) {
        char *out = NULL;
        int rc = be->pipe_accept(be->ctx, r->seg[0], note, &out);
        if (rc == ERR_RANGE)
            api__error(r, 409, "accept: device '%s' has no open anomaly", r->seg[0]);
        else
            answer(r, rc, out, "accept");
    }
    json_decref(v);
}

/* 409: the period asked overlaps period (the backend's JSON text of it, taken). */
static void maint_overlaps(api_request_t *r, char *period)
{
    json_error_t jerr;
    json_t *o = period ? json_loads(period, 0, &jerr) : NULL;
    free(period);
    const char *from = json_string_value(json_object_get(o, "from"));
    const char *until = json_string_value(json_object_get(o, "until"));
    char msg[512];
    snprintf(msg, sizeof msg, "maintenance: overlaps the period of device '%s' from %s until %s",
             r->seg[0], from ? from : "?", until ? until : "?");
    api__json(r, 409, json_pack("{s:s,s:o}", "error", msg, "overlaps", o ? o : json_null()));
}

/* Whether a maintenance change's rc says it was made but not stored (daemon/pipeline.h). */
static int maint_not_stored(int rc)
{
    return rc == ERR_NOSPACE || rc == ERR_CLOSED || rc == ERR_IO || rc == ERR_LOCKED;
}

/* Answers a maintenance change the store did not commit: 507 (disk full) or 503 (closing), with
 * Retry-After, or 500 (the write failed), saying what holds meanwhile (holds) so the operator
 * knows to retry; ans (the backend's answer as on success, taken; NULL: none) is kept beside
 * the error with "stored": false. */
static void maint_unstored(api_request_t *r, int rc, const char *holds, char *ans)
{
    const char *why = rc == ERR_NOSPACE  ? "no space left on the data volume"
                      : rc == ERR_CLOSED ? "server is shutting down"
                      : rc == ERR_LOCKED ? err_str(ERR_LOCKED)
                                         : "the write failed";
    r->retry_after = rc == ERR_NOSPACE ? 30 : rc == ERR_CLOSED || rc == ERR_LOCKED ? 5 : 0;
    char msg[512];
    snprintf(msg, sizeof msg, "maintenance: device '%s': %s, not stored (%s): retry", r->seg[0],
             holds, why);
    json_t *o = ans ? json_loads(ans, 0, NULL) : NULL;
    free(ans);
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_object();
    }
    if (o && (json_object_set_new(o, "error", json_string(msg)) ||
              json_object_set_new(o, "stored", json_false()))) {
        json_decref(o);
        o = NULL;
    }
    api__json(r, rc == ERR_NOSPACE ? 507 : rc == ERR_CLOSED || rc == ERR_LOCKED ? 503 : 500, o);
}

/* DELETE: the current period ends now, or (?from=T) the scheduled one starting at T is
 * cancelled. Not stored, either is undone (the period goes on, or stays scheduled). */
static void maint_delete(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    int64_t from_ms;
    if (api__arg_time(r, "from", -1, &from_ms))
        return;
    int rc = be->pipe_maint_end(be->ctx, r->seg[0], from_ms);
    char t[32];
    if (rc == ERR_RANGE && from_ms < 0)
        api__error(r, 409, "maintenance: device '%s' is not in maintenance", r->seg[0]);
    else if (rc == ERR_RANGE)
        api__error(r, 404, "maintenance: no period of device '%s' starts at %s", r->seg[0],
                   vtime_format(from_ms, t, sizeof t));
    else if (rc == ERR_BUSY)
        api__error(r, 409,
                   "maintenance: the period of device '%s' from %s is not scheduled (a past one "
                   "stays; DELETE without 'from' ends the current one)",
                   r->seg[0], vtime_format(from_ms, t, sizeof t));
    else if (maint_not_stored(rc))
        maint_unstored(r, rc,
                       from_ms < 0 ? "still in maintenance (not ended)"
                                   : "the period still scheduled (not cancelled)",
                       NULL);
    else if (rc)
        fail(r, rc, "maintenance");
    else {
        r->status = 204;
        r->content_type = NULL;
    }
}

void api__h_maint(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    if (!have(r, be->pipe_maint_start))
        return;
    char *out = NULL;
    if (api__is_get(r)) {
        int rc = be->pipe_maint_list(be->ctx, r->seg[0], &out);
        answer(r, rc, out, "maintenance");
        return;
    }
    if (strcmp(r->method, "DELETE") == 0) {
        maint_delete(r);
        return;
    }
    json_t *v;
    const char *note;
    struct maint_body mb;
    if (operator_body(r, &v, &note, &mb) == 0) {
        int rc = be->pipe_maint_start(be->ctx, r->seg[0], mb.from_ms, mb.until_ms,
                                      (int64_t)mb.minutes, note, &out);
        if (rc == ERR_BUSY)
            maint_overlaps(r, out);
        else if (maint_not_stored(rc)) /* in effect in memory: an ended episode stays ended */
            maint_unstored(r, rc, "the period in effect until vigild restarts", out);
        else if (rc == ERR_INVAL)
            api__error(r, 400, "field 'until': must be after now");
        else if (rc == ERR_LIMIT)
            api__error(r, 409,
                       "maintenance: device '%s' keeps no more periods (all it keeps are current "
                       "or scheduled: cancel one)",
                       r->seg[0]);
        else
            answer(r, rc, out, "maintenance");
    }
    json_decref(v);
}

/* Answers a swap (a rollback, a PUT of weights) that serves but was not saved (unsaved, an
 * ERR_): 507 (disk full) with Retry-After, 503 (closing, locked, the write queue full: its
 * save was refused, ERR_BUSY, as api__backend_error answers a write) or 500, with "stored":
 * false beside what the success would answer (ans, taken; NULL: none): a restart would serve
 * the model before it again, so the operator knows to ask again (session 68). */
static void swap_unsaved(api_request_t *r, int unsaved, const char *what, json_t *ans)
{
    if (unsaved == ERR_AGAIN) { /* serves; its save is the ending training's (read68e) */
        json_t *o = json_is_object(ans) ? ans : json_object();
        if (o != ans)
            json_decref(ans);
        char note[640];
        snprintf(note, sizeof note,
                 "%s: device '%s': the new model serves; a training of the device (or, for a "
                 "group's rollback, of another member) is ending, and its end saves it (in a "
                 "moment): a crash before then would serve the model before it again",
                 what, r->seg[0]);
        if (o && (json_object_set_new(o, "stored", json_false()) ||
                  json_object_set_new(o, "note", json_string(note)))) {
            json_decref(o);
            o = NULL;
        }
        api__json(r, 202, o);
        return;
    }
    const int busy = unsaved == ERR_CLOSED || unsaved == ERR_LOCKED || unsaved == ERR_BUSY;
    const char *why = unsaved == ERR_NOSPACE  ? "no space left on the data volume"
                      : unsaved == ERR_CLOSED ? "server is shutting down"
                      : unsaved == ERR_BUSY   ? "write queue is full"
                                              : err_str(unsaved);
    r->retry_after = unsaved == ERR_NOSPACE ? 30 : unsaved == ERR_BUSY ? 1 : busy ? 5 : 0;
    char msg[512];
    snprintf(msg, sizeof msg,
             "%s: device '%s': the new model serves, but it was not saved (%s): a restart would "
             "serve the model before it again; ask again once the store writes",
             what, r->seg[0], why);
    json_t *o = json_is_object(ans) ? ans : json_object();
    if (o != ans)
        json_decref(ans);
    if (o && (json_object_set_new(o, "error", json_string(msg)) ||
              json_object_set_new(o, "stored", json_false()))) {
        json_decref(o);
        o = NULL;
    }
    api__json(r, unsaved == ERR_NOSPACE ? 507 : busy ? 503 : 500, o);
}

void api__h_rollback(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    if (!have(r, be->pipe_rollback))
        return;
    json_t *v;
    json_error_t jerr;
    int got = api__json_body(r, &v, &jerr);
    if (got < 0)
        return;
    if (got > 0) {
        api__json_error(r, &jerr, "(the body is {\"version\": N})");
        return;
    }
    /* A key other than "version" is named, as accept and maintenance name theirs: ignored, a
     * "versoin" got the generic message and {"version":1,"force":true} a 200 (session 65). */
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (strcmp(key, "version") != 0) {
            api__error(r, 400, "field '%.64s': unknown (the body takes only \"version\")", key);
            json_decref(v);
            return;
        }
    }
    json_t *ver = v ? json_object_get(v, "version") : NULL;
    if (!json_is_integer(ver) || json_integer_value(ver) < 1 ||
        json_integer_value(ver) > UINT32_MAX) {
        json_decref(v);
        api__error(r, 400, "body must be {\"version\": N} with N a version of GET .../model");
        return;
    }
    uint32_t version = (uint32_t)json_integer_value(ver);
    json_decref(v);
    struct api_fit fit = {0};
    int rc = be->pipe_rollback(be->ctx, r->seg[0], version, &fit);
    const int trained = fit.trained, now = fit.now;
    if (rc == ERR_RANGE) /* a version that never served (swapped false) is none either */
        api__error(r, 404,
                   "rollback: device '%s' keeps no version %u that served (GET .../model lists "
                   "the versions kept; \"rollback\": true marks those that can serve again)",
                   r->seg[0], version);
    else if (rc == ERR_INVAL && trained > 0 && trained != now) /* a channel came since */
        api__error(r, 409,
                   "rollback: version %u of device '%s' was trained on %d channel%s and the "
                   "device has %d now: it cannot serve them (a version serves only the "
                   "channels it was trained on)",
                   version, r->seg[0], trained, trained == 1 ? "" : "s", now);
    else if (rc == ERR_INVAL && trained > 0) /* the device keeps the size it was made with */
        api__error(r, 409,
                   "rollback: version %u of device '%s' is an LSTM of hidden %d, layers %d, and "
                   "cannot serve the device, whose model keeps the size it was made with: "
                   "hidden %d, layers %d; roll back to a version of that size (the device's own "
                   "trainings make no other; GET .../model lists the versions kept)",
                   version, r->seg[0], fit.size[0], fit.size[1], fit.dev_size[0], fit.dev_size[1]);
    else if (rc == ERR_INVAL) /* the version exists: its state refuses, as 'serves no LSTM' */
        api__error(r, 409,
                   "rollback: version %u of device '%s' kept no parameters: it was trained by an "
                   "older vigild, which kept only an LSTM's weights (versions trained since "
                   "keep theirs)",
                   version, r->seg[0]);
    else if (rc)
        fail(r, rc, "rollback");
    else if (fit.unsaved)
        swap_unsaved(r, fit.unsaved, "rollback",
                     json_pack("{s:s,s:I}", "device", r->seg[0], "serving", (json_int_t)version));
    else
        api__json(r, 200,
                  json_pack("{s:s,s:I}", "device", r->seg[0], "serving", (json_int_t)version));
}

void api__h_weights(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    if (api__is_get(r)) {
        if (!have(r, be->pipe_weights_get))
            return;
        void *buf = NULL;
        size_t len = 0;
        int rc = be->pipe_weights_get(be->ctx, r->seg[0], &buf, &len);
        if (rc == ERR_INVAL) {
            api__error(r, 409,
                       "weights: device '%s' serves no LSTM (a linear model or persistence "
                       "serves: GET .../model says which)",
                       r->seg[0]);
            return;
        }
        if (rc) {
            fail(r, rc, "weights");
            return;
        }
        sbuf_t b;
        sbuf_init(&b);
        sbuf_append(&b, buf, len);
        free(buf);
        api__body(r, 200, "application/octet-stream", &b);
        return;
    }
    if (!have(r, be->pipe_weights_put))
        return;
    char *body;
    size_t len;
    int owned;
    if (api__request_body(r, &body, &len, &owned))
        return;
    char why[512] = "";
    int unsaved = 0;
    int rc = be->pipe_weights_put(be->ctx, r->seg[0], body, len, why, sizeof why, &unsaved);
    if (owned)
        free(body);
    if (rc == ERR_CORRUPT)
        api__error(r, 400, "body is not a valid safetensors file of an LSTM model: %s",
                   why[0] ? why : "malformed");
    else if (rc == ERR_INVAL)
        api__error(r, 400, "the weights' shape does not fit device '%s': %s", r->seg[0],
                   why[0] ? why : "channels or inputs");
    else if (rc)
        fail(r, rc, "weights");
    else {
        char *out = NULL;
        rc = be->pipe_models ? be->pipe_models(be->ctx, r->seg[0], &out) : ERR_IO;
        json_t *ans = rc == 0 && out ? json_loads(out, 0, NULL) : NULL;
        free(out);
        /* The file's tensors vigild does not use, named (accepted, not silently: read69b 5). */
        if (json_is_object(ans) && why[0])
            json_object_set_new(ans, "warnings", json_pack("[s]", why));
        if (unsaved)
            swap_unsaved(r, unsaved, "weights", ans);
        else if (ans)
            answer_pipe(r, 200, ans);
        else
            fail(r, rc ? rc : ERR_NOMEM, "weights");
    }
}

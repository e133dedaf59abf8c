/* api/handlers.c: the /v1 JSON endpoints: ingest of JSON readings and reading queries (the
 * device endpoints are in devices.c).
 *
 * Handlers run on libmicrohttpd's threads ("any thread") and reach storage only through the
 * backend table. Every error answer is {"error": "..."} naming the field, item or parameter.
 * A list answer (device list, readings) is one page of at most `limit` items and at most
 * API_PAGE_BYTES of JSON: the item that crosses the byte cap is taken back and stops the
 * storage read, and the page's continuation ("next_after", "next") then starts at it. */
#include "api_int.h"
#include "agg.h"
#include "err.h"
#include "nameidx.h"
#include "parse.h"
#include "vtime.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void api__pct_encode(sbuf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            sbuf_append(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sbuf_append(b, e, 3);
        }
    }
}

/* Appends a time parameter's value as the read routes take it back (vtime_parse_param): epoch
 * milliseconds, except where they would look like epoch seconds (1970-01-02 to 1973-03-03, which
 * the parameter refuses as a number): there RFC 3339, which names its unit. A page's "next"
 * must never be refused by the route that gave it (it was, for readings stored in that range by
 * line protocol, whose nanoseconds name their unit). */
void api__time_value(sbuf_t *b, int64_t ms)
{
    char buf[32];
    if (vtime_looks_like_secs((double)ms)) {
        vtime_format(ms, buf, sizeof buf);
        sbuf_append(b, buf, strlen(buf));
    } else
        sbuf_printf(b, "%lld", (long long)ms);
}

/* Whether the Content-Type ct is one of the n types in list (its parameters aside). */
static int ct_in(const char *ct, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(list[i]);
        if (strncasecmp(ct, list[i], len) == 0 &&
            (ct[len] == '\0' || ct[len] == ';' || ct[len] == ' '))
            return 1;
    }
    return 0;
}

/* Content types a JSON endpoint accepts: none, JSON, what curl -d sends by default, or
 * text/plain, what fetch() and browsers send with a string body (session 65: it was a 415). */
int api__json_content_type_ok(api_request_t *r)
{
    const char *ct =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct == NULL)
        return 1;
    static const char *const ok[] = {"application/json", "text/json",
                                     "application/x-www-form-urlencoded", "text/plain", "*/*"};
    if (ct_in(ct, ok, sizeof ok / sizeof ok[0]))
        return api__charset_ok(r, 0);
    /* Newline-delimited JSON's types get the hint a body of one object a line gets (session 66:
     * a plain 415 told the client nothing of how to send the same readings). */
    static const char *const lines[] = {"application/x-ndjson",  "application/ndjson",
                                        "application/jsonl",     "application/x-jsonlines",
                                        "application/jsonlines", "application/json-seq"};
    if (ct_in(ct, lines, sizeof lines / sizeof lines[0])) {
        api__error(r, 415,
                   "Content-Type '%s' is not supported here (send application/json; several "
                   "readings: send them as one JSON array [{...}, {...}], not one a line)",
                   ct);
        return 0;
    }
    api__error(r, 415, "Content-Type '%s' is not supported here (send application/json)", ct);
    return 0;
}

/* The answer's warnings: at most this many (a batch of many devices each given a new channel
 * says the first ones; the log and vigil_model_relearns_total count them all). */
#define NEW_CHANNEL_WARNINGS 16

/* new_channels's callback: a warning that the write brings device a new channel, once each in
 * the array arg. In a group, what the group's next training then does (place: API_GROUP_*)
 * replaces the plain text (session 66, read66a: one text for both was untrue; session 67,
 * read67a: the lead is the member with the newest model, and a device whose channels match
 * the lead's is told so, not that it is left out). */
static void new_channel_warn(void *arg, const char *device, const char *channel, const char *group,
                             int place)
{
    json_t *warn = arg;
    if (json_array_size(warn) >= NEW_CHANNEL_WARNINGS)
        return; /* full: a batch of 100,000 such points formats no more */
    char msg[3 * BATCH_NAME_MAX + 256];
    if (group && place == API_GROUP_LEADS)
        snprintf(msg, sizeof msg,
                 "device '%s': new channel '%s': its model starts learning again, and group "
                 "'%s' trains only the members with its channels (it has the group's newest "
                 "model): the others keep the model they have, left out of its trainings until "
                 "they have these channels",
                 device, channel, group);
    else if (group && place == API_GROUP_MATCHES)
        snprintf(msg, sizeof msg,
                 "device '%s': new channel '%s': its model starts learning again, and its "
                 "channels now match those group '%s' trains with: the group's next training "
                 "gives it the shared model",
                 device, channel, group);
    else if (group)
        snprintf(msg, sizeof msg,
                 "device '%s': new channel '%s': its model starts learning again, and group "
                 "'%s' trains only the members with the channels of its member with the newest "
                 "model: this device gets no detection until its channels match theirs or it "
                 "leaves the group",
                 device, channel, group);
    else
        snprintf(msg, sizeof msg, "device '%s': new channel '%s': its model starts learning again",
                 device, channel);
    api__warning_add(warn, NEW_CHANNEL_WARNINGS, msg);
}

int api__warning_add(json_t *warn, size_t max, const char *msg)
{
    if (!json_is_array(warn) || (max && json_array_size(warn) >= max))
        return 0;
    size_t i;
    json_t *w;
    json_array_foreach(warn, i, w)
    {
        if (strcmp(json_string_value(w), msg) == 0)
            return 0;
    }
    return json_array_append_new(warn, json_string(msg)) == 0;
}

void api__h_readings_post(api_request_t *r)
{
    struct api_server *srv = r->srv;
    if (!api__json_content_type_ok(r))
        return;
    char *body;
    size_t len;
    int owned;
    if (api__request_body(r, &body, &len, &owned))
        return;
    if (!api__body_utf8_ok(r, body, len)) {
        if (owned)
            free(body);
        return;
    }
    batch_t b;
    batch_init(&b);
    parse_errors_t *errs = calloc(1, sizeof *errs);
    char msg[256];
    size_t nitems = 0;
    int rc = errs ? parse_json_readings(&b, body, len, vtime_stamp_ms(), r->max_batch, &nitems,
                                        errs, msg, sizeof msg)
                  : ERR_NOMEM;
    if (owned)
        free(body);
    if (rc == ERR_INVAL) {
        api__error(r, 400, "%s", msg);
        goto out;
    }
    if (rc == ERR_LIMIT) {
        api__error(r, 413, "batch holds more than %zu items (the limit); split it", r->max_batch);
        goto out;
    }
    if (rc) {
        api__error(r, 500, "parsing readings: %s", err_str(rc));
        goto out;
    }
    if (api__admit(r, &b, errs))
        goto out;
    /* Items repeating a device and timestamp are one reading in the store: merged here (the
     * store would merge them too), so the answer can count them and the warnings see what is
     * stored. */
    size_t accepted = b.npoints, readings = b.nfields, merged = 0; /* as /write counts them */
    if (batch_merge_same_ts(&b, &merged)) {
        api__backend_error(r, ERR_RESOURCE, "merging readings"); /* memory: 503, nothing stored */
        goto out;
    }
    json_t *warn = json_array();
    if (srv->be.new_channels && warn)
        srv->be.new_channels(srv->be.ctx, &b, new_channel_warn, warn);
    if (accepted > 0) {
        rc = srv->be.write(srv->be.ctx, &b);
        if (rc) {
            json_decref(warn);
            api__backend_error(r, rc, "storing readings");
            goto out;
        }
    }
    api_count_ingest(srv, "json", readings, errs->count);
    json_t *resp = json_pack("{s:I}", "accepted", (json_int_t)accepted);
    if (merged > 0)
        json_object_set_new(resp, "merged", json_integer((json_int_t)merged));
    if (json_array_size(warn) > 0)
        json_object_set(resp, "warnings", warn);
    json_decref(warn);
    if (errs->count == 0) {
        api__json(r, 200, resp);
        goto out;
    }
    json_t *list = json_array();
    for (uint32_t i = 0; i < errs->kept; i++)
        json_array_append_new(list, json_pack("{s:I,s:s}", "index", (json_int_t)errs->e[i].item,
                                              "error", errs->e[i].msg));
    json_object_set_new(resp, "rejected", json_integer(errs->count));
    json_object_set_new(resp, "errors", list);
    if (errs->count > errs->kept)
        json_object_set_new(resp, "errors_truncated", json_true());
    api__json(r, 400, resp);
out:
    free(errs);
    batch_deinit(&b);
}

/* Ends a page at API_PAGE_BYTES: when the item just appended after mark crossed it (and is not
 * the page's first), it is taken back. Returns 1 when the page is full. */
int api__page_full(sbuf_t *b, size_t mark, size_t n)
{
    if (b->len <= API_PAGE_BYTES || n == 0 || b->oom)
        return 0;
    b->len = mark;
    b->data[mark] = '\0';
    return 1;
}

/* ---- readings ----------------------------------------------------------------------------- */

struct points_ctx {
    sbuf_t *b;
    size_t n;
    int full; /* the page reached API_PAGE_BYTES: the point that crossed it was taken back */
    int64_t last_ts;
};

static int point_one(void *arg, int64_t ts, size_t n, const char *const *ch, const double *v)
{
    struct points_ctx *c = arg;
    size_t mark = c->b->len;
    char t[32];
    sbuf_printf(c->b, "%s{\"ts\":%lld,\"time\":\"%s\",\"values\":{", c->n ? "," : "", (long long)ts,
                vtime_format(ts, t, sizeof t));
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_append(c->b, ",", 1);
        api__json_str(c->b, ch[i]);
        sbuf_append(c->b, ":", 1);
        api__json_num(c->b, v[i]);
    }
    sbuf_append(c->b, "}}", 2);
    if ((c->full = api__page_full(c->b, mark, c->n)) != 0)
        return 1; /* stops the storage read too */
    c->n++;
    c->last_ts = ts;
    return c->b->oom;
}

int api__arg_set(api_request_t *r, const char *name, const char *list, const char *const *names,
                 int n, const char *what, unsigned *out)
{
    *out = 0;
    for (const char *p = list;; p++) {
        size_t len = strcspn(p, ",");
        int k = 0;
        while (k < n && (strlen(names[k]) != len || memcmp(p, names[k], len) != 0))
            k++;
        if (k == n) {
            sbuf_t want;
            sbuf_init(&want);
            for (int i = 0; i < n; i++)
                sbuf_printf(&want, "%s%s", i ? ", " : "", names[i]);
            api__error(r, 400, "parameter '%s': '%.*s' is no %s (a comma list of %s)", name,
                       (int)(len < 64 ? len : 64), p, what, want.oom ? "..." : want.data);
            sbuf_deinit(&want);
            return -1;
        }
        *out |= 1u << k;
        p += len;
        if (*p == '\0')
            return 0;
    }
}

int api__arg_time(api_request_t *r, const char *name, int64_t dflt, int64_t *out)
{
    char buf[64];
    const char *v = api__arg(r, name, buf, sizeof buf);
    *out = dflt;
    if (v == NULL)
        return r->status ? -1 : 0;
    /* Epoch seconds for milliseconds (from=1796000000, read as a day of January 1970, answered
     * nothing), also with a fraction or an exponent (1796000000.123, 1.796e9), are refused as
     * JSON's ts refuses them; an RFC 3339 time of those days names its unit and is taken. */
    int rc = vtime_parse_param(v, out);
    if (rc == 0)
        return 0;
    /* What is wrong first, as JSON's ts says it: epoch seconds, micro- or nanoseconds (the unit
     * named, the milliseconds to send), a negative number or a fraction, a well-formed RFC 3339
     * time's leap second or offset past the range, a date alone or a time without its offset;
     * and (session 49) white space at the end, a unit, now, inf or nan, a date cut short. What
     * is no time at all gets the general words with an example of each form taken. */
    char why_buf[VTIME_WHY_MAX];
    const char *why = vtime_parse_why(v, rc, why_buf, sizeof why_buf);
    if (*v == '\0') /* refused as always; session 50: it got the general words, '' quoted */
        api__error(r, 400,
                   "parameter '%s' is empty: give epoch milliseconds or RFC 3339, e.g. "
                   "1796000000000 or 2026-11-28T10:00:00Z, or leave '%s' out",
                   name, name);
    else if (why != NULL)
        api__error(r, 400, "parameter '%s': '%s': %s", name, v, why);
    else
        api__error(r, 400,
                   "parameter '%s': '%s' is not epoch milliseconds or RFC 3339, e.g. "
                   "1796000000000 or 2026-11-28T10:00:00Z",
                   name, v);
    return -1;
}

struct chan_find {
    const api_query_t *q;
    const char *missing; /* the first channel of the query the device does not have */
};

static int find_missing(void *arg, const api_device_t *d)
{
    struct chan_find *f = arg;
    for (size_t i = 0; i < f->q->nchannels && f->missing == NULL; i++) {
        size_t k = 0;
        while (k < d->nchannels && strcmp(d->channels[k], f->q->channels[i]) != 0)
            k++;
        if (k == d->nchannels)
            f->missing = f->q->channels[i];
    }
    return 1;
}

void api__unknown_channel(api_request_t *r, const api_query_t *q)
{
    struct chan_find f = {q, NULL};
    /* The channels only: device_find, which answers at once while the store reloads its
     * counters (device_get would wait about a second and then give up). */
    if (r->srv->be.device_find(r->srv->be.ctx, q->device, find_missing, &f) == 0 && f.missing)
        api__error(r, 400, "parameter 'channels': device '%s' has no channel '%s'", q->device,
                   f.missing);
    else
        api__error(r, 400, "parameter 'channels': unknown channel of device '%s'", q->device);
}

int api__arg_range(api_request_t *r, int64_t *from, int64_t *to)
{
    if (api__arg_time(r, "from", VTIME_MIN_MS, from) ||
        api__arg_time(r, "to", VTIME_MAX_MS + 1, to))
        return -1;
    if (*from >= *to) {
        api__error(r, 400, "parameters 'from' and 'to': from must be before to");
        return -1;
    }
    return 0;
}

/* The parameters of a readings request both forms share: range, limit, order, channels. The
 * channel names point into chbuf. */
struct readings_args {
    api_query_t q;
    size_t limit;
    char chbuf[8192];
    const char *chans[256];
};

/* Parses them. Returns 0, or -1 with a 400 answer set naming the parameter. */
static int readings_args_parse(api_request_t *r, struct readings_args *a)
{
    api_query_t *q = &a->q;
    *q = (api_query_t){.device = r->seg[0]};
    if (api__arg_range(r, &q->from_ms, &q->to_ms) ||
        api__arg_limit(r, "limit", 1000, r->max_query_limit, &a->limit))
        return -1;
    q->limit = a->limit;
    char order[8];
    const char *o = api__arg(r, "order", order, sizeof order);
    if (r->status)
        return -1;
    if (o && strcmp(o, "asc") != 0 && strcmp(o, "desc") != 0) {
        api__error(r, 400, "parameter 'order': want 'asc' or 'desc'");
        return -1;
    }
    q->desc = o && strcmp(o, "desc") == 0;
    const char *cs = api__arg(r, "channels", a->chbuf, sizeof a->chbuf);
    if (r->status)
        return -1;
    if (cs == NULL || *cs == '\0')
        return 0;
    char *p = a->chbuf;
    while (p) {
        if (q->nchannels == 256) {
            api__error(r, 400, "parameter 'channels': at most 256 channels");
            return -1;
        }
        a->chans[q->nchannels++] = p;
        p = strchr(p, ',');
        if (p)
            *p++ = '\0';
        if (*a->chans[q->nchannels - 1] == '\0') {
            api__error(r, 400, "parameter 'channels': name %zu of the list is empty", q->nchannels);
            return -1;
        }
    }
    q->channels = a->chans;
    return 0;
}

/* Answers a failed backend query: 404 (no device), 400 (a channel it lacks) or the error's. */
static void query_error(api_request_t *r, const api_query_t *q, int rc)
{
    if (rc == ERR_NOTFOUND)
        api__error(r, 404, "device '%s' not found", q->device);
    else if (rc == ERR_INVAL)
        api__unknown_channel(r, q);
    else if (rc == ERR_CORRUPT) /* not served as values; the log names the chunk's range */
        api__error(r, 500,
                   "device '%s': a stored readings chunk overlapping the range asked (from "
                   "%lld to %lld ms) is damaged (checksum mismatch); no values of the range are "
                   "served (the log names the chunk's own time range: ranges around it answer; "
                   "docs/reliability.md)",
                   q->device, (long long)q->from_ms, (long long)q->to_ms);
    else
        api__backend_error(r, rc, "querying readings");
}

/* Appends the "next" path of a readings page: the same request over [from, to), with extra
 * (already encoded: "&step=...", or "") after its own parameters. */
static void next_path(sbuf_t *b, const struct readings_args *a, int64_t from, int64_t to,
                      const char *extra)
{
    sbuf_append(b, "\"/v1/devices/", 13);
    api__pct_encode(b, a->q.device);
    sbuf_append(b, "/readings?from=", 15);
    api__time_value(b, from);
    sbuf_printf(b, "&limit=%zu%s", a->limit, a->q.desc ? "&order=desc" : "");
    /* The default end (VTIME_MAX_MS + 1) is not a valid parameter value: leave it out. */
    if (to <= VTIME_MAX_MS) {
        sbuf_append(b, "&to=", 4);
        api__time_value(b, to);
    }
    if (a->q.channels) {
        sbuf_append(b, "&channels=", 10);
        for (size_t i = 0; i < a->q.nchannels; i++) {
            if (i)
                sbuf_append(b, ",", 1);
            api__pct_encode(b, a->q.channels[i]);
        }
    }
    sbuf_printf(b, "%s\"", extra);
}

/* The raw form: one object per stored timestamp. */
static void readings_points(api_request_t *r, struct readings_args *a)
{
    sbuf_t b;
    sbuf_init(&b);
    sbuf_append(&b, "{\"device\":", 10);
    api__json_str(&b, a->q.device);
    sbuf_append(&b, ",\"points\":[", 11);
    struct points_ctx c = {&b, 0, 0, 0};
    int rc = r->srv->be.query(r->srv->be.ctx, &a->q, point_one, &c);
    if (rc == 0 && b.oom)
        rc = ERR_NOMEM;
    if (rc) {
        sbuf_deinit(&b);
        query_error(r, &a->q, rc);
        return;
    }
    sbuf_append(&b, "],\"next\":", 9);
    /* The next page continues after the last point returned, in the same order, whenever the
     * page is full (limit points, or API_PAGE_BYTES); there is none when that range is empty
     * (the page ended at the range's first or last millisecond). */
    int64_t from = a->q.desc ? a->q.from_ms : c.last_ts + 1,
            to = a->q.desc ? c.last_ts : a->q.to_ms;
    if ((c.n == a->limit || c.full) && from < to)
        next_path(&b, a, from, to, "");
    else
        sbuf_append(&b, "null", 4);
    sbuf_append(&b, "}\n", 2);
    api__body(r, 200, "application/json", &b);
}

/* ---- readings in time buckets (step=) ------------------------------------------------------
 *
 * The read streams through the store's callback: each point's values go into one accumulator
 * per channel of the bucket being read, and the bucket is written out when a point of the next
 * one arrives (points come in time order), so memory depends on the device's channels, never on
 * the range. A page ends only between buckets: at `limit` buckets, at API_PAGE_BYTES (the bucket
 * that crossed it is taken back), or once it has read max_scan_points points (the bucket then
 * being read is finished first, so one bucket is never split between pages); its "next" then
 * starts at the bucket it did not write. */

/* The aggregates a bucket reports, in their output order, and the default set. */
enum { AGG_COUNT, AGG_MEAN, AGG_MIN, AGG_MAX, AGG_LAST, AGG_KINDS };
static const char *const agg_names[AGG_KINDS] = {"count", "mean", "min", "max", "last"};
#define AGG_DEFAULT ((1u << AGG_COUNT) | (1u << AGG_MEAN) | (1u << AGG_MIN) | (1u << AGG_MAX))

/* The widest bucket: a year, leap day included. */
#define STEP_MAX_MS (366LL * 86400000)

/* One channel's accumulator for the bucket being read. */
struct chan_agg {
    char *name; /* owned copy */
    size_t len;
    agg_t a;
};

struct buckets_ctx {
    sbuf_t *b;
    int64_t step;
    unsigned aggs; /* bit k: agg_names[k] is reported */
    size_t limit, scan_max;
    /* Every channel met so far, in order of first meeting, and by name. cap is the size of
     * chans, touched and hint alike. */
    struct chan_agg **chans;
    size_t nchans, cap;
    nameidx_t idx; /* seeded: clients chose the channel names (a device has up to thousands) */
    struct chan_agg **touched; /* channels with values in the current bucket, first touch first */
    size_t ntouched;
    /* hint[i]: the channel the i-th value of the last point went to. The store reports a
     * point's values in channel order, so with the same channels in every point (the usual
     * device) each value finds its accumulator with one comparison. */
    struct chan_agg **hint;
    int64_t cur;    /* the current bucket's start (when ntouched > 0) */
    size_t n;       /* buckets written to the page */
    size_t scanned; /* points read */
    int stop;       /* the page ended before the read: the next one starts at bucket resume */
    int64_t resume;
    int nomem;
};

static int chan_same(const void *item, const char *name, size_t len)
{
    const struct chan_agg *ca = item;
    return ca->len == len && memcmp(ca->name, name, len) == 0;
}

/* Makes room for n channels. Returns 0, or -1 when out of memory. */
static int chans_reserve(struct buckets_ctx *c, size_t n)
{
    if (n <= c->cap)
        return 0;
    size_t cap = c->cap ? c->cap : 16;
    while (cap < n)
        cap *= 2;
    struct chan_agg ***arrays[3] = {&c->chans, &c->touched, &c->hint};
    for (int i = 0; i < 3; i++) {
        /* Each one stored as soon as it is grown: a failure leaves every array valid. */
        struct chan_agg **q = realloc(*arrays[i], cap * sizeof *q);
        if (q == NULL)
            return -1;
        memset(q + c->cap, 0, (cap - c->cap) * sizeof *q);
        *arrays[i] = q;
    }
    c->cap = cap;
    return 0;
}

/* The accumulator of channel name, the i-th value of a point (i < cap); NULL when out of
 * memory. */
static struct chan_agg *chan_of(struct buckets_ctx *c, size_t i, const char *name)
{
    struct chan_agg *ca = c->hint[i];
    if (ca && strcmp(ca->name, name) == 0)
        return ca;
    size_t len = strlen(name);
    nameidx_key_t k = nameidx_key(&c->idx, name, len);
    ca = nameidx_find_key(&c->idx, k, name, len, chan_same);
    if (ca == NULL) {
        if (c->nchans == c->cap && chans_reserve(c, c->cap + 1))
            return NULL;
        if ((ca = malloc(sizeof *ca)) == NULL || (ca->name = strdup(name)) == NULL) {
            free(ca);
            return NULL;
        }
        ca->len = len;
        agg_reset(&ca->a);
        if (nameidx_add_key(&c->idx, k, ca)) {
            free(ca->name);
            free(ca);
            return NULL;
        }
        c->chans[c->nchans++] = ca;
    }
    c->hint[i] = ca;
    return ca;
}

static double agg_value(const agg_t *a, int kind)
{
    switch (kind) {
    case AGG_MEAN:
        return agg_mean(a);
    case AGG_MIN:
        return a->min;
    case AGG_MAX:
        return a->max;
    default:
        return a->last;
    }
}

/* Appends the current bucket: {"ts", "time", then one object per aggregate, by channel}. */
static void bucket_json(const struct buckets_ctx *c)
{
    sbuf_t *b = c->b;
    char t[32];
    sbuf_printf(b, "%s{\"ts\":%lld,\"time\":\"%s\"", c->n ? "," : "", (long long)c->cur,
                vtime_format(c->cur, t, sizeof t));
    for (int k = 0; k < AGG_KINDS; k++) {
        if (!(c->aggs & 1u << k))
            continue;
        sbuf_printf(b, ",\"%s\":{", agg_names[k]);
        for (size_t i = 0; i < c->ntouched; i++) {
            const struct chan_agg *ca = c->touched[i];
            if (i)
                sbuf_append(b, ",", 1);
            api__json_str(b, ca->name);
            sbuf_append(b, ":", 1);
            if (k == AGG_COUNT)
                sbuf_printf(b, "%llu", (unsigned long long)ca->a.count);
            else
                api__json_num(b, agg_value(&ca->a, k));
        }
        sbuf_append(b, "}", 1);
    }
    sbuf_append(b, "}", 1);
}

/* Writes the current bucket to the page and empties it. Returns 1 when the page is full (the
 * bucket was taken back: the next page starts with it) or out of memory, else 0. */
static int bucket_flush(struct buckets_ctx *c)
{
    size_t mark = c->b->len;
    bucket_json(c);
    if (api__page_full(c->b, mark, c->n)) {
        c->stop = 1;
        c->resume = c->cur;
        return 1;
    }
    c->n++;
    for (size_t i = 0; i < c->ntouched; i++)
        agg_reset(&c->touched[i]->a);
    c->ntouched = 0;
    return c->b->oom;
}

static int bucket_point(void *arg, int64_t ts, size_t n, const char *const *ch, const double *v)
{
    struct buckets_ctx *c = arg;
    int64_t start = agg_bucket_start(ts, c->step);
    if (c->ntouched > 0 && start != c->cur) {
        if (bucket_flush(c))
            return 1;
        if (c->n == c->limit || c->scanned >= c->scan_max) {
            c->stop = 1;
            c->resume = start;
            return 1;
        }
    }
    if (chans_reserve(c, n)) {
        c->nomem = 1;
        return 1;
    }
    c->cur = start;
    c->scanned++;
    for (size_t i = 0; i < n; i++) {
        struct chan_agg *ca = chan_of(c, i, ch[i]);
        if (ca == NULL) {
            c->nomem = 1;
            return 1;
        }
        if (ca->a.count == 0)
            c->touched[c->ntouched++] = ca;
        agg_add(&ca->a, ts, v[i]);
    }
    return 0;
}

static void buckets_ctx_deinit(struct buckets_ctx *c)
{
    for (size_t i = 0; i < c->nchans; i++) {
        free(c->chans[i]->name);
        free(c->chans[i]);
    }
    free(c->chans);
    free(c->touched);
    free(c->hint);
    nameidx_deinit(&c->idx);
}

/* Parses the optional 'step' (a duration from 1 ms to 366 d; 0 when absent) and 'agg' (a
 * comma-separated subset of agg_names, only with a step) parameters. Returns 0, or -1 with a
 * 400 answer set naming the parameter. */
static int step_args_parse(api_request_t *r, int64_t *step, unsigned *aggs)
{
    char sbuf[32], abuf[64];
    const char *s = api__arg(r, "step", sbuf, sizeof sbuf);
    const char *g = api__arg(r, "agg", abuf, sizeof abuf);
    *step = 0;
    *aggs = AGG_DEFAULT;
    if (r->status)
        return -1;
    if (s == NULL) {
        if (g == NULL)
            return 0;
        api__error(r, 400, "parameter 'agg' needs 'step' (the bucket width)");
        return -1;
    }
    if (vtime_parse_duration(s, step)) {
        api__error(r, 400,
                   "parameter 'step': '%s' is not a duration (milliseconds, or a whole number "
                   "with ms, s, m, h, d or w)",
                   s);
        return -1;
    }
    if (*step < 1 || *step > STEP_MAX_MS) {
        api__error(r, 400, "parameter 'step': '%s' is not from 1ms to 366d", s);
        return -1;
    }
    if (g == NULL)
        return 0;
    return api__arg_set(r, "agg", g, agg_names, AGG_KINDS, "aggregate", aggs);
}

/* The bucket form: one object per bucket of width step holding readings. */
static void readings_buckets(api_request_t *r, struct readings_args *a, int64_t step, unsigned aggs)
{
    sbuf_t b;
    sbuf_init(&b);
    sbuf_append(&b, "{\"device\":", 10);
    api__json_str(&b, a->q.device);
    sbuf_printf(&b, ",\"step\":%lld,\"buckets\":[", (long long)step);
    struct buckets_ctx c = {
        .b = &b, .step = step, .aggs = aggs, .limit = a->limit, .scan_max = r->max_scan_points};
    (void)nameidx_init_seeded(&c.idx); /* the public fallback only if getrandom fails (nameidx.h) */
    api_query_t q = a->q;
    q.limit = 0; /* points; the buckets' limit is bucket_point's */
    int rc = r->srv->be.query(r->srv->be.ctx, &q, bucket_point, &c);
    if (rc == 0 && !c.stop && !c.nomem && c.ntouched > 0)
        bucket_flush(&c);
    buckets_ctx_deinit(&c);
    if (rc == 0 && (b.oom || c.nomem))
        rc = ERR_NOMEM;
    if (rc) {
        sbuf_deinit(&b);
        query_error(r, &q, rc);
        return;
    }
    sbuf_append(&b, "],\"next\":", 9);
    if (c.stop) {
        /* The bucket not written is never the page's first, so it starts after 'from' (asc)
         * and ends before 'to' (desc): the next page's range is within this one's. */
        char extra[96];
        int len = snprintf(extra, sizeof extra, "&step=%lld", (long long)step);
        const char *sep = "&agg=";
        for (int k = 0; aggs != AGG_DEFAULT && k < AGG_KINDS; k++) {
            if (aggs & 1u << k) {
                len += snprintf(extra + len, sizeof extra - (size_t)len, "%s%s", sep, agg_names[k]);
                sep = ",";
            }
        }
        int64_t from = a->q.desc ? a->q.from_ms : c.resume;
        int64_t to = a->q.desc ? c.resume + step : a->q.to_ms;
        next_path(&b, a, from > a->q.from_ms ? from : a->q.from_ms,
                  to < a->q.to_ms ? to : a->q.to_ms, extra);
    } else {
        sbuf_append(&b, "null", 4);
    }
    sbuf_append(&b, "}\n", 2);
    api__body(r, 200, "application/json", &b);
}

void api__h_device_readings(api_request_t *r)
{
    struct readings_args a;
    int64_t step;
    unsigned aggs;
    if (readings_args_parse(r, &a) || step_args_parse(r, &step, &aggs))
        return;
    if (step)
        readings_buckets(r, &a, step, aggs);
    else
        readings_points(r, &a);
}

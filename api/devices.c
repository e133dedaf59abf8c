/* api/devices.c: the /v1 device endpoints: the device list (GET /v1/devices, paged as
 * handlers.c's file comment says), one device (GET), its attributes and limits (PUT). Moved
 * from handlers.c. Any thread. */
#include "api_int.h"
#include "err.h"
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

/* Writes device d as JSON into b, with "warnings" last when warn (a JSON array of strings;
 * NULL: none) holds any: the one writer of a device's answer, its warnings gathered before. */
static void device_json(sbuf_t *b, const api_device_t *d, const json_t *warn)
{
    char t[32];
    sbuf_append(b, "{\"id\":", 6);
    api__json_str(b, d->id);
    sbuf_printf(b, ",\"created\":\"%s\",\"attrs\":%s,\"group\":",
                vtime_format(d->created_ms, t, sizeof t), d->attrs_json);
    /* The device's group (a shared model), from its attributes; null when none. */
    json_t *a = json_loads(d->attrs_json, 0, NULL);
    const char *group = json_string_value(json_object_get(a, "group"));
    if (group && *group)
        api__json_str(b, group);
    else
        sbuf_append(b, "null", 4);
    json_decref(a);
    sbuf_append(b, ",\"channels\":[", 13);
    for (size_t i = 0; i < d->nchannels; i++) {
        if (i)
            sbuf_append(b, ",", 1);
        api__json_str(b, d->channels[i]);
    }
    sbuf_printf(b, "],\"points\":%lld", (long long)d->points);
    if (d->first_ts_ms >= 0) {
        sbuf_printf(b, ",\"first_ts\":%lld,\"first\":\"%s\"", (long long)d->first_ts_ms,
                    vtime_format(d->first_ts_ms, t, sizeof t));
        sbuf_printf(b, ",\"last_ts\":%lld,\"last\":\"%s\"", (long long)d->last_ts_ms,
                    vtime_format(d->last_ts_ms, t, sizeof t));
    } else {
        sbuf_printf(b, ",\"first_ts\":null,\"first\":null,\"last_ts\":null,\"last\":null");
    }
    /* When its newest reading arrived (not its timestamp): a silent device shows here. */
    if (d->last_seen_ms >= 0)
        sbuf_printf(b, ",\"last_seen_ts\":%lld,\"last_seen\":\"%s\"", (long long)d->last_seen_ms,
                    vtime_format(d->last_seen_ms, t, sizeof t));
    else
        sbuf_printf(b, ",\"last_seen_ts\":null,\"last_seen\":null");
    sbuf_append(b, ",\"maintenance\":", 15);
    sbuf_append(b, d->maint_json ? d->maint_json : "null",
                d->maint_json ? strlen(d->maint_json) : 4);
    if (json_array_size(warn) > 0) {
        sbuf_append(b, ",\"warnings\":[", 13);
        size_t i;
        const json_t *w;
        json_array_foreach(warn, i, w)
        {
            if (i)
                sbuf_append(b, ",", 1);
            api__json_str(b, json_string_value(w));
        }
        sbuf_append(b, "]", 1);
    }
    sbuf_append(b, "}", 1);
}

struct list_ctx {
    sbuf_t *b;
    size_t n;
    int full; /* the page reached API_PAGE_BYTES: the device that crossed it was taken back */
    char last[BATCH_NAME_MAX + 1];
};

static int list_one(void *arg, const api_device_t *d)
{
    struct list_ctx *c = arg;
    size_t mark = c->b->len;
    if (c->n)
        sbuf_append(c->b, ",", 1);
    device_json(c->b, d, NULL);
    if ((c->full = api__page_full(c->b, mark, c->n)) != 0)
        return 1;
    c->n++;
    snprintf(c->last, sizeof c->last, "%s", d->id);
    return c->b->oom;
}

int api__arg_limit(api_request_t *r, const char *name, size_t dflt, size_t max, size_t *out)
{
    char buf[32];
    const char *v = api__arg(r, name, buf, sizeof buf);
    *out = dflt < max ? dflt : max; /* a configured maximum below the default caps it too */
    if (v == NULL)
        return r->status ? -1 : 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!isdigit((unsigned char)v[0]) || *end != '\0' || n == 0) { /* no sign, no space */
        api__error(r, 400, "parameter '%s': want a positive integer, got '%s'", name, v);
        return -1;
    }
    if (n > max || errno == ERANGE) { /* quoted as given: strtoull saturates a huge one */
        api__error(r, 400, "parameter '%s': %s exceeds the maximum of %zu", name, v, max);
        return -1;
    }
    *out = (size_t)n;
    return 0;
}

void api__h_devices(api_request_t *r)
{
    struct api_server *srv = r->srv;
    size_t limit;
    if (api__arg_limit(r, "limit", 1000, 10000, &limit))
        return;
    char after[BATCH_NAME_MAX + 1];
    const char *a = api__arg(r, "after", after, sizeof after);
    if (r->status)
        return;
    sbuf_t b;
    sbuf_init(&b);
    struct list_ctx c = {&b, 0, 0, ""};
    sbuf_append(&b, "{\"devices\":[", 12);
    int rc = srv->be.device_list(srv->be.ctx, a, limit, 0, list_one, &c); /* the store's bound */
    if (rc == 0 && b.oom)
        rc = ERR_NOMEM;
    if (rc) {
        sbuf_deinit(&b);
        api__backend_error(r, rc, "listing devices");
        return;
    }
    sbuf_append(&b, "],\"next_after\":", 15);
    if (c.n == limit || c.full) {
        /* and the next page's path, ready, the id percent-encoded as readings' next is
         * (session 67: a client pasting next_after into after= broke on '&', '#' or a space) */
        api__json_str(&b, c.last);
        sbuf_t n;
        sbuf_init(&n);
        sbuf_append(&n, "/v1/devices?after=", 18);
        api__pct_encode(&n, c.last);
        sbuf_printf(&n, "&limit=%zu", limit);
        if (n.oom)
            b.oom = 1;
        sbuf_append(&b, ",\"next\":", 8);
        api__json_str(&b, n.oom ? "" : n.data);
        sbuf_deinit(&n);
    } else {
        sbuf_append(&b, "null,\"next\":null", 16);
    }
    sbuf_append(&b, "}\n", 2);
    api__body(r, 200, "application/json", &b);
}

static int get_one(void *arg, const api_device_t *d)
{
    device_json(arg, d, NULL);
    return 1;
}

/* Whether the device has a channel of that name. */
static int has_channel(const api_device_t *d, const char *ch)
{
    for (size_t i = 0; i < d->nchannels; i++)
        if (strcmp(d->channels[i], ch) == 0)
            return 1;
    return 0;
}

/* put_one's argument: the answer, the server (its backend: channel_unmodelled), and the
 * warning naming the attributes the PUT removed (removed_warning; NULL: none). */
struct put_ans {
    sbuf_t *b;
    struct api_server *srv;
    const char *removed;
    int had;            /* 1: the device was there before the PUT (its inputs: old_inputs) */
    json_t *old_inputs; /* the "inputs" attribute before the PUT (NULL: none) */
};

/* The warnings of a PUT's limits, into warn: a limit naming a channel the device has not sent
 * (yet) is kept, since the channel may come later, but a typo would otherwise never alarm and
 * be answered 200 in silence (session 65); or one its model has no room for (64 channels, this
 * not one of them: stored, not modelled, never judged; session 65, read65c; one it never sent
 * is told so, session 66). Only for a device that has sent a reading: one declared before its
 * first (the usual way to set it up) has no channel to compare with, and every limit would
 * warn. The texts are whole: d->id and ch are at most BATCH_NAME_MAX bytes (batch_name_check,
 * check_limits) and the words under 192. */
static void limit_warnings(json_t *warn, struct api_server *srv, const api_device_t *d)
{
    if (d->nchannels == 0)
        return;
    json_t *a = json_loads(d->attrs_json, 0, NULL);
    json_t *lim = json_object_get(a, "limits");
    const char *ch;
    json_t *l;
    json_object_foreach(lim, ch, l)
    {
        int beyond =
            srv->be.channel_unmodelled && srv->be.channel_unmodelled(srv->be.ctx, d->id, ch);
        if (!beyond && has_channel(d, ch))
            continue;
        char w[3 * BATCH_NAME_MAX + 192];
        if (beyond && has_channel(d, ch))
            snprintf(w, sizeof w,
                     "limits.%s: the model of device '%s' has its 64 channels, '%s' not one of "
                     "them: stored, not modelled, the limit is never judged",
                     ch, d->id, ch);
        else if (beyond) /* never sent: nothing of it is stored yet (session 66, read66a) */
            snprintf(w, sizeof w,
                     "limits.%s: device '%s' has no channel '%s' and its model has its 64 "
                     "channels: readings of it would be stored, not modelled; the limit is never "
                     "judged",
                     ch, d->id, ch);
        else
            snprintf(w, sizeof w,
                     "limits.%s: device '%s' has no channel '%s' yet (the limit applies when one "
                     "comes)",
                     ch, d->id, ch);
        api__warning_add(warn, 0, w);
    }
    json_decref(a);
}

/* 1 when the "inputs" attribute in (NULL or null: none) names channel ch. */
static int input_named(json_t *in, const char *ch)
{
    size_t i;
    json_t *x;
    json_array_foreach(in, i, x)
    {
        if (json_is_string(x) && strcmp(json_string_value(x), ch) == 0)
            return 1;
    }
    return 0;
}

/* 1 when the "inputs" attribute in names every channel of d: the pipeline then scores them all
 * (pipeline__inputs_mask_of: one must be scored), as if it named none. */
static int inputs_name_all(json_t *in, const api_device_t *d)
{
    for (size_t i = 0; i < d->nchannels; i++)
        if (!input_named(in, d->channels[i]))
            return 0;
    return d->nchannels > 0;
}

/* 1 when channel ch is an input under the attribute in, as the pipeline reads it: named, and
 * not every channel named. */
static int input_in_effect(json_t *in, const api_device_t *d, const char *ch)
{
    return input_named(in, ch) && !inputs_name_all(in, d);
}

/* The warnings of a PUT's "inputs", into warn (read69e 3: they were worked out from the
 * attribute's text, so a name matching no channel, or a list naming every channel, was told
 * "the device relearns" although the pipeline, which compares the channels in effect, changed
 * nothing, and neither case was told). Only for a device that has sent a reading, as
 * limit_warnings. */
static void inputs_warnings(json_t *warn, const struct put_ans *pa, const api_device_t *d)
{
    if (d->nchannels == 0)
        return;
    json_t *a = json_loads(d->attrs_json, 0, NULL);
    json_t *in = json_object_get(a, "inputs"), *x;
    size_t i;
    char w[3 * BATCH_NAME_MAX + 192];
    json_array_foreach(in, i, x)
    {
        if (json_is_string(x) && !has_channel(d, json_string_value(x))) {
            snprintf(w, sizeof w,
                     "inputs: device '%s' has no channel '%s' yet (it is an input when one "
                     "comes)",
                     d->id, json_string_value(x));
            api__warning_add(warn, 0, w);
        }
    }
    if (inputs_name_all(in, d)) {
        snprintf(w, sizeof w,
                 "inputs: the list names every channel of device '%s': all are scored (at "
                 "least one channel must be scored; leave the sensors out of it)",
                 d->id);
        api__warning_add(warn, 0, w);
    }
    int changed = 0;
    for (size_t c = 0; pa->had && c < d->nchannels && !changed; c++)
        changed = input_in_effect(pa->old_inputs, d, d->channels[c]) !=
                  input_in_effect(in, d, d->channels[c]);
    if (changed)
        api__warning_add(warn, 0,
                         "the set of input channels changed: the device relearns from its next "
                         "reading (state learning; its stored versions stay), as a new channel "
                         "makes it");
    json_decref(a);
}

/* A PUT's answer: the device, and "warnings": the attributes the PUT removed (pa->removed),
 * then its inputs' (inputs_warnings), then its limits' (limit_warnings). Gathered first, written
 * once with the device. */
static int put_one(void *arg, const api_device_t *d)
{
    const struct put_ans *pa = arg;
    json_t *warn = json_array();
    if (pa->removed)
        api__warning_add(warn, 0, pa->removed);
    inputs_warnings(warn, pa, d);
    limit_warnings(warn, pa->srv, d);
    device_json(pa->b, d, warn);
    json_decref(warn);
    return 1;
}

/* device_find's callback: a copy of the device's attributes (arg: char **; NULL on OOM). */
static int copy_attrs(void *arg, const api_device_t *d)
{
    *(char **)arg = strdup(d->attrs_json);
    return 1;
}

/* A PUT replaces every attribute, so one that sends {"group": ...} alone drops the device's
 * limits, and their alarms, in silence (session 66, read66b): the warning naming each
 * attribute the device had that body does not name (an attribute sent as null was dropped
 * on purpose; one the device held as null had nothing to lose). old: the attributes before,
 * as JSON text. Returns a string the caller owns (free), or NULL when nothing was removed (or
 * out of memory: the PUT is not refused for it). */
static char *removed_warning(const char *old, json_t *body)
{
    json_t *o = old ? json_loads(old, 0, NULL) : NULL;
    sbuf_t w;
    sbuf_init(&w);
    const char *k;
    json_t *x;
    size_t n = 0;
    json_object_foreach(o, k, x)
    {
        if (json_object_get(body, k) != NULL || json_is_null(x))
            continue; /* kept, or held nothing (a null stored by an earlier PUT) */
        sbuf_printf(&w, "%s'%s'", n++ ? ", " : "", k); /* whole (cut at 64 before session 67) */
    }
    json_decref(o);
    char *out = NULL;
    if (n && !w.oom) {
        const char *it = n > 1 ? "them" : "it";
        sbuf_t m;
        sbuf_init(&m);
        sbuf_printf(&m,
                    "this PUT removed the device's %s %s (a PUT replaces every attribute: send "
                    "%s again to keep %s, or as null to remove %s without this warning)",
                    n > 1 ? "attributes" : "attribute", w.data, it, it, it);
        out = sbuf_steal(&m, NULL);
    }
    sbuf_deinit(&w);
    return out;
}

/* had, old_inputs: a PUT's device before it (put_ans); 0 and NULL for a GET. */
static void device_get(api_request_t *r, unsigned status, const char *removed, int had,
                       json_t *old_inputs)
{
    struct api_server *srv = r->srv;
    sbuf_t b;
    sbuf_init(&b);
    int put = strcmp(r->method, "PUT") == 0;
    struct put_ans pa = {&b, srv, removed, had, old_inputs};
    int rc = put ? srv->be.device_get(srv->be.ctx, r->seg[0], 0, put_one, &pa)
                 : srv->be.device_get(srv->be.ctx, r->seg[0], 0, get_one, &b);
    if (rc) {
        sbuf_deinit(&b);
        if (rc == ERR_NOTFOUND)
            api__error(r, 404, "device '%s' not found", r->seg[0]);
        else
            api__backend_error(r, rc, "reading device");
        return;
    }
    sbuf_append(&b, "\n", 1);
    api__body(r, status, "application/json", &b);
}

/* Checks the "inputs" attribute: null, or an array of distinct channel names, the device's
 * input channels (set points, controls: fed to the model, never scored). Returns 0, or -1 with
 * a 400 answer naming the field. */
static int check_inputs(api_request_t *r, json_t *in)
{
    if (in == NULL || json_is_null(in))
        return 0;
    if (!json_is_array(in)) {
        api__error(r, 400, "field 'inputs': must be an array of channel names, or null");
        return -1;
    }
    size_t i, k;
    json_t *x;
    json_array_foreach(in, i, x)
    {
        const char *why;
        if (!json_is_string(x)) {
            api__error(r, 400, "field 'inputs[%zu]': must be a string (a channel name)", i);
            return -1;
        }
        if (batch_name_check(json_string_value(x), json_string_length(x), &why)) {
            api__error(r, 400, "field 'inputs[%zu]': channel name %s", i, why);
            return -1;
        }
        for (k = 0; k < i; k++)
            if (json_equal(json_array_get(in, k), x)) {
                api__error(r, 400, "field 'inputs[%zu]': channel '%s' named twice", i,
                           json_string_value(x));
                return -1;
            }
    }
    return 0;
}

/* Checks the "limits" attribute: null, or an object of channel names to {"min": N, "max": N}
 * (either or both, min below max) and an optional "deadband" (>= 0: how far back inside a
 * limit a reading must be to clear its alarm), which the forecast's time to limit and the limit
 * alarms (daemon/pipeline_limits.c) read. Returns 0, or -1
 * with a 400 answer naming the field. */
static int check_limits(api_request_t *r, json_t *lim)
{
    if (lim == NULL || json_is_null(lim))
        return 0;
    if (!json_is_object(lim)) {
        api__error(r, 400,
                   "field 'limits': must be an object of channel names to "
                   "{\"min\": N, \"max\": N}, or null");
        return -1;
    }
    const char *ch, *why;
    json_t *l;
    json_object_foreach(lim, ch, l)
    {
        if (batch_name_check(ch, strlen(ch), &why)) {
            api__error(r, 400, "field 'limits': channel name %s", why);
            return -1;
        }
        if (!json_is_object(l) || json_object_size(l) == 0) {
            api__error(r, 400,
                       "field 'limits.%s': must be {\"min\": N, \"max\": N} (either or both)", ch);
            return -1;
        }
        const char *k;
        json_t *x;
        json_object_foreach(l, k, x)
        {
            if (strcmp(k, "min") != 0 && strcmp(k, "max") != 0 && strcmp(k, "deadband") != 0) {
                api__error(r, 400, "field 'limits.%s.%.64s': unknown key (want min, max, deadband)",
                           ch, k);
                return -1;
            }
            if (!json_is_number(x)) {
                api__error(r, 400, "field 'limits.%s.%s': must be a number", ch, k);
                return -1;
            }
            /* Kept as a float (dev.lim_max, the alarms' states): beyond it the value would be
             * infinite, which the status cannot show and an alarm never clears from. */
            if (!(fabs(json_number_value(x)) <= FLT_MAX)) {
                api__error(r, 400, "field 'limits.%s.%s': must be within -%g and %g", ch, k,
                           (double)FLT_MAX, (double)FLT_MAX);
                return -1;
            }
            if (k[0] == 'd' && !(json_number_value(x) >= 0)) {
                api__error(r, 400, "field 'limits.%s.deadband': must be 0 or more (channel units)",
                           ch);
                return -1;
            }
        }
        if (json_object_get(l, "min") == NULL && json_object_get(l, "max") == NULL) {
            api__error(r, 400, "field 'limits.%s': a deadband needs a min or a max", ch);
            return -1;
        }
        json_t *mn = json_object_get(l, "min"), *mx = json_object_get(l, "max");
        if (mn && mx && !(json_number_value(mn) < json_number_value(mx))) {
            api__error(r, 400, "field 'limits.%s': min %g is not below max %g", ch,
                       json_number_value(mn), json_number_value(mx));
            return -1;
        }
        /* An alarm on one limit clears only inside it by more than the deadband: with a deadband
         * as wide as max - min that is at or beyond the other limit, so it would never clear. */
        json_t *db = json_object_get(l, "deadband");
        if (db && mn && mx &&
            !(json_number_value(db) < json_number_value(mx) - json_number_value(mn))) {
            api__error(r, 400,
                       "field 'limits.%s.deadband': %g must be below max - min (%g), or an alarm "
                       "could never clear",
                       ch, json_number_value(db), json_number_value(mx) - json_number_value(mn));
            return -1;
        }
    }
    return 0;
}

static void device_put(api_request_t *r)
{
    struct api_server *srv = r->srv;
    const char *why;
    if (batch_name_check(r->seg[0], strlen(r->seg[0]), &why)) {
        api__error(r, 400, "device id %s", why);
        return;
    }
    if (!api__json_content_type_ok(r))
        return;
    json_t *v;
    json_error_t jerr;
    int got = api__json_body(r, &v, &jerr); /* no value: an empty body, the device kept */
    if (got < 0)
        return;
    if (got > 0 || (v && !json_is_object(v))) {
        if (got > 0)
            api__json_error(r, &jerr, NULL);
        else
            api__error(r, 400, "body must be a JSON object of device attributes");
        json_decref(v);
        return;
    }
    char *attrs = NULL, *removed = NULL;
    int had = 0;
    json_t *old_inputs = NULL;
    if (v) {
        /* "group": the devices naming the same group share one model (see README). */
        json_t *g = json_object_get(v, "group");
        const char *gwhy = NULL;
        if (g && !json_is_null(g) &&
            (!json_is_string(g) ||
             batch_name_check(json_string_value(g), json_string_length(g), &gwhy) != 0)) {
            api__error(r, 400, "field 'group': %s",
                       json_is_string(g) ? gwhy : "must be a string (a group name) or null");
            json_decref(v);
            return;
        }
        if (check_limits(r, json_object_get(v, "limits")) ||
            check_inputs(r, json_object_get(v, "inputs"))) {
            json_decref(v);
            return;
        }
        /* The attributes before, for removed_warning: read apart from the put, so a PUT
         * racing this one may be what is compared with (the warning is advice, not a lock). */
        char *old = NULL;
        if (srv->be.device_find(srv->be.ctx, r->seg[0], copy_attrs, &old) == 0) {
            removed = removed_warning(old, v);
            json_t *o = old ? json_loads(old, 0, NULL) : NULL;
            had = 1;
            old_inputs = json_incref(json_object_get(o, "inputs"));
            json_decref(o);
        }
        free(old);
        attrs = api__json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(v);
        if (attrs == NULL) {
            free(removed);
            json_decref(old_inputs);
            api__error(r, 500, "out of memory");
            return;
        }
    }
    /* Attributes ride in every listing page and the pipeline keeps a copy per device: without
     * this bound (only http.max_body_bytes, 32 MiB) a client could hold gigabytes. */
    size_t max_attrs = atomic_load_explicit(&srv->max_attrs, memory_order_relaxed);
    if (attrs && strlen(attrs) > max_attrs) {
        api__error(r, 413,
                   "attributes of device '%s': %zu bytes as compact JSON, more than "
                   "storage.max_attrs_bytes (%zu)",
                   r->seg[0], strlen(attrs), max_attrs);
        free(attrs);
        free(removed);
        json_decref(old_inputs);
        return;
    }
    int created = 0;
    int rc = srv->be.device_put(srv->be.ctx, r->seg[0], attrs, &created);
    free(attrs);
    if (rc)
        api__backend_error(r, rc, "declaring device");
    else
        device_get(r, created ? 201 : 200, removed, had && !created, old_inputs);
    free(removed);
    json_decref(old_inputs);
}

void api__h_device(api_request_t *r)
{
    struct api_server *srv = r->srv;
    if (api__is_get(r)) {
        device_get(r, 200, NULL, 0, NULL);
    } else if (strcmp(r->method, "PUT") == 0) {
        device_put(r);
    } else {
        int rc = srv->be.device_delete(srv->be.ctx, r->seg[0]);
        if (rc == ERR_NOTFOUND)
            api__error(r, 404, "device '%s' not found", r->seg[0]);
        else if (rc)
            api__backend_error(r, rc, "deleting device");
        else
            api__json(r, 200, json_pack("{s:s}", "deleted", r->seg[0]));
    }
}

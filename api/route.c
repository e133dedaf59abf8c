/* api/route.c: routing a request: its path to a route (each raw path segment percent-decoded
 * on its own, so a device id may contain '/' as %2F), the route's methods and query parameters
 * (routes[]: a /v1 route refuses those it does not take; HEAD runs a route's GET, OPTIONS
 * answers 204 with Allow), and running its handler. Moved from server.c, which calls
 * api__route_of when a request begins and api__handle on a worker or an http-io thread. Any
 * thread. */
#include "api_int.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits the raw path into at most 6 segments (pointers into a copy in buf). */
static int split_path(const char *url, char *buf, size_t size, char **seg, int max)
{
    size_t n = strlen(url);
    if (n >= size)
        return -1;
    memcpy(buf, url, n + 1);
    int k = 0;
    char *p = buf;
    while (*p == '/')
        p++;
    while (*p) {
        if (k == max)
            return -1;
        seg[k++] = p;
        char *slash = strchr(p, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
        if (*p == '\0')
            break; /* one trailing slash is tolerated */
    }
    return k;
}

/* Resolves the route and the decoded device id, if any, splitting the path in buf (size bytes,
 * more than url's length). */
static enum api_route route_in(api_request_t *r, const char *url, char *buf, size_t size)
{
    char *seg[6];
    int n = split_path(url, buf, size, seg, 6);
    if (n == 1) {
        if (strcmp(seg[0], "healthz") == 0)
            return ROUTE_HEALTHZ;
        if (strcmp(seg[0], "health") == 0)
            return ROUTE_HEALTH;
        if (strcmp(seg[0], "metrics") == 0)
            return ROUTE_METRICS;
        if (strcmp(seg[0], "ping") == 0)
            return ROUTE_PING;
        if (strcmp(seg[0], "write") == 0)
            return ROUTE_WRITE;
        if (strcmp(seg[0], "query") == 0)
            return ROUTE_QUERY;
        return ROUTE_NOT_FOUND;
    }
    if (n == 3 && strcmp(seg[0], "api") == 0 && strcmp(seg[1], "v2") == 0 &&
        strcmp(seg[2], "write") == 0)
        return ROUTE_WRITE_V2;
    if (n < 2 || strcmp(seg[0], "v1") != 0)
        return ROUTE_NOT_FOUND;
    if (n == 2 && strcmp(seg[1], "readings") == 0)
        return ROUTE_READINGS;
    if (n == 2 && strcmp(seg[1], "anomalies") == 0)
        return ROUTE_ANOMALIES;
    if (n == 2 && strcmp(seg[1], "events") == 0)
        return ROUTE_EVENTS;
    if (n == 3 && strcmp(seg[1], "admin") == 0)
        return strcmp(seg[2], "snapshot") == 0    ? ROUTE_SNAPSHOT
               : strcmp(seg[2], "snapshots") == 0 ? ROUTE_SNAPSHOTS
                                                  : ROUTE_NOT_FOUND;
    if (strcmp(seg[1], "devices") != 0)
        return ROUTE_NOT_FOUND;
    if (n == 2)
        return ROUTE_DEVICES;
    /* An id that cannot be one (empty, a NUL, far too long) still routes, so the answer can be
     * a 400 saying what is wrong with it rather than "no such endpoint" (see dispatch). */
    /* Decoded in place (never longer than its raw form): an id over BATCH_NAME_MAX bytes is the
     * same 400 at any length up to the URL's limit (session 67: 201-600 bytes were 404 "not
     * known to the pipeline", from 700 a 400, past 2 KiB "no such endpoint"). */
    char *id = seg[2];
    long idlen = api__pct_decode(seg[2], strlen(seg[2]), id, strlen(seg[2]) + 1, 0);
    if (idlen <= 0 || idlen > BATCH_NAME_MAX) {
        r->bad_id = idlen == 0 ? 1 : idlen > 0 ? 3 : 2;
        id[0] = '\0';
    }
    r->seg[0] = strdup(id);
    if (r->seg[0] == NULL)
        return ROUTE_NOT_FOUND;
    if (n == 3)
        return ROUTE_DEVICE;
    static const struct {
        const char *name;
        enum api_route route;
    } sub[] = {{"readings", ROUTE_DEVICE_READINGS},   {"status", ROUTE_STATUS},
               {"predictions", ROUTE_PREDICTIONS},    {"forecast", ROUTE_FORECAST},
               {"anomalies", ROUTE_DEVICE_ANOMALIES}, {"model", ROUTE_MODEL}};
    for (size_t i = 0; n == 4 && i < sizeof sub / sizeof sub[0]; i++)
        if (strcmp(seg[3], sub[i].name) == 0)
            return sub[i].route;
    if (n == 5 && strcmp(seg[3], "model") == 0) {
        if (strcmp(seg[4], "retrain") == 0)
            return ROUTE_RETRAIN;
        if (strcmp(seg[4], "rollback") == 0)
            return ROUTE_ROLLBACK;
        if (strcmp(seg[4], "weights") == 0)
            return ROUTE_WEIGHTS;
    }
    if (n == 5 && strcmp(seg[3], "anomalies") == 0 && strcmp(seg[4], "accept") == 0)
        return ROUTE_ACCEPT;
    if (n == 4 && strcmp(seg[3], "maintenance") == 0)
        return ROUTE_MAINT;
    return ROUTE_NOT_FOUND;
}

enum api_route api__route_of(api_request_t *r, const char *url)
{
    char stack[2048];
    size_t n = strlen(url);
    char *buf = n < sizeof stack ? stack : malloc(n + 1); /* up to the URL limit (32 KiB) */
    if (buf == NULL)
        return ROUTE_NOT_FOUND;
    enum api_route route = route_in(r, url, buf, n < sizeof stack ? sizeof stack : n + 1);
    if (buf != stack)
        free(buf);
    return route;
}

static void method_not_allowed(api_request_t *r, const char *allow)
{
    r->allow = allow;
    api__error(r, 405, "method %s is not allowed here (allowed: %s)", r->method, allow);
}

/* Whether the route takes a request body, so oversized bodies can be refused early. */
int api__route_takes_body(enum api_route route)
{
    return route == ROUTE_READINGS || route == ROUTE_WRITE || route == ROUTE_WRITE_V2 ||
           route == ROUTE_DEVICE || route == ROUTE_QUERY || route == ROUTE_ROLLBACK ||
           route == ROUTE_WEIGHTS || route == ROUTE_ACCEPT || route == ROUTE_MAINT ||
           route == ROUTE_SNAPSHOT;
}

int api__backend_healthy(const api_request_t *r, api_check_t *checks, size_t *n, char *why,
                         size_t size)
{
    *n = r->srv->be.health ? r->srv->be.health(r->srv->be.ctx, checks) : 0;
    size_t len = 0;
    int ok = 1;
    why[0] = '\0';
    for (size_t i = 0; i < *n; i++) {
        if (checks[i].pass)
            continue;
        ok = 0;
        if (len >= size)
            continue;
        int k = snprintf(why + len, size - len, "%s%s: %s", len ? "; " : "", checks[i].name,
                         checks[i].message);
        len += k > 0 ? (size_t)k : 0;
    }
    return ok;
}

/* 200 while every check passes; else 503 naming each failing component and its reasons. */
static void healthz(api_request_t *r)
{
    api_check_t checks[API_CHECKS_MAX];
    char why[API_HEALTH_WHY_MAX];
    size_t n;
    if (!api__backend_healthy(r, checks, &n, why, sizeof why)) {
        api__error(r, 503, "unhealthy: %s", why);
        return;
    }
    sbuf_t b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"status\":\"ok\",\"version\":\"%s\"}\n", VIGIL_VERSION);
    api__body(r, 200, "application/json", &b);
}

static void ping(api_request_t *r)
{
    r->status = 204;
    r->content_type = NULL;
}

/* Each route's handler, the methods it takes, and whether it runs on an http-io thread (io: it
 * waits for the disk; see the file comment; IO_WRITES: its requests but GET and HEAD take the
 * operator's lane, IO_INGEST ingest's, api__request_lane). HEAD is taken wherever GET is
 * (libmicrohttpd sends the headers only) and OPTIONS everywhere (204 with Allow). allow is the CORS
 * preflight's list (the methods a script may use); allow_hdr the full Allow header of a 405 or an
 * OPTIONS answer. params lists the query parameters a /v1 route takes: any other, or one given
 * twice, is a 400, so a misspelt "form=" or a second "limit=" is never silently ignored. NULL: not
 * checked (the operational and InfluxDB routes, whose clients send parameters vigild has no use
 * for). */
enum { IO_DISK = 1, IO_WRITES = 2, IO_INGEST = 3 };

static const char *const no_params[] = {NULL};
static const char *const devices_params[] = {"limit", "after", NULL};
static const char *const readings_params[] = {"from",     "to",   "limit", "order",
                                              "channels", "step", "agg",   NULL};
static const char *const predictions_params[] = {"from", "to", "limit", "order", NULL};
static const char *const forecast_params[] = {"horizon", NULL};
static const char *const anomalies_params[] = {"from", "to", "limit", "active", "before", NULL};
static const char *const maint_params[] = {"from", NULL}; /* DELETE: the scheduled one's start */
static const char *const events_params[] = {"device", "types", NULL};
static const char *const retrain_params[] = {"force", NULL};

static const struct {
    void (*handler)(api_request_t *r);
    const char *methods; /* space-separated, for matching */
    const char *allow;
    int io;
    const char *allow_hdr;
    const char *const *params;
} routes[ROUTE_COUNT] = {
    [ROUTE_HEALTHZ] = {healthz, "GET HEAD", "GET, HEAD", 0, "GET, HEAD, OPTIONS", NULL},
    [ROUTE_METRICS] = {api__h_metrics, "GET HEAD", "GET, HEAD", 0, "GET, HEAD, OPTIONS", NULL},
    [ROUTE_PING] = {ping, "GET HEAD", "GET, HEAD", 0, "GET, HEAD, OPTIONS", NULL},
    [ROUTE_HEALTH] = {api__h_health, "GET HEAD", "GET, HEAD", 0, "GET, HEAD, OPTIONS", NULL},
    [ROUTE_WRITE] = {api__h_write, "POST", "POST", IO_INGEST, "POST, OPTIONS", NULL},
    [ROUTE_WRITE_V2] = {api__h_write_v2, "POST", "POST", IO_INGEST, "POST, OPTIONS", NULL},
    [ROUTE_QUERY] = {api__h_query, "GET POST", "GET, POST", IO_DISK, "GET, POST, OPTIONS", NULL},
    [ROUTE_READINGS] = {api__h_readings_post, "POST", "POST", IO_INGEST, "POST, OPTIONS",
                        no_params},
    [ROUTE_DEVICES] = {api__h_devices, "GET HEAD", "GET", IO_DISK, "GET, HEAD, OPTIONS",
                       devices_params},
    [ROUTE_DEVICE] = {api__h_device, "GET HEAD PUT DELETE", "GET, PUT, DELETE", IO_WRITES,
                      "GET, HEAD, PUT, DELETE, OPTIONS", no_params},
    [ROUTE_DEVICE_READINGS] = {api__h_device_readings, "GET HEAD", "GET", IO_DISK,
                               "GET, HEAD, OPTIONS", readings_params},
    [ROUTE_STATUS] = {api__h_status, "GET HEAD", "GET", 0, "GET, HEAD, OPTIONS", no_params},
    [ROUTE_PREDICTIONS] = {api__h_predictions, "GET HEAD", "GET", IO_DISK, "GET, HEAD, OPTIONS",
                           predictions_params},
    [ROUTE_FORECAST] = {api__h_forecast, "GET HEAD", "GET", 0, "GET, HEAD, OPTIONS",
                        forecast_params},
    [ROUTE_DEVICE_ANOMALIES] = {api__h_anomalies, "GET HEAD", "GET", IO_DISK, "GET, HEAD, OPTIONS",
                                anomalies_params},
    [ROUTE_ANOMALIES] = {api__h_anomalies, "GET HEAD", "GET", IO_DISK, "GET, HEAD, OPTIONS",
                         anomalies_params},
    [ROUTE_MODEL] = {api__h_model, "GET HEAD", "GET", 0, "GET, HEAD, OPTIONS", no_params},
    [ROUTE_RETRAIN] = {api__h_retrain, "POST", "POST", 0, "POST, OPTIONS", retrain_params},
    [ROUTE_ROLLBACK] = {api__h_rollback, "POST", "POST", IO_WRITES, "POST, OPTIONS", no_params},
    [ROUTE_WEIGHTS] = {api__h_weights, "GET HEAD PUT", "GET, PUT", IO_WRITES,
                       "GET, HEAD, PUT, OPTIONS", no_params},
    /* io: it stores the ended event and the detector */
    [ROUTE_ACCEPT] = {api__h_accept, "POST", "POST", IO_WRITES, "POST, OPTIONS", no_params},
    /* io: it stores the period and waits for its commit */
    [ROUTE_MAINT] = {api__h_maint, "GET HEAD POST DELETE", "GET, POST, DELETE", IO_WRITES,
                     "GET, HEAD, POST, DELETE, OPTIONS", maint_params},
    /* not io: it answers from memory, and its stream is read on the worker (events.c) */
    [ROUTE_EVENTS] = {api__h_events, "GET HEAD", "GET", 0, "GET, HEAD, OPTIONS", events_params},
    /* io: a copy of the database, and its list read from the disk */
    [ROUTE_SNAPSHOT] = {api__h_snapshot, "POST", "POST", IO_DISK, "POST, OPTIONS", no_params},
    [ROUTE_SNAPSHOTS] = {api__h_snapshots, "GET HEAD", "GET", IO_DISK, "GET, HEAD, OPTIONS",
                         no_params},
};

const char *api__route_allow(enum api_route route)
{
    return routes[route].allow ? routes[route].allow : "GET";
}

struct param_check {
    const char *const *known;
    const char *bad; /* the first parameter refused, borrowed from libmicrohttpd */
    int dup;         /* bad is given twice (else it is unknown) */
    unsigned seen;   /* bit i: known[i] was given */
};

static enum MHD_Result check_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct param_check *c = cls;
    for (unsigned i = 0; c->known[i]; i++) {
        if (strcmp(key, c->known[i]) != 0)
            continue;
        if (c->seen & (1u << i)) {
            c->bad = key;
            c->dup = 1;
            return MHD_NO;
        }
        c->seen |= 1u << i;
        return MHD_YES;
    }
    c->bad = key;
    return MHD_NO;
}

/* Refuses query parameters the route does not take, or takes once (see routes[]). Returns 0,
 * or -1 with a 400 answer naming the parameter. */
static int check_params(api_request_t *r)
{
    const char *const *known = routes[r->route].params;
    if (known == NULL)
        return 0;
    struct param_check c = {known, NULL, 0, 0};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, check_param, &c);
    if (c.bad == NULL)
        return 0;
    char list[128] = "";
    for (size_t i = 0, n = 0; known[i] && n < sizeof list; i++) /* a few short names */
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", known[i]);
    if (c.dup)
        api__error(r, 400, "parameter '%s': given more than once", c.bad);
    else
        api__error(r, 400, "parameter '%.64s': unknown here (this endpoint takes %s)", c.bad,
                   known[0] ? list : "no parameters");
    return -1;
}

static void dispatch(api_request_t *r)
{
    if (r->route == ROUTE_NOT_FOUND || routes[r->route].handler == NULL) {
        api__error(r, 404, "no such endpoint: %s %s", r->method, r->url);
        return;
    }
    if (r->bad_id && strcmp(r->method, "OPTIONS") != 0) {
        if (r->bad_id == 3)
            api__error(r, 400, "device id in the path: longer than %d bytes", BATCH_NAME_MAX);
        else
            api__error(r, 400, "device id in the path: %s",
                       r->bad_id == 1 ? "is empty" : "holds a NUL byte (%00)");
        return;
    }
    if (strcmp(r->method, "OPTIONS") == 0) { /* not a CORS preflight: those are answered first */
        r->allow = routes[r->route].allow_hdr;
        r->status = 204;
        r->content_type = NULL;
        return;
    }
    /* Whole-word match of the method in the route's list. */
    const char *m = routes[r->route].methods;
    size_t n = strlen(r->method);
    for (const char *p = m; (p = strstr(p, r->method)) != NULL; p += n) {
        if ((p == m || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ')) {
            if (check_params(r) == 0)
                routes[r->route].handler(r);
            return;
        }
    }
    method_not_allowed(r, routes[r->route].allow_hdr);
}

/* Runs the request's handler; there is always an answer after it. Any thread. */
void api__handle(api_request_t *r)
{
    if (r->body_oom) {
        r->retry_after = 5;
        api__error(r, 503, "out of memory reading the request body: nothing stored, retry later");
    } else if (r->too_large)
        api__error(r, 413, "request body exceeds the limit of %zu bytes", r->max_body);
    else
        dispatch(r);
    if (r->status == 0)
        api__error(r, 500, "internal error: no response");
}

int api__route_io(enum api_route route)
{
    return routes[route].io != 0;
}

/* The lanes (api_int.h). Ingest's routes (IO_INGEST) take only POST. An operator's short
 * writes (IO_WRITES but GET and HEAD) wait for the storage writer (a commit, as a write's batch
 * does) or a device's model, never for a long read, though a read-back may wait for a reader
 * connection and a group's rollbacks for each other, so they never take the thread server.c
 * keeps for ingest:
 * a device's PUT (its attributes) and DELETE (its rows, one writer job), a maintenance period's
 * POST and DELETE, an acceptance, a rollback (one version's row read by key, then swapped in)
 * and new weights (a PUT: parsed, checked and stored). So an operator's action is not queued
 * behind Grafana's reads, each of which may wait up to http.query_timeout. Not a snapshot: its
 * copy of the database takes as long as the database is large. Their GETs are reads. */
enum api_lane api__request_lane(const api_request_t *r)
{
    if (api__is_get(r))
        return API_LANE_READ;
    return routes[r->route].io == IO_INGEST   ? API_LANE_INGEST
           : routes[r->route].io == IO_WRITES ? API_LANE_OPERATOR
                                              : API_LANE_READ;
}

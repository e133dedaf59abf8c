/* api/cors.c: CORS for browser dashboards (http.cors_origins).
 *
 * The allowed origins are a string under the server's auth_lock: NULL (no CORS: no CORS header
 * is ever sent), "*" (every origin), or a comma-separated list of exact origins. A request
 * carrying an Origin header that is allowed gets Access-Control-Allow-Origin on its answer,
 * whatever the status (so a dashboard can read a 401 or 503 too); with CORS on, every answer
 * carries Vary: Origin, because it depends on that header. A preflight (OPTIONS with
 * Access-Control-Request-Method) from an allowed origin is answered 204 here, before the token
 * check: browsers send preflights without credentials. A disallowed origin gets no CORS header
 * at all and its preflight goes on as an ordinary request (401 or 405), which the browser treats
 * as a refusal. Any thread. */
#include "api_int.h"
#include "err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Seconds a browser may cache a preflight answer. */
#define CORS_MAX_AGE "3600"

/* Calls fn for each entry of a comma-separated list, trimmed of blanks; stops when fn returns
 * nonzero and returns that value. */
static int each_entry(const char *list, int (*fn)(void *arg, const char *s, size_t n), void *arg)
{
    const char *p = list;
    for (;;) {
        size_t n = strcspn(p, ",");
        const char *s = p, *e = p + n;
        while (s < e && isblank((unsigned char)*s))
            s++;
        while (e > s && isblank((unsigned char)e[-1]))
            e--;
        int rc = fn(arg, s, (size_t)(e - s));
        if (rc)
            return rc;
        if (p[n] == '\0')
            return 0;
        p += n + 1;
    }
}

struct check_ctx {
    char *err;
    size_t errsize;
    int entries, star;
};

/* An origin is "scheme://host[:port]": no user info, path, query or trailing slash. */
static int origin_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !isalpha((unsigned char)s[0]))
        return 0;
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (n - i < 4 || memcmp(s + i, "://", 3) != 0)
        return 0;
    i += 3;
    size_t host = i;
    if (s[i] == '[') { /* an IPv6 literal */
        while (i < n && s[i] != ']')
            i++;
        if (i == n)
            return 0;
        i++;
    } else {
        while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '.'))
            i++;
    }
    if (i == host)
        return 0;
    if (i < n && s[i] == ':') {
        size_t digits = ++i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == digits || i - digits > 5)
            return 0;
    }
    return i == n;
}

static int check_entry(void *arg, const char *s, size_t n)
{
    struct check_ctx *c = arg;
    c->entries++;
    if (n == 1 && s[0] == '*') {
        c->star = 1;
        return 0;
    }
    if (!origin_ok(s, n)) {
        snprintf(c->err, c->errsize,
                 "http.cors_origins: '%.*s' is not an origin (want scheme://host[:port], no "
                 "path, or '*' alone)",
                 (int)(n > 200 ? 200 : n), s);
        return -1;
    }
    return 0;
}

int api_cors_check(const char *origins, char *err, size_t errsize)
{
    if (origins == NULL || origins[strspn(origins, " \t")] == '\0')
        return 0;
    struct check_ctx c = {err, errsize, 0, 0};
    if (each_entry(origins, check_entry, &c))
        return ERR_INVAL;
    if (c.star && c.entries > 1) {
        snprintf(err, errsize, "http.cors_origins: '*' allows every origin: give it alone");
        return ERR_INVAL;
    }
    return 0;
}

int api_set_cors(api_server_t *srv, const char *origins)
{
    char err[300];
    if (api_cors_check(origins, err, sizeof err))
        return ERR_INVAL;
    char *copy = NULL;
    if (origins && origins[strspn(origins, " \t")] != '\0' && (copy = strdup(origins)) == NULL)
        return ERR_NOMEM;
    pthread_rwlock_wrlock(&srv->auth_lock);
    char *old = srv->cors;
    srv->cors = copy;
    pthread_rwlock_unlock(&srv->auth_lock);
    free(old);
    return 0;
}

struct match_ctx {
    const char *origin;
    size_t len;
};

static int match_entry(void *arg, const char *s, size_t n)
{
    const struct match_ctx *m = arg;
    return (n == 1 && s[0] == '*') ? 2 : (n == m->len && strncasecmp(s, m->origin, n) == 0);
}

int api__cors_eval(api_request_t *r)
{
    struct api_server *srv = r->srv;
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    pthread_rwlock_rdlock(&srv->auth_lock);
    if (srv->cors != NULL) {
        r->cors_vary = 1;
        if (origin != NULL && *origin != '\0') {
            struct match_ctx m = {origin, strlen(origin)};
            int hit = each_entry(srv->cors, match_entry, &m);
            r->cors_origin = hit == 2 ? "*" : hit ? origin : NULL;
        }
    }
    pthread_rwlock_unlock(&srv->auth_lock);
    if (r->cors_origin == NULL || strcmp(r->method, "OPTIONS") != 0 ||
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Method") ==
            NULL)
        return 0;
    /* A preflight from an allowed origin: the methods of the route (every method the API has
     * for a path it does not know, so a preflight reveals nothing about routes). */
    r->preflight_methods =
        r->route != ROUTE_NOT_FOUND ? api__route_allow(r->route) : "GET, HEAD, POST, PUT, DELETE";
    r->status = 204;
    r->content_type = NULL;
    return 1;
}

void api__cors_headers(const api_request_t *r, struct MHD_Response *resp)
{
    if (r->cors_vary)
        MHD_add_response_header(resp, "Vary", "Origin");
    if (r->cors_origin == NULL)
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin);
    if (r->preflight_methods) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", r->preflight_methods);
        /* Last-Event-ID: a fetch-based EventSource (the one that can send a token) resuming
         * GET /v1/events; the browser's own sends it without a preflight. */
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, Content-Encoding, Last-Event-ID");
        MHD_add_response_header(resp, "Access-Control-Max-Age", CORS_MAX_AGE);
    } else {
        /* Headers a dashboard script (or InfluxDB's browser client) may read beyond the
         * CORS-safelisted ones. */
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "Retry-After, WWW-Authenticate, X-Platform-Error-Code, "
                                "X-Influxdb-Error");
    }
}

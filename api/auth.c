/* api/auth.c: bearer tokens with roles, and the check every request passes before its handler.
 *
 * A token set (api_auth_t) is built by the daemon (daemon/auth.c reads the token file) and
 * handed to the server, which swaps it in whole on reload under auth_lock (a read-write lock:
 * requests take it for reading for the duration of the check; it is a leaf, nothing else is
 * locked under it). A presented token is compared with every token of the set, each comparison
 * running over the whole of both strings, so the time taken depends on lengths only, never on
 * how many leading bytes match or which token matched. Any thread. */
#include "api_int.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct api_token {
    api_role_t role;
    size_t len;
    char *text;
};

struct api_auth {
    struct api_token *tokens;
    size_t n, cap;
};

static const char *const role_names[] = {"none", "read", "write", "admin"};

const char *api_role_name(api_role_t role)
{
    return role >= API_ROLE_NONE && role <= API_ROLE_ADMIN ? role_names[role] : "?";
}

int api_role_parse(const char *s, api_role_t *out)
{
    for (int i = API_ROLE_READ; i <= API_ROLE_ADMIN; i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *out = (api_role_t)i;
            return 0;
        }
    }
    return ERR_INVAL;
}

int api_auth_create(api_auth_t **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : ERR_NOMEM;
}

void api_auth_destroy(api_auth_t *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++) {
        /* Tokens are secrets: do not leave them in freed memory. */
        explicit_bzero(a->tokens[i].text, a->tokens[i].len);
        free(a->tokens[i].text);
    }
    free(a->tokens);
    free(a);
}

size_t api_auth_count(const api_auth_t *a)
{
    return a ? a->n : 0;
}

/* Equality of a and b in time that depends on their lengths only. */
static int ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen > blen ? alen : blen;
    volatile unsigned char diff = alen != blen;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        unsigned char y = i < blen ? (unsigned char)b[i] : 0;
        diff |= (unsigned char)(x ^ y);
    }
    return diff == 0;
}

api_role_t api__auth_role(const api_auth_t *a, const char *token, size_t len)
{
    /* No early exit: every token is compared whichever matches. */
    int role = API_ROLE_NONE;
    for (size_t i = 0; i < a->n; i++) {
        int eq = ct_equal(token, len, a->tokens[i].text, a->tokens[i].len);
        int r = (int)a->tokens[i].role;
        role |= -eq & r; /* tokens are unique: at most one matches */
    }
    return (api_role_t)role;
}

int api_auth_add(api_auth_t *a, api_role_t role, const char *token, size_t *dup)
{
    size_t len = strlen(token);
    if (len == 0 || role < API_ROLE_READ || role > API_ROLE_ADMIN)
        return ERR_INVAL;
    for (size_t i = 0; i < a->n; i++) {
        if (a->tokens[i].len == len && memcmp(a->tokens[i].text, token, len) == 0) {
            if (dup)
                *dup = i;
            return ERR_INVAL;
        }
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        struct api_token *t = realloc(a->tokens, cap * sizeof *t);
        if (t == NULL)
            return ERR_NOMEM;
        a->tokens = t;
        a->cap = cap;
    }
    char *copy = strdup(token);
    if (copy == NULL)
        return ERR_NOMEM;
    a->tokens[a->n++] = (struct api_token){role, len, copy};
    return 0;
}

/* The role a request needs: the open routes none, reads "read", ingest "write", changes to
 * devices and models "admin". An OPTIONS (not a CORS preflight) only lists a route's methods:
 * a read. */
static api_role_t route_role(enum api_route route, const char *method, int metrics_auth)
{
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(method, "OPTIONS") == 0)
        return route == ROUTE_HEALTHZ || route == ROUTE_HEALTH || route == ROUTE_PING ||
                       (route == ROUTE_METRICS && !metrics_auth)
                   ? API_ROLE_NONE
                   : API_ROLE_READ;
    switch (route) {
    case ROUTE_HEALTHZ:
    case ROUTE_HEALTH:
    case ROUTE_PING:
        return API_ROLE_NONE;
    case ROUTE_METRICS:
        return metrics_auth ? API_ROLE_READ : API_ROLE_NONE;
    case ROUTE_WRITE:
    case ROUTE_WRITE_V2:
    case ROUTE_READINGS:
        return API_ROLE_WRITE;
    case ROUTE_QUERY: /* GET or POST (Grafana's two methods, the influx shell's POST): a
                       * read; CREATE DATABASE, which keeps a name on disk, asks for "write"
                       * itself (influxql.c q_statements), by either method */
        return API_ROLE_READ;
    case ROUTE_DEVICE:
    case ROUTE_WEIGHTS:
    case ROUTE_MAINT:
        return get ? API_ROLE_READ : API_ROLE_ADMIN;
    case ROUTE_RETRAIN:
    case ROUTE_ROLLBACK:
    case ROUTE_ACCEPT:
    case ROUTE_SNAPSHOT:
    case ROUTE_SNAPSHOTS: /* the list names files of the server */
        return API_ROLE_ADMIN;
    default:
        return API_ROLE_READ;
    }
}

/* The InfluxDB-compatible routes also take the token as Basic auth or as u/p parameters. */
static int influx_route(enum api_route route)
{
    return route == ROUTE_WRITE || route == ROUTE_QUERY || route == ROUTE_PING;
}

/* Finds the credential the request carries and checks it. Returns the role (API_ROLE_NONE
 * when the token is unknown), or -1 when the request carries none. */
static int request_role(api_request_t *r, const api_auth_t *a)
{
    const char *h =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h) {
        while (*h == ' ')
            h++;
        size_t slen = strcspn(h, " ");
        const char *cred = h + slen;
        while (*cred == ' ')
            cred++;
        size_t clen = strlen(cred);
        while (clen > 0 && cred[clen - 1] == ' ')
            clen--;
        if ((slen == 6 && strncasecmp(h, "Bearer", 6) == 0) ||
            (slen == 5 && strncasecmp(h, "Token", 5) == 0))
            return (int)api__auth_role(a, cred, clen);
        if (slen == 5 && strncasecmp(h, "Basic", 5) == 0 && influx_route(r->route)) {
            char *pass = NULL;
            char *user = MHD_basic_auth_get_username_password(r->conn, &pass);
            /* The token is the password; a client that can only set a user name may put it
             * there instead. */
            const char *tok = pass && *pass ? pass : user;
            int role = tok ? (int)api__auth_role(a, tok, strlen(tok)) : API_ROLE_NONE;
            if (pass) {
                explicit_bzero(pass, strlen(pass));
                MHD_free(pass);
            }
            if (user)
                MHD_free(user);
            return role;
        }
        return API_ROLE_NONE; /* an Authorization this route does not take */
    }
    if (influx_route(r->route)) {
        char buf[1024];
        const char *p = api__arg(r, "p", buf, sizeof buf);
        if (p == NULL || *p == '\0')
            p = api__arg(r, "u", buf, sizeof buf);
        if (r->status) {
            /* An overlong parameter is an unknown token here, not a 400: its answer goes,
             * the error headers with it (else a 204 would carry X-Influxdb-Error). */
            api__answer_clear(r);
        }
        if (p && *p) {
            int role = (int)api__auth_role(a, p, strlen(p));
            explicit_bzero(buf, sizeof buf);
            return role;
        }
    }
    return -1;
}

/* Answers 401, with the challenge and the hint of the route's kind: InfluxDB 1's routes take
 * Basic too; InfluxDB 2's clients send "Token TOKEN", and InfluxDB 2 words its 401 "unauthorized
 * access" (its code "unauthorized" comes with the form, api__error). missing: no credential
 * was sent (else it is unknown). */
static void unauthorized(api_request_t *r, int missing)
{
    if (api__v2(r)) {
        r->challenge = API_CHALLENGE_TOKEN;
        api__error(r, 401, "unauthorized access: %s",
                   missing ? "send 'Authorization: Token TOKEN'" : "invalid token");
        return;
    }
    int influx = influx_route(r->route);
    r->challenge = influx ? API_CHALLENGE_BASIC : API_CHALLENGE_BEARER;
    /* The influx shell and Telegraf cannot send a Bearer header: the InfluxDB routes name
     * what they send instead, the token as Basic auth's password (request_role). */
    const char *how = !influx ? "authentication required: send 'Authorization: Bearer TOKEN'"
                              : "authentication required: send 'Authorization: Bearer TOKEN', "
                                "or the token as the password (influx shell: -username any "
                                "-password TOKEN; Telegraf: password = \"TOKEN\")";
    api__error(r, 401, "%s", missing ? how : "invalid token");
}

int api__auth_check(api_request_t *r)
{
    struct api_server *srv = r->srv;
    int rc = 0;
    r->role = -1;
    pthread_rwlock_rdlock(&srv->auth_lock);
    if (srv->auth == NULL)
        goto out;
    api_role_t need = route_role(r->route, r->method, srv->metrics_auth);
    if (need == API_ROLE_NONE)
        goto out;
    int have = request_role(r, srv->auth);
    r->role = have;
    if (have <= API_ROLE_NONE) {
        unauthorized(r, have < 0);
        rc = -1;
    } else if (have < (int)need) {
        api__error(r, 403, "forbidden: a '%s' token cannot %s %s (needs '%s')",
                   api_role_name((api_role_t)have), r->method, r->url, api_role_name(need));
        rc = -1;
    }
out:
    pthread_rwlock_unlock(&srv->auth_lock);
    return rc;
}

void api_set_auth(api_server_t *srv, api_auth_t *auth, int metrics_auth)
{
    pthread_rwlock_wrlock(&srv->auth_lock);
    api_auth_t *old = srv->auth;
    srv->auth = auth;
    srv->metrics_auth = metrics_auth;
    pthread_rwlock_unlock(&srv->auth_lock);
    api_auth_destroy(old);
}

int api_token_role(api_server_t *srv, const char *token, size_t len)
{
    pthread_rwlock_rdlock(&srv->auth_lock);
    int role = -1;
    if (srv->auth != NULL)
        role = token ? (int)api__auth_role(srv->auth, token, len) : API_ROLE_NONE;
    pthread_rwlock_unlock(&srv->auth_lock);
    return role;
}

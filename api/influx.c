/* api/influx.c: the InfluxDB v1 compatible endpoints, so Telegraf and the influx client write
 * to vigild unchanged: POST /write (line protocol, partial writes), POST|GET /query (only
 * CREATE DATABASE and SHOW DATABASES are answered), /ping is in server.c. Any thread.
 *
 * vigild has one store, so a database chooses nothing; but the influx shell's USE asks SHOW
 * DATABASES and refuses a name it does not list. So the server remembers the names CREATE
 * DATABASE and /write?db= have used since the start (srv->dbs, under dbs_mu) and lists them:
 * the database Telegraf writes to is there as soon as it created it or wrote, as in InfluxDB. */
#include "api_int.h"
#include "err.h"
#include "vtime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Remembers the database name[0..len) for SHOW DATABASES, unless it is known, empty, longer
 * than API_DB_NAME_MAX, not UTF-8 without control characters (it is listed as JSON), or the
 * list is full. */
static void db_remember(struct api_server *srv, const char *name, size_t len)
{
    const char *why;
    if (len == 0 || len > API_DB_NAME_MAX || batch_name_check(name, len, &why))
        return;
    pthread_mutex_lock(&srv->dbs_mu);
    int i = 0;
    while (i < srv->ndbs && !(strncmp(srv->dbs[i], name, len) == 0 && srv->dbs[i][len] == '\0'))
        i++;
    if (i == srv->ndbs && i < API_DBS_MAX) {
        memcpy(srv->dbs[i], name, len);
        srv->dbs[i][len] = '\0';
        srv->ndbs++;
    }
    pthread_mutex_unlock(&srv->dbs_mu);
}

/* Remembers /write's db parameter. Never refuses the request: the name chooses nothing, so one
 * that cannot be kept (too long, a NUL) is only not listed. */
static void db_remember_arg(api_request_t *r)
{
    const char *raw = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "db");
    char buf[API_DB_NAME_MAX + 1];
    long n = raw ? api__pct_decode(raw, strlen(raw), buf, sizeof buf, 1) : -1;
    if (n > 0)
        db_remember(r->srv, buf, (size_t)n);
}

void api__h_write(api_request_t *r)
{
    struct api_server *srv = r->srv;
    char pbuf[16];
    const char *p = api__arg(r, "precision", pbuf, sizeof pbuf);
    if (r->status)
        return;
    lp_opts_t lo = {.device_tag = srv->opts.device_tag, .precision = LP_NS, .max_line = 0};
    if (p && lp_precision_parse(p, &lo.precision)) {
        api__error(r, 400, "parameter 'precision': '%s' is not one of ns, u, ms, s, m, h", p);
        return;
    }
    char *body;
    size_t len;
    int owned;
    if (api__request_body(r, &body, &len, &owned))
        return;
    size_t lines = 0;
    for (const char *q = body; q < body + len && (q = memchr(q, '\n', (size_t)(body + len - q)));
         q++)
        lines++;
    if (len > 0 && body[len - 1] != '\n')
        lines++; /* the last line need not end with a newline */
    if (lines > r->max_batch) {
        api__error(r, 413, "body holds more than %zu lines (the limit); split it", r->max_batch);
        if (owned)
            free(body);
        return;
    }
    batch_t b;
    batch_init(&b);
    parse_errors_t *errs = calloc(1, sizeof *errs);
    int rc = errs ? lp_parse(&b, body, len, &lo, vtime_now_ms(), 1, errs) : ERR_NOMEM;
    if (owned)
        free(body);
    if (rc) {
        api__error(r, 500, "parsing line protocol: %s", err_str(rc));
        goto out;
    }
    if (api__admit(r, &b, errs))
        goto out;
    size_t readings = b.nfields;
    if (b.npoints > 0) {
        rc = srv->be.write(srv->be.ctx, &b);
        if (rc) {
            api__backend_error(r, rc, "storing points");
            goto out;
        }
        db_remember_arg(r); /* only a write that stored points uses its db (not a refused one) */
    }
    api_count_ingest(srv, "lp", readings, errs->count);
    if (errs->count == 0) {
        r->status = 204;
        r->content_type = NULL;
        goto out;
    }
    const parse_error_t *first = &errs->e[0];
    if (errs->parsed == 0) {
        /* Every line bad, so nothing was written: InfluxDB answers the parse errors alone,
         * without "partial write" (Telegraf still sees "unable to parse" and drops the batch
         * rather than retry it). Where InfluxDB lists every bad line, the first one's number
         * and the count of the others stay. */
        if (errs->count == 1)
            api__error(r, 400, "%s (line %u)", first->msg, (unsigned)first->item);
        else
            api__error(r, 400, "%s (line %u); dropped=%u", first->msg, (unsigned)first->item,
                       (unsigned)errs->count);
        goto out;
    }
    /* InfluxDB's partial write: the good lines are stored, the answer names the first bad one
     * (a parse error, or a point refused by a limit or the retention horizon). */
    api__error(r, 400, "partial write: %s (line %u); dropped=%u", first->msg, (unsigned)first->item,
               (unsigned)errs->count);
out:
    free(errs);
    batch_deinit(&b);
}

/* Finds the q parameter in an application/x-www-form-urlencoded body; decodes into buf. */
static const char *form_q(const char *body, size_t len, char *buf, size_t size)
{
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop - p >= 2 && p[0] == 'q' && p[1] == '=') {
            size_t o = 0;
            for (const char *s = p + 2; s < stop && o + 1 < size; s++) {
                char c = *s;
                if (c == '+')
                    c = ' ';
                else if (c == '%' && stop - s > 2 && isxdigit((unsigned char)s[1]) &&
                         isxdigit((unsigned char)s[2])) {
                    char hx[3] = {s[1], s[2], 0};
                    c = (char)strtol(hx, NULL, 16);
                    s += 2;
                }
                buf[o++] = c;
            }
            buf[o] = '\0';
            return buf;
        }
        if (amp == NULL)
            break; /* not stop + 1: that would point past the end of the body */
        p = amp + 1;
    }
    return NULL;
}

/* If q starts with the keywords kw1 and kw2 (any case, blanks before and between), returns the
 * text after them; else NULL. */
static const char *statement(const char *q, const char *kw1, const char *kw2)
{
    const char *kw[2] = {kw1, kw2};
    for (int k = 0; k < 2; k++) {
        size_t n = strlen(kw[k]);
        while (isspace((unsigned char)*q))
            q++;
        if (strncasecmp(q, kw[k], n) != 0 || isalnum((unsigned char)q[n]) || q[n] == '_')
            return NULL;
        q += n;
    }
    return q;
}

/* Remembers the database CREATE DATABASE names: an identifier, or a double-quoted one with
 * InfluxQL's backslash escapes (Telegraf sends CREATE DATABASE "telegraf"). What follows the
 * name (WITH ...) is not read; an unterminated name is not kept, nor one with an escape
 * InfluxQL refuses or "\n" (a newline: a control character, see db_remember). */
static void db_remember_created(struct api_server *srv, const char *s)
{
    char name[API_DB_NAME_MAX + 1];
    size_t n = 0;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '"') {
        for (s++; *s != '"'; s++) {
            if (*s == '\\' && !strchr("\\\"'", *++s))
                return; /* "\n" or an escape InfluxQL refuses (a NUL: below) */
            if (*s == '\0' || n == sizeof name)
                return;
            name[n++] = *s;
        }
    } else {
        for (; *s != '\0' && *s != ';' && !isspace((unsigned char)*s); s++) {
            if (n == sizeof name)
                return;
            name[n++] = *s;
        }
    }
    db_remember(srv, name, n);
}

/* Answers SHOW DATABASES in InfluxDB 1.x's form: one series "databases" with a column "name"
 * and a row per remembered name, in the order of first use ("values" absent when none). */
static void show_databases(api_request_t *r)
{
    struct api_server *srv = r->srv;
    sbuf_t b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"databases\","
                    "\"columns\":[\"name\"]");
    pthread_mutex_lock(&srv->dbs_mu);
    for (int i = 0; i < srv->ndbs; i++) {
        sbuf_printf(&b, "%s", i == 0 ? ",\"values\":[[" : ",[");
        api__json_str(&b, srv->dbs[i]);
        sbuf_printf(&b, "]");
    }
    if (srv->ndbs > 0)
        sbuf_printf(&b, "]");
    pthread_mutex_unlock(&srv->dbs_mu);
    sbuf_printf(&b, "}]}]}\n");
    api__body(r, 200, "application/json", &b);
}

void api__h_query(api_request_t *r)
{
    char qbuf[1024];
    const char *q = api__arg(r, "q", qbuf, sizeof qbuf);
    if (r->status)
        return;
    if (q == NULL && r->body)
        q = form_q(r->body, r->len, qbuf, sizeof qbuf);
    if (q == NULL) {
        api__error(r, 400, "missing required parameter \"q\"");
        return;
    }
    const char *rest = statement(q, "CREATE", "DATABASE");
    if (rest != NULL) {
        db_remember_created(r->srv, rest);
        sbuf_t b;
        sbuf_init(&b);
        sbuf_append(&b, "{\"results\":[]}\n", 15);
        api__body(r, 200, "application/json", &b);
        return;
    }
    rest = statement(q, "SHOW", "DATABASES");
    if (rest != NULL) {
        rest += strspn(rest, " \t\r\n");
        rest += *rest == ';';
        if (rest[strspn(rest, " \t\r\n")] == '\0') {
            show_databases(r);
            return;
        }
    }
    api__error(r, 400,
               "vigild answers only CREATE DATABASE and SHOW DATABASES on /query; read readings "
               "through GET /v1/devices/{id}/readings");
}

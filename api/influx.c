/* api/influx.c: the InfluxDB v1 compatible endpoints, so Telegraf and the influx client write
 * to vigild unchanged: POST /write (line protocol, partial writes), POST|GET /query (only
 * CREATE DATABASE is answered), /ping is in server.c. Any thread. */
#include "api_int.h"
#include "err.h"
#include "vtime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    while (isspace((unsigned char)*q))
        q++;
    if (strncasecmp(q, "CREATE DATABASE", 15) == 0) {
        sbuf_t b;
        sbuf_init(&b);
        sbuf_append(&b, "{\"results\":[]}\n", 15);
        api__body(r, 200, "application/json", &b);
        return;
    }
    api__error(r, 400,
               "vigild answers only CREATE DATABASE on /query; read readings through "
               "GET /v1/devices/{id}/readings");
}

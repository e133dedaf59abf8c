/* api/influxql_stmt.c: what /query's statement files share on the tokens influxql.c's scanner
 * cuts: whether a token is a keyword or an operator, expecting a keyword, the end, a duration
 * or an integer, influxd 1.6.7's parse errors for what was found instead (an operand where none
 * may be, a literal it cannot read), numbers and duration literals read as influxd reads them,
 * and a statement's result opened, closed or failed in the answer (influxql.c's run_query
 * sends it).
 *
 * Any thread; no state. */
#include "influxql.h"
#include "api_int.h"
#include "err.h"
#include "vtime.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether t is the keyword kw (upper case). */
int api__q_is(const qtoken_t *t, const char *kw)
{
    return t->kind == QT_KEYWORD && strcmp(t->text, kw) == 0;
}

int api__q_keyword_name(api_request_t *r, qscan_t *s, const char *kw)
{
    qscan_t at = *s;
    qtoken_t t;
    api__qs_next(s, &t);
    if (!api__q_is(&t, kw)) {
        *s = at;
        return 0;
    }
    api__qs_next(s, &t);
    if (t.kind != QT_IDENT) {
        api__q_parse_error(r, &t, "identifier");
        return -1;
    }
    if (strcmp(kw, "ON") == 0)
        s->on_db = t.text; /* borrowed, as the tokens' texts */
    return 0;
}

int api__q_op(const qtoken_t *t, const char *op)
{
    return t->kind == QT_OTHER && strcmp(t->text, op) == 0;
}

/* Answers influxd's parse error: token t found where want was expected (400). */
void api__q_parse_error(api_request_t *r, const qtoken_t *t, const char *want)
{
    const char *text = t->form == QF_ERROR || t->form == QF_REGEX ? t->text + 1 : t->text;
    api__error(r, 400, "error parsing query: found %s, expected %s at line %d, char %d", text, want,
               t->line, t->col);
}

int api__q_binary_op(const qtoken_t *t)
{
    static const char *const ops[] = {"+",  "-", "*",  "/", "%",  "&",  "|",  "^", "=",
                                      "!=", "<", "<=", ">", ">=", "=~", "!~", NULL};
    if (api__q_is(t, "AND") || api__q_is(t, "OR"))
        return 1;
    for (int i = 0; ops[i]; i++)
        if (api__q_op(t, ops[i]))
            return 1;
    return 0;
}

int api__q_unbound(api_request_t *r, const qtoken_t *t)
{
    if (t->kind != QT_OTHER || t->text[0] != '$')
        return 0;
    if (t->form == QF_REGEX) /* influxd reads it as a value too (device = $r: no series) */
        api__error(r, 400,
                   "error parsing query: vigild reads a bound regex only where it reads a "
                   "/regex/");
    else if (t->text[1] == '\0')
        api__error(r, 400, "error parsing query: empty bound parameter");
    else
        api__error(r, 400, "error parsing query: missing parameter: %s", t->text + 1);
    return -1;
}

int api__q_bad_operand(const qtoken_t *t)
{
    if (t->kind == QT_EOF || t->kind == QT_SEMI || t->kind == QT_BAD)
        return 1;
    return t->kind == QT_OTHER && t->text[0] != '$' && strchr("(-+*/", t->text[0]) == NULL;
}

int api__q_nest(api_request_t *r, qscan_t *s, const qtoken_t *t)
{
    if (++s->depth <= API_IQ_DEPTH_MAX)
        return 0;
    api__error(r, 400,
               "error parsing query: vigild reads expressions nested at most %d deep at line %d, "
               "char %d",
               API_IQ_DEPTH_MAX, t->line, t->col);
    return -1;
}

int api__q_operand_error(api_request_t *r, const qscan_t *s, const qtoken_t *t, int where)
{
    qtoken_t at = *t;
    (void)where;
    if (at.kind == QT_EOF && s->end_op)
        at.col--; /* right after an operator ("WHERE device =": 34 of 33; "SELECT temp +") */
    api__q_parse_error(r, &at, "identifier, string, number, bool");
    return -1;
}

int api__q_expect_kw(api_request_t *r, qscan_t *s, const char *kw)
{
    qtoken_t t;
    api__qs_next(s, &t);
    if (api__q_is(&t, kw))
        return 0;
    api__q_parse_error(r, &t, kw);
    return -1;
}

/* Checks that t, the token after a statement, ends it: ';' or the end of the query. Returns 0,
 * or answers influxd's parse error and -1. */
int api__q_expect_end(api_request_t *r, const qtoken_t *t)
{
    if (t->kind != QT_EOF && t->kind != QT_SEMI) {
        api__q_parse_error(r, t, ";");
        return -1;
    }
    return 0;
}

/* Opens the running statement's result in run->b: "{"statement_id":N" (api__q_result_close closes
 * it), after a ',' in the one {"results":[...]} document, or, chunked, in a document of its
 * own: {"results":[{"statement_id":N...}]} and a newline, as influxd streams them. */
void api__q_result_open(qrun_t *run)
{
    if (run->chunked)
        sbuf_printf(&run->b, "{\"results\":[");
    else if (run->id > 0)
        sbuf_printf(&run->b, ",");
    sbuf_printf(&run->b, "{\"statement_id\":%d", run->id);
}

void api__q_result_close(qrun_t *run)
{
    sbuf_printf(&run->b, run->chunked ? "}]}\n" : "}");
}

/* Records the running statement's error, msg then db (NULL: none). Returns 1, the statement
 * functions' "failed". */
int api__q_result_error(qrun_t *run, const char *msg, const char *db)
{
    size_t n = strlen(msg), k = db ? strlen(db) : 0;
    free(run->err);
    run->err = malloc(n + k + 1);
    run->err_nomem = run->err == NULL;
    if (run->err != NULL) {
        memcpy(run->err, msg, n);
        memcpy(run->err + n, db ? db : "", k + 1);
    }
    return 1;
}

int api__q_sent_error(qrun_t *run, const char *msg, const char *arg)
{
    run->err_goes_on = 1;
    return api__q_result_error(run, msg, arg);
}

void api__q_series_next(qrun_t *run, sbuf_t *b, int partial)
{
    if (run->chunked)
        sbuf_printf(b, "]%s}]}\n{\"results\":[{\"statement_id\":%d,\"series\":[",
                    partial ? ",\"partial\":true" : "", run->id);
    else
        sbuf_append(b, ",", 1);
}

void api__q_series_open(qrun_t *run, int *nseries)
{
    if ((*nseries)++ == 0)
        sbuf_append(&run->b, ",\"series\":[", 11);
    else
        api__q_series_next(run, &run->b, 1);
    sbuf_append(&run->b, "{\"name\":", 8);
}

int api__q_chunk_full(const qrun_t *run, long long rows)
{
    return run->chunked && rows >= run->chunk_rows;
}

void api__q_series_end(qrun_t *run, long long rows)
{
    if (!run->chunked && rows > API_IQ_CHUNK_DEFAULT)
        sbuf_append(&run->b, "],\"partial\":true}", 17);
    else
        sbuf_append(&run->b, "]}", 2);
}

void api__q_chunk_next(const qrun_t *run, sbuf_t *b, const char *head)
{
    sbuf_printf(b,
                "],\"partial\":true}],\"partial\":true}]}\n{\"results\":[{\"statement_id\":%d,"
                "\"series\":[{%s",
                run->id, head);
}

int api__q_unsupported_error(qrun_t *run, const char *what)
{
    /* A policy vigild does not hold (to influxd one it does not hold either) or a database it
     * does not list: influxd's words, whose error stops the run. */
    if (api__iq_from_stops(what))
        return api__q_result_error(run, what, NULL);
    return api__q_sent_error(run, "vigild does not support ", what);
}

void api__q_deadline_start(qrun_t *run, int64_t timeout_ms)
{
    run->deadline_us = timeout_ms > 0 ? vtime_mono_us() + timeout_ms * 1000 : 0;
}

int api__q_deadline_passed(qrun_t *run)
{
    if (run == NULL || run->deadline_us == 0)
        return 0;
    if (!run->timed_out)
        run->timed_out = vtime_mono_us() >= run->deadline_us;
    return run->timed_out;
}

int api__iq_devices(api_request_t *r, api_device_cb cb, void *arg)
{
    const api_backend_t *be = &r->srv->be;
    if (be->device_each != NULL) /* ids and channels alone: no wait for the store's reload */
        return be->device_each(be->ctx, cb, arg);
    return be->device_list ? be->device_list(be->ctx, NULL, 0, r->read_deadline_us, cb, arg) : 0;
}

/* The device_get callback of api__iq_is_device: the device exists. */
static int exists_cb(void *arg, const api_device_t *d)
{
    (void)d;
    *(int *)arg = 1;
    return 0;
}

int api__iq_is_device(api_request_t *r, const char *name)
{
    const api_backend_t *be = &r->srv->be;
    int found = 0, rc = 0;
    if (be->device_find != NULL)
        rc = be->device_find(be->ctx, name, exists_cb, &found);
    else if (be->device_get != NULL)
        rc = be->device_get(be->ctx, name, r->read_deadline_us, exists_cb, &found);
    return rc == 0 || rc == ERR_NOTFOUND ? found : rc;
}

int api__q_timeout_error(qrun_t *run)
{
    return api__q_result_error(run, API_IQ_TIMEOUT, NULL);
}

int api__q_backend_error(qrun_t *run, const char *msg, int rc)
{
    /* The store's waits (its reload, a commit's publication) end at the query's deadline
     * (r->read_deadline_us): the statement then gets influxd's timeout error, not the store's
     * 503. */
    int again = rc == ERR_AGAIN || rc == ERR_UNPUBLISHED;
    if (again && api__q_deadline_passed(run))
        return api__q_timeout_error(run);
    run->again = again || rc == ERR_LOCKED; /* another process's lock: 503 too, named */
    return api__q_result_error(run, msg, err_str(rc));
}

enum qnum api__q_number_kind(const qtoken_t *t)
{
    if (t->form == QF_DURATION)
        return QN_DURATION;
    if (t->form == QF_DECIMAL || strchr(t->text, '.') != NULL)
        return QN_NUMBER;
    const char *d = t->text + (t->text[0] == '-'); /* a bound parameter's "-5" */
    return d[strspn(d, "0123456789")] == '\0' ? QN_INTEGER : QN_DURATION;
}

/* Parses a duration literal into *ns as influxd 1.6.7's influxql.ParseDuration does: one or
 * more digits-and-unit pairs, the units ns, u, µ, ms, s, m, h, d, w ("1h30m"; "1us" and "1h30"
 * are not durations), after a '-' for a negative one (only a bound parameter's: the scanner
 * reads '-' as an operator). Go's int64 arithmetic wraps, and a sum that wrapped negative is its
 * "overflowed" (one that wrapped twice is taken, as there; a negative one is never overflowed,
 * its sum negated as it is). Returns 0, -1 for an invalid duration (also digits past INT64_MAX:
 * strconv.ParseInt's error), -2 for an overflowed one. */
int api__q_parse_duration(const char *s, int64_t *ns)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {{"ns", 1},
                 {"ms", 1000000},
                 {"u", 1000},
                 {"\xC2\xB5", 1000},
                 {"s", 1000000000},
                 {"m", 60000000000},
                 {"h", 3600000000000},
                 {"d", 86400000000000},
                 {"w", 604800000000000}};
    uint64_t d = 0;
    if (strlen(s) < 2)
        return -1;
    int neg = *s == '-';
    s += neg;
    while (*s != '\0') {
        const char *start = s;
        uint64_t n = 0;
        for (; api__q_digit(*s); s++) {
            if (n > ((uint64_t)INT64_MAX - (uint64_t)(*s - '0')) / 10)
                return -1;
            n = n * 10 + (uint64_t)(*s - '0');
        }
        if (*s == '\0' || s == start)
            return -1;
        size_t i = 0, nu = sizeof units / sizeof units[0];
        while (i < nu && strncmp(s, units[i].unit, strlen(units[i].unit)) != 0)
            i++; /* "ns" and "ms" come before "m": influxd reads them as one unit */
        if (i == nu)
            return -1;
        d += n * units[i].ns;
        s += strlen(units[i].unit);
    }
    if ((int64_t)d < 0 && !neg)
        return -2;
    *ns = (int64_t)(neg ? 0 - d : d); /* Go's -d: wraps */
    return 0;
}

/* An overflowed duration's last digits-and-unit pair, as influxd's error names it (Go's %d of
 * the number, leading zeros gone: "1ns9223372036854775807ns" is 9223372036854775807ns): its
 * number into *n, its unit at *unit, *ulen bytes long. s parsed whole (-2). */
static void overflow_pair(const char *s, unsigned long long *n, const char **unit, int *ulen)
{
    const char *end = s + strlen(s), *u = end, *d;
    while (u > s && !api__q_digit(u[-1]))
        u--;
    for (d = u; d > s && api__q_digit(d[-1]); d--)
        ;
    *n = strtoull(d, NULL, 10); /* digits within int64: parsed */
    *unit = u;
    *ulen = (int)(end - u);
}

int api__q_bad_literal(api_request_t *r, const qtoken_t *t)
{
    if (t->kind != QT_NUMBER)
        return 0;
    if (api__q_number_kind(t) == QN_DURATION) {
        int64_t ns;
        int rc = api__q_parse_duration(t->text, &ns);
        unsigned long long n;
        const char *unit;
        int ulen;
        if (rc == -1) {
            api__error(r, 400, "error parsing query: invalid duration");
        } else if (rc == -2) {
            overflow_pair(t->text, &n, &unit, &ulen);
            api__error(r, 400,
                       "error parsing query: overflowed duration %llu%.*s: choose a smaller "
                       "duration or INF",
                       n, ulen, unit);
        }
        return rc ? -1 : 0;
    }
    int integer = api__q_number_kind(t) == QN_INTEGER;
    errno = 0;
    if (integer)
        (void)strtoull(t->text, NULL, 10);
    double v = integer ? 0 : strtod(t->text, NULL);
    if (!(integer ? errno == ERANGE : isinf(v)))
        return 0;
    api__error(r, 400, "error parsing query: unable to parse %s at line %d, char %d",
               integer ? "integer" : "number", t->line, t->col);
    return -1;
}

/* Reads a duration (a DURATIONVAL or INF, which is 0) into *ns. Returns 0, or answers
 * influxd's parse error and -1. */
int api__q_expect_duration(api_request_t *r, qscan_t *s, qtoken_t *t, int64_t *ns)
{
    api__qs_next(s, t);
    *ns = 0;
    if (api__q_is(t, "INF"))
        return 0;
    if (t->kind != QT_NUMBER || api__q_number_kind(t) != QN_DURATION) {
        api__q_parse_error(r, t, "duration");
        return -1;
    }
    int rc = api__q_parse_duration(t->text, ns);
    unsigned long long n;
    const char *unit;
    int ulen;
    if (rc == -1) {
        api__error(r, 400, "error parsing query: invalid duration at line %d, char %d", t->line,
                   t->col);
    } else if (rc == -2) {
        overflow_pair(t->text, &n, &unit, &ulen);
        api__error(r, 400,
                   "error parsing query: overflowed duration %llu%.*s: choose a smaller duration "
                   "or INF at line %d, char %d",
                   n, ulen, unit, t->line, t->col);
    }
    return rc ? -1 : 0;
}

/* LIMIT, OFFSET, SLIMIT, SOFFSET (influxql.h). */
int api__q_expect_count(api_request_t *r, qscan_t *s, qtoken_t *t, long long *v)
{
    api__qs_next(s, t);
    if (t->kind != QT_NUMBER || api__q_number_kind(t) != QN_INTEGER) {
        api__q_parse_error(r, t, "integer");
        return -1;
    }
    *v = strtoll(t->text, NULL, 10); /* LLONG_MAX past it, as Go's ParseInt */
    return 0;
}

/* Reads an INTEGER of min..max as influxd's Parser.ParseInt does. Returns 0, or answers its
 * parse error (strconv.Atoi's words for one past int64) and -1. */
int api__q_expect_int(api_request_t *r, qscan_t *s, qtoken_t *t, long long min, long long max)
{
    api__qs_next(s, t);
    if (t->kind != QT_NUMBER || api__q_number_kind(t) != QN_INTEGER) {
        api__q_parse_error(r, t, "integer");
        return -1;
    }
    errno = 0;
    long long n = strtoll(t->text, NULL, 10);
    if (errno == ERANGE) {
        api__error(r, 400,
                   "error parsing query: strconv.Atoi: parsing \"%s\": value out of range at line "
                   "%d, char %d",
                   t->text, t->line, t->col);
        return -1;
    }
    if (n < min || n > max) {
        api__error(r, 400,
                   "error parsing query: invalid value %lld: must be %lld <= n <= %lld at line "
                   "%d, char %d",
                   n, min, max, t->line, t->col);
        return -1;
    }
    return 0;
}

/* api/influxql_select_clauses.c: the clauses of a SELECT of /query after its FROM and WHERE
 * (influxql_select_read.c reads the rest): GROUP BY time(d[, [-]offset]) and the device tag,
 * fill(), ORDER BY time, LIMIT, OFFSET, SLIMIT, SOFFSET and tz(), with influxd 1.6.7's parse
 * errors (400); what vigild does not answer sets q->unsupported and is read on.
 *
 * Any thread; no state. */
#include "influxql_select.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The offset influxd gives time(every, now()): now - now.Truncate(every), Go's Truncate counting
 * from its zero time (0001-01-01, 62135596800 s before the epoch); 0 for every <= 0, whose
 * Truncate returns now. now_ms may be negative. */
static int64_t now_offset(int64_t now_ms, int64_t every_ns)
{
    if (every_ns <= 0)
        return 0;
    unsigned __int128 zero = (unsigned __int128)62135596800u * 1000000000u;
    __int128 t = (__int128)now_ms * 1000000 + (__int128)zero; /* > 0 after year 1 */
    __int128 m = t % every_ns;
    return (int64_t)(m < 0 ? m + every_ns : m);
}

/* After a time() argument t (read from s): whether the argument is t alone, ',' or ')' next. */
static int arg_alone(const qscan_t *s)
{
    qscan_t at = *s;
    qtoken_t n;
    api__qs_next(&at, &n);
    return api__iq_q_op(&n, ",") || api__iq_q_op(&n, ")");
}

/* Before a call's '(' (s after its name): whether the call is its time() argument alone. */
static int call_alone(const qscan_t *s)
{
    qscan_t at = *s;
    qtoken_t n;
    int depth = 0;
    do {
        api__qs_next(&at, &n);
        if (n.kind == QT_EOF || n.kind == QT_SEMI)
            return 0;
        depth += api__iq_q_op(&n, "(") - api__iq_q_op(&n, ")");
    } while (depth > 0);
    return arg_alone(&at);
}

/* How many arguments a call has, s after its '(' (the commas outside parentheses, plus one;
 * up to the end when its ')' is missing). */
static int call_args(const qscan_t *s)
{
    qscan_t at = *s;
    qtoken_t n;
    int depth = 1, n_args = 1;
    for (;;) {
        api__qs_next(&at, &n);
        if (n.kind == QT_EOF || n.kind == QT_SEMI)
            return n_args;
        depth += api__iq_q_op(&n, "(") - api__iq_q_op(&n, ")");
        if (depth == 0)
            return n_args;
        n_args += depth == 1 && api__iq_q_op(&n, ",");
    }
}

/* Reads time()'s arguments after its '(' (d[, offset]) into q->every_ns and q->offset_ns, as
 * influxd 1.6.7's parser (parseUnaryExpr: time(+10s), time(-10s), time(10s, -15m)) and its
 * validateDimensions judge them, in its order: the interval must be a duration literal ("time
 * dimension must have duration argument": time(10), time(-10), time(x)), then again (a time()
 * after one of a nonzero interval) is "multiple time dimensions not allowed", then the offset
 * must be a duration or now() (its offset from run's now; unused by a negative interval).
 * Returns 0, 1 (unsupported), or -1 (parse error). */
static int read_time_dimension(api_request_t *r, qscan_t *s, select_t *q, const qrun_t *run,
                               int again)
{
    qtoken_t t, p;
    if (call_args(s) > 2) { /* influxd counts them first: time(x, 1s, 2s) */
        api__iq_mark_influxd_error(q, s, "time dimension expected 1 or 2 arguments");
        return api__iq_skim_call(r, s, 0, 1);
    }
    for (int i = 0; i < 2; i++) {
        if (api__iq_regex_bad_next(r, s)) /* time(/x/): a call's argument to influxd */
            return -1;
        if (api__iq_regex_next(s)) { /* time(/x/): a regex, no duration, to influxd */
            const char *re;
            if (api__iq_regex(r, s, &re))
                return -1;
            api__iq_mark_influxd_error(q, s,
                                       i == 0 ? "time dimension must have duration argument"
                                              : "time dimension offset must be duration or now()");
        } else {
            api__qs_next(s, &t);
            if (api__q_bad_operand(&t) &&
                !(i == 0 && api__iq_q_op(&t, ")"))) /* time() is a statement error */
                return api__q_operand_error(r, s, &t, 0);
            if (i == 0 && api__iq_q_op(&t, ")")) { /* influxd's words; read on */
                api__iq_mark_influxd_error(q, s, "time dimension expected 1 or 2 arguments");
                return 0;
            }
            /* A sign before a number or a duration makes it a signed literal (-$d of a bound -10s
             * is 10s); before anything else it is math, no literal. */
            int sign = api__iq_q_op(&t, "-") || api__iq_q_op(&t, "+");
            int lit = api__iq_signed_literal(r, s, &t);
            if (lit < 0)
                return -1;
            if (sign && !lit) {
                api__qs_next(s, &t);
                if (api__iq_signed_operand(r, s, &t))
                    return -1;
            }
            int dur = (!sign || lit) && t.kind == QT_NUMBER &&
                      api__q_number_kind(&t) == QN_DURATION && arg_alone(s);
            int now = 0;
            if (i == 1 && !dur && !sign && t.kind == QT_IDENT && *s->p == '(') {
                /* a call as the offset: now() alone is read */
                qscan_t at = *s;
                qtoken_t a, b;
                api__qs_next(&at, &a);
                api__qs_next(&at, &b);
                now = strcasecmp(t.text, "now") == 0;
                if (now && api__iq_q_op(&b, ")") && arg_alone(&at)) {
                    *s = at;
                    now = 2;
                }
            }
            /* math (time(10s + 1s), time(10s, now() - 1s)): influxd reduces some of it, so
             * vigild's statement error, not influxd's words for a lone argument */
            int alone = t.kind == QT_IDENT && *s->p == '(' ? call_alone(s) : arg_alone(s);
            if (!alone && !sign && t.kind == QT_IDENT && *s->p != '(') {
                qscan_t at = *s; /* time(x::tag): a name alone, its ::type part of it */
                if (api__iq_skip_cast(r, &at))
                    return -1;
                alone = arg_alone(&at);
            }
            const char *err = NULL;
            if (!alone && now != 2) {
                api__iq_mark_unsupported(q, s,
                                         "this GROUP BY time() (a duration of whole ms): ", t.text);
                if (api__iq_skim_operand(r, s, &t, 0) || api__iq_skim_tail(r, s, 0))
                    return -1;
            } else if (i == 0 && !dur)
                err = "time dimension must have duration argument";
            else if (i == 1 && now == 1)
                err = "time dimension offset now() function requires no arguments";
            else if (i == 1 && !dur && !now && t.kind == QT_IDENT && *s->p == '(' && !sign)
                err = "time dimension offset function must be now()";
            else if (i == 1 && !dur && !now)
                err = "time dimension offset must be duration or now()";
            int64_t ns = 0;
            if (!alone && now != 2) {
                /* marked above */
            } else if (err != NULL) { /* influxd's statement error: read on for its parse errors */
                api__iq_mark_influxd_error(q, s, err);
                if (api__iq_skim_operand(r, s, &t, 0) || api__iq_skim_tail(r, s, 0))
                    return -1;
            } else if (now == 2) {
                q->offset_ns = q->every_neg ? 0 : now_offset(run ? run->now_ms : 0, q->every_ns);
            } else if (api__q_parse_duration(t.text, &ns) == -1) {
                return api__iq_time_duration(r, &t, &ns); /* time(1e3): influxd's 400 */
            } else if (api__q_parse_duration(t.text, &ns) || ns == INT64_MIN) {
                api__iq_mark_unsupported(q, s,
                                         "this GROUP BY time() (a duration of whole ms): ", t.text);
            } else if (i == 0 && ns < 0) {
                /* time(0s) is no GROUP BY time(), as influxd reads it. A negative interval
                 * (time(-10s), or a bound {"duration": "-10s"}) is one too when influxd runs the
                 * statement (its newIteratorOptionsStmt sets it to 0, the offset then unused),
                 * but not when it judges it: raw fields are "GROUP BY requires at least one
                 * aggregate function" (every_raw). */
                q->every_neg = 1;
            } else if (i == 1 && q->every_neg) {
                /* the offset of a negative interval: read, never used */
            } else if (ns % 1000000 != 0) {
                api__iq_mark_unsupported(q, s,
                                         "this GROUP BY time() (a duration of whole ms): ", t.text);
            } else {
                *(i == 0 ? &q->every_ns : &q->offset_ns) = ns;
            }
        }
        if (i == 0 && again) /* after the interval's own error, before the offset's */
            api__iq_mark_influxd_error(q, s, "multiple time dimensions not allowed");
        api__qs_next(s, &p);
        if (api__iq_q_op(&p, ")"))
            break;
        if (api__iq_q_op(&p, ",") && i == 1) { /* a third argument: influxd's words */
            api__iq_mark_influxd_error(q, s, "time dimension expected 1 or 2 arguments");
            return api__iq_skim_call(r, s, 0, 0);
        }
        if (!api__iq_q_op(&p, ",")) {
            api__q_parse_error(r, &p, ")");
            return -1;
        }
    }
    return 0;
}

int api__iq_time_dimension_error(api_request_t *r, qscan_t *s, int again, const char **err,
                                 int *nonzero)
{
    *err = NULL;
    *nonzero = 0;
    select_t *q = calloc(1, sizeof *q);
    if (q == NULL)
        return 0; /* no error found: the caller's own answer */
    qtoken_t p;
    api__qs_next(s, &p); /* its '(' */
    api__iq_call_paren(s);
    int rc = read_time_dimension(r, s, q, NULL, again);
    if (rc == 0 && q->influxd_error)
        *err = q->unsupported; /* in s's memory (api__qs_alloc) */
    *nonzero = q->every_ns != 0 || q->every_neg;
    free(q);
    return rc < 0 ? -1 : 0;
}

/* fill()'s argument, read up to its end, is no number: influxd's parse error if ")" does not
 * follow it, else its 400. Returns -1. */
static int fill_not_number(api_request_t *r, qscan_t *s)
{
    qtoken_t p;
    api__qs_next(s, &p);
    if (!api__iq_q_op(&p, ")")) {
        api__q_parse_error(r, &p, ")");
        return -1;
    }
    api__error(r, 400, "error parsing query: expected number argument in fill()");
    return -1;
}

/* Reads GROUP BY's items (time(d[, offset]), the device tag) and fill(...). Returns 0, 1
 * (unsupported), or -1 (parse error). */
int api__iq_read_group_by(api_request_t *r, qscan_t *s, select_t *q, const qrun_t *run)
{
    qtoken_t t, p;
    int seen = 0, last_nonzero = 0; /* a time() dimension read; the last one's interval */
    do {
        if (api__iq_regex_bad_next(r, s)) /* GROUP BY /x/: a dimension to influxd */
            return -1;
        api__qs_next(s, &t);
        if (api__q_bad_operand(&t)) /* GROUP BY at the end, or "GROUP BY device, <" */
            return api__q_operand_error(r, s, &t, 0);
        int star = api__iq_q_op(&t, "*") || t.kind == QT_STRING || t.kind == QT_NUMBER ||
                   api__iq_is_bool(&t);
        if (star) {
            api__iq_mark_unsupported(q, s, "GROUP BY ", t.text); /* read on */
        } else if (api__q_unbound(r, &t)) {
            return -1;
        } else if (t.kind != QT_IDENT) {
            api__iq_unsupported(q, s, "GROUP BY ", t.text);
            return 1;
        }
        if (star) { /* "*", or a literal: read on */
            if (api__iq_skim_operand(r, s, &t, 0) || api__iq_skim_tail(r, s, 0))
                return -1;
        } else if (strcasecmp(t.text, "time") != 0 && *s->p == '(') {
            /* "GROUP BY fill(null)": a call other than time() is influxd's statement error */
            api__iq_mark_influxd_error(q, s, "only time() calls allowed in dimensions");
            if (api__iq_skim_operand(r, s, &t, 0)) /* read on */
                return -1;
        } else if (strcasecmp(t.text, "time") != 0) {
            if (strcmp(t.text, r->srv->device_tag) != 0) /* read on */
                api__iq_mark_unsupported(q, s,
                                         "GROUP BY a tag other than the device tag: ", t.text);
            else
                q->group_tag = 1;
            if (api__iq_skip_cast(r, s))
                return -1;
        } else {
            qscan_t at = *s;
            api__qs_next(s, &p);
            if (!api__iq_q_op(&p, "(") || *at.p != '(') {
                /* A tag named time, to influxd: vigild does not answer it, but reads on for
                 * influxd's errors ("time '('": found (, expected ;). A call's '(' is right
                 * after the name: "time (10s)" is the tag, then '('. */
                *s = at;
                api__iq_mark_influxd_error(q, s,
                                           "time() is a function and expects at least one "
                                           "argument");
            } else {
                api__iq_call_paren(s);
                /* influxd runs the first time() dimension's interval (GroupByInterval), and a
                 * later one is "multiple time dimensions not allowed" only after one of a
                 * nonzero interval (negative too): time(0s), time(10s) is one row. */
                const select_t first = *q;
                q->every_ns = q->offset_ns = 0;
                q->every_neg = 0;
                int rc = read_time_dimension(r, s, q, run, last_nonzero);
                if (rc)
                    return rc;
                last_nonzero = q->every_ns != 0 || q->every_neg;
                q->every_raw |= last_nonzero;
                if (seen) {
                    q->every_ns = first.every_ns;
                    q->offset_ns = first.offset_ns;
                    q->every_neg = first.every_neg;
                }
                seen = 1;
            }
            if (q->every_ns > 0) { /* into [0, every), as influxd's offset: -3s of 10s is 7s */
                q->offset_ns %= q->every_ns;
                if (q->offset_ns < 0) /* no overflow: every > -offset; (offset + every) could */
                    q->offset_ns += q->every_ns;
            }
        }
        qscan_t at = *s;
        api__qs_next(s, &p);
        if (!api__iq_q_op(&p, ",")) {
            *s = at;
            break;
        }
    } while (1);
    qscan_t at = *s;
    api__qs_next(s, &t);
    if (!(t.kind == QT_IDENT && strcasecmp(t.text, "fill") == 0)) {
        *s = at;
        return 0;
    }
    api__qs_next(s, &p);
    if (!api__iq_q_op(&p, "(")) {
        api__error(r, 400, "error parsing query: fill must be a function call");
        return -1;
    }
    api__iq_call_paren(s);
    const qscan_t arg_at = *s;
    api__qs_next(s, &t);
    int re_next = api__iq_regex_next(&arg_at); /* fill(/ *x* /): the regex "*x*" to influxd */
    if (!re_next && api__iq_q_op(&t, ")")) {
        api__error(r, 400,
                   "error parsing query: fill requires an argument, e.g.: 0, null, none, "
                   "previous, linear");
        return -1;
    }
    if (re_next || api__iq_q_op(&t, "/") || t.form == QF_REGEX) { /* fill(/x/), fill($r) */
        const char *re;
        *s = arg_at;
        if (t.form == QF_REGEX && !re_next
                ? (api__qs_next(s, &t), api__iq_bound_regex_value(r, s, &t))
                : api__iq_regex(r, s, &re))
            return -1;
        return fill_not_number(r, s);
    }
    if (api__q_bad_operand(&t))
        return api__q_operand_error(r, s, &t, 0);
    /* influxd 1.6.7 (parseFill) reads fill's arguments whole as expressions, wants one, and
     * compares its text as written with null, none, previous and linear, else wants a number
     * literal: fill(+1) is 1 (a sign folds into a number), fill(NULL), fill(-null), fill(-(1)),
     * fill(linear(1)) and fill(1 + 1) are its 400, fill(null, 1) its other 400. */
    int sign = api__iq_q_op(&t, "-") ? -1 : api__iq_q_op(&t, "+") ? 1 : 0;
    if (sign) {
        api__qs_next(s, &t);
        if (api__iq_signed_operand(r, s, &t))
            return -1;
        if (t.kind != QT_NUMBER && t.kind != QT_IDENT && !api__iq_q_op(&t, "(")) { /* fill(-'5') */
            api__q_parse_error(r, &t, "identifier, number, duration, (");
            return -1;
        }
    }
    const char *after = s->p; /* right after the operand's first token */
    qtoken_t first = t;
    if (api__iq_skim_operand(r, s, &t, 0))
        return -1;
    /* One name or number alone: no call, parentheses, ::type or operator after it. */
    int plain = (first.kind == QT_IDENT || first.kind == QT_NUMBER) && s->p == after;
    if (api__iq_skim_tail(r, s, 0))
        return -1;
    plain = plain && s->p == after;
    api__qs_next(s, &p);
    if (api__iq_q_op(&p, ",")) { /* fill(null, 1): the others read, then the count's 400 */
        if (api__iq_skim_call(r, s, 0, 0))
            return -1;
        api__error(r, 400,
                   "error parsing query: fill requires an argument, e.g.: 0, null, none, "
                   "previous, linear");
        return -1;
    }
    if (!api__iq_q_op(&p, ")")) {
        api__q_parse_error(r, &p, ")");
        return -1;
    }
    int word = plain && !sign && first.kind == QT_IDENT;
    if (word && strcmp(first.text, "null") == 0) {
        q->fill = FILL_NULL;
    } else if (word && strcmp(first.text, "none") == 0) {
        q->fill = FILL_NONE;
    } else if (word && strcmp(first.text, "previous") == 0) {
        q->fill = FILL_PREVIOUS;
    } else if (plain && first.kind == QT_NUMBER && api__q_number_kind(&first) != QN_DURATION) {
        q->fill = FILL_NUMBER;
        q->fill_v = strtod(first.text, NULL) * (sign < 0 ? -1 : 1);
    } else if (word && strcmp(first.text, "linear") == 0) {
        /* influxd's one fill vigild lacks, named whole (it said "fill(linear", unclosed). In
         * lower case only, quoted or not: influxd 1.6.7 compares the argument's text with
         * "linear", so fill(LINEAR) is its 400 below, not a linear fill. Read on, as influxd
         * does, for a parse error after it (fill(linear) LIMIT x). */
        api__iq_mark_unsupported(q, s, "fill(linear)", NULL);
    } else {
        /* fill(foo), fill(NULL), fill(-null), fill('x'), fill((1)), fill(1h), fill(linear(1)):
         * no fill option and no number */
        api__error(r, 400, "error parsing query: expected number argument in fill()");
        return -1;
    }
    return 0;
}

int api__iq_order_by(api_request_t *r, qscan_t *s, int *desc)
{
    qscan_t at = *s;
    qtoken_t t;
    if (api__q_expect_kw(r, s, "BY"))
        return -1;
    /* influxd's parseSortFields: time (so written) or none, then ASC or DESC; a field
     * list, another name, are its 400s. */
    for (int n = 0;; n++) {
        api__qs_next(s, &t);
        if (n > 0 && t.kind != QT_IDENT) { /* parseSortField: a name */
            if (t.kind == QT_EOF)
                t.col--; /* right after the ',' */
            api__q_parse_error(r, &t, "identifier");
            return -1;
        }
        if (t.kind == QT_IDENT) {
            if (n == 0 && strcmp(t.text, "time") != 0) {
                api__error(r, 400,
                           "error parsing query: only ORDER BY time supported "
                           "at this time");
                return -1;
            }
            at = *s;
            api__qs_next(s, &t);
        } else if (!api__q_is(&t, "ASC") && !api__q_is(&t, "DESC")) {
            api__q_parse_error(r, &t, "identifier, ASC, DESC");
            return -1;
        }
        if (api__q_is(&t, "DESC"))
            *desc = 1;
        else if (!api__q_is(&t, "ASC"))
            *s = at;
        at = *s;
        api__qs_next(s, &t);
        if (!api__iq_q_op(&t, ",")) {
            *s = at;
            if (n == 0)
                break;
            api__error(r, 400,
                       "error parsing query: only ORDER BY time supported at "
                       "this time");
            return -1;
        }
    }
    return 0;
}

/* The clause t begins among those read once each, in this order, by influxd 1.6.7's
 * parseSelectStatement (1..5), or 0. */
static int tail_rank(const qtoken_t *t)
{
    static const char *const kw[] = {"ORDER", "LIMIT", "OFFSET", "SLIMIT", "SOFFSET"};
    for (int i = 0; i < 5; i++)
        if (api__q_is(t, kw[i]))
            return i + 1;
    return 0;
}

/* Reads ORDER BY time [ASC|DESC], LIMIT n, OFFSET n, SLIMIT n, SOFFSET n and tz(), then the
 * end. Each clause at most once and in that order: influxd reads them so, and one repeated or
 * out of order is where its statement ends ("found LIMIT, expected ;"), not a second value. */
int api__iq_read_tail(api_request_t *r, qscan_t *s, select_t *q)
{
    qtoken_t t;
    int rc, last = 0;
    for (;;) {
        qscan_t at = *s;
        api__qs_next(s, &t);
        if (t.kind == QT_EOF || t.kind == QT_SEMI) {
            *s = at;
            return 0;
        }
        int rank = tail_rank(&t);
        if (rank > 0 && rank <= last) {
            api__q_parse_error(r, &t, ";");
            return -1;
        }
        if (rank > 0)
            last = rank;
        if (api__q_is(&t, "ORDER")) {
            if (api__iq_order_by(r, s, &q->desc))
                return -1;
        } else if ((rc = api__iq_limit_offset(r, s, &t, &q->limit, &q->offset)) != 0) {
            if (rc < 0)
                return -1;
        } else if (api__q_is(&t, "SLIMIT") || api__q_is(&t, "SOFFSET")) {
            long long *v = api__q_is(&t, "SLIMIT") ? &q->slimit : &q->soffset;
            if (api__q_expect_count(r, s, &t, v))
                return -1;
        } else if (t.kind == QT_IDENT && strcasecmp(t.text, "tz") == 0) {
            /* Zone rules need the tz database read thread-safely (glibc's localtime_r reads
             * the process-wide TZ): vigild's buckets and times stay UTC. */
            api__iq_mark_unsupported(q, s, "tz(): vigild's buckets and times are UTC", NULL);
            /* influxd's parseLocation: tz('zone'), the statement's last clause */
            api__qs_next(s, &t);
            if (!api__iq_q_op(&t, "(")) {
                api__error(r, 400, "error parsing query: tz must be a function call");
                return -1;
            }
            api__iq_call_paren(s);
            if (api__iq_regex_bad_next(r, s)) /* tz(/x/): a call's argument to influxd */
                return -1;
            qtoken_t zone;
            api__qs_next(s, &zone);
            if (api__iq_skim_operand(r, s, &zone, 0))
                return -1;
            const char *after = s->p;
            if (api__iq_skim_tail(r, s, 0))
                return -1;
            if (zone.kind != QT_STRING || s->p != after) {
                api__error(r, 400, "error parsing query: expected string argument in tz()");
                return -1;
            }
            api__qs_next(s, &t);
            if (!api__iq_q_op(&t, ")")) {
                api__q_parse_error(r, &t, ")");
                return -1;
            }
            int known =
                api__iq_tz_known(zone.value); /* after the ')', before the end: influxd's order */
            if (known <= 0) {
                if (known < 0) { /* descriptors or memory short: transient, retried (503) */
                    r->retry_after = 1;
                    api__error(r, 503, "cannot look up time zone %s: %s", zone.value,
                               strerror(-known));
                } else {
                    api__error(r, 400, "error parsing query: unable to find time zone %s",
                               zone.value);
                }
                return -1;
            }
            at = *s;
            api__qs_next(s, &t);
            *s = at;
            return api__q_expect_end(r, &t);
        } else {
            api__q_parse_error(r, &t, ";");
            return -1;
        }
    }
}

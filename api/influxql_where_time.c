/* api/influxql_where_time.c: a time compared in a SELECT's WHERE, for influxql_where.c: its
 * value (integers, durations, RFC 3339 strings, now() plus or minus durations, literal math) in
 * ns, held within +-2^62 ns (api__iq_time_add), so that the range's arithmetic cannot overflow.
 * Moved unchanged out of influxql_where.c (session 48) to keep that file under ~900 lines.
 * Any thread; no state. */
#include "influxql_select.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* a + b held within +-2^62 ns (146 years from 1970), so that what the range does later (+-1 ns,
 * ms conversions, buckets) cannot overflow: a time out there holds no reading anyway. */
int64_t api__iq_time_add(int64_t a, int64_t b)
{
    const int64_t lim = (int64_t)1 << 62;
    int64_t sum;
    if (__builtin_add_overflow(a, b, &sum))
        sum = a > 0 ? lim : -lim;
    return sum > lim ? lim : sum < -lim ? -lim : sum;
}

int64_t api__iq_ms_to_ns(int64_t ms)
{
    const int64_t lim = ((int64_t)1 << 62) / 1000000;
    return (ms > lim ? lim : ms < -lim ? -lim : ms) * 1000000;
}

/* A time value of literal math (from *before; s after its first token): a number as Go's
 * int64(v) (time > 5.5: 5 ns), math reduced to an integer, a number or a duration (time >
 * 1732780800000 * 1000000, time > (5), time > -5ms - -1h), or math influxd leaves unreduced
 * (its statement error). Returns 0 (read: s after it), 1 (none of those: s as it was, for the
 * reading below), or -1 (answered). */
static int time_math(api_request_t *r, qscan_t *s, select_t *q, const qscan_t *before, int64_t *ns)
{
    struct iq_lval v;
    qscan_t at = *before;
    int ops = 0, rc = api__iq_math(r, &at, &v, &ops);
    if (rc)
        return rc;
    /* a string in math or in parentheses is no time to influxd, even one that reads as one */
    const char *msg =
        v.kind == LV_NONE ? "invalid operation: time and *influxql.BinaryExpr are not compatible"
        : v.kind == LV_BOOL
            ? "invalid operation: time and *influxql.BooleanLiteral are not compatible"
        : v.kind == LV_UINT
            ? "invalid operation: time and *influxql.UnsignedLiteral are not compatible"
        : v.kind == LV_STR && ops > 0
            ? "invalid operation: time and *influxql.StringLiteral are not compatible"
            : NULL;
    if (msg != NULL) { /* time > 1h + 1, time > true, time > 'x' + 'y' */
        *s = at;
        *ns = 0;
        api__iq_mark_influxd_error(q, s, msg);
        return 0;
    }
    if (v.kind == LV_FLOAT && !(v.d >= -9223372036854775808.0 && v.d < 9223372036854775808.0)) {
        /* Go's int64() of it is the machine's: influxd 1.6.7 reads -2^63 ns, so time >
         * 1e23.0 keeps every point and time < -1e23.0 too; vigild refuses it (-2^63.0 itself
         * is int64's, read below). */
        qscan_t first = *before;
        qtoken_t t;
        api__qs_next(&first, &t);
        api__error(r, 400,
                   "time value out of range at line %d, char %d: a number past int64 "
                   "nanoseconds (influxd reads it as -9223372036854775808)",
                   t.line, t.col);
        return -1;
    }
    if (v.kind == LV_FLOAT)
        *ns = (int64_t)v.d;     /* toward zero, as Go's int64() */
    else if (v.kind == LV_TIME) /* ('2024-01-01T00:00:00Z') + 5s */
        *ns = v.i;
    else if ((v.kind == LV_INT || v.kind == LV_DUR) && ops > 0)
        *ns = v.i;
    else
        return 1; /* a lone integer or duration, a string: read below, as before */
    *s = at;
    return 0;
}

/* Reads a time value: 1732780800000ms (a duration literal: ns since the epoch), an integer (ns),
 * either signed (-5, -1h), an RFC 3339 string, or now(), each optionally plus or minus durations
 * (now() - (1h) too), or literal math (time_math: time > 5.5, time > -(5), 1h + 1's error).
 * Returns 0, 1 (not a time vigild reads: q->unsupported), or -1 (parse error). */
int api__iq_read_time(api_request_t *r, qscan_t *s, select_t *q, const qrun_t *run, int64_t *ns)
{
    qtoken_t t;
    const qscan_t before = *s;
    api__qs_next(s, &t);
    if (api__iq_q_op(&t, "(") || api__iq_q_op(&t, "-") || api__iq_q_op(&t, "+") ||
        t.kind == QT_NUMBER || t.kind == QT_STRING || api__iq_is_bool(&t)) {
        int rc = time_math(r, s, q, &before, ns);
        if (rc <= 0)
            return rc;
    }
    if (api__iq_signed_literal(r, s, &t) < 0) /* time > -5, -1h: influxd's signed literals */
        return -1;
    if (t.kind == QT_IDENT && strcasecmp(t.text, "now") == 0) {
        qtoken_t a, b;
        api__qs_next(s, &a);
        if (api__iq_q_op(&a, "(") && api__iq_regex_bad_next(r, s)) /* now(/x/): an argument */
            return -1;
        api__qs_next(s, &b);
        if (!api__iq_q_op(&a, "(") || !api__iq_q_op(&b, ")")) {
            api__q_parse_error(r, &b, ")");
            return -1;
        }
        *ns = api__iq_ms_to_ns(run ? run->now_ms : 0);
    } else if (t.kind == QT_NUMBER && api__q_number_kind(&t) == QN_INTEGER) {
        errno = 0;
        *ns = strtoll(t.text, NULL, 10);
        if (errno == ERANGE) {
            api__error(r, 400, "error parsing query: unable to parse integer at line %d, char %d",
                       t.line, t.col);
            return -1;
        }
    } else if (t.kind == QT_NUMBER && api__q_number_kind(&t) == QN_DURATION) {
        if (api__iq_time_duration(r, &t, ns))
            return -1;
    } else if (t.value != NULL) {
        int rc = api__iq_time_string(t.value, ns);
        if (rc == 2) {
            api__iq_mark_influxd_error(q, s, "invalid timestamp string");
            *ns = 0;
        } else if (rc != 0) {
            api__iq_mark_unsupported(q, s, "this time: ", t.text);
            *ns = 0;
            return api__iq_skim_tail(r, s, 1); /* read on */
        }
    } else if (api__q_bad_operand(&t)) {
        return api__q_operand_error(r, s, &t, 1);
    } else {
        if (t.form == QF_REGEX) /* time > $r of a bound regex */
            api__iq_mark_influxd_error(
                q, s, "invalid operation: time and *influxql.RegexLiteral are not compatible");
        api__iq_mark_unsupported(q, s, "this time value: ", t.text);
        *ns = 0;
        /* read on */
        return api__iq_skim_operand(r, s, &t, 1) || api__iq_skim_tail(r, s, 1) ? -1 : 0;
    }
    for (;;) {
        qscan_t at = *s;
        qtoken_t op, d;
        api__qs_next(s, &op);
        if (!api__iq_q_op(&op, "+") && !api__iq_q_op(&op, "-")) {
            *s = at;
            return 0;
        }
        qscan_t at_d = *s;
        api__qs_next(s, &d);
        int64_t dns;
        if (api__q_bad_operand(&d))
            return api__q_operand_error(r, s, &d, 1);
        if (api__iq_q_op(&d, "(")) { /* now() - (1h) */
            struct iq_lval v;
            int ops = 0, rc = api__iq_math_operand(r, &at_d, &v, &ops);
            if (rc < 0)
                return -1;
            if (rc == 0 && v.kind == LV_NONE) { /* now() - (-(1h)): -1 * 1h, unreduced */
                *s = at_d;
                api__iq_mark_influxd_error(
                    q, s, "invalid operation: time and *influxql.BinaryExpr are not compatible");
                continue;
            }
            if (rc == 0 && v.kind == LV_DUR) {
                *s = at_d;
                *ns = api__iq_time_add(*ns, op.text[0] == '+' ? v.i : (int64_t)(0 - (uint64_t)v.i));
                continue;
            }
        }
        if (d.kind != QT_NUMBER || api__q_number_kind(&d) != QN_DURATION) {
            api__iq_mark_unsupported(q, s, "this time arithmetic: ", d.text);
            /* read on */
            return api__iq_skim_operand(r, s, &d, 1) || api__iq_skim_tail(r, s, 1) ? -1 : 0;
        }
        if (api__iq_time_duration(r, &d, &dns))
            return -1;
        /* Go's -d: a bound -2^63 ns ("-1ns9223372036854775807ns") negates to itself. */
        *ns = api__iq_time_add(*ns, op.text[0] == '+' ? dns : (int64_t)(0 - (uint64_t)dns));
    }
}

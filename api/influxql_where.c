/* api/influxql_where.c: reads the WHERE condition of a SELECT of /query (influxql_select_read.c
 * reads the rest of the statement, influxql_select.c answers it) into its select_t: comparisons
 * of time with literals, RFC 3339 strings, now() plus or minus durations and literal math, kept
 * as an inclusive range; the device tag = 'id', =~ /re/ or != ''; comparisons of literal math
 * (influxql_math.c) reduced to true or false; AND, the ORs influxd reduces (of true and false,
 * and of the device tag's conditions) and parentheses, with influxd 1.6.7's parse errors (400)
 * and its statement errors for a literal or a name alone as a condition. What vigild does not
 * answer (other ORs, conditions on fields or on other tags, math with them) sets
 * q->unsupported, the statement's error, and the condition is read on for influxd's parse errors.
 *
 * Times are held within +-2^62 ns (api__iq_time_add), so that the range's arithmetic cannot
 * overflow; a time's value is read by influxql_where_time.c. Any thread; no state. */
#include "influxql_select.h"
#include "vtime.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Forgets a literal field's error: influxd judges the condition first (SELECT 'x' FROM m
 * WHERE 'y': its error names 'y'). */
static void condition_first(select_t *q)
{
    if (q->field_error) {
        q->unsupported = NULL;
        q->influxd_error = q->field_error = 0;
    }
}

/* A condition influxd refuses with the statement error in b (built by the caller; taken and
 * freed here): that error, or, when b ran out of memory or !known, vigild's "does not support
 * <what>". Either replaces a field's error noted earlier (condition_first). */
static void condition_error(select_t *q, qscan_t *s, sbuf_t *b, int known, const char *what)
{
    condition_first(q);
    if (b->oom || !known)
        api__iq_mark_unsupported(q, s, what, NULL);
    else
        api__iq_mark_influxd_error(q, s, b->data);
    sbuf_deinit(b);
}

/* A name alone as a condition (t; its ::type between *cast and *end, if any): influxd's
 * statement error naming it as Go prints it (QuoteIdent, then ::type). Returns 0. */
static int lone_name(qscan_t *s, select_t *q, const qtoken_t *t, const qscan_t *cast,
                     const qscan_t *end)
{
    static const char *const types[] = {"float",   "integer", "unsigned", "string",
                                        "boolean", "tag",     "field"};
    sbuf_t b;
    sbuf_init(&b);
    sbuf_printf(&b, "invalid condition expression: ");
    api__iq_quote_ident(&b, t->text);
    int known = 1;
    if (cast->p != end->p) { /* "::" then the type's name */
        qscan_t at = *cast;
        qtoken_t c;
        api__qs_next(&at, &c);
        api__qs_next(&at, &c);
        known = 0;
        for (size_t i = 0; i < sizeof types / sizeof types[0] && !known; i++)
            if (strcasecmp(c.text, types[i]) == 0) {
                sbuf_printf(&b, "::%s", types[i]);
                known = 1;
            }
    }
    condition_error(q, s, &b, known, "a name alone as a condition");
    return 0;
}

/* Reads a literal that is a whole condition (t, from s): TRUE keeps every point, FALSE none;
 * another literal is influxd's statement error naming it as Go prints it ('x' quoted with \n,
 * \\ and \' escaped; an integer as an int64; a number with 3 decimals; a duration in its
 * largest whole unit). Returns 0, or -1 (a number or duration influxd cannot read: its 400). */
static int lone_literal(api_request_t *r, qscan_t *s, select_t *q, const qtoken_t *t)
{
    if (api__q_is(t, "TRUE"))
        return 0;
    if (api__q_is(t, "FALSE")) {
        q->device_none = 1; /* no point meets it: influxd answers no series */
        return 0;
    }
    if (api__iq_bad_number(r, t))
        return -1;
    static const char head[] = "invalid condition expression: ";
    sbuf_t b;
    sbuf_init(&b);
    sbuf_append(&b, head, sizeof head - 1);
    if (t->kind == QT_STRING) {
        sbuf_append(&b, "'", 1);
        for (const char *c = t->value; *c; c++)
            if (*c == '\n' || *c == '\\' || *c == '\'')
                sbuf_printf(&b, "\\%c", *c == '\n' ? 'n' : *c);
            else
                sbuf_append(&b, c, 1);
        sbuf_append(&b, "'", 1);
    } else if (api__q_number_kind(t) == QN_INTEGER) {
        /* Past int64, influxd reads an unsigned literal (past uint64: bad_number). */
        errno = 0;
        long long v = strtoll(t->text, NULL, 10);
        if (errno != ERANGE)
            sbuf_printf(&b, "%lld", v);
        else
            sbuf_printf(&b, "%llu", strtoull(t->text, NULL, 10));
    } else if (api__q_number_kind(t) == QN_NUMBER) {
        sbuf_printf(&b, "%.3f", strtod(t->text, NULL));
    } else {
        static const struct {
            const char *unit;
            int64_t ns;
        } units[] = {
            {"w", 604800000000000}, {"d", 86400000000000}, {"h", 3600000000000}, {"m", 60000000000},
            {"s", 1000000000},      {"ms", 1000000},       {"u", 1000},          {"ns", 1}};
        int64_t ns;
        if (api__iq_time_duration(r, t, &ns)) {
            sbuf_deinit(&b);
            return -1;
        }
        size_t k = 0;
        while (ns != 0 && ns % units[k].ns != 0)
            k++;
        sbuf_printf(&b, "%lld%s", (long long)(ns == 0 ? 0 : ns / units[k].ns),
                    ns == 0 ? "s" : units[k].unit);
    }
    condition_error(q, s, &b, 1, "a literal as a condition");
    return 0;
}

/* Reads on after a comparison's operator op that vigild does not answer: its right side and
 * whatever follows (a regex after =~ and !~). Returns 0 or 1 (op is no operator: read to the
 * end), or -1 (parse error answered). */
static int skim_rhs(api_request_t *r, qscan_t *s, const qtoken_t *op)
{
    const char *re;
    qtoken_t t;
    if (!api__iq_is_binary_op(op)) {
        api__iq_skip(s);
        return 1;
    }
    if (api__iq_q_op(op, "=~") || api__iq_q_op(op, "!~")) {
        if (api__iq_regex(r, s, &re))
            return -1;
    } else {
        api__qs_next(s, &t);
        if (api__iq_skim_operand(r, s, &t, 1))
            return -1;
    }
    return api__iq_skim_tail(r, s, 1) ? -1 : 0;
}

/* What read_comparison read, for read_condition's OR: a regex on the device tag, the literal
 * true or false, = 'id' or != '' on the device tag, or anything else. */
enum cmp_kind { CK_RE, CK_TRUE, CK_FALSE, CK_DEVICE, CK_TIME, CK_OTHER };

/* Whether t is a literal a comparison of literals reads: a string, a number, a duration (1h;
 * also one influxd refuses, 1e3: its 400 when read), true or false. */
static int plain_literal(const qtoken_t *t)
{
    return t->kind == QT_STRING || api__iq_is_bool(t) || t->kind == QT_NUMBER;
}

/* lhs against rhs, two integers' texts (-1, 0 or 1): digits up to 2^64 - 1 (influxd's unsigned
 * literal past int64: compared exactly, not saturated), or a bound parameter's "-5". Into *eq
 * whether = holds as influxd reduces it: a negative integer against an unsigned one is cast
 * to uint64 for = and != (-5 = 18446744073709551611), not for the order. */
static int integer_cmp(const char *lhs, const char *rhs, int *eq)
{
    int neg_a = lhs[0] == '-', neg_b = rhs[0] == '-';
    if (neg_a != neg_b) {
        unsigned long long a = strtoull(lhs, NULL, 10), b = strtoull(rhs, NULL, 10);
        *eq = (neg_a ? b : a) > (unsigned long long)INT64_MAX && a == b; /* strtoull wraps "-5" */
        return neg_a ? -1 : 1;
    }
    int c;
    if (neg_a) {
        long long a = strtoll(lhs, NULL, 10), b = strtoll(rhs, NULL, 10);
        c = (a > b) - (a < b);
    } else {
        unsigned long long a = strtoull(lhs, NULL, 10), b = strtoull(rhs, NULL, 10);
        c = (a > b) - (a < b);
    }
    *eq = c == 0;
    return c;
}

/* Reads a comparison of two literals (lhs, read; s before its operator): influxd reduces it
 * before it reads a point, so 'x' = 'x', 1 < 2.5, true != false keep every point and a false
 * one none. Numbers compare as numbers (integers as integers); strings and booleans only by =
 * and != (ordered, or of two kinds: false, as influxd answers them). Literal math (1 + 1 = 2,
 * 'x' =~ /x/) was tried before (api__iq_math_comparison); anything else after a literal
 * ('x' = device, 'x' =~ /x/ = true) is vigild's statement error, read on.
 * Returns 0, or -1 (parse error answered). */
static int literal_comparison(api_request_t *r, qscan_t *s, select_t *q, const qtoken_t *lhs,
                              enum cmp_kind *kind)
{
    static const char *const ops[] = {"=", "!=", "<", "<=", ">", ">="};
    qscan_t at = *s;
    qtoken_t op, rhs, next;
    api__qs_next(s, &op);
    size_t k = 0;
    while (k < sizeof ops / sizeof ops[0] && !api__iq_q_op(&op, ops[k]))
        k++;
    if (k < sizeof ops / sizeof ops[0] && plain_literal(lhs)) {
        api__qs_next(s, &rhs);
        if ((api__iq_q_op(&rhs, "-") || api__iq_q_op(&rhs, "+")) && api__iq_bad_number(r, lhs))
            return -1; /* influxd reads the left literal before the sign: its error first */
        if (api__iq_signed_literal(r, s, &rhs) < 0)
            return -1;
        qscan_t after = *s;
        api__qs_next(&after, &next);
        if (rhs.form == QF_REGEX &&
            (api__iq_bad_number(r, lhs) || api__iq_bound_regex_value(r, s, &rhs)))
            return -1;
        if (rhs.form == QF_REGEX &&
            (!api__iq_is_binary_op(&next) || api__q_is(&next, "AND") || api__q_is(&next, "OR"))) {
            *kind = CK_FALSE; /* 1 = $r of a bound regex: unreduced, no point meets it */
            q->device_none = 1;
            return 0;
        }
        if (plain_literal(&rhs) &&
            (!api__iq_is_binary_op(&next) || api__q_is(&next, "AND") || api__q_is(&next, "OR"))) {
            if (api__iq_bad_number(r, lhs) ||
                api__iq_bad_number(r, &rhs)) /* the left one first, as influxd */
                return -1;
            int dur_a = lhs->kind == QT_NUMBER && api__q_number_kind(lhs) == QN_DURATION;
            int dur_b = rhs.kind == QT_NUMBER && api__q_number_kind(&rhs) == QN_DURATION;
            int64_t ns_a = 0, ns_b = 0;
            if (dur_a)
                (void)api__q_parse_duration(lhs->text, &ns_a); /* read above */
            if (dur_b)
                (void)api__q_parse_duration(rhs.text, &ns_b);
            int c = 0, kinds = 1, eq = -1; /* c: lhs against rhs, -1, 0 or 1; eq: = holds */
            if (dur_a || dur_b) {
                /* Two durations compare by value (1h = 60m); a duration and anything else,
                 * even an integer (1u = 1000), stay unreduced: no point meets them. */
                if (dur_a && dur_b)
                    c = (ns_a > ns_b) - (ns_a < ns_b);
                else
                    kinds = 0;
            } else if (lhs->kind == QT_NUMBER && rhs.kind == QT_NUMBER) {
                if (api__q_number_kind(lhs) == QN_INTEGER &&
                    api__q_number_kind(&rhs) == QN_INTEGER) {
                    c = integer_cmp(lhs->text, rhs.text, &eq);
                } else {
                    double a = strtod(lhs->text, NULL), b = strtod(rhs.text, NULL);
                    c = (a > b) - (a < b);
                }
            } else if (lhs->kind == QT_STRING && rhs.kind == QT_STRING) {
                c = strcmp(lhs->value, rhs.value) != 0;
                kinds = 2; /* = and != only */
            } else if (api__iq_is_bool(lhs) && api__iq_is_bool(&rhs)) {
                c = strcmp(lhs->text, rhs.text) != 0;
                kinds = 2;
            } else {
                kinds = 0; /* of two kinds */
            }
            int met = 0;
            if (eq < 0)
                eq = c == 0;
            if (kinds == 1)
                met = k == 0   ? eq
                      : k == 1 ? !eq
                      : k == 2 ? c < 0
                      : k == 3 ? c <= 0
                      : k == 4 ? c > 0
                               : c >= 0;
            else if (kinds == 2)
                met = k == 0 ? c == 0 : k == 1 ? c != 0 : 0;
            *kind = met ? CK_TRUE : CK_FALSE;
            if (!met)
                q->device_none = 1; /* no point meets it: influxd answers no series */
            return 0;
        }
    }
    if ((api__iq_q_op(&op, "=~") || api__iq_q_op(&op, "!~")) &&
        (lhs->kind == QT_NUMBER || api__iq_is_bool(lhs))) {
        /* 1h =~ /x/, 1 !~ /x/, true =~ /x/: influxd leaves a regex against a literal other
         * than a string unreduced, so no point meets it (its regex read for its errors) */
        const char *re;
        if (api__iq_bad_number(r, lhs) || api__iq_regex(r, s, &re))
            return -1;
        qscan_t after = *s;
        api__qs_next(&after, &next);
        if (!api__iq_is_binary_op(&next) || api__q_is(&next, "AND") || api__q_is(&next, "OR")) {
            *kind = CK_FALSE;
            q->device_none = 1;
            return 0;
        }
    }
    *s = at;
    api__iq_mark_unsupported(q, s, "this condition: ", lhs->text); /* read on */
    return api__iq_skim_operand(r, s, (qtoken_t *)lhs, 1) || api__iq_skim_tail(r, s, 1) ? -1 : 0;
}

/* Reads a comparison on the device tag after its operator op (s after op): = 'id', != '' or
 * =~ /re/ into q; *kind says which. Returns as read_comparison. */
static int device_comparison(api_request_t *r, qscan_t *s, select_t *q, const qtoken_t *op,
                             enum cmp_kind *kind)
{
    qtoken_t v;
    /* The conditions on the device tag are ANDed: = 'id' and =~ /re/ each narrow the devices
     * (select_run checks an id against the regexes), != '' keeps every one (device_any), and
     * two that no device meets (= '', two ids) leave none, as influxd answers them. Two
     * regexes: both met, or with OR between them (read_condition) either; their alternatives
     * count against the statement's one budget (api__iq_regex). */
    if (api__iq_q_op(op, "=~")) {
        /* Grafana's template variables: /^pump-7$/, /^(pump-7|pump-8)$/. */
        const char *re;
        if (api__iq_regex(r, s, &re))
            return -1;
        if (q->device_re2 != NULL) {
            api__iq_unsupported(q, s, "more than two regular expressions on the device tag", NULL);
            return 1;
        }
        *(q->device_re != NULL ? &q->device_re2 : &q->device_re) = re;
        *kind = CK_RE;
        return 0;
    }
    int ne = api__iq_q_op(op, "!=");
    if (!(api__iq_q_op(op, "=") || ne)) {
        api__iq_mark_unsupported(q, s, "this condition on the device tag (only = 'id', != '')",
                                 NULL);
        return skim_rhs(r, s, op);
    }
    api__qs_next(s, &v);
    if (api__q_bad_operand(&v))
        return api__q_operand_error(r, s, &v, 1);
    if (v.form == QF_REGEX) { /* device = $r of a bound regex: influxd meets no point */
        if (api__iq_bound_regex_value(r, s, &v))
            return -1;
        *kind = CK_FALSE;
        q->device_none = 1;
        return 0;
    }
    if (v.value == NULL || (ne && v.value[0] != '\0')) {
        api__iq_mark_unsupported(q, s, "this condition on the device tag (only = 'id', != '')",
                                 NULL);
        /* read on */
        return api__iq_skim_operand(r, s, &v, 1) || api__iq_skim_tail(r, s, 1) ? -1 : 0;
    }
    *kind = CK_DEVICE;
    if (ne)
        q->device_any = 1; /* every device has a name */
    else if (v.value[0] == '\0' || (q->device[0] != '\0' && strcmp(q->device, v.value) != 0))
        q->device_none = 1; /* no device has the empty name, nor two names */
    else
        q->device = v.value;
    return 0;
}

/* Whether the ::type between cast and end (none when they are one place) reads a tag: none, or
 * ::tag. influxd reads "device"::field (or ::string ...) as a field no point has. */
static int cast_is_tag(const qscan_t *cast, const qscan_t *end)
{
    if (cast->p == end->p)
        return 1;
    qscan_t at = *cast;
    qtoken_t c;
    api__qs_next(&at, &c); /* "::" */
    api__qs_next(&at, &c);
    return api__q_is(&c, "TAG");
}

/* After a '(' (s after it): whether a literal alone in parentheses is compared next, "(5.0) =
 * 5", as influxd reduces it (its ParenExpr of a literal). If so, makes *t the literal, leaves s
 * after the ')' and returns 1; else 0, both as they were; -1 when answered (a signed literal's
 * error, api__iq_signed_literal's, which influxd's parser answers wherever it is). */
static int paren_literal(api_request_t *r, qscan_t *s, qtoken_t *t)
{
    static const char *const ops[] = {"=", "!=", "<", "<=", ">", ">="};
    qscan_t at = *s;
    qtoken_t lit, close, op;
    api__qs_next(&at, &lit);
    if (api__iq_signed_literal(r, &at, &lit) < 0)
        return -1;
    if (!plain_literal(&lit))
        return 0;
    api__qs_next(&at, &close);
    if (!api__iq_q_op(&close, ")"))
        return 0;
    qscan_t after = at;
    api__qs_next(&after, &op);
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (api__iq_q_op(&op, ops[k])) {
            *t = lit;
            *s = at;
            return 1;
        }
    return 0;
}

/* A bound regex t (QF_REGEX, read from s) that begins a comparison: alone, influxd's statement
 * error naming it as Go prints a RegexLiteral (/x/, its '/' as \/); "$r = device" or "!=":
 * no point meets it, as influxd answers. Returns 0 (read), 1 (neither: s as it was, for the
 * caller's statement error), or -1 (answered: its pattern's 400). */
static int bound_regex_lhs(api_request_t *r, qscan_t *s, select_t *q, const qtoken_t *t,
                           enum cmp_kind *kind)
{
    if (api__iq_bound_regex_value(r, s, t))
        return -1;
    qscan_t at = *s;
    qtoken_t op, v, next;
    api__qs_next(&at, &op);
    if (op.kind != QT_OTHER || api__iq_q_op(&op, ")")) {
        sbuf_t b;
        sbuf_init(&b);
        sbuf_printf(&b, "invalid condition expression: /");
        for (const char *c = t->text + 1; *c; c++)
            sbuf_append(&b, *c == '/' ? "\\/" : c, *c == '/' ? 2 : 1);
        sbuf_append(&b, "/", 1);
        condition_error(q, s, &b, 1, "a bound regex as a condition");
        return 0;
    }
    if (!api__iq_is_binary_op(&op) || api__q_is(&op, "AND") || api__q_is(&op, "OR"))
        return 1;
    /* $r = temp, $r =~ /x/, $r + 1 = 2, $r = device: influxd meets no point ($r = time: its
     * statement error, and no false an OR may drop); read to the next AND or OR for the parse
     * errors */
    int first = 1, refused = 0;
    for (;;) {
        const char *re;
        at = *s;
        api__qs_next(s, &op);
        if (!api__iq_is_binary_op(&op) || api__q_is(&op, "AND") || api__q_is(&op, "OR")) {
            *s = at;
            break;
        }
        if (api__iq_q_op(&op, "=~") || api__iq_q_op(&op, "!~")) {
            if (api__iq_regex(r, s, &re))
                return -1;
            first = 0;
            continue;
        }
        api__qs_next(s, &v);
        qscan_t after = *s;
        api__qs_next(&after, &next);
        if (first && v.kind == QT_IDENT && strcasecmp(v.text, "time") == 0 &&
            (!api__iq_is_binary_op(&next) || api__q_is(&next, "AND") || api__q_is(&next, "OR"))) {
            api__iq_mark_influxd_error(
                q, s, "invalid operation: time and *influxql.RegexLiteral are not compatible");
            refused = 1;
        }
        first = 0;
        if (api__iq_skim_operand(r, s, &v, 1))
            return -1;
    }
    *kind = refused ? CK_OTHER : CK_FALSE;
    q->device_none = 1;
    return 0;
}

/* Literal math is not tried behind more than this many '(' in a row (what it would be is
 * vigild's statement error, as before literal math): a condition in N parentheses is read
 * as a condition N times, one inside the other, and each try of math reads on to where it
 * fails, so without a bound 1,000 of them ("((...(x = 1)...))", 2 KB) cost 500,000 token
 * reads (44 ms here, against 1.5 ms); with it, each try reads at most this many '(' more. */
#define MATH_OPEN_MAX 16

/* How many '(' follow in a row from s (MATH_OPEN_MAX at most). */
static int open_run(const qscan_t *s)
{
    qscan_t at = *s;
    qtoken_t t;
    int n = 0;
    do
        api__qs_next(&at, &t);
    while (api__iq_q_op(&t, "(") && ++n < MATH_OPEN_MAX);
    return n;
}

/* Reads one comparison (or a parenthesised condition): time against a time, or the device tag
 * = 'id', != '' or =~ /re/; *kind says which. Returns 0, 1 (unsupported: read to the end), or
 * -1 (parse error). */
static int read_comparison(api_request_t *r, qscan_t *s, select_t *q, const qrun_t *run,
                           enum cmp_kind *kind)
{
    qtoken_t lhs, op;
    *kind = CK_OTHER;
    const qscan_t lhs_at = *s;
    api__qs_next(s, &lhs);
    if ((api__iq_q_op(&lhs, "(") || api__iq_q_op(&lhs, "-") || api__iq_q_op(&lhs, "+") ||
         plain_literal(&lhs)) &&
        open_run(s) < MATH_OPEN_MAX) { /* literal math first: 1 + 1 = 2, (5.0) + 1 = 6 */
        qscan_t at = lhs_at;
        int met, rc = api__iq_math_comparison(r, &at, &met);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            *s = at;
            *kind = met ? CK_TRUE : CK_FALSE;
            if (!met)
                q->device_none = 1; /* no point meets it: influxd answers no series */
            return 0;
        }
    }
    int lit = api__iq_q_op(&lhs, "(") ? paren_literal(r, s, &lhs) : 0;
    if (lit)
        return lit < 0 ? -1 : literal_comparison(r, s, q, &lhs, kind); /* (5.0) = 5 */
    if (api__iq_q_op(&lhs, "(")) {
        if (api__q_nest(r, s, &lhs))
            return -1;
        int rc = api__iq_read_condition(r, s, q, run);
        s->depth--;
        if (rc)
            return rc;
        api__qs_next(s, &op);
        if (!api__iq_q_op(&op, ")")) {
            api__q_parse_error(r, &op, ")");
            return -1;
        }
        return 0;
    }
    if (api__q_bad_operand(&lhs))
        return api__q_operand_error(r, s, &lhs, 1);
    if (api__iq_signed_literal(r, s, &lhs) < 0)
        return -1;
    if (lhs.kind == QT_STRING || lhs.kind == QT_NUMBER || api__iq_is_bool(&lhs)) {
        /* A literal alone ("WHERE '(' ..."): influxd reads it as the whole condition, then
         * judges what follows (read on for its errors): true keeps every point, false none,
         * another literal is its statement error. */
        qscan_t at = *s;
        api__qs_next(s, &op);
        *s = at;
        if (op.kind != QT_OTHER || api__iq_q_op(&op, ")")) {
            *kind = api__q_is(&lhs, "TRUE")    ? CK_TRUE
                    : api__q_is(&lhs, "FALSE") ? CK_FALSE
                                               : CK_OTHER;
            return lone_literal(r, s, q, &lhs);
        }
        return literal_comparison(r, s, q, &lhs, kind);
    }
    if (lhs.form == QF_REGEX) {
        int rc = bound_regex_lhs(r, s, q, &lhs, kind);
        if (rc <= 0)
            return rc;
    }
    if (api__iq_q_op(&lhs, "-") || api__iq_q_op(&lhs, "+") ||
        (lhs.kind == QT_OTHER && lhs.text[0] == '$')) {
        api__iq_mark_unsupported(q, s, "this condition: ", lhs.text); /* "-temp > 5": read on */
        return api__iq_skim_operand(r, s, &lhs, 1) || api__iq_skim_tail(r, s, 1) ? -1 : 0;
    }
    if (lhs.kind != QT_IDENT) {
        api__q_parse_error(r, &lhs, "identifier");
        return -1;
    }
    qscan_t cast_at = *s;
    if (api__iq_skip_cast(r, s))
        return -1;
    qscan_t op_at = *s;
    api__qs_next(s, &op);
    if (op_at.p == cast_at.p && *op_at.p == '(' && api__iq_regex_bad_next(r, s)) /* f(/x/) */
        return -1;
    /* a name alone ("WHERE device =~ /a/ OR device"), or cast ("f::tag(1)": no call after a
     * cast to influxd, whose expression ends there): read on */
    if (op.kind != QT_OTHER || api__iq_q_op(&op, ")") ||
        (api__iq_q_op(&op, "(") && op_at.p != cast_at.p)) {
        *s = op_at;
        return lone_name(s, q, &lhs, &cast_at, &op_at);
    }
    if (strcasecmp(lhs.text, "time") == 0) {
        static const char *const ops[] = {">=", ">", "<=", "<", "="};
        int k = 0;
        while (k < 5 && !api__iq_q_op(&op, ops[k]))
            k++;
        if (k == 5) {
            api__iq_mark_unsupported(q, s, "this comparison of time: ", op.text);
            return skim_rhs(r, s, &op);
        }
        /* A time api__iq_read_time refuses (influxd's statement error, or vigild's) is no CK_TIME
         * that an OR of AND groups could leave out: what it marks may be hidden behind a reason
         * marked before (the level's "OR in WHERE", which that reduction clears), so it is
         * looked for with none marked, and the reason marked first is kept. */
        const char *held = q->unsupported;
        int held_influxd = q->influxd_error;
        int64_t ns;
        q->unsupported = NULL;
        int rc = api__iq_read_time(r, s, q, run, &ns);
        int refused = q->unsupported != NULL;
        if (held != NULL) {
            q->unsupported = held;
            q->influxd_error = held_influxd;
        }
        if (rc)
            return rc;
        *kind = refused ? CK_OTHER : CK_TIME;
        /* Kept as an inclusive range, as influxd keeps it (time < t is time <= t - 1ns). */
        ns = api__iq_time_add(ns, 0);
        if ((k <= 1 || k == 4) && api__iq_time_add(ns, k == 1) > q->lo_ns)
            q->lo_ns = api__iq_time_add(ns, k == 1);
        if ((k == 2 || k == 3 || k == 4) && api__iq_time_add(ns, -(k == 3)) < q->hi_ns)
            q->hi_ns = api__iq_time_add(ns, -(k == 3));
        return 0;
    }
    if (strcmp(lhs.text, r->srv->device_tag) != 0) {
        api__iq_mark_unsupported(
            q, s, "conditions on a field or on a tag other than the device tag: ", lhs.text);
        if (*op_at.p == '(' && op_at.p == cast_at.p) { /* f(1, 2) = 1: the call read as one */
            *s = op_at;
            return api__iq_skim_operand(r, s, &lhs, 1) || api__iq_skim_tail(r, s, 1) ? -1 : 0;
        }
        return skim_rhs(r, s, &op);
    }
    /* device::field = 'x' (or ::string, ::float ...): to influxd a field no point has, so no
     * point meets the comparison (read whole first, for its errors) */
    const select_t before = *q;
    int rc = device_comparison(r, s, q, &op, kind);
    if (rc == 0 && q->unsupported == before.unsupported && !cast_is_tag(&cast_at, &op_at)) {
        *q = before;
        q->device_none = 1;
        *kind = CK_FALSE;
    }
    return rc;
}

/* What the device tag's conditions set in q: what a group of a level that drops out (false
 * AND ... OR ...) undoes. */
struct dev_state {
    const char *device, *re, *re2;
    int none, any, re_or;
};

static void dev_save(struct dev_state *d, const select_t *q)
{
    d->device = q->device;
    d->re = q->device_re;
    d->re2 = q->device_re2;
    d->none = q->device_none;
    d->any = q->device_any;
    d->re_or = q->device_re_or;
}

static void dev_restore(select_t *q, const struct dev_state *d)
{
    q->device = d->device;
    q->device_re = d->re;
    q->device_re2 = d->re2;
    q->device_none = d->none;
    q->device_any = d->any;
    q->device_re_or = d->re_or;
}

/* The groups of a level with OR: comparisons joined by AND between the ORs (AND binds first, as
 * in influxd's parser). A group with a false drops out (what it set on the device tag undone),
 * one of trues alone is true, one with the device tag's conditions is kept; time comparisons
 * are no part of a group (influxd takes them out of the condition wherever they stand: a group
 * of them alone drops out of the OR) and stay; anything else is "other". */
struct or_groups {
    struct dev_state level, group; /* at the level's start, at the group's */
    int g_false, g_true, g_kept, g_other;
    int n_false, n_true, n_kept, other;
};

/* Counts comparison kind into the group; at its end (last), judges the group. */
static void group_add(struct or_groups *g, select_t *q, enum cmp_kind kind, int last)
{
    g->g_false |= kind == CK_FALSE;
    g->g_true |= kind == CK_TRUE;
    g->g_kept |= kind == CK_RE || kind == CK_DEVICE;
    g->g_other |= kind == CK_OTHER;
    if (!last)
        return;
    if (g->g_other)
        g->other = 1;
    else if (g->g_false)
        g->n_false++, dev_restore(q, &g->group);
    else if (g->g_kept)
        g->n_kept++;
    else if (g->g_true)
        g->n_true++;
    g->g_false = g->g_true = g->g_kept = g->g_other = 0;
    dev_save(&g->group, q);
}

/* Reads comparisons joined by AND, by OR, or by both (AND first: or_groups). An OR of the
 * literals true and false, = 'id' / != '' and regexes on the device tag is reduced as influxd
 * reduces it: true met makes the level every point (what its comparisons set is undone),
 * false drops out; what is left may be one comparison, or two regexes (either met: a third is
 * unsupported). Where AND and OR mix, what is left may be one group. Any other OR is
 * unsupported, read on for influxd's parse errors. */
int api__iq_read_condition(api_request_t *r, qscan_t *s, select_t *q, const qrun_t *run)
{
    static const char or_msg[] = "OR in WHERE";
    const select_t start = *q; /* true OR ...: the level reads as if it were not there */
    int any_and = 0, any_or = 0, n_true = 0, n_re = 0, n_kept = 0, other = 0;
    struct or_groups g = {0};
    dev_save(&g.level, q);
    g.group = g.level;
    for (;;) {
        enum cmp_kind kind;
        int none = q->device_none;
        int rc = read_comparison(r, s, q, run, &kind);
        if (rc)
            return rc;
        qscan_t at = *s;
        qtoken_t t;
        api__qs_next(s, &t);
        if (api__iq_is_binary_op(&t) && !api__q_is(&t, "AND") && !api__q_is(&t, "OR")) {
            /* device = 'x' * 2, time > 0 * 5, (device = 'x') = true: influxd reads math or
             * another comparison on; vigild's statement error, read on for its parse errors */
            api__iq_mark_unsupported(q, s, "math or a comparison after a comparison: ", t.text);
            *s = at;
            if (api__iq_skim_tail(r, s, 1))
                return -1;
            kind = CK_OTHER;
            at = *s;
            api__qs_next(s, &t);
        }
        int is_or = api__q_is(&t, "OR"), is_and = api__q_is(&t, "AND");
        if (kind == CK_FALSE && (any_or || is_or))
            q->device_none = none; /* false OR x is x */
        n_true += kind == CK_TRUE;
        n_re += kind == CK_RE;
        n_kept += kind != CK_FALSE && kind != CK_TRUE;
        other |= kind == CK_OTHER || kind == CK_TIME;
        if (!is_and && (any_or || is_or))
            group_add(&g, q, kind, 1);
        else if (is_and)
            group_add(&g, q, kind, 0);
        if (is_or && (n_kept > n_re || other) && q->unsupported == NULL)
            q->unsupported = or_msg; /* until a false or true leaves a reduction vigild reads */
        if (!is_or && !is_and) {
            *s = at;
            if (!any_or)
                return 0;
            if (any_and && !g.other && g.n_kept <= 1) { /* A AND B OR C: AND first */
                if (q->unsupported == or_msg && start.unsupported != or_msg)
                    q->unsupported = NULL;
                if (g.n_true > 0 || (g.n_kept == 0 && g.n_false == 0))
                    dev_restore(q, &g.level); /* true, or times alone: every device */
                else if (g.n_kept == 0)
                    q->device_none = 1; /* false */
                return 0;
            }
            if (other || any_and || (n_true == 0 && n_kept > 1 && n_kept > n_re)) {
                api__iq_mark_unsupported(q, s, or_msg, NULL); /* the rest is read on */
                return 0;
            }
            if (q->unsupported == or_msg && start.unsupported != or_msg)
                q->unsupported = NULL; /* this level's own: an earlier OR's stays */
            if (n_true > 0)
                *q = start;
            else if (n_kept == 0)
                q->device_none = 1; /* false OR false */
            else if (n_kept == 2)
                q->device_re_or = 1; /* between the two: a third regex is unsupported */
            return 0;
        }
        any_and |= is_and;
        any_or |= is_or;
        if (any_or && any_and) /* read on: the level's reduction is not made */
            api__iq_mark_unsupported(q, s, or_msg, NULL);
    }
}

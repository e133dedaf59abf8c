/* api/influxql_skim.c: reading on past what a SELECT of /query asks and vigild does not answer
 * (influxql_select_read.c, influxql_select_clauses.c and influxql_where.c read the rest): the
 * expressions influxd would parse (a signed operand, a call, an operand and what follows it, a
 * condition) are read for influxd 1.6.7's parse errors only (400), keeping nothing; and what
 * is not read so is skipped to the statement's end (api__iq_skip; api__iq_skip_params first,
 * for a subquery's or SELECT INTO's unbound parameters).
 *
 * Any thread; no state. */
#include "influxql_select.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* After a unary sign (time(10s, -x), fill(-x); read from s): answers influxd's parse error for
 * t when it is a bad operand and returns -1; else 0. The end is placed right after the sign, as
 * in a condition. */
int api__iq_signed_operand(api_request_t *r, const qscan_t *s, const qtoken_t *t)
{
    if (!api__q_bad_operand(t) && !api__iq_q_op(t, "-") && !api__iq_q_op(t, "+"))
        return 0; /* a second sign (time(- -10s)) is influxd's parse error too */
    qtoken_t at = *t;
    if (at.kind == QT_EOF && s->end_op)
        at.col--;
    api__q_parse_error(r, &at, "identifier, number, duration, (");
    return -1;
}

/* ---- reading on past what vigild does not answer ------------------------------------------ */

void api__iq_skip(qscan_t *s)
{
    qtoken_t t;
    for (;;) {
        qscan_t at = *s;
        api__qs_next(s, &t);
        if (t.kind == QT_EOF || t.kind == QT_SEMI) {
            *s = at; /* the caller's end check reads it */
            return;
        }
    }
}

/* Reads one source at s with api__iq_from; *why as api__iq_skip_params says. Returns 0, or -1
 * (parse error or out of memory, answered). */
static int skim_source(api_request_t *r, qscan_t *s, const char **why)
{
    qtoken_t t;
    const char *next = NULL;
    if (api__iq_from(r, s, &t, &next))
        return -1;
    if (api__iq_from_stops(next) > api__iq_from_stops(*why))
        *why = next; /* a lookup that ends the run, a database's first */
    return 0;
}

/* Reads the list of sources after a FROM (s: after it, or after a subquery's ')' and ','),
 * each with skim_source, up to a subquery's '(' (not read: its statement is read on, its FROM
 * too). Returns 0, 1 (stopped at a '('), or -1 (answered). */
static int skim_sources(api_request_t *r, qscan_t *s, const char **why)
{
    for (;;) {
        qscan_t at = *s;
        qtoken_t t;
        api__qs_next(&at, &t);
        if (api__iq_q_op(&t, "("))
            return 1;
        if (skim_source(r, s, why))
            return -1;
        at = *s;
        api__qs_next(&at, &t);
        if (!api__iq_q_op(&t, ","))
            return 0;
        *s = at;
    }
}

/* Whether SELECT INTO's target at s is names and dots alone up to FROM ([db.][rp.]name, which
 * api__iq_from reads), not a :MEASUREMENT back-reference or anything api__iq_from would refuse
 * where influxd's parseTarget does not. */
static int plain_target(const qscan_t *s)
{
    qscan_t at = *s;
    qtoken_t t;
    for (int n = 0;; n++) {
        api__qs_next(&at, &t);
        if (api__q_is(&t, "FROM"))
            return n > 0;
        if (t.kind != QT_IDENT && !api__iq_q_op(&t, "."))
            return 0;
    }
}

/* INTO's target at s when it is [db.][rp.]:MEASUREMENT (names and dots, then the
 * back-reference): looks its database and policy up as a source's (api__iq_prefix), as influxd
 * looks every target up. Another target is left (0). Returns 0, or -1 (answered). */
static int skim_measurement_target(api_request_t *r, const qscan_t *s, const char **why)
{
    qscan_t at = *s;
    qtoken_t t;
    const char *seg[3] = {"", "", ""};
    int n = 0; /* segments begun: a name, or a '.' after which the next begins */
    for (int name = 0;;) {
        api__qs_next(&at, &t);
        if (t.kind == QT_IDENT && !name && n < 3) {
            seg[n] = t.text;
            name = 1;
        } else if (api__iq_q_op(&t, ".") && n < 3) {
            n++;
            name = 0;
        } else {
            break;
        }
    }
    if (n < 1 || n > 2 || !api__iq_q_op(&t, ":"))
        return 0;
    api__qs_next(&at, &t);
    if (!api__q_is(&t, "MEASUREMENT"))
        return 0;
    const char *f = NULL;
    if (api__iq_prefix(r, &at, n == 2 ? seg[0] : "", n == 2 ? seg[1] : seg[0], n, &f))
        return -1;
    if (api__iq_from_stops(f) > api__iq_from_stops(*why))
        *why = f; /* as skim_source */
    return 0;
}

/* ---- a subquery's statement errors -------------------------------------------------------
 * influxd 1.6.7 compiles each subquery (validateFields) before it looks any policy up, after
 * its databases: a subquery without a function call with fill(none) or fill(linear), or with
 * GROUP BY time() (a subquery's fill defaults to none there; another fill: "GROUP BY requires at
 * least one aggregate function"), is its error, which ends the run. The levels are the
 * subqueries' SELECTs seen while skimming (the outer statement's fields vigild read itself). */
#define SUB_MAX 16
enum { SUB_FILL_DEFAULT, SUB_FILL_NONE, SUB_FILL_LINEAR, SUB_FILL_OTHER };
static const char *const sub_errors[] = {"fill(none) must be used with a function",
                                         "fill(linear) must be used with a function",
                                         "GROUP BY requires at least one aggregate function"};

struct sub_level {
    int depth;  /* of parentheses at its SELECT */
    int fields; /* still in its field list */
    int calls, fill, gtime;
    int rank;   /* of its last clause after FROM (WHERE 1 ... tz() 9, influxd's order) */
    int unsure; /* a clause out of order or repeated (influxd's parse error), fill(none, 1), ORDER
                 * BY time DESC (influxd's ordering error first): no error of its own, the refusal
                 * as before */
};

struct subs {
    int n;
    struct sub_level lv[SUB_MAX];
    const char *err; /* the first subquery's error (one of sub_errors); NULL: none */
};

int api__iq_sub_error_is(const char *why)
{
    for (size_t i = 0; i < sizeof sub_errors / sizeof sub_errors[0]; i++)
        if (why == sub_errors[i])
            return 1;
    return 0;
}

/* Ends the innermost level (its ')' read): its error, if the first. */
static void sub_close(struct subs *u)
{
    int k = --u->n;
    if (k >= SUB_MAX || u->err != NULL || u->lv[k].calls > 0 || u->lv[k].unsure)
        return;
    if (u->lv[k].fill == SUB_FILL_NONE)
        u->err = sub_errors[0];
    else if (u->lv[k].fill == SUB_FILL_LINEAR)
        u->err = sub_errors[1];
    else if (u->lv[k].gtime)
        u->err = sub_errors[u->lv[k].fill == SUB_FILL_DEFAULT ? 0 : 2];
}

/* Takes token t (at: after it) read at parenthesis depth depth (before t changes it). Returns
 * 0, or -1 for a fill() whose argument is a name other than null, none, previous or linear
 * (fill(NONE), FILL(Linear)): influxd's parse error (a call's name is any case, fill's argument
 * not: parseFill compares the argument's text). */
static int sub_token(struct subs *u, const qscan_t *at, const qtoken_t *t, int depth)
{
    if (api__q_is(t, "SELECT")) {
        if (u->n < SUB_MAX)
            u->lv[u->n] = (struct sub_level){.depth = depth, .fields = 1};
        u->n++;
        return 0;
    }
    if (u->n == 0 || u->n > SUB_MAX || u->lv[u->n - 1].depth > depth)
        return 0;
    struct sub_level *lv = &u->lv[u->n - 1];
    qscan_t n = *at;
    qtoken_t next;
    int call = t->kind == QT_IDENT && (api__qs_next(&n, &next), api__iq_q_op(&next, "("));
    if (lv->fields && call) {
        lv->calls++; /* (mean(x)) too: a call at any depth of the fields */
    } else if (lv->depth != depth) {
        /* inside a call or a condition's parentheses */
    } else if (api__q_is(t, "FROM")) {
        lv->fields = 0;
        return 0;
    } else if (api__iq_q_op(t, ")")) {
        sub_close(u);
    } else if (call) {
        if (strcasecmp(t->text, "fill") == 0) {
            api__qs_next(&n, &next);
            if (next.kind == QT_IDENT && strcmp(next.text, "null") != 0 &&
                strcmp(next.text, "none") != 0 && strcmp(next.text, "previous") != 0 &&
                strcmp(next.text, "linear") != 0)
                return -1;
            qscan_t after = n;
            qtoken_t close;
            api__qs_next(&after, &close);
            lv->unsure |= !api__iq_q_op(&close, ")");
            lv->fill = next.kind == QT_IDENT && strcmp(next.text, "none") == 0     ? SUB_FILL_NONE
                       : next.kind == QT_IDENT && strcmp(next.text, "linear") == 0 ? SUB_FILL_LINEAR
                                                                                   : SUB_FILL_OTHER;
        } else if (strcasecmp(t->text, "time") == 0) {
            lv->gtime = 1;
        }
    }
    static const char *const clauses[] = {"WHERE",  "GROUP",  "fill",    "ORDER", "LIMIT",
                                           "OFFSET", "SLIMIT", "SOFFSET", "tz"};
    for (int k = 0; !lv->fields && lv->depth == depth && k < 9; k++)
        if (k == 2 || k == 8 ? call && strcasecmp(t->text, clauses[k]) == 0
                             : api__q_is(t, clauses[k])) {
            lv->unsure |= k + 1 <= lv->rank;
            lv->rank = k + 1;
        }
    return 0;
}

/* ORDER BY time DESC read (desc) at depth depth: a subquery's, influxd's ordering error comes
 * before its fill's (sub_token's unsure). */
static void sub_order(struct subs *u, int depth, int desc)
{
    if (desc && u->n > 0 && u->n <= SUB_MAX && u->lv[u->n - 1].depth == depth)
        u->lv[u->n - 1].unsure = 1;
}

int api__iq_skip_params(api_request_t *r, const qscan_t *s, const char **why)
{
    qscan_t at = *s;
    at.every_db = 1; /* influxd looks each source up: db=nodb is its error, whatever the policy */
    qtoken_t t;
    const char *re;
    int regex = 0;   /* a '/' next opens a regex, as influxd reads one there */
    int operand = 0; /* a condition's operand is next (after WHERE, AND, OR, a comparison) */
    static const char *const cmps[] = {"=", "!=", "<", "<=", ">", ">=", "=~", "!~"};
    int depth = 0;                 /* of parentheses */
    unsigned long long listed = 0; /* bit d: the '(' opening depth d is a source in a list */
    struct subs subs = {0};
    for (;;) {
        /* influxd reads a regex as a field, a source or a dimension (after SELECT, FROM, BY,
         * ',', a source's '.') and after =~, !~ (below); a regex's text is no parameter:
         * /^pump-7$/. Elsewhere a '/' divides, or is influxd's parse error. */
        if (regex && at.p[strspn(at.p, " \t\r\n")] == '/') {
            if (api__iq_regex(r, &at, &re))
                return -1;
            regex = 0;
            continue;
        }
        api__qs_next(&at, &t);
        if ((t.kind == QT_EOF || t.kind == QT_SEMI) && depth > 0) {
            api__q_parse_error(r, &t, ")"); /* an unclosed subquery: influxd's parse error */
            return -1;
        }
        if (t.kind == QT_EOF || t.kind == QT_SEMI) {
            if (subs.err != NULL && api__iq_from_stops(*why) < 2)
                *why = subs.err; /* before a policy, after a database */
            return 0;
        }
        if (t.kind == QT_OTHER && t.text[0] == '$' && t.form != QF_REGEX)
            return api__q_unbound(r, &t);
        if (sub_token(&subs, &at, &t, depth)) {
            api__error(r, 400, "error parsing query: expected number argument in fill()");
            return -1;
        }
        int cmp = 0;
        for (size_t k = 0; k < sizeof cmps / sizeof cmps[0]; k++)
            cmp |= api__q_op(&t, cmps[k]);
        if (operand && (cmp || api__q_op(&t, "/"))) { /* device = = $x, temp > /$x/ */
            api__q_parse_error(r, &t, "identifier, string, number, bool");
            return -1;
        }
        operand = api__q_is(&t, "WHERE") || api__q_is(&t, "AND") || api__q_is(&t, "OR") ||
                  (cmp && !api__q_op(&t, "=~") && !api__q_op(&t, "!~")) ||
                  (operand && api__q_op(&t, "("));
        if (api__q_is(&t, "LIMIT") || api__q_is(&t, "OFFSET") || api__q_is(&t, "SLIMIT") ||
            api__q_is(&t, "SOFFSET")) { /* an integer only: "found $x, expected integer" */
            qscan_t n = at;
            api__qs_next(&n, &t);
            int bound = t.form != QF_NONE; /* a bound parameter's token: as before */
            int integer = t.kind == QT_NUMBER && strspn(t.text, "0123456789") == t.len;
            if ((t.kind == QT_OTHER && t.text[0] == '$' && !bound) || (!bound && !integer)) {
                api__q_parse_error(r, &t, "integer"); /* LIMIT 1.5, OFFSET -1, LIMIT) too */
                return -1;
            }
            continue;
        }
        if (api__q_is(&t, "ORDER")) { /* influxd's parse errors: ORDER BY time [ASC|DESC] only */
            int desc = 0;
            if (api__iq_order_by(r, &at, &desc))
                return -1;
            sub_order(&subs, depth, desc);
            continue;
        }
        if ((api__q_op(&t, "=~") || api__q_op(&t, "!~")) && api__iq_regex(r, &at, &re))
            return -1; /* a bound regex too, or influxd's "expected regex" */
        int list = 0;  /* a ',' after a subquery's ')' in a list: a source next */
        if (api__q_op(&t, ")") && depth == 0) {
            api__q_parse_error(r, &t, ";"); /* one ')' too many: influxd's statement ends */
            return -1;
        }
        if (api__q_op(&t, "(")) {
            depth++;
        } else if (api__q_op(&t, ")")) {
            qscan_t n = at;
            qtoken_t comma;
            api__qs_next(&n, &comma);
            list = depth < 64 && (listed >> depth & 1) && api__iq_q_op(&comma, ",");
            listed &= depth < 64 ? ~(1ULL << depth) : ~0ULL;
            depth--;
            if (list)
                at = n;
        } else if (api__q_is(&t, "INTO") &&
                   (plain_target(&at) ? skim_source(r, &at, why)
                                      : skim_measurement_target(r, &at, why))) {
            return -1; /* INTO db.rp.name, db.rp.:MEASUREMENT: looked up as a source */
        }
        if (list || api__q_is(&t, "FROM")) {
            int rc = skim_sources(r, &at, why);
            if (rc < 0)
                return -1;
            if (rc > 0 && depth + 1 < 64)
                listed |= 1ULL << (depth + 1);
            regex = operand = 0;
            continue;
        }
        regex = api__q_is(&t, "SELECT") || api__q_is(&t, "FROM") || api__q_is(&t, "BY") ||
                api__q_op(&t, ",") || api__q_op(&t, ".");
    }
}

/* influxd parses a whole statement before it judges it, so a parse error after a clause vigild
 * does not answer is influxd's 400, not vigild's statement error. These read influxd's
 * expressions (parseExpr, parseUnaryExpr, parseCall) for their parse errors only, keeping
 * nothing; where: in a WHERE condition (the end placed one closer after an operator). */

static int skim_expr(api_request_t *r, qscan_t *s, int where);

/* Whether t is one of influxd's binary operators (AND and OR too). */
int api__iq_is_binary_op(const qtoken_t *t)
{
    return api__q_binary_op(t);
}

/* After a call's '(' (read from s): influxd places the end after it as after a name, two on,
 * not one as after another operator ("SELECT mean(": 14 of 12; "SELECT (": 9 of 8). */
void api__iq_call_paren(qscan_t *s)
{
    s->end_op = 0;
}

/* Reads the rest of a call's arguments, s after its '(' (first) or after a ',' (regexes among
 * them), and its ')'. Returns 0, or -1 (parse error answered). */
int api__iq_skim_call(api_request_t *r, qscan_t *s, int where, int first)
{
    qtoken_t t;
    if (first)
        api__iq_call_paren(s);
    for (;; first = 0) {
        const char *re;
        if (api__iq_regex_next(s)) { /* first, as influxd's parseCall: f(/ *x* /) is a regex */
            if (api__iq_regex(r, s, &re))
                return -1;
        } else {
            qscan_t at = *s;
            api__qs_next(s, &t);
            if (first && api__iq_q_op(&t, ")"))
                return 0;
            *s = at;
            if (skim_expr(r, s, where))
                return -1;
        }
        api__qs_next(s, &t);
        if (api__iq_q_op(&t, ")"))
            return 0;
        if (!api__iq_q_op(&t, ",")) {
            api__q_parse_error(r, &t, ")");
            return -1;
        }
    }
}

/* Reads one operand t (already read from s) of an expression: a parenthesised expression, a
 * call, a name and its ::type, a literal, a wildcard, a bound parameter, a signed operand.
 * Returns 0, or -1 (parse error answered). */
static int skim_operand_at(api_request_t *r, qscan_t *s, qtoken_t *t, int where);

int api__iq_skim_operand(api_request_t *r, qscan_t *s, qtoken_t *t, int where)
{
    /* A level is what recurses: '(', a call, a sign; the name or literal inside them is none
     * (1,000 parentheses around a field are 1,000 levels). */
    int call = (t->kind == QT_IDENT || api__q_is(t, "DISTINCT")) && *s->p == '(';
    if (!call && !api__iq_q_op(t, "(") && !api__iq_q_op(t, "-") && !api__iq_q_op(t, "+"))
        return skim_operand_at(r, s, t, where);
    if (api__q_nest(r, s, t))
        return -1;
    int rc = skim_operand_at(r, s, t, where);
    s->depth--;
    return rc;
}

static int skim_operand_at(api_request_t *r, qscan_t *s, qtoken_t *t, int where)
{
    if (api__iq_q_op(t, "(")) {
        if (skim_expr(r, s, where))
            return -1;
        api__qs_next(s, t);
        if (!api__iq_q_op(t, ")")) {
            api__q_parse_error(r, t, ")");
            return -1;
        }
        return 0;
    }
    if (t->kind == QT_IDENT) {
        if (*s->p == '(') { /* a call: the '(' right after the name */
            api__qs_next(s, t);
            return api__iq_skim_call(r, s, where, 1);
        }
        return api__iq_skip_cast(r, s);
    }
    if (api__q_is(t, "DISTINCT")) { /* parseUnaryExpr: DISTINCT(...), or a blank and a name */
        if (*s->p == '(') {
            api__qs_next(s, t);
            return api__iq_skim_call(r, s, where, 1);
        }
        int blank = *s->p != '\0' && strchr(" \t\r\n", *s->p) != NULL;
        api__qs_next(s, t);
        if (!blank || t->kind != QT_IDENT) {
            api__q_parse_error(r, t, blank ? "identifier" : "(, identifier");
            return -1;
        }
        return 0;
    }
    if (t->kind == QT_NUMBER)
        return api__iq_bad_number(r, t); /* 1e3, 1x: invalid durations, influxd's 400 */
    if (t->kind == QT_STRING || api__iq_is_bool(t))
        return 0;
    if (t->form == QF_REGEX) /* a bound regex: influxd reads it as a value here too */
        return api__iq_bound_regex_value(r, s, t);
    if (t->kind == QT_OTHER && t->text[0] == '$') /* bound, it was read as its value */
        return api__q_unbound(r, t);
    if (api__iq_q_op(t, "*")) {
        qscan_t at = *s;
        qtoken_t c;
        api__qs_next(s, &c);
        if (!api__iq_q_op(&c, "::") || s->p != at.p + 2) { /* "::" right after the '*' */
            *s = at;
            s->end_op = 0; /* a wildcard, no operator: the end one on ("SELECT *": 9 of 8) */
            s->end_number = 1;
            return 0;
        }
        api__qs_next(s, &c);
        if (!api__q_is(&c, "FIELD") && !api__q_is(&c, "TAG")) {
            api__q_parse_error(r, &c, "field, tag");
            return -1;
        }
        return 0;
    }
    if (api__iq_q_op(t, "-") || api__iq_q_op(t, "+")) {
        api__qs_next(s, t);
        if (t->kind == QT_NUMBER || t->kind == QT_IDENT || api__iq_q_op(t, "("))
            return api__iq_skim_operand(r, s, t, where);
        if (api__iq_signed_operand(r, s, t))
            return -1;
        api__q_parse_error(r, t, "identifier, number, duration, (");
        return -1;
    }
    return api__q_operand_error(r, s, t, where);
}

/* Reads what follows an operand: binary operators and their operands, to the first token that
 * is no operator (s left before it). Returns 0, or -1 (parse error answered). */
int api__iq_skim_tail(api_request_t *r, qscan_t *s, int where)
{
    for (;;) {
        qscan_t at = *s;
        qtoken_t op, t;
        api__qs_next(s, &op);
        if (!api__iq_is_binary_op(&op)) {
            *s = at;
            return 0;
        }
        const char *re;
        if (api__iq_q_op(&op, "=~") || api__iq_q_op(&op, "!~")) {
            if (api__iq_regex(r, s, &re))
                return -1;
            continue;
        }
        api__qs_next(s, &t);
        if (api__iq_skim_operand(r, s, &t, where))
            return -1;
    }
}

/* Reads an expression. Returns 0, or -1 (parse error answered). */
static int skim_expr(api_request_t *r, qscan_t *s, int where)
{
    qtoken_t t;
    api__qs_next(s, &t);
    if (api__iq_skim_operand(r, s, &t, where))
        return -1;
    return api__iq_skim_tail(r, s, where);
}

int api__iq_skim_condition(api_request_t *r, qscan_t *s)
{
    return skim_expr(r, s, 1);
}

/* api/influxql_select_read.c: reads a SELECT of /query (influxql_select.c answers it) into a
 * select_t: its fields (raw, or mean, min, max, first, last, count, sum of one field; AS names,
 * influxd's column names), FROM, GROUP BY time(d[, [-]offset]) and the device tag, fill(), ORDER
 * BY time, LIMIT and OFFSET, with influxd 1.6.7's parse errors (400); its WHERE is read by
 * influxql_where.c. What vigild does not answer (other functions, math, subqueries, INTO, tz())
 * sets q->unsupported, the statement's error, and the statement is read to its end. The helpers
 * both files use (marking the statement unsupported, literals, skimming influxd's expressions
 * for their parse errors) are here.
 *
 * Any thread; no state. */
#include "influxql_select.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const fn_names[FN_KINDS] = {"",      "mean", "min",   "max",
                                               "first", "last", "count", "sum"};

/* ---- reading the statement ------------------------------------------------------------------ */

/* Marks the statement unsupported (the first reason wins): what, then name (NULL: none), kept
 * whole in the query's memory, as a name may be as long as the query. Out of memory, what
 * alone is kept. */
void api__iq_mark_unsupported(select_t *q, qscan_t *s, const char *what, const char *name)
{
    if (q->unsupported != NULL)
        return;
    q->unsupported = what;
    if (name == NULL)
        return;
    size_t n = strlen(what), k = strlen(name);
    char *text = api__qs_alloc(s, n + k + 1);
    if (text == NULL)
        return;
    memcpy(text, what, n);
    memcpy(text + n, name, k + 1);
    q->unsupported = text;
}

/* Marks the statement unsupported and reads it to its end. */
void api__iq_unsupported(select_t *q, qscan_t *s, const char *what, const char *name)
{
    api__iq_mark_unsupported(q, s, what, name);
    api__iq_skip(s);
    q->skipped = 1;
}

/* Marks the statement failed with influxd's own statement error msg (whole, in s's memory; out
 * of memory, vigild's words), unless a reason came first. */
void api__iq_mark_influxd_error(select_t *q, qscan_t *s, const char *msg)
{
    if (q->unsupported != NULL)
        return;
    char *text = api__qs_alloc(s, strlen(msg) + 1);
    if (text == NULL) {
        q->unsupported = "a literal as a condition";
        return;
    }
    strcpy(text, msg);
    q->unsupported = text;
    q->influxd_error = 1;
}

/* After a unary sign (time(10s, -x), fill(-x); read from s): answers influxd's parse error for
 * t when it is a bad operand and returns -1; else 0. The end is placed right after the sign, as
 * in a condition. */
static int signed_operand(api_request_t *r, const qscan_t *s, const qtoken_t *t)
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
static void call_paren(qscan_t *s)
{
    s->end_op = 0;
}

/* Reads the rest of a call's arguments, s after its '(' (first) or after a ',' (regexes among
 * them), and its ')'. Returns 0, or -1 (parse error answered). */
static int skim_call(api_request_t *r, qscan_t *s, int where, int first)
{
    qtoken_t t;
    if (first)
        call_paren(s);
    for (;; first = 0) {
        qscan_t at = *s;
        api__qs_next(s, &t);
        if (first && api__iq_q_op(&t, ")"))
            return 0;
        *s = at;
        const char *re;
        if (*s->p == '/' || (strspn(s->p, " \t\r\n") > 0 && s->p[strspn(s->p, " \t\r\n")] == '/')) {
            if (api__iq_regex(r, s, &re))
                return -1;
        } else if (skim_expr(r, s, where)) {
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
            return skim_call(r, s, where, 1);
        }
        return api__iq_skip_cast(r, s);
    }
    if (api__q_is(t, "DISTINCT")) { /* parseUnaryExpr: DISTINCT(...), or a blank and a name */
        if (*s->p == '(') {
            api__qs_next(s, t);
            return skim_call(r, s, where, 1);
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
        if (signed_operand(r, s, t))
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

/* The index of channel name among q's channels, added when new. */
static int chan_index(select_t *q, const char *name)
{
    for (int i = 0; i < q->nchans; i++)
        if (strcmp(q->chans[i], name) == 0)
            return i;
    q->chans[q->nchans] = name; /* borrowed, as the token's text */
    return q->nchans++;
}

/* Names the field's column as influxd does: the field, or the function; a name taken before gets
 * _1, _2, ... (written in s's memory). Returns 0, or answers 500 and -1 when out of memory. */
static int column_name(api_request_t *r, qscan_t *s, select_t *q, struct sel_field *f,
                       const char *base)
{
    f->col = base;
    for (int n = 1;; n++) {
        int taken = 0;
        for (int i = 0; i < q->nf && !taken; i++)
            taken = &q->f[i] != f && strcmp(q->f[i].col, f->col) == 0;
        if (!taken)
            return 0;
        char *col = api__qs_alloc(s, strlen(base) + 16); /* "_" and an int */
        if (col == NULL) {
            api__error(r, 500, "out of memory");
            return -1;
        }
        sprintf(col, "%s_%d", base, n);
        f->col = col;
    }
}

/* Reads an optional ::type after a name ("temp"::field, "device"::tag: Grafana writes them) as
 * influxd's parseVarRef: the token right after "::", blanks and comments not skipped, must be
 * float, integer, unsigned, string or boolean (a name, any case) or the keyword FIELD or TAG;
 * else its parse error (a blank run printed as read, "\r" as "\n"; a comment as ""; the end,
 * or blanks to the end, as EOF). Every field is a float here and the device tag the one tag,
 * so the type chooses nothing. Returns 0, or -1 (parse error answered). */
static int skip_cast_as(api_request_t *r, qscan_t *s, enum sel_cast *cast);

int api__iq_skip_cast(api_request_t *r, qscan_t *s)
{
    return skip_cast_as(r, s, NULL);
}

/* A field's ::unsigned: vigild's statement error, read on. influxd wraps a negative value
 * (-5.5::unsigned is 18446744073709551611) and prints integers past 2^53 exactly, which vigild's
 * doubles cannot hold: answered as ::integer, min() and max() chose other points. */
static void unsigned_cast(select_t *q, qscan_t *s, const struct sel_field *f)
{
    if (f->cast == CAST_UNSIGNED)
        api__iq_mark_unsupported(q, s, "::unsigned on a field (influxd wraps negative values)",
                                 NULL);
}

/* skip_cast, and for a field's cast what it makes of the field's values (cast not NULL; left
 * as it was without a cast): as they are (float, field), truncated (integer, unsigned: every
 * field is a float here), or none (string, boolean, tag: no field of the name has that type). */
static int skip_cast_as(api_request_t *r, qscan_t *s, enum sel_cast *cast)
{
    static const char *const types[] = {"float", "integer", "unsigned", "string", "boolean"};
    static const enum sel_cast makes[] = {CAST_AS_IS, CAST_INTEGER, CAST_UNSIGNED, CAST_NONE,
                                          CAST_NONE};
    qscan_t at = *s;
    qtoken_t t;
    api__qs_next(s, &t);
    if (!api__iq_q_op(&t, "::")) {
        *s = at;
        return 0;
    }
    const char *p = s->p;
    size_t n = strspn(p, " \t\r\n");
    if (n > 0 || (p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '*') || p[0] == '\0') {
        t.kind = QT_OTHER;
        t.line = s->line + 1;
        t.col = s->col + 1;
        t.text = "";
        if (p[n] == '\0') {
            t.text = "EOF"; /* influxd trims the query's trailing blanks first */
        } else if (n > 0) {
            char *w = api__qs_alloc(s, n + 1);
            if (w == NULL) {
                api__error(r, 500, "out of memory");
                return -1;
            }
            size_t k = 0;
            for (size_t i = 0; i < n; i++) /* Go's reader: "\r\n" and "\r" are "\n" */
                if (!(p[i] == '\n' && i > 0 && p[i - 1] == '\r'))
                    w[k++] = p[i] == '\r' ? '\n' : p[i];
            w[k] = '\0';
            t.text = w;
        }
        api__q_parse_error(r, &t, "float, integer, string, boolean, field, tag");
        return -1;
    }
    api__qs_next(s, &t);
    if (api__q_is(&t, "FIELD") || api__q_is(&t, "TAG")) {
        if (cast != NULL)
            *cast = api__q_is(&t, "TAG") ? CAST_NONE : CAST_AS_IS;
        return 0;
    }
    if (t.kind == QT_IDENT)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(t.text, types[i]) == 0) {
                if (cast != NULL)
                    *cast = makes[i];
                return 0;
            }
    api__q_parse_error(r, &t,
                       t.kind == QT_IDENT ? "float, integer, unsigned, string, boolean, field, tag"
                                          : "float, integer, string, boolean, field, tag");
    return -1;
}

/* Reads one field: "name" or fn("name"), then an optional AS alias. Returns 0 (an unsupported
 * one sets q->unsupported and reads the statement to its end), or -1 (parse error). */
static int read_field(api_request_t *r, qscan_t *s, select_t *q)
{
    qtoken_t t, arg;
    api__qs_next(s, &t);
    if (api__q_is(&t, "DISTINCT")) {
        api__iq_mark_unsupported(q, s, "DISTINCT", NULL); /* read on */
        if (api__iq_skim_operand(r, s, &t, 0) || api__iq_skim_tail(r, s, 0))
            return -1;
        return api__q_keyword_name(r, s, "AS");
    }
    if (t.kind == QT_OTHER && strcmp(t.text, "*") == 0) {
        api__iq_mark_unsupported(q, s, "SELECT *: name the fields", NULL); /* read on */
        if (api__iq_skim_operand(r, s, &t, 0) || api__iq_skim_tail(r, s, 0))
            return -1;
        return api__q_keyword_name(r, s, "AS");
    }
    if (api__q_bad_operand(&t))
        return api__q_operand_error(r, s, &t, 0);
    if (api__iq_bad_number(r, &t))
        return -1;
    int literal = t.kind == QT_NUMBER || t.kind == QT_STRING || api__iq_is_bool(&t);
    if (literal) {
        /* A literal field alone: influxd's statement error; the statement is read on. */
        qscan_t at = *s;
        qtoken_t next;
        api__qs_next(s, &next);
        *s = at;
        if (api__iq_q_op(&next, ",") || api__q_is(&next, "FROM") || api__q_is(&next, "AS")) {
            q->field_error = q->unsupported == NULL;
            api__iq_mark_influxd_error(q, s, "field must contain at least one variable");
            return api__q_keyword_name(r, s, "AS"); /* no field kept: the statement does not run */
        }
    }
    if (literal || (t.kind == QT_OTHER && strchr("(-+$", t.text[0]) != NULL)) {
        /* An expression: read on (a ',', FROM or AS next; "SELECT 'x'(" is influxd's found (,
         * expected FROM); vigild's statement error. */
        api__iq_mark_unsupported(q, s, "this field expression: ", t.text);
        if (api__iq_skim_operand(r, s, &t, 0) || api__iq_skim_tail(r, s, 0))
            return -1;
        return api__q_keyword_name(r, s, "AS");
    }
    if (t.kind == QT_OTHER) {
        /* An operator: influxd reads it and asks for FROM after it ("SELECT 1" is its parse
         * error); with a FROM, vigild's statement error. */
        api__iq_mark_unsupported(q, s, "this field expression: ", t.text);
        for (;;) {
            qscan_t at = *s;
            api__qs_next(s, &t);
            if (api__q_is(&t, "FROM"))
                break;
            if (t.kind == QT_EOF || t.kind == QT_SEMI) {
                *s = at;
                api__q_parse_error(r, &t, "FROM");
                return -1;
            }
        }
        api__iq_skip(s);
        q->skipped = 1;
        return 0;
    }
    if (t.kind != QT_IDENT) {
        api__q_parse_error(r, &t, "identifier, string, number, bool");
        return -1;
    }
    if (q->nf == SEL_FIELDS_MAX) {
        api__iq_unsupported(q, s, "more than 16 fields in one SELECT", NULL);
        return 0;
    }
    struct sel_field *f = &q->f[q->nf];
    qscan_t at = *s;
    qtoken_t paren;
    api__qs_next(s, &paren);
    if (api__iq_q_op(&paren, "(")) {
        call_paren(s);
        f->fn = FN_KINDS;
        for (int k = 1; k < FN_KINDS; k++)
            if (strcasecmp(t.text, fn_names[k]) == 0)
                f->fn = (enum sel_fn)k;
        if (f->fn == FN_KINDS) {
            api__iq_mark_unsupported(q, s, "the function ", t.text); /* read on */
            if (skim_call(r, s, 0, 1) || api__iq_skim_tail(r, s, 0))
                return -1;
            return api__q_keyword_name(r, s, "AS");
        }
        api__qs_next(s, &arg);
        if (api__q_bad_operand(&arg) &&
            !api__iq_q_op(&arg, ")")) /* mean() is influxd's statement error */
            return api__q_operand_error(r, s, &arg, 0);
        if (api__iq_q_op(&arg, ")")) { /* influxd's words; the statement read on */
            char msg[80];
            snprintf(msg, sizeof msg, "invalid number of arguments for %s, expected 1, got 0",
                     fn_names[f->fn]);
            api__iq_mark_influxd_error(q, s, msg);
            if (api__iq_skim_tail(r, s, 0))
                return -1;
            return api__q_keyword_name(r, s, "AS"); /* no field kept: the statement does not run */
        }
        if (api__iq_bad_number(r, &arg))
            return -1;
        if (arg.kind == QT_NUMBER || arg.kind == QT_STRING || api__iq_is_bool(&arg)) {
            qscan_t after = *s;
            api__qs_next(&after, &paren);
            if (api__iq_q_op(&paren, ")")) { /* mean('x'): influxd's words; the statement read on */
                char msg[64];
                snprintf(msg, sizeof msg, "expected field argument in %s()", fn_names[f->fn]);
                api__iq_mark_influxd_error(q, s, msg);
                *s = after;
                return api__q_keyword_name(r, s,
                                           "AS"); /* no field kept: the statement does not run */
            }
        }
        if (api__q_unbound(r, &arg))
            return -1;
        if (arg.kind != QT_IDENT) {
            api__iq_unsupported(q, s, "this argument: ", arg.text);
            return 0;
        }
        /* mean(foo(temp)): a '(' right after the name is a call to influxd (a statement
         * error), read on as one */
        int call = *s->p == '(';
        if (call) {
            api__qs_next(s, &paren);
            if (skim_call(r, s, 0, 1))
                return -1;
        } else if (skip_cast_as(r, s, &f->cast)) {
            return -1;
        }
        unsigned_cast(q, s, f);
        api__qs_next(s, &paren);
        /* a second argument: influxd's parse error when it is none */
        if (api__iq_q_op(&paren, ",")) {
            qtoken_t next;
            qscan_t after = *s;
            api__qs_next(&after, &next);
            if (api__q_bad_operand(&next))
                return api__q_operand_error(r, &after, &next, 0);
        }
        if (call || !api__iq_q_op(&paren, ")")) {
            api__iq_mark_unsupported(q, s, "more than one argument, or math, in ", fn_names[f->fn]);
            if (api__iq_is_binary_op(&paren)) { /* the rest of the argument: *s = paren's end */
                const char *re;
                if (api__iq_q_op(&paren, "=~") || api__iq_q_op(&paren, "!~")) {
                    if (api__iq_regex(r, s, &re))
                        return -1;
                } else {
                    api__qs_next(s, &paren);
                    if (api__iq_skim_operand(r, s, &paren, 0))
                        return -1;
                }
                if (api__iq_skim_tail(r, s, 0))
                    return -1;
                api__qs_next(s, &paren);
            }
            if (api__iq_q_op(&paren, ",") && skim_call(r, s, 0, 0))
                return -1;
            if (!api__iq_q_op(&paren, ",") && !api__iq_q_op(&paren, ")")) {
                api__q_parse_error(r, &paren, ")");
                return -1;
            }
            if (api__iq_skim_tail(r, s, 0))
                return -1;
            return api__q_keyword_name(r, s, "AS");
        }
        f->chan = chan_index(q, arg.text);
        if (column_name(r, s, q, f, fn_names[f->fn]))
            return -1;
    } else {
        *s = at;
        f->fn = FN_RAW;
        f->chan = chan_index(q, t.text);
        if (column_name(r, s, q, f, t.text))
            return -1;
        if (skip_cast_as(r, s, &f->cast))
            return -1;
        unsigned_cast(q, s, f);
    }
    at = *s;
    api__qs_next(s, &t);
    if (api__q_is(&t, "AS")) {
        api__qs_next(s, &t);
        if (t.kind != QT_IDENT) {
            api__q_parse_error(r, &t, "identifier");
            return -1;
        }
        f->col = t.text;
    } else if (t.kind == QT_OTHER && strchr("+-*/%&|^", t.text[0]) != NULL) {
        api__iq_mark_unsupported(q, s, "math in SELECT", NULL); /* read on */
        api__qs_next(s, &t);
        if (api__iq_skim_operand(r, s, &t, 0) || api__iq_skim_tail(r, s, 0))
            return -1;
        return api__q_keyword_name(r, s, "AS");
    } else {
        *s = at;
    }
    q->nf++;
    return 0;
}

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
        return skim_call(r, s, 0, 1);
    }
    for (int i = 0; i < 2; i++) {
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
            if (signed_operand(r, s, &t))
                return -1;
        }
        int dur = (!sign || lit) && t.kind == QT_NUMBER && api__q_number_kind(&t) == QN_DURATION &&
                  arg_alone(s);
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
        if (i == 0 && again) /* after the interval's own error, before the offset's */
            api__iq_mark_influxd_error(q, s, "multiple time dimensions not allowed");
        api__qs_next(s, &p);
        if (api__iq_q_op(&p, ")"))
            break;
        if (api__iq_q_op(&p, ",") && i == 1) { /* a third argument: influxd's words */
            api__iq_mark_influxd_error(q, s, "time dimension expected 1 or 2 arguments");
            return skim_call(r, s, 0, 0);
        }
        if (!api__iq_q_op(&p, ",")) {
            api__q_parse_error(r, &p, ")");
            return -1;
        }
    }
    return 0;
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
static int read_group_by(api_request_t *r, qscan_t *s, select_t *q, const qrun_t *run)
{
    qtoken_t t, p;
    int seen = 0, last_nonzero = 0; /* a time() dimension read; the last one's interval */
    do {
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
                call_paren(s);
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
    call_paren(s);
    const qscan_t arg_at = *s;
    api__qs_next(s, &t);
    if (api__iq_q_op(&t, ")")) {
        api__error(r, 400,
                   "error parsing query: fill requires an argument, e.g.: 0, null, none, "
                   "previous, linear");
        return -1;
    }
    if (api__iq_q_op(&t, "/") || t.form == QF_REGEX) { /* fill(/x/), fill($r): no number */
        const char *re;
        *s = arg_at;
        if (t.form == QF_REGEX ? (api__qs_next(s, &t), api__iq_bound_regex_value(r, s, &t))
                               : api__iq_regex(r, s, &re))
            return -1;
        return fill_not_number(r, s);
    }
    if (api__q_bad_operand(&t))
        return api__q_operand_error(r, s, &t, 0);
    int neg = api__iq_q_op(&t, "-");
    if (neg) {
        api__qs_next(s, &t);
        if (signed_operand(r, s, &t))
            return -1;
        if (t.kind != QT_NUMBER && t.kind != QT_IDENT && !api__iq_q_op(&t, "(")) { /* fill(-'5') */
            api__q_parse_error(r, &t, "identifier, number, duration, (");
            return -1;
        }
    }
    if (api__iq_bad_number(r, &t)) /* fill(1e3): influxd reads the argument as an expression */
        return -1;
    if (t.kind == QT_IDENT && strcasecmp(t.text, "null") == 0 && !neg)
        q->fill = FILL_NULL;
    else if (t.kind == QT_IDENT && strcasecmp(t.text, "none") == 0 && !neg)
        q->fill = FILL_NONE;
    else if (t.kind == QT_IDENT && strcasecmp(t.text, "previous") == 0 && !neg)
        q->fill = FILL_PREVIOUS;
    else if (t.kind == QT_NUMBER && api__q_number_kind(&t) != QN_DURATION) {
        q->fill = FILL_NUMBER;
        q->fill_v = strtod(t.text, NULL) * (neg ? -1 : 1);
    } else if (((t.kind == QT_STRING || api__iq_is_bool(&t) || api__iq_q_op(&t, "(")) && !neg) ||
               t.kind == QT_NUMBER) {
        /* influxd reads the argument whole, then wants a number: fill('x'), fill((1)),
         * fill(1h), fill(-1h) (a number that is no duration was read above) */
        if ((api__iq_q_op(&t, "(") && api__iq_skim_operand(r, s, &t, 0)) ||
            api__iq_skim_tail(r, s, 0))
            return -1;
        return fill_not_number(r, s);
    } else if (api__q_unbound(r, &t)) {
        return -1;
    } else {
        api__iq_unsupported(q, s, "fill(", t.text);
        return 1;
    }
    api__qs_next(s, &p);
    if (!api__iq_q_op(&p, ")")) {
        api__q_parse_error(r, &p, ")");
        return -1;
    }
    return 0;
}

/* Reads ORDER BY time [ASC|DESC], LIMIT n and OFFSET n, then the end. */
static int read_tail(api_request_t *r, qscan_t *s, select_t *q)
{
    qtoken_t t;
    int rc;
    for (;;) {
        qscan_t at = *s;
        api__qs_next(s, &t);
        if (t.kind == QT_EOF || t.kind == QT_SEMI) {
            *s = at;
            return 0;
        }
        if (api__q_is(&t, "ORDER")) {
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
                    q->desc = 1;
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
        } else if ((rc = api__iq_limit_offset(r, s, &t, &q->limit, &q->offset)) != 0) {
            if (rc < 0)
                return -1;
        } else if (api__q_is(&t, "SLIMIT") || api__q_is(&t, "SOFFSET")) {
            long long *v = api__q_is(&t, "SLIMIT") ? &q->slimit : &q->soffset;
            if (api__q_expect_int(r, s, &t, 0, INT64_MAX))
                return -1;
            *v = strtoll(t.text, NULL, 10);
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
            call_paren(s);
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
                if (known < 0)
                    api__error(r, 500, "out of memory");
                else
                    api__error(r, 400, "error parsing query: unable to find time zone %s",
                               zone.value);
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

int api__iq_select_read(api_request_t *r, qscan_t *s, select_t *q, const qrun_t *run)
{
    qtoken_t t;
    q->lo_ns = INT64_MIN;
    q->hi_ns = INT64_MAX;
    q->from = q->device = "";
    do {
        if (read_field(r, s, q))
            return -1;
        if (q->skipped)
            return 0; /* read to its end; what vigild does not support is otherwise read on
                       * (influxd's parse errors after it are its 400) */
        api__qs_next(s, &t);
    } while (api__iq_q_op(&t, ","));
    if (api__q_is(&t, "INTO")) {
        if (api__iq_skip_params(r, s))
            return -1;
        api__iq_unsupported(q, s, "SELECT INTO", NULL);
        return 0;
    }
    if (!api__q_is(&t, "FROM")) {
        api__q_parse_error(r, &t, "FROM");
        return -1;
    }
    qscan_t at = *s;
    api__qs_next(s, &t);
    if (api__iq_q_op(&t, "(")) {
        if (api__iq_skip_params(r, s))
            return -1;
        api__iq_unsupported(q, s, "subqueries", NULL);
        return 0;
    }
    *s = at;
    const char *from_unsupported = NULL;
    if (api__iq_from(r, s, &t, &from_unsupported))
        return -1;
    if (from_unsupported != NULL)
        api__iq_mark_unsupported(q, s, from_unsupported, NULL);
    q->from = t.text; /* what vigild does not support is read on */
    at = *s;
    api__qs_next(s, &t);
    if (api__q_is(&t, "WHERE")) {
        int rc = api__iq_read_condition(r, s, q, run);
        if (rc)
            return rc < 0 ? -1 : 0;
        at = *s;
        api__qs_next(s, &t);
    }
    if (api__q_is(&t, "GROUP")) {
        if (api__q_expect_kw(r, s, "BY"))
            return -1;
        int rc = read_group_by(r, s, q, run);
        if (rc)
            return rc < 0 ? -1 : 0;
    } else {
        *s = at;
    }
    return read_tail(r, s, q) < 0 ? -1 : 0;
}

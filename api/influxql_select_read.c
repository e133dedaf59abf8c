/* api/influxql_select_read.c: reads a SELECT of /query (influxql_select.c answers it) into a
 * select_t: its fields (raw, or mean, min, max, first, last, count, sum of one field; AS names,
 * influxd's column names) and FROM, with influxd 1.6.7's parse errors (400); its WHERE is read by
 * influxql_where.c, the clauses after it (GROUP BY, fill(), ORDER BY, LIMIT, OFFSET) by
 * influxql_select_clauses.c. What vigild does not answer (other functions, math, subqueries,
 * INTO, tz()) sets q->unsupported, the statement's error, and the statement is read to its end
 * (influxql_skim.c reads on for influxd's parse errors). The helpers these files use to mark the
 * statement unsupported are here.
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

/* Reads on a list of sources after SELECT's first (s: after it; FROM a1, a2, /re/), each as
 * the first, with influxd's parse errors. vigild answers one source: a list is its statement
 * error, *why the first source's reason or "several measurements in FROM", but a database
 * vigild does not list or else a retention policy other than autogen in any of them, which ends
 * the run as influxd's "database not found" or "retention policy not found" (api__iq_from_stops).
 * Returns 0, 1 (a subquery's '(' after a ',': s after it), or -1 (parse error answered). */
static int from_list(api_request_t *r, qscan_t *s, const char **why)
{
    for (;;) {
        qscan_t at = *s;
        qtoken_t t;
        api__qs_next(&at, &t);
        if (!api__iq_q_op(&t, ","))
            return 0;
        *s = at;
        api__qs_next(&at, &t);
        if (api__iq_q_op(&t, "(")) {
            *s = at;
            return 1;
        }
        const char *next = NULL;
        if (api__iq_from(r, s, &t, &next))
            return -1;
        if (api__iq_from_stops(next) > api__iq_from_stops(*why))
            *why = next; /* a lookup that ends the run, a database's first */
        else if (*why == NULL)
            *why = "several measurements in FROM";
    }
}

/* A SELECT vigild refuses as a whole (what: SELECT INTO, subqueries), read to its end from kw,
 * its INTO or FROM keyword (api__iq_skip_params: its unbound parameters' errors, and its
 * sources: INTO's target, those after each FROM, a subquery's too): a database or policy
 * influxd does not find in any of them, the query's db= and rp= for those naming none, is
 * influxd's error, which ends the run, unless influxd's own statement error came first; else
 * vigild's "does not support" what. Returns 0, or -1 (parse error answered). */
static int skim_refused(api_request_t *r, qscan_t *s, const qscan_t *kw, select_t *q,
                        const char *what)
{
    const char *why = NULL;
    if (api__iq_skip_params(r, kw, &why))
        return -1;
    if (api__iq_from_stops(why) && !q->influxd_error)
        q->unsupported = why;
    api__iq_unsupported(q, s, what, NULL);
    return 0;
}

/* Reads one field: "name" or fn("name"), then an optional AS alias. Returns 0 (an unsupported
 * one sets q->unsupported and reads the statement to its end), or -1 (parse error). */
static int read_field(api_request_t *r, qscan_t *s, select_t *q)
{
    qtoken_t t, arg;
    if (api__iq_regex_bad_next(r, s)) /* SELECT /x/ is a field to influxd */
        return -1;
    api__qs_next(s, &t);
    if (api__q_is(&t, "DISTINCT")) {
        api__iq_mark_unsupported(q, s, "DISTINCT", NULL); /* read on */
        if (api__iq_skim_operand(r, s, &t, 0) || api__iq_skim_tail(r, s, 0))
            return -1;
        return api__q_keyword_name(r, s, "AS");
    }
    if (t.kind == QT_OTHER && strcmp(t.text, "*") == 0) {
        api__iq_mark_unsupported(q, s, IQ_STAR_UNSUPPORTED, NULL); /* read on */
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
        api__iq_call_paren(s);
        f->fn = FN_KINDS;
        for (int k = 1; k < FN_KINDS; k++)
            if (strcasecmp(t.text, fn_names[k]) == 0)
                f->fn = (enum sel_fn)k;
        if (f->fn == FN_KINDS) {
            api__iq_mark_unsupported(q, s, "the function ", t.text); /* read on */
            if (api__iq_skim_call(r, s, 0, 1) || api__iq_skim_tail(r, s, 0))
                return -1;
            return api__q_keyword_name(r, s, "AS");
        }
        if (api__iq_regex_bad_next(r, s)) /* mean(/x/) is a call of fields to influxd */
            return -1;
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
        if (api__q_is(&arg, "DISTINCT")) { /* count(distinct(x)): read on as influxd reads it */
            api__iq_mark_unsupported(q, s, "this argument: ", arg.text);
            if (api__iq_skim_operand(r, s, &arg, 0) || api__iq_skim_tail(r, s, 0))
                return -1;
            api__qs_next(s, &paren);
            if (api__iq_q_op(&paren, ",") ? api__iq_skim_call(r, s, 0, 0)
                                          : !api__iq_q_op(&paren, ")")) {
                if (!api__iq_q_op(&paren, ","))
                    api__q_parse_error(r, &paren, ")");
                return -1;
            }
            if (api__iq_skim_tail(r, s, 0))
                return -1;
            return api__q_keyword_name(r, s, "AS");
        }
        if (arg.kind != QT_IDENT) {
            api__iq_unsupported(q, s, "this argument: ", arg.text);
            return 0;
        }
        /* mean(foo(temp)): a '(' right after the name is a call to influxd (a statement
         * error), read on as one */
        int call = *s->p == '(';
        if (call) {
            api__qs_next(s, &paren);
            if (api__iq_skim_call(r, s, 0, 1))
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
            if (api__iq_regex_bad_next(r, s))
                return -1;
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
            if (api__iq_q_op(&paren, ",") && api__iq_skim_call(r, s, 0, 0))
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

int api__iq_select_read(api_request_t *r, qscan_t *s, select_t *q, const qrun_t *run)
{
    qtoken_t t;
    q->lo_ns = INT64_MIN;
    q->hi_ns = INT64_MAX;
    q->from = q->device = "";
    qscan_t kw; /* before the token after the fields: INTO or FROM */
    do {
        if (read_field(r, s, q))
            return -1;
        if (q->skipped)
            return 0; /* read to its end; what vigild does not support is otherwise read on
                       * (influxd's parse errors after it are its 400) */
        kw = *s;
        api__qs_next(s, &t);
    } while (api__iq_q_op(&t, ","));
    if (api__q_is(&t, "INTO"))
        return skim_refused(r, s, &kw, q, "SELECT INTO");
    if (!api__q_is(&t, "FROM")) {
        api__q_parse_error(r, &t, "FROM");
        return -1;
    }
    qscan_t at = *s;
    api__qs_next(s, &t);
    if (api__iq_q_op(&t, "("))
        return skim_refused(r, s, &kw, q, "subqueries");
    *s = at;
    const char *from_unsupported = NULL;
    if (api__iq_from(r, s, &t, &from_unsupported))
        return -1;
    q->from = t.text; /* what vigild does not support is read on */
    int more = from_list(r, s, &from_unsupported);
    if (more)
        return more < 0 ? -1 : skim_refused(r, s, &kw, q, "subqueries");
    if (api__iq_from_stops(from_unsupported) && !q->influxd_error)
        q->unsupported = from_unsupported; /* influxd looks the sources up first (DISTINCT) */
    else if (from_unsupported != NULL)
        api__iq_mark_unsupported(q, s, from_unsupported, NULL);
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
        int rc = api__iq_read_group_by(r, s, q, run);
        if (rc)
            return rc < 0 ? -1 : 0;
    } else {
        *s = at;
    }
    return api__iq_read_tail(r, s, q) < 0 ? -1 : 0;
}

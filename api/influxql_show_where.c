/* api/influxql_show_where.c: the WHERE of SHOW MEASUREMENTS, SHOW TAG KEYS and SHOW TAG VALUES
 * (influxql_show.c): conditions on the device tag (=, !=, =~, !~), and for the first two on
 * another tag key, joined by AND and OR in parentheses or not, as Grafana's query builder sends
 * a multi-value variable ("device" = 'a' OR "device" = 'b'); and SHOW TAG VALUES' WITH KEY
 * condition (api__iq_tv_key_read). AND binds before OR, as in influxd's grammar. The expression
 * is kept in postfix over at most TV_CONDS_MAX conditions; each regex is read by api__iq_regex,
 * which counts it in the query's regex budget.
 *
 * Any thread; no state but the query's (qscan_t, qrun_t). */
#include "influxql_show_where.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *api__iq_exact_pattern(qscan_t *s, const char *name)
{
    char *pattern = api__qs_alloc(s, 2 * strlen(name) + 3);
    if (pattern == NULL)
        return NULL;
    char *p = pattern;
    *p++ = '^';
    for (const char *c = name; *c; c++) {
        if (strchr("\\^$.|?*+()[]{}", *c))
            *p++ = '\\';
        *p++ = *c;
    }
    *p++ = '$';
    *p = '\0';
    return pattern;
}

int api__iq_tv_cond_read(api_request_t *r, qscan_t *s, struct tv_cond *c, qtoken_t *t, int ident)
{
    qtoken_t v;
    api__qs_next(s, t);
    int re = api__q_op(t, "=~") || api__q_op(t, "!~");
    if (!re && !api__q_op(t, "=") && !api__q_op(t, "!="))
        return 1;
    c->neg = t->text[0] == '!';
    if (re)
        return api__iq_regex(r, s, &c->pattern);
    api__qs_next(s, &v);
    if (!ident && api__q_bad_operand(&v)) /* WHERE device = at the end: influxd's 400 */
        return api__q_operand_error(r, s, &v, 1);
    if (!ident && api__q_bad_literal(r, &v)) /* device = 1e3: influxd's invalid duration */
        return -1;
    if (!ident && v.value == NULL &&
        (v.kind == QT_NUMBER || api__q_is(&v, "TRUE") || api__q_is(&v, "FALSE"))) {
        c->pattern = ""; /* "device = 5": influxd keeps every value (no string to compare) */
        c->nonstring = c->neg ? 2 : 1; /* SHOW MEASUREMENTS: influxd's error, naming the op */
        c->neg = 0;
        return 0;
    }
    if (!ident && v.value == NULL)
        return 2;
    if (ident && v.kind != QT_IDENT) {
        if (v.kind == QT_EOF && s->end_op)
            v.col--; /* influxd places the end right after the operator here (KEY =) */
        api__q_parse_error(r, &v, "identifier");
        return -1;
    }
    c->pattern = api__iq_exact_pattern(s, ident ? v.text : v.value); /* '' is "" */
    if (c->pattern == NULL) {
        api__error(r, 500, "out of memory");
        return -1;
    }
    return 0;
}

static const char *const where_unsupported[] = {
    "WHERE in SHOW TAG VALUES other than = 'id', != 'id', =~ /re/ or !~ /re/ on the device tag, "
    "joined by AND and OR",
    "WHERE in SHOW statements other than tag = 'value', != 'value', =~ /re/ or !~ /re/, joined "
    "by AND and OR"};

/* The state of one WHERE's reading. */
struct where_read {
    api_request_t *r;
    qscan_t *s;
    struct tv_where *w;
    int other_ok;
    const char *unsupported; /* why the reading stopped (NULL: where_unsupported's) */
};

/* Whether math or another comparison follows (device = 'x' * 2: influxd reads on). */
static int math_next(const qscan_t *s)
{
    qscan_t at = *s;
    qtoken_t t;
    api__qs_next(&at, &t);
    return api__q_binary_op(&t) && !api__q_is(&t, "AND") && !api__q_is(&t, "OR");
}

static int read_or(struct where_read *wr, int depth);

/* Whether the condition's right side at s (after '=' or '!=') is an expression that holds no
 * comparison up to the condition's end (AND, OR, ')', a keyword or the end, outside its own
 * parentheses): influxd then reads tag = expression, and SHOW MEASUREMENTS refuses it (right
 * side of '=' must be a tag value string); another comparison is another error of influxd's. */
static int rhs_expression(qscan_t s)
{
    qtoken_t t;
    long depth = 0;
    for (;;) {
        api__qs_next(&s, &t);
        if (t.kind == QT_EOF || t.kind == QT_SEMI || t.kind == QT_BAD)
            return depth == 0;
        if (api__q_op(&t, "(")) {
            depth++;
        } else if (api__q_op(&t, ")")) {
            if (depth-- == 0)
                return 1;
        } else if (depth == 0 && t.kind == QT_KEYWORD && !api__q_is(&t, "TRUE") &&
                   !api__q_is(&t, "FALSE")) {
            return 1;
        } else if (depth == 0 && api__q_binary_op(&t) && !strchr("+-*/%&|^", t.text[0])) {
            return 0; /* a comparison (=, <, =~, ...): "device = 1 > 2" */
        }
    }
}

/* Notes in w->rhs that the reading stops at a condition `tag op expression` (op at s), or at a
 * number compared before it (influxd walks the conditions in order). */
static void note_rhs(struct where_read *wr, const qscan_t *s)
{
    qscan_t at = *s;
    qtoken_t op;
    api__qs_next(&at, &op);
    if ((!api__q_op(&op, "=") && !api__q_op(&op, "!=")) || !rhs_expression(at))
        return;
    wr->w->rhs = op.text[0] == '!' ? 2 : 1;
    for (int i = wr->w->n - 1; i >= 0; i--)
        if (wr->w->c[i].nonstring)
            wr->w->rhs = wr->w->c[i].nonstring;
}

/* Reads a condition or a parenthesized expression. Returns 0, 1 (unsupported), or -1 (parse
 * error answered). */
static int read_primary(struct where_read *wr, int depth)
{
    qscan_t *s = wr->s, at = *s;
    qtoken_t t, name;
    api__qs_next(s, &t);
    if (api__q_op(&t, "(")) {
        if (depth >= TV_DEPTH_MAX) {
            wr->unsupported = "parentheses nested more than 16 deep in a SHOW statement's WHERE";
            return 1;
        }
        int rc = read_or(wr, depth + 1);
        if (rc)
            return rc;
        api__qs_next(s, &t);
        return !api__q_op(&t, ")") || math_next(s);
    }
    *s = at;
    api__qs_next(s, &name);
    int other = name.kind == QT_IDENT && strcmp(name.text, wr->r->srv->device_tag) != 0;
    if (name.kind != QT_IDENT || (other && (!wr->other_ok || strcmp(name.text, "time") == 0)))
        return 1;
    if (wr->w->n >= TV_CONDS_MAX) {
        wr->unsupported = "more than 32 conditions in a SHOW statement's WHERE";
        return 1;
    }
    struct tv_cond *c = &wr->w->c[wr->w->n];
    *c = (struct tv_cond){.other = other, .key = name.text};
    qscan_t op = *s;
    int rc = api__iq_tv_cond_read(wr->r, s, c, &t, 0);
    if (rc == 2 || (rc == 0 && math_next(s)))
        note_rhs(wr, &op);
    if (rc)
        return rc < 0 ? -1 : 1;
    wr->w->code[wr->w->ncode++] = wr->w->n++;
    return math_next(s);
}

/* Reads primaries joined by AND. As read_primary. */
static int read_and(struct where_read *wr, int depth)
{
    int rc = read_primary(wr, depth);
    for (;;) {
        qscan_t at = *wr->s;
        qtoken_t t;
        api__qs_next(wr->s, &t);
        if (rc || !api__q_is(&t, "AND")) {
            *wr->s = at;
            return rc;
        }
        rc = read_primary(wr, depth);
        if (rc == 0)
            wr->w->code[wr->w->ncode++] = TV_AND;
    }
}

/* Reads AND groups joined by OR. As read_primary. */
static int read_or(struct where_read *wr, int depth)
{
    int rc = read_and(wr, depth);
    for (;;) {
        qscan_t at = *wr->s;
        qtoken_t t;
        api__qs_next(wr->s, &t);
        if (rc || !api__q_is(&t, "OR")) {
            *wr->s = at;
            return rc;
        }
        rc = read_and(wr, depth);
        if (rc == 0)
            wr->w->code[wr->w->ncode++] = TV_OR;
    }
}

/* Whether the condition read from start to end compares time as influxd's HasTimeExpr finds it:
 * time (any case, quoted or not) on the left of a comparison that is the condition or one of
 * its parts joined by AND and OR, in parentheses or not, cast or not (time::tag = 'x'; not
 * time + 1 > 0, not 0 < time). A parenthesis opening no part (x = 1 + (2 AND time > 0): an
 * operand's) hides what it holds, as HasTimeExpr walks no operand. */
static int where_time(qscan_t s, const char *end)
{
    static const char *const cmp[] = {"=", "!=", "<>", "<", "<=", ">", ">=", "=~", "!~"};
    qtoken_t t, op;
    int lead = 1;              /* t begins a part: after WHERE, '(', AND or OR */
    long depth = 0, parts = 0; /* parentheses open; how many outer ones open parts */
    while (s.p < end) {
        api__qs_next(&s, &t);
        if (t.kind == QT_EOF)
            break;
        if (api__q_op(&t, "(")) {
            parts += lead && depth == parts;
            depth++;
        } else if (api__q_op(&t, ")") && depth > 0) {
            parts -= depth == parts;
            depth--;
        }
        if (lead && depth == parts && t.kind == QT_IDENT && strcasecmp(t.text, "time") == 0) {
            qscan_t at = s;
            api__qs_next(&at, &op);
            if (api__q_op(&op, "::")) { /* time::tag = 'x': a cast of time's name, still time */
                api__qs_next(&at, &op);
                api__qs_next(&at, &op);
            }
            for (size_t i = 0; i < sizeof cmp / sizeof *cmp; i++)
                if (api__q_op(&op, cmp[i]))
                    return 1;
        }
        lead = api__q_op(&t, "(") || api__q_is(&t, "AND") || api__q_is(&t, "OR");
        if (api__q_op(&t, "=~") || api__q_op(&t, "!~")) { /* skip /re/: "/x AND time > 0/" */
            const char *p = s.p;
            while (p < end && strchr(" \t\r\n", *p))
                p++;
            if (p < end && *p == '/') {
                for (p++; p < end && *p != '/'; p++)
                    p += *p == '\\' && p + 1 < end;
                s.p = p < end ? p + 1 : end;
            }
        }
    }
    return 0;
}

int api__iq_where_time_error(qrun_t *run, const qscan_t *s, const struct tv_where *w,
                             const char *what)
{
    if (what == NULL)
        what = s->card ? s->card_time : NULL;
    if (!w->time || what == NULL)
        return 0;
    api__q_result_error(run, what, " doesn't support time in WHERE clause");
    run->err_rewrite = 1; /* influxd's RewriteStatement refuses it: its result has no id */
    return 1;
}

int api__iq_tv_where_read(api_request_t *r, qscan_t *s, struct tv_where *w,
                          const char **unsupported, int other_ok)
{
    qscan_t at = *s;
    qtoken_t t;
    w->n = w->ncode = w->time = w->rhs = 0;
    api__qs_next(s, &t);
    if (!api__q_is(&t, "WHERE")) {
        *s = at;
        return 0;
    }
    qscan_t start = *s;
    struct where_read wr = {.r = r, .s = s, .w = w, .other_ok = other_ok};
    int rc = read_or(&wr, 0);
    if (rc < 0)
        return rc;
    if (rc > 0) {
        *unsupported = wr.unsupported ? wr.unsupported : where_unsupported[other_ok];
        for (int i = 0; i < w->n && w->rhs == 0; i++) /* device = 5 AND false: walked first */
            w->rhs = w->c[i].nonstring;
        w->n = w->ncode = 0;
        *s = start; /* read on from the WHERE, for influxd's parse errors */
        if (api__iq_skim_condition(r, s))
            return -1;
    }
    w->time = where_time(start, s->p);
    return 0;
}

void api__iq_conds_free(struct dev_conds *d)
{
    for (int i = 0; i < d->n; i++)
        if (d->other[i] < 0)
            regfree(&d->re[i]);
}

int api__iq_conds_compile(qrun_t *run, const struct tv_where *w, int measurements,
                          struct dev_conds *d)
{
    d->n = 0;
    d->code = w->code;
    d->ncode = w->ncode;
    for (int i = 0; i < w->n; i++) {
        const struct tv_cond *c = &w->c[i];
        if (api__iq_regcomp(run, &d->re[i], c->pattern)) {
            api__iq_conds_free(d);
            return 1;
        }
        d->neg[i] = c->neg;
        d->other[i] = -1;
        d->n = i + 1;
        if (c->other) {
            d->other[i] = !measurements && (regexec(&d->re[i], "", 0, NULL, 0) == 0) != c->neg;
            regfree(&d->re[i]);
        }
    }
    return 0;
}

int api__iq_conds_eval(const struct dev_conds *d, const int *leaf)
{
    int stack[TV_CONDS_MAX], top = 0;
    for (int k = 0; k < d->ncode; k++) {
        int op = d->code[k];
        if (op >= 0) {
            stack[top++] = d->other[op] >= 0 ? d->other[op] : leaf[op];
        } else {
            top--;
            stack[top - 1] =
                op == TV_AND ? stack[top - 1] && stack[top] : stack[top - 1] || stack[top];
        }
    }
    return top == 0 || stack[0];
}

int api__iq_conds_pass(const struct dev_conds *d, const char *id)
{
    int leaf[TV_CONDS_MAX];
    for (int i = 0; i < d->n; i++)
        leaf[i] = d->other[i] < 0 && (regexec(&d->re[i], id, 0, NULL, 0) == 0) != d->neg[i];
    return api__iq_conds_eval(d, leaf);
}

int api__iq_tv_key_read(api_request_t *r, qscan_t *s, const char *tag, struct tv_cond *key,
                        int *in_match)
{
    qtoken_t t;
    int rc = api__iq_tv_cond_read(r, s, key, &t, 1);
    if (rc <= 0)
        return rc;
    if (!api__q_is(&t, "IN")) {
        api__q_parse_error(r, &t, "IN, =, =~");
        return -1;
    }
    api__qs_next(s, &t);
    if (!api__q_op(&t, "(")) {
        api__q_parse_error(r, &t, "(");
        return -1;
    }
    *in_match = 0;
    for (;;) {
        api__qs_next(s, &t);
        if (t.kind != QT_IDENT) {
            api__q_parse_error(r, &t, "identifier");
            return -1;
        }
        *in_match |= strcmp(t.text, tag) == 0;
        api__qs_next(s, &t);
        if (api__q_op(&t, ")"))
            return 0;
        if (!api__q_op(&t, ",")) {
            api__q_parse_error(r, &t, ")");
            return -1;
        }
    }
}

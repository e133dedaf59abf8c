/* api/influxql_math.c: literal math in a WHERE condition of /query (influxql_where.c reads the
 * rest), reduced as influxd 1.6.7's reduceBinaryExpr reduces it before it reads a point:
 * integers (Go's int64, wrapping), numbers, durations, strings and booleans joined by + - | ^
 * at one level and * / % & at a higher one, left to right, with parentheses and a unary sign
 * (before a literal, the literal signed; before a parenthesis, -1 times it, as influxd's
 * parser makes it). What influxd leaves unreduced (a BinaryExpr: 1h + 1, 'a' - 'b', 3.0 & 1)
 * is kept as such: no point meets a comparison with it, and time is not compatible with it.
 * An integer past int64 is influxd's unsigned literal: uint64 math with integers (wrapping).
 * An RFC 3339 string plus or minus durations is a time (influxd's TimeLiteral), which only
 * durations may shift. What vigild does not reduce (a duration added to an integer, a time
 * anywhere else) is left to the caller, which answers as before. Comparisons in a row are
 * reduced left to right ('x' =~ /x/ = true).
 * Also the literal helpers the statement's readers share (api__iq_signed_literal, ...).
 *
 * Any thread; no state. */
#include "influxql_select.h"
#include "vtime.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

/* ---- literals (influxql_select_read.c, influxql_where.c and the math below read them) ---- */

/* Whether t is the literal true or false. */
int api__iq_is_bool(const qtoken_t *t)
{
    return api__q_is(t, "TRUE") || api__q_is(t, "FALSE");
}

/* Answers influxd's parse error for a literal t it cannot read (api__q_bad_literal) and
 * returns -1; else 0. */
int api__iq_bad_number(api_request_t *r, const qtoken_t *t)
{
    return api__q_bad_literal(r, t);
}

/* Reads the duration token t into *ns, or answers influxd's parse error for one it refuses
 * (api__q_bad_literal) and returns -1. */
int api__iq_time_duration(api_request_t *r, const qtoken_t *t, int64_t *ns)
{
    *ns = 0;
    return api__q_bad_literal(r, t) || api__q_parse_duration(t->text, ns) ? -1 : 0;
}

/* Whether t is the operator op (a string never is). */
int api__iq_q_op(const qtoken_t *t, const char *op)
{
    return api__q_op(t, op);
}

/* influxd's parseUnaryExpr: a '-' or '+' (t, read from s) before a number or a duration, a
 * blank between them or not, is that literal signed (-1, - 1.5, -1h, +1; -0 is 0; -$x of a bound
 * "-5" is 5). Makes t that literal, placed where its digits are (influxd's errors for them), its
 * text in s's memory, s after it, and returns 1; else 0, s and t as they were. -1 when answered:
 * out of memory, or a negative integer past int64 (influxd's "constant -N underflows int64"). */
int api__iq_signed_literal(api_request_t *r, qscan_t *s, qtoken_t *t)
{
    int neg = api__iq_q_op(t, "-");
    if (!neg && !api__iq_q_op(t, "+"))
        return 0;
    qscan_t at = *s;
    qtoken_t n;
    api__qs_next(&at, &n);
    if (n.kind != QT_NUMBER)
        return 0;
    int was_neg = n.text[0] == '-'; /* a bound parameter's */
    const char *digits = n.text + was_neg;
    int integer = api__q_number_kind(&n) == QN_INTEGER;
    if (neg && !was_neg && integer) {
        errno = 0;
        unsigned long long v = strtoull(digits, NULL, 10);
        if (errno != ERANGE && v > (unsigned long long)INT64_MAX + 1) {
            api__error(r, 400, "error parsing query: constant -%s underflows int64", digits);
            return -1;
        }
    }
    if (neg && was_neg && integer && strcmp(digits, "9223372036854775808") == 0) {
        /* -$x of a bound -2^63: Go's IntegerLiteral.Val *= -1 wraps it to itself */
    } else if (neg == was_neg || (integer && digits[strspn(digits, "0")] == '\0')) {
        n.text = digits; /* -(-5), +5, -0 */
        n.len = strlen(digits);
    } else if (neg) {
        char *text = api__qs_alloc(s, n.len + 2);
        if (text == NULL) {
            api__error(r, 500, "out of memory");
            return -1;
        }
        text[0] = '-';
        memcpy(text + 1, n.text, n.len + 1);
        n.text = text;
        n.len++;
    } /* +(-5): -5 as bound */
    *t = n;
    *s = at;
    return 1;
}

/* ---- literal math -------------------------------------------------------------------------- */

/* Reads one literal operand of math from s, a sign or '(' included. Returns as api__iq_math. */
static int unary(api_request_t *r, qscan_t *s, struct iq_lval *v, int *ops);
/* Reads math at the + - | ^ level (rc as api__iq_math). */
static int sum(api_request_t *r, qscan_t *s, struct iq_lval *v, int *ops);

/* A '(' read (t): the math inside and its ')'. */
static int paren(api_request_t *r, qscan_t *s, const qtoken_t *t, struct iq_lval *v, int *ops)
{
    qtoken_t close;
    if (api__q_nest(r, s, t))
        return -1;
    ++*ops;
    int rc = sum(r, s, v, ops);
    if (rc)
        return rc;
    api__qs_next(s, &close);
    if (!api__iq_q_op(&close, ")"))
        return 1; /* (1 + 1 = 2): a condition, not math */
    s->depth--;
    return 0;
}

static int unary(api_request_t *r, qscan_t *s, struct iq_lval *v, int *ops)
{
    qtoken_t t;
    api__qs_next(s, &t);
    if (api__q_bad_operand(&t))
        return api__q_operand_error(r, s, &t, 1);
    if (api__iq_q_op(&t, "(")) {
        return paren(r, s, &t, v, ops);
    }
    int sign = api__iq_q_op(&t, "-") ? -1 : api__iq_q_op(&t, "+") ? 1 : 0;
    int lit = api__iq_signed_literal(r, s, &t);
    if (lit < 0)
        return -1;
    if (sign && !lit) { /* -(...): influxd's -1 * (...); +(...): (...) */
        qtoken_t n;
        api__qs_next(s, &n);
        if (api__iq_q_op(&n, "-") || api__iq_q_op(&n, "+")) {
            api__q_parse_error(r, &n, "identifier, number, duration, (");
            return -1;
        }
        if (!api__iq_q_op(&n, "("))
            return 1; /* -temp: no literal */
        int rc = paren(r, s, &n, v, ops);
        if (rc || sign > 0)
            return rc;
        if (v->kind == LV_INT || v->kind == LV_UINT) /* -1 * 2^63: uint64 math */
            v->i = (int64_t)(0 - (uint64_t)v->i);
        else if (v->kind == LV_FLOAT)
            v->d = -1 * v->d;
        else if (v->kind == LV_TIME)
            return 1; /* -1 * a time: not reduced here */
        else
            v->kind = LV_NONE; /* -1 * 1h, -1 * 'x': unreduced */
        return 0;
    }
    if (api__iq_bad_number(r, &t))
        return -1;
    v->str = NULL;
    if (t.kind == QT_STRING) {
        v->kind = LV_STR;
        v->str = t.value;
        return 0;
    }
    if (api__iq_is_bool(&t)) {
        v->kind = LV_BOOL;
        v->i = api__q_is(&t, "TRUE");
        return 0;
    }
    if (t.kind != QT_NUMBER)
        return 1;
    if (api__q_number_kind(&t) == QN_DURATION) {
        v->kind = LV_DUR;
        return api__q_parse_duration(t.text, &v->i) ? 1 : 0;
    }
    if (api__q_number_kind(&t) == QN_NUMBER) {
        v->kind = LV_FLOAT;
        v->d = strtod(t.text, NULL);
        return 0;
    }
    errno = 0;
    v->kind = LV_INT;
    v->i = strtoll(t.text, NULL, 10);
    if (errno == ERANGE) { /* past int64: influxd's unsigned literal (past uint64: bad_number) */
        v->kind = LV_UINT;
        v->i = (int64_t)strtoull(t.text, NULL, 10);
    }
    return 0;
}

/* An integer, unsigned integer or number as a double. */
static double as_double(const struct iq_lval *v)
{
    return v->kind == LV_FLOAT ? v->d : v->kind == LV_UINT ? (double)(uint64_t)v->i : (double)v->i;
}

/* The time a (LV_TIME) plus (op '+') or minus d ns, as Go's Time.Add: 0, or 1 (not reduced
 * here) past +-2^62 ns, where the statement's times are held. */
static int time_shift(struct iq_lval *a, char op, int64_t d)
{
    const int64_t lim = (int64_t)1 << 62;
    int64_t t;
    if (op == '-' && d == INT64_MIN)
        return 1;
    if (__builtin_add_overflow(a->i, op == '+' ? d : -d, &t) || t > lim || t < -lim)
        return 1;
    a->i = t;
    return 0;
}

/* a op b as influxd 1.6.7's reduceBinaryExpr: integers wrap (Go's int64), / of two integers is a
 * number (0 when b is 0), % of integers is an integer (0 when b is 0), & | ^ of integers and of
 * booleans (and, or, xor), a number and an integer are numbers, durations add and subtract, a
 * duration times or over an integer or a number (the number made a Duration first, toward
 * zero: 30m * 2.5 is 1h; over 0: 0), strings add (joined). What influxd leaves a BinaryExpr
 * makes a LV_NONE. Returns 0, or 1 when influxd makes a time of it (1 + 1h, 'x' + 1h) or
 * vigild does not know its answer: not reduced here. */
static int apply(qscan_t *s, char op, struct iq_lval *a, const struct iq_lval *b)
{
    int bitwise = op == '&' || op == '|' || op == '^';
    if (a->kind == LV_NONE || b->kind == LV_NONE)
        return a->kind = LV_NONE, 0;
    if (a->kind == LV_TIME || b->kind == LV_TIME)
        return a->kind == LV_TIME && b->kind == LV_DUR && (op == '+' || op == '-')
                   ? time_shift(a, op, b->i)
                   : 1; /* what else influxd does with a time: not reduced here */
    if (a->kind == LV_STR && b->kind == LV_DUR && (op == '+' || op == '-')) {
        int64_t ns; /* influxd's ToTimeLiteral: a time string, else unreduced */
        if (api__iq_time_string(a->str, &ns))
            return 1; /* not reduced here: the caller reads it as before */
        a->kind = LV_TIME;
        a->i = ns;
        return time_shift(a, op, b->i);
    }
    if (a->kind == LV_INT && b->kind == LV_DUR && (op == '+' || op == '-'))
        return 1; /* a time */
    if (a->kind == LV_STR || b->kind == LV_STR) {
        if (a->kind != LV_STR || b->kind != LV_STR || op != '+')
            return a->kind = LV_NONE, 0;
        size_t la = strlen(a->str), lb = strlen(b->str);
        if (la + lb + 1 > API_IQ_JOINED_MAX - s->mem->budget.joined)
            return 1; /* the pass's joins past their bound: not reduced */
        s->mem->budget.joined += la + lb + 1;
        char *joined = api__qs_alloc(s, la + lb + 1);
        if (joined == NULL)
            return 1;
        memcpy(joined, a->str, la);
        memcpy(joined + la, b->str, lb + 1);
        a->str = joined;
        return 0;
    }
    if (a->kind == LV_BOOL || b->kind == LV_BOOL) {
        if (a->kind != LV_BOOL || b->kind != LV_BOOL || !bitwise)
            return a->kind = LV_NONE, 0;
        a->i = op == '&' ? a->i && b->i : op == '|' ? a->i || b->i : a->i != b->i;
        return 0;
    }
    if (a->kind == LV_UINT || b->kind == LV_UINT) {
        /* an unsigned literal with an integer: uint64 math, wrapping (-1 + 2^63 is 2^63 - 1);
         * / is a number's; with a duration unreduced; with a number, below */
        if (a->kind == LV_DUR || b->kind == LV_DUR)
            return a->kind = LV_NONE, 0;
        if (a->kind != LV_FLOAT && b->kind != LV_FLOAT && op != '/') {
            uint64_t x = (uint64_t)a->i, y = (uint64_t)b->i;
            a->i = (int64_t)(op == '+'   ? x + y
                             : op == '-' ? x - y
                             : op == '*' ? x * y
                             : op == '&' ? x & y
                             : op == '|' ? x | y
                             : op == '^' ? x ^ y
                             : y == 0    ? 0
                                         : x % y);
            a->kind = LV_UINT;
            return 0;
        }
        if (bitwise)
            return a->kind = LV_NONE, 0;
    }
    if (bitwise) {
        if (a->kind != LV_INT || b->kind != LV_INT)
            return a->kind = LV_NONE, 0;
        a->i = op == '&' ? a->i & b->i : op == '|' ? a->i | b->i : a->i ^ b->i;
        return 0;
    }
    if (a->kind == LV_DUR || b->kind == LV_DUR) {
        uint64_t x = (uint64_t)a->i, y = (uint64_t)b->i;
        if (a->kind != LV_DUR) /* 2 * 1h, 2 % 1h, 2.0 * 1h, 2.0 / 1h (influxd: no point) */
            return a->kind == LV_FLOAT || op != '/' ? (a->kind = LV_NONE, 0) : 1;
        if (op == '%' || (b->kind == LV_DUR && (op == '*' || op == '/')))
            return a->kind = LV_NONE, 0; /* 1h % 2, 1h % 1h, 1h * 1h: unreduced */
        struct iq_lval n = *b;
        if (b->kind == LV_FLOAT) { /* Go's time.Duration(2.5): 2, toward zero */
            if (!(b->d > -9223372036854775808.0 && b->d < 9223372036854775808.0))
                return 1; /* NaN or past int64: Go's conversion is the machine's */
            n.kind = LV_INT;
            n.i = (int64_t)b->d;
            if (op == '/' && b->d != 0 && n.i == 0)
                return 1; /* 2h / 0.5: influxd divides by a zero Duration */
        }
        if (b->kind == LV_DUR && (op == '+' || op == '-'))
            a->i = (int64_t)(op == '+' ? x + y : x - y);
        else if (b->kind != LV_DUR && (op == '+' || op == '-'))
            a->kind = LV_NONE; /* 1h + 1: unreduced */
        else if (n.kind == LV_INT && op == '*')
            a->i = (int64_t)(x * (uint64_t)n.i);
        else if (n.kind == LV_INT && op == '/')
            a->i = n.i == 0 ? 0 : n.i == -1 ? (int64_t)(0 - x) : a->i / n.i;
        else
            return 1;
        return 0;
    }
    if (a->kind == LV_INT && b->kind == LV_INT && op != '/') {
        uint64_t x = (uint64_t)a->i, y = (uint64_t)b->i;
        a->i = op == '+'                 ? (int64_t)(x + y)
               : op == '-'               ? (int64_t)(x - y)
               : op == '*'               ? (int64_t)(x * y)
               : b->i == 0 || b->i == -1 ? 0 /* Go: x % -1 is 0, also for -2^63 */
                                         : a->i % b->i;
        return 0;
    }
    double x = as_double(a), y = as_double(b);
    a->kind = LV_FLOAT;
    a->d = op == '+'   ? x + y
           : op == '-' ? x - y
           : op == '*' ? x * y
           : op == '/' ? (y == 0 ? 0 : x / y)
                       : fmod(x, y);
    return 0;
}

/* The operator t of a level (high: * / % &; else + - | ^), or 0. */
static char level_op(const qtoken_t *t, int high)
{
    static const char *const ops[2][4] = {{"+", "-", "|", "^"}, {"*", "/", "%", "&"}};
    for (int k = 0; k < 4; k++)
        if (api__iq_q_op(t, ops[high][k]))
            return ops[high][k][0];
    return 0;
}

/* Operands of one level joined by its operators, left to right. */
static int level(api_request_t *r, qscan_t *s, struct iq_lval *v, int *ops, int high)
{
    int rc = high ? unary(r, s, v, ops) : level(r, s, v, ops, 1);
    while (rc == 0) {
        qscan_t at = *s;
        qtoken_t op;
        api__qs_next(s, &op);
        char c = level_op(&op, high);
        if (c == 0) {
            *s = at;
            return 0;
        }
        ++*ops;
        struct iq_lval b;
        rc = high ? unary(r, s, &b, ops) : level(r, s, &b, ops, 1);
        if (rc == 0)
            rc = apply(s, c, v, &b);
    }
    return rc;
}

static int sum(api_request_t *r, qscan_t *s, struct iq_lval *v, int *ops)
{
    return level(r, s, v, ops, 0);
}

int api__iq_math(api_request_t *r, qscan_t *s, struct iq_lval *v, int *ops)
{
    return sum(r, s, v, ops);
}

int api__iq_math_operand(api_request_t *r, qscan_t *s, struct iq_lval *v, int *ops)
{
    return unary(r, s, v, ops);
}

/* Whether comparison k (=, !=, <, <=, >, >= as cmps[] in api__iq_math_comparison) holds for two
 * values of which lt, eq and gt say how they order (all 0 when one is NaN: only != holds, as
 * in Go). */
static int op_met(int k, int lt, int eq, int gt)
{
    switch (k) {
    case 0:
        return eq;
    case 1:
        return !eq;
    case 2:
        return lt;
    case 3:
        return lt || eq;
    case 4:
        return gt;
    default:
        return gt || eq;
    }
}

/* Whether a =~ re (!~: its negation) as influxd matches a string literal: the regex compiled as
 * a device condition's is. Returns 0 or 1, or -1 when vigild cannot compile it. */
static int string_matches(const char *str, const char *re, int neg)
{
    regex_t rx;
    if (api__iq_re_compile(&rx, re) != 0)
        return -1;
    int m = regexec(&rx, str, 0, NULL, 0) == 0;
    regfree(&rx);
    return m != neg;
}

/* Reduces a cmps[k] b (k as in api__iq_math_comparison) into *a as influxd reduces it: a
 * boolean, or LV_NONE where influxd leaves it unreduced (no point meets it): an unreduced side,
 * a string or boolean against another kind or ordered (<, >), a duration against a number. */
static void compare(int k, struct iq_lval *a, const struct iq_lval *b)
{
    int met;
    if (a->kind == LV_NONE || b->kind == LV_NONE) {
        a->kind = LV_NONE;
        return;
    } else if (a->kind == LV_STR || b->kind == LV_STR || a->kind == LV_BOOL || b->kind == LV_BOOL) {
        if (a->kind != b->kind || k >= 2) { /* = and != only */
            a->kind = LV_NONE;
            return;
        }
        int same = a->kind == LV_STR ? strcmp(a->str, b->str) == 0 : a->i == b->i;
        met = same == (k == 0);
    } else if ((a->kind == LV_DUR) != (b->kind == LV_DUR)) {
        a->kind = LV_NONE;
        return;
    } else if (a->kind == LV_FLOAT || b->kind == LV_FLOAT) { /* as Go compares: NaN != NaN */
        double x = as_double(a), y = as_double(b);
        met = op_met(k, x < y, x == y, y < x);
    } else if (a->kind == LV_UINT || b->kind == LV_UINT) {
        /* = by the bits (-1 = 18446744073709551615), the order by value */
        uint64_t x = (uint64_t)a->i, y = (uint64_t)b->i;
        int c = a->kind == LV_INT && a->i < 0   ? -1
                : b->kind == LV_INT && b->i < 0 ? 1
                                                : (x > y) - (x < y);
        met = op_met(k, c < 0, x == y, 0 < c);
    } else {
        met = op_met(k, a->i < b->i, a->i == b->i, b->i < a->i);
    }
    a->kind = LV_BOOL;
    a->i = met;
}

/* a =~ re (neg: !~) into *a, a boolean: influxd matches a string; 1h =~ /x/ and unreduced math
 * meet no point (LV_NONE). Returns 0, 1 (not reduced: past the pass's bound of regexes, or a
 * regex vigild cannot compile), or -1 (answered). */
static int match(api_request_t *r, qscan_t *s, struct iq_lval *a, int neg)
{
    const char *re;
    if (api__iq_regex(r, s, &re))
        return -1;
    if (a->kind != LV_STR) {
        a->kind = LV_NONE;
        return 0;
    }
    if (s->mem->budget.re_literal >= API_IQ_RE_LITERAL_MAX)
        return 1; /* the pass's regexes past their bound: not reduced */
    s->mem->budget.re_literal++;
    int m = string_matches(a->str, re, neg);
    if (m < 0)
        return 1;
    a->kind = LV_BOOL;
    a->i = m;
    return 0;
}

int api__iq_math_comparison(api_request_t *r, qscan_t *s, int *met)
{
    static const char *const cmps[] = {"=", "!=", "<", "<=", ">", ">="};
    const int n_cmps = (int)(sizeof cmps / sizeof cmps[0]);
    const qscan_t start = *s;
    struct iq_lval a, b;
    int ops = 0, n = 0, regex_first = 0;
    int rc = sum(r, s, &a, &ops);
    if (rc || a.kind == LV_TIME) {
        *s = start; /* a time: read as before */
        return rc < 0 ? -1 : 1;
    }
    /* Comparisons in a row are one level to influxd, left to right: 'x' =~ /x/ = true is
     * (true) = true. */
    for (;; n++) {
        const qscan_t at = *s;
        qtoken_t op;
        api__qs_next(s, &op);
        int k = 0;
        while (k < n_cmps && !api__iq_q_op(&op, cmps[k]))
            k++;
        int re_op = api__iq_q_op(&op, "=~") || api__iq_q_op(&op, "!~");
        if (re_op && n == 0 && (a.kind == LV_STR || a.kind == LV_NONE || ops > 0)) {
            rc = match(r, s, &a, op.text[0] == '!');
            if (rc) {
                *s = start;
                return rc < 0 ? -1 : 1;
            }
            regex_first = 1;
            continue;
        }
        if (k == n_cmps) {
            *s = at;
            if (n == 0 ||
                (api__iq_is_binary_op(&op) && !api__q_is(&op, "AND") && !api__q_is(&op, "OR"))) {
                *s = start; /* no comparison, or math vigild does not reduce after one */
                return 1;
            }
            break;
        }
        if (n > 0 && a.kind == LV_NONE) {
            *s = start; /* (1h + 1 = 1) = false: influxd judges it per point; not reduced */
            return 1;
        }
        rc = sum(r, s, &b, &ops);
        if (rc < 0)
            return -1;
        if (rc || b.kind == LV_TIME) {
            *s = start;
            return 1;
        }
        compare(k, &a, &b);
    }
    if (n == 1 && ops == 0 && !regex_first) {
        *s = start; /* no math: literal_comparison (influxql_where.c) reads it */
        return 1;
    }
    *met = a.kind == LV_BOOL && a.i;
    return 0;
}

/* api/influxql_regex.c: the regular expressions of /query (=~ /re/ in SHOW MEASUREMENTS, SHOW TAG
 * VALUES and SELECT's device condition), from the syntax influxd compiles them in (Go's regexp,
 * RE2) to the one vigild compiles them in (glibc's POSIX extended regcomp).
 *
 * Two reasons to translate rather than hand the text to regcomp as written:
 * - Meaning. Grafana's template variables and its users write Go's classes: \d, \w, \s. glibc
 *   reads \d as a plain 'd', so /^pump-\d$/ matched "pump-d" and no pump: a wrong answer, not an
 *   error. Each class becomes its bracket expression; an escape with no POSIX equivalent is an
 *   error naming it, never a different pattern.
 * - Cost. glibc expands a bounded repetition into copies of its operand when it compiles, and
 *   nested ones multiply: ((a{1,100}){1,100}){1,100}, 26 bytes, took 5.3 s and 1.1 GB in
 *   regcomp, and a 249-byte (ab|ab|...){1,1000}, which Go accepts, 3.3 s and 720 MB. Go refuses
 *   a count over 1,000 and nested counts whose product passes 1,000 (influxd's 400 "invalid
 *   repeat count"); vigild refuses those in the same words, and also a pattern that repetitions
 *   would expand by more than RE_EXPANDED_MAX characters (Grafana's patterns, alternations of
 *   device ids, repeat nothing). glibc's regcomp also takes a time that grows with the square
 *   of the alternatives, and of the optional repetitions ('*', '?', {0,n}; 30,000 "a*", a
 *   60 KB pattern, took more than 60 s): RE_ALTERNATIVES_MAX bounds them together.
 *
 * A pattern may be as long as the query (API_IQ_Q_MAX): the translation reads each byte once
 * (a bracket expression at most 256 bytes), and its output is at most API_IQ_RE_OUT bytes.
 *
 * Only the match matters (regexec with REG_NOSUB), so Go's lazy quantifiers (*?) and
 * non-capturing groups (?:...) become their greedy, capturing forms.
 *
 * Below the translation: reading a /regex/ or a bound {"regex": ...} where a statement has one
 * (api__iq_regex), at most API_IQ_RE_UNITS_MAX of cost in one query, and compiling it
 * (api__iq_regcomp). Any thread; no state but the query's (qscan_t, qrun_t). */
#include "influxql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The most characters a pattern's repetitions may add to the characters it is written with once
 * they are expanded (a{1,1000} stands for 1,000 characters, written with 1: it adds 999;
 * (ab){1,100} adds 198). Go's largest count, a{1,1000}, passes; the costliest shapes of this
 * size measured, (a?){1,1000} and ((a|b)*){1,500}, took glibc's regcomp 0.10 s and 31 MB, 0.05 s
 * and 16 MB (docs/reliability.md); at 4,000, ((a|b)*){1,1000} took 0.19 s and 56 MB. A pattern
 * that repeats nothing (Grafana's) adds nothing, however long. */
#define RE_EXPANDED_MAX 1000

/* The most alternatives a pattern may hold, its '|' and one, optional repetitions counted as
 * alternatives too (count_alt): Grafana's "All" over 1,000 devices.
 * glibc's regcomp grows with their square: 1,000 took 0.11 to 0.38 s and 18 to 31 MB (names of 1 to
 * 60 bytes), 2,000 0.61 s and 67 MB, 4,000 2.0 s and 257 MB (docs/reliability.md). */
#define RE_ALTERNATIVES_MAX 1000

/* The most alternatives and optional repetitions one pattern may hold once its repetitions are
 * expanded, as glibc's regcomp compiles them: a group's are counted once per copy (((a?)?){1,500}
 * holds 1,000). RE_ALTERNATIVES_MAX counts each as written, so nested optional groups repeated
 * passed it: (((a?)?)?){1,666} took 0.5 s, 20 nested (a?) repeated {1,1000} 16 s and 50 nested
 * 150 s, each under 1,100 of API_IQ_RE_UNITS_MAX's units then (review of iqwhere). At 1,000,
 * (a?){1,1000} took 0.10 s and 99 nested (a?) repeated {1,10} 0.08 s. */
#define RE_EXPANDED_ALTS_MAX 1000

/* Go's repetition bound (regexp/syntax: maxRepeat) */
#define RE_REPEAT_MAX 1000

struct re_conv {
    const char *p;     /* the next byte of the Go pattern */
    const char *whole; /* the Go pattern (Go's missing-paren error quotes all of it) */
    char *out;         /* the POSIX pattern being written */
    size_t n, size;    /* of out */
    char *err;         /* the reason for a refusal */
    size_t errsize;
    int depth;
    long written; /* the characters the pattern is written with: its atoms, each once */
    long budget;  /* written's upper bound (the pattern's length) + RE_EXPANDED_MAX */
    long alts;    /* the '|' and optional repetitions read (count_alt), the statement's
                   * other patterns' first (alts_before) */
    long alts_before;
    long xalts; /* this pattern's alternatives and optional repetitions, a group's counted once
                 * per copy its repetition makes: at most RE_EXPANDED_ALTS_MAX */
};

/* Appends len bytes of s to the output; on overflow records the error. Returns 0 or -1. */
static int put(struct re_conv *c, const char *s, size_t len)
{
    if (c->n + len >= c->size) {
        snprintf(c->err, c->errsize, "vigild reads regular expressions of at most %zu bytes",
                 c->size - 1);
        return -1;
    }
    memcpy(c->out + c->n, s, len);
    c->n += len;
    c->out[c->n] = '\0';
    return 0;
}

static int too_big(struct re_conv *c)
{
    snprintf(c->err, c->errsize,
             "vigild refuses a regular expression that its repetitions expand past %d characters",
             RE_EXPANDED_MAX);
    return -1;
}

static int refuse(struct re_conv *c, const char *why, const char *at, size_t len)
{
    snprintf(c->err, c->errsize, "%s: `%.*s`", why, (int)len, at);
    return -1;
}

/* What a Go class escape (\d \D \s \S \w \W) stands for: its characters (Go's ASCII sets), and
 * whether it is negated; NULL for any other letter. */
static const char *class_of(char e, int *neg)
{
    *neg = e == 'D' || e == 'S' || e == 'W';
    switch (e) {
    case 'd':
    case 'D':
        return "0-9";
    case 's':
    case 'S':
        return "\t\n\f\r ";
    case 'w':
    case 'W':
        return "0-9A-Za-z_";
    default:
        return NULL;
    }
}

/* The character a Go control escape (\t \n \r \f \v \a) stands for, or 0. */
static char control_of(char e)
{
    static const char from[] = "tnrfva", to[] = "\t\n\r\f\v\a";
    const char *k = e ? strchr(from, e) : NULL;
    return k ? to[k - from] : 0;
}

static int is_punct(char ch)
{
    return ch > ' ' && ch < 0x7f && !(ch >= '0' && ch <= '9') && !(ch >= 'a' && ch <= 'z') &&
           !(ch >= 'A' && ch <= 'Z');
}

/* Reads one character of a bracket expression (after '[' and '^') into *ch: a literal, or an
 * escaped punctuation or control character. A class escape is left to the caller (returns 1). */
static int bracket_char(struct re_conv *c, char *ch)
{
    const char *at = c->p;
    if (*c->p != '\\') {
        *ch = *c->p++;
        return 0;
    }
    char e = c->p[1];
    int neg;
    if (class_of(e, &neg) != NULL)
        return 1;
    if (is_punct(e) || control_of(e)) {
        *ch = is_punct(e) ? e : control_of(e);
        c->p += 2;
        return 0;
    }
    return refuse(c, e ? "vigild does not read this escape in a character class" : "trailing \\",
                  at, e ? 2 : 1);
}

/* Translates a bracket expression (c->p on its '['). POSIX has no escapes inside brackets and
 * gives ']', '^', '-' and '[' meanings by position, so literals of those four are collected and
 * placed where they are literal: ']' first, then the rest, '[', '^', '-' last. */
static int bracket(struct re_conv *c)
{
    const char *start = c->p++;
    int neg = *c->p == '^';
    c->p += neg;
    char body[256];
    size_t nb = 0;
    int rb = 0, lb = 0, caret = 0, dash = 0, first = 1;
    for (; first || *c->p != ']'; first = 0) {
        if (*c->p == '\0')
            return refuse(c, "missing closing ]", start, strlen(start));
        if (c->p[0] == '[' && c->p[1] == ':') { /* [:alpha:]: the same in both syntaxes */
            const char *end = strstr(c->p + 2, ":]");
            if (end == NULL || nb + (size_t)(end + 2 - c->p) >= sizeof body)
                return refuse(c, "invalid character class range", c->p, strlen(c->p));
            memcpy(body + nb, c->p, (size_t)(end + 2 - c->p));
            nb += (size_t)(end + 2 - c->p);
            c->p = end + 2;
            continue;
        }
        const char *at = c->p;
        char lo, hi;
        int rc = bracket_char(c, &lo);
        if (rc < 0)
            return -1;
        if (rc == 1) { /* \d, \s, \w: their characters; a negated one has no POSIX form here */
            int cneg;
            const char *set = class_of(c->p[1], &cneg);
            if (cneg || nb + strlen(set) >= sizeof body)
                return refuse(c, "vigild does not read this escape in a character class", at, 2);
            memcpy(body + nb, set, strlen(set));
            nb += strlen(set);
            c->p += 2;
            continue;
        }
        if (c->p[0] == '-' && c->p[1] != ']' && c->p[1] != '\0') { /* a range lo-hi */
            c->p++;
            const char *hi_at = c->p;
            if (bracket_char(c, &hi) != 0 || strchr("]^-[", lo) || strchr("]^-[", hi) || lo > hi)
                return refuse(c, "vigild does not read this character class range", at,
                              (size_t)(c->p - at) + (c->p == hi_at));
            if (nb + 3 >= sizeof body)
                return refuse(c, "character class too long", start, strlen(start));
            body[nb++] = lo;
            body[nb++] = '-';
            body[nb++] = hi;
            continue;
        }
        int *special = lo == ']'   ? &rb
                       : lo == '[' ? &lb
                       : lo == '^' ? &caret
                       : lo == '-' ? &dash
                                   : NULL;
        if (special != NULL) {
            *special = 1;
        } else if (nb + 1 < sizeof body) {
            body[nb++] = lo;
        } else {
            return refuse(c, "character class too long", start, strlen(start));
        }
    }
    c->p++;
    if (!neg && !rb && nb == 0 && !lb && caret) /* only '^' (and '-'): '^' cannot lead */
        return dash ? put(c, "[-^]", 4) : put(c, "\\^", 2);
    if (put(c, neg ? "[^" : "[", neg ? 2 : 1) || (rb && put(c, "]", 1)) || put(c, body, nb) ||
        (lb && put(c, "[", 1)) || (caret && put(c, "^", 1)) || (dash && put(c, "-", 1)))
        return -1;
    return put(c, "]", 1);
}

/* Translates an escape outside brackets (c->p on its '\'). */
static int escape(struct re_conv *c)
{
    const char *at = c->p;
    char e = c->p[1];
    int neg;
    const char *set = class_of(e, &neg);
    char buf[24];
    c->p += 2;
    if (set != NULL) {
        int n = snprintf(buf, sizeof buf, "[%s%s]", neg ? "^" : "", set);
        return put(c, buf, (size_t)n);
    }
    if (e == 'A' || e == 'z') /* the text's start and end: REG_NEWLINE is not set */
        return put(c, e == 'A' ? "^" : "$", 1);
    if (e == 'b' || e == 'B') /* word boundaries: glibc has both, by Go's ASCII words */
        return put(c, at, 2);
    if (control_of(e)) {
        buf[0] = control_of(e);
        return put(c, buf, 1);
    }
    if (is_punct(e))
        return put(c, at, 2);
    c->p = at;
    if (e == '\0')
        return refuse(c, "trailing backslash at end of expression", at, 1);
    if (strchr("pPQx0", e) != NULL) /* Go reads these (\pL, \Q...\E, \x41, octal); vigild not */
        return refuse(c, "vigild does not read this escape", at, 2);
    return refuse(c, "invalid escape sequence", at, 2);
}

static int alternation(struct re_conv *c, long *cost, long *need);

/* Counts an alternative ('|') or an optional repetition ('*', '?', {0,n}): glibc's regcomp
 * grows with the square of either (a run of 4,000 "a?" or "a*" took 1.1 to 1.5 s and 137 MB,
 * 30,000 more than 60 s). Returns 0, or -1 with the error past RE_ALTERNATIVES_MAX. */
static int count_alt(struct re_conv *c)
{
    c->xalts++;
    if (++c->alts < RE_ALTERNATIVES_MAX)
        return 0;
    if (c->alts_before > 0) /* SHOW TAG VALUES compiles its key's and WHERE's together */
        snprintf(c->err, c->errsize,
                 "vigild reads at most %d alternatives and optional repetitions ('*', '?', "
                 "'{0,n}') in one statement's regular expressions together",
                 RE_ALTERNATIVES_MAX);
    else
        snprintf(c->err, c->errsize,
                 "vigild reads regular expressions of at most %d alternatives and optional "
                 "repetitions ('*', '?', '{0,n}') together",
                 RE_ALTERNATIVES_MAX);
    return -1;
}

/* Reads {m}, {m,} or {m,n} at c->p into *min and *max (-1: none). Returns 1 (read), 0 (not a
 * repetition: Go then reads '{' as a literal). */
static int read_braces(struct re_conv *c, long *min, long *max)
{
    const char *q = c->p + 1;
    char *end;
    if (!(*q >= '0' && *q <= '9'))
        return 0;
    *min = strtol(q, &end, 10);
    *max = *min;
    if (*end == ',') {
        q = end + 1;
        *max = -1;
        if (*q >= '0' && *q <= '9')
            *max = strtol(q, &end, 10);
        else
            end = (char *)q;
    }
    if (*end != '}')
        return 0;
    c->p = end + 1;
    return 1;
}

/* Reads one atom and its quantifiers. *cost: the characters it expands to; *need: Go's check
 * (regexp/syntax repeatIsValid) as the smallest budget its nested counts fit in. */
static int atom(struct re_conv *c, long *cost, long *need)
{
    const char *start = c->p;
    long xalts0 = c->xalts; /* a group's own are what its alternation adds */
    *cost = 1;
    *need = 0;
    if (*c->p == '(') {
        if (++c->depth > 100)
            return refuse(c, "expression nests too deeply", start, 1);
        c->p++;
        if (c->p[0] == '?' && c->p[1] == ':') {
            c->p += 2;
        } else if (c->p[0] == '?' && c->p[1] == 'P' && c->p[2] == '<') {
            const char *end = strchr(c->p, '>');
            if (end == NULL)
                return refuse(c, "invalid named capture", start, strlen(start));
            c->p = end + 1;
        } else if (c->p[0] == '?') {
            return refuse(c, "vigild reads only a leading (?i) of Go's flags", start, 2);
        }
        if (put(c, "(", 1) || alternation(c, cost, need))
            return -1;
        if (*c->p != ')')
            return refuse(c, "missing closing )", c->whole, strlen(c->whole));
        c->p++;
        c->depth--;
        if (put(c, ")", 1))
            return -1;
    } else if (*c->p == '[') {
        if (bracket(c))
            return -1;
    } else if (*c->p == '\\') {
        if (escape(c))
            return -1;
    } else if (*c->p == '{') { /* a '{' that starts no repetition is a literal in Go */
        c->p++;
        if (put(c, "\\{", 2))
            return -1;
    } else if (*c->p == '*' || *c->p == '+' || *c->p == '?') {
        return refuse(c, "missing argument to repetition operator", c->p, 1);
    } else {
        *cost = *c->p != '^' && *c->p != '$'; /* anchors compile to no character */
        if (put(c, c->p, 1))
            return -1;
        c->p++;
    }
    if (*start != '(')
        c->written += *cost; /* a group's atoms counted theirs */
    /* One repetition operator, with Go's lazy '?'. glibc copies the operand for each one it
     * compiles (x+ is x x*, x{2,3} three copies), so the cost is multiplied by the copies; Go
     * refuses a second operator right after (a++, a*{2}), which glibc would copy again: doubling
     * per '+', a run of them took libFuzzer's 10 s. */
    const char *op = c->p;
    long min = 1, max = 1, copies = 1;
    if (*c->p == '*' || *c->p == '+' || *c->p == '?') {
        copies = *c->p == '+' ? 2 : 1;
        c->p++;
    } else if (*c->p == '{' && read_braces(c, &min, &max)) {
        if (min > RE_REPEAT_MAX || max > RE_REPEAT_MAX || (max >= 0 && min > max))
            return refuse(c, "invalid repeat count", op, (size_t)(c->p - op));
        long m = max == 0 ? 0 : max < 0 ? min : max;
        if (m > 0)
            *need = m * (*need > 1 ? *need : 1);
        if (*need > RE_REPEAT_MAX)
            return refuse(c, "invalid repeat count", op, (size_t)(c->p - op));
        copies = max < 0 ? min + 1 : max > 0 ? max : 1;
    } else {
        return 0;
    }
    /* glibc compiles a group's alternatives and optional repetitions once per copy (kept
     * small: one past RE_EXPANDED_ALTS_MAX is refused at the end, after the expansion's test) */
    c->xalts += (c->xalts - xalts0) * (copies - 1);
    if (c->xalts > RE_EXPANDED_ALTS_MAX)
        c->xalts = RE_EXPANDED_ALTS_MAX + 1;
    if ((*op == '*' || *op == '?' || (*op == '{' && min == 0)) && count_alt(c))
        return -1; /* x+ and x{1,n} are cheap: a copy of x first breaks glibc's run */
    if (put(c, op, (size_t)(c->p - op)))
        return -1;
    if (*c->p == '?') /* Go's lazy form: the same matches */
        c->p++;
    *cost *= copies;
    if (*cost > c->budget) /* before the end's exact test: keeps the products small */
        return too_big(c);
    const char *again = c->p;
    if (*c->p == '*' || *c->p == '+' || *c->p == '?' ||
        (*c->p == '{' && read_braces(c, &min, &max))) {
        size_t len = (size_t)(again - op) + (c->p > again ? (size_t)(c->p - again) : 1);
        c->p = op;
        return refuse(c, "invalid nested repetition operator", op, len);
    }
    return 0;
}

/* Reads alternatives up to ')' or the end. *cost: the sum of their atoms' costs; *need: the
 * largest of theirs. */
static int alternation(struct re_conv *c, long *cost, long *need)
{
    *cost = 0;
    *need = 0;
    while (*c->p != '\0' && *c->p != ')') {
        if (*c->p == '|') {
            if (count_alt(c)) /* n '|' make n + 1 alternatives */
                return -1;
            if (put(c, "|", 1))
                return -1;
            c->p++;
            continue;
        }
        long ac, an;
        if (atom(c, &ac, &an))
            return -1;
        *cost += ac;
        if (an > *need)
            *need = an;
        if (*cost > c->budget)
            return too_big(c);
    }
    return 0;
}

/* api__iq_re_translate, and into *units (NULL: not kept) what compiling it costs in
 * API_IQ_RE_UNITS_MAX's units: 1, and 1 for each alternative and optional repetition (a
 * repeated group's once per copy: re_conv.xalts) and each character its repetitions add. */
static int translate(const char *pattern, char *out, size_t size, long *alts, long *units,
                     char *err, size_t errsize)
{
    struct re_conv c = {.p = pattern,
                        .whole = pattern,
                        .out = out,
                        .size = size,
                        .err = err,
                        .errsize = errsize,
                        .budget = (long)strlen(pattern) + RE_EXPANDED_MAX,
                        .alts = alts ? *alts : 0,
                        .alts_before = alts ? *alts : 0};
    long cost, need;
    out[0] = '\0';
    if (strncmp(pattern, "(?i)", 4) == 0) { /* kept: api__iq_regcomp makes it REG_ICASE */
        c.p += 4;
        if (put(&c, "(?i)", 4))
            return -1;
    }
    if (alternation(&c, &cost, &need))
        return -1;
    if (*c.p == ')')
        return refuse(&c, "unexpected )", pattern, strlen(pattern));
    if (cost > c.written + RE_EXPANDED_MAX)
        return too_big(&c);
    if (c.xalts > RE_EXPANDED_ALTS_MAX) {
        snprintf(err, errsize,
                 "vigild reads regular expressions of at most %d alternatives and optional "
                 "repetitions ('*', '?', '{0,n}') together, a repeated group's counted once per "
                 "copy",
                 RE_EXPANDED_ALTS_MAX);
        return -1;
    }
    if (alts != NULL)
        *alts = c.alts;
    if (units != NULL)
        *units = 1 + (cost - c.written) + c.xalts;
    return 0;
}

int api__iq_re_translate(const char *pattern, char *out, size_t size, long *alts, char *err,
                         size_t errsize)
{
    return translate(pattern, out, size, alts, NULL, err, errsize);
}

/* ---- reading and compiling a statement's regexes --------------------------------------------- */

/* Counts units (translate's) for the regex read at place p of the query, once: a place read
 * again is not counted again. Returns 0, or answers vigild's 400 past API_IQ_RE_UNITS_MAX and
 * returns -1. */
static int re_count(api_request_t *r, qscan_t *s, const char *p, long units)
{
    if (s->mem->budget.re_last != NULL && p <= s->mem->budget.re_last)
        return 0;
    s->mem->budget.re_last = p;
    s->mem->budget.re_units += units;
    if (s->mem->budget.re_units <= API_IQ_RE_UNITS_MAX)
        return 0;
    api__error(r, 400,
               "error parsing query: vigild compiles regular expressions of at most %d units in "
               "one query (each 1, and 1 for each alternative, optional repetition and "
               "character its repetitions add)",
               API_IQ_RE_UNITS_MAX);
    return -1;
}

/* A bound {"regex": "..."} (t, read from s to at), as influxd reads it where a regex goes: its
 * pattern as written (no "\/" to undo), its errors placed at the '$'. As api__iq_regex. */
static int bound_regex(api_request_t *r, qscan_t *s, const qscan_t *at, const qtoken_t *t,
                       const char **re)
{
    const char *go = t->text + 1;
    size_t n = t->len - 1;
    long units;
    if (n > API_IQ_Q_MAX - s->mem->budget.re_bound) {
        /* /regex/s are bounded by the query's length, all of them together: so are bound ones,
         * which a query may name again and again ($r in each of 1,500 statements: 1,500
         * translations and regcomps of the same 60 KB) */
        api__error(r, 400,
                   "error parsing query: vigild reads bound regexes of at most %d bytes in all "
                   "in a query",
                   API_IQ_Q_MAX);
        return -1;
    }
    s->mem->budget.re_bound += n;
    char *out = api__qs_alloc(s, API_IQ_RE_OUT(n));
    if (out == NULL) {
        api__error(r, 500, "out of memory");
        return -1;
    }
    *s = *at;
    char why[160];
    if (translate(go, out, API_IQ_RE_OUT(n), &s->re_alts, &units, why, sizeof why) != 0) {
        api__error(r, 400, "error parsing query: error parsing regexp: %s at line %d, char %d", why,
                   t->line, t->col);
        return -1;
    }
    if (re_count(r, s, at->p, units))
        return -1;
    *re = out;
    return 0;
}

int api__iq_bound_regex_value(api_request_t *r, qscan_t *s, const qtoken_t *t)
{
    const qscan_t at = *s;
    const char *re;
    return bound_regex(r, s, &at, t, &re);
}

int api__iq_regex_next(const qscan_t *s)
{
    return s->p[strspn(s->p, " \t\r\n")] == '/';
}

int api__iq_regex_bad_next(api_request_t *r, const qscan_t *s)
{
    if (!api__iq_regex_next(s))
        return 0;
    qscan_t at = *s;
    const char *re;
    return api__iq_regex(r, &at, &re);
}

int api__iq_regex(api_request_t *r, qscan_t *s, const char **re)
{
    /* The regex's own errors are placed, as influxd places them, at the character just before
     * its opening slash (the operator's last, or the last blank): line and char of it. */
    int line = s->line + 1, col = s->col;
    while (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r') {
        line = s->line + 1;
        col = s->col + 1;
        api__qs_step(s); /* the position kept: errors after the regex are placed by it */
    }
    if (*s->p != '/') {
        qscan_t at = *s;
        qtoken_t t;
        api__qs_next(&at, &t); /* placed where it is, the end two after the operator */
        if (t.form == QF_REGEX)
            return bound_regex(r, s, &at, &t, re);
        api__q_parse_error(r, &t, "regex");
        return -1;
    }
    const char *start = s->p, *end = s->p + 1; /* its place (re_count), its closing slash */
    while (*end != '/') {
        if (*end == '\0' || *end == '\n') { /* influxd's BADREGEX, its text empty */
            api__error(r, 400, "error parsing query: bad regex:  at line %d, char %d", line, col);
            return -1;
        }
        end += end[0] == '\\' && end[1] == '/' ? 2 : 1;
    }
    /* The Go text (its "\/" a slash), then its translation: no bound but the query's. */
    size_t span = (size_t)(end - s->p);
    char *go = api__qs_alloc(s, span), *out = api__qs_alloc(s, API_IQ_RE_OUT(span));
    if (go == NULL || out == NULL) {
        api__error(r, 500, "out of memory");
        return -1;
    }
    size_t n = 0;
    for (api__qs_step(s); s->p < end; api__qs_step(s)) {
        if (s->p[0] == '\\' && s->p[1] == '/')
            api__qs_step(s);
        go[n++] = *s->p;
    }
    api__qs_step(s);
    go[n] = '\0';
    s->end_line = s->line; /* the end of input is placed after the regex, one closer as after */
    s->end_col = s->col;   /* a number, as influxd places it (test_influxql.py IqCompat) */
    s->end_number = 1;
    s->end_op = 0;
    /* influxd compiles the regex as it parses, so a bad one is its parse error (400), placed
     * at the opening slash. */
    char why[160];
    long units;
    if (translate(go, out, API_IQ_RE_OUT(n), &s->re_alts, &units, why, sizeof why) != 0) {
        api__error(r, 400, "error parsing query: error parsing regexp: %s at line %d, char %d", why,
                   line, col);
        return -1;
    }
    if (re_count(r, s, start, units))
        return -1;
    *re = out;
    return 0;
}

int api__iq_re_compile(regex_t *re, const char *pattern)
{
    int flags = REG_EXTENDED | REG_NOSUB;
    if (strncmp(pattern, "(?i)", 4) == 0) {
        flags |= REG_ICASE;
        pattern += 4;
    }
    return regcomp(re, pattern, flags) != 0 ? -1 : 0;
}

int api__iq_regcomp(qrun_t *run, regex_t *re, const char *pattern)
{
    if (api__iq_re_compile(re, pattern) != 0)
        return api__q_result_error(run, "vigild cannot read the regular expression ",
                                   strncmp(pattern, "(?i)", 4) == 0 ? pattern + 4 : pattern);
    return 0;
}

/* api/parse_lp.c: InfluxDB v1 line protocol into a batch_t, plus the shared error list.
 *
 * A line is scanned once, left to right, without copying it: the measurement, tags and fields
 * are kept as spans of the caller's buffer (in their escaped form) and a point is only added to
 * the batch once the whole line, timestamp included, has parsed. So a bad line leaves the batch
 * untouched, and nothing is allocated per line unless it has more tags or fields than the small
 * arrays on the stack hold.
 *
 * Escaping follows InfluxDB 1.x: in the measurement "\," and "\ "; in tag keys, tag values and
 * field keys "\," "\=" and "\ "; in string field values "\"" and "\\". A backslash before any
 * other character is literal. Because an unescaped delimiter can never appear inside a span, a
 * span's escaped form is already canonical, and the series key used as the device id is built
 * from spans as they are ("cpu,host=a,region=b", tags sorted by their escaped key bytes).
 *
 * lp_parse splits a body on '\n', except inside a string field value, which may hold newlines
 * as in InfluxDB 1.x; lines are still numbered by '\n', so error line numbers match an editor's.
 * Only lines that contain a '"' pay for that check.
 *
 * Threading: any thread, pure (no globals, no I/O); the batch is the caller's. */
#include "parse.h"
#include "err.h"
#include "vtime.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tags and fields held on the stack; a line with more moves to the heap. */
#define TAGS_INLINE   16
#define FIELDS_INLINE 32

/* How much of a bad line an error message quotes. */
#define QUOTE_MAX 80

/* Longest float token handed to strtod; a longer one is refused (Clinger's fast path below
 * takes shorter and zero-padded numbers without a copy). */
#define NUMBER_MAX 128

typedef struct span {
    const char *p;
    size_t len;
    int esc; /* contains a backslash, so may need unescaping */
} span_t;

typedef struct tag {
    span_t k, v;
} tag_t;

typedef struct field {
    span_t k;
    double v;
} field_t;

/* A line's tags and fields: inline arrays with a heap fallback. */
typedef struct scratch {
    tag_t *tags;
    size_t ntags, tags_cap;
    field_t *fields;
    size_t nfields, fields_cap;
    tag_t tags_inline[TAGS_INLINE];
    field_t fields_inline[FIELDS_INLINE];
} scratch_t;

void parse_errors_add(parse_errors_t *errs, uint32_t item, const char *fmt, ...)
{
    if (errs->count < UINT32_MAX)
        errs->count++;
    if (errs->kept >= PARSE_ERRORS_KEEP)
        return;
    parse_error_t *e = &errs->e[errs->kept++];
    e->item = item;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

int lp_precision_parse(const char *s, lp_precision_t *out)
{
    if (s == NULL || strcmp(s, "") == 0 || strcmp(s, "n") == 0 || strcmp(s, "ns") == 0)
        *out = LP_NS;
    else if (strcmp(s, "u") == 0 || strcmp(s, "us") == 0)
        *out = LP_US;
    else if (strcmp(s, "ms") == 0)
        *out = LP_MS;
    else if (strcmp(s, "s") == 0)
        *out = LP_S;
    else if (strcmp(s, "m") == 0)
        *out = LP_M;
    else if (strcmp(s, "h") == 0)
        *out = LP_H;
    else
        return ERR_INVAL;
    return 0;
}

/* Writes a reason into errmsg and returns ERR_INVAL. */
static int fail(char *errmsg, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *errmsg, size_t errsize, const char *fmt, ...)
{
    if (errmsg != NULL && errsize > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, errsize, fmt, ap);
        va_end(ap);
    }
    return ERR_INVAL;
}

/* Makes room for one more element in an inline-or-heap array. */
static int reserve(void **arr, size_t *cap, size_t n, size_t sz, const void *inline_buf)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap * 2;
    void *p;
    if (*arr == inline_buf) {
        p = malloc(ncap * sz);
        if (p != NULL)
            memcpy(p, *arr, n * sz);
    } else {
        p = realloc(*arr, ncap * sz);
    }
    if (p == NULL)
        return ERR_NOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

static void scratch_init(scratch_t *s)
{
    s->tags = s->tags_inline;
    s->ntags = 0;
    s->tags_cap = TAGS_INLINE;
    s->fields = s->fields_inline;
    s->nfields = 0;
    s->fields_cap = FIELDS_INLINE;
}

static void scratch_deinit(scratch_t *s)
{
    if (s->tags != s->tags_inline)
        free(s->tags);
    if (s->fields != s->fields_inline)
        free(s->fields);
}

/* Characters a backslash escapes in tag keys, tag values and field keys. */
static int is_key_esc(char c)
{
    return c == ',' || c == ' ' || c == '=';
}

/* Scans a measurement, tag key, tag value or field key from p[i] up to the first unescaped
 * ',' or ' ' (or '=' when stop_eq) or the end; an escaped pair is skipped whole. The
 * measurement's escapes are "\," and "\ " only, but as '=' is no delimiter there, treating
 * "\=" as a pair changes nothing. */
static size_t scan_name(const char *p, size_t i, size_t end, int stop_eq, span_t *out)
{
    /* Bytes that need a look: the delimiters, '=' and the backslash. Everything else is
     * skipped by one table load, which keeps this loop (the parser's hottest) short. */
    static const unsigned char special[256] = {[','] = 1, [' '] = 1, ['='] = 2, ['\\'] = 4};
    unsigned stop = stop_eq ? 3 : 1;
    size_t start = i;
    int esc = 0;
    while (i < end) {
        unsigned k = special[(unsigned char)p[i]];
        if (k == 0) {
            i++;
            continue;
        }
        if (k & stop)
            break;
        if (k == 4) {
            esc = 1;
            i += (i + 1 < end && is_key_esc(p[i + 1])) ? 2 : 1;
            continue;
        }
        i++;
    }
    out->p = p + start;
    out->len = i - start;
    out->esc = esc;
    return i;
}

/* Unescapes a key or tag value span into buf (capacity cap). Returns the length, or cap + 1
 * when it does not fit. */
static size_t unescape(const span_t *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->p[i];
        if (c == '\\' && i + 1 < s->len && is_key_esc(s->p[i + 1]))
            c = s->p[++i];
        if (n == cap)
            return cap + 1;
        buf[n++] = c;
    }
    return n;
}

/* Whether the span, unescaped, equals the NUL-terminated s. */
static int span_equals(const span_t *sp, const char *s, size_t slen)
{
    if (!sp->esc)
        return sp->len == slen && memcmp(sp->p, s, slen) == 0;
    char buf[BATCH_NAME_MAX + 1];
    size_t n = unescape(sp, buf, sizeof buf);
    return n <= sizeof buf && n == slen && memcmp(buf, s, slen) == 0;
}

/* Byte order of two spans, as Go's bytes.Compare. */
static int span_cmp(const span_t *a, const span_t *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);
    if (c != 0)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

static int tag_cmp(const void *a, const void *b)
{
    return span_cmp(&((const tag_t *)a)->k, &((const tag_t *)b)->k);
}

/* Sorts tags by key unless already sorted (the usual case: clients send them sorted), then
 * rejects a repeated key. Returns 0 or ERR_INVAL. */
static int tags_sort(tag_t *t, size_t n)
{
    size_t i = 1;
    while (i < n && span_cmp(&t[i - 1].k, &t[i].k) < 0)
        i++;
    if (i >= n)
        return 0;
    if (n <= TAGS_INLINE) {
        for (i = 1; i < n; i++) {
            tag_t x = t[i];
            size_t j = i;
            for (; j > 0 && span_cmp(&t[j - 1].k, &x.k) > 0; j--)
                t[j] = t[j - 1];
            t[j] = x;
        }
    } else {
        qsort(t, n, sizeof *t, tag_cmp);
    }
    for (i = 1; i < n; i++)
        if (span_cmp(&t[i - 1].k, &t[i].k) == 0)
            return ERR_INVAL;
    return 0;
}

/* Parses decimal digits p[0..len) into a uint64. Returns 0, ERR_INVAL (empty, or not a digit)
 * or ERR_RANGE (overflow). */
static int parse_u64(const char *p, size_t len, uint64_t *out)
{
    if (len == 0)
        return ERR_INVAL;
    uint64_t v = 0;
    int over = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(p[i] - '0');
        if (d > 9)
            return ERR_INVAL;
        over |= __builtin_mul_overflow(v, 10, &v);
        over |= __builtin_add_overflow(v, d, &v);
    }
    if (over)
        return ERR_RANGE;
    *out = v;
    return 0;
}

/* Parses a decimal int64 from p[0..len): an optional '-', then digits. Returns 0, ERR_INVAL or
 * ERR_RANGE. */
static int parse_i64(const char *p, size_t len, int64_t *out)
{
    int neg = len > 0 && p[0] == '-';
    uint64_t u;
    int rc = parse_u64(p + neg, len - (size_t)neg, &u);
    if (rc)
        return rc;
    if (u > (uint64_t)INT64_MAX + (uint64_t)neg)
        return ERR_RANGE;
    /* Negated in unsigned arithmetic, so INT64_MIN's magnitude does not overflow. */
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

/* Parses a float as InfluxDB writes them, [-]digits[.digits][(e|E)[+|-]digits] with digits on
 * at least one side of the point ("1.", ".5"); no "nan", "inf", hex or '+'. Returns 0,
 * ERR_INVAL (syntax) or ERR_RANGE (overflows a double; underflow to zero or a subnormal is
 * accepted, as in InfluxDB).
 *
 * Most sensor values have few digits, so they take Clinger's fast path: a mantissa below 2^53
 * and a power of ten up to 10^22 are both exact doubles, so one IEEE multiply or divide rounds
 * correctly and gives the very double strtod would. Anything else goes to strtod (the daemon
 * runs in the C locale, so '.' is the decimal point), on a terminated copy of the token. */
static int parse_float(const char *p, size_t len, double *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t i = 0, digits = 0;
    int neg = 0, exact = 1;
    uint64_t m = 0;
    int64_t e10 = 0;
    if (i < len && p[i] == '-') {
        neg = 1;
        i++;
    }
    for (int frac = 0; i < len; i++) {
        unsigned d = (unsigned)(p[i] - '0');
        if (d > 9) {
            if (p[i] != '.' || frac)
                break;
            frac = 1;
            continue;
        }
        digits++;
        if (m < (UINT64_C(1) << 53) / 10 - 1)
            m = m * 10 + d;
        else
            exact = 0; /* too many digits for the fast path */
        e10 -= frac;
    }
    if (digits == 0)
        return ERR_INVAL;
    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < len && (p[i] == '+' || p[i] == '-'))
            eneg = p[i++] == '-';
        size_t e0 = i;
        int64_t e = 0;
        for (; i < len && p[i] >= '0' && p[i] <= '9'; i++)
            if (e < 100000)
                e = e * 10 + (p[i] - '0');
        if (i == e0)
            return ERR_INVAL;
        e10 += eneg ? -e : e;
    }
    if (i != len)
        return ERR_INVAL;
#if FLT_EVAL_METHOD == 0
    if (exact && e10 >= -22 && e10 <= 22) {
        double v = (double)m;
        v = e10 < 0 ? v / pow10[-e10] : v * pow10[e10];
        *out = neg ? -v : v;
        return 0;
    }
#endif
    char buf[NUMBER_MAX];
    if (len >= sizeof buf)
        return ERR_INVAL;
    memcpy(buf, p, len);
    buf[len] = '\0';
    double v = strtod(buf, NULL);
    if (!isfinite(v))
        return ERR_RANGE;
    *out = v;
    return 0;
}

/* Parses the number token p[0..len) (float, 12i or 12u) into *v. Returns 0 or ERR_INVAL with
 * the reason in errmsg. */
static int parse_number(const char *p, size_t len, double *v, char *errmsg, size_t errsize)
{
    int rc;
    if (len > 0 && p[len - 1] == 'i') {
        int64_t x = 0;
        rc = parse_i64(p, len - 1, &x);
        *v = (double)x;
    } else if (len > 0 && p[len - 1] == 'u') {
        uint64_t x = 0;
        rc = parse_u64(p, len - 1, &x);
        *v = (double)x;
    } else {
        rc = parse_float(p, len, v);
    }
    if (rc == ERR_RANGE)
        return fail(errmsg, errsize, "value out of range");
    if (rc)
        return fail(errmsg, errsize, "invalid number");
    return 0;
}

/* Whether p[0..len) is one of InfluxDB's boolean spellings; *v gets 1 or 0. */
static int parse_bool(const char *p, size_t len, double *v)
{
    static const char *const t[] = {"t", "T", "true", "True", "TRUE"};
    static const char *const f[] = {"f", "F", "false", "False", "FALSE"};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (strlen(t[i]) == len && memcmp(t[i], p, len) == 0) {
            *v = 1;
            return 1;
        }
        if (strlen(f[i]) == len && memcmp(f[i], p, len) == 0) {
            *v = 0;
            return 1;
        }
    }
    return 0;
}

/* ms from a timestamp in the given precision: finer units by floor division, coarser ones
 * multiplied after a range check (so the product cannot overflow). Returns 0 or ERR_RANGE. */
static int ts_to_ms(int64_t t, lp_precision_t prec, int64_t *ms)
{
    static const int64_t per_unit[] = {[LP_S] = 1000, [LP_M] = 60000, [LP_H] = 3600000};
    int64_t v;
    if (prec >= LP_S) {
        int64_t k = per_unit[prec];
        if (t < VTIME_MIN_MS / k || t > VTIME_MAX_MS / k)
            return ERR_RANGE;
        v = t * k;
    } else {
        int64_t div = prec == LP_NS ? 1000000 : prec == LP_US ? 1000 : 1;
        v = t / div;
        if (t % div != 0 && t < 0)
            v--;
    }
    if (v < VTIME_MIN_MS || v > VTIME_MAX_MS)
        return ERR_RANGE;
    *ms = v;
    return 0;
}

/* For a timestamp t past 9999 in its declared unit: the coarsest finer unit in which t is a time
 * vigil keeps, named with precision= as /write and /api/v2/write both take it (NULL if none).
 * precision=ms with Go's or Python's nanoseconds is 1.7e18 ms; as ns it is 2024. A coarser
 * unit being past 9999, the time found lies after 1973 (1000 or 60 times 9999's 2.5e14 ms
 * apart): a plausible clock, no coincidence. The stream's nanoseconds never pass 9999 (int64
 * ends in 2262), so it gets no hint. */
static const char *finer_unit(int64_t t, lp_precision_t prec)
{
    static const char *const names[] = {[LP_NS] = "nanoseconds: declare precision=ns",
                                        [LP_US] = "microseconds: declare precision=us",
                                        [LP_MS] = "milliseconds: declare precision=ms",
                                        [LP_S] = "seconds: declare precision=s",
                                        [LP_M] = "minutes: declare precision=m"};
    int64_t ms;
    for (int u = (int)prec - 1; u >= LP_NS; u--)
        if (ts_to_ms(t, (lp_precision_t)u, &ms) == 0)
            return names[u];
    return NULL;
}

/* The error for t, a timestamp in an implied unit (nanoseconds) before 1973-03-03T09:46:40Z: the
 * date it would be, the unit it looks like (the coarsest in which it lies from 1973-03-03 on, 1e8
 * s; none below 1e8, a counter more likely than a clock) and the fix. Returns ERR_INVAL. */
static int implied_too_early(int64_t t, lp_unit_t unit, char *errmsg, size_t errsize)
{
    static const struct {
        int64_t lo, ns_per; /* from lo on, the unit of ns_per nanoseconds is meant */
        const char *name, *param;
    } units[] = {{100000000000000LL, 1000, "microseconds", "us"},
                 {100000000000LL, 1000000, "milliseconds", "ms"},
                 {100000000LL, 1000000000, "seconds", "s"}};
    int u = -1;
    for (int k = 0; k < 3; k++)
        if (t >= units[k].lo) {
            u = k;
            break;
        }
    char date[32];
    vtime_format(t / 1000000, date, sizeof date);
    int stream = unit == LP_UNIT_IMPLIED_STREAM;
    const char *as = stream ? "the stream's unit" : "no precision given";
    if (u < 0)
        return fail(errmsg, errsize,
                    "timestamp %lld as nanoseconds (%s) is %s, before 1973-03-03T09:46:40Z: send a "
                    "real time or none%s",
                    (long long)t, as, date, stream ? "" : " (precision=ns stores it as it is)");
    if (stream) {
        char ns[40] = ""; /* the nanoseconds to send, when int64 holds them (until 2262) */
        if (t <= INT64_MAX / units[u].ns_per)
            snprintf(ns, sizeof ns, " (%lld)", (long long)(t * units[u].ns_per));
        return fail(
            errmsg, errsize,
            "timestamp %lld as nanoseconds (the stream's unit) is %s, before 1973-03-03T09:46:40Z: "
            "looks like epoch %s: send nanoseconds%s or no timestamp",
            (long long)t, date, units[u].name, ns);
    }
    return fail(
        errmsg, errsize,
        "timestamp %lld as nanoseconds (no precision given) is %s, before 1973-03-03T09:46:40Z: "
        "looks like epoch %s: declare precision=%s",
        (long long)t, date, units[u].name, units[u].param);
}

/* Builds the series key "measurement,k1=v1,k2=v2" from sorted tags into buf. Returns its
 * length, or BATCH_NAME_MAX + 1 when it is longer than a device id may be. */
static size_t series_key(const span_t *m, const tag_t *tags, size_t ntags, char *buf)
{
    size_t n = m->len;
    if (n > BATCH_NAME_MAX)
        return BATCH_NAME_MAX + 1;
    memcpy(buf, m->p, n);
    for (size_t i = 0; i < ntags; i++) {
        const tag_t *t = &tags[i];
        if (n + 2 + t->k.len + t->v.len > BATCH_NAME_MAX)
            return BATCH_NAME_MAX + 1;
        buf[n++] = ',';
        memcpy(buf + n, t->k.p, t->k.len);
        n += t->k.len;
        buf[n++] = '=';
        memcpy(buf + n, t->v.p, t->v.len);
        n += t->v.len;
    }
    return n;
}

/* Scans the fields from p[i]; on success *pos is just past the field set. String fields are
 * checked and skipped. Returns 0, ERR_INVAL (errmsg set) or ERR_NOMEM. */
static int scan_fields(const char *p, size_t i, size_t end, scratch_t *s, size_t *pos, char *errmsg,
                       size_t errsize)
{
    for (;;) {
        span_t k;
        i = scan_name(p, i, end, 1, &k);
        if (i == end || p[i] != '=') {
            if (k.len == 0)
                return fail(errmsg, errsize, "missing field key");
            return fail(errmsg, errsize, "invalid field format");
        }
        if (k.len == 0)
            return fail(errmsg, errsize, "missing field key");
        i++; /* '=' */
        if (i == end || p[i] == ' ' || p[i] == ',')
            return fail(errmsg, errsize, "missing field value");
        if (p[i] == '"') {
            /* A string: skipped, so any backslash pair can be stepped over whole. */
            for (i++; i < end && p[i] != '"'; i++)
                if (p[i] == '\\')
                    i++;
            if (i >= end)
                return fail(errmsg, errsize, "unbalanced quotes");
            i++;
            if (i < end && p[i] != ' ' && p[i] != ',')
                return fail(errmsg, errsize, "invalid field format");
        } else {
            size_t v0 = i;
            while (i < end && p[i] != ' ' && p[i] != ',')
                i++;
            double v = 0;
            char c = p[v0];
            if (c == 't' || c == 'T' || c == 'f' || c == 'F') {
                if (!parse_bool(p + v0, i - v0, &v))
                    return fail(errmsg, errsize, "invalid boolean");
            } else if (parse_number(p + v0, i - v0, &v, errmsg, errsize)) {
                return ERR_INVAL;
            }
            if (reserve((void **)&s->fields, &s->fields_cap, s->nfields, sizeof *s->fields,
                        s->fields_inline))
                return ERR_NOMEM;
            s->fields[s->nfields].k = k;
            s->fields[s->nfields].v = v;
            s->nfields++;
        }
        if (i == end || p[i] == ' ')
            break;
        i++; /* ',' */
    }
    *pos = i;
    return 0;
}

/* Parses a line whose leading whitespace and trailing CR are gone; fills s. */
static int parse_line(batch_t *b, const char *p, size_t end, const lp_opts_t *opts, int64_t now_ms,
                      uint32_t lineno, scratch_t *s, char *errmsg, size_t errsize)
{
    span_t m;
    size_t i = scan_name(p, 0, end, 0, &m);
    if (m.len == 0)
        return fail(errmsg, errsize, "missing measurement");
    while (i < end && p[i] == ',') {
        tag_t t;
        i = scan_name(p, i + 1, end, 1, &t.k);
        if (i == end || p[i] != '=') {
            if (t.k.len == 0)
                return fail(errmsg, errsize, "missing tag key");
            return fail(errmsg, errsize, "missing tag value");
        }
        if (t.k.len == 0)
            return fail(errmsg, errsize, "missing tag key");
        i = scan_name(p, i + 1, end, 1, &t.v);
        if (i < end && p[i] == '=')
            return fail(errmsg, errsize, "invalid tag format");
        if (t.v.len == 0)
            return fail(errmsg, errsize, "missing tag value");
        if (reserve((void **)&s->tags, &s->tags_cap, s->ntags, sizeof *s->tags, s->tags_inline))
            return ERR_NOMEM;
        s->tags[s->ntags++] = t;
    }
    while (i < end && p[i] == ' ')
        i++;
    if (i == end)
        return fail(errmsg, errsize, "missing fields");
    int rc = scan_fields(p, i, end, s, &i, errmsg, errsize);
    if (rc)
        return rc;

    int64_t ts_ms = now_ms;
    while (i < end && p[i] == ' ')
        i++;
    if (i < end) {
        size_t t0 = i;
        while (i < end && p[i] != ' ')
            i++;
        int64_t t;
        if (parse_i64(p + t0, i - t0, &t))
            return fail(errmsg, errsize, "bad timestamp");
        while (i < end && p[i] == ' ')
            i++;
        if (i < end)
            return fail(errmsg, errsize, "bad timestamp");
        if (opts->unit != LP_UNIT_DECLARED && t >= 0 && t < LP_IMPLIED_NS_MIN)
            return implied_too_early(t, opts->unit, errmsg, errsize);
        if (ts_to_ms(t, opts->precision, &ts_ms)) {
            const char *hint = t > 0 ? finer_unit(t, opts->precision) : NULL;
            return fail(errmsg, errsize, "timestamp out of range: before 1970 or after 9999%s%s",
                        hint ? "; looks like epoch " : "", hint ? hint : "");
        }
    }

    if (tags_sort(s->tags, s->ntags))
        return fail(errmsg, errsize, "duplicate tags");

    /* The device: the device tag's value, else the series key. */
    const char *dtag = opts->device_tag ? opts->device_tag : "device";
    size_t dtag_len = strlen(dtag);
    char dev_buf[BATCH_NAME_MAX + 1];
    const char *dev = NULL;
    size_t dev_len = 0;
    const char *why = "";
    for (size_t k = 0; k < s->ntags; k++) {
        const span_t *v = &s->tags[k].v;
        if (!span_equals(&s->tags[k].k, dtag, dtag_len))
            continue;
        if (v->esc) {
            dev_len = unescape(v, dev_buf, sizeof dev_buf);
            dev = dev_buf;
        } else {
            dev = v->p;
            dev_len = v->len;
        }
        if (dev_len > BATCH_NAME_MAX || batch_name_check(dev, dev_len, &why))
            return fail(errmsg, errsize, "invalid %s tag: %s", dtag,
                        dev_len > BATCH_NAME_MAX ? "is longer than 200 bytes" : why);
        break;
    }
    if (dev == NULL) {
        dev_len = series_key(&m, s->tags, s->ntags, dev_buf);
        dev = dev_buf;
        if (dev_len > BATCH_NAME_MAX)
            return fail(errmsg, errsize, "series key is longer than %d bytes", BATCH_NAME_MAX);
        if (batch_name_check(dev, dev_len, &why))
            return fail(errmsg, errsize, "invalid series key: %s", why);
    }

    /* Check every field key before the batch is touched, so a bad line adds nothing. */
    char key_buf[BATCH_NAME_MAX + 1];
    for (size_t k = 0; k < s->nfields; k++) {
        const span_t *fk = &s->fields[k].k;
        const char *name = fk->p;
        size_t len = fk->len;
        if (fk->esc) {
            len = unescape(fk, key_buf, sizeof key_buf);
            name = key_buf;
        }
        if (len > BATCH_NAME_MAX || batch_name_check(name, len, &why))
            return fail(errmsg, errsize, "invalid field key: %s",
                        len > BATCH_NAME_MAX ? "is longer than 200 bytes" : why);
    }
    if (s->nfields == 0)
        return 0; /* only string fields: accepted, nothing to store */

    if (batch_point_begin(b, dev, dev_len, ts_ms, lineno))
        return ERR_NOMEM;
    for (size_t k = 0; k < s->nfields; k++) {
        const span_t *fk = &s->fields[k].k;
        const char *name = fk->p;
        size_t len = fk->len;
        if (fk->esc) {
            len = unescape(fk, key_buf, sizeof key_buf);
            name = key_buf;
        }
        if (batch_field_add(b, name, len, s->fields[k].v)) {
            batch_point_abort(b);
            return ERR_NOMEM;
        }
    }
    batch_point_commit(b);
    return 0;
}

/* lp_parse_line's work. Returns 1 for a line that parsed (a point added, or string fields
 * only), 0 for a blank or comment line, ERR_INVAL or ERR_NOMEM. */
static int line_parse(batch_t *b, const char *line, size_t len, const lp_opts_t *opts,
                      int64_t now_ms, uint32_t lineno, char *errmsg, size_t errsize)
{
    static const lp_opts_t defaults = {"device", LP_NS, 0, LP_UNIT_DECLARED};
    if (opts == NULL)
        opts = &defaults;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    /* Worded as the stream's error for a line it stopped buffering (daemon/stream.c), so a
     * client reads the one bound whichever of the two found the line too long. */
    if (opts->max_line > 0 && len > opts->max_line)
        return fail(errmsg, errsize, "line longer than %zu bytes", opts->max_line);
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len || line[i] == '#')
        return 0;
    scratch_t s;
    scratch_init(&s);
    int rc = parse_line(b, line + i, len - i, opts, now_ms, lineno, &s, errmsg, errsize);
    scratch_deinit(&s);
    return rc ? rc : 1;
}

int lp_parse_line(batch_t *b, const char *line, size_t len, const lp_opts_t *opts, int64_t now_ms,
                  uint32_t lineno, char *errmsg, size_t errsize)
{
    int rc = line_parse(b, line, len, opts, now_ms, lineno, errmsg, errsize);
    return rc > 0 ? 0 : rc;
}

/* Length of the line at s when it may hold a quoted string field with newlines inside: ends at
 * the first '\n' outside a string. A string starts at a '"' right after an unescaped '=' in
 * the field set (as in InfluxDB's scanLine). *inner gets the number of newlines inside. */
static size_t quoted_line_len(const char *s, size_t rem, uint32_t *inner)
{
    size_t i = 0;
    *inner = 0;
    /* The measurement and tags end at the first unescaped space. */
    while (i < rem && s[i] != ' ') {
        if (s[i] == '\n')
            return i;
        i += (s[i] == '\\' && i + 1 < rem && is_key_esc(s[i + 1])) ? 2 : 1;
    }
    int after_eq = 0;
    while (i < rem) {
        char c = s[i];
        if (c == '\n')
            return i;
        if (c == '\\' && i + 1 < rem && is_key_esc(s[i + 1])) {
            i += 2;
            after_eq = 0;
            continue;
        }
        if (c == '"' && after_eq) {
            uint32_t nl = 0;
            for (i++; i < rem && s[i] != '"'; i++) {
                if (s[i] == '\\' && i + 1 < rem)
                    i++;
                nl += s[i] == '\n';
            }
            *inner += nl;
            if (i < rem)
                i++;
            after_eq = 0;
            continue;
        }
        after_eq = c == '=';
        i++;
    }
    return i;
}

/* Quotes a bad line (without its leading blanks, as InfluxDB quotes it, and without its CR) for
 * its error message into buf, of QUOTE_MAX + 1 bytes: the whole line when it takes at most
 * max (at most QUOTE_MAX) bytes quoted, else as much of it as fits in max - 3 and "...". A NUL
 * byte becomes a backslash and a 0 (two bytes of the quote): the message is a C string, so the
 * quote would otherwise end there and show a line that parses; counting them keeps the quote as
 * short as before, so the reason after it fits the message. A cut falls between UTF-8
 * characters. */
static void quote_line(char *buf, const char *s, size_t n, size_t max)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    if (n > 0 && s[n - 1] == '\r')
        n--;
    size_t width = n;
    for (size_t i = 0; i < n; i++)
        width += s[i] == '\0';
    const size_t room = width > max ? max - 3 : max;
    size_t i = 0, o = 0;
    for (; i < n && o + 1 + (s[i] == '\0') <= room; i++) {
        if (s[i] == '\0')
            buf[o++] = '\\';
        buf[o++] = s[i] == '\0' ? '0' : s[i];
    }
    /* Cut before a UTF-8 character, not inside it: its first bytes alone would show as U+FFFD in
     * the answer (api__json_str). At most 3 bytes back (a sequence's continuation bytes). */
    for (int k = 0; k < 3 && i < n && i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80; k++) {
        i--;
        o -= s[i] == '\0' ? 2 : 1;
    }
    if (i < n)
        for (const char *m = "..."; *m; m++)
            buf[o++] = *m;
    buf[o] = '\0';
}

int lp_parse(batch_t *b, const char *body, size_t len, const lp_opts_t *opts, int64_t now_ms,
             uint32_t first_lineno, parse_errors_t *errs)
{
    uint32_t lineno = first_lineno;
    size_t pos = 0;
    /* As long as a message: an implied unit's reason (up to 173 bytes) lost its fix at 160, at 200
     * with the threshold's time. */
    char why[sizeof errs->e[0].msg];
    while (pos < len) {
        const char *s = body + pos;
        size_t rem = len - pos;
        const char *nl = memchr(s, '\n', rem);
        size_t n = nl ? (size_t)(nl - s) : rem;
        uint32_t inner = 0;
        if (memchr(s, '"', n) != NULL) {
            size_t lead = 0;
            while (lead < n && (s[lead] == ' ' || s[lead] == '\t'))
                lead++;
            if (lead < n && s[lead] != '#') {
                n = lead + quoted_line_len(s + lead, rem - lead, &inner);
                /* An unclosed string ran to the end: the body's final newline is not its. */
                if (n == rem && s[n - 1] == '\n') {
                    n--;
                    inner--;
                }
            }
        }
        int rc = line_parse(b, s, n, opts, now_ms, lineno, why, sizeof why);
        if (rc == ERR_NOMEM)
            return rc;
        if (rc > 0) {
            if (errs->parsed < UINT32_MAX)
                errs->parsed++;
        } else if (rc) {
            /* The reason is what the client must read: a long one (a 63-byte
             * influx.device_tag naming a device too long) shortens the quote, not itself. */
            static const char frame[] = "unable to parse '': ";
            const size_t used = sizeof frame + strlen(why);
            const size_t fits = used < sizeof errs->e[0].msg ? sizeof errs->e[0].msg - used : 0;
            char quote[QUOTE_MAX + 1];
            quote_line(quote, s, n, fits < 8 ? 8 : fits > QUOTE_MAX ? QUOTE_MAX : fits);
            parse_errors_add(errs, lineno, "unable to parse '%s': %s", quote, why);
        }
        lineno += 1 + inner;
        pos += n + 1;
    }
    return 0;
}

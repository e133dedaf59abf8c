/* common/vtime.c: the clocks (and a wall clock held back when it leaps forward), RFC 3339
 * parsing and formatting of millisecond timestamps. Any thread. */
#include "vtime.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int64_t vtime_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vtime_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vtime_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double vtime_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t vtime_boot_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vtime_steady_seed(vtime_steady_t *g, int64_t wall, int64_t mono)
{
    atomic_store_explicit(&g->offset, wall - mono, memory_order_relaxed);
    atomic_store_explicit(&g->ahead_since, 0, memory_order_relaxed);
    atomic_store_explicit(&g->set, 1, memory_order_release);
}

int64_t vtime_steady_now(vtime_steady_t *g, int64_t wall, int64_t mono, int *event)
{
    if (event)
        *event = VTIME_STEADY_SAME;
    if (!atomic_load_explicit(&g->set, memory_order_acquire)) {
        atomic_store_explicit(&g->offset, wall - mono, memory_order_relaxed);
        atomic_store_explicit(&g->set, 1, memory_order_release);
        return wall;
    }
    const int64_t held = mono + atomic_load_explicit(&g->offset, memory_order_relaxed);
    if (wall - held <= VTIME_STEADY_SLACK_MS) { /* behind (a step back) or about right */
        atomic_store_explicit(&g->offset, wall - mono, memory_order_relaxed);
        atomic_store_explicit(&g->ahead_since, 0, memory_order_relaxed);
        return wall;
    }
    int64_t since = atomic_load_explicit(&g->ahead_since, memory_order_relaxed);
    if (since == 0) {
        if (atomic_compare_exchange_strong(&g->ahead_since, &since, mono > 0 ? mono : 1) && event)
            *event = VTIME_STEADY_HELD;
        return held;
    }
    if (mono - since < VTIME_STEADY_HOLD_MS)
        return held;
    if (atomic_compare_exchange_strong(&g->ahead_since, &since, 0)) {
        atomic_store_explicit(&g->offset, wall - mono, memory_order_relaxed);
        if (event)
            *event = VTIME_STEADY_TAKEN;
    }
    return wall;
}

int64_t vtime_stamp_at(vtime_stamp_t *g, int64_t wall, int64_t mono, int64_t *stepped)
{
    if (stepped)
        *stepped = 0;
    if (!g->set) {
        g->set = 1;
        g->last = wall;
        return wall;
    }
    if (wall < g->last - VTIME_STAMP_CATCHUP_MAX_MS) { /* also while catching up on another */
        if (stepped)
            *stepped = g->last - wall;
        g->catching_up = 0;
        g->last = wall; /* too far to catch up on: the wall clock at once */
        return wall;
    }
    int64_t t = wall;
    if (g->catching_up) {
        const int64_t s = g->anchor + (mono - g->anchor_mono) / 2;
        if (wall >= s)
            g->catching_up = 0; /* caught up: the wall clock again */
        else
            t = s;
    } else if (wall < g->last) {
        if (stepped)
            *stepped = g->last - wall;
        /* From the millisecond after the newest given: that one may hold a reading. */
        g->catching_up = 1;
        g->anchor = g->last + 1;
        g->anchor_mono = mono;
        t = g->anchor;
    }
    if (t < g->last) /* never back (two threads' clock readings taken in the other order) */
        t = g->last;
    g->last = t;
    return t;
}

/* vtime_stamp_sync_t's word: the newest stamp t and the slow bit, as t * 2 + slow. */
static int64_t stamp_word(int64_t t, int slow)
{
    return t * 2 + (slow ? 1 : 0);
}

static int64_t stamp_last(int64_t word)
{
    return (word - (word & 1)) / 2;
}

/* vtime_stamp_ms took a mutex for every reading without a timestamp: in a stream ingest of
 * timestamp-less lines (4 loopback connections, about 3 million lines a second, the loop
 * thread parsing every one) the lock and unlock were 15% of the loop thread's samples (the clock
 * reading 17%). The common case needs no lock: the stamp is the wall clock, and the newest stamp
 * only has to move forward, which one compare-and-swap does (after: no lock in the profile). */
int64_t vtime_stamp_take(vtime_stamp_sync_t *s, vtime_clock_fn wall, vtime_clock_fn mono, void *arg,
                         int64_t *stepped)
{
    if (stepped)
        *stepped = 0;
    int64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    while ((w & 1) == 0) {
        /* The clock read after w: the newest stamp came from a clock reading taken before, so
         * the wall clock is behind it only when it stepped back (the slow path's to judge). */
        const int64_t last = stamp_last(w), t = wall(arg);
        if (t < last)
            break;
        if (t == last ||
            atomic_compare_exchange_weak_explicit(&s->word, &w, stamp_word(t, 0),
                                                  memory_order_acq_rel, memory_order_acquire))
            return t;
        /* w is the newer word now (another call's stamp, or the slow bit): again */
    }
    pthread_mutex_lock(&s->mu);
    int64_t t;
    for (;;) {
        /* A call on the fast path may still advance the word until the slow bit is set, so
         * the new state is published by a compare-and-swap, and computed again, clocks read
         * again, when the word moved meanwhile. With the slow bit set only this path changes
         * it. */
        w = atomic_load_explicit(&s->word, memory_order_acquire);
        vtime_stamp_t g = s->g;
        g.last = stamp_last(w);
        const int64_t now = wall(arg);
        t = vtime_stamp_at(&g, now, mono(arg), stepped);
        if (atomic_compare_exchange_strong_explicit(&s->word, &w, stamp_word(g.last, g.catching_up),
                                                    memory_order_acq_rel, memory_order_acquire)) {
            s->g = g;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return t;
}

static int64_t clock_wall(void *arg)
{
    (void)arg;
    return vtime_now_ms();
}

static int64_t clock_mono(void *arg)
{
    (void)arg;
    return vtime_boot_ms();
}

int64_t vtime_stamp_ms(void)
{
    static vtime_stamp_sync_t sync = VTIME_STAMP_SYNC_INIT;
    int64_t stepped;
    const int64_t t = vtime_stamp_take(&sync, clock_wall, clock_mono, NULL, &stepped);
    if (stepped > VTIME_STAMP_CATCHUP_MAX_MS) {
        log_warn("time: the wall clock stepped back by %.3f s, more than %d h: readings without a "
                 "timestamp are stamped by it at once (a device's readings then become its "
                 "timeline after a few; one stamped on the very millisecond of a reading stamped "
                 "before the step replaces it)",
                 (double)stepped / 1000.0, (int)(VTIME_STAMP_CATCHUP_MAX_MS / 3600000));
    } else if (stepped >= 1000) {
        char at[80]; /* room for any year vtime_format may write */
        log_warn("time: the wall clock stepped back by %.3f s: readings without a timestamp are "
                 "stamped from %s on, advancing at half speed until the clock catches up (in "
                 "%.0f s), so none replaces a reading stamped before the step",
                 (double)stepped / 1000.0, vtime_format(t, at, sizeof at),
                 2.0 * (double)stepped / 1000.0);
    }
    return t;
}

int vtime_digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int64_t vtime_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* vtime_parse_rfc3339 without the range check: *ms may lie before 1970 or after 9999 by the
 * offset (a year of 1969 or 10000 is taken when the offset brings it within). */
static int rfc3339_unchecked(const char *s, size_t len, int64_t *ms)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return ERR_INVAL;
    int y = vtime_digits(s, 4), mo = vtime_digits(s + 5, 2), d = vtime_digits(s + 8, 2);
    int h = vtime_digits(s + 11, 2), mi = vtime_digits(s + 14, 2), sec = vtime_digits(s + 17, 2);
    if (y < 1969 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || sec < 0 || sec > 60)
        return ERR_INVAL;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return ERR_INVAL;
    /* A leap second has no millisecond of its own in Unix time. Folded onto second 59 (as this
     * parser once did), a reading at 23:59:60 silently replaced the one at 23:59:59 of its
     * channel; mapped to 23:59:59.999, the readings of a sensor faster than 1 Hz within the leap
     * second would replace each other. Refused, the client is told which item and why, as Go's
     * time.Parse (InfluxDB's) and InfluxQL here refuse it. Checked after the syntax, so a
     * malformed string is reported as such. */
    int leap = sec == 60;
    size_t i = 19;
    int frac_ms = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            if (i - start < 3)
                frac_ms = frac_ms * 10 + (s[i] - '0');
        if (i == start)
            return ERR_INVAL;
        for (size_t k = i - start; k < 3; k++)
            frac_ms *= 10;
    }
    int64_t offset_min = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh = vtime_digits(s + i + 1, 2), om = vtime_digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return ERR_INVAL;
        offset_min = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
        i += 6;
    } else {
        return ERR_INVAL;
    }
    if (i != len)
        return ERR_INVAL;
    if (leap)
        return ERR_RANGE;
    int64_t secs =
        vtime_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *ms = secs * 1000 + frac_ms;
    return 0;
}

int vtime_parse_rfc3339(const char *s, size_t len, int64_t *ms)
{
    int64_t v;
    int rc = rfc3339_unchecked(s, len, &v);
    if (rc)
        return rc;
    if (v < VTIME_MIN_MS || v > VTIME_MAX_MS)
        return ERR_INVAL;
    *ms = v;
    return 0;
}

/* Where the offset of s, a date and a time "YYYY-MM-DDxhh:mm:ss" of len bytes, begins: after the
 * seconds and a fraction; 0 when s does not begin so. */
static size_t offset_at(const char *s, size_t len)
{
    if (len < 19 || vtime_digits(s, 4) < 0 || s[4] != '-' || vtime_digits(s + 5, 2) < 0 ||
        s[7] != '-' || vtime_digits(s + 8, 2) < 0 || vtime_digits(s + 11, 2) < 0 || s[13] != ':' ||
        vtime_digits(s + 14, 2) < 0 || s[16] != ':' || vtime_digits(s + 17, 2) < 0)
        return 0;
    size_t i = 19;
    if (i < len && s[i] == '.')
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            ;
    return i;
}

/* Whether the n bytes at o are an offset without its colon (ISO 8601's basic "+0100", or "+01"),
 * its sign one of signs. */
static int offset_colonless(const char *o, size_t n, const char *signs)
{
    return (n == 5 || n == 3) && strchr(signs, o[0]) != NULL &&
           vtime_digits(o + 1, (int)n - 1) >= 0;
}

/* vtime_rfc3339_why's answer, or NULL for VTIME_RFC3339_WHY (nothing more to say). */
static const char *rfc3339_reason(const char *s, size_t len, int rc)
{
    int64_t v;
    if (rc == ERR_RANGE)
        return VTIME_LEAP_SECOND_WHY;
    /* Well formed, but outside by its offset ("1970-01-01T00:30:00+01:00" is 1969-12-31 in
     * UTC): say so, instead of calling it not a timestamp. */
    if (rfc3339_unchecked(s, len, &v) == 0 && v < VTIME_MIN_MS)
        return "before 1970-01-01T00:00:00Z once its offset is applied: vigil keeps Unix time "
               "from 1970 on";
    if (rfc3339_unchecked(s, len, &v) == 0 && v > VTIME_MAX_MS)
        return "after 9999-12-31T23:59:59.999Z once its offset is applied";
    /* A date and a time that are otherwise fine, or a date alone: say which part is missing or
     * wrong, first, the mistakes a person makes writing one by hand (a day without its time; a
     * local time without a zone, which vigil does not guess; another separator). A space for
     * the 'T' stays accepted (RFC 3339 5.6's NOTE; vigild took it from the start), so it is not
     * named. */
    int date = len >= 10 && vtime_digits(s, 4) >= 0 && s[4] == '-' && vtime_digits(s + 5, 2) >= 0 &&
               s[7] == '-' && vtime_digits(s + 8, 2) >= 0;
    /* A year and month ("2026-12"), or a day of one digit: the date cut short (session 49). */
    if (len > 5 && len < 10 && vtime_digits(s, 4) >= 0 && s[4] == '-' &&
        strspn(s + 5, "0123456789-") == len - 5)
        return "an incomplete date: give year-month-day, a time and an offset, as in "
               "2026-11-28T10:00:00Z; " VTIME_RFC3339_NOT;
    if (date && len == 10)
        return "no time after the date: add one and its offset, as in "
               "2026-11-28T10:00:00Z; " VTIME_RFC3339_NOT;
    const size_t i = offset_at(s, len);
    if (i > 0) {
        if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
            return "'T' expected between date and time, as in "
                   "2026-11-28T10:00:00Z; " VTIME_RFC3339_NOT;
        if (i == len && s[len - 1] != '.')
            return "no offset after the time: add Z (UTC) or +hh:mm; " VTIME_RFC3339_NOT;
        /* "+0100" (ISO 8601's basic form, what strftime's %z writes) is not RFC 3339's; not
         * taken (session 50): JSON's ts, maintenance periods and InfluxQL refuse it alike. */
        if (offset_colonless(s + i, len - i, "+-"))
            return "an offset without its colon: write +hh:mm, as in "
                   "2026-11-28T10:00:00+01:00; " VTIME_RFC3339_NOT;
    }
    return NULL;
}

const char *vtime_rfc3339_why(const char *s, size_t len, int rc)
{
    const char *why = rfc3339_reason(s, len, rc);
    return why != NULL ? why : VTIME_RFC3339_WHY;
}

int vtime_rfc3339_formed(const char *s, size_t len, int rc)
{
    int64_t v;
    return rc == ERR_RANGE || rfc3339_unchecked(s, len, &v) == 0;
}

const char *vtime_epoch_hint(int is_int, int64_t iv, double dv, char *buf, size_t size)
{
    double v = is_int ? (double)iv : dv;
    int64_t div;
    const char *unit;
    if (v > (double)VTIME_MAX_MS * 1e3 && v <= (double)VTIME_MAX_MS * 1e6) {
        unit = "nanoseconds";
        div = 1000000;
    } else if (v > (double)VTIME_MAX_MS && v <= (double)VTIME_MAX_MS * 1e3) {
        unit = "microseconds";
        div = 1000;
    } else {
        return NULL;
    }
    long long ms = is_int ? (long long)(iv / div) : (long long)floor(dv / (double)div);
    snprintf(buf, size, "looks like epoch %s: send milliseconds, e.g. %lld", unit, ms);
    return buf;
}

/* The one rule of vtime_parse (and so of vtime_parse_param and vtime_parse_why): a time that
 * holds a 'T', 't' or ':' is RFC 3339; anything else is read as a number of epoch ms. */
static int parses_as_rfc3339(const char *s)
{
    return strpbrk(s, "Tt:") != NULL;
}

/* Reads s as a decimal number as a user types one (an optional sign, digits, a fraction, an
 * exponent) into *v: returns strtod's errno (0, or ERANGE past a double's range: 1e400, *v
 * +-HUGE_VAL, or below its smallest normal number: 1e-400, *v 0, 1e-310, *v subnormal), or -1
 * when s is not one. strtod alone would also take spaces, hex digits, inf and nan: none of them
 * gets here. */
static int decimal_read(const char *s, double *v)
{
    if (*s == '\0' || strspn(s, "0123456789+-.eE") != strlen(s))
        return -1;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && *end == '\0' ? errno : -1;
}

/* Whether s is a decimal number as a user types one, with its finite value in *v. */
static int decimal_number(const char *s, double *v)
{
    return decimal_read(s, v) == 0 && isfinite(*v);
}

/* vtime_parse_why's answer for the decimal number s of value d that was refused. */
static const char *number_why(const char *s, double d, char *buf, size_t size)
{
    if (d < 0) {
        snprintf(buf, size, VTIME_BEFORE_1970_WHY);
    } else if (vtime_looks_like_secs(d)) {
        snprintf(buf, size, VTIME_SECS_WHY "; send milliseconds, e.g. %lld", llround(d * 1000));
    } else if (d > (double)VTIME_MAX_MS) {
        /* Digits alone are scaled as an integer (exact); past int64 there is nothing to say. */
        int is_int = strspn(s, "0123456789") == strlen(s);
        long long iv = 0;
        char hint[VTIME_EPOCH_HINT_MAX];
        errno = 0;
        if (is_int)
            iv = strtoll(s, NULL, 10);
        if (errno != 0 || vtime_epoch_hint(is_int, iv, d, hint, sizeof hint) == NULL)
            snprintf(buf, size, VTIME_AFTER_9999_WHY);
        else
            snprintf(buf, size, "after 9999 as epoch milliseconds; %s", hint);
    } else if (d != floor(d)) {
        snprintf(buf, size, "not a whole number of milliseconds");
    } else {
        snprintf(buf, size, "not an integer: send milliseconds as digits, e.g. %lld", (long long)d);
    }
    return buf;
}

/* Whether s, past an optional sign, is word in any case followed by nothing or by one of rest. */
static int word_is(const char *s, const char *word, const char *rest)
{
    s += *s == '+' || *s == '-';
    size_t n = strlen(word);
    return strncasecmp(s, word, n) == 0 && (s[n] == '\0' || strchr(rest, s[n]) != NULL);
}

/* vtime_parse_why's answers for what is neither a decimal number nor RFC 3339 but was most
 * likely meant as a time (session 49: each got the caller's general words), or NULL. */
static const char *other_why(const char *s, const char *num, char *buf, size_t size)
{
    static const struct {
        const char *unit;
        double per_ms; /* the unit in ms; 0: not a unit epoch times are counted in */
    } units[] = {{"ms", 1}, {"s", 1000}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"ns", 1e-6}, {"m", 0},
                 {"h", 0},  {"d", 0},    {"w", 0}};
    size_t len = strlen(s);
    double d;
    if (len > 0 && strchr(" \t\n\v\f\r", s[len - 1]) != NULL)
        return "white space at its end: send the time alone, epoch milliseconds or RFC 3339";
    /* "2026-11-28T10:00:00 01:00": the offset's '+' typed into a query string is a space. */
    if (len >= 25 && vtime_digits(s, 4) >= 0 && s[4] == '-' && s[len - 6] == ' ' &&
        vtime_digits(s + len - 5, 2) >= 0 && s[len - 3] == ':' && vtime_digits(s + len - 2, 2) >= 0)
        return "a space before the offset: a '+' in a query string is a space; send it as %2B, "
               "e.g. %2B01:00";
    /* "2026-11-28T10:00:00 0100" (session 50): both mistakes of "+0100" typed unencoded. */
    size_t o = offset_at(s, len);
    if (o > 0 && offset_colonless(s + o, len - o, " "))
        return "a space and an offset without its colon: a '+' in a query string is a space; "
               "send %2B and hh:mm, e.g. %2B01:00";
    if (word_is(num, "now", "+-("))
        return "relative times (now, now-1h) are not taken: send epoch milliseconds or RFC 3339; "
               "a bound left out is open";
    if (word_is(num, "inf", "") || word_is(num, "infinity", "") || word_is(num, "nan", "("))
        return "not a finite number: " VTIME_MS_RANGE;
    /* Past a double's range, or below its smallest normal number: ERANGE on 1e-310 too (a
     * subnormal, *v > 0 but far below 1 ms: no time after 9999). */
    if (!parses_as_rfc3339(s) && decimal_read(num, &d) == ERANGE)
        return d <= -1.0  ? VTIME_BEFORE_1970_WHY
               : d >= 1.0 ? VTIME_AFTER_9999_WHY
                          : "not a whole number of milliseconds";
    /* A number and a unit ("1796000000s", "1733300000000ms"): the number alone is taken as ms. */
    size_t digits = strspn(num, "0123456789");
    for (size_t i = 0; digits > 0 && i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(num + digits, units[i].unit) != 0)
            continue;
        errno = 0;
        double ms = strtod(num, NULL) * units[i].per_ms;
        if (units[i].per_ms == 0 || errno != 0 || ms < (double)VTIME_MIN_MS ||
            ms > (double)VTIME_MAX_MS)
            return "a unit after the number: send epoch milliseconds as digits alone, or RFC "
                   "3339 (relative times are not taken)";
        snprintf(buf, size,
                 "a unit after the number: send epoch milliseconds as digits alone, "
                 "e.g. %lld",
                 (long long)floor(ms));
        return buf;
    }
    return NULL;
}

/* Whether the number s of value v (read by vtime_parse) is a time of 1970's first day (below
 * VTIME_SECS_LO) written with a sign or white space before it ("+0100", " 0100": a query's '+'
 * is a space). Digits alone there stay taken: tests and examples write small times so. */
static int signed_first_day(const char *s, double v)
{
    return *s != '\0' && strchr("+- \t\n\v\f\r", *s) != NULL && v >= 0 &&
           v < (double)VTIME_SECS_LO && v == floor(v);
}

const char *vtime_parse_why(const char *s, int rc, char *buf, size_t size)
{
    /* vtime_parse reads a number with strtoll, which skips leading white space: a query's '+'
     * is one ("from=+1796000000" arrives as " 1796000000"), so the number is read after it. */
    const char *num = s + strspn(s, " \t\n\v\f\r");
    double d;
    const char *why = other_why(s, num, buf, size);
    if (why != NULL)
        return why;
    if (!parses_as_rfc3339(s) && decimal_number(num, &d)) {
        if (signed_first_day(s, d))
            return *s == '+' || *s == '-' ? VTIME_SIGN_FIRST_DAY_WHY : VTIME_SPACE_FIRST_DAY_WHY;
        return number_why(num, d, buf, size);
    }
    return rfc3339_reason(s, strlen(s), rc);
}

int vtime_parse(const char *s, int64_t *ms)
{
    if (s == NULL || *s == '\0')
        return ERR_INVAL;
    if (parses_as_rfc3339(s))
        return vtime_parse_rfc3339(s, strlen(s), ms);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < VTIME_MIN_MS || v > VTIME_MAX_MS)
        return ERR_INVAL;
    *ms = v;
    return 0;
}

int vtime_parse_param(const char *s, int64_t *ms)
{
    int64_t v;
    int rc = vtime_parse(s, &v);
    if (rc != 0)
        return rc;
    /* exact: v is at most VTIME_MAX_MS < 2^53 */
    if (!parses_as_rfc3339(s) &&
        (vtime_looks_like_secs((double)v) || signed_first_day(s, (double)v)))
        return ERR_INVAL;
    *ms = v;
    return 0;
}

int vtime_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"", 1},          {"ms", 1},         {"s", 1000},       {"m", 60000},
                 {"h", 3600000LL}, {"d", 86400000LL}, {"w", 604800000LL}};
    if (s == NULL || *s < '0' || *s > '9') /* strtoll alone would take a sign or a space */
        return ERR_INVAL;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno != 0)
        return ERR_INVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) != 0)
            continue;
        if (n > INT64_MAX / units[i].ms)
            return ERR_INVAL;
        *ms = n * units[i].ms;
        return 0;
    }
    return ERR_INVAL;
}

void vtime_format_duration(int64_t ms, char *buf, size_t size)
{
    static const struct {
        char unit;
        int64_t ms;
    } units[] = {{'w', 604800000}, {'d', 86400000}, {'h', 3600000}, {'m', 60000}, {'s', 1000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms % units[i].ms == 0) {
            snprintf(buf, size, "%lld%c", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    snprintf(buf, size, "%lldms", (long long)ms);
}

char *vtime_format(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return buf;
}

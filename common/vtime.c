/* common/vtime.c: the clocks (and a wall clock held back when it leaps forward), RFC 3339
 * parsing and formatting of millisecond timestamps. Any thread. */
#include "vtime.h"
#include "err.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int vtime_parse_rfc3339(const char *s, size_t len, int64_t *ms)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return ERR_INVAL;
    int y = vtime_digits(s, 4), mo = vtime_digits(s + 5, 2), d = vtime_digits(s + 8, 2);
    int h = vtime_digits(s + 11, 2), mi = vtime_digits(s + 14, 2), sec = vtime_digits(s + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 || mi < 0 ||
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
    int64_t v = secs * 1000 + frac_ms;
    if (v < VTIME_MIN_MS || v > VTIME_MAX_MS)
        return ERR_INVAL;
    *ms = v;
    return 0;
}

int vtime_parse(const char *s, int64_t *ms)
{
    if (s == NULL || *s == '\0')
        return ERR_INVAL;
    if (strchr(s, 'T') || strchr(s, 't') || strchr(s, ':'))
        return vtime_parse_rfc3339(s, strlen(s), ms);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < VTIME_MIN_MS || v > VTIME_MAX_MS)
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

char *vtime_format(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return buf;
}

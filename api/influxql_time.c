/* api/influxql_time.c: InfluxQL's time strings (time > '2024-01-02'), read as influxd 1.6.7
 * reads a string compared with time (influxql's StringLiteral.ToTimeLiteral, with the Go time
 * package it was built with): a date alone, YYYY-MM-DD, is its midnight UTC; a date and more is
 * "YYYY-MM-DD H[H]:MM:SS[.frac]" (DateTimeFormat, UTC) or RFC 3339 with T and a zone,
 * "YYYY-MM-DDTH[H]:MM:SS[.frac](Z|+HH:MM|-HH:MM)". A fraction has 1 to 9 digits after '.' or
 * ','; the time keeps every nanosecond of it. Hour 0-23, minute and second 0-59 (no leap
 * second), the day within its month; an offset's two fields are any two digits, as that Go
 * reads them.
 *
 * Any thread; no state. */
#include "influxql.h"
#include "vtime.h"

#include <stdint.h>
#include <string.h>

/* Reads YYYY-MM-DD at s into *days. Returns 0, or -1 (no valid date). */
static int read_date(const char *s, int64_t *days)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = vtime_digits(s, 4), m = vtime_digits(s + 5, 2), d = vtime_digits(s + 8, 2);
    if (y < 0 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return -1;
    if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return -1;
    *days = vtime_days_from_civil(y, m, d);
    return 0;
}

/* Reads H[H]:MM:SS[(.|,)frac] at *p into *secs and *frac_ns, *p moved past it. Returns 0, or
 * -1. */
static int read_clock(const char **p, int64_t *secs, int64_t *frac_ns)
{
    const char *s = *p;
    int hlen = s[0] != '\0' && s[1] == ':' ? 1 : 2; /* s[1] only when s[0] is no end */
    int h = vtime_digits(s, hlen);
    s += hlen;
    if (h < 0 || h > 23 || s[0] != ':')
        return -1;
    int mi = vtime_digits(s + 1, 2); /* each read stops at the end: a digit's test fails on '\0' */
    if (mi < 0 || mi > 59 || s[3] != ':')
        return -1;
    int sec = vtime_digits(s + 4, 2);
    if (sec < 0 || sec > 59)
        return -1;
    s += 6;
    *secs = h * 3600 + mi * 60 + sec;
    *frac_ns = 0;
    if ((s[0] == '.' || s[0] == ',') && s[1] >= '0' && s[1] <= '9') {
        int n = 0;
        for (s++; *s >= '0' && *s <= '9'; s++, n++)
            if (n < 9)
                *frac_ns = *frac_ns * 10 + (*s - '0');
        if (n > 9)
            return -1;
        for (; n < 9; n++)
            *frac_ns *= 10;
    }
    *p = s;
    return 0;
}

int api__iq_time_string(const char *v, int64_t *ns)
{
    size_t len = strlen(v);
    if (len < 10 || vtime_digits(v, 4) < 0 || v[4] != '-' || vtime_digits(v + 5, 2) < 0 ||
        v[7] != '-' || vtime_digits(v + 8, 2) < 0)
        return 1; /* neither of influxd's regexes: no time string */
    int64_t days, secs = 0, frac = 0, offset = 0;
    if (read_date(v, &days))
        return 2;
    if (len > 10) {
        const char *p = v + 11;
        int rfc = v[10] == 'T';
        if ((v[10] != ' ' && !rfc) || read_clock(&p, &secs, &frac))
            return 2;
        if (rfc && *p == 'Z') {
            p++;
        } else if (rfc && (*p == '+' || *p == '-')) {
            int oh = vtime_digits(p + 1, 2),
                om = oh < 0 || p[3] != ':' ? -1 : vtime_digits(p + 4, 2);
            if (om < 0)
                return 2;
            offset = (*p == '-' ? -1 : 1) * (oh * 3600 + om * 60);
            p += 6;
        } else if (rfc) {
            return 2;
        }
        if (*p != '\0')
            return 2;
    }
    int64_t s = days * 86400 + secs - offset, out;
    if (s < 0 && frac > 0) { /* before 1970 the fraction brings s * 1e9 back toward zero */
        s++;
        frac -= 1000000000;
    }
    if (__builtin_mul_overflow(s, (int64_t)1000000000, &out) ||
        __builtin_add_overflow(out, frac, &out))
        return 3;
    /* influxd's time literal bounds (its "overflows" / "underflows time literal"): past
     * models.MaxNanoTime (int64's largest - 1), before models.MinNanoTime + 1 (int64's least
     * + 3) */
    if (out > INT64_MAX - 1 || out < INT64_MIN + 3)
        return 3;
    *ns = out;
    return 0;
}

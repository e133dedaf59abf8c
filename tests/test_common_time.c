/* tests/test_common_time.c: unit tests of common/vtime.c (RFC 3339 timestamps, durations) and
 * common/agg.c (bucket starts, aggregates, compensated sums).
 * Part of test_common: tests/test_common.c runs them, in the order of the single file they were
 * moved from. */

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "agg.h"
#include "batch.h"
#include "err.h"
#include "mcond.h"
#include "nameidx.h"
#include "nice.h"
#include "sbuf.h"
#include "vtime.h"
#include "test_common_fx.h"

static void test_rfc3339(void **state)
{
    int64_t ms;
    const char *s = "2026-11-28T10:00:00.123Z";
    assert_int_equal(vtime_parse_rfc3339(s, strlen(s), &ms), 0);
    assert_int_equal(ms, 1795860000123LL);
    s = "2026-11-28T12:00:00.123456+02:00";
    assert_int_equal(vtime_parse_rfc3339(s, strlen(s), &ms), 0);
    assert_int_equal(ms, 1795860000123LL);
    s = "1970-01-01T00:00:00Z";
    assert_int_equal(vtime_parse_rfc3339(s, strlen(s), &ms), 0);
    assert_int_equal(ms, 0);
    s = "2024-02-29T00:00:00.5Z";
    assert_int_equal(vtime_parse_rfc3339(s, strlen(s), &ms), 0);
    assert_int_equal(ms % 1000, 500);
    const char *bad[] = {"2023-02-29T00:00:00Z",     "2026-13-01T00:00:00Z",  "2026-11-28T10:00:00",
                         "2026-11-28T25:00:00Z",     "2026-11-28T10:00:00.Z", "2026-11-28",
                         "2026-11-28T10:00:00Zjunk", "1969-12-31T23:59:59Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(vtime_parse_rfc3339(bad[i], strlen(bad[i]), &ms), ERR_INVAL);
    /* Second 60 is refused as such (it once folded onto 59 and replaced that second's reading),
     * leaving *ms alone; malformed around it is still a syntax error. */
    const char *leap[] = {"2016-12-31T23:59:60Z", "2016-12-31T23:59:60.999Z",
                          "2017-01-01T00:59:60+01:00", "2024-11-28T08:00:60Z"};
    for (size_t i = 0; i < sizeof leap / sizeof leap[0]; i++) {
        ms = 42;
        assert_int_equal(vtime_parse_rfc3339(leap[i], strlen(leap[i]), &ms), ERR_RANGE);
        assert_int_equal(ms, 42);
        assert_int_equal(vtime_parse(leap[i], &ms), ERR_RANGE);
    }
    s = "2016-12-31T23:59:60";
    assert_int_equal(vtime_parse_rfc3339(s, strlen(s), &ms), ERR_INVAL);
    s = "2016-12-31T23:59:61Z";
    assert_int_equal(vtime_parse_rfc3339(s, strlen(s), &ms), ERR_INVAL);
    s = "2016-12-31T23:59:59.999Z";
    assert_int_equal(vtime_parse_rfc3339(s, strlen(s), &ms), 0);
    assert_int_equal(ms, 1483228799999LL);
}

/* What a client is told of a time it sent: vtime_rfc3339_formed tells a well-formed time that
 * has no millisecond here (vigil-replay warns of those, and reads the others without a zone as
 * UTC) from what is not one; vtime_parse_why (from=/to=) says the reason first, or NULL for the
 * caller's general words; vtime_epoch_hint is JSON's ts hint and theirs. */
static void test_time_why(void **state)
{
    (void)state;
    int64_t ms;
    const char *formed[] = {"2016-12-31T23:59:60Z", "1970-01-01T00:30:00+01:00",
                            "9999-12-31T23:30:00-01:00"};
    for (size_t i = 0; i < sizeof formed / sizeof formed[0]; i++) {
        int rc = vtime_parse(formed[i], &ms);
        assert_int_not_equal(rc, 0);
        assert_true(vtime_rfc3339_formed(formed[i], strlen(formed[i]), rc));
    }
    const char *not_formed[] = {"2026-12-04", "2026-12-04T10:00:00", "2026-12-04_10:00:00Z",
                                "yesterday", "17333000000001234"};
    for (size_t i = 0; i < sizeof not_formed / sizeof not_formed[0]; i++) {
        int rc = vtime_parse(not_formed[i], &ms);
        assert_int_not_equal(rc, 0);
        assert_false(vtime_rfc3339_formed(not_formed[i], strlen(not_formed[i]), rc));
    }
    char buf[VTIME_WHY_MAX];
    assert_string_equal(vtime_parse_why("2026-12-04", ERR_INVAL, buf, sizeof buf),
                        "no time after the date: add one and its offset, as in "
                        "2026-11-28T10:00:00Z; not an RFC 3339 timestamp");
    assert_string_equal(vtime_parse_why("1733300000000999", ERR_INVAL, buf, sizeof buf),
                        "after 9999 as epoch milliseconds; looks like epoch microseconds: send "
                        "milliseconds, e.g. 1733300000000");
    assert_string_equal(vtime_parse_why("1733300000000999999", ERR_INVAL, buf, sizeof buf),
                        "after 9999 as epoch milliseconds; looks like epoch nanoseconds: send "
                        "milliseconds, e.g. 1733300000000");
    assert_string_equal(vtime_parse_why("2016-12-31T23:59:60Z", ERR_RANGE, buf, sizeof buf),
                        VTIME_LEAP_SECOND_WHY);
    const char *general[] = {"yesterday", "2024-13-01T00:00:00Z", ""};
    for (size_t i = 0; i < sizeof general / sizeof general[0]; i++)
        assert_null(vtime_parse_why(general[i], ERR_INVAL, buf, sizeof buf));
    /* The bounds: 9999's last ms has no hint; one more is microseconds, up to 1000 times
     * 9999's last ms (compared as doubles: +1000 is past it); then nanoseconds; past 9999 in
     * ns, none. A real is scaled down as an integer is. */
    assert_null(vtime_epoch_hint(1, VTIME_MAX_MS, 0, buf, sizeof buf));
    assert_non_null(strstr(vtime_epoch_hint(1, VTIME_MAX_MS + 1, 0, buf, sizeof buf), "micro"));
    assert_non_null(strstr(vtime_epoch_hint(1, VTIME_MAX_MS * 1000, 0, buf, sizeof buf), "micro"));
    assert_non_null(
        strstr(vtime_epoch_hint(1, VTIME_MAX_MS * 1000 + 1000, 0, buf, sizeof buf), "nano"));
    assert_null(vtime_epoch_hint(0, 0, (double)VTIME_MAX_MS * 1e6 * 2, buf, sizeof buf));
    assert_string_equal(vtime_epoch_hint(0, 0, 1733300000000999.0, buf, sizeof buf),
                        "looks like epoch microseconds: send milliseconds, e.g. 1733300000000");
}

/* A read's time parameter: one rule says number or RFC 3339 (a 'T', 't' or ':'), and a number
 * that looks like epoch seconds is refused in any form a user types it, with the milliseconds to
 * send (session 48: a fraction or an exponent got the generic message). */
static void test_parse_param(void **state)
{
    (void)state;
    int64_t ms = -1;
    char buf[VTIME_WHY_MAX];
    static const struct {
        const char *s;
        const char *why;
    } refused[] = {
        {"1796000000", VTIME_SECS_WHY "; send milliseconds, e.g. 1796000000000"},
        {"+1796000000", VTIME_SECS_WHY "; send milliseconds, e.g. 1796000000000"},
        /* A query's unencoded '+' is a space (review: it lost the seconds refusal). */
        {" 1796000000", VTIME_SECS_WHY "; send milliseconds, e.g. 1796000000000"},
        {" 1796000000.5", VTIME_SECS_WHY "; send milliseconds, e.g. 1796000000500"},
        {" 1.796e9", VTIME_SECS_WHY "; send milliseconds, e.g. 1796000000000"},
        {"1796000000.123", VTIME_SECS_WHY "; send milliseconds, e.g. 1796000000123"},
        {"1796000000.123456", VTIME_SECS_WHY "; send milliseconds, e.g. 1796000000123"},
        {"1.796e9", VTIME_SECS_WHY "; send milliseconds, e.g. 1796000000000"},
        {"1.796E+9", VTIME_SECS_WHY "; send milliseconds, e.g. 1796000000000"},
        {"100000000", VTIME_SECS_WHY "; send milliseconds, e.g. 100000000000"},
        {"99999999999", VTIME_SECS_WHY "; send milliseconds, e.g. 99999999999000"},
        {"-5", VTIME_BEFORE_1970_WHY},
        {"-1796000000.5", VTIME_BEFORE_1970_WHY},
        {"-1733300000000999", VTIME_BEFORE_1970_WHY},
        {"1000.5", "not a whole number of milliseconds"},
        {"1796000000123.5", "not a whole number of milliseconds"},
        {"1.796e12", "not an integer: send milliseconds as digits, e.g. 1796000000000"},
        {"1796000000123.0", "not an integer: send milliseconds as digits, e.g. 1796000000123"},
        {"1733300000000999.5", "after 9999 as epoch milliseconds; looks like epoch "
                               "microseconds: send milliseconds, e.g. 1733300000000"},
        {"1733300000000999", "after 9999 as epoch milliseconds; looks like epoch "
                             "microseconds: send milliseconds, e.g. 1733300000000"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int rc = vtime_parse_param(refused[i].s, &ms);
        assert_int_equal(rc, ERR_INVAL);
        assert_int_equal(ms, -1);
        const char *why = vtime_parse_why(refused[i].s, rc, buf, sizeof buf);
        assert_non_null(why);
        assert_string_equal(why, refused[i].why);
    }
    /* Not decimal numbers as a user types them (strtod would read some): nothing more to say. */
    const char *general[] = {"0x10",         "1.2.3",         "--5",     "e5",          ".",   "+",
                             "1796000000,5", "1_796_000_000", "nowhere", "information", "5sec"};
    for (size_t i = 0; i < sizeof general / sizeof general[0]; i++) {
        assert_int_equal(vtime_parse_param(general[i], &ms), ERR_INVAL);
        assert_null(vtime_parse_why(general[i], ERR_INVAL, buf, sizeof buf));
    }
    /* The bounds: below 1e8 and from 1e11 on, numbers are taken; so is an RFC 3339 time of the
     * refused days, which names its unit; vtime_parse itself (vigil-replay's rows) takes them. */
    assert_int_equal(vtime_parse_param("99999999", &ms), 0);
    assert_int_equal(ms, 99999999);
    assert_int_equal(vtime_parse_param("100000000000", &ms), 0);
    assert_int_equal(ms, 100000000000LL);
    assert_int_equal(vtime_parse_param("1970-01-21T18:53:20Z", &ms), 0);
    assert_int_equal(ms, 1796000000);
    assert_int_equal(vtime_parse_param("1970-01-21t18:53:20z", &ms), 0);
    assert_int_equal(ms, 1796000000);
    assert_int_equal(vtime_parse("1796000000", &ms), 0);
    assert_int_equal(ms, 1796000000);
    /* A date has no 'T' or ':': read as a number, it is none, and the RFC 3339 reason is told. */
    assert_int_equal(vtime_parse_param("2026-12-04", &ms), ERR_INVAL);
    assert_string_equal(vtime_parse_why("2026-12-04", ERR_INVAL, buf, sizeof buf),
                        "no time after the date: add one and its offset, as in "
                        "2026-11-28T10:00:00Z; not an RFC 3339 timestamp");
}

/* Session 49: what a user likely meant as a time and that got the caller's general words says
 * what is wrong and what is taken: white space at the end, the offset's '+' arriving as a space,
 * now or now-1h (not taken: the client resolves them, as Grafana does), inf and nan, numbers
 * past a double, a number and a unit (the milliseconds to send for ms, s, us, ns), a date cut
 * short. A negative number names where epoch milliseconds start, in JSON's ts's words too. */
static void test_parse_why_more(void **state)
{
    (void)state;
    char buf[VTIME_WHY_MAX];
    const char *space = "white space at its end: send the time alone, epoch milliseconds or RFC "
                        "3339";
    const char *rel = "relative times (now, now-1h) are not taken: send epoch milliseconds or "
                      "RFC 3339; a bound left out is open";
    const char *inf = "not a finite number: " VTIME_MS_RANGE;
    const char *unit = "a unit after the number: send epoch milliseconds as digits alone, e.g. ";
    const char *unit_other = "a unit after the number: send epoch milliseconds as digits alone, "
                             "or RFC 3339 (relative times are not taken)";
    const char *cut = "an incomplete date: give year-month-day, a time and an offset, as in "
                      "2026-11-28T10:00:00Z; not an RFC 3339 timestamp";
    static char u1[128], u2[128], u3[128];
    snprintf(u1, sizeof u1, "%s1796000000000", unit);
    snprintf(u2, sizeof u2, "%s1733300000000", unit);
    snprintf(u3, sizeof u3, "%s1733300000123", unit);
    const struct {
        const char *s, *why;
    } cases[] = {
        {"1796000000000 ", space},
        {"1796000000000\t", space},
        {"2026-11-28T10:00:00Z ", space},
        {" ", space},
        {"2026-11-28T10:00:00 01:00", "a space before the offset: a '+' in a query string is a "
                                      "space; send it as %2B, e.g. %2B01:00"},
        {"2026-11-28T10:00:00.5 01:00", "a space before the offset: a '+' in a query string is "
                                        "a space; send it as %2B, e.g. %2B01:00"},
        {"now", rel},
        {"NOW", rel},
        {"now-1h", rel},
        {"now()", rel},
        {"now+5m", rel},
        {"inf", inf},
        {"-inf", inf},
        {"Infinity", inf},
        {"+INF", inf},
        {"nan", inf},
        {"NaN", inf},
        {"nan(0x1)", inf},
        {"1e400", VTIME_AFTER_9999_WHY},
        {"-1e400", VTIME_BEFORE_1970_WHY},
        {"1e-400", "not a whole number of milliseconds"},
        /* Review: a subnormal is ERANGE with a value above 0 (was "after 9999"). */
        {"1e-310", "not a whole number of milliseconds"},
        {"-1e-310", "not a whole number of milliseconds"},
        {"-1e-400", "not a whole number of milliseconds"},
        {"99999999999999999999", VTIME_AFTER_9999_WHY},
        {"253402300800000000000", VTIME_AFTER_9999_WHY},
        {"1796000000s", u1},
        {"1733300000000ms", u2},
        {"1733300000123456us", u3},
        {"1733300000123456\xc2\xb5s", u3},
        {"1733300000123456789ns", u3},
        {"5m", unit_other},
        {"1h", unit_other},
        {"30d", unit_other},
        {"99999999999999999s", unit_other},
        {"2026-12", cut},
        {"2026-1", cut},
        {"2026-12-4", cut},
        {"2026-12-", cut},
        {"-1", VTIME_BEFORE_1970_WHY},
        {"-0.5", VTIME_BEFORE_1970_WHY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -7;
        int rc = vtime_parse_param(cases[i].s, &ms);
        assert_int_equal(rc, ERR_INVAL);
        assert_int_equal(ms, -7);
        const char *why = vtime_parse_why(cases[i].s, rc, buf, sizeof buf);
        if (why == NULL || strcmp(why, cases[i].why) != 0)
            fail_msg("'%s': got '%s', want '%s'", cases[i].s, why ? why : "NULL", cases[i].why);
        /* One short line with the parameter's words around it ("parameter 'from': '...': "). */
        assert_true(strlen(why) < 130);
    }
    /* JSON's ts: a date cut short says so too (vtime_rfc3339_why). */
    assert_string_equal(vtime_rfc3339_why("2026-12", 7, ERR_INVAL), cut);
    /* "+0100" (an offset typed alone): refused since session 50 (test_parse_offsets). */
}

/* Session 50: an offset without its colon ("+0100", ISO 8601's basic form), its '+' unencoded
 * too (a space), says so, for JSON's ts as well; nothing of it is taken. A sign or a space before
 * a time of 1970's first day ("+0100" alone, main: 100 ms) is refused as an offset alone; digits
 * alone there, and a sign before a later time, stay taken. */
static void test_parse_offsets(void **state)
{
    (void)state;
    char buf[VTIME_WHY_MAX];
    const char *colon = "an offset without its colon: write +hh:mm, as in "
                        "2026-11-28T10:00:00+01:00; " VTIME_RFC3339_NOT;
    const char *space = "a space and an offset without its colon: a '+' in a query string is a "
                        "space; send %2B and hh:mm, e.g. %2B01:00";
    const char *sign = VTIME_SIGN_FIRST_DAY_WHY, *blank = VTIME_SPACE_FIRST_DAY_WHY;
    static const struct {
        const char *s;
        int which; /* 0 colon, 1 space, 2 sign, 3 blank */
    } cases[] = {
        {"2026-11-28T10:00:00+0100", 0},
        {"2026-11-28T10:00:00-0530", 0},
        {"2026-11-28T10:00:00.123+0100", 0},
        {"2026-11-28T10:00:00+01", 0},
        {"2026-11-28 10:00:00+0100", 0},
        {"2026-11-28T10:00:00 0100", 1},
        {"2026-11-28T10:00:00.5 0100", 1},
        {"2026-11-28T10:00:00 01", 1},
        {"+0100", 2},
        {"-0000", 2},
        {"+5", 2},
        {"+99999999", 2},
        {" 0100", 3},
        {" 0", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *want = (const char *[]){colon, space, sign, blank}[cases[i].which];
        int64_t ms = -7;
        int rc = vtime_parse_param(cases[i].s, &ms);
        assert_int_equal(rc, ERR_INVAL);
        assert_int_equal(ms, -7);
        const char *why = vtime_parse_why(cases[i].s, rc, buf, sizeof buf);
        if (why == NULL || strcmp(why, want) != 0)
            fail_msg("'%s': got '%s', want '%s'", cases[i].s, why ? why : "NULL", want);
        assert_true(strlen(why) < 130);
        if (cases[i].which == 0) /* JSON's ts */
            assert_string_equal(vtime_rfc3339_why(cases[i].s, strlen(cases[i].s), rc), colon);
    }
    /* Taken as before: digits alone in the first day, a sign before a later time, the colon. */
    static const struct {
        const char *s;
        int64_t ms;
    } taken[] = {{"0100", 100},
                 {"99999999", 99999999},
                 {"+100000000000", 100000000000LL},
                 {" 1796000000000", 1796000000000LL},
                 {"2026-11-28T10:00:00+01:00", 1795856400000LL}};
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++) {
        int64_t ms = -1;
        assert_int_equal(vtime_parse_param(taken[i].s, &ms), 0);
        assert_int_equal(ms, taken[i].ms);
    }
    /* vtime_parse (vigil-replay's rows) takes " 5" and "+5" as it always did. */
    int64_t ms = -1;
    assert_int_equal(vtime_parse("+0100", &ms), 0);
    assert_int_equal(ms, 100);
}

/* vtime_steady_now, its clocks injected: a step back is followed at once, a step forward only
 * after VTIME_STEADY_HOLD_MS ahead (retention's horizon once followed a clock stepped ahead by
 * mistake and deleted days of readings in a minute). */
static void test_steady_clock(void **state)
{
    (void)state;
    const int64_t W = 1795860000000LL, M = 5000, DAY = 86400000LL;
    vtime_steady_t g;
    memset(&g, 0, sizeof g);
    int ev = -1;
    assert_int_equal(vtime_steady_now(&g, W, M, &ev), W);
    assert_int_equal(ev, VTIME_STEADY_SAME);
    assert_int_equal(vtime_steady_now(&g, W + 60000, M + 60000, &ev), W + 60000);
    /* Stepped back an hour: followed. Ahead within the slack: followed. */
    assert_int_equal(vtime_steady_now(&g, W - 3600000, M + 61000, &ev), W - 3600000);
    assert_int_equal(ev, VTIME_STEADY_SAME);
    int64_t w = W - 3600000 + 1000 + VTIME_STEADY_SLACK_MS;
    assert_int_equal(vtime_steady_now(&g, w, M + 62000, &ev), w);
    /* Stepped a day forward: held at the elapsed time, noted once, until it has held an hour. */
    int64_t base = w, m0 = M + 62000;
    assert_int_equal(vtime_steady_now(&g, base + DAY + 10, m0 + 10, &ev), base + 10);
    assert_int_equal(ev, VTIME_STEADY_HELD);
    assert_int_equal(vtime_steady_now(&g, base + DAY + 20, m0 + 20, &ev), base + 20);
    assert_int_equal(ev, VTIME_STEADY_SAME);
    /* Set right again within the hour: followed, the hold forgotten. */
    assert_int_equal(vtime_steady_now(&g, base + 30, m0 + 30, &ev), base + 30);
    assert_int_equal(ev, VTIME_STEADY_SAME);
    int64_t t = m0 + 40, at = base + DAY + 40;
    assert_int_equal(vtime_steady_now(&g, at, t, &ev), base + 40);
    assert_int_equal(ev, VTIME_STEADY_HELD);
    int64_t later = VTIME_STEADY_HOLD_MS - 1;
    assert_int_equal(vtime_steady_now(&g, at + later, t + later, &ev), base + 40 + later);
    assert_int_equal(ev, VTIME_STEADY_SAME);
    /* Ahead for the whole hour: a clock set right, followed from then on. */
    later = VTIME_STEADY_HOLD_MS;
    assert_int_equal(vtime_steady_now(&g, at + later, t + later, &ev), at + later);
    assert_int_equal(ev, VTIME_STEADY_TAKEN);
    assert_int_equal(vtime_steady_now(&g, at + later + 5, t + later + 5, &ev), at + later + 5);
    assert_int_equal(ev, VTIME_STEADY_SAME);
    assert_int_equal(vtime_steady_now(&g, at + later + 9, t + later + 9, NULL), at + later + 9);

    /* Seeded (a clock saved before a restart, plus the time elapsed): a wall clock a day ahead
     * of it is held from the first call, as it would have been without the restart; one within
     * the slack, or behind, is followed. */
    memset(&g, 0, sizeof g);
    vtime_steady_seed(&g, W, M);
    assert_int_equal(vtime_steady_now(&g, W + DAY + 100, M + 100, &ev), W + 100);
    assert_int_equal(ev, VTIME_STEADY_HELD);
    memset(&g, 0, sizeof g);
    vtime_steady_seed(&g, W, M);
    assert_int_equal(vtime_steady_now(&g, W + 30000, M + 100, &ev), W + 30000);
    assert_int_equal(ev, VTIME_STEADY_SAME);
    assert_int_equal(vtime_steady_now(&g, W - DAY, M + 200, &ev), W - DAY);
}

/* vtime_stamp_at, its clocks injected: the wall clock while it goes forward; after a step back
 * the stamps go on from the millisecond after the newest, at half speed, never on a millisecond
 * given before the step, until the wall clock catches up. */
static void test_stamp_clock(void **state)
{
    (void)state;
    const int64_t W = 1732780800000LL, M = 5000000;
    vtime_stamp_t g;
    memset(&g, 0, sizeof g);
    int64_t stepped = -1;
    assert_int_equal(vtime_stamp_at(&g, W, M, &stepped), W);
    assert_int_equal(stepped, 0);
    /* Several calls in one millisecond share it (the documented same-millisecond rule). */
    assert_int_equal(vtime_stamp_at(&g, W + 1000, M + 1000, NULL), W + 1000);
    assert_int_equal(vtime_stamp_at(&g, W + 1000, M + 1000, NULL), W + 1000);
    /* The wall clock steps back an hour. */
    const int64_t H = 3600000;
    assert_int_equal(vtime_stamp_at(&g, W + 2000 - H, M + 2000, &stepped), W + 1001);
    assert_int_equal(stepped, H - 1000);
    int64_t prev = W + 1001;
    for (int64_t k = 1; k <= 10; k++) { /* a reading a second: stamps half a second apart */
        int64_t t = vtime_stamp_at(&g, W + 2000 - H + k * 1000, M + 2000 + k * 1000, &stepped);
        assert_int_equal(t, W + 1001 + k * 500);
        assert_true(t > prev);
        assert_int_equal(stepped, 0);
        prev = t;
    }
    /* Caught up after twice the step: the wall clock again. */
    const int64_t later = 2 * H;
    int64_t t = vtime_stamp_at(&g, W + 2000 - H + later, M + 2000 + later, NULL);
    assert_true(t >= W + 2000 - H + later);
    assert_int_equal(vtime_stamp_at(&g, W + 5000 + H, M + 5000 + H + H, NULL), W + 5000 + H);
    assert_int_equal(g.catching_up, 0);
    /* Never back, even by a millisecond (two threads' readings of the clock taken in the other
     * order): the millisecond after, as for any step. */
    assert_int_equal(vtime_stamp_at(&g, W + 4999 + H, M + 5000 + H + H, NULL), W + 5001 + H);
    /* A step back of more than VTIME_STAMP_CATCHUP_MAX_MS (here while catching up on the
     * millisecond's) is followed at once: caught up on, a step of a year stamped readings a
     * year ahead of their arrival, unscored, for two years. */
    const int64_t Y = 365 * 24 * H;
    assert_int_equal(vtime_stamp_at(&g, W + 6000 + H - Y, M + 6000 + 2 * H, &stepped),
                     W + 6000 + H - Y);
    assert_int_equal(stepped, Y - 999);
    assert_int_equal(g.catching_up, 0);
    assert_int_equal(vtime_stamp_at(&g, W + 7000 + H - Y, M + 7000 + 2 * H, NULL),
                     W + 7000 + H - Y);
    /* The process's clock: not before the wall clock, never back. */
    int64_t a = vtime_stamp_ms(), b = vtime_stamp_ms();
    assert_true(b >= a);
    assert_true(a >= vtime_now_ms() - 1000);
}

/* vtime_stamp_take's clocks read from a struct the test sets (single thread). */
struct set_clock {
    int64_t wall, mono;
};

static int64_t set_wall(void *arg)
{
    return ((struct set_clock *)arg)->wall;
}

static int64_t set_mono(void *arg)
{
    return ((struct set_clock *)arg)->mono;
}

/* vtime_stamp_take on one thread gives vtime_stamp_at's stamps (test_stamp_clock's steps), and
 * its word says when the lock-free path applies: the slow bit set before the first stamp and
 * while catching up, clear once caught up and after a step of more than 12 h (followed at once,
 * not caught up on), so the common case goes back to the compare-and-swap. */
static void test_stamp_take_steps(void **state)
{
    (void)state;
    const int64_t W = 1732780800000LL, M = 5000000, H = 3600000;
    static vtime_stamp_sync_t s = VTIME_STAMP_SYNC_INIT;
    struct set_clock c = {W, M};
    int64_t stepped = -1;
    assert_true(atomic_load(&s.word) & 1); /* no stamp yet: the locked path */
    assert_int_equal(vtime_stamp_take(&s, set_wall, set_mono, &c, &stepped), W);
    assert_int_equal(stepped, 0);
    assert_int_equal(atomic_load(&s.word), 2 * W);
    c.wall = W + 1000, c.mono = M + 1000;
    assert_int_equal(vtime_stamp_take(&s, set_wall, set_mono, &c, NULL), W + 1000);
    assert_int_equal(vtime_stamp_take(&s, set_wall, set_mono, &c, NULL), W + 1000);
    assert_int_equal(atomic_load(&s.word), 2 * (W + 1000));
    /* The wall clock steps back an hour: half speed from the millisecond after, locked. */
    c.wall = W + 2000 - H, c.mono = M + 2000;
    assert_int_equal(vtime_stamp_take(&s, set_wall, set_mono, &c, &stepped), W + 1001);
    assert_int_equal(stepped, H - 1000);
    assert_int_equal(atomic_load(&s.word), 2 * (W + 1001) + 1);
    for (int64_t k = 1; k <= 10; k++) {
        c.wall = W + 2000 - H + k * 1000, c.mono = M + 2000 + k * 1000;
        assert_int_equal(vtime_stamp_take(&s, set_wall, set_mono, &c, &stepped),
                         W + 1001 + k * 500);
        assert_int_equal(stepped, 0);
        assert_true(atomic_load(&s.word) & 1);
    }
    /* Caught up after twice the step: the wall clock again, the lock-free path again. */
    c.wall = W + 2000 + H, c.mono = M + 2000 + 2 * H;
    assert_int_equal(vtime_stamp_take(&s, set_wall, set_mono, &c, NULL), W + 2000 + H);
    assert_int_equal(atomic_load(&s.word), 2 * (W + 2000 + H));
    c.wall += 5;
    assert_int_equal(vtime_stamp_take(&s, set_wall, set_mono, &c, NULL), W + 2005 + H);
    assert_int_equal(atomic_load(&s.word), 2 * (W + 2005 + H));
    /* A step back of a year is followed at once, and the stamps are the wall clock from it. */
    const int64_t Y = 365 * 24 * H;
    c.wall = W + 3000 + H - Y, c.mono += 1000;
    assert_int_equal(vtime_stamp_take(&s, set_wall, set_mono, &c, &stepped), W + 3000 + H - Y);
    assert_int_equal(stepped, Y - 995);
    assert_int_equal(atomic_load(&s.word), 2 * (W + 3000 + H - Y));
}

/* vtime_stamp_take's test clocks: every reading a millisecond after the one before (so two
 * threads' readings are never equal), and the wall clock stepped back by the stepping thread. */
struct mt_clock {
    _Atomic int64_t wall, mono;
};

static int64_t mt_wall(void *arg)
{
    return atomic_fetch_add(&((struct mt_clock *)arg)->wall, 1) + 1;
}

static int64_t mt_mono(void *arg)
{
    return atomic_fetch_add(&((struct mt_clock *)arg)->mono, 1) + 1;
}

#define MT_THREADS    4
#define MT_CALLS      100000
#define MT_STEP_EVERY 500 /* the stepping thread's calls between steps back */
#define MT_STEP_MS    50

struct mt_stamp {
    vtime_stamp_sync_t sync;
    struct mt_clock clock;
    _Atomic int64_t seen;  /* the greatest stamp a finished call returned */
    _Atomic int backwards; /* calls that returned less than `seen` as it was when they began */
    _Atomic int steps;     /* calls that reported a step back */
};

static void *mt_stamp_main(void *arg)
{
    struct mt_stamp *m = *(struct mt_stamp **)arg;
    const int stepper = ((struct mt_stamp **)arg)[1] != NULL;
    for (int i = 0; i < MT_CALLS; i++) {
        if (stepper && i % MT_STEP_EVERY == MT_STEP_EVERY - 1)
            atomic_fetch_sub(&m->clock.wall, MT_STEP_MS);
        const int64_t before = atomic_load(&m->seen);
        int64_t stepped;
        const int64_t t = vtime_stamp_take(&m->sync, mt_wall, mt_mono, &m->clock, &stepped);
        if (t < before)
            atomic_fetch_add(&m->backwards, 1);
        if (stepped > 0)
            atomic_fetch_add(&m->steps, 1);
        int64_t s = atomic_load(&m->seen);
        while (s < t && !atomic_compare_exchange_weak(&m->seen, &s, t))
            ;
    }
    return NULL;
}

/* vtime_stamp_take from several threads at once, the wall clock stepping back now and then:
 * no call returns less than a stamp a call finished before it began (lock-free, the stamps
 * still never go back, through steps and their half-speed catch-up), and the steps were seen. */
static void test_stamp_threads(void **state)
{
    (void)state;
    static struct mt_stamp m = {.sync = VTIME_STAMP_SYNC_INIT};
    atomic_store(&m.clock.wall, 1732780800000LL);
    atomic_store(&m.clock.mono, 5000000);
    pthread_t th[MT_THREADS];
    struct mt_stamp *args[MT_THREADS][2];
    for (int k = 0; k < MT_THREADS; k++) {
        args[k][0] = &m;
        args[k][1] = k == 0 ? &m : NULL; /* thread 0 steps the clock back */
        assert_int_equal(pthread_create(&th[k], NULL, mt_stamp_main, args[k]), 0);
    }
    for (int k = 0; k < MT_THREADS; k++)
        pthread_join(th[k], NULL);
    assert_int_equal(atomic_load(&m.backwards), 0);
    assert_true(atomic_load(&m.steps) >= 1);
    /* The newest stamp is the shared state's (nothing given beyond it). */
    assert_int_equal(atomic_load(&m.seen), atomic_load(&m.sync.word) / 2);
}

static void test_format_roundtrip(void **state)
{
    char buf[32];
    int64_t ms;
    for (int64_t t = 0; t < VTIME_MAX_MS; t = t * 3 + 7919) {
        vtime_format(t, buf, sizeof buf);
        assert_int_equal(vtime_parse(buf, &ms), 0);
        assert_int_equal(ms, t);
    }
    assert_int_equal(vtime_parse("1732780800123", &ms), 0);
    assert_int_equal(ms, 1732780800123LL);
    assert_int_equal(vtime_parse("12abc", &ms), ERR_INVAL);
    assert_int_equal(vtime_parse("-5", &ms), ERR_INVAL);
}

static void test_duration(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {{"0", 0},
                {"1", 1},
                {"60000", 60000},
                {"250ms", 250},
                {"1s", 1000},
                {"90s", 90000},
                {"1m", 60000},
                {"2h", 7200000},
                {"30d", 2592000000LL},
                {"1w", 604800000},
                {"366d", 31622400000LL},
                {"9223372036854775807ms", INT64_MAX}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        assert_int_equal(vtime_parse_duration(good[i].s, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    static const char *const bad[] = {"",
                                      "-1",
                                      "+1",
                                      " 1",
                                      "1 s",
                                      "1.5s",
                                      "1x",
                                      "s",
                                      "ms",
                                      "1S",
                                      "1ms ",
                                      "1sec",
                                      "1mss",
                                      "0x10",
                                      "9223372036854775808",
                                      "9223372036854775807s",
                                      "15250284453w"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        assert_int_equal(vtime_parse_duration(bad[i], &ms), ERR_INVAL);
        assert_int_equal(ms, 42);
    }
    assert_int_equal(vtime_parse_duration(NULL, &(int64_t){0}), ERR_INVAL);
}

static void test_agg_bucket_start(void **state)
{
    (void)state;
    assert_int_equal(agg_bucket_start(1500, 1000), 1000);
    assert_int_equal(agg_bucket_start(1000, 1000), 1000);
    assert_int_equal(agg_bucket_start(999, 1000), 0);
    assert_int_equal(agg_bucket_start(0, 7), 0);
    assert_int_equal(agg_bucket_start(13, 7), 7);
    assert_int_equal(agg_bucket_start(14, 7), 14);
    assert_int_equal(agg_bucket_start(-1, 1000), -1000);
    assert_int_equal(agg_bucket_start(-1000, 1000), -1000);
    /* 2024-11-28T08:00:59.999Z in minutes and days (UTC midnight). */
    assert_int_equal(agg_bucket_start(1732780859999LL, 60000), 1732780800000LL);
    assert_int_equal(agg_bucket_start(1732780859999LL, 86400000), 1732752000000LL);
}

static void test_agg_values(void **state)
{
    (void)state;
    agg_t a;
    agg_reset(&a);
    assert_int_equal(a.count, 0);
    assert_true(isnan(agg_mean(&a)));
    /* Added out of time order (as a descending read does): last is the newest one's. */
    static const double v[] = {3.5, -1.25, 8.0, 0.5};
    static const int64_t ts[] = {40, 30, 10, 20};
    for (int i = 0; i < 4; i++)
        agg_add(&a, ts[i], v[i]);
    assert_int_equal(a.count, 4);
    assert_true(a.min == -1.25 && a.max == 8.0 && a.last == 3.5);
    assert_true(agg_mean(&a) == 10.75 / 4);
    /* The first of two values at the newest timestamp stays last. */
    agg_add(&a, 40, 99.0);
    assert_true(a.last == 3.5);
    agg_reset(&a);
    agg_add(&a, 1, 0.1);
    agg_add(&a, 2, 0.2);
    assert_true(agg_mean(&a) == (0.1 + 0.2) / 2);
}

/* The compensated sum keeps what a plain double sum loses: 1e16 + 1 is 1e16 in double, so a
 * plain sum of 1e16, a million ones and -1e16 is 0; the exact one is 1e6. */
static void test_agg_compensated(void **state)
{
    (void)state;
    agg_t a;
    agg_reset(&a);
    double plain = 0;
    agg_add(&a, 0, 1e16);
    plain += 1e16;
    for (int i = 1; i <= 1000000; i++) {
        agg_add(&a, i, 1.0);
        plain += 1.0;
    }
    agg_add(&a, 1000001, -1e16);
    plain += -1e16;
    assert_true(plain == 0.0); /* the loss this guards against is real */
    assert_true(agg_mean(&a) == 1e6 / 1000002.0);
    /* A sum beyond DBL_MAX is kept scaled and the mean is still exact. */
    agg_reset(&a);
    agg_add(&a, 0, DBL_MAX);
    agg_add(&a, 1, DBL_MAX);
    agg_add(&a, 2, -DBL_MAX);
    assert_true(agg_mean(&a) == DBL_MAX / 3);
    agg_reset(&a);
    for (int i = 0; i < 4; i++)
        agg_add(&a, i, -DBL_MAX);
    assert_true(agg_mean(&a) == -DBL_MAX);
}

const struct CMUnitTest common_time_tests[] = {
    cmocka_unit_test(test_rfc3339),          cmocka_unit_test(test_time_why),
    cmocka_unit_test(test_steady_clock),     cmocka_unit_test(test_stamp_clock),
    cmocka_unit_test(test_stamp_take_steps), cmocka_unit_test(test_stamp_threads),
    cmocka_unit_test(test_format_roundtrip), cmocka_unit_test(test_duration),
    cmocka_unit_test(test_agg_bucket_start), cmocka_unit_test(test_agg_values),
    cmocka_unit_test(test_agg_compensated),  cmocka_unit_test(test_parse_param),
    cmocka_unit_test(test_parse_why_more),   cmocka_unit_test(test_parse_offsets),
};
const size_t common_time_count = sizeof common_time_tests / sizeof common_time_tests[0];

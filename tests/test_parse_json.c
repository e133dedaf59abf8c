/* tests/test_parse_json.c: unit tests of the JSON readings parser (api/parse.h): objects,
 * timestamps, item and body errors, partial batches, limits.
 * Part of test_parse: tests/test_parse.c runs them, in the order of the single file they were
 * moved from; the fixtures shared with the other parts are in tests/test_parse_fx.c. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "batch.h"
#include "err.h"
#include "influxql.h"
#include "parse.h"
#include "sbuf.h"
#include "vtime.h"
#include "test_parse_fx.h"

/* ---- JSON ----------------------------------------------------------------------------------- */

typedef struct jres {
    int rc;
    size_t nitems;
    parse_errors_t errs;
    char errmsg[256];
} jres_t;

static void json_run(batch_t *b, const char *body, size_t max_items, jres_t *r)
{
    memset(r, 0, sizeof *r);
    r->rc = parse_json_readings(b, body, strlen(body), NOW, max_items, &r->nitems, &r->errs,
                                r->errmsg, sizeof r->errmsg);
}

/* Asserts that a single-item body is rejected as an item with exactly msg. */
static void json_item_bad(const char *body, const char *msg)
{
    batch_t b;
    jres_t r;
    batch_init(&b);
    json_run(&b, body, 0, &r);
    if (r.rc != 0 || r.errs.count != 1 || strcmp(r.errs.e[0].msg, msg) != 0)
        fail_msg("%s: rc %d, count %u, '%s', expected '%s'", body, r.rc, r.errs.count,
                 r.errs.e[0].msg, msg);
    assert_int_equal(r.errs.e[0].item, 0);
    assert_int_equal(b.npoints, 0);
    assert_int_equal(b.str_len, 0);
    batch_deinit(&b);
}

/* Asserts that a body is refused whole with ERR_INVAL and an errmsg starting with prefix. */
static void json_body_bad(const char *body, const char *prefix)
{
    batch_t b;
    jres_t r;
    batch_init(&b);
    json_run(&b, body, 0, &r);
    if (r.rc != ERR_INVAL || strncmp(r.errmsg, prefix, strlen(prefix)) != 0)
        fail_msg("%s: rc %d, '%s', expected '%s...'", body, r.rc, r.errmsg, prefix);
    assert_int_equal(r.errs.count, 0);
    assert_int_equal(b.npoints, 0);
    batch_deinit(&b);
}

static void test_json_object(void **state)
{
    batch_t b;
    jres_t r;
    batch_init(&b);
    json_run(&b,
             "{\"device\":\"pump-7\",\"ts\":1732780800123,\"values\":{\"temp\":71.2,"
             "\"vib\":0.031,\"n\":5,\"z\":-0.0,\"big\":9007199254740993}}",
             0, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.nitems, 1);
    assert_int_equal(r.errs.count, 0);
    assert_int_equal(b.npoints, 1);
    assert_string_equal(point_device(&b, 0), "pump-7");
    assert_int_equal(b.points[0].ts_ms, 1732780800123LL);
    assert_int_equal(b.points[0].item, 0);
    assert_int_equal(b.points[0].nfields, 5);
    assert_double_exact(field(&b, 0, "temp"), 71.2);
    assert_double_exact(field(&b, 0, "vib"), 0.031);
    assert_double_exact(field(&b, 0, "n"), 5.0);
    assert_double_exact(field(&b, 0, "z"), -0.0);
    assert_double_exact(field(&b, 0, "big"), 9007199254740992.0);
    batch_deinit(&b);
}

static void test_json_ts(void **state)
{
    batch_t b;
    jres_t r;
    batch_init(&b);
    json_run(&b,
             "[{\"device\":\"d\",\"values\":{\"v\":0.1}},"
             "{\"device\":\"d\",\"ts\":\"2026-11-28T10:00:00.123Z\",\"values\":{\"v\":1}},"
             "{\"device\":\"d\",\"ts\":\"2026-11-28T12:00:00.123456+02:00\",\"values\":{\"v\":2}},"
             "{\"device\":\"d\",\"ts\":1.7328e12,\"values\":{\"v\":3}},"
             "{\"device\":\"d\",\"ts\":0,\"values\":{\"v\":4}},"
             "{\"device\":\"d\",\"ts\":253402300799999,\"values\":{\"v\":5}}]",
             0, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.nitems, 6);
    assert_int_equal(r.errs.count, 0);
    assert_int_equal(b.npoints, 6);
    assert_int_equal(b.points[0].ts_ms, NOW);
    assert_double_exact(field(&b, 0, "v"), 0.1);
    assert_int_equal(b.points[1].ts_ms, 1795860000123LL);
    assert_int_equal(b.points[2].ts_ms, 1795860000123LL);
    assert_int_equal(b.points[3].ts_ms, 1732800000000LL);
    assert_int_equal(b.points[4].ts_ms, 0);
    assert_int_equal(b.points[5].ts_ms, VTIME_MAX_MS);
    for (uint32_t i = 0; i < 6; i++)
        assert_int_equal(b.points[i].item, i);
    batch_deinit(&b);

    /* Before 1970 or after 9999, and past 9999 in nanoseconds too. */
    const char *range[] = {"1e300", "2.6e20"};
    for (size_t i = 0; i < sizeof range / sizeof range[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"device\":\"d\",\"ts\":%s,\"values\":{\"v\":1}}", range[i]);
        json_item_bad(body, "ts: out of range: epoch milliseconds between 1970 and 9999");
    }
    /* Session 49: before 1970 in from=/to='s words, where epoch milliseconds start (was "out of
     * range: epoch milliseconds between 1970 and 9999"). */
    const char *early[] = {"-1", "-1.0", "-1732780800123456"};
    for (size_t i = 0; i < sizeof early / sizeof early[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"device\":\"d\",\"ts\":%s,\"values\":{\"v\":1}}", early[i]);
        json_item_bad(body, "ts: before 1970 as epoch milliseconds, which start at 0 (1970-01-01)");
    }
    /* Epoch microseconds or nanoseconds (Go's time.Now().UnixNano(), InfluxDB's default) past
     * 9999 in ms: the range, then the unit it looks like and the milliseconds to send (was the
     * range alone). Just past 9999 in ms reads as µs. */
    const struct {
        const char *ts, *why;
    } units[] = {
        {"1733300000000000", "microseconds: send milliseconds, e.g. 1733300000000"},
        {"1733300000000000000", "nanoseconds: send milliseconds, e.g. 1733300000000"},
        {"1732780800123456789", "nanoseconds: send milliseconds, e.g. 1732780800123"},
        {"1732780800123456", "microseconds: send milliseconds, e.g. 1732780800123"},
        {"253402300800000", "microseconds: send milliseconds, e.g. 253402300800"},
        {"1.7333e15", "microseconds: send milliseconds, e.g. 1733300000000"},
        {"1.7333e18", "nanoseconds: send milliseconds, e.g. 1733300000000"},
        {"9223372036854775807", "nanoseconds: send milliseconds, e.g. 9223372036854"},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        char body[128], want[256];
        snprintf(body, sizeof body, "{\"device\":\"d\",\"ts\":%s,\"values\":{\"v\":1}}",
                 units[i].ts);
        snprintf(want, sizeof want,
                 "ts: out of range: epoch milliseconds between 1970 and 9999; looks like epoch %s",
                 units[i].why);
        json_item_bad(body, want);
    }
    /* Epoch seconds as a number (1970-01-02 to 1973-03-03 in ms): refused, naming the unit;
     * the same instant as an RFC 3339 string names its unit and is taken, and so are the
     * bounds of the band. */
    /* 1732780800.123456: Python's time.time(), seconds with a fraction (was "not a whole
     * number of milliseconds", which does not say the unit is wrong). */
    const char *secs[] = {"1732780800",  "100000000",    "99999999999",
                          "1.7327808e9", "1732780800.0", "1732780800.123456"};
    for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"device\":\"d\",\"ts\":%s,\"values\":{\"v\":1}}", secs[i]);
        json_item_bad(body, "ts: between 1970-01-02 and 1973-03-03 in milliseconds: looks like "
                            "epoch seconds (or a counter of milliseconds since a device's boot); "
                            "send epoch milliseconds or an RFC 3339 string");
    }
    batch_init(&b);
    json_run(&b,
             "[{\"device\":\"d\",\"ts\":\"1970-01-21T01:19:40.800Z\",\"values\":{\"v\":1}},"
             "{\"device\":\"d\",\"ts\":99999999,\"values\":{\"v\":1}},"
             "{\"device\":\"d\",\"ts\":100000000000,\"values\":{\"v\":1}}]",
             0, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.errs.count, 0);
    assert_int_equal(b.npoints, 3);
    assert_int_equal(b.points[0].ts_ms, 1732780800LL);
    assert_int_equal(b.points[1].ts_ms, 99999999LL);
    assert_int_equal(b.points[2].ts_ms, 100000000000LL);
    batch_deinit(&b);
    json_item_bad("{\"device\":\"d\",\"ts\":1732780800123.5,\"values\":{\"v\":1}}",
                  "ts: not a whole number of milliseconds");
    const char *wrong_type[] = {"true", "false", "null", "[1]", "{}"};
    for (size_t i = 0; i < sizeof wrong_type / sizeof wrong_type[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"device\":\"d\",\"ts\":%s,\"values\":{\"v\":1}}",
                 wrong_type[i]);
        json_item_bad(body, "ts: not an integer or an RFC 3339 string");
    }
    const char *bad_str[] = {"\"\"",
                             "\"yesterday\"",
                             "\"...\"",
                             "\"1.2.3\"",
                             "\".5\"",
                             "\"2026-02-30T00:00:00Z\"",
                             "\"2026-11-28T10:00:00.\"",
                             "\"2026-11-2810:00:00Z\""};
    for (size_t i = 0; i < sizeof bad_str / sizeof bad_str[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"device\":\"d\",\"ts\":%s,\"values\":{\"v\":1}}",
                 bad_str[i]);
        json_item_bad(body, "ts: not an RFC 3339 timestamp between 1970 and 9999");
    }
    /* Digits in quotes: a number sent as a string, told so (session 65). */
    json_item_bad("{\"device\":\"d\",\"ts\":\"1732780800123\",\"values\":{\"v\":1}}",
                  "ts: digits in a string: send epoch milliseconds as a JSON number (no quotes), "
                  "or an RFC 3339 string");
    json_item_bad("{\"device\":\"d\",\"ts\":\"1732780800123.5\",\"values\":{\"v\":1}}",
                  "ts: digits in a string: send epoch milliseconds as a JSON number (no quotes), "
                  "or an RFC 3339 string");
    /* A date and a time without an offset, or with another character than 'T' between them:
     * said what is missing or wrong, first (was the general message; since iqtime the reason
     * comes before "not an RFC 3339 timestamp"); a space for the 'T' is taken. */
    const char *no_offset[] = {"2026-11-28T10:00:00", "2026-11-28 10:00:00",
                               "2026-11-28t10:00:00.5", "2026-11-28T10:00:00.123456789"};
    for (size_t i = 0; i < sizeof no_offset / sizeof no_offset[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"device\":\"d\",\"ts\":\"%s\",\"values\":{\"v\":1}}",
                 no_offset[i]);
        json_item_bad(body, "ts: no offset after the time: add Z (UTC) or +hh:mm; not an RFC 3339 "
                            "timestamp");
    }
    const char *no_t[] = {"2026-11-28_10:00:00Z", "2026-11-28/10:00:00"};
    for (size_t i = 0; i < sizeof no_t / sizeof no_t[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"device\":\"d\",\"ts\":\"%s\",\"values\":{\"v\":1}}",
                 no_t[i]);
        json_item_bad(body, "ts: 'T' expected between date and time, as in "
                            "2026-11-28T10:00:00Z; not an RFC 3339 timestamp");
    }
    /* An offset without its colon (ISO 8601's basic form): refused as before, said so since
     * session 50 (was the general message). */
    json_item_bad("{\"device\":\"d\",\"ts\":\"2026-11-28T10:00:00+0100\",\"values\":{\"v\":1}}",
                  "ts: an offset without its colon: write +hh:mm, as in "
                  "2026-11-28T10:00:00+01:00; not an RFC 3339 timestamp");
    /* A date alone: its time is said to be missing, first (iqtime; was the general message). */
    json_item_bad("{\"device\":\"d\",\"ts\":\"2026-12-04\",\"values\":{\"v\":1}}",
                  "ts: no time after the date: add one and its offset, as in "
                  "2026-11-28T10:00:00Z; not an RFC 3339 timestamp");
    batch_init(&b);
    json_run(&b, "{\"device\":\"d\",\"ts\":\"2026-11-28 10:00:00.123Z\",\"values\":{\"v\":1}}", 0,
             &r);
    assert_int_equal(r.errs.count, 0);
    assert_int_equal(b.npoints, 1);
    assert_int_equal(b.points[0].ts_ms, 1795860000123LL);
    batch_deinit(&b);
    /* Well formed but outside 1970..9999 once the offset is applied: said so, not "not an
     * RFC 3339 timestamp" (session 43); a 1969 date an offset brings into 1970 is taken. */
    const char *before[] = {"1969-12-31T23:59:59Z", "1970-01-01T00:30:00+01:00"};
    for (size_t i = 0; i < sizeof before / sizeof before[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"device\":\"d\",\"ts\":\"%s\",\"values\":{\"v\":1}}",
                 before[i]);
        json_item_bad(body, "ts: before 1970-01-01T00:00:00Z once its offset is applied: vigil "
                            "keeps Unix time from 1970 on");
    }
    json_item_bad("{\"device\":\"d\",\"ts\":\"9999-12-31T23:30:00-01:00\",\"values\":{\"v\":1}}",
                  "ts: after 9999-12-31T23:59:59.999Z once its offset is applied");
    batch_init(&b);
    json_run(&b, "{\"device\":\"d\",\"ts\":\"1969-12-31T23:30:00-01:00\",\"values\":{\"v\":1}}", 0,
             &r);
    assert_int_equal(r.errs.count, 0);
    assert_int_equal(b.npoints, 1);
    assert_int_equal(b.points[0].ts_ms, 1800000);
    batch_deinit(&b);
    /* A leap second is refused naming it (it once replaced the reading at second 59). */
    json_item_bad("{\"device\":\"d\",\"ts\":\"2016-12-31T23:59:60Z\",\"values\":{\"v\":1}}",
                  "ts: second 60 (a leap second) is refused: Unix time has none; send second "
                  "59.999 or epoch milliseconds");
}

static void test_json_item_errors(void **state)
{
    json_item_bad("{\"values\":{\"v\":1}}", "device: missing");
    json_item_bad("{\"device\":7,\"values\":{\"v\":1}}", "device: not a string");
    json_item_bad("{\"device\":null,\"values\":{\"v\":1}}", "device: not a string");
    json_item_bad("{\"device\":\"\",\"values\":{\"v\":1}}", "device: is empty");
    json_item_bad("{\"device\":\"a\\tb\",\"values\":{\"v\":1}}",
                  "device: contains a control character");
    char body[512];
    snprintf(body, sizeof body, "{\"device\":\"%0201d\",\"values\":{\"v\":1}}", 0);
    json_item_bad(body, "device: is longer than 200 bytes");
    json_item_bad("{\"device\":\"d\"}", "values: missing");
    json_item_bad("{\"device\":\"d\",\"values\":{}}", "values: is empty");
    json_item_bad("{\"device\":\"d\",\"values\":[1,2]}", "values: not an object");
    json_item_bad("{\"device\":\"d\",\"values\":3}", "values: not an object");
    const char *nan[] = {"\"71.2\"", "true", "false", "null", "{}", "[1]", "\"NaN\""};
    for (size_t i = 0; i < sizeof nan / sizeof nan[0]; i++) {
        snprintf(body, sizeof body, "{\"device\":\"d\",\"values\":{\"ok\":1,\"temp\":%s}}", nan[i]);
        json_item_bad(body, "values.temp: not a number");
    }
    json_item_bad("{\"device\":\"d\",\"values\":{\"\":1}}", "values.: channel name is empty");
    json_item_bad("{\"device\":\"d\",\"values\":{\"a\\u0001\":1}}",
                  "values.a\x01: channel name contains a control character");
    json_item_bad("{\"device\":\"d\",\"value\":{\"v\":1}}", "value: unknown key");
    json_item_bad("{\"device\":\"d\",\"values\":{\"v\":1},\"Ts\":5}", "Ts: unknown key");
    json_item_bad("[7]", "not an object");
    json_item_bad("[\"x\"]", "not an object");
    json_item_bad("[[]]", "not an object");
}

static void test_json_partial(void **state)
{
    batch_t b;
    jres_t r;
    batch_init(&b);
    json_run(&b,
             "[{\"device\":\"a\",\"ts\":1000,\"values\":{\"v\":1}},"
             "{\"device\":\"b\",\"ts\":1000,\"values\":{\"v\":\"high\"}},"
             "{\"device\":\"c\",\"ts\":2000,\"values\":{\"v\":2.5,\"w\":-3}},"
             "{\"device\":\"d\",\"ts\":true,\"values\":{\"v\":1}},"
             "null]",
             0, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.nitems, 5);
    assert_int_equal(b.npoints, 2);
    assert_string_equal(point_device(&b, 0), "a");
    assert_string_equal(point_device(&b, 1), "c");
    assert_int_equal(b.points[1].item, 2);
    assert_int_equal(b.points[1].ts_ms, 2000);
    assert_double_exact(field(&b, 1, "v"), 2.5);
    assert_double_exact(field(&b, 1, "w"), -3.0);
    assert_int_equal(r.errs.count, 3);
    assert_int_equal(r.errs.e[0].item, 1);
    assert_string_equal(r.errs.e[0].msg, "values.v: not a number");
    assert_int_equal(r.errs.e[1].item, 3);
    assert_string_equal(r.errs.e[1].msg, "ts: not an integer or an RFC 3339 string");
    assert_int_equal(r.errs.e[2].item, 4);
    assert_string_equal(r.errs.e[2].msg, "not an object");
    batch_deinit(&b);

    /* 150 bad items: all counted, 100 kept with their indexes. */
    size_t cap = 300 * 64, n = 0;
    char *body = malloc(cap);
    assert_non_null(body);
    body[n++] = '[';
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(body + n, cap - n, "%s{\"device\":\"d\",\"values\":{\"v\":%s}}",
                              i ? "," : "", i % 2 ? "1" : "null");
    body[n++] = ']';
    body[n] = '\0';
    batch_init(&b);
    memset(&r, 0, sizeof r);
    r.rc =
        parse_json_readings(&b, body, n, NOW, 1000, &r.nitems, &r.errs, r.errmsg, sizeof r.errmsg);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.nitems, 300);
    assert_int_equal(b.npoints, 150);
    assert_int_equal(r.errs.count, 150);
    assert_int_equal(r.errs.kept, PARSE_ERRORS_KEEP);
    assert_int_equal(r.errs.e[99].item, 198);
    free(body);
    batch_deinit(&b);
}

static void test_json_limit(void **state)
{
    batch_t b;
    jres_t r;
    batch_init(&b);
    const char *body = "[{\"device\":\"a\",\"values\":{\"v\":1}},{\"device\":\"b\",\"values\":"
                       "{\"v\":2}},{\"device\":\"c\",\"values\":{\"v\":3}}]";
    json_run(&b, body, 2, &r);
    assert_int_equal(r.rc, ERR_LIMIT);
    assert_int_equal(r.nitems, 3);
    assert_int_equal(b.npoints, 0);
    assert_int_equal(b.str_len, 0);
    assert_string_equal(r.errmsg, "too many items: 3, at most 2 per request");
    json_run(&b, body, 3, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(b.npoints, 3);
    /* A single object is one item. */
    json_run(&b, "{\"device\":\"a\",\"values\":{\"v\":1}}", 1, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(b.npoints, 4);
    batch_deinit(&b);
}

static void test_json_bad_body(void **state)
{
    json_body_bad("[]", "empty array");
    json_body_bad(" [ ] ", "empty array");
    json_body_bad("", "request body is empty: send a JSON object or an array of readings");
    json_body_bad(" \r\n\t", "request body is empty");
    json_body_bad("\xef\xbb\xbf", "request body is empty");
    json_body_bad("\xef\xbb\xbf \n", "request body is empty");
    json_body_bad("{", "invalid JSON at line 1, column 1: ");
    json_body_bad("{\"device\":\"d\",\n\"values\":{\"v\":1}", "invalid JSON at line 2, column ");
    json_body_bad("{\"device\":\"d\",\"values\":{\"v\":1}} x", "invalid JSON at line 1, column ");
    json_body_bad("{\"device\":\"d\",\"values\":{\"v\":1}}{}", "invalid JSON at line 1, column ");
    json_body_bad("{\"device\":\"d\",\"values\":{\"v\":NaN}}", "invalid JSON at line 1, column ");
    json_body_bad("{\"device\":\"d\",\"values\":{\"v\":Infinity}}",
                  "invalid JSON at line 1, column ");
    json_body_bad("{\"device\":\"d\",\"values\":{\"v\":-Infinity}}",
                  "invalid JSON at line 1, column ");
    json_body_bad("{\"device\":\"d\",\"values\":{\"v\":1e999}}", "invalid JSON at line 1, column ");
    json_body_bad("{\"device\":\"d\",\"values\":{\"v\":1,\"v\":2}}", "invalid JSON at line 1");
    json_body_bad("{\"device\":\"d\\u0000x\",\"values\":{\"v\":1}}", "invalid JSON at line 1");
    json_body_bad("\"reading\"", "invalid JSON at line 1");
    json_body_bad("42", "invalid JSON at line 1");
    json_body_bad("null", "invalid JSON at line 1");
    json_body_bad("\xff\xfe", "invalid JSON at line 1");

    /* Integers beyond int64 are numbers like any other: readings are doubles. */
    {
        batch_t b;
        jres_t r;
        batch_init(&b);
        json_run(&b,
                 "{\"device\":\"d\",\"values\":{\"v\":100000000000000000000,"
                 "\"w\":-18446744073709551616}}",
                 0, &r);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.errs.count, 0);
        assert_int_equal(b.nfields, 2);
        assert_true(b.fields[0].value == 1e20);
        assert_true(b.fields[1].value == -18446744073709551616.0);
        batch_deinit(&b);
    }

    /* An empty body without a buffer is an empty body too. */
    batch_t b;
    jres_t r;
    batch_init(&b);
    memset(&r, 0, sizeof r);
    assert_int_equal(
        parse_json_readings(&b, NULL, 0, NOW, 0, &r.nitems, &r.errs, r.errmsg, sizeof r.errmsg),
        ERR_INVAL);
    assert_non_null(strstr(r.errmsg, "request body is empty"));

    /* The message carries jansson's text. */
    json_run(&b, "{\"device\":\"d\",\"values\":{\"v\":1e999}}", 0, &r);
    assert_non_null(strstr(r.errmsg, "real number overflow"));
    json_run(&b, "{\"device\":\"d\",\"values\":{\"v\":1}} x", 0, &r);
    assert_non_null(strstr(r.errmsg, "end of file expected"));
    batch_deinit(&b);
}

/* The one wording of a body jansson could not read (parse_json_errmsg), with or without a
 * route's suffix, cut to the buffer; and api__json_error's 400 stays valid JSON whatever
 * jansson's text holds: nothing, quotes and a backslash, or its whole 159 bytes ending in a
 * UTF-8 sequence jansson cut (U+FFFD in the answer). */
static void test_json_errmsg(void **state)
{
    json_error_t jerr = {.line = 2, .column = 10};
    snprintf(jerr.text, sizeof jerr.text, "invalid token near 'nope'");
    char buf[256];
    parse_json_errmsg(buf, sizeof buf, &jerr, NULL);
    assert_string_equal(buf, "invalid JSON at line 2, column 10: invalid token near 'nope'");
    parse_json_errmsg(buf, sizeof buf, &jerr, "(send no body or {})");
    assert_string_equal(buf, "invalid JSON at line 2, column 10: invalid token near 'nope' (send "
                             "no body or {})");
    parse_json_errmsg(buf, 20, &jerr, "(send no body or {})");
    assert_string_equal(buf, "invalid JSON at lin");

    static const struct {
        const char *text, *want;
    } rows[] = {
        {"", "invalid JSON at line 2, column 10:  (x)"},
        {"near '\"a\\'", "invalid JSON at line 2, column 10: near '\"a\\' (x)"},
    };
    char longtext[JSON_ERROR_TEXT_LENGTH], longwant[512];
    memset(longtext, 'n', sizeof longtext - 2);
    longtext[sizeof longtext - 2] = '\xc3'; /* the first byte of a cut U+00E9 */
    longtext[sizeof longtext - 1] = '\0';
    snprintf(longwant, sizeof longwant, "invalid JSON at line 2, column 10: %.*s\xef\xbf\xbd (x)",
             (int)sizeof longtext - 2, longtext);
    for (size_t i = 0; i <= sizeof rows / sizeof rows[0]; i++) {
        const char *text = i < sizeof rows / sizeof rows[0] ? rows[i].text : longtext;
        const char *want = i < sizeof rows / sizeof rows[0] ? rows[i].want : longwant;
        snprintf(jerr.text, sizeof jerr.text, "%s", text);
        api_request_t r;
        memset(&r, 0, sizeof r);
        r.route = ROUTE_READINGS;
        api__json_error(&r, &jerr, "(x)");
        assert_int_equal(r.status, 400);
        json_error_t perr;
        json_t *v = json_loadb(r.resp, r.resp_len, 0, &perr);
        if (v == NULL)
            fail_msg("row %zu: not JSON (%s): %.*s", i, perr.text, (int)r.resp_len, r.resp);
        assert_string_equal(json_string_value(json_object_get(v, "error")), want);
        json_decref(v);
        free(r.resp);
    }
}

/* parse_json_errmsg cut at every buffer size from 0 to past the whole message, with 2-, 3- and
 * 4-byte UTF-8 sequences in jansson's text and the suffix: it writes nothing past size bytes,
 * keeps the message's first size - 1 bytes, NUL-terminated; and the JSON string api__json_str
 * makes of the cut message is valid JSON: its whole sequences as they were, each byte of the
 * sequence the cut split as U+FFFD. */
static void test_json_errmsg_cut(void **state)
{
    json_error_t jerr = {.line = 3, .column = 7};
    snprintf(jerr.text, sizeof jerr.text,
             "invalid token near '\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e'");
    const char *suffix = "(\xf0\x9d\x84\x9e \xe2\x82\xac)";
    char full[256], buf[320];
    parse_json_errmsg(full, sizeof full, &jerr, suffix);
    size_t n = strlen(full);
    assert_true(n > 40 && n + 8 < sizeof buf);
    for (size_t size = 0; size <= n + 2; size++) {
        memset(buf, 0x5a, sizeof buf);
        parse_json_errmsg(buf, size, &jerr, suffix);
        for (size_t i = size; i < sizeof buf; i++)
            if ((unsigned char)buf[i] != 0x5a)
                fail_msg("size %zu: byte %zu written", size, i);
        if (size == 0)
            continue;
        size_t cut = size - 1 < n ? size - 1 : n;
        assert_int_equal(strlen(buf), cut);
        assert_memory_equal(buf, full, cut);
        /* where the cut sequence starts: the last lead byte, when its sequence is not whole */
        size_t lead = cut, stray = 0;
        while (lead > 0 && ((unsigned char)buf[lead - 1] & 0xc0) == 0x80)
            lead--;
        if (lead > 0 && (unsigned char)buf[lead - 1] >= 0xc0) {
            unsigned char c = (unsigned char)buf[lead - 1];
            size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            lead--;
            stray = cut - lead < want ? cut - lead : 0;
        }
        char expect[320];
        size_t keep = stray ? lead : cut;
        memcpy(expect, buf, keep);
        for (size_t i = 0; i < stray; i++)
            memcpy(expect + keep + 3 * i, "\xef\xbf\xbd", 3);
        expect[keep + 3 * stray] = '\0';
        sbuf_t b;
        sbuf_init(&b);
        api__json_str(&b, buf);
        assert_false(b.oom);
        json_error_t perr;
        json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY, &perr);
        if (v == NULL)
            fail_msg("size %zu: not JSON (%s): %s", size, perr.text, b.data);
        assert_string_equal(json_string_value(v), expect);
        json_decref(v);
        sbuf_deinit(&b);
    }
}

/* json_tree_bytes (session 69): the items of a top-level array, strings' brackets, commas and
 * escaped quotes not counted; and an estimate at least what jansson allocates (glibc's
 * mallinfo2 around json_loadb; a sanitizer's allocator reports 0, which passes trivially). */
static void test_json_tree_bytes(void **state)
{
    (void)state;
    size_t items;
    const char *b = "[{\"device\":\"a,[b\\\"]\",\"values\":{\"x\":1}}, 2 ,[3,[4]],\"s\\\\\",null]";
    json_tree_bytes(b, strlen(b), &items);
    assert_int_equal(items, 5);
    json_tree_bytes("{\"a\":[1,2,3]}", 13, &items);
    assert_int_equal(items, 1);
    json_tree_bytes("[]", 2, &items);
    assert_int_equal(items, 0);
    static const char *const shapes[] = {
        "1", "{\"device\":\"pump-7\",\"values\":{\"t\":71.5}}", "\"str\"", "[]", "{}", "true"};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        sbuf_t body;
        sbuf_init(&body);
        sbuf_append(&body, "[", 1);
        for (int i = 0; i < 20000; i++) {
            sbuf_append(&body, i ? "," : "", i ? 1 : 0);
            sbuf_append(&body, shapes[k], strlen(shapes[k]));
        }
        sbuf_append(&body, "]", 1);
        assert_false(body.oom);
        const size_t est = json_tree_bytes(body.data, body.len, &items);
        assert_int_equal(items, 20000);
        struct mallinfo2 m0 = mallinfo2();
        json_t *v = json_loadb(body.data, body.len, JSON_DECODE_INT_AS_REAL, NULL);
        struct mallinfo2 m1 = mallinfo2();
        assert_non_null(v);
        const size_t used = (m1.uordblks + m1.hblkhd) - (m0.uordblks + m0.hblkhd);
        if (used > est)
            fail_msg("%s: jansson took %zu bytes, estimated %zu", shapes[k], used, est);
        json_decref(v);
        sbuf_deinit(&body);
    }
}

const struct CMUnitTest parse_json_tests[] = {
    cmocka_unit_test(test_json_object),      cmocka_unit_test(test_json_ts),
    cmocka_unit_test(test_json_item_errors), cmocka_unit_test(test_json_partial),
    cmocka_unit_test(test_json_limit),       cmocka_unit_test(test_json_bad_body),
    cmocka_unit_test(test_json_errmsg),      cmocka_unit_test(test_json_errmsg_cut),
    cmocka_unit_test(test_json_tree_bytes),
};
const size_t parse_json_count = sizeof parse_json_tests / sizeof parse_json_tests[0];

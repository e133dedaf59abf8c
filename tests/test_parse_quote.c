/* tests/test_parse_quote.c: unit tests of what the API quotes and matches: JSON strings as
 * UTF-8, InfluxQL strings and identifiers, the events page, InfluxQL's Go regular expressions.
 * Part of test_parse: tests/test_parse.c runs them, in the order of the single file they were
 * moved from; the fixtures shared with the other parts are in tests/test_parse_fx.c. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
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

/* JSON answers are UTF-8 whatever bytes they quote: valid sequences pass through, anything else
 * (a stray byte, a cut sequence, an overlong form, a surrogate, past U+10FFFF) is U+FFFD. */
static void json_str_is(const char *in, const char *want)
{
    sbuf_t b;
    sbuf_init(&b);
    api__json_str(&b, in);
    assert_false(b.oom);
    assert_string_equal(b.data, want);
    sbuf_deinit(&b);
}

static void test_json_str_utf8(void **state)
{
    (void)state;
    json_str_is("pump-7", "\"pump-7\"");
    json_str_is("a\"b\\c\n\x01", "\"a\\\"b\\\\c\\n\\u0001\"");
    json_str_is("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    json_str_is("a\xff"
                "b",
                "\"a\\ufffdb\"");
    json_str_is("cut \xe2\x82", "\"cut \\ufffd\\ufffd\"");
    json_str_is("\xc0\xaf", "\"\\ufffd\\ufffd\"");                       /* overlong '/' */
    json_str_is("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");            /* surrogate */
    json_str_is("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
    json_str_is("\x80x", "\"\\ufffdx\"");
}

/* /query's strings (api__iq_str): api__json_str's, then '<', '>', '&', U+2028 and U+2029 as Go
 * escapes them, in place after what b held. */
static void iq_str_is(const char *in, const char *want)
{
    sbuf_t b;
    sbuf_init(&b);
    sbuf_append(&b, "[<&>,", 5); /* before the string: left as it is */
    api__iq_str(&b, in);
    assert_false(b.oom);
    assert_int_equal(b.len, 5 + strlen(want));
    assert_memory_equal(b.data, "[<&>,", 5);
    assert_string_equal(b.data + 5, want);
    sbuf_deinit(&b);
}

static void test_iq_str_go_escapes(void **state)
{
    (void)state;
    iq_str_is("pump-7", "\"pump-7\"");
    iq_str_is("<", "\"\\u003c\"");
    iq_str_is("a<b>c&d", "\"a\\u003cb\\u003ec\\u0026d\"");
    iq_str_is("<>&<>&", "\"\\u003c\\u003e\\u0026\\u003c\\u003e\\u0026\"");
    iq_str_is("x\xe2\x80\xa8y\xe2\x80\xa9", "\"x\\u2028y\\u2029\"");
    iq_str_is("\xe2\x80\xa8<\xe2\x80\xa9", "\"\\u2028\\u003c\\u2029\"");
    iq_str_is("\xe2\x80\xaa\xe2\x82\xac", "\"\xe2\x80\xaa\xe2\x82\xac\""); /* U+202A, euro: kept */
    iq_str_is("\"<\n\xff&", "\"\\\"\\u003c\\n\\ufffd\\u0026\"");
    iq_str_is("cut \xe2\x80", "\"cut \\ufffd\\ufffd\""); /* no U+2028: not escaped as one */
    char big[3001];
    memset(big, '&', 3000);
    big[3000] = '\0';
    sbuf_t b;
    sbuf_init(&b);
    api__iq_str(&b, big);
    assert_int_equal(b.len, 2 + 3000 * 6);
    for (size_t i = 0; i < 3000; i++)
        assert_memory_equal(b.data + 1 + 6 * i, "\\u0026", 6);
    sbuf_deinit(&b);
}

/* api__iq_quote_ident writes name as Go's influxql.QuoteIdent: the words of influxd's
 * "invalid condition expression: X" for a name alone as a condition (checked against influxd
 * 1.6.7 in test_influxql.py IqFix for device, "pump-7", "select", "a\"b", _x9 and "é"). */
static void quote_ident_is(const char *name, const char *want)
{
    sbuf_t b;
    sbuf_init(&b);
    api__iq_quote_ident(&b, name);
    assert_false(b.oom);
    assert_string_equal(b.data, want);
    sbuf_deinit(&b);
}

static void test_iq_quote_ident(void **state)
{
    (void)state;
    quote_ident_is("device", "device");
    quote_ident_is("_x9", "_x9");
    quote_ident_is("pump-7", "\"pump-7\"");
    quote_ident_is("9x", "\"9x\"");
    quote_ident_is("select", "\"select\""); /* a keyword, any case */
    quote_ident_is("From", "\"From\"");
    quote_ident_is("a\"b\\c\nd", "\"a\\\"b\\\\c\\nd\"");
    quote_ident_is("\xc3\xa9", "\"\xc3\xa9\"");
}

/* Builds an event array from start times and devices (each event's "id" is its position, so
 * 100 + position when ids[] is NULL), pages it with limit and max_bytes, and checks the
 * positions kept (in order, want[] ends with -1). */
static void events_page_is(const int64_t *starts, const char *const *devs, size_t n, size_t limit,
                           size_t max_bytes, const int *want)
{
    json_t *arr = json_array();
    assert_non_null(arr);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            json_array_append_new(arr, json_pack("{s:I,s:I,s:s}", "id", (json_int_t)(100 + i),
                                                 "start_ts", (json_int_t)starts[i], "device",
                                                 devs ? devs[i] : "d")),
            0);
    size_t k = api__events_page(&arr, limit, max_bytes);
    size_t nwant = 0;
    while (want[nwant] >= 0)
        nwant++;
    assert_int_equal(k, nwant);
    assert_int_equal(json_array_size(arr), nwant);
    for (size_t i = 0; i < nwant; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, i), "id")),
                         100 + want[i]);
    json_decref(arr);
}

static void test_events_page(void **state)
{
    (void)state;
    /* Sorted newest start first, then device name, then id, all descending (the active event
     * the backend added out of order goes to its place). */
    const int64_t a[] = {50, 90, 70, 70, 10};
    events_page_is(a, NULL, 5, 10, SIZE_MAX, (const int[]){1, 3, 2, 0, 4, -1});
    /* A page ends at limit, also inside one start time (the next goes on from its last). */
    events_page_is(a, NULL, 5, 2, SIZE_MAX, (const int[]){1, 3, -1});
    events_page_is(a, NULL, 5, 3, SIZE_MAX, (const int[]){1, 3, 2, -1});
    const int64_t b[] = {30, 30, 30, 20};
    const char *const bd[] = {"pump-1", "pump-2", "pump-10", "pump-9"};
    events_page_is(b, bd, 4, 1, SIZE_MAX, (const int[]){1, -1});
    events_page_is(b, bd, 4, 2, SIZE_MAX, (const int[]){1, 2, -1}); /* "pump-10" < "pump-2" */
    events_page_is(b, bd, 4, 4, SIZE_MAX, (const int[]){1, 2, 0, 3, -1});
    events_page_is(b, NULL, 0, 4, SIZE_MAX, (const int[]){-1});
    /* The byte bound: each event is 42 or 43 bytes of JSON here, and a comma; at least one
     * goes, whatever its size. */
    events_page_is(b, bd, 4, 4, 43 + 44, (const int[]){1, 2, -1});
    events_page_is(b, bd, 4, 4, 43 + 44 - 1, (const int[]){1, -1});
    events_page_is(b, bd, 4, 4, 10, (const int[]){1, -1});
}

/* Whether Go pattern go, translated, matches text as regcomp compiles it (as /query does). */
static int go_re_matches(const char *go, const char *text)
{
    char ere[QT_TEXT_MAX], err[160];
    regex_t re;
    if (api__iq_re_translate(go, ere, sizeof ere, NULL, err, sizeof err) != 0)
        fail_msg("%s refused: %s", go, err);
    assert_int_equal(regcomp(&re, ere, REG_EXTENDED | REG_NOSUB), 0);
    int m = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

static void go_re_refused(const char *go, const char *want)
{
    char ere[QT_TEXT_MAX], err[160];
    assert_int_equal(api__iq_re_translate(go, ere, sizeof ere, NULL, err, sizeof err), -1);
    assert_string_equal(err, want);
}

static void test_influxql_regex(void **state)
{
    (void)state;
    /* Go's classes mean digits, word and space characters; glibc read \d as a plain 'd'. */
    assert_true(go_re_matches("^pump-\\d$", "pump-7"));
    assert_false(go_re_matches("^pump-\\d$", "pump-d"));
    assert_true(go_re_matches("^[\\d]+$", "42"));
    assert_false(go_re_matches("^[\\d]+$", "d"));
    assert_true(go_re_matches("^[^\\d]$", "d"));
    assert_false(go_re_matches("^\\D$", "7"));
    assert_true(go_re_matches("^\\w\\s\\W$", "a -"));
    assert_false(go_re_matches("^\\w$", "-"));
    /* Escaped punctuation, and bracket literals placed where POSIX reads them as literals. */
    assert_true(go_re_matches("^[\\]]$", "]"));
    assert_true(go_re_matches("^[]a]$", "]"));
    assert_true(go_re_matches("^[\\^]$", "^"));
    assert_true(go_re_matches("^[\\-x]$", "-"));
    assert_true(go_re_matches("^[\\^\\-]$", "-"));
    assert_false(go_re_matches("^[\\^\\-]$", "a"));
    assert_true(go_re_matches("^[^\\^]$", "a"));
    assert_true(go_re_matches("^a\\.b$", "a.b"));
    assert_false(go_re_matches("^a\\.b$", "axb"));
    /* Go's forms with the same matches: (?:), lazy quantifiers, \A and \z, a literal '{'. */
    assert_true(go_re_matches("^(?:m|s)x$", "sx"));
    assert_true(go_re_matches("^a*?b$", "aab"));
    assert_true(go_re_matches("\\Ax\\z", "x"));
    assert_false(go_re_matches("\\Ax\\z", "yx"));
    assert_true(go_re_matches("x{", "x{"));
    assert_true(go_re_matches("^a{2,3}$", "aaa"));
    /* What Go refuses, in its words (influxd 1.6.7 answered each so). */
    go_re_refused("a{1001}", "invalid repeat count: `{1001}`");
    go_re_refused("(a{1,30}){1,40}", "invalid repeat count: `{1,40}`");
    go_re_refused("((a{1,100}){1,100}){1,100}", "invalid repeat count: `{1,100}`");
    go_re_refused("\\1", "invalid escape sequence: `\\1`");
    go_re_refused("[", "missing closing ]: `[`");
    go_re_refused("(a", "missing closing ): `(a`");
    go_re_refused("a)", "unexpected ): `a)`");
    go_re_refused("*a", "missing argument to repetition operator: `*`");
    go_re_refused("e+++", "invalid nested repetition operator: `++`");
    go_re_refused("a*?*", "invalid nested repetition operator: `*?*`");
    go_re_refused("a{2}{3}", "invalid nested repetition operator: `{2}{3}`");
    /* glibc copies x for x+: nested ones double (libFuzzer's 10 s timeout, review29). */
    char plus[256] = "";
    for (int i = 0; i < 40; i++)
        strcat(plus, "(");
    strcat(plus, "a");
    for (int i = 0; i < 40; i++)
        strcat(plus, "+)");
    go_re_refused(plus, "vigild refuses a regular expression that its repetitions expand past "
                        "1000 characters");
    assert_true(go_re_matches("^(a+)+$", "aaa"));
    /* Go takes this one, but glibc's regcomp expanded it into 3.3 s and 720 MB. */
    char big[256] = "(";
    for (int i = 0; i < 80; i++)
        strcat(big, i ? "|ab" : "ab");
    strcat(big, "){1,1000}");
    go_re_refused(big, "vigild refuses a regular expression that its repetitions expand past 1000 "
                       "characters");
    go_re_refused("(a|b){1,1000}",
                  "vigild refuses a regular expression that its repetitions expand past 1000 "
                  "characters");
    assert_true(go_re_matches("^a{1,1000}$", "aaaa"));
    /* review (iqwhere): a repeated group's optional repetitions count once per copy, as glibc
     * compiles them: 20 nested (a?) repeated {1,1000} took regcomp 16 s, 50 nested 150 s. */
    go_re_refused("((a?)?){1,1000}",
                  "vigild reads regular expressions of at most 1000 alternatives and optional "
                  "repetitions ('*', '?', '{0,n}') together, a repeated group's counted once per "
                  "copy");
    go_re_refused("((a?){0,10}){1,100}",
                  "vigild reads regular expressions of at most 1000 alternatives and optional "
                  "repetitions ('*', '?', '{0,n}') together, a repeated group's counted once per "
                  "copy");
}

/* Translates unit repeated n times (as a query of up to API_IQ_Q_MAX bytes may hold): 0, or -1
 * with err. */
static int go_re_repeat(const char *unit, int n, char *err, size_t errsize)
{
    size_t len = strlen(unit) * (size_t)n;
    char *go = malloc(len + 1), *ere = malloc(API_IQ_RE_OUT(len));
    assert_non_null(go);
    assert_non_null(ere);
    go[0] = '\0';
    for (int i = 0; i < n; i++)
        strcat(go, unit);
    int rc = api__iq_re_translate(go, ere, API_IQ_RE_OUT(len), NULL, err, errsize);
    free(go);
    free(ere);
    return rc;
}

/* review: glibc's regcomp grows with the square of a run of optional repetitions as of
 * alternatives (4,000 "a*" 1.1 s and 137 MB, 30,000 more than 60 s): both count against the
 * 1,000 alternatives; '|' escaped or in brackets is a literal, '|' in nested groups counts. */
static void test_influxql_regex_alternatives(void **state)
{
    (void)state;
    static const char refused[] = "vigild reads regular expressions of at most 1000 alternatives "
                                  "and optional repetitions ('*', '?', '{0,n}') together";
    char err[160];
    assert_int_equal(go_re_repeat("a*", 999, err, sizeof err), 0);
    assert_int_equal(go_re_repeat("a*", 1000, err, sizeof err), -1);
    assert_string_equal(err, refused);
    assert_int_equal(go_re_repeat("a?", 1000, err, sizeof err), -1);
    assert_int_equal(go_re_repeat("(a)*", 1000, err, sizeof err), -1);
    assert_int_equal(go_re_repeat("a{0,1}", 1000, err, sizeof err), -1);
    assert_int_equal(go_re_repeat("a*?", 1000, err, sizeof err), -1);
    assert_int_equal(go_re_repeat("a+", 1000, err, sizeof err), 0); /* x+ is x x*: not a run */
    assert_int_equal(go_re_repeat("\\|", 4000, err, sizeof err), 0);
    assert_int_equal(go_re_repeat("[|]", 4000, err, sizeof err), 0);
    assert_int_equal(go_re_repeat("(a|b)", 999, err, sizeof err), 0);
    assert_int_equal(go_re_repeat("(a|b)", 1000, err, sizeof err), -1);
    assert_int_equal(go_re_repeat("((a|b)|c)", 500, err, sizeof err), -1);
    assert_int_equal(go_re_repeat("(a|b)*", 500, err, sizeof err), -1);
    assert_true(go_re_matches("^(a|b)*c?$", "abac"));
}

/* session 26: a statement's patterns share the 1,000 alternatives (SHOW TAG VALUES compiled up
 * to 9 of 1,000 each: 2.7 s and 160 MB); alts carries the count from one to the next. */
static void test_influxql_regex_statement_budget(void **state)
{
    (void)state;
    char go[4000], ere[API_IQ_RE_OUT(sizeof go)], err[200];
    go[0] = '\0';
    for (int i = 0; i < 599; i++)
        strcat(go, i ? "|a" : "a"); /* 598 '|': 598 counted */
    long alts = 0;
    assert_int_equal(api__iq_re_translate(go, ere, sizeof ere, &alts, err, sizeof err), 0);
    assert_int_equal(alts, 598);
    assert_int_equal(api__iq_re_translate("x|y", ere, sizeof ere, &alts, err, sizeof err), 0);
    assert_int_equal(alts, 599);
    assert_int_equal(api__iq_re_translate(go, ere, sizeof ere, &alts, err, sizeof err), -1);
    assert_string_equal(err, "vigild reads at most 1000 alternatives and optional repetitions "
                             "('*', '?', '{0,n}') in one statement's regular expressions "
                             "together");
    assert_int_equal(alts, 599); /* unchanged on a refusal */
    long none = 0;
    assert_int_equal(api__iq_re_translate(go, ere, sizeof ere, &none, err, sizeof err), 0);
}

const struct CMUnitTest parse_quote_tests[] = {
    cmocka_unit_test(test_json_str_utf8),
    cmocka_unit_test(test_iq_str_go_escapes),
    cmocka_unit_test(test_iq_quote_ident),
    cmocka_unit_test(test_events_page),
    cmocka_unit_test(test_influxql_regex),
    cmocka_unit_test(test_influxql_regex_alternatives),
    cmocka_unit_test(test_influxql_regex_statement_budget),
};
const size_t parse_quote_count = sizeof parse_quote_tests / sizeof parse_quote_tests[0];

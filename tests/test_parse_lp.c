/* tests/test_parse_lp.c: unit tests of the InfluxDB line protocol parser (api/parse.h): keys,
 * escapes, values compared exactly, timestamps and precisions, bodies, errors.
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

static lp_opts_t opts_ns(void)
{
    lp_opts_t o = {"device", LP_NS, 0, LP_UNIT_DECLARED};
    return o;
}

/* Parses one line with default options; returns the status, errmsg filled on error. */
static int lp1(batch_t *b, const char *line, char *errmsg)
{
    lp_opts_t o = opts_ns();
    errmsg[0] = '\0';
    return lp_parse_line(b, line, strlen(line), &o, NOW, 1, errmsg, 200);
}

/* Asserts that one line fails with exactly the given reason and adds nothing. */
static void lp_bad(const char *line, const char *reason)
{
    batch_t b;
    char err[200];
    batch_init(&b);
    int rc = lp1(&b, line, err);
    if (rc != ERR_INVAL || strcmp(err, reason) != 0)
        fail_msg("line '%s': rc %d, reason '%s', expected '%s'", line, rc, err, reason);
    assert_int_equal(b.npoints, 0);
    assert_int_equal(b.nfields, 0);
    assert_int_equal(b.str_len, 0);
    assert_int_equal(b.open, 0);
    batch_deinit(&b);
}

/* Parses a single-field line "m v=<text>" and returns the value. */
static double lp_value(const char *text)
{
    batch_t b;
    char line[256], err[200];
    batch_init(&b);
    snprintf(line, sizeof line, "m v=%s", text);
    int rc = lp1(&b, line, err);
    if (rc != 0)
        fail_msg("'%s': %s", line, err);
    assert_int_equal(b.npoints, 1);
    double v = field(&b, 0, "v");
    batch_deinit(&b);
    return v;
}

/* Parses "m v=1 <ts>" with a precision; returns the status and the point's ts in *ms. */
static int lp_ts(const char *ts, lp_precision_t prec, int64_t *ms, char *err)
{
    batch_t b;
    char line[128];
    batch_init(&b);
    snprintf(line, sizeof line, "m v=1 %s", ts);
    lp_opts_t o = opts_ns();
    o.precision = prec;
    int rc = lp_parse_line(&b, line, strlen(line), &o, NOW, 1, err, 200);
    if (rc == 0) {
        assert_int_equal(b.npoints, 1);
        *ms = b.points[0].ts_ms;
    } else {
        assert_int_equal(b.npoints, 0);
    }
    batch_deinit(&b);
    return rc;
}

/* ---- line protocol -------------------------------------------------------------------------- */

static void test_lp_basic(void **state)
{
    batch_t b;
    char err[200];
    batch_init(&b);
    assert_int_equal(lp1(&b, "cpu,host=a,region=b value=1.5 1732780800123000000", err), 0);
    assert_int_equal(b.npoints, 1);
    assert_string_equal(point_device(&b, 0), "cpu,host=a,region=b");
    assert_int_equal(b.points[0].device_len, strlen("cpu,host=a,region=b"));
    assert_int_equal(b.points[0].ts_ms, 1732780800123LL);
    assert_int_equal(b.points[0].nfields, 1);
    assert_int_equal(b.points[0].item, 1);
    assert_double_exact(field(&b, 0, "value"), 1.5);

    /* No tags, no timestamp: the measurement is the device, now is the time. */
    assert_int_equal(lp1(&b, "temp v=2", err), 0);
    assert_string_equal(point_device(&b, 1), "temp");
    assert_int_equal(b.points[1].ts_ms, NOW);
    batch_deinit(&b);
}

static void test_lp_device_tag(void **state)
{
    batch_t b;
    char err[200];
    lp_opts_t o = opts_ns();
    batch_init(&b);
    const char *l = "sensors,site=x,device=pump-7 temp=71.2,vib=0.031 1732780800123000000";
    assert_int_equal(lp_parse_line(&b, l, strlen(l), &o, NOW, 3, err, sizeof err), 0);
    assert_string_equal(point_device(&b, 0), "pump-7");
    assert_int_equal(b.points[0].nfields, 2);
    assert_int_equal(b.points[0].item, 3);
    assert_double_exact(field(&b, 0, "temp"), 71.2);
    assert_double_exact(field(&b, 0, "vib"), 0.031);

    /* A configured tag name; the default "device" is then an ordinary tag. */
    o.device_tag = "host";
    l = "cpu,host=web\\ 1,device=d v=1";
    assert_int_equal(lp_parse_line(&b, l, strlen(l), &o, NOW, 4, err, sizeof err), 0);
    assert_string_equal(point_device(&b, 1), "web 1"); /* unescaped */

    /* The tag is matched on its unescaped key. */
    o.device_tag = "dev ice";
    l = "cpu,dev\\ ice=a\\,b\\=c v=1";
    assert_int_equal(lp_parse_line(&b, l, strlen(l), &o, NOW, 5, err, sizeof err), 0);
    assert_string_equal(point_device(&b, 2), "a,b=c");

    /* NULL device_tag means "device"; NULL opts mean the defaults. */
    o.device_tag = NULL;
    l = "cpu,device=z v=1";
    assert_int_equal(lp_parse_line(&b, l, strlen(l), &o, NOW, 6, err, sizeof err), 0);
    assert_string_equal(point_device(&b, 3), "z");
    assert_int_equal(lp_parse_line(&b, l, strlen(l), NULL, NOW, 7, err, sizeof err), 0);
    assert_string_equal(point_device(&b, 4), "z");
    batch_deinit(&b);

    lp_bad("m,device=a\tb v=1", "invalid device tag: contains a control character");
}

static void test_lp_series_key(void **state)
{
    batch_t b;
    char err[200];
    batch_init(&b);
    assert_int_equal(lp1(&b, "cpu,region=b,host=a v=1", err), 0);
    assert_string_equal(point_device(&b, 0), "cpu,host=a,region=b");
    /* Byte order, as Go's bytes.Compare: upper case first, prefixes first. */
    assert_int_equal(lp1(&b, "m,b=1,B=2,a=3,ab=4 v=1", err), 0);
    assert_string_equal(point_device(&b, 1), "m,B=2,a=3,ab=4,b=1");
    /* Escaped form kept: "\ " "\," "\=" in tags, "\ " "\," in the measurement. */
    assert_int_equal(lp1(&b, "my\\ cpu\\,x,z\\ k=v\\=1,a\\,b=c\\ d v=1", err), 0);
    assert_string_equal(point_device(&b, 2), "my\\ cpu\\,x,a\\,b=c\\ d,z\\ k=v\\=1");
    /* More tags than the inline array holds, in reverse order. */
    char line[512], want[512];
    size_t n = (size_t)snprintf(line, sizeof line, "m");
    for (int i = 19; i >= 0; i--)
        n += (size_t)snprintf(line + n, sizeof line - n, ",t%02d=%d", i, i);
    snprintf(line + n, sizeof line - n, " v=1");
    n = (size_t)snprintf(want, sizeof want, "m");
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(want + n, sizeof want - n, ",t%02d=%d", i, i);
    assert_int_equal(lp1(&b, line, err), 0);
    assert_string_equal(point_device(&b, 3), want);
    batch_deinit(&b);

    lp_bad("m,a=1,b=2,a=3 v=1", "duplicate tags");
    /* A duplicate among many tags (the qsort path). */
    n = (size_t)snprintf(line, sizeof line, "m");
    for (int i = 19; i >= 0; i--)
        n += (size_t)snprintf(line + n, sizeof line - n, ",t%02d=%d", i % 18, i);
    snprintf(line + n, sizeof line - n, " v=1");
    lp_bad(line, "duplicate tags");

    /* The series key must be a valid device id: at most 200 bytes, no control characters. */
    char big[300];
    memset(big, 'x', sizeof big);
    snprintf(big, sizeof big, "m,k=%0196d v=1", 0); /* key of exactly 200 bytes */
    batch_init(&b);
    assert_int_equal(lp1(&b, big, err), 0);
    assert_int_equal(b.points[0].device_len, 200);
    batch_deinit(&b);
    snprintf(big, sizeof big, "m,k=%0197d v=1", 0);
    lp_bad(big, "series key is longer than 200 bytes");
    lp_bad("cp\tu v=1", "invalid series key: contains a control character");
}

static void test_lp_escapes(void **state)
{
    batch_t b;
    char err[200];
    batch_init(&b);
    /* Field keys: "\," "\=" "\ " unescape; a backslash before anything else is literal. */
    assert_int_equal(lp1(&b, "m f\\ o\\,o\\=x=1,a\\b=2,c\\\\d=3", err), 0);
    assert_int_equal(b.points[0].nfields, 3);
    assert_double_exact(field(&b, 0, "f o,o=x"), 1);
    assert_double_exact(field(&b, 0, "a\\b"), 2);
    assert_double_exact(field(&b, 0, "c\\\\d"), 3);
    /* In the measurement "\=" is no escape, and '=' needs none. */
    assert_int_equal(lp1(&b, "a\\=b v=1", err), 0);
    assert_string_equal(point_device(&b, 1), "a\\=b");
    assert_int_equal(lp1(&b, "a=b v=1", err), 0);
    assert_string_equal(point_device(&b, 2), "a=b");
    /* A literal backslash before an escaped delimiter: "\\," is '\' then an escaped ','. */
    assert_int_equal(lp1(&b, "m,t=a\\\\,b v=1", err), 0);
    assert_string_equal(point_device(&b, 3), "m,t=a\\\\,b");
    /* String values: \" and \\ and commas, spaces, '=' inside quotes; the string is dropped. */
    assert_int_equal(lp1(&b, "m s=\"a \\\"q\\\" \\\\, x=1 y\",v=2,t=\"\" 1000000", err), 0);
    assert_int_equal(b.npoints, 5);
    assert_int_equal(b.points[4].nfields, 1);
    assert_double_exact(field(&b, 4, "v"), 2);
    assert_int_equal(b.points[4].ts_ms, 1);
    /* A string ending in an escaped backslash. */
    assert_int_equal(lp1(&b, "m s=\"x\\\\\",v=3", err), 0);
    assert_double_exact(field(&b, 5, "v"), 3);
    batch_deinit(&b);

    /* A run of backslashes before a delimiter: the last one escapes it, the others are literal
     * (the line protocol's grammar, key_escape_seq = "\" {"\"} not("\"), and InfluxDB 1.6.7's
     * tag scanner). So "f\\ x" is one field key, "f\ x", where InfluxDB 1.6.7's field scanner,
     * pairing "\\", ends the field set at the space and refuses the line (README). */
    static const struct {
        const char *line, *key;
    } runs[] = {
        {"m f\\\\ x=7", "f\\ x"},
        {"m g\\\\,h=7", "g\\,h"},
        {"m k\\\\\\ l=7", "k\\\\ l"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        batch_init(&b);
        if (lp1(&b, runs[i].line, err) != 0 || b.points[0].nfields != 1)
            fail_msg("'%s': %s", runs[i].line, err);
        assert_double_exact(field(&b, 0, runs[i].key), 7);
        batch_deinit(&b);
    }
    /* The same run in a tag key and value, as InfluxDB 1.6.7 reads them there too. */
    batch_init(&b);
    assert_int_equal(lp1(&b, "m,t\\\\ k=a\\\\ b v=1", err), 0);
    assert_string_equal(point_device(&b, 0), "m,t\\\\ k=a\\\\ b");
    batch_deinit(&b);

    /* "a\\=1": the '=' is escaped, so the key never ends. */
    lp_bad("m a\\\\=1", "invalid field format");
    lp_bad("m s=\"a\\\"", "unbalanced quotes");
    lp_bad("m s=\"abc", "unbalanced quotes");
    lp_bad("m s=\"a\"x", "invalid field format");
    lp_bad("m s=\"a\"\"b\"", "invalid field format");
}

static void test_lp_floats(void **state)
{
    assert_double_exact(lp_value("0.1"), 0.1);
    assert_double_exact(lp_value("1"), 1.0);
    assert_double_exact(lp_value("-1.5e3"), -1500.0);
    assert_double_exact(lp_value("1."), 1.0);
    assert_double_exact(lp_value(".5"), 0.5);
    assert_double_exact(lp_value("-.5"), -0.5);
    assert_double_exact(lp_value("1E5"), 1e5);
    assert_double_exact(lp_value("1e+2"), 100.0);
    assert_double_exact(lp_value("2.5e-3"), 2.5e-3);
    assert_double_exact(lp_value("007"), 7.0);
    assert_double_exact(lp_value("-0"), -0.0);
    assert_double_exact(lp_value("71.2"), 71.2);
    assert_double_exact(lp_value("1.7976931348623157e308"), 1.7976931348623157e308);
    assert_double_exact(lp_value("4.9e-324"), 4.9e-324);
    assert_double_exact(lp_value("1e-400"), 0.0); /* underflow: zero, as in InfluxDB */
    assert_double_exact(lp_value("123456789012345678901234567890"), 1.2345678901234568e29);

    lp_bad("m v=1e999", "value out of range");
    lp_bad("m v=-1e309", "value out of range");
    const char *bad[] = {"nan",  "NaN", "inf", "-inf", "Infinity", "+1",    "1e",    "1e+",
                         ".",    "-",   "-.",  "0x10", "1_000",    "1.2.3", "1e3.5", "1ee3",
                         "1,5x", "12a", "e5",  "--1",  "1-",       "\"x\"y"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "m v=%s", bad[i]);
        lp_bad(line, strcmp(bad[i], "\"x\"y") == 0 ? "invalid field format"
                     : strcmp(bad[i], "1,5x") == 0 ? "invalid field format"
                                                   : "invalid number");
    }
    /* Absurdly long number tokens are refused rather than copied. */
    char line[300];
    memset(line, '1', sizeof line);
    memcpy(line, "m v=", 4);
    line[sizeof line - 1] = '\0';
    lp_bad(line, "invalid number");
}

/* Floats of every shape agree with strtod, bit for bit (the parser has a fast path). */
static void test_lp_floats_vs_strtod(void **state)
{
    uint64_t x = 88172645463325252ULL; /* xorshift64, fixed seed: reproducible */
    char text[64];
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int digits = 1 + (int)(x % 19);
        int exp = (int)((x >> 8) % 80) - 40;
        uint64_t mant = (x >> 16) % 10000000000000000000ULL;
        switch (i % 4) {
        case 0: /* decimal with a point, e.g. 71.25 */
            snprintf(text, sizeof text, "%.*f", (int)(x >> 40) % 12,
                     (double)(mant % 100000000) / 1000.0);
            break;
        case 1: /* exponent form */
            snprintf(text, sizeof text, "%.*e", digits - 1, (double)mant * 1e-10);
            snprintf(text + strlen(text) - 4, 8, "e%d", exp); /* replace the exponent */
            break;
        case 2: /* many digits */
            snprintf(text, sizeof text, "%llu.%llu", (unsigned long long)mant,
                     (unsigned long long)(x % 100000));
            break;
        default: /* shortest round-trip form of a random double */
            snprintf(text, sizeof text, "%.17g", (double)(int64_t)x / 1e9);
        }
        if (x & 1 && text[0] != '-') {
            memmove(text + 1, text, strlen(text) + 1);
            text[0] = '-';
        }
        assert_double_exact(lp_value(text), strtod(text, NULL));
    }
}

static void test_lp_integers(void **state)
{
    assert_double_exact(lp_value("12i"), 12.0);
    assert_double_exact(lp_value("-12i"), -12.0);
    assert_double_exact(lp_value("0i"), 0.0);
    assert_double_exact(lp_value("9223372036854775807i"), 9223372036854775807.0);
    assert_double_exact(lp_value("-9223372036854775808i"), -9223372036854775808.0);
    assert_double_exact(lp_value("9007199254740993i"), 9007199254740992.0); /* nearest double */
    assert_double_exact(lp_value("12u"), 12.0);
    assert_double_exact(lp_value("0u"), 0.0);
    assert_double_exact(lp_value("18446744073709551615u"), 18446744073709551615.0);

    lp_bad("m v=9223372036854775808i", "value out of range");
    lp_bad("m v=-9223372036854775809i", "value out of range");
    lp_bad("m v=99999999999999999999999i", "value out of range");
    lp_bad("m v=18446744073709551616u", "value out of range");
    const char *bad[] = {"i",   "-i",   "1.5i", "1e3i", "+1i", "1ii", "0x1i", "u",
                         "-1u", "1.0u", "+1u",  "1iu",  "1ui", "12I", "12U"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "m v=%s", bad[i]);
        lp_bad(line, "invalid number");
    }
}

static void test_lp_booleans(void **state)
{
    const char *t[] = {"t", "T", "true", "True", "TRUE"};
    const char *f[] = {"f", "F", "false", "False", "FALSE"};
    for (size_t i = 0; i < 5; i++) {
        assert_double_exact(lp_value(t[i]), 1.0);
        assert_double_exact(lp_value(f[i]), 0.0);
    }
    const char *bad[] = {"tru", "TRue", "trueX", "fals", "FAlse", "tt", "Ff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "m v=%s", bad[i]);
        lp_bad(line, "invalid boolean");
    }
    lp_bad("m v=yes", "invalid number");
}

static void test_lp_fields(void **state)
{
    batch_t b;
    char err[200];
    batch_init(&b);
    /* Mixed types in one line; duplicate keys: the last wins. */
    assert_int_equal(lp1(&b, "m a=1,b=2i,c=3u,d=t,e=\"s\",a=4", err), 0);
    assert_int_equal(b.points[0].nfields, 4);
    assert_double_exact(field(&b, 0, "a"), 4.0);
    assert_double_exact(field(&b, 0, "b"), 2.0);
    assert_double_exact(field(&b, 0, "c"), 3.0);
    assert_double_exact(field(&b, 0, "d"), 1.0);
    /* Only string fields: accepted, but no point. */
    assert_int_equal(lp1(&b, "m s=\"x\",t=\"y\" 1000000", err), 0);
    assert_int_equal(b.npoints, 1);
    assert_int_equal(b.nfields, 4);
    /* More fields than the inline array holds. */
    char line[1024];
    size_t n = (size_t)snprintf(line, sizeof line, "m ");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%sf%d=%d.5", i ? "," : "", i, i);
    assert_int_equal(lp1(&b, line, err), 0);
    assert_int_equal(b.npoints, 2);
    assert_int_equal(b.points[1].nfields, 40);
    assert_double_exact(field(&b, 1, "f0"), 0.5);
    assert_double_exact(field(&b, 1, "f39"), 39.5);
    /* A field key of exactly 200 bytes is fine, also when it needed unescaping. */
    char key[201];
    memset(key, 'k', 200);
    key[200] = '\0';
    snprintf(line, sizeof line, "m %s=1", key);
    assert_int_equal(lp1(&b, line, err), 0);
    snprintf(line, sizeof line, "m \\ %s=1", key + 1);
    assert_int_equal(lp1(&b, line, err), 0);
    assert_int_equal(b.fields[b.nfields - 1].name_len, 200);
    batch_deinit(&b);

    snprintf(line, sizeof line, "m %sk=1", key);
    lp_bad(line, "invalid field key: is longer than 200 bytes");
    snprintf(line, sizeof line, "m \\ %s=1", key);
    lp_bad(line, "invalid field key: is longer than 200 bytes");
    lp_bad("m a\x01=1", "invalid field key: contains a control character");
    /* A bad key after good fields: nothing of the line is kept. */
    lp_bad("m a=1,b=2,c\x7f=3", "invalid field key: contains a control character");
}

static void test_lp_missing_parts(void **state)
{
    lp_bad("cpu", "missing fields");
    lp_bad("cpu ", "missing fields");
    lp_bad("cpu,host=a", "missing fields");
    lp_bad("cpu,host=a   ", "missing fields");
    lp_bad("cpu,host=a value=", "missing field value");
    lp_bad("cpu value= 1", "missing field value");
    lp_bad("cpu value=,x=1", "missing field value");
    lp_bad("cpu value", "invalid field format");
    lp_bad("cpu value 1", "invalid field format");
    lp_bad("cpu =1", "missing field key");
    lp_bad("cpu v=1,", "missing field key");
    lp_bad("cpu v=1,,w=2", "missing field key");
    lp_bad("cpu v=1,=2", "missing field key");
    lp_bad("cpu,=a v=1", "missing tag key");
    lp_bad("cpu, v=1", "missing tag key");
    lp_bad("cpu,host= v=1", "missing tag value");
    lp_bad("cpu,host v=1", "missing tag value");
    lp_bad("cpu,host=a, v=1", "missing tag key");
    lp_bad("cpu,host=a=b v=1", "invalid tag format");
    lp_bad(",host=a v=1", "missing measurement");
    lp_bad(" v=1", "missing fields"); /* leading blanks are skipped: "v=1" is a measurement */
}

static void test_lp_timestamps(void **state)
{
    int64_t ms;
    char err[200];
    assert_int_equal(lp_ts("1732780800123456789", LP_NS, &ms, err), 0);
    assert_int_equal(ms, 1732780800123LL);
    assert_int_equal(lp_ts("1732780800123456", LP_US, &ms, err), 0);
    assert_int_equal(ms, 1732780800123LL);
    assert_int_equal(lp_ts("1732780800123", LP_MS, &ms, err), 0);
    assert_int_equal(ms, 1732780800123LL);
    assert_int_equal(lp_ts("1732780800", LP_S, &ms, err), 0);
    assert_int_equal(ms, 1732780800000LL);
    assert_int_equal(lp_ts("28879680", LP_M, &ms, err), 0); /* InfluxDB's m and h */
    assert_int_equal(ms, 1732780800000LL);
    assert_int_equal(lp_ts("481328", LP_H, &ms, err), 0);
    assert_int_equal(ms, 1732780800000LL);
    assert_int_equal(lp_ts("4223371679", LP_M, &ms, err), 0); /* year 9999: the last minute */
    assert_int_equal(ms, 4223371679LL * 60000);
    assert_int_equal(lp_ts("70389527", LP_H, &ms, err), 0);
    assert_int_equal(ms, 70389527LL * 3600000);
    assert_int_equal(lp_ts("1999999", LP_NS, &ms, err), 0); /* floor, not round */
    assert_int_equal(ms, 1);
    assert_int_equal(lp_ts("0", LP_NS, &ms, err), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(lp_ts("999999", LP_NS, &ms, err), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(lp_ts("253402300799", LP_S, &ms, err), 0);
    assert_int_equal(ms, VTIME_MAX_MS - 999);
    assert_int_equal(lp_ts("253402300799999", LP_MS, &ms, err), 0);
    assert_int_equal(ms, VTIME_MAX_MS);
    assert_int_equal(lp_ts("9223372036854775807", LP_NS, &ms, err), 0); /* year 2262 */
    assert_int_equal(ms, 9223372036854LL);
    assert_int_equal(lp_ts("", LP_NS, &ms, err), 0); /* "m v=1 ": trailing blank, no ts */
    assert_int_equal(ms, NOW);
    assert_int_equal(lp_ts("5000000   ", LP_NS, &ms, err), 0);
    assert_int_equal(ms, 5);

    /* Out of vigil's range after conversion (negative: floor makes -1 ns -1 ms). */
    /* Past 9999, the coarsest finer unit in which it is a time vigil keeps is named with the
     * precision to declare (was the range alone); before 1970, the range alone. */
    const struct {
        const char *ts;
        lp_precision_t p;
        const char *hint;
    } range[] = {{"-1", LP_NS, NULL},
                 {"-1", LP_S, NULL},
                 {"-1000000", LP_NS, NULL},
                 {"253402300800", LP_S, "milliseconds: declare precision=ms"},
                 {"253402300800000", LP_MS, "microseconds: declare precision=us"},
                 {"253402300800000000", LP_US, "nanoseconds: declare precision=ns"},
                 {"9223372036854775807", LP_S, "nanoseconds: declare precision=ns"},
                 {"-9223372036854775808", LP_S, NULL},
                 {"-1", LP_M, NULL},
                 {"4223371680", LP_M, "seconds: declare precision=s"},
                 {"70389528", LP_H, "minutes: declare precision=m"},
                 {"9223372036854775807", LP_H, "nanoseconds: declare precision=ns"},
                 {"-9223372036854775808", LP_H, NULL},
                 {"9223372036854775807", LP_MS, "nanoseconds: declare precision=ns"},
                 {"1733300000000000000", LP_MS, "nanoseconds: declare precision=ns"},
                 {"1733300000000000", LP_S, "microseconds: declare precision=us"},
                 {"1733300000000", LP_S, "milliseconds: declare precision=ms"},
                 {"1733300000000000000", LP_US, "nanoseconds: declare precision=ns"},
                 {"100000000000000000", LP_S, "microseconds: declare precision=us"}};
    for (size_t i = 0; i < sizeof range / sizeof range[0]; i++) {
        char want[160];
        snprintf(want, sizeof want, "timestamp out of range: before 1970 or after 9999%s%s",
                 range[i].hint ? "; looks like epoch " : "", range[i].hint ? range[i].hint : "");
        assert_int_equal(lp_ts(range[i].ts, range[i].p, &ms, err), ERR_INVAL);
        assert_string_equal(err, want);
    }
    const char *bad[] = {"9223372036854775808",
                         "-9223372036854775809",
                         "12a",
                         "1.5",
                         "0x10",
                         "+1",
                         "-",
                         "1e9",
                         "123 456",
                         "123 x",
                         "123\t"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (lp_ts(bad[i], LP_NS, &ms, err) != ERR_INVAL || strcmp(err, "bad timestamp") != 0)
            fail_msg("timestamp '%s': '%s'", bad[i], err);
    }
}

/* Session 67: a timestamp in an implied unit (no precision=, the stream) before 1973-03-03 as
 * nanoseconds is refused with the date, the unit it looks like and the fix; declared, kept. */
static void implied_bad(lp_unit_t unit, const char *line, const char *reason)
{
    batch_t b;
    char err[240];
    lp_opts_t o = opts_ns();
    o.unit = unit;
    batch_init(&b);
    int rc = lp_parse_line(&b, line, strlen(line), &o, NOW, 1, err, sizeof err);
    if (rc != ERR_INVAL || strcmp(err, reason) != 0)
        fail_msg("line '%s': rc %d, reason '%s', expected '%s'", line, rc, err, reason);
    assert_int_equal(b.npoints, 0);
    batch_deinit(&b);
}

static void test_lp_implied_unit(void **state)
{
    implied_bad(
        LP_UNIT_IMPLIED_PARAM, "pump,device=p1 vib=1 1733580000",
        "timestamp 1733580000 as nanoseconds (no precision given) is "
        "1970-01-01T00:00:01.733Z, before 1973-03-03T09:46:40Z: looks like epoch seconds: declare "
        "precision=s");
    implied_bad(
        LP_UNIT_IMPLIED_PARAM, "m v=1 1733580000123",
        "timestamp 1733580000123 as nanoseconds (no precision given) is "
        "1970-01-01T00:28:53.580Z, before 1973-03-03T09:46:40Z: looks like epoch milliseconds: "
        "declare precision=ms");
    implied_bad(
        LP_UNIT_IMPLIED_PARAM, "m v=1 1733580000123456",
        "timestamp 1733580000123456 as nanoseconds (no precision given) is "
        "1970-01-21T01:33:00.000Z, before 1973-03-03T09:46:40Z: looks like epoch microseconds: "
        "declare precision=us");
    implied_bad(
        LP_UNIT_IMPLIED_PARAM, "m v=1 5000",
        "timestamp 5000 as nanoseconds (no precision given) is 1970-01-01T00:00:00.000Z, "
        "before 1973-03-03T09:46:40Z: send a real time or none (precision=ns stores it as it is)");
    implied_bad(
        LP_UNIT_IMPLIED_STREAM, "m v=1 1733580000",
        "timestamp 1733580000 as nanoseconds (the stream's unit) is "
        "1970-01-01T00:00:01.733Z, before 1973-03-03T09:46:40Z: looks like epoch seconds: send "
        "nanoseconds (1733580000000000000) or no timestamp");
    /* Microseconds of 9999 do not fit int64 as nanoseconds: no number to send is named. */
    implied_bad(LP_UNIT_IMPLIED_STREAM, "m v=1 99999999999999999",
                "timestamp 99999999999999999 as nanoseconds (the stream's unit) is "
                "1973-03-03T09:46:39.999Z, before 1973-03-03T09:46:40Z: looks like epoch "
                "microseconds: send "
                "nanoseconds or no timestamp");
    implied_bad(LP_UNIT_IMPLIED_STREAM, "m v=1 0",
                "timestamp 0 as nanoseconds (the stream's unit) is 1970-01-01T00:00:00.000Z, "
                "before 1973-03-03T09:46:40Z: send a real time or none");

    /* 1e17 on, no timestamp, a declared unit (precision=ns too) and a negative one (before
     * 1970's own error) are as before. */
    batch_t b;
    char err[200];
    lp_opts_t o = opts_ns();
    o.unit = LP_UNIT_IMPLIED_PARAM;
    batch_init(&b);
    assert_int_equal(lp_parse_line(&b, "m v=1 100000000000000000", 24, &o, NOW, 1, err, sizeof err),
                     0);
    assert_int_equal(b.points[0].ts_ms, 100000000000LL);
    assert_int_equal(lp_parse_line(&b, "m v=1", 5, &o, NOW, 1, err, sizeof err), 0);
    assert_int_equal(b.points[1].ts_ms, NOW);
    assert_int_equal(lp_parse_line(&b, "m v=1 -5", 8, &o, NOW, 1, err, sizeof err), ERR_INVAL);
    assert_string_equal(err, "timestamp out of range: before 1970 or after 9999");
    o.unit = LP_UNIT_DECLARED;
    assert_int_equal(lp_parse_line(&b, "m v=1 5000000", 13, &o, NOW, 1, err, sizeof err), 0);
    assert_int_equal(b.points[2].ts_ms, 5);

    /* A body's error (/write's): the longest reasons keep their fix whole, the quote gives way
     * (lp_parse cut its reasons at 159 bytes: "declare precision" without "=us"). */
    parse_errors_t errs = {0};
    o.unit = LP_UNIT_IMPLIED_PARAM;
    const char *body = "pump,device=p1,site=north-hall-b,line=packaging-3 vib=1 99999999999999999\n"
                       "pump,device=p1 vib=1 99999999\n";
    assert_int_equal(lp_parse(&b, body, strlen(body), &o, NOW, 1, &errs), 0);
    assert_int_equal(errs.count, 2);
    assert_string_equal(
        errs.e[0].msg, "unable to parse 'pump,device=p1,site=north-hall-b,line=packaging-3 vib=1 "
                       "999...': timestamp 99999999999999999 as "
                       "nanoseconds (no precision given) is 1973-03-03T09:46:39.999Z, before "
                       "1973-03-03T09:46:40Z: looks like epoch microseconds: declare precision=us");
    assert_string_equal(
        errs.e[1].msg,
        "unable to parse 'pump,device=p1 vib=1 99999999': timestamp 99999999 as nanoseconds "
        "(no precision given) is 1970-01-01T00:00:00.099Z, before 1973-03-03T09:46:40Z: "
        "send a real time or none (precision=ns stores it as it is)");
    assert_int_equal(b.npoints, 3);
    batch_deinit(&b);
}

static void test_lp_precision_parse(void **state)
{
    lp_precision_t p = LP_S;
    assert_int_equal(lp_precision_parse("", &p), 0);
    assert_int_equal(p, LP_NS);
    p = LP_S;
    assert_int_equal(lp_precision_parse("n", &p), 0);
    assert_int_equal(p, LP_NS);
    p = LP_S;
    assert_int_equal(lp_precision_parse("ns", &p), 0);
    assert_int_equal(p, LP_NS);
    assert_int_equal(lp_precision_parse("u", &p), 0);
    assert_int_equal(p, LP_US);
    p = LP_S;
    assert_int_equal(lp_precision_parse("us", &p), 0);
    assert_int_equal(p, LP_US);
    assert_int_equal(lp_precision_parse("ms", &p), 0);
    assert_int_equal(p, LP_MS);
    assert_int_equal(lp_precision_parse("s", &p), 0);
    assert_int_equal(p, LP_S);
    assert_int_equal(lp_precision_parse("m", &p), 0);
    assert_int_equal(p, LP_M);
    assert_int_equal(lp_precision_parse("h", &p), 0);
    assert_int_equal(p, LP_H);
    const char *bad[] = {"x", "min", "H", "M", "NS", "sec", "ms ", " s", "rfc3339"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(lp_precision_parse(bad[i], &p), ERR_INVAL);
}

static void test_lp_blank_comment_crlf(void **state)
{
    batch_t b;
    char err[200];
    batch_init(&b);
    const char *skip[] = {"",          " ", "\t \t",        "\r",     "  \r",
                          "# comment", "#", "  # indented", "#m v=1", "# m s=\"x"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++) {
        assert_int_equal(lp1(&b, skip[i], err), 0);
        assert_int_equal(b.npoints, 0);
    }
    assert_int_equal(lp1(&b, "m v=1 1000000\r", err), 0);
    assert_int_equal(b.points[0].ts_ms, 1);
    assert_int_equal(lp1(&b, "m v=2\r", err), 0);
    assert_double_exact(field(&b, 1, "v"), 2.0);
    assert_int_equal(lp1(&b, "  \tm v=3", err), 0);
    assert_string_equal(point_device(&b, 2), "m");
    /* Several blanks between sections, as InfluxDB allows. */
    assert_int_equal(lp1(&b, "m,t=x   v=4   2000000  ", err), 0);
    assert_int_equal(b.points[3].ts_ms, 2);
    batch_deinit(&b);
    lp_bad("m v=1\r\r", "invalid number");
}

static void test_lp_max_line(void **state)
{
    batch_t b;
    char err[200];
    lp_opts_t o = opts_ns();
    o.max_line = 10;
    batch_init(&b);
    assert_int_equal(lp_parse_line(&b, "m v=123456", 10, &o, NOW, 1, err, sizeof err), 0);
    assert_int_equal(lp_parse_line(&b, "m v=123456\r", 11, &o, NOW, 1, err, sizeof err), 0);
    assert_int_equal(lp_parse_line(&b, "m v=1234567", 11, &o, NOW, 1, err, sizeof err), ERR_INVAL);
    assert_string_equal(err, "line longer than 10 bytes"); /* as daemon/stream.c words it */
    assert_int_equal(b.npoints, 2);

    parse_errors_t errs = {0};
    const char *body = "m v=1\nm v=1234567\nm v=2\n";
    assert_int_equal(lp_parse(&b, body, strlen(body), &o, NOW, 1, &errs), 0);
    assert_int_equal(b.npoints, 4);
    assert_int_equal(errs.count, 1);
    assert_int_equal(errs.e[0].item, 2);
    assert_string_equal(errs.e[0].msg, "unable to parse 'm v=1234567': line longer than 10 bytes");
    batch_deinit(&b);
}

static void test_lp_body(void **state)
{
    batch_t b;
    parse_errors_t errs = {0};
    lp_opts_t o = opts_ns();
    batch_init(&b);
    const char *body = "# header\n"                              /* 5 */
                       "cpu,host=a value=1 1000000\r\n"          /* 6 */
                       "\n"                                      /* 7 */
                       "cpu,host=a value=\n"                     /* 8 */
                       "cpu,host=b value=2 2000000\n"            /* 9 */
                       "   \n"                                   /* 10 */
                       "cpu,host=a value=nan\n"                  /* 11 */
                       "cpu,host=c value=3,msg=\"x\" 3000000\n"; /* 12 */
    assert_int_equal(lp_parse(&b, body, strlen(body), &o, NOW, 5, &errs), 0);
    assert_int_equal(b.npoints, 3);
    assert_int_equal(b.points[0].item, 6);
    assert_int_equal(b.points[1].item, 9);
    assert_int_equal(b.points[2].item, 12);
    assert_string_equal(point_device(&b, 1), "cpu,host=b");
    assert_int_equal(b.points[2].ts_ms, 3);
    assert_int_equal(errs.count, 2);
    assert_int_equal(errs.kept, 2);
    assert_int_equal(errs.e[0].item, 8);
    assert_string_equal(errs.e[0].msg, "unable to parse 'cpu,host=a value=': missing field value");
    assert_int_equal(errs.e[1].item, 11);
    assert_string_equal(errs.e[1].msg, "unable to parse 'cpu,host=a value=nan': invalid number");

    /* A reason long enough that quote and reason overflow the message (199 bytes): the quote
     * is shortened, the reason kept whole (before: cut to "...longer than 200 byt"). */
    batch_reset(&b);
    memset(&errs, 0, sizeof errs);
    lp_opts_t longtag = o;
    char tag[64], line[400];
    memset(tag, 't', 63);
    tag[63] = '\0';
    longtag.device_tag = tag;
    int ln = snprintf(line, sizeof line, "m,%s=", tag);
    memset(line + ln, 'd', 210);
    snprintf(line + ln + 210, sizeof line - (size_t)ln - 210, " v=1\n");
    assert_int_equal(lp_parse(&b, line, strlen(line), &longtag, NOW, 1, &errs), 0);
    assert_int_equal(errs.count, 1);
    const char *want = "': invalid ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt "
                       "tag: is longer than 200 bytes";
    const char *msg = errs.e[0].msg;
    assert_true(strlen(msg) >= strlen(want));
    assert_string_equal(msg + strlen(msg) - strlen(want), want);
    assert_memory_equal(msg, "unable to parse 'm,ttt", 22);
    assert_true(strstr(msg, "...': invalid") != NULL);
    /* An ordinary reason keeps the full 80-byte quote. */
    batch_reset(&b);
    memset(&errs, 0, sizeof errs);
    assert_int_equal(lp_parse(&b, line, strlen(line), &o, NOW, 1, &errs), 0);
    msg = errs.e[0].msg;
    assert_int_equal(strlen(msg), strlen("unable to parse '") + 80 +
                                      strlen("': series key is longer than 200 bytes"));
    assert_string_equal(msg + 17 + 80, "': series key is longer than 200 bytes");

    /* No final newline; an empty body; a bad CRLF line is quoted without its CR. */
    batch_reset(&b);
    memset(&errs, 0, sizeof errs);
    body = "m v=1\r\nm v=\r\nm v=2";
    assert_int_equal(lp_parse(&b, body, strlen(body), &o, NOW, 1, &errs), 0);
    assert_int_equal(b.npoints, 2);
    assert_int_equal(b.points[1].item, 3);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.e[0].msg, "unable to parse 'm v=': missing field value");
    assert_int_equal(errs.parsed, 2);
    /* Leading blanks are not quoted (InfluxDB quotes the line from its first other byte): the
     * influx shell's INSERT sends " m v=" for "INSERT m v=". */
    body = " \t m v=\n";
    assert_int_equal(lp_parse(&b, body, strlen(body), &o, NOW, 1, &errs), 0);
    assert_int_equal(errs.count, 2);
    assert_string_equal(errs.e[1].msg, "unable to parse 'm v=': missing field value");
    assert_int_equal(lp_parse(&b, "", 0, &o, NOW, 1, &errs), 0);
    assert_int_equal(lp_parse(&b, "\n\n", 2, &o, NOW, 1, &errs), 0);
    assert_int_equal(b.npoints, 2);
    assert_int_equal(errs.count, 2);
    assert_int_equal(errs.parsed, 2);

    /* parsed counts the good lines, so /write tells "every line bad" from a partial write: a
     * line of string fields only is good though it adds no point; blank and comment lines
     * are neither good nor bad. */
    const struct {
        const char *body;
        uint32_t parsed, bad;
    } cases[] = {
        {"m v=\n# c\n\nbad\n", 0, 2},
        {"m s=\"x\"\nbad\n", 1, 1},
        {"m v=1\nm v=2\n", 2, 0},
        {"# only\n  \n", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        batch_reset(&b);
        memset(&errs, 0, sizeof errs);
        body = cases[i].body;
        assert_int_equal(lp_parse(&b, body, strlen(body), &o, NOW, 1, &errs), 0);
        if (errs.parsed != cases[i].parsed || errs.count != cases[i].bad)
            fail_msg("'%s': parsed %u bad %u, want %u and %u", body, errs.parsed, errs.count,
                     cases[i].parsed, cases[i].bad);
    }
    batch_deinit(&b);
}

static void test_lp_multiline_string(void **state)
{
    batch_t b;
    parse_errors_t errs = {0};
    lp_opts_t o = opts_ns();
    batch_init(&b);
    /* A string field may hold newlines (InfluxDB 1.x accepts them); line numbers count them. */
    const char *body = "m msg=\"line one\nline \\\"two\\\"\nthree\",v=1 1000000\n" /* 1-3 */
                       "m,t=a\"b v=2\n"                                            /* 4 */
                       "m v=3,msg=\"x\"\n"                                         /* 5 */
                       "m,t=q v=\n"                                                /* 6 */
                       "m s=\"\\\\\",v=4\n"                                        /* 7 */
                       "m a\\=\"b=5\n"                                             /* 8 */
                       "m v=6\n";                                                  /* 9 */
    assert_int_equal(lp_parse(&b, body, strlen(body), &o, NOW, 1, &errs), 0);
    assert_int_equal(errs.count, 1);
    assert_int_equal(errs.e[0].item, 6);
    assert_int_equal(b.npoints, 6);
    assert_int_equal(b.points[0].item, 1);
    assert_double_exact(field(&b, 0, "v"), 1.0);
    assert_int_equal(b.points[0].ts_ms, 1);
    assert_int_equal(b.points[1].item, 4);
    assert_string_equal(point_device(&b, 1), "m,t=a\"b"); /* a quote in a tag is plain */
    assert_int_equal(b.points[2].item, 5);
    assert_int_equal(b.points[3].item, 7);
    assert_int_equal(b.points[4].item, 8);
    assert_double_exact(field(&b, 4, "a=\"b"), 5.0);
    assert_int_equal(b.points[5].item, 9);

    /* An unterminated string takes the rest of the body, as in InfluxDB. */
    batch_reset(&b);
    memset(&errs, 0, sizeof errs);
    body = "m v=1\nm s=\"open\nm v=2\n";
    assert_int_equal(lp_parse(&b, body, strlen(body), &o, NOW, 1, &errs), 0);
    assert_int_equal(b.npoints, 1);
    assert_int_equal(errs.count, 1);
    assert_int_equal(errs.e[0].item, 2);
    assert_string_equal(errs.e[0].msg, "unable to parse 'm s=\"open\nm v=2': unbalanced quotes");
    batch_deinit(&b);
}

static void test_lp_errors_kept_and_shortened(void **state)
{
    batch_t b;
    parse_errors_t errs = {0};
    lp_opts_t o = opts_ns();
    batch_init(&b);
    /* A long bad line is quoted by its first 77 bytes and "...". */
    char body[8192];
    size_t n = (size_t)snprintf(body, sizeof body, "m,host=");
    for (int i = 0; i < 100; i++)
        body[n++] = (char)('a' + i % 26);
    n += (size_t)snprintf(body + n, sizeof body - n, " v=oops\n");
    assert_int_equal(lp_parse(&b, body, n, &o, NOW, 1, &errs), 0);
    assert_int_equal(errs.count, 1);
    char want[200];
    snprintf(want, sizeof want, "unable to parse '%.77s...': invalid number", body);
    assert_string_equal(errs.e[0].msg, want);
    /* Exactly 80 bytes are quoted whole. */
    memset(&errs, 0, sizeof errs);
    n = (size_t)snprintf(body, sizeof body, "m,h=%072d v=x\n", 0);
    assert_int_equal(n, 81);
    assert_int_equal(lp_parse(&b, body, n, &o, NOW, 1, &errs), 0);
    snprintf(want, sizeof want, "unable to parse '%.80s': invalid number", body);
    assert_string_equal(errs.e[0].msg, want);
    /* A quote is not cut inside a UTF-8 character (its lead byte alone was quoted, shown as
     * U+FFFD in the answer): "m,h=" and 36 two-byte characters, the 37th left out whole. */
    memset(&errs, 0, sizeof errs);
    n = (size_t)snprintf(body, sizeof body, "m,h=");
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, "\xc3\xa9");
    n += (size_t)snprintf(body + n, sizeof body - n, " v=x\n");
    assert_int_equal(lp_parse(&b, body, n, &o, NOW, 1, &errs), 0);
    assert_int_equal(errs.count, 1);
    snprintf(want, sizeof want, "unable to parse '%.76s...': invalid number", body);
    assert_string_equal(errs.e[0].msg, want);
    /* A NUL byte is quoted as "\0", not where the quote ends (it showed "m,t=a"). */
    memset(&errs, 0, sizeof errs);
    assert_int_equal(lp_parse(&b, "m,t=a\0b v=1\n", 12, &o, NOW, 1, &errs), 0);
    assert_int_equal(errs.count, 1);
    assert_string_equal(errs.e[0].msg,
                        "unable to parse 'm,t=a\\0b v=1': invalid series key: contains a control "
                        "character");
    /* A line of NULs still quotes at most 80 bytes (77 and "..."), so the reason is not cut
     * off by the message's 200 bytes (each NUL takes two: the 77 hold "m,t=" and 36 NULs). */
    memset(&errs, 0, sizeof errs);
    n = (size_t)snprintf(body, sizeof body, "m,t=");
    memset(body + n, 0, 90);
    n += 90;
    n += (size_t)snprintf(body + n, sizeof body - n, " v=1\n");
    assert_int_equal(lp_parse(&b, body, n, &o, NOW, 1, &errs), 0);
    assert_int_equal(errs.count, 1);
    char nuls[80] = "m,t=";
    for (int i = 0; i < 36; i++)
        memcpy(nuls + 4 + 2 * i, "\\0", 2);
    nuls[76] = '\0';
    snprintf(want, sizeof want,
             "unable to parse '%s...': invalid series key: contains a control character", nuls);
    assert_string_equal(errs.e[0].msg, want);

    /* 150 bad lines among good ones: all counted, the first 100 kept, numbers exact. */
    memset(&errs, 0, sizeof errs);
    n = 0;
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, i % 2 ? "m v=%d\n" : "m v=%dx\n", i);
    assert_int_equal(lp_parse(&b, body, n, &o, NOW, 1, &errs), 0);
    assert_int_equal(errs.count, 150);
    assert_int_equal(errs.kept, PARSE_ERRORS_KEEP);
    for (uint32_t i = 0; i < PARSE_ERRORS_KEEP; i++)
        assert_int_equal(errs.e[i].item, 2 * i + 1);
    assert_int_equal(b.npoints, 150);
    assert_int_equal(b.points[149].item, 300);
    assert_double_exact(field(&b, 149, "v"), 299.0);
    batch_deinit(&b);
}

static void test_parse_errors_add(void **state)
{
    parse_errors_t errs = {0};
    parse_errors_add(&errs, 7, "x %d %s", 1, "y");
    assert_int_equal(errs.count, 1);
    assert_int_equal(errs.kept, 1);
    assert_int_equal(errs.e[0].item, 7);
    assert_string_equal(errs.e[0].msg, "x 1 y");
    char big[400];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    parse_errors_add(&errs, 8, "%s", big); /* truncated, still terminated */
    assert_int_equal(strlen(errs.e[1].msg), sizeof errs.e[1].msg - 1);
    for (int i = 0; i < 200; i++)
        parse_errors_add(&errs, (uint32_t)i, "e");
    assert_int_equal(errs.count, 202);
    assert_int_equal(errs.kept, PARSE_ERRORS_KEEP);
}

const struct CMUnitTest parse_lp_tests[] = {
    cmocka_unit_test(test_lp_basic),
    cmocka_unit_test(test_lp_device_tag),
    cmocka_unit_test(test_lp_series_key),
    cmocka_unit_test(test_lp_escapes),
    cmocka_unit_test(test_lp_floats),
    cmocka_unit_test(test_lp_floats_vs_strtod),
    cmocka_unit_test(test_lp_integers),
    cmocka_unit_test(test_lp_booleans),
    cmocka_unit_test(test_lp_fields),
    cmocka_unit_test(test_lp_missing_parts),
    cmocka_unit_test(test_lp_timestamps),
    cmocka_unit_test(test_lp_implied_unit),
    cmocka_unit_test(test_lp_precision_parse),
    cmocka_unit_test(test_lp_blank_comment_crlf),
    cmocka_unit_test(test_lp_max_line),
    cmocka_unit_test(test_lp_body),
    cmocka_unit_test(test_lp_multiline_string),
    cmocka_unit_test(test_lp_errors_kept_and_shortened),
    cmocka_unit_test(test_parse_errors_add),
};
const size_t parse_lp_count = sizeof parse_lp_tests / sizeof parse_lp_tests[0];

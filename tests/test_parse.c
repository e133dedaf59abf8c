/* tests/test_parse.c: unit tests of the ingest parsers (api/parse.h): InfluxDB line protocol
 * and JSON readings. Values are compared exactly: a parsed "0.1" must be the double 0.1. */
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

#define NOW 1795860000123LL /* 2026-11-28T10:00:00.123Z */

static lp_opts_t opts_ns(void)
{
    lp_opts_t o = {"device", LP_NS, 0};
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

static const char *point_device(const batch_t *b, size_t i)
{
    return batch_str(b, b->points[i].device);
}

/* The value of channel name in point i; fails the test when absent. */
static double field(const batch_t *b, size_t i, const char *name)
{
    const batch_point_t *p = &b->points[i];
    for (uint32_t k = p->field0; k < p->field0 + p->nfields; k++)
        if (strcmp(batch_str(b, b->fields[k].name), name) == 0)
            return b->fields[k].value;
    fail_msg("point %zu has no field '%s'", i, name);
    return 0;
}

/* Asserts exact equality of doubles, bit for bit (so 0.0 and -0.0 differ). */
static void assert_double_exact(double got, double want)
{
    if (memcmp(&got, &want, sizeof got) != 0)
        fail_msg("got %.17g, want %.17g", got, want);
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
    const struct {
        const char *ts;
        lp_precision_t p;
    } range[] = {{"-1", LP_NS},
                 {"-1", LP_S},
                 {"-1000000", LP_NS},
                 {"253402300800", LP_S},
                 {"253402300800000", LP_MS},
                 {"253402300800000000", LP_US},
                 {"9223372036854775807", LP_S},
                 {"-9223372036854775808", LP_S},
                 {"-1", LP_M},
                 {"4223371680", LP_M},
                 {"70389528", LP_H},
                 {"9223372036854775807", LP_H},
                 {"-9223372036854775808", LP_H},
                 {"9223372036854775807", LP_MS}};
    for (size_t i = 0; i < sizeof range / sizeof range[0]; i++) {
        assert_int_equal(lp_ts(range[i].ts, range[i].p, &ms, err), ERR_INVAL);
        assert_string_equal(err, "timestamp out of range: before 1970 or after 9999");
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
    assert_string_equal(err, "line too long");
    assert_int_equal(b.npoints, 2);

    parse_errors_t errs = {0};
    const char *body = "m v=1\nm v=1234567\nm v=2\n";
    assert_int_equal(lp_parse(&b, body, strlen(body), &o, NOW, 1, &errs), 0);
    assert_int_equal(b.npoints, 4);
    assert_int_equal(errs.count, 1);
    assert_int_equal(errs.e[0].item, 2);
    assert_string_equal(errs.e[0].msg, "unable to parse 'm v=1234567': line too long");
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

    /* Before 1970 or after 9999 (the last: nanoseconds sent as milliseconds). */
    const char *range[] = {"-1", "253402300800000", "-1.0", "1e300", "1732780800123456789"};
    for (size_t i = 0; i < sizeof range / sizeof range[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"device\":\"d\",\"ts\":%s,\"values\":{\"v\":1}}", range[i]);
        json_item_bad(body, "ts: out of range: epoch milliseconds between 1970 and 9999");
    }
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
                             "\"1732780800123\"",
                             "\"2026-11-28T10:00:00\"",
                             "\"1969-12-31T23:59:59Z\"",
                             "\"2026-02-30T00:00:00Z\""};
    for (size_t i = 0; i < sizeof bad_str / sizeof bad_str[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"device\":\"d\",\"ts\":%s,\"values\":{\"v\":1}}",
                 bad_str[i]);
        json_item_bad(body, "ts: not an RFC 3339 timestamp between 1970 and 9999");
    }
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
    json_body_bad("", "invalid JSON at line 1, column 0: ");
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

    /* An empty body without a buffer is an ordinary JSON error. */
    batch_t b;
    jres_t r;
    batch_init(&b);
    memset(&r, 0, sizeof r);
    assert_int_equal(
        parse_json_readings(&b, NULL, 0, NOW, 0, &r.nitems, &r.errs, r.errmsg, sizeof r.errmsg),
        ERR_INVAL);
    assert_non_null(strstr(r.errmsg, "invalid JSON at line 1, column 0"));

    /* The message carries jansson's text. */
    json_run(&b, "{\"device\":\"d\",\"values\":{\"v\":1e999}}", 0, &r);
    assert_non_null(strstr(r.errmsg, "real number overflow"));
    json_run(&b, "{\"device\":\"d\",\"values\":{\"v\":1}} x", 0, &r);
    assert_non_null(strstr(r.errmsg, "end of file expected"));
    batch_deinit(&b);
}

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

/* Builds an event array from start times (each event's "id" is its position), pages it with
 * limit, and checks the ids kept (in order, want[] ends with -1) and the boundary. */
static void events_page_is(const int64_t *starts, size_t n, size_t limit, const int *want,
                           int64_t want_boundary)
{
    json_t *arr = json_array();
    assert_non_null(arr);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(json_array_append_new(arr, json_pack("{s:I,s:I}", "id", (json_int_t)i,
                                                              "start_ts", (json_int_t)starts[i])),
                         0);
    int64_t boundary = -1;
    size_t k = api__events_page(&arr, limit, &boundary);
    size_t nwant = 0;
    while (want[nwant] >= 0)
        nwant++;
    assert_int_equal(k, nwant);
    assert_int_equal(json_array_size(arr), nwant);
    for (size_t i = 0; i < nwant; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, i), "id")),
                         want[i]);
    if (nwant > 0)
        assert_int_equal(boundary, want_boundary);
    json_decref(arr);
}

static void test_events_page(void **state)
{
    (void)state;
    /* Sorted newest start first; ties keep their order (the active event the backend put in
     * front goes to its place). */
    const int64_t a[] = {50, 90, 70, 70, 10};
    events_page_is(a, 5, 10, (const int[]){1, 2, 3, 0, 4, -1}, 10);
    /* A page never splits one start time: limit 2 would cut the two 70s apart. */
    events_page_is(a, 5, 2, (const int[]){1, -1}, 90);
    events_page_is(a, 5, 3, (const int[]){1, 2, 3, -1}, 70);
    events_page_is(a, 5, 4, (const int[]){1, 2, 3, 0, -1}, 50);
    /* When one start time alone fills the page, all of its events go on it. */
    const int64_t b[] = {30, 30, 30, 20};
    events_page_is(b, 4, 2, (const int[]){0, 1, 2, -1}, 30);
    events_page_is(b, 4, 1, (const int[]){0, 1, 2, -1}, 30);
    events_page_is(b, 4, 3, (const int[]){0, 1, 2, -1}, 30);
    events_page_is(b, 4, 4, (const int[]){0, 1, 2, 3, -1}, 20);
    events_page_is(b, 0, 4, (const int[]){-1}, 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
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
        cmocka_unit_test(test_lp_precision_parse),
        cmocka_unit_test(test_lp_blank_comment_crlf),
        cmocka_unit_test(test_lp_max_line),
        cmocka_unit_test(test_lp_body),
        cmocka_unit_test(test_lp_multiline_string),
        cmocka_unit_test(test_lp_errors_kept_and_shortened),
        cmocka_unit_test(test_parse_errors_add),
        cmocka_unit_test(test_json_object),
        cmocka_unit_test(test_json_ts),
        cmocka_unit_test(test_json_item_errors),
        cmocka_unit_test(test_json_partial),
        cmocka_unit_test(test_json_limit),
        cmocka_unit_test(test_json_bad_body),
        cmocka_unit_test(test_json_str_utf8),
        cmocka_unit_test(test_iq_str_go_escapes),
        cmocka_unit_test(test_iq_quote_ident),
        cmocka_unit_test(test_events_page),
        cmocka_unit_test(test_influxql_regex),
        cmocka_unit_test(test_influxql_regex_alternatives),
        cmocka_unit_test(test_influxql_regex_statement_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

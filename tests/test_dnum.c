/* tests/test_dnum.c: common/dnum.c against the snprintf/strtod loops it replaced (kept here as
 * the reference, verbatim in what they compute), over random doubles of several shapes and the
 * edges: zeros, denormals, DBL_MIN and DBL_MAX, powers of two and of ten and their neighbours
 * (the 1e21 boundary where Go's printing turns to exponents), integers, rounding ties. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnum.h"

/* The reference: influxql_select.c's (now influxql_select_values.c's) go_float loop before
 * dnum_shortest. */
static int ref_shortest(double v, char *digits, int *exp10)
{
    char buf[40];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
    char *e = strchr(buf, 'e');
    int nd = 0;
    for (const char *c = buf; c < e; c++)
        if (*c >= '0' && *c <= '9')
            digits[nd++] = *c;
    digits[nd] = '\0';
    *exp10 = atoi(e + 1);
    return prec;
}

/* The reference: the pipeline's json_rounded before dnum_round, at any precision. */
static double ref_round(double v, int prec)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    return strtod(buf, NULL);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd64(void)
{
    uint64_t x = rng_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static long checked;

/* v's shortest form equals the reference's, reads back as v, and is the shortest that does
 * (the digits without the last one, correctly rounded, do not). */
static void check_shortest(double v)
{
    if (!isfinite(v))
        return;
    char d[24], rd[24], buf[64];
    int e, re;
    int p = dnum_shortest(v, d, &e), rp = ref_shortest(v, rd, &re);
    if (p != rp || e != re || strcmp(d, rd) != 0)
        fail_msg("%a (%.17g): dnum %d %s e%d, reference %d %s e%d", v, v, p, d, e, rp, rd, re);
    assert_int_equal((int)strlen(d), p);
    snprintf(buf, sizeof buf, "%s%c.%se%d", signbit(v) ? "-" : "", d[0], d + 1, e);
    if (p < 17 && !same_bits(strtod(buf, NULL), v) && !(v == 0))
        fail_msg("%a: %s does not read back", v, buf);
    if (p > 1) {
        snprintf(buf, sizeof buf, "%.*e", p - 2, v);
        assert_true(strtod(buf, NULL) != v);
    }
    checked++;
}

static void check_round(double v, int prec)
{
    double got = dnum_round(v, prec), want = ref_round(v, prec);
    if (!same_bits(got, want) && !(isnan(got) && isnan(want)))
        fail_msg("%a (%.17g) at %d digits: dnum %.17g, reference %.17g", v, v, prec, got, want);
    checked++;
}

static void check_all(double v)
{
    check_shortest(v);
    check_shortest(-v);
    check_round(v, 7);
    check_round((float)v, 7);
    check_round(v, (int)(rnd64() % 17) + 1);
}

static void test_edges(void **state)
{
    (void)state;
    const double edges[] = {0.0,
                            -0.0,
                            DBL_MIN,
                            DBL_MAX,
                            DBL_TRUE_MIN,
                            DBL_MIN - DBL_TRUE_MIN,
                            FLT_MIN,
                            FLT_MAX,
                            FLT_TRUE_MIN,
                            1e21,
                            1e22,
                            1e23,
                            999999999999999999999.0,
                            1e-7,
                            1e-6,
                            0.1,
                            0.2,
                            0.3,
                            0.1 + 0.2,
                            0.5,
                            2.5,
                            9.5,
                            0.15,
                            0.25,
                            1.5e-5,
                            5e-324,
                            9007199254740992.0,
                            9007199254740993.0,
                            123456789012345678.0,
                            1.7976931348623157e308,
                            2.2250738585072014e-308,
                            4.9406564584124654e-324,
                            9.999999999999999e22,
                            0.30000000000000004};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        for (int k = -3; k <= 3; k++) { /* and its neighbours */
            double v = edges[i];
            for (int j = 0; j < (k < 0 ? -k : k); j++)
                v = nextafter(v, k < 0 ? -INFINITY : INFINITY);
            check_all(v);
        }
    for (int e = -1074; e <= 1023; e++) { /* powers of two: the uneven rounding interval */
        double v = ldexp(1.0, e);
        check_all(v);
        check_all(nextafter(v, 0));
        check_all(nextafter(v, INFINITY));
    }
    for (int e = -325; e <= 308; e++) { /* powers of ten and their neighbours */
        char buf[16];
        snprintf(buf, sizeof buf, "1e%d", e);
        double v = strtod(buf, NULL);
        check_all(v);
        check_all(nextafter(v, 0));
        check_all(nextafter(v, INFINITY));
    }
    for (int i = 0; i <= 100000; i++) { /* integers, halves (ties), thousandths */
        check_all(i);
        check_all(i + 0.5);
        check_all(i * 1e-3);
    }
    assert_true(isnan(dnum_round(NAN, 7)));
    assert_true(isinf(dnum_round(INFINITY, 7)));
}

static void test_random(void **state)
{
    (void)state;
    for (int i = 0; i < 100000; i++) {
        uint64_t b = rnd64();
        check_all(from_bits(b)); /* any bit pattern: every exponent, denormals */
        /* readings as sensors give them: a few decimals */
        double r = (double)(int64_t)(rnd64() % 2000000) / pow(10, (int)(rnd64() % 6));
        check_all(r);
        /* means and scores: full 17-digit doubles of ordinary size */
        double m = from_bits((b & 0x000fffffffffffffULL) | ((uint64_t)(1000 + rnd64() % 60) << 52));
        check_all(m);
        /* what the pipeline keeps: floats, and floats rounded to 7 digits */
        float f = (float)m;
        check_all(f);
        check_all(ref_round(f, 7));
    }
    print_message("%ld numbers checked\n", checked);
}

/* Where exp10_guess stops comparing (beyond 1e37 and below 1e-22 it may be one too low), the
 * fast path's scaled x is largest: up to 10^18 at 17 digits, the bound that its fistp-based
 * floor and conversion (x < 2^63) rely on. */
static void test_guess_ends(void **state)
{
    (void)state;
    const double ends[] = {1e37, 1e-23};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        for (int j = 0; j < 20000; j++) {
            double f = 1 + (double)(rnd64() >> 11) * 0x1p-53 * 99; /* [1, 100) */
            check_all(ends[i] * f);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_guess_ends),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* common/dnum.c: see dnum.h. The fast path, for one precision p <= 15: x = |v| * 10^s, with s
 * chosen so that x has p digits before the point, is one correctly rounded multiplication or
 * division by an exact power of ten (10^0..10^22 are exact doubles), so |x - exact| <= x * 2^-53.
 * Rounding x to an integer D then gives printf's D unless the exact fraction may lie on the
 * other side of one half (checked with twice that bound; exact ties go the slow way, where
 * printf rounds half to even). D * 10^-s is again one correctly rounded operation on exact
 * operands (D < 10^15 < 2^53), so it is the double strtod reads from D's digits (Clinger's fast
 * path). Outside those ranges, and for p 16 and 17, snprintf and strtod as before. */
#include "dnum.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAST_DIGITS_MAX 15
#define POW10_EXACT_MAX 22

static const double pow10_exact[POW10_EXACT_MAX + 1] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* a * 10^s, one rounding; |s| <= POW10_EXACT_MAX. */
static double scale10(double a, int s)
{
    return s >= 0 ? a * pow10_exact[s] : a / pow10_exact[-s];
}

/* 10^-22 .. 10^37 (the nearest doubles), where exp10_guess looks: beyond, every precision's
 * scale is past the exact powers of ten and the fast path gives up anyway. */
#define GUESS_LO (-22)
static const double pow10_near[] = {
    1e-22, 1e-21, 1e-20, 1e-19, 1e-18, 1e-17, 1e-16, 1e-15, 1e-14, 1e-13, 1e-12, 1e-11,
    1e-10, 1e-9,  1e-8,  1e-7,  1e-6,  1e-5,  1e-4,  1e-3,  1e-2,  1e-1,  1e0,   1e1,
    1e2,   1e3,   1e4,   1e5,   1e6,   1e7,   1e8,   1e9,   1e10,  1e11,  1e12,  1e13,
    1e14,  1e15,  1e16,  1e17,  1e18,  1e19,  1e20,  1e21,  1e22,  1e23,  1e24,  1e25,
    1e26,  1e27,  1e28,  1e29,  1e30,  1e31,  1e32,  1e33,  1e34,  1e35,  1e36,  1e37};
#define GUESS_HI (GUESS_LO + (int)(sizeof pow10_near / sizeof pow10_near[0]) - 1)

/* The decimal exponent of a > 0, floor(log10(a)) without log10 (a quarter of the fast path's time):
 * from the binary exponent, then one comparison. Off by one next to a power of ten, which
 * fast_round corrects (it checks x's range itself). */
static int exp10_guess(double a)
{
    int b;
    frexp(a, &b); /* a in [2^(b-1), 2^b) */
    int e = (int)floor((b - 1) * 0.30102999566398120);
    if (e >= GUESS_LO && e < GUESS_HI && a >= pow10_near[e + 1 - GUESS_LO])
        e++;
    return e;
}

/* Rounds a > 0 to p significant digits (p <= FAST_DIGITS_MAX) as printf's %e would: *d the p
 * digits as an integer, *e the exponent. Returns 0, or -1 when the fast path cannot be sure (near
 * a tie, or a scale beyond the exact powers of ten): the caller then asks snprintf. */
static int fast_round(double a, int p, int e, int64_t *d, int *e_out)
{
    for (int tries = 0; tries < 2; tries++) {
        int s = p - 1 - e;
        if (s > POW10_EXACT_MAX || s < -POW10_EXACT_MAX)
            return -1;
        double x = scale10(a, s), tol = x * 0x1p-52, fl = floor(x), frac = x - fl;
        double lo = pow10_exact[p - 1], hi = pow10_exact[p];
        if (x < lo - tol) { /* the guess was one too high (x, not its rounding: 9.99..e21) */
            e--;
            continue;
        }
        if (fabs(x - lo) <= tol || fabs(frac - 0.5) <= tol)
            return -1;
        double r = frac > 0.5 ? fl + 1 : fl;
        if (r > hi) { /* one too low (r == hi: either way printf's 1.00..e+(e+1)) */
            e++;
            continue;
        }
        if (r == hi) { /* 9.99..5 rounds up to 10 */
            r = lo;
            if (++e - p + 1 > POW10_EXACT_MAX)
                return -1;
        }
        *d = (int64_t)r;
        *e_out = e;
        return 0;
    }
    return -1;
}

/* The double that strtod reads from the digits d (an integer below 2^53) times 10^(e - p + 1),
 * |e - p + 1| <= POW10_EXACT_MAX (fast_round's success guarantees it). */
static double fast_value(int64_t d, int p, int e)
{
    return scale10((double)d, e - p + 1);
}

/* The old way for one precision: snprintf's %.{p-1}e of v into digits and *exp10; returns
 * whether strtod reads it back as v. */
static int slow_digits(double v, int p, char *digits, int *exp10)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.*e", p - 1, v);
    char *e = strchr(buf, 'e');
    int nd = 0;
    for (const char *c = buf; c < e; c++)
        if (*c >= '0' && *c <= '9')
            digits[nd++] = *c;
    digits[nd] = '\0';
    *exp10 = atoi(e + 1);
    return strtod(buf, NULL) == v;
}

static void write_digits(char *digits, int64_t d, int p)
{
    digits[p] = '\0';
    for (int i = p - 1; i >= 0; i--, d /= 10)
        digits[i] = (char)('0' + d % 10);
}

int dnum_shortest(double v, char *digits, int *exp10)
{
    double a = fabs(v);
    if (a == 0) { /* "0e+00" reads back at p = 1 */
        slow_digits(v, 1, digits, exp10);
        return 1;
    }
    int e = exp10_guess(a);
    for (int p = 1; p <= 16; p++) {
        int64_t d;
        int de;
        if (p <= FAST_DIGITS_MAX && fast_round(a, p, e, &d, &de) == 0) {
            if (fast_value(d, p, de) == a) {
                write_digits(digits, d, p);
                *exp10 = de;
                return p;
            }
            continue;
        }
        if (slow_digits(v, p, digits, exp10))
            return p;
    }
    slow_digits(v, 17, digits, exp10);
    return 17;
}

double dnum_round(double v, int prec)
{
    double a = fabs(v);
    if (!isfinite(v) || a == 0)
        return v;
    int64_t d;
    int e;
    if (prec >= 1 && prec <= FAST_DIGITS_MAX && fast_round(a, prec, exp10_guess(a), &d, &e) == 0)
        return copysign(fast_value(d, prec, e), v);
    char buf[40];
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    return strtod(buf, NULL);
}

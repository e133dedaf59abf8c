/* common/dnum.c: see dnum.h. The fast path, for one precision p: x = |v| * 10^s, with s chosen
 * so that x has p digits before the point, is one correctly rounded multiplication or division
 * in long double (x87's 64-bit significand on x86-64) by an exact power of ten (10^0..10^27 are
 * exact there), so |x - exact| <= x * 2^-64. Rounding x to an integer D then gives printf's D
 * unless the exact fraction may lie on the other side of one half (checked with twice that
 * bound; exact ties, which printf rounds half to even, go the slow way). Whether D's digits read
 * back as v: for D < 2^53, D * 10^-s is one correctly rounded double operation on exact operands
 * (|s| <= 22), the double strtod reads (Clinger's fast path); for 16 digits, D against the
 * midpoints between v and its neighbours (exact in long double), scaled alike. Anything closer
 * to a boundary than the error bound, and scales beyond the exact powers, go through snprintf
 * and strtod as before. Where long double is double (no wider type), the same with 15 digits
 * and 10^22 at most; where the arithmetic does not round once (see wide_t), always the slow
 * way. */
#include "dnum.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* wide_t: the wider type of the proof. Its error bound holds only for IEEE arithmetic rounded
 * once: x87's 64-bit significand or binary128 (aarch64, s390x) as long double, else double
 * itself (long double == double: arm32, ...; DNUM_NARROW forces it, so that tests/ can check this
 * configuration on x86-64). IBM's double-double long double (ppc64 big-endian) is not rounded
 * once per operation, and a double evaluated in x87 registers (FLT_EVAL_METHOD 2, i386) is
 * rounded twice: there every number takes the snprintf/strtod way (FAST_DIGITS_MAX 0). */
#if !defined(DNUM_NARROW) && (LDBL_MANT_DIG == 64 || LDBL_MANT_DIG == 113)
typedef long double wide_t;
#define WIDE_EPSILON    LDBL_EPSILON
#define wide_floor      floorl
#define wide_fabs       fabsl
#define FAST_DIGITS_MAX 17
#define WIDE_POW10_MAX  27
#else
typedef double wide_t;
#define WIDE_EPSILON   DBL_EPSILON
#define wide_floor     floor
#define wide_fabs      fabs
#define WIDE_POW10_MAX 22
#if defined(DNUM_NARROW) || LDBL_MANT_DIG == DBL_MANT_DIG
#define FAST_DIGITS_MAX 15
#else
#define FAST_DIGITS_MAX 0
#endif
#endif
#if !(FLT_EVAL_METHOD == 0 || FLT_EVAL_METHOD == 1)
#undef FAST_DIGITS_MAX
#define FAST_DIGITS_MAX 0
#endif

/* wide_floor(x) and wide_int(r), for 0 <= x < 2^63 and an integral 0 <= r < 2^63 (fast_round's
 * x and r are at most 10^18, see there). On x86-64, gcc compiles floorl and the cast
 * (int64_t)r of an x87 long double to fnstcw, fldcw (rounding control: toward zero or down),
 * frndint or fistp, fldcw (back): an fldcw is slow on its own and far slower at some code
 * addresses on some CPUs (dnum_round 5-10x at one start address in eight on a Zen 5, see
 * docs/benchmarks.md), so the speed was the linker's choice. fistp alone rounds in the current
 * mode, whichever it is: an integral r converts exactly, and x becomes floor(x) or floor(x) + 1,
 * exact in the 64-bit significand, which one comparison corrects. (llrintl is the same fistp,
 * but gcc inlines it only with -fno-math-errno.) Elsewhere (binary128, double) floor and the
 * cast as they are. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(DNUM_NARROW) && LDBL_MANT_DIG == 64
static inline int64_t wide_int(wide_t r)
{
    int64_t n;
    __asm__("fistpll %0" : "=m"(n) : "t"(r) : "st");
    return n;
}

#undef wide_floor
static inline wide_t wide_floor(wide_t x)
{
    wide_t n = (wide_t)wide_int(x);
    return n > x ? n - 1 : n;
}
#else
#define wide_int(r) ((int64_t)(r))
#endif

#define POW10_EXACT_MAX 22                                            /* in double */
#define ROUND_FAST_MAX  (FAST_DIGITS_MAX < 15 ? FAST_DIGITS_MAX : 15) /* dnum_round's d < 2^53 */

static const wide_t pow10_wide[28] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,
                                      1e7L,  1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L,
                                      1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L,
                                      1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
static const double pow10_exact[POW10_EXACT_MAX + 1] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* a * 10^s in double, one rounding; |s| <= POW10_EXACT_MAX. */
static double scale10(double a, int s)
{
    return s >= 0 ? a * pow10_exact[s] : a / pow10_exact[-s];
}

/* a * 10^s in wide_t, one rounding; |s| <= WIDE_POW10_MAX. */
static wide_t scale10_wide(wide_t a, int s)
{
    return s >= 0 ? a * pow10_wide[s] : a / pow10_wide[-s];
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
 * a tie, or a scale beyond the exact powers of ten): the caller then asks snprintf.
 * x is at most 10^18 < 2^63, as wide_floor and wide_int need: exp10_guess is floor(log10(a))
 * or one off, so x < 10^(p+1) <= 10^18 (rounding cannot carry x past that power of ten, which
 * is exact); a retry only after x < 10^(p-1) makes x ten times larger; r <= hi = 10^p. */
static int fast_round(double a, int p, int e, int64_t *d, int *e_out)
{
    for (int tries = 0; tries < 2; tries++) {
        int s = p - 1 - e;
        if (s > WIDE_POW10_MAX || s < -WIDE_POW10_MAX)
            return -1;
        wide_t x = scale10_wide(a, s), tol = x * WIDE_EPSILON, fl = wide_floor(x), frac = x - fl;
        wide_t lo = pow10_wide[p - 1], hi = pow10_wide[p];
        if (x < lo - tol) { /* the guess was one too high (x, not its rounding: 9.99..e21) */
            e--;
            continue;
        }
        if (wide_fabs(x - lo) <= tol || wide_fabs(frac - 0.5) <= tol)
            return -1;
        wide_t r = frac > 0.5 ? fl + 1 : fl;
        if (r > hi) { /* one too low (r == hi: either way printf's 1.00..e+(e+1)) */
            e++;
            continue;
        }
        if (r == hi) { /* 9.99..5 rounds up to 10 */
            r = lo;
            if (++e - p + 1 > WIDE_POW10_MAX)
                return -1;
        }
        *d = wide_int(r);
        *e_out = e;
        return 0;
    }
    return -1;
}

/* Whether strtod reads the digits d times 10^(e - p + 1) back as a: 1, 0, or -1 when too close
 * to call. For 16 or more digits (d up to 2^57), FAST_DIGITS_MAX 17 only. */
static int wide_reads_back(double a, int64_t d, int p, int e)
{
    int s = p - 1 - e;
    if (s > WIDE_POW10_MAX || s < -WIDE_POW10_MAX)
        return -1;
    /* The rounding interval's ends: halfway to each neighbour (a sum of two adjacent doubles
     * has at most 54 significant bits: exact in a 64-bit or wider significand, as is the halving).
     */
    wide_t up = ((wide_t)a + nextafter(a, INFINITY)) / 2;
    wide_t down = ((wide_t)a + nextafter(a, 0)) / 2;
    wide_t hi = scale10_wide(up, s), lo = scale10_wide(down, s), x = (wide_t)d;
    wide_t tol = hi * WIDE_EPSILON;
    if (x < hi - tol && x > lo + tol)
        return 1;
    if (x > hi + tol || x < lo - tol)
        return 0;
    return -1;
}

/* Whether the double that strtod reads from the digits d (an integer below 2^53) times
 * 10^(e - p + 1) is a: 1 or 0, or -1 when the scale is beyond the exact powers of ten. */
static int fast_reads_back(double a, int64_t d, int p, int e)
{
    int k = e - p + 1;
    if (k > POW10_EXACT_MAX || k < -POW10_EXACT_MAX)
        return -1;
    return scale10((double)d, k) == a;
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
    for (int p = 1; p <= 17; p++) {
        int64_t d;
        int de, back = -1;
        if (p <= FAST_DIGITS_MAX && fast_round(a, p, e, &d, &de) == 0)
            back = p == 17   ? 1
                   : p <= 15 ? fast_reads_back(a, d, p, de)
                             : wide_reads_back(a, d, p, de);
        if (back == 1) {
            write_digits(digits, d, p);
            *exp10 = de;
            return p;
        }
        if (back == -1 && (slow_digits(v, p, digits, exp10) || p == 17))
            return p;
    }
    return 17; /* not reached: p = 17 always returns */
}

double dnum_round(double v, int prec)
{
    double a = fabs(v);
    if (!isfinite(v) || a == 0)
        return v;
    int64_t d;
    int e;
    if (prec >= 1 && prec <= ROUND_FAST_MAX && fast_round(a, prec, exp10_guess(a), &d, &e) == 0 &&
        e - prec + 1 <= POW10_EXACT_MAX && e - prec + 1 >= -POW10_EXACT_MAX)
        return copysign(scale10((double)d, e - prec + 1), v);
    char buf[40];
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    return strtod(buf, NULL);
}

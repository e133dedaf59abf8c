/* common/dnum.h: decimal forms of doubles as printf and strtod give them, without their cost in
 * the common case. /query prints every number in the shortest form that reads back (Go's
 * float64 printing, which influxd's answers show) and the pipeline rounds each prediction to
 * the JSON routes' "%.7g"; both used a loop of snprintf and strtod calls per number, which was
 * most of the time of a vigil_scores or vigil_predictions query. Each function here gives
 * exactly the bytes or the value that loop gave (tests/test_dnum.c compares them over random
 * and edge doubles): the common case in long double and double arithmetic whose result is
 * provably the correctly rounded one, anything closer than its error bound to a rounding
 * boundary through the same snprintf/strtod as before. Any thread; no state. */
#ifndef VIGIL_DNUM_H
#define VIGIL_DNUM_H

/* The shortest of v's "%.{p-1}e" forms (p = 1..16) that strtod reads back as v, or p = 17:
 * writes its p significant digits to digits (NUL-terminated; room for 18) and its decimal
 * exponent to *exp10 (the e's), and returns p. The sign is not written (v < 0: the caller's).
 * v must be finite. */
int dnum_shortest(double v, char *digits, int *exp10);

/* strtod("%.{prec}g" of v): v rounded to prec significant digits (1..17), as a double. A
 * non-finite v is returned as it is. */
double dnum_round(double v, int prec);

#endif

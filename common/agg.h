/* common/agg.h: one time bucket's aggregates of a series (count, mean, min, max, last), for
 * downsampled reading queries (GET .../readings?step=).
 *
 * The mean is exact to the double it is printed as for any realistic count: the sum is kept
 * with Neumaier's compensated summation (Kahan's, correct also when an addend is larger than
 * the running sum), so its error does not grow with the count (a year at 1 Hz is 31.5 million
 * values), where a plain double sum loses about log2(count) bits. A sum that would overflow
 * (values near DBL_MAX) is kept scaled by 2^-64 from then on, so it stays finite; only values
 * below 2^-958 then lose bits, next to a sum beyond 2^1000.
 *
 * A plain value type: no allocation, no state outside it. Any thread (one owner at a time). */
#ifndef VIGIL_AGG_H
#define VIGIL_AGG_H

#include <math.h>
#include <stdint.h>

typedef struct agg {
    uint64_t count;
    double sum, comp; /* the running sum is (sum + comp) / scale */
    double scale;     /* 1, or 2^-64 once the sum would have overflowed */
    double min, max;
    double last; /* the value with the newest timestamp (the first added of equal ones) */
    int64_t last_ts;
} agg_t;

/* Empties a (count 0). */
void agg_reset(agg_t *a);

/* Scales a's sum by 2^-64 (agg_add calls it once, when the sum first overflows). */
void agg__rescale(agg_t *a);

/* Adds value v, taken at ts. Values are finite (the store takes no others). Inline: it runs
 * once per value read. */
static inline void agg_add(agg_t *a, int64_t ts, double v)
{
    if (a->count++ == 0) {
        a->min = a->max = a->last = v;
        a->last_ts = ts;
    } else {
        a->min = v < a->min ? v : a->min;
        a->max = v > a->max ? v : a->max;
        if (ts > a->last_ts) {
            a->last = v;
            a->last_ts = ts;
        }
    }
    double x = v * a->scale, t = a->sum + x;
    if (!isfinite(t)) {
        agg__rescale(a);
        x = v * a->scale;
        t = a->sum + x;
    }
    /* Neumaier: the low-order bits lost by the addition, from whichever addend was smaller. */
    a->comp += fabs(a->sum) >= fabs(x) ? (a->sum - t) + x : (x - t) + a->sum;
    a->sum = t;
}

/* The arithmetic mean of the values added (NaN when none). */
double agg_mean(const agg_t *a);

/* The start of the bucket of width step (> 0) holding ts: the largest multiple of step since
 * the epoch at or before ts, as InfluxDB's GROUP BY time() aligns them. */
int64_t agg_bucket_start(int64_t ts, int64_t step);

#endif

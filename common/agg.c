/* common/agg.c: a time bucket's aggregates (agg.h). Any thread; no state. */
#include "agg.h"

#define AGG_SCALE_DOWN 0x1p-64

void agg_reset(agg_t *a)
{
    *a = (agg_t){.scale = 1.0};
}

void agg__rescale(agg_t *a)
{
    /* Exact (a power of two) unless comp underflows, and comp is then far below sum's ulp. */
    a->sum *= AGG_SCALE_DOWN;
    a->comp *= AGG_SCALE_DOWN;
    a->scale *= AGG_SCALE_DOWN;
}

double agg_mean(const agg_t *a)
{
    if (a->count == 0)
        return NAN;
    /* Divide before unscaling: the scaled mean times 2^64 is at most the largest value. */
    double m = (a->sum + a->comp) / (double)a->count / a->scale;
    /* Rounding can put the mean of equal values a hair outside them; it never is. */
    return m < a->min ? a->min : m > a->max ? a->max : m;
}

int64_t agg_bucket_start(int64_t ts, int64_t step)
{
    int64_t r = ts % step;
    return r < 0 ? ts - r - step : ts - r;
}

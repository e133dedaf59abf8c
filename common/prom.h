/* common/prom.h: helpers for the Prometheus text format (version 0.0.4). Any thread; they only
 * append to the caller's buffer. */
#ifndef VIGIL_PROM_H
#define VIGIL_PROM_H

#include "sbuf.h"

#include <stdint.h>

/* Appends a histogram family: HELP and TYPE lines, one _bucket line per bound (cum[i] is the
 * cumulative count of observations <= bounds[i]), the +Inf bucket (count), _sum and _count. */
void prom_histogram(sbuf_t *out, const char *name, const char *help, const double *bounds,
                    const uint64_t *cum, int n, uint64_t count, double sum);

/* Appends a label value in double quotes, escaping backslash, double quote and newline. */
void prom_label(sbuf_t *out, const char *value);

#endif

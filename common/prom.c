/* common/prom.c: Prometheus text-format helpers; see prom.h. */
#include "prom.h"

void prom_histogram(sbuf_t *out, const char *name, const char *help, const double *bounds,
                    const uint64_t *cum, int n, uint64_t count, double sum)
{
    sbuf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < n; i++)
        sbuf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
                    (unsigned long long)cum[i]);
    sbuf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name,
                (unsigned long long)count, name, sum, name, (unsigned long long)count);
}

void prom_label(sbuf_t *out, const char *v)
{
    sbuf_append(out, "\"", 1);
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            sbuf_printf(out, "\\%c", *v);
        else if (*v == '\n')
            sbuf_append(out, "\\n", 2);
        else
            sbuf_append(out, v, 1);
    }
    sbuf_append(out, "\"", 1);
}

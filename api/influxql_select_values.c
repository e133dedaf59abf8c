/* api/influxql_select_values.c: SELECT's values (influxql_select.c answers the statement): a
 * field's accumulator for one bucket (struct acc, influxql_select.h) kept as influxd's reducers
 * keep theirs, each function's value over it, the ::integer cast, and how values and times print
 * in influxd 1.6.7's JSON: floats as Go's encoding/json prints them, integers with all an int64's
 * digits, times in the epoch parameter's unit or as RFC 3339. The mean is sum / count with a
 * plain sum in time order, as influxd's mean reducer does, so both print the same double.
 * influxql_vigil.c writes vigil_anomalies' times and floats with the same writers
 * (api__iq_put_time, api__iq_go_float).
 *
 * Any thread; no state. */
#include "influxql_select.h"
#include "dnum.h"
#include "vtime.h"

#include <math.h>
#include <string.h>

/* Appends v as Go's encoding/json prints a float64, as influxd sends it: the shortest decimal
 * that reads back as v, in plain notation unless its exponent is below -6 or from 21 on
 * ("1e-07", "1e+21"). */
static void go_float(sbuf_t *b, double v)
{
    if (!isfinite(v)) {
        /* A sum past DBL_MAX: Go's encoding/json cannot print it (influxd then fails the whole
         * answer); null keeps the rest of the series. */
        sbuf_append(b, "null", 4);
        return;
    }
    char digits[24];
    int exp, nd = dnum_shortest(v, digits, &exp);
    if (signbit(v))
        sbuf_append(b, "-", 1);
    if (exp < -6 || exp >= 21) {
        /* Go's 'e' form; encoding/json then writes e-07 as e-7 but keeps e+21. */
        sbuf_printf(b, "%c%s%se%c%0*d", digits[0], nd > 1 ? "." : "", digits + 1,
                    exp < 0 ? '-' : '+', exp < 0 ? 1 : 2, exp < 0 ? -exp : exp);
    } else if (exp >= nd - 1) { /* 1e20: the digits, then zeros (never %f's exact expansion) */
        sbuf_append(b, digits, (size_t)nd);
        for (int i = 0; i < exp - nd + 1; i++)
            sbuf_append(b, "0", 1);
    } else if (exp >= 0) {
        sbuf_printf(b, "%.*s.%s", exp + 1, digits, digits + exp + 1);
    } else {
        sbuf_append(b, "0.", 2);
        for (int i = 0; i < -exp - 1; i++)
            sbuf_append(b, "0", 1);
        sbuf_append(b, digits, (size_t)nd);
    }
}

/* Appends a point's or bucket's time (ms) as the epoch parameter asks: an integer in its unit,
 * or an RFC 3339 string with the fraction's trailing zeros cut, as Go's RFC3339Nano. */
static void put_time(sbuf_t *b, const qrun_t *run, int64_t ms)
{
    if (run->epoch > 0) {
        sbuf_printf(b, "%lld",
                    (long long)(run->epoch >= 1000000 ? ms / (run->epoch / 1000000)
                                                      : ms * (1000000 / run->epoch)));
        return;
    }
    char t[40];
    vtime_format(ms, t, sizeof t); /* YYYY-MM-DDTHH:MM:SS.mmmZ */
    char *dot = strchr(t, '.');
    if (dot != NULL) {
        char *end = dot + strlen(dot) - 1; /* the Z */
        char *last = end - 1;
        while (last > dot && *last == '0')
            last--;
        memmove(last == dot ? dot : last + 1, "Z", 2);
    }
    sbuf_printf(b, "\"%s\"", t);
}

/* The value v of field f under its cast into *v: as it is, or cut to an integer as influxd
 * casts a float (toward zero). Returns 0 when the cast leaves the field no value. */
int api__iq_cast_value(const struct sel_field *f, double *v)
{
    if (f->cast == CAST_NONE)
        return 0;
    /* Go's int64(v) on amd64: a value past int64 (or NaN) is -2^63 */
    if (f->cast == CAST_INTEGER || f->cast == CAST_UNSIGNED)
        *v = *v > -9223372036854775809.0 && *v < 9223372036854775808.0 ? trunc(*v) + 0.0
                                                                       : -9223372036854775808.0;
    return 1;
}

/* Prints the value v of field f: an ::integer's as Go prints an int64 (all its digits:
 * -9223372036854775808, not a float's -9223372036854776000), else as a float. */
void api__iq_cast_print(sbuf_t *b, const struct sel_field *f, double v)
{
    if (f->cast == CAST_INTEGER)
        sbuf_printf(b, "%lld", (long long)v); /* cast_value's: an integer within int64 */
    else
        go_float(b, v);
}

/* Adds v (cast_value's: of an ::integer field, an integer within int64) at ts to a; its
 * integer's too when integer is set. */
static void acc_add(struct acc *a, int64_t ts, double v, int integer)
{
    /* Go's int64 addition wraps; uint64_t's is that without C's signed overflow */
    int64_t iv = integer ? (int64_t)v : 0;
    a->isum = (int64_t)((uint64_t)a->isum + (uint64_t)iv);
    a->dsum = (int64_t)((uint64_t)a->dsum + (uint64_t)iv);
    a->dcount++;
    if (a->count++ == 0) {
        a->sum = a->min = a->max = a->first = a->last = v;
        a->min_ts = a->max_ts = a->first_ts = a->last_ts = ts;
        return;
    }
    a->sum += v;
    if (v < a->min || (v == a->min && ts < a->min_ts)) {
        a->min = v;
        a->min_ts = ts;
    }
    if (v > a->max || (v == a->max && ts < a->max_ts)) {
        a->max = v;
        a->max_ts = ts;
    }
    if (ts < a->first_ts || (ts == a->first_ts && v > a->first)) {
        a->first = v;
        a->first_ts = ts;
    }
    if (ts > a->last_ts || (ts == a->last_ts && v > a->last)) {
        a->last = v;
        a->last_ts = ts;
    }
}

/* Adds a point's values to the accumulators of q's fields (a[0..nf)). */
void api__iq_acc_point(struct acc *a, const select_t *q, int64_t ts, size_t n,
                       const char *const *ch, const double *v)
{
    for (int i = 0; i < q->nf; i++) {
        const char *want = q->chans[q->f[i].chan];
        for (size_t k = 0; k < n; k++) {
            double val = v[k];
            if (strcmp(ch[k], want) == 0 && api__iq_cast_value(&q->f[i], &val))
                acc_add(&a[i], ts, val, q->f[i].cast == CAST_INTEGER);
        }
    }
}

/* The value of fn over a (count > 0). */
double api__iq_acc_value(const struct acc *a, enum sel_fn fn)
{
    switch (fn) {
    case FN_MEAN:
        return a->sum / (double)a->count;
    case FN_MIN:
        return a->min;
    case FN_MAX:
        return a->max;
    case FN_FIRST:
        return a->first;
    case FN_LAST:
        return a->last;
    case FN_COUNT:
        return (double)a->count;
    default:
        return a->sum;
    }
}

/* The time of a lone selector's row without GROUP BY time(): its point's, as influxd gives it. */
int64_t api__iq_selector_ts(const struct acc *a, enum sel_fn fn, int64_t dflt)
{
    switch (fn) {
    case FN_MIN:
        return a->min_ts;
    case FN_MAX:
        return a->max_ts;
    case FN_FIRST:
        return a->first_ts;
    case FN_LAST:
        return a->last_ts;
    default:
        return dflt;
    }
}

/* Prints an aggregate v of field f: of an ::integer field, a selector's (min, max, first,
 * last) as an integer (influxd's int64: -9223372036854775808), its sum as influxd's int64 sum
 * (v->i: 2^53 + 1 + 1 is 9007199254740994, 2^62 * 2 wraps to -2^63), else as a float (a mean, a
 * count). */
void api__iq_agg_print(sbuf_t *b, const struct sel_field *f, const struct agg_val *v)
{
    int selector = f->fn == FN_MIN || f->fn == FN_MAX || f->fn == FN_FIRST || f->fn == FN_LAST;
    if (f->cast == CAST_INTEGER && f->fn == FN_SUM)
        sbuf_printf(b, "%lld", (long long)v->i);
    else if (f->cast == CAST_INTEGER && selector)
        api__iq_cast_print(b, f, v->v);
    else
        go_float(b, v->v);
}

/* Prints fill(number)'s v for field f: in an integer column (an ::integer field's sum or
 * selector, any count) as influxd's castToInteger makes it, toward zero (fill(2.5): 2), else as a
 * float. */
void api__iq_fill_print(sbuf_t *b, const struct sel_field *f, double v)
{
    if (f->fn == FN_COUNT || (f->cast == CAST_INTEGER && f->fn != FN_MEAN)) {
        const struct sel_field as_int = {.cast = CAST_INTEGER};
        (void)api__iq_cast_value(&as_int, &v);
        api__iq_cast_print(b, &as_int, v);
    } else {
        go_float(b, v);
    }
}

/* For influxql_select.c's rows, and influxql_vigil.c, which writes vigil_anomalies' rows as
 * SELECT writes its own. */
void api__iq_put_time(sbuf_t *b, const qrun_t *run, int64_t ms)
{
    put_time(b, run, ms);
}

void api__iq_go_float(sbuf_t *b, double v)
{
    go_float(b, v);
}

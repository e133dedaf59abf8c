/* api/influxql_select.c: SELECT on /query, the statements Grafana's InfluxDB data source
 * (InfluxQL mode) sends for its panels, answered in influxd 1.6.7's JSON:
 *
 *   SELECT mean("temp"), max("vib") FROM "pump-7" WHERE time >= 1732780800000ms
 *     and time <= 1732784400000ms GROUP BY time(10s) fill(null)
 *   SELECT "temp" FROM "m" WHERE ("device" = 'pump-7') AND time >= now() - 6h
 *     ORDER BY time DESC LIMIT 100
 *
 * The measurement is the device (influxql_show.c), unless a condition on the device tag names
 * it ("device" = 'pump-7': the FROM name is then only the series' name, as Telegraf's writes
 * give it). Fields are channels, read raw or through mean, min, max, first, last, count and sum,
 * one row per point or per GROUP BY time() bucket. Buckets are aligned to multiples of their
 * width since the epoch (plus the offset of time(d, offset)), from the bucket holding the range's
 * start to the one holding its end, as influxd aligns them; fill(null) (the default; count's
 * empty bucket is 0), fill(none), fill(previous) and fill(number) fill the empty ones. A regular
 * expression on the device tag that selects several devices, without GROUP BY the tag, is one
 * series merging their points (select_merged); with it, a series per device, SLIMIT and SOFFSET
 * choosing among them in id order.
 *
 * Bounds: the points read for one statement stop at http.max_scan_points, the rows it answers
 * (buckets, or raw points) at http.max_query_points, and the query's whole answer at
 * API_PAGE_BYTES of JSON; beyond any the statement gets an error naming it (influxd's
 * max-select-buckets words for buckets), never a result cut short or unbounded memory. What vigild
 * does not answer (other functions, math, regex, subqueries, INTO, OR, conditions on fields or on
 * other tags, tz()) is a statement error naming it.
 *
 * This file answers the statement influxql_select_read.c read (select_t, influxql_select.h);
 * the buckets' accumulators and the printing of values and times are influxql_select_values.c's,
 * the regexes on the device tag and the list of ids influxql_select_devices.c's.
 * Any thread; reads through be.query, be.device_get and be.device_find, and a list of ids
 * through api__iq_devices (be.device_each: no wait for the store's reload); no lock. */
#include "influxql_select.h"
#include "err.h"
#include "vtime.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- answering ------------------------------------------------------------------------------ */

/* A statement's read and what it writes: the series (opened at its first row), its rows. */
struct sel_run {
    api_request_t *r;
    qrun_t *run;
    select_t *q;
    const char *device;
    long long rows, skipped; /* the series' rows written / skipped by OFFSET */
    long long total_rows;    /* rows written over every series */
    long long max_rows;
    long long buckets; /* a range of more buckets than max_rows: the statement's error */
    int nseries;       /* series written */
    int not_found;     /* the last device read does not exist */
    int untagged;      /* the device is the FROM name: to influxd its points have no device tag,
                        * so GROUP BY the tag names it "" */
    int skip;          /* the device's series is skipped (SOFFSET), once its existence is known */
    size_t scanned, max_scan;
    int opened;        /* the series was opened */
    long long chunk_n; /* rows in the series' document (chunked: at most run->chunk_rows) */
    int full;          /* LIMIT reached: the read stops */
    int too_many;      /* a bound was crossed: the statement's error */
    int too_big;       /* the query's answer passed API_PAGE_BYTES (too_many is then set too) */
    /* Buckets: the start of the one being read (next_ms: the next to write), the step in the
     * read's direction, whether any point was read; the accumulators, and the last value
     * written per field for fill(previous). */
    int64_t next_ms, step_ms;
    int have_cur;
    struct acc acc[SEL_FIELDS_MAX];
    struct agg_val prev[SEL_FIELDS_MAX];
    int has_prev[SEL_FIELDS_MAX];
};

/* Writes the series' name, the device tag when grouped by it, and its columns. */
static void series_head(struct sel_run *x)
{
    sbuf_t *b = &x->run->b;
    api__iq_str(b, x->q->from);
    if (x->q->group_tag) {
        sbuf_printf(b, ",\"tags\":{");
        api__iq_str(b, x->r->srv->device_tag);
        sbuf_append(b, ":", 1);
        api__iq_str(b, x->untagged ? "" : x->device);
        sbuf_append(b, "}", 1);
    }
    sbuf_printf(b, ",\"columns\":[\"time\"");
    for (int i = 0; i < x->q->nf; i++) {
        sbuf_append(b, ",", 1);
        api__iq_str(b, x->q->f[i].col);
    }
    sbuf_printf(b, "],\"values\":[");
    x->chunk_n = 0;
}

/* Starts a row at ms, after OFFSET's rows; returns 0 when it is to be skipped. */
static int row_begin(struct sel_run *x, int64_t ms)
{
    if (x->skipped < x->q->offset) {
        x->skipped++;
        return 0;
    }
    if (x->total_rows == x->max_rows) {
        x->too_many = 1;
        return 0;
    }
    if (!x->opened) { /* the series opens at its first row; chunked, a new document past
                       * chunk_size rows */
        api__q_series_open(x->run, &x->nseries);
        series_head(x);
        x->opened = 1;
    } else if (api__q_chunk_full(x->run, x->chunk_n)) {
        api__q_chunk_next(x->run, &x->run->b, "\"name\":");
        series_head(x);
    }
    sbuf_printf(&x->run->b, "%s[", x->chunk_n++ ? "," : "");
    api__iq_put_time(&x->run->b, x->run, ms);
    return 1;
}

/* Ends a row. The answer of the whole query (its statements together) stops at API_PAGE_BYTES,
 * as a readings page does: rows are bounded per statement, but 16 fields a row and a statement
 * repeated to fill q's 1,023 bytes made some 600 MB of JSON. */
static void row_end(struct sel_run *x)
{
    sbuf_append(&x->run->b, "]", 1);
    x->rows++;
    x->total_rows++;
    if (x->q->limit > 0 && x->rows >= x->q->limit)
        x->full = 1;
    if (x->run->b.len > API_PAGE_BYTES)
        x->too_big = x->too_many = 1;
}

/* Counts a point read; returns 1 (and sets too_many) when it is past http.max_scan_points, or
 * (read every 1,024 points) the query past its deadline (x->run->timed_out). */
static int scan_bound(struct sel_run *x)
{
    if (++x->scanned <= x->max_scan &&
        ((x->scanned & 1023) != 0 || !api__q_deadline_passed(x->run)))
        return 0;
    x->too_many = 1;
    return 1;
}

/* One raw point: a row with each field's value, null where the point has none. */
static int raw_point(void *arg, int64_t ts, size_t n, const char *const *ch, const double *v)
{
    struct sel_run *x = arg;
    if (scan_bound(x))
        return 1;
    if (!row_begin(x, ts))
        return x->too_many;
    for (int i = 0; i < x->q->nf; i++) {
        const char *want = x->q->chans[x->q->f[i].chan];
        size_t k = 0;
        while (k < n && strcmp(ch[k], want) != 0)
            k++;
        sbuf_append(&x->run->b, ",", 1);
        double val = k < n ? v[k] : 0;
        if (k < n && api__iq_cast_value(&x->q->f[i], &val))
            api__iq_cast_print(&x->run->b, &x->q->f[i], val);
        else
            sbuf_append(&x->run->b, "null", 4);
    }
    row_end(x);
    return x->full || x->too_many;
}

/* Writes the bucket at ms: its values, or the fill where a field has none; fill(none) writes no
 * row for a bucket without any value. Empties the accumulators. */
static void bucket_write(struct sel_run *x, int64_t ms)
{
    select_t *q = x->q;
    int any = 0;
    for (int i = 0; i < q->nf; i++)
        any |= x->acc[i].count > 0;
    if (q->nf == 1 && q->every_ns == 0 && any)
        ms = api__iq_selector_ts(&x->acc[0], q->f[0].fn, ms);
    if ((any || q->fill != FILL_NONE) && row_begin(x, ms)) {
        for (int i = 0; i < q->nf; i++) {
            sbuf_t *b = &x->run->b;
            sbuf_append(b, ",", 1);
            const struct acc *a = &x->acc[i];
            if (a->count > 0) {
                x->prev[i].v = api__iq_acc_value(a, q->f[i].fn);
                x->prev[i].i = a->isum;
                if (q->f[i].cast == CAST_INTEGER && q->f[i].fn == FN_MEAN)
                    /* influxd's IntegerMeanReducer: its int64 sum (wrapped), then / count;
                     * of several devices, their means merged (struct acc's msum) */
                    x->prev[i].v =
                        a->merged ? a->msum / (double)a->count : (double)a->isum / (double)a->count;
                x->has_prev[i] = 1;
                api__iq_agg_print(b, &q->f[i], &x->prev[i]);
            } else if (q->fill == FILL_NUMBER) {
                api__iq_fill_print(b, &q->f[i], q->fill_v);
            } else if (q->fill == FILL_PREVIOUS && x->has_prev[i]) {
                api__iq_agg_print(b, &q->f[i], &x->prev[i]);
            } else if (q->f[i].fn == FN_COUNT && q->fill != FILL_NONE) {
                /* fill(none) fills nothing: a count with no point in a row another field
                 * wrote is null there, as influxd prints it. */
                sbuf_append(b, "0", 1);
            } else {
                sbuf_append(b, "null", 4);
            }
        }
        row_end(x);
    }
    memset(x->acc, 0, sizeof x->acc);
}

/* Writes buckets from next_ms up to (not including) until_ms, in the read's direction. */
static void buckets_until(struct sel_run *x, int64_t until_ms)
{
    while (!x->full && !x->too_many &&
           (x->step_ms > 0 ? x->next_ms < until_ms : x->next_ms > until_ms)) {
        bucket_write(x, x->next_ms);
        x->next_ms += x->step_ms;
    }
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The start (ms) of the bucket holding ts (ms). */
static int64_t bucket_of(const select_t *q, int64_t ts)
{
    int64_t every = q->every_ns / 1000000, off = q->offset_ns / 1000000;
    return floor_div(ts - off, every) * every + off;
}

/* One point of an aggregate read: into its bucket's accumulators; a point of a new bucket
 * first writes the buckets before it. */
static int agg_point(void *arg, int64_t ts, size_t n, const char *const *ch, const double *v)
{
    struct sel_run *x = arg;
    select_t *q = x->q;
    if (scan_bound(x))
        return 1;
    if (q->every_ns > 0) {
        int64_t b = bucket_of(q, ts);
        buckets_until(x, b); /* the buckets before it, the one read so far among them */
        if (x->full || x->too_many)
            return 1;
    }
    x->have_cur = 1;
    api__iq_acc_point(x->acc, q, ts, n, ch, v);
    return 0;
}

/* What SELECT needs of its device before reading: whether it exists, its first reading's time
 * (a GROUP BY time() range with no start begins there, as in influxd) and which of the fields
 * are its channels (store_query refuses a channel the device does not have; influxd answers
 * such a field null). */
struct dev_facts {
    const select_t *q;
    int64_t first_ms, last_ms;
    const char *have[SEL_FIELDS_MAX]; /* the fields' channels the device has */
    size_t nhave;
};

static int dev_facts_cb(void *arg, const api_device_t *d)
{
    struct dev_facts *f = arg;
    f->first_ms = d->first_ts_ms;
    f->last_ms = d->last_ts_ms;
    for (int i = 0; i < f->q->nchans; i++)
        for (size_t k = 0; k < d->nchannels; k++)
            if (strcmp(d->channels[k], f->q->chans[i]) == 0) {
                f->have[f->nhave++] = f->q->chans[i];
                break;
            }
    return 0;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return -floor_div(-a, b);
}

/* Closes the statement's answer: its series, or the error a bound or the backend gave (what
 * was written is dropped). Returns 0 or 1 (failed). */
static int select_finish(struct sel_run *x, size_t mark, int rc)
{
    qrun_t *run = x->run;
    if (rc == 0 && run->b.oom)
        rc = ERR_NOMEM;
    if (rc != 0 || x->too_many || x->buckets) {
        run->b.len = mark;
        if (rc != 0)
            return api__q_backend_error(run, "reading the device: ", rc);
        if (run->timed_out) /* what stopped the read, whichever bound it met after */
            return api__q_timeout_error(run);
        char msg[200];
        if (x->buckets)
            snprintf(msg, sizeof msg, "max-select-buckets limit exceeded: (%lld/%lld)", x->buckets,
                     x->max_rows);
        else if (x->too_big)
            snprintf(msg, sizeof msg,
                     API_IQ_TOO_BIG ": narrow the time range, widen GROUP BY time() or add LIMIT");
        else if (x->scanned > x->max_scan)
            snprintf(msg, sizeof msg,
                     "vigild reads at most %zu points for one SELECT (http.max_scan_points): "
                     "narrow the time range",
                     x->max_scan);
        else
            snprintf(msg, sizeof msg,
                     "vigild answers at most %lld rows for one SELECT (http.max_query_points): "
                     "narrow the time range, widen GROUP BY time() or add LIMIT",
                     x->max_rows);
        return api__q_result_error(run, msg, NULL);
    }
    if (x->nseries > 0)
        sbuf_append(&run->b, "]", 1);
    return 0;
}

/* Reads device's series (none when it has no point of the fields in the range) into run->b.
 * Returns 0 (x->too_many or x->buckets may be set), or the backend's error. */
static int select_device(struct sel_run *x, const char *device)
{
    api_request_t *r = x->r;
    select_t *q = x->q;
    x->device = device;
    x->rows = x->skipped = 0;
    x->full = x->have_cur = 0;
    memset(x->acc, 0, sizeof x->acc);
    memset(x->has_prev, 0, sizeof x->has_prev);
    struct dev_facts f = {.q = q};
    int rc = api__iqv_device_get(r, q->from, device, dev_facts_cb, &f); /* vigil_*: its own */
    x->not_found = rc == ERR_NOTFOUND;
    if (rc == ERR_NOTFOUND || (rc == 0 && (f.nhave == 0 || f.first_ms < 0 || x->skip)))
        return 0; /* no such measurement or field: no series, as from influxd */
    if (rc)
        return rc;
    int64_t lo = q->lo_ns, hi = q->hi_ns;
    if (q->every_ns && lo == INT64_MIN)
        lo = api__iq_ms_to_ns(f.first_ms);
    if (q->every_ns && hi == INT64_MAX)
        hi = api__iq_ms_to_ns(x->run->now_ms);
    /* A range that misses every reading has no series, whatever its buckets would be. */
    if (lo > hi || floor_div(lo, 1000000) > f.last_ms || floor_div(hi, 1000000) < f.first_ms)
        return 0;
    api_query_t aq = {.device = device, .channels = f.have, .nchannels = f.nhave, .desc = q->desc};
    aq.from_ms = lo == INT64_MIN ? VTIME_MIN_MS : ceil_div(lo, 1000000);
    aq.to_ms = hi == INT64_MAX ? VTIME_MAX_MS + 1 : floor_div(hi, 1000000) + 1;
    if (aq.from_ms < VTIME_MIN_MS)
        aq.from_ms = VTIME_MIN_MS;
    int64_t row_ms = lo == INT64_MIN ? 0 : floor_div(lo, 1000000);
    int raw = q->f[0].fn == FN_RAW;
    if (raw) {
        long long want = q->limit > 0 && q->limit < x->max_rows ? q->limit : x->max_rows + 1;
        /* 0 (no limit) for an OFFSET beyond any count: the scan bound still holds. */
        aq.limit = q->offset > LLONG_MAX - want ? 0 : (size_t)(want + q->offset);
        rc = api__iqv_query(r, q->from, &aq, raw_point, x);
    } else if (q->every_ns == 0) {
        rc = api__iqv_query(r, q->from, &aq, agg_point, x);
        if (rc == 0 && x->have_cur && !x->too_many)
            bucket_write(x, row_ms);
    } else {
        int64_t every = q->every_ns / 1000000;
        int64_t first = bucket_of(q, row_ms), last = bucket_of(q, floor_div(hi, 1000000));
        long long nb = (long long)((last - first) / every) + 1;
        if (nb > x->max_rows) {
            x->buckets = nb;
            return 0;
        }
        x->step_ms = q->desc ? -every : every;
        x->next_ms = q->desc ? last : first;
        rc = api__iqv_query(r, q->from, &aq, agg_point, x);
        if (rc == 0 && x->have_cur && !x->too_many)
            buckets_until(x, q->desc ? first - every : last + every);
    }
    if (x->opened) {
        api__q_series_end(x->run, x->chunk_n);
        x->opened = 0;
    }
    return rc;
}

/* ---- several devices in one series ---------------------------------------------------------
 * A regular expression on the device tag that matches several devices, without GROUP BY the
 * tag, asks for one series merging them, as influxd merges the series of one measurement: a
 * fleet's mean, min, max, sum, count, first or last per bucket over every selected device's
 * readings (merge_buckets), or their raw points in time order (merge_raw). The store reads one
 * device at a time, so the buckets are accumulated device after device; to keep that memory bounded
 * whatever the range, they are taken a window of MERGE_WINDOW_BYTES at a time (each device read
 * once per window, for the window's range only: the points read are the same as in one pass). */
#define MERGE_WINDOW_BYTES ((size_t)1 << 20)

struct merge {
    struct sel_run *x;
    struct acc *acc;  /* the window's buckets, nf accumulators each */
    int64_t win_ms;   /* the window's first bucket */
    int64_t every_ms; /* 0: one bucket, no GROUP BY time() */
    int64_t cnt;      /* the window's buckets */
    int int_mean;     /* a field is an ::integer mean (merge_read folds the devices' means) */
    int any;          /* a point was read */
};

static int merge_point(void *arg, int64_t ts, size_t n, const char *const *ch, const double *v)
{
    struct merge *m = arg;
    struct sel_run *x = m->x;
    if (scan_bound(x))
        return 1;
    int64_t k = m->every_ms ? (bucket_of(x->q, ts) - m->win_ms) / m->every_ms : 0;
    api__iq_acc_point(m->acc + k * x->q->nf, x->q, ts, n, ch, v);
    m->any = 1;
    return 0;
}

/* Whether device i (f[i], ids[i]) may have points in [from_ms, to_ms); if so, sets *aq to read
 * them (all, in time order). */
static int merge_query(api_query_t *aq, const struct dev_facts *f, char *const *ids, size_t i,
                       int64_t from_ms, int64_t to_ms)
{
    if (f[i].nhave == 0 || f[i].first_ms >= to_ms || f[i].last_ms < from_ms)
        return 0;
    *aq = (api_query_t){.device = ids[i],
                        .channels = f[i].have,
                        .nchannels = f[i].nhave,
                        .from_ms = from_ms,
                        .to_ms = to_ms};
    return 1;
}

/* Reads every device of f[0..n) with points in [from_ms, to_ms) into m's window. Returns 0 or
 * the backend's error. */
static int merge_read(struct merge *m, const struct dev_facts *f, char *const *ids, size_t n,
                      int64_t from_ms, int64_t to_ms)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n && !m->x->too_many; i++) {
        api_query_t aq;
        if (merge_query(&aq, f, ids, i, from_ms, to_ms))
            rc = api__iqv_query(m->x->r, m->x->q->from, &aq, merge_point, m);
        /* the device's means into each bucket's merged ones (struct acc's msum), when a field
         * is an ::integer mean */
        for (int64_t k = 0; m->int_mean && k < m->cnt * m->x->q->nf; k++) {
            struct acc *a = &m->acc[k];
            if (a->dcount > 0)
                a->msum += (double)a->dsum / (double)a->dcount * (double)a->dcount;
            a->dsum = 0;
            a->dcount = 0;
            a->merged = 1;
        }
    }
    return rc;
}

/* A point of merge_has_point's read: found, the read stops. */
static int probe_point(void *arg, int64_t ts, size_t n, const char *const *ch, const double *v)
{
    (void)ts, (void)n, (void)ch, (void)v;
    *(int *)arg = 1;
    return 1;
}

/* Sets *found to whether a device of f[0..n) has a point in [from_ms, to_ms), reading at most
 * one point of each device until one has. A range in a gap of every device's readings has no
 * series, as for one device (select_device) and from influxd, whatever its buckets would be.
 * Returns 0 or the backend's error. */
static int merge_has_point(struct sel_run *x, const struct dev_facts *f, char *const *ids, size_t n,
                           int64_t from_ms, int64_t to_ms, int *found)
{
    int rc = 0;
    *found = 0;
    for (size_t i = 0; rc == 0 && i < n && !*found; i++) {
        api_query_t aq;
        if (!merge_query(&aq, f, ids, i, from_ms, to_ms))
            continue;
        aq.limit = 1;
        rc = api__iqv_query(x->r, x->q->from, &aq, probe_point, found);
    }
    return rc;
}

/* Raw points of several devices in one series, in time order, ties in device order (both
 * reversed under ORDER BY time DESC, as influxd orders them). Each device's first points in
 * that order are read into rows; when they fill twice what the answer can use (LIMIT, or
 * http.max_query_points + 1 to see the bound crossed, plus OFFSET: keep), they are sorted and
 * cut to keep (raw_cut), so they take at most twice that (grown as read); an OFFSET past
 * http.max_query_points is the rows' bound. */
struct raw_row {
    int64_t ts;
    uint32_t dev, have; /* have: bit i set, field i has a value */
    double v[];         /* nf values */
};

struct raw_merge {
    struct sel_run *x;
    char *rows; /* n rows of stride bytes, room for room (at most 2 x keep) */
    size_t n, room, stride;
    size_t keep;  /* the rows the answer can use */
    size_t dev_n; /* the points read of the device being read */
    uint32_t dev; /* the device being read */
    int desc;     /* ORDER BY time DESC */
    int oom;      /* the rows could not grow: the statement's error */
};

static int raw_cmp_asc(const void *a, const void *b)
{
    const struct raw_row *p = a, *q = b;
    if (p->ts != q->ts)
        return p->ts < q->ts ? -1 : 1;
    return (p->dev > q->dev) - (p->dev < q->dev);
}

static int raw_cmp_desc(const void *a, const void *b)
{
    return raw_cmp_asc(b, a);
}

/* Sorts m's rows in the answer's order and keeps the first m->keep. */
static void raw_cut(struct raw_merge *m)
{
    qsort(m->rows, m->n, m->stride, m->desc ? raw_cmp_desc : raw_cmp_asc);
    if (m->n > m->keep)
        m->n = m->keep;
}

/* Doubles m's room for rows, up to 2 x m->keep: the rows take memory for the points read, not for
 * the bound (2 x (http.max_query_points + 1 + OFFSET) rows, 57 MB of 16 fields by default).
 * Returns 0, or 1 when out of memory. */
static int raw_grow(struct raw_merge *m)
{
    size_t room = m->room ? 2 * m->room : 256;
    if (room > 2 * m->keep)
        room = 2 * m->keep;
    char *rows = realloc(m->rows, room * m->stride);
    if (rows == NULL)
        return 1;
    m->rows = rows;
    m->room = room;
    return 0;
}

static int raw_merge_point(void *arg, int64_t ts, size_t n, const char *const *ch, const double *v)
{
    struct raw_merge *m = arg;
    struct sel_run *x = m->x;
    if (scan_bound(x))
        return 1;
    if (m->dev_n == m->keep)
        return 1; /* the device's share is read */
    if (m->n == 2 * m->keep)
        raw_cut(m); /* once per keep rows read: O(log keep) a row, whatever the devices */
    else if (m->n == m->room && raw_grow(m)) {
        m->oom = 1;
        return 1;
    }
    m->dev_n++;
    struct raw_row *row = (struct raw_row *)(m->rows + m->n++ * m->stride);
    *row = (struct raw_row){.ts = ts, .dev = m->dev};
    for (int i = 0; i < x->q->nf; i++) {
        const char *want = x->q->chans[x->q->f[i].chan];
        for (size_t k = 0; k < n; k++)
            if (strcmp(ch[k], want) == 0) {
                row->v[i] = v[k];
                if (api__iq_cast_value(&x->q->f[i], &row->v[i]))
                    row->have |= 1u << i;
                break;
            }
    }
    return 0;
}

/* Answers the raw points of the devices ids[0..n) (facts f) in [from_ms, to_ms) as one series.
 * Returns 0 (a bound may be set in x), or the backend's error. */
static int merge_raw(struct sel_run *x, const struct dev_facts *f, char *const *ids, size_t n,
                     int64_t from_ms, int64_t to_ms)
{
    const select_t *q = x->q;
    if (q->offset > x->max_rows) {
        x->too_many = 1;
        return 0;
    }
    long long want = q->limit > 0 && q->limit < x->max_rows ? q->limit : x->max_rows + 1;
    size_t keep = (size_t)(want + q->offset);
    struct raw_merge m = {.x = x,
                          .keep = keep,
                          .desc = q->desc,
                          .stride = sizeof(struct raw_row) + (size_t)q->nf * sizeof(double)};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n && !x->too_many; i++) {
        api_query_t aq;
        if (!merge_query(&aq, f, ids, i, from_ms, to_ms))
            continue;
        aq.limit = keep;
        aq.desc = q->desc;
        m.dev = (uint32_t)i;
        m.dev_n = 0;
        rc = api__iqv_query(x->r, q->from, &aq, raw_merge_point, &m);
        if (rc == 0 && m.oom)
            rc = ERR_NOMEM;
    }
    if (m.n > 0)
        raw_cut(&m);
    for (size_t i = 0; rc == 0 && i < m.n && !x->full && !x->too_many; i++) {
        const struct raw_row *row = (const struct raw_row *)(m.rows + i * m.stride);
        if (!row_begin(x, row->ts))
            continue;
        for (int k = 0; k < q->nf; k++) {
            sbuf_append(&x->run->b, ",", 1);
            if (row->have & (1u << k))
                api__iq_cast_print(&x->run->b, &q->f[k], row->v[k]);
            else
                sbuf_append(&x->run->b, "null", 4);
        }
        row_end(x);
    }
    free(m.rows);
    return rc;
}

/* Answers an aggregate over the devices ids[0..n) (facts f) in [lo, hi] ns ([from_ms, to_ms)
 * in ms) as one series of buckets, a window at a time. Returns 0 (a bound may be set in x), or
 * the backend's error. */
static int merge_buckets(struct sel_run *x, const struct dev_facts *f, char *const *ids, size_t n,
                         int64_t lo, int64_t hi, int64_t from_ms, int64_t to_ms)
{
    const select_t *q = x->q;
    int64_t row_ms = lo == INT64_MIN ? 0 : floor_div(lo, 1000000);
    struct merge m = {.x = x, .every_ms = q->every_ns / 1000000};
    for (int i = 0; i < q->nf; i++)
        m.int_mean |= q->f[i].cast == CAST_INTEGER && q->f[i].fn == FN_MEAN;
    int64_t first = row_ms, nb = 1;
    if (m.every_ms) {
        first = bucket_of(q, row_ms);
        nb = (bucket_of(q, floor_div(hi, 1000000)) - first) / m.every_ms + 1;
        if (nb > x->max_rows) {
            x->buckets = nb;
            return 0;
        }
        int found, rc = merge_has_point(x, f, ids, n, from_ms, to_ms, &found);
        if (rc != 0 || !found)
            return rc;
    }
    int64_t w = (int64_t)(MERGE_WINDOW_BYTES / (sizeof *m.acc * (size_t)q->nf));
    if (w > nb)
        w = nb;
    m.acc = calloc((size_t)w * (size_t)q->nf, sizeof *m.acc);
    if (m.acc == NULL)
        return ERR_NOMEM;
    /* The windows in the answer's order (descending under ORDER BY time DESC), each read then
     * written bucket by bucket. */
    int rc = 0;
    for (int64_t done = 0; rc == 0 && done < nb && !x->full && !x->too_many; done += w) {
        int64_t cnt = nb - done < w ? nb - done : w;
        int64_t k0 = q->desc ? nb - done - cnt : done; /* the window's first bucket's index */
        m.win_ms = first + k0 * m.every_ms;
        int64_t wfrom = from_ms, wto = to_ms;
        if (m.every_ms) {
            wfrom = m.win_ms > from_ms ? m.win_ms : from_ms;
            wto = m.win_ms + cnt * m.every_ms < to_ms ? m.win_ms + cnt * m.every_ms : to_ms;
        }
        memset(m.acc, 0, (size_t)cnt * (size_t)q->nf * sizeof *m.acc);
        m.cnt = cnt;
        rc = merge_read(&m, f, ids, n, wfrom, wto);
        for (int64_t j = 0; rc == 0 && j < cnt && !x->full && !x->too_many; j++) {
            int64_t k = q->desc ? cnt - 1 - j : j;
            if (!m.every_ms && !m.any)
                break; /* no GROUP BY time() and no point in the range: no row */
            memcpy(x->acc, m.acc + k * q->nf, (size_t)q->nf * sizeof *m.acc);
            bucket_write(x, m.win_ms + k * m.every_ms);
        }
    }
    free(m.acc);
    return rc;
}

/* Answers the statement over the devices ids[0..n) as one series. Returns 0 (a bound may be
 * set in x), or the backend's error. */
static int select_merged(struct sel_run *x, char *const *ids, size_t n)
{
    select_t *q = x->q;
    struct dev_facts *f = calloc(n, sizeof *f);
    if (f == NULL)
        return ERR_NOMEM;
    int rc = 0;
    int64_t first_ms = INT64_MAX, last_ms = INT64_MIN;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (api__q_deadline_passed(x->run)) { /* select_finish's timeout error */
            x->too_many = 1;
            break;
        }
        f[i].q = q;
        rc = api__iqv_device_get(x->r, q->from, ids[i], dev_facts_cb, &f[i]);
        if (rc == ERR_NOTFOUND || (rc == 0 && f[i].first_ms < 0))
            f[i].nhave = 0, rc = 0; /* gone since listed, or no reading: not in the series */
        if (f[i].nhave > 0) {
            first_ms = f[i].first_ms < first_ms ? f[i].first_ms : first_ms;
            last_ms = f[i].last_ms > last_ms ? f[i].last_ms : last_ms;
        }
    }
    int64_t lo = q->lo_ns, hi = q->hi_ns;
    if (rc == 0 && first_ms != INT64_MAX) {
        if (q->every_ns && lo == INT64_MIN)
            lo = api__iq_ms_to_ns(first_ms);
        if (q->every_ns && hi == INT64_MAX)
            hi = api__iq_ms_to_ns(x->run->now_ms);
    }
    /* No device with the fields, or a range that misses every reading: no series. */
    if (rc == 0 && !x->too_many && first_ms != INT64_MAX && lo <= hi &&
        floor_div(lo, 1000000) <= last_ms && floor_div(hi, 1000000) >= first_ms) {
        int64_t from_ms = lo == INT64_MIN ? VTIME_MIN_MS : ceil_div(lo, 1000000);
        int64_t to_ms = hi == INT64_MAX ? VTIME_MAX_MS + 1 : floor_div(hi, 1000000) + 1;
        if (from_ms < VTIME_MIN_MS)
            from_ms = VTIME_MIN_MS;
        rc = q->f[0].fn == FN_RAW ? merge_raw(x, f, ids, n, from_ms, to_ms)
                                  : merge_buckets(x, f, ids, n, lo, hi, from_ms, to_ms);
    }
    if (x->opened) {
        api__q_series_end(x->run, x->chunk_n);
        x->opened = 0;
    }
    free(f);
    return rc;
}

/* The devices (a series each, in id order as influxd sorts tag values; descending under ORDER
 * BY time DESC, as influxd reverses its series too) of GROUP BY the device tag with no device
 * named, FROM a name that is no device (Telegraf's "pump" of the devices tagged device=...), or
 * of "device" =~ /re/ (re: those it meets). The ids are taken first: no read runs inside the
 * device walk. Several devices without GROUP BY the device tag are one series merging them
 * (select_merged). */
static int select_each_device(struct sel_run *x, const struct dev_re *re)
{
    api_request_t *r = x->r;
    struct id_list l = {0};
    int rc = api__iq_devices(r, api__iq_id_collect, &l);
    if (rc == 0 && l.nomem)
        rc = ERR_NOMEM;
    size_t n = 0; /* the matching ids, moved to the front */
    for (size_t i = 0; i < l.n; i++) {
        if (api__iq_dev_re_match(re, l.ids[i])) {
            char *id = l.ids[i];
            l.ids[i] = l.ids[n];
            l.ids[n++] = id;
        }
    }
    /* SLIMIT and SOFFSET choose among the series in id order, whatever ORDER BY, as influxd
     * does; without GROUP BY the tag, the devices are one series. SOFFSET without SLIMIT keeps
     * none, as influxd 1.6.7's LimitTagSets (a[soffset:soffset+slimit], slimit 0). */
    const select_t *q = x->q;
    size_t first = 0;
    x->skip = 0;
    if (q->group_tag) {
        first = q->soffset < (long long)n ? (size_t)q->soffset : n;
        if ((q->slimit > 0 || q->soffset > 0) && q->slimit < (long long)(n - first))
            n = first + (size_t)q->slimit;
    } else if (q->soffset > 0) {
        n = 0;
    }
    if (rc == 0 && n > 1 && !q->group_tag)
        rc = select_merged(x, l.ids, n);
    for (size_t i = 0;
         rc == 0 && !(n > 1 && !q->group_tag) && first + i < n && !x->too_many && !x->buckets;
         i++) {
        if (api__q_deadline_passed(x->run)) { /* per device too: one may have no point */
            x->too_many = 1;                  /* select_finish's timeout error */
            break;
        }
        rc = select_device(x, l.ids[q->desc ? n - 1 - i : first + i]);
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.ids[i]);
    free(l.ids);
    return rc;
}

/* Runs the statement q read into run->b. Returns 0 or 1 (failed: run->err). */
static int select_run(api_request_t *r, select_t *q, qrun_t *run, struct sel_run *x)
{
    int agg = 0, raw = 0;
    for (int i = 0; i < q->nf; i++)
        *(q->f[i].fn == FN_RAW ? &raw : &agg) = 1;
    if (agg && raw)
        return api__q_result_error(
            run, "mixing aggregate and non-aggregate queries is not supported", NULL);
    if (raw && (q->every_ns || q->every_raw))
        return api__q_result_error(run, "GROUP BY requires at least one aggregate function", NULL);
    if (q->device[0] != '\0' && q->device_re != NULL) { /* = 'id' AND =~ /re/: id, or none */
        struct dev_re d;
        if (api__iq_dev_re_comp(run, q, &d))
            return 1;
        q->device_none |= !api__iq_dev_re_match(&d, q->device);
        api__iq_dev_re_free(&d);
        q->device_re = q->device_re2 = NULL;
    }
    if (q->device_any && q->device[0] == '\0' && q->device_re == NULL &&
        api__iqv_kind(q->from) == IQV_NONE) {
        /* != '' FROM a device's name: to influxd either a measurement of its own, whose points
         * have no device tag ("pump-7 temp=70.5"), or no measurement at all (the device written
         * as "pump,device=pump-7"): no series either way. */
        int is = api__iq_is_device(r, q->from);
        if (is < 0)
            return api__q_backend_error(run, "reading the device: ", is);
        q->device_none |= is;
    }
    int valued = 0; /* a field a cast leaves values */
    for (int i = 0; i < q->nf; i++)
        valued |= q->f[i].cast != CAST_NONE;
    if (!valued && api__iqv_kind(q->from) != IQV_ANOMALIES) /* its fields are strings */
        q->device_none = 1; /* temp::string: no field has that type, influxd answers none */
    if (q->device_none) {   /* "device" = '', or two ids: influxd answers no series */
        api__q_result_open(run);
        return 0;
    }
    if (api__iqv_kind(q->from) == IQV_ANOMALIES) { /* string fields: influxql_vigil.c */
        if (q->device_re2 != NULL)
            return api__q_unsupported_error(run, "two regular expressions on the device tag in "
                                                 "SELECT FROM vigil_anomalies");
        iqv_select_t v = {.from = q->from,
                          .device = q->device,
                          .device_re = q->device_re ? q->device_re : "",
                          .nf = q->nf,
                          .agg = agg || q->every_ns,
                          .group_tag = q->group_tag,
                          .desc = q->desc,
                          .lo_ns = q->lo_ns,
                          .hi_ns = q->hi_ns,
                          .limit = q->limit,
                          .offset = q->offset,
                          .slimit = q->slimit,
                          .soffset = q->soffset};
        for (int i = 0; i < q->nf; i++) {
            v.field[i] = q->chans[q->f[i].chan];
            v.col[i] = q->f[i].col;
        }
        return api__iqv_anomalies(r, run, &v);
    }
    if (r->srv->be.device_get == NULL || r->srv->be.query == NULL) {
        api__q_result_open(run); /* no store (the fuzz target): nothing to read */
        return 0;
    }
    *x = (struct sel_run){.r = r,
                          .run = run,
                          .q = q,
                          .max_rows = (long long)r->max_query_limit,
                          .max_scan = r->max_scan_points};
    size_t mark = run->b.len;
    api__q_result_open(run);
    if (q->device_re != NULL) {
        struct dev_re d;
        if (api__iq_dev_re_comp(run, q, &d)) {
            run->b.len = mark;
            return 1;
        }
        int rc = select_each_device(x, &d);
        api__iq_dev_re_free(&d);
        return select_finish(x, mark, rc);
    }
    if (q->device_any && q->device[0] == '\0') { /* != '' alone: every device */
        int rc = select_each_device(x, NULL);
        return select_finish(x, mark, rc);
    }
    const char *device = q->device[0] ? q->device : q->from;
    x->skip = q->soffset > 0; /* one series: SOFFSET skips it */
    x->untagged = q->device[0] == '\0' && api__iqv_kind(q->from) == IQV_NONE;
    int rc = select_device(x, device);
    x->untagged = 0;
    if (rc == 0 && x->not_found && q->group_tag && q->device[0] == '\0')
        rc = select_each_device(x, NULL);
    return select_finish(x, mark, rc);
}

/* star_reason's callback: the device's fields (its channels), at most 20 named, each as
 * SELECT takes it (a name with a blank, a comma or a quote double-quoted, api__iq_quote_ident:
 * "a, b" is one field, not two). */
static int star_fields(void *arg, const api_device_t *d)
{
    sbuf_t *b = arg;
    for (size_t i = 0; i < d->nchannels && i < 20; i++) {
        if (i)
            sbuf_append(b, ", ", 2);
        api__iq_quote_ident(b, d->channels[i]);
    }
    if (d->nchannels > 20)
        sbuf_printf(b, " and %zu more", d->nchannels - 20);
    return 1;
}

/* q->unsupported, and for SELECT * FROM one device (by its name or a "device" = condition)
 * the fields to name: the influx shell's first query, SELECT * FROM "pump-7", was told to name
 * the fields without which (session 66, read66b). In s's memory; out of memory, or no such
 * device or no field: q->unsupported as it is. */
static const char *star_reason(api_request_t *r, qscan_t *s, const select_t *q)
{
    enum iqv_kind kind = api__iqv_kind(q->from);
    const char *id = q->device && q->device[0] ? q->device : q->from;
    if (strcmp(q->unsupported, IQ_STAR_UNSUPPORTED) != 0 || q->device_none || q->device_any ||
        q->device_re || id == NULL || id[0] == '\0' || kind == IQV_ANOMALIES ||
        (kind != IQV_NONE && id == q->from))
        return q->unsupported;
    sbuf_t b;
    sbuf_init(&b);
    const char *why = q->unsupported;
    /* vigil_scores' fields are score and state, vigil_predictions' the channels predicted
     * (read67a: the device's channels named for vigil_scores found nothing). */
    int rc = kind == IQV_NONE ? r->srv->be.device_find(r->srv->be.ctx, id, star_fields, &b)
                              : api__iqv_device_get(r, q->from, id, star_fields, &b);
    if (rc == 0 && b.len && !b.oom) {
        size_t n = strlen(why) + strlen(id) + strlen(q->from) + b.len + 32;
        char *text = api__qs_alloc(s, n);
        if (text) {
            if (kind == IQV_NONE)
                snprintf(text, n, "%s (device '%s' has %s)", why, id, b.data);
            else
                snprintf(text, n, "%s (%s of device '%s' has %s)", why, q->from,
                         id, b.data);
            why = text;
        }
    }
    sbuf_deinit(&b);
    return why;
}

int api__iq_select(api_request_t *r, qscan_t *s, qrun_t *run)
{
    /* Both on the heap: a run holds its accumulators (some 1.6 KB). */
    select_t *q = calloc(1, sizeof *q);
    struct sel_run *x = calloc(1, sizeof *x);
    int rc = -1;
    if (q == NULL || x == NULL)
        api__error(r, 500, "out of memory");
    else
        rc = api__iq_select_read(r, s, q, run);
    if (rc == 0 && run != NULL) {
        if (q->unsupported && q->influxd_error)
            rc = api__q_result_error(run, q->unsupported, NULL);
        else if (q->unsupported)
            rc = api__q_unsupported_error(run, star_reason(r, s, q));
        else
            rc = select_run(r, q, run, x);
    }
    free(q);
    free(x);
    return rc;
}

/* api/influxql_vigil.c: vigild's own series on /query, beside the readings, so that a Grafana
 * panel can chart what the detector saw: three reserved measurements, the device a tag of each
 * (so no channel or device name can collide with a field):
 *
 *   vigil_predictions  each channel's predicted value, a float field under the channel's name
 *   vigil_scores       "score" (the anomaly score) and "state" (0 learning, 1 normal, 2 warning,
 *                      3 anomaly), float fields
 *   vigil_anomalies    one row per episode at its start: "text", "channels", "ended_by",
 *                      "opened_by", "note" (strings), "end" (its end, ms since the epoch; null
 *                      while active), "peak_score", "id", "continues", "fault" (numbers; the
 *                      last two null unless the event continues another), and the "device" tag
 *
 * queried with WHERE "device" = 'pump-1' (or =~ /re/ with GROUP BY "device"). The first two are
 * read by influxql_select.c's own machinery (raw, aggregates, GROUP BY time(), fill, bounds):
 * its device and point reads come here (api__iqv_device_get, api__iqv_query), which answer
 * them from be.pipe_predictions_each, a scored reading being a point. The third has string
 * fields, which that machinery does not carry: api__iqv_anomalies answers it raw, from
 * be.pipe_anomalies_each. A FROM name that is not reserved is a device, as before; a device
 * named like a reserved measurement is reached by WHERE "device" = 'its id' FROM any other name.
 *
 * The history is the pipeline's: the newest model.predictions scored readings per device (what
 * /v1/devices/{id}/predictions lists) and every episode kept. Any thread; no state, no lock. */
#include "influxql.h"
#include "err.h"
#include "vtime.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reserved[IQV_KINDS] = {NULL, "vigil_predictions", "vigil_scores",
                                                "vigil_anomalies"};

/* The same names as SHOW MEASUREMENTS lists them among the devices (influxql_show.c), so that
 * Grafana's FROM list offers them: sorted in byte order, as influxd lists names. */
const char *const api__iqv_listed[] = {"vigil_anomalies", "vigil_predictions", "vigil_scores",
                                       NULL};
_Static_assert(sizeof api__iqv_listed / sizeof api__iqv_listed[0] == IQV_KINDS,
               "every reserved name listed once");

/* vigil_scores' fields, in the order SHOW FIELD KEYS lists them (sorted). */
static const char *const score_fields[] = {"score", "state"};

enum iqv_kind api__iqv_kind(const char *measurement)
{
    for (int k = 1; k < IQV_KINDS; k++)
        if (strcmp(measurement, reserved[k]) == 0)
            return (enum iqv_kind)k;
    return IQV_NONE;
}

/* ---- vigil_predictions and vigil_scores: points for influxql_select.c ---------------------- */

#define IQV_CHANNELS_MAX 64

/* The facts of one device's predictions: their first and last times, their channels. */
struct pred_facts {
    int64_t first_ms, last_ms;
    size_t nch;
    char *ch[IQV_CHANNELS_MAX]; /* owned */
    int nomem;
};

static int facts_entry(void *arg, const api_prediction_t *p)
{
    struct pred_facts *f = arg;
    if (f->first_ms < 0) {
        for (size_t c = 0; c < p->nchannels && c < IQV_CHANNELS_MAX; c++)
            if ((f->ch[f->nch++] = strdup(p->channels[c])) == NULL) {
                f->nomem = 1;
                return 1;
            }
        f->first_ms = p->ts_ms;
    }
    f->last_ms = p->ts_ms;
    return 0;
}

int api__iqv_device_get(api_request_t *r, const char *measurement, const char *device,
                        api_device_cb cb, void *arg)
{
    const api_backend_t *be = &r->srv->be;
    enum iqv_kind k = api__iqv_kind(measurement);
    if (k == IQV_NONE)
        return be->device_get(be->ctx, device, r->read_deadline_us, cb, arg);
    if (be->pipe_predictions_each == NULL || k == IQV_ANOMALIES)
        return ERR_NOTFOUND;
    /* The oldest entry (its time and the channels), then the newest (its time), as the store
     * keeps a device's first and last reading's time. */
    struct pred_facts f = {.first_ms = -1, .last_ms = -1};
    int rc = be->pipe_predictions_each(be->ctx, device, VTIME_MIN_MS, VTIME_MAX_MS + 1, 1, 0,
                                       facts_entry, &f);
    if (rc == 0 && !f.nomem && f.first_ms >= 0)
        rc = be->pipe_predictions_each(be->ctx, device, VTIME_MIN_MS, VTIME_MAX_MS + 1, 1, 1,
                                       facts_entry, &f);
    if (rc == 0 && f.nomem)
        rc = ERR_NOMEM;
    if (rc == 0) {
        api_device_t d = {.id = device,
                          .attrs_json = "{}",
                          .first_ts_ms = f.first_ms,
                          .last_ts_ms = f.last_ms,
                          .last_seen_ms = -1};
        d.nchannels = k == IQV_SCORES ? 2 : f.nch;
        d.channels = k == IQV_SCORES ? score_fields : (const char *const *)f.ch;
        cb(arg, &d);
    }
    for (size_t c = 0; c < f.nch; c++)
        free(f.ch[c]);
    return rc;
}

/* A query's read of predictions: each entry a point of the wanted fields it has. */
struct pred_read {
    const api_query_t *q;
    enum iqv_kind kind;
    api_point_cb cb;
    void *arg;
};

/* The value of field name in entry p (vigil_predictions: a channel's prediction; vigil_scores:
 * score or state). Returns 0 with *v, or -1 when p has none (NaN: no value, as JSON's null). */
static int entry_value(const struct pred_read *x, const api_prediction_t *p, const char *name,
                       double *v)
{
    *v = NAN;
    if (x->kind == IQV_SCORES && strcmp(name, "score") == 0)
        *v = p->score;
    else if (x->kind == IQV_SCORES && strcmp(name, "state") == 0)
        *v = p->state;
    for (size_t c = 0; x->kind == IQV_PREDICTIONS && c < p->nchannels; c++)
        if (strcmp(p->channels[c], name) == 0)
            *v = p->predicted[c];
    return isnan(*v) ? -1 : 0;
}

static int read_entry(void *arg, const api_prediction_t *p)
{
    const struct pred_read *x = arg;
    const char *names[IQV_CHANNELS_MAX];
    double values[IQV_CHANNELS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < x->q->nchannels && n < IQV_CHANNELS_MAX; i++)
        if (entry_value(x, p, x->q->channels[i], &values[n]) == 0)
            names[n++] = x->q->channels[i];
    /* An entry with none of the fields is no point of them, as in influxd. */
    return n > 0 ? x->cb(x->arg, p->ts_ms, n, names, values) : 0;
}

int api__iqv_query(api_request_t *r, const char *measurement, const api_query_t *q, api_point_cb cb,
                   void *arg)
{
    const api_backend_t *be = &r->srv->be;
    enum iqv_kind k = api__iqv_kind(measurement);
    if (k == IQV_NONE) {
        api_query_t dq = *q;
        dq.deadline_us = r->read_deadline_us;
        return be->query(be->ctx, &dq, cb, arg);
    }
    if (be->pipe_predictions_each == NULL || k == IQV_ANOMALIES)
        return ERR_NOTFOUND;
    /* No limit of the entries: the scan bound (http.max_scan_points) and a LIMIT stop the read
     * through cb, and the newest entries come first with desc, however many are older. Not
     * max_scan_points + 1 entries either: an entry without a value of the fields asked (a
     * learning device's score and predictions, null since session 66; a channel newer than the
     * entry) reaches no cb and so counts nowhere, and a read cut at that many entries answered
     * a silently cut result. The entries read are at most the device's retained ones
     * (model.predictions), as a desc read's always were. */
    struct pred_read x = {q, k, cb, arg};
    return be->pipe_predictions_each(be->ctx, q->device, q->from_ms, q->to_ms, SIZE_MAX, q->desc,
                                     read_entry, &x);
}

/* ---- vigil_anomalies: its own raw answer ---------------------------------------------------- */

enum ep_field {
    EF_TEXT,
    EF_CHANNELS,
    EF_ENDED_BY,
    EF_OPENED_BY,
    EF_NOTE,
    EF_DEVICE,
    EF_END,
    EF_PEAK,
    EF_ID,
    EF_CONTINUES,
    EF_FAULT,
    EF_KINDS
};
static const char *const ep_fields[EF_KINDS] = {"text", "channels",  "ended_by", "opened_by",
                                                "note", "device",    "end",      "peak_score",
                                                "id",   "continues", "fault"};

/* One episode, copied out of the backend's callback. */
struct episode {
    char *device, *text, *str[EF_DEVICE]; /* owned; str[EF_TEXT] unused (text); NULL: null */
    int64_t start_ms, end_ms, id, continues, fault; /* continues, fault 0: null */
    double peak;
};

struct ep_list {
    struct episode *e;
    size_t n, cap;
    const regex_t *re;
    int nomem;
    qrun_t *run; /* whose deadline (http.query_timeout) stops the read, every 1,024 episodes */
    size_t seen; /* episodes the read handed over, matching re or not */
};

static char *dup_or_null(const char *s, int *nomem)
{
    char *d = s ? strdup(s) : NULL;
    if (s && d == NULL)
        *nomem = 1;
    return d;
}

/* The annotation's text: the device, the channels (ranked by their share, each with its side of
 * the prediction where known), the peak score and how the episode ended ("active" while it
 * lasts). Caller frees; NULL: out of memory. */
static char *episode_text(const api_episode_t *e)
{
    char peak[32] = "";
    if (!isnan(e->peak_score))
        snprintf(peak, sizeof peak, ", peak score %.3g", e->peak_score);
    const char *end = e->end_ms < 0 ? "active" : e->ended_by ? e->ended_by : "ended";
    const char *chans = e->channels_sides && e->channels_sides[0] ? e->channels_sides : e->channels;
    size_t len = strlen(e->device) + strlen(chans) + strlen(end) + sizeof peak + 64;
    char *t = malloc(len);
    if (t)
        snprintf(t, len, "%s: anomaly%s%s%s (%s)", e->device, chans[0] ? " on " : "", chans, peak,
                 end);
    return t;
}

static int collect_episode(void *arg, const api_episode_t *e)
{
    struct ep_list *l = arg;
    if ((++l->seen & 1023) == 0 && api__q_deadline_passed(l->run))
        return 1; /* run->timed_out: api__iqv_anomalies' error */
    if (l->re && regexec(l->re, e->device, 0, NULL, 0) != 0)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        struct episode *n = realloc(l->e, cap * sizeof *n);
        if (n == NULL) {
            l->nomem = 1;
            return 1;
        }
        l->e = n;
        l->cap = cap;
    }
    struct episode *x = &l->e[l->n++];
    memset(x, 0, sizeof *x);
    x->device = dup_or_null(e->device, &l->nomem);
    x->text = episode_text(e);
    x->str[EF_CHANNELS] = dup_or_null(e->channels, &l->nomem);
    x->str[EF_ENDED_BY] = dup_or_null(e->ended_by, &l->nomem);
    x->str[EF_OPENED_BY] = dup_or_null(e->opened_by, &l->nomem);
    x->str[EF_NOTE] = dup_or_null(e->note, &l->nomem);
    x->start_ms = e->start_ms;
    x->end_ms = e->end_ms;
    x->id = e->id;
    x->continues = e->continues;
    x->fault = e->fault;
    x->peak = e->peak_score;
    if (x->text == NULL)
        l->nomem = 1;
    return l->nomem;
}

static void ep_list_free(struct ep_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->e[i].device);
        free(l->e[i].text);
        for (int f = 0; f < EF_DEVICE; f++)
            free(l->e[i].str[f]);
    }
    free(l->e);
}

/* Rows in time order (ties by device, as influxd merges series, then id: the order does not
 * depend on the backend's), grouped by device first when the series are per device. */
static int ep_cmp_time(const struct episode *a, const struct episode *b)
{
    if (a->start_ms != b->start_ms)
        return a->start_ms < b->start_ms ? -1 : 1;
    int c = strcmp(a->device, b->device); /* influxd's merge: by series key */
    return c ? c : a->id < b->id ? -1 : a->id > b->id;
}

static int ep_cmp_time_q(const void *a, const void *b)
{
    return ep_cmp_time(a, b);
}

static int ep_cmp_device_q(const void *pa, const void *pb)
{
    const struct episode *a = pa, *b = pb;
    int c = strcmp(a->device, b->device);
    return c ? c : ep_cmp_time(a, b);
}

/* Sorts l's episodes into the series' order; desc reverses it all, series and rows, as influxd
 * orders them for ORDER BY time DESC. */
static void ep_sort(struct ep_list *l, int grouped, int desc)
{
    qsort(l->e, l->n, sizeof *l->e, grouped ? ep_cmp_device_q : ep_cmp_time_q);
    for (size_t i = 0, j = l->n - 1; desc && l->n > 0 && i < j; i++, j--) {
        struct episode t = l->e[i];
        l->e[i] = l->e[j];
        l->e[j] = t;
    }
}

/* Whether episode e has no value of field f (null in its row). */
static int field_null(const struct episode *e, enum ep_field f)
{
    if (f == EF_END)
        return e->end_ms < 0;
    if (f == EF_PEAK)
        return isnan(e->peak);
    if (f == EF_CONTINUES || f == EF_FAULT)
        return (f == EF_CONTINUES ? e->continues : e->fault) == 0;
    return f != EF_TEXT && f < EF_DEVICE && e->str[f] == NULL;
}

/* Appends episode e's value of field f. */
static void put_field(sbuf_t *b, const struct episode *e, enum ep_field f)
{
    const char *s = f == EF_TEXT ? e->text : f == EF_DEVICE ? e->device : NULL;
    if (f < EF_DEVICE && f != EF_TEXT)
        s = e->str[f];
    if (field_null(e, f))
        sbuf_append(b, "null", 4);
    else if (f == EF_END)
        sbuf_printf(b, "%lld", (long long)e->end_ms);
    else if (f == EF_ID)
        sbuf_printf(b, "%lld", (long long)e->id);
    else if (f == EF_CONTINUES || f == EF_FAULT)
        sbuf_printf(b, "%lld", (long long)(f == EF_CONTINUES ? e->continues : e->fault));
    else if (f == EF_PEAK)
        api__iq_go_float(b, e->peak);
    else
        api__iq_str(b, s);
}

/* Whether the series at index k (in id order) of n is kept by SLIMIT and SOFFSET: from SOFFSET to
 * SOFFSET + SLIMIT, so none for SOFFSET without SLIMIT, as influxd 1.6.7's LimitTagSets. */
static int series_kept(const iqv_select_t *v, long long k)
{
    if (v->slimit == 0 && v->soffset == 0)
        return 1;
    return k >= v->soffset && k - v->soffset < v->slimit;
}

/* Writes the sorted episodes as series: one, or one per device when grouped, SLIMIT and SOFFSET
 * choosing among them in id order whatever ORDER BY (series_kept); LIMIT and OFFSET
 * count rows per series, as in influxd. Returns 0, 1 when there would be more than max_rows
 * rows in all, or 2 when the query's answer passed API_PAGE_BYTES (writing stopped after the
 * row that passed it; the rows left are still counted, so that 1 is told as before). What was
 * written is then to be taken back. */
static int write_series(qrun_t *run, const iqv_select_t *v, const struct ep_list *l,
                        const enum ep_field *fields, const char *tag, long long max_rows)
{
    sbuf_t *b = &run->b;
    long long row = 0, total = 0, open = 0; /* open: the rows in the series' document */
    long long k = -1, n = 0;                /* the series' index, in l's order, of n */
    int nseries = 0, full = 0, kept = 0;
    for (size_t i = 0; i < l->n; i++)
        n += i == 0 || (v->group_tag && strcmp(l->e[i].device, l->e[i - 1].device) != 0);
    for (size_t i = 0; i < l->n; i++) {
        const struct episode *e = &l->e[i];
        if (i == 0 || (v->group_tag && strcmp(e->device, l->e[i - 1].device) != 0)) {
            if (open)
                sbuf_append(b, "]}", 2);
            open = 0;
            row = 0;
            k++;
            kept = series_kept(v, v->desc ? n - 1 - k : k); /* desc: l's series reversed */
        }
        if (!kept)
            continue;
        int any = 0; /* a row of nulls only is no row, as in influxd */
        for (int f = 0; f < v->nf && !any; f++)
            any = !field_null(e, fields[f]);
        if (!any || row++ < v->offset || (v->limit > 0 && row - v->offset > v->limit))
            continue;
        if (total++ == max_rows)
            return 1;
        if (full)
            continue;
        if (!open || api__q_chunk_full(run, open)) {
            if (!open)
                api__q_series_open(run, &nseries); /* chunked: a document per series */
            else
                api__q_chunk_next(run, b, "\"name\":"); /* and past chunk_size rows */
            api__iq_str(b, v->from);
            if (v->group_tag) {
                sbuf_append(b, ",\"tags\":{", 9);
                api__iq_str(b, tag);
                sbuf_append(b, ":", 1);
                api__iq_str(b, e->device);
                sbuf_append(b, "}", 1);
            }
            sbuf_append(b, ",\"columns\":[\"time\"", 18);
            for (int f = 0; f < v->nf; f++) {
                sbuf_append(b, ",", 1);
                api__iq_str(b, v->col[f]);
            }
            sbuf_append(b, "],\"values\":[", 12);
            open = 0;
        }
        if (open++)
            sbuf_append(b, ",", 1);
        sbuf_append(b, "[", 1);
        api__iq_put_time(b, run, e->start_ms);
        for (int f = 0; f < v->nf; f++) {
            sbuf_append(b, ",", 1);
            put_field(b, e, fields[f]);
        }
        sbuf_append(b, "]", 1);
        full = b->len > API_PAGE_BYTES; /* past it by one row at most */
    }
    if (full)
        return 2;
    if (open)
        sbuf_append(b, "]}", 2);
    if (nseries)
        sbuf_append(b, "]", 1);
    return 0;
}

/* The episodes' read range in ms, [from, to), from the statement's inclusive ns range. */
static void range_ms(const iqv_select_t *v, int64_t *from, int64_t *to)
{
    const int64_t ns = 1000000;
    *from = v->lo_ns == INT64_MIN ? VTIME_MIN_MS : v->lo_ns / ns + (v->lo_ns % ns > 0);
    *to = v->hi_ns == INT64_MAX ? VTIME_MAX_MS + 1 : v->hi_ns / ns - (v->hi_ns % ns < 0) + 1;
    if (*from < VTIME_MIN_MS)
        *from = VTIME_MIN_MS;
}

int api__iqv_anomalies(api_request_t *r, qrun_t *run, const iqv_select_t *v)
{
    const api_backend_t *be = &r->srv->be;
    enum ep_field fields[IQV_FIELDS_MAX];
    if (v->agg)
        return api__q_result_error(
            run, "vigild answers vigil_anomalies raw only (its fields are strings): ",
            "name the fields without a function or GROUP BY time()");
    for (int f = 0; f < v->nf; f++) {
        int k = 0;
        while (k < EF_KINDS && strcmp(v->field[f], ep_fields[k]) != 0)
            k++;
        if (k == EF_KINDS)
            return api__q_result_error(run, "vigil_anomalies has no field ", v->field[f]);
        fields[f] = (enum ep_field)k;
    }
    size_t mark = run->b.len;
    api__q_result_open(run);
    if (be->pipe_anomalies_each == NULL)
        return 0;
    const char *device = v->device[0] ? v->device : NULL;
    regex_t re;
    if (v->device_re[0] && api__iq_regcomp(run, &re, v->device_re)) {
        run->b.len = mark;
        return 1;
    }
    int64_t from, to;
    range_ms(v, &from, &to);
    /* Every episode overlapping the range, or ERR_LIMIT: the read is bounded by the pipeline's
     * cap on one listing (10,000), the answer by the row bound (write_series). */
    struct ep_list l = {.re = v->device_re[0] ? &re : NULL, .run = run};
    int rc = from < to ? be->pipe_anomalies_each(be->ctx, device, from, to, SIZE_MAX,
                                                 run->deadline_us, collect_episode, &l)
                       : 0;
    if (v->device_re[0])
        regfree(&re);
    if (rc == ERR_TIMEOUT) /* the store's read stopped at the deadline: timed_out below */
        rc = 0;
    if (rc == ERR_NOTFOUND) /* no such device: no series, as from influxd */
        rc = 0;
    if (rc == 0 && l.nomem)
        rc = ERR_NOMEM;
    /* The deadline again after the read: the store's listing stops at it (ERR_TIMEOUT), and
     * so does collect_episode, but the sort and the rows are still to come. */
    int timed_out = rc == 0 && api__q_deadline_passed(run);
    int written = 0;
    size_t all = l.n;
    if (rc == 0 && !timed_out) {
        /* An episode overlapping the range but started before it has its row outside it. */
        size_t n = 0;
        for (size_t i = 0; i < l.n; i++) {
            if (l.e[i].start_ms >= from && l.e[i].start_ms < to) {
                struct episode t = l.e[n];
                l.e[n++] = l.e[i];
                l.e[i] = t;
            }
        }
        l.n = n;
        ep_sort(&l, v->group_tag, v->desc);
        written =
            write_series(run, v, &l, fields, r->srv->device_tag, (long long)r->max_query_limit);
    }
    l.n = all;
    ep_list_free(&l);
    if (rc == 0 && run->b.oom)
        rc = ERR_NOMEM;
    /* The whole query's answer stops at API_PAGE_BYTES, as SELECT's and SHOW's (notes are up to
     * 500 bytes: 10,000 episodes a statement, several statements, would pass it). */
    int too_many_rows = written == 1;
    int too_big = rc == 0 && (written == 2 || (!too_many_rows && run->b.len > API_PAGE_BYTES));
    if (rc || timed_out || too_many_rows || too_big) {
        run->b.len = mark;
        char msg[200];
        if (timed_out)
            return api__q_timeout_error(run);
        if (too_big)
            snprintf(msg, sizeof msg, "%s: narrow the time range or add LIMIT", API_IQ_TOO_BIG);
        else if (rc == ERR_LIMIT)
            snprintf(msg, sizeof msg,
                     "vigild reads at most 10000 episodes overlapping the range for one SELECT: "
                     "narrow the time range");
        else if (rc)
            return api__q_backend_error(run, "reading the anomalies: ", rc);
        else
            snprintf(msg, sizeof msg,
                     "vigild answers at most %zu rows for one SELECT (http.max_query_points): "
                     "narrow the time range or add LIMIT",
                     (size_t)r->max_query_limit);
        return api__q_result_error(run, msg, NULL);
    }
    return 0;
}

/* ---- SHOW FIELD KEYS FROM vigil_* ------------------------------------------------------------ */

/* api__iq_devices callback: appends each channel name of d, NUL-terminated, to the sbuf arg. */
static int collect_channels(void *arg, const api_device_t *d)
{
    sbuf_t *names = arg;
    for (size_t c = 0; c < d->nchannels; c++)
        sbuf_append(names, d->channels[c], strlen(d->channels[c]) + 1);
    return names->oom;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct names of collect_channels' buffer, sorted, into *out (caller frees; they point
 * into names). Returns their number, or -1 (out of memory). */
static long distinct_names(const sbuf_t *names, const char ***out)
{
    size_t n = 0;
    for (size_t at = 0; at < names->len; at += strlen(names->data + at) + 1)
        n++;
    const char **v = malloc((n ? n : 1) * sizeof *v);
    if (v == NULL)
        return -1;
    n = 0;
    for (size_t at = 0; at < names->len; at += strlen(names->data + at) + 1)
        v[n++] = names->data + at;
    qsort(v, n, sizeof *v, cmp_name);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(v[i], v[k - 1]) != 0)
            v[k++] = v[i];
    *out = v;
    return (long)k;
}

/* Appends the row [name, type] of SHOW FIELD KEYS. */
static void key_row(sbuf_t *b, int first, const char *name, const char *type)
{
    sbuf_append(b, first ? "[" : ",[", first ? 1 : 2);
    api__iq_str(b, name);
    sbuf_printf(b, ",\"%s\"]", type);
}

/* vigil_anomalies' fields, sorted as influxd lists them; the numbers are floats. */
static const char *const anomaly_keys[] = {"channels",   "continues", "end",  "ended_by",
                                           "fault",      "id",        "note", "opened_by",
                                           "peak_score", "text"};
static const char *const anomaly_types[] = {"string", "float",  "float",  "string", "float",
                                            "float",  "string", "string", "float",  "string"};

int api__iqv_own_field(enum iqv_kind k, const char *name)
{
    for (int i = 0; k == IQV_SCORES && i < 2; i++)
        if (strcmp(name, score_fields[i]) == 0)
            return 1;
    for (int i = 0; k == IQV_ANOMALIES && i < 10; i++)
        if (strcmp(name, anomaly_keys[i]) == 0)
            return 1;
    return 0;
}

int api__iqv_field_keys_series(api_request_t *r, const qrun_t *run, sbuf_t *b,
                               const char *measurement, long long limit, long long offset,
                               size_t *nfields)
{
    enum iqv_kind k = api__iqv_kind(measurement);
    sbuf_t names;
    sbuf_init(&names);
    const char **v = NULL;
    long n = 0;
    int rc = 0;
    if (k == IQV_PREDICTIONS)
        rc = api__iq_devices(r, collect_channels, &names);
    if (rc == 0 && (names.oom || (n = distinct_names(&names, &v)) < 0))
        rc = ERR_NOMEM;
    *nfields = rc ? 0 : k == IQV_PREDICTIONS ? (size_t)n : k == IQV_SCORES ? 2 : 10;
    /* OFFSET and LIMIT keep fields [from, to) of the series, as influxd's SHOW FIELD KEYS does
     * in each measurement; none kept: no series */
    long long from = offset, to = (long long)*nfields;
    if (limit > 0 && limit < to - from)
        to = from + limit;
    if (rc == 0 && b != NULL && from < to) {
        const char *const *key = k == IQV_PREDICTIONS ? v
                                 : k == IQV_SCORES    ? score_fields
                                                      : anomaly_keys;
        sbuf_append(b, "{", 1);
        for (long long i = from, doc = 0; i < to; i++, doc++) {
            if (i > from && api__q_chunk_full(run, doc)) { /* as influxd cuts them */
                api__q_chunk_next(run, b, "");
                doc = 0;
            }
            if (doc == 0) {
                sbuf_append(b, "\"name\":", 7);
                api__iq_str(b, measurement);
                sbuf_append(b, ",\"columns\":[\"fieldKey\",\"fieldType\"],\"values\":[", 46);
            }
            key_row(b, doc == 0, key[i], k == IQV_ANOMALIES ? anomaly_types[i] : "float");
        }
        sbuf_append(b, "]}", 2);
    }
    free(v);
    sbuf_deinit(&names);
    return rc;
}

int api__iqv_field_keys(api_request_t *r, qrun_t *run, const char *measurement, long long limit,
                        long long offset)
{
    size_t start = run->b.len, n;
    api__q_result_open(run);
    size_t mark = run->b.len;
    if (run->count == NULL) /* counted (SHOW FIELD KEY CARDINALITY): the number alone */
        sbuf_append(&run->b, ",\"series\":[", 11);
    int rc =
        api__iqv_field_keys_series(r, run, run->count ? NULL : &run->b, measurement, limit, offset,
                                   &n);
    if (rc != 0) {
        run->b.len = start; /* the failed statement's result is result_failed's to write */
        return api__q_backend_error(run, "reading the devices: ", rc);
    }
    if (run->count != NULL) {
        if (n > 0)
            api__iq_count_series(run, measurement, n);
    } else if (run->b.len == mark + 11) {
        run->b.len = mark; /* no field: no series */
    } else {
        sbuf_append(&run->b, "]", 1);
    }
    return 0;
}

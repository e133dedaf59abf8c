/* api/influxql_show_walk.c: the walk over the devices (api__iq_devices) that writes the SHOW
 * statements' rows or series, one per device, or counts them in a cardinality statement
 * (influxql_show.c runs it). Once part of influxql_show.c.
 *
 * Any thread: each walk reads the backend and holds no lock. */
#include "influxql_show_walk.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>


int api__iq_walk_counting(const struct dev_walk *w)
{
    return w->run != NULL && w->run->count != NULL;
}

/* Counts the series of n values that w's row would list under name. Returns as a row. */
static int row_count(struct dev_walk *w, const char *name, size_t n)
{
    if (n > 0)
        api__iq_count_series(w->run, name, n);
    return n > 0;
}

/* Whether id passes re[0..n) (neg[i], when neg is not NULL: must not match re[i]). */
static int re_pass(const regex_t *re, const int *neg, int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if ((regexec(&re[i], id, 0, NULL, 0) == 0) == (neg && neg[i]))
            return 0;
    return 1;
}

/* Offers d to w (own: one of w's own names, which w->conds do not filter: a reserved
 * measurement holds every device's series): the filters, OFFSET and LIMIT, then its row.
 * Returns nonzero to stop. */
static int walk_one(struct dev_walk *w, const api_device_t *d, int own)
{
    if (!re_pass(w->re, NULL, w->nre, d->id) ||
        (!own && w->conds && !api__iq_conds_pass(w->conds, d->id)))
        return 0;
    if (w->seen++ < w->offset)
        return 0;
    int listed = w->row(w, d);
    if (listed < 0)
        return w->stopped = 1;
    w->n += listed;
    if (w->b->len > API_PAGE_BYTES) { /* a statement repeated to fill q: see API_IQ_TOO_BIG */
        w->too_big = 1;
        return w->stopped = 1;
    }
    return w->stopped = w->limit > 0 && w->n >= w->limit;
}

/* Offers w's own names that sort before id (NULL: all that are left), then stops at id; a
 * device named like one of them takes its place, listed once. Returns nonzero to stop. */
static int walk_own_until(struct dev_walk *w, const char *id)
{
    for (; w->own && w->own[w->own_next] && !w->stopped; w->own_next++) {
        int c = id ? strcmp(w->own[w->own_next], id) : -1;
        if (c >= 0) {
            w->own_next += c == 0;
            break;
        }
        api_device_t own = {.id = w->own[w->own_next], .first_ts_ms = -1, .last_ts_ms = -1};
        walk_one(w, &own, 1);
    }
    return w->stopped;
}

static int walk_device(void *arg, const api_device_t *d)
{
    struct dev_walk *w = arg;
    if (api__q_deadline_passed(w->run)) /* run->timed_out: api__iq_walk_result's error */
        return w->stopped = 1;
    return walk_own_until(w, d->id) || walk_one(w, d, 0);
}

int api__iq_walk_devices(api_request_t *r, struct dev_walk *w)
{
    int rc = api__iq_devices(r, walk_device, w);
    if (rc == 0)
        walk_own_until(w, NULL);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Before a series of w's but the first: ',', or chunked the next document (api__q_series_next:
 * influxd 1.6.7 sends SHOW TAG KEYS', FIELD KEYS' and TAG VALUES' series a document each). */
static void series_sep(struct dev_walk *w)
{
    if (w->n > 0 && w->run != NULL)
        api__q_series_next(w->run, w->b, w->partial);
    else if (w->n > 0)
        sbuf_append(w->b, ",", 1);
}

/* Writes a SHOW FIELD KEYS series' head, from its name to the start of its values. */
static void field_keys_head(sbuf_t *b, const char *name)
{
    sbuf_append(b, "\"name\":", 7);
    api__iq_str(b, name);
    sbuf_printf(b, ",\"columns\":[\"fieldKey\",\"fieldType\"],\"values\":[");
}

int api__iq_field_keys_series(struct dev_walk *w, const api_device_t *d)
{
    enum iqv_kind k = api__iqv_kind(d->id);
    if (w->own_n && k != IQV_NONE) {
        if (api__iq_walk_counting(w))
            return row_count(w, d->id, w->own_n[k]);
        const sbuf_t *t = &w->own_text[k];
        if (t->len > 0) {
            series_sep(w);
            sbuf_append(w->b, t->data, t->len);
        }
        return t->len > 0;
    }
    if (d->nchannels == 0 || api__iq_walk_counting(w))
        return row_count(w, d->id, d->nchannels);
    const char **names = malloc(d->nchannels * sizeof *names);
    if (names == NULL) {
        w->b->oom = 1; /* as a failed append: the answer is out of memory's, not a list cut short */
        return -1;
    }
    memcpy(names, d->channels, d->nchannels * sizeof *names);
    qsort(names, d->nchannels, sizeof *names, cmp_str);
    /* OFFSET and LIMIT apply to each series' sorted fields, as influxd's */
    size_t from = (size_t)w->key_offset, to = d->nchannels;
    if (w->key_limit > 0 && from < to && (size_t)w->key_limit < to - from)
        to = from + (size_t)w->key_limit;
    if (from >= to) {
        free(names);
        return 0;
    }
    series_sep(w);
    sbuf_append(w->b, "{", 1);
    field_keys_head(w->b, d->id);
    for (size_t i = from, doc = 0; i < to; i++, doc++) {
        if (w->run != NULL && api__q_chunk_full(w->run, (long long)doc)) { /* as influxd cuts */
            api__q_chunk_next(w->run, w->b, "");
            field_keys_head(w->b, d->id);
            doc = 0;
        }
        sbuf_printf(w->b, "%s[", doc > 0 ? "," : "");
        api__iq_str(w->b, names[i]);
        sbuf_printf(w->b, ",\"float\"]");
    }
    sbuf_printf(w->b, "]}");
    free(names);
    return 1;
}

int api__iq_tag_keys_series(struct dev_walk *w, const api_device_t *d)
{
    if (api__iq_walk_counting(w))
        return row_count(w, d->id, 1);
    series_sep(w);
    sbuf_printf(w->b, "{\"name\":");
    api__iq_str(w->b, d->id);
    sbuf_printf(w->b, ",\"columns\":[\"tagKey\"],\"values\":[[");
    api__iq_str(w->b, w->tag);
    sbuf_printf(w->b, "]]}");
    return 1;
}

int api__iq_tag_values_series(struct dev_walk *w, const api_device_t *d)
{
    if (api__iq_walk_counting(w))
        return row_count(w, d->id, 1);
    series_sep(w);
    sbuf_printf(w->b, "{\"name\":");
    api__iq_str(w->b, d->id);
    sbuf_printf(w->b, ",\"columns\":[\"key\",\"value\"],\"values\":[[");
    api__iq_str(w->b, w->tag);
    sbuf_append(w->b, ",", 1);
    api__iq_str(w->b, d->id);
    sbuf_printf(w->b, "]]}");
    return 1;
}

int api__iq_name_row(struct dev_walk *w, const api_device_t *d)
{
    if (api__iq_walk_counting(w))
        return 1;
    sbuf_printf(w->b, "%s[", w->n ? "," : "");
    if (w->tag) {
        api__iq_str(w->b, w->tag);
        sbuf_append(w->b, ",", 1);
    }
    api__iq_str(w->b, d->id);
    sbuf_append(w->b, "]", 1);
    return 1;
}

int api__iq_walk_result(api_request_t *r, qrun_t *run, struct dev_walk *w, const char *name,
                        const char *columns)
{
    if (api__iq_count_none(run)) /* its GROUP BY's error is the answer: nothing to count */
        return 0;
    size_t mark = run->b.len;
    api__q_result_open(run);
    w->b = &run->b;
    w->run = run;
    if (!api__iq_walk_counting(w)) {
        sbuf_printf(&run->b, ",\"series\":[");
        if (name) {
            sbuf_printf(&run->b, "{\"name\":");
            api__iq_str(&run->b, name);
            sbuf_printf(&run->b, ",\"columns\":[%s],\"values\":[", columns);
        }
    }
    int rc = api__iq_walk_devices(r, w);
    if (rc || w->too_big || run->timed_out) {
        run->b.len = mark;
        /* Counts have no LIMIT to add: their rows are the bound's alone (API_IQ_TOO_BIG). */
        return rc ? api__q_backend_error(run, "reading the devices: ", rc)
               : w->too_big
                   ? api__q_result_error(run,
                                         api__iq_walk_counting(w) ? API_IQ_TOO_BIG
                                                                  : API_IQ_TOO_BIG ": add LIMIT",
                                         NULL)
                   : api__q_timeout_error(run);
    }
    if (api__iq_walk_counting(w)) {
        if (name)
            row_count(w, name, (size_t)w->n);
        return 0;
    }
    if (w->n == 0) {
        run->b.len = mark;
        api__q_result_open(run);
        return 0;
    }
    sbuf_printf(&run->b, name ? "]}]" : "]");
    return 0;
}

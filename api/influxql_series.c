/* api/influxql_series.c: SHOW SERIES [ON db] [FROM name | /re/ | name, /re/, ...] [WHERE ...]
 * [ORDER BY time] [LIMIT n] [OFFSET n], answered as influxd 1.6.7 answers it: one series of
 * "key" rows, each a series key as influxd writes it (the measurement with ',' and ' ' escaped,
 * then ",tag=value" with ',', '=' and ' ' escaped in both), sorted by measurement, then by key;
 * and SHOW SERIES [EXACT] CARDINALITY, which counts the same series (influxd's estimate's
 * column without FROM, WHERE, LIMIT or OFFSET; else a count per measurement).
 *
 * A series is what SHOW TAG VALUES lists (README "Grafana"): each device is a measurement of
 * its own holding one series, its id as its device tag's value ("pump-7,device=pump-7").
 * Without FROM the devices' series alone are listed, as SHOW TAG VALUES without FROM leaves out
 * the reserved measurements (vigil_scores and the others would repeat every device's id three
 * times more toward the answer's bound). FROM a reserved name, or a name that is no device
 * (Telegraf's "pump"), lists a series per device under that name, as SHOW TAG VALUES FROM it
 * lists every device; FROM a device's id, that device's series; FROM /re/, the devices and
 * reserved names it matches. WHERE is read series by series, as SHOW TAG KEYS reads it
 * (influxql_show_where.c): a condition on another tag key is met by every series or by none
 * (its value ''), but one on a key that is a field of the series' measurement is met, as
 * influxd's index leaves fields out: a device's fields are its channels; vigil_predictions' and
 * a name that is no device's, every device's channels; vigil_scores' and vigil_anomalies'
 * their own (influxql_vigil.c).
 *
 * Any thread: each statement copies the devices (one api__iq_devices walk) and holds no lock. */
#include "influxql_show_where.h"
#include "err.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

/* The most sources one FROM reads: IQ_SOURCES_MAX (influxql_show_where.h). */
#define SS_SOURCES_MAX IQ_SOURCES_MAX

/* A measurement to list: its own series (a device's id), or with all a series per device. */
struct ss_meas {
    const char *name; /* borrowed: from the query's memory, api__iqv_listed, or devs[] */
    int all;
};

/* A device as SHOW SERIES reads it: its id, then its channels, each NUL-terminated, in one
 * block. */
struct ss_dev {
    char *id;
    size_t nch;
};

/* What one statement lists: every device (sorted, as api__iq_devices walks them) and the
 * measurements FROM names. */
struct ss_list {
    struct ss_dev *devs;
    size_t nids, cap;
    struct ss_meas *meas;
    size_t nmeas;
    int nomem;
};

/* The api__iq_devices callback: keeps each device's id and channels. */
static int devs_keep(void *arg, const api_device_t *d)
{
    struct ss_list *l = arg;
    if (l->nids == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct ss_dev *devs = realloc(l->devs, cap * sizeof *devs);
        if (devs == NULL)
            return l->nomem = 1;
        l->devs = devs;
        l->cap = cap;
    }
    size_t n = strlen(d->id) + 1;
    for (size_t i = 0; i < d->nchannels; i++)
        n += strlen(d->channels[i]) + 1;
    char *p = malloc(n);
    if (p == NULL)
        return l->nomem = 1;
    l->devs[l->nids] = (struct ss_dev){.id = p, .nch = d->nchannels};
    l->nids++;
    p = stpcpy(p, d->id) + 1;
    for (size_t i = 0; i < d->nchannels; i++)
        p = stpcpy(p, d->channels[i]) + 1;
    return 0;
}

/* Whether device d has the channel name. */
static int dev_has(const struct ss_dev *d, const char *name)
{
    const char *c = d->id + strlen(d->id) + 1;
    for (size_t i = 0; i < d->nch; i++, c += strlen(c) + 1)
        if (strcmp(c, name) == 0)
            return 1;
    return 0;
}

static void list_free(struct ss_list *l)
{
    for (size_t i = 0; i < l->nids; i++)
        free(l->devs[i].id);
    free(l->devs);
    free(l->meas);
}

/* Appends s to b with a backslash before each of the characters in esc, as influxd's
 * models.EscapeMeasurement (", ") and EscapeTag (",= ") write a series key. */
static void key_part(sbuf_t *b, const char *s, const char *esc)
{
    for (; *s; s++) {
        if (strchr(esc, *s))
            sbuf_append(b, "\\", 1);
        sbuf_append(b, s, 1);
    }
}

/* The writing of one statement's rows: OFFSET and LIMIT count them, the answer's bound stops
 * them. */
struct ss_out {
    sbuf_t *b;
    sbuf_t key; /* the row being written, before its JSON quoting */
    const struct dev_conds *conds;
    struct dev_conds field; /* conds for the measurement being listed (fields_mark's) */
    const struct tv_where *where;
    int any_has[TV_CONDS_MAX]; /* condition i's key is some device's channel */
    const char *tag;
    long long offset, limit, seen, n;
    long long chunk_n; /* the rows in the document (chunked: at most run->chunk_rows) */
    int too_big, stopped;
    int counting;      /* SHOW SERIES CARDINALITY: count each measurement's series, write none */
    long long counted; /* the measurement's so far */
    qrun_t *run;       /* its deadline (http.query_timeout) stops the rows, read every 256 */
    unsigned ticks;    /* rows offered, for that */
};

/* Writes the series key m,tag=id as a row if it passes WHERE, OFFSET and LIMIT. */
static void row(struct ss_out *o, const char *m, const char *id)
{
    if (o->stopped)
        return;
    if ((++o->ticks & 255) == 0 && api__q_deadline_passed(o->run)) { /* series_result's error */
        o->stopped = 1;
        return;
    }
    if (!api__iq_conds_pass(&o->field, id))
        return;
    if (o->counting) {
        o->counted++;
        return;
    }
    if (o->seen++ < o->offset)
        return;
    o->key.len = 0;
    key_part(&o->key, m, ", ");
    sbuf_append(&o->key, ",", 1);
    key_part(&o->key, o->tag, ",= ");
    sbuf_append(&o->key, "=", 1);
    key_part(&o->key, id, ",= ");
    sbuf_append(&o->key, "", 1);                             /* its NUL */
    if (o->n > 0 && api__q_chunk_full(o->run, o->chunk_n)) { /* as influxd cuts them */
        api__q_chunk_next(o->run, o->b, "\"columns\":[\"key\"],\"values\":[");
        o->chunk_n = 0;
    }
    sbuf_printf(o->b, "%s[", o->chunk_n++ ? "," : "");
    o->n++;
    api__iq_str(o->b, o->key.data);
    sbuf_append(o->b, "]", 1);
    if (o->b->len > API_PAGE_BYTES) /* a statement repeated to fill q: see API_IQ_TOO_BIG */
        o->too_big = o->stopped = 1;
    if (o->limit > 0 && o->n >= o->limit)
        o->stopped = 1;
}

static int meas_cmp(const void *a, const void *b)
{
    const struct ss_meas *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* Adds a measurement to l (room for it was made by the caller). */
static void meas_add(struct ss_list *l, const char *name, int all)
{
    l->meas[l->nmeas].name = name;
    l->meas[l->nmeas].all = all;
    l->nmeas++;
}

/* The device of l whose id is id (l->devs sorted), or NULL. */
static const struct ss_dev *find_device(const struct ss_list *l, const char *id)
{
    size_t lo = 0, hi = l->nids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->devs[mid].id, id);
        if (c == 0)
            return &l->devs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Fills l->meas with the measurements FROM names: src[0..n) each a name or, with re[i], a
 * regex's pattern; sorted, each once (a name both a device and listed with all: all). The
 * regexes are tried together, a device or reserved name added once however many match (32
 * regexes matching every device: one entry per device, not 32). Returns 0, or 1 with
 * run->err. */
static int meas_from(qrun_t *run, struct ss_list *l, const char *const *src, const int *re, int n)
{
    regex_t rx[SS_SOURCES_MAX];
    int nrx = 0, rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        if (re[i] && (rc = api__iq_regcomp(run, &rx[nrx], src[i])) == 0)
            nrx++;
    size_t room = (size_t)n + (nrx ? l->nids + IQV_KINDS : 0);
    if (rc == 0 && (l->meas = malloc((room ? room : 1) * sizeof *l->meas)) == NULL)
        rc = api__q_result_error(run, "out of memory", NULL);
    for (int i = 0; i < n && rc == 0; i++)
        if (!re[i])
            meas_add(l, src[i], api__iqv_kind(src[i]) != IQV_NONE || !find_device(l, src[i]));
    for (size_t k = 0; k < l->nids && rc == 0 && nrx; k++)
        for (int j = 0; j < nrx; j++)
            if (regexec(&rx[j], l->devs[k].id, 0, NULL, 0) == 0) {
                meas_add(l, l->devs[k].id, api__iqv_kind(l->devs[k].id) != IQV_NONE);
                break;
            }
    for (int k = 0; rc == 0 && nrx && api__iqv_listed[k]; k++)
        for (int j = 0; j < nrx; j++)
            if (regexec(&rx[j], api__iqv_listed[k], 0, NULL, 0) == 0) {
                meas_add(l, api__iqv_listed[k], 1);
                break;
            }
    for (int j = 0; j < nrx; j++)
        regfree(&rx[j]);
    if (rc)
        return rc;
    qsort(l->meas, l->nmeas, sizeof *l->meas, meas_cmp);
    size_t w = 0;
    for (size_t i = 0; i < l->nmeas; i++) {
        if (w > 0 && strcmp(l->meas[w - 1].name, l->meas[i].name) == 0)
            l->meas[w - 1].all |= l->meas[i].all;
        else
            l->meas[w++] = l->meas[i];
    }
    l->nmeas = w;
    return 0;
}

int api__iq_sources_read(api_request_t *r, qscan_t *s, const char **src, int *re, int *n,
                         const char **unsupported)
{
    *n = 0;
    for (;;) {
        qscan_t at = *s;
        qtoken_t t;
        const char *pattern = NULL, *was = *unsupported;
        api__qs_next(&at, &t);
        int is_re = api__iq_regex_next(s) || t.form == QF_REGEX;
        if (is_re) { /* /re/: the query's rp= parameter its policy */
            const char *rp = NULL;
            if (api__iq_regex(r, s, &pattern) || api__iq_other_policy(r, s, 0, "", &rp))
                return -1;
            if (rp != NULL && api__iq_from_stops(*unsupported) < 1)
                *unsupported = rp;
        } else {
            if (api__iq_from(r, s, &t, unsupported))
                return -1;
            pattern = *unsupported == was ? t.text : NULL; /* not db.rp./re/, another policy */
        }
        if (*n == SS_SOURCES_MAX) {
            if (*unsupported == NULL)
                *unsupported = "more than 32 sources in SHOW SERIES' FROM";
        } else if (pattern != NULL) {
            re[*n] = is_re;
            src[(*n)++] = pattern;
        }
        at = *s;
        api__qs_next(&at, &t);
        if (!api__q_op(&t, ","))
            return 0;
        *s = at;
    }
}

/* Reads SHOW SERIES's ORDER BY time [ASC|DESC] (with order_ok; read and ignored: influxd
 * 1.6.7 lists the keys in the same order either way), LIMIT n then OFFSET n (in that order, as
 * influxd's parser) and the end. Returns 0, or -1 (parse error answered). */
static int tail_read(api_request_t *r, qscan_t *s, long long *limit, long long *offset,
                     int order_ok)
{
    static const char *const kw[] = {"ORDER", "LIMIT", "OFFSET"};
    long long *v[] = {NULL, limit, offset};
    qtoken_t t;
    int desc = 0;
    *limit = *offset = 0;
    for (int i = !order_ok; i < 3; i++) {
        qscan_t at = *s;
        api__qs_next(s, &t);
        if (!api__q_is(&t, kw[i])) {
            *s = at;
            continue;
        }
        if (i == 0 ? api__iq_order_by(r, s, &desc) : api__q_expect_count(r, s, &t, v[i]))
            return -1;
    }
    qscan_t at = *s;
    api__qs_next(s, &t);
    if (api__q_expect_end(r, &t))
        return -1;
    *s = at;
    return 0;
}

/* Sets o->field to o->conds with each condition on a field of measurement m met (dev: m's
 * device, its own measurement; NULL: m is reserved, or a name that is no device). */
static void fields_mark(struct ss_out *o, const char *m, const struct ss_dev *dev)
{
    enum iqv_kind k = api__iqv_kind(m);
    o->field = *o->conds; /* a shallow copy: the regexes stay o->conds' to free */
    o->counted = 0;
    for (int i = 0; i < o->where->n && o->counting; i++) /* influxd: "device = 5" meets none */
        if (o->where->c[i].nonstring)
            o->field.other[i] = 0;
    for (int i = 0; i < o->where->n && !o->counting; i++) {
        const struct tv_cond *c = &o->where->c[i];
        if (!c->other || c->nonstring)
            continue;
        int has = dev                                     ? dev_has(dev, c->key)
                  : k == IQV_SCORES || k == IQV_ANOMALIES ? api__iqv_own_field(k, c->key)
                                                          : o->any_has[i];
        if (has)
            o->field.other[i] = 1;
    }
}

/* Ends measurement m's rows: counting, writes its series' count (none when 0). */
static void meas_end(struct ss_out *o, const char *m)
{
    if (!o->counting || o->counted == 0 || o->stopped)
        return;
    if (o->n++)
        api__q_series_next(o->run, o->b, 1); /* chunked: a document per count, as influxd's */
    sbuf_printf(o->b, "{\"name\":");
    api__iq_str(o->b, m);
    sbuf_printf(o->b, ",\"columns\":[\"count\"],\"values\":[[%lld]]}", o->counted);
    if (o->b->len > API_PAGE_BYTES)
        o->too_big = o->stopped = 1;
}

/* Writes the rows of l's measurements (no FROM: each device's own series). */
static void rows_write(struct ss_out *o, const struct ss_list *l, int from)
{
    if (!from) {
        for (size_t i = 0; i < l->nids && !o->stopped; i++) {
            fields_mark(o, l->devs[i].id, &l->devs[i]);
            row(o, l->devs[i].id, l->devs[i].id);
            meas_end(o, l->devs[i].id);
        }
        return;
    }
    for (size_t m = 0; m < l->nmeas && !o->stopped; m++) {
        const char *name = l->meas[m].name;
        if (!l->meas[m].all) {
            fields_mark(o, name, find_device(l, name));
            row(o, name, name);
            meas_end(o, name);
            continue;
        }
        fields_mark(o, name, NULL);
        for (size_t i = 0; i < l->nids && !o->stopped; i++)
            row(o, name, l->devs[i].id);
        meas_end(o, name);
    }
}

/* Whether a condition of o->where names a key that is some device's channel (a field: sets
 * o->any_has for each). */
static int fields_named(struct ss_out *o, const struct ss_list *l)
{
    int any = 0;
    for (int i = 0; i < o->where->n; i++) {
        const struct tv_cond *c = &o->where->c[i];
        for (size_t k = 0; k < l->nids && c->other && !o->any_has[i]; k++)
            o->any_has[i] = dev_has(&l->devs[k], c->key);
        any |= o->any_has[i] && !c->nonstring;
    }
    return any;
}

/* Answers the statement read (after the list l and the conditions were taken): the keys, or
 * with o->counting each measurement's count. Returns 0, or 1 with run->err. */
static int series_result(qrun_t *run, struct ss_out *o, const struct ss_list *l, int from)
{
    size_t mark = run->b.len;
    api__q_result_open(run);
    sbuf_printf(&run->b, o->counting ? ",\"series\":["
                                     : ",\"series\":[{\"columns\":[\"key\"],"
                                       "\"values\":[");
    sbuf_init(&o->key);
    rows_write(o, l, from);
    int nomem = o->key.oom;
    sbuf_deinit(&o->key);
    if (nomem || o->too_big || run->timed_out) {
        run->b.len = mark;
        if (!nomem && !o->too_big)
            return api__q_timeout_error(run);
        return api__q_result_error(run, nomem ? "out of memory" : API_IQ_TOO_BIG ": add LIMIT",
                                   NULL);
    }
    if (o->n == 0) { /* no series: influxd's result holds none */
        run->b.len = mark;
        api__q_result_open(run);
        return 0;
    }
    if (!o->counting) /* whole, past 10,000 keys: "partial":true, as influxd's SELECT */
        api__q_series_end(run, o->chunk_n);
    sbuf_append(&run->b, "]", 1);
    return 0;
}

int api__iq_show_series(api_request_t *r, qscan_t *s, qrun_t *run)
{
    const char *unsupported = NULL;
    const char *src[SS_SOURCES_MAX];
    int re[SS_SOURCES_MAX], nsrc = 0, from = 0, exact = 0, cardinality = 0;
    struct tv_where where;
    long long limit, offset;
    qtoken_t t;
    qscan_t at = *s;
    api__qs_next(&at, &t);
    if (api__q_is(&t, "EXACT")) { /* influxd 1.6.7 reads SHOW SERIES EXACT as SHOW SERIES */
        *s = at;
        exact = 1;
        api__qs_next(&at, &t);
    }
    if (api__q_is(&t, "CARDINALITY")) {
        *s = at;
        cardinality = 1;
    }
    if (api__q_keyword_name(r, s, "ON")) /* ON db: any name (there is one store) */
        return -1;
    at = *s;
    api__qs_next(&at, &t);
    if (api__q_is(&t, "FROM")) {
        *s = at;
        from = 1;
        if (api__iq_sources_read(r, s, src, re, &nsrc, &unsupported))
            return -1;
    }
    s->card_group = 0;
    if (api__iq_tv_where_read(r, s, &where, &unsupported, 1) ||
        (cardinality && api__iq_card_group_by(r, s)) ||
        tail_read(r, s, &limit, &offset, !cardinality))
        return -1;
    /* influxd's estimate (a sketch, exact for small counts) reads no policy: vigild counts */
    int estimate = cardinality && !exact && !from && where.ncode == 0 && s->card_group == 0 &&
                   limit == 0 && offset == 0;
    const char *rp = NULL; /* without FROM every measurement, of the query's rp= policy */
    if (!from && !estimate && api__iq_other_policy(r, s, 0, "", &rp))
        return -1;
    if (rp != NULL)
        unsupported = rp;
    if (run == NULL)
        return 0;
    if (cardinality && api__iq_where_time_error(run, s, &where, "SHOW SERIES EXACT CARDINALITY"))
        return 1;
    /* influxd's order: a database not found, a dimension it refuses, a policy not found, then
     * GROUP BY, which vigild does not count */
    int stops = api__iq_from_stops(unsupported);
    if (stops == 2 || (stops == 1 && s->card_group != 2))
        return api__q_unsupported_error(run, unsupported);
    if (api__iq_card_group_error(run, s))
        return 1;
    if (unsupported)
        return api__q_unsupported_error(run, unsupported);

    struct ss_list l = {0};
    int rc = api__iq_devices(r, devs_keep, &l);
    if (rc == 0 && l.nomem)
        rc = ERR_NOMEM;
    if (rc) {
        list_free(&l);
        return api__q_backend_error(run, "reading the devices: ", rc);
    }
    if (estimate) {
        api__q_result_open(run);
        sbuf_printf(&run->b,
                    ",\"series\":[{\"columns\":[\"cardinality estimation\"],\"values\":[[%zu]]}]",
                    l.nids);
        list_free(&l);
        return 0;
    }
    struct dev_conds conds;
    if ((from && meas_from(run, &l, src, re, nsrc)) ||
        api__iq_conds_compile(run, &where, 0, &conds)) {
        list_free(&l);
        return 1;
    }
    struct ss_out o = {.b = &run->b,
                       .conds = &conds,
                       .where = &where,
                       .tag = r->srv->device_tag,
                       .offset = offset,
                       .limit = limit,
                       .counting = cardinality,
                       .run = run};
    /* fields_named sets o.any_has, which fields_mark reads for vigil_predictions and a name
     * that is no device's (their fields: every device's channels) */
    if (fields_named(&o, &l) && cardinality)
        rc = api__q_unsupported_error(run, "a field in SHOW SERIES CARDINALITY's WHERE");
    else if (cardinality && offset > 0) /* influxd's OFFSET skips each measurement's count */
        api__q_result_open(run);
    else
        rc = series_result(run, &o, &l, from);
    api__iq_conds_free(&conds);
    list_free(&l);
    return rc;
}

/* api/influxql_show.c: the schema statements Grafana's InfluxDB data source (InfluxQL mode) sends
 * to fill its query editor and to test the connection: SHOW MEASUREMENTS, SHOW FIELD KEYS, SHOW
 * TAG KEYS and SHOW TAG VALUES, answered in influxd 1.6.7's JSON.
 *
 * vigild keeps devices and channels, not measurements and tags, so (README "Grafana"): a device
 * is a measurement, its channels are its float fields, and it has one tag, influx.device_tag
 * ("device"), whose values are the device ids. SHOW TAG KEYS FROM any name answers that tag and
 * SHOW TAG VALUES FROM any name WITH KEY = "device" lists every device, so that a measurement
 * vigild does not know (Telegraf's "pump", whose points carry device=pump-7) still offers its
 * devices, and SELECT ... FROM "pump" WHERE "device" = 'pump-7' reads pump-7
 * (influxql_select.c). Lists come in byte order, as influxd sorts them.
 *
 * Any thread: each statement reads the backend (api__iq_devices, device_find) and holds no lock.
 * The device lists need ids and channels alone: they answer while the store reloads its maps. */
#include "influxql_show_walk.h"
#include "err.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

int api__iq_limit_offset(api_request_t *r, qscan_t *s, qtoken_t *t, long long *limit,
                         long long *offset)
{
    if (!api__q_is(t, "LIMIT") && !api__q_is(t, "OFFSET"))
        return 0;
    return api__q_expect_count(r, s, t, api__q_is(t, "LIMIT") ? limit : offset) ? -1 : 1;
}

/* Reads the end of a SHOW statement: optional ORDER BY time [ASC|DESC] (not in a count; read and
 * ignored: influxd 1.6.7 lists the same either way), LIMIT n, OFFSET n (with slimit_ok SLIMIT n
 * and SOFFSET n too, read and ignored, as influxd's SHOW TAG KEYS ignores them), each once and in
 * that order, as influxd's parser reads them, then ';' or the end. Anything else there (a
 * repeat, one out of order, a WHERE after them or a second WHERE: the callers read the one WHERE
 * before) is influxd's parse error "found X, expected ;". Returns 0, or -1 (parse error). */
static int show_tail(api_request_t *r, qscan_t *s, long long *limit, long long *offset,
                     int slimit_ok)
{
    static const char *const kw[] = {"ORDER", "LIMIT", "OFFSET", "SLIMIT", "SOFFSET"};
    long long ignored[2];
    long long *v[] = {NULL, limit, offset, &ignored[0], &ignored[1]};
    qtoken_t t;
    int desc;
    *limit = 0;
    *offset = 0;
    if (s->card && api__iq_card_group_by(r, s)) /* GROUP BY: the cardinality statements' */
        return -1;
    for (int i = s->card ? 1 : 0; i < (slimit_ok && !s->card ? 5 : 3); i++) {
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
    if (s->card) { /* counted: LIMIT changes nothing, OFFSET 1 leaves none (card.c) */
        s->card_limit = *limit;
        s->card_offset = *offset;
        *limit = *offset = 0;
    }
    return 0;
}

/* ---- the statements ------------------------------------------------------------------------- */

/* The row of conds_any's walk: the first device that passes stops it. */
static int any_row(struct dev_walk *w, const api_device_t *d)
{
    (void)d;
    w->n = 1;
    return -1;
}

/* Sets *any to whether some device passes d: whether a reserved measurement (or a name vigild
 * does not know, as "pump" of Telegraf's pump,device=pump-7) holds a series WHERE d, as it
 * holds one per device. Returns 0, or the backend's error. */
static int conds_any(api_request_t *r, const struct dev_conds *d, int *any)
{
    sbuf_t b;
    sbuf_init(&b);
    struct dev_walk w = {.b = &b, .conds = d, .row = any_row};
    int rc = api__iq_walk_devices(r, &w);
    sbuf_deinit(&b);
    *any = w.n > 0;
    return rc;
}

/* In a cardinality statement (s->card), a condition comparing a tag with a number or a boolean
 * ("device = 5") meets no series, as influxd counts them; the list statements match every
 * series by it, as influxd lists them. Its regex, if compiled, is freed here (other[i] 0 is
 * one api__iq_conds_free leaves alone). */
static void card_nonstring(const qscan_t *s, const struct tv_where *w, struct dev_conds *d)
{
    for (int i = 0; i < w->n && s->card; i++)
        if (w->c[i].nonstring) {
            if (d->other[i] < 0)
                regfree(&d->re[i]);
            d->other[i] = 0;
        }
}

/* The row of field_named's walk: stops at the first device having the channel w->tag. */
static int channel_row(struct dev_walk *w, const api_device_t *d)
{
    for (size_t i = 0; i < d->nchannels; i++)
        if (strcmp(d->channels[i], w->tag) == 0) {
            w->n = 1;
            return -1;
        }
    return 0;
}

/* Whether a condition of where names a field (a device's channel, or vigil_scores' or
 * vigil_anomalies' own field) compared with a string or a regex: influxd's SHOW TAG KEYS
 * reads it as met for the measurements having that field, which vigild does not model (its
 * devices and reserved measurements hold different fields), so the statement (what: its name)
 * gets vigild's statement error naming the field. Returns 0 (none), or 1 with run->err. */
static int field_named(api_request_t *r, qrun_t *run, const struct tv_where *where,
                       const char *what)
{
    for (int i = 0; i < where->n; i++) {
        const struct tv_cond *c = &where->c[i];
        if (!c->other || c->nonstring)
            continue;
        sbuf_t b;
        sbuf_init(&b);
        struct dev_walk w = {.b = &b, .tag = c->key, .row = channel_row};
        int own =
            api__iqv_own_field(IQV_SCORES, c->key) || api__iqv_own_field(IQV_ANOMALIES, c->key);
        int rc = own ? 0 : api__iq_walk_devices(r, &w);
        sbuf_deinit(&b);
        if (rc)
            return api__q_backend_error(run, "reading the devices: ", rc);
        if (!own && w.n == 0)
            continue; /* a tag no series has: its value '' */
        sbuf_init(&b);
        sbuf_printf(&b, "vigild does not support a field in %s's WHERE: ", what);
        if (b.oom)
            api__q_result_error(run, "out of memory", NULL);
        else
            api__q_sent_error(run, b.data, c->key);
        sbuf_deinit(&b);
        return 1;
    }
    return 0;
}

/* Sets *pass to whether the reserved measurements pass d as influxd's SHOW MEASUREMENTS reads a
 * WHERE, measurement by measurement: "device = 'x'" (=~) keeps a measurement that holds a
 * series with device x, "device != 'x'" (!~) one that holds none, each condition on its own,
 * joined as the WHERE joins them (AND: both sets, OR: either), and these hold a series per
 * device. Returns 0, or the backend's error. */
static int conds_reserved(api_request_t *r, struct dev_conds *d, int *pass)
{
    sbuf_t b;
    int rc = 0, leaf[TV_CONDS_MAX];
    sbuf_init(&b);
    for (int i = 0; i < d->n && rc == 0; i++) {
        struct dev_walk w = {.b = &b, .re = &d->re[i], .nre = 1, .row = any_row};
        if (d->other[i] < 0)
            rc = api__iq_walk_devices(r, &w);
        leaf[i] = (w.n > 0) != d->neg[i];
    }
    sbuf_deinit(&b);
    *pass = rc == 0 && api__iq_conds_eval(d, leaf);
    return rc;
}

/* SHOW MEASUREMENTS [ON db] [WITH MEASUREMENT =~ /re/ | = [db.][rp.]name] [WHERE tag (= | != |
 * =~ | !~) ... [AND ...]] [LIMIT n] [OFFSET n]: the devices and vigild's own three
 * measurements, in one sorted list, as influxd lists measurements (WITH MEASUREMENT's database
 * and policy ignored, as influxd ignores them). WHERE keeps the devices that pass it (each its
 * own measurement, its id its device tag's value, as SHOW TAG KEYS lists it), and the reserved
 * measurements as conds_reserved reads it; a condition on another tag key keeps none. */
int api__iq_show_measurements(api_request_t *r, qscan_t *s, qrun_t *run)
{
    const char *pattern = NULL;
    const char *unsupported = NULL;
    int has_re = 0, exact = 0;
    qtoken_t t, name;
    if (api__q_keyword_name(r, s, "ON")) /* ON db: any name (there is one store) */
        return -1;
    qscan_t at = *s;
    api__qs_next(s, &t);
    if (api__q_is(&t, "WITH")) {
        if (api__q_expect_kw(r, s, "MEASUREMENT"))
            return -1;
        api__qs_next(s, &t);
        if (!api__q_op(&t, "=~") && !api__q_op(&t, "=")) {
            api__q_parse_error(r, &t, "=, =~");
            return -1;
        }
        /* Either operator takes a regex or a name, as influxd's parseSource reads them:
         * "= /pump/" matches as "=~ /pump/", "=~ pump" as "= pump". */
        at = *s;
        api__qs_next(&at, &name);
        if (api__iq_regex_next(s) || name.form == QF_REGEX) {
            if (api__iq_regex(r, s, &pattern))
                return -1;
            has_re = 1;
        } else { /* [db.][rp.]name or db.rp./re/: influxd keeps the name or regex alone */
            const char *ignored = NULL; /* any database or policy, as influxd's answer */
            if (api__iq_from(r, s, &name, &ignored))
                return -1;
            has_re = name.form == QF_REGEX;
            exact = !has_re;
            pattern = has_re ? name.text : NULL;
        }
    } else {
        *s = at;
    }
    struct tv_where where;
    if (api__iq_tv_where_read(r, s, &where, &unsupported, 1))
        return -1;
    long long limit, offset;
    if (show_tail(r, s, &limit, &offset, 0))
        return -1;
    if (run == NULL)
        return 0;
    if (api__iq_where_time_error(run, s, &where, "SHOW MEASUREMENTS"))
        return 1;
    int nonstring = where.rhs;
    if (unsupported && !nonstring)
        return api__q_unsupported_error(run, unsupported);
    for (int i = 0; i < where.n && !nonstring; i++)
        nonstring = where.c[i].nonstring;
    if (nonstring)
        return api__q_sent_error(
            run, nonstring == 1 ? "right side of '=' must be " : "right side of '!=' must be ",
            "a tag value string");
    if (exact) {
        pattern = api__iq_exact_pattern(s, name.text);
        if (pattern == NULL)
            return api__q_result_error(run, "out of memory", NULL);
        has_re = 1;
    }
    struct dev_conds conds;
    int any = 1, rc;
    if (api__iq_conds_compile(run, &where, 1, &conds))
        return 1;
    if (where.n > 0 && (rc = conds_reserved(r, &conds, &any)) != 0) {
        api__iq_conds_free(&conds);
        return api__q_backend_error(run, "reading the devices: ", rc);
    }
    regex_t re;
    if (has_re && api__iq_regcomp(run, &re, pattern)) {
        api__iq_conds_free(&conds);
        return 1;
    }
    struct dev_walk w = {.re = &re,
                         .nre = has_re,
                         .conds = where.n > 0 ? &conds : NULL,
                         .offset = offset,
                         .limit = limit,
                         .own = any ? api__iqv_listed : NULL,
                         .row = api__iq_name_row};
    rc = api__iq_walk_result(r, run, &w, "measurements", "\"name\"");
    if (has_re)
        regfree(&re);
    api__iq_conds_free(&conds);
    return rc;
}

/* Answers the statement's unsupported (not NULL) in influxd 1.6.7's order: a database not
 * found, then a cardinality statement's GROUP BY dimension influxd refuses (s->card_group 2),
 * then the rest (a policy not found before vigild's own reasons). Returns 1 (run->err). */
static int show_unsupported(qrun_t *run, const qscan_t *s, const char *unsupported)
{
    if (s->card && s->card_group == 2 && api__iq_from_stops(unsupported) < 2)
        return api__iq_card_group_error(run, s);
    return api__q_unsupported_error(run, unsupported);
}

/* Reads [ON db] [FROM name] of SHOW FIELD KEYS / SHOW TAG KEYS / SHOW TAG VALUES into *from
 * (kind QT_EOF: no FROM), without rp_any's statement database (show_from below). FROM takes a
 * list of sources, as influxd's parser reads it; vigild answers one name (named once or more),
 * and sets *unsupported for several, or for a source's reason (rp_any: any database and policy,
 * api__iq_from_name_alone; else one that ends the run first, api__iq_from_stops; without FROM
 * the rp= parameter's policy, api__iq_other_policy). Returns 0, or -1 (parse error or out of
 * memory, answered). */
static int show_sources(api_request_t *r, qscan_t *s, qtoken_t *from, const char **unsupported,
                        int rp_any)
{
    if (s->card == 2) { /* SHOW MEASUREMENT CARDINALITY read them (influxql_card.c) */
        from->kind = QT_EOF;
        *unsupported = s->card_why;
        return 0;
    }
    if (api__q_keyword_name(r, s, "ON")) /* ON db: any name (there is one store) */
        return -1;
    qscan_t at = *s;
    api__qs_next(s, from);
    if (!api__q_is(from, "FROM")) { /* every measurement, of the query's rp= (but rp_any) */
        *s = at;
        from->kind = QT_EOF;
        return rp_any ? 0 : api__iq_other_policy(r, s, 0, "", unsupported);
    }
    const char *why = NULL;
    if (api__iq_from(r, s, from, &why))
        return -1;
    *unsupported = rp_any ? api__iq_from_name_alone(why, from) : why;
    for (;;) { /* FROM a1, a2, /re/: read on, each source as the first */
        qtoken_t t;
        at = *s;
        api__qs_next(&at, &t);
        if (!api__q_op(&t, ","))
            return 0;
        *s = at;
        why = NULL;
        if (api__iq_from(r, s, &t, &why))
            return -1;
        why = rp_any ? api__iq_from_name_alone(why, &t) : why;
        if (api__iq_from_stops(why) > api__iq_from_stops(*unsupported))
            *unsupported = why; /* a lookup that ends the run, a database's first */
        else if (*unsupported == NULL && (why != NULL || strcmp(t.text, from->text) != 0))
            *unsupported = why != NULL ? why : "several measurements in FROM";
    }
}

/* Reads [ON db] [FROM name] (show_sources); with rp_any (SHOW TAG KEYS, SHOW TAG VALUES) the
 * statement's database, looked up before its sources as influxd does (api__iq_tag_database),
 * replaces their reason. Returns 0, or -1 (parse error or out of memory, answered). */
static int show_from(api_request_t *r, qscan_t *s, qtoken_t *from, const char **unsupported,
                     int rp_any)
{
    if (show_sources(r, s, from, unsupported, rp_any))
        return -1;
    return rp_any && s->card != 2 ? api__iq_tag_database(r, s, unsupported) : 0;
}

/* Reads the rest of SHOW FIELD KEYS or SHOW TAG KEYS ([ON db] [FROM name] [WHERE ...], then
 * the end) into *from and *where (where NULL: no WHERE: SHOW FIELD KEYS, as influxd's grammar),
 * and LIMIT and OFFSET into *limit and *offset. Returns 0 when the statement is to be answered,
 * or 1 with *rc the statement's return: -1 (a parse error), 0 (the first pass: only read), 1
 * (unsupported: run->err). */
static int show_keys_read(api_request_t *r, qscan_t *s, qrun_t *run, qtoken_t *from, int *rc,
                          struct tv_where *where, long long *limit, long long *offset)
{
    const char *unsupported = NULL;
    *rc = -1;
    if (show_from(r, s, from, &unsupported, where != NULL && !s->card) ||
        (where && api__iq_tv_where_read(r, s, where, &unsupported, 1)) ||
        show_tail(r, s, limit, offset, where != NULL))
        return 1;
    if (run != NULL && where && api__iq_where_time_error(run, s, where, NULL)) {
        *rc = 1; /* influxd's error for time in a cardinality statement's WHERE */
        return 1;
    }
    *rc = run == NULL ? 0 : unsupported ? show_unsupported(run, s, unsupported) : 0;
    return run == NULL || unsupported != NULL;
}

/* The device_get callback of SHOW FIELD KEYS FROM name: its series. */
static int field_keys_one(void *arg, const api_device_t *d)
{
    struct dev_walk *w = arg;
    int listed = api__iq_field_keys_series(w, d);
    w->n += listed > 0;
    return listed < 0;
}

/* SHOW FIELD KEYS without FROM: every device's series and, in their sorted places, the
 * reserved measurements' (as influxd lists every measurement). Their series are written first,
 * apart (counted, their numbers of fields alone): vigil_predictions' reads api__iq_devices,
 * which is not to run inside the walk's. */
static int field_keys_all(api_request_t *r, qrun_t *run, struct dev_walk *w, int own_ok)
{
    sbuf_t own[IQV_KINDS];
    size_t own_n[IQV_KINDS] = {0};
    int rc = 0;
    for (int k = 0; k < IQV_KINDS; k++)
        sbuf_init(&own[k]);
    for (int i = 0; rc == 0 && api__iqv_listed[i]; i++) {
        enum iqv_kind k = api__iqv_kind(api__iqv_listed[i]);
        rc = api__iqv_field_keys_series(r, run, run->count ? NULL : &own[k], api__iqv_listed[i],
                                        w->key_limit, w->key_offset, &own_n[k]);
        if (rc == 0 && own[k].oom)
            rc = ERR_NOMEM;
    }
    if (rc == 0) {
        w->own = own_ok ? api__iqv_listed : NULL;
        w->own_text = own;
        w->own_n = own_n;
        rc = api__iq_walk_result(r, run, w, NULL, NULL);
    } else {
        rc = api__q_backend_error(run, "reading the devices: ", rc);
    }
    for (int k = 0; k < IQV_KINDS; k++)
        sbuf_deinit(&own[k]);
    return rc;
}

/* Answers SHOW FIELD KEYS from the devices that pass conds (NULL: all), and with own_ok the
 * reserved measurements (without FROM, or FROM one) and FROM a device; lim[0] and lim[1]: LIMIT
 * and OFFSET, of each series' fields. Returns as api__iq_show_field_keys. */
static int field_keys_answer(api_request_t *r, qrun_t *run, const qtoken_t *from,
                             const struct dev_conds *conds, int own_ok, const long long *lim)
{
    int rc;
    struct dev_walk w = {
        .row = api__iq_field_keys_series, .conds = conds, .key_limit = lim[0], .key_offset = lim[1],
        .partial = 1};
    if (api__iq_count_none(run)) /* as api__iq_walk_result */
        return 0;
    if (from->kind == QT_EOF)
        return field_keys_all(r, run, &w, own_ok);
    if (!own_ok) { /* FROM a name whose series do not pass WHERE */
        api__q_result_open(run);
        return 0;
    }
    if (api__iqv_kind(from->text) != IQV_NONE) /* vigild's own series: influxql_vigil.c */
        return api__iqv_field_keys(r, run, from->text, lim[0], lim[1]);
    size_t mark = run->b.len;
    api__q_result_open(run);
    w.b = &run->b;
    w.run = run;
    if (!api__iq_walk_counting(&w))
        sbuf_printf(&run->b, ",\"series\":[");
    if (r->srv->be.device_find != NULL) /* the channels alone: no wait for the store's reload */
        rc = r->srv->be.device_find(r->srv->be.ctx, from->text, field_keys_one, &w);
    else if (r->srv->be.device_get != NULL)
        rc = r->srv->be.device_get(r->srv->be.ctx, from->text, r->read_deadline_us, field_keys_one,
                                   &w);
    else
        rc = ERR_NOTFOUND;
    if (rc && rc != ERR_NOTFOUND) {
        run->b.len = mark;
        return api__q_backend_error(run, "reading the device: ", rc);
    }
    if (w.n == 0) {
        run->b.len = mark;
        api__q_result_open(run);
        return 0;
    }
    if (!api__iq_walk_counting(&w))
        sbuf_printf(&run->b, "]");
    return 0;
}

/* SHOW FIELD KEYS [ON db] [FROM name] [LIMIT n] [OFFSET n]: the device's channels, each a float
 * field; without FROM every device's; LIMIT and OFFSET keep that many of each series' fields.
 * SHOW FIELD KEY CARDINALITY (s->card, influxql_card.c) takes a WHERE, read as SHOW TAG KEYS
 * reads it: the devices that pass it, and the reserved measurements when one device does; FROM
 * a device, that device when it passes. */
int api__iq_show_field_keys(api_request_t *r, qscan_t *s, qrun_t *run)
{
    qtoken_t from;
    struct tv_where where = {.n = 0};
    struct dev_conds conds;
    int rc, any;
    long long lim[2]; /* LIMIT, OFFSET (a cardinality statement's: 0, kept in s) */
    /* no WHERE but in a cardinality statement: influxd's grammar */
    if (show_keys_read(r, s, run, &from, &rc, s->card ? &where : NULL, &lim[0], &lim[1]))
        return rc;
    if (where.n == 0)
        return field_keys_answer(r, run, &from, NULL, 1, lim);
    if (field_named(r, run, &where, "SHOW FIELD KEY CARDINALITY") ||
        api__iq_conds_compile(run, &where, 0, &conds))
        return 1;
    card_nonstring(s, &where, &conds);
    rc = conds_any(r, &conds, &any);
    if (rc == 0 && from.kind != QT_EOF && api__iqv_kind(from.text) == IQV_NONE) {
        int is = api__iq_is_device(r, from.text); /* FROM a device: it passes or not */
        if (is > 0)
            any = api__iq_conds_pass(&conds, from.text);
        rc = is < 0 ? is : 0;
    }
    rc = rc ? api__q_backend_error(run, "reading the devices: ", rc)
            : field_keys_answer(r, run, &from, &conds, any, lim);
    api__iq_conds_free(&conds);
    return rc;
}

/* SHOW TAG KEYS [ON db] [FROM name] [WHERE "device" ...] [LIMIT n] [OFFSET n]: the device tag,
 * for any name; without FROM one series per device and per reserved measurement, sorted. WHERE
 * is read series by series, as influxd reads it here: it keeps the devices that pass it, and
 * the other names (reserved, or unknown: Telegraf's "pump") when one device does; a condition
 * on another tag key is met by every series or by none (their value ''). LIMIT and OFFSET count
 * each series' keys, as influxd's: OFFSET 1 leaves none. */
int api__iq_show_tag_keys(api_request_t *r, qscan_t *s, qrun_t *run)
{
    qtoken_t from;
    struct tv_where where;
    struct dev_conds conds;
    int rc, any = 1;
    long long limit, offset;
    if (show_keys_read(r, s, run, &from, &rc, &where, &limit, &offset))
        return rc;
    if (field_named(r, run, &where,
                    s->card == 2 ? "SHOW MEASUREMENT CARDINALITY"
                    : s->card    ? "SHOW TAG KEY CARDINALITY"
                                 : "SHOW TAG KEYS"))
        return 1;
    if (offset > 0) { /* influxd's OFFSET skips each series' keys: the one, device */
        api__q_result_open(run);
        return 0;
    }
    if (api__iq_conds_compile(run, &where, 0, &conds))
        return 1;
    card_nonstring(s, &where, &conds);
    if (where.n > 0 && (rc = conds_any(r, &conds, &any)) != 0) {
        api__iq_conds_free(&conds);
        return api__q_backend_error(run, "reading the devices: ", rc);
    }
    struct dev_walk w = {.tag = r->srv->device_tag,
                         .own = any ? api__iqv_listed : NULL,
                         .conds = where.n > 0 ? &conds : NULL,
                         .row = api__iq_tag_keys_series};
    if (from.kind == QT_EOF) {
        rc = api__iq_walk_result(r, run, &w, NULL, NULL);
        api__iq_conds_free(&conds);
        return rc;
    }
    int match = any; /* FROM a device's own name: that device's series alone */
    int is = 0;
    if (where.n > 0 && api__iqv_kind(from.text) == IQV_NONE)
        is = api__iq_is_device(r, from.text);
    if (is > 0)
        match = api__iq_conds_pass(&conds, from.text);
    api__iq_conds_free(&conds);
    if (is < 0)
        return api__q_backend_error(run, "reading the device: ", is);
    api__q_result_open(run);
    if (!match)
        return 0;
    if (run->count) {
        api__iq_count_series(run, from.text, 1);
        return 0;
    }
    sbuf_printf(&run->b, ",\"series\":[{\"name\":");
    api__iq_str(&run->b, from.text);
    sbuf_printf(&run->b, ",\"columns\":[\"tagKey\"],\"values\":[[");
    api__iq_str(&run->b, r->srv->device_tag);
    sbuf_printf(&run->b, "]]}]");
    return 0;
}

/* Answers SHOW TAG VALUES FROM a device's own id that passes WHERE: one series of its one
 * value, none past OFFSET 0 (LIMIT keeps it), or counted. Returns 0. */
static int tv_one_value(api_request_t *r, qrun_t *run, const char *id, long long offset)
{
    if (api__iq_count_none(run)) /* its GROUP BY's error is the answer: nothing to count */
        return 0;
    api__q_result_open(run);
    if (offset > 0)
        return 0;
    if (run->count) {
        api__iq_count_series(run, id, 1);
        return 0;
    }
    sbuf_printf(&run->b, ",\"series\":[{\"name\":");
    api__iq_str(&run->b, id);
    sbuf_printf(&run->b, ",\"columns\":[\"key\",\"value\"],\"values\":[[");
    api__iq_str(&run->b, r->srv->device_tag);
    sbuf_append(&run->b, ",", 1);
    api__iq_str(&run->b, id);
    sbuf_printf(&run->b, "]]}]");
    return 0;
}

/* SHOW TAG VALUES [ON db] [FROM name] WITH KEY (= | != | =~ | !~ | IN) ... [WHERE "device" (= |
 * != | =~ | !~) ... [AND ...]] [LIMIT n] [OFFSET n]: when the key names the device tag, every
 * device (under the FROM name) that passes WHERE (FROM a device's id: tv_one_value), or
 * without FROM each device under its own name; for another key, none. */
int api__iq_show_tag_values(api_request_t *r, qscan_t *s, qrun_t *run)
{
    const char *unsupported = NULL;
    qtoken_t from;
    struct tv_cond key = {.pattern = ""};
    struct tv_where where;
    int in_match = -1;
    qtoken_t t;
    qscan_t at = *s;
    api__qs_next(&at, &t);
    if (!s->card && (api__q_is(&t, "EXACT") || api__q_is(&t, "CARDINALITY")))
        return api__iq_card_tag_values(r, s, run);
    if (show_from(r, s, &from, &unsupported, !s->card))
        return -1;
    if (api__q_expect_kw(r, s, "WITH"))
        return -1;
    if (api__q_expect_kw(r, s, "KEY"))
        return -1;
    if (api__iq_tv_key_read(r, s, r->srv->device_tag, &key, &in_match))
        return -1;
    if (api__iq_tv_where_read(r, s, &where, &unsupported, 0))
        return -1;
    long long limit, offset;
    if (show_tail(r, s, &limit, &offset, 0))
        return -1;
    if (run == NULL)
        return 0;
    if (unsupported)
        return show_unsupported(run, s, unsupported);
    regex_t key_re;
    struct dev_conds conds;
    int rc = 0, key_match = in_match;
    if (in_match < 0) { /* the key's condition, on the device tag's name */
        if (api__iq_regcomp(run, &key_re, key.pattern))
            return 1;
        key_match = (regexec(&key_re, r->srv->device_tag, 0, NULL, 0) == 0) != key.neg;
        regfree(&key_re);
    }
    /* FROM a device's own name: that device's value alone when it passes WHERE, as SHOW
     * SERIES and SHOW TAG KEYS read that name (its points "pump-7,device=pump-7", influxd's one
     * value, also for WHERE device = 'pump-7'). */
    int is = 0;
    if (key_match && from.kind != QT_EOF && api__iqv_kind(from.text) == IQV_NONE)
        is = api__iq_is_device(r, from.text);
    if (is < 0)
        return api__q_backend_error(run, "reading the device: ", is);
    if (!key_match) {
        api__q_result_open(run);
        return 0;
    }
    if (api__iq_conds_compile(run, &where, 0, &conds))
        return 1;
    card_nonstring(s, &where, &conds);
    if (is) {
        int pass = where.n == 0 || api__iq_conds_pass(&conds, from.text);
        api__iq_conds_free(&conds);
        if (pass)
            return tv_one_value(r, run, from.text, offset);
        api__q_result_open(run);
        return 0;
    }
    struct dev_walk w = {
        .tag = r->srv->device_tag, .offset = offset, .limit = limit, .conds = &conds};
    if (from.kind == QT_EOF && offset > 0) { /* OFFSET skips each series' values: its one */
        api__q_result_open(run);
        api__iq_conds_free(&conds);
        return 0;
    }
    if (from.kind == QT_EOF) { /* LIMIT counts each series' values too: it keeps the one */
        w.row = api__iq_tag_values_series;
        w.limit = 0;
        rc = api__iq_walk_result(r, run, &w, NULL, NULL);
    } else {
        w.row = api__iq_name_row;
        rc = api__iq_walk_result(r, run, &w, from.text, "\"key\",\"value\"");
    }
    api__iq_conds_free(&conds);
    return rc;
}

/* api/influxql_card.c: InfluxQL's cardinality statements other than SHOW SERIES' (that one is
 * influxql_series.c's): SHOW MEASUREMENT [EXACT] CARDINALITY [ON db] [FROM ...] [WHERE ...],
 * SHOW TAG KEY [EXACT] CARDINALITY [ON db] [FROM name] [WHERE ...], SHOW FIELD KEY [EXACT]
 * CARDINALITY [ON db] [FROM name] [WHERE ...] and SHOW TAG VALUES [EXACT] CARDINALITY [ON db]
 * [FROM name] WITH KEY ... [WHERE ...], each with [LIMIT n] [OFFSET n], answered in influxd
 * 1.6.7's forms (probed against it): SHOW MEASUREMENT CARDINALITY alone (ON db aside) is one
 * row {"columns":["cardinality estimation"],"values":[[n]]}, with EXACT, FROM or a clause one
 * row {"columns":["count"],...}; the other three always count per measurement,
 * {"name":m,"columns":["count"],"values":[[n]]} for each measurement with n > 0. LIMIT changes
 * nothing and OFFSET 1 or more leaves no row, as in influxd.
 *
 * Each counts what its list statement lists (SHOW TAG KEYS, SHOW FIELD KEYS, SHOW TAG VALUES of
 * influxql_show.c), so that the two never disagree: the list statement reads the rest of the
 * statement (s->card set: its LIMIT and OFFSET kept, not applied) and writes its answer into a
 * buffer of its own, which is read back with jansson and counted. SHOW MEASUREMENT CARDINALITY
 * counts SHOW TAG KEYS' measurements, not SHOW MEASUREMENTS' names: influxd reads its WHERE
 * series by series, as SHOW TAG KEYS' ("device != 'a1'" keeps the reserved measurements,
 * which hold other devices' series). Its FROM (which SHOW TAG KEYS reads as one name) is read
 * here, as SHOW SERIES reads it (api__iq_sources_read; s->card 2 tells SHOW TAG KEYS that ON
 * and FROM were read), and keeps the listed names it names or matches.
 *
 * Any thread: each statement reads the backend through the list statement and holds no lock. */
#include "influxql_show_where.h"

#include <jansson.h>
#include <regex.h>
#include <string.h>

enum card_kind { CARD_MEASUREMENTS, CARD_TAG_KEYS, CARD_FIELD_KEYS, CARD_TAG_VALUES };

/* One cardinality statement as read. */
struct card {
    enum card_kind kind;
    int estimate; /* SHOW MEASUREMENT CARDINALITY without FROM or WHERE, LIMIT and OFFSET 0
                   * (they are read later): influxd's estimate's column */
    int from;     /* SHOW MEASUREMENT CARDINALITY FROM src[0..nsrc) (re[i]: a regex's pattern) */
    const char *src[IQ_SOURCES_MAX];
    int re[IQ_SOURCES_MAX], nsrc;
};

/* Reads [EXACT] CARDINALITY (s: after the statement's first keywords), setting *exact. Returns
 * 0, or -1 (influxd's parse error answered). */
static int card_read(api_request_t *r, qscan_t *s, int *exact)
{
    qtoken_t t;
    api__qs_next(s, &t);
    *exact = api__q_is(&t, "EXACT");
    if (*exact)
        api__qs_next(s, &t);
    if (!api__q_is(&t, "CARDINALITY")) {
        api__q_parse_error(r, &t, *exact ? "CARDINALITY" : "EXACT, CARDINALITY");
        return -1;
    }
    return 0;
}

/* Whether name is one SHOW MEASUREMENT CARDINALITY's FROM names or matches (rx: its regexes,
 * compiled in the order of c's). */
static int card_from_has(const struct card *c, const regex_t *rx, const char *name)
{
    for (int i = 0, j = 0; i < c->nsrc; i++) {
        if (c->re[i] ? regexec(&rx[j++], name, 0, NULL, 0) == 0 : strcmp(c->src[i], name) == 0)
            return 1;
    }
    return 0;
}

/* How many of SHOW TAG KEYS' measurements (series: its answer's series array, one a
 * measurement) c counts. Returns the count, or -1 with run->err (a regex refused). */
static long long card_measurements(qrun_t *run, const struct card *c, json_t *series)
{
    regex_t rx[IQ_SOURCES_MAX];
    int nrx = 0;
    for (int i = 0; i < c->nsrc; i++) {
        if (c->re[i] && api__iq_regcomp(run, &rx[nrx], c->src[i])) {
            while (nrx > 0)
                regfree(&rx[--nrx]);
            return -1;
        }
        nrx += c->re[i];
    }
    long long n = 0;
    for (size_t i = 0; i < json_array_size(series); i++) {
        const char *name = json_string_value(json_object_get(json_array_get(series, i), "name"));
        n += name != NULL && (!c->from || card_from_has(c, rx, name));
    }
    while (nrx > 0)
        regfree(&rx[--nrx]);
    return n;
}

/* Writes the statement's result from its list statement's answer (list: that result as
 * api__q_result_open began it, statement_id 0, unclosed), counted as c says; limit and offset:
 * the statement's LIMIT and OFFSET. Returns 0, or 1 with run->err. */
static int card_write(qrun_t *run, const struct card *c, const sbuf_t *list, long long limit,
                      long long offset)
{
    static const char head[] = "{\"statement_id\":0";
    static const char series_key[] = ",\"series\":";
    json_t *series = NULL;
    if (list->len > sizeof head - 1 + sizeof series_key - 1 &&
        memcmp(list->data + sizeof head - 1, series_key, sizeof series_key - 1) == 0) {
        size_t at = sizeof head - 1 + sizeof series_key - 1;
        json_error_t err;
        series = json_loadb(list->data + at, list->len - at, 0, &err);
        if (series == NULL) /* the list's own JSON: out of memory, as it is written */
            return api__q_result_error(run, "counting the list's answer: ", err.text);
    }
    if (api__q_deadline_passed(run)) { /* reading 8 MiB back takes a while: the deadline again */
        json_decref(series);
        return api__q_timeout_error(run);
    }
    int rc = 0;
    size_t mark = run->b.len;
    api__q_result_open(run);
    if (offset > 0) { /* influxd's OFFSET skips the count rows: one, or one per measurement */
        json_decref(series);
        return 0;
    }
    if (c->kind == CARD_MEASUREMENTS) {
        long long n = card_measurements(run, c, series);
        int estimate = c->estimate && limit == 0; /* influxd: LIMIT 0 is no LIMIT */
        if (n < 0) {
            run->b.len = mark; /* the error alone, as the other statements' */
            rc = 1;
        } else if (estimate || n > 0) {
            sbuf_printf(&run->b, ",\"series\":[{\"columns\":[\"%s\"],\"values\":[[%lld]]}]",
                        estimate ? "cardinality estimation" : "count", n);
        }
        json_decref(series);
        return rc;
    }
    size_t written = 0;
    for (size_t i = 0; i < json_array_size(series); i++) {
        json_t *one = json_array_get(series, i);
        const char *name = json_string_value(json_object_get(one, "name"));
        size_t n = json_array_size(json_object_get(one, "values"));
        if (name == NULL || n == 0)
            continue;
        sbuf_printf(&run->b, "%s{\"name\":", written++ ? "," : ",\"series\":[");
        api__iq_str(&run->b, name);
        sbuf_printf(&run->b, ",\"columns\":[\"count\"],\"values\":[[%zu]]}", n);
        /* The list's bound is its own buffer's; the counts go into the query's answer, which
         * a statement repeated to fill q would otherwise grow without bound (API_IQ_TOO_BIG:
         * LIMIT changes nothing here, so the bound's error alone). */
        if (run->b.len > API_PAGE_BYTES) {
            run->b.len = mark;
            json_decref(series);
            return api__q_result_error(run, API_IQ_TOO_BIG, NULL);
        }
    }
    if (written > 0)
        sbuf_append(&run->b, "]", 1);
    json_decref(series);
    return 0;
}

/* Runs list (the statement's list statement, s: where it reads on) in s->card's mode into a
 * buffer of its own, then writes c's counts. Returns as the list statement. */
static int card_run(api_request_t *r, qscan_t *s, qrun_t *run, const struct card *c,
                    int (*list)(api_request_t *, qscan_t *, qrun_t *), int mode)
{
    s->card = mode;
    s->card_limit = s->card_offset = 0;
    if (run == NULL) {
        int rc = list(r, s, NULL);
        s->card = 0;
        return rc;
    }
    /* The list's answer apart, as the first statement's unchunked result ({"statement_id":0,
     * with no ',' before it): its bound (API_PAGE_BYTES) is then this statement's own. */
    sbuf_t answer = run->b;
    int chunked = run->chunked, id = run->id;
    sbuf_init(&run->b);
    run->chunked = 0;
    run->id = 0;
    int rc = list(r, s, run);
    sbuf_t got = run->b;
    run->b = answer;
    run->chunked = chunked;
    run->id = id;
    s->card = 0;
    if (rc == 0 && got.oom)
        rc = api__q_result_error(run, "out of memory", NULL);
    if (rc == 0)
        rc = card_write(run, c, &got, s->card_limit, s->card_offset);
    sbuf_deinit(&got);
    return rc;
}

/* SHOW MEASUREMENT [EXACT] CARDINALITY [ON db] [FROM name | /re/ | ...] [WHERE ...] [LIMIT n]
 * [OFFSET n]: the names SHOW MEASUREMENTS lists with that WHERE, among those FROM names. */
int api__iq_card_measurements(api_request_t *r, qscan_t *s, qrun_t *run)
{
    struct card c = {.kind = CARD_MEASUREMENTS};
    const char *unsupported = NULL;
    int exact;
    qtoken_t t;
    if (card_read(r, s, &exact) || api__q_keyword_name(r, s, "ON")) /* ON db: any name */
        return -1;
    qscan_t at = *s;
    api__qs_next(&at, &t);
    if (api__q_is(&t, "FROM")) {
        *s = at;
        c.from = 1;
        if (api__iq_sources_read(r, s, c.src, c.re, &c.nsrc, &unsupported))
            return -1;
        at = *s;
        api__qs_next(&at, &t);
    }
    c.estimate = !exact && !c.from && !api__q_is(&t, "WHERE");
    if (run != NULL && unsupported != NULL) /* the run stops here: nothing more is read */
        return api__q_result_error(run, "vigild does not support ", unsupported);
    return card_run(r, s, run, &c, api__iq_show_tag_keys, 2);
}

/* SHOW TAG KEY [EXACT] CARDINALITY ...: SHOW TAG KEYS' keys, counted per measurement. */
int api__iq_card_tag_keys(api_request_t *r, qscan_t *s, qrun_t *run)
{
    struct card c = {.kind = CARD_TAG_KEYS};
    int exact;
    if (card_read(r, s, &exact))
        return -1;
    return card_run(r, s, run, &c, api__iq_show_tag_keys, 1);
}

/* SHOW FIELD KEY [EXACT] CARDINALITY ...: SHOW FIELD KEYS' keys, counted per measurement. */
int api__iq_card_field_keys(api_request_t *r, qscan_t *s, qrun_t *run)
{
    struct card c = {.kind = CARD_FIELD_KEYS};
    int exact;
    if (card_read(r, s, &exact))
        return -1;
    return card_run(r, s, run, &c, api__iq_show_field_keys, 1);
}

/* SHOW TAG VALUES [EXACT] CARDINALITY ... WITH KEY ...: SHOW TAG VALUES' values, counted per
 * measurement. */
int api__iq_card_tag_values(api_request_t *r, qscan_t *s, qrun_t *run)
{
    struct card c = {.kind = CARD_TAG_VALUES};
    int exact;
    if (card_read(r, s, &exact))
        return -1;
    return card_run(r, s, run, &c, api__iq_show_tag_values, 1);
}

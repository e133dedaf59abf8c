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
 * statement (s->card set: its LIMIT and OFFSET kept, not applied) and walks as it lists (one
 * walk, one WHERE, one FROM), but with run->count set each series it would write goes to
 * api__iq_count_series instead, which writes its count row at once (or adds to SHOW MEASUREMENT
 * CARDINALITY's one number). No list is built: a count takes its answer's memory alone, and the
 * list's 8 MiB bound (API_PAGE_BYTES) bounds the count rows, not what is counted. The walk
 * checks the query's deadline per device, as the list's. SHOW MEASUREMENT CARDINALITY
 * counts SHOW TAG KEYS' measurements, not SHOW MEASUREMENTS' names: influxd reads its WHERE
 * series by series, as SHOW TAG KEYS' ("device != 'a1'" keeps the reserved measurements,
 * which hold other devices' series). Its FROM (which SHOW TAG KEYS reads as one name) is read
 * here, as SHOW SERIES reads it (api__iq_sources_read; s->card 2 tells SHOW TAG KEYS that ON
 * and FROM were read), and keeps the listed names it names or matches.
 *
 * Any thread: each statement reads the backend through the list statement and holds no lock. */
#include "influxql_show_where.h"

#include <regex.h>
#include <string.h>
#include <strings.h>

enum card_kind { CARD_MEASUREMENTS, CARD_TAG_KEYS, CARD_FIELD_KEYS, CARD_TAG_VALUES };

/* One cardinality statement as read. */
struct card {
    enum card_kind kind;
    int estimate; /* SHOW MEASUREMENT CARDINALITY without FROM, WHERE or GROUP BY, LIMIT and
                   * OFFSET 0 (measurement_estimate): influxd's estimate's column */
    int from;     /* SHOW MEASUREMENT CARDINALITY FROM src[0..nsrc) (re[i]: a regex's pattern) */
    const char *src[IQ_SOURCES_MAX];
    int re[IQ_SOURCES_MAX], nsrc;
    const char *time; /* the statement in influxd's error for time in WHERE (NULL: none) */
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

/* A cardinality statement's count (run->count) while its list statement walks. */
struct api_iq_count {
    const struct card *c;
    regex_t rx[IQ_SOURCES_MAX]; /* c's FROM regexes, compiled in c's order */
    int nrx;
    int bad;          /* the FROM regex (index into c->src) that did not compile, or -1 */
    long long total;  /* CARD_MEASUREMENTS: the measurements counted */
    size_t written;   /* the others: the count rows written after the list's result_open */
    const qscan_t *s; /* the statement's scan: its card_group, once read, means no count */
};

int api__iq_count_none(const qrun_t *run)
{
    return run != NULL && run->count != NULL && run->count->s->card_group != 0;
}

void api__iq_count_series(qrun_t *run, const char *name, size_t n)
{
    struct api_iq_count *k = run->count;
    if (k->c->kind == CARD_MEASUREMENTS) {
        /* A FROM regex that did not compile (k->bad) leaves k->rx short of c's regexes: the
         * statement's answer is then its error, or nothing past OFFSET, never this count. */
        if (k->bad < 0)
            k->total += !k->c->from || card_from_has(k->c, k->rx, name);
        return;
    }
    if (k->written++)
        api__q_series_next(run, &run->b, 1); /* chunked: a document per count, as influxd's */
    else
        sbuf_printf(&run->b, ",\"series\":[");
    sbuf_printf(&run->b, "{\"name\":");
    api__iq_str(&run->b, name);
    sbuf_printf(&run->b, ",\"columns\":[\"count\"],\"values\":[[%zu]]}", n);
}

/* Compiles k->c's FROM regexes into k->rx, quietly: one that does not compile (k->bad) is the
 * statement's error only once the list statement has run, as the list's own errors come first. */
static void count_regcomp(struct api_iq_count *k)
{
    k->bad = -1;
    for (int i = 0; i < k->c->nsrc && k->bad < 0; i++) {
        if (k->c->re[i] && api__iq_re_compile(&k->rx[k->nrx], k->c->src[i]) != 0)
            k->bad = i;
        else
            k->nrx += k->c->re[i];
    }
}

/* Ends the statement's result (begun at mark by its list statement, which walked without an
 * error) from k: the count rows closed, or SHOW MEASUREMENT CARDINALITY's one row; limit and
 * offset: the statement's LIMIT and OFFSET. Returns 0, or 1 with run->err. */
static int card_close(qrun_t *run, const struct api_iq_count *k, size_t mark, long long limit,
                      long long offset)
{
    const struct card *c = k->c;
    if (offset > 0) { /* influxd's OFFSET skips the count rows: one, or one per measurement */
        run->b.len = mark;
        api__q_result_open(run);
        return 0;
    }
    if (k->bad >= 0) { /* it fails again, now answering its error (OFFSET first, as before) */
        regex_t rx;
        run->b.len = mark;
        if (api__iq_regcomp(run, &rx, c->src[k->bad]) == 0)
            regfree(&rx);
        return 1;
    }
    if (c->kind == CARD_MEASUREMENTS) {
        int estimate = c->estimate && limit == 0; /* influxd: LIMIT 0 is no LIMIT */
        if (estimate || k->total > 0)
            sbuf_printf(&run->b, ",\"series\":[{\"columns\":[\"%s\"],\"values\":[[%lld]]}]",
                        estimate ? "cardinality estimation" : "count", k->total);
        return 0;
    }
    /* The counts go into the query's answer, which a statement repeated to fill q would
     * otherwise grow without bound (API_IQ_TOO_BIG: LIMIT changes nothing here, so the bound's
     * error alone). The walks stop there; FROM one name adds a single row. */
    if (run->b.len > API_PAGE_BYTES) {
        run->b.len = mark;
        return api__q_result_error(run, API_IQ_TOO_BIG, NULL);
    }
    if (k->written > 0)
        sbuf_append(&run->b, "]", 1);
    return 0;
}

/* Runs list (the statement's list statement, s: where it reads on) in s->card's mode, its
 * series counted into run->b as it walks (run->count), then ends c's result. With a GROUP BY
 * (s->card_group, which list reads) the list answers its own errors and walks nothing
 * (api__iq_count_none): the answer is the GROUP BY's error. Returns as the list statement. */
static int card_run(api_request_t *r, qscan_t *s, qrun_t *run, const struct card *c,
                    int (*list)(api_request_t *, qscan_t *, qrun_t *), int mode)
{
    s->card = mode;
    s->card_limit = s->card_offset = 0;
    s->card_time = c->time;
    s->card_group = 0;
    if (run == NULL) {
        int rc = list(r, s, NULL);
        s->card = 0;
        s->card_time = NULL;
        return rc;
    }
    struct api_iq_count k = {.c = c, .s = s};
    count_regcomp(&k);
    size_t mark = run->b.len;
    run->count = &k;
    int rc = list(r, s, run);
    run->count = NULL;
    s->card = 0;
    s->card_time = NULL;
    if (rc == 0 && s->card_group) { /* its errors first, as influxd's rewrite's; no walk */
        run->b.len = mark;
        rc = api__iq_card_group_error(run, s);
    } else if (rc == 0) {
        rc = card_close(run, &k, mark, s->card_limit, s->card_offset);
    }
    while (k.nrx > 0)
        regfree(&k.rx[--k.nrx]);
    return rc;
}

/* Keeps err as s's GROUP BY error unless a dimension before had one: influxd 1.6.7 judges the
 * dimensions in their order. */
static void group_error(qscan_t *s, const char *err)
{
    if (err != NULL && s->card_group != 2) {
        s->card_group = 2;
        s->card_group_err = err;
    }
}

int api__iq_card_group_by(api_request_t *r, qscan_t *s)
{
    qscan_t at = *s;
    qtoken_t t;
    api__qs_next(&at, &t);
    if (!api__q_is(&t, "GROUP"))
        return 0;
    *s = at;
    if (api__q_expect_kw(r, s, "BY"))
        return -1;
    s->card_group = 1;
    s->card_group_err = NULL;
    int timed = 0; /* a time() dimension of an interval other than 0 was read */
    do {
        const char *re;
        if (api__iq_regex_next(s)) { /* GROUP BY /re/: influxd reads it and groups by no tag */
            if (api__iq_regex(r, s, &re))
                return -1;
        } else {
            at = *s;
            api__qs_next(&at, &t);
            if (api__q_bad_operand(&t)) /* GROUP BY at the end, or "GROUP BY device, <" */
                return api__q_operand_error(r, &at, &t, 0);
            if (api__q_unbound(r, &t))
                return -1;
            if (t.kind == QT_STRING || t.kind == QT_NUMBER || api__q_is(&t, "TRUE") ||
                api__q_is(&t, "FALSE"))
                group_error(s, "only time and tag dimensions allowed");
            int call = t.kind == QT_IDENT && *at.p == '(';
            int is_time = t.kind == QT_IDENT && strcasecmp(t.text, "time") == 0;
            const char *err = NULL;
            int nonzero = 0;
            qscan_t end = at; /* time(...) read as SELECT reads it, for influxd's errors */
            if (is_time && call && api__iq_time_dimension_error(r, &end, timed, &err, &nonzero))
                return -1;
            if (api__iq_skim_condition(r, s)) /* the dimension, an expression to influxd */
                return -1;
            if (is_time && !call)
                group_error(s, "time() is a function and expects at least one argument");
            else if (call && !is_time)
                group_error(s, "only time() calls allowed in dimensions");
            else if (is_time && end.p == s->p) /* time() alone */
                group_error(s, err);
            else if (is_time) /* time(1h) + 1: an expression, no call */
                group_error(s, "only time and tag dimensions allowed");
            timed |= is_time && call && nonzero;
        }
        at = *s;
        api__qs_next(&at, &t);
        if (api__q_op(&t, ","))
            *s = at;
    } while (api__q_op(&t, ","));
    return 0;
}

int api__iq_card_group_error(qrun_t *run, const qscan_t *s)
{
    if (s->card_group == 0)
        return 0;
    if (s->card_group == 2) /* influxd's own error: the run stops */
        return api__q_result_error(run, s->card_group_err, NULL);
    return api__q_unsupported_error(run, "GROUP BY in the cardinality statements");
}

/* Whether SHOW MEASUREMENT CARDINALITY, without FROM, read on at s (t: its next token) is
 * influxd 1.6.7's estimate: no WHERE, GROUP BY, or LIMIT or OFFSET other than 0 (its rewrite's
 * test); a malformed count is read later, its parse error answered then. */
static int measurement_estimate(qscan_t s, qtoken_t t)
{
    while (api__q_is(&t, "LIMIT") || api__q_is(&t, "OFFSET")) {
        api__qs_next(&s, &t);
        if (t.kind != QT_NUMBER || strspn(t.text, "0") != t.len)
            return 0;
        api__qs_next(&s, &t);
    }
    return !api__q_is(&t, "WHERE") && !api__q_is(&t, "GROUP");
}

/* SHOW MEASUREMENT [EXACT] CARDINALITY [ON db] [FROM name | /re/ | ...] [WHERE ...] [LIMIT n]
 * [OFFSET n]: the names SHOW MEASUREMENTS lists with that WHERE, among those FROM names. */
int api__iq_card_measurements(api_request_t *r, qscan_t *s, qrun_t *run)
{
    struct card c = {.kind = CARD_MEASUREMENTS, .time = "SHOW MEASUREMENT EXACT CARDINALITY"};
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
    c.estimate = !exact && !c.from && measurement_estimate(at, t);
    /* without FROM every measurement, of the query's rp= policy; the estimate reads none */
    if (!c.from && !c.estimate && api__iq_other_policy(r, s, 0, "", &unsupported))
        return -1;
    s->card_why = unsupported; /* answered after GROUP BY is read: influxd's order */
    return card_run(r, s, run, &c, api__iq_show_tag_keys, 2);
}

/* SHOW TAG KEY [EXACT] CARDINALITY ...: SHOW TAG KEYS' keys, counted per measurement. */
int api__iq_card_tag_keys(api_request_t *r, qscan_t *s, qrun_t *run)
{
    struct card c = {.kind = CARD_TAG_KEYS, .time = "SHOW TAG KEY EXACT CARDINALITY"};
    int exact;
    if (card_read(r, s, &exact))
        return -1;
    return card_run(r, s, run, &c, api__iq_show_tag_keys, 1);
}

/* SHOW FIELD KEY [EXACT] CARDINALITY ...: SHOW FIELD KEYS' keys, counted per measurement. */
int api__iq_card_field_keys(api_request_t *r, qscan_t *s, qrun_t *run)
{
    struct card c = {.kind = CARD_FIELD_KEYS, .time = "SHOW FIELD KEY CARDINALITY"};
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

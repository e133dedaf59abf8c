/* tests/test_daemon_api.c: unit tests of the API's answer to the store's ERR_AGAIN (a read that
 * met the store reloading its maps after a failed write): api__backend_error's 503 with
 * Retry-After, a /query statement's api__q_backend_error, and the InfluxQL checks of whether a
 * FROM name is a device (on a fake backend); and of the lookups that need no counters and so do
 * not wait for the reload (the readings routes' unknown channel, demo_limits, InfluxQL's FROM a
 * device), on a real store through daemon/backend.c. Moved out of tests/test_daemon.c to keep it
 * under 1,000 lines. And the parsing of http.query_timeout (/query's deadline), here for the
 * same reason; the deadline of the in-memory anomalies listing (no store); /health's pass and
 * fail answers, and the out-of-memory answer's form by route. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_int.h"
#include "backend.h"
#include "batch.h"
#include "config.h"
#include "demo.h"
#include "err.h"
#include "influxql.h"
#include "pipeline.h"
#include "pipeline_int.h"
#include "pipeline_events_int.h"
#include "storage.h"
#include "vtime.h"

#include "daemon_fx.h"
#include "store_hooks.h"

/* ERR_AGAIN (the store reloads after a failed write) is answered 503 with Retry-After: 1 and a
 * JSON message saying so and naming the operation; a /query statement that meets it marks the
 * run (run_query then answers the same 503 rather than a statement error in a 200). */
static void test_backend_error_again(void **state)
{
    (void)state;
    assert_non_null(strstr(err_str(ERR_AGAIN), "reloading"));
    api_request_t r;
    memset(&r, 0, sizeof r);
    api__backend_error(&r, ERR_AGAIN, "querying readings");
    assert_int_equal(r.status, 503);
    assert_int_equal(r.retry_after, 1);
    assert_non_null(r.resp);
    char *body = strndup(r.resp, r.resp_len);
    assert_non_null(body);
    assert_string_equal(body, "{\"error\":\"querying readings: store busy reloading after a "
                              "failed write, retry later\"}\n");
    free(body);
    free(r.resp);
    /* ERR_UNPUBLISHED (the writer stalled between a COMMIT and publishing it) is the same 503,
     * saying that instead: no write failed and nothing reloads (task health2; it was
     * ERR_AGAIN's text before). */
    memset(&r, 0, sizeof r);
    api__backend_error(&r, ERR_UNPUBLISHED, "querying readings");
    assert_int_equal(r.status, 503);
    assert_int_equal(r.retry_after, 1);
    body = strndup(r.resp, r.resp_len);
    assert_non_null(body);
    assert_string_equal(body, "{\"error\":\"querying readings: store busy publishing its last "
                              "write, retry later\"}\n");
    free(body);
    free(r.resp);
    /* ERR_RESOURCE (out of descriptors or memory, session 41) is a 503 with Retry-After: 1
     * too, not the default 500. */
    memset(&r, 0, sizeof r);
    api__backend_error(&r, ERR_RESOURCE, "taking a snapshot");
    assert_int_equal(r.status, 503);
    assert_int_equal(r.retry_after, 1);
    body = strndup(r.resp, r.resp_len);
    assert_non_null(body);
    assert_string_equal(body, "{\"error\":\"taking a snapshot: out of file descriptors or "
                              "memory, retry later\"}\n");
    free(body);
    free(r.resp);
    /* Other errors keep their answers: ERR_IO is still a 500 without Retry-After. */
    memset(&r, 0, sizeof r);
    api__backend_error(&r, ERR_IO, "querying readings");
    assert_int_equal(r.status, 500);
    assert_int_equal(r.retry_after, 0);
    free(r.resp);

    qrun_t run;
    memset(&run, 0, sizeof run);
    assert_int_equal(api__q_backend_error(&run, "reading the device: ", ERR_AGAIN), 1);
    assert_int_equal(run.again, 1);
    assert_non_null(run.err);
    assert_non_null(strstr(run.err, "reading the device: store busy reloading"));
    assert_int_equal(api__q_backend_error(&run, "reading the device: ", ERR_UNPUBLISHED), 1);
    assert_int_equal(run.again, 1);
    assert_non_null(strstr(run.err, "reading the device: store busy publishing its last write"));
    assert_int_equal(api__q_backend_error(&run, "reading the device: ", ERR_IO), 1);
    assert_int_equal(run.again, 0);
    free(run.err);
    /* Past the query's deadline, either wait's end is the query's timeout, not a 503. */
    for (int rc = ERR_UNPUBLISHED, i = 0; i < 2; i++, rc = ERR_AGAIN) {
        memset(&run, 0, sizeof run);
        run.deadline_us = 1; /* long past */
        assert_int_equal(api__q_backend_error(&run, "reading the device: ", rc), 1);
        assert_int_equal(run.again, 0);
        assert_string_equal(run.err, API_IQ_TIMEOUT);
        free(run.err);
    }
}

/* A backend whose storage check fails, saying why, as /healthz's 503 names it. */
static size_t sick_health(void *ctx, api_check_t *checks)
{
    (void)ctx;
    checks[0].name = "storage";
    checks[0].pass = 0;
    snprintf(checks[0].message, sizeof checks[0].message, "the storage writer is stalled");
    return 1;
}

/* The answer's body, NUL-terminated (caller owns; free). */
static char *answer_of(const api_request_t *r)
{
    assert_non_null(r->resp);
    char *body = strndup(r->resp, r->resp_len);
    assert_non_null(body);
    return body;
}

/* Asks srv's /health; asserts the status and that the body begins with want. */
static void check_health(struct api_server *srv, unsigned status, const char *want)
{
    api_request_t r;
    memset(&r, 0, sizeof r);
    r.srv = srv;
    r.route = ROUTE_HEALTH;
    api__h_health(&r);
    assert_int_equal(r.status, status);
    char *body = answer_of(&r);
    if (strncmp(body, want, strlen(want)) != 0)
        fail_msg("want %s..., got %s", want, body);
    free(body);
    free(r.resp);
}

/* GET /health (InfluxDB 2's health check): "pass" with 200 and InfluxDB 2's fields in its
 * order while the backend is healthy (no health test counts as healthy), "fail" with 503, the
 * backend's reason and one entry per check when it is not (the daemon's real failures:
 * tests/integration/test_health.py). */
static void test_health(void **state)
{
    (void)state;
    static struct api_server srv; /* zero: no health test */
    check_health(&srv, 200,
                 "{\"name\":\"influxdb\",\"message\":\"ready for queries and writes\","
                 "\"status\":\"pass\",\"checks\":[],\"version\":\"" VIGIL_VERSION
                 "\",\"commit\":\"");
    srv.be.health = sick_health;
    check_health(
        &srv, 503,
        "{\"name\":\"influxdb\",\"message\":\"unhealthy: storage: the storage writer is "
        "stalled\",\"status\":\"fail\",\"checks\":[{\"name\":\"storage\",\"status\":"
        "\"fail\",\"message\":\"the storage writer is stalled\"}],\"version\":\"" VIGIL_VERSION
        "\",\"commit\":\"");
    srv.be.health = NULL;
}

/* A fake retrain backend: refused (fake_rc) after ending other members' episodes. */
static int fake_rc, fake_lost;
static int fake_retrain(void *ctx, const char *id, int force, struct api_retrain *res)
{
    (void)ctx, (void)id, (void)force;
    memset(res, 0, sizeof *res);
    res->ended_others = strdup("[{\"id\":3,\"device\":\"ga\",\"ended_by\":\"operator\"}]");
    assert_non_null(res->ended_others);
    res->ended_lost = fake_lost;
    return fake_rc;
}

/* A forced retrain refused after it ended other members' episodes (session 67: the asked
 * device's detector reset during it, ERR_RANGE; out of memory, ERR_NOMEM) keeps them in its
 * error answer, "ended_members" (and "ended_members_lost" when the list is not whole), the
 * message saying so: before, fail() answered the error alone and the list was dropped. */
static void test_retrain_error_keeps_ended(void **state)
{
    (void)state;
    static struct api_server srv;
    srv.be.pipe_retrain = fake_retrain;
    static char gc[] = "gc";
    static const struct {
        int rc, lost;
        unsigned status;
        const char *begins;
    } rows[] = {
        {ERR_RANGE, 0, 409,
         "retrain: device 'gc' has no model yet (still learning); this "
         "retrain had already ended the anomaly episodes"},
        {ERR_NOMEM, 1, 500, "retrain: "},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        fake_rc = rows[i].rc;
        fake_lost = rows[i].lost;
        api_request_t r;
        memset(&r, 0, sizeof r);
        r.srv = &srv;
        r.route = ROUTE_RETRAIN;
        r.seg[0] = gc;
        api__h_retrain(&r);
        assert_int_equal(r.status, rows[i].status);
        char *body = answer_of(&r);
        json_error_t jerr;
        json_t *v = json_loads(body, 0, &jerr);
        if (v == NULL)
            fail_msg("not JSON: %s", body);
        const char *msg = json_string_value(json_object_get(v, "error"));
        assert_non_null(msg);
        if (strncmp(msg, rows[i].begins, strlen(rows[i].begins)) != 0)
            fail_msg("want %s..., got %s", rows[i].begins, body);
        assert_non_null(strstr(msg, "listed in ended_members"));
        json_t *ended = json_object_get(v, "ended_members");
        assert_true(json_is_array(ended));
        assert_int_equal(json_array_size(ended), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(ended, 0), "device")),
                            "ga");
        assert_int_equal(json_is_true(json_object_get(v, "ended_members_lost")), rows[i].lost);
        assert_int_equal(strstr(msg, "not whole") != NULL, rows[i].lost);
        json_decref(v);
        free(body);
        free(r.resp);
    }
}

/* When memory runs out building an answer (here: no JSON value to send), the 500 is in the
 * route's form, with the error header its clients read: InfluxDB 2's on its routes (its code in
 * X-Platform-Error-Code), {"error"} elsewhere (the message in X-Influxdb-Error on InfluxDB 1's
 * /write and /query, no header on vigil's own routes). */
static void test_out_of_memory_form(void **state)
{
    (void)state;
    static const struct {
        enum api_route route;
        const char *body, *code, *influx_err;
    } rows[] = {
        {ROUTE_WRITE_V2, "{\"code\":\"internal error\",\"message\":\"out of memory\"}\n",
         "internal error", ""},
        {ROUTE_HEALTH, "{\"code\":\"internal error\",\"message\":\"out of memory\"}\n",
         "internal error", ""},
        {ROUTE_WRITE, "{\"error\":\"out of memory\"}\n", NULL, "out of memory"},
        {ROUTE_QUERY, "{\"error\":\"out of memory\"}\n", NULL, "out of memory"},
        {ROUTE_READINGS, "{\"error\":\"out of memory\"}\n", NULL, ""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        api_request_t r;
        memset(&r, 0, sizeof r);
        r.route = rows[i].route;
        api__json(&r, 200, NULL);
        assert_int_equal(r.status, 500);
        char *body = answer_of(&r);
        assert_string_equal(body, rows[i].body);
        if (rows[i].code)
            assert_string_equal(r.err_code, rows[i].code);
        else
            assert_null(r.err_code);
        assert_string_equal(r.influx_err, rows[i].influx_err);
        free(body);
        free(r.resp);
    }
}

/* api__error's headers. InfluxDB 2's routes: X-Platform-Error-Code is the body's code, also
 * for a path of its API vigild lacks. InfluxDB 1's /write and /query: X-Influxdb-Error is the
 * message as influxd 1.x sends it, cut at 1,024 bytes, control bytes as spaces (influxd's
 * server writes a newline as a space), none on a 401 (which carries the challenge) nor a 405
 * (influxd's router sends none). A later answer that is not an error clears them. */
static void test_error_headers(void **state)
{
    (void)state;
    api_request_t r;
    memset(&r, 0, sizeof r);
    r.route = ROUTE_WRITE_V2;
    api__error(&r, 413, "too big");
    assert_string_equal(r.err_code, "request too large");
    assert_string_equal(r.influx_err, "");
    api__json(&r, 200, json_object());
    assert_null(r.err_code);
    free(r.resp);
    /* A full write queue, vigild's back-pressure: InfluxDB 2's "unavailable" 503 with
     * Retry-After, which its clients retry (never a 429: request.c v2_code). */
    memset(&r, 0, sizeof r);
    r.route = ROUTE_WRITE_V2;
    api__backend_error(&r, ERR_BUSY, "storing points");
    assert_int_equal(r.status, 503);
    assert_int_equal(r.retry_after, 1);
    assert_string_equal(r.err_code, "unavailable");
    char *body = answer_of(&r);
    assert_string_equal(body, "{\"code\":\"unavailable\",\"message\":\"storing points: write "
                              "queue is full, retry later\"}\n");
    free(body);
    free(r.resp);
    memset(&r, 0, sizeof r);
    r.route = ROUTE_NOT_FOUND;
    r.url = "/api/v2/buckets";
    api__error(&r, 404, "no such endpoint");
    assert_string_equal(r.err_code, "not found");
    free(r.resp);

    memset(&r, 0, sizeof r);
    r.route = ROUTE_WRITE;
    api__error(&r, 400, "partial write:\nline 2:\tbad\x01\x7f %s", "end");
    assert_null(r.err_code);
    assert_string_equal(r.influx_err, "partial write: line 2: bad   end");
    char long_msg[1500];
    memset(long_msg, 'x', sizeof long_msg - 1);
    long_msg[sizeof long_msg - 1] = '\0';
    api__error(&r, 400, "%s", long_msg);
    assert_int_equal(strlen(r.influx_err), 1024);
    assert_int_equal(strspn(r.influx_err, "x"), 1024);
    api__error(&r, 401, "unauthorized access");
    assert_string_equal(r.influx_err, "");
    api__error(&r, 405, "method GET is not allowed here"); /* influxd's router: none */
    assert_string_equal(r.influx_err, "");
    free(r.resp);

    memset(&r, 0, sizeof r);
    r.route = ROUTE_READINGS; /* vigil's own: its JSON body only */
    api__error(&r, 400, "bad");
    assert_null(r.err_code);
    assert_string_equal(r.influx_err, "");
    free(r.resp);
}

/* A backend of one device "pump-7" (channel temp, one reading) whose first device_get meets
 * the store's reload (ERR_AGAIN), as when the reload ends between two reads of a statement. */
static int iq_gets;

static int iq_device(const char *id, api_device_cb cb, void *arg)
{
    static const char *const chans[] = {"temp"};
    api_device_t d = {.id = id,
                      .attrs_json = "{}",
                      .first_ts_ms = 1000,
                      .last_ts_ms = 1000,
                      .last_seen_ms = -1,
                      .points = 1,
                      .nchannels = 1,
                      .channels = chans};
    return cb(arg, &d);
}

static int iq_device_get(void *ctx, const char *id, int64_t deadline_us, api_device_cb cb,
                         void *arg)
{
    (void)ctx, (void)deadline_us;
    if (iq_gets++ == 0)
        return ERR_AGAIN;
    if (strcmp(id, "pump-7") != 0)
        return ERR_NOTFOUND;
    iq_device(id, cb, arg);
    return 0;
}

static int iq_device_list(void *ctx, const char *after, size_t limit, int64_t deadline_us,
                          api_device_cb cb, void *arg)
{
    (void)ctx, (void)after, (void)limit, (void)deadline_us;
    iq_device("pump-7", cb, arg);
    return 0;
}

static int iq_query(void *ctx, const api_query_t *q, api_point_cb cb, void *arg)
{
    (void)ctx;
    double v = 70.5;
    if (strcmp(q->device, "pump-7") == 0 && q->from_ms <= 1000 && 1000 < q->to_ms)
        cb(arg, 1000, q->nchannels, q->channels, &v);
    return 0;
}

/* Runs statement text (its keywords first, skip bytes of them) with fn on the iq_ backend;
 * returns the run, whose err the caller frees. */
static const api_backend_t *iq_be; /* when set, iq_run's backend instead of the iq_ one */
static char iq_out[512];           /* the last run's result text (cut to fit) */

static qrun_t iq_run(const char *text, size_t skip, int (*fn)(api_request_t *, qscan_t *, qrun_t *))
{
    struct api_server srv;
    memset(&srv, 0, sizeof srv);
    srv.device_tag = (char *)"device";
    srv.be.device_get = iq_device_get;
    srv.be.device_list = iq_device_list;
    srv.be.query = iq_query;
    if (iq_be != NULL)
        srv.be = *iq_be;
    api_request_t r;
    memset(&r, 0, sizeof r);
    r.srv = &srv;
    r.role = -1;
    r.max_query_limit = 1000;
    r.max_scan_points = 100000;
    qmem_t m;
    memset(&m, 0, sizeof m);
    m.q = text;
    m.text = calloc(2, strlen(text) + 1);
    assert_non_null(m.text);
    qscan_t s;
    memset(&s, 0, sizeof s);
    s.mem = &m;
    s.w = m.text;
    s.p = text;
    qtoken_t t;
    while (s.p < text + skip)
        api__qs_next(&s, &t); /* the statement's keywords, as q_statements reads them */
    qrun_t run;
    memset(&run, 0, sizeof run);
    run.now_ms = 2000;
    sbuf_init(&run.b);
    iq_gets = 0;
    int rc = fn(&r, &s, &run);
    assert_int_equal(r.status, 0); /* no parse error */
    assert_int_equal(rc, run.err != NULL);
    snprintf(iq_out, sizeof iq_out, "%s", run.b.len > 0 ? run.b.data : "");
    sbuf_deinit(&run.b);
    free(m.text);
    while (m.blocks != NULL) {
        struct qblock {
            struct qblock *next;
        } *b = (struct qblock *)m.blocks;
        m.blocks = (void *)b->next;
        free(b);
    }
    return run;
}

/* SELECT ... FROM <a device's id> WHERE device != '', SHOW TAG VALUES FROM <id> ... WHERE
 * "device" ... and SHOW TAG KEYS FROM <id> WHERE "device" ...: whether the FROM name is a device's
 * id decides the answer (influxd: no series). Before review, from_is_device and tv_from_device took
 * the lookup's ERR_AGAIN (the store reloading) for "no device", and once the reload had ended the
 * statement answered the device's points (values) as the FROM name's series, in a 200. Now the
 * statement meets ERR_AGAIN: run.again (run_query answers 503 with Retry-After). */
static void test_iq_from_device_again(void **state)
{
    (void)state;
    qrun_t run = iq_run("SELECT temp FROM \"pump-7\" WHERE device != ''", 6, api__iq_select);
    assert_non_null(run.err);
    assert_int_equal(run.again, 1);
    assert_non_null(strstr(run.err, "store busy reloading"));
    free(run.err);
    run = iq_run("SHOW TAG VALUES FROM \"pump-7\" WITH KEY = \"device\" WHERE \"device\" != ''", 15,
                 api__iq_show_tag_values);
    assert_non_null(run.err);
    assert_int_equal(run.again, 1);
    free(run.err);
    /* SHOW TAG KEYS ... WHERE (iqwhere's caller of tv_from_device, met at the merge) */
    run = iq_run("SHOW TAG KEYS FROM \"pump-7\" WHERE \"device\" != ''", 13, api__iq_show_tag_keys);
    assert_non_null(run.err);
    assert_int_equal(run.again, 1);
    free(run.err);
}

/* ---- lookups during the store's reload, on a real store ---- */

typedef struct held {
    char dir[40];
    store_t *s;
    backend_t b;
    api_backend_t be;
    int done; /* the refused batch's callback: 1 stored, 2 refused */
} held_t;

static void on_stored(void *arg, int status)
{
    __atomic_store_n((int *)arg, status == 0 ? 1 : 2, __ATOMIC_RELEASE);
}

static void add_point(batch_t *b, const char *dev, const char *chan, int64_t ts)
{
    assert_int_equal(batch_point_begin(b, dev, strlen(dev), ts, 0), 0);
    assert_int_equal(batch_field_add(b, chan, strlen(chan), 1.0), 0);
    assert_int_equal(batch_point_commit(b), 1);
}

/* A store with devices "a" (channel x) and "pump-1" whose writer has failed a batch (a trigger
 * refuses device "bad") and holds the maps reload that follows (the counters withdrawn), and
 * the backend over it (no pipeline). */
static void held_open(held_t *h)
{
    memset(h, 0, sizeof *h);
    strcpy(h->dir, "/tmp/vigil-test-dapi-XXXXXX");
    h->s = dfx_store_open(h->dir, 2);
    batch_t b;
    batch_init(&b);
    add_point(&b, "a", "x", 1000);
    add_point(&b, "pump-1", "temp", 1000);
    assert_int_equal(store_write(h->s, &b), 0);
    assert_int_equal(store__test_exec(h->s, "CREATE TRIGGER refuse_bad BEFORE INSERT ON devices"
                                            " WHEN NEW.name = 'bad'"
                                            " BEGIN SELECT RAISE(ABORT, 'injected'); END"),
                     0);
    store__test_reload_hold(h->s, 1);
    add_point(&b, "bad", "x", 2000);
    assert_int_equal(store_submit(h->s, &b, on_stored, &h->done), 0);
    batch_deinit(&b);
    wait_reload_held(h->s);
    h->b.store = h->s;
    backend_init(&h->be, &h->b);
}

/* Lets the reload go on and waits for the refused batch's callback. */
static void held_release(held_t *h)
{
    store__test_reload_hold(h->s, 0);
    for (int i = 0; i < 10000 && !__atomic_load_n(&h->done, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    assert_int_equal(h->done, 2);
}

static void held_close(held_t *h)
{
    held_release(h);
    dfx_store_remove(h->s, h->dir);
}

/* A readings query naming a channel the device lacks is answered 400 naming that channel; the
 * lookup of the device's channels needs no counters. While the store reloads them (after a
 * failed write) the answer is the same and comes at once. Before task reloadfail it used
 * device_get, which waited about a second for the counters, gave up (ERR_AGAIN) and left the
 * answer without the channel's name ("unknown channel of device 'a'"). */
static void test_unknown_channel_during_reload(void **state)
{
    (void)state;
    held_t h;
    held_open(&h);
    struct api_server srv;
    memset(&srv, 0, sizeof srv);
    srv.be = h.be;
    api_request_t r;
    memset(&r, 0, sizeof r);
    r.srv = &srv;
    static const char *const chans[] = {"x", "zz"};
    api_query_t q = {.device = "a", .to_ms = 10000, .channels = chans, .nchannels = 2};
    api__unknown_channel(&r, &q);
    assert_int_equal(r.status, 400);
    char *body = strndup(r.resp, r.resp_len);
    assert_non_null(body);
    assert_string_equal(body, "{\"error\":\"parameter 'channels': device 'a' has no channel "
                              "'zz'\"}\n");
    free(body);
    free(r.resp);
    held_close(&h);
}

/* SELECT ... FROM <a device's id> WHERE device != '' (task condvar): whether the FROM name is
 * a device's id needs no counters, so while the store reloads them the statement answers at
 * once (no series, as influxd), not a 503. A FROM name that is no device's (cpu) reads every
 * device's counters, so it still meets the reload: run.again (503 with Retry-After). Before
 * task condvar from_is_device used device_get, which waited about a second for the counters
 * and gave up (ERR_AGAIN): the first statement also answered 503. */
static void test_iq_from_device_during_reload(void **state)
{
    (void)state;
    held_t h;
    held_open(&h);
    iq_be = &h.be;
    qrun_t run = iq_run("SELECT temp FROM \"pump-1\" WHERE device != ''", 6, api__iq_select);
    assert_null(run.err);
    assert_int_equal(run.again, 0);
    run = iq_run("SELECT temp FROM cpu WHERE device != ''", 6, api__iq_select);
    assert_non_null(run.err);
    assert_int_equal(run.again, 1);
    free(run.err);
    iq_be = NULL;
    held_close(&h);
}

/* SHOW FIELD KEYS FROM <a device's id> and SHOW TAG VALUES FROM <id> WITH KEY = "device" WHERE
 * "device" ... (review of task condvar): the device's channels, and whether the FROM name is a
 * device's id, need no counters, so while the store reloads them both answer at once (the
 * device's field temp; no values, as influxd), not a 503. Before, SHOW FIELD KEYS FROM and
 * tv_from_device used device_get, which waited about a second for the counters and gave up
 * (ERR_AGAIN): both answered 503. */
static void test_iq_show_from_device_during_reload(void **state)
{
    (void)state;
    held_t h;
    held_open(&h);
    iq_be = &h.be;
    qrun_t run = iq_run("SHOW FIELD KEYS FROM \"pump-1\"", 15, api__iq_show_field_keys);
    char *err1 = run.err;
    int again1 = run.again;
    char out1[sizeof iq_out];
    memcpy(out1, iq_out, sizeof out1);
    run = iq_run("SHOW TAG VALUES FROM \"pump-1\" WITH KEY = \"device\" WHERE \"device\" != ''", 15,
                 api__iq_show_tag_values);
    char *err2 = run.err;
    int again2 = run.again;
    iq_be = NULL;
    held_close(&h); /* before asserting: a failure leaves no writer held */
    assert_null(err1);
    assert_int_equal(again1, 0);
    assert_non_null(strstr(out1, "[\"temp\",\"float\"]"));
    assert_null(err2);
    assert_int_equal(again2, 0);
    free(err1);
    free(err2);
}

/* SHOW MEASUREMENTS ... WHERE, SHOW TAG KEYS ... WHERE, SHOW TAG VALUES WITH KEY = "device",
 * SHOW SERIES and the cardinality statements list devices by their ids and channels, which do
 * not change while the store reloads its maps: they walk device_each, so during the reload they
 * answer at once, the same text as after it (ids and order), and count what they list. Before
 * task iqids they walked device_list, which waited for the reload of the counters and gave up
 * (ERR_AGAIN, after the store's wait): the statement marked the query "again" (503), and this
 * test fails there on err1 (not NULL). */
static const struct {
    const char *q;
    size_t skip;
    int (*fn)(api_request_t *, qscan_t *, qrun_t *);
    int count;      /* a cardinality statement */
    const char *in; /* in its answer */
} iq_lists[] = {
    {"SHOW MEASUREMENTS WHERE \"device\" = 'pump-1'", 17, api__iq_show_measurements, 0,
     "[\"pump-1\"]"},
    {"SHOW TAG KEYS WHERE \"device\" = 'pump-1'", 13, api__iq_show_tag_keys, 0, "pump-1"},
    {"SHOW TAG VALUES WITH KEY = \"device\"", 15, api__iq_show_tag_values, 0,
     "{\"name\":\"a\",\"columns\":[\"key\",\"value\"],\"values\":[[\"device\",\"a\"]]},{\"name\":"
     "\"pump-1\""},
    {"SHOW SERIES", 11, api__iq_show_series, 0, "[\"a,device=a\"],[\"pump-1,device=pump-1\"]"},
    {"SHOW TAG KEY CARDINALITY WHERE \"device\" = 'pump-1'", 12, api__iq_card_tag_keys, 1,
     "pump-1"},
    {"SHOW MEASUREMENT EXACT CARDINALITY WHERE \"device\" = 'pump-1'", 16,
     api__iq_card_measurements, 1, "[[4]]"},
    {"SHOW FIELD KEY CARDINALITY WHERE \"device\" = 'pump-1'", 14, api__iq_card_field_keys, 1,
     "pump-1"},
    {"SHOW SERIES EXACT CARDINALITY", 11, api__iq_show_series, 1, "count"},
};
#define IQ_LISTS (sizeof iq_lists / sizeof iq_lists[0])

/* Runs iq_lists on be: each one's error, "again" and answer. */
static void iq_lists_run(const api_backend_t *be, char *err[IQ_LISTS], int again[IQ_LISTS],
                         char out[IQ_LISTS][sizeof iq_out])
{
    iq_be = be;
    for (size_t i = 0; i < IQ_LISTS; i++) {
        qrun_t run = iq_run(iq_lists[i].q, iq_lists[i].skip, iq_lists[i].fn);
        err[i] = run.err;
        again[i] = run.again;
        memcpy(out[i], iq_out, sizeof iq_out);
    }
    iq_be = NULL;
}

static void test_iq_lists_during_reload(void **state)
{
    (void)state;
    held_t h;
    held_open(&h);
    char *err1[IQ_LISTS], *err2[IQ_LISTS];
    int again1[IQ_LISTS], again2[IQ_LISTS];
    static char out1[IQ_LISTS][sizeof iq_out], out2[IQ_LISTS][sizeof iq_out];
    iq_lists_run(&h.be, err1, again1, out1);
    held_release(&h); /* before asserting: a failure leaves no writer held */
    iq_lists_run(&h.be, err2, again2, out2);
    dfx_store_remove(h.s, h.dir);
    for (size_t i = 0; i < IQ_LISTS; i++) {
        assert_null(err1[i]);
        assert_int_equal(again1[i], 0);
        assert_null(err2[i]);
        assert_int_equal(again2[i], 0);
        assert_string_equal(out1[i], out2[i]);
        assert_non_null(strstr(out1[i], iq_lists[i].in));
        if (iq_lists[i].count)
            assert_non_null(strstr(out1[i], "count"));
    }
}

/* demo_limits' device_put, recorded instead of written: the writer is held in the reload. */
static char demo_puts[8][16];
static int demo_nputs;

static int demo_put(void *ctx, const char *id, const char *attrs_json, int *created)
{
    (void)ctx;
    assert_non_null(strstr(attrs_json, "\"limits\""));
    if (demo_nputs < 8)
        snprintf(demo_puts[demo_nputs], sizeof demo_puts[0], "%s", id);
    demo_nputs++;
    *created = 1;
    return 0;
}

/* The backend's device_get (the lookup that waits for the reload of the counters), counted
 * with the calls whose deadline lets it wait (0: the store's own bound, or one not yet passed). */
static const api_backend_t *demo_real;
static int demo_gets, demo_waiting_gets;

static int demo_get(void *ctx, const char *id, int64_t deadline_us, api_device_cb cb, void *arg)
{
    demo_gets++;
    if (deadline_us == 0 || deadline_us > vtime_mono_us())
        demo_waiting_gets++;
    return demo_real->device_get(ctx, id, deadline_us, cb, arg);
}

/* --demo gives the pumps new to the store their temperature limit and leaves a stored pump's
 * attributes alone: whether a pump is stored needs no counters, so while the store reloads them
 * demo_limits does not wait for them (device_find): pump-1 (stored) gets no PUT and pump-2..4
 * (new) do. Before task reloadfail demo_limits used device_get, which for pump-1 waited about a
 * second (on the loop thread, at start) and gave up with ERR_AGAIN; the outcome was the same
 * (skipped as stored, a new pump's lookup answers ERR_NOTFOUND at once), so this test fails
 * there on the count of device_get calls that could wait (4), not on the PUTs. Since session
 * 45 a stored pump's newest reading is read with device_get (the demo's history starts after
 * it), with a deadline already passed: during the reload it is unknown (newest_ms -1), not
 * waited for. */
static void test_demo_limits_during_reload(void **state)
{
    (void)state;
    held_t h;
    held_open(&h);
    api_backend_t be = h.be;
    be.device_put = demo_put;
    be.device_get = demo_get;
    demo_real = &h.be;
    demo_nputs = demo_gets = demo_waiting_gets = 0;
    demo_t demo = {.newest_ms = 5};
    demo_limits(&demo, &be);        /* no wall-clock bound asserted: demo_waiting_gets says it */
    assert_int_equal(demo_gets, 1); /* pump-1, the stored one */
    assert_int_equal(demo_waiting_gets, 0);
    assert_int_equal(demo.newest_ms, -1);
    assert_int_equal(demo_nputs, 3);
    assert_string_equal(demo_puts[0], "pump-2");
    assert_string_equal(demo_puts[1], "pump-3");
    assert_string_equal(demo_puts[2], "pump-4");
    held_close(&h);
}

/* http.query_timeout: 30s by default (api_opts_default's), 0 with or without a unit off (an
 * empty value is refused since session 51: test_daemon.c's test_value_forms), ms
 * taken (unlike the other durations: a deadline is counted in ms), 1ms to 1d; a bad value is
 * refused naming FILE:LINE, the key and the form, as every setting's. */
static void test_query_timeout_key(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int64_t ms; /* -1: refused */
    } rows[] = {{"30s", 30000}, {"10ms", 10},   {"1ms", 1},  {"2m", 120000}, {"1d", 86400000},
                {"0", 0},       {"0ms", 0},     {"0s", 0},   {"2d", -1},     {"10", -1},
                {"1.5s", -1},   {"010ms", -1},  {"-1s", -1}, {"+1s", -1},    {"1 s", -1},
                {"1sec", -1},   {"86401s", -1}, {"1w", -1}};
    config_t c;
    config_default(&c);
    assert_int_equal(c.query_timeout_ms, 30000);
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        char err[512] = "";
        config_default(&c);
        int rc = config_set(&c, "http", "query_timeout", rows[k].v, err, sizeof err);
        if (rows[k].ms < 0 ? rc != -1 || strstr(err, "http.query_timeout: '") == NULL ||
                                 strstr(err, "is not 0 (off) or a duration from 1ms to 1d") == NULL
                           : rc != 0 || c.query_timeout_ms != rows[k].ms)
            fail_msg("'%s': rc %d, %lld ms, '%s'", rows[k].v, rc, (long long)c.query_timeout_ms,
                     err);
    }
    char path[] = "/tmp/vigil-test-qtimeout-XXXXXX", err[512];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char text[] = "[http]\nthreads = 2\nquery_timeout = 5 s\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    config_default(&c);
    assert_int_equal(config_load(&c, path, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "%s:3: http.query_timeout: '5 s' is not 0 (off)", path);
    if (strstr(err, want) == NULL)
        fail_msg("error '%s' lacks '%s'", err, want);
    unlink(path);
}

static int count_episode(void *arg, const api_episode_t *e)
{
    (void)e;
    (*(size_t *)arg)++;
    return 0;
}

/* Review (iqdl): pipeline_anomalies_each's deadline (/query's, for SELECT FROM vigil_anomalies)
 * also stops the listing of a pipeline without a store, from the events kept in memory, as
 * api_backend_t's pipe_anomalies_each promises: 600 ended events of one device, a deadline long
 * past (1 µs after the clock's origin) answers ERR_TIMEOUT with no episode reported, whatever
 * the machine's speed (the first look is at the 256th event); none (0) and one far ahead list
 * all 600, device and fleet. Before the review the in-memory listing ignored the deadline: 0,
 * 600 episodes. */
static void test_anomalies_deadline_no_store(void **state)
{
    (void)state;
    enum { NEV = 600 };
    pipeline_opts_t o;
    pipeline_opts_default(&o);
    o.events = NEV;
    pipeline_t *p = NULL;
    assert_int_equal(pipeline_create(&p, &o, NULL), 0);
    batch_t b;
    batch_init(&b);
    assert_int_equal(batch_point_begin(&b, "mem", 3, 1000, 0), 0);
    assert_int_equal(batch_field_add(&b, "v", 1, 1.0), 0);
    assert_int_equal(batch_point_commit(&b), 1);
    pipeline_feed(p, &b);
    pipeline_drain(p);
    batch_deinit(&b);
    struct dev *d = pipeline__find(p, "mem");
    assert_non_null(d);
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < NEV; i++) {
        struct event *e = pipeline__event_add(p, d);
        assert_non_null(e);
        e->id = (uint64_t)i + 1;
        e->start_ts = 10000 + 10 * i;
        e->end_ts = e->start_ts + 5;
    }
    pthread_mutex_unlock(&d->mu);
    const int64_t far = vtime_mono_ms() * 1000 + 3600LL * 1000000;
    const char *ids[] = {"mem", NULL};
    for (int k = 0; k < 2; k++) {
        size_t n = 0;
        assert_int_equal(
            pipeline_anomalies_each(p, ids[k], 0, INT64_MAX, SIZE_MAX, 1, count_episode, &n),
            ERR_TIMEOUT);
        assert_int_equal(n, 0);
        assert_int_equal(
            pipeline_anomalies_each(p, ids[k], 0, INT64_MAX, SIZE_MAX, 0, count_episode, &n), 0);
        assert_int_equal(n, NEV);
        n = 0;
        assert_int_equal(
            pipeline_anomalies_each(p, ids[k], 0, INT64_MAX, SIZE_MAX, far, count_episode, &n), 0);
        assert_int_equal(n, NEV);
    }
    pipeline_destroy(p);
}

/* A backend's snapshot: made, but its answer could not be built (out of memory: no text). */
static int snapshot_unanswered(void *ctx, char **out)
{
    (void)ctx;
    *out = NULL;
    return 0;
}

/* A backend's snapshot that failed for want of memory before it made anything. */
static int snapshot_nomem(void *ctx, char **out)
{
    (void)ctx;
    *out = NULL;
    return ERR_NOMEM;
}

/* POST /v1/admin/snapshot (no body) against backend fn: its status, Retry-After and body
 * (caller frees). */
static char *snapshot_answer(int (*fn)(void *, char **), unsigned *status, unsigned *retry)
{
    struct api_server srv;
    memset(&srv, 0, sizeof srv);
    srv.be.snapshot = fn;
    api_request_t r;
    memset(&r, 0, sizeof r);
    r.srv = &srv;
    api__h_snapshot(&r);
    *status = r.status;
    *retry = r.retry_after;
    char *body = answer_of(&r);
    free(r.resp);
    return body;
}

/* Task leftovers2: a snapshot made whose answer could not be built (out of memory) is a 500
 * saying it was made and not to retry, without Retry-After: a retry would make a second one.
 * Before, it was the 503 with Retry-After: 1 and "retry later" of a snapshot that failed for
 * want of memory, which stays so when nothing was made. */
static void test_snapshot_made_unanswered(void **state)
{
    (void)state;
    unsigned status, retry;
    char *body = snapshot_answer(snapshot_unanswered, &status, &retry);
    assert_int_equal(status, 500); /* before: 503 */
    assert_int_equal(retry, 0);    /* before: 1 */
    assert_string_equal(body, "{\"error\":\"snapshot made, but its answer could not be built (out "
                              "of memory); do not retry (that makes another): GET "
                              "/v1/admin/snapshots lists it, the log names it\"}\n");
    free(body);
    body = snapshot_answer(snapshot_nomem, &status, &retry);
    assert_int_equal(status, 503);
    assert_int_equal(retry, 1);
    assert_string_equal(body, "{\"error\":\"snapshot failed: out of memory; retry later\"}\n");
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_error_again),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_retrain_error_keeps_ended),
        cmocka_unit_test(test_out_of_memory_form),
        cmocka_unit_test(test_error_headers),
        cmocka_unit_test(test_query_timeout_key),
        cmocka_unit_test(test_iq_from_device_again),
        cmocka_unit_test(test_unknown_channel_during_reload),
        cmocka_unit_test(test_iq_from_device_during_reload),
        cmocka_unit_test(test_iq_show_from_device_during_reload),
        cmocka_unit_test(test_iq_lists_during_reload),
        cmocka_unit_test(test_demo_limits_during_reload),
        cmocka_unit_test(test_anomalies_deadline_no_store),
        cmocka_unit_test(test_snapshot_made_unanswered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

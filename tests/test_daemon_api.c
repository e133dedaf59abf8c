/* tests/test_daemon_api.c: unit tests of the API's answer to the store's ERR_AGAIN (a read that
 * met the store reloading its maps after a failed write): api__backend_error's 503 with
 * Retry-After, a /query statement's api__q_backend_error, and the InfluxQL checks of whether a
 * FROM name is a device (on a fake backend). Moved out of tests/test_daemon.c to keep it under
 * 1,000 lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "err.h"
#include "influxql.h"

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
    assert_int_equal(api__q_backend_error(&run, "reading the device: ", ERR_IO), 1);
    assert_int_equal(run.again, 0);
    free(run.err);
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

static int iq_device_get(void *ctx, const char *id, api_device_cb cb, void *arg)
{
    (void)ctx;
    if (iq_gets++ == 0)
        return ERR_AGAIN;
    if (strcmp(id, "pump-7") != 0)
        return ERR_NOTFOUND;
    iq_device(id, cb, arg);
    return 0;
}

static int iq_device_list(void *ctx, const char *after, size_t limit, api_device_cb cb, void *arg)
{
    (void)ctx, (void)after, (void)limit;
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
static qrun_t iq_run(const char *text, size_t skip, int (*fn)(api_request_t *, qscan_t *, qrun_t *))
{
    struct api_server srv;
    memset(&srv, 0, sizeof srv);
    srv.device_tag = (char *)"device";
    srv.be.device_get = iq_device_get;
    srv.be.device_list = iq_device_list;
    srv.be.query = iq_query;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_error_again),
        cmocka_unit_test(test_iq_from_device_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

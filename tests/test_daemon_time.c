/* tests/test_daemon_time.c: unit tests of the pipeline against imperfect clocks, the arrival
 * clock injected through pipeline__feed_at (no store, no wall clock but the catch-up's): a
 * reading stamped far ahead of its arrival is stored but not scored and does not become its
 * device's newest scored reading (PIPE_FUTURE_MS), so the readings after it are still scored;
 * a device's gap is not one of its reading intervals (PIPE_DT_GAP). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "pipeline.h"
#include "pipeline_int.h"
#include "vtime.h"

/* A plant's arrival clock: 2023-11-14T22:13:20Z. */
#define ARRIVAL 1700000000000LL

/* Feeds one reading of device "gw" at ts, arrived at arrived_ms (-1: the catch-up). */
static void feed(pipeline_t *p, int64_t ts, double v, int64_t arrived_ms)
{
    batch_t b;
    batch_init(&b);
    assert_int_equal(batch_point_begin(&b, "gw", 2, ts, 0), 0);
    assert_int_equal(batch_field_add(&b, "x", 1, v), 0);
    assert_int_equal(batch_point_commit(&b), 1);
    pipeline__feed_at(p, &b, arrived_ms);
    pipeline_drain(p);
    batch_deinit(&b);
}

/* The device's status field name as an integer (-1: absent). */
static json_int_t status_int(pipeline_t *p, const char *name)
{
    char *js = NULL;
    assert_int_equal(pipeline_status(p, "gw", &js), 0);
    json_t *v = json_loads(js, 0, NULL);
    assert_non_null(v);
    json_t *f = json_object_get(v, name);
    json_int_t n = json_is_integer(f) ? json_integer_value(f) : -1;
    json_decref(v);
    free(js);
    return n;
}

static void test_future_reading_not_newest(void **state)
{
    (void)state;
    pipeline_opts_t o;
    pipeline_opts_default(&o);
    o.workers = 1;
    pipeline_t *p = NULL;
    assert_int_equal(pipeline_create(&p, &o, NULL), 0);
    for (int i = 0; i < 3; i++)
        feed(p, ARRIVAL - 3000 + i * 1000, i, ARRIVAL);
    assert_int_equal(status_int(p, "readings_scored"), 3);

    /* The gateway's clock jumps to a day and a millisecond ahead, once: not scored. */
    feed(p, ARRIVAL + PIPE_FUTURE_MS + 1, 9, ARRIVAL);
    assert_int_equal(status_int(p, "readings_scored"), 3);
    assert_int_equal(status_int(p, "readings_not_scored_future"), 1);
    assert_int_equal(status_int(p, "last_ts"), ARRIVAL - 1000);

    /* The true readings after it are scored (they were "out of order" until the glitch's date),
     * one stamped a whole day ahead too (a gateway sending local time as UTC is within it). */
    feed(p, ARRIVAL + 1000, 3, ARRIVAL + 1000);
    feed(p, ARRIVAL + 2000 + PIPE_FUTURE_MS, 4, ARRIVAL + 2000);
    assert_int_equal(status_int(p, "readings_scored"), 5);
    assert_int_equal(status_int(p, "readings_not_scored_out_of_order"), 0);
    assert_int_equal(status_int(p, "last_ts"), ARRIVAL + 2000 + PIPE_FUTURE_MS);

    /* The restore's catch-up (no arrival) judges by the wall clock: a stored reading of 2100
     * stays unscored after a restart too. */
    const int64_t y2100 = 4102444800000LL;
    assert_true(y2100 > vtime_now_ms() + PIPE_FUTURE_MS);
    feed(p, y2100, 5, -1);
    assert_int_equal(status_int(p, "readings_scored"), 5);
    assert_int_equal(status_int(p, "readings_not_scored_future"), 2);
    pipeline_destroy(p);
}

/* The device's reading interval (the forecasts' step) after a day's gap: a gap is not an
 * interval (it made the steps 72 minutes), and a true change of rate is still followed. */
static void test_gap_not_interval(void **state)
{
    (void)state;
    pipeline_opts_t o;
    pipeline_opts_default(&o);
    o.workers = 1;
    pipeline_t *p = NULL;
    assert_int_equal(pipeline_create(&p, &o, NULL), 0);
    int64_t t = ARRIVAL - 86400000LL * 2;
    for (int i = 0; i < 100; i++, t += 1000)
        feed(p, t, i % 7, t);
    struct dev *d = pipeline__find(p, "gw");
    assert_non_null(d);
    assert_true(d->dt_ms > 999.0 && d->dt_ms < 1001.0);
    t += 86400000LL; /* silent for a day */
    feed(p, t, 1, t);
    assert_true(d->dt_ms <= 1000.0 * (0.95 + 0.05 * PIPE_DT_GAP) + 1e-6);
    for (int i = 0; i < 10; i++) {
        t += 1000;
        feed(p, t, i % 7, t);
    }
    assert_true(d->dt_ms < 1100.0);
    /* From one a second to one a minute: most of the way (50 s) within 60 readings. */
    for (int i = 0; i < 60; i++) {
        t += 60000;
        feed(p, t, i % 7, t);
    }
    assert_true(d->dt_ms > 50000.0);
    pipeline_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_future_reading_not_newest),
        cmocka_unit_test(test_gap_not_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

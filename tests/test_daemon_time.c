/* tests/test_daemon_time.c: unit tests of the pipeline against imperfect clocks, the arrival
 * clock injected through pipeline__feed_at (no store, no wall clock but the catch-up's): a
 * reading stamped far ahead of its arrival is stored but not scored and does not become its
 * device's newest scored reading (PIPE_FUTURE_MS), so the readings after it are still scored;
 * a device's gap is not one of its reading intervals (PIPE_DT_GAP); a device's clock stepped
 * back becomes its timeline after a steady run of readings (PIPE_BACK_RUN), a late reading
 * and a backfill do not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "daemon_fx.h"
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

/* A pipeline without a store, scoring on one worker. */
static pipeline_t *one_worker(void)
{
    pipeline_opts_t o;
    pipeline_opts_default(&o);
    o.workers = 1;
    pipeline_t *p = NULL;
    assert_int_equal(pipeline_create(&p, &o, NULL), 0);
    return p;
}

static void test_future_reading_not_newest(void **state)
{
    (void)state;
    pipeline_t *p = one_worker();
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
    pipeline_t *p = one_worker();
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

/* The forecast's step spacing (pipeline__step_us, __step_ms) of a device whose readings are
 * decades apart (its first reading at 1970-01-01 and the next now: the running average starts
 * at the whole gap): the horizon's last step (10,000) is still k x the interval, rounded down,
 * where k * us overflowed int64 (1.7e12 ms is 1.7e15 us, times 10,000: 1.7e19). And the usual
 * cases: whole milliseconds from 10 s, microseconds below. */
static void test_step_decades_apart(void **state)
{
    (void)state;
    pipeline_t *p = one_worker();
    feed(p, 1, 1, ARRIVAL);
    feed(p, ARRIVAL, 2, ARRIVAL);
    struct dev *d = pipeline__find(p, "gw");
    assert_non_null(d);
    const int64_t us = pipeline__step_us(d);
    assert_int_equal(us, (ARRIVAL - 1) * 1000);
    assert_int_equal(pipeline__step_ms(us, 10000), (ARRIVAL - 1) * 10000);
    assert_int_equal(pipeline__step_ms(1001034, 100), 100103);
    assert_int_equal(pipeline__step_ms(1001034, 1000), 1001034);
    assert_int_equal(pipeline__step_ms(10800001000, 7), 75600007);
    pipeline_destroy(p);
}

/* Feeds one reading of device dev at ts, arrived at arrived_ms. */
static void feed_dev(pipeline_t *p, const char *dev, int64_t ts, double v, int64_t arrived_ms)
{
    batch_t b;
    batch_init(&b);
    assert_int_equal(batch_point_begin(&b, dev, strlen(dev), ts, 0), 0);
    assert_int_equal(batch_field_add(&b, "x", 1, v), 0);
    assert_int_equal(batch_point_commit(&b), 1);
    pipeline__feed_at(p, &b, arrived_ms);
    pipeline_drain(p);
    batch_deinit(&b);
}

/* The predictions' timestamps of gw, checked in time order; returns how many. */
static size_t preds_in_order(pipeline_t *p, int64_t *first, int64_t *last)
{
    char *js = NULL;
    assert_int_equal(pipeline_predictions(p, "gw", 0, INT64_MAX, 100000, 0, &js), 0);
    json_t *v = json_loads(js, 0, NULL);
    free(js);
    assert_non_null(v);
    json_t *pts = json_object_get(v, "points");
    size_t n = json_array_size(pts);
    int64_t prev = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        int64_t ts = json_integer_value(json_object_get(json_array_get(pts, i), "ts"));
        assert_true(ts > prev);
        prev = ts;
        if (i == 0)
            *first = ts;
        *last = ts;
    }
    json_decref(v);
    return n;
}

static void test_clock_steps_back(void **state)
{
    (void)state;
    pipeline_t *p = one_worker();
    int64_t at = ARRIVAL;
    for (int i = 0; i < 100; i++, at += 1000)
        feed(p, at, i % 7, at);
    assert_int_equal(status_int(p, "readings_scored"), 100);
    const int64_t newest = at - 1000;

    /* One late reading, then in-order ones again: out of order, as before. */
    feed(p, newest - 500, 3, at);
    feed(p, at, 3, at);
    at += 1000;
    assert_int_equal(status_int(p, "readings_not_scored_out_of_order"), 1);
    assert_int_equal(status_int(p, "readings_scored"), 101);

    /* A backfill: a thousand readings of a day ago, in order, arriving within a second: never
     * the device's timeline, however long. */
    for (int i = 0; i < 1000; i++)
        feed(p, ARRIVAL - 86400000LL + i * 1000, i % 5, at + i);
    at += 1000;
    assert_int_equal(status_int(p, "readings_not_scored_out_of_order"), 1001);
    assert_int_equal(status_int(p, "readings_scored"), 101);
    assert_int_equal(status_int(p, "clock_steps_back"), 0);
    assert_int_equal(status_int(p, "last_ts"), at - 2000);

    /* The gateway's clock steps back an hour: its readings, a second apart and arriving so,
     * are out of order for PIPE_BACK_RUN - 1 of them, then its timeline. */
    struct dev *d = pipeline__find(p, "gw");
    assert_non_null(d);
    const double dt = d->dt_ms;
    int64_t ts = at - 3600000LL;
    for (int i = 0; i < PIPE_BACK_RUN - 1; i++, ts += 1000, at += 1000)
        feed(p, ts, i % 7, at);
    assert_int_equal(status_int(p, "readings_scored"), 101);
    assert_int_equal(status_int(p, "clock_steps_back"), 0);
    for (int i = 0; i < 20; i++, ts += 1000, at += 1000)
        feed(p, ts, i % 7, at);
    assert_int_equal(status_int(p, "readings_scored"), 121);
    assert_int_equal(status_int(p, "clock_steps_back"), 1);
    assert_int_equal(status_int(p, "readings_not_scored_out_of_order"), 1001 + PIPE_BACK_RUN - 1);
    assert_int_equal(status_int(p, "last_ts"), ts - 1000);
    /* The step is not one of its reading intervals. */
    assert_true(d->dt_ms > 0.99 * dt && d->dt_ms < 1.01 * dt);
    /* The predictions start over on the new timeline, in time order. */
    int64_t first = 0, last = 0;
    assert_int_equal(preds_in_order(p, &first, &last), 20);
    assert_int_equal(first, ts - 20000);
    assert_int_equal(last, ts - 1000);

    /* vigild's own clock steps back: readings stamped on arrival (no timestamp of their own)
     * go back with it, and become the device's timeline the same way. */
    int64_t now = ARRIVAL;
    for (int i = 0; i < 50; i++, now += 1000)
        feed_dev(p, "stamped", now, i % 3, now);
    now -= 3600000LL;
    for (int i = 0; i < 20; i++, now += 1000)
        feed_dev(p, "stamped", now, i % 3, now);
    struct dev *s = pipeline__find(p, "stamped");
    assert_non_null(s);
    assert_int_equal(s->scored, 50 + 20 - (PIPE_BACK_RUN - 1));
    assert_int_equal(s->clock_steps, 1);
    assert_int_equal(s->last_ts, now - 1000);

    /* A gateway batching a device that reads every 2 minutes: 5 readings every 10 minutes, the
     * readings of a batch 2 minutes apart arriving at once. Its clock steps back a day: its
     * timeline from the run's 10th reading (the second batch's last) on. */
    int64_t t = ARRIVAL, arr = ARRIVAL;
    for (int i = 0; i < 40; i++, t += 120000) {
        feed_dev(p, "slow", t, i % 3, arr);
        if (i % 5 == 4)
            arr = t + 120000 * 5;
    }
    t -= 86400000LL;
    for (int i = 0; i < 15; i++, t += 120000) {
        feed_dev(p, "slow", t, i % 3, arr);
        if (i % 5 == 4)
            arr += 600000;
    }
    struct dev *sl = pipeline__find(p, "slow");
    assert_non_null(sl);
    assert_int_equal(sl->clock_steps, 1);
    assert_int_equal(sl->scored, 40 + 15 - (PIPE_BACK_RUN - 1));
    pipeline_destroy(p);
}

/* A clock stepped back into a maintenance period: the step's reading is not scored (the
 * period), so the device has no scored reading on its new timeline, and no arrival of one
 * either (dev.last_ms, which pipeline_maint.c's clock-behind rule reads against last_ts). Before
 * review of task maint8, last_ts went to -1 and last_ms kept the old timeline's arrival: the
 * rule then took the device for a clock behind by vigild's whole clock. */
static void test_step_into_a_period(void **state)
{
    (void)state;
    pipeline_t *p = one_worker();
    const int64_t until = vtime_now_ms() + 3600000LL; /* current by the clock: no store here */
    int64_t at = until + 60000, ts;
    for (int i = 0; i < 30; i++, at += 1000)
        feed(p, at, i % 7, at); /* after the period, stamped on arrival: scored */
    char *out = NULL;
    assert_int_equal(pipeline_maint_start(p, "gw", ARRIVAL, until, 0, NULL, &out), 0);
    free(out);
    struct dev *d = pipeline__find(p, "gw");
    assert_non_null(d);
    assert_int_equal(d->last_ms, at - 1000);
    ts = ARRIVAL + 60000; /* back into the period, a second apart, arriving so */
    for (int i = 0; i < PIPE_BACK_RUN; i++, ts += 1000, at += 1000)
        feed(p, ts, i % 7, at);
    assert_int_equal(d->clock_steps, 1);
    assert_int_equal(d->scored, 30);
    assert_int_equal(d->last_ts, -1);
    assert_int_equal(d->last_ms, -1);
    pipeline_destroy(p);
}

/* "gw"'s limit state of channel x (status JSON's "limits"), copied to buf. */
static const char *limit_state(pipeline_t *p, char *buf, size_t n)
{
    struct dev *d = pipeline__find(p, "gw");
    assert_non_null(d);
    pthread_mutex_lock(&d->mu);
    json_t *v = pipeline__limits_status(d);
    pthread_mutex_unlock(&d->mu);
    const char *st = json_string_value(json_object_get(json_object_get(v, "x"), "state"));
    assert_non_null(st);
    snprintf(buf, n, "%s", st);
    json_decref(v);
    return buf;
}

/* A maintenance period vigild's clock has ended but the tick has not yet told past (no tick
 * runs here: there is no loop; in vigild it looks every 250 ms): a device whose clock is behind
 * sends its first reading stamped in the period. It ends the device's limit alarm, as it ends
 * the episode. Before the session 58 second reader's fix the reset waited for the tick's
 * "past", and the tick's stale_end then took the device as sending through and left the alarm
 * in its state from before the period. */
static void test_reading_in_a_period_just_ended(void **state)
{
    (void)state;
    char buf[32];
    pipeline_t *p = one_worker();
    const int64_t now = vtime_now_ms();
    int64_t ts = now - 60000;
    for (int i = 0; i < 30; i++, ts += 1000)
        feed(p, ts, i % 7, now);
    pipeline_set_attrs(p, "gw", "{\"limits\":{\"x\":{\"max\":50}}}");
    feed(p, ts, 100, now);
    assert_string_equal(limit_state(p, buf, sizeof buf), "exceeded");
    char *out = NULL;
    const int64_t from = ts + 1000, until = vtime_now_ms() + 200;
    assert_int_equal(pipeline_maint_start(p, "gw", from, until, 0, NULL, &out), 0);
    free(out);
    assert_string_equal(limit_state(p, buf, sizeof buf), "exceeded"); /* held through it */
    while (vtime_now_ms() <= until)                                   /* bounded: 200 ms */
        usleep(10000);
    feed(p, from + 1000, 3, vtime_now_ms()); /* stamped in the period, which has ended */
    assert_string_equal(limit_state(p, buf, sizeof buf), "ok");
    pipeline_destroy(p);
}

/* Two feeds of one device: gateway A sends a batch of the last 30 readings every 30 s, gateway
 * B each reading as it comes, its clock 20 s behind A's. B's readings behind A's newest are a
 * run of 20 at the live pace after every batch: the timeline stepped back at every batch (20
 * steps in 20 batches, each dropping the stored predictions and moving the detector's times
 * back 20 s). One step, then none for PIPE_BACK_HOLD_MS; a step after it is followed again. */
static void test_two_feeds_step_once(void **state)
{
    (void)state;
    pipeline_t *p = one_worker();
    int64_t t = ARRIVAL;
    for (int i = 0; i < 300; i++, t += 1000)
        feed(p, t, i % 7, t);
    for (int cyc = 0; cyc < 20; cyc++, t += 30000) {
        for (int k = 0; k < 30; k++) /* A's batch, arriving at once */
            feed(p, t - 29000 + k * 1000, k % 7, t);
        for (int k = 1; k <= 29; k++)
            feed(p, t + k * 1000 - 20000, k % 7, t + k * 1000);
    }
    assert_int_equal(status_int(p, "clock_steps_back"), 1);
    /* An hour after that step, the clock steps back two hours: followed. */
    t += PIPE_BACK_HOLD_MS;
    int64_t ts = t - 3 * 3600000LL;
    for (int i = 0; i < PIPE_BACK_RUN + 5; i++, ts += 1000, t += 1000)
        feed(p, ts, i % 7, t);
    assert_int_equal(status_int(p, "clock_steps_back"), 2);
    assert_int_equal(status_int(p, "last_ts"), ts - 1000);
    pipeline_destroy(p);
}

/* Writes one reading of "gw" (channel x) at ts to the store s. */
static void store_one(store_t *s, int64_t ts, double v)
{
    batch_t b;
    batch_init(&b);
    assert_int_equal(batch_point_begin(&b, "gw", 2, ts, 0), 0);
    assert_int_equal(batch_field_add(&b, "x", 1, v), 0);
    assert_int_equal(batch_point_commit(&b), 1);
    assert_int_equal(store_write(s, &b), 0);
    batch_deinit(&b);
}

/* A pipeline whose device "gw" (channel x) reads 1 at ARRIVAL + 0..99 s, then steps its clock
 * back to `from` and reads 2 at from + 0..99 s (arriving after the old newest), each reading
 * also written to the store s: fed without the store (nothing of the pipeline's own goes
 * there); the window reads it. */
static pipeline_t *two_timelines(store_t *s, int64_t from)
{
    pipeline_t *p = one_worker();
    for (int i = 0; i < 100; i++) {
        feed(p, ARRIVAL + i * 1000, 1, ARRIVAL + i * 1000);
        store_one(s, ARRIVAL + i * 1000, 1);
    }
    for (int i = 0; i < 100; i++) {
        feed(p, from + i * 1000, 2, ARRIVAL + 100000 + i * 1000);
        store_one(s, from + i * 1000, 2);
    }
    assert_int_equal(status_int(p, "clock_steps_back"), 1);
    return p;
}

/* The spans "gw"'s training window leaves out (into skip, their count returned) and the window
 * itself read from s up to its newest scored reading, as a training reads them. */
static int window_of(pipeline_t *p, store_t *s, struct maint_span *skip, float **rows, int *n)
{
    struct dev *d = pipeline__find(p, "gw");
    assert_non_null(d);
    pthread_mutex_lock(&d->mu);
    int nskip = pipeline__window_skip(d, skip);
    const int64_t to_ts = d->last_ts;
    const int stepped = d->step_skip.end_ms > d->step_skip.start_ms;
    pthread_mutex_unlock(&d->mu);
    char x[] = "x", *names[] = {x};
    p->store = s;
    assert_int_equal(pipeline__window_read(p, "gw", names, 1, skip, nskip, stepped, to_ts, rows, n),
                     0);
    p->store = NULL;
    return nskip;
}

/* After a clock step back, a training's window leaves out the overlap of the two timelines
 * (from the new one's first reading to the old one's newest), where their readings interleave
 * by timestamp: the old timeline up to the step, then the new one past the old newest. The old
 * timeline reads 1, the new one 2; before session 43 the window was 200 rows alternating 1 and
 * 2 through the overlap. */
static void test_window_leaves_step_out(void **state)
{
    (void)state;
    char dir[] = "/tmp/vigil-test-daemon-time-XXXXXX";
    store_t *s = dfx_store_open(dir, 2);
    /* The clock steps back about 50 s: the new timeline's readings fall between the old ones. */
    const int64_t from = ARRIVAL + 49500, newest = ARRIVAL + 99000;
    pipeline_t *p = two_timelines(s, from);
    struct maint_span skip[PIPE_WINDOW_SKIP_MAX];
    float *rows = NULL;
    int n = 0;
    assert_int_equal(window_of(p, s, skip, &rows, &n), 1);
    assert_int_equal(skip[0].start_ms, from);
    assert_int_equal(skip[0].end_ms, newest + 1);
    /* Old readings before the new timeline's first (50), new ones after the old newest (50). */
    assert_int_equal(n, 100);
    for (int i = 0; i < n; i++)
        assert_true(rows[i] == (i < 50 ? 1.0f : 2.0f));
    free(rows);
    /* Deleted, the device leaves nothing out: the readings of a device of that name sent after
     * are all its own (the review: the span stayed, and left such readings out). */
    struct dev *d = pipeline__find(p, "gw"); /* the struct stays, but is not found after */
    pipeline_forget(p, "gw");
    pthread_mutex_lock(&d->mu);
    assert_int_equal(pipeline__window_skip(d, skip), 0);
    pthread_mutex_unlock(&d->mu);
    pipeline_destroy(p);
    dfx_store_remove(s, dir);
}

/* A step back further than the device's stored history (a gateway whose clock reset to a year
 * before its first reading): leaving the overlap out would leave nothing (the branch's first
 * version: an empty window, so no training until the new timeline passed the old one's newest,
 * a year later); the window is the new timeline's readings, as before session 43. */
static void test_window_far_step(void **state)
{
    (void)state;
    char dir[] = "/tmp/vigil-test-daemon-time-XXXXXX";
    store_t *s = dfx_store_open(dir, 2);
    pipeline_t *p = two_timelines(s, ARRIVAL - 365LL * 86400000);
    struct maint_span skip[PIPE_WINDOW_SKIP_MAX];
    float *rows = NULL;
    int n = 0;
    assert_int_equal(window_of(p, s, skip, &rows, &n), 1);
    assert_int_equal(n, 100);
    for (int i = 0; i < n; i++)
        assert_true(rows[i] == 2.0f);
    free(rows);
    pipeline_destroy(p);
    dfx_store_remove(s, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_future_reading_not_newest),
        cmocka_unit_test(test_gap_not_interval),
        cmocka_unit_test(test_step_decades_apart),
        cmocka_unit_test(test_clock_steps_back),
        cmocka_unit_test(test_two_feeds_step_once),
        cmocka_unit_test(test_step_into_a_period),
        cmocka_unit_test(test_reading_in_a_period_just_ended),
        cmocka_unit_test(test_window_leaves_step_out),
        cmocka_unit_test(test_window_far_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

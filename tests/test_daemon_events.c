/* tests/test_daemon_events.c: a device's anomaly events (daemon/pipeline_events.c) driven
 * directly with detector results: the sides their channels are given, and kept across a save
 * and restore (a store); and the
 * anomalies listing's pages (daemon/pipeline_query.c) over a store with events not yet
 * committed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "batch.h"
#include "pipeline_int.h"
#include "pipeline_events_int.h"
#include "storage.h"
#include "vtime.h"

#include "daemon_fx.h"

/* A pipeline over store s (NULL: none) and its device "tie" with channels a and b (two points
 * scored; written to s first, as ingest does, so that the store knows the device). */
static struct dev *tie_device_in(pipeline_t **p, store_t *s)
{
    pipeline_opts_t o;
    pipeline_opts_default(&o);
    o.workers = 1;
    assert_int_equal(pipeline_create(p, &o, s), 0);
    batch_t b;
    batch_init(&b);
    for (int pass = s ? 0 : 1; pass < 2; pass++) { /* 0: the store's (it takes the batch) */
        for (int k = 0; k < 2; k++) {
            assert_int_equal(batch_point_begin(&b, "tie", 3, 1000 + k * 1000, 0), 0);
            assert_int_equal(batch_field_add(&b, "a", 1, 10.0), 0);
            assert_int_equal(batch_field_add(&b, "b", 1, 5.0), 0);
            assert_int_equal(batch_point_commit(&b), 1);
        }
        if (pass == 0)
            assert_int_equal(store_write(s, &b), 0);
    }
    pipeline_feed(*p, &b);
    pipeline_drain(*p);
    batch_deinit(&b);
    struct dev *d = pipeline__find(*p, "tie");
    assert_non_null(d);
    assert_int_equal(d->nch, 2);
    return d;
}

/* A pipeline without a store and its device "tie" (tie_device_in). */
static struct dev *tie_device(pipeline_t **p)
{
    return tie_device_in(p, NULL);
}

/* One reading of the episode: channel 0 carries the whole error at score 0.3 (the onset cap),
 * its value x against the prediction 10. */
static void step(pipeline_t *p, struct dev *d, int64_t ts, enum detector_state state, float x)
{
    struct detector_result r;
    memset(&r, 0, sizeof r);
    r.state = state;
    r.is_anomaly = state == DET_ANOMALY;
    r.score = 0.3f;
    r.likelihood = 0.99f;
    r.opened_by = DET_OPEN_ERROR;
    r.ended_by = state == DET_ANOMALY ? DET_END_NONE : DET_END_CLEARED;
    r.pred[0] = 10.0f;
    r.pred[1] = 5.0f;
    r.contrib[0] = 1.0f;
    d->last_x[0] = x;
    d->last_x[1] = 5.0f; /* on its prediction, and no share */
    pthread_mutex_lock(&d->mu);
    pipeline__track_event(p, d, ts, &r);
    pthread_mutex_unlock(&d->mu);
}

/* Session 49: an event's peak is the highest of its readings' likelihood and reported score. A
 * trip opens it on a reading scored 0.89 whose likelihood is 0.47 (seen on it_events' Trip):
 * the peak is 0.89, not the likelihood alone (main), which put it below the reading's
 * anomaly_score; a later reading's score capped at 0.3 under a likelihood of 0.99 raises it to
 * the likelihood, as before. */
static void test_peak_is_highest_score(void **state)
{
    (void)state;
    pipeline_t *p = NULL;
    struct dev *d = tie_device(&p);
    struct detector_result r;
    memset(&r, 0, sizeof r);
    r.state = DET_ANOMALY;
    r.is_anomaly = 1;
    r.score = 0.89f;
    r.likelihood = 0.47f;
    r.opened_by = DET_OPEN_ERROR;
    r.contrib[0] = 1.0f;
    pthread_mutex_lock(&d->mu);
    pipeline__track_event(p, d, 3000, &r);
    pthread_mutex_unlock(&d->mu);
    struct event *e = &d->events[d->nevents - 1];
    assert_true(e->peak == 0.89f);
    step(p, d, 4000, DET_ANOMALY, 11.0f); /* score 0.3, likelihood 0.99 */
    assert_true(e->peak == 0.99f);
    pipeline_destroy(p);
}

/* Two readings of equal (capped) parts on either side of the prediction cancel in the lean: the
 * channel, which holds the whole share, still has a side, the newest reading's, while the event
 * is active and once it ended (its JSON names it); the channel without a share has none. Fails
 * without lean_seen / lean_up: the side is 0 and the JSON has no "side" (seen in it_readme: an
 * event's only channel ended without one). */
static void test_side_on_tie(void **state)
{
    (void)state;
    pipeline_t *p = NULL;
    struct dev *d = tie_device(&p);
    step(p, d, 3000, DET_ANOMALY, 9.0f); /* below */
    struct event *e = &d->events[d->nevents - 1];
    assert_true(e->end_ts < 0);
    assert_int_equal(pipeline__event_side(d, e, 0), -1);
    step(p, d, 4000, DET_ANOMALY, 11.0f); /* above, the same part: the lean is 0 */
    assert_true(d->lean[0] == 0.0f);
    assert_int_equal(pipeline__event_side(d, e, 0), 1);
    assert_int_equal(pipeline__event_side(d, e, 1), 0);
    step(p, d, 5000, DET_NORMAL, 10.0f); /* ends it */
    e = &d->events[d->nevents - 1];
    assert_true(e->end_ts == 5000);
    assert_int_equal(pipeline__event_side(d, e, 0), 1);
    char *js = pipeline__event_json(d, e);
    assert_non_null(js);
    assert_non_null(strstr(js, "{\"channel\":\"a\",\"share\":1.0,\"side\":\"above\"}"));
    free(js);

    /* A new episode starts its sides afresh: one reading below alone is below. */
    step(p, d, 6000, DET_ANOMALY, 9.0f);
    e = &d->events[d->nevents - 1];
    assert_true(e->end_ts < 0);
    assert_int_equal(pipeline__event_side(d, e, 0), -1);
    pipeline_destroy(p);
}

/* An event active at a stop (tie's, in store s): the first reading (the one that opened it, as
 * a trip's reading does) below its prediction, the next two above, so the episode's side is
 * above while its row, stored when it opened, says below; saved, the store flushed and the
 * pipeline gone. Returns detector_save's length in the blob (its last bytes). */
static size_t save_leaning_event(store_t *s)
{
    pipeline_t *p = NULL;
    struct dev *d = tie_device_in(&p, s);
    step(p, d, 3000, DET_ANOMALY, 9.0f);  /* below: opens it, its row stored */
    step(p, d, 4000, DET_ANOMALY, 12.0f); /* above */
    step(p, d, 5000, DET_ANOMALY, 12.0f); /* above: the lean is above */
    assert_int_equal(pipeline__event_side(d, &d->events[d->nevents - 1], 0), 1);
    const size_t dlen = detector_save_size(d->det);
    assert_int_equal(pipeline_save_all(p, NULL, NULL), 0);
    assert_int_equal(store_flush(s), 0);
    pipeline_destroy(p);
    return dlen;
}

/* A pipeline restored from s: tie's event is the one saved by save_leaning_event, still
 * active, its channel a on side (1 above, -1 below), and its JSON says so (want). */
static void assert_restored_side(store_t *s, int side, const char *want)
{
    pipeline_opts_t o;
    pipeline_opts_default(&o);
    o.workers = 1;
    pipeline_t *p = NULL;
    assert_int_equal(pipeline_create(&p, &o, s), 0);
    assert_int_equal(pipeline_restore(p), 0);
    struct dev *d = pipeline__find(p, "tie");
    assert_non_null(d);
    assert_int_equal(d->nevents, 1);
    const struct event *e = &d->events[0];
    assert_true(e->end_ts < 0);
    assert_int_equal(e->id, 1);
    assert_int_equal(pipeline__event_side(d, e, 0), side);
    char *js = pipeline__event_json(d, e);
    assert_non_null(js);
    assert_non_null(strstr(js, want));
    free(js);
    pipeline_destroy(p);
}

/* An event active at a stop keeps its sides across the restart (save_leaning_event's: above,
 * its row below): after a restore it is still above, and its JSON says so. Fails with the
 * sides taken from the stored row (blob format 4: below after the restore; it_pipeline
 * Restart.test_sigterm_keeps_models_states_and_events with the trip on). */
static void test_sides_across_restore(void **state)
{
    (void)state;
    char dir[] = "/tmp/vigil-evside-XXXXXX";
    store_t *s = dfx_store_open(dir, 2);
    (void)save_leaning_event(s);
    assert_restored_side(s, 1, "{\"channel\":\"a\",\"share\":1.0,\"side\":\"above\"}");
    dfx_store_remove(s, dir);
}

/* The stored blob of tie's detector (store_detectors_load's callback). */
struct blob_copy {
    unsigned char *buf;
    size_t len;
    int64_t last_ts;
};

static int copy_blob(void *arg, const char *device, int64_t last_ts, int64_t saved_ms,
                     const void *blob, size_t len, int64_t ckpt_id, const void *ckpt,
                     size_t ckpt_len)
{
    (void)saved_ms, (void)ckpt_id, (void)ckpt, (void)ckpt_len;
    struct blob_copy *c = arg;
    if (strcmp(device, "tie") == 0 && c->buf == NULL) {
        c->buf = malloc(len);
        assert_non_null(c->buf);
        memcpy(c->buf, blob, len);
        c->len = len;
        c->last_ts = last_ts;
    }
    return 0;
}

/* A blob of format 4 (a vigild before session 48: no lean, which format 5 puts right before the
 * detector's bytes) still loads, its active event's sides from its stored row, as it ran: the
 * same save cut to format 4 restores the event below (review of session 48's trip2; the blob
 * format-5 reader applied to it fails the load or reads the detector's first bytes as a lean). */
static void test_sides_format4(void **state)
{
    (void)state;
    char dir[] = "/tmp/vigil-evside4-XXXXXX";
    store_t *s = dfx_store_open(dir, 2);
    const size_t dlen = save_leaning_event(s);
    struct blob_copy c = {NULL, 0, 0};
    assert_int_equal(store_detectors_load(s, copy_blob, &c), 0);
    assert_non_null(c.buf);
    const size_t lean = 2 * sizeof(float) + 16; /* tie's two channels, lean_seen, lean_up */
    assert_true(c.len > dlen + lean + 8);
    assert_memory_equal(c.buf, "VGPD", 4);
    uint32_t fmt;
    memcpy(&fmt, c.buf + 4, 4);
    assert_int_equal(fmt, 5);
    fmt = 4;
    memcpy(c.buf + 4, &fmt, 4);
    const size_t at = c.len - dlen - lean;
    memmove(c.buf + at, c.buf + at + lean, dlen);
    assert_int_equal(store_detector_put(s, "tie", c.last_ts, c.buf, c.len - lean, NULL, 0), 0);
    assert_int_equal(store_flush(s), 0);
    free(c.buf);
    assert_restored_side(s, -1, "{\"channel\":\"a\",\"share\":1.0,\"side\":\"below\"}");
    dfx_store_remove(s, dir);
}

/* The anomalies listing's pages (GET /v1/anomalies: pipeline_anomalies, then the API's
 * api__events_page) over a store whose rows are six ended events of device "s" (starts 1000 to
 * 6000) and ten devices' active events not committed yet (their put is asynchronous): u0 at 5500,
 * u1 at 3000 (the start of s's event 3; "u1" > "s" bytewise: listed before it) and u2..u9 at
 * 102..109, older than every stored one. Pages of 3, each going on from the last one's last
 * event as its next link does, list all 16 once, in the listings' order. And a page read past
 * a full store page leaves out the active events after that page's last row (the next page's
 * read finds them): the first read holds the store's 4 rows and u0, u1 (6, not 14), the
 * second its 4 rows and u1 (5, not 13), so a page's work stays bounded by the page, not by the
 * devices in one ongoing fault. Fails with no such skip (14 and 13 events read), and with one
 * made while the store page was not full (u2..u9 never listed). */
static void test_anomaly_pages_skip_unlisted_active(void **state)
{
    (void)state;
    enum { LIMIT = 3, NSTORED = 6, NACTIVE = 10 };
    char dir[] = "/tmp/vigil-evpage-XXXXXX";
    store_t *s = dfx_store_open(dir, 2);
    batch_t b;
    batch_init(&b);
    /* The store lists the events of the devices it knows: "s" is made by a reading. */
    assert_int_equal(batch_point_begin(&b, "s", 1, 1, 0), 0);
    assert_int_equal(batch_field_add(&b, "v", 1, 1.0), 0);
    assert_int_equal(batch_point_commit(&b), 1);
    assert_int_equal(store_write(s, &b), 0);
    batch_reset(&b);
    for (int i = 1; i <= NSTORED; i++) {
        char js[160];
        snprintf(js, sizeof js,
                 "{\"device\":\"s\",\"id\":%d,\"start_ts\":%d,\"end_ts\":%d,\"active\":false}", i,
                 1000 * i, 1000 * i + 10);
        assert_int_equal(store_event_put(s, "s", i, 1000 * i, 1000 * i + 10, js), 0);
    }
    assert_int_equal(store_flush(s), 0);

    pipeline_opts_t o;
    pipeline_opts_default(&o);
    o.workers = 1;
    pipeline_t *p = NULL;
    assert_int_equal(pipeline_create(&p, &o, s), 0);
    char name[NACTIVE][4];
    for (int k = 0; k < NACTIVE; k++) {
        snprintf(name[k], sizeof name[k], "u%d", k);
        assert_int_equal(batch_point_begin(&b, name[k], 2, 1, 0), 0);
        assert_int_equal(batch_field_add(&b, "v", 1, 1.0), 0);
        assert_int_equal(batch_point_commit(&b), 1);
    }
    pipeline_feed(p, &b);
    pipeline_drain(p);
    batch_deinit(&b);
    for (int k = 0; k < NACTIVE; k++) {
        struct dev *d = pipeline__find(p, name[k]);
        assert_non_null(d);
        pthread_mutex_lock(&d->mu);
        struct event *e = pipeline__event_add(p, d);
        assert_non_null(e);
        e->id = 1;
        e->start_ts = k == 0 ? 5500 : k == 1 ? 3000 : 100 + k;
        e->end_ts = -1;
        pthread_mutex_unlock(&d->mu);
    }

    /* The whole listing, in order: (device, start). */
    static const struct {
        const char *dev;
        int64_t start;
    } want[] = {{"s", 6000}, {"u0", 5500}, {"s", 5000}, {"s", 4000}, {"u1", 3000}, {"s", 3000},
                {"s", 2000}, {"s", 1000},  {"u9", 109}, {"u8", 108}, {"u7", 107},  {"u6", 106},
                {"u5", 105}, {"u4", 104},  {"u3", 103}, {"u2", 102}};
    static const size_t read_want[] = {6, 5};
    size_t got = 0;
    int64_t to = VTIME_MAX_MS + 1, tie_id = 0; /* the API's defaults: from 0 to the last time */
    char tie_dev[8] = "";
    for (int page = 0; page < 10; page++) {
        char *out = NULL;
        assert_int_equal(pipeline_anomalies(p, NULL, 0, VTIME_MIN_MS, to, page ? tie_dev : NULL,
                                            tie_id, LIMIT, &out),
                         0);
        json_t *v = json_loads(out, 0, NULL);
        free(out);
        assert_non_null(v);
        json_t *arr = json_incref(json_object_get(v, "anomalies"));
        json_decref(v);
        const size_t n = json_array_size(arr);
        if (page < 2)
            assert_int_equal(n, read_want[page]);
        const size_t k = api__events_page(&arr, LIMIT, 1 << 20);
        assert_true(k >= 1 && k <= LIMIT);
        for (size_t i = 0; i < k; i++, got++) {
            const json_t *e = json_array_get(arr, i);
            assert_true(got < sizeof want / sizeof want[0]);
            assert_string_equal(json_string_value(json_object_get(e, "device")), want[got].dev);
            assert_int_equal(json_integer_value(json_object_get(e, "start_ts")), want[got].start);
        }
        const json_t *last = json_array_get(arr, k - 1);
        to = json_integer_value(json_object_get(last, "start_ts"));
        tie_id = json_integer_value(json_object_get(last, "id"));
        snprintf(tie_dev, sizeof tie_dev, "%s", json_string_value(json_object_get(last, "device")));
        json_decref(arr);
        if (k == n)
            break; /* the last page: no next link */
    }
    assert_int_equal(got, sizeof want / sizeof want[0]);
    pipeline_destroy(p);
    dfx_store_remove(s, dir);
}

/* tie's stored detector's last_ts (its detectors row; -1: none), the store's queue flushed. */
static int64_t saved_last_ts(store_t *s)
{
    struct blob_copy c = {NULL, 0, -1};
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(store_detectors_load(s, copy_blob, &c), 0);
    free(c.buf);
    return c.last_ts;
}

/* Review of events65 (session 65): a save met while tie's newest event is the catch-up's
 * provisional one (event.prov; a training's save, member_end's pipeline__save, as much as a
 * periodic one) is held; through a save skipped while another training is unconfirmed, and
 * numbered at the drain's settle then, it stays held (not made: the store may not hold that
 * training's version); that training undone (member_undo saves nothing), tie's next scored
 * reading makes it. Without the held save (main) nothing is saved until save_every readings
 * later: no detectors row at all here. */
static void test_save_held_through_unconfirmed(void **state)
{
    (void)state;
    char dir[] = "/tmp/vigil-evheld-XXXXXX";
    store_t *s = dfx_store_open(dir, 2);
    pipeline_t *p = NULL;
    struct dev *d = tie_device_in(&p, s); /* readings at 1 and 2 s scored, nothing saved */
    step(p, d, 3000, DET_ANOMALY, 9.0f);  /* opens an event */
    pthread_mutex_lock(&d->mu);
    struct event *e = &d->events[d->nevents - 1];
    e->prov = 1; /* as the catch-up's opening before a stored row's start (event_next_id) */
    assert_int_equal(pipeline__save(p, d), 0); /* held */
    pthread_mutex_unlock(&d->mu);
    assert_int_equal(saved_last_ts(s), -1);
    pthread_mutex_lock(&d->mu);
    d->unconfirmed = 1;                        /* a training applied, its version not yet found */
    assert_int_equal(pipeline__save(p, d), 0); /* a periodic one then: skipped, still held */
    pthread_mutex_unlock(&d->mu);
    pipeline__event_replay_settle(p, d);
    e = &d->events[d->nevents - 1];
    assert_int_equal(e->prov, 0);
    assert_true(e->id != 0);
    assert_int_equal(saved_last_ts(s), -1); /* still held */
    pthread_mutex_lock(&d->mu);
    d->unconfirmed = 0; /* undone */
    pthread_mutex_unlock(&d->mu);
    batch_t b;
    batch_init(&b);
    assert_int_equal(batch_point_begin(&b, "tie", 3, 4000, 0), 0);
    assert_int_equal(batch_field_add(&b, "a", 1, 10.0), 0);
    assert_int_equal(batch_field_add(&b, "b", 1, 5.0), 0);
    assert_int_equal(batch_point_commit(&b), 1);
    pipeline_feed(p, &b);
    pipeline_drain(p);
    batch_deinit(&b);
    assert_int_equal(saved_last_ts(s), 4000);
    pipeline_destroy(p);
    dfx_store_remove(s, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_side_on_tie),
        cmocka_unit_test(test_peak_is_highest_score),
        cmocka_unit_test(test_sides_across_restore),
        cmocka_unit_test(test_sides_format4),
        cmocka_unit_test(test_anomaly_pages_skip_unlisted_active),
        cmocka_unit_test(test_save_held_through_unconfirmed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

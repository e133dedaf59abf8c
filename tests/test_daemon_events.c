/* tests/test_daemon_events.c: a device's anomaly events (daemon/pipeline_events.c) driven
 * directly with detector results, no store: the sides their channels are given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "pipeline_int.h"

/* A pipeline without a store and its device "tie" with channels a and b (two points scored). */
static struct dev *tie_device(pipeline_t **p)
{
    pipeline_opts_t o;
    pipeline_opts_default(&o);
    o.workers = 1;
    assert_int_equal(pipeline_create(p, &o, NULL), 0);
    batch_t b;
    batch_init(&b);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(batch_point_begin(&b, "tie", 3, 1000 + k * 1000, 0), 0);
        assert_int_equal(batch_field_add(&b, "a", 1, 10.0), 0);
        assert_int_equal(batch_field_add(&b, "b", 1, 5.0), 0);
        assert_int_equal(batch_point_commit(&b), 1);
    }
    pipeline_feed(*p, &b);
    pipeline_drain(*p);
    batch_deinit(&b);
    struct dev *d = pipeline__find(*p, "tie");
    assert_non_null(d);
    assert_int_equal(d->nch, 2);
    return d;
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
    step(p, d, 3000, DET_ANOMALY, 9.0f);  /* below */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_side_on_tie),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

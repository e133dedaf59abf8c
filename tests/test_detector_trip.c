/* tests/test_detector_trip.c: the trip-level alarm (detector_config.trip_level; docs/detection.md,
 * seventy-ninth round and "The trip-level alarm as the default (session 48)"): an onset ranked at
 * the trip level is an alarm at once, and a format-47 save loads without it. Moved unchanged from
 * test_detector_onset.c (session 49), which had grown past its size. */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "detector.h"
#include "err.h"
#include "test_detector_fx.h"

/* ---- seventy-ninth round: an onset ranked at the trip level is an alarm at once (trip_level) -- */

/* An AR(1) level (0.5, innovations 0.1) with a burst of two readings of +by at 1,400 (6-10
 * innovation deviations: within what the device has shown as a value, far beyond it as an error
 * after a quiet), run with trip_level `trip` (the rest the defaults), saved and reloaded at
 * save_at (0: never) with the copy run beside it. Returns the readings from 1,300 on whose
 * reported score is at least `level` and whose state is not anomaly; *trips the readings that
 * entered state anomaly opened by the error and left it on the next reading ended cleared (a
 * trip's one-reading episode); *bad the readings that left state anomaly with no reason or
 * entered it with none. */
static int trip_run(uint64_t seed, float by, float trip, float level, int save_at, int *trips,
                    int *bad)
{
    enum { N = 1500 };
    float x[N];
    make_trip_burst(x, N, seed, by);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.trip_level = trip;
    detector_t *d = new_detector_cfg(&cfg, 1), *e = NULL;
    struct detector_result res;
    int quiet = 0, opened_at = -2, was = 0;
    *trips = *bad = 0;
    for (int t = 0; t < N; t++) {
        step_twin(d, &e, save_at, x, t, 1, &res);
        const int is = res.state == DET_ANOMALY;
        quiet += t >= 1300 && res.score >= level && !is;
        if (is && !was) {
            opened_at = res.opened_by == DET_OPEN_ERROR ? t : -2;
            *bad += res.opened_by == DET_OPEN_NONE;
        } else if (!is && was) {
            *trips += opened_at == t - 1 && res.ended_by == DET_END_CLEARED;
            *bad += res.ended_by == DET_END_NONE;
        } else {
            *bad += res.opened_by != DET_OPEN_NONE || res.ended_by != DET_END_NONE;
        }
        *bad += is != was && !res.changed; /* changed follows the reported state */
        was = is;
    }
    detector_destroy(d);
    detector_destroy(e);
    return quiet;
}

/* Bursts of +0.6, +0.8 and +1.0 (seeds 1-4). With trip_level 0 (the on-delay alone) some onset
 * is reported at 0.8 or above while confirm (or open_median) keeps the state out of anomaly:
 * the case the trip is for. In the default config (trip_level 0.8) no reading at 0.8 or above
 * is outside state anomaly, and those onsets are one-reading episodes opened by the error and
 * ended cleared on the next reading (never without a reason, which the daemon would read as a
 * reset); a save and load on the trip's reading, or the one before it, continues bit for bit
 * and still ends it cleared. */
static void test_trip_level(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_true(def.trip_level == 0.8f);
    const float by[3] = {0.6f, 0.8f, 1.0f};
    int held0 = 0, cases0 = 0, held = 0, tripped = 0;
    for (uint64_t seed = 1; seed <= 4; seed++)
        for (int b = 0; b < 3; b++) {
            int trips0, bad0, trips, bad;
            const int q0 = trip_run(seed, by[b], 0.0f, 0.8f, 0, &trips0, &bad0);
            const int q = trip_run(seed, by[b], def.trip_level, 0.8f, 0, &trips, &bad);
            print_message("seed %d burst +%.1f: readings at 0.8 not in anomaly %d with "
                          "trip_level 0, %d at the default; trips %d (%d with 0)\n",
                          (int)seed, (double)by[b], q0, q, trips, trips0);
            held0 += q0;
            cases0 += q0 > 0;
            held += q;
            tripped += trips;
            assert_int_equal(bad, 0);
            assert_int_equal(bad0, 0);
            if (q0 > 0) /* a one-reading episode more where the on-delay held the onset */
                assert_true(trips > trips0);
            for (int at = 1400; at <= 1402; at++) {
                int ts, bs;
                trip_run(seed, by[b], def.trip_level, 0.8f, at, &ts, &bs);
                assert_int_equal(ts, trips);
                assert_int_equal(bs, 0);
            }
        }
    assert_true(cases0 >= 1);
    assert_int_equal(held, 0);
    assert_true(tripped >= 1);
}

/* A format-47 save (no trip_level in its config, no trip bit) of a trip run's detector (seed 2,
 * burst +0.8, one of the cases the trip is for), cut at 1,350 before the burst, loads with
 * trip_level 0 and continues bit for bit as the saved detector run without it: the onset stays
 * out of state anomaly, as it did. */
static void test_load_format47(void **unused)
{
    (void)unused;
    enum { N = 1500 };
    float x[N];
    make_trip_burst(x, N, 2, 0.8f);
    struct detector_config cfg;
    detector_config_default(&cfg);
    double top;
    int opened;
    cut_and_continue(&cfg, 1, x, N, 1350, offsetof(struct detector_config, trip_level), -1, 47,
                     &top, &opened);
    print_message("format 47 load: largest score %.3f after the cut, %d anomalies opened\n", top,
                  opened);
    assert_true(top >= 0.8);
    assert_int_equal(opened, 0);
}

const struct CMUnitTest detector_trip_tests[] = {
    cmocka_unit_test(test_trip_level),
    cmocka_unit_test(test_load_format47),
};
const size_t detector_trip_count = sizeof detector_trip_tests / sizeof detector_trip_tests[0];

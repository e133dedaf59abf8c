/* tests/test_detector_inputs.c: unit tests of input-only channels (struct detector_config's
 * input, format 49): a set point the predictors read but the score never judges. Part of
 * test_detector: tests/test_detector.c runs them; the fixtures shared with the other parts are
 * in tests/test_detector_fx.c. */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "detector.h"
#include "detector_int.h"
#include "err.h"
#include "test_detector_fx.h"

#define IN_N 6000
#define IN_C 3

/* A plant run by a set point (read69b's generator, three channels): sp, channel 0, is a square
 * wave between 1 and 0.7 switched every 300 readings; flow follows it, and so does pres, with
 * noise. From fault_at on (-1: never) flow drifts away by 0.05 a reading. Caller frees. */
static float *make_set_point(uint64_t seed, int fault_at)
{
    float *x = malloc(sizeof(float) * IN_N * IN_C);
    assert_non_null(x);
    for (int t = 0; t < IN_N; t++) {
        double sp = (t / 300) % 2 == 0 ? 1.0 : 0.7;
        x[t * IN_C + 0] = (float)sp;
        x[t * IN_C + 1] = (float)(50 * sp + 2 * sin(t / 40.0) + 0.5 * gauss(&seed));
        x[t * IN_C + 2] = (float)(3 * sp * sp + 0.05 * sin(t / 40.0) + 0.03 * gauss(&seed));
        if (fault_at >= 0 && t >= fault_at)
            x[t * IN_C + 1] += (float)(0.05 * (t - fault_at));
    }
    return x;
}

/* Runs x on the defaults with sp an input or not; returns the episodes opened from 2,500 on
 * that last 50 readings or more (to the end counts) and sets *first to the first such one's
 * reading (-1: none); *all gets every episode opened from 2,500 on. With sp an input, asserts on
 * every reading that sp takes no share and is never the top channel, and that a reloaded copy
 * (saved at 3,000) still has sp as its input and answers bit for bit. */
static int run_set_point(const float *x, int sp_input, int *first, int *all)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.input[0] = (uint8_t)sp_input;
    detector_t *d = new_detector_cfg(&cfg, IN_C), *e = NULL;
    assert_int_equal(detector_is_input(d, 0), sp_input);
    assert_int_equal(detector_is_input(d, 1), 0);
    struct detector_result r;
    int opened = 0, at = -1;
    *first = -1;
    *all = 0;
    for (int t = 0; t < IN_N; t++) {
        step_twin(d, &e, sp_input ? 3000 : 0, x, t, IN_C, &r);
        if (sp_input && detector_get_state(d) != DET_LEARNING) {
            assert_true(r.contrib[0] == 0.0f);
            assert_int_not_equal(r.top_channel, 0);
        }
        if (t >= 2500 && r.changed && r.is_anomaly) {
            at = t;
            ++*all;
        }
        if (at >= 0 && (!r.is_anomaly || t == IN_N - 1)) {
            if (t + r.is_anomaly - at >= 50) {
                opened++;
                if (*first < 0)
                    *first = at;
            }
            at = -1;
        }
    }
    if (e)
        assert_int_equal(detector_is_input(e, 0), sp_input);
    detector_destroy(d);
    detector_destroy(e);
    return opened;
}

/* Read69b's finding 2: set-point switches the device has shown many times open long episodes
 * (the step test's, held while the step lasts) when sp is scored as a sensor; marked as an
 * input, none that long opens (a switch may still open one of a reading or two on the
 * prediction error: flow follows sp in the same reading, which a one-step predictor cannot
 * see), and a fault on flow is caught and held. */
static void test_set_point_input(void **state)
{
    (void)state;
    float *x = make_set_point(7, -1);
    int first, all_s, all_m;
    int scored = run_set_point(x, 0, &first, &all_s);
    int marked = run_set_point(x, 1, &first, &all_m);
    print_message("set point scored: %d episodes (%d of 50 readings or more); marked as an "
                  "input: %d (%d)\n",
                  all_s, scored, all_m, marked);
    assert_int_equal(marked, 0);
    assert_true(scored >= 3);
    assert_true(all_m < all_s);
    free(x);
    float *f = make_set_point(7, 4000);
    marked = run_set_point(f, 1, &first, &all_m);
    assert_true(marked >= 1);
    assert_true(first >= 4000 && first < 4200);
    free(f);
}

/* An input flag other than 0 or 1 is refused. */
static void test_input_flag_checked(void **state)
{
    (void)state;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.input[2] = 2;
    detector_t *d = NULL;
    assert_int_equal(detector_create(&d, &cfg, IN_C), ERR_INVAL);
    assert_null(d);
}

/* A format-48 save (no input field) of a detector on the set-point series, cut at 3,000: loads
 * with no inputs and continues bit for bit as the saved one; the same bytes claimed as 49 are
 * refused (the config is short by the field). */
static void test_format48_loads_without_inputs(void **state)
{
    (void)state;
    float *x = make_set_point(3, -1);
    detector_t *a = new_detector(IN_C), *b = NULL;
    struct detector_result ra, rb;
    for (int t = 0; t < 3000; t++)
        step(a, x, t, IN_C, NULL, &ra);
    size_t len = detector_save_size(a), got;
    unsigned char *buf = malloc(len), *as49 = malloc(len);
    assert_non_null(buf);
    assert_non_null(as49);
    assert_int_equal(detector_save(a, buf, len, &got), 0);
    cut_to_format(buf, &len, offsetof(struct detector_config, input), 0, 48);
    memcpy(as49, buf, len);
    as_format6(as49, &len, 49);
    assert_int_not_equal(detector_load(&b, as49, len), 0);
    as_format6(buf, &len, 48);
    assert_int_equal(detector_load(&b, buf, len), 0);
    for (int c = 0; c < IN_C; c++)
        assert_int_equal(detector_is_input(b, c), 0);
    for (int t = 3000; t < IN_N; t++) {
        step(a, x, t, IN_C, NULL, &ra);
        step(b, x, t, IN_C, NULL, &rb);
        assert_same_result(&ra, &rb, IN_C);
    }
    detector_destroy(a);
    detector_destroy(b);
    free(as49);
    free(buf);
    free(x);
}

const struct CMUnitTest detector_inputs_tests[] = {
    cmocka_unit_test(test_format48_loads_without_inputs),
    cmocka_unit_test(test_set_point_input),
    cmocka_unit_test(test_input_flag_checked),
};
const size_t detector_inputs_count = sizeof detector_inputs_tests / sizeof detector_inputs_tests[0];

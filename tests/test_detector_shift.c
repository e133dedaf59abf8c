/* tests/test_detector_shift.c: unit tests of the step test (model/detector_shift.c): shift_len,
 * shift_plain, shift_release, the window sums kept incrementally, settle_release, shift_confirm
 * and shift_winsor, with their formats. Part of test_detector: tests/test_detector.c runs them,
 * in the order of the single file they were moved from; the fixtures shared with the other
 * parts are in tests/test_detector_fx.c. */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "detector.h"
#include "detector_int.h" /* test_shift_sums_incremental reads the window sums */
#include "err.h"
#include "test_detector_fx.h"

/* ---- eleventh round: the step test (shift_len) ------------------------------------------- */

/* Runs make_step_drift(1800, 1500, by, drift, seed) through a detector with shift_len as given
 * (the defaults otherwise); returns the readings from the onset to the first flagged one (-1:
 * never), with *before the anomalies opened before the onset, *top the top channel at the
 * first flagged reading and *held the flagged readings from the onset on (300). With save_at >
 * 0, a copy loaded from a save there runs beside it and must agree bit for bit. */
static int step_drift_delay(int shift_len, int op_point, double by, double drift, uint64_t seed,
                            int save_at, int *before, int *top, int *held)
{
    const int n = 1800, onset = 1500, C = 6;
    float *x = make_step_drift(n, onset, by, drift, seed);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_len = shift_len;
    cfg.op_point = op_point;
    /* The schedule's trainings as this round measured them: make_step_drift's temperature
     * drift, which opens an episode in some seeds and grows, would put them off with
     * accept_grow (docs/detection.md, "Sixty-third round"). */
    cfg.accept_grow = 0.0f;
    return onset_run(&cfg, x, n, C, onset, save_at, before, top, held);
}

/* The step test on its own (op_point 0, which a step of this size would also trip): a flow
 * level (AR(1), coefficient 0.95, the ninth round's) steps down by 8 stationary deviations at
 * reading 1,500 and stays there, while from reading 1,000 a temperature drifts by 4 units (200
 * of its noise deviations) into a range it never had, seeds 1-6. The one-step error flags the
 * onset (or not: seed 6), then lets go, since the predictor follows the new level: without the
 * test no seed holds it for 250 of the 300 readings after it (1-101 measured). With it the step
 * is held (270-296 measured) once the test sees it, and it opens no episode of its own before
 * the onset, drift or not (the episodes the error opens there, seeds 4 and 5, are the same
 * without it). A save at 1,400, loaded, continues bit for bit through the step (format 11's
 * state). */
static void test_shift_step_held(void **unused)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.shift_len, 32);
    int held_off = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int b1, t1, h1, b0, t0, h0;
        int on = step_drift_delay(32, 0, 8.0, 4.0, seed, seed == 1 ? 1400 : -1, &b1, &t1, &h1);
        int off = step_drift_delay(0, 0, 8.0, 4.0, seed, -1, &b0, &t0, &h0);
        print_message("seed %d: shift_len 32: delay %d top %d, %d of 300 flagged (%d before); "
                      "0: delay %d top %d, %d flagged (%d before)\n",
                      (int)seed, on, t1, h1, b1, off, t0, h0, b0);
        assert_int_equal(b1, b0);
        assert_true(on >= 0 && on <= 2 * def.shift_len);
        assert_true(h1 >= 250);
        held_off += h0 >= 250;
    }
    assert_int_equal(held_off, 0);
}

/* ---- fourteenth round: the plain difference where it is the better estimate (shift_plain) -- */

/* make_step_drift's pump, but its flow (channel 0) is white noise of deviation 1 around 30, as
 * SKAB's flows are (lag-1 autocorrelation near 0), stepping down by `by` deviations from reading
 * 1,500; the temperature drifts by 4 units from reading 1,000 as there. Runs it through a
 * detector with the defaults and shift_plain as given; returns the readings from the onset to
 * the first flagged one (-1: never), *before the anomalies opened before the onset, *held the
 * flagged readings from the onset on (300). With save_at > 0, a copy loaded from a save there
 * runs beside it and must agree bit for bit. */
static int plain_step_run(int shift_plain, double by, uint64_t seed, int save_at, int *before,
                          int *held)
{
    const int n = 2150, onset = 1850, C = 6;
    float *x = make_step_drift(n, onset, 0.0, 4.0, seed);
    uint64_t s = seed * 7919u + 17u;
    for (int t = 0; t < n; t++)
        x[C * t + 0] = (float)(30.0 + gauss(&s) - (t >= onset ? by : 0.0));
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_plain = shift_plain;
    /* The schedule's trainings as this round measured them: make_step_drift's temperature
     * drift, which opens an episode in some seeds and grows, would put them off with
     * accept_grow (docs/detection.md, "Sixty-third round"). */
    cfg.accept_grow = 0.0f;
    int top;
    return onset_run(&cfg, x, n, C, onset, save_at, before, &top, held);
}

/* A flow that is white noise around its level (deviation 1) steps down by 2 deviations at
 * reading 1,850 while the temperature has drifted 4 units (200 of its noise deviations) since
 * reading 1,000, seeds 1-6, the defaults otherwise. The lines' jump (shift_len's estimate) has a
 * deviation of half a spread on such a channel, the plain difference of the two 32-reading means
 * a quarter: with shift_plain the flow's plain difference is chosen (its deviation since the
 * training is the smaller) and the step is held in every seed (271-290 of the 300 readings after
 * it measured, first flagged 7-29 readings after it), without it only where the one-step error
 * happens to catch it (seeds 2 and 6: 272; the others 0-43). The temperature keeps the lines'
 * jump (its plain difference varies far more since the training), so the setting opens nothing
 * before the onset that the defaults do not (seed 5 opens one there either way). Asserted: held
 * at least 250 in every seed with it, in at most 2 without (so the test fails with the setting
 * off), flagged within 2 shift_len readings, the same openings before the onset. A save at
 * 1,800, loaded, continues bit for bit through the step (format 13's state). */
static void test_shift_plain_small_step(void **unused)
{
    struct detector_config def;
    detector_config_default(&def);
    int held_off = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int b1, h1, b0, h0;
        int on = plain_step_run(1, 2.0, seed, seed == 1 ? 1800 : -1, &b1, &h1);
        int off = plain_step_run(0, 2.0, seed, -1, &b0, &h0);
        print_message("seed %d: shift_plain 1: delay %d, %d of 300 held (%d before); "
                      "0: delay %d, %d held (%d before)\n",
                      (int)seed, on, h1, b1, off, h0, b0);
        assert_int_equal(b1, b0);
        assert_true(on >= 0 && on <= 2 * def.shift_len);
        assert_true(h1 >= 250);
        held_off += h0 >= 250;
    }
    assert_true(held_off <= 2);
}

/* A format-12 save (no shift_plain in its config; junk where the field lies in the config's
 * tail padding) of a six-channel detector with the step test on loads with shift_plain 0 and
 * continues bit for bit as the saved detector (through a step of 8 deviations, which opens an
 * episode); the same bytes claimed as format 13 are refused (the junk is not a valid
 * shift_plain). */
static void test_load_format12(void **unused)
{
    enum { N = 2150, CUT = 1800, C = 6 };
    float *x = make_step_drift(N, 1850, 8.0, 4.0, 3);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, N, CUT, C,
                                   offsetof(struct detector_config, shift_plain), 256, 12);
    print_message("format 12 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* A format-13 save (no shift_release in its config; junk where the field lies in the config's
 * tail padding) of a six-channel detector with the step test and shift_plain on loads with
 * shift_release 0 and continues bit for bit as the saved detector (through a step of 8 deviations,
 * which opens an episode); the same bytes claimed as format 14 are refused (the junk is not a valid
 * shift_release). */
static void test_load_format13(void **unused)
{
    enum { N = 2150, CUT = 1800, C = 6 };
    float *x = make_step_drift(N, 1850, 8.0, 4.0, 3);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_plain = 1;
    int opened = load_older_format(&cfg, x, N, CUT, C,
                                   offsetof(struct detector_config, shift_release), 256, 13);
    print_message("format 13 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* ---- sixteenth round: the step hold released by the step back (shift_release) ------------- */

/* plain_step_run's pump (its flow white noise of deviation 1 around 30), the flow stepping down
 * by `by` deviations at reading 1,850 and back up at 2,150 (a valve that reopens), the
 * temperature drifting as there; shift_plain on, shift_release as given. Returns the flagged
 * readings in the 150 after the return; *held gets the flagged readings of the 300 in the
 * fault, *before the anomalies opened before the onset. */
static int release_run(int shift_release, double by, uint64_t seed, int *before, int *held)
{
    const int n = 2300, onset = 1850, back = 2150, C = 6;
    float *x = make_step_drift(n, onset, 0.0, 4.0, seed);
    uint64_t s = seed * 7919u + 17u;
    for (int t = 0; t < n; t++)
        x[C * t + 0] = (float)(30.0 + gauss(&s) - (t >= onset && t < back ? by : 0.0));
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_plain = 1;
    cfg.shift_release = shift_release;
    /* The schedule's trainings as this round measured them: make_step_drift's temperature
     * drift, which opens an episode in some seeds and grows, would put them off with
     * accept_grow (docs/detection.md, "Sixty-third round"). */
    cfg.accept_grow = 0.0f;
    detector_t *d = new_detector_cfg(&cfg, C);
    struct detector_result res;
    int after = 0;
    *before = *held = 0;
    for (int t = 0; t < n; t++) {
        step(d, x, t, C, NULL, &res);
        if (t < onset)
            *before += res.changed && res.state == DET_ANOMALY;
        else if (t < back)
            *held += res.is_anomaly;
        else
            after += res.is_anomaly;
    }
    detector_destroy(d);
    free(x);
    return after;
}

/* The flow steps down by 3 deviations for 300 readings and comes back, seeds 1-6. Without the
 * release the hold lasts until the newest shift_len readings' mean crosses the midpoint between
 * the two levels (about shift_len / 2 readings after the return); with it the step back, judged
 * at alarm_level for the one channel, ends it sooner. Asserted: the fault is held as well with it
 * (at least 250 of its 300 readings in every seed, so the release does not fire inside it), the
 * same openings before the onset, and fewer flagged readings after the return with it than
 * without it in every seed (measured: 11-15 against 23-27; so the test fails with it off). */
static void test_shift_release(void **unused)
{
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int b1, h1, b0, h0;
        int on = release_run(1, 3.0, seed, &b1, &h1);
        int off = release_run(0, 3.0, seed, &b0, &h0);
        print_message("seed %d: shift_release 1: %d of 300 held, %d flagged after the return (%d "
                      "before); 0: %d held, %d after (%d before)\n",
                      (int)seed, h1, on, b1, h0, off, b0);
        assert_int_equal(b1, b0);
        assert_true(h1 >= 250);
        assert_true(on < off);
    }
}

/* ---- session 10: the step test's window sums kept incrementally --------------------------- */

/* Channel c's direct sums over the context ring's newest 2 q - 1 rows, the window sums d keeps
 * (detector_int.h, sw_sum and sw_suv): out[0], out[1] P's sum and sum of u v over its q rows,
 * out[2], out[3] Q's over its q - 1; mag[k] the sum of out[k]'s terms' magnitudes. */
static void direct_sums(const detector_t *d, int q, int c, double *out, double *mag)
{
    const int cap = d->ctx_cap, C = d->C;
    const double m = 0.5 * (q - 1);
    for (int k = 0; k < 4; k++)
        out[k] = mag[k] = 0.0;
    for (int i = 0; i < 2 * q - 1; i++) {
        const int row = ((d->ctx_head - (2 * q - 1) + i) % cap + cap) % cap, h = i >= q;
        const double v = d->ctx[(size_t)row * C + c], u = (h ? i - q : i) - m;
        out[2 * h] += v;
        mag[2 * h] += fabs(v);
        out[2 * h + 1] += u * v;
        mag[2 * h + 1] += fabs(u * v);
    }
}

/* 1 when d's window sums are valid, after asserting that each is within 1e-12 of its terms'
 * magnitudes of the direct sum (relative to the sum itself on these readings: tighter than
 * 1e-9); 0 when they are not valid (nothing to check). */
static int sums_checked(const detector_t *d, int q)
{
    if (!d->sw_ok)
        return 0;
    for (int c = 0; c < d->C; c++) {
        double ref[4], mag[4];
        direct_sums(d, q, c, ref, mag);
        const double got[4] = {d->sw_sum[0][c], d->sw_suv[0][c], d->sw_sum[1][c], d->sw_suv[1][c]};
        for (int k = 0; k < 4; k++)
            if (!(fabs(got[k] - ref[k]) <= 1e-12 * mag[k]))
                fail_msg("channel %d sum %d: kept %.17g, direct %.17g", c, k, got[k], ref[k]);
    }
    return 1;
}

/* The window sums over 3,000 readings of make_step_drift's six channels (seed 7, the defaults:
 * q = 32, a context ring of 64 rows, so 46 wraps): the flow steps down by 8 deviations at
 * 1,500 (an episode), the temperature drifts from 1,000, trainings on schedule. After every
 * reading from the first test on, except those after which a training was applied (its reseed
 * drops the sums until the next test), the sums are valid and equal the direct sums. A save in
 * the episode (1,560), loaded, starts without them; rebuilt, they equal the saved detector's to
 * the bit, and the copy answers as the original to the end. A reading of 3e12 on the
 * voltage at 2,700 makes the updates round: the sums are then rebuilt from the ring at each
 * of the 2 q readings it is in the window (invalid after each), and valid again after. */
static void test_shift_sums_incremental(void **unused)
{
    enum { N = 3000, C = 6, SAVE_AT = 1560, SPIKE = 2700 };
    float *x = make_step_drift(N, 1500, 8.0, 4.0, 7);
    x[C * SPIKE + 5] = 3e12f;
    struct detector_config cfg;
    detector_config_default(&cfg);
    /* The schedule's trainings as this round measured them: make_step_drift's temperature
     * drift, which opens an episode in some seeds and grows, would put them off with
     * accept_grow (docs/detection.md, "Sixty-third round"). */
    cfg.accept_grow = 0.0f;
    const int q = cfg.shift_len;
    detector_t *d = new_detector_cfg(&cfg, C), *e = NULL;
    assert_true(d->ctx_cap >= 2 * q);
    const int trained0 = trainings;
    int first = -1, checked = 0, reseeds = 0, anomaly = 0, invalid_after_spike = 0;
    struct detector_result res, re;
    for (int t = 0; t < N; t++) {
        const int before = trainings;
        step(d, x, t, C, NULL, &res);
        if (e) {
            step(e, x, t, C, NULL, &re);
            assert_same_result(&res, &re, C);
            sums_checked(e, q);
        }
        if (first < 0 && d->sw_ok)
            first = t;
        anomaly += t >= 1500 && res.state == DET_ANOMALY;
        if (trainings > before && first >= 0) {
            reseeds++;
            assert_false(d->sw_ok);
            continue;
        }
        if (first < 0)
            continue;
        if (t >= SPIKE && t < SPIKE + 2 * q) {
            invalid_after_spike += !d->sw_ok;
            continue;
        }
        checked += sums_checked(d, q);
        if (t == SAVE_AT) {
            e = reloaded(d);
            assert_false(e->sw_ok);
            assert_int_equal(detector__shift_sums(e), q);
            assert_true(e->sw_ok);
            for (int h = 0; h < 2; h++) {
                assert_memory_equal(e->sw_sum[h], d->sw_sum[h], sizeof(double) * C);
                assert_memory_equal(e->sw_suv[h], d->sw_suv[h], sizeof(double) * C);
            }
        }
    }
    print_message("first test at %d, %d trainings (%d after it), sums checked after %d readings, "
                  "%d anomaly readings from the step, invalid after %d readings of the spike\n",
                  first, trainings - trained0, reseeds, checked, anomaly, invalid_after_spike);
    assert_true(first >= 0 && first < 400);
    assert_true(reseeds >= 2);
    assert_true(anomaly >= 250);
    assert_int_equal(invalid_after_spike, 2 * q);
    assert_int_equal(checked, N - first - reseeds - 2 * q);
    detector_destroy(d);
    detector_destroy(e);
    free(x);
}

/* ---- eighteenth round: an episode released when its step has gone back (settle_release) ---- */

/* What the flow does around settle_run's fault window (1,600-1,900). */
enum settle_case {
    SETTLE_RETURNS, /* steps down by 3 deviations and back; the pump runs differently after */
    SETTLE_PERSIST, /* steps down by 3 deviations and stays there */
    SETTLE_GROWING, /* steps down by 3 deviations, then keeps falling 3 more per 300 readings */
    SETTLE_SWING    /* steps down by 3 deviations, then swings to 3 above its level */
};

/* release_run's pump (shift_plain and shift_release on, the defaults otherwise), the flow as
 * `kind` says, through a detector with settle_release as given (trainings as they fall due,
 * inline). Returns the flagged readings in the 150 after 2,150; *held gets the flagged readings
 * of the 300 in the fault window, *before the anomalies opened before the onset, *released the
 * readings with `released` set. With save_at > 0 a copy loaded from a save there runs beside it
 * and must agree bit for bit. */
static int settle_run(int settle, enum settle_case kind, uint64_t seed, int save_at, int *before,
                      int *held, int *released)
{
    const int n = 2190, onset = 1600, back = 1900, C = 6;
    float *x = make_step_drift(n, onset, 0.0, 4.0, seed);
    uint64_t s = seed * 7919u + 17u;
    for (int t = 0; t < n; t++) {
        double off = 0.0, sd = 1.0;
        if (t >= onset)
            off = kind == SETTLE_GROWING   ? -3.0 - 3.0 * (t - onset) / 300.0
                  : t < back               ? -3.0
                  : kind == SETTLE_SWING   ? 3.0
                  : kind == SETTLE_PERSIST ? -3.0
                                           : 0.0;
        x[C * t + 0] = (float)(30.0 + sd * gauss(&s) + off);
        /* After the return the pump runs differently: channel 3 follows the cycle of channel 2
         * with a gain of 0.8 instead of 0.5 (6 of its noise deviations at the peaks; its mean
         * stays), which the model's prediction error sees and its level does not. */
        if (t >= back && kind == SETTLE_RETURNS)
            x[C * t + 3] += (float)(0.3 * sin(2.0 * 3.14159265358979 * t / 60.0));
    }
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_plain = 1;
    cfg.shift_release = 1;
    cfg.settle_release = settle;
    /* The schedule's trainings as this round measured them: make_step_drift's temperature
     * drift, which opens an episode in some seeds and grows, would put them off with
     * accept_grow (docs/detection.md, "Sixty-third round"). */
    cfg.accept_grow = 0.0f;
    detector_t *d = new_detector_cfg(&cfg, C), *e = NULL;
    struct detector_result res, re;
    int after = 0;
    *before = *held = *released = 0;
    for (int t = 0; t < n; t++) {
        if (t == save_at)
            e = reloaded(d);
        step(d, x, t, C, NULL, &res);
        if (e) {
            step(e, x, t, C, NULL, &re);
            assert_same_result(&res, &re, C);
        }
        *released += res.released;
        if (res.released)
            assert_int_equal(res.state, DET_NORMAL); /* it ends as any episode does */
        if (t < onset)
            *before += res.changed && res.state == DET_ANOMALY;
        else if (t < back)
            *held += res.is_anomaly;
        else
            after += res.is_anomaly;
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
    return after;
}

/* A valve fault that ends, and a pump that runs differently after it: the flow steps down by 3
 * deviations for 300 readings, comes back to its level and then runs 6 times noisier, seeds 1-6.
 * Without settle_release the step hold is released by the step back, but the error's
 * likelihood (against the long window, frozen since the opening) holds the episode through the
 * 150 readings after the return; with it the episode ends once the flow has landed back, its
 * result says `released`, and the training it asks for takes the noisier state in. Asserted:
 * a release in every seed with it and none without; fewer flagged readings after the return
 * with it in every seed, and at most half as many in all; the fault itself held as well
 * (at least 250 of 300 either way); the same openings before the onset. A save at 2,100
 * (inside the fault, the hold armed), loaded, continues bit for bit through the release
 * (format 16's state). */
static void test_settle_release(void **unused)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.settle_release, 1); /* the default since the merge */
    int sum1 = 0, sum0 = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int b1, h1, r1, b0, h0, r0;
        int on = settle_run(1, SETTLE_RETURNS, seed, seed == 1 ? 2100 : -1, &b1, &h1, &r1);
        int off = settle_run(0, SETTLE_RETURNS, seed, -1, &b0, &h0, &r0);
        print_message("seed %d: settle_release 1: %d of 300 held, %d of 290 flagged after the "
                      "return, %d released (%d before); 0: %d held, %d after, %d released (%d "
                      "before)\n",
                      (int)seed, h1, on, r1, b1, h0, off, r0, b0);
        assert_int_equal(b1, b0);
        assert_true(h1 >= 250 && h0 >= 250);
        assert_true(r1 >= 1);
        assert_int_equal(r0, 0);
        assert_true(on < off);
        sum1 += on;
        sum0 += off;
    }
    assert_true(2 * sum1 <= sum0);
}

/* Faults that have not ended are not released: the flow's step persists (and the pump runs
 * noisier), keeps growing (3 more deviations over the 300 readings), or swings from 3 below its
 * level to 3 above it (a step back that shift_release sees but that lands far from the old
 * level: a new fault, not a return), seeds 1-6. Asserted: no reading released, and the same
 * flagged readings with settle_release as without it, in the fault window and after it. */
static void test_settle_keeps_faults(void **unused)
{
    static const enum settle_case kinds[] = {SETTLE_PERSIST, SETTLE_GROWING, SETTLE_SWING};
    static const char *names[] = {"persists", "grows", "swings"};
    for (int k = 0; k < 3; k++)
        for (uint64_t seed = 1; seed <= 6; seed++) {
            int b1, h1, r1, b0, h0, r0;
            int on = settle_run(1, kinds[k], seed, -1, &b1, &h1, &r1);
            int off = settle_run(0, kinds[k], seed, -1, &b0, &h0, &r0);
            print_message("%s, seed %d: settle_release 1: %d of 300 held, %d of 290 after, %d "
                          "released; 0: %d held, %d after\n",
                          names[k], (int)seed, h1, on, r1, h0, off);
            assert_int_equal(r1, 0);
            assert_int_equal(h1, h0);
            assert_int_equal(on, off);
            assert_int_equal(b1, b0);
        }
}

/* A format-15 save (no settle_release in its config; junk where the field would lie in the
 * config's tail padding) of a six-channel detector with the step test, shift_plain,
 * shift_release and onset_record on loads with settle_release 0 and continues bit for bit as
 * the saved detector (through a step of 8 deviations, which opens an episode); the same bytes
 * claimed as format 16 are refused. */
static void test_load_format15(void **unused)
{
    enum { N = 2150, CUT = 1800, C = 6 };
    float *x = make_step_drift(N, 1850, 8.0, 4.0, 3);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, N, CUT, C,
                                   offsetof(struct detector_config, settle_release), 256, 15);
    print_message("format 15 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* ---- twenty-seventh round: the step test confirms itself (shift_confirm) ------------------- */

/* make_step_drift(1800, 1500, by, 0, seed) (a flow that steps down by `by` stationary
 * deviations at 1,500, no drift) through the defaults with shift_confirm as given; returns the
 * delay to the first flagged reading (-1: never), *before and *held as onset_run's. With spike,
 * the flow also takes one reading of +spike deviations at 1,200 (after the first two trainings:
 * the step test judges it). */
static int step_confirm_delay(int shift_confirm, double by, double spike, uint64_t seed,
                              int save_at, int *before, int *held)
{
    const int n = 1800, onset = 1500, C = 6;
    float *x = make_step_drift(n, onset, by, 0.0, seed);
    x[C * 1200] += (float)spike;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_confirm = shift_confirm;
    int top;
    return onset_run(&cfg, x, n, C, onset, save_at, before, &top, held);
}

/* shift_confirm: steps of 4-8 stationary deviations of the AR flow, seeds 1-6, each run with and
 * without it. It opens no episode before the step that the run without it does not (nor with a
 * single reading of 30 deviations at 1,200, which opens one episode with it and without it),
 * flags no step later or for fewer readings, finds more and some earlier (measured: 19 of 30
 * against 18, step 4 seed 1 at 31 readings and never without; step 5 seed 5 one reading sooner):
 * the step test's likelihood flickers around alarm_level as the step enters its window, and
 * confirm = 2 waits for two readings in a row that may never come. A save inside the step's
 * approach (seed 1, step 4, reading 1,510) continues bit for bit. */
static void test_shift_confirm(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.shift_confirm, 1);
    static const double steps[] = {4.0, 5.0, 6.0, 7.0, 8.0};
    int earlier = 0, found = 0, found0 = 0, gained = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        for (uint64_t seed = 1; seed <= 6; seed++) {
            int b1, h1, b0, h0, bs, hs, bs0, hs0;
            int save = seed == 1 && steps[i] == 4.0 ? 1510 : -1;
            int on = step_confirm_delay(1, steps[i], 0.0, seed, save, &b1, &h1);
            int off = step_confirm_delay(0, steps[i], 0.0, seed, -1, &b0, &h0);
            step_confirm_delay(1, steps[i], 30.0, seed, -1, &bs, &hs);
            step_confirm_delay(0, steps[i], 30.0, seed, -1, &bs0, &hs0);
            print_message("step %.0f seed %d: shift_confirm 1: delay %d, %d of 300 flagged (%d "
                          "before; %d with the spike); 0: delay %d, %d flagged (%d before; %d)\n",
                          steps[i], (int)seed, on, h1, b1, bs, off, h0, b0, bs0);
            assert_int_equal(b1, b0);
            assert_int_equal(bs, bs0);
            if (off >= 0)
                assert_true(on >= 0 && on <= off);
            assert_true(h1 >= h0);
            found += on >= 0;
            found0 += off >= 0;
            earlier += on >= 0 && (off < 0 || on < off);
            gained += off >= 0 ? off - on : 0;
        }
    print_message("shift_confirm: %d steps found (%d without it), %d earlier, %d readings sooner "
                  "where both found it\n",
                  found, found0, earlier, gained);
    assert_true(found > found0);
    assert_true(earlier >= 2);
}

/* A format-25 save (no shift_confirm in its config) of test_shift_confirm's pump, cut at 1,490
 * (just before the step), loads with shift_confirm 0 whatever the config's padding held, and
 * continues bit for bit as the saved detector with 0; the same bytes claimed as format 26 are
 * refused. Two pumps: seed 2's step of 7 deviations opens an episode either way; seed 1's step
 * of 4 opens one only with shift_confirm (test_shift_confirm), so a loader that left the field
 * on would not continue as saved. */
static void test_load_format25(void **unused)
{
    (void)unused;
    enum { N = 1800, CUT = 1490, C = 6 };
    const struct {
        double by;
        uint64_t seed;
    } pump[2] = {{7.0, 2}, {4.0, 1}};
    for (int k = 0; k < 2; k++) {
        float *x = make_step_drift(N, 1500, pump[k].by, 0.0, pump[k].seed);
        struct detector_config cfg;
        detector_config_default(&cfg);
        int opened = load_older_format(&cfg, x, N, CUT, C,
                                       offsetof(struct detector_config, shift_confirm), 257, 25);
        print_message("format 25 load, step %.0f seed %d: %d anomalies opened after the cut, as "
                      "saved\n",
                      pump[k].by, (int)pump[k].seed, opened);
        if (k == 0)
            assert_true(opened >= 1);
        free(x);
    }
}

/* ---- twenty-eighth round: the step test's reference winsorised (shift_winsor) ------------- */

/* make_step_drift(1800, 1500, by, 0, seed), with the flow's step spread over a ramp of 48
 * readings (a valve closing slowly), through the defaults with shift_winsor as given; returns
 * the delay to the first flagged reading (-1: never), *before and *held as onset_run's. */
static int ramp_winsor_delay(float winsor, double by, uint64_t seed, int save_at, int *before,
                             int *held)
{
    const int n = 1800, onset = 1500, C = 6, R = 48;
    float *x = make_step_drift(n, onset, by, 0.0, seed);
    for (int t = onset; t < onset + R; t++)
        x[C * t] += (float)(by * (1.0 - (t - onset + 1.0) / R));
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_winsor = winsor;
    int top;
    return onset_run(&cfg, x, n, C, onset, save_at, before, &top, held);
}

/* shift_winsor 2.5: ramps of 4-8 stationary deviations of the AR flow over 48 readings, seeds
 * 1-6, each run with it and without. The ramp's growing estimates enter the reference while the
 * test's window still holds only part of it and widen the deviation it is then judged against;
 * winsorised, they cannot, and more ramps are found (measured: 13 of 30 against 10, seed 1's
 * ramps of 6-8 deviations at 31-34 readings and never without), none later, and no anomaly
 * opens before the ramp in any run. A save inside the ramp (seed 1, 5 deviations, reading 1,530)
 * continues bit for bit. */
static void test_shift_winsor(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_true(def.shift_winsor == 0.0f);
    static const double steps[] = {4.0, 5.0, 6.0, 7.0, 8.0};
    int earlier = 0, later = 0, found = 0, found0 = 0, more_before = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        for (uint64_t seed = 1; seed <= 6; seed++) {
            int b1, h1, b0, h0;
            int save = seed == 1 && steps[i] == 5.0 ? 1530 : -1;
            int on = ramp_winsor_delay(2.5f, steps[i], seed, save, &b1, &h1);
            int off = ramp_winsor_delay(0.0f, steps[i], seed, -1, &b0, &h0);
            print_message("ramp %.0f seed %d: shift_winsor 2.5: delay %d, %d of 300 flagged (%d "
                          "before); 0: delay %d, %d flagged (%d before)\n",
                          steps[i], (int)seed, on, h1, b1, off, h0, b0);
            found += on >= 0;
            found0 += off >= 0;
            earlier += on >= 0 && (off < 0 || on < off);
            later += off >= 0 && (on < 0 || on > off);
            more_before += b1 > b0;
        }
    print_message("shift_winsor: %d ramps found (%d without it), %d earlier, %d later, %d runs "
                  "with more openings before the ramp\n",
                  found, found0, earlier, later, more_before);
    assert_true(found > found0);
    assert_int_equal(later, 0);
    assert_int_equal(more_before, 0);
}

/* A format-26 save (no shift_winsor in its config) of test_shift_confirm's pump (seed 2, step
 * 7), cut at 1,490 (just before the step), loads with shift_winsor 0 whatever the config's
 * padding held, and continues bit for bit as the saved detector with 0. shift_winsor fills
 * format 26's tail padding (the config keeps its size), so the junk there is all ones, a NaN
 * as a float: the same bytes claimed as format 27 read it and are refused. */
static void test_load_format26(void **unused)
{
    (void)unused;
    enum { N = 1800, CUT = 1490, C = 6 };
    float *x = make_step_drift(N, 1500, 7.0, 0.0, 2);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, N, CUT, C,
                                   offsetof(struct detector_config, shift_winsor), -1, 26);
    print_message("format 26 load: %d anomalies opened after the cut, as saved\n", opened);
    assert_true(opened >= 1);
    free(x);
}

const struct CMUnitTest detector_shift_tests[] = {
    cmocka_unit_test(test_shift_step_held), cmocka_unit_test(test_shift_plain_small_step),
    cmocka_unit_test(test_load_format12),   cmocka_unit_test(test_load_format13),
    cmocka_unit_test(test_shift_release),   cmocka_unit_test(test_shift_sums_incremental),
    cmocka_unit_test(test_settle_release),  cmocka_unit_test(test_settle_keeps_faults),
    cmocka_unit_test(test_load_format15),   cmocka_unit_test(test_shift_confirm),
    cmocka_unit_test(test_load_format25),   cmocka_unit_test(test_shift_winsor),
    cmocka_unit_test(test_load_format26),
};
const size_t detector_shift_count = sizeof detector_shift_tests / sizeof detector_shift_tests[0];

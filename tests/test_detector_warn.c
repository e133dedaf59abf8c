/* tests/test_detector_warn.c: unit tests of warnings that last or lie where the model
 * extrapolates (model/detector_score.c): warn_run and warn_region, with their formats. Part of
 * test_detector: tests/test_detector.c runs them, in the order of the single file they were
 * moved from; the fixtures shared with the other parts are in tests/test_detector_fx.c. */

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

/* ---- twenty-second round: a warning that lasts opens (warn_run) -------------------------- */

/* Runs make_noisier(2100, f, seed) through warn_run_config(wr) (onset_run: trainings inline, a
 * copy loaded from a save at save_at > 0 beside it, bit for bit). Returns the readings from
 * 1,500 to the first flagged one (-1: never); *before the anomalies opened before 1,500, *held
 * the readings flagged from 1,500 on. */
static int noisier_run(int wr, double f, uint64_t seed, int save_at, int *before, int *held)
{
    struct detector_config cfg;
    warn_run_config(&cfg, wr);
    int top;
    return onset_run(&cfg, make_noisier(2100, f, seed), 2100, 6, 1500, save_at, before, &top, held);
}

/* The length of the warning run warn_run_config(20) carries into reading `at` of
 * make_noisier(at, f, seed): a save there is to carry one, or it tests nothing of warn_run's
 * state. */
static int noisier_run_at(double f, uint64_t seed, int at)
{
    float *x = make_noisier(at, f, seed);
    struct detector_config cfg;
    warn_run_config(&cfg, 20);
    detector_t *d = new_detector_cfg(&cfg, 6);
    struct detector_result res;
    for (int t = 0; t < at; t++)
        step(d, x, t, 6, NULL, &res);
    int n = d->run_n;
    detector_destroy(d);
    free(x);
    return n;
}

/* A noise fault (channel 4 twice as noisy from 1,500) that mostly raises warnings, seeds 1-6:
 * with warn_run 20 it is flagged in more seeds than without, in every seed it is flagged
 * without it no later with it, and in at least one seed only with it (a run of warnings that
 * never reached alarm_level). The same pump healthy (f 1) opens no episode with warn_run, in any
 * seed (it does warn: 6-26 readings a seed, measured); nothing opens before the fault. A save
 * at 1,560 (seed 1, inside a run: the episode opens at 1,574 with warn_run) continues bit for
 * bit. warn_run is 20 by default. */
static void test_warn_run(void **unused)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.warn_run, 20);
    assert_true(noisier_run_at(2.0, 1, 1560) > 0);
    int with = 0, without = 0, only_with = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int b0, h0, b1, h1;
        int d0 = noisier_run(0, 2.0, seed, 0, &b0, &h0);
        int d1 = noisier_run(20, 2.0, seed, seed == 1 ? 1560 : 0, &b1, &h1);
        print_message("seed %d noisier: warn_run 0 delay %d (held %d), 20: delay %d (held %d)\n",
                      (int)seed, d0, h0, d1, h1);
        assert_int_equal(b0 + b1, 0);
        with += d1 >= 0;
        without += d0 >= 0;
        only_with += d1 >= 0 && d0 < 0;
        if (d0 >= 0)
            assert_true(d1 >= 0 && d1 <= d0);
        int bh, hh;
        assert_int_equal(noisier_run(20, 1.0, seed, 0, &bh, &hh), -1);
        assert_int_equal(bh + hh, 0);
    }
    assert_true(with > without);
    assert_true(only_with >= 1);
}

/* A format-19 save (format 18 on the round's branch; no warn_run in its config, no run state) of
 * the noisier pump (seed 1), cut at 1,560, loads with warn_run 0 whatever the config's padding
 * held, and continues bit for bit as the detector that ran without it. */
static void test_load_format19(void **unused)
{
    enum { N = 2100, CUT = 1560 };
    float *x = make_noisier(N, 2.0, 1);
    struct detector_config cfg;
    warn_run_config(&cfg, 0);
    int opened =
        load_older_format(&cfg, x, N, CUT, 6, offsetof(struct detector_config, warn_run), 20, 19);
    print_message("format 19 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* ---- twenty-third round: a run where the model extrapolates does not open (warn_region) -- */

/* Six channels, row-major [n, 6], a pump driven by its load L: channel 0 the load (about 1, a
 * slow AR wander of deviation 0.02, read to 0.002), flow, pressure, current and vibration as
 * 100 L, 5 L^2, 20 L^3 and 2 L^1.5 with sensor noise, channel 5 a steady temperature. From
 * reading 400 the load falls by 0.25 along a half cosine of 300 readings and stays there: a
 * healthy move to an operating point far beyond the 134 rows of the first training (at 200;
 * the next is at 1,200), which the first linear model can only extrapolate to, its error
 * growing on every channel that the load drives. */
static float *make_load_move(int n, uint64_t seed)
{
    enum { C = 6, MOVE = 400, RAMP = 300 };
    float *x = malloc(sizeof(float) * C * (size_t)n);
    assert_non_null(x);
    uint64_t s = seed;
    const double pi = 3.14159265358979, innov = sqrt(1.0 - 0.95 * 0.95), by = 0.25;
    double ar = 0.0;
    for (int t = 0; t < n; t++) {
        ar = 0.95 * ar + innov * gauss(&s);
        double mv = t < MOVE           ? 0.0
                    : t >= MOVE + RAMP ? by
                                       : by * 0.5 * (1.0 - cos(pi * (t - MOVE) / RAMP));
        double L = 1.0 + 0.02 * ar - mv;
        x[C * t + 0] = (float)(L + 0.002 * gauss(&s));
        x[C * t + 1] = (float)(100.0 * L + 0.5 * gauss(&s));
        x[C * t + 2] = (float)(5.0 * L * L + 0.05 * gauss(&s));
        x[C * t + 3] = (float)(20.0 * L * L * L + 0.2 * gauss(&s));
        x[C * t + 4] = (float)(2.0 * pow(L, 1.5) + 0.03 * gauss(&s));
        x[C * t + 5] = (float)(60.0 + 0.1 * gauss(&s));
    }
    return x;
}

/* The anomalies opened on make_load_move(1100, seed) with warn_run_config(wr) and warn_region
 * as given (a copy loaded from a save at save_at > 0 beside it, bit for bit). */
static int load_move_opened(int wr, int region, uint64_t seed, int save_at)
{
    struct detector_config cfg;
    warn_run_config(&cfg, wr);
    cfg.warn_region = region;
    int opened, top, held;
    onset_run(&cfg, make_load_move(1100, seed), 1100, 6, 1100, save_at, &opened, &top, &held);
    return opened;
}

/* The run (its length, and how many of its readings lay beyond the model's region) that
 * warn_run_config(20) with warn_region carries into reading `at` of make_load_move(at, seed). */
static void load_move_run_at(uint64_t seed, int at, int *run_n, int *run_out)
{
    float *x = make_load_move(at, seed);
    struct detector_config cfg;
    warn_run_config(&cfg, 20);
    cfg.warn_region = 1;
    detector_t *d = new_detector_cfg(&cfg, 6);
    struct detector_result res;
    for (int t = 0; t < at; t++)
        step(d, x, t, 6, NULL, &res);
    *run_n = d->run_n;
    *run_out = d->run_out;
    detector_destroy(d);
    free(x);
}

/* The healthy load move, seeds 1-6: with warn_run and without warn_region, its warnings open
 * episodes (in at least half of the seeds); without warn_run nothing opens (so those were the
 * runs'), and with warn_region nothing opens either: its runs are made of readings beyond the
 * first model's region. The noise fault of test_warn_run (one channel, inside the region) is
 * flagged at the same reading with warn_region as without it, in every seed. A save inside a
 * run with readings beyond the region (seed 1, reading 575) continues bit for bit. warn_region
 * is 1 by default. */
static void test_warn_region(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.warn_region, 1);
    int run_n, run_out;
    load_move_run_at(1, 575, &run_n, &run_out);
    print_message("seed 1 load move at 575: run %d, %d beyond the region\n", run_n, run_out);
    assert_true(run_out > 0 && run_n >= run_out);
    int seeds_opened = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int without = load_move_opened(20, 0, seed, 0);
        int gated = load_move_opened(20, 1, seed, seed == 1 ? 575 : 0);
        int no_run = load_move_opened(0, 0, seed, 0);
        print_message("seed %d load move: opened %d without warn_region, %d with, %d without "
                      "warn_run\n",
                      (int)seed, without, gated, no_run);
        assert_int_equal(no_run, 0);
        assert_int_equal(gated, 0);
        seeds_opened += without > 0;
        struct detector_config cfg;
        int delay[2], b[2], top, held[2];
        for (int region = 0; region <= 1; region++) {
            warn_run_config(&cfg, 20);
            cfg.warn_region = region;
            delay[region] = onset_run(&cfg, make_noisier(2100, 2.0, seed), 2100, 6, 1500, 0,
                                      &b[region], &top, &held[region]);
        }
        assert_int_equal(delay[1], delay[0]);
        assert_int_equal(held[1], held[0]);
    }
    assert_true(seeds_opened >= 3);
}

/* A format-21 save (no warn_region in its config, no run_out) of the load move (seed 1), cut
 * at 575 (inside a run), loads with warn_region 0 whatever the config's padding held, and continues
 * bit for bit as the detector that ran without it. */
static void test_load_format21(void **unused)
{
    (void)unused;
    enum { N = 1100, CUT = 575 };
    float *x = make_load_move(N, 1);
    struct detector_config cfg;
    warn_run_config(&cfg, 20);
    int opened = load_older_format(&cfg, x, N, CUT, 6,
                                   offsetof(struct detector_config, warn_region), 20, 21);
    print_message("format 21 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

const struct CMUnitTest detector_warn_tests[] = {
    cmocka_unit_test(test_warn_run),
    cmocka_unit_test(test_load_format19),
    cmocka_unit_test(test_warn_region),
    cmocka_unit_test(test_load_format21),
};
const size_t detector_warn_count = sizeof detector_warn_tests / sizeof detector_warn_tests[0];

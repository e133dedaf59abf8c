/* tests/test_detector_season.c: unit tests of the seasonal candidate and the second opinions
 * (model/detector_season.c, detector_opinion.c): season_bins, a missing cycle, only the chosen
 * profile saved, season_accum, opinion_open and an opinion's run across a restart, with their
 * formats. Part of test_detector: tests/test_detector.c runs them, in the order of the single
 * file they were moved from; the fixtures shared with the other parts are in
 * tests/test_detector_fx.c. */

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

/* ---- tenth round: the seasonal candidate (season_bins) ------------------------------------ */

/* One channel with a daily-like cycle of SEASON_P readings (longer than the LSTM's context): a
 * plateau 2 units high for the middle half of each cycle (sharp edges, as a shift schedule or a
 * batch process makes) on a sine of amplitude 0.5, Gaussian noise 0.05. From `stop` on the cycle
 * stops: the channel stays at its level between cycles (the pattern is gone, as in a machine that
 * no longer runs its shifts). */
#define SEASON_P 100
static float *make_shifts(int n, int stop, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    assert_non_null(x);
    uint64_t s = seed;
    for (int t = 0; t < n; t++) {
        const int ph = t % SEASON_P;
        double v = 5.0;
        if (t < stop)
            v += (ph >= SEASON_P / 4 && ph < 3 * SEASON_P / 4 ? 2.0 : 0.0) +
                 0.5 * sin(2.0 * 3.14159265358979 * ph / SEASON_P);
        x[t] = (float)(v + 0.05 * gauss(&s));
    }
    return x;
}

/* Runs make_shifts(n, stop, seed) through a detector with season_bins as given (the rest the
 * defaults); returns the readings from the first missed edge (the first cycle start at or
 * after stop plus a quarter cycle) to the first flagged reading (-1: never), the anomalies
 * opened before stop in *before, the flagged readings from the missed edge on in *held (100
 * readings), and the last training's report before stop in *info (a training that an
 * offset_release asks for after it sees the cycle gone). With save_at > 0 a loaded copy saved
 * there runs beside it and must agree bit for bit. */
static int season_delay(int bins, uint64_t seed, int save_at, int *before, int *held,
                        struct detector_train_info *info)
{
    const int n = 1700, stop = 1500;
    const int edge = (stop + SEASON_P - 1) / SEASON_P * SEASON_P + SEASON_P / 4;
    float *x = make_shifts(n, stop, seed);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.season_bins = bins;
    detector_t *d = new_detector_cfg(&cfg, 1), *e = NULL;
    struct detector_result res, re;
    int flagged_at = -1;
    *before = *held = 0;
    for (int t = 0; t < n; t++) {
        if (t == save_at)
            e = reloaded(d);
        assert_int_equal(detector_step_ts(d, (int64_t)t * 1000, x + t, NULL, &res), 0);
        if (e) {
            assert_int_equal(detector_step_ts(e, (int64_t)t * 1000, x + t, NULL, &re), 0);
            assert_same_result(&res, &re, 1);
        }
        if (res.want_train) {
            struct detector_train_info late;
            train_on(d, x, t + 1, t < stop ? info : &late);
            if (e) {
                struct detector_train_info ie;
                train_on(e, x, t + 1, &ie);
            }
        }
        if (t < stop)
            *before += res.changed && res.state == DET_ANOMALY;
        if (t >= edge && t < edge + 100) {
            *held += res.is_anomaly;
            if (res.is_anomaly && flagged_at < 0)
                flagged_at = t;
        }
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
    return flagged_at < 0 ? -1 : flagged_at - edge;
}

/* A cycle whose sharp edges a one-step predictor cannot foresee, seeds 1-4: with the seasonal
 * candidate its training at reading 1,200 finds the period (100 readings) and predicts the
 * channel by the profile, so when the cycle stops the missed edge is flagged within FAULT_LATENCY
 * readings and held for at least 50 of the 100 readings after it, with nothing flagged before.
 * Without it (season_bins 0) the error scale spans the edges and the flat channel is predicted
 * better than ever: never flagged (measured: 92-100 of 100 readings flagged at once with it, none
 * without), so the test fails with the setting off. A save before the stop, with the profile
 * serving, loaded, continues bit for bit through it (format 10's seasonal state). */
static void test_season_missing_cycle(void **unused)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.season_bins, 256);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct detector_train_info i1, i0;
        int b1, h1, b0, h0;
        int on = season_delay(256, seed, seed == 1 ? 1400 : -1, &b1, &h1, &i1);
        int off = season_delay(0, seed, -1, &b0, &h0, &i0);
        print_message("seed %d: season_bins 256: period %d chosen %d, delay %d, %d of 100 "
                      "flagged (%d before); 0: delay %d, %d flagged (%d before)\n",
                      (int)seed, i1.season_period[0], i1.season[0], on, h1, b1, off, h0, b0);
        assert_int_equal(i1.season_period[0], SEASON_P);
        assert_int_equal(i1.season[0], 1);
        assert_int_equal(i0.season[0], 0);
        assert_int_equal(b1, 0);
        assert_true(on >= 0 && on <= FAULT_LATENCY);
        assert_true(h1 >= 50);
        assert_true(off < 0 || off > FAULT_LATENCY);
    }
}

/* Replays make_slow_cycle (stop 1,500, keep; the defaults with season_opinion = opin & 3,
 * opinion_open = opin >> 2 (off unless asked: the older tests measure the score) and
 * season_accum = accum) and returns the
 * readings from the missed ramp's start (stop + 80) to the first reported score at or above
 * score_level (-1: not within the 100 readings the high phase would have lasted); *flag the
 * same for the first flagged reading, *before the readings scored at or above score_level and
 * the anomalies opened between the first training and the stop, *info the training at 1,200's
 * report. With save_at > 0 a loaded copy saved there runs beside it and must agree bit for
 * bit. */
static int opinion_delay(int opin, float accum, double keep, uint64_t seed, int save_at, int *flag,
                         int *before, struct detector_train_info *info)
{
    const int stop = 1500, miss = stop + 80, n = miss + 100;
    float *x = make_slow_cycle(n, stop, seed, keep);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.season_opinion = opin & 3;
    cfg.opinion_open = opin >> 2;
    cfg.season_accum = accum;
    cfg.lstm_min_rows = 0; /* the premise: an LSTM (800 rows) serves and the profile does not */
    detector_t *d = new_detector_cfg(&cfg, 1), *e = NULL;
    struct detector_result res, re;
    int scored_at = -1, flagged_at = -1;
    *before = 0;
    for (int t = 0; t < n; t++) {
        if (t == save_at)
            e = reloaded(d);
        assert_int_equal(detector_step_ts(d, (int64_t)t * 1000, x + t, NULL, &res), 0);
        if (e) {
            assert_int_equal(detector_step_ts(e, (int64_t)t * 1000, x + t, NULL, &re), 0);
            assert_same_result(&res, &re, 1);
        }
        if (res.want_train) {
            struct detector_train_info it;
            train_on(d, x, t + 1, &it);
            if (t + 1 == 1200)
                *info = it;
            if (e) {
                struct detector_train_info ie;
                train_on(e, x, t + 1, &ie);
            }
        }
        if (t >= 1200 && t < stop)
            *before += (res.changed && res.state == DET_ANOMALY) + (res.score >= cfg.score_level);
        if (t >= miss && res.score >= cfg.score_level && scored_at < 0)
            scored_at = t;
        if (t >= miss && res.is_anomaly && flagged_at < 0)
            flagged_at = t;
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
    *flag = flagged_at < 0 ? -1 : flagged_at - miss;
    return scored_at < 0 ? -1 : scored_at - miss;
}

/* A daily load curve that fails to come (seeds 1-4): the training at 1,200 finds its period and
 * does not choose the profile. With season_opinion 1 (the default) the profile is kept as a
 * second opinion and the missed ramp's day is reported at or above score_level before the high
 * phase would have ended, nothing between the training and the stop; with 3 it is flagged
 * too. With 0 the one-step predictor, which sees ordinary steps, neither scores nor flags it in
 * that time in any seed, so the test fails with the setting off; with 1 the flags are 0's (the
 * decision is unchanged). A save at 1,400, loaded, continues bit for bit through the stop
 * (format 12's state). */
static void test_opinion_missing_cycle(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.season_opinion, 1);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct detector_train_info i1, i3, i0;
        int f1, f3, f0, b1, b3, b0;
        int s1 = opinion_delay(1, 0.0f, 0.0, seed, seed == 1 ? 1400 : -1, &f1, &b1, &i1);
        int s3 = opinion_delay(3, 0.0f, 0.0, seed, seed == 2 ? 1400 : -1, &f3, &b3, &i3);
        int s0 = opinion_delay(0, 0.0f, 0.0, seed, -1, &f0, &b0, &i0);
        print_message("seed %d: period %d chosen %d; season_opinion 1: score after %d, flag %d "
                      "(%d before); 3: score %d, flag %d (%d before); 0: score %d, flag %d (%d "
                      "before)\n",
                      (int)seed, i1.season_period[0], i1.season[0], s1, f1, b1, s3, f3, b3, s0, f0,
                      b0);
        assert_true(abs(i1.season_period[0] - OPIN_P) <= OPIN_P / 20);
        assert_int_equal(i1.season[0], 0);
        assert_int_equal(b1, 0);
        assert_int_equal(b3, 0);
        assert_true(s1 >= 0);
        assert_true(f3 >= 0);
        assert_int_equal(f1, f0);
        assert_int_equal(s0, -1);
        assert_int_equal(f0, -1);
    }
}

/* A format-9 save (no season_bins in its config; junk where season_bins may lie in its tail
 * padding) loads with season_bins 0 and continues bit for bit; the same bytes claimed as format
 * 10 are refused when that junk asks for seasonal state the bytes lack. */
static void test_load_format9(void **unused)
{
    enum { N = 1400, CUT = 700 };
    float *x = make_shifts(N, N, 3);
    struct detector_config cfg;
    detector_config_default(&cfg);
    load_older_format(&cfg, x, N, CUT, 1, offsetof(struct detector_config, season_bins), 256, 9);
    free(x);
}

/* Three channels, row-major [n, 3]: make_shifts' cycle (seed 5) on channel 0 and on channel 2
 * (seed 6, a third of a cycle later), Gaussian noise around 3 on channel 1 (no period), the
 * cycles stopping at `stop`. */
static float *make_mixed_season(int n, int stop)
{
    float *a = make_shifts(n + SEASON_P, stop, 5), *b = make_shifts(n + SEASON_P, stop + 33, 6);
    float *x = malloc(sizeof(float) * 3 * (size_t)n);
    assert_non_null(x);
    uint64_t s = 7;
    for (int t = 0; t < n; t++) {
        x[3 * t + 0] = a[t];
        x[3 * t + 1] = (float)(3.0 + 0.1 * gauss(&s));
        x[3 * t + 2] = b[t + 33];
    }
    free(a);
    free(b);
    return x;
}

/* Format 10 keeps a seasonal profile only for the channels that use one. Three channels, the
 * linear baseline serving (no LSTM checkpoint, so the blob's tail layout is known here): after
 * the training at 1,200 the two cycling channels choose their profile and the noise channel
 * does not. The save is then exactly 4 x season_bins bytes per chosen channel longer than the
 * fresh detector's, which itself holds only the 13 bytes a channel of flags and scalars more
 * than with season_bins 0 (main's layout saved C x season_bins floats whatever was chosen). A
 * copy loaded there serves bit for bit as the saved one (steps, forecasts, and a training at
 * 2,200 after the cycles stop, which replaces the profiles). Blobs whose profiles are cut, or
 * whose flags claim more or fewer profiles than they hold, are refused (CRC redone). */
static void test_season_save_only_chosen(void **unused)
{
    enum { C = 3, N = 2600, STOP = 2100, CUT = 1500, K = 20 };
    float *x = make_mixed_season(N, STOP);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.model_kind = DET_MODEL_LINEAR;
    /* The offsets below are format 10's layout: no state of format 11's fields on (shift_len's
     * would sit between the profiles and the tail). */
    config_as_format(&cfg, offsetof(struct detector_config, burst_memory));
    cfg.season_bins = 0;
    detector_t *a = new_detector_cfg(&cfg, C), *b = NULL;
    const size_t size_nobins = detector_save_size(a);
    detector_destroy(a);
    cfg.season_bins = 256;
    a = new_detector_cfg(&cfg, C);
    const size_t size_fresh = detector_save_size(a);
    assert_int_equal(size_fresh, size_nobins + 13 * C);

    struct detector_result ra, rb;
    struct detector_train_info info;
    memset(&info, 0, sizeof info);
    for (int t = 0; t < CUT; t++) {
        assert_int_equal(detector_step_ts(a, (int64_t)t * 1000, x + (size_t)C * t, NULL, &ra), 0);
        if (ra.want_train)
            train_on(a, x, t + 1, &info);
    }
    print_message("at %d: season %d %d %d, periods %d %d %d\n", CUT, info.season[0], info.season[1],
                  info.season[2], info.season_period[0], info.season_period[1],
                  info.season_period[2]);
    assert_int_equal(info.season[0], 1);
    assert_int_equal(info.season[1], 0);
    assert_int_equal(info.season[2], 1);
    const size_t SB = 256, np = 2;
    size_t len = detector_save_size(a), got;
    assert_int_equal(len, size_fresh + np * SB * sizeof(float));
    unsigned char *buf = malloc(len), *alt = malloc(len + 8);
    assert_non_null(buf);
    assert_non_null(alt);
    assert_int_equal(detector_save(a, buf, len, &got), 0);
    assert_int_equal(got, len);

    /* The tail: season [C] | s_period, s_a, s_phi [C] each | profiles [np, SB] | prev_contrib
     * [C] | ring [err_window] | shortbuf [err_short] | checkpoint length 0 | CRC. */
    const size_t prof_end =
        len - 4 - 8 - sizeof(float) * ((size_t)cfg.err_window + (size_t)cfg.err_short + C);
    const size_t prof_at = prof_end - np * SB * sizeof(float);
    const size_t flags_at = prof_at - 3 * 4 * C - C;
    for (int c = 0; c < C; c++)
        assert_int_equal(buf[flags_at + c], info.season[c]);
    assert_int_equal(load_recrc(buf, len, alt), 0); /* the re-CRC'd copy itself loads */
    /* Cut (the bytes before `cut`, then a CRC) inside, at and around the profiles; and every
     * 997th length. */
    for (size_t cut = prof_at - 16; cut <= prof_end + 16; cut += 4)
        assert_int_equal(load_recrc(buf, cut + 4, alt), ERR_CORRUPT);
    for (size_t l = 16; l < len; l += 997)
        assert_int_equal(load_recrc(buf, l, alt), ERR_CORRUPT);
    /* Flags that claim a profile more (channel 1), or one fewer (channel 2), or 2. */
    const unsigned char flips[3][2] = {{1, 1}, {2, 0}, {0, 2}};
    for (int f = 0; f < 3; f++) {
        const unsigned char was = buf[flags_at + flips[f][0]];
        buf[flags_at + flips[f][0]] = flips[f][1];
        assert_int_equal(load_recrc(buf, len, alt), ERR_CORRUPT);
        buf[flags_at + flips[f][0]] = was;
    }

    assert_int_equal(detector_load(&b, buf, len), 0);
    float ma[K * C], ba[K * C], mb[K * C], bb[K * C];
    int changed = 0;
    for (int t = CUT; t < N; t++) {
        step(a, x, t, C, NULL, &ra);
        step(b, x, t, C, NULL, &rb);
        assert_same_result(&ra, &rb, C);
        if (t % 50 == 0) {
            assert_int_equal(detector_forecast(a, ma, ba, K), 0);
            assert_int_equal(detector_forecast(b, mb, bb, K), 0);
            assert_memory_equal(ma, mb, sizeof ma);
            assert_memory_equal(ba, bb, sizeof ba);
        }
        changed += detector_save_size(a) != len;
    }
    print_message("after the stop: save %zu bytes (%zu at the cut), %d readings at another size\n",
                  detector_save_size(a), len, changed);
    detector_destroy(a);
    detector_destroy(b);
    free(alt);
    free(buf);
    free(x);
}

/* ---- nineteenth round: a day that departs from its cycle, accumulated (season_accum) ---- */

/* make_slow_cycle's daily load curve, whose swing flattens to 0.6 of itself from the stop
 * (seeds 1-4; the training at 1,200 finds the period, 198-201 readings, and does not choose the
 * profile). The high phase then runs 0.8 (3.5 reading spreads of the wander) below its profile,
 * each reading an ordinary step. With season_accum at its default (0.1: the deviation's
 * exponential mean over 20 readings, a tenth of the period, judged against its spread over the
 * training rows and the held-out tail) the flattened day is reported at or above score_level
 * before the high phase would have ended, and nothing between the training and the stop; with
 * it 0 (the second opinion's short mean alone, judged against its values since the training),
 * not in that time in any seed, so the test fails without the behaviour. The decision is
 * unchanged (the first flag is the same either way). Saves at 1,400 (seeds 1, 2), loaded,
 * continue bit for bit through the stop (format 16's state). */
/* The checks both season_accum tests share, of a run with the default (on: scored, flagged,
 * scored before the departure) and one without it (off): the training's choice of the profile
 * is `chosen`, nothing is scored at score_level before the departure with the default, and the
 * first flag is the same (the decision is unchanged). */
static void accum_check(uint64_t seed, const struct detector_train_info *ia, int chosen,
                        const int on[3], const int off[3])
{
    print_message("seed %d: period %d chosen %d; season_accum on: scored after %d, flag %d (%d "
                  "before); off: scored after %d, flag %d (%d before)\n",
                  (int)seed, ia->season_period[0], ia->season[0], on[0], on[1], on[2], off[0],
                  off[1], off[2]);
    assert_int_equal(ia->season[0], chosen);
    assert_int_equal(on[2], 0);
    assert_int_equal(on[1], off[1]);
}

static void test_accum_flat_day(void **unused)
{
    (void)unused;
    const double keep = 0.6;
    struct detector_config def;
    detector_config_default(&def);
    assert_true(def.season_accum > 0.0f);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct detector_train_info ia, i0;
        int fa, f0, ba, b0;
        int sa =
            opinion_delay(1, def.season_accum, keep, seed, seed <= 2 ? 1400 : -1, &fa, &ba, &ia);
        int s0 = opinion_delay(1, 0.0f, keep, seed, -1, &f0, &b0, &i0);
        accum_check(seed, &ia, 0, (int[3]){sa, fa, ba}, (int[3]){s0, f0, b0});
        assert_true(sa >= 0);
        assert_int_equal(s0, -1);
    }
}

/* A smooth cycle (period SEASON_P, a sine of amplitude 2 under an AR(1) wander of 0.5,
 * innovations 0.05) whose swing flattens to 0.8 of itself from reading `stop`. */
static float *make_smooth_cycle(int n, int stop, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    assert_non_null(x);
    double w = 0.0;
    for (int t = 0; t < n; t++) {
        w = 0.5 * w + 0.05 * gauss(&seed);
        const double v = 2.0 * sin(2.0 * 3.14159265358979 * t / SEASON_P);
        x[t] = (float)(5.0 + (t >= stop ? 0.8 : 1.0) * v + w);
    }
    return x;
}

/* Runs make_smooth_cycle(1700, 1500, seed) with the defaults and season_accum as given: *scored
 * and *flagged the readings from the flattening to the first score at or above score_level and
 * to the first flag (-1: none), *before the readings scored at that level between the training
 * at 1,200 and the flattening, *info the last training's report. */
static void smooth_run(float accum, uint64_t seed, int *scored, int *flagged, int *before,
                       struct detector_train_info *info)
{
    const int n = 1700, stop = 1500;
    float *x = make_smooth_cycle(n, stop, seed);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.season_accum = accum;
    cfg.opinion_open = 0; /* the score's test; opinion_open's is test_opinion_open */
    detector_t *d = new_detector_cfg(&cfg, 1);
    struct detector_result res;
    *scored = *flagged = -1;
    *before = 0;
    for (int t = 0; t < n; t++) {
        assert_int_equal(detector_step_ts(d, (int64_t)t * 1000, x + t, NULL, &res), 0);
        if (res.want_train)
            train_on(d, x, t + 1, info);
        if (t >= 1200 && t < stop)
            *before += res.score >= cfg.score_level;
        if (t >= stop && *scored < 0 && res.score >= cfg.score_level)
            *scored = t - stop;
        if (t >= stop && *flagged < 0 && res.is_anomaly)
            *flagged = t - stop;
    }
    detector_destroy(d);
    free(x);
}

/* A chosen profile's own record (season_accum): a smooth cycle whose profile the training at
 * 1,200 chooses (seeds 1-4) flattens to 0.8 of its swing. The seasonal predictor's one-step
 * error sees that too, within 20 readings; with the default the accumulated departure reports
 * it at score_level no later in any seed and earlier in at least three (measured: 1-4 readings
 * earlier in all four), with nothing scored at that level between the training and the
 * flattening, and the same first flag. Without the chosen profile's record the two runs score
 * at the same reading, so the test fails without that part of the behaviour. */
static void test_accum_chosen_profile(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    int earlier = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct detector_train_info ia, i0;
        int sa, fa, ba, s0, f0, b0;
        smooth_run(def.season_accum, seed, &sa, &fa, &ba, &ia);
        smooth_run(0.0f, seed, &s0, &f0, &b0, &i0);
        accum_check(seed, &ia, 1, (int[3]){sa, fa, ba}, (int[3]){s0, f0, b0});
        assert_true(sa >= 0 && s0 >= 0 && sa <= s0);
        earlier += sa < s0;
    }
    assert_true(earlier >= 3);
}

/* A format-15 save (no season_accum in its config) of make_slow_cycle's flattening detector
 * after the training at 1,200 loads with season_accum 0 and continues bit for bit as the saved
 * detector without it, through the flattened day; the same bytes claimed as format 16 are
 * refused. */
static void test_load_format16(void **unused)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    slow_cycle_cut(&cfg, 0.6, offsetof(struct detector_config, season_accum), 16);
}

/* ---- thirty-third round: a second opinion's onset opens (opinion_open) ---- */

/* make_slow_cycle's load curve that fails to come (keep 0) and that flattens to 0.6 (keep 0.6,
 * where season_accum's accumulated departure sees it), seeds 1-4: the training at 1,200 keeps
 * the profile as a second opinion without choosing it. With opinion_open (the default) the
 * missed or flattened day is flagged before the high phase would have ended (8-55 readings
 * after the missed ramp's start), and at most one episode opens between the training and the
 * stop (measured: one in seed 3, whose period is estimated at 198 of 200 and drifts, none in
 * the others; nothing is scored there either way); with it off the one-step error flags neither in
 * that time (the fifteenth and nineteenth rounds' tests: the decision was the error's), so
 * the test fails without the behaviour. Saves at 1,400 (seeds 1, 2), loaded, continue bit for
 * bit through the opening (the run count is not saved, and is 0 there). */
static void test_opinion_open(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.opinion_open, 1);
    const double keeps[2] = {0.0, 0.6};
    for (int k = 0; k < 2; k++)
        for (uint64_t seed = 1; seed <= 4; seed++) {
            struct detector_train_info ion, ioff;
            int fon, foff, bon, boff;
            opinion_delay(1 | 4, def.season_accum, keeps[k], seed, seed <= 2 ? 1400 : -1, &fon,
                          &bon, &ion);
            opinion_delay(1, def.season_accum, keeps[k], seed, -1, &foff, &boff, &ioff);
            print_message("keep %.1f seed %d: period %d chosen %d; opinion_open 1: flag %d (%d "
                          "before); 0: flag %d (%d before)\n",
                          keeps[k], (int)seed, ion.season_period[0], ion.season[0], fon, bon, foff,
                          boff);
            assert_int_equal(ion.season[0], 0);
            assert_true(fon >= 0);
            assert_true(bon <= 1);
            assert_int_equal(foff, -1);
        }
}

/* A format-29 save (no opinion_open in its config; -1 where the field may lie in format 29's
 * tail padding, which a loader that read it would refuse, and which makes the same bytes
 * claimed as format 30 a refused config) of make_slow_cycle's detector (keep 0, seed 1), cut
 * at 1,400 after the training that kept the profile, loads with opinion_open 0 and continues
 * bit for bit as the saved detector run without it, through the missed day that the opinion
 * would open on. */
static void test_load_format29(void **unused)
{
    (void)unused;
    float *x = make_slow_cycle(1680, 1500, 1, 0.0);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, 1680, 1400, 1,
                                   offsetof(struct detector_config, opinion_open), -1, 29);
    print_message("format 29 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* ---- restart equivalence (session 14): state a restart must keep --------------------------- */

#define RS_STOP 1500            /* make_slow_cycle's stop: the load curve fails to come */
#define RS_N    (RS_STOP + 180) /* the missed ramp (stop + 80) and its high phase */

/* Steps d by reading t of make_slow_cycle's one channel as opinion_delay does (the readings'
 * time a second apart) and trains at once when asked; fills res. */
static void cycle_step(detector_t *d, const float *x, int t, struct detector_result *res)
{
    assert_int_equal(detector_step_ts(d, (int64_t)t * 1000, x + t, NULL, res), 0);
    if (res->want_train) {
        struct detector_train_info info;
        train_on(d, x, t + 1, &info);
    }
}

/* The reading of make_slow_cycle (stop RS_STOP, keep 0, seed 1) at which opinion_open opens its
 * episode with the defaults (the kept profile's run at alarm_level reaching `confirm`): found
 * by a first pass; asserts there is one, after the stop, opened on the level. */
static int opinion_open_reading(const float *x)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.lstm_min_rows = 0; /* as opinion_delay's: an LSTM serves, the profile does not */
    detector_t *d = new_detector_cfg(&cfg, 1);
    struct detector_result res;
    int at = -1;
    for (int t = 0; t < RS_N && at < 0; t++) {
        cycle_step(d, x, t, &res);
        if (t >= RS_STOP && res.changed && res.state == DET_ANOMALY && d->opin_run == cfg.confirm)
            at = t;
    }
    detector_destroy(d);
    assert_true(at > RS_STOP);
    assert_int_equal(res.opened_by, DET_OPEN_LEVEL);
    return at;
}

/* make_slow_cycle (stop RS_STOP, keep 0, seed 1) into *x (caller frees) and a default detector
 * *d (caller destroys) stepped up to the reading opinion_open opens its episode on (returned),
 * not that one: the second opinion's run in progress, at confirm - 1. */
static int cycle_before_open(float **x, detector_t **d)
{
    *x = make_slow_cycle(RS_N, RS_STOP, 1, 0.0);
    const int open_at = opinion_open_reading(*x);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.lstm_min_rows = 0; /* as opinion_delay's: an LSTM serves, the profile does not */
    assert_int_equal(detector_create(d, &cfg, 1), 0);
    struct detector_result res;
    for (int t = 0; t < open_at; t++)
        cycle_step(*d, *x, t, &res);
    assert_int_equal((*d)->opin_run, cfg.confirm - 1);
    return open_at;
}

/* opinion_open's run (opin_run) is saved (format 35): a detector saved one reading before its
 * second opinion's run reaches `confirm` (cycle_before_open) and loaded opens the same episode
 * on the same reading and continues bit for bit. Format 34 did not save the run: the loaded
 * copy's run started over and opened its episode a reading late, or not at all (vigil-replay
 * --restart-every 1 on NAB's art_daily_jumpsup, docs/reliability.md). */
static void test_opinion_run_saved(void **unused)
{
    (void)unused;
    float *x;
    detector_t *d;
    const int open_at = cycle_before_open(&x, &d);
    detector_t *e = reloaded(d);
    assert_int_equal(e->opin_run, d->opin_run);
    struct detector_result rd, re;
    for (int t = open_at; t < RS_N; t++) {
        cycle_step(d, x, t, &rd);
        cycle_step(e, x, t, &re);
        assert_same_result(&rd, &re, 1);
        if (t == open_at) {
            assert_true(re.changed && re.state == DET_ANOMALY);
            assert_int_equal(re.opened_by, DET_OPEN_LEVEL);
        }
    }
    print_message("opinion run saved at reading %d: the loaded copy opens there too\n", open_at);
    detector_destroy(d);
    detector_destroy(e);
    free(x);
}

/* A format-34 save (no opin_run: drop_opin_run) of the same detector at the same reading, the
 * run at 1, loads with the run at 0 and continues bit for bit as the saved detector does with
 * its run started over (as format 34 ran); the same bytes claimed as format 35 are refused (4
 * bytes short). */
static void test_load_format34(void **unused)
{
    (void)unused;
    float *x;
    detector_t *d, *e = NULL;
    const int open_at = cycle_before_open(&x, &d);
    d->cfg.mean_far = 0.0f;    /* format 36's: d runs on as format 34 loads it */
    d->cfg.rhythm_time = 0;    /* format 37's: no onsets' times in the save */
    d->cfg.accept_grow = 0.0f; /* format 43's: no error blocks in the save */
    d->cfg.hold_echo = 0.0f;   /* format 44's: no level or error run in the save */
    d->cfg.hold_decay = 0.0f;  /* format 46's: no level or peak in the save */
    d->cfg.burst_wide = 0;     /* format 45's: d runs on as format 34 loads it */
    struct detector_result rd, re;
    size_t len = detector_save_size(d), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(d, buf, len, &got), 0);
    drop_opin_run(buf, &len, d); /* d's run starts over, as format 34 ran after a load */
    cut_to_format(buf, &len, offsetof(struct detector_config, mean_far), -1, 34);
    assert_int_equal(detector_load(&e, buf, len), 0);
    assert_int_equal(e->opin_run, 0);
    assert_int_equal(e->cfg.burst_wide, 0);
    int opened = 0;
    for (int t = open_at; t < RS_N; t++) {
        cycle_step(d, x, t, &rd);
        cycle_step(e, x, t, &re);
        assert_same_result(&rd, &re, 1);
        opened += re.changed && re.state == DET_ANOMALY;
    }
    print_message("format 34 load at reading %d: %d anomalies opened after it, as saved\n", open_at,
                  opened);
    as_format6(buf, &len, 35);
    detector_t *c = NULL;
    assert_int_equal(detector_load(&c, buf, len), ERR_CORRUPT);
    detector_destroy(d);
    detector_destroy(e);
    free(buf);
    free(x);
}

const struct CMUnitTest detector_season_tests[] = {
    cmocka_unit_test(test_season_missing_cycle), cmocka_unit_test(test_opinion_missing_cycle),
    cmocka_unit_test(test_load_format9),         cmocka_unit_test(test_season_save_only_chosen),
    cmocka_unit_test(test_accum_flat_day),       cmocka_unit_test(test_load_format16),
    cmocka_unit_test(test_accum_chosen_profile), cmocka_unit_test(test_opinion_open),
    cmocka_unit_test(test_load_format29),        cmocka_unit_test(test_opinion_run_saved),
    cmocka_unit_test(test_load_format34),
};
const size_t detector_season_count = sizeof detector_season_tests / sizeof detector_season_tests[0];

/* tests/test_detector_range.c: unit tests of the device's rhythm and record of values
 * (model/detector_onset.c): onset_rhythm and rhythm_time, range_far and mean_far, with their
 * formats. Part of test_detector: tests/test_detector.c runs them, in the order of the single
 * file they were moved from, then tests/test_detector_rank.c's (onset_now and onset_tie, moved
 * from here); the fixtures shared with the other parts are in tests/test_detector_fx.c. */

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

/* ---- thirty-sixth round: an onset that keeps a schedule is routine (onset_rhythm) ---------- */

#define RH_EARLY 24 /* two hours */

/* make_routine(seed, big, off) through onset_rhythm 0 (a) and 1 (b), alike in every decision
 * (step_alike) and in every score below score_level; b is saved at `cut` (> 0) and its loaded
 * copy run beside it, bit for bit. sa[k], sb[k]: a's and b's scores at day k's onset (the
 * first reading from RH_EARLY before spike k to the spike that a reports at score_level or
 * above; the spike itself if none), where b's other scores are a's or score_level; *off_a,
 * *off_b at reading off. Returns the other readings at which b's score is not a's. */
static int routine_run(uint64_t seed, int big, int off, int cut, float *sa, float *sb, float *off_a,
                       float *off_b)
{
    int at[RH_SPIKES];
    float *x = make_routine(seed, big, off, at);
    struct detector_config cfg;
    detector_config_default(&cfg);
    detector_t *d[2], *c = NULL;
    for (int i = 0; i < 2; i++) {
        cfg.onset_rhythm = i;
        d[i] = new_detector_cfg(&cfg, 1);
    }
    int k = 0, moved = 0, seen = 0;
    for (int t = 0; t < RH_N; t++) {
        struct detector_result r[2], rc;
        if (t == cut) {
            size_t len = detector_save_size(d[1]), got;
            unsigned char *buf = malloc(len);
            assert_non_null(buf);
            assert_int_equal(detector_save(d[1], buf, len, &got), 0);
            assert_int_equal(detector_load(&c, buf, got), 0);
            free(buf);
        }
        step_alike(d, 2, x, t, 1, r);
        if (c) {
            step(c, x, t, 1, NULL, &rc);
            assert_same_result(&r[1], &rc, 1);
        }
        if (r[0].score < cfg.score_level)
            assert_true(r[1].score == r[0].score);
        /* Day k's onset: the spike, or a reading up to RH_EARLY readings before it where the
         * predictor expected it (a profile that took the spike in: seed 3 after its second
         * training; the spike itself then ranks lower or is capped at repeat_cap). */
        const int near = k < RH_SPIKES && t >= at[k] - RH_EARLY && t <= at[k];
        if (near && !seen && (r[0].score >= cfg.score_level || t == at[k])) {
            sa[k] = r[0].score;
            sb[k] = r[1].score;
            seen = 1;
        } else if (near) {
            assert_true(r[1].score == r[0].score || r[1].score == cfg.score_level);
        } else {
            moved += r[1].score != r[0].score;
        }
        if (k < RH_SPIKES && t == at[k]) {
            k++;
            seen = 0;
        }
        if (t == off) {
            *off_a = r[0].score;
            *off_b = r[1].score;
        }
    }
    detector_destroy(d[0]);
    detector_destroy(d[1]);
    detector_destroy(c);
    free(x);
    return moved;
}

/* onset_rhythm: a daily one-reading spike with a jitter of a few readings (seeds 1-3) through
 * onset_rhythm 0 and 1, alike in every decision. Spike 0 comes while learning; days 1-11 have
 * an onset each (the spike, or a reading up to RH_EARLY before it where the predictor came to
 * expect it), ranked above score_level + 0.005 without the rule. With it, each day's onset from
 * the third repeat on ranks at score_level (its gap to an earlier one matches two earlier gaps
 * within 1/32 of it), except day 4's: the first training (at 1,200) narrowed the error scale,
 * so the first spike under it has a raw score well above the three before it (news once;
 * measured: 5.80 against at most 4.39, seed 1). Nothing else's score moves. A spike of the same
 * size off the schedule (in the middle of day 8) ranks as without the rule, and so does spike 6 on
 * schedule when it goes to 5.0 (not the routine's size), while day 7 stays routine (after it, that
 * spike in the long window keeps days 8-10 below score_level, seed 1: the chain breaks). A save and
 * load after the fifth spike continues bit for bit. Fails with the rule off, without its size
 * test, and with the onsets' times or sizes not saved (the loaded copy parts from the saved
 * detector: found so). */
static void test_onset_rhythm(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.onset_rhythm, 1);
    const float red = def.score_level;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float sa[RH_SPIKES], sb[RH_SPIKES], oa = -1.0f, ob = -1.0f, ba[RH_SPIKES], bb[RH_SPIKES];
        int moved = routine_run(seed, -1, 150 + 8 * RH_PERIOD + RH_PERIOD / 2,
                                150 + 5 * RH_PERIOD - 20, sa, sb, &oa, &ob);
        float u, v;
        int bmoved = routine_run(seed, 6, -1, -1, ba, bb, &u, &v);
        print_message("seed %d: days 1-11 %.3f %.3f %.3f %.3f %.3f ... %.3f without, %.3f %.3f "
                      "%.3f %.3f %.3f ... %.3f with; off the schedule %.3f -> %.3f; spike 6 at "
                      "5.0: %.3f -> %.3f\n",
                      (int)seed, sa[1], sa[2], sa[3], sa[4], sa[5], sa[11], sb[1], sb[2], sb[3],
                      sb[4], sb[5], sb[11], oa, ob, ba[6], bb[6]);
        assert_int_equal(moved, 0);
        for (int k = 1; k < RH_SPIKES; k++) {
            assert_true(sa[k] >= red + 0.005f);
            if (k >= 5)
                assert_true(sb[k] == red);
            else
                assert_true(sb[k] == sa[k]);
        }
        assert_true(oa >= red + 0.005f && ob == oa);
        assert_true(ba[6] >= red + 0.005f && bb[6] == ba[6]);
        assert_true(bb[7] == red); /* the schedule goes on after it */
        assert_int_equal(bmoved, 0);
    }
}

/* cut_and_continue over make_routine (seed 1, the defaults), cut after its fifth spike, to
 * format fmt, whose config ended before the field at offset field (-1 where it may lie in the
 * tail padding): at least 4 onsets after the cut, bit for bit as saved. */
static void routine_load_older(size_t field, uint32_t fmt)
{
    int at[RH_SPIKES];
    float *x = make_routine(1, -1, -1, at);
    struct detector_config cfg;
    detector_config_default(&cfg);
    double top;
    int opened;
    int onsets = cut_and_continue(&cfg, 1, x, RH_N, at[4] + 20, field, -1, fmt, &top, &opened);
    print_message("format %u load: %d onsets after the cut, largest score %.3f, as saved\n",
                  (unsigned)fmt, onsets, top);
    assert_true(onsets >= 4);
    free(x);
}

/* A format-32 save (no onset_rhythm in its config, no onsets' times) of make_routine's
 * detector (seed 1), cut after its fifth spike, loads with onset_rhythm 0 and continues bit for
 * bit as the saved detector run without it, through the repeats the rule would rank at
 * score_level; the same bytes claimed as format 33 are refused (-1 where the field may lie in
 * format 32's tail padding). */
static void test_load_format32(void **unused)
{
    (void)unused;
    routine_load_older(offsetof(struct detector_config, onset_rhythm), 32);
}

/* ---- fortieth round: a reading far beyond the device's record of values (range_far) ------- */

#define FD_N     3600
#define FD_FROM  200  /* the first scored reading (warmup): the range starts there */
#define FD_JUST  2400 /* a dip 0.2 of the range's width below its minimum */
#define FD_FAR   3000 /* a dip 0.8 of the width below it */
#define FD_SHARE 0.5f

/* Lowers x[t] to u widths below the range of x[FD_FROM .. t - 1] (the values the detector has
 * shown since it began scoring); returns the range's width. */
static double dip_below(float *x, int t, double u)
{
    float lo = x[FD_FROM], hi = x[FD_FROM];
    for (int k = FD_FROM; k < t; k++) {
        lo = x[k] < lo ? x[k] : lo;
        hi = x[k] > hi ? x[k] : hi;
    }
    x[t] = (float)(lo - u * ((double)hi - lo));
    return (double)hi - lo;
}

/* One sensor whose error scale is wide in a direction unrelated to the fault's: an AR(1) level
 * (0.5, innovations 0.1) with an upward burst (+0.5 to +1, decaying with the level) every 40
 * readings on average, and two single readings below its range: FD_JUST 0.2 of the width below
 * (news to no one) and FD_FAR 0.8 below (as NAB's ec2_request_latency_system_failure w0). */
static float *make_far_dip(uint64_t seed)
{
    float *x = malloc(sizeof(float) * FD_N);
    assert_non_null(x);
    uint64_t s = seed;
    double v = 0.0;
    for (int t = 0; t < FD_N; t++) {
        v = 0.5 * v + 0.1 * gauss(&s);
        if (rng_next(&s) % 40 == 0)
            v += 0.5 + 0.5 * (double)(rng_next(&s) >> 11) / 9007199254740992.0;
        x[t] = (float)v;
    }
    dip_below(x, FD_JUST, 0.2);
    dip_below(x, FD_FAR, 0.8);
    return x;
}

/* range_far: make_far_dip (seeds 1-3) through range_far 0 (a), 0.5 (b) and 0.5 with range_open
 * (c), the other settings the defaults. Before FD_FAR the three agree in every result (the
 * bursts and the just-beyond dip are not far); at FD_FAR, where a's score is the likelihood's,
 * below score_level, b reports the dip at 0.5 + 0.5 (1 - 0.5 / u) at least, u its excess in
 * widths of the range kept here, b's decision is a's, and c opens an episode (level, channel 0)
 * that ends within err_short readings, as an error's episode of one reading does. */
static void test_range_far(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float *x = make_far_dip(seed);
        detector_t *d[3];
        for (int i = 0; i < 3; i++) {
            struct detector_config cfg;
            detector_config_default(&cfg);
            cfg.range_far = i == 0 ? 0.0f : FD_SHARE;
            cfg.range_open = i == 2;
            d[i] = new_detector_cfg(&cfg, 1);
        }
        float lo = 0.0f, hi = 0.0f;
        int scored = 0, ended = -1;
        double u = 0.0;
        for (int t = 0; t < FD_N && ended < 0; t++) {
            struct detector_result r[3];
            for (int i = 0; i < 3; i++)
                step(d[i], x, t, 1, NULL, &r[i]);
            if (t < FD_FAR) {
                for (int i = 1; i < 3; i++) {
                    assert_true(r[i].score == r[0].score);
                    assert_int_equal(r[i].state, r[0].state);
                }
            } else if (t == FD_FAR) {
                u = (lo - x[t]) / ((double)hi - lo);
                print_message("seed %d: dip %.2f widths below the range: score %.3f without, "
                              "%.3f with range_far; opened %d (by %d)\n",
                              (int)seed, u, r[0].score, r[1].score, r[2].state == DET_ANOMALY,
                              r[2].opened_by);
                assert_true(u > 0.7 && u < 0.9);
                assert_true(r[0].score < 0.5f && r[0].state != DET_ANOMALY);
                assert_true(r[1].score >= 0.5 + 0.5 * (1.0 - FD_SHARE / u) - 1e-6);
                assert_int_equal(r[1].state, r[0].state);
                assert_int_equal(r[2].state, DET_ANOMALY);
                assert_int_equal(r[2].opened_by, DET_OPEN_LEVEL);
                assert_int_equal(r[2].top_channel, 0);
            } else if (r[2].state != DET_ANOMALY) {
                ended = t;
            }
            if (t == FD_JUST) /* 0.2 widths below: as without the rule (checked above) */
                assert_true((lo - x[t]) / ((double)hi - lo) > 0.15);
            if (r[0].state != DET_LEARNING) {
                lo = scored == 0 || x[t] < lo ? x[t] : lo;
                hi = scored == 0 || x[t] > hi ? x[t] : hi;
                scored++;
            }
        }
        assert_true(ended > FD_FAR && ended <= FD_FAR + 10);
        for (int i = 0; i < 3; i++)
            detector_destroy(d[i]);
        free(x);
    }
}

/* A healthy 4-channel process (make_process) whose temperature (channel 2) still warms up, 20
 * degrees over the first readings (time constant 300), sets new maxima for its first thousand
 * readings: none is far beyond its range, which grows with it. A new device's range is narrow:
 * a jump of the pressure (channel 3) by 5 of its early range's widths at reading 300, 100
 * readings into the range, is not judged by it (too young). With range_far and range_open the
 * results are range_far 0's at every reading (seeds 1-3). */
static void test_range_far_warmup(void **unused)
{
    (void)unused;
    enum { N = 2400, C = 4, JUMP = 300 };
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float *x = make_process(N, seed);
        float lo = x[FD_FROM * C + 3], hi = lo;
        for (int t = 0; t < N; t++)
            x[t * C + 2] += (float)(20.0 * -expm1(-t / 300.0));
        for (int t = FD_FROM; t < JUMP; t++) {
            lo = x[t * C + 3] < lo ? x[t * C + 3] : lo;
            hi = x[t * C + 3] > hi ? x[t * C + 3] : hi;
        }
        x[JUMP * C + 3] = hi + 5.0f * (hi - lo);
        detector_t *d[2];
        for (int i = 0; i < 2; i++) {
            struct detector_config cfg;
            detector_config_default(&cfg);
            cfg.range_far = i == 0 ? 0.0f : FD_SHARE;
            cfg.range_open = i;
            d[i] = new_detector_cfg(&cfg, C);
        }
        int maxima = 0;
        float top = x[FD_FROM * C + 2];
        for (int t = 0; t < N; t++) {
            struct detector_result r[2];
            for (int i = 0; i < 2; i++)
                step(d[i], x, t, C, NULL, &r[i]);
            assert_true(r[1].score == r[0].score);
            assert_int_equal(r[1].state, r[0].state);
            assert_int_equal(r[1].opened_by, r[0].opened_by);
            if (t > FD_FROM && x[t * C + 2] > top) {
                top = x[t * C + 2];
                maxima++;
            }
        }
        print_message("seed %d: %d new temperature maxima, none far\n", (int)seed, maxima);
        assert_true(maxima >= 50);
        for (int i = 0; i < 2; i++)
            detector_destroy(d[i]);
        free(x);
    }
}

/* A format-33 save (no range_far in its config) of make_far_dip's detector (seed 1) with
 * range_far and range_open on, cut 10 readings before its far dip, loads with both 0 and
 * continues bit for bit as the saved detector run without them, through the dip the rule would
 * report at 0.69 and open on (test_range_far): no score there reaches 0.5, nothing opens. The
 * same bytes claimed as format 34 are refused (-1 where the field may lie in format 33's tail
 * padding). */
static void test_load_format33(void **unused)
{
    (void)unused;
    float *x = make_far_dip(1);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.range_far = FD_SHARE;
    cfg.range_open = 1;
    double top;
    int opened;
    cut_and_continue(&cfg, 1, x, FD_FAR + 1, FD_FAR - 10,
                     offsetof(struct detector_config, range_far), -1, 33, &top, &opened);
    print_message("format 33 load: largest score %.3f after the cut, %d opened, as saved\n", top,
                  opened);
    assert_true(top < 0.5);
    assert_int_equal(opened, 0);
    free(x);
}

/* ---- forty-third round: a slow excursion beyond every value the device has shown (mean_far) - */

#define MF_N    3000
#define MF_FROM 2400 /* the excursion starts: MF_RAMP readings down, MF_HOLD held, then back */
#define MF_RAMP 25
#define MF_HOLD 40
#define MF_U    0.3 /* the held level's mean, in widths of the range below its minimum */

/* One sensor that wanders (an AR(1) level, 0.995, innovations 0.05, which persistence predicts
 * best) with a single-reading upward spike (+0.5 to +1) every 40 readings on average, so its
 * error scale is wide, that from MF_FROM goes down over MF_RAMP readings, by about half an
 * error scale a reading, to a level whose mean over the held readings lies MF_U of the range's
 * width below every value shown before (from the first scored reading FD_FROM), holds it
 * MF_HOLD readings and comes back: NAB's ambient_temperature_system_failure in kind (a level
 * 0.1-0.4 widths beyond a long-held range, reached in readings the predictor's error scale
 * calls ordinary). */
static float *make_slow_excursion(uint64_t seed)
{
    float *x = malloc(sizeof(float) * MF_N);
    assert_non_null(x);
    uint64_t s = seed;
    double v = 0.0, lo = 0.0, hi = 0.0, held = 0.0;
    for (int t = 0; t < MF_N; t++) {
        v = 0.995 * v + 0.05 * gauss(&s);
        const int spike = rng_next(&s) % 40 == 0;
        x[t] = (float)(v + (spike ? 0.5 + 0.5 * (double)(rng_next(&s) >> 11) / 0x1p53 : 0.0));
        if (t >= FD_FROM && t < MF_FROM) {
            lo = t == FD_FROM || x[t] < lo ? x[t] : lo;
            hi = t == FD_FROM || x[t] > hi ? x[t] : hi;
        }
        held += t >= MF_FROM + MF_RAMP && t < MF_FROM + MF_RAMP + MF_HOLD ? x[t] / MF_HOLD : 0.0;
    }
    const double drop = held - lo + MF_U * (hi - lo); /* the held readings' mean at MF_U below */
    for (int t = MF_FROM; t < MF_FROM + 2 * MF_RAMP + MF_HOLD; t++) {
        const int k = t - MF_FROM, up = k - MF_RAMP - MF_HOLD;
        const double a = k < MF_RAMP ? (k + 1.0) / MF_RAMP : up < 0 ? 1.0 : -up / (double)MF_RAMP;
        x[t] -= (float)(drop * (up < 0 ? a : 1.0 + a));
    }
    return x;
}

/* mean_far: make_slow_excursion (seeds 1-3) with mean_far 0 (a) and its default (b), range_far
 * off in both (a single reading of the held level may lie 0.5 widths out, which is range_far's
 * business, not this test's) and the linear baseline or persistence serving (model_kind
 * linear: both follow a level, as persistence did in NAB's seed 2; an LSTM that holds its
 * trained level sees the excursion in its error, as in seeds 1 and 3). Before the climb the two
 * agree in every result. In a, no score of the excursion reaches score_level: the error sees
 * the climb as ordinary readings. In b, the first reading whose short mean lies more than the share
 * beyond the range of every value shown before it is an onset at score_level or more, none
 * after it while the mean stays out, and a crossing again soon after (the range takes in the
 * excursion's readings as they leave the short window) is ranked at the lowest onset rank (its
 * quiet is a few readings). The decisions are a's at every reading (only the score moves). A
 * copy loaded from b's save at the onset continues bit for bit (mf_on saved). With trip_level the
 * decisions compared are the state machines' (machine_state); the reported state may differ by
 * trips at the trip level (asserted), which follow the score by design. */
static void test_mean_far(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float *x = make_slow_excursion(seed);
        detector_t *d[2], *e = NULL;
        for (int i = 0; i < 2; i++) {
            struct detector_config cfg;
            detector_config_default(&cfg);
            cfg.range_far = 0.0f;
            cfg.model_kind = DET_MODEL_LINEAR; /* follows the level, as persistence does */
            cfg.mean_far = i == 0 ? 0.0f : cfg.mean_far;
            d[i] = new_detector_cfg(&cfg, 1);
        }
        assert_true(d[1]->cfg.mean_far > 0.0f); /* the default is on */
        double top_a = 0.0, first = 0.0, later = 0.0;
        int onsets = 0, at = -1;
        for (int t = 0; t < MF_N; t++) {
            struct detector_result r[2], re;
            for (int i = 0; i < 2; i++)
                step(d[i], x, t, 1, NULL, &r[i]);
            if (e != NULL) {
                step(e, x, t, 1, NULL, &re);
                assert_same_result(&r[1], &re, 1);
            }
            assert_int_equal(machine_state(d[1], &r[1]), machine_state(d[0], &r[0]));
            assert_true(t >= MF_FROM || r[1].score == r[0].score);
            if (t < MF_FROM)
                continue;
            top_a = r[0].score > top_a ? r[0].score : top_a;
            if (r[1].score >= 0.5f && r[0].score < 0.5f) {
                onsets++;
                if (at < 0) {
                    at = t;
                    first = r[1].score;
                    e = reloaded(d[1]);
                } else if (r[1].score > later) {
                    later = r[1].score;
                }
            }
        }
        print_message("seed %d: largest score of the excursion %.3f without mean_far; with it "
                      "%d onsets, the first at reading %d (%.3f; climb from %d), the others at "
                      "%.3f at most\n",
                      (int)seed, top_a, onsets, at, first, MF_FROM, later);
        assert_true(top_a < 0.5);
        assert_true(onsets >= 1);
        assert_true(at > MF_FROM && at < MF_FROM + MF_RAMP + MF_HOLD);
        assert_true(later < 0.51); /* a crossing again right after: the lowest onset rank */
        detector_destroy(e);
        detector_destroy(d[1]);
        detector_destroy(d[0]);
        free(x);
    }
}

/* A format-35 save (no mean_far in its config) of make_slow_excursion's detector (seed 1), cut
 * before its climb, loads with mean_far 0 and continues bit for bit as the saved detector run
 * without it, through the excursion the rule reports (test_mean_far): no score reaches 0.5.
 * The same bytes claimed as format 36 are refused (-1 where the field may lie in format 35's
 * tail padding). */
static void test_load_format35(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.range_far = 0.0f; /* test_mean_far's settings */
    cfg.model_kind = DET_MODEL_LINEAR;
    float *x = make_slow_excursion(1);
    double top;
    int opened, onsets = cut_and_continue(&cfg, 1, x, MF_N, MF_FROM - 10,
                                          offsetof(struct detector_config, mean_far), -1, 35, &top,
                                          &opened);
    print_message("format 35 load: %d readings at 0.5 or more after the cut (largest %.3f), as "
                  "saved\n",
                  onsets, top);
    assert_int_equal(onsets, 0);
    free(x);
}

/* A healthy one-sensor device that warms up, 20 over its first readings (time constant 300) on
 * top of a steady climb of 0.002 a reading for the whole series and AR noise, sets new maxima
 * for as long as it runs; its short mean leaves the range of the values before it by (err_short
 * - 1) / 2 readings' climb at most, a small share of a width that grows with it: with mean_far
 * on, every result is mean_far 0's (seeds 1-3). */
static void test_mean_far_warmup(void **unused)
{
    (void)unused;
    enum { N = 3000 };
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float x[N], top = 0.0f;
        uint64_t s = seed;
        double v = 0.0;
        int maxima = 0; /* new maxima from the first scored reading on */
        for (int t = 0; t < N; t++) {
            v = 0.8 * v + 0.1 * gauss(&s);
            x[t] = (float)(20.0 * -expm1(-t / 300.0) + 0.002 * t + v);
            maxima += t > FD_FROM && x[t] > top;
            top = t >= FD_FROM && x[t] > top ? x[t] : top;
        }
        struct detector_config cfg;
        detector_config_default(&cfg);
        detector_t *on = new_detector_cfg(&cfg, 1), *off;
        cfg.mean_far = 0.0f;
        off = new_detector_cfg(&cfg, 1);
        struct detector_result r_on, r_off;
        for (int t = 0; t < N; t++) {
            step(on, x, t, 1, NULL, &r_on);
            step(off, x, t, 1, NULL, &r_off);
            assert_same_result(&r_on, &r_off, 1);
        }
        print_message("seed %d: %d new maxima, no short mean far\n", (int)seed, maxima);
        assert_true(maxima >= 50);
        detector_destroy(on);
        detector_destroy(off);
    }
}

/* ---- forty-fifth round: a schedule kept in time, not in readings (rhythm_time) ------------- */

#define RT_DROP_AT  (150 + 5 * RH_PERIOD + 100) /* the first reading the feed drops */
#define RT_DROP_LEN 60                          /* five hours of readings never delivered */
#define RT_STEP_MS  300000                      /* readings 5 minutes apart */

/* The largest score of each detector in r[n] over each day k's onset (the readings from RH_EARLY
 * before spike k to the spike, at[k]; o the reading's index in the full series) into top[i][k]. */
static void rt_note(const struct detector_result *r, int n, int o, const int *at,
                    float top[][RH_SPIKES])
{
    for (int k = 0; k < RH_SPIKES; k++)
        for (int i = 0; o >= at[k] - RH_EARLY && o <= at[k] && i < n; i++)
            if (r[i].score > top[i][k])
                top[i][k] = r[i].score;
}

/* make_routine (seeds 1-3) with RT_DROP_LEN readings after day 5's spike never delivered (a
 * gateway's outage), the others at their own time (RT_STEP_MS apart), through rhythm_time 0 (a)
 * and 1 (b), alike in every decision. In readings the outage shortens the gaps that span it by
 * 60, far beyond 1/32 of a day (9): a finds no schedule through days 6 and 7 (each of their
 * onsets ranks above score_level + 0.005, as in test_onset_rhythm without the rule). In time
 * the gaps are still a day, give or take the jitter: b ranks every day's onset after the outage
 * at score_level. b saved before the outage and loaded goes on bit for bit (fails with the
 * onsets' times not saved: the loaded copy would judge in time on no onsets). Without
 * timestamps, rhythm_time 1 (the default) gives every result of rhythm_time 0, bit for bit. */
static void test_rhythm_time(void **unused)
{
    (void)unused;
    enum { N = RH_N - RT_DROP_LEN };
    struct detector_config cfg;
    detector_config_default(&cfg);
    assert_int_equal(cfg.rhythm_time, 1);
    const float red = cfg.score_level;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        int at[RH_SPIKES], orig[N];
        float *x = make_routine(seed, -1, -1, at), *y = malloc(sizeof(float) * N);
        assert_non_null(y);
        for (int t = 0, i = 0; t < RH_N; t++)
            if (t < RT_DROP_AT || t >= RT_DROP_AT + RT_DROP_LEN) {
                orig[i] = t;
                y[i++] = x[t];
            }
        detector_t *d[2], *u[2], *c = NULL;
        for (int i = 0; i < 2; i++) {
            cfg.rhythm_time = i;
            d[i] = new_detector_cfg(&cfg, 1);
            u[i] = new_detector_cfg(&cfg, 1);
        }
        float top[2][RH_SPIKES] = {{0}};
        for (int i = 0; i < N; i++) {
            struct detector_result r[2], q[2], rc;
            if (orig[i] == at[4] + 20)
                c = reloaded(d[1]);
            const int64_t ts = (int64_t)orig[i] * RT_STEP_MS;
            for (int k = 0; k < 2; k++) {
                step_ts(d[k], ts, y, i, 1, NULL, &r[k]);
                step_ts(u[k], DETECTOR_NO_TIME, y, i, 1, NULL, &q[k]);
            }
            assert_int_equal(r[1].state, r[0].state);
            assert_true(r[1].likelihood == r[0].likelihood);
            assert_same_result(&q[0], &q[1], 1);
            if (c) {
                step_ts(c, ts, y, i, 1, NULL, &rc);
                assert_same_result(&r[1], &rc, 1);
            }
            rt_note(r, 2, orig[i], at, top);
        }
        print_message("seed %d: days 5-11 in readings %.3f %.3f %.3f %.3f %.3f %.3f %.3f, in time "
                      "%.3f %.3f %.3f %.3f %.3f %.3f %.3f\n",
                      (int)seed, top[0][5], top[0][6], top[0][7], top[0][8], top[0][9], top[0][10],
                      top[0][11], top[1][5], top[1][6], top[1][7], top[1][8], top[1][9], top[1][10],
                      top[1][11]);
        assert_true(top[0][6] >= red + 0.005f && top[0][7] >= red + 0.005f);
        for (int k = 6; k < RH_SPIKES; k++)
            assert_true(top[1][k] == red);
        for (int i = 0; i < 2; i++) {
            detector_destroy(d[i]);
            detector_destroy(u[i]);
        }
        detector_destroy(c);
        free(x);
        free(y);
    }
}

/* A format-36 save (no rhythm_time in its config, no onsets' times) of make_routine's detector
 * (seed 1) with rhythm_time set (the default), cut after its fifth spike, loads with rhythm_time
 * 0 (gaps in readings, as it ran: the kept onsets keep their counts) and continues bit for bit
 * as the saved detector run without it; the same bytes claimed as format 37 are refused (-1
 * where the field may lie in format 36's tail padding). */
static void test_load_format36(void **unused)
{
    (void)unused;
    routine_load_older(offsetof(struct detector_config, rhythm_time), 36);
}

const struct CMUnitTest detector_range_tests[] = {
    cmocka_unit_test(test_onset_rhythm),    cmocka_unit_test(test_load_format32),
    cmocka_unit_test(test_range_far),       cmocka_unit_test(test_range_far_warmup),
    cmocka_unit_test(test_load_format33),   cmocka_unit_test(test_mean_far),
    cmocka_unit_test(test_mean_far_warmup), cmocka_unit_test(test_load_format35),
    cmocka_unit_test(test_rhythm_time),     cmocka_unit_test(test_load_format36),
};
const size_t detector_range_count = sizeof detector_range_tests / sizeof detector_range_tests[0];

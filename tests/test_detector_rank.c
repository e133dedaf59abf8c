/* tests/test_detector_rank.c: unit tests of the rules that rank an onset's reported score
 * below the record's (model/detector_onset.c): onset_now and onset_tie, with their formats, and
 * the format-39 and format-40 load tests that reuse their series (avg_epochs, lstm_min_rows).
 * Part of test_detector: tests/test_detector.c runs them right after tests/test_detector_range.c,
 * in the order of the single file they were moved from; kept apart from that file (the device's
 * rhythm and record of values) only to keep each a readable size, and because these tests share
 * fixtures of their own (fb_at's series, ranks_side_by_side) and none of its. The fixtures shared
 * with the other parts are in tests/test_detector_fx.c. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "detector.h"
#include "detector_int.h"
#include "err.h"
#include "test_detector_fx.h"

/* ---- forty-seventh round: an onset marked on a reading back in the noise (onset_now) ------- */

enum { FB_N = 3000, FB_RUN = 9 };
static const int fb_at[] = {700, 1130, 1610, 2240, 2600}; /* irregular: no schedule */

/* FB_N readings of white noise from the generator s (caller owns; free with free). */
static float *fb_noise(uint64_t *s)
{
    float *x = malloc(sizeof(float) * FB_N);
    assert_non_null(x);
    for (int t = 0; t < FB_N; t++)
        x[t] = (float)gauss(s);
    return x;
}

/* One channel of white noise (the predictors learn to expect 0, the error scale is about 1)
 * with fading bursts at fb_at: a reading 6 deviations out, then FB_RUN readings of +-1.5
 * deviations. Alone each of those is ordinary (its raw score as a short mean stays below
 * score_level), but they carry the short mean up after the spike, so it crosses the level on
 * one of them: the onset is marked on a reading back in the noise, a burst that is fading. */
static float *make_fading_bursts(uint64_t seed)
{
    uint64_t s = seed;
    float *x = fb_noise(&s);
    for (size_t i = 0; i < sizeof fb_at / sizeof fb_at[0]; i++) {
        x[fb_at[i]] = rng_next(&s) & 1 ? 6.0f : -6.0f;
        for (int k = 1; k <= FB_RUN; k++)
            x[fb_at[i] + k] = k % 2 ? 1.5f : -1.5f;
    }
    return x;
}

/* Side by side, for a rule of the onset rank that moves only the score: detector a (cfg_a)
 * and b (cfg_b) fed x[FB_N] (one channel). Every decision is a's (state, flag, decision
 * likelihood, raw score), and so is every score below score_level; at an onset b ranks at most
 * as a does and still at score_level or more. raws[t] gets a's raw scores; at each onset, check
 * gets the reading, both results, raws and the largest raw score of the short window (peak). */
struct rank_check {
    int seed, lowered, kept;
    int err_short; /* the detectors' (set by ranks_side_by_side) */
    float red;     /* their score_level (likewise) */
    void (*at_onset)(struct rank_check *c, int t, const struct detector_result r[2],
                     const float *raws, float peak);
};

static void ranks_side_by_side(const struct detector_config *cfg_a,
                               const struct detector_config *cfg_b, const float *x,
                               struct rank_check *c)
{
    const float red = c->red = cfg_a->score_level;
    const int S = c->err_short = cfg_a->err_short;
    float *raws = malloc(sizeof(float) * FB_N);
    assert_non_null(raws);
    detector_t *d[2];
    d[0] = new_detector_cfg(cfg_a, 1);
    d[1] = new_detector_cfg(cfg_b, 1);
    for (int t = 0; t < FB_N; t++) {
        struct detector_result r[2];
        for (int i = 0; i < 2; i++)
            step(d[i], x, t, 1, NULL, &r[i]);
        raws[t] = r[0].raw;
        float peak = 0.0f;
        for (int k = t >= S - 1 ? t - S + 1 : 0; k <= t; k++)
            peak = raws[k] > peak ? raws[k] : peak;
        assert_int_equal(r[1].state, r[0].state);
        assert_int_equal(r[1].is_anomaly, r[0].is_anomaly);
        assert_true(r[1].likelihood == r[0].likelihood);
        assert_true(r[1].raw == r[0].raw);
        if (r[0].score < red) {
            assert_true(r[1].score == r[0].score);
            continue;
        }
        assert_true(r[1].score <= r[0].score && r[1].score >= red);
        c->at_onset(c, t, r, raws, peak);
    }
    detector_destroy(d[1]);
    detector_destroy(d[0]);
    free(raws);
}

/* onset_now: an onset b lowers is marked on a reading below its short window's largest raw
 * score (the excursion peaked earlier); one on the window's largest reading keeps a's rank. */
static void now_at_onset(struct rank_check *c, int t, const struct detector_result r[2],
                         const float *raws, float peak)
{
    (void)raws;
    if (r[1].score < r[0].score) {
        print_message("seed %d reading %d: onset %.4f -> %.4f (raw %.2f, window's largest %.2f)\n",
                      c->seed, t, r[0].score, r[1].score, r[0].raw, peak);
        assert_true(r[0].raw < peak);
        c->lowered++;
    }
    if (r[0].raw == peak) {
        assert_true(r[1].score == r[0].score);
        c->kept++;
    }
}

/* A rank rule (the int config field at offset field, 1 by default) through 0 (a) and the
 * default (b) side by side on make's series for seeds 1-3; c collects what at_onset counts. */
static void rank_rule_runs(size_t field, float *(*make)(uint64_t), struct rank_check *c)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(*(const int *)((const char *)&def + field), 1);
    for (c->seed = 1; c->seed <= 3; c->seed++) {
        float *x = make((uint64_t)c->seed);
        struct detector_config off = def;
        *(int *)((char *)&off + field) = 0;
        ranks_side_by_side(&off, &def, x, c);
        free(x);
    }
}

/* onset_now: make_fading_bursts (seeds 1-3) through onset_now 0 (a) and the default (b, 1),
 * side by side (ranks_side_by_side). b ranks some onset lower (the test fails with the rule
 * off), and each one it lowers is marked on a reading below the short window's largest raw
 * score; an onset on the window's largest reading is ranked as a ranks it. */
static void test_onset_now(void **unused)
{
    (void)unused;
    struct rank_check c = {.at_onset = now_at_onset};
    rank_rule_runs(offsetof(struct detector_config, onset_now), make_fading_bursts, &c);
    print_message("%d onsets lowered, %d onsets on their window's largest reading kept\n",
                  c.lowered, c.kept);
    assert_true(c.lowered >= 1);
}

/* The rank rules' load tests: a format-fmt save of x's detector (seed 1, the defaults), cut
 * (cut_and_continue) before the field at offset field, at reading at, continues bit for bit as
 * the saved detector run without the field; some reading after the cut is at 0.5 or more. */
static void load_rank_format(float *x, int at, size_t field, int fmt)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    double top;
    int opened, onsets = cut_and_continue(&cfg, 1, x, FB_N, at, field, -1, fmt, &top, &opened);
    print_message("format %d load: %d readings at 0.5 or more after the cut (largest %.3f), as "
                  "saved\n",
                  fmt, onsets, top);
    assert_true(onsets >= 1);
    free(x);
}

/* A format-37 save (no onset_now in its config) of make_fading_bursts' detector (seed 1) with
 * the defaults, cut between its second and third bursts, loads with onset_now 0 and continues
 * bit for bit as the saved detector run without it, through the bursts test_onset_now sees
 * lowered; the same bytes claimed as format 38 are refused (-1 where the field may lie in
 * format 37's tail padding). */
static void test_load_format37(void **unused)
{
    (void)unused;
    load_rank_format(make_fading_bursts(1), fb_at[2] - 200,
                     offsetof(struct detector_config, onset_now), 37);
}

/* ---- forty-eighth round: an onset that ties the record (onset_tie) ------------------------- */

/* One channel of white noise with equal spikes at fb_at (irregular: no schedule) far past the
 * raw score's cap (z^2 1e12), so every spike's raw score is the same float: each spike after the
 * first that the record since the training holds ties it. */
static float *make_equal_spikes(uint64_t seed)
{
    uint64_t s = seed;
    float *x = fb_noise(&s);
    for (size_t i = 0; i < sizeof fb_at / sizeof fb_at[0]; i++)
        x[fb_at[i]] = 1e9f;
    return x;
}

/* onset_tie: an onset b ranks at score_level below a's rank has a short window whose largest
 * raw score is, to the float, the raw score of a reading before that window, and no larger than
 * every one before it: the same error again (the record b compares with is the one since the
 * latest training, which the test does not see). */
static void tie_at_onset(struct rank_check *c, int t, const struct detector_result r[2],
                         const float *raws, float peak)
{
    if (!(r[1].score < r[0].score))
        return;
    const int S = c->err_short;
    float before = 0.0f;
    int seen = 0;
    for (int k = 0; k + S <= t; k++) {
        before = raws[k] > before ? raws[k] : before;
        seen |= raws[k] == peak;
    }
    print_message("seed %d reading %d: onset %.4f -> %.4f (window's largest raw %.3f, largest "
                  "before it %.3f)\n",
                  c->seed, t, r[0].score, r[1].score, peak, before);
    assert_true(r[1].score == c->red);
    assert_true(peak <= before && seen);
    c->lowered++;
}

/* onset_tie: make_equal_spikes (seeds 1-3) through onset_tie 0 (a) and the default (b, 1), side
 * by side (ranks_side_by_side). b ranks some onset at score_level that a ranks above it (the
 * test fails with the rule off), each a tie (tie_at_onset). */
static void test_onset_tie(void **unused)
{
    (void)unused;
    struct rank_check c = {.at_onset = tie_at_onset};
    rank_rule_runs(offsetof(struct detector_config, onset_tie), make_equal_spikes, &c);
    print_message("%d onsets ranked at score_level\n", c.lowered);
    assert_true(c.lowered >= 1);
}

/* A format-38 save (no onset_tie in its config) of make_equal_spikes' detector (seed 1) with
 * the defaults, cut between its second and third spikes, loads with onset_tie 0 and continues
 * bit for bit as the saved detector run without it, through the spikes test_onset_tie sees
 * tie; the same bytes claimed as format 39 are refused (-1 where the field may lie in format
 * 38's tail padding). */
static void test_load_format38(void **unused)
{
    (void)unused;
    load_rank_format(make_equal_spikes(1), fb_at[2] - 200,
                     offsetof(struct detector_config, onset_tie), 38);
}

/* A format-39 save (no avg_epochs in its config) of make_equal_spikes' detector (seed 1) with
 * the defaults, cut between its second and third spikes, loads with avg_epochs 0 and continues
 * bit for bit as the saved detector run without it, through the trainings after the cut; the
 * same bytes claimed as format 40 are refused (-1 where the field may lie in format 39's tail
 * padding: a NaN there, if the loader kept it, fails the config's check). */
static void test_load_format39(void **unused)
{
    (void)unused;
    load_rank_format(make_equal_spikes(1), fb_at[2] - 200,
                     offsetof(struct detector_config, avg_epochs), 39);
    /* After the cut above no LSTM serves (the trainings install persistence), so that run is
     * the same whatever avg_epochs the load gives: the loaded config itself. The default
     * (avg_epochs 1) survives a format-40 save and load; cut to format 39 it loads as 0, and
     * stays 0 through what the daemon applies to a detector it loads at start-up
     * (detector_apply_settings with the running defaults, daemon/pipeline_store.c). */
    struct detector_config cfg;
    detector_config_default(&cfg);
    detector_t *d = new_detector(1), *b;
    assert_true(d->cfg.avg_epochs == 1.0f);
    d->cfg.accept_grow = 0.0f; /* format 43's: no error blocks in the save */
    d->cfg.hold_echo = 0.0f;   /* format 44's: no level or error run in the save */
    d->cfg.hold_decay = 0.0f;  /* format 46's: no level or peak in the save */
    size_t len = detector_save_size(d), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(d, buf, len, &got), 0);
    assert_int_equal(detector_load(&b, buf, len), 0);
    assert_true(b->cfg.avg_epochs == 1.0f);
    detector_destroy(b);
    cut_to_format(buf, &len, offsetof(struct detector_config, avg_epochs), -1, 39);
    assert_int_equal(detector_load(&b, buf, len), 0);
    assert_true(b->cfg.avg_epochs == 0.0f);
    assert_int_equal(detector_apply_settings(b, &cfg), 0);
    assert_true(b->cfg.avg_epochs == 0.0f);
    detector_destroy(b);
    detector_destroy(d);
    free(buf);
}

/* A format-40 save (no lstm_min_rows in its config) of make_equal_spikes' detector (seed 1)
 * with the defaults, cut between its second and third spikes, loads with lstm_min_rows 0 and
 * continues bit for bit as that detector; the same bytes claimed as format 41 are refused (-7,
 * out of the field's range, where it may lie in format 40's tail padding: -1 is a valid
 * setting). The loaded config keeps 0 until the running settings are applied, and a set value
 * survives a format-41 save and load. */
static void test_load_format40(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    float *x = make_equal_spikes(1);
    double top;
    int opened, onsets = cut_and_continue(&def, 1, x, FB_N, fb_at[2] - 200,
                                          offsetof(struct detector_config, lstm_min_rows), -7, 40,
                                          &top, &opened);
    assert_true(onsets >= 1);
    free(x);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.lstm_min_rows = 600;
    cfg.accept_grow = 0.0f; /* format 43's: no error blocks in the save */
    cfg.hold_echo = 0.0f;   /* format 44's: no level or error run in the save */
    cfg.hold_decay = 0.0f;  /* format 46's: no level or peak in the save */
    detector_t *d = new_detector_cfg(&cfg, 1), *b;
    size_t len = detector_save_size(d), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(d, buf, len, &got), 0);
    assert_int_equal(detector_load(&b, buf, len), 0);
    assert_int_equal(b->cfg.lstm_min_rows, 600);
    detector_destroy(b);
    cut_to_format(buf, &len, offsetof(struct detector_config, lstm_min_rows), -1, 40);
    assert_int_equal(detector_load(&b, buf, len), 0);
    assert_int_equal(b->cfg.lstm_min_rows, 0);
    /* As vigild restores it: the running settings applied, model.lstm_min_rows among them
     * (the default -1; a configured 0 or N alike), so a format-40 detector follows vigild.conf
     * from then on; out of range: refused, nothing changed. Saved again in format 41 it keeps
     * the value it took. */
    struct detector_config run = def;
    run.lstm_min_rows = -2;
    assert_int_equal(detector_apply_settings(b, &run), ERR_INVAL);
    assert_int_equal(b->cfg.lstm_min_rows, 0);
    run.lstm_min_rows = 900;
    assert_int_equal(detector_apply_settings(b, &run), 0);
    assert_int_equal(b->cfg.lstm_min_rows, 900);
    assert_int_equal(detector_apply_settings(b, &def), 0);
    assert_int_equal(b->cfg.lstm_min_rows, -1);
    size_t len2 = detector_save_size(b), got2;
    unsigned char *buf2 = malloc(len2);
    assert_non_null(buf2);
    assert_int_equal(detector_save(b, buf2, len2, &got2), 0);
    detector_destroy(b);
    assert_int_equal(detector_load(&b, buf2, got2), 0);
    assert_int_equal(b->cfg.lstm_min_rows, -1);
    detector_destroy(b);
    free(buf2);
    detector_destroy(d);
    free(buf);
}

const struct CMUnitTest detector_rank_tests[] = {
    cmocka_unit_test(test_onset_now),     cmocka_unit_test(test_load_format37),
    cmocka_unit_test(test_onset_tie),     cmocka_unit_test(test_load_format38),
    cmocka_unit_test(test_load_format39), cmocka_unit_test(test_load_format40),
};
const size_t detector_rank_count = sizeof detector_rank_tests / sizeof detector_rank_tests[0];

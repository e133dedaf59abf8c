/* tests/test_detector_level.c: unit tests of levels that moved (model/detector_release.c):
 * offset_release, offset_trend, record_young and spread_mean, with their formats. Part of
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

/* ---- thirty-first round: a level that moved and stays (offset_release) --------------------- */

/* Runs x (one channel, 2,000 readings, freed) with offset_release `after`: *opened the first
 * reading flagged from OR_ONSET on (-1: none), returns the length of that episode (to the end
 * if it does not end); *why its ended_by, *asked whether the reading that ended it asked for a
 * training, *again the episodes opened after it; asserts nothing opens before OR_ONSET. With
 * save_at > 0 a loaded copy saved there runs beside it bit for bit. */
static int new_level_run(float *x, int after, int save_at, int *opened, enum detector_end *why,
                         int *asked, int *again)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.offset_release = after;
    detector_t *d = new_detector_cfg(&cfg, 1), *e = NULL;
    struct detector_result res;
    int ended = -1;
    *opened = -1;
    *why = DET_END_NONE;
    *asked = *again = 0;
    for (int t = 0; t < 2000; t++) {
        step_twin(d, &e, save_at, x, t, 1, &res);
        if (t < OR_ONSET && res.changed && res.is_anomaly)
            fail_msg("an episode opens at %d, before the new level", t);
        if (t >= OR_ONSET && *opened < 0 && res.is_anomaly)
            *opened = t;
        if (*opened >= 0 && ended < 0 && res.ended_by != DET_END_NONE) {
            ended = t;
            *why = res.ended_by;
            *asked = res.want_train;
        } else if (ended >= 0) {
            *again += res.changed && res.is_anomaly;
        }
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
    return *opened < 0 ? 0 : (ended < 0 ? 2000 : ended) - *opened;
}

/* offset_release (the default, 100): on one channel a level that moved by 30 innovation
 * deviations and stays is flagged at its onset as before, and its episode ends as released
 * on its 100th reading (99 flagged; within 10 more: the short window must be a steady offset),
 * asking for a training, after which nothing opens again in the 500 readings left; without it
 * (0) the error holds the same episode until it is accepted at accept_after (500). Seeds 1-4;
 * a save inside the episode (1,450) continues bit for bit. Without the release in
 * detector__score the first assertion fails (the episode lasts 500 readings). */
static void test_offset_release(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.offset_release, 100);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        int o1, o0, a1, a0, g1, g0;
        enum detector_end w1, w0;
        int l1 =
            new_level_run(make_new_level(seed, 3.0), 100, seed == 1 ? 1450 : 0, &o1, &w1, &a1, &g1);
        int l0 = new_level_run(make_new_level(seed, 3.0), 0, 0, &o0, &w0, &a0, &g0);
        print_message("seed %d: new level flagged at +%d, episode %d readings (end %d, training "
                      "asked %d, %d opened after); offset_release 0: %d readings (end %d)\n",
                      (int)seed, o1 - OR_ONSET, l1, (int)w1, a1, g1, l0, (int)w0);
        assert_true(l1 >= 99 && l1 <= 110);
        assert_int_equal(w1, DET_END_RELEASED);
        assert_true(a1);
        assert_int_equal(g1, 0);
        assert_int_equal(o1, o0);
        assert_true(o1 >= OR_ONSET && o1 - OR_ONSET <= FAULT_LATENCY);
        assert_true(l0 >= def.accept_after);
        assert_int_equal(w0, DET_END_ACCEPTED);
    }
}

/* Devices whose levels the operating point and the step test judge keep their episodes as
 * before: the same result on every reading with offset_release 100 as with 0. */
static void test_offset_release_multichannel(void **unused)
{
    (void)unused;
    assert_multichannel_unchanged(offsetof(struct detector_config, offset_release),
                                  "offset_release");
}

/* A format-28 save (no offset_release in its config; on main the field takes format 28's tail
 * padding, after range_quiet: -1 there, which a loader that read it would refuse, and which
 * makes the same bytes claimed as format 29 a refused config) of the one-channel new level's
 * detector, cut inside the episode (1,450), loads with offset_release 0 and continues bit for
 * bit as the saved detector run without it: the episode is held to its acceptance. */
static void test_load_format28(void **unused)
{
    (void)unused;
    float *x = make_new_level(2, 3.0);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, 2000, 1450, 1,
                                   offsetof(struct detector_config, offset_release), -1, 28);
    print_message("format 28 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* ---- sixtieth round: a drift is not a settled level (offset_trend) ------------------------- */

static int drift_run(float *x, float trend, int save_at, int *first_end, enum detector_end *why)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.offset_trend = trend;
    cfg.accept_grow = 0.0f; /* the drift accepted at accept_after, as the sixtieth round ran */
    return cfg_drift_run(&cfg, x, save_at, first_end, why);
}

/* offset_trend 3 (the default; negative or NaN refused): a level that steps and then keeps
 * drifting away (0.01 a reading, about 0.09 of the level's deviations, for the 600 readings
 * left) is no longer let go as settled: with offset_trend 0 (main's behaviour) the episode
 * ends as released on about its 100th reading and the training it asks for takes the drift
 * in (fewer than 150 readings flagged of 600); with 3 it is held until it is accepted at
 * accept_after (500 readings). The same step that stays (rate 0) is released as before, on
 * its 100th-110th reading, and a drift that stops after 200 readings is released once it has
 * stopped. Seeds 1-3; a save inside the held episode (1,650) continues bit for bit. With
 * channel_drifts forced to 0 the held drift is released at +99 (the test fails). */
static void test_offset_trend(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    assert_true(cfg.offset_trend == 3.0f);
    detector_t *bad;
    cfg.offset_trend = -1.0f;
    assert_int_equal(detector_create(&bad, &cfg, 1), ERR_INVAL);
    cfg.offset_trend = NAN;
    assert_int_equal(detector_create(&bad, &cfg, 1), ERR_INVAL);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        int e0, e3, es, eq;
        enum detector_end w0, w3, ws, wq;
        const int f0 = drift_run(make_drift(seed, 0.01, 0), 0.0f, 0, &e0, &w0);
        const int f3 = drift_run(make_drift(seed, 0.01, 0), 3.0f, seed == 1 ? 1650 : 0, &e3, &w3);
        const int fs = drift_run(make_drift(seed, 0.0, 0), 3.0f, 0, &es, &ws);
        const int fq = drift_run(make_drift(seed, 0.01, 200), 3.0f, 0, &eq, &wq);
        print_message("seed %d: drift, offset_trend 0: %d of 600 flagged, ended at +%d (%d); 3: "
                      "%d flagged, ended at +%d (%d); step: %d flagged, ended at +%d (%d); drift "
                      "stopping at +200: %d flagged, ended at +%d (%d)\n",
                      (int)seed, f0, e0, (int)w0, f3, e3, (int)w3, fs, es, (int)ws, fq, eq,
                      (int)wq);
        assert_int_equal(w0, DET_END_RELEASED);
        assert_true(e0 >= 99 && e0 <= 110 && f0 < 150);
        assert_int_equal(w3, DET_END_ACCEPTED);
        assert_true(e3 >= 500 && f3 >= 500);
        assert_int_equal(ws, DET_END_RELEASED);
        assert_true(es >= 99 && es <= 110);
        assert_int_equal(wq, DET_END_RELEASED);
        assert_true(eq >= 200 && eq < 400);
    }
}

/* A format-41 save (no offset_trend in its config) of make_drift's detector (seed 1) cut inside
 * the drift's episode loads with offset_trend 0 and continues bit for bit as that detector (which
 * releases the drift, as format 41 ran); junk (3.0f's bits) where the field would lie in format
 * 41's padding is not read. */
static void test_load_format41(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.offset_trend = 3.0f;
    /* A detector saved with offset_trend 3 keeps it in the current format; cut back to 41, 0. */
    struct detector_config kept, cut;
    drift_cut_and_kept(&cfg, OR_ONSET + 50, offsetof(struct detector_config, offset_trend), 41,
                       &kept, &cut);
    assert_true(kept.offset_trend == 3.0f);
    assert_true(cut.offset_trend == 0.0f);
}

/* session 21's review's young case (docs/reliability.md): one channel of N(0, 1) noise whose
 * level steps by 12 on the first reading after the warm-up (300 readings, `at`) and drifts on
 * by 0.05 a reading. */
static float *make_young_drift(uint64_t seed, int at)
{
    float *x = malloc(sizeof(float) * 2000);
    assert_non_null(x);
    for (int t = 0; t < 2000; t++)
        x[t] = (float)(gauss(&seed) + (t >= at ? 12.0 + 0.05 * (t - at) : 0.0));
    return x;
}

/* record_young (the default 1): make_young_drift's fault, on the first reading after the
 * warm-up's training, is caught where its decision likelihood reaches alarm_level: over data
 * seeds 1-8 it is flagged within FAULT_LATENCY readings and through nearly all of its first
 * 300 readings in 5 (1, 3, 5, 6, 7; in 2, 4 and 8 the young Student t keeps the likelihood at
 * 0.42-0.45, below the alarm: not caught either way), against 1 (seed 6) with record_young 0,
 * where record_open_one's 0.5 applies while the record since the training is empty and the
 * fault's own short means then widen the young long window. A flagged fault never flags fewer
 * readings with the rule. Fails with the record_young condition removed from detector__score. */
static void test_record_young(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.record_young, 1);
    int caught[3] = {0, 0, 0};
    for (uint64_t seed = 1; seed <= 8; seed++) {
        int first[3] = {-1, -1, -1}, flagged[3] = {0, 0, 0};
        for (int y = 0; y <= 2; y++) {
            struct detector_config cfg = def;
            cfg.record_young = y > 0;
            cfg.warmup = 300; /* the review's daemon settings */
            cfg.retrain_every = 0;
            cfg.n_hidden = 8;
            /* Restated in the eighty-second round: RECORD_RARE lets the fault's confirmed
             * opening pass record_open_one's gate on this young device of rare onsets, so it is
             * caught with record_young 0 as well (measured: the control fails). The guarantee is
             * record_young's where that rule does not apply: onset_rate 0. y = 2 (the review's):
             * the defaults themselves (onset_rate 1, where RECORD_RARE applies) catch it too. */
            if (y < 2)
                cfg.onset_rate = 0;
            detector_t *d = new_detector_cfg(&cfg, 1);
            float *x = make_young_drift(seed, 300);
            struct detector_result res;
            for (int t = 0; t < 600; t++) {
                step(d, x, t, 1, NULL, &res);
                if (t < 300)
                    continue;
                if (res.is_anomaly && first[y] < 0)
                    first[y] = t - 300;
                flagged[y] += res.is_anomaly;
            }
            detector_destroy(d);
            free(x);
            caught[y] += first[y] >= 0 && first[y] <= FAULT_LATENCY && flagged[y] >= 280;
        }
        print_message("seed %d: record_young 0: %d of 300 flagged (first +%d); 1: %d (first +%d); "
                      "defaults: %d (first +%d)\n",
                      (int)seed, flagged[0], first[0], flagged[1], first[1], flagged[2], first[2]);
        assert_true(flagged[1] >= flagged[0]);
    }
    assert_true(caught[1] >= 5);
    assert_true(caught[2] >= 5);
    assert_true(caught[0] <= 1);
}

/* ---- sixty-eighth round: a level that mostly repeats one value (spread_mean) ------------- */

/* One channel, HR_N readings of a counter that mostly reads 0 (NAB's rogue_agent_key_updown):
 * 1 reading in 10 at 0.5-2.0. From HR_ONSET, kind 0: a spike of +60 then +20, after which the
 * counter reads as before; kind 1: the same +60, then a lasting level of 40 (two thirds of the
 * peak) with the counter's noise on it: a fault, never half way back; kind 2: the same with a
 * lasting level of 20 (a third of the peak: what the decay's rule counts as back). */
static float *make_sparse_case(uint64_t seed, int kind)
{
    float *x = malloc(sizeof(float) * HR_N);
    assert_non_null(x);
    for (int t = 0; t < HR_N; t++) {
        const uint64_t r = rng_next(&seed);
        x[t] = r % 10 == 0 ? (float)(0.5 + 1.5 * (double)(r >> 11) / 9007199254740992.0) : 0.0f;
        if (t == HR_ONSET)
            x[t] += 60.0f;
        else if (t == HR_ONSET + 1)
            x[t] += kind == 1 ? 40.0f : 20.0f;
        else if (t > HR_ONSET && kind)
            x[t] += kind == 1 ? 40.0f : 20.0f;
    }
    return x;
}

/* Runs x with the defaults and spread_mean m: returns the readings flagged in [HR_ONSET, to);
 * *opened the episodes opened there, *sd the level's spread (eb_sd) at the first of them. */
static int sparse_flagged(const float *x, int m, int to, int *opened, float *sd)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.spread_mean = m;
    detector_t *d = new_detector_cfg(&cfg, 1);
    struct detector_result res;
    int flagged = 0;
    *opened = 0;
    *sd = -1.0f;
    for (int t = 0; t < to; t++) {
        step(d, x, t, 1, NULL, &res);
        if (t < HR_ONSET)
            continue;
        flagged += res.state == DET_ANOMALY;
        if (res.changed && res.state == DET_ANOMALY && (*opened)++ == 0)
            *sd = d->eb_sd;
    }
    detector_destroy(d);
    return flagged;
}

/* A spike on a counter that mostly reads 0, seeds 1-12: the level before it has a median
 * absolute deviation of 0, so with spread_mean 0 hold_echo and hold_decay wait and the error
 * holds the episode; with 1 (the default) the level has a spread and the decay's rule ends the
 * episode sooner (never later), and no more episodes open. Invalid settings are refused. */
static void test_spread_mean_spike(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    assert_int_equal(cfg.spread_mean, 1); /* on by default (format 47) */
    detector_t *bad;
    cfg.spread_mean = 2;
    assert_int_equal(detector_create(&bad, &cfg, 1), ERR_INVAL);
    cfg.spread_mean = -1;
    assert_int_equal(detector_create(&bad, &cfg, 1), ERR_INVAL);
    int sooner = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        float *x = make_sparse_case(seed, 0);
        int o1, o0;
        float sd1, sd0;
        const int f1 = sparse_flagged(x, 1, HR_ONSET + 40, &o1, &sd1);
        const int f0 = sparse_flagged(x, 0, HR_ONSET + 40, &o0, &sd0);
        print_message("seed %d sparse spike: spread_mean 1: %d flagged (%d opened, spread %.3g); "
                      "0: %d (%d, %.3g)\n",
                      (int)seed, f1, o1, (double)sd1, f0, o0, (double)sd0);
        free(x);
        assert_true(o1 >= 1 && o0 >= 1); /* the spike is flagged either way */
        assert_true(sd0 == 0.0f && sd1 > 0.0f);
        assert_true(f1 <= f0 && o1 <= o0);
        sooner += f1 < f0;
    }
    assert_true(sooner >= 9);
}

/* The nearest lasting fault on that counter (make_sparse_case kind 1: +60, then a level of 40
 * that stays), seeds 1-12: spread_mean 1 flags exactly the readings 0 flags, one episode held
 * until offset_release lets the settled level go (about 100 readings, measured: 99 in seed 1,
 * as with 0; the training it asks for learns the level). */
static void test_spread_mean_lasting(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        float *x = make_sparse_case(seed, 1);
        int o1, o0;
        float sd1, sd0;
        const int f1 = sparse_flagged(x, 1, HR_ONSET + 200, &o1, &sd1);
        const int f0 = sparse_flagged(x, 0, HR_ONSET + 200, &o0, &sd0);
        print_message("seed %d sparse lasting: spread_mean 1: %d of 200 flagged (%d opened); 0: "
                      "%d (%d)\n",
                      (int)seed, f1, o1, f0, o0);
        free(x);
        assert_int_equal(f1, f0);
        assert_int_equal(o1, o0);
        assert_true(f1 >= 90 && o1 == 1);
        /* kind 2 (measured for the round's cost, docs/detection.md): the lasting level a third
         * of the peak is flagged for about as long, its alarm perhaps split (the sixty-seventh
         * round's cost, now on such counters too); asserted: flagged for most of the 200. */
        x = make_sparse_case(seed, 2);
        const int g1 = sparse_flagged(x, 1, HR_ONSET + 200, &o1, &sd1);
        const int g0 = sparse_flagged(x, 0, HR_ONSET + 200, &o0, &sd0);
        print_message("seed %d sparse lasting at a third: spread_mean 1: %d of 200 flagged (%d "
                      "opened); 0: %d (%d)\n",
                      (int)seed, g1, o1, g0, o0);
        free(x);
        assert_true(g1 >= 80);
    }
}

/* A format-46 save (the readings since hold_decay's peak, an i32, between dk_peak and dk_left)
 * taken inside the decay's quiet after make_decay_case's spike (seed 1) loads, the count read
 * and dropped, and continues bit for bit as the saved detector; the same bytes without the count
 * claimed as 46 are refused. */
static void test_load_format46(void **unused)
{
    (void)unused;
    float *x = make_decay_case(1, 0);
    detector_t *a = new_detector(1), *b = NULL;
    const int cut = run_to_decay_quiet(a, x);
    assert_true(cut > HR_ONSET);
    assert_true(a->dk_left > 0 && a->dk_peak > 0.0f);
    size_t len = detector_save_size(a), got;
    unsigned char *buf = malloc(len + sizeof(int)), *plain = malloc(len);
    assert_non_null(buf);
    assert_non_null(plain);
    assert_int_equal(detector_save(a, buf, len, &got), 0);
    /* The plain save claimed as 46: one count short. */
    memcpy(plain, buf, len);
    as_format6(plain, &len, 46);
    assert_int_not_equal(detector_load(&b, plain, len), 0);
    /* Insert the count (junk: nothing reads it) before dk_left, right before prev_contrib. */
    const size_t mlen = a->lstm ? model_checkpoint_size(a->lstm) : 0;
    const size_t at = len - 4 - mlen - 8 -
                      sizeof(float) * (size_t)(a->cfg.err_short + a->cfg.err_window + a->C) -
                      sizeof(int);
    assert_memory_equal(buf + at, &a->dk_left, sizeof(int));
    memmove(buf + at + sizeof(int), buf + at, len - at);
    const int since = 12345;
    memcpy(buf + at, &since, sizeof since);
    len += sizeof(int);
    /* 1 (a valid spread_mean) in format 46's padding, where the field lies: not read. */
    cut_to_format(buf, &len, offsetof(struct detector_config, spread_mean), 1, 46);
    assert_int_equal(detector_load(&b, buf, len), 0);
    assert_int_equal(b->cfg.spread_mean, 0);
    assert_true(b->dk_left == a->dk_left && b->dk_peak == a->dk_peak);
    const int left = b->dk_left;
    struct detector_result ra, rb;
    for (int t = cut; t < HR_N; t++) {
        step(a, x, t, 1, NULL, &ra);
        step(b, x, t, 1, NULL, &rb);
        assert_same_result(&ra, &rb, 1);
    }
    print_message("format 46 load in the decay's quiet (%d readings of it left): continues bit "
                  "for bit\n",
                  left);
    detector_destroy(a);
    detector_destroy(b);
    free(plain);
    free(buf);
    free(x);
}

/* A format-46 save of a detector with hold_decay 0 (no decay state saved: nothing to drop) and
 * hold_echo on, of make_sparse_case's spike (seed 1; a level whose median absolute deviation is
 * 0, where spread_mean matters), cut inside its episode: loads with spread_mean 0 whatever
 * format 46's padding held (3.0f's bits, then 1, a valid value) and continues bit for bit as
 * the saved detector run without it; the same bytes claimed as 47 are refused. A detector saved
 * with spread_mean 1 keeps it (format 47). (Review of the sixty-eighth round.) */
static void test_load_format46_plain(void **unused)
{
    (void)unused;
    struct detector_config cfg, kept, cut;
    detector_config_default(&cfg);
    cfg.hold_decay = 0.0f;
    cfg.decay_run = 0;
    assert_true(cfg.hold_echo > 0.0f && cfg.spread_mean == 1);
    const int junk = float_bits(3.0f);
    float *x = make_sparse_case(1, 0);
    const int opened = load_older_format(&cfg, x, HR_N, HR_ONSET + 2, 1,
                                         offsetof(struct detector_config, spread_mean), junk, 46);
    print_message("format 46 load (hold_decay 0): %d anomalies opened after the cut, as saved\n",
                  opened);
    free(x);
    save_kept_and_cut(&cfg, offsetof(struct detector_config, spread_mean), 1, 46, &kept, &cut);
    assert_int_equal(kept.spread_mean, 1);
    assert_int_equal(cut.spread_mean, 0);
    assert_true(cut.hold_decay == 0.0f && cut.hold_echo == cfg.hold_echo);
}

/* spread_mean on a level of huge values: 3 readings in 8 at `big`, the rest at `base`, frozen
 * as at an opening. base 0, big 1e30 and 3e38: a median absolute deviation of 0, the mean's
 * spread taken, finite (summed in a double; at most half the deviations are not 0, so the mean
 * stays below FLT_MAX / 2). base -3e38, big 3e38: the median of the two middle values
 * overflows (-inf, as before this round), so do the deviations from it: the spread is inf,
 * never NaN, and neither hold_echo nor hold_decay ends anything on it (they wait, as with no
 * spread). Values never reach the ring as inf or NaN (imputed). (Review of the sixty-eighth
 * round.) */
static void test_spread_mean_huge(void **unused)
{
    (void)unused;
    const float base[3] = {-3e38f, 0.0f, 0.0f}, big[3] = {3e38f, 1e30f, 3e38f};
    for (int k = 0; k < 3; k++) {
        detector_t *d = new_detector(1);
        struct detector_result res;
        float *x = malloc(sizeof(float) * 60);
        assert_non_null(x);
        for (int t = 0; t < 60; t++)
            x[t] = t % 8 < 3 ? big[k] : base[k];
        for (int t = 0; t < 60; t++) /* learning: the context ring fills, nothing trains */
            step(d, x, t, 1, NULL, &res);
        d->eb_gap = 1 << 20; /* no episode just before */
        detector__echo_freeze(d);
        print_message("level %g / %g: median %g, spread %g\n", (double)base[k], (double)big[k],
                      (double)d->eb_med, (double)d->eb_sd);
        /* base -3e38: the median of two middle values -3e38 overflows to -inf (0.5f * (a + b),
         * as before this round); the rules wait on it as well (below). */
        assert_true(k == 0 ? isinf(d->eb_med) : d->eb_med == base[k]);
        assert_false(isnan(d->eb_sd));
        assert_true(d->eb_sd > 0.0f);
        if (k == 0)
            assert_true(isinf(d->eb_sd));
        else
            assert_true(isfinite(d->eb_sd));
        if (k == 0) {
            const float probe[4] = {base[k], big[k], 0.0f, -1e30f};
            d->dk_peak = fabsf(big[k] - base[k]); /* inf as well: decay_note keeps none such */
            for (int i = 0; i < 4; i++) {
                assert_int_equal(detector__echo_back(d, &probe[i]), 0);
                assert_int_equal(detector__decay_back(d, &probe[i]), 0);
            }
            d->dk_peak = 3e38f;
            for (int i = 0; i < 4; i++)
                assert_int_equal(detector__decay_back(d, &probe[i]), 0);
        }
        free(x);
        detector_destroy(d);
    }
}

/* ---- review of the sixty-eighth round: a training applied inside an open episode ---------- */

/* make_new_level's healthy AR(1) with, from HR_ONSET, a fault at +3.0 for `high` readings that
 * then falls to +1.2 and stays there (a lasting fault, 40 % of its peak: what the decay's test
 * counts as "back"; 16 of the values' deviations from the old level). */
static float *make_high_then_lasting(uint64_t seed, int high)
{
    float *x = make_new_level(seed, 0.0);
    for (int t = HR_ONSET; t < HR_N; t++)
        x[t] += t < HR_ONSET + high ? 3.0f : 1.2f;
    return x;
}

/* Runs x with the defaults and hold_decay f, a training applied (train_on: as a daemon's job
 * created before the episode and applied inside it) at reading train_at (-1: none): returns the
 * readings flagged in [from, from + 200), *opened the episodes opened there, *gap_at where
 * (from from) the first one ended (-1: not there) and *gap the readings unflagged before the
 * next opened (-1: none opened). */
static int lasting_flagged(const float *x, float f, int train_at, int from, int *opened,
                           int *gap_at, int *gap)
{
    *gap_at = *gap = -1;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.hold_decay = f;
    detector_t *d = new_detector_cfg(&cfg, 1);
    struct detector_result res;
    int flagged = 0;
    *opened = 0;
    for (int t = 0; t < from + 200; t++) {
        if (t == train_at) { /* on the readings before the episode */
            struct detector_train_info info;
            train_on(d, x, HR_ONSET, &info);
        }
        step(d, x, t, 1, NULL, &res);
        if (t < from)
            continue;
        flagged += res.state == DET_ANOMALY;
        *opened += res.changed && res.state == DET_ANOMALY;
        if (*opened == 0 && res.state != DET_ANOMALY && *gap_at < 0)
            *gap_at = t - from; /* the first episode's end */
        if (*opened == 1 && res.changed && res.state == DET_ANOMALY)
            *gap = t - from - *gap_at; /* the readings unflagged before the reopening */
    }
    detector_destroy(d);
    return flagged;
}

/* A training applied inside an open episode (a daemon's job created before it, on the readings
 * before it) reseeds the windows and zeroes in_anomaly; a fault held at +3.0 for 25 readings
 * (past hold_decay's two short windows) that then falls to +1.2 and stays, seeds 1-6: without
 * the training the decay's rule leaves it (flagged as with hold_decay 0); with it, the rule ends
 * nothing more of the episode either (flagged as with hold_decay 0 and the same training; review
 * of the sixty-eighth round: it ended the episode at the fall and split the alarm). */
static void test_hold_decay_reseed_open(void **unused)
{
    (void)unused;
    const int high = 25, from = HR_ONSET + high;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        float *x = make_high_then_lasting(seed, high);
        int o_n, o_t, o_t0, o_n0, ga, gp, ta, tg;
        const int n = lasting_flagged(x, 0.5f, -1, from, &o_n, &ga, &gp);
        const int tr = lasting_flagged(x, 0.5f, HR_ONSET + 20, from, &o_t, &ta, &tg);
        const int tr0 = lasting_flagged(x, 0.0f, HR_ONSET + 20, from, &o_t0, &ga, &gp);
        const int n0 = lasting_flagged(x, 0.0f, -1, from, &o_n0, &ga, &gp);
        print_message("seed %d high then lasting: hold_decay 0.5: %d of 200 flagged (%d opened); "
                      "trained inside: %d (%d); hold_decay 0 trained inside: %d (%d); 0: %d (%d)\n",
                      (int)seed, n, o_n, tr, o_t, tr0, o_t0, n0, o_n0);
        print_message("  trained inside, hold_decay 0.5: ended at +%d (-1: not there), "
                      "unflagged %d before it reopened (-1: none)\n",
                      ta, tg);
        free(x);
        assert_true(n == n0 && o_n == 0 && o_n0 == 0); /* held past two windows: left alone */
        /* Trained inside: the decay's rule ends nothing more (before the fix it ended the
         * episode at the fall, +1, and the fault went unflagged 10 readings, then reopened). */
        assert_int_equal(tr, tr0);
        assert_int_equal(o_t, o_t0);
        assert_int_equal(o_t, 0);
    }
}

const struct CMUnitTest detector_level_tests[] = {
    cmocka_unit_test(test_offset_release),      cmocka_unit_test(test_offset_release_multichannel),
    cmocka_unit_test(test_load_format28),       cmocka_unit_test(test_offset_trend),
    cmocka_unit_test(test_load_format41),       cmocka_unit_test(test_record_young),
    cmocka_unit_test(test_load_format46),       cmocka_unit_test(test_spread_mean_spike),
    cmocka_unit_test(test_spread_mean_lasting), cmocka_unit_test(test_hold_decay_reseed_open),
    cmocka_unit_test(test_load_format46_plain), cmocka_unit_test(test_spread_mean_huge),
};
const size_t detector_level_count = sizeof detector_level_tests / sizeof detector_level_tests[0];

/* tests/test_detector_hold.c: unit tests of how a held episode ends (model/detector_release.c):
 * hold_recent, hold_echo and hold_decay, and a training applied inside an open episode, with
 * their formats. Part of test_detector: tests/test_detector.c runs them, in the order of the
 * single file they were moved from; the fixtures shared with the other parts are in
 * tests/test_detector_fx.c. */

#include <math.h>
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

/* ---- thirty-fifth round: an episode ends when its recent readings are normal (hold_recent) -- */

/* Runs x (one channel, HR_N readings; not freed) with cfg: returns the reading
 * that ends the first episode opened from HR_ONSET on (HR_N: it does not end, -1: none
 * opens), *opened the episodes opened from HR_ONSET on, *why how the first ended; asserts
 * nothing opens before HR_ONSET. With save_at > 0 a loaded copy saved there runs beside it
 * bit for bit. */
static int hold_case_cfg(const struct detector_config *cfg, const float *x, int save_at,
                         int *opened, enum detector_end *why)
{
    detector_t *d = new_detector_cfg(cfg, 1), *e = NULL;
    struct detector_result res;
    int ended = -1, first = -1;
    *opened = 0;
    *why = DET_END_NONE;
    for (int t = 0; t < HR_N; t++) {
        step_twin(d, &e, save_at, x, t, 1, &res);
        int opens = res.changed && res.state == DET_ANOMALY;
        if (t < HR_ONSET && opens)
            fail_msg("an episode opens at %d, before the case", t);
        if (t >= HR_ONSET && opens && first < 0)
            first = t;
        *opened += t >= HR_ONSET && opens;
        if (first >= 0 && ended < 0 && res.ended_by != DET_END_NONE) {
            ended = t;
            *why = res.ended_by;
        }
    }
    detector_destroy(d);
    detector_destroy(e);
    return first < 0 ? -1 : ended < 0 ? HR_N : ended;
}

/* hold_case_cfg with the defaults, hold_recent `k` and trip_level 0: test_hold_recent_lasting's
 * guarantee is how the state machine holds a lasting fault (one episode from its onset); with the
 * default trip, seed 4's onset is reported at the trip level and flagged alone on that reading,
 * that one-reading episode ending cleared before the machine's episode opens (ended_by 1, 2
 * opened, measured), so "the first episode" would be the trip's. */
static int hold_case_run(const float *x, int k, int save_at, int *opened, enum detector_end *why)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.hold_recent = k;
    cfg.trip_level = 0.0f;
    return hold_case_cfg(&cfg, x, save_at, opened, why);
}

/* hold_recent (the default, 3): on one channel, a burst that decays over 6 readings is
 * flagged as one episode, which ends within 4 readings of the values' return (HR_ONSET + 6)
 * in at least 6 of seeds 1-12 (measured: 7; the model's error stays up for a few readings
 * after a burst in the others, and those readings are not normal) and never later than with
 * hold_recent 0, whose median of up to err_short readings ends it 5-8 readings after the
 * return in every seed: without the rule the first assertion fails. A save inside the burst
 * (seed 1, 1,403) continues bit for bit. */
static void test_hold_recent_burst(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.hold_recent, 3);
    const int back = HR_ONSET + 6;
    int soon = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        float *x = make_hold_case(seed, 0);
        struct detector_config c3 = def, c0 = def;
        c3.hold_decay = c0.hold_decay = 0.0f; /* hold_recent alone: the decay's rule ends the */
        c0.hold_recent = 0;                   /* burst a reading before its return (below)   */
        int od, o3, o0;
        enum detector_end wd, w3, w0;
        int e3 = hold_case_cfg(&c3, x, seed == 1 ? HR_ONSET + 3 : 0, &o3, &w3);
        int e0 = hold_case_cfg(&c0, x, 0, &o0, &w0);
        int ed = hold_case_cfg(&def, x, 0, &od, &wd);
        print_message("seed %d: burst episode ends %+d after the return (%d opened); "
                      "hold_recent 0: %+d (%d opened); defaults (hold_decay 0.5): %+d (%d "
                      "opened)\n",
                      (int)seed, e3 - back, o3, e0 - back, o0, ed - back, od);
        free(x);
        assert_int_equal(o3, 1);
        assert_int_equal(w3, DET_END_CLEARED);
        assert_true(e3 >= back && e3 <= e0);
        /* With the defaults the burst (a decay, 2.0 x 0.85^k) is still one episode, ended
         * cleared, never later than by hold_recent alone, and no earlier than its last
         * reading (back - 1: 0.89, under half its peak; measured -1 to +1 in seeds 1-12). */
        assert_int_equal(od, 1);
        assert_int_equal(wd, DET_END_CLEARED);
        assert_true(ed >= back - 1 && ed <= e3);
        soon += e3 - back <= 4;
    }
    assert_true(soon >= 6);
}

/* The lasting fault of make_hold_case (kind 1), seeds 1-12, some of whose readings fall back
 * inside the noise: with hold_recent 3 (the default) it is held exactly as with 0, one
 * episode from its onset (two in seed 2, as with 0) until offset_release lets it go, 101-125
 * readings on; no third normal reading in a row comes inside it. hold_recent 2 splits it in
 * 6 of the 12 seeds (up to 13 episodes), and the median of the newest 5 readings (the
 * thirty-fifth round's first form) in 2 of seeds 1-8 (6 and 12 episodes): measured. */
static void test_hold_recent_lasting(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        float *x = make_hold_case(seed, 1);
        int o3, o0;
        enum detector_end w3, w0;
        int e3 = hold_case_run(x, 3, 0, &o3, &w3);
        int e0 = hold_case_run(x, 0, 0, &o0, &w0);
        print_message("seed %d: fault's first episode ends at +%d (ended_by %d, %d opened); "
                      "hold_recent 0: +%d (%d, %d opened)\n",
                      (int)seed, e3 - HR_ONSET, (int)w3, o3, e0 - HR_ONSET, (int)w0, o0);
        free(x);
        assert_int_equal(w3, DET_END_RELEASED);
        assert_int_equal(e3, e0);
        assert_int_equal(o3, o0);
        assert_true(o3 <= (seed == 2 ? 2 : 1));
    }
}

/* HOLD_SEEN (eightieth round): make_hold_case's burst (kind 0) after an excursion of +3.0 for
 * 25 readings from HR_ONSET - 150 (a record since the training at 1,200, held longer than a
 * burst, so burst_memory does not remember it), seeds 1-12, hold_recent alone (hold_decay 0,
 * as test_hold_recent_burst) and trip_level 0 (the machine's episodes). The burst repeats what
 * the device has shown: one episode, ended within 2 readings of the values' return and never
 * later than the same burst without the excursion (a record, which the rule leaves: R +2 to +8,
 * the same in both builds). With HOLD_SEEN 0 (hold_recent's three normal readings) the repeat
 * ends +3 in seeds 5, 6, 7, 9, 10 and 11 (measured), so the test fails there. */
static int seen_case(uint64_t seed, int before, int *opened)
{
    float *x = make_hold_case(seed, 0);
    for (int t = HR_ONSET - 150; before && t < HR_ONSET - 125; t++)
        x[t] += 3.0f;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.hold_decay = 0.0f;
    cfg.trip_level = 0.0f;
    detector_t *d = new_detector_cfg(&cfg, 1);
    struct detector_result res;
    int ended = -1, first = -1;
    *opened = 0;
    for (int t = 0; t < HR_N; t++) {
        step(d, x, t, 1, NULL, &res);
        int opens = res.changed && res.state == DET_ANOMALY;
        if (t >= HR_ONSET && opens && first < 0)
            first = t;
        *opened += t >= HR_ONSET && opens;
        if (first >= 0 && ended < 0 && res.ended_by != DET_END_NONE)
            ended = t;
    }
    detector_destroy(d);
    free(x);
    assert_true(first >= 0 && ended > 0);
    return ended - (HR_ONSET + 6);
}

static void test_hold_seen(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        int os, orec;
        int es = seen_case(seed, 1, &os), er = seen_case(seed, 0, &orec);
        print_message("seed %d: HOLD_SEEN %d: repeat ends %+d (%d opened), record %+d (%d)\n",
                      (int)seed, HOLD_SEEN, es, os, er, orec);
        assert_int_equal(os, 1); /* one episode: a let-go hold that reopens would be two */
        assert_int_equal(orec, 1);
        assert_true(es >= 0 && es <= 2);
        assert_true(es <= er);
    }
}

/* HOLD_SEEN reads the record (rec_max, rec_n), which a save keeps only where a field that reads
 * it is set (detector__keeps_record). With onset_record, record_open and record_open_one 0 it is
 * not kept: a detector loaded from a save made after seen_case's excursion, run beside the saved
 * one through the burst, must answer bit for bit (the review found the loaded one without the
 * excursion's record, so its burst was news and kept hold_recent's off-delay while the saved
 * one let go: seeds 5-7 and 9-11 differ). Seeds 1-12. */
static void test_hold_seen_restart(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        float *x = make_hold_case(seed, 0);
        for (int t = HR_ONSET - 150; t < HR_ONSET - 125; t++)
            x[t] += 3.0f;
        struct detector_config cfg;
        detector_config_default(&cfg);
        cfg.hold_decay = 0.0f;
        cfg.trip_level = 0.0f;
        cfg.onset_record = cfg.record_open = cfg.record_open_one = 0.0f;
        assert_false(detector__keeps_record(&cfg));
        detector_t *d = new_detector_cfg(&cfg, 1), *e = NULL;
        struct detector_result res;
        for (int t = 0; t < HR_N; t++)
            step_twin(d, &e, HR_ONSET - 100, x, t, 1, &res);
        detector_destroy(e);
        detector_destroy(d);
        free(x);
    }
}

/* The eighty-third round's guard (docs/detection.md; its candidate SEEN_OFTEN is on the tag
 * detect83-seen-often, not here): make_hunting's control loop (a lasting fault whose error
 * alternates high and low, within the record) on a device whose onsets are frequent (ons_rate set
 * to 3 just before the fault), seeds 1-16: still flagged as test_one_sensor_pattern_fault asks on a
 * quiet device (at least 10 of its readings a seed, 2,000 in all). Measured: the default build 11
 * at least (seed 6), 4,049 in all; with the tag's -DSEEN_OFTEN=2.0 it fails: seed 6 2 flagged,
 * seeds 8 and 9 5, 1,406 in all (the loop's first normal reading ends its episode, and within the
 * record on a device of frequent onsets the record's gate holds its reopening to a warning). */
static void test_seen_often_hunting(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    int total = 0, least = PF_N;
    for (uint64_t seed = 1; seed <= 16; seed++) {
        float *x = make_hunting(seed);
        detector_t *d = new_detector_cfg(&cfg, 1);
        struct detector_result res;
        int flagged = 0;
        for (int t = 0; t < PF_N; t++) {
            if (t == PF_ONSET - 1)
                d->ons_rate = 3.0;
            step(d, x, t, 1, NULL, &res);
            flagged += t >= PF_ONSET && res.state == DET_ANOMALY;
        }
        print_message("seed %d: hunting fault on a device of frequent onsets: %d flagged\n",
                      (int)seed, flagged);
        detector_destroy(d);
        free(x);
        least = flagged < least ? flagged : least;
        total += flagged;
    }
    assert_true(least >= 10);
    assert_true(total >= 2000);
}

/* Devices whose levels the level tests judge are unchanged: the same result on every reading
 * with hold_recent 3 as with 0 (assert_multichannel_unchanged). */
static void test_hold_recent_multichannel(void **unused)
{
    (void)unused;
    assert_multichannel_unchanged(offsetof(struct detector_config, hold_recent), "hold_recent");
}

/* A format-30 save (no hold_recent in its config; -1 where the field may lie in format 30's
 * tail padding, which a loader that read it would refuse, and which makes the same bytes
 * claimed as format 31 a refused config) of the burst's detector (seed 3, whose episode ends 4
 * readings sooner with the rule), cut inside the burst (1,403), loads with hold_recent 0 and
 * continues bit for bit as the saved detector run without it. */
static void test_load_format30(void **unused)
{
    (void)unused;
    float *x = make_hold_case(3, 0);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, HR_N, HR_ONSET + 3, 1,
                                   offsetof(struct detector_config, hold_recent), -1, 30);
    print_message("format 30 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* ---- sixty-fourth round: an episode ends when its values and its error's pattern are back --- */

/* make_hold_case (kind 0 the burst, 1 the lasting noisy fault) or another one-sensor case of
 * HR_N readings, run as hold_case_run with hold_echo `echo` (the rest the defaults). */
static int echo_case_run(const float *x, float echo, int save_at, int *opened,
                         enum detector_end *why)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.hold_echo = echo;
    return hold_case_cfg(&cfg, x, save_at, opened, why);
}

/* hold_echo 2: on one channel, make_hold_case's burst (seeds 1-12) is one episode, ended
 * `cleared`, never later than with hold_echo 0, and sooner in at least 3 seeds (measured: 2,
 * 10 and 12, +2 / +4 / +2 after the values' return against +4 / +8 / +3): without the rule
 * the last assertion fails. In the others the model's error after the return changes sign
 * (this AR(1) model carries little of the burst), so it ends as before. A save inside seed
 * 10's burst continues bit for bit (the frozen level and the error's run in it). */
static void test_hold_echo_burst(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_true(def.hold_echo == 2.0f);
    const int back = HR_ONSET + 6;
    int sooner = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        float *x = make_hold_case(seed, 0);
        int o1, o0;
        enum detector_end w1, w0;
        struct detector_config c1 = def, c0 = def;
        c1.hold_decay = c0.hold_decay = 0.0f; /* hold_echo alone (the decay's rule: below) */
        c0.hold_echo = 0.0f;
        int e1 = hold_case_cfg(&c1, x, seed == 10 ? HR_ONSET + 3 : 0, &o1, &w1);
        int e0 = hold_case_cfg(&c0, x, 0, &o0, &w0);
        int od;
        enum detector_end wd;
        int ed = hold_case_cfg(&def, x, 0, &od, &wd);
        print_message("seed %d: burst ends %+d after the return (%d opened); hold_echo 0: %+d "
                      "(%d opened); defaults (hold_decay 0.5): %+d (%d opened, %d)\n",
                      (int)seed, e1 - back, o1, e0 - back, o0, ed - back, od, (int)wd);
        free(x);
        assert_int_equal(o1, 1);
        assert_int_equal(w1, DET_END_CLEARED);
        assert_true(e1 >= back && e1 <= e0);
        assert_int_equal(od, 1); /* the defaults: as in test_hold_recent_burst */
        assert_int_equal(wd, DET_END_CLEARED);
        assert_true(ed >= back - 1 && ed <= e1);
        sooner += e1 < e0;
    }
    assert_true(sooner >= 3);
}

/* make_hunting's control loop hunting inside the old range (seeds 1-16) with hold_echo 2:
 * flagged on exactly as many readings in each seed as with 0 (measured: 11-510 of 1,000,
 * 4,049 in all), at least 10 in each. The values are back inside the band, but the error
 * swings from one side to the other, which (b) asks not to: with (a) alone (a throwaway
 * build that skipped the sign test) the same faults were flagged on 874 readings in all, 1-7 in
 * 9 of the 16 seeds, in up to 11 episodes (the thirty-eighth round's failure). */
static void test_hold_echo_pattern_fault(void **unused)
{
    (void)unused;
    int total = 0;
    for (uint64_t seed = 1; seed <= 16; seed++) {
        float *x = make_hunting(seed);
        int flagged[2] = {0, 0};
        for (int on = 0; on <= 1; on++) {
            struct detector_config cfg;
            detector_config_default(&cfg);
            cfg.hold_echo = on ? 2.0f : 0.0f;
            detector_t *d = new_detector_cfg(&cfg, 1);
            struct detector_result res;
            for (int t = 0; t < PF_N; t++) {
                step(d, x, t, 1, NULL, &res);
                flagged[on] += t >= PF_ONSET && res.state == DET_ANOMALY;
            }
            detector_destroy(d);
        }
        print_message("seed %d: hunting fault flagged %d of %d readings (hold_echo 0: %d)\n",
                      (int)seed, flagged[1], PF_N - PF_ONSET, flagged[0]);
        free(x);
        assert_int_equal(flagged[1], flagged[0]);
        assert_true(flagged[1] >= 10);
        total += flagged[1];
    }
    assert_true(total >= 2000);
}

/* One channel, HR_N readings: make_new_level's AR(1) level with, from HR_ONSET, kind 0 a
 * harsher lasting fault (+1.0 with extra noise of deviation 0.4: about a tenth of its readings
 * back inside the normal range) or kind 1 a level that drifts back slowly (+2.0 decaying by
 * 0.95 a reading). */
static float *make_echo_case(uint64_t seed, int kind)
{
    float *x = make_new_level(seed, 0.0);
    uint64_t s = seed * 7919 + 11;
    for (int t = HR_ONSET; t < HR_N; t++)
        x[t] += (float)(kind ? 2.0 * pow(0.95, t - HR_ONSET) : 1.0 + 0.4 * gauss(&s));
    return x;
}

/* Faults the rule must not split or cut short, seeds 1-12 with hold_echo 2 against 0:
 * make_hold_case's lasting noisy fault (the same end, reason and episodes), the harsher fault
 * and the slow drift back (no more episodes, none ending later). */
static void test_hold_echo_lasting(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 12; seed++)
        for (int kind = 0; kind < 3; kind++) {
            float *x = kind == 0 ? make_hold_case(seed, 1) : make_echo_case(seed, kind - 1);
            int o1, o0;
            enum detector_end w1, w0;
            int e1 = echo_case_run(x, 2.0f, 0, &o1, &w1);
            int e0 = echo_case_run(x, 0.0f, 0, &o0, &w0);
            print_message("seed %d %s: first episode ends at +%d (%d, %d opened); hold_echo 0: "
                          "+%d (%d, %d opened)\n",
                          (int)seed,
                          kind == 0   ? "lasting"
                          : kind == 1 ? "harsh"
                                      : "drift",
                          e1 - HR_ONSET, (int)w1, o1, e0 - HR_ONSET, (int)w0, o0);
            free(x);
            assert_true(o1 <= o0);
            assert_true(e1 == e0 || (kind == 2 && e1 < e0));
            if (kind == 0)
                assert_true(o1 == o0 && w1 == w0);
        }
}

/* hold_echo is a one-sensor rule: make_step_drift's six channels give the same result on every
 * reading with it 2 as 0. */
static void test_hold_echo_multichannel(void **unused)
{
    (void)unused;
    struct detector_config on;
    detector_config_default(&on);
    on.hold_echo = 2.0f;
    assert_multichannel_same(&on, offsetof(struct detector_config, hold_echo), "hold_echo");
}

/* A format-43 save (no hold_echo in its config; 3.0f's bits where the field may lie in format
 * 43's padding, not read) of the burst's detector (seed 10, whose episode ends 4 readings
 * sooner with hold_echo 2), cut inside the burst, loads with hold_echo 0 and continues bit for
 * bit as the saved detector run without it; the same bytes claimed as 44 are refused. A
 * detector saved with hold_echo 2 keeps it; cut back to format 43, 0. */
static void test_load_format43(void **unused)
{
    (void)unused;
    struct detector_config cfg, kept, cut;
    detector_config_default(&cfg);
    cfg.hold_echo = 2.0f;
    const int junk = float_bits(3.0f);
    float *x = make_hold_case(10, 0);
    int opened = load_older_format(&cfg, x, HR_N, HR_ONSET + 3, 1,
                                   offsetof(struct detector_config, hold_echo), junk, 43);
    print_message("format 43 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
    save_kept_and_cut(&cfg, offsetof(struct detector_config, hold_echo), junk, 43, &kept, &cut);
    assert_true(kept.hold_echo == 2.0f);
    assert_true(cut.hold_echo == 0.0f);
}

/* ---- review of the sixty-fourth round: faults inside the old range (hold_echo) ------------ */

#define SF_ONSET 1400 /* after the training at 1,200 */
#define SF_LEN   1000 /* the fault's length */
#define SF_N     2600 /* readings: the fault, then 200 healthy ones */

/* One channel, SF_N readings: a strongly autocorrelated healthy signal, AR(1) 0.9 with
 * innovations of deviation 0.1 (its values' deviation about 0.23, 2.3 times the one-step error
 * of a model that learnt it), and from SF_ONSET for SF_LEN readings kind 0/1 a step of
 * +1.5/+3 innovation deviations, kind 2 a ramp to +0.5 (about 2 values' deviations) over the
 * fault, kind 3 a sine of amplitude 0.15 and period 40 added, kind 4 a sawtooth inside the
 * old range (+0.15 a reading for 4 readings, then back: a valve that sticks and slips). */
static float *make_slow_fault(uint64_t seed, int kind)
{
    float *x = malloc(sizeof(float) * SF_N);
    assert_non_null(x);
    double v = 0.0;
    for (int t = 0; t < SF_N; t++) {
        v = 0.9 * v + 0.1 * gauss(&seed);
        double f = 0.0, u = t - SF_ONSET;
        if (t >= SF_ONSET && t < SF_ONSET + SF_LEN)
            f = kind == 0   ? 0.15
                : kind == 1 ? 0.3
                : kind == 2 ? 0.5 * u / SF_LEN
                : kind == 3 ? 0.15 * sin(6.283185307179586 * u / 40.0)
                            : 0.15 * fmod(u, 4.0) - 0.225;
        x[t] = (float)(v + f);
    }
    return x;
}

/* Runs make_slow_fault's x with hold_echo `echo` (the rest the defaults): *opened the
 * episodes opened inside the fault, returns its readings flagged; asserts nothing opens
 * before it. */
static int slow_fault_run(const float *x, float echo, int *opened)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.hold_echo = echo;
    detector_t *d = new_detector_cfg(&cfg, 1);
    struct detector_result res;
    int flagged = 0;
    *opened = 0;
    for (int t = 0; t < SF_N; t++) {
        step(d, x, t, 1, NULL, &res);
        int opens = res.changed && res.state == DET_ANOMALY, in = t >= SF_ONSET;
        if (!in && opens)
            fail_msg("an episode opens at %d, before the fault", t);
        in = in && t < SF_ONSET + SF_LEN;
        *opened += in && opens;
        flagged += in && res.state == DET_ANOMALY;
    }
    detector_destroy(d);
    return flagged;
}

/* The sixty-fourth round's own stated gap: a fault the model misses on one side while its
 * values stay within hold_echo spreads of the old level. Seeds 1-12, hold_echo 2 against 0:
 * the steps, the ramp and the slow sine (kinds 0-3) are flagged on no more than a few
 * readings either way (an AR(1) 0.9 model misses a level offset d by only 0.1 d after its
 * first reading, so the error holds nothing for the rule to end; measured: 0 readings in 46
 * of the 48, 1-2 in seed 11's ramp and sine, the same with 0 and 2). The sawtooth's model
 * errors run on one side for 3 readings of every 4, and its values stay in range: before the
 * review's fix (echo_back asks that a reading of the err_short window went out of the band:
 * a burst before the return) hold_echo 2 flagged 334 of the 481 readings hold_echo 0 flags
 * (69 %), ending and reopening its episodes (seed 10: 11 episodes against 4, seed 12: 8
 * against 4); with it 396 (82 %, seed 12 as with 0; seed 10 still 11 episodes: its values do
 * leave the band, docs/detection.md, "Review of the sixty-fourth round"). */
static void test_hold_echo_slow_fault(void **unused)
{
    (void)unused;
    int saw[2] = {0, 0};
    for (int kind = 0; kind < 5; kind++)
        for (uint64_t seed = 1; seed <= 12; seed++) {
            float *x = make_slow_fault(seed, kind);
            int o[2], f[2];
            for (int on = 0; on <= 1; on++)
                f[on] = slow_fault_run(x, on ? 2.0f : 0.0f, &o[on]);
            print_message("kind %d seed %2d: %4d readings flagged, %d opened; hold_echo 0: %4d, "
                          "%d\n",
                          kind, (int)seed, f[1], o[1], f[0], o[0]);
            free(x);
            if (kind < 4) {
                assert_int_equal(f[1], f[0]);
                assert_true(f[0] <= 5);
            } else {
                saw[0] += f[0];
                saw[1] += f[1];
            }
        }
    assert_true(saw[0] >= 300);
    assert_true(5 * saw[1] >= 4 * saw[0]);
}

/* ---- sixty-seventh round: a burst's decay ends its episode (hold_decay) ------------------ */

/* Runs x with the defaults and hold_decay f: returns the readings flagged from HR_ONSET on. */
static int decay_flagged(const float *x, float f)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.hold_decay = f;
    detector_t *d = new_detector_cfg(&cfg, 1);
    struct detector_result res;
    int flagged = 0;
    for (int t = 0; t < HR_N; t++) {
        step(d, x, t, 1, NULL, &res);
        flagged += t >= HR_ONSET && res.state == DET_ANOMALY;
    }
    detector_destroy(d);
    return flagged;
}

/* make_decay_case's spike (3.0 x 0.8^k from HR_ONSET) and, `gap` readings after its start, a
 * lasting step of +`step` on the same sensor (review of the sixty-seventh round). */
static float *make_spike_then_fault(uint64_t seed, int gap, double step)
{
    float *x = make_decay_case(seed, 0);
    for (int t = HR_ONSET + gap; t < HR_N; t++)
        x[t] += (float)step;
    return x;
}

/* Runs x with the defaults and hold_decay f: returns the first reading from `from` on that
 * opens or continues an episode flagged for 40 readings in a row (-1: none, the fault missed). */
static int fault_flag_at(const float *x, float f, int from, int *first)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.hold_decay = f;
    detector_t *d = new_detector_cfg(&cfg, 1);
    struct detector_result res;
    int start = -1, found = -1;
    *first = -1;
    for (int t = 0; t < HR_N && found < 0; t++) {
        step(d, x, t, 1, NULL, &res);
        if (t < from)
            continue;
        if (res.state == DET_ANOMALY) {
            if (*first < 0)
                *first = t;
            if (start < 0)
                start = t;
            if (t - start + 1 >= 40)
                found = start;
        } else {
            start = -1;
        }
    }
    detector_destroy(d);
    return found;
}

/* A spike followed 1-20 readings after its start by a lasting step on the same sensor (+1.0,
 * below half the spike's peak: what the decay's test counts as "back"; +1.5; +2.5), seeds
 * 1-12 (720 cases; review of the sixty-seventh round). Measured, hold_decay 0.5 / 2 (the
 * default) against 0: the step is always flagged, first within 8 readings of its start
 * (hold_decay 0: within 10, once 26); but the lasting flag (40 readings in a row) comes beyond
 * FAULT_LATENCY in 11 cases, worst +24 (hold_decay 0: 1, +26), beyond 10 readings in 107
 * (hold_decay 0: 1): the rule ends the spike's episode while the step holds the values
 * half-way back, and its quiet (err_short readings) holds the reopening, so the alarm is split.
 * Asserted: never missed, first flagged within FAULT_LATENCY, a lasting flag found, and the
 * count beyond FAULT_LATENCY no worse than measured (a guard for later changes). */
static void test_hold_decay_then_fault(void **unused)
{
    (void)unused;
    const double steps[3] = {1.0, 1.5, 2.5};
    int worst = 0, worst0 = 0, worstf = 0, late = 0, late0 = 0;
    for (int i = 0; i < 3; i++)
        for (int gap = 1; gap <= 20; gap++)
            for (uint64_t seed = 1; seed <= 12; seed++) {
                float *x = make_spike_then_fault(seed, gap, steps[i]);
                const int F = HR_ONSET + gap;
                int a1, a0;
                int f1 = fault_flag_at(x, 0.5f, F, &a1), f0 = fault_flag_at(x, 0.0f, F, &a0);
                free(x);
                int d1 = f1 < 0 ? 9999 : f1 - F, d0 = f0 < 0 ? 9999 : f0 - F;
                if (d1 > worst)
                    worst = d1;
                if (d0 > worst0)
                    worst0 = d0;
                if (getenv("DBGF") || d1 > d0 + 2 || d1 > FAULT_LATENCY)
                    print_message("step +%.1f gap %d seed %d: first flagged +%d, for good +%d; "
                                  "hold_decay 0: +%d, +%d\n",
                                  steps[i], gap, (int)seed, a1 - F, d1, a0 - F, d0);
                if (a1 - F > worstf)
                    worstf = a1 - F;
                late += d1 > FAULT_LATENCY;
                late0 += d0 > FAULT_LATENCY;
                assert_true(a1 >= F && a1 - F <= FAULT_LATENCY); /* never missed */
                assert_true(f1 >= F); /* and flagged for good */
            }
    print_message("spike then step: worst first flag +%d, worst for good +%d (hold_decay 0: "
                  "+%d); for good beyond FAULT_LATENCY in %d of 720 (hold_decay 0: %d)\n",
                  worstf, worst, worst0, late, late0);
    assert_true(late <= 11);
}

/* A spike that decays, seeds 1-6: with hold_decay 0.5 its episode ends sooner than without
 * (cleared, not released: no training asked), and no more episodes open (the decay reopens
 * nothing); a copy saved inside the episode (HR_ONSET + 2, the peak kept) continues bit for
 * bit. Invalid settings are refused. hold_decay 0.5, decay_run 2 is the default. */
static void test_hold_decay_spike(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    assert_true(cfg.hold_decay == 0.5f && cfg.decay_run == 2); /* on by default (format 46) */
    detector_t *bad;
    cfg.hold_decay = 1.5f;
    assert_int_equal(detector_create(&bad, &cfg, 1), ERR_INVAL);
    cfg.hold_decay = 0.5f;
    cfg.decay_run = 0;
    assert_int_equal(detector_create(&bad, &cfg, 1), ERR_INVAL);
    int sooner = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        float *x = make_decay_case(seed, 0);
        struct detector_config on, off;
        detector_config_default(&on);
        detector_config_default(&off);
        assert_true(on.hold_decay == 0.5f && on.decay_run == 2); /* the default */
        off.hold_decay = 0.0f;
        int o1, o0;
        enum detector_end w1, w0;
        int e1 = hold_case_cfg(&on, x, HR_ONSET + 2, &o1, &w1);
        int e0 = hold_case_cfg(&off, x, 0, &o0, &w0);
        print_message("seed %d spike: hold_decay 0.5 ends at +%d (%d, %d opened); 0: +%d (%d, %d "
                      "opened)\n",
                      (int)seed, e1 - HR_ONSET, (int)w1, o1, e0 - HR_ONSET, (int)w0, o0);
        free(x);
        assert_true(e1 > HR_ONSET && e1 <= e0);
        assert_int_equal(w1, DET_END_CLEARED);
        assert_true(o1 <= o0);
        sooner += e1 < e0;
    }
    assert_true(sooner >= 4);
}

/* A fault that jumps and relaxes only 40 % of the way back (make_decay_case kind 1), seeds
 * 1-6: hold_decay 0.5 flags exactly the readings hold_decay 0 flags. */
static void test_hold_decay_partial_fault(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        float *x = make_decay_case(seed, 1);
        int f1 = decay_flagged(x, 0.5f), f0 = decay_flagged(x, 0.0f);
        print_message("seed %d partial relax: %d readings flagged; hold_decay 0: %d\n", (int)seed,
                      f1, f0);
        free(x);
        assert_int_equal(f1, f0);
        assert_true(f0 >= 20);
    }
}

/* make_hold_case's lasting fault (a new level 0.6, about 5 deviations, whose readings scatter
 * below half of its highest), seeds 1-12: with hold_decay 0.5 its first episode ends where and
 * as with 0, and as many open (without DECAY_DROP it was ended on its 3rd-16th reading and
 * split in 3: measured on the first form of the rule). */
static void test_hold_decay_lasting(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        float *x = make_hold_case(seed, 1);
        struct detector_config on, off;
        detector_config_default(&on);
        detector_config_default(&off);
        assert_true(on.hold_decay == 0.5f && on.decay_run == 2); /* the default */
        off.hold_decay = 0.0f;
        int o1, o0;
        enum detector_end w1, w0;
        int e1 = hold_case_cfg(&on, x, 0, &o1, &w1);
        int e0 = hold_case_cfg(&off, x, 0, &o0, &w0);
        print_message("seed %d lasting: hold_decay 0.5 ends at +%d (%d, %d opened); 0: +%d (%d, "
                      "%d opened)\n",
                      (int)seed, e1 - HR_ONSET, (int)w1, o1, e0 - HR_ONSET, (int)w0, o0);
        free(x);
        assert_int_equal(e1, e0);
        assert_int_equal(w1, w0);
        assert_int_equal(o1, o0);
    }
}

/* A format-45 save (no hold_decay in its config; 3.0f's bits where the field may lie in format
 * 45's padding, not read) of the spike's detector (seed 1), cut inside the spike's episode,
 * loads with hold_decay 0 and continues bit for bit as the saved detector run without it; the
 * same bytes claimed as 46 are refused. A default detector (format 46: hold_decay 0.5,
 * decay_run 2) keeps it through a save and load; cut back to format 45 (its peak dropped), the
 * rule is off (hold_decay 0, decay_run 0), as format 45 ran. */
static void test_load_format45(void **unused)
{
    (void)unused;
    struct detector_config cfg, kept, cut;
    detector_config_default(&cfg);
    assert_true(cfg.hold_decay == 0.5f && cfg.decay_run == 2); /* a format-46 default: on */
    const int junk = float_bits(3.0f);
    float *x = make_decay_case(1, 0);
    int opened = load_older_format(&cfg, x, HR_N, HR_ONSET + 2, 1,
                                   offsetof(struct detector_config, hold_decay), junk, 45);
    print_message("format 45 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
    save_kept_and_cut(&cfg, offsetof(struct detector_config, hold_decay), junk, 45, &kept, &cut);
    assert_true(kept.hold_decay == 0.5f && kept.decay_run == 2);
    assert_true(cut.hold_decay == 0.0f && cut.decay_run == 0);
}

/* A training applied inside hold_decay's quiet (the err_short readings after an episode the
 * rule ended) reseeds the short window, which then holds no decay: the quiet ends with it and the
 * long window learns the next reading (before the fix the quiet went on up to err_short readings
 * and the next reading was not learnt). Seeds 1-6, each a spike the rule ends. */
static void test_hold_decay_reseed(void **unused)
{
    (void)unused;
    int found = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        float *x = make_decay_case(seed, 0);
        detector_t *d = new_detector(1);
        const int t = run_to_decay_quiet(d, x);
        if (t < 0) {
            detector_destroy(d);
            free(x);
            continue;
        }
        found++;
        assert_true(d->dk_left > 0);
        struct detector_train_info info;
        train_on(d, x, t, &info); /* recalibrate (the default): the windows are reseeded */
        assert_int_equal(d->dk_left, 0);
        const int head = d->ring_head, len = d->ring_len;
        struct detector_result res;
        step(d, x, t, 1, NULL, &res);
        print_message("seed %d: trained in the decay's quiet at %d; quiet %d, long window %d -> %d "
                      "(head %d -> %d)\n",
                      (int)seed, t, d->dk_left, len, d->ring_len, head, d->ring_head);
        assert_true(d->ring_head != head || d->ring_len != len); /* learnt */
        detector_destroy(d);
        free(x);
    }
    assert_true(found >= 4);
}

const struct CMUnitTest detector_hold_tests[] = {
    cmocka_unit_test(test_hold_recent_burst),
    cmocka_unit_test(test_hold_recent_lasting),
    cmocka_unit_test(test_hold_recent_multichannel),
    cmocka_unit_test(test_load_format30),
    cmocka_unit_test(test_hold_echo_burst),
    cmocka_unit_test(test_hold_echo_pattern_fault),
    cmocka_unit_test(test_hold_echo_lasting),
    cmocka_unit_test(test_hold_echo_multichannel),
    cmocka_unit_test(test_hold_echo_slow_fault),
    cmocka_unit_test(test_load_format43),
    cmocka_unit_test(test_hold_decay_spike),
    cmocka_unit_test(test_hold_decay_then_fault),
    cmocka_unit_test(test_hold_decay_partial_fault),
    cmocka_unit_test(test_hold_decay_lasting),
    cmocka_unit_test(test_load_format45),
    cmocka_unit_test(test_hold_decay_reseed),
    cmocka_unit_test(test_hold_seen),
    cmocka_unit_test(test_hold_seen_restart),
    cmocka_unit_test(test_seen_often_hunting),
};
const size_t detector_hold_count = sizeof detector_hold_tests / sizeof detector_hold_tests[0];

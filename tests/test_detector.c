/* tests/test_detector.c: unit tests of the per-device detector (model/detector.h).
 *
 * Behaviour on synthetic series with the daemon's default settings: an injected fault in one
 * channel of a coupled multichannel series is flagged within FAULT_LATENCY readings and named
 * as the top channel; a slow drift on a channel whose level spans far more than its noise is
 * flagged on that channel; a long healthy series raises no anomaly; a constant channel (and one
 * that steps to a new constant) leaves no stuck alarm; a training job that validates worse
 * than the serving model is not swapped in; save/load continues bit for bit and rejects
 * corrupt or truncated bytes with ERR_CORRUPT; the same input gives the same output; the
 * members of a group of pumps run in step, sharing one model, stay quiet while healthy and a
 * fault on one of them is flagged on it with its channel.
 * The detector is driven as vigild and vigil-replay drive it (step; on want_train create, run
 * and apply a job inline). No timing is asserted. Everything is freed (valgrind/ASan clean).
 *
 * The tests are in tests/test_detector_<topic>.c, one file per part of the detector they
 * exercise (score, warn, train, calib, io, season, shift, burst, onset, range, level, hold,
 * episode), their shared fixtures in tests/test_detector_fx.c; main() runs them in the order
 * below. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "detector.h"
#include "err.h"
#include "test_detector_fx.h"

/* Every test, by name, in the order they run (the order of the single file they came from). */
static const char *const test_order[] = {
    "test_lifecycle",
    "test_fault_flagged_with_channel",
    "test_slow_drift_flagged",
    "test_slow_drift_flagged_confirm2",
    "test_warm_start",
    "test_healthy_quiet",
    "test_decision_likelihood",
    "test_open_median",
    "test_constant_channel_not_stuck",
    "test_forecast_persistence_trend",
    "test_trend",
    "test_missing_carried_forward",
    "test_worse_job_not_swapped",
    "test_save_load",
    "test_load_format3",
    "test_deterministic",
    "test_retrain_seconds",
    "test_batch_step_matches_single",
    "test_group_share",
    "test_group_healthy_quiet",
    "test_extrapolation_first_model",
    "test_load_format5",
    "test_serving_f16",
    "test_coupled_errors_count_once",
    "test_extrapolation_fault_flagged",
    "test_save_shared_round_trip",
    "test_share_batch_matches_single",
    "test_min_rows_calibration",
    "test_op_point_level_shift",
    "test_model_kind",
    "test_load_format8",
    "test_apply_settings",
    "test_load_format7",
    "test_season_missing_cycle",
    "test_opinion_missing_cycle",
    "test_load_format9",
    "test_season_save_only_chosen",
    "test_shift_step_held",
    "test_burst_memory",
    "test_load_format10",
    "test_load_format11",
    "test_shift_plain_small_step",
    "test_load_format12",
    "test_load_format13",
    "test_shift_release",
    "test_onset_record",
    "test_load_format14",
    "test_record_open",
    "test_load_format17",
    "test_shift_sums_incremental",
    "test_settle_release",
    "test_settle_keeps_faults",
    "test_load_format15",
    "test_accum_flat_day",
    "test_load_format16",
    "test_accum_chosen_profile",
    "test_episode_end_reason",
    "test_score_tails",
    "test_warn_run",
    "test_load_format18",
    "test_load_format19",
    "test_onset_quiet",
    "test_load_format20",
    "test_warn_region",
    "test_load_format21",
    "test_accepted_across_save",
    "test_load_format22",
    "test_accepted_training_late",
    "test_record_quiet",
    "test_load_format23",
    "test_onset_rate",
    "test_load_format24",
    "test_shift_confirm",
    "test_load_format25",
    "test_episode_open_reason",
    "test_shift_winsor",
    "test_load_format26",
    "test_range_quiet",
    "test_load_format27",
    "test_offset_release",
    "test_offset_release_multichannel",
    "test_load_format28",
    "test_opinion_open",
    "test_load_format29",
    "test_hold_recent_burst",
    "test_hold_recent_lasting",
    "test_hold_recent_multichannel",
    "test_load_format30",
    "test_record_open_one",
    "test_load_format31",
    "test_onset_rhythm",
    "test_load_format32",
    "test_one_sensor_pattern_fault",
    "test_rhythm_state_refused",
    "test_episode_counts_refused",
    "test_operator_accept",
    "test_end_episode",
    "test_range_far",
    "test_range_far_warmup",
    "test_opinion_run_saved",
    "test_load_format33",
    "test_load_format34",
    "test_mean_far",
    "test_mean_far_warmup",
    "test_load_format35",
    "test_rhythm_time",
    "test_load_format36",
    "test_onset_now",
    "test_load_format37",
    "test_onset_tie",
    "test_load_format38",
    "test_load_format39",
    "test_lstm_min_rows",
    "test_lstm_min_rows_pooled",
    "test_lstm_min_rows_count",
    "test_load_format40",
    "test_offset_trend",
    "test_load_format41",
    "test_record_young",
    "test_accept_grow",
    "test_accept_grow_operator",
    "test_accept_grow_schedule",
    "test_load_format42",
    "test_hold_echo_burst",
    "test_hold_echo_pattern_fault",
    "test_hold_echo_lasting",
    "test_hold_echo_multichannel",
    "test_hold_echo_slow_fault",
    "test_load_format43",
    "test_burst_wide",
    "test_load_format44",
    "test_burst_wide_by_itself",
    "test_hold_decay_spike",
    "test_hold_decay_then_fault",
    "test_hold_decay_partial_fault",
    "test_hold_decay_lasting",
    "test_load_format45",
    "test_hold_decay_reseed",
    "test_load_format46",
    "test_spread_mean_spike",
    "test_spread_mean_lasting",
    "test_hold_decay_reseed_open",
    "test_load_format46_plain",
    "test_spread_mean_huge",
    "test_train_put_off",
};

int main(void)
{
    const struct {
        const struct CMUnitTest *tests;
        size_t n;
    } parts[] = {
        {detector_score_tests, detector_score_count},
        {detector_warn_tests, detector_warn_count},
        {detector_train_tests, detector_train_count},
        {detector_calib_tests, detector_calib_count},
        {detector_io_tests, detector_io_count},
        {detector_season_tests, detector_season_count},
        {detector_shift_tests, detector_shift_count},
        {detector_burst_tests, detector_burst_count},
        {detector_onset_tests, detector_onset_count},
        {detector_range_tests, detector_range_count},
        {detector_level_tests, detector_level_count},
        {detector_hold_tests, detector_hold_count},
        {detector_episode_tests, detector_episode_count},
    };
    enum { N_TESTS = sizeof test_order / sizeof test_order[0] };
    struct CMUnitTest tests[N_TESTS];
    size_t total = 0;
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
        total += parts[p].n;
    if (total != N_TESTS) {
        fprintf(stderr, "test_detector: %zu tests in the parts, %d in test_order\n", total,
                (int)N_TESTS);
        return 1;
    }
    for (size_t i = 0; i < N_TESTS; i++) {
        const struct CMUnitTest *found = NULL;
        for (size_t p = 0; p < sizeof parts / sizeof parts[0] && !found; p++)
            for (size_t k = 0; k < parts[p].n && !found; k++)
                if (strcmp(parts[p].tests[k].name, test_order[i]) == 0)
                    found = &parts[p].tests[k];
        if (!found) {
            fprintf(stderr, "test_detector: %s is in no part\n", test_order[i]);
            return 1;
        }
        tests[i] = *found;
    }
    /* DETECTOR_TESTS="test_x*" runs a subset (cmocka's filter) while iterating. */
    if (getenv("DETECTOR_TESTS"))
        cmocka_set_test_filter(getenv("DETECTOR_TESTS"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

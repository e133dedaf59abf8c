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
 * exercise (score, warn, train, calib, io, season, shift, burst, onset, trip, range, rank,
 * level, hold, episode), their shared fixtures in tests/test_detector_fx.c; main() runs them
 * file by file. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "detector.h"
#include "err.h"
#include "test_detector_fx.h"
#include "test_parts.h"

int main(void)
{
    const struct test_part parts[] = {
        {detector_score_tests, detector_score_count},
        {detector_warn_tests, detector_warn_count},
        {detector_train_tests, detector_train_count},
        {detector_calib_tests, detector_calib_count},
        {detector_number_tests, detector_number_count},
        {detector_io_tests, detector_io_count},
        {detector_season_tests, detector_season_count},
        {detector_shift_tests, detector_shift_count},
        {detector_burst_tests, detector_burst_count},
        {detector_onset_tests, detector_onset_count},
        {detector_trip_tests, detector_trip_count},
        {detector_range_tests, detector_range_count},
        {detector_rank_tests, detector_rank_count},
        {detector_level_tests, detector_level_count},
        {detector_hold_tests, detector_hold_count},
        {detector_episode_tests, detector_episode_count},
        {detector_inputs_tests, detector_inputs_count},
    };
    /* DETECTOR_TESTS="test_x*" runs a subset (a shell pattern; none matching fails). */
    return test_parts_run(parts, sizeof parts / sizeof parts[0], "DETECTOR_TESTS");
}

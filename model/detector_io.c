/* model/detector_io.c: saving a whole detector to bytes and loading it back, for a restart.
 *
 * Format (native byte order: a restart on the same kind of machine), all fields in order:
 *   "VGDT" | format u32 (2) | channels i32 | the config | ep_accepted i32 (format 23) | the
 *   scalar fields (FIELDS) | the context ring (2 training windows of readings, to rebuild the
 *   LSTM states) | carry-forward | the serving predictor (kind, versions, linear coefficients,
 *   flags, prediction, carried LSTM state) | error scales | long and short windows with their
 *   running sums | threshold state | LSTM checkpoint length u64 and bytes
 *   (model_checkpoint_save; detector_save_shared: the length UINT64_MAX and no bytes when an
 *   LSTM serves, the caller keeping the model, which a device group's members share, once for
 *   all of them, and from format 7 its model_fingerprint u32, so a load with another model of
 *   the same shape is refused) | CRC-32 of everything before it. The running sums are stored,
 *   not recomputed, so a loaded detector continues bit for bit as the saved one would have.
 *
 * Invariants: one serialiser walks the fields for both sizing and writing, so the two cannot
 * disagree; the loader checks the CRC first, then every index and count against its bounds,
 * and never reads outside the buffer. Threading: save reads the detector (owner thread); load
 * creates a new one (any thread). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "detector_int.h"
#include "err.h"
#include "internal.h"

#define DET_MAGIC 0x54444756u /* "VGDT" little-endian */
/* A kept onset's timestamp loads only within this of the epoch (ms, about 146 million years):
 * gaps between two of them then cannot overflow int64. */
#define RH_TS_MAX ((int64_t)1 << 62)
/* Format 1 held the whole training window (the history ring, `history` rows) and no
 * timestamps; format 2 holds only the context ring (the window comes from the caller: the
 * daemon's store), the readings' timestamps, the previous reading's contributions and raw score,
 * and the config's fields added since (retrain_seconds, flat_diff, confirm). Format 1 still
 * loads: its newest rows fill the context ring, and the new settings take the values that keep
 * its behaviour (retrain_seconds 0, flat_diff 0, confirm 1); the timestamps are unknown.
 * Format 3 adds warm_epochs to the config. It took the 4 bytes that were the config's tail
 * padding, so the layout is format 2's: format 2 loads with warm_epochs 0 (as it ran; its
 * padding bytes were never defined). Format 5 adds open_median at the config's end, format 6
 * extrap_weight, format 7 serving_f16 (the LSTM's own checkpoint says whether it is float16:
 * model_checkpoint_save's version 2) and err_corr (the config's tail padding again, where
 * alignment leaves it) and the error weights (rinv, C x C floats after the level terms).
 * Format 8 adds op_point at the config's end and, only when it is set and C >= 2 (one channel
 * has no operating-point term), the operating-point state after the error weights (op_n, then
 * op_ew, op_sum and op_sumsq, C doubles each). Format 9 adds model_kind at the config's end
 * (formats 1-8 load with DET_MODEL_AUTO, as they ran). Format 10 adds season_bins at the
 * config's end and, only when it is set, the seasonal predictors after the operating-point
 * state (season, C bytes; s_period, C int32; s_a, s_phi, C floats each; then season_bins
 * floats of profile for each channel with season[c] = 1 only, in channel order, as s_prof
 * holds them); formats 1-9 load with season_bins 0, as they ran. Format 11 adds burst_memory
 * and shift_len at the config's end and after the seasonal predictors: only when burst_memory
 * is set, the bursts (burst_n, burst_head, burst_pend i32; ep_peak, pend_peak f32; pend_end
 * u64; then DETECTOR_MAX_BURSTS floats of burst_peak and as many u64 of burst_end); then, only
 * when shift_len is set and C >= 2 (one channel has no step test), the step test's state (sh_n,
 * then sh_sum, sh_sumsq and sh_lsum, C doubles each, then sh_post, a double, and sh_ch1, an
 * int32); formats 1-10 load with both 0, as they ran. Format 12 adds season_opinion at the
 * config's end and, only when it and season_bins are set, after the step test's state, the
 * second opinions (detector_opinion.c): n_op i32 and o_n f64, then n_op records (ch, period i32;
 * mean, sd f32; ew, sum, sumsq f64) and n_op x season_bins floats of their profiles; formats 1-11
 * load with season_opinion 0, as they ran. Format 13 adds shift_plain at the config's end and,
 * only when it and shift_len are set and C >= 2, the plain differences' sums after the step
 * test's state (sh_psum, sh_psumsq, C doubles each); formats 1-12 load with shift_plain 0, as
 * they ran. Format 14 adds shift_release at the config's end (no state); formats 1-13 load with
 * it 0, as they ran. Format 15 adds onset_record at the config's end and, only when it is set
 * (> 0), its reference after the second opinions (rec_max f32, rec_n i32); formats 1-14 load
 * with onset_record 0, as they ran. Format 16 adds settle_release at the config's end and, only
 * when it and shift_len are set and C >= 2, after the step test's state (and shift_plain's sums),
 * the settle watch (st_ch1, sh_lead i32; st_post, sh_far f64); formats 1-15 load with
 * settle_release 0, as they ran.
 * Format 17 adds season_accum at the config's end and, only when it is set (> 0) with the
 * second opinions, o_age and o_an (f64) after o_n and, after each record's fields, asd, n0
 * (f32), own (i32), aew, asum, asumsq (f64); formats 1-16 load with season_accum 0, as they
 * ran. Format 18 adds record_open at the config's end and saves onset_record's reference
 * when either it or onset_record is set; formats 1-17 load with record_open 0, as they ran.
 * Format 19 adds score_tails at the config's end (no state); formats 1-18 load with it 0, as
 * they ran. Format 20 adds warn_run at the config's end and, only when it is set (> 0), the
 * run's state after onset_record's reference (run_n i32, run_sum f64); formats 1-19 load with
 * warn_run 0, as they ran. Format 21 adds onset_quiet at the config's end (no state: since_red is
 * saved already); formats 1-20 load with it 0, as they ran. Format 22 adds warn_region at the
 * config's end and, only when it and warn_run are set, the run's count of readings beyond the
 * model's region after the run's state (run_out i32); formats 1-21 load with warn_region 0, as
 * they ran. Format 23 adds ep_accepted (i32) right after the config, before the scalar fields:
 * an episode whose regime was accepted and then learnt by a training (which zeroes in_anomaly)
 * still ends "accepted" after a load. Formats 1-22 load with it derived as well as the bytes
 * allow: 1 while in state anomaly with in_anomaly at accept_after or more (the acceptance
 * before a training applied), else 0 (an episode whose training had applied ends "cleared" or
 * "released", as it would have after such a restart before). Format 24 adds record_quiet at the
 * config's end and, only when it is set, quiet_n (i32) after warn_run's state; formats 1-23 load
 * with it 0, as they ran. Format 25 adds onset_rate at the config's end and, only when it is set,
 * ons_rate (f64) after quiet_n; formats 1-24 load with it 0, as they ran. Format 26 adds
 * shift_confirm at the config's end (no state); formats 1-25 load with it 0, as they ran.
 * Format 27 adds shift_winsor at the config's end (no state); formats 1-26 load with it 0, as
 * they ran. Format 28 adds range_quiet at the config's end and, only when it is set (> 0), the
 * channels' range after ons_rate (vr_n i32; vr_lo, vr_hi f32 [C] each); formats 1-27 load with
 * it 0, as they ran. Format 29 adds offset_release at the config's end (no state);
 * formats 1-28 load with it 0, as they ran. Format 30 adds opinion_open at the config's end
 * (its run count is not saved); formats 1-29 load with it 0, as they ran. Format 31 adds
 * hold_recent at the config's end (no state); formats 1-30 load with it 0, as they ran. Format
 * 32 adds record_open_one at the config's end; onset_record's reference is saved when it,
 * onset_record or record_open is set (keeps_record); formats 1-31 load with it 0, as they ran.
 * Format 33 adds onset_rhythm at the config's end and, only when it is set, the onsets' reading
 * counts after the channels' range (rh_n i32, rh_at u64 [DETECTOR_RHYTHM_N], rh_raw f32
 * [DETECTOR_RHYTHM_N]); formats 1-32 load with it 0, as they ran. Format 34 adds range_far and
 * range_open at the config's end (no state: the range is range_quiet's); formats 1-33 load with
 * them 0, as they ran. Format 35 adds no config field: it saves, only when opinion_open is set,
 * its run of readings (opin_run i32) after the onsets, so a run in progress at a restart opens
 * its episode on the same reading as it would have without the restart; formats 1-34 load with
 * the run at 0 (started over, as they ran). Format 36 adds mean_far at the config's end and,
 * only when it is set, its flag (mf_on i32) before opinion_open's run; formats 1-35 load with
 * it 0, as they ran. Format 37 adds rhythm_time at the config's end and, only when it and
 * onset_rhythm are set, the kept onsets' timestamps (rh_ts i64 [DETECTOR_RHYTHM_N]) after their
 * raw scores; formats 1-36 load with it 0 (gaps in reading counts, as they ran; the kept onsets'
 * times are unknown, DETECTOR_NO_TIME, and unused while it stays 0). Format 38 adds onset_now
 * at the config's end (no state: it reads the short window and the long one); formats 1-37
 * load with it 0, as they ran. Format 39 adds onset_tie at the config's end (no state: it reads
 * onset_record's reference); formats 1-38 load with it 0, as they ran. Format 40 adds
 * avg_epochs at the config's end (no state: it acts inside a training job); formats 1-39 load
 * with it 0, as they ran. Format 41 adds lstm_min_rows at the config's end (no state: it acts
 * inside a training job); formats 1-40 load with it 0, as they ran. Format 42 adds offset_trend
 * and record_young at the config's end (no state: they read the context ring, the level terms
 * and onset_record's reference); formats 1-41 load with them 0, as they ran. Format 43 adds
 * accept_grow at the config's end and, only when it is set, the open episode's error blocks
 * after opinion_open's run (gr_n, gr_pn i32; gr_sum, gr_sq, gr_psum, gr_psq f64), so a restart
 * inside a held episode judges its growth as it would have; formats 1-42 load with it 0, as
 * they ran. Format 44 adds hold_echo at the config's end and, only when it is set, the level
 * before the episode and the error's echo after accept_grow's blocks (eb_med, eb_sd, ec_prev
 * f32; ec_run, eb_gap i32), so a restart inside an episode ends it where it would have; formats
 * 1-43 load with it 0, as they ran. Format 45 adds burst_wide at the config's end (no state);
 * formats 1-44 load with it 0, as they ran. Format 46 adds hold_decay and decay_run at the
 * config's end and, only when hold_decay is set, hold_echo's level and run (saved as well when
 * hold_decay alone is set: it reads that level) and the episode's peak after them (dk_peak
 * f32, dk_since, dk_left i32); formats 1-45 load with hold_decay 0, as they ran. Format 47
 * drops dk_since (the readings since the peak, which nothing read): a format-46 save's is
 * read and dropped; it adds spread_mean at the config's end (no state); formats 1-46 load
 * with it 0, as they ran. */
#define DET_FORMAT 47u
/* Format 2's config ended at confirm, padded to the struct's alignment; format 3's warm_epochs
 * fills that padding, so both have the same size: the config up to tail_plain, the field format
 * 4 added. Format 4's config is the whole struct. */
#define CFG_V3_SIZE offsetof(struct detector_config, tail_plain)
/* Format 4's config: up to open_median, the field format 5 added. */
#define CFG_V4_SIZE offsetof(struct detector_config, open_median)
/* Format 5's config: up to extrap_weight, the field format 6 added, with the struct's tail
 * padding (extrap_weight may have taken it, as warm_epochs did in format 3). */
#define CFG_V5_SIZE                                                                                \
    ((offsetof(struct detector_config, extrap_weight) + _Alignof(struct detector_config) - 1) /    \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 6's config: up to serving_f16, the first field format 7 added, with the tail padding. */
#define CFG_V6_SIZE                                                                                \
    ((offsetof(struct detector_config, serving_f16) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 7's config: up to op_point, the field format 8 added, with the tail padding. */
#define CFG_V7_SIZE                                                                                \
    ((offsetof(struct detector_config, op_point) + _Alignof(struct detector_config) - 1) /         \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 8's config: up to model_kind, the field format 9 added, with the tail padding. */
#define CFG_V8_SIZE                                                                                \
    ((offsetof(struct detector_config, model_kind) + _Alignof(struct detector_config) - 1) /       \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 9's config: up to season_bins, the field format 10 added, with the tail padding. */
#define CFG_V9_SIZE                                                                                \
    ((offsetof(struct detector_config, season_bins) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 10's config: up to burst_memory, the first field format 11 added, with the tail
 * padding. */
#define CFG_V10_SIZE                                                                               \
    ((offsetof(struct detector_config, burst_memory) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 11's config: up to season_opinion, the field format 12 added, with the tail padding. */
#define CFG_V11_SIZE                                                                               \
    ((offsetof(struct detector_config, season_opinion) + _Alignof(struct detector_config) - 1) /   \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 12's config: up to shift_plain, the field format 13 added, with the tail padding. */
#define CFG_V12_SIZE                                                                               \
    ((offsetof(struct detector_config, shift_plain) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 13's config: up to shift_release, the field format 14 added, with the tail padding. */
#define CFG_V13_SIZE                                                                               \
    ((offsetof(struct detector_config, shift_release) + _Alignof(struct detector_config) - 1) /    \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 14's config: up to onset_record, the field format 15 added, with the tail padding. */
#define CFG_V14_SIZE                                                                               \
    ((offsetof(struct detector_config, onset_record) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 15's config: up to settle_release, the field format 16 added, with the tail padding. */
#define CFG_V15_SIZE                                                                               \
    ((offsetof(struct detector_config, settle_release) + _Alignof(struct detector_config) - 1) /   \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 16's config: up to season_accum, the field format 17 added, with the tail padding. */
#define CFG_V16_SIZE                                                                               \
    ((offsetof(struct detector_config, season_accum) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 17's config: up to record_open, the field format 18 added, with the tail padding. */
#define CFG_V17_SIZE                                                                               \
    ((offsetof(struct detector_config, record_open) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 18's config: up to score_tails, the field format 19 added, with the tail padding. */
#define CFG_V18_SIZE                                                                               \
    ((offsetof(struct detector_config, score_tails) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 19's config: up to warn_run, the field format 20 added, with the tail padding. */
#define CFG_V19_SIZE                                                                               \
    ((offsetof(struct detector_config, warn_run) + _Alignof(struct detector_config) - 1) /         \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 20's config: up to onset_quiet, the field format 21 added, with the tail padding. */
#define CFG_V20_SIZE                                                                               \
    ((offsetof(struct detector_config, onset_quiet) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 21's config: up to warn_region, the field format 22 added, with the tail padding. */
#define CFG_V21_SIZE                                                                               \
    ((offsetof(struct detector_config, warn_region) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Formats 22 and 23's config (23 added no field): up to record_quiet, the field format 24 added,
 * with the tail padding. */
#define CFG_V23_SIZE                                                                               \
    ((offsetof(struct detector_config, record_quiet) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 24's config: up to onset_rate, the field format 25 added, with the tail padding. */
#define CFG_V24_SIZE                                                                               \
    ((offsetof(struct detector_config, onset_rate) + _Alignof(struct detector_config) - 1) /       \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 26's config: up to shift_winsor, the field format 27 added, with the tail padding. */
#define CFG_V26_SIZE                                                                               \
    ((offsetof(struct detector_config, shift_winsor) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 27's config: up to range_quiet, the field format 28 added, with the tail padding. */
#define CFG_V27_SIZE                                                                               \
    ((offsetof(struct detector_config, range_quiet) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 28's config: up to offset_release, the field format 29 added, with the tail padding. */
#define CFG_V28_SIZE                                                                               \
    ((offsetof(struct detector_config, offset_release) + _Alignof(struct detector_config) - 1) /   \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 29's config: up to opinion_open, the field format 30 added, with the tail padding. */
#define CFG_V29_SIZE                                                                               \
    ((offsetof(struct detector_config, opinion_open) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 30's config: up to hold_recent, the field format 31 added, with the tail padding. */
#define CFG_V30_SIZE                                                                               \
    ((offsetof(struct detector_config, hold_recent) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 31's config: up to record_open_one, the field format 32 added, with the tail padding. */
#define CFG_V31_SIZE                                                                               \
    ((offsetof(struct detector_config, record_open_one) + _Alignof(struct detector_config) - 1) /  \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 32's config: up to onset_rhythm, the field format 33 added, with the tail padding. */
#define CFG_V32_SIZE                                                                               \
    ((offsetof(struct detector_config, onset_rhythm) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 33's config: up to range_far, the field format 34 added, with the tail padding. */
#define CFG_V33_SIZE                                                                               \
    ((offsetof(struct detector_config, range_far) + _Alignof(struct detector_config) - 1) /        \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 35's config: up to mean_far, the field format 36 added, with the tail padding. */
#define CFG_V35_SIZE                                                                               \
    ((offsetof(struct detector_config, mean_far) + _Alignof(struct detector_config) - 1) /         \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 36's config: up to rhythm_time, the field format 37 added, with the tail padding. */
#define CFG_V36_SIZE                                                                               \
    ((offsetof(struct detector_config, rhythm_time) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 37's config: up to onset_now, the field format 38 added, with the tail padding. */
#define CFG_V37_SIZE                                                                               \
    ((offsetof(struct detector_config, onset_now) + _Alignof(struct detector_config) - 1) /        \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 38's config: up to onset_tie, the field format 39 added, with the tail padding. */
#define CFG_V38_SIZE                                                                               \
    ((offsetof(struct detector_config, onset_tie) + _Alignof(struct detector_config) - 1) /        \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 39's config: up to avg_epochs, the field format 40 added, with the tail padding. */
#define CFG_V39_SIZE                                                                               \
    ((offsetof(struct detector_config, avg_epochs) + _Alignof(struct detector_config) - 1) /       \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 40's config: up to lstm_min_rows, the field format 41 added, with the tail padding. */
#define CFG_V40_SIZE                                                                               \
    ((offsetof(struct detector_config, lstm_min_rows) + _Alignof(struct detector_config) - 1) /    \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 41's config: up to offset_trend, the field format 42 added, with the tail padding. */
#define CFG_V41_SIZE                                                                               \
    ((offsetof(struct detector_config, offset_trend) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 42's config: up to accept_grow, the field format 43 added, with the tail padding. */
#define CFG_V42_SIZE                                                                               \
    ((offsetof(struct detector_config, accept_grow) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 43's config: up to hold_echo, the field format 44 added, with the tail padding. */
#define CFG_V43_SIZE                                                                               \
    ((offsetof(struct detector_config, hold_echo) + _Alignof(struct detector_config) - 1) /        \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 44's config: up to burst_wide, the field format 45 added, with the tail padding. */
#define CFG_V44_SIZE                                                                               \
    ((offsetof(struct detector_config, burst_wide) + _Alignof(struct detector_config) - 1) /       \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 45's config: up to hold_decay, the field format 46 added, with the tail padding. */
#define CFG_V45_SIZE                                                                               \
    ((offsetof(struct detector_config, hold_decay) + _Alignof(struct detector_config) - 1) /       \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 46's config: up to spread_mean, the field format 47 added, with the tail padding. */
#define CFG_V46_SIZE                                                                               \
    ((offsetof(struct detector_config, spread_mean) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 25's config: up to shift_confirm, the field format 26 added, with the tail padding. */
#define CFG_V25_SIZE                                                                               \
    ((offsetof(struct detector_config, shift_confirm) + _Alignof(struct detector_config) - 1) /    \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
_Static_assert(CFG_V3_SIZE == (offsetof(struct detector_config, confirm) + sizeof(int) +
                               _Alignof(struct detector_config) - 1) /
                                  _Alignof(struct detector_config) *
                                  _Alignof(struct detector_config),
               "format 3's config must keep format 2's size");
/* Format 1's config: the current one up to retrain_seconds, the first field added after it. */
#define CFG_V1_SIZE offsetof(struct detector_config, retrain_seconds)

/* Format 17's fields of a second-opinion record (season_accum), in their saved order: one
 * table serves the save and the load. */
#define ACC_FIELD(f)                                                                               \
    {                                                                                              \
        offsetof(struct detector__opinion, f), sizeof(((struct detector__opinion *)0)->f)          \
    }
static const struct {
    size_t off, len;
} ACC_FIELDS[] = {ACC_FIELD(asd), ACC_FIELD(n0),   ACC_FIELD(own),
                  ACC_FIELD(aew), ACC_FIELD(asum), ACC_FIELD(asumsq)};
#define N_ACC_FIELDS (sizeof ACC_FIELDS / sizeof ACC_FIELDS[0])
/* Their bytes a record: asd, n0 f32, own i32, aew, asum, asumsq f64. */
#define ACC_BYTES (2 * sizeof(float) + sizeof(int) + 3 * sizeof(double))

struct wr {
    unsigned char *p; /* NULL: only count */
    size_t len, cap;
};

static void put(struct wr *w, const void *src, size_t n)
{
    if (w->p && w->len + n <= w->cap)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

struct rd {
    const unsigned char *p;
    size_t len, off;
    int bad;
};

static void get(struct rd *r, void *dst, size_t n)
{
    if (r->bad || n > r->len - r->off) {
        r->bad = 1;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p + r->off, n);
    r->off += n;
}

/* The scalar fields after the config, in order: the writer and the loader expand the same list,
 * so the format is written down once. */
/* clang-format off */
#define FIELDS_V1(X)                                                                           \
    X(d->ctx_head) X(d->ctx_len) X(d->have_last) X(d->n_seen) X(d->due_at) X(d->kind)        \
    X(d->version) X(d->next_version) X(d->have_pred) X(d->ring_head) X(d->ring_len)            \
    X(d->ring_since_resum) X(d->ring_sum) X(d->ring_sumsq) X(d->short_head) X(d->short_len)    \
    X(d->short_sum) X(d->det_state) X(d->below) X(d->in_anomaly) X(d->since_red)              \
    X(d->lstm_window)
#define FIELDS_V3(X) FIELDS_V1(X) X(d->last_ts) X(d->train_ts) X(d->prev_raw)
#define FIELDS(X) FIELDS_V3(X) X(d->dred)
/* accept_grow's error blocks (format 43, only when it is set). */
#define GROW_FIELDS(X)                                                                             \
    X(d->gr_n) X(d->gr_pn) X(d->gr_sum) X(d->gr_sq) X(d->gr_psum) X(d->gr_psq)
/* hold_echo's level and the error's run (format 44, only when it is set). */
#define ECHO_FIELDS(X) X(d->eb_med) X(d->eb_sd) X(d->ec_prev) X(d->ec_run) X(d->eb_gap)
/* hold_decay's peak and quiet (format 46, only when it is set; format 46 had the readings
 * since the peak, an i32, between them). */
#define DECAY_FIELDS(X) X(d->dk_peak) X(d->dk_left)
/* clang-format on */

/* The LSTM checkpoint length that says "kept outside" (detector_save_shared): the caller
 * stores the serving model once for every detector that serves it and gives it back to
 * detector_load_shared. */
#define LSTM_OUTSIDE UINT64_MAX

/* Whether onset_record's reference (rec_max, rec_n) is kept and saved: a field that reads it
 * is set. */
static int keeps_record(const struct detector_config *c)
{
    return c->onset_record > 0.0f || c->record_open > 0.0f || c->record_open_one > 0.0f;
}

/* The LSTM goes outside the bytes when asked and it is what serves (detector_model). */
static int lstm_outside(const detector_t *d, int shared)
{
    return shared && d->lstm && d->kind == DET_KIND_LSTM;
}

static void write_all(const detector_t *d, struct wr *w, int shared)
{
    const size_t C = (size_t)d->C;
    uint32_t magic = DET_MAGIC, fmt = DET_FORMAT;
    put(w, &magic, 4);
    put(w, &fmt, 4);
    put(w, &d->C, sizeof d->C);
    put(w, &d->cfg, sizeof d->cfg);
    put(w, &d->ep_accepted, sizeof d->ep_accepted); /* format 23 */
#define PUT_FIELD(f) put(w, &(f), sizeof(f));
    FIELDS(PUT_FIELD)
#undef PUT_FIELD
    put(w, d->ctx, sizeof(float) * (size_t)d->ctx_cap * C);
    put(w, d->last, sizeof(float) * C);
    put(w, d->lin_ab, sizeof(float) * C * C);
    put(w, d->lin_b, sizeof(float) * C);
    put(w, d->persist, C);
    put(w, d->lo, sizeof(float) * C);
    put(w, d->hi, sizeof(float) * C);
    put(w, d->pred, sizeof(float) * C);
    put(w, d->state, 2 * sizeof(float) * d->state_len);
    put(w, d->err_scale, sizeof(float) * C);
    put(w, d->resid_rms, sizeof(float) * C);
    put(w, d->lmean, sizeof(float) * C);
    put(w, d->lscale, sizeof(float) * C);
    put(w, d->rinv, sizeof(float) * C * C);
    if (d->cfg.op_point && C >= 2) {
        put(w, &d->op_n, sizeof d->op_n);
        put(w, d->op_ew, sizeof(double) * C);
        put(w, d->op_sum, sizeof(double) * C);
        put(w, d->op_sumsq, sizeof(double) * C);
    }
    if (d->cfg.season_bins > 0) {
        put(w, d->season, C);
        put(w, d->s_period, sizeof(int) * C);
        put(w, d->s_a, sizeof(float) * C);
        put(w, d->s_phi, sizeof(float) * C);
        const size_t np = detector__season_count(d->season, (int)C);
        if (np > 0)
            put(w, d->s_prof, sizeof(float) * np * (size_t)d->cfg.season_bins);
    }
    if (d->cfg.burst_memory) {
        put(w, &d->burst_n, sizeof d->burst_n);
        put(w, &d->burst_head, sizeof d->burst_head);
        put(w, &d->burst_pend, sizeof d->burst_pend);
        put(w, &d->ep_peak, sizeof d->ep_peak);
        put(w, &d->pend_peak, sizeof d->pend_peak);
        put(w, &d->pend_end, sizeof d->pend_end);
        put(w, d->burst_peak, sizeof d->burst_peak);
        put(w, d->burst_end, sizeof d->burst_end);
    }
    if (d->cfg.shift_len > 0 && C >= 2) {
        put(w, &d->sh_n, sizeof d->sh_n);
        put(w, d->sh_sum, sizeof(double) * C);
        put(w, d->sh_sumsq, sizeof(double) * C);
        put(w, d->sh_lsum, sizeof(double) * C);
        put(w, &d->sh_post, sizeof d->sh_post);
        put(w, &d->sh_ch1, sizeof d->sh_ch1);
        if (d->cfg.shift_plain) {
            put(w, d->sh_psum, sizeof(double) * C);
            put(w, d->sh_psumsq, sizeof(double) * C);
        }
        if (d->cfg.settle_release) {
            put(w, &d->st_ch1, sizeof d->st_ch1);
            put(w, &d->sh_lead, sizeof d->sh_lead);
            put(w, &d->st_post, sizeof d->st_post);
            put(w, &d->sh_far, sizeof d->sh_far);
        }
    }
    if (d->cfg.season_opinion && d->cfg.season_bins > 0) {
        put(w, &d->n_op, sizeof d->n_op);
        put(w, &d->o_n, sizeof d->o_n);
        if (d->cfg.season_accum > 0.0f) {
            put(w, &d->o_age, sizeof d->o_age);
            put(w, &d->o_an, sizeof d->o_an);
        }
        for (int i = 0; i < d->n_op; i++) {
            const struct detector__opinion *o = &d->o_rec[i];
            put(w, &o->ch, sizeof o->ch);
            put(w, &o->period, sizeof o->period);
            put(w, &o->mean, sizeof o->mean);
            put(w, &o->sd, sizeof o->sd);
            put(w, &o->ew, sizeof o->ew);
            put(w, &o->sum, sizeof o->sum);
            put(w, &o->sumsq, sizeof o->sumsq);
            for (size_t k = 0; d->cfg.season_accum > 0.0f && k < N_ACC_FIELDS; k++)
                put(w, (const char *)o + ACC_FIELDS[k].off, ACC_FIELDS[k].len);
        }
        if (d->n_op > 0)
            put(w, d->o_prof, sizeof(float) * (size_t)d->n_op * (size_t)d->cfg.season_bins);
    }
    if (keeps_record(&d->cfg)) {
        put(w, &d->rec_max, sizeof d->rec_max);
        put(w, &d->rec_n, sizeof d->rec_n);
    }
    if (d->cfg.warn_run > 0) {
        put(w, &d->run_n, sizeof d->run_n);
        put(w, &d->run_sum, sizeof d->run_sum);
        if (d->cfg.warn_region) /* format 22 and later */
            put(w, &d->run_out, sizeof d->run_out);
    }
    if (d->cfg.record_quiet)
        put(w, &d->quiet_n, sizeof d->quiet_n);
    if (d->cfg.onset_rate)
        put(w, &d->ons_rate, sizeof d->ons_rate);
    if (d->cfg.range_quiet > 0.0f) {
        put(w, &d->vr_n, sizeof d->vr_n);
        put(w, d->vr_lo, sizeof(float) * C);
        put(w, d->vr_hi, sizeof(float) * C);
    }
    if (d->cfg.onset_rhythm) {
        put(w, &d->rh_n, sizeof d->rh_n);
        put(w, d->rh_at, sizeof d->rh_at);
        put(w, d->rh_raw, sizeof d->rh_raw);
        if (d->cfg.rhythm_time)
            put(w, d->rh_ts, sizeof d->rh_ts);
    }
    if (d->cfg.mean_far > 0.0f)
        put(w, &d->mf_on, sizeof d->mf_on);
    if (d->cfg.opinion_open)
        put(w, &d->opin_run, sizeof d->opin_run);
    if (d->cfg.accept_grow > 0.0f) { /* format 43 */
#define PUT_FIELD(f) put(w, &(f), sizeof(f));
        GROW_FIELDS(PUT_FIELD)
#undef PUT_FIELD
    }
    if (d->cfg.hold_echo > 0.0f || d->cfg.hold_decay > 0.0f) { /* format 44 */
#define PUT_FIELD(f) put(w, &(f), sizeof(f));
        ECHO_FIELDS(PUT_FIELD)
#undef PUT_FIELD
    }
    if (d->cfg.hold_decay > 0.0f) { /* format 46 */
#define PUT_FIELD(f) put(w, &(f), sizeof(f));
        DECAY_FIELDS(PUT_FIELD)
#undef PUT_FIELD
    }
    put(w, d->prev_contrib, sizeof(float) * C);
    put(w, d->ring, sizeof(float) * (size_t)d->cfg.err_window);
    put(w, d->shortbuf, sizeof(float) * (size_t)d->cfg.err_short);
    const int outside = lstm_outside(d, shared);
    uint64_t mlen = outside ? LSTM_OUTSIDE : d->lstm ? model_checkpoint_size(d->lstm) : 0;
    put(w, &mlen, 8);
    if (outside) { /* which model it was (format 7): the loader refuses another */
        uint32_t fp = model_fingerprint(d->lstm);
        put(w, &fp, 4);
    }
    if (mlen > 0 && !outside) {
        if (w->p && w->len + mlen <= w->cap) {
            size_t got = 0;
            if (model_checkpoint_save(d->lstm, w->p + w->len, (size_t)mlen, &got) < 0 ||
                got != mlen)
                w->cap = 0; /* cannot happen: sizes agree; make the caller see ERR_RANGE */
        }
        w->len += (size_t)mlen;
    }
    uint32_t crc = w->p && w->len <= w->cap ? model__crc32(0, w->p, w->len) : 0;
    put(w, &crc, 4);
}

static size_t save_size(const detector_t *d, int shared)
{
    struct wr w = {NULL, 0, 0};
    write_all(d, &w, shared);
    return w.len;
}

static int save(const detector_t *d, void *buf, size_t cap, size_t *len, int shared)
{
    if (!d || !buf || !len)
        return ERR_INVAL;
    struct wr w = {buf, 0, cap};
    write_all(d, &w, shared);
    if (w.len > w.cap)
        return ERR_RANGE;
    *len = w.len;
    return 0;
}

size_t detector_save_size(const detector_t *d)
{
    return save_size(d, 0);
}

int detector_save(const detector_t *d, void *buf, size_t cap, size_t *len)
{
    return save(d, buf, cap, len, 0);
}

size_t detector_save_shared_size(const detector_t *d)
{
    return save_size(d, 1);
}

int detector_save_shared(const detector_t *d, void *buf, size_t cap, size_t *len)
{
    return save(d, buf, cap, len, 1);
}

/* Format 1's history ring (cap rows; its head and length were read into ctx_head and
 * ctx_len): the newest rows that fit become the context ring. */
static int v1_history(detector_t *d, struct rd *r, int cap)
{
    const size_t C = (size_t)d->C;
    const int head = d->ctx_head, len = d->ctx_len;
    if (cap < 1 || head < 0 || head >= cap || len < 0 || len > cap) {
        r->bad = 1;
        return 0;
    }
    float *hist = malloc(sizeof(float) * (size_t)cap * C);
    if (!hist)
        return ERR_NOMEM;
    get(r, hist, sizeof(float) * (size_t)cap * C);
    int n = len < d->ctx_cap ? len : d->ctx_cap;
    for (int k = 0; k < n; k++) {
        int row = ((head - n + k) % cap + cap) % cap;
        memcpy(d->ctx + (size_t)k * C, hist + (size_t)row * C, sizeof(float) * C);
    }
    d->ctx_len = n;
    d->ctx_head = n % d->ctx_cap;
    free(hist);
    return 0;
}

static int load(detector_t **out, const void *buf, size_t len, const model_t *lstm)
{
    if (!out || !buf)
        return ERR_INVAL;
    const unsigned char *b = buf;
    if (len < 16)
        return ERR_CORRUPT;
    uint32_t crc;
    memcpy(&crc, b + len - 4, 4);
    if (crc != model__crc32(0, b, len - 4))
        return ERR_CORRUPT;
    struct rd r = {b, len - 4, 0, 0};
    uint32_t magic, fmt;
    int C;
    struct detector_config cfg;
    memset(&cfg, 0, sizeof cfg);
    get(&r, &magic, 4);
    get(&r, &fmt, 4);
    get(&r, &C, sizeof C);
    if (r.bad || magic != DET_MAGIC)
        return ERR_CORRUPT;
    if (fmt < 1 || fmt > DET_FORMAT)
        return ERR_INVAL;
    get(&r, &cfg,
        fmt == 1   ? CFG_V1_SIZE
        : fmt < 4  ? CFG_V3_SIZE
        : fmt < 5  ? CFG_V4_SIZE
        : fmt < 6  ? CFG_V5_SIZE
        : fmt < 7  ? CFG_V6_SIZE
        : fmt < 8  ? CFG_V7_SIZE
        : fmt < 9  ? CFG_V8_SIZE
        : fmt < 10 ? CFG_V9_SIZE
        : fmt < 11 ? CFG_V10_SIZE
        : fmt < 12 ? CFG_V11_SIZE
        : fmt < 13 ? CFG_V12_SIZE
        : fmt < 14 ? CFG_V13_SIZE
        : fmt < 15 ? CFG_V14_SIZE
        : fmt < 16 ? CFG_V15_SIZE
        : fmt < 17 ? CFG_V16_SIZE
        : fmt < 18 ? CFG_V17_SIZE
        : fmt < 19 ? CFG_V18_SIZE
        : fmt < 20 ? CFG_V19_SIZE
        : fmt < 21 ? CFG_V20_SIZE
        : fmt < 22 ? CFG_V21_SIZE
        : fmt < 24 ? CFG_V23_SIZE
        : fmt < 25 ? CFG_V24_SIZE
        : fmt < 26 ? CFG_V25_SIZE
        : fmt < 27 ? CFG_V26_SIZE
        : fmt < 28 ? CFG_V27_SIZE
        : fmt < 29 ? CFG_V28_SIZE
        : fmt < 30 ? CFG_V29_SIZE
        : fmt < 31 ? CFG_V30_SIZE
        : fmt < 32 ? CFG_V31_SIZE
        : fmt < 33 ? CFG_V32_SIZE
        : fmt < 34 ? CFG_V33_SIZE
        : fmt < 36 ? CFG_V35_SIZE
        : fmt < 37 ? CFG_V36_SIZE
        : fmt < 38 ? CFG_V37_SIZE
        : fmt < 39 ? CFG_V38_SIZE
        : fmt < 40 ? CFG_V39_SIZE
        : fmt < 41 ? CFG_V40_SIZE
        : fmt < 42 ? CFG_V41_SIZE
        : fmt < 43 ? CFG_V42_SIZE
        : fmt < 44 ? CFG_V43_SIZE
        : fmt < 45 ? CFG_V44_SIZE
        : fmt < 46 ? CFG_V45_SIZE
        : fmt < 47 ? CFG_V46_SIZE
                   : sizeof cfg);
    if (r.bad)
        return ERR_CORRUPT;
    if (fmt == 1)
        cfg.confirm = 1; /* the rest added since format 1 stays 0 (memset): as it ran */
    if (fmt < 3)
        cfg.warm_epochs = 0;
    if (fmt < 4)
        cfg.tail_plain = 1; /* format 3 and before: the Gaussian tail */
    if (fmt < 5)
        cfg.open_median = 0; /* format 4 and before: no median test at an opening */
    if (fmt < 6)
        cfg.extrap_weight = 0.0f; /* format 5 and before: no extrapolation term */
    if (fmt < 7) {
        cfg.serving_f16 = 0; /* format 6 and before: float32 (its padding bytes undefined) */
        cfg.err_corr = 0;    /* and channels' errors summed as independent */
    }
    if (fmt < 8)
        cfg.op_point = 0; /* format 7 and before: no operating-point likelihood */
    if (fmt < 9)
        cfg.model_kind = DET_MODEL_AUTO; /* format 8 and before: keep-or-swap by validation */
    if (fmt < 10)
        cfg.season_bins = 0; /* format 9 and before: no seasonal predictor */
    if (fmt < 11) {          /* format 10 and before: no memory of bursts, no step test */
        cfg.burst_memory = 0;
        cfg.shift_len = 0;
    }
    if (fmt < 12)
        cfg.season_opinion = 0; /* format 11 and before: no second opinion */
    if (fmt < 13)               /* format 12 and before: the lines' jump on every channel */
        cfg.shift_plain = 0;
    if (fmt < 14)
        cfg.shift_release = 0; /* format 13 and before: the hold waits for Q's mean */
    if (fmt < 15)
        cfg.onset_record = 0.0f; /* format 14 and before: onsets reported at their likelihood */
    if (fmt < 16)
        cfg.settle_release = 0; /* format 15 and before: the other terms hold the episode on */
    if (fmt < 17)
        cfg.season_accum = 0.0f; /* format 16 and before: no accumulated departure */
    if (fmt < 18)
        cfg.record_open = 0.0f; /* format 17 and before: every opening at alarm_level */
    if (fmt < 19)
        cfg.score_tails = 0; /* format 18 and before: the error's tail in the score as it is */
    if (fmt < 20)
        cfg.warn_run = 0; /* format 19 and before: a warning never opens by lasting */
    if (fmt < 21)
        cfg.onset_quiet = 0.0f; /* format 20 and before: onsets ranked by l alone below g */
    if (fmt < 22)
        cfg.warn_region = 0; /* format 21 and before: a run opens wherever the device is */
    if (fmt < 24)
        cfg.record_quiet = 0; /* format 23 and before: g alone, the quiet since the training */
    if (fmt < 25)
        cfg.onset_rate = 0; /* format 24 and before: a record not weighed by the onsets' rate */
    if (fmt < 26)
        cfg.shift_confirm = 0; /* format 25 and before: a step's opening confirmed as any */
    if (fmt < 27)
        cfg.shift_winsor = 0.0f; /* format 26 and before: every step estimate entered as it was */
    if (fmt < 28)
        cfg.range_quiet = 0.0f; /* format 27 and before: the quiet's credit wherever it went */
    if (fmt < 29)
        cfg.offset_release = 0; /* format 28 and before: the error holds a steady offset */
    if (fmt < 30)
        cfg.opinion_open = 0; /* format 29 and before: the second opinions open nothing */
    if (fmt < 31)
        cfg.hold_recent = 0; /* format 30 and before: held on the median alone */
    if (fmt < 32)
        cfg.record_open_one = 0.0f; /* format 31 and before: record_open on every device */
    if (fmt < 33)
        cfg.onset_rhythm = 0; /* format 32 and before: every onset ranked, routine or not */
    if (fmt < 34) {
        cfg.range_far = 0.0f; /* format 33 and before: a reading's value news only to the model */
        cfg.range_open = 0;
    }
    if (fmt < 36)
        cfg.mean_far = 0.0f; /* format 35 and before: a level's mean news only to the model */
    if (fmt < 37)
        cfg.rhythm_time = 0; /* format 36 and before: a schedule kept in reading counts */
    if (fmt < 38)
        cfg.onset_now = 0; /* format 37 and before: l credited whatever the newest reading */
    if (fmt < 39)
        cfg.onset_tie = 0; /* format 38 and before: a tie with the record ranked as any onset */
    if (fmt < 40)
        cfg.avg_epochs = 0.0f; /* format 39 and before: the last step's weights serve */
    if (fmt < 41)
        cfg.lstm_min_rows = 0; /* format 40 and before: an LSTM trained at every training */
    if (fmt < 42) {
        cfg.offset_trend = 0.0f; /* format 41 and before: a drift's steady error released */
        cfg.record_young = 0;    /* and no record counted as one the error is within */
    }
    if (fmt < 43)
        cfg.accept_grow = 0.0f; /* format 42 and before: a growing fault accepted at 500 */
    if (fmt < 44)
        cfg.hold_echo = 0.0f; /* format 43 and before: the error alone holds an episode */
    if (fmt < 45)
        cfg.burst_wide = 0; /* format 44 and before: a burst is shorter than err_short readings */
    if (fmt < 46) {
        cfg.hold_decay = 0.0f; /* format 45 and before: a decay held until the error let go */
        cfg.decay_run = 0;
    }
    if (fmt < 47)
        cfg.spread_mean = 0; /* format 46 and before: a level with no spread waits */
    /* The arrays sized by C and the configuration must be in the blob before anything is
     * allocated for them: a short blob claiming a huge history or window is corrupt, not a
     * reason to allocate gigabytes (found by tests/fuzz/fuzz_detector). A lower bound: the
     * exact layout is checked as it is read. */
    if (C < 1 || C > DETECTOR_MAX_CHANNELS || cfg.train.window < 1 || cfg.train.window > 100000 ||
        cfg.history < 0 || cfg.history > 10000000 || cfg.err_window < 0 ||
        cfg.err_window > 10000000 || cfg.err_short < 0 || cfg.err_short > 10000000)
        return ERR_CORRUPT;
    const uint64_t C64 = (uint64_t)C;
    const uint64_t rows = fmt == 1 ? (uint64_t)cfg.history : 2 * (uint64_t)cfg.train.window;
    uint64_t need = 4 * (rows * C64 + C64 * C64 + 9 * C64 + (uint64_t)cfg.err_window +
                         (uint64_t)cfg.err_short) +
                    C64 + 8;
    if (need > r.len - r.off)
        return ERR_CORRUPT;
    detector_t *d;
    int rc = detector_create(&d, &cfg, C);
    if (rc == ERR_INVAL)
        return ERR_CORRUPT;
    if (rc < 0)
        return rc;
    const size_t Cz = (size_t)C;
    if (fmt >= 23)
        get(&r, &d->ep_accepted, sizeof d->ep_accepted);
#define GET_FIELD(f) get(&r, &(f), sizeof(f));
    if (fmt == 1) {
        FIELDS_V1(GET_FIELD)
        rc = v1_history(d, &r, cfg.history);
        if (rc < 0) {
            detector_destroy(d);
            return rc;
        }
    } else {
        if (fmt < 4) {
            FIELDS_V3(GET_FIELD)
            d->dred = d->since_red == 0; /* one likelihood then: the decision's was the score's */
        } else {
            FIELDS(GET_FIELD)
        }
        get(&r, d->ctx, sizeof(float) * (size_t)d->ctx_cap * Cz);
    }
#undef GET_FIELD
    if (fmt < 23) /* unsaved: accepted only if it had not yet been learnt (see DET_FORMAT) */
        d->ep_accepted = d->det_state == DET_ANOMALY && d->in_anomaly >= cfg.accept_after;
    get(&r, d->last, sizeof(float) * Cz);
    get(&r, d->lin_ab, sizeof(float) * Cz * Cz);
    get(&r, d->lin_b, sizeof(float) * Cz);
    get(&r, d->persist, Cz);
    get(&r, d->lo, sizeof(float) * Cz);
    get(&r, d->hi, sizeof(float) * Cz);
    get(&r, d->pred, sizeof(float) * Cz);
    get(&r, d->state, 2 * sizeof(float) * d->state_len);
    get(&r, d->err_scale, sizeof(float) * Cz);
    get(&r, d->resid_rms, sizeof(float) * Cz);
    get(&r, d->lmean, sizeof(float) * Cz);
    get(&r, d->lscale, sizeof(float) * Cz);
    if (fmt >= 7)
        get(&r, d->rinv, sizeof(float) * Cz * Cz);
    if (cfg.op_point && C >= 2) { /* format 8 and later, as the config says */
        get(&r, &d->op_n, sizeof d->op_n);
        get(&r, d->op_ew, sizeof(double) * Cz);
        get(&r, d->op_sum, sizeof(double) * Cz);
        get(&r, d->op_sumsq, sizeof(double) * Cz);
    }
    if (cfg.season_bins > 0) { /* format 10 and later, as the config says */
        get(&r, d->season, Cz);
        get(&r, d->s_period, sizeof(int) * Cz);
        get(&r, d->s_a, sizeof(float) * Cz);
        get(&r, d->s_phi, sizeof(float) * Cz);
        /* The profiles of the channels that use one: allocated only once the bytes are seen
         * to be there (season[c] > 1 is refused below). */
        const size_t np = detector__season_count(d->season, C);
        const size_t pb = sizeof(float) * np * (size_t)cfg.season_bins;
        if (np > 0 && !r.bad && pb <= r.len - r.off) {
            d->s_prof = malloc(pb);
            if (!d->s_prof) {
                rc = ERR_NOMEM;
                goto fail;
            }
            get(&r, d->s_prof, pb);
        } else if (np > 0) {
            r.bad = 1;
        }
    }
    if (cfg.burst_memory) { /* format 11 and later, as the config says */
        get(&r, &d->burst_n, sizeof d->burst_n);
        get(&r, &d->burst_head, sizeof d->burst_head);
        get(&r, &d->burst_pend, sizeof d->burst_pend);
        get(&r, &d->ep_peak, sizeof d->ep_peak);
        get(&r, &d->pend_peak, sizeof d->pend_peak);
        get(&r, &d->pend_end, sizeof d->pend_end);
        get(&r, d->burst_peak, sizeof d->burst_peak);
        get(&r, d->burst_end, sizeof d->burst_end);
    }
    if (cfg.shift_len > 0 && C >= 2) { /* format 11 and later, as the config says */
        get(&r, &d->sh_n, sizeof d->sh_n);
        get(&r, d->sh_sum, sizeof(double) * Cz);
        get(&r, d->sh_sumsq, sizeof(double) * Cz);
        get(&r, d->sh_lsum, sizeof(double) * Cz);
        get(&r, &d->sh_post, sizeof d->sh_post);
        get(&r, &d->sh_ch1, sizeof d->sh_ch1);
        if (cfg.shift_plain) { /* format 13 and later, as the config says */
            get(&r, d->sh_psum, sizeof(double) * Cz);
            get(&r, d->sh_psumsq, sizeof(double) * Cz);
        }
        if (cfg.settle_release) { /* format 16 and later, as the config says */
            get(&r, &d->st_ch1, sizeof d->st_ch1);
            get(&r, &d->sh_lead, sizeof d->sh_lead);
            get(&r, &d->st_post, sizeof d->st_post);
            get(&r, &d->sh_far, sizeof d->sh_far);
        }
    }
    if (cfg.season_opinion && cfg.season_bins > 0) { /* format 12 and later, as the config says */
        int n = 0;
        get(&r, &n, sizeof n);
        get(&r, &d->o_n, sizeof d->o_n);
        const int acc = cfg.season_accum > 0.0f; /* format 17 and later, as the config says */
        if (acc) {
            get(&r, &d->o_age, sizeof d->o_age);
            get(&r, &d->o_an, sizeof d->o_an);
        }
        /* Records and profiles: allocated only once the bytes are seen to be there. */
        const size_t rec =
            2 * sizeof(int) + 2 * sizeof(float) + 3 * sizeof(double) + (acc ? ACC_BYTES : 0);
        const size_t SB = (size_t)cfg.season_bins;
        if (!r.bad && n >= 1 && n <= C && (rec + sizeof(float) * SB) * (size_t)n <= r.len - r.off) {
            d->o_rec = calloc(1, sizeof *d->o_rec * (size_t)n + sizeof(float) * SB * (size_t)n);
            if (!d->o_rec) {
                rc = ERR_NOMEM;
                goto fail;
            }
            d->n_op = n;
            d->o_prof = (float *)(d->o_rec + n);
            for (int i = 0; i < n; i++) {
                struct detector__opinion *o = &d->o_rec[i];
                get(&r, &o->ch, sizeof o->ch);
                get(&r, &o->period, sizeof o->period);
                get(&r, &o->mean, sizeof o->mean);
                get(&r, &o->sd, sizeof o->sd);
                get(&r, &o->ew, sizeof o->ew);
                get(&r, &o->sum, sizeof o->sum);
                get(&r, &o->sumsq, sizeof o->sumsq);
                for (size_t k = 0; acc && k < N_ACC_FIELDS; k++)
                    get(&r, (char *)o + ACC_FIELDS[k].off, ACC_FIELDS[k].len);
            }
            get(&r, d->o_prof, sizeof(float) * SB * (size_t)n);
        } else if (n != 0) {
            r.bad = 1;
        }
    }
    if (keeps_record(&cfg)) { /* format 15 and later */
        get(&r, &d->rec_max, sizeof d->rec_max);
        get(&r, &d->rec_n, sizeof d->rec_n);
    }
    if (cfg.warn_run > 0) { /* format 20 and later */
        get(&r, &d->run_n, sizeof d->run_n);
        get(&r, &d->run_sum, sizeof d->run_sum);
        if (cfg.warn_region) /* format 22 and later */
            get(&r, &d->run_out, sizeof d->run_out);
    }
    if (cfg.record_quiet) /* format 24 and later */
        get(&r, &d->quiet_n, sizeof d->quiet_n);
    if (cfg.onset_rate) /* format 25 and later */
        get(&r, &d->ons_rate, sizeof d->ons_rate);
    if (cfg.range_quiet > 0.0f) { /* format 28 and later */
        get(&r, &d->vr_n, sizeof d->vr_n);
        get(&r, d->vr_lo, sizeof(float) * Cz);
        get(&r, d->vr_hi, sizeof(float) * Cz);
    }
    if (cfg.onset_rhythm) { /* format 33 and later */
        get(&r, &d->rh_n, sizeof d->rh_n);
        get(&r, d->rh_at, sizeof d->rh_at);
        get(&r, d->rh_raw, sizeof d->rh_raw);
        if (cfg.rhythm_time) /* format 37 and later */
            get(&r, d->rh_ts, sizeof d->rh_ts);
    }
    if (cfg.mean_far > 0.0f) /* format 36 and later */
        get(&r, &d->mf_on, sizeof d->mf_on);
    if (cfg.opinion_open && fmt >= 35)
        get(&r, &d->opin_run, sizeof d->opin_run);
    if (cfg.accept_grow > 0.0f) { /* format 43 and later */
#define GET_FIELD(f) get(&r, &(f), sizeof(f));
        GROW_FIELDS(GET_FIELD)
#undef GET_FIELD
    }
    if (cfg.hold_echo > 0.0f || cfg.hold_decay > 0.0f) { /* format 44 and later */
#define GET_FIELD(f) get(&r, &(f), sizeof(f));
        ECHO_FIELDS(GET_FIELD)
#undef GET_FIELD
    }
    if (cfg.hold_decay > 0.0f && fmt < 47) { /* format 46: the readings since the peak */
        int32_t since;
        get(&r, &d->dk_peak, sizeof d->dk_peak);
        get(&r, &since, sizeof since); /* read nothing: dropped */
        get(&r, &d->dk_left, sizeof d->dk_left);
    } else if (cfg.hold_decay > 0.0f) { /* format 47 and later */
#define GET_FIELD(f) get(&r, &(f), sizeof(f));
        DECAY_FIELDS(GET_FIELD)
#undef GET_FIELD
    }
    if (fmt != 1)
        get(&r, d->prev_contrib, sizeof(float) * Cz);
    get(&r, d->ring, sizeof(float) * (size_t)cfg.err_window);
    get(&r, d->shortbuf, sizeof(float) * (size_t)cfg.err_short);
    uint64_t mlen = 0;
    get(&r, &mlen, 8);
    rc = ERR_CORRUPT;
    const int outside = mlen == LSTM_OUTSIDE && fmt >= 5;
    uint32_t fp = 0;
    if (outside && fmt >= 7)
        get(&r, &fp, 4);
    if (r.bad || (!outside && mlen > r.len - r.off) || (outside && lstm == NULL) ||
        (outside && fmt >= 7 && fp != model_fingerprint(lstm)))
        goto fail;
    if (outside) {
        d->lstm = model_share(lstm); /* read-only, as the detectors that share it serve it */
    } else if (mlen > 0) {
        int mrc = model_checkpoint_load(&d->lstm, r.p + r.off, (size_t)mlen);
        if (mrc < 0) {
            rc = mrc == ERR_NOMEM ? ERR_NOMEM : ERR_CORRUPT;
            goto fail;
        }
        r.off += (size_t)mlen;
    }
    if (d->lstm) {
        struct model_config a, bc;
        model_get_config(d->lstm, &a);
        detector__model_config(&bc, &d->cfg, d->C);
        if (a.n_inputs != bc.n_inputs || a.n_outputs != bc.n_outputs || a.n_layers != bc.n_layers ||
            a.n_hidden != bc.n_hidden)
            goto fail;
    }
    if (r.off != r.len)
        goto fail;
    /* Bounds of every index and count, and the kind's requirements. */
    if (d->ctx_head < 0 || d->ctx_head >= d->ctx_cap || d->ctx_len < 0 || d->ctx_len > d->ctx_cap ||
        d->ring_head < 0 || d->ring_head >= cfg.err_window || d->ring_len < 0 ||
        d->ring_len > cfg.err_window || d->ring_since_resum < 0 || d->short_head < 0 ||
        d->short_head >= cfg.err_short || d->short_len < 0 || d->short_len > cfg.err_short ||
        (unsigned)d->kind > DET_KIND_LSTM || (unsigned)d->det_state > DET_ANOMALY ||
        (unsigned)d->ep_accepted > (d->det_state == DET_ANOMALY) ||
        (d->kind == DET_KIND_LSTM && !d->lstm) || (outside && d->kind != DET_KIND_LSTM) ||
        d->next_version < d->version || d->lstm_window < 1 ||
        /* The episode's counts index the short window (recent_median's k = in_anomaly + 1)
         * and grow by one a reading: a negative or near-INT_MAX count is corrupt (found by
         * tests/fuzz/fuzz_detector once it scored what loaded). */
        d->in_anomaly < 0 || d->in_anomaly > (1 << 30) || d->below < 0 || d->below > (1 << 30) ||
        (cfg.op_point && C >= 2 && !(d->op_n >= -1.0 && d->op_n <= 1e18)) ||
        (cfg.burst_memory &&
         (d->burst_n < 0 || d->burst_n > DETECTOR_MAX_BURSTS || d->burst_head < 0 ||
          d->burst_head >= DETECTOR_MAX_BURSTS || d->burst_pend < 0 || d->burst_pend > 1)) ||
        (cfg.shift_len > 0 && C >= 2 &&
         (!(d->sh_n >= 0.0 && d->sh_n <= 1e18) || d->sh_ch1 < 0 || d->sh_ch1 > C || d->st_ch1 < 0 ||
          d->st_ch1 > C || d->sh_lead < 0 || d->sh_lead > 1)) ||
        (keeps_record(&cfg) && (d->rec_n < 0 || !(d->rec_max >= 0.0f && isfinite(d->rec_max)))) ||
        (cfg.warn_run > 0 &&
         (d->run_n < 0 || !(d->run_sum >= 0.0 && d->run_sum <= d->run_n + 1.0) || d->run_out < 0 ||
          d->run_out > d->run_n)) ||
        (cfg.record_quiet && (d->quiet_n < 0 || d->quiet_n > (1 << 30))) ||
        (cfg.onset_rate && !(d->ons_rate >= 0.0 && d->ons_rate <= cfg.err_window + 1.0)) ||
        (cfg.range_quiet > 0.0f && d->vr_n < 0) ||
        (cfg.onset_rhythm && (d->rh_n < 0 || d->rh_n > DETECTOR_RHYTHM_N)) ||
        (cfg.opinion_open && (d->opin_run < 0 || d->opin_run > (1 << 30))) ||
        (cfg.mean_far > 0.0f && (d->mf_on < 0 || d->mf_on > 1)) ||
        (cfg.accept_grow > 0.0f &&
         (d->gr_n < 0 || d->gr_n > (1 << 30) || d->gr_pn < 0 || d->gr_pn > (1 << 30) ||
          !(d->gr_sum >= 0.0 && d->gr_sum <= 1e300 && d->gr_sq >= 0.0 && d->gr_sq <= 1e300) ||
          !(d->gr_psum >= 0.0 && d->gr_psum <= 1e300 && d->gr_psq >= 0.0 && d->gr_psq <= 1e300))))
        goto fail;
    for (int i = 0; cfg.onset_rhythm && i < d->rh_n; i++) /* oldest first, all before now */
        if ((i > 0 && d->rh_at[i] <= d->rh_at[i - 1]) || d->rh_at[i] >= d->n_seen ||
            !(d->rh_raw[i] >= 0.0f && isfinite(d->rh_raw[i])) ||
            (d->rh_ts[i] != DETECTOR_NO_TIME &&
             (d->rh_ts[i] < -RH_TS_MAX || d->rh_ts[i] > RH_TS_MAX)))
            goto fail;
    for (size_t c = 0; cfg.range_quiet > 0.0f && d->vr_n > 0 && c < Cz; c++)
        if (!(d->vr_lo[c] <= d->vr_hi[c]) || !isfinite(d->vr_lo[c]) || !isfinite(d->vr_hi[c]))
            goto fail;
    for (size_t c = 0; c < Cz; c++)
        if (d->version > 0 && !(d->err_scale[c] > 0.0f && isfinite(d->err_scale[c])))
            goto fail;
    for (int i = 0, prev = -1; i < d->n_op; i++) { /* channel order, valid periods and spreads */
        const struct detector__opinion *o = &d->o_rec[i];
        if (o->ch <= prev || o->ch >= C || o->period < 2 || o->period > cfg.history ||
            !(o->sd > 0.0f && isfinite(o->sd)) || !isfinite(o->mean) ||
            !(o->asd >= 0.0f && isfinite(o->asd)) || !(o->n0 >= 0.0f && isfinite(o->n0)) ||
            o->own < 0 || o->own > 1 || (o->own && !(o->asd > 0.0f)))
            goto fail;
        prev = o->ch;
    }
    if (cfg.season_opinion && cfg.season_bins > 0 && !(d->o_n >= -1.0 && d->o_n <= 1e18))
        goto fail;
    if (cfg.season_accum > 0.0f && cfg.season_opinion && cfg.season_bins > 0 &&
        !(d->o_age >= -1.0 && d->o_age <= 1e18 && d->o_an >= 0.0 && d->o_an <= 1e18))
        goto fail;
    for (size_t c = 0; cfg.season_bins > 0 && c < Cz; c++)
        if (d->season[c] > 1 || d->s_period[c] < 0 || d->s_period[c] > cfg.history ||
            (d->season[c] && d->s_period[c] < 2))
            goto fail;
    *out = d;
    return 0;
fail:
    detector_destroy(d);
    return rc;
}

int detector_load(detector_t **out, const void *buf, size_t len)
{
    return load(out, buf, len, NULL);
}

int detector_load_shared(detector_t **out, const void *buf, size_t len, const model_t *lstm)
{
    return load(out, buf, len, lstm);
}

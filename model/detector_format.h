/* model/detector_format.h: the byte format of a saved detector, shared by its writer
 * (detector_io.c) and its reader (detector_load.c). Not part of the public interface.
 *
 * Format (native byte order: a restart on the same kind of machine), all fields in order:
 *   "VGDT" | format u32 (2) | channels i32 | the config | ep_accepted i32 (format 23) | tripped
 *   and ep_trip i32 (format 48) | the scalar fields (FIELDS) | the context ring (2 training
 *   windows of readings, to rebuild the LSTM states) | carry-forward | the serving predictor (kind,
 *   versions, linear coefficients, flags, prediction, carried LSTM state) | error scales |
 *   long and short windows with their running sums | threshold state | LSTM checkpoint length
 *   u64 and bytes (model_checkpoint_save; detector_save_shared: the length UINT64_MAX and no
 *   bytes when an LSTM serves, the caller keeping the model, which a device group's members
 *   share, once for all of them, and from format 7 its model_fingerprint u32, so a load with
 *   another model of the same shape is refused) | CRC-32 of everything before it. The running
 *   sums are stored, not recomputed, so a loaded detector continues bit for bit as the saved
 *   one would have.
 *
 * Invariants: the writer and the reader expand the same field lists (FIELDS and the lists
 * after it) and the same record table (ACC_FIELDS), so the format is written down once. */
#ifndef VIGIL_DETECTOR_FORMAT_H
#define VIGIL_DETECTOR_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "detector_int.h"

#define DET_MAGIC 0x54444756u /* "VGDT" little-endian */
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
 * onset_record or record_open is set (detector__keeps_record); formats 1-31 load with it 0, as they
 * ran. Format 33 adds onset_rhythm at the config's end and, only when it is set, the onsets'
 * reading counts after the channels' range (rh_n i32, rh_at u64 [DETECTOR_RHYTHM_N], rh_raw f32
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
 * with it 0, as they ran. Format 48 adds trip_level at the config's end and, always, right after
 * ep_accepted, the trip's bit (tripped i32: the last reading was reported in anomaly by the
 * trip alone, so the next ends that episode with a reason) and ep_trip i32 (the open episode
 * continues a trip's reading, which the acceptance counts: session 48); formats 1-47 load with
 * trip_level 0 and both 0, as they ran. Format 49 adds input (DETECTOR_MAX_CHANNELS bytes, the
 * input-only channels) at the config's end (no state); formats 1-48 load with every byte 0 (no
 * inputs), as they ran. */
#define DET_FORMAT 49u

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

#endif

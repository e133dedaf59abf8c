/* model/detector.h: the per-device anomaly detector: model step, scoring, threshold, when to
 * retrain and whether to swap. Pure computation like the rest of model/ (no I/O, clocks,
 * threads, logging or globals), so the daemon (live) and vigil-replay (offline) run exactly
 * the same code and benchmark scores are the daemon's scores.
 *
 * A detector follows one device (or one series) with C channels, all monitored. It keeps the
 * last few readings (two LSTM training windows: enough to rebuild the carried states after a
 * swap), the serving predictor (an LSTM, or the linear state-space baseline when that validates
 * better, or persistence before the first training; channel by channel, persistence where that
 * forecasts better), the carried LSTM states, the error scales and the recent distribution of
 * scores, and the threshold state machine (normal / warning / anomaly, with hysteresis).
 *
 * Lifecycle: detector_step() per reading, in time order. When it is time to (re)train, the step
 * result says so (want_train); the caller then makes a job (detector_job_create: copies the
 * settings and the serving predictor, so it can run on any thread while the detector keeps
 * stepping), gives it the training window (detector_job_set_data: the device's most recent
 * `history` readings, which the caller keeps: the daemon reads them from its store, vigil-replay
 * from its in-memory series), runs it (detector_job_run: the expensive part, any thread), and
 * hands it back (detector_job_apply: validates the candidate against the serving model on the
 * most recent data and swaps only if it is better; records the decision). vigil-replay does
 * the calls inline; the daemon runs set_data and run on its training pool.
 *
 * Threading: a detector is used by one thread at a time (its owner); jobs are independent
 * objects. Returns 0 or a negative ERR_* code (common/err.h). */
#ifndef VIGIL_DETECTOR_H
#define VIGIL_DETECTOR_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>

#define DETECTOR_MAX_CHANNELS 64
#define DETECTOR_MAX_BATCH    64 /* detectors in one detector_step_batch */

enum detector_state { DET_LEARNING = 0, DET_NORMAL, DET_WARNING, DET_ANOMALY };
enum detector_kind { DET_KIND_PERSISTENCE = 0, DET_KIND_LINEAR, DET_KIND_LSTM };
/* Which predictors a training may install (detector_config.model_kind). */
enum detector_model_kind {
    DET_MODEL_AUTO = 0, /* the one that validates best (the LSTM by lstm_margin) */
    DET_MODEL_LSTM,     /* an LSTM whenever one trained; only a better LSTM replaces it */
    DET_MODEL_LINEAR    /* never train an LSTM: the linear baseline or persistence */
};

/* Settings; plain value type. Start from detector_config_default(): the daemon's defaults are
 * the benchmark's defaults (docs/detection.md gives the measurements behind each, and the
 * ablations of the switches). */
struct detector_config {
    /* Training schedule and models. */
    int warmup;        /* readings before the first training (state "learning" until then) */
    int history;       /* readings in a training window (>= warmup), given by the caller */
    int retrain_every; /* readings between retrainings once serving (0: never) */
    int second_at;     /* reading count at which a second training follows the first one
                          (0: none), since the first model saw only the warm-up */
    int n_hidden;      /* LSTM hidden size */
    int n_layers;      /* LSTM layers */
    struct model_train_config train; /* window (also the serving context), epochs, lr, ...
                                        (val_fraction: the LSTM's early-stopping split) */
    int val_rows;    /* the most recent readings held out to choose the serving predictor
                        and to calibrate the error scales (at most a third of the data) */
    int recalibrate; /* 1: a training that keeps the serving predictor still recalibrates its
                        error scales and reseeds the long window; 0: only a swap does */
    int calib_all;   /* 1: calibrate the error scales and seed the long window on every row
                        the job holds (after one window), not only on val_rows */
    /* Raw score: each channel's one-step error over its error scale (the serving predictor's
     * RMS error on val_rows, floored), squared, plus the optional level term; the raw score is
     * log(1 + mean of those terms over the channels). */
    int agg_top;          /* average only the agg_top largest channel terms (0: all) */
    int err_window;       /* readings of short means in the long (reference) window */
    int err_short;        /* readings in the short mean of the raw score (<= 1024) */
    float flat_rel;       /* error-scale floor, as a fraction of the channel's spread in
                             training: smaller errors never count */
    int channel_fallback; /* 1: a channel where persistence forecasts `horizon` steps ahead
                             better than the model is predicted by persistence (flat channels
                             always are) */
    int horizon;          /* forecast horizon of that comparison: drifting channels favour
                             persistence, channels hovering around a level the model */
    int drift_all;        /* 1: make that comparison on every row the job holds (after one
                             window), 0: on the val_rows tail only */
    float level_weight;   /* weight of a level term for channels not predicted by persistence:
                             (x - training mean)^2 / training variance (0: off) */
    float lstm_margin;    /* the LSTM serves only if its validation cost is below (1 - this)
                             times the linear baseline's and persistence's */
    float clamp_margin;   /* the LSTM's inputs are clamped to the range its training data
                             spanned, widened by this fraction of it (< 0: no clamping), so an
                             excursion cannot drive it where it never learned anything */
    /* Likelihood (Numenta): the short mean against the mean and deviation of the short means
     * in the long window, as a log-scaled tail in [0, 1] (0.5: a tail of 1e-5); Gaussian for
     * the score, Student's t for the state unless tail_plain (at the end of the struct). */
    int freeze;       /* 1: short means of readings in state anomaly stay out of the long
                         window, so a lasting fault keeps its alarm (bounded by accept_after) */
    int accept_after; /* readings in state anomaly after which the regime is accepted: the
                         window takes it in again and a retraining is asked for */
    /* State machine: (decision) likelihood >= alarm_level starts an anomaly, >= warn_level a
     * warning; either returns to normal after clear_count consecutive readings below clear_level
     * (inside an anomaly judged as hold_median says). */
    float warn_level;  /* likelihood at or above: warning */
    float alarm_level; /* likelihood at or above: anomaly */
    float clear_level; /* below this for clear_count readings ends a warning/anomaly */
    int clear_count;
    int hold_median; /* 1: inside an anomaly, judge on the median raw score of the episode's
                        readings (at most err_short) rather than the mean: spikes make short
                        episodes, lasting faults long ones */
    /* The reported score is the likelihood, capped at repeat_cap for an alarm-level reading
     * (score_level) within `refractory` readings of the previous alarm-level one: it marks
     * onsets. */
    int refractory;      /* readings (1: Numenta's filter, the previous reading only) */
    float repeat_cap;    /* the capped score; 1 disables the filter */
    uint64_t seed;       /* LSTM initialisation and shuffling (each training adds its version) */
    int retrain_seconds; /* also retrain when the readings' timestamps (detector_step_ts) have
                            advanced this many seconds since the last training (0: never) */
    /* Added after format 1 of saved detectors (detector_load.c reads format 1's config up to
     * retrain_seconds): keep new fields at the end. */
    float flat_diff; /* error-scale floor, as a fraction of the RMS of the channel's one-step
                        changes in training (the larger of this and flat_rel's floor applies) */
    int confirm;     /* readings in a row at or above alarm_level that start an anomaly (1 or
                        2): 2 keeps a lone reading over the level from opening an episode; the
                        episode then opens one reading after the onset the score marks, so its
                        readings' scores are capped (an event's peak is the likelihood) */
    int warm_epochs; /* > 0: while an LSTM serves, a training's candidate LSTM starts from its
                        weights and trains at most this many epochs (0: always a fresh LSTM
                        with train.max_epochs) */
    /* Added in format 4 (formats 1-3 load with tail_plain 1 and score_level 0: as they ran). */
    int tail_plain;    /* 0: the state machine (warn_level, alarm_level, clear_level, confirm)
                          follows a decision likelihood that treats the long window's mean and
                          deviation as estimates from its ring_len / err_short independent short
                          means (Student's t with that many less one degrees of freedom, scale
                          widened by sqrt(1 + 1 / n)), so a window seeded from few readings cannot
                          raise alarms on its own noise; the reported score keeps the Gaussian
                          tail. 1: both follow the Gaussian tail (before format 4) */
    float score_level; /* the score's likelihood at or above which the onset filter counts a
                          reading as alarm-level (0: alarm_level, as before format 4) */
    /* Added in format 5 (formats 1-4 load with open_median 0: as they ran). */
    int open_median; /* > 0: an anomaly opens only if the median raw score of the last
                        open_median readings (at most err_short), judged as a short mean,
                        reaches clear_level, so an episode does not open where it would end at
                        once (0: off) */
    /* Added in format 6 (formats 1-5 load with extrap_weight 0: as they ran). */
    float extrap_weight; /* > 0 (the linear baseline serving): a channel's error scale widens
                            (in quadrature) by this times the part of its prediction that the
                            other channels' inputs contribute from beyond two standard
                            deviations of the level of the data the model was trained and
                            calibrated on (its own input too, when at least half of the
                            others are out, up to the farthest of them): a model meeting an
                            operating point it never saw is uncertain there, while a fault that
                            moves one channel is not excused on it; 0: off */
    /* Added in format 7 (formats 1-6 load with serving_f16 0: as they ran). */
    int serving_f16; /* 1: an LSTM a training made for this detector alone serves in its
                        float16 form (model_compact: half the memory, predictions within float16
                        rounding of the float32 model's); a device group's shared model, and a
                        model given with detector_set_model, serve as they are. 0: float32 */
    /* Also format 7 (formats 1-6 load with err_corr 0: as they ran). */
    int err_corr; /* 1: the raw score sums the channels' scaled errors through the inverse of
                     their correlation on the calibration rows (a Mahalanobis distance, shrunk
                     towards independence by C / (rows + C)), so one disturbance that coupled
                     channels all follow counts once, not once per channel, while errors
                     that break the usual coupling count more (only with agg_top 0 and two
                     or more channels); 0: the channels' squared errors are summed as if
                     independent */
    /* Added in format 8 (formats 1-7 load with op_point 0: as they ran). */
    int op_point; /* 1: a second, operating-point likelihood joins the decision (two or more
                     channels with a level, i.e. not predicted by persistence): each such
                     channel's level in its training spreads, as an exponential short mean,
                     against that channel's own levels since the training (Student's t, frozen
                     in an episode), the most extreme channel's tail times the channels judged
                     and 2; the state follows the larger of the two likelihoods, so a lasting
                     shift of one channel's level that a one-step predictor follows stays
                     flagged. The score is unchanged. 0: off */
    /* Added in format 9 (formats 1-8 load with model_kind DET_MODEL_AUTO: as they ran). */
    int model_kind; /* enum detector_model_kind. DET_MODEL_AUTO: a training installs whichever
                       of its LSTM, linear baseline and persistence validates best, the LSTM
                       only by lstm_margin, if that beats what serves. DET_MODEL_LSTM: its LSTM
                       serves whenever one trained (too little data: as auto), replacing a
                       linear or persistence predictor whatever their costs; once an LSTM
                       serves only a candidate LSTM that validates better than it replaces it.
                       DET_MODEL_LINEAR: no LSTM is trained (one given with
                       detector_set_model still serves until a training validates better) */
    /* Added in format 10 (formats 1-9 load with season_bins 0: as they ran). */
    int season_bins; /* > 0: a seasonal candidate per channel. Where a training's rows show a
                        strong period P (the first peak of their detrended autocorrelation after
                        it has crossed zero, at least 0.3; 8 <= P <= a third of the training
                        rows; P counts readings, so it assumes regular sampling), the channel
                        may be predicted by a per-phase profile of that period (at most
                        season_bins bins, linearly interpolated) plus an AR(1) correction of
                        its deviation from the profile, chosen per channel where that
                        validates 10 % better than what would predict it otherwise (not in a
                        group's job). Costs 4 * C * (season_bins + 3) + C bytes a detector.
                        0: off */
    /* Added in format 11 (formats 1-10 load with burst_memory 0: as they ran). */
    int burst_memory; /* 1: a burst the device has shown before does not open an episode
                         (detector_burst.c). A burst is an episode that lasted fewer than
                         err_short readings (burst_wide: fewer than burst_wide x err_short, and
                         not released or accepted), ended by itself and was followed by err_short
                         readings without one; it is remembered with its peak short mean until
                         the next training.
                         While m bursts of the last err_window readings peaked at or above the
                         current short mean, the decision's tail is at least their empirical
                         rate m / (ring_len / err_short), so only an excursion above every
                         recent burst opens an episode or a warning. The reported score, the hold
                         of an open episode and the operating point are unchanged; a lasting
                         fault is never a burst. Costs 224 bytes a detector. 0: off */
    /* Also added in format 11 (formats 1-10 load with shift_len 0: as they ran). */
    int shift_len; /* > 0: a step test joins the decision (devices with two or more channels
                      with a level, i.e. not predicted by persistence; detector_shift.c): per
                      channel, the jump between the least-squares lines through the older and
                      the newer q = shift_len of the newest 2 q readings, at the point between
                      them (a drift, even one that speeds up, is continuous there; a step is
                      not), judged against its own values since the training (frozen in an
                      episode) and only where the step takes the channel further from its mean
                      level since the training; the most extreme channel's two-sided tail
                      times the channels judged and 2. An episode in which it reaches
                      alarm_level is held while the channel's level (the newer q readings'
                      mean) stays nearer the level the step went to than its mean since the
                      training. q is at most half the
                      context ring (2 train.window readings), which it reads: the state is
                      1,560 bytes of sums a detector. 0: off */
    /* Added in format 12 (formats 1-11 load with season_opinion 0: as they ran). */
    int season_opinion; /* bits (with season_bins): a seasonal profile that a training found but
                           did not choose (it did not validate 10 % better as a one-step
                           predictor) is kept as a second opinion (detector_opinion.c): the
                           reading's deviation from it, in the deviation's spread over the
                           training rows, as an err_short exponential mean, judged against its
                           own values since the training (Student's t, two-sided; a value at
                           warn_level stays out of that reference; the most extreme channel's
                           tail times the channels judged and 2), for every device (one channel
                           too): a day that runs far below its weekly pattern through ordinary
                           one-step changes is seen. Bit 1: its likelihood joins the reported
                           score (the default, 1: the decision is unchanged); bit 2: it joins the
                           decision as the operating point's likelihood does (measured, not
                           adopted: docs/detection.md, "Fifteenth round"). Costs 4 season_bins +
                           40 bytes for each channel with such a profile, nothing for the
                           others. 0: off */
    /* Added in format 13 (formats 1-12 load with shift_plain 0: as they ran). */
    int shift_plain; /* 1 (with shift_len): each channel's step is estimated by whichever of two
                        estimates has the smaller deviation since the training, the jump between
                        the two halves' lines (shift_len's) or the plain difference of their
                        means. Both measure a clean step in full; the plain difference is twice
                        as precise on a channel that is noise around a level (a flow), the
                        lines' jump is blind to a smooth drift (a temperature). Costs 1,024
                        bytes of sums a detector. 0: the lines' jump on every channel */
    /* Added in format 14 (formats 1-13 load with shift_release 0: as they ran). */
    int shift_release; /* 1 (with shift_len): a step hold ends at once when the held channel's
                          step estimate (the one the test judges it on) shows a step back
                          toward the channel's level since the training (docs/detection.md,
                          "Sixteenth round"). No state. 0: the hold waits for the newest
                          shift_len readings' mean to cross the midpoint */
    /* Added in format 15 (formats 1-14 load with onset_record 0: as they ran). */
    float onset_record; /* in [0, 1]: how an onset's reported score ranks above score_level
                           (detector_onset.c, onset_rank). An onset (a reading reported at or
                           above score_level, not capped by the onset filter) is reported at
                           score_level + (1 - score_level) (r g + (1 - r) l), r = onset_record,
                           l its likelihood's own place above score_level, and g = 1 -
                           exp(-e) for e > 0, the excess of the short window's largest raw
                           score over the largest raw score of every reading that left the
                           short window since the training: an excursion beyond anything the
                           device has shown since then ranks above one it has shown before.
                           The decision is unchanged. Costs 8 bytes of state. 0: the onset's
                           likelihood as it is */
    /* Added in format 16 (formats 1-15 load with settle_release 0: as they ran). */
    int settle_release; /* 1 (with shift_release): an episode whose step hold was armed within
                           shift_len readings of its opening (the step set it off) ends when
                           shift_release has dropped that hold and the channel has landed back
                           within a quarter of the step of its level since the training (the
                           medians of its newest shift_len / 2 and / 4 readings; the step at
                           least 2 robust deviations of those readings), whatever the error's
                           and the operating point's likelihoods still say: what remains is the
                           state the device settled into after the fault. A training is asked
                           for (as accept_after does), and with burst_memory the short mean at
                           the release is kept as a burst until it applies. The result of that
                           reading has `released` set (docs/detection.md, "Eighteenth round").
                           24 bytes of state when set. 0: the other terms hold the episode on */
    /* Added in format 17 (formats 1-16 load with season_accum 0: as they ran). */
    float season_accum; /* in [0, 1] (with season_opinion and season_bins): a day that departs
                           from its cycle, accumulated (detector_opinion.c). For each channel
                           where a training found a period (its profile chosen or not), the
                           reading's deviation from the profile, in the deviation's spread over
                           the training rows, as an exponential mean over L = season_accum
                           periods (at least err_short readings), judged against that mean's
                           spread over the training rows and the held-out rows, pooled, and its
                           values since the training (Student's t with their L-reading samples,
                           two-sided, spread at least the training's; a value at warn_level
                           stays out of that reference; the most extreme channel's tail times
                           the channels judged and 2). Its likelihood joins the reported score
                           where season_opinion's bit 1 does; the decision is unchanged
                           (docs/detection.md, "Nineteenth round"). Costs 16 bytes a detector,
                           40 more for each channel with a kept profile, and 4 season_bins + 80
                           for a chosen one (a record and a copy of its profile). 0: off */
    /* Added in format 18 (formats 1-17 load with record_open 0: as they ran). */
    float record_open; /* in [0, 1]: the error's decision likelihood an episode needs
                          to open when the excursion is within the device's record (the short
                          window's largest raw score no larger than the largest raw score of
                          every reading that left the short window since the training, as
                          onset_record's g = 0; detector_score.c). Below it such an excursion
                          raises a warning at most. An excursion beyond the record, or one
                          judged before err_short readings make the record, opens at
                          alarm_level as before; the operating point's and the step test's
                          openings are unchanged. Costs the 8 bytes of onset_record's state
                          when that is 0. 0 (or any value up to alarm_level): off
                          (docs/detection.md, "Twentieth round") */
    /* Added in format 19 (formats 1-18 load with score_tails 0: as they ran). */
    int score_tails; /* 0 or 1: where a second opinion joins the reported score (season_opinion
                        bit 1, a kept profile), the error's tail in that score is doubled before
                        the larger of the likelihoods is taken, as the second opinions' tails
                        already are for the two likelihoods the state compares: a departure of
                        the same improbability then scores the same whichever term saw it
                        (detector_score.c, error_on_opinion_scale). Only the reported score
                        changes; the decision does not. No state. 0: off (docs/detection.md,
                        "Twenty-first round") */
    /* Added in format 20 (formats 1-19 load with warn_run 0: as they ran). */
    int warn_run; /* readings (>= 0): a warning that lasts opens an episode. Once the opening
                     likelihood has stayed at or above warn_level for warn_run readings in a
                     row (outside an episode), the run's short means are combined as
                     independent evidence: k = run / err_short of them (they overlap by
                     err_short - 1 readings), each at the run's mean likelihood m, their tails'
                     product P = 1e-10^(k m) taken as Fisher's combined tail
                     P sum_{j<k} (-ln P)^j / j!; an episode opens when that reaches
                     alarm_level. Many moderately unlikely short means in a row are very
                     unlikely together, and a warning's short means feed the long window,
                     which would otherwise learn the fault (docs/detection.md, "Twenty-second
                     round"). 12 bytes of state when set. 0: off */
    /* Added in format 21 (formats 1-20 load with onset_quiet 0: as they ran). */
    float onset_quiet; /* in [0, 1] (with onset_record): the share of the quiet before an onset
                          in onset_record's (1 - r) part, which the likelihood's place l had
                          alone: that part becomes (1 - k) l + k q, k = onset_quiet, q = 1 -
                          exp(-s / err_window), s the readings since the previous reading whose
                          likelihood reached score_level (none since the training: q = 1). An
                          excursion after a long quiet ranks above one in a bursty spell; an
                          excursion beyond the record still ranks by g first. Only the reported
                          score changes; the decision does not. No state (the onset filter's
                          count is saved already). 0: the likelihood's place alone
                          (docs/detection.md, "Twenty-fourth round") */
    /* Added in format 22 (formats 1-21 load with warn_region 0: as they ran). */
    int warn_region; /* 0 or 1: a warning run (warn_run) does not open while more than half of
                        its readings were a coupled move beyond the data the serving model was
                        trained on: at least half of the channels with a level (two or more of
                        them) beyond two of their training spreads from their training level,
                        extrapolation's region (extrap_weight). There a young model's error
                        grows across its channels however healthy the device: such a run says
                        that the model has not seen this operating point, not that the device
                        is failing. The run goes on (it may open once most of it lies inside
                        the region); an alarm-level reading opens as before. 4 bytes of state
                        when set with warn_run (docs/detection.md, "Twenty-third round").
                        0: off */
    /* Added in format 24 (formats 1-23 load with record_quiet 0: as they ran). */
    int record_quiet; /* 0 or 1 (with onset_record): the quiet before an onset weighs its record
                         too, and is the device's, not the model's. onset_record's g becomes
                         g q, and q (here and in onset_quiet's share) counts the readings since
                         the previous reading whose likelihood reached score_level whether or
                         not a training came between (none since the detector was created:
                         q = 1): a record set in a bursty spell ranks as low as a repeat, and
                         a training does not make the device's next excursion its first. Only
                         the reported score changes; the decision and the onset filter do not.
                         4 bytes of state when set. 0: g alone, q counted since the training
                         (docs/detection.md, "Twenty-fifth round") */
    /* Added in format 25 (formats 1-24 load with onset_rate 0: as they ran). */
    int onset_rate; /* 0 or 1 (with onset_record): a record is as new as the device's onsets are
                       rare. onset_record's g is divided by 1 + n, n the device's earlier onsets
                       (readings reaching score_level that the onset filter did not cap), each
                       weighed exp(-age / err_window) and counted across trainings: a device
                       that sets off several onsets within the likelihood's memory ranks a new
                       record lower than one whose previous onset was its only one; the quiet
                       (record_quiet) looks only at the last gap. Only the reported score
                       changes; the decision and the onset filter do not. 8 bytes of state when
                       set. 0: off (docs/detection.md, "Twenty-sixth round") */
    /* Added in format 26 (formats 1-25 load with shift_confirm 0: as they ran). */
    int shift_confirm; /* 0 or 1 (with confirm = 2 and shift_len): a reading whose step test
                          (shift_len) is at alarm_level confirms itself; the previous reading
                          need not have been at alarm level. The test already judges 2
                          shift_len readings and guards its own opening (the newer half's
                          median must lie past the midpoint of the two levels), so one wild
                          reading cannot set it off, while a second reading in a row adds
                          little evidence to a window that shares all but one of its readings:
                          it only lets a step whose test flickers at the level (a quantised
                          channel) wait for the next time it is at alarm level twice in a row.
                          Not while the test's window holds a reading whose likelihood reached
                          score_level (since_red < 2 shift_len): an excursion of the error bends
                          the lines, and the test flickers with it. No state. 0: confirmed as
                          any opening (docs/detection.md, "Twenty-seventh round") */
    /* Added in format 27 (formats 1-26 load with shift_winsor 0: as they ran). */
    float shift_winsor; /* > 0 (with shift_len): a step estimate enters the step test's
                           reference (since the training) pulled in to within this many of its
                           deviations of its mean (Huber's winsorising), and the deviation is
                           taken as the winsorised one over its value for Gaussian noise, so
                           noise is judged as before. A slow step (a valve closing over tens of
                           readings) sends its growing estimates into the reference before the
                           test sees all of it, widening the deviation it is then judged
                           against; pulled in, they cannot widen it much. No state. 0: every
                           estimate enters as it is (docs/detection.md, "Twenty-eighth round") */
    /* Added in format 28 (formats 1-27 load with range_quiet 0: as they ran). */
    float range_quiet; /* [0, 1] (with onset_record and onset_quiet): the share of the quiet's
                          credit (onset_quiet's q in an onset's rank) that an onset loses when
                          no channel, in its short window (err_short readings), leaves the range
                          of values it has shown since the detector began scoring: after a long
                          quiet, a device that goes somewhere it has never been is news, one
                          back in its own range after a quiet is less so. Only the reported
                          score changes; the decision and the onset filter do not. 4 + 8 C
                          bytes of state when set. 0: off (docs/detection.md, "Thirtieth
                          round") */
    /* Added in format 29 (formats 1-28 load with offset_release 0: as they ran). */
    int offset_release; /* > 0: readings after which an episode whose error has become a
                           steady offset is no longer held by the error, on a device whose
                           levels neither the operating point nor the step test judges (fewer
                           than two channels with a level). Steady: the standard deviation of
                           the short window's error norms at most 2 error scales, as noise
                           around a constant offset is. If nothing else holds the episode it
                           ends as released and a training is asked for, as an accepted
                           regime's is: the device settled at a new level, which the event's
                           onset has reported. On a device with two or more such channels a
                           steady error is a changed relation between channels (a valve stuck
                           part-closed), held as before. No state. 0: off (docs/detection.md,
                           "Thirty-first round") */
    /* Added in format 30 (formats 1-29 load with opinion_open 0: as they ran). */
    int opinion_open; /* 0 or 1 (with season_opinion and season_bins): a second opinion's onset
                         opens an episode. When the larger of a kept seasonal profile's
                         likelihoods (its deviation's, and season_accum's accumulated one) has
                         been at alarm_level for exactly `confirm` readings in a row, outside an
                         episode, an episode opens (opened_by level, its channel the profile's);
                         a run opens once however long it lasts. Only on a device whose levels
                         neither the operating point nor the step test judges (fewer than two
                         channels with a level), as offset_release: where they judge, a level
                         opening is theirs. The opinions join only the
                         opening: the episode is held, as any other, by the error's median, the
                         operating point and the step test, so the freeze does not hold a
                         departure that the series goes on with (season_opinion bit 2 and the
                         accumulated likelihood in the hold did: docs/detection.md, fifteenth
                         and nineteenth rounds). 4 bytes of state, saved from format 35 (a
                         format 33 save loads with a run in progress started over). 0: off
                         (docs/detection.md, "Thirty-third round") */
    /* Added in format 31 (formats 1-30 load with hold_recent 0: as they ran). */
    int hold_recent; /* 0 .. err_short (with hold_median): on a device whose levels neither the
                        operating point nor the step test judges (fewer than two channels with
                        a level), the error no longer holds an episode once the newest
                        hold_recent readings are each normal on their own (the likelihood of
                        the largest of their raw scores, taken as a short mean, below
                        clear_level): the device is back. hold_median's median of up to
                        err_short readings otherwise keeps the episode of a burst that decays
                        for about as many readings after the values' return as the burst
                        lasted. A lasting fault whose readings now and then fall back inside
                        the noise keeps its episode: fewer than hold_recent normal readings in
                        a row do not end it. Right after an episode, the reopening is judged
                        with the same cap. Never holds an episode longer. No state. 0: off
                        (docs/detection.md, "Thirty-fifth round") */
    /* Added in format 32 (formats 1-31 load with record_open_one 0: as they ran). */
    float record_open_one; /* in [0, 1]: record_open's level on a device whose levels neither
                              the operating point nor the step test judges (fewer than two
                              channels with a level), when above record_open: there an
                              excursion of the error within the device's record since the
                              training opens only at this decision likelihood, below it a
                              warning at most. Where the level tests judge, record_open alone
                              applies, as before. Costs the 8 bytes of onset_record's state
                              when that and record_open are 0. 0 (or any value up to
                              alarm_level): off (docs/detection.md, "Thirty-seventh round") */
    /* Added in format 33 (formats 1-32 load with onset_rhythm 0: as they ran). */
    int onset_rhythm; /* 0 or 1 (with onset_record): an onset that keeps a schedule ranks at
                         score_level, the lowest rank an onset has. The device's last 8 onsets
                         are kept across trainings (reading counts, and each short window's
                         largest raw score). An onset keeps a schedule when it is the third
                         repeat at one interval: its gap g to a kept onset matches the gap from
                         that one to an earlier one and from there to an earlier one again,
                         each within g / 32 (g at least 4 err_short readings; other onsets in
                         between do not count), and its short window's largest raw score is
                         at most log 2 above theirs: a nightly job's spike, a daily flush, is
                         the device's routine, not news; the same job failing wildly is. Only
                         the reported score changes; the decision and the onset filter do not.
                         100 bytes of state, saved when set. 0: off (docs/detection.md,
                         "Thirty-sixth round") */
    /* Added in format 34 (formats 1-33 load with range_far and range_open 0: as they ran). */
    float range_far; /* >= 0 (with range_quiet, whose range it reads): a reading that goes
                        beyond the values a channel has shown since the detector began scoring
                        by more than this share of their range's width, once that range holds
                        400 readings and not within `refractory` readings of an alarm-level one,
                        is an onset whatever the model predicted: reported at score_level + (1 -
                        score_level) (1 - range_far / u) at least, u its excess in widths
                        (score_level at the share, growing with the excess), and counted as an
                        onset by the onset rank's memory (quiet, rate, rhythm). A device with
                        exponential tails exceeds its range of n readings by half its width
                        about n^-1.5 of the time: from 400 readings on, once in its life in one
                        device in ten. No state. 0: off (docs/detection.md, "Fortieth round") */
    int range_open;  /* 0 or 1 (with range_far): such a reading also opens an episode where
                        nothing else opens on it (opened_by level, its channel the top channel),
                        held and ended as any episode. 0: only the score (docs/detection.md,
                        "Fortieth round") */
    /* Added in format 36 (formats 1-35 load with mean_far 0: as they ran). */
    float mean_far; /* >= 0 (with range_quiet, whose range it reads): the short window's mean
                       (err_short readings) going beyond every value a channel has shown before
                       them by more than this share of their range's width, once that range
                       holds 400 readings, is an onset on the reading where it first does so
                       (not within `refractory` readings of an alarm-level one): ranked as a
                       record of the device's values (the onset rank with its record term at
                       1, weighed by the quiet and the onset rate), whatever the model predicted.
                       A mean of readings leaves the range only when the device has stayed out
                       of it, never by noise; a steady drift takes it (err_short - 1) / 2n
                       widths out after n readings (0.011 at 400), the share a tenth. Only the
                       score; one int of state, saved when set. 0: off (docs/detection.md,
                       "Forty-third round") */
    /* Added in format 37 (formats 1-36 load with rhythm_time 0: as they ran). */
    int rhythm_time; /* 0 or 1 (with onset_rhythm): the kept onsets' gaps are compared in the
                        readings' time (detector_step_ts) instead of their counts, so a feed
                        that drops readings, or changes its sampling interval, keeps its
                        schedule. The tolerance stays g / 32 (g now in ms); the minimum gap
                        stays 4 err_short readings counted between the onsets. A reading
                        without a timestamp is judged by counts as before; onsets kept without
                        one take no part in a judgement in time. 64 bytes more of onset_rhythm's
                        state, saved when both are set. 1 by default (no NAB or SKAB
                        result moves; docs/detection.md, "Forty-fifth round"). 0: counts */
    /* Added in format 38 (formats 1-37 load with onset_now 0: as they ran). */
    int onset_now; /* 0 or 1 (with onset_record): an onset of the error's likelihood whose
                      newest reading is back in the noise (its raw score, taken as a short
                      mean, below score_level) earns no credit for the likelihood's place in
                      the onset rank: the short mean that reached the level is carried by
                      readings already past, so it marks an excursion that is ending, not one
                      that starts. The record and the quiet keep their credit; onsets a second
                      opinion marks are left alone. Only the score; no state. 0: off
                      (docs/detection.md, "Forty-seventh round") */
    /* Added in format 39 (formats 1-38 load with onset_tie 0: as they ran). */
    int onset_tie; /* 0 or 1 (with onset_record): an onset of a likelihood whose
                      short window's largest raw score equals, to the float, the largest since
                      the training (onset_record's reference) is ranked at score_level, the
                      rank's lowest: the same error again (the same reading against the same
                      prediction, a fixed-size spike, a sensor at its bound, or the raw score's
                      cap), a repeat the device has shown, not news. Only the score; no state.
                      0: off (docs/detection.md, "Forty-eighth round") */
    /* Added in format 40 (formats 1-39 load with avg_epochs 0: as they ran). */
    float avg_epochs; /* > 0: the LSTM served is the average of its weights over the training's
                         steps (an exponential moving average with a time constant of this
                         many epochs, model_train_averaged): early stopping validates the
                         average and keeps it, the raw weights go on training. Less of where
                         Adam's last noisy steps left the weights, so of the seed. 0: off, the
                         last step's weights (docs/detection.md, "Fifty-third round") */
    /* Added in format 41 (formats 1-40 load with lstm_min_rows 0: as they ran). */
    int lstm_min_rows; /* with model_kind auto: a training trains an LSTM (and lets it compete)
                          only when the job holds at least this many training rows; below
                          that, the linear baseline, persistence and the seasonal candidate
                          compete as always and no LSTM is trained (no CPU spent); the first
                          LSTM trained then starts afresh (none has served to warm-start
                          from). model_kind lstm ignores it. An LSTM's thousand-odd parameters
                          are poorly fixed by the warm-up's 134 rows, and a validation on 66
                          rows cannot tell. -1 (the default): as many training values (rows
                          x predicted channels) as the LSTM has parameters. 0: off, every
                          training trains one (docs/detection.md, "Fifty-sixth round") */
    /* Added in format 42 (formats 1-41 load with offset_trend and record_young 0: as they ran). */
    float offset_trend; /* > 0 (with offset_release): an episode is released as settled only
                           while no channel still moves away from its training level: the
                           least-squares line through its newest readings (the context ring,
                           2 train.window of them: detector_trend) slopes away from that
                           level by fewer than this many standard errors. A drift is a level
                           that has not settled; its steady error would otherwise release it,
                           and the training asked for would take the drift in as normal. Held,
                           it ends when it stops moving or as an accepted regime
                           (accept_after). No state. 3 by default (no NAB, SKAB or vigil-sim
                           output changed); 0: off (docs/detection.md, "Sixtieth round") */
    int record_young;   /* 0 or 1 (with record_open or record_open_one): in the first err_short
                           readings after a training, while the record since the training holds
                           no reading yet, an excursion of the error is not counted as within
                           it: it opens at alarm_level. A fault that starts on the first reading
                           after a training otherwise meets record_open_one's higher level (its
                           own first readings then become the record), while each of its short
                           means widens the young long window, and is normal within about 10
                           readings. No state. 1 by default (no NAB, SKAB or vigil-sim output
                           changed); 0: off (docs/detection.md, "Sixtieth round") */
    /* Added in format 43 (formats 1-42 load with accept_grow 0: as they ran). */
    float accept_grow; /* > 0: a fault whose error is still growing is not a new normal. An
                          episode's readings are taken in blocks of accept_after / 2 (one
                          ending at accept_after); its regime is accepted at the end of the
                          first block, from accept_after on, whose mean error (each reading's
                          root mean square error over the channels, in the error scales of
                          the model's training) is not above the previous block's by this
                          many standard errors of their difference. While the fault grows the
                          model stays frozen (trained before it) and the episode flagged,
                          until it stops growing (accepted 2-3 blocks after it stops), an
                          operator accepts it (detector_accept), or it ends as any episode
                          does. State: the two blocks' sums (saved). 3 by default (no NAB or
                          SKAB output and no vigil-sim delay changed); 0: off, accepted at
                          accept_after (docs/detection.md, "Sixty-second round"). With
                          accept_after below 4 the blocks hold one reading, too few for a
                          standard error, so it is accepted at accept_after as with 0. While
                          an episode is held, the schedule's trainings (retrain_every,
                          retrain_seconds) wait until it is accepted or ends ("Sixty-third
                          round") */
    /* Added in format 44 (formats 1-43 load with hold_echo 0: as they ran). */
    float hold_echo; /* > 0, with hold_recent: on a one-sensor device whose serving predictor
                        does not follow a seasonal profile, an episode the error holds also
                        ends once (a) its newest hold_recent values are each within hold_echo
                        spreads of the level before the episode (the median of the 4
                        err_short readings before its opening's short window; the spread 1.4826
                        times their median absolute deviation) and (b) the model's errors on
                        those readings are all of one sign: the echo of a burst the model
                        carries in its state, not a changed pattern inside the old range (a
                        control loop hunting), whose error changes sign. For err_short
                        readings after an episode the error reopens nothing while both still
                        hold. State: the level and the error's run (saved). 2 by default;
                        0: off (docs/detection.md, "Sixty-fourth round") */
    /* Added in format 45 (formats 1-44 load with burst_wide 0: as they ran). */
    int burst_wide; /* >= 2, with burst_memory: a burst is an episode shorter than burst_wide
                       times err_short readings (a spike and its decay) that ended by itself
                       (not released, not accepted), not only one shorter than err_short.
                       2 by default; 0 or 1: shorter than err_short, as before
                       (docs/detection.md, "Sixty-sixth round") */
    /* Added in format 46 (formats 1-45 load with hold_decay 0: as they ran). */
    float hold_decay; /* in (0, 1], with hold_median: on hold_echo's devices (one sensor, no
                         seasonal profile serving), an episode the error holds, within 2
                         err_short readings of its opening, also ends once its newest decay_run
                         values have each come back hold_decay of the way from the episode's
                         peak (the value farthest from the level before it, the reading before
                         the opening included) to that level, and 8 of the level's spreads
                         below the peak: a spike's decay, not a fault. For err_short readings
                         after the episode the long window learns nothing and nothing opens
                         while that still holds, so a reopening needs a new peak. State: the
                         level (hold_echo's), the peak, the readings left (saved; format 46 also
                         the readings since the peak). 0.5 by default (docs/detection.md,
                         "Sixty-seventh round"); 0: off */
    int decay_run;    /* >= 1 when hold_decay is set: the newest values it asks back; 2 */
    /* Added in format 47 (formats 1-46 load with spread_mean 0: as they ran). */
    int spread_mean; /* 0 or 1: where the level before an episode (hold_echo's and hold_decay's)
                        has a median absolute deviation of 0 (at least half its readings equal,
                        as a counter that mostly reads 0), its spread is 1.2533 times the mean
                        absolute deviation about the median (a Gaussian's deviation) instead of
                        0, with which both rules wait. No state. 1 by default
                        (docs/detection.md, "Sixty-eighth round"); 0: off */
    /* Added in format 48 (formats 1-47 load with trip_level 0: as they ran; vigild then applies
     * the running model.trip_level, detector_apply_settings). */
    float trip_level; /* [0, 1]: an error's onset scored at least this is in state anomaly alone
                         (opened by error, ended cleared), the machine untouched. 0.8; 0: off */
    /* Added in format 49 (formats 1-48 load with no inputs: as they ran). */
    uint8_t input[DETECTOR_MAX_CHANNELS]; /* 1: channel c is an input (a set point, a control):
                         the predictors read it and predict it as any channel, but it is never
                         scored: no error or level term, no operating point, step test or range
                         onset, no second opinion, share 0 and never top_channel. All 0 */
};

/* Fills the defaults (those chosen by measurement: docs/detection.md). */
void detector_config_default(struct detector_config *cfg);

typedef struct detector detector_t;
typedef struct detector_job detector_job_t;

/* Creates a detector for n_channels channels (1..DETECTOR_MAX_CHANNELS). Returns ERR_INVAL,
 * ERR_NOMEM. Caller owns *out; free with detector_destroy. */
int detector_create(detector_t **out, const struct detector_config *cfg, int n_channels);

/* Frees a detector. NULL is a no-op. */
void detector_destroy(detector_t *d);

/* Why a reading's state change ended an anomaly episode (detector_result.ended_by). */
enum detector_end {
    DET_END_NONE = 0, /* no episode ended on this reading */
    DET_END_CLEARED,  /* the readings came back to what the model expects */
    DET_END_ACCEPTED, /* the episode had lasted accept_after readings: its regime was accepted
                         (learnt as normal) before it ended, so the fault may still be there */
    DET_END_RELEASED, /* settle_release: the step that set it off went back; offset_release:
                         the error settled at a steady offset (released is 1 either way) */
};

/* What opened an anomaly episode (detector_result.opened_by), in the order the state machine
 * judges it: a lasting warning, else the operating point's side when it opened alone (the
 * error's likelihood below alarm_level; the channel reported is then the one it names), else
 * the prediction error. */
enum detector_open {
    DET_OPEN_NONE = 0, /* no episode opened on this reading */
    DET_OPEN_ERROR,    /* the prediction error's decision likelihood at alarm_level (the usual
                          case; with it, any other likelihood at the level too) */
    DET_OPEN_LEVEL,    /* op_point: a channel's level far from its own history since the
                          training (or, season_opinion bit 2, from its seasonal profile; or,
                          range_open, a reading far beyond every value the channel has shown) */
    DET_OPEN_STEP,     /* shift_len: the step test (with shift_confirm, on one reading) */
    DET_OPEN_LASTING,  /* warn_run: a warning that lasted warn_run readings */
};

/* What one reading produced. */
struct detector_result {
    float score;     /* anomaly score in [0, 1]: the likelihood, capped after an onset */
    float threshold; /* alarm_level: the likelihood at or above which an anomaly starts */
    enum detector_state state;
    int is_anomaly;          /* 1 when state is DET_ANOMALY */
    int changed;             /* 1 when state differs from the previous reading's */
    int want_train;          /* 1 when the caller should start a training job now */
    int imputed;             /* number of channels that were missing and carried forward */
    enum detector_kind kind; /* the predictor that made pred */
    uint32_t version;        /* serving model version (0 before the first training) */
    float pred[DETECTOR_MAX_CHANNELS];    /* what was predicted for this reading, raw units */
    float contrib[DETECTOR_MAX_CHANNELS]; /* each channel's share of the error, sums to 1
                                             (all 0 while learning) */
    int top_channel;                      /* channel with the largest share (-1 while learning) */
    float raw;                  /* the reading's raw score log(1 + mean z^2), 0 while learning */
    float likelihood;           /* the unfiltered likelihood the state machine follows (the decision
                                   likelihood, tail_plain; with tail_plain 1 score is this, capped at
                                   repeat_cap after an alarm-level reading) */
    int released;               /* 1 on the reading whose episode settle_release or offset_release
                                   ended (state normal: the fault's step went back, or the device settled
                                   at a new level; a training is asked for) */
    enum detector_end ended_by; /* on the reading that leaves state anomaly, why (an accepted
                                   regime outranks a release: the alarm had already stopped
                                   before the step went back); DET_END_NONE elsewhere */
    enum detector_open opened_by; /* on the reading that enters state anomaly, what opened it;
                                     DET_OPEN_NONE elsewhere */
};

/* A reading without a timestamp (retrain_seconds then ignores it). */
#define DETECTOR_NO_TIME INT64_MIN

/* Consumes one reading x[n_channels] (raw units) taken at ts_ms (milliseconds, any epoch, not
 * decreasing; DETECTOR_NO_TIME: unknown). present may be NULL (all present); a missing channel
 * (present[c] == 0) or non-finite value is carried forward from the last reading. Fills res.
 * No allocation. Returns 0 or ERR_INVAL (wrong shape). */
int detector_step_ts(detector_t *d, int64_t ts_ms, const float *x, const uint8_t *present,
                     struct detector_result *res);

/* Steps n detectors by one reading each (x [n, C], present [n, C] or NULL, ts_ms [n] or NULL,
 * res [n]) as n detector_step_ts calls would, except that the members serving an LSTM of the
 * same version as the first of them that serves an LSTM advance together in one batched model
 * step (one sgemm per layer: model_step_batch). The caller promises that detectors serving the
 * same version serve the same weights (a device group's). Distinct detectors, same channel
 * count, n <= DETECTOR_MAX_BATCH. work holds detector_batch_work_len(ds[0], n) floats. No
 * allocation. Returns 0 or ERR_INVAL. */
int detector_step_batch(detector_t *const *ds, int n, const int64_t *ts_ms, const float *x,
                        const uint8_t *present, struct detector_result *res, float *work);
size_t detector_batch_work_len(const detector_t *d, int n);

/* detector_step_ts without a timestamp. */
int detector_step(detector_t *d, const float *x, const uint8_t *present,
                  struct detector_result *res);

/* Forecasts k steps from the current state without disturbing it: mean[k, C] raw and band
 * [k, C], the half-width of a ~95% interval from the recent residuals. The first step is the
 * serving prediction; a channel predicted by persistence then follows the least-squares trend
 * of the context ring's readings where that trend is significant (else it stays flat). Returns
 * ERR_INVAL for k < 1, ERR_RANGE before the first training (no model yet). Allocates its
 * scratch. */
int detector_forecast(const detector_t *d, float *mean, float *band, int k);

/* The least-squares line through channel c's newest readings (the context ring: up to
 * 2 * train.window of them, raw units): *slope per reading, its standard error *se, and *level,
 * the line's value at the newest reading. For a caller that asks where a channel is heading
 * when the model's forecast (which predicts the device's normal behaviour) no longer applies:
 * the daemon's limit alarms while the channel departs from its prediction. Returns 0,
 * ERR_INVAL (bad arguments) or ERR_RANGE (fewer than 8 readings). No allocation. */
int detector_trend(const detector_t *d, int c, double *slope, double *se, double *level);

/* The training job (struct detector_train_info, detector_job_*): model/detector_job.h. */
#include "detector_job.h"

/* Serialises the whole detector (settings, models, error statistics, windows, threshold
 * state, carried LSTM states and the last readings that rebuild them) for a restart:
 * detector_save_size bytes, native byte order, CRC-32 checked. A loaded detector continues bit for
 * bit as the saved one would have. detector_save returns ERR_RANGE when cap is too small.
 * detector_load rejects corrupt or truncated input with ERR_CORRUPT (ERR_INVAL: an unknown format
 * version); the caller owns *out (detector_destroy). */
size_t detector_save_size(const detector_t *d);
int detector_save(const detector_t *d, void *buf, size_t cap, size_t *len);
int detector_load(detector_t **out, const void *buf, size_t len);
/* detector_save without the serving LSTM when an LSTM serves (detector_model not NULL): the
 * caller keeps that model once for every detector serving it (a device group's members; its
 * model_checkpoint_save bytes) and gives it to detector_load_shared, which shares it (model_share:
 * borrowed, not copied) with the loaded detector; it also loads detector_save's bytes (lstm then
 * unused). ERR_CORRUPT when the bytes need an LSTM and lstm is NULL, of another shape, or (saved
 * in format 7 or later) not the model that served (model_fingerprint). */
size_t detector_save_shared_size(const detector_t *d);
int detector_save_shared(const detector_t *d, void *buf, size_t cap, size_t *len);
int detector_load_shared(detector_t **out, const void *buf, size_t len, const model_t *lstm);

/* Read access for status and rollback. */
enum detector_state detector_get_state(const detector_t *d);
int detector_channels(const detector_t *d);
/* The LSTM size d was made with (its config's n_hidden, vigild's model.hidden then, and
 * n_layers, fixed at 1 by detector_config_default: no setting of vigild's changes it): the size
 * of every LSTM it takes (detector_set_model, a training's or a group's). */
void detector_model_size(const detector_t *d, int *hidden, int *layers);
/* 1 when channel c is an input (its config's input[c]: never scored), else 0 (also for a c out
 * of range). */
int detector_is_input(const detector_t *d, int c);
/* Readings consumed since create (a training needs at least warmup of them). */
uint64_t detector_seen(const detector_t *d);
/* 1 while d holds an episode (accept_grow set, an anomaly not accepted): its schedule's
 * trainings are put off until it is accepted or ends, and a group's training leaves it out
 * (daemon/pipeline_train.c), so the fault is not learnt. */
int detector_holding(const detector_t *d);
/* A training d's schedule asked for was not run because d held an episode when the caller came
 * to begin it (a request queued before the episode opened, begun after): asks for it again at
 * the first reading after the episode is accepted or ends (while d holds, step_end asks for
 * nothing), as for a training that comes due during the episode. Not held, the next reading
 * asks. Changes only when the next training is due (saved state, no format change). Owner's
 * thread (under the caller's lock); no allocation. Returns 0, or ERR_INVAL (d NULL). */
int detector_train_put_off(detector_t *d);
/* The serving LSTM: borrowed, valid until the next detector_job_apply, detector_set_model or
 * detector_destroy; NULL when the serving predictor is not an LSTM (linear or persistence). */
const model_t *detector_model(const detector_t *d);

/* An operator accepts the open anomaly episode: the device's level is its new normal. Ends the
 * episode on the spot (state normal; the caller records why: no result is made) and asks for a
 * training (the next reading's want_train), as an accepted regime does. Until that training
 * applies, the level does not reopen an episode: the short window's readings count as a burst
 * the device has shown (with burst_memory), and the operating point, the step test and the
 * second opinions judge levels since the acceptance, as after a training. Everything it
 * changes is saved state. A trip's one reading (trip_level) only ends, nothing learnt. Owner
 * thread; no allocation. Returns ERR_RANGE (no episode open: nothing changes), ERR_INVAL. */
int detector_accept(detector_t *d);

/* Ends the open anomaly episode on the spot without learning anything from it (planned
 * maintenance: the episode is the crew's work, not the device's): state normal, as an episode
 * that clears; no training is asked for, and the level that held it is judged as before, so a
 * fault still there when readings are scored again opens a new episode (a trip's reading too).
 * Saved state only. Owner thread; no allocation. Returns ERR_RANGE (no episode open: nothing
 * changes), ERR_INVAL. */
int detector_end_episode(detector_t *d);

/* Moves every reading time the detector keeps by by_ms (the newest reading's, the training
 * schedule's retrain_seconds counts from, onset_rhythm's kept onsets): the device's clock
 * stepped and its readings go on from a new timeline, so the schedules kept in time go on
 * across the step as if it had not happened (the caller estimates it). Unknown times
 * (DETECTOR_NO_TIME) stay unknown. Saved state only (no format change). Owner thread; no
 * allocation. Returns 0 or ERR_INVAL. */
int detector_shift_time(detector_t *d, int64_t by_ms);

/* The operator's settings that a detector restored from a save takes from the running
 * configuration (cfg) rather than keeping the ones it was saved with: retrain_every,
 * retrain_seconds, model_kind, lstm_min_rows, serving_f16 and trip_level (vigild.conf's model.*
 * keys; a detector saved before one existed so takes the running value too). All but
 * trip_level shape trainings only and apply from the next training on (a retraining already due
 * stays due); trip_level applies from the next reading; the scores and the state machine do
 * not change.
 * Settings sized into the saved arrays (history, train.window, err_window, ...) and the model's
 * shape (n_hidden, n_layers) stay as saved. Returns ERR_INVAL, changing nothing, when the
 * settings are out of range. */
int detector_apply_settings(detector_t *d, const struct detector_config *cfg);

/* Makes m serve (a rollback or a PUT of weights), shared with the caller (model_share: not
 * copied, read-only from now on; the caller still releases its own handle). m serves in its own
 * precision whatever serving_f16 says: a PUT's weights as given, a rolled-back version as it
 * served (its checkpoint keeps float16 or float32). The carried states
 * are rebuilt from the last readings it keeps. The error scales stay (1 before any training) until
 * the next training recalibrates them, and the inputs are not clamped (m's training range is
 * unknown). A channel predicted by a seasonal profile (season_bins) is predicted by m from now
 * until a training chooses a profile again. Returns ERR_INVAL when m's shape does not fit. */
int detector_set_model(detector_t *d, const model_t *m, uint32_t version);
/* Makes the serving predictor predict every channel that moves, clearing persistence's
 * per-channel choice (a channel flat in training, or one where persistence validated better,
 * predicted by "same as the last reading") except on a channel it predicts that has not moved
 * over the readings the detector keeps (2 x train.window: flat, its error scale at the floor,
 * where any model's error would be an alarm); the carried state is rebuilt. For a PUT of
 * weights: the operator's module then predicts those channels until a training decides the
 * choice again against it. The error scales stay. Owner thread; no allocation. */
void detector_predict_all(detector_t *d);
/* Which predictor gives each channel's prediction now: persist[c] 1 where persistence does
 * (its per-channel choice, or persistence serving), season[c] 1 where a seasonal profile does
 * (season_bins; it overrides persist). Both arrays hold detector_channels(d) entries, the
 * caller's. Owner thread (or under the lock that serialises the detector's steps). */
void detector_predictors(const detector_t *d, uint8_t *persist, uint8_t *season);
/* The detector's next version (its next training's number) after version at least: a device
 * whose detector was lost or made again (a new channel set) keeps its stored versions, and a
 * new one must not take a number one of them holds. */
void detector_number_after(detector_t *d, uint32_t version);
/* The number the detector's next training takes: above every version it has installed, and
 * every one a training applied to it recorded, kept or swapped (detector_job_apply moves it
 * past the job's number). Owner thread. */
uint32_t detector_next_version(const detector_t *d);

/* The serving predictor's parameters when it is not an LSTM (the linear baseline's
 * coefficients, or persistence, which has none), so that a model version served by one can be
 * served again (a rollback; model/detector_pred.c has the layout): magic DETECTOR_PRED_MAGIC,
 * a format version, the kind, the channels, the coefficients, CRC-32. detector_pred_size:
 * the bytes detector_pred_save writes, 0 when an LSTM serves (its parameters are its
 * checkpoint, model_checkpoint_save). detector_pred_save returns ERR_INVAL (an LSTM serves) or
 * ERR_RANGE (cap too small). Owner thread; buf is the caller's. */
#define DETECTOR_PRED_MAGIC "VGSP"
size_t detector_pred_size(const detector_t *d);
int detector_pred_save(const detector_t *d, void *buf, size_t cap, size_t *len);
/* Checks detector_pred_save's bytes (borrowed) and tells their kind and channel count. Returns
 * ERR_CORRUPT for a wrong magic or CRC, a wrong length (truncated), an unknown kind or channel
 * count or a value not finite; ERR_INVAL for a format version this vigild does not know. Any
 * thread. */
int detector_pred_check(const void *buf, size_t len, enum detector_kind *kind, int *channels);
/* Makes the predictor of detector_pred_save's bytes (borrowed) serve as version `version`, as
 * detector_set_model does an LSTM (a rollback), with the same calibration: the error scales
 * stay until the next training recalibrates them, persistence's per-channel flags stay, the
 * seasonal choice is cleared, the carried state is rebuilt. The LSTM the detector keeps (a
 * training's base) stays. *kind (when not NULL) gets the kind now serving. Returns
 * detector_pred_check's errors, or ERR_INVAL when the channel count is not d's; d is unchanged
 * on failure. Owner thread; no allocation. */
int detector_set_pred(detector_t *d, const void *buf, size_t len, uint32_t version,
                      enum detector_kind *kind);

#endif

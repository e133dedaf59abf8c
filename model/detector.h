/* model/detector.h: the per-device anomaly detector: model step, scoring, threshold, when to
 * retrain and whether to swap. Pure computation like the rest of model/ (no I/O, clocks,
 * threads, logging or globals), so the daemon (live) and vigil-replay (offline) run exactly
 * the same code and benchmark scores are the daemon's scores.
 *
 * A detector follows one device (or one series) with C channels, all monitored. It keeps a
 * bounded ring of recent raw readings (the training window), the serving predictor (an LSTM,
 * or the linear state-space baseline when that validates better, or persistence before the
 * first training), the carried LSTM state, the recent distribution of prediction errors, and
 * the threshold state machine (normal / warning / anomaly, with hysteresis).
 *
 * Lifecycle: detector_step() per reading, in time order. When it is time to (re)train, the step
 * result says so (want_train); the caller then makes a job (detector_job_create: copies what
 * training needs, so it can run on any thread while the detector keeps stepping), runs it
 * (detector_job_run: the expensive part, any thread), and hands it back (detector_job_apply:
 * validates the candidate against the serving model on the most recent data and swaps only if
 * it is better; records the decision). vigil-replay does the three calls inline; the daemon
 * runs detector_job_run on its training pool.
 *
 * Threading: a detector is used by one thread at a time (its owner); jobs are independent
 * objects. Returns 0 or a negative ERR_* code (common/err.h). */
#ifndef VIGIL_DETECTOR_H
#define VIGIL_DETECTOR_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>

#define DETECTOR_MAX_CHANNELS 64

enum detector_state { DET_LEARNING = 0, DET_NORMAL, DET_WARNING, DET_ANOMALY };
enum detector_kind { DET_KIND_PERSISTENCE = 0, DET_KIND_LINEAR, DET_KIND_LSTM };

/* Settings; plain value type. Start from detector_config_default(): the daemon's defaults are
 * the benchmark's defaults. */
struct detector_config {
    int warmup;        /* readings before the first training (state "learning" until then) */
    int history;       /* readings kept in the ring for training (>= warmup) */
    int retrain_every; /* readings between retrainings once serving (0: never) */
    int second_at;     /* reading count at which a second training follows the first one
                          (0: none), since the first model saw only the warm-up */
    int n_hidden;      /* LSTM hidden size */
    int n_layers;      /* LSTM layers */
    struct model_train_config train; /* window, epochs, lr, ... (val_fraction: early stopping) */
    int val_rows;    /* the most recent readings held out to choose the serving predictor
                        and to calibrate the error scales (at most a third of the data) */
    int recalibrate; /* 1: a training that keeps the serving predictor still recalibrates its
                        error scales and reseeds the long window; 0: only a swap does */
    int calib_all;   /* 1: also calibrate the error scales and seed the long window on every
                        row the job holds (after one window), not only on val_rows */
    /* Scoring: each channel's one-step error is divided by that channel's error scale (the RMS
     * error of the serving predictor on val_rows, fixed until the next training, floored so a
     * flat channel cannot divide by zero); the reading's raw score is log(1 + mean over
     * channels of z^2). The anomaly likelihood (Numenta) compares the average raw score of the
     * last err_short readings with the distribution of raw scores over the last err_window
     * readings, and the score is its log-scaled tail probability, in [0, 1]. */
    int agg_top;          /* the raw score averages the agg_top largest channel terms (0: all) */
    int err_window;       /* readings of raw scores in the long (reference) distribution */
    int err_short;        /* short averaging window of the raw score */
    float flat_rel;       /* error-scale floor relative to the channel's spread in training */
    int channel_fallback; /* 1: a channel where persistence forecasts `horizon` steps ahead
                             better than the model is predicted by persistence (flat channels
                             always are) */
    int horizon;          /* forecast horizon of that comparison: drifting channels favour
                             persistence, mean-reverting ones the model */
    int drift_all;        /* 1: make that comparison on every row the job holds (after one
                             window), 0: on the val_rows tail only */
    float level_weight;   /* weight of the level term of channels not predicted by persistence:
                             (x - training mean)^2 / training variance (0: off) */
    float lstm_margin;    /* the LSTM serves only if its validation cost is below (1 - this)
                             times the linear baseline's and persistence's */
    float clamp_margin;   /* the LSTM's inputs are clamped to the range its training data
                             spanned, widened by this fraction of it (< 0: no clamping), so an
                             excursion cannot drive it where it never learned anything */
    int freeze;           /* 1: raw scores of readings in state anomaly stay out of the long
                             window, so a lasting fault keeps its alarm (bounded by accept_after) */
    int accept_after;     /* readings in state anomaly after which the regime is accepted:
                             scores enter the long window again and a retraining is asked for */
    /* Threshold state machine: score >= alarm_level enters anomaly, >= warn_level warning;
     * the state returns to normal after clear_count consecutive readings below clear_level. */
    float warn_level;  /* score at or above: warning */
    float alarm_level; /* score at or above: anomaly */
    float clear_level; /* score below this for clear_count readings ends a warning/anomaly */
    int clear_count;
    int hold_median;  /* 1: inside an anomaly, judge on the median raw score of the episode's
                         readings (at most err_short) rather than the mean: spikes make short
                         episodes, lasting faults long ones */
    int refractory;   /* an alarm-level reading within this many readings of the previous one
                         is reported at repeat_cap (1: Numenta's filter, the previous only) */
    float repeat_cap; /* reported score of an alarm-level reading right after another one
                         (Numenta's filter: the score marks onsets); 1 disables */
    uint64_t seed;
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

/* What one reading produced. */
struct detector_result {
    float score;     /* anomaly score in [0, 1] */
    float threshold; /* the level the score is compared with now (alarm_level or adapted) */
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
    float raw;        /* the reading's raw score log(1 + mean z^2), 0 while learning */
    float likelihood; /* the unfiltered likelihood the state machine follows (score is this,
                         capped at repeat_cap after an alarm-level reading) */
};

/* Consumes one reading x[n_channels] (raw units). present may be NULL (all present); a
 * missing channel (present[c] == 0) or non-finite value is carried forward from the last
 * reading. Fills res. No allocation. Returns 0 or ERR_INVAL (wrong shape). */
int detector_step(detector_t *d, const float *x, const uint8_t *present,
                  struct detector_result *res);

/* Forecasts k steps from the current state without disturbing it: mean[k, C] raw and band
 * [k, C], the half-width of a ~95% interval from the recent residuals. Returns ERR_INVAL for
 * k < 1, ERR_RANGE before the first training (no model yet). Allocates its scratch. */
int detector_forecast(const detector_t *d, float *mean, float *band, int k);

/* Metrics of one training, for the model history. */
struct detector_train_info {
    uint32_t version;        /* version the candidate got (whether or not it was swapped in) */
    int swapped;             /* 1 when it now serves */
    enum detector_kind kind; /* what serves after the decision */
    double val_mse_lstm, val_mse_linear, val_mse_persistence, val_mse_serving;
    int epochs;
    float train_loss[64], val_loss[64];     /* training curve, first min(epochs, 64) entries */
    size_t rows;                            /* readings trained on */
    uint8_t persist[DETECTOR_MAX_CHANNELS]; /* 1: channel predicted by persistence (flat in
                                               training, or persistence validated better) */
};

/* Copies what a training needs (recent history, settings, a copy of the serving model).
 * Returns ERR_RANGE when there is not enough history, ERR_NOMEM. Caller owns *out; free with
 * detector_job_destroy (after apply, or to abandon it). */
int detector_job_create(detector_job_t **out, const detector_t *d);

/* Trains the candidate LSTM and the linear baseline. Any thread; touches only the job. */
int detector_job_run(detector_job_t *job);

/* Validates the job's candidates against the serving predictor on the detector's most recent
 * readings and swaps in the best; fills info. Owner thread. The job may then be destroyed. */
int detector_job_apply(detector_t *d, detector_job_t *job, struct detector_train_info *info);

void detector_job_destroy(detector_job_t *job);

/* Serialises the whole detector (models, error statistics, threshold state, carried state and
 * the history ring) for a restart: detector_save_size bytes. detector_load rejects corrupt or
 * truncated input with ERR_CORRUPT. */
size_t detector_save_size(const detector_t *d);
int detector_save(const detector_t *d, void *buf, size_t cap, size_t *len);
int detector_load(detector_t **out, const void *buf, size_t len);

/* Read access for status and rollback. */
enum detector_state detector_get_state(const detector_t *d);
int detector_channels(const detector_t *d);
const model_t *detector_model(const detector_t *d); /* borrowed; NULL when none */

/* Replaces the serving LSTM with a copy of m (rollback or a PUT of weights); the carried state
 * is rebuilt from the history ring. Returns ERR_INVAL when m's shape does not fit, ERR_NOMEM. */
int detector_set_model(detector_t *d, const model_t *m, uint32_t version);

#endif

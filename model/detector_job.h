/* model/detector_job.h: a detector's training job (detector_job_t): the metrics a training
 * reports (struct detector_train_info) and the calls that make, feed, run, share and apply a job
 * (detector.h's lifecycle: detector_job_create .. detector_job_apply). Part of the detector's
 * public interface; kept apart from detector.h only to keep that header a readable size, and
 * included by it after the types this file uses (detector_t, detector_job_t, enum detector_kind,
 * DETECTOR_MAX_CHANNELS). Include detector.h, not this file.
 *
 * Threading: as detector.h says per call (set_data, run, share and share_batch any thread;
 * apply the detector's owner thread). */
#ifndef VIGIL_DETECTOR_JOB_H
#define VIGIL_DETECTOR_JOB_H

#include <stddef.h>
#include <stdint.h>

/* Metrics of one training, for the model history. */
struct detector_train_info {
    uint32_t version;        /* version the candidate got (whether or not it was swapped in) */
    int swapped;             /* 1 when it now serves */
    enum detector_kind kind; /* what serves after the decision */
    /* Validation costs on the held-out readings: the mean over channels of MSE / variance,
     * with the per-channel persistence fallback applied; NaN when that predictor was not
     * available (no LSTM from too little data, nothing serving before the first training). */
    double val_mse_lstm, val_mse_linear, val_mse_persistence, val_mse_serving;
    /* The LSTM's and the linear baseline's costs predicting every channel (persistence only on
     * channels flat in training): what they validate at on their own; NaN when not trained. */
    double val_mse_lstm_alone, val_mse_linear_alone;
    int epochs;
    float train_loss[64], val_loss[64];     /* training curve, first min(epochs, 64) entries */
    size_t rows;                            /* readings trained on */
    uint8_t persist[DETECTOR_MAX_CHANNELS]; /* 1: channel predicted by persistence (flat in
                                               training, or persistence validated better) */
    /* season_bins > 0: what the seasonal candidate decided (the period P in readings, 0 where
     * no strong period was found; season 1 where the profile predicts the channel, which then
     * overrides persist) */
    int season_period[DETECTOR_MAX_CHANNELS];
    uint8_t season[DETECTOR_MAX_CHANNELS];
    int put; /* 1: weights an operator PUT (no training: the figures above are not measured) */
};

/* Copies what a training needs from the detector (settings, a copy of the serving model); the
 * data comes with detector_job_set_data. Returns ERR_RANGE before warmup readings were
 * consumed, ERR_NOMEM. Caller owns *out; free with detector_job_destroy (after apply, or to
 * abandon it). */
int detector_job_create(detector_job_t **out, const detector_t *d);

/* Gives the job its training window: rows [n, C] raw readings, oldest first, the newest being
 * the newest the detector had consumed at detector_job_create (or one of the last few before
 * it); missing values already carried forward (a non-finite value is replaced by the previous
 * row's, or 0). Only the newest cfg.history rows are used. Copies them (rows stays the
 * caller's). Any thread. Returns ERR_RANGE (fewer than warmup rows), ERR_NOMEM, ERR_INVAL. */
int detector_job_set_data(detector_job_t *job, const float *rows, int n);

/* detector_job_set_data for a group job: rows are nseg members' windows one after another,
 * lens[k] rows each (rows [sum of lens, C]), up to cfg.history * DETECTOR_MAX_BATCH rows in all
 * (the newest are kept: the oldest windows are dropped first). Each window is a series of its
 * own: nothing is trained, validated or predicted across two of them. The validation tail is
 * the last window's newest rows, so that window must hold warmup rows. Returns as
 * detector_job_set_data (ERR_RANGE also for a last window shorter than warmup; ERR_INVAL for
 * a negative length). */
int detector_job_set_pooled(detector_job_t *job, const float *rows, const int *lens, int nseg);

/* Trains an LSTM (a fresh one; with warm_epochs > 0 and an LSTM serving, one that starts from
 * the serving weights and runs at most warm_epochs epochs; none with model_kind
 * DET_MODEL_LINEAR) and fits the linear baseline on all but
 * the newest val_rows readings of the window (of every window, for a pooled job), then validates
 * them, persistence and the serving predictor (copied at create) on those readings (the last
 * window's) and decides what serves as model_kind says (the decision is applied by _apply). Any
 * thread; touches only the job, so the result is the same on any thread. Returns ERR_INVAL (no data
 * set), ERR_NOMEM, ERR_CLOSED (cancelled: detector_job_set_cancel) (too little data for an LSTM is
 * not an error: the LSTM just does not compete). */
int detector_job_run(detector_job_t *job);

/* The flag detector_job_run reads between the LSTM training's minibatches (model_train_cancellable;
 * NULL, the default: never read) and every 256 rows of the validation and calibration runs that
 * follow: once it is nonzero the run stops and returns ERR_CLOSED, the
 * job not run (apply refuses it; destroy it). Borrowed; must outlive the run. Any thread, before
 * the run. */
void detector_job_set_cancel(detector_job_t *job, const atomic_int *cancel);

/* Numbers the job after version at least: when the number it records and installs under
 * (detector_job_create's next number, or what detector_job_share chose) is not above version,
 * it becomes version + 1 (unchanged when version is UINT32_MAX). For the caller whose device
 * took the job's number for another model while the job ran (a PUT of weights): the job's
 * version then shares no number with it. Call after run or share, before detector_job_apply,
 * on the owner thread; no allocation. */
void detector_job_number_after(detector_job_t *job, uint32_t version);

/* Applies the job's decision: the best candidate replaces the serving predictor only if it
 * validated better (the first training always installs one); either way the error scales and
 * the long window are recalibrated on the held-out readings and the next training is
 * scheduled. A stale job (the serving version changed since create: another job or
 * detector_set_model) changes nothing but the version counter (info->swapped 0). Fills info
 * (may be NULL). Owner thread. Returns ERR_INVAL if the job has not run or does not fit d,
 * ERR_NOMEM if the chosen seasonal profiles cannot be allocated (d then unchanged). The job may
 * then be destroyed. */
int detector_job_apply(detector_t *d, detector_job_t *job, struct detector_train_info *info);

/* Group training: instead of detector_job_run, job (a member's, with its own window set) takes
 * the decision of group_job (run on the members' pooled windows): whatever serves the group
 * after that decision (its candidate if swapped in, else what served it) is what this member
 * will serve, with the group's version, and only the error scales, level terms and long
 * window are calibrated on the member's own rows. A member not yet serving the group's
 * version installs it. A decision that installs nothing is recorded (info->version) under
 * the group candidate's number, as a single device's would be, never again under the serving
 * version. Then detector_job_apply as usual. A member of another size than the LSTM that serves
 * the group after its decision (a detector keeps the hidden size and number of layers it was
 * made with) cannot serve it: its job is run on its own rows instead (detector_job_run), so no
 * detector ever holds an LSTM of another size. Any thread; group_job is only read.
 * Returns ERR_INVAL (no data, already run, group job not run, other channel count),
 * ERR_NOMEM. */
int detector_job_share(detector_job_t *job, const detector_job_t *group_job);
/* Whether member job j is of another size than the LSTM that serves group job g after its
 * decision (detector_job_share then runs j on its own rows): 1, with own = j's {n_hidden,
 * n_layers} and grp = the group LSTM's, or 0 (the same size, no LSTM serves, g not run). For
 * the caller's log line. Any thread; only reads. */
int detector_job_other_size(const detector_job_t *j, const detector_job_t *g, int own[2],
                            int grp[2]);
/* detector_job_share for n members' jobs at once: the same decision taken, and the shared
 * LSTM's errors on every member's rows computed with the members in step (one batched model
 * step per row for all of them). Results equal detector_job_share's up to the batched sgemm's
 * rounding. Any thread. Returns ERR_INVAL (a job as for detector_job_share, or n < 1),
 * ERR_NOMEM, ERR_CLOSED (a member's job cancelled: detector_job_set_cancel, read in its
 * calibration's runs); on failure the jobs are not usable (destroy them). */
int detector_job_share_batch(detector_job_t *const *jobs, int n, const detector_job_t *group_job);

void detector_job_destroy(detector_job_t *job);

#endif

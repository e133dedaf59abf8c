/* model/detector_int.h: the detector and training-job structs and the helpers shared by the
 * detector_*.c files.
 * Not part of the public interface (detector.h is).
 *
 * Invariants of struct detector:
 * - ctx is a ring of ctx_cap = 2 * train.window rows of C raw readings (carried forward,
 *   always finite): the newest consumed, enough to rebuild the two staggered LSTM states
 *   (detector__rebuild_state). The newest row is at (ctx_head - 1) mod ctx_cap and ctx_len
 *   rows are valid. The training window is not kept here: the caller gives it to each job.
 * - pred holds the serving predictor's prediction of the next reading once have_pred is set.
 * - The serving predictor is `kind`: persistence (no model), the linear baseline (lin_ab,
 *   lin_b) or the LSTM (lstm with its carried state). Channels with persist[c] set are
 *   predicted by persistence whatever the kind (flat in training, or persistence validated
 *   better for that channel).
 * - err_scale[c] > 0 once serving; ring holds ring_len raw scores (the long window) with their
 *   running sums; shortbuf holds the last short_len raw scores.
 * - Every array is allocated at create in one block, except s_prof (the seasonal profiles of
 *   the channels that use one, replaced when a training's result is applied); detector_step
 *   never allocates.
 *
 * Threading: as detector.h (one owner thread per detector; jobs are independent). */
#ifndef VIGIL_DETECTOR_INT_H
#define VIGIL_DETECTOR_INT_H

#include "detector.h"

/* Upper bound of err_short (the median of the short window sorts it on the stack). */
#define DETECTOR_MAX_SHORT 1024
/* burst_memory: the bursts a detector remembers (detector_burst.c). */
#define DETECTOR_MAX_BURSTS 16
/* Upper bound of shift_len (its window is read into stack arrays of 4 of it). */
#define DETECTOR_MAX_SHIFT 64
/* Upper bound of season_bins. */
#define DETECTOR_MAX_SEASON_BINS 1024
/* onset_rhythm: the onsets a detector remembers (detector_onset.c, keeps_schedule). */
#define DETECTOR_RHYTHM_N 8

/* season_opinion: one channel's found-but-not-chosen seasonal profile (detector_opinion.c). */
struct detector__opinion {
    int ch, period;    /* the channel, the profile's period in readings */
    float mean, sd;    /* the deviation from the profile over the training rows (raw units) */
    double ew;         /* the deviation in sd, as an err_short exponential mean */
    double sum, sumsq; /* ew and its square summed over the o_n readings since the training */
    /* season_accum (detector_opinion.c; zero while it is off): the deviation in sd as an
     * exponential mean over detector__accum_len readings (aew), its spread over the training
     * and held-out rows (asd; 0: not judged) from n0 training-row values, and aew and its
     * square summed over the o_an
     * readings since the training. own 1: the channel's profile is chosen (it predicts the
     * channel), so only the accumulated departure judges it. */
    float asd, n0;
    int own;
    double aew, asum, asumsq;
};

struct detector {
    struct detector_config cfg;
    int C;

    /* context ring and carry-forward */
    float *ctx; /* [ctx_cap, C] */
    int ctx_cap, ctx_head, ctx_len;
    float *last; /* [C] last (carried-forward) reading */
    int have_last;
    uint64_t n_seen;  /* readings consumed */
    uint64_t due_at;  /* n_seen at which want_train is next raised (UINT64_MAX: never) */
    int64_t last_ts;  /* timestamp of the newest reading consumed (DETECTOR_NO_TIME: none) */
    int64_t train_ts; /* readings' time retrain_seconds counts from (DETECTOR_NO_TIME: unset) */

    /* serving predictor */
    enum detector_kind kind;
    uint32_t version, next_version;
    model_t *lstm;   /* serving LSTM or NULL */
    float *lin_ab;   /* [C, C] linear baseline coefficients (kind LINEAR) */
    float *lin_b;    /* [C] */
    float *state;    /* [2, state_len] the two staggered LSTM states */
    int lstm_window; /* the window the serving LSTM was trained with: its serving context */
    float *work;     /* [work_len] step scratch */
    size_t state_len, work_len;
    size_t work_row;  /* model_work_len's floats per further batch row (batched step) */
    uint8_t *persist; /* [C] */
    float *lo, *hi;   /* [C] each: the serving LSTM's input range (clamp_margin) */
    float *pred;      /* [C] prediction of the next reading */
    int have_pred;

    /* scoring */
    float *err_scale;      /* [C] */
    float *resid_rms;      /* [C] validation RMS error, for the forecast band */
    float *lmean, *lscale; /* [C] each: level of the training data; lscale 0: no level term */
    float *rinv;           /* [C, C] err_corr: inverse correlation of the calibration errors
                              (identity until the first calibration) */
    float *ring;           /* [err_window] raw scores */
    int ring_head, ring_len;
    double ring_sum, ring_sumsq;
    int ring_since_resum;
    float *shortbuf;     /* [err_short] */
    float *prev_contrib; /* [C] the previous scored reading's contrib */
    float prev_raw;      /* and its raw score */
    int short_head, short_len;
    double short_sum;

    /* op_point: the operating-point likelihood (detector_likelihood.c, op_likelihood). op_ew[c] is
     * the exponential short mean of channel c's level in its training spreads,
     * (x_c - lmean_c) / lscale_c (channels with lscale > 0 only); op_sum and op_sumsq are the
     * sums of op_ew and its square over the op_n readings since the last training's reseed
     * (the reference; frozen in an episode, as the long window is). op_n <= 0: none yet (the
     * next reading starts op_ew). Inline, not in the block: 1.5 KB a detector (saved only when
     * op_point is set and C >= 2). */
    double op_n;
    double op_ew[DETECTOR_MAX_CHANNELS], op_sum[DETECTOR_MAX_CHANNELS],
        op_sumsq[DETECTOR_MAX_CHANNELS];

    /* shift_len > 0 (detector_shift.c): the step test's reference. sh_n counts the readings
     * since the last training's reseed whose step estimate entered it (0: none yet); sh_sum and
     * sh_sumsq sum each channel's step estimate and its square over them, sh_lsum its level,
     * in training spreads (frozen in an episode, as the long window is). sh_ch1 is 1 + the
     * channel whose step holds the current episode (0: none), sh_post its level after the
     * step (the mean of the step's readings). Saved only when shift_len is set and C >= 2
     * (8 + 24 C + 12 bytes). shift_plain: the same sums of the plain difference of the two
     * halves' means (sh_psum, sh_psumsq), over the same sh_n readings (saved only with
     * shift_plain set too: 16 C bytes). The arrays are [C] each, in the block (all NULL when
     * shift_len is 0). */
    double sh_n;
    double *sh_sum, *sh_sumsq, *sh_lsum;
    double sh_post;
    int sh_ch1;
    double *sh_psum, *sh_psumsq;
    /* The sums of the step test's two line fits, kept up to date as the context ring takes
     * each reading so that a reading reads three ring rows, not 2 shift_len (session 10;
     * detector_shift.c, detector__shift_push). Over the ring's newest 2 q - 1 rows (q the
     * test's half window): sw_sum[0][c] and sw_suv[0][c] the sum of channel c's readings and
     * of u times them over the older q rows (P), u their index minus its middle (q - 1) / 2;
     * sw_sum[1], sw_suv[1] the same over the newer q - 1 rows (Q without the reading being
     * scored), u counted from Q's start. Derived state, not saved: valid only while sw_ok,
     * when they are the exact (unrounded) sums of the rows they cover; sw_ok 0 (create, load,
     * a training's reseed, an update that would have rounded) and the next test rebuilds them
     * from the ring. [C] each, in the block (NULL when shift_len is 0). */
    double *sw_sum[2], *sw_suv[2];
    int sw_ok;

    /* season_bins > 0 (else all NULL): the seasonal predictor of each channel (detector.c,
     * detector__season_pred). season[c] 1: channel c is predicted by its profile, whatever
     * persist[c] says (persist keeps the model's own flags); s_period[c] its period P in
     * readings (phase: reading index mod P); s_a[c], s_phi[c] the AR(1) correction of the
     * deviation from the profile. These are in the block. The profiles cost season_bins floats
     * a channel, so only the channels with season[c] = 1 have one: s_prof is its own
     * allocation of n_prof x season_bins floats, n_prof the number of channels with season[c]
     * set (NULL when none), holding their profiles in channel order; the k-th seasonal
     * channel's bin b is s_prof[k * season_bins + b] (min(P, season_bins) bins used, zero
     * mean). A training's result replaces it whole (detector_job_apply); destroy frees it. */
    uint8_t *season;
    int *s_period;
    float *s_a, *s_phi;
    float *s_prof;

    /* season_opinion (detector_opinion.c): the profiles a training found but did not choose,
     * kept as a second opinion. o_rec is one allocation of n_op records (channel order)
     * followed by their profiles (o_prof: n_op x season_bins floats, the k-th record's bin b at
     * o_prof[k * season_bins + b]); NULL when no channel has one. A training's result replaces
     * it whole (detector_job_apply); destroy frees it. o_n counts the readings since the last
     * training's reseed whose short deviations entered the records' sums (-1: none yet, the
     * next reading starts the short means). */
    struct detector__opinion *o_rec;
    float *o_prof;
    int n_op;
    double o_n;

    /* burst_memory (detector_burst.c): the bursts since the last training (at most
     * DETECTOR_MAX_BURSTS, the newest at burst_head - 1; burst_n valid): their peak short mean
     * and the n_seen at which their episode ended. ep_peak is the open episode's peak so far;
     * burst_pend 1: an episode short enough to be a burst ended at pend_end with peak
     * pend_peak, and is recorded once err_short readings have passed without an episode.
     * Inline: 224 bytes a detector (saved only when burst_memory is set). */
    int burst_n, burst_head, burst_pend;
    float ep_peak, pend_peak;
    uint64_t pend_end;
    float burst_peak[DETECTOR_MAX_BURSTS];
    uint64_t burst_end[DETECTOR_MAX_BURSTS];

    /* onset_record (detector_onset.c, onset_rank): the largest raw score of the readings that
     * left the short window since the last training's reseed (the reseed's calibration rows
     * included), and how many did (rec_n < err_short: too few to say what is a record). */
    float rec_max;
    int rec_n;

    /* warn_run (detector_score.c, warn_run_open): the current run of readings whose opening
     * likelihood was at or above warn_level outside an episode, and the sum of those
     * likelihoods; warn_region: how many of those readings were a coupled move beyond the
     * serving model's region (detector_score.c, beyond_region). */
    int run_n;
    double run_sum;
    int run_out;

    /* threshold state machine */
    enum detector_state det_state;
    int below;      /* consecutive readings below clear_level; in state normal, readings since an
                       anomaly ended (1..err_short + 1, 0: none recently) */
    int in_anomaly; /* consecutive readings in state anomaly */
    int since_red;  /* readings since the likelihood was last >= alarm_level (0: the previous) */
    int dred;       /* the previous reading's decision likelihood was >= alarm_level */
    /* record_quiet: readings since the likelihood was last >= score_level, across trainings
     * (the reseed leaves it; 1 << 30: never since the detector was created). */
    int quiet_n;
    /* onset_rate: the earlier onsets, each weighed exp(-age / err_window), across trainings
     * (the reseed leaves it; 0: none). */
    double ons_rate;
    double ons_decay; /* exp(-1 / err_window), ons_rate's decay a reading (not saved: derived) */
    /* The open episode's regime was accepted (in_anomaly reached accept_after; a training's
     * reseed zeroes in_anomaly, not this): its readings enter the windows and hold no step
     * until it ends, "accepted". Saved from format 23 (detector_io.c, loaded by detector_load.c);
     * older saves derive it from in_anomaly. */
    int ep_accepted;
    /* accept_grow (detector_score.c, grow_note): the open episode's error in blocks: the
     * current block's readings (gr_n) and the sum and sum of squares of their errors (each
     * reading's root mean square error in the training's error scales), and the previous
     * block's (gr_pn 0: none yet). Started over on the episode's first reading and after a
     * training's reseed (in_anomaly 1). Saved only when accept_grow is set (format 43). */
    int gr_n, gr_pn;
    double gr_sum, gr_sq, gr_psum, gr_psq;

    /* settle_release (detector_shift.c, detector__shift_settle): sh_lead 1 while the armed
     * step hold was armed within shift_len readings of its episode's opening (the step set it
     * off) and sh_far the farthest level (from the channel's mean since the training) its
     * channel's newer half reached while held; st_ch1 is 1 + the channel of such a hold that
     * shift_release released (0: none), watched until it lands back near its level (then the
     * episode ends), st_post that step's level (sh_far at the release). Saved only when
     * settle_release and shift_len are set and C >= 2: 24 bytes. */
    int st_ch1, sh_lead;
    double st_post, sh_far;

    void *block;

    /* season_accum (detector_opinion.c): readings since the training's reseed (o_age, -1: none
     * yet) and those whose accumulated departures entered the records' sums (o_an). */
    double o_age, o_an;

    /* range_quiet (detector_onset.c, range_note): each channel's range of the readings that
     * left the short window since the detector began scoring, across trainings; vr_n of them
     * (0: no range yet). Saved only when range_quiet is set (format 28). */
    int vr_n;
    float vr_lo[DETECTOR_MAX_CHANNELS], vr_hi[DETECTOR_MAX_CHANNELS];

    /* opinion_open (detector_score.c, opinion_onset): the readings in a row whose second
     * opinion was at alarm_level (0 after a training's reseed). Saved only when opinion_open
     * is set (format 35): a run that a restart started over opened its episode later, or not
     * at all (NAB's art_daily_jumpsup among 12 files, docs/reliability.md). */
    int opin_run;

    /* mean_far (detector_onset.c, mean_excess): 1 when the previous reading's short mean was
     * beyond its channel's range by the share, so an excursion is one onset, on the reading
     * that leaves. Saved only when mean_far is set (format 36). */
    int mf_on;

    /* hold_echo (detector_release.c, detector__echo_note, _freeze, _back): eb_med, eb_sd the level
     * before the open (or last) episode and its spread, frozen at its opening (eb_sd 0: none);
     * ec_prev the previous reading's error on channel 0, ec_run the readings in a row whose
     * error had the sign of the one before; eb_gap the readings in a row before this one not in
     * an episode. Saved only when hold_echo is set (format 44). */
    float eb_med, eb_sd, ec_prev;
    int ec_run, eb_gap;

    /* hold_decay (detector_release.c, detector__decay_note, _back): dk_peak the largest distance
     * |x - eb_med| of the open (or last) episode's values, the reading before its opening
     * included (NaN after a training's reseed inside the episode: the rule ends nothing more
     * of it, detector_job_apply); dk_left the readings after an episode it ended whose short
     * means the long window does not learn and in which nothing reopens on the decay (a
     * training's reseed zeroes it). Saved only when hold_decay is set (format 46; format 46
     * also saved the readings since the peak, which nothing read: format 47 drops them). */
    float dk_peak;
    int dk_left;

    /* trip_level (detector_score.c): 1 when the last reading was reported in state anomaly by
     * the trip alone (the state machine's state, det_state, not anomaly), so the next reading
     * ends that one-reading episode with a reason. Saved (format 48). */
    int tripped;
    /* 1 while the state machine's open episode began on the reading after a trip, which it
     * continues: the reported episode is then one reading longer than in_anomaly, and the
     * acceptance counts that reading too (detector__ep_len), so accept_after is reached on
     * the reported episode's accept_after-th reading with the trip as without it. 0 after a
     * training's reseed (which zeroes in_anomaly) and at an episode's end. Saved (format 48). */
    int ep_trip;

    /* onset_rhythm (detector_onset.c, rhythm_note): the reading counts (n_seen) of the last
     * rh_n onsets (at most DETECTOR_RHYTHM_N), oldest first, across trainings (the reseed
     * leaves them). Saved only when onset_rhythm is set (format 33). rhythm_time: rh_ts their
     * timestamps (DETECTOR_NO_TIME: taken without one, or loaded from format 36 or before),
     * saved when both are set (format 37); rh_now the current reading's timestamp while it is
     * scored (set by every step, never saved). */
    int rh_n;
    uint64_t rh_at[DETECTOR_RHYTHM_N];
    float rh_raw[DETECTOR_RHYTHM_N];
    int64_t rh_ts[DETECTOR_RHYTHM_N];
    int64_t rh_now;
};

/* detector.c */
/* The LSTM shape (and initial-weight seed) of a detector with this configuration and C
 * channels: a cold-start training creates its initial model from it (the detector keeps no
 * untrained template model, which would cost as much memory as the serving LSTM). */
void detector__model_config(struct model_config *mc, const struct detector_config *cfg, int C);

/* Re-runs the serving predictor over the rows of the context ring so the carried state and
 * pred match the current model (after a swap or a load). */
void detector__rebuild_state(detector_t *d);
/* After a predictor was installed as version `version` (detector_set_model, detector_set_pred;
 * d->kind already set): the version, the seasonal choice cleared, the error scales kept (1
 * where none yet), the input range unknown, learning ended, the carried state rebuilt. */
void detector__installed(detector_t *d, uint32_t version);

/* The model d serves from a training's candidate m (takes ownership of that handle): m's float16
 * form (model_compact) when d's config asks for it (serving_f16) and the model is d's own (own:
 * not a device group's shared model), m itself otherwise, or when compacting fails (float32
 * then serves). Never fails. Owner thread. */
model_t *detector__serving_model(const detector_t *d, model_t *m, int own);

/* in[C] = x clamped to [lo, hi] (lo NULL: copied). */
void detector__clamp(float *in, const float *x, const float *lo, const float *hi, int C);
/* Steps the two staggered LSTM states (states [2, len]) by x, the reading with index idx
 * (0-based count of readings consumed before it), and writes the prediction of the one with
 * the longer usable context into pred[O]. T is the training window. */
int detector__lstm_advance(const model_t *m, float *pred, float *states, size_t len, const float *x,
                           uint64_t idx, int T, float *work);
/* The state that made the last prediction, after consuming reading idx. */
const float *detector__lstm_active(const float *states, size_t len, uint64_t idx, int T);

/* The seasonal profile's value at reading index idx: prof holds min(period, bins) bins, each
 * over an equal share of the period's phases; the value is interpolated linearly between the
 * bins' centres (circularly), so with as many bins as phases it is the bin itself. */
float detector__season_at(const float *prof, int period, int bins, uint64_t idx);
/* The number of channels c < C with season[c] set: the profiles s_prof holds. */
size_t detector__season_count(const uint8_t *season, int C);
/* The seasonal prediction of reading idx + 1 from reading idx's value x. */
float detector__season_pred(const float *prof, int period, int bins, float a, float phi, float x,
                            uint64_t idx);

/* detector_score.c */
/* Scores one reading against d->pred, updates the windows and the state machine, fills res's
 * scoring fields. */
void detector__score(detector_t *d, const float *x, struct detector_result *res);
/* Input channels (cfg->input) take no share: contrib[C] is made to sum to 1 over the scored
 * channels (evenly when none has a share), the inputs' shares 0. No-op without inputs. */
void detector__inputs_unshare(const struct detector_config *cfg, float *contrib, int C);
/* The raw score of one reading x[C] from its per-channel errors e[C] and scales, plus the
 * level terms (channels with lscale > 0, weight w), over the top largest channel terms (0:
 * all; then rinv [C, C], if not NULL, couples the scaled errors as a Mahalanobis distance);
 * fills contrib[C] (may be NULL) with each channel's share of its own squared scaled error. */
float detector__raw_score(const float *e, const float *scale, const float *x, const float *lmean,
                          const float *lscale, float w, int top, const float *rinv, int C,
                          float *contrib);
/* Empties the long and short windows and seeds the long window with n raw scores. */
void detector__windows_seed(detector_t *d, const float *raw, int n);

/* detector_likelihood.c: the raw score's windows and the likelihoods read from them. */
/* Adds raw to the long window (the short averages; its running sums recomputed every
 * err_window pushes). */
void detector__ring_push(detector_t *d, float raw);
/* Adds raw to the short window; returns the window's mean. A score that leaves it raises
 * onset_record's reference (rec_max, rec_n). */
double detector__short_push(detector_t *d, float raw);
/* The largest raw score in the short window (0 when it is empty). */
double detector__short_max(const detector_t *d);
/* The short window's raw score i readings back (0: the newest). */
float detector__recent_raw(const detector_t *d, int i);
/* The median of the newest k (1..short_len) raw scores. */
double detector__recent_median(const detector_t *d, int k);
/* P(T > t) for Student's t with nu degrees of freedom. */
double detector__t_tail(double t, double nu);
/* The likelihood, in [0, 1], of a short-window mean mavg against the long window: a Gaussian
 * tail when plain is set, else Student's t; 0 while the long window holds fewer than 2. */
float detector__likelihood_score(const detector_t *d, double mavg, int plain);
/* op_point: the operating point's likelihood of the short means (*ew, top channel *ew_top) and
 * of this reading's own levels x (*now, *now_top); 0 (channel -1) until 2 err_short readings
 * were seen, or when no channel has a level; 0 also when only one channel has a level. */
void detector__op_likelihood(const detector_t *d, const float *x, float *ew, int *ew_top,
                             float *now, int *now_top);

/* The open episode's readings as reported, which the acceptance counts: in_anomaly, and the
 * trip's reading the state machine's episode continued (ep_trip). */
static inline int detector__ep_len(const detector_t *d)
{
    return d->in_anomaly + d->ep_trip;
}

/* The context ring's row k readings back from its newest (k = 0: the previous reading). */
static inline const float *detector__ctx_back(const detector_t *d, int k)
{
    return d->ctx + (size_t)((d->ctx_head - 1 - k + 2 * d->ctx_cap) % d->ctx_cap) * d->C;
}

/* HOLD_SEEN (detector_score.c, hold_seen_lets_go; docs/detection.md, eightieth round; a
 * compile-time option, 0 off): within an episode's first short window on a device whose levels
 * the level tests do not judge, while the short window holds no raw score beyond the device's
 * record since its training (a repeat of what it has shown), the error's hold lets go once the
 * newest HOLD_SEEN readings are each normal on their own (hold_recent's off-delay, 3, as
 * HOLD_SEEN). An episode that holds a record keeps hold_recent's off-delay; 2 and not 1 so a
 * fault whose error alternates high and low (a control loop hunting) keeps its hold. */
#ifndef HOLD_SEEN
#define HOLD_SEEN 2
#endif

/* RECORD_RARE (detector_score.c, rare_onset_opens; docs/detection.md, eighty-second round; a
 * compile-time option, 0 off): the record's gate (an excursion within the record opens only at
 * record_level, record_open's or record_open_one's) does not hold an opening the on-delay
 * confirmed (the previous reading's decision likelihood at alarm_level too; with confirm below
 * 2 every opening counts as confirmed) on a device whose onsets are rare: its onset rate
 * (ons_rate, this onset included) at most RECORD_RARE. Only where onsets are ranked and
 * counted (onset_record and onset_rate; the rate is saved with onset_rate), so a restart
 * answers as the saved detector would. On (2.0): NAB own +1.3 to +2.9 in seeds 1-10 and 41-50,
 * tuned within 0.1, SKAB and vigil-sim unchanged. */
#ifndef RECORD_RARE
#define RECORD_RARE 2.0
#endif

/* detector_onset.c: how an onset is ranked; x is the reading being scored (not yet in the
 * context ring). */
/* onset_record: the short window's largest raw score less the largest of the readings that left
 * it since the training, or NAN while fewer than err_short readings make that reference. */
double detector__record_excess(const detector_t *d);
/* range_quiet: the reading that leaves the short window after x joins each channel's range. */
void detector__range_note(detector_t *d, const float *x);
/* range_far: how far x goes beyond each channel's range, in shares of its width: the largest
 * (*top: its channel), or 0 (*top -1) while the range is young or range_far is off. */
double detector__range_excess(const detector_t *d, const float *x, int *top);
/* range_far: the rank of a reading u range widths beyond its range, in [red, 1). */
float detector__far_rank(const detector_t *d, double u, float red);
/* mean_far: how far the short window's mean goes beyond each channel's range, in shares of its
 * width: the largest, or 0 while the range is young or mean_far is off. */
double detector__mean_excess(const detector_t *d, const float *x);
/* onset_rhythm: keeps this reading's place and size when it is an onset. */
void detector__rhythm_note(detector_t *d, int onset);
/* onset_record: the reported score of an onset of likelihood lik (at or above red), in [red,
 * 1]; value_rec: a record of the device's values (mean_far); past: marked on a reading back in
 * the noise (onset_now). */
float detector__onset_rank(const detector_t *d, const float *x, float lik, float red, int value_rec,
                           int past);
/* onset_rate: counts this reading into the onsets' rate when it is one, and ages the rate. */
void detector__onset_rate_note(detector_t *d, int onset);

/* detector_release.c: the one-sensor rules that let an episode go. */
/* offset_release: 1 when the error that holds the episode has become a steady offset. */
int detector__error_is_offset(const detector_t *d);
/* offset_trend: 1 when some channel still moves away from its training level. */
int detector__channel_drifts(const detector_t *d);
/* hold_echo applies on this device (one sensor, not following a seasonal profile). */
int detector__echo_applies(const detector_t *d);
/* hold_echo: notes this reading's error e (channel 0) in the run of one-signed errors. */
void detector__echo_note(detector_t *d, const float *e);
/* hold_echo: freezes the level before the episode opening now, and its spread. */
void detector__echo_freeze(detector_t *d);
/* hold_echo: 1 when the newest values x are back after a burst and the error is its echo. */
int detector__echo_back(const detector_t *d, const float *x);
/* hold_decay applies on this device (hold_echo's devices, with hold_decay set). */
int detector__decay_applies(const detector_t *d);
/* hold_decay: notes the value x in the episode's peak; opening: 1 on the opening reading. */
void detector__decay_note(detector_t *d, const float *x, int opening);
/* hold_decay: 1 when the newest decay_run values (x and the context ring's) have each come back
 * hold_decay of the way from the episode's peak to the level before it (x's note taken). */
int detector__decay_back(const detector_t *d, const float *x);

/* detector_burst.c (burst_memory) */
/* Forgets the bursts, recorded and pending (with the long window: a training rescales the
 * raw scores). */
void detector__burst_clear(detector_t *d);
/* Called with the state st the machine just decided for this reading (d->det_state and
 * d->in_anomaly still the previous reading's), the short mean mavg and whether a release ends
 * the episode here: tracks the open episode's peak; an episode that ends after fewer than
 * detector__burst_span readings (with burst_wide, by itself: not released or accepted) becomes
 * pending, and is recorded as a burst once err_short readings have passed without a new one. */
void detector__burst_note(detector_t *d, enum detector_state st, double mavg, int released);
/* The readings a burst's episode lasts at most, plus one: err_short, or burst_wide times it. */
int detector__burst_span(const struct detector_config *cfg);
/* Records a burst of peak short mean peak whose episode ended at n_seen = end, the newest
 * overwriting the oldest (burst_note's bursts; settle_release's after-states). */
void detector__burst_keep(detector_t *d, float peak, uint64_t end);
/* The likelihood lik of the short mean mavg, capped at the log-scaled empirical tail m / n of
 * the recorded bursts (m of those within err_window readings peaked at or above mavg, n =
 * ring_len / err_short); lik itself when m is 0. */
float detector__burst_cap(const detector_t *d, double mavg, float lik);
/* detector_shift.c (shift_len): the step test of one reading. */
struct detector__shift {
    float lik;                           /* its likelihood (0: nothing judged) */
    int top;                             /* the channel that gave it (-1: none) */
    double pre, post;                    /* that channel's level before and after the step */
    int valid;                           /* the step estimates below were computed */
    double step[DETECTOR_MAX_CHANNELS];  /* each channel's step estimate, training spreads */
    double pstep[DETECTOR_MAX_CHANNELS]; /* shift_plain: the plain difference of the means */
    double level[DETECTOR_MAX_CHANNELS]; /* the newer q readings' mean, training spreads */
};
/* Evaluates the step test on reading x[C] (not yet in the context ring) into sh; rebuilds the
 * window sums first when they are not valid (sw_ok 0). */
void detector__shift_eval(detector_t *d, const float *x, struct detector__shift *sh);
/* Inside an episode in which the step test reached alarm level: 1 while its channel's level
 * stays nearer the level the step went to than its mean since the training, else 0 (0 too when
 * no hold is armed); -1 with shift_release when sh (this reading's step test) shows that
 * channel stepping back (the caller drops the hold). */
float detector__shift_hold(const detector_t *d, const float *x, const struct detector__shift *sh);
/* After the state machine: arm (the step test at alarm level in an episode with no hold yet)
 * records sh's channel and level for the hold; otherwise the hold stays only while keep (the
 * episode goes on, not accepted); the reference takes the reading in when push (not frozen, as
 * the long window is). */
void detector__shift_after(detector_t *d, const float *x, const struct detector__shift *sh, int arm,
                           int keep, int push);
/* Empties the reference (a training's reseed) and drops the hold; the window sums are rebuilt
 * at the next test. */
void detector__shift_reset(detector_t *d);
/* The doubles the step test keeps per detector of C channels with configuration cfg (0 when
 * shift_len is 0): its arrays' share of the block. */
size_t detector__shift_doubles(const struct detector_config *cfg, int C);
/* Points d's step-test arrays into p (detector__shift_doubles(&d->cfg, d->C) doubles, zeroed);
 * returns the first double after them. */
double *detector__shift_place(detector_t *d, double *p);
/* Rebuilds d's window sums from the context ring unless they are valid (sw_ok); returns the
 * test's half window q, 0 when the ring is too short for the test (nothing done). The sums are
 * those of the ring's rows even when sw_ok stays 0 (a rebuild whose sums rounded). */
int detector__shift_sums(detector_t *d);
/* Called with each reading x[C] the context ring is about to take (before it is written): moves
 * the window sums on by one reading, in O(C). */
void detector__shift_push(detector_t *d, const float *x);
/* settle_release, in an episode with no step hold armed: rel_ch1 is 1 + the channel whose
 * hold shift_release dropped at this reading (0: none); if that hold set the episode off
 * (sh_lead), its channel is watched from now on. Returns 1 when the watched channel has come
 * back near its level before the step (the episode then ends), else 0. */
int detector__shift_settle(detector_t *d, const float *x, int rel_ch1);

/* detector_opinion.c (season_opinion, season_accum) */
/* The likelihood of the second opinion for reading x[C] (index n_seen), after its short means
 * took x in: *lik of the short means, *now of x's own deviations, *top the most extreme channel
 * of the short means (-1: none). All 0 until 2 err_short readings since the training. *alik:
 * the accumulated departures' likelihood (season_accum; 0 while off, or no record has its span
 * of readings since the training). */
void detector__opinion_eval(detector_t *d, const float *x, float *lik, float *now, int *top,
                            float *alik);
/* The short means into the reference (called where the long window takes a reading), unless
 * lik, their likelihood, is at warn_level; the accumulated means into theirs unless alik is. */
void detector__opinion_push(detector_t *d, float lik, float alik);
/* Empties the references (a training's reseed). */
void detector__opinion_reset(detector_t *d);
/* A new record block for the channels c with period[c] > 0 and sd[c] > 0 that are !season[c]
 * or, with cfg->season_accum, have asd[c] > 0 (their profiles at prof + c * season_bins, the
 * deviations' mean and spread in mean[c], sd[c], the accumulated mean's spread and count in
 * asd[c], n0[c]): *out NULL and *n 0 when none. Caller owns *out; free with free. Returns
 * ERR_NOMEM (*out NULL). Any thread. */
int detector__opinion_make(struct detector__opinion **out, int *n,
                           const struct detector_config *cfg, int C, const uint8_t *season,
                           const int *period, const float *prof, const float *mean, const float *sd,
                           const float *asd, const float *n0);
/* The readings over which the accumulated departure of a profile of period readings is taken
 * (season_accum): season_accum periods, at least err_short. */
int detector__accum_len(const struct detector_config *cfg, int period);

/* Training jobs: detector_train.c (lifecycle, decision), detector_calib.c (errors,
 * calibration, a group member's share), detector_season.c (the seasonal candidate). */
/* The predictors a job scores (detector_train.c: P_LSTM, P_LINEAR, P_PERSIST, P_SERVING). */
#define DETECTOR__N_PRED 4

/* A training job (detector.h's detector_job_t). */
struct detector_job {
    struct detector_config cfg;
    int C, n, n_val;
    float *data; /* [n, C] oldest first (set_data; NULL before) */
    /* Segments: a pooled job's rows are several series one after another (a group's members'
     * windows): segment k starts at row seg[k] (seg[0] = 0, ascending) and ends where the next
     * one starts, or at n. Nothing is predicted across a boundary. One segment for
     * set_data. */
    int *seg;
    int nseg, n_train; /* n_train: rows trained on (every segment's rows before its tail) */
    model_t *base;     /* the cold start's initial model (detector__model_config), made by run */
    /* the serving predictor at create */
    enum detector_kind s_kind;
    model_t *s_lstm;
    float *s_ab, *s_b;            /* [C, C], [C] */
    uint8_t *s_persist;           /* [C] */
    float *s_lo, *s_hi, *lo, *hi; /* [C] LSTM input ranges: serving, candidate */
    uint32_t s_version, version;  /* version: the candidate's number, recorded by apply */
    uint32_t install;             /* the version a swap installs (0: version; set by share) */
    int s_window, window;         /* the serving LSTM's and the candidate's training windows */
    int ran;
    int pooled;               /* set_pooled: a group's job, whose decision serves every member */
    const atomic_int *cancel; /* detector_job_set_cancel's flag (borrowed), or NULL */
    uint64_t idx_end; /* the detector's n_seen at create: the newest row is reading idx_end - 1 */
    /* season_bins > 0: the seasonal candidate after run (as in struct detector), in sea */
    uint8_t *season;
    int *s_period;
    float *s_prof, *s_a, *s_phi;
    float *o_mean, *o_sd; /* the deviation from the profile over the training rows (opinion) */
    float *o_asd, *o_n0;  /* its accumulated mean's spread and sample count (season_accum) */
    void *sea;
    /* results */
    model_t *cand;
    int have_cand, have_lin;
    float *lin_ab, *lin_b;
    int swap;
    enum detector_kind kind; /* serving kind after the decision */
    uint8_t *persist;        /* [C] flags after the decision */
    float *scale, *rms;      /* [C] after the decision */
    float *lmean, *lscale;   /* [C] level terms after the decision */
    float *rinv;             /* [C, C] err_corr's inverse error correlation after the decision */
    float *val_raw; /* [n] raw scores of the serving predictor after the decision (set_data) */
    int n_raw;
    double cost[DETECTOR__N_PRED];       /* by predictor: detector_train.c's P_LSTM .. P_SERVING */
    double cost_alone[DETECTOR__N_PRED]; /* the same without the per-channel fallback (but on
                                            channels flat in training) */
    struct model_train_result tres;
    float *curves; /* [2, max_epochs] */
    void *block;
};

/* One predictor as a job sees it. */
struct detector__pred {
    enum detector_kind kind;
    const model_t *lstm;
    const float *ab, *b;
    const float *lo, *hi; /* LSTM input range, or NULL */
    int C, T;
};

/* detector_train.c */
/* Whether the stop asked j's run to end (detector_job_set_cancel's flag set). The long loops
 * after the LSTM's epochs read it too (detector__run_errors every 256 rows, the seasonal
 * search every 64 lags): read69b's finding 8, a stop held 1.5 s by them. Any thread. */
static inline int detector__cancelled(const detector_job_t *j)
{
    return j->cancel && atomic_load_explicit(j->cancel, memory_order_relaxed);
}

/* Segment k of job j: rows [*a, *b), its held-out tail [*v, *b) (trainings fit [*a, *v)). */
void detector__seg_rows(const detector_job_t *j, int k, int *a, int *v, int *b);

/* detector_calib.c */
/* The number of calibration rows of j (the newest rows of its last segment), at least 1. */
int detector__calib_rows(const detector_job_t *j);
/* Runs predictor pc over j's rows: its one-step errors on the last ncal rows into err
 * [ncal, C], its h-step squared errors into sseh [C], each segment's tail's squared one-step
 * errors into vsse [nseg, C] (may be NULL). Returns 0, ERR_NOMEM or ERR_CLOSED (j->cancel set:
 * read every 256 rows). */
int detector__run_errors(const struct detector__pred *pc, const detector_job_t *j, int ncal,
                         int hfrom, int win, int h, float *err, double *sseh, double *vsse);
/* The variance of channel c over segment k's held-out tail (mean, sd: the training rows', the
 * fallback for a channel flat there). */
double detector__tail_var(const detector_job_t *j, int k, int c, double mean, double sd);
/* Channel statistics of j's rows: mean, sd of the training rows, var of the last tail, floor_
 * of the error scales ([C] each). */
void detector__channel_stats(const detector_job_t *j, double *mean, double *sd, double *var,
                             double *floor_);
/* Calibrates what serves after j's decision (j->persist) from its errors err_s, err_p [nc, C]
 * and tails' squared errors sse_s, sse_p [C]: scales, level terms, rinv, val_raw. Returns 0
 * or ERR_NOMEM. */
int detector__calibrate(detector_job_t *j, const float *err_s, const float *err_p,
                        const double *sse_s, const double *sse_p, const double *floor_, int nc);

/* detector_io.c */
/* Whether onset_record's reference (rec_max, rec_n) is kept and saved: a field that reads it
 * is set. The writer and the loader (detector_load.c) ask the same question. */
int detector__keeps_record(const struct detector_config *c);

/* detector_season.c */
/* The seasonal choice (season_bins > 0) after j's decision: fits each channel's profile and
 * sets season[c] where it validates better, its errors then replacing err_s's and sse_s's.
 * Returns 0, ERR_NOMEM or ERR_CLOSED (the stop's cancel: detector__cancelled). */
int detector__season_choose(detector_job_t *j, float *err_s, const float *err_p, double *sse_s,
                            const double *sse_p, const double *mean, const double *sd, int nc);

#endif

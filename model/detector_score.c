/* model/detector_score.c: from a reading and its prediction to an anomaly score and a state.
 *
 * 1. Normalisation. Each channel's error e_c = x_c - pred_c is divided by the channel's error
 *    scale (the serving predictor's RMS error on the validation tail of its training, with a
 *    floor for flat channels, widened where the prediction extrapolates from other channels'
 *    inputs beyond the data the model knows: extrap_scales): z_c. A channel the model treats
 *    as hovering around a level (not predicted by persistence) adds level_weight * l_c^2, l_c
 *    its distance from the level of the training data in that data's standard deviations: a
 *    one-step predictor follows a lasting shift within a few readings, the level term keeps
 *    seeing it. The raw score of the reading is log(1 + mean_c (z_c^2 + level term)): for
 *    one channel about chi-square with one degree of freedom, log-compressed so a single wild
 *    reading cannot dominate the reference distribution for thousands of readings. With
 *    err_corr (once a training calibrated on a whole tail) the sum of z_c^2 is the quadratic
 *    form z' W z, W from the errors' correlation on the calibration rows (detector_calib.c,
 *    corr_weights): a disturbance that coupled channels all follow counts once, not once per
 *    channel; contrib stays each channel's own z_c^2 share.
 * 2. Anomaly likelihood (detector_likelihood.c): the mean raw score of the last err_short
 *    readings against the short averages of the last err_window readings, as a tail
 *    probability on a log scale (0.5: a tail of 1e-5). The reported score is the likelihood,
 *    except that an alarm-level reading (score_level) right after another one is capped at
 *    repeat_cap (Numenta's filter): the score marks onsets, the state marks episodes.
 *    range_far: a reading far beyond every value its device has shown (range_excess) is an
 *    onset too, and with range_open it opens an episode (a limit, the oldest alarm); mean_far:
 *    so is the short window's mean going beyond those values (mean_excess), once an excursion,
 *    ranked as a record of the device's values (the score only). An onset's reported score is
 *    ranked in detector_onset.c (onset_rank), which keeps the ranges too.
 * 3. The state follows a decision likelihood (unless tail_plain): the same comparison with
 *    Student's t (detector_likelihood.c), so a window reseeded from a short validation tail
 *    does not raise alarms on the noise of its own statistics. Thresholds with hysteresis on
 *    it: >= alarm_level on `confirm` readings in a row starts an anomaly, >= warn_level a
 *    warning; either ends after clear_count consecutive readings below clear_level.
 * 3a. op_point (ninth round): a second likelihood joins the decision, of the operating point
 *    rather than the prediction error (detector_likelihood.c, detector__op_likelihood): each
 *    channel with a level (not predicted by persistence) has its level, in the training data's
 *    spreads, as an exponential short mean (op_update, here), judged against that channel's own
 *    short levels since the training. Only with two or more such channels. The state follows
 *    the larger likelihood: a lasting shift that a one-step predictor follows after its onset
 *    stays visible, and a drifting channel (a temperature), whose own history is wide, does not
 *    hide a steady one leaving its level. An opening on it needs the opening reading's own
 *    levels at clear_level (a spike the short mean remembers opens nothing) and takes its top
 *    channel from the levels. The reported score is unchanged.
 * 3b. shift_len (eleventh round): a step test per channel (detector_shift.c) joins the
 *    operating point's likelihood: the jump between lines through the older and newer halves of
 *    the newest 2 shift_len readings, against its own values since the training; an episode in
 *    which it reaches alarm_level is held while the step persists.
 * 4. While in anomaly the raw scores stay out of the long window (freeze), so a lasting fault
 *    keeps its alarm instead of becoming the reference; after accept_after readings the
 *    regime is accepted (scores enter the window again and a retraining is asked for) until
 *    the episode ends, so no alarm can stay stuck.
 *
 * Invariants: no allocation; the windows (detector_likelihood.c) take a reading's raw score
 * before it is judged, the long window only while the state learns (4).
 * Threading: owner thread of the detector. */
#include <math.h>
#include <string.h>

#include "detector_int.h"

/* z^2 cap per channel, so one channel's absurd error stays a finite, comparable score (and
 * |z| likewise, for err_corr's quadratic form). */
#define Z2_CAP 1e12
#define Z_CAP  1e6
/* extrap_weight: the region the model knows, in standard deviations of each channel's level
 * over the training job's rows (a sine spans 1.4 of them, Gaussian noise about 3). */
#define EXTRAP_SD 2.0

float detector__raw_score(const float *e, const float *scale, const float *x, const float *lmean,
                          const float *lscale, float w, int top, const float *rinv, int C,
                          float *contrib)
{
    double s = 0.0, z2[DETECTOR_MAX_CHANNELS], z[DETECTOR_MAX_CHANNELS];
    for (int c = 0; c < C; c++) {
        z[c] = (double)e[c] / (double)scale[c];
        if (!(fabs(z[c]) <= Z_CAP))
            z[c] = z[c] < 0.0 ? -Z_CAP : Z_CAP; /* also a NaN: as the largest error */
        z2[c] = z[c] * z[c];
        if (w > 0.0f && lscale[c] > 0.0f) {
            double l = ((double)x[c] - lmean[c]) / lscale[c];
            z2[c] += (double)w * l * l;
        }
        if (!(z2[c] <= Z2_CAP))
            z2[c] = Z2_CAP;
        s += z2[c];
    }
    if (contrib)
        for (int c = 0; c < C; c++)
            contrib[c] = s > 0.0 ? (float)(z2[c] / s) : 1.0f / (float)C;
    if ((top <= 0 || top >= C) && rinv && C > 1) {
        /* err_corr: z' R^-1 z, R the correlation of the calibration rows' scaled errors. Its
         * mean over those rows is C, as the sum's is, so the long window's scale is kept; the
         * level terms (diagonal) are added as they are. */
        double q = 0.0;
        for (int c = 0; c < C; c++) {
            double r = 0.0;
            for (int k = 0; k < C; k++)
                r += (double)rinv[(size_t)c * C + k] * z[k];
            q += z[c] * r + (z2[c] - z[c] * z[c]);
        }
        return (float)log1p((q > 0.0 ? q : 0.0) / C);
    }
    if (top <= 0 || top >= C)
        return (float)log1p(s / C);
    /* The mean of the `top` largest terms: a fault in one channel of many is not averaged
     * away by the healthy ones. */
    double best[DETECTOR_MAX_CHANNELS]; /* the largest terms so far, descending */
    int nb = 0;
    for (int c = 0; c < C; c++) {
        if (nb == top && z2[c] <= best[top - 1])
            continue;
        int k = nb < top ? nb++ : top - 1;
        for (; k > 0 && best[k - 1] < z2[c]; k--)
            best[k] = best[k - 1];
        best[k] = z2[c];
    }
    double t = 0.0;
    for (int k = 0; k < top; k++)
        t += best[k];
    return (float)log1p(t / top);
}

void detector__inputs_unshare(const struct detector_config *cfg, float *contrib, int C)
{
    double s = 0.0;
    int n = 0;
    for (int c = 0; c < C; c++)
        if (!cfg->input[c]) {
            s += contrib[c];
            n++;
        }
    if (n == C || n == 0)
        return;
    for (int c = 0; c < C; c++)
        contrib[c] = cfg->input[c] ? 0.0f : s > 0.0 ? (float)(contrib[c] / s) : 1.0f / (float)n;
}

/* The scored channel (not an input) with the largest share, the first of equal ones; 0 when
 * every channel is an input (the callers refuse that: defensive). */
static int top_scored(const struct detector_config *cfg, const float *contrib, int C)
{
    int top = -1;
    for (int c = 0; c < C; c++)
        if (!cfg->input[c] && (top < 0 || contrib[c] > contrib[top]))
            top = c;
    return top < 0 ? 0 : top;
}

/* warn_run: no run. */
static void run_reset(detector_t *d)
{
    d->run_n = d->run_out = 0;
    d->run_sum = 0.0;
}

void detector__windows_seed(detector_t *d, const float *raw, int n)
{
    detector__burst_clear(d);
    d->op_n = -1.0; /* unset: the next reading's levels start the short means */
    detector__shift_reset(d);
    detector__opinion_reset(d);
    memset(d->op_sum, 0, sizeof d->op_sum);
    memset(d->op_sumsq, 0, sizeof d->op_sumsq);
    d->ring_head = d->ring_len = d->ring_since_resum = 0;
    d->ring_sum = d->ring_sumsq = 0.0;
    d->short_head = d->short_len = 0;
    d->short_sum = 0.0;
    d->since_red = 1 << 30;
    d->dred = 0;
    /* The long window holds short-window averages, as the live path pushes them. */
    int from =
        n > d->cfg.err_window + d->cfg.err_short ? n - d->cfg.err_window - d->cfg.err_short : 0;
    for (int k = from; k < n; k++) {
        double mavg = detector__short_push(d, raw[k]);
        if (k - from >= d->cfg.err_short - 1 || n - from < d->cfg.err_short)
            detector__ring_push(d, (float)mavg);
    }
    /* onset_record's reference starts with the live readings, not with the calibration rows
     * the loop above passed through the short window (measured: docs/detection.md,
     * "Seventeenth round"). Raw scores are >= 0. */
    d->rec_max = 0.0f;
    d->rec_n = 0;
    run_reset(d);    /* warn_run: a run is judged against one reference */
    d->opin_run = 0; /* opinion_open: likewise */
}

/* op_point: this reading's levels into the short means (before it is judged); the first
 * reading after a reseed (op_n <= 0) starts them. */
static void op_update(detector_t *d, const float *x)
{
    double a = 2.0 / (d->cfg.err_short + 1.0); /* an err_short box mean's centre of mass */
    for (int c = 0; c < d->C; c++) {
        if (!(d->lscale[c] > 0.0f)) {
            d->op_ew[c] = 0.0; /* no level: never judged */
            continue;
        }
        double l = ((double)x[c] - d->lmean[c]) / d->lscale[c];
        if (!(fabs(l) <= Z_CAP))
            l = l < 0.0 ? -Z_CAP : Z_CAP;
        d->op_ew[c] = d->op_n <= 0.0 ? l : d->op_ew[c] + a * (l - d->op_ew[c]);
    }
    if (d->op_n < 0.0)
        d->op_n = 0.0;
}

/* How far u, a reading of channel i, lies beyond the region of the data the model was last
 * trained or calibrated on (lmean +- EXTRAP_SD lscale): u - clamp(u); 0 inside it, and for a
 * channel without a level (lscale 0). */
static double region_out(const detector_t *d, int i, double u)
{
    if (!(d->lscale[i] > 0.0f))
        return 0.0;
    double lo = d->lmean[i] - EXTRAP_SD * d->lscale[i], hi = d->lmean[i] + EXTRAP_SD * d->lscale[i];
    return u < lo ? u - lo : u > hi ? u - hi : 0.0;
}

/* The error scales of this reading's prediction, widened where it extrapolates (extrap_weight
 * > 0, the linear baseline serving): the prediction of channel o was made from the previous
 * reading u = d->last, and the part of it that inputs i != o contributed from beyond the region
 * of the data the model was last trained or calibrated on (lmean +- EXTRAP_SD lscale, over the
 * last job's rows; channels predicted by persistence have lscale 0 and never count) is
 * part_o = sum_i a_oi (u_i - clamp(u_i)). There the model has no support: its linear response
 * is roughly right near the region (a smooth plant) but its error grows with how far it
 * extrapolates, so the expected error gains a fraction of that part: scale'^2 = scale^2 +
 * (extrap_weight part_o)^2. A fault moves the faulty channel out of its range, an operating
 * point the model never saw moves most coupled channels together: so the channel's own input
 * counts only in such a coupled move (at least half of the other channels out), and only as
 * far as the farthest of them goes; a fault's error on its own channel stays an error, and at
 * a new operating point its excess beyond the others' still counts. Single-channel series
 * never widen. */
static void extrap_scales(const detector_t *d, float *scale)
{
    const int C = d->C;
    const float w = d->cfg.extrap_weight;
    memcpy(scale, d->err_scale, sizeof(float) * (size_t)C);
    if (!(w > 0.0f) || d->kind != DET_KIND_LINEAR)
        return;
    double out[DETECTOR_MAX_CHANNELS]; /* u_i - clamp(u_i) */
    int any = 0;
    for (int i = 0; i < C; i++) {
        out[i] = region_out(d, i, d->last[i]);
        any |= out[i] != 0.0;
    }
    if (!any)
        return;
    for (int o = 0; o < C; o++) {
        if (d->persist[o])
            continue;
        /* The other channels' part, and how many of them lie out of their region and how far. */
        double part = 0.0, far = 0.0;
        int n_out = 0, n_known = 0;
        for (int i = 0; i < C; i++) {
            if (i == o)
                continue;
            part += (double)d->lin_ab[o * C + i] * out[i];
            if (d->lscale[i] > 0.0f) {
                n_known++;
                n_out += out[i] != 0.0;
                far = fmax(far, fabs(out[i]) / d->lscale[i]);
            }
        }
        /* A coupled move (at least half of the other channels out of their region) takes the
         * channel's own input along: its own excursion extrapolates too, but only as far, in
         * its standard deviations, as the farthest other channel's goes. */
        if (d->lscale[o] > 0.0f && out[o] != 0.0 && n_known > 0 && 2 * n_out >= n_known) {
            double own = fmin(fabs(out[o]) / d->lscale[o], far) * d->lscale[o];
            part += (double)d->lin_ab[o * C + o] * (out[o] < 0.0 ? -own : own);
        }
        double s = d->err_scale[o], x = (double)w * part;
        scale[o] = (float)sqrt(s * s + x * x);
    }
}

/* onset_now: 1 when the newest reading on its own is back in the noise: its raw score, taken as
 * a short mean, has a likelihood below red. An onset marked on such a reading is a short mean
 * carried up by readings already past (a burst that is fading as the mean crosses the level),
 * and the likelihood's place describes those readings, not this one (measured:
 * docs/detection.md, "Forty-seventh round"). */
static int onset_past(const detector_t *d, float red)
{
    return d->cfg.onset_now && detector__likelihood_score(d, detector__recent_raw(d, 0), 1) < red;
}

/* accept_grow: an episode's readings are judged in blocks of accept_after / GROW_BLOCKS (at
 * least one reading), counted back from accept_after, so a block ends there. Two: at
 * accept_after (500 by default) its halves compare. The growth between blocks grows with
 * their length and its standard error shrinks, so a long block still sees a fault whose noise
 * grows with it (vigil-sim's bearing: with blocks of 125 readings its growth fell within 3
 * standard errors by chance after 1,250-1,875 readings of its episode, with 250 never in
 * 2,055). A fault that stops growing is accepted once a block that began after the stop is
 * compared: at most three blocks after it stops, two when it stops at a block's end. */
#define GROW_BLOCKS 2

/* accept_grow: 1 when the current block's mean error is above the previous block's by more
 * than accept_grow standard errors of the difference (Welch's: each block's sample variance
 * over its count); 0 when it is not, or there is no previous block to compare. */
static int error_grows(const detector_t *d)
{
    if (d->gr_pn < 2 || d->gr_n < 2)
        return 0;
    const double m = d->gr_sum / d->gr_n, pm = d->gr_psum / d->gr_pn;
    const double v = (d->gr_sq - d->gr_sum * m) / (d->gr_n - 1);
    const double pv = (d->gr_psq - d->gr_psum * pm) / (d->gr_pn - 1);
    const double se = sqrt((v > 0.0 ? v / d->gr_n : 0.0) + (pv > 0.0 ? pv / d->gr_pn : 0.0));
    return m - pm > d->cfg.accept_grow * se;
}

/* accept_grow: adds this reading's error e[C] (its root mean square over the channels, each
 * in the channel's error scale from the training: not extrap_scales' widened one, which grows
 * and shrinks with the load's excursions beyond the model's region) to the open episode's
 * current block (in_anomaly counts the reading already; 1 starts the blocks over). At a
 * block's end from accept_after on, returns 1 when the error no longer grows (error_grows),
 * so the regime may be accepted; the block then becomes the previous one. The model is frozen
 * while the episode is held, so its error has the load's swing taken out: what is left grows
 * with the fault. */
static int grow_note(detector_t *d, const float *e)
{
    const int A = d->cfg.accept_after, B = A / GROW_BLOCKS > 0 ? A / GROW_BLOCKS : 1;
    if (d->in_anomaly == 1) {
        d->gr_n = d->gr_pn = 0;
        d->gr_sum = d->gr_sq = d->gr_psum = d->gr_psq = 0.0;
    }
    double g = 0.0;
    for (int c = 0; c < d->C; c++) {
        const double z = (double)e[c] / d->err_scale[c];
        g += z * z;
    }
    g = sqrt(g / d->C);
    if (!(g <= Z_CAP))
        g = Z_CAP; /* also a NaN, as the largest error (defensive: the scales are positive,
                    * trained or loaded, and a missing channel's value is carried forward, so
                    * only a prediction that is not finite would give one) */
    if (d->gr_n < (1 << 30)) { /* the bound it loads within (a block that never ends) */
        d->gr_n++;
        d->gr_sum += g;
        d->gr_sq += g * g;
    }
    const int n = detector__ep_len(d); /* the trip's reading too (ep_trip) */
    if ((n - A) % B != 0)
        return 0;
    const int ripe = n >= A && !error_grows(d);
    d->gr_pn = d->gr_n;
    d->gr_psum = d->gr_sum;
    d->gr_psq = d->gr_sq;
    d->gr_n = 0;
    d->gr_sum = d->gr_sq = 0.0;
    return ripe;
}

/* 1 when the operating point or the step test judges this device's levels: two or more
 * channels with a level (op_tail_score, detector__shift_eval), and either test on. */
static int level_tests_judge(const detector_t *d)
{
    int k = 0;
    for (int c = 0; c < d->C; c++)
        k += d->lscale[c] > 0.0f;
    return k >= 2 && (d->cfg.op_point || d->cfg.shift_len > 0);
}

/* hold_recent: the error's hold h (a likelihood, from the median of the newest `avail` raw
 * scores, at most short_len) capped by the likelihood of the largest of the newest hold_recent
 * raw scores, on a device whose levels the level tests do not judge: once that many readings
 * in a row are each normal on their own, the device is back, and the median of up to
 * err_short readings, which a burst of high readings keeps up for as many readings after the
 * return as the burst lasted, no longer holds the episode. A lasting fault whose readings now
 * and then fall back inside the noise keeps its hold: one or two normal readings amid it do
 * not make hold_recent in a row. Right after an episode the reopening is judged on the same
 * cap, or the burst still in the short window would reopen at once the episode that just
 * ended. Where the level tests judge, they hold a level change themselves: unchanged. */
static float hold_recent_cap(const detector_t *d, float h, int avail)
{
    const int r = d->cfg.hold_recent;
    if (r <= 0 || avail < r || level_tests_judge(d))
        return h;
    double m = 0.0;
    for (int i = 0; i < r; i++)
        m = fmax(m, detector__recent_raw(d, i));
    float l = detector__likelihood_score(d, m, d->cfg.tail_plain);
    return l < h ? l : h;
}

/* record_open's level on this device (0: off): record_open on every device, raised to
 * record_open_one where the level tests do not judge its levels (asked only for a reading at
 * alarm level: level_tests_judge counts the channels). There (one sensor: NAB's series) the
 * error alone decides an opening, and nothing else tells a repeat of a burst from news; where
 * the levels are judged, a fault's re-openings within the record its first episode set are
 * real (SKAB's: docs/detection.md, "Twentieth round" and "Thirty-seventh round"). */
static float record_level(const detector_t *d)
{
    const float one = level_tests_judge(d) ? 0.0f : d->cfg.record_open_one;
    return one > d->cfg.record_open ? one : d->cfg.record_open;
}

/* score_tails: the error's likelihood for the reported score on the second opinions' scale.
 * The score is the larger of the error's likelihood and the second opinions' (season_opinion
 * bit 1); each opinion's tail is already multiplied by 2 for the two likelihoods the state
 * compares (opin_score), the error's is not, so before this a departure of the same
 * improbability scored higher when the error saw it than when an opinion did (measured:
 * docs/detection.md, "Twenty-first round"). Here the error's tail is doubled as well, only
 * where an opinion joins the score: alone, the error's likelihood is compared with nothing. */
static float error_on_opinion_scale(const detector_t *d, float lik)
{
    const struct detector_config *cfg = &d->cfg;
    if (!cfg->score_tails || !(cfg->season_opinion & 1) || d->n_op == 0)
        return lik;
    const double L = log(1e-10);
    double tail = exp((double)lik * L) - 1e-10; /* the likelihood's own map, inverted */
    double s = log(fmin(2.0 * (tail > 0.0 ? tail : 0.0), 1.0) + 1e-10) / L;
    return (float)(s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s);
}

/* warn_region: 1 when the reading x is a coupled move beyond the serving model's region: at
 * least half of the channels with a level, and two or more, lie out of it (region_out). That is
 * extrap_scales' coupled move, taken over all the channels: an operating point the model never
 * saw, where a young model's error grows across channels however healthy the device. */
static int beyond_region(const detector_t *d, const float *x)
{
    int n_known = 0, n_out = 0;
    for (int i = 0; i < d->C; i++) {
        n_known += d->lscale[i] > 0.0f;
        n_out += region_out(d, i, x[i]) != 0.0;
    }
    return n_known >= 2 && 2 * n_out >= n_known;
}

/* Independent short means a warn_run run counts at most: enough for any warn_level that opens
 * at all, and it bounds the combination's loop. */
#define RUN_MAX_K 64

/* warn_run: adds this reading's opening likelihood `open` (outside an episode) to the run at
 * warn_level, or ends the run; 1 when the run has lasted warn_run readings and its combined
 * likelihood reaches alarm_level. The run's short means overlap, so only k = run / err_short of
 * them count as independent, each at the run's mean likelihood m (a tail of 1e-10^m); the
 * probability that k independent uniform tails multiply to P = 1e-10^(k m) or less is Fisher's
 * P sum_{j<k} (-ln P)^j / j!, put on the likelihood's log scale. warn_region: the reading counts
 * in run_out when `beyond`, and a run more than half of whose readings were (a run of the
 * model's extrapolation) goes on but does not open. */
static int warn_run_open(detector_t *d, float open, int beyond)
{
    const struct detector_config *cfg = &d->cfg;
    if (d->run_n == 0 && open < cfg->warn_level)
        return 0;
    if (d->run_n < (1 << 30)) {
        d->run_n++;
        d->run_sum += open;
        d->run_out += beyond;
    }
    if (d->run_sum < (double)d->run_n * cfg->warn_level) { /* Page's CUSUM back at 0 */
        run_reset(d);
        return 0;
    }
    if (d->run_n < cfg->warn_run || d->run_out > d->run_n / 2) /* 2 * run_out > run_n */
        return 0;
    int k = d->run_n / cfg->err_short;
    k = k < 1 ? 1 : k > RUN_MAX_K ? RUN_MAX_K : k;
    double lnp = k * (d->run_sum / d->run_n) * log(1e-10); /* ln P */
    double term = 1.0, sum = 1.0;
    for (int j = 1; j < k; j++) {
        term *= -lnp / j;
        sum += term;
    }
    double tail = exp(lnp) * sum;
    double s = log((tail < 1.0 ? tail : 1.0) + 1e-10) / log(1e-10);
    return s >= cfg->alarm_level;
}

/* opinion_open: counts the readings in a row whose second opinion (the larger of the kept
 * profile's deviation likelihood plik and its accumulated one palik) is at alarm_level, and
 * says whether this reading is the `confirm`-th of such a run: the opinion's onset, which opens
 * an episode outside one. A run opens once, however long it lasts: a departure the series
 * goes on with (a changed regime) stays high until the next training refits the profile, and
 * must not open an episode on every reading after the first one ends. Only on a device whose
 * levels the level tests do not judge (level_tests_judge). */
static int opinion_onset(detector_t *d, float plik, float palik, enum detector_state st)
{
    const struct detector_config *cfg = &d->cfg;
    float q = plik > palik ? plik : palik;
    if (q < cfg->alarm_level)
        d->opin_run = 0;
    else if (d->opin_run < (1 << 30))
        d->opin_run++;
    /* Where the operating point and the step test judge the levels (two or more channels with
     * a level), they own an opening on a level: an opinion's earlier onset there opened the
     * episode before the step test could (SKAB's valve1/12, seed 1), whose hold then ended
     * the fault's episode 250 readings early (docs/detection.md, "Thirty-third round"). */
    return st != DET_ANOMALY && d->opin_run == cfg->confirm && !level_tests_judge(d);
}

/* hold_decay applies within DECAY_SPAN short windows (err_short readings each) of an episode's
 * opening; set at compile time (-DDECAY_SPAN=3) for a sweep (docs/detection.md, sixty-ninth
 * round). */
#ifndef DECAY_SPAN
#define DECAY_SPAN 2
#endif

/* HOLD_SEEN (detector_int.h): 1 when the error's hold of a young episode that repeats what the
 * device has shown lets go: the newest HOLD_SEEN raw scores are each normal on their own. Only
 * where the record is saved (detector__keeps_record): a loaded detector must answer as the saved
 * one would have. */
static int hold_seen_lets_go(const detector_t *d)
{
    const int r = HOLD_SEEN;
    if (r <= 0 || d->in_anomaly >= d->cfg.err_short || d->cfg.hold_recent <= 0 ||
        !detector__keeps_record(&d->cfg) || level_tests_judge(d) ||
        !(detector__record_excess(d) <= 0.0))
        return 0;
    double m = 0.0;
    for (int i = 0; i < r; i++)
        m = fmax(m, detector__recent_raw(d, i));
    return detector__likelihood_score(d, m, d->cfg.tail_plain) < d->cfg.clear_level;
}

/* RECORD_RARE (detector_int.h): 1 when an opening the on-delay confirmed is not held by
 * record_level because the device's onsets are rare (its rate, this onset included, at most
 * RECORD_RARE). Only where onsets are ranked and counted (onset_record and onset_rate: with
 * onset_record 0 the rate stays 0 and says nothing). Reads only saved state (ons_rate is saved
 * where onset_rate is set). */
static int rare_onset_opens(const detector_t *d, int confirmed)
{
    return RECORD_RARE > 0.0 && confirmed && d->cfg.onset_record > 0.0f && d->cfg.onset_rate &&
           d->ons_rate <= RECORD_RARE;
}

void detector__score(detector_t *d, const float *x, struct detector_result *res)
{
    const struct detector_config *cfg = &d->cfg;
    const int C = d->C;
    float e[DETECTOR_MAX_CHANNELS], scale[DETECTOR_MAX_CHANNELS];
    /* An input channel (cfg->input) is never scored: its error is taken as 0 here and in the
     * calibration (detector_calib.c), and its level term is 0 (lscale 0 from the calibration). */
    for (int c = 0; c < C; c++)
        e[c] = cfg->input[c] ? 0.0f : x[c] - d->pred[c];
    extrap_scales(d, scale);
    float raw = detector__raw_score(e, scale, x, d->lmean, d->lscale, cfg->level_weight,
                                    cfg->agg_top, cfg->err_corr ? d->rinv : NULL, C, res->contrib);
    detector__inputs_unshare(cfg, res->contrib, C);
    res->top_channel = top_scored(cfg, res->contrib, C);
    res->raw = raw;
    /* hold_echo's and hold_decay's devices (the season is asked later) */
    if ((cfg->hold_echo > 0.0f || cfg->hold_decay > 0.0f) && C == 1)
        detector__echo_note(d, e);
    float own[DETECTOR_MAX_CHANNELS] = {0}; /* this reading's shares, before any blending */
    memcpy(own, res->contrib, sizeof(float) * (size_t)C);
    double mavg = detector__short_push(d, raw);
    /* The score ranks evidence (Gaussian tail, so it is comparable across devices and over
     * time); the state decides, on a likelihood that accounts for how few short means the
     * long window holds (tail_plain 0: Student's t; the same as the score's when set). */
    float lik = detector__likelihood_score(d, mavg, 1);
    float dlik = cfg->tail_plain ? lik : detector__likelihood_score(d, mavg, 0);
    /* op_point: the operating point's likelihood (olik, of the short mean; onow, of this
     * reading's own distance) joins the decision. */
    float olik = 0.0f, onow = 0.0f;
    int otop = -1, onow_top;
    if (cfg->op_point) {
        op_update(d, x);
        detector__op_likelihood(d, x, &olik, &otop, &onow, &onow_top);
    }
    if (cfg->burst_memory) /* not above a burst shown since the training (detector_burst.c) */
        dlik = detector__burst_cap(d, mavg, dlik);
    /* shift_len: the step test (detector_shift.c) joins the operating point's likelihood; it
     * guards its own opening (the median of the step's readings), so it passes onow's. */
    struct detector__shift sh = {.lik = 0.0f, .top = -1};
    if (cfg->shift_len > 0) {
        detector__shift_eval(d, x, &sh);
        if (sh.lik > olik) {
            olik = onow = sh.lik;
            otop = sh.top;
        }
    }
    /* season_opinion: a found-but-not-chosen seasonal profile's deviation (detector_opinion.c)
     * joins the reported score (bit 1) and the operating point's likelihood in the decision
     * (bit 2), for one channel too. */
    float plik = 0.0f, pnow = 0.0f, palik = 0.0f; /* palik: season_accum's */
    int ptop = -1;
    int lik_err = 1; /* the score's likelihood is the error's (onset_now reads its readings) */
    if (cfg->season_opinion && d->n_op > 0) {
        detector__opinion_eval(d, x, &plik, &pnow, &ptop, &palik);
        lik = error_on_opinion_scale(d, lik); /* dlik, the decision's, was taken above */
        if ((cfg->season_opinion & 2) && plik > olik) {
            olik = plik;
            onow = pnow;
            otop = ptop;
        }
        if ((cfg->season_opinion & 1) && (plik > lik || palik > lik)) {
            lik = plik > palik ? plik : palik;
            lik_err = 0;
        }
    }
    int by_opin = cfg->opinion_open && opinion_onset(d, plik, palik, d->det_state);
    float elik = dlik; /* the error's decision likelihood alone */
    if (olik > dlik)
        dlik = olik;
    /* Numenta's filter: an alarm-level reading right after another one is reported at
     * repeat_cap, so the score marks where an excursion starts (the state keeps the alarm). */
    /* confirm = 2: the previous reading's decision likelihood was at alarm level too. */
    int confirmed = cfg->confirm < 2 || d->dred;
    float red = cfg->score_level > 0.0f ? cfg->score_level : cfg->alarm_level;
    float score = lik >= red && d->since_red < cfg->refractory && lik > cfg->repeat_cap
                      ? cfg->repeat_cap
                      : lik;
    /* range_far: a reading far beyond every value its device has shown is an onset whatever
     * the model predicted (not within the onset filter's refractory: an excursion under way
     * goes on). It counts as one in the rank's memory (quiet_n, the rate, the rhythm), not in
     * since_red, which the decision reads (shift_confirm): only range_open acts on that. */
    int far_top;
    const double far_u = detector__range_excess(d, x, &far_top);
    const int far = far_top >= 0 && far_u > cfg->range_far && d->since_red >= cfg->refractory;
    /* mean_far: the short mean's first reading beyond every value the device has shown is an
     * onset too, ranked as a record of the device's values (not within the refractory: the
     * likelihood marked that excursion's onset already). Its memory is one flag (mf_on). */
    const int mf_now = detector__mean_excess(d, x) > cfg->mean_far;
    const int mfar = mf_now && !d->mf_on && d->since_red >= cfg->refractory;
    d->mf_on = mf_now;
    const int red_now = lik >= red || far || mfar;
    const int onset = cfg->onset_record > 0.0f && ((lik >= red && score == lik) || far || mfar);
    if (onset && lik >= red && score == lik)
        score = detector__onset_rank(d, x, lik, red, 0, lik_err && onset_past(d, red));
    if (far && detector__far_rank(d, far_u, red) > score)
        score = detector__far_rank(d, far_u, red);
    if (onset && mfar && detector__onset_rank(d, x, red, red, 1, 0) > score)
        score = detector__onset_rank(d, x, red, red, 1, 0);
    detector__onset_rate_note(d, onset);
    detector__rhythm_note(d, onset);
    detector__range_note(d, x);
    d->since_red = lik >= red ? 0 : d->since_red < (1 << 30) ? d->since_red + 1 : d->since_red;
    d->quiet_n = red_now ? 0 : d->quiet_n < (1 << 30) ? d->quiet_n + 1 : d->quiet_n;
    d->dred = dlik >= cfg->alarm_level;
    res->likelihood = dlik;

    /* The state machine. An episode starts on the likelihood of the short mean; inside one,
     * hold_median judges it on the median raw score of the episode's readings so far (at
     * most err_short): one wild reading keeps the mean up for err_short readings, but not the
     * median, so a spike makes a short episode while a lasting fault holds it; hold_recent
     * lets go once the newest readings are each normal (hold_recent_cap). */
    enum detector_state st = d->det_state == DET_LEARNING ? DET_NORMAL : d->det_state;
    float hold = dlik;
    int decayed = 0; /* hold_decay let go of the error's hold */
    /* hold_decay: the episode's peak, kept up to date in it and for err_short readings after. */
    if (detector__decay_applies(d) &&
        (st == DET_ANOMALY || (st == DET_NORMAL && d->below > 0 && d->below <= cfg->err_short)))
        detector__decay_note(d, x, 0);
    if (st == DET_ANOMALY && cfg->hold_median) {
        int k = d->in_anomaly + 1 < d->short_len ? d->in_anomaly + 1 : d->short_len;
        hold = hold_recent_cap(
            d, detector__likelihood_score(d, detector__recent_median(d, k), cfg->tail_plain), k);
        if (hold >= cfg->clear_level && detector__echo_back(d, x))
            hold = 0.0f; /* hold_echo: the values are back, the error is the burst's echo */
        /* hold_decay: a spike's decay, within DECAY_SPAN short windows of its opening (as
         * burst_wide's bursts); an episode held longer is a lasting change, which it leaves. */
        if (hold >= cfg->clear_level && d->in_anomaly < DECAY_SPAN * cfg->err_short &&
            detector__decay_back(d, x)) {
            hold = 0.0f; /* hold_decay: the values have decayed most of the way back */
            decayed = 1;
        }
        if (hold >= cfg->clear_level && hold_seen_lets_go(d))
            hold = 0.0f; /* HOLD_SEEN: a repeat of what the device has shown, back on its own */
    }
    /* offset_release: the error's own hold, where it holds the episode, lets go of a steady
     * offset (detector__error_is_offset); the operating point's and the step's holds below are
     * untouched, and on a device whose levels they judge the error keeps its hold. */
    int offset = st == DET_ANOMALY && hold >= cfg->clear_level && !level_tests_judge(d) &&
                 detector__error_is_offset(d) && !detector__channel_drifts(d);
    if (offset)
        hold = 0.0f;
    if (st == DET_ANOMALY && (cfg->hold_median || offset) && olik > hold)
        hold = olik;
    int rel_ch1 = 0, settled = 0;
    if (st == DET_ANOMALY && d->sh_ch1 > 0) {
        float sh_hold = detector__shift_hold(d, x, &sh); /* the step it found persists */
        if (sh_hold < 0.0f) {
            rel_ch1 = d->sh_ch1;
            d->sh_ch1 = 0; /* released: the step went back (shift_release) */
        }
        if (sh_hold > hold)
            hold = sh_hold;
    }
    /* settle_release: the step that set the episode off has come back to its level; what
     * still holds the episode is the state the device settled into after the fault. */
    if (st == DET_ANOMALY && cfg->settle_release && d->sh_ch1 == 0)
        settled = detector__shift_settle(d, x, rel_ch1);
    if (settled)
        hold = 0.0f;
    /* Right after an anomaly ends (below > 0 in state normal: readings since; the short window
     * still holds the episode's readings), a new one is judged as the ended one was: with
     * hold_median on the median of the short window, so the mean the episode left behind
     * cannot reopen it at once (one alarm would flap into several), nor raise a warning. */
    float open_err = elik;
    if (st == DET_NORMAL && d->below > 0 && d->below <= cfg->err_short && cfg->hold_median) {
        /* Not above a burst shown since the training either, as the short mean is not. */
        double med = detector__recent_median(d, d->short_len);
        open_err =
            hold_recent_cap(d, detector__likelihood_score(d, med, cfg->tail_plain), d->short_len);
        if (cfg->burst_memory)
            open_err = detector__burst_cap(d, med, open_err);
        /* hold_echo: the burst still in the short window reopens nothing while the values
         * are back and the error still its echo (what ended the episode). */
        if (open_err >= cfg->alarm_level && detector__echo_back(d, x))
            open_err = nextafterf(cfg->alarm_level, 0.0f);
    }
    /* An opening on the operating point alone (the error's likelihood below the level) needs
     * this reading's own distance at clear_level: the short mean remembers a spike, the
     * reading does not. */
    /* record_open: an excursion within the device's record since the training opens only at
     * record_open; below it, its error raises a warning at most. record_open_one raises that
     * level where the level tests do not judge (record_level). */
    /* record_young: in the first err_short readings after a training no record exists yet
     * (record_excess NaN), so nothing is "within" it: the error opens at alarm_level. The
     * record is read only when the error would open (most readings never get that far). */
    if (open_err >= cfg->alarm_level && st != DET_ANOMALY && open_err < record_level(d) &&
        !rare_onset_opens(d, confirmed)) {
        const double rexc = detector__record_excess(d);
        if (!(rexc > 0.0) && !(cfg->record_young && isnan(rexc)))
            open_err = nextafterf(cfg->alarm_level, 0.0f);
    }
    int by_op = olik >= cfg->alarm_level && open_err < cfg->alarm_level;
    float open = olik > open_err && (!by_op || onow >= cfg->clear_level) ? olik : open_err;
    by_op = by_op && open >= cfg->alarm_level;
    /* shift_confirm: the step test is its own confirmation: its window of 2 shift_len
     * readings and its median guard do for a step what confirm = 2 does for a short mean. Not
     * while that window holds a reading whose likelihood reached score_level: an excursion of
     * the error (a burst of spikes) bends both lines, and the test flickers at the level for
     * as long as the excursion is in its window (one-reading episodes, one after another). */
    if (cfg->shift_confirm && sh.lik >= cfg->alarm_level && d->since_red >= 2 * cfg->shift_len)
        confirmed = 1;
    /* warn_run: a warning that has lasted opens as an alarm-level reading does; the run is
     * its confirmation (the previous reading need not be at alarm level). */
    int by_run = 0;
    if (cfg->warn_run > 0 && st != DET_ANOMALY) {
        by_run = warn_run_open(d, open, cfg->warn_region && beyond_region(d, x));
        confirmed |= by_run;
    }
    /* open_median: the median raw score of the last open_median readings must itself reach
     * clear_level (taken as a short mean), the level that holds an episode, or the episode
     * would end on its next reading: a short mean lifted by one reading, or by readings
     * that are each only slightly high, opens nothing (nor does a run that ends in such). */
    if (st != DET_ANOMALY && (open >= cfg->alarm_level || by_run) && confirmed &&
        cfg->open_median > 0 && !by_op) {
        int k = cfg->open_median < d->short_len ? cfg->open_median : d->short_len;
        if (detector__likelihood_score(d, detector__recent_median(d, k), cfg->tail_plain) <
            cfg->clear_level)
            confirmed = 0;
    }
    /* opinion_open: a second opinion's onset opens where nothing else does; as the operating
     * point's, its opening is told as `level` and names the profile's channel. */
    int opens = (open >= cfg->alarm_level || by_run) && confirmed;
    by_opin = by_opin && !opens;
    if (by_opin) {
        by_op = 1;
        otop = ptop;
    }
    /* range_open: a reading far beyond the device's range opens where nothing else does, told
     * as `level` (a channel where it has never been) and naming that channel. */
    int by_far = cfg->range_open && far && st != DET_ANOMALY && !opens && !by_opin;
    if (by_far) {
        by_op = 1;
        otop = far_top;
    }
    /* trip_level (docs/detection.md, seventy-ninth round): a reading whose reported score is at
     * least trip_level is an alarm at once, without confirm's second reading or open_median's
     * guard. A plant's trip-level alarm has no on-delay: an on-delay keeps a nuisance alarm
     * quiet, and an onset ranked far beyond everything the device has shown since its
     * training, after a quiet, is not one. Only the reported state takes it (below): the state
     * machine and everything it feeds (the long window's freeze, the burst memory, the decay's
     * rules) go on as without it, so the reported scores are the same. Only the error's own
     * onsets trip (its likelihood at score_level): mean_far's rank raises the score of a short
     * mean beyond the device's values without the error, and opens nothing by design (healthy
     * simulated pumps meeting a new speed after the daemon's first training: session 47). */
    const int trip = cfg->trip_level > 0.0f && st != DET_ANOMALY && score >= cfg->trip_level &&
                     lik >= red && !opens && !by_opin && !by_far;
    /* hold_decay: in the err_short readings after an episode it ended, nothing opens while the
     * decay goes on (no new peak, the value still back that far): the operating point, the step
     * test and the short mean still hold the spike the episode was, and would reopen it on its
     * own decay. A new excursion (a new peak) opens as before. */
    if (st != DET_ANOMALY && d->dk_left > 0 && detector__decay_back(d, x))
        opens = by_opin = by_far = 0;
    if (st != DET_ANOMALY && (opens || by_opin || by_far)) {
        st = DET_ANOMALY;
        /* The step test wins a tie with the operating point (olik is the larger of them). */
        res->opened_by = by_run                                  ? DET_OPEN_LASTING
                         : !by_op                                ? DET_OPEN_ERROR
                         : !by_opin && !by_far && sh.lik >= olik ? DET_OPEN_STEP
                                                                 : DET_OPEN_LEVEL;
        run_reset(d);
        if (detector__echo_applies(d) || detector__decay_applies(d))
            detector__echo_freeze(d);
        if (detector__decay_applies(d))
            detector__decay_note(d, x, 1);
        d->below = 0;
        if (by_op && otop >= 0) {
            /* The operating point (or the opinion) opened it: the channel that left its level. */
            memset(res->contrib, 0, sizeof(float) * (size_t)C);
            res->contrib[otop] = 1.0f;
            res->top_channel = otop;
        } else if (cfg->confirm > 1) {
            /* The episode opens on the second reading at alarm level: its channel shares
             * cover both, weighted by their errors, so the reading that set it off counts. */
            double wp = expm1((double)d->prev_raw), wc = expm1((double)raw);
            if (wp + wc > 0.0)
                for (int c = 0; c < C; c++)
                    res->contrib[c] =
                        (float)((wp * d->prev_contrib[c] + wc * res->contrib[c]) / (wp + wc));
            res->top_channel = top_scored(cfg, res->contrib, C);
        }
    } else if (st == DET_NORMAL && open >= cfg->warn_level) {
        st = DET_WARNING;
        d->below = 0;
    } else if (st == DET_WARNING && dlik >= cfg->clear_level) {
        d->below = 0;
    } else if (st == DET_ANOMALY && hold >= cfg->clear_level) {
        d->below = 0;
    } else if (st != DET_NORMAL && ++d->below >= cfg->clear_count) {
        d->below = st == DET_ANOMALY; /* counts on in normal after an anomaly (see open) */
        st = DET_NORMAL;
    } else if (st == DET_NORMAL && d->below > 0 && d->below <= cfg->err_short) {
        d->below++;
    }
    res->released = (settled || offset) && st == DET_NORMAL;
    if (cfg->burst_memory)
        detector__burst_note(d, st, mavg, res->released);
    if (res->released) {
        /* The state the device settled into is learnt, as an accepted regime is (a training
         * is asked for); until that training applies, the error's short mean no higher than
         * now reopens nothing, as a burst the device has shown (burst_memory). A steady
         * offset goes on after its release until then (the daemon's training applies
         * readings later, not on this one as vigil-replay's), and its next short means
         * scatter around this one: kept at the short window's largest raw score instead, so
         * the offset's own noise does not reopen it at once (tests/integration/
         * test_events.py, SettledLevel; the cap also bounds the median that judges an
         * opening right after an episode, open_err above). */
        d->due_at = d->n_seen + 1;
        if (cfg->burst_memory)
            detector__burst_keep(d, (float)(offset ? detector__short_max(d) : mavg), d->n_seen);
    }
    /* accept_grow: an episode is accepted only by the block that finds its error no longer
     * growing (ep_accepted); one held past accept_after that ends before that was not. */
    const int grow = cfg->accept_grow > 0.0f;
    if (d->det_state == DET_ANOMALY && st != DET_ANOMALY) {
        res->ended_by = d->ep_accepted || (!grow && detector__ep_len(d) >= cfg->accept_after)
                            ? DET_END_ACCEPTED
                        : res->released ? DET_END_RELEASED
                                        : DET_END_CLEARED;
        d->ep_accepted = 0;
    }
    /* hold_decay: the short window still holds the decay for err_short readings after the
     * episode it ended; the long window learns none of them, as it would have learnt none had
     * the episode been held through them (their short means would widen its tail and lower
     * the score of the next excursion). */
    if (decayed && st == DET_NORMAL && d->det_state == DET_ANOMALY)
        d->dk_left = cfg->err_short;
    const int decay_frozen = d->dk_left > 0;
    if (d->dk_left > 0)
        d->dk_left--;
    /* trip_level: the state machine opening on the reading after a trip continues the trip's
     * episode (below), whose first reading the acceptance counts too (d->tripped is still the
     * previous reading's here). */
    if (st != DET_ANOMALY)
        d->ep_trip = 0;
    else if (d->det_state != DET_ANOMALY)
        d->ep_trip = d->tripped;
    /* an episode's count stops at 2^30, the bound it loads within */
    d->in_anomaly = st != DET_ANOMALY           ? 0
                    : d->in_anomaly < (1 << 30) ? d->in_anomaly + 1
                                                : d->in_anomaly;
    d->det_state = st;

    /* Accepted for the rest of the episode: the training the acceptance asked for zeroes
     * in_anomaly, and when it applies a reading or more later (the daemon's, whose window ends
     * at the reading that asked) the freeze and the step hold would otherwise start over. */
    const int ripe = grow ? st == DET_ANOMALY && !d->ep_accepted && grow_note(d, e)
                          : detector__ep_len(d) == cfg->accept_after;
    int accepted = (!grow && detector__ep_len(d) >= cfg->accept_after) || d->ep_accepted || ripe;
    if (ripe) {
        d->due_at = d->n_seen + 1; /* the regime has lasted: learn it */
        d->ep_accepted = 1;
    }
    const int learn = !cfg->freeze || (st != DET_ANOMALY && !decay_frozen) || accepted;
    if (cfg->shift_len > 0)
        detector__shift_after(d, x, &sh,
                              st == DET_ANOMALY && !accepted && d->sh_ch1 == 0 &&
                                  sh.lik >= cfg->alarm_level,
                              st == DET_ANOMALY && !accepted, learn);
    if (learn) {
        detector__ring_push(d, (float)mavg);
        if (cfg->season_opinion)
            detector__opinion_push(d, plik, palik);
        if (cfg->op_point && d->op_n >= 0.0) {
            d->op_n += 1.0;
            for (int c = 0; c < C; c++) {
                d->op_sum[c] += d->op_ew[c];
                d->op_sumsq[c] += d->op_ew[c] * d->op_ew[c];
            }
        }
    }

    memcpy(d->prev_contrib, own, sizeof(float) * (size_t)C);
    d->prev_raw = raw;
    res->score = score;
    res->threshold = cfg->alarm_level;
    /* The trip: the reading alone in state anomaly, opened as the error's. The reading after
     * it ends that episode cleared unless it trips again or the state machine opens (then the
     * episode goes on, not opened again); d->tripped remembers it across a save. */
    const int was_trip = d->tripped;
    d->tripped = trip && st != DET_ANOMALY;
    res->state = d->tripped ? DET_ANOMALY : st;
    if (d->tripped && !was_trip)
        res->opened_by = DET_OPEN_ERROR;
    else if (was_trip && res->state == DET_ANOMALY)
        res->opened_by = DET_OPEN_NONE;
    else if (was_trip)
        res->ended_by = DET_END_CLEARED; /* the state machine ended nothing: it was not open */
    res->is_anomaly = res->state == DET_ANOMALY;
}

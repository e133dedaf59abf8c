/* model/detector_shift.c: a step test per channel (shift_len, eleventh round).
 *
 * A fault that changes a plant's state (a valve stuck part-closed) moves a channel's mean
 * abruptly and leaves it there, while healthy channels also drift (temperatures) by as much or
 * more. A test of the level alone cannot tell the two apart; a test for a step in the mean
 * against a local trend can (residual change detection: Basseville & Nikiforov, "Detection of
 * Abrupt Changes", 1993, ch. 7, a likelihood ratio for an additive jump with the trend a
 * nuisance parameter). Per channel c with a level (lscale > 0: not predicted by persistence),
 * in training spreads l = (x - lmean) / lscale, over the newest W = 2 q readings (q = shift_len,
 * at most half the context ring plus the reading being scored):
 *
 *   P = the older q of them, Q = the newer q; a least-squares line is fitted to each.
 *   step = (Q's line) - (P's line), both at the change point between them.
 *
 * A drift, however far it goes, is continuous at the change point, and so is a drift that
 * speeds up (a kink); a step is not. The price of the two slopes is precision: for white noise
 * of deviation s the estimate's deviation is s / 2 at q = 32, twice that of the plain
 * difference of the two means (measured in docs/detection.md, "Eleventh round").
 *
 * The estimate's null spread is the channel's own: its mean and deviation over the readings
 * since the last training (frozen in an episode, as the long window is; judged once 2 W of them
 * are in), the deviation floored at SHIFT_SD_FLOOR training spreads. This takes in the channel's
 * autocorrelation and curvature, which a white-noise model of the residuals would not (a
 * temperature's residual around a line is small but smooth). The statistic is |step - mean| /
 * deviation; it counts only when the step takes the channel further from its mean level since
 * the training (|mean(Q) - m| > |mean(P) - m|), so a faulty channel's return to its level opens
 * nothing, and only when the median of Q lies beyond the midpoint of mean(P) and mean(Q) (one
 * wild reading moves a mean, not the median). The likelihood is the most extreme channel's
 * two-sided Gaussian tail, times the channels judged (Bonferroni) and 2 (one more likelihood the
 * state looks at), on the decision's log scale, as op_point's (detector_score.c). Devices with
 * fewer than two channels with a level are not judged: a single channel's step is its
 * prediction error's to see (and NAB, one channel, stays as it was).
 *
 * An episode in which the test reaches alarm_level (opening it, or later: the one-step error
 * often flags a step's first readings and then lets go) is held while that channel's level
 * (mean(Q)) stays nearer the level the step went to than the channel's mean since the training
 * (frozen): a stuck valve stays flagged, whatever its size against the noise, until it is fixed
 * or its regime is accepted (accept_after), which drops the hold. A training's reseed empties the
 * reference and drops the hold (the levels' units change).
 *
 * shift_release (sixteenth round): the fault's end is itself a step, back toward the level
 * before it (a valve reopening). The hold above waits for mean(Q) to cross the midpoint, about
 * q / 2 readings after the return; with shift_release the held channel's step estimate (the
 * one the test judges it on, against the same reference) ends the hold as soon as it shows a
 * step back toward the mean level since the training that is significant at alarm_level for
 * the one channel (no Bonferroni factor: the channel is named in advance; 4.32 deviations at
 * the default 0.45). The share of the original step this needs is thus set by the estimate's
 * precision (the step that armed the hold was at least 4.76 deviations, with C = 8), not by a
 * fraction chosen for it. The release drops the hold (a later step at alarm level may arm it
 * again in the same episode); other terms may still hold the episode.
 *
 * settle_release (eighteenth round): when the hold that shift_release dropped was armed within q
 * readings of the episode's opening (the step set the episode off), its channel is watched
 * (detector__shift_settle) until it has landed back near its level since the training
 * (returned); the episode then ends, whatever else still holds it: the fault has ended, and what
 * differs now is the state the device settled into after it (detector_score.c asks for a
 * training, as an accepted regime does).
 *
 * Cost: O(C) a reading (session 10). The two fits need four sums per channel over the window
 * (detector_int.h, sw_sum and sw_suv); they are moved on by one reading as the context ring
 * takes it (detector__shift_push, which reads the row that leaves the window and the row that
 * moves from Q to P), so a reading touches three ring rows, not W: at 10,000 devices those
 * rows are cache misses (docs/benchmarks.md, "Session 9" and "Session 10"). A channel's window
 * is copied out only for the median, where it can matter. No allocation: the arrays are [C]
 * in the detector's block. Threading: owner thread of the detector. */
#include <math.h>
#include <string.h>

#include "detector_int.h"

/* The step estimate's deviation is never taken below this many training spreads: a channel
 * steadier since the training than in it (a quantised one) would otherwise alarm on any step. */
#define SHIFT_SD_FLOOR 0.1
/* settle_release: a step counts as gone back only if it was at least this many of the channel's
 * present robust deviations (returned). */
#define SETTLE_NOISE 2.0
/* settle_release: "back near its level" is within this share of the step's size of it. */
#define SETTLE_NEAR 0.25

/* shift_winsor: the share of a standard Gaussian's variance that its winsorising at h keeps,
 * E[min(z^2, h^2)] (1 when off). The winsorised variance over it estimates the noise's. */
static double winsor_keep(double h)
{
    if (!(h > 0.0))
        return 1.0;
    const double tail = erfc(h / M_SQRT2); /* P(|z| > h) */
    return 1.0 - tail - 2.0 * h * exp(-0.5 * h * h) / sqrt(2.0 * M_PI) + h * h * tail;
}

/* The mean and deviation (floored at SHIFT_SD_FLOOR) of a step estimate over the n readings
 * of the reference, from its sums; with shift_winsor, the winsorised variance over the share
 * of a Gaussian's that winsorising keeps. */
static double ref_sd(const detector_t *d, double sum, double sumsq, double n, double *mean_out)
{
    double mu = sum / n, var = (sumsq / n - mu * mu) / winsor_keep(d->cfg.shift_winsor);
    double sd = var > 0.0 ? sqrt(var) : 0.0;
    *mean_out = mu;
    return sd < SHIFT_SD_FLOOR ? SHIFT_SD_FLOOR : sd;
}

/* shift_winsor: estimate e as it enters the reference whose sums are sum and sumsq: within
 * shift_winsor of its deviations of its mean (as it stands: before the estimate), once the
 * reference is judged on (n >= W: before, it has no settled deviation to pull in by). */
static double winsor(const detector_t *d, double e, double sum, double sumsq, int judged)
{
    if (!(d->cfg.shift_winsor > 0.0f) || !judged)
        return e;
    double mu, lim = d->cfg.shift_winsor * ref_sd(d, sum, sumsq, d->sh_n, &mu);
    return e > mu + lim ? mu + lim : e < mu - lim ? mu - lim : e;
}

/* Channel c's step estimate as the test judges it, with its reference's mean and deviation
 * (*mu, *sd): the lines' jump, or with shift_plain whichever of it and the plain difference
 * has varied less on this channel since the training. Both measure a clean step at the change
 * point in full, so the less varied one is the more sensitive test: the plain difference on
 * noise around a level, the lines' jump on a drift. Needs d->sh_n > 0. */
static double judged_step(const detector_t *d, const struct detector__shift *sh, int c, double *mu,
                          double *sd)
{
    *sd = ref_sd(d, d->sh_sum[c], d->sh_sumsq[c], d->sh_n, mu);
    if (d->cfg.shift_plain) {
        double pmu, psd = ref_sd(d, d->sh_psum[c], d->sh_psumsq[c], d->sh_n, &pmu);
        if (psd < *sd) {
            *mu = pmu;
            *sd = psd;
            return sh->pstep[c];
        }
    }
    return sh->step[c];
}

/* q readings after the change, q before it: the context ring holds the 2 q - 1 before the
 * reading being scored (0: the test cannot run yet). */
static int shift_q(const detector_t *d)
{
    int q = d->cfg.shift_len < DETECTOR_MAX_SHIFT ? d->cfg.shift_len : DETECTOR_MAX_SHIFT;
    if (q > (d->ctx_cap + 1) / 2)
        q = (d->ctx_cap + 1) / 2;
    return q >= 2 && d->ctx_len >= 2 * q - 1 ? q : 0;
}

/* Channel c's raw readings over the window, oldest first, into v[W] (the last is x's). */
static void window_raw(const detector_t *d, const float *x, int c, int W, double *v)
{
    const int C = d->C, cap = d->ctx_cap;
    int row = ((d->ctx_head - (W - 1)) % cap + cap) % cap;
    for (int i = 0; i < W - 1; i++) {
        v[i] = d->ctx[(size_t)row * C + c];
        if (++row == cap)
            row = 0;
    }
    v[W - 1] = x[c];
}

/* The median of n values (n <= DETECTOR_MAX_SHIFT), by insertion sort of a copy. */
static double median(const double *v, int n)
{
    double t[DETECTOR_MAX_SHIFT];
    for (int i = 0; i < n; i++) {
        double a = v[i];
        int j = i;
        for (; j > 0 && t[j - 1] > a; j--)
            t[j] = t[j - 1];
        t[j] = a;
    }
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* a + b, with *inexact set when the sum was rounded. For |a| >= |b|, s - a is computed exactly
 * (Dekker's Fast2Sum lemma), so it equals b only when s is a + b; the test with the operands
 * swapped covers |b| > |a|, and an exact sum passes both. */
static inline double add_x(double a, double b, int *inexact)
{
    const double s = a + b;
    *inexact |= (s - a != b) | (s - b != a);
    return s;
}

/* The window sums rebuilt from the context ring's newest 2 q - 1 rows (the window without the
 * reading being scored), each channel's sums added oldest row first: the order in which a fit
 * of that channel's window alone adds them, so the fits that follow are that fit's to the bit.
 * Valid (sw_ok) only if no addition rounded. */
static void sums_rebuild(detector_t *d, int q)
{
    const int C = d->C, cap = d->ctx_cap, W = 2 * q;
    const double m = 0.5 * (q - 1);
    int inexact = 0;
    for (int h = 0; h < 2; h++) {
        memset(d->sw_sum[h], 0, sizeof(double) * (size_t)C);
        memset(d->sw_suv[h], 0, sizeof(double) * (size_t)C);
    }
    int row = ((d->ctx_head - (W - 1)) % cap + cap) % cap;
    for (int i = 0; i < W - 1; i++) {
        const float *r = d->ctx + (size_t)row * C;
        const int h = i >= q;
        const double u = (h ? i - q : i) - m;
        double *s = d->sw_sum[h], *t = d->sw_suv[h];
        for (int c = 0; c < C; c++) {
            s[c] = add_x(s[c], r[c], &inexact);
            t[c] = add_x(t[c], u * r[c], &inexact);
        }
        if (++row == cap)
            row = 0;
    }
    d->sw_ok = !inexact;
}

void detector__shift_push(detector_t *d, const float *x)
{
    /* The window before x: w_0 .. w_{2q-2}, the ring's newest 2 q - 1 rows; after it w_1 ..
     * w_{2q-1}, w_{2q-1} = x. a = w_0 leaves, b = w_q moves from Q to P. With m = (q - 1) / 2,
     * S_P = sum_{i<q} w_i and T_P = sum_{i<q} (i - m) w_i:
     *   S_P' = S_P - a + b,
     *   T_P' = sum_{i<q} (i - m) w_{i+1} = sum_{1<=j<=q} (j - m) w_j - sum_{1<=j<=q} w_j
     *        = (T_P + m a + (q - m) b) - S_P' = T_P - S_P + (m + 1) a + m b   (q - m = m + 1);
     * and over Q's q - 1 rows w_{q+j}, j < q - 1, S_Q and T_Q = sum (j - m) w_{q+j} likewise:
     *   S_Q' = S_Q - b + x,
     *   T_Q' = (T_Q + m b + (q - 1 - m) x) - S_Q' = T_Q - S_Q + (m + 1) b + (m - 1) x.
     * Drift: each term is a float reading times a multiple of 1/2 below 33, exact in a double,
     * and every addition is checked (add_x). While none rounds, the sums are the exact sums of
     * the rows they cover, however many readings they have been carried: no error accumulates,
     * so no periodic rebuild is needed, and the fits are a direct fit's to the bit whenever that
     * fit's own additions are exact (a channel's readings within about 2^18 of each other in
     * magnitude). An update that would round (a reading of 1e9 among readings of 1e-3) drops
     * the sums instead, and the test rebuilds them from the ring in a direct fit's order, at
     * the old cost, for as long as such a reading is in the window. */
    const int q = shift_q(d);
    if (!d->sw_ok || q == 0) {
        d->sw_ok = 0;
        return;
    }
    const int C = d->C, cap = d->ctx_cap;
    const double m = 0.5 * (q - 1);
    const float *ra = d->ctx + (size_t)(((d->ctx_head - (2 * q - 1)) % cap + cap) % cap) * C;
    const float *rb = d->ctx + (size_t)(((d->ctx_head - (q - 1)) % cap + cap) % cap) * C;
    double *sp = d->sw_sum[0], *tp = d->sw_suv[0], *sq = d->sw_sum[1], *tq = d->sw_suv[1];
    int inexact = 0;
    for (int c = 0; c < C; c++) {
        const double a = ra[c], b = rb[c], v = x[c];
        double t = add_x(add_x(tp[c], -sp[c], &inexact), (m + 1.0) * a, &inexact);
        tp[c] = add_x(t, m * b, &inexact);
        sp[c] = add_x(add_x(sp[c], -a, &inexact), b, &inexact);
        t = add_x(add_x(tq[c], -sq[c], &inexact), (m + 1.0) * b, &inexact);
        tq[c] = add_x(t, (m - 1.0) * v, &inexact);
        sq[c] = add_x(add_x(sq[c], -b, &inexact), v, &inexact);
    }
    d->sw_ok = !inexact;
}

/* The least-squares fits of P (the older q of the window) and Q (the newer q) for every
 * channel: the window sums (rebuilt first if not valid) with the reading x, the window's last,
 * added to Q's as a direct fit adds it (last), so the results are that fit's to the bit. */
struct shift_fits {
    double sum[2][DETECTOR_MAX_CHANNELS]; /* [0]: P, [1]: Q */
    double suv[2][DETECTOR_MAX_CHANNELS]; /* sum of (i - m) v, i the index within P or Q */
};

int detector__shift_sums(detector_t *d)
{
    const int q = shift_q(d);
    if (q > 0 && !d->sw_ok)
        sums_rebuild(d, q);
    return q;
}

static void window_fits(detector_t *d, const float *x, int q, struct shift_fits *f)
{
    const double m = 0.5 * (q - 1); /* x's index within Q, q - 1, less Q's middle */
    detector__shift_sums(d);
    for (int c = 0; c < d->C; c++) {
        f->sum[0][c] = d->sw_sum[0][c];
        f->suv[0][c] = d->sw_suv[0][c];
        f->sum[1][c] = d->sw_sum[1][c] + x[c];
        f->suv[1][c] = d->sw_suv[1][c] + m * x[c];
    }
}

/* The least-squares line of n readings (n >= 2) whose sums are sum and suv (window_fits), at
 * u = at (u = 0 at the middle, so the slope is suv / sum(u^2), sum(u^2) = n (n^2 - 1) / 12);
 * *mean_out gets the mean. */
static double line_at(double sum, double suv, int n, double at, double *mean_out)
{
    const double sxx = n * ((double)n * n - 1.0) / 12.0;
    *mean_out = sum / n;
    return sum / n + suv / sxx * at;
}

/* 1 when an input channel (cfg.input) took more than one value over the newest n readings
 * (x and the n - 1 before it that the context ring holds). A set point is piecewise constant, so
 * any change is a switch; an input that never holds still (a noisy measured control) counts as
 * always moving. */
static int input_moved(const detector_t *d, const float *x, int n)
{
    const int back = n - 1 < d->ctx_len ? n - 1 : d->ctx_len;
    for (int c = 0; c < d->C; c++) {
        if (!d->cfg.input[c])
            continue;
        for (int k = 0; k < back; k++)
            if (detector__ctx_back(d, k)[c] != x[c])
                return 1;
    }
    return 0;
}

void detector__shift_eval(detector_t *d, const float *x, struct detector__shift *sh)
{
    sh->lik = 0.0f;
    sh->top = -1;
    sh->pre = sh->post = 0.0;
    sh->valid = 0;
    const int q = shift_q(d), p = q, W = 2 * q;
    if (q == 0)
        return;
    int k = 0;
    for (int c = 0; c < d->C; c++)
        k += d->lscale[c] > 0.0f;
    if (k < 2)
        return;
    sh->valid = 1;
    const int judged = d->sh_n >= 2.0 * W;
    double tmax = -1.0, v[2 * DETECTOR_MAX_SHIFT];
    struct shift_fits f;
    window_fits(d, x, q, &f);
    for (int c = 0; c < d->C; c++) {
        sh->step[c] = 0.0;
        if (!(d->lscale[c] > 0.0f))
            continue;
        /* In raw units, then in training spreads (levels are affine in the readings). */
        const double m = d->lmean[c], sc = d->lscale[c];
        /* The jump at the change point between P's line and Q's line: a kink (a drift that
         * speeds up) is continuous there, a step is not. */
        double pre, qm;
        double step = (line_at(f.sum[1][c], f.suv[1][c], q, -0.5 * q, &qm) -
                       line_at(f.sum[0][c], f.suv[0][c], p, 0.5 * p, &pre)) /
                      sc;
        pre = (pre - m) / sc;
        qm = (qm - m) / sc;
        sh->level[c] = qm;
        sh->step[c] = isfinite(step) ? step : 0.0;
        sh->pstep[c] = isfinite(qm - pre) ? qm - pre : 0.0;
        if (!judged)
            continue;
        double mu, sd, est = judged_step(d, sh, c, &mu, &sd);
        double lm = d->sh_lsum[c] / d->sh_n;
        double t = fabs(est - mu) / sd;
        if (!(fabs(qm - lm) > fabs(pre - lm)) || !(t > tmax))
            continue;
        /* A channel whose tail alone makes the likelihood 0 cannot raise it: the median (a
         * sort) is left out for it, as for most readings of a healthy device. */
        if (2.0 * k * erfc(t / M_SQRT2) >= 1.0)
            continue;
        /* Q's median beyond the midpoint of the two levels, on the step's side. */
        window_raw(d, x, c, W, v);
        double med = (median(v + p, q) - m) / sc;
        if (!((med - 0.5 * (pre + qm)) * (qm - pre) > 0.0))
            continue;
        tmax = t;
        sh->top = c;
        sh->pre = pre;
        sh->post = qm;
    }
    /* A step in a window where an input moved is the input's doing (a set point switched and
     * the channels that follow it stepped with it): the test's statistics take it as any step,
     * but it judges nothing until the window holds the input still again; the prediction
     * error, which reads the input, judges those readings. */
    if (sh->top >= 0 && input_moved(d, x, W))
        sh->top = -1;
    if (sh->top < 0)
        return;
    double tail = 2.0 * k * erfc(tmax / M_SQRT2); /* two-sided (erfc), k channels, times 2 */
    double s = log((tail < 1.0 ? tail : 1.0) + 1e-10) / log(1e-10);
    sh->lik = (float)(s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s);
}

float detector__shift_hold(const detector_t *d, const float *x, const struct detector__shift *sh)
{
    const int q = shift_q(d), c = d->sh_ch1 - 1;
    if (q == 0 || c < 0 || c >= d->C || !(d->lscale[c] > 0.0f))
        return 0.0f;
    /* The channel's level: the newer q readings' mean, as the test computed it this reading
     * (the same sum in the same order when the hold reads it itself). */
    double qm = 0.0;
    if (sh->valid) {
        qm = sh->level[c];
    } else {
        double v[2 * DETECTOR_MAX_SHIFT];
        window_raw(d, x, c, 2 * q, v);
        for (int i = q; i < 2 * q; i++)
            qm += v[i];
        qm = (qm / q - d->lmean[c]) / d->lscale[c];
    }
    /* The reference level: the channel's mean since the training (frozen in the episode). */
    double lm = d->sh_n > 0.0 ? d->sh_lsum[c] / d->sh_n : 0.0;
    if (d->cfg.shift_release && sh->valid && d->sh_n >= 4.0 * q) {
        /* The fault's end is a step back toward the old level: the channel's step estimate
         * (the one the test judges it on), against its own reference, taken toward lm. */
        double mu, sd, est = judged_step(d, sh, c, &mu, &sd);
        /* Judged as the test judges an opening, on the decision's log scale at alarm_level,
         * but for one channel named in advance (no Bonferroni factor): at the default
         * alarm_level 0.45 the step back must reach 4.32 of its deviations. */
        const double back = d->sh_post > lm ? mu - est : est - mu;
        if (back > 0.0) {
            double tail = 2.0 * erfc(back / sd / M_SQRT2);
            double s = log((tail < 1.0 ? tail : 1.0) + 1e-10) / log(1e-10);
            if (s >= d->cfg.alarm_level)
                return -1.0f; /* released: the channel stepped back */
        }
    }
    return fabs(qm - d->sh_post) < fabs(qm - lm) ? 1.0f : 0.0f;
}

/* settle_release: whether channel c is back near its level before the step that went to
 * post (training spreads, as lm, its mean level since the training). It is when the medians of
 * its newest q / 2 and q / 4 readings (the level it has come back to; the q-reading mean lags)
 * both lie within half the step's size of lm, and the step itself is at least SETTLE_NOISE
 * robust deviations (1.4826 median absolute deviations) of the newest q / 2 readings. A step
 * back that overshoots to the other side (a valve that swings from too open to too closed) is a
 * new step, not a return: while it passes, the longer median crosses lm when half its readings
 * are on either side, but the shorter one is then past it. A channel that has turned noisy
 * (cavitation) makes steps and steps back of its mean out of noise around an unchanged level:
 * its "step" is small against its present noise, so it never counts as returned. */
static int returned(const detector_t *d, const float *x, int c, int q, double lm, double post)
{
    double v[2 * DETECTOR_MAX_SHIFT], dev[DETECTOR_MAX_SHIFT];
    window_raw(d, x, c, 2 * q, v);
    const double tol = SETTLE_NEAR * fabs(post - lm), sc = d->lscale[c];
    const int k0 = q / 2 > 0 ? q / 2 : 1;
    const double *newest = v + 2 * q - k0;
    const double med = median(newest, k0);
    for (int i = 0; i < k0; i++)
        dev[i] = fabs(newest[i] - med);
    if (!(fabs(post - lm) * sc >= SETTLE_NOISE * 1.4826 * median(dev, k0)))
        return 0;
    for (int k = k0; k >= 1; k /= 2) {
        const double land = (median(v + 2 * q - k, k) - d->lmean[c]) / sc;
        if (!(fabs(land - lm) <= tol))
            return 0;
        if (k <= q / 4 || k == 1)
            break;
    }
    return 1;
}

int detector__shift_settle(detector_t *d, const float *x, int rel_ch1)
{
    if (rel_ch1 > 0 && d->sh_lead) {
        d->st_ch1 = rel_ch1; /* the step that set the episode off went back: watch it land */
        d->st_post = d->sh_far;
    }
    const int q = shift_q(d), c = d->st_ch1 - 1;
    if (q == 0 || c < 0 || c >= d->C || !(d->lscale[c] > 0.0f) || !(d->sh_n > 0.0))
        return 0;
    return returned(d, x, c, q, d->sh_lsum[c] / d->sh_n, d->st_post);
}

void detector__shift_after(detector_t *d, const float *x, const struct detector__shift *sh, int arm,
                           int keep, int push)
{
    if (arm && sh->top >= 0) {
        d->sh_ch1 = sh->top + 1;
        d->sh_post = sh->post;
        /* settle_release: the step set the episode off if the test saw it within q readings
         * of the opening (it needs about q / 2 to see a step at all); a new step is the
         * episode's evidence from now on, so an earlier one's return no longer ends it. */
        d->sh_lead = d->in_anomaly <= shift_q(d);
        d->st_ch1 = 0;
        d->sh_far = sh->post;
    } else if (keep && d->sh_ch1 > 0 && sh->valid && d->sh_n > 0.0) {
        /* The step's full size: the test arms the hold before the newer half holds only
         * readings after the step, so its level then is part of the way there. */
        const int c = d->sh_ch1 - 1;
        const double lm = d->sh_lsum[c] / d->sh_n;
        if (fabs(sh->level[c] - lm) > fabs(d->sh_far - lm))
            d->sh_far = sh->level[c];
    } else if (!keep) {
        d->sh_ch1 = 0; /* the episode ended, or its regime was accepted */
        d->st_ch1 = d->sh_lead = 0;
    }
    if (!push || !sh->valid)
        return;
    const int q = shift_q(d), judged = q > 0 && d->sh_n >= 4.0 * q;
    for (int c = 0; c < d->C; c++) {
        if (!(d->lscale[c] > 0.0f))
            continue;
        double lv = ((double)x[c] - d->lmean[c]) / d->lscale[c];
        const double e = winsor(d, sh->step[c], d->sh_sum[c], d->sh_sumsq[c], judged);
        const double pe = winsor(d, sh->pstep[c], d->sh_psum[c], d->sh_psumsq[c], judged);
        d->sh_sum[c] += e;
        d->sh_sumsq[c] += e * e;
        d->sh_psum[c] += pe;
        d->sh_psumsq[c] += pe * pe;
        d->sh_lsum[c] += isfinite(lv) ? lv : 0.0;
    }
    d->sh_n += 1.0;
}

void detector__shift_reset(detector_t *d)
{
    d->sh_n = 0.0;
    d->sh_ch1 = 0;
    d->sh_post = 0.0;
    d->st_ch1 = d->sh_lead = 0;
    d->st_post = d->sh_far = 0.0;
    d->sw_ok = 0; /* the ring is unchanged; rebuilding costs one pass a training */
    if (!d->sh_sum)
        return; /* shift_len 0: no arrays */
    const size_t n = sizeof(double) * (size_t)d->C;
    memset(d->sh_sum, 0, n);
    memset(d->sh_sumsq, 0, n);
    memset(d->sh_lsum, 0, n);
    memset(d->sh_psum, 0, n);
    memset(d->sh_psumsq, 0, n);
}

/* The step test's arrays, [C] doubles each (detector__shift_place). */
enum { SHIFT_ARRAYS = 9 };

size_t detector__shift_doubles(const struct detector_config *cfg, int C)
{
    return cfg->shift_len > 0 ? SHIFT_ARRAYS * (size_t)C : 0;
}

double *detector__shift_place(detector_t *d, double *p)
{
    if (d->cfg.shift_len <= 0)
        return p;
    /* The window sums together: the four arrays every reading updates, 4 C doubles. */
    double **a[SHIFT_ARRAYS] = {&d->sw_sum[0], &d->sw_suv[0], &d->sw_sum[1],
                                &d->sw_suv[1], &d->sh_sum,    &d->sh_sumsq,
                                &d->sh_lsum,   &d->sh_psum,   &d->sh_psumsq};
    for (int i = 0; i < SHIFT_ARRAYS; i++, p += d->C)
        *a[i] = p;
    return p;
}

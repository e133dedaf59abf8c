/* model/detector_likelihood.c: the raw score's two windows and the likelihoods read from them,
 * moved out of detector_score.c, which pushes each reading's raw score here and asks these for
 * the reported score, the decision and the holds.
 *
 * 1. The windows. The short window (shortbuf) holds the newest err_short raw scores; its mean is
 *    the reading's short average, and a score that leaves it raises onset_record's reference
 *    (rec_max, rec_n: detector_onset.c). The long window (ring) holds the short averages of the
 *    last err_window readings, with running sums; detector_score.c seeds both
 *    (detector__windows_seed) and decides when the long window learns (freeze, accept_after).
 * 2. Anomaly likelihood (Ahmad et al., "Unsupervised real-time anomaly detection for
 *    streaming data", Neurocomputing 2017). The mean raw score of the last err_short readings
 *    is compared with the mean and standard deviation of those short averages over the last
 *    err_window readings (a Gaussian tail); the likelihood is the tail probability on a log
 *    scale, log(tail + 1e-10) / log(1e-10), so 0.5 means a tail of 1e-5. The decision
 *    likelihood (unless tail_plain) takes the window's mean and deviation as estimates from its
 *    n = ring_len / err_short independent short means, i.e. Student's t with n - 1 degrees of
 *    freedom and scale sd * sqrt(1 + 1/n) (its tail from the regularised incomplete beta
 *    function, also asked by detector_opinion.c through detector__t_tail).
 * 3. op_point's likelihood (detector__op_likelihood), of the operating point rather than the
 *    prediction error: each channel with a level has its short level (op_ew, kept by
 *    detector_score.c) judged against that channel's own short levels since the training
 *    (Student's t as in 2, two-sided); the most extreme channel's tail is multiplied by the
 *    number of channels judged and by 2 (two likelihoods). Only with two or more such channels.
 *
 * Invariants: the long window's running sums equal the sums of its contents (recomputed every
 * err_window pushes against rounding drift). No allocation.
 * Threading: owner thread of the detector. */
#include <math.h>

#include "detector_int.h"

/* Standard deviations of the raw score below this are treated as this: a perfectly predicted
 * series (all errors zero) must not turn the first rounding error into an alarm. */
#define RAW_SD_FLOOR 0.05
/* op_point: a channel's level deviation is never taken below this many of its training
 * spreads (a quantised or very steady channel would otherwise alarm on its next step). */
#define OP_SD_FLOOR 1.0

void detector__ring_push(detector_t *d, float raw)
{
    const int W = d->cfg.err_window;
    if (d->ring_len == W) {
        float old = d->ring[d->ring_head];
        d->ring_sum -= old;
        d->ring_sumsq -= (double)old * old;
    } else {
        d->ring_len++;
    }
    d->ring[d->ring_head] = raw;
    d->ring_sum += raw;
    d->ring_sumsq += (double)raw * raw;
    d->ring_head = (d->ring_head + 1) % W;
    if (++d->ring_since_resum >= W) {
        double s = 0.0, ss = 0.0;
        for (int k = 0; k < d->ring_len; k++) {
            s += d->ring[k];
            ss += (double)d->ring[k] * d->ring[k];
        }
        d->ring_sum = s;
        d->ring_sumsq = ss;
        d->ring_since_resum = 0;
    }
}

double detector__short_push(detector_t *d, float raw)
{
    const int S = d->cfg.err_short;
    if (d->short_len == S) {
        float old = d->shortbuf[d->short_head];
        d->short_sum -= old;
        /* onset_record's reference: what the device has shown, once out of the short window */
        d->rec_max = old > d->rec_max ? old : d->rec_max;
        d->rec_n = d->rec_n < (1 << 30) ? d->rec_n + 1 : d->rec_n;
    } else {
        d->short_len++;
    }
    d->shortbuf[d->short_head] = raw;
    d->short_sum += raw;
    d->short_head = (d->short_head + 1) % S;
    return d->short_sum / d->short_len;
}

double detector__short_max(const detector_t *d)
{
    double m = 0.0;
    for (int k = 0; k < d->short_len; k++)
        if (d->shortbuf[k] > m)
            m = d->shortbuf[k];
    return m;
}

/* The short window's raw score i readings back (0: the newest). */
float detector__recent_raw(const detector_t *d, int i)
{
    const int S = d->cfg.err_short;
    return d->shortbuf[((d->short_head - 1 - i) % S + S) % S];
}

/* The median of the newest k (1..short_len) raw scores. */
double detector__recent_median(const detector_t *d, int k)
{
    float v[DETECTOR_MAX_SHORT];
    for (int i = 0; i < k; i++) {
        float x = detector__recent_raw(d, i);
        int j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
    return k % 2 ? v[k / 2] : 0.5 * ((double)v[k / 2 - 1] + v[k / 2]);
}

/* The continued fraction of the regularised incomplete beta function I_x(a, b) (modified
 * Lentz), accurate for x < (a + 1) / (a + b + 2). */
static double beta_cf(double a, double b, double x)
{
    const double tiny = 1e-300;
    double c = 1.0, dd = 1.0 - (a + b) * x / (a + 1.0);
    if (fabs(dd) < tiny)
        dd = tiny;
    dd = 1.0 / dd;
    double h = dd;
    for (int m = 1; m <= 200; m++) {
        double m2 = 2.0 * m;
        double num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        for (int k = 0; k < 2; k++) {
            dd = 1.0 + num * dd;
            dd = fabs(dd) < tiny ? 1.0 / tiny : 1.0 / dd;
            c = 1.0 + num / c;
            if (fabs(c) < tiny)
                c = tiny;
            double del = dd * c;
            h *= del;
            if (k == 1 && fabs(del - 1.0) < 1e-12)
                return h;
            num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        }
    }
    return h;
}

/* I_x(a, b), the regularised incomplete beta function, for 0 <= x <= 1. */
static double beta_inc(double a, double b, double x)
{
    if (x <= 0.0)
        return 0.0;
    if (x >= 1.0)
        return 1.0;
    double lf = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1.0) / (a + b + 2.0))
        return exp(lf) * beta_cf(a, b, x) / a;
    return 1.0 - exp(lf) * beta_cf(b, a, 1.0 - x) / b;
}

/* P(T > t) for Student's t with nu degrees of freedom. */
static double t_tail(double t, double nu)
{
    double p = 0.5 * beta_inc(0.5 * nu, 0.5, nu / (nu + t * t));
    return t >= 0.0 ? p : 1.0 - p;
}

double detector__t_tail(double t, double nu)
{
    return t_tail(t, nu);
}

/* The likelihood of a short-window mean against the long window: with the window's mean and
 * deviation taken as exact (a Gaussian tail) when plain is set, else as estimates (Student). */
float detector__likelihood_score(const detector_t *d, double mavg, int plain)
{
    if (d->ring_len < 2)
        return 0.0f;
    double mu = d->ring_sum / d->ring_len;
    double var = d->ring_sumsq / d->ring_len - mu * mu;
    double sd = var > 0.0 ? sqrt(var) : 0.0;
    if (sd < RAW_SD_FLOOR)
        sd = RAW_SD_FLOOR;
    double tail;
    if (plain) {
        tail = 0.5 * erfc((mavg - mu) / sd / sqrt(2.0));
    } else {
        /* The window's short means overlap by err_short - 1 readings: about ring_len /
         * err_short of them are independent. The predictive distribution of a new one, given
         * n such samples of unknown mean and deviation, is Student's t with n - 1 degrees of
         * freedom and scale sd * sqrt(1 + 1 / n). */
        double n = (double)d->ring_len / d->cfg.err_short;
        if (n < 2.0)
            n = 2.0;
        tail = t_tail((mavg - mu) / (sd * sqrt(1.0 + 1.0 / n)), n - 1.0);
    }
    double s = log(tail + 1e-10) / log(1e-10);
    return (float)(s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s);
}

/* op_point: the likelihood that the operating point has moved. Each channel with a level
 * (lscale > 0: not predicted by persistence) is judged on its own: its short level v (op_ew, or
 * one reading's level) against that channel's levels since the training (op_n of them), as the
 * decision likelihood judges the error (Student's t with n = op_n / err_short effective samples,
 * scale sd sqrt(1 + 1 / n), sd at least OP_SD_FLOOR training spreads), two-sided; the most
 * extreme channel's tail, times the channels judged (Bonferroni) and 2 (the state looks at two
 * likelihoods), on the likelihood's log scale. A channel that drifts slowly (a temperature) has
 * a wide history and stays quiet; one that held its level and leaves it (a flow after a valve
 * fault) stands out, however far the drifting one has gone. op_tail_score turns the most
 * extreme channel's t (tmax, of k channels judged) into the likelihood; detector__op_likelihood
 * below gives it for the short means and for this reading's own levels, with the channel each time;
 * both 0 (channel -1) until 2 err_short readings were seen, or when no channel has a level. */
static float op_tail_score(double tmax, int k, double n)
{
    if (k < 2)
        return 0.0f; /* one channel: nothing drowns its error (see op_point in detector.h) */
    /* Student's t is a scale mixture of Gaussians, so its tail is never below the Gaussian one:
     * when that alone makes the product 1 or more (with a margin far above the incomplete
     * beta's rounding) the likelihood is 0, as below, without the incomplete beta. Most readings
     * of a healthy device end here (it was a fifth of the scoring's CPU at fleet scale). */
    if (2.0 * 2.0 * k * 0.5 * erfc(tmax / M_SQRT2) >= 1.001)
        return 0.0f;
    double tail = 2.0 * 2.0 * k * t_tail(tmax, n - 1.0);
    double s = log((tail < 1.0 ? tail : 1.0) + 1e-10) / log(1e-10);
    return (float)(s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s);
}

/* Both likelihoods in one pass over the channels (their statistics are shared): of the short
 * means (*ew, top channel *ew_top) and of this reading's own levels (*now, *now_top). */
void detector__op_likelihood(const detector_t *d, const float *x, float *ew, int *ew_top,
                             float *now, int *now_top)
{
    const double S = d->cfg.err_short;
    *ew = *now = 0.0f;
    *ew_top = *now_top = -1;
    if (d->op_n < 2.0 * S)
        return;
    double n = d->op_n / S, tmax_ew = -1.0, tmax_now = -1.0;
    int k = 0;
    for (int c = 0; c < d->C; c++) {
        if (!(d->lscale[c] > 0.0f))
            continue;
        k++;
        double mu = d->op_sum[c] / d->op_n;
        double var = d->op_sumsq[c] / d->op_n - mu * mu;
        double sd = var > 0.0 ? sqrt(var) : 0.0;
        if (sd < OP_SD_FLOOR)
            sd = OP_SD_FLOOR;
        double scale = sd * sqrt(1.0 + 1.0 / n);
        double t_ew = fabs(d->op_ew[c] - mu) / scale;
        double t_now = fabs(((double)x[c] - d->lmean[c]) / d->lscale[c] - mu) / scale;
        if (t_ew > tmax_ew) {
            tmax_ew = t_ew;
            *ew_top = c;
        }
        if (t_now > tmax_now) {
            tmax_now = t_now;
            *now_top = c;
        }
    }
    *ew = op_tail_score(tmax_ew, k, n);
    *now = op_tail_score(tmax_now, k, n);
}

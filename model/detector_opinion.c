/* model/detector_opinion.c: a found-but-not-chosen seasonal profile as a second opinion
 * (detector_config.season_opinion).
 *
 * The seasonal candidate (detector_season.c, season_fit) finds a channel's period in a
 * training's rows and builds a per-phase profile of it; the profile predicts the channel only
 * where it validates 10 % better than what predicts it otherwise, as a one-step predictor.
 * Where an LSTM follows a weekly or daily pattern well enough one step at a time, the profile
 * is dropped, and with it the one thing that knows what the day should look like: a holiday,
 * a line stopped on a working day or a chiller that did not start is reached through one-step
 * changes of ordinary size, so the one-step error never sees it (docs/detection.md,
 * "Thirteenth round": nyc_taxi's Thanksgiving, Christmas and blizzard).
 *
 * With season_opinion, each such channel keeps the profile (a record and season_bins floats).
 * Its statistic is the reading's deviation from the profile, y = x - s(idx), less the
 * deviation's mean over the training rows, in the deviation's spread over those rows, as an
 * exponential mean of weight 2 / (err_short + 1): one reading does not decide, a day that runs
 * low does. That short deviation is judged against its own values since the training, as the
 * operating point judges levels (detector_likelihood.c, op_likelihood): Student's t with n = o_n /
 * err_short effective samples, scale sd sqrt(1 + 1 / n), sd at least OPIN_SD_FLOOR training
 * spreads, two-sided; the most extreme channel's tail times the channels judged and 2 (the
 * state looks at two likelihoods), on the likelihood's log scale. A short deviation whose own
 * likelihood is at warn_level stays out of that reference (else a missing cycle is learnt as it
 * develops). Bit 1 of season_opinion (the default) joins it to the reported score only; bit 2
 * joins it to the decision where the operating point's likelihood does (opening on it needs the
 * reading's own deviation at clear_level; it holds an episode).
 *
 * season_accum (docs/detection.md, "Nineteenth round") accumulates the same deviation over
 * more readings: an exponential mean over a fraction of the period (at least err_short), for
 * a day that departs only a little at each reading but all day (a load curve that flattens).
 * Its null spread comes from the training (detector_season.c, accum_spread: the rows the
 * profile was fitted on and the held-out rows, pooled), so it is judged from the first day,
 * with the pooled count as its sample; its values since the training join that reference
 * unless their own likelihood is at warn_level. With it, a channel whose profile was chosen
 * has a record too (own): its AR(1) correction follows a day that runs low, so the one-step
 * error does not see it either; the short statistic skips such a record. Its likelihood joins
 * the reported score where bit 1 does, never the decision (measured: it lost NAB own).
 *
 * Invariants: o_rec is NULL exactly when n_op is 0; o_prof points into it, after the records.
 * The phase is the reading index mod period, as the seasonal predictor's (regular sampling).
 * No allocation in eval, push or reset.
 * Threading: owner thread of the detector, except detector__opinion_make (any thread). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detector_int.h"
#include "err.h"

/* The short deviation's spread is never taken below this many training spreads. */
#define OPIN_SD_FLOOR 1.0
/* |deviation| cap in training spreads (a wild reading stays finite). */
#define OPIN_Z_CAP 1e6

int detector__accum_len(const struct detector_config *cfg, int period)
{
    if (!(cfg->season_accum > 0.0f) || period < 1)
        return 0;
    const int L = (int)lround(cfg->season_accum * period);
    return L > cfg->err_short ? L : cfg->err_short;
}

/* Whether channel c keeps a record: a period found, not chosen (a second opinion), or chosen
 * with season_accum on and an accumulated spread to judge it by. */
static int keeps(int c, const uint8_t *season, const int *period, const float *sd, const float *asd)
{
    if (!(period[c] > 0 && sd[c] > 0.0f))
        return 0;
    return !season[c] || (asd && asd[c] > 0.0f);
}

int detector__opinion_make(struct detector__opinion **out, int *n,
                           const struct detector_config *cfg, int C, const uint8_t *season,
                           const int *period, const float *prof, const float *mean, const float *sd,
                           const float *asd, const float *n0)
{
    *out = NULL;
    *n = 0;
    if (!(cfg->season_accum > 0.0f))
        asd = n0 = NULL; /* off: the second opinions alone, as they ran */
    int k = 0;
    for (int c = 0; c < C; c++)
        k += !cfg->input[c] && keeps(c, season, period, sd, asd);
    if (k == 0)
        return 0;
    const size_t SB = (size_t)cfg->season_bins;
    struct detector__opinion *r = calloc(1, sizeof *r * (size_t)k + sizeof(float) * SB * k);
    if (!r)
        return ERR_NOMEM;
    float *q = (float *)(r + k); /* the records' size is a multiple of 8: aligned */
    for (int c = 0, i = 0; c < C; c++) {
        if (cfg->input[c] || !keeps(c, season, period, sd, asd))
            continue;
        r[i].ch = c;
        r[i].period = period[c];
        r[i].mean = mean[c];
        r[i].sd = sd[c];
        if (asd) {
            r[i].asd = asd[c];
            r[i].n0 = n0[c];
            r[i].own = season[c] != 0;
        }
        memcpy(q + (size_t)i * SB, prof + (size_t)c * SB, sizeof(float) * SB);
        i++;
    }
    *out = r;
    *n = k;
    return 0;
}

void detector__opinion_reset(detector_t *d)
{
    d->o_n = -1.0;
    d->o_age = -1.0;
    d->o_an = 0.0;
    for (int i = 0; i < d->n_op; i++) {
        struct detector__opinion *r = &d->o_rec[i];
        r->ew = r->sum = r->sumsq = r->aew = r->asum = r->asumsq = 0.0;
    }
}

void detector__opinion_push(detector_t *d, float lik, float alik)
{
    if (d->n_op == 0 || d->o_n < 0.0)
        return;
    /* A deviation at warning level stays out of its own reference. */
    if (d->cfg.season_accum > 0.0f && alik < d->cfg.warn_level) {
        d->o_an += 1.0;
        for (int i = 0; i < d->n_op; i++) {
            struct detector__opinion *r = &d->o_rec[i];
            r->asum += r->aew;
            r->asumsq += r->aew * r->aew;
        }
    }
    if (lik >= d->cfg.warn_level)
        return;
    d->o_n += 1.0;
    for (int i = 0; i < d->n_op; i++) {
        struct detector__opinion *r = &d->o_rec[i];
        r->sum += r->ew;
        r->sumsq += r->ew * r->ew;
    }
}

/* The most extreme channel's t (of k judged) as a likelihood: tail times 2 (two-sided), 2 (two
 * likelihoods) and k. */
static float opin_score(double tmax, int k, double n)
{
    if (k < 1 || tmax < 0.0)
        return 0.0f;
    if (2.0 * 2.0 * k * 0.5 * erfc(tmax / M_SQRT2) >= 1.001)
        return 0.0f; /* Student's tail is never below the Gaussian one: see op_tail_score */
    double tail = 2.0 * 2.0 * k * detector__t_tail(tmax, n - 1.0);
    double s = log((tail < 1.0 ? tail : 1.0) + 1e-10) / log(1e-10);
    return (float)(s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s);
}

/* season_accum: each record's accumulated departure (the exponential mean over its
 * detector__accum_len readings of z [n_op], the readings' deviations in sd) takes this reading
 * in; the likelihood of the most extreme one judged, against the training rows' spread (n0
 * values of spread asd, mean 0 by construction) pooled with its values since the training. A
 * record is judged once its mean has L readings since the training. */
static float accum_eval(detector_t *d, const double *z)
{
    if (!(d->cfg.season_accum > 0.0f))
        return 0.0f;
    d->o_age = d->o_age < 0.0 ? 1.0 : d->o_age + 1.0;
    double t[DETECTOR_MAX_CHANNELS], n[DETECTOR_MAX_CHANNELS];
    int k = 0;
    for (int i = 0; i < d->n_op; i++) {
        struct detector__opinion *r = &d->o_rec[i];
        const int L = detector__accum_len(&d->cfg, r->period);
        r->aew = d->o_age <= 1.0 ? z[i] : r->aew + 2.0 / (L + 1.0) * (z[i] - r->aew);
        if (!(r->asd > 0.0f) || d->o_age < L)
            continue;
        const double N = r->n0 + d->o_an, mu = r->asum / N;
        const double var = (r->n0 * (double)r->asd * r->asd + r->asumsq) / N - mu * mu;
        double sd = var > 0.0 ? sqrt(var) : 0.0;
        if (sd < r->asd)
            sd = r->asd; /* a cycle as noisy as in its training at least */
        n[k] = N / L;
        t[k] = fabs(r->aew - mu) / (sd * sqrt(1.0 + 1.0 / n[k]));
        k++;
    }
    float best = 0.0f;
    for (int i = 0; i < k; i++) {
        const float s = opin_score(t[i], k, n[i]);
        if (s > best)
            best = s;
    }
    return best;
}

void detector__opinion_eval(detector_t *d, const float *x, float *lik, float *now, int *top,
                            float *alik)
{
    *lik = *now = *alik = 0.0f;
    *top = -1;
    if (d->n_op == 0)
        return;
    const int SB = d->cfg.season_bins;
    const double S = d->cfg.err_short, a = 2.0 / (S + 1.0);
    double z[DETECTOR_MAX_CHANNELS];
    for (int i = 0; i < d->n_op; i++) {
        struct detector__opinion *r = &d->o_rec[i];
        const float s = detector__season_at(d->o_prof + (size_t)i * SB, r->period, SB, d->n_seen);
        double v = ((double)x[r->ch] - s - r->mean) / r->sd;
        if (!(fabs(v) <= OPIN_Z_CAP))
            v = v < 0.0 ? -OPIN_Z_CAP : OPIN_Z_CAP;
        z[i] = v;
        r->ew = d->o_n <= 0.0 ? v : r->ew + a * (v - r->ew);
    }
    *alik = accum_eval(d, z);
    if (d->o_n < 0.0)
        d->o_n = 0.0;
    if (d->o_n < 2.0 * S)
        return;
    const double n = d->o_n / S;
    double tmax = -1.0, tnow = -1.0;
    int k = 0; /* the second opinions (a chosen profile's record is judged only accumulated) */
    for (int i = 0; i < d->n_op; i++) {
        const struct detector__opinion *r = &d->o_rec[i];
        if (r->own)
            continue;
        k++;
        double mu = r->sum / d->o_n, var = r->sumsq / d->o_n - mu * mu;
        double sd = var > 0.0 ? sqrt(var) : 0.0;
        if (sd < OPIN_SD_FLOOR)
            sd = OPIN_SD_FLOOR;
        const double scale = sd * sqrt(1.0 + 1.0 / n);
        const double t = fabs(r->ew - mu) / scale, tn = fabs(z[i] - mu) / scale;
        if (t > tmax) {
            tmax = t;
            *top = r->ch;
        }
        if (tn > tnow)
            tnow = tn;
    }
    *lik = opin_score(tmax, k, n);
    *now = opin_score(tnow, k, n);
}

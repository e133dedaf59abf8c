/* model/detector_season.c: a training job's seasonal candidate (season_bins > 0; the job's
 * lifecycle and decision are detector_train.c's). For each channel of a one-series job: the
 * period, searched by the autocorrelation of the detrended training rows; the profile, the
 * rows' mean per bin of phase; the AR(1) correction of the deviations from it; season_opinion's
 * and season_accum's statistics of those deviations; and the choice, after the decision, of
 * the channels whose profile validates better than what predicts them otherwise. What the
 * detector does with a chosen profile is detector.c's (detector__season_pred), with the
 * profiles found and not chosen detector_opinion.c's.
 *
 * Invariants: reads the job's rows, writes only the job's seasonal fields (and the errors of
 * the channels it chooses). Threading: any thread, one thread at a time per job. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detector_int.h"
#include "err.h"

/* The seasonal candidate (season_bins > 0): a period is at least SEASON_MIN_PERIOD readings and
 * its autocorrelation at least SEASON_MIN_ACF; the profile predicts a channel only where its
 * validation error is below (1 - SEASON_MARGIN) times that of what would predict it otherwise
 * (the LSTM's lstm_margin, for the same reason: a richer predictor must earn its place); the
 * period is the first autocorrelation peak within SEASON_HARMONIC of the best (not a multiple)
 * and the rows must hold SEASON_MIN_CYCLES of it. */
#define SEASON_MIN_PERIOD 8
#define SEASON_MIN_ACF    0.3
#define SEASON_MARGIN     0.1
#define SEASON_HARMONIC   0.9
#define SEASON_MIN_CYCLES 3

/* season_accum: the spread of the deviation's accumulated mean (the deviation from the profile
 * prof of period P in its spread o_sd, less its mean ya, as an exponential mean over
 * detector__accum_len readings) over the job's rows, into o_asd[c], and how many training-row
 * values it took into o_n0[c] (both 0 when off or when fewer than two spans of training rows
 * remain after the first). det [v] holds the training rows' deviations; the held-out tail
 * (rows v to n, which the profile was not fitted on) is read from the data. The spread is the
 * larger of the training rows' (about their mean, after the first span) and the tail's (about
 * 0: a profile that mispredicts its held-out rows, as one whose period is a reading off does,
 * counts its bias as spread), so a cycle that its profile follows worse out of sample needs a
 * larger departure. Any thread. */
static void accum_spread(detector_job_t *j, int c, int P, const float *prof, const double *det,
                         int v, double ya)
{
    j->o_asd[c] = j->o_n0[c] = 0.0f;
    const int L = detector__accum_len(&j->cfg, P), n = j->n, C = j->C;
    if (L <= 0 || v < 3 * L || !(j->o_sd[c] > 0.0f))
        return;
    const uint64_t idx0 = j->idx_end - (uint64_t)n;
    const double a = 2.0 / (L + 1.0), sd = j->o_sd[c];
    double ew = 0.0, s = 0.0, ss = 0.0, st = 0.0;
    for (int t = 0; t < n; t++) {
        const double y =
            t < v ? det[t]
                  : j->data[(size_t)t * C + c] -
                        detector__season_at(prof, P, j->cfg.season_bins, idx0 + (uint64_t)t);
        const double u = (y - ya) / sd;
        ew = t == 0 ? u : ew + a * (u - ew);
        if (t >= v) {
            st += ew * ew;
        } else if (t >= L) {
            s += ew;
            ss += ew * ew;
        }
    }
    const double m = v - L, mu = s / m, var = ss / m - mu * mu, tail = n > v ? st / (n - v) : 0.0;
    const double w = (m * var + (n - v) * tail) / (m + (n - v));
    j->o_asd[c] = (float)(w > 0.0 ? sqrt(w) : 0.0);
    j->o_n0[c] = (float)m;
}

/* The seasonal candidate of channel c of a one-series job (season_bins > 0). On the training
 * rows [0, v) (the tail is held out), with their linear trend removed: the autocorrelation
 * r(L) for 1 <= L <= v / 2 (each lag over its own pairs); past the lag where it first falls
 * below zero (a return, not a slow decay) its largest value must reach SEASON_MIN_ACF, and the
 * period P is the first peak of at least SEASON_HARMONIC times that (not a multiple of it), P
 * >= SEASON_MIN_PERIOD and at most a SEASON_MIN_CYCLES-th of the rows, so the profile averages
 * at least that many cycles (a period found in two cycles of a quasi-periodic signal, such as
 * vigil-sim's speed set point with its 600- and 97-second terms, drifts out of phase soon after
 * its training). The profile: the detrended rows' mean per bin of phase ((row's reading index) mod
 * P, min(P, season_bins) bins), less its mean; the correction: the least-squares AR(1) y' = a + phi
 * y of the deviations y from the profile. Writes s_period[c] (0: none), the profile and the
 * correction into the job, and the candidate's one-step errors on the last nc rows into errq
 * [nc] (when a period was found). r [v / 2 + 1], det [v] and sum, cnt [season_bins] are
 * scratch. Returns 1 when a period was found, else 0; -1 when the stop cancelled the job
 * (detector__cancelled). Any thread. */
static int season_fit(detector_job_t *j, int c, int nc, float *errq, double *r, double *det,
                      double *sum, double *cnt)
{
    const int C = j->C, n = j->n, v = n - j->n_val, SB = j->cfg.season_bins;
    const uint64_t idx0 = j->idx_end - (uint64_t)n; /* reading index of row 0 */
    j->s_period[c] = 0;
    if (v < 2 * SEASON_MIN_PERIOD)
        return 0;
    const double tm = (v - 1) / 2.0;
    double ym = 0.0, sxy = 0.0, sxx = 0.0;
    for (int t = 0; t < v; t++)
        ym += j->data[(size_t)t * C + c];
    ym /= v;
    for (int t = 0; t < v; t++) {
        sxy += (t - tm) * (j->data[(size_t)t * C + c] - ym);
        sxx += (t - tm) * (t - tm);
    }
    const double slope = sxx > 0.0 ? sxy / sxx : 0.0;
    double var = 0.0;
    for (int t = 0; t < v; t++) {
        det[t] = j->data[(size_t)t * C + c] - ym - slope * (t - tm);
        var += det[t] * det[t];
    }
    var /= v;
    if (!(var > 1e-12 * (1.0 + ym * ym)))
        return 0;
    const int maxl = v / SEASON_MIN_CYCLES;
    int zc = 0, best = 0;
    for (int L = 1; L <= maxl + 1; L++) { /* maxl + 1 <= v / 2: r has room */
        /* O(v maxl) a channel: about a second over 8 channels of 20,000 rows, so the stop's
         * cancel is read every 64 lags. */
        if ((L & 63) == 0 && detector__cancelled(j))
            return -1;
        double acc = 0.0;
        for (int t = 0; t + L < v; t++)
            acc += det[t] * det[t + L];
        r[L] = acc / (v - L) / var;
    }
    /* Only a peak (a local maximum, not the edge of the lags searched) is a period. */
    for (int L = 1; L <= maxl; L++) {
        if (!zc && r[L] < 0.0)
            zc = L;
        if (zc && L >= SEASON_MIN_PERIOD && r[L] >= r[L - 1] && r[L] >= r[L + 1] &&
            (best == 0 || r[L] > r[best]))
            best = L;
    }
    if (best == 0 || !(r[best] >= SEASON_MIN_ACF))
        return 0;
    /* A period's multiples correlate about as well as it does: the period is the first peak
     * (a local maximum) within SEASON_HARMONIC of the best, so the profile averages the most
     * cycles and spends its bins on one of them. */
    int P = best;
    for (int L = zc > SEASON_MIN_PERIOD ? zc : SEASON_MIN_PERIOD; L < best; L++)
        if (r[L] >= SEASON_HARMONIC * r[best] && r[L] >= r[L - 1] && r[L] >= r[L + 1]) {
            P = L;
            break;
        }
    const int B = P < SB ? P : SB;
    float *prof = j->s_prof + (size_t)c * SB;
    memset(sum, 0, sizeof(double) * (size_t)B);
    memset(cnt, 0, sizeof(double) * (size_t)B);
    for (int t = 0; t < v; t++) {
        const int k = (int)((idx0 + (uint64_t)t) % (uint64_t)P * (uint64_t)B / (uint64_t)P);
        sum[k] += det[t];
        cnt[k] += 1.0;
    }
    double pm = 0.0;
    for (int k = 0; k < B; k++)
        pm += cnt[k] > 0.0 ? sum[k] / cnt[k] : 0.0;
    pm /= B;
    for (int k = 0; k < B; k++)
        prof[k] = (float)((cnt[k] > 0.0 ? sum[k] / cnt[k] : 0.0) - pm);
    /* The deviations from the profile (raw units) and their AR(1) fit. */
    for (int t = 0; t < v; t++)
        det[t] = j->data[(size_t)t * C + c] - detector__season_at(prof, P, SB, idx0 + (uint64_t)t);
    double mx = 0.0, my = 0.0, cxy = 0.0, cxx = 0.0, ya = 0.0, yv = 0.0;
    for (int t = 0; t < v; t++) /* season_opinion: the deviation's mean and spread */
        ya += det[t];
    ya /= v;
    for (int t = 0; t < v; t++)
        yv += (det[t] - ya) * (det[t] - ya);
    j->o_mean[c] = (float)ya;
    j->o_sd[c] = (float)sqrt(yv / v);
    accum_spread(j, c, P, prof, det, v, ya);
    for (int t = 0; t + 1 < v; t++) {
        mx += det[t];
        my += det[t + 1];
    }
    mx /= v - 1;
    my /= v - 1;
    for (int t = 0; t + 1 < v; t++) {
        cxy += (det[t] - mx) * (det[t + 1] - my);
        cxx += (det[t] - mx) * (det[t] - mx);
    }
    double phi = cxx > 0.0 ? cxy / cxx : 0.0;
    phi = phi > 1.0 ? 1.0 : phi < -1.0 ? -1.0 : phi;
    j->s_phi[c] = (float)phi;
    j->s_a[c] = (float)(my - phi * mx);
    j->s_period[c] = P;
    for (int k = 0; k < nc; k++) {
        const int t = n - nc + k; /* t >= 1: nc <= n / 3 */
        const uint64_t i = idx0 + (uint64_t)t - 1;
        const float p = detector__season_pred(prof, P, SB, j->s_a[c], j->s_phi[c],
                                              j->data[(size_t)(t - 1) * C + c], i);
        const float e = j->data[(size_t)t * C + c] - p;
        errq[k] = isfinite(e) ? e : 1e30f;
    }
    return 1;
}

/* The seasonal choice (season_bins > 0, one series): after the decision on serve (its errors
 * err_s, persistence's err_p [nc, C], their tails' squared errors sse_s, sse_p [C], flags
 * j->persist), each channel not flat in training whose profile validates SEASON_MARGIN better
 * on the tail than what predicts it gets season[c]; its errors then replace the serving
 * predictor's in err_s and sse_s (detector__calibrate takes a seasonal channel's from there).
 * Returns 0, ERR_NOMEM or ERR_CLOSED (cancelled, the choice half made: the job is not
 * applied). Any thread. */
int detector__season_choose(detector_job_t *j, float *err_s, const float *err_p, double *sse_s,
                            const double *sse_p, const double *mean, const double *sd, int nc)
{
    const int C = j->C, v = j->n - j->n_val, off = nc - j->n_val;
    memset(j->season, 0, (size_t)C);
    memset(j->s_period, 0, sizeof(int) * (size_t)C);
    if (j->nseg != 1)
        return 0; /* a group's members run in step on one time line each: not here */
    const size_t SB = (size_t)j->cfg.season_bins, nr = (size_t)v / 2 + 1;
    double *r = malloc(sizeof(double) * (nr + (size_t)v + 2 * SB));
    float *errq = malloc(sizeof(float) * (size_t)nc);
    if (!r || !errq) {
        free(r);
        free(errq);
        return ERR_NOMEM;
    }
    int rc = 0;
    for (int c = 0; c < C; c++) {
        const int fit = sd[c] > 1e-6 * (1.0 + fabs(mean[c]))
                            ? season_fit(j, c, nc, errq, r, r + nr, r + nr + v, r + nr + v + SB)
                            : 0;
        if (fit < 0) {
            rc = ERR_CLOSED;
            break;
        }
        if (fit == 0)
            continue;
        double sq = 0.0;
        for (int k = off; k < nc; k++)
            sq += (double)errq[k] * errq[k];
        const double now = j->persist[c] ? sse_p[c] : sse_s[c];
        if (!(sq < (1.0 - SEASON_MARGIN) * now))
            continue;
        j->season[c] = 1;
        sse_s[c] = sq;
        for (int k = 0; k < nc; k++)
            err_s[(size_t)k * C + c] = errq[k];
    }
    free(r);
    free(errq);
    return rc;
}

/* model/detector_calib.c: what a training job measures and calibrates from (detector_train.c
 * owns the job's lifecycle and its decision). The predictors' errors over the job's rows
 * (detector__run_errors: one-step errors on the calibration rows, h-step drift and the
 * held-out tails' squared errors the decision's costs are made of), the channels' statistics
 * (flatness, the tails' variances, the error scales' floors), and the calibration of whatever
 * serves after the decision (detector__calibrate: error scales, level terms, err_corr's weights
 * and the raw scores that seed the long window, which detector_job_apply installs). A group
 * member's job takes the group's decision and calibrates on its own rows here too
 * (detector_job_share, detector_job_share_batch): that is the same calibration, with the
 * shared LSTM stepped for all members at once.
 *
 * Invariants: these functions read the job's rows and the predictors it holds and write only
 * the job's results; they never touch a detector. Threading: any thread, one thread at a time
 * per job (a share reads the group's job, which no thread may change meanwhile). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detector_int.h"
#include "err.h"

/* The calibration rows: the validation tail only, or (calib_all) every row of the last segment
 * after one window of context. detector__run_errors writes an error for every row but a segment's
 * first (nothing predicts it), so the context is at least one row: the calibration rows are then
 * all written, however short the segment (detector_train.c's set_rows keeps the last one at least
 * MIN_TAIL_ROWS long, so the tail holds at least one row). */
int detector__calib_rows(const detector_job_t *j)
{
    const int nl = j->n - j->seg[j->nseg - 1], nv = j->n_val;
    int ctx = j->cfg.train.window < nl / 4 ? j->cfg.train.window : nl / 4;
    ctx = ctx < 1 ? 1 : ctx;
    return j->cfg.calib_all && nl - ctx > nv ? nl - ctx : nv;
}

/* pred[C] = ab [C, C] . x + b, the linear baseline's step. */
static void linear_apply(float *pred, const float *x, const float *ab, const float *b, int C)
{
    for (int o = 0; o < C; o++) {
        float s = b[o];
        for (int i = 0; i < C; i++)
            s += ab[o * C + i] * x[i];
        pred[o] = s;
    }
}

/* Runs a predictor over the job's rows and writes its one-step errors on the last ncal rows:
 * err [ncal, C], err[k, c] = actual - predicted for row n - ncal + k (the caller keeps them
 * inside the last segment). Adds to sseh[C] the squared errors of its h-step-ahead forecasts
 * (h >= 1) of the rows from hfrom on (hfrom < 0: of each segment's held-out tail) that are at
 * least skip = min(win, its length / 4) rows into their segment, and, when vsse is not NULL,
 * to vsse [nseg, C] the squared one-step errors of each segment's held-out tail
 * (detector__seg_rows), on which a pooled job decides. Each segment is run on its own: the
 * predictor starts afresh at its first row and never predicts across its end. */
int detector__run_errors(const struct detector__pred *pc, const detector_job_t *j, int ncal,
                         int hfrom, int win, int h, float *err, double *sseh, double *vsse)
{
    const int C = pc->C, n = j->n;
    const float *data = j->data;
    float pred[DETECTOR_MAX_CHANNELS], tmp[DETECTOR_MAX_CHANNELS];
    float *state = NULL, *work = NULL, *fc = NULL;
    size_t sl = 0;
    if (pc->kind == DET_KIND_LSTM) {
        sl = model_state_len(pc->lstm);
        size_t wl = model_work_len(pc->lstm, 1);
        state = calloc(2 * sl + wl + (size_t)h * C, sizeof(float));
        if (!state)
            return ERR_NOMEM;
        work = state + 2 * sl;
        fc = work + wl;
    }
    const int cfrom = n - ncal;
    int k = -1, a = 0, v = 0, b = 0, skip = 0; /* row t is in segment k, rows [a, b), tail v */
    for (int t = 0; t + 1 < n; t++) {
        /* The stop's cancel, every 256 rows: two LSTMs of 64 units over 20,000 rows, each
         * row with its h-step forecast, take a good part of a second. */
        if ((t & 255) == 0 && detector__cancelled(j)) {
            free(state);
            return ERR_CLOSED;
        }
        if (k + 1 < j->nseg && t == j->seg[k + 1]) {
            detector__seg_rows(j, ++k, &a, &v, &b);
            skip = win < (b - a) / 4 ? win : (b - a) / 4;
            if (state && t > 0) {
                model_state_reset(pc->lstm, state);
                model_state_reset(pc->lstm, state + sl);
            }
        }
        if (t + 1 >= b) /* the next row begins another series */
            continue;
        const uint64_t lt = (uint64_t)(t - a); /* the row's index in its series */
        const float *x = data + (size_t)t * C;
        if (pc->kind == DET_KIND_LSTM) {
            float in[DETECTOR_MAX_CHANNELS];
            detector__clamp(in, x, pc->lo, pc->hi, C);
            if (detector__lstm_advance(pc->lstm, pred, state, sl, in, lt, pc->T, work) < 0)
                memcpy(pred, x, sizeof(float) * (size_t)C);
        } else if (pc->kind == DET_KIND_LINEAR) {
            linear_apply(pred, x, pc->ab, pc->b, C);
        } else {
            memcpy(pred, x, sizeof(float) * (size_t)C);
        }
        if (t + 1 >= cfrom || (vsse && t + 1 >= v))
            for (int c = 0; c < C; c++) {
                float e = data[(size_t)(t + 1) * C + c] - pred[c];
                e = isfinite(e) ? e : 1e30f;
                if (t + 1 >= cfrom)
                    err[(size_t)(t + 1 - cfrom) * C + c] = e;
                if (vsse && t + 1 >= v)
                    vsse[(size_t)k * C + c] += (double)e * e;
            }
        if (t + h < (hfrom < 0 ? v : hfrom) || t + h >= b || t + h - a < skip)
            continue;
        /* The h-step forecast from row t. */
        const float *ph = tmp;
        if (pc->kind == DET_KIND_LSTM && h > 1) {
            if (model_forecast(pc->lstm, fc, detector__lstm_active(state, sl, lt, pc->T), NULL, h,
                               work) < 0)
                memcpy(fc + (size_t)(h - 1) * C, x, sizeof(float) * (size_t)C);
            ph = fc + (size_t)(h - 1) * C;
        } else if (pc->kind == DET_KIND_LINEAR) {
            memcpy(tmp, pred, sizeof(float) * (size_t)C);
            for (int s = 1; s < h; s++) {
                float nx[DETECTOR_MAX_CHANNELS];
                linear_apply(nx, tmp, pc->ab, pc->b, C);
                memcpy(tmp, nx, sizeof(float) * (size_t)C);
            }
        } else {
            memcpy(tmp, pc->kind == DET_KIND_LSTM ? pred : x, sizeof(float) * (size_t)C);
        }
        for (int c = 0; c < C; c++) {
            double e = (double)data[(size_t)(t + h) * C + c] - ph[c];
            sseh[c] += isfinite(e) ? e * e : 1e30;
        }
    }
    free(state);
    return 0;
}

/* The variance of channel c over segment k's held-out tail (a cost's normalisation), or, for a
 * channel flat there, the training rows' (mean, sd), or 1. */
double detector__tail_var(const detector_job_t *j, int k, int c, double mean, double sd)
{
    const int C = j->C;
    int a, v, b;
    detector__seg_rows(j, k, &a, &v, &b);
    const int nv = b - v;
    double vs = 0.0, vss = 0.0;
    for (int t = v; t < b; t++)
        vs += j->data[(size_t)t * C + c];
    vs /= nv;
    for (int t = v; t < b; t++) {
        double dv = j->data[(size_t)t * C + c] - vs;
        vss += dv * dv;
    }
    double var = vss / nv;
    if (!(var > 1e-12 * (1.0 + mean * mean)))
        var = sd * sd > 1e-12 * (1.0 + mean * mean) ? sd * sd : 1.0;
    return var;
}

/* Channel statistics of the job's rows: mean[C], sd[C] of the training rows (flatness,
 * floors), var[C] of the last segment's validation tail, floor_[C] of the error scales. */
void detector__channel_stats(const detector_job_t *j, double *mean, double *sd, double *var,
                             double *floor_)
{
    const int C = j->C, nt = j->n_train;
    const struct detector_config *cfg = &j->cfg;
    for (int c = 0; c < C; c++) {
        double s = 0.0, ss = 0.0;
        for (int k = 0, a, v, b; k < j->nseg; k++) {
            detector__seg_rows(j, k, &a, &v, &b);
            for (int t = a; t < v; t++)
                s += j->data[(size_t)t * C + c];
        }
        mean[c] = s / nt;
        for (int k = 0, a, v, b; k < j->nseg; k++) {
            detector__seg_rows(j, k, &a, &v, &b);
            for (int t = a; t < v; t++) {
                double dv = j->data[(size_t)t * C + c] - mean[c];
                ss += dv * dv;
            }
        }
        sd[c] = sqrt(ss / nt);
        var[c] = detector__tail_var(j, j->nseg - 1, c, mean[c], sd[c]);
        /* The RMS of one-step changes: the floor's scale for a slow channel whose level spans
         * far more than its per-reading noise (a temperature). */
        double ds = 0.0;
        int nd = 0; /* changes within a series (none across a pooled job's boundaries) */
        for (int k = 0, a, v, b; k < j->nseg; k++) {
            detector__seg_rows(j, k, &a, &v, &b);
            for (int t = a + 1; t < v; t++, nd++) {
                /* in double: +-3e38 after -+3e38 overflowed a float's difference to infinity */
                double dv = (double)j->data[(size_t)t * C + c] - j->data[(size_t)(t - 1) * C + c];
                ds += dv * dv;
            }
        }
        ds = nd > 0 ? sqrt(ds / nd) : sd[c];
        floor_[c] =
            fmax(fmax(cfg->flat_rel * sd[c], cfg->flat_diff * ds), 1e-6 * (1.0 + fabs(mean[c])));
    }
}

/* err_corr: rinv [C, C], the weights of the scaled errors' quadratic form (detector__raw_score),
 * from their correlation R over the calibration rows (z = err[nc, C] / scale; the errors' mean
 * is taken as 0, as the score takes it). With R = V diag(ev) V', rinv = V diag(1 / max(ev, 1))
 * V': a direction in which the channels' errors move together more than an independent
 * channel's would (ev > 1: one disturbance that coupled channels all follow, such as a flow
 * fluctuation passing into the pressure and the current) counts once instead of once per
 * channel, and no direction counts more than under independence (ev < 1 would amplify the
 * directions where the few calibration rows happen to vary least, and errors that break the
 * coupling are faults the sum already sees). The weights are then scaled by C / tr(W R), so the
 * form's mean over the calibration rows is C, as the plain sum's is: log1p(q / C) keeps the
 * scale the raw score had (a lower level would be compressed less by the log, and a common
 * disturbance's swings would weigh more in the long window, not less). A channel without
 * error on those rows (flat) is independent of the rest. R by cyclic Jacobi rotations, in
 * doubles. Returns ERR_NOMEM. */
static int corr_weights(float *rinv, const float *err_s, const float *err_p, const uint8_t *persist,
                        const uint8_t *input, const float *scale, int nc, int C)
{
    const size_t Cz = (size_t)C;
    double *r = calloc(2 * Cz * Cz, sizeof(double)), *v = r + Cz * Cz;
    if (!r)
        return ERR_NOMEM;
    for (int k = 0; k < nc; k++) {
        double z[DETECTOR_MAX_CHANNELS];
        for (int c = 0; c < C; c++)
            z[c] = input[c] ? 0.0
                            : (double)(persist[c] ? err_p : err_s)[(size_t)k * Cz + c] / scale[c];
        for (int a = 0; a < C; a++)
            for (int b = 0; b <= a; b++)
                r[a * Cz + b] += z[a] * z[b];
    }
    for (int a = 0; a < C; a++)
        for (int b = 0; b < a; b++) {
            double den = sqrt(r[a * Cz + a] * r[b * Cz + b]);
            r[a * Cz + b] = r[b * Cz + a] = den > 0.0 ? r[a * Cz + b] / den : 0.0;
        }
    for (int a = 0; a < C; a++) {
        r[a * Cz + a] = 1.0;
        for (int b = 0; b < C; b++)
            v[a * Cz + b] = a == b;
    }
    /* Jacobi: each rotation zeroes r[p, q] (r <- J' r J, v <- v J) until r is diagonal. */
    for (int sweep = 0; sweep < 60; sweep++) {
        double off = 0.0;
        for (int p = 0; p < C; p++)
            for (int q = p + 1; q < C; q++)
                off += r[p * Cz + q] * r[p * Cz + q];
        if (off < 1e-20)
            break;
        for (int p = 0; p < C; p++)
            for (int q = p + 1; q < C; q++) {
                double apq = r[p * Cz + q];
                if (apq == 0.0)
                    continue;
                double th = (r[q * Cz + q] - r[p * Cz + p]) / (2.0 * apq);
                double t = (th >= 0.0 ? 1.0 : -1.0) / (fabs(th) + sqrt(th * th + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (int k = 0; k < C; k++) { /* columns p and q */
                    double kp = r[k * Cz + p], kq = r[k * Cz + q];
                    r[k * Cz + p] = c * kp - s * kq;
                    r[k * Cz + q] = s * kp + c * kq;
                }
                for (int k = 0; k < C; k++) { /* rows p and q */
                    double pk = r[p * Cz + k], qk = r[q * Cz + k];
                    r[p * Cz + k] = c * pk - s * qk;
                    r[q * Cz + k] = s * pk + c * qk;
                }
                for (int k = 0; k < C; k++) {
                    double kp = v[k * Cz + p], kq = v[k * Cz + q];
                    v[k * Cz + p] = c * kp - s * kq;
                    v[k * Cz + q] = s * kp + c * kq;
                }
            }
    }
    double tr = 0.0;
    for (int k = 0; k < C; k++)
        tr += r[k * Cz + k] / fmax(r[k * Cz + k], 1.0);
    const double norm = C / tr; /* tr >= 1: the largest eigenvalue is at least 1 */
    for (int a = 0; a < C; a++)
        for (int b = 0; b < C; b++) {
            double w = 0.0;
            for (int k = 0; k < C; k++)
                w += v[a * Cz + k] * v[b * Cz + k] / fmax(r[k * Cz + k], 1.0);
            rinv[a * Cz + b] = (float)(w * norm);
        }
    free(r);
    return 0;
}

/* Recalibration of whatever serves after the decision (flags j->persist): error scales (the
 * larger of the RMS over the calibration rows and over the tail, so an in-sample fit cannot
 * make them optimistic), level terms, and the raw scores that seed the long window. err_s and
 * err_p [nc, C] are the serving predictor's and persistence's one-step errors on the last nc
 * rows, sse_s and sse_p [C] their squared errors summed over the last n_val rows. */
int detector__calibrate(detector_job_t *j, const float *err_s, const float *err_p,
                        const double *sse_s, const double *sse_p, const double *floor_, int nc)
{
    const int C = j->C, n = j->n, nv = j->n_val;
    const struct detector_config *cfg = &j->cfg;
    float ek[DETECTOR_MAX_CHANNELS];
    /* What predicts each channel: persistence, unless the seasonal profile does (its errors
     * are err_s's then: detector__season_choose). */
    uint8_t pers[DETECTOR_MAX_CHANNELS];
    for (int c = 0; c < C; c++)
        pers[c] = j->persist[c] && !(j->season && j->season[c]);
    for (int c = 0; c < C; c++) {
        const float *e_c = pers[c] ? err_p : err_s;
        const double sse = pers[c] ? sse_p[c] : sse_s[c];
        double all = 0.0;
        for (int k = 0; k < nc; k++) {
            double e = e_c[(size_t)k * C + c];
            all += e * e;
        }
        j->rms[c] = (float)fmax(sqrt(sse / nv), sqrt(all / nc));
        /* At most FLT_MAX: a floor from readings near +-FLT_MAX (a sensor's "invalid" value)
         * could round to infinity (flat_rel's multiple of their spread), which scores as 0 but
         * makes the saved detector one the next load refuses (session 63's second reader). */
        j->scale[c] = (float)fmin(fmax(j->rms[c], floor_[c]), FLT_MAX);
    }
    /* Level terms for the channels the predictor treats as hovering around a level: their
     * mean and spread over all the job's rows. */
    for (int c = 0; c < C; c++) {
        double sum = 0.0, ss = 0.0;
        for (int t = 0; t < n; t++)
            sum += j->data[(size_t)t * C + c];
        double mu = sum / n;
        for (int t = 0; t < n; t++) {
            double dv = j->data[(size_t)t * C + c] - mu;
            ss += dv * dv;
        }
        j->lmean[c] = (float)mu;
        j->lscale[c] =
            pers[c] || cfg->input[c] ? 0.0f : (float)fmin(fmax(sqrt(ss / n), floor_[c]), FLT_MAX);
    }
    /* The correlation is used once the calibration tail is whole (val_rows rows): a first
     * training on few readings calibrates on a minute or so of one operating point, and its
     * model meets most others out of its data, where its errors are extrapolation, not the
     * noise whose coupling those rows show. */
    if (cfg->err_corr && nc >= cfg->val_rows) {
        int rc = corr_weights(j->rinv, err_s, err_p, pers, cfg->input, j->scale, nc, C);
        if (rc < 0)
            return rc;
    } else {
        memset(j->rinv, 0, sizeof(float) * (size_t)C * C);
        for (int c = 0; c < C; c++)
            j->rinv[(size_t)c * C + c] = 1.0f;
    }
    for (int k = 0; k < nc; k++) {
        for (int c = 0; c < C; c++)
            ek[c] = cfg->input[c] ? 0.0f : (pers[c] ? err_p : err_s)[(size_t)k * C + c];
        j->val_raw[k] = detector__raw_score(ek, j->scale, j->data + (size_t)(n - nc + k) * C,
                                            j->lmean, j->lscale, cfg->level_weight, cfg->agg_top,
                                            cfg->err_corr ? j->rinv : NULL, C, NULL);
    }
    j->n_raw = nc;
    return 0;
}

/* Whether the LSTM that serves group job g after its decision (if one does) has j's size. A
 * detector keeps the hidden size and number of layers it was made with, so a group may hold
 * members of two sizes (a member made before a change of vigild's model.hidden, another after;
 * or a detector made with other n_layers than detector_config_default's 1); the group's
 * LSTM has its leader's. A member of another size trains its own instead (it cannot serve the
 * group's, and a detector holding one is refused when it is loaded). */
static int share_fits(const detector_job_t *j, const detector_job_t *g, struct model_config *own,
                      struct model_config *grp)
{
    const int sw = g->swap;
    const enum detector_kind kind = sw ? g->kind : g->s_kind;
    const model_t *lstm = sw ? g->cand : g->s_lstm;
    if (kind != DET_KIND_LSTM || lstm == NULL)
        return 1;
    model_get_config(lstm, grp);
    detector__model_config(own, &j->cfg, j->C);
    return grp->n_inputs == own->n_inputs && grp->n_outputs == own->n_outputs &&
           grp->n_layers == own->n_layers && grp->n_hidden == own->n_hidden;
}

int detector_job_other_size(const detector_job_t *j, const detector_job_t *g, int own[2],
                            int grp[2])
{
    struct model_config a, b;
    if (!j || !g || !g->ran || j->C != g->C || share_fits(j, g, &a, &b))
        return 0;
    own[0] = a.n_hidden;
    own[1] = a.n_layers;
    grp[0] = b.n_hidden;
    grp[1] = b.n_layers;
    return 1;
}

/* Whether member job j already serves the predictor that serves the group after its decision
 * (kind, the shared LSTM or the linear coefficients ab, b [C, C] and [C]): by the model itself,
 * not by its version number, which a member trained alone may hold for a model of its own (every
 * first training is version 1). A copy loaded from a member's own file is the same model (equal
 * fingerprints); persistence has no parameters. */
static int share_serves(const detector_job_t *j, enum detector_kind kind, const model_t *lstm,
                        const float *ab, const float *b)
{
    const size_t Cz = (size_t)j->C;
    if (j->s_version == 0 || j->s_kind != kind)
        return 0;
    if (kind == DET_KIND_LSTM)
        return j->s_lstm &&
               (j->s_lstm == lstm || model_fingerprint(j->s_lstm) == model_fingerprint(lstm));
    if (kind == DET_KIND_LINEAR)
        return memcmp(j->s_ab, ab, sizeof(float) * Cz * Cz) == 0 &&
               memcmp(j->s_b, b, sizeof(float) * Cz) == 0;
    return 1;
}

/* Takes the group's decision into member job j (detector_job_share, before the calibration). */
static int share_take(detector_job_t *j, const detector_job_t *g)
{
    if (!j || !g || !j->data || j->ran || !g->ran || j->C != g->C)
        return ERR_INVAL;
    const size_t Cz = (size_t)j->C;
    const struct detector_config *cfg = &j->cfg;
    /* What serves the group after its decision: the candidate it swapped in, or what served. */
    const int sw = g->swap;
    const enum detector_kind kind = sw ? g->kind : g->s_kind;
    const model_t *lstm = sw ? g->cand : g->s_lstm;
    const uint32_t version = sw ? g->version : g->s_version;
    if (kind == DET_KIND_LSTM && !lstm)
        return ERR_INVAL;
    const float *ab = sw ? g->lin_ab : g->s_ab, *b = sw ? g->lin_b : g->s_b;
    const int serves = share_serves(j, kind, lstm, ab, b);
    const uint32_t own = j->version; /* the member's next number (detector_job_create) */
    /* Every member serves the group's one copy of the weights. */
    model_t *copy = kind == DET_KIND_LSTM ? model_share(lstm) : NULL;
    model_destroy(j->cand);
    j->cand = copy;
    j->have_cand = copy != NULL;
    memcpy(j->lin_ab, ab, sizeof(float) * Cz * Cz);
    memcpy(j->lin_b, b, sizeof(float) * Cz);
    memcpy(j->lo, sw ? g->lo : g->s_lo, sizeof(float) * Cz);
    memcpy(j->hi, sw ? g->hi : g->s_hi, sizeof(float) * Cz);
    memcpy(j->persist, g->persist, Cz);
    j->window = sw ? g->window : g->s_window;
    j->kind = kind;
    /* A member that does not serve the group's model (it just joined) installs it, under the
     * group's number unless the group kept a number below the member's next (one it may keep
     * for a model of its own, as a member trained alone keeps its version 1): then under its
     * next. A swap keeps the group's new number (the pipeline numbers it after every member's
     * newest), so that the members' records of it share it. The decision is recorded under
     * the group candidate's own number unless the member installs something (the group's
     * swap, or what serves the group for a member that just joined): a kept model must not be
     * recorded again under the version that serves. */
    j->swap = sw || !serves;
    j->install = sw || version >= own ? version : own;
    j->version = j->swap ? j->install : g->version;
    memcpy(j->cost, g->cost, sizeof j->cost);
    memcpy(j->cost_alone, g->cost_alone, sizeof j->cost_alone);
    j->tres = g->tres;
    const size_t E = (size_t)cfg->train.max_epochs;
    memcpy(j->curves, g->curves, sizeof(float) * 2 * E);
    j->tres.train_loss = j->curves;
    j->tres.val_loss = j->curves + E;
    return 0;
}

/* A member's calibration while it is shared: its one-step errors on its nc calibration rows,
 * [2, nc, C] (the shared predictor's, then persistence's), and in one block the squared errors
 * over the tail sse [2, C], sseh [2, C] (detector__run_errors', unused), mean, sd, var, floor_ [C].
 */
struct share_cal {
    int nc;
    float *err;
    double *sse, *sseh, *mean, *sd, *var, *floor_;
};

/* Allocates m, computes j's channel statistics (its own flat channels fall back to
 * persistence) and the errors of persistence, and of the shared predictor unless lstm_later
 * (an LSTM whose errors lstm_errors_batch computes). Returns 0 or ERR_NOMEM. */
static int share_begin(detector_job_t *j, struct share_cal *m, int lstm_later)
{
    const int C = j->C;
    const size_t Cz = (size_t)C;
    const struct detector_config *cfg = &j->cfg;
    m->nc = detector__calib_rows(j);
    m->err = malloc(sizeof(float) * 2 * (size_t)m->nc * Cz);
    m->sse = calloc(8 * Cz, sizeof(double));
    if (!m->err || !m->sse)
        return ERR_NOMEM;
    m->sseh = m->sse + 2 * Cz;
    m->mean = m->sseh + 2 * Cz;
    m->sd = m->mean + Cz;
    m->var = m->sd + Cz;
    m->floor_ = m->var + Cz;
    detector__channel_stats(j, m->mean, m->sd, m->var, m->floor_);
    /* The group's per-channel fallback to persistence was decided on the pooled rows; a
     * channel flat in this member's own rows falls back whatever the group decided, as in a
     * training of its own (a stuck or constant sensor of one member is predicted exactly,
     * not by a model fitted to the other members' moving channel). */
    for (int c = 0; c < C; c++)
        if (!(m->sd[c] > 1e-6 * (1.0 + fabs(m->mean[c]))))
            j->persist[c] = 1;
    const int clamp = cfg->clamp_margin >= 0.0f;
    struct detector__pred pcs[2] = {
        {j->kind, j->cand, j->lin_ab, j->lin_b, clamp ? j->lo : NULL, j->hi, C, j->window},
        {DET_KIND_PERSISTENCE, NULL, NULL, NULL, NULL, NULL, C, cfg->train.window},
    };
    for (int p = lstm_later ? 1 : 0; p < 2; p++) {
        int rc =
            detector__run_errors(&pcs[p], j, m->nc, j->n - j->n_val, cfg->train.window, 1,
                                 m->err + (size_t)p * m->nc * Cz, m->sseh + (size_t)p * Cz, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Sums the tail's squared errors and calibrates j (detector__calibrate). Returns ERR_NOMEM. */
static int share_end(detector_job_t *j, struct share_cal *m)
{
    const int C = j->C, nc = m->nc, off = nc - j->n_val;
    const size_t Cz = (size_t)C;
    for (int p = 0; p < 2; p++)
        for (int k = off; k < nc; k++)
            for (int c = 0; c < C; c++) {
                double e = m->err[((size_t)p * nc + k) * Cz + c];
                m->sse[p * C + c] += e * e;
            }
    int rc = detector__calibrate(j, m->err, m->err + (size_t)nc * Cz, m->sse, m->sse + Cz,
                                 m->floor_, nc);
    if (rc < 0)
        return rc;
    j->ran = 1;
    return 0;
}

static void share_free(struct share_cal *m)
{
    free(m->err);
    free(m->sse);
    memset(m, 0, sizeof *m);
}

int detector_job_share(detector_job_t *j, const detector_job_t *g)
{
    struct model_config a, b;
    if (j && g && j->data && !j->ran && g->ran && j->C == g->C && !share_fits(j, g, &a, &b))
        return detector_job_run(j); /* another size: its own training */
    int rc = share_take(j, g);
    if (rc)
        return rc;
    struct share_cal m = {0};
    rc = share_begin(j, &m, 0);
    if (rc == 0)
        rc = share_end(j, &m);
    share_free(&m);
    return rc;
}

/* The shared LSTM's one-step errors on every member's calibration rows (the first of each
 * share_cal's err), the members run in step: at row t every member still in its window
 * advances both its staggered states in one model_step_batch (one sgemm per layer for all
 * of them) instead of two model_steps each, which is what detector_job_share_batch saves. As
 * detector__run_errors: each window is one series from its row 0 (all share the phase of the
 * stagger, so they reset together), inputs clamped to the group's range, a failed step predicting
 * the reading itself. Any thread. Returns 0 or ERR_NOMEM. */
static int lstm_errors_batch(detector_job_t *const *js, struct share_cal *ms, int n)
{
    const model_t *m = js[0]->cand;
    const int C = js[0]->C, T = js[0]->window, B = 2 * n;
    const size_t Cz = (size_t)C, sl = model_state_len(m), wl = model_work_len(m, B);
    const uint64_t half = (uint64_t)(T / 2 > 0 ? T / 2 : 1);
    int maxn = 0;
    for (int i = 0; i < n; i++)
        maxn = js[i]->n > maxn ? js[i]->n : maxn;
    float *block = calloc((size_t)B * sl + wl + 2 * (size_t)B * Cz, sizeof(float));
    float **ptrs = malloc(sizeof(float *) * (size_t)B);
    int *act = malloc(sizeof(int) * (size_t)n);
    if (!block || !ptrs || !act) {
        free(block);
        free(ptrs);
        free(act);
        return ERR_NOMEM;
    }
    float *states = block, *work = states + (size_t)B * sl, *x = work + wl, *pred = x + B * Cz;
    for (int t = 0; t + 1 < maxn; t++) {
        const uint64_t phase = (uint64_t)t % (uint64_t)T;
        const int use_a = phase >= half;
        int k = 0;
        for (int i = 0; i < n; i++) {
            const detector_job_t *j = js[i];
            if (t + 1 >= j->n)
                continue;
            float *sa = states + (size_t)(2 * i) * sl, *sb = sa + sl;
            if (phase == 0)
                model_state_reset(m, sa);
            if (phase == half % (uint64_t)T)
                model_state_reset(m, sb);
            const int clamp = j->cfg.clamp_margin >= 0.0f;
            detector__clamp(x + (size_t)(2 * k) * Cz, j->data + (size_t)t * Cz,
                            clamp ? j->lo : NULL, j->hi, C);
            memcpy(x + (size_t)(2 * k + 1) * Cz, x + (size_t)(2 * k) * Cz, sizeof(float) * Cz);
            ptrs[2 * k] = sa;
            ptrs[2 * k + 1] = sb;
            act[k++] = i;
        }
        if (model_step_batch(m, pred, ptrs, x, 2 * k, work) < 0) {
            /* A non-finite input (nothing was updated): each member on its own, as
             * detector__lstm_advance would step it. */
            for (int q = 0; q < k; q++) {
                float *p0 = pred + (size_t)(2 * q) * Cz, *in = x + (size_t)(2 * q) * Cz;
                int rc = model_step(m, p0, ptrs[2 * q], in, work);
                if (rc == 0)
                    rc = model_step(m, p0 + Cz, ptrs[2 * q + 1], in, work);
                if (rc < 0) {
                    const float *raw = js[act[q]]->data + (size_t)t * Cz;
                    memcpy(p0, raw, sizeof(float) * Cz);
                    memcpy(p0 + Cz, raw, sizeof(float) * Cz);
                }
            }
        }
        for (int q = 0; q < k; q++) {
            const detector_job_t *j = js[act[q]];
            const int cfrom = j->n - ms[act[q]].nc;
            if (t + 1 < cfrom)
                continue;
            const float *p = pred + (size_t)(2 * q + (use_a ? 0 : 1)) * Cz;
            float *e = ms[act[q]].err + (size_t)(t + 1 - cfrom) * Cz;
            for (int c = 0; c < C; c++) {
                float v = j->data[(size_t)(t + 1) * Cz + c] - p[c];
                e[c] = isfinite(v) ? v : 1e30f;
            }
        }
    }
    free(block);
    free(ptrs);
    free(act);
    return 0;
}

int detector_job_share_batch(detector_job_t *const *jobs, int n, const detector_job_t *g)
{
    if (!jobs || n < 1 || !g)
        return ERR_INVAL;
    for (int i = 0; i < n; i++)
        if (!jobs[i] || jobs[i]->C != jobs[0]->C)
            return ERR_INVAL;
    /* The members of another size than the group's LSTM train their own (share_fits); the
     * others share it, in step. */
    struct share_cal *ms = calloc((size_t)n, sizeof *ms);
    detector_job_t **sh = malloc(sizeof *sh * (size_t)n);
    if (!ms || !sh) {
        free(ms);
        free(sh);
        return ERR_NOMEM;
    }
    int rc = 0, ns = 0;
    struct model_config a, b;
    for (int i = 0; rc == 0 && i < n; i++) {
        if (jobs[i]->data && !jobs[i]->ran && g->ran && !share_fits(jobs[i], g, &a, &b))
            rc = detector_job_run(jobs[i]);
        else
            sh[ns++] = jobs[i];
    }
    for (int i = 0; rc == 0 && i < ns; i++)
        rc = share_take(sh[i], g);
    /* Every sharing member serves the group's LSTM (take gave each a handle to it): in step. */
    const int batch = rc == 0 && ns > 1 && sh[0]->kind == DET_KIND_LSTM;
    for (int i = 0; rc == 0 && i < ns; i++)
        rc = share_begin(sh[i], &ms[i], batch);
    if (rc == 0 && batch)
        rc = lstm_errors_batch(sh, ms, ns);
    for (int i = 0; rc == 0 && i < ns; i++)
        rc = share_end(sh[i], &ms[i]);
    free(sh);
    for (int i = 0; i < n; i++)
        share_free(&ms[i]);
    free(ms);
    return rc;
}

/* model/detector_train.c: training jobs, their lifecycle and decision. A job copies the serving
 * predictor (create, owner thread), is given the training window by the caller (set_data, any
 * thread: the daemon reads it from its store, vigil-replay from its series), trains an LSTM
 * (afresh, or with warm_epochs from the serving LSTM's weights once one has served; none while
 * the job holds fewer than lstm_min_rows training rows) and fits the
 * linear baseline on all but the newest val_rows readings (run, any thread), scores every
 * predictor on those newest readings and decides what serves; apply (owner thread) installs the
 * decision and recalibrates the error scales and the long window from the validation tail.
 *
 * The decision: for each predictor (new LSTM, new linear baseline, persistence, the serving
 * one) the cost is the mean over channels of its validation MSE divided by the channel's
 * variance. A new predictor may fall back to persistence channel by channel where persistence
 * validates better (and always on channels that were flat in training), since a model that
 * cannot beat "same as last time" on a channel only adds noise there. The best new predictor
 * replaces the serving one only if its cost is lower; the first training always installs one.
 * model_kind narrows the choice: lstm installs a trained LSTM over a linear or persistence
 * predictor whatever they cost (an LSTM then serving is replaced only by a better LSTM), linear
 * trains no LSTM.
 *
 * A group's job (set_pooled) holds several members' windows: each is a series of its own (no
 * training window, linear pair or prediction spans two), and each one's newest rows are held
 * out, since members that run in step share a timeline. The decision validates on all those
 * held-out tails (each member's errors over its own tail's variance, members weighted alike),
 * and the flags of what serves are decided on them too. Each member's job then takes the
 * decision and calibrates on its own rows (detector_calib.c: share, share_batch).
 *
 * This file owns the job (create, the rows, destroy), the trainings, the decision and apply.
 * What the decision measures and calibrates from (the predictors' errors, the channels'
 * statistics, the error scales and the seed of the long window, a group member's share) is in
 * detector_calib.c, the seasonal candidate (season_bins) in detector_season.c: each is a
 * computation of its own over the job's rows, reviewed and changed apart from the lifecycle.
 * struct detector_job is in detector_int.h, shared by the three.
 *
 * Invariants: a job never touches its detector between create and apply; run is a pure
 * function of the job, so results are the same on any thread. Threading: create and apply on
 * the detector's owner thread, run on any thread, one thread at a time per job. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detector_int.h"
#include "err.h"
#include "internal.h"

enum { P_LSTM = 0, P_LINEAR, P_PERSIST, P_SERVING, P_COUNT };
_Static_assert(P_COUNT == DETECTOR__N_PRED, "struct detector_job's cost[] holds one per predictor");

/* The fewest rows of a job's last segment: its validation tail (a third) holds one row. */
#define MIN_TAIL_ROWS 4

int detector_job_create(detector_job_t **out, const detector_t *d)
{
    if (!out || !d)
        return ERR_INVAL;
    if (d->n_seen < (uint64_t)d->cfg.warmup)
        return ERR_RANGE;
    const size_t C = (size_t)d->C;
    detector_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return ERR_NOMEM;
    j->cfg = d->cfg;
    j->C = d->C;
    const size_t E = (size_t)d->cfg.train.max_epochs;
    size_t nf = 3 * C * C + 2 * C + 8 * C + 2 * E;
    j->block = calloc(1, nf * sizeof(float) + 2 * C);
    int rc = ERR_NOMEM;
    if (!j->block)
        goto fail;
    float *p = j->block;
    j->s_ab = p, p += C * C;
    j->s_b = p, p += C;
    j->lin_ab = p, p += C * C;
    j->lin_b = p, p += C;
    j->scale = p, p += C;
    j->rms = p, p += C;
    j->lmean = p, p += C;
    j->lscale = p, p += C;
    j->rinv = p, p += C * C;
    j->curves = p, p += 2 * E;
    j->s_lo = p, p += C;
    j->s_hi = p, p += C;
    j->lo = p, p += C;
    j->hi = p, p += C;
    j->s_persist = (uint8_t *)p;
    j->persist = j->s_persist + C;
    if (d->lstm)
        j->s_lstm = model_share(d->lstm); /* read-only in the job, as where it serves */
    j->s_kind = d->kind;
    memcpy(j->s_ab, d->lin_ab, sizeof(float) * C * C);
    memcpy(j->s_b, d->lin_b, sizeof(float) * C);
    memcpy(j->s_persist, d->persist, C);
    memcpy(j->s_lo, d->lo, sizeof(float) * C);
    memcpy(j->s_hi, d->hi, sizeof(float) * C);
    j->s_version = d->version;
    j->s_window = d->lstm_window;
    j->window = d->cfg.train.window;
    j->version = d->next_version;
    j->idx_end = d->n_seen;
    if (d->cfg.season_bins > 0) {
        const size_t SB = (size_t)d->cfg.season_bins;
        j->sea = calloc(1, sizeof(float) * (C * SB + 7 * C) + C);
        if (!j->sea)
            goto fail;
        float *q = j->sea;
        j->s_prof = q, q += C * SB;
        j->s_a = q, q += C;
        j->s_phi = q, q += C;
        j->o_mean = q, q += C;
        j->o_sd = q, q += C;
        j->o_asd = q, q += C;
        j->o_n0 = q, q += C;
        j->s_period = (int *)q, q += C;
        j->season = (uint8_t *)q;
    }
    *out = j;
    return 0;
fail:
    detector_job_destroy(j);
    return rc;
}

void detector_job_destroy(detector_job_t *j)
{
    if (!j)
        return;
    model_destroy(j->cand);
    model_destroy(j->s_lstm);
    model_destroy(j->base);
    free(j->data);
    free(j->seg);
    free(j->block);
    free(j->sea);
    free(j);
}

/* Segment k: rows [*a, *b), of which [*v, *b) is its held-out tail, its newest min(val_rows,
 * length / 3) rows (for one segment: the job's validation tail). Trainings fit rows [*a, *v)
 * only: the members of a group mostly run in step, so a training row of one member from the
 * time of another member's tail would make that tail (the decision's, or the member's own
 * calibration rows) in-sample in all but name. */
void detector__seg_rows(const detector_job_t *j, int k, int *a, int *v, int *b)
{
    *a = j->seg[k];
    *b = k + 1 < j->nseg ? j->seg[k + 1] : j->n;
    const int len = *b - *a;
    *v = *b - (j->cfg.val_rows < len / 3 ? j->cfg.val_rows : len / 3);
}

/* Copies the newest (at most cap) of the rows of nseg series one after another, lens[k] rows
 * each (rows [sum of lens, C]), into the job: oldest series dropped first, the oldest kept one
 * cut to its newest rows. */
static int set_rows(detector_job_t *j, const float *rows, const int *lens, int nseg, int cap)
{
    if (!j || !rows || !lens || nseg < 1 || j->ran)
        return ERR_INVAL;
    int64_t total = 0;
    for (int k = 0; k < nseg; k++) {
        if (lens[k] < 0)
            return ERR_INVAL;
        total += lens[k];
    }
    if (total > INT32_MAX)
        return ERR_INVAL;
    int n = (int)total, first = 0, cut = 0; /* first kept series, rows cut from its start */
    if (n < j->cfg.warmup)
        return ERR_RANGE;
    if (n > cap) {
        int drop = n - cap;
        while (drop >= lens[first])
            drop -= lens[first++];
        cut = drop;
        rows += (size_t)(n - cap) * (size_t)j->C;
        n = cap;
    }
    const size_t C = (size_t)j->C;
    /* One block: the rows, then the raw scores of the calibration rows (at most n). */
    float *data = malloc(sizeof(float) * ((size_t)n * C + (size_t)n));
    int *seg = malloc(sizeof(int) * (size_t)(nseg - first));
    if (!data || !seg) {
        free(data);
        free(seg);
        return ERR_NOMEM;
    }
    int ns = 0;
    for (int k = first, at = 0; k < nseg; k++) {
        const int len = lens[k] - (k == first ? cut : 0);
        if (len > 0) /* empty series are left out */
            seg[ns++] = at;
        at += len;
    }
    /* The validation tail's window; at least MIN_TAIL_ROWS whatever the warm-up, so the tail
     * (a third of it at most) is never empty (see detector__calib_rows). */
    const int tail_min = j->cfg.warmup > MIN_TAIL_ROWS ? j->cfg.warmup : MIN_TAIL_ROWS;
    if (ns == 0 || n - seg[ns - 1] < tail_min) {
        free(data);
        free(seg);
        return ERR_RANGE;
    }
    for (size_t t = 0, k = 0; t < (size_t)n; t++) {
        while (k + 1 < (size_t)ns && (size_t)seg[k + 1] <= t)
            k++;
        const int start = t == (size_t)seg[k]; /* carry forward within a series only */
        for (size_t c = 0; c < C; c++) {
            float v = rows[t * C + c];
            data[t * C + c] = isfinite(v) ? v : !start ? data[(t - 1) * C + c] : 0.0f;
        }
    }
    free(j->data);
    free(j->seg);
    j->data = data;
    j->seg = seg;
    j->nseg = ns;
    j->val_raw = data + (size_t)n * C;
    j->n = n;
    /* The validation tail: the newest rows of the last series. */
    const int last = n - seg[ns - 1];
    j->n_val = j->cfg.val_rows < last / 3 ? j->cfg.val_rows : last / 3;
    j->n_train = 0;
    for (int k = 0, a, v, b; k < ns; k++) {
        detector__seg_rows(j, k, &a, &v, &b);
        j->n_train += v - a;
    }
    return 0;
}

int detector_job_set_data(detector_job_t *j, const float *rows, int n)
{
    return set_rows(j, rows, &n, 1, j ? j->cfg.history : 0);
}

int detector_job_set_pooled(detector_job_t *j, const float *rows, const int *lens, int nseg)
{
    const int64_t cap = j ? (int64_t)j->cfg.history * DETECTOR_MAX_BATCH : 0;
    int rc = set_rows(j, rows, lens, nseg, cap > 100000000 ? 100000000 : (int)cap);
    if (rc == 0)
        j->pooled = 1;
    return rc;
}

/* The LSTM's training on a pooled job. model_train cuts its windows of T + 1 rows every stride
 * rows of one series; on members' windows laid end to end, a few of them would span two
 * members and teach the jump from one member's newest reading to the next one's oldest. When
 * the members run in step (a fleet of one kind of pump under one schedule) that jump is the
 * same at every boundary, the LSTM learns it, and it then predicts the jump wherever a member
 * looks like the end of a window: every member's errors rise together, on every channel, into
 * false alarms. So the windows are cut here, each inside one segment's training rows, every
 * stride rows as model_train would, and laid end to end for model_train with stride T + 1,
 * which takes them back exactly as they are. Its early-stopping windows are cut as it would
 * cut them from each segment (from the newest val_fraction of its training rows) and laid
 * last, so that they are the newest in every member, not one member's rows from a time the
 * others train on. Any thread. */
static int train_pooled(detector_job_t *j, const model_t *init, const struct model_train_config *tc)
{
    const int T = tc->window, C = j->C;
    const int stride = tc->stride > 0 ? tc->stride : (T / 4 > 0 ? T / 4 : 1);
    const size_t wl = (size_t)(T + 1) * C;
    size_t nw[2] = {0, 0}; /* training windows, early-stopping windows */
    float *buf = NULL;
    for (int pass = 0; pass < 2; pass++) { /* count, then copy */
        size_t w[2] = {0, pass ? nw[0] : 0};
        for (int k = 0, a, v, b; k < j->nseg; k++) {
            detector__seg_rows(j, k, &a, &v, &b);
            const int e = v - (int)((double)(v - a) * tc->val_fraction); /* as model_train */
            for (int part = 0; part < 2; part++)
                for (int s = part ? e : a; s + T + 1 <= (part ? v : e); s += stride, w[part]++)
                    if (buf)
                        memcpy(buf + w[part] * wl, j->data + (size_t)s * C, sizeof(float) * wl);
        }
        if (pass == 1)
            break;
        nw[0] = w[0];
        nw[1] = w[1];
        if (nw[0] < 1 || (tc->val_fraction > 0.0f && nw[1] < 1))
            return ERR_RANGE; /* as model_train's: too little data for an LSTM */
        if (!(buf = malloc(sizeof(float) * (nw[0] + nw[1]) * wl)))
            return ERR_NOMEM;
    }
    struct model_train_config wc = *tc;
    wc.stride = T + 1;
    /* model_train holds out the last (size_t)(rows * val_fraction) rows: the nw[1] windows. */
    const size_t rows = (nw[0] + nw[1]) * (size_t)(T + 1), want = nw[1] * (size_t)(T + 1);
    wc.val_fraction = want > 0 ? (float)(((double)want + 0.5) / (double)rows) : 0.0f;
    while ((size_t)((double)rows * wc.val_fraction) > want)
        wc.val_fraction = nextafterf(wc.val_fraction, 0.0f);
    while ((size_t)((double)rows * wc.val_fraction) < want)
        wc.val_fraction = nextafterf(wc.val_fraction, 1.0f);
    int rc = model_train_cancellable(&j->cand, init, &wc, j->cfg.avg_epochs, j->cancel, buf, rows,
                                     &j->tres);
    free(buf);
    return rc;
}

/* More series than this in a pooled job: the linear baseline is fitted on the newest
 * LINEAR_MAX_SEGS + 1 of them (one indicator column per boundary, see fit_linear). */
#define LINEAR_MAX_SEGS 64

/* Fits the linear baseline on the job's training rows into lin_ab, lin_b. model_linear_fit
 * regresses each row on the previous one; in a pooled job the segments' training rows are
 * laid end to end and the pair across a boundary (one member's reading, the next member's
 * oldest) is no transition of any pump, so each boundary gets an input column of its own that
 * is 1 on that pair's first row and 0 elsewhere: its coefficient absorbs that pair exactly,
 * which leaves the others' least-squares fit as if the pair were not there. Returns
 * model_linear_fit's codes. Any thread. */
static int fit_linear(detector_job_t *j)
{
    const int C = j->C;
    const int k0 = j->nseg - 1 > LINEAR_MAX_SEGS ? j->nseg - 1 - LINEAR_MAX_SEGS : 0;
    const int nb = j->nseg - 1 - k0; /* boundaries */
    int n = 0, a, v, b;
    for (int k = k0; k < j->nseg; k++) {
        detector__seg_rows(j, k, &a, &v, &b);
        n += v - a;
    }
    const int I = C + nb;
    float *buf = NULL, *ab = j->lin_ab;
    if (nb > 0) {
        buf = calloc((size_t)n * I + (size_t)C * I, sizeof(float));
        if (!buf)
            return ERR_NOMEM;
        ab = buf + (size_t)n * I;
        for (int k = k0, t = 0; k < j->nseg; k++) {
            detector__seg_rows(j, k, &a, &v, &b);
            for (int r = a; r < v; r++, t++)
                memcpy(buf + (size_t)t * I, j->data + (size_t)r * C, sizeof(float) * C);
            if (k + 1 < j->nseg)
                buf[(size_t)(t - 1) * I + C + (k - k0)] = 1.0f;
        }
    }
    model_linear_t *lin = NULL;
    int rc = model_linear_fit(&lin, buf ? buf : j->data, (size_t)n, I, C);
    if (rc == 0) {
        model_linear_coef(lin, ab, j->lin_b);
        model_linear_destroy(lin);
        for (int o = 0; nb > 0 && o < C; o++) /* A: the first C columns of [A | B] */
            memcpy(j->lin_ab + (size_t)o * C, ab + (size_t)o * I, sizeof(float) * C);
    }
    free(buf);
    return rc;
}

/* Whether j's training rows are enough to train an LSTM (lstm_min_rows; model_kind lstm asks
 * for one whatever the rows). -1 asks for as many training values as the LSTM has
 * parameters: a model with more free parameters than the values it is fitted to is fixed by
 * its initialisation and the seed as much as by the data, and a short validation tail cannot
 * tell that from a fit. Any thread. */
static int lstm_has_rows(const detector_job_t *j)
{
    const struct detector_config *cfg = &j->cfg;
    if (cfg->lstm_min_rows == 0 || cfg->model_kind == DET_MODEL_LSTM)
        return 1;
    if (cfg->lstm_min_rows > 0)
        return j->n_train >= cfg->lstm_min_rows;
    struct model_config mc;
    detector__model_config(&mc, cfg, j->C);
    return (size_t)j->n_train * (size_t)j->C >= model__param_count(&mc);
}

void detector_job_set_cancel(detector_job_t *j, const atomic_int *cancel)
{
    if (j)
        j->cancel = cancel;
}

/* Channel c's share of a predictor's validation cost: its squared errors on every segment's
 * tail (q [nseg, C] sums) over the tail's length and variance vvar [nseg, C], averaged over the
 * segments with a tail (the last one always has one). */
static double tail_cost(const detector_job_t *j, const double *q, const double *vvar, int c)
{
    const size_t C = (size_t)j->C;
    double term = 0.0;
    int nk = 0;
    for (int k = 0, a, v, b; k < j->nseg; k++) {
        detector__seg_rows(j, k, &a, &v, &b);
        if (b - v < 1)
            continue;
        term += q[(size_t)k * C + c] / (b - v) / vvar[(size_t)k * C + c];
        nk++;
    }
    return term / nk; /* nk >= 1: the last segment's tail is never empty */
}

int detector_job_run(detector_job_t *j)
{
    if (!j || !j->data)
        return ERR_INVAL;
    const int C = j->C, nv = j->n_val;
    const struct detector_config *cfg = &j->cfg;
    const int nc = detector__calib_rows(j), off = nc - nv;
    int rc = 0;
    double *vsse = NULL; /* [P_COUNT, nseg, C] tails' squared errors, then [nseg, C] variances */
    float *err = malloc(sizeof(float) * (size_t)P_COUNT * nc * C);
    double *sse = calloc((size_t)2 * P_COUNT * C + 4 * (size_t)C, sizeof(double));
    if (!err || !sse) {
        rc = ERR_NOMEM;
        goto out;
    }
    double *sseh = sse + (size_t)P_COUNT * C;
    double *mean = sseh + (size_t)P_COUNT * C, *sd = mean + C, *var = sd + C, *floor_ = var + C;

    detector__channel_stats(j, mean, sd, var, floor_);

    struct model_train_config tc = cfg->train;
    tc.seed = cfg->seed + j->version;
    tc.reinit = 1;
    tc.fit_norm = 1;
    /* Warm start: the candidate continues from the serving LSTM's weights (normalisation refit
     * on the new rows) with fewer epochs. */
    const model_t *init = j->s_lstm;
    const int train_lstm = cfg->model_kind != DET_MODEL_LINEAR && lstm_has_rows(j);
    if (!train_lstm) {
        /* No LSTM: the linear baseline and persistence compete with what serves. */
    } else if (cfg->warm_epochs > 0 && j->s_lstm != NULL) {
        tc.reinit = 0;
        tc.max_epochs = cfg->warm_epochs < tc.max_epochs ? cfg->warm_epochs : tc.max_epochs;
    } else {
        struct model_config mc;
        detector__model_config(&mc, cfg, C);
        if (!j->base && (rc = model_create(&j->base, &mc)) < 0)
            goto out;
        init = j->base;
    }
    /* Early in a device's life the rows may not hold a training and an early-stopping window
     * of the configured length: shorten the window (down to 8) rather than train nothing (a
     * pooled job: by its longest segment). */
    int longest = 0;
    for (int k = 0, a, v, b; k < j->nseg; k++) {
        detector__seg_rows(j, k, &a, &v, &b);
        longest = v - a > longest ? v - a : longest;
    }
    int fit = (int)((double)longest * tc.val_fraction) - 1;
    if (tc.val_fraction > 0.0f && fit < tc.window && fit >= 8)
        tc.window = fit;
    j->window = tc.window;
    if (tc.max_epochs > 0) {
        j->tres.train_loss = j->curves;
        j->tres.val_loss = j->curves + cfg->train.max_epochs;
    }
    if (train_lstm) {
        rc = j->nseg > 1 ? train_pooled(j, init, &tc)
                         : model_train_cancellable(&j->cand, init, &tc, cfg->avg_epochs, j->cancel,
                                                   j->data, (size_t)j->n_train, &j->tres);
        if (rc == 0)
            j->have_cand = 1;
        else if (rc != ERR_RANGE && rc != ERR_INVAL)
            goto out;
    }
    rc = fit_linear(j);
    if (rc == 0) {
        j->have_lin = 1;
        for (int k = 0; k < C * C + C; k++)
            if (!isfinite(k < C * C ? j->lin_ab[k] : j->lin_b[k - C * C]))
                j->have_lin = 0;
    } else if (rc == ERR_NOMEM) {
        goto out;
    }
    rc = 0;

    /* The candidate LSTM's input range: the training rows' span plus the margin. */
    const int clamp = cfg->clamp_margin >= 0.0f;
    for (int c = 0; c < C; c++) {
        float lo = INFINITY, hi = -INFINITY;
        for (int k = 0, a, v, b; k < j->nseg; k++) {
            detector__seg_rows(j, k, &a, &v, &b);
            for (int t = a; t < v; t++) {
                float x = j->data[(size_t)t * C + c];
                lo = x < lo ? x : lo;
                hi = x > hi ? x : hi;
            }
        }
        float m = cfg->clamp_margin * (hi - lo) + 1e-6f * (1.0f + fabsf(hi) + fabsf(lo));
        j->lo[c] = lo - m;
        j->hi[c] = hi + m;
    }

    /* Validation errors of every predictor on the held-out tails: every segment's (a group's
     * members: the group decides on all of them, not on whichever member came last), each
     * normalised by its own tail's variance per channel and weighted alike, so a member with
     * a larger spread does not outweigh the others. One segment: its tail, as before. */
    const size_t SC = (size_t)j->nseg * C;
    vsse = calloc((size_t)P_COUNT * SC + SC, sizeof(double));
    if (!vsse) {
        rc = ERR_NOMEM;
        goto out;
    }
    double *vvar = vsse + (size_t)P_COUNT * SC;
    for (int k = 0; k < j->nseg; k++)
        for (int c = 0; c < C; c++)
            vvar[(size_t)k * C + c] = detector__tail_var(j, k, c, mean[c], sd[c]);
    struct detector__pred pcs[P_COUNT] = {
        {DET_KIND_LSTM, j->cand, NULL, NULL, clamp ? j->lo : NULL, j->hi, C, j->window},
        {DET_KIND_LINEAR, NULL, j->lin_ab, j->lin_b, NULL, NULL, C, cfg->train.window},
        {DET_KIND_PERSISTENCE, NULL, NULL, NULL, NULL, NULL, C, cfg->train.window},
        {j->s_kind, j->s_lstm, j->s_ab, j->s_b, clamp ? j->s_lo : NULL, j->s_hi, C, j->s_window},
    };
    int avail[P_COUNT] = {j->have_cand, j->have_lin, 1, j->s_version > 0};
    for (int p = 0; p < P_COUNT; p++) {
        j->cost[p] = j->cost_alone[p] = NAN;
        if (!avail[p])
            continue;
        if ((rc = detector__run_errors(&pcs[p], j, nc, cfg->drift_all ? 0 : -1, cfg->train.window,
                                       cfg->horizon, err + (size_t)p * nc * C, sseh + (size_t)p * C,
                                       vsse + (size_t)p * SC)) < 0)
            goto out;
        for (int k = off; k < nc; k++)
            for (int c = 0; c < C; c++) {
                double e = err[((size_t)p * nc + k) * C + c];
                sse[p * C + c] += e * e;
            }
    }
    /* Per-channel persistence fallback and costs. */
    uint8_t flags[P_COUNT][DETECTOR_MAX_CHANNELS];
    for (int p = 0; p < P_COUNT; p++) {
        if (!avail[p])
            continue;
        double cost = 0.0, alone = 0.0; /* alone: no per-channel fallback but on flat ones */
        for (int c = 0; c < C; c++) {
            int flat = !(sd[c] > 1e-6 * (1.0 + fabs(mean[c])));
            /* What serves keeps its flags, except in a group's job: there they are the
             * leader's, which hold the leader's own flat channels (detector_job_share), so the
             * group's are decided afresh on the pooled rows, as a candidate's are. */
            if (p == P_SERVING && !j->pooled)
                flags[p][c] = j->s_persist[c];
            else if (p == P_PERSIST)
                flags[p][c] = 1;
            else
                flags[p][c] =
                    flat || (cfg->channel_fallback && sseh[P_PERSIST * C + c] <= sseh[p * C + c]);
            cost += tail_cost(j, vsse + (size_t)(flags[p][c] ? P_PERSIST : p) * SC, vvar, c);
            alone += tail_cost(j, vsse + (size_t)(flat ? P_PERSIST : p) * SC, vvar, c);
        }
        j->cost[p] = cost / C;
        j->cost_alone[p] = alone / C;
    }
    int best = P_PERSIST;
    if (avail[P_LINEAR] && j->cost[P_LINEAR] < j->cost[best])
        best = P_LINEAR;
    /* The LSTM must beat the simpler predictors by lstm_margin: it extrapolates worst when a
     * slow channel leaves the range it was trained on. */
    /* model_kind lstm: an LSTM that trained (and validates to a finite cost) is the best
     * candidate whatever the others cost, and replaces a serving linear or persistence
     * predictor outright; a serving LSTM yields only to a candidate LSTM that validates
     * better (with none, it keeps serving). */
    const int want_lstm = cfg->model_kind == DET_MODEL_LSTM;
    const int lstm_ok = avail[P_LSTM] && isfinite(j->cost[P_LSTM]);
    if (want_lstm ? lstm_ok
                  : avail[P_LSTM] && j->cost[P_LSTM] < (1.0 - cfg->lstm_margin) * j->cost[best])
        best = P_LSTM;
    if (want_lstm && avail[P_SERVING] && j->s_kind == DET_KIND_LSTM)
        j->swap = best == P_LSTM && j->cost[P_LSTM] < j->cost[P_SERVING];
    else
        j->swap = !avail[P_SERVING] || j->cost[best] < j->cost[P_SERVING] ||
                  (want_lstm && best == P_LSTM);
    int serve = j->swap ? best : P_SERVING;
    j->kind = serve == P_SERVING ? j->s_kind : (enum detector_kind)pcs[serve].kind;
    memcpy(j->persist, flags[serve], (size_t)C);
    if (cfg->season_bins > 0 &&
        (rc = detector__season_choose(j, err + (size_t)serve * nc * C,
                                      err + (size_t)P_PERSIST * nc * C, sse + serve * C,
                                      sse + P_PERSIST * C, mean, sd, nc)) < 0)
        goto out;

    rc = detector__calibrate(j, err + (size_t)serve * nc * C, err + (size_t)P_PERSIST * nc * C,
                             sse + serve * C, sse + P_PERSIST * C, floor_, nc);
    if (rc < 0)
        goto out;
    j->n_raw = nc;
    j->ran = 1;
out:
    free(vsse);
    free(sse);
    free(err);
    return rc;
}

/* The profiles of the channels j chose (season[c] set), in channel order, in a new allocation
 * of n x season_bins floats for n such channels (*out NULL when n is 0): the detector's s_prof
 * once j is applied (detector_int.h). Caller owns *out; free with free. Returns ERR_NOMEM
 * (*out NULL). */
static int season_profiles(float **out, const detector_job_t *j)
{
    const size_t SB = (size_t)j->cfg.season_bins;
    const size_t n = detector__season_count(j->season, j->C);
    *out = NULL;
    if (n == 0)
        return 0;
    float *p = malloc(sizeof(float) * n * SB), *q = p;
    if (!p)
        return ERR_NOMEM;
    for (int c = 0; c < j->C; c++) {
        if (j->season[c]) {
            memcpy(q, j->s_prof + (size_t)c * SB, sizeof(float) * SB);
            q += SB;
        }
    }
    *out = p;
    return 0;
}

void detector_job_number_after(detector_job_t *j, uint32_t version)
{
    if (!j || version == UINT32_MAX)
        return;
    if (j->version <= version)
        j->version = version + 1;
    /* A swap installs under install when set (a group member's), equal to version then. */
    if (j->install && j->install <= version)
        j->install = version + 1;
}

int detector_job_apply(detector_t *d, detector_job_t *j, struct detector_train_info *info)
{
    if (!d || !j || j->C != d->C || !j->ran)
        return ERR_INVAL;
    const size_t C = (size_t)d->C;
    struct detector_train_info tmp;
    if (!info)
        info = &tmp;
    memset(info, 0, sizeof *info);
    int stale = j->s_version != d->version;
    int swap = j->swap && !stale;
    int recal = !stale && (swap || d->cfg.recalibrate);
    int reseason = 0;
    /* The new profiles are allocated before anything changes, so a failure leaves d as it
     * was. */
    float *prof = NULL;
    struct detector__opinion *opin = NULL;
    int n_op = 0;
    if (recal && d->season && j->season) {
        int rc = season_profiles(&prof, j);
        if (rc == 0 && d->cfg.season_opinion)
            rc = detector__opinion_make(&opin, &n_op, &j->cfg, j->C, j->season, j->s_period,
                                        j->s_prof, j->o_mean, j->o_sd, j->o_asd, j->o_n0);
        if (rc < 0) {
            free(prof);
            return rc;
        }
    }
    info->version = j->version;
    if (d->next_version <= j->version)
        d->next_version = j->version + 1;
    if (swap) {
        if (j->kind == DET_KIND_LSTM) {
            model_destroy(d->lstm);
            /* A group member's model (install set) stays the group's one shared copy. */
            d->lstm = detector__serving_model(d, j->cand, j->install == 0);
            j->cand = NULL;
            memcpy(d->lo, j->lo, sizeof(float) * C);
            d->lstm_window = j->window;
            memcpy(d->hi, j->hi, sizeof(float) * C);
        }
        if (j->kind == DET_KIND_LINEAR) {
            memcpy(d->lin_ab, j->lin_ab, sizeof(float) * C * C);
            memcpy(d->lin_b, j->lin_b, sizeof(float) * C);
        }
        d->kind = j->kind;
        d->version = j->install ? j->install : j->version;
    }
    if (recal) {
        /* Recalibrate whatever serves now on the newest data. */
        memcpy(d->persist, j->persist, C);
        memcpy(d->err_scale, j->scale, sizeof(float) * C);
        memcpy(d->resid_rms, j->rms, sizeof(float) * C);
        memcpy(d->lmean, j->lmean, sizeof(float) * C);
        memcpy(d->lscale, j->lscale, sizeof(float) * C);
        if (d->cfg.err_corr)
            memcpy(d->rinv, j->rinv, sizeof(float) * C * C);
        if (d->season && j->season) {
            /* A new profile or choice changes the next prediction: rebuild it below. */
            for (size_t c = 0; c < C; c++)
                reseason |= d->season[c] | j->season[c];
            memcpy(d->season, j->season, C);
            memcpy(d->s_period, j->s_period, sizeof(int) * C);
            free(d->s_prof);
            d->s_prof = prof;
            memcpy(d->s_a, j->s_a, sizeof(float) * C);
            memcpy(d->s_phi, j->s_phi, sizeof(float) * C);
            free(d->o_rec); /* season_opinion: the profiles found and not chosen */
            d->o_rec = opin;
            d->o_prof = opin ? (float *)(opin + n_op) : NULL;
            d->n_op = n_op;
        }
        detector__windows_seed(d, j->val_raw, j->n_raw);
        d->in_anomaly = 0;
        d->ep_trip = 0; /* the acceptance counts from the reseed, as in_anomaly */
        d->below = 0;   /* also ends hold_decay's tracking of the peak after an episode */
        /* hold_decay's quiet holds a decay that the short window holds; the reseeded window
         * holds none, so the quiet ends with it (a training inside it kept it up to err_short
         * readings more: the sixty-seventh round's leftover, docs/detection.md). */
        d->dk_left = 0;
        /* Inside an open episode the reseed zeroes in_anomaly, by which hold_decay knows an
         * episode held past its window (a lasting change, which it leaves): the episode's peak
         * becomes NaN, so the rule ends nothing more of it (the next opening sets the peak
         * again). Before, a fault held that long and then halfway back was ended and split
         * (review of the sixty-eighth round, test_hold_decay_reseed_open). */
        if (d->det_state == DET_ANOMALY)
            d->dk_peak = NAN;
        if (d->det_state == DET_LEARNING)
            d->det_state = DET_NORMAL;
    }
    if (swap || !d->have_pred || reseason)
        detector__rebuild_state(d);
    /* Schedule: a second training at second_at readings (the first model saw little), then
     * every retrain_every readings. */
    if (d->cfg.second_at > 0 && d->n_seen < (uint64_t)d->cfg.second_at)
        d->due_at = (uint64_t)d->cfg.second_at;
    else if (d->cfg.retrain_every > 0)
        d->due_at = d->n_seen + (uint64_t)d->cfg.retrain_every;
    else
        d->due_at = UINT64_MAX;
    d->train_ts = d->last_ts; /* retrain_seconds counts from here (DETECTOR_NO_TIME: unknown) */
    info->swapped = swap;
    info->kind = d->kind;
    info->val_mse_lstm = j->cost[P_LSTM];
    info->val_mse_linear = j->cost[P_LINEAR];
    info->val_mse_persistence = j->cost[P_PERSIST];
    info->val_mse_serving = j->cost[P_SERVING];
    info->val_mse_lstm_alone = j->cost_alone[P_LSTM];
    info->val_mse_linear_alone = j->cost_alone[P_LINEAR];
    info->epochs = j->have_cand ? j->tres.epochs : 0;
    for (int e = 0; e < info->epochs && e < 64; e++) {
        info->train_loss[e] = j->tres.train_loss[e];
        info->val_loss[e] = j->tres.val_loss[e];
    }
    info->rows = (size_t)j->n_train;
    memcpy(info->persist, d->persist, C);
    for (size_t c = 0; d->season && c < C; c++) {
        info->season[c] = d->season[c];
        info->season_period[c] = d->s_period[c];
    }
    return 0;
}

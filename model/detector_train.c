/* model/detector_train.c: training jobs. A job copies the serving predictor (create, owner
 * thread), is given the training window by the caller (set_data, any thread: the daemon reads
 * it from its store, vigil-replay from its series), trains an LSTM (afresh, or with warm_epochs
 * from the serving LSTM's weights once one has served) and fits the linear baseline on all but
 * the newest val_rows readings (run, any thread), scores every predictor on
 * those newest readings and decides what serves; apply (owner thread) installs the decision and
 * recalibrates the error scales and the long window from the validation tail.
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
 * decision (share; share_batch steps the shared LSTM for all members at once) and calibrates
 * on its own rows, a channel flat in them predicted by persistence.
 *
 * Invariants: a job never touches its detector between create and apply; run is a pure
 * function of the job, so results are the same on any thread. Threading: create and apply on
 * the detector's owner thread, run on any thread, one thread at a time per job. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detector_int.h"
#include "err.h"

enum { P_LSTM = 0, P_LINEAR, P_PERSIST, P_SERVING, P_COUNT };

/* The fewest rows of a job's last segment: its validation tail (a third) holds one row. */
#define MIN_TAIL_ROWS 4

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
    int pooled;       /* set_pooled: a group's job, whose decision serves every member */
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
    double cost[P_COUNT];
    struct model_train_result tres;
    float *curves; /* [2, max_epochs] */
    void *block;
};

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
static void seg_rows(const detector_job_t *j, int k, int *a, int *v, int *b)
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
     * (a third of it at most) is never empty (see calib_rows). */
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
        seg_rows(j, k, &a, &v, &b);
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

/* The calibration rows: the validation tail only, or (calib_all) every row of the last segment
 * after one window of context. run_errors writes an error for every row but a segment's first
 * (nothing predicts it), so the context is at least one row: the calibration rows are then all
 * written, however short the segment (set_rows keeps the last one at least MIN_TAIL_ROWS long,
 * so the tail holds at least one row). */
static int calib_rows(const detector_job_t *j)
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

/* One predictor as the job sees it. */
struct pred_ctx {
    enum detector_kind kind;
    const model_t *lstm;
    const float *ab, *b;
    const float *lo, *hi; /* LSTM input range, or NULL */
    int C, T;
};

/* Runs a predictor over the job's rows and writes its one-step errors on the last ncal rows:
 * err [ncal, C], err[k, c] = actual - predicted for row n - ncal + k (the caller keeps them
 * inside the last segment). Adds to sseh[C] the squared errors of its h-step-ahead forecasts
 * (h >= 1) of the rows from hfrom on (hfrom < 0: of each segment's held-out tail) that are at
 * least skip = min(win, its length / 4) rows into their segment, and, when vsse is not NULL,
 * to vsse [nseg, C] the squared one-step errors of each segment's held-out tail (seg_rows), on
 * which a pooled job decides. Each segment is run on its own: the predictor starts afresh at
 * its first row and never predicts across its end. */
static int run_errors(const struct pred_ctx *pc, const detector_job_t *j, int ncal, int hfrom,
                      int win, int h, float *err, double *sseh, double *vsse)
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
        if (k + 1 < j->nseg && t == j->seg[k + 1]) {
            seg_rows(j, ++k, &a, &v, &b);
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
static double tail_var(const detector_job_t *j, int k, int c, double mean, double sd)
{
    const int C = j->C;
    int a, v, b;
    seg_rows(j, k, &a, &v, &b);
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
static void channel_stats(const detector_job_t *j, double *mean, double *sd, double *var,
                          double *floor_)
{
    const int C = j->C, nt = j->n_train;
    const struct detector_config *cfg = &j->cfg;
    for (int c = 0; c < C; c++) {
        double s = 0.0, ss = 0.0;
        for (int k = 0, a, v, b; k < j->nseg; k++) {
            seg_rows(j, k, &a, &v, &b);
            for (int t = a; t < v; t++)
                s += j->data[(size_t)t * C + c];
        }
        mean[c] = s / nt;
        for (int k = 0, a, v, b; k < j->nseg; k++) {
            seg_rows(j, k, &a, &v, &b);
            for (int t = a; t < v; t++) {
                double dv = j->data[(size_t)t * C + c] - mean[c];
                ss += dv * dv;
            }
        }
        sd[c] = sqrt(ss / nt);
        var[c] = tail_var(j, j->nseg - 1, c, mean[c], sd[c]);
        /* The RMS of one-step changes: the floor's scale for a slow channel whose level spans
         * far more than its per-reading noise (a temperature). */
        double ds = 0.0;
        int nd = 0; /* changes within a series (none across a pooled job's boundaries) */
        for (int k = 0, a, v, b; k < j->nseg; k++) {
            seg_rows(j, k, &a, &v, &b);
            for (int t = a + 1; t < v; t++, nd++) {
                double dv = j->data[(size_t)t * C + c] - j->data[(size_t)(t - 1) * C + c];
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
                        const float *scale, int nc, int C)
{
    const size_t Cz = (size_t)C;
    double *r = calloc(2 * Cz * Cz, sizeof(double)), *v = r + Cz * Cz;
    if (!r)
        return ERR_NOMEM;
    for (int k = 0; k < nc; k++) {
        double z[DETECTOR_MAX_CHANNELS];
        for (int c = 0; c < C; c++)
            z[c] = (double)(persist[c] ? err_p : err_s)[(size_t)k * Cz + c] / scale[c];
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
static int calibrate(detector_job_t *j, const float *err_s, const float *err_p, const double *sse_s,
                     const double *sse_p, const double *floor_, int nc)
{
    const int C = j->C, n = j->n, nv = j->n_val;
    const struct detector_config *cfg = &j->cfg;
    float ek[DETECTOR_MAX_CHANNELS];
    /* What predicts each channel: persistence, unless the seasonal profile does (its errors
     * are err_s's then: season_choose). */
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
        j->scale[c] = (float)fmax(j->rms[c], floor_[c]);
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
        j->lscale[c] = pers[c] ? 0.0f : (float)fmax(sqrt(ss / n), floor_[c]);
    }
    /* The correlation is used once the calibration tail is whole (val_rows rows): a first
     * training on few readings calibrates on a minute or so of one operating point, and its
     * model meets most others out of its data, where its errors are extrapolation, not the
     * noise whose coupling those rows show. */
    if (cfg->err_corr && nc >= cfg->val_rows) {
        int rc = corr_weights(j->rinv, err_s, err_p, pers, j->scale, nc, C);
        if (rc < 0)
            return rc;
    } else {
        memset(j->rinv, 0, sizeof(float) * (size_t)C * C);
        for (int c = 0; c < C; c++)
            j->rinv[(size_t)c * C + c] = 1.0f;
    }
    for (int k = 0; k < nc; k++) {
        for (int c = 0; c < C; c++)
            ek[c] = (pers[c] ? err_p : err_s)[(size_t)k * C + c];
        j->val_raw[k] = detector__raw_score(ek, j->scale, j->data + (size_t)(n - nc + k) * C,
                                            j->lmean, j->lscale, cfg->level_weight, cfg->agg_top,
                                            cfg->err_corr ? j->rinv : NULL, C, NULL);
    }
    j->n_raw = nc;
    return 0;
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
            seg_rows(j, k, &a, &v, &b);
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
    int rc = model_train(&j->cand, init, &wc, buf, rows, &j->tres);
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
        seg_rows(j, k, &a, &v, &b);
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
            seg_rows(j, k, &a, &v, &b);
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
 * scratch. Returns 1 when a period was found, else 0. Any thread. */
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
 * predictor's in err_s and sse_s (calibrate takes a seasonal channel's from there). Returns
 * ERR_NOMEM. Any thread. */
static int season_choose(detector_job_t *j, float *err_s, const float *err_p, double *sse_s,
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
    for (int c = 0; c < C; c++) {
        if (!(sd[c] > 1e-6 * (1.0 + fabs(mean[c]))) ||
            !season_fit(j, c, nc, errq, r, r + nr, r + nr + v, r + nr + v + SB))
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
    return 0;
}

int detector_job_run(detector_job_t *j)
{
    if (!j || !j->data)
        return ERR_INVAL;
    const int C = j->C, nv = j->n_val;
    const struct detector_config *cfg = &j->cfg;
    const int nc = calib_rows(j), off = nc - nv;
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

    channel_stats(j, mean, sd, var, floor_);

    struct model_train_config tc = cfg->train;
    tc.seed = cfg->seed + j->version;
    tc.reinit = 1;
    tc.fit_norm = 1;
    /* Warm start: the candidate continues from the serving LSTM's weights (normalisation refit
     * on the new rows) with fewer epochs. */
    const model_t *init = j->s_lstm;
    if (cfg->model_kind == DET_MODEL_LINEAR) {
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
        seg_rows(j, k, &a, &v, &b);
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
    if (cfg->model_kind != DET_MODEL_LINEAR) {
        rc = j->nseg > 1 ? train_pooled(j, init, &tc)
                         : model_train(&j->cand, init, &tc, j->data, (size_t)j->n_train, &j->tres);
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
            seg_rows(j, k, &a, &v, &b);
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
            vvar[(size_t)k * C + c] = tail_var(j, k, c, mean[c], sd[c]);
    struct pred_ctx pcs[P_COUNT] = {
        {DET_KIND_LSTM, j->cand, NULL, NULL, clamp ? j->lo : NULL, j->hi, C, j->window},
        {DET_KIND_LINEAR, NULL, j->lin_ab, j->lin_b, NULL, NULL, C, cfg->train.window},
        {DET_KIND_PERSISTENCE, NULL, NULL, NULL, NULL, NULL, C, cfg->train.window},
        {j->s_kind, j->s_lstm, j->s_ab, j->s_b, clamp ? j->s_lo : NULL, j->s_hi, C, j->s_window},
    };
    int avail[P_COUNT] = {j->have_cand, j->have_lin, 1, j->s_version > 0};
    for (int p = 0; p < P_COUNT; p++) {
        j->cost[p] = NAN;
        if (!avail[p])
            continue;
        if ((rc = run_errors(&pcs[p], j, nc, cfg->drift_all ? 0 : -1, cfg->train.window,
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
        double cost = 0.0;
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
            const double *q = vsse + (size_t)(flags[p][c] ? P_PERSIST : p) * SC;
            double term = 0.0;
            int nk = 0;
            for (int k = 0, a, v, b; k < j->nseg; k++) {
                seg_rows(j, k, &a, &v, &b);
                if (b - v < 1)
                    continue;
                term += q[(size_t)k * C + c] / (b - v) / vvar[(size_t)k * C + c];
                nk++;
            }
            cost += term / nk; /* nk >= 1: the last segment's tail is never empty */
        }
        j->cost[p] = cost / C;
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
        (rc = season_choose(j, err + (size_t)serve * nc * C, err + (size_t)P_PERSIST * nc * C,
                            sse + serve * C, sse + P_PERSIST * C, mean, sd, nc)) < 0)
        goto out;

    rc = calibrate(j, err + (size_t)serve * nc * C, err + (size_t)P_PERSIST * nc * C,
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
    /* Every member serves the group's one copy of the weights. */
    model_t *copy = kind == DET_KIND_LSTM ? model_share(lstm) : NULL;
    model_destroy(j->cand);
    j->cand = copy;
    j->have_cand = copy != NULL;
    memcpy(j->lin_ab, sw ? g->lin_ab : g->s_ab, sizeof(float) * Cz * Cz);
    memcpy(j->lin_b, sw ? g->lin_b : g->s_b, sizeof(float) * Cz);
    memcpy(j->lo, sw ? g->lo : g->s_lo, sizeof(float) * Cz);
    memcpy(j->hi, sw ? g->hi : g->s_hi, sizeof(float) * Cz);
    memcpy(j->persist, g->persist, Cz);
    j->window = sw ? g->window : g->s_window;
    j->kind = kind;
    /* A member whose serving version is not the group's (it just joined) installs it. The
     * decision is recorded under the group candidate's own number unless the member installs
     * something (the group's swap, or what serves the group for a member that just joined):
     * a kept model must not be recorded again under the version that serves. */
    j->swap = sw || j->s_version != version;
    j->install = version;
    j->version = j->swap ? version : g->version;
    memcpy(j->cost, g->cost, sizeof j->cost);
    j->tres = g->tres;
    const size_t E = (size_t)cfg->train.max_epochs;
    memcpy(j->curves, g->curves, sizeof(float) * 2 * E);
    j->tres.train_loss = j->curves;
    j->tres.val_loss = j->curves + E;
    return 0;
}

/* A member's calibration while it is shared: its one-step errors on its nc calibration rows,
 * [2, nc, C] (the shared predictor's, then persistence's), and in one block the squared errors
 * over the tail sse [2, C], sseh [2, C] (run_errors', unused), mean, sd, var, floor_ [C]. */
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
    m->nc = calib_rows(j);
    m->err = malloc(sizeof(float) * 2 * (size_t)m->nc * Cz);
    m->sse = calloc(8 * Cz, sizeof(double));
    if (!m->err || !m->sse)
        return ERR_NOMEM;
    m->sseh = m->sse + 2 * Cz;
    m->mean = m->sseh + 2 * Cz;
    m->sd = m->mean + Cz;
    m->var = m->sd + Cz;
    m->floor_ = m->var + Cz;
    channel_stats(j, m->mean, m->sd, m->var, m->floor_);
    /* The group's per-channel fallback to persistence was decided on the pooled rows; a
     * channel flat in this member's own rows falls back whatever the group decided, as in a
     * training of its own (a stuck or constant sensor of one member is predicted exactly,
     * not by a model fitted to the other members' moving channel). */
    for (int c = 0; c < C; c++)
        if (!(m->sd[c] > 1e-6 * (1.0 + fabs(m->mean[c]))))
            j->persist[c] = 1;
    const int clamp = cfg->clamp_margin >= 0.0f;
    struct pred_ctx pcs[2] = {
        {j->kind, j->cand, j->lin_ab, j->lin_b, clamp ? j->lo : NULL, j->hi, C, j->window},
        {DET_KIND_PERSISTENCE, NULL, NULL, NULL, NULL, NULL, C, cfg->train.window},
    };
    for (int p = lstm_later ? 1 : 0; p < 2; p++) {
        int rc = run_errors(&pcs[p], j, m->nc, j->n - j->n_val, cfg->train.window, 1,
                            m->err + (size_t)p * m->nc * Cz, m->sseh + (size_t)p * Cz, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Sums the tail's squared errors and calibrates j (calibrate). Returns ERR_NOMEM. */
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
    int rc = calibrate(j, m->err, m->err + (size_t)nc * Cz, m->sse, m->sse + Cz, m->floor_, nc);
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
 * run_errors: each window is one series from its row 0 (all share the phase of the stagger,
 * so they reset together), inputs clamped to the group's range, a failed step predicting the
 * reading itself. Any thread. Returns 0 or ERR_NOMEM. */
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
    struct share_cal *ms = calloc((size_t)n, sizeof *ms);
    if (!ms)
        return ERR_NOMEM;
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++)
        rc = share_take(jobs[i], g);
    /* Every member serves the group's LSTM (take gave each a handle to it): in step. */
    const int batch = rc == 0 && jobs[0]->kind == DET_KIND_LSTM && n > 1;
    for (int i = 0; rc == 0 && i < n; i++)
        rc = share_begin(jobs[i], &ms[i], batch);
    if (rc == 0 && batch)
        rc = lstm_errors_batch(jobs, ms, n);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = share_end(jobs[i], &ms[i]);
    for (int i = 0; i < n; i++)
        share_free(&ms[i]);
    free(ms);
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
        d->below = 0;
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

/* model/train.c: training. The step-level trainer (forward over a minibatch of windows,
 * backpropagation through time, global-norm clipping, Adam) and model_train, the epoch loop
 * with shuffling, a time-ordered validation split and early stopping.
 *
 * Invariants: a trainer owns a private copy of the model, so the serving model is never
 * touched. Parameters, gradients and both Adam moments share one layout (internal.h), and all
 * activations for the largest minibatch are allocated once at create and split into named
 * arrays; the step itself never allocates. Each window starts from the zero state (truncated
 * BPTT over T steps). The loss is the mean over all T * nb * O standardised targets, exactly
 * as PyTorch's MSELoss/HuberLoss with reduction "mean", and clipping and Adam follow
 * torch.nn.utils.clip_grad_norm_ and torch.optim.Adam (1.13), so the parity test can run the
 * same steps in both. Deterministic for a seed with a single-threaded BLAS. Any thread; one
 * trainer is used by one thread at a time.
 *
 * Averaged weights (model_train_averaged): Adam at a high rate ends wherever its last noisy
 * steps left the weights, which the seed and the minibatch order decide. An exponential moving
 * average of the weights over the steps (Polyak averaging) sits in the middle of that noise.
 * The raw weights keep training; the average is what early stopping validates and what is
 * returned. The average's time constant is given in epochs, not steps, so a device with few
 * rows (one minibatch an epoch) averages over as many epochs as one with thousands.
 *
 * Cancelling (model_train_cancellable): the caller's flag is read before each minibatch; a set
 * flag ends the training with ERR_CLOSED like any failure, so only the private copy is lost. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "internal.h"

struct model_trainer {
    model_t *m;
    struct model_train_config cfg;
    int T, B; /* window length and largest minibatch */
    long step;
    float *grad, *adam_m, *adam_v; /* [n_params] each */
    struct model_views g;          /* views of grad */
    /* Activations for up to B windows, time-major with nb rows per step:
     * xs [T + 1, nb, I] standardised inputs (rows of step t + 1 give the targets of step t),
     * target, y, dy [T, nb, O]; per layer act [T, nb, G], c, tc, h [T, nb, H];
     * dh, dx [T, nb, H] (gradient w.r.t. a layer's output and input, swapped going down);
     * dpre [T, nb, G]; dc, dhn [nb, H]. */
    float *xs, *target, *y, *dy;
    float *act[MODEL_MAX_LAYERS], *c[MODEL_MAX_LAYERS], *tc[MODEL_MAX_LAYERS], *h[MODEL_MAX_LAYERS];
    float *dh, *dx, *dpre, *dc, *dhn;
    float *wt; /* [H, G] transposed recurrent weights, scratch of lstm_forward */
    float *block;
};

void model_train_config_default(struct model_train_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->window = 64;
    cfg->stride = 0;
    cfg->batch = 32;
    cfg->max_epochs = 50;
    cfg->patience = 5;
    cfg->val_fraction = 0.2f;
    cfg->lr = 1e-3f;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->eps = 1e-8f;
    cfg->clip_norm = 1.0f;
    cfg->huber_delta = 0.0f;
    cfg->fit_norm = 1;
    cfg->reinit = 0;
    cfg->seed = 1;
}

static int step_config_check(const struct model_train_config *cfg)
{
    if (!cfg || cfg->window < 1 || cfg->window > 100000 || cfg->batch < 1 || cfg->batch > 100000 ||
        !(cfg->lr > 0.0f) || !(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f) ||
        !(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f) || !(cfg->eps > 0.0f) ||
        !(cfg->clip_norm >= 0.0f) || !(cfg->huber_delta >= 0.0f) || !isfinite(cfg->lr) ||
        !isfinite(cfg->clip_norm) || !isfinite(cfg->huber_delta))
        return ERR_INVAL;
    return 0;
}

int model_trainer_create(model_trainer_t **out, const model_t *init,
                         const struct model_train_config *cfg)
{
    if (step_config_check(cfg) < 0)
        return ERR_INVAL;
    model_trainer_t *tr = calloc(1, sizeof *tr);
    if (!tr)
        return ERR_NOMEM;
    int rc = model_clone(&tr->m, init);
    if (rc < 0)
        goto fail_tr;
    tr->cfg = *cfg;
    tr->T = cfg->window;
    tr->B = cfg->batch;
    const size_t T = (size_t)tr->T, B = (size_t)tr->B, I = (size_t)init->cfg.n_inputs;
    const size_t O = (size_t)init->cfg.n_outputs, H = (size_t)init->cfg.n_hidden, G = 4 * H;
    const size_t L = (size_t)init->cfg.n_layers, np = init->n_params;
    size_t nf = 3 * np + (T + 1) * B * I + 3 * T * B * O + L * T * B * (G + 3 * H) + 2 * T * B * H +
                T * B * G + 2 * B * H + H * G;
    tr->block = calloc(nf, sizeof(float));
    if (!tr->block) {
        rc = ERR_NOMEM;
        goto fail_model;
    }
    float *p = tr->block;
    tr->grad = p, p += np;
    tr->adam_m = p, p += np;
    tr->adam_v = p, p += np;
    tr->xs = p, p += (T + 1) * B * I;
    tr->target = p, p += T * B * O;
    tr->y = p, p += T * B * O;
    tr->dy = p, p += T * B * O;
    for (size_t l = 0; l < L; l++) {
        tr->act[l] = p, p += T * B * G;
        tr->c[l] = p, p += T * B * H;
        tr->tc[l] = p, p += T * B * H;
        tr->h[l] = p, p += T * B * H;
    }
    tr->dh = p, p += T * B * H;
    tr->dx = p, p += T * B * H;
    tr->dpre = p, p += T * B * G;
    tr->dc = p, p += B * H;
    tr->dhn = p, p += B * H;
    tr->wt = p;
    model__views(tr->m, tr->grad, &tr->g);
    *out = tr;
    return 0;
fail_model:
    model_destroy(tr->m);
fail_tr:
    free(tr);
    return rc;
}

void model_trainer_destroy(model_trainer_t *tr)
{
    if (!tr)
        return;
    free(tr->block);
    model_destroy(tr->m);
    free(tr);
}

const model_t *model_trainer_model(const model_trainer_t *tr)
{
    return tr->m;
}

model_t *model__trainer_model_mut(model_trainer_t *tr)
{
    return tr->m;
}

const float *model__trainer_grads(const model_trainer_t *tr)
{
    return tr->grad;
}

/* Forward over nb windows; returns the loss (or -1 for non-finite input). */
static int forward(model_trainer_t *tr, const float *windows, int nb, float *loss)
{
    const model_t *m = tr->m;
    const int T = tr->T, I = m->cfg.n_inputs, O = m->cfg.n_outputs, H = m->cfg.n_hidden;
    const int L = m->cfg.n_layers;
    /* Standardise and transpose [nb, T + 1, I] window-major into [T + 1, nb, I]. */
    for (int b = 0; b < nb; b++)
        for (int t = 0; t <= T; t++) {
            const float *src = windows + ((size_t)b * (T + 1) + t) * I;
            float *dst = tr->xs + ((size_t)t * nb + b) * I;
            for (int i = 0; i < I; i++) {
                if (!isfinite(src[i]))
                    return ERR_INVAL;
                dst[i] = (src[i] - m->mean[i]) / m->scale[i];
            }
        }
    for (int t = 0; t < T; t++)
        for (int b = 0; b < nb; b++)
            memcpy(tr->target + ((size_t)t * nb + b) * O, tr->xs + ((size_t)(t + 1) * nb + b) * I,
                   sizeof(float) * (size_t)O);
    for (int l = 0; l < L; l++) {
        const float *x = l == 0 ? tr->xs : tr->h[l - 1];
        lstm_forward(tr->act[l], tr->c[l], tr->tc[l], tr->h[l], tr->wt, x, m->p.w[l], m->p.b_ih[l],
                     m->p.b_hh[l], T, nb, m->in[l], H);
    }
    dense_forward(tr->y, tr->h[L - 1], m->p.fc_w, m->p.fc_b, T * nb, H, O);
    size_t n = (size_t)T * nb * O;
    *loss = tr->cfg.huber_delta > 0.0f
                ? loss_huber_forward(tr->y, tr->target, n, tr->cfg.huber_delta)
                : loss_mse_forward(tr->y, tr->target, n);
    return 0;
}

/* Backward after forward: fills tr->grad. */
static void backward(model_trainer_t *tr, int nb)
{
    const model_t *m = tr->m;
    const int T = tr->T, O = m->cfg.n_outputs, H = m->cfg.n_hidden, L = m->cfg.n_layers;
    size_t n = (size_t)T * nb * O;
    if (tr->cfg.huber_delta > 0.0f)
        loss_huber_backward(tr->dy, tr->y, tr->target, n, tr->cfg.huber_delta);
    else
        loss_mse_backward(tr->dy, tr->y, tr->target, n);
    memset(tr->grad, 0, sizeof(float) * m->n_params);
    dense_backward(tr->dh, tr->g.fc_w, tr->g.fc_b, tr->dy, tr->h[L - 1], m->p.fc_w, T * nb, H, O);
    float *dh = tr->dh, *dx = tr->dx;
    for (int l = L - 1; l >= 0; l--) {
        const float *x = l == 0 ? tr->xs : tr->h[l - 1];
        lstm_backward(l > 0 ? dx : NULL, tr->g.w[l], tr->g.b_ih[l], tr->g.b_hh[l], dh, tr->dpre,
                      tr->dc, tr->dhn, x, tr->act[l], tr->c[l], tr->tc[l], tr->h[l], m->p.w[l], T,
                      nb, m->in[l], H);
        float *sw = dh;
        dh = dx;
        dx = sw;
    }
}

int model__trainer_grad(model_trainer_t *tr, const float *windows, int nb, float *loss)
{
    if (nb < 1 || nb > tr->B)
        return ERR_INVAL;
    float l;
    int rc = forward(tr, windows, nb, &l);
    if (rc < 0)
        return rc;
    backward(tr, nb);
    if (loss)
        *loss = l;
    return 0;
}

int model_trainer_loss(model_trainer_t *tr, const float *windows, int nb, float *loss)
{
    if (nb < 1 || nb > tr->B)
        return ERR_INVAL;
    return forward(tr, windows, nb, loss);
}

/* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1. */
static void clip_grad(float *g, size_t n, float max_norm)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * g[i];
    float norm = (float)sqrt(s);
    float coef = max_norm / (norm + 1e-6f);
    if (coef < 1.0f)
        for (size_t i = 0; i < n; i++)
            g[i] *= coef;
}

/* torch.optim.Adam, single-tensor path, no weight decay, no amsgrad. */
static void adam_update(float *p, float *mo, float *v, const float *g, size_t n, long step,
                        const struct model_train_config *c)
{
    double bc1 = 1.0 - pow((double)c->beta1, (double)step);
    double bc2 = 1.0 - pow((double)c->beta2, (double)step);
    float step_size = (float)(c->lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float b1 = c->beta1, b2 = c->beta2;
    for (size_t i = 0; i < n; i++) {
        mo[i] = mo[i] * b1 + (1.0f - b1) * g[i];
        v[i] = v[i] * b2 + (1.0f - b2) * g[i] * g[i];
        float denom = sqrtf(v[i]) / bc2_sqrt + c->eps;
        p[i] -= step_size * (mo[i] / denom);
    }
}

int model_trainer_step(model_trainer_t *tr, const float *windows, int nb, float *loss)
{
    float l;
    int rc = model__trainer_grad(tr, windows, nb, &l);
    if (rc < 0)
        return rc;
    size_t np = tr->m->n_params;
    if (tr->cfg.clip_norm > 0.0f)
        clip_grad(tr->grad, np, tr->cfg.clip_norm);
    tr->step++;
    adam_update(tr->m->params, tr->adam_m, tr->adam_v, tr->grad, np, tr->step, &tr->cfg);
    if (loss)
        *loss = l;
    return 0;
}

/* ---- the epoch loop ---------------------------------------------------------------------- */

/* Mean and standard deviation of each channel over rows [0, n); a channel whose deviation is
 * negligible next to its magnitude gets scale 1 so it cannot blow up. */
static void fit_norm(model_t *m, const float *data, size_t n)
{
    const int I = m->cfg.n_inputs;
    for (int i = 0; i < I; i++) {
        double s = 0.0, ss = 0.0;
        for (size_t t = 0; t < n; t++)
            s += data[t * I + i];
        double mu = s / (double)n;
        for (size_t t = 0; t < n; t++) {
            double d = data[t * I + i] - mu;
            ss += d * d;
        }
        double sd = sqrt(ss / (double)n);
        m->mean[i] = (float)mu;
        m->scale[i] = sd > 1e-6 * (1.0 + fabs(mu)) ? (float)sd : 1.0f;
    }
}

/* Mean loss over windows starting at starts[0..n), in batches of up to B. */
static int windows_loss(model_trainer_t *tr, float *buf, const float *data, const size_t *starts,
                        size_t n, int I, double *mean)
{
    const size_t wl = (size_t)(tr->T + 1) * I;
    double sum = 0.0;
    for (size_t k = 0; k < n; k += (size_t)tr->B) {
        int nb = n - k < (size_t)tr->B ? (int)(n - k) : tr->B;
        for (int b = 0; b < nb; b++)
            memcpy(buf + b * wl, data + starts[k + b] * I, sizeof(float) * wl);
        float l;
        int rc = model_trainer_loss(tr, buf, nb, &l);
        if (rc < 0)
            return rc;
        sum += (double)l * nb;
    }
    *mean = sum / (double)n;
    return 0;
}

/* The running average of the weights after a step: avg = d avg + (1 - d) p. It starts from
 * zero, so avg / (1 - d^t) after t steps is the mean of the t iterates with weights d^(t - s)
 * (Adam's bias correction): the initial weights take no part. */
static void average_update(float *avg, const float *p, size_t n, float d)
{
    const float a = 1.0f - d;
    for (size_t i = 0; i < n; i++)
        avg[i] += a * (p[i] - avg[i]);
}

/* Puts the bias-corrected average into p, keeping the raw weights in raw (average_restore puts
 * them back): validation and the kept copy see the average, the optimiser the raw weights. */
static void average_swap_in(float *p, float *raw, const float *avg, size_t n, double corr)
{
    memcpy(raw, p, sizeof(float) * n);
    const float inv = (float)(1.0 / corr);
    for (size_t i = 0; i < n; i++)
        p[i] = avg[i] * inv;
}

static void average_restore(float *p, const float *raw, size_t n)
{
    memcpy(p, raw, sizeof(float) * n);
}

int model_train(model_t **out, const model_t *base, const struct model_train_config *cfg,
                const float *data, size_t n, struct model_train_result *res)
{
    return model_train_averaged(out, base, cfg, 0.0f, data, n, res);
}

int model_train_averaged(model_t **out, const model_t *base, const struct model_train_config *cfg,
                         float avg_epochs, const float *data, size_t n,
                         struct model_train_result *res)
{
    return model_train_cancellable(out, base, cfg, avg_epochs, NULL, data, n, res);
}

int model_train_cancellable(model_t **out, const model_t *base,
                            const struct model_train_config *cfg, float avg_epochs,
                            const atomic_int *cancel, const float *data, size_t n,
                            struct model_train_result *res)
{
    if (step_config_check(cfg) < 0 || cfg->max_epochs < 1 || cfg->patience < 0 || cfg->stride < 0 ||
        !(cfg->val_fraction >= 0.0f && cfg->val_fraction <= 0.9f) || !(avg_epochs >= 0.0f) ||
        !isfinite(avg_epochs))
        return ERR_INVAL;
    const int I = base->cfg.n_inputs, T = cfg->window;
    for (size_t i = 0; i < n * (size_t)I; i++)
        if (!isfinite(data[i]))
            return ERR_INVAL;
    size_t n_val = (size_t)((double)n * cfg->val_fraction);
    size_t n_train = n - n_val;
    if (n_train < (size_t)T + 1 || (n_val > 0 && n_val < (size_t)T + 1))
        return ERR_RANGE;
    const size_t stride = cfg->stride > 0 ? (size_t)cfg->stride : (T / 4 > 0 ? (size_t)T / 4 : 1);
    const size_t ntw = (n_train - T - 1) / stride + 1;
    const size_t nvw = n_val > 0 ? (n_val - T - 1) / stride + 1 : 0;

    model_trainer_t *tr = NULL;
    size_t *starts = NULL;
    float *buf = NULL, *best = NULL, *avg = NULL, *raw = NULL;
    int rc = model_trainer_create(&tr, base, cfg);
    if (rc < 0)
        return rc;
    model_t *m = tr->m;
    if (cfg->reinit)
        model__init_params(m, cfg->seed);
    if (cfg->fit_norm)
        fit_norm(m, data, n_train);
    const size_t wl = (size_t)(T + 1) * I;
    starts = malloc(sizeof *starts * (ntw + nvw));
    buf = malloc(sizeof(float) * wl * (size_t)cfg->batch);
    const size_t np = m->n_params;
    const int averaging = avg_epochs > 0.0f;
    best = malloc(sizeof(float) * np * (averaging ? 3 : 1));
    if (!starts || !buf || !best) {
        rc = ERR_NOMEM;
        goto out;
    }
    /* Per-step decay for a time constant of avg_epochs epochs of ceil(ntw / batch) steps. A
     * constant beyond 2^25 steps rounds it to 1, which would leave the average at 0 and its
     * correction 1 / 0: the largest float below 1 (an average over about 2^24 steps) instead. */
    const size_t spe = (ntw + (size_t)cfg->batch - 1) / (size_t)cfg->batch;
    const float decay = averaging ? fminf((float)exp(-1.0 / ((double)avg_epochs * (double)spe)),
                                          nextafterf(1.0f, 0.0f))
                                  : 0.0f;
    double decay_t = 1.0; /* decay^t, for the bias correction */
    if (averaging) {
        avg = best + np;
        raw = avg + np;
        memset(avg, 0, sizeof(float) * np);
    }
    for (size_t k = 0; k < ntw; k++)
        starts[k] = k * stride;
    for (size_t k = 0; k < nvw; k++)
        starts[ntw + k] = n_train + k * stride;

    uint64_t rng = cfg->seed ^ 0x5eed5eed5eedULL;
    float best_val = INFINITY;
    int best_epoch = -1, since = 0, e;
    for (e = 0; e < cfg->max_epochs; e++) {
        for (size_t k = ntw; k > 1; k--) { /* Fisher-Yates */
            size_t j = (size_t)(model__rand_u64(&rng) % k);
            size_t s = starts[k - 1];
            starts[k - 1] = starts[j];
            starts[j] = s;
        }
        double tsum = 0.0;
        for (size_t k = 0; k < ntw; k += (size_t)cfg->batch) {
            /* Between minibatches: the asker waits at most one step (or an epoch's validation
             * pass, forward only), 0.1 s at hidden 128, and one relaxed load costs nothing
             * beside a step. */
            if (cancel && atomic_load_explicit(cancel, memory_order_relaxed)) {
                rc = ERR_CLOSED;
                goto out;
            }
            int nb = ntw - k < (size_t)cfg->batch ? (int)(ntw - k) : cfg->batch;
            for (int b = 0; b < nb; b++)
                memcpy(buf + b * wl, data + starts[k + b] * I, sizeof(float) * wl);
            float l;
            if ((rc = model_trainer_step(tr, buf, nb, &l)) < 0)
                goto out;
            tsum += (double)l * nb;
            if (averaging) {
                average_update(avg, m->params, np, decay);
                decay_t *= decay;
            }
        }
        if (averaging)
            average_swap_in(m->params, raw, avg, np, 1.0 - decay_t);
        float tl = (float)(tsum / (double)ntw), vl = NAN;
        if (nvw > 0) {
            double v;
            if ((rc = windows_loss(tr, buf, data, starts + ntw, nvw, I, &v)) < 0)
                goto out;
            vl = (float)v;
        }
        if (res && res->train_loss)
            res->train_loss[e] = tl;
        if (res && res->val_loss)
            res->val_loss[e] = vl;
        if (!isfinite(tl)) {
            rc = ERR_RANGE; /* diverged */
            goto out;
        }
        if (nvw == 0 || vl < best_val) {
            best_val = vl;
            best_epoch = e;
            since = 0;
            memcpy(best, m->params, sizeof(float) * np);
        } else if (cfg->patience > 0 && ++since >= cfg->patience) {
            e++;
            break;
        }
        if (averaging)
            average_restore(m->params, raw, np);
    }
    if (best_epoch < 0) {
        rc = ERR_RANGE; /* no validation loss was finite: best holds nothing to keep */
        goto out;
    }
    memcpy(m->params, best, sizeof(float) * np);
    if (res) {
        res->epochs = e;
        res->best_epoch = best_epoch;
        res->best_val = nvw > 0 ? best_val : NAN;
        res->steps = tr->step;
    }
    *out = m;
    tr->m = NULL; /* the caller owns the trained copy now */
    rc = 0;
out:
    free(best);
    free(buf);
    free(starts);
    model_trainer_destroy(tr);
    return rc;
}

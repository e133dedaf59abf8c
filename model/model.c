/* model/model.c: the model handle (create, clone, shapes, standardisation) and serving: the
 * incremental step, the batched step, prediction, forecast and evaluation.
 *
 * Invariants: a model is one allocation (handle, mean, scale, parameters); the views in m->p
 * (float32) or m->p16 (a compact model's float16 parameters) point into it, the other set NULL. The
 * serving functions take the model const and write only the caller's state, prediction and work
 * buffers, so any number of threads may serve from one model.
 *
 * The state [z | h_0..h_{L-1} | c_0..c_{L-1}] is laid out so that layer l's mat-vec input
 * [input_l | h_l] is contiguous in it: [z | h_0] for layer 0, [h_{l-1} | h_l] above. The step
 * therefore runs one sgemv per layer straight on the state, with no copies.
 *
 * A compact model (float16 parameters, f16.c) serves through the same functions: each mat-vec
 * is then a float16 kernel, which adds the biases too (model__gemv_f16_panel for the gates,
 * whose weights a compact model keeps in panels; model__gemv_f16 for the head), and the batched
 * step runs the devices one at a time (compact models are single devices' own; a group's shared
 * model stays float32). */
#include <cblas.h>
#undef I /* complex.h's imaginary unit (via cblas.h); I is the input count here */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "internal.h"

void model_config_default(struct model_config *cfg, int n_inputs, int n_outputs)
{
    cfg->n_inputs = n_inputs;
    cfg->n_outputs = n_outputs;
    cfg->n_layers = 1;
    cfg->n_hidden = MODEL_DEFAULT_HIDDEN;
    cfg->seed = 1;
}

int model__config_check(const struct model_config *cfg)
{
    if (!cfg || cfg->n_inputs < 1 || cfg->n_inputs > MODEL_MAX_INPUTS || cfg->n_outputs < 1 ||
        cfg->n_outputs > cfg->n_inputs || cfg->n_layers < 1 || cfg->n_layers > MODEL_MAX_LAYERS ||
        cfg->n_hidden < 1 || cfg->n_hidden > MODEL_MAX_HIDDEN)
        return ERR_INVAL;
    return 0;
}

size_t model__param_count(const struct model_config *cfg)
{
    size_t H = (size_t)cfg->n_hidden, G = 4 * H, n = 0;
    for (int l = 0; l < cfg->n_layers; l++) {
        size_t in = l == 0 ? (size_t)cfg->n_inputs : H;
        n += G * (in + H) + 2 * G;
    }
    return n + (size_t)cfg->n_outputs * H + (size_t)cfg->n_outputs;
}

/* Where each tensor starts in a parameter-shaped array (internal.h's layout): w, b_ih, b_hh
 * per layer, then the head's weight and bias in fc[0], fc[1]. */
struct param_offsets {
    size_t w[MODEL_MAX_LAYERS], b_ih[MODEL_MAX_LAYERS], b_hh[MODEL_MAX_LAYERS], fc[2];
};

static void param_offsets(const model_t *m, struct param_offsets *o)
{
    size_t G = 4 * (size_t)m->cfg.n_hidden, off = 0;
    memset(o, 0, sizeof *o);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        o->w[l] = off;
        off += G * (size_t)m->k[l];
        o->b_ih[l] = off;
        off += G;
        o->b_hh[l] = off;
        off += G;
    }
    o->fc[0] = off;
    o->fc[1] = off + (size_t)m->cfg.n_outputs * m->cfg.n_hidden;
}

void model__views(const model_t *m, float *base, struct model_views *v)
{
    struct param_offsets o;
    param_offsets(m, &o);
    memset(v, 0, sizeof *v);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        v->w[l] = base + o.w[l];
        v->b_ih[l] = base + o.b_ih[l];
        v->b_hh[l] = base + o.b_hh[l];
    }
    v->fc_w = base + o.fc[0];
    v->fc_b = base + o.fc[1];
}

uint64_t model__rand_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

float model__rand_uniform(uint64_t *s, float lo, float hi)
{
    float u = (float)(model__rand_u64(s) >> 40) * (1.0f / 16777216.0f);
    return lo + (hi - lo) * u;
}

void model__init_params(model_t *m, uint64_t seed)
{
    /* nn.LSTM draws every weight and bias from U(-1/sqrt(H), 1/sqrt(H)); nn.Linear(H, O)'s
     * kaiming_uniform(a = sqrt(5)) and bias rule give the same bound for the head. */
    float k = 1.0f / sqrtf((float)m->cfg.n_hidden);
    uint64_t s = seed;
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = model__rand_uniform(&s, -k, k);
}

/* The same views of a float16 array. */
static void views16(const model_t *m, const uint16_t *base, struct model_views16 *v)
{
    struct param_offsets o;
    param_offsets(m, &o);
    memset(v, 0, sizeof *v);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        v->w[l] = base + o.w[l];
        v->b_ih[l] = base + o.b_ih[l];
        v->b_hh[l] = base + o.b_hh[l];
    }
    v->fc_w = base + o.fc[0];
    v->fc_b = base + o.fc[1];
}

/* Bytes of a model's allocation (handle and block). */
static size_t alloc_size(const struct model_config *cfg, size_t np, int compact)
{
    return sizeof(model_t) + 2 * (size_t)cfg->n_inputs * sizeof(float) +
           np * (compact ? sizeof(uint16_t) : sizeof(float));
}

model_t *model__alloc(const struct model_config *cfg, int compact)
{
    size_t np = model__param_count(cfg);
    model_t *m = malloc(alloc_size(cfg, np, compact));
    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    m->cfg = *cfg;
    m->compact = compact;
    for (int l = 0; l < cfg->n_layers; l++) {
        m->in[l] = l == 0 ? cfg->n_inputs : cfg->n_hidden;
        m->k[l] = m->in[l] + cfg->n_hidden;
    }
    for (int l = cfg->n_layers; l < MODEL_MAX_LAYERS; l++)
        m->in[l] = m->k[l] = 0;
    m->n_params = np;
    m->mean = m->block;
    m->scale = m->block + cfg->n_inputs;
    memset(&m->p, 0, sizeof m->p);
    memset(&m->p16, 0, sizeof m->p16);
    m->params = NULL;
    m->params16 = NULL;
    if (compact) {
        m->params16 = (uint16_t *)(m->block + 2 * (size_t)cfg->n_inputs);
        views16(m, m->params16, &m->p16);
    } else {
        m->params = m->block + 2 * (size_t)cfg->n_inputs;
        model__views(m, m->params, &m->p);
    }
    return m;
}

int model_create(model_t **out, const struct model_config *cfg)
{
    if (model__config_check(cfg) < 0)
        return ERR_INVAL;
    model_t *m = model__alloc(cfg, 0);
    if (!m)
        return ERR_NOMEM;
    for (int i = 0; i < cfg->n_inputs; i++) {
        m->mean[i] = 0.0f;
        m->scale[i] = 1.0f;
    }
    model__init_params(m, cfg->seed);
    *out = m;
    return 0;
}

int model_clone(model_t **out, const model_t *src)
{
    model_t *m = model__alloc(&src->cfg, 0);
    if (!m)
        return ERR_NOMEM;
    model__widen(m->block, src); /* a copy, or a compact model's values in float32 */
    *out = m;
    return 0;
}

model_t *model_share(const model_t *m)
{
    model_t *s = (model_t *)m; /* only the count changes; the weights stay read-only */
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void model_destroy(model_t *m)
{
    /* The release orders this handle's reads before the free by whichever thread drops the
     * last reference (the acquire fence). */
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_release) == 1) {
        atomic_thread_fence(memory_order_acquire);
        free(m);
    }
}

void model_get_config(const model_t *m, struct model_config *cfg)
{
    *cfg = m->cfg;
}

size_t model_param_count(const model_t *m)
{
    return m->n_params;
}

size_t model_memory_size(const model_t *m)
{
    return alloc_size(&m->cfg, m->n_params, m->compact);
}

uint32_t model_fingerprint(const model_t *m)
{
    const struct model_config *c = &m->cfg;
    const int32_t shape[5] = {c->n_inputs, c->n_outputs, c->n_layers, c->n_hidden, m->compact};
    uint32_t crc = model__crc32(0, shape, sizeof shape);
    crc = model__crc32(crc, m->mean, sizeof(float) * (size_t)c->n_inputs);
    crc = model__crc32(crc, m->scale, sizeof(float) * (size_t)c->n_inputs);
    if (m->compact) {
        /* The halves in canonical order (not the panel layout of memory), so the fingerprint
         * does not depend on how the kernels like their weights stored. */
        uint16_t run[256]; /* gathered a run at a time: one CRC call each, not one a half */
        for (size_t i = 0; i < m->n_params;) {
            size_t n = 0;
            for (; n < 256 && i < m->n_params; n++, i++)
                run[n] = m->params16[model__f16_index(m, i)];
            crc = model__crc32(crc, run, n * sizeof(uint16_t));
        }
        return crc;
    }
    return model__crc32(crc, m->params, sizeof(float) * m->n_params);
}

int model_set_norm(model_t *m, const float *mean, const float *scale)
{
    if (atomic_load_explicit(&m->refs, memory_order_relaxed) > 1)
        return ERR_BUSY; /* shared: readers on other threads may step it now */
    for (int i = 0; i < m->cfg.n_inputs; i++)
        if (!isfinite(mean[i]) || !isfinite(scale[i]) || !(scale[i] > 0.0f))
            return ERR_INVAL;
    memcpy(m->mean, mean, sizeof(float) * (size_t)m->cfg.n_inputs);
    memcpy(m->scale, scale, sizeof(float) * (size_t)m->cfg.n_inputs);
    return 0;
}

void model_get_norm(const model_t *m, float *mean, float *scale)
{
    memcpy(mean, m->mean, sizeof(float) * (size_t)m->cfg.n_inputs);
    memcpy(scale, m->scale, sizeof(float) * (size_t)m->cfg.n_inputs);
}

/* ---- state and work ------------------------------------------------------------------- */

/* The widest layer input [x | h] (model__alloc's k[]): I + H at layer 0, 2H above it. */
static size_t cfg_kmax(const struct model_config *cfg)
{
    const size_t H = (size_t)cfg->n_hidden, k0 = (size_t)cfg->n_inputs + H;
    return cfg->n_layers > 1 && 2 * H > k0 ? 2 * H : k0;
}

size_t model_config_state_len(const struct model_config *cfg)
{
    return (size_t)cfg->n_inputs + 2 * (size_t)cfg->n_layers * cfg->n_hidden;
}

size_t model_state_len(const model_t *m)
{
    return model_config_state_len(&m->cfg);
}

size_t model_state_size(const model_t *m)
{
    return model_state_len(m) * sizeof(float);
}

void model_state_reset(const model_t *m, float *state)
{
    memset(state, 0, model_state_size(m));
}

size_t model_config_work_len(const struct model_config *cfg, int batch)
{
    size_t B = batch < 1 ? 1 : (size_t)batch;
    size_t H = (size_t)cfg->n_hidden, G = 4 * H;
    return B * (cfg_kmax(cfg) + G + (size_t)cfg->n_outputs) + model_config_state_len(cfg) +
           (size_t)cfg->n_inputs + H;
}

size_t model_work_len(const model_t *m, int batch)
{
    return model_config_work_len(&m->cfg, batch);
}

/* Offsets into a state. */
static size_t st_in(const model_t *m, int l)
{
    return l == 0 ? 0 : (size_t)m->cfg.n_inputs + (size_t)(l - 1) * m->cfg.n_hidden;
}
static size_t st_h(const model_t *m, int l)
{
    return (size_t)m->cfg.n_inputs + (size_t)l * m->cfg.n_hidden;
}
static size_t st_c(const model_t *m, int l)
{
    return (size_t)m->cfg.n_inputs + (size_t)(m->cfg.n_layers + l) * m->cfg.n_hidden;
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Runs the layers of one device on the standardised input already in state's z.
 * gates: [G] scratch. The cell updates c in place (lstm_cell_forward allows c_prev == c). */
static void layers_step(const model_t *m, float *state, float *gates)
{
    const int H = m->cfg.n_hidden, G = 4 * H;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        float *c = state + st_c(m, l);
        if (m->compact) {
            /* gates[G] = w_l[G, K] . [input_l | h_l][K] + b_ih + b_hh, float16 weights stored
             * in panels of 64 rows (f16.c). */
            model__gemv_f16_panel(gates, m->p16.w[l], state + st_in(m, l), m->p16.b_ih[l],
                                  m->p16.b_hh[l], G, m->k[l]);
            lstm_cell_forward(gates, state + st_h(m, l), c, NULL, c, NULL, NULL, H);
            continue;
        }
        /* gates[G] = w_l[G, K] . [input_l | h_l][K]; lda = K. Biases are added in the cell. */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, G, m->k[l], 1.0f, m->p.w[l], m->k[l],
                    state + st_in(m, l), 1, 0.0f, gates, 1);
        lstm_cell_forward(gates, state + st_h(m, l), c, NULL, c, m->p.b_ih[l], m->p.b_hh[l], H);
    }
}

/* zpred[O] = head applied to the top h of state (standardised units). */
static void head_step(const model_t *m, float *zpred, const float *state)
{
    if (m->compact) {
        model__gemv_f16(zpred, m->p16.fc_w, state + st_h(m, m->cfg.n_layers - 1), m->p16.fc_b, NULL,
                        m->cfg.n_outputs, m->cfg.n_hidden);
        return;
    }
    dense_forward(zpred, state + st_h(m, m->cfg.n_layers - 1), m->p.fc_w, m->p.fc_b, 1,
                  m->cfg.n_hidden, m->cfg.n_outputs);
}

static void destandardise(const model_t *m, float *pred, const float *zpred, int rows)
{
    const int O = m->cfg.n_outputs;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < O; j++)
            pred[(size_t)r * O + j] = zpred[(size_t)r * O + j] * m->scale[j] + m->mean[j];
}

static void standardise(const model_t *m, float *z, const float *x)
{
    for (int i = 0; i < m->cfg.n_inputs; i++)
        z[i] = (x[i] - m->mean[i]) / m->scale[i];
}

int model_step(const model_t *m, float *pred, float *state, const float *x, float *work)
{
    if (!all_finite(x, (size_t)m->cfg.n_inputs))
        return ERR_INVAL;
    float *gates = work, *zpred = work + 5 * (size_t)m->cfg.n_hidden;
    standardise(m, state, x);
    layers_step(m, state, gates);
    head_step(m, zpred, state);
    destandardise(m, pred, zpred, 1);
    return 0;
}

int model_step_batch(const model_t *m, float *pred, float *const *states, const float *x, int batch,
                     float *work)
{
    const int I = m->cfg.n_inputs, H = m->cfg.n_hidden, G = 4 * H, O = m->cfg.n_outputs;
    if (batch < 1 || !all_finite(x, (size_t)batch * I))
        return ERR_INVAL;
    const size_t B = (size_t)batch;
    float *xh = work;                          /* [B, Kmax] gathered [input_l | h_l] rows */
    float *gates = xh + B * cfg_kmax(&m->cfg); /* [B, G] */
    float *zpred = gates + B * (size_t)G;      /* [B, O] */
    for (size_t b = 0; b < B; b++)
        standardise(m, states[b], x + b * I);
    if (m->compact) {
        /* One device at a time: the float16 mat-vec has no batched form (see the header). */
        for (size_t b = 0; b < B; b++) {
            layers_step(m, states[b], gates);
            head_step(m, zpred + b * O, states[b]);
        }
        destandardise(m, pred, zpred, batch);
        return 0;
    }
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const int K = m->k[l];
        for (size_t b = 0; b < B; b++)
            memcpy(xh + b * K, states[b] + st_in(m, l), sizeof(float) * (size_t)K);
        /* gates[B, G] = xh[B, K] . w_l[G, K]^T; lda = K, ldb = K, ldc = G. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, G, K, 1.0f, xh, K, m->p.w[l], K,
                    0.0f, gates, G);
        for (size_t b = 0; b < B; b++) {
            float *c = states[b] + st_c(m, l);
            lstm_cell_forward(gates + b * G, states[b] + st_h(m, l), c, NULL, c, m->p.b_ih[l],
                              m->p.b_hh[l], H);
        }
    }
    size_t top = st_h(m, m->cfg.n_layers - 1);
    for (size_t b = 0; b < B; b++)
        memcpy(xh + b * H, states[b] + top, sizeof(float) * (size_t)H);
    dense_forward(zpred, xh, m->p.fc_w, m->p.fc_b, batch, H, O);
    destandardise(m, pred, zpred, batch);
    return 0;
}

void model_predict(const model_t *m, float *pred, const float *state)
{
    float zpred[64];
    const int O = m->cfg.n_outputs;
    const float *h = state + st_h(m, m->cfg.n_layers - 1);
    /* A small loop instead of dense_forward so this needs no work buffer. */
    for (int j0 = 0; j0 < O; j0 += 64) {
        int n = O - j0 < 64 ? O - j0 : 64;
        if (m->compact)
            model__gemv_f16(zpred, m->p16.fc_w + (size_t)j0 * m->cfg.n_hidden, h, m->p16.fc_b + j0,
                            NULL, n, m->cfg.n_hidden);
        for (int j = 0; !m->compact && j < n; j++) {
            const float *w = m->p.fc_w + (size_t)(j0 + j) * m->cfg.n_hidden;
            float s = m->p.fc_b[j0 + j];
            for (int i = 0; i < m->cfg.n_hidden; i++)
                s += w[i] * h[i];
            zpred[j] = s;
        }
        for (int j = 0; j < n; j++)
            pred[j0 + j] = zpred[j] * m->scale[j0 + j] + m->mean[j0 + j];
    }
}

int model_forecast(const model_t *m, float *out, const float *state, const float *u, int k,
                   float *work)
{
    const int I = m->cfg.n_inputs, O = m->cfg.n_outputs, G = 4 * m->cfg.n_hidden;
    if (k < 1 || k > MODEL_MAX_FORECAST)
        return ERR_INVAL;
    float *st = work;                           /* private copy of the state */
    float *gates = st + model_state_len(m);     /* [G] (and H spare floats) */
    float *zpred = gates + G + m->cfg.n_hidden; /* [O] */
    memcpy(st, state, model_state_size(m));
    head_step(m, zpred, st);
    destandardise(m, out, zpred, 1);
    for (int j = 1; j < k; j++) {
        /* The prediction, already standardised, becomes the next monitored input; input-only
         * channels come from u or keep their last standardised values in z. */
        memcpy(st, zpred, sizeof(float) * (size_t)O);
        if (u) {
            const float *ur = u + (size_t)(j - 1) * (I - O);
            for (int i = O; i < I; i++)
                st[i] = (ur[i - O] - m->mean[i]) / m->scale[i];
        }
        layers_step(m, st, gates);
        head_step(m, zpred, st);
        destandardise(m, out + (size_t)j * O, zpred, 1);
    }
    return 0;
}

/* ---- evaluation ------------------------------------------------------------------------ */

int model__score(struct model_eval *res, const float *data, size_t n, int I, int O, size_t warmup,
                 model__predict_fn predict, void *ctx)
{
    if (n < warmup + 3)
        return ERR_RANGE;
    if (!all_finite(data, n * (size_t)I))
        return ERR_INVAL;
    double *acc = calloc(5 * (size_t)O, sizeof(double)); /* se, se_pers, sum, sumsq, - */
    float *pred = malloc(sizeof(float) * (size_t)O);
    int rc = 0;
    if (!acc || !pred) {
        rc = ERR_NOMEM;
        goto out;
    }
    for (size_t t = 0; t + 1 < n; t++) {
        if ((rc = predict(ctx, pred, data + t * I)) < 0)
            goto out;
        if (t < warmup)
            continue;
        const float *nx = data + (t + 1) * I, *cx = data + t * I;
        for (int j = 0; j < O; j++) {
            double e = (double)pred[j] - nx[j], p = (double)cx[j] - nx[j];
            acc[j] += e * e;
            acc[O + j] += p * p;
            acc[2 * O + j] += nx[j];
            acc[3 * O + j] += (double)nx[j] * nx[j];
        }
    }
    size_t cnt = n - 1 - warmup;
    memset(res, 0, sizeof *res);
    for (int j = 0; j < O; j++) {
        double mse = acc[j] / cnt, pmse = acc[O + j] / cnt, mu = acc[2 * O + j] / cnt;
        double var = acc[3 * O + j] / cnt - mu * mu;
        if (!(var > 1e-30))
            var = 1.0; /* a constant channel: report raw errors */
        res->mse += mse / O;
        res->mse_persistence += pmse / O;
        res->nmse += mse / var / O;
        res->nmse_persistence += pmse / var / O;
    }
    res->n = cnt;
out:
    free(pred);
    free(acc);
    return rc;
}

struct eval_ctx {
    const model_t *m;
    float *state, *work;
};

static int eval_predict(void *ctx, float *pred, const float *row)
{
    struct eval_ctx *e = ctx;
    return model_step(e->m, pred, e->state, row, e->work);
}

int model_evaluate(const model_t *m, struct model_eval *res, const float *data, size_t n,
                   size_t warmup)
{
    struct eval_ctx e = {m, NULL, NULL};
    e.state = calloc(model_state_len(m) + model_work_len(m, 1), sizeof(float));
    if (!e.state)
        return ERR_NOMEM;
    e.work = e.state + model_state_len(m);
    int rc =
        model__score(res, data, n, m->cfg.n_inputs, m->cfg.n_outputs, warmup, eval_predict, &e);
    free(e.state);
    return rc;
}

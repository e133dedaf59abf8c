/* tests/test_model.c: unit tests of model/.
 *
 * Kernels are checked against the plain loops of model/ref.c, gradients against central
 * finite differences, serving paths (step, batched step, forecast) against each other and the
 * training forward, training against the persistence forecast on a synthetic process, and the
 * byte formats against truncation and corruption. Tolerances are stated where they are used.
 * Every test frees what it allocates. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "internal.h"
#include "model.h"

static uint64_t rng_state = 12345;

static float frand(float lo, float hi)
{
    return model__rand_uniform(&rng_state, lo, hi);
}

static void fill(float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = frand(lo, hi);
}

static float *falloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

/* |a - b| <= atol + rtol * |b| for every element; reports the first failure. */
static void assert_close(const float *a, const float *b, size_t n, float atol, float rtol,
                         const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (!(fabsf(a[i] - b[i]) <= atol + rtol * fabsf(b[i]))) {
            print_error("%s[%zu]: %.9g vs %.9g\n", what, i, a[i], b[i]);
            fail();
        }
    }
}

static model_t *make_model(int I, int O, int L, int H, uint64_t seed)
{
    struct model_config cfg = {I, O, L, H, seed};
    model_t *m;
    assert_int_equal(model_create(&m, &cfg), 0);
    return m;
}

/* ---- shapes and sizes ---------------------------------------------------------------------- */

static void test_config_and_sizes(void **unused)
{
    struct model_config bad[] = {{0, 1, 1, 4, 1},
                                 {3, 4, 1, 4, 1},
                                 {3, 0, 1, 4, 1},
                                 {3, 1, 0, 4, 1},
                                 {3, 1, 4, 4, 1},
                                 {3, 1, 1, 0, 1},
                                 {3, 1, 1, MODEL_MAX_HIDDEN + 1, 1}};
    model_t *m = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(model_create(&m, &bad[i]), ERR_INVAL);
    /* The original state-monitoring example: I = 10, H = 50, O = 1. */
    m = make_model(10, 1, 1, 50, 7);
    size_t G = 200;
    assert_int_equal(model_param_count(m), G * 10 + G * 50 + 2 * G + 50 + 1);
    assert_int_equal(model_state_len(m), 10 + 2 * 50);
    assert_int_equal(model_state_size(m), 4 * (10 + 2 * 50));
    assert_true(model_memory_size(m) >= 4 * (model_param_count(m) + 20));
    struct model_config cfg;
    model_get_config(m, &cfg);
    assert_int_equal(cfg.n_inputs, 10);
    assert_int_equal(cfg.n_hidden, 50);
    float mean[10], scale[10];
    fill(mean, 10, -1, 1);
    fill(scale, 10, 0.5f, 2);
    assert_int_equal(model_set_norm(m, mean, scale), 0);
    scale[3] = 0.0f;
    assert_int_equal(model_set_norm(m, mean, scale), ERR_INVAL);
    float m2[10], s2[10];
    model_get_norm(m, m2, s2);
    assert_memory_equal(m2, mean, sizeof mean);
    assert_true(s2[3] != 0.0f);
    model_destroy(m);
    model_destroy(NULL);
}

/* ---- kernels vs plain loops ---------------------------------------------------------------- */

static void test_dense_vs_naive(void **unused)
{
    /* Tolerance: 1e-5 absolute + 1e-5 relative (sums of <= 40 products of values in [-1, 1]). */
    int shapes[][3] = {{1, 7, 3}, {9, 5, 4}, {33, 17, 2}};
    for (size_t s = 0; s < 3; s++) {
        int N = shapes[s][0], IN = shapes[s][1], OUT = shapes[s][2];
        float *in = falloc((size_t)N * IN), *w = falloc((size_t)OUT * IN), *b = falloc(OUT);
        float *o1 = falloc((size_t)N * OUT), *o2 = falloc((size_t)N * OUT);
        float *dout = falloc((size_t)N * OUT), *di1 = falloc((size_t)N * IN);
        float *di2 = falloc((size_t)N * IN), *dw1 = falloc((size_t)OUT * IN);
        float *dw2 = falloc((size_t)OUT * IN), *db1 = falloc(OUT), *db2 = falloc(OUT);
        fill(in, (size_t)N * IN, -1, 1);
        fill(w, (size_t)OUT * IN, -1, 1);
        fill(b, OUT, -1, 1);
        fill(dout, (size_t)N * OUT, -1, 1);
        fill(dw1, (size_t)OUT * IN, -1, 1); /* accumulation: start both from the same values */
        memcpy(dw2, dw1, sizeof(float) * OUT * IN);
        dense_forward(o1, in, w, b, N, IN, OUT);
        dense_forward_naive(o2, in, w, b, N, IN, OUT);
        assert_close(o1, o2, (size_t)N * OUT, 1e-5f, 1e-5f, "dense_forward");
        dense_backward(di1, dw1, db1, dout, in, w, N, IN, OUT);
        dense_backward_naive(di2, dw2, db2, dout, in, w, N, IN, OUT);
        assert_close(di1, di2, (size_t)N * IN, 1e-5f, 1e-5f, "dense din");
        assert_close(dw1, dw2, (size_t)OUT * IN, 1e-5f, 1e-5f, "dense dw");
        assert_close(db1, db2, OUT, 1e-5f, 1e-5f, "dense db");
        free(in), free(w), free(b), free(o1), free(o2), free(dout), free(di1), free(di2);
        free(dw1), free(dw2), free(db1), free(db2);
    }
}

static void test_lstm_vs_naive(void **unused)
{
    /* Forward: 2e-6 absolute (activations are in [-1, 1]; the fast expf differs from libm's
     * by a few ulp). Backward: 2e-5 absolute + 1e-4 relative (sums over T * B terms). */
    int shapes[][4] = {{1, 1, 3, 2}, {5, 3, 4, 6}, {7, 4, 6, 17}};
    for (size_t s = 0; s < 3; s++) {
        int T = shapes[s][0], B = shapes[s][1], IN = shapes[s][2], H = shapes[s][3];
        int G = 4 * H, K = IN + H;
        size_t TB = (size_t)T * B;
        float *x = falloc(TB * IN), *w = falloc((size_t)G * K), *bi = falloc(G), *bh = falloc(G);
        float *a1 = falloc(TB * G), *c1 = falloc(TB * H), *t1 = falloc(TB * H);
        float *h1 = falloc(TB * H), *a2 = falloc(TB * G), *c2 = falloc(TB * H);
        float *t2 = falloc(TB * H), *h2 = falloc(TB * H);
        fill(x, TB * IN, -2, 2);
        fill(w, (size_t)G * K, -0.7f, 0.7f);
        fill(bi, G, -0.5f, 0.5f);
        fill(bh, G, -0.5f, 0.5f);
        float *wt = falloc((size_t)H * G);
        lstm_forward(a1, c1, t1, h1, wt, x, w, bi, bh, T, B, IN, H);
        free(wt);
        lstm_forward_naive(a2, c2, t2, h2, x, w, bi, bh, T, B, IN, H);
        assert_close(a1, a2, TB * G, 2e-6f, 0, "lstm act");
        assert_close(c1, c2, TB * H, 2e-6f, 1e-6f, "lstm c");
        assert_close(t1, t2, TB * H, 2e-6f, 0, "lstm tanh c");
        assert_close(h1, h2, TB * H, 2e-6f, 0, "lstm h");

        float *dh1 = falloc(TB * H), *dh2 = falloc(TB * H), *dx1 = falloc(TB * IN);
        float *dx2 = falloc(TB * IN), *dw1 = falloc((size_t)G * K), *dw2 = falloc((size_t)G * K);
        float *dbi1 = falloc(G), *dbh1 = falloc(G), *dbi2 = falloc(G), *dbh2 = falloc(G);
        float *dp = falloc(TB * G), *dc = falloc((size_t)B * H), *dhn = falloc((size_t)B * H);
        fill(dh1, TB * H, -1, 1);
        memcpy(dh2, dh1, sizeof(float) * TB * H);
        lstm_backward(dx1, dw1, dbi1, dbh1, dh1, dp, dc, dhn, x, a2, c2, t2, h2, w, T, B, IN, H);
        lstm_backward_naive(dx2, dw2, dbi2, dbh2, dh2, dp, dc, dhn, x, a2, c2, t2, h2, w, T, B, IN,
                            H);
        assert_close(dx1, dx2, TB * IN, 2e-5f, 1e-4f, "lstm dx");
        assert_close(dw1, dw2, (size_t)G * K, 2e-5f, 1e-4f, "lstm dw");
        assert_close(dbi1, dbi2, G, 2e-5f, 1e-4f, "lstm db_ih");
        assert_close(dbh1, dbh2, G, 2e-5f, 1e-4f, "lstm db_hh");
        free(x), free(w), free(bi), free(bh), free(a1), free(c1), free(t1), free(h1);
        free(a2), free(c2), free(t2), free(h2), free(dh1), free(dh2), free(dx1), free(dx2);
        free(dw1), free(dw2), free(dbi1), free(dbh1), free(dbi2), free(dbh2), free(dp);
        free(dc), free(dhn);
    }
}

/* ---- gradients vs finite differences -------------------------------------------------------- */

static void check_grad_fd(float huber_delta, int L)
{
    /* Central differences with step 3e-3 on every parameter; tolerance
     * |analytic - numeric| <= 1e-4 + 1e-2 |numeric| (float32 forward, loss ~ 1: the numeric
     * derivative's rounding noise is ~3e-5; the worst errors seen are ~2e-5). At least an
     * eighth of the gradients must exceed 1e-3, ten times the absolute tolerance. */
    const int I = 3, O = 2, H = 5, T = 6, B = 3;
    model_t *m = make_model(I, O, L, H, 99);
    fill(m->params, m->n_params, -0.8f, 0.8f); /* larger than the default init: larger gradients */
    struct model_train_config cfg;
    model_train_config_default(&cfg);
    cfg.window = T;
    cfg.batch = B;
    cfg.huber_delta = huber_delta;
    model_trainer_t *tr;
    assert_int_equal(model_trainer_create(&tr, m, &cfg), 0);
    float *win = falloc((size_t)B * (T + 1) * I);
    fill(win, (size_t)B * (T + 1) * I, -2, 2);
    float loss;
    assert_int_equal(model__trainer_grad(tr, win, B, &loss), 0);
    size_t np = model_param_count(m);
    float *g = falloc(np);
    memcpy(g, model__trainer_grads(tr), sizeof(float) * np);
    model_t *tm = model__trainer_model_mut(tr);
    const float eps = 3e-3f;
    int checked = 0;
    float maxerr = 0.0f;
    for (size_t i = 0; i < np; i++) {
        float p0 = tm->params[i], lp, lm;
        tm->params[i] = p0 + eps;
        assert_int_equal(model_trainer_loss(tr, win, B, &lp), 0);
        tm->params[i] = p0 - eps;
        assert_int_equal(model_trainer_loss(tr, win, B, &lm), 0);
        tm->params[i] = p0;
        float fd = (lp - lm) / (2 * eps);
        if (!(fabsf(g[i] - fd) <= 1e-4f + 1e-2f * fabsf(fd))) {
            print_error("param %zu: analytic %.6g numeric %.6g\n", i, g[i], fd);
            fail();
        }
        checked += fabsf(fd) > 1e-3f;
        float e = fabsf(g[i] - fd);
        maxerr = e > maxerr ? e : maxerr;
    }
    print_message("L=%d huber=%g: %d of %zu gradients above 1e-3, max |error| %.2g\n", L,
                  huber_delta, checked, np, maxerr);
    assert_true(checked > (int)np / 8); /* the check is not vacuous */
    free(g);
    free(win);
    model_trainer_destroy(tr);
    model_destroy(m);
}

static void test_grad_mse_1layer(void **unused)
{
    check_grad_fd(0.0f, 1);
}

static void test_grad_mse_3layers(void **unused)
{
    check_grad_fd(0.0f, 3);
}

static void test_grad_huber_2layers(void **unused)
{
    check_grad_fd(1.0f, 2); /* errors fall on both sides of delta */
}

/* ---- serving paths --------------------------------------------------------------------------- */

/* Predictions of the training forward (kernels + head) for one sequence x [T, I] raw. */
static void reference_predictions(const model_t *m, float *pred, const float *x, int T)
{
    const int I = m->cfg.n_inputs, O = m->cfg.n_outputs, H = m->cfg.n_hidden;
    const int L = m->cfg.n_layers, G = 4 * H;
    float *z = falloc((size_t)T * I), *act = falloc((size_t)T * G), *c = falloc((size_t)T * H);
    float *tc = falloc((size_t)T * H),
          *h[3] = {falloc((size_t)T * H), falloc((size_t)T * H), falloc((size_t)T * H)};
    for (int t = 0; t < T; t++)
        for (int i = 0; i < I; i++)
            z[t * I + i] = (x[t * I + i] - m->mean[i]) / m->scale[i];
    for (int l = 0; l < L; l++)
        lstm_forward_naive(act, c, tc, h[l], l ? h[l - 1] : z, m->p.w[l], m->p.b_ih[l],
                           m->p.b_hh[l], T, 1, m->in[l], H);
    dense_forward_naive(pred, h[L - 1], m->p.fc_w, m->p.fc_b, T, H, O);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < O; j++)
            pred[t * O + j] = pred[t * O + j] * m->scale[j] + m->mean[j];
    free(z), free(act), free(c), free(tc), free(h[0]), free(h[1]), free(h[2]);
}

static void test_cell_in_place(void **unused)
{
    /* The serving steps update c in place (c_prev == c): same bits as with a separate c_prev,
     * for H with and without a partial vector column, and gates large enough to saturate. */
    int hs[] = {5, 16, 37};
    for (size_t s = 0; s < 3; s++) {
        int H = hs[s], G = 4 * H;
        float *pre = falloc((size_t)G), *a1 = falloc((size_t)G), *a2 = falloc((size_t)G);
        float *bi = falloc((size_t)G), *bh = falloc((size_t)G), *cp = falloc((size_t)H);
        float *c1 = falloc((size_t)H), *c2 = falloc((size_t)H), *h1 = falloc((size_t)H);
        float *h2 = falloc((size_t)H);
        fill(pre, (size_t)G, -30, 30);
        fill(bi, (size_t)G, -0.5f, 0.5f);
        fill(bh, (size_t)G, -0.5f, 0.5f);
        fill(cp, (size_t)H, -3, 3);
        memcpy(a1, pre, sizeof(float) * (size_t)G);
        memcpy(a2, pre, sizeof(float) * (size_t)G);
        memcpy(c2, cp, sizeof(float) * (size_t)H);
        lstm_cell_forward(a1, h1, c1, NULL, cp, bi, bh, H);
        lstm_cell_forward(a2, h2, c2, NULL, c2, bi, bh, H);
        assert_memory_equal(a1, a2, sizeof(float) * (size_t)G);
        assert_memory_equal(c1, c2, sizeof(float) * (size_t)H);
        assert_memory_equal(h1, h2, sizeof(float) * (size_t)H);
        free(pre), free(a1), free(a2), free(bi), free(bh), free(cp), free(c1), free(c2);
        free(h1), free(h2);
    }
}

static model_t *make_normed_model(int I, int O, int L, int H, uint64_t seed)
{
    model_t *m = make_model(I, O, L, H, seed);
    float mean[16], scale[16];
    fill(mean, (size_t)I, -5, 5);
    fill(scale, (size_t)I, 0.5f, 3);
    assert_int_equal(model_set_norm(m, mean, scale), 0);
    return m;
}

static void test_step_matches_reference(void **unused)
{
    /* The sgemv step against the plain-loop sequence forward: 1e-5 absolute + 1e-5 relative
     * on raw predictions of magnitude up to ~10. */
    for (int L = 1; L <= 3; L++) {
        const int I = 5, O = 3, H = 9, T = 40;
        model_t *m = make_normed_model(I, O, L, H, 5 + L);
        float *x = falloc((size_t)T * I), *p1 = falloc((size_t)T * O), *p2 = falloc((size_t)T * O);
        fill(x, (size_t)T * I, -8, 8);
        float *st = falloc(model_state_len(m)), *work = falloc(model_work_len(m, 1));
        model_state_reset(m, st);
        for (int t = 0; t < T; t++)
            assert_int_equal(model_step(m, p1 + t * O, st, x + t * I, work), 0);
        reference_predictions(m, p2, x, T);
        assert_close(p1, p2, (size_t)T * O, 1e-5f, 1e-5f, "step vs reference");
        float pr[3];
        model_predict(m, pr, st);
        assert_close(pr, p1 + (T - 1) * O, O, 1e-6f, 1e-6f, "predict");
        free(x), free(p1), free(p2), free(st), free(work);
        model_destroy(m);
    }
}

static void test_batch_matches_single(void **unused)
{
    /* The sgemm batched step against B single steps: 1e-5 absolute + 1e-5 relative. */
    const int I = 6, O = 2, L = 2, H = 12, B = 7, T = 15;
    model_t *m = make_normed_model(I, O, L, H, 77);
    size_t S = model_state_len(m);
    float *st1 = falloc(S * B), *st2 = falloc(S * B), *x = falloc((size_t)B * I);
    float *p1 = falloc((size_t)B * O), *p2 = falloc((size_t)B * O);
    float *w1 = falloc(model_work_len(m, 1)), *wb = falloc(model_work_len(m, B));
    float *ptrs[B];
    for (int b = 0; b < B; b++)
        ptrs[b] = st2 + (size_t)(B - 1 - b) * S; /* states in any order and place */
    for (int t = 0; t < T; t++) {
        fill(x, (size_t)B * I, -6, 6);
        for (int b = 0; b < B; b++)
            assert_int_equal(model_step(m, p1 + b * O, st1 + b * S, x + b * I, w1), 0);
        assert_int_equal(model_step_batch(m, p2, ptrs, x, B, wb), 0);
        assert_close(p2, p1, (size_t)B * O, 1e-5f, 1e-5f, "batch vs single");
    }
    for (int b = 0; b < B; b++)
        assert_close(ptrs[b], st1 + b * S, S, 1e-5f, 1e-5f, "batch state");
    x[3] = NAN;
    memcpy(st1, st2, sizeof(float) * S * B);
    assert_int_equal(model_step_batch(m, p2, ptrs, x, B, wb), ERR_INVAL);
    assert_memory_equal(st1, st2, sizeof(float) * S * B);
    assert_int_equal(model_step_batch(m, p2, ptrs, x, 0, wb), ERR_INVAL);
    free(st1), free(st2), free(x), free(p1), free(p2), free(w1), free(wb);
    model_destroy(m);
}

/* Several threads serving from one model, each with its own states and work buffer, must get
 * exactly the predictions of one thread doing the same (the model is read-only while serving).
 * OpenBLAS is used from the calling threads here; its default thread count is left alone. */
struct serve_job {
    const model_t *m;
    const float *x; /* [T, I] */
    float *pred;    /* [T, O] */
    int T;
};

static void *serve_thread(void *arg)
{
    struct serve_job *j = arg;
    float *st = calloc(model_state_len(j->m), sizeof(float));
    float *work = calloc(model_work_len(j->m, 1), sizeof(float));
    for (int t = 0; t < j->T && st && work; t++)
        model_step(j->m, j->pred + (size_t)t * j->m->cfg.n_outputs, st,
                   j->x + (size_t)t * j->m->cfg.n_inputs, work);
    free(st);
    free(work);
    return NULL;
}

static void test_concurrent_serving(void **unused)
{
    enum { NT = 4, T = 300 };
    model_t *m = make_normed_model(6, 3, 2, 16, 8);
    float *x = falloc((size_t)NT * T * 6), *p1 = falloc((size_t)NT * T * 3);
    float *p2 = falloc((size_t)NT * T * 3);
    fill(x, (size_t)NT * T * 6, -5, 5);
    struct serve_job jobs[NT];
    pthread_t th[NT];
    for (int k = 0; k < NT; k++) {
        jobs[k] = (struct serve_job){m, x + (size_t)k * T * 6, p1 + (size_t)k * T * 3, T};
        serve_thread(&jobs[k]); /* sequential reference */
        jobs[k].pred = p2 + (size_t)k * T * 3;
    }
    for (int k = 0; k < NT; k++)
        assert_int_equal(pthread_create(&th[k], NULL, serve_thread, &jobs[k]), 0);
    for (int k = 0; k < NT; k++)
        pthread_join(th[k], NULL);
    assert_memory_equal(p1, p2, sizeof(float) * NT * T * 3);
    free(x), free(p1), free(p2);
    model_destroy(m);
}

static void test_step_rejects_nonfinite(void **unused)
{
    model_t *m = make_model(3, 1, 1, 4, 3);
    float st[3 + 8], st0[3 + 8], x[3] = {1, INFINITY, 2}, p = 42.0f;
    float *work = falloc(model_work_len(m, 1));
    fill(st, 11, -1, 1);
    memcpy(st0, st, sizeof st);
    assert_int_equal(model_step(m, &p, st, x, work), ERR_INVAL);
    assert_memory_equal(st, st0, sizeof st);
    assert_true(p == 42.0f);
    free(work);
    model_destroy(m);
}

static void test_forecast(void **unused)
{
    /* Forecast against the same roll-out done by hand with model_step: 1e-4 absolute + 1e-4
     * relative (the hand roll-out re-standardises each prediction, the forecast does not). */
    const int I = 4, O = 2, L = 2, H = 8, K = 12;
    model_t *m = make_normed_model(I, O, L, H, 11);
    size_t S = model_state_len(m);
    float *st = falloc(S), *st0 = falloc(S), *work = falloc(model_work_len(m, 1));
    float x[4], p[2];
    for (int t = 0; t < 20; t++) {
        fill(x, I, -4, 4);
        assert_int_equal(model_step(m, p, st, x, work), 0);
    }
    memcpy(st0, st, sizeof(float) * S);
    float *u = falloc((size_t)(K - 1) * (I - O)), *f1 = falloc((size_t)K * O);
    float *f2 = falloc((size_t)K * O), *f3 = falloc((size_t)K * O);
    fill(u, (size_t)(K - 1) * (I - O), -4, 4);
    assert_int_equal(model_forecast(m, f1, st, u, K, work), 0);
    assert_memory_equal(st, st0, sizeof(float) * S); /* live state undisturbed */
    assert_close(f1, p, O, 1e-6f, 1e-6f, "forecast[0] is the last prediction");
    /* By hand. */
    float *hs = falloc(S);
    memcpy(hs, st, sizeof(float) * S);
    memcpy(f2, p, sizeof(float) * O);
    for (int j = 1; j < K; j++) {
        memcpy(x, f2 + (j - 1) * O, sizeof(float) * O);
        memcpy(x + O, u + (j - 1) * (I - O), sizeof(float) * (I - O));
        assert_int_equal(model_step(m, f2 + j * O, hs, x, work), 0);
    }
    assert_close(f1, f2, (size_t)K * O, 1e-4f, 1e-4f, "forecast vs hand roll-out");
    /* u NULL holds the input-only channels at their last values. */
    assert_int_equal(model_forecast(m, f3, st, NULL, K, work), 0);
    assert_int_equal(model_forecast(m, f3, st, NULL, 0, work), ERR_INVAL);
    free(st), free(st0), free(work), free(u), free(f1), free(f2), free(f3), free(hs);
    model_destroy(m);
}

/* ---- training ----------------------------------------------------------------------------------
 */

/* Synthetic process, [n, 3] raw: two coupled oscillators (monitored, with offsets and
 * different scales) driven by a slow square-wave set point (input-only), plus noise. */
static float *coupled_process(size_t n, uint64_t seed)
{
    float *d = falloc(n * 3);
    uint64_t s = seed;
    double a = 1.0, b = 0.0;
    for (size_t t = 0; t < n; t++) {
        double u = ((t / 150) % 2) ? 1.0 : -1.0;
        double a2 = 0.98 * (a * cos(0.2) - b * sin(0.2)) + 0.05 * u;
        double b2 = 0.98 * (a * sin(0.2) + b * cos(0.2)) + 0.02 * u;
        a = a2;
        b = b2;
        d[t * 3 + 0] = (float)(100.0 + 10.0 * a) + model__rand_uniform(&s, -0.3f, 0.3f);
        d[t * 3 + 1] = (float)(-3.0 + 0.5 * b * a) + model__rand_uniform(&s, -0.01f, 0.01f);
        d[t * 3 + 2] = (float)(20.0 + 5.0 * u);
    }
    return d;
}

/* The defaults with the window, the epochs and the learning rate a test trains with. */
static struct model_train_config train_config(int window, int max_epochs, float lr)
{
    struct model_train_config cfg;
    model_train_config_default(&cfg);
    cfg.window = window;
    cfg.max_epochs = max_epochs;
    cfg.lr = lr;
    return cfg;
}

static void test_train_beats_persistence(void **unused)
{
    const size_t n = 3000, n_test = 800;
    float *data = coupled_process(n + n_test, 5);
    model_t *base = make_model(3, 2, 1, 32, 1);
    size_t cl = model_checkpoint_size(base), len;
    unsigned char *before = malloc(cl), *after = malloc(cl);
    assert_int_equal(model_checkpoint_save(base, before, cl, &len), 0);
    struct model_train_config cfg = train_config(32, 40, 5e-3f);
    cfg.seed = 3;
    float tl[40], vl[40], tl2[40], vl2[40];
    struct model_train_result res = {tl, vl, 0, 0, 0, 0}, res2 = {tl2, vl2, 0, 0, 0, 0};
    model_t *m, *m2;
    assert_int_equal(model_train(&m, base, &cfg, data, n, &res), 0);
    /* The serving model is untouched. */
    assert_int_equal(model_checkpoint_save(base, after, cl, &len), 0);
    assert_memory_equal(before, after, cl);
    /* The curve is reported and goes down. */
    assert_true(res.epochs >= 2 && res.epochs <= 40);
    assert_true(res.best_epoch >= 0 && res.best_epoch < res.epochs);
    assert_true(tl[res.epochs - 1] < 0.5f * tl[0]);
    assert_true(vl[res.best_epoch] == res.best_val);
    assert_true(res.steps > 0);
    /* Held-out data the training never saw: the LSTM well below persistence (normalised MSE
     * under half of persistence's) and below the linear baseline fitted on the training part. */
    struct model_eval ev, lev;
    assert_int_equal(model_evaluate(m, &ev, data + n * 3, n_test, 50), 0);
    model_linear_t *lin;
    assert_int_equal(model_linear_fit(&lin, data, n, 3, 2), 0);
    assert_int_equal(model_linear_evaluate(lin, &lev, data + n * 3, n_test, 50), 0);
    print_message("held-out nmse: lstm %.4f linear %.4f persistence %.4f (epochs %d, best %d)\n",
                  ev.nmse, lev.nmse, ev.nmse_persistence, res.epochs, res.best_epoch);
    assert_true(ev.nmse < 0.5 * ev.nmse_persistence);
    assert_true(lev.nmse < ev.nmse_persistence);
    /* Deterministic for a seed. */
    assert_int_equal(model_train(&m2, base, &cfg, data, n, &res2), 0);
    assert_int_equal(res2.epochs, res.epochs);
    assert_memory_equal(tl, tl2, sizeof(float) * res.epochs);
    assert_memory_equal(m->params, m2->params, sizeof(float) * m->n_params);
    model_destroy(m2);
    /* Huber loss trains too. */
    cfg.huber_delta = 1.0f;
    cfg.max_epochs = 10;
    assert_int_equal(model_train(&m2, base, &cfg, data, n, NULL), 0);
    model_destroy(m2);
    model_linear_destroy(lin);
    model_destroy(m);
    model_destroy(base);
    free(before), free(after), free(data);
}

/* The bias-corrected moving average, with per-step decay d, of the iterates of E steps of the
 * step-level trainer on one window (what model_train_averaged runs with batch 1, val_fraction
 * 0 and fit_norm 0), into want[n_params]. *far: the largest |last raw weight - average|. */
static void average_of_iterates(float *want, double *far, const model_t *base,
                                const struct model_train_config *cfg, const float *data, int E,
                                float d)
{
    model_trainer_t *tr;
    assert_int_equal(model_trainer_create(&tr, base, cfg), 0);
    const size_t np = base->n_params;
    float *avg = falloc(np);
    double dt = 1.0;
    for (int e = 0; e < E; e++) {
        assert_int_equal(model_trainer_step(tr, data, 1, NULL), 0);
        const float *p = model_trainer_model(tr)->params;
        for (size_t i = 0; i < np; i++)
            avg[i] += (1.0f - d) * (p[i] - avg[i]);
        dt *= d;
    }
    const float *raw = model_trainer_model(tr)->params;
    *far = 0.0;
    for (size_t i = 0; i < np; i++) {
        want[i] = (float)(avg[i] / (1.0 - dt));
        *far = fmax(*far, fabs((double)raw[i] - want[i]));
    }
    model_trainer_destroy(tr);
    free(avg);
}

/* Training on one window of T + 1 rows, one step an epoch: batch 1 (so the shuffle is a
 * no-op), no validation, the model's own normalisation; E epochs at lr 1e-2. */
static struct model_train_config one_window_config(int T, int E)
{
    struct model_train_config cfg = train_config(T, E, 1e-2f);
    cfg.batch = 1;
    cfg.val_fraction = 0.0f;
    cfg.fit_norm = 0;
    return cfg;
}

/* model_train_averaged on one window (val_fraction 0, batch 1: one step an epoch, so the
 * shuffle is a no-op) returns the bias-corrected moving average of the raw iterates, recomputed
 * here from the step-level trainer's own steps (tolerance 1e-6 + 1e-4 relative: the same float
 * operations but for the correction's reciprocal), and not the last raw weights. */
static void test_train_averaged_is_the_average(void **unused)
{
    enum { T = 16, I = 3, E = 6 };
    float *data = coupled_process(T + 1, 9);
    model_t *base = make_model(I, 2, 1, 8, 2);
    struct model_train_config cfg = one_window_config(T, E);
    const float avg_epochs = 2.0f;
    model_t *m;
    struct model_train_result res = {NULL, NULL, 0, 0, 0, 0};
    assert_int_equal(model_train_averaged(&m, base, &cfg, avg_epochs, data, T + 1, &res), 0);
    assert_int_equal(res.steps, E);
    float *want = falloc(base->n_params);
    double far;
    average_of_iterates(want, &far, base, &cfg, data, E, (float)exp(-1.0 / avg_epochs));
    assert_close(m->params, want, base->n_params, 1e-6f, 1e-4f, "averaged");
    /* The raw weights moved away from the average: what is returned is not the last step's. */
    print_message("largest |raw - average| after %d steps: %.3g\n", E, far);
    assert_true(far > 1e-3);
    model_destroy(m);
    model_destroy(base);
    free(want), free(data);
}

/* A time constant so long that its per-step decay rounds to 1 in float (1e30 epochs here; a
 * device with millions of windows reaches it at avg_epochs 1000) averages the iterates about
 * equally, the longest average a float decay can hold, instead of returning NaN weights (the
 * average stayed 0 and its correction 1 / 0). */
static void test_train_averaged_longest(void **unused)
{
    enum { T = 16, I = 3, E = 6 };
    float *data = coupled_process(T + 1, 9);
    model_t *base = make_model(I, 2, 1, 8, 2);
    struct model_train_config cfg = one_window_config(T, E);
    model_t *m;
    assert_int_equal(model_train_averaged(&m, base, &cfg, 1e30f, data, T + 1, NULL), 0);
    float *want = falloc(base->n_params);
    double far;
    average_of_iterates(want, &far, base, &cfg, data, E, nextafterf(1.0f, 0.0f));
    assert_close(m->params, want, base->n_params, 1e-6f, 1e-4f, "longest average");
    model_destroy(m);
    model_destroy(base);
    free(want), free(data);
}

/* A validation loss that is never finite (validation rows far beyond the training rows' range:
 * the squared error overflows) keeps no epoch: ERR_RANGE, as a diverged training, not a model
 * holding whatever the uninitialised copy of the best weights held; plain and averaged. */
static void test_train_no_finite_validation(void **unused)
{
    const size_t n = 400;
    float *data = coupled_process(n, 3);
    for (size_t i = (n - 100) * 3; i < n * 3; i++)
        data[i] = 1e30f;
    model_t *base = make_model(3, 2, 1, 8, 1);
    struct model_train_config cfg = train_config(16, 8, 1e-2f);
    cfg.val_fraction = 0.25f;
    for (int k = 0; k < 2; k++) {
        model_t *m = NULL;
        float vl[8];
        struct model_train_result res = {NULL, vl, 0, -2, 0, 0};
        int rc = model_train_averaged(&m, base, &cfg, (float)k, data, n, &res);
        print_message("avg_epochs %d: rc %d, first validation loss %g\n", k, rc, vl[0]);
        assert_false(isfinite(vl[0]));
        assert_int_equal(rc, ERR_RANGE);
        assert_null(m);
    }
    model_destroy(base);
    free(data);
}

/* With validation, averaged training is deterministic for a seed, early stopping keeps the
 * average its curve reports, it differs from plain training, avg_epochs 0 is model_train bit
 * for bit, and a negative or non-finite avg_epochs is refused. */
static void test_train_averaged_deterministic(void **unused)
{
    const size_t n = 1500;
    float *data = coupled_process(n, 4);
    model_t *base = make_model(3, 2, 1, 16, 1);
    struct model_train_config cfg = train_config(32, 15, 1e-2f);
    cfg.reinit = 1;
    cfg.seed = 5;
    float vl[15], vl2[15];
    struct model_train_result res = {NULL, vl, 0, 0, 0, 0}, res2 = {NULL, vl2, 0, 0, 0, 0};
    model_t *a, *b, *plain, *zero;
    assert_int_equal(model_train_averaged(&a, base, &cfg, 1.0f, data, n, &res), 0);
    assert_int_equal(model_train_averaged(&b, base, &cfg, 1.0f, data, n, &res2), 0);
    assert_int_equal(res.epochs, res2.epochs);
    assert_memory_equal(vl, vl2, sizeof(float) * res.epochs);
    assert_memory_equal(a->params, b->params, sizeof(float) * a->n_params);
    assert_true(res.best_epoch >= 0 && vl[res.best_epoch] == res.best_val);
    assert_int_equal(model_train(&plain, base, &cfg, data, n, NULL), 0);
    assert_memory_not_equal(a->params, plain->params, sizeof(float) * a->n_params);
    assert_int_equal(model_train_averaged(&zero, base, &cfg, 0.0f, data, n, NULL), 0);
    assert_memory_equal(zero->params, plain->params, sizeof(float) * a->n_params);
    model_t *bad = NULL;
    assert_int_equal(model_train_averaged(&bad, base, &cfg, -1.0f, data, n, NULL), ERR_INVAL);
    assert_int_equal(model_train_averaged(&bad, base, &cfg, NAN, data, n, NULL), ERR_INVAL);
    assert_null(bad);
    model_destroy(a), model_destroy(b), model_destroy(plain), model_destroy(zero);
    model_destroy(base);
    free(data);
}

static void test_original_example_config(void **unused)
{
    /* The original state-monitoring example: I = 10 inputs, one predicted channel, H = 50,
     * MSE, Adam lr 1e-3, batch 32. Channel 0 follows a lagged mix of the nine others. */
    const size_t n = 1200;
    float *d = falloc(n * 10);
    for (size_t t = 0; t < n; t++) {
        for (int i = 1; i < 10; i++)
            d[t * 10 + i] = sinf(0.05f * (float)t * (float)i) + frand(-0.05f, 0.05f);
        float mix = 0.0f;
        for (int i = 1; t > 0 && i < 10; i++)
            mix += d[(t - 1) * 10 + i] / (float)i;
        d[t * 10] = 3.0f + mix;
    }
    struct model_config mc = {10, 1, 1, 50, 4};
    model_t *base = NULL, *m = NULL;
    assert_int_equal(model_create(&base, &mc), 0);
    struct model_train_config cfg;
    model_train_config_default(&cfg);
    cfg.lr = 1e-3f;
    cfg.batch = 32;
    cfg.window = 32;
    cfg.max_epochs = 8;
    float tl[8], vl[8];
    struct model_train_result res = {tl, vl, 0, 0, 0, 0};
    assert_int_equal(model_train(&m, base, &cfg, d, n, &res), 0);
    assert_true(res.epochs == 8);
    assert_true(tl[7] < 0.5f * tl[0]);
    assert_true(vl[res.best_epoch] < vl[0]);
    model_destroy(m);
    model_destroy(base);
    free(d);
}

static void test_train_bad_input(void **unused)
{
    model_t *base = make_model(3, 2, 1, 8, 1), *m = NULL;
    float *data = coupled_process(200, 1);
    struct model_train_config cfg;
    model_train_config_default(&cfg);
    cfg.window = 64;
    assert_int_equal(model_train(&m, base, &cfg, data, 100, NULL), ERR_RANGE);
    cfg.window = 16;
    cfg.batch = 0;
    assert_int_equal(model_train(&m, base, &cfg, data, 200, NULL), ERR_INVAL);
    cfg.batch = 8;
    cfg.val_fraction = 0.95f;
    assert_int_equal(model_train(&m, base, &cfg, data, 200, NULL), ERR_INVAL);
    cfg.val_fraction = 0.2f;
    data[77] = NAN;
    assert_int_equal(model_train(&m, base, &cfg, data, 200, NULL), ERR_INVAL);
    assert_null(m);
    free(data);
    model_destroy(base);
}

static void test_linear_recovers_system(void **unused)
{
    /* Noiseless x_{t+1} = A x_t + B u_t + b with random u: the fit recovers A, B, b to 1e-3. */
    const int I = 4, O = 2;
    const float A[2][2] = {{0.9f, 0.1f}, {-0.2f, 0.7f}}, Bm[2][2] = {{0.5f, 0.0f}, {0.1f, -0.3f}};
    const float b[2] = {1.0f, -2.0f};
    const size_t n = 500;
    float *d = falloc(n * I);
    for (size_t t = 0; t < n; t++) {
        d[t * I + 2] = frand(-1, 1);
        d[t * I + 3] = frand(-1, 1);
        if (t == 0)
            continue;
        const float *p = d + (t - 1) * I;
        for (int j = 0; j < O; j++)
            d[t * I + j] =
                A[j][0] * p[0] + A[j][1] * p[1] + Bm[j][0] * p[2] + Bm[j][1] * p[3] + b[j];
    }
    model_linear_t *lin;
    assert_int_equal(model_linear_fit(&lin, d, n, I, O), 0);
    float ab[8], bb[2];
    model_linear_coef(lin, ab, bb);
    for (int j = 0; j < O; j++) {
        assert_float_equal(ab[j * I + 0], A[j][0], 1e-3);
        assert_float_equal(ab[j * I + 1], A[j][1], 1e-3);
        assert_float_equal(ab[j * I + 2], Bm[j][0], 1e-3);
        assert_float_equal(ab[j * I + 3], Bm[j][1], 1e-3);
        assert_float_equal(bb[j], b[j], 1e-3);
    }
    float pred[2];
    model_linear_predict(lin, pred, d + 10 * I);
    assert_close(pred, d + 11 * I, O, 1e-3f, 1e-4f, "linear predict");
    struct model_eval ev;
    assert_int_equal(model_linear_evaluate(lin, &ev, d, n, 1), 0);
    assert_true(ev.nmse < 1e-6);
    model_linear_destroy(lin);
    /* A constant channel makes the system rank deficient; the fit still succeeds. */
    for (size_t t = 0; t < n; t++)
        d[t * I + 3] = 5.0f;
    assert_int_equal(model_linear_fit(&lin, d, n, I, O), 0);
    model_linear_destroy(lin);
    assert_int_equal(model_linear_fit(&lin, d, 1, I, O), ERR_RANGE);
    assert_int_equal(model_linear_fit(&lin, d, n, I, I + 1), ERR_INVAL);
    free(d);
}

static void test_evaluate_persistence(void **unused)
{
    /* A ramp rising by 2 per step: persistence is off by exactly 2, so its MSE is 4. */
    const size_t n = 50;
    float d[50 * 2];
    for (size_t t = 0; t < n; t++) {
        d[t * 2] = 2.0f * t;
        d[t * 2 + 1] = 1.0f;
    }
    model_t *m = make_model(2, 1, 1, 4, 1);
    struct model_eval ev;
    assert_int_equal(model_evaluate(m, &ev, d, n, 5), 0);
    assert_float_equal(ev.mse_persistence, 4.0, 1e-9);
    assert_int_equal(ev.n, n - 6);
    assert_int_equal(model_evaluate(m, &ev, d, 7, 5), ERR_RANGE);
    model_destroy(m);
}

/* ---- checkpoints and safetensors ---------------------------------------------------------------
 */

static void assert_same_model(const model_t *a, const model_t *b)
{
    assert_int_equal(a->n_params, b->n_params);
    assert_int_equal(a->cfg.n_inputs, b->cfg.n_inputs);
    assert_int_equal(a->cfg.n_outputs, b->cfg.n_outputs);
    assert_int_equal(a->cfg.n_layers, b->cfg.n_layers);
    assert_int_equal(a->cfg.n_hidden, b->cfg.n_hidden);
    assert_memory_equal(a->block, b->block,
                        sizeof(float) * (2 * (size_t)a->cfg.n_inputs + a->n_params));
}

/* Every truncation of the checkpoint buf[0, len), and every single-bit flip of it (made in
 * bad, len bytes of room), is an error and leaves *r untouched. Each truncation is loaded from
 * a malloc'd copy of exactly that length so a read past the end would show in ASan. */
static void assert_ckpt_damage_refused(const unsigned char *buf, unsigned char *bad, size_t len,
                                       model_t **r)
{
    for (size_t l = 0; l < len; l++) {
        unsigned char *t = malloc(l ? l : 1);
        assert_non_null(t);
        memcpy(t, buf, l);
        assert_int_equal(model_checkpoint_load(r, t, l), ERR_CORRUPT);
        free(t);
    }
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, buf, len);
        bad[i] ^= (unsigned char)(1u << (i % 8));
        int rc = model_checkpoint_load(r, bad, len);
        assert_true(rc == ERR_CORRUPT || rc == ERR_INVAL);
    }
}

static void test_checkpoint(void **unused)
{
    model_t *m = make_normed_model(4, 2, 2, 6, 21), *r = NULL;
    size_t cap = model_checkpoint_size(m), len;
    unsigned char *buf = malloc(cap), *bad = malloc(cap);
    assert_int_equal(model_checkpoint_save(m, buf, cap - 1, &len), ERR_RANGE);
    assert_int_equal(model_checkpoint_save(m, buf, cap, &len), 0);
    assert_int_equal(len, cap);
    assert_int_equal(model_checkpoint_load(&r, buf, len), 0);
    assert_same_model(m, r);
    model_destroy(r);
    r = NULL;
    assert_ckpt_damage_refused(buf, bad, len, &r);
    assert_null(r);
    assert_int_equal(model_checkpoint_load(&r, NULL, 0), ERR_CORRUPT);
    free(buf), free(bad);
    model_destroy(m);
}

/* model_share: handles to one copy of the weights, freed with the last; a shared model refuses
 * model_set_norm (readers on other threads may step it). Under valgrind or ASan a free too early
 * or a leak would show. */
static void test_share(void **unused)
{
    model_t *m = make_normed_model(4, 2, 1, 6, 41), *ref = NULL;
    assert_int_equal(model_clone(&ref, m), 0);
    model_t *s = model_share(m);
    assert_ptr_equal(s, m);
    float mean[4] = {0}, scale[4] = {1, 1, 1, 1};
    assert_int_equal(model_set_norm(s, mean, scale), ERR_BUSY);
    assert_same_model(ref, s); /* unchanged */
    model_destroy(m);          /* the first owner lets go: s still serves */
    float x[4] = {0.5f, -1.0f, 2.0f, 0.25f}, p1[2], p2[2];
    float *st1 = calloc(model_state_len(s), sizeof(float)),
          *st2 = calloc(model_state_len(s), sizeof(float));
    float *w = calloc(model_work_len(s, 1), sizeof(float));
    assert_int_equal(model_step(s, p1, st1, x, w), 0);
    assert_int_equal(model_step(ref, p2, st2, x, w), 0);
    assert_memory_equal(p1, p2, sizeof p1);
    /* The last handle may be modified again. */
    assert_int_equal(model_set_norm(s, mean, scale), 0);
    free(st1), free(st2), free(w);
    model_destroy(s);
    model_destroy(ref);
}

static void test_safetensors_roundtrip(void **unused)
{
    model_t *m = make_normed_model(5, 3, 3, 7, 31), *r = NULL;
    size_t cap = model_safetensors_size(m), len;
    unsigned char *buf = malloc(cap);
    assert_int_equal(model_safetensors_export(m, buf, cap - 1, &len), ERR_RANGE);
    assert_int_equal(model_safetensors_export(m, buf, cap, &len), 0);
    assert_int_equal(len, cap);
    uint64_t hl;
    memcpy(&hl, buf, 8);
    assert_int_equal(hl % 8, 0);
    assert_non_null(strstr((char *)buf + 8, "\"lstm.weight_ih_l2\""));
    assert_non_null(strstr((char *)buf + 8, "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[3,7]"));
    assert_int_equal(model_safetensors_import(&r, buf, len), 0);
    assert_same_model(m, r);
    model_destroy(r);
    free(buf);
    model_destroy(m);
}

/* Builds a safetensors buffer from a header string and n data bytes (zero floats = 0.0f,
 * except that input_scale would be 0, so tests using it set their own bytes). */
static unsigned char *st_make(const char *hdr, size_t ndata, size_t *len)
{
    size_t hl = strlen(hdr);
    *len = 8 + hl + ndata;
    unsigned char *b = calloc(*len, 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, hdr, hl);
    return b;
}

static void test_safetensors_handmade(void **unused)
{
    /* A minimal valid file: I = 1, H = 1, O = 1, plain nn.LSTM names (no "lstm." prefix), no
     * standardisation tensors (identity). 4+4+16+16+4+4 = 48 bytes of data (zeros). */
    const char *ok =
        "{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[0,16]},"
        "\"weight_hh_l0\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[16,32]},"
        "\"bias_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[32,48]},"
        "\"bias_hh_l0\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]},"
        "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[64,68]},"
        "\"fc.bias\":{\"data_offsets\":[68,72],\"shape\":[1],\"dtype\":\"F32\"},"
        "\"__metadata__\":{\"format\":\"pt\",\"x\":[1,{\"y\":null}]}}";
    size_t len;
    unsigned char *b = st_make(ok, 72, &len);
    model_t *m = NULL;
    assert_int_equal(model_safetensors_import(&m, b, len), 0);
    assert_int_equal(m->cfg.n_hidden, 1);
    assert_true(m->scale[0] == 1.0f && m->mean[0] == 0.0f);
    model_destroy(m);
    m = NULL;
    /* Truncations and every single-byte corruption: error or a valid model, never a crash
     * (ASan/valgrind runs make "never a crash" strict). */
    for (size_t l = 0; l < len; l++) {
        unsigned char *t = malloc(l ? l : 1);
        memcpy(t, b, l);
        assert_int_equal(model_safetensors_import(&m, t, l), ERR_CORRUPT);
        free(t);
    }
    const unsigned char subst[] = {0, '"', '{', '}', '[', ']', ',', ':', '9', 'x', 0xff, '\\'};
    for (size_t i = 0; i < len; i++)
        for (size_t k = 0; k < sizeof subst; k++) {
            unsigned char *t = malloc(len);
            memcpy(t, b, len);
            t[i] = subst[k];
            int rc = model_safetensors_import(&m, t, len);
            assert_true(rc == 0 || rc == ERR_CORRUPT);
            if (rc == 0) {
                model_destroy(m);
                m = NULL;
            }
            free(t);
        }
    free(b);
    /* Specific malformations. */
    const char *bads[] = {
        "{\"weight_ih_l0\":{\"dtype\":\"F16\",\"shape\":[4,1],\"data_offsets\":[0,16]}}",
        "{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[0,999]}}",
        "{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4,1]}}",
        "{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[4,1],\"data_offsets\":[0,16]}",
        "{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[3,1],\"data_offsets\":[0,12]}}",
        "{\"weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[18446744073709551615,1],"
        "\"data_offsets\":[0,16]}}",
        "[]",
        "",
        "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]"
        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    };
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        b = st_make(bads[i], 72, &len);
        assert_int_equal(model_safetensors_import(&m, b, len), ERR_CORRUPT);
        free(b);
    }
    /* A header length beyond the buffer. */
    unsigned char hdr[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
    assert_int_equal(model_safetensors_import(&m, hdr, sizeof hdr), ERR_CORRUPT);
    assert_null(m);
}

/* A header of a few hundred bytes that names the largest model's shapes (H = 2048, I = 1024,
 * 3 layers: 92 M parameters, 370 MB) over an empty data section is refused before anything
 * of that size is allocated. Before session 26 the importer created (and initialised) the
 * model first and checked the tensors' bytes after: a 383-byte PUT .../model/weights cost
 * 370 MB and seconds of CPU. Measured in a child, whose peak RSS (wait4) starts at ours. */
static void test_safetensors_huge_shape_small_body(void **unused)
{
    char hdr[1024];
    snprintf(hdr, sizeof hdr,
             "{\"lstm.weight_ih_l0\":{\"dtype\":\"F32\",\"shape\":[8192,1024],"
             "\"data_offsets\":[0,0]},"
             "\"lstm.weight_hh_l0\":{\"dtype\":\"F32\",\"shape\":[8192,2048],"
             "\"data_offsets\":[0,0]},"
             "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[1,2048],\"data_offsets\":[0,0]},"
             "\"lstm.weight_ih_l1\":{\"dtype\":\"F32\",\"shape\":[8192,2048],"
             "\"data_offsets\":[0,0]},"
             "\"lstm.weight_ih_l2\":{\"dtype\":\"F32\",\"shape\":[8192,2048],"
             "\"data_offsets\":[0,0]}}");
    size_t len;
    unsigned char *b = st_make(hdr, 0, &len);
    assert_true(len < 400);
    struct rusage self, child;
    assert_int_equal(getrusage(RUSAGE_SELF, &self), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        model_t *m = NULL;
        _exit(model_safetensors_import(&m, b, len) == ERR_CORRUPT && m == NULL ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(wait4(pid, &st, 0, &child), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* ru_maxrss in KiB: the child may grow by less than 64 MiB (the model would be 370 MB). */
    assert_true(child.ru_maxrss < self.ru_maxrss + 64 * 1024);
    free(b);
}

/* ---- float16 serving form (model_compact) --------------------------------------------------
 */

/* The float16 value nearest to x is the one model__f32_to_f16 picks: no neighbour is closer. */
static void test_f16_conversions(void **unused)
{
    /* Every half widens and rounds back to itself (NaNs stay NaNs). */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = model__f16_to_f32((uint16_t)h);
        uint16_t back = model__f32_to_f16(f);
        if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) {
            assert_true(isnan(f));
            assert_true((back & 0x7c00u) == 0x7c00u && (back & 0x3ffu));
        } else {
            assert_int_equal(back, h);
        }
    }
    /* Known values: the largest half, rounding into infinity, subnormals, ties to even. */
    struct {
        float x;
        uint16_t h;
    } known[] = {{1.0f, 0x3c00},
                 {-2.0f, 0xc000},
                 {65504.0f, 0x7bff},
                 {65519.0f, 0x7bff},
                 {65520.0f, 0x7c00},
                 {1e9f, 0x7c00},
                 {0x1p-24f, 0x0001},
                 {0x1p-25f, 0x0000},
                 {0x1.8p-24f, 0x0002},
                 {0x1p-14f, 0x0400},
                 {1.0f + 0x1p-11f, 0x3c00},
                 {1.0f + 0x1.8p-10f, 0x3c02},
                 {-0.0f, 0x8000},
                 {0.1f, 0x2e66}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (model__f32_to_f16(known[i].x) != known[i].h) {
            print_error("f32_to_f16(%a) = %#x, want %#x\n", known[i].x,
                        model__f32_to_f16(known[i].x), known[i].h);
            fail();
        }
    }
    /* Random floats over float16's whole range: no neighbouring half is nearer. */
    for (int i = 0; i < 200000; i++) {
        float x = ldexpf(frand(-1, 1), (int)frand(-26, 16));
        uint16_t h = model__f32_to_f16(x);
        assert_true((h & 0x7c00u) != 0x7c00u);
        double e = fabs((double)model__f16_to_f32(h) - x);
        for (int d = -1; d <= 1; d += 2) {
            uint16_t n = (uint16_t)(h + d);
            if ((h & 0x7fffu) == 0 || (n & 0x7c00u) == 0x7c00u)
                continue;
            assert_true(e <= fabs((double)model__f16_to_f32(n) - x));
        }
    }
}

/* Random float16 matrix [M, K] and vectors. */
static uint16_t *h16_random(size_t n, float lo, float hi)
{
    uint16_t *w = malloc(sizeof(uint16_t) * (n ? n : 1));
    assert_non_null(w);
    for (size_t i = 0; i < n; i++)
        w[i] = model__f32_to_f16(frand(lo, hi));
    return w;
}

/* |y - ref| <= 2e-6 * (sum_k |w_jk x_k| + |b1_j| + |b2_j|) for every row: float32 rounding of up
 * to 135 terms summed in another order or with fused multiply-adds (a wrong row, column, panel
 * or bias is off by far more). */
static void assert_gemv_close(const float *y, const float *ref, const uint16_t *w, int panels,
                              const float *x, const uint16_t *b1, const uint16_t *b2, int M, int K,
                              const char *what, int isa)
{
    for (int j = 0; j < M; j++) {
        double mag = 0;
        for (int k = 0; k < K; k++) {
            size_t at = panels ? model__f16_panel_pos(M, K, j, k) : (size_t)j * K + k;
            mag += fabs(model__f16_to_f32(w[at]) * x[k]);
        }
        mag += b1 ? fabs(model__f16_to_f32(b1[j])) : 0;
        mag += b2 ? fabs(model__f16_to_f32(b2[j])) : 0;
        if (!(fabs(y[j] - ref[j]) <= 2e-6 * mag)) {
            print_error("%s level %d M %d K %d row %d: %.9g vs %.9g\n", what, isa, M, K, j, y[j],
                        ref[j]);
            fail();
        }
    }
}

static void test_f16_gemv_vs_naive(void **unused)
{
    /* Every kernel level this CPU runs (portable; AVX2/F16C/FMA), row-major and in panels,
     * against the plain loops, within assert_gemv_close's bound; the dispatched functions are
     * the top level's. Shapes cover one and several panels (64 rows), rows after the panels
     * (M % 16), groups of 4 rows and 8 columns. */
    const int top = model__f16_isa();
    print_message("f16 gemv: kernel levels 0..%d tested (0 portable, 1 AVX2/F16C/FMA)\n", top);
    int Ms[] = {1, 3, 4, 7, 16, 20, 48, 64, 80, 128, 144, 256, 260}, Ks[] = {1, 7, 8, 9, 72, 133};
    for (size_t a = 0; a < sizeof Ms / sizeof Ms[0]; a++)
        for (size_t b = 0; b < sizeof Ks / sizeof Ks[0]; b++)
            for (int nb = 0; nb < 3; nb++) {
                int M = Ms[a], K = Ks[b];
                uint16_t *w = h16_random((size_t)M * K, -1, 1);
                uint16_t *wp = h16_random((size_t)M * K, 0, 0);
                uint16_t *b1 = nb > 0 ? h16_random((size_t)M, -1, 1) : NULL;
                uint16_t *b2 = nb > 1 ? h16_random((size_t)M, -1, 1) : NULL;
                float *x = falloc((size_t)K), *y0 = falloc((size_t)M), *y1 = falloc((size_t)M);
                float *y2 = falloc((size_t)M);
                fill(x, (size_t)K, -3, 3);
                for (int j = 0; j < M; j++) /* the same matrix in panels */
                    for (int k = 0; k < K; k++)
                        wp[model__f16_panel_pos(M, K, j, k)] = w[(size_t)j * K + k];
                model__gemv_f16_naive(y0, w, x, b1, b2, M, K);
                model__gemv_f16_panel_naive(y2, wp, x, b1, b2, M, K);
                assert_memory_equal(y0, y2, sizeof(float) * (size_t)M); /* same sums */
                for (int isa = 0; isa <= top; isa++) {
                    model__gemv_f16_at(isa, y1, w, x, b1, b2, M, K);
                    assert_gemv_close(y1, y0, w, 0, x, b1, b2, M, K, "rows", isa);
                    model__gemv_f16_panel_at(isa, y1, wp, x, b1, b2, M, K);
                    assert_gemv_close(y1, y0, wp, 1, x, b1, b2, M, K, "panels", isa);
                }
                model__gemv_f16(y2, w, x, b1, b2, M, K);
                model__gemv_f16_at(top, y1, w, x, b1, b2, M, K);
                assert_memory_equal(y1, y2, sizeof(float) * (size_t)M);
                model__gemv_f16_panel(y2, wp, x, b1, b2, M, K);
                model__gemv_f16_panel_at(top, y1, wp, x, b1, b2, M, K);
                assert_memory_equal(y1, y2, sizeof(float) * (size_t)M);
                free(w), free(wp), free(b1), free(b2), free(x), free(y0), free(y1), free(y2);
            }
}

static void test_f16_widening_exact(void **unused)
{
    /* model__f16_to_f32 gives every half's exact value (computed here in double from its
     * fields), and every kernel level widens every finite half exactly: with x = 1 and one
     * column, each output is its row's weight, a bias is added exactly to 0. */
    for (uint32_t h = 0; h < 65536; h++) {
        const int e = (h >> 10) & 31, mant = h & 1023;
        if (e == 31)
            continue; /* infinities and NaNs: test_f16_conversions */
        double v = e == 0 ? ldexp(mant, -24) : ldexp(1024 + mant, e - 25);
        v = (h & 0x8000u) ? -v : v;
        float f = model__f16_to_f32((uint16_t)h);
        assert_true((double)f == v);
        assert_int_equal(signbit(f) != 0, (h & 0x8000u) != 0);
    }
    const int top = model__f16_isa(), M = 32;
    uint16_t w[32], zero[32] = {0};
    float one = 1.0f, y[32];
    for (uint32_t h0 = 0; h0 < 65536; h0 += M) {
        for (int j = 0; j < M; j++) {
            uint16_t h = (uint16_t)(h0 + (uint32_t)j);
            w[j] = ((h >> 10) & 31) == 31 ? 0 : h; /* panels of one column: rows in order */
        }
        for (int isa = 0; isa <= top; isa++) {
            for (int panels = 0; panels < 2; panels++) {
                if (panels)
                    model__gemv_f16_panel_at(isa, y, w, &one, NULL, NULL, M, 1);
                else
                    model__gemv_f16_at(isa, y, w, &one, NULL, NULL, M, 1);
                for (int j = 0; j < M; j++)
                    assert_true(y[j] == model__f16_to_f32(w[j]));
                /* the bias path: 0 weights, the halves as b1 */
                if (panels)
                    model__gemv_f16_panel_at(isa, y, zero, &one, w, NULL, M, 1);
                else
                    model__gemv_f16_at(isa, y, zero, &one, w, NULL, M, 1);
                for (int j = 0; j < M; j++)
                    assert_true(y[j] == model__f16_to_f32(w[j]));
            }
        }
    }
}

/* Steps T rows of x through m from the zero state: pred [T, O]. */
static void run_steps(const model_t *m, float *pred, const float *x, int T)
{
    float *st = falloc(model_state_len(m)), *work = falloc(model_work_len(m, 1));
    for (int t = 0; t < T; t++)
        assert_int_equal(model_step(m, pred + (size_t)t * m->cfg.n_outputs, st,
                                    x + (size_t)t * m->cfg.n_inputs, work),
                         0);
    free(st), free(work);
}

static void test_compact_step(void **unused)
{
    /* A compact model c of m against w, the float32 model of c's (rounded) weights (model_clone
     * widens exactly): the float16 step differs from w's sgemv step only in the order of the
     * float32 sums, so they agree within 1e-5 absolute + 1e-5 relative over 60 steps; and so
     * does the plain-loop reference on w's weights. Against m itself (unrounded weights) the
     * predictions do differ (the rounding is real) but by little: 1e-2 abs + 1e-2 rel here. */
    int shapes[][4] = {{5, 3, 1, 9}, {5, 3, 2, 9}, {5, 3, 3, 9}, {8, 8, 1, 64}, {3, 1, 2, 20}};
    for (size_t s = 0; s < 5; s++) {
        const int I = shapes[s][0], O = shapes[s][1], L = shapes[s][2], H = shapes[s][3];
        const int T = 60;
        model_t *m = make_normed_model(I, O, L, H, 90 + s), *c, *w;
        assert_int_equal(model_compact(&c, m), 0);
        assert_int_equal(model_is_compact(c), 1);
        assert_int_equal(model_is_compact(m), 0);
        assert_int_equal(model_clone(&w, c), 0);
        assert_int_equal(model_is_compact(w), 0);
        assert_int_equal(model_param_count(c), model_param_count(m));
        float *x = falloc((size_t)T * I), *pc = falloc((size_t)T * O);
        float *pw = falloc((size_t)T * O), *pr = falloc((size_t)T * O);
        float *pm = falloc((size_t)T * O);
        fill(x, (size_t)T * I, -8, 8);
        run_steps(c, pc, x, T);
        run_steps(w, pw, x, T);
        run_steps(m, pm, x, T);
        reference_predictions(w, pr, x, T);
        assert_close(pc, pw, (size_t)T * O, 1e-5f, 1e-5f, "f16 step vs f32 step, same weights");
        assert_close(pc, pr, (size_t)T * O, 1e-5f, 1e-5f, "f16 step vs reference");
        assert_close(pc, pm, (size_t)T * O, 1e-2f, 1e-2f, "f16 step vs unrounded f32");
        double worst = 0, scale = 0;
        for (int i = 0; i < T * O; i++) {
            worst = fmax(worst, fabs((double)pc[i] - pm[i]));
            scale = fmax(scale, fabs((double)pm[i]));
        }
        print_message("f16 I=%d O=%d L=%d H=%d: largest |f16 - f32| over %d predictions %.3g "
                      "(largest |prediction| %.3g)\n",
                      I, O, L, H, T * O, worst, scale);
        assert_true(memcmp(pc, pm, sizeof(float) * (size_t)T * O) != 0);
        free(x), free(pc), free(pw), free(pr), free(pm);
        model_destroy(c), model_destroy(w), model_destroy(m);
    }
}

static void test_compact_batch_predict_forecast(void **unused)
{
    /* On a compact model the batched step runs each device as model_step does (same bits), the
     * prediction from a state is the last step's, and the forecast matches w's (the float32
     * model of the same weights) within 1e-4 abs + 1e-4 rel over 12 fed-back steps. */
    const int I = 6, O = 2, L = 2, H = 12, B = 5, T = 15, K = 12;
    model_t *m = make_normed_model(I, O, L, H, 78), *c, *w;
    assert_int_equal(model_compact(&c, m), 0);
    assert_int_equal(model_clone(&w, c), 0);
    size_t S = model_state_len(c);
    float *st1 = falloc(S * B), *st2 = falloc(S * B), *x = falloc((size_t)B * I);
    float *p1 = falloc((size_t)B * O), *p2 = falloc((size_t)B * O);
    float *w1 = falloc(model_work_len(c, 1)), *wb = falloc(model_work_len(c, B));
    float *ptrs[B];
    for (int b = 0; b < B; b++)
        ptrs[b] = st2 + (size_t)b * S;
    for (int t = 0; t < T; t++) {
        fill(x, (size_t)B * I, -6, 6);
        for (int b = 0; b < B; b++)
            assert_int_equal(model_step(c, p1 + b * O, st1 + b * S, x + b * I, w1), 0);
        assert_int_equal(model_step_batch(c, p2, ptrs, x, B, wb), 0);
        assert_memory_equal(p1, p2, sizeof(float) * (size_t)B * O);
    }
    assert_memory_equal(st1, st2, sizeof(float) * S * B);
    float pr[2];
    model_predict(c, pr, st1);
    assert_memory_equal(pr, p1, sizeof pr);
    x[2] = NAN;
    assert_int_equal(model_step(c, p1, st1, x, w1), ERR_INVAL);
    assert_memory_equal(st1, st2, sizeof(float) * S * B); /* untouched */
    float *f1 = falloc((size_t)K * O), *f2 = falloc((size_t)K * O);
    float *u = falloc((size_t)(K - 1) * (I - O));
    fill(u, (size_t)(K - 1) * (I - O), -4, 4);
    assert_int_equal(model_forecast(c, f1, st1, u, K, w1), 0);
    assert_memory_equal(st1, st2, sizeof(float) * S); /* live state undisturbed */
    assert_int_equal(model_forecast(w, f2, st1, u, K, w1), 0);
    assert_close(f1, f2, (size_t)K * O, 1e-4f, 1e-4f, "f16 forecast vs f32 forecast");
    assert_int_equal(model_forecast(c, f1, st1, NULL, K, w1), 0);
    free(st1), free(st2), free(x), free(p1), free(p2), free(w1), free(wb), free(f1), free(f2);
    free(u);
    model_destroy(c), model_destroy(w), model_destroy(m);
}

static void assert_same_compact(const model_t *a, const model_t *b)
{
    assert_true(a->compact && b->compact);
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(&a->cfg, &b->cfg, sizeof a->cfg);
    assert_memory_equal(a->mean, b->mean, sizeof(float) * (size_t)a->cfg.n_inputs);
    assert_memory_equal(a->scale, b->scale, sizeof(float) * (size_t)a->cfg.n_inputs);
    assert_memory_equal(a->params16, b->params16, sizeof(uint16_t) * a->n_params);
}

static void test_compact_roundtrips(void **unused)
{
    model_t *m = make_normed_model(4, 2, 2, 6, 23), *c, *w, *r = NULL, *c2;
    assert_int_equal(model_compact(&c, m), 0);
    /* Memory: the handle and float32 mean and scale, then 2 bytes a parameter. */
    assert_int_equal(model_memory_size(m) - model_memory_size(c), 2 * model_param_count(m));
    /* clone widens; compacting the widened copy gives the same halves; so does compacting c. */
    assert_int_equal(model_clone(&w, c), 0);
    assert_int_equal(model_compact(&c2, w), 0);
    assert_same_compact(c, c2);
    model_destroy(c2);
    assert_int_equal(model_compact(&c2, c), 0);
    assert_same_compact(c, c2);
    model_destroy(c2);
    /* A checkpoint of c holds the halves (version 2, 2 bytes a parameter) and loads compact. */
    size_t cap = model_checkpoint_size(c), len;
    assert_int_equal(model_checkpoint_size(m) - cap, 2 * model_param_count(m));
    unsigned char *buf = malloc(cap), *bad = malloc(cap);
    assert_int_equal(model_checkpoint_save(c, buf, cap - 1, &len), ERR_RANGE);
    assert_int_equal(model_checkpoint_save(c, buf, cap, &len), 0);
    assert_int_equal(len, cap);
    assert_int_equal(buf[4], 2);
    assert_int_equal(model_checkpoint_load(&r, buf, len), 0);
    assert_same_compact(c, r);
    model_destroy(r);
    r = NULL;
    assert_ckpt_damage_refused(buf, bad, len, &r);
    /* A half that is infinite, with a valid CRC, is corrupt. */
    memcpy(bad, buf, len);
    size_t at = 48 + 8 * 4 + 2 * 7;
    bad[at] = 0x00, bad[at + 1] = 0x7c;
    uint32_t crc = model__crc32(0, bad, len - 4);
    for (int i = 0; i < 4; i++)
        bad[len - 4 + i] = (unsigned char)(crc >> (8 * i));
    assert_int_equal(model_checkpoint_load(&r, bad, len), ERR_CORRUPT);
    assert_null(r);
    free(buf), free(bad);
    /* safetensors: c exports its widened values (F32), which import as w. */
    cap = model_safetensors_size(c);
    assert_int_equal(cap, model_safetensors_size(m));
    buf = malloc(cap);
    assert_int_equal(model_safetensors_export(c, buf, cap - 1, &len), ERR_RANGE);
    assert_int_equal(model_safetensors_export(c, buf, cap, &len), 0);
    assert_int_equal(model_safetensors_import(&r, buf, len), 0);
    assert_same_model(w, r);
    model_destroy(r);
    free(buf);
    /* Standardisation on a compact model: set and read back; shared, it is refused. */
    float mean[4] = {1, 2, 3, 4}, scale[4] = {2, 2, 2, 2}, m2[4], s2[4];
    assert_int_equal(model_set_norm(c, mean, scale), 0);
    model_get_norm(c, m2, s2);
    assert_memory_equal(mean, m2, sizeof mean);
    assert_memory_equal(scale, s2, sizeof scale);
    model_t *sh = model_share(c);
    assert_int_equal(model_set_norm(c, mean, scale), ERR_BUSY);
    model_destroy(sh);
    model_destroy(w);
    model_destroy(c);
    model_destroy(m);
}

static void test_compact_out_of_range(void **unused)
{
    model_t *m = make_model(3, 1, 1, 4, 3), *c = NULL;
    m->params[5] = 70000.0f;
    assert_int_equal(model_compact(&c, m), ERR_RANGE);
    assert_null(c);
    m->params[5] = 65504.0f; /* the largest half: fine */
    assert_int_equal(model_compact(&c, m), 0);
    assert_true(model__f16_to_f32(c->params16[model__f16_index(c, 5)]) == 65504.0f);
    model_destroy(c);
    model_destroy(m);
}

static void test_compact_evaluate_and_train(void **unused)
{
    /* evaluate on a compact model scores its float16 steps: close to w's (1e-4 relative);
     * training from a compact base trains its widened copy: the same model, bit for bit, as
     * training from w, and a float32 model. */
    const size_t n = 400;
    float *data = coupled_process(n, 9);
    model_t *m = make_model(3, 2, 1, 8, 4), *c, *w, *t1, *t2;
    float mean[3] = {0.5f, -0.5f, 0}, scale[3] = {2, 1.5f, 1};
    assert_int_equal(model_set_norm(m, mean, scale), 0);
    assert_int_equal(model_compact(&c, m), 0);
    assert_int_equal(model_clone(&w, c), 0);
    struct model_eval ec, ew;
    assert_int_equal(model_evaluate(c, &ec, data, n, 10), 0);
    assert_int_equal(model_evaluate(w, &ew, data, n, 10), 0);
    assert_float_equal(ec.mse, ew.mse, 1e-4 * ew.mse);
    assert_int_equal(ec.n, ew.n);
    struct model_train_config cfg;
    model_train_config_default(&cfg);
    cfg.window = 16;
    cfg.max_epochs = 2;
    cfg.fit_norm = 0;
    assert_int_equal(model_train(&t1, c, &cfg, data, n, NULL), 0);
    assert_int_equal(model_train(&t2, w, &cfg, data, n, NULL), 0);
    assert_int_equal(model_is_compact(t1), 0);
    assert_same_model(t1, t2);
    model_trainer_t *tr;
    assert_int_equal(model_trainer_create(&tr, c, &cfg), 0);
    assert_int_equal(model_is_compact(model_trainer_model(tr)), 0);
    model_trainer_destroy(tr);
    model_destroy(t1), model_destroy(t2), model_destroy(c), model_destroy(w), model_destroy(m);
    free(data);
}

static void test_compact_panel_layout(void **unused)
{
    /* A compact model keeps its gate matrices in panels of 64 rows (f16.c) and everything else
     * in place; model__f16_index maps canonical positions onto that layout one to one. What
     * leaves the model is in canonical order, unchanged by the layout: the checkpoint's halves
     * are f32_to_f16 of the float32 parameters in internal.h's order, save -> load -> save gives
     * the same bytes, the safetensors export is that of the widened float32 model byte for
     * byte, and the fingerprint is the CRC of the canonical halves. Shapes: four panels (H=64),
     * none (H=6: G=24 rows, all row-major), a panel and 16 rows after it (H=20, 3 layers), two
     * panels and 16 rows (H=36). */
    int shapes[][4] = {{8, 8, 1, 64}, {4, 2, 2, 6}, {5, 3, 3, 20}, {3, 3, 1, 36}};
    for (size_t s = 0; s < 4; s++) {
        const int I = shapes[s][0], O = shapes[s][1], L = shapes[s][2], H = shapes[s][3];
        model_t *m = make_normed_model(I, O, L, H, 300 + s), *c, *w, *r;
        assert_int_equal(model_compact(&c, m), 0);
        const size_t n = model_param_count(c);
        uint16_t *canon = malloc(sizeof(uint16_t) * n);
        unsigned char *seen = calloc(n, 1);
        assert_non_null(canon);
        assert_non_null(seen);
        for (size_t i = 0; i < n; i++) {
            size_t at = model__f16_index(c, i);
            assert_true(at < n);
            assert_int_equal(seen[at], 0);
            seen[at] = 1;
            canon[i] = model__f32_to_f16(m->params[i]);
            assert_int_equal(c->params16[at], canon[i]);
        }
        /* In memory it really is the panel layout: W_0's row 1, column 0 follows row 0's (when
         * W_0 has a whole panel; else it is row-major). */
        const size_t K0 = (size_t)(I + H);
        assert_int_equal(c->params16[1], canon[4 * H >= MODEL_F16_PANEL ? K0 : 1]);
        /* Checkpoint: canonical halves after the header and mean, scale; save-load-save. */
        size_t cap = model_checkpoint_size(c), len, len2;
        unsigned char *b1 = malloc(cap), *b2 = malloc(cap);
        assert_int_equal(model_checkpoint_save(c, b1, cap, &len), 0);
        for (size_t i = 0; i < n; i++) {
            const unsigned char *q = b1 + 48 + 8 * (size_t)I + 2 * i;
            assert_int_equal(q[0] | (q[1] << 8), canon[i]);
        }
        assert_int_equal(model_checkpoint_load(&r, b1, len), 0);
        assert_memory_equal(r->params16, c->params16, sizeof(uint16_t) * n);
        assert_int_equal(model_checkpoint_save(r, b2, cap, &len2), 0);
        assert_int_equal(len, len2);
        assert_memory_equal(b1, b2, len);
        model_destroy(r);
        free(b1), free(b2);
        /* safetensors: the compact model's export is its widened float32 clone's. */
        assert_int_equal(model_clone(&w, c), 0);
        for (size_t i = 0; i < n; i++)
            assert_true(w->params[i] == model__f16_to_f32(canon[i]));
        cap = model_safetensors_size(c);
        b1 = malloc(cap), b2 = malloc(cap);
        assert_int_equal(model_safetensors_export(c, b1, cap, &len), 0);
        assert_int_equal(model_safetensors_export(w, b2, cap, &len2), 0);
        assert_int_equal(len, len2);
        assert_memory_equal(b1, b2, len);
        free(b1), free(b2);
        /* The fingerprint: shape (with the compact flag), mean, scale, canonical halves. */
        const int32_t shape[5] = {I, O, L, H, 1};
        uint32_t crc = model__crc32(0, shape, sizeof shape);
        crc = model__crc32(crc, c->mean, sizeof(float) * (size_t)I);
        crc = model__crc32(crc, c->scale, sizeof(float) * (size_t)I);
        crc = model__crc32(crc, canon, sizeof(uint16_t) * n);
        assert_int_equal(model_fingerprint(c), crc);
        free(canon), free(seen);
        model_destroy(w), model_destroy(c), model_destroy(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_and_sizes),
        cmocka_unit_test(test_dense_vs_naive),
        cmocka_unit_test(test_lstm_vs_naive),
        cmocka_unit_test(test_cell_in_place),
        cmocka_unit_test(test_grad_mse_1layer),
        cmocka_unit_test(test_grad_mse_3layers),
        cmocka_unit_test(test_grad_huber_2layers),
        cmocka_unit_test(test_step_matches_reference),
        cmocka_unit_test(test_batch_matches_single),
        cmocka_unit_test(test_concurrent_serving),
        cmocka_unit_test(test_step_rejects_nonfinite),
        cmocka_unit_test(test_forecast),
        cmocka_unit_test(test_train_beats_persistence),
        cmocka_unit_test(test_train_averaged_is_the_average),
        cmocka_unit_test(test_train_averaged_longest),
        cmocka_unit_test(test_train_no_finite_validation),
        cmocka_unit_test(test_train_averaged_deterministic),
        cmocka_unit_test(test_original_example_config),
        cmocka_unit_test(test_train_bad_input),
        cmocka_unit_test(test_linear_recovers_system),
        cmocka_unit_test(test_evaluate_persistence),
        cmocka_unit_test(test_checkpoint),
        cmocka_unit_test(test_share),
        cmocka_unit_test(test_safetensors_roundtrip),
        cmocka_unit_test(test_safetensors_handmade),
        cmocka_unit_test(test_safetensors_huge_shape_small_body),
        cmocka_unit_test(test_f16_conversions),
        cmocka_unit_test(test_f16_gemv_vs_naive),
        cmocka_unit_test(test_f16_widening_exact),
        cmocka_unit_test(test_compact_step),
        cmocka_unit_test(test_compact_batch_predict_forecast),
        cmocka_unit_test(test_compact_roundtrips),
        cmocka_unit_test(test_compact_out_of_range),
        cmocka_unit_test(test_compact_evaluate_and_train),
        cmocka_unit_test(test_compact_panel_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

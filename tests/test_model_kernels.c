/* tests/test_model_kernels.c: unit tests of model/'s shapes and sizes, its kernels against the
 * plain loops of model/ref.c (dense, LSTM, the serving cell in place) and its gradients against
 * central finite differences.
 * Part of test_model: tests/test_model.c runs them, in the order of the single file they were
 * moved from; the fixtures shared with the other parts are in tests/test_model_fx.c. */

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
#include "test_model_fx.h"

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

const struct CMUnitTest model_kernels_tests[] = {
    cmocka_unit_test(test_config_and_sizes),   cmocka_unit_test(test_dense_vs_naive),
    cmocka_unit_test(test_lstm_vs_naive),      cmocka_unit_test(test_cell_in_place),
    cmocka_unit_test(test_grad_mse_1layer),    cmocka_unit_test(test_grad_mse_3layers),
    cmocka_unit_test(test_grad_huber_2layers),
};
const size_t model_kernels_count = sizeof model_kernels_tests / sizeof model_kernels_tests[0];

/* tests/test_model_serve.c: unit tests of model/'s serving paths (step, batched step,
 * concurrent serving, forecast) against each other and the training forward.
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

/* ---- serving paths --------------------------------------------------------------------------- */

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

const struct CMUnitTest model_serve_tests[] = {
    cmocka_unit_test(test_step_matches_reference),
    cmocka_unit_test(test_batch_matches_single),
    cmocka_unit_test(test_concurrent_serving),
    cmocka_unit_test(test_step_rejects_nonfinite),
    cmocka_unit_test(test_forecast),
};
const size_t model_serve_count = sizeof model_serve_tests / sizeof model_serve_tests[0];

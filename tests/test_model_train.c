/* tests/test_model_train.c: unit tests of model/'s training (against the persistence forecast
 * on a synthetic process, the averaged iterates, bad input, a cancelled training), the linear model
 * and evaluation. Part of test_model: tests/test_model.c runs them, in the order of the single file
 * they were moved from; the fixtures shared with the other parts are in tests/test_model_fx.c. */

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
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "internal.h"
#include "model.h"
#include "test_model_fx.h"

/* ---- training ----------------------------------------------------------------------------------
 */

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

/* Sets *flag after a pause, from another thread: a stop arriving during a training. */
struct cancel_later {
    atomic_int *flag;
    int after_ms;
};

static void *cancel_later_main(void *arg)
{
    struct cancel_later *c = arg;
    struct timespec nap = {c->after_ms / 1000, (long)(c->after_ms % 1000) * 1000000L};
    nanosleep(&nap, NULL);
    atomic_store(c->flag, 1);
    return NULL;
}

/* model_train_cancellable: a set flag abandons the training with ERR_CLOSED, *out and res's
 * counts as they were and the model trained from byte for byte as before; a clear flag trains
 * exactly as model_train_averaged. */
static void test_train_cancelled(void **unused)
{
    const size_t n = 600;
    float *data = coupled_process(n, 7);
    model_t *base = make_model(3, 2, 1, 16, 2);
    size_t cl = model_checkpoint_size(base), len;
    unsigned char *before = malloc(cl), *after = malloc(cl);
    assert_non_null(before);
    assert_non_null(after);
    assert_int_equal(model_checkpoint_save(base, before, cl, &len), 0);
    struct model_train_config cfg = train_config(16, 6, 5e-3f);
    model_t *sentinel = (model_t *)&cfg, *m = sentinel, *plain = NULL;
    struct model_train_result res = {NULL, NULL, -7, -7, 0.0f, -7};

    /* Set before the first minibatch: nothing trained. */
    atomic_int cancel = 1;
    assert_int_equal(model_train_cancellable(&m, base, &cfg, 0.0f, &cancel, data, n, &res),
                     ERR_CLOSED);
    assert_ptr_equal(m, sentinel);
    assert_int_equal(res.epochs, -7);
    assert_int_equal(res.steps, -7);
    assert_int_equal(model_checkpoint_save(base, after, cl, &len), 0);
    assert_memory_equal(before, after, cl);

    /* Clear: the same training as without a flag, to the bit. */
    atomic_store(&cancel, 0);
    assert_int_equal(model_train_cancellable(&m, base, &cfg, 0.5f, &cancel, data, n, &res), 0);
    assert_int_equal(model_train_averaged(&plain, base, &cfg, 0.5f, data, n, NULL), 0);
    assert_memory_equal(m->params, plain->params, sizeof(float) * m->n_params);
    model_destroy(m);
    model_destroy(plain);

    /* Set by another thread during a training that would run 100,000 epochs (no early
     * stopping): it stops at a minibatch, base untouched. (Without the check it would run its
     * epochs out and return 0.) */
    cfg.max_epochs = 100000;
    cfg.patience = 0;
    m = sentinel;
    res.epochs = res.steps = -7;
    atomic_store(&cancel, 0);
    struct cancel_later cl_arg = {&cancel, 100};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cancel_later_main, &cl_arg), 0);
    int rc = model_train_cancellable(&m, base, &cfg, 0.0f, &cancel, data, n, &res);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(rc, ERR_CLOSED);
    assert_ptr_equal(m, sentinel);
    assert_int_equal(res.epochs, -7);
    assert_int_equal(model_checkpoint_save(base, after, cl, &len), 0);
    assert_memory_equal(before, after, cl);

    free(before);
    free(after);
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

const struct CMUnitTest model_train_tests[] = {
    cmocka_unit_test(test_train_beats_persistence),
    cmocka_unit_test(test_train_averaged_is_the_average),
    cmocka_unit_test(test_train_averaged_longest),
    cmocka_unit_test(test_train_no_finite_validation),
    cmocka_unit_test(test_train_averaged_deterministic),
    cmocka_unit_test(test_original_example_config),
    cmocka_unit_test(test_train_bad_input),
    cmocka_unit_test(test_train_cancelled),
    cmocka_unit_test(test_linear_recovers_system),
    cmocka_unit_test(test_evaluate_persistence),
};
const size_t model_train_count = sizeof model_train_tests / sizeof model_train_tests[0];

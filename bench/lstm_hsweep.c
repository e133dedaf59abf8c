/* bench/lstm_hsweep.c: how the hidden size trades accuracy for speed, the measurement behind
 * MODEL_DEFAULT_HIDDEN. For H in 16, 32, 64, 128 it trains a one-layer model with the default
 * training settings on a synthetic plant (a damped nonlinear oscillator with two observed
 * channels, a third channel that is a saturating function of them, and a square-wave set
 * point as input-only channel, plus sensor noise), then reports on held-out data the
 * normalised MSE of the LSTM next to the linear baseline and persistence, the incremental step
 * time and the training time. Usage: bench_lstm_hsweep (single-threaded OpenBLAS). */
#include <cblas.h>
#undef I /* complex.h's imaginary unit (via cblas.h) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float noise(uint64_t *s, float a)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return a * ((float)(*s >> 40) / 16777216.0f - 0.5f);
}

static float *plant(size_t n)
{
    float *d = malloc(sizeof(float) * n * 4);
    uint64_t s = 7;
    double p = 1.0, v = 0.0;
    for (size_t t = 0; t < n; t++) {
        double u = ((t / 200) % 2) ? 1.0 : -1.0;
        double a = -0.05 * p - 0.02 * (p * p - 1.0) * v + 0.1 * u;
        v += 0.1 * a * 10.0;
        p += 0.1 * v;
        d[t * 4 + 0] = (float)(50.0 + 5.0 * p) + noise(&s, 0.2f);
        d[t * 4 + 1] = (float)v + noise(&s, 0.02f);
        d[t * 4 + 2] = (float)(10.0 * tanh(p * v)) + noise(&s, 0.1f);
        d[t * 4 + 3] = (float)(3.0 * u);
    }
    return d;
}

int main(void)
{
    openblas_set_num_threads(1);
    const size_t n_train = 8000, n_test = 2000;
    float *d = plant(n_train + n_test);
    model_linear_t *lin;
    struct model_eval le;
    if (model_linear_fit(&lin, d, n_train, 4, 3) < 0 ||
        model_linear_evaluate(lin, &le, d + n_train * 4, n_test, 100) < 0)
        return 1;
    printf("hsweep plant I=4 O=3 rows=%zu test=%zu linear_nmse=%.4f\n", n_train, n_test, le.nmse);
    int hs[] = {16, 32, 64, 128};
    for (int k = 0; k < 4; k++) {
        struct model_config cfg;
        model_config_default(&cfg, 4, 3);
        cfg.n_hidden = hs[k];
        model_t *base, *m;
        model_create(&base, &cfg);
        struct model_train_config tc;
        model_train_config_default(&tc);
        struct model_train_result res = {0};
        double t0 = now();
        if (model_train(&m, base, &tc, d, n_train, &res) < 0)
            return 1;
        double train_s = now() - t0;
        struct model_eval ev;
        model_evaluate(m, &ev, d + n_train * 4, n_test, 100);
        float *st = calloc(model_state_len(m), sizeof(float));
        float *work = calloc(model_work_len(m, 1), sizeof(float)), pred[3];
        long iters = 200000;
        t0 = now();
        for (long i = 0; i < iters; i++)
            model_step(m, pred, st, d + (i % n_test) * 4, work);
        double step_us = (now() - t0) / iters * 1e6;
        printf("hsweep H=%d lstm_nmse=%.4f persistence_nmse=%.4f epochs=%d train_s=%.1f "
               "step_us=%.2f model_bytes=%zu state_bytes=%zu\n",
               hs[k], ev.nmse, ev.nmse_persistence, res.epochs, train_s, step_us,
               model_memory_size(m), model_state_size(m));
        fflush(stdout);
        free(st), free(work);
        model_destroy(m);
        model_destroy(base);
    }
    model_linear_destroy(lin);
    free(d);
    return 0;
}

/* bench/lstm_bench.c: the vigil side of bench/lstm. Times model/ on the three cases of issue 3
 * and the bare BLAS calls they are bounded by, and prints key=value lines for the script:
 *   step_b1      incremental step, batch 1, I=8, H=64, O=8 (steps/s), and the bare sgemv
 *                calls one step needs (gates [256 x 72] and head [8 x 64]) as calls/s
 *   step_b256    batched step, B=256, I=32, H=128, O=32 (rows/s), the model's FLOP rate, and
 *                the bare sgemm of the gate shape ([256 x 160] . [160 x 512]) in FLOP/s
 *   train        trainer steps, T=64, B=32, I=8, H=64, O=8, Adam, MSE (steps/s)
 *   memory       bytes of one model and of one device's state for the step_b1 shape
 * Each figure is the median of 7 runs of about 0.3 s. Usage: bench_lstm THREADS [CASE] */
#include <cblas.h>
#undef I /* complex.h's imaginary unit (via cblas.h) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

#define REPS 7

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *frand_array(size_t n, uint64_t *s, float lo, float hi)
{
    float *p = malloc(sizeof(float) * n);
    if (!p)
        exit(1);
    for (size_t i = 0; i < n; i++) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = lo + (hi - lo) * (float)(*s >> 40) / 16777216.0f;
    }
    return p;
}

/* Calls per second of fn(ctx): about 0.3 s of calls, median of REPS runs. rate_pair times two
 * functions in alternation, so that a load change on a shared machine hits both alike (the
 * bounds are ratios of the two). */
typedef void (*bench_fn)(void *ctx, long iters);

static long calibrate(bench_fn fn, void *ctx)
{
    fn(ctx, 1);
    double t0 = now();
    fn(ctx, 1);
    double one = now() - t0;
    long iters = one > 0 ? (long)(0.3 / one) : 1000000;
    return iters < 1 ? 1 : iters;
}

static double run_once(bench_fn fn, void *ctx, long iters)
{
    double t0 = now();
    fn(ctx, iters);
    return (double)iters / (now() - t0);
}

static void rate_pair(bench_fn fa, void *ca, double *ra, bench_fn fb, void *cb, double *rb)
{
    long ia = calibrate(fa, ca), ib = fb ? calibrate(fb, cb) : 0;
    double a[REPS], b[REPS];
    for (int k = 0; k < REPS; k++) {
        a[k] = run_once(fa, ca, ia);
        if (fb)
            b[k] = run_once(fb, cb, ib);
    }
    qsort(a, REPS, sizeof a[0], cmp_double);
    *ra = a[REPS / 2];
    if (fb) {
        qsort(b, REPS, sizeof b[0], cmp_double);
        *rb = b[REPS / 2];
    }
}

struct step_ctx {
    model_t *m;
    float *state, *work, *x, *pred;
    float **states;
    int batch, nx; /* nx rows of inputs cycled through */
};

static void step_fn(void *p, long iters)
{
    struct step_ctx *c = p;
    const int I = 8;
    for (long i = 0; i < iters; i++)
        model_step(c->m, c->pred, c->state, c->x + (i % c->nx) * I, c->work);
}

static void batch_fn(void *p, long iters)
{
    struct step_ctx *c = p;
    for (long i = 0; i < iters; i++)
        model_step_batch(c->m, c->pred, c->states, c->x, c->batch, c->work);
}

struct gemv_ctx {
    const float *w, *v, *wh, *vh;
    float *y, *yh;
    int m, n, mh, nh;
};

static void gemv_fn(void *p, long iters)
{
    struct gemv_ctx *c = p;
    for (long i = 0; i < iters; i++) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, c->m, c->n, 1.0f, c->w, c->n, c->v, 1, 0.0f, c->y,
                    1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, c->mh, c->nh, 1.0f, c->wh, c->nh, c->vh, 1, 1.0f,
                    c->yh, 1);
    }
}

struct gemm_ctx {
    const float *a, *b;
    float *c;
    int M, N, K;
};

static void gemm_fn(void *p, long iters)
{
    struct gemm_ctx *c = p;
    for (long i = 0; i < iters; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->M, c->N, c->K, 1.0f, c->a, c->K,
                    c->b, c->K, 0.0f, c->c, c->N);
}

struct train_ctx {
    model_trainer_t *tr;
    const float *win;
    int nb;
};

static void train_fn(void *p, long iters)
{
    struct train_ctx *c = p;
    float loss;
    for (long i = 0; i < iters; i++)
        model_trainer_step(c->tr, c->win, c->nb, &loss);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    const char *only = argc > 2 ? argv[2] : ""; /* step_b1, step_b256 or train: one case */
    openblas_set_num_threads(threads);
    uint64_t seed = 1;
    printf("threads=%d\n", threads);

    /* 1. incremental step, batch 1, I=8, H=64, O=8. */
    if (!*only || strcmp(only, "step_b1") == 0) {
        struct model_config cfg = {8, 8, 1, 64, 1};
        struct step_ctx c = {0};
        model_create(&c.m, &cfg);
        c.nx = 1024;
        c.x = frand_array((size_t)c.nx * 8, &seed, -2, 2);
        c.state = calloc(model_state_len(c.m), sizeof(float));
        c.work = calloc(model_work_len(c.m, 1), sizeof(float));
        c.pred = calloc(8, sizeof(float));
        struct gemv_ctx g = {frand_array(256 * 72, &seed, -1, 1),
                             frand_array(72, &seed, -1, 1),
                             frand_array(8 * 64, &seed, -1, 1),
                             frand_array(64, &seed, -1, 1),
                             calloc(256, sizeof(float)),
                             calloc(8, sizeof(float)),
                             256,
                             72,
                             8,
                             64};
        double r, rg;
        rate_pair(step_fn, &c, &r, gemv_fn, &g, &rg);
        printf("step_b1 steps_per_s=%.1f sgemv_calls_per_s=%.1f\n", r, rg);
        printf("memory model_bytes=%zu state_bytes=%zu work_bytes=%zu\n", model_memory_size(c.m),
               model_state_size(c.m), model_work_len(c.m, 1) * sizeof(float));
        free((void *)g.w), free((void *)g.v), free((void *)g.wh), free((void *)g.vh);
        free(g.y), free(g.yh);
        free(c.x), free(c.state), free(c.work), free(c.pred);
        model_destroy(c.m);
    }
    /* 2. batched step, B=256, I=32, H=128, O=32. */
    if (!*only || strcmp(only, "step_b256") == 0) {
        const int B = 256, I = 32, H = 128, O = 32, G = 4 * H, K = I + H;
        struct model_config cfg = {I, O, 1, H, 1};
        struct step_ctx c = {0};
        model_create(&c.m, &cfg);
        c.batch = B;
        size_t S = model_state_len(c.m);
        float *st = calloc(S * B, sizeof(float));
        c.states = malloc(sizeof(float *) * B);
        for (int b = 0; b < B; b++)
            c.states[b] = st + (size_t)b * S;
        c.x = frand_array((size_t)B * I, &seed, -2, 2);
        c.work = calloc(model_work_len(c.m, B), sizeof(float));
        c.pred = calloc((size_t)B * O, sizeof(float));
        double flops_row = 2.0 * G * K + 2.0 * O * H;
        struct gemm_ctx g = {frand_array((size_t)B * K, &seed, -1, 1),
                             frand_array((size_t)G * K, &seed, -1, 1),
                             calloc((size_t)B * G, sizeof(float)),
                             B,
                             G,
                             K};
        double r, rg;
        rate_pair(batch_fn, &c, &r, gemm_fn, &g, &rg);
        r *= B;
        rg *= 2.0 * B * G * K;
        printf("step_b256 rows_per_s=%.1f model_flops_per_s=%.4g sgemm_flops_per_s=%.4g\n", r,
               r * flops_row, rg);
        free((void *)g.a), free((void *)g.b), free(g.c);
        free(st), free(c.states), free(c.x), free(c.work), free(c.pred);
        model_destroy(c.m);
    }
    /* 3. training, T=64, B=32, I=8, H=64, O=8, Adam, MSE. */
    if (!*only || strcmp(only, "train") == 0) {
        struct model_config cfg = {8, 8, 1, 64, 1};
        model_t *m;
        model_create(&m, &cfg);
        struct model_train_config tc;
        model_train_config_default(&tc);
        tc.window = 64;
        tc.batch = 32;
        struct train_ctx c = {NULL, frand_array((size_t)32 * 65 * 8, &seed, -2, 2), 32};
        model_trainer_create(&c.tr, m, &tc);
        double r, unused;
        rate_pair(train_fn, &c, &r, NULL, NULL, &unused);
        printf("train steps_per_s=%.2f\n", r);
        model_trainer_destroy(c.tr);
        free((void *)c.win);
        model_destroy(m);
    }
    return 0;
}

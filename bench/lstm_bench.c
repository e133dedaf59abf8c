/* bench/lstm_bench.c: the vigil side of bench/lstm. Times model/ on the three cases of issue 3
 * and the bare BLAS calls they are bounded by, and prints key=value lines for the script:
 *   step_b1      incremental step, batch 1, I=8, H=64, O=8 (steps/s), and the bare sgemv
 *                calls one step needs (gates [256 x 72] and head [8 x 64]) as calls/s
 *   step_b256    batched step, B=256, I=32, H=128, O=32 (rows/s), the model's FLOP rate, and
 *                the bare sgemm of the gate shape ([256 x 160] . [160 x 512]) in FLOP/s, in
 *                each of the eight operand layouts that compute it (gates or gates^T, each
 *                operand stored plain or transposed); the fastest is the bound
 *   train        trainer steps, T=64, B=32, I=8, H=64, O=8, Adam, MSE (steps/s)
 *   step_b1_f16  the step_b1 step of the same model in float16 (model_compact) beside the
 *                float32 one, timed in alternation: warm (one model, in cache), and cold
 *                (COLD_DEVICES devices, each with its own model, stepped in turn: 80 MB of
 *                float32 weights, beyond the 32 MB L3, so each step reads its weights from
 *                memory, as at fleet scale)
 *   memory       bytes of one model (float32 and float16) and of one device's state for the
 *                step_b1 shape
 *   f16_warm     the float16 step_b1 model alone, warm: ns per model_step, per device step
 *                (two model_step calls on two states, as the detector's two staggered states),
 *                and per gates mat-vec (model__gemv_f16_panel on the model's own weights,
 *                256 x 72) on the dispatched kernel and on each lower level (the portable one);
 *                the dispatched mat-vec's multiply-adds per ns; and cold: COLD_DEVICES
 *                compact models stepped in turn, a device step (two model_step calls) each. Not in
 * the default run (bench/lstm does not print it); run it alone
 *                (`bench_lstm 1 f16_warm`), also under perf (F16_WARM_SECS, default 0.3: the
 *                seconds per timing run, seven runs per figure)
 * Each figure is the median of 7 runs of about 0.3 s (0.15 s for the step_b256 timings, nine
 * of them in alternation). BENCH_CLOCK=cpu times with the process's CPU time instead of
 * the wall clock. Usage: bench_lstm THREADS [CASE] */
#include <cblas.h>
#undef I /* complex.h's imaginary unit (via cblas.h) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h" /* f16_warm times the float16 kernel itself */
#include "model.h"

#define REPS 7

/* The clock rates are measured with: CPU time of this process when BENCH_CLOCK=cpu (on a
 * shared machine, time spent descheduled is not counted), wall time otherwise. */
static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
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

static long calibrate(bench_fn fn, void *ctx, double secs)
{
    fn(ctx, 1);
    double t0 = now();
    fn(ctx, 1);
    double one = now() - t0;
    long iters = one > 0 ? (long)(secs / one) : 1000000;
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
    long ia = calibrate(fa, ca, 0.3), ib = fb ? calibrate(fb, cb, 0.3) : 0;
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

/* rates[i] = calls per second of fns[i](ctxs[i]), n functions timed round-robin (each about
 * secs per run, median of REPS runs), so that load changes hit all of them alike. */
#define MAX_FNS 9
static void rate_multi(bench_fn *fns, void **ctxs, int n, double secs, double *rates)
{
    long iters[MAX_FNS];
    double r[MAX_FNS][REPS];
    for (int i = 0; i < n; i++)
        iters[i] = calibrate(fns[i], ctxs[i], secs);
    for (int k = 0; k < REPS; k++)
        for (int i = 0; i < n; i++)
            r[i][k] = run_once(fns[i], ctxs[i], iters[i]);
    for (int i = 0; i < n; i++) {
        qsort(r[i], REPS, sizeof r[i][0], cmp_double);
        rates[i] = r[i][REPS / 2];
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

/* COLD_DEVICES devices, each with its own model and state, stepped in turn. */
#define COLD_DEVICES 1024
struct fleet_ctx {
    model_t *m[COLD_DEVICES];
    float *state[COLD_DEVICES];
    float *work, *x, *pred;
};

static void fleet_fn(void *p, long iters)
{
    struct fleet_ctx *c = p;
    for (long i = 0; i < iters; i++)
        model_step(c->m[i % COLD_DEVICES], c->pred, c->state[i % COLD_DEVICES],
                   c->x + (i % 1024) * 8, c->work);
}

/* The step_b1_f16 case: float32 and float16, warm and cold, timed round-robin. */
static void bench_f16(uint64_t *seed)
{
    struct model_config cfg = {8, 8, 1, 64, 1};
    struct step_ctx w32 = {0}, w16 = {0};
    struct fleet_ctx *f32 = calloc(1, sizeof *f32), *f16 = calloc(1, sizeof *f16);
    if (!f32 || !f16 || model_create(&w32.m, &cfg) || model_compact(&w16.m, w32.m))
        exit(1);
    float *x = frand_array(1024 * 8, seed, -2, 2);
    float *work = calloc(model_work_len(w32.m, 1), sizeof(float)), *pred = calloc(8, 4);
    float *states = calloc((size_t)(2 * COLD_DEVICES + 2) * model_state_len(w32.m), 4);
    if (!work || !pred || !states)
        exit(1);
    size_t S = model_state_len(w32.m);
    w32 = (struct step_ctx){w32.m, states, work, x, pred, NULL, 0, 1024};
    w16 = (struct step_ctx){w16.m, states + S, work, x, pred, NULL, 0, 1024};
    for (int d = 0; d < COLD_DEVICES; d++) {
        cfg.seed = 100 + (uint64_t)d;
        if (model_create(&f32->m[d], &cfg) || model_compact(&f16->m[d], f32->m[d]))
            exit(1);
        f32->state[d] = states + (2 + (size_t)d) * S;
        f16->state[d] = states + (2 + COLD_DEVICES + (size_t)d) * S;
    }
    f32->work = f16->work = work;
    f32->x = f16->x = x;
    f32->pred = f16->pred = pred;
    bench_fn fns[4] = {step_fn, step_fn, fleet_fn, fleet_fn};
    void *ctxs[4] = {&w32, &w16, f32, f16};
    double r[4];
    rate_multi(fns, ctxs, 4, 0.3, r);
    printf("step_b1_f16 f32_steps_per_s=%.1f f16_steps_per_s=%.1f cold_f32_steps_per_s=%.1f "
           "cold_f16_steps_per_s=%.1f cold_devices=%d\n",
           r[0], r[1], r[2], r[3], COLD_DEVICES);
    printf("memory16 model16_bytes=%zu\n", model_memory_size(w16.m));
    for (int d = 0; d < COLD_DEVICES; d++)
        model_destroy(f32->m[d]), model_destroy(f16->m[d]);
    model_destroy(w32.m), model_destroy(w16.m);
    free(f32), free(f16), free(x), free(work), free(pred), free(states);
}

/* The f16_warm case: one compact model, in cache. */
struct warm_ctx {
    const model_t *m;
    float *s0, *s1, *work, *x, *pred, *gates;
    int isa; /* the gates kernel's level (model__f16_isa's), -1 the dispatched one */
};

static void warm_step_fn(void *p, long iters)
{
    struct warm_ctx *c = p;
    for (long i = 0; i < iters; i++)
        model_step(c->m, c->pred, c->s0, c->x + (i % 1024) * 8, c->work);
}

static void warm_device_fn(void *p, long iters)
{
    struct warm_ctx *c = p;
    for (long i = 0; i < iters; i++) {
        model_step(c->m, c->pred, c->s0, c->x + (i % 1024) * 8, c->work);
        model_step(c->m, c->pred, c->s1, c->x + (i % 1024) * 8, c->work);
    }
}

/* gates[256] = W[256, 72] . s0[0..71] + b_ih + b_hh, the step's gate mat-vec, on the model's
 * own (compact, panel-stored) weights. */
static void warm_gemv_fn(void *p, long iters)
{
    struct warm_ctx *c = p;
    const model_t *m = c->m;
    const int G = 4 * m->cfg.n_hidden, K = m->k[0];
    for (long i = 0; i < iters; i++) {
        if (c->isa < 0)
            model__gemv_f16_panel(c->gates, m->p16.w[0], c->s0, m->p16.b_ih[0], m->p16.b_hh[0], G,
                                  K);
        else
            model__gemv_f16_panel_at(c->isa, c->gates, m->p16.w[0], c->s0, m->p16.b_ih[0],
                                     m->p16.b_hh[0], G, K);
        c->s0[i & 7] += c->gates[(i * 37) & 255] * 1e-30f; /* a dependency between calls */
    }
}

/* COLD_DEVICES compact models (each device its own), a device step each in turn: two
 * model_step calls on the device's two states, as the detector steps its staggered states; the
 * first reads the weights from memory (40 MB in all, beyond the L3), the second from cache. */
struct cold_ctx {
    model_t *m[COLD_DEVICES];
    float *states, *work, *x, *pred;
    size_t S;
};

static void cold_device_fn(void *p, long iters)
{
    struct cold_ctx *c = p;
    for (long i = 0; i < iters; i++) {
        const int d = (int)(i % COLD_DEVICES);
        float *s = c->states + 2 * (size_t)d * c->S;
        model_step(c->m[d], c->pred, s, c->x + (i % 1024) * 8, c->work);
        model_step(c->m[d], c->pred, s + c->S, c->x + (i % 1024) * 8, c->work);
    }
}

static void bench_f16_warm(uint64_t *seed)
{
    struct model_config cfg = {8, 8, 1, 64, 1};
    model_t *m32, *m;
    if (model_create(&m32, &cfg) || model_compact(&m, m32))
        exit(1);
    model_destroy(m32);
    size_t S = model_state_len(m);
    float *x = frand_array(1024 * 8, seed, -2, 2), *st = calloc(2 * S, sizeof(float));
    float *work = calloc(model_work_len(m, 1), sizeof(float)), *pred = calloc(8, 4);
    float *gates = calloc(256, sizeof(float));
    if (!st || !work || !pred || !gates)
        exit(1);
    for (size_t i = 0; i < S; i++)
        st[i] = st[S + i] = 0.1f * (float)(i % 7) - 0.3f;
    /* The dispatched kernel, then each level below it down to the portable one. */
    const int top = model__f16_isa();
    struct warm_ctx c = {m, st, st + S, work, x, pred, gates, -1}, lv[2];
    bench_fn fns[6] = {warm_step_fn, warm_device_fn, warm_gemv_fn};
    void *ctxs[6] = {&c, &c, &c};
    int n = 3;
    for (int isa = top - 1; isa >= 0; isa--) {
        lv[isa] = c;
        lv[isa].isa = isa;
        fns[n] = warm_gemv_fn;
        ctxs[n++] = &lv[isa];
    }
    struct cold_ctx *cold = calloc(1, sizeof *cold);
    if (!cold)
        exit(1);
    cold->S = S;
    cold->states = calloc(2 * S * COLD_DEVICES, sizeof(float));
    cold->work = work, cold->x = x, cold->pred = pred;
    for (int d = 0; d < COLD_DEVICES; d++) {
        struct model_config cd = cfg;
        cd.seed = 100 + (uint64_t)d;
        if (model_create(&m32, &cd) || model_compact(&cold->m[d], m32))
            exit(1);
        model_destroy(m32);
    }
    if (!cold->states)
        exit(1);
    fns[n] = cold_device_fn;
    ctxs[n++] = cold;
    const char *e = getenv("F16_WARM_SECS");
    double secs = e ? atof(e) : 0.3;
    double r[6];
    rate_multi(fns, ctxs, n, secs > 0 ? secs : 0.3, r);
    const double madds = 256.0 * 72.0;
    printf("f16_warm step_ns=%.1f device_step_ns=%.1f gemv_ns=%.1f gemv_madds_per_ns=%.2f "
           "isa=%d",
           1e9 / r[0], 1e9 / r[1], 1e9 / r[2], madds * r[2] / 1e9, top);
    static const char *const names[2] = {"portable", "avx2"};
    for (int i = 3, isa = top - 1; i < n - 1; i++, isa--)
        printf(" gemv_%s_ns=%.1f", names[isa], 1e9 / r[i]);
    printf(" cold_device_step_ns=%.1f cold_devices=%d\n", 1e9 / r[n - 1], COLD_DEVICES);
    for (int d = 0; d < COLD_DEVICES; d++)
        model_destroy(cold->m[d]);
    free(cold->states), free(cold);
    model_destroy(m);
    free(x), free(st), free(work), free(pred), free(gates);
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

/* The gate product of the batched step, gates[B, G] = xh[B, K] . w[G, K]^T, in the eight
 * layouts that compute it: the output as [B, G] or transposed, [G, B], and each operand
 * stored as the model and state keep it or transposed (xt [K, B], wt [K, G]). Layout 0 is the
 * one model_step_batch uses. */
#define N_LAYOUTS 8
static const char *const layout_names[N_LAYOUTS] = {
    "BG_xh.w^T", "BG_xh.wt", "BG_xt^T.wt", "BG_xt^T.w^T",
    "GB_w.xh^T", "GB_w.xt",  "GB_wt^T.xt", "GB_wt^T.xh^T",
};

struct gemm_ctx {
    const float *xh, *xt, *w, *wt;
    float *c;
    int B, G, K, layout;
};

static void gemm_fn(void *p, long iters)
{
    struct gemm_ctx *c = p;
    const int B = c->B, G = c->G, K = c->K;
    const CBLAS_TRANSPOSE N = CblasNoTrans, T = CblasTrans;
    const CBLAS_LAYOUT R = CblasRowMajor;
    for (long i = 0; i < iters; i++) {
        switch (c->layout) {
        case 0:
            cblas_sgemm(R, N, T, B, G, K, 1.0f, c->xh, K, c->w, K, 0.0f, c->c, G);
            break;
        case 1:
            cblas_sgemm(R, N, N, B, G, K, 1.0f, c->xh, K, c->wt, G, 0.0f, c->c, G);
            break;
        case 2:
            cblas_sgemm(R, T, N, B, G, K, 1.0f, c->xt, B, c->wt, G, 0.0f, c->c, G);
            break;
        case 3:
            cblas_sgemm(R, T, T, B, G, K, 1.0f, c->xt, B, c->w, K, 0.0f, c->c, G);
            break;
        case 4:
            cblas_sgemm(R, N, T, G, B, K, 1.0f, c->w, K, c->xh, K, 0.0f, c->c, B);
            break;
        case 5:
            cblas_sgemm(R, N, N, G, B, K, 1.0f, c->w, K, c->xt, B, 0.0f, c->c, B);
            break;
        case 6:
            cblas_sgemm(R, T, N, G, B, K, 1.0f, c->wt, G, c->xt, B, 0.0f, c->c, B);
            break;
        default:
            cblas_sgemm(R, T, T, G, B, K, 1.0f, c->wt, G, c->xh, K, 0.0f, c->c, B);
            break;
        }
    }
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
    const char *clk = getenv("BENCH_CLOCK");
    if (clk && strcmp(clk, "cpu") == 0)
        bench_clock = CLOCK_PROCESS_CPUTIME_ID;
    uint64_t seed = 1;
    printf("threads=%d clock=%s\n", threads, bench_clock == CLOCK_MONOTONIC ? "wall" : "cpu");

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
    /* 1b. the same step in float16, warm and cold. */
    if (!*only || strcmp(only, "step_b1_f16") == 0)
        bench_f16(&seed);
    /* 1c. the float16 step warm, and its mat-vec: only when asked for. */
    if (strcmp(only, "f16_warm") == 0)
        bench_f16_warm(&seed);
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
        float *xh = frand_array((size_t)B * K, &seed, -1, 1);
        float *w = frand_array((size_t)G * K, &seed, -1, 1);
        float *xt = malloc(sizeof(float) * (size_t)B * K), *wt = malloc(sizeof(float) * G * K);
        float *out = calloc((size_t)B * G, sizeof(float));
        if (!xt || !wt || !out)
            return 1;
        for (int i = 0; i < B; i++)
            for (int k = 0; k < K; k++)
                xt[(size_t)k * B + i] = xh[(size_t)i * K + k];
        for (int i = 0; i < G; i++)
            for (int k = 0; k < K; k++)
                wt[(size_t)k * G + i] = w[(size_t)i * K + k];
        struct gemm_ctx g[N_LAYOUTS];
        bench_fn fns[1 + N_LAYOUTS] = {batch_fn};
        void *ctxs[1 + N_LAYOUTS] = {&c};
        for (int l = 0; l < N_LAYOUTS; l++) {
            g[l] = (struct gemm_ctx){xh, xt, w, wt, out, B, G, K, l};
            fns[1 + l] = gemm_fn;
            ctxs[1 + l] = &g[l];
        }
        double rates[1 + N_LAYOUTS];
        rate_multi(fns, ctxs, 1 + N_LAYOUTS, 0.15, rates);
        double r = rates[0] * B, best = 0;
        int bl = 0;
        for (int l = 0; l < N_LAYOUTS; l++) {
            rates[1 + l] *= 2.0 * B * G * K;
            if (rates[1 + l] > best)
                best = rates[1 + l], bl = l;
        }
        printf("step_b256 rows_per_s=%.1f model_flops_per_s=%.4g sgemm_flops_per_s=%.4g "
               "sgemm_layout=%s sgemm_model_layout_flops_per_s=%.4g\n",
               r, r * flops_row, best, layout_names[bl], rates[1]);
        printf("step_b256_layouts");
        for (int l = 0; l < N_LAYOUTS; l++)
            printf(" %s=%.4g", layout_names[l], rates[1 + l]);
        printf("\n");
        free(xh), free(w), free(xt), free(wt), free(out);
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

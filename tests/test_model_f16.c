/* tests/test_model_f16.c: unit tests of model/'s float16 serving form (model_compact):
 * conversions, the f16 kernels, compact serving, round trips and the panel layout.
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

const struct CMUnitTest model_f16_tests[] = {
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
const size_t model_f16_count = sizeof model_f16_tests / sizeof model_f16_tests[0];

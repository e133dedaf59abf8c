/* model/lstm.c: the LSTM kernels, one function per operation and direction.
 *
 * Shapes (row-major float32): B batch rows, T steps, IN inputs of the layer, H hidden,
 * G = 4H gates in PyTorch's order i, f, g, o, K = IN + H. A layer's weights are one matrix
 * w [G, K]: columns 0..IN-1 multiply the input, IN..K-1 the previous h (see internal.h).
 * Activations are time-major [T, B, ...] so each step's rows are contiguous for sgemm.
 *
 * The elementwise cell loops use a Cephes-style expf written so the compiler vectorises it
 * (libm's expf is a scalar call and would cost more than the mat-vec of a step); its relative
 * error is a few ulp, below the 1e-5 PyTorch parity tolerance by two orders of magnitude.
 * Kernels never allocate and hold no state; any thread. */
#include <cblas.h>
#undef I /* complex.h's imaginary unit (via cblas.h); I is the input count here */
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* AVX2+FMA and AVX-512 clones picked at load time; the default clone is plain SSE2. */
#define VEC_CLONES __attribute__((target_clones("default", "arch=haswell", "arch=skylake-avx512")))
#else
#define VEC_CLONES
#endif

/* exp(x) for x in float range, |rel err| < 2e-7 (Cephes expf polynomial). */
static inline float vexp(float x)
{
    x = x > 88.3f ? 88.3f : x;
    x = x < -87.3f ? -87.3f : x;
    float fx = x * 1.44269504088896341f;
    fx = fx + (fx >= 0.0f ? 0.5f : -0.5f);
    int n = (int)fx;
    float fn = (float)n;
    float r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float z = r * r;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    int32_t bits = (n + 127) << 23;
    float p;
    memcpy(&p, &bits, sizeof p);
    return y * p;
}

static inline float vsigmoid(float x)
{
    return 1.0f / (1.0f + vexp(-x));
}

static inline float vtanh(float x)
{
    return 1.0f - 2.0f / (1.0f + vexp(2.0f * x));
}

/* Second half of the cell, kept apart so the compiler sees distinct arrays. */
static inline void cell_update(float *restrict h, float *restrict c, float *restrict tc,
                               const float *restrict act, const float *restrict c_prev, int H)
{
    for (int j = 0; j < H; j++) {
        float cn = act[H + j] * (c_prev ? c_prev[j] : 0.0f) + act[j] * act[2 * H + j];
        float t = vtanh(cn);
        c[j] = cn;
        h[j] = act[3 * H + j] * t;
        if (tc)
            tc[j] = t;
    }
}

VEC_CLONES
void lstm_cell_forward(float *act, float *h, float *c, float *tc, const float *c_prev,
                       const float *b_ih, const float *b_hh, int H)
{
    /* In place and index by index, so each loop vectorises: sigmoid for i and f, tanh for g,
     * sigmoid for o. */
    for (int j = 0; j < 2 * H; j++)
        act[j] = vsigmoid(act[j] + b_ih[j] + b_hh[j]);
    for (int j = 2 * H; j < 3 * H; j++)
        act[j] = vtanh(act[j] + b_ih[j] + b_hh[j]);
    for (int j = 3 * H; j < 4 * H; j++)
        act[j] = vsigmoid(act[j] + b_ih[j] + b_hh[j]);
    if (tc)
        cell_update(h, c, tc, act, c_prev, H);
    else
        cell_update(h, c, NULL, act, c_prev, H);
}

VEC_CLONES
void lstm_cell_backward(float *restrict dpre, float *dc, const float *restrict dh,
                        const float *restrict act, const float *restrict c_prev,
                        const float *restrict tc, int H)
{
    for (int j = 0; j < H; j++) {
        float i = act[j], f = act[H + j], g = act[2 * H + j], o = act[3 * H + j];
        float t = tc[j];
        float dct = dc[j] + dh[j] * o * (1.0f - t * t);
        float cp = c_prev ? c_prev[j] : 0.0f;
        dpre[j] = dct * g * i * (1.0f - i);
        dpre[H + j] = dct * cp * f * (1.0f - f);
        dpre[2 * H + j] = dct * i * (1.0f - g * g);
        dpre[3 * H + j] = dh[j] * t * o * (1.0f - o);
        dc[j] = dct * f;
    }
}

void lstm_forward(float *act, float *c, float *tc, float *h, const float *x, const float *w,
                  const float *b_ih, const float *b_hh, int T, int B, int IN, int H)
{
    const int G = 4 * H, K = IN + H;
    /* Input projection of all T*B rows at once (the big, efficient sgemm):
     * act[TB, G] = x[TB, IN] . w[:, 0:IN]^T; lda = IN, ldb = K (the input columns of w), ldc = G.
     */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T * B, G, IN, 1.0f, x, IN, w, K, 0.0f, act,
                G);
    for (int t = 0; t < T; t++) {
        float *a = act + (size_t)t * B * G;
        if (t > 0) {
            /* Recurrence: act_t[B, G] += h_{t-1}[B, H] . w[:, IN:K]^T; lda = H, ldb = K,
             * ldc = G. At t = 0 the state is zero and the term vanishes. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, G, H, 1.0f,
                        h + (size_t)(t - 1) * B * H, H, w + IN, K, 1.0f, a, G);
        }
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)t * B + b;
            const float *cp = t > 0 ? c + (r - B) * H : NULL;
            lstm_cell_forward(a + (size_t)b * G, h + r * H, c + r * H, tc + r * H, cp, b_ih, b_hh,
                              H);
        }
    }
}

void lstm_backward(float *dx, float *dw, float *db_ih, float *db_hh, float *dh, float *dpre,
                   float *dc, float *dhn, const float *x, const float *act, const float *c,
                   const float *tc, const float *h, const float *w, int T, int B, int IN, int H)
{
    const int G = 4 * H, K = IN + H;
    memset(dc, 0, sizeof(float) * (size_t)B * H);
    for (int t = T - 1; t >= 0; t--) {
        float *dht = dh + (size_t)t * B * H;
        float *dp = dpre + (size_t)t * B * G;
        if (t < T - 1)
            cblas_saxpy(B * H, 1.0f, dhn, 1, dht, 1);
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)t * B + b;
            const float *cp = t > 0 ? c + (r - B) * H : NULL;
            lstm_cell_backward(dp + (size_t)b * G, dc + (size_t)b * H, dht + (size_t)b * H,
                               act + r * G, cp, tc + r * H, H);
        }
        if (t > 0) {
            /* dL/dh_{t-1} through the recurrence: dhn[B, H] = dpre_t[B, G] . w[:, IN:K];
             * lda = G, ldb = K, ldc = H. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, G, 1.0f, dp, G, w + IN, K,
                        0.0f, dhn, H);
        }
    }
    const int TB = T * B;
    /* dw[:, 0:IN] += dpre[TB, G]^T . x[TB, IN]; lda = G, ldb = IN, ldc = K. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, IN, TB, 1.0f, dpre, G, x, IN, 1.0f, dw,
                K);
    if (T > 1) {
        /* dw[:, IN:K] += dpre[B..TB, G]^T . h[0..TB-B, H] (step t pairs with h_{t-1});
         * lda = G, ldb = H, ldc = K. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, H, TB - B, 1.0f,
                    dpre + (size_t)B * G, G, h, H, 1.0f, dw + IN, K);
    }
    for (int r = 0; r < TB; r++) {
        const float *dp = dpre + (size_t)r * G;
        for (int j = 0; j < G; j++) {
            db_ih[j] += dp[j];
            db_hh[j] += dp[j];
        }
    }
    if (dx) {
        /* dx[TB, IN] = dpre[TB, G] . w[:, 0:IN]; lda = G, ldb = K, ldc = IN. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, TB, IN, G, 1.0f, dpre, G, w, K, 0.0f,
                    dx, IN);
    }
}

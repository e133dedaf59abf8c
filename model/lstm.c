/* model/lstm.c: the LSTM kernels, one function per operation and direction.
 *
 * Shapes (row-major float32): B batch rows, T steps, IN inputs of the layer, H hidden,
 * G = 4H gates in PyTorch's order i, f, g, o, K = IN + H. A layer's weights are one matrix
 * w [G, K]: columns 0..IN-1 multiply the input, IN..K-1 the previous h (see internal.h).
 * Activations are time-major [T, B, ...] so each step's rows are contiguous for sgemm.
 *
 * The elementwise cell uses a Cephes-style expf on VL-lane vectors (libm's expf is a scalar
 * call and would cost more than the mat-vec of a step); its relative error is a few ulp,
 * below the 1e-5 PyTorch parity tolerance by two orders of magnitude.
 * Kernels never allocate and hold no state; any thread. */
#include <cblas.h>
#undef I /* complex.h's imaginary unit (via cblas.h); I is the input count here */
#include <string.h>

#include "internal.h"

/* Fused multiply-add for this file's vector maths: the project builds with -std=c11, where GCC
 * contracts nothing, and separate multiplies and adds made the cell a quarter slower on AVX2
 * and AVX-512 (docs/benchmarks.md). A fused a * b + c rounds once instead of twice, so the
 * results are as accurate or more (not -ffast-math: no reassociation, no finiteness
 * assumptions). The plain SSE2 clone has no FMA instruction and is unchanged. */
#if defined(__clang__)
#pragma clang fp contract(fast)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=fast")
#endif

/* ThreadSanitizer's runtime is not ready when ifunc resolvers of target_clones run at load
 * time (vigild crashed before main), so ThreadSanitizer builds take the plain version. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
/* x86-64-v3 (AVX2, FMA) and x86-64-v4 (AVX-512) clones picked at load time by CPU features;
 * the default clone is plain SSE2. ("arch=haswell" would test for that CPU model and miss
 * every AMD part.) */
#define VEC_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define VEC_CLONES
#endif

/* Lanes per vector: 16 floats, one AVX-512 register (two AVX2 ones, four SSE ones). */
#define VL 16

/* VL floats as one GCC/Clang vector value: the activations are written with these so the
 * compiler emits vector code whatever its if-conversion heuristics (GCC would not vectorise
 * the clamps of a scalar loop for AVX targets). Loads and stores go through memcpy because
 * the arrays are only float-aligned. */
typedef float vf __attribute__((vector_size(4 * VL)));
/* Always inlined, so vf never crosses a call boundary (the default clone has no AVX
 * registers; model/CMakeLists.txt silences GCC's -Wpsabi note about that ABI). */
#define VINLINE static inline __attribute__((always_inline))
typedef int32_t vi __attribute__((vector_size(4 * VL)));

VINLINE vf vld(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

VINLINE void vst(float *p, vf v)
{
    memcpy(p, &v, sizeof v);
}

VINLINE vf vsplat(float x)
{
    return x - (vf){0}; /* scalar - vector broadcasts */
}

VINLINE vf vselect(vi mask, vf a, vf b)
{
    return (vf)(((vi)a & mask) | ((vi)b & ~mask));
}

/* exp(x), |rel err| < 2e-7 (Cephes expf polynomial), for VL lanes. Inputs are clamped to
 * [-87.3, 88.3], so the result stays a normal float; round-to-nearest of x / ln 2 uses the
 * 1.5 * 2^23 trick (exact for |x / ln 2| < 2^22). */
VINLINE vf vexp(vf x)
{
    x = vselect(x > vsplat(88.3f), vsplat(88.3f), x);
    x = vselect(x < vsplat(-87.3f), vsplat(-87.3f), x);
    vf fn = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    vi n = __builtin_convertvector(fn, vi);
    vf r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    vf z = r * r;
    vf y = vsplat(1.9875691500e-4f);
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    vi bits = (n + 127) << 23;
    return y * (vf)bits;
}

VINLINE vf vsigmoid(vf x)
{
    return 1.0f / (1.0f + vexp(-x));
}

VINLINE vf vtanh(vf x)
{
    return 1.0f - 2.0f / (1.0f + vexp(2.0f * x));
}

/* The same functions one float at a time (through lane 0), for the tails, so every element
 * gets bit-identical maths whatever its position. */
VINLINE float vsigmoid1(float x)
{
    return vsigmoid(vsplat(x))[0];
}

VINLINE float vtanh1(float x)
{
    return vtanh(vsplat(x))[0];
}

/* act[j] = sigmoid (or tanh) of act[j] + b_ih[j] + b_hh[j] for j in [j0, j1) (of act[j] alone
 * when b_ih is NULL: the float16 step adds the biases in its mat-vec). */
VINLINE void act_range(float *act, const float *b_ih, const float *b_hh, int j0, int j1,
                       int is_tanh)
{
    int j = j0;
    for (; j + VL <= j1; j += VL) {
        vf v = vld(act + j);
        if (b_ih)
            v = v + vld(b_ih + j) + vld(b_hh + j);
        vst(act + j, is_tanh ? vtanh(v) : vsigmoid(v));
    }
    for (; j < j1; j++) {
        float v = act[j];
        if (b_ih)
            v = v + b_ih[j] + b_hh[j];
        act[j] = is_tanh ? vtanh1(v) : vsigmoid1(v);
    }
}

VEC_CLONES
void lstm_cell_forward(float *act, float *h, float *c, float *tc, const float *c_prev,
                       const float *b_ih, const float *b_hh, int H)
{
    /* Gates in place: sigmoid for i and f, tanh for g, sigmoid for o. */
    act_range(act, b_ih, b_hh, 0, 2 * H, 0);
    act_range(act, b_ih, b_hh, 2 * H, 3 * H, 1);
    act_range(act, b_ih, b_hh, 3 * H, 4 * H, 0);
    /* c = f * c_prev + i * g, h = o * tanh(c). */
    int j = 0;
    for (; j + VL <= H; j += VL) {
        vf cn = vld(act + j) * vld(act + 2 * H + j);
        if (c_prev)
            cn = vld(act + H + j) * vld(c_prev + j) + cn;
        vf t = vtanh(cn);
        vst(c + j, cn);
        vst(h + j, vld(act + 3 * H + j) * t);
        if (tc)
            vst(tc + j, t);
    }
    for (; j < H; j++) {
        float cn = act[j] * act[2 * H + j];
        if (c_prev)
            cn = act[H + j] * c_prev[j] + cn;
        float t = vtanh1(cn);
        c[j] = cn;
        h[j] = act[3 * H + j] * t;
        if (tc)
            tc[j] = t;
    }
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

void lstm_forward(float *act, float *c, float *tc, float *h, float *wt, const float *x,
                  const float *w, const float *b_ih, const float *b_hh, int T, int B, int IN, int H)
{
    const int G = 4 * H, K = IN + H;
    /* Input projection of all T*B rows at once (the big, efficient sgemm):
     * act[TB, G] = x[TB, IN] . w[:, 0:IN]^T; lda = IN, ldb = K (the input columns of w), ldc = G.
     */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T * B, G, IN, 1.0f, x, IN, w, K, 0.0f, act,
                G);
    /* wt[H, G] = w[:, IN:K]^T, once, so each step's recurrent product is a plain NN sgemm
     * (OpenBLAS takes its small-matrix path for that and repacks nothing). */
    for (int g = 0; g < G; g++)
        for (int i = 0; i < H; i++)
            wt[(size_t)i * G + g] = w[(size_t)g * K + IN + i];
    for (int t = 0; t < T; t++) {
        float *a = act + (size_t)t * B * G;
        if (t > 0) {
            /* Recurrence: act_t[B, G] += h_{t-1}[B, H] . wt[H, G]; lda = H, ldb = G, ldc = G.
             * At t = 0 the state is zero and the term vanishes. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, G, H, 1.0f,
                        h + (size_t)(t - 1) * B * H, H, wt, G, 1.0f, a, G);
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

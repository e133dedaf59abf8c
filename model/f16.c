/* model/f16.c: the float16 serving form of a model (model_compact) and its mat-vec kernels.
 *
 * A compact model holds its parameters as IEEE binary16 bits and its standardisation in
 * float32: half the memory of the weights, and half the bytes a step reads. The step widens
 * each weight to float32 as it multiplies and accumulates in float32, so the only difference
 * from the float32 step on the same (rounded) weights is the order of the sums. Every float16
 * value is exactly a float32, so widening and rounding back (float16 -> float32 -> float16)
 * gives the same bits: a compact model survives a checkpoint, a clone or an export and
 * re-compaction unchanged.
 *
 * Layout invariant: params16 holds the parameters of internal.h's layout with one change, the
 * LSTM gate matrices W_l [G, K] are stored in panels (model__f16_panel_pos): each group of
 * MODEL_F16_PANEL (64) consecutive rows is one block [K][64], so the halves of a panel's 64 rows
 * at one column k are contiguous (128 bytes); rows past the last whole panel (G % 64 of them,
 * when H is not a multiple of 16) stay row-major after the panels. Every other tensor (biases,
 * head) is stored as in the float32 layout. The panels are written in place as the model is
 * built (model_compact, model_checkpoint_load); whatever reads the parameters in canonical
 * order goes through model__f16_index (checkpoints, widening for clone and safetensors export,
 * the fingerprint), so checkpoint bytes, exports and fingerprints do not depend on the
 * in-memory layout. No second copy of the weights exists.
 *
 * Why panels (docs/benchmarks.md, "The float16 step's mat-vec (session 8)"): with rows stored
 * row-major the mat-vec ended every group of 4 rows with horizontal reductions and scalar bias
 * conversions, two thirds of the kernel's time warm in cache (perf annotate). In a panel, each
 * 8 halves loaded and widened feed one FMA of 8 different rows with x[k] broadcast: no
 * reductions, biases added as vectors, 8 independent accumulators. And the whole panel is read
 * as one sequential stream: with 16-row panels and four of them in flight (four streams 2 KB
 * apart) a device step was as fast warm but took 12 % more time than with the row-major kernel
 * when the weights come from memory, as at fleet scale; with 64-row panels it takes 37 % less.
 *
 * The kernels have two versions: AVX2 with F16C and FMA, and a portable one (software
 * widening, which compilers vectorise), picked at run time by model__f16_isa, which asks the
 * CPU once. An AVX-512 panel kernel (one 16-lane accumulator per 16 rows) was measured slower
 * on this Zen 4 (660 ns against 488 ns for the 256 x 72 mat-vec, warm) and is not kept;
 * software prefetching ahead in the panel did not help either. Conversions to float16 are in
 * software (round to nearest, ties to even), so a compaction gives the same bits on every
 * machine.
 *
 * Kernels never allocate and hold no state; any thread. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "err.h"
#include "internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define F16_X86 1
#else
#define F16_X86 0
#endif

/* ---- conversions --------------------------------------------------------------------------- */

uint16_t model__f32_to_f16(float x)
{
    /* F. Giesen's float_to_half_fast3_rtne: the exponent is rebiased in the integer bits with
     * the rounding folded into the add; results below float16's smallest normal are rounded by
     * a float addition that puts them into the low mantissa bits (round to nearest even in
     * hardware). */
    uint32_t f;
    memcpy(&f, &x, 4);
    const uint32_t sign = f & 0x80000000u;
    f ^= sign;
    uint16_t o;
    if (f >= (127u + 16u) << 23) { /* 65536 and up, infinity, NaN */
        o = f > 0x7f800000u ? 0x7e00 : 0x7c00;
    } else if (f < 113u << 23) {                /* below 2^-14: a subnormal float16 or zero */
        const uint32_t magic_bits = 126u << 23; /* 0.5f: its ulp is float16's smallest step */
        float fm, magic;
        memcpy(&fm, &f, 4);
        memcpy(&magic, &magic_bits, 4);
        fm += magic;
        memcpy(&f, &fm, 4);
        o = (uint16_t)(f - magic_bits);
    } else {
        const uint32_t odd = (f >> 13) & 1u;
        f += ((uint32_t)(15 - 127) << 23) + 0xfffu + odd;
        o = (uint16_t)(f >> 13);
    }
    return (uint16_t)(o | (sign >> 16));
}

float model__f16_to_f32(uint16_t h)
{
    /* F. Giesen's half_to_float, its two branches turned into masks so that loops over it
     * vectorise (the portable kernels): the exponent and mantissa shifted into place and
     * rebiased; an infinity or NaN (exponent 31) rebiased once more, to exponent 255; a zero or
     * subnormal (exponent 0) given exponent 113, and then 2^-14 subtracted, which leaves
     * m * 2^-24 exactly (a normal float32: no denormal arithmetic, so flush-to-zero modes do not
     * matter; the subtraction's result is used only for exponent 0). */
    const uint32_t shifted_exp = 0x7c00u << 13;
    uint32_t u = ((uint32_t)h & 0x7fffu) << 13;
    const uint32_t e = u & shifted_exp;
    const uint32_t inf_nan = 0u - (uint32_t)(e == shifted_exp), small = 0u - (uint32_t)(e == 0);
    u += ((127u - 15u) << 23) + (inf_nan & ((128u - 16u) << 23)) + (small & (1u << 23));
    float f;
    uint32_t v;
    memcpy(&f, &u, 4);
    f -= 0x1p-14f;
    memcpy(&v, &f, 4);
    u = ((u & ~small) | (v & small)) | (((uint32_t)h & 0x8000u) << 16);
    memcpy(&f, &u, 4);
    return f;
}

/* ---- layout -------------------------------------------------------------------------------- */

size_t model__f16_panel_pos(int M, int K, int r, int k)
{
    const int P = MODEL_F16_PANEL;
    if (r < M / P * P)
        return (size_t)(r / P) * P * (size_t)K + (size_t)k * P + (size_t)(r % P);
    return (size_t)r * (size_t)K + (size_t)k;
}

size_t model__f16_index(const model_t *m, size_t i)
{
    const size_t G = 4 * (size_t)m->cfg.n_hidden;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const size_t off = (size_t)(m->p16.w[l] - m->params16), K = (size_t)m->k[l];
        if (i >= off && i < off + G * K) {
            const size_t r = (i - off) / K, k = (i - off) % K;
            return off + model__f16_panel_pos((int)G, (int)K, (int)r, (int)k);
        }
    }
    return i;
}

/* ---- kernels ------------------------------------------------------------------------------- */

/* The plain-loop references: products summed in order, then the biases. They share no code
 * with the kernels they check (the biases written out, the widening the same exact function).
 * panels: w in panels (model__f16_panel_pos), else row-major. */
static void gemv_f16_naive(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                           const uint16_t *b2, int M, int K, int panels)
{
    for (int j = 0; j < M; j++) {
        float s = 0.0f;
        for (int k = 0; k < K; k++) {
            size_t at = panels ? model__f16_panel_pos(M, K, j, k) : (size_t)j * K + k;
            s += model__f16_to_f32(w[at]) * x[k];
        }
        float b = b1 ? model__f16_to_f32(b1[j]) : 0.0f, c = b2 ? model__f16_to_f32(b2[j]) : 0.0f;
        y[j] = s + b + c;
    }
}

void model__gemv_f16_naive(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                           const uint16_t *b2, int M, int K)
{
    gemv_f16_naive(y, w, x, b1, b2, M, K, 0);
}

void model__gemv_f16_panel_naive(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                                 const uint16_t *b2, int M, int K)
{
    gemv_f16_naive(y, w, x, b1, b2, M, K, 1);
}

static float bias_sum(float dot, const uint16_t *b1, const uint16_t *b2, int j)
{
    if (b1)
        dot += model__f16_to_f32(b1[j]);
    if (b2)
        dot += model__f16_to_f32(b2[j]);
    return dot;
}

/* Row-major w [M, K], portable: four partial sums per row break the add chain's latency. */
static void gemv_f16_rows_portable(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                                   const uint16_t *b2, int M, int K)
{
    for (int j = 0; j < M; j++) {
        const uint16_t *r = w + (size_t)j * K;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        int k = 0;
        for (; k + 4 <= K; k += 4) {
            s0 += model__f16_to_f32(r[k]) * x[k];
            s1 += model__f16_to_f32(r[k + 1]) * x[k + 1];
            s2 += model__f16_to_f32(r[k + 2]) * x[k + 2];
            s3 += model__f16_to_f32(r[k + 3]) * x[k + 3];
        }
        for (; k < K; k++)
            s0 += model__f16_to_f32(r[k]) * x[k];
        y[j] = bias_sum((s0 + s1) + (s2 + s3), b1, b2, j);
    }
}

/* Panels, portable: one panel's 64 sums at a time, each column's 64 halves widened and
 * multiplied by the one x[k] (a loop compilers vectorise: the widening has no branches). */
static void gemv_f16_panel_portable(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                                    const uint16_t *b2, int M, int K)
{
    enum { P = MODEL_F16_PANEL };
    const int np = M / P;
    for (int p = 0; p < np; p++) {
        const uint16_t *wp = w + (size_t)p * P * K;
        float acc[P] = {0};
        for (int k = 0; k < K; k++) {
            const float xk = x[k];
            for (int i = 0; i < P; i++)
                acc[i] += model__f16_to_f32(wp[(size_t)k * P + i]) * xk;
        }
        for (int i = 0; i < P; i++)
            y[p * P + i] = bias_sum(acc[i], b1, b2, p * P + i);
    }
    if (np * P < M) /* the rows after the panels are row-major */
        gemv_f16_rows_portable(y + np * P, w + (size_t)np * P * K, x, b1 ? b1 + np * P : NULL,
                               b2 ? b2 + np * P : NULL, M - np * P, K);
}

#if F16_X86
#define AVX2_FNS __attribute__((target("avx2,fma,f16c")))

/* a + b1[j..] + b2[j..], 8 (bias8) or 4 (bias4) lanes: the float16 biases widened and added
 * in that order, as bias_sum does (either NULL: not added). */
AVX2_FNS static inline __m256 bias8(const uint16_t *b1, const uint16_t *b2, int j, __m256 a)
{
    if (b1)
        a = _mm256_add_ps(a, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b1 + j))));
    if (b2)
        a = _mm256_add_ps(a, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b2 + j))));
    return a;
}

AVX2_FNS static inline __m128 bias4(const uint16_t *b1, const uint16_t *b2, int j, __m128 a)
{
    if (b1)
        a = _mm_add_ps(a, _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(b1 + j))));
    if (b2)
        a = _mm_add_ps(a, _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(b2 + j))));
    return a;
}

/* Row-major w [M, K], four rows at a time: per row one 8-lane accumulator, fed by 8 halves
 * widened by vcvtph2ps and one FMA; the four accumulators are reduced together with two
 * horizontal adds. Used for the head (O rows) and for the rows after a matrix's panels. */
AVX2_FNS static void gemv_f16_rows_avx2(float *y, const uint16_t *w, const float *x,
                                        const uint16_t *b1, const uint16_t *b2, int M, int K)
{
    int j = 0;
    for (; j + 4 <= M; j += 4) {
        const uint16_t *r0 = w + (size_t)j * K, *r1 = r0 + K, *r2 = r1 + K, *r3 = r2 + K;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int k = 0;
        for (; k + 8 <= K; k += 8) {
            __m256 xv = _mm256_loadu_ps(x + k);
            a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r0 + k))), xv,
                                 a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r1 + k))), xv,
                                 a1);
            a2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r2 + k))), xv,
                                 a2);
            a3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r3 + k))), xv,
                                 a3);
        }
        /* hadd(hadd(a0, a1), hadd(a2, a3)) holds each row's sums of lanes 0-3 in the low half
         * and of lanes 4-7 in the high half, rows in order. */
        __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
        __m128 r = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        if (k < K) {
            float out[4];
            _mm_storeu_ps(out, r);
            for (; k < K; k++) {
                out[0] += _cvtsh_ss(r0[k]) * x[k];
                out[1] += _cvtsh_ss(r1[k]) * x[k];
                out[2] += _cvtsh_ss(r2[k]) * x[k];
                out[3] += _cvtsh_ss(r3[k]) * x[k];
            }
            r = _mm_loadu_ps(out);
        }
        _mm_storeu_ps(y + j, bias4(b1, b2, j, r));
    }
    if (j < M)
        gemv_f16_rows_portable(y + j, w + (size_t)j * K, x, b1 ? b1 + j : NULL, b2 ? b2 + j : NULL,
                               M - j, K);
}

/* Panels, AVX2: a panel's MODEL_F16_PANEL rows in MODEL_F16_PANEL / 8 accumulators of 8
 * lanes, enough independent FMA chains to cover the FMA latency; at each column k, the
 * panel's halves (contiguous: the weights are read as one sequential stream) widened 8 at a
 * time and multiplied by x[k] broadcast. Each sum runs over k in order, one FMA per product.
 * Then the row-major rest. */
AVX2_FNS static void gemv_f16_panel_avx2(float *y, const uint16_t *w, const float *x,
                                         const uint16_t *b1, const uint16_t *b2, int M, int K)
{
    enum { P = MODEL_F16_PANEL, V = MODEL_F16_PANEL / 8 };
    const int np = M / P;
    for (int p = 0; p < np; p++) {
        const uint16_t *wp = w + (size_t)p * P * K;
        __m256 a[V];
        for (int v = 0; v < V; v++)
            a[v] = _mm256_setzero_ps();
        for (int k = 0; k < K; k++) {
            const __m256 xk = _mm256_broadcast_ss(x + k);
            const uint16_t *col = wp + (size_t)k * P;
            for (int v = 0; v < V; v++)
                a[v] = _mm256_fmadd_ps(
                    _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(col + 8 * v))), xk, a[v]);
        }
        for (int v = 0; v < V; v++)
            _mm256_storeu_ps(y + p * P + 8 * v, bias8(b1, b2, p * P + 8 * v, a[v]));
    }
    if (np * P < M)
        gemv_f16_rows_avx2(y + np * P, w + (size_t)np * P * K, x, b1 ? b1 + np * P : NULL,
                           b2 ? b2 + np * P : NULL, M - np * P, K);
}

#endif

int model__f16_isa(void)
{
#if F16_X86
    /* AVX2 and FMA through the compiler's CPU model (which also checks that the OS saves the
     * YMM registers); F16C from CPUID leaf 1, ECX bit 29 (clang's
     * __builtin_cpu_supports does not know "f16c"). Asked once: in a virtual machine CPUID
     * traps to the hypervisor, and asking on every mat-vec cost about seven times the mat-vec
     * itself (docs/benchmarks.md, "An LSTM step for every reading"). The answer is a property
     * of the machine, so the one cache is no mutable state in the module's sense: -1 not yet
     * asked, else the level; threads that race on the first call compute and store the same
     * value. */
    static _Atomic int known = -1;
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k < 0) {
        unsigned a, b, c, d;
        __builtin_cpu_init();
        k = MODEL_F16_PORTABLE;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
            __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0)
            k = MODEL_F16_AVX2;
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k;
#else
    return MODEL_F16_PORTABLE;
#endif
}

int model__f16c_available(void)
{
    return model__f16_isa() >= MODEL_F16_AVX2;
}

void model__gemv_f16_at(int isa, float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                        const uint16_t *b2, int M, int K)
{
#if F16_X86
    if (isa >= MODEL_F16_AVX2) {
        gemv_f16_rows_avx2(y, w, x, b1, b2, M, K);
        return;
    }
#endif
    gemv_f16_rows_portable(y, w, x, b1, b2, M, K);
}

void model__gemv_f16_panel_at(int isa, float *y, const uint16_t *w, const float *x,
                              const uint16_t *b1, const uint16_t *b2, int M, int K)
{
#if F16_X86
    if (isa >= MODEL_F16_AVX2) {
        gemv_f16_panel_avx2(y, w, x, b1, b2, M, K);
        return;
    }
#endif
    gemv_f16_panel_portable(y, w, x, b1, b2, M, K);
}

void model__gemv_f16(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                     const uint16_t *b2, int M, int K)
{
    model__gemv_f16_at(model__f16_isa(), y, w, x, b1, b2, M, K);
}

void model__gemv_f16_panel(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                           const uint16_t *b2, int M, int K)
{
    model__gemv_f16_panel_at(model__f16_isa(), y, w, x, b1, b2, M, K);
}

/* ---- the compact model --------------------------------------------------------------------- */

int model_compact(model_t **out, const model_t *m)
{
    model_t *c = model__alloc(&m->cfg, 1);
    if (!c)
        return ERR_NOMEM;
    const size_t I = (size_t)m->cfg.n_inputs;
    memcpy(c->mean, m->mean, sizeof(float) * I);
    memcpy(c->scale, m->scale, sizeof(float) * I);
    if (m->compact) {
        memcpy(c->params16, m->params16, sizeof(uint16_t) * m->n_params); /* same layout */
    } else {
        /* Each half goes straight to its place in the panel layout (the header). */
        for (size_t i = 0; i < m->n_params; i++) {
            uint16_t h = model__f32_to_f16(m->params[i]);
            if ((h & 0x7c00u) == 0x7c00u) { /* beyond float16's range (or not finite) */
                model_destroy(c);
                return ERR_RANGE;
            }
            c->params16[model__f16_index(c, i)] = h;
        }
    }
    *out = c;
    return 0;
}

int model_is_compact(const model_t *m)
{
    return m->compact;
}

void model__widen(float *dst, const model_t *m)
{
    const size_t I = (size_t)m->cfg.n_inputs;
    memcpy(dst, m->mean, sizeof(float) * I);
    memcpy(dst + I, m->scale, sizeof(float) * I);
    if (!m->compact) {
        memcpy(dst + 2 * I, m->params, sizeof(float) * m->n_params);
        return;
    }
    for (size_t i = 0; i < m->n_params; i++) /* canonical order from the panel layout */
        dst[2 * I + i] = model__f16_to_f32(m->params16[model__f16_index(m, i)]);
}

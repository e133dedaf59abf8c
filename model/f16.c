/* model/f16.c: the float16 serving form of a model (model_compact) and its mat-vec kernel.
 *
 * A compact model holds its parameters as IEEE binary16 bits, in the float32 model's layout
 * (internal.h), and its standardisation in float32: half the memory of the weights, and half
 * the bytes a step reads. The step widens each weight to float32 as it multiplies and
 * accumulates in float32, so the only difference from the float32 step on the same (rounded)
 * weights is the order of the sums. Every float16 value is exactly a float32, so widening and
 * rounding back (float16 -> float32 -> float16) gives the same bits: a compact model survives
 * a checkpoint, a clone or an export and re-compaction unchanged.
 *
 * The kernel has two versions: one for x86-64 CPUs with F16C, AVX2 and FMA (the hardware
 * converts 8 halves per instruction), picked at run time with __builtin_cpu_supports, and a
 * portable one (software conversion). Conversions to float16 are in software (round to nearest,
 * ties to even), so a compaction gives the same bits on every machine.
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
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t bits;
    if (e == 0) {
        float v = (float)m * 0x1p-24f; /* zero or subnormal: m * 2^-24, exact */
        return sign ? -v : v;
    }
    if (e == 31)
        bits = sign | 0x7f800000u | (m << 13);
    else
        bits = sign | ((e + 112u) << 23) | (m << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* ---- kernels ------------------------------------------------------------------------------- */

static float bias_sum(float dot, const uint16_t *b1, const uint16_t *b2, int j)
{
    if (b1)
        dot += model__f16_to_f32(b1[j]);
    if (b2)
        dot += model__f16_to_f32(b2[j]);
    return dot;
}

void model__gemv_f16_naive(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                           const uint16_t *b2, int M, int K)
{
    for (int j = 0; j < M; j++) {
        float s = 0.0f;
        for (int k = 0; k < K; k++)
            s += model__f16_to_f32(w[(size_t)j * K + k]) * x[k];
        /* The biases written out, not through bias_sum: a reference shares no code with the
         * kernels it checks. */
        float b = b1 ? model__f16_to_f32(b1[j]) : 0.0f, c = b2 ? model__f16_to_f32(b2[j]) : 0.0f;
        y[j] = s + b + c;
    }
}

void model__gemv_f16_portable(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                              const uint16_t *b2, int M, int K)
{
    /* Four partial sums per row break the add chain's latency; the compiler vectorises none
     * of this (the conversion branches), which is why the F16C kernel exists. */
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

#if F16_X86
/* Four rows at a time: per row one 8-lane accumulator, fed by 8 halves widened by vcvtph2ps and
 * one FMA; the four accumulators are reduced together with two horizontal adds. */
__attribute__((target("avx2,fma,f16c"))) static void gemv_f16c(float *y, const uint16_t *w,
                                                               const float *x, const uint16_t *b1,
                                                               const uint16_t *b2, int M, int K)
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
        float out[4];
        _mm_storeu_ps(out, r);
        for (; k < K; k++) {
            out[0] += _cvtsh_ss(r0[k]) * x[k];
            out[1] += _cvtsh_ss(r1[k]) * x[k];
            out[2] += _cvtsh_ss(r2[k]) * x[k];
            out[3] += _cvtsh_ss(r3[k]) * x[k];
        }
        for (int i = 0; i < 4; i++)
            y[j + i] = bias_sum(out[i], b1, b2, j + i);
    }
    if (j < M)
        model__gemv_f16_portable(y + j, w + (size_t)j * K, x, b1 ? b1 + j : NULL,
                                 b2 ? b2 + j : NULL, M - j, K);
}
#endif

int model__f16c_available(void)
{
#if F16_X86
    /* AVX2 and FMA through the compiler's CPU model (which also checks that the OS saves the
     * YMM registers); F16C from CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports does
     * not know "f16c"). Asked once: in a virtual machine CPUID traps to the hypervisor, and
     * asking on every mat-vec cost about seven times the mat-vec itself (docs/benchmarks.md,
     * "An LSTM step for every reading"). The answer is a property of the machine, so the one
     * cache is no mutable state in the module's sense: 0 not yet asked, 1 no, 2 yes; threads
     * that race on the first call compute and store the same value. */
    static _Atomic int known;
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k == 0) {
        unsigned a, b, c, d;
        __builtin_cpu_init();
        k = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0
                ? 2
                : 1;
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k == 2;
#else
    return 0;
#endif
}

void model__gemv_f16(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                     const uint16_t *b2, int M, int K)
{
#if F16_X86
    if (model__f16c_available()) {
        gemv_f16c(y, w, x, b1, b2, M, K);
        return;
    }
#endif
    model__gemv_f16_portable(y, w, x, b1, b2, M, K);
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
        memcpy(c->params16, m->params16, sizeof(uint16_t) * m->n_params);
    } else {
        for (size_t i = 0; i < m->n_params; i++) {
            uint16_t h = model__f32_to_f16(m->params[i]);
            if ((h & 0x7c00u) == 0x7c00u) { /* beyond float16's range (or not finite) */
                model_destroy(c);
                return ERR_RANGE;
            }
            c->params16[i] = h;
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
    for (size_t i = 0; i < m->n_params; i++)
        dst[2 * I + i] = model__f16_to_f32(m->params16[i]);
}

/* model/ref.c: plain-loop references of the BLAS-backed kernels (no BLAS, no vector maths,
 * libm's expf and tanhf). They share the contracts in internal.h and exist so the tests can
 * check the fast kernels against code simple enough to read at a glance; they are not used
 * on any serving or training path. Any thread. */
#include <math.h>
#include <string.h>

#include "internal.h"

static float sigm(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

void lstm_forward_naive(float *act, float *c, float *tc, float *h, const float *x, const float *w,
                        const float *b_ih, const float *b_hh, int T, int B, int IN, int H)
{
    const int G = 4 * H, K = IN + H;
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)t * B + b;
            const float *xr = x + r * IN;
            const float *hp = t > 0 ? h + (r - B) * H : NULL;
            const float *cp = t > 0 ? c + (r - B) * H : NULL;
            float *a = act + r * G;
            for (int g = 0; g < G; g++) {
                float s = b_ih[g] + b_hh[g];
                for (int i = 0; i < IN; i++)
                    s += w[(size_t)g * K + i] * xr[i];
                for (int i = 0; hp && i < H; i++)
                    s += w[(size_t)g * K + IN + i] * hp[i];
                a[g] = s;
            }
            for (int j = 0; j < H; j++) {
                float ig = sigm(a[j]), fg = sigm(a[H + j]);
                float gg = tanhf(a[2 * H + j]), og = sigm(a[3 * H + j]);
                a[j] = ig;
                a[H + j] = fg;
                a[2 * H + j] = gg;
                a[3 * H + j] = og;
                float cn = fg * (cp ? cp[j] : 0.0f) + ig * gg;
                c[r * H + j] = cn;
                tc[r * H + j] = tanhf(cn);
                h[r * H + j] = og * tanhf(cn);
            }
        }
    }
}

void lstm_backward_naive(float *dx, float *dw, float *db_ih, float *db_hh, float *dh, float *dpre,
                         float *dc, float *dhn, const float *x, const float *act, const float *c,
                         const float *tc, const float *h, const float *w, int T, int B, int IN,
                         int H)
{
    const int G = 4 * H, K = IN + H;
    memset(dc, 0, sizeof(float) * (size_t)B * H);
    memset(dhn, 0, sizeof(float) * (size_t)B * H);
    for (int t = T - 1; t >= 0; t--) {
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)t * B + b;
            const float *a = act + r * G;
            float *dp = dpre + r * G;
            for (int j = 0; j < H; j++) {
                float dhj = dh[r * H + j] + dhn[(size_t)b * H + j];
                float ig = a[j], fg = a[H + j], gg = a[2 * H + j], og = a[3 * H + j];
                float t1 = tc[r * H + j];
                float cp = t > 0 ? c[(r - B) * H + j] : 0.0f;
                float dct = dc[(size_t)b * H + j] + dhj * og * (1.0f - t1 * t1);
                dp[j] = dct * gg * ig * (1.0f - ig);
                dp[H + j] = dct * cp * fg * (1.0f - fg);
                dp[2 * H + j] = dct * ig * (1.0f - gg * gg);
                dp[3 * H + j] = dhj * t1 * og * (1.0f - og);
                dc[(size_t)b * H + j] = dct * fg;
            }
        }
        /* Gradient flowing to h_{t-1}, for the next iteration. */
        for (int b = 0; b < B; b++) {
            const float *dp = dpre + ((size_t)t * B + b) * G;
            for (int i = 0; i < H; i++) {
                float s = 0.0f;
                for (int g = 0; g < G; g++)
                    s += dp[g] * w[(size_t)g * K + IN + i];
                dhn[(size_t)b * H + i] = s;
            }
        }
    }
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)t * B + b;
            const float *dp = dpre + r * G;
            for (int g = 0; g < G; g++) {
                for (int i = 0; i < IN; i++)
                    dw[(size_t)g * K + i] += dp[g] * x[r * IN + i];
                for (int i = 0; t > 0 && i < H; i++)
                    dw[(size_t)g * K + IN + i] += dp[g] * h[(r - B) * H + i];
                db_ih[g] += dp[g];
                db_hh[g] += dp[g];
            }
            for (int i = 0; dx && i < IN; i++) {
                float s = 0.0f;
                for (int g = 0; g < G; g++)
                    s += dp[g] * w[(size_t)g * K + i];
                dx[r * IN + i] = s;
            }
        }
    }
}

void dense_forward_naive(float *out, const float *in, const float *w, const float *b, int N, int IN,
                         int OUT)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            float s = b[o];
            for (int i = 0; i < IN; i++)
                s += w[(size_t)o * IN + i] * in[(size_t)n * IN + i];
            out[(size_t)n * OUT + o] = s;
        }
}

void dense_backward_naive(float *din, float *dw, float *db, const float *dout, const float *in,
                          const float *w, int N, int IN, int OUT)
{
    for (int n = 0; n < N; n++) {
        for (int o = 0; o < OUT; o++) {
            float d = dout[(size_t)n * OUT + o];
            db[o] += d;
            for (int i = 0; i < IN; i++)
                dw[(size_t)o * IN + i] += d * in[(size_t)n * IN + i];
        }
        for (int i = 0; din && i < IN; i++) {
            float s = 0.0f;
            for (int o = 0; o < OUT; o++)
                s += dout[(size_t)n * OUT + o] * w[(size_t)o * IN + i];
            din[(size_t)n * IN + i] = s;
        }
    }
}

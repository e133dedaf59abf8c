/* model/dense.c: the dense (fully connected) head and the loss kernels.
 *
 * Shapes (row-major float32): N rows, IN inputs, OUT outputs; w [OUT, IN] as PyTorch's
 * nn.Linear. Losses are means over all n values, as PyTorch's MSELoss and HuberLoss with
 * reduction "mean"; sums are accumulated in double. No allocation, no state; any thread. */
#include <cblas.h>
#undef I /* complex.h's imaginary unit (via cblas.h); I is the input count here */
#include <math.h>
#include <string.h>

#include "internal.h"

void dense_forward(float *out, const float *in, const float *w, const float *b, int N, int IN,
                   int OUT)
{
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * OUT, b, sizeof(float) * (size_t)OUT);
    if (N == 1) {
        /* out[OUT] += w[OUT, IN] . in[IN]; lda = IN. */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, OUT, IN, 1.0f, w, IN, in, 1, 1.0f, out, 1);
        return;
    }
    /* out[N, OUT] += in[N, IN] . w[OUT, IN]^T; lda = IN, ldb = IN, ldc = OUT. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, IN, 1.0f, in, IN, w, IN, 1.0f, out,
                OUT);
}

void dense_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                    const float *w, int N, int IN, int OUT)
{
    /* dw[OUT, IN] += dout[N, OUT]^T . in[N, IN]; lda = OUT, ldb = IN, ldc = IN. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, N, 1.0f, dout, OUT, in, IN, 1.0f,
                dw, IN);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++)
            db[o] += dout[(size_t)n * OUT + o];
    if (din) {
        /* din[N, IN] = dout[N, OUT] . w[OUT, IN]; lda = OUT, ldb = IN, ldc = IN. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IN, OUT, 1.0f, dout, OUT, w, IN,
                    0.0f, din, IN);
    }
}

float loss_mse_forward(const float *y, const float *target, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - (double)target[i];
        s += d * d;
    }
    return (float)(s / (double)n);
}

void loss_mse_backward(float *dy, const float *y, const float *target, size_t n)
{
    float k = 2.0f / (float)n;
    for (size_t i = 0; i < n; i++)
        dy[i] = k * (y[i] - target[i]);
}

float loss_huber_forward(const float *y, const float *target, size_t n, float delta)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)y[i] - (double)target[i]);
        s += d < delta ? 0.5 * d * d : delta * (d - 0.5 * delta);
    }
    return (float)(s / (double)n);
}

void loss_huber_backward(float *dy, const float *y, const float *target, size_t n, float delta)
{
    float k = 1.0f / (float)n;
    for (size_t i = 0; i < n; i++) {
        float d = y[i] - target[i];
        float g = d < -delta ? -delta : (d > delta ? delta : d);
        dy[i] = k * g;
    }
}

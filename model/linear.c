/* model/linear.c: the linear baseline x_{t+1} = A x_t + B u_t + b, fitted by least squares.
 *
 * The regression runs in double on centred and scaled columns (so readings with large offsets
 * stay well conditioned) through LAPACKE_dgelsd, whose SVD copes with constant or collinear
 * channels; the coefficients are then mapped back to raw units. Fitting allocates its scratch;
 * prediction does not. Any thread; a fitted model is read-only and may be shared. */
#include <lapacke.h>
#undef I /* complex.h's imaginary unit (via lapacke.h); I is the input count here */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "internal.h"

struct model_linear {
    int I, O;
    float *ab; /* [O, I] raw-unit coefficients: columns 0..O-1 A, O..I-1 B */
    float *b;  /* [O] */
    float block[];
};

int model_linear_fit(model_linear_t **out, const float *data, size_t n, int n_inputs, int n_outputs)
{
    const int I = n_inputs, O = n_outputs;
    if (I < 1 || I > MODEL_MAX_INPUTS || O < 1 || O > I)
        return ERR_INVAL;
    if (n < 2)
        return ERR_RANGE;
    for (size_t i = 0; i < n * (size_t)I; i++)
        if (!isfinite(data[i]))
            return ERR_INVAL;
    const size_t rows = n - 1, ncol = (size_t)I + 1;
    const size_t ldb = rows > ncol ? rows : ncol;
    int rc = 0;
    model_linear_t *lin = malloc(sizeof *lin + sizeof(float) * (size_t)O * (I + 1));
    double *mu = calloc(2 * (size_t)I, sizeof(double)), *sd = mu ? mu + I : NULL;
    double *a = malloc(sizeof(double) * rows * ncol);
    double *bm = malloc(sizeof(double) * ldb * (size_t)O);
    double *sv = malloc(sizeof(double) * ncol);
    if (!lin || !mu || !a || !bm || !sv) {
        rc = ERR_NOMEM;
        goto fail;
    }
    lin->I = I;
    lin->O = O;
    lin->ab = lin->block;
    lin->b = lin->block + (size_t)O * I;
    /* Column statistics of the regressors (rows 0 .. n-2). */
    for (int i = 0; i < I; i++) {
        double s = 0.0, ss = 0.0;
        for (size_t t = 0; t < rows; t++)
            s += data[t * I + i];
        mu[i] = s / (double)rows;
        for (size_t t = 0; t < rows; t++) {
            double d = data[t * I + i] - mu[i];
            ss += d * d;
        }
        sd[i] = sqrt(ss / (double)rows);
        if (!(sd[i] > 1e-12 * (1.0 + fabs(mu[i]))))
            sd[i] = 1.0;
    }
    /* a [rows, I + 1] = [standardised x_t, u_t | 1], bm [rows, O] = x_{t+1}, column-major. */
    for (size_t t = 0; t < rows; t++) {
        for (int i = 0; i < I; i++)
            a[(size_t)i * rows + t] = (data[t * I + i] - mu[i]) / sd[i];
        a[(size_t)I * rows + t] = 1.0;
        for (int j = 0; j < O; j++)
            bm[(size_t)j * ldb + t] = data[(t + 1) * I + j];
    }
    lapack_int rank;
    lapack_int info =
        LAPACKE_dgelsd(LAPACK_COL_MAJOR, (lapack_int)rows, (lapack_int)ncol, (lapack_int)O, a,
                       (lapack_int)rows, bm, (lapack_int)ldb, sv, 1e-10, &rank);
    if (info != 0) {
        rc = ERR_CORRUPT;
        goto fail;
    }
    /* Back to raw units: coef_i / sd_i, and the intercept absorbs the means. */
    for (int j = 0; j < O; j++) {
        const double *x = bm + (size_t)j * ldb;
        double icpt = x[I];
        for (int i = 0; i < I; i++) {
            double c = x[i] / sd[i];
            lin->ab[(size_t)j * I + i] = (float)c;
            icpt -= c * mu[i];
        }
        lin->b[j] = (float)icpt;
    }
    *out = lin;
    lin = NULL;
fail:
    free(sv);
    free(bm);
    free(a);
    free(mu);
    free(lin);
    return rc;
}

void model_linear_destroy(model_linear_t *lin)
{
    free(lin);
}

void model_linear_predict(const model_linear_t *lin, float *pred, const float *in)
{
    for (int j = 0; j < lin->O; j++) {
        double s = lin->b[j];
        const float *c = lin->ab + (size_t)j * lin->I;
        for (int i = 0; i < lin->I; i++)
            s += (double)c[i] * in[i];
        pred[j] = (float)s;
    }
}

void model_linear_coef(const model_linear_t *lin, float *ab, float *b)
{
    if (ab)
        memcpy(ab, lin->ab, sizeof(float) * (size_t)lin->O * lin->I);
    if (b)
        memcpy(b, lin->b, sizeof(float) * (size_t)lin->O);
}

static int linear_predict_cb(void *ctx, float *pred, const float *row)
{
    model_linear_predict(ctx, pred, row);
    return 0;
}

int model_linear_evaluate(const model_linear_t *lin, struct model_eval *res, const float *data,
                          size_t n, size_t warmup)
{
    return model__score(res, data, n, lin->I, lin->O, warmup, linear_predict_cb, (void *)lin);
}

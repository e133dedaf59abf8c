/* model/internal.h: the model struct, its parameter layout and the kernels, shared by the
 * files of model/ and by tests/test_model.c (which checks kernels against plain loops). Not
 * part of the public interface; other modules include model.h only.
 *
 * Layout conventions (all row-major float32):
 *   per layer l: W_l [4H, K_l] with K_l = IN_l + H; columns 0..IN_l-1 are PyTorch's
 *   weight_ih_l{l}, columns IN_l..K_l-1 its weight_hh_l{l}; gate rows in the order i, f, g, o.
 *   IN_0 = I, IN_l = H for l > 0. Then b_ih_l [4H], b_hh_l [4H].
 *   head: fc_w [O, H], fc_b [O].
 * All parameters are one array in the order W_0, b_ih_0, b_hh_0, W_1, ..., fc_w, fc_b, so
 * gradients and Adam moments share the layout and the optimiser is one loop.
 *
 * A compact model (model_compact, f16.c) is the serving-only form: the same array in IEEE
 * float16 (binary16) bits, params16, with mean and scale still float32; params and the float
 * views p are NULL, and the serving functions read params16 through p16 instead. In params16
 * the gate matrices W_l are stored in panels of 64 rows (f16.c), every other tensor as above:
 * read or write params16 in canonical order only through model__f16_index. */
#ifndef VIGIL_MODEL_INTERNAL_H
#define VIGIL_MODEL_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Views of one parameter-shaped array (weights, gradients or Adam moments). */
struct model_views {
    float *w[MODEL_MAX_LAYERS];
    float *b_ih[MODEL_MAX_LAYERS];
    float *b_hh[MODEL_MAX_LAYERS];
    float *fc_w;
    float *fc_b;
};

/* The same views of a float16 parameter array (a compact model's). */
struct model_views16 {
    const uint16_t *w[MODEL_MAX_LAYERS];
    const uint16_t *b_ih[MODEL_MAX_LAYERS];
    const uint16_t *b_hh[MODEL_MAX_LAYERS];
    const uint16_t *fc_w;
    const uint16_t *fc_b;
};

struct model {
    atomic_int refs; /* handles to this model (model_share); freed when the last is destroyed */
    struct model_config cfg;
    int in[MODEL_MAX_LAYERS]; /* IN_l */
    int k[MODEL_MAX_LAYERS];  /* K_l = IN_l + H */
    size_t n_params;
    int compact;   /* 1: float16 parameters in params16 (params and p NULL); 0: float32 */
    float *mean;   /* [I] */
    float *scale;  /* [I] */
    float *params; /* [n_params] float32, or NULL (compact) */
    struct model_views p;
    uint16_t *params16; /* [n_params] float16 bits, or NULL (float32) */
    struct model_views16 p16;
    float block[]; /* mean, scale, then params or params16: one allocation with the handle */
};

/* Allocates a model of shape cfg (assumed valid) with its views set and its values undefined:
 * float32 parameters, or float16 ones when compact. Returns NULL when out of memory. */
model_t *model__alloc(const struct model_config *cfg, int compact);

/* Writes a model's mean, scale and parameters as float32 into dst [2 I + n_params] (the layout
 * of a float32 model's block): a copy, or for a compact model the widened float16 values. */
void model__widen(float *dst, const model_t *m);

/* Validates a config. Returns 0 or ERR_INVAL. */
int model__config_check(const struct model_config *cfg);

/* Parameter count of a config (assumed valid). */
size_t model__param_count(const struct model_config *cfg);

/* Points v at the parameter-shaped array base for model m. */
void model__views(const model_t *m, float *base, struct model_views *v);

/* Fills the weights with PyTorch's default initialisation from seed. */
void model__init_params(model_t *m, uint64_t seed);

/* Deterministic generator (splitmix64) used for initialisation and shuffling. */
uint64_t model__rand_u64(uint64_t *s);
/* Uniform float in [lo, hi). */
float model__rand_uniform(uint64_t *s, float lo, float hi);

/* CRC-32 (IEEE, as zlib's crc32) of n bytes, continuing from crc (start with 0). */
uint32_t model__crc32(uint32_t crc, const void *buf, size_t n);

/* One-step predictor used by model__score: consumes row (raw, [I]) and writes pred[O] raw,
 * the prediction of the next row. Returns 0 or a negative ERR_ code. */
typedef int (*model__predict_fn)(void *ctx, float *pred, const float *row);

/* Scores one-step predictions over data [n, I] (see model_evaluate). */
int model__score(struct model_eval *res, const float *data, size_t n, int I, int O, size_t warmup,
                 model__predict_fn predict, void *ctx);

/* A 32-bit unsigned integer to and from 4 little-endian bytes: the byte formats of ckpt.c and
 * detector_pred.c. */
static inline void model__put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t model__get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

/* n floats to and from little-endian bytes (ckpt.c). */
void model__put_floats(unsigned char *p, const float *f, size_t n);
void model__get_floats(float *f, const unsigned char *p, size_t n);

/* ---- LSTM kernels (lstm.c) ----------------------------------------------------------------
 * Shapes: B batch rows, T steps, IN layer inputs, H hidden, G = 4H gates, K = IN + H. */

/* One row of the cell. act[G] holds the pre-activations (without biases) on entry and the
 * activations on exit (sigmoid of i, f, o and tanh of g, of pre + b_ih + b_hh; b_ih and b_hh
 * both NULL: act already includes the biases, as model__gemv_f16 adds them);
 * c[H] = f * c_prev + i * g (c_prev NULL means zeros; c_prev may be c itself, for an
 * update in place, but must not otherwise overlap it);
 * h[H] = o * tanh(c); tc[H] = tanh(c) cached for backward (NULL: not kept). */
void lstm_cell_forward(float *act, float *h, float *c, float *tc, const float *c_prev,
                       const float *b_ih, const float *b_hh, int H);

/* One row of the cell's backward pass. dh[H] is dL/dh_t (from above and from t+1), dc[H] on
 * entry dL/dc_t from t+1 and on exit dL/dc_{t-1}. act, c_prev (NULL: zeros), tc are the
 * forward cache. Writes dpre[G], dL/d(pre-activation). */
void lstm_cell_backward(float *restrict dpre, float *dc, const float *restrict dh,
                        const float *restrict act, const float *restrict c_prev,
                        const float *restrict tc, int H);

/* One layer over T steps for B sequences from the zero state (training forward).
 * out: act [T, B, G] activated gates, c [T, B, H], tc [T, B, H], h [T, B, H] (the cache).
 * scratch: wt [H, G] (the recurrent weights transposed). in: x [T, B, IN].
 * weights: w [G, K], b_ih, b_hh [G]. */
void lstm_forward(float *act, float *c, float *tc, float *h, float *wt, const float *x,
                  const float *w, const float *b_ih, const float *b_hh, int T, int B, int IN,
                  int H);

/* Backward of lstm_forward. in: dh [T, B, H] = dL/dh_t from above (overwritten, used as
 * scratch); the cache x, act, c, tc, h; w. out: dx [T, B, IN] = dL/dx (NULL: not computed);
 * dw [G, K], db_ih, db_hh [G] accumulated (+=). scratch: dpre [T, B, G], dc [B, H],
 * dhn [B, H]. */
void lstm_backward(float *dx, float *dw, float *db_ih, float *db_hh, float *dh, float *dpre,
                   float *dc, float *dhn, const float *x, const float *act, const float *c,
                   const float *tc, const float *h, const float *w, int T, int B, int IN, int H);

/* Plain-loop references (ref.c), same contracts, no BLAS: the tests' ground truth. */
void lstm_forward_naive(float *act, float *c, float *tc, float *h, const float *x, const float *w,
                        const float *b_ih, const float *b_hh, int T, int B, int IN, int H);
void lstm_backward_naive(float *dx, float *dw, float *db_ih, float *db_hh, float *dh, float *dpre,
                         float *dc, float *dhn, const float *x, const float *act, const float *c,
                         const float *tc, const float *h, const float *w, int T, int B, int IN,
                         int H);

/* ---- dense and loss kernels (dense.c) ------------------------------------------------------
 * Shapes: N rows, IN inputs, OUT outputs. */

/* out [N, OUT] = in [N, IN] . w[OUT, IN]^T + b [OUT]. */
void dense_forward(float *out, const float *in, const float *w, const float *b, int N, int IN,
                   int OUT);
/* Backward of dense_forward: din [N, IN] = dout . w (NULL: skipped); dw [OUT, IN] += dout^T . in;
 * db [OUT] += column sums of dout. */
void dense_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                    const float *w, int N, int IN, int OUT);
void dense_forward_naive(float *out, const float *in, const float *w, const float *b, int N, int IN,
                         int OUT);
void dense_backward_naive(float *din, float *dw, float *db, const float *dout, const float *in,
                          const float *w, int N, int IN, int OUT);

/* Mean squared error over n values (PyTorch MSELoss, mean), and its gradient dy[n]. */
float loss_mse_forward(const float *y, const float *target, size_t n);
void loss_mse_backward(float *dy, const float *y, const float *target, size_t n);
/* Huber loss with delta (PyTorch HuberLoss, mean), and its gradient dy[n]. */
float loss_huber_forward(const float *y, const float *target, size_t n, float delta);
void loss_huber_backward(float *dy, const float *y, const float *target, size_t n, float delta);

/* ---- float16 (f16.c) ----------------------------------------------------------------------
 * IEEE binary16 values are carried as their bits in uint16_t. */

/* The float16 nearest to x (ties to even); beyond float16's range: infinity; NaN stays NaN. */
uint16_t model__f32_to_f16(float x);
/* The float value of a float16 (exact). */
float model__f16_to_f32(uint16_t h);

/* Rows of one float16 panel (f16.c's header): the gate matrices of a compact model keep each
 * group of this many rows as one block [K][MODEL_F16_PANEL]. */
#define MODEL_F16_PANEL 64

/* Where element (r, k) of a float16 matrix [M, K] stored in panels lives: rows below
 * M / 64 * 64 in their panel's block (column-major within the block), the rest row-major after
 * the panels. */
size_t model__f16_panel_pos(int M, int K, int r, int k);
/* Where parameter i of internal.h's (canonical) layout lives in a compact model's params16:
 * the gate matrices are in panels, the rest in place. The one map between the two orders;
 * whatever reads or writes params16 in canonical order goes through it. */
size_t model__f16_index(const model_t *m, size_t i);

/* Kernel levels (model__f16_isa): a portable loop, and F16C + AVX2 + FMA. */
enum { MODEL_F16_PORTABLE = 0, MODEL_F16_AVX2 = 1 };
/* The highest level this CPU runs; the CPU is asked once (CPUID traps in a virtual machine). */
int model__f16_isa(void);
/* 1 when the float16 kernels use F16C and FMA on this CPU (model__f16_isa() >= AVX2). */
int model__f16c_available(void);

/* y[M] = w[M, K] . x[K] + b1[M] + b2[M], w row-major float16 (lda = K), b1 and b2 float16 (either
 * NULL: none), products accumulated in float32 and the biases added in that order, as the float32
 * step adds them (lstm_cell_forward). The head's mat-vec. Picks the best kernel this CPU runs.
 * No allocation; any thread. */
void model__gemv_f16(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                     const uint16_t *b2, int M, int K);
/* The same with w in panels (model__f16_panel_pos): the gate mat-vec of a compact model. Each
 * row's products are summed in the order of k, one fused multiply-add each on x86. */
void model__gemv_f16_panel(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                           const uint16_t *b2, int M, int K);
/* The two at a given level (at most model__f16_isa(); the tests run every level). */
void model__gemv_f16_at(int isa, float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                        const uint16_t *b2, int M, int K);
void model__gemv_f16_panel_at(int isa, float *y, const uint16_t *w, const float *x,
                              const uint16_t *b1, const uint16_t *b2, int M, int K);
/* Plain loops (the references: products summed in order, then the biases), for w row-major
 * and in panels. */
void model__gemv_f16_naive(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                           const uint16_t *b2, int M, int K);
void model__gemv_f16_panel_naive(float *y, const uint16_t *w, const float *x, const uint16_t *b1,
                                 const uint16_t *b2, int M, int K);

/* ---- trainer internals used by the gradient tests (train.c) ------------------------------ */

/* Forward and backward on nb windows (as model_trainer_step) without updating: the trainer's
 * gradient array (model_param_count floats, parameter layout) holds dL/dparams afterwards.
 * Returns the loss through *loss. */
int model__trainer_grad(model_trainer_t *tr, const float *windows, int nb, float *loss);
/* The trainer's gradient array (borrowed). */
const float *model__trainer_grads(const model_trainer_t *tr);
/* The trainer's model, writable (borrowed; tests perturb weights through it). */
model_t *model__trainer_model_mut(model_trainer_t *tr);

#endif

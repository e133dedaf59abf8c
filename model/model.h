/* model/model.h: vigil's LSTM engine, the one public header of model/.
 *
 * A stacked LSTM (1..MODEL_MAX_LAYERS layers, H hidden units) over I standardised input
 * channels, with a dense head giving O outputs: the prediction of the next value of each
 * monitored channel. Channel convention: the first O of the I input channels are the
 * monitored (predicted) channels x; the remaining I - O are input-only channels u (set points,
 * controls) that feed the model but are not predicted. Per-channel standardisation
 * (z = (raw - mean) / scale) is part of the model; every function here takes and returns raw
 * units unless it says otherwise.
 *
 * The maths and the parameter layouts are PyTorch's nn.LSTM (gate order i, f, g, o, separate
 * biases b_ih and b_hh) followed by nn.Linear, so weights move between the two through
 * safetensors (model_safetensors_export / _import) and match to float rounding.
 *
 * Pure computation: no files, clocks, logging, threads or globals. Functions return 0 or a
 * negative ERR_* code from common/err.h. Threading: every function is "any thread"; a model
 * handle may be shared by many threads for the const functions (step, forecast, evaluate,
 * export) as long as no thread mutates it at the same time (model_set_norm). To retrain, train
 * a copy (model_train) and swap the serving pointer when it passes validation.
 *
 * Buffers: the per-device state and the scratch ("work") buffers are caller-owned float
 * arrays whose lengths come from model_state_len() and model_work_len(); the step functions
 * never allocate.
 *
 * BLAS threads: model/ never changes OpenBLAS's thread count. A caller that runs model/ from
 * its own worker threads should set OpenBLAS to one thread (openblas_set_num_threads(1)) once
 * at start-up: the step's small mat-vecs gain nothing from OpenBLAS threads, and OpenBLAS
 * threads on top of worker threads oversubscribe the cores (docs/benchmarks.md). */
#ifndef VIGIL_MODEL_H
#define VIGIL_MODEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MODEL_MAX_LAYERS   3
#define MODEL_MAX_INPUTS   1024
#define MODEL_MAX_HIDDEN   2048
#define MODEL_MAX_FORECAST 100000
/* Default hidden size, by measurement (bench/lstm_hsweep.c, docs/benchmarks.md): on a
 * synthetic nonlinear plant H = 64 gets most of the accuracy of H = 128 (held-out normalised MSE
 * 0.0020 vs 0.0017; H = 32: 0.0027) at about a quarter of its step time (~1.4 us on one core). */
#define MODEL_DEFAULT_HIDDEN 64

typedef struct model model_t;
typedef struct model_trainer model_trainer_t;
typedef struct model_linear model_linear_t;

/* Shape of a model. Plain value type. */
struct model_config {
    int n_inputs;  /* I: channels per step, 1..MODEL_MAX_INPUTS */
    int n_outputs; /* O: predicted channels (the first O inputs), 1..I */
    int n_layers;  /* L: 1..MODEL_MAX_LAYERS */
    int n_hidden;  /* H: 1..MODEL_MAX_HIDDEN */
    uint64_t seed; /* seed of the initial weights */
};

/* Fills *cfg with I = n_inputs, O = n_outputs, one layer, MODEL_DEFAULT_HIDDEN, seed 1. */
void model_config_default(struct model_config *cfg, int n_inputs, int n_outputs);

/* ---- handle ------------------------------------------------------------------------------ */

/* Creates a model with PyTorch's default initialisation (uniform in +-1/sqrt(H) for the LSTM,
 * +-1/sqrt(H) for the head) drawn from cfg->seed, mean 0 and scale 1. Returns ERR_INVAL for a
 * shape out of range, ERR_NOMEM. On success the caller owns *out; free with model_destroy. */
int model_create(model_t **out, const struct model_config *cfg);

/* Copies a model (weights and standardisation) as a float32 model: a compact model's float16
 * weights are widened (exactly). Returns ERR_NOMEM. Caller owns *out; free with model_destroy. */
int model_clone(model_t **out, const model_t *m);

/* A serving-only compact copy of m: its parameters rounded to IEEE float16 (binary16, to
 * nearest, ties to even), the standardisation kept in float32; about half the memory, and a
 * step that reads half the bytes (it widens each weight and accumulates in float32). Every
 * function of this header takes a compact model: the serving ones read the float16 weights,
 * the others (checkpoint, export, clone, training from it as a base) see their float32 values.
 * Compacting a compact model copies it; compacting the clone of a compact model gives the same
 * float16 values (float16 -> float32 -> float16 is exact). Returns ERR_RANGE when a parameter is
 * beyond float16's range (|x| >= 65520 rounds to infinity), ERR_NOMEM. Caller owns *out; free
 * with model_destroy. */
int model_compact(model_t **out, const model_t *m);

/* 1 for a compact (float16) model, 0 for a float32 one. */
int model_is_compact(const model_t *m);

/* Another handle to the same model, without copying its weights: many owners (a device group's
 * detectors, a training job and the detector it was made from) serve one read-only copy. The
 * model is freed when the last handle is given to model_destroy. A shared model is immutable:
 * model_set_norm refuses it (ERR_BUSY), and no other function modifies a model. Any thread (the
 * count is atomic). Always succeeds; the caller owns the returned handle (model_destroy). */
model_t *model_share(const model_t *m);

/* Releases a handle: frees the model unless other handles (model_share) remain. NULL is a
 * no-op. */
void model_destroy(model_t *m);

/* Writes the model's shape into *cfg (seed is the creation seed). */
void model_get_config(const model_t *m, struct model_config *cfg);

/* Number of trainable float parameters. */
size_t model_param_count(const model_t *m);

/* Bytes of memory one model occupies (handle and all its arrays). */
size_t model_memory_size(const model_t *m);

/* A fingerprint of the model's content: CRC-32 of its shape, standardisation and parameters
 * (their float16 bits for a compact model, so a model and its compact form differ). Equal
 * models give equal fingerprints, models that differ almost surely not: detector_save_shared
 * records its serving model's, so detector_load_shared refuses another of the same shape. */
uint32_t model_fingerprint(const model_t *m);

/* Sets the standardisation: mean[I] and scale[I] in raw units (borrowed, copied). Returns
 * ERR_INVAL if a value is not finite or a scale is not > 0, ERR_BUSY if the model is shared
 * (model_share); the model is then unchanged. Not safe while other threads use the model. */
int model_set_norm(model_t *m, const float *mean, const float *scale);

/* Copies the standardisation into mean[I] and scale[I] (caller-owned). */
void model_get_norm(const model_t *m, float *mean, float *scale);

/* ---- serving: state, step, batched step, forecast ---------------------------------------- */

/* Length in floats of one device's state. The state is a caller-owned float array laid out as
 * [z (I) | h_0 .. h_{L-1} (H each) | c_0 .. c_{L-1} (H each)], where z is the last
 * standardised input. A zeroed array is the initial state (model_state_reset). States belong
 * to a model's shape: any model with the same config may use them. */
size_t model_state_len(const model_t *m);

/* Bytes of one device's state: model_state_len() * sizeof(float). */
size_t model_state_size(const model_t *m);

/* Sets a state (model_state_len floats, caller-owned) to the initial, all-zero state. */
void model_state_reset(const model_t *m, float *state);

/* Length in floats of the scratch buffer the step functions need for up to `batch` devices
 * (batch >= 1). One buffer per thread is enough; its contents do not matter between calls. */
size_t model_work_len(const model_t *m, int batch);

/* model_state_len() and model_work_len() of a model made with cfg, from cfg alone: no model is
 * created and nothing is allocated, so a caller can size (or check a saved state against) a
 * shape before it pays for one (detector_load: up to 400 MB for a shape it then refuses).
 * cfg must pass model_create's checks; the lengths of one that does not mean nothing. */
size_t model_config_state_len(const struct model_config *cfg);
size_t model_config_work_len(const struct model_config *cfg, int batch);

/* Incremental step for one device: consumes the raw input x[I], updates state in place and
 * writes pred[O], the raw prediction of the next value of the first O channels. work holds
 * model_work_len(m, 1) floats. O(L * H * (I + H)) work, no allocation: one sgemv per
 * layer and one for the head. Returns ERR_INVAL if an x value is not finite (state and pred
 * untouched). */
int model_step(const model_t *m, float *pred, float *state, const float *x, float *work);

/* Batched step for `batch` devices sharing this model: x is [batch, I] raw, row-major;
 * states[b] points to device b's state (distinct arrays); pred is [batch, O]. One sgemm per
 * layer plus one for the head. work holds model_work_len(m, batch) floats. Returns ERR_INVAL
 * for batch < 1 or a non-finite x value (nothing is updated then). */
int model_step_batch(const model_t *m, float *pred, float *const *states, const float *x, int batch,
                     float *work);

/* Prediction from a state without consuming input: pred[O] raw, the value the last step
 * predicted (the head applied to the top layer's h). Always succeeds. */
void model_predict(const model_t *m, float *pred, const float *state);

/* Forecast k steps ahead from a state (borrowed, not modified): out is [k, O] raw, row j
 * the prediction for time t+1+j where t is the last input the state consumed. Predictions are
 * fed back as the next monitored channels; the input-only channels come from u, [k-1, I-O]
 * raw values for t+1 .. t+k-1 (row-major), or, when u is NULL, are held at their last values.
 * work holds model_work_len(m, 1) floats. Returns ERR_INVAL for k outside 1..MODEL_MAX_FORECAST
 * (out untouched). */
int model_forecast(const model_t *m, float *out, const float *state, const float *u, int k,
                   float *work);

/* ---- evaluation -------------------------------------------------------------------------- */

/* One-step-ahead errors over a series, averaged over the O monitored channels. */
struct model_eval {
    double mse;              /* model: mean squared error in raw units */
    double nmse;             /* model: per-channel MSE / variance of that channel, averaged */
    double mse_persistence;  /* forecast x_{t+1} = x_t, raw units */
    double nmse_persistence; /* same, normalised like nmse */
    size_t n;                /* number of predictions scored */
};

/* Runs the model over data, [n, I] raw, time-major (row t = time t), from the zero state,
 * and scores the predictions of rows warmup+1 .. n-1 (each from the rows before it). The
 * variance used by nmse is each channel's variance over the scored rows. Allocates its
 * scratch. Returns ERR_RANGE if fewer than 2 rows are scored, ERR_INVAL for non-finite data,
 * ERR_NOMEM. */
int model_evaluate(const model_t *m, struct model_eval *res, const float *data, size_t n,
                   size_t warmup);

/* ---- training ---------------------------------------------------------------------------- */

/* Training settings. Plain value type; start from model_train_config_default(). */
struct model_train_config {
    int window;         /* T: BPTT window length in steps (each window starts from zero state) */
    int stride;         /* steps between window starts; 0 means max(1, T / 4) */
    int batch;          /* windows per minibatch */
    int max_epochs;     /* upper bound on epochs */
    int patience;       /* stop after this many epochs without a better validation loss; 0 never */
    float val_fraction; /* last fraction of the series held out for validation, 0 .. 0.9 */
    float lr;           /* Adam learning rate */
    float beta1, beta2, eps; /* Adam (PyTorch defaults 0.9, 0.999, 1e-8) */
    float clip_norm;         /* clip the global gradient L2 norm to this; 0 disables */
    float huber_delta;       /* 0: MSE loss; > 0: Huber loss with this delta (standardised units) */
    int fit_norm;  /* 1: set mean/scale from the training rows first; 0: keep the model's */
    int reinit;    /* 1: re-initialise the weights from seed first; 0: continue from them */
    uint64_t seed; /* shuffling (and re-initialisation) seed; same seed, same result */
};

/* Defaults: T 64, stride 0, batch 32, 50 epochs, patience 5, val_fraction 0.2, lr 1e-3,
 * Adam 0.9/0.999/1e-8, clip_norm 1.0, MSE, fit_norm 1, reinit 0, seed 1. */
void model_train_config_default(struct model_train_config *cfg);

/* What a training run did. The two curves are caller-owned arrays of at least max_epochs
 * floats (either may be NULL); entry e is the mean loss of epoch e in standardised units. */
struct model_train_result {
    float *train_loss; /* caller-owned, [max_epochs], or NULL */
    float *val_loss;   /* caller-owned, [max_epochs], or NULL; NaN without validation */
    int epochs;        /* epochs run */
    int best_epoch;    /* epoch whose weights were kept (the last one without validation) */
    float best_val;    /* its validation loss (NaN without validation) */
    long steps;        /* optimiser steps taken */
};

/* Trains a copy of base on data, [n, I] raw, time-major: the first (1 - val_fraction) of the
 * rows for training, the rest for validation and early stopping. Minibatches of shuffled
 * windows; the weights of the best validation epoch are kept. base is only read. Allocates
 * its own buffers. Returns ERR_INVAL for bad settings or non-finite data, ERR_RANGE if either
 * split is shorter than window + 1 rows, the loss diverged (became non-finite) or no epoch's
 * validation loss was finite, ERR_NOMEM. On
 * success the caller owns *out (free with model_destroy) and res (if not NULL) is filled. */
int model_train(model_t **out, const model_t *base, const struct model_train_config *cfg,
                const float *data, size_t n, struct model_train_result *res);

/* As model_train, with the weights averaged: after every optimiser step an exponential moving
 * average of the weights is updated (time constant avg_epochs epochs, bias-corrected so the
 * initial weights take no part), and the average is what each epoch validates, what early
 * stopping keeps and what *out holds; the raw weights go on training. avg_epochs 0 is
 * model_train exactly. One more [n_params] pass per step and three per epoch. Returns
 * model_train's codes (ERR_INVAL also for a negative or non-finite avg_epochs); ownership as
 * model_train's. */
int model_train_averaged(model_t **out, const model_t *base, const struct model_train_config *cfg,
                         float avg_epochs, const float *data, size_t n,
                         struct model_train_result *res);

/* As model_train_averaged, abandoned when asked: cancel (NULL: never) is read before every
 * minibatch, and once it is nonzero the training stops there and returns ERR_CLOSED, *out and
 * res's counts untouched (the curves may hold the finished epochs) and base unchanged, as after
 * any failure. The caller sets it from another thread (a daemon's stop, which must not wait out
 * a long training); a relaxed load per minibatch, nothing else. Otherwise as
 * model_train_averaged. The flag is not in struct model_train_config because that struct is
 * stored byte for byte inside a saved detector. */
int model_train_cancellable(model_t **out, const model_t *base,
                            const struct model_train_config *cfg, float avg_epochs,
                            const atomic_int *cancel, const float *data, size_t n,
                            struct model_train_result *res);

/* The step-level trainer model_train is built on, for callers who bring their own batches (and
 * for the PyTorch parity test). Creates a trainer holding a copy of init and Adam state for
 * minibatches of up to cfg->batch windows of cfg->window steps (the other fields except the
 * Adam, clipping and Huber settings are ignored; reinit and fit_norm are not applied). Returns
 * ERR_INVAL, ERR_NOMEM. Caller owns *out; free with model_trainer_destroy. */
int model_trainer_create(model_trainer_t **out, const model_t *init,
                         const struct model_train_config *cfg);

/* Frees a trainer. NULL is a no-op. */
void model_trainer_destroy(model_trainer_t *tr);

/* One Adam step on nb windows (1..batch): windows is [nb, T + 1, I] raw (window-major, each
 * window T + 1 consecutive rows; row t + 1's first O channels are the targets of row t).
 * Writes the loss before the update to *loss (may be NULL). Returns ERR_INVAL. */
int model_trainer_step(model_trainer_t *tr, const float *windows, int nb, float *loss);

/* Loss of the trainer's current model on nb windows (as in model_trainer_step), no update. */
int model_trainer_loss(model_trainer_t *tr, const float *windows, int nb, float *loss);

/* The trainer's current model. Borrowed; valid until the next call on tr. */
const model_t *model_trainer_model(const model_trainer_t *tr);

/* ---- linear baseline --------------------------------------------------------------------- */

/* Least-squares fit of x_{t+1} = A x_t + B u_t + b over data, [n, I] raw, time-major, with
 * x the first O channels and u the rest (LAPACK dgelsd, so rank-deficient data is fine).
 * Returns ERR_INVAL (bad shape, non-finite data), ERR_RANGE (n < 2), ERR_NOMEM, ERR_CORRUPT
 * (the solver failed). Caller owns *out; free with model_linear_destroy. */
int model_linear_fit(model_linear_t **out, const float *data, size_t n, int n_inputs,
                     int n_outputs);

/* Frees a linear model. NULL is a no-op. */
void model_linear_destroy(model_linear_t *lin);

/* pred[O] = A x + B u + b for one raw input row in[I]. */
void model_linear_predict(const model_linear_t *lin, float *pred, const float *in);

/* Coefficients: ab is [O, I] row-major (columns 0..O-1 are A, O..I-1 are B), b is [O]; either
 * may be NULL. */
void model_linear_coef(const model_linear_t *lin, float *ab, float *b);

/* One-step-ahead errors of the linear model over data (as model_evaluate, warmup rows are
 * skipped too). Same returns as model_evaluate. */
int model_linear_evaluate(const model_linear_t *lin, struct model_eval *res, const float *data,
                          size_t n, size_t warmup);

/* ---- checkpoints and safetensors --------------------------------------------------------- */

/* Bytes model_checkpoint_save writes for this model. */
size_t model_checkpoint_size(const model_t *m);

/* Writes a versioned checkpoint (magic, version, shape, standardisation, weights, CRC-32) into
 * buf (caller-owned, cap bytes) and its length to *len. A compact model's checkpoint holds its
 * float16 weights (format version 2; float32 models write version 1) and loads back compact,
 * with the same bits. Returns ERR_RANGE if cap is too small (nothing meaningful written). */
int model_checkpoint_save(const model_t *m, void *buf, size_t cap, size_t *len);

/* The shape a checkpoint's header says (buf borrowed, len its whole length): what
 * model_checkpoint_load would make, read without the weights or their CRC (a listing's
 * judgement; the load checks the rest). Reads only the 48 header bytes, none before len is
 * checked, and the header's lengths must agree with len. Returns ERR_CORRUPT, ERR_INVAL (an
 * unknown version). */
int model_checkpoint_peek(const void *buf, size_t len, struct model_config *cfg);

/* Creates a model from a checkpoint (buf borrowed). Returns ERR_CORRUPT for a wrong magic,
 * length, CRC or contents, ERR_INVAL for an unknown version, ERR_NOMEM. Never reads outside
 * buf. Caller owns *out; free with model_destroy. */
int model_checkpoint_load(model_t **out, const void *buf, size_t len);

/* Bytes model_safetensors_export writes for this model. */
size_t model_safetensors_size(const model_t *m);

/* Writes the model in the safetensors format (F32, little-endian; a compact model's weights
 * widened, exactly) with the names of a PyTorch
 * module holding `lstm = nn.LSTM(I, H, L)` and `fc = nn.Linear(H, O)`: "lstm.weight_ih_l{k}"
 * [4H, in], "lstm.weight_hh_l{k}" [4H, H], "lstm.bias_ih_l{k}", "lstm.bias_hh_l{k}" [4H],
 * "fc.weight" [O, H], "fc.bias" [O], and the standardisation as "input_mean", "input_scale"
 * [I] (registered buffers). Returns ERR_RANGE if cap is too small, ERR_NOMEM (a compact model's
 * widened copy). */
int model_safetensors_export(const model_t *m, void *buf, size_t cap, size_t *len);

/* Creates a model from a safetensors buffer (borrowed) with the names above; "lstm." may be
 * left off the LSTM names, and without input_mean/input_scale the standardisation is the
 * identity. The shape comes from the tensor shapes. Other tensors are ignored (at most 128
 * tensors in all; a name outside ASCII or over 95 bytes is never one of these). Returns
 * ERR_CORRUPT for malformed input (bad header, offsets outside the buffer, wrong sizes or
 * dtypes, missing or inconsistent tensors), ERR_NOMEM. Caller owns *out; free with
 * model_destroy. */
int model_safetensors_import(model_t **out, const void *buf, size_t len);
/* The same, and on ERR_CORRUPT why (cap bytes, NUL-terminated) says what is wrong for the
 * person who wrote the file: the tensor, its dtype or shape and what was wanted, a prefixed
 * name found instead, a zip (torch.save) body (session 67), the tensor holding a value not
 * finite, input_mean or input_scale given alone (both or neither). On success why is a warning
 * (the file's tensors vigild does not use, named) or empty. why NULL: not written. */
int model_safetensors_import_why(model_t **out, const void *buf, size_t len, char *why, size_t cap);

#endif

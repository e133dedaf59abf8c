/* tests/test_model_fx.c: fixtures shared by the parts of test_model (tests/test_model_*.c):
 * the random stream, buffers, closeness checks and the helpers more than one part uses. Moved
 * whole from tests/test_model.c; declared in tests/test_model_fx.h. */

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

uint64_t rng_state = 12345;

float frand(float lo, float hi)
{
    return model__rand_uniform(&rng_state, lo, hi);
}

void fill(float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = frand(lo, hi);
}

float *falloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

/* |a - b| <= atol + rtol * |b| for every element; reports the first failure. */
void assert_close(const float *a, const float *b, size_t n, float atol, float rtol,
                  const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (!(fabsf(a[i] - b[i]) <= atol + rtol * fabsf(b[i]))) {
            print_error("%s[%zu]: %.9g vs %.9g\n", what, i, a[i], b[i]);
            fail();
        }
    }
}

model_t *make_model(int I, int O, int L, int H, uint64_t seed)
{
    struct model_config cfg = {I, O, L, H, seed};
    model_t *m;
    assert_int_equal(model_create(&m, &cfg), 0);
    return m;
}

/* Predictions of the training forward (kernels + head) for one sequence x [T, I] raw. */
void reference_predictions(const model_t *m, float *pred, const float *x, int T)
{
    const int I = m->cfg.n_inputs, O = m->cfg.n_outputs, H = m->cfg.n_hidden;
    const int L = m->cfg.n_layers, G = 4 * H;
    float *z = falloc((size_t)T * I), *act = falloc((size_t)T * G), *c = falloc((size_t)T * H);
    float *tc = falloc((size_t)T * H),
          *h[3] = {falloc((size_t)T * H), falloc((size_t)T * H), falloc((size_t)T * H)};
    for (int t = 0; t < T; t++)
        for (int i = 0; i < I; i++)
            z[t * I + i] = (x[t * I + i] - m->mean[i]) / m->scale[i];
    for (int l = 0; l < L; l++)
        lstm_forward_naive(act, c, tc, h[l], l ? h[l - 1] : z, m->p.w[l], m->p.b_ih[l],
                           m->p.b_hh[l], T, 1, m->in[l], H);
    dense_forward_naive(pred, h[L - 1], m->p.fc_w, m->p.fc_b, T, H, O);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < O; j++)
            pred[t * O + j] = pred[t * O + j] * m->scale[j] + m->mean[j];
    free(z), free(act), free(c), free(tc), free(h[0]), free(h[1]), free(h[2]);
}

model_t *make_normed_model(int I, int O, int L, int H, uint64_t seed)
{
    model_t *m = make_model(I, O, L, H, seed);
    float mean[16], scale[16];
    fill(mean, (size_t)I, -5, 5);
    fill(scale, (size_t)I, 0.5f, 3);
    assert_int_equal(model_set_norm(m, mean, scale), 0);
    return m;
}

/* Synthetic process, [n, 3] raw: two coupled oscillators (monitored, with offsets and
 * different scales) driven by a slow square-wave set point (input-only), plus noise. */
float *coupled_process(size_t n, uint64_t seed)
{
    float *d = falloc(n * 3);
    uint64_t s = seed;
    double a = 1.0, b = 0.0;
    for (size_t t = 0; t < n; t++) {
        double u = ((t / 150) % 2) ? 1.0 : -1.0;
        double a2 = 0.98 * (a * cos(0.2) - b * sin(0.2)) + 0.05 * u;
        double b2 = 0.98 * (a * sin(0.2) + b * cos(0.2)) + 0.02 * u;
        a = a2;
        b = b2;
        d[t * 3 + 0] = (float)(100.0 + 10.0 * a) + model__rand_uniform(&s, -0.3f, 0.3f);
        d[t * 3 + 1] = (float)(-3.0 + 0.5 * b * a) + model__rand_uniform(&s, -0.01f, 0.01f);
        d[t * 3 + 2] = (float)(20.0 + 5.0 * u);
    }
    return d;
}

void assert_same_model(const model_t *a, const model_t *b)
{
    assert_int_equal(a->n_params, b->n_params);
    assert_int_equal(a->cfg.n_inputs, b->cfg.n_inputs);
    assert_int_equal(a->cfg.n_outputs, b->cfg.n_outputs);
    assert_int_equal(a->cfg.n_layers, b->cfg.n_layers);
    assert_int_equal(a->cfg.n_hidden, b->cfg.n_hidden);
    assert_memory_equal(a->block, b->block,
                        sizeof(float) * (2 * (size_t)a->cfg.n_inputs + a->n_params));
}

/* Every truncation of the checkpoint buf[0, len), and every single-bit flip of it (made in
 * bad, len bytes of room), is an error and leaves *r untouched. Each truncation is loaded from
 * a malloc'd copy of exactly that length so a read past the end would show in ASan. */
void assert_ckpt_damage_refused(const unsigned char *buf, unsigned char *bad, size_t len,
                                model_t **r)
{
    for (size_t l = 0; l < len; l++) {
        unsigned char *t = malloc(l ? l : 1);
        assert_non_null(t);
        memcpy(t, buf, l);
        assert_int_equal(model_checkpoint_load(r, t, l), ERR_CORRUPT);
        free(t);
    }
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, buf, len);
        bad[i] ^= (unsigned char)(1u << (i % 8));
        int rc = model_checkpoint_load(r, bad, len);
        assert_true(rc == ERR_CORRUPT || rc == ERR_INVAL);
    }
}

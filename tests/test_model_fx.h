/* tests/test_model_fx.h: what the parts of test_model share: the fixtures of
 * tests/test_model_fx.c and each part's test table (run by tests/test_model.c's main). Include
 * after <cmocka.h>, "internal.h" and "model.h". */
#ifndef VIGIL_TEST_MODEL_FX_H
#define VIGIL_TEST_MODEL_FX_H

#include <stddef.h>
#include <stdint.h>

extern uint64_t rng_state;
float frand(float lo, float hi);
void fill(float *x, size_t n, float lo, float hi);
float *falloc(size_t n);
void assert_close(const float *a, const float *b, size_t n, float atol, float rtol,
                  const char *what);
model_t *make_model(int I, int O, int L, int H, uint64_t seed);
void reference_predictions(const model_t *m, float *pred, const float *x, int T);
model_t *make_normed_model(int I, int O, int L, int H, uint64_t seed);
float *coupled_process(size_t n, uint64_t seed);
void assert_same_model(const model_t *a, const model_t *b);
void assert_ckpt_damage_refused(const unsigned char *buf, unsigned char *bad, size_t len,
                                model_t **r);

extern const struct CMUnitTest model_kernels_tests[];
extern const size_t model_kernels_count;
extern const struct CMUnitTest model_serve_tests[];
extern const size_t model_serve_count;
extern const struct CMUnitTest model_train_tests[];
extern const size_t model_train_count;
extern const struct CMUnitTest model_io_tests[];
extern const size_t model_io_count;
extern const struct CMUnitTest model_f16_tests[];
extern const size_t model_f16_count;

#endif

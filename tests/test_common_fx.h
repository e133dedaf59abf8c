/* tests/test_common_fx.h: each part of test_common's test table (run by tests/test_common.c's
 * main). Include after <cmocka.h>. */
#ifndef VIGIL_TEST_COMMON_FX_H
#define VIGIL_TEST_COMMON_FX_H

#include <stddef.h>

extern const struct CMUnitTest common_time_tests[];
extern const size_t common_time_count;
extern const struct CMUnitTest common_batch_tests[];
extern const size_t common_batch_count;
extern const struct CMUnitTest common_nice_tests[];
extern const size_t common_nice_count;
extern const struct CMUnitTest common_nameidx_tests[];
extern const size_t common_nameidx_count;
extern const struct CMUnitTest common_mcond_tests[];
extern const size_t common_mcond_count;

#endif

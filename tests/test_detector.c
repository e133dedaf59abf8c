/* tests/test_detector.c: unit tests of the per-device detector (model/detector.h). First
 * version: lifecycle only; the behavioural tests follow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "detector.h"
#include "err.h"

static void test_lifecycle(void **unused)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    detector_t *d = NULL;
    assert_int_equal(detector_create(&d, &cfg, 0), ERR_INVAL);
    assert_int_equal(detector_create(&d, &cfg, 2), 0);
    float x[2] = {1.0f, 2.0f};
    struct detector_result res;
    assert_int_equal(detector_step(d, x, NULL, &res), 0);
    assert_int_equal(res.state, DET_LEARNING);
    detector_destroy(d);
    detector_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

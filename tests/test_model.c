/* tests/test_model.c: unit tests of model/ (placeholder while the engine is written). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "model.h"

static void test_create(void **state)
{
    struct model_config cfg;
    model_t *m;
    model_config_default(&cfg, 8, 8);
    assert_int_equal(model_create(&m, &cfg), 0);
    model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_create)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

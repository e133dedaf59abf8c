/* tests/test_model.c: unit tests of model/.
 *
 * Kernels are checked against the plain loops of model/ref.c, gradients against central
 * finite differences, serving paths (step, batched step, forecast) against each other and the
 * training forward, training against the persistence forecast on a synthetic process, and the
 * byte formats against truncation and corruption. Tolerances are stated where they are used.
 * Every test frees what it allocates.
 *
 * The tests are in tests/test_model_<topic>.c (kernels, serve, train, io, f16), their shared
 * fixtures in tests/test_model_fx.c; main() runs them file by file, in the order of the single
 * file they were moved from (the fixtures' random stream is shared, so the order matters). */

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
#include "test_parts.h"

int main(void)
{
    const struct test_part parts[] = {
        {model_kernels_tests, model_kernels_count}, {model_serve_tests, model_serve_count},
        {model_train_tests, model_train_count},     {model_io_tests, model_io_count},
        {model_f16_tests, model_f16_count},
    };
    return test_parts_run(parts, sizeof parts / sizeof parts[0], NULL);
}

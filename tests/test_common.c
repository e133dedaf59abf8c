/* tests/test_common.c: unit tests of common/ (timestamps, durations, bucket aggregates, batches,
 * the name index, monotonic condition variables).
 *
 * The tests are in tests/test_common_<topic>.c (time, batch, nice, nameidx, mcond), declared in
 * tests/test_common_fx.h; main() runs them file by file, in the order of the single file they
 * were moved from; err_from_errno's test (common/err.c) is here, after them. */

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "agg.h"
#include "batch.h"
#include "err.h"
#include "mcond.h"
#include "nameidx.h"
#include "nice.h"
#include "sbuf.h"
#include "vtime.h"
#include "test_common_fx.h"
#include "test_parts.h"

/* err_from_errno: the full volume, the passing shortage (a 503 with Retry-After: 1 to a
 * client), and everything else. */
static void test_err_from_errno(void **state)
{
    (void)state;
    assert_int_equal(err_from_errno(ENOSPC), ERR_NOSPACE);
    assert_int_equal(err_from_errno(EDQUOT), ERR_NOSPACE);
    assert_int_equal(err_from_errno(EMFILE), ERR_RESOURCE);
    assert_int_equal(err_from_errno(ENFILE), ERR_RESOURCE);
    assert_int_equal(err_from_errno(ENOMEM), ERR_RESOURCE);
    assert_int_equal(err_from_errno(EACCES), ERR_IO);
    assert_int_equal(err_from_errno(EIO), ERR_IO);
    assert_string_not_equal(err_str(ERR_RESOURCE), "unknown error");
}

static const struct CMUnitTest common_err_tests[] = {cmocka_unit_test(test_err_from_errno)};

int main(void)
{
    const struct test_part parts[] = {
        {common_time_tests, common_time_count},
        {common_batch_tests, common_batch_count},
        {common_nice_tests, common_nice_count},
        {common_nameidx_tests, common_nameidx_count},
        {common_mcond_tests, common_mcond_count},
        {common_err_tests, sizeof common_err_tests / sizeof common_err_tests[0]},
    };
    return test_parts_run(parts, sizeof parts / sizeof parts[0], NULL);
}

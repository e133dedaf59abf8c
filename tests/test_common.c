/* tests/test_common.c: unit tests of common/ (timestamps, durations, bucket aggregates, batches,
 * the name index, monotonic condition variables).
 *
 * The tests are in tests/test_common_<topic>.c (time, batch, nice, nameidx, mcond), declared in
 * tests/test_common_fx.h; main() runs them file by file, in the order of the single file they
 * were moved from. */

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

int main(void)
{
    const struct test_part parts[] = {
        {common_time_tests, common_time_count},   {common_batch_tests, common_batch_count},
        {common_nice_tests, common_nice_count},   {common_nameidx_tests, common_nameidx_count},
        {common_mcond_tests, common_mcond_count},
    };
    return test_parts_run(parts, sizeof parts / sizeof parts[0], NULL);
}

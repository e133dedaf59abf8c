/* tests/test_common_mcond.c: unit tests of common/mcond.c (monotonic-clock condition
 * variables: adding milliseconds, deadlines) and vtime's monotonic seconds.
 * Part of test_common: tests/test_common.c runs them, in the order of the single file they were
 * moved from. */

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

/* mcond_add_ms carries whole seconds out of tv_nsec: the result is normalised (tv_nsec in
 * [0, 1e9)) whatever the milliseconds, and equals the sum counted in nanoseconds. */
static void test_mcond_add_ms(void **state)
{
    (void)state;
    const long nsecs[] = {0, 1, 999999, 500000000, 999000000, 999999999};
    const int64_t msecs[] = {0, 1, 999, 1000, 1001, 1500, 86400123, INT64_C(1) << 40};
    for (size_t i = 0; i < sizeof nsecs / sizeof nsecs[0]; i++) {
        for (size_t j = 0; j < sizeof msecs / sizeof msecs[0]; j++) {
            struct timespec ts = {.tv_sec = 100, .tv_nsec = nsecs[i]};
            mcond_add_ms(&ts, msecs[j]);
            assert_in_range(ts.tv_nsec, 0, 999999999);
            /* 100 s + nsec + ms, as (seconds, nanoseconds) without overflow at 2^40 ms */
            int64_t want_ns = nsecs[i] + (msecs[j] % 1000) * 1000000;
            int64_t want_s = 100 + msecs[j] / 1000 + want_ns / 1000000000;
            assert_int_equal(ts.tv_sec, want_s);
            assert_int_equal(ts.tv_nsec, want_ns % 1000000000);
        }
    }
    struct timespec ts = {.tv_sec = 7, .tv_nsec = 999999999};
    mcond_add_ms(&ts, 1);
    assert_int_equal(ts.tv_sec, 8);
    assert_int_equal(ts.tv_nsec, 999999);
}

/* vtime_mono_s is vtime_mono_ms's clock in seconds (the durations notify.c, writer.c and
 * retention.c log): read between two vtime_mono_ms readings, it lies between them (ms truncate,
 * so the upper bound takes one more ms). */
static void test_vtime_mono_s(void **state)
{
    (void)state;
    int64_t before = vtime_mono_ms();
    double s = vtime_mono_s();
    int64_t after = vtime_mono_ms();
    assert_true((double)before <= s * 1000.0 && s * 1000.0 < (double)(after + 1));
}

/* mcond_deadline is on CLOCK_MONOTONIC (between the monotonic time before the call and after
 * it, plus ms; a negative ms counts as 0), and a condition variable of mcond_init times out at
 * it: pthread_cond_timedwait on a CLOCK_REALTIME variable would take that monotonic deadline as
 * a time decades ago and return ETIMEDOUT at once too, so the wait's end is checked on the
 * monotonic clock. */
static void test_mcond_deadline(void **state)
{
    (void)state;
    const int64_t ms = 20;
    struct timespec t0, dl, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mcond_deadline(&dl, ms);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    mcond_add_ms(&t0, ms);
    mcond_add_ms(&t1, ms);
    int64_t lo = t0.tv_sec * INT64_C(1000000000) + t0.tv_nsec;
    int64_t hi = t1.tv_sec * INT64_C(1000000000) + t1.tv_nsec;
    int64_t at = dl.tv_sec * INT64_C(1000000000) + dl.tv_nsec;
    assert_true(lo <= at && at <= hi);

    struct timespec neg;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mcond_deadline(&neg, -5000);
    assert_true(neg.tv_sec > t0.tv_sec || (neg.tv_sec == t0.tv_sec && neg.tv_nsec >= t0.tv_nsec));

    pthread_cond_t cv;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    assert_int_equal(mcond_init(&cv), 0);
    pthread_mutex_lock(&mu);
    mcond_deadline(&dl, ms);
    int rc;
    while ((rc = pthread_cond_timedwait(&cv, &mu, &dl)) == 0)
        ; /* a spurious wake-up: wait on */
    pthread_mutex_unlock(&mu);
    assert_int_equal(rc, ETIMEDOUT);
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    assert_true(end.tv_sec > dl.tv_sec || (end.tv_sec == dl.tv_sec && end.tv_nsec >= dl.tv_nsec));
    pthread_cond_destroy(&cv);
    pthread_mutex_destroy(&mu);
}

const struct CMUnitTest common_mcond_tests[] = {
    cmocka_unit_test(test_vtime_mono_s),
    cmocka_unit_test(test_mcond_add_ms),
    cmocka_unit_test(test_mcond_deadline),
};
const size_t common_mcond_count = sizeof common_mcond_tests / sizeof common_mcond_tests[0];

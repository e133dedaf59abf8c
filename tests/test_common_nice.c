/* tests/test_common_nice.c: unit tests of common/nice.c (a thread created niced).
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

/* A thread's nice value is set before thread_create_niced returns, without waiting for the
 * thread to run its function (it is held on a mutex meanwhile). */
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static void *held_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&held);
    pthread_mutex_unlock(&held);
    return NULL;
}

/* How many of this process's threads have nice value n (from /proc/self/task/<tid>/stat). */
static int threads_at_nice(int n)
{
    DIR *dir = opendir("/proc/self/task");
    assert_non_null(dir);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        const char *p = strrchr(buf, ')'); /* fields after the command name; nice is the 17th */
        assert_non_null(p);
        p++;
        for (int field = 0; field < 16 && p; field++)
            p = strchr(p + 1, ' ');
        assert_non_null(p);
        count += atoi(p + 1) == n;
    }
    closedir(dir);
    return count;
}

static void test_thread_create_niced(void **state)
{
    (void)state;
    int base = getpriority(PRIO_PROCESS, 0);
    int n = base <= 16 ? 3 : 19 - base; /* nice stops at 19 */
    if (n == 0)
        fail_msg("the test runs at nice 19: no higher value to check");
    int before = threads_at_nice(base + n);
    pthread_t t[3];
    pthread_mutex_lock(&held);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(thread_create_niced(&t[i], n, held_main, NULL), 0);
        assert_int_equal(threads_at_nice(base + n), before + i + 1);
    }
    pthread_mutex_unlock(&held);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(getpriority(PRIO_PROCESS, 0), base); /* the caller's is unchanged */
}

const struct CMUnitTest common_nice_tests[] = {
    cmocka_unit_test(test_thread_create_niced),
};
const size_t common_nice_count = sizeof common_nice_tests / sizeof common_nice_tests[0];

/* tests/test_parts.h: a unit-test binary whose tests live in several topic files runs their
 * tables as one cmocka group, file by file in the order given (the order of the single file
 * they were split from: some share a random stream or fixtures' state). Include after
 * <cmocka.h>. Header-only: each test binary has one main(). */
#ifndef VIGIL_TEST_PARTS_H
#define VIGIL_TEST_PARTS_H

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>

struct test_part {
    const struct CMUnitTest *tests;
    size_t n;
};

/* Runs parts[0..nparts) as one group. filter_env, when not NULL, names an environment variable
 * (VIGIL_TEST_ONLY, DETECTOR_TESTS) whose value, when set, is a shell pattern (fnmatch: `*`, `?`,
 * `[...]`; cmocka's own filter knows only `*` and `?`) so that only the tests whose names match
 * run. A pattern that matches no test fails, naming the variable and the pattern: cmocka would
 * run 0 tests and exit 0, so a mistyped filter (or a renamed test) looked green. Returns cmocka's
 * count of failed tests, 1 when out of memory or when the filter matched no test. */
static inline int test_parts_run(const struct test_part *parts, size_t nparts,
                                 const char *filter_env)
{
    const char *filter = filter_env ? getenv(filter_env) : NULL;
    size_t total = 0;
    for (size_t p = 0; p < nparts; p++)
        total += parts[p].n;
    struct CMUnitTest *tests = malloc(total * sizeof *tests);
    if (tests == NULL)
        return 1;
    size_t n = 0;
    for (size_t p = 0; p < nparts; p++)
        for (size_t i = 0; i < parts[p].n; i++)
            if (filter == NULL || fnmatch(filter, parts[p].tests[i].name, 0) == 0)
                tests[n++] = parts[p].tests[i];
    if (n == 0 && filter != NULL) {
        fprintf(stderr, "%s=\"%s\" matches none of the %zu tests: nothing run\n", filter_env,
                filter, total);
        free(tests);
        return 1;
    }
    int rc = _cmocka_run_group_tests("tests", tests, n, NULL, NULL);
    free(tests);
    return rc;
}

#endif

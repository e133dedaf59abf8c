/* tests/test_parts.h: a unit-test binary whose tests live in several topic files runs their
 * tables as one cmocka group, file by file in the order given (the order of the single file
 * they were split from: some share a random stream or fixtures' state). Include after
 * <cmocka.h>. Header-only: each test binary has one main(). */
#ifndef VIGIL_TEST_PARTS_H
#define VIGIL_TEST_PARTS_H

#include <stdlib.h>
#include <string.h>

struct test_part {
    const struct CMUnitTest *tests;
    size_t n;
};

/* Runs parts[0..nparts) as one group; filter, when not NULL, is a cmocka test filter pattern
 * (e.g. from an environment variable) so that only matching tests run. Returns cmocka's count
 * of failed tests, or 1 when out of memory. */
static inline int test_parts_run(const struct test_part *parts, size_t nparts, const char *filter)
{
    size_t total = 0;
    for (size_t p = 0; p < nparts; p++)
        total += parts[p].n;
    struct CMUnitTest *tests = malloc(total * sizeof *tests);
    if (tests == NULL)
        return 1;
    size_t n = 0;
    for (size_t p = 0; p < nparts; p++) {
        memcpy(tests + n, parts[p].tests, parts[p].n * sizeof *tests);
        n += parts[p].n;
    }
    if (filter != NULL)
        cmocka_set_test_filter(filter);
    int rc = _cmocka_run_group_tests("tests", tests, total, NULL, NULL);
    free(tests);
    return rc;
}

#endif

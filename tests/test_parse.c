/* tests/test_parse.c: unit tests of the ingest parsers (api/parse.h): InfluxDB line protocol
 * and JSON readings. Values are compared exactly: a parsed "0.1" must be the double 0.1.
 *
 * The tests are in tests/test_parse_<topic>.c (lp, json, quote), their shared fixtures in
 * tests/test_parse_fx.c; main() runs them file by file, in the order of the single file they
 * were moved from. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "batch.h"
#include "err.h"
#include "influxql.h"
#include "parse.h"
#include "sbuf.h"
#include "vtime.h"
#include "test_parse_fx.h"

int main(void)
{
    const struct {
        const struct CMUnitTest *tests;
        size_t n;
    } parts[] = {
        {parse_lp_tests, parse_lp_count},
        {parse_json_tests, parse_json_count},
        {parse_quote_tests, parse_quote_count},
    };
    enum { N_PARTS = sizeof parts / sizeof parts[0] };
    size_t total = 0;
    for (size_t p = 0; p < N_PARTS; p++)
        total += parts[p].n;
    struct CMUnitTest *tests = malloc(total * sizeof *tests);
    if (tests == NULL)
        return 1;
    size_t n = 0;
    for (size_t p = 0; p < N_PARTS; p++)
        for (size_t k = 0; k < parts[p].n; k++)
            tests[n++] = parts[p].tests[k];
    int rc = _cmocka_run_group_tests("tests", tests, total, NULL, NULL);
    free(tests);
    return rc;
}

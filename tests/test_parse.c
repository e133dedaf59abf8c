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
#include "test_parts.h"

int main(void)
{
    const struct test_part parts[] = {
        {parse_lp_tests, parse_lp_count},
        {parse_json_tests, parse_json_count},
        {parse_quote_tests, parse_quote_count},
    };
    return test_parts_run(parts, sizeof parts / sizeof parts[0], NULL);
}

/* tests/test_parse_fx.h: what the parts of test_parse share: the fixtures of
 * tests/test_parse_fx.c and each part's test table (run by tests/test_parse.c's main). Include
 * after <cmocka.h>, "batch.h" and "parse.h". */
#ifndef VIGIL_TEST_PARSE_FX_H
#define VIGIL_TEST_PARSE_FX_H

#include <stddef.h>
#include <stdint.h>

#define NOW 1795860000123LL /* 2026-11-28T10:00:00.123Z */

const char *point_device(const batch_t *b, size_t i);
double field(const batch_t *b, size_t i, const char *name);
void assert_double_exact(double got, double want);

extern const struct CMUnitTest parse_lp_tests[];
extern const size_t parse_lp_count;
extern const struct CMUnitTest parse_json_tests[];
extern const size_t parse_json_count;
extern const struct CMUnitTest parse_quote_tests[];
extern const size_t parse_quote_count;

#endif

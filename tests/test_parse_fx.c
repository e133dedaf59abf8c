/* tests/test_parse_fx.c: fixtures shared by the parts of test_parse (tests/test_parse_*.c).
 * Moved whole from tests/test_parse.c; declared in tests/test_parse_fx.h. */

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

const char *point_device(const batch_t *b, size_t i)
{
    return batch_str(b, b->points[i].device);
}

/* The value of channel name in point i; fails the test when absent. */
double field(const batch_t *b, size_t i, const char *name)
{
    const batch_point_t *p = &b->points[i];
    for (uint32_t k = p->field0; k < p->field0 + p->nfields; k++)
        if (strcmp(batch_str(b, b->fields[k].name), name) == 0)
            return b->fields[k].value;
    fail_msg("point %zu has no field '%s'", i, name);
    return 0;
}

/* Asserts exact equality of doubles, bit for bit (so 0.0 and -0.0 differ). */
void assert_double_exact(double got, double want)
{
    if (memcmp(&got, &want, sizeof got) != 0)
        fail_msg("got %.17g, want %.17g", got, want);
}

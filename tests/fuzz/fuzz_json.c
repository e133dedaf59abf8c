/* tests/fuzz/fuzz_json.c: libFuzzer target of the JSON readings parser (api/parse.h,
 * parse_json_readings), the body of POST /v1/readings. Any input must parse or be refused
 * without a crash, leak or undefined behaviour; what it accepts must be consistent (every
 * point has fields, every value is finite, every name passes batch_name_check). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "err.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static parse_errors_t errs;
    batch_t b;
    char errmsg[200];
    size_t nitems = 0;
    batch_init(&b);
    memset(&errs, 0, sizeof errs);
    /* The parser takes (pointer, length): no NUL terminator is promised, so none is given. */
    int rc = parse_json_readings(&b, (const char *)data, size, 1795860000123LL, 1000, &nitems,
                                 &errs, errmsg, sizeof errmsg);
    if (rc != 0 && rc != ERR_INVAL && rc != ERR_LIMIT && rc != ERR_NOMEM)
        abort();
    if (rc == ERR_LIMIT && b.npoints != 0)
        abort(); /* over max_items: nothing is added */
    if (errs.kept > PARSE_ERRORS_KEEP || errs.kept > errs.count)
        abort();
    for (size_t i = 0; i < b.npoints; i++) {
        const batch_point_t *p = &b.points[i];
        const char *why;
        if (p->nfields == 0 || p->field0 + p->nfields > b.nfields ||
            batch_name_check(batch_str(&b, p->device), p->device_len, &why) != 0)
            abort();
        for (uint32_t k = 0; k < p->nfields; k++) {
            const batch_field_t *f = &b.fields[p->field0 + k];
            if (!isfinite(f->value) || batch_name_check(batch_str(&b, f->name), f->name_len, &why))
                abort();
        }
    }
    batch_deinit(&b);
    return 0;
}

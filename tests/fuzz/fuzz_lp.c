/* tests/fuzz/fuzz_lp.c: libFuzzer target of the InfluxDB line-protocol parser (api/parse.h,
 * lp_parse), the body of POST /write and the stream socket's lines. The first byte picks the
 * options (precision, line limit, device tag), the rest is the body. Any input must parse or
 * be refused line by line without a crash, leak or undefined behaviour, and what is accepted
 * must be consistent (fields present, values finite, names valid, one point per line at most). */
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
    static const char *const tags[] = {"device", "host", "d", ""};
    if (size < 1)
        return 0;
    /* Bits 0, 1 and 5 pick one of the six precisions, bits 6 and 7 the unit declared or implied
     * (by /write without precision=, or the stream). */
    lp_opts_t o = {tags[(data[0] >> 2) & 3],
                   (lp_precision_t)(((data[0] & 3) | ((data[0] >> 3) & 4)) % (LP_H + 1)),
                   (data[0] & 0x10) ? 64 : 0, (lp_unit_t)((data[0] >> 6) % 3)};
    if (o.device_tag[0] == '\0')
        o.device_tag = "device";
    data++;
    size--;
    /* A copy of exactly size bytes, so ASan catches a read past the end of the body. */
    char *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    memcpy(body, data, size);
    batch_t b;
    batch_init(&b);
    memset(&errs, 0, sizeof errs);
    int rc = lp_parse(&b, body, size, &o, 1795860000123LL, 1, &errs);
    if (rc != 0 && rc != ERR_NOMEM)
        abort();
    if (errs.kept > PARSE_ERRORS_KEEP || errs.kept > errs.count)
        abort();
    uint32_t last_item = 0;
    for (size_t i = 0; i < b.npoints; i++) {
        const batch_point_t *p = &b.points[i];
        const char *why;
        if (p->nfields == 0 || p->field0 + p->nfields > b.nfields || p->item <= last_item ||
            batch_name_check(batch_str(&b, p->device), p->device_len, &why) != 0)
            abort();
        last_item = p->item;
        for (uint32_t k = 0; k < p->nfields; k++) {
            const batch_field_t *f = &b.fields[p->field0 + k];
            if (!isfinite(f->value) || batch_name_check(batch_str(&b, f->name), f->name_len, &why))
                abort();
        }
    }
    /* One line on its own, as the stream socket parses it. */
    const char *nl = memchr(body, '\n', size);
    size_t l1 = nl ? (size_t)(nl - body) : size;
    char errmsg[200];
    batch_reset(&b);
    rc = lp_parse_line(&b, body, l1, &o, 1795860000123LL, 1, errmsg, sizeof errmsg);
    if ((rc != 0 && rc != ERR_INVAL && rc != ERR_NOMEM) || b.npoints > 1)
        abort();
    if (rc == ERR_INVAL && (b.npoints != 0 || memchr(errmsg, '\0', sizeof errmsg) == NULL))
        abort();
    batch_deinit(&b);
    free(body);
    return 0;
}

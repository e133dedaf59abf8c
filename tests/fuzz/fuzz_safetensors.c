/* tests/fuzz/fuzz_safetensors.c: libFuzzer target of the safetensors importer (model/model.h,
 * model_safetensors_import_why), the body of PUT /v1/devices/{id}/model/weights. Any input
 * must be imported or refused (ERR_CORRUPT, ERR_NOMEM) without a crash, an out-of-bounds read or
 * a leak, a refused one with its reason said; a model it accepts must export and import again to
 * the same weights. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    model_t *m = NULL;
    /* The reasons too (session 67): a refused file always says why, cut to the buffer and
     * NUL-terminated; a small buffer exercises the truncation. The first byte picks its size. */
    char why[512];
    size_t cap = size && (data[0] & 1) ? 24 : sizeof why;
    memset(why, 'x', sizeof why);
    why[0] = '\0';
    int rc = model_safetensors_import_why(&m, buf, size, why, cap);
    free(buf);
    if (rc == ERR_CORRUPT && (why[0] == '\0' || strnlen(why, cap) >= cap))
        abort();
    if (rc == 0) {
        size_t n = model_safetensors_size(m), len = 0;
        uint8_t *out = malloc(n);
        model_t *m2 = NULL;
        if (!out || model_safetensors_export(m, out, n, &len) != 0 || len != n ||
            model_safetensors_import(&m2, out, len) != 0)
            abort();
        /* Same weights: the checkpoints of both are identical. */
        size_t c1 = model_checkpoint_size(m), c2 = model_checkpoint_size(m2), l1, l2;
        uint8_t *k1 = malloc(c1), *k2 = malloc(c2);
        if (!k1 || !k2 || c1 != c2 || model_checkpoint_save(m, k1, c1, &l1) ||
            model_checkpoint_save(m2, k2, c2, &l2) || memcmp(k1, k2, c1) != 0)
            abort();
        free(k1);
        free(k2);
        free(out);
        model_destroy(m2);
        model_destroy(m);
    } else if (rc != ERR_CORRUPT && rc != ERR_NOMEM) {
        abort();
    }
    return 0;
}

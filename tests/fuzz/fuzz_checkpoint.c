/* tests/fuzz/fuzz_checkpoint.c: libFuzzer target of vigil's checkpoint loader (model/model.h,
 * model_checkpoint_load), which reads model versions back from the database. Each input is
 * loaded twice: as it is, and with its length field and CRC-32 made consistent, so the fuzzer
 * also reaches the shape and value checks behind the CRC (random bytes almost never carry a
 * valid CRC). Whatever loads must save back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "internal.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *buf, size_t len)
{
    model_t *m = NULL;
    int rc = model_checkpoint_load(&m, buf, len);
    if (rc == 0) {
        size_t n = model_checkpoint_size(m), got = 0;
        uint8_t *out = malloc(n);
        if (!out || n != len || model_checkpoint_save(m, out, n, &got) != 0 || got != len ||
            memcmp(out, buf, len) != 0)
            abort(); /* a loaded checkpoint saves back bit for bit */
        free(out);
        model_destroy(m);
    } else if (rc != ERR_CORRUPT && rc != ERR_INVAL && rc != ERR_NOMEM) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copies: ASan reports any read past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    check(buf, size);
    if (size >= 52) {
        for (int i = 0; i < 8; i++)
            buf[40 + i] = (uint8_t)((uint64_t)size >> (8 * i));
        uint32_t crc = model__crc32(0, buf, size - 4);
        for (int i = 0; i < 4; i++)
            buf[size - 4 + i] = (uint8_t)(crc >> (8 * i));
        check(buf, size);
    }
    free(buf);
    return 0;
}

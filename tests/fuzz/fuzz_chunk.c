/* tests/fuzz/fuzz_chunk.c: libFuzzer target of the storage chunk codec (storage/chunk.c), which
 * decodes every readings row read back from the database, so a damaged file reaches it.
 *
 * The first byte chooses the mode:
 *   even: the rest is t0 (8 bytes, little-endian) and a chunk, decoded from an exact-size copy;
 *         whatever decodes has npoints strictly increasing timestamps from t0, each with at
 *         least one value in increasing idx order, and encodes and decodes again to the same
 *         cells, bit for bit; a decode of a selection of channels (the first byte's bits 1-7:
 *         idx selected when bit 1 + idx % 7 is set, for idx < 64) fails exactly when the full
 *         decode fails, and otherwise gives the full decode's cells of those channels;
 *   odd:  the rest describes cells (per cell: a step byte, an idx byte, 8 value bytes), built
 *         sorted and unique; they must encode and decode back bit for bit.
 * Seeds: fuzz_seeds writes chunks the encoder made (every value mode, bitmaps, sparse channel
 * numbers, timestamps at both ends of int64) in both modes into build-fuzz/fuzz-seeds/chunk, so
 * the even mode mutates real rows from the first run instead of waiting for the odd mode's
 * output to be found. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "storage_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_cells(const store_cell_t *a, const store_cell_t *b, size_t m)
{
    for (size_t i = 0; i < m; i++)
        if (a[i].ts != b[i].ts || a[i].idx != b[i].idx || memcmp(&a[i].v, &b[i].v, sizeof a[i].v))
            return 0;
    return 1;
}

/* Encodes the m cells and decodes them again: the same cells, or abort. */
static void roundtrip(const store_cell_t *cells, size_t m)
{
    store_codec_t enc = {0}, dec = {0};
    const unsigned char *out;
    size_t len, nc, np;
    const store_cell_t *back;
    int rc = store__chunk_encode(&enc, cells, m, &out, &len);
    if (rc == ERR_NOMEM)
        goto done;
    if (rc != 0)
        abort(); /* sorted, unique, in range: the encoder must take them */
    unsigned char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        goto done;
    memcpy(copy, out, len);
    rc = store__chunk_decode(&dec, cells[0].ts, copy, len, NULL, 0, &back, &nc, &np);
    free(copy);
    if (rc == ERR_NOMEM)
        goto done;
    if (rc != 0 || nc != m || !same_cells(cells, back, m))
        abort();
done:
    store__codec_free(&enc);
    store__codec_free(&dec);
}

/* Decodes buf with the selection of mode byte sel and checks it against the full decode's
 * outcome rc and cells (nc of them, np points). */
static void decode_masked(int64_t t0, const unsigned char *buf, size_t size, unsigned sel, int rc,
                          const store_cell_t *full, size_t nc, size_t np)
{
    enum { NWANT = 64 };
    unsigned char want[NWANT];
    for (size_t i = 0; i < NWANT; i++)
        want[i] = (unsigned char)(sel >> (1 + i % 7) & 1);
    store_codec_t dec = {0};
    const store_cell_t *cells;
    size_t mnc, mnp;
    int mrc = store__chunk_decode(&dec, t0, buf, size, want, NWANT, &cells, &mnc, &mnp);
    if (mrc == ERR_NOMEM || rc == ERR_NOMEM)
        goto done;
    if ((mrc == 0) != (rc == 0))
        abort(); /* refused under one selection and not under another */
    if (rc == 0) {
        size_t k = 0;
        if (mnp != np)
            abort();
        for (size_t i = 0; i < nc; i++) {
            if ((uint64_t)full[i].idx >= NWANT || !want[full[i].idx])
                continue;
            if (k >= mnc || !same_cells(&full[i], &cells[k], 1))
                abort();
            k++;
        }
        if (k != mnc)
            abort();
    }
done:
    store__codec_free(&dec);
}

static void decode_raw(unsigned sel, const uint8_t *data, size_t size)
{
    if (size < 8)
        return;
    uint64_t t0 = 0;
    for (int i = 0; i < 8; i++)
        t0 |= (uint64_t)data[i] << (8 * i);
    size -= 8;
    unsigned char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return;
    memcpy(buf, data + 8, size);
    store_codec_t dec = {0};
    const store_cell_t *cells = NULL;
    size_t nc = 0, np = 0;
    int rc = store__chunk_decode(&dec, (int64_t)t0, buf, size, NULL, 0, &cells, &nc, &np);
    decode_masked((int64_t)t0, buf, size, sel, rc, cells, nc, np);
    if (rc == 0) {
        size_t points = 1;
        if (nc < np || nc == 0 || cells[0].ts != (int64_t)t0)
            abort();
        for (size_t i = 1; i < nc; i++) {
            if (cells[i].ts < cells[i - 1].ts ||
                (cells[i].ts == cells[i - 1].ts && cells[i].idx <= cells[i - 1].idx))
                abort(); /* sorted by (ts, idx), unique */
            points += cells[i].ts != cells[i - 1].ts;
        }
        if (points != np)
            abort();
        store_cell_t *copy = malloc(nc * sizeof *copy);
        if (copy) {
            memcpy(copy, cells, nc * sizeof *copy);
            roundtrip(copy, nc);
            free(copy);
        }
    } else if (rc != ERR_CORRUPT && rc != ERR_NOMEM) {
        abort();
    }
    store__codec_free(&dec);
    free(buf);
}

static void encode_cells(const uint8_t *data, size_t size)
{
    size_t m = size / 10;
    if (m == 0)
        return;
    store_cell_t *cells = malloc(m * sizeof *cells);
    if (cells == NULL)
        return;
    int64_t ts = 1732780800000LL;
    for (size_t i = 0; i < m; i++) {
        const uint8_t *p = data + 10 * i;
        /* step 0 adds a channel to the same point, above the last idx; otherwise a new point. */
        unsigned step = p[0] & 7;
        if (i > 0 && step == 0) {
            cells[i].ts = ts;
            cells[i].idx = cells[i - 1].idx + 1 + (p[1] & 15);
        } else {
            ts += i > 0 ? (int64_t)step * (p[0] >> 3 ? p[0] >> 3 : 1) : 0;
            cells[i].ts = ts;
            cells[i].idx = p[1] & 31;
        }
        memcpy(&cells[i].v, p + 2, sizeof cells[i].v);
    }
    roundtrip(cells, m);
    free(cells);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        encode_cells(data + 1, size - 1);
    else
        decode_raw(data[0], data + 1, size - 1);
    return 0;
}

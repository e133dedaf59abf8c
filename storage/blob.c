/* storage/blob.c: the exact coding of one (channel idx, value) pair: the readings rows of
 * schema 1-2 (one per device and timestamp), which the migration to schema 3 reads, and the
 * fallback value coding of chunk.c (a channel whose values are not all short decimals).
 *
 * Format of a schema 2 row: a sequence of pairs with strictly increasing channel idx. A pair
 * is a tag byte, kind << 5 | i, where i is the idx when it is below 31; otherwise i is 31 and a
 * LEB128 varint of idx - 31 follows the tag. Then the value, by kind:
 *   0..4  DECIMAL: the value is (double)k / 10^kind exactly, with k in [-2^34, 2^34): the
 *         LEB128 varint of zigzag(k), 1 to 5 bytes;
 *   5     FLOAT: the value is a float exactly: its 4 bytes, little-endian;
 *   6     RAW: the double's 8 bytes, little-endian;
 *   7     never written (a malformed blob).
 * Sensor values are mostly short decimals (71.2, 0.031, 1500), which the double stores only
 * approximately; k and the number of decimals give them back, since IEEE division is correctly
 * rounded and (double)k / 10^d is the double nearest to the decimal. The encoder keeps a
 * decimal form only after checking that decoding it yields the very same bits, so every value
 * (-0.0, subnormals, 0.1 + 0.2, 1e300) comes back bit-identical. A float (-0.0, values from
 * 32-bit sensors) takes 4 bytes; what no short form reproduces is stored raw. The encoder takes
 * the fewest decimals that work, and a float over a 5-byte decimal. A channel of the first 31
 * with a two-decimal value below 81.92 in magnitude takes 3 bytes instead of the 9 of
 * (varint idx, raw double).
 *
 * Invariants: a pair never refers to the previous one; decoding gives back the encoded bits.
 *
 * Threads: pure functions, any thread. */
#include "storage_int.h"
#include "varint_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

enum {
    KIND_FLOAT = 5,
    KIND_RAW = 6,
    MAX_DECIMALS = 4,
    IDX_INLINE = 31, /* idx below this lives in the tag */
    IDX_VARINT_MAX = 9,
    K_VARINT_MAX = 5,
};
/* |k| bound of the decimal kinds: zigzag(k) < 2^35 fits a 5-byte varint. */
#define K_LIMIT ((int64_t)1 << 34)

static const double pow10_tab[MAX_DECIMALS + 1] = {1, 10, 100, 1000, 10000};

static void le_put(unsigned char *p, uint64_t bits, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(bits >> (8 * i));
}

static uint64_t le_get(const unsigned char *p, int n)
{
    uint64_t bits = 0;
    for (int i = n - 1; i >= 0; i--)
        bits = bits << 8 | p[i];
    return bits;
}

static int same_bits(double a, double b)
{
    uint64_t x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    return x == y;
}

/* Writes the shortest exact form of v at p; returns its kind and sets *len. */
static unsigned value_put(unsigned char *p, double v, size_t *len)
{
    int found = 0;
    unsigned d;
    uint64_t z = 0;
    for (d = 0; d <= MAX_DECIMALS; d++) {
        double x = v * pow10_tab[d];
        if (!(fabs(x) < (double)K_LIMIT)) /* and larger d only grows it */
            break;
        int64_t k = (int64_t)nearbyint(x);
        if (k < -K_LIMIT || k >= K_LIMIT)
            break;
        /* The decoder's very expression: the form is kept only if it gives back v's bits. */
        if (same_bits((double)k / pow10_tab[d], v)) {
            z = k < 0 ? ~((uint64_t)k << 1) : (uint64_t)k << 1;
            found = 1;
            break;
        }
    }
    /* A decimal of 1 to 4 varint bytes beats everything; one of 5 loses to a float. */
    if (found && z < (uint64_t)1 << 28) {
        *len = store__varint_put(p, z);
        return d;
    }
    if (fabs(v) <= FLT_MAX) {
        float f = (float)v;
        if (same_bits((double)f, v)) {
            uint32_t bits;
            memcpy(&bits, &f, sizeof bits);
            le_put(p, bits, 4);
            *len = 4;
            return KIND_FLOAT;
        }
    }
    if (found) {
        *len = store__varint_put(p, z);
        return d;
    }
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    le_put(p, bits, 8);
    *len = 8;
    return KIND_RAW;
}

/* Reads a value of the given kind at *pp (advancing it). Returns 0, or -1 if malformed. */
static int value_get(unsigned kind, const unsigned char **pp, const unsigned char *end, double *v)
{
    const unsigned char *p = *pp;
    if (kind <= MAX_DECIMALS) {
        uint64_t z;
        if (store__varint_get(&p, end, K_VARINT_MAX, &z))
            return -1;
        int64_t h = (int64_t)(z >> 1);
        int64_t k = z & 1 ? -h - 1 : h;
        *v = (double)k / pow10_tab[kind];
    } else if (kind == KIND_FLOAT) {
        if (end - p < 4)
            return -1;
        uint32_t bits = (uint32_t)le_get(p, 4);
        float f;
        memcpy(&f, &bits, sizeof f);
        *v = f;
        p += 4;
    } else if (kind == KIND_RAW) {
        if (end - p < 8)
            return -1;
        uint64_t bits = le_get(p, 8);
        memcpy(v, &bits, sizeof *v);
        p += 8;
    } else {
        return -1;
    }
    *pp = p;
    return 0;
}

size_t store__pair_put(unsigned char *p, int64_t idx, double v)
{
    size_t n = 1, len;
    unsigned i = (unsigned)idx;
    if (idx >= IDX_INLINE) {
        i = IDX_INLINE;
        n += store__varint_put(p + 1, (uint64_t)idx - IDX_INLINE);
    }
    unsigned kind = value_put(p + n, v, &len);
    p[0] = (unsigned char)(kind << 5 | i);
    return n + len;
}

int store__pair_get(const unsigned char **pp, const unsigned char *end, int64_t *idx, double *v)
{
    const unsigned char *p = *pp;
    if (p >= end)
        return -1;
    unsigned tag = *p++;
    uint64_t i = tag & 31;
    if (i == IDX_INLINE) {
        uint64_t x;
        if (store__varint_get(&p, end, IDX_VARINT_MAX, &x) || x > (uint64_t)INT64_MAX - IDX_INLINE)
            return -1;
        i += x;
    }
    if (value_get(tag >> 5, &p, end, v))
        return -1;
    *idx = (int64_t)i;
    *pp = p;
    return 0;
}

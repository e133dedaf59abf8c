/* storage/varint_int.h: the LEB128 varints of the row codings (blob.c, chunk.c, pending.c),
 * inline. Kept apart from storage_int.h because only the files that code rows use them. Not part
 * of the public API. */
#ifndef VIGIL_VARINT_INT_H
#define VIGIL_VARINT_INT_H

#include <stddef.h>
#include <stdint.h>

/* LEB128 varints of the row codings (blob.c, chunk.c): 7 bits a byte, low bits first. */
static inline size_t store__varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* Reads a varint of at most maxbytes (<= 10) bytes from *pp, not past end, advancing *pp.
 * Returns 0, or -1 when truncated or too long (*pp unchanged). */
static inline int store__varint_get(const unsigned char **pp, const unsigned char *end,
                                    int maxbytes, uint64_t *out)
{
    const unsigned char *p = *pp;
    uint64_t x = 0;
    for (int i = 0; i < maxbytes; i++) {
        if (p >= end)
            return -1;
        x |= (uint64_t)(*p & 0x7f) << (7 * i);
        if (!(*p++ & 0x80)) {
            *out = x;
            *pp = p;
            return 0;
        }
    }
    return -1;
}

#endif

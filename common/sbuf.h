/* common/sbuf.h: a growable byte string, for building response bodies and metrics text.
 * Not thread-safe; one owner at a time. */
#ifndef VIGIL_SBUF_H
#define VIGIL_SBUF_H

#include <stddef.h>

typedef struct sbuf {
    char *data; /* NUL-terminated when len > 0 or after any append */
    size_t len, cap;
    int oom; /* set once an append failed; later appends are no-ops */
} sbuf_t;

/* Initialises an empty buffer (no allocation). */
void sbuf_init(sbuf_t *s);

/* Frees the buffer's memory. NULL is a no-op. */
void sbuf_deinit(sbuf_t *s);

/* Appends bytes / a formatted string. Returns 0, or ERR_NOMEM (and sets oom). */
int sbuf_append(sbuf_t *s, const char *p, size_t n);
int sbuf_printf(sbuf_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Takes the data out of the buffer: caller owns the returned pointer (free with free()); the
 * buffer is left empty. Returns NULL when the buffer is empty or out of memory; out of memory,
 * the emptied buffer keeps oom set, so the caller can tell the two apart. */
char *sbuf_steal(sbuf_t *s, size_t *len);

#endif

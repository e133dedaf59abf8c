/* common/sbuf.c: growable byte strings; see sbuf.h. */
#include "sbuf.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(sbuf_t *s)
{
    memset(s, 0, sizeof *s);
}

void sbuf_deinit(sbuf_t *s)
{
    if (s == NULL)
        return;
    free(s->data);
    sbuf_init(s);
}

static int reserve(sbuf_t *s, size_t extra)
{
    if (s->oom)
        return ERR_NOMEM;
    if (s->len + extra + 1 <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->len + extra + 1)
        cap *= 2;
    char *p = realloc(s->data, cap);
    if (p == NULL) {
        s->oom = 1;
        return ERR_NOMEM;
    }
    s->data = p;
    s->cap = cap;
    return 0;
}

int sbuf_append(sbuf_t *s, const char *p, size_t n)
{
    if (reserve(s, n))
        return ERR_NOMEM;
    memcpy(s->data + s->len, p, n);
    s->len += n;
    s->data[s->len] = '\0';
    return 0;
}

int sbuf_printf(sbuf_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(s, (size_t)n))
        return ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf(s->data + s->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
    return 0;
}

char *sbuf_steal(sbuf_t *s, size_t *len)
{
    if (s->oom || s->data == NULL) {
        int oom = s->oom;
        sbuf_deinit(s);
        s->oom = oom; /* the caller tells "out of memory" from "empty" by it (api__body's 500) */
        return NULL;
    }
    char *p = s->data;
    if (len)
        *len = s->len;
    sbuf_init(s);
    return p;
}

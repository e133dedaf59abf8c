/* common/batch.c: growable batches of readings; see batch.h. Single-threaded by contract. */
#include "batch.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

void batch_init(batch_t *b)
{
    memset(b, 0, sizeof *b);
}

void batch_deinit(batch_t *b)
{
    if (b == NULL)
        return;
    free(b->str);
    free(b->points);
    free(b->fields);
    batch_init(b);
}

void batch_reset(batch_t *b)
{
    b->str_len = b->npoints = b->nfields = 0;
    b->open = 0;
}

/* Grows *arr so it holds at least need elements of size sz. */
static int batch_grow(void **arr, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * sz);
    if (p == NULL)
        return ERR_NOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

/* Copies len bytes plus a NUL into str; returns the offset through *off. */
static int str_put(batch_t *b, const char *s, size_t len, uint32_t *off)
{
    if (b->str_len + len + 1 > UINT32_MAX)
        return ERR_NOMEM;
    if (batch_grow((void **)&b->str, &b->str_cap, b->str_len + len + 1, 1))
        return ERR_NOMEM;
    memcpy(b->str + b->str_len, s, len);
    b->str[b->str_len + len] = '\0';
    *off = (uint32_t)b->str_len;
    b->str_len += len + 1;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not one: no
 * overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xC2 && c <= 0xDF   ? 2
                 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

int batch_name_check(const char *s, size_t len, const char **why)
{
    if (len == 0) {
        *why = "is empty";
        return ERR_INVAL;
    }
    if (len > BATCH_NAME_MAX) {
        *why = "is longer than 200 bytes";
        return ERR_INVAL;
    }
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            *why = "contains a control character";
            return ERR_INVAL;
        }
        size_t n = utf8_seq((const unsigned char *)s + i, len - i);
        if (n == 0) {
            *why = "is not valid UTF-8";
            return ERR_INVAL;
        }
        i += n;
    }
    return 0;
}

int batch_point_begin(batch_t *b, const char *device, size_t len, int64_t ts_ms, uint32_t item)
{
    if (b->open)
        batch_point_abort(b);
    if (batch_grow((void **)&b->points, &b->points_cap, b->npoints + 1, sizeof *b->points))
        return ERR_NOMEM;
    batch_point_t *p = &b->points[b->npoints];
    size_t str_mark = b->str_len;
    if (str_put(b, device, len, &p->device)) {
        b->str_len = str_mark;
        return ERR_NOMEM;
    }
    p->device_len = (uint32_t)len;
    p->ts_ms = ts_ms;
    p->field0 = (uint32_t)b->nfields;
    p->nfields = 0;
    p->item = item;
    b->open = 1;
    return 0;
}

int batch_field_add(batch_t *b, const char *name, size_t len, double value)
{
    batch_point_t *p = &b->points[b->npoints];
    /* Points carry a handful of fields, so a linear scan for a repeated name is cheapest. */
    for (uint32_t i = p->field0; i < p->field0 + p->nfields; i++) {
        batch_field_t *f = &b->fields[i];
        if (f->name_len == len && memcmp(b->str + f->name, name, len) == 0) {
            f->value = value;
            return 0;
        }
    }
    if (batch_grow((void **)&b->fields, &b->fields_cap, b->nfields + 1, sizeof *b->fields))
        return ERR_NOMEM;
    batch_field_t *f = &b->fields[b->nfields];
    if (str_put(b, name, len, &f->name))
        return ERR_NOMEM;
    f->name_len = (uint32_t)len;
    f->value = value;
    b->nfields++;
    p->nfields++;
    return 0;
}

int batch_point_commit(batch_t *b)
{
    if (!b->open)
        return 0;
    b->open = 0;
    if (b->points[b->npoints].nfields == 0) {
        b->str_len = b->points[b->npoints].device;
        return 0;
    }
    b->npoints++;
    return 1;
}

void batch_point_abort(batch_t *b)
{
    if (!b->open)
        return;
    batch_point_t *p = &b->points[b->npoints];
    b->nfields = p->field0;
    b->str_len = p->device;
    b->open = 0;
}

size_t batch_points_filter(batch_t *b, size_t first, batch_keep_fn keep, void *arg)
{
    /* Fields are packed in point order, so a kept point's fields only ever move down: nf never
     * passes the field0 of the point being examined, whose fields are intact when keep sees
     * it. */
    size_t np = first, nf = first < b->npoints ? b->points[first].field0 : b->nfields;
    for (size_t i = first; i < b->npoints; i++) {
        if (!keep(arg, &b->points[i], i))
            continue;
        batch_point_t p = b->points[i];
        memmove(&b->fields[nf], &b->fields[p.field0], p.nfields * sizeof *b->fields);
        p.field0 = (uint32_t)nf;
        nf += p.nfields;
        b->points[np++] = p;
    }
    size_t removed = b->npoints - np;
    b->npoints = np;
    b->nfields = nf;
    return removed;
}

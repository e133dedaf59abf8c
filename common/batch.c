/* common/batch.c: growable batches of readings; see batch.h. Single-threaded by contract.
 *
 * A channel named twice in one point keeps the last value at its first position. Points
 * usually carry 1-16 fields, which a linear scan checks fastest; from BATCH_HASH_MIN fields on,
 * the open point's names are indexed in a hash table (hslots), so a point with tens of
 * thousands of fields (a /write body has no line limit) costs linear time, not quadratic. The
 * table only ever describes the open point: begin, commit, abort and reset empty it (hsize = 0)
 * without touching its memory, and it is rebuilt from the point's fields when needed. */
#include "batch.h"
#include "err.h"
#include "nameidx.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Fields an open point gets before its names are indexed. */
#define BATCH_HASH_MIN 16

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
    free(b->hslots);
    batch_init(b);
}

void batch_reset(batch_t *b)
{
    b->str_len = b->npoints = b->nfields = 0;
    b->open = 0;
    b->hsize = 0;
    b->unique = 0;
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

size_t batch_name_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max)
        return n;
    /* s[max] is the first byte left out: while it continues a character, that character is
     * cut, so it is left out whole. */
    for (n = max; n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80; n--)
        ;
    return n;
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
    b->hsize = 0;
    b->unique = 0;
    return 0;
}

/* FNV-1a from a seed, then murmur3's finalizer (nameidx_hash_seeded). Names come from clients: with
 * FNV-1a alone, whose low bits depend only on the low bits of every step, a client makes thousands
 * of names with one home slot in a second and the probes are quadratic again. So the start is a
 * secret seed drawn once a batch (table_seed) and the finalizer spreads every bit of the
 * state into the slot's. */
static uint32_t name_hash(uint32_t seed, const char *s, size_t len)
{
    return (uint32_t)nameidx_hash_seeded(0xcbf29ce484222325ULL ^ seed, s, len);
}

/* A fresh seed for a table: from getrandom, or (it failing) the clock and an address. */
static uint32_t table_seed(const void *addr)
{
    uint32_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed)
        return seed;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)ts.tv_nsec ^ (uint32_t)(uintptr_t)addr ^ 2166136261u;
}

/* Slot of name in the open point's table: the one holding it, or the empty one where it goes. */
static size_t hash_find(const batch_t *b, const batch_point_t *p, const char *name, size_t len,
                        uint32_t h)
{
    size_t mask = b->hsize - 1;
    for (size_t s = h & mask;; s = (s + 1) & mask) {
        uint32_t v = b->hslots[s];
        if (v == 0)
            return s;
        const batch_field_t *f = &b->fields[p->field0 + v - 1];
        if (f->name_len == len && memcmp(b->str + f->name, name, len) == 0)
            return s;
    }
}

/* Makes the open point's table hold at least n + 1 names at most half full, rebuilding it from
 * the point's fields when it is empty or too small. Returns 0, or ERR_NOMEM with the table as
 * it was (hsize 0 stays 0: the caller then has no table to use). */
static int hash_reserve(batch_t *b, const batch_point_t *p, size_t n)
{
    if (b->hsize != 0 && 2 * (n + 1) <= b->hsize)
        return 0;
    size_t size = b->hsize ? b->hsize : 64;
    while (2 * (n + 1) > size)
        size *= 2;
    if (batch_grow((void **)&b->hslots, &b->hcap, size, sizeof *b->hslots))
        return ERR_NOMEM;
    memset(b->hslots, 0, size * sizeof *b->hslots);
    b->hsize = size;
    if (b->hseed == 0) /* once a batch: a syscall per table would cost the 16-64 field point */
        b->hseed = table_seed(b->hslots);
    /* The point's names are distinct, so each goes to the first empty slot of its probe. */
    for (uint32_t i = 0; i < p->nfields; i++) {
        const batch_field_t *f = &b->fields[p->field0 + i];
        size_t mask = size - 1, s = name_hash(b->hseed, b->str + f->name, f->name_len) & mask;
        while (b->hslots[s] != 0)
            s = (s + 1) & mask;
        b->hslots[s] = i + 1;
    }
    return 0;
}

/* Appends a new field to the open point. Returns 0 or ERR_NOMEM (nothing added). */
static inline int field_append(batch_t *b, batch_point_t *p, const char *name, size_t len,
                               double value)
{
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

/* batch_field_add for a point of BATCH_HASH_MIN fields or more, through the table. Kept out of
 * line so the usual small point's path stays as short as before. */
static __attribute__((noinline)) int field_add_indexed(batch_t *b, batch_point_t *p,
                                                       const char *name, size_t len, double value)
{
    /* Reserve first: a rebuild moves every slot, so the one found must come after it. */
    if (hash_reserve(b, p, p->nfields))
        return ERR_NOMEM;
    size_t s = hash_find(b, p, name, len, name_hash(b->hseed, name, len));
    if (b->hslots[s] != 0) {
        b->fields[p->field0 + b->hslots[s] - 1].value = value;
        return 0;
    }
    if (field_append(b, p, name, len, value))
        return ERR_NOMEM;
    b->hslots[s] = p->nfields; /* 1 + the new field's index within the point */
    return 0;
}

int batch_field_add(batch_t *b, const char *name, size_t len, double value)
{
    batch_point_t *p = &b->points[b->npoints];
    if (p->nfields >= BATCH_HASH_MIN)
        return field_add_indexed(b, p, name, len, value);
    for (uint32_t i = p->field0; i < p->field0 + p->nfields; i++) {
        batch_field_t *f = &b->fields[i];
        if (f->name_len == len && memcmp(b->str + f->name, name, len) == 0) {
            f->value = value;
            return 0;
        }
    }
    return field_append(b, p, name, len, value);
}

int batch_point_commit(batch_t *b)
{
    if (!b->open)
        return 0;
    b->open = 0;
    b->hsize = 0;
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
    b->hsize = 0;
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

/* Slot of point i's key (device, timestamp) in a table of size slots (0: empty, else 1 + the
 * index of the key's first point): the one holding it, or the empty one where it goes. */
static size_t key_find(const batch_t *b, const uint32_t *slots, size_t size, uint32_t seed,
                       size_t i)
{
    const batch_point_t *p = &b->points[i];
    const uint64_t h = nameidx_hash_seeded((uint64_t)p->ts_ms * 0x9e3779b97f4a7c15ULL ^ seed,
                                           b->str + p->device, p->device_len);
    for (size_t s = h & (size - 1);; s = (s + 1) & (size - 1)) {
        if (slots[s] == 0)
            return s;
        const batch_point_t *q = &b->points[slots[s] - 1];
        if (q->ts_ms == p->ts_ms && q->device_len == p->device_len &&
            memcmp(b->str + q->device, b->str + p->device, p->device_len) == 0)
            return s;
    }
}

int batch_merge_same_ts(batch_t *b, size_t *merged)
{
    *merged = 0;
    if (b->npoints < 2 || b->open || b->unique == b->npoints)
        return 0;
    size_t size = 64;
    while (size < 2 * b->npoints)
        size *= 2;
    /* slots, then next[npoints] (the key's next point, 0: none) and tail[npoints] (a first
     * point's last one so far), indexes plus 1. */
    uint32_t *slots = calloc(size + 2 * b->npoints, sizeof *slots);
    if (slots == NULL)
        return ERR_NOMEM;
    uint32_t *next = slots + size, *tail = next + b->npoints;
    const uint32_t seed = table_seed(slots);
    size_t dups = 0;
    for (size_t i = 0; i < b->npoints; i++) {
        size_t s = key_find(b, slots, size, seed, i);
        if (slots[s] == 0) {
            slots[s] = (uint32_t)i + 1;
            tail[i] = (uint32_t)i + 1;
            continue;
        }
        uint32_t first = slots[s] - 1;
        next[tail[first] - 1] = (uint32_t)i + 1;
        tail[first] = (uint32_t)i + 1;
        tail[i] = 0; /* not a first point */
        dups++;
    }
    if (dups == 0) {
        free(slots);
        b->unique = b->npoints;
        return 0;
    }
    /* Rebuilt through batch_field_add, which keeps a channel once with its later value. */
    batch_t nb;
    batch_init(&nb);
    int rc = 0;
    for (size_t i = 0; i < b->npoints && rc == 0; i++) {
        if (tail[i] == 0)
            continue;
        const batch_point_t *p = &b->points[i];
        rc = batch_point_begin(&nb, b->str + p->device, p->device_len, p->ts_ms, p->item);
        for (uint32_t j = (uint32_t)i + 1; j != 0 && rc == 0; j = next[j - 1]) {
            const batch_point_t *q = &b->points[j - 1];
            for (uint32_t f = q->field0; f < q->field0 + q->nfields && rc == 0; f++)
                rc = batch_field_add(&nb, b->str + b->fields[f].name, b->fields[f].name_len,
                                     b->fields[f].value);
        }
        if (rc == 0)
            batch_point_commit(&nb);
    }
    free(slots);
    if (rc) {
        batch_deinit(&nb);
        return ERR_NOMEM;
    }
    batch_deinit(b);
    *b = nb;
    b->unique = b->npoints;
    *merged = dups;
    return 0;
}

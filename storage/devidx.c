/* storage/devidx.c: the writer's index of devices by name, for the per-point lookup.
 *
 * Why: w->devs (uthash) lets buckets grow to about ten entries before it doubles, so a lookup
 * walked a chain of devices and read each one's hash handle: at 10k devices one cache miss per
 * chain entry, and dev_find took 12 % of the writer's time (docs/benchmarks.md, "Session 5").
 * This index is open addressing with linear probing at load at most 1/2, and each slot holds
 * the name's 64-bit hash beside the device pointer: a lookup reads one slot (usually one cache
 * line) and then only the device it returns. Since a slot's place depends on the name alone,
 * write_batch prefetches the slots of points a few ahead (store__devidx_prefetch).
 *
 * Invariants: every device of w->devs is in the index exactly once (dev_add, the deletion in
 * do_delete and store__maps_free keep them equal); no slot between a device's home slot and its
 * slot is empty (deletion shifts later entries back instead of leaving tombstones); count * 2 <=
 * mask + 1.
 *
 * Threads: writer thread only (and store_open, before the writer starts). */
#include "storage_int.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

#define DEVIDX_MIN 64

uint64_t store__devidx_hash(const char *name, size_t len)
{
    /* FNV-1a, then a 64-bit finalizer (murmur3's fmix64) so the low bits used for the slot
     * depend on every byte. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

store_dev_t *store__devidx_find(const store_devidx_t *x, uint64_t h, const char *name, size_t len)
{
    if (x->slots == NULL)
        return NULL;
    for (size_t i = (size_t)h & x->mask;; i = (i + 1) & x->mask) {
        const store_dslot_t *sl = &x->slots[i];
        if (sl->d == NULL)
            return NULL;
        if (sl->hash == h && sl->d->len == len && memcmp(sl->d->name, name, len) == 0)
            return sl->d;
    }
}

void store__devidx_prefetch(const store_devidx_t *x, uint64_t h)
{
    if (x->slots != NULL)
        __builtin_prefetch(&x->slots[(size_t)h & x->mask]);
}

store_dev_t *store__devidx_peek(const store_devidx_t *x, uint64_t h)
{
    if (x->slots == NULL)
        return NULL;
    for (size_t i = (size_t)h & x->mask;; i = (i + 1) & x->mask) {
        const store_dslot_t *sl = &x->slots[i];
        if (sl->d == NULL || sl->hash == h)
            return sl->d;
    }
}

static void put(store_dslot_t *slots, size_t mask, uint64_t h, store_dev_t *d)
{
    size_t i = (size_t)h & mask;
    while (slots[i].d != NULL)
        i = (i + 1) & mask;
    slots[i].hash = h;
    slots[i].d = d;
}

int store__devidx_add(store_devidx_t *x, store_dev_t *d)
{
    size_t cap = x->slots ? x->mask + 1 : 0;
    if ((x->count + 1) * 2 > cap) {
        size_t ncap = cap ? cap * 2 : DEVIDX_MIN;
        store_dslot_t *n = calloc(ncap, sizeof *n);
        if (n == NULL)
            return ERR_NOMEM;
        for (size_t i = 0; i < cap; i++)
            if (x->slots[i].d != NULL)
                put(n, ncap - 1, x->slots[i].hash, x->slots[i].d);
        free(x->slots);
        x->slots = n;
        x->mask = ncap - 1;
    }
    put(x->slots, x->mask, store__devidx_hash(d->name, d->len), d);
    x->count++;
    return 0;
}

void store__devidx_del(store_devidx_t *x, const store_dev_t *d)
{
    if (x->slots == NULL)
        return;
    size_t i = (size_t)store__devidx_hash(d->name, d->len) & x->mask;
    while (x->slots[i].d != d) {
        if (x->slots[i].d == NULL)
            return; /* not indexed */
        i = (i + 1) & x->mask;
    }
    /* Backward-shift deletion: an entry after the hole moves into it unless its home slot lies
     * cyclically in (hole, its slot], so every entry stays reachable from its home slot. */
    size_t hole = i;
    for (size_t j = (i + 1) & x->mask; x->slots[j].d != NULL; j = (j + 1) & x->mask) {
        size_t home = (size_t)x->slots[j].hash & x->mask;
        if (((j - home) & x->mask) >= ((j - hole) & x->mask)) {
            x->slots[hole] = x->slots[j];
            hole = j;
        }
    }
    x->slots[hole].d = NULL;
    x->slots[hole].hash = 0;
    x->count--;
}

void store__devidx_clear(store_devidx_t *x)
{
    free(x->slots);
    x->slots = NULL;
    x->mask = 0;
    x->count = 0;
}

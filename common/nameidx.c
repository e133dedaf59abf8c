/* common/nameidx.c: the index of items by name; see nameidx.h (invariants, threads). The core
 * of storage/devidx.c, moved here so that the writer, the pipeline and the quota share it. */
#include "nameidx.h"
#include "err.h"

#include <stdlib.h>
#include <sys/random.h>

#define NAMEIDX_MIN 64

int nameidx_init_seeded(nameidx_t *x)
{
    uint64_t seed = 0;
    int fallback = getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed;
    x->slots = NULL;
    x->mask = 0;
    x->count = 0;
    /* A drawn 0 (one chance in 2^64) would leave the index unusable: take the fallback then. */
    x->seed = fallback || seed == 0 ? NAMEIDX_FALLBACK_SEED : seed;
    return fallback;
}

void nameidx_deinit(nameidx_t *x)
{
    free(x->slots);
    x->slots = NULL;
    x->mask = 0;
    x->count = 0;
}

void nameidx_free(nameidx_t *x, void (*free_item)(void *item))
{
    for (size_t i = 0; x->slots && i <= x->mask; i++)
        if (x->slots[i].item != NULL)
            free_item(x->slots[i].item);
    nameidx_deinit(x);
}

uint64_t nameidx_hash_seeded(uint64_t seed, const char *name, size_t len)
{
    uint64_t h = seed;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

void *nameidx_peek_key(const nameidx_t *x, nameidx_key_t k)
{
    uint64_t h = k.h;
    if (x->slots == NULL || k.seed != x->seed)
        return NULL;
    for (size_t i = (size_t)h & x->mask;; i = (i + 1) & x->mask) {
        const nameidx_slot_t *sl = &x->slots[i];
        if (sl->item == NULL || sl->hash == h)
            return sl->item;
    }
}

static void put(nameidx_slot_t *slots, size_t mask, uint64_t h, void *item)
{
    size_t i = (size_t)h & mask;
    while (slots[i].item != NULL)
        i = (i + 1) & mask;
    slots[i].hash = h;
    slots[i].item = item;
}

int nameidx_add_key(nameidx_t *x, nameidx_key_t k, void *item)
{
    uint64_t h = k.h;
    if (k.seed != x->seed || x->seed == 0)
        return ERR_INVAL;
    size_t cap = x->slots ? x->mask + 1 : 0;
    if ((x->count + 1) * 2 > cap) {
        size_t ncap = cap ? cap * 2 : NAMEIDX_MIN;
        nameidx_slot_t *n = calloc(ncap, sizeof *n);
        if (n == NULL)
            return ERR_NOMEM;
        for (size_t i = 0; i < cap; i++)
            if (x->slots[i].item != NULL)
                put(n, ncap - 1, x->slots[i].hash, x->slots[i].item);
        free(x->slots);
        x->slots = n;
        x->mask = ncap - 1;
    }
    put(x->slots, x->mask, h, item);
    x->count++;
    return 0;
}

void nameidx_del_key(nameidx_t *x, nameidx_key_t k, const void *item)
{
    uint64_t h = k.h;
    if (x->slots == NULL || k.seed != x->seed)
        return;
    size_t i = (size_t)h & x->mask;
    while (x->slots[i].item != item) {
        if (x->slots[i].item == NULL)
            return; /* not indexed */
        i = (i + 1) & x->mask;
    }
    /* Backward-shift deletion: an entry after the hole moves into it unless its home slot lies
     * cyclically in (hole, its slot], so every entry stays reachable from its home slot. */
    size_t hole = i;
    for (size_t j = (i + 1) & x->mask; x->slots[j].item != NULL; j = (j + 1) & x->mask) {
        size_t home = (size_t)x->slots[j].hash & x->mask;
        if (((j - home) & x->mask) >= ((j - hole) & x->mask)) {
            x->slots[hole] = x->slots[j];
            hole = j;
        }
    }
    x->slots[hole].item = NULL;
    x->slots[hole].hash = 0;
    x->count--;
}

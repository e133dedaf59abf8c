/* common/nameidx.h: an index of items by name, for lookups on the ingest path.
 *
 * Open addressing with linear probing at load at most 1/2; each slot holds the name's 64-bit
 * hash beside the item's pointer, so a lookup usually reads one slot (one cache line) and then
 * only the item it returns, where a chained table (uthash) reads one item per chain entry: at
 * 10k-100k devices a cache miss each. The index does not own the items and keeps no names: the
 * caller hashes a name with nameidx_hash and, for a lookup, says how an item's name compares
 * (nameidx_find's same()). Since a slot's place depends on the hash alone, a caller may
 * prefetch the slot of a name it will look up soon (nameidx_prefetch).
 *
 * Invariants: no slot between an item's home slot (hash & mask) and its slot is empty
 * (deletion shifts later entries back instead of leaving tombstones); count * 2 <= mask + 1.
 *
 * Threads: not thread-safe; one owner at a time, or readers under the owner's lock.
 * nameidx_hash: any thread. */
#ifndef VIGIL_NAMEIDX_H
#define VIGIL_NAMEIDX_H

#include <stddef.h>
#include <stdint.h>

typedef struct nameidx_slot {
    uint64_t hash;
    void *item; /* NULL: the slot is empty */
} nameidx_slot_t;

typedef struct nameidx {
    nameidx_slot_t *slots; /* mask + 1 of them (a power of two), or NULL while empty */
    size_t mask, count;
} nameidx_t;

/* 1 when item's name is the len bytes at name, else 0. */
typedef int (*nameidx_same_fn)(const void *item, const char *name, size_t len);

/* An empty index (no allocation; all zero is empty too). */
void nameidx_init(nameidx_t *x);

/* Frees the slots (not the items); the index is then empty and may be used again. */
void nameidx_deinit(nameidx_t *x);

/* nameidx_deinit for an index that owns its items: free_item(item) for each, then the slots. */
void nameidx_free(nameidx_t *x, void (*free_item)(void *item));

/* The hash of a name: FNV-1a, then murmur3's 64-bit finalizer so the low bits used for the
 * slot depend on every byte. Any thread. */
uint64_t nameidx_hash(const char *name, size_t len);

/* The same from another start than FNV's: a table fed names by clients that must not be able
 * to pick colliding ones (batch's field names) starts from a secret seed. Any thread. */
uint64_t nameidx_hash_seeded(uint64_t seed, const char *name, size_t len);

/* Adds item (not NULL) under hash h, which must be nameidx_hash of its name; an item must not
 * be added twice. Returns 0, or ERR_NOMEM (the index is then unchanged). */
int nameidx_add(nameidx_t *x, uint64_t h, void *item);

/* Removes item, added under hash h. An item not in the index is a no-op. */
void nameidx_del(nameidx_t *x, uint64_t h, const void *item);

/* The item named name (len bytes, hash h), or NULL. Inline so that same() is inlined too. */
static inline void *nameidx_find(const nameidx_t *x, uint64_t h, const char *name, size_t len,
                                 nameidx_same_fn same)
{
    if (x->slots == NULL)
        return NULL;
    for (size_t i = (size_t)h & x->mask;; i = (i + 1) & x->mask) {
        const nameidx_slot_t *sl = &x->slots[i];
        if (sl->item == NULL)
            return NULL;
        if (sl->hash == h && same(sl->item, name, len))
            return sl->item;
    }
}

/* The first item with hash h, without comparing names (NULL if none): the item nameidx_find
 * will most likely return, for prefetching it. */
void *nameidx_peek(const nameidx_t *x, uint64_t h);

/* Prefetches the home slot of hash h. */
static inline void nameidx_prefetch(const nameidx_t *x, uint64_t h)
{
    if (x->slots != NULL)
        __builtin_prefetch(&x->slots[(size_t)h & x->mask]);
}

#endif

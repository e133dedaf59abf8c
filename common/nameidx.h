/* common/nameidx.h: an index of items by name, for lookups on the ingest path.
 *
 * Open addressing with linear probing at load at most 1/2; each slot holds the name's 64-bit
 * hash beside the item's pointer, so a lookup usually reads one slot (one cache line) and then
 * only the item it returns, where a chained table (uthash) reads one item per chain entry: at
 * 10k-100k devices a cache miss each. The index does not own the items and keeps no names: the
 * caller asks the index for a name's key and, for a lookup, says how an item's name compares
 * (nameidx_find_key's same()). Since a slot's place depends on the key alone, a caller may
 * prefetch the slot of a name it will look up soon (nameidx_prefetch_key).
 *
 * Every index has its own secret seed (nameidx_init_seeded), so a client that picks the names
 * (devices sent to the daemon) cannot make them share a slot: the index hashes (nameidx_key),
 * and every call takes the key it made. A key carries the seed it was made with and an index
 * refuses a key of another seed (found nothing, not added, not removed), so no caller can hash
 * with one seed and look up in an index with another. An index all zero (never given a seed)
 * is empty and refuses every add; nameidx_init_seeded makes it usable.
 *
 * Invariants: no slot between an item's home slot (hash & mask) and its slot is empty
 * (deletion shifts later entries back instead of leaving tombstones); count * 2 <= mask + 1.
 *
 * Threads: not thread-safe; one owner at a time, or readers under the owner's lock.
 * nameidx_hash_seeded, nameidx_key, nameidx_init_seeded: any thread. */
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
    uint64_t seed; /* the secret the index hashes with; 0 only before nameidx_init_seeded */
} nameidx_t;

/* A name's hash as an index made it (nameidx_key): valid in every index of the same seed. */
typedef struct nameidx_key {
    uint64_t h;
    uint64_t seed;
} nameidx_key_t;

/* 1 when item's name is the len bytes at name, else 0. */
typedef int (*nameidx_same_fn)(const void *item, const char *name, size_t len);

/* An empty index with a secret seed of its own: 64 bits from getrandom, or, only when
 * getrandom fails (a kernel before 3.17, a seccomp filter, or EAGAIN early at boot: the call
 * does not wait for the kernel's pool), the fixed NAMEIDX_FALLBACK_SEED, which is public and so
 * protects nothing. No allocation. Returns 0, or 1 when the fallback was taken (the index works
 * either way; pipeline_create logs it). Any thread. */
int nameidx_init_seeded(nameidx_t *x);

#define NAMEIDX_FALLBACK_SEED 0x9e3779b97f4a7c15ULL

/* Frees the slots (not the items); the index is then empty, keeps its seed, and may be used
 * again. */
void nameidx_deinit(nameidx_t *x);

/* nameidx_deinit for an index that owns its items: free_item(item) for each, then the slots. */
void nameidx_free(nameidx_t *x, void (*free_item)(void *item));

/* The hash of a name from a start: FNV-1a from seed (FNV's own start is 0xcbf29ce484222325),
 * then murmur3's 64-bit finalizer so the low bits used for a slot depend on every byte. A table
 * fed names by clients that must not be able to pick colliding ones starts from a secret seed
 * (nameidx_key; batch's field names). Any thread. */
uint64_t nameidx_hash_seeded(uint64_t seed, const char *name, size_t len);

/* The key of a name in x: its hash with x's seed, and the seed. Any thread (reads only the
 * seed, which never changes after init). */
static inline nameidx_key_t nameidx_key(const nameidx_t *x, const char *name, size_t len)
{
    nameidx_key_t k = {nameidx_hash_seeded(0xcbf29ce484222325ULL ^ x->seed, name, len), x->seed};
    return k;
}

/* Adds item (not NULL) under key k, which must be nameidx_key(x, its name); an item must not
 * be added twice. Returns 0, ERR_INVAL for a key of another seed than x's or for an index
 * never seeded, or ERR_NOMEM (the index is then unchanged). */
int nameidx_add_key(nameidx_t *x, nameidx_key_t k, void *item);

/* Removes item, added under key k. An item not in the index, or a key of another seed, is a
 * no-op. */
void nameidx_del_key(nameidx_t *x, nameidx_key_t k, const void *item);

/* The item named name (len bytes, key k), or NULL (also for a key of another seed). Inline so
 * that same() is inlined too. */
static inline void *nameidx_find_key(const nameidx_t *x, nameidx_key_t k, const char *name,
                                     size_t len, nameidx_same_fn same)
{
    if (x->slots == NULL || k.seed != x->seed)
        return NULL;
    for (size_t i = (size_t)k.h & x->mask;; i = (i + 1) & x->mask) {
        const nameidx_slot_t *sl = &x->slots[i];
        if (sl->item == NULL)
            return NULL;
        if (sl->hash == k.h && same(sl->item, name, len))
            return sl->item;
    }
}

/* The first item with key k, without comparing names (NULL if none, or for a key of another
 * seed): the item nameidx_find_key will most likely return, for prefetching it. */
void *nameidx_peek_key(const nameidx_t *x, nameidx_key_t k);

/* Prefetches the home slot of key k. */
static inline void nameidx_prefetch_key(const nameidx_t *x, nameidx_key_t k)
{
    if (x->slots != NULL)
        __builtin_prefetch(&x->slots[(size_t)k.h & x->mask]);
}

#endif

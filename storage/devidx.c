/* storage/devidx.c: the writer's index of devices by name, for the per-point lookup.
 *
 * Why: w->devs (uthash) lets buckets grow to about ten entries before it doubles, so a lookup
 * walked a chain of devices and read each one's hash handle: at 10k devices one cache miss per
 * chain entry, and dev_find took 12 % of the writer's time (docs/benchmarks.md, "Session 5").
 * The index is common/nameidx.h's (open addressing, the name's hash beside the device pointer);
 * these wrappers give it store_dev_t's names. Since a slot's place depends on the name alone,
 * write_batch prefetches the slots of points a few ahead (store__devidx_prefetch).
 *
 * Clients choose the device names (/write, /api/v1/write, the stream socket), so the index is
 * a seeded nameidx (nameidx_init_seeded: a secret seed of its own, drawn at the store's first
 * map load and kept for the life of the store): with a public hash a client could brute-force
 * names sharing one home slot, and each of their points would then probe the whole chain. The
 * writer hashes a name once with the index's key (store__devidx_key) and passes that key to
 * every call, and takes the bucket values of its uthash tables from it (writer.c).
 *
 * Invariant: every device of w->devs is in the index exactly once (dev_add, the deletion in
 * do_delete and store__maps_free keep them equal).
 *
 * Threads: writer thread only (and store_open, before the writer starts); store__devidx_key:
 * any thread (it reads only the seed). */
#include "log.h"
#include "storage_int.h"

#include <string.h>

static int dev_same(const void *item, const char *name, size_t len)
{
    const store_dev_t *d = item;
    return d->len == len && memcmp(d->name, name, len) == 0;
}

void store__devidx_init(store_devidx_t *x)
{
    if (nameidx_init_seeded(x) != 0)
        log_warn("storage: getrandom failed; the device index hashes names with the public "
                 "fallback seed (common/nameidx.h)");
}

store_dev_t *store__devidx_find(const store_devidx_t *x, nameidx_key_t k, const char *name,
                                size_t len)
{
    return nameidx_find_key(x, k, name, len, dev_same);
}

void store__devidx_prefetch(const store_devidx_t *x, nameidx_key_t k)
{
    nameidx_prefetch_key(x, k);
}

store_dev_t *store__devidx_peek(const store_devidx_t *x, nameidx_key_t k)
{
    return nameidx_peek_key(x, k);
}

int store__devidx_add(store_devidx_t *x, nameidx_key_t k, store_dev_t *d)
{
    return nameidx_add_key(x, k, d);
}

void store__devidx_del(store_devidx_t *x, nameidx_key_t k, const store_dev_t *d)
{
    nameidx_del_key(x, k, d);
}

void store__devidx_clear(store_devidx_t *x)
{
    nameidx_deinit(x);
}

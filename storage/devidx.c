/* storage/devidx.c: the writer's index of devices by name, for the per-point lookup.
 *
 * Why: w->devs (uthash) lets buckets grow to about ten entries before it doubles, so a lookup
 * walked a chain of devices and read each one's hash handle: at 10k devices one cache miss per
 * chain entry, and dev_find took 12 % of the writer's time (docs/benchmarks.md, "Session 5").
 * The index is common/nameidx.h's (open addressing, the name's hash beside the device pointer);
 * these wrappers give it store_dev_t's names. Since a slot's place depends on the name alone,
 * write_batch prefetches the slots of points a few ahead (store__devidx_prefetch).
 *
 * Clients choose the device names (/write, /api/v1/write, the stream socket), so the names are
 * hashed from a secret seed (store__devidx_hash): with the public nameidx_hash a client could
 * brute-force names sharing one home slot, and each of their points would then probe the whole
 * chain. The seed is drawn once a process (getrandom; the public NAMEIDX_FALLBACK_SEED, logged,
 * only if that fails) and never changes after. It is the process's, not the index's own
 * (nameidx_init_seeded), because write_batch hashes names through store__devidx_hash without
 * the index at hand; the index is an unseeded nameidx_t given these hashes.
 *
 * Invariant: every device of w->devs is in the index exactly once (dev_add, the deletion in
 * do_delete and store__maps_free keep them equal).
 *
 * Threads: writer thread only (and store_open, before the writer starts); store__devidx_hash:
 * any thread. */
#include "log.h"
#include "storage_int.h"

#include <pthread.h>
#include <string.h>

/* Set once (seed_draw, through pthread_once), read only after: only its seed is used. */
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;
static nameidx_t seed_src;

static void seed_draw(void)
{
    if (nameidx_init_seeded(&seed_src) != 0)
        log_warn("storage: getrandom failed; the device index hashes names with the public "
                 "fallback seed (common/nameidx.h)");
}

static int dev_same(const void *item, const char *name, size_t len)
{
    const store_dev_t *d = item;
    return d->len == len && memcmp(d->name, name, len) == 0;
}

uint64_t store__devidx_hash(const char *name, size_t len)
{
    pthread_once(&seed_once, seed_draw);
    return nameidx_key(&seed_src, name, len).h;
}

store_dev_t *store__devidx_find(const store_devidx_t *x, uint64_t h, const char *name, size_t len)
{
    return nameidx_find(x, h, name, len, dev_same);
}

void store__devidx_prefetch(const store_devidx_t *x, uint64_t h)
{
    nameidx_prefetch(x, h);
}

store_dev_t *store__devidx_peek(const store_devidx_t *x, uint64_t h)
{
    return nameidx_peek(x, h);
}

int store__devidx_add(store_devidx_t *x, store_dev_t *d)
{
    return nameidx_add(x, store__devidx_hash(d->name, d->len), d);
}

void store__devidx_del(store_devidx_t *x, const store_dev_t *d)
{
    nameidx_del(x, store__devidx_hash(d->name, d->len), d);
}

void store__devidx_clear(store_devidx_t *x)
{
    nameidx_deinit(x);
}

/* daemon/quota.c: the device and channel limits; see quota.h.
 *
 * Devices are kept by name in common/nameidx.h's open-addressing index (a uthash table read one
 * device per chain entry: at 100k devices a cache miss each, 2 % of vigild's time at 1k
 * devices already; docs/benchmarks.md, "Session 6"). Clients choose the device names, so the
 * index has a secret seed (nameidx_init_seeded) and every device name is hashed by the index
 * (nameidx_key), never with a fixed start a client could brute-force. Each device keeps the
 * 64-bit hashes of its channel names in a sorted array (8 bytes a channel instead of a copy of
 * each name: a hash collision can only let a new channel pass as known, never refuse a good
 * one), made with the same index's seed (chan_hash), so a client cannot pick channel names
 * whose hashes collide with a known one's to pass the channel limit either.
 * The index owns nothing: qdev_add and the removals free what they take out of it. lock guards
 * everything in struct quota; nothing else is locked under it. Any thread. */
#include "quota.h"
#include "err.h"
#include "log.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nameidx.h"

struct qdev {
    uint64_t *chans; /* sorted hashes of the channel names */
    size_t nchans, cap;
    size_t len;
    char name[]; /* the key, len bytes and a NUL */
};

struct quota {
    pthread_mutex_t lock;
    nameidx_t devs; /* name -> struct qdev (owned through the index) */
    size_t max_devices, max_channels;
};

/* The hash of a channel name of a device in devs: with devs's secret seed, so the hashes move
 * with the index (quota_load swaps in a new index with its own seed and hashes made with it). */
static uint64_t chan_hash(const nameidx_t *devs, const char *s, size_t n)
{
    return nameidx_key(devs, s, n).h;
}

/* A test hook, declared by tests/test_daemon.c (test_quota_seeded) and nowhere else: the hash
 * q keeps for the channel name s[n]. Any thread. */
uint64_t quota__chan_hash(quota_t *q, const char *s, size_t n);
uint64_t quota__chan_hash(quota_t *q, const char *s, size_t n)
{
    pthread_mutex_lock(&q->lock);
    uint64_t h = chan_hash(&q->devs, s, n);
    pthread_mutex_unlock(&q->lock);
    return h;
}

/* nameidx_init_seeded for the quota's device index, logging when getrandom failed and the
 * index takes the public fallback seed (the index works, but protects nothing then). */
static void devs_init(nameidx_t *devs)
{
    if (nameidx_init_seeded(devs) != 0)
        log_warn("quota: getrandom failed; the device index hashes names with the public "
                 "fallback seed (common/nameidx.h)");
}

/* Index of h in d->chans, or of where it would go; *found says which. */
static size_t chan_find(const struct qdev *d, uint64_t h, int *found)
{
    size_t lo = 0, hi = d->nchans;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->chans[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < d->nchans && d->chans[lo] == h;
    return lo;
}

static int qchan_add(struct qdev *d, uint64_t h)
{
    int found;
    size_t at = chan_find(d, h, &found);
    if (found)
        return 0;
    if (d->nchans == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        uint64_t *c = realloc(d->chans, cap * sizeof *c);
        if (c == NULL)
            return ERR_NOMEM;
        d->chans = c;
        d->cap = cap;
    }
    memmove(d->chans + at + 1, d->chans + at, (d->nchans - at) * sizeof *d->chans);
    d->chans[at] = h;
    d->nchans++;
    return 0;
}

static int qdev_same(const void *item, const char *name, size_t len)
{
    const struct qdev *d = item;
    return d->len == len && memcmp(d->name, name, len) == 0;
}

static struct qdev *qdev_find(const nameidx_t *devs, const char *name, size_t len)
{
    return nameidx_find_key(devs, nameidx_key(devs, name, len), name, len, qdev_same);
}

/* How far ahead quota_admit prefetches a point's index slot (2 * QUOTA_AHEAD), its device
 * (QUOTA_AHEAD) and that device's channel hashes (QUOTA_AHEAD / 2): at 100k devices each is a
 * cache miss, which a few points ahead overlap the work of the points before. */
#define QUOTA_AHEAD 8

/* Points whose verdicts and hashes quota_admit keeps on the stack. */
#define QUOTA_SMALL 32

static struct qdev *qdev_add(nameidx_t *devs, const char *name, size_t len)
{
    struct qdev *d = calloc(1, sizeof *d + len + 1);
    if (d == NULL)
        return NULL;
    memcpy(d->name, name, len);
    d->len = len;
    if (nameidx_add_key(devs, nameidx_key(devs, name, len), d) != 0) {
        free(d);
        return NULL;
    }
    return d;
}

static void dev_free(void *item)
{
    struct qdev *d = item;
    free(d->chans);
    free(d);
}

static void devs_free(nameidx_t *devs)
{
    nameidx_free(devs, dev_free);
}

int quota_create(quota_t **out, size_t max_devices, size_t max_channels)
{
    quota_t *q = calloc(1, sizeof *q);
    if (q == NULL)
        return ERR_NOMEM;
    pthread_mutex_init(&q->lock, NULL);
    devs_init(&q->devs);
    q->max_devices = max_devices;
    q->max_channels = max_channels;
    *out = q;
    return 0;
}

void quota_destroy(quota_t *q)
{
    if (q == NULL)
        return;
    devs_free(&q->devs);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

void quota_set_limits(quota_t *q, size_t max_devices, size_t max_channels)
{
    pthread_mutex_lock(&q->lock);
    q->max_devices = max_devices;
    q->max_channels = max_channels;
    pthread_mutex_unlock(&q->lock);
}

struct load_ctx {
    nameidx_t devs;
    int rc;
};

static int on_stored_device(void *arg, const store_device_info_t *info)
{
    struct load_ctx *lc = arg;
    struct qdev *d = qdev_add(&lc->devs, info->id, strlen(info->id));
    if (d == NULL) {
        lc->rc = ERR_NOMEM;
        return 1;
    }
    for (size_t i = 0; i < info->nchannels; i++) {
        if (qchan_add(d, chan_hash(&lc->devs, info->channels[i], strlen(info->channels[i])))) {
            lc->rc = ERR_NOMEM;
            return 1;
        }
    }
    return 0;
}

int quota_load(quota_t *q, store_t *s)
{
    /* Built outside the lock (storage reads take time), swapped in under it. */
    struct load_ctx lc;
    devs_init(&lc.devs); /* a seed of its own; it moves with the index */
    lc.rc = 0;
    int rc = store_device_each(s, on_stored_device, &lc); /* names and channels only */
    if (rc == 0)
        rc = lc.rc;
    if (rc) {
        devs_free(&lc.devs);
        return rc;
    }
    pthread_mutex_lock(&q->lock);
    nameidx_t old = q->devs;
    q->devs = lc.devs;
    pthread_mutex_unlock(&q->lock);
    devs_free(&old);
    return 0;
}

/* The channel-name hashes of the point before (a device's points, and a fleet's devices, mostly
 * carry the same channel names in the same order): a field named as the previous point's field
 * at the same place reuses its hash, after one comparison with a name still in cache. */
#define QUOTA_MEMO 64
struct fmemo {
    const batch_point_t *prev; /* NULL: none */
    uint64_t h[QUOTA_MEMO];
};

/* The hashes of p's channel names into h[p->nfields], through and into the memo m. */
static void field_hashes(const nameidx_t *devs, struct fmemo *m, const batch_t *b,
                         const batch_point_t *p, uint64_t *h)
{
    const batch_point_t *prev = m->prev;
    for (uint32_t i = 0; i < p->nfields; i++) {
        const batch_field_t *f = &b->fields[p->field0 + i];
        const batch_field_t *g =
            prev && i < prev->nfields && i < QUOTA_MEMO ? &b->fields[prev->field0 + i] : NULL;
        if (g && g->name_len == f->name_len &&
            memcmp(batch_str(b, g->name), batch_str(b, f->name), f->name_len) == 0)
            h[i] = m->h[i];
        else
            h[i] = chan_hash(devs, batch_str(b, f->name), f->name_len);
    }
    for (uint32_t i = 0; i < p->nfields && i < QUOTA_MEMO; i++)
        m->h[i] = h[i];
    m->prev = p;
}

/* The bytes of a device name (len bytes, valid UTF-8) a refusal quotes: at most NAME_QUOTED,
 * cut before a character rather than inside it (its lead byte alone is invalid UTF-8 on the
 * stream, U+FFFD in a JSON answer): at most 3 continuation bytes back. */
#define NAME_QUOTED 40
static int name_cut(const char *name, size_t len)
{
    if (len <= NAME_QUOTED)
        return (int)len;
    size_t n = NAME_QUOTED;
    while (n > NAME_QUOTED - 3 && ((unsigned char)name[n] & 0xc0) == 0x80)
        n--;
    return (int)n;
}

/* Checks one point and registers what it creates. Returns 1 when admitted, 0 when refused
 * (reason in why), or ERR_NOMEM. Under the lock. */
static int admit_point(quota_t *q, const batch_t *b, const batch_point_t *p, nameidx_key_t k,
                       struct fmemo *m, char *why, size_t size)
{
    const char *name = batch_str(b, p->device);
    struct qdev *d = nameidx_find_key(&q->devs, k, name, p->device_len, qdev_same);
    if (d == NULL && q->devs.count >= q->max_devices) {
        snprintf(why, size,
                 "device limit reached: %zu devices (storage.max_devices); '%.*s%s' "
                 "is not created",
                 q->devs.count, name_cut(name, p->device_len), name,
                 p->device_len > NAME_QUOTED ? "..." : "");
        return 0;
    }
    uint64_t fh_small[QUOTA_MEMO], *fh = fh_small;
    if (p->nfields > QUOTA_MEMO && (fh = malloc(p->nfields * sizeof *fh)) == NULL)
        return ERR_NOMEM;
    field_hashes(&q->devs, m, b, p, fh);
    size_t fresh = 0;
    for (uint32_t i = 0; i < p->nfields; i++) {
        int found = 0;
        if (d)
            chan_find(d, fh[i], &found);
        fresh += !found;
    }
    size_t have = d ? d->nchans : 0;
    int rc = 1;
    if (fresh > 0 && have + fresh > q->max_channels) {
        snprintf(why, size,
                 "channel limit reached: device '%.*s%s' would have %zu channels "
                 "(storage.max_channels_per_device = %zu)",
                 name_cut(name, p->device_len), name, p->device_len > NAME_QUOTED ? "..." : "",
                 have + fresh, q->max_channels);
        rc = 0;
    } else if (d == NULL && (d = qdev_add(&q->devs, name, p->device_len)) == NULL) {
        rc = ERR_NOMEM;
    }
    for (uint32_t i = 0; rc == 1 && fresh > 0 && i < p->nfields; i++)
        if (qchan_add(d, fh[i]))
            rc = ERR_NOMEM;
    if (fh != fh_small)
        free(fh);
    return rc;
}

/* batch_points_filter's test for quota_admit: the verdicts admit_point gave, keep[i - first]. */
struct marks {
    const unsigned char *keep;
    size_t first;
};

static int keep_marked(void *arg, const batch_point_t *p, size_t i)
{
    const struct marks *m = arg;
    (void)p;
    return m->keep[i - m->first];
}

int quota_admit(quota_t *q, batch_t *b, size_t first, api_reject_cb reject, void *arg)
{
    if (first >= b->npoints)
        return 0;
    const size_t np = b->npoints;
    /* The verdicts and the points' name hashes: on the stack for a few points (a small
     * request, or a stream read that brought few lines). */
    unsigned char keep_small[QUOTA_SMALL];
    nameidx_key_t hs_small[QUOTA_SMALL];
    unsigned char *keep = keep_small;
    nameidx_key_t *hs = hs_small;
    if (np - first > QUOTA_SMALL) {
        keep = malloc(np - first);
        hs = malloc((np - first) * sizeof *hs);
        if (keep == NULL || hs == NULL) {
            free(keep);
            free(hs);
            return ERR_NOMEM;
        }
    }
    size_t refused = 0, hashed = first;
    int rc = 0;
    struct fmemo memo;
    memo.prev = NULL;
    pthread_mutex_lock(&q->lock);
    for (size_t i = first; i < np; i++) {
        for (; hashed < np && hashed < i + 2 * QUOTA_AHEAD; hashed++) {
            const batch_point_t *p = &b->points[hashed];
            hs[hashed - first] = nameidx_key(&q->devs, batch_str(b, p->device), p->device_len);
            nameidx_prefetch_key(&q->devs, hs[hashed - first]);
        }
        if (i + QUOTA_AHEAD < hashed) {
            const struct qdev *ahead = nameidx_peek_key(&q->devs, hs[i + QUOTA_AHEAD - first]);
            if (ahead)
                __builtin_prefetch(ahead);
        }
        if (i + QUOTA_AHEAD / 2 < hashed) {
            const struct qdev *ahead = nameidx_peek_key(&q->devs, hs[i + QUOTA_AHEAD / 2 - first]);
            if (ahead && ahead->chans)
                __builtin_prefetch(ahead->chans);
        }
        char why[200];
        int ok = admit_point(q, b, &b->points[i], hs[i - first], &memo, why, sizeof why);
        if (ok < 0) {
            rc = ok;
            break;
        }
        keep[i - first] = (unsigned char)ok;
        if (!ok) {
            refused++;
            reject(arg, b->points[i].item, why);
        }
    }
    pthread_mutex_unlock(&q->lock);
    if (rc == 0 && refused > 0) {
        struct marks m = {keep, first};
        batch_points_filter(b, first, keep_marked, &m);
    }
    if (keep != keep_small) {
        free(hs);
        free(keep);
    }
    return rc;
}

int quota_device_add(quota_t *q, const char *device)
{
    size_t len = strlen(device);
    int rc = 0;
    pthread_mutex_lock(&q->lock);
    if (qdev_find(&q->devs, device, len) == NULL) {
        if (q->devs.count >= q->max_devices)
            rc = ERR_LIMIT;
        else if (qdev_add(&q->devs, device, len) == NULL)
            rc = ERR_NOMEM;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void quota_device_remove(quota_t *q, const char *device)
{
    pthread_mutex_lock(&q->lock);
    size_t len = strlen(device);
    nameidx_key_t k = nameidx_key(&q->devs, device, len);
    struct qdev *d = nameidx_find_key(&q->devs, k, device, len, qdev_same);
    if (d) {
        nameidx_del_key(&q->devs, k, d);
        dev_free(d);
    }
    pthread_mutex_unlock(&q->lock);
}

size_t quota_devices(quota_t *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->devs.count;
    pthread_mutex_unlock(&q->lock);
    return n;
}

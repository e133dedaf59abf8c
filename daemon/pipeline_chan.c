/* daemon/pipeline_chan.c: mapping a point's fields onto its device's channels (the shard's
 * per-point path), and the shard's shared channel lists that make the usual case cheap.
 *
 * A device's channel names are separate allocations (d->ch), so at 100k devices comparing a
 * point's fields with them cost a cache miss per channel. Each shard keeps one copy of every
 * distinct channel list its devices have (struct chlist: the names in order, each followed by
 * a NUL; at most PIPE_CHLISTS), and a device points at its list (d->chl) while d->gen has not
 * changed since; a point carrying exactly those channels in that order is checked against the
 * list, which stays in cache. Any other point takes the search by name, which also adds new
 * channels. The lists are freed with the shard. Clients choose the channel names, so the
 * lists' index has a secret seed (nameidx_init_seeded, drawn when the shard makes its first
 * list) and hashes the keys itself (nameidx_key): no crafted set of lists shares a chain.
 *
 * Threads: shard thread only, under the device's mutex; pipeline_new_channels: any thread
 * (each device's mutex in turn). */
#include "err.h"
#include "pipeline_chan_int.h"
#include "pipeline_groups_int.h"
#include "pipeline_int.h"
#include "vtime.h"

#include <stdlib.h>
#include <string.h>

/* The key of a channel list: the names in order, each followed by a NUL, in buf (room for
 * len bytes). Returns the key's length, or 0 when it does not fit. */
static size_t chlist_key(char *const *ch, int n, char *buf, size_t room)
{
    size_t len = 0;
    for (int c = 0; c < n; c++) {
        size_t l = strlen(ch[c]) + 1;
        if (len + l > room)
            return 0;
        memcpy(buf + len, ch[c], l);
        len += l;
    }
    return len;
}

static int chlist_same(const void *item, const char *key, size_t len)
{
    const struct chlist *cl = item;
    return cl->key_len == len && memcmp(cl->key, key, len) == 0;
}

/* Points d at the shard's copy of its channel list (d->ch), made when the shard has none yet
 * and holds fewer than PIPE_CHLISTS; otherwise d keeps none and map_channels takes the slow
 * path. Caller holds d->mu; shard thread. */
static void chlist_attach(struct shard *sh, struct dev *d)
{
    char key[DETECTOR_MAX_CHANNELS * 32];
    d->chl = NULL;
    size_t len = d->nch > 0 ? chlist_key(d->ch, d->nch, key, sizeof key) : 0;
    if (len == 0)
        return;
    /* The shard's first list: seed the index (nothing added yet, so no slots to lose). */
    if (sh->chlists.seed == 0 && sh->chlists.count == 0)
        (void)nameidx_init_seeded(&sh->chlists);
    nameidx_key_t k = nameidx_key(&sh->chlists, key, len);
    struct chlist *cl = nameidx_find_key(&sh->chlists, k, key, len, chlist_same);
    if (cl == NULL) {
        if (sh->chlists.count >= PIPE_CHLISTS || (cl = malloc(sizeof *cl + len)) == NULL)
            return;
        cl->n = d->nch;
        cl->key_len = len;
        memcpy(cl->key, key, len);
        if (nameidx_add_key(&sh->chlists, k, cl) != 0) {
            free(cl);
            return;
        }
    }
    d->chl = cl;
    d->chl_gen = d->gen;
}

/* 1 when pt's fields are exactly d's channels in order (its channel list cl): the usual point,
 * checked against the shard's copy of the names, which stays in cache, instead of the device's
 * own, which at 100k devices are a cache miss each. */
static int fields_match(const struct chlist *cl, const batch_t *b, const batch_point_t *pt)
{
    if ((int)pt->nfields != cl->n)
        return 0;
    const char *k = cl->key;
    for (uint32_t f = 0; f < pt->nfields; f++) {
        const batch_field_t *fl = &b->fields[pt->field0 + f];
        size_t l = fl->name_len;
        if ((size_t)(k - cl->key) + l + 1 > cl->key_len || k[l] != '\0' ||
            memcmp(k, batch_str(b, fl->name), l) != 0)
            return 0;
        k += l + 1;
    }
    return 1;
}

/* Maps a point's fields onto the device's channels, adding new ones. Returns 1 when the channel
 * set changed (the detector must be rebuilt), 0 when not, or an error. Fast path: the point
 * carries exactly the device's channels in their order (fields_match). Otherwise a device's
 * points usually carry its channels in the same order: the channel after the previous field's
 * match is tried first, one comparison per field, before the search. */
int pipeline__map_channels(struct shard *sh, struct dev *d, const batch_t *b,
                           const batch_point_t *pt, int *idx)
{
    if (d->chl != NULL && d->chl_gen == d->gen && d->nch == d->chl->n &&
        fields_match(d->chl, b, pt)) {
        for (uint32_t f = 0; f < pt->nfields; f++)
            idx[f] = (int)f;
        return 0;
    }
    int changed = 0, next = 0;
    for (uint32_t f = 0; f < pt->nfields; f++) {
        const char *name = batch_str(b, b->fields[pt->field0 + f].name);
        int k = -1;
        if (next < d->nch && strcmp(d->ch[next], name) == 0) {
            idx[f] = next++;
            continue;
        }
        for (int c = 0; c < d->nch; c++)
            if (strcmp(d->ch[c], name) == 0) {
                k = c;
                break;
            }
        if (k < 0) {
            if (d->nch == DETECTOR_MAX_CHANNELS) {
                idx[f] = -1; /* beyond the detector's width: stored, not modelled */
                continue;
            }
            d->ch[d->nch] = strdup(name);
            if (d->ch[d->nch] == NULL)
                return ERR_NOMEM;
            d->last_x[d->nch] = 0;
            k = d->nch++;
            changed = 1;
        }
        idx[f] = k;
        next = k + 1;
    }
    if (!changed && (d->chl == NULL || d->chl_gen != d->gen))
        chlist_attach(sh, d);
    return changed;
}

void pipeline__chlists_free(nameidx_t *x)
{
    nameidx_free(x, free);
}

int pipeline__point_fate(struct dev *d, const batch_point_t *pt, int64_t newest, int64_t future_ms)
{
    const int64_t ts = pt->ts_ms;
    if (pt->nfields > PIPE_POINT_FIELDS)
        return PIPE_PT_WIDE; /* before the order: it is not a reading of any run (back_run) */
    if (ts <= newest)
        return PIPE_PT_OLD; /* out of order (point_prepare's back_run may yet take it) */
    if (ts > future_ms)
        return PIPE_PT_FUTURE;
    if (d->nmaint > 0 && pipeline__maint_on(d, ts))
        return PIPE_PT_MAINT;
    return PIPE_PT_SCORED;
}

int pipeline__detecting(const struct dev *d)
{
    return d->det != NULL && detector_get_state(d->det) != DET_LEARNING;
}

/* 1 when d (locked) has no channel named name yet and the model has room for it (*room: the
 * room left, taken by each new one: past DETECTOR_MAX_CHANNELS a field is stored, not
 * modelled, and starts nothing). */
static int brings_channel(const struct dev *d, const char *name, int *room)
{
    if (*room <= 0)
        return 0;
    for (int c = 0; c < d->nch; c++)
        if (strcmp(d->ch[c], name) == 0)
            return 0;
    --*room;
    return 1;
}

/* A device of the batch that may be told (pipeline_new_channels): its newest timestamp the
 * batch's points before have taken (INT64_MIN: none seen yet), and off once a point of the
 * batch has started its learning again (its later new channels cost nothing more). */
struct nc_dev {
    struct dev *d;
    int64_t newest;
    int off;
};

/* d's slot in the table t (room: a power of two, more than its devices): its own, or the
 * empty one it goes in. The high bits of the product, which every bit of d moves: its low
 * bits are only d's low bits times an odd number, and devices made one after another lie a
 * fixed stride apart (aligned_alloc 64; 3200 bytes, 50 x 64, with glibc here), so the low bits
 * of d >> 6 share the stride's factors of two and the table used half its slots or fewer
 * (read66a, session 66). */
static struct nc_dev *nc_slot(struct nc_dev *t, size_t room, const struct dev *d)
{
    const int bits = __builtin_ctzll((unsigned long long)room);
    size_t i = (size_t)(((uint64_t)(uintptr_t)d * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
    while (t[i].d != NULL && t[i].d != d)
        i = (i + 1) & (room - 1);
    return &t[i];
}

/* 1 when pt would bring d (locked, detection on) a channel it has room for. */
static int point_brings(const struct dev *d, const batch_t *b, const batch_point_t *pt)
{
    int room = DETECTOR_MAX_CHANNELS - d->nch;
    for (uint32_t f = 0; f < pt->nfields; f++)
        if (brings_channel(d, batch_str(b, b->fields[pt->field0 + f].name), &room))
            return 1;
    return 0;
}

void pipeline_new_channels(pipeline_t *p, const batch_t *b, api_channel_cb cb, void *arg)
{
    /* First the devices a point of b may tell of (detection on, a field it has not): usually
     * none, and nothing more is done. */
    struct nc_dev *t = NULL;
    size_t room = 0, n = 0;
    for (size_t i = 0; i < b->npoints; i++) {
        const batch_point_t *pt = &b->points[i];
        struct dev *d = pipeline__find(p, batch_str(b, pt->device));
        if (d == NULL)
            continue;
        pthread_mutex_lock(&d->mu);
        int may = pipeline__detecting(d) && point_brings(d, b, pt);
        pthread_mutex_unlock(&d->mu);
        if (!may)
            continue;
        if (2 * (n + 1) > room) {
            size_t nroom = room ? 2 * room : 16;
            struct nc_dev *nt = calloc(nroom, sizeof *nt);
            if (nt == NULL)
                break; /* tells of those found so far */
            for (size_t k = 0; k < room; k++)
                if (t[k].d)
                    *nc_slot(nt, nroom, t[k].d) = t[k];
            free(t);
            t = nt;
            room = nroom;
        }
        struct nc_dev *e = nc_slot(t, room, d);
        if (e->d == NULL) {
            *e = (struct nc_dev){.d = d, .newest = INT64_MIN};
            n++;
        }
    }
    /* Then b's points in order, as the shard will take them: a point it will not score (too
     * wide, out of order behind the device's newest or the batch's points before, far ahead,
     * in a maintenance period: pipeline__point_fate) brings nothing; one that starts the learning
     * again is told of its new channels, and the device's later points of b nothing more. */
    const int64_t future = vtime_now_ms() + PIPE_FUTURE_MS;
    for (size_t i = 0; n > 0 && i < b->npoints; i++) {
        const batch_point_t *pt = &b->points[i];
        const char *device = batch_str(b, pt->device);
        struct dev *d = pipeline__find(p, device);
        struct nc_dev *e = d ? nc_slot(t, room, d) : NULL;
        if (e == NULL || e->d == NULL || e->off)
            continue;
        pthread_mutex_lock(&d->mu);
        if (e->newest == INT64_MIN)
            e->newest = d->last_ts;
        if (pipeline__detecting(d) &&
            pipeline__point_fate(d, pt, e->newest, future) == PIPE_PT_SCORED) {
            e->newest = pt->ts_ms;
            /* d's channels once the point is scored (pipeline__map_channels appends the new
             * ones in the point's order): where d then stands in its group is said once, with
             * the new channels compared with the lead's (session 67, read67a). */
            int left = DETECTOR_MAX_CHANNELS - d->nch, nch = d->nch;
            const char *ch[DETECTOR_MAX_CHANNELS];
            for (int c = 0; c < d->nch; c++)
                ch[c] = d->ch[c];
            for (uint32_t f = 0; f < pt->nfields; f++) {
                const char *name = batch_str(b, b->fields[pt->field0 + f].name);
                if (brings_channel(d, name, &left))
                    ch[nch++] = name;
            }
            const int place = nch == d->nch || d->group == NULL
                                  ? PIPE_GROUP_ALONE
                                  : pipeline__group_place(p, d, nch, ch);
            for (int c = d->nch; c < nch; c++) {
                cb(arg, device, ch[c], place == PIPE_GROUP_ALONE ? NULL : d->group->name,
                   place == PIPE_GROUP_LEADS     ? API_GROUP_LEADS
                   : place == PIPE_GROUP_MATCHES ? API_GROUP_MATCHES
                                                 : API_GROUP_FOLLOWS);
                e->off = 1;
            }
        }
        pthread_mutex_unlock(&d->mu);
    }
    free(t);
}

int pipeline_channel_unmodelled(pipeline_t *p, const char *device, const char *channel)
{
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return 0;
    pthread_mutex_lock(&d->mu);
    int beyond = d->nch >= DETECTOR_MAX_CHANNELS;
    for (int c = 0; beyond && c < d->nch; c++)
        if (strcmp(d->ch[c], channel) == 0)
            beyond = 0;
    pthread_mutex_unlock(&d->mu);
    return beyond;
}

/* daemon/pipeline.c: shards, scoring and training of the online pipeline; see pipeline.h.
 *
 * A committed batch is split by device shard on the writer thread (pipeline_feed) and queued;
 * each shard thread steps its devices' detectors in commit order. Readings older than a
 * device's newest are stored (they are already) but not scored. When a detector asks for
 * training, a job is made under the device's lock and run on the training pool; the pool thread
 * then applies it under the lock again, so the detector is only ever touched by one thread at a
 * time. Training never runs on the loop, an HTTP thread or a shard.
 *
 * At 100k devices every point's device is cold, so the shard's per-point path reads as few of
 * its cache lines as it can: devices are found through a name index (p->idx, common/nameidx.h)
 * whose slots and devices resolve() prefetches points ahead; a point carrying its device's
 * channels in order is mapped through the shard's shared channel list (pipeline_chan.c, shard
 * thread only) rather than the device's own names; counters are added once per step.
 *
 * A device's prediction ring puts each sealed block to the store as the shard seals it
 * (ring_handoff); the writer thread reports each put (on_pred_stored) and frees the committed
 * blocks itself if the device's mutex is free (trylock: the writer never waits for a device),
 * else the shard does at the device's next reading. pipeline_destroy seals every ring's tail,
 * puts it and flushes the store before freeing the devices the reports name.
 *
 * A scored reading's anomaly event (open, extend, close, the chain rule) is pipeline_events.c's
 * (pipeline__track_event, from point_finish); an operator's accept ends it there too. */
#include "err.h"
#include "log.h"
#include "nice.h"
#include "pipeline_int.h"
#include "vtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void pipeline_opts_default(pipeline_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->workers = 1;
    o->train_threads = 1;
    o->train_nice = 10;
    o->shard_queue = 1000000;
    o->predictions = 2000;
    o->group_rows = 8000;
    o->events = 16;
    o->versions = 10;
    o->save_every = 10000;
    o->state_min_ms = 1000;
    o->limit_check_every = 10;
    o->limit_horizon = 60;
    o->continue_within = -1;
    detector_config_default(&o->det);
}

int64_t pipeline__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The shard of the device whose key in p->idx is k (d->shard): from the key's high half, so
 * from the index's secret seed (a client cannot pick names that all land on one worker), and
 * the same for a name every time (p->idx's seed never changes after pipeline_create). Any
 * thread. */
static int shard_of_key(const pipeline_t *p, nameidx_key_t k)
{
    return (int)((uint32_t)(k.h >> 32) % (uint32_t)p->nshards);
}

/* The same for the device named name[len]. */
static int shard_of(const pipeline_t *p, const char *name, size_t len)
{
    return shard_of_key(p, nameidx_key(&p->idx, name, len));
}

void pipeline__observe(atomic_uint_fast64_t *hist, const double *bounds, double v)
{
    pipeline__observe_n(hist, bounds, v, 1);
}

void pipeline__observe_n(atomic_uint_fast64_t *hist, const double *bounds, double v, uint64_t n)
{
    for (int i = 0; i < 8; i++)
        if (v <= bounds[i])
            atomic_fetch_add_explicit(&hist[i], n, memory_order_relaxed);
}

static int dev_same(const void *item, const char *name, size_t len)
{
    const struct dev *d = item;
    return d->name_len == len && memcmp(d->name, name, len) == 0;
}

static struct dev *find_k(pipeline_t *p, const char *device, size_t len, nameidx_key_t k)
{
    pthread_rwlock_rdlock(&p->devs_lock);
    struct dev *d = nameidx_find_key(&p->idx, k, device, len, dev_same);
    pthread_rwlock_unlock(&p->devs_lock);
    return d;
}

struct dev *pipeline__find(pipeline_t *p, const char *device)
{
    size_t len = strlen(device);
    struct dev *d = find_k(p, device, len, nameidx_key(&p->idx, device, len));
    return d && !atomic_load_explicit(&d->deleted, memory_order_relaxed) ? d : NULL;
}

/* ---- devices ------------------------------------------------------------------------------ */

static void dev_free(struct dev *d)
{
    detector_destroy(d->det);
    for (int i = 0; i < d->nch; i++)
        free(d->ch[i]);
    pipeline__ring_deinit(&d->ring);
    pipeline__events_clear(d);
    free(d->events);
    free(d->cleared.info);
    pipeline__maint_clear(d);
    pipeline__limits_free(d);
    for (size_t i = 0; i < d->nversions; i++)
        free(d->versions[i].info_json);
    free(d->versions);
    pthread_mutex_destroy(&d->mu);
    free(d->attrs);
    if (d->name != d->name_buf)
        free(d->name);
    free(d);
}

static struct dev *dev_k(pipeline_t *p, const char *name, size_t len, nameidx_key_t k);

struct dev *pipeline__dev(pipeline_t *p, const char *name)
{
    size_t len = strlen(name);
    return dev_k(p, name, len, nameidx_key(&p->idx, name, len));
}

/* pipeline__dev for a name of len bytes whose key in p->idx is k. */
static struct dev *dev_k(pipeline_t *p, const char *name, size_t len, nameidx_key_t k)
{
    struct dev *d = find_k(p, name, len, k);
    if (d)
        return d;
    const size_t line = 64, size = (sizeof *d + line - 1) / line * line;
    if ((d = aligned_alloc(line, size)) == NULL)
        return NULL;
    memset(d, 0, size);
    if (len < sizeof d->name_buf) {
        memcpy(d->name_buf, name, len);
        d->name = d->name_buf;
    } else if ((d->name = strndup(name, len)) == NULL) {
        free(d);
        return NULL;
    }
    if ((d->versions = calloc((size_t)p->o.versions + 2, sizeof *d->versions)) == NULL) {
        if (d->name != d->name_buf)
            free(d->name);
        free(d);
        return NULL;
    }
    pthread_mutex_init(&d->mu, NULL);
    d->name_len = len;
    d->shard = shard_of_key(p, k);
    d->last_ts = -1;
    atomic_init(&d->seen_ms, -1);
    for (int i = 0; i < DETECTOR_MAX_CHANNELS; i++)
        d->lim_min[i] = d->lim_max[i] = NAN;
    pthread_rwlock_wrlock(&p->devs_lock);
    struct dev *other = nameidx_find_key(&p->idx, k, name, len, dev_same);
    if (other) { /* created meanwhile by another thread (an HTTP PUT): keep that one */
        pthread_rwlock_unlock(&p->devs_lock);
        dev_free(d);
        return other;
    }
    if (nameidx_add_key(&p->idx, k, d) != 0) {
        pthread_rwlock_unlock(&p->devs_lock);
        dev_free(d);
        return NULL;
    }
    /* uthash's bucket from the seeded key, not its unseeded Jenkins hash of the name (no
     * HASH_FIND ever runs on p->devs: lookups go through p->idx). */
    HASH_ADD_KEYPTR_BYHASHVALUE(hh, p->devs, d->name, len, (unsigned)k.h, d);
    pthread_rwlock_unlock(&p->devs_lock);
    return d;
}

int pipeline__ring_alloc(pipeline_t *p, struct dev *d)
{
    d->last_present = ~UINT64_C(0); /* no reading seen since: none is known to have lacked one */
    /* Block numbers go on growing (a late report of the old ring's block never matches). A ring
     * that had blocks may have them in the store: they go (its channels differ now). */
    const int64_t seq = d->ring.seq_next;
    if (p->store && seq > 0 && store_preds_drop(p->store, d->name) != 0)
        log_warn("pipeline: old predictions of '%s' not dropped from the store (store busy)",
                 d->name);
    pipeline__ring_deinit(&d->ring);
    pipeline__ring_init(&d->ring, p->o.predictions, d->nch, seq);
    return 0;
}

/* store_pred_cb: the writer's report on a block of device arg's ring (writer thread). The
 * committed blocks are freed now if d->mu is free, else at d's next reading or query: never
 * waiting for the lock, so the writer is never held up by a device. */
static void on_pred_stored(void *arg, int64_t seq, int status)
{
    struct dev *d = arg;
    pipeline__ring_ack(&d->ring, seq, status);
    if (pthread_mutex_trylock(&d->mu) == 0) {
        pipeline__ring_settle(&d->ring);
        pthread_mutex_unlock(&d->mu);
    }
}

/* Puts d's blocks in memory that are not yet put to the store, oldest first, after freeing those
 * it has committed (pipeline_ring.c). cb NULL: no reports (at shutdown). A put refused (store
 * busy or full) is tried again at the next reading: the block stays in memory meanwhile. Caller
 * holds d->mu. Returns 0 or the refused put's status. */
static int ring_handoff(pipeline_t *p, struct dev *d, store_pred_cb cb)
{
    if (p->store == NULL)
        return 0;
    pipeline__ring_settle(&d->ring);
    struct pred_block b;
    while (pipeline__ring_next(&d->ring, &b)) {
        store_pred_t sp = {.seq = b.seq,
                           .keep_from = b.keep_from,
                           .t0 = b.t0,
                           .t1 = b.t1,
                           .n = b.n,
                           .nch = d->ring.nch,
                           .blob = b.bytes,
                           .len = b.len};
        int rc = store_pred_put(p->store, d->name, &sp, cb, cb ? d : NULL);
        if (rc) {
            pipeline__ring_unsend(&d->ring, b.seq);
            return rc;
        }
    }
    return 0;
}

/* At shutdown (shards stopped): seals every ring's tail and puts the blocks still in memory, so
 * the predictions survive a restart, then waits for the writer, whose reports name the rings
 * (they must come before the devices are freed). */
static void rings_save(pipeline_t *p)
{
    if (p->store == NULL)
        return;
    size_t failed = 0;
    pthread_rwlock_rdlock(&p->devs_lock);
    for (struct dev *d = p->devs; d; d = d->hh.next) {
        pthread_mutex_lock(&d->mu);
        int rc = pipeline__ring_seal_tail(&d->ring);
        if (rc == 0)
            rc = ring_handoff(p, d, NULL);
        failed += rc != 0;
        pthread_mutex_unlock(&d->mu);
    }
    pthread_rwlock_unlock(&p->devs_lock); /* not held while the writer runs: it may feed */
    if (failed)
        log_warn("pipeline: the newest predictions of %zu devices not saved (out of memory or "
                 "store busy)",
                 failed);
    (void)store_flush(p->store);
}

/* (Re)creates the detector and the prediction ring for the channel set in d->ch. */
static int dev_reset_detector(pipeline_t *p, struct dev *d)
{
    detector_destroy(d->det);
    d->det = NULL;
    d->gen++;
    d->has_result = 0;
    /* A reading for a deleted device (pipeline_forget left det NULL) makes it a device again. */
    atomic_store_explicit(&d->deleted, 0, memory_order_relaxed);
    int rc = pipeline__ring_alloc(p, d);
    if (rc)
        return rc;
    pipeline__apply_limits(p, d);
    return detector_create(&d->det, &p->o.det, d->nch);
}

/* The status reports the serving model and the detector's state: when a training, a rollback
 * or a PUT of weights changes them, the status follows at once, not only at the next reading
 * (a device whose backfill was scored before its first training ended stayed "learning", and
 * after a rollback the status named the old version, until its next reading). Caller holds
 * d->mu. */
void pipeline__state_follows(pipeline_t *p, struct dev *d)
{
    if (!d->has_result || d->det == NULL)
        return;
    enum detector_state st = detector_get_state(d->det);
    if (st != d->last.state) {
        d->last.state = st;
        d->last.is_anomaly = st == DET_ANOMALY;
        d->since_ts = d->last_ts;
        d->since_score = d->last.score;
    }
    if (st != d->st_sent)
        pipeline__state_note(p, d, vtime_mono_ms());
}

void pipeline__serving_changed(pipeline_t *p, struct dev *d, int swapped, uint32_t version,
                               enum detector_kind kind)
{
    if (swapped)
        d->serving_version = version;
    pipeline__state_follows(p, d);
    if (!d->has_result || d->det == NULL)
        return;
    if (swapped) {
        d->last.version = version;
        d->last.kind = kind;
    }
}

/* Keeps the o.versions newest versions and the serving one (which a rollback may have made
 * older than those): drops the oldest other versions beyond the cap. The store's trim spares
 * the same version (store_model_put_keep), so the serving version's checkpoint survives any
 * number of later trainings and restarts. Caller holds d->mu. */
void pipeline__versions_trim(pipeline_t *p, struct dev *d)
{
    for (;;) {
        size_t k = (size_t)p->o.versions;
        size_t newest = d->nversions > k ? d->nversions - k : 0; /* first of the k newest */
        size_t i = 0;
        while (i < newest && d->versions[i].version == d->serving_version)
            i++;
        if (i >= newest)
            return;
        free(d->versions[i].info_json);
        memmove(d->versions + i, d->versions + i + 1, (d->nversions - i - 1) * sizeof *d->versions);
        d->nversions--;
    }
}

/* A version that swaps an LSTM in goes to the store with its checkpoint, so it can be rolled
 * back to (pipeline_rollback reads it there): without one it is no rollback point. */
int pipeline__version_put(pipeline_t *p, struct dev *d, const struct detector_train_info *info,
                          double seconds, size_t pooled, struct version *v)
{
    memset(v, 0, sizeof *v);
    v->version = info->version;
    const model_t *m = detector_model(d->det);
    void *ckpt = NULL;
    size_t len = 0;
    int rc = 0;
    if (p->store && info->swapped && info->kind == DET_KIND_LSTM && m) {
        size_t cap = model_checkpoint_size(m);
        ckpt = malloc(cap);
        if (ckpt == NULL || model_checkpoint_save(m, ckpt, cap, &len)) {
            free(ckpt);
            ckpt = NULL;
            len = 0;
            rc = ERR_NOMEM; /* no rollback point: the version is not stored as it should be */
        }
    }
    v->has_ckpt = ckpt != NULL;
    v->info_json = pipeline__version_json(info, vtime_now_ms(), seconds, v->has_ckpt, pooled);
    const int64_t serving = info->swapped ? info->version : d->serving_version; /* kept */
    if (v->info_json == NULL)
        rc = ERR_NOMEM;
    else if (p->store && rc == 0)
        rc = store_model_put_keep(p->store, d->name, v->version, v->info_json, ckpt, len,
                                  p->o.versions, serving);
    free(ckpt);
    if (rc && v->has_ckpt) { /* it says no rollback from here */
        v->has_ckpt = 0;
        char *js = pipeline__version_json(info, vtime_now_ms(), seconds, 0, pooled);
        if (js) {
            free(v->info_json);
            v->info_json = js;
        }
    }
    return rc;
}

void pipeline__version_add(pipeline_t *p, struct dev *d, struct version *v)
{
    /* Room: at most o.versions + 1 are kept (the trim below), the array holds 2 more. */
    d->versions[d->nversions++] = *v;
    v->info_json = NULL;
    pipeline__versions_trim(p, d);
}

void pipeline__record_version(pipeline_t *p, struct dev *d, const struct detector_train_info *info,
                              double seconds, size_t pooled)
{
    struct version v;
    pipeline__serving_changed(p, d, info->swapped, info->version, info->kind);
    int rc = pipeline__version_put(p, d, info, seconds, pooled, &v);
    if (rc)
        log_warn("pipeline: model version %u of '%s' not saved: %s", v.version, d->name,
                 err_str(rc));
    pipeline__version_add(p, d, &v);
}

/* One point of a committed batch on its way through scoring. Only d and pt are set before
 * point_prepare (no zeroing: r alone is 560 bytes, and the detector fills it). */
struct spoint {
    struct dev *d;
    const batch_point_t *pt;
    float x[DETECTOR_MAX_CHANNELS];
    uint8_t present[DETECTOR_MAX_CHANNELS];
    struct detector_result r;
};

/* d->last = *r, but of pred and contrib only the device's nch channels: readers of d->last
 * (status, saves) read no further, and the whole struct is 9 cache lines of a device that, at
 * 100k devices, is cold. */
static void result_keep(struct detector_result *dst, const struct detector_result *r, int nch)
{
    memcpy(dst, r, offsetof(struct detector_result, pred));
    memcpy(dst->pred, r->pred, sizeof(float) * (size_t)nch);
    memcpy(dst->contrib, r->contrib, sizeof(float) * (size_t)nch);
    dst->top_channel = r->top_channel;
    dst->raw = r->raw;
    dst->likelihood = r->likelihood;
}

/* Before the step: order check, channels, the reading vector. Returns 1 when sp is to be
 * stepped. Caller holds sp->d->mu. */
static int point_prepare(pipeline_t *p, struct shard *sh, const batch_t *b, struct spoint *sp)
{
    struct dev *d = sp->d;
    const batch_point_t *pt = sp->pt;
    int idx[DETECTOR_MAX_CHANNELS * 4];
    /* It arrived, whatever its timestamp (a backfill or a skewed clock too): one store of the
     * message's clock reading, to a line of d the step touches anyway. */
    if (sh->arrived_ms >= 0)
        atomic_store_explicit(&d->seen_ms, sh->arrived_ms, memory_order_relaxed);
    if (pt->nfields > sizeof idx / sizeof idx[0])
        return 0;
    if (pt->ts_ms <= d->last_ts) {
        d->skipped_old++;
        atomic_fetch_add_explicit(&p->skipped_old, 1, memory_order_relaxed);
        return 0;
    }
    /* Stored, but not the device's behaviour: the detector goes on after the maintenance as
     * after a gap in the feed. */
    if (d->nmaint > 0 && pipeline__maint_skip(p, d, pt->ts_ms))
        return 0;
    int changed = pipeline__map_channels(sh, d, b, pt, idx);
    if (changed < 0)
        return 0;
    if (changed || d->det == NULL) {
        if (d->det)
            log_info("pipeline: device '%s' now has %d channels; its model starts learning again",
                     d->name, d->nch);
        if (dev_reset_detector(p, d))
            return 0;
    }
    memset(sp->present, 0, sizeof sp->present);
    for (int c = 0; c < d->nch; c++)
        sp->x[c] = d->last_x[c];
    for (uint32_t f = 0; f < pt->nfields; f++) {
        if (idx[f] < 0)
            continue;
        sp->x[idx[f]] = (float)b->fields[pt->field0 + f].value;
        sp->present[idx[f]] = 1;
    }
    return 1;
}

/* The counters of a step's points, added to the pipeline's (shared atomics: a dozen locked
 * additions a point, made once a step instead) by tally_flush. */
struct tally {
    uint64_t scored, serving, lstm;
};

/* Adds t to the pipeline's counters, its points each taking step_s seconds. */
static void tally_flush(pipeline_t *p, const struct tally *t, double step_s)
{
    static const double sb[] = PIPE_STEP_BUCKETS;
    if (t->scored == 0)
        return;
    pipeline__observe_n(p->step_hist, sb, step_s, t->scored);
    atomic_fetch_add_explicit(&p->step_ns_total, t->scored * (uint64_t)(step_s * 1e9),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&p->scored, t->scored, memory_order_relaxed);
    if (t->serving)
        atomic_fetch_add_explicit(&p->scored_serving, t->serving, memory_order_relaxed);
    if (t->lstm)
        atomic_fetch_add_explicit(&p->scored_lstm, t->lstm, memory_order_relaxed);
}

/* After the step (its result r, at monotonic now_ns: read once for a group's members, scored
 * together): status, prediction ring, events, training, saves; the point is
 * counted in t. Caller holds sp->d->mu. */
static void point_finish(pipeline_t *p, struct spoint *sp, const struct detector_result *r,
                         struct tally *t, int64_t now_ns)
{
    struct dev *d = sp->d;
    const int64_t ts = sp->pt->ts_ms;
    t->scored++;
    if (r->state != DET_LEARNING) {
        t->serving++;
        if (r->kind == DET_KIND_LSTM)
            t->lstm++;
    }
    for (int c = 0; c < d->nch; c++)
        if (sp->present[c])
            d->last_x[c] = sp->x[c];
    if (d->last_ts >= 0) {
        double dt = (double)(ts - d->last_ts);
        d->dt_ms = d->dt_ms > 0 ? 0.95 * d->dt_ms + 0.05 * dt : dt;
    }
    if (!d->has_result || r->state != d->last.state) {
        d->since_ts = ts;
        d->since_score = r->score;
    }
    result_keep(&d->last, r, d->nch);
    d->has_result = 1;
    d->last_ts = ts;
    d->scored_ns = now_ns;
    d->scored++;
    /* The prediction ring (out of memory: this prediction is not recorded). */
    (void)pipeline__ring_push(&d->ring, ts, r->score, (uint8_t)r->state, r->pred);
    (void)ring_handoff(p, d, on_pred_stored);
    d->last_present = 0;
    for (int c = 0; c < d->nch; c++)
        if (sp->present[c] && isfinite(sp->x[c])) /* as the detector's imputed count */
            d->last_present |= UINT64_C(1) << c;
    pipeline__track_event(p, d, ts, r);
    if ((uint8_t)r->state != d->st_sent) /* the streams' state: all a steady device pays */
        pipeline__state_note(p, d, now_ns / 1000000);
    if (d->lim_on) /* all a device without limits pays */
        pipeline__limits_check(p, d);
    if (r->want_train)
        pipeline__mark_due(p, d);
    if (p->o.save_every > 0 && ++d->since_save >= (uint64_t)p->o.save_every)
        pipeline__save(p, d);
}

/* Scores one point of a committed batch. Shard thread. */
static void score_point(pipeline_t *p, struct shard *sh, const batch_t *b, struct spoint *sp)
{
    pthread_mutex_lock(&sp->d->mu);
    if (point_prepare(p, sh, b, sp)) {
        int64_t t0 = pipeline__mono_ns();
        int rc = detector_step_ts(sp->d->det, sp->pt->ts_ms, sp->x, sp->present, &sp->r);
        int64_t t1 = pipeline__mono_ns();
        struct tally t = {0, 0, 0};
        if (rc == 0)
            point_finish(p, sp, &sp->r, &t, t1);
        tally_flush(p, &t, (double)(t1 - t0) / 1e9);
    }
    pthread_mutex_unlock(&sp->d->mu);
}

/* Sorts ord[n] (indices into sps) by device address: insertion sort, n is at most
 * DETECTOR_MAX_BATCH and the members mostly arrive in order already. The points themselves
 * (900 bytes each) do not move. */
static void order_by_dev(const struct spoint *sps, int *ord, int n)
{
    for (int i = 0; i < n; i++)
        ord[i] = i;
    for (int i = 1; i < n; i++) {
        int v = ord[i], j = i;
        while (j > 0 && sps[ord[j - 1]].d > sps[v].d) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = v;
    }
}

/* Scores one reading of each of n members of a group (sps[n], distinct devices) with one
 * batched step (detector_step_batch: the members serving the group's LSTM advance in one
 * sgemm per layer). Members are locked and handled in address order; only a shard holds
 * several device locks, and a device belongs to one shard. The results go to the shard's
 * scratch (sh->res), not through the points. Shard thread. */
static void score_group(pipeline_t *p, struct shard *sh, const batch_t *b, struct spoint *sps,
                        int n)
{
    int ord[DETECTOR_MAX_BATCH];
    order_by_dev(sps, ord, n);
    for (int i = 0; i < n; i++)
        pthread_mutex_lock(&sps[ord[i]].d->mu);
    detector_t *ds[DETECTOR_MAX_BATCH];
    int64_t ts[DETECTOR_MAX_BATCH];
    int which[DETECTOR_MAX_BATCH], k = 0, C = 0;
    float *x = NULL;
    uint8_t *present = NULL;
    for (int o = 0; o < n; o++) {
        int i = ord[o];
        if (!point_prepare(p, sh, b, &sps[i]))
            continue;
        if (k == 0)
            C = sps[i].d->nch;
        if (sps[i].d->nch != C) { /* another channel set: its own step */
            int64_t t0 = pipeline__mono_ns();
            if (detector_step_ts(sps[i].d->det, sps[i].pt->ts_ms, sps[i].x, sps[i].present,
                                 &sps[i].r) == 0) {
                int64_t t1 = pipeline__mono_ns();
                struct tally t = {0, 0, 0};
                point_finish(p, &sps[i], &sps[i].r, &t, t1);
                tally_flush(p, &t, (double)(t1 - t0) / 1e9);
            }
            continue;
        }
        ds[k] = sps[i].d->det;
        ts[k] = sps[i].pt->ts_ms;
        which[k++] = i;
    }
    /* Scratch: the detector's, then x [k, C] and present [k, C] (bytes). */
    size_t need = k > 0 ? detector_batch_work_len(ds[0], k) + (size_t)k * (size_t)C * 2 : 0;
    if (k > 0 && need > sh->work_len) {
        float *w = realloc(sh->work, need * sizeof(float));
        if (w) {
            sh->work = w;
            sh->work_len = need;
        }
    }
    if (k > 0 && need <= sh->work_len) {
        x = sh->work + detector_batch_work_len(ds[0], k);
        present = (uint8_t *)(x + (size_t)k * C);
    }
    if (k > 0 && sh->res == NULL)
        sh->res = malloc(DETECTOR_MAX_BATCH * sizeof *sh->res);
    if (k > 0 && x && sh->res) {
        struct detector_result *res = sh->res;
        for (int j = 0; j < k; j++) {
            memcpy(x + (size_t)j * C, sps[which[j]].x, sizeof(float) * (size_t)C);
            memcpy(present + (size_t)j * C, sps[which[j]].present, (size_t)C);
        }
        int64_t t0 = pipeline__mono_ns();
        int rc = detector_step_batch(ds, k, ts, x, present, res, sh->work);
        if (rc == 0 && k > 1)
            atomic_fetch_add_explicit(&p->batched, (uint64_t)k, memory_order_relaxed);
        /* One clock reading for the group: its members were scored together. */
        int64_t t1 = pipeline__mono_ns();
        struct tally t = {0, 0, 0};
        for (int j = 0; rc == 0 && j < k; j++)
            point_finish(p, &sps[which[j]], &res[j], &t, t1);
        tally_flush(p, &t, (double)(t1 - t0) / 1e9 / k);
    }
    for (int o = n; o-- > 0;)
        pthread_mutex_unlock(&sps[ord[o]].d->mu);
}

/* The group of d (NULL if none). */
static struct group *group_of(struct dev *d)
{
    pthread_mutex_lock(&d->mu);
    struct group *g = d->group;
    pthread_mutex_unlock(&d->mu);
    return g;
}

/* Prefetches the lines of d that scoring a point reads or writes: the hot fields up to
 * last_x (pipeline_int.h's layout), and those of the last result it keeps (result_keep). */
static void dev_prefetch(const struct dev *d)
{
    const char *c = (const char *)d;
    for (size_t o = 0; o < offsetof(struct dev, last_x) + 64; o += 64)
        __builtin_prefetch(c + o, 1);
    __builtin_prefetch(c + offsetof(struct dev, last.pred), 1);
    __builtin_prefetch(c + offsetof(struct dev, last.contrib), 1);
    __builtin_prefetch(c + offsetof(struct dev, last.top_channel), 1);
}

/* The lookups of a message's points (score_message): device pd[i] and group pg[i] of the
 * points before `resolved`, and the name keys ph[i] (nameidx_key in p->idx) of those before
 * `hashed`. */
struct lookup {
    struct dev **pd;
    struct group **pg;
    nameidx_key_t *ph;
    size_t resolved, hashed;
};

/* How far ahead of its lookup a point's index slot, then its device, is prefetched. At 100k
 * devices both are cache misses; a few points ahead they overlap the work of the points
 * before. */
#define RESOLVE_AHEAD 16

/* Looks up the devices and groups of b's points [lk->resolved, end) (creating unknown devices).
 * Each lookup prefetches the index slot of the point 2 * RESOLVE_AHEAD ahead and the device of
 * the one RESOLVE_AHEAD ahead. Shard thread. */
static void resolve(pipeline_t *p, const batch_t *b, struct lookup *lk, size_t end)
{
    const size_t np = b->npoints, from = lk->resolved;
    if (end <= from)
        return;
    pthread_rwlock_rdlock(&p->devs_lock);
    for (size_t i = from; i < end; i++) {
        for (; lk->hashed < np && lk->hashed < i + 2 * RESOLVE_AHEAD; lk->hashed++) {
            const batch_point_t *pt = &b->points[lk->hashed];
            lk->ph[lk->hashed] = nameidx_key(&p->idx, batch_str(b, pt->device), pt->device_len);
            nameidx_prefetch_key(&p->idx, lk->ph[lk->hashed]);
        }
        if (i + RESOLVE_AHEAD < lk->hashed) {
            const struct dev *ahead = nameidx_peek_key(&p->idx, lk->ph[i + RESOLVE_AHEAD]);
            if (ahead)
                dev_prefetch(ahead);
        }
        const batch_point_t *pt = &b->points[i];
        lk->pd[i] = nameidx_find_key(&p->idx, lk->ph[i], batch_str(b, pt->device), pt->device_len,
                                     dev_same);
    }
    pthread_rwlock_unlock(&p->devs_lock);
    for (size_t i = from; i < end; i++) {
        const batch_point_t *pt = &b->points[i];
        if (lk->pd[i] == NULL) /* unknown: created (or made by another thread meanwhile) */
            lk->pd[i] = dev_k(p, batch_str(b, pt->device), pt->device_len, lk->ph[i]);
        lk->pg[i] = lk->pd[i] ? group_of(lk->pd[i]) : NULL;
    }
    lk->resolved = end;
}

/* Scores a message's points in order per device; members of a group whose readings arrive
 * together (within the next GROUP_LOOKAHEAD points) are stepped as one batch: each member's
 * earliest pending point joins, at most one per member. Each point's device and group are
 * looked up once, when the message's order or a scan ahead first reaches it (the scan then
 * compares pointers, not names). Shard thread. */
#define GROUP_LOOKAHEAD 256
static void score_message(pipeline_t *p, struct shard *sh, const batch_t *b)
{
    const size_t np = b->npoints;
    uint8_t *done = calloc(np, 1);
    struct spoint *sps = malloc(DETECTOR_MAX_BATCH * sizeof *sps);
    struct lookup lk = {malloc((np ? np : 1) * sizeof *lk.pd),
                        malloc((np ? np : 1) * sizeof *lk.pg),
                        malloc((np ? np : 1) * sizeof *lk.ph), 0, 0};
    struct dev **pd = lk.pd;
    struct group **pg = lk.pg;
    if (!done || !sps || !pd || !pg || !lk.ph) { /* out of memory: one point at a time */
        for (size_t i = 0; i < np; i++) {
            struct spoint one;
            one.pt = &b->points[i];
            if ((one.d = pipeline__dev(p, batch_str(b, one.pt->device))) != NULL)
                score_point(p, sh, b, &one);
        }
        goto out;
    }
    for (size_t i = 0; i < np; i++) {
        resolve(p, b, &lk, i + 1);
        if (done[i] || pd[i] == NULL)
            continue;
        struct group *g = pg[i];
        if (g == NULL) {
            sps[0].pt = &b->points[i];
            sps[0].d = pd[i];
            score_point(p, sh, b, &sps[0]);
            continue;
        }
        int n = 0;
        sps[n].pt = &b->points[i];
        sps[n++].d = pd[i];
        for (size_t j = i + 1; j < np && j < i + GROUP_LOOKAHEAD && n < DETECTOR_MAX_BATCH; j++) {
            resolve(p, b, &lk, j + 1);
            if (done[j] || pg[j] != g)
                continue;
            int seen = 0;
            for (int k = 0; k < n && !seen; k++)
                seen = sps[k].d == pd[j];
            if (seen)
                continue;
            sps[n].d = pd[j];
            sps[n].pt = &b->points[j];
            n++;
            done[j] = 1;
        }
        score_group(p, sh, b, sps, n);
    }
out:
    free(lk.ph);
    free(pg);
    free(pd);
    free(sps);
    free(done);
}

/* ---- shards ------------------------------------------------------------------------------- */

static void *shard_main(void *arg)
{
    struct shard *sh = arg;
    pipeline_t *p = sh->p;
    pthread_mutex_lock(&sh->mu);
    for (;;) {
        while (sh->head == NULL && !sh->stopping)
            pthread_cond_wait(&sh->cv, &sh->mu);
        struct shard_msg *m = sh->head;
        if (m == NULL)
            break;
        sh->head = m->next;
        if (sh->head == NULL)
            sh->tail = NULL;
        sh->busy = 1;
        pthread_mutex_unlock(&sh->mu);
        sh->arrived_ms = m->arrived_ms;
        score_message(p, sh, &m->b);
        /* Delay from commit (the client's acknowledgement) to updated status: the message's
         * last reading waited longest, so each of its points is counted with that delay. */
        double delay = (double)(pipeline__mono_ns() - m->fed_ns) / 1e9;
        static const double db[] = PIPE_DELAY_BUCKETS;
        for (int k = 0; k < 10; k++)
            if (delay <= db[k])
                atomic_fetch_add_explicit(&p->delay_hist[k], m->b.npoints, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->delay_us_total, (uint64_t)(delay * 1e6) * m->b.npoints,
                                  memory_order_relaxed);
        size_t n = m->b.nfields;
        batch_deinit(&m->b);
        free(m);
        pthread_mutex_lock(&sh->mu);
        sh->queued -= n;
        sh->busy = 0;
        pthread_cond_broadcast(&sh->space);
        if (sh->head == NULL)
            pthread_cond_broadcast(&sh->idle);
    }
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

void pipeline_feed(pipeline_t *p, batch_t *b)
{
    /* One clock reading per committed batch (vDSO, no system call): its readings arrived now,
     * give or take the writer's group-commit delay. */
    pipeline__feed_at(p, b, vtime_now_ms());
}

/* 1 when points x and y of b name the same device. */
static int same_device(const batch_t *b, const batch_point_t *x, const batch_point_t *y)
{
    return x->device_len == y->device_len &&
           memcmp(batch_str(b, x->device), batch_str(b, y->device), x->device_len) == 0;
}

void pipeline__feed_at(pipeline_t *p, batch_t *b, int64_t arrived_ms)
{
    int n = p->nshards;
    struct shard_msg *msgs[64] = {0};
    if (b->npoints == 0)
        return;
    /* When every point goes to one shard (always, with one worker), the batch itself is moved
     * into the message: no copy on the writer thread. A name is hashed here once per run of
     * points of one device: the scan stops at the first point of another shard (split, on
     * shard `at_split`), the points before it are on the first point's shard, and a point of
     * the previous point's device is on that point's shard. */
    int one = 0, first = 0, at_split = 0;
    size_t split = b->npoints;
    if (n > 1) {
        const batch_point_t *pt = &b->points[0];
        first = one = shard_of(p, batch_str(b, pt->device), pt->device_len);
        for (size_t i = 1; i < b->npoints && one >= 0; i++) {
            pt = &b->points[i];
            if (same_device(b, pt, &b->points[i - 1]))
                continue;
            at_split = shard_of(p, batch_str(b, pt->device), pt->device_len);
            if (at_split != one) {
                split = i;
                one = -1;
            }
        }
    }
    if (one >= 0 && (msgs[one] = calloc(1, sizeof *msgs[one])) != NULL) {
        msgs[one]->b = *b;
        batch_init(b);
    }
    int cur = first;
    for (size_t i = 0; one < 0 && i < b->npoints; i++) {
        const batch_point_t *pt = &b->points[i];
        if (i == split)
            cur = at_split;
        else if (i > split && !same_device(b, pt, &b->points[i - 1]))
            cur = shard_of(p, batch_str(b, pt->device), pt->device_len);
        if (msgs[cur] == NULL) {
            msgs[cur] = calloc(1, sizeof *msgs[cur]);
            if (msgs[cur] == NULL)
                continue;
            batch_init(&msgs[cur]->b);
        }
        batch_t *mb = &msgs[cur]->b;
        if (batch_point_begin(mb, batch_str(b, pt->device), pt->device_len, pt->ts_ms, pt->item))
            continue;
        for (uint32_t f = 0; f < pt->nfields; f++) {
            const batch_field_t *fl = &b->fields[pt->field0 + f];
            if (batch_field_add(mb, batch_str(b, fl->name), fl->name_len, fl->value)) {
                batch_point_abort(mb);
                break;
            }
        }
        batch_point_commit(mb);
    }
    for (int s = 0; s < n; s++) {
        if (msgs[s] == NULL)
            continue;
        struct shard *sh = &p->shards[s];
        msgs[s]->fed_ns = pipeline__mono_ns();
        msgs[s]->arrived_ms = arrived_ms;
        pthread_mutex_lock(&sh->mu);
        while (sh->queued > p->o.shard_queue && !sh->stopping)
            pthread_cond_wait(&sh->space, &sh->mu);
        if (sh->tail)
            sh->tail->next = msgs[s];
        else
            sh->head = msgs[s];
        sh->tail = msgs[s];
        sh->queued += msgs[s]->b.nfields;
        pthread_cond_signal(&sh->cv);
        pthread_mutex_unlock(&sh->mu);
    }
}

void pipeline_drain(pipeline_t *p)
{
    for (int s = 0; s < p->nshards; s++) {
        struct shard *sh = &p->shards[s];
        pthread_mutex_lock(&sh->mu);
        while (sh->head != NULL || sh->busy)
            pthread_cond_wait(&sh->idle, &sh->mu);
        pthread_mutex_unlock(&sh->mu);
    }
}

int pipeline_create(pipeline_t **out, const pipeline_opts_t *o, store_t *store)
{
    pipeline_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return ERR_NOMEM;
    p->o = *o;
    if (p->o.workers < 1)
        p->o.workers = 1;
    if (p->o.workers > 64)
        p->o.workers = 64;
    p->store = store;
    p->start_ms = vtime_now_ms();
    atomic_init(&p->state_min_ms, p->o.state_min_ms);
    pthread_rwlock_init(&p->devs_lock, NULL);
    /* Clients choose the device names: the index has a secret seed (the fixed fallback only
     * if getrandom fails; nameidx.h) and hashes them itself (nameidx_key). */
    if (nameidx_init_seeded(&p->idx) != 0)
        log_warn("pipeline: getrandom failed; the device index hashes names with the public "
                 "fallback seed (common/nameidx.h)");
    pthread_mutex_init(&p->due_mu, NULL);
    pthread_mutex_init(&p->groups_mu, NULL);
    pthread_mutex_init(&p->maint_mu, NULL);
    /* The pool's queue holds one job per due device, so the due-set bounds it. */
    int rc = wpool_create(&p->train, o->train_threads > 0 ? o->train_threads : 1, SIZE_MAX, "train",
                          o->train_nice);
    if (rc) {
        pthread_mutex_destroy(&p->maint_mu);
        pthread_mutex_destroy(&p->groups_mu);
        pthread_mutex_destroy(&p->due_mu);
        pthread_rwlock_destroy(&p->devs_lock);
        free(p);
        return rc;
    }
    p->shards = calloc((size_t)p->o.workers, sizeof *p->shards);
    if (p->shards == NULL) {
        wpool_destroy(p->train);
        pthread_mutex_destroy(&p->maint_mu);
        pthread_mutex_destroy(&p->groups_mu);
        pthread_mutex_destroy(&p->due_mu);
        pthread_rwlock_destroy(&p->devs_lock);
        free(p);
        return ERR_NOMEM;
    }
    for (int s = 0; s < p->o.workers; s++) {
        struct shard *sh = &p->shards[s];
        sh->p = p;
        sh->index = s;
        pthread_mutex_init(&sh->mu, NULL);
        pthread_cond_init(&sh->cv, NULL);
        pthread_cond_init(&sh->space, NULL);
        pthread_cond_init(&sh->idle, NULL);
        if (thread_create_niced(&sh->thread, p->o.shard_nice, shard_main, sh) != 0) {
            p->nshards = s;
            pipeline_destroy(p);
            return ERR_IO;
        }
        pthread_setname_np(sh->thread, "infer");
        p->nshards = s + 1;
    }
    *out = p;
    return 0;
}

void pipeline_destroy(pipeline_t *p)
{
    if (p == NULL)
        return;
    for (int s = 0; s < p->nshards; s++) {
        struct shard *sh = &p->shards[s];
        pthread_mutex_lock(&sh->mu);
        sh->stopping = 1;
        pthread_cond_broadcast(&sh->cv);
        pthread_cond_broadcast(&sh->space);
        pthread_mutex_unlock(&sh->mu);
        pthread_join(sh->thread, NULL);
        pthread_cond_destroy(&sh->cv);
        pthread_cond_destroy(&sh->space);
        pthread_cond_destroy(&sh->idle);
        pthread_mutex_destroy(&sh->mu);
        free(sh->work);
        free(sh->res);
        pipeline__chlists_free(&sh->chlists);
    }
    /* Shards are stopped, so no new jobs; the pool ends after the training under way (the
     * queued ones return at once: train_next). */
    atomic_store(&p->stopping, 1);
    wpool_destroy(p->train);
    size_t skipped = pipeline__due_len(p);
    if (skipped > 0)
        log_info("pipeline: %zu due trainings not run at stop (saved as asked for: the next "
                 "start asks for them again)",
                 skipped);
    rings_save(p);
    struct dev *d, *tmp;
    HASH_ITER(hh, p->devs, d, tmp)
    {
        HASH_DEL(p->devs, d);
        dev_free(d);
    }
    nameidx_deinit(&p->idx);
    free(p->shards);
    pipeline__groups_free(p);
    pthread_mutex_destroy(&p->maint_mu);
    pthread_mutex_destroy(&p->groups_mu);
    pthread_mutex_destroy(&p->due_mu);
    pthread_rwlock_destroy(&p->devs_lock);
    free(p);
}

/* ---- control ------------------------------------------------------------------------------ */

/* The API asks d for a training now. Merged into one a training thread has taken (which may
 * have read its window already, or be ending: d->due is cleared only after the apply), it is
 * asked again when that ends; merged into one still waiting in the
 * due-set (d's, or its group's asked on another member), it joins it: that training reads the
 * windows when it runs, up to each member's newest reading then, and one training answers
 * both. Caller holds d->mu. */
static int train_now(pipeline_t *p, struct dev *d)
{
    int rc = pipeline__mark_due(p, d);
    if (rc != ERR_BUSY)
        return rc;
    if (!pipeline__training_waits(p, d))
        d->again = 1;
    return rc;
}

int pipeline_retrain(pipeline_t *p, const char *device)
{
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    pthread_mutex_lock(&d->mu);
    d->retrain_all = 1;
    int rc = train_now(p, d);
    if (rc != 0 && rc != ERR_BUSY)
        d->retrain_all = 0;
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int pipeline_accept(pipeline_t *p, const char *device, const char *note, char **out)
{
    *out = NULL;
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    char *copy = note ? strdup(note) : NULL;
    if (note && copy == NULL)
        return ERR_NOMEM;
    pthread_mutex_lock(&d->mu);
    int rc = d->det ? detector_accept(d->det) : ERR_RANGE;
    if (rc == 0) {
        /* The episode ended at the last reading scored (it held every reading up to it; the
         * next one is judged as the accepted level's). */
        *out = pipeline__event_end(p, d, PIPE_END_OPERATOR, copy, 1);
        copy = NULL;
        pipeline__state_follows(p, d); /* the status: normal */
        /* Learn the level now, not at the next reading (which would ask too: merged). */
        (void)train_now(p, d);
        /* A restart (even after a crash) resumes after the acceptance, not inside the
         * episode whose event is stored as ended. */
        (void)pipeline__save(p, d);
        if (*out == NULL)
            rc = ERR_NOMEM; /* accepted all the same: the answer alone is lost */
    }
    pthread_mutex_unlock(&d->mu);
    free(copy);
    /* The store commits the ended event before the answer, so a listing right after it shows
     * the event ended (else the stored row, still active, would be listed a moment longer). */
    if (rc == 0 && p->store)
        (void)store_flush(p->store);
    return rc;
}

/* 1 when d keeps version `version` with a checkpoint in the store. Caller holds d->mu. */
static int has_rollback(const struct dev *d, uint32_t version)
{
    for (size_t i = 0; i < d->nversions; i++)
        if (d->versions[i].version == version)
            return d->versions[i].has_ckpt && d->det != NULL;
    return 0;
}

struct ckpt_read {
    model_t *m;
    int rc;
};

/* store_model_get's callback: the model is made here (the checkpoint is borrowed). */
static void on_ckpt(void *arg, int64_t version, const char *info_json, const void *ckpt, size_t len)
{
    struct ckpt_read *cr = arg;
    (void)version;
    (void)info_json;
    cr->rc = ckpt && len > 0 ? model_checkpoint_load(&cr->m, ckpt, len) : ERR_NOTFOUND;
}

/* Reads the LSTM of a device's version from the store into *m (caller owns; model_destroy).
 * The put that recorded the version is asynchronous: when the store does not hold it yet, one
 * flush makes everything queued before durable and the read is tried again. Returns 0,
 * ERR_NOTFOUND, or the store's or the checkpoint's error. Any thread but the writer's; the
 * caller holds no device lock (a read may wait for the disk). */
static int version_model_read(pipeline_t *p, const char *device, uint32_t version, model_t **m)
{
    if (p->store == NULL)
        return ERR_NOTFOUND;
    for (int attempt = 0;; attempt++) {
        struct ckpt_read cr = {NULL, ERR_NOTFOUND};
        int rc = store_model_get(p->store, device, version, on_ckpt, &cr);
        if (rc == 0)
            rc = cr.rc;
        if (rc == 0) {
            *m = cr.m;
            return 0;
        }
        if (rc != ERR_NOTFOUND || attempt > 0 || store_flush(p->store) != 0)
            return rc;
    }
}

/* Makes version `version`, whose LSTM is m (borrowed), serve again on one device, if d still
 * keeps that version. */
static int rollback_one(pipeline_t *p, struct dev *d, uint32_t version, const model_t *m)
{
    pthread_mutex_lock(&d->mu);
    int rc = ERR_NOTFOUND;
    if (has_rollback(d, version))
        rc = detector_set_model(d->det, m, version);
    if (rc == 0) {
        pipeline__serving_changed(p, d, 1, version, DET_KIND_LSTM);
        pipeline__event_model_changed(p, d); /* another model judges the readings from here */
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int pipeline_rollback(pipeline_t *p, const char *device, uint32_t version)
{
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    pthread_mutex_lock(&d->mu);
    struct group *g = d->group;
    int ok = has_rollback(d, version);
    pthread_mutex_unlock(&d->mu);
    if (!ok)
        return ERR_NOTFOUND;
    /* The checkpoint is read once, outside the device's lock (the shard steps d meanwhile). */
    model_t *m;
    int rc = version_model_read(p, d->name, version, &m);
    if (rc)
        return rc;
    rc = rollback_one(p, d, version, m);
    if (rc == 0 && g != NULL) {
        /* A group's members serve one model: the others follow with the same weights (every
         * member recorded the group's versions). */
        struct dev **ms;
        size_t n;
        if (pipeline__group_members(p, g, &ms, &n) == 0) {
            for (size_t i = 0; i < n; i++)
                if (ms[i] != d && rollback_one(p, ms[i], version, m))
                    log_warn(
                        "pipeline: device '%s' of group '%s' has no version %u to roll back to",
                        ms[i]->name, g->name, version);
            free(ms);
        }
    }
    model_destroy(m);
    return rc;
}

int pipeline_weights_get(pipeline_t *p, const char *device, void **buf, size_t *len)
{
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    pthread_mutex_lock(&d->mu);
    /* The detector keeps its last LSTM when a linear model or persistence takes over: only an
     * LSTM that serves is given out. A device that has a model but no LSTM serving (with
     * model.kind auto every device's first models are so) is told apart from one still
     * learning, which has no model at all. */
    const int served = d->det && d->has_result && d->last.version > 0;
    const model_t *m = served && d->last.kind == DET_KIND_LSTM ? detector_model(d->det) : NULL;
    int rc = served ? ERR_INVAL : ERR_RANGE;
    if (m) {
        size_t cap = model_safetensors_size(m);
        *buf = malloc(cap);
        rc = *buf ? model_safetensors_export(m, *buf, cap, len) : ERR_NOMEM;
        if (rc) {
            free(*buf);
            *buf = NULL;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int pipeline_weights_put(pipeline_t *p, const char *device, const void *buf, size_t len)
{
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    model_t *m;
    int rc = model_safetensors_import(&m, buf, len);
    if (rc)
        return rc;
    pthread_mutex_lock(&d->mu);
    if (d->det == NULL) {
        rc = ERR_RANGE;
    } else {
        uint32_t version = 1;
        for (size_t i = 0; i < d->nversions; i++)
            if (d->versions[i].version >= version)
                version = d->versions[i].version + 1;
        if (d->serving_version >= version)
            version = d->serving_version + 1;
        rc = detector_set_model(d->det, m, version);
        if (rc == 0) {
            struct detector_train_info info;
            memset(&info, 0, sizeof info);
            info.version = version;
            info.swapped = 1;
            info.kind = DET_KIND_LSTM;
            pipeline__record_version(p, d, &info, 0, 0);
            pipeline__event_model_changed(p, d); /* another model, as a rollback */
        }
    }
    pthread_mutex_unlock(&d->mu);
    model_destroy(m);
    return rc;
}

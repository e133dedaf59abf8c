/* daemon/pipeline.c: the online pipeline's devices, shards and control; see pipeline.h.
 *
 * A committed batch is split by device shard on the writer thread (pipeline_feed) and queued;
 * each shard thread scores its messages in commit order (pipeline_score.c). When a detector asks
 * for training, a job is made under the device's lock and run on the training pool; the pool
 * thread then applies it under the lock again, so the detector is only ever touched by one thread
 * at a time. Training never runs on the loop, an HTTP thread or a shard.
 *
 * Devices are found through a name index (p->idx, common/nameidx.h) with a secret seed, so a
 * client cannot pick names that all land on one shard; p->devs lists them all for the walks.
 *
 * pipeline_destroy seals every prediction ring's tail, puts it and flushes the store before
 * freeing the devices the writer's reports name (pipeline_score.c hands the sealed blocks over
 * while the shards run).
 *
 * The control calls (weights; retrain and accept in pipeline_retrain.c, rollback in
 * pipeline_rollback.c) are any thread;
 * an operator's accept ends the device's anomaly event (pipeline_events.c). */
#include "err.h"
#include "log.h"
#include "nice.h"
#include "pipeline_chan_int.h"
#include "pipeline_groups_int.h"
#include "pipeline_int.h"
#include "pipeline_events_int.h"
#include "posint.h"
#include "testhold.h"
#include "vtime.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
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

int pipeline__dev_same(const void *item, const char *name, size_t len)
{
    const struct dev *d = item;
    return d->name_len == len && memcmp(d->name, name, len) == 0;
}

static struct dev *find_k(pipeline_t *p, const char *device, size_t len, nameidx_key_t k)
{
    pthread_rwlock_rdlock(&p->devs_lock);
    struct dev *d = nameidx_find_key(&p->idx, k, device, len, pipeline__dev_same);
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
    free(d->replay);
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

struct dev *pipeline__dev(pipeline_t *p, const char *name)
{
    size_t len = strlen(name);
    return pipeline__dev_k(p, name, len, nameidx_key(&p->idx, name, len));
}

/* pipeline__dev for a name of len bytes whose key in p->idx is k. */
struct dev *pipeline__dev_k(pipeline_t *p, const char *name, size_t len, nameidx_key_t k)
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
    d->last_ts = d->last_ms = -1;
    d->det_saved_ms = -1;
    atomic_init(&d->seen_ms, -1);
    d->arr_seen = d->arr_last = d->arr_ts = -1;
    for (int i = 0; i < DETECTOR_MAX_CHANNELS; i++)
        d->lim_min[i] = d->lim_max[i] = NAN;
    pipeline__missing_init(d);
    pthread_rwlock_wrlock(&p->devs_lock);
    struct dev *other = nameidx_find_key(&p->idx, k, name, len, pipeline__dev_same);
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

/* pipeline__devs_put's visitor for rings_save: seals d's ring's tail and puts the blocks still
 * in memory (a refused one is put back: pipeline__ring_handoff). */
static int ring_put(pipeline_t *p, struct dev *d, int quiet_busy, void *arg)
{
    (void)quiet_busy;
    (void)arg;
    int rc = pipeline__ring_seal_tail(&d->ring);
    return rc == 0 ? pipeline__ring_handoff(p, d, NULL) : rc;
}

/* At shutdown (shards stopped): seals every ring's tail and puts the blocks still in memory, so
 * the predictions survive a restart, then waits for the writer, whose reports name the rings
 * (they must come before the devices are freed). A tail seals into several blocks and the
 * detectors' saves (pipeline_save_all) are still queued, so with a few thousand devices the
 * store's queue (STORE_OPS_MAX puts) filled: 1,614 of 4,000 devices' newest predictions were
 * lost at every stop. pipeline__devs_put waits for the writer to empty a full queue and resumes
 * at the device that met it. */
static void rings_save(pipeline_t *p)
{
    if (p->store == NULL)
        return;
    int first = 0;
    int failed = pipeline__devs_put(p, ring_put, NULL, &first);
    if (failed)
        log_warn("pipeline: the newest predictions of %d devices not saved: %s", failed,
                 err_str(first));
    (void)store_flush(p->store);
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

/* A version that swaps a predictor in goes to the store with what serves again on a rollback
 * (pipeline_rollback reads it there): an LSTM's checkpoint, a linear model's or persistence's
 * parameters (detector_pred_save, in the same blob column: the bytes' magic tells them apart,
 * so the schema did not change). Without them it is no rollback point. */
int pipeline__version_put(pipeline_t *p, struct dev *d, const struct detector_train_info *info,
                          double seconds, size_t pooled, struct version *v)
{
    memset(v, 0, sizeof *v);
    v->version = info->version;
    const model_t *m = detector_model(d->det);
    void *ckpt = NULL;
    size_t len = 0;
    int rc = 0;
    const int lstm = info->kind == DET_KIND_LSTM;
    if (p->store && info->swapped && (lstm ? m != NULL : detector_pred_size(d->det) > 0)) {
        size_t cap = lstm ? model_checkpoint_size(m) : detector_pred_size(d->det);
        ckpt = malloc(cap);
        if (ckpt == NULL || (lstm ? model_checkpoint_save(m, ckpt, cap, &len)
                                  : detector_pred_save(d->det, ckpt, cap, &len))) {
            free(ckpt);
            ckpt = NULL;
            len = 0;
            rc = ERR_NOMEM; /* no rollback point: the version is not stored as it should be */
        }
    }
    v->has_ckpt = ckpt != NULL;
    v->info_json = pipeline__version_json(info, vtime_now_ms(), seconds, v->has_ckpt, pooled, d);
    const int64_t serving = info->swapped ? info->version : d->serving_version; /* kept */
    if (v->info_json == NULL)
        rc = ERR_NOMEM;
    else if (p->store && rc == 0)
        rc = store_model_put_keep(p->store, d->name, v->version, v->info_json, ckpt, len,
                                  p->o.versions, serving);
    free(ckpt);
    if (rc && v->has_ckpt) { /* it says no rollback from here */
        v->has_ckpt = 0;
        char *js = pipeline__version_json(info, vtime_now_ms(), seconds, 0, pooled, d);
        if (js) {
            free(v->info_json);
            v->info_json = js;
        }
    }
    return rc;
}

uint32_t pipeline__top_version(const struct dev *d)
{
    uint32_t top = d->ver_floor;
    for (size_t i = 0; i < d->nversions; i++)
        top = d->versions[i].version > top ? d->versions[i].version : top;
    return top;
}

void pipeline__version_add(pipeline_t *p, struct dev *d, struct version *v)
{
    /* Room: at most o.versions + 1 are kept (the trim below), the array holds 2 more. */
    d->versions[d->nversions++] = *v;
    v->info_json = NULL;
    atomic_store_explicit(&d->peek_todo, 1, memory_order_release);
    pipeline__versions_trim(p, d);
}

int pipeline__record_version(pipeline_t *p, struct dev *d, const struct detector_train_info *info,
                             double seconds, size_t pooled)
{
    struct version v;
    pipeline__serving_changed(p, d, info->swapped, info->version, info->kind);
    int rc = pipeline__version_put(p, d, info, seconds, pooled, &v);
    if (rc)
        log_warn("pipeline: model version %u of '%s' not saved: %s", v.version, d->name,
                 err_str(rc));
    pipeline__version_add(p, d, &v);
    return rc;
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
        sh->future_ms = (m->arrived_ms >= 0 ? m->arrived_ms : vtime_now_ms()) + PIPE_FUTURE_MS;
        /* Tests only (test_evlog.py, task ops68): "shard-score" in $VIGIL_TEST_HOLD_DIR holds a
         * committed message before its scoring, so a kill -9 leaves readings acknowledged and
         * not scored, for the restore's catch-up. Unset: one byte tested. */
        test_hold_wait(p->test_hold_dir, "shard-score", &p->stopping, NULL);
        pipeline__score_message(p, sh, &m->b);
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
    /* Tests only (pipeline_train.c, test_hold; pipeline_rollback.c, member_rollback; the
     * restore's catch-up; shard_main's scoring): read
     * once, here, and said in the log, so a deployment never runs with it unnoticed. */
    const char *hold = getenv("VIGIL_TEST_HOLD_DIR");
    if (hold && hold[0] != '\0') {
        if (snprintf(p->test_hold_dir, sizeof p->test_hold_dir, "%s", hold) >=
            (int)sizeof p->test_hold_dir)
            p->test_hold_dir[0] = '\0';
        log_warn("pipeline: VIGIL_TEST_HOLD_DIR is %s (a test hook): training threads, group "
                 "rollbacks, the restore and the shards' scoring wait at its hold points",
                 p->test_hold_dir[0] ? "set" : "too long, ignored");
    }
    pipeline__arrivals_init(p);
    /* Tests only (test_evreplay.py SaveHeld): a save due within a few readings of a restore's
     * catch-up, where a provisional event is (pipeline_store.c save_dev). */
    long long every = pipeline__test_knob("VIGIL_TEST_SAVE_EVERY", PIPE_KNOB_COUNT_MAX,
                                          "readings between two saves of a device's detector");
    if (every)
        p->o.save_every = (int)every;
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
        pipeline__evlog_lines_init(&sh->lines);
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

void pipeline_stop(pipeline_t *p)
{
    if (p == NULL || p->stopped)
        return;
    p->stopped = 1;
    /* First: the training under way is abandoned between two minibatches (train_set; asked
     * again at the next start) rather than waited for, which took up to 90 s for a large LSTM
     * or a group (docs/reliability.md, "A stop abandons a training"), and a job queued from
     * here on returns at once (train_next). */
    atomic_store(&p->stopping, 1);
    for (int s = 0; s < p->nshards; s++) {
        struct shard *sh = &p->shards[s];
        pthread_mutex_lock(&sh->mu);
        sh->stopping = 1;
        pthread_cond_broadcast(&sh->cv);
        pthread_cond_broadcast(&sh->space);
        pthread_mutex_unlock(&sh->mu);
        pthread_join(sh->thread, NULL);
    }
    /* Shards are stopped, so no new jobs; the pool ends after the training under way (the
     * queued ones return at once: train_next). An LSTM's training stops at its next minibatch;
     * what follows it (a group's members taking the decision, an apply and its version's
     * store) is not interrupted, and a wait that shows is logged: the stop's closing line
     * ("the stop's last scoring and saves ... took") counts it in its time without naming it. */
    const int64_t t0 = pipeline__mono_ns();
    wpool_destroy(p->train);
    p->train = NULL;
    const double waited = (double)(pipeline__mono_ns() - t0) / 1e9;
    /* After a failed start (pipeline_set_started not called: vigild__teardown) the words say
     * so (task knobs64): no stop came, only the teardown of a start that failed past the
     * restore, whose trainings (asked for by the restore) it still waits for or leaves. */
    if (waited >= 0.5)
        log_info("pipeline: the %s waited %.1f s for the training under way to end",
                 p->started ? "stop" : "teardown after the failed start", waited);
    pipeline__put_off_final(p);
    size_t skipped = pipeline__due_len(p);
    if (skipped > 0)
        log_info("pipeline: %zu due trainings not run %s (saved as asked for: the next start "
                 "asks for them again)",
                 skipped, p->started ? "at stop" : "after the failed start");
}

void pipeline_set_started(pipeline_t *p)
{
    if (p != NULL)
        p->started = 1;
}

long long pipeline__test_knob(const char *name, long long max, const char *what)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return 0;
    /* Digits only (task stop63; common/posint.h since knobs64): strtoll alone took " 3000" and
     * "+3000" as 3000, and "-5" silently as unset. No sign: every knob is a period, a count or a
     * bound, where a negative value means nothing; nor "0", which would read as set and act as
     * unset. */
    unsigned long long x;
    const int rc = posint_parse(v, (unsigned long long)max, &x);
    if (rc == ERR_RANGE) {
        log_warn("pipeline: %s is \"%s\" (a test hook): above %lld, ignored", name, v, max);
        return 0;
    }
    if (rc != 0) {
        log_warn("pipeline: %s is \"%s\" (a test hook): not a positive whole number (digits "
                 "only), ignored",
                 name, v);
        return 0;
    }
    log_warn("pipeline: %s is %llu (a test hook): %s", name, x, what);
    return (long long)x; /* at most max */
}

void pipeline_destroy(pipeline_t *p)
{
    if (p == NULL)
        return;
    pipeline_stop(p);
    for (int s = 0; s < p->nshards; s++) {
        struct shard *sh = &p->shards[s];
        pthread_cond_destroy(&sh->cv);
        pthread_cond_destroy(&sh->space);
        pthread_cond_destroy(&sh->idle);
        pthread_mutex_destroy(&sh->mu);
        free(sh->work);
        free(sh->res);
        pipeline__evlog_lines_deinit(&sh->lines);
        pipeline__chlists_free(&sh->chlists);
    }
    rings_save(p);
    /* What the pool logged while it was stopped (a training failing as it ended): held counts
     * the stop's flush came too early to say (read67c). */
    pipeline_log_flush(p, 1);
    struct dev *d, *tmp;
    HASH_ITER(hh, p->devs, d, tmp)
    {
        HASH_DEL(p->devs, d);
        dev_free(d);
    }
    nameidx_deinit(&p->idx);
    free(p->shards);
    pipeline__groups_free(p);
    pipeline__restart_stop(p);
    pthread_mutex_destroy(&p->maint_mu);
    pthread_mutex_destroy(&p->groups_mu);
    pthread_mutex_destroy(&p->due_mu);
    pthread_rwlock_destroy(&p->devs_lock);
    free(p);
}

/* ---- control ------------------------------------------------------------------------------ */

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

int pipeline_weights_put(pipeline_t *p, const char *device, const void *buf, size_t len, char *why,
                         size_t cap, int *unsaved)
{
    if (unsaved)
        *unsaved = 0;
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    model_t *m;
    int rc = model_safetensors_import_why(&m, buf, len, why, cap);
    if (rc)
        return rc;
    struct pipeline_durable dw;
    uint32_t version = 0;
    pipeline__durable_begin(p, &dw);
    pthread_mutex_lock(&d->mu);
    if (d->det == NULL) {
        rc = ERR_RANGE;
    } else {
        /* After the listed versions, the serving one and the detector's next number: a
         * training applied and not yet listed (member_apply to member_end, the store's flush
         * between) recorded a kept decision under a number its apply moved the next one past;
         * until session 51 the PUT could take it too, the store keeping one of the two. */
        version = detector_next_version(d->det);
        for (size_t i = 0; i < d->nversions; i++)
            if (d->versions[i].version >= version)
                version = d->versions[i].version + 1;
        if (d->serving_version >= version)
            version = d->serving_version + 1;
        rc = detector_set_model(d->det, m, version);
        if (rc == 0) /* the operator's module predicts every channel (read69b 1) */
            detector_predict_all(d->det);
        if (rc == ERR_INVAL && why && cap) {
            struct model_config a;
            int hidden, layers, C = detector_channels(d->det);
            model_get_config(m, &a);
            detector_model_size(d->det, &hidden, &layers);
            snprintf(why, cap,
                     "device '%s' needs inputs %d, hidden %d, layers %d, outputs %d (inputs and "
                     "outputs: its channels in the order they first arrived; hidden: model.hidden "
                     "when it "
                     "began); the file has inputs %d, hidden %d, layers %d, outputs %d",
                     device, C, hidden, layers, C, a.n_inputs, a.n_hidden, a.n_layers, a.n_outputs);
        }
        if (rc == 0) {
            struct detector_train_info info;
            memset(&info, 0, sizeof info);
            info.version = version;
            info.swapped = 1;
            info.kind = DET_KIND_LSTM;
            info.put = 1; /* not trained: its figures are null, not 0 */
            detector_predictors(d->det, info.persist, info.season);
            info.val_mse_lstm = info.val_mse_linear = NAN;
            info.val_mse_persistence = info.val_mse_serving = NAN;
            info.val_mse_lstm_alone = info.val_mse_linear_alone = NAN;
            pipeline__durable_version(&dw, pipeline__record_version(p, d, &info, 0, 0));
            pipeline__event_break_open(p, d); /* another model, as a rollback */
            /* The version's put is queued above; the detector that serves it is saved with it
             * before the answer (session 68: a kill -9 after it served the older one again),
             * and both must be committed for a 200 (session 69: the version row too). */
            pipeline__durable_saved(&dw, pipeline__save_durable(p, d));
        }
    }
    pthread_mutex_unlock(&d->mu);
    model_destroy(m);
    const int urc = rc == 0 ? pipeline__durable_end(p, &dw) : 0;
    if (urc && urc != ERR_AGAIN) /* deferred: the training's end saves it */
        log_warn("pipeline: weights PUT on device '%s' serve as version %u, but were not saved "
                 "(%s): a restart would serve the model before them again",
                 device, (unsigned)version, err_str(urc));
    if (unsaved)
        *unsaved = urc;
    return rc;
}

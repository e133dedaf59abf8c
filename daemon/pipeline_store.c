/* daemon/pipeline_store.c: the pipeline's persistence: saving detectors, and bringing devices
 * back after a restart (pipeline_restore), so no device re-enters learning.
 *
 * A saved detector is a blob: "VGPD", format 5, the channel names, the next event id and the
 * serving version, what the status reports (format 2: counters, the last reading's state,
 * score, model and values, the reading interval; format 3: what opened the active event), then
 * detector_save()'s bytes; when an LSTM serves, detector_save_shared()'s, with the LSTM's
 * checkpoint stored beside the blob (store_detector_put), once for all the detectors that serve
 * the same model (a group's members), and restored once for all of them, the detectors sharing
 * the model in memory too.
 * Format 4 appends flags (uint32): BLOB_TRAIN_ASKED, a training asked for (by the detector or
 * the API) and not applied when the save was made, which pipeline_restore asks for again at
 * once: the pool skips queued trainings at a stop, and the detector, which asked once, would
 * otherwise ask again only at its next due point (retrain_every readings on: an accepted
 * level or a settled offset learnt that much later, or never with retrain_every 0).
 * BLOB_TRAIN_ALL (session 47): an operator's retrain of the device not yet trained (its
 * retrain_all: the training takes every member of its group, held ones too), so a stop that
 * skipped or abandoned that training does not turn it into the schedule's at the next start.
 * A vigild before session 47 refuses a blob with it (an unknown flag): set only while such a
 * retrain is pending.
 * Format 5 (session 48) appends the active event's lean (dev.lean[nch] floats, then lean_seen
 * and lean_up, uint64 each; zeros when none is active), from which its sides go on after a
 * restart: before, they were taken from its stored row, which is the opening reading's (a
 * trip's reading leaning the other way from the rest of the episode turned a side over).
 * Format 1 blobs (without the status part) still load; their status starts again from the next
 * reading. Format 2 blobs load with the active event's opening reason unknown (as they ran),
 * unless the store still has the event. Formats 1-3 load with no training asked (as they ran).
 * Formats 1-4 load with the active event's sides from its stored row (as they ran).
 * Saves go through the storage writer asynchronously; restore runs once on the main thread before
 * readings flow. The trainings' window reads are in pipeline_window.c. */
#include "err.h"
#include "log.h"
#include "pipeline_int.h"
#include "pipeline_events_int.h"
#include "testhold.h"
#include "vtime.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Seconds between the restore's progress lines (its catch-up of the readings stored after each
 * detector's save). */
#define RESTORE_PROGRESS_S 10

#define BLOB_MAGIC       "VGPD"
#define BLOB_FORMAT      5u
#define BLOB_TRAIN_ASKED 1u
#define BLOB_TRAIN_ALL   2u

/* The status part of format 2: fixed fields, then contrib[nch], last_x[nch] and the active
 * anomaly event's accumulated channel shares ev_share[nch] (floats; ev_id 0: none active).
 * Format 3 appends the active event's opened_by (uint32, enum detector_open): the detector
 * names it only on the reading that enters state anomaly, so an episode restored without its
 * stored event (a write the busy store dropped) would otherwise lose it. */
struct blob_status {
    uint64_t scored, skipped_old;
    int64_t since_ts;
    double dt_ms;
    uint32_t has_result, state, kind, version;
    float score, threshold, raw, likelihood;
    int32_t top_channel;
    float ev_peak;
    uint64_t ev_id;
    int64_t ev_start_ts;
};

static void put32(uint8_t **p, uint32_t v)
{
    memcpy(*p, &v, 4);
    *p += 4;
}

/* Format 5's part: the active event's lean (dev.lean, lean_seen, lean_up), zeros when none is
 * active (active 0). */
static void lean_put(uint8_t **p, const struct dev *d, int active)
{
    const size_t vec = (size_t)d->nch * sizeof(float);
    const uint64_t seen = active ? d->lean_seen : 0, up = active ? d->lean_up : 0;
    if (active)
        memcpy(*p, d->lean, vec);
    else
        memset(*p, 0, vec);
    memcpy(*p + vec, &seen, 8);
    memcpy(*p + vec + 8, &up, 8);
    *p += vec + 16;
}

/* A save that did not reach the store: the store keeps the previous one (a restart then starts
 * from it); the next save (o.save_every readings on, or at shutdown) tries again. */
static int detector_not_saved(pipeline_t *p, const struct dev *d, int rc, int quiet_busy)
{
    uint64_t held;
    char note[160];
    unsigned place;
    if (!(quiet_busy && rc == ERR_BUSY) &&
        (place = log_limit_take(&p->save_fail_log, (int64_t)vtime_mono_s(), PIPE_WARN_EVERY_S,
                                PIPE_WARN_BURST, &held)) != 0)
        log_warn(
            "pipeline: detector of '%s' not saved: %s%s", d->name, err_str(rc),
            log_limit_note(note, sizeof note, place, held, PIPE_WARN_BURST, PIPE_WARN_EVERY_S));
    return rc;
}

/* Why save_dev saves nothing (SAVE_HELD: made up later), else 0: one list for save_dev and
 * save_one's count of the saves queued. Unconfirmed: the store keeps the save before the
 * training (its versions are stored); member_end saves once the version is found, or undoes
 * the training. This holds off the periodic save and the one of every detector at shutdown
 * alike. The catch-up's event not yet numbered (event.prov) would be saved as none active:
 * the save waits for its id (held: pipeline__save_held). */
#define SAVE_SKIPPED 1
#define SAVE_HELD    2
static int save_skips(const pipeline_t *p, const struct dev *d)
{
    if (p->store == NULL || d->det == NULL || d->unconfirmed)
        return SAVE_SKIPPED;
    return d->nevents && d->events[d->nevents - 1].prov ? SAVE_HELD : 0;
}

/* pipeline__save; quiet_busy: a full queue (ERR_BUSY) is not logged (the caller retries). A save
 * held for the event's id is made once it is numbered (pipeline__save_held, from the reading
 * that numbers it or the catch-up's settle), not save_every readings on: before session 65 the
 * count was reset here all the same, and a kill -9 until the next save replayed from the older
 * one. */
static int save_dev(pipeline_t *p, struct dev *d, int quiet_busy)
{
    d->since_save = 0;
    const int skip = save_skips(p, d);
    if (skip) { /* a held save stays held through another skip (a training unconfirmed) */
        d->save_held |= skip == SAVE_HELD;
        return 0;
    }
    d->save_held = 0;
    size_t names = 0;
    for (int c = 0; c < d->nch; c++)
        names += 2 + strlen(d->ch[c]);
    /* The serving LSTM's checkpoint goes beside the blob: the store keeps one copy of it for
     * every member of a group (and every version that holds the same model). */
    const model_t *lstm = detector_model(d->det);
    size_t csize = lstm ? model_checkpoint_size(lstm) : 0, clen = 0;
    uint8_t *ckpt = csize ? malloc(csize) : NULL;
    int rc = 0;
    if (csize && (ckpt == NULL || model_checkpoint_save(lstm, ckpt, csize, &clen) != 0))
        rc = ERR_NOMEM;
    size_t dsize = ckpt ? detector_save_shared_size(d->det) : detector_save_size(d->det);
    size_t stsize = sizeof(struct blob_status) + 3 * (size_t)d->nch * sizeof(float);
    size_t leansize = (size_t)d->nch * sizeof(float) + 16;
    size_t cap = 4 + 4 + 4 + names + 8 + 4 + stsize + 4 + 4 + leansize + dsize;
    uint8_t *blob = rc == 0 ? malloc(cap) : NULL, *w = blob;
    if (blob == NULL) {
        free(ckpt);
        return detector_not_saved(p, d, ERR_NOMEM, quiet_busy);
    }
    memcpy(w, BLOB_MAGIC, 4);
    w += 4;
    put32(&w, BLOB_FORMAT);
    put32(&w, (uint32_t)d->nch);
    for (int c = 0; c < d->nch; c++) {
        uint16_t n = (uint16_t)strlen(d->ch[c]);
        memcpy(w, &n, 2);
        memcpy(w + 2, d->ch[c], n);
        w += 2 + n;
    }
    memcpy(w, &d->next_event_id, 8);
    w += 8;
    put32(&w, d->serving_version);
    struct blob_status bs;
    memset(&bs, 0, sizeof bs);
    bs.scored = d->scored;
    bs.skipped_old = d->skipped_old;
    bs.since_ts = d->since_ts;
    bs.dt_ms = d->dt_ms;
    bs.has_result = (uint32_t)d->has_result;
    bs.state = (uint32_t)d->last.state;
    bs.kind = (uint32_t)d->last.kind;
    bs.version = d->last.version;
    bs.score = d->last.score;
    bs.threshold = d->last.threshold;
    bs.raw = d->last.raw;
    bs.likelihood = d->last.likelihood;
    bs.top_channel = d->last.top_channel;
    const struct event *ev = d->nevents ? &d->events[d->nevents - 1] : NULL;
    if (ev && ev->end_ts >= 0)
        ev = NULL;
    if (ev) {
        bs.ev_id = ev->id;
        bs.ev_start_ts = ev->start_ts;
        bs.ev_peak = ev->peak;
    }
    memcpy(w, &bs, sizeof bs);
    w += sizeof bs;
    memcpy(w, d->last.contrib, (size_t)d->nch * sizeof(float));
    w += (size_t)d->nch * sizeof(float);
    memcpy(w, d->last_x, (size_t)d->nch * sizeof(float));
    w += (size_t)d->nch * sizeof(float);
    if (ev)
        memcpy(w, ev->share, (size_t)d->nch * sizeof(float));
    else
        memset(w, 0, (size_t)d->nch * sizeof(float));
    w += (size_t)d->nch * sizeof(float);
    put32(&w, ev ? (uint32_t)ev->opened_by : 0);
    /* Due or training now, or asked before the stop and not yet asked again (a save during
     * the restore, before ask_again: the catch-up's or the maintenance end's): a save at the
     * stop (or a crash after this one) must not lose it (member_end's save after the training
     * applied records it as answered). */
    put32(&w, (d->due || d->training || d->again || d->train_asked ? BLOB_TRAIN_ASKED : 0) |
                  (d->retrain_all ? BLOB_TRAIN_ALL : 0));
    lean_put(&w, d, ev != NULL); /* format 5 */
    size_t dlen = 0;
    rc = ckpt ? detector_save_shared(d->det, w, dsize, &dlen)
              : detector_save(d->det, w, dsize, &dlen);
    if (rc == 0)
        rc = store_detector_put(p->store, d->name, d->last_ts, blob, (size_t)(w - blob) + dlen,
                                ckpt, clen);
    free(blob);
    free(ckpt);
    return rc ? detector_not_saved(p, d, rc, quiet_busy) : 0;
}

int pipeline__save(pipeline_t *p, struct dev *d)
{
    return save_dev(p, d, 0);
}

int pipeline__save_durable(pipeline_t *p, struct dev *d)
{
    const int deferred = p->store != NULL && d->det != NULL && save_skips(p, d) != 0;
    const int rc = save_dev(p, d, 0); /* a skip noted as save_dev notes it (held) */
    return rc ? rc : deferred ? ERR_AGAIN : 0;
}

int pipeline__save_held(pipeline_t *p, struct dev *d)
{
    return d->save_held && save_skips(p, d) == 0 ? save_dev(p, d, 0) : 0;
}

void pipeline__durable_begin(pipeline_t *p, struct pipeline_durable *w)
{
    memset(w, 0, sizeof *w);
    if (p->store) {
        store_stats_t st;
        store_stats_get(p->store, &st);
        w->failed = st.detector_saves_failed;
        w->models = st.model_puts_failed;
    }
}

void pipeline__durable_saved(struct pipeline_durable *w, int save_rc)
{
    if (w->rc == 0 || (w->rc == ERR_AGAIN && save_rc != 0)) /* a failure outranks a deferral */
        w->rc = save_rc;
}

void pipeline__durable_version(struct pipeline_durable *w, int put_rc)
{
    w->versions = 1;
    pipeline__durable_saved(w, put_rc);
}

int pipeline__durable_end(pipeline_t *p, const struct pipeline_durable *w)
{
    if (p->store == NULL)
        return 0;
    int rc = store_flush(p->store);
    store_stats_t st;
    store_stats_get(p->store, &st);
    if (w->rc && w->rc != ERR_AGAIN)
        return w->rc;
    if (rc == 0 && (st.detector_saves_failed != w->failed ||
                    (w->versions && st.model_puts_failed != w->models))) /* lost with a commit */
        rc = st.commit_last_err ? st.commit_last_err : ERR_IO;
    return rc ? rc : w->rc;
}

/* The store's queue holds STORE_OPS_MAX puts: with more devices than that, the saves of a stop
 * (or a snapshot) met a full queue and were lost ("busy", 1,274 of 20,000 devices at a stop),
 * and so did the newest prediction blocks the stop hands over (rings_save). A pass that meets
 * the full queue stops there, waits for the writer to empty it (store_flush, holding no lock:
 * the writer's commits feed the pipeline) and resumes at that device, which a full queue right
 * after the flush then fails for good (counted). Devices are never freed before
 * pipeline_destroy (a deleted one is flagged), so the device pointer stays valid across the
 * unlocked flush; a device added meanwhile is appended and so still visited. */
int pipeline__devs_put(pipeline_t *p, pipeline_dev_put_fn fn, void *arg, int *first_err)
{
    int failed = 0, first = 0;
    struct dev *from = NULL; /* where the last pass met the full queue */
    for (;;) {
        struct dev *busy = NULL;
        pthread_rwlock_rdlock(&p->devs_lock);
        for (struct dev *d = from ? from : p->devs; d; d = d->hh.next) {
            pthread_mutex_lock(&d->mu);
            int rc = fn(p, d, d != from, arg);
            pthread_mutex_unlock(&d->mu);
            if (rc == ERR_BUSY && d != from) {
                busy = d;
                break;
            }
            if (rc != 0 && failed++ == 0)
                first = rc;
        }
        pthread_rwlock_unlock(&p->devs_lock);
        if (busy == NULL)
            break;
        (void)store_flush(p->store);
        from = busy;
    }
    if (first_err != NULL)
        *first_err = first;
    return failed;
}

/* pipeline__devs_put's visitor for pipeline_save_all; arg counts the saves queued. */
static int save_one(pipeline_t *p, struct dev *d, int quiet_busy, void *arg)
{
    const int skip = save_skips(p, d); /* nothing saved (held: made up), nothing lost */
    int rc = save_dev(p, d, quiet_busy);
    if (rc == 0 && !skip)
        ++*(int *)arg;
    return rc;
}

int pipeline_save_all(pipeline_t *p, int *queued, int *first_err)
{
    int nqueued = 0;
    int failed = pipeline__devs_put(p, save_one, &nqueued, first_err);
    if (queued != NULL)
        *queued = nqueued;
    return failed;
}

/* Rebuilds a device from its saved blob and the LSTM it served (borrowed, shared: NULL when it
 * was saved with its own or none), with the running configuration's training settings
 * (detector_apply_settings). Returns 0 or ERR_CORRUPT / ERR_NOMEM / ERR_INVAL. */
static int load_blob(pipeline_t *p, struct dev *d, int64_t last_ts, const uint8_t *b, size_t n,
                     const model_t *lstm)
{
    const uint8_t *r = b, *end = b + n;
    uint32_t fmt, nch;
    if (n < 12 || memcmp(r, BLOB_MAGIC, 4) != 0)
        return ERR_CORRUPT;
    memcpy(&fmt, r + 4, 4);
    memcpy(&nch, r + 8, 4);
    r += 12;
    if (fmt < 1 || fmt > BLOB_FORMAT || nch < 1 || nch > DETECTOR_MAX_CHANNELS)
        return ERR_CORRUPT;
    char *names[DETECTOR_MAX_CHANNELS] = {0};
    int rc = ERR_CORRUPT;
    for (uint32_t c = 0; c < nch; c++) {
        uint16_t len;
        if (end - r < 2)
            goto fail;
        memcpy(&len, r, 2);
        if (end - r < 2 + len)
            goto fail;
        names[c] = strndup((const char *)r + 2, len);
        if (names[c] == NULL) {
            rc = ERR_NOMEM;
            goto fail;
        }
        r += 2 + len;
    }
    if (end - r < 12)
        goto fail;
    uint64_t next_event;
    uint32_t serving;
    memcpy(&next_event, r, 8);
    memcpy(&serving, r + 8, 4);
    r += 12;
    struct blob_status bs;
    float contrib[DETECTOR_MAX_CHANNELS], last_x[DETECTOR_MAX_CHANNELS];
    float ev_share[DETECTOR_MAX_CHANNELS];
    uint32_t ev_opened_by = 0;
    memset(&bs, 0, sizeof bs);
    if (fmt >= 2) {
        size_t vec = (size_t)nch * sizeof(float);
        if ((size_t)(end - r) < sizeof bs + 3 * vec)
            goto fail;
        memcpy(&bs, r, sizeof bs);
        memcpy(contrib, r + sizeof bs, vec);
        memcpy(last_x, r + sizeof bs + vec, vec);
        memcpy(ev_share, r + sizeof bs + 2 * vec, vec);
        r += sizeof bs + 3 * vec;
        if (bs.state > DET_ANOMALY || bs.kind > DET_KIND_LSTM || bs.top_channel >= (int32_t)nch)
            goto fail;
    }
    if (fmt >= 3) {
        if (end - r < 4)
            goto fail;
        memcpy(&ev_opened_by, r, 4);
        r += 4;
        if (ev_opened_by >= PIPE_OPEN_N)
            goto fail;
    }
    uint32_t flags = 0;
    if (fmt >= 4) {
        if (end - r < 4)
            goto fail;
        memcpy(&flags, r, 4);
        r += 4;
        if (flags & ~(BLOB_TRAIN_ASKED | BLOB_TRAIN_ALL))
            goto fail;
    }
    float lean[DETECTOR_MAX_CHANNELS] = {0};
    uint64_t lean_seen = 0, lean_up = 0;
    if (fmt >= 5) {
        const size_t vec = (size_t)nch * sizeof(float);
        if ((size_t)(end - r) < vec + 16)
            goto fail;
        memcpy(lean, r, vec);
        memcpy(&lean_seen, r + vec, 8);
        memcpy(&lean_up, r + vec + 8, 8);
        r += vec + 16;
    }
    detector_t *det;
    rc = detector_load_shared(&det, r, (size_t)(end - r), lstm);
    if (rc)
        goto fail;
    /* The retraining schedule, model.kind, model.lstm_min_rows, model.serving_precision and
     * model.trip_level are the running configuration's, not the ones the detector was saved
     * with (a save older than format 48 loads with the trip off and takes the running value
     * here; out of range: ERR_INVAL, as detector_create would give a new device). */
    rc = detector_apply_settings(det, &p->o.det);
    if (rc) {
        detector_destroy(det);
        goto fail;
    }
    if (detector_channels(det) != (int)nch) {
        detector_destroy(det);
        rc = ERR_CORRUPT;
        goto fail;
    }
    /* The device's attributes (read before its detector, pipeline_restore) name another input
     * set than the saved detector was made with: a PUT changed it after the last save (a crash
     * before the next). The detector made with the new set at that PUT was lost: learnt again,
     * as a lost detector is (else the old set stayed until the next change). */
    uint64_t saved_inputs = 0;
    for (uint32_t c = 0; c < nch; c++)
        saved_inputs |= (uint64_t)(detector_is_input(det, (int)c) ? 1 : 0) << c;
    if (pipeline__inputs_mask_of(d->attrs, names, (int)nch, d->name) != saved_inputs) {
        log_warn("pipeline: device '%s': its saved detector was made with other input channels "
                 "than its \"inputs\" attribute names now (changed after the last save)",
                 d->name);
        detector_destroy(det);
        rc = ERR_INVAL;
        goto fail;
    }
    for (int c = 0; c < d->nch; c++)
        free(d->ch[c]);
    memcpy(d->ch, names, sizeof names);
    d->nch = (int)nch;
    detector_destroy(d->det);
    d->det = det;
    d->inputs = saved_inputs; /* what pipeline__inputs_relearn compares with */
    d->gen++;
    d->last_ts = last_ts;
    d->last_ms = -1; /* its arrival's row, if any, is read after (pipeline_arrivals.c) */
    d->next_event_id = next_event;
    d->serving_version = serving;
    /* An operator's retrain pending is a training asked for, whichever member's entry it
     * joined (the asker's own request is asked again, merged if its group's is). */
    d->train_asked = (flags & (BLOB_TRAIN_ASKED | BLOB_TRAIN_ALL)) != 0;
    d->retrain_all = (flags & BLOB_TRAIN_ALL) != 0;
    if (fmt >= 2) {
        d->scored = bs.scored;
        d->skipped_old = bs.skipped_old;
        d->since_ts = bs.since_ts;
        d->dt_ms = bs.dt_ms;
        d->has_result = bs.has_result != 0;
        memset(&d->last, 0, sizeof d->last);
        d->last.state = (enum detector_state)bs.state;
        d->last.is_anomaly = bs.state == DET_ANOMALY;
        d->last.kind = (enum detector_kind)bs.kind;
        d->last.version = bs.version;
        d->last.score = bs.score;
        d->since_score = bs.score; /* the saved reading's: the one that entered it is gone */
        d->last.threshold = bs.threshold;
        d->last.raw = bs.raw;
        d->last.likelihood = bs.likelihood;
        d->last.top_channel = bs.top_channel;
        memcpy(d->last.contrib, contrib, nch * sizeof(float));
        memcpy(d->last_x, last_x, nch * sizeof(float));
        d->st_sent = PIPE_SHOWN_STATE(d); /* the state it left off in: no message for it */
        /* The event that was active at the save goes on with its peak and channel shares
         * (pipeline_restore keeps it when the store still has it active). */
        pipeline__events_clear(d);
        struct event *e = bs.ev_id != 0 ? pipeline__event_add(p, d) : NULL;
        if (e) {
            e->id = bs.ev_id;
            e->start_ts = bs.ev_start_ts;
            e->end_ts = -1;
            e->peak = bs.ev_peak;
            e->opened_by = (int)ev_opened_by;
            memcpy(e->share, ev_share, nch * sizeof(float));
            /* Format 5: its sides go on from the lean as saved (pipeline_events.c). */
            e->lean_kept = fmt >= 5;
            if (fmt >= 5) {
                memcpy(d->lean, lean, nch * sizeof(float));
                d->lean_seen = lean_seen;
                d->lean_up = lean_up;
            }
        }
    }
    rc = pipeline__ring_alloc(p, d);
    pipeline__apply_limits(p, d);
    return rc;
fail:
    for (uint32_t c = 0; c < nch; c++)
        free(names[c]);
    return rc;
}

struct restore_ctx {
    pipeline_t *p;
    int loaded, failed;
    /* The model of the previous detector's checkpoint (the store reports the detectors that
     * share one together): each checkpoint is parsed once, and its detectors share the model,
     * as a group's members do after a training. */
    int64_t ckpt_id;
    model_t *lstm;
    int ckpt_rc; /* its model_checkpoint_load's result */
    int models;  /* checkpoints parsed */
};

static int on_detector(void *arg, const char *device, int64_t last_ts, int64_t saved_ms,
                       const void *blob, size_t len, int64_t ckpt_id, const void *ckpt,
                       size_t ckpt_len)
{
    struct restore_ctx *rc = arg;
    struct dev *d = pipeline__dev(rc->p, device);
    if (d == NULL)
        return 0;
    if (ckpt_id != rc->ckpt_id) {
        model_destroy(rc->lstm);
        rc->lstm = NULL;
        rc->ckpt_id = ckpt_id;
        rc->ckpt_rc = ckpt ? model_checkpoint_load(&rc->lstm, ckpt, ckpt_len) : 0;
        rc->models += ckpt != NULL && rc->ckpt_rc == 0;
    }
    int err = rc->ckpt_rc == ERR_NOMEM ? ERR_NOMEM : rc->ckpt_rc ? ERR_CORRUPT : 0;
    pthread_mutex_lock(&d->mu);
    if (err == 0)
        err = load_blob(rc->p, d, last_ts, blob, len, rc->lstm);
    if (err == 0)
        d->det_saved_ms = saved_ms;
    pthread_mutex_unlock(&d->mu);
    if (err) {
        log_warn("pipeline: saved detector of '%s' unusable (%s); it learns again", device,
                 err_str(err));
        rc->failed++;
    } else {
        rc->loaded++;
    }
    return 0;
}

static int on_device(void *arg, const store_device_info_t *info)
{
    pipeline_t *p = arg;
    if (info->attrs_json && strcmp(info->attrs_json, "{}") != 0)
        pipeline_set_attrs(p, info->id, info->attrs_json);
    return 0;
}

/* One stored model version of d appended to its list. A device whose saved detector was lost or
 * unusable lists its kept versions too (they stay rollback points where they fit) and numbers
 * its new ones after them (ver_floor, dev_reset_detector); a restored detector numbers its new
 * ones after them too. */
static void version_add(pipeline_t *p, struct dev *d, int64_t version, const char *info_json,
                        int has_ckpt)
{
    if (version <= 0 || version > UINT32_MAX)
        return;
    pthread_mutex_lock(&d->mu);
    if (d->det == NULL && (uint32_t)version > d->ver_floor)
        d->ver_floor = (uint32_t)version;
    /* A saved detector older than its device's newest kept version (kill -9 between the
     * version's commit and the detector's save, pipeline_train.c member_end) numbers its next
     * one after it, not under its number again (which overwrote the kept record). */
    if (d->det)
        detector_number_after(d->det, (uint32_t)version);
    /* Listed lowest first: keep the newest and the serving one, as the running pipeline does
     * (a store written with a larger model.versions may hold more). */
    if (d->nversions == (size_t)p->o.versions + 2)
        pipeline__versions_trim(p, d);
    struct version *v = &d->versions[d->nversions];
    memset(v, 0, sizeof *v);
    v->version = (uint32_t)version;
    v->info_json = strdup(info_json);
    v->has_ckpt = has_ckpt; /* read from the store if it is rolled back to */
    d->nversions++;
    atomic_store_explicit(&d->peek_todo, 1, memory_order_release);
    pthread_mutex_unlock(&d->mu);
}

/* The fleet's versions read: its rows come device by device, so when it fails part way, the
 * devices it reported before the last one (cur) are whole, and cur may be cut. */
struct ver_read {
    pipeline_t *p;
    struct dev *cur;
};

/* store_models_all_cb: every device's model versions in one read (one query a device before:
 * task startup), lowest first, device by device. */
static int on_version(void *arg, const char *device, int64_t version, int64_t created_ms,
                      const char *info_json, int has_ckpt)
{
    struct ver_read *vr = arg;
    (void)created_ms;
    /* Every stored device, one whose saved detector was lost too (version_add). */
    struct dev *d = device ? pipeline__dev(vr->p, device) : NULL;
    if (d == NULL)
        return 0;
    d->restore_ver = 1;
    vr->cur = d;
    version_add(vr->p, d, version, info_json, has_ckpt);
    return 0;
}

/* store_model_cb: one device's versions (the per-device read after a failed fleet read). */
static int on_dev_version(void *arg, int64_t version, int64_t created_ms, const char *info_json,
                          int has_ckpt)
{
    struct ver_read *vr = arg;
    (void)created_ms;
    version_add(vr->p, vr->cur, version, info_json, has_ckpt);
    return 0;
}

/* Collects committed readings into a batch for re-feeding. */
struct refeed {
    batch_t b;
    const char *device;
};

static int on_point(void *arg, int64_t ts, size_t n, const char *const *ch, const double *v)
{
    struct refeed *rf = arg;
    if (batch_point_begin(&rf->b, rf->device, strlen(rf->device), ts, 0))
        return 1;
    for (size_t i = 0; i < n; i++)
        if (batch_field_add(&rf->b, ch[i], strlen(ch[i]), v[i])) {
            batch_point_abort(&rf->b);
            return 1;
        }
    batch_point_commit(&rf->b);
    return 0;
}

/* Feeds a device the readings the store has after its detector's save (or, without a saved
 * detector, its most recent history), so its state is what it was. */
static void refeed(pipeline_t *p, struct dev *d, int64_t last_ts, int have_det)
{
    struct refeed rf = {.device = d->name};
    batch_init(&rf.b);
    store_query_t q = {.device = d->name, .from_ms = last_ts + 1, .to_ms = VTIME_MAX_MS + 1};
    if (!have_det) {
        /* Newest first, then reversed into time order. */
        q.from_ms = VTIME_MIN_MS;
        q.limit = (size_t)p->o.det.history;
        q.desc = 1;
    }
    if (store_query(p->store, &q, on_point, &rf) == 0 && rf.b.npoints > 0) {
        if (q.desc) {
            for (size_t i = 0, j = rf.b.npoints - 1; i < j; i++, j--) {
                batch_point_t t = rf.b.points[i];
                rf.b.points[i] = rf.b.points[j];
                rf.b.points[j] = t;
            }
        }
        pipeline__feed_at(p, &rf.b, -1); /* stored readings: no arrival */
    }
    batch_deinit(&rf.b);
}

/* Collects device names first: queries must not run inside another query's callback. */
struct names {
    char **v;
    int64_t *last;
    int *have;
    size_t n, cap;
};

static int add_name(void *arg, const store_device_info_t *info)
{
    struct names *nm = arg;
    if (nm->n == nm->cap) {
        size_t cap = nm->cap ? nm->cap * 2 : 64;
        char **v = realloc(nm->v, cap * sizeof *v);
        if (v == NULL)
            return 1;
        nm->v = v;
        nm->cap = cap;
    }
    nm->v[nm->n] = strdup(info->id);
    if (nm->v[nm->n])
        nm->n++;
    return 0;
}

/* store_pred_list_cb: a stored prediction block becomes the newest of its device's ring, if its
 * device was restored with channels of its width and the block ends by the detector's state
 * (after a crash, blocks newer than the saved detector are predicted again by the catch-up:
 * adopting them too would answer those timestamps twice). The first block that does not fit
 * ends the device's run (a gap in the numbers starts a new one: pipeline__ring_adopt); the
 * next put's trim deletes what is not adopted. */
struct pred_restore {
    pipeline_t *p;
    struct dev *d; /* the device of the previous block (NULL: unknown or not restored) */
    int stopped;   /* d's run has ended */
    size_t blocks, devices;
};

static int on_pred_block(void *arg, const char *device, int64_t seq, uint32_t n, int nch,
                         int64_t t1)
{
    struct pred_restore *x = arg;
    if (x->d == NULL || strcmp(x->d->name, device) != 0) {
        x->d = pipeline__find(x->p, device);
        x->stopped = 0;
        if (x->d)
            x->devices++;
    }
    struct dev *d = x->d;
    if (d == NULL || x->stopped)
        return 0;
    pthread_mutex_lock(&d->mu);
    int ok = d->det != NULL && d->ring.nch == nch && t1 <= d->last_ts &&
             pipeline__ring_adopt(&d->ring, seq, n) == 0;
    pthread_mutex_unlock(&d->mu);
    x->stopped = !ok;
    x->blocks += ok;
    return 0;
}

/* A training d asked for before the stop and did not get is asked for now, after the catch-up
 * (which may have asked already: then it is merged). Returns 1 when one was asked. */
static int ask_again(pipeline_t *p, struct dev *d)
{
    if (d == NULL)
        return 0;
    pthread_mutex_lock(&d->mu);
    int asked = d->train_asked && d->det != NULL;
    d->train_asked = 0;
    if (asked)
        (void)pipeline__mark_due(p, d);
    pthread_mutex_unlock(&d->mu);
    return asked;
}

/* After a fleet-wide read failed part way (a corrupt page, an I/O error), the devices it did
 * not finish are read one by one, as each was before task startup, so one bad page costs the
 * devices whose own rows are on it and not every device after it in the read's order. The
 * versions: the devices the read never reported, and the last one it did (its list may be cut:
 * cleared and read again); the active events' fallback is pipeline_restore_events.c's. Returns
 * the devices whose own read failed too. */
static size_t versions_fallback(pipeline_t *p, const struct names *nm, struct dev *cut)
{
    size_t failed = 0;
    for (size_t i = 0; i < nm->n; i++) {
        struct dev *d = pipeline__dev(p, nm->v[i]); /* a lost detector's too (version_add) */
        if (d == NULL || (d->restore_ver && d != cut))
            continue;
        pthread_mutex_lock(&d->mu);
        for (size_t k = 0; k < d->nversions; k++)
            free(d->versions[k].info_json);
        d->nversions = 0;
        pthread_mutex_unlock(&d->mu);
        struct ver_read vr = {.p = p, .cur = d};
        failed += store_models_list(p->store, d->name, on_dev_version, &vr) != 0;
    }
    return failed;
}

int pipeline_restore(pipeline_t *p)
{
    if (p->store == NULL) {
        atomic_store_explicit(&p->events_logged, 1, memory_order_release);
        return 0;
    }
    int rc = store_device_each(p->store, on_device, p);
    struct restore_ctx rctx = {.p = p};
    if (rc == 0)
        rc = store_detectors_load(p->store, on_detector, &rctx);
    model_destroy(rctx.lstm);
    if (rc == 0)
        rc = pipeline__maint_restore(p);
    /* The arrivals, after the detectors (last_ms pairs with a restored last_ts) and before the
     * catch-up; a failed read is logged and leaves silence counting from the start. */
    if (rc == 0)
        (void)pipeline__arrivals_restore(p);
    /* The rings' older predictions, before the catch-up pushes newer ones. */
    struct pred_restore prx = {.p = p};
    if (rc == 0 && store_preds_list(p->store, on_pred_block, &prx) != 0)
        log_warn("pipeline: stored predictions not restored: %s", store_errmsg(p->store));
    struct names nm = {0};
    if (rc == 0)
        rc = store_device_each(p->store, add_name, &nm);
    /* Every restored device's model versions and active event, each in one read of the fleet
     * (a query of each a device was a third of the restore at 2,000 devices: task startup),
     * before any catch-up feeds a reading; a read that fails goes on device by device. */
    struct ver_read vr = {.p = p};
    if (rc == 0 && store_models_list_all(p->store, on_version, &vr) != 0) {
        log_warn("pipeline: the fleet's model versions read failed (%s); the devices it did not "
                 "finish are read one by one",
                 store_errmsg(p->store));
        size_t n = versions_fallback(p, &nm, vr.cur);
        if (n)
            log_warn("pipeline: stored model versions of %zu devices not restored", n);
    }
    struct ev_ids ids = {.p = p};
    if (rc == 0) {
        pipeline__events_restore(p, nm.v, nm.n, &ids.left);
        pipeline__event_ids_read(p, &ids);
    }
    /* The newest rows' "restart" ends (end_lost_restore) are checked after the catch-up. */
    const size_t rr_mark = pipeline__restart_mark(p);
    store_stats_t st0;
    store_stats_get(p->store, &st0);
    /* A first start on a large database reads for tens of seconds here (read66b's finding 6:
     * 22 s on 2,000 devices, silent): the log says what comes, then how far it is. */
    if (rc == 0)
        log_info("pipeline: %d detector%s loaded; catching up on the stored readings of %zu "
                 "device%s (progress every %d s)",
                 rctx.loaded, rctx.loaded == 1 ? "" : "s", nm.n, nm.n == 1 ? "" : "s",
                 RESTORE_PROGRESS_S);
    /* Tests only (test_startsig.py, a signal during the restore): with $VIGIL_TEST_HOLD_DIR
     * (p->test_hold_dir) naming a folder holding "restore-catch-up", waits here while it exists
     * (common/testhold.h: at most 60 s). Unset: one byte tested. */
    test_hold_wait(p->test_hold_dir, "restore-catch-up", NULL, "pipeline");
    const double t0 = vtime_mono_s();
    double said = t0;
    for (size_t i = 0; rc == 0 && i < nm.n; i++) {
        double now = vtime_mono_s();
        if (now - said >= RESTORE_PROGRESS_S) {
            log_info("pipeline: catching up: %zu of %zu devices read (%.0f s)", i, nm.n, now - t0);
            said = now;
        }
        struct dev *d = pipeline__find(p, nm.v[i]);
        int have_det = d && d->det;
        int64_t last_ts = have_det ? d->last_ts : -1;
        if (have_det) {
            pthread_mutex_lock(&d->mu);
            pipeline__event_chain_restore(p, d); /* the next event may continue its last */
            pthread_mutex_unlock(&d->mu);
        }
        int krc = have_det ? pipeline__event_replay_keys(p, d, ids.read) : 0;
        if (krc != 0)
            log_warn("pipeline: device '%s': its events stored after its detector's last save "
                     "not read (%s): its catch-up numbers the events it opens from the saved "
                     "next id",
                     d->name, krc == ERR_NOMEM ? err_str(krc) : store_errmsg(p->store));
        if (d == NULL)
            d = pipeline__dev(p, nm.v[i]);
        if (d)
            refeed(p, d, last_ts, have_det);
    }
    if (vtime_mono_s() - t0 >= RESTORE_PROGRESS_S) /* a long read: the scoring may be too */
        log_info("pipeline: catching up: %zu devices read (%.0f s); waiting for their scoring",
                 nm.n, vtime_mono_s() - t0);
    pipeline_drain(p);
    for (size_t i = 0; i < nm.n; i++) { /* an episode left provisional numbered (read64c) */
        struct dev *d = pipeline__find(p, nm.v[i]);
        if (d)
            pipeline__event_replay_settle(p, d);
    }
    /* Some were queued or refused: the writer waited for, then any lost put is taken as
     * possibly theirs (as stale_end does for the older rows'). */
    if (pipeline__restart_mark(p) > rr_mark) {
        store_stats_t st1;
        int frc = store_flush(p->store);
        store_stats_get(p->store, &st1);
        pipeline__restart_check(p, rr_mark, frc != 0 || st1.ops_failed != st0.ops_failed);
    }
    /* After the catch-up's readings numbered theirs; its rows not opened again are ended with
     * their own check of their puts (stale_end), after the one above. */
    pipeline__event_ids_apply(&ids);
    /* The catch-up's openings are over, and its left rows' fates taken from the keys' hits
     * (left_end): the live ones number from the next id, raised past the highest stored id
     * the keys knew (the highest ids' read failing, a row ended after the save that the
     * replay did not open again is no left row: a live event took its id, read64's finding 2;
     * raised before left_end, every left row would read opened again). */
    for (size_t i = 0; i < nm.n; i++) {
        struct dev *d = pipeline__find(p, nm.v[i]);
        if (d == NULL)
            continue;
        pthread_mutex_lock(&d->mu);
        if (d->next_event_id < d->replay_max)
            d->next_event_id = d->replay_max;
        free(d->replay);
        d->replay = NULL;
        d->nreplay = 0;
        d->replay_max = 0;
        d->replay_keyed = d->replay_past = 0;
        pthread_mutex_unlock(&d->mu);
    }
    pipeline__restart_begin(p);
    /* A period that ended while vigild was stopped, after the catch-up's readings (one of
     * them in the period already ended the episode open across it). */
    for (size_t i = 0; rc == 0 && i < nm.n; i++) {
        struct dev *d = pipeline__find(p, nm.v[i]);
        if (d)
            pipeline__maint_restore_ended(p, d);
    }
    int asked = 0;
    for (size_t i = 0; rc == 0 && i < nm.n; i++)
        asked += ask_again(p, pipeline__find(p, nm.v[i]));
    for (size_t i = 0; i < nm.n; i++)
        free(nm.v[i]);
    free(nm.v);
    log_info("pipeline: %d detectors restored (%d unusable, %d shared models), %zu devices caught "
             "up, %zu stored prediction blocks, %d trainings asked for before the stop asked "
             "again",
             rctx.loaded, rctx.failed, rctx.models, nm.n, prx.blocks, asked);
    /* From here episodes' openings and ends are new: logged (pipeline_evlog.c). */
    atomic_store_explicit(&p->events_logged, 1, memory_order_release);
    return rc;
}

/* daemon/pipeline_rollback.c: a kept version made to serve again (pipeline_rollback), on one
 * device or on every member of its group.
 *
 * What a version kept is read from the store outside any device lock (a read may wait for the
 * disk) and installed under each device's lock in turn. A group's rollbacks are serialised by
 * its rollback_mu, taken before any device's mu and held across the reads; the group's members
 * are walked under groups_mu one step at a time (pipeline__group_next), never across a read or
 * an install. Any thread (the API's). */
#include "err.h"
#include "log.h"
#include "pipeline_groups_int.h"
#include "pipeline_int.h"
#include "pipeline_events_int.h"
#include "testhold.h"

#include <stdlib.h>
#include <string.h>

/* 1 when d keeps version `version` with its checkpoint or parameters in the store; -1 when it
 * keeps it as a linear model's or persistence's recorded by an older vigild (which kept no
 * parameters for them); -2 when its record says it was trained on other channels than d has
 * now (*trained gets how many); 0 when it keeps no such version that served. A version
 * recorded before session 45 does not say: its kept bytes tell, when they are installed.
 * Caller holds d->mu. */
static int has_rollback(const struct dev *d, uint32_t version, int *trained)
{
    for (size_t i = 0; i < d->nversions; i++) {
        const struct version *v = &d->versions[i];
        if (v->version != version || d->det == NULL)
            continue;
        const int k = pipeline__version_served(v->info_json, trained);
        if (v->has_ckpt)
            return *trained > 0 && *trained != d->nch ? -2 : 1;
        return k == DET_KIND_LINEAR || k == DET_KIND_PERSISTENCE ? -1 : 0;
    }
    return 0;
}

/* What a version kept: an LSTM (m, made from the checkpoint's bytes, which raw keeps), or a
 * linear model's or persistence's parameters (pred, len bytes of detector_pred_save's). A group
 * member's read is given the asking member's (like): when its bytes are the same (the group's
 * trained LSTM, one model) it makes no model of its own (same), so the members go on sharing
 * one copy of the weights. The caller owns m, pred and raw (kept_free). */
struct kept {
    model_t *m;
    void *pred;
    size_t len;
    void *raw;
    size_t rawlen;
    const struct kept *like;
    int same;
    int rc;
};

static void kept_free(struct kept *k)
{
    model_destroy(k->m);
    free(k->pred);
    free(k->raw);
    memset(k, 0, sizeof *k);
}

/* store_model_get's callback: the bytes are borrowed, so the model is made, or the parameters
 * copied, here. Their magic tells which (an LSTM's checkpoint or detector_pred_save's). */
static void on_ckpt(void *arg, int64_t version, const char *info_json, const void *ckpt, size_t len)
{
    struct kept *k = arg;
    (void)version;
    (void)info_json;
    if (ckpt == NULL || len == 0) {
        k->rc = ERR_NOTFOUND;
    } else if (len >= 4 && memcmp(ckpt, DETECTOR_PRED_MAGIC, 4) == 0) {
        k->pred = malloc(len);
        k->rc = k->pred ? 0 : ERR_NOMEM;
        if (k->pred) {
            memcpy(k->pred, ckpt, len);
            k->len = len;
        }
    } else if (k->like && k->like->raw && len == k->like->rawlen &&
               memcmp(ckpt, k->like->raw, len) == 0) {
        k->same = 1;
        k->rc = 0;
    } else {
        k->rc = model_checkpoint_load(&k->m, ckpt, len);
        k->raw = k->rc == 0 ? malloc(len) : NULL;
        if (k->raw) {
            memcpy(k->raw, ckpt, len);
            k->rawlen = len;
        }
    }
}

/* Reads what a device's version kept from the store into *k (kept_free).
 * The put that recorded the version is asynchronous: when the store does not hold it yet, one
 * flush makes everything queued before durable and the read is tried again. Returns 0,
 * ERR_NOTFOUND, or the store's or the checkpoint's error. Any thread but the writer's; the
 * caller holds no device lock (a read may wait for the disk). */
static int version_read(pipeline_t *p, const char *device, uint32_t version,
                        const struct kept *like, struct kept *k)
{
    memset(k, 0, sizeof *k);
    if (p->store == NULL)
        return ERR_NOTFOUND;
    for (int attempt = 0;; attempt++) {
        k->like = like;
        k->rc = ERR_NOTFOUND;
        int rc = store_model_get(p->store, device, version, on_ckpt, k);
        if (rc == 0)
            rc = k->rc;
        if (rc == 0)
            return 0;
        kept_free(k);
        if (rc != ERR_NOTFOUND || attempt > 0 || store_flush(p->store) != 0)
            return rc;
    }
}

/* The channels kept bytes k serve: a linear model's or persistence's record says; an LSTM
 * predicts each of its channels (one output a channel). */
static int kept_channels(const struct kept *k)
{
    if (k->m) {
        struct model_config mc;
        model_get_config(k->m, &mc);
        return mc.n_outputs;
    }
    enum detector_kind kind;
    int c = 0;
    return detector_pred_check(k->pred, k->len, &kind, &c) == 0 ? c : 0;
}

/* rollback_one's answer for a member that left the group (or was deleted) before its install. */
#define ROLLBACK_LEFT 1

/* Makes version `version`, which kept k (borrowed), serve again on one device, if d still
 * keeps that version and, for a member of g's rollback (g not NULL), is still in g: else
 * ROLLBACK_LEFT. ERR_INVAL: it does not fit d (*fit: the channels it was trained on and d's
 * now; the same counts when its LSTM's other dimensions differ). Installed, d is saved (its
 * status goes to dw: the caller waits for the commit). */
static int rollback_one(pipeline_t *p, struct dev *d, const struct group *g, uint32_t version,
                        const struct kept *k, struct pipeline_fit *fit, struct pipeline_durable *dw)
{
    pthread_mutex_lock(&d->mu);
    if (g != NULL && d->group != g) { /* left g (or was deleted) during its read: as it is */
        pthread_mutex_unlock(&d->mu);
        return ROLLBACK_LEFT;
    }
    int rc = ERR_NOTFOUND, trained = 0;
    enum detector_kind kind = DET_KIND_LSTM;
    const int ok = has_rollback(d, version, &trained);
    if (ok == 1)
        rc = k->m ? detector_set_model(d->det, k->m, version)
                  : detector_set_pred(d->det, k->pred, k->len, version, &kind);
    else if (ok == -2) /* a channel came between the check and here */
        rc = ERR_INVAL;
    if (rc == ERR_INVAL) {
        fit->trained = kept_channels(k);
        fit->now = d->nch;
        if (k->m && fit->trained == fit->now) { /* the same channels: another size */
            struct model_config mc;
            model_get_config(k->m, &mc);
            fit->size[0] = mc.n_hidden;
            fit->size[1] = mc.n_layers;
            detector_model_size(d->det, &fit->dev_size[0], &fit->dev_size[1]);
        }
    }
    if (rc == 0) {
        pipeline__serving_changed(p, d, 1, version, kind);
        pipeline__event_break_open(p, d); /* another model judges the readings from here */
        /* Saved now: until session 68 only a stop or a snapshot saved it, and a kill -9 after
         * the answer served the version before it again. */
        pipeline__durable_saved(dw, pipeline__save_durable(p, d));
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* A group rollback's install on member e of g (not the asking member, whose kept bytes k are
 * borrowed), saying in the log why e stays as it is when it does; nothing when that rollback
 * (its mark) visited e already, before a leave sent its walk back to the start. Holding no
 * device lock. */
static void member_rollback(pipeline_t *p, struct dev *e, const struct group *g, uint32_t version,
                            const struct kept *k, uint64_t mark, struct pipeline_durable *dw)
{
    pthread_mutex_lock(&e->mu);
    const int seen = e->rollback_mark == mark;
    e->rollback_mark = mark;
    pthread_mutex_unlock(&e->mu);
    if (seen)
        return;
    struct kept own;
    int mrc = version_read(p, e->name, version, k, &own);
    /* Tests only (test_traingaps.py MemberLeftDuringItsRead): with VIGIL_TEST_HOLD_DIR set, the
     * rollback waits here while <dir>/rollback-read exists (common/testhold.h; at most 60 s, or
     * until the stop), e's record read and not yet installed, so a test moves e out of g inside
     * that window. It waits holding g's rollback_mu (no device's mu): only another rollback of
     * g waits behind it. Unset (any deployment): a test of one byte. */
    test_hold_wait(p->test_hold_dir, "rollback-read", &p->stopping, NULL);
    struct pipeline_fit mfit = {0};
    if (mrc == 0)
        mrc = rollback_one(p, e, g, version, own.same ? k : &own, &mfit, dw);
    kept_free(&own);
    if (mrc == ROLLBACK_LEFT)
        return;
    if (mrc == ERR_INVAL && mfit.trained > 0 && mfit.trained != mfit.now)
        log_warn("pipeline: device '%s' of group '%s' stays as it is: version %u was trained on "
                 "%d channels and the device has %d now",
                 e->name, g->name, version, mfit.trained, mfit.now);
    else if (mrc == ERR_INVAL && mfit.trained > 0) /* as the API's 409 */
        log_warn("pipeline: device '%s' of group '%s' stays as it is: version %u is an LSTM of "
                 "hidden %d, layers %d and the device's model has hidden %d, layers %d",
                 e->name, g->name, version, mfit.size[0], mfit.size[1], mfit.dev_size[0],
                 mfit.dev_size[1]);
    else if (mrc && mrc != ERR_NOTFOUND && mrc != ERR_RANGE)
        log_warn("pipeline: device '%s' of group '%s' stays as it is: its record of version %u "
                 "could not be installed (%s)",
                 e->name, g->name, version, err_str(mrc));
    else if (mrc)
        log_warn("pipeline: device '%s' of group '%s' has no version %u to roll back to", e->name,
                 g->name, version);
}

/* pipeline_rollback on d, of group g (NULL: none), holding g's rollback_mu. */
static int rollback_set(pipeline_t *p, struct dev *d, struct group *g, uint32_t version,
                        struct pipeline_fit *fit, struct pipeline_durable *dw)
{
    pthread_mutex_lock(&d->mu);
    int trained = 0;
    int ok = has_rollback(d, version, &trained);
    if (ok == -2) {
        fit->trained = trained;
        fit->now = d->nch;
    }
    pthread_mutex_unlock(&d->mu);
    if (ok != 1)
        return ok < 0 ? ERR_INVAL : ERR_RANGE;
    /* What it kept is read once, outside the device's lock (the shard steps d meanwhile). */
    struct kept k;
    int rc = version_read(p, d->name, version, NULL, &k);
    /* The read's ERR_INVAL (a later vigild's checkpoint format) is corrupt here: this
     * function's ERR_INVAL says an older vigild kept no parameters. */
    if (rc)
        return rc == ERR_NOTFOUND ? ERR_RANGE : rc == ERR_INVAL ? ERR_CORRUPT : rc;
    rc = rollback_one(p, d, NULL, version, &k, fit, dw);
    if (rc == ERR_NOTFOUND)
        rc = ERR_RANGE; /* the version went meanwhile (a newer training pruned it) */
    else if (rc == ERR_INVAL && fit->trained == 0)
        rc = ERR_CORRUPT; /* a later vigild's record format (detector_pred_check) */
    /* Otherwise ERR_INVAL: intact bytes (their CRC held) of another shape than the device's. */
    if (rc == 0 && g != NULL) {
        /* Each member gets back what it served at that version: its own record of it. For
         * a version the group trained they are the asking member's bytes (one model, shared
         * as before: kept.same); a PUT of weights on each member gave each its own LSTM
         * under one number, and a linear model's record is each member's own. A member that
         * keeps no record of it (left out of that training, or joined since) stays as it is:
         * another member's model would serve it under a version it never served.
         * The members come from a walk of g's list, which allocates nothing and holds
         * groups_mu only within each step, so each read waits for the disk holding no lock but
         * rollback_mu (session 58: out of memory for a copy of the list, only the asking member
         * was rolled back, with a 200 and no line). A member that leaves g meanwhile sends the
         * walk back to the list's start; a member it meets again is passed over (its mark:
         * review of session 58, before which it was read from the store, installed and said in
         * the log once more at each restart), so the reads and lines are one per device and
         * a restart costs a lock per member seen before it. */
        const uint64_t mark =
            atomic_fetch_add_explicit(&p->rollback_marks, 1, memory_order_relaxed) + 1;
        struct group_walk w = {0};
        for (struct dev *e; (e = pipeline__group_next(p, g, &w)) != NULL;)
            if (e != d)
                member_rollback(p, e, g, version, &k, mark, dw);
    }
    kept_free(&k);
    return rc;
}

int pipeline_rollback(pipeline_t *p, const char *device, uint32_t version, struct pipeline_fit *fit)
{
    memset(fit, 0, sizeof *fit);
    struct dev *d = pipeline__find(p, device);
    if (d == NULL) {
        log_info("pipeline: operator rollback of device '%s' to version %u refused: not known",
                 device, (unsigned)version);
        return ERR_NOTFOUND;
    }
    /* A group's rollbacks one at a time: two asked at once on two members would each install
     * their members' records in turn, interleaved, and leave them on two versions. d's group is
     * looked at again once its lock is held: d may have left it (or joined another) while it
     * waited behind another rollback, and the rollback is of the group d is in now. At most
     * one group's rollback_mu is held at a time. */
    struct group *g = NULL, *held = NULL;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        g = d->group;
        pthread_mutex_unlock(&d->mu);
        if (g == held)
            break;
        if (held)
            pthread_mutex_unlock(&held->rollback_mu);
        if ((held = g) != NULL)
            pthread_mutex_lock(&held->rollback_mu);
    }
    pthread_mutex_lock(&d->mu);
    const uint32_t was = d->serving_version;
    pthread_mutex_unlock(&d->mu);
    struct pipeline_durable dw;
    pipeline__durable_begin(p, &dw);
    int rc = rollback_set(p, d, g, version, fit, &dw);
    if (g)
        pthread_mutex_unlock(&g->rollback_mu);
    if (rc == 0) /* the answer says it serves: saved first (session 68) */
        fit->unsaved = pipeline__durable_end(p, &dw);
    if (rc == 0 && fit->unsaved && fit->unsaved != ERR_AGAIN) /* deferred: a training's end */
        log_warn("pipeline: operator rollback of device '%s' to version %u serves, but was not "
                 "saved (%s): a restart would serve version %u again; roll back again once the "
                 "store writes",
                 device, (unsigned)version, err_str(fit->unsaved), (unsigned)was);
    /* Every operator's rollback in the log, as its retrains (session 65). */
    if (rc == 0)
        log_info("pipeline: operator rollback of device '%s' from version %u to version %u: "
                 "done",
                 device, (unsigned)was, (unsigned)version);
    else
        log_info("pipeline: operator rollback of device '%s' from version %u to version %u "
                 "refused: %s",
                 device, (unsigned)was, (unsigned)version,
                 rc == ERR_RANGE   ? "no such version that served"
                 : rc == ERR_INVAL ? "the version cannot serve the device as it is"
                                   : err_str(rc));
    return rc;
}

/* daemon/pipeline_member.c: one device's part in a training, a single device's or a group's
 * alike (struct member, pipeline_int.h), in its steps: begin (the job made from the detector
 * under the device's lock, or the device left out), apply (the job applied under the lock, the
 * detector copied first when a store holds versions, the version's put queued), confirm (the
 * applied versions looked up in the store after one flush), end (the training kept or undone,
 * a failure logged and counted, the device free to train again). pipeline_train.c's train_set
 * calls them in that order; its header says why a training is kept only once its version is
 * stored. Apart from pipeline_train.c (session 52, a pure move) because these steps are about
 * one device, the due-set and the group's run about the training as a whole.
 *
 * Threads: training pool threads. Locks: begin, apply and end each take the member's device's
 * mu for their step; confirm holds no lock (pipeline_train.c's header gives the lock order). */
#include "err.h"
#include "log.h"
#include "pipeline_groups_int.h"
#include "pipeline_int.h"
#include "pipeline_events_int.h"

#include <stdlib.h>
#include <string.h>

/* Makes m's job under its lock (0), or leaves it out (nonzero). With want_nch > 0 the device
 * must have that channel set (names); with leave_held, its detector must not hold an episode
 * (ERR_BUSY: its request is put off, detector_train_put_off). */
int pipeline__member_begin(pipeline_t *p, struct member *m, struct group *g, int want_nch,
                           char *const *want, int leave_held)
{
    struct dev *d = m->d;
    int rc = 0;
    pthread_mutex_lock(&d->mu);
    if (d->det == NULL || d->training || (g && d->group != g))
        rc = ERR_RANGE;
    if (rc == 0 && leave_held && detector_holding(d->det)) {
        /* Asked before the episode opened and begun after (it waited in the due-set), or a
         * group's training asked by another member: not now. The schedule asks again at the
         * first reading after the episode ends or is accepted. */
        rc = ERR_BUSY;
        (void)detector_train_put_off(d->det);
        d->left_out = 1; /* its request after the episode, while this training runs: again */
        pipeline__put_off_log(p, d, g);
    }
    if (rc == 0 && want_nch > 0) {
        if (d->nch != want_nch)
            rc = ERR_INVAL;
        for (int c = 0; rc == 0 && c < want_nch; c++)
            if (strcmp(d->ch[c], want[c]) != 0)
                rc = ERR_INVAL;
        if (rc)
            log_warn("pipeline: device '%s' has other channels than its group '%s': left out of "
                     "the group's training",
                     d->name, g->name);
    }
    if (rc == 0)
        rc = detector_job_create(&m->job, d->det);
    m->gen = d->gen;
    /* The window ends at the newest reading the detector has consumed, here under the lock
     * the job was copied under: detector_job_set_data's contract (the job counts the window's
     * rows back from the detector's reading count, detector_job_create's idx_end, for the
     * seasonal profiles' phase). Readings scored while the device waited in the due-set are in
     * both. Ending it at the reading that asked (d->due_ts), as before session 22, shifted every
     * seasonal profile by the readings scored meanwhile: a period-40 device accepted while
     * another device trained got its profile a quarter period out of phase and reopened an
     * episode as soon as the training applied (test_events.py OperatorAccept). */
    m->to_ts = d->last_ts;
    m->nch = d->nch;
    m->nskip = pipeline__window_skip(d, m->skip);
    m->stepped = d->step_skip.end_ms > d->step_skip.start_ms;
    for (int c = 0; rc == 0 && c < d->nch; c++)
        if ((m->names[c] = strdup(d->ch[c])) == NULL)
            rc = ERR_NOMEM;
    if (rc == 0) {
        d->training = 1;
        /* This training runs for d: a request d made before (left_out set by joining the group
         * after train_next took its entry and before it copied the members, or by the end of
         * an earlier training's part) is answered by the window read now, not asked again
         * after it; one while the part runs is merged. An operator's retrain made since
         * train_set took the members' retrain_all (it is set again) still trains once more:
         * this training may leave held members out. Session 52: before, one training more. */
        d->left_out = 0;
        if (!d->retrain_all) {
            m->owed = d->again;
            d->again = 0;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* A copy of det that continues exactly as det would (detector_save then detector_load_shared,
 * sharing its serving LSTM), to undo a training with. Caller owns *out (detector_destroy).
 * Returns 0 or ERR_NOMEM (or the load's error, which det's own bytes do not give). */
static int detector_copy(detector_t **out, const detector_t *det)
{
    const model_t *lstm = detector_model(det);
    size_t cap = lstm ? detector_save_shared_size(det) : detector_save_size(det), len = 0;
    void *buf = malloc(cap);
    if (buf == NULL)
        return ERR_NOMEM;
    int rc = lstm ? detector_save_shared(det, buf, cap, &len) : detector_save(det, buf, cap, &len);
    if (rc == 0)
        rc = detector_load_shared(out, buf, len, lstm);
    free(buf);
    return rc;
}

/* Applies m's job (run_rc: how the run went) to its device, copying the detector first when a
 * store holds versions, and queues the version's put; the status names the new serving model
 * at once. Takes the device's lock. */
void pipeline__member_apply(pipeline_t *p, struct member *m, int run_rc, double seconds)
{
    struct dev *d = m->d;
    m->rc = run_rc;
    pthread_mutex_lock(&d->mu);
    if (m->rc == 0 && m->gen == d->gen && d->det) { /* else stale: dropped, not a failure */
        m->before_version = d->serving_version;
        m->before_kind = d->last.kind;
        if (p->store)
            m->rc = detector_copy(&m->before, d->det);
        /* A PUT of weights while it ran took its number (pipeline_weights_put numbers after the
         * listed versions; this one is listed at member_end), so the job is numbered after
         * every version d keeps: a kept decision (the PUT made the job stale), and a swap when a
         * rollback then put back the version the job began with (the training's model, its
         * group's or d's own, installed under a number of its own; until versions8 d kept what
         * it served: a group's members served two models until its next training). */
        detector_job_number_after(m->job, pipeline__top_version(d));
        if (m->rc == 0)
            m->rc = detector_job_apply(d->det, m->job, &m->info);
        if (m->rc == 0) {
            m->applied = 1;
            /* No save (periodic, or at shutdown) may store this detector before its version is
             * confirmed: member_end saves it then, or undoes it. */
            d->unconfirmed = p->store != NULL;
            pipeline__serving_changed(p, d, m->info.swapped, m->info.version, m->info.kind);
            /* A swap: another model judges the readings from here, as after a rollback or a
             * PUT of weights, so the chain breaks and the event open now is marked (task
             * evcont6); an undo later (member_undo) changes the model again and keeps that. */
            if (m->info.swapped)
                pipeline__event_break_open(p, d);
            m->serving = d->serving_version;
            m->rc = pipeline__version_put(p, d, &m->info, seconds, m->pooled, &m->v);
        }
    }
    pthread_mutex_unlock(&d->mu);
}

struct version_seen {
    uint32_t version;
    int need_ckpt, found;
};

static int on_stored_version(void *arg, int64_t version, int64_t created_ms, const char *info_json,
                             int has_ckpt)
{
    struct version_seen *vs = arg;
    (void)created_ms;
    (void)info_json;
    if (version == (int64_t)vs->version && (has_ckpt || !vs->need_ckpt))
        vs->found = 1;
    return vs->found;
}

/* The puts of the applied members' versions are asynchronous: one flush waits for them, then
 * each version is looked up in the store (a put queued just before a failed commit is lost with
 * it, whatever the flush's own transaction did); m->rc says why one is not there. Training
 * thread, holding no lock (the writer may wait for a shard, which may wait for a device). */
void pipeline__versions_confirm(pipeline_t *p, struct member *ms, size_t n)
{
    int queued = 0;
    for (size_t i = 0; i < n; i++)
        queued |= ms[i].applied && ms[i].rc == 0;
    if (!queued || p->store == NULL)
        return;
    const int frc = store_flush(p->store);
    for (size_t i = 0; i < n; i++) {
        struct member *m = &ms[i];
        if (!m->applied || m->rc)
            continue;
        struct version_seen vs = {m->v.version, m->v.has_ckpt, 0};
        int lrc = store_models_list(p->store, m->d->name, on_stored_version, &vs);
        if (!vs.found && (lrc == 0 || frc != 0)) /* unread: the flush's word */
            m->rc = frc ? frc : ERR_IO; /* ERR_IO: lost with an earlier commit (logged there) */
    }
}

/* Puts d back as it was before m's apply, whose version the store does not hold: the detector
 * copied then (behind by the readings scored since, as after a gap of that many), the status's
 * serving model. Unless a rollback or PUT of weights changed the serving model meanwhile: then
 * that change stays. Caller holds d->mu. */
static void member_undo(pipeline_t *p, struct dev *d, struct member *m)
{
    if (m->before != NULL && d->serving_version != m->serving) {
        /* The rollback or PUT found d unconfirmed, so its own save was held off (save_skips):
         * made now, committed by the training thread's flush after the members' ends. */
        (void)pipeline__save(p, d);
        return;
    }
    if (m->before == NULL)
        return;
    detector_destroy(d->det);
    d->det = m->before;
    m->before = NULL;
    pipeline__serving_changed(p, d, 1, m->before_version, m->before_kind);
}

/* Ends m's part: the applied training is kept (its version joins the history, the detector is
 * saved) or undone, a failure logged and counted, d free to train again; m's memory freed. */
void pipeline__member_end(pipeline_t *p, struct member *m, int began)
{
    struct dev *d = m->d;
    /* Nothing of this training runs for d from here, while the training's flags (d->due for
     * its asker, its group's training) stay set until train_next ends it: a request d makes
     * meanwhile is merged, and must be asked again then (left_out: pipeline__mark_due). Until
     * session 51 it was lost (the schedule's, a drift's) when it came in that gap. */
    pthread_mutex_lock(&d->mu);
    d->left_out = 1;
    if (began) {
        d->training = 0; /* before the save below, which must not record it as asked for */
        if (m->applied)
            d->unconfirmed = 0;
        if (m->gen != d->gen) { /* deleted or new channels meanwhile: dropped as a stale job */
            /* Said, unless deleted (the DELETE's) or abandoned (train_set's line): an operator's
             * retrain answered 202 ended with no line until session 53. */
            if (!atomic_load_explicit(&d->deleted, memory_order_relaxed) && !m->abandoned) {
                /* Deleted and made again by a reading since the job was made (session 54:
                 * before, this said its channels changed). */
                const int replaced = m->gen < d->forget_gen;
                log_info("pipeline: training of device '%s' dropped: %s while it ran, and its "
                         "model learns again %s",
                         d->name,
                         replaced ? "the device was deleted and made again"
                                  : "its channels changed",
                         replaced ? "from its new readings" : "on the new ones");
            }
            m->applied = m->rc = 0;
        }
        if (m->applied && m->rc == 0) {
            pipeline__version_add(p, d, &m->v);
            /* Saved as not asking: d->due still marks the request this training answered
             * (train_next clears it when the set is done), not one waiting. */
            int due = d->due;
            d->due = 0;
            pipeline__save(p, d);
            d->due = due;
            atomic_fetch_add_explicit(&p->trainings, 1, memory_order_relaxed);
            if (m->info.swapped)
                atomic_fetch_add_explicit(&p->swaps, 1, memory_order_relaxed);
        } else if (m->applied) {
            member_undo(p, d, m);
        }
        /* The part did not train (too little data, its window unread, its run failed or was
         * abandoned at the stop, its job stale): a request begin cleared as answered by this
         * part is asked again as the training ends (left_out is set above), once: the training
         * that asks it finds `again` clear. A deleted device's goes with it. Session 53; before,
         * it was dropped. */
        if (m->owed && !(m->applied && m->rc == 0) &&
            !atomic_load_explicit(&d->deleted, memory_order_relaxed))
            d->again = 1;
        /* ERR_RANGE: too little data yet; abandoned at the stop: logged by train_set. Neither is
         * a failure. */
        if (m->rc && m->rc != ERR_RANGE && !m->abandoned)
            pipeline__train_failed(p, d->name, m->applied ? "its version not stored: " : "", m->rc);
    }
    pthread_mutex_unlock(&d->mu);
    detector_destroy(m->before);
    free(m->v.info_json);
    detector_job_destroy(m->job);
    for (int c = 0; c < m->nch; c++)
        free(m->names[c]);
    free(m->rows);
}

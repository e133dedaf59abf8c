/* daemon/pipeline_train.c: the training due-set, training jobs, and device groups' trainings
 * (the groups' table and member lists: pipeline_groups.c; a device's part in a training, its
 * begin, apply, confirm and end steps: pipeline_member.c).
 *
 * Due-set: a device that asks for training (its detector's want_train, or POST .../retrain)
 * joins a FIFO at most once (dev.due; a grouped device also sets its group's due flag, so a
 * group is in it at most once too): requests for a device or group already due or training are
 * merged, never dropped (one that the training under way has nothing left to run for, the
 * device's part over or left out, is asked again as it ends: left_out, again), and the FIFO
 * holds at most one entry per device. One training-pool job
 * (train_next) is queued per entry; each takes the oldest entry.
 *
 * A training reads each device's window from the store on the training thread, without the
 * device's lock (pipeline__window_read), runs, and applies under the lock. It is kept only once
 * its version is in the store (the rollback point the API promises): after the apply the
 * training thread flushes the store and looks the version up, without any lock; if it is not
 * there the detector copied before the apply is put back (pipeline_member.c's member_undo).
 * Every failure is counted and logged once per device, at most PIPE_WARN_BURST lines a minute
 * (pipeline__train_failed: a full disk fails a whole fleet at once); the detector asks again
 * later.
 *
 * Groups: the devices whose attributes name the same "group" share one model. A group's
 * training makes one job per member (from the member's detector, with the member's own
 * window) and one group job on the members' windows one after another (pooled: at most
 * o.group_rows readings, whole windows of the members in turn from one training to the next,
 * so a group's training costs about the same whatever the group's size; each window a series of
 * its own, with its newest readings held out, see detector_job_set_pooled); the group job
 * decides (train, validate on every member's held-out readings, swap or not) and every
 * member's job takes that decision (detector_job_share_batch: the shared LSTM stepped for all
 * members at once), calibrating its own error scales; each member then applies its job and
 * records the same version. Members keep their LSTM states, scales, thresholds and events.
 * Members with another channel set than the first one (the leader) are left out, with a log.
 * So is a member holding an episode (detector_holding: a fault not accepted), unless an
 * operator's POST .../retrain of any member asked for it (dev.retrain_all: the operator decided
 * for the group): its window would put the fault's readings into the pool and the apply would
 * reseed its episode, so the group would learn the fault and end its alarm, which a single
 * device's schedule no longer does (docs/detection.md, "Sixty-third round"). It keeps its model
 * (the held episode's reference) and its request is put off (detector_train_put_off): the first
 * reading after the episode ends or is accepted asks for a group training, which takes it in
 * again.
 *
 * Held episodes, one device or a group alike: the schedule asks for no training while a device
 * holds one, but a request it made before the episode opened may wait in the due-set (other
 * devices training) until after. When a training thread begins it, the device now holding is
 * left out the same way, the member that asked too, and asks again after the episode: such a
 * training took the fault's readings into its window (it ends at the newest reading) and its
 * reseed ended the held episode as it applied, where vigil-replay, which trains at the reading
 * that asks, keeps the fault (docs/reliability.md, "Trainings asked before a held episode").
 * An operator's retrain (retrain_all) and an acceptance's training (the episode is no longer
 * held) train as before. The log lines of those left out: pipeline_put_off.c.
 *
 * Locks: due_mu (leaf) guards the FIFO, dev.due_next and the groups' due/training flags;
 * groups_mu (leaf) guards the groups table and each group's member list. Taken under a
 * device's mu: due_mu, groups_mu (pipeline__group_move). A group's rollback_mu is taken before
 * any device's mu (pipeline_rollback.c). A training
 * holds at most one device's mu at a time. Threads: pipeline__mark_due on shard and HTTP
 * threads (caller holds d->mu); train_next on the training pool. */
#include "err.h"
#include "log.h"
#include "pipeline_events_int.h" /* PIPE_WARN_BURST */
#include "pipeline_groups_int.h"
#include "pipeline_int.h"
#include "testhold.h"
#include "vtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void train_next(void *arg);

int pipeline__trainable(const pipeline_t *p, const struct dev *d)
{
    return d->det && detector_seen(d->det) >= (uint64_t)p->o.det.warmup;
}

int pipeline__mark_due(pipeline_t *p, struct dev *d)
{
    if (!pipeline__trainable(p, d))
        return ERR_RANGE;
    if (d->training || d->due) {
        atomic_fetch_add_explicit(&p->train_merged, 1, memory_order_relaxed);
        /* The training under way left d out, or its part of it is over (its own training's
         * due stays set until train_next ends): once more after it. */
        if (d->left_out)
            d->again = 1;
        return ERR_BUSY;
    }
    struct group *g = d->group;
    pthread_mutex_lock(&p->due_mu);
    if (g && (g->due || g->training)) {
        pthread_mutex_unlock(&p->due_mu);
        atomic_fetch_add_explicit(&p->train_merged, 1, memory_order_relaxed);
        if (d->left_out) /* g's training under way has nothing left to run for d */
            d->again = 1;
        return ERR_BUSY;
    }
    if (g)
        g->due = 1;
    d->due_group = g;
    d->due_next = NULL;
    if (p->due_tail)
        p->due_tail->due_next = d;
    else
        p->due_head = d;
    p->due_tail = d;
    p->due_len++;
    pthread_mutex_unlock(&p->due_mu);
    d->due = 1;
    int rc = wpool_submit(p->train, train_next, p);
    /* Refused by the pool closing at the stop (a request a training thread asks again as its
     * training ends, train_next): kept as the requests the stop skips are (d due, in the
     * due-set), so the stop's save records it as asking and the next start asks again. */
    if (rc == ERR_CLOSED && atomic_load(&p->stopping))
        return rc;
    if (rc) { /* take it out again: every entry has its pool job */
        pthread_mutex_lock(&p->due_mu);
        struct dev **pp = &p->due_head, *prev = NULL;
        while (*pp && *pp != d)
            prev = *pp, pp = &(*pp)->due_next;
        if (*pp) {
            *pp = d->due_next;
            if (p->due_tail == d)
                p->due_tail = prev;
            p->due_len--;
        }
        if (g)
            g->due = 0;
        pthread_mutex_unlock(&p->due_mu);
        d->due = 0;
    }
    return rc;
}

int pipeline__training_waits(pipeline_t *p, struct dev *d)
{
    if (d->training)
        return 0;
    /* In the FIFO, or its group's entry is: no thread has taken it, so d's part (which
     * member_begin makes under d->mu, held here) is still to come. Unless d holds an episode
     * and the entry is another member's, and d's request is not an operator's retrain (which
     * takes every member): that training leaves d out, so d's request must be asked again
     * after it. A walk of the due-set, but only for an API request. */
    pthread_mutex_lock(&p->due_mu);
    int waits = 0;
    for (const struct dev *e = p->due_head; e && !waits; e = e->due_next)
        waits = e == d;
    if (!waits && d->group && d->group->due)
        waits = d->retrain_all || !(d->det && detector_holding(d->det));
    pthread_mutex_unlock(&p->due_mu);
    return waits;
}

size_t pipeline__due_len(pipeline_t *p)
{
    pthread_mutex_lock(&p->due_mu);
    size_t n = p->due_len;
    pthread_mutex_unlock(&p->due_mu);
    return n;
}

/* ---- training ----------------------------------------------------------------------------- */

int pipeline__window_skip(const struct dev *d, struct maint_span *skip)
{
    int n = d->nmaint < STORE_MAINT_KEEP ? d->nmaint : STORE_MAINT_KEEP;
    if (n > 0)
        memcpy(skip, d->maint, sizeof(struct maint_span) * (size_t)n);
    /* After a clock step back, the stored readings from the new timeline's first to the old
     * one's newest are both timelines interleaved by timestamp: two stretches of the process
     * read as one series at twice the rate. Left out, the window is the old timeline up to the
     * step, then the new one past the old one's newest (a gap, as a maintenance period's). */
    if (d->step_skip.end_ms > d->step_skip.start_ms)
        skip[n++] = d->step_skip;
    return n;
}

/* A training of `device` that failed with rc: logged with the device and the reason (the first
 * PIPE_WARN_BURST of a minute; the next line said counts those not said), and counted
 * (vigil_model_training_failures_total). The model that served serves on; the detector
 * asks again later as for any job not applied (retrain_every readings on, or warmup / 4 + 1
 * before its first model), never at once. */
void pipeline__train_failed(pipeline_t *p, const char *device, const char *what, int rc)
{
    uint64_t held;
    char note[160];
    const unsigned place = log_limit_take(&p->train_fail_log, (int64_t)vtime_mono_s(),
                                          PIPE_WARN_EVERY_S, PIPE_WARN_BURST, &held);
    if (place)
        log_warn(
            "pipeline: training for device '%s' failed: %s%s; the serving model stays%s", device,
            what, err_str(rc),
            log_limit_note(note, sizeof note, place, held, PIPE_WARN_BURST, PIPE_WARN_EVERY_S));
    atomic_fetch_add_explicit(&p->train_failures, 1, memory_order_relaxed);
}

/* Tests only (tests/integration/test_traingaps.py): with VIGIL_TEST_HOLD_DIR set when vigild
 * started (p->test_hold_dir, read once by pipeline_create, which logs a warning), a training
 * thread reaching point `at` waits while the file <dir>/<at> exists (common/testhold.h: at
 * most 60 s, <dir>/<at>.held existing meanwhile), so that a test acts inside a gap a few
 * instructions wide without a timing guess. The points: "take" (a due-set
 * entry taken, its group's training flag set, the member list not yet copied), "apply" (the run
 * over, nothing applied), "confirm" (the members applied, their versions not yet listed),
 * "end" (every member's part over, the training's due and group flags not yet cleared),
 * "walk" (the end's walk of g's members, after each member it ended).
 * The wait also ends once the stop has set p->stopping (a test that holds at "take" and stops
 * vigild sees the training begin after the flag, so the stop abandons it for sure: released by
 * the test as the log said the stop began, the run could end before the flag was set).
 * Unset (any deployment): a test of one byte per point. Training pool thread, holding no lock. */
static void test_hold(pipeline_t *p, const char *at)
{
    test_hold_wait(p->test_hold_dir, at, &p->stopping, NULL);
}

/* Whether members a and b were made with the same {hidden, layers}. */
static int same_size(const struct member *a, const struct member *b)
{
    return memcmp(a->size, b->size, sizeof a->size) == 0;
}

/* The group's lead among the n members that began (began[i]; lead, the first that began, is
 * the first of them): the member whose detector the group job copies, so the group's LSTM has
 * its size and a member of another size trains its own model (detector_job_share_batch). That
 * is the size most members were made with (ties: the size met first, lead's when it began),
 * and of those members the one with the newest version (ties: the first), so the group's new
 * version is numbered after every one that began (before session 47, the first that began led,
 * whatever its version). Training pool thread. */
static size_t majority_lead(struct member *ms, const int *began, size_t n, size_t lead)
{
    for (size_t i = 0; i < n; i++)
        if (began[i]) {
            struct dev *d = ms[i].d;
            pthread_mutex_lock(&d->mu);
            if (d->det) /* else deleted meanwhile: its part is dropped at the apply */
                detector_model_size(d->det, &ms[i].size[0], &ms[i].size[1]);
            ms[i].newest = pipeline__top_version(d);
            pthread_mutex_unlock(&d->mu);
        }
    /* In order: a member whose size more members share than best's leads, and one of best's
     * size leads when newer. A group has few members: each counts its size's. */
    size_t best = lead, most = 0;
    for (size_t i = 0; i < n; i++) {
        if (!began[i])
            continue;
        size_t c = 0;
        for (size_t k = 0; k < n; k++)
            c += began[k] && same_size(&ms[k], &ms[i]);
        if (c > most || (same_size(&ms[i], &ms[best]) && ms[i].newest > ms[best].newest)) {
            best = i;
            most = c;
        }
    }
    return best;
}

/* An abandoned training's operator's retrain (retrain_all) back on the members that asked
 * (askers[i], else NULL). It is g's (or the device's alone): an asker that left g meanwhile (a
 * PUT of another group, a DELETE) hands it to a member of ms still in g (session 48; it stayed
 * on the asker, and g was never retrained), else (session 49: every member of the training left
 * g) to a device that joined g since; with g empty it is dropped, nothing left to retrain.
 * Returns 0 when it is back on a device of g (or none was asked), 1 when g has no member left
 * to take it (a walk of g's list, which allocates nothing: session 58; a copy of it, out of
 * memory, dropped the retrain before). Training pool thread, holding no lock (groups_mu for
 * the member list alone). */
static int askers_back(pipeline_t *p, struct member *ms, struct dev **askers, size_t n,
                       struct group *g)
{
    int handed = 0;
    for (size_t i = 0; i < n; i++)
        if (askers[i]) {
            struct dev *a = askers[i];
            pthread_mutex_lock(&a->mu);
            const int stays = !atomic_load_explicit(&a->deleted, memory_order_relaxed) &&
                              (g == NULL || a->group == g);
            if (stays)
                a->retrain_all = 1;
            handed |= !stays;
            pthread_mutex_unlock(&a->mu);
        }
    if (!handed || g == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ms[i].d != NULL && pipeline__group_retrain_give(p, g, ms[i].d) == 0)
            return 0; /* NULL: a member that did not begin */
    return pipeline__group_retrain_give(p, g, NULL) == 0 ? 0 : 1;
}

/* Whether the asker of g's training (train_next's d, which stays due when the stop abandons
 * it) is still in g (0), in another group or none (1), or deleted (2). Takes its mu. */
static int asker_moved(struct dev *asker, const struct group *g)
{
    pthread_mutex_lock(&asker->mu);
    const int deleted = atomic_load_explicit(&asker->deleted, memory_order_relaxed);
    const int left = asker->group != g;
    pthread_mutex_unlock(&asker->mu);
    return deleted ? 2 : left;
}

/* Where a schedule's abandoned training of group g goes: its asker (the device that became
 * due) stays due, and the next start asks for the training of the group it is in then. When
 * that is no longer g (the asker left g, or was deleted: its request goes with it) says so in
 * why (for the log, after "abandoned at the stop; "), else leaves why as it is. Training pool
 * thread, holding no lock. */
static void schedule_moved(struct dev *asker, const struct group *g, char *why, size_t size)
{
    const int moved = asker_moved(asker, g);
    if (moved == 2)
        snprintf(why, size,
                 "not asked again: device '%s', whose schedule asked for it, was deleted",
                 asker->name);
    else if (moved)
        snprintf(why, size,
                 "not asked again for this group: device '%s', whose schedule asked for it, "
                 "has left it, and its request is asked again at the next start where the "
                 "device is then",
                 asker->name);
}

/* A part whose window read too few readings to train on (fewer than model.warmup: the
 * detector has scored more, but some fell in a maintenance period added after they were scored,
 * or in a clock step's overlap, which the window leaves out): not a failure, no version, the
 * serving model stays. Said once per part (session 53: before, nothing, an operator's retrain
 * answered 202 included); a request member_end asks again for it makes one part more, which
 * asks nothing more (pipeline_member.c). Training pool thread, holding no lock. */
static void window_short_log(const pipeline_t *p, const struct dev *d, const struct group *g, int n)
{
    log_info("pipeline: device '%s'%s%s%s not trained: its window holds %d readings, too few to "
             "train on (model.warmup %d; readings in maintenance periods and a clock step's "
             "overlap are left out of it); the serving model stays",
             d->name, g ? " (group '" : "", g ? g->name : "", g ? "')" : "", n, p->o.det.warmup);
}

/* Trains the devices in ms[n] (one device, or a group's members): windows, job(s), apply.
 * A device holding an episode is left out, the asker too (its schedule asked before the episode
 * opened: the training would learn the fault and its reseed end the episode), unless a
 * member's retrain_all (an operator's POST .../retrain) asks for every one. The stop (p->stopping)
 * cancels the LSTM's training between two minibatches: nothing is applied, stored or counted
 * as failed, and train_set returns 1 so that the asker stays due, saved as asking (blob
 * format 4) and asked again at the next start (an operator's retrain_all too, put back on the
 * members that asked); else 0. asker: the device that became due (train_next's d), whose
 * request a schedule's training was; its log line says where that request goes. */
static int train_set(pipeline_t *p, struct group *g, struct member *ms, size_t n, struct dev *asker)
{
    int64_t t0 = pipeline__mono_ns();
    int *began = calloc(n ? n : 1, sizeof *began);
    /* The members an operator asked to retrain (retrain_all), to be given their request back
     * if the stop abandons the training: theirs, not the lead's, which may leave the group. */
    struct dev **askers = calloc(n ? n : 1, sizeof *askers);
    size_t ok = 0, total = 0, lead = n;
    int rc = began && askers ? 0 : ERR_NOMEM;
    int all = 0; /* an operator's retrain of a member: held members too */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        pthread_mutex_lock(&ms[i].d->mu);
        if (ms[i].d->retrain_all)
            askers[i] = ms[i].d;
        all |= ms[i].d->retrain_all;
        ms[i].d->retrain_all = 0;
        pthread_mutex_unlock(&ms[i].d->mu);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int brc = pipeline__member_begin(p, &ms[i], g, lead < n ? ms[lead].nch : 0,
                                         lead < n ? ms[lead].names : NULL, !all);
        began[i] = brc == 0;
        if (brc == ERR_NOMEM) /* else not trainable now, or logged (other channels) */
            pipeline__train_failed(p, ms[i].d->name, "", brc);
        if (!began[i]) {
            pipeline__member_end(p, &ms[i], 0);
            memset(&ms[i], 0, sizeof ms[i]);
            continue;
        }
        if (lead == n)
            lead = i;
        /* The window, read from the store on this thread without the device's lock. */
        int wrc =
            pipeline__window_read(p, ms[i].d->name, ms[i].names, ms[i].nch, ms[i].skip, ms[i].nskip,
                                  ms[i].stepped, ms[i].to_ts, &ms[i].rows, &ms[i].n);
        if (wrc == 0)
            wrc = detector_job_set_data(ms[i].job, ms[i].rows, ms[i].n);
        if (wrc) {
            if (wrc != ERR_RANGE) /* an error, not too little data: the training failed */
                pipeline__train_failed(p, ms[i].d->name, "its window not read: ", wrc);
            else if (p->store) /* no failure, but an operator's 202 ended with no line before */
                window_short_log(p, ms[i].d, g, ms[i].n);
            ms[i].rc = ERR_RANGE; /* counted just now, or not a failure */
            pipeline__member_end(p, &ms[i], 1);
            memset(&ms[i], 0, sizeof ms[i]);
            began[i] = 0;
            if (lead == i) /* the next that begins leads (else a lone one locked NULL's mu) */
                lead = n;
            continue;
        }
        ok++;
        total += (size_t)ms[i].n;
    }
    if (rc == 0 && g && ok > 1)
        lead = majority_lead(ms, began, n, lead);
    detector_job_t *gj = NULL;
    if (rc == 0 && ok > 0 && g == NULL) {
        detector_job_set_cancel(ms[lead].job, &p->stopping);
        rc = detector_job_run(ms[lead].job);
    } else if (rc == 0 && ok > 0) {
        /* The group job: from the leader's detector, on every member's window in turn, its
         * version numbered after every member's that takes part (each records it: the lead
         * has the newest, majority_lead, but its detector may be behind its own store). */
        uint32_t top = 0;
        for (size_t i = 0; i < n; i++)
            if (began[i]) {
                pthread_mutex_lock(&ms[i].d->mu);
                const uint32_t v = pipeline__top_version(ms[i].d);
                pthread_mutex_unlock(&ms[i].d->mu);
                top = v > top ? v : top;
            }
        pthread_mutex_lock(&ms[lead].d->mu);
        if (ms[lead].d->det)
            detector_number_after(ms[lead].d->det, top);
        rc = ms[lead].d->det ? detector_job_create(&gj, ms[lead].d->det) : ERR_RANGE;
        pthread_mutex_unlock(&ms[lead].d->mu);
        /* The pool: at most o.group_rows readings (at least one window), whole windows of the
         * members in turn from where the last training stopped, the last one cut to its
         * newest readings and moved first, so the newest window (the group's validation tail)
         * is a whole one; every member's own window still calibrates its own job. The job is
         * told where each window starts: nothing is learnt across two members. */
        const size_t C = (size_t)ms[lead].nch, hist = (size_t)p->o.det.history;
        size_t cap = p->o.group_rows == 0 ? total : p->o.group_rows < hist ? hist : p->o.group_rows;
        cap = cap < total ? cap : total;
        float *pool = rc == 0 ? malloc(cap * C * sizeof(float)) : NULL;
        int *lens = rc == 0 ? malloc(2 * n * sizeof *lens) : NULL, *order = lens ? lens + n : NULL;
        if (rc == 0 && (pool == NULL || lens == NULL))
            rc = ERR_NOMEM;
        size_t at = 0, k = 0, nseg = 0;
        const size_t first = g->pool_next % n;
        for (; rc == 0 && k < n && at < cap; k++) {
            const size_t i = (first + k) % n;
            if (!began[i])
                continue;
            size_t take = (size_t)ms[i].n < cap - at ? (size_t)ms[i].n : cap - at;
            order[nseg] = (int)i;
            lens[nseg++] = (int)take;
            at += take;
        }
        g->pool_next = first + k;
        if (nseg > 1 && lens[nseg - 1] < ms[order[nseg - 1]].n) {
            const int ci = order[nseg - 1], cl = lens[nseg - 1];
            memmove(order + 1, order, (nseg - 1) * sizeof *order);
            memmove(lens + 1, lens, (nseg - 1) * sizeof *lens);
            order[0] = ci;
            lens[0] = cl;
        }
        for (size_t s = 0, to = 0; rc == 0 && s < nseg; to += (size_t)lens[s++]) {
            const struct member *m = &ms[order[s]];
            memcpy(pool + to * C, m->rows + ((size_t)m->n - (size_t)lens[s]) * C,
                   (size_t)lens[s] * C * sizeof(float));
        }
        if (rc == 0)
            rc = detector_job_set_pooled(gj, pool, lens, (int)nseg);
        free(pool);
        free(lens);
        detector_job_set_cancel(gj, &p->stopping);
        if (rc == 0)
            rc = detector_job_run(gj);
        /* Every member takes the decision and calibrates on its own window, the members'
         * shared LSTM stepped for all of them at once (detector_job_share_batch). */
        detector_job_t **jobs = rc == 0 ? malloc(ok * sizeof *jobs) : NULL;
        size_t nj = 0;
        if (rc == 0 && jobs == NULL)
            rc = ERR_NOMEM;
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (began[i]) {
                /* A member of another size runs its own training in the batch: a stop cancels
                 * it as it does the group's. */
                detector_job_set_cancel(ms[i].job, &p->stopping);
                jobs[nj++] = ms[i].job;
                ms[i].pooled = at;
            }
        if (rc == 0)
            rc = detector_job_share_batch(jobs, (int)nj, gj);
        int own[2], grp[2];
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (began[i] && detector_job_other_size(ms[i].job, gj, own, grp)) {
                ms[i].pooled = 0; /* its own training, on its own window */
                log_info("pipeline: device '%s' of group '%s' trained its own model: it was made "
                         "with hidden %d, layers %d; the group's LSTM has hidden %d, layers %d",
                         ms[i].d->name, g->name, own[0], own[1], grp[0], grp[1]);
            }
        free(jobs);
    }
    double seconds = (double)(pipeline__mono_ns() - t0) / 1e9;
    /* ERR_CLOSED from a run is the stop's cancel (model_train_cancellable) and nothing else. */
    const int abandoned = ok > 0 && rc == ERR_CLOSED && atomic_load(&p->stopping);
    test_hold(p, "apply");
    for (size_t i = 0; began && i < n; i++)
        if (began[i]) {
            ms[i].abandoned = abandoned;
            pipeline__member_apply(p, &ms[i], rc, seconds);
        }
    /* Still the operators': saved so (BLOB_TRAIN_ALL), asked again at the next start, on the
     * members that asked (before session 47's groups5, on the lead). Logged once that is
     * decided: session 49 logged "asked again at the next start" and then, for a group left
     * empty, "dropped", for the same training. */
    const int back = abandoned ? askers_back(p, ms, askers, n, g) : 0;
    char why[384] = "asked again at the next start";
    if (back == 1)
        snprintf(why, sizeof why,
                 "not asked again: the group has no member left, so the operator's retrain it "
                 "was for is dropped");
    else if (abandoned && g && !all) /* the schedule's: asker's request */
        schedule_moved(asker, g, why, sizeof why);
    if (back != 0 && asker_moved(asker, g) == 1) /* it stays due: the line said "not asked" */
        snprintf(why + strlen(why), sizeof why - strlen(why),
                 "; device '%s', which became due for it, has left the group, and its own "
                 "request is asked again at the next start where the device is then",
                 asker->name);
    if (abandoned && g)
        log_info("pipeline: training of group '%s' (%zu devices) abandoned at the stop; %s (it had "
                 "run %.1f s)",
                 g->name, ok, why, seconds);
    else if (abandoned)
        log_info("pipeline: training of device '%s' abandoned at the stop; asked again at the next "
                 "start (it had run %.1f s)",
                 ms[lead].d->name, seconds);
    test_hold(p, "confirm");
    pipeline__versions_confirm(p, ms, n);
    for (size_t i = 0; began && i < n; i++)
        if (began[i])
            pipeline__member_end(p, &ms[i], 1);
    /* The members' saves (member_end) committed before the training counts as done: a crash
     * a moment later restarts on the trained model, not on the one before it beside a version
     * listed as swapped in (session 68; a crash during the training redoes it). This thread,
     * holding no lock. */
    if (ok > 0 && p->store)
        (void)store_flush(p->store);
    detector_job_destroy(gj);
    if ((began == NULL || askers == NULL) && n > 0)
        pipeline__train_failed(p, ms[0].d->name, "", ERR_NOMEM);
    free(began);
    free(askers);
    if (ok == 0 || abandoned) /* abandoned: no training's time */
        return abandoned;
    atomic_fetch_add_explicit(&p->train_jobs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->train_ms_total, (uint64_t)(seconds * 1000), memory_order_relaxed);
    static const double tb[] = PIPE_TRAIN_BUCKETS;
    pipeline__observe(p->train_hist, tb, seconds);
    return 0;
}

/* Before a device's first training: waits while its readings still arrive in bulk (a backfill
 * of history), so the first model is trained on all of it rather than on the warm-up alone.
 * The wait ends as soon as the window is full (o.det.history readings scored), the newest
 * reading is recent by the wall clock (the backfill has given way to live readings), none was
 * scored for SETTLE_QUIET_MS (nothing more arriving), or the readings' time advanced no faster
 * than twice the wall clock's over the last SETTLE_QUIET_MS (a live feed with old timestamps);
 * in any case after SETTLE_MAX_MS, or when the pipeline stops. A device whose readings stopped
 * arriving before it reached a training thread does not wait at all. Polls the device under
 * its lock; training pool thread, holding no lock. */
#define SETTLE_POLL_MS  50
#define SETTLE_QUIET_MS 500
#define SETTLE_MAX_MS   10000
static void first_settle(pipeline_t *p, struct dev *d)
{
    const int64_t t0 = pipeline__mono_ns(), ms = 1000000;
    int64_t mark_ns = t0, mark_ts = -1; /* the newest timestamp SETTLE_QUIET_MS ago */
    for (;;) {
        pthread_mutex_lock(&d->mu);
        const int first = d->det && detector_get_state(d->det) == DET_LEARNING;
        const uint64_t seen = d->det ? detector_seen(d->det) : 0;
        const int64_t ts = d->last_ts, scored_ns = d->scored_ns;
        pthread_mutex_unlock(&d->mu);
        const int64_t now = pipeline__mono_ns();
        if (!first || atomic_load(&p->stopping) || seen >= (uint64_t)p->o.det.history ||
            ts >= vtime_now_ms() - PIPE_RECENT_MS || now - scored_ns >= SETTLE_QUIET_MS * ms ||
            now - t0 >= SETTLE_MAX_MS * ms)
            return;
        if (mark_ts < 0) {
            mark_ts = ts;
            mark_ns = now;
        } else if (now - mark_ns >= SETTLE_QUIET_MS * ms) {
            if (ts - mark_ts <= 2 * (now - mark_ns) / ms)
                return;
            mark_ts = ts;
            mark_ns = now;
        }
        struct timespec nap = {0, SETTLE_POLL_MS * ms};
        nanosleep(&nap, NULL);
    }
}

/* Whether e's left_out (and a request it marked `again`) now belongs to another training than
 * the one ending: e is in a group that trains (another group it moved to, or its own again),
 * which a request of e's is merged into with nothing to run for e, as pipeline__group_move
 * marked it. That training's end clears the flag and asks again (its loop runs over its
 * group's members then); clearing it here lost such a request until session 52. Caller holds
 * e->mu (due_mu taken under it). */
static int owed_elsewhere(pipeline_t *p, struct dev *e)
{
    if (e->group == NULL)
        return 0;
    pthread_mutex_lock(&p->due_mu);
    const int training = e->group->training;
    pthread_mutex_unlock(&p->due_mu);
    return training;
}

/* The end of a training for e, one of its members or of its group's now: e's left_out
 * cleared, and a request merged meanwhile (`again`) asked again, unless both belong to another
 * training (owed_elsewhere). Seeing e twice does no harm. Takes e->mu. */
static void end_member(pipeline_t *p, struct dev *e)
{
    pthread_mutex_lock(&e->mu);
    if (!owed_elsewhere(p, e)) {
        e->left_out = 0;
        if (e->again) {
            e->again = 0;
            pipeline__mark_due(p, e);
        }
    }
    pthread_mutex_unlock(&e->mu);
}

/* A group's members (ms[n], in join order) in the order of pipeline__leads_before: the member
 * with the newest version first, the first of equals in join order, the others likewise (a
 * stable sort). train_set's first member that begins leads: its detector is the group job's
 * (the serving model it validates against, the next version number; majority_lead may then
 * take another of the majority's model size) and its channels the training's. A device that
 * just joined has none of the group's versions and does not lead. Before session 67 only the
 * newest was moved first (the others' order shuffled), and the new-channel warnings foretold
 * join order (read67a). Training pool thread; takes each member's mu in turn. */
static void lead_order(struct member *ms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&ms[i].d->mu);
        ms[i].newest = pipeline__top_version(ms[i].d);
        pthread_mutex_unlock(&ms[i].d->mu);
    }
    for (size_t i = 1; i < n; i++) {
        struct member m = ms[i];
        size_t j = i;
        for (; j > 0 && pipeline__leads_before(m.newest, ms[j - 1].newest); j--)
            ms[j] = ms[j - 1];
        ms[j] = m;
    }
}

/* Training pool thread: takes the device that became due first and trains it, or its group. */
static void train_next(void *arg)
{
    pipeline_t *p = arg;
    /* Stopping: the pool runs its queued jobs before it ends, one per due device, which at
     * fleet scale is minutes of training nobody waits for. They are skipped (the FIFO goes with
     * the devices); the stop's save recorded each as asked for, and the restart asks for it
     * again at once (pipeline_store.c, blob format 4). */
    if (atomic_load(&p->stopping))
        return;
    pipeline__put_off_flush(p, 0);
    pthread_mutex_lock(&p->due_mu);
    struct dev *d = p->due_head;
    struct group *g0 = NULL;
    if (d) {
        p->due_head = d->due_next;
        if (p->due_head == NULL)
            p->due_tail = NULL;
        p->due_len--;
        /* Counted with the take, under due_mu: a reader that sees the queue gauge without d
         * sees it taken (vigil_train_jobs_taken_total). */
        atomic_fetch_add(&p->train_jobs_taken, 1);
        /* From due to training in one step: a member asking in between would otherwise find
         * its group neither due nor training and queue a second training of it. */
        if ((g0 = d->due_group) != NULL) {
            g0->due = 0;
            g0->training = 1;
        }
    }
    pthread_mutex_unlock(&p->due_mu);
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    struct group *g = d->group;
    pthread_mutex_unlock(&d->mu);
    if (g != g0) { /* d changed groups since it became due */
        pthread_mutex_lock(&p->due_mu);
        if (g0)
            g0->training = 0;
        if (g)
            g->training = 1;
        pthread_mutex_unlock(&p->due_mu);
    }
    test_hold(p, "take"); /* the entry taken, the group's member list not yet copied */
    struct dev **devs = &d, **copied = NULL;
    size_t n = 1;
    int abandoned = 0;
    if (g && pipeline__group_members(p, g, &copied, &n) != 0) {
        /* Out of memory: no training, but its end as any other's (below), which asks again
         * what was asked while the entry waited (a member's API retrain, `again`) and clears
         * the members' left_out. Until session 56 this returned here and such a request was
         * lost until the next schedule. The end's loop runs over d and g's members now. */
        pipeline__train_failed(p, d->name, "", ERR_NOMEM);
        goto end; /* n is 1: devs is &d */
    }
    if (g)
        devs = copied;
    first_settle(p, d);
    struct member *ms = calloc(n ? n : 1, sizeof *ms);
    if (ms) {
        for (size_t i = 0; i < n; i++)
            ms[i].d = devs[i];
        if (g)
            lead_order(ms, n);
        abandoned = train_set(p, g, ms, n, d);
        free(ms);
    } else {
        pipeline__train_failed(p, d->name, "", ERR_NOMEM);
    }
end:
    test_hold(p, "end");
    /* Abandoned at the stop: d stays due (in no FIFO now: nothing trains after the stop), so
     * the stop's save records its request (BLOB_TRAIN_ASKED) and the next start asks again
     * (pipeline_store.c, ask_again); for a group, d's request is the group's. */
    pthread_mutex_lock(&d->mu);
    if (!abandoned)
        d->due = 0;
    pthread_mutex_unlock(&d->mu);
    if (g) {
        pthread_mutex_lock(&p->due_mu);
        g->training = 0;
        pthread_mutex_unlock(&p->due_mu);
    }
    /* Retrains asked through the API while this one ran, and requests of members it left out
     * (held) made after their episode ended, or made once their part was over (member_end), or
     * of devices that joined g while it trained (pipeline__group_move): once more, now that it
     * is over. g's members now come from a walk of its list (pipeline__group_next), which
     * allocates nothing (session 59; sessions 57 and 58 copied the list a second time and
     * walked it only when that copy was out of memory; before session 57 such members were
     * left out, and a request merged meanwhile by a member that joined while g trained was
     * lost until the next schedule). Each step takes groups_mu and releases it before
     * end_member takes the member's mu (and due_mu under it), the order pipeline_groups.c
     * writes. A member that leaves g meanwhile sends the walk back to the list's start, so
     * none in g throughout is skipped; the members met again are ended again, which does no
     * harm (end_member: its flags cleared already, a request made since asked for, as it should
     * be) and costs a lock each, so unlike the rollback's walk (a store read and a log line a
     * member: pipeline_rollback.c's marks) this one keeps no mark. It ends once members stop
     * leaving g: each restart needs a leave (an API call or a deletion). */
    for (size_t i = 0; i < n; i++)
        end_member(p, devs[i]);
    if (g) {
        struct group_walk w = {0};
        for (struct dev *e; (e = pipeline__group_next(p, g, &w)) != NULL;) {
            end_member(p, e);
            test_hold(p, "walk"); /* a test moves members meanwhile */
        }
    }
    free(copied);
    /* Last: a count that has reached this job says its end is over, including what it asked
     * again (vigil_train_jobs_ended_total; a test can wait for it, then look for what did or
     * did not follow). Release: a thread that reads the count (pipeline_metrics.c, a seq_cst
     * load) sees all of the end before it; relaxed promised nothing of the kind. */
    atomic_fetch_add_explicit(&p->train_jobs_ended, 1, memory_order_release);
}

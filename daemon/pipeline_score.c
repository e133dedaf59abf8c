/* daemon/pipeline_score.c: the reading path: a shard scores the points of a committed message;
 * see pipeline.h.
 *
 * A shard thread (pipeline.c shard_main) hands each message it dequeues to
 * pipeline__score_message, which steps the devices' detectors in commit order. Readings older
 * than a device's newest are stored (they are already) but not scored, unless a steady run of
 * them shows the device's clock stepped back (back_run: they become its timeline), nor are
 * those in a maintenance period (pipeline_maint.c). A reading with a new channel set rebuilds
 * its device's detector and prediction ring (dev_reset_detector). Members of a group whose
 * readings arrive together are stepped as one batch (score_group). After each step the status,
 * the prediction ring, the anomaly event, the limits, the training request and the periodic
 * save follow (point_finish).
 *
 * At 100k devices every point's device is cold, so the per-point path reads as few of its
 * cache lines as it can: devices are found through the pipeline's name index (p->idx,
 * common/nameidx.h) whose slots and devices resolve() prefetches points ahead; a point carrying
 * its device's channels in order is mapped through the shard's shared channel list
 * (pipeline_chan.c) rather than the device's own names; counters are added once per step.
 *
 * A device's prediction ring puts each sealed block to the store as the shard seals it
 * (pipeline__ring_handoff); the writer thread reports each put (on_pred_stored) and frees the
 * committed blocks itself if the device's mutex is free (trylock: the writer never waits for a
 * device), else the shard does at the device's next reading.
 *
 * A scored reading's anomaly event (open, extend, close, the chain rule) is pipeline_events.c's
 * (pipeline__track_event, from point_finish).
 *
 * Invariants: a device's detector, ring and status are touched only under its mu. Only a shard
 * holds several device locks (a group's members, taken in address order), and a device belongs
 * to one shard.
 *
 * Threads: shard thread only, but on_pred_stored (the writer thread) and pipeline__ring_handoff,
 * which pipeline_destroy (pipeline.c) also calls once the shards have stopped. */
#include "log.h"
#include "pipeline_chan_int.h"
#include "pipeline_int.h"
#include "pipeline_events_int.h"
#include "pipeline_groups_int.h"
#include "vtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
int pipeline__ring_handoff(pipeline_t *p, struct dev *d, store_pred_cb cb)
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
    struct detector_config cfg = p->o.det;
    d->inputs = pipeline__inputs_mask(d);
    for (int c = 0; c < d->nch; c++)
        cfg.input[c] = (uint8_t)(d->inputs >> c & 1);
    rc = detector_create(&d->det, &cfg, d->nch);
    /* The device's stored versions stay (a new channel set, a lost detector): the new
     * detector's versions are numbered after them, never again under one of their numbers. */
    if (rc == 0)
        detector_number_after(d->det, pipeline__top_version(d));
    return rc;
}

int pipeline__inputs_relearn(pipeline_t *p, struct dev *d)
{
    if (d->det == NULL || d->nch == 0 || pipeline__inputs_mask(d) == d->inputs)
        return 0;
    log_warn("pipeline: device '%s': its input channels changed: it relearns from its next "
             "reading",
             d->name);
    return dev_reset_detector(p, d);
}

/* One point of a committed batch on its way through scoring. Only d and pt are set before
 * point_prepare (no zeroing: r alone is 560 bytes, and the detector fills it). */
struct spoint {
    struct dev *d;
    const batch_point_t *pt;
    float x[DETECTOR_MAX_CHANNELS];
    uint8_t present[DETECTOR_MAX_CHANNELS];
    struct detector_result r;
    int64_t at; /* its batch's arrival (shard.arrived_ms), for dev.last_ms */
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

/* d's clock stepped back: its readings go on from the run's (the newest at ts), one reading
 * interval after the newest scored one in the detector's time. What keeps time follows the new
 * timeline: the detector's kept times move by the step (its training schedule and kept onsets
 * go on as if the clock had not stepped), the reading interval (dt_ms) is not changed by it,
 * the limit alarms' forecast check runs at this reading (at_ts), and the prediction ring starts
 * over (readers take it in time order; its stored blocks are dropped as at a change of
 * channels: the readings stay stored). An event open across the step ends no earlier than it
 * began (pipeline__track_event). The step's reading arrived at arrived_ms. Caller holds
 * d->mu. */
static void timeline_step(pipeline_t *p, struct dev *d, int64_t ts, int64_t arrived_ms)
{
    const int64_t dt = d->dt_ms > 0 ? (int64_t)llround(d->dt_ms) : 0;
    const int64_t step = d->last_ts - d->back_ts0 + dt;
    if (d->clock_steps++ == 0) {
        char was[32], from[32];
        log_warn("pipeline: device '%s' stepped its clock back by %.3f s: %u readings in a row "
                 "behind its newest scored one (%s), arriving as they were stamped, are its "
                 "timeline from %s on (scored; its predictions start over); its status counts "
                 "such steps in clock_steps_back",
                 d->name, (double)step / 1000.0, d->back_n,
                 vtime_format(d->last_ts, was, sizeof was), vtime_format(ts, from, sizeof from));
    }
    atomic_fetch_add_explicit(&p->clock_steps, 1, memory_order_relaxed);
    if (d->det)
        (void)detector_shift_time(d->det, -step);
    (void)pipeline__ring_alloc(p, d);
    pipeline__limits_timeline(d);
    /* The overlap of the two timelines, left out of its trainings' windows. */
    d->step_skip = (struct maint_span){d->back_ts0, d->last_ts + 1};
    /* No interval to the old timeline; every reading after is in order. No scored reading on
     * the new one yet, so no arrival of one either (dev.last_ms: stale_end's clock-behind rule
     * would read the old timeline's arrival against no timestamp). */
    d->last_ts = d->last_ms = -1;
    d->back_n = 0;
    d->back_step_at = arrived_ms;
}

/* Judges reading ts of d, behind its newest scored one (d->last_ts). Returns 1 when it
 * completes a run that becomes d's timeline (timeline_step done), else 0: out of order. A run:
 * readings of d in a row behind last_ts, each after the one before by at most twice its
 * arrival's advance plus PIPE_BACK_SLACK_MS (or PIPE_DT_GAP reading intervals, if more), else
 * it starts a new run. At PIPE_BACK_RUN readings whose timestamps have advanced at most twice
 * as much as their arrival (a backfill sends hours in seconds and never becomes the timeline; a
 * gateway's batches catch up within two batches) it is a clock stepped back. An in-order
 * reading ends the run (point_prepare), so one late reading or a retried batch stays out of
 * order. The restore's catch-up (no arrival) never makes one, nor a run within
 * PIPE_BACK_HOLD_MS of the device's last step (two feeds of one device flipped it at every
 * batch). */
static int back_run(pipeline_t *p, struct shard *sh, struct dev *d, int64_t ts)
{
    const int64_t at = sh->arrived_ms;
    /* Within PIPE_BACK_HOLD_MS of the device's last step (a wall clock that stepped back since
     * does not extend it). */
    if (at < 0 ||
        (d->clock_steps > 0 && at >= d->back_step_at && at - d->back_step_at < PIPE_BACK_HOLD_MS)) {
        d->back_n = 0;
        return 0;
    }
    /* A device reading every few minutes, batched, has gaps of its interval within a batch. */
    const double gap = PIPE_DT_GAP * d->dt_ms;
    const int64_t slack = gap > PIPE_BACK_SLACK_MS ? (int64_t)gap : PIPE_BACK_SLACK_MS;
    if (d->back_n == 0 || ts <= d->back_ts || ts - d->back_ts > 2 * (at - d->back_at) + slack) {
        d->back_n = 1;
        d->back_ts0 = d->back_ts = ts;
        d->back_at0 = d->back_at = at;
        return 0;
    }
    d->back_n++;
    d->back_ts = ts;
    d->back_at = at;
    if (d->back_n < PIPE_BACK_RUN || 2 * (at - d->back_at0) < ts - d->back_ts0)
        return 0;
    timeline_step(p, d, ts, at);
    return 1;
}

/* "a new channel 'x'" or "new channels 'x', 'y'": d's channels from had on (those a point
 * brought), for the log, in buf (room bytes); ", ..." ends a list that does not fit. */
static void new_names(const struct dev *d, int had, char *buf, size_t room)
{
    size_t len =
        (size_t)snprintf(buf, room, "%s", d->nch - had == 1 ? "a new channel" : "new channels");
    for (int c = had; c < d->nch; c++) {
        const size_t l = strlen(d->ch[c]);
        if (len + l + 4 + sizeof ", ..." > room) { /* this name, and room for ", ..." after */
            memcpy(buf + len, ", ...", sizeof ", ...");
            return;
        }
        len += (size_t)snprintf(buf + len, room - len, "%s'%s'", c == had ? " " : ", ", d->ch[c]);
    }
}

/* Before the step: order check, channels, the reading vector. Returns 1 when sp is to be
 * stepped. Caller holds sp->d->mu. */
static int point_prepare(pipeline_t *p, struct shard *sh, const batch_t *b, struct spoint *sp)
{
    struct dev *d = sp->d;
    const batch_point_t *pt = sp->pt;
    int idx[PIPE_POINT_FIELDS];
    /* It arrived, whatever its timestamp (a backfill or a skewed clock too): one store of the
     * message's clock reading, to a line of d the step touches anyway. (The arrival of a
     * reading the detector takes is dev.last_ms, set with last_ts.) */
    if (sh->arrived_ms >= 0)
        atomic_store_explicit(&d->seen_ms, sh->arrived_ms, memory_order_relaxed);
    /* What happens to it: pipeline__point_fate, which pipeline_new_channels asks too (a point
     * too wide to map, PIPE_PT_WIDE, is stored and left). */
    int fate = pipeline__point_fate(d, pt, d->last_ts, sh->future_ms);
    if (fate == PIPE_PT_WIDE)
        return 0;
    if (fate == PIPE_PT_OLD) {
        if (!back_run(p, sh, d, pt->ts_ms)) {
            d->skipped_old++;
            atomic_fetch_add_explicit(&p->skipped_old, 1, memory_order_relaxed);
            return 0;
        }
        fate = pipeline__point_fate(d, pt, d->last_ts, sh->future_ms); /* stepped back */
    }
    d->back_n = 0;
    /* Far ahead of its arrival: a clock's glitch, not the newest scored (PIPE_FUTURE_MS).
     * Counted with the out-of-order ones in /metrics (vigil_readings_not_scored_total, whose
     * alert names both causes); the device's first is logged. */
    if (fate == PIPE_PT_FUTURE) {
        if (d->skipped_future++ == 0) {
            char ts[32], at[32];
            log_warn("pipeline: device '%s' sent a reading stamped %s, more than a day ahead of "
                     "its arrival at %s: stored, not scored (the device's clock?); its status "
                     "counts such readings in readings_not_scored_future",
                     d->name, vtime_format(pt->ts_ms, ts, sizeof ts),
                     vtime_format(sh->future_ms - PIPE_FUTURE_MS, at, sizeof at));
        }
        atomic_fetch_add_explicit(&p->skipped_old, 1, memory_order_relaxed);
        return 0;
    }
    /* Stored, but not the device's behaviour: the detector goes on after the maintenance as
     * after a gap in the feed. */
    if (fate == PIPE_PT_MAINT) {
        (void)pipeline__maint_skip(p, d, pt->ts_ms);
        return 0;
    }
    const int had = d->nch;
    int changed = pipeline__map_channels(sh, d, b, pt, idx);
    if (changed < 0)
        return 0;
    if (changed || d->det == NULL) {
        /* A typo or a field added later costs a device whose detection was on its detection
         * until a training (a warning, counted: vigil_model_relearns_total); in a group, the
         * member with the newest model (pipeline__group_place) sets the channels its trainings
         * take (pipeline_train.c train_set leaves the others out, keeping their model), so
         * another member is left out until its channels match (one whose channels then match
         * the lead's is told so, session 67). A device still learning loses no
         * detection (its warmup starts over): an info line (session 65: it warned and counted
         * at every device whose fields came one by one). The line names every new channel of
         * the point (session 66, read66a: the first only). */
        if (d->det) {
            char nc[1024];
            new_names(d, had < d->nch ? had : d->nch - 1, nc, sizeof nc);
            if (!pipeline__detecting(d)) {
                log_info("pipeline: device '%s' has %s (%d channels now): its model, still "
                         "learning, starts again",
                         d->name, nc, d->nch);
            } else {
                const int place =
                    d->group ? pipeline__group_place(p, d, d->nch, (const char *const *)d->ch)
                             : PIPE_GROUP_ALONE;
                if (place == PIPE_GROUP_LEADS)
                    log_warn("pipeline: device '%s' has %s (%d channels now): its model starts "
                             "learning again, and group '%s' trains only the members with its "
                             "channels (it has the group's newest model): the others keep the "
                             "model they have, left out of its trainings until they have these "
                             "channels",
                             d->name, nc, d->nch, d->group->name);
                else if (place == PIPE_GROUP_MATCHES)
                    log_warn("pipeline: device '%s' has %s (%d channels now): its model starts "
                             "learning again, and its channels now match those group '%s' "
                             "trains with: the group's next training gives it the shared model",
                             d->name, nc, d->nch, d->group->name);
                else if (place == PIPE_GROUP_FOLLOWS)
                    log_warn("pipeline: device '%s' has %s (%d channels now): its model starts "
                             "learning again, and group '%s' trains only the members with the "
                             "channels of its member with the newest model: this device gets no "
                             "detection until its channels match theirs or it leaves the group",
                             d->name, nc, d->nch, d->group->name);
                else
                    log_warn("pipeline: device '%s' has %s (%d channels now): its model starts "
                             "learning again, detection off for model.warmup readings",
                             d->name, nc, d->nch);
                atomic_fetch_add_explicit(&p->relearns, 1, memory_order_relaxed);
            }
        }
        if (dev_reset_detector(p, d))
            return 0;
    }
    memset(sp->present, 0, sizeof sp->present);
    for (int c = 0; c < d->nch; c++)
        sp->x[c] = d->last_x[c];
    for (uint32_t f = 0; f < pt->nfields; f++) {
        if (idx[f] < 0)
            continue;
        sp->x[idx[f]] = pipeline__reading_float(b->fields[pt->field0 + f].value);
        sp->present[idx[f]] = 1;
    }
    sp->at = sh->arrived_ms;
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
        /* The reading interval the forecasts' times step by. A gap (a device silent for a day,
         * a maintenance period) counts as at most PIPE_DT_GAP intervals: taken whole, one day
         * after readings a second apart made the forecast's steps 72 minutes and a limit
         * crossing 3 readings ahead "in 3.6 h", for a hundred readings. A true change of rate
         * is still followed (each reading moves it by up to 15 %: 1 s to 50 s in 49). */
        double dt = (double)(ts - d->last_ts);
        if (d->dt_ms > 0 && dt > PIPE_DT_GAP * d->dt_ms)
            dt = PIPE_DT_GAP * d->dt_ms;
        d->dt_ms = d->dt_ms > 0 ? 0.95 * d->dt_ms + 0.05 * dt : dt;
    }
    if (!d->has_result || r->state != d->last.state) {
        d->since_ts = ts;
        d->since_score = r->score;
    }
    result_keep(&d->last, r, d->nch);
    d->has_result = 1;
    d->last_ts = ts;
    d->last_ms = sp->at;
    d->scored_ns = now_ns;
    d->scored++;
    /* The prediction ring (out of memory: this prediction is not recorded). */
    (void)pipeline__ring_push(&d->ring, ts, r->score, (uint8_t)r->state, r->pred);
    (void)pipeline__ring_handoff(p, d, on_pred_stored);
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
    else if (d->save_held) /* this reading may have numbered the catch-up's event */
        pipeline__save_held(p, d);
}

/* Scores one point of a committed batch. Shard thread. */
static void score_point(pipeline_t *p, struct shard *sh, const batch_t *b, struct spoint *sp)
{
    pthread_mutex_lock(&sp->d->mu);
    sp->d->log_to = &sh->lines; /* its lines written after the unlock (pipeline_evlog.c) */
    if (point_prepare(p, sh, b, sp)) {
        int64_t t0 = pipeline__mono_ns();
        int rc = detector_step_ts(sp->d->det, sp->pt->ts_ms, sp->x, sp->present, &sp->r);
        int64_t t1 = pipeline__mono_ns();
        struct tally t = {0, 0, 0};
        if (rc == 0)
            point_finish(p, sp, &sp->r, &t, t1);
        tally_flush(p, &t, (double)(t1 - t0) / 1e9);
    }
    sp->d->log_to = NULL;
    const int said = pipeline__evlog_hold(&sh->lines); /* before another thread's line of d */
    pthread_mutex_unlock(&sp->d->mu);
    if (said)
        pipeline__evlog_write(&sh->lines);
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
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&sps[ord[i]].d->mu);
        sps[ord[i]].d->log_to = &sh->lines;
    }
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
    const int said = pipeline__evlog_hold(&sh->lines); /* before another thread's line of them */
    for (int o = n; o-- > 0;) {
        sps[ord[o]].d->log_to = NULL;
        pthread_mutex_unlock(&sps[ord[o]].d->mu);
    }
    if (said)
        pipeline__evlog_write(&sh->lines); /* no device's lock held */
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

/* The lookups of a message's points (pipeline__score_message): device pd[i] and group pg[i] of the
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
                                     pipeline__dev_same);
    }
    pthread_rwlock_unlock(&p->devs_lock);
    for (size_t i = from; i < end; i++) {
        const batch_point_t *pt = &b->points[i];
        if (lk->pd[i] == NULL) /* unknown: created (or made by another thread meanwhile) */
            lk->pd[i] = pipeline__dev_k(p, batch_str(b, pt->device), pt->device_len, lk->ph[i]);
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
void pipeline__score_message(pipeline_t *p, struct shard *sh, const batch_t *b)
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

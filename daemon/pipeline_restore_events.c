/* daemon/pipeline_restore_events.c: the restore's anomaly events (pipeline_restore, before
 * readings flow): each restored device's newest active (open) stored event is the one its saved
 * detector goes on with, or is taken as ended "restart" when the saved detector had ended it
 * (event_restore; pipeline__event_chain_restore stores that end); every other open row of the
 * device, which nothing would ever end, is ended "restart" at the start of the device's next
 * later event (stale_end; docs/reliability.md, "Every open event of a device ends at the restore
 * (session 60)"), and so is every open row of a device restored without a detector. The rows
 * opened after the saved detector's save are left to the catch-up's replay, and ended so after
 * it if it did not open them again (left_end; "The rows left to the catch-up that it does not
 * open again (session 63)"). Each device's
 * next event is numbered past the highest id the store holds for it (pipeline__event_ids_read;
 * "A device restored without a detector numbers its events past the stored ones (session 60)").
 * A device known by its events alone (nothing read before them names it) is created at the
 * read, so its open rows end too. The restore's "restart" ends not known stored (refused, or
 * queued with a transaction that failed) are put again while vigild runs (pipeline__restart_*,
 * pipeline_restart_retry.c; "The restore's open events, the leads of session 60 (session 61)").
 *
 * Threads: the restore's (vigild's main thread), before readings flow; each device's mutex held
 * while its events change. The store's writes are made after its read, not in its callbacks.
 * The kept ends (p->rr): the restore's, then the loop's (pipeline_maint_tick), never both at
 * once (the loop runs after the restore), so no lock. */
#include "err.h"
#include "log.h"
#include "pipeline_events_int.h"
#include "pipeline_int.h"
#include "vtime.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The restored device of the events read's row, created when nothing the restore read before
 * the events named it (no saved detector, model version, arrivals row, maintenance period or
 * attributes: a store written by an older vigild, or rows left by a crash between an event's
 * commit and the device's first save). The restore creates every stored device anyway (the
 * highest ids' read, the catch-up), so creating it here adds none; without it such a device's
 * open rows stayed open for good (session 61). NULL when SQLite could not give the row's name
 * or the device could not be made (out of memory): that row alone is passed over, open. A
 * device without a detector (it learns) has its open rows ended (on_event). */
static struct dev *restored(pipeline_t *p, const char *device)
{
    return device ? pipeline__dev(p, device) : NULL;
}

/* The chain a stored event names (pipeline__event_json's "continues" and "fault", present
 * together or not at all) into e; leaves e as it is when the row names none. */
static void event_chain_parse(struct event *e, const char *info_json)
{
    json_t *j = json_loads(info_json, 0, NULL);
    json_t *c = json_object_get(j, "continues"), *f = json_object_get(j, "fault");
    if (json_is_integer(c) && json_is_integer(f) && json_integer_value(c) > 0 &&
        json_integer_value(f) > 0) {
        e->continues = (uint64_t)json_integer_value(c);
        e->fault = (uint64_t)json_integer_value(f);
    }
    json_decref(j);
}

/* A stored active event's row into e (zeroed first): id, start, what opened it, its chain and
 * peak; end_ts -1. */
static void event_row_read(struct event *e, int64_t id, int64_t start_ts, const char *info_json)
{
    memset(e, 0, sizeof *e);
    e->id = (uint64_t)id;
    e->start_ts = start_ts;
    e->end_ts = -1;
    e->opened_by = pipeline__event_opened_by(info_json);
    event_chain_parse(e, info_json);
    json_t *j = json_loads(info_json, 0, NULL);
    json_t *pk = j ? json_object_get(j, "peak_score") : NULL;
    e->peak = json_is_number(pk) ? (float)json_number_value(pk) : 0;
    json_decref(j);
}

/* The open event d's saved detector goes on with, when the stored active row id is it: NULL
 * otherwise. Caller holds d->mu. */
static struct event *detectors_own(struct dev *d, int64_t id)
{
    struct event *e = d->nevents > 0 ? &d->events[d->nevents - 1] : NULL;
    return e && e->id == (uint64_t)id && e->end_ts < 0 ? e : NULL;
}

/* The saved detector's open event e goes on with what its stored row names. The stored event
 * names what opened it; a format 2 blob does not (format 3 keeps it for an event the store
 * lost), and an event stored by an older vigild names nothing. Caller holds d->mu. */
static void event_merge(struct dev *d, struct event *e, const char *info_json)
{
    int how = pipeline__event_opened_by(info_json);
    if (how)
        e->opened_by = how;
    event_chain_parse(e, info_json);                /* the saved detector keeps no chain */
    pipeline__event_sides_restore(d, e, info_json); /* nor the sides */
}

/* d's newest active event in the store (id, start_ts, info_json): the one its saved detector
 * has goes on with what the row names, or, when it has none, is taken as it is stored. Caller
 * holds d->mu. */
static void event_restore(pipeline_t *p, struct dev *d, int64_t id, int64_t start_ts,
                          const char *info_json)
{
    struct event *e = detectors_own(d, id);
    if (e)
        event_merge(d, e, info_json);
    if (d->nevents > 0)
        return;
    e = pipeline__event_add(p, d);
    if (e == NULL)
        return;
    event_row_read(e, id, start_ts, info_json);
    pipeline__event_sides_restore(d, e, info_json);
    /* The saved detector opened it (its id not past the saved next one) and was saved in no
     * episode, with its state (format 2 on): it ended it, or an accept or a period did, and that
     * end's put was lost (a stop's first tick whose event end failed, its detector saved after
     * it, or a put the busy store refused while vigild ran). Taken as ended at the saved detector's
     * last reading (by when it had ended), "restart"; pipeline__event_chain_restore stores it (not
     * here, inside the events read). An event past the saved id was opened after the save (a
     * crash): the catch-up's readings go on with it. A detector saved in an episode whose event it
     * did not keep takes it as its own. */
    if (d->has_result && d->last.state != DET_ANOMALY && (uint64_t)id <= d->next_event_id) {
        uint64_t fault;
        int lead;
        e->end_ts = d->last_ts > start_ts ? d->last_ts : start_ts;
        e->ended_by = PIPE_END_RESTART;
        /* Its channels' shares and sides as its row has them (the opening reading's, or a
         * break's); the lean was none (no active event). */
        (void)pipeline__event_info_read(d, info_json, &e->above, &e->below, &lead, &fault,
                                        e->share);
        memset(d->lean, 0, sizeof d->lean);
        d->lean_seen = d->lean_up = 0;
    } else if (d->has_result && d->last.state != DET_ANOMALY) {
        /* Opened after the save: the catch-up goes on with it (track_event). The saved next id
         * is kept until then: the replay numbers the events it opens before this one (opened
         * after the save too) from it, as they were numbered (session 63). */
        e->ahead = 1;
        return;
    }
    if (d->next_event_id < (uint64_t)id)
        d->next_event_id = (uint64_t)id;
}

/* A stored active event that nothing will end (docs/reliability.md, "Every open event of a
 * device ends at the restore (session 60)"): a row of d behind a later one, copied out of the
 * events read to be ended after it (stale_end). bound: the start of the device's next later
 * event the restore knows (its next row in the read, or the event its saved detector goes on
 * with); the stale event had ended by that one's opening reading. info owned. */
struct stale_row {
    struct dev *d;
    int64_t id, start_ts, bound;
    char *info;
    /* left_end's, for a row left to the catch-up: its left_fate, whether the replay opened it
     * again (left_fate), and a replayed row's end (caller owns; NULL: none) */
    int fate, reopened;
    char *js;
};

/* The restore's read of the fleet's active events: the stale rows it found, in its order, and
 * the rows it left to the catch-up's replay (ids->left: past_own, and the `ahead` rows), ended
 * after the catch-up when it did not open them again (pipeline__event_ids_apply). */
struct ev_read {
    pipeline_t *p;
    struct ev_rows stale;
    struct ev_rows *left;
};

static void stale_add(struct ev_rows *r, struct dev *d, int64_t id, int64_t start_ts, int64_t bound,
                      const char *info_json)
{
    char *info = strdup(info_json);
    if (info && r->n == r->room) {
        size_t room = r->room ? 2 * r->room : 16;
        struct stale_row *v = realloc(r->v, room * sizeof *v);
        if (v == NULL) {
            free(info);
            info = NULL;
        } else {
            r->v = v;
            r->room = room;
        }
    }
    if (info == NULL) {
        r->lost++;
        return;
    }
    r->v[r->n++] =
        (struct stale_row){.d = d, .id = id, .start_ts = start_ts, .bound = bound, .info = info};
}

/* A later open row whose id is past the saved detector's own open event (saved in its episode)
 * and that started after the saved detector's last reading: opened after the save (that event's
 * end and this row's lost, a later row stored, then a crash). The catch-up's readings open it
 * again under its id and end it with its real reason, so the restore leaves it to them: ended
 * "restart" too, it was counted twice, and the stream said "restart" and then its real end
 * (review of ids60, session 60). When the device goes on with an `ahead` row (the detector
 * saved in no episode), a row past the saved next id (d->next_event_id, not raised for that
 * row: event_restore) is the same case (session 63). A row that started before that reading is
 * no reading's to replay: it stays stale. Caller holds d->mu. */
static int past_own(const struct dev *d, int64_t id, int64_t start_ts)
{
    const struct event *e = d->nevents > 0 ? &d->events[d->nevents - 1] : NULL;
    return e && e->end_ts < 0 && start_ts > d->last_ts &&
           (uint64_t)id > (e->ahead ? d->next_event_id : e->id);
}

/* The device's active anomaly event, if one was open when vigild stopped, continues. The
 * fleet's active events come in one read (one query a device before: task startup), newest
 * start first (ties: highest id first), so a device's first row is the one its own query's
 * limit of 1 gave. Its other rows (ended events whose end put was lost while vigild ran, a
 * later event opened after them) are stale: ended after the read, at the start of the row
 * before them in the read (stale_end); so is the first row when the saved detector goes on
 * with a later event (that one's opening put lost). A later row that is the saved detector's
 * own open event is not stale: its end's put was lost, a later event's committed, then a
 * crash; the catch-up's readings end it as before (review, session 60), as they do a row past
 * that event's id (past_own). The rows left to the catch-up (the `ahead` row, and the past_own
 * ones, the first row among them: the newest row opened after a save in an episode, before
 * read63c's finding neither stale nor left) go to r->left, ended after it if it did not open
 * them again (left_end). Each row is looked at once: the read is linear in the active rows,
 * however many a device has. */
static int on_event(void *arg, const char *device, int64_t id, int64_t start_ts, int64_t end_ts,
                    const char *info_json)
{
    struct ev_read *r = arg;
    struct dev *d = restored(r->p, device);
    struct event *own;
    if (d == NULL || end_ts >= 0)
        return 0;
    pthread_mutex_lock(&d->mu);
    if (d->det == NULL) {
        /* Restored without a detector (none saved, or unusable): it learns again and goes on
         * with no event, so each open row is stale, the newest ended at its own start (the
         * restore has read none of the device's readings), each other at the next row's. */
        stale_add(&r->stale, d, id, start_ts, d->restore_ev ? d->restore_ev_ts : start_ts,
                  info_json);
        d->restore_ev = 1;
    } else if (!d->restore_ev) {
        d->restore_ev = 1;
        event_restore(r->p, d, id, start_ts, info_json);
        const struct event *e = d->nevents ? &d->events[d->nevents - 1] : NULL;
        if (e && e->end_ts < 0 && e->id > (uint64_t)id)
            stale_add(&r->stale, d, id, start_ts, e->start_ts, info_json);
        else if (e && (e->ahead || past_own(d, id, start_ts)))
            stale_add(r->left, d, id, start_ts, start_ts, info_json); /* this row: its own end */
    } else if ((own = detectors_own(d, id)) != NULL) {
        event_merge(d, own, info_json); /* its row's chain and sides, as a first row's */
    } else if (!past_own(d, id, start_ts)) {
        stale_add(&r->stale, d, id, start_ts, d->restore_ev_ts, info_json);
    } else {
        stale_add(r->left, d, id, start_ts, d->restore_ev_ts, info_json);
    }
    d->restore_ev_ts = start_ts;
    pthread_mutex_unlock(&d->mu);
    return 0;
}

/* Stale rows put between two waits for the writer (stale_end): so many puts never fill the
 * store's queue (STORE_OPS_MAX) and the catch-up's puts after them find room. */
#define STALE_FLUSH_EVERY 1000

/* Stale rows logged one by one (stale_end); the others are said in one line with their count:
 * a store with thousands of lost ends logged a line each at the start (session 61). */
#define STALE_LOG_EACH 10

/* What stale_end's log lines call its rows: each row's (a device with a detector's, one
 * restored without), all of them, and those of devices with a detector. */
struct stale_texts {
    const char *why_det, *why_none, *all, *some;
};

static const struct stale_texts behind = {
    "behind a later event of the device", "by a device restored without a detector",
    "events stored open behind later ones or by devices restored without a detector",
    "events stored open behind later ones"};

/* Ends the stale rows the read found (on_event), "restart", each at its bound (not before its
 * start), with its channels' shares and sides as its row has them: stored, published, counted
 * and logged (pipeline__event_restart_store; the first STALE_LOG_EACH one by one, the others
 * in one line). Not inside the read (its transaction): after it, as
 * pipeline__event_chain_restore stores the newest row's. A put refused or a commit that
 * fails leaves the row open in the store, and the next restart ends it. One put a row and a
 * wait for the writer every STALE_FLUSH_EVERY rows: linear in the stale rows. Frees r's rows. */
static void stale_end(pipeline_t *p, struct ev_rows *r, const struct stale_texts *t)
{
    size_t queued = 0, failed = 0, unkept = 0, unflushed = 0;
    /* Of the rows not logged one by one: queued, refused and kept, refused and not kept. */
    size_t quiet_queued = 0, quiet_failed = 0, quiet_unkept = 0;
    int flush_rc = 0;
    /* A flush answers for the transaction that reached it only: the puts lost with an earlier
     * one show in ops_failed (storage.h, store_flush). */
    store_stats_t st0, st1;
    store_stats_get(p->store, &st0);
    const size_t mark = pipeline__restart_mark(p);
    for (size_t i = 0; i < r->n; i++) {
        struct stale_row *s = &r->v[i];
        struct dev *d = s->d;
        struct event e;
        uint64_t fault;
        int lead;
        pthread_mutex_lock(&d->mu);
        event_row_read(&e, s->id, s->start_ts, s->info);
        (void)pipeline__event_info_read(d, s->info, &e.above, &e.below, &lead, &fault, e.share);
        e.chain_broken = pipeline__event_info_broken(s->info);
        e.end_ts = s->bound > s->start_ts ? s->bound : s->start_ts;
        e.ended_by = PIPE_END_RESTART;
        const int quiet = i >= STALE_LOG_EACH;
        const size_t unkept0 = p->rr_unkept; /* moves when the end is not kept (out of memory) */
        if (pipeline__event_restart_store(p, d, &e, s->info, d->det ? t->why_det : t->why_none,
                                          quiet)) {
            const int kept = p->rr_unkept == unkept0;
            failed += kept;
            unkept += !kept;
            quiet_failed += quiet && kept;
            quiet_unkept += quiet && !kept;
        } else {
            queued++;
            quiet_queued += quiet;
            unflushed++;
        }
        pthread_mutex_unlock(&d->mu);
        free(s->info);
        if (unflushed && (unflushed == STALE_FLUSH_EVERY || i + 1 == r->n)) {
            int rc = store_flush(p->store); /* not under d->mu: the writer's hooks take it */
            flush_rc = rc ? rc : flush_rc;
            unflushed = 0;
        }
    }
    if (r->n > STALE_LOG_EACH)
        log_warn("pipeline: %zu more %s: %zu ended \"restart\", %zu not stored (put again while "
                 "vigild runs), %zu not stored nor kept (out of memory: left open to the next "
                 "restart); not logged one by one",
                 r->n - STALE_LOG_EACH, t->all, quiet_queued, quiet_failed, quiet_unkept);
    store_stats_get(p->store, &st1);
    const int lost = queued && (flush_rc || st1.ops_failed != st0.ops_failed);
    if (lost)
        log_warn("pipeline: the \"restart\" ends of %zu %s may not be stored (%s): put again "
                 "while vigild runs",
                 queued, t->some, flush_rc ? err_str(flush_rc) : "a write failed");
    pipeline__restart_check(p, mark, lost);
    if (failed || unkept || r->lost)
        log_warn("pipeline: %zu %s not ended at the restore (%zu not stored: put again while "
                 "vigild runs; %zu out of memory: left open to the next restart)",
                 failed + unkept + r->lost, t->some, failed, unkept + r->lost);
    free(r->v);
    *r = (struct ev_rows){0};
}

/* After the fleet's active events read failed part way, the devices it never reported are read
 * one by one (all their open rows: a device's first row is its newest, as in the fleet's read).
 * Returns the devices whose own read failed too. */
static size_t events_fallback(struct ev_read *r, char *const *names, size_t n)
{
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        struct dev *d = restored(r->p, names[i]);
        if (d && !d->restore_ev)
            failed += store_events_query(r->p->store, d->name, 1, VTIME_MIN_MS, VTIME_MAX_MS + 1, 0,
                                         on_event, r) != 0;
    }
    return failed;
}

void pipeline__events_restore(pipeline_t *p, char *const *names, size_t n, struct ev_rows *left)
{
    struct ev_read er = {.p = p, .left = left};
    if (store_events_query(p->store, NULL, 1, VTIME_MIN_MS, VTIME_MAX_MS + 1, 0, on_event, &er) !=
        0) {
        log_warn("pipeline: the fleet's active events read failed (%s); the devices it did not "
                 "reach are read one by one",
                 store_errmsg(p->store));
        size_t failed = events_fallback(&er, names, n);
        if (failed)
            log_warn("pipeline: the active events of %zu devices not restored", failed);
    }
    stale_end(p, &er.stale, &behind);
}

/* store_event_max_cb: a device's highest stored event id. A device without a detector numbers
 * its events past it from now on (its catch-up, learning, opens none before); one with a
 * detector after its catch-up (pipeline__event_ids_apply), whose replayed readings number the
 * events they open again after the saved next id, as they were numbered before the stop. */
static int on_max_id(void *arg, const char *device, int64_t max_id)
{
    struct ev_ids *ids = arg;
    struct dev *d = device ? pipeline__dev(ids->p, device) : NULL;
    if (d == NULL || max_id <= 0)
        return 0;
    pthread_mutex_lock(&d->mu);
    int now = d->det == NULL;
    if (now && d->next_event_id < (uint64_t)max_id)
        d->next_event_id = (uint64_t)max_id;
    if (!now)
        d->replay_max = (uint64_t)max_id; /* the catch-up's floor (event_next_id) */
    pthread_mutex_unlock(&d->mu);
    if (now)
        return 0;
    if (ids->n == ids->room) {
        size_t room = ids->room ? 2 * ids->room : 64;
        struct ev_id *v = realloc(ids->v, room * sizeof *v);
        if (v == NULL) {
            ids->lost++;
            return 0;
        }
        ids->v = v;
        ids->room = room;
    }
    ids->v[ids->n++] = (struct ev_id){d, (uint64_t)max_id};
    return 0;
}

void pipeline__event_ids_read(pipeline_t *p, struct ev_ids *ids)
{
    ids->p = p; /* ids->left: pipeline__events_restore's */
    ids->read = store_events_max_ids(p->store, on_max_id, ids) == 0;
    if (!ids->read)
        log_warn("pipeline: the stored events' highest ids not read (%s): a device restored "
                 "without a detector may number its next events under stored ones, and "
                 "overwrite them",
                 store_errmsg(p->store));
}

/* store_event_cb: whether the row of id o->id is among the device's open ones. */
struct open_row {
    int64_t id;
    int open;
};

static int on_open_row(void *arg, const char *device, int64_t id, int64_t start_ts, int64_t end_ts,
                       const char *info_json)
{
    struct open_row *o = arg;
    (void)device, (void)start_ts, (void)info_json;
    o->open |= id == o->id && end_ts < 0;
    return 0;
}

/* d's event of id while d's list still holds it (its oldest dropped past [pipeline] events),
 * else NULL. Caller holds d->mu. */
static struct event *event_held(struct dev *d, uint64_t id)
{
    for (size_t i = d->nevents; i-- > 0;)
        if (d->events[i].id == id)
            return &d->events[i];
    return NULL;
}

/* What the catch-up did with a row left to it (left_end), as d's list says. */
enum left_fate {
    LEFT_UNKNOWN,   /* not held: the store says (open: not opened again) */
    LEFT_LIVE,      /* opened again and still open: the live readings go on with it */
    LEFT_REPLAYED,  /* opened again and ended: its end's put checked in the store */
    LEFT_UNREACHED, /* still `ahead`: no replayed reading reached its start */
};

/* Whether the catch-up opened again the row of id, one of d's keys: a replayed opening took its
 * id (event_next_id) or went on with it (the `ahead` row). Caller holds d->mu. */
static int key_hit(const struct dev *d, uint64_t id)
{
    for (size_t i = 0; i < d->nreplay; i++)
        if (d->replay[i].id == id)
            return d->replay[i].hit;
    return 0;
}

/* A left row's fate, with an unreached `ahead` event dropped from d's list (ended "restart" at
 * its own start by the caller, as the other unreplayed rows: before read63c's finding 5 the
 * first live reading ended it "reset" at that reading's time). *js: a replayed row's end as the
 * replay put it (caller owns; NULL out of memory). *reopened: the replay opened the row again,
 * the caller's answer when d's list no longer holds it and the store's read fails: its key hit,
 * d's keys read (d->replay_keyed: a replayed opening takes a key's id or one past every stored
 * row, so no other reaches a left row's id: read64's finding 4), else d's next id, as the
 * replay left it, has reached the row's id (the replay numbered from the saved next id). Raises
 * nothing: the caller raises d's next id only once every left row's fate is taken (read63d's
 * finding 1: raised row by row, the rows after a device's first read opened again). Caller
 * holds d->mu. */
static enum left_fate left_fate(struct dev *d, const struct stale_row *s, char **js, int *reopened)
{
    struct event *e = event_held(d, (uint64_t)s->id);
    *reopened = d->replay_keyed ? key_hit(d, (uint64_t)s->id)
                                : d->next_event_id >= (uint64_t)s->id;
    if (e == NULL)
        return LEFT_UNKNOWN;
    if (e->ahead && e == &d->events[d->nevents - 1]) {
        free(e->note);
        d->nevents--;
        return LEFT_UNREACHED;
    }
    if (e->end_ts < 0)
        return LEFT_LIVE;
    *js = pipeline__event_json(d, e);
    return LEFT_REPLAYED;
}

/* The rows the restore left to the catch-up's replay (on_event: past_own, and the `ahead` row)
 * that the replay did not open again and end, ended "restart" at their bound as stale rows are
 * (stale_end): after the catch-up's writes are committed, a row d's list does not hold and that
 * is still open in the store, and the `ahead` row no replayed reading reached (at its start). A
 * row d's list holds ended was replayed: never ended "restart" (read63c's finding 2: before, a
 * replayed end whose put was refused or whose transaction failed read open, and the row was
 * ended twice, counted and published twice); when the store still has it open, the replay's end
 * is kept and put again while vigild runs (pipeline__restart_keep, counted: the replay counted
 * and published it). One held open is the device's active event (the live readings go on with
 * it). The store read failing, a row not held is taken as replayed when the replay opened it
 * again (left_fate: its key hit, or, d's keys not read, d->next_event_id as the replay left it
 * reached its id; since the keys an opening before an `ahead` row takes an id past every
 * stored row, and the next id reached every left row's: read64's finding 4): every row's fate
 * is taken before any raise of d's next id to a left row's id (which keeps a live event from
 * taking a row's id: read63c's finding 4; done row by row, it made every older row of the
 * device read replayed: read63d's finding 1). A replay that does not open them again: the
 * readings after the save gone (a retention sweep while vigild was down), or a detector that
 * scores them otherwise; left open, nothing ended them until the next restart (review of
 * events63, session 63). */
static void left_end(pipeline_t *p, struct ev_rows *left)
{
    static const struct stale_texts unreplayed = {
        "after its detector's last save, and the catch-up did not open it again",
        "after its detector's last save, and the catch-up did not open it again",
        "events opened after a detector's last save that its catch-up did not open again",
        "events opened after a detector's last save that its catch-up did not open again"};
    size_t k = 0, resent = 0;
    if (left->n)
        (void)store_flush(p->store); /* the catch-up's puts committed (a failure: read below) */
    for (size_t i = 0; i < left->n; i++) { /* every fate first, d's next id as the replay left it */
        struct stale_row *s = &left->v[i];
        pthread_mutex_lock(&s->d->mu);
        s->fate = left_fate(s->d, s, &s->js, &s->reopened);
        pthread_mutex_unlock(&s->d->mu);
    }
    for (size_t i = 0; i < left->n; i++) {
        struct stale_row *s = &left->v[i];
        struct dev *d = s->d;
        char *js = s->js;
        const enum left_fate fate = s->fate;
        s->js = NULL;
        pthread_mutex_lock(&d->mu);
        if (d->next_event_id < (uint64_t)s->id)
            d->next_event_id = (uint64_t)s->id;
        pthread_mutex_unlock(&d->mu);
        struct open_row o = {s->id, 0};
        const int read = fate == LEFT_UNKNOWN || fate == LEFT_REPLAYED;
        if (read && store_events_query(p->store, d->name, 1, VTIME_MIN_MS, VTIME_MAX_MS + 1, 0,
                                       on_open_row, &o) != 0)
            o.open = fate == LEFT_REPLAYED || !s->reopened; /* a replayed end put again: the same */
        if (fate == LEFT_REPLAYED && o.open) {
            pthread_mutex_lock(&d->mu);
            const struct event *e = event_held(d, (uint64_t)s->id);
            if (e && pipeline__restart_keep(p, d, e, js, 1, 1) == 0)
                resent++;
            else if (e == NULL)
                free(js);
            pthread_mutex_unlock(&d->mu);
            js = NULL;
        }
        free(js);
        if (fate == LEFT_UNREACHED || (fate == LEFT_UNKNOWN && o.open))
            left->v[k++] = *s;
        else
            free(s->info);
    }
    left->n = k;
    if (resent)
        log_warn("pipeline: the ends of %zu events the catch-up replayed are not stored (their "
                 "puts refused or lost): put again while vigild runs",
                 resent);
    if (left->lost)
        log_warn("pipeline: %zu events opened after a detector's last save not kept (out of "
                 "memory): if its catch-up did not open them again, left open to the next restart",
                 left->lost);
    left->lost = 0;
    stale_end(p, left, &unreplayed);
}

/* store_event_cb: d's stored rows after the save (newest start first), appended to k, one key
 * a start: of rows that began at the same time (none the live run opens: constructed data, an
 * import), the open one, else the highest id, the row the device went on with (read64's
 * finding 3: bsearch picked either, and the replay overwrote a row with another's episode). */
struct replay_read {
    int64_t after;
    struct replay_key *v;
    size_t n, room;
    uint64_t max;
    int nomem;
    int last_open; /* v[n - 1]'s row is open */
};

static int on_replay_key(void *arg, const char *device, int64_t id, int64_t start_ts,
                         int64_t end_ts, const char *info_json)
{
    struct replay_read *k = arg;
    (void)device, (void)info_json;
    if (start_ts <= k->after || id <= 0)
        return 0; /* ended after the save, begun before it: no replayed reading opens it */
    if (k->max < (uint64_t)id)
        k->max = (uint64_t)id;
    if (k->n && k->v[k->n - 1].start_ts == start_ts) { /* a tie: the rows are by start */
        struct replay_key *last = &k->v[k->n - 1];
        if (!k->last_open && (end_ts < 0 || last->id < (uint64_t)id)) {
            last->id = (uint64_t)id;
            last->end_ts = end_ts < 0 ? -1 : end_ts;
            k->last_open = end_ts < 0;
        }
        return 0;
    }
    if (k->n == k->room) {
        size_t room = k->room ? 2 * k->room : 8;
        struct replay_key *v = realloc(k->v, room * sizeof *v);
        if (v == NULL) {
            k->nomem = 1;
            return 1;
        }
        k->v = v;
        k->room = room;
    }
    k->v[k->n++] = (struct replay_key){start_ts, (uint64_t)id, 0, end_ts < 0 ? -1 : end_ts};
    k->last_open = end_ts < 0;
    return 0;
}

int pipeline__event_replay_keys(pipeline_t *p, struct dev *d, int maxed)
{
    pthread_mutex_lock(&d->mu);
    struct replay_read k = {.after = d->last_ts};
    /* None stored past the saved next id (event_restore raises it only to a row it goes on
     * with or ends, not to an `ahead` one): none opened after the save. */
    const int none = maxed && d->replay_max <= d->next_event_id;
    d->replay_past = none; /* its openings numbered past every stored row (event.unsaid) */
    pthread_mutex_unlock(&d->mu);
    if (none)
        return 0;
    int rc = store_events_query(p->store, d->name, 0, k.after + 1, VTIME_MAX_MS + 1, 0,
                                on_replay_key, &k);
    if (rc == 0 && k.nomem)
        rc = ERR_NOMEM;
    if (rc != 0) { /* numbered from the saved next id, as before task events64 */
        free(k.v);
        pthread_mutex_lock(&d->mu);
        d->replay_max = 0;
        pthread_mutex_unlock(&d->mu);
        return rc;
    }
    if (k.n == 0) { /* d->replay_max, the highest stored id, still the floor */
        free(k.v);
        pthread_mutex_lock(&d->mu);
        d->replay_keyed = d->replay_past = 1;
        pthread_mutex_unlock(&d->mu);
        return 0;
    }
    for (size_t i = 0; i < k.n / 2; i++) { /* newest first: ascending for the search */
        struct replay_key t = k.v[i];
        k.v[i] = k.v[k.n - 1 - i];
        k.v[k.n - 1 - i] = t;
    }
    pthread_mutex_lock(&d->mu);
    free(d->replay);
    d->replay = k.v;
    d->nreplay = k.n;
    if (d->replay_max < k.max)
        d->replay_max = k.max;
    d->replay_keyed = d->replay_past = 1;
    pthread_mutex_unlock(&d->mu);
    return 0;
}

void pipeline__event_ids_apply(struct ev_ids *ids)
{
    left_end(ids->p, &ids->left);
    for (size_t i = 0; i < ids->n; i++) {
        struct dev *d = ids->v[i].d;
        pthread_mutex_lock(&d->mu);
        if (d->next_event_id < ids->v[i].id)
            d->next_event_id = ids->v[i].id;
        pthread_mutex_unlock(&d->mu);
    }
    if (ids->lost)
        log_warn("pipeline: %zu devices' highest stored event ids not kept (out of memory): "
                 "their next events may be numbered under stored ones",
                 ids->lost);
    free(ids->v);
    *ids = (struct ev_ids){.p = ids->p};
}

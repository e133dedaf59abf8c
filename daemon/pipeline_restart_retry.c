/* daemon/pipeline_restart_retry.c: the restore's "restart" ends put again while vigild runs
 * (session 61; docs/reliability.md, "The restore's open events, the leads of session 60 (session
 * 61)"). The restore keeps each end's row (pipeline__restart_keep) until it is known stored; those
 * refused, or queued with a transaction that failed, are put again from the maintenance tick
 * (pipeline__restart_retry).
 *
 * Invariants (the second reader's findings on events61, task fix61e): a round is paced (at most
 * PIPE_RESTART_TICK_PUTS puts a tick, none while the store's queue of puts is half full or more),
 * so thousands of kept ends never fill the queue live writes share; a refused put ends the tick's
 * part of the round, which goes on from there at the next tick. An end is known stored, and
 * dropped from the list, once every put queued before the store's stats were read after its put
 * was handled (the writer takes its queue in order, whole, and counts each put written, skipped
 * or failed: a FIFO mark, restart_settle) and no put was lost since its put. No round's puts run
 * once the pipeline stopped (the rows are left to the next restart): the stop's ticks would count
 * their failures as its own lost writes; the settle, which writes nothing, still runs there, so
 * an end the stop's flushes commit is counted and announced (task retry62); those still not
 * known stored are said in one line as pipeline_destroy frees them (pipeline__restart_stop,
 * task stop62), beside the line restart_done says of the others (stored, or dropped: task
 * stop63). Only a transient
 * refusal (store_retry_later: a full queue, a full disk, out of memory) holds a round on an end;
 * any other drops that end, logged. The retries end PIPE_RESTART_RETRIES rounds or
 * PIPE_RESTART_SPAN_MS after the first round began, whichever comes first: a round held back
 * at every tick (a saturated writer) is not counted as a round, the time bound ends it. The end
 * drops the ends whose put is not in flight; one in flight is left to its settle (the writer
 * handles every queued put), so a put committed after the give-up is still said stored, counted
 * and announced, and one lost is dropped at the next tick (restart_give_up).
 *
 * Threads: the kept ends (p->rr) are the restore's (vigild's main thread, before the loop runs),
 * then the loop's (pipeline_maint_tick); never both at once, so no lock. A device's deleted flag
 * and forget_gen are read under its mutex. */
#include "err.h"
#include "log.h"
#include "pipeline_events_int.h"
#include "pipeline_int.h"
#include "vtime.h"

#include <stdio.h>
#include <stdlib.h>

/* A round of puts every PIPE_RESTART_RETRY_MS, PIPE_RESTART_RETRIES rounds at most: ten minutes
 * cover a busy queue at the start (the catch-up's puts) and a short run of failed commits (a
 * lock another process held, a disk briefly full); past them the rows are the next restart's,
 * as every refused end was before session 61. */
#define PIPE_RESTART_RETRY_MS 5000
#define PIPE_RESTART_RETRIES  120
/* The same ten minutes as a time bound, from the first round's start (task retry62): a round
 * held back at every tick (the store's queue half full, or its put refused) is never counted, so
 * the rounds alone bound nothing under a saturated writer. A time bound, not a count of held
 * ticks: a held tick is 250 ms and a round 5 s, so counting both toward one number would bound
 * neither in time; ten minutes is what the rounds' bound promised while the store keeps up. */
#define PIPE_RESTART_SPAN_MS ((int64_t)PIPE_RESTART_RETRIES * PIPE_RESTART_RETRY_MS)
/* A round's puts a tick (250 ms): 4,000 a second at most, a tenth of the queue's bound. */
#define PIPE_RESTART_TICK_PUTS 1000
/* Ends dropped with their device logged one by one; the others in one line a tick. */
#define PIPE_RESTART_LOG_EACH 10

/* A "restart" end of the restore: its row as put (js, owned). counted: its put was queued once
 * (counted, logged and published then). forget_gen: d's when kept (pipeline_forget moves it): a
 * device deleted since, even one a reading or PUT made again (deleted cleared, its events
 * numbered from 1 again), has its end dropped, not put back or counted. inflight: its last put
 * was queued and is not known handled yet: handled once the store's written + skipped + failed
 * puts reach mark, stored when ops_failed is still failed0 then. */
struct restart_end {
    struct dev *d;
    uint64_t id, forget_gen;
    int64_t start_ts, end_ts;
    char *js;
    int counted, inflight;
    /* The catch-up's end of a row it replayed (left_end: read63c's finding 2), not a "restart"
     * end: its JSON built again from d's held event at each put (replayed_refresh), the log
     * lines count it apart (ends_of; task events64). */
    int replayed;
    uint64_t mark, failed0;
};

/* The kept ends. */
struct restart_retry {
    struct restart_end *v;
    size_t n, room;
    size_t stored, late; /* known stored by the retries; of them, counted then (first refused) */
    size_t gone;         /* dropped with their device: the first PIPE_RESTART_LOG_EACH logged */
    size_t dropped;      /* dropped on a lasting refusal of their put: likewise */
    int64_t first_ms;    /* monotonic ms: when the first round began (0: none yet) */
    int64_t span_ms;     /* PIPE_RESTART_SPAN_MS, or VIGIL_TEST_RESTART_SPAN_MS (tests only) */
    size_t pos;          /* the round under way: the next end it looks at */
    int64_t next_ms;     /* monotonic ms: when the next round is due */
    int rounds;          /* rounds begun */
    int open;            /* a round is under way (pos) */
    int over;            /* the retries gave up: only the ends in flight are left, to settle */
    /* Of the stored, the replayed ends (restart_end.replayed). */
    size_t stored_replayed;
};

/* The subject of a line about the kept ends: the restore's "restart" ends and the catch-up's
 * replayed ones (restart_end.replayed) counted apart, so a replayed end ("cleared", ...) is not
 * called a "restart" end (read63d's finding 5; task events64). Returns buf. */
static const char *ends_of(char *buf, size_t size, size_t all, size_t replayed)
{
    if (replayed == 0)
        snprintf(buf, size, "the \"restart\" ends of %zu events", all);
    else if (replayed == all)
        snprintf(buf, size, "the ends of %zu events the catch-up replayed", all);
    else
        snprintf(buf, size,
                 "the \"restart\" ends of %zu events and the ends of %zu the catch-up "
                 "replayed",
                 all - replayed, replayed);
    return buf;
}

/* The replayed ends among rr->v[0..n). */
static size_t replayed_in(const struct restart_retry *rr, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += rr->v[i].replayed != 0;
    return k;
}

/* Counts an end not kept (out of memory): said at the restore's end. */
static int unkept(pipeline_t *p, char *js)
{
    free(js);
    p->rr_unkept++;
    return ERR_NOMEM;
}

int pipeline__restart_keep(pipeline_t *p, struct dev *d, const struct event *e, char *js,
                           int queued, int replayed)
{
    if (js == NULL)
        return unkept(p, js);
    if (p->rr == NULL && (p->rr = calloc(1, sizeof *p->rr)) == NULL)
        return unkept(p, js);
    struct restart_retry *rr = p->rr;
    if (rr->n == rr->room) {
        size_t room = rr->room ? 2 * rr->room : 16;
        struct restart_end *v = realloc(rr->v, room * sizeof *v);
        if (v == NULL)
            return unkept(p, js);
        rr->v = v;
        rr->room = room;
    }
    rr->v[rr->n++] = (struct restart_end){.d = d,
                                          .id = e->id,
                                          .forget_gen = d->forget_gen,
                                          .start_ts = e->start_ts,
                                          .end_ts = e->end_ts,
                                          .js = js,
                                          .counted = queued,
                                          .replayed = replayed};
    return 0;
}

size_t pipeline__restart_mark(const pipeline_t *p)
{
    return p->rr ? p->rr->n : 0;
}

void pipeline__restart_check(pipeline_t *p, size_t mark, int lost)
{
    struct restart_retry *rr = p->rr;
    size_t k = mark;
    for (size_t i = mark; rr && i < rr->n; i++) {
        if (lost || !rr->v[i].counted)
            rr->v[k++] = rr->v[i]; /* refused, or maybe lost: put again */
        else
            free(rr->v[i].js); /* stored */
    }
    if (rr)
        rr->n = k;
}

/* Frees the kept ends and the list. */
static void restart_free(pipeline_t *p)
{
    struct restart_retry *rr = p->rr;
    if (rr == NULL)
        return;
    for (size_t i = 0; i < rr->n; i++)
        free(rr->v[i].js);
    free(rr->v);
    free(rr);
    p->rr = NULL;
}

void pipeline__restart_begin(pipeline_t *p)
{
    struct restart_retry *rr = p->rr;
    if (p->rr_unkept)
        log_warn("pipeline: %zu \"restart\" ends not kept to be put again (out of memory): those "
                 "not stored are left open to the next restart",
                 p->rr_unkept);
    if (rr == NULL || rr->n == 0) {
        restart_free(p);
        return;
    }
    char what[128];
    log_warn("pipeline: %s are not known stored: put again every %d s while vigild runs (%d "
             "times at most, %d puts a tick at most)",
             ends_of(what, sizeof what, rr->n, replayed_in(rr, rr->n)),
             PIPE_RESTART_RETRY_MS / 1000, PIPE_RESTART_RETRIES, PIPE_RESTART_TICK_PUTS);
    rr->next_ms = vtime_mono_ms() + PIPE_RESTART_RETRY_MS;
    const long long span =
        pipeline__test_knob("VIGIL_TEST_RESTART_SPAN_MS", PIPE_KNOB_MS_MAX,
                            "the \"restart\" ends' retries end after that many ms");
    rr->span_ms = span ? (int64_t)span : PIPE_RESTART_SPAN_MS;
}

/* The store's puts handled (written, skipped or lost) since open. */
static uint64_t handled(const store_stats_t *st)
{
    return st->ops_written + st->ops_skipped + st->ops_failed;
}

/* r's device was deleted since r was kept (even if made again). Caller holds r->d->mu. */
static int dev_gone(const struct restart_end *r)
{
    return atomic_load_explicit(&r->d->deleted, memory_order_relaxed) ||
           r->d->forget_gen != r->forget_gen;
}

/* Drops r (its device deleted): logged one by one for the first PIPE_RESTART_LOG_EACH. */
static void drop_gone(struct restart_retry *rr, struct restart_end *r)
{
    if (rr->gone++ < PIPE_RESTART_LOG_EACH)
        log_info("pipeline: the %send of event %llu of '%s' is not put again: the device was "
                 "deleted",
                 r->replayed ? "replayed " : "\"restart\" ", (unsigned long long)r->id, r->d->name);
    free(r->js);
    r->js = NULL;
}

/* rc, a refusal of store_event_put, may pass: a full queue (ERR_BUSY), a full disk
 * (ERR_NOSPACE) or memory (ERR_NOMEM). Any other (ERR_INVAL: an end before its start, which the
 * restore's clamp rules out today; ERR_CLOSED) would refuse that end at every try. */
static int store_retry_later(int rc)
{
    return rc == ERR_BUSY || rc == ERR_NOSPACE || rc == ERR_NOMEM;
}

/* Drops r, whose put was refused for good (rc): logged one by one for the first
 * PIPE_RESTART_LOG_EACH, the others counted in the tick's line. */
static void drop_refused(struct restart_retry *rr, struct restart_end *r, int rc)
{
    if (rr->dropped++ < PIPE_RESTART_LOG_EACH)
        log_warn("pipeline: the %send of event %llu of '%s' is not put again: the store refused "
                 "it (%s); its row is left open to the next restart",
                 r->replayed ? "replayed " : "\"restart\" ", (unsigned long long)r->id, r->d->name,
                 err_str(rc));
    free(r->js);
    r->js = NULL;
}

/* The ends in flight whose puts were handled: stored ones (no put lost since theirs) are counted
 * and published when their first put was refused, unless their device was deleted since, and
 * dropped; lost ones wait for the next round. The writer takes its whole queue, in order, into
 * one transaction and counts each put there written, skipped or failed (account, writer.c)
 * before it lowers ops_queued: the mark (handled + queued, read in that order after the put) is
 * never below the count the put's handling reaches, and an empty queue means it was handled. */
static void restart_settle(pipeline_t *p, const store_stats_t *st)
{
    struct restart_retry *rr = p->rr;
    size_t k = 0, pos = 0;
    for (size_t i = 0; i < rr->n; i++) {
        struct restart_end *r = &rr->v[i];
        if (r->js != NULL && r->inflight && (st->ops_queued == 0 || handled(st) >= r->mark)) {
            r->inflight = 0;
            if (st->ops_failed == r->failed0) {
                pthread_mutex_lock(&r->d->mu);
                if (dev_gone(r)) {
                    drop_gone(rr, r);
                } else {
                    if (!r->counted) {
                        rr->late++;
                        atomic_fetch_add_explicit(&p->ended[PIPE_END_RESTART], 1,
                                                  memory_order_relaxed);
                        api_events_publish(p->o.hub, API_EVENT_ANOMALY, r->d->name, r->js);
                    }
                    rr->stored++;
                    rr->stored_replayed += r->replayed != 0;
                    free(r->js);
                    r->js = NULL;
                }
                pthread_mutex_unlock(&r->d->mu);
            }
        }
        if (i < rr->pos)
            pos = k + (r->js != NULL); /* the round's place, after the compaction */
        if (r->js != NULL)
            rr->v[k++] = *r;
    }
    rr->n = k;
    rr->pos = pos;
}

/* A replayed end's JSON as d's held event of its id says now: a chain break since the end was
 * kept (pipeline__event_chain_break marks the held event "chain_broken" and puts its row) is not
 * undone by this put, which wrote the JSON of left_end's time back, so the next restart restored
 * the chain (read63d's finding 2; task events64). Kept as it is when d's list no longer holds the
 * event (past [pipeline] events), it is no longer that end, or out of memory. Caller holds
 * r->d->mu. */
static void replayed_refresh(struct restart_end *r)
{
    const struct dev *d = r->d;
    for (size_t i = d->nevents; r->replayed && i-- > 0;) {
        const struct event *e = &d->events[i];
        if (e->id != r->id)
            continue;
        char *js = e->start_ts == r->start_ts && e->end_ts == r->end_ts
                       ? pipeline__event_json(r->d, e)
                       : NULL;
        if (js != NULL) {
            free(r->js);
            r->js = js;
        }
        return;
    }
}

/* The round's puts from rr->pos on: at most PIPE_RESTART_TICK_PUTS, none once the store's queue
 * of puts is half full (live writes share it); a refused put ends this tick's part, the round
 * goes on from it at the next tick. Ends of a deleted device are dropped. st: read before the
 * puts (their failed0). Returns 1 when the round reached the list's end. */
static int restart_puts(pipeline_t *p, const store_stats_t *st)
{
    struct restart_retry *rr = p->rr;
    const uint64_t cap = st->ops_max > 1 ? st->ops_max / 2 : 1; /* a test's bound of 1 too */
    uint64_t queued = st->ops_queued;
    size_t puts = 0, first = rr->pos;
    int refused = 0;
    for (; rr->pos < rr->n && puts < PIPE_RESTART_TICK_PUTS && queued < cap; rr->pos++) {
        struct restart_end *r = &rr->v[rr->pos];
        int rc = 0;
        if (r->inflight)
            continue; /* its last put not handled yet */
        /* Under d->mu: pipeline_forget (any thread) moves forget_gen under it, so a delete
         * either comes before this look (dropped) or after the put is queued (behind it on
         * the writer's queue, the delete's own rows removal goes first: store_device_delete
         * is made before pipeline_forget, backend.c; the window between the two is a lead). */
        pthread_mutex_lock(&r->d->mu);
        const int gone = dev_gone(r);
        if (gone)
            drop_gone(rr, r); /* a put would bring its row back, or overwrite a new one */
        else {
            replayed_refresh(r); /* a chain break since it was kept */
            rc = store_event_put(p->store, r->d->name, (int64_t)r->id, r->start_ts, r->end_ts,
                                 r->js);
        }
        refused = store_retry_later(rc);
        if (rc != 0 && !refused)
            drop_refused(rr, r, rc); /* every try would refuse it: the round goes on */
        pthread_mutex_unlock(&r->d->mu);
        if (refused)
            break; /* the queue or the disk is full: this one first at the next tick */
        if (!gone && rc == 0) {
            r->inflight = 1;
            r->mark = 0; /* set below, after this tick's puts */
            r->failed0 = st->ops_failed;
            puts++;
            queued++;
        }
    }
    if (puts > 0) { /* the mark: every put queued before this read handled */
        store_stats_t now;
        store_stats_get(p->store, &now);
        const uint64_t mark = handled(&now) + now.ops_queued;
        for (size_t i = first; i < rr->pos; i++)
            if (rr->v[i].inflight && rr->v[i].mark == 0)
                rr->v[i].mark = mark;
    }
    return !refused && rr->pos == rr->n;
}

/* Logs what the retries came to once no end is left, and frees the list. */
static void restart_done(pipeline_t *p)
{
    struct restart_retry *rr = p->rr;
    char what[128];
    if (rr->gone > PIPE_RESTART_LOG_EACH)
        log_info("pipeline: the kept ends (\"restart\" or replayed) of %zu events in all were not "
                 "put again: their devices were deleted",
                 rr->gone);
    if (rr->dropped > PIPE_RESTART_LOG_EACH)
        log_warn("pipeline: the kept ends (\"restart\" or replayed) of %zu events in all were not "
                 "put again: the store refused them; their rows are left open to the next restart",
                 rr->dropped);
    if (rr->stored) /* a replayed end is counted when the replay ends it: never "now" */
        log_info("pipeline: %s are stored (%zu of them counted now: their first put was refused)",
                 ends_of(what, sizeof what, rr->stored, rr->stored_replayed), rr->late);
    restart_free(p);
}

void pipeline__restart_stop(pipeline_t *p)
{
    struct restart_retry *rr = p->rr;
    if (rr == NULL)
        return;
    /* After a start that failed past the restore no round ran, and "at the stop" would read as
     * a stop of a vigild that had run (task stop63). */
    char what[128];
    if (rr->n > 0)
        log_warn("pipeline: %s are not known stored %s: their rows are left open to the next "
                 "restart",
                 ends_of(what, sizeof what, rr->n, replayed_in(rr, rr->n)),
                 p->started ? "at the stop" : "after the failed start");
    restart_done(p); /* what the others came to: stored, or dropped (task stop63) */
}

/* The retries' end (PIPE_RESTART_RETRIES rounds, or the time bound passed): the ends whose put
 * is not in flight are dropped, in one line; those in flight are kept for their settle only (the
 * writer handles every queued put, in order), so one committed after the give-up is still said
 * stored, counted and announced (review of retry62: the first version dropped it, and said it
 * not stored); one lost is dropped here at a later tick. No round begins again. */
static void restart_give_up(pipeline_t *p, int64_t now)
{
    struct restart_retry *rr = p->rr;
    size_t k = 0, left = 0, left_replayed = 0;
    char what[128];
    for (size_t i = 0; i < rr->n; i++) {
        if (rr->v[i].inflight) {
            rr->v[k++] = rr->v[i];
        } else {
            free(rr->v[i].js);
            left++;
            left_replayed += rr->v[i].replayed != 0;
        }
    }
    rr->n = k;
    rr->pos = 0;
    rr->open = 0;
    rr->over = 1;
    if (left)
        log_warn("pipeline: %s not stored after %d tries in %lld s: their rows are left open to "
                 "the next restart%s",
                 ends_of(what, sizeof what, left, left_replayed), rr->rounds,
                 (long long)((now - rr->first_ms) / 1000),
                 k ? " (those whose put is in flight wait for it: said stored if it commits)" : "");
    if (rr->n == 0)
        restart_done(p);
}

void pipeline__restart_retry(pipeline_t *p)
{
    struct restart_retry *rr = p->rr;
    if (rr == NULL || p->store == NULL)
        return;
    store_stats_t st;
    store_stats_get(p->store, &st);
    const size_t gone = rr->gone, dropped = rr->dropped;
    /* At the stop too (its ticks come after its flushes): the settle writes nothing, and an end
     * those flushes committed is counted and announced; the hub outlives the pipeline. */
    restart_settle(p, &st);
    if (rr->n == 0) {
        restart_done(p);
        return;
    }
    if (p->stopped)
        return; /* no puts at the stop: the rows not known stored are the next restart's */
    const int64_t now = vtime_mono_ms();
    if (rr->over || (rr->first_ms != 0 && now - rr->first_ms > rr->span_ms)) {
        restart_give_up(p, now); /* looked at every tick: a round held open ends too */
        return;
    }
    if (!rr->open) {
        size_t waiting = 0;
        for (size_t i = 0; i < rr->n; i++)
            waiting += !rr->v[i].inflight;
        if (now < rr->next_ms || waiting == 0)
            return; /* not due, or every end's put still in flight */
        if (rr->rounds == PIPE_RESTART_RETRIES) {
            restart_give_up(p, now);
            return;
        }
        rr->open = 1;
        rr->pos = 0;
        rr->rounds++;
        if (rr->first_ms == 0)
            rr->first_ms = now > 0 ? now : 1;
    }
    if (restart_puts(p, &st)) {
        rr->open = 0;
        rr->next_ms = now + PIPE_RESTART_RETRY_MS;
    }
    if (rr->gone > PIPE_RESTART_LOG_EACH && gone < rr->gone)
        log_info("pipeline: %zu more kept ends (\"restart\" or replayed) not put again this "
                 "tick: their devices were deleted; not logged one by one",
                 rr->gone - (gone > PIPE_RESTART_LOG_EACH ? gone : PIPE_RESTART_LOG_EACH));
    if (rr->dropped > PIPE_RESTART_LOG_EACH && dropped < rr->dropped)
        log_warn("pipeline: %zu more kept ends (\"restart\" or replayed) not put again this "
                 "tick: the store refused them; not logged one by one",
                 rr->dropped - (dropped > PIPE_RESTART_LOG_EACH ? dropped : PIPE_RESTART_LOG_EACH));
}

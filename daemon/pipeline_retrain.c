/* daemon/pipeline_retrain.c: an operator's retrain and acceptance (POST .../model/retrain,
 * POST .../anomalies/accept); moved from pipeline.c (session 66), where the group's check would
 * have taken it past 950 lines.
 *
 * A retrain trains the device's model, and in a group the group's, on every member's window
 * (held members too: the operator decided). So an episode open on the device, or on any other
 * member of its group, refuses it (the training would learn that fault as normal and end its
 * alarm "cleared"), and a forced one ends each such episode as the operator's first.
 *
 * Locks: one device's mu at a time; the walk over a group's members takes groups_mu alone
 * between them (pipeline__group_next). Threads: any. */
#include "err.h"
#include "log.h"
#include "pipeline_events_int.h"
#include "pipeline_groups_int.h"
#include "pipeline_int.h"
#include "sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Ends d's open episode as the operator's (ended_by "operator" with note, taken), asks for a
 * training at once and saves the detector: an acceptance (pipeline_accept), or a retrain forced
 * during an episode (pipeline_retrain). *out: the ended event's JSON. Returns 0, ERR_RANGE (no
 * episode open: nothing changes), ERR_NOMEM (accepted, only *out lost). Caller holds d->mu and
 * flushes the store after unlocking it. */
static int accept_locked(pipeline_t *p, struct dev *d, char *note, char **out)
{
    int rc = d->det ? detector_accept(d->det) : ERR_RANGE;
    if (rc) {
        free(note);
        return rc;
    }
    /* The episode ended at the last reading scored (it held every reading up to it; the next
     * one is judged as the accepted level's). */
    *out = pipeline__event_end(p, d, PIPE_END_OPERATOR, note, 1);
    pipeline__state_follows(p, d); /* the status: normal */
    /* Learn the level now, not at the next reading (which would ask too: merged). */
    (void)train_now(p, d);
    /* A restart (even after a crash) resumes after the acceptance, not inside the episode
     * whose event is stored as ended. */
    (void)pipeline__save(p, d);
    return *out ? 0 : ERR_NOMEM; /* accepted all the same: the answer alone is lost */
}

/* The note a forced retrain's acceptance keeps on the event it ends: the asked device's, and
 * (naming the asked device) another member's of its group. */
#define FORCED_NOTE        "retrain forced (POST .../model/retrain?force=true)"
#define FORCED_MEMBER_NOTE "retrain forced on group member '%s' (POST .../model/retrain?force=true)"

/* "anomaly event <id>" for an open episode's event e (NULL: not kept) into buf. */
static void event_what(char *buf, size_t size, const struct event *e)
{
    if (e)
        snprintf(buf, size, "anomaly event %llu", (unsigned long long)e->id);
    else
        snprintf(buf, size, "an anomaly episode (no event kept)");
}

/* Whether d's detector holds an episode open; *e its event (NULL: none kept). Caller holds
 * d->mu. */
static int episode_open(const struct dev *d, const struct event **e)
{
    *e = d->nevents ? &d->events[d->nevents - 1] : NULL;
    if (*e && (*e)->end_ts >= 0)
        *e = NULL;
    return d->det && detector_get_state(d->det) == DET_ANOMALY;
}

/* Whether d is past its warm-up (pipeline__trainable), under d->mu alone. */
static int still_trainable(pipeline_t *p, struct dev *d)
{
    pthread_mutex_lock(&d->mu);
    const int yes = pipeline__trainable(p, d);
    pthread_mutex_unlock(&d->mu);
    return yes;
}

/* The other members of d's group g, each under its own mu (d's not held): without force, the
 * first that holds an episode open refuses the retrain (res->open, ->device, ->event: nothing
 * changes); with force, each such episode is ended as the operator's (accept_locked, a note
 * naming device), its event appended to *ended (a JSON array's items; one lost to memory is
 * left out and res->ended_lost set). Returns how many ended, ERR_NOMEM (no note for a member's
 * episode: it stays open, and those ended before it stay ended), or ERR_RANGE: forced, d was
 * found still learning again (a relearn or a forget reset its detector after the first look;
 * session 67) before the next member's episode was ended, which the training d's retrain asks
 * would then not be (those ended before it stay ended: each one's acceptance asked its group's
 * training itself). A reset between that look and the member's acceptance is not seen here: its
 * episode ends, and the request after the walk answers ERR_RANGE with it listed. A member whose
 * episode opens once the walk has passed it is trained on as before session 66: the check is
 * the moment's. */
static int others_open(pipeline_t *p, struct group *g, struct dev *d, const char *device, int force,
                       struct api_retrain *res, sbuf_t *ended)
{
    struct group_walk w = {0};
    int n = 0;
    for (struct dev *e; (e = pipeline__group_next(p, g, &w)) != NULL;) {
        if (e == d)
            continue;
        if (force && !still_trainable(p, d)) { /* d's lock alone, then e's */
            log_info("pipeline: operator retrain of device '%s' refused: its detector was reset "
                     "during the retrain (no model yet); %d episode(s) of its group's members "
                     "ended before it",
                     device, n);
            return ERR_RANGE;
        }
        pthread_mutex_lock(&e->mu);
        const struct event *ev = NULL;
        const int open = !atomic_load_explicit(&e->deleted, memory_order_relaxed) &&
                         e->group == g && episode_open(e, &ev);
        char what[48];
        event_what(what, sizeof what, ev);
        char *json = NULL, *note = NULL;
        int rc = 0, did_end = 0;
        if (open && !force) {
            res->open = 1;
            res->device = strdup(e->name); /* NULL: the answer names no device */
            res->event = ev ? pipeline__event_json(e, ev) : NULL;
        } else if (open) {
            const size_t len = sizeof FORCED_MEMBER_NOTE + strlen(device);
            if ((note = malloc(len)) != NULL)
                snprintf(note, len, FORCED_MEMBER_NOTE, device);
            /* accept_locked's ERR_NOMEM: ended all the same, only its JSON lost */
            rc = note ? accept_locked(p, e, note, &json) : ERR_NOMEM;
            if (note && (rc == 0 || rc == ERR_NOMEM)) {
                n++;
                did_end = 1;
                rc = 0;
                log_info("pipeline: operator retrain of device '%s' forced: %s of group member "
                         "'%s' ended as the operator's",
                         device, what, e->name);
            }
        }
        pthread_mutex_unlock(&e->mu);
        if (json ? sbuf_printf(ended, "%s%s", ended->len ? "," : "[", json) != 0 : did_end)
            res->ended_lost = 1; /* ended, but the answer cannot list it */
        free(json);
        if (res->open) {
            log_info("pipeline: operator retrain of device '%s' refused: group member '%s' has %s "
                     "open (accept it, or retrain with force=true)",
                     device, e->name, what);
            return 0;
        }
        if (rc) {
            log_info("pipeline: operator retrain of device '%s' refused: %s of group member '%s' "
                     "not ended: %s",
                     device, what, e->name, err_str(rc));
            return rc;
        }
    }
    return n;
}

int pipeline_retrain(pipeline_t *p, const char *device, int force, struct api_retrain *res)
{
    memset(res, 0, sizeof *res);
    struct dev *d = pipeline__find(p, device);
    if (d == NULL) {
        log_info("pipeline: operator retrain of device '%s' refused: not known", device);
        return ERR_NOTFOUND;
    }
    const struct event *e;
    /* Its group's other members first (session 66): the training takes them all, so one's open
     * episode would be learnt as normal and end "cleared" as the device's own would. The asked
     * device is named first when both are open. */
    pthread_mutex_lock(&d->mu);
    struct group *g = d->group;
    const int self_open = episode_open(d, &e);
    /* A device still learning is answered "no model yet" (pipeline__mark_due's ERR_RANGE)
     * before any member is looked at: else a forced retrain would end the members' episodes
     * and then be refused, the answer naming none of them (review of grp66). */
    const int learning = !self_open && !pipeline__trainable(p, d);
    pthread_mutex_unlock(&d->mu);
    int others = 0;
    if (g && !learning && (force || !self_open)) {
        sbuf_t ended;
        sbuf_init(&ended);
        others = others_open(p, g, d, device, force, res, &ended);
        if (ended.len && sbuf_append(&ended, "]", 1) == 0)
            res->ended_others = sbuf_steal(&ended, NULL);
        else if (ended.len)
            res->ended_lost = 1;
        sbuf_deinit(&ended);
        const int any = others > 0 || res->ended_others || res->ended_lost;
        if (any && p->store) /* the ended events committed before the answer */
            (void)store_flush(p->store);
        /* An error keeps res->ended_others: the answer lists what was ended (session 67). */
        if (res->open || others < 0)
            return others < 0 ? others : 0;
    }
    pthread_mutex_lock(&d->mu);
    const uint32_t serving = d->serving_version;
    /* An open episode: the operator's retrain would learn the fault and end it "cleared" a
     * few readings later (session 65). Refused unless forced; forced, it is accepted first. */
    const int open = episode_open(d, &e);
    char what[48];
    event_what(what, sizeof what, e); /* e is not looked at once d->mu is let go */
    int rc, ended = 0;
    if (open && !force) {
        rc = 0;
        res->open = 1;
        res->device = strdup(device);
        res->event = e ? pipeline__event_json(d, e) : NULL;
    } else {
        d->retrain_all = 1;
        if (open) {
            char *note = strdup(FORCED_NOTE);
            rc = note ? accept_locked(p, d, note, &res->ended) : ERR_NOMEM;
            ended = rc == 0 || rc == ERR_NOMEM;
            if (ended)
                rc = 0; /* its training is asked (merged into one queued or running) */
        } else {
            rc = train_now(p, d);
            if (rc == ERR_BUSY && others)
                rc = 0; /* merged into the training the members' acceptances asked */
        }
        if (rc != 0 && rc != ERR_BUSY)
            d->retrain_all = 0;
    }
    pthread_mutex_unlock(&d->mu);
    if (ended && p->store)
        (void)store_flush(p->store);
    if (res->open)
        log_info("pipeline: operator retrain of device '%s' (serving version %u) refused: %s is "
                 "open (accept it, or retrain with force=true)",
                 device, (unsigned)serving, what);
    else if (rc == 0 && ended)
        log_info("pipeline: operator retrain of device '%s' (serving version %u) forced during "
                 "%s: the event ended as the operator's, training queued",
                 device, (unsigned)serving, what);
    else if (rc == 0)
        log_info("pipeline: operator retrain of device '%s' (serving version %u): training queued",
                 device, (unsigned)serving);
    else if (rc == ERR_BUSY) /* not refused: merged (train_now), answered 409 all the same */
        log_info("pipeline: operator retrain of device '%s' (serving version %u): a training is "
                 "already queued or running, the retrain joins it",
                 device, (unsigned)serving);
    else
        log_info("pipeline: operator retrain of device '%s' (serving version %u) refused: %s%s",
                 device, (unsigned)serving,
                 rc == ERR_RANGE ? "no model yet (still learning)" : err_str(rc),
                 others > 0 ? " (its detector was reset during the retrain, after episodes of "
                              "its group's members were ended)"
                            : "");
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
    int rc = accept_locked(p, d, copy, out);
    pthread_mutex_unlock(&d->mu);
    /* The store commits the ended event before the answer, so a listing right after it shows
     * the event ended (else the stored row, still active, would be listed a moment longer). */
    if (rc == 0 && p->store)
        (void)store_flush(p->store);
    return rc;
}

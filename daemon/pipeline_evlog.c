/* daemon/pipeline_evlog.c: the log lines of anomaly episodes (read66b's finding 8: an episode's
 * opening and end were in the event streams, the stored events and /metrics, never in the
 * log, where an operator reading the journal looks first).
 *
 * An opening: "anomaly: device 'X': event N opened (by R; sensors: a 71%, b 20%)", at info:
 * the channels by their share of the opening reading's score, the largest first, at most
 * EVLOG_SENSORS of them. An end: "anomaly: device 'X': event N ended: HOW after D (peak P)",
 * at info when cleared, an operator's, a maintenance period's or the detector's start over,
 * and at warn when the detector ended it by itself without the readings coming back
 * (accepted: their regime taken as the new normal; released: the step that set it off went
 * back), which an operator may want to look at. Each kind (openings, info ends, warn ends) is
 * said at most PIPE_EVLOG_BURST lines a minute (common/log.h log_limit_take), so a flapping
 * fleet cannot flood the journal: the next line said counts those left out; the event streams,
 * the stored events and vigil_anomaly_episodes_opened_total and _ended_total still have every
 * one. The warn ends have their own limit, so a fleet's cleared ends cannot push them out, and a
 * line below the log's level takes none of its kind's minute (read67a's finding 4: at
 * log.level = warn the unprinted cleared ends used it up).
 *
 * A minute's count of those left out is said by its own line once the minute is over and no
 * line came to say it (pipeline_log_flush, the loop's tick), and at the stop.
 *
 * Nothing is said before pipeline_restore is over (p->events_logged): the restore's catch-up
 * opens and ends again the episodes a vigild before the restart already said. But for the
 * episodes it opens under an id no stored row had (event.unsaid: readings acknowledged, not
 * scored at a kill -9; task ops68): no vigild said those, so their lines are said then, through
 * the same limits. And for the ends of stored rows still open at the kill (event.end_unsaid:
 * opened and said by the vigild killed, ended by its readings only in the catch-up; read69a's
 * finding 1).
 *
 * A line is written after d->mu is let go when the device's shard is scoring it (d->log_to, the
 * readings' path, where episodes open and end): a write that blocks (stderr a journal pipe not
 * read) then holds the shard only, not the device, whose status and /metrics (which takes every
 * device's lock) went on answering in task ops68's measure. The other callers (an operator's
 * accept, a maintenance period, a limit removed: rare, and each thread blocks on its own line
 * anyway) write at once, with d->mu held, in the log's turn of d's shard (evlog_lines.mu), so
 * after the lines the shard kept before it let d go: an end never before its opening (review of
 * ops68).
 *
 * Threads: the callers' (pipeline_events.c: the device's shard, an API thread, the loop), with
 * d->mu held; these only read d and e and log (or add to the shard's d->log_to). */
#include "batch.h"
#include "log.h"
#include "pipeline_events_int.h"
#include "pipeline_int.h"
#include "vtime.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The channels an opening's line names at most. */
#define EVLOG_SENSORS 3

int pipeline__evlog_due(pipeline_t *p, struct log_limit *l, enum log_level level, int unsaid,
                        char *note, size_t size)
{
    if (!unsaid && !atomic_load_explicit(&p->events_logged, memory_order_acquire))
        return 0;
    if ((int)level < (int)log_get_level())
        return 0; /* not printed: none of l's minute taken, nothing counted as left out */
    uint64_t held;
    const unsigned place =
        log_limit_take(l, (int64_t)vtime_mono_s(), PIPE_WARN_EVERY_S, PIPE_EVLOG_BURST, &held);
    if (place == 0)
        return 0;
    log_limit_note(note, size, place, held, PIPE_EVLOG_BURST, PIPE_WARN_EVERY_S);
    return 1;
}

void pipeline__evlog_say(pipeline_t *p, const struct dev *d, enum log_level level, const char *fmt,
                         ...)
{
    char line[LOG_LINE_MAX + 1];
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    const int len = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    struct evlog_lines *l = d->log_to;
    /* Kept whole (log_msg cuts a line over LOG_LINE_MAX and names its full length): in the
     * shard's list, or written from here when longer than line. */
    char *text = NULL;
    if (len >= 0 && (l != NULL || (size_t)len >= sizeof line) &&
        (text = malloc((size_t)len + 1)) != NULL)
        vsnprintf(text, (size_t)len + 1, fmt, aq);
    va_end(aq);
    if (l != NULL && text != NULL && l->n == l->room) {
        const size_t room = l->room ? 2 * l->room : 8;
        struct evlog_line *v = realloc(l->v, room * sizeof *v);
        if (v != NULL) {
            l->v = v;
            l->room = room;
        }
    }
    if (l != NULL && text != NULL && l->n < l->room) {
        l->v[l->n++] = (struct evlog_line){level, text};
        return;
    }
    if (l != NULL) { /* out of memory: the shard's lines first, then this one, the lock held */
        for (size_t i = 0; i < l->n; i++) {
            log_msg(l->v[i].level, "%s", l->v[i].text);
            free(l->v[i].text);
        }
        l->n = 0;
        log_msg(level, "%s", text != NULL ? text : line);
    } else if (d->shard >= 0 && d->shard < p->nshards) { /* after what d's shard still keeps */
        struct evlog_lines *turn = &p->shards[d->shard].lines;
        pthread_mutex_lock(&turn->mu);
        log_msg(level, "%s", text != NULL ? text : line);
        pthread_mutex_unlock(&turn->mu);
    } else { /* no shards (a pipeline the unit tests make without pipeline_create) */
        log_msg(level, "%s", text != NULL ? text : line);
    }
    free(text);
}

int pipeline__evlog_hold(struct evlog_lines *l)
{
    if (l->n == 0)
        return 0;
    pthread_mutex_lock(&l->mu);
    return 1;
}

void pipeline__evlog_write(struct evlog_lines *l)
{
    for (size_t i = 0; i < l->n; i++) {
        log_msg(l->v[i].level, "%s", l->v[i].text);
        free(l->v[i].text);
    }
    l->n = 0;
    pthread_mutex_unlock(&l->mu);
}

void pipeline__evlog_lines_init(struct evlog_lines *l)
{
    *l = (struct evlog_lines){.v = NULL};
    pthread_mutex_init(&l->mu, NULL);
}

void pipeline__evlog_lines_deinit(struct evlog_lines *l)
{
    if (pipeline__evlog_hold(l))
        pipeline__evlog_write(l);
    free(l->v);
    l->v = NULL;
    l->room = 0;
    pthread_mutex_destroy(&l->mu);
}

void pipeline__event_log_open(pipeline_t *p, const struct dev *d, const struct event *e)
{
    char note[160];
    if (!pipeline__evlog_due(p, &p->event_open_log, LOG_LEVEL_INFO, e->unsaid, note, sizeof note))
        return;
    float total = 0;
    for (int c = 0; c < d->nch; c++)
        total += e->share[c] > 0 ? e->share[c] : 0;
    char sensors[256] = "";
    size_t at = 0;
    uint64_t named = 0;
    for (int k = 0; k < EVLOG_SENSORS && total > 0; k++) {
        int best = -1;
        for (int c = 0; c < d->nch; c++)
            if (!(named >> c & 1) && e->share[c] > 0 && (best < 0 || e->share[c] > e->share[best]))
                best = c;
        if (best < 0)
            break;
        named |= (uint64_t)1 << best;
        const char *name = d->ch[best] ? d->ch[best] : "?", *sep = k ? ", " : "";
        char pct[16];
        const int np = snprintf(pct, sizeof pct, " %.0f%%", 100.0 * e->share[best] / total);
        /* A name that does not fit whole is cut between two characters and ends in "…"
         * (read67a's finding 6: snprintf's cut could end in half a UTF-8 character); one
         * with no room for a character of it is left out. */
        const size_t room = sizeof sensors - 1 - at, fixed = strlen(sep) + (size_t)np;
        size_t keep = strlen(name);
        const char *cut = "";
        if (fixed + keep > room) {
            cut = "\u2026";
            keep =
                fixed + strlen(cut) < room ? batch_name_cut(name, room - fixed - strlen(cut)) : 0;
            if (keep == 0)
                break;
        }
        at += (size_t)snprintf(sensors + at, sizeof sensors - at, "%s%.*s%s%s", sep, (int)keep,
                               name, cut, pct);
        if (cut[0])
            break;
    }
    const char *by = e->opened_by > 0 && e->opened_by < PIPE_OPEN_N
                         ? pipeline__open_names[e->opened_by]
                         : "unknown";
    pipeline__evlog_say(p, d, LOG_LEVEL_INFO,
                        "anomaly: device '%s': event %llu opened (by %s; sensors: %s)%s", d->name,
                        (unsigned long long)e->id, by, sensors[0] ? sensors : "none named", note);
}

void pipeline__event_log_end(pipeline_t *p, const struct dev *d, const struct event *e)
{
    const int warn = e->ended_by == DET_END_ACCEPTED || e->ended_by == DET_END_RELEASED;
    char note[160];
    if (!pipeline__evlog_due(p, warn ? &p->event_warn_log : &p->event_end_log,
                             warn ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, e->unsaid || e->end_unsaid,
                             note, sizeof note))
        return;
    const char *how;
    switch (e->ended_by) {
    case DET_END_CLEARED:
        how = "cleared (the readings came back to what the model expects)";
        break;
    case DET_END_ACCEPTED:
        how = "accepted automatically (it lasted long enough that its readings are taken as the "
              "new normal)";
        break;
    case DET_END_RELEASED:
        how = "released automatically (the step that set it off went back, or settled)";
        break;
    case PIPE_END_OPERATOR:
        how = "accepted by an operator";
        break;
    case PIPE_END_MAINT:
        how = "a maintenance period";
        break;
    case PIPE_END_RESET:
        how = "reset (the device's detector started over)";
        break;
    default:
        how = e->ended_by > 0 && e->ended_by < PIPE_END_N ? pipeline__end_names[e->ended_by]
                                                          : "unknown";
    }
    char took[64];
    vtime_format_duration(e->end_ts - e->start_ts, took, sizeof took);
    pipeline__evlog_say(
        p, d, warn ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
        "anomaly: device '%s': event %llu ended: %s after %s of readings (peak %.2f)%s", d->name,
        (unsigned long long)e->id, how, took, e->peak, note);
}

/* The limited lines whose held counts pipeline_log_flush says, with their words and level. */
static const struct {
    size_t at; /* offsetof the struct log_limit in struct pipeline */
    enum log_level level;
    const char *what, *where;
} flushed[] = {
    {offsetof(struct pipeline, train_fail_log), LOG_LEVEL_WARN, "failed trainings",
     "vigil_model_training_failures_total counts each"},
    {offsetof(struct pipeline, save_fail_log), LOG_LEVEL_WARN, "detectors not saved",
     "each starts from its last saved state"},
    {offsetof(struct pipeline, event_open_log), LOG_LEVEL_INFO, "anomaly episodes opened",
     "GET /v1/events and the stored events have each"},
    {offsetof(struct pipeline, event_end_log), LOG_LEVEL_INFO, "anomaly episodes ended",
     "GET /v1/events and the stored events have each"},
    {offsetof(struct pipeline, event_warn_log), LOG_LEVEL_WARN,
     "anomaly episodes accepted or released automatically",
     "GET /v1/events and the stored events have each"},
    {offsetof(struct pipeline, limit_log), LOG_LEVEL_INFO, "limit alarms' changes",
     "GET /v1/events?types=limit has each"},
    {offsetof(struct pipeline, limit_warn_log), LOG_LEVEL_WARN, "limits exceeded",
     "GET /v1/events?types=limit has each"},
};

void pipeline_log_flush(pipeline_t *p, int stop)
{
    const int64_t now = (int64_t)vtime_mono_s();
    for (size_t i = 0; i < sizeof flushed / sizeof flushed[0]; i++) {
        struct log_limit *l = (struct log_limit *)((char *)p + flushed[i].at);
        const uint64_t held = log_limit_flush(l, now, stop ? 0 : PIPE_WARN_EVERY_S);
        if (held > 0)
            log_msg(flushed[i].level,
                    "pipeline: %s: %llu more since the last one logged, not logged one "
                    "by one (%s)",
                    flushed[i].what, (unsigned long long)held, flushed[i].where);
    }
}

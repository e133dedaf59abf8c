/* daemon/pipeline_put_off.c: the log lines of trainings put off because their device holds an
 * episode (pipeline_train.c's member_begin leaves it out: its header says why). The first line
 * names the device at once; then at most one a minute, counting the devices left out since
 * instead of naming each (named at debug level); the count left at the stop is told by
 * pipeline__put_off_final. Apart from pipeline_train.c because it is about the log alone: it
 * decides nothing about a training and touches only the pipeline's two put-off atomics.
 *
 * Threads: any training pool thread, and the stop (pipeline__put_off_final, after the training
 * threads have ended). No lock: put_off_log_ms and put_off_quiet are atomics (pipeline_int.h);
 * one compare-and-swap gives the minute's turn to a single thread. */
#include "log.h"
#include "pipeline_groups_int.h"
#include "pipeline_int.h"
#include "vtime.h"

#include <stdio.h>

/* A device that holds an episode, left out by a training thread, is logged: the first such line
 * at once, then at most one a minute, which counts the devices left out since instead of naming
 * them. A plant-wide fault (a power dip) holds thousands of devices while their scheduled
 * trainings wait in the due-set: one line a device, 2,342 lines within seconds at 4,000
 * devices before session 42, with nothing in them the anomalies' list does not say. */
#define PUT_OFF_LOG_MS 60000

/* Takes the minute's turn to log (1), or counts one more device left out quietly (0). */
static int put_off_turn(pipeline_t *p, uint64_t *more)
{
    int64_t now = vtime_mono_ms();
    int_fast64_t last = atomic_load_explicit(&p->put_off_log_ms, memory_order_relaxed);
    if ((last != 0 && now - last < PUT_OFF_LOG_MS) ||
        !atomic_compare_exchange_strong(&p->put_off_log_ms, &last, now))
        return 0;
    *more = atomic_exchange(&p->put_off_quiet, 0);
    return 1;
}

void pipeline__put_off_log(pipeline_t *p, const struct dev *d, const struct group *g)
{
    uint64_t more = 0;
    if (!put_off_turn(p, &more)) {
        /* Named at debug level, so an operator who needs every device still finds it. */
        log_debug("pipeline: device '%s' holds an anomaly: %s%s%s training put off (counted in "
                  "the next such info line)",
                  d->name, g ? "its group '" : "its scheduled", g ? g->name : "", g ? "''s" : "");
        atomic_fetch_add_explicit(&p->put_off_quiet, 1, memory_order_relaxed);
        return;
    }
    char tail[96] = "";
    if (more > 0)
        snprintf(tail, sizeof tail, " (and %llu other devices since the last such line)",
                 (unsigned long long)more);
    if (g)
        log_info("pipeline: device '%s' holds an anomaly: left out of its group '%s''s training "
                 "until the episode ends or is accepted%s",
                 d->name, g->name, tail);
    else
        log_info("pipeline: device '%s' holds an anomaly: its scheduled training is put off until "
                 "the episode ends or is accepted%s",
                 d->name, tail);
}

/* The devices counted quietly, once their minute is over (each training calls it), so the end
 * of a burst is told too; at the stop (final: the training threads have ended) whatever the
 * minute, so no count is left untold. */
void pipeline__put_off_flush(pipeline_t *p, int final)
{
    uint64_t more = 0;
    if (final)
        more = atomic_exchange(&p->put_off_quiet, 0);
    else if (atomic_load_explicit(&p->put_off_quiet, memory_order_relaxed) == 0 ||
             !put_off_turn(p, &more))
        return;
    if (more == 0)
        return;
    log_info("pipeline: %llu other devices holding an anomaly were left out of their scheduled "
             "or group's training since the last such line, until their episodes end or are "
             "accepted",
             (unsigned long long)more);
}

void pipeline__put_off_final(pipeline_t *p)
{
    pipeline__put_off_flush(p, 1);
}

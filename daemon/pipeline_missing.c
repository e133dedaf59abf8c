/* daemon/pipeline_missing.c: channels a device stopped reporting (read69b's finding 3: a dead
 * sensor was imputed forever, the device "normal", with nothing said anywhere, and the status's
 * "latest" showed its last value as if it were current).
 *
 * Each scored reading that lacks channel c (absent, or not a finite number) counts one more in
 * d->miss_run[c]; one that has it sets the count to 0 and d->seen_ts[c] to its timestamp. After
 * PIPE_MISSING_AFTER readings in a row without it the channel is "missing" (bit c of
 * d->missing): a warn line says so once, an info line once it is reported again, and /metrics'
 * vigil_device_channels_missing counts a device's missing channels. The status lists every
 * channel the newest reading lacked (pipeline__missing_json), with its newest reading's time,
 * and its "latest" is null for the missing ones (a channel sent less often keeps its value
 * there between its readings). An input channel (d->inputs: a set point, often sent only when
 * it changes) is never missing: its last value carried forward is its reading, so it is listed
 * with its count and missing false, and neither line, page nor a null "latest" comes of it
 * (read69e 4). The counts are in memory only: after a restart they
 * start at 0 and the times are not known (null) until the channel is reported again.
 *
 * The lines go through the episodes' log (pipeline__evlog_due, _say: written after d->mu is
 * let go, at most PIPE_EVLOG_BURST of them a minute, said only once pipeline_restore is over,
 * so its catch-up does not say again what a vigild before the restart said).
 *
 * Threads: the device's shard (pipeline__missing_note) and the status's caller
 * (pipeline__missing_json), both with d->mu held. */
#include "pipeline_events_int.h"
#include "pipeline_int.h"
#include "vtime.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>

void pipeline__missing_init(struct dev *d)
{
    for (int c = 0; c < DETECTOR_MAX_CHANNELS; c++) {
        d->miss_run[c] = 0;
        d->seen_ts[c] = -1;
    }
    d->missing = 0;
    d->miss_base = -1;
}

void pipeline__missing_note(pipeline_t *p, struct dev *d, int64_t ts)
{
    char note[160], t[32];
    if (d->miss_base < 0)
        d->miss_base = ts;
    for (int c = 0; c < d->nch; c++) {
        const uint64_t bit = UINT64_C(1) << c;
        const char *name = d->ch[c] ? d->ch[c] : "?";
        if (d->last_present & bit) {
            if ((d->missing & bit) &&
                pipeline__evlog_due(p, &p->missing_log, LOG_LEVEL_INFO, 0, note, sizeof note))
                pipeline__evlog_say(p, d, LOG_LEVEL_INFO,
                                    "pipeline: device '%s': channel '%s' reported again after %lu "
                                    "readings without it%s",
                                    d->name, name, (unsigned long)d->miss_run[c], note);
            d->missing &= ~bit;
            d->miss_run[c] = 0;
            d->seen_ts[c] = ts;
            continue;
        }
        if (d->miss_run[c] < UINT32_MAX)
            d->miss_run[c]++;
        if (d->inputs & bit) { /* an input: held, never missing (read69e 4) */
            d->missing &= ~bit;
            continue;
        }
        const int64_t since = d->seen_ts[c] >= 0 ? d->seen_ts[c] : d->miss_base;
        if ((d->missing & bit) || d->miss_run[c] < PIPE_MISSING_AFTER ||
            ts - since < PIPE_MISSING_MS)
            continue;
        d->missing |= bit;
        if (pipeline__evlog_due(p, &p->missing_warn_log, LOG_LEVEL_WARN, 0, note, sizeof note))
            pipeline__evlog_say(p, d, LOG_LEVEL_WARN,
                                "pipeline: device '%s': channel '%s' missing from its last %lu "
                                "readings, 5 minutes or more (last reported %s); it is imputed "
                                "(its last value carried forward) until it is reported again%s",
                                d->name, name, (unsigned long)d->miss_run[c],
                                d->seen_ts[c] >= 0 ? vtime_format(d->seen_ts[c], t, sizeof t)
                                                   : "not since vigild started",
                                note);
    }
}

struct json_t *pipeline__missing_json(const struct dev *d)
{
    json_t *a = json_array();
    for (int c = 0; a && c < d->nch; c++) {
        if (d->miss_run[c] == 0)
            continue;
        char t[32];
        const int64_t s = d->seen_ts[c];
        json_t *o = json_pack("{s:s,s:I,s:b,s:o,s:o}", "channel", d->ch[c] ? d->ch[c] : "?",
                              "readings_missing", (json_int_t)d->miss_run[c], "missing",
                              (d->missing >> c) & 1, "last_seen_ts",
                              s >= 0 ? json_integer(s) : json_null(), "last_seen",
                              s >= 0 ? json_string(vtime_format(s, t, sizeof t)) : json_null());
        if (o == NULL || json_array_append_new(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

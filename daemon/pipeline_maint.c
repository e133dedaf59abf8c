/* daemon/pipeline_maint.c: planned maintenance. An operator puts a device in maintenance for a
 * while (POST /v1/devices/{id}/maintenance): its readings are stored as always, but those whose
 * timestamps fall in a maintenance period are not given to the detector (no score, prediction,
 * event or training request: point_prepare skips them) and are left out of its trainings'
 * windows (pipeline__window_read), since a serviced pump's readings are abnormal by design and
 * are not its normal behaviour. The detector goes on after the period from its state before, as
 * after a gap in the feed. An anomaly open when the maintenance starts ends "maintenance".
 *
 * Invariants: a device's periods (dev.maint) are ordered by start and never overlap; at most
 * STORE_MAINT_KEEP are kept, in memory and in the store (which trims the same way); only the
 * last may be current (its end after the clock). Periods are in wall-clock ms and readings are
 * matched by their own timestamps, so the catch-up after a restart and a training skip exactly
 * the readings the live feed skipped (for a device whose clock agrees with vigild's).
 *
 * Threads: the API's functions are any thread (under the device's mu); restore runs on the main
 * thread before readings flow. */
#include "err.h"
#include "log.h"
#include "pipeline_int.h"
#include "vtime.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int pipeline__maint_has(const struct dev *d, int64_t ts)
{
    for (int k = d->nmaint; k-- > 0;) {
        if (ts >= d->maint[k].end_ms)
            return 0; /* after this one, and so after every older one */
        if (ts >= d->maint[k].start_ms)
            return 1;
    }
    return 0;
}

void pipeline__maint_clear(struct dev *d)
{
    free(d->maint);
    free(d->maint_note);
    d->maint = NULL;
    d->maint_note = NULL;
    d->nmaint = 0;
}

/* The current period of d at now_ms, or NULL. Caller holds d->mu. */
static struct maint_span *current(struct dev *d, int64_t now_ms)
{
    struct maint_span *m = d->nmaint ? &d->maint[d->nmaint - 1] : NULL;
    return m && now_ms >= m->start_ms && now_ms < m->end_ms ? m : NULL;
}

int pipeline__maint_on(struct dev *d, int64_t now_ms)
{
    return current(d, now_ms) != NULL;
}

/* Appends [start_ms, end_ms) to d's periods, dropping the oldest beyond STORE_MAINT_KEEP, with
 * note (taken: freed on failure). Returns 0 or ERR_NOMEM. Caller holds d->mu. */
static int span_add(struct dev *d, int64_t start_ms, int64_t end_ms, char *note)
{
    if (d->maint == NULL && (d->maint = malloc(STORE_MAINT_KEEP * sizeof *d->maint)) == NULL) {
        free(note);
        return ERR_NOMEM;
    }
    if (d->nmaint == STORE_MAINT_KEEP) {
        memmove(d->maint, d->maint + 1, (STORE_MAINT_KEEP - 1) * sizeof *d->maint);
        d->nmaint--;
    }
    d->maint[d->nmaint++] = (struct maint_span){start_ms, end_ms};
    free(d->maint_note);
    d->maint_note = note;
    return 0;
}

/* The status's "maintenance": {"until", "note"} for the current period, or null. Caller holds
 * d->mu. */
static json_t *maint_json(struct dev *d, int64_t now_ms)
{
    const struct maint_span *m = current(d, now_ms);
    if (m == NULL)
        return json_null();
    char t[32];
    return json_pack("{s:s,s:I,s:o}", "until", vtime_format(m->end_ms, t, sizeof t), "until_ts",
                     (json_int_t)m->end_ms, "note",
                     d->maint_note ? json_string(d->maint_note) : json_null());
}

json_t *pipeline__maint_status(struct dev *d)
{
    return maint_json(d, vtime_now_ms());
}

/* Stores d's newest period and waits for the commit (an answered POST or DELETE survives a
 * crash). Called without d->mu: the copy was taken under it. */
static void persist(pipeline_t *p, const char *device, struct maint_span m, const char *note)
{
    if (p->store == NULL)
        return;
    int rc = store_maint_put(p->store, device, m.start_ms, m.end_ms, note);
    if (rc == 0)
        rc = store_flush(p->store);
    if (rc)
        log_warn("pipeline: maintenance of '%s' not stored: %s (a restart forgets it)", device,
                 err_str(rc));
}

int pipeline_maint_start(pipeline_t *p, const char *device, int64_t minutes, const char *note,
                         char **out)
{
    *out = NULL;
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    char *copy = note ? strdup(note) : NULL, *stored = note ? strdup(note) : NULL;
    if (note && (copy == NULL || stored == NULL)) {
        free(copy);
        free(stored);
        return ERR_NOMEM;
    }
    const int64_t now_ms = vtime_now_ms(), until_ms = now_ms + minutes * 60000;
    pthread_mutex_lock(&d->mu);
    struct maint_span *m = current(d, now_ms);
    int rc = 0, began = m == NULL;
    if (m) { /* a second POST replaces the end (and the note) */
        m->end_ms = until_ms;
        free(d->maint_note);
        d->maint_note = copy;
    } else {
        rc = span_add(d, now_ms, until_ms, copy);
    }
    struct maint_span saved = rc == 0 ? d->maint[d->nmaint - 1] : (struct maint_span){0, 0};
    if (rc == 0 && began) {
        /* The anomaly open now is the maintenance's, not the device's: ended, not paged on.
         * The detector's episode ends with it (the status and vigil_device_state say normal
         * through the period, so no alert keeps firing) without learning the level: a fault
         * still there when scoring resumes opens a new episode and event. */
        free(pipeline__event_end(p, d, PIPE_END_MAINT, NULL, 0));
        if (d->det && detector_end_episode(d->det) == 0)
            pipeline__state_follows(d);
        (void)pipeline__save(p, d);
    }
    json_t *v = NULL;
    if (rc == 0)
        v = json_pack("{s:s,s:o}", "device", d->name, "maintenance", maint_json(d, now_ms));
    pthread_mutex_unlock(&d->mu);
    if (rc == 0) {
        persist(p, d->name, saved, stored);
        *out = v ? json_dumps(v, JSON_COMPACT) : NULL;
        if (*out == NULL)
            rc = ERR_NOMEM; /* in maintenance all the same: the answer alone is lost */
    }
    json_decref(v);
    free(stored);
    return rc;
}

int pipeline_maint_end(pipeline_t *p, const char *device)
{
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    const int64_t now_ms = vtime_now_ms();
    pthread_mutex_lock(&d->mu);
    struct maint_span *m = current(d, now_ms);
    struct maint_span saved = {0, 0};
    char *note = NULL;
    if (m) {
        m->end_ms = now_ms > m->start_ms ? now_ms : m->start_ms + 1;
        saved = *m;
        note = d->maint_note ? strdup(d->maint_note) : NULL;
    }
    pthread_mutex_unlock(&d->mu);
    if (m == NULL)
        return ERR_RANGE;
    persist(p, d->name, saved, note);
    free(note);
    return 0;
}

int pipeline_maint_json(pipeline_t *p, const char *device, char **out)
{
    *out = NULL;
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    pthread_mutex_lock(&d->mu);
    json_t *v = d->nmaint ? pipeline__maint_status(d) : NULL;
    pthread_mutex_unlock(&d->mu);
    if (v == NULL)
        return ERR_RANGE; /* never in maintenance (or out of memory): null */
    *out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    return *out ? 0 : ERR_NOMEM;
}

/* store_maint_cb: a stored period goes back to its device (oldest first, so the last one's note
 * is the one kept). */
static int on_period(void *arg, const char *device, int64_t start_ms, int64_t end_ms,
                     const char *note)
{
    pipeline_t *p = arg;
    struct dev *d = pipeline__dev(p, device);
    char *copy = note ? strdup(note) : NULL;
    if (d == NULL || (note && copy == NULL)) {
        free(copy);
        log_warn("pipeline: maintenance of '%s' not restored: out of memory", device);
        return 0;
    }
    pthread_mutex_lock(&d->mu);
    (void)span_add(d, start_ms, end_ms, copy);
    pthread_mutex_unlock(&d->mu);
    return 0;
}

int pipeline__maint_restore(pipeline_t *p)
{
    int rc = store_maint_load(p->store, on_period, p);
    if (rc)
        log_warn("pipeline: maintenance periods not restored: %s", store_errmsg(p->store));
    return rc;
}

/* daemon/pipeline_window.c: a training's window read from the store (pipeline__window_read,
 * declared in pipeline_int.h): the device's newest readings before the training's point, less
 * its maintenance periods and a clock step's overlap, as rows in the detector's channel order
 * with missing values carried forward. Kept apart from pipeline_store.c, which saves and
 * restores the detectors, because it is the trainings' read, not persistence.
 *
 * Threads: the training pool (any thread but the store writer's); it touches no device state. */
#include "err.h"
#include "pipeline_int.h"
#include "vtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct window {
    int nch;
    char *const *names;
    const struct maint_span *skip; /* [nskip]: periods whose readings are left out */
    int nskip;
    float *rows; /* [cap, nch], newest first while reading; NaN: missing */
    size_t n, cap;
};

static int on_window_point(void *arg, int64_t ts, size_t n, const char *const *ch, const double *v)
{
    struct window *w = arg;
    if (w->n == w->cap)
        return 1;
    for (int k = 0; k < w->nskip; k++)
        if (ts >= w->skip[k].start_ms && ts < w->skip[k].end_ms)
            return 0;
    float *row = w->rows + w->n * (size_t)w->nch;
    for (int c = 0; c < w->nch; c++)
        row[c] = NAN;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < w->nch; c++)
            if (strcmp(ch[i], w->names[c]) == 0) {
                row[c] = pipeline__reading_float(v[i]);
                break;
            }
    w->n++;
    return 0;
}

int pipeline__window_read(pipeline_t *p, const char *device, char *const *names, int nch,
                          const struct maint_span *skip, int nskip, int stepped, int64_t to_ts,
                          float **rows, int *n)
{
    *rows = NULL;
    *n = 0;
    if (p->store == NULL)
        return ERR_RANGE;
    struct window w = {
        .nch = nch, .names = names, .skip = skip, .nskip = nskip, .cap = (size_t)p->o.det.history};
    w.rows = malloc(w.cap * (size_t)nch * sizeof(float));
    if (w.rows == NULL)
        return ERR_NOMEM;
    store_query_t q = {.device = device,
                       .from_ms = VTIME_MIN_MS,
                       .to_ms = to_ts + 1,
                       .channels = (const char *const *)names,
                       .nchannels = (size_t)nch,
                       /* Skipped readings do not fill the window: then the callback stops. */
                       .limit = nskip > 0 ? 0 : w.cap,
                       .desc = 1,
                       /* A damaged chunk is left out of the window (the store logs it, naming
                        * the device and its time range, and counts it in /metrics). */
                       .skip_damaged = 1};
    int rc = store_query(p->store, &q, on_window_point, &w);
    if (rc == 0 && w.n == 0 && stepped && nskip > 0) { /* the step went back past everything */
        w.nskip = nskip - 1;
        q.limit = w.nskip > 0 ? 0 : w.cap;
        rc = store_query(p->store, &q, on_window_point, &w);
    }
    if (rc) {
        free(w.rows);
        return rc;
    }
    /* Oldest first, then each missing value carried forward from the row before it; values
     * missing before a channel's first one take that first value. */
    const size_t C = (size_t)nch;
    for (size_t i = 0, j = w.n ? w.n - 1 : 0; i < j; i++, j--)
        for (size_t c = 0; c < C; c++) {
            float t = w.rows[i * C + c];
            w.rows[i * C + c] = w.rows[j * C + c];
            w.rows[j * C + c] = t;
        }
    for (size_t c = 0; c < C; c++) {
        float first = 0.0f;
        for (size_t t = 0; t < w.n; t++)
            if (isfinite(w.rows[t * C + c])) {
                first = w.rows[t * C + c];
                break;
            }
        float prev = first;
        for (size_t t = 0; t < w.n; t++) {
            float *v = &w.rows[t * C + c];
            if (isfinite(*v))
                prev = *v;
            else
                *v = prev;
        }
    }
    *rows = w.rows;
    *n = (int)w.n;
    return 0;
}

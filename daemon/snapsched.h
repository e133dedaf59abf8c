/* daemon/snapsched.h: snapshots on a schedule (storage.snapshot_every).
 *
 * A thread of its own takes a snapshot every interval through snapshots_take, the code of
 * POST /v1/admin/snapshot (same names, pruning, metrics and one-at-a-time guard). The first is
 * due one interval after the start, never at it. Any thread unless said otherwise. */
#ifndef VIGIL_SNAPSCHED_H
#define VIGIL_SNAPSCHED_H

#include "pipeline.h"
#include "sbuf.h"
#include "snapshot.h"

#include <stdint.h>

typedef struct snapsched snapsched_t;

/* Starts the schedule's thread, taking a snapshot of snaps every every_ms (0: none until
 * snapsched_set_every turns it on). snaps and pipe (may be NULL) are borrowed and must outlive
 * it. Returns 0, or ERR_NOMEM (the thread or its condition variable could not be created) or
 * ERR_INVAL (mcond_init's refusal). Caller owns *out; end it with snapsched_stop. */
int snapsched_start(snapsched_t **out, snapshots_t *snaps, pipeline_t *pipe, int64_t every_ms);

/* Changes the interval (a reload); a change starts it over from now (0: off). */
void snapsched_set_every(snapsched_t *s, int64_t every_ms);

/* Ends the thread and frees it; NULL is a no-op. Waits for a scheduled snapshot in progress:
 * call snapshots_close first so that its copy is cancelled instead of finished. */
void snapsched_stop(snapsched_t *s);

/* Appends vigil_snapshot_interval_seconds (0 when off) for /metrics. */
void snapsched_metrics(snapsched_t *s, sbuf_t *out);

#endif

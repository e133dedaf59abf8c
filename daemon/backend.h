/* daemon/backend.h: the wiring between the API and storage (and later the models). */
#ifndef VIGIL_BACKEND_H
#define VIGIL_BACKEND_H

#include "api.h"
#include "health.h"
#include "pipeline.h"
#include "quota.h"
#include "snapshot.h"
#include "snapsched.h"
#include "storage.h"
#include "stream.h"

#include <stdatomic.h>
#include <stdint.h>

typedef struct backend {
    store_t *store;
    stream_server_t *stream; /* may be NULL */
    pipeline_t *pipe;        /* may be NULL: the model routes then answer 501 */
    quota_t *quota;          /* may be NULL: no device and channel limits */
    snapshots_t *snaps;      /* may be NULL: the snapshot routes answer 501 */
    snapsched_t *sched;      /* may be NULL: no interval gauge */
    health_t *health;        /* may be NULL: nothing checked (healthy), no vigil_healthy */
    /* storage.retention (0: none): a point older than now - retention_ms is refused at write,
     * naming its item, instead of being stored for the next sweep to delete. Live: main stores
     * it on reload (and gives it to storage's sweeps), writes read it once each. */
    _Atomic int64_t retention_ms;
    _Atomic uint64_t retention_refused; /* points refused for it, for /metrics */
    /* storage.max_ahead (0: none): a point stamped later than now + max_ahead_ms (vigild's wall
     * clock) is refused at write, naming its item: stored, it would be the device's newest
     * reading in listings and SELECT last() until its time came. Live: main stores it on
     * reload, writes read it once each. */
    _Atomic int64_t max_ahead_ms;
    _Atomic uint64_t ahead_refused; /* points refused for it, for /metrics */
    /* The journal's warnings of the refusals by retention and by max_ahead, each at most once a
     * minute (a backlog older than the retention, a clock that is wrong: the one sign in the
     * log): when it was said (monotonic s, 0: never) and the refusals counted then. */
    _Atomic int64_t old_warned_s, ahead_warned_s;
    _Atomic uint64_t old_warned_total, ahead_warned_total;
    /* http.metrics_max_devices (live: main stores it on reload) and whether /metrics has logged
     * that it left devices out since (main clears it on reload). */
    _Atomic size_t metrics_max_devices;
    _Atomic int metrics_capped_logged;
} backend_t;

/* Fills an api_backend_t whose functions call into b (which must outlive the API server). */
void backend_init(api_backend_t *out, backend_t *b);

#endif

/* daemon/vigild_int.h: what daemon/main.c (the command line, start-up, reload) and
 * daemon/stop.c (the stop: signals, the pipeline's last saves, teardown) share: the daemon's
 * state and the few functions main.c calls in stop.c. Not a public interface: part of the vigild
 * program only, not of daemon_core. Loop thread (the main thread) only. */
#ifndef VIGIL_VIGILD_INT_H
#define VIGIL_VIGILD_INT_H

#include "api.h"
#include "backend.h"
#include "config.h"
#include "demo.h"
#include "health.h"
#include "notify.h"
#include "storage.h"
#include "stream.h"

#include <stdint.h>
#include <uv.h>

/* A command-line flag that overrides a setting of the file (kept to apply again on reload). */
struct override {
    const char *value; /* borrowed from argv; NULL when the flag was not given */
    const char *section, *key, *flag;
    int opt; /* getopt_long's value for the flag */
};

enum { OV_DATA_DIR, OV_HTTP, OV_STREAM, OV_LOG_LEVEL, OV_AUTH_FILE, OV_COUNT };

struct daemon {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint, sighup;
    int signals_on; /* the three above are started */
    config_t cfg;
    /* cfg.data_dir made absolute at the start (path_absolute), the folder the store opens and
     * the log names (task ops67: "data in ./x" named a folder relative to a working directory
     * the log does not say); cfg.data_dir itself when too long for it. */
    char data_path[4096 + sizeof(((config_t *)0)->data_dir)];
    store_t *store;
    /* The store's close left the WAL beside vigil.db (vigild__teardown: store_close_wal): the
     * closing line says so (session 68's review: "stopped cleanly" followed its warning). */
    int wal_kept;
    api_server_t *api;
    api_events_t *events; /* GET /v1/events' hub: the pipeline publishes, the API streams */
    stream_server_t *stream;
    backend_t backend;
    demo_t demo;
    int stopping;
    int restored;            /* pipeline_restore ran (a stop signalled during the start skips it) */
    const char *config_path; /* borrowed from argv; NULL: built-in defaults */
    struct override ov[OV_COUNT];
    notify_t notify;
    int auth_on; /* tokens are configured */
    quota_t *quota;
    /* For the ingest rate in the status line: readings written at the previous status. */
    uint64_t status_written, status_ms;
    /* vigild's health (daemon/health.c), for the watchdog, /healthz, /health and /metrics;
     * health_timer looks at it every HEALTH_TICK_MS so a stall is timed from when the writer's
     * progress stopped, also when no probe asks. */
    health_t health; /* health.store NULL: not initialised yet (a start that failed before) */
    uv_timer_t health_timer;
    int health_timer_on; /* health_timer is started */
    /* Announces maintenance periods beginning and ending by the clock (pipeline_maint_tick). */
    uv_timer_t maint_timer;
    int maint_timer_on; /* maint_timer is started */
};

/* Loop thread: SIGTERM's and SIGINT's handler. The first refuses new work and begins the stop
 * (the HTTP server stops, the demo feed ends, then the stream shuts down and the loop ends);
 * a second one is logged and has no other effect. */
void vigild__on_stop_signal(uv_signal_t *h, int signum);

/* The start's signals, from before the database opens until the loop's handlers replace them
 * (uv_signal_start): vigild__start_signals installs a handler for SIGHUP, SIGTERM and SIGINT
 * that only notes them, so none of them ends vigild during the start by its default action
 * (read66b's finding 5: exit 129 or 143, nothing logged). vigild__start_stop returns the first
 * SIGTERM or SIGINT noted (0: none): a start that has it skips the restore and stops before
 * serving. vigild__start_signals_end, once the loop's handlers are in, logs the SIGHUPs noted
 * (ignored: the configuration was read by this start) and, for a stop noted, says so and tells
 * systemd STOPPING=1 (READY=1 is never sent then); it returns that stop's signal, or 0. Main
 * thread (the handler itself runs on any thread and only stores a number). */
void vigild__start_signals(void);
int vigild__start_stop(void);
int vigild__start_signals_end(struct daemon *d);

/* Closes the signal handles (a run of the loop finishes the closes) and ignores SIGTERM, SIGINT
 * and SIGHUP from then on. A no-op when they were not started. */
void vigild__signals_close(struct daemon *d);

/* Once the loop has run its last (a normal stop, or a failed start): stops the schedule and the
 * pipeline, then frees the snapshots, the events hub, the store, the quota, the loop and the
 * systemd notification, in that order. Returns 0, or 1 when the stop lost what it had to write
 * (logged, one error line naming it). started: the daemon ran (a stop), not a failed start. */
int vigild__teardown(struct daemon *d, int started);

#endif

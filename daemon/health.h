/* daemon/health.h: whether vigild does its job, decided in one place for the systemd watchdog,
 * GET /healthz, GET /health and /metrics' vigil_healthy. */
#ifndef VIGIL_HEALTH_H
#define VIGIL_HEALTH_H

#include "api.h"
#include "storage.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* The reasons the storage check fails (bits of health_storage's result). */
enum {
    HEALTH_STALLED = 1,    /* work waits and no transaction finished within the stall bound */
    HEALTH_COMMITS = 2,    /* the last transaction failed, none committed since, and a write
                            * was refused within the stall bound (a failed transaction, or a
                            * submission refused without trying), or is refused now */
    HEALTH_MAPS_STALE = 4, /* the device maps' reload keeps failing (reads answer 503) */
    HEALTH_FILES = 8,      /* the data folder or vigil.db at its path is not the one opened */
};

typedef struct health {
    store_t *store;           /* borrowed; outlives the health checks */
    _Atomic int64_t stall_ms; /* the stall bound (health_set_stall) */
    /* mu guards done and progress_ms: the writer's transactions finished (committed or failed)
     * at the last look, and when that count last moved or nothing was waiting. Held only to
     * compare and update them (never across a store call). */
    pthread_mutex_t mu;
    uint64_t done;
    int64_t progress_ms;
} health_t;

/* Main thread, before any check. store is borrowed. */
void health_init(health_t *h, store_t *store, int64_t stall_ms);
void health_deinit(health_t *h);

/* Any thread: the writer's progress counts from now, as if a transaction had just finished
 * (main, at READY=1: a long start-up, restoring detectors, is not a stall of the writer). */
void health_progress_now(health_t *h);

/* Any thread: the stall bound from now on (ms, > 0). */
void health_set_stall(health_t *h, int64_t stall_ms);

/* The room health_storage needs for its message whole: every reason of the writer at once with
 * the longest numbers takes 633 bytes, and the data folder's (HEALTH_FILES_MAX - 1 bytes at most:
 * 413 with its paths cut at 200) 2 + 511 more: 1,146, in 2,048 (test_daemon_health.c checks
 * they fit; it was 1,024 when session 68 added the folder's reason, read69a 4). */
#define HEALTH_FILES_MAX 512
#define HEALTH_WHY_MAX API_CHECK_MESSAGE_MAX

/* Any thread. Looks at the store (its counters: two short locks, no wait for the writer; and
 * the data folder's and vigil.db's paths, two stat calls: store_files_check) and records the
 * writer's progress; call it or health_writer at least every second or so (main's tick) so a
 * stall is timed from when progress stopped, not from the previous look. Returns the failing
 * HEALTH_* bits (0: healthy), with why (size bytes) saying every failing reason, joined by
 * "; " ("" when healthy). */
unsigned health_storage(health_t *h, char *why, size_t size);

/* health_storage without the data folder's check (HEALTH_FILES never set): the store's counters
 * alone, no file system call, for the loop thread (the watchdog's ping and the tick), which a
 * stat on a hung volume would hold up (session 68's review). */
unsigned health_writer(health_t *h, char *why, size_t size);

/* health_storage's join (for tests): appends the data folder's reason files (store_files_check's,
 * shorter than HEALTH_FILES_MAX) to why (size bytes, health_writer's message), after "; " when
 * one is there; nothing when why was already cut ("..."). */
void health__files_reason(char *why, size_t size, const char *files);

/* The decision and message of health_storage from the store's counters st, the writer's idle
 * time idle (ms without progress while work waits), now and the bound (ms); pure (tests feed it
 * counters). Returns the failing HEALTH_* bits, why as health_storage's. */
unsigned health__reasons(const store_stats_t *st, int64_t idle, int64_t now, int64_t bound,
                         char *why, size_t size);

/* Any thread: the API's health callback (api_backend_t.health) for ctx a health_t: one check,
 * "storage". */
size_t health_api_checks(void *ctx, api_check_t *checks);

#endif

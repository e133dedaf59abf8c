/* storage/pending_int.h: pending.c's part of the storage internals (storage_int.h): the newest
 * readings of each device, kept in memory and in the readings log until they fill a chunk row,
 * and the reads' waits for their publication. Not part of the public API; included by the
 * storage/ files that write, publish or read them. */
#ifndef VIGIL_PENDING_INT_H
#define VIGIL_PENDING_INT_H

#include "storage_int.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* A read call's wait for the counters a maps reload withdrew (pgen -1): store__pend_wait.
 * Zeroed by the caller; one for the whole call (a device list's devices share its bound). */
typedef struct store_pwait {
    int seen;    /* fails is set: the pfails of the call's first sight of pgen -1 */
    int started; /* dl is set: STORE_PEND_WAIT_MS after its first wait, or deadline_us */
    int failed;  /* the wait ended on a failed reload (a later one than fails counts) */
    uint64_t fails;
    int64_t deadline_us; /* set by the caller: its own deadline (store__wait_deadline), 0: none */
    struct timespec dl;  /* monotonic (mcond_deadline) */
} store_pwait_t;

/* pending.c (writer thread, but store__pend_copy, store__pend_stats, store__pend_wait,
 * store__pend_sync and store__pend_decode: any thread) */
/* Appends n sorted unique cells of d, all after d->last_ts, to its pending readings and to the
 * transaction's log row; queues d's flush when they fill a row. */
int store__pend_append(store_t *s, store_dev_t *d, const store_cell_t *c, size_t n);
/* Writes d's pending readings as rows now (for a run that reaches back into them). */
int store__pend_flush(store_t *s, store_dev_t *d);
/* End of a transaction's work: flushes the full and stale devices, writes the log row, deletes
 * log rows no device needs. */
int store__pend_end_tx(store_t *s);
/* After COMMIT: publishes the transaction's pending readings, creations and deletions. */
void store__pend_publish(store_t *s);
/* Notes that the transaction changed d's pending readings or counters (published at commit). */
int store__pend_mark(store_writer_t *w, store_dev_t *d);
/* Any thread: d's published counters; 0 when the device is not published (then the devices
 * row's hold), -1 while they are withdrawn (pgen -1: a maps reload, which has not ended; the
 * devices row's would miss the pending readings). On -1 the first time for pw (not NULL), notes
 * in pw the failed reloads so far, under the same lock, for store__pend_wait. */
int store__pend_stats(store_t *s, int64_t dev, int64_t *first, int64_t *last, int64_t *points,
                      store_pwait_t *pw);
/* Any thread: waits while the counters are withdrawn (pgen -1) and a reload runs, until a
 * reload publishes them (returns 0: read them again), a reload fails after the call first saw
 * them withdrawn, or had failed with no retry begun yet (ERR_AGAIN at once, pw->failed set: the
 * store retries later, the client has Retry-After) or the call's deadline passes (ERR_AGAIN).
 * Condition variable, no polling. */
int store__pend_wait(store_t *s, store_pwait_t *pw);
/* Any thread: a reader whose snapshot holds log generation gen found another one published
 * (store__pend_copy returned 1). Waits while the published one is older (the writer committed
 * gen and has not published it yet), until it publishes or pgen is withdrawn (returns 0: retry
 * with a new snapshot) or the monotonic deadline dl passes (ERR_AGAIN). Returns 0 at once when
 * the published one is newer (the snapshot is behind). Condition variable, no polling. */
int store__pend_sync(store_t *s, int64_t gen, const struct timespec *dl);
/* Writer thread: a maps reload failed (store__maps_reload): wakes the readers waiting. */
void store__pend_reload_failed(store_t *s);
/* Removes d from the pending list and flush queue (a deletion). */
void store__pend_forget(store_writer_t *w, store_dev_t *d);
/* Reads the log rows into the devices' pending readings (maps just loaded). */
int store__pend_replay(store_t *s);
/* Under pmu: every device into pids, published, pgen = log_last (after a load), or pids
 * emptied and pgen -1 (before the maps are freed). */
void store__pend_index(store_t *s, int build);
void store__pend_free_lists(store_writer_t *w);
/* Copies device dev's published pending readings into r if s->pgen == gen; returns 0 (*len 0:
 * none), 1 when the generation differs (retry with a new snapshot), 2 when they are withdrawn
 * (pgen -1: a reload; pw noted as by store__pend_stats, then store__pend_wait), ERR_NOMEM. */
int store__pend_copy(store_t *s, store_reader_t *r, int64_t dev, int64_t gen, store_pwait_t *pw,
                     size_t *len, int64_t *base);
/* Checks the head of readings log row seq (its data p, n bytes; format in pending.c): *head is
 * the bytes to skip before its segments. Returns 0 (also for an unsummed row of an older
 * vigild, *head 0), ERR_CORRUPT (checksum mismatch). Any thread. */
int store__pend_log_head(int64_t seq, const unsigned char *p, size_t n, size_t *head);
/* Decodes len bytes of pending readings coded from base into *cells (sorted by (ts, idx)),
 * growing it. Returns 0, ERR_CORRUPT, ERR_NOMEM. */
int store__pend_decode(const unsigned char *p, size_t len, int64_t base, store_cell_t **cells,
                       size_t *cap, size_t *ncells, size_t *npoints, int64_t *last);

#endif

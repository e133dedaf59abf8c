/* storage/compact_int.h: the compaction of devices' small rows (chunks.c, writer thread
 * only): a transaction's share of it, the back-off list of devices whose compaction failed, and
 * the compact list across a maps reload. Split from storage_int.h (session 60: it had grown to
 * 957 lines); included by the files that call these. */
#ifndef VIGIL_STORAGE_COMPACT_INT_H
#define VIGIL_STORAGE_COMPACT_INT_H

#include "storage_int.h"

/* Compacts up to STORE_COMPACT_PER_TX devices of the compact list; force: only those with
 * STORE_COMPACT_ROWS small rows. Inside the caller's transaction. On failure w->cfail_id is the
 * device whose compaction failed. A device backing off (store__compact_failed) is not queued. */
int store__compact_some(store_t *s, int force);
/* Backs device id's compaction off after a failure at now: it is not queued again before the
 * returned ms; *first: 1 when the device was not backing off (its first failure of a run).
 * Returns -1 when out of memory (not recorded). */
int64_t store__compact_failed(store_writer_t *w, int64_t id, int64_t now, int *first);
/* Device id's entry in the compaction back-off list w->cfail (kept in id order: a binary
 * search), or NULL. Borrowed; valid until the list next changes. */
store_cfail_t *store__cfail_find(store_writer_t *w, int64_t id);
/* Inserts an entry {id} (fails 0, not backing off yet) at its place in w->cfail; id must not be
 * there. Returns it (borrowed, as above), or NULL when out of memory (nothing changed). */
store_cfail_t *store__cfail_insert(store_writer_t *w, int64_t id);
/* A maintenance back-off after fails failures: STORE_RETAIN_PERIOD_MIN_MS doubled per failure,
 * at most STORE_RETAIN_PERIOD_MS (maint.c). */
int64_t store__backoff_ms(int fails);
/* At the end of a transaction: committed (ok), the devices compacted by it leave the failure
 * list; else their marks are cleared. A device whose back-off ended a back-off's length ago
 * (so it failed no more meanwhile) leaves it too, so the list holds only recent failures.
 * Returns 1 when the list became empty by it. */
int store__compact_end_tx(store_writer_t *w, int ok);
/* Before the maps are freed for a reload: notes the devices in the compact list (by id) for
 * store__compact_requeue. */
void store__compact_save(store_writer_t *w);
/* After a reload (and after the failure was charged, so a device backing off stays out): queues
 * the noted devices again, with their small rows; the noted list is emptied. Best effort: out
 * of memory, the rest wait for their next small row. */
void store__compact_requeue(store_t *s);
/* A deleted device leaves the failure list (a device created next may take its id). */
void store__compact_forget(store_writer_t *w, int64_t id);
/* Frees the compact list and the failure list (at close). */
void store__compact_list_free(store_writer_t *w);

#endif

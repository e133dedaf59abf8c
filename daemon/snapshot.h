/* daemon/snapshot.h: online backups of the database (POST /v1/admin/snapshot) and their list.
 *
 * A snapshot is a consistent copy of vigil.db (storage's store_snapshot) written into
 * <data_dir>/snapshots/vigil-YYYYMMDDTHHMMSS.mmmZ.db, under a temporary name first, renamed
 * once complete and synced. One runs at a time; the oldest beyond the keep limit are deleted
 * after each success. Any thread (HTTP handlers) unless said otherwise. */
#ifndef VIGIL_SNAPSHOT_H
#define VIGIL_SNAPSHOT_H

#include "pipeline.h"
#include "sbuf.h"
#include "storage.h"

typedef struct snapshots snapshots_t;

/* Prepares snapshots of store's database into data_dir/snapshots (created at the first one),
 * keeping the newest keep (0: all). Returns 0 or ERR_NOMEM. Caller owns *out; free with
 * snapshots_destroy, after the last snapshots_take has returned. store is borrowed and must
 * outlive it. */
int snapshots_create(snapshots_t **out, store_t *store, const char *data_dir, int keep);

/* Frees it. NULL is a no-op. */
void snapshots_destroy(snapshots_t *s);

/* Changes the keep limit (a reload); applies from the next snapshot on. */
void snapshots_set_keep(snapshots_t *s, int keep);

/* vigild is stopping: later snapshots_take calls fail with ERR_CLOSED, and a running copy is
 * cancelled (it fails with ERR_CLOSED, its partial file removed), so it does not hold up the
 * stop. */
void snapshots_close(snapshots_t *s);

/* Takes a snapshot: with pipe (may be NULL), first saves every detector and waits for the
 * saves to commit, so the copy holds detectors as recent as its readings. Blocks until the
 * copy is durable. Returns 0 with *out the JSON answer {"path", "bytes", "took_ms", "time"}
 * (NULL when the snapshot was made but its answer could not be built, out of memory: logged
 * and counted as made); or ERR_BUSY (another snapshot runs), ERR_CLOSED (stopping), ERR_NOSPACE
 * (the volume is full; the partial copy removed), ERR_RESOURCE (out of descriptors or memory:
 * EMFILE, ENFILE, ENOMEM; a later try may succeed), ERR_IO and others, with *out a message saying
 * why (NULL when out of memory). Caller owns *out; free it. */
int snapshots_take(snapshots_t *s, pipeline_t *pipe, char **out);

/* The snapshot files, newest first, as JSON {"dir", "snapshots": [{"name", "bytes", "time"}]}
 * in *out (caller frees). Returns 0, ERR_IO or ERR_RESOURCE (the folder cannot be opened,
 * the latter for want of descriptors or memory: *out names it and says why), or ERR_NOMEM. */
int snapshots_list(snapshots_t *s, char **out);

/* Appends the snapshot series for /metrics. */
void snapshots_metrics(snapshots_t *s, sbuf_t *out);

#endif

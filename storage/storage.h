/* storage/storage.h: vigil's durable store of devices and readings, on SQLite.
 *
 * One writer thread owns the only write connection. Every write (reading batches from every
 * source and connection, device declarations and deletions) is queued to it; it drains the
 * queue into as few transactions as it can (group commit) and reports each submission's fate
 * after COMMIT returns, so "done with status 0" means durable. Readers use their own
 * connections from a small pool, so queries never wait for the writer (WAL).
 *
 * Layout: rows (chunks) of many timestamps of one device, each holding every channel's values
 * in a compressed, exact coding; a device's newest readings wait in a log (one row per commit)
 * and in memory until they fill a chunk, and queries see both. A second write to the same
 * (device, channel, timestamp) overwrites that value and leaves the other channels alone. See
 * docs/architecture.md.
 *
 * Beside the readings, the store keeps what the anomaly pipeline needs across restarts: model
 * versions with their metrics, anomaly events, each device's serialized detector and its older
 * predictions (prediction blocks). Their writes
 * are asynchronous (queued to the same writer, never waited for); store_flush waits for them.
 * Maintenance periods, an operator's, are the exception: their writes wait for their commit.
 *
 * Threads: store_open/store_close from the owning thread (the daemon's main thread); every other
 * function is "any thread". Callbacks given to store_submit and the commit hook run on the writer
 * thread; the callbacks of the read functions run on the calling thread.
 *
 * Every read function below may also return ERR_LOCKED (besides the codes it lists): another
 * process held SQLite's locks past the busy timeout (10 s) while recovering the WAL index, the
 * one thing that blocks a reader in WAL mode. */
#ifndef VIGIL_STORAGE_H
#define VIGIL_STORAGE_H

#include "batch.h"

#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;

typedef struct store_opts {
    const char *dir;        /* data directory, created if missing; the database is dir/vigil.db */
    size_t queue_max;       /* most readings (fields) queued for the writer; then ERR_BUSY */
    int max_batch_delay_ms; /* longest the writer waits for more work before it commits (0: none) */
    int sync_full;          /* 1: PRAGMA synchronous=FULL (fsync every commit); 0: NORMAL */
    int cache_mb;           /* page cache of the write connection, MiB */
    int readers;            /* number of reader connections (at least 1) */
    int writer_nice;        /* nice increment of the writer thread (0: none) */
    /* Retention (storage/retention.c): readings rows whose every timestamp is older than
     * now - retention_ms, and anomaly events that ended before it, are deleted by a sweep on the
     * writer thread, at open and then periodically; 0 keeps everything forever. */
    int64_t retention_ms;
} store_opts_t;

/* Fills opts with the defaults: queue 1,000,000 readings, 2 ms, sync full, 64 MiB, 4 readers,
 * no retention (keep forever). */
void store_opts_default(store_opts_t *opts);

/* Opens (creating or migrating) the database and starts the writer thread.
 * Returns 0 and *out, or ERR_IO / ERR_NOMEM / ERR_CORRUPT (ERR_INVAL: no opts->dir, or the
 * monotonic clock refused for the writer's condition variable) with nothing
 * left open and *out NULL; errmsg (may be NULL) receives a detailed reason. A database written
 * by a newer vigil (schema version above this code's) is refused with ERR_IO and left untouched.
 * Caller owns *out; free with store_close. */
int store_open(store_t **out, const store_opts_t *opts, char *errmsg, size_t errsize);

/* A stop has begun (any thread; NULL is a no-op; only the first call counts): from now on the
 * waits for another process's lock of the writer and of the reads (SQLite's busy timeout,
 * STORE_BUSY_TIMEOUT_MS each) wait STORE_STOP_BUSY_MS (5 s) in all, together, the final
 * checkpoint's included, so the stop's transactions and reads fail ERR_LOCKED once that is
 * spent rather than each waiting 10 s (a budget of waiting, not a deadline: a long stop that
 * meets a brief lock late still waits for it).
 * store_close calls it itself. */
void store_stop_begin(store_t *s);

/* Stops intake, writes everything already queued, stops the writer, closes all connections and
 * frees s (the WAL emptied into the database when no other process's lock keeps it, else kept
 * and logged). NULL is a no-op (returns 0). Queued submissions get their callbacks before this
 * returns. Returns 0 when everything still queued at the call was committed (or nothing was),
 * else the first failure, ERR_IO, ERR_NOSPACE or ERR_LOCKED: what that transaction held is
 * lost (readings' submitters were told so through their callbacks, so none was acknowledged;
 * lost asynchronous puts count in ops_failed). s is freed either way. A caller that must know
 * whether its earlier asynchronous puts were committed calls store_flush and compares
 * ops_failed first (the puts may have been committed, or lost, before this call). */
int store_close(store_t *s);

/* store_close, and *wal_kept (not NULL) set to 1 when its final checkpoint left the WAL beside
 * the database (a full volume, or another process's lock: the log said so, and vigil.db alone
 * is no copy of the data until a later close empties it), else 0. */
int store_close_wal(store_t *s, int *wal_kept);

/* Called on the writer thread once a submission is committed (status 0) or has failed
 * (ERR_IO, ERR_NOSPACE, ERR_LOCKED). Must be quick and must not call back into the store. */
typedef void (*store_done_cb)(void *arg, int status);

/* Called on the writer thread after each successful COMMIT, once per reading batch committed by
 * it, in commit order, and before the done callbacks of that transaction's submissions run, so a
 * client told "committed" has its readings already handed over. Never called for a transaction
 * that failed. b is the batch as submitted (its points in submission order), lent for the call:
 * the hook may read it, or take its contents instead of copying them (move *b out, then
 * batch_init(b)); the store frees whatever b holds after the call. Must be quick; it may call the
 * asynchronous store_*_put functions but nothing that waits for the writer (store_write,
 * store_device_put, store_device_delete, store_flush, store_close). */
typedef void (*store_commit_hook)(void *arg, batch_t *b);

/* Installs the commit hook (NULL: none). Call once, from the owning thread, before anything is
 * submitted; batches committed before the call are not reported. */
void store_set_commit_hook(store_t *s, store_commit_hook hook, void *arg);

/* Queues a batch for writing. On success the store takes the batch's contents (b is left empty
 * and reusable) and will call cb exactly once. On failure (ERR_BUSY: queue full; ERR_CLOSED:
 * closing; ERR_NOSPACE: the last commit found the disk full; ERR_NOMEM) b is untouched but for
 * the merge below and cb is never called. An empty batch completes at once with status 0 (cb is
 * called before return). Points repeating a device and timestamp are merged first
 * (batch_merge_same_ts, on the caller's thread), so the commit hook sees what is stored. */
int store_submit(store_t *s, batch_t *b, store_done_cb cb, void *arg);

/* Convenience for threads that may block: store_submit, then wait for the commit. Returns the
 * submit error or the commit status. On return b is empty if it was submitted. */
int store_write(store_t *s, batch_t *b);

/* Declares or updates a device; attrs_json is an opaque JSON object text stored with it (NULL
 * keeps the existing attributes, or "{}" for a new device). Blocks until committed.
 * *created (may be NULL) is set to 1 when the device is new. Returns 0, ERR_INVAL (bad name, or
 * attrs not a JSON object), ERR_IO, ERR_NOSPACE, ERR_NOMEM, ERR_CLOSED (store closing). */
int store_device_put(store_t *s, const char *device, const char *attrs_json, int *created);

/* Deletes a device, its channels and all its readings, models, events, detector and prediction
 * blocks. Blocks until
 * committed (the writer deletes every row in one transaction, so other writes wait behind a large
 * device). Returns 0, ERR_NOTFOUND, ERR_IO, ERR_NOSPACE, ERR_NOMEM, ERR_CLOSED. */
int store_device_delete(store_t *s, const char *device);

typedef struct store_device_info {
    const char *id;         /* borrowed: valid during the callback only */
    const char *attrs_json; /* borrowed */
    int64_t created_ms;
    int64_t first_ts_ms, last_ts_ms; /* -1 when the device has no readings (or not read) */
    /* distinct timestamps stored, exact (a point holds several channels); -1: not read
     * (store_device_find, store_device_each) */
    int64_t points;
    size_t nchannels;
    const char *const *channels; /* borrowed, in order of first appearance */
} store_device_info_t;

/* Called once per device; return nonzero to stop the iteration. Runs on the calling thread. */
typedef int (*store_device_cb)(void *arg, const store_device_info_t *info);

/* Reports one device. While the writer reloads its maps (after a failed transaction or undone
 * maintenance) its counters (points, first_ts_ms, last_ts_ms) are withdrawn: the call waits
 * until the reload publishes them, about a second at most, and fails with ERR_AGAIN (transient:
 * try again) at that bound or as soon as the reload fails. Returns 0, ERR_NOTFOUND, ERR_AGAIN,
 * ERR_IO, ERR_NOMEM. */
int store_device_get(store_t *s, const char *device, store_device_cb cb, void *arg);

/* As store_device_get, waiting for a reload, and for a reader connection when all are busy, no
 * later than deadline_us (vtime_mono_us's clock, CLOCK_MONOTONIC µs; 0: the store's own bound
 * alone, and a connection however long it takes): ERR_AGAIN once it passes. For a caller with a
 * deadline of its own (an InfluxQL query's http.query_timeout). */
int store_device_get_until(store_t *s, const char *device, int64_t deadline_us, store_device_cb cb,
                           void *arg);

/* As store_device_get, for a caller that needs no counters: never waits for a reload, and
 * reports points, first_ts_ms and last_ts_ms as -1 (not read). For a thread that must not
 * block (an HTTP worker) or a check that the device is stored. */
int store_device_find(store_t *s, const char *device, store_device_cb cb, void *arg);

/* Reports every device ordered by id (byte order), those after `after` (NULL: from the first;
 * it need not name an existing device, so a page cursor survives a deletion), at most limit
 * devices (0: all). Waits for a reload as store_device_get does (about a second at most for
 * the whole call), else ERR_AGAIN. A walk that waits part-way (the reload began after its first
 * devices) goes on after the last device it reported, in a newer snapshot, as a next page
 * would: each device at most once and in order, and one present throughout is reported, but a
 * device created or deleted during the wait is listed as the newer snapshot says. Returns 0,
 * ERR_AGAIN, ERR_IO, ERR_NOMEM. */
int store_device_list(store_t *s, const char *after, size_t limit, store_device_cb cb, void *arg);

/* As store_device_list, its waits for a reload and for a reader connection ending by
 * deadline_us as store_device_get_until's. */
int store_device_list_until(store_t *s, const char *after, size_t limit, int64_t deadline_us,
                            store_device_cb cb, void *arg);

/* Every device as store_device_list(s, NULL, 0, ...) reports them (the same ids in the same
 * order, whether or not the writer reloads its maps), without the counters (points,
 * first_ts_ms and last_ts_ms -1) and without waiting for a reload: for the daemon's own
 * listings (startup, configuration reload) and InfluxQL's SHOW statements, which need names,
 * attributes and channels. Returns 0 (also when cb stopped), ERR_IO, ERR_NOMEM. */
int store_device_each(store_t *s, store_device_cb cb, void *arg);

typedef struct store_query {
    const char *device;
    int64_t from_ms, to_ms;      /* from inclusive, to exclusive */
    const char *const *channels; /* NULL: every channel */
    size_t nchannels;
    size_t limit; /* most points reported (0: no limit) */
    int desc;     /* 1: newest first */
    /* The caller's deadline (vtime_mono_us's clock, CLOCK_MONOTONIC µs): the call's waits for
     * the writer (a maps reload, a commit's publication) and for a reader connection (all
     * busy) end by it at the latest, ERR_AGAIN (a publication's: ERR_UNPUBLISHED); 0: the
     * store's own bounds alone, and a connection however long it takes. */
    int64_t deadline_us;
    /* 1: a damaged readings row (checksum mismatch, malformed) is left out and the query goes on
     * (training's window); 0: the query fails with ERR_CORRUPT. Either way the row is counted
     * in store_stats_t.chunks_damaged and logged (once a row), naming device and time range. */
    int skip_damaged;
} store_query_t;

/* Called once per point (timestamp) in order; n >= 1 values of the selected channels present at
 * that timestamp. Pointers are borrowed for the call. Return nonzero to stop. */
typedef int (*store_point_cb)(void *arg, int64_t ts_ms, size_t n, const char *const *channels,
                              const double *values);

/* Reads a device's readings in [from, to) through the (device, ts) index. Points holding none of
 * the selected channels are skipped and do not count toward limit. Values of a point come in
 * channel order (order of first appearance). Returns 0, ERR_NOTFOUND (no such device), ERR_INVAL
 * (unknown channel: at once, also while the writer reloads its maps), ERR_AGAIN (the writer
 * reloads its maps after a failed transaction and the device's pending readings stayed
 * withdrawn for about a second, or until q->deadline_us; or every reader connection stayed busy
 * until q->deadline_us: try again), ERR_UNPUBLISHED (the
 * writer stalled for about a second, or until q->deadline_us, between a COMMIT and publishing
 * it: try again), ERR_IO, ERR_NOMEM. */
int store_query(store_t *s, const store_query_t *q, store_point_cb cb, void *arg);

typedef struct store_stats {
    uint64_t readings_written; /* fields committed since open */
    uint64_t points_written;
    uint64_t commits;
    uint64_t commit_errors;
    /* Of commit_errors: those another process's lock failed (ERR_LOCKED: it held a write
     * transaction or an exclusive lock past the busy timeout), and those a full disk failed. */
    uint64_t commit_errors_locked;
    uint64_t commit_errors_nospace;
    uint64_t queue_readings; /* readings waiting for the writer now */
    uint64_t queue_max;
    double commit_seconds_sum;   /* total time inside COMMIT-ed transactions */
    uint64_t commit_buckets[12]; /* cumulative histogram counts for STORE_COMMIT_BUCKETS */
    int64_t db_bytes;            /* size of the database and its WAL on disk */
    uint64_t devices;
    /* Asynchronous model, event and detector writes (store_model_put ...). */
    uint64_t ops_queued;  /* queued or in the open transaction now */
    uint64_t ops_written; /* committed since open */
    uint64_t ops_dropped; /* refused with ERR_BUSY: too many pending */
    uint64_t ops_max;     /* ops_queued's bound (STORE_OPS_MAX, or VIGIL_TEST_OPS_MAX's) */
    uint64_t ops_skipped; /* committed as no-ops: unknown device, or info not a JSON object */
    uint64_t ops_failed;  /* lost with a transaction that failed (disk full, I/O error) */
    uint64_t detector_saves_failed; /* of ops_failed, the store_detector_put ones */
    uint64_t model_puts_failed;     /* of ops_failed, the store_model_put(_keep) ones */
    /* Retention sweeps (store_opts_t.retention_ms), committed since open. */
    uint64_t retention_chunks;           /* readings rows (chunks) deleted */
    uint64_t retention_points;           /* timestamps those rows held */
    uint64_t retention_events;           /* ended anomaly events deleted */
    uint64_t retention_sweeps;           /* sweeps finished */
    uint64_t retention_steps;            /* transactions that ran a step of a sweep */
    double retention_seconds;            /* writer time spent in the steps */
    double retention_last_sweep_seconds; /* start to end of the last finished sweep */
    /* Arrivals puts (store_arrivals_put) committed since open: their upserts' time inside
     * their transactions (the commits are in commit_seconds) and their rows. The upserts of a
     * transaction that failed are not counted (since session 61; before, they were). */
    double arrivals_write_seconds;
    uint64_t arrivals_write_rows;
    /* Maintenance steps (compaction, retention) that failed since open: in a writer's idle
     * transaction of their own, or inside a client transaction, where they are rolled back to
     * their savepoint and the client's writes commit without them (maintenance_rollbacks of
     * them). commit_errors counts only client transactions that failed. */
    uint64_t maintenance_errors;
    uint64_t maintenance_rollbacks;
    /* Readings rows (chunks) found damaged (checksum mismatch or malformed) when read: each
     * read of a damaged row counts (the row is not served; the log names it once). */
    uint64_t chunks_damaged;
    /* For health checks (daemon/health.c): client transactions failed in a row since the last
     * commit (0: the last one committed), the last failure's status (ERR_*, 0 if none), when the
     * last commit happened and when the last failure (vtime_mono_ms; 0: none since open), and
     * the device maps' reloads failed in a row (0: the maps are current; while not, reads answer
     * ERR_AGAIN). A commit of store_flush markers alone (nothing written) is counted in commits
     * but is not "the last commit" here: it ends no run of failures, nor the refusal below. */
    uint64_t commit_fail_run;
    int commit_last_err;
    int64_t commit_last_ms;
    int64_t commit_fail_ms;
    /* After a commit found the disk full, submissions are refused without trying until
     * refusing_until_ms (monotonic; 0 or past: not refusing); write_refused_ms: the last one so
     * refused (0: none since open). */
    int64_t refusing_until_ms;
    int64_t write_refused_ms;
    int maps_reload_fails;
} store_stats_t;

/* Upper bounds (seconds) of the commit latency histogram, for /metrics. */
#define STORE_COMMIT_BUCKETS                                                                       \
    {                                                                                              \
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5                  \
    }

/* ---- The anomaly pipeline's state ----
 *
 * Writes: queued to the writer and committed with the next transaction; the call copies its
 * inputs and returns at once, without waiting for the writer or for queue space taken by
 * readings. Nothing reports their fate: a put for a device that does not exist (readings create
 * devices, so this means it was deleted) or with info that is not a JSON object is committed as
 * a no-op with a debug or warning log; a put lost with a failed transaction is counted in
 * ops_failed. Use store_flush to wait until they are durable. Each returns 0 (queued), ERR_INVAL
 * (bad device name or argument; nothing queued), ERR_BUSY (STORE_OPS_MAX puts, or 256 MiB, are
 * already pending: dropped and counted in ops_dropped), ERR_NOSPACE (the last commit found the
 * disk full), ERR_CLOSED (closing), ERR_NOMEM. Any thread, the commit hook included. */

/* Writes model `version` of a device with info_json (a JSON object: metrics, kind, data range;
 * NULL: "{}") and an optional checkpoint (ckpt NULL and len 0: none; an existing version keeps
 * its checkpoint and created_ms, and takes the new info). Checkpoints with the same bytes (a
 * device group's version, recorded by every member) are stored once. created_ms is the time of the
 * call. keep_k > 0 then deletes, in the same transaction, every version of the device below its
 * keep_k highest; 0 keeps all. len is at most 64 MiB. */
int store_model_put(store_t *s, const char *device, int64_t version, const char *info_json,
                    const void *ckpt, size_t len, int keep_k);

/* store_model_put, but the keep_k trim spares version keep_version (the one that serves, which
 * may be older than the keep_k highest after a rollback; -1: none), so at most keep_k + 1
 * versions remain. */
int store_model_put_keep(store_t *s, const char *device, int64_t version, const char *info_json,
                         const void *ckpt, size_t len, int keep_k, int64_t keep_version);

/* Writes anomaly event `id` of a device (upsert: written when it starts with end_ts -1, and
 * again when it ends). info_json as above. ERR_INVAL when end_ts is neither -1 nor >= start_ts. */
int store_event_put(store_t *s, const char *device, int64_t id, int64_t start_ts, int64_t end_ts,
                    const char *info_json);

/* The maintenance periods kept per device (the newest by start). */
#define STORE_MAINT_KEEP 16

/* Writes a maintenance period of a device, [start_ms, end_ms) in wall-clock ms, with its note
 * (NULL: none; copied): an upsert by (device, start_ms), so a period whose end changes is put
 * again; then the device's periods beyond the newest STORE_MAINT_KEEP are deleted in the same
 * transaction. Unlike the puts above it waits for its own transaction and returns that
 * commit's status, because an operator's answered maintenance change must be on disk (a
 * flush afterwards would not tell: the put may have failed in an earlier transaction than the
 * flush's). A device the store does not know makes it a no-op (0). Returns 0 (committed),
 * ERR_INVAL (bad name, end_ms < start_ms), ERR_NOSPACE (the disk is full, or the last commit
 * found it full less than a second ago: not tried), ERR_LOCKED (another process held the
 * database's lock past the busy timeout), ERR_IO (the transaction failed otherwise), ERR_CLOSED,
 * ERR_NOMEM. Any thread but the commit hook (it waits for the writer). */
int store_maint_put(store_t *s, const char *device, int64_t start_ms, int64_t end_ms,
                    const char *note);

/* Deletes the device's maintenance period that starts at start_ms (a scheduled one cancelled)
 * and waits for the commit, as store_maint_put; none there is no error. Returns 0, ERR_INVAL
 * (bad name), ERR_NOSPACE, ERR_IO, ERR_CLOSED, ERR_NOMEM. Any thread but the commit hook. */
int store_maint_delete(store_t *s, const char *device, int64_t start_ms);

/* One maintenance period (device and note borrowed for the call; note NULL: none). */
typedef int (*store_maint_cb)(void *arg, const char *device, int64_t start_ms, int64_t end_ms,
                              const char *note);

/* Reports every device's maintenance periods (for start-up), by device in creation order, then
 * oldest start first. Returns 0, ERR_IO, ERR_NOMEM. */
int store_maint_load(store_t *s, store_maint_cb cb, void *arg);

/* ---- Database names ----
 *
 * The names InfluxDB clients registered (CREATE DATABASE, /write?db=): vigild has one store, so
 * a name chooses nothing, but the influx shell's USE refuses one SHOW DATABASES does not list,
 * also after a restart. The set is tiny and a name is written once. */

/* Longest name kept, in bytes. */
#define STORE_DBNAME_MAX 64

/* Keeps name (copied) in the order of first use, unless it is kept already, and waits for the
 * commit, as store_maint_put does. Returns 0 (committed, or kept before), ERR_INVAL (empty,
 * longer than STORE_DBNAME_MAX, not UTF-8 or holding a control character), ERR_NOSPACE, ERR_IO,
 * ERR_CLOSED, ERR_NOMEM. Any thread but the commit hook (it waits for the writer). */
int store_dbname_put(store_t *s, const char *name);

/* One kept name (borrowed for the call). Return nonzero to stop. */
typedef int (*store_dbname_cb)(void *arg, const char *name);

/* Reports the kept names in the order of first use, at most max of them (0: all). Returns 0,
 * ERR_IO, ERR_NOMEM. Any thread. */
int store_dbnames_load(store_t *s, size_t max, store_dbname_cb cb, void *arg);

/* ---- Arrivals ----
 *
 * Each device's newest arrival (seen_ms: wall-clock ms its newest reading was committed) and
 * the arrival of its newest scored reading (last_ms, with that reading's timestamp last_ts), so
 * a silent device stays silent across a restart. The daemon writes the changed ones
 * periodically and at its stop; a deleted device's row goes with it. */
typedef struct store_arrival {
    const char *device;                /* borrowed */
    int64_t seen_ms, last_ms, last_ts; /* -1: none */
} store_arrival_t;

/* Queues one asynchronous put of n devices' arrivals (v and its names copied): one job, written
 * in the writer's next transaction (an upsert each; a device the store does not know is
 * skipped), so its cost is one job whatever n. Not waited for: store_flush commits it. Returns
 * 0 (queued), ERR_INVAL (a bad name; nothing queued), ERR_BUSY (the queue of puts is full),
 * ERR_NOSPACE, ERR_CLOSED, ERR_NOMEM. Any thread. */
int store_arrivals_put(store_t *s, const store_arrival_t *v, size_t n);

/* One device's stored arrivals (borrowed for the call). Return nonzero to stop. */
typedef int (*store_arrival_cb)(void *arg, const store_arrival_t *a);

/* Reports every stored device's arrivals (for start-up), in device creation order. Returns 0,
 * ERR_IO, ERR_NOMEM. Any thread. */
int store_arrivals_load(store_t *s, store_arrival_cb cb, void *arg);

/* Replaces the device's serialized detector, the state of its pipeline as of reading last_ts.
 * blob (len bytes, at most 64 MiB) is opaque to the store. ckpt (ckpt_len bytes, at most 64 MiB;
 * NULL and 0: none) is a model checkpoint the detector needs: it is stored once for every
 * detector and model version holding the same bytes (a device group's members serve one
 * model), and store_detectors_load gives it back beside the blob. */
int store_detector_put(store_t *s, const char *device, int64_t last_ts, const void *blob,
                       size_t len, const void *ckpt, size_t ckpt_len);

/* ---- Prediction blocks ----
 *
 * A device's older predictions (daemon/pipeline_ring.c seals them into blocks of bytes opaque to
 * the store), numbered by the caller with a per-device sequence number seq, each holding n
 * predictions of nch channels. The store keeps each with a checksum and gives it back by seq. */

/* Called on the writer thread once the put's transaction has committed (status 0; also when
 * the device no longer exists and the put was a no-op) or failed (ERR_IO, ERR_NOSPACE). Must
 * be quick and must not call back into the store. */
typedef void (*store_pred_cb)(void *arg, int64_t seq, int status);

/* A block to write: seq, its n predictions (1 <= n <= 65535) of nch channels (1 <= nch <= 64)
 * from timestamp t0 to t1, blob[len] (len >= 1; borrowed, copied by the put), and keep_from:
 * the device's blocks below it are deleted in the same transaction. */
typedef struct store_pred {
    int64_t seq, keep_from, t0, t1;
    uint32_t n;
    int nch;
    const void *blob;
    size_t len;
} store_pred_t;

/* Writes block b->seq of a device, asynchronously as the puts above, deleting in the same
 * transaction the device's blocks below b->keep_from and those from b->seq on (the one it
 * replaces, and any left above it by a ring that started again). cb (may be NULL) is called
 * exactly once when the put was queued (returned 0), never when it was not. Returns as the
 * puts above; ERR_INVAL also for a field of b out of range. */
int store_pred_put(store_t *s, const char *device, const store_pred_t *b, store_pred_cb cb,
                   void *arg);

/* Deletes every block of the device, asynchronously (a ring that starts again: new channels).
 * Returns as the puts above. */
int store_preds_drop(store_t *s, const char *device);

/* One block: seq, its n predictions of nch channels, bytes borrowed for the call. Return
 * nonzero to stop. */
typedef int (*store_pred_read_cb)(void *arg, int64_t seq, uint32_t n, int nch, const void *blob,
                                  size_t len);

/* Reports the device's blocks with seq in [from_seq, to_seq), lowest first, in one snapshot.
 * Returns 0, ERR_NOTFOUND (no such device), ERR_CORRUPT (a block whose bytes do not match its
 * checksum, or n, nch out of range: the blocks before it were reported, it and those after
 * not), ERR_IO, ERR_NOMEM. */
int store_preds_read(store_t *s, const char *device, int64_t from_seq, int64_t to_seq,
                     store_pred_read_cb cb, void *arg);

/* One stored block's place, without its bytes (device borrowed for the call); t1 is its newest
 * prediction's timestamp. */
typedef int (*store_pred_list_cb)(void *arg, const char *device, int64_t seq, uint32_t n, int nch,
                                  int64_t t1);

/* Reports every stored block of every device (for start-up), by device in creation order, then
 * seq, from the index alone. Returns 0, ERR_IO, ERR_NOMEM. */
int store_preds_list(store_t *s, store_pred_list_cb cb, void *arg);

/* The device's stored blocks and their bytes (blocks only, not SQLite's pages). Returns 0,
 * ERR_NOTFOUND, ERR_IO. */
int store_preds_size(store_t *s, const char *device, int64_t *blocks, int64_t *bytes);

/* Blocks until everything queued before the call (readings, device changes and the asynchronous
 * puts) is committed or has failed, and their done callbacks and commit hooks have run. Returns
 * 0 when the transaction that reached the flush committed, ERR_IO, ERR_NOSPACE or ERR_LOCKED
 * (another process held the database's lock past the busy timeout) when it failed
 * (earlier transactions reported to their own submitters; lost puts count in ops_failed), or
 * ERR_CLOSED. Any thread but the writer's: never from a commit hook or a store_done_cb. */
int store_flush(store_t *s);

/* Reads run on the reader pool, each in one snapshot (a device list that waits for a reload
 * part-way: each device in one, store_device_list). A read that waits for the writer (a maps
 * reload, a commit's publication) holds no reader connection meanwhile, so waiting reads never
 * take all the pool's connections (opts.readers) from reads that need no wait. Pointers given
 * to a callback are borrowed: valid during the call only. An iteration stops when its callback
 * returns nonzero. They return 0, ERR_NOTFOUND (no such device, or version), ERR_IO,
 * ERR_NOMEM; a failed call never invokes its callback, though an iteration may fail after some
 * calls. */

/* One model version; has_ckpt is 1 when a checkpoint is stored with it. */
typedef int (*store_model_cb)(void *arg, int64_t version, int64_t created_ms, const char *info_json,
                              int has_ckpt);

/* Reports the device's model versions, lowest version first. */
int store_models_list(store_t *s, const char *device, store_model_cb cb, void *arg);

/* One model version of the device named device (borrowed: valid during the call). */
typedef int (*store_models_all_cb)(void *arg, const char *device, int64_t version,
                                   int64_t created_ms, const char *info_json, int has_ckpt);

/* Reports every device's model versions in one read (for start-up): device by device in
 * creation order, each lowest version first, as store_models_list would one device. cb
 * returning non-zero stops the listing (0 returned). Returns 0, ERR_IO, ERR_NOMEM. */
int store_models_list_all(store_t *s, store_models_all_cb cb, void *arg);

/* A model version with its checkpoint (ckpt NULL and len 0 when none). */
typedef void (*store_model_data_cb)(void *arg, int64_t version, const char *info_json,
                                    const void *ckpt, size_t len);

/* Reports one model version (version < 0: the highest), calling cb once. */
int store_model_get(store_t *s, const char *device, int64_t version, store_model_data_cb cb,
                    void *arg);

/* One anomaly event; end_ts -1 while it is active. */
typedef int (*store_event_cb)(void *arg, const char *device, int64_t id, int64_t start_ts,
                              int64_t end_ts, const char *info_json);

/* Reports the events of one device (NULL: every device) that overlap [from_ms, to_ms), i.e.
 * start_ts < to_ms and (active or end_ts >= from_ms), newest start first (ties: highest device
 * name, bytewise, then highest id first), at most limit of them (0: all). With tie_dev (not
 * NULL) the events that started at to_ms itself and whose (device name, id) is below
 * (tie_dev, tie_id) in that order are reported too, so a listing cut inside one start time goes
 * on after its last event (store_events_query_tie). active_only keeps the events without an end.
 * Ended events are read only from start_ts >= from_ms - the device's length bound
 * (devices.ev_maxlen, schema 9: at least its longest stored ended event, raised as events are
 * stored and lowered by retention once a sweep, so it may exceed that length until then; the
 * fleet's largest bound for fleet-wide queries), active ones from their partial index, so a
 * range reads the events that can overlap it; an unbounded from_ms reads every older event. */
int store_events_query(store_t *s, const char *device, int active_only, int64_t from_ms,
                       int64_t to_ms, size_t limit, store_event_cb cb, void *arg);
int store_events_query_tie(store_t *s, const char *device, int active_only, int64_t from_ms,
                           int64_t to_ms, const char *tie_dev, int64_t tie_id, size_t limit,
                           store_event_cb cb, void *arg);

/* One device's highest stored anomaly event id (of any event, active or ended). */
typedef int (*store_event_max_cb)(void *arg, const char *device, int64_t max_id);

/* Reports, for every device with a stored event, its highest event id, in one read (for
 * start-up: a device's next event must be numbered past it, or the events' upsert would
 * overwrite a stored one). The events' (device_id, id) key gives each device's rows in id order;
 * the read walks every stored event once. cb returning non-zero stops the listing (0
 * returned). Returns 0, ERR_IO, ERR_NOMEM. */
int store_events_max_ids(store_t *s, store_event_max_cb cb, void *arg);

/* One device's saved detector, with its checkpoint: ckpt_id > 0 names the stored checkpoint
 * (ckpt, ckpt_len bytes), 0 when the detector was saved without one (ckpt NULL, ckpt_len 0).
 * saved_ms: the wall time (vtime_now_ms) at which its newest save was queued
 * (store_detector_put). */
typedef int (*store_detector_cb)(void *arg, const char *device, int64_t last_ts, int64_t saved_ms,
                                 const void *blob, size_t len, int64_t ckpt_id, const void *ckpt,
                                 size_t ckpt_len);

/* Reports every saved detector (for start-up): those without a checkpoint first, then those
 * sharing a checkpoint one after another (by ckpt_id), each in device creation order. A
 * checkpoint is read once for all the detectors that share it, so a caller that keeps the
 * model it made for the previous ckpt_id parses each checkpoint once. */
int store_detectors_load(store_t *s, store_detector_cb cb, void *arg);

/* Starts a retention sweep now (after the one running, if any) and blocks until it has finished:
 * every device walked, its rows older than the horizon (wall clock at the sweep's start minus
 * retention_ms) deleted, in transactions of bounded work interleaved with other writes. Returns
 * 0, ERR_INVAL (no retention configured, or turned off before the sweep ended), ERR_IO (the
 * sweep is disabled, or the transaction that took the request failed), ERR_NOSPACE,
 * ERR_CLOSED, ERR_NOMEM. Any thread but the writer's. */
int store_retention_sweep(store_t *s);

/* Sets the retention (store_opts_t.retention_ms; 0: none) from now on (a reload): each step of
 * a sweep reads it for its horizon, and the time to the next sweep is a tenth of it from the
 * last sweep's end (within the bounds), so a shorter one sweeps sooner and deletes by it. 0
 * ends a sweep part-way (the next, once it is on again, starts afresh at once) and answers a
 * waiting store_retention_sweep with ERR_INVAL. The first that turns it on in a store opened
 * without it reads the clock saved in DIR/retention-clock first, as store_open does with one.
 * Any thread. */
void store_set_retention(store_t *s, int64_t retention_ms);

/* Reads the clock saved in DIR/retention-clock, as store_open does with a retention, unless it
 * was read (or the store opened with a retention): what store_set_retention does first when it
 * turns retention on. For a caller that lets other threads read the clock (store_retention_now)
 * before it sets the retention here: called before those reads, so the seed is not raced by one
 * of them (a vtime_steady_now storing its offset over it would lose the hold). Any thread. */
void store_retention_clock_ready(store_t *s);

/* The wall clock that retention's horizon is taken from (vtime_steady_now, shared with the
 * sweeps): a step back is followed at once, a step forward only once it has held for an hour
 * (logged both times), so that a clock stepped ahead by mistake neither deletes nor refuses
 * the readings it makes look old. In ms. Any thread. */
int64_t store_retention_now(store_t *s);

/* Writes a consistent copy of the database (as of one commit, the WAL's included) to dest, a
 * path that must not exist yet: created with mode 0600, filled by VACUUM INTO on a read-only
 * connection of its own, then fsynced; the writer goes on committing meanwhile. cancelled (may
 * be NULL) is polled every few milliseconds with arg, and at each try while the connection waits
 * for another process's lock (its waits are the readers': 10 s, within a stop's budget);
 * nonzero stops the copy. *bytes gets the copy's size. Returns 0; or ERR_NOSPACE (the volume
 * is full), ERR_CLOSED (cancelled), ERR_RESOURCE (a file not opened or an I/O failed for want of
 * descriptors or memory: EMFILE, ENFILE, ENOMEM; a later try may succeed), ERR_IO, ERR_CORRUPT,
 * ERR_NOMEM with a detailed reason (SQLite's message, with the system's when an OS call failed)
 * in errmsg, and then dest is removed. Any thread but the writer's (not from a commit hook or
 * callback). */
int store_snapshot(store_t *s, const char *dest, int (*cancelled)(void *arg), void *arg,
                   int64_t *bytes, char *errmsg, size_t errsize);

/* Restores a snapshot: resolves src (a symbolic link is followed) and opens the file it
 * leads to once, not following a link put in its place since, a regular file (else ERR_INVAL
 * before dir is touched), with no non-empty WAL nor hot rollback journal beside it (a copy
 * taken while vigild wrote, refused naming that file); takes dir's lock (refused while a
 * vigild has dir open); copies from that descriptor to a temporary file in dir (created
 * afresh, never through a link) and checks the copy is a vigil database this code opens
 * (application id, schema version, PRAGMA quick_check); then gives it its owner, syncs it and
 * renames it to dir/vigil.db, with vigil.db-wal and vigil.db-shm moved aside. dir is
 * created if missing, except as root (refused, ERR_INVAL: root would own it); its lock file
 * gets dir's owner. Refused (ERR_LOCKED, naming its pid; checked before the copy and again
 * before the rename) while another process has dir/vigil.db open through SQLite (holds a lock
 * on it: an sqlite3 shell that read it, a backup tool). *bytes gets the size copied. Returns
 * 0, or ERR_INVAL (not a vigil snapshot), ERR_CORRUPT, ERR_IO (also: dir in use by a
 * running vigild), ERR_LOCKED, ERR_NOSPACE, ERR_NOMEM, with errmsg saying why; the old
 * database is then left as it was (its WAL and shared memory, moved aside for the rename, put
 * back), and a lock file, or dir, this call created removed. Main thread, with no store open
 * on dir (a command of its own: vigild --restore). A damaged readings chunk in the copy
 * (checksum mismatch) refuses it (ERR_CORRUPT) unless accept_damaged is set: then the copy is
 * restored with such chunks in it, *damaged gets their number and, on success, errmsg names
 * them (device and time range, "; "-separated, as many as fit); *damaged is 0 otherwise. */
int store_restore(const char *dir, const char *src, int accept_damaged, int64_t *bytes,
                  int64_t *damaged, char *errmsg, size_t errsize);

/* Any thread. Copies the current counters. */
void store_stats_get(store_t *s, store_stats_t *out);

/* Any thread: 0 when the data folder and vigil.db at their paths are still the ones the store
 * opened, else ERR_NOTFOUND with why (size bytes) saying which is not (moved, deleted or
 * replaced while vigild runs). Two stat calls. */
int store_files_check(store_t *s, char *why, size_t size);

/* Any thread. The detailed message of the last failure the calling thread met in a call on s
 * (a read, a report, store_open's), kept for that thread alone; on a thread that met none since
 * its last waited-for write (store_write, store_device_put, ...), and on the writer thread, the
 * writer's last (a failed write's). "no error" if none. Borrowed: valid until the calling
 * thread's next call on s (the writer's: for a while after, until STORE_ERRMSG_SLOTS more),
 * and never after store_close. */
const char *store_errmsg(store_t *s);

#endif

/* storage/storage_int.h: internals shared by the storage/ files; not part of the public API.
 *
 * Files: storage.c (open, close, the queue's producer side, stats; its test hooks in testhooks.c),
 * schema.c (connections, pragmas, migrations, statements), blob.c (the exact value coding of one
 * (channel, value) pair), chunk.c (the chunk codec: one readings row, many timestamps of a device),
 * writer.c (the writer thread: maps, transactions), ops.c (the writer's writes of the asynchronous
 * puts: models, events, maintenance periods, detectors, prediction blocks), devidx.c (the writer's
 * index of devices by name), chunks.c (the writer's readings rows: append, overwrite merge,
 * compaction), pending.c (the newest readings of each device, kept in memory and in the readings
 * log until they fill a chunk; declared in pending_int.h), reader.c (the reader pool and the read
 * transactions; reader_int.h), query.c (queries, device reports), retention.c (the writer's
 * retention sweep: old readings rows and ended events deleted). Prediction blocks: storage.c
 * (puts), ops.c (their writes), query.c (their reads). The test hooks are declared in
 * testhooks_int.h (included at the end of this header), the row codings' varints in varint_int.h.
 *
 * Lock order: qmu before smu; rmu is never held with another store lock; pmu is taken alone
 * (a reader takes it while it holds its reader connection, never with rmu held; it waits on
 * pcond holding no reader connection: query.c's head comment). No lock is held
 * while a store_done_cb or a reader callback runs, except that the writer holds nothing at all. */
#ifndef VIGIL_STORAGE_INT_H
#define VIGIL_STORAGE_INT_H

#include "storage.h"
#include "nameidx.h"
#include "vtime.h"

#include <pthread.h>
#include <sys/types.h>
#include <stddef.h>
#include <sqlite3.h>
#include <stdint.h>
#include <time.h>

/* uthash reports allocation failure by leaving elt->hh.tbl NULL instead of calling exit(). */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

/* Schema version this code writes; a database with a larger user_version is refused. */
#define STORE_SCHEMA_VERSION 12
/* PRAGMA application_id of a vigil database ("vigl"). */
#define STORE_APPLICATION_ID 0x7669676c
/* The writer stops waiting for more work once this many readings are queued. */
#define STORE_COALESCE_READINGS 20000
/* After a transaction hit a full disk, submits fail with ERR_NOSPACE for this long. */
#define STORE_NOSPACE_BACKOFF_MS 1000
/* A maps reload that failed is tried again after STORE_RELOAD_RETRY_MS, doubled per failure in a
 * row up to STORE_RELOAD_RETRY_MAX_MS (store__maps_reload): readers answer ERR_AGAIN meanwhile,
 * and a reload failing for good costs one attempt every few seconds. */
#define STORE_RELOAD_RETRY_MS     1000
#define STORE_RELOAD_RETRY_MAX_MS 4000
/* A read waits at most this long for the counters a maps reload withdrew (store__pend_wait),
 * then answers ERR_AGAIN; a reload that fails meanwhile ends the wait at once, and a read that
 * comes after a failed reload, before its retry begins, does not wait. */
#define STORE_PEND_WAIT_MS    1000
#define STORE_BUSY_TIMEOUT_MS 10000
/* Once a stop has begun (store_stop_begin, or store_close), the waits for another process's
 * lock, the writer's and (session 56) the readers', wait this long in all, together: a stop
 * meeting an sqlite3 shell's BEGIN IMMEDIATE waited the busy timeout for each transaction and
 * again for the final checkpoint (measured 19.8 s for one pending write; docs/reliability.md,
 * session 55), and a read caught in another process's recovery of the WAL index 10 s more. */
#define STORE_STOP_BUSY_MS 5000
/* Bounds of the asynchronous model, event and detector writes queued or in the open
 * transaction; beyond them a put fails with ERR_BUSY (the first one is always taken). */
#define STORE_OPS_MAX       10000
#define STORE_OPS_BYTES_MAX (256u << 20)
/* Largest checkpoint or detector blob one put accepts. */
#define STORE_BLOB_MAX     (64u << 20)
#define STORE_ERRMSG_SLOTS 16
#define STORE_ERRMSG_LEN   256
/* Longest encoding of one (channel idx, value) pair in a readings blob. */
#define STORE_PAIR_MAX 20
/* WAL size (pages) at which a commit checkpoints the WAL into the database. */
#define STORE_CHECKPOINT_PAGES 16384
/* Fields per point whose channel the writer remembers from the device's previous point, and
 * the longest channel name it keeps beside each (longer ones are compared in the channel). */
#define STORE_CHAN_MEMO      16
#define STORE_CHAN_MEMO_NAME 12
/* A readings row (chunk) holds at most STORE_CHUNK_POINTS timestamps and STORE_CHUNK_CELLS
 * values (unless one point alone has more), and its timestamps span at most STORE_CHUNK_SPAN_MS
 * (t_last - t0), so a range query starts its index search at from - STORE_CHUNK_SPAN_MS. */
#define STORE_CHUNK_POINTS  1024
#define STORE_CHUNK_CELLS   16384
#define STORE_CHUNK_SPAN_MS 3600000
/* Rows of fewer points are small; compaction merges a device's newest rows of fewer than
 * STORE_CHUNK_PARTIAL points each (those within one span of its newest timestamp) into one. A
 * device with STORE_COMPACT_ROWS small rows is compacted inside the next transaction; with fewer,
 * when the writer is idle. */
#define STORE_CHUNK_SMALL   64
#define STORE_CHUNK_PARTIAL 256
#define STORE_COMPACT_ROWS  16
/* Most devices compacted by one transaction (within a batch's, or one idle transaction). */
#define STORE_COMPACT_PER_TX 256
/* Pending readings (pending.c): a device's newest readings wait in memory and in the readings
 * log until STORE_PEND_POINTS timestamps or STORE_PEND_BYTES bytes of them fill a chunk row. A
 * device whose oldest pending reading arrived STORE_PEND_AGE_MS ago, or is more log back than
 * STORE_LOG_SPAN_BYTES and STORE_LOG_SPAN_LIVE times all devices' pending bytes, is written out
 * anyway (at most STORE_PEND_STALE_PER_TX of them a transaction), so the log stays bounded: a
 * fleet whose devices all fill rows keeps about two times its pending bytes of log, and a
 * device that sends rarely does not pin the log for long. */
#define STORE_PEND_POINTS       128
#define STORE_PEND_BYTES        16384
#define STORE_PEND_AGE_MS       600000
#define STORE_LOG_SPAN_BYTES    (8u << 20)
#define STORE_LOG_SPAN_LIVE     3
#define STORE_PEND_STALE_PER_TX 8192
/* Retention (retention.c): one step of a sweep, inside a writer transaction, walks at most
 * STORE_RETAIN_DEVS_PER_TX devices and deletes at most STORE_RETAIN_ROWS_PER_TX readings rows and
 * STORE_RETAIN_EVENTS_PER_TX events, so a sweep never holds up ingest for long. A sweep starts at
 * open and then every retention / 10, within [STORE_RETAIN_PERIOD_MIN_MS, STORE_RETAIN_PERIOD_MS];
 * after a failed step it resumes STORE_RETAIN_PERIOD_MIN_MS later. */
#define STORE_RETAIN_DEVS_PER_TX   256
#define STORE_RETAIN_ROWS_PER_TX   256
#define STORE_RETAIN_EVENTS_PER_TX 256
/* Devices whose length bound (devices.ev_maxlen) a step sets again, at most: each costs one
 * search of that device's events (retention.c). */
#define STORE_RETAIN_BOUNDS_PER_TX 8
#define STORE_RETAIN_PERIOD_MS     60000
#define STORE_RETAIN_PERIOD_MIN_MS 1000
/* Bounds the decoder checks, so a malformed row cannot make it allocate without limit. */
#define STORE_CHUNK_IDX_MAX    (1 << 20)
#define STORE_CHUNK_DECODE_MAX (1 << 24)

/* One value of a chunk: (timestamp, channel idx, value). Arrays of cells are sorted by (ts, idx)
 * with at most one cell per (ts, idx). */
typedef struct store_cell {
    int64_t ts;
    int64_t idx;
    double v;
} store_cell_t;

/* Scratch buffers of the chunk codec (chunk.c); zero-initialise, free with store__codec_free. */
typedef struct store_codec {
    unsigned char *out;
    size_t out_cap;
    store_cell_t *cells;
    size_t cells_cap;
    uint32_t *pi, *colpi;
    size_t pi_cap, colpi_cap;
    size_t *cnt;
    size_t cnt_cap;
    double *colv;
    size_t colv_cap;
    int64_t *colk, *ts;
    size_t colk_cap, ts_cap;
    unsigned char *cover; /* decode: the points some channel holds, a bit each */
    size_t cover_cap;
} store_codec_t;

/* One queued unit of work for the writer. */
enum store_job_kind {
    JOB_BATCH,     /* readings; freed by the writer after its callback */
    JOB_PUT,       /* device put; the waiting thread frees it */
    JOB_DELETE,    /* device delete; the waiting thread frees it */
    JOB_EXEC,      /* test hook; the waiting thread frees it */
    JOB_PFLUSH,    /* test hook: every device's pending readings into rows; as JOB_EXEC */
    JOB_FLUSH,     /* store_flush's marker; the waiting thread frees it */
    JOB_RETAIN,    /* store_retention_sweep: called back when its sweep ends; waiter frees it */
    JOB_MODEL,     /* asynchronous: no callback, freed by the writer */
    JOB_EVENT,     /* asynchronous */
    JOB_MAINT,     /* waited for (maint_run): an operator's change */
    JOB_MAINT_DEL, /* waited for, as JOB_MAINT */
    JOB_DETECTOR,  /* asynchronous */
    JOB_PRED,      /* asynchronous; its pred.cb, if any, is called after the transaction */
    JOB_PRED_DROP, /* asynchronous */
    JOB_DBNAME,    /* waited for, as JOB_MAINT: a database name (dbnames.c) */
    JOB_ARRIVALS,  /* asynchronous: many devices' arrivals (arrivals.c) */
};

typedef struct store_job {
    struct store_job *next;
    enum store_job_kind kind;
    size_t nreadings; /* fields of a JOB_BATCH, counted against queue_max */
    batch_t batch;    /* JOB_BATCH: owned */
    store_done_cb cb; /* called exactly once with the status */
    void *arg;
    char *device; /* JOB_PUT, JOB_DELETE and the asynchronous kinds: owned */
    char *text;   /* JOB_PUT: attrs or NULL; JOB_EXEC: SQL; JOB_MODEL, JOB_EVENT: info; JOB_MAINT:
                     note or NULL; JOB_DBNAME: the name; owned */
    unsigned char *blob; /* JOB_MODEL: checkpoint or NULL; JOB_DETECTOR: state; owned */
    size_t blob_len;
    size_t op_bytes; /* asynchronous kinds: bytes held, counted against STORE_OPS_BYTES_MAX */
    union {
        struct {
            int64_t version, created_ms;
            int64_t keep_version; /* exempt from the keep_k trim (-1: none) */
            int keep_k;
        } model;
        struct {
            int64_t id, start_ts, end_ts; /* end_ts -1: still active */
        } event;
        struct {
            int64_t start_ms, end_ms; /* JOB_MAINT_DEL: start_ms only */
        } maint;
        struct {
            int64_t saved_ms, last_ts;
            size_t ckpt_len; /* blob is the state, then ckpt_len bytes of checkpoint (0: none) */
        } detector;
        struct {
            size_t n; /* blob holds n packed records (arrivals.c) */
        } arrivals;
        struct {
            int64_t seq, keep_from, t0, t1;
            uint32_t n, sum;
            int nch;
            store_pred_cb cb; /* NULL: none */
            void *arg;
        } pred;
    } u;
    int created; /* JOB_PUT result, read by the waiter after cb */
    int status;  /* the job's own failure (ERR_NOTFOUND ...), set by the writer */
} store_job_t;

/* Jobs that nobody waits for (fire and forget), counted against STORE_OPS_MAX. */
static inline int store__job_async(const store_job_t *j)
{
    return j->kind == JOB_MODEL || j->kind == JOB_EVENT || j->kind == JOB_DETECTOR ||
           j->kind == JOB_PRED || j->kind == JOB_PRED_DROP || j->kind == JOB_ARRIVALS;
}

/* Writer-side maps (writer thread only; built at open before the thread starts). */
typedef struct store_chan {
    UT_hash_handle hh;
    int64_t idx;
    size_t len;
    char name[]; /* NUL-terminated */
} store_chan_t;

typedef struct store_dev {
    /* Hot: what writing a run of points reads and writes (chunks.c, pending.c), together at the
     * start so write_batch prefetches a few cache lines of each device, not all of it (before
     * STORE_DEV_HOT_END). */
    int64_t id;
    int64_t first_ts, last_ts, points; /* rows and pending readings; first/last -1: no data */
    /* Pending readings (pending.c), writer thread only: points after every row's, coded as in
     * pending.c from pbase; pbuf is reallocated only under pmu (readers copy its first vlen
     * bytes). */
    unsigned char *pbuf;
    size_t plen, pcap, pnpts;
    int64_t pbase, plast; /* ts the first point is coded from; ts of the last point */
    uint64_t pdirect_txn; /* flushed in transaction w->txn: its runs go to rows directly */
    uint64_t pmark;       /* in w->pdevs of transaction w->txn */
    /* The channel of the last encoded point's i-th field (c NULL: none), with its idx and, when
     * it fits, its name, so the usual point compares its names here, not in the channels. */
    struct store_chan_memo {
        store_chan_t *c;
        int64_t idx;
        uint32_t len;
        char name[STORE_CHAN_MEMO_NAME]; /* the first len bytes, when len <= STORE_CHAN_MEMO_NAME */
    } memo[STORE_CHAN_MEMO];
    /* Cold: the rest, but for the end. */
    UT_hash_handle hh;
    store_chan_t *chans; /* name -> idx */
    int64_t nchans;      /* next channel idx */
    int64_t rlast;       /* newest ts in rows (valid when has_rows) */
    int has_rows;
    int touched;        /* changed by the open transaction */
    int small_rows;     /* small rows written since its last compaction */
    int compact_queued; /* in the writer's compact list */
    uint64_t pseq0;     /* log row of the oldest pending point */
    int64_t psince_ms;  /* when that point arrived (monotonic) */
    uint64_t plogoff0;  /* w->log_total before that log row */
    uint64_t log_seq;   /* devices.log_seq: log rows up to it hold none of its pending */
    int pflush_queued;  /* in w->pflush */
    int pdead;          /* deleted by the open transaction: freed at publication */
    struct store_dev *pprev, *pnext; /* the pending list, oldest pseq0 first */
    int in_plist;
    /* Published (pmu): the committed pending readings and counters, for readers. */
    size_t vlen;
    int64_t vbase;
    int64_t vpoints, vfirst, vlast;
    UT_hash_handle hid; /* s->pids: id -> device, under pmu */
    int in_pids;
    /* The end: what a batch's lookup and grouping read (write_batch passes 1 and 2), beside the
     * name the lookup compares. */
    size_t run0, nrun; /* write_batch's scratch: its points' place in the order */
    size_t len;
    char name[];
} store_dev_t;

/* The end of store_dev_t's hot fields for a point of at most 8 fields. */
#define STORE_DEV_HOT_END offsetof(store_dev_t, memo[8])

/* The writer's index of devices by name (devidx.c): nameidx.h's index of store_dev_t items. */
typedef nameidx_t store_devidx_t;

/* One reader connection and its statements. */
typedef struct store_reader {
    sqlite3 *db;
    sqlite3_stmt *dev_by_name, *dev_all, *dev_after, *chans, *range_asc, *range_desc, *json_obj;
    sqlite3_stmt *log_gen; /* the newest log row's seq: the snapshot's pending generation */
    store_codec_t codec;
    unsigned char *pbuf; /* a copy of a device's pending readings, and their cells */
    store_cell_t *pcells;
    size_t pbuf_cap, pcells_cap;
    int stuck; /* a read transaction did not end, logged (query.c read_end); its holder's */
    sqlite3_stmt *models_list, *model_get, *model_latest, *ev_dev, *ev_dev_active, *ev_all,
        *ev_all_active, *det_all;
    sqlite3_stmt *ckpt_get;                             /* a checkpoint's bytes by id (ckpt.c) */
    sqlite3_stmt *preds_read, *preds_all, *preds_bytes; /* prediction blocks (query.c) */
    sqlite3_stmt *maint_all; /* every device's maintenance periods (query.c) */
    sqlite3_stmt *arr_all;   /* every device's arrivals (arrivals.c) */
    struct store_reader *next_free;
    struct store *store;   /* reader_busy's (the store it reads) */
    int64_t busy_since_ms; /* reader_busy: when the current wait for a lock began (monotonic) */
    int64_t busy_last_ms;  /* ... its last call */
} store_reader_t;

/* The retention sweep's state (retention.c; writer thread only). */
typedef struct store_retain {
    sqlite3_stmt *rows, *events; /* prepared at the first step, finalized at the writer's exit */
    int disabled;                /* its statements could not be prepared: no sweeps */
    int active;                  /* a sweep is walking the devices */
    int64_t wall;                /* the wall clock its horizon is taken from */
    int64_t horizon;             /* wall minus the retention as this step read it */
    int64_t next_ms;             /* monotonic ms before which no step runs (unless periodic) */
    int periodic;                /* the next sweep is one period after ended_ms, not next_ms */
    int64_t ended_ms;            /* monotonic ms when the last sweep ended */
    int64_t start_ms;            /* monotonic ms when the sweep started */
    int walking;                 /* pos is valid (else the walk starts at the first device) */
    struct store_dev *pos;       /* the next device to visit (NULL: the walk has ended) */
    int events_done;             /* the sweep's events are deleted */
    int finishing;               /* the open transaction ends the sweep */
    struct store_job *wait_next, *wait_cur;   /* JOB_RETAIN waiting: for the next sweep; this one */
    uint64_t tx_chunks, tx_points, tx_events; /* the open transaction's deletions */
    int tx_step;                              /* the open transaction ran a step */
    double tx_seconds;
    /* The devices that lost an event as long as their length bound (devices.ev_maxlen) in this
     * sweep, whose bound is set again (bound: store__sql_ev_maxlen_set, prepared with rows and
     * events) once its events are deleted: ids, repeats allowed unless lower_sorted (then sorted
     * and unique). The last tx_bounds were set by the open transaction and leave at its commit;
     * bounds_set counts those committed since open (written under smu). noted_all: every device
     * was noted at the start of a sweep since open (the first one, unless out of memory). */
    sqlite3_stmt *bound;
    int64_t *lower;
    size_t nlower, caplower, tx_bounds;
    int lower_sorted;
    int noted_all;
    uint64_t bounds_set;
    /* The wall clock a sweep starting now takes its horizon from: test_wall_ms (atomic, test
     * hook store__test_retain_clock) unless 0, else clock's (held when stepped forward). */
    int64_t test_wall_ms;
    vtime_steady_t clock; /* also store_retention_now's, any thread */
    /* DIR/retention-clock was read into clock (atomic): at open with a retention, else when a
     * reload first turns retention on (store_set_retention); once a process. */
    int clock_loaded;
    /* The retention in ms (0: none; atomic): store_opts_t.retention_ms at open, then
     * store_set_retention's (a reload). Each step of a sweep reads it for its horizon, and the
     * writer for the period until the next sweep, so a change applies from the next step. */
    int64_t retention_ms;
} store_retain_t;

/* A maintenance step's consecutive failures, the monotonic ms before which it is not tried
 * again (STORE_RETAIN_PERIOD_MIN_MS doubling to STORE_RETAIN_PERIOD_MS), when a failure was
 * last logged (at most one warning per STORE_MAINT_LOG_MS) and how many since were not. */
typedef struct store_backoff {
    int fails;
    int unlogged;
    int64_t next_ms;
    int64_t logged_ms;
} store_backoff_t;

/* A device whose compaction failed, by id (the maps are reloaded after a failure): its
 * consecutive failures, the ms before which it is not queued again, and ok: compacted by the
 * open transaction (it leaves the list at the commit). */
typedef struct store_cfail {
    int64_t id;
    int fails;
    int ok;
    int64_t next_ms;
    int woken; /* its back-off's end was seen: queued then if it had small rows (maint.c) */
} store_cfail_t;

/* A device's compaction failures are remembered (w->cpast, maint.c) after its run in w->cfail
 * ended (a success, or forgotten): a new run resumes at the count kept, less one per
 * STORE_CFAIL_DECAY_MS since the last back-off's end, counted to at most STORE_CFAIL_FAILS_MAX
 * (the back-off is then STORE_RETAIN_PERIOD_MS), for at most STORE_CFAIL_PAST_MAX devices. */
#define STORE_CFAIL_DECAY_MS  60000
#define STORE_CFAIL_FAILS_MAX 6
#define STORE_CFAIL_PAST_MAX  1024

/* A device to compact again after a maps reload (store_writer_t.requeue). */
typedef struct store_requeue {
    int64_t id;
    int small_rows; /* -1: queued only if it has small rows (a back-off's end) */
} store_requeue_t;

#define STORE_MAINT_LOG_MS 60000
/* At most this many warnings of devices' first compaction failures a STORE_MAINT_LOG_MS. */
#define STORE_MAINT_LOG_FIRST 8
enum { MAINT_NONE, MAINT_COMPACT, MAINT_RETAIN, MAINT_PREPARE };

/* The writer thread's connection, statements and maps (writer thread only). */
typedef struct store_writer {
    sqlite3 *db;
    sqlite3_stmt *begin, *commit, *rollback, *dev_ins, *dev_upd, *dev_attrs, *chan_ins,
        *del_readings, *del_chans, *del_dev;
    /* the readings log (pending.c): insert a row; delete rows below ?1; rows above ?1 */
    sqlite3_stmt *log_ins, *log_del, *log_scan;
    /* readings rows: insert; rows with t0 in [?2, ?3] ascending; the newest ?2 rows' (t0,
     * t_last, n); delete rows with t0 in [?2, ?3] */
    sqlite3_stmt *chunk_ins, *chunk_range, *chunk_tail, *chunk_del;
    sqlite3_stmt *model_put, *model_trim, *event_put, *det_put, *del_models, *del_events, *del_dets;
    /* shared checkpoints (ckpt.c): find by bytes, add, delete ?1 if nothing refers to it */
    sqlite3_stmt *ckpt_find, *ckpt_add, *ckpt_gc;
    /* prediction blocks: a device's all; a put's trim; a put's insert */
    sqlite3_stmt *del_preds, *pred_trim, *pred_ins;
    /* maintenance periods: upsert by start; keep the newest ?2; a device's all; the one
     * starting at ?2 */
    sqlite3_stmt *maint_put, *maint_trim, *del_maint, *maint_del;
    sqlite3_stmt *dbname_ins;         /* a database name, unless known (dbnames.c) */
    sqlite3_stmt *arr_put, *del_arrs; /* arrivals (arrivals.c): upsert; a device's row */
    store_dev_t *devs;     /* name -> device; owns the devices and keeps them in id order */
    store_devidx_t didx;   /* name -> device, for lookups (devidx.c) */
    store_dev_t **touched; /* devices changed by the open transaction */
    size_t ntouched, touched_cap;
    store_codec_t codec;
    store_cell_t *cells, *mcells, *ocells; /* a run's cells; rows read back; a merge's output */
    size_t cells_cap, mcells_cap, ocells_cap;
    store_dev_t **compact; /* devices with small rows to compact (NULL: deleted meanwhile) */
    size_t ncompact, compact_cap;
    uint64_t compactions;  /* devices compacted since open (for tests and benchmarks) */
    uint64_t compact_runs; /* devices compaction ran for (compacted or not), for the tests */
    /* write_batch's order of a batch's points: grouped by device, then by ts, stable */
    struct store_ord {
        store_dev_t *d;
        int64_t ts;
        size_t i; /* index in the batch */
    } * ord;      /* 2 * npoints entries: the points in batch order, then sorted */
    size_t ord_cap;
    store_dev_t **run_devs; /* the batch's devices in order of first appearance */
    size_t run_devs_cap;
    nameidx_key_t *nhash; /* write_batch's scratch: each point's device key (store__devidx_key) */
    size_t nhash_cap;
    struct {
        int64_t idx;
        double v;
    } * pairs; /* encoding scratch */
    size_t pairs_cap;
    /* Pending readings (pending.c). */
    uint64_t log_last;     /* seq of the newest committed log row */
    uint64_t seq;          /* seq of the open transaction's log row: log_last + 1 */
    uint64_t txn;          /* transactions begun since open */
    unsigned char *logbuf; /* the open transaction's log row */
    size_t loglen, logcap;
    uint64_t log_total;         /* log payload bytes written (and replayed) since open */
    uint64_t pend_bytes;        /* sum of the devices' plen */
    uint64_t log_trunc;         /* rows below it are deleted */
    int pchanged;               /* the open transaction changed some pending readings */
    int publish_due;            /* set before COMMIT: the WAL hook publishes (pending.c) */
    store_dev_t *phead, *ptail; /* devices with pending readings, oldest pseq0 first */
    store_dev_t **pflush;       /* devices whose pending readings fill a row (NULL: deleted) */
    size_t npflush, pflush_cap;
    store_dev_t **pdevs; /* devices whose pending readings or counters the transaction changed */
    size_t npdevs, pdevs_cap;
    store_dev_t **created, **dead; /* devices created / deleted by the open transaction */
    size_t ncreated, created_cap, ndead, dead_cap;
    unsigned char *pscratch; /* an append's coded points */
    size_t pscratch_cap;
    store_cell_t *pcells; /* a flush's cells */
    size_t pcells_cap;
    int64_t next_id; /* id of the next device (ids are not reused while open) */
    int maps_stale;  /* the maps must be reloaded before the next transaction */
    int ready;       /* opened, migrated and prepared: close may checkpoint */
    uint64_t tx_readings, tx_points;
    uint64_t tx_ops, tx_ops_skipped; /* asynchronous ops written / skipped by the transaction */
    /* The transaction's arrivals upserts (arrivals.c): their time and rows, counted in the
     * stats once it commits (a failed transaction's are not: it wrote nothing). */
    double tx_arr_seconds;
    uint64_t tx_arr_rows;
    store_retain_t ret;
    /* Maintenance (compaction, retention) in a client transaction runs inside a savepoint
     * (writer.c): its statements, prepared at first use and finalized at the writer's exit;
     * consecutive maintenance failures; the monotonic ms before which no maintenance step runs
     * after one failed. */
    sqlite3_stmt *sp_begin, *sp_undo, *sp_release;
    /* Their back-offs, kept apart so that one step's success does not end another's: retention
     * steps; failures of no one step (the savepoint's statements, an idle transaction's commit),
     * which hold back every step; compaction, per device (cfail, chunks.c), bo_compact only for
     * its log. maint_what: the step that failed in the last transaction (MAINT_*), cfail_id its
     * device when compaction. */
    store_backoff_t bo_retain, bo_maint, bo_compact;
    store_cfail_t *cfail; /* in id order (store__cfail_find) */
    size_t ncfail, cfail_cap;
    int maint_what;
    int64_t cfail_id;
    char cfail_name[64]; /* the name of the device whose compaction failed (cut to fit) */
    /* Devices whose compaction failed, kept after their run in cfail ended (above): id, the
     * failures (decaying), next_ms the last back-off's end. */
    store_cfail_t *cpast;
    size_t npast, past_cap;
    /* Warnings of a device's first compaction failure (logged even within bo_compact's minute):
     * how many in the minute from cfirst_ms (at most STORE_MAINT_LOG_FIRST). */
    int cfirst_logged;
    int64_t cfirst_ms;
    /* Devices to queue for compaction again after a maps reload (chunks.c): those in the compact
     * list when the maps were freed and those the open transaction tried to compact, by id, with
     * their small rows. Emptied at each transaction's start and after the requeue. */
    store_requeue_t *requeue;
    size_t nrequeue, requeue_cap;
    int requeue_due; /* the maps were reloaded: requeue at the end of the transaction */
    int sp_broken;   /* test hook (atomic): the savepoint's statements fail to prepare */
    /* Test hooks (atomic, store__test_reload_hold): a maps reload stops after emptying the
     * published index (pgen -1) while reload_hold is set; reload_held says it stopped there. */
    int reload_hold, reload_held;
    /* Test hooks (atomic, store__test_publish_hold): a commit's publication (store__wal_hook)
     * stops, after COMMIT and before pgen moves, while publish_hold is set; publish_held says it
     * stopped there. */
    int publish_hold, publish_held;
    /* Test hooks (atomic, store__test_reload_fail): reload_fail more reloads fail (ERR_IO) as if
     * the database could not be read; reload_tries counts the reloads begun since open. */
    int reload_fail, reload_tries;
    /* A reload that failed (maps_stale still set) is tried again at reload_retry_ms (monotonic)
     * by the idle writer (wait_for_work), without waiting for a write: reload_fails in a row
     * make the wait STORE_RELOAD_RETRY_MS doubled up to STORE_RELOAD_RETRY_MAX_MS. */
    int reload_fails;
    int64_t reload_retry_ms;
    /* The last maintenance failure was a full disk or exhausted memory, and no step has written
     * since: compaction runs only in idle transactions (writer.c, maint_steps). */
    int maint_nospace;
    /* The database's page count after the last full disk (ERR_NOSPACE) in maintenance, while
     * bo_maint counts failures (0: none): a commit that grows it shows space is back. */
    int64_t nospace_pages;
    /* Consecutive failed client transactions (writer.c): after one, the idle work waits
     * store__backoff_ms(client_fails - 1) before it runs again (not for the next write). */
    int client_fails;
    /* The message of the failure that failed the last transaction, or of its undone
     * maintenance step (store_errmsg's slot, taken before the reload that follows sets one of
     * its own), for its log line and maint_failed's; NULL: none this transaction. */
    const char *tx_errmsg;
    int last_err; /* the last client transaction's status that wrote or failed (0: committed) */
    int64_t busy_since_ms; /* writer_busy: when the current wait for a lock began (monotonic) */
    int64_t busy_last_ms;  /* ... its last call */
} store_writer_t;

/* Test: the writer's state, copied under qmu by the writer between transactions
 * (store__test_wstate): at open, before each transaction's callbacks, and at each idle-work
 * check, so a test reads it without racing the writer; only in a store opened while
 * store__test_wstate_on was set (the copy, about 1.2 KB, costs nothing elsewhere). The first
 * STORE_TEST_CFAIL entries of the compaction back-off list (in id order). */
#define STORE_TEST_CFAIL 32
typedef struct store_test_wstate {
    size_t ncfail, ncompact;
    int compact0_small_rows; /* -1: the list is empty or its first entry deleted */
    int maint_nospace;
    store_backoff_t bo_maint, bo_compact;
    int64_t nospace_pages;
    uint64_t compact_runs; /* w->compact_runs */
    uint64_t didx_seed;    /* the device index's seed (devidx.c) */
    int chan_chain_max;    /* of the device store__test_wstate_dev named; -1: none */
    store_cfail_t cfail[STORE_TEST_CFAIL];
} store_test_wstate_t;

/* How many damaged readings rows a store remembers having logged (store__chunk_damaged). */
enum { STORE_DAMAGED_SEEN = 64 };

struct store {
    store_opts_t opts;
    char *dir, *db_path, *wal_path;
    int lock_fd; /* holds an exclusive flock on dir/vigil.lock while open */
    /* The data folder's and the database file's identity at open (store_files_check). */
    dev_t dir_dev, db_dev;
    ino_t dir_ino, db_ino;
    int ids_known;

    store_writer_t w; /* writer thread only (open/close touch it while the thread is not running) */
    pthread_t thread;
    int thread_started;

    pthread_mutex_t qmu;  /* guards: qhead, qtail, qreadings, qpending, qops, qop_bytes,
                             qops_pending, qop_bytes_pending, closing, hold, nospace_until_ms,
                             refused_ms, writer_waiting, hook, hook_arg, writer_waits, wpub,
                             wpub_dev */
    pthread_cond_t qcond; /* the writer waits here for work */
    store_job_t *qhead, *qtail;
    size_t qreadings;       /* readings queued or in the writer's open transaction */
    size_t qpending;        /* readings queued and not yet taken by the writer */
    size_t qops, qop_bytes; /* asynchronous ops (and bytes) queued or in the open transaction */
    size_t ops_max; /* qops's bound: STORE_OPS_MAX, or VIGIL_TEST_OPS_MAX's (store__test_ops_max) */
    /* store__busy_wait_from's deadline: STORE_BUSY_TIMEOUT_MS, or VIGIL_TEST_BUSY_MS's
     * (store__test_busy_ms); 0 (before store_open sets it): STORE_BUSY_TIMEOUT_MS. */
    int64_t busy_ms;
    size_t qops_pending, qop_bytes_pending; /* ... of them not yet taken by the writer */
    int closing;                            /* store_close has begun: no more submissions */
    int close_err; /* writer: the first failure of work taken while closing (store_close's) */
    int wal_kept;  /* teardown: the final checkpoint left the WAL (store_close's line says so) */
    /* atomic: 1 once a stop has begun: the waits for a lock of the writer and of the readers
     * share STORE_STOP_BUSY_MS (store_stop_begin, writer_busy, reader_busy) */
    int stop_busy;
    /* atomic: the time those waits have held the stop up since it began (two at once count
     * once), and where the time so counted ends (monotonic ms; schema.c's stop_waited_add) */
    int64_t stop_waited_ms;
    int64_t stop_mark_ms;
    int hold;                 /* test hook: the writer leaves the queue alone */
    int64_t nospace_until_ms; /* submits fail with ERR_NOSPACE until then (monotonic ms) */
    int64_t refused_ms;       /* the last submit so refused (monotonic ms; 0: none) */
    int writer_waiting;       /* the writer is in a coalescing wait */
    uint64_t writer_waits;    /* test: the idle writer's waits for work that returned */
    store_test_wstate_t wpub; /* test: the writer's state as last copied (maint.c) */
    char wpub_dev[64];        /* test: the device whose channel chains wpub measures */
    int wpub_on; /* test: wpub is copied (store__test_wstate_on at open; constant after) */
    store_commit_hook hook; /* set before the first submission; NULL: none */
    void *hook_arg;

    pthread_mutex_t rmu;     /* guards: rfree */
    pthread_cond_t rcond;    /* monotonic (mcond_init): a read's deadline bounds its wait */
    store_reader_t *readers; /* opts.readers of them */
    store_reader_t *rfree;

    pthread_mutex_t pmu; /* guards: pgen, pids, pfails, pfailed, pwaits, pstale, psyncs, and of
                            each device in pids: vlen, vbase, and pbuf against a reallocation
                            or free */
    int64_t pgen;        /* log seq the published pending readings match; -1 while rebuilt */
    store_dev_t *pids;   /* id -> device (hh hid) */
    /* Readers waiting for the withdrawn counters (store__pend_wait) or for a commit's
     * publication (store__pend_sync) wait on pcond (monotonic, with pmu), broadcast whenever
     * pgen changes (a publication, a reload's) and when a reload fails (pfails, the writer's
     * failed reloads since open, grows). pfailed: the last reload failed and no retry has
     * begun (set by store__pend_reload_failed, cleared when a reload begins and at
     * publication): a reader then answers at once instead of waiting through the back-off. */
    pthread_cond_t pcond;
    uint64_t pfails;
    int pfailed;
    int pwaits; /* test: store__pend_wait calls that found the counters withdrawn */
    int pstale; /* test: store__pend_copy calls that found another generation (a retry) */
    int psyncs; /* test: store__pend_sync calls that waited for a publication */
    /* Test hooks (atomic, store__test_pend_wait_ms, store__test_pend_sync_ms): a reader's
     * bound on the wait for withdrawn counters, and on its waits for a commit's publication,
     * in ms; 0: STORE_PEND_WAIT_MS, PEND_SYNC_MS. */
    int64_t pwait_ms;
    int64_t psync_ms;

    pthread_mutex_t smu; /* guards: stats (except queue fields and db_bytes), errmsg slots,
                          * damaged_seen, damaged_next */
    store_stats_t stats;
    /* Damaged readings rows already logged (store__chunk_damaged): hashes of (device, t0). */
    uint64_t damaged_seen[STORE_DAMAGED_SEEN];
    unsigned damaged_next;
    /* The writer thread's messages (other threads keep theirs: store__set_errmsg). */
    char errmsg[STORE_ERRMSG_SLOTS][STORE_ERRMSG_LEN];
    int errmsg_cur; /* slot of the last message, -1 none */
    /* Unique in the process: other threads' messages are kept per thread, by serial. */
    uint64_t serial;
};

/* devidx.c (writer thread only, but store__devidx_key: any thread) */
/* Gives the empty index x a secret seed of its own (nameidx_init_seeded; the public fallback,
 * logged, if getrandom fails). Once per store, before the first add: the seed then stays through
 * store__devidx_clear. */
void store__devidx_init(store_devidx_t *x);
/* The key of a device name in x (its hash with x's seed): computed once per name and passed to
 * every call below; its low 32 bits are also the bucket value of the writer's uthash tables. */
static inline nameidx_key_t store__devidx_key(const store_devidx_t *x, const char *name, size_t len)
{
    return nameidx_key(x, name, len);
}
/* The device named name[len], of key k, or NULL. Borrowed. */
struct store_dev *store__devidx_find(const store_devidx_t *x, nameidx_key_t k, const char *name,
                                     size_t len);
/* Prefetches the slot where a lookup of key k starts. */
void store__devidx_prefetch(const store_devidx_t *x, nameidx_key_t k);
/* The first device on k's probe path whose name has k's hash (it reads no device), or NULL:
 * what store__devidx_find will most likely return, for prefetching it. */
struct store_dev *store__devidx_peek(const store_devidx_t *x, nameidx_key_t k);
/* Adds d (not yet indexed; its name and len set) under k = store__devidx_key(x, its name).
 * 0, ERR_NOMEM or ERR_INVAL (x not seeded); then d is not indexed. */
int store__devidx_add(store_devidx_t *x, nameidx_key_t k, struct store_dev *d);
/* Removes d, added under key k, if it is indexed. */
void store__devidx_del(store_devidx_t *x, nameidx_key_t k, const struct store_dev *d);
/* Empties the index and frees its slots; its seed stays. */
void store__devidx_clear(store_devidx_t *x);

/* schema.c */
int store__writer_open(store_t *s, char *errmsg, size_t errsize);
void store__writer_close(store_t *s);
int store__readers_open(store_t *s, char *errmsg, size_t errsize);
void store__readers_close(store_t *s);
int store__status(sqlite3 *db, int rc);
/* One call of a connection's busy handler (SQLite's tries, from 0): waits a step for another
 * process's lock, STORE_BUSY_TIMEOUT_MS from the wait's start at most, and once a stop has begun
 * within the stop's budget (STORE_STOP_BUSY_MS in all; see schema.c). since and last are the
 * connection's own (one thread at a time). Returns 1 to try again, 0 to give up. Any thread. */
int store__busy_wait(store_t *s, int64_t *since, int64_t *last, int tries);
/* store__busy_wait with the wait's start given (since, vtime_mono_ms), not taken at tries 0:
 * STORE_BUSY_TIMEOUT_MS from since at most, for a caller whose waits share one deadline. */
int store__busy_wait_from(store_t *s, int64_t since, int64_t *last, int tries);
/* Test hook: creates (or migrates) the database at path up to schema version `version` only, as
 * an older vigil would have left it. Returns 0 or an error with errmsg set. */
int store__test_create(const char *path, int version, char *errmsg, size_t errsize);

/* blob.c: the pair coding (format in blob.c). */
/* Encodes one (idx, v) pair at p (room for STORE_PAIR_MAX bytes), in the shortest form that
 * decodes to v's exact bits; returns its length. */
size_t store__pair_put(unsigned char *p, int64_t idx, double v);
/* Decodes one pair at *p (advancing it); returns 0, or -1 if the blob is malformed. */
int store__pair_get(const unsigned char **p, const unsigned char *end, int64_t *idx, double *v);

/* chunk.c: the chunk codec (format in chunk.c). */
/* Encodes m >= 1 cells (sorted by (ts, idx), unique; t0 = cells[0].ts is the row's key, not
 * stored). *out points into c (valid until c's next use). Returns 0, ERR_INVAL (m == 0, cells
 * out of order or repeated, an idx out of range), ERR_NOMEM. */
int store__chunk_encode(store_codec_t *c, const store_cell_t *cells, size_t m,
                        const unsigned char **out, size_t *len);
/* Decodes a chunk whose first timestamp is t0 into cells sorted by (ts, idx); *cells points into
 * c (valid until c's next use). want selects the channels decoded: those idx < nwant with
 * want[idx] nonzero (borrowed for the call); NULL: every channel. The others' bytes are skipped,
 * not decoded, yet checked as a full decode checks them, so a malformed row is refused whatever
 * the selection. *ncells counts the selected cells (possibly 0), *npoints the chunk's points
 * (timestamps), selected or not. Returns 0, ERR_CORRUPT (malformed), ERR_NOMEM. */
int store__chunk_decode(store_codec_t *c, int64_t t0, const void *data, size_t len,
                        const unsigned char *want, size_t nwant, const store_cell_t **cells,
                        size_t *ncells, size_t *npoints);
/* How many of the m sorted cells go into the first chunk of a series cut by the caps (points,
 * cells, span); *npoints its points. Always at least one point's cells. */
size_t store__chunk_cut(const store_cell_t *cells, size_t m, size_t *npoints);
void store__codec_free(store_codec_t *c);

/* chunks.c (writer thread only) */
/* Writes device d's run of m points of b (r, in ts order, ties in batch order): new readings
 * appended as rows, older ones merged into the rows they overlap. Updates d's stats. */
int store__write_run(store_t *s, store_dev_t *d, const batch_t *b, const struct store_ord *r,
                     size_t m);
/* Inserts rows for m sorted unique cells of d (cut by the caps) and adds their points to d;
 * queue: a small row puts d in the compact list. */
int store__put_rows(store_t *s, store_dev_t *d, const store_cell_t *cells, size_t m, int queue);

/* Sets *dl (as mcond_deadline does) to ms from now, or to deadline_us (vtime_mono_us's clock;
 * 0: none) when that comes first: a read's wait for the writer, bounded by the store and by its
 * caller (an InfluxQL query's http.query_timeout). Any thread. */
void store__wait_deadline(struct timespec *dl, int64_t ms, int64_t deadline_us);

/* ops.c (writer thread): writes an asynchronous put's job (JOB_MODEL, JOB_EVENT, JOB_MAINT,
 * JOB_MAINT_DEL, JOB_DETECTOR, JOB_PRED, JOB_PRED_DROP) in the open transaction. Returns 0 (also
 * when skipped: unknown device, info not a JSON object) or the statement's failure. */
int store__op_write(store_t *s, store_job_t *j);

/* storage.c (any thread): queues an asynchronous job, or frees it. Returns 0, ERR_CLOSED,
 * ERR_NOSPACE (refusing writes), ERR_BUSY (the queue of puts is full). */
int store__op_enqueue(store_t *s, store_job_t *j);

/* arrivals.c (writer thread): a JOB_ARRIVALS' rows, upserted in the open transaction (unknown
 * devices skipped). Returns 0 or the statement's failure. */
int store__arrivals_write(store_t *s, store_job_t *j);

/* writer.c helpers shared with chunks.c (store__step_done also with maint.c and ops.c) */
int store__step_done(store_t *s, sqlite3_stmt *st);
int store__encode_point(store_t *s, store_dev_t *d, const batch_t *b, const batch_point_t *p,
                        size_t *npairs);
/* Grows *p (of *cap elements of sz bytes) to at least need elements, doubling. 0 or ERR_NOMEM.
 * (blob.c, chunk.c, chunks.c, schema.c and writer.c share it.) */
int store__grow(void **p, size_t *cap, size_t need, size_t sz);
/* Marks d's devices row to be written before the commit. */
int store__touch(store_writer_t *w, store_dev_t *d);

/* retention.c (writer thread only) */
/* A step of the retention sweep, inside the open transaction: starts a sweep when one is due,
 * then deletes within the per-transaction bounds. Returns 0 or the SQL error. */
int store__retain_step(store_t *s);
/* After the transaction (err: its status): counts a committed step's deletions, ends the sweep
 * (calling back its waiters) or, after a failure, restarts its walk later. */
void store__retain_end_tx(store_t *s, int err);
/* Monotonic ms when the next step is due; -1 when retention is off (now). */
int64_t store__retain_due_ms(store_t *s);
/* Takes a committed JOB_RETAIN: called back (status 0) when the next sweep to start has ended,
 * or ERR_INVAL if retention is off (now or before then: store__retain_off). */
void store__retain_wait(store_t *s, struct store_job *j);
/* While retention is off (store_set_retention 0): ends a sweep left part-way and answers its
 * waiters and those of the next with ERR_INVAL. Before each transaction and each idle wait. */
void store__retain_off(store_t *s);
/* A device leaves the maps (deletion): the walk moves past it. */
void store__retain_forget(store_writer_t *w, struct store_dev *d);
/* At the writer's exit: calls back the waiters with ERR_CLOSED, finalizes the statements. */
void store__retain_deinit(store_t *s);
/* store_open, before the writer starts (so before a write's refusal of old points or a sweep
 * reads the clock), or store_retention_clock_ready (store_set_retention turning retention on
 * in a store opened without it: no sweep runs yet): starts retention's clock from
 * DIR/retention-clock when it was saved in this boot (retention.c). Not the writer thread. */
void store__retain_clock_load(store_t *s);

/* writer.c */
void *store__writer_main(void *arg);
/* The writer connection's WAL hook: runs after each COMMIT; publishes the transaction's pending
 * readings, then checkpoints once the WAL holds STORE_CHECKPOINT_PAGES (as SQLite's
 * autocheckpoint would). Always SQLITE_OK: the commit has happened. */
int store__wal_hook(void *arg, sqlite3 *db, const char *name, int frames);
void store__job_free(store_job_t *j);
/* Writes the touched devices' rows (one UPDATE each); store__touched_clear empties the list. */
int store__flush_touched(store_t *s);
void store__touched_clear(store_writer_t *w);

/* maps.c (writer thread; store__maps_load also at open) */
/* Frees a device no map holds any more (its channels, pending buffer and itself). */
void store__dev_free(store_dev_t *d);
/* Loads the maps from the tables (at open, and by store__maps_reload). Returns 0, or ERR_IO,
 * ERR_NOMEM, ... with the maps left empty and stale (maps_stale) and the message set. */
int store__maps_load(store_t *s);
/* Writer thread: loads the stale maps again (store__maps_load). On a failure (or when they are
 * still stale after it) the next try is due at w->reload_retry_ms, STORE_RELOAD_RETRY_MS doubled
 * per failure in a row up to STORE_RELOAD_RETRY_MAX_MS later; the first failure of a run is
 * logged, and the success that ends it. Returns store__maps_load's status. */
int store__maps_reload(store_t *s);
void store__maps_free(store_writer_t *w);
/* The uthash bucket value of a channel name (the low bits of its key in w->didx). */
unsigned store__name_hash(const store_writer_t *w, const char *name, size_t len);
/* Adds a device to the map (no SQL); k is its name's key in w->didx. NULL when out of memory. */
store_dev_t *store__dev_add(store_writer_t *w, int64_t id, const char *name, size_t len,
                            nameidx_key_t k);
/* Adds a channel to d's map (no SQL); hv is store__name_hash of the name; *out (may be NULL) is
 * the entry. 0 or ERR_NOMEM. */
int store__chan_add(store_dev_t *d, int64_t idx, const char *name, size_t len, unsigned hv,
                    store_chan_t **out);

/* maint.c (writer thread): maintenance steps in a transaction and their back-offs */
/* Finalizes the savepoint's statements, frees the compaction failures' memory (writer's exit). */
void store__maint_finalize(store_writer_t *w);
/* 1 when a maintenance step may have work now (devices to compact, a retention step due). */
int store__maint_due(store_t *s);
/* Compaction, then a step of a due retention sweep, in the open transaction (idle: one of
 * maintenance only). 0 or the status; w->maint_what names the step that failed. */
int store__maint_steps(store_t *s, int idle);
/* The steps of a client transaction in their savepoint: 0 when the client's jobs can still
 * commit (*maint_err the steps' failure; *undone: rolled back, reload the maps), else the
 * status that fails the transaction. */
int store__maint_guarded(store_t *s, int *maint_err, int *undone);
/* Counts, logs and backs off a failed step (kept: 1 rolled back to the savepoint, 2 nothing
 * ran, 0 the transaction rolled back). */
void store__maint_failed(store_t *s, int err, int kept);
/* After a commit whose maintenance did not fail: ends the back-offs of the steps that ran. */
void store__maint_succeeded(store_t *s, int stepped, int compacted, int removed);
/* Ends b's run of failures, logging the recovery when there was one. */
void store__bo_log_ok(store_backoff_t *b, const char *what);
/* Between transactions (maps loaded): queues each device whose compaction back-off has passed
 * and that has small rows, so it does not wait for its next small row. */
void store__compact_wake(store_t *s);
/* Between transactions: the monotonic ms at which a back-off's end may give the idle work
 * something to do (a device's end not yet seen by store__compact_wake, or, with devices
 * queued, the general back-off's end; never before the latter), or -1 for none. Once that end
 * is seen (woken) or the queue is compacted, it moves on: the writer sleeps. */
int64_t store__maint_wake_ms(store_t *s);
/* After any committed transaction: ends the general back-off's run when the last failure was a
 * full disk and the database has grown since (space is back). */
void store__maint_committed(store_t *s);
/* Forgets device id's remembered compaction failures (it was deleted; ids can be reused). */
void store__compact_past_forget(store_writer_t *w, int64_t id);

/* dbnames.c (writer thread): a JOB_DBNAME's name, inserted unless the table has it. */
int store__dbname_write(store_t *s, store_job_t *j);
extern const char store__sql_dbname_ins[];

/* chunk.c: the checksum a summed chunk carries (FNV-1a, 32 bits, over t0 then the bytes after
 * its head; format in chunk.c). Any thread. */
uint32_t store__chunk_sum(int64_t t0, const void *data, size_t len);
/* storage.c: a readings row of device (its name; NULL: unknown) from t0 to t_last was found
 * damaged: sets the detailed message naming them, counts it in stats.chunks_damaged and logs
 * a warning the first time this store meets that row. Any thread. */
void store__chunk_damaged(store_t *s, const char *device, int64_t t0, int64_t t_last);

/* The checksum of a prediction block (FNV-1a, 32 bits), kept beside it in preds.sum. */
uint32_t store__pred_sum(const void *p, size_t len);

/* storage.c */
/* Sets the detailed message of a failure the calling thread met: the writer thread's in the
 * store's slots (store_errmsg on any thread that met none since its last write), any other
 * thread's in a buffer of its own (store_errmsg on that thread). Any thread. */
void store__set_errmsg(store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writer thread, at its start: marks it as s's writer for store__set_errmsg. */
void store__errmsg_writer(store_t *s);
/* reader.c (any thread): a reader connection taken without a deadline, and put back */
store_reader_t *store__reader_get(store_t *s);
void store__reader_put(store_t *s, store_reader_t *r);
/* Returns 0 when text is a JSON object, ERR_INVAL when not, ERR_IO on failure. Any thread. */
int store__json_object(store_t *s, const char *text);

/* SQL of the range and event queries, exported for the index tests. */
/* ckpt.c: the SQL that finds a checkpoint row by its bytes (?1 hash, ?2 bytes) and adds one. */
extern const char store__sql_ckpt_find[];
extern const char store__sql_ckpt_add[];
/* The id of the ckpts row holding p[len] (find and add: statements of store__sql_ckpt_find and
 * store__sql_ckpt_add on db), added with refs 0 when none does: the caller then makes a models
 * or detectors row refer to it (the triggers count it), or deletes it. 0 or an ERR_ code. */
int store__ckpt_add(sqlite3 *db, sqlite3_stmt *find, sqlite3_stmt *add, const void *p, size_t len,
                    int64_t *id);
/* Schema 4 -> 5: copies models_v4 into models, the checkpoints into ckpts. 0 or an ERR_ code
 * (errmsg set). */
int store__migrate_ckpts(sqlite3 *db, char *errmsg, size_t errsize);
extern const char store__sql_range_asc[];
extern const char store__sql_range_desc[];
extern const char store__sql_ev_dev[];
extern const char store__sql_ev_dev_active[];
extern const char store__sql_ev_all[];
extern const char store__sql_ev_all_active[];
extern const char store__sql_retain_rows[];
extern const char store__sql_retain_events[];
extern const char store__sql_ev_maxlen_set[];

#include "testhooks_int.h"

#endif

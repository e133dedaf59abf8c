/* storage/schema.c: the database file: connections, pragmas, schema migrations and the
 * prepared statements. The row formats are in blob.c (schema 1-2) and chunk.c (schema 3).
 *
 * Invariants: the on-disk schema is at PRAGMA user_version; migrations[i] takes version i to
 * i + 1 (with, for 2 -> 3, the conversion of the readings rows in C; 3 -> 4 adds the readings
 * log of pending.c; 4 -> 5 moves model checkpoints to the shared ckpts table, in C: ckpt.c;
 * 5 -> 6 adds the prediction blocks' table, 6 -> 7 the maintenance periods', 7 -> 8 the
 * InfluxDB database names' of dbnames.c, 8 -> 9 the events' length bound with its triggers,
 * 9 -> 10 the events' device name with its trigger and the fleet listing's indexes, 10 -> 11
 * the devices' arrivals of arrivals.c) and runs in
 * one transaction with the user_version bump, so a crash leaves either the old or the new
 * schema. A database newer than this code is refused before anything is written.
 *
 * Threads: store__writer_open / store__readers_open / *_close run on the owning thread while the
 * writer thread is not running. */
#include "storage_int.h"
#include "dbfiles_int.h"
#include "err.h"
#include "log.h"
#include "vtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Schema 5's reference counting of ckpts rows: CKPT_UNREF drops OLD's reference (and the row
 * with its last one), CKPT_TRIGGERS(t) keeps the count for table t (models or detectors). */
#define CKPT_UNREF                                                                                 \
    " UPDATE ckpts SET refs=refs-1 WHERE id=OLD.ckpt_id;"                                          \
    " DELETE FROM ckpts WHERE id=OLD.ckpt_id AND refs<=0;"
#define CKPT_TRIGGERS(t)                                                                           \
    "CREATE TRIGGER " t "_ckpt_ins AFTER INSERT ON " t " WHEN NEW.ckpt_id IS NOT NULL BEGIN"       \
    " UPDATE ckpts SET refs=refs+1 WHERE id=NEW.ckpt_id; END;"                                     \
    "CREATE TRIGGER " t "_ckpt_del AFTER DELETE ON " t                                             \
    " WHEN OLD.ckpt_id IS NOT NULL BEGIN" CKPT_UNREF " END;"                                       \
    "CREATE TRIGGER " t "_ckpt_upd AFTER UPDATE OF ckpt_id ON " t                                  \
    " WHEN OLD.ckpt_id IS NOT NEW.ckpt_id BEGIN"                                                   \
    " UPDATE ckpts SET refs=refs+1 WHERE id=NEW.ckpt_id;" CKPT_UNREF " END;"

/* Schema 9's length of an ended event (columns prefixed p, "NEW." in a trigger) for the bound in
 * devices.ev_maxlen: exact up to 2^62 ms, 0 when the end is before the start (the event then
 * starts after its end, itself at or after from), and infinite (9e999) when the difference is
 * larger or overflows, which turns the bound off rather than rounding it. */
/* (clang-format breaks these concatenations around the macros' arguments apart.) */
/* clang-format off */
#define EV_LEN(p)                                                                                  \
    "CASE WHEN " p "end_ts-" p "start_ts BETWEEN 0 AND 4611686018427387904 THEN " p "end_ts-" p    \
    "start_ts WHEN " p "end_ts<" p "start_ts THEN 0 ELSE 9e999 END"
#define EV_MAXLEN_TRIGGER(name, what)                                                              \
    "CREATE TRIGGER events_maxlen_" name " AFTER " what " ON events WHEN NEW.end_ts IS NOT NULL"   \
    " BEGIN UPDATE devices SET ev_maxlen=" EV_LEN("NEW.") " WHERE id=NEW.device_id AND"            \
    " ev_maxlen<" EV_LEN("NEW.") "; END;"
/* The bound of device dev computed from its ended events, as the migration does it and
 * retention redoes it (store__sql_ev_maxlen_set); the migration's text is unchanged by it. */
#define EV_MAXLEN_OF(dev)                                                                          \
    "coalesce((SELECT max(" EV_LEN("") ") FROM events WHERE device_id=" dev                        \
    " AND end_ts IS NOT NULL), 0)"
#define EV_MAXLEN_SCHEMA                                                                           \
    "ALTER TABLE devices ADD COLUMN ev_maxlen INTEGER NOT NULL DEFAULT 0;"                         \
    "UPDATE devices SET ev_maxlen=" EV_MAXLEN_OF("devices.id") ";"                                 \
    "CREATE INDEX devices_ev_maxlen ON devices(ev_maxlen);"                                        \
    "CREATE INDEX events_dev_active ON events(device_id, start_ts) WHERE end_ts IS NULL;"          \
    EV_MAXLEN_TRIGGER("ins", "INSERT") EV_MAXLEN_TRIGGER("upd", "UPDATE OF start_ts, end_ts")
#define EV_NAME_SCHEMA                                                                             \
    "ALTER TABLE events ADD COLUMN dev_name TEXT;"                                                 \
    "UPDATE events SET dev_name=(SELECT name FROM devices WHERE id=events.device_id);"             \
    "CREATE INDEX events_start_name ON events(start_ts, dev_name, id);"                            \
    "CREATE INDEX events_active_name ON events(start_ts, dev_name, id) WHERE end_ts IS NULL;"      \
    "DROP INDEX events_active;"                                                                    \
    "CREATE TRIGGER events_name AFTER INSERT ON events BEGIN UPDATE events SET"                    \
    " dev_name=(SELECT name FROM devices WHERE id=NEW.device_id)"                                  \
    " WHERE device_id=NEW.device_id AND id=NEW.id; END;"
/* clang-format on */

/* Each entry takes the schema from version i to i + 1. Append only; never edit a shipped one. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE devices(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_ms INTEGER,"
    " attrs TEXT NOT NULL DEFAULT '{}', first_ts INTEGER, last_ts INTEGER,"
    " points INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE channels(device_id INTEGER, idx INTEGER, name TEXT,"
    " PRIMARY KEY(device_id, idx), UNIQUE(device_id, name)) WITHOUT ROWID;"
    "CREATE TABLE readings(device_id INTEGER NOT NULL, ts INTEGER NOT NULL, data BLOB NOT NULL,"
    " PRIMARY KEY(device_id, ts)) WITHOUT ROWID;",
    /* 1 -> 2: the anomaly pipeline's state. Model checkpoints are the last column so listing
     * versions reads no checkpoint bytes (NULL-ness is in the record header). Events are found
     * by device and start, by start across the fleet, and the active ones through a partial
     * index that holds only them. */
    "CREATE TABLE models(device_id INTEGER NOT NULL, version INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, info TEXT NOT NULL, ckpt BLOB,"
    " PRIMARY KEY(device_id, version)) WITHOUT ROWID;"
    "CREATE TABLE events(device_id INTEGER NOT NULL, id INTEGER NOT NULL,"
    " start_ts INTEGER NOT NULL, end_ts INTEGER, info TEXT NOT NULL,"
    " PRIMARY KEY(device_id, id)) WITHOUT ROWID;"
    "CREATE INDEX events_device_start ON events(device_id, start_ts);"
    "CREATE INDEX events_start ON events(start_ts);"
    "CREATE INDEX events_active ON events(start_ts) WHERE end_ts IS NULL;"
    "CREATE TABLE detectors(device_id INTEGER PRIMARY KEY, saved_ms INTEGER NOT NULL,"
    " last_ts INTEGER NOT NULL, blob BLOB NOT NULL);",
    /* 2 -> 3: many timestamps of a device per readings row (chunk.c); migrate_chunks converts
     * the rows of version 2 (one per (device, ts)) and drops them. A rowid table with an index
     * rather than WITHOUT ROWID: a chunk of a few KiB spills onto overflow pages, and a search
     * of a WITHOUT ROWID B-tree reads the whole record of every overflowing cell it compares
     * (measured: a fifth of the writer's time in memcpy). Here the rows are appended in rowid
     * order and the searches run in the index, which also holds t_last and n, so finding the
     * rows of a range, or a device's newest rows, reads no row until its data is wanted. The
     * writer keeps (device_id, t0) unique (chunks.c). */
    "ALTER TABLE readings RENAME TO readings_v2;"
    "CREATE TABLE readings(device_id INTEGER NOT NULL, t0 INTEGER NOT NULL,"
    " t_last INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE INDEX readings_time ON readings(device_id, t0, t_last, n);",
    /* 3 -> 4: the readings log (pending.c): one row per transaction holding the devices' newest
     * readings until they fill chunk rows; devices.log_seq is the last log row holding none of
     * a device's pending readings. Row 0 (empty) starts the sequence: the newest row is never
     * deleted, so seq only grows. A version 3 database has no pending readings. */
    "CREATE TABLE readings_log(seq INTEGER PRIMARY KEY, data BLOB NOT NULL);"
    "INSERT INTO readings_log(seq, data) VALUES(0, x'');"
    "ALTER TABLE devices ADD COLUMN log_seq INTEGER NOT NULL DEFAULT 0;",
    /* 4 -> 5: checkpoints stored once (ckpt.c): models and detectors refer to a ckpts row by
     * ckpt_id, and a group's members, which serve one model, share its rows. The triggers keep
     * refs equal to the number of rows referring, and delete a row nobody refers to any more.
     * models becomes a rowid table with a unique index: without its checkpoint a version's row
     * is its metrics JSON (about 2 KB), which a WITHOUT ROWID table keeps on its leaf only up
     * to about 1 KB, spilling the rest to an overflow page of its own (4.7 KB on disk per
     * version, measured), while a rowid table's leaf holds it whole. store__migrate_ckpts
     * copies models_v4's rows, their checkpoints into ckpts, and drops it; the detectors'
     * index orders the restore by checkpoint, so each one is read and parsed once. */
    "CREATE TABLE ckpts(id INTEGER PRIMARY KEY, hash INTEGER NOT NULL,"
    " refs INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE INDEX ckpts_hash ON ckpts(hash);"
    "ALTER TABLE models RENAME TO models_v4;"
    "CREATE TABLE models(device_id INTEGER NOT NULL, version INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, info TEXT NOT NULL, ckpt_id INTEGER);"
    "CREATE UNIQUE INDEX models_version ON models(device_id, version);"
    "ALTER TABLE detectors ADD COLUMN ckpt_id INTEGER;"
    "CREATE INDEX detectors_ckpt ON detectors(ckpt_id, device_id);" CKPT_TRIGGERS("models")
        CKPT_TRIGGERS("detectors"),
    /* 5 -> 6: a device's older predictions (daemon/pipeline_ring.c's sealed blocks), one row a
     * block of about 1.3 KB (three to a page): a rowid table, whose leaf keeps such a row whole (a
     * WITHOUT ROWID one would spill it to an overflow page). sum is the block's checksum (preds.c).
     * The index covers the start-up listing (store_preds_list), so it reads no block. No
     * uniqueness: a put deletes the rows it replaces first. */
    "CREATE TABLE preds(device_id INTEGER NOT NULL, seq INTEGER NOT NULL, n INTEGER NOT NULL,"
    " nch INTEGER NOT NULL, t0 INTEGER NOT NULL, t1 INTEGER NOT NULL, sum INTEGER NOT NULL,"
    " data BLOB NOT NULL);"
    "CREATE INDEX preds_dev ON preds(device_id, seq, n, nch, t1);",
    /* 6 -> 7: a device's planned maintenance periods (wall-clock ms, [start_ms, end_ms)), the
     * newest STORE_MAINT_KEEP per device: the current one (end in the future) silences the
     * device, the past ones are left out of its trainings' windows. */
    "CREATE TABLE maint(device_id INTEGER NOT NULL, start_ms INTEGER NOT NULL,"
    " end_ms INTEGER NOT NULL, note TEXT, PRIMARY KEY(device_id, start_ms)) WITHOUT ROWID;",
    /* 7 -> 8: the database names InfluxDB clients registered (CREATE DATABASE, /write?db=), so
     * SHOW DATABASES lists them after a restart (dbnames.c); seq keeps the order of first use. */
    "CREATE TABLE dbnames(seq INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);",
    /* 8 -> 9: the bound that lets the overlap queries (store__sql_ev_*) skip old episodes.
     * devices.ev_maxlen is at least the length of every ended event the device has had (kept by
     * the triggers below, whoever writes events; computed here for the existing ones), so an
     * ended event overlapping [from, to) starts at or after from - ev_maxlen. Deleting events
     * leaves it alone (a bound that is too large only reads more), except that the retention
     * sweep sets it again for the devices that lost an event as long as it. devices_ev_maxlen
     * finds the fleet's largest, and events_dev_active a device's active events without its
     * ended ones. */
    EV_MAXLEN_SCHEMA,
    /* 9 -> 10: the fleet's listings in their page order from an index (session 43). Their
     * order is start, device name, id; the name was in devices alone, so a page inside a start
     * time shared by N events read and sorted all N (100,000 devices faulting at one timestamp:
     * 0.6 s a page, about 100 pages). events.dev_name is the device's name, set by the trigger
     * for every inserted row whoever writes it (a device is never renamed; its events go with
     * it), and the two indexes hold the order, so a page reads its own rows and no more. */
    EV_NAME_SCHEMA,
    /* 10 -> 11: each device's newest arrival (wall-clock ms its newest reading was committed)
     * and the arrival of its newest scored reading with that reading's timestamp (arrivals.c),
     * written by the stop and a periodic flush, so silence survives a restart (session 59). */
    "CREATE TABLE arrivals(device_id INTEGER PRIMARY KEY, seen_ms INTEGER NOT NULL,"
    " last_ms INTEGER NOT NULL, last_ts INTEGER NOT NULL);",
    /* 11 -> 12: nothing to change. Since session 69 reading chunks and readings log rows open
     * with a 0 byte and a checksum (chunk.c, pending.c), which an earlier vigild cannot read: a
     * chunk is "malformed" to it and a log row fails its open as "malformed". The bump makes an
     * earlier vigild refuse the database at open as newer than it, before it reads anything,
     * rather than with those words. Old rows stay as they are (read unchecked). */
    "",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == STORE_SCHEMA_VERSION,
               "STORE_SCHEMA_VERSION is the number of migrations");

/* Rows that may hold timestamps in [from, to): ?2 is from - STORE_CHUNK_SPAN_MS, ?4 is from. */
const char store__sql_range_asc[] = "SELECT t0, data, t_last FROM readings WHERE device_id=?1"
                                    " AND t0>=?2"
                                    " AND t0<?3 AND t_last>=?4 ORDER BY t0";
const char store__sql_range_desc[] = "SELECT t0, data, t_last FROM readings WHERE device_id=?1"
                                     " AND t0>=?2"
                                     " AND t0<?3 AND t_last>=?4 ORDER BY t0 DESC";

/* Events overlapping [?2, ?3), newest first, at most ?4 (-1: all); a device's name is ?5. With
 * a page's key (?6 a device's name, ?7 an event id; both NULL: none) the events that started at
 * ?3 itself are read too when they come after that key, (device, id) below (?6, ?7): the order
 * is start, then device name, then id, all descending, so a page may end inside one start time
 * and the next one go on from its last event (api__h_anomalies' before=). Two parts merged in
 * start order (SQLite's MERGE of a compound's ordered parts, which stops at the limit): the
 * active events from their partial indexes, and the ended ones from the start_ts indexes within
 * [?2 - ev_maxlen, ?3], so a range with few events reads those that can overlap instead of
 * every older one. The parts are disjoint (end_ts NULL or not) and the order is total, so the
 * rows, their order and the limit's cut are those of the one-part query. A device's run down
 * its (device_id, start_ts) indexes, whose rows hold the id. The fleet's run down
 * events_start_name and events_active_name (schema 10), which hold the whole order: the key is
 * one row-value bound on them, so a page reads the rows it lists and no others, however many
 * events share its start time (no sort). With ?6 NULL the row value is NULL at start ?3 itself
 * and true below it: start_ts<?3, as before. They bound with the fleet's largest ev_maxlen. */
/* clang-format off */
#define EV_DEV_COLS "SELECT ?5, id, start_ts, end_ts, info FROM events WHERE device_id=?1 AND "
#define EV_DEV_BELOW "start_ts<=?3 AND (start_ts<?3 OR ?5<?6 OR (?5=?6 AND id<?7))"
#define EV_DEV_ACTIVE EV_DEV_COLS "end_ts IS NULL AND " EV_DEV_BELOW
#define EV_DEV_ORDER  " ORDER BY start_ts DESC, id DESC LIMIT ?4"
const char store__sql_ev_dev[] =
    EV_DEV_ACTIVE " UNION ALL " EV_DEV_COLS EV_DEV_BELOW " AND start_ts>=?2-(SELECT ev_maxlen"
    " FROM devices WHERE id=?1) AND end_ts>=?2" EV_DEV_ORDER;
const char store__sql_ev_dev_active[] = EV_DEV_ACTIVE EV_DEV_ORDER;
#define EV_ALL_COLS                                                                                \
    "SELECT dev_name, id, start_ts, end_ts, info FROM events WHERE dev_name NOT NULL AND "
#define EV_ALL_BELOW "(start_ts, dev_name, id)<(?3, ?6, ?7)"
#define EV_ALL_ACTIVE EV_ALL_COLS "end_ts IS NULL AND " EV_ALL_BELOW
#define EV_ALL_ORDER  " ORDER BY 3 DESC, 1 DESC, 2 DESC LIMIT ?4"
const char store__sql_ev_all[] =
    EV_ALL_ACTIVE " UNION ALL " EV_ALL_COLS EV_ALL_BELOW " AND start_ts>=?2-(SELECT"
    " coalesce(max(ev_maxlen), 0) FROM devices) AND end_ts>=?2" EV_ALL_ORDER;
const char store__sql_ev_all_active[] = EV_ALL_ACTIVE EV_ALL_ORDER;
/* The retention sweep's deletion (retention.c): at most ?2 events that ended before ?1, found
 * through the events_start index (an event ends after it starts; the active ones, end_ts NULL,
 * never match). Each deleted event returns its device and whether its length reached the
 * device's bound: only then can the bound go down (it is at least every remaining length
 * already), so only then is it set again. */
const char store__sql_retain_events[] =
    "DELETE FROM events WHERE (device_id, id) IN (SELECT device_id, id FROM events"
    " WHERE start_ts<?1 AND end_ts<?1 LIMIT ?2) RETURNING device_id, " EV_LEN("")
    ">=(SELECT ev_maxlen FROM devices WHERE id=device_id)";
/* A device's (?1) bound set again from its remaining ended events, which the retention sweep
 * runs once a sweep for each device that lost an event as long as its bound (retention.c):
 * exactly the migration's value, so never below a remaining event's length, and lower once a
 * long one is gone. One search of the device's events. */
const char store__sql_ev_maxlen_set[] =
    "UPDATE devices SET ev_maxlen=" EV_MAXLEN_OF("?1") " WHERE id=?1";
/* clang-format on */

int store__status(sqlite3 *db, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_FULL:
        return ERR_NOSPACE;
    case SQLITE_NOMEM:
        return ERR_NOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return ERR_CORRUPT;
    case SQLITE_BUSY: /* past the busy timeout: another process holds the lock */
        return ERR_LOCKED;
    default:
        if (db != NULL && sqlite3_system_errno(db) == ENOSPC)
            return ERR_NOSPACE;
        return ERR_IO;
    }
}

/* Counts [from, now) of one connection's wait for a lock into the stop's budget, less what
 * another connection's wait has counted already (s->stop_mark_ms, where the counted time ends),
 * and returns the time counted in all (s->stop_waited_ms). Waits at the same time count once:
 * the budget is the time the stop was held up by locks, so readers waiting beside the writer
 * (each http-io thread's read in another process's WAL-index recovery) do not spend the
 * writer's share several times over (review, session 56). Any thread: the mark only grows,
 * and a compare-and-swap fails only when another wait has just moved it on (1024 tries bound
 * the loop regardless; past them nothing is counted, which only lets a wait go on longer). */
static int64_t stop_waited_add(store_t *s, int64_t from, int64_t now)
{
    int64_t mark = __atomic_load_n(&s->stop_mark_ms, __ATOMIC_ACQUIRE);
    for (int i = 0; i < 1024; i++) {
        int64_t start = from > mark ? from : mark;
        if (now <= start)
            break;
        if (__atomic_compare_exchange_n(&s->stop_mark_ms, &mark, now, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return __atomic_add_fetch(&s->stop_waited_ms, now - start, __ATOMIC_ACQ_REL);
    }
    return __atomic_load_n(&s->stop_waited_ms, __ATOMIC_ACQUIRE);
}

/* One call of a connection's busy handler (SQLite's, for the connection's wait for a lock;
 * since and last are the connection's own, one thread at a time): waits for another process's
 * lock as sqlite3_busy_timeout(STORE_BUSY_TIMEOUT_MS) would, but once a stop has begun
 * (s->stop_busy) the time the connections' waits hold the stop up is STORE_STOP_BUSY_MS in all
 * (stop_waited_add; waits at the same time count once): a budget of waiting, not a deadline, so
 * a long stop (saving many detectors) that meets a brief lock late still waits for it. Returns
 * 1 to try again, 0 to give up (SQLITE_BUSY). The writer's and the readers' handlers. Any
 * thread. */
int store__busy_wait(store_t *s, int64_t *since, int64_t *last, int tries)
{
    if (tries == 0)
        *since = vtime_mono_ms();
    return store__busy_wait_from(s, *since, last, tries);
}

/* store__busy_wait's wait with the caller's own start (since): STORE_BUSY_TIMEOUT_MS from it at
 * most (s->busy_ms: lower with the test hook VIGIL_TEST_BUSY_MS). The snapshot's connection
 * (snapshot.c, session 58) passes its first wait's start, so all its waits share one deadline; the
 * stop's budget still counts each wait from its own first call (tries 0). Any thread. */
int store__busy_wait_from(store_t *s, int64_t since, int64_t *last, int tries)
{
    int64_t now = vtime_mono_ms();
    int stopping = __atomic_load_n(&s->stop_busy, __ATOMIC_ACQUIRE);
    int64_t waited = 0;
    if (stopping)
        waited = stop_waited_add(s, tries == 0 ? now : *last, now);
    *last = now;
    int64_t left = since + (s->busy_ms > 0 ? s->busy_ms : STORE_BUSY_TIMEOUT_MS) - now;
    if (stopping && STORE_STOP_BUSY_MS - waited < left)
        left = STORE_STOP_BUSY_MS - waited;
    if (left <= 0)
        return 0;
    /* SQLite's own busy handler's steps (1 ms first, 100 ms at most), which readers had before
     * session 56: a brief lock costs a read a millisecond, not a fixed 50. */
    static const unsigned char step_ms[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
    const int n = (int)(sizeof step_ms / sizeof step_ms[0]);
    int64_t step = step_ms[tries < n ? tries : n - 1];
    sqlite3_sleep(left < step ? (int)left : (int)step);
    return 1;
}

/* The writer connection's busy handler (its thread, or the owning thread at open and close). */
static int writer_busy(void *arg, int tries)
{
    store_t *s = arg;
    return store__busy_wait(s, &s->w.busy_since_ms, &s->w.busy_last_ms, tries);
}

/* A reader connection's (the thread that took it). In WAL mode a reader meets a lock only
 * while another process recovers the WAL index; during a stop such a wait delayed the stop by
 * SQLite's whole busy timeout (the API's stop waits for the request), now it shares the stop's
 * budget (session 56). */
static int reader_busy(void *arg, int tries)
{
    store_reader_t *r = arg;
    return store__busy_wait(r->store, &r->busy_since_ms, &r->busy_last_ms, tries);
}

static int exec(sqlite3 *db, const char *sql, char *errmsg, size_t errsize)
{
    char *e = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &e);
    if (rc != SQLITE_OK) {
        if (errmsg != NULL)
            snprintf(errmsg, errsize, "%s: %s", sql, e ? e : sqlite3_errstr(rc));
        sqlite3_free(e);
        return store__status(db, rc) ? store__status(db, rc) : ERR_IO;
    }
    return 0;
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Writes one device's cells (m, sorted) as chunk rows through ins; returns 0 or a status. */
static int put_chunks(sqlite3 *db, sqlite3_stmt *ins, store_codec_t *codec, int64_t dev,
                      const store_cell_t *cells, size_t m)
{
    while (m > 0) {
        size_t np, k = store__chunk_cut(cells, m, &np);
        const unsigned char *data;
        size_t len;
        int err = store__chunk_encode(codec, cells, k, &data, &len);
        if (err)
            return err;
        sqlite3_bind_int64(ins, 1, dev);
        sqlite3_bind_int64(ins, 2, cells[0].ts);
        sqlite3_bind_int64(ins, 3, cells[k - 1].ts);
        sqlite3_bind_int64(ins, 4, (int64_t)np);
        sqlite3_bind_blob(ins, 5, data, (int)len, SQLITE_STATIC);
        int rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE)
            return store__status(db, rc) ? store__status(db, rc) : ERR_IO;
        cells += k;
        m -= k;
    }
    return 0;
}

/* Schema 2 -> 3: the rows of readings_v2 (one per (device, ts), blob.c's pairs sorted by idx)
 * become chunks, a device's timestamps cut by the caps as the writer cuts them; then
 * readings_v2 is dropped. Memory: at most two chunks' worth of cells. */
static int migrate_chunks(sqlite3 *db, char *errmsg, size_t errsize)
{
    sqlite3_stmt *sel = NULL, *ins = NULL;
    store_codec_t codec = {0};
    store_cell_t *cells = NULL;
    size_t m = 0, cap = 0;
    int64_t dev = 0, rows = 0;
    int err = 0, rc = sqlite3_prepare_v2(
                     db, "SELECT device_id, ts, data FROM readings_v2 ORDER BY device_id, ts", -1,
                     &sel, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "INSERT INTO readings(device_id, t0, t_last, n, data)"
                                " VALUES(?1, ?2, ?3, ?4, ?5)",
                                -1, &ins, NULL);
    if (rc != SQLITE_OK)
        goto sqlfail;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        int64_t d = sqlite3_column_int64(sel, 0), ts = sqlite3_column_int64(sel, 1);
        if (m > 0 && d != dev) {
            if ((err = put_chunks(db, ins, &codec, dev, cells, m)) != 0)
                break;
            m = 0;
        }
        dev = d;
        const unsigned char *p = sqlite3_column_blob(sel, 2);
        const unsigned char *end = p ? p + sqlite3_column_bytes(sel, 2) : p; /* empty: NULL */
        while (p < end) {
            if (store__grow((void **)&cells, &cap, m + 1, sizeof *cells)) {
                err = ERR_NOMEM;
                break;
            }
            if (store__pair_get(&p, end, &cells[m].idx, &cells[m].v)) {
                err = ERR_CORRUPT;
                break;
            }
            cells[m++].ts = ts;
        }
        if (err)
            break;
        rows++;
        /* Now and then, the complete chunks are written (the last one may grow further). */
        if (m >= 2 * STORE_CHUNK_CELLS) {
            size_t done = 0, np, k;
            while (err == 0 && done + (k = store__chunk_cut(cells + done, m - done, &np)) < m) {
                err = put_chunks(db, ins, &codec, dev, cells + done, k);
                done += k;
            }
            if (err)
                break;
            memmove(cells, cells + done, (m - done) * sizeof *cells);
            m -= done;
        }
    }
    if (err == 0 && rc != SQLITE_DONE)
        goto sqlfail;
    if (err == 0 && m > 0)
        err = put_chunks(db, ins, &codec, dev, cells, m);
    if (err) {
        snprintf(errmsg, errsize, "migrating readings to chunks (device %lld): %s", (long long)dev,
                 err == ERR_CORRUPT ? "malformed readings row" : err_str(err));
        goto out;
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    sel = ins = NULL;
    err = exec(db, "DROP TABLE readings_v2", errmsg, errsize);
    if (err == 0 && rows > 0)
        log_info("storage: %lld readings rows converted to chunks", (long long)rows);
    goto out;
sqlfail:
    snprintf(errmsg, errsize, "migrating readings to chunks: %s", sqlite3_errmsg(db));
    err = store__status(db, rc) ? store__status(db, rc) : ERR_IO;
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    store__codec_free(&codec);
    free(cells);
    return err;
}

/* Brings the schema to version `known` (STORE_SCHEMA_VERSION but in a test), or refuses a
 * database from a newer vigil. */
static int migrate(sqlite3 *db, int64_t known, char *errmsg, size_t errsize)
{
    int err = exec(db, "BEGIN IMMEDIATE", errmsg, errsize);
    if (err)
        return err;
    int64_t version = 0, appid = 0;
    int rc = pragma_int(db, "PRAGMA user_version", &version);
    if (rc == SQLITE_OK)
        rc = pragma_int(db, "PRAGMA application_id", &appid);
    if (rc != SQLITE_OK) {
        snprintf(errmsg, errsize, "reading schema version: %s", sqlite3_errmsg(db));
        err = store__status(db, rc) ? store__status(db, rc) : ERR_IO;
        goto fail;
    }
    if (appid != 0 && appid != STORE_APPLICATION_ID) {
        snprintf(errmsg, errsize, "not a vigil database (application_id %lld)", (long long)appid);
        err = ERR_IO;
        goto fail;
    }
    if (version > known) {
        snprintf(errmsg, errsize,
                 "database schema version %lld is newer than this vigild supports (%lld); "
                 "refusing to touch it",
                 (long long)version, (long long)known);
        err = ERR_IO;
        goto fail;
    }
    if (version == known) {
        exec(db, "COMMIT", NULL, 0);
        return 0;
    }
    for (int64_t v = version; v < known; v++) {
        err = exec(db, migrations[v], errmsg, errsize);
        if (err == 0 && v == 2)
            err = migrate_chunks(db, errmsg, errsize);
        if (err == 0 && v == 4)
            err = store__migrate_ckpts(db, errmsg, errsize);
        if (err)
            goto fail;
    }
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%lld; PRAGMA application_id=%d",
             (long long)known, STORE_APPLICATION_ID);
    err = exec(db, sql, errmsg, errsize);
    if (err == 0)
        err = exec(db, "COMMIT", errmsg, errsize);
    if (err)
        goto fail;
    log_info("storage: schema migrated from version %lld to %lld", (long long)version,
             (long long)known);
    return 0;
fail:
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

int store__test_create(const char *path, int version, char *errmsg, size_t errsize)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    int err = rc == SQLITE_OK ? migrate(db, version, errmsg, errsize) : ERR_IO;
    if (rc != SQLITE_OK)
        snprintf(errmsg, errsize, "opening %s: %s", path, sqlite3_errstr(rc));
    sqlite3_close(db);
    return err;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *errmsg, size_t errsize)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK) {
        snprintf(errmsg, errsize, "preparing %s: %s", sql, sqlite3_errmsg(db));
        return store__status(db, rc) ? store__status(db, rc) : ERR_IO;
    }
    return 0;
}

int store__writer_open(store_t *s, char *errmsg, size_t errsize)
{
    store_writer_t *w = &s->w;
    char path[4200];
    int rc = sqlite3_open_v2(store__sqlite_path(s->db_path, path, sizeof path), &w->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                 STORE_OPEN_NOFOLLOW,
                             NULL);
    if (rc != SQLITE_OK) {
        snprintf(errmsg, errsize, "opening %s: %s", s->db_path, store__open_errmsg(w->db, rc));
        return store__status(w->db, rc) == ERR_NOMEM ? ERR_NOMEM : ERR_IO;
    }
    /* SQLite opens a file it may not write read-only without a word: vigild then started,
     * said it was ready and answered /healthz 200 until the first reading failed (a restore by
     * hand that kept a backup's mode 0444, a file owned by another user). Refuse it here. */
    if (sqlite3_db_readonly(w->db, "main") == 1) {
        int e = access(s->db_path, W_OK) == 0 ? EACCES : errno;
        snprintf(errmsg, errsize,
                 "%s: the database can only be read (%s): vigild writes it; give the file to the "
                 "user vigild runs as, writable (chmod 640)",
                 s->db_path, strerror(e));
        return ERR_IO;
    }
    sqlite3_extended_result_codes(w->db, 1);
    sqlite3_busy_handler(w->db, writer_busy, s);
    char sql[256];
    /* The checkpoint runs inside the writer's COMMIT once the WAL holds STORE_CHECKPOINT_PAGES:
     * rarer checkpoints copy a page changed by many commits (each device's newest leaf) once
     * instead of once per 1000 pages (SQLite's default), and stall the writer less often
     * (measured in docs/benchmarks.md). journal_size_limit trims the WAL back to about that size
     * after a checkpoint. */
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA cache_size=%lld;"
             " PRAGMA wal_autocheckpoint=%d; PRAGMA journal_size_limit=%lld;"
             " PRAGMA temp_store=MEMORY",
             s->opts.sync_full ? "FULL" : "NORMAL", -(long long)s->opts.cache_mb * 1024,
             STORE_CHECKPOINT_PAGES, (long long)STORE_CHECKPOINT_PAGES * 4096);
    int err = exec(w->db, sql, errmsg, errsize);
    if (err)
        return err;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(w->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK) {
        int wal = sqlite3_step(st) == SQLITE_ROW &&
                  strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
        sqlite3_finalize(st);
        if (!wal) {
            snprintf(errmsg, errsize, "%s: cannot switch to WAL mode", s->db_path);
            return ERR_IO;
        }
    }
    err = migrate(w->db, STORE_SCHEMA_VERSION, errmsg, errsize);
    if (err)
        return err;
    /* Replaces the autocheckpoint hook (same threshold) so the pending readings are published
     * before a checkpoint runs inside COMMIT (writer.c). */
    sqlite3_wal_hook(w->db, store__wal_hook, s);
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&w->begin, "BEGIN IMMEDIATE"},
        {&w->commit, "COMMIT"},
        {&w->rollback, "ROLLBACK"},
        {&w->chunk_ins, "INSERT INTO readings(device_id, t0, t_last, n, data)"
                        " VALUES(?1, ?2, ?3, ?4, ?5)"},
        {&w->chunk_range, "SELECT t0, t_last, n, data FROM readings"
                          " WHERE device_id=?1 AND t0>=?2 AND t0<=?3 ORDER BY t0"},
        {&w->chunk_tail, "SELECT t0, t_last, n FROM readings WHERE device_id=?1"
                         " ORDER BY t0 DESC LIMIT ?2"},
        {&w->chunk_del, "DELETE FROM readings WHERE device_id=?1 AND t0>=?2 AND t0<=?3"},
        {&w->dev_ins, "INSERT INTO devices(name, created_ms, attrs, id, log_seq)"
                      " VALUES(?1, ?2, ?3, ?4, ?5)"},
        {&w->dev_upd,
         "UPDATE devices SET first_ts=?2, last_ts=?3, points=?4, log_seq=?5 WHERE id=?1"},
        {&w->log_ins, "INSERT INTO readings_log(seq, data) VALUES(?1, ?2)"},
        {&w->log_del, "DELETE FROM readings_log WHERE seq<?1"},
        {&w->log_scan, "SELECT seq, data FROM readings_log ORDER BY seq"},
        {&w->dev_attrs, "UPDATE devices SET attrs=?2 WHERE id=?1"},
        {&w->chan_ins, "INSERT INTO channels(device_id, idx, name) VALUES(?1, ?2, ?3)"},
        {&w->del_readings, "DELETE FROM readings WHERE device_id=?1"},
        {&w->del_chans, "DELETE FROM channels WHERE device_id=?1"},
        {&w->del_dev, "DELETE FROM devices WHERE id=?1"},
        /* The asynchronous puts insert nothing when info is not a JSON object (see writer.c);
         * the CASE keeps json_type from raising an error on malformed text. INSERT ... SELECT
         * needs its WHERE before ON CONFLICT anyway (SQLite's upsert parsing rule). */
        {&w->model_put, "INSERT INTO models(device_id, version, created_ms, info, ckpt_id)"
                        " SELECT ?1, ?2, ?3, ?4, ?5"
                        " WHERE CASE WHEN json_valid(?4) THEN json_type(?4)='object' ELSE 0 END"
                        " ON CONFLICT(device_id, version) DO UPDATE SET info=excluded.info,"
                        " ckpt_id=coalesce(excluded.ckpt_id, ckpt_id)"},
        /* Deletes the versions below the (?2 + 1)-th highest but ?3 (the one that serves);
         * none when there are fewer. */
        {&w->model_trim,
         "DELETE FROM models WHERE device_id=?1 AND version<>?3 AND version<(SELECT version"
         " FROM models WHERE device_id=?1 ORDER BY version DESC LIMIT 1 OFFSET ?2)"},
        {&w->event_put, "INSERT INTO events(device_id, id, start_ts, end_ts, info)"
                        " SELECT ?1, ?2, ?3, ?4, ?5"
                        " WHERE CASE WHEN json_valid(?5) THEN json_type(?5)='object' ELSE 0 END"
                        " ON CONFLICT(device_id, id) DO UPDATE SET start_ts=excluded.start_ts,"
                        " end_ts=excluded.end_ts, info=excluded.info"},
        {&w->det_put, "INSERT INTO detectors(device_id, saved_ms, last_ts, blob, ckpt_id)"
                      " VALUES(?1, ?2, ?3, ?4, ?5)"
                      " ON CONFLICT(device_id) DO UPDATE SET saved_ms=excluded.saved_ms,"
                      " last_ts=excluded.last_ts, blob=excluded.blob, ckpt_id=excluded.ckpt_id"},
        {&w->ckpt_find, store__sql_ckpt_find},
        {&w->ckpt_add, store__sql_ckpt_add},
        {&w->ckpt_gc, "DELETE FROM ckpts WHERE id=?1 AND refs<=0"},
        {&w->del_models, "DELETE FROM models WHERE device_id=?1"},
        {&w->del_events, "DELETE FROM events WHERE device_id=?1"},
        {&w->del_dets, "DELETE FROM detectors WHERE device_id=?1"},
        {&w->del_preds, "DELETE FROM preds WHERE device_id=?1"},
        {&w->maint_put, "INSERT INTO maint(device_id, start_ms, end_ms, note)"
                        " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(device_id, start_ms)"
                        " DO UPDATE SET end_ms=excluded.end_ms, note=excluded.note"},
        /* Deletes the periods below the ?2-th newest (none when there are fewer). */
        {&w->maint_trim, "DELETE FROM maint WHERE device_id=?1 AND start_ms<(SELECT start_ms"
                         " FROM maint WHERE device_id=?1 ORDER BY start_ms DESC LIMIT 1"
                         " OFFSET ?2 - 1)"},
        {&w->del_maint, "DELETE FROM maint WHERE device_id=?1"},
        {&w->maint_del, "DELETE FROM maint WHERE device_id=?1 AND start_ms=?2"},
        {&w->dbname_ins, store__sql_dbname_ins},
        {&w->arr_put, "INSERT INTO arrivals(device_id, seen_ms, last_ms, last_ts)"
                      " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(device_id) DO UPDATE SET"
                      " seen_ms=excluded.seen_ms, last_ms=excluded.last_ms,"
                      " last_ts=excluded.last_ts"},
        {&w->del_arrs, "DELETE FROM arrivals WHERE device_id=?1"},
        /* A put's trim: the blocks below ?2 (beyond the ring) and from ?3 on (the one it
         * replaces, and any a ring that started again left above it). */
        {&w->pred_trim, "DELETE FROM preds WHERE device_id=?1 AND (seq<?2 OR seq>=?3)"},
        {&w->pred_ins, "INSERT INTO preds(device_id, seq, n, nch, t0, t1, sum, data)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        err = prepare(w->db, stmts[i].sql, stmts[i].st, errmsg, errsize);
        if (err)
            return err;
    }
    w->ready = 1;
    return 0;
}

/* The final checkpoint gave up (SQLITE_BUSY): says so once, naming whose lock it met (session
 * 56). vigild's own readers cannot be the cause: teardown closes them before the writer, and the
 * snapshot's connection is closed before the store. What is left is another process holding one
 * of the WAL index's locks (bytes 120-127 of -shm: the write, checkpoint and recovery locks, the
 * read marks), seen with F_GETLK; or nobody, when it let go in the moment since the checkpoint
 * gave up. Either way the WAL keeps what was committed, and the next opening reads it. Called
 * after the writer's connection is closed; says nothing when that close emptied the WAL. */
static void wal_kept_say(store_t *s, int nlog, int ncopied)
{
    char shm[4300], who[160];
    /* The close, the last connection's, checkpoints once more: when the other process let go
     * meanwhile it emptied the WAL and removed it, and nothing stays. */
    struct stat st;
    snprintf(shm, sizeof shm, "%s-wal", s->db_path);
    if (stat(shm, &st) != 0 || st.st_size == 0)
        return;
    s->wal_kept = 1;
    snprintf(shm, sizeof shm, "%s-shm", s->db_path);
    pid_t pid = store__lock_holder(shm, 120, 8);
    if (pid > 0)
        snprintf(who, sizeof who,
                 "another process (pid %ld: an sqlite3 shell, a backup tool) "
                 "holds a lock on the database",
                 (long)pid);
    else if (pid < 0) /* whose is not known: another pid namespace's (a container's) */
        snprintf(who, sizeof who,
                 "another process (an sqlite3 shell, a backup tool) holds a "
                 "lock on the database");
    else
        snprintf(who, sizeof who,
                 "another process held a lock on the database (it let go as "
                 "the stop's wait ended)");
    /* SQLite gives -1 for both when the checkpoint could not begin (another process holding
     * the checkpoint lock, or recovering the WAL index, which SQLite's wal.c checks before it
     * counts): the line then says nothing of the counts rather than "-1 pages". */
    char counts[96] = "";
    if (nlog >= 0)
        snprintf(counts, sizeof counts, " (%d pages, %d of them copied into the database)", nlog,
                 ncopied);
    log_warn("storage: the WAL was not emptied at close (%s): %s; %s-wal stays beside it%s, "
             "committed: the next start reads it from there",
             err_str(ERR_LOCKED), who, s->db_path, counts);
}

/* The final checkpoint failed for another reason than a lock (why: SQLite's words; a full
 * disk: the database file could not grow to take the WAL's pages): says so when the WAL is
 * still there after the close, whose own checkpoint may have emptied it. read68b: a stop on a
 * full disk left the whole database in the WAL (vigil.db 4 KB, -wal 4 MB) with no word, while
 * README said a clean stop leaves vigil.db whole. Nothing is lost (the next start reads the
 * WAL), but a copy of vigil.db alone is no copy of the data. */
static void wal_unemptied_say(store_t *s, const char *why)
{
    char wal[4300];
    struct stat st;
    snprintf(wal, sizeof wal, "%s-wal", s->db_path);
    if (stat(wal, &st) != 0 || st.st_size == 0)
        return;
    s->wal_kept = 1;
    log_warn("storage: the WAL was not emptied at close (%s): %s (%lld bytes) stays beside the "
             "database with commits that %s lacks, and the next start reads it from there; "
             "until then %s alone is no copy of the data: make room on the data volume and "
             "start vigild and stop it again (its line then says nothing of the WAL), or take a "
             "snapshot (POST /v1/admin/snapshot) once it has room",
             why, wal, (long long)st.st_size, s->db_path, s->db_path);
}

void store__writer_close(store_t *s)
{
    store_writer_t *w = &s->w;
    if (w->db == NULL)
        return;
    sqlite3_stmt *all[] = {
        w->begin,      w->commit,     w->rollback,  w->chunk_ins,  w->chunk_range, w->chunk_tail,
        w->chunk_del,  w->dev_ins,    w->dev_upd,   w->dev_attrs,  w->chan_ins,    w->del_readings,
        w->del_chans,  w->del_dev,    w->model_put, w->model_trim, w->event_put,   w->det_put,
        w->del_models, w->del_events, w->del_dets,  w->log_ins,    w->log_del,     w->log_scan,
        w->ckpt_find,  w->ckpt_add,   w->ckpt_gc,   w->del_preds,  w->pred_trim,   w->pred_ins,
        w->maint_put,  w->maint_trim, w->del_maint, w->maint_del,  w->dbname_ins,  w->arr_put,
        w->del_arrs};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    /* Leaves the WAL empty so the database is one self-contained file at rest; only for a
     * database this code opened successfully (a refused one is not touched). PRAGMA optimize is
     * left out: every query is a primary-key search, and an ANALYZE of a large readings table
     * would delay shutdown. */
    int nlog = 0, ncopied = 0, rc = SQLITE_OK;
    char why[160] = "";
    if (w->ready)
        rc = sqlite3_wal_checkpoint_v2(w->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &nlog, &ncopied);
    if (rc != SQLITE_OK) /* read before the close frees the connection's message */
        snprintf(why, sizeof why, "%s",
                 (rc & 0xff) == SQLITE_FULL ? "no space left on the data volume"
                                            : sqlite3_errmsg(w->db));
    sqlite3_close(w->db);
    w->db = NULL;
    /* Said after the close: store__lock_holder opens and closes -shm, and closing any
     * descriptor of a file drops every POSIX lock the process holds on it, SQLite's own on
     * -shm included while its connection is open (second reader, session 56). */
    if ((rc & 0xff) == SQLITE_BUSY)
        wal_kept_say(s, nlog, ncopied);
    else if (rc != SQLITE_OK)
        wal_unemptied_say(s, why);
}

static int reader_open(store_t *s, store_reader_t *r, char *errmsg, size_t errsize)
{
    char path[4200];
    int rc =
        sqlite3_open_v2(store__sqlite_path(s->db_path, path, sizeof path), &r->db,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | STORE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK) {
        snprintf(errmsg, errsize, "opening %s for reading: %s", s->db_path,
                 store__open_errmsg(r->db, rc));
        return ERR_IO;
    }
    sqlite3_extended_result_codes(r->db, 1);
    r->store = s;
    sqlite3_busy_handler(r->db, reader_busy, r);
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&r->dev_by_name, "SELECT id, name, attrs, created_ms, first_ts, last_ts, points"
                          " FROM devices WHERE name=?1"},
        {&r->dev_all, "SELECT id, name, attrs, created_ms, first_ts, last_ts, points"
                      " FROM devices ORDER BY name"},
        {&r->dev_after, "SELECT id, name, attrs, created_ms, first_ts, last_ts, points"
                        " FROM devices WHERE name>?1 ORDER BY name"},
        {&r->chans, "SELECT idx, name FROM channels WHERE device_id=?1 ORDER BY idx"},
        {&r->range_asc, store__sql_range_asc},
        {&r->range_desc, store__sql_range_desc},
        {&r->json_obj, "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) END"},
        {&r->log_gen, "SELECT max(seq) FROM readings_log"},
        {&r->models_list, "SELECT version, created_ms, info, ckpt_id IS NOT NULL FROM models"
                          " WHERE device_id=?1 ORDER BY version"},
        {&r->model_get, "SELECT m.version, m.info, c.data FROM models m LEFT JOIN ckpts c"
                        " ON c.id=m.ckpt_id WHERE m.device_id=?1 AND m.version=?2"},
        {&r->model_latest, "SELECT m.version, m.info, c.data FROM models m LEFT JOIN ckpts c"
                           " ON c.id=m.ckpt_id WHERE m.device_id=?1"
                           " ORDER BY m.version DESC LIMIT 1"},
        {&r->ev_dev, store__sql_ev_dev},
        {&r->ev_dev_active, store__sql_ev_dev_active},
        {&r->ev_all, store__sql_ev_all},
        {&r->ev_all_active, store__sql_ev_all_active},
        /* Those sharing a checkpoint one after another (the detectors_ckpt index's order),
         * so store_detectors_load reads each checkpoint once. */
        {&r->det_all, "SELECT d.name, t.last_ts, t.blob, t.ckpt_id, t.saved_ms FROM detectors t"
                      " CROSS JOIN devices d ON d.id=t.device_id ORDER BY t.ckpt_id, t.device_id"},
        {&r->ckpt_get, "SELECT data FROM ckpts WHERE id=?1"},
        {&r->preds_read, "SELECT seq, n, nch, sum, data FROM preds WHERE device_id=?1"
                         " AND seq>=?2 AND seq<?3 ORDER BY seq"},
        {&r->preds_all, "SELECT d.name, p.seq, p.n, p.nch, p.t1 FROM preds p CROSS JOIN devices d"
                        " ON d.id=p.device_id ORDER BY p.device_id, p.seq"},
        {&r->preds_bytes, "SELECT count(*), coalesce(sum(length(data)), 0) FROM preds"
                          " WHERE device_id=?1"},
        {&r->maint_all, "SELECT d.name, m.start_ms, m.end_ms, m.note FROM maint m"
                        " CROSS JOIN devices d ON d.id=m.device_id ORDER BY m.device_id,"
                        " m.start_ms"},
        {&r->arr_all, "SELECT d.name, a.seen_ms, a.last_ms, a.last_ts FROM arrivals a"
                      " CROSS JOIN devices d ON d.id=a.device_id ORDER BY a.device_id"},
    };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        int err = prepare(r->db, stmts[i].sql, stmts[i].st, errmsg, errsize);
        if (err)
            return err;
    }
    return 0;
}

static void reader_close(store_reader_t *r)
{
    sqlite3_stmt *all[] = {r->dev_by_name, r->dev_all,       r->dev_after, r->chans,
                           r->range_asc,   r->range_desc,    r->json_obj,  r->models_list,
                           r->model_get,   r->model_latest,  r->ev_dev,    r->ev_dev_active,
                           r->ev_all,      r->ev_all_active, r->det_all,   r->log_gen,
                           r->ckpt_get,    r->preds_read,    r->preds_all, r->preds_bytes,
                           r->maint_all,   r->arr_all};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    store__codec_free(&r->codec);
    free(r->pbuf);
    free(r->pcells);
    sqlite3_close(r->db);
    memset(r, 0, sizeof *r);
}

int store__readers_open(store_t *s, char *errmsg, size_t errsize)
{
    s->readers = calloc((size_t)s->opts.readers, sizeof *s->readers);
    if (s->readers == NULL) {
        snprintf(errmsg, errsize, "out of memory");
        return ERR_NOMEM;
    }
    for (int i = 0; i < s->opts.readers; i++) {
        int err = reader_open(s, &s->readers[i], errmsg, errsize);
        if (err)
            return err;
        s->readers[i].next_free = s->rfree;
        s->rfree = &s->readers[i];
    }
    return 0;
}

void store__readers_close(store_t *s)
{
    if (s->readers == NULL)
        return;
    for (int i = 0; i < s->opts.readers; i++)
        reader_close(&s->readers[i]);
    free(s->readers);
    s->readers = NULL;
    s->rfree = NULL;
}

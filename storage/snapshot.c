/* storage/snapshot.c: an online, consistent copy of the database (store_snapshot).
 *
 * The copy is `VACUUM INTO` run on a read-only connection of its own, opened for the call and
 * closed after it: one read transaction of SQLite, so the copy is the database as of one
 * commit, WAL included. In WAL mode a reader never blocks the writer: the writer goes on
 * committing while the copy runs, and its checkpoints are PASSIVE (writer.c), so they only
 * stop at the copy's snapshot and the WAL grows meanwhile instead of the writer waiting. The
 * copy is a compact database in rollback-journal mode (no -wal beside it), with the schema
 * version and application id of the original, so vigild opens it as it is.
 *
 * VACUUM INTO does not fsync what it writes: the file is synced here before the call returns,
 * so a caller that renames it afterwards never publishes a copy the page cache still holds.
 *
 * Threads: any thread but the writer's; it takes none of the store's locks. */
#include "storage_int.h"
#include "dbfiles_int.h"
#include "pending_int.h"
#include "err.h"
#include "log.h"
#include "path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* SQLite virtual machine steps between two calls of the cancel check: a few milliseconds. */
#define SNAPSHOT_PROGRESS_OPS 10000

/* The copy's cancel check, and its connection's busy handler's state (store_snapshot's, for
 * the connection's life): busy_since_ms is the start of the copy's first wait for a lock (-1
 * before any), the one deadline of all its waits. */
struct cancel {
    int (*cancelled)(void *arg);
    void *arg;
    store_t *store;
    int64_t busy_since_ms, busy_last_ms;
};

/* SQLite's progress handler: nonzero interrupts the VACUUM (SQLITE_INTERRUPT). */
static int progress(void *arg)
{
    const struct cancel *c = arg;
    return c->cancelled(c->arg);
}

static int is_cancelled(const struct cancel *c)
{
    return c->cancelled != NULL && c->cancelled(c->arg);
}

/* The copy's connection's busy handler (session 57). In WAL mode a read-only connection meets
 * a lock only while another process recovers the WAL index, at the start of each read (the
 * room check's pragmas, then VACUUM INTO's). It had sqlite3_busy_timeout (10 s at each), and
 * SQLite does not call the progress handler during a busy wait, so a stop (which cancels the
 * snapshot first) waited up to 30 s for the request before the store's close (measured 35 s
 * with the final checkpoint's 5 s). Now a cancelled copy gives up at once, and the waits are
 * the store's, within the stop's budget once a stop has begun. Since session 58 they share one
 * deadline, STORE_BUSY_TIMEOUT_MS from the first (store__busy_wait_from): a snapshot is one
 * request, and outside a stop it waited 10 s at each of its three reads, 30 s for one POST, for
 * the same lock (the recovery that held the first read back holds the next ones). The reads
 * follow each other at once, so the deadline is, in effect, a budget of waiting. */
static int snapshot_busy(void *arg, int tries)
{
    struct cancel *c = arg;
    if (is_cancelled(c))
        return 0;
    if (c->busy_since_ms < 0)
        c->busy_since_ms = vtime_mono_ms();
    return store__busy_wait_from(c->store, c->busy_since_ms, &c->busy_last_ms, tries);
}

/* Creates dest empty with mode 0600 (VACUUM INTO takes an empty file, and would otherwise
 * create it with the process's default mode). Returns 0 or ERR_IO / ERR_NOSPACE. */
static int create_empty(const char *dest, char *errmsg, size_t errsize)
{
    int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(errmsg, errsize, "creating %s: %s", dest, strerror(e));
        return err_from_errno(e);
    }
    close(fd);
    return 0;
}

/* fsyncs dest and reads its size. Returns 0 or ERR_IO / ERR_NOSPACE. */
static int sync_file(const char *dest, int64_t *bytes, char *errmsg, size_t errsize)
{
    int fd = open(dest, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int err = 0;
    if (fd < 0 || fsync(fd) != 0 || fstat(fd, &st) != 0) {
        int e = errno;
        snprintf(errmsg, errsize, "syncing %s: %s", dest, strerror(e));
        err = err_from_errno(e);
    } else {
        *bytes = (int64_t)st.st_size;
    }
    if (fd >= 0)
        close(fd);
    return err;
}

/* SQLite's message for rc on db, with the system's reason when an OS call failed: SQLite says
 * only "unable to open database file" whether the file is missing, not readable or the process
 * is out of descriptors (EMFILE), and that difference is what the operator must act on.
 * sqlite3_system_errno holds the errno of the last failed OS call, meaningful only after
 * SQLITE_CANTOPEN and SQLITE_IOERR. rc is the failed call's code, read when db is NULL (an
 * open that could not even allocate its handle). Returns buf. */
static const char *sqlite_reason(sqlite3 *db, int rc, char *buf, size_t size)
{
    const char *msg = store__open_errmsg(db, rc);
    int code = (db ? sqlite3_errcode(db) : rc) & 0xff, e = db ? sqlite3_system_errno(db) : 0;
    int os = code == SQLITE_CANTOPEN || code == SQLITE_IOERR;
    if (os && e > 0 && sqlite3_extended_errcode(db) != SQLITE_CANTOPEN_SYMLINK)
        snprintf(buf, size, "%s: %s", msg, strerror(e));
    else
        snprintf(buf, size, "%s", msg);
    return buf;
}

/* The code of a failed SQLite call (rc, on db: NULL when the open could not allocate its
 * handle): store__status's, but ERR_RESOURCE when an OS call failed for want of descriptors or
 * memory (sqlite3_system_errno after SQLITE_CANTOPEN or SQLITE_IOERR, as sqlite_reason reads
 * it), and ERR_IO for a code store__status has none for. */
static int sqlite_status(sqlite3 *db, int rc)
{
    int code = (db ? sqlite3_errcode(db) : rc) & 0xff, e = db ? sqlite3_system_errno(db) : 0;
    if ((code == SQLITE_CANTOPEN || code == SQLITE_IOERR) && err_from_errno(e) == ERR_RESOURCE)
        return ERR_RESOURCE;
    int err = store__status(db, rc);
    return err ? err : ERR_IO;
}

/* One integer of a PRAGMA, or -1. */
static int64_t pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Opens the read-only connection the copy is made on, its busy handler snapshot_busy (with c,
 * which must outlive it). Returns 0 or an ERR_ with errmsg (*db to be closed either way). */
static int open_reader(store_t *s, sqlite3 **db, struct cancel *c, char *errmsg, size_t errsize)
{
    char path[4200];
    int rc =
        sqlite3_open_v2(store__sqlite_path(s->db_path, path, sizeof path), db,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | STORE_OPEN_NOFOLLOW, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(*db, 1);
        sqlite3_busy_handler(*db, snapshot_busy, c);
        return 0;
    }
    char why[300];
    snprintf(errmsg, errsize, "opening %s: %s", s->db_path,
             sqlite_reason(*db, rc, why, sizeof why));
    return sqlite_status(*db, rc);
}

/* Checks that dest's volume has room for the copy and some to spare, so that a snapshot never
 * fills the volume (the database's own, by default): a copy that did would fail ingest's
 * commits until its partial file was removed. The copy is the pages in use (page_count -
 * freelist_count, times page_size: VACUUM INTO writes no free page); the margin, an eighth of
 * that plus 1 MiB, leaves room for the WAL, which grows during the copy, and for the readings
 * after it. Returns 0, or ERR_NOSPACE with errmsg (nothing created). A check that cannot be
 * made lets the copy go on: it would fail as before, on the full volume. */
static int check_room(sqlite3 *db, const char *dest, char *errmsg, size_t errsize)
{
    char dir[4200];
    struct statvfs vfs;
    const char *slash = strrchr(dest, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - dest) : 1, slash ? dest : ".");
    int64_t pages = pragma_int(db, "PRAGMA page_count");
    int64_t unused = pragma_int(db, "PRAGMA freelist_count");
    int64_t page = pragma_int(db, "PRAGMA page_size");
    if (pages < 0 || unused < 0 || page < 0 || statvfs(dir, &vfs) != 0)
        return 0;
    int64_t copy = (pages - unused) * page, need = copy + copy / 8 + (1 << 20);
    int64_t avail = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
    if (avail >= need)
        return 0;
    snprintf(errmsg, errsize,
             "not enough free space in %s for a copy of the database: %lld bytes free, %lld "
             "needed (%lld in use, plus an eighth and 1 MiB to spare)",
             dir, (long long)avail, (long long)need, (long long)copy);
    return ERR_NOSPACE;
}

/* Runs VACUUM INTO dest on db. Returns 0 or an ERR_ with errmsg. */
static int vacuum_into(store_t *s, sqlite3 *db, const char *dest, struct cancel *c, char *errmsg,
                       size_t errsize)
{
    sqlite3_stmt *st = NULL;
    if (c->cancelled)
        sqlite3_progress_handler(db, SNAPSHOT_PROGRESS_OPS, progress, c);
    char path[4200]; /* the connection's STORE_OPEN_NOFOLLOW applies to dest too */
    int rc = sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, store__sqlite_path(dest, path, sizeof path), -1,
                               SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int err = 0;
    if (rc != SQLITE_DONE) {
        char why[300];
        snprintf(errmsg, errsize, "copying %s into %s: %s", s->db_path, dest,
                 sqlite_reason(db, rc, why, sizeof why));
        /* Cancelled: interrupted, or a wait for a lock given up (snapshot_busy). Another
         * failure (a full volume, an I/O error) keeps its own code, in a stop too. */
        int code = rc & 0xff;
        int gave_up = code == SQLITE_BUSY && is_cancelled(c);
        err = code == SQLITE_INTERRUPT || gave_up ? ERR_CLOSED : sqlite_status(db, rc);
    }
    sqlite3_finalize(st);
    return err;
}

int store_snapshot(store_t *s, const char *dest, int (*cancelled)(void *arg), void *arg,
                   int64_t *bytes, char *errmsg, size_t errsize)
{
    struct cancel c = {cancelled, arg, s, -1, 0};
    sqlite3 *db = NULL;
    *bytes = 0;
    errmsg[0] = '\0';
    int err = open_reader(s, &db, &c, errmsg, errsize);
    if (err == 0)
        err = check_room(db, dest, errmsg, errsize);
    if (err == 0 && (err = create_empty(dest, errmsg, errsize)) == 0) {
        err = vacuum_into(s, db, dest, &c, errmsg, errsize);
        if (err == 0)
            err = sync_file(dest, bytes, errmsg, errsize);
        if (err)
            unlink(dest); /* a partial copy must not take space, nor look like a database */
    }
    sqlite3_close(db);
    store__wal_files_mode(s->db_path); /* this connection's open of an empty -wal: dbfiles.c */
    return err;
}

/* ---- restore ------------------------------------------------------------------------------ */

/* How a refused copy's message ends: a data folder copied with cp while vigild wrote is not a
 * whole database, and these are the two ways to get one. */
#define RESTORE_COPY_ADVICE                                                                        \
    "take a snapshot with POST /v1/admin/snapshot, or stop vigild before copying vigil.db"

/* What a file that is not a regular one is, for a message. */
static const char *file_kind(mode_t mode)
{
    return S_ISFIFO(mode)   ? "a FIFO"
           : S_ISDIR(mode)  ? "a directory"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "of an unknown kind";
}

/* Refuses path when it exists and is not a regular file (a link is followed): opening a FIFO
 * blocks until something writes to it (the restore hung), a directory or a device is no copy of
 * a database, and reading one as SQLite's file or journal does odd things. Checked before
 * anything opens it. A path that cannot be stat'ed is left to the open that follows to report.
 * Returns 0, or ERR_INVAL with errmsg naming the file, what it is and why (why). */
static int check_regular(const char *path, const char *why, char *errmsg, size_t errsize)
{
    struct stat st;
    if (stat(path, &st) != 0 || S_ISREG(st.st_mode))
        return 0;
    snprintf(errmsg, errsize, "%s is %s, not a regular file: %s", path, file_kind(st.st_mode), why);
    return ERR_INVAL;
}

/* Refuses src when a file beside it (a write-ahead log, a hot rollback journal) holds part of
 * the database: copy_file copies src alone, so such a copy would be restored without the
 * commits in its WAL, or with the half-written pages of a transaction its journal would roll
 * back: a stale or torn database. Either must be a regular file if it exists (check_regular),
 * before it is read: a FIFO there blocked the restore for good. (SQLite itself would roll a hot
 * journal back at the first open; the read-only open check_copy makes cannot, and fails with
 * SQLite's "attempt to write a readonly database".) A journal counts as SQLite counts one as hot:
 * not empty, first byte not zero. Returns 0, or ERR_INVAL with errmsg naming the file and why. */
static int check_beside(const char *src, char *errmsg, size_t errsize)
{
    char path[4200];
    struct stat st;
    unsigned char first = 0;
    int err = 0;
    for (int i = 0; i < 2 && err == 0; i++) {
        snprintf(path, sizeof path, "%s%s", src, i ? "-journal" : "-wal");
        err = check_regular(path, "SQLite would read it as part of the database beside it", errmsg,
                            errsize);
    }
    if (err)
        return err;
    snprintf(path, sizeof path, "%s-wal", src);
    if (stat(path, &st) == 0 && st.st_size > 0) {
        snprintf(errmsg, errsize,
                 "%s: a write-ahead log beside the source is not empty: the database was copied "
                 "while open (by a running or killed vigild), its newest commits may be in the "
                 "log only, and without them the copy would be stale or torn: " RESTORE_COPY_ADVICE,
                 path);
        return ERR_INVAL;
    }
    snprintf(path, sizeof path, "%s-journal", src);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int hot = fd >= 0 && read(fd, &first, 1) == 1 && first != 0;
    if (fd >= 0)
        close(fd);
    if (hot) {
        snprintf(errmsg, errsize,
                 "%s: a hot rollback journal beside the source: it was copied in the middle of a "
                 "transaction, whose pages SQLite would have to roll back: " RESTORE_COPY_ADVICE,
                 path);
        return ERR_INVAL;
    }
    return 0;
}

/* Opens src for the copy (task files3, session 53). src may be a symbolic link an operator
 * made (a "current.db" pointing to the newest snapshot): its name is resolved first (realpath,
 * into real: the file, and the folder its -wal and -journal are in, check_beside), then that
 * file is opened without following a link (O_NOFOLLOW: a link there now was put in the file's
 * place after the resolve, by someone who may write that folder while the restore runs as
 * root, and is refused) and fstat'ed on the descriptor: a regular file (O_NONBLOCK: the open of
 * a FIFO does not wait for a writer; a directory, a device or a FIFO is no copy of a database).
 * Everything after reads this descriptor: the name is not opened again, so what is checked
 * (the copy) is what was copied. Returns 0 with *fd and real (size bytes), or ERR_INVAL /
 * ERR_IO with errmsg. */
static int open_source(const char *src, int *fd, char *real, size_t size, char *errmsg,
                       size_t errsize)
{
    static const char why[] = "a restore copies a snapshot file, as POST /v1/admin/snapshot "
                              "writes one";
    char resolved[PATH_MAX];
    struct stat st;
    *fd = -1;
    if (realpath(src, resolved) == NULL) {
        snprintf(errmsg, errsize, "%s: cannot read it (%s)", src, strerror(errno));
        return ERR_IO;
    }
    snprintf(real, size, "%s", resolved);
    store__test_hold_point("restore-open");
    *fd = open(real, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0 && errno == ELOOP) {
        snprintf(errmsg, errsize,
                 "%s changed while the restore read it: it led to %s, a symbolic link now (put "
                 "there since, by someone who may write that folder); the restore follows no "
                 "link there: make sure no one changes the snapshot, then restore again",
                 src, real);
        return ERR_INVAL;
    }
    if (*fd < 0) {
        snprintf(errmsg, errsize, "%s: cannot read it (%s)", src, strerror(errno));
        return ERR_IO;
    }
    if (fstat(*fd, &st) == 0 && S_ISREG(st.st_mode))
        return 0;
    snprintf(errmsg, errsize, "%s is %s, not a regular file: %s", src, file_kind(st.st_mode), why);
    close(*fd);
    *fd = -1;
    return ERR_INVAL;
}

/* Removes the files SQLite may have made beside tmp (a WAL-mode copy opened read-only by name,
 * as check_copy did before session 54, got a -wal and -shm): what a crash of an older vigild's
 * restore left. The caller holds the data folder's lock. */
static void remove_beside(const char *tmp)
{
    static const char *const ext[] = {"-wal", "-shm", "-journal"};
    char path[4200];
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        snprintf(path, sizeof path, "%s%s", tmp, ext[i]);
        unlink(path);
    }
}

/* What a damaged copy's header tells of its cause (read68b: "database disk image is malformed"
 * named none): a snapshot is in rollback-journal mode (its header's versions 1), vigil.db in
 * WAL mode (2). A WAL-mode file is a copy of vigil.db, and one that SQLite cannot read whole was
 * most likely copied without the -wal that held part of it: a stop that could not empty the WAL
 * (a full disk: its log says so) leaves the database there. Appends that to errmsg; nothing for
 * a header it cannot read or one in rollback-journal mode. */
static void wal_copy_note(int out, char *errmsg, size_t errsize)
{
    unsigned char hdr[20];
    if (pread(out, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr ||
        memcmp(hdr, "SQLite format 3", 16) != 0 || hdr[18] != 2 || hdr[19] != 2)
        return;
    size_t n = strlen(errmsg);
    snprintf(errmsg + n, errsize - n,
             "; it is a vigil.db (WAL mode, not a snapshot), most likely copied without its "
             "vigil.db-wal, which held the rest of it (a stop that could not empty the WAL, on "
             "a full disk, says so in its log): start vigild on that data folder with room on "
             "its volume and stop it, then copy vigil.db, or " RESTORE_COPY_ADVICE);
}

/* Checks every readings row of db (schema ver) as a read would, checksum and format: a row that
 * fails is named (device, time range) in errmsg and the copy refused (session 69: quick_check
 * checks SQLite's pages, not what vigil wrote in them), unless accept is set: then every such
 * row is counted in *damaged and named in errmsg ("; "-separated, as many as fit) and the check
 * goes on. Then the readings log rows' checksums (a damaged one always refuses). Returns 0 or
 * ERR_CORRUPT / ERR_NOMEM / ERR_IO with errmsg. */
static int check_rows(const char *src, sqlite3 *db, int64_t ver, int accept, int64_t *damaged,
                      char *errmsg, size_t errsize)
{
    if (ver < 4)
        return 0; /* before chunks and the log (the open converts them) */
    sqlite3_stmt *st = NULL;
    store_codec_t codec = {0};
    int err = 0, rc = sqlite3_prepare_v2(db,
                                         "SELECT coalesce(d.name, '?'), r.t0, r.t_last, r.data "
                                         "FROM readings r LEFT JOIN devices d ON d.id = "
                                         "r.device_id",
                                         -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = SQLITE_ROW;
    while (rc == SQLITE_ROW && err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const store_cell_t *c;
        size_t nc, np;
        err = store__chunk_decode(&codec, sqlite3_column_int64(st, 1), sqlite3_column_blob(st, 3),
                                  (size_t)sqlite3_column_bytes(st, 3), NULL, 0, &c, &nc, &np);
        if (err == ERR_CORRUPT && accept) {
            size_t n = strlen(errmsg);
            snprintf(errmsg + n, errsize - n,
                     "%sdamaged readings chunk of device \"%s\" from %lld to %lld ms",
                     n ? "; " : "", (const char *)sqlite3_column_text(st, 0),
                     (long long)sqlite3_column_int64(st, 1),
                     (long long)sqlite3_column_int64(st, 2));
            (*damaged)++;
            err = 0;
        } else if (err == ERR_CORRUPT)
            snprintf(errmsg, errsize,
                     "%s: damaged readings chunk of device \"%s\" from %lld to %lld ms "
                     "(checksum mismatch or malformed); --accept-damaged restores it with that "
                     "chunk left unserved",
                     src, (const char *)sqlite3_column_text(st, 0),
                     (long long)sqlite3_column_int64(st, 1),
                     (long long)sqlite3_column_int64(st, 2));
        else if (err)
            snprintf(errmsg, errsize, "%s: checking its readings: %s", src, err_str(err));
    }
    sqlite3_finalize(st);
    st = NULL;
    if (err == 0 && rc == SQLITE_DONE)
        rc =
            sqlite3_prepare_v2(db, "SELECT seq, data FROM readings_log", -1, &st, NULL) == SQLITE_OK
                ? SQLITE_ROW
                : SQLITE_ERROR;
    while (rc == SQLITE_ROW && err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t head;
        int64_t seq = sqlite3_column_int64(st, 0);
        if (store__pend_log_head(seq, sqlite3_column_blob(st, 1),
                                 (size_t)sqlite3_column_bytes(st, 1), &head)) {
            snprintf(errmsg, errsize,
                     "%s: damaged readings log row %lld (checksum mismatch): it holds the newest "
                     "readings of some devices",
                     src, (long long)seq);
            err = ERR_CORRUPT;
        }
    }
    if (err == 0 && rc != SQLITE_DONE) {
        snprintf(errmsg, errsize, "%s: checking its readings: %s", src, sqlite3_errmsg(db));
        err = ERR_IO;
    }
    sqlite3_finalize(st);
    store__codec_free(&codec);
    return err;
}

/* Checks that the copy (out, the descriptor copy_file wrote it with; src named in the messages)
 * is a whole vigil database this code can open: vigil's application id, a schema version not
 * above this code's, PRAGMA quick_check ok, and every readings row and log row whole
 * (check_rows). Session 54: the copy is read through out
 * (store__open_fd, fdvfs.c), not opened by its name: a file swapped in at that name for the
 * check and back before the rename would have been checked in the copy's place. Nothing is
 * opened or closed (dbfiles.c's rule), nothing is made beside the copy; remove_beside still
 * clears what an older vigild's check left. Returns 0 or ERR_INVAL / ERR_CORRUPT / ERR_IO with
 * errmsg. */
static int check_copy(const char *src, int out, const char *tmp, int accept, int64_t *damaged,
                      char *errmsg, size_t errsize)
{
    sqlite3 *db = NULL;
    remove_beside(tmp);
    int rc = store__open_fd(out, &db);
    int err = 0;
    int64_t app = rc == SQLITE_OK ? pragma_int(db, "PRAGMA application_id") : -1;
    int64_t ver = rc == SQLITE_OK ? pragma_int(db, "PRAGMA user_version") : -1;
    sqlite3_stmt *qc = NULL;
    const char *ok = NULL;
    if (app == STORE_APPLICATION_ID && ver >= 1 && ver <= STORE_SCHEMA_VERSION &&
        sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &qc, NULL) == SQLITE_OK &&
        sqlite3_step(qc) == SQLITE_ROW)
        ok = (const char *)sqlite3_column_text(qc, 0);
    if (rc != SQLITE_OK || app < 0) {
        char why[300];
        snprintf(errmsg, errsize, "%s: cannot read it as an SQLite database (%s)", src,
                 sqlite_reason(db, rc, why, sizeof why));
        err = ERR_IO;
    } else if (app != STORE_APPLICATION_ID) {
        snprintf(errmsg, errsize, "%s: not a vigil database (application_id %lld)", src,
                 (long long)app);
        err = ERR_INVAL;
    } else if (ver < 1 || ver > STORE_SCHEMA_VERSION) {
        snprintf(errmsg, errsize, "%s: schema version %lld, this vigild reads 1 to %d", src,
                 (long long)ver, STORE_SCHEMA_VERSION);
        err = ERR_INVAL;
    } else if (ok == NULL || strcmp(ok, "ok") != 0) {
        /* SQLite's report of a damaged page runs over several lines ("*** in database main
         * ***\nTree 5 page 12 ..."): one line here, for the log and the terminal (read68b). */
        snprintf(errmsg, errsize, "%s: damaged (PRAGMA quick_check: %s)", src,
                 ok ? ok : sqlite3_errmsg(db));
        for (char *c = errmsg; *c; c++)
            if (*c == '\n' || *c == '\r' || *c == '\t')
                *c = ' ';
        err = ERR_CORRUPT;
    }
    if (err == ERR_IO || err == ERR_CORRUPT)
        wal_copy_note(out, errmsg, errsize);
    else if (err == 0)
        err = check_rows(src, db, ver, accept, damaged, errmsg, errsize);
    sqlite3_finalize(qc);
    sqlite3_close(db);
    return err;
}

/* The owner and group the restored file takes: those of the database it replaces (else of
 * dir), so a restore run as root leaves a file the service's user (systemd's DynamicUser) can
 * write. Returns 0, or -1 when neither can be read (the copy then stays the caller's). */
static int wanted_owner(const char *dir, uid_t *uid, gid_t *gid)
{
    char db[4200];
    struct stat st;
    path_join(db, sizeof db, dir, "vigil.db");
    if (stat(db, &st) != 0 && stat(dir, &st) != 0)
        return -1;
    *uid = st.st_uid;
    *gid = st.st_gid;
    return 0;
}

/* Creates dest afresh (0640) for the copy. Whatever had that name goes first, and the open
 * neither follows a symbolic link nor reuses a file: a link planted there (the folder may be
 * writable by the service's user, the restore run as root) would otherwise have root write
 * the snapshot through it into any file, and be renamed into place as vigil.db. Returns the
 * descriptor, or -1 with errno set. */
static int create_fresh(const char *dest)
{
    if (unlink(dest) != 0 && errno != ENOENT)
        return -1;
    return open(dest, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
}

/* Copies the open source in (src's, for the messages) to dest, created afresh 0640 and the
 * caller's until keep_copy gives it away. Returns 0 with *out, dest's descriptor (the caller
 * closes it), or ERR_IO / ERR_NOSPACE / ERR_NOMEM with errmsg, dest removed. */
static int copy_file(int in, const char *src, const char *dest, int *out, char *errmsg,
                     size_t errsize)
{
    enum { BUF = 1 << 20 };
    *out = create_fresh(dest);
    char *buf = malloc(BUF);
    int err = *out < 0 ? ERR_IO : 0;
    if (buf == NULL && err == 0) {
        snprintf(errmsg, errsize, "out of memory");
        err = ERR_NOMEM;
    }
    const char *what = dest;
    int e = errno;
    while (err == 0) {
        errno = 0;
        ssize_t n = read(in, buf, BUF);
        if (n == 0)
            break;
        if (n < 0 || write(*out, buf, (size_t)n) != n) {
            e = errno ? errno : ENOSPC; /* a short write without an error: the volume is full */
            what = n < 0 ? src : dest;
            err = ERR_IO;
        }
    }
    if (err == 0 && fchmod(*out, 0640) != 0) { /* 0640 whatever the umask, as store_open's */
        e = errno;
        err = ERR_IO;
    }
    free(buf);
    if (err == ERR_IO) {
        snprintf(errmsg, errsize, "copying %s to %s: %s: %s", src, dest, what, strerror(e));
        if (e == ENOSPC || e == EDQUOT)
            err = ERR_NOSPACE;
    }
    if (err && *out >= 0) {
        unlink(dest);
        close(*out);
        *out = -1;
    }
    return err;
}

/* Gives the checked copy (out, dest's descriptor) the owner wanted_owner says and fsyncs it.
 * Only once checked: until then a copy of whatever the source held stays root's, 0640. On the
 * descriptor, not the name (a name can be swapped for a link meanwhile); only root may change
 * the owner: for anyone else the copy is theirs already, and a failure changes nothing. Before
 * the fsync, so the owner is as durable as the data. Returns 0 or ERR_IO with errmsg. */
static int keep_copy(const char *dir, int out, const char *dest, char *errmsg, size_t errsize)
{
    uid_t uid;
    gid_t gid;
    if (wanted_owner(dir, &uid, &gid) == 0)
        (void)!fchown(out, uid, gid);
    if (fsync(out) == 0)
        return 0;
    int e = errno;
    snprintf(errmsg, errsize, "syncing %s: %s", dest, strerror(e));
    return e == ENOSPC || e == EDQUOT ? ERR_NOSPACE : ERR_IO;
}

/* fsyncs a folder, so the names changed in it are durable. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Puts the copy (tmp, out its descriptor) in place under the data folder's lock. The old WAL
 * and shared memory are moved aside first (a WAL left beside the new file would be replayed
 * into it at the next open), and only deleted once the rename has succeeded: if it fails they
 * are put back, so the old database keeps its newest commits. (A crash between the two leaves
 * them as .vigil.db-wal.aside and .vigil.db-shm.aside; README says how to put them back.) The
 * rename is by name, in a folder the service's user may write: the file it put at vigil.db is
 * compared with out's (session 53); another file (tmp swapped since the check) is refused. So
 * that a refused restore loses nothing, the old database keeps a second name, .vigil.db.aside
 * (a hard link: vigil.db is never missing), until that comparison: on a refusal it is renamed
 * back over the other file, and its WAL put back. Returns 0, or ERR_IO / ERR_INVAL with
 * errmsg. */
static int swap_in(const char *dir, const char *tmp, int out, char *errmsg, size_t errsize)
{
    static const char *const ext[2] = {"-wal", "-shm"};
    char db[4200], old[4200], live[2][4200], aside[2][4200];
    int moved[2] = {0, 0}, kept = 0, err = 0, lost = 0, left = 0;
    path_join(db, sizeof db, dir, "vigil.db");
    path_join(old, sizeof old, dir, ".vigil.db.aside");
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof name, "vigil.db%s", ext[i]);
        path_join(live[i], sizeof live[i], dir, name);
        snprintf(name, sizeof name, ".vigil.db%s.aside", ext[i]);
        path_join(aside[i], sizeof aside[i], dir, name);
    }
    for (int i = 0; i < 2 && err == 0; i++) {
        if (rename(live[i], aside[i]) == 0)
            moved[i] = 1;
        else if (errno != ENOENT) {
            snprintf(errmsg, errsize, "moving %s aside: %s", live[i], strerror(errno));
            err = ERR_IO;
        }
    }
    if (err == 0) {
        /* link(2) does not follow either name; a folder without hard links (vfat) keeps no
         * second name, and then a refusal below loses the old database, as before. */
        unlink(old);
        kept = link(db, old) == 0;
        int none = !kept && errno == ENOENT; /* no old database */
        sync_dir(dir);
        store__test_hold_point("restore-rename");
        if (rename(tmp, db) != 0) {
            snprintf(errmsg, errsize, "renaming %s to %s: %s", tmp, db, strerror(errno));
            err = ERR_IO;
        } else if (!store__fd_is_named(out, db)) {
            int back = kept && rename(old, db) == 0;
            if (!back)
                unlink(db);
            left = kept && !back; /* the old database stays at .vigil.db.aside, WAL aside */
            lost = !kept && !none;
            kept = 0;
            snprintf(errmsg, errsize,
                     "%s was replaced by another file after its check (by someone who may write "
                     "%s): that file, renamed to %s, is removed%s; make sure no one else writes "
                     "the folder, then restore again",
                     tmp, dir, db,
                     back   ? ", the old database put back"
                     : left ? "; the old database could not be put back: it is .vigil.db.aside"
                     : lost ? ", and the old database with it (the folder allows no hard link)"
                            : "");
            err = ERR_INVAL;
        }
    }
    if (kept)
        unlink(old); /* its second name: vigil.db is the checked copy, or still the old one */
    for (int i = 0; i < 2; i++)
        if (moved[i] && !left && (err && !lost ? rename(aside[i], live[i]) : unlink(aside[i])) != 0)
            log_warn("restore: %s %s: %s", err && !lost ? "cannot put back" : "cannot delete",
                     aside[i], strerror(errno));
    sync_dir(dir);
    return err;
}

/* Makes sure dir exists (*made: whether it was created here). Run as root, a folder that does
 * not exist is refused rather than created: root would own it (and its vigil.lock), so the
 * service's user could not start on it, and which user that is only the operator knows.
 * Returns 0, or ERR_INVAL / ERR_IO with errmsg. */
static int ensure_dir(const char *dir, int *made, char *errmsg, size_t errsize)
{
    struct stat st;
    *made = 0;
    if (stat(dir, &st) == 0)
        return 0;
    if (errno == ENOENT && geteuid() == 0) {
        snprintf(errmsg, errsize,
                 "%s does not exist: create it owned by the user vigild runs as (or start "
                 "vigild on it once), then restore again",
                 dir);
        return ERR_INVAL;
    }
    if (mkdir(dir, 0750) == 0)
        *made = 1;
    else if (errno != EEXIST) {
        snprintf(errmsg, errsize, "creating %s: %s", dir, strerror(errno));
        return ERR_IO;
    }
    return 0;
}

/* Gives the lock file the folder's owner and group, so a lock a restore run as root has just
 * created does not keep the service's user from opening it (vigild opens it read-write). Only
 * root may change them; a failure changes nothing. */
static void give_lock(const char *dir, int fd)
{
    struct stat d, l;
    if (stat(dir, &d) == 0 && fstat(fd, &l) == 0 && (l.st_uid != d.st_uid || l.st_gid != d.st_gid))
        (void)!fchown(fd, d.st_uid, d.st_gid);
}

/* Refuses to replace a database another process has open (session 55). Every SQLite connection
 * that has read a WAL database holds a shared lock on its lock-byte range (the 512 bytes from
 * 1 GiB, SQLite's file format, "the lock-byte page") for as long as it stays open, and a write
 * transaction holds byte 120 of the -shm file (the WAL write lock). Such a process (an sqlite3
 * shell, a backup tool) would go on with the old file, its -wal and -shm moved aside under it:
 * what it reads is no longer vigild's, and what it writes is lost. Called with vigil.lock held,
 * so vigild itself is not running. Returns 0, or ERR_LOCKED with errmsg. */
static int check_unused(const char *dir, char *errmsg, size_t errsize)
{
    char db[4200], shm[4300];
    path_join(db, sizeof db, dir, "vigil.db");
    pid_t pid = store__lock_holder(db, 0x40000000, 512);
    if (pid == 0)
        return 0;
    snprintf(shm, sizeof shm, "%s-shm", db);
    int writing = store__lock_holder(shm, 120, 1) != 0;
    char who[32] = "pid unknown"; /* (-1: another pid namespace's, or no pid) */
    if (pid > 0)
        snprintf(who, sizeof who, "pid %ld", (long)pid);
    snprintf(errmsg, errsize,
             "%s is open in another process (%s%s): %s; an sqlite3 shell or a backup tool "
             "reading it would be left on the old file, and what it writes lost: close it (quit "
             "the shell, let the backup end), then restore again; nothing was changed",
             db, who, writing ? ", holding a write transaction" : "", err_str(ERR_LOCKED));
    return ERR_LOCKED;
}

int store_restore(const char *dir, const char *src, int accept_damaged, int64_t *bytes,
                  int64_t *damaged, char *errmsg, size_t errsize)
{
    char tmp[4200], real[PATH_MAX], lock[4200];
    struct stat st;
    int fd = -1, in = -1, out = -1, made = 0, locked = 0;
    errmsg[0] = '\0';
    *bytes = 0;
    *damaged = 0;
    /* The source is opened and checked as a file first, and its neighbours, before the data
     * folder is touched; then copied from that descriptor, and the copy checked (session 53:
     * checked by name and copied by name, the source could be swapped between the two). */
    int err = open_source(src, &in, real, sizeof real, errmsg, errsize);
    if (err == 0)
        err = check_beside(real, errmsg, errsize);
    if (err == 0)
        err = ensure_dir(dir, &made, errmsg, errsize);
    path_join(lock, sizeof lock, dir, "vigil.lock");
    /* A refused restore leaves the folder as it found it: the lock it made goes too. */
    int had_lock = err == 0 && lstat(lock, &st) == 0;
    if (err == 0 && (err = store__lock_dir(dir, &fd, errmsg, errsize)) == 0) {
        locked = 1; /* else fd may be open on a lock another vigild holds */
        give_lock(dir, fd);
    }
    if (err == 0)
        err = check_unused(dir, errmsg, errsize); /* after the lock: a running vigild said first */
    path_join(tmp, sizeof tmp, dir, ".vigil.db.restore");
    if (err == 0 && (err = copy_file(in, src, tmp, &out, errmsg, errsize)) == 0) {
        store__test_hold_point("restore-check");
        err = check_copy(src, out, tmp, accept_damaged, damaged, errmsg, errsize);
        if (err == 0)
            err = keep_copy(dir, out, tmp, errmsg, errsize);
        /* Again just before the rename: the copy and its check of a large snapshot take
         * minutes, in which a shell may have opened the old database (a process opening it
         * between this and the rename is not seen: nothing here can keep it out). */
        if (err == 0)
            err = check_unused(dir, errmsg, errsize);
        if (err == 0)
            err = swap_in(dir, tmp, out, errmsg, errsize);
        if (err)
            unlink(tmp);
    }
    if (err == 0 && fstat(out, &st) == 0)
        *bytes = (int64_t)st.st_size;
    if (out >= 0)
        close(out);
    if (in >= 0)
        close(in);
    /* Unlinked while held: a vigild that opened it meanwhile finds it locked, or, once it is
     * closed, not the file at that name any more (store__lock_dir takes the lock again). */
    if (err && locked && !had_lock)
        unlink(lock);
    if (fd >= 0)
        close(fd); /* releases the lock */
    if (err && made)
        rmdir(dir); /* empty again: made for this restore */
    return err;
}

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
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* SQLite virtual machine steps between two calls of the cancel check: a few milliseconds. */
#define SNAPSHOT_PROGRESS_OPS 10000

struct cancel {
    int (*cancelled)(void *arg);
    void *arg;
};

/* SQLite's progress handler: nonzero interrupts the VACUUM (SQLITE_INTERRUPT). */
static int progress(void *arg)
{
    const struct cancel *c = arg;
    return c->cancelled(c->arg);
}

/* Creates dest empty with mode 0600 (VACUUM INTO takes an empty file, and would otherwise
 * create it with the process's default mode). Returns 0 or ERR_IO / ERR_NOSPACE. */
static int create_empty(const char *dest, char *errmsg, size_t errsize)
{
    int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(errmsg, errsize, "creating %s: %s", dest, strerror(errno));
        return errno == ENOSPC || errno == EDQUOT ? ERR_NOSPACE : ERR_IO;
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
        snprintf(errmsg, errsize, "syncing %s: %s", dest, strerror(errno));
        err = errno == ENOSPC || errno == EDQUOT ? ERR_NOSPACE : ERR_IO;
    } else {
        *bytes = (int64_t)st.st_size;
    }
    if (fd >= 0)
        close(fd);
    return err;
}

/* Runs VACUUM INTO dest on a new read-only connection. Returns 0 or an ERR_ with errmsg. */
static int vacuum_into(store_t *s, const char *dest, struct cancel *c, char *errmsg, size_t errsize)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_open_v2(s->db_path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
        if (c->cancelled)
            sqlite3_progress_handler(db, SNAPSHOT_PROGRESS_OPS, progress, c);
        rc = sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &st, NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int err = 0;
    if (rc != SQLITE_DONE) {
        snprintf(errmsg, errsize, "copying %s into %s: %s", s->db_path, dest,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        err = (rc & 0xff) == SQLITE_INTERRUPT ? ERR_CLOSED : store__status(db, rc);
        if (err == 0)
            err = ERR_IO;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return err;
}

int store_snapshot(store_t *s, const char *dest, int (*cancelled)(void *arg), void *arg,
                   int64_t *bytes, char *errmsg, size_t errsize)
{
    struct cancel c = {cancelled, arg};
    *bytes = 0;
    errmsg[0] = '\0';
    int err = create_empty(dest, errmsg, errsize);
    if (err)
        return err;
    err = vacuum_into(s, dest, &c, errmsg, errsize);
    if (err == 0)
        err = sync_file(dest, bytes, errmsg, errsize);
    if (err)
        unlink(dest); /* a partial copy must not take space, nor look like a database */
    return err;
}

/* storage/dbfiles.c: the modes of the data folder's files (task files1, session 52).
 *
 * The database's files are 0640 whatever the umask. SQLite creates a missing main file 0644
 * less the umask, and its -wal and -shm with the main file's mode exactly (the unix VFS's
 * robust_open fchmods a new journal, WAL or shared-memory file to the mode findCreateFileMode
 * took from the main file), so a missing main file is created here, 0640, before SQLite opens
 * it (empty, it is an empty database). Files already there keep their mode, less the bits for
 * other users (a vigild before session 52 made them 0644 under umask 022), as does the lock.
 *
 * Session 52 (task files2): every sqlite3_open_v2 of the database passes STORE_OPEN_NOFOLLOW,
 * so a link planted between these checks and SQLite's open is refused too, in the same words
 * (store__open_errmsg). A main file owned by another user that vigild may write but not chmod
 * (0666) gives SQLite's new -wal and -shm its mode, and so does every later open of an empty
 * -wal (none written since the start): SQLite's robust_open fchmods an empty file it opens to
 * the mode it would create it with, so the start's query connections widened again a -wal
 * the writer's open had made (review). store__wal_files_mode tightens them at the end of
 * store_open, once every connection is open, and after each snapshot's connection, without a
 * warning of their own (they are made afresh at each start, and the main file's warning, at
 * each start, names the cause and the fix). Meanwhile they are open to no one the main file
 * is not open to already.
 *
 * SQLite 3.35+ refuses with SQLITE_OPEN_NOFOLLOW a symbolic link in ANY component of the path
 * (its unix VFS resolves every one, and counts the links), not only the file's own: a data_dir
 * under a linked folder, or one that is itself a link (systemd's DynamicUser= makes
 * /var/lib/vigil a link to /var/lib/private/vigil), was refused as if vigil.db were a link.
 * SQLite is therefore given the path with its folder resolved (store__sqlite_path): only a
 * link in the file's own place is refused, as the start's check and --check-config refuse it.
 *
 * Session 53 (task files3): store__wal_files_mode, as files2 first wrote it, open()ed and
 * close()d the -wal and -shm while SQLite's connections held them, and a close() of ANY
 * descriptor of a file drops every POSIX lock the process holds on that file: SQLite's locks
 * on the -shm went with it (another process then took itself for the first connection, and
 * vigild died of SIGBUS on its mapping). It now takes an O_PATH descriptor of each (Linux's
 * filp_close skips locks_remove_posix for such a descriptor, whose file was never opened for
 * reading or writing) and chmods it through its /proc/self/fd name (fd_chmod). The rule for
 * this file: never open() and close() a normal descriptor of a file SQLite may hold.
 *
 * Session 54 (task files5): when that chmod fails (no /proc), the -wal's and -shm's warnings are
 * said once per process each, not again after every snapshot's connection (debug lines then).
 *
 * Threads: the owning thread (store_open, store_restore); store__sqlite_path and
 * store__open_errmsg any thread. */
#include "storage_int.h"
#include "dbfiles_int.h"
#include "batch.h"
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
#include <unistd.h>

const char *store__test_proc_fd = "/proc/self/fd";

/* fchmod(fd, mode), or for an O_PATH descriptor, which fchmod refuses (EBADF), chmod of its
 * /proc/self/fd name (*via_proc set): that names the file fd stands for (a link O_NOFOLLOW
 * opened would be chmod'ed as a link, which Linux refuses, and store__drop_other_bits never gets
 * that far), and it opens nothing. Returns 0, or -1 with errno set. */
static int fd_chmod(int fd, mode_t mode, char *proc, size_t size, int *via_proc)
{
    *via_proc = 0;
    if (fchmod(fd, mode) == 0)
        return 0;
    if (errno != EBADF)
        return -1;
    *via_proc = 1;
    snprintf(proc, size, "%s/%d", store__test_proc_fd, fd);
    return chmod(proc, mode);
}

void store__drop_other_bits(int fd, const char *path, int quiet, int *warned)
{
    struct stat st;
    char proc[128];
    int via_proc;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0007) == 0)
        return;
    unsigned was = (unsigned)(st.st_mode & 0777), now = was & ~0007u;
    if (fd_chmod(fd, (mode_t)now, proc, sizeof proc, &via_proc) == 0) {
        log_msg(quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN,
                "storage: %s was mode %04o, open to every local user: now %04o", path, was, now);
        return;
    }
    int e = errno;
    /* Said once (warned set): the same failure after each snapshot is a debug line. */
    int level = warned && __atomic_exchange_n(warned, 1, __ATOMIC_RELAXED) ? LOG_LEVEL_DEBUG
                                                                           : LOG_LEVEL_WARN;
    if (via_proc) /* e.g. /proc not mounted (a chroot, a container) */
        log_msg(level,
                "storage: %s is mode %04o, open to every local user, and cannot be changed: "
                "vigild changes it through %s (not opening the file, whose close would drop "
                "SQLite's locks on it), which failed: %s (is /proc mounted?); chmod o-rwx it",
                path, was, proc, strerror(e));
    else
        log_msg(level,
                "storage: %s is mode %04o, open to every local user, and cannot be changed: %s "
                "(chmod o-rwx it)",
                path, was, strerror(e));
}

/* One of the database's files that is there: a regular file, not a link (SQLite would follow
 * a link to the main file, and the -wal and -shm would then be beside its target), with the
 * bits for other users taken off. Returns 0, or ERR_IO with errmsg. */
static int db_file_check(const char *path, char *errmsg, size_t errsize)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 && errno == ELOOP) {
        snprintf(errmsg, errsize, "%s: not a regular file (a symbolic link)", path);
        return ERR_IO;
    }
    if (fd < 0)
        return 0; /* missing, or not readable: SQLite's open says what is wrong with it */
    int err = 0;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(errmsg, errsize, "%s: not a regular file (a directory, device, FIFO or socket)",
                 path);
        err = ERR_IO;
    } else {
        store__drop_other_bits(fd, path, 0, NULL);
    }
    close(fd);
    return err;
}

int store__db_files_mode(const char *db_path, char *errmsg, size_t errsize)
{
    int fd = open(db_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd >= 0) {
        int ok = fchmod(fd, 0640) == 0;
        int e = errno;
        close(fd);
        if (ok)
            return 0;
        snprintf(errmsg, errsize, "creating %s: %s", db_path, strerror(e));
        return ERR_IO;
    }
    if (errno != EEXIST) {
        snprintf(errmsg, errsize, "creating %s: %s", db_path, strerror(errno));
        return ERR_IO;
    }
    static const char *const ext[] = {"", "-wal", "-shm"};
    int err = 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0] && err == 0; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s%s", db_path, ext[i]);
        err = db_file_check(path, errmsg, errsize);
    }
    return err;
}

void store__wal_files_mode(const char *db_path)
{
    static const char *const ext[] = {"-wal", "-shm"};
    static int warned[2]; /* a failure said, per file: once per process (session 54) */
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s%s", db_path, ext[i]);
        /* O_PATH: SQLite holds these files and its POSIX locks on the -shm; closing a normal
         * descriptor of either would drop them (see the top of this file). */
        int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            /* Quiet: the main file's warning says why, and what to do. */
            store__drop_other_bits(fd, path, 1, &warned[i]);
            close(fd);
        }
    }
}

const char *store__open_errmsg(sqlite3 *db, int rc)
{
    if (db && sqlite3_extended_errcode(db) == SQLITE_CANTOPEN_SYMLINK)
        return "not a regular file (a symbolic link)";
    return db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
}

const char *store__sqlite_path(const char *path, char *buf, size_t size)
{
    const char *slash = strrchr(path, '/');
    char dir[4200], real[PATH_MAX];
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else /* "/" for "/vigil.db" (a data_dir of "/") */
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (realpath(dir, real) != NULL) {
        path_join(buf, size, real, slash == NULL ? path : slash + 1);
        return buf;
    }
    /* Not resolved (missing, not searchable): SQLite's open says what is wrong. "./" in front
     * of a name beginning with "file:", which an SQLite built with SQLITE_USE_URI (Debian's)
     * would read as a URI. */
    snprintf(buf, size, "%s%s", strncmp(path, "file:", 5) == 0 ? "./" : "", path);
    return buf;
}

/* The restore's check (snapshot.c) and the final checkpoint's line (schema.c), each where no
 * connection of this process has the file open: the exception to this file's rule above,
 * since F_GETLK needs a descriptor opened for reading (an O_PATH one gives EBADF). */
pid_t store__lock_holder(const char *path, off_t start, off_t len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    int held = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    /* Held, and whose is not known (review, session 56): an open file description's lock has
     * l_pid -1, and Linux gives 0 for a holder outside vigild's pid namespace (another
     * container sharing the data directory), which was taken for no lock at all. */
    return !held ? 0 : fl.l_pid > 0 ? fl.l_pid : -1;
}

void store__files_ids(store_t *s)
{
    struct stat d, f;
    if (stat(s->dir, &d) != 0 || stat(s->db_path, &f) != 0)
        return;
    s->dir_dev = d.st_dev;
    s->dir_ino = d.st_ino;
    s->db_dev = f.st_dev;
    s->db_ino = f.st_ino;
    s->ids_known = 1;
}

/* read68b: the data folder moved away while vigild ran, /healthz stayed ok and the next snapshot
 * failed with "creating .../data/snapshots: No such file or directory". vigild's open files
 * still take the writes (a rename keeps them), but what is at the paths is no longer them:
 * a snapshot, a restart and an operator's copy look there. Two stats, no open (this file's
 * rule). A path is given up to FILES_PATH_MAX bytes, cut between two UTF-8 characters (the
 * message goes into JSON answers, whose encoders refuse half a character). */
#define FILES_PATH_MAX 200
int store_files_check(store_t *s, char *why, size_t size)
{
    struct stat st;
    why[0] = '\0';
    if (!s->ids_known)
        return 0;
    const int gone = stat(s->dir, &st) != 0, e = errno;
    if (gone || st.st_dev != s->dir_dev || st.st_ino != s->dir_ino) {
        snprintf(why, size,
                 "the data folder %.*s is not the one vigild opened (%s: moved, deleted or "
                 "replaced while it runs): writes go on into the files it has open, but a "
                 "snapshot or a restart would not find them",
                 (int)batch_name_cut(s->dir, FILES_PATH_MAX), s->dir,
                 gone ? strerror(e) : "another folder is there now");
        return ERR_NOTFOUND;
    }
    if (stat(s->db_path, &st) != 0 || st.st_dev != s->db_dev || st.st_ino != s->db_ino) {
        snprintf(why, size,
                 "%.*s is not the database vigild opened (moved, deleted or replaced while it "
                 "runs): writes go on into the file it has open, but a snapshot or a restart "
                 "would not find them",
                 (int)batch_name_cut(s->db_path, FILES_PATH_MAX), s->db_path);
        return ERR_NOTFOUND;
    }
    return 0;
}

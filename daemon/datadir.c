/* daemon/datadir.c: --check-config's look at the data directory (see datadir.h).
 *
 * It mirrors store_open's first steps (storage/storage.c: mkdir of the last component, 0750;
 * vigil.lock opened O_RDWR | O_CREAT | O_NOFOLLOW and flock'ed; then SQLite's vigil.db and its
 * -wal and -shm, read and written) with checks that change nothing, so a configuration that
 * passes does not then stop the start on a missing parent, a read-only or foreign-owned
 * directory or a file of the wrong kind. Permissions are the effective user's (AT_EACCESS): run
 * the check as the user the service runs as. Whether a vigild holds the directory is asked
 * with a shared flock, released at once: it conflicts only with the exclusive lock a running
 * vigild holds (a vigild starting in that same instant would be refused, and say so). Main
 * thread only; no state. */
#include "datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* The files store_open and SQLite open in the directory, each read and written. */
static const char *const dir_files[] = {"vigil.lock", "vigil.db", "vigil.db-wal", "vigil.db-shm"};

/* The directory is missing: store_open would mkdir it, which needs its parent. */
static int check_parent(const char *dir, char *err, size_t errsize)
{
    struct stat st;
    if (lstat(dir, &st) == 0) { /* stat failed, lstat did not: a link to nowhere */
        snprintf(err, errsize, "%s: a symbolic link to a missing directory", dir);
        return -1;
    }
    char copy[4096];
    if (snprintf(copy, sizeof copy, "%s", dir) >= (int)sizeof copy) {
        snprintf(err, errsize, "%s: %s", dir, strerror(ENAMETOOLONG));
        return -1;
    }
    const char *parent = dirname(copy); /* "." for a relative name of one component */
    if (stat(parent, &st) != 0) {
        snprintf(err, errsize, "%s does not exist and cannot be created: %s: %s", dir, parent,
                 strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errsize, "%s does not exist and cannot be created: %s is not a directory",
                 dir, parent);
        return -1;
    }
    if (faccessat(AT_FDCWD, parent, W_OK | X_OK, AT_EACCESS) != 0) {
        snprintf(err, errsize, "%s does not exist and cannot be created in %s: %s", dir, parent,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* One of dir_files, when present: a regular file (O_NOFOLLOW refuses a link to the lock, and
 * SQLite's files are the database) that can be read and written. *fd: the lock file opened
 * for reading (for the flock), else -1. */
static int check_file(const char *dir, const char *name, int *fd, char *err, size_t errsize)
{
    char path[4200];
    struct stat st;
    *fd = -1;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0; /* created at the start */
        snprintf(err, errsize, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errsize, "%s: not a regular file (%s)", path,
                 S_ISLNK(st.st_mode) ? "a symbolic link" : "a directory, device, FIFO or socket");
        return -1;
    }
    if (faccessat(AT_FDCWD, path, R_OK | W_OK, AT_EACCESS) != 0) {
        snprintf(err, errsize, "%s: %s (it is read and written)", path, strerror(errno));
        return -1;
    }
    if (strcmp(name, "vigil.lock") == 0 &&
        (*fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        snprintf(err, errsize, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int datadir_check(const char *dir, char *err, size_t errsize, char *note, size_t notesize)
{
    struct stat st;
    err[0] = note[0] = '\0';
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            return check_parent(dir, err, errsize);
        snprintf(err, errsize, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errsize, "%s: not a directory", dir);
        return -1;
    }
    if (faccessat(AT_FDCWD, dir, R_OK | W_OK | X_OK, AT_EACCESS) != 0) {
        snprintf(err, errsize, "%s: %s (the database is created and written there)", dir,
                 strerror(errno));
        return -1;
    }
    int lock_fd = -1;
    for (size_t i = 0; i < sizeof dir_files / sizeof dir_files[0]; i++) {
        int fd;
        if (check_file(dir, dir_files[i], &fd, err, errsize)) {
            if (lock_fd >= 0)
                close(lock_fd);
            return -1;
        }
        if (fd >= 0)
            lock_fd = fd;
    }
    if (lock_fd >= 0) {
        if (flock(lock_fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK)
            snprintf(note, notesize,
                     "%s/vigil.lock is held: a vigild runs on this data directory (another "
                     "would not start on it)",
                     dir);
        close(lock_fd); /* releases the shared lock, if taken */
    }
    return 0;
}

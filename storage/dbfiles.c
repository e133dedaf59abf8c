/* storage/dbfiles.c: the modes of the data folder's files (task files1, session 52).
 *
 * The database's files are 0640 whatever the umask. SQLite creates a missing main file 0644
 * less the umask, and its -wal and -shm with the main file's mode exactly (the unix VFS's
 * robust_open fchmods a new journal, WAL or shared-memory file to the mode findCreateFileMode
 * took from the main file), so a missing main file is created here, 0640, before SQLite opens
 * it (empty, it is an empty database). Files already there keep their mode, less the bits for
 * other users (a vigild before session 52 made them 0644 under umask 022), as does the lock.
 *
 * Threads: the owning thread (store_open, store_restore). */
#include "storage_int.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void store__drop_other_bits(int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0007) == 0)
        return;
    unsigned was = (unsigned)(st.st_mode & 0777), now = was & ~0007u;
    if (fchmod(fd, (mode_t)now) == 0)
        log_warn("storage: %s was mode %04o, open to every local user: now %04o", path, was, now);
    else
        log_warn("storage: %s is mode %04o, open to every local user, and cannot be changed: %s "
                 "(chmod o-rwx it)",
                 path, was, strerror(errno));
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
        store__drop_other_bits(fd, path);
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

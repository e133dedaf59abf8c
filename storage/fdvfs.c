/* storage/fdvfs.c: a read-only connection on a database read through a descriptor its caller
 * keeps (store__open_fd): the restore's check of the copy it wrote (snapshot.c's check_copy).
 *
 * "vigil-fd" is a minimal SQLite VFS (sqlite.org/vfs.html): the main database's reads are
 * pread(2)s of that descriptor, so the check reads the very file that is renamed, whatever a
 * name leads to meanwhile. Nothing is opened or closed (dbfiles.c's rule: a close drops the
 * process's POSIX locks on the file), nothing is made beside the file (xAccess finds no
 * journal nor log; other files are refused), locks are no-ops (the caller holds the data
 * folder's lock), and memory stays SQLite's page cache whatever the file's size. A file
 * truncated during the check reads short: SQLite sees zeroes (a failed check), not SIGBUS as
 * a mapping would. A WAL-mode header (bytes 18 and 19, the write and read versions, at 2) is
 * read as a rollback-mode one, as there is no log nor shared memory here: the pages are the
 * same. Session 54 (review of task files5).
 *
 * Threads: any; the VFS is registered once (pthread_once). */
#include "storage_int.h"
#include "dbfiles_int.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FDVFS_NAME "vigil-fd"

typedef struct fdfile {
    sqlite3_file base;
    int fd; /* the caller's: never closed here */
} fdfile_t;

static int fd_close(sqlite3_file *f)
{
    (void)f;
    return SQLITE_OK;
}

static int fd_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    unsigned char *p = buf;
    int got = 0;
    while (got < amt) {
        ssize_t n = pread(((fdfile_t *)f)->fd, p + got, (size_t)(amt - got), (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return SQLITE_IOERR_READ;
        if (n == 0)
            break;
        got += (int)n;
    }
    for (sqlite3_int64 i = 18; i < 20; i++) /* the header's versions: 2 is WAL, 1 rollback */
        if (i >= off && i < off + got && p[i - off] == 2)
            p[i - off] = 1;
    if (got < amt) { /* SQLite's contract: the rest zeroed */
        memset(p + got, 0, (size_t)(amt - got));
        return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
}

static int fd_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    (void)f, (void)buf, (void)amt, (void)off;
    return SQLITE_READONLY;
}

static int fd_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    (void)f, (void)size;
    return SQLITE_READONLY;
}

static int fd_sync(sqlite3_file *f, int flags)
{
    (void)f, (void)flags;
    return SQLITE_OK;
}

static int fd_size(sqlite3_file *f, sqlite3_int64 *size)
{
    struct stat st;
    if (fstat(((fdfile_t *)f)->fd, &st) != 0)
        return SQLITE_IOERR_FSTAT;
    *size = st.st_size;
    return SQLITE_OK;
}

static int fd_lock(sqlite3_file *f, int level) /* also xUnlock */
{
    (void)f, (void)level;
    return SQLITE_OK;
}

static int fd_reserved(sqlite3_file *f, int *out)
{
    (void)f;
    *out = 0;
    return SQLITE_OK;
}

static int fd_control(sqlite3_file *f, int op, void *arg)
{
    (void)f, (void)op, (void)arg;
    return SQLITE_NOTFOUND;
}

static int fd_sector(sqlite3_file *f)
{
    (void)f;
    return 512;
}

static int fd_device(sqlite3_file *f)
{
    (void)f;
    return 0;
}

static const sqlite3_io_methods fd_methods = {
    .iVersion = 1, /* no shared memory (no WAL), no mapping */
    .xClose = fd_close,
    .xRead = fd_read,
    .xWrite = fd_write,
    .xTruncate = fd_truncate,
    .xSync = fd_sync,
    .xFileSize = fd_size,
    .xLock = fd_lock,
    .xUnlock = fd_lock,
    .xCheckReservedLock = fd_reserved,
    .xFileControl = fd_control,
    .xSectorSize = fd_sector,
    .xDeviceCharacteristics = fd_device,
};

/* The main database only, its descriptor the URI's fd parameter; any other file refused. */
static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    f->pMethods = NULL;
    sqlite3_int64 fd = name ? sqlite3_uri_int64(name, "fd", -1) : -1;
    if (!(flags & SQLITE_OPEN_MAIN_DB) || fd < 0 || fd > INT_MAX)
        return SQLITE_CANTOPEN;
    ((fdfile_t *)f)->fd = (int)fd;
    f->pMethods = &fd_methods;
    if (out)
        *out = (flags & ~(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_READONLY;
    return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
    (void)vfs, (void)name, (void)sync;
    return SQLITE_IOERR_DELETE;
}

static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs, (void)name, (void)flags;
    *out = 0; /* no -journal, no -wal */
    return SQLITE_OK;
}

static int vfs_full(sqlite3_vfs *vfs, const char *name, int size, char *out)
{
    (void)vfs;
    sqlite3_snprintf(size, out, "%s", name);
    return SQLITE_OK;
}

static sqlite3_vfs fd_vfs;
static int fd_vfs_rc = SQLITE_ERROR;
static pthread_once_t fd_vfs_once = PTHREAD_ONCE_INIT;

/* The default VFS's randomness, sleep, time and library calls (none uses its sqlite3_vfs
 * argument for state in the unix VFS), these files' calls our own. */
static void fd_vfs_register(void)
{
    sqlite3_vfs *parent = sqlite3_vfs_find(NULL);
    if (parent == NULL)
        return;
    fd_vfs = *parent;
    fd_vfs.iVersion = 2; /* to xCurrentTimeInt64: not the system-call overrides */
    fd_vfs.szOsFile = (int)sizeof(fdfile_t);
    fd_vfs.pNext = NULL;
    fd_vfs.zName = FDVFS_NAME;
    fd_vfs.pAppData = NULL;
    fd_vfs.xOpen = vfs_open;
    fd_vfs.xDelete = vfs_delete;
    fd_vfs.xAccess = vfs_access;
    fd_vfs.xFullPathname = vfs_full;
    fd_vfs_rc = sqlite3_vfs_register(&fd_vfs, 0);
}

int store__open_fd(int fd, sqlite3 **db)
{
    char uri[64];
    *db = NULL;
    pthread_once(&fd_vfs_once, fd_vfs_register);
    if (fd_vfs_rc != SQLITE_OK)
        return fd_vfs_rc;
    snprintf(uri, sizeof uri, "file:vigil-fd?fd=%d", fd);
    return sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, FDVFS_NAME);
}

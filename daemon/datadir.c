/* daemon/datadir.c: --check-config's look at the data directory (see datadir.h).
 *
 * It mirrors store_open's first steps (storage/storage.c: mkdir of the last component, 0750;
 * vigil.lock opened O_RDWR | O_CREAT | O_NOFOLLOW and flock'ed; then SQLite's vigil.db and its
 * -wal and -shm, read and written) with checks that change nothing, so a configuration that
 * passes does not then stop the start on a missing parent, a read-only or foreign-owned
 * directory, a file of the wrong kind or a kernel filesystem (/proc, /sys: root's permissions
 * pass there, its files cannot be made). Permissions are the effective user's (AT_EACCESS): run
 * the check as the user the service runs as; a permission error names the user it ran as, since
 * an administrator's own account may be refused where the service's user is not. Whether a
 * vigild holds the directory is asked first, with a shared flock released at once: it conflicts
 * only with the exclusive lock a running vigild holds (a vigild starting in that same instant
 * would be refused, and say so). When one holds it, what a restart would fail on is said, not
 * failed: the unit's ExecReload= runs this check, and a reload rereads only the configuration,
 * so a data directory turned read-only under the running vigild must not block it (a token
 * revoked, a log level raised to find out why). Main thread only; no state. */
#include "datadir.h"
#include "path.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/magic.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

/* The files store_open and SQLite open in the directory, each read and written. */
static const char *const dir_files[] = {"vigil.lock", "vigil.db", "vigil.db-wal", "vigil.db-shm"};

/* After a permission error (e: its errno), appends to err who ran the check: the answer is that
 * user's, not necessarily the service's. */
static void add_user(char *err, size_t errsize, int e)
{
    if (e != EACCES && e != EPERM)
        return;
    uid_t uid = geteuid();
    const struct passwd *pw = getpwuid(uid); /* main thread: the static result is safe */
    size_t n = strlen(err);
    if (n + 1 >= errsize)
        return;
    if (pw != NULL)
        snprintf(err + n, errsize - n, "; checked as user %s (uid %u)", pw->pw_name, (unsigned)uid);
    else
        snprintf(err + n, errsize - n, "; checked as uid %u", (unsigned)uid);
}

/* The kernel's own filesystems, where no database can be made whatever the permissions say:
 * root (CAP_DAC_OVERRIDE) passes faccessat's W_OK on /proc and /sys, so the check said
 * "configuration ok" for --data-dir /proc/vigil and the start then failed (session 66). */
static const struct {
    unsigned long magic;
    const char *name;
} kernel_fs[] = {
    {PROC_SUPER_MAGIC, "proc"},
    {SYSFS_MAGIC, "sysfs"},
    {CGROUP_SUPER_MAGIC, "cgroup"},
    {CGROUP2_SUPER_MAGIC, "cgroup2"},
    {DEBUGFS_MAGIC, "debugfs"},
    {TRACEFS_MAGIC, "tracefs"},
    {SECURITYFS_MAGIC, "securityfs"},
    {DEVPTS_SUPER_MAGIC, "devpts"},
    {BPF_FS_MAGIC, "bpf"},
    {PSTOREFS_MAGIC, "pstore"},
    {EFIVARFS_MAGIC, "efivarfs"},
    {SELINUX_MAGIC, "selinuxfs"},
};

/* The name of the kernel filesystem (kernel_fs) path is on, or NULL (statfs failing too: the
 * other checks say why). */
static const char *kernel_fs_of(const char *path)
{
    struct statfs sf;
    if (statfs(path, &sf) != 0)
        return NULL;
    for (size_t i = 0; i < sizeof kernel_fs / sizeof kernel_fs[0]; i++)
        if ((unsigned long)sf.f_type == kernel_fs[i].magic)
            return kernel_fs[i].name;
    return NULL;
}

/* Why a kernel filesystem is refused, after its name. */
static const char kernel_fs_why[] =
    "a kernel filesystem where no database can be created, whatever the permissions";

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
        int e = errno;
        snprintf(err, errsize, "%s does not exist and cannot be created: %s: %s", dir, parent,
                 strerror(e));
        add_user(err, errsize, e);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errsize, "%s does not exist and cannot be created: %s is not a directory",
                 dir, parent);
        return -1;
    }
    if (faccessat(AT_FDCWD, parent, W_OK | X_OK, AT_EACCESS) != 0) {
        int e = errno;
        snprintf(err, errsize, "%s does not exist and cannot be created in %s: %s", dir, parent,
                 strerror(e));
        add_user(err, errsize, e);
        return -1;
    }
    const char *fs = kernel_fs_of(parent);
    if (fs != NULL) {
        snprintf(err, errsize, "%s does not exist and cannot be created in %s: %s is %s", dir,
                 parent, fs, kernel_fs_why);
        return -1;
    }
    return 0;
}

/* One of dir_files, when present: a regular file (O_NOFOLLOW refuses a link to the lock, and
 * SQLite's files are the database) that can be read and written. */
static int check_file(const char *dir, const char *name, char *err, size_t errsize)
{
    char path[4200];
    struct stat st;
    path_join(path, sizeof path, dir, name);
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0; /* created at the start */
        int e = errno;
        snprintf(err, errsize, "%s: %s", path, strerror(e));
        add_user(err, errsize, e);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errsize, "%s: not a regular file (%s)", path,
                 S_ISLNK(st.st_mode) ? "a symbolic link" : "a directory, device, FIFO or socket");
        return -1;
    }
    if (faccessat(AT_FDCWD, path, R_OK | W_OK, AT_EACCESS) != 0) {
        int e = errno;
        snprintf(err, errsize, "%s: %s (it is read and written)", path, strerror(e));
        add_user(err, errsize, e);
        return -1;
    }
    return 0;
}

/* Whether a running vigild holds dir/vigil.lock: a shared flock fails on its exclusive one.
 * O_NONBLOCK: a FIFO by that name must not stall the check (check_file refuses it). */
static int lock_held(const char *dir)
{
    char path[4200];
    struct stat st;
    path_join(path, sizeof path, dir, "vigil.lock");
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int held = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_SH | LOCK_NB) != 0 &&
               errno == EWOULDBLOCK;
    close(fd); /* releases the shared lock, if taken */
    return held;
}

/* What store_open would fail on in dir: 0, or -1 with the reason in err. */
static int check_dir(const char *dir, char *err, size_t errsize)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            return check_parent(dir, err, errsize);
        int e = errno;
        snprintf(err, errsize, "%s: %s", dir, strerror(e));
        add_user(err, errsize, e);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errsize, "%s: not a directory", dir);
        return -1;
    }
    if (faccessat(AT_FDCWD, dir, R_OK | W_OK | X_OK, AT_EACCESS) != 0) {
        int e = errno;
        snprintf(err, errsize, "%s: %s (the database is created and written there)", dir,
                 strerror(e));
        add_user(err, errsize, e);
        return -1;
    }
    const char *fs = kernel_fs_of(dir);
    if (fs != NULL) {
        snprintf(err, errsize, "%s: on %s, %s", dir, fs, kernel_fs_why);
        return -1;
    }
    for (size_t i = 0; i < sizeof dir_files / sizeof dir_files[0]; i++)
        if (check_file(dir, dir_files[i], err, errsize))
            return -1;
    return 0;
}

int datadir_check(const char *dir, char *err, size_t errsize, char *note, size_t notesize)
{
    err[0] = note[0] = '\0';
    int held = lock_held(dir);
    int rc = check_dir(dir, err, errsize);
    if (!held)
        return rc;
    char lock[4200];
    path_join(lock, sizeof lock, dir, "vigil.lock");
    snprintf(note, notesize,
             "%s is held: a vigild runs on this data directory (another would not start on it)",
             lock);
    return 0; /* err: what a restart would fail on, if anything */
}

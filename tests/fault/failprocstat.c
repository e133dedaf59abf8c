/* tests/fault/failprocstat.c: an LD_PRELOAD library for test_procmetrics.py's StatUnopenable that
 * makes vigild's opens of "/proc/self/stat" fail while a flag file exists, so a test can start
 * vigild with the descriptor api_start keeps (api/metrics_process.c) missing, which a /proc
 * mounted with hidepid or an SELinux policy can do, and then let the per-scrape opens through or
 * fail them again by deleting or re-creating the file.
 *
 * VIGIL_FAILPROCSTAT_FLAG names the flag file; it holds the errno to fail with, by name (EMFILE,
 * ENFILE, ENOMEM, ENOBUFS or EACCES: flagfile.h; anything else: EACCES). Only the exact path
 * "/proc/self/stat" fails, through open, open64, openat, openat64 and the fortified __open_2,
 * __open64_2 (vigild calls open; glibc may route it to any of them); every other open, and all of
 * them without the flag, go through to glibc's (dlsym(RTLD_NEXT)). A pread on a descriptor
 * already open is not touched. VIGIL_FAILPROCSTAT_SLOW_MS (digits, at most 10000) makes each
 * open of "/proc/self/stat" that goes through wait that long first, so scrapes opening it at
 * once are all inside the open before any of them keeps its descriptor (StatUnopenable's race
 * in metrics_process.c's stat_fd). Each passes through to glibc's openat (open(path) is
 * openat(AT_FDCWD, path)). On 64-bit glibc, open64 is open and openat64 is openat (off_t is 64
 * bits): the *64 entries here are aliases of the plain ones. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT, open64 */
#endif
#include "flagfile.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*openat_fn)(int, const char *, int, ...);

/* The errno an open of path is to fail with now, or 0. */
static int must_fail(const char *path)
{
    char text[32];
    if (path == NULL || strcmp(path, "/proc/self/stat") != 0 ||
        !fault_flag_read("VIGIL_FAILPROCSTAT_FLAG", text, sizeof text))
        return 0;
    return fault_errno_named(text, EACCES);
}

/* Whether an open of path is to fail now: errno is then set to must_fail's. */
static int fails(const char *path)
{
    int e = must_fail(path);
    if (e)
        errno = e;
    return e != 0;
}

/* How long an open of path that goes through waits first, in milliseconds: 0 but for
 * "/proc/self/stat" with VIGIL_FAILPROCSTAT_SLOW_MS set (digits only, at most 10000). */
static long slow_ms(const char *path)
{
    const char *v = getenv("VIGIL_FAILPROCSTAT_SLOW_MS");
    if (v == NULL || path == NULL || strcmp(path, "/proc/self/stat") != 0 || v[0] == '\0' ||
        strlen(v) > 5 || strspn(v, "0123456789") != strlen(v))
        return 0;
    long ms = strtol(v, NULL, 10);
    return ms <= 10000 ? ms : 0;
}

/* The mode argument, which follows flags only when they create a file (open(2)); 0 otherwise.
 * O_TMPFILE holds O_DIRECTORY's bit, so it is tested whole, as glibc's __OPEN_NEEDS_MODE does:
 * an opendir's O_DIRECTORY alone passes no mode, and reading one then is undefined. */
static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

/* openat's work once its mode is known (open's with AT_FDCWD): path failed, or glibc's openat. */
static int open_or_fail(int dir, const char *path, int flags, mode_t mode)
{
    static openat_fn real;
    if (fails(path))
        return -1;
    long ms = slow_ms(path);
    if (ms > 0)
        nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000}, NULL);
    if (real == NULL)
        real = (openat_fn)dlsym(RTLD_NEXT, "openat");
    return real(dir, path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return open_or_fail(AT_FDCWD, path, flags, mode);
}

int openat(int dir, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return open_or_fail(dir, path, flags, mode);
}

/* The fortified entry (_FORTIFY_SOURCE's open when flags are not a constant), never creating.
 * Not through open: in a fortified build open itself calls __open_2 then. Declared here too:
 * glibc's headers declare it only under _FORTIFY_SOURCE. */
int __open_2(const char *path, int flags);
int __open_2(const char *path, int flags)
{
    return open_or_fail(AT_FDCWD, path, flags, 0);
}

_Static_assert(sizeof(off_t) == 8, "open64 is open only where off_t has 64 bits");
int open64(const char *path, int flags, ...) __attribute__((alias("open")));
int openat64(int dir, const char *path, int flags, ...) __attribute__((alias("openat")));
int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

/* tests/fault/oldprocfd.c: an LD_PRELOAD library making vigild see /proc/self/fd as a kernel
 * before 6.2 shows it (Debian 12's 6.1, RHEL 8 and 9, Ubuntu 22.04): stat gives the folder a
 * size of 0, so api/metrics_process.c's count_fds counts the folder's entries instead, which
 * needs a descriptor (opendir). test_fds.py's OldKernelOutOfFds and test_procmetrics.py's
 * OldKernel run under it, so CI on a newer kernel exercises that path too.
 *
 * Only stat and stat64 of the exact path "/proc/self/fd" change (glibc 2.33 and later export
 * both; vigild calls stat); everything else goes through to glibc's (dlsym(RTLD_NEXT)). When
 * VIGIL_OLDPROCFD_MARK names a file, the first size cleared creates it, so a test can tell the
 * library took effect (a glibc routing stat elsewhere would otherwise pass unnoticed). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT, stat64 */
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char FD_DIR[] = "/proc/self/fd";

/* Creates the mark file once (later calls do nothing once it was made). */
static void mark(void)
{
    static int done;
    if (__atomic_load_n(&done, __ATOMIC_RELAXED))
        return;
    const char *path = getenv("VIGIL_OLDPROCFD_MARK");
    if (path == NULL)
        return;
    int f = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (f >= 0) { /* out of descriptors: tried again at the next call */
        close(f);
        __atomic_store_n(&done, 1, __ATOMIC_RELAXED);
    }
}

/* Whether a stat of path that returned r is one whose size is to be cleared. */
static int clears(int r, const char *path)
{
    if (r != 0 || strcmp(path, FD_DIR) != 0)
        return 0;
    mark();
    return 1;
}

int stat(const char *restrict path, struct stat *restrict st)
{
    static int (*real)(const char *restrict, struct stat *restrict);
    if (real == NULL)
        real = (int (*)(const char *restrict, struct stat *restrict))dlsym(RTLD_NEXT, "stat");
    int r = real(path, st);
    if (clears(r, path))
        st->st_size = 0;
    return r;
}

int stat64(const char *restrict path, struct stat64 *restrict st)
{
    static int (*real)(const char *restrict, struct stat64 *restrict);
    if (real == NULL)
        real = (int (*)(const char *restrict, struct stat64 *restrict))dlsym(RTLD_NEXT, "stat64");
    int r = real(path, st);
    if (clears(r, path))
        st->st_size = 0;
    return r;
}

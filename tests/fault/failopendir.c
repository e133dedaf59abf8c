/* tests/fault/failopendir.c: an LD_PRELOAD library for test_fds.py's PruneUnreadable that makes
 * opendir fail on vigild's snapshots folder while a flag file exists, so a test can make the
 * folder unreadable after a snapshot's copy succeeded (pruning and listing read it; the copy
 * does not), which running out of descriptors cannot do so precisely, and end it by deleting
 * the file.
 *
 * VIGIL_FAILOPENDIR_FLAG names the flag file; it holds the errno to fail with, by name (EMFILE,
 * ENFILE, ENOMEM, ENOBUFS or EACCES: flagfile.h; anything else: EMFILE). Only paths ending in
 * "/snapshots" fail; other opendir calls, and all of them without the flag, go through to glibc's
 * (looked up with dlsym(RTLD_NEXT)). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include "flagfile.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The errno an opendir of path is to fail with now, or 0. */
static int must_fail(const char *path)
{
    static const char tail[] = "/snapshots";
    size_t n = strlen(path);
    if (n < sizeof tail - 1 || strcmp(path + n - (sizeof tail - 1), tail) != 0)
        return 0;
    char text[32];
    if (!fault_flag_read("VIGIL_FAILOPENDIR_FLAG", text, sizeof text))
        return 0;
    return fault_errno_named(text, EMFILE);
}

DIR *opendir(const char *path)
{
    static DIR *(*real)(const char *);
    int e = must_fail(path);
    if (e) {
        errno = e;
        return NULL;
    }
    if (real == NULL)
        real = (DIR * (*)(const char *)) dlsym(RTLD_NEXT, "opendir");
    return real(path);
}

/* tests/fault/flagfile.h: the flag file the fault libraries share (failaccept.c, failopendir.c,
 * failprocstat.c): a fault is on while the file an environment variable names exists, and the
 * file's text says how it fails, an errno by name first. Header-only (static inline), so each
 * library stays one source file with no state of its own here. */
#ifndef VIGIL_FAULT_FLAGFILE_H
#define VIGIL_FAULT_FLAGFILE_H

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads the flag file that environment variable env names into text (at most size - 1 bytes,
 * NUL-terminated). Returns 1 when the file exists (the fault is on), 0 when it does not or env
 * is unset. Uses open, so a library interposing open must let the flag's path through. */
static inline int fault_flag_read(const char *env, char *text, size_t size)
{
    const char *flag = getenv(env);
    int f = flag ? open(flag, O_RDONLY | O_CLOEXEC) : -1;
    if (f < 0)
        return 0;
    ssize_t k = read(f, text, size - 1);
    close(f);
    text[k > 0 ? k : 0] = '\0';
    return 1;
}

/* The errno text begins with, by name (EMFILE, ENFILE, ENOMEM, ENOBUFS, EACCES), or dflt. */
static inline int fault_errno_named(const char *text, int dflt)
{
    static const struct {
        const char *name;
        int err;
    } names[] = {{"EMFILE", EMFILE},
                 {"ENFILE", ENFILE},
                 {"ENOMEM", ENOMEM},
                 {"ENOBUFS", ENOBUFS},
                 {"EACCES", EACCES}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strncmp(text, names[i].name, strlen(names[i].name)) == 0)
            return names[i].err;
    return dflt;
}

#endif

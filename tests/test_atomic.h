/* tests/test_atomic.h: a unit test's write of a file another thread or process reads live (a
 * fault library's flag file: tests/fault/failalloc.c reads VIGIL_FAILALLOC_FLAG at each large
 * allocation and aborts on text it does not expect), made whole: the text goes to a temporary
 * file beside it, which is renamed over it, so a reader that opens the path meanwhile sees the
 * old file (or none) or the new one, never an empty or half-written one (what fopen("w") and
 * fputs show a reader between the truncation and the write). The C side of vigiltest.py's
 * write_file_atomic. Header-only; any thread. */
#ifndef VIGIL_TEST_ATOMIC_H
#define VIGIL_TEST_ATOMIC_H

#include <stdio.h>
#include <string.h>

/* Replaces path's content with text. Returns 0, or -1 (errno set) when the temporary file
 * (path with ".tmp" after it) could not be written or renamed; it is removed then. */
static inline int test_write_atomic(const char *path, const char *text)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    int bad = fputs(text, f) == EOF;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

#endif

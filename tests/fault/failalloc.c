/* tests/fault/failalloc.c: an LD_PRELOAD library for the integration tests that makes large
 * allocations fail on chosen threads while a flag file exists, so a test can make vigild run
 * out of memory where it wants to (a training) and nowhere else, and end it by deleting the file.
 *
 * The flag file holds the smallest size that fails, in bytes (empty: 65536), so a test can move
 * the failure from one allocation of a training to another by rewriting it; a second number
 * after it (session 57), the largest size that fails: "2064 2064" fails the allocations of
 * exactly 2,064 bytes alone, so a test can aim at one allocation by the size the code asks for
 * (a member list's copy: 8 bytes a member) with no premise about the sizes of the others (the
 * C library's fopen, which a hold point calls). The environment
 * (read at each allocation at least VIGIL_FAILALLOC_MIN bytes):
 *   VIGIL_FAILALLOC_FLAG    the flag file's path (required)
 *   VIGIL_FAILALLOC_MIN     sizes below this never fail, and cost nothing (default 4096)
 *   VIGIL_FAILALLOC_THREAD  the thread-name prefix of the threads where they fail (default
 *                           "train-": vigild's training pool, daemon/wpool.c)
 * A failed allocation returns NULL with errno ENOMEM, as glibc's would. The others go through to
 * glibc (its __libc_* entry points: no dlsym, which itself allocates); free is glibc's own. Not
 * for sanitizer builds: ASan must own malloc. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t k, size_t n);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
void *memalign(size_t align, size_t n); /* glibc's malloc.h, not included: it declares these */

/* 1 when an allocation of n bytes is to fail here and now. Costs a getenv below the floor; at
 * or above it, a prctl and, on a chosen thread, an open and a read (no allocation). */
static int must_fail(size_t n)
{
    const char *floor = getenv("VIGIL_FAILALLOC_MIN");
    if (n < (floor ? strtoull(floor, NULL, 10) : 4096))
        return 0;
    const char *prefix = getenv("VIGIL_FAILALLOC_THREAD");
    if (prefix == NULL)
        prefix = "train-";
    char name[17] = {0};
    if (prctl(PR_GET_NAME, name, 0, 0, 0) != 0 || strncmp(name, prefix, strlen(prefix)) != 0)
        return 0;
    const char *flag = getenv("VIGIL_FAILALLOC_FLAG");
    int fd = flag ? open(flag, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return 0;
    char text[64];
    ssize_t k = read(fd, text, sizeof text - 1);
    close(fd);
    text[k > 0 ? k : 0] = '\0';
    char *end = text;
    const unsigned long long low = k > 0 ? strtoull(text, &end, 10) : 65536;
    const unsigned long long high = strtoull(end, &end, 10); /* 0: none given, no bound */
    if (n < low || (high != 0 && n > high))
        return 0;
    errno = ENOMEM;
    return 1;
}

void *malloc(size_t n)
{
    return must_fail(n) ? NULL : __libc_malloc(n);
}

void *calloc(size_t k, size_t n)
{
    if (n && k > SIZE_MAX / n)
        return __libc_calloc(k, n); /* glibc's overflow error */
    return must_fail(k * n) ? NULL : __libc_calloc(k, n);
}

void *realloc(void *p, size_t n)
{
    return must_fail(n) ? NULL : __libc_realloc(p, n);
}

void *memalign(size_t align, size_t n)
{
    return must_fail(n) ? NULL : __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    return must_fail(n) ? NULL : __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    if (must_fail(n))
        return ENOMEM;
    void *p = __libc_memalign(align, n);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

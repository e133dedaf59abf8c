/* tests/fault/failalloc.c: an LD_PRELOAD library for the integration tests that makes large
 * allocations fail on chosen threads while a flag file exists, so a test can make vigild run
 * out of memory where it wants to (a training) and nowhere else, and end it by deleting the file.
 *
 * The flag file holds the smallest size that fails, in bytes (empty: 65536), so a test can move
 * the failure from one allocation of a training to another by rewriting it; a second number
 * after it (session 57), the largest size that fails: "2064 2064" fails the allocations of
 * exactly 2,064 bytes alone, so a test can aim at one allocation by the size the code asks for
 * (a member list's copy: 8 bytes a member) with no premise about the sizes of the others (the
 * C library's fopen, which a hold point calls). Any other text ("2064 x", "2064 1000": a test's
 * mistake, which would fail other allocations than it meant, or none) is said on stderr and
 * aborts the process, so the test fails loudly (review, session 57). The environment (read at
 * each allocation at least VIGIL_FAILALLOC_MIN bytes):
 *   VIGIL_FAILALLOC_FLAG    the flag file's path (required)
 *   VIGIL_FAILALLOC_MIN     sizes below this never fail, and cost nothing (default 4096)
 *   VIGIL_FAILALLOC_THREAD  the thread-name prefix of the threads where they fail (default
 *                           "train-": vigild's training pool, daemon/wpool.c)
 *   VIGIL_FAILALLOC_LOG     optional: a file each failure appends its size to, one a line, so
 *                           a test can assert that the allocation it aimed at failed, and
 *                           nothing else (review, session 57)
 * A failed allocation returns NULL with errno ENOMEM, as glibc's would. The others go through to
 * glibc (its __libc_* entry points: no dlsym, which itself allocates); free is glibc's own. Not
 * for sanitizer builds: ASan must own malloc. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

/* Says the flag file's text is not what must_fail reads, and aborts. */
static void bad_flag(const char *text)
{
    static const char msg[] = "failalloc.c: the flag file holds neither \"MIN\" nor \"MIN MAX\" "
                              "(MIN <= MAX, bytes): ";
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, text, strlen(text));
    (void)!write(2, "\n", 1);
    abort();
}

/* Appends n to VIGIL_FAILALLOC_LOG, if set: digits by hand, nothing allocated. */
static void log_failure(size_t n)
{
    const char *path = getenv("VIGIL_FAILALLOC_LOG");
    int fd = path ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;
    if (fd < 0)
        return;
    char digits[24];
    size_t i = sizeof digits;
    digits[--i] = '\n';
    do
        digits[--i] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    (void)!write(fd, digits + i, sizeof digits - i);
    close(fd);
}

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
    char *end = text, *rest;
    unsigned long long low = 65536, high = ULLONG_MAX;
    if (k > 0) {
        low = strtoull(text, &end, 10);
        if (end == text || text[strspn(text, " \t\n")] == '-')
            bad_flag(text);
    }
    end += strspn(end, " \t\n");
    if (*end != '\0') { /* a second number: the largest size that fails */
        high = strtoull(end, &rest, 10);
        if (rest == end || *end == '-' || rest[strspn(rest, " \t\n")] != '\0' || high < low)
            bad_flag(text);
    }
    if (n < low || n > high)
        return 0;
    log_failure(n);
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

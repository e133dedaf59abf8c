/* tests/fault/clockshift.c: an LD_PRELOAD library for the integration tests that moves vigild's
 * wall clock (CLOCK_REALTIME) forward by the milliseconds a file holds, so a test can make a
 * minute of silence pass at once (test_metrics.py SilenceShifted: vigil_devices_silent's 60 s
 * bucket) without a test-only setting in the product. The monotonic clocks stay true, so the
 * loop's timers, the watchdog and the store's back-off run as they would.
 *
 * The environment: VIGIL_CLOCKSHIFT_FILE, the file's path; absent file: no shift. The file is
 * read again at most every 20 ms of monotonic time (an open and a read, no allocation), so a
 * rewrite takes effect within that. The tests replace it whole (vigiltest.py's
 * write_file_atomic: a temporary file renamed over it), so a read sees the old number or the
 * new one, never a part. What a read can still see: no file (before a test makes it, or after
 * its folder is removed: no shift, as documented), and an empty file or text that is not one
 * whole number (a file written in place, by hand or by an old test, caught between its
 * truncation and its write). Those keep the shift last read (0 at the start) rather than
 * stepping the clock back to the true one for 20 ms, which vigild would log and count as a
 * clock step the test did not make. Both clocks are read with the system call itself (no dlsym,
 * no vDSO): slower, and only for tests. In an ASan build it is preloaded after ASan's runtime,
 * which must come first (vigiltest.py's preload), and ASan's clock_gettime interceptor calls
 * this one. Any thread: the cache is two relaxed atomics; a thread racing a re-read sees the
 * old shift or the new one. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define REREAD_NS 20000000LL

static atomic_llong shift_ms;
static atomic_llong next_read_ns;

static int64_t sys_ns(clockid_t clk)
{
    struct timespec ts;
    if (syscall(SYS_clock_gettime, clk, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Parses the k bytes read into text (room for one more) as the shift: one decimal integer,
 * blanks around it allowed. Returns 0 for anything else (a read error, an empty file, text
 * that is not a whole number or that filled the buffer), which the caller takes as "no news". */
static int parse_shift(char *text, ssize_t k, int64_t *out)
{
    if (k <= 0 || k >= 31)
        return 0;
    text[k] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || errno != 0)
        return 0;
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
        end++;
    if (*end != '\0')
        return 0;
    *out = v;
    return 1;
}

/* The shift in ms, from the file when the cached value is older than REREAD_NS. Leaves errno
 * as it found it: the caller's clock_gettime succeeds, and its caller may still be about to
 * read errno from an earlier call (open's ENOENT or parse_shift's errno = 0 would replace it). */
static int64_t shift_now(void)
{
    const int64_t now = sys_ns(CLOCK_MONOTONIC);
    if (now < atomic_load_explicit(&next_read_ns, memory_order_relaxed))
        return atomic_load_explicit(&shift_ms, memory_order_relaxed);
    const int saved_errno = errno;
    const char *path = getenv("VIGIL_CLOCKSHIFT_FILE");
    int64_t v = 0;
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        char text[32];
        ssize_t k = read(fd, text, sizeof text - 1);
        close(fd);
        if (!parse_shift(text, k, &v))
            v = atomic_load_explicit(&shift_ms, memory_order_relaxed);
    }
    atomic_store_explicit(&shift_ms, v, memory_order_relaxed);
    atomic_store_explicit(&next_read_ns, now + REREAD_NS, memory_order_relaxed);
    errno = saved_errno;
    return v;
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
    if (syscall(SYS_clock_gettime, clk, ts) != 0)
        return -1;
    if (clk != CLOCK_REALTIME && clk != CLOCK_REALTIME_COARSE)
        return 0;
    int64_t ns = (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec + shift_now() * 1000000LL;
    ts->tv_sec = (time_t)(ns / 1000000000LL);
    ts->tv_nsec = (long)(ns % 1000000000LL);
    return 0;
}

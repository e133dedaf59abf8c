/* common/log.c: levelled logging to stderr; see log.h. Any thread. */
#include "log.h"
#include "batch.h"
#include "err.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_int current_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
/* The levels' syslog priorities (LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR) as sd-daemon(3)'s
 * line prefixes, for the journal. */
static const char *const level_prefix[] = {"<7>", "<6>", "<4>", "<3>"};

/* Whether stderr is systemd's journal stream: set once, before the first line is printed. */
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static int to_journal;

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected to stdout and stderr
 * (systemd.exec(5)). Only when stderr is still that stream (not redirected by a wrapper or a
 * test) does it read "<N>" prefixes as the priority; elsewhere they would be noise. */
static void journal_detect(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char end;
    struct stat st;
    if (v == NULL || sscanf(v, "%llu:%llu%c", &dev, &ino, &end) != 2)
        return;
    if (fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
        (unsigned long long)st.st_ino == ino)
        to_journal = 1;
}

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load_explicit(&current_level, memory_order_relaxed);
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = LOG_LEVEL_WARN;
        return 0;
    }
    return ERR_INVAL;
}

const char *log_journal_prefix(enum log_level level)
{
    pthread_once(&journal_once, journal_detect);
    return to_journal ? level_prefix[level] : "";
}

bool log_due(_Atomic int64_t *last, int64_t now_s, int64_t every_s)
{
    int64_t prev = atomic_load(last);
    if (prev != 0 && now_s - prev < every_s)
        return false;
    /* The compare-exchange picks the one winner: a racer that read the same prev fails it. */
    return atomic_compare_exchange_strong(last, &prev, now_s ? now_s : 1);
}

unsigned log_limit_take(struct log_limit *l, int64_t now_s, int64_t every_s, unsigned burst,
                        uint64_t *held)
{
    if (log_due(&l->period_s, now_s, every_s))
        atomic_store(&l->said, 0); /* a new period: its first `burst` are said again */
    const uint64_t n = atomic_fetch_add(&l->said, 1) + 1;
    if (n > burst) {
        atomic_fetch_add(&l->held, 1);
        return 0;
    }
    *held = atomic_exchange(&l->held, 0);
    return (unsigned)n;
}

uint64_t log_limit_flush(struct log_limit *l, int64_t now_s, int64_t every_s)
{
    if (atomic_load(&l->held) == 0)
        return 0;
    if (every_s > 0 && now_s - atomic_load(&l->period_s) < every_s)
        return 0;
    return atomic_exchange(&l->held, 0);
}

const char *log_limit_note(char *buf, size_t size, unsigned place, uint64_t held, unsigned burst,
                           int64_t every_s)
{
    int n = 0;
    buf[0] = '\0';
    if (held > 0)
        n = snprintf(buf, size, " (%llu more since the line before, not logged one by one)",
                     (unsigned long long)held);
    if (place >= burst && n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n,
                 " (the last such line for up to %lld s: later ones only counted)",
                 (long long)every_s);
    return buf;
}

/* A message of len bytes that vsnprintf cut to fit msg (size bytes): cut again where a UTF-8
 * character begins (batch_name_cut: vsnprintf's cut could end in half of one, which the journal
 * shows as U+FFFD and a JSON reader of the log refuses) and marked, so a reader knows the line
 * goes on (task ops68: a device name and an opening's channel names can fill it). */
static void cut_mark(char *msg, size_t size, size_t len)
{
    char mark[64];
    const int m = snprintf(mark, sizeof mark, "... (a line of %zu bytes, cut)", len);
    if (m < 0 || (size_t)m >= size)
        return;
    const size_t keep = batch_name_cut(msg, size - 1 - (size_t)m);
    memcpy(msg + keep, mark, (size_t)m + 1);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if ((int)level < atomic_load_explicit(&current_level, memory_order_relaxed))
        return;
    char msg[LOG_LINE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    const int len = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (len >= (int)sizeof msg)
        cut_mark(msg, sizeof msg, (size_t)len);

    const char *prefix = log_journal_prefix(level);
    if (prefix[0]) {
        /* The journal records its own time; the prefix gives the line its priority, so
         * `journalctl -p warning` and alerting on priority see warnings and errors. */
        fprintf(stderr, "%s%-5s %s\n", prefix, level_names[level], msg);
        return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            level_names[level], msg);
}

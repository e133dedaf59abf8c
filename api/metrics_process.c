/* api/metrics_process.c: /metrics' process_* families, the ones every Prometheus client library
 * exports about the process that serves them. Names, types and HELP texts are those of Go's
 * client_golang process collector (prometheus/procfs underneath), so dashboards and alerts
 * written for any exporter work on vigild unchanged:
 *
 *   process_cpu_seconds_total      counter  utime + stime of /proc/self/stat, over CLK_TCK
 *   process_resident_memory_bytes  gauge    stat's rss (pages) x the page size
 *   process_virtual_memory_bytes   gauge    stat's vsize (bytes)
 *   process_start_time_seconds     gauge    the boot's wall-clock time + stat's starttime
 *   process_open_fds               gauge    the size of /proc/self/fd (or its entries; or the
 *                                           soft limit when listing them fails with EMFILE)
 *   process_max_fds                gauge    getrlimit(RLIMIT_NOFILE)'s soft limit
 *   process_virtual_memory_max_bytes
 *                                  gauge    getrlimit(RLIMIT_AS)'s soft limit; unlimited is
 *                                           2^64 - 1, 1.8446744073709552e+19, as Go prints it
 *                                           (prometheus/procfs reads /proc/self/limits' soft
 *                                           "Max address space", "unlimited" as ^uint64(0))
 *
 * Read at each scrape, except the start time: computed at the first scrape and kept in the
 * server (srv->proc_start_us). The kernel's starttime (clock ticks after boot) rather than a time
 * vigild records in main: it is the process's real start, before the configuration, the
 * database and the restore, as Go's and Python's clients give it. The boot's wall-clock time is
 * the wall clock less CLOCK_BOOTTIME (what /proc/stat's btime says, which Go uses, without its
 * truncation to whole seconds), so it moves when the wall clock is stepped: recomputed at each
 * scrape, a step would move the start time, which changes() and the rules (VigilRestarting,
 * VigilAnomalyEndsLost) would read as a restart. On vigild's clock, as every other timestamp
 * vigild exports.
 *
 * /proc/self/stat is read through a descriptor api_start opened (api__process_open, kept in
 * srv->proc_stat_fd until api_stop), with pread at offset 0: procfs makes the text again at each
 * read from offset 0 (seq_read_iter resets its record and buffer when the position is 0), so
 * each scrape sees the current CPU time and memory. Opened at each scrape as before, the read
 * failed with EMFILE exactly when the descriptors had run out, and the CPU and memory families
 * vanished when an SRE looked at them (docs/reliability.md "Process metrics at fd exhaustion,
 * the connection gauges (session 62)"). When that open at the start failed (EMFILE or ENFILE
 * at a start at fd exhaustion; an LSM policy; hidepid cannot: a process always sees its own
 * /proc entry), each scrape opens the file once more until one such open works, and the
 * descriptor is kept in srv->proc_stat_fd: a transient failure at the start heals at the next
 * scrape, and from then on the read survives fd exhaustion too (docs/reliability.md
 * "/proc/self/stat opened again, refusals plotted (session 64)").
 *
 * A read that fails (out of descriptors, a /proc without the field) leaves out the families it
 * feeds, never the scrape: the answer is still a 200 with everything else, and the first
 * failure of each source in an episode is logged once (srv->proc_logged, one bit per source,
 * cleared when that source is read again: the next episode logs once more).
 *
 * Counting descriptors: the size of /proc/self/fd (Linux 6.2 and later), 3 us at 19,800 open
 * descriptors; counting the entries instead (older kernels) took 62 to 190 ms there, 0.03 ms at
 * 100 (measured once on the 2-core CI box under load, docs/reliability.md "Process metrics
 * (session 61)"). Listing needs a descriptor: when none is left (opendir's EMFILE), every one
 * below the soft limit is in use, and that limit is the count (tests/fault/oldprocfd.c makes a
 * newer kernel take this path).
 *
 * Any thread (libmicrohttpd's handlers); no state but srv's atomics: the two above and the
 * descriptor, set once (from -1, by compare-and-swap) and shared by concurrent preads (procfs
 * serialises them; none moves a file position). */
#include "api_int.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { SRC_STAT = 1, SRC_FD = 2, SRC_RLIMIT = 4, SRC_RLIMIT_AS = 8 };

/* Logs the first failure of source src in an episode (until read_again clears its bit). */
static void failed_once(api_server_t *srv, int src, const char *what, int err)
{
    int old = atomic_fetch_or(&srv->proc_logged, src);
    if (!(old & src))
        log_warn("/metrics: cannot read %s: %s; the process_* families it feeds are left out "
                 "(logged once until it is read again)",
                 what, strerror(err));
}

/* Source src was read: its episode of failures, if any, is over. */
static void read_again(api_server_t *srv, int src)
{
    if (atomic_load(&srv->proc_logged) & src)
        atomic_fetch_and(&srv->proc_logged, ~src);
}

/* The fields of /proc/self/stat the families use. */
struct pstat {
    unsigned long long utime, stime; /* clock ticks */
    unsigned long long starttime;    /* clock ticks after boot */
    unsigned long long vsize;        /* bytes */
    long long rss;                   /* pages */
};

int api__process_open(void)
{
    return open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
}

/* srv's descriptor of /proc/self/stat; when api_start could not open it, one opened now and
 * kept (the first scrape to open one sets it; another, opening at the same time, closes its
 * own and uses that one). -1 with errno set when the open fails: at most one open per scrape,
 * retried at the next. */
static int stat_fd(api_server_t *srv)
{
    int fd = atomic_load(&srv->proc_stat_fd);
    if (fd >= 0)
        return fd;
    int mine = api__process_open();
    if (mine < 0)
        return -1;
    if (!atomic_compare_exchange_strong(&srv->proc_stat_fd, &fd, mine)) {
        close(mine); /* fd is now the one kept */
        return fd;
    }
    log_info("/metrics: opened /proc/self/stat at a scrape; kept until the stop");
    return mine;
}

/* Reads /proc/self/stat through srv's descriptor (stat_fd); 0, or an errno value. */
static int read_pstat(api_server_t *srv, struct pstat *ps)
{
    char buf[1024];
    int fd = stat_fd(srv);
    if (fd < 0)
        return errno;
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n < 0)
        return errno;
    buf[(size_t)n] = '\0';
    /* The command name (field 2) is in parentheses and may hold spaces and ')': the fields
     * after it start after the last ')', one token each: 3 to 13 skipped, 14 utime, 15 stime,
     * 16 to 21 skipped, 22 starttime, 23 vsize, 24 rss (proc_pid_stat(5)). */
    const char *p = strrchr(buf, ')');
    if (!p)
        return EINVAL;
    if (sscanf(p + 1,
               " %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu %*s %*s %*s %*s %*s %*s"
               " %llu %llu %lld",
               &ps->utime, &ps->stime, &ps->starttime, &ps->vsize, &ps->rss) != 5)
        return EINVAL;
    return 0;
}

/* The wall-clock time of the boot, in microseconds since the epoch: the wall clock less the
 * time since boot (CLOCK_BOOTTIME, the clock of stat's starttime). What /proc/stat's btime says,
 * without its truncation to whole seconds (up to a second early). */
static int64_t boot_us(void)
{
    struct timespec real, boot;
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_BOOTTIME, &boot);
    return ((int64_t)real.tv_sec - boot.tv_sec) * 1000000 + (real.tv_nsec - boot.tv_nsec) / 1000;
}

/* The number of open descriptors; 0, or an errno value. Since Linux 6.2 the size stat gives for
 * /proc/self/fd is that number (the kernel counts its bitmap of open descriptors: microseconds,
 * and no descriptor needed, so it answers when they have run out); before, the size is 0 and the
 * directory's entries are counted (its own descriptor included, as Go's and Python's clients
 * count it), linear in the open descriptors. That needs a descriptor: opendir's EMFILE says
 * every one below the soft limit is in use, so the count is that limit (at least; any opened
 * above it before the limit was lowered are not seen), which is what the alert must see then. */
static int count_fds(unsigned long *out)
{
    struct stat st;
    if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0) {
        *out = (unsigned long)st.st_size;
        return 0;
    }
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        int err = errno;
        struct rlimit rl;
        if (err != EMFILE || getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
            return err;
        *out = (unsigned long)rl.rlim_cur;
        return 0;
    }
    unsigned long n = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    int err = errno;
    closedir(d);
    if (err)
        return err;
    *out = n;
    return 0;
}

static void gauge(sbuf_t *b, const char *name, const char *type, const char *help, double v)
{
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.15g\n", name, help, name, type, name, v);
}

/* A resource's soft limit as a gauge, or src's failure: the integer as it is; unlimited
 * (RLIM_INFINITY) as Go's client prints float64(^uint64(0)), which %.17g gives exactly. */
static void limit_gauge(api_server_t *srv, sbuf_t *b, int resource, int src, const char *what,
                        const char *name, const char *help)
{
    struct rlimit rl;
    if (getrlimit(resource, &rl) != 0) {
        failed_once(srv, src, what, errno);
        return;
    }
    read_again(srv, src);
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    if (rl.rlim_cur == RLIM_INFINITY)
        sbuf_printf(b, "%s %.17g\n", name, (double)UINT64_MAX);
    else
        sbuf_printf(b, "%s %llu\n", name, (unsigned long long)rl.rlim_cur);
}

void api__process_metrics(api_server_t *srv, sbuf_t *b)
{
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    struct pstat ps;
    int err = tck > 0 && page > 0 ? read_pstat(srv, &ps) : EINVAL;
    if (err) {
        failed_once(srv, SRC_STAT, "/proc/self/stat", err);
    } else {
        read_again(srv, SRC_STAT);
        gauge(b, "process_cpu_seconds_total", "counter",
              "Total user and system CPU time spent in seconds.",
              (double)(ps.utime + ps.stime) / (double)tck);
        gauge(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
              (double)ps.rss * (double)page);
        gauge(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
              (double)ps.vsize);
    }
    int64_t start_us = atomic_load(&srv->proc_start_us);
    if (start_us == 0 && !err) {
        int64_t none = 0;
        start_us = boot_us() + (int64_t)(ps.starttime * 1000000 / (unsigned long long)tck);
        /* Two first scrapes at once compute values a microsecond or so apart (the two clocks
         * are read one after the other): the first stored is kept and both export it, so the
         * value never changes once exported. */
        if (!atomic_compare_exchange_strong(&srv->proc_start_us, &none, start_us))
            start_us = none;
    }
    if (start_us != 0)
        gauge(b, "process_start_time_seconds", "gauge",
              "Start time of the process since unix epoch in seconds.", (double)start_us / 1e6);
    unsigned long fds = 0;
    err = count_fds(&fds);
    if (err) {
        failed_once(srv, SRC_FD, "/proc/self/fd", err);
    } else {
        read_again(srv, SRC_FD);
        gauge(b, "process_open_fds", "gauge", "Number of open file descriptors.", (double)fds);
    }
    limit_gauge(srv, b, RLIMIT_NOFILE, SRC_RLIMIT, "RLIMIT_NOFILE", "process_max_fds",
                "Maximum number of open file descriptors.");
    limit_gauge(srv, b, RLIMIT_AS, SRC_RLIMIT_AS, "RLIMIT_AS", "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.");
}

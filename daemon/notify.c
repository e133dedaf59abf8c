/* daemon/notify.c: sd_notify over $NOTIFY_SOCKET, and the watchdog and status timers.
 *
 * The protocol is one datagram per message on an AF_UNIX SOCK_DGRAM socket whose address
 * systemd gives in $NOTIFY_SOCKET: a path, or "@name" for Linux's abstract namespace (the '@'
 * becomes a leading NUL byte and the address length counts the name exactly, with no trailing
 * NUL). Sends are non-blocking: if systemd's queue is full a message is dropped, never waited
 * for, because the loop must not stall on its supervisor.
 *
 * Threads: everything runs on the loop thread (or the main thread before and after the loop)
 * except the extension thread, which only sends (sendto on the datagram socket, safe from any
 * thread) and reads its own fields under mu, a leaf lock. */
#include "notify.h"
#include "err.h"
#include "log.h"
#include "mcond.h"
#include "posint.h"
#include "vtime.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int notify_init(notify_t *n, char *err, size_t errsize)
{
    memset(n, 0, sizeof *n);
    n->fd = -1;
    const char *path = getenv("NOTIFY_SOCKET");
    const char *wd = getenv("WATCHDOG_USEC");
    const char *wdpid = getenv("WATCHDOG_PID");
    int rc = 0;
    pthread_mutex_init(&n->mu, NULL);
    int crc = mcond_init(&n->cond);
    if (crc != 0) {
        /* The extension thread cannot wait without it: no socket either (fd stays -1), so
         * notify_extend_start, the timers and notify_deinit leave mu and cond alone. */
        pthread_mutex_destroy(&n->mu);
        snprintf(err, errsize, "cannot create the notifier's condition variable: %s", err_str(crc));
        rc = -1;
    } else {
        n->mu_init = 1;
    }
    if (wd && *wd) {
        /* Digits only, as systemd writes them (common/posint.h): strtoull took " 5000000" and
         * "+5000000", and "-5" as 2^64 - 5 µs. As libsystemd's sd_watchdog_enabled(3) reads
         * them (review read64b), which keeps them apart from sd_notify(3):
         * - a bad value (0, text, a sign, above 2^64 - 1) turns off the watchdog alone, with a
         *   warning: READY=1 and the rest still go out, or a Type=notify unit's start would
         *   time out (a bad value used to turn off the whole socket);
         * - 2^64 - 1, systemd's USEC_INFINITY (what WatchdogSec=infinity writes), is no
         *   watchdog: kept as a period it made main.c's stall bound some 2.3 million years;
         * - the watchdog belongs to another process when WATCHDOG_PID is set and is not our
         *   pid, read as strictly: empty (systemd's parse_pid("") fails) or text included. */
        unsigned long long v = 0, pid = 0;
        int ours = wdpid == NULL || (posint_parse(wdpid, ULLONG_MAX, &pid) == 0 &&
                                     pid == (unsigned long long)getpid());
        int prc = posint_parse(wd, UINT64_MAX, &v);
        if (prc == ERR_RANGE)
            log_warn("systemd watchdog disabled: WATCHDOG_USEC='%s' is above %llu", wd,
                     (unsigned long long)UINT64_MAX);
        else if (prc != 0)
            log_warn("systemd watchdog disabled: WATCHDOG_USEC='%s' is not a positive integer", wd);
        else if (ours && v != UINT64_MAX)
            n->watchdog_usec = (uint64_t)v;
    }
    if (rc == 0 && path && *path) {
        size_t len = strlen(path);
        if ((path[0] != '/' && path[0] != '@') || len < 2 || len >= sizeof n->addr.sun_path) {
            snprintf(err, errsize, "NOTIFY_SOCKET='%s' is not an absolute path or @name", path);
            rc = -1;
        } else {
            n->addr.sun_family = AF_UNIX;
            memcpy(n->addr.sun_path, path, len);
            if (path[0] == '@') {
                n->addr.sun_path[0] = '\0';
                n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
            } else {
                n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
            }
            n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (n->fd < 0) {
                snprintf(err, errsize, "cannot create the notification socket: %s",
                         strerror(errno));
                rc = -1;
            }
        }
    }
    if (n->fd < 0)
        n->watchdog_usec = 0; /* nobody to ping */
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    return rc;
}

int notify_send(notify_t *n, const char *msg)
{
    static atomic_int warned;
    if (n->fd < 0)
        return 0;
    ssize_t w =
        sendto(n->fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&n->addr, n->addrlen);
    if (w < 0) {
        if (atomic_exchange(&warned, 1) == 0)
            log_warn("cannot notify systemd: %s (further failures not logged)", strerror(errno));
        return -1;
    }
    return 0;
}

int notify_sendf(notify_t *n, const char *fmt, ...)
{
    if (n->fd < 0)
        return 0;
    char msg[NOTIFY_WHY_MAX + 64]; /* the withheld pings' STATUS= with its reason whole */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return notify_send(n, msg);
}

static void on_watchdog(uv_timer_t *t)
{
    notify_t *n = t->data;
    char why[NOTIFY_WHY_MAX];
    if (n->health_cb && !n->health_cb(n->status_arg, why, sizeof why)) {
        /* No ping: systemd restarts vigild when this lasts for the watchdog period. */
        if (!n->withheld) {
            log_error("watchdog: not pinging systemd: %s", why);
            notify_sendf(n, "STATUS=unhealthy, watchdog pings withheld: %s", why);
        }
        n->withheld = 1;
        return;
    }
    if (n->withheld)
        log_warn("watchdog: healthy again, pinging systemd");
    n->withheld = 0;
    notify_send(n, "WATCHDOG=1");
}

static void on_status(uv_timer_t *t)
{
    notify_t *n = t->data;
    char status[512];
    n->status_cb(n->status_arg, status, sizeof status);
    notify_sendf(n, "STATUS=%s", status);
}

void notify_start(notify_t *n, uv_loop_t *loop, uint64_t status_ms, notify_status_cb cb,
                  notify_health_cb health, void *arg)
{
    if (n->fd < 0 || n->timers)
        return;
    n->timers = 1;
    n->status_cb = cb;
    n->health_cb = health;
    n->status_arg = arg;
    uv_timer_init(loop, &n->watchdog);
    uv_timer_init(loop, &n->status);
    n->watchdog.data = n->status.data = n;
    if (n->watchdog_usec) {
        /* Half the period, as sd_watchdog_enabled(3) advises: one late turn is not fatal. */
        uint64_t ms = n->watchdog_usec / 2000;
        if (ms == 0)
            ms = 1;
        notify_send(n, "WATCHDOG=1");
        uv_timer_start(&n->watchdog, on_watchdog, ms, ms);
    }
    if (cb && status_ms)
        uv_timer_start(&n->status, on_status, status_ms, status_ms);
    /* Neither timer keeps the loop alive: shutdown ends the loop when its work is done. */
    uv_unref((uv_handle_t *)&n->watchdog);
    uv_unref((uv_handle_t *)&n->status);
}

void notify_stop(notify_t *n)
{
    if (n->timers) {
        uv_close((uv_handle_t *)&n->watchdog, NULL);
        uv_close((uv_handle_t *)&n->status, NULL);
        n->timers = 0;
    }
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The extension thread: the first message at once, then one per period in which the process
 * used at least NOTIFY_EXTEND_MIN_CPU_MS of CPU (a process blocked for good uses next to none,
 * and is left to systemd's timeout). */
static void *extend_main(void *arg)
{
    notify_t *n = arg;
    double t0 = vtime_mono_s(), cpu = cpu_seconds();
    int first = 1, idle_logged = 0;
    pthread_mutex_lock(&n->mu);
    while (!n->extend_stop) {
        double now_cpu = cpu_seconds();
        if (first || now_cpu - cpu >= NOTIFY_EXTEND_MIN_CPU_MS * 1e-3) {
            char msg[256];
            snprintf(msg, sizeof msg, "EXTEND_TIMEOUT_USEC=%llu\nSTATUS=%s (%.0f s)",
                     NOTIFY_EXTEND_USEC, n->what, vtime_mono_s() - t0);
            notify_send(n, msg);
            idle_logged = 0;
        } else if (!idle_logged) {
            log_warn("%s: no progress (under %d ms of CPU in %d ms): not extending systemd's "
                     "timeout",
                     n->what, NOTIFY_EXTEND_MIN_CPU_MS, NOTIFY_EXTEND_PERIOD_MS);
            idle_logged = 1;
        }
        first = 0;
        cpu = now_cpu;
        struct timespec dl;
        mcond_deadline(&dl, NOTIFY_EXTEND_PERIOD_MS);
        while (!n->extend_stop && pthread_cond_timedwait(&n->cond, &n->mu, &dl) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

int notify_extend_start(notify_t *n, const char *what)
{
    if (n->fd < 0)
        return 0;
    pthread_mutex_lock(&n->mu);
    snprintf(n->what, sizeof n->what, "%s", what);
    pthread_mutex_unlock(&n->mu);
    if (n->extending)
        return 0;
    n->extend_stop = 0;
    int rc = pthread_create(&n->extend_thread, NULL, extend_main, n);
    if (rc) {
        log_warn("cannot start the systemd timeout extension thread: %s", strerror(rc));
        return -1;
    }
    n->extending = 1;
    return 0;
}

void notify_extend_stop(notify_t *n)
{
    if (!n->extending)
        return;
    pthread_mutex_lock(&n->mu);
    n->extend_stop = 1;
    pthread_cond_signal(&n->cond);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->extend_thread, NULL);
    n->extending = 0;
}

void notify_deinit(notify_t *n)
{
    notify_extend_stop(n);
    notify_stop(n);
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
    if (n->mu_init) {
        pthread_cond_destroy(&n->cond);
        pthread_mutex_destroy(&n->mu);
        n->mu_init = 0;
    }
}

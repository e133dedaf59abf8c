/* daemon/notify.h: the systemd notification protocol (sd_notify) without libsystemd.
 *
 * When vigild runs as a Type=notify service, systemd passes the path of a datagram socket in
 * $NOTIFY_SOCKET ("/run/..." or "@name" for the abstract namespace) and, with WatchdogSec=, the
 * watchdog period in $WATCHDOG_USEC. vigild sends newline-separated KEY=VALUE assignments:
 * READY=1 once it listens, STATUS=... lines, RELOADING=1 / READY=1 around a reload, STOPPING=1
 * at shutdown, and WATCHDOG=1 from a timer on the libuv loop at half the period, so a loop that
 * stops turning stops pinging and systemd restarts the service. Before each ping the timer asks
 * a health callback (the daemon checks that the storage writer makes progress): while it says
 * no, no ping is sent, so a stuck writer is restarted too. During a long start-up or shutdown a
 * small thread sends EXTEND_TIMEOUT_USEC= every NOTIFY_EXTEND_PERIOD_MS while the process is
 * using CPU (a hung one is not kept alive). Without $NOTIFY_SOCKET every call is a no-op.
 * Loop thread only, except that notify_send may be called from any thread. */
#ifndef VIGIL_NOTIFY_H
#define VIGIL_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include <pthread.h>

/* Fills buf (size bytes) with a status text; called by the status timer on the loop thread. */
typedef void (*notify_status_cb)(void *arg, char *buf, size_t size);

/* Called by the watchdog timer (loop thread) before each ping: returns 1 when the daemon is
 * healthy, else 0 with the reason in why (then no ping is sent). */
typedef int (*notify_health_cb)(void *arg, char *why, size_t size);

/* The room the watchdog gives that reason: daemon/health.h's HEALTH_WHY_MAX, so the log line and
 * the STATUS= text carry every reason whole (main.c checks the two agree). */
#define NOTIFY_WHY_MAX 2048

/* The start-up and shutdown extension: a message every period, each extending the timeout by
 * NOTIFY_EXTEND_USEC from its arrival. */
#define NOTIFY_EXTEND_PERIOD_MS 2000
#define NOTIFY_EXTEND_USEC      10000000ull
/* The CPU a period must have used to count as progress: 20 ms, 1 % of one core. A start at work
 * (the database opened, detectors restored, the catch-up) uses far more, even on a loaded
 * machine; a blocked one uses next to none, but not none: a thread polling every 100 ms (the
 * test hold hook) used 0.7 ms per period at a load of 2 and more under CI's, past the 1 ms this
 * was until session 54, and kept a hung start alive. */
#define NOTIFY_EXTEND_MIN_CPU_MS 20

typedef struct notify {
    int fd; /* -1 when not under systemd */
    struct sockaddr_un addr;
    socklen_t addrlen;
    uint64_t watchdog_usec; /* 0: no watchdog */
    uv_timer_t watchdog, status;
    int timers; /* nonzero while the timers are initialised */
    notify_status_cb status_cb;
    notify_health_cb health_cb;
    void *status_arg;
    int withheld; /* the last watchdog tick found the daemon unhealthy */
    /* The extension thread (notify_extend_start): mu guards extend_stop and what. */
    pthread_t extend_thread;
    int extending, mu_init;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int extend_stop;
    char what[160];
} notify_t;

/* Reads $NOTIFY_SOCKET and $WATCHDOG_USEC (and $WATCHDOG_PID, which must name this process)
 * and removes them from the environment, so child processes (the --demo feed) do not talk to
 * systemd in vigild's name. A malformed $WATCHDOG_USEC, or systemd's infinity (2^64 - 1), is no
 * watchdog (watchdog_usec 0; the first logged as a warning) and leaves the socket alone, as
 * libsystemd keeps sd_watchdog_enabled apart from sd_notify. Returns 0 (also when the variables
 * are absent: every later call is then a no-op), or -1 with the reason in err (a malformed
 * $NOTIFY_SOCKET, no socket). */
int notify_init(notify_t *n, char *err, size_t errsize);

/* Sends one message (newline-separated assignments, e.g. "READY=1\nSTATUS=serving"). Returns 0,
 * or -1 (the error is logged once; systemd gone is not fatal to vigild). */
int notify_send(notify_t *n, const char *msg);

/* printf-style notify_send. */
int notify_sendf(notify_t *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Starts the watchdog timer (when $WATCHDOG_USEC was set: WATCHDOG=1 every half period while
 * health, which may be NULL, says the daemon is healthy) and the status timer (STATUS= from cb
 * every status_ms). Does nothing without $NOTIFY_SOCKET. */
void notify_start(notify_t *n, uv_loop_t *loop, uint64_t status_ms, notify_status_cb cb,
                  notify_health_cb health, void *arg);

/* Starts (or, when running, relabels) the extension thread: now and every
 * NOTIFY_EXTEND_PERIOD_MS in which the process used NOTIFY_EXTEND_MIN_CPU_MS of CPU or more,
 * "EXTEND_TIMEOUT_USEC=10000000" and
 * "STATUS=what (N s)". For the blocking phases before READY=1 and after STOPPING=1. Returns 0,
 * or -1 when the thread cannot start (logged; systemd's own timeout then applies). */
int notify_extend_start(notify_t *n, const char *what);

/* Stops the extension thread and waits for it. Idempotent. */
void notify_extend_stop(notify_t *n);

/* Closes the timers (their handles close on the next loop turn); messages can still be sent.
 * Idempotent. Call it before the loop is to end: the timers do not keep it alive, but an open
 * handle would keep uv_loop_close from succeeding. */
void notify_stop(notify_t *n);

/* Stops the timers and the extension thread, and closes the socket. Idempotent. */
void notify_deinit(notify_t *n);

#endif

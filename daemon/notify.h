/* daemon/notify.h: the systemd notification protocol (sd_notify) without libsystemd.
 *
 * When vigild runs as a Type=notify service, systemd passes the path of a datagram socket in
 * $NOTIFY_SOCKET ("/run/..." or "@name" for the abstract namespace) and, with WatchdogSec=, the
 * watchdog period in $WATCHDOG_USEC. vigild sends newline-separated KEY=VALUE assignments:
 * READY=1 once it listens, STATUS=... lines, RELOADING=1 / READY=1 around a reload, STOPPING=1
 * at shutdown, and WATCHDOG=1 from a timer on the libuv loop at half the period, so a loop that
 * stops turning stops pinging and systemd restarts the service. Without $NOTIFY_SOCKET every
 * call is a no-op. Loop thread only. */
#ifndef VIGIL_NOTIFY_H
#define VIGIL_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

/* Fills buf (size bytes) with a status text; called by the status timer on the loop thread. */
typedef void (*notify_status_cb)(void *arg, char *buf, size_t size);

typedef struct notify {
    int fd; /* -1 when not under systemd */
    struct sockaddr_un addr;
    socklen_t addrlen;
    uint64_t watchdog_usec; /* 0: no watchdog */
    uv_timer_t watchdog, status;
    int timers; /* nonzero while the timers are initialised */
    notify_status_cb status_cb;
    void *status_arg;
} notify_t;

/* Reads $NOTIFY_SOCKET and $WATCHDOG_USEC (and $WATCHDOG_PID, which must name this process)
 * and removes them from the environment, so child processes (the --demo feed) do not talk to
 * systemd in vigild's name. Returns 0 (also when the variables are absent: every later call is
 * then a no-op), or -1 with the reason in err (a malformed variable, no socket). */
int notify_init(notify_t *n, char *err, size_t errsize);

/* Sends one message (newline-separated assignments, e.g. "READY=1\nSTATUS=serving"). Returns 0,
 * or -1 (the error is logged once; systemd gone is not fatal to vigild). */
int notify_send(notify_t *n, const char *msg);

/* printf-style notify_send. */
int notify_sendf(notify_t *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Starts the watchdog timer (when $WATCHDOG_USEC was set: WATCHDOG=1 every half period) and the
 * status timer (STATUS= from cb every status_ms). Does nothing without $NOTIFY_SOCKET. */
void notify_start(notify_t *n, uv_loop_t *loop, uint64_t status_ms, notify_status_cb cb, void *arg);

/* Closes the timers (their handles close on the next loop turn); messages can still be sent.
 * Idempotent. Call it before the loop is to end: the timers do not keep it alive, but an open
 * handle would keep uv_loop_close from succeeding. */
void notify_stop(notify_t *n);

/* Stops the timers and closes the socket. Idempotent. */
void notify_deinit(notify_t *n);

#endif

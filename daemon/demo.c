/* daemon/demo.c: --demo: runs vigil-sim (built next to vigild) as a child process feeding this
 * daemon's stream socket, so a new user sees data moving within seconds. Loop thread only. */
#include "demo.h"
#include "log.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    demo_t *d = p->data;
    if (!d->stopping)
        log_warn("demo: vigil-sim exited (status %lld, signal %d)", (long long)status, sig);
    d->running = 0;
    uv_close((uv_handle_t *)p, NULL);
}

int demo_start(demo_t *d, uv_loop_t *loop, unsigned stream_port)
{
    memset(d, 0, sizeof *d);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 32);
    if (n <= 0) {
        log_error("demo: cannot locate vigild's own directory");
        return -1;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    snprintf(slash + 1, sizeof exe - (size_t)(slash + 1 - exe), "vigil-sim");
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", stream_port);
    char *args[] = {exe,   "--stream",   addr, "--devices", "4", "--backfill",
                    "900", "--fault-at", "45", "--quiet",   NULL};
    uv_process_options_t po = {0};
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = 1},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2}};
    po.file = exe;
    po.args = args;
    po.exit_cb = on_exit_cb;
    po.stdio = stdio;
    po.stdio_count = 3;
    d->proc.data = d;
    int rc = uv_spawn(loop, &d->proc, &po);
    if (rc) {
        log_error("demo: cannot start %s: %s", exe, uv_strerror(rc));
        return -1;
    }
    d->running = 1;
    log_info("demo: vigil-sim feeds 4 simulated pumps (15 minutes of history, then live; faults "
             "from 45 s)");
    return 0;
}

void demo_stop(demo_t *d)
{
    if (d->running) {
        d->stopping = 1;
        uv_process_kill(&d->proc, SIGTERM);
    }
}

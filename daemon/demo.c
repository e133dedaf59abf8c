/* daemon/demo.c: --demo: runs vigil-sim (built next to vigild) as a child process feeding this
 * daemon's stream socket, so a new user sees data moving within seconds. Loop thread only. */
#include "demo.h"
#include "err.h"
#include "log.h"
#include "vtime.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* The feed has exited, or demo_stop's wait for it is over: tells the caller, once. */
static void stop_over(demo_t *d)
{
    void (*cb)(void *) = d->stopped;
    d->stopped = NULL;
    if (d->waiting) {
        d->waiting = 0;
        uv_close((uv_handle_t *)&d->wait, NULL);
    }
    if (cb)
        cb(d->stopped_arg);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    demo_t *d = p->data;
    if (!d->stopping)
        log_warn("demo: vigil-sim exited (status %lld, signal %d)", (long long)status, sig);
    d->running = 0;
    uv_close((uv_handle_t *)p, NULL);
    stop_over(d);
}

static void on_wait_over(uv_timer_t *t)
{
    demo_t *d = t->data;
    log_warn("demo: vigil-sim has not exited %d ms after SIGTERM; stopping without it",
             DEMO_STOP_WAIT_MS);
    stop_over(d);
}

int demo_mint_token(demo_t *d)
{
    unsigned char raw[32];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        log_error("demo: cannot make a token for the feed (getrandom failed)");
        return -1;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(d->token + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

#define DEMO_PUMPS 4
/* How far the pumps' newest stored reading may be ahead of the clock and still be continued:
 * the feed's live readings lead it by at most its interval (a second). */
#define DEMO_AHEAD_MS   5000
#define DEMO_TEMP_LIMIT "{\"limits\":{\"temp\":{\"max\":90,\"deadband\":2}}}"

/* device_find's callback: only whether the device is stored matters (its status). */
static int seen(void *arg, const api_device_t *dev)
{
    (void)arg;
    (void)dev;
    return 0;
}

/* device_get's callback: the pump's newest reading into *(int64_t *)arg (-1: none). */
static int newest(void *arg, const api_device_t *dev)
{
    *(int64_t *)arg = dev->last_ts_ms;
    return 0;
}

void demo_limits(demo_t *d, const api_backend_t *be)
{
    d->newest_ms = -1;
    for (int i = 1; i <= DEMO_PUMPS; i++) {
        char id[16];
        int created = 0;
        snprintf(id, sizeof id, "pump-%d", i);
        /* device_find, not _get: whether the pump is stored needs no counters, and _get would
         * wait about a second for a stored pump's while the store reloads them (after a failed
         * write), here on the loop thread before it runs. */
        int rc = be->device_find(be->ctx, id, seen, NULL);
        if (rc == 0) {
            /* Stored: its newest reading, for demo_start. Its counters are read with a deadline
             * that has passed, so a reload of them is not waited for: the pump's newest is then
             * unknown (ERR_AGAIN), and so is the history's start. */
            int64_t ts = -1;
            rc = be->device_get(be->ctx, id, vtime_mono_us(), newest, &ts);
            if (rc)
                log_warn("demo: %s's newest reading is unknown (%s): the feed's 15 minutes of "
                         "history may go among its stored readings",
                         id, err_str(rc));
            else if (ts > d->newest_ms)
                d->newest_ms = ts;
            continue; /* stored already (its attributes are the user's) */
        }
        if (rc != ERR_NOTFOUND)
            continue; /* unreadable */
        rc = be->device_put(be->ctx, id, DEMO_TEMP_LIMIT, &created);
        /* ERR_LIMIT's own words ("limit exceeded") would read as the temperature's limit. */
        if (rc)
            log_warn("demo: %s gets no temperature limit: %s", id,
                     rc == ERR_LIMIT ? "device limit reached (storage.max_devices)" : err_str(rc));
    }
}

extern char **environ;

int demo_locate(char *exe, size_t size, char *err, size_t errsize)
{
    /* exe checked, not only assumed: GCC 12 with the sanitizers (.ci/run's build-asan) reads
     * the ternaries as a path passing a null exe to readlink and memrchr (-Wnonnull). */
    ssize_t n = -1;
    if (exe != NULL && size > 32)
        n = readlink("/proc/self/exe", exe, size - 32);
    char *slash = exe != NULL && n > 0 ? memrchr(exe, '/', (size_t)n) : NULL;
    if (slash == NULL) {
        snprintf(err, errsize, "cannot locate vigild's own directory (/proc/self/exe)");
        return -1;
    }
    snprintf(slash + 1, size - (size_t)(slash + 1 - exe), "vigil-sim");
    if (access(exe, X_OK) != 0) {
        snprintf(err, errsize, "cannot run the feed %s: %s (vigil-sim is looked for beside vigild)",
                 exe, strerror(errno));
        return -1;
    }
    return 0;
}

int demo_start(demo_t *d, uv_loop_t *loop, unsigned stream_port, int auth_on, const char *data_dir)
{
    d->running = d->stopping = 0;
    char exe[PATH_MAX], err[PATH_MAX + 128];
    if (demo_locate(exe, sizeof exe, err, sizeof err)) {
        log_error("demo: %s", err);
        return -1;
    }
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", stream_port);
    /* After a run in this folder less than DEMO_BACKFILL_S ago, the feed continues the stored
     * pumps: its first reading a second (its interval) after their newest, its history the
     * whole seconds from there to now. 15 minutes of history again would go among the stored
     * readings: older than each pump's newest, they are stored but never scored, and a
     * training reads the two runs' series interleaved. The newest may be up to a second ahead
     * of the clock (the feed sends each live step before it pauses), so its start is given
     * (--start), not left to the feed's now less the history. The pumps first run the usual
     * DEMO_BACKFILL_S unsent (--from): sent from their cold start, they would begin with a
     * warm-up (temperature from 60 to about 73) that the stored pumps left behind, flagged. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    const int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    int64_t backfill = DEMO_BACKFILL_S, start_ms = -1, gap_s = 0;
    /* A newest reading further ahead of the clock than the feed's own lead (a clock stepped
     * back since, or readings stamped ahead) is not continued: the readings would be stamped
     * that far ahead of the clock, and refused from a day on (storage.max_ahead). The feed
     * starts as on a first run; its history, older than the stored newest, is stored but not
     * scored, as the warning says. */
    if (d->newest_ms > now_ms + DEMO_AHEAD_MS) {
        char at[32];
        log_warn("demo: the stored pumps' newest reading (%s) is %.1f s ahead of this host's "
                 "clock (stepped back since?): the feed starts as on a first run, and its "
                 "readings older than that are stored, not scored (readings_not_scored_"
                 "out_of_order); remove %s for a fresh demo",
                 vtime_format(d->newest_ms, at, sizeof at),
                 (double)(d->newest_ms - now_ms) / 1000.0, data_dir);
    } else if (d->newest_ms >= 0 && now_ms - d->newest_ms <= DEMO_BACKFILL_S * 1000) {
        const int64_t first_ms = d->newest_ms + 1000;
        gap_s = now_ms > first_ms ? (now_ms - first_ms) / 1000 : 0;
        start_ms = first_ms - DEMO_BACKFILL_S * 1000;
        backfill = DEMO_BACKFILL_S + gap_s;
    }
    char backfill_s[24], start_s[24], from_s[24];
    snprintf(backfill_s, sizeof backfill_s, "%lld", (long long)backfill);
    snprintf(start_s, sizeof start_s, "%lld", (long long)start_ms);
    snprintf(from_s, sizeof from_s, "%d", DEMO_BACKFILL_S);
    char *args[] = {exe,          "--stream", addr,         "--devices", "4",
                    "--backfill", backfill_s, "--fault-at", "45",        "--quiet",
                    "--start",    start_s,    "--from",     from_s,      NULL};
    if (start_ms < 0)
        args[10] = NULL; /* the feed's own start: now less the history, all of it sent */
    uv_process_options_t po = {0};
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = 1},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2}};
    /* The environment as it is, plus VIGIL_TOKEN when the feed needs one. */
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **env = calloc(nenv + 2, sizeof *env);
    char tokvar[80];
    if (env == NULL) {
        log_error("demo: out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "VIGIL_TOKEN=", 12) != 0)
            env[k++] = environ[i];
    if (auth_on && d->token[0]) {
        snprintf(tokvar, sizeof tokvar, "VIGIL_TOKEN=%s", d->token);
        env[k++] = tokvar;
    }
    po.file = exe;
    po.args = args;
    po.env = env;
    po.exit_cb = on_exit_cb;
    po.stdio = stdio;
    po.stdio_count = 3;
    d->proc.data = d;
    int rc = uv_spawn(loop, &d->proc, &po);
    free(env); /* uv_spawn has copied it into the child (or failed) */
    if (rc) {
        log_error("demo: cannot start %s: %s", exe, uv_strerror(rc));
        return -1;
    }
    d->running = 1;
    if (start_ms < 0)
        log_info("demo: vigil-sim feeds 4 simulated pumps (15 minutes of history, then live; "
                 "faults from 45 s)");
    else
        log_info("demo: vigil-sim feeds 4 simulated pumps, continuing the stored ones from a "
                 "second after their newest reading (%.1f s ago): %lld s of history, not 15 "
                 "minutes, which would go among the stored readings (remove %s for a "
                 "fresh demo), then live; faults from 45 s",
                 /* up to a second ahead (the feed's lead): said as 0.0 s, not -0.4 s */
                 (double)(now_ms > d->newest_ms ? now_ms - d->newest_ms : 0) / 1000.0,
                 (long long)gap_s, data_dir);
    return 0;
}

void demo_stop(demo_t *d, void (*stopped)(void *arg), void *arg)
{
    if (!d->running || d->stopping) {
        if (stopped)
            stopped(arg);
        return;
    }
    d->stopping = 1;
    d->stopped = stopped;
    d->stopped_arg = arg;
    uv_process_kill(&d->proc, SIGTERM);
    if (uv_timer_init(d->proc.loop, &d->wait) == 0) {
        d->waiting = 1;
        d->wait.data = d;
        uv_timer_start(&d->wait, on_wait_over, DEMO_STOP_WAIT_MS, 0);
    }
}

void demo_kill(demo_t *d)
{
    if (d->running)
        uv_process_kill(&d->proc, SIGKILL);
}

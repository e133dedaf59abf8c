/* daemon/demo.h: the --demo feed (vigil-sim as a child process). Loop thread only. */
#ifndef VIGIL_DEMO_H
#define VIGIL_DEMO_H

#include "api.h"

#include <uv.h>

typedef struct demo {
    uv_process_t proc;
    int running, stopping;
    char token[65]; /* with tokens configured: the feed's own write token, else empty */
    /* demo_stop's wait for the feed to exit: its bound, and whom to tell when it is over. */
    uv_timer_t wait;
    int waiting; /* wait is initialized and not yet closed */
    void (*stopped)(void *arg);
    void *stopped_arg;
    /* The newest stored reading of the demo's pumps (epoch ms; -1: none, or unreadable), read
     * by demo_limits: the feed's history starts after it (demo_start). */
    int64_t newest_ms;
} demo_t;

/* The feed's history: 15 minutes before its start, or less, from after the pumps' newest
 * stored reading (demo_start). */
#define DEMO_BACKFILL_S 900

/* How long demo_stop waits for the feed to exit before its caller stops without it. */
#define DEMO_STOP_WAIT_MS 2000

/* Fills d->token with a fresh random token (64 hex digits from getrandom) for the feed, so
 * --demo works with tokens configured; the caller adds it to the token set with the write role
 * (at start and on every reload) and it lives only in this process and the child's environment.
 * Returns 0 or -1 (logged). */
int demo_mint_token(demo_t *d);

/* The feed's path, vigil-sim in vigild's own directory, in exe (size bytes): 0 when it is there
 * and executable, else -1 with the reason in err ("cannot run the feed PATH: No such file or
 * directory ..."). main checks it before the start, so a --demo without its feed stops there
 * instead of running a vigild that nothing feeds. */
int demo_locate(char *exe, size_t size, char *err, size_t errsize);

/* Starts vigil-sim from vigild's directory against 127.0.0.1:stream_port; when auth_on (tokens
 * are configured), it passes d->token in the child's environment as VIGIL_TOKEN, never on the
 * command line. Its history (DEMO_BACKFILL_S of it) starts after d->newest_ms, so a second run
 * in one data folder continues the first one's pumps rather than sending readings older than
 * theirs (stored among them, never scored); its log lines name data_dir (borrowed, for this
 * call: the folder to remove for a fresh demo, wherever daemon.data_dir put it). Returns 0 or -1
 * (logged). */
int demo_start(demo_t *d, uv_loop_t *loop, unsigned stream_port, int auth_on, const char *data_dir);

/* The demo's pumps new to the store get a temperature limit (DEMO_TEMP_LIMIT, as a PUT of
 * their attributes would set it), so the demo shows limit alarms: pump-2's overheating is
 * forecast by its trend, then exceeds it, a few minutes after its fault. A pump already stored
 * keeps its attributes (the user's PUT wins). Also reads the stored pumps' newest reading into
 * d->newest_ms for demo_start. Blocks until committed; before demo_start. */
void demo_limits(demo_t *d, const api_backend_t *be);

/* Asks the feed to stop (SIGTERM) and calls stopped(arg) once, when it has exited or after
 * DEMO_STOP_WAIT_MS, whichever comes first (at once, from this call, when it is not running).
 * The feed sends its last lines, ends its output and reads the stream's answers before it
 * exits, so a caller that keeps serving the stream until stopped has stored and acknowledged
 * every line it sent. Its handle closes when it exits. */
void demo_stop(demo_t *d, void (*stopped)(void *arg), void *arg);

/* Kills the feed (SIGKILL) if it is still running: for a feed that outlived demo_stop's wait
 * and the stream's close, so the loop does not wait for it forever. */
void demo_kill(demo_t *d);

#endif

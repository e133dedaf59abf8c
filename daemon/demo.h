/* daemon/demo.h: the --demo feed (vigil-sim as a child process). Loop thread only. */
#ifndef VIGIL_DEMO_H
#define VIGIL_DEMO_H

#include <uv.h>

typedef struct demo {
    uv_process_t proc;
    int running, stopping;
    char token[65]; /* with tokens configured: the feed's own write token, else empty */
} demo_t;

/* Fills d->token with a fresh random token (64 hex digits from getrandom) for the feed, so
 * --demo works with tokens configured; the caller adds it to the token set with the write role
 * (at start and on every reload) and it lives only in this process and the child's environment.
 * Returns 0 or -1 (logged). */
int demo_mint_token(demo_t *d);

/* Starts vigil-sim from vigild's directory against 127.0.0.1:stream_port; when auth_on (tokens
 * are configured), it passes d->token in the child's environment as VIGIL_TOKEN, never on the
 * command line. Returns 0 or -1 (logged). */
int demo_start(demo_t *d, uv_loop_t *loop, unsigned stream_port, int auth_on);

/* Asks the feed to stop (SIGTERM); its handle closes when it exits. */
void demo_stop(demo_t *d);

#endif

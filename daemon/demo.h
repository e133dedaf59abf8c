/* daemon/demo.h: the --demo feed (vigil-sim as a child process). Loop thread only. */
#ifndef VIGIL_DEMO_H
#define VIGIL_DEMO_H

#include <uv.h>

typedef struct demo {
    uv_process_t proc;
    int running, stopping;
} demo_t;

/* Starts vigil-sim from vigild's directory against 127.0.0.1:stream_port. Returns 0 or -1
 * (logged). */
int demo_start(demo_t *d, uv_loop_t *loop, unsigned stream_port);

/* Asks the feed to stop (SIGTERM); its handle closes when it exits. */
void demo_stop(demo_t *d);

#endif

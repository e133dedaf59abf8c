/* daemon/stream.h: the streaming TCP socket: line protocol over long-lived connections.
 *
 * Protocol (also in docs/writing.md, "The stream socket"): the client sends InfluxDB line
 * protocol, one point per line.
 * Lines are numbered from 1 per connection. The server answers with lines of its own:
 *   "ok N"            every line up to and including N is handled: the valid ones are durable.
 *   "error N reason"  line N was rejected (nothing of it stored); sent before the "ok" covering N.
 *   "fail A B reason" lines A..B could not be stored (e.g. disk full); send them again.
 * While the writer is saturated the server stops reading from connections (TCP backpressure).
 *
 * Authentication: when tokens are configured (token_role says so when the connection sends its
 * first line), the first line must be "auth TOKEN" with a write or admin token. It is line 0:
 * answered "ok 0", and the data lines are numbered from 1 after it as without tokens. Anything
 * else (no auth line, an unknown token, a read token) is answered "error 0 reason", nothing of
 * the connection is stored, and the server closes it (after STREAM_REFUSED_LINGER_MS of
 * discarding what the client still sends, so the error line is not lost to a reset). The token
 * is checked once per connection: a reload that revokes it does not close connections already
 * authenticated. Loop thread only. */
#ifndef VIGIL_STREAM_H
#define VIGIL_STREAM_H

#include "api.h"
#include "sbuf.h"
#include "storage.h"

#include <uv.h>

typedef struct stream_opts {
    const char *listen; /* "ADDR:PORT" */
    size_t max_line;
    unsigned max_conns;
    unsigned dead_peer_s; /* a connection whose peer is silent this long ends (0: the system's) */
    const char *device_tag;
    /* Optional device and channel limits (api_backend_t.admit), called once per read over the
     * points of the lines it completed; a refused line is answered "error N reason". */
    int (*admit)(void *ctx, batch_t *b, size_t first, api_reject_cb reject, void *arg);
    void *admit_ctx;
    /* Optional (NULL: no authentication). Called on the loop thread: -1 when no tokens are
     * configured now, else the role (api_role_t) of token (len bytes; token NULL: just asking
     * whether tokens are configured), API_ROLE_NONE when unknown. */
    int (*token_role)(void *ctx, const char *token, size_t len);
    void *token_ctx;
} stream_opts_t;

typedef struct stream_server stream_server_t;

/* Binds and starts accepting on loop (a failing accept pauses and retries every 100 ms: see
 * stream_listen.c). Returns 0 and *out, or ERR_INVAL / ERR_IO with a reason in err. Caller owns
 * *out; it frees itself after stream_shutdown's callback. api may be NULL (then ingest is not
 * counted in /metrics). */
int stream_start(stream_server_t **out, uv_loop_t *loop, const stream_opts_t *opts, store_t *store,
                 api_server_t *api, char *err, size_t errsize);

/* Stops accepting and reading; submits what each connection has parsed, waits for those
 * commits, sends the final acknowledgements, half-closes every connection and closes it once the
 * client has them or ends its input (at most 2 s, its further input discarded meanwhile), frees
 * the server, then calls done. */
void stream_shutdown(stream_server_t *s, void (*done)(void *arg), void *arg);

/* Connects the API server whose /metrics counts the stream's ingest (NULL: none). */
void stream_set_api(stream_server_t *s, api_server_t *api);

/* The port actually bound. */
unsigned stream_port(const stream_server_t *s);

/* Says, in a line of its own, how many warnings about clients ended for not reading were held
 * unsaid (at most 5 are said a minute) once their minute is over, or at once when stop is set.
 * Loop thread (the maintenance tick); stream_shutdown says the rest itself. */
void stream_log_flush(stream_server_t *s, int stop);

/* Appends the stream's Prometheus families (open connections, failed accepts by reason). Any
 * thread. */
void stream_metrics(stream_server_t *s, sbuf_t *out);

#endif

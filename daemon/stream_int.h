/* daemon/stream_int.h: what daemon/stream.c (the connections: reading, parsing, admission,
 * submitting, answering, closing) and daemon/stream_listen.c (the listener: start, accepting,
 * shutdown, /metrics) share: the connection and the server, and the few functions one calls in
 * the other. Not a public interface: stream.h is. Loop thread only, except the fields the
 * structures mark as read by /metrics or guarded by mu. */
#ifndef VIGIL_STREAM_INT_H
#define VIGIL_STREAM_INT_H

#include "batch.h"
#include "log.h"
#include "sbuf.h"
#include "stream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Why an accept failed: the reason labels of vigil_stream_accept_errors_total. */
enum { ACCEPT_OUT_OF_FDS, ACCEPT_OUT_OF_MEMORY, ACCEPT_OTHER, ACCEPT_NREASONS };

/* Unsent answer bytes (error lines) before a connection stops reading. */
#define STREAM_OUT_MAX (1u << 20)

/* Why the dead-peer timeout ended a connection: the reason labels of
 * vigil_stream_connections_timed_out_total, decided from the connection's state at its end
 * (deadpeer_ended_not_reading). END_NOT_READING: its peer still answered, but its window stayed
 * closed to our answers; END_SILENT: otherwise (the client vanished, or stopped acknowledging). */
enum { END_NOT_READING, END_SILENT, END_NREASONS };

/* A per-line error waiting for the points before it to be admitted: its "error N reason\n" line
 * ends at offset end of the connection's errtext. */
struct perr {
    uint32_t line;
    uint32_t end;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t retry; /* retries a submit the writer's full queue refused */
    uv_timer_t ackt;  /* polls until the waiting "ok" can be written (stream.c ack_flush) */
    stream_server_t *srv;
    struct conn *prev, *next;
    char *buf;
    size_t len, cap;
    int skipping; /* discarding an overlong line up to its newline */
    uint32_t lineno;
    batch_t cur;
    uint32_t cur_first; /* first line not yet submitted; lines cur_first..lineno are in cur */
    size_t admitted;    /* points [0, admitted) of cur have passed the admit hook */
    sbuf_t errtext;     /* the error lines of errs, one after another */
    struct perr *errs;  /* errors of lines after the last admission, in line order */
    size_t nerrs, errs_cap, errs_sent; /* errs[0, errs_sent) are written */
    int inflight;                      /* 1 while a batch is at the writer */
    uint32_t inflight_first, inflight_last;
    size_t inflight_readings;
    int reading, busy, eof, closing, open_handles;
    /* Closing at shutdown (conn_linger): the FIN is sent (shut_done), input is discarded until
     * the client's end of input (peer_eof), for linger_ms so far. */
    int lingering, shut_done, peer_eof;
    unsigned linger_ms;
    int authed;   /* the first line has been checked (or no authentication is configured) */
    int refused;  /* authentication failed: input is discarded until the connection closes */
    int over_cap; /* refused at accept (the cap reached, or shutting down): never in nconns */
    /* The newest "ok" not yet written (ack_due): only it is kept, "ok N" being cumulative. */
    uint32_t ack;
    int ack_due;
    int out_full;  /* STREAM_OUT_MAX bytes of answers wait unsent: reading paused */
    int dead;      /* a read or write failed: nothing more reaches the client */
    char peer[64]; /* the client's address and port, for the log */
};

struct done {
    struct conn *c;
    int status;
    struct done *next;
};

struct stream_server {
    uv_loop_t *loop;
    uv_tcp_t listener;       /* open while listening; closed while paused (pause_accept) */
    uv_timer_t accept_retry; /* re-opens a paused listener, retries a pending accept */
    int listen_fd;           /* a duplicate of the listening socket, for re-opening it */
    int listening;           /* listener is open and not closing */
    int accept_failing;      /* accepts fail since the last one that worked (logged once) */
    int accept_waiting;      /* libuv holds an accepted connection we had no memory for */
    unsigned own_handles;    /* listener (until its close callback) and accept_retry */
    atomic_ulong accept_errors[ACCEPT_NREASONS]; /* read by /metrics */
    atomic_ulong refused_at_cap; /* connections told "too many connections", read by /metrics */
    /* Connections the kernel's dead-peer timeout ended, by reason (END_*), read by /metrics. */
    atomic_ulong ended[END_NREASONS];
    struct log_limit not_reading_log; /* stream__peer_timed_out's warnings */
    uv_async_t async;
    store_t *store;
    api_server_t *api;
    stream_opts_t opts;
    char device_tag[64];
    struct conn *conns; /* open connections (not yet closing) */
    /* Connections of conns served (not over_cap), read by /metrics: changed on the loop thread
     * only, never above opts.max_conns. */
    atomic_uint nconns;
    unsigned live; /* connection objects not yet freed */
    int shutting_down;
    void (*done_cb)(void *);
    void *done_arg;
    unsigned port;
    /* mu guards done_head and done_tail; it is a leaf lock (nothing is called under it). */
    pthread_mutex_t mu;
    struct done *done_head, *done_tail;
};

/* stream.c: the connection's side. */

/* Re-evaluates what the connection should do: submit, read, pause or close. */
void stream__conn_update(struct conn *c);
/* Unlinks the connection from the server's list and closes it once its acknowledgements are
 * flushed; once only. */
void stream__conn_close(struct conn *c);
/* The connection's read or write failed with ETIMEDOUT (stream.dead_peer_timeout_s): counts it
 * by reason and, for a client that did not read its answers, logs a warning (limited). */
void stream__peer_timed_out(struct conn *c);
/* Sends one answer line (the newline is added; cut at 510 bytes); nothing when out of memory. */
void stream__send_line(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The server's async callback: answers the batches the writer has finished (the done list). */
void stream__on_async(uv_async_t *a);

/* stream_listen.c: the listener's side. */

/* Accepts again after a pause or a pending accept (a connection closed: a descriptor and
 * memory may be free); no-op while shutting down. */
void stream__resume_accept(stream_server_t *s);
/* Frees the server once shutting down, the listener and the timer are closed and every
 * connection is gone. */
void stream__maybe_finish(stream_server_t *s);

#endif

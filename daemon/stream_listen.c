/* daemon/stream_listen.c: the stream socket's listener: stream_start, accepting connections
 * (each a struct conn, served by daemon/stream.c), stream_shutdown and the server's lines of
 * /metrics. Split from stream.c, which keeps the connections; stream_int.h holds what the two
 * share.
 *
 * Accepting: when accept fails for want of a descriptor or of memory (EMFILE, ENFILE, ENOMEM,
 * ENOBUFS; libuv's own reserve-descriptor trick did not help), libuv calls on_connection with the
 * error again and again without returning to the loop. So the listener is closed (pause_accept),
 * which ends that loop, and re-opened every STREAM_ACCEPT_RETRY_MS, or as soon as a connection
 * closes, from listen_fd, a duplicate of the listening socket taken at start: the socket itself
 * stays open, so the kernel keeps queueing connections meanwhile. When a connection is accepted
 * but its struct conn cannot be allocated, it is kept pending in libuv (which stops watching the
 * listener until uv_accept) and retried on the same timer. Both count in /metrics.
 *
 * At the cap: a connection accepted while stream.max_connections are served is told "error 0 too
 * many connections" and closed, counted in vigil_stream_connections_refused_total and never in
 * nconns (the decision comes before the count), so vigil_stream_connections never reads above
 * its cap, even for the moment such a connection lives (docs/reliability.md, session 63).
 *
 * Threads: loop thread only, except stream_metrics (any thread: it reads only atomics and the
 * cap, set at start). */
#include "deadpeer.h"
#include "err.h"
#include "log.h"
#include "stream_int.h"
#include "vtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How often a listener paused for want of descriptors or memory tries to accept again. */
#define STREAM_ACCEPT_RETRY_MS 100
/* The listen backlog, at start and on each re-opening: connections the kernel queues meanwhile. */
#define STREAM_BACKLOG 511
/* At most STREAM_WARN_BURST warnings a STREAM_WARN_EVERY_S about clients not reading. */
#define STREAM_WARN_EVERY_S 60
#define STREAM_WARN_BURST   5

static const char *const accept_reason[ACCEPT_NREASONS] = {"out_of_fds", "out_of_memory", "other"};

static void resume_accept_cb(uv_timer_t *t);

/* Counts a failed accept and logs the first of a run of them. */
static void accept_failed(stream_server_t *s, int status)
{
    int reason = status == UV_EMFILE || status == UV_ENFILE    ? ACCEPT_OUT_OF_FDS
                 : status == UV_ENOMEM || status == UV_ENOBUFS ? ACCEPT_OUT_OF_MEMORY
                                                               : ACCEPT_OTHER;
    atomic_fetch_add(&s->accept_errors[reason], 1);
    if (!s->accept_failing)
        log_warn("stream: cannot accept a connection (%s): retrying every %d ms",
                 uv_strerror(status), STREAM_ACCEPT_RETRY_MS);
    s->accept_failing = 1;
}

static void on_server_handle_closed(uv_handle_t *h)
{
    stream_server_t *s = h->data;
    s->own_handles--;
    stream__maybe_finish(s);
}

/* Stops accepting until accept_retry fires or a connection closes: closing the listener is the
 * one way to end libuv's loop over a failing accept (its fd becomes -1); listen_fd keeps the
 * socket listening meanwhile. */
static void pause_accept(stream_server_t *s)
{
    if (!s->listening)
        return;
    s->listening = 0;
    uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    uv_timer_start(&s->accept_retry, resume_accept_cb, STREAM_ACCEPT_RETRY_MS, 0);
}

/* The client's address and port in c->peer ("?" when unknown), for the log. */
static void peer_name(struct conn *c)
{
    struct sockaddr_storage sa;
    int len = sizeof sa;
    snprintf(c->peer, sizeof c->peer, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) != 0)
        return;
    char host[48] = "?";
    int port = 0;
    if (sa.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&sa, host, sizeof host);
        port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    } else if (sa.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&sa, host, sizeof host);
        port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
}

void stream__peer_timed_out(struct conn *c)
{
    stream_server_t *s = c->srv;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 ||
        !deadpeer_ended_not_reading(fd, s->opts.dead_peer_s)) {
        atomic_fetch_add(&s->ended[END_SILENT], 1);
        return;
    }
    atomic_fetch_add(&s->ended[END_NOT_READING], 1);
    uint64_t held = 0;
    unsigned place = log_limit_take(&s->not_reading_log, (int64_t)vtime_mono_s(),
                                    STREAM_WARN_EVERY_S, STREAM_WARN_BURST, &held);
    if (place == 0)
        return;
    char note[160];
    log_warn(
        "stream: connection from %s ended: it did not read its answers for %u s "
        "(stream.dead_peer_timeout_s) while %s waited; lines up to %u were "
        "read, what it sent after them was not (not stored, not answered)%s",
        c->peer, s->opts.dead_peer_s,
        c->out_full ? "1 MiB of them" : "an error answer on its closed window",
        (unsigned)c->lineno,
        log_limit_note(note, sizeof note, place, held, STREAM_WARN_BURST, STREAM_WARN_EVERY_S));
}

/* Takes the connection libuv has accepted. When its memory cannot be had, the connection stays
 * pending (libuv stops watching the listener meanwhile: no spinning) and accept_retry tries
 * again. */
static void accept_pending(stream_server_t *s)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        s->accept_waiting = 1;
        accept_failed(s, UV_ENOMEM);
        uv_timer_start(&s->accept_retry, resume_accept_cb, STREAM_ACCEPT_RETRY_MS, 0);
        return;
    }
    s->accept_waiting = 0;
    c->srv = s;
    c->cur_first = 1;
    batch_init(&c->cur);
    sbuf_init(&c->errtext);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->retry);
    uv_timer_init(s->loop, &c->ackt);
    c->tcp.data = c->retry.data = c->ackt.data = c;
    c->open_handles = 3;
    s->live++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    /* Decided before counting, so the gauge never reads above the cap: a connection past it is
     * answered and closed without entering nconns (only this thread changes it). */
    int at_cap = atomic_load(&s->nconns) >= s->opts.max_conns;
    c->over_cap = at_cap || s->shutting_down;
    if (!c->over_cap)
        atomic_fetch_add(&s->nconns, 1);
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp) != 0) {
        stream__conn_close(c);
        return;
    }
    if (s->accept_failing)
        log_info("stream: accepting connections again");
    s->accept_failing = 0;
    if (c->over_cap) {
        if (at_cap)
            atomic_fetch_add(&s->refused_at_cap, 1);
        stream__send_line(c, "error 0 too many connections (limit %u)", s->opts.max_conns);
        c->eof = 1;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    peer_name(c);
    /* A client that vanished without a FIN or reset frees its slot within
     * stream.dead_peer_timeout_s (common/deadpeer.h): its next read fails (ETIMEDOUT) and the
     * connection closes. */
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || deadpeer_set(fd, s->opts.dead_peer_s) != 0)
        log_debug("stream: dead-peer options refused on a connection");
    stream__conn_update(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    stream_server_t *s = listener->data;
    if (status == 0) {
        accept_pending(s);
        return;
    }
    accept_failed(s, status);
    pause_accept(s);
}

/* Listens on a new duplicate of listen_fd. Returns 0 or a libuv error (the handle is then
 * closing). */
static int listen_again(stream_server_t *s)
{
    int fd = fcntl(s->listen_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return uv_translate_sys_error(errno);
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->own_handles++;
    int rc = uv_tcp_open(&s->listener, fd);
    if (rc)
        close(fd); /* not the handle's: its close leaves it */
    else
        rc = uv_listen((uv_stream_t *)&s->listener, STREAM_BACKLOG, on_connection);
    if (rc) {
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
        return rc;
    }
    s->listening = 1;
    return 0;
}

/* Accepts again: the pending connection when the listener is open, else re-opens the listener
 * (once the old one has finished closing); on failure, tries again after STREAM_ACCEPT_RETRY_MS.
 */
void stream__resume_accept(stream_server_t *s)
{
    if (s->shutting_down)
        return;
    uv_timer_stop(&s->accept_retry);
    if (s->listening) {
        if (s->accept_waiting)
            accept_pending(s);
        return;
    }
    if (s->own_handles > 1 || listen_again(s) != 0)
        uv_timer_start(&s->accept_retry, resume_accept_cb, STREAM_ACCEPT_RETRY_MS, 0);
}

static void resume_accept_cb(uv_timer_t *t)
{
    stream__resume_accept(t->data);
}

/* ---- server -------------------------------------------------------------------------------- */

static int parse_addr(const char *listen, struct sockaddr_storage *ss)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || (size_t)(colon - listen) >= sizeof host)
        return ERR_INVAL;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    int port = atoi(colon + 1);
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']')
            return ERR_INVAL;
        host[n - 1] = '\0';
        return uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)ss) ? ERR_INVAL : 0;
    }
    return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) ? ERR_INVAL : 0;
}

int stream_start(stream_server_t **out, uv_loop_t *loop, const stream_opts_t *opts, store_t *store,
                 api_server_t *api, char *err, size_t errsize)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (parse_addr(opts->listen, &ss)) {
        snprintf(err, errsize, "invalid stream listen address '%s' (want ADDR:PORT)", opts->listen);
        return ERR_INVAL;
    }
    stream_server_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ERR_NOMEM;
    s->loop = loop;
    s->store = store;
    s->api = api;
    s->opts = *opts;
    s->opts.listen = NULL;
    snprintf(s->device_tag, sizeof s->device_tag, "%s", opts->device_tag);
    s->opts.device_tag = s->device_tag;
    pthread_mutex_init(&s->mu, NULL);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, STREAM_BACKLOG, on_connection);
    if (rc) {
        snprintf(err, errsize, "cannot listen for the stream on %s: %s", opts->listen,
                 uv_strerror(rc));
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_run(loop, UV_RUN_NOWAIT); /* let the close complete before freeing */
        pthread_mutex_destroy(&s->mu);
        free(s);
        return ERR_IO;
    }
    uv_os_fd_t fd;
    uv_fileno((uv_handle_t *)&s->listener, &fd);
    s->listen_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (s->listen_fd < 0) {
        snprintf(err, errsize, "cannot duplicate the stream's listening socket: %s",
                 strerror(errno));
        uv_close((uv_handle_t *)&s->listener, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return ERR_IO;
    }
    s->listening = 1;
    uv_timer_init(loop, &s->accept_retry);
    s->accept_retry.data = s;
    s->own_handles = 2;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    s->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    uv_async_init(loop, &s->async, stream__on_async);
    s->async.data = s;
    *out = s;
    return 0;
}

void stream_set_api(stream_server_t *s, api_server_t *api)
{
    s->api = api;
}

unsigned stream_port(const stream_server_t *s)
{
    return s->port;
}

void stream_log_flush(stream_server_t *s, int stop)
{
    const uint64_t held = log_limit_flush(&s->not_reading_log, (int64_t)vtime_mono_s(),
                                          stop ? 0 : STREAM_WARN_EVERY_S);
    if (held > 0)
        log_warn("stream: connections ended for not reading their answers: %llu more since the "
                 "last one logged, not logged one by one "
                 "(vigil_stream_connections_timed_out_total counts each)",
                 (unsigned long long)held);
}

static void on_async_closed(uv_handle_t *h)
{
    stream_server_t *s = h->data;
    void (*done)(void *) = s->done_cb;
    void *arg = s->done_arg;
    stream_log_flush(s, 1); /* the count no later line will say */
    pthread_mutex_destroy(&s->mu);
    free(s);
    if (done)
        done(arg);
}

/* Frees the server once shutting down, the listener and the timer are closed and every
 * connection is gone. */
void stream__maybe_finish(stream_server_t *s)
{
    if (!s->shutting_down || s->own_handles != 0 || s->live != 0)
        return;
    if (!uv_is_closing((uv_handle_t *)&s->async))
        uv_close((uv_handle_t *)&s->async, on_async_closed);
}

void stream_shutdown(stream_server_t *s, void (*done)(void *arg), void *arg)
{
    s->shutting_down = 1;
    s->done_cb = done;
    s->done_arg = arg;
    if (s->listening)
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed); /* else closed or closing */
    s->listening = 0;
    uv_close((uv_handle_t *)&s->accept_retry, on_server_handle_closed);
    close(s->listen_fd);
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        stream__conn_update(c);
    }
}

void stream_metrics(stream_server_t *s, sbuf_t *out)
{
    sbuf_printf(out,
                "# HELP vigil_stream_connections Open stream connections being served, at "
                "most stream.max_connections (one refused past it is not counted).\n"
                "# TYPE vigil_stream_connections gauge\nvigil_stream_connections %u\n",
                atomic_load(&s->nconns));
    sbuf_printf(out,
                "# HELP vigil_stream_connections_max Stream connections served at most at once "
                "(stream.max_connections); one past it is told \"error 0 too many "
                "connections\" and closed.\n"
                "# TYPE vigil_stream_connections_max gauge\nvigil_stream_connections_max %u\n",
                s->opts.max_conns);
    sbuf_printf(out,
                "# HELP vigil_stream_connections_refused_total Stream connections accepted while "
                "stream.max_connections were being served, told \"error 0 too many "
                "connections\" and closed (not those refused for their token).\n"
                "# TYPE vigil_stream_connections_refused_total counter\n"
                "vigil_stream_connections_refused_total %lu\n",
                atomic_load(&s->refused_at_cap));
    sbuf_printf(out, "# HELP vigil_stream_accept_errors_total Stream connections that could not be "
                     "accepted at once (a failed accept, or no memory for an accepted one), by "
                     "reason.\n# TYPE vigil_stream_accept_errors_total counter\n");
    for (int i = 0; i < ACCEPT_NREASONS; i++)
        sbuf_printf(out, "vigil_stream_accept_errors_total{reason=\"%s\"} %lu\n", accept_reason[i],
                    atomic_load(&s->accept_errors[i]));
    sbuf_printf(out, "# HELP vigil_stream_connections_timed_out_total Stream connections ended by "
                     "stream.dead_peer_timeout_s, by reason at the end: peer_not_reading (the "
                     "client still answered, its answers waiting unread on its closed window), "
                     "silent (the client vanished or stopped acknowledging).\n"
                     "# TYPE vigil_stream_connections_timed_out_total counter\n");
    for (int i = 0; i < END_NREASONS; i++)
        sbuf_printf(out, "vigil_stream_connections_timed_out_total{reason=\"%s\"} %lu\n",
                    i == END_NOT_READING ? "peer_not_reading" : "silent",
                    atomic_load(&s->ended[i]));
}

/* api/server.c: the libmicrohttpd server: listening, the http-io threads, sending the
 * responses, and the stop; routing a request to its handler is in route.c. What a handler reads
 * from its request and how it sets its answer (arguments, bodies, JSON responses) is in request.c.
 *
 * libmicrohttpd runs a pool of opts.threads threads, each with its own epoll set; the access
 * handler and everything it calls run on those threads ("any thread"). A request's state lives
 * in an api_request_t from the handler's first call until the completion callback frees it.
 *
 * Each worker owns the connections it accepted, so a handler that blocks stalls every other
 * connection of that worker. Ingest blocks until its batch is durable (the writer's commit and
 * fsync, milliseconds) and database reads take as long as they take: requests of those routes
 * (route.c's routes[].io) are handed, with their body complete, to opts.threads + 1 "http-io"
 * threads while their connection is suspended (MHD_suspend_connection); the io thread runs the
 * handler, marks the request answered and resumes the connection, and the worker, called again,
 * sends the response. So a status request never waits behind another client's write. The io threads
 * run at opts.io_nice (bulk work); with opts.rt_priority the workers move themselves to SCHED_RR on
 * their first request (worker_rt), so a query takes a CPU ahead of ingest. As many io threads as
 * workers (as many writes wait on one commit together as before) and one more, for ingest: reads
 * take at most opts.threads - 1 io threads and reads and an operator's writes together
 * opts.threads (io_take) until the stop: reads may wait for seconds, and neither the fleet's writes
 * nor an operator's short writes (route.c's lanes) must queue behind them, nor the fleet's writes
 * behind an operator's (a read-back waiting for a reader connection). Lock order: srv->io_mu is a
 * leaf (nothing is taken under it but libmicrohttpd's own suspend).
 *
 * The stop (api_stop) answers what it has begun. It sets srv->stopping: from then on the
 * accept policy refuses new connections (closed as soon as accepted), and a request that
 * begins on an open keep-alive connection is answered 503 with Retry-After, once its body is
 * read (so the client is reading when the connection closes, not still sending; one declaring
 * a body over max_body is answered 413 on its headers, as always, not waited for), and every
 * answer carries "Connection: close". It ends the event streams, then lets the queued and
 * running io jobs end (new ones then run on the worker as before), since libmicrohttpd must
 * not stop with a suspended connection. An io job's end is not its answer: the worker sends the
 * response after the resume, and MHD_stop_daemon closes every connection at once, so a write
 * committed as vigild stopped could lose its answer (2 of 12 runs, docs/reliability.md). So it
 * then waits until srv->inflight, the requests from the access handler's first call to the
 * completion callback (requests, not connections: an idle keep-alive client holds nothing up;
 * nor event streams once their response is queued, as api__events_close gave them their own
 * wait, and one still open after it has a client that stopped reading), is zero, at most
 * API_STOP_GRACE_MS, before it stops libmicrohttpd, then the io threads. A request that begins
 * after the count's last look (a client of an idle keep-alive connection, sending in the
 * milliseconds before MHD_stop_daemon closes the sockets) has its 503 cut: not run, it finds its
 * connection closed as any client of an idle connection may (README). A second wait would only
 * move that window, not close it: a client may send until its socket closes, and libmicrohttpd
 * stops reading an idle connection only by closing it.
 * Not MHD_quiesce_daemon: with a thread pool and epoll, libmicrohttpd 0.9.75 races its workers
 * for the listen socket's removal and aborts ("Failed to remove listen FD from epoll set",
 * seen at SIGTERM; daemon/main.c); the accept policy keeps the listen socket as it is.
 * Paths are routed on their raw form (the unescape callback is the identity; route.c
 * percent-decodes each path segment on its own). HEAD runs a route's GET (libmicrohttpd drops
 * the body). */
#include "api_int.h"
#include "deadpeer.h"
#include "err.h"
#include "log.h"
#include "nice.h"
#include "vtime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const unsigned status_codes[] = API_STATUS_CODES;
_Static_assert(sizeof status_codes / sizeof status_codes[0] == API_NSTATUS - 1,
               "API_NSTATUS counts API_STATUS_CODES plus other");

/* How long a stop waits, once the handlers have returned, for the requests begun before it to be
 * answered (their completion callback run). An answer normally leaves in milliseconds; this is
 * for a client slow to read a large one on a loaded machine. It bounds the stop, whose budget,
 * systemd's TimeoutStopSec=2min (extended while vigild uses CPU), is shared with the flush and
 * the detectors' save. The loop thread blocks meanwhile and sends no WATCHDOG=1, which systemd
 * does not miss: daemon/main.c sends STOPPING=1 first, and systemd watches only a running unit. */
#define API_STOP_GRACE_MS 3000

/* GnuTLS priorities for HTTPS: its defaults without the protocol versions before TLS 1.2. */
#define API_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
/* How long an HTTP thread that holds no connection waits before accepting again after an
 * accept failed for want of descriptors or memory (mhd_log). */
#define API_ACCEPT_RETRY_MS 100

void api_opts_default(api_opts_t *o)
{
    o->listen = "127.0.0.1:8470";
    o->threads = 4;
    o->io_nice = 0;
    o->max_body = 32u << 20;
    o->max_inflight = 512u << 20;
    o->max_batch = 100000;
    o->max_conns = 1024;
    o->max_conns_ip = 256;
    o->max_header = 32768;
    o->max_lines = 100;
    o->max_cookies = 300;
    o->timeout_s = 60;
    o->request_timeout_s = 300;
    o->dead_peer_s = 60;
    o->max_query_limit = 100000;
    o->max_scan_points = 4000000;
    o->max_attrs = 65536;
    o->query_timeout_ms = 30000;
    o->device_tag = "device";
    o->auth = NULL;
    o->metrics_auth = 0;
    o->tls = NULL;
    o->cors = NULL;
    /* The build is the caller's to say (vigild's main, from daemon/build.h), so the build id
     * that each commit changes is linked into vigild alone, not into every user of api. */
    o->commit = "";
    o->build_type = "";
}

/* libmicrohttpd's memory per connection (MHD_OPTION_CONNECTION_MEMORY_LIMIT), in
 * http.max_header_bytes: the request's head must fit it, beside the answer's headers. A head
 * over max_header_bytes is refused by vigild (head.c), in JSON as every answer of its;
 * only one that does not fit this memory, or leaves no room there for an answer, is still
 * libmicrohttpd's (its HTML 431 or 414, or, some 200 to 350 bytes short of the edge, the
 * connection closed unanswered: measured with 0.9.75, docs/reliability.md). Before, the memory was
 * max_header_bytes itself, so every oversized head got the HTML, and a head just under it none.
 * Beside the head's bytes, libmicrohttpd takes from the same memory a record per header line
 * and per cookie of a Cookie header (struct MHD_HTTP_Header, 64 bytes with the pool's alignment
 * in 0.9.75), so that memory also holds API_HEAD_LINE_BYTES for each of http.max_header_lines
 * and of http.max_cookies: a head within the bounds is served, and one over any refused by
 * vigild in JSON while its bytes and records fit (session 49; before, the lines had only what
 * the bytes left, and a head of 1,000 lines of 8 bytes, a quarter of the bound, got the HTML
 * 431). The Cookie header's copy, which libmicrohttpd parses the cookies in, takes its bytes a
 * second time: the factor 2 holds it (session 50). A record per URL parameter too, up to
 * API_URL_MAX_ARGS (more are refused before libmicrohttpd records them, head.c api__uri_seen;
 * session 53). */
#define API_HEAD_POOL_FACTOR 2
#define API_HEAD_LINE_BYTES  64

/* libmicrohttpd's unescape callback: keep everything raw; see the file comment. */
static size_t unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

/* ---- http-io threads (see the file comment) ------------------------------------------------ */

/* Hands r to an io thread, its connection suspended. Returns 1, or 0 when the io threads are
 * closing (or none run): the caller then handles r itself. Worker thread, from the access
 * handler (the only place libmicrohttpd allows a suspend). */
static int io_submit(struct api_server *srv, api_request_t *r)
{
    r->io_lane = api__request_lane(r);
    pthread_mutex_lock(&srv->io_mu);
    if (srv->io_closing || srv->nio == 0) {
        pthread_mutex_unlock(&srv->io_mu);
        return 0;
    }
    /* Suspended before it is queued, so an io thread never resumes a running connection. */
    MHD_suspend_connection(r->conn);
    r->io_next = NULL;
    if (srv->io_tail)
        srv->io_tail->io_next = r;
    else
        srv->io_head = r;
    srv->io_tail = r;
    pthread_cond_signal(&srv->io_cv);
    pthread_mutex_unlock(&srv->io_mu);
    return 1;
}

/* The first queued request an io thread may take, unlinked from the queue, or NULL. Of the
 * nio threads (opts.threads + 1 when all started), ingest's requests (route.c's
 * api__request_lane) take any; reads and an operator's writes together at most nio - 1, so one
 * thread is always there for ingest, whose job is one commit's wait, however many operator
 * writes wait (rollbacks on the members of one group, queued on its lock; a device's PUT whose
 * read-back waits for a reader connection that held reads have); and reads alone at most
 * nio - 2, so reads that wait (a /query up to http.query_timeout, a read meeting the store's
 * reload, a snapshot's copy) never keep an operator's write from a thread. Each lane keeps its
 * order. With fewer threads started the caps shrink but stay at least one (two threads: reads
 * and an operator's writes share one). Once the stop closes the queue (io_closing) no write can
 * come (io_submit runs them on the worker), so the caps are lifted: the stop waits for its
 * queued requests on every thread, as before the lanes. io_mu held. */
static api_request_t *io_take(struct api_server *srv)
{
    int others_max = srv->nio > 1 ? srv->nio - 1 : 1;
    int reads_max = srv->nio > 2 ? srv->nio - 2 : 1;
    for (api_request_t **pp = &srv->io_head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->io_next) {
        api_request_t *r = *pp;
        if (r->io_lane != API_LANE_INGEST && !srv->io_closing &&
            (srv->io_others >= others_max ||
             (r->io_lane == API_LANE_READ && srv->io_reads >= reads_max)))
            continue;
        *pp = r->io_next;
        if (srv->io_tail == r)
            srv->io_tail = prev;
        srv->io_others += r->io_lane != API_LANE_INGEST;
        srv->io_reads += r->io_lane == API_LANE_READ;
        return r;
    }
    return NULL;
}

/* An http-io thread: runs queued requests' handlers, then resumes their connections. */
static void *io_main(void *arg)
{
    struct api_server *srv = arg;
    pthread_mutex_lock(&srv->io_mu);
    for (;;) {
        api_request_t *r;
        while ((r = io_take(srv)) == NULL && !(srv->io_stop && srv->io_head == NULL))
            pthread_cond_wait(&srv->io_cv, &srv->io_mu);
        if (r == NULL)
            break;
        enum api_lane lane = r->io_lane;
        srv->io_running++;
        pthread_mutex_unlock(&srv->io_mu);
        api__handle(r);
        /* r belongs to the worker again once the connection resumes: not touched after. */
        struct MHD_Connection *conn = r->conn;
        atomic_store_explicit(&r->io_answered, 1, memory_order_release);
        MHD_resume_connection(conn);
        pthread_mutex_lock(&srv->io_mu);
        srv->io_running--;
        srv->io_others -= lane != API_LANE_INGEST;
        srv->io_reads -= lane == API_LANE_READ;
        if (lane != API_LANE_INGEST && srv->io_head) /* one io_take passed over may run now */
            pthread_cond_broadcast(&srv->io_cv);
        pthread_cond_broadcast(&srv->io_done);
    }
    pthread_mutex_unlock(&srv->io_mu);
    return NULL;
}

/* Stops handing requests to the io threads and waits for the queued and running ones to be
 * answered and resumed. Any thread but a worker or io thread. */
static void io_close(struct api_server *srv)
{
    pthread_mutex_lock(&srv->io_mu);
    srv->io_closing = 1;
    pthread_cond_broadcast(&srv->io_cv); /* reads io_take passed over may be taken now */
    while (srv->io_head || srv->io_running)
        pthread_cond_wait(&srv->io_done, &srv->io_mu);
    pthread_mutex_unlock(&srv->io_mu);
}

/* Ends the io threads (the queue is empty after io_close). */
static void io_join(struct api_server *srv)
{
    pthread_mutex_lock(&srv->io_mu);
    srv->io_stop = 1;
    pthread_cond_broadcast(&srv->io_cv);
    pthread_mutex_unlock(&srv->io_mu);
    for (int i = 0; i < srv->nio; i++)
        pthread_join(srv->io_threads[i], NULL);
    srv->nio = 0;
}

/* The WWW-Authenticate value of a challenge (api_int.h). */
static const char *challenge(enum api_challenge c)
{
    switch (c) {
    case API_CHALLENGE_BASIC:
        return "Bearer realm=\"vigil\", Basic realm=\"vigil\"";
    case API_CHALLENGE_TOKEN:
        return "Token realm=\"vigil\"";
    default:
        return "Bearer realm=\"vigil\"";
    }
}

static enum MHD_Result send_response(api_request_t *r)
{
    int stream = r->stream || (r->route == ROUTE_EVENTS && r->status == 200);
    if (!stream)
        api__influx_pretty(r);
    struct MHD_Response *resp =
        stream ? api__events_response(r)
               : MHD_create_response_from_buffer(r->resp_len, r->resp ? r->resp : (void *)"",
                                                 r->resp ? MHD_RESPMEM_MUST_FREE
                                                         : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    /* A stream lasts until its client leaves or the stop ends it (api__events_close, which
     * waits for the streams itself): not an answer for api_stop's grace to wait for. It leaves
     * srv->inflight here, and on_completed leaves the count alone. */
    if (stream && !r->uncounted) {
        r->uncounted = 1;
        atomic_fetch_sub(&r->srv->inflight, 1);
    }
    r->resp = NULL; /* now owned by the response */
    if (r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->err_code)
        MHD_add_response_header(resp, "X-Platform-Error-Code", r->err_code);
    if (r->influx_err[0])
        MHD_add_response_header(resp, "X-Influxdb-Error", r->influx_err);
    if (r->challenge != API_CHALLENGE_NONE)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge(r->challenge));
    if (r->route == ROUTE_PING || r->route == ROUTE_WRITE || r->route == ROUTE_QUERY)
        MHD_add_response_header(resp, "X-Influxdb-Version", "1.8.10-vigil-" VIGIL_VERSION);
    api__cors_headers(r, resp);
    /* The client learns the connection ends here, rather than finding it closed on its next
     * request (libmicrohttpd closes it after this response). */
    if (r->close || atomic_load(&r->srv->stopping))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* http.rt_priority: a libmicrohttpd worker moves itself to SCHED_RR on its first request
 * (libmicrohttpd starts its threads itself; this is the first of our code they run). The workers
 * answer from memory and hand disk-bound requests to the niced http-io threads, so what runs at
 * this priority is short. Refused (no CAP_SYS_NICE, RLIMIT_RTPRIO too low): one warning, and the
 * workers run as before. */
static void worker_rt(struct api_server *srv)
{
    static _Thread_local int done;
    if (done || srv->opts.rt_priority <= 0)
        return;
    done = 1;
    struct sched_param sp = {.sched_priority = srv->opts.rt_priority};
    int rc = pthread_setschedparam(pthread_self(), SCHED_RR, &sp);
    if (rc && atomic_exchange(&srv->rt_refused, 1) == 0)
        log_warn("http: rt_priority %d refused (%s): the HTTP workers run at the process's "
                 "priority (CAP_SYS_NICE or LimitRTPRIO= allows it)",
                 srv->opts.rt_priority, strerror(rc));
}

/* One more of the events *count counts (a connection limit met, a body past
 * http.request_timeout_s): counted, and a warning "http: <fmt>" at most once a minute (l) with
 * the count of those not said. Any thread. */
static void __attribute__((format(printf, 3, 4)))
count_warn(atomic_uint_fast64_t *count, struct log_limit *l, const char *fmt, ...)
{
    atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
    uint64_t held = 0;
    unsigned place = log_limit_take(l, (int64_t)vtime_mono_s(), 60, 1, &held);
    if (place == 0)
        return;
    char what[256], note[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    log_warn("http: %s%s", what, log_limit_note(note, sizeof note, place, held, 1, 60));
}

/* A request whose body missed http.request_timeout_s. Any thread. */
static void count_late(struct api_server *srv)
{
    count_warn(&srv->request_timeouts, &srv->timeout_log,
               "a request's body did not arrive within http.request_timeout_s (%u s) of its "
               "head: connection closed (vigil_http_request_timeouts_total counts them)",
               srv->opts.request_timeout_s);
}

/* Writes an answer of status and body itself on r's socket, as the connection is closed next
 * (libmicrohttpd queues no answer while a body comes in): JSON, with Retry-After when r has
 * one. Over TLS nothing is written (the bytes would land in the TLS stream). */
static void raw_answer(struct api_server *srv, api_request_t *r, unsigned status, const char *body,
                       size_t len)
{
    if (srv->tls != NULL)
        return;
    char ra[48] = "";
    if (r->retry_after > 0)
        snprintf(ra, sizeof ra, "Retry-After: %d\r\n", r->retry_after);
    const char *reason = MHD_get_reason_phrase_for(status);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\n%sConnection: "
                     "close\r\nContent-Length: %zu\r\n\r\n",
                     status, reason && *reason ? reason : "Error", ra, len);
    char *answer = malloc((size_t)n + len);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (answer == NULL || ci == NULL) {
        free(answer);
        return;
    }
    memcpy(answer, head, (size_t)n);
    memcpy(answer + n, body, len);
    if (send(ci->connect_fd, answer, (size_t)n + len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_debug("http: the %u of a late body not sent: %s", status, strerror(errno));
    free(answer);
}

/* http.request_timeout_s: a request's body must arrive within it of the end of its head
 * (r->start_us), however it trickles in. http.timeout_s alone is an idle timeout, which a client
 * sending a byte every few seconds never meets (read69c's finding 3). Checked at each part of
 * the body libmicrohttpd hands on_request; once fewer than http.timeout_s seconds are left, the
 * connection's idle timeout is lowered to what is left, so a body that stops coming is closed
 * at the deadline too (on_completed counts that close); on_request sets it back once the body
 * is whole. Returns 1 when the deadline has passed: the caller closes the connection
 * (MHD_NO). libmicrohttpd 0.9.75 queues no response while it reads a body, so on plain HTTP the
 * 408 (or the 503/413 a refused request was given) is written to the socket here, before the
 * close; on HTTPS the connection closes unanswered. The head itself is not bounded
 * (docs/reliability.md). Worker thread. */
static int request_late(struct api_server *srv, api_request_t *r)
{
    unsigned limit = srv->opts.request_timeout_s;
    if (limit == 0)
        return 0;
    int64_t left_us = r->start_us + (int64_t)limit * 1000000 - vtime_mono_us();
    if (left_us > 0) {
        /* A second more: libmicrohttpd counts idle time in whole seconds, and a byte coming
         * after the deadline should find this check (and its 408), not the idle close. */
        unsigned left_s = (unsigned)((left_us + 999999) / 1000000) + 1;
        if (left_s < srv->opts.timeout_s) {
            MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, left_s);
            r->timeout_lowered = 1;
        }
        return 0;
    }
    if (r->refused && r->status != 0) {
        /* Refused already by the body bound or the stop (503 or 413, unsent until the body was
         * read): that answer, not a 408 in its place, so that its advice (Retry-After, the
         * setting named) reaches the client; counted once, as that answer (read69e 7). */
        raw_answer(srv, r, r->status, r->resp ? r->resp : "", r->resp ? r->resp_len : 0);
        return 1;
    }
    count_late(srv);
    static const char body[] =
        "{\"error\":\"request body not received within http.request_timeout_s\"}\n";
    raw_answer(srv, r, 408, body, sizeof body - 1);
    r->status = 408; /* counted as answered so (on_completed) */
    return 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct api_server *srv = cls;
    api_request_t *r = *con_cls;
    if (r == NULL || *con_cls == api__many_args_mark) {
        int many_args = r != NULL;
        worker_rt(srv);
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        atomic_fetch_add(&srv->inflight, 1); /* until on_completed */
        r->srv = srv;
        r->conn = conn;
        r->many_args = many_args;
        r->method = method;
        r->url = url;
        r->start_us = vtime_mono_us();
        r->max_body = atomic_load_explicit(&srv->max_body, memory_order_relaxed);
        r->max_inflight = atomic_load_explicit(&srv->max_inflight, memory_order_relaxed);
        r->max_batch = atomic_load_explicit(&srv->max_batch, memory_order_relaxed);
        r->max_query_limit = atomic_load_explicit(&srv->max_query_limit, memory_order_relaxed);
        r->max_scan_points = atomic_load_explicit(&srv->max_scan_points, memory_order_relaxed);
        r->query_timeout_ms = atomic_load_explicit(&srv->query_timeout_ms, memory_order_relaxed);
        r->route = api__route_of(r, url);
        *con_cls = r;
        if (api__head_too_large(r))
            return send_response(r);
        /* A CORS preflight carries no token (browsers never send one): answered first. */
        if (api__cors_eval(r))
            return send_response(r);
        /* Before anything else: a request without the right token learns nothing more. */
        if (api__auth_check(r))
            return send_response(r);
        /* Refuse a declared oversized body before reading it (during the stop too: the 503
         * below waits for the body, which this one would make the stop wait for in vain). */
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        /* HTTP/1.0 has no chunked bodies: a POST or PUT without Content-Length has its body
         * end at the connection's close, which libmicrohttpd 0.9.75 does not read (it took the
         * body for empty: /write answered 204 with the lines ignored). 411, and closed: RFC 1945
         * 8.3 requires Content-Length on every HTTP/1.0 POST, bodiless or not. */
        const char *te =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if (cl == NULL && te == NULL && api__route_takes_body(r->route) &&
            strcmp(version, MHD_HTTP_VERSION_1_0) == 0 &&
            (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)) {
            r->close = 1;
            api__error(r, 411,
                       "HTTP/1.0 request without Content-Length: its body cannot be read; send "
                       "Content-Length (or use HTTP/1.1)");
            return send_response(r);
        }
        if (cl && api__route_takes_body(r->route) && strtoull(cl, NULL, 10) > r->max_body) {
            api__error(r, 413, "request body of %s bytes exceeds the limit of %zu bytes", cl,
                       r->max_body);
            return send_response(r);
        }
        if (atomic_load(&srv->stopping)) {
            r->refused = 1;
            r->retry_after = 5;
            api__error(r, 503, "vigild is stopping: request not run, retry once it is back");
            return MHD_YES; /* answered once the body is read (discarded, not kept) */
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (request_late(srv, r))
            return MHD_NO; /* closes the connection */
        if (r->status != 0 || r->too_large)
            return MHD_YES; /* answered already, or discarding */
        if (!api__route_takes_body(r->route) || r->len + n > r->max_body) {
            r->too_large = api__route_takes_body(r->route);
            if (!r->too_large)
                return MHD_YES; /* bodies on body-less routes are ignored */
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 16384;
            while (cap < r->len + n)
                cap *= 2;
            /* Over http.max_inflight_bytes (bodymem.c): what it holds is freed, the rest is
             * discarded, and the 413 or 503 is sent once the body is read, as the stop's. */
            if (api__mem_take(r, cap - r->cap)) {
                free(r->body);
                r->body = NULL;
                api__mem_give(r, r->cap);
                r->len = r->cap = 0;
                r->refused = 1;
                return MHD_YES;
            }
            char *p = realloc(r->body, cap + 1);
            if (p == NULL) { /* the rest is discarded, as a too large one's (handle answers) */
                api__mem_give(r, cap - r->cap);
                r->body_oom = r->too_large = 1;
                return MHD_YES;
            }
            r->body = p;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    /* The body is whole: its deadline's lower idle timeout (request_late) ends here, before the
     * handler runs (an io job's wait must not meet it, nor the answer's sending, nor the next
     * request of a kept-alive connection). */
    if (r->timeout_lowered) {
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, srv->opts.timeout_s);
        r->timeout_lowered = 0;
    }
    if (atomic_load_explicit(&r->io_answered, memory_order_acquire) || r->refused)
        return send_response(r); /* resumed (an io thread ran the handler), or the stop's 503 */
    if (r->status != 0)
        return MHD_YES; /* the early 413 is queued already */
    if (!r->too_large && api__route_io(r->route) && io_submit(srv, r))
        return MHD_YES; /* called again once resumed */
    api__handle(r);
    return send_response(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api_server *srv = cls;
    api_request_t *r = *con_cls;
    if (r == NULL || *con_cls == api__many_args_mark) /* no request begun */
        return;
    /* A refused request (503 or 413 set, sent once its body is read) whose connection the
     * lowered idle timeout closed got no answer: a request timeout only (read69e 7). */
    const int idle_closed = r->timeout_lowered && toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED;
    if (r->status != 0 && !(idle_closed && r->refused)) {
        int k = API_NSTATUS - 1;
        for (int i = 0; i < API_NSTATUS - 1; i++)
            if (status_codes[i] == r->status)
                k = i;
        atomic_fetch_add_explicit(&srv->requests[r->route][k], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&srv->request_seconds_us[r->route],
                                  (uint64_t)(vtime_mono_us() - r->start_us), memory_order_relaxed);
    }
    if (idle_closed)
        count_late(srv); /* request_late's lower idle timeout closed it at the deadline */
    api__events_drop(r);
    for (int i = 0; i < 4; i++)
        free(r->seg[i]);
    free(r->body);
    free(r->iq_mp);
    free(r->resp);
    api__mem_end(r); /* after the frees: it may trim the heap */
    int counted = !r->uncounted;
    free(r);
    *con_cls = NULL;
    if (counted)
        atomic_fetch_sub(&srv->inflight, 1); /* answered: what api_stop waits for */
}

/* libmicrohttpd's connection start and close: each counts in srv->connections (/metrics'
 * vigil_http_connections; one past http.max_connections is not accepted, waiting in the
 * listen backlog, and one past the per-IP cap or refused by the accept policy is closed
 * unstarted: neither counts here; the first is conns_full, when the count reaches the cap, the
 * second conns_refused, from mhd_log), and a connection starting gets the dead-peer options
 * (http.dead_peer_timeout_s, common/deadpeer.h), so a client that vanished without a FIN or
 * reset frees its event stream and its connection slot within that time, not when TCP gives up
 * (15 minutes of retransmitting a stream's keep-alives; an idle keep-alive connection is closed
 * by http.timeout_s anyway). Refused options are a debug line: the connection is served as
 * before. Worker thread. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct api_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        atomic_fetch_sub(&srv->connections, 1);
        return;
    }
    if (toe != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    /* At the cap libmicrohttpd stops accepting: later clients wait unanswered in the listen
     * backlog, which nothing else would tell (read69c's finding 3). */
    if (atomic_fetch_add(&srv->connections, 1) + 1 >= (int)srv->opts.max_conns)
        count_warn(&srv->conns_full, &srv->full_log,
                   "%u connections open, http.max_connections: new clients wait in the listen "
                   "backlog until one closes (vigil_http_connections_full_total counts it)",
                   srv->opts.max_conns);
    if (srv->opts.dead_peer_s == 0)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL || deadpeer_set(ci->connect_fd, srv->opts.dead_peer_s) != 0)
        log_debug("http: dead-peer options refused on a connection: %s", strerror(errno));
}

/* libmicrohttpd's accept policy: every connection until the stop begins, none after. Any
 * thread. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len)
{
    const struct api_server *srv = cls;
    return atomic_load(&srv->stopping) ? MHD_NO : MHD_YES;
}

/* libmicrohttpd's error log. Its log line for a failed accept (out of descriptors or memory) is
 * the only place it tells about one, so that line is counted in accept_errors: it counts
 * attempts (an accept failing for want of descriptors is retried, and logged, each time the
 * listening socket is ready). It is also the only hook on the retry: a thread that holds
 * connections stops accepting until one closes, but one that holds none logs "Hit process or
 * system resource limit at FIRST connection" and polls the still-ready listening socket again at
 * once, a busy loop per idle thread (measured: each HTTP thread at a full core). That thread has
 * nothing else to serve, so it sleeps API_ACCEPT_RETRY_MS here, in the thread that failed to
 * accept; a stop waits for it at most that long. A failure is a warning with libmicrohttpd's
 * reason at most once a minute, the rest debug lines: a retry fails as often as the socket is
 * ready, and with a descriptor now and then free the threads' accepts fail and succeed in turn
 * (it_accept: "once until one is accepted" was 4 warnings in a millisecond). Any thread. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct api_server *srv = cls;
    char msg[512];
    int warn = 0;
    if (strncmp(fmt, "Error accepting connection", 26) == 0) {
        atomic_fetch_add_explicit(&srv->accept_errors, 1, memory_order_relaxed);
        warn = log_due(&srv->accept_warned_s, (int64_t)vtime_mono_s(), 60);
    }
    /* 0.9.75's line for a connection past http.max_connections_per_ip, closed at once (the
     * total cap is not met here: libmicrohttpd stops accepting at it, on_connection). */
    if (strncmp(fmt, "Server reached connection limit", 31) == 0)
        count_warn(&srv->conns_refused, &srv->refused_log,
                   "a connection closed unserved: its address holds "
                   "http.max_connections_per_ip (%u) (vigil_http_connections_refused_total "
                   "counts them)",
                   srv->opts.max_conns_ip);
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    if (warn)
        log_warn("http: %s: retrying (said at most once a minute; "
                 "vigil_http_accept_errors_total counts them)",
                 msg);
    else
        log_debug("http: %s", msg);
    /* At the start, kept for api_start's error: libmicrohttpd says why it cannot listen only
     * here ("Failed to bind to port 8470: Address already in use"), not in errno. */
    if (atomic_load(&srv->starting) && pthread_equal(pthread_self(), srv->starter)) {
        /* Its bind message names port 0, the port argument api_start leaves unused (the address
         * comes as MHD_OPTION_SOCK_ADDR): keep only the reason. */
        const char *keep = msg, *what = "";
        const char *colon = strstr(msg, ": ");
        if (strncmp(msg, "Failed to bind to port ", 23) == 0 && colon) {
            keep = colon + 2;
            what = "bind: ";
        }
        /* A message that does not fit is cut and ends in "...", so api_start's error shows
         * the cut (the whole message is in the log line above, at debug level). */
        size_t used = strlen(srv->start_log), room = sizeof srv->start_log - used;
        if (used + 3 < sizeof srv->start_log) {
            int w = snprintf(srv->start_log + used, room, "%s%s%s", used ? "; " : "", what, keep);
            if (w >= 0 && (size_t)w >= room)
                memcpy(srv->start_log + sizeof srv->start_log - 4, "...", 4);
        }
    }
    if (strncmp(fmt, "Hit process or system resource limit at FIRST", 45) == 0)
        nanosleep(&(struct timespec){.tv_nsec = API_ACCEPT_RETRY_MS * 1000000L}, NULL);
}

/* Parses "ADDR:PORT" or "[ADDR6]:PORT". Returns 0 or ERR_INVAL. */
static int parse_listen(const char *s, struct sockaddr_storage *ss)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof host)
        return ERR_INVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || colon[1] == '\0' || port < 0 || port > 65535)
        return ERR_INVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[') {
        size_t hl = strlen(host);
        if (hl < 3 || host[hl - 1] != ']')
            return ERR_INVAL;
        host[hl - 1] = '\0';
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1 ? 0 : ERR_INVAL;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &a4->sin_addr) == 1 ? 0 : ERR_INVAL;
}

static void free_server(struct api_server *srv)
{
    int fd = atomic_load(&srv->proc_stat_fd);
    if (fd >= 0)
        close(fd);
    free(srv->io_threads);
    pthread_cond_destroy(&srv->io_done);
    pthread_cond_destroy(&srv->io_cv);
    pthread_mutex_destroy(&srv->io_mu);
    pthread_mutex_destroy(&srv->dbs_mu);
    pthread_mutex_destroy(&srv->dbs_add_mu);
    pthread_rwlock_destroy(&srv->auth_lock);
    api_auth_destroy(srv->auth);
    api_tls_destroy(srv->tls);
    free(srv->cors);
    free(srv->device_tag);
    free(srv);
}

int api_start(api_server_t **out, const api_opts_t *opts, const api_backend_t *backend,
              char *errmsg, size_t errsize)
{
    struct sockaddr_storage ss;
    if (parse_listen(opts->listen, &ss)) {
        snprintf(errmsg, errsize, "invalid listen address '%s' (want ADDR:PORT)", opts->listen);
        api_auth_destroy(opts->auth);
        api_tls_destroy(opts->tls);
        return ERR_INVAL;
    }
    struct api_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        api_auth_destroy(opts->auth);
        api_tls_destroy(opts->tls);
        return ERR_NOMEM;
    }
    /* Kept from the start: at fd exhaustion, an open per scrape failed (metrics_process.c). */
    int stat_fd = api__process_open();
    if (stat_fd < 0)
        log_warn("/metrics: cannot open /proc/self/stat: %s; a scrape opens it again (once "
                 "each) until it works, and keeps it then",
                 strerror(errno));
    atomic_init(&srv->proc_stat_fd, stat_fd);
    srv->opts = *opts;
    srv->opts.auth = NULL; /* owned as srv->auth */
    srv->opts.tls = NULL;  /* owned as srv->tls */
    srv->opts.cors = NULL; /* copied as srv->cors */
    srv->be = *backend;
    srv->auth = opts->auth;
    srv->tls = opts->tls;
    srv->metrics_auth = opts->metrics_auth;
    pthread_rwlock_init(&srv->auth_lock, NULL);
    pthread_mutex_init(&srv->io_mu, NULL);
    pthread_mutex_init(&srv->dbs_mu, NULL);
    pthread_mutex_init(&srv->dbs_add_mu, NULL);
    pthread_cond_init(&srv->io_cv, NULL);
    pthread_cond_init(&srv->io_done, NULL);
    srv->device_tag = strdup(opts->device_tag);
    if (srv->device_tag == NULL) {
        free_server(srv);
        return ERR_NOMEM;
    }
    int rc = api_set_cors(srv, opts->cors);
    if (rc) {
        api_cors_check(opts->cors, errmsg, errsize);
        free_server(srv);
        return rc;
    }
    srv->opts.device_tag = srv->device_tag;
    srv->opts.listen = NULL; /* not kept: the caller's string */
    rc = api__dbs_load(srv);
    if (rc) {
        snprintf(errmsg, errsize, "reading the InfluxDB database names: %s", err_str(rc));
        free_server(srv);
        return ERR_IO;
    }
    api_set_limits(srv, opts->max_body, opts->max_batch, opts->max_query_limit,
                   opts->max_scan_points, opts->query_timeout_ms, opts->max_attrs);
    api_set_max_inflight(srv, opts->max_inflight);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* HTTPS: the certificate and key checked by api_tls_load; TLS 1.2 and 1.3 only. */
    struct MHD_OptionItem tls_opts[4] = {{MHD_OPTION_END, 0, NULL}};
    if (srv->tls) {
        flags |= MHD_USE_TLS;
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls->cert};
        tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls->key};
        tls_opts[2] =
            (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)API_TLS_PRIORITIES};
        tls_opts[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    /* The io threads, started (and named) before the daemon listens, so they are there for the
     * first request; if none could start, io_submit answers on the worker. One failing to
     * start is not fatal: the others, or the workers, do its share. */
    unsigned nio = (unsigned)(opts->threads > 0 ? opts->threads : 1) + 1; /* io_take's cap */
    srv->io_threads = calloc(nio, sizeof *srv->io_threads);
    for (unsigned i = 0; srv->io_threads && i < nio; i++) {
        pthread_mutex_lock(&srv->io_mu);
        /* niced: bulk work, parsing writes and waiting for the disk */
        int ok =
            thread_create_niced(&srv->io_threads[srv->nio], srv->opts.io_nice, io_main, srv) == 0;
        if (ok) {
            pthread_setname_np(srv->io_threads[srv->nio], "http-io");
            srv->nio++;
        }
        pthread_mutex_unlock(&srv->io_mu);
        if (!ok) {
            log_warn("http: cannot start an http-io thread; disk-bound requests run on the "
                     "HTTP workers");
            break;
        }
    }
    /* The logger goes first: libmicrohttpd logs options processed before it to raw stderr. */
    srv->starter = pthread_self();
    atomic_store(&srv->starting, 1);
    srv->mhd = MHD_start_daemon(
        flags, 0, accept_policy, srv, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)(opts->threads > 0 ? opts->threads : 1), MHD_OPTION_CONNECTION_LIMIT,
        opts->max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT, opts->max_conns_ip,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        API_HEAD_POOL_FACTOR * opts->max_header +
            (size_t)API_HEAD_LINE_BYTES *
                ((size_t)opts->max_lines + opts->max_cookies + API_URL_MAX_ARGS),
        MHD_OPTION_CONNECTION_TIMEOUT, opts->timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape_none, NULL, MHD_OPTION_URI_LOG_CALLBACK, api__uri_seen, NULL, MHD_OPTION_ARRAY,
        tls_opts, MHD_OPTION_END);
    atomic_store(&srv->starting, 0);
    if (srv->mhd == NULL) {
        io_join(srv);
        /* libmicrohttpd's own words say why (the bind's errno reason, a TLS failure); without
         * them (a libmicrohttpd built without messages) the likely causes. */
        if (srv->start_log[0])
            snprintf(errmsg, errsize, "cannot listen for HTTP%s on %s: %s", srv->tls ? "S" : "",
                     opts->listen, srv->start_log);
        else
            snprintf(errmsg, errsize,
                     "cannot listen for HTTP%s on %s (address in use or not local?%s)",
                     srv->tls ? "S" : "", opts->listen,
                     srv->tls ? " or TLS set-up failed: see the debug log" : "");
        free_server(srv);
        return ERR_IO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    *out = srv;
    return 0;
}

unsigned api_port(const api_server_t *srv)
{
    return srv->port;
}

/* Waits until every request begun is answered (srv->inflight is 0), at most grace_ms. Returns
 * the number still unanswered. Polls: a stop is rare and short, and a condition variable would
 * take a lock in every request's completion. Any thread but a worker or io thread. */
static int wait_answered(struct api_server *srv, int grace_ms)
{
    int64_t deadline = vtime_mono_us() + (int64_t)grace_ms * 1000;
    int n;
    while ((n = atomic_load(&srv->inflight)) > 0 && vtime_mono_us() < deadline)
        nanosleep(&(struct timespec){.tv_nsec = 5 * 1000000}, NULL);
    return n;
}

void api_refuse(api_server_t *srv)
{
    if (srv != NULL)
        atomic_store(&srv->stopping, 1); /* no new connection, no new request (file comment) */
}

void api_stop(api_server_t *srv)
{
    if (srv == NULL)
        return;
    api_refuse(srv);
    /* libmicrohttpd must not stop with a suspended connection: the event streams end first
     * (each sends its last chunk; up to 2 s for their clients to take it), then the io jobs. */
    api__events_close(srv->opts.events, 2000);
    io_close(srv);
    int n = wait_answered(srv, API_STOP_GRACE_MS);
    if (n > 0)
        log_warn("http: stopping: %d request(s) begun before the stop still unanswered after "
                 "%d ms: their connections close",
                 n, API_STOP_GRACE_MS);
    MHD_stop_daemon(srv->mhd);
    io_join(srv);
    free_server(srv);
}

void api_set_limits(api_server_t *srv, size_t max_body, size_t max_batch, size_t max_query_limit,
                    size_t max_scan_points, int64_t query_timeout_ms, size_t max_attrs)
{
    atomic_store_explicit(&srv->max_attrs, max_attrs, memory_order_relaxed);
    atomic_store_explicit(&srv->max_body, max_body, memory_order_relaxed);
    atomic_store_explicit(&srv->max_batch, max_batch, memory_order_relaxed);
    atomic_store_explicit(&srv->max_query_limit, max_query_limit, memory_order_relaxed);
    atomic_store_explicit(&srv->max_scan_points, max_scan_points, memory_order_relaxed);
    atomic_store_explicit(&srv->query_timeout_ms, query_timeout_ms, memory_order_relaxed);
}

void api_count_ingest(api_server_t *srv, const char *proto, uint64_t accepted, uint64_t rejected)
{
    int p = strcmp(proto, "json") == 0 ? PROTO_JSON
            : strcmp(proto, "lp") == 0 ? PROTO_LP
                                       : PROTO_STREAM;
    atomic_fetch_add_explicit(&srv->ingest_accepted[p], accepted, memory_order_relaxed);
    atomic_fetch_add_explicit(&srv->ingest_rejected[p], rejected, memory_order_relaxed);
}

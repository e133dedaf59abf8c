/* daemon/stream.c: the line-protocol stream socket on the libuv loop; protocol in stream.h.
 *
 * Each connection reads into its own buffer, parses complete lines into a batch, and keeps at
 * most one batch at the writer. The admit hook (device and channel limits) runs once per read
 * over every point that read parsed, not once per line, so daemon/quota.c can look a few
 * devices ahead as it does for an HTTP request. A line's error waits in the connection's
 * error list until the points of the lines before it are admitted (admit_pending), so the
 * "error" lines of one connection go out in line order whichever step found them, and all of
 * them before the "ok" that covers them: submit admits and flushes first. The list is bounded
 * (STREAM_ERRS_MAX: then admission runs early). While the batch at the writer is being
 * committed the next one accumulates, so a busy connection sends large batches and an idle one
 * small ones. A connection stops reading when its pending batch is full, when the writer's
 * queue refuses a batch (retried on a timer), or when the client does not read its
 * acknowledgements; memory per connection is therefore bounded by max_line + one read +
 * STREAM_PENDING_MAX readings + STREAM_ERRS_MAX waiting error lines, and while an admission
 * runs, a copy of its refusals (stream_rej.h: bounded by the points of one read). At shutdown
 * every line read is submitted and answered before the connection half-closes; it then
 * lingers, discarding input, so the close does not reset the connection and drop those answers
 * (conn_linger).
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
 * Threads: everything runs on the loop thread except on_commit, which the writer thread calls;
 * it only appends to the done list (guarded by mu) and wakes the loop with uv_async_send. */
#include "stream.h"
#include "err.h"
#include "log.h"
#include "stream_rej.h"
#include "vtime.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define STREAM_READ_CHUNK  65536
#define STREAM_PENDING_MAX 50000      /* readings parsed but not yet at the writer */
#define STREAM_OUT_MAX     (1u << 20) /* unsent acknowledgement bytes before we stop reading */
#define STREAM_RETRY_MS    20
#define STREAM_ERRS_MAX    256 /* per-line errors waiting for admission before it runs early */
/* How long a refused connection (authentication) is read and discarded before it is closed. */
#define STREAM_REFUSED_LINGER_MS 2000
/* At shutdown, the longest a connection waits for its last acknowledgements to reach the client
 * (conn_linger), discarding its input meanwhile. */
#define STREAM_CLOSE_LINGER_MS 2000
/* How often a listener paused for want of descriptors or memory tries to accept again. */
#define STREAM_ACCEPT_RETRY_MS 100
/* The listen backlog, at start and on each re-opening: connections the kernel queues meanwhile. */
#define STREAM_BACKLOG 511

/* Why an accept failed: the reason labels of vigil_stream_accept_errors_total. */
enum { ACCEPT_OUT_OF_FDS, ACCEPT_OUT_OF_MEMORY, ACCEPT_OTHER, ACCEPT_NREASONS };
static const char *const accept_reason[ACCEPT_NREASONS] = {"out_of_fds", "out_of_memory", "other"};

/* A per-line error waiting for the points before it to be admitted: its "error N reason\n" line
 * ends at offset end of the connection's errtext. */
struct perr {
    uint32_t line;
    uint32_t end;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t retry; /* retries a submit the writer's full queue refused */
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
    int authed;  /* the first line has been checked (or no authentication is configured) */
    int refused; /* authentication failed: input is discarded until the connection closes */
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
    uv_async_t async;
    store_t *store;
    api_server_t *api;
    stream_opts_t opts;
    char device_tag[64];
    struct conn *conns; /* open connections (not yet closing) */
    atomic_uint nconns; /* length of conns, read by /metrics */
    unsigned live;      /* connection objects not yet freed */
    int shutting_down;
    void (*done_cb)(void *);
    void *done_arg;
    unsigned port;
    /* mu guards done_head and done_tail; it is a leaf lock (nothing is called under it). */
    pthread_mutex_t mu;
    struct done *done_head, *done_tail;
};

static void conn_update(struct conn *c);
static void maybe_finish(stream_server_t *s);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out);
static void resume_accept(stream_server_t *s);
static void resume_accept_cb(uv_timer_t *t);

/* ---- output ------------------------------------------------------------------------------- */

struct wreq {
    uv_write_t req;
    char data[];
};

static void on_written(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    if (c)
        conn_update(c); /* the output queue shrank: maybe read again */
}

static void send_bytes(struct conn *c, const char *p, size_t n)
{
    struct wreq *w = malloc(sizeof *w + n);
    if (w == NULL)
        return;
    memcpy(w->data, p, n);
    w->req.data = c;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written))
        free(w);
}

/* Formats one answer line, newline included, into line[512]; returns its length, or 0. */
static size_t format_line(char *line, const char *fmt, va_list ap)
{
    int n = vsnprintf(line, 512 - 1, fmt, ap);
    if (n < 0)
        return 0;
    if (n > 512 - 2)
        n = 512 - 2;
    line[n++] = '\n';
    return (size_t)n;
}

static void send_line(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void send_line(struct conn *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_line(line, fmt, ap);
    va_end(ap);
    if (n > 0)
        send_bytes(c, line, n);
}

/* ---- per-line errors and admission ---------------------------------------------------------- */

/* Writes the waiting errors of lines before line `before` (all of them when all is set), in one
 * write; the list is emptied once everything in it is written. */
static void flush_errors(struct conn *c, uint32_t before, int all)
{
    size_t k = c->errs_sent;
    while (k < c->nerrs && (all || c->errs[k].line < before))
        k++;
    if (k > c->errs_sent) {
        size_t from = c->errs_sent ? c->errs[c->errs_sent - 1].end : 0;
        send_bytes(c, c->errtext.data + from, c->errs[k - 1].end - from);
        c->errs_sent = k;
    }
    if (c->errs_sent == c->nerrs) {
        c->nerrs = c->errs_sent = 0;
        c->errtext.len = 0;
    }
}

/* Line `item` was refused at admission (rej_answer_fn, through stream_rej.c's list): answered
 * after the waiting errors of the lines before it. counted: a limit refused it (a rejected item
 * in /metrics), not a failure of the hook. */
static void reject_line(void *arg, uint32_t item, const char *reason, int counted)
{
    struct conn *c = arg;
    flush_errors(c, item, 0);
    send_line(c, "error %u %s", (unsigned)item, reason);
    if (counted && c->srv->api)
        api_count_ingest(c->srv->api, "stream", 0, 1);
}

/* The admit hook's reject callback: a limit refused line item. */
static void reject_limit(void *arg, uint32_t item, const char *reason)
{
    rej_keep(arg, item, reason, 1);
}

static int keep_none(void *arg, const batch_point_t *p, size_t i)
{
    (void)arg;
    (void)p;
    (void)i;
    return 0;
}

/* Runs the admit hook over the points parsed since the last admission, then writes every
 * waiting error. When the hook fails as a whole (out of memory), those points are dropped and
 * each of their lines answered "error N reason": nothing unchecked reaches the writer. */
static void admit_pending(struct conn *c)
{
    stream_server_t *s = c->srv;
    if (s->opts.admit && c->admitted < c->cur.npoints) {
        rejects_t r; /* answered in line order after the hook: stream_rej.h */
        rej_init(&r, reject_line, c);
        int rc = s->opts.admit(s->opts.admit_ctx, &c->cur, c->admitted, reject_limit, &r);
        if (rc) {
            for (size_t i = c->admitted; i < c->cur.npoints; i++) {
                uint32_t item = c->cur.points[i].item;
                if (i == c->admitted || item != c->cur.points[i - 1].item)
                    rej_keep(&r, item, err_str(rc), 0);
            }
            batch_points_filter(&c->cur, c->admitted, keep_none, NULL);
        }
        rej_send(&r);
        rej_deinit(&r);
    }
    c->admitted = c->cur.npoints;
    flush_errors(c, 0, 1);
}

/* Reports line's error after the lines before it are admitted. counted: count it as a rejected
 * item in /metrics. */
static void line_error(struct conn *c, uint32_t line, int counted, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void line_error(struct conn *c, uint32_t line, int counted, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_line(text, fmt, ap);
    va_end(ap);
    if (counted && c->srv->api)
        api_count_ingest(c->srv->api, "stream", 0, 1);
    if (n == 0)
        return;
    if (c->nerrs == c->errs_cap) {
        size_t cap = c->errs_cap ? 2 * c->errs_cap : 16;
        struct perr *e = realloc(c->errs, cap * sizeof *e);
        if (e != NULL) {
            c->errs = e;
            c->errs_cap = cap;
        }
    }
    size_t at = c->errtext.len;
    if (c->nerrs == c->errs_cap || at + n > UINT32_MAX || sbuf_append(&c->errtext, text, n)) {
        /* No room to wait: admit what comes before the line now, then answer it directly. */
        admit_pending(c);
        sbuf_deinit(&c->errtext);
        sbuf_init(&c->errtext);
        send_bytes(c, text, n);
        return;
    }
    c->errs[c->nerrs].line = line;
    c->errs[c->nerrs].end = (uint32_t)(at + n);
    c->nerrs++;
    if (c->nerrs >= STREAM_ERRS_MAX)
        admit_pending(c);
}

/* ---- submitting to the writer -------------------------------------------------------------- */

static void on_commit(void *arg, int status)
{
    struct conn *c = arg;
    stream_server_t *s = c->srv;
    struct done *d = malloc(sizeof *d);
    if (d == NULL) {
        /* Cannot report; the connection would wait forever, so spin until memory returns. */
        while ((d = malloc(sizeof *d)) == NULL)
            ;
    }
    d->c = c;
    d->status = status;
    d->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->done_tail)
        s->done_tail->next = d;
    else
        s->done_head = d;
    s->done_tail = d;
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->async);
}

static void on_retry(uv_timer_t *t)
{
    struct conn *c = t->data;
    c->busy = 0;
    conn_update(c);
}

/* Hands the pending lines to the writer when nothing of this connection is there already. */
static void submit(struct conn *c)
{
    admit_pending(c);
    if (c->inflight || c->busy || c->cur_first > c->lineno)
        return;
    uint32_t first = c->cur_first, last = c->lineno;
    if (c->cur.npoints == 0) {
        /* Only comments, blank or rejected lines: nothing to make durable. */
        c->cur_first = last + 1;
        send_line(c, "ok %u", last);
        return;
    }
    size_t readings = c->cur.nfields;
    int rc = store_submit(c->srv->store, &c->cur, on_commit, c);
    if (rc == ERR_BUSY) {
        c->busy = 1;
        uv_timer_start(&c->retry, on_retry, STREAM_RETRY_MS, 0);
        return;
    }
    if (rc) {
        send_line(c, "fail %u %u %s", first, last, err_str(rc));
        batch_reset(&c->cur);
        c->admitted = 0;
        c->cur_first = last + 1;
        return;
    }
    c->admitted = 0; /* the store took the points */
    c->inflight = 1;
    c->inflight_first = first;
    c->inflight_last = last;
    c->inflight_readings = readings;
    c->cur_first = last + 1;
}

/* ---- connection lifecycle ------------------------------------------------------------------ */

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    stream_server_t *s = c->srv;
    batch_deinit(&c->cur);
    sbuf_deinit(&c->errtext);
    free(c->errs);
    free(c->buf);
    free(c);
    s->live--;
    if (!s->listening || s->accept_waiting)
        resume_accept(s); /* a descriptor and memory are free now: no need to wait */
    maybe_finish(s);
}

/* Closes both handles; once only (a close cancels a pending shutdown, whose callback then
 * comes here again). */
static void conn_release(struct conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->retry, on_conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    c->shut_done = 1;
    if (!c->lingering || status != 0)
        conn_release(c);
}

/* Input after the last acknowledgement, at shutdown: not parsed, not stored, not acknowledged. */
static void on_discard(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    (void)buf;
    c->len = 0;
    if (nread < 0) {
        c->peer_eof = 1;
        uv_read_stop(st);
    }
}

/* 1 when nothing this side wrote waits to reach the client: libuv's queue is written and the
 * kernel's send queue acknowledged by the client's TCP (SIOCOUTQ). */
static int output_delivered(struct conn *c)
{
    uv_os_fd_t fd;
    int queued = 0;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0 ||
        uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || ioctl(fd, SIOCOUTQ, &queued) != 0)
        return 0;
    return queued == 0;
}

static void on_linger_tick(uv_timer_t *t)
{
    struct conn *c = t->data;
    c->linger_ms += STREAM_RETRY_MS;
    if ((c->shut_done && (c->peer_eof || output_delivered(c))) ||
        c->linger_ms >= STREAM_CLOSE_LINGER_MS)
        conn_release(c);
}

/* At shutdown the client may still be sending: closing a socket with unread input makes the
 * kernel reset the connection and drop what it has not yet delivered of ours, the last "ok"
 * lines among it (a client reading slowly lost every acknowledgement). So the connection is
 * half-closed after its last answer and its input read and discarded until the client ends its
 * input, or until all of our output has reached it (a reset can then lose nothing), at most
 * STREAM_CLOSE_LINGER_MS (a client that does not read at all then loses its answers, as before,
 * but cannot hold the shutdown). Polled every STREAM_RETRY_MS on the connection's timer. */
static void conn_linger(struct conn *c)
{
    c->lingering = 1;
    c->len = 0;
    c->skipping = 0;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_discard) != 0)
        c->peer_eof = 1;
    uv_timer_start(&c->retry, on_linger_tick, STREAM_RETRY_MS, STREAM_RETRY_MS);
}

/* Closes the connection once its acknowledgements are flushed (conn_linger at shutdown). */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    stream_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub(&s->nconns, 1);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->retry);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (req) {
        req->data = c;
        if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) == 0) {
            if (s->shutting_down && !c->eof)
                conn_linger(c);
            return;
        }
        free(req);
    }
    conn_release(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct conn *c = h->data;
    if (c->cap - c->len < STREAM_READ_CHUNK) {
        size_t cap = c->len + STREAM_READ_CHUNK;
        char *p = realloc(c->buf, cap);
        if (p == NULL) {
            *out = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
        c->buf = p;
        c->cap = cap;
    }
    *out = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_refused_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;
    c->eof = 1;
    conn_update(c);
}

/* Answers "error 0 reason" and refuses the connection: what it sends is discarded, and it is
 * closed when the client closes it or after STREAM_REFUSED_LINGER_MS. */
static void refuse(struct conn *c, const char *reason)
{
    send_line(c, "error 0 %s", reason);
    c->refused = 1;
    c->len = 0;
    c->skipping = 0;
    uv_timer_start(&c->retry, on_refused_timeout, STREAM_REFUSED_LINGER_MS, 0);
    log_info("stream: connection refused: %s", reason);
}

/* The first line of a connection when tokens may be configured. Returns 1 when the line was
 * the authentication line (handled: "ok 0", or the connection refused), 0 when it is data (no
 * tokens are configured). */
static int first_line(struct conn *c, const char *line, size_t n)
{
    stream_server_t *s = c->srv;
    c->authed = 1;
    if (s->opts.token_role == NULL || s->opts.token_role(s->opts.token_ctx, NULL, 0) < 0)
        return 0;
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    if (n < 5 || memcmp(line, "auth ", 5) != 0) {
        refuse(c, "authentication required: send 'auth TOKEN' (a write token) as the first line");
        return 1;
    }
    const char *tok = line + 5;
    size_t len = n - 5;
    while (len > 0 && (*tok == ' ' || *tok == '\t')) {
        tok++;
        len--;
    }
    int role = len > 0 && memchr(tok, ' ', len) == NULL && memchr(tok, '\t', len) == NULL
                   ? s->opts.token_role(s->opts.token_ctx, tok, len)
                   : API_ROLE_NONE;
    if (role < API_ROLE_READ)
        refuse(c, "invalid token");
    else if (role < API_ROLE_WRITE)
        refuse(c, "forbidden: a 'read' token cannot write (needs 'write')");
    else
        send_line(c, "ok 0");
    return 1;
}

static void parse_line(struct conn *c, const char *line, size_t n)
{
    stream_server_t *s = c->srv;
    if (c->refused)
        return;
    if (!c->authed && !c->skipping && first_line(c, line, n))
        return;
    if (!c->authed) {
        /* An overlong first line: cannot be an authentication line. */
        c->authed = 1;
        if (s->opts.token_role && s->opts.token_role(s->opts.token_ctx, NULL, 0) >= 0) {
            refuse(c, "authentication required: send 'auth TOKEN' (a write token) as the first "
                      "line");
            return;
        }
    }
    c->lineno++;
    if (c->skipping) {
        c->skipping = 0;
        line_error(c, c->lineno, 1, "error %u line longer than %zu bytes", c->lineno,
                   s->opts.max_line);
        return;
    }
    lp_opts_t lo = {.device_tag = s->device_tag, .precision = LP_NS, .max_line = s->opts.max_line};
    char msg[256];
    /* The point is admitted with the rest of this read's (admit_pending). */
    int rc = lp_parse_line(&c->cur, line, n, &lo, vtime_stamp_ms(), c->lineno, msg, sizeof msg);
    if (rc == ERR_INVAL)
        line_error(c, c->lineno, 1, "error %u %s", c->lineno, msg);
    else if (rc)
        line_error(c, c->lineno, 0, "error %u %s", c->lineno, err_str(rc));
}

/* Parses every complete line in the buffer and keeps the incomplete rest. */
static void parse_buffer(struct conn *c)
{
    char *p = c->buf, *end = c->buf + c->len;
    char *nl;
    while (!c->refused && p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        parse_line(c, p, (size_t)(nl - p));
        p = nl + 1;
    }
    if (c->refused) {
        c->len = 0; /* discarded */
        return;
    }
    size_t rest = (size_t)(end - p);
    if (rest > c->srv->opts.max_line) {
        c->skipping = 1;
        rest = 0;
    } else if (rest > 0 && p != c->buf) {
        memmove(c->buf, p, rest);
    }
    c->len = rest;
    admit_pending(c); /* the whole read at once; its errors go out now, not at the next submit */
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    if (nread > 0) {
        c->len += (size_t)nread;
        parse_buffer(c);
    } else if (nread < 0) {
        /* End of input: a last line without its newline still counts; an overlong one (being
         * skipped) is still reported, so the final "ok" never covers a line silently. */
        if (nread == UV_EOF && (c->len > 0 || c->skipping))
            parse_line(c, c->buf, c->len);
        c->len = 0;
        c->eof = 1;
        uv_read_stop(st);
    }
    conn_update(c);
}

/* Re-evaluates what the connection should do: submit, read, pause or close. */
static void conn_update(struct conn *c)
{
    if (c->closing)
        return;
    submit(c);
    int stop = c->eof || c->srv->shutting_down;
    if (stop && !c->inflight && !c->busy && c->cur_first > c->lineno) {
        conn_close(c);
        return;
    }
    int want = !stop && !c->busy && c->cur.nfields < STREAM_PENDING_MAX &&
               uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < STREAM_OUT_MAX;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void on_async(uv_async_t *a)
{
    stream_server_t *s = a->data;
    pthread_mutex_lock(&s->mu);
    struct done *d = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (d) {
        struct done *next = d->next;
        struct conn *c = d->c;
        c->inflight = 0;
        if (d->status == 0) {
            send_line(c, "ok %u", c->inflight_last);
            if (s->api)
                api_count_ingest(s->api, "stream", c->inflight_readings, 0);
        } else {
            send_line(c, "fail %u %u %s", c->inflight_first, c->inflight_last, err_str(d->status));
        }
        free(d);
        conn_update(c);
        d = next;
    }
}

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
    maybe_finish(s);
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
    c->tcp.data = c->retry.data = c;
    c->open_handles = 2;
    s->live++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    atomic_fetch_add(&s->nconns, 1);
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (s->accept_failing)
        log_info("stream: accepting connections again");
    s->accept_failing = 0;
    if (atomic_load(&s->nconns) > s->opts.max_conns || s->shutting_down) {
        send_line(c, "error 0 too many connections (limit %u)", s->opts.max_conns);
        c->eof = 1;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_update(c);
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
static void resume_accept(stream_server_t *s)
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
    resume_accept(t->data);
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
    uv_async_init(loop, &s->async, on_async);
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

static void on_async_closed(uv_handle_t *h)
{
    stream_server_t *s = h->data;
    void (*done)(void *) = s->done_cb;
    void *arg = s->done_arg;
    pthread_mutex_destroy(&s->mu);
    free(s);
    if (done)
        done(arg);
}

/* Frees the server once shutting down, the listener and the timer are closed and every
 * connection is gone. */
static void maybe_finish(stream_server_t *s)
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
        conn_update(c);
    }
}

void stream_metrics(stream_server_t *s, sbuf_t *out)
{
    sbuf_printf(out,
                "# HELP vigil_stream_connections Open stream connections.\n"
                "# TYPE vigil_stream_connections gauge\nvigil_stream_connections %u\n",
                atomic_load(&s->nconns));
    sbuf_printf(out, "# HELP vigil_stream_accept_errors_total Stream connections that could not be "
                     "accepted at once (a failed accept, or no memory for an accepted one), by "
                     "reason.\n# TYPE vigil_stream_accept_errors_total counter\n");
    for (int i = 0; i < ACCEPT_NREASONS; i++)
        sbuf_printf(out, "vigil_stream_accept_errors_total{reason=\"%s\"} %lu\n", accept_reason[i],
                    atomic_load(&s->accept_errors[i]));
}

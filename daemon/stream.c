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
 * queue refuses a batch (retried on a timer), or when the client does not read its error
 * answers (STREAM_OUT_MAX; its "ok" lines are coalesced: see "output" below); memory per
 * connection is therefore bounded by max_line + one read + STREAM_PENDING_MAX readings +
 * STREAM_ERRS_MAX waiting error lines + STREAM_OUT_MAX unsent answers, and while an admission
 * runs, a copy of its refusals (stream_rej.h: bounded by the points of one read). At shutdown
 * every line read is submitted and answered before the connection half-closes; it then
 * lingers, discarding input, so the close does not reset the connection and drop those answers
 * (conn_linger).
 *
 * Accepting, start and shutdown are in daemon/stream_listen.c; the structures both files share
 * are in stream_int.h.
 *
 * Threads: everything runs on the loop thread except on_commit, which the writer thread calls;
 * it only appends to the done list (guarded by mu) and wakes the loop with uv_async_send. */
#include "stream.h"
#include "deadpeer.h"
#include "err.h"
#include "log.h"
#include "stream_int.h"
#include "stream_rej.h"
#include "vtime.h"

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
#define STREAM_PENDING_MAX 50000 /* readings parsed but not yet at the writer */
#define STREAM_RETRY_MS    20
/* The longest interval between checks whether a waiting "ok" can be written (ack_flush). */
#define STREAM_ACK_POLL_MAX_MS 1000
#define STREAM_ERRS_MAX    256 /* per-line errors waiting for admission before it runs early */
/* How long a refused connection (authentication) is read and discarded before it is closed. */
#define STREAM_REFUSED_LINGER_MS 2000
/* At shutdown, the longest a connection waits for its last acknowledgements to reach the client
 * (conn_linger), discarding its input meanwhile. */
#define STREAM_CLOSE_LINGER_MS 2000

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out);

/* ---- output ------------------------------------------------------------------------------- */

/* Answers go out two ways. "error" and "fail" lines are written in order as they come; when
 * STREAM_OUT_MAX bytes of them wait unsent the connection stops reading (a client sending
 * refused lines must read their answers), and a peer that still does not read is ended by the
 * kernel after stream.dead_peer_timeout_s (TCP_USER_TIMEOUT also bounds a closed receive
 * window): counted and logged (peer_timed_out). "ok N" is cumulative, so only the newest is
 * kept (c->ack) and written when nothing written before waits to reach the client (ack_flush):
 * a client that never reads its answers (a gateway, Telegraf's socket_writer) has at most its
 * receive window of them waiting, and its closed window holds no data of ours, so it is never
 * ended for it. A pending ok goes out before any error line, keeping the answers in order. */

struct wreq {
    uv_write_t req;
    char data[];
};

static void on_written(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    if (c == NULL || c->closing)
        return;
    if (status < 0 && !c->dead) {
        /* Nothing more can be answered: close once the batch at the writer is committed. */
        c->dead = 1;
        if (status == UV_ETIMEDOUT)
            stream__peer_timed_out(c);
    }
    stream__conn_update(c); /* the output queue shrank: maybe read again, or write the ok */
}

static void write_bytes(struct conn *c, const char *p, size_t n)
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

static void on_ack_poll(uv_timer_t *t);

/* Writes the waiting "ok" when force is set or nothing written before waits to reach the
 * client (libuv's queue empty, deadpeer_room); else polls for it, first after STREAM_RETRY_MS,
 * then less and less often (on_ack_poll).
 *
 * The window is asked about only under a dead-peer timeout, which an ok waiting on a closed
 * window would end the connection for. Polling cannot see a window that opened while the
 * client's window update was lost: the kernel learns of it from the client's next segment, or
 * from the answer to a probe, and with nothing of ours queued it sends no window probe. Under
 * the timeout its keep-alive probes (after dead_peer_timeout_s / 2 idle) bring the window
 * back; with stream.dead_peer_timeout_s = 0 there are none, and a client waiting for its last
 * ok would wait forever. There, one ok is written onto the closed window instead (the queue
 * check holds the next): the kernel's window probes carry it once the client reads, and
 * nothing ends a peer that answers them. */
static void ack_flush(struct conn *c, int force)
{
    if (!c->ack_due || c->dead)
        return;
    char line[32];
    int n = snprintf(line, sizeof line, "ok %u\n", (unsigned)c->ack);
    size_t need = c->srv->opts.dead_peer_s > 0 ? (size_t)n : 0; /* 0: the queue alone */
    uv_os_fd_t fd;
    if (!force &&
        (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0 ||
         (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && !deadpeer_room(fd, need)))) {
        if (!uv_is_active((uv_handle_t *)&c->ackt))
            uv_timer_start(&c->ackt, on_ack_poll, STREAM_RETRY_MS, STREAM_RETRY_MS);
        return;
    }
    c->ack_due = 0;
    uv_timer_stop(&c->ackt);
    write_bytes(c, line, (size_t)n);
}

static void on_ack_poll(uv_timer_t *t)
{
    ack_flush(t->data, 0);
    /* Still held: the previous write not yet acknowledged (a delayed ACK: the next polls find
     * it), or the peer's window closed, a client that does not read and may idle so for days:
     * poll half as often each time, up to every STREAM_ACK_POLL_MAX_MS, rather than 50 times a
     * second per such connection (ack_flush starts again at STREAM_RETRY_MS). */
    if (uv_is_active((uv_handle_t *)t)) {
        uint64_t next = uv_timer_get_repeat(t) * 2;
        uv_timer_set_repeat(t, next < STREAM_ACK_POLL_MAX_MS ? next : STREAM_ACK_POLL_MAX_MS);
    }
}

/* Answers "ok last": lines up to last are stored (or answered with an error). */
static void send_ok(struct conn *c, uint32_t last)
{
    c->ack = last;
    c->ack_due = 1;
    ack_flush(c, 0);
}

/* Writes an error or fail line (or several), after the waiting ok. One written onto the peer's
 * closed window (a client that only writes, its window filled with the ok lines written while it
 * had room) waits there until stream.dead_peer_timeout_s ends the connection, counted and logged
 * as a client not reading (stream__peer_timed_out). */
static void send_bytes(struct conn *c, const char *p, size_t n)
{
    ack_flush(c, 1);
    write_bytes(c, p, n);
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

void stream__send_line(struct conn *c, const char *fmt, ...)
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
    stream__send_line(c, "error %u %s", (unsigned)item, reason);
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
    stream__conn_update(c);
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
        send_ok(c, last);
        return;
    }
    size_t readings = c->cur.nfields;
    int rc = store_submit(c->srv->store, &c->cur, on_commit, c);
    if (rc == ERR_BUSY) {
        /* cur is kept, its repeats of a device and timestamp merged (store_submit): fewer
         * points, each admitted, so admitted must not stay past them. */
        c->admitted = c->cur.npoints;
        c->busy = 1;
        uv_timer_start(&c->retry, on_retry, STREAM_RETRY_MS, 0);
        return;
    }
    if (rc) {
        stream__send_line(c, "fail %u %u %s", first, last, err_str(rc));
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
        stream__resume_accept(s); /* a descriptor and memory are free now: no need to wait */
    stream__maybe_finish(s);
}

/* Closes both handles; once only (a close cancels a pending shutdown, whose callback then
 * comes here again). */
static void conn_release(struct conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->retry, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->ackt, on_conn_handle_closed);
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
void stream__conn_close(struct conn *c)
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
    if (!c->over_cap)
        atomic_fetch_sub(&s->nconns, 1);
    ack_flush(c, 1); /* the last answer goes out before the FIN */
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->retry);
    uv_timer_stop(&c->ackt);
    if (c->dead) {
        conn_release(c); /* the connection failed: nothing more reaches the client */
        return;
    }
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
    stream__conn_update(c);
}

/* Answers "error 0 reason" and refuses the connection: what it sends is discarded, and it is
 * closed when the client closes it or after STREAM_REFUSED_LINGER_MS. */
static void refuse(struct conn *c, const char *reason)
{
    stream__send_line(c, "error 0 %s", reason);
    c->refused = 1;
    c->len = 0;
    c->skipping = 0;
    uv_timer_start(&c->retry, on_refused_timeout, STREAM_REFUSED_LINGER_MS, 0);
    log_info("stream: connection refused: %s", reason);
}

/* Whether line (n bytes, trailing blanks cut) is "auth WORD" and not a point: one word after
 * "auth ", with no '=' inside it (a field set's; a token's base64 padding may end it). */
static int auth_line(const char *line, size_t n)
{
    if (n < 6 || memcmp(line, "auth ", 5) != 0)
        return 0;
    size_t i = 5;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    size_t w = i;
    while (i < n && line[i] != ' ' && line[i] != '\t')
        i++;
    if (i == w || i < n)
        return 0;
    const char *eq = memchr(line + w, '=', i - w);
    while (eq && eq + 1 < line + i && eq[1] == '=')
        eq++;
    return eq == NULL || eq + 1 == line + i;
}

/* The first line of a connection. Returns 1 when the line was the authentication line (handled:
 * "ok 0", or the connection refused; without tokens any auth_line is "ok 0"), 0 when it is data
 * (no tokens are configured). */
static int first_line(struct conn *c, const char *line, size_t n)
{
    stream_server_t *s = c->srv;
    c->authed = 1;
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    if (s->opts.token_role == NULL || s->opts.token_role(s->opts.token_ctx, NULL, 0) < 0) {
        /* No tokens: an authentication line of a client configured with one is line 0 all
         * the same ("ok 0"), so the data lines are numbered from 1 either way. */
        if (!auth_line(line, n))
            return 0;
        send_ok(c, 0);
        return 1;
    }
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
        send_ok(c, 0);
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
    lp_opts_t lo = {.device_tag = s->device_tag,
                    .precision = LP_NS,
                    .max_line = s->opts.max_line,
                    .unit = LP_UNIT_IMPLIED_STREAM};
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

/* End of input (FIN) inside a line: the client stopped in the middle of a send (killed, or a
 * crash), so the rest is a cut line ("x=12" of "x=125", a timestamp missing digits, stored in
 * 1970): not stored but answered, and counted as rejected, so the final "ok" never covers a line
 * silently. An overlong one (being skipped) is reported as such; a rest of blanks is no line; a
 * comment or a first "auth" line is taken as if its newline had come. */
static void unfinished_line(struct conn *c)
{
    if (c->refused)
        return;
    if (c->skipping) {
        parse_line(c, c->buf, c->len);
        return;
    }
    size_t i = 0;
    while (i < c->len && (c->buf[i] == ' ' || c->buf[i] == '\t' || c->buf[i] == '\r'))
        i++;
    if (i == c->len)
        return;
    /* A comment, or an authentication line to a vigild without tokens (first_line: its word
     * unread), is no reading a cut could have changed: answered as with its newline (a comment
     * not at all, the auth line "ok 0"). With tokens a cut token stays refused as cut, below. */
    stream_server_t *s = c->srv;
    int tokens = s->opts.token_role && s->opts.token_role(s->opts.token_ctx, NULL, 0) >= 0;
    size_t n = c->len;
    while (n > 0 && (c->buf[n - 1] == ' ' || c->buf[n - 1] == '\t' || c->buf[n - 1] == '\r'))
        n--;
    if (c->buf[i] == '#' || (!c->authed && !tokens && auth_line(c->buf, n))) {
        parse_line(c, c->buf, c->len);
        return;
    }
    const char *why = "line not ended by a newline: not stored";
    if (!c->authed) {
        c->authed = 1;
        if (tokens) {
            refuse(c, why); /* not an authentication line either */
            return;
        }
    }
    c->lineno++;
    line_error(c, c->lineno, 1, "error %u %s", c->lineno, why);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    if (nread > 0) {
        c->len += (size_t)nread;
        parse_buffer(c);
    } else if (nread < 0) {
        if (nread == UV_ETIMEDOUT && !c->dead) {
            c->dead = 1;
            stream__peer_timed_out(c);
        }
        if (nread == UV_EOF)
            unfinished_line(c);
        c->len = 0;
        c->eof = 1;
        uv_read_stop(st);
    }
    stream__conn_update(c);
}

/* Re-evaluates what the connection should do: submit, read, pause or close. */
void stream__conn_update(struct conn *c)
{
    if (c->closing)
        return;
    submit(c);
    ack_flush(c, 0);
    int stop = c->eof || c->dead || c->srv->shutting_down;
    if (stop && !c->inflight && !c->busy && c->cur_first > c->lineno) {
        stream__conn_close(c);
        return;
    }
    c->out_full = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) >= STREAM_OUT_MAX;
    int want = !stop && !c->busy && c->cur.nfields < STREAM_PENDING_MAX && !c->out_full;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

void stream__on_async(uv_async_t *a)
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
            send_ok(c, c->inflight_last);
            if (s->api)
                api_count_ingest(s->api, "stream", c->inflight_readings, 0);
        } else {
            stream__send_line(c, "fail %u %u %s", c->inflight_first, c->inflight_last,
                              err_str(d->status));
        }
        free(d);
        stream__conn_update(c);
        d = next;
    }
}

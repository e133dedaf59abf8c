/* tools/sim_net.c: vigil-sim's transports; see sim_net.h. Moved from tools/sim.c unchanged
 * (names given the sim_ prefix) to keep that file about the simulation. Single-threaded. */
#include "sim_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_RETRIES  600 /* 503 answers retried per batch before it counts as failed */
#define IO_TIMEOUT_S 300 /* longest a blocking send or receive may wait */

int64_t sim_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int connect_to(const char *addr)
{
    char host[128];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int sim_connect_retry(const char *addr)
{
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100 && !sim_stop_flag; tries++) {
        fd = connect_to(addr);
        if (fd < 0)
            usleep(100000);
    }
    return fd;
}

static void acks_line(struct acks *a, const char *l, size_t n)
{
    if (n > 3 && memcmp(l, "ok ", 3) == 0) {
        a->ok_upto = strtoull(l + 3, NULL, 10);
        return;
    }
    if (n > 5 && memcmp(l, "fail ", 5) == 0) {
        char *end;
        unsigned long long from = strtoull(l + 5, &end, 10), to = strtoull(end, NULL, 10);
        a->rejected += to >= from ? to - from + 1 : 1;
    } else {
        a->rejected++;
    }
    if (a->verbose)
        fprintf(stderr, "vigil-sim: server: %.*s\n", (int)n, l);
}

void sim_acks_feed(struct acks *a, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            acks_line(a, a->buf, a->len);
            a->len = 0;
        } else if (a->len < sizeof a->buf - 1) {
            a->buf[a->len++] = data[i];
        }
    }
}

/* Reads what the server has written without blocking. Returns -1 when it closed. */
static int acks_drain(int fd, struct acks *a)
{
    for (;;) {
        char ack[16384];
        ssize_t r = recv(fd, ack, sizeof ack, MSG_DONTWAIT);
        if (r == 0)
            return -1;
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        sim_acks_feed(a, ack, (size_t)r);
    }
}

/* Sends everything, draining acknowledgements while the socket is full. */
int sim_send_all(int fd, const char *buf, size_t n, struct acks *a)
{
    while (n > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLOUT};
        if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
            return -1;
        if ((pfd.revents & POLLIN) && acks_drain(fd, a))
            return -1;
        if (pfd.revents & (POLLERR | POLLHUP))
            return -1;
        if (pfd.revents & POLLOUT) {
            ssize_t w = send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                return -1;
            if (w > 0) {
                buf += w;
                n -= (size_t)w;
            }
        }
    }
    return 0;
}

void sim_set_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

char sim_auth_header[320];

int sim_http_send(struct hconn *c, const char *host)
{
    char head[640];
    int hl = snprintf(head, sizeof head,
                      "POST /write?precision=ns HTTP/1.1\r\nHost: %s\r\n%s"
                      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n\r\n",
                      host, sim_auth_header, c->body_len);
    struct iovec iov[2] = {{head, (size_t)hl}, {c->body, c->body_len}};
    size_t total = (size_t)hl + c->body_len, done = 0;
    while (done < total) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        done += (size_t)w;
        for (int i = 0; i < 2; i++) { /* advance the iovecs past what was written */
            size_t k = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + k;
            iov[i].iov_len -= k;
            w -= (ssize_t)k;
        }
    }
    return 0;
}

/* Case-insensitive header lookup in the header block [h, end); returns the value or NULL. */
static const char *header(const char *h, const char *end, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = h; l < end;) {
        const char *eol = memchr(l, '\n', (size_t)(end - l));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - l) > n && strncasecmp(l, name, n) == 0 && l[n] == ':') {
            const char *v = l + n + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            return v;
        }
        l = eol + 1;
    }
    return NULL;
}

/* Reads one response: status, Retry-After seconds, whether the server closes, and the body
 * (NUL-terminated, cut to bodysz - 1). Returns the status or -1. */
static int http_read(int fd, int *retry_after, int *closing, char *body, size_t bodysz)
{
    static char buf[1 << 16];
    size_t len = 0;
    char *hend = NULL;
    while (hend == NULL) {
        if (len == sizeof buf - 1)
            return -1;
        ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
        hend = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    const char *v = header(buf, hend, "Content-Length");
    size_t clen = v ? strtoull(v, NULL, 10) : 0;
    v = header(buf, hend, "Retry-After");
    *retry_after = v ? atoi(v) : 1;
    v = header(buf, hend, "Connection");
    *closing = v && strncasecmp(v, "close", 5) == 0;
    size_t have = len - (size_t)(hend + 4 - buf), kept = 0;
    const char *b = hend + 4;
    for (;;) {
        size_t take = have < bodysz - 1 - kept ? have : bodysz - 1 - kept;
        memcpy(body + kept, b, take);
        kept += take;
        if (have >= clen)
            break;
        clen -= have;
        ssize_t r = recv(fd, buf, clen < sizeof buf ? clen : sizeof buf, 0);
        if (r < 0 && errno == EINTR) {
            have = 0;
            continue;
        }
        if (r <= 0)
            return -1;
        b = buf;
        have = (size_t)r;
    }
    body[kept] = '\0';
    return status;
}

/* Waits for the answer to c's request in flight, retrying it after 503 and once after a lost
 * connection; counts the outcome. Returns -1 when the server cannot be reached any more. */
int sim_http_finish(struct hconn *c, const char *addr, const char *host, struct stats *st,
                    int verbose)
{
    if (c->lines == 0)
        return 0;
    int lost = 0;
    for (int attempt = 0; attempt <= MAX_RETRIES; attempt++) {
        int retry_after = 1, closing = 0, status = -1;
        char body[1024];
        if (c->fd >= 0 && attempt > 0 && sim_http_send(c, host) != 0)
            status = -1;
        else if (c->fd >= 0)
            status = http_read(c->fd, &retry_after, &closing, body, sizeof body);
        if (status < 0 || closing) {
            if (c->fd >= 0)
                close(c->fd);
            c->fd = -1;
        }
        if (status < 0) { /* connection lost: reconnect, send again once */
            if (lost++ || sim_stop_flag || (c->fd = sim_connect_retry(addr)) < 0)
                break;
            sim_set_timeouts(c->fd);
            continue;
        }
        st->t1_us = sim_mono_us();
        if (status == 503 && attempt < MAX_RETRIES && !sim_stop_flag) {
            st->retries++;
            sleep((unsigned)(retry_after < 1 ? 1 : retry_after > 10 ? 10 : retry_after));
            if (c->fd < 0 && (c->fd = sim_connect_retry(addr)) < 0)
                break;
            sim_set_timeouts(c->fd);
            continue;
        }
        if (status == 200 || status == 204) {
            st->lines_acked += c->lines;
        } else {
            const char *d = status == 400 ? strstr(body, "dropped=") : NULL;
            uint64_t dropped = d ? strtoull(d + 8, NULL, 10) : c->lines;
            if (dropped > c->lines)
                dropped = c->lines;
            st->lines_acked += c->lines - dropped;
            st->lines_failed += dropped;
            if (verbose)
                fprintf(stderr, "vigil-sim: server: %d %s\n", status, body);
        }
        c->lines = 0;
        if (c->fd < 0 && (c->fd = sim_connect_retry(addr)) >= 0)
            sim_set_timeouts(c->fd);
        return c->fd >= 0 ? 0 : -1;
    }
    st->lines_failed += c->lines;
    c->lines = 0;
    return -1;
}

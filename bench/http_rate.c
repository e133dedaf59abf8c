/* bench/http_rate.c: an open-loop HTTP/1.1 GET load at a fixed rate, for bench/fleet.
 *
 *   http_rate HOST PORT PATH RATE SECONDS CONNECTIONS
 *
 * Request i is due at start + i / RATE whatever happened before (open loop, as wrk2 does; wrk
 * itself is closed-loop: a stalled server is sent fewer requests, so a stall shows in few
 * samples). A due request goes out on an idle keep-alive connection, or waits in the client's
 * queue until one is idle; its latency runs from when it was due to the end of its response, so
 * time spent queued, in a stalled server and in this process's own lateness all count (the
 * figure can only be pessimistic). One thread, epoll, a timerfd for the next due time.
 * Prints one line on stdout:
 *   sent=N answered=N errors=N rps=X p50_ms=X p90_ms=X p99_ms=X p999_ms=X max_ms=X
 * where errors are non-2xx answers and connection failures (a failed connection is reopened).
 * Built by bench/fleet with cc (not part of the CMake build: a bench tool, no project code). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAXC 256

struct conn {
    int fd;
    int busy;       /* a request is in flight */
    int64_t due_ns; /* when the request in flight was due */
    char buf[65536];
    size_t len;
};

static struct sockaddr_in addr;
static char req[1024];
static size_t req_len;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int open_conn(int ep, struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->busy = 0;
    c->len = 0;
    return 0;
}

/* The length of a complete response at the start of c->buf, 0 if incomplete, -1 if malformed;
 * *status gets its status code, *closing 1 when the server closes the connection after it.
 * Content-Length only (what vigild and nginx send here). */
static long response_len(const struct conn *c, int *status, int *closing)
{
    const char *b = c->buf;
    const char *end = memmem(b, c->len, "\r\n\r\n", 4);
    if (end == NULL)
        return c->len >= sizeof c->buf ? -1 : 0;
    if (c->len < 12 || strncmp(b, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(b + 9);
    long body = 0;
    for (const char *p = b; p < end; p++) {
        if (*p != '\n')
            continue;
        if (strncasecmp(p + 1, "content-length:", 15) == 0)
            body = strtol(p + 16, NULL, 10);
        else if (strncasecmp(p + 1, "connection: close", 17) == 0)
            *closing = 1;
    }
    long total = (long)(end + 4 - b) + body;
    if (total > (long)sizeof c->buf)
        return -1;
    return (size_t)total <= c->len ? total : 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(const int64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: http_rate HOST PORT PATH RATE SECONDS CONNECTIONS\n");
        return 2;
    }
    double rate = atof(argv[4]), secs = atof(argv[5]);
    int nc = atoi(argv[6]);
    if (rate <= 0 || secs <= 0 || nc < 1 || nc > MAXC) {
        fprintf(stderr, "http_rate: bad RATE, SECONDS or CONNECTIONS (1-%d)\n", MAXC);
        return 2;
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
        fprintf(stderr, "http_rate: HOST must be an IPv4 address\n");
        return 2;
    }
    req_len = (size_t)snprintf(req, sizeof req,
                               "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: http_rate\r\n\r\n",
                               argv[3], argv[1], argv[2]);
    size_t total = (size_t)(rate * secs);
    int64_t *lat = malloc(total * sizeof *lat);
    static struct conn conns[MAXC];
    int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    if (lat == NULL || ep < 0 || tfd < 0) {
        fprintf(stderr, "http_rate: out of memory or no epoll/timerfd\n");
        return 1;
    }
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
    for (int i = 0; i < nc; i++)
        if (open_conn(ep, &conns[i]) != 0) {
            fprintf(stderr, "http_rate: cannot connect: %s\n", strerror(errno));
            return 1;
        }
    const int64_t start = now_ns() + 1000000, step = (int64_t)(1e9 / rate);
    size_t next = 0, answered = 0, errors = 0;
    int64_t last_end = start;
    while (answered + errors < total) {
        int64_t t = now_ns();
        /* Send every due request that finds an idle connection (oldest due first). */
        for (int i = 0; i < nc && next < total && start + (int64_t)next * step <= t; i++) {
            struct conn *c = &conns[i];
            if (c->busy)
                continue;
            if (c->fd < 0 && open_conn(ep, c) != 0)
                continue;
            if (send(c->fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len) {
                errors++;
                next++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                continue;
            }
            c->busy = 1;
            c->due_ns = start + (int64_t)next * step;
            next++;
        }
        int idle = 0;
        for (int i = 0; i < nc; i++)
            idle += !conns[i].busy;
        /* Wake for the next due request only when it could go out; else for an answer. */
        if (next < total && idle) {
            int64_t due = start + (int64_t)next * step;
            if (due <= now_ns())
                continue;
            struct itimerspec its = {.it_value = {.tv_sec = due / 1000000000,
                                                  .tv_nsec = due % 1000000000}};
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 1000);
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (c == NULL) {
                uint64_t x;
                ssize_t rd = read(tfd, &x, sizeof x);
                (void)rd;
                continue;
            }
            ssize_t got = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
            if (got <= 0) {
                if (c->busy)
                    errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                c->busy = 0;
                continue;
            }
            c->len += (size_t)got;
            int status = 0, closing = 0;
            long rl = response_len(c, &status, &closing);
            if (rl < 0) {
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                c->busy = 0;
                continue;
            }
            if (rl == 0 || !c->busy)
                continue;
            int64_t end = now_ns();
            if (status >= 200 && status < 300)
                lat[answered++] = end - c->due_ns;
            else
                errors++;
            last_end = end;
            memmove(c->buf, c->buf + rl, c->len - (size_t)rl);
            c->len -= (size_t)rl;
            c->busy = 0;
            if (closing) { /* the server ends the connection (nginx: keepalive_requests) */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
            }
        }
    }
    qsort(lat, answered, sizeof *lat, cmp_i64);
    double wall = (double)(last_end - start) / 1e9;
    printf("sent=%zu answered=%zu errors=%zu rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
           "p999_ms=%.3f max_ms=%.3f\n",
           next, answered, errors, (double)answered / (wall > 0 ? wall : 1), pct(lat, answered, 0.5),
           pct(lat, answered, 0.9), pct(lat, answered, 0.99), pct(lat, answered, 0.999),
           answered ? (double)lat[answered - 1] / 1e6 : 0.0);
    return 0;
}

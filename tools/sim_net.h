/* tools/sim_net.h: vigil-sim's transports (tools/sim_net.c): the stream socket with its
 * acknowledgements, and POST /write over hand-written keep-alive HTTP/1.1 connections.
 * Single-threaded, as vigil-sim is. */
#ifndef VIGIL_SIM_NET_H
#define VIGIL_SIM_NET_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* Set by SIGINT/SIGTERM (tools/sim.c): connecting and retrying give up. */
extern volatile sig_atomic_t sim_stop_flag;

/* "Authorization: Bearer TOKEN\r\n" from $VIGIL_TOKEN, or "": set once in main. */
extern char sim_auth_header[320];

/* What was sent and what the server said about it; lines are reading vectors. */
struct stats {
    uint64_t lines_sent, lines_acked, lines_failed, retries, requests;
    int64_t t0_us, t1_us; /* first send, last answer */
};

/* The stream's acknowledgements, parsed across reads. */
struct acks {
    char buf[4096];
    size_t len;
    uint64_t ok_upto, rejected;
    int verbose;
};

/* One keep-alive HTTP/1.1 connection with at most one request in flight. */
struct hconn {
    int fd;
    char *body; /* the request in flight (kept for a retry after 503) */
    size_t body_len, body_cap;
    uint64_t lines; /* in the request in flight; 0: none */
};

/* CLOCK_MONOTONIC in microseconds. */
int64_t sim_mono_us(void);

/* Connects to "IPv4:port", trying for 10 s (until sim_stop_flag). Returns the socket, or -1. */
int sim_connect_retry(const char *addr);

/* Parses n bytes of the stream's acknowledgements into a, across calls. */
void sim_acks_feed(struct acks *a, const char *data, size_t n);

/* Sends n bytes on the stream socket, draining acknowledgements into a meanwhile. Returns 0 or
 * -1. */
int sim_send_all(int fd, const char *buf, size_t n, struct acks *a);

/* Blocking send and receive time-outs (IO_TIMEOUT_S) and TCP_NODELAY on fd. */
void sim_set_timeouts(int fd);

/* Sends c's request in flight (its body) as POST /write?precision=ns. Returns 0 or -1. */
int sim_http_send(struct hconn *c, const char *host);

/* Waits for the answer to c's request in flight, retrying it after 503 and once after a lost
 * connection; counts the outcome. Returns -1 when the server cannot be reached any more. */
int sim_http_finish(struct hconn *c, const char *addr, const char *host, struct stats *st,
                    int verbose);

#endif

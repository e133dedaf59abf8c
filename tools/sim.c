/* tools/sim.c: vigil-sim, a simulated fleet of pumps feeding vigild, the README's demo feed and
 * the load generator of bench/fleet.
 *
 * Each pump has a speed set-point (a control input) and five coupled sensors: flow follows the
 * speed, pressure follows flow, motor current follows flow and pressure, temperature lags the
 * current, vibration rises with speed. With --channels 8 two derived channels follow: electrical
 * power (from current and speed) and shaft rpm (speed less a load-dependent slip). Faults are
 * injected on a schedule so a new user sees an anomaly flagged with its channel: bearing wear (a
 * vibration ramp), overheating (a temperature drift), a stuck pressure sensor, spikes, and
 * cavitation (noisy flow and pressure).
 *
 * It writes line protocol ("pump,device=pump-1 speed=...,flow=... <ns>") either to the stream
 * socket (default), draining and counting the server's acknowledgements, or with --http as
 * POST /write?precision=ns batches over keep-alive HTTP/1.1 connections written by hand (one
 * request in flight per connection; the next batch is generated while it is answered; 503 is
 * retried after Retry-After). --dry-run only generates, to measure the generator itself. --csv DIR
 * writes DIR/pump-N.csv instead, one file per pump in vigil-replay's input format (header
 * timestamp,speed,flow,..., epoch milliseconds, one row per simulated reading, unpaced), so the
 * detector's false alarms and fault delays can be measured offline. At the
 * end it prints one summary line on stderr ("vigil-sim: done ... readings_sent= readings_acked=
 * errors= seconds= ..."); a reading is one channel value. Numbers are formatted by hand (fixed
 * point, no printf), so generation costs well under a microsecond per reading vector.
 * Single-threaded. */
#include "sim_net.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum fault { F_NONE, F_BEARING, F_OVERHEAT, F_STUCK, F_SPIKES, F_CAVITATION, F_COUNT };
static const char *const fault_names[F_COUNT] = {"none",  "bearing", "overheat",
                                                 "stuck", "spikes",  "cavitation"};

#define MAX_CHANNELS  8
#define MAX_CONNS     64
#define CSV_MAX_FILES 1000 /* --csv: pumps (one open file each) */

struct pump {
    char id[32];
    int id_len;
    double speed, flow, pressure, current, temp, vib;
    double stuck_value;
    enum fault fault;
    double fault_start; /* seconds of simulated time; < 0: no fault */
    uint64_t rng;
};

volatile sig_atomic_t sim_stop_flag;

static void on_signal(int sig)
{
    sim_stop_flag = 1;
}

/* xorshift64*: a small deterministic generator, so a seed reproduces a run. */
static double urand(struct pump *p)
{
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return (double)((p->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static double nrand(struct pump *p)
{
    double u1 = urand(p) + 1e-12, u2 = urand(p);
    return sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2);
}

/* Advances one pump by dt seconds at simulated time t; a = 1 - exp(-dt / 3), b = 1 -
 * exp(-dt / 60) (the flow's and the temperature's lags), computed once by the caller. */
static void pump_step(struct pump *p, double t, double dt, double a, double b)
{
    /* The operator changes speed slowly: a daily-like cycle plus small steps. */
    double target = 0.75 + 0.15 * sin(2 * M_PI * t / 600.0) + 0.05 * sin(2 * M_PI * t / 97.0);
    p->speed += (target - p->speed) * 0.2 + 0.002 * nrand(p);
    p->flow += (120.0 * p->speed - p->flow) * a + 0.4 * nrand(p);
    p->pressure = 1.2 + 0.00035 * p->flow * p->flow + 0.02 * nrand(p);
    p->current = 4.0 + 0.09 * p->flow * p->pressure / 3.0 + 0.05 * nrand(p);
    p->temp += (35.0 + 2.2 * p->current - p->temp) * b + 0.03 * nrand(p);
    p->vib = 1.1 + 1.6 * p->speed * p->speed + 0.05 * nrand(p);

    double ft = t - p->fault_start;
    if (p->fault_start < 0 || ft < 0)
        return;
    switch (p->fault) {
    case F_BEARING: /* vibration grows, with a rougher spectrum */
        p->vib += 0.02 * ft + 0.004 * ft * nrand(p);
        break;
    case F_OVERHEAT: /* cooling degrades: temperature drifts up */
        p->temp += 0.08 * dt * (1 + ft / 60.0);
        break;
    case F_STUCK:
        if (p->stuck_value == 0)
            p->stuck_value = p->pressure;
        p->pressure = p->stuck_value;
        break;
    case F_SPIKES:
        if (urand(p) < 0.05)
            p->current += 6.0 * (urand(p) < 0.5 ? -1 : 1);
        break;
    case F_CAVITATION:
        p->flow += 12.0 * nrand(p);
        p->pressure += 0.4 * nrand(p);
        break;
    default:
        break;
    }
}

/* ---- formatting ----------------------------------------------------------------------------- */

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Writes v with dec decimals, as printf's "%.*f" would (but for ties, rounded to even). */
static char *put_fixed(char *p, double v, int dec)
{
    static const double scale[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    static const uint64_t iscale[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    if (!(fabs(v) < 1e12))
        return p + sprintf(p, "%.*f", dec, v);
    if (signbit(v)) {
        *p++ = '-';
        v = -v;
    }
    uint64_t n = (uint64_t)llrint(v * scale[dec]);
    p = put_u64(p, n / iscale[dec]);
    if (dec > 0) {
        uint64_t f = n % iscale[dec];
        *p++ = '.';
        for (int i = dec; i > 0; i--) {
            p[i - 1] = (char)('0' + f % 10);
            f /= 10;
        }
        p += dec;
    }
    return p;
}

static char *put_str(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define LINE_MAX_BYTES 320 /* longest line put_line writes, with margin */

/* The channels in line and CSV order: name, decimals written, and the value of pump pm. */
static const char *const channel_names[MAX_CHANNELS] = {"speed", "flow", "pressure", "current",
                                                        "temp",  "vib",  "power",    "rpm"};
static const int channel_decimals[MAX_CHANNELS] = {4, 3, 4, 3, 3, 4, 3, 1};

static double channel_value(const struct pump *pm, int c)
{
    switch (c) {
    case 0:
        return pm->speed;
    case 1:
        return pm->flow;
    case 2:
        return pm->pressure;
    case 3:
        return pm->current;
    case 4:
        return pm->temp;
    case 5:
        return pm->vib;
    case 6: /* kW: about 0.6 kW per ampere, a little more at high speed */
        return 0.6 * pm->current * (0.8 + 0.2 * pm->speed);
    default: /* a 1480 rpm motor whose slip grows with its load */
        return 1480.0 * pm->speed * (1 - 0.002 * pm->current);
    }
}

/* One line of line protocol for pump p at ts_ms, with the first nch channels. */
static char *put_line(char *p, const struct pump *pm, int nch, int64_t ts_ms)
{
    p = put_str(p, "pump,device=", 12);
    p = put_str(p, pm->id, (size_t)pm->id_len);
    for (int c = 0; c < nch; c++) {
        *p++ = c == 0 ? ' ' : ',';
        p = put_str(p, channel_names[c], strlen(channel_names[c]));
        *p++ = '=';
        p = put_fixed(p, channel_value(pm, c), channel_decimals[c]);
    }
    *p++ = ' ';
    p = put_u64(p, ts_ms < 0 ? 0 : (uint64_t)ts_ms);
    p = put_str(p, "000000\n", 7);
    return p;
}

/* One CSV row for --csv: epoch milliseconds, then the first nch channels as put_line writes
 * them (vigil-replay's input format). */
static char *put_csv_row(char *p, const struct pump *pm, int nch, int64_t ts_ms)
{
    p = put_u64(p, ts_ms < 0 ? 0 : (uint64_t)ts_ms);
    for (int c = 0; c < nch; c++) {
        *p++ = ',';
        p = put_fixed(p, channel_value(pm, c), channel_decimals[c]);
    }
    *p++ = '\n';
    return p;
}

/* ---- main ----------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vigil-sim [options]\n"
            "  --stream ADDR:PORT  vigild's stream socket (default 127.0.0.1:8471)\n"
            "  --http ADDR:PORT    send POST /write?precision=ns batches to vigild's HTTP API\n"
            "                      instead of the stream\n"
            "  --dry-run           only generate the lines (measures the generator)\n"
            "  --csv DIR           write DIR/pump-N.csv (created; at most 1000 pumps) in\n"
            "                      vigil-replay's input format instead of sending; unpaced\n"
            "  --devices N         pumps to simulate (default 4)\n"
            "  --first-device K    number of the first pump, pump-K (default 1), so several\n"
            "                      processes can cover disjoint ranges\n"
            "  --channels C        channels per pump, 1-8 (default 6: speed flow pressure\n"
            "                      current temp vib; 7 adds power, 8 power and rpm)\n"
            "  --batch L           lines per HTTP request or stream write (default 5000)\n"
            "  --connections C     HTTP connections, one request in flight each; pump i goes\n"
            "                      on connection i %% C, so a device's readings stay in order\n"
            "  --interval MS       simulated milliseconds between readings (default 1000)\n"
            "  --speed X           run X times faster than real time (default 1; 0: no pause)\n"
            "  --backfill S        first send S seconds of healthy history at full speed\n"
            "  --duration S        stop after S seconds of simulated time, the backfill\n"
            "                      included (default: forever)\n"
            "  --start MS          epoch milliseconds of simulated time 0 (default: now less\n"
            "                      the backfill); live pacing then starts with the first live\n"
            "                      step\n"
            "  --from S            send from simulated second S on; the pumps run silently\n"
            "                      before, so --from S --duration E continues a run stopped\n"
            "                      at S exactly\n"
            "  --fault-at S        inject faults from S seconds after the live start (default\n"
            "                      60; pump-1 bearing, pump-2 overheat, pump-3 stuck, pump-4\n"
            "                      spikes, pump-5 cavitation, others none); negative: none\n"
            "  --seed N            random seed (default 1)\n"
            "  --quiet             do not print server errors\n"
            "  --version           print the version and exit\n"
            "  --help              print this help and exit\n"
            "The environment variable VIGIL_TOKEN, when set, is sent as the token: a bearer\n"
            "token over HTTP, an 'auth TOKEN' first line on the stream.\n"
            "At the end a summary line goes to stderr: vigil-sim: done mode= lines_sent=\n"
            "readings_sent= readings_acked= errors= retries= seconds= readings_per_s=\n"
            "Exit status: 0 done (also after SIGTERM or SIGINT; refused readings are counted\n"
            "in errors=), 1 vigild unreachable for 10 s, the connection lost or a file not\n"
            "written, 2 a bad command line or VIGIL_TOKEN.\n");
}

struct sink {
    int mode; /* 0 stream, 1 http, 2 dry run, 3 csv */
    const char *addr;
    char host[160];
    int stream_fd;
    struct acks acks;
    struct hconn conns[MAX_CONNS];
    int nconns;
    struct stats st;
    int verbose;
    uint64_t dry_bytes;
};

/* Hands the lines in *buf (len bytes, nlines lines) to the transport; for HTTP, on the lane's
 * connection, whose buffer is swapped with *buf. Returns -1 when the server is lost. */
static int sink_flush(struct sink *s, int lane, char **buf, size_t *cap, size_t len,
                      uint64_t nlines)
{
    if (nlines == 0)
        return 0;
    s->st.lines_sent += nlines;
    s->st.requests++;
    if (s->mode == 2) {
        s->dry_bytes += len;
        s->st.lines_acked += nlines;
        s->st.t1_us = sim_mono_us();
        return 0;
    }
    if (s->mode == 0)
        return sim_send_all(s->stream_fd, *buf, len, &s->acks);
    struct hconn *c = &s->conns[lane];
    if (sim_http_finish(c, s->addr, s->host, &s->st, s->verbose))
        return -1;
    char *old = c->body;
    size_t oldcap = c->body_cap;
    c->body = *buf;
    c->body_cap = *cap;
    c->body_len = len;
    c->lines = nlines;
    *buf = old;
    *cap = oldcap;
    if (sim_http_send(c, s->host) != 0) { /* sim_http_finish reconnects and sends again */
        close(c->fd);
        c->fd = -1;
        if ((c->fd = sim_connect_retry(s->addr)) < 0)
            return -1;
        sim_set_timeouts(c->fd);
        if (sim_http_send(c, s->host) != 0)
            return -1;
    }
    return 0;
}

/* Waits for every answer; for the stream, closes its sending side and reads the rest. */
static int sink_finish(struct sink *s)
{
    int rc = 0;
    if (s->mode == 1) {
        for (int i = 0; i < s->nconns; i++) {
            if (sim_http_finish(&s->conns[i], s->addr, s->host, &s->st, s->verbose))
                rc = -1;
            if (s->conns[i].fd >= 0)
                close(s->conns[i].fd);
            free(s->conns[i].body);
        }
    } else if (s->mode == 0) {
        shutdown(s->stream_fd, SHUT_WR);
        char ack[16384];
        ssize_t r;
        while ((r = recv(s->stream_fd, ack, sizeof ack, 0)) > 0)
            sim_acks_feed(&s->acks, ack, (size_t)r);
        close(s->stream_fd);
        s->st.t1_us = sim_mono_us();
        uint64_t ok = s->acks.ok_upto;
        s->st.lines_failed = s->acks.rejected + (s->st.lines_sent > ok ? s->st.lines_sent - ok : 0);
        s->st.lines_acked =
            s->st.lines_sent > s->st.lines_failed ? s->st.lines_sent - s->st.lines_failed : 0;
    }
    return rc;
}

/* An early exit once the pumps and connections are allocated: frees them (a sanitizer build
 * reports what main's return leaves unreachable; vigild's --demo feed ends this way when vigild
 * stops before it connects). Returns 1. */
static int give_up(struct sink *s, struct pump *pumps)
{
    for (int i = 0; i < s->nconns; i++)
        free(s->conns[i].body);
    free(pumps);
    return 1;
}

/* optarg as option o's value: the whole word a number (atoi and atof took "abc" as 0) from lo to
 * hi, an integer if whole. A bad one exits 2 with "vigil-sim: --NAME: 'VALUE' is not a number
 * from LO to HI", the long name from opts. */
static double num_arg(const struct option *opts, int o, int whole, double lo, double hi)
{
    char *end;
    errno = 0;
    double x = strtod(optarg, &end);
    if (end != optarg && *end == '\0' && errno == 0 && x >= lo && x <= hi &&
        (!whole || x == floor(x)))
        return x;
    while (opts->val != o)
        opts++;
    char range[80] = "";
    if (isfinite(lo) && isfinite(hi))
        snprintf(range, sizeof range, " from %.16g to %.16g", lo, hi);
    else if (isfinite(lo))
        snprintf(range, sizeof range, " >= %.16g", lo);
    fprintf(stderr, "vigil-sim: --%s: '%s' is not a%s number%s\n", opts->name, optarg,
            whole ? " whole" : "", range);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"stream", required_argument, NULL, 's'},
                                         {"http", required_argument, NULL, 'H'},
                                         {"dry-run", no_argument, NULL, 'D'},
                                         {"csv", required_argument, NULL, 'V'},
                                         {"devices", required_argument, NULL, 'n'},
                                         {"first-device", required_argument, NULL, 'K'},
                                         {"channels", required_argument, NULL, 'c'},
                                         {"batch", required_argument, NULL, 'B'},
                                         {"connections", required_argument, NULL, 'C'},
                                         {"interval", required_argument, NULL, 'i'},
                                         {"speed", required_argument, NULL, 'x'},
                                         {"backfill", required_argument, NULL, 'b'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"fault-at", required_argument, NULL, 'f'},
                                         {"seed", required_argument, NULL, 'r'},
                                         {"start", required_argument, NULL, 'S'},
                                         {"from", required_argument, NULL, 'F'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    static struct sink s;
    s.addr = "127.0.0.1:8471";
    s.nconns = 1;
    s.stream_fd = -1;
    int ndev = 4, nch = 6, batch = 5000;
    long first = 1;
    double interval_ms = 1000, speed = 1, backfill = 0, duration = -1, fault_at = 60, from = 0;
    long long start_arg = -1;
    const char *csv_dir = NULL;
    unsigned long long seed = 1;
    s.verbose = 1;
    int o;
    /* --version has no short form: vigil-replay's -v is its verbose columns. */
    while ((o = getopt_long(argc, argv, "s:H:DV:n:K:c:B:C:i:x:b:d:f:r:S:F:qh", opts, NULL)) != -1) {
        switch (o) {
        case 's':
            s.addr = optarg;
            s.mode = 0;
            break;
        case 'H':
            s.addr = optarg;
            s.mode = 1;
            break;
        case 'D':
            s.mode = 2;
            break;
        case 'V':
            csv_dir = optarg;
            s.mode = 3;
            break;
        case 'n':
            ndev = (int)num_arg(opts, o, 1, 1, 10000000);
            break;
        case 'K':
            first = (long)num_arg(opts, o, 1, 0, 1000000000);
            break;
        case 'c':
            nch = (int)num_arg(opts, o, 1, 1, MAX_CHANNELS);
            break;
        case 'B':
            batch = (int)num_arg(opts, o, 1, 1, 10000000);
            break;
        case 'C':
            s.nconns = (int)num_arg(opts, o, 1, 1, MAX_CONNS);
            break;
        case 'i':
            interval_ms = num_arg(opts, o, 0, 1e-6, HUGE_VAL); /* 1 ns */
            break;
        case 'x':
            speed = num_arg(opts, o, 0, 0, HUGE_VAL);
            break;
        case 'b':
            backfill = num_arg(opts, o, 0, -HUGE_VAL, HUGE_VAL);
            break;
        case 'd':
            duration = num_arg(opts, o, 0, -HUGE_VAL, HUGE_VAL);
            break;
        case 'f':
            fault_at = num_arg(opts, o, 0, -HUGE_VAL, HUGE_VAL);
            break;
        case 'r':
            seed = (unsigned long long)num_arg(opts, o, 1, 0, 0x1p53); /* exact in a double */
            break;
        case 'S':
            start_arg = (long long)num_arg(opts, o, 1, 0, 1e15);
            break;
        case 'F':
            from = num_arg(opts, o, 0, 0, HUGE_VAL);
            break;
        case 'q':
            s.verbose = 0;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'v':
            printf("vigil-sim %s\n", VIGIL_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (s.mode == 3 && (ndev > CSV_MAX_FILES || csv_dir[0] == '\0')) {
        fprintf(stderr, "vigil-sim: --csv: %s\n",
                csv_dir[0] ? "at most 1000 pumps (--devices)" : "empty directory name");
        return 2;
    }
    s.acks.verbose = s.verbose;
    const char *token = getenv("VIGIL_TOKEN");
    if (token && token[0]) {
        if (strlen(token) > 256 || strpbrk(token, " \t\r\n")) {
            fprintf(stderr, "vigil-sim: VIGIL_TOKEN: not a token (blank, or over 256 bytes)\n");
            return 2;
        }
        snprintf(sim_auth_header, sizeof sim_auth_header, "Authorization: Bearer %s\r\n", token);
    }
    snprintf(s.host, sizeof s.host, "%s", s.addr);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    struct pump *pumps = calloc((size_t)ndev, sizeof *pumps);
    if (pumps == NULL)
        return 1;
    for (int i = 0; i < ndev; i++) {
        struct pump *p = &pumps[i];
        long g = first - 1 + i; /* 0 for pump-1: faults and seeds follow the pump's number */
        p->id_len = snprintf(p->id, sizeof p->id, "pump-%ld", g + 1);
        p->rng = (seed + 1) * 0x9E3779B97F4A7C15ULL + (uint64_t)g * 0xBF58476D1CE4E5B9ULL;
        p->speed = 0.75;
        p->flow = 90;
        p->temp = 60;
        p->fault = g >= 0 && g < F_COUNT - 1 ? (enum fault)(g + 1) : F_NONE;
        p->fault_start = fault_at >= 0 ? backfill + fault_at + 15.0 * (double)g : -1;
    }
    const char *what = s.mode == 2 ? "dry run" : s.mode == 3 ? csv_dir : s.addr;
    FILE **csv = NULL;
    if (s.mode == 3) {
        speed = 0; /* files are written as fast as they are generated */
        if (mkdir(csv_dir, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "vigil-sim: --csv %s: %s\n", csv_dir, strerror(errno));
            return 1;
        }
        if ((csv = calloc((size_t)ndev, sizeof *csv)) == NULL)
            return 1;
        for (int i = 0; i < ndev; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s.csv", csv_dir, pumps[i].id);
            if ((csv[i] = fopen(path, "w")) == NULL) {
                fprintf(stderr, "vigil-sim: --csv: %s: %s\n", path, strerror(errno));
                return 1;
            }
            fputs("timestamp", csv[i]);
            for (int c = 0; c < nch; c++)
                fprintf(csv[i], ",%s", channel_names[c]);
            fputc('\n', csv[i]);
        }
    }
    if (s.mode == 0) {
        s.stream_fd = sim_connect_retry(s.addr);
        if (s.stream_fd < 0) {
            fprintf(stderr, "vigil-sim: cannot connect to %s\n", s.addr);
            return give_up(&s, pumps);
        }
        if (sim_auth_header[0]) { /* answered "ok 0"; data lines are numbered from 1 as without */
            char line[300];
            int n = snprintf(line, sizeof line, "auth %s\n", token);
            if (sim_send_all(s.stream_fd, line, (size_t)n, &s.acks) != 0) {
                fprintf(stderr, "vigil-sim: cannot send to %s\n", s.addr);
                return give_up(&s, pumps);
            }
        }
    } else if (s.mode == 1) {
        for (int i = 0; i < s.nconns; i++) {
            s.conns[i].fd = sim_connect_retry(s.addr);
            if (s.conns[i].fd < 0) {
                fprintf(stderr, "vigil-sim: cannot connect to %s\n", s.addr);
                return give_up(&s, pumps);
            }
            sim_set_timeouts(s.conns[i].fd);
            s.conns[i].body_cap = (size_t)batch * LINE_MAX_BYTES + 1024;
            if ((s.conns[i].body = malloc(s.conns[i].body_cap)) == NULL)
                return give_up(&s, pumps);
        }
    }
    /* A negative --fault-at injects none: say so, not "faults from -1 s" and an empty list. */
    if (fault_at < 0 || ndev < 1 || pumps[0].fault == F_NONE) {
        fprintf(stderr, "vigil-sim: %d pumps -> %s; no faults\n", ndev, what);
    } else {
        fprintf(stderr, "vigil-sim: %d pumps -> %s; faults from %+.0f s of live time:", ndev, what,
                fault_at);
        for (int i = 0; i < ndev && pumps[i].fault != F_NONE; i++)
            fprintf(stderr, " %s=%s", pumps[i].id, fault_names[pumps[i].fault]);
        fprintf(stderr, "\n");
    }

    double dt = interval_ms / 1000.0, a = 1 - exp(-dt / 3.0), b = 1 - exp(-dt / 60.0);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* Simulated time t is at ts start_ms + t; live pacing starts at live_ms, against the wall
     * clock from wall0 (by default now; with --start, when the first live reading is due). */
    int64_t live_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, wall0 = live_ms;
    int64_t start_ms = live_ms - (int64_t)(backfill * 1000);
    if (start_arg >= 0) {
        start_ms = start_arg;
        live_ms = start_ms + (int64_t)(backfill * 1000);
        wall0 = -1;
    }
    /* Lanes: each HTTP connection carries its own devices (pump i on lane i % connections),
     * so a device's readings reach the server in order with several requests in flight. */
    int nlanes = s.mode == 1 ? s.nconns : 1;
    static char *buf[MAX_CONNS];
    static size_t cap[MAX_CONNS], len[MAX_CONNS];
    static uint64_t nlines[MAX_CONNS];
    for (int j = 0; j < nlanes; j++) {
        cap[j] = (size_t)batch * LINE_MAX_BYTES + 1024;
        if ((buf[j] = malloc(cap[j])) == NULL)
            return 1;
    }
    int rc = 0;
    for (int64_t k = 0; !sim_stop_flag && rc == 0; k++) {
        double t = (double)k * dt;
        if (duration >= 0 && t >= duration)
            break;
        int64_t ts_ms = start_ms + (int64_t)(t * 1000);
        if (t < from) { /* --from: the physics runs, nothing is sent */
            for (int i = 0; i < ndev; i++)
                pump_step(&pumps[i], t, dt, a, b);
            continue;
        }
        if (s.st.t0_us == 0)
            s.st.t0_us = sim_mono_us();
        /* Live readings are paced against the wall clock; backfill goes at full speed. Each
         * live step is sent before the pause, so a pause never holds readings back. */
        if (ts_ms >= live_ms && speed > 0) {
            for (int j = 0; j < nlanes; j++) {
                if (rc == 0 && sink_flush(&s, j, &buf[j], &cap[j], len[j], nlines[j]))
                    rc = 1;
                len[j] = 0;
                nlines[j] = 0;
            }
            clock_gettime(CLOCK_REALTIME, &now);
            int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
            if (wall0 < 0) { /* --start: pace from the first live step sent */
                wall0 = now_ms;
                live_ms = ts_ms;
            }
            int64_t due = wall0 + (int64_t)((double)(ts_ms - live_ms) / speed);
            int64_t wait = due - now_ms;
            if (wait > 0 && rc == 0)
                usleep((useconds_t)wait * 1000);
        }
        for (int i = 0; i < ndev && rc == 0; i++) {
            struct pump *p = &pumps[i];
            int j = i % nlanes;
            pump_step(p, t, dt, a, b);
            if (csv) {
                char row[LINE_MAX_BYTES];
                size_t n = (size_t)(put_csv_row(row, p, nch, ts_ms) - row);
                if (fwrite(row, 1, n, csv[i]) != n)
                    rc = 1;
                s.st.lines_sent++;
                s.st.lines_acked++;
                continue;
            }
            len[j] = (size_t)(put_line(buf[j] + len[j], p, nch, ts_ms) - buf[j]);
            if (++nlines[j] == (uint64_t)batch) {
                if (sink_flush(&s, j, &buf[j], &cap[j], len[j], nlines[j]))
                    rc = 1;
                len[j] = 0;
                nlines[j] = 0;
            }
        }
    }
    for (int j = 0; j < nlanes; j++)
        if (rc == 0 && sink_flush(&s, j, &buf[j], &cap[j], len[j], nlines[j]))
            rc = 1;
    for (int i = 0; csv && i < ndev; i++)
        if (fclose(csv[i]) != 0)
            rc = 1;
    free(csv);
    if (csv)
        s.st.t1_us = sim_mono_us();
    if (rc && csv)
        fprintf(stderr, "vigil-sim: --csv %s: write failed\n", csv_dir);
    else if (rc)
        fprintf(stderr, "vigil-sim: connection to %s lost\n", s.addr);
    if (sink_finish(&s))
        rc = 1;
    double secs = s.st.t1_us > s.st.t0_us ? (double)(s.st.t1_us - s.st.t0_us) / 1e6 : 0;
    fprintf(stderr,
            "vigil-sim: done mode=%s lines_sent=%llu readings_sent=%llu readings_acked=%llu "
            "errors=%llu retries=%llu requests=%llu seconds=%.3f readings_per_s=%.0f",
            s.mode == 0   ? "stream"
            : s.mode == 1 ? "http"
            : s.mode == 2 ? "dry-run"
                          : "csv",
            (unsigned long long)s.st.lines_sent, (unsigned long long)s.st.lines_sent * nch,
            (unsigned long long)s.st.lines_acked * nch, (unsigned long long)s.st.lines_failed * nch,
            (unsigned long long)s.st.retries, (unsigned long long)s.st.requests, secs,
            secs > 0 ? (double)s.st.lines_acked * nch / secs : 0);
    if (s.mode == 2)
        fprintf(stderr, " bytes=%llu", (unsigned long long)s.dry_bytes);
    fprintf(stderr, "\n");
    for (int j = 0; j < nlanes; j++)
        free(buf[j]);
    free(pumps);
    return rc;
}

/* tools/sim.c: vigil-sim, a simulated fleet of pumps feeding vigild over the stream socket.
 *
 * Each pump has a speed set-point (a control input) and five coupled sensors: flow follows the
 * speed, pressure follows flow, motor current follows flow and pressure, temperature lags the
 * current, vibration rises with speed. Faults are injected on a schedule so a new user sees an
 * anomaly flagged with its channel: bearing wear (a vibration ramp), overheating (a temperature
 * drift), a stuck pressure sensor, spikes, and cavitation (noisy flow and pressure).
 *
 * It writes line protocol ("pump,device=pump-1 speed=...,flow=... <ns>") to the stream and
 * drains the server's acknowledgements. Single-threaded. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum fault { F_NONE, F_BEARING, F_OVERHEAT, F_STUCK, F_SPIKES, F_CAVITATION, F_COUNT };
static const char *const fault_names[F_COUNT] = {"none",  "bearing", "overheat",
                                                 "stuck", "spikes",  "cavitation"};

struct pump {
    char id[32];
    double speed, flow, pressure, current, temp, vib;
    double stuck_value;
    enum fault fault;
    double fault_start; /* seconds of simulated time; < 0: no fault */
    uint64_t rng;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    stop_flag = 1;
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

/* Advances one pump by dt seconds at simulated time t. */
static void pump_step(struct pump *p, double t, double dt)
{
    /* The operator changes speed slowly: a daily-like cycle plus small steps. */
    double target = 0.75 + 0.15 * sin(2 * M_PI * t / 600.0) + 0.05 * sin(2 * M_PI * t / 97.0);
    p->speed += (target - p->speed) * 0.2 + 0.002 * nrand(p);
    double a = 1 - exp(-dt / 3.0);
    p->flow += (120.0 * p->speed - p->flow) * a + 0.4 * nrand(p);
    p->pressure = 1.2 + 0.00035 * p->flow * p->flow + 0.02 * nrand(p);
    p->current = 4.0 + 0.09 * p->flow * p->pressure / 3.0 + 0.05 * nrand(p);
    double b = 1 - exp(-dt / 60.0);
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

/* Sends everything, draining acknowledgements (and printing errors) while the socket is full. */
static int send_all(int fd, const char *buf, size_t n, int verbose)
{
    while (n > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLOUT};
        if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
            return -1;
        if (pfd.revents & POLLIN) {
            char ack[4096];
            ssize_t r = recv(fd, ack, sizeof ack - 1, MSG_DONTWAIT);
            if (r == 0)
                return -1;
            if (r > 0) {
                ack[r] = '\0';
                for (char *l = ack; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                    if (strncmp(l, "ok ", 3) != 0 && verbose)
                        fprintf(stderr, "vigil-sim: server: %.*s\n", (int)strcspn(l, "\n"), l);
            }
        }
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

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vigil-sim [options]\n"
            "  --stream ADDR:PORT  vigild's stream socket (default 127.0.0.1:8471)\n"
            "  --devices N         pumps to simulate (default 4)\n"
            "  --interval MS       simulated milliseconds between readings (default 1000)\n"
            "  --speed X           run X times faster than real time (default 1; 0: no pause)\n"
            "  --backfill S        first send S seconds of healthy history at full speed\n"
            "  --duration S        stop after S seconds of simulated time (default: forever)\n"
            "  --fault-at S        inject faults from S seconds after the live start (default 60;\n"
            "                      pump-1 bearing, pump-2 overheat, pump-3 stuck, pump-4 spikes,\n"
            "                      pump-5 cavitation, others none); negative: no faults\n"
            "  --seed N            random seed (default 1)\n"
            "  --quiet             do not print server errors\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"stream", required_argument, NULL, 's'},
                                         {"devices", required_argument, NULL, 'n'},
                                         {"interval", required_argument, NULL, 'i'},
                                         {"speed", required_argument, NULL, 'x'},
                                         {"backfill", required_argument, NULL, 'b'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"fault-at", required_argument, NULL, 'f'},
                                         {"seed", required_argument, NULL, 'r'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *addr = "127.0.0.1:8471";
    int ndev = 4, verbose = 1;
    double interval_ms = 1000, speed = 1, backfill = 0, duration = -1, fault_at = 60;
    unsigned long long seed = 1;
    int o;
    while ((o = getopt_long(argc, argv, "s:n:i:x:b:d:f:r:qh", opts, NULL)) != -1) {
        switch (o) {
        case 's':
            addr = optarg;
            break;
        case 'n':
            ndev = atoi(optarg);
            break;
        case 'i':
            interval_ms = atof(optarg);
            break;
        case 'x':
            speed = atof(optarg);
            break;
        case 'b':
            backfill = atof(optarg);
            break;
        case 'd':
            duration = atof(optarg);
            break;
        case 'f':
            fault_at = atof(optarg);
            break;
        case 'r':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'q':
            verbose = 0;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (ndev < 1 || ndev > 1000000 || interval_ms <= 0 || speed < 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    struct pump *pumps = calloc((size_t)ndev, sizeof *pumps);
    if (pumps == NULL)
        return 1;
    for (int i = 0; i < ndev; i++) {
        struct pump *p = &pumps[i];
        snprintf(p->id, sizeof p->id, "pump-%d", i + 1);
        p->rng = (seed + 1) * 0x9E3779B97F4A7C15ULL + (uint64_t)i * 0xBF58476D1CE4E5B9ULL;
        p->speed = 0.75;
        p->flow = 90;
        p->temp = 60;
        p->fault = i < F_COUNT - 1 ? (enum fault)(i + 1) : F_NONE;
        p->fault_start = fault_at >= 0 ? backfill + fault_at + 15.0 * i : -1;
    }
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100 && !stop_flag; tries++) {
        fd = connect_to(addr);
        if (fd < 0)
            usleep(100000);
    }
    if (fd < 0) {
        fprintf(stderr, "vigil-sim: cannot connect to %s\n", addr);
        return 1;
    }
    fprintf(stderr, "vigil-sim: %d pumps -> %s; faults from %+.0f s of live time:", ndev, addr,
            fault_at);
    for (int i = 0; i < ndev && i < F_COUNT - 1; i++)
        fprintf(stderr, " %s=%s", pumps[i].id, fault_names[pumps[i].fault]);
    fprintf(stderr, "\n");

    double dt = interval_ms / 1000.0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t live_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    int64_t start_ms = live_ms - (int64_t)(backfill * 1000);
    size_t cap = (size_t)ndev * 160 + 1024;
    char *buf = malloc(cap);
    int rc = 0;
    for (int64_t k = 0; !stop_flag; k++) {
        double t = k * dt;
        if (duration >= 0 && t >= duration)
            break;
        int64_t ts_ms = start_ms + (int64_t)(t * 1000);
        /* Live readings are paced against the wall clock; backfill goes at full speed. */
        if (ts_ms >= live_ms && speed > 0) {
            int64_t due = live_ms + (int64_t)((double)(ts_ms - live_ms) / speed);
            clock_gettime(CLOCK_REALTIME, &now);
            int64_t wait = due - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
            if (wait > 0)
                usleep((useconds_t)wait * 1000);
        }
        size_t n = 0;
        for (int i = 0; i < ndev; i++) {
            struct pump *p = &pumps[i];
            pump_step(p, t, dt);
            n += (size_t)snprintf(buf + n, cap - n,
                                  "pump,device=%s speed=%.4f,flow=%.3f,pressure=%.4f,"
                                  "current=%.3f,temp=%.3f,vib=%.4f %lld000000\n",
                                  p->id, p->speed, p->flow, p->pressure, p->current, p->temp,
                                  p->vib, (long long)ts_ms);
        }
        if (send_all(fd, buf, n, verbose)) {
            fprintf(stderr, "vigil-sim: connection to %s lost\n", addr);
            rc = 1;
            break;
        }
    }
    shutdown(fd, SHUT_WR);
    char ack[4096];
    while (recv(fd, ack, sizeof ack, 0) > 0)
        ;
    close(fd);
    free(buf);
    free(pumps);
    return rc;
}

/* api/metrics.c: GET /metrics in the Prometheus text format (version 0.0.4).
 *
 * The build's gauge (vigil_build_info: which build answers) and the API's own families (HTTP
 * requests by route and status, each route's success codes from the start, see route_ok; the
 * requests in flight; the open connections and their cap; ingest by protocol) come first;
 * the backend appends the families of storage, the stream and the models, and the process_*
 * families (metrics_process.c: CPU, memory, start time, descriptors) end it. Any thread; the
 * counters are relaxed atomics, so a scrape is a consistent-enough snapshot. */
#include "api_int.h"
#include "prom.h"

static const char *const route_names[ROUTE_COUNT] = {"not_found",      "healthz",
                                                     "metrics",        "ping",
                                                     "write",          "query",
                                                     "readings",       "devices",
                                                     "device",         "device_readings",
                                                     "status",         "predictions",
                                                     "forecast",       "device_anomalies",
                                                     "anomalies",      "model",
                                                     "model_retrain",  "model_rollback",
                                                     "model_weights",  "anomalies_accept",
                                                     "maintenance",    "events",
                                                     "admin_snapshot", "admin_snapshots",
                                                     "write_v2",       "health"};
static const char *const proto_names[PROTO_COUNT] = {"json", "lp", "stream"};

/* The codes each route answers when it does its job, exported from the start (0 before its first
 * request), so rate() and increase() see a route's first successes instead of starting a series
 * on them. Only these: the whole route x code matrix would be ROUTE_COUNT x 18 series (25 x 18 =
 * 450), mostly impossible pairs (a 413 from GET /healthz). So an error pair still appears with its
 * first error, which rate() does not count (the shipped rules alert on no HTTP error rate; the
 * dashboard's errors panel shows it from the second). not_found's one answer is 404 and is
 * exported; OPTIONS (204 on every route) is not. */
static const unsigned route_ok[ROUTE_COUNT][2] = {
    [ROUTE_NOT_FOUND] = {404},   [ROUTE_HEALTHZ] = {200},
    [ROUTE_METRICS] = {200},     [ROUTE_PING] = {204},
    [ROUTE_WRITE] = {204},       [ROUTE_QUERY] = {200},
    [ROUTE_READINGS] = {200},    [ROUTE_DEVICES] = {200},
    [ROUTE_DEVICE] = {200, 201}, [ROUTE_DEVICE_READINGS] = {200},
    [ROUTE_STATUS] = {200},      [ROUTE_PREDICTIONS] = {200},
    [ROUTE_FORECAST] = {200},    [ROUTE_DEVICE_ANOMALIES] = {200},
    [ROUTE_ANOMALIES] = {200},   [ROUTE_MODEL] = {200},
    [ROUTE_RETRAIN] = {202},     [ROUTE_ROLLBACK] = {200},
    [ROUTE_WEIGHTS] = {200},     [ROUTE_ACCEPT] = {200},
    [ROUTE_MAINT] = {200, 204},  [ROUTE_EVENTS] = {200},
    [ROUTE_SNAPSHOT] = {200},    [ROUTE_SNAPSHOTS] = {200},
    [ROUTE_WRITE_V2] = {204},    [ROUTE_HEALTH] = {200},
};

static int is_route_ok(int rt, unsigned code)
{
    return route_ok[rt][0] == code || route_ok[rt][1] == code;
}

void api__h_metrics(api_request_t *r)
{
    struct api_server *srv = r->srv;
    static const unsigned codes[] = API_STATUS_CODES;
    sbuf_t b;
    sbuf_init(&b);
    /* Which build answers (api_opts_t's commit and build_type, vigild's daemon/build.h), as
     * --version and the start-up line say it: a gauge of 1 whose labels are the information
     * (Prometheus' own prometheus_build_info). */
    sbuf_printf(&b, "# HELP vigil_build_info The running vigild's build: its version, the git "
                    "commit it was built from (empty outside a git checkout; -dirty: with changes) "
                    "and its build type. Always 1.\n# TYPE vigil_build_info gauge\n"
                    "vigil_build_info{version=");
    prom_label(&b, VIGIL_VERSION);
    sbuf_printf(&b, ",commit=");
    prom_label(&b, srv->opts.commit ? srv->opts.commit : "");
    sbuf_printf(&b, ",build_type=");
    prom_label(&b, srv->opts.build_type ? srv->opts.build_type : "");
    sbuf_printf(&b, "} 1\n");
    sbuf_printf(&b, "# HELP vigil_http_requests_total HTTP requests answered, by route and "
                    "status code.\n# TYPE vigil_http_requests_total counter\n");
    for (int rt = 0; rt < ROUTE_COUNT; rt++) {
        for (int k = 0; k < API_NSTATUS; k++) {
            uint64_t n = atomic_load_explicit(&srv->requests[rt][k], memory_order_relaxed);
            if (n == 0 && (k == API_NSTATUS - 1 || !is_route_ok(rt, codes[k])))
                continue;
            if (k < API_NSTATUS - 1)
                sbuf_printf(&b, "vigil_http_requests_total{route=\"%s\",code=\"%u\"} %llu\n",
                            route_names[rt], codes[k], (unsigned long long)n);
            else
                sbuf_printf(&b, "vigil_http_requests_total{route=\"%s\",code=\"other\"} %llu\n",
                            route_names[rt], (unsigned long long)n);
        }
    }
    sbuf_printf(&b, "# HELP vigil_http_request_seconds_total Time spent answering requests, by "
                    "route.\n# TYPE vigil_http_request_seconds_total counter\n");
    for (int rt = 0; rt < ROUTE_COUNT; rt++)
        sbuf_printf(&b, "vigil_http_request_seconds_total{route=\"%s\"} %.6f\n", route_names[rt],
                    atomic_load_explicit(&srv->request_seconds_us[rt], memory_order_relaxed) / 1e6);
    /* srv->inflight, what api_stop waits for: read here, it includes this scrape itself (as
     * promhttp's promhttp_metric_handler_requests_in_flight does) and leaves out the event
     * streams whose response has begun (they last as long as their client). */
    sbuf_printf(&b,
                "# HELP vigil_http_requests_in_flight HTTP requests begun (headers read) and "
                "not yet answered, this scrape included; open event streams are not.\n"
                "# TYPE vigil_http_requests_in_flight gauge\n"
                "vigil_http_requests_in_flight %d\n",
                atomic_load(&srv->inflight));
    /* srv->connections (server.c's on_connection) against http.max_connections, the cap at
     * which libmicrohttpd stops accepting (a connection past it waits in the kernel's listen
     * backlog, not counted): with the stream's two gauges, what
     * VigilFileDescriptorsNearLimit's descriptors are mostly spent on. */
    sbuf_printf(&b,
                "# HELP vigil_http_connections Open HTTP connections (idle keep-alive and event "
                "streams included), this scrape's own included.\n"
                "# TYPE vigil_http_connections gauge\nvigil_http_connections %d\n"
                "# HELP vigil_http_connections_max HTTP connections open at most at once "
                "(http.max_connections); one past it waits in the listen backlog until one "
                "closes.\n"
                "# TYPE vigil_http_connections_max gauge\nvigil_http_connections_max %u\n",
                atomic_load(&srv->connections), srv->opts.max_conns);
    sbuf_printf(
        &b,
        "# HELP vigil_http_query_timeouts_total /query answers cut short by "
        "http.query_timeout.\n# TYPE vigil_http_query_timeouts_total counter\n"
        "vigil_http_query_timeouts_total %llu\n",
        (unsigned long long)atomic_load_explicit(&srv->query_timeouts, memory_order_relaxed));
    sbuf_printf(
        &b,
        "# HELP vigil_http_accept_errors_total HTTP accepts that failed (out of "
        "descriptors or memory), as libmicrohttpd logs them: attempts, not clients.\n"
        "# TYPE vigil_http_accept_errors_total counter\n"
        "vigil_http_accept_errors_total %llu\n",
        (unsigned long long)atomic_load_explicit(&srv->accept_errors, memory_order_relaxed));
    /* server.c: on_connection, mhd_log and request_late, each also a warning a minute. */
    sbuf_printf(
        &b,
        "# HELP vigil_http_connections_refused_total HTTP connections closed unserved at once "
        "because their address held http.max_connections_per_ip.\n"
        "# TYPE vigil_http_connections_refused_total counter\n"
        "vigil_http_connections_refused_total %llu\n"
        "# HELP vigil_http_connections_full_total Times the open HTTP connections reached "
        "http.max_connections (new ones then wait in the listen backlog).\n"
        "# TYPE vigil_http_connections_full_total counter\n"
        "vigil_http_connections_full_total %llu\n"
        "# HELP vigil_http_request_timeouts_total HTTP requests whose body did not arrive "
        "within http.request_timeout_s: their connection closed.\n"
        "# TYPE vigil_http_request_timeouts_total counter\n"
        "vigil_http_request_timeouts_total %llu\n",
        (unsigned long long)atomic_load_explicit(&srv->conns_refused, memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&srv->conns_full, memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&srv->request_timeouts, memory_order_relaxed));
    sbuf_printf(&b, "# HELP vigil_ingest_readings_total Readings (channel values) accepted, by "
                    "protocol.\n# TYPE vigil_ingest_readings_total counter\n");
    for (int p = 0; p < PROTO_COUNT; p++)
        sbuf_printf(&b, "vigil_ingest_readings_total{proto=\"%s\"} %llu\n", proto_names[p],
                    (unsigned long long)atomic_load_explicit(&srv->ingest_accepted[p],
                                                             memory_order_relaxed));
    sbuf_printf(&b, "# HELP vigil_ingest_rejected_total Items or lines rejected as invalid, by "
                    "protocol.\n# TYPE vigil_ingest_rejected_total counter\n");
    for (int p = 0; p < PROTO_COUNT; p++)
        sbuf_printf(&b, "vigil_ingest_rejected_total{proto=\"%s\"} %llu\n", proto_names[p],
                    (unsigned long long)atomic_load_explicit(&srv->ingest_rejected[p],
                                                             memory_order_relaxed));
    api__events_metrics(srv->opts.events, &b);
    if (srv->be.metrics)
        srv->be.metrics(srv->be.ctx, &b);
    api__process_metrics(srv, &b);
    api__body(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

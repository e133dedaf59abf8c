/* api/metrics.c: GET /metrics in the Prometheus text format (version 0.0.4).
 *
 * The API's own families (HTTP requests by route and status, ingest by protocol) come first;
 * the backend appends the families of storage, the stream and the models. Any thread; the
 * counters are relaxed atomics, so a scrape is a consistent-enough snapshot. */
#include "api_int.h"

static const char *const route_names[ROUTE_COUNT] = {"not_found",     "healthz",
                                                     "metrics",       "ping",
                                                     "write",         "query",
                                                     "readings",      "devices",
                                                     "device",        "device_readings",
                                                     "status",        "predictions",
                                                     "forecast",      "device_anomalies",
                                                     "anomalies",     "model",
                                                     "model_retrain", "model_rollback",
                                                     "model_weights"};
static const char *const proto_names[PROTO_COUNT] = {"json", "lp", "stream"};

void api__h_metrics(api_request_t *r)
{
    struct api_server *srv = r->srv;
    static const unsigned codes[] = API_STATUS_CODES;
    sbuf_t b;
    sbuf_init(&b);
    sbuf_printf(&b, "# HELP vigil_http_requests_total HTTP requests answered, by route and "
                    "status code.\n# TYPE vigil_http_requests_total counter\n");
    for (int rt = 0; rt < ROUTE_COUNT; rt++) {
        for (int k = 0; k < API_NSTATUS; k++) {
            uint64_t n = atomic_load_explicit(&srv->requests[rt][k], memory_order_relaxed);
            if (n == 0)
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
    if (srv->be.metrics)
        srv->be.metrics(srv->be.ctx, &b);
    api__body(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

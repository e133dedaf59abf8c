/* api/influx_v2.c: InfluxDB 2's write API, POST /api/v2/write, so Telegraf's influxdb_v2 output
 * and InfluxData's v2 client libraries write to vigild unchanged. Any thread.
 *
 * The write itself is /write's (influx.c api__lp_write: the same parser, limits, storage and
 * partial writes); this file reads v2's parameters as InfluxDB 2 OSS does, in its order:
 * precision (v2's units only: ns, us, ms, s; v1's n, u, m, h are refused, as InfluxDB 2 refuses
 * them, so what works here works there), then the bucket (bucket or bucketID; missing: 404 "bucket
 * not found"), then the organization (org or orgID; missing: 400). vigild has one store: the org
 * chooses nothing, and the bucket is a database name, remembered for SHOW DATABASES as
 * /write?db= is. A bucket "db/rp" (InfluxDB 2's name for a v1 database and policy) is the
 * database db; the policy part chooses nothing. Every error of this route is in v2's form,
 * {"code":"invalid","message":"..."} (request.c api__error, by the route).
 *
 * And GET /health, InfluxDB 2's (and 1.8's) health check, which its tools and load balancers
 * ask: InfluxDB 2's body with vigild's version, "pass" with 200, or "fail" with 503 when the
 * backend is not healthy (the test of /healthz, api__backend_healthy). Open, as /healthz is. */
#include "api_int.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* The longest bucket or org value taken (InfluxDB 2 limits names far below it); a longer one is
 * a 400 naming the parameter (api__arg). */
#define V2_NAME_MAX 256

/* v2's precision units; 0 when s is not one. */
static int v2_precision(const char *s, lp_precision_t *out)
{
    static const struct {
        const char *name;
        lp_precision_t unit;
    } units[] = {{"ns", LP_NS}, {"us", LP_US}, {"ms", LP_MS}, {"s", LP_S}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(s, units[i].name) == 0) {
            *out = units[i].unit;
            return 1;
        }
    return 0;
}

/* The first non-empty of two parameters (name, then alt), decoded into buf; NULL when neither is
 * given, or with a 400 answer set (r->status) when one is too long or holds a NUL byte. */
static const char *arg_either(api_request_t *r, const char *name, const char *alt, char *buf,
                              size_t size)
{
    const char *v = api__arg(r, name, buf, size);
    if (r->status || (v && *v))
        return v;
    v = api__arg(r, alt, buf, size);
    return r->status || (v && *v) ? v : NULL;
}

void api__h_write_v2(api_request_t *r)
{
    char pbuf[16];
    const char *p = api__arg(r, "precision", pbuf, sizeof pbuf);
    if (r->status)
        return;
    api_lp_write_t w = {.precision = LP_NS, .check = NULL,
                        .unit = p && *p ? LP_UNIT_DECLARED : LP_UNIT_IMPLIED_PARAM};
    if (p && *p && !v2_precision(p, &w.precision)) {
        api__error(r, 400,
                   "invalid precision '%s' (parameter 'precision'); valid precision units are ns, "
                   "us, ms, and s",
                   p);
        return;
    }
    char bucket[V2_NAME_MAX + 1], org[V2_NAME_MAX + 1];
    const char *b = arg_either(r, "bucket", "bucketID", bucket, sizeof bucket);
    if (r->status)
        return;
    if (b == NULL) {
        api__error(r, 404, "bucket not found: give parameter 'bucket' (or 'bucketID')");
        return;
    }
    if (arg_either(r, "org", "orgID", org, sizeof org) == NULL) {
        if (r->status == 0)
            api__error(r, 400, "Please provide either orgID or org (parameter 'org' or 'orgID')");
        return;
    }
    w.db = b;
    w.db_len = strcspn(b, "/"); /* "db/rp": the database db */
    api__lp_write(r, &w);
}

/* The fields in InfluxDB 2's order (its HealthCheck: name, message, status, checks, version,
 * commit); jansson keeps the order they are packed in. Each check is in the form of InfluxDB 2's
 * kit/check responses: name, status, and a message only when there is one to give. */
void api__h_health(api_request_t *r)
{
    const char *commit = r->srv->opts.commit ? r->srv->opts.commit : "";
    api_check_t checks[API_CHECKS_MAX];
    char why[API_HEALTH_WHY_MAX], msg[sizeof why + 16];
    size_t n;
    int ok = api__backend_healthy(r, checks, &n, why, sizeof why);
    snprintf(msg, sizeof msg, "unhealthy: %s", why);
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        json_t *c = json_pack("{s:s,s:s}", "name", checks[i].name, "status",
                              checks[i].pass ? "pass" : "fail");
        if (c && checks[i].message[0])
            json_object_set_new(c, "message", json_string(checks[i].message));
        if (c == NULL || json_array_append_new(list, c) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    /* json_pack's "o" takes list even when it fails, and fails on NULL: api__json answers the
     * out-of-memory 500. */
    api__json(r, ok ? 200 : 503,
              json_pack("{s:s,s:s,s:s,s:o,s:s,s:s}", "name", "influxdb", "message",
                        ok ? "ready for queries and writes" : msg, "status", ok ? "pass" : "fail",
                        "checks", list, "version", VIGIL_VERSION, "commit",
                        commit[0] ? commit : "unknown"));
}

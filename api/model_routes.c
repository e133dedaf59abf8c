/* api/model_routes.c: the endpoints of the online pipeline: status, predictions, forecast,
 * anomalies, model versions, retrain, rollback and weights. The answers are built by the
 * backend (the daemon's pipeline) as JSON text; this file validates parameters and maps errors.
 * Any thread. */
#include "api_int.h"
#include "err.h"
#include "vtime.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Maps a pipeline error to an answer naming the device. */
static void fail(api_request_t *r, int rc, const char *what)
{
    if (rc == ERR_NOTFOUND)
        api__error(r, 404, "%s: device '%s' is not known to the pipeline (no readings yet?)", what,
                   r->seg[0] ? r->seg[0] : "");
    else if (rc == ERR_RANGE)
        api__error(r, 409, "%s: device '%s' has no model yet (still learning)", what, r->seg[0]);
    else if (rc == ERR_BUSY)
        api__error(r, 409, "%s: a training of device '%s' is already queued or running", what,
                   r->seg[0]);
    else
        api__backend_error(r, rc, what);
}

/* Answers 200 with the backend's JSON text (taking it), or maps the backend's error. */
static void answer(api_request_t *r, int rc, char *json, const char *what)
{
    if (rc || json == NULL) {
        free(json);
        fail(r, rc ? rc : ERR_NOMEM, what);
        return;
    }
    sbuf_t b;
    sbuf_init(&b);
    sbuf_append(&b, json, strlen(json));
    sbuf_append(&b, "\n", 1);
    free(json);
    api__body(r, 200, "application/json", &b);
}

static int have(api_request_t *r, const void *fn)
{
    if (fn == NULL) {
        api__error(r, 501, "the model pipeline is not running in this vigild");
        return 0;
    }
    return 1;
}

void api__h_status(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    if (!have(r, be->pipe_status))
        return;
    char *out = NULL;
    int rc = be->pipe_status(be->ctx, r->seg[0], &out);
    answer(r, rc, out, "status");
}

void api__h_predictions(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    int64_t from, to;
    size_t limit;
    if (!have(r, be->pipe_predictions) || api__arg_time(r, "from", VTIME_MIN_MS, &from) ||
        api__arg_time(r, "to", VTIME_MAX_MS + 1, &to) ||
        api__arg_limit(r, "limit", 1000, 100000, &limit))
        return;
    char *out = NULL;
    int rc = be->pipe_predictions(be->ctx, r->seg[0], from, to, limit, &out);
    answer(r, rc, out, "predictions");
}

void api__h_forecast(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    size_t horizon;
    if (!have(r, be->pipe_forecast) || api__arg_limit(r, "horizon", 60, 10000, &horizon))
        return;
    char *out = NULL;
    int rc = be->pipe_forecast(be->ctx, r->seg[0], (int)horizon, &out);
    answer(r, rc, out, "forecast");
}

void api__h_anomalies(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    int64_t from, to;
    char abuf[8];
    if (!have(r, be->pipe_anomalies) || api__arg_time(r, "from", VTIME_MIN_MS, &from) ||
        api__arg_time(r, "to", VTIME_MAX_MS + 1, &to))
        return;
    const char *a = api__arg(r, "active", abuf, sizeof abuf);
    if (r->status)
        return;
    if (a && strcmp(a, "true") != 0 && strcmp(a, "false") != 0) {
        api__error(r, 400, "parameter 'active': want true or false");
        return;
    }
    char *out = NULL;
    int rc = be->pipe_anomalies(be->ctx, r->route == ROUTE_ANOMALIES ? NULL : r->seg[0],
                                a && strcmp(a, "true") == 0, from, to, &out);
    answer(r, rc, out, "anomalies"); /* out is read after the call has filled it */
}

void api__h_model(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    if (!have(r, be->pipe_models))
        return;
    char *out = NULL;
    int rc = be->pipe_models(be->ctx, r->seg[0], &out);
    answer(r, rc, out, "model");
}

void api__h_retrain(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    if (!have(r, be->pipe_retrain))
        return;
    int rc = be->pipe_retrain(be->ctx, r->seg[0]);
    if (rc == 0)
        api__json(r, 202, json_pack("{s:s,s:s}", "device", r->seg[0], "training", "queued"));
    else
        fail(r, rc, "retrain");
}

void api__h_rollback(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    if (!have(r, be->pipe_rollback))
        return;
    json_error_t jerr;
    json_t *v = json_loadb(r->body ? r->body : "", r->len, 0, &jerr);
    json_t *ver = v ? json_object_get(v, "version") : NULL;
    if (!json_is_integer(ver) || json_integer_value(ver) < 1 ||
        json_integer_value(ver) > UINT32_MAX) {
        json_decref(v);
        api__error(r, 400, "body must be {\"version\": N} with N a version of GET .../model");
        return;
    }
    uint32_t version = (uint32_t)json_integer_value(ver);
    json_decref(v);
    int rc = be->pipe_rollback(be->ctx, r->seg[0], version);
    if (rc == ERR_NOTFOUND)
        api__error(r, 404, "device '%s' has no version %u with kept weights", r->seg[0], version);
    else if (rc)
        fail(r, rc, "rollback");
    else
        api__json(r, 200,
                  json_pack("{s:s,s:I}", "device", r->seg[0], "serving", (json_int_t)version));
}

void api__h_weights(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    if (strcmp(r->method, "GET") == 0) {
        if (!have(r, be->pipe_weights_get))
            return;
        void *buf = NULL;
        size_t len = 0;
        int rc = be->pipe_weights_get(be->ctx, r->seg[0], &buf, &len);
        if (rc) {
            fail(r, rc, "weights");
            return;
        }
        sbuf_t b;
        sbuf_init(&b);
        sbuf_append(&b, buf, len);
        free(buf);
        api__body(r, 200, "application/octet-stream", &b);
        return;
    }
    if (!have(r, be->pipe_weights_put))
        return;
    char *body;
    size_t len;
    int owned;
    if (api__request_body(r, &body, &len, &owned))
        return;
    int rc = be->pipe_weights_put(be->ctx, r->seg[0], body, len);
    if (owned)
        free(body);
    if (rc == ERR_CORRUPT)
        api__error(r, 400, "body is not a valid safetensors file of an LSTM model");
    else if (rc == ERR_INVAL)
        api__error(r, 400, "the weights' shape does not fit device '%s' (channels or inputs)",
                   r->seg[0]);
    else if (rc)
        fail(r, rc, "weights");
    else {
        char *out = NULL;
        rc = be->pipe_models ? be->pipe_models(be->ctx, r->seg[0], &out) : ERR_IO;
        answer(r, rc, out, "weights");
    }
}

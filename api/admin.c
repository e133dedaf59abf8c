/* api/admin.c: the administration endpoints: POST /v1/admin/snapshot (an online backup of the
 * database) and GET /v1/admin/snapshots (their list). The backend does the work and builds the
 * answers; this file checks the body and maps errors to status codes: a snapshot already
 * running is a 409, a full volume a 507 with Retry-After, a stop a 503, anything else a 500
 * with the reason (SQLite's message). The client never names a path. Any thread (an http-io
 * thread: a snapshot waits for the disk). */
#include "api_int.h"
#include "err.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Seconds a client should wait before it tries a snapshot again on a full volume. */
#define SNAPSHOT_NOSPACE_RETRY_S 60

/* Answers 200 with the backend's JSON text (taking it). */
static void answer_json(api_request_t *r, char *json)
{
    sbuf_t b;
    sbuf_init(&b);
    sbuf_append(&b, json, strlen(json));
    sbuf_append(&b, "\n", 1);
    free(json);
    api__body(r, 200, "application/json", &b);
}

/* Whether the body is empty (whitespace only) or an empty JSON object; else a 400 is set. */
static int body_empty(api_request_t *r)
{
    char *body;
    size_t len;
    int owned;
    if (api__request_body(r, &body, &len, &owned))
        return 0;
    size_t i = 0;
    while (i < len && strchr(" \t\r\n", body[i]) != NULL && body[i] != '\0')
        i++;
    int ok = i == len;
    if (!ok) {
        json_error_t jerr;
        json_t *v = json_loadb(body, len, 0, &jerr);
        ok = json_is_object(v) && json_object_size(v) == 0;
        if (!ok && json_is_object(v))
            api__error(r, 400,
                       "request body: unknown field '%s' (the snapshot takes no "
                       "options: send no body or {})",
                       json_object_iter_key(json_object_iter(v)));
        else if (!ok)
            api__error(r, 400, "request body: expected no body or an empty JSON object {}");
        json_decref(v);
    }
    if (owned)
        free(body);
    return ok;
}

void api__h_snapshot(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    if (be->snapshot == NULL) {
        api__error(r, 501, "snapshots are not available in this vigild");
        return;
    }
    if (!body_empty(r))
        return;
    char *out = NULL;
    int rc = be->snapshot(be->ctx, &out);
    if (rc == 0 && out) {
        answer_json(r, out);
        return;
    }
    const char *why = out ? out : err_str(rc ? rc : ERR_NOMEM);
    switch (rc) {
    case ERR_BUSY:
        api__error(r, 409, "snapshot: %s; retry when it has finished", why);
        break;
    case ERR_NOSPACE:
        r->retry_after = SNAPSHOT_NOSPACE_RETRY_S;
        api__error(r, 507, "snapshot: no space left on the data volume (%s)", why);
        break;
    case ERR_CLOSED:
        r->retry_after = 5;
        api__error(r, 503, "snapshot: %s", why);
        break;
    default:
        api__error(r, 500, "snapshot failed: %s", why);
    }
    free(out);
}

void api__h_snapshots(api_request_t *r)
{
    api_backend_t *be = &r->srv->be;
    if (be->snapshots == NULL) {
        api__error(r, 501, "snapshots are not available in this vigild");
        return;
    }
    char *out = NULL;
    int rc = be->snapshots(be->ctx, &out);
    if (rc == 0 && out) {
        answer_json(r, out);
        return;
    }
    api__error(r, 500, "listing snapshots: %s", out ? out : err_str(rc ? rc : ERR_NOMEM));
    free(out);
}

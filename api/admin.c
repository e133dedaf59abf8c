/* api/admin.c: the administration endpoints: POST /v1/admin/snapshot (an online backup of the
 * database) and GET /v1/admin/snapshots (their list). The backend does the work and builds the
 * answers; this file checks the body and maps errors to status codes: a snapshot already
 * running is a 409, a full volume a 507 with Retry-After, a stop a 503, a lack of file
 * descriptors or memory (EMFILE, ENFILE, ENOMEM) a 503 with Retry-After: 1 and the reason (it
 * passes: the next try may succeed, as tz()'s lookup is answered), anything else a 500 with the
 * reason (SQLite's message). A snapshot made whose answer could not be built (out of memory)
 * is a 500 saying it was made, not a 503: a retry would make a second one. The client never
 * names a path. Any thread (an http-io thread: a snapshot waits for the disk). */
#include "api_int.h"
#include "err.h"

#include <jansson.h>
#include <stdlib.h>

/* Calls a backend function that answers JSON text (NULL: 501), and answers 200 with its
 * text, or maps its error: a snapshot already running 409, a full volume 507 and a stop 503
 * (both with Retry-After), out of descriptors or memory 503 with Retry-After: 1 and the
 * backend's reason, anything else 500 with the backend's reason. made: fn succeeding without
 * an answer (out of memory) made something a retry would make again: a 500 saying so. */
static void call(api_request_t *r, int (*fn)(void *ctx, char **out), const char *what, int made)
{
    if (fn == NULL) {
        api__error(r, 501, "snapshots are not available in this vigild");
        return;
    }
    char *out = NULL;
    int rc = fn(r->srv->be.ctx, &out);
    if (rc == 0 && out) {
        api__json_text(r, out);
        return;
    }
    if (rc == 0 && made) {
        api__error(r, 500,
                   "%s made, but its answer could not be built (out of memory); do not retry "
                   "(that makes another): GET /v1/admin/snapshots lists it, the log names it",
                   what);
        return;
    }
    if (rc == ERR_BUSY)
        api__error(r, 409, "%s: %s; retry when it has finished", what, out ? out : "busy");
    else if (rc == ERR_NOSPACE || rc == ERR_CLOSED || rc == ERR_LOCKED)
        api__backend_error(r, rc, what);
    else if (rc == ERR_RESOURCE || rc == ERR_NOMEM || (rc == 0 && out == NULL)) {
        r->retry_after = 1;
        api__error(r, 503, "%s failed: %s; retry later", what, out ? out : err_str(ERR_NOMEM));
    } else
        api__error(r, 500, "%s failed: %s", what, out ? out : err_str(rc ? rc : ERR_NOMEM));
    free(out);
}

/* Whether the body is empty (a mark or blanks only) or an empty JSON object; else a 400 is set:
 * a body that is not JSON says where jansson stopped, in the words of every other JSON route. */
static int body_empty(api_request_t *r)
{
    json_t *v;
    json_error_t jerr;
    int rc = api__json_body(r, &v, &jerr);
    if (rc < 0)
        return 0;
    if (rc > 0) {
        api__json_error(r, &jerr, "(send no body or {})");
        return 0;
    }
    int ok = v == NULL || (json_is_object(v) && json_object_size(v) == 0);
    if (!ok && json_is_object(v))
        api__error(r, 400,
                   "request body: unknown field '%s' (the snapshot takes no "
                   "options: send no body or {})",
                   json_object_iter_key(json_object_iter(v)));
    else if (!ok)
        api__error(r, 400, "request body: expected no body or an empty JSON object {}");
    json_decref(v);
    return ok;
}

void api__h_snapshot(api_request_t *r)
{
    if (r->srv->be.snapshot && !body_empty(r))
        return;
    call(r, r->srv->be.snapshot, "snapshot", 1);
}

void api__h_snapshots(api_request_t *r)
{
    call(r, r->srv->be.snapshots, "listing snapshots", 0);
}

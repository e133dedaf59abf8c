/* api/bodymem.c: the bound on the memory request bodies hold, over all requests together
 * (http.max_inflight_bytes). A request charges what it is about to allocate for its body: the
 * raw bytes as they arrive (server.c), the gzip-inflated copy as it grows (request.c) and, for a
 * JSON body, an estimate of the tree jansson builds from it (json_tree_bytes, made by a pre-scan
 * before jansson runs). The charge is srv->body_held, a sum over the requests in flight; each
 * request keeps its own part in r->held and gives all of it back when it completes.
 *
 * A charge that would take the request's own part past the bound can never fit: 413 naming the
 * setting. One that fits alone but not beside the others now is a 503 with Retry-After naming
 * what the others hold; nothing of that request was run, so nothing acknowledged is lost. Large
 * requests (past BODYMEM_SMALL_BYTES) share only 7/8 of the bound, small ones all of it. A
 * request that held much gives the heap back to the system when it ends (malloc_trim): glibc
 * keeps the freed chunks of a JSON tree (millions of small ones) in its arenas otherwise.
 *
 * Threading: any thread; srv->body_held is an atomic, r->held the request's own. */
#include "api_int.h"

#include <malloc.h>

/* A request that held at least this much trims the heap once it ends. */
#define BODYMEM_TRIM_BYTES (8u << 20)
/* A request holding more than this may take the bound only up to 7/8 of it: the last eighth is
 * kept for small bodies, so that clients holding large unfinished bodies (each may trickle for
 * as long as the connection lives) leave room for the fleet's ordinary writes of a few KB. */
#define BODYMEM_SMALL_BYTES (1u << 20)

/* n bytes for the 413 and 503 texts, into buf: in MB (rounded up) from 1 MiB on, in KB below,
 * in bytes below 1 KiB (read69e 6: "(0 MB)" read as no room at all). Returns buf. */
static const char *mem_size(char *buf, size_t size, size_t n)
{
    if (n >= (1u << 20))
        snprintf(buf, size, "%zu MB", n / (1u << 20) + (n % (1u << 20) != 0));
    else if (n >= 1024)
        snprintf(buf, size, "%zu KB", n / 1024 + (n % 1024 != 0));
    else
        snprintf(buf, size, "%zu bytes", n);
    return buf;
}

int api__mem_take(api_request_t *r, size_t n)
{
    struct api_server *srv = r->srv;
    const size_t max = r->max_inflight;
    if (max == 0 || n == 0) /* 0: no bound (unit tests' zeroed server) */
        return 0;
    const size_t want = r->held + n;
    const size_t room = want > BODYMEM_SMALL_BYTES ? max - max / 8 : max;
    char a[32], b[32], c[32];
    if (want > room || want < n) {
        api__error(r, 413,
                   "request body needs about %s of memory to read and decode, more than "
                   "http.max_inflight_bytes (%s) allows one request (%s); send less in one "
                   "request",
                   mem_size(a, sizeof a, want), mem_size(b, sizeof b, max),
                   mem_size(c, sizeof c, room));
        return -1;
    }
    size_t old = atomic_fetch_add(&srv->body_held, n);
    if (old + n > room) {
        atomic_fetch_sub(&srv->body_held, n);
        r->retry_after = 1;
        api__error(r, 503,
                   "busy: the server holds %s of other request bodies and this one needs %s "
                   "more, past what http.max_inflight_bytes (%s) allows; nothing of it was "
                   "stored: retry",
                   mem_size(a, sizeof a, old - r->held), mem_size(b, sizeof b, n),
                   mem_size(c, sizeof c, max));
        return -1;
    }
    r->held = want;
    if (want > r->held_peak)
        r->held_peak = want;
    return 0;
}

void api__mem_give(api_request_t *r, size_t n)
{
    if (n > r->held)
        n = r->held;
    if (n == 0)
        return;
    atomic_fetch_sub(&r->srv->body_held, n);
    r->held -= n;
}

void api__mem_end(api_request_t *r)
{
    api__mem_give(r, r->held);
    if (r->held_peak >= BODYMEM_TRIM_BYTES)
        malloc_trim(0);
}

void api_set_max_inflight(api_server_t *srv, size_t bytes)
{
    atomic_store_explicit(&srv->max_inflight, bytes, memory_order_relaxed);
}

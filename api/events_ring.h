/* api/events_ring.h: a stream's cursor into the event hub's ring (api/events.c), without the
 * HTTP around it: attach a stream, take its pending output, see whether it was cut off, detach
 * it. GET /v1/events uses these for each client; tests/test_events.c drives the hub's rules
 * (ring, resume by Last-Event-ID, resets, the ?device= and ?types= filters, cut-offs) through them
 * alone. Internal to api/ and its tests. */
#ifndef VIGIL_API_EVENTS_RING_H
#define VIGIL_API_EVENTS_RING_H

#include "api.h"

#include <stddef.h>
#include <sys/types.h>

struct MHD_Connection;
typedef struct api_events_client api_events_client_t;

/* Attaches a stream to h: device its ?device= filter (NULL: every device), types the message
 * types it gets (bits 1 << enum api_event_type; others are skipped, their leaving the ring never
 * a reset or a cut), last_id the Last-Event-ID it resumes after (NULL: none; one that cannot be
 * resumed exactly puts a reset notice in its prologue), conn its connection (NULL: none, so the
 * stream is never suspended and a cut only marks it). Returns 0, ERR_CLOSED (h is closing),
 * ERR_BUSY (max_streams open) or ERR_NOMEM. Caller owns *out; free with api__events_detach (or
 * libmicrohttpd's free callback of its response). Any thread. */
int api__events_attach(api_events_t *h, struct MHD_Connection *conn, const char *device,
                       unsigned types, const char *last_id, api_events_client_t **out);

/* Copies up to max bytes of c's pending output into buf: its prologue, then the messages from
 * its cursor on. Returns the bytes copied: 0 when nothing is pending, or when c is cut off
 * (api__events_cut_why). Any thread. */
size_t api__events_take(api_events_client_t *c, char *buf, size_t max);

/* What libmicrohttpd's content reader of c returns: up to max bytes of its pending output as
 * api__events_take, else a keep-alive comment when one is due (http.events_keepalive_ms after
 * its last bytes), else 0 (a stream with a connection is then suspended until a publish or its
 * keep-alive wakes it); MHD_CONTENT_READER_END_WITH_ERROR once c is cut off,
 * MHD_CONTENT_READER_END_OF_STREAM once the hub is closing. Any thread. */
ssize_t api__events_read(api_events_client_t *c, char *buf, size_t max);

/* Why c was cut off (static text), NULL while it is not. Any thread. */
const char *api__events_cut_why(api_events_client_t *c);

/* Detaches c from its hub and frees it. Any thread. */
void api__events_detach(api_events_client_t *c);

/* The RUN part of h's message ids (RUN-SEQ). Borrowed; valid until api_events_destroy. */
const char *api__events_run(const api_events_t *h);

#endif

/* api/api.h: vigil's HTTP API (libmicrohttpd + jansson) and its ingest parsers.
 *
 * The API knows nothing of storage or models: the daemon hands it an api_backend_t, a small
 * table of functions that do the work, and the API turns requests into calls and results into
 * JSON. Request handlers run on libmicrohttpd's thread pool ("any thread"), so every backend
 * function must be callable from any thread and may block (a write blocks until durable). */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include "batch.h"
#include "parse.h"
#include "sbuf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct api_device {
    const char *id;         /* borrowed for the duration of the callback */
    const char *attrs_json; /* borrowed; a JSON object text */
    int64_t created_ms;
    int64_t first_ts_ms, last_ts_ms; /* -1 when there are no readings */
    /* Wall-clock time its newest reading arrived (was committed), whatever the reading's own
     * timestamp; -1 when none arrived since vigild started, or the pipeline is not running. */
    int64_t last_seen_ms;
    int64_t points;
    size_t nchannels;
    const char *const *channels;
    /* The device's current maintenance as JSON text ({"until", "until_ts", "note"}; borrowed),
     * NULL: none. */
    const char *maint_json;
} api_device_t;

/* Called once per device; return nonzero to stop. Runs on the calling thread. */
typedef int (*api_device_cb)(void *arg, const api_device_t *d);

typedef struct api_query {
    const char *device;
    int64_t from_ms, to_ms; /* [from, to) */
    const char *const *channels;
    size_t nchannels; /* 0: every channel */
    size_t limit;     /* most points */
    int desc;
    /* CLOCK_MONOTONIC µs (vtime_mono_us) by which the read's waits for the store end, ERR_AGAIN
     * (an InfluxQL query's http.query_timeout); 0: the store's own bounds (about a second). */
    int64_t deadline_us;
} api_query_t;

/* Called once per point in order; return nonzero to stop. */
typedef int (*api_point_cb)(void *arg, int64_t ts_ms, size_t n, const char *const *channels,
                            const double *values);

/* Called once per name; return nonzero to stop. Runs on the calling thread. */
typedef int (*api_name_cb)(void *arg, const char *name);

/* Called for each point a limit refuses: the point's item (JSON index, line number) and why. */
typedef void (*api_reject_cb)(void *arg, uint32_t item, const char *reason);
/* Where a device given a new channel stands in its group's next training (session 67): it
 * leads (the training takes its channels, the members with other ones are left out), follows
 * another member with other channels (it is left out), or its channels match the lead's. */
enum { API_GROUP_FOLLOWS, API_GROUP_LEADS, API_GROUP_MATCHES };
/* A device, one of its channel names and its group (NULL: none, or it is the group's only
 * member) (new_channels); place: an API_GROUP_* (the lead: the member with the newest version
 * that the training begins, pipeline_groups_int.h). Runs on the thread that called it. */
typedef void (*api_channel_cb)(void *arg, const char *device, const char *channel,
                               const char *group, int place);

/* One scored reading of the pipeline (what /v1/devices/{id}/predictions lists). Everything is
 * borrowed for the duration of the callback. */
typedef struct api_prediction {
    int64_t ts_ms;
    double score;     /* NaN: none (null); values as the JSON prints them (7 digits) */
    int state;        /* 0 learning, 1 normal, 2 warning, 3 anomaly */
    size_t nchannels; /* the device's channels, in the model's order */
    const char *const *channels;
    const double *predicted; /* [nchannels]; NaN: no prediction of that channel */
} api_prediction_t;

/* Called once per prediction, in the order asked; return nonzero to stop. Calling thread. */
typedef int (*api_prediction_cb)(void *arg, const api_prediction_t *p);

/* One anomaly episode (what /v1/devices/{id}/anomalies lists). Strings are borrowed for the
 * duration of the callback; NULL where the JSON has null. */
typedef struct api_episode {
    const char *device;
    int64_t id;
    int64_t start_ms, end_ms; /* end_ms -1: still active */
    double peak_score;        /* NaN: none */
    const char *channels;     /* the ranked channels' names, joined by ", " ("" : none) */
    /* The annotation's channels: the first and those with at least a tenth of the share, each
     * followed by " (above)" or " (below)" where the event gives its side; "" : none. */
    const char *channels_sides;
    const char *ended_by, *opened_by, *note;
    int64_t continues, fault; /* the event it continues and its chain's first; 0: none */
} api_episode_t;

/* Called once per episode; return nonzero to stop. Calling thread. */
typedef int (*api_episode_cb)(void *arg, const api_episode_t *e);

/* The room of a health check's message (daemon/health.h's HEALTH_WHY_MAX: its longest whole). */
#define API_CHECK_MESSAGE_MAX 2048

/* One component's health check, in InfluxDB 2's form for /health's "checks" (name, status,
 * message when it fails); /healthz's 503 names every failing one. */
typedef struct api_check {
    const char *name; /* static: "storage" */
    int pass;
    char message[API_CHECK_MESSAGE_MAX]; /* why it fails, every reason joined by "; "; "" when
                                          * it passes */
} api_check_t;
#define API_CHECKS_MAX 4

/* Why a version cannot serve a device (pipe_rollback's ERR_INVAL); plain value type. */
struct api_fit {
    int trained, now;         /* channels it was trained on, and the device's now */
    int size[2], dev_size[2]; /* {hidden, layers} of its LSTM and of the device's model */
    int unsaved; /* a 0 return: the swap serves but was not saved, why (an ERR_): 0 saved */
};

/* What a retrain did beyond its code (pipe_retrain): zeroed by the backend first; every text
 * malloc'd, the caller frees them. Its own flag, not an error code, so that a refusal for an
 * open episode is never read from a real ERR_INVAL (session 66). */
struct api_retrain {
    int open;     /* 1: refused: an anomaly episode is open on `device`; nothing changed */
    char *device; /* open: the device that holds it: the one asked, or a member of its group */
    char *event;  /* open: its event's JSON text (NULL: no event kept, or out of memory) */
    char *ended;  /* forced: the asked device's ended event's JSON (NULL: none, or lost) */
    char *ended_others; /* forced: a JSON array of the other members' ended events (NULL: none) */
    int ended_lost; /* forced: an ended member's event is missing from ended_others (memory) */
};

typedef struct api_backend {
    void *ctx;
    /* Writes a batch durably; blocks until committed. On success b is left empty. Returns 0,
     * ERR_BUSY (queue full), ERR_NOSPACE, ERR_CLOSED, ERR_IO. */
    int (*write)(void *ctx, batch_t *b);
    /* Optional (NULL: no limits). Before a write: removes from b the points of [first,
     * b->npoints) that would create a device or channel beyond the configured limits, calling
     * reject for each. Returns 0 or ERR_NOMEM. */
    int (*admit)(void *ctx, batch_t *b, size_t first, api_reject_cb reject, void *arg);
    /* Optional (NULL: no model). Before a write: calls cb for each field of b that brings its
     * device's model a new channel (the model starts learning again); see
     * pipeline_new_channels. */
    void (*new_channels)(void *ctx, const batch_t *b, api_channel_cb cb, void *arg);
    /* Optional (NULL: no model). 1 when the device's model has no room for channel (its limit
     * is never judged); see pipeline_channel_unmodelled. */
    int (*channel_unmodelled)(void *ctx, const char *id, const char *channel);
    /* Declares or updates a device (attrs_json: a JSON object text). Returns 0, ERR_* . */
    int (*device_put)(void *ctx, const char *id, const char *attrs_json, int *created);
    int (*device_delete)(void *ctx, const char *id);
    /* deadline_us: as api_query_t's, for the wait for the counters while the store reloads
     * them (device_get, device_list); 0: the store's own bound. */
    int (*device_get)(void *ctx, const char *id, int64_t deadline_us, api_device_cb cb, void *arg);
    /* As device_get for a lookup that needs no counters (name, attributes, channels): never
     * waits for the store's reload of them after a failed write, and reports points,
     * first_ts_ms and last_ts_ms -1. Returns 0, ERR_NOTFOUND, ERR_IO, ERR_NOMEM. */
    int (*device_find)(void *ctx, const char *id, api_device_cb cb, void *arg);
    int (*device_list)(void *ctx, const char *after, size_t limit, int64_t deadline_us,
                       api_device_cb cb, void *arg);
    /* Optional (NULL: device_list serves). Every device in device_list's order (ids in byte
     * order), for a caller that needs ids and channels alone (InfluxQL's SHOW statements, the
     * cardinality statements, a SELECT's list of ids): never waits for the store's reload of
     * the counters after a failed write, and reports points, first_ts_ms, last_ts_ms and
     * last_seen_ms -1, maint_json NULL. Returns 0 (also when cb stopped), ERR_IO, ERR_NOMEM. */
    int (*device_each)(void *ctx, api_device_cb cb, void *arg);
    int (*query)(void *ctx, const api_query_t *q, api_point_cb cb, void *arg);
    /* Appends Prometheus text for everything outside the API (storage, stream, models). */
    void (*metrics)(void *ctx, sbuf_t *out);
    /* Optional (NULL: healthy, nothing checked). Fills checks (room for API_CHECKS_MAX) with
     * one entry per component checked (/healthz, /health); returns how many. Any thread; cheap
     * (a probe may call it every second). */
    size_t (*health)(void *ctx, api_check_t *checks);
    /* Optional (NULL: the names live in memory only). The InfluxDB database names CREATE
     * DATABASE and /write?db= registered, kept across restarts: db_add keeps a new one and
     * blocks until it is durable (0, ERR_INVAL, ERR_NOSPACE, ERR_IO, ERR_CLOSED, ERR_NOMEM);
     * db_list reports the kept ones in the order of first use, at most max (api_start reads
     * them; 0, ERR_IO, ERR_NOMEM). */
    int (*db_add)(void *ctx, const char *name);
    int (*db_list)(void *ctx, size_t max, api_name_cb cb, void *arg);

    /* The online pipeline (NULL when not running: the routes answer 501). Each returns 0 with a
     * malloc'd JSON text in *out, or ERR_NOTFOUND (device unknown to the pipeline), ERR_RANGE
     * (no model yet), ERR_BUSY (training already queued), ERR_INVAL, ERR_CORRUPT. */
    int (*pipe_status)(void *ctx, const char *id, char **out);
    int (*pipe_predictions)(void *ctx, const char *id, int64_t from, int64_t to, size_t limit,
                            char **out);
    int (*pipe_forecast)(void *ctx, const char *id, int horizon, char **out);
    /* id NULL: every device. The newest events overlapping [from, to) in the listings' order
     * (start, then device name bytewise, then id, all descending), at least the newest limit +
     * 1 when there are that many; with tie_dev (not NULL) also those that started at to whose
     * (device, id) comes after (tie_dev, tie_id) in that order (a page's before=). */
    int (*pipe_anomalies)(void *ctx, const char *id, int active_only, int64_t from, int64_t to,
                          const char *tie_dev, int64_t tie_id, size_t limit, char **out);
    int (*pipe_models)(void *ctx, const char *id, char **out);
    /* pipeline_retrain: 0 with res->open, an episode open (the device's, or a member's of its
     * group) and not force; else as pipeline_retrain answers. */
    int (*pipe_retrain)(void *ctx, const char *id, int force, struct api_retrain *res);
    /* ERR_NOTFOUND: no such device; ERR_RANGE: no such version with kept weights; ERR_INVAL:
     * the version cannot serve the device as it is: fit->trained 0, it kept no parameters (an
     * older vigild's linear or persistence version); else it was trained on fit->trained
     * channels and the device has fit->now (equal: an LSTM of another size than the device's
     * model: {hidden, layers} fit->size, the device's fit->dev_size). */
    int (*pipe_rollback)(void *ctx, const char *id, uint32_t version, struct api_fit *fit);
    /* ERR_RANGE: the device has no model yet; ERR_INVAL: a model serves, but no LSTM. */
    int (*pipe_weights_get)(void *ctx, const char *id, void **buf, size_t *len);
    /* ERR_CORRUPT: not a safetensors LSTM; ERR_INVAL: not the device's shape; either way why
     * (cap bytes) says what is wrong (session 67). On 0, *unsaved: as api_fit's unsaved. */
    int (*pipe_weights_put)(void *ctx, const char *id, const void *buf, size_t len, char *why,
                            size_t cap, int *unsaved);
    /* The operator accepts the open anomaly (note NULL: none): *out the ended event's JSON;
     * ERR_RANGE when no anomaly is open. */
    int (*pipe_accept)(void *ctx, const char *id, const char *note, char **out);
    /* Planned maintenance [from_ms, until_ms) (from_ms -1: from now, or the current period's
     * end and note changed; until_ms -1: now + minutes; note NULL: none): *out {"device",
     * "maintenance", "period"}, or on ERR_BUSY the period it overlaps; ERR_INVAL: until not
     * after now; ERR_LIMIT: too many periods ahead. The end of the current one now (from_ms -1;
     * ERR_RANGE: not in maintenance) or the cancel of the scheduled one starting at from_ms
     * (ERR_RANGE: none starts there; ERR_BUSY: past or current). The device's periods: *out
     * {"device", "periods"}. */
    int (*pipe_maint_start)(void *ctx, const char *id, int64_t from_ms, int64_t until_ms,
                            int64_t minutes, const char *note, char **out);
    int (*pipe_maint_end)(void *ctx, const char *id, int64_t from_ms);
    int (*pipe_maint_list)(void *ctx, const char *id, char **out);

    /* Administration (NULL: the routes answer 501). A consistent copy of the database into the
     * data folder's snapshots; blocks until it is durable: 0 with a malloc'd JSON text in *out
     * ({"path", "bytes", "took_ms", "time"}; NULL: made, but the answer could not be built for
     * want of memory), or ERR_BUSY (one is running), ERR_NOSPACE, ERR_CLOSED (stopping),
     * ERR_IO ... with a malloc'd reason in *out (NULL: none). The list
     * of snapshots, newest first: 0 with JSON in *out, or an ERR_ with a reason in *out. */
    int (*snapshot)(void *ctx, char **out);
    int (*snapshots)(void *ctx, char **out);

    /* The online pipeline's answers entry by entry, for /query's vigil_* measurements (NULL:
     * those measurements have no series). The predictions of id in [from, to): the oldest limit
     * oldest first, or with desc the newest limit newest first; and the episodes of id (NULL: every
     * device) overlapping [from, to), newest first as pipe_anomalies lists them, all of them or
     * none. The episodes' read stops at deadline_us (CLOCK_MONOTONIC µs; 0: none), looked at
     * every 256 events the store reports, so a query's deadline also bounds the store's part.
     * Return 0 (also when cb stopped), ERR_NOTFOUND (device unknown to the pipeline),
     * ERR_LIMIT (episodes: more than limit overlap the range, or the pipeline's read reached its
     * cap of 10,000 and may be cut; none was reported), ERR_TIMEOUT (episodes: deadline_us
     * passed; none was reported), ERR_NOMEM, ERR_CORRUPT, ERR_IO. */
    int (*pipe_predictions_each)(void *ctx, const char *id, int64_t from, int64_t to, size_t limit,
                                 int desc, api_prediction_cb cb, void *arg);
    int (*pipe_anomalies_each)(void *ctx, const char *id, int64_t from, int64_t to, size_t limit,
                               int64_t deadline_us, api_episode_cb cb, void *arg);
} api_backend_t;

/* Roles of bearer tokens, each allowed what the ones before it are: read (GET routes), write
 * (ingest), admin (device PUT/DELETE, model retrain/rollback/weights PUT, anomalies accept,
 * maintenance POST/DELETE, snapshots). */
typedef enum api_role {
    API_ROLE_NONE = 0,
    API_ROLE_READ,
    API_ROLE_WRITE,
    API_ROLE_ADMIN
} api_role_t;

/* A set of tokens with their roles. Any thread once built; not modified after it is handed to
 * the server. */
typedef struct api_auth api_auth_t;

/* Creates an empty set. Returns 0 or ERR_NOMEM. Caller owns *out; free with api_auth_destroy. */
int api_auth_create(api_auth_t **out);

/* Adds a token (copied). Returns 0; ERR_INVAL for an empty token, a bad role or a token already
 * in the set (then *dup, when not NULL, is the index of the first); ERR_NOMEM. */
int api_auth_add(api_auth_t *a, api_role_t role, const char *token, size_t *dup);

/* Number of tokens. NULL counts 0. */
size_t api_auth_count(const api_auth_t *a);

/* Frees the set, wiping the tokens. NULL is a no-op. */
void api_auth_destroy(api_auth_t *a);

/* "read", "write" or "admin" into *out; returns 0 or ERR_INVAL. */
int api_role_parse(const char *s, api_role_t *out);

/* The role's name (static). */
const char *api_role_name(api_role_t role);

/* A TLS certificate and private key for HTTPS, loaded from PEM files. Loop thread. */
typedef struct api_tls api_tls_t;

/* Reads and checks the certificate file (PEM: the server certificate, then any intermediates)
 * and the unencrypted PEM private key file, and that they are a pair. Returns 0 and *out
 * (caller owns; free with api_tls_destroy, or hand it to api_start), or -1 with
 * "http.tls_cert: FILE: reason" or "http.tls_key: FILE: reason" in err (also when this
 * libmicrohttpd has no TLS support). *warn (empty when none) gets a warning: a key file others
 * may read, an expired certificate. */
int api_tls_load(api_tls_t **out, const char *cert_path, const char *key_path, char *warn,
                 size_t warnsize, char *err, size_t errsize);

/* Frees a certificate and key, wiping the key. NULL is a no-op. */
void api_tls_destroy(api_tls_t *t);

/* Checks an http.cors_origins value: "" (no CORS), "*" (every origin), or a comma-separated
 * list of origins "scheme://host[:port]" (no path). Returns 0, or ERR_INVAL with the bad entry
 * named in err. */
int api_cors_check(const char *origins, char *err, size_t errsize);

/* The fleet's event hub behind GET /v1/events (api/events.c): the daemon publishes each event
 * into a bounded ring of Server-Sent Events messages; the server streams them to clients. It
 * outlives the server (the pipeline publishes before the server starts and while it stops). */
typedef struct api_events api_events_t;

typedef struct api_events_opts {
    size_t ring;           /* messages kept for clients resuming with Last-Event-ID */
    unsigned max_streams;  /* streams open at once; beyond: 503 */
    size_t max_unsent;     /* bytes published a stream has not sent before it is cut off */
    unsigned keepalive_ms; /* a comment line after this long without a message */
} api_events_opts_t;

/* Fills o with the defaults: 1,024 messages, 64 streams, 1 MiB, 15,000 ms. */
void api_events_opts_default(api_events_opts_t *o);

/* Creates a hub (and its keep-alive thread). Returns 0, ERR_INVAL (a zero bound, or the
 * monotonic clock refused for its condition variable) or ERR_NOMEM.
 * Caller owns *out; free with api_events_destroy after api_stop. Any thread. */
int api_events_create(api_events_t **out, const api_events_opts_t *o);

/* Frees the hub. No server may use it any more (api_stop first). NULL is a no-op. */
void api_events_destroy(api_events_t *h);

/* Changes the bounds a reload may change (o.max_unsent, o.keepalive_ms; ring and max_streams
 * stay). Open streams follow them at once: a stream's unsent bytes are checked against the new
 * max_unsent when its next own message is published, and a keep-alive is due keepalive_ms
 * after a stream's last bytes.
 * Returns 0, or ERR_INVAL (a zero bound: nothing changes). h NULL: a no-op. Any thread. */
int api_events_set_limits(api_events_t *h, size_t max_unsent, unsigned keepalive_ms);

/* The message types; a stream asks for a set of them (GET /v1/events?types=), as a mask of
 * bits 1 << type. */
enum api_event_type {
    API_EVENT_ANOMALY = 0,
    API_EVENT_MAINTENANCE,
    API_EVENT_STATE, /* a device's state changed (learning, normal, warning, anomaly) */
    API_EVENT_LIMIT, /* a channel's limit state changed (ok, forecast, exceeded) */
    API_EVENT_COUNT
};

/* The types a stream gets without ?types=: anomaly and maintenance (state and limit are asked
 * for: a stream written before them gets no type it does not know). */
#define API_EVENT_TYPES_DEFAULT ((1u << API_EVENT_ANOMALY) | (1u << API_EVENT_MAINTENANCE))

/* Publishes one event of device: json (a JSON object text on one line, borrowed) becomes the
 * next message, "event: anomaly", "maintenance", "state" or "limit". Never waits on a client:
 * copies into the ring under the hub's mutex and wakes the streams. Out of memory: logged, dropped.
 * h NULL: a no-op. Any thread. */
void api_events_publish(api_events_t *h, enum api_event_type type, const char *device,
                        const char *json);

/* How many streams were opened since h was created (0 when h is NULL). The state messages
 * (daemon/pipeline_state.c) compare it to the count at a device's last message. Any thread. */
uint64_t api_events_opened(api_events_t *h);

typedef struct api_opts {
    const char *listen;     /* "ADDR:PORT" or "[ADDR6]:PORT" */
    int threads;            /* libmicrohttpd thread pool size; http-io threads: one more */
    int io_nice;            /* nice increment of the http-io threads (ingest parsing) */
    int rt_priority;        /* > 0: the libmicrohttpd workers run SCHED_RR at this priority
                               (1-99; needs CAP_SYS_NICE or RLIMIT_RTPRIO); 0: as the process */
    size_t max_body;        /* bytes of a request body, after gzip decoding; else 413 */
    size_t max_batch;       /* items (JSON) or lines (line protocol) per request; else 413 */
    unsigned max_conns;     /* connections in total */
    unsigned max_conns_ip;  /* connections from one IP address; 0: no limit */
    size_t max_header;      /* bound on the request line and headers (431 or 414 past it) */
    unsigned max_lines;     /* bound on the head's header lines (431 past it) */
    unsigned max_cookies;   /* bound on the cookies of its Cookie headers (431 past it);
                               libmicrohttpd's memory per connection is twice max_header and
                               API_HEAD_LINE_BYTES per line and cookie of these (server.c) */
    unsigned timeout_s;     /* idle connection timeout */
    /* Seconds a request's body, from the end of its head, may take to arrive, else its
     * connection is closed (a 408 first on plain HTTP); 0: off (server.c, request_late). */
    unsigned request_timeout_s;
    unsigned dead_peer_s;   /* a connection whose peer is silent this long (no answer to TCP
                               keep-alive probes or sent data) ends; 0: the system's defaults */
    size_t max_query_limit; /* most points one readings query returns */
    size_t max_scan_points; /* most points one page of readings in buckets (step=) reads */
    size_t max_attrs;       /* bytes of a device's attributes as stored (compact JSON); else 413 */
    int64_t query_timeout_ms; /* most ms one /query runs its statements (0: no deadline) */
    const char *device_tag; /* line protocol tag naming the device */
    api_auth_t *auth;       /* tokens (api_start takes ownership); NULL: no authentication */
    int metrics_auth;       /* with tokens: /metrics needs a read token too */
    api_tls_t *tls;         /* HTTPS (api_start takes ownership); NULL: plain HTTP */
    const char *cors;       /* allowed origins (api_cors_check); NULL or "": no CORS headers */
    api_events_t *events;   /* GET /v1/events (borrowed: outlives the server); NULL: 501 */
    int64_t retention_ms;   /* storage.retention, for SHOW RETENTION POLICIES (0: forever) */
    const char *commit;     /* the build's git commit (daemon/build.h's build_commit), for
                               vigil_build_info and /health (borrowed: valid while the server
                               runs); NULL or "": unknown (a tarball's build, or a server
                               struct zeroed rather than api_opts_default's, as unit tests do) */
    const char *build_type; /* its build type (build_type), for vigil_build_info; NULL: "" */
} api_opts_t;

/* Fills opts with defaults (127.0.0.1:8470, 4 threads, 32 MiB, 100,000 items, ...). */
void api_opts_default(api_opts_t *opts);

typedef struct api_server api_server_t;

/* Starts listening and serving. Copies opts and backend, and takes ownership of opts->auth and
 * opts->tls (even on failure). Returns 0 and *out, or ERR_INVAL (bad listen address or CORS
 * list) / ERR_IO (cannot bind, TLS set-up failed, or backend->db_list failed) with a reason in
 * errmsg. Caller owns *out;
 * free with api_stop. Loop thread (any single owner thread). */
int api_start(api_server_t **out, const api_opts_t *opts, const api_backend_t *backend,
              char *errmsg, size_t errsize);

/* The port actually bound (useful with port 0). */
unsigned api_port(const api_server_t *srv);

/* The stop's first step, for a caller that must say the stop has begun only once it holds:
 * refuses new connections and answers new requests 503 from now on (api_stop does the rest).
 * Any thread; NULL is a no-op. */
void api_refuse(api_server_t *srv);

/* Stops the server: refuses new connections and answers new requests 503, waits for running
 * handlers (on the HTTP workers and the http-io threads) to return and, at most 3 s more
 * (server.c, API_STOP_GRACE_MS), for every request begun before the stop to be answered; then
 * frees it. Blocks the calling thread meanwhile. NULL is a no-op. */
void api_stop(api_server_t *srv);

/* Any thread. Changes the limits a reload may change (see api_opts_t): requests that start
 * afterwards use the new values; running ones keep those they started with. */
void api_set_limits(api_server_t *srv, size_t max_body, size_t max_batch, size_t max_query_limit,
                    size_t max_scan_points, int64_t query_timeout_ms, size_t max_attrs);

/* Any thread. Replaces the tokens (a reload): requests checked afterwards use the new set.
 * Takes ownership of auth (NULL: no authentication from now on) and frees the old set. */
void api_set_auth(api_server_t *srv, api_auth_t *auth, int metrics_auth);

/* Any thread. Replaces the allowed CORS origins (a reload; see api_cors_check): requests that
 * start afterwards use the new list. Returns 0, ERR_INVAL (bad list: the old one stays) or
 * ERR_NOMEM. */
int api_set_cors(api_server_t *srv, const char *origins);

/* storage.retention as SHOW RETENTION POLICIES says it, from now on (a reload). Any thread. */
void api_set_retention(api_server_t *srv, int64_t retention_ms);

/* Any thread. For protocols outside the API that take the same tokens (the stream socket):
 * -1 when no tokens are configured now (authentication off), else the role of token (len
 * bytes) in the current set, API_ROLE_NONE when unknown; compared in constant time. */
int api_token_role(api_server_t *srv, const char *token, size_t len);

/* Any thread. Counts readings taken in by a protocol outside the API (e.g. "stream"), so
 * /metrics reports every protocol in one family. */
void api_count_ingest(api_server_t *srv, const char *proto, uint64_t accepted, uint64_t rejected);

#endif

/* api/api_int.h: internals shared by the API's files (server, request, handlers, metrics).
 * Not public. */
#ifndef VIGIL_API_INT_H
#define VIGIL_API_INT_H

#include "api.h"
#include "log.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* Routes, for dispatch and for per-route metrics. */
enum api_route {
    ROUTE_NOT_FOUND = 0,
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_PING,
    ROUTE_WRITE,
    ROUTE_QUERY,
    ROUTE_READINGS,
    ROUTE_DEVICES,
    ROUTE_DEVICE,
    ROUTE_DEVICE_READINGS,
    ROUTE_STATUS,
    ROUTE_PREDICTIONS,
    ROUTE_FORECAST,
    ROUTE_DEVICE_ANOMALIES,
    ROUTE_ANOMALIES,
    ROUTE_MODEL,
    ROUTE_RETRAIN,
    ROUTE_ROLLBACK,
    ROUTE_WEIGHTS,
    ROUTE_ACCEPT,    /* POST /v1/devices/{id}/anomalies/accept */
    ROUTE_MAINT,     /* GET, POST, DELETE /v1/devices/{id}/maintenance */
    ROUTE_EVENTS,    /* GET /v1/events (Server-Sent Events, events.c) */
    ROUTE_SNAPSHOT,  /* POST /v1/admin/snapshot */
    ROUTE_SNAPSHOTS, /* GET /v1/admin/snapshots */
    ROUTE_WRITE_V2,  /* POST /api/v2/write (InfluxDB 2's write, influx_v2.c) */
    ROUTE_HEALTH,    /* GET /health (InfluxDB 2's health check, influx_v2.c) */
    ROUTE_COUNT
};

/* Status codes counted per route; anything else counts as "other". */
#define API_STATUS_CODES                                                                           \
    {                                                                                              \
        200, 201, 202, 204, 400, 401, 403, 404, 405, 408, 409, 411, 413, 415, 500, 501, 503, 507   \
    }
#define API_NSTATUS 19 /* the codes above plus "other" */

/* A certificate and its key, loaded by api_tls_load (tls.c). */
struct api_tls {
    char *cert, *key; /* NUL-terminated PEM texts, owned */
    size_t cert_len, key_len;
};

enum api_proto { PROTO_JSON = 0, PROTO_LP, PROTO_STREAM, PROTO_COUNT };

/* SHOW DATABASES lists at most API_DBS_MAX names of at most API_DB_NAME_MAX bytes each. */
#define API_DBS_MAX     32
#define API_DB_NAME_MAX 64

struct api_server {
    api_opts_t opts;
    char *device_tag; /* owned copy of opts.device_tag */
    api_backend_t be;
    struct MHD_Daemon *mhd;
    atomic_int rt_refused; /* rt_priority was refused once (logged once) */
    /* /metrics' process_* families (metrics_process.c): the start time in microseconds since
     * the epoch once a scrape has computed it (0 before), and the sources that have failed
     * (each logged once). */
    _Atomic int64_t proc_start_us;
    atomic_int proc_logged;
    /* /proc/self/stat, opened by api_start (api__process_open) and closed by api_stop, so the
     * CPU and memory families need no descriptor at a scrape; -1: not open yet (a scrape opens
     * it, once, and keeps it: set once, from -1, by compare-and-swap). A struct zeroed by hand
     * (the unit tests' servers) must set it to -1 before anything scrapes through it: 0 would
     * read stdin. */
    atomic_int proc_stat_fd;
    /* Open HTTP connections: libmicrohttpd's STARTED notifications less its CLOSED ones
     * (server.c's on_connection). */
    atomic_int connections;
    unsigned port;
    /* Counters, relaxed atomics: written by handler threads, read by /metrics. */
    atomic_uint_fast64_t requests[ROUTE_COUNT][API_NSTATUS];
    atomic_uint_fast64_t ingest_accepted[PROTO_COUNT];
    atomic_uint_fast64_t ingest_rejected[PROTO_COUNT];
    atomic_uint_fast64_t request_seconds_us[ROUTE_COUNT];
    /* Limits a reload may change (api_set_limits); each request copies them when it starts. */
    atomic_size_t max_body, max_batch, max_query_limit, max_scan_points;
    atomic_size_t max_attrs; /* read by a PUT of a device's attributes when it checks them */
    /* http.max_inflight_bytes (0: no bound), and the bytes the requests in flight hold for
     * their bodies now: raw, inflated and their JSON trees' estimate (bodymem.c). */
    atomic_size_t max_inflight, body_held;
    atomic_int_fast64_t query_timeout_ms;
    atomic_uint_fast64_t query_timeouts; /* /query answers cut by http.query_timeout */
    atomic_uint_fast64_t accept_errors;  /* libmicrohttpd's "Error accepting" log lines */
    _Atomic int64_t accept_warned_s;     /* when a failed accept was last a warning (log_due) */
    /* Connections turned away (server.c): closed at once by libmicrohttpd past
     * http.max_connections_per_ip (its "Server reached connection limit" log line); times the
     * open connections reached http.max_connections (new ones then wait in the listen backlog);
     * requests whose body did not arrive within http.request_timeout_s. Each a warning at most
     * once a minute, counting the rest. */
    atomic_uint_fast64_t conns_refused, conns_full, request_timeouts;
    struct log_limit refused_log, full_log, timeout_log;
    /* What libmicrohttpd logged while api_start's MHD_start_daemon ran, on the thread calling it
     * (starter; starting set meanwhile), joined by "; ": why it could not listen (the bind's
     * errno reason, a TLS set-up failure), for api_start's error. Written and read only by that
     * thread. */
    atomic_int starting;
    pthread_t starter;
    char start_log[256];
    /* auth_lock guards auth, metrics_auth and cors: read-locked by each request's checks,
     * write-locked by api_set_auth and api_set_cors. A leaf lock. */
    pthread_rwlock_t auth_lock;
    api_auth_t *auth;
    int metrics_auth;
    char *cors; /* allowed origins: NULL (no CORS), "*", or "a,b,c" (checked by api_cors_check) */
    api_tls_t *tls; /* NULL: plain HTTP; kept while libmicrohttpd runs */
    /* The http-io threads (server.c): requests of routes that wait for the disk run there, their
     * connection suspended meanwhile. io_mu guards io_head, io_tail, io_running, io_others,
     * io_reads, io_closing and io_stop; a leaf lock. */
    pthread_mutex_t io_mu;
    pthread_cond_t io_cv;   /* a job was queued, or io_stop was set */
    pthread_cond_t io_done; /* a job ended (its connection resumed) */
    struct api_request *io_head, *io_tail;
    int io_running; /* jobs taken by a thread and not yet resumed */
    int io_others;  /* of those, the reads and operator writes (not ingest; io_take's caps) */
    int io_reads;   /* of those, the reads */
    int io_closing; /* api_stop started: requests run on the worker as before */
    int io_stop;    /* the threads exit once the queue is empty */
    int nio;        /* threads started */
    pthread_t *io_threads;
    /* The stop (server.c, api_stop): stopping is set when it begins (new connections are then
     * refused and new requests answered 503); inflight counts the requests from the access
     * handler's first call to their completion callback, so the stop can wait for their
     * answers. Sequentially consistent atomics. */
    atomic_int stopping;
    atomic_int inflight;
    /* The database names CREATE DATABASE and /write?db= have used (kept by the backend across
     * restarts), in the order of first use, for /query's SHOW DATABASES (influx.c). dbs_mu guards
     * ndbs and dbs; a leaf lock. dbs_add_mu is held across a new name's be.db_add and its
     * insertion (taken before dbs_mu): names are kept one at a time, so the kept ones are the
     * listed ones, in their order, within API_DBS_MAX. */
    pthread_mutex_t dbs_mu;
    pthread_mutex_t dbs_add_mu;
    int ndbs;
    char dbs[API_DBS_MAX][API_DB_NAME_MAX + 1];
};

/* influx.c: fills srv->dbs with the names the backend kept (be.db_list; none without it), at
 * start. Returns 0 or the backend's error. */
int api__dbs_load(struct api_server *srv);

/* influx.c: whether name[0..len) is listed by SHOW DATABASES. Any thread (takes dbs_mu). */
int api__db_known(struct api_server *srv, const char *name, size_t len);

/* influx.c: remembers the database name[0..len) for SHOW DATABASES, unless it is known, empty,
 * longer than API_DB_NAME_MAX, not UTF-8 without control characters (it is listed as JSON), or
 * the list is full. Returns 0, or the backend's error (the name is not listed: its next use
 * tries again). Any thread; a new name waits for the backend's commit. */
int api__db_remember(struct api_server *srv, const char *name, size_t len);

/* The WWW-Authenticate challenge a 401 carries: Bearer on vigil's routes, Bearer and Basic on
 * InfluxDB 1's (which take Basic), Token on InfluxDB 2's (its clients send "Token TOKEN"). */
enum api_challenge {
    API_CHALLENGE_NONE = 0,
    API_CHALLENGE_BEARER,
    API_CHALLENGE_BASIC,
    API_CHALLENGE_TOKEN
};

/* The longest X-Influxdb-Error value: influxd 1.x cuts its message there. */
#define API_INFLUX_ERR_MAX 1024

/* An http-io request's lane (route.c's api__request_lane; server.c's io_take): ingest
 * (/write, /api/v2/write, POST /v1/readings: one commit's wait), an operator's short write (not
 * behind the reads, never on the thread kept for ingest), or a read, which may wait long. */
enum api_lane { API_LANE_READ, API_LANE_OPERATOR, API_LANE_INGEST };

/* How many /query parameters api_request_t keeps as influxd reads them (influxql_params.c's
 * form_names). */
#define API_IQ_FORM_N 7

/* One request in flight, from the first call of the access handler to its completion. */
typedef struct api_request {
    struct api_server *srv;
    struct MHD_Connection *conn;
    const char *method; /* borrowed from libmicrohttpd, valid for the request */
    const char *url;    /* borrowed, raw (not percent-decoded) path */
    enum api_route route;
    char *seg[4]; /* decoded path segments after the route prefix (device id), owned */
    int bad_id;   /* the path's device id cannot be one: 1 empty, 2 a NUL, 3 too long; 0: it can */
    char *body;
    size_t len, cap;
    int too_large; /* body exceeded max_body: discard the rest, answer 413 */
    int body_oom;  /* no memory to keep the body: discard the rest, answer 503 */
    int refused;   /* began while the server stops, or its body passed http.max_inflight_bytes
                    * (bodymem.c): the body is discarded, the answer a 503 (or 413) */
    int close;     /* its head was malformed: the answer says Connection: close */
    /* Its connection's idle timeout is below http.timeout_s, for http.request_timeout_s
     * (server.c's request_late): set back once the body is whole. */
    int timeout_lowered;
    int many_args; /* its URL had more than API_URL_MAX_ARGS parameters (head.c api__uri_seen) */
    int uncounted; /* an event stream, out of srv->inflight once its response is queued */
    /* The server's live limits when the request started: one request sees one set. */
    size_t max_body, max_batch, max_query_limit, max_scan_points, max_inflight;
    /* Bytes of srv->body_held this request holds (bodymem.c), and the most it held. */
    size_t held, held_peak;
    int64_t query_timeout_ms; /* http.query_timeout (0: none), from the statements' start */
    /* CLOCK_MONOTONIC µs by which the request's waits for the store end (the InfluxQL query's
     * deadline, set as its statements start); 0: the store's own bound (every other route). */
    int64_t read_deadline_us;
    int64_t start_us; /* CLOCK_MONOTONIC, when the headers were read */
    /* The response, filled by a handler. */
    unsigned status;
    char *resp; /* owned, may be NULL for an empty body */
    size_t resp_len;
    const char *content_type; /* static */
    int retry_after;          /* seconds; 0 for none */
    const char *allow;        /* static Allow header for 405 */
    /* Beside an error body (request.c error_headers; server.c sends them): on InfluxDB 2's
     * routes the body's "code" for X-Platform-Error-Code (static; NULL: none), on InfluxDB 1's
     * /write and /query the message for X-Influxdb-Error (empty: none). */
    const char *err_code;
    char influx_err[API_INFLUX_ERR_MAX + 1];
    enum api_challenge challenge;
    /* The role the request's credential carries when tokens are on (api__auth_check); -1 when
     * they are off or the route is open: a handler whose statement needs more than its
     * route's role asks here. */
    int role;
    /* CORS (http.cors_origins): the Access-Control-Allow-Origin value (borrowed: the request's
     * Origin header or "*"; NULL: none), whether to send Vary: Origin, and for a preflight the
     * methods to allow (static). */
    const char *cors_origin;
    int cors_vary;
    const char *preflight_methods;
    /* Set by an http-io thread when it has run the handler, before it resumes the connection;
     * the worker then only sends the response. */
    atomic_int io_answered;
    struct api_request *io_next; /* in the server's io queue; guarded by io_mu */
    enum api_lane io_lane;       /* api__request_lane, set before it is queued */
    /* GET /v1/events: the stream its handler registered, until api__events_response hands it
     * to the response (NULL: not a stream). */
    struct api_events_client *stream;
    /* /query's parameters as influxd's r.FormValue finds them, read once, at the first lookup
     * (influxql_params.c's api__iq_form_raw; iq_form_read 0: not yet), so a statement of many
     * sources does not read the body and the URL again for each: the value of each name of
     * its list, still encoded, borrowed from body or libmicrohttpd (NULL: absent). */
    int iq_form_read;
    const char *iq_form_v[API_IQ_FORM_N];
    size_t iq_form_len[API_IQ_FORM_N];
    /* A multipart/form-data body's (influxql_multipart.c): its values, percent-encoded, which
     * iq_form_v may borrow (owned; freed with the request), the first file part named "q"
     * (borrowed from iq_mp; NULL: none), and what is wrong with the body, for the 400 of a
     * missing q (static; NULL: nothing, or not multipart). */
    char *iq_mp;
    const char *iq_qfile;
    size_t iq_qfile_len;
    const char *iq_mp_err;
} api_request_t;

/* Whether the request is a GET or a HEAD (a GET whose body libmicrohttpd does not send). */
int api__is_get(const api_request_t *r);

/* Query-string argument, percent-decoded into buf. Returns buf, or NULL when absent; NULL with a
 * 400 answer set (r->status != 0) when it does not fit in buf or holds a NUL byte. */
const char *api__arg(api_request_t *r, const char *name, char *buf, size_t size);

/* Parses an optional positive integer parameter (default dflt, at most max) / an optional time
 * parameter (epoch ms or RFC 3339). Return 0, or -1 with a 400 answer set naming it. */
int api__arg_limit(api_request_t *r, const char *name, size_t dflt, size_t max, size_t *out);
int api__arg_time(api_request_t *r, const char *name, int64_t dflt, int64_t *out);
/* Parses parameter name's value list, a comma-separated list of names[0..n) (each at most once
 * in effect; no empty item), into the bit set *out (bit k: names[k]). Returns 0, or -1 with a
 * 400 naming the parameter, the item, what an item is, and the names. n <= 32. */
int api__arg_set(api_request_t *r, const char *name, const char *list, const char *const *names,
                 int n, const char *what, unsigned *out);

/* Parses the optional 'from' and 'to' time parameters of a range [from, to) (defaults: all of
 * time) and checks from < to. Returns 0, or -1 with a 400 answer set naming them. */
int api__arg_range(api_request_t *r, int64_t *from, int64_t *to);
/* The parameter order ("asc", the default, or "desc"): *desc 0 or 1. Returns 0, or -1 with a
 * 400 answer set. */
int api__arg_order(api_request_t *r, int *desc);

/* Answers the 400 of a readings query that named a channel device q->device does not have
 * (the backend's query returned ERR_INVAL), naming the first such channel of q; without it
 * (the lookup failed, or the device changed meanwhile) "unknown channel of device '<id>'". The
 * lookup is be.device_find: it does not wait for the store's reload. Any thread. */
void api__unknown_channel(api_request_t *r, const api_query_t *q);

/* The most bytes of JSON one page of a list answer holds (readings, devices): a page that
 * reaches it ends early, at an item boundary, with its continuation ("next", "next_after")
 * set; a single item larger than it (one point of 4,096 long channel names) is sent whole. */
#define API_PAGE_BYTES ((size_t)8 << 20)

/* The most entries of one predictions page (each holds up to 2 x 64 values), and the default
 * and most events of one anomalies page. */
#define API_PREDICTIONS_PAGE 1000
#define API_ANOMALIES_PAGE   1000

/* The most values (steps x channels) of one forecast, and the channels a detector models at
 * most (model/detector.h DETECTOR_MAX_CHANNELS: assumed when the pipeline does not say). */
#define API_FORECAST_VALUES       64000
#define API_FORECAST_CHANNELS_MAX 64

/* Refuses a request whose head is over a bound or not HTTP (head.c): sets the answer and returns
 * 1, else returns 0. Worker thread, at the access handler's first call. */
int api__head_too_large(api_request_t *r);
/* The most query parameters a request's URL may have: a URL of more is refused with a JSON 414
 * (head.c api__uri_seen). libmicrohttpd's memory per connection holds a record (64 bytes)
 * for each of these (server.c), which every connection that served a request keeps resident
 * (libmicrohttpd zeroes all of it after each request): 256 cost 16 KiB of RSS per connection,
 * 1,000 cost 60 (bench/http_conn_mem.py, docs/reliability.md, session 53). No route of vigild
 * takes more than a dozen parameters (a /v1 parameter given twice is a 400). */
#define API_URL_MAX_ARGS 256
/* libmicrohttpd's URI log callback (MHD_OPTION_URI_LOG_CALLBACK); returns the request's first
 * *con_cls: NULL, or api__many_args_mark for a URL of over API_URL_MAX_ARGS parameters. */
void *api__uri_seen(void *cls, const char *uri, struct MHD_Connection *c);
extern char api__many_args_mark[1];

/* Checks the request's credentials against the server's tokens (auth.c). Returns 0 when the
 * request may go on (no tokens configured, an open route, or a token with the role the route
 * needs); else sets a 401 or 403 answer and returns -1. */
int api__auth_check(api_request_t *r);

/* CORS (cors.c). Evaluates the request's Origin against the allowed origins (sets cors_origin
 * and cors_vary); returns 1 when the request is a preflight from an allowed origin, then
 * answered (204), else 0. */
int api__cors_eval(api_request_t *r);

/* Adds the CORS headers the request earned (none without CORS or for a disallowed origin). */
void api__cors_headers(const api_request_t *r, struct MHD_Response *resp);

/* The methods a route takes, as an Allow header value ("GET, HEAD"). */
const char *api__route_allow(enum api_route route);

/* handlers.c, for devices.c too. Any thread. Whether the request's Content-Type is one a JSON
 * endpoint accepts (none, JSON, curl -d's default) with a UTF-8 charset or none; else answers
 * 415 (400 for malformed parameters: api__charset_ok) and returns 0. */
int api__json_content_type_ok(api_request_t *r);

/* charset.c. Any thread. Whether the request's Content-Type parameters are well formed (RFC
 * 9110; blanks around '=' allowed) with a charset UTF-8 or US-ASCII, or none (two only when both
 * are); else answers 400 (a malformed header, a second charset) or 415 (another charset) naming
 * it and returns 0.
 * No Content-Type, or one without a charset, is UTF-8. The media type is the route's check.
 * influx (the line-protocol writes): a malformed header is not refused, its charset read as far
 * as the header goes (influxd reads none of it). */
int api__charset_ok(api_request_t *r, int influx);

/* charset.c. Any thread. Whether the decoded body (len bytes) does not begin as UTF-16 or
 * UTF-32 text does (a byte order mark, or a 00 byte in its first two, three for UTF-32); else
 * answers 415 naming the encoding and returns 0 (session 68: a UTF-16 JSON body failed as
 * "invalid JSON"). */
int api__body_utf8_ok(api_request_t *r, const char *body, size_t len);

/* handlers.c, for devices.c too. Any thread. Appends the warning msg (copied) to an answer's
 * "warnings" (warn: a JSON array; POST /v1/readings, PUT /v1/devices/{id}) unless warn holds
 * it already or holds max warnings (0: no bound). Returns 1 when appended, else 0 (a repeat,
 * full, warn NULL or out of memory: a warning is advice, its request is not refused for it). */
int api__warning_add(struct json_t *warn, size_t max, const char *msg);
/* Ends a page at API_PAGE_BYTES: when the item just appended after mark crossed it (and is not
 * the page's first), it is taken back. Returns 1 when the page is full. */
int api__page_full(sbuf_t *b, size_t mark, size_t n);

/* Routing (route.c). Any thread. The route of the request's raw path and the decoded device id
 * in it, if any: server.c's access handler calls it once per request. */
enum api_route api__route_of(api_request_t *r, const char *url);
/* Whether the route reads a request body (other routes' bodies are ignored). */
int api__route_takes_body(enum api_route route);
/* Whether the route's handler runs on an http-io thread (it blocks: ingest, database reads). */
int api__route_io(enum api_route route);
/* The http-io threads' lane of r (enum api_lane, above). */
enum api_lane api__request_lane(const api_request_t *r);
/* Runs the request's handler (the body's errors first: too large, out of memory); there is
 * always an answer after it. */
void api__handle(api_request_t *r);

/* The role of a presented token in the set (API_ROLE_NONE: unknown), in constant time. */
api_role_t api__auth_role(const api_auth_t *a, const char *token, size_t len);

/* Whether the request is to one of InfluxDB 2's routes (/api/v2/write, /health, or a path under
 * /api/v2/ vigild does not have), whose errors are in its form. */
int api__v2(const api_request_t *r);

/* Runs the backend's health checks (the test of /healthz and /health): checks (room for
 * API_CHECKS_MAX) gets one entry per component, *n how many. Returns 1 when every one passes
 * (also when nothing is checked), else 0 with why naming each failing component and its
 * reasons ("storage: ...; ..."). Any thread. */
#define API_HEALTH_WHY_MAX (API_CHECKS_MAX * (API_CHECK_MESSAGE_MAX + 64))
int api__backend_healthy(const api_request_t *r, api_check_t *checks, size_t *n, char *why,
                         size_t size);

/* Drops the answer set so far (status, body and its error headers), as if none had been set:
 * for a caller that reads a parameter only to try it (auth.c's u/p token). */
void api__answer_clear(api_request_t *r);

/* Sets a JSON error response {"error": msg}; on InfluxDB 2's routes (api__v2), its form
 * {"code": "<its code for the status>", "message": msg}, so every error of those routes is.
 * With the header InfluxDB's clients read beside it: the code in X-Platform-Error-Code on v2's
 * routes, msg in X-Influxdb-Error on /write and /query (r->err_code, r->influx_err). */
void api__error(api_request_t *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct json_t;
/* json_dumps(v, flags) with each real number in its shortest exact form (0.1, not jansson's
 * 0.10000000000000001): the same values, spelt as a client sent them. Free with free(). */
char *api__json_dumps(const struct json_t *v, size_t flags);

/* Sets a JSON response from a jansson value (takes a reference: decrefs it). */
void api__json(api_request_t *r, unsigned status, struct json_t *v);

/* Answers 200 with a JSON text built elsewhere (the backend's), adding a newline; takes json
 * (frees it). */
void api__json_text(api_request_t *r, char *json);

/* Takes an sbuf's contents as the response body. Returns 0, or -1 when the sbuf ran out of
 * memory: the answer is then the out-of-memory 500. */
int api__body(api_request_t *r, unsigned status, const char *content_type, sbuf_t *b);

/* InfluxDB 1.x's pretty=true: on /query and /write, when the URL's pretty is exactly "true",
 * re-spaces r's JSON answer (results or error, whatever its status) as influxd 1.6.7's
 * json.MarshalIndent with four spaces does; any other answer, an answer whose indented text
 * would pass 32 MiB, and an answer when out of memory, is left as it was (compact: the same
 * content). Any thread (influx_pretty.c). */
void api__influx_pretty(api_request_t *r);

/* Runs the backend's admission (device and channel limits) on b; refused items join errs, which
 * is kept in item order. Returns 0, or -1 with a 500 answer set. */
int api__admit(api_request_t *r, batch_t *b, parse_errors_t *errs);

/* Maps a backend error to a response (503 with Retry-After for ERR_BUSY, ERR_AGAIN,
 * ERR_UNPUBLISHED, ERR_RESOURCE, ERR_LOCKED and ERR_CLOSED, 507 for ERR_NOSPACE). */
void api__backend_error(api_request_t *r, int err, const char *what);

/* The bound on request bodies' memory over all requests (bodymem.c, http.max_inflight_bytes).
 * api__mem_take charges n bytes the request is about to allocate: 0, or -1 with the answer set
 * (413 when its own charges alone would pass the bound, 503 with Retry-After when the others'
 * leave no room now). api__mem_give gives n of them back; api__mem_end gives back the rest
 * (the completion callback) and trims the heap after a large request. Any thread. */
int api__mem_take(api_request_t *r, size_t n);
void api__mem_give(api_request_t *r, size_t n);
void api__mem_end(api_request_t *r);

/* Decodes the request body into *body and *len, inflating gzip when Content-Encoding says so
 * (the inflated copy charged to api__mem_take as it grows). Returns 0; or sets the response
 * (413 / 415 / 400 / 503) and returns -1. */
int api__request_body(api_request_t *r, char **body, size_t *len, int *owned);

/* Reads a JSON body: decoded by api__request_body (gzip inflated), a leading UTF-8 byte order
 * mark skipped (json_bom_len). Returns 0 with *v the value (caller owns; json_decref), or with
 * *v NULL when the body holds nothing but blanks (space, tab, CR, LF) after the mark, or nothing:
 * an empty body, whose meaning is the route's; 1 with *v NULL when it is not JSON, *jerr saying
 * where jansson stopped (the caller answers); -1 with the answer set (415: an unknown
 * Content-Encoding, or a UTF-16/UTF-32 body, api__body_utf8_ok; 413; 400 not gzip). */
struct json_error_t;
int api__json_body(api_request_t *r, struct json_t **v, struct json_error_t *jerr);

/* Answers 400 to a body api__json_body found not to be JSON, in every JSON route's words
 * (parse_json_errmsg): where jansson stopped, its reason, then suffix when not NULL (what the
 * body should be; a short constant: the message is cut at 511 bytes). */
void api__json_error(api_request_t *r, const struct json_error_t *jerr, const char *suffix);

/* The value of the hex digit c (0-9, a-f, A-F), or -1 for another byte. Any thread. */
int api__hexval(char c);

/* Percent-decodes n bytes of s into out (size bytes, NUL-terminated); '+' becomes a space when
 * plus_space. Returns the decoded length, or -1 when it does not fit or holds a NUL. */
long api__pct_decode(const char *s, size_t n, char *out, size_t size, int plus_space);

/* Appends s percent-encoded for use in a URL path or query component. */
void api__pct_encode(sbuf_t *b, const char *s);

/* Appends epoch milliseconds as a read route's time parameter takes them back: a number, or
 * RFC 3339 where the number would look like epoch seconds (vtime_looks_like_secs). For "next". */
void api__time_value(sbuf_t *b, int64_t ms);

/* Appends a JSON-escaped string (with quotes) / a double in its shortest exact form. */
void api__json_str(sbuf_t *b, const char *s);
void api__json_num(sbuf_t *b, double v);

/* One anomalies page (model_routes.c): replaces *arr, an array of event objects with a
 * "start_ts", "device" and "id", by a new array of its first events in the listings' order
 * (newest start first, then device name bytewise, then id, all descending), as many as fit in
 * `limit` events and max_bytes of compact JSON (at least one). Returns the number kept (the
 * last of them is where the next page goes on); SIZE_MAX when out of memory (*arr
 * unchanged). */
size_t api__events_page(struct json_t **arr, size_t limit, size_t max_bytes);

/* A line-protocol write (influx.c), as /write and /api/v2/write ask it. */
typedef struct api_lp_write {
    lp_precision_t precision; /* the timestamps' unit */
    lp_unit_t unit;           /* whether the client declared it (precision= given) */
    /* Checks of the route's own, run once the body parsed unless every line was bad (then its
     * parse errors are the answer): returns 1 to go on, or 0 with the answer set. NULL: none. */
    int (*check)(api_request_t *r);
    const char *db; /* the database name a write storing points uses (SHOW DATABASES lists
                     * it), borrowed for the call; NULL: none */
    size_t db_len;
} api_lp_write_t;

/* Parses the request body (gzip or not) as line protocol, applies http.max_batch, admits and
 * stores the good points, then answers: 204, or InfluxDB's 400 naming the first bad line
 * (partial write: the good lines stored), 413, or the backend's error. Counts the readings
 * under proto="lp". Any thread; waits for the commit. */
void api__lp_write(api_request_t *r, const api_lp_write_t *w);

/* Route handlers (handlers.c, influx.c, influx_v2.c); each sets the response. Any thread. */
void api__h_readings_post(api_request_t *r);
void api__h_devices(api_request_t *r);
void api__h_device(api_request_t *r);
void api__h_device_readings(api_request_t *r);
void api__h_write(api_request_t *r);
void api__h_write_v2(api_request_t *r);
void api__h_health(api_request_t *r);
void api__h_query(api_request_t *r);
void api__h_metrics(api_request_t *r);
void api__h_status(api_request_t *r);
void api__h_predictions(api_request_t *r);
void api__h_forecast(api_request_t *r);
void api__h_anomalies(api_request_t *r);
void api__h_model(api_request_t *r);
void api__h_retrain(api_request_t *r);
void api__h_rollback(api_request_t *r);
void api__h_weights(api_request_t *r);
void api__h_accept(api_request_t *r);
void api__h_maint(api_request_t *r);
void api__h_snapshot(api_request_t *r);
void api__h_snapshots(api_request_t *r);
void api__h_events(api_request_t *r);

/* Event streams (events.c). The response of a stream r->stream (200 text/event-stream), which
 * takes the stream (freed here on failure: NULL). Worker thread. */
struct MHD_Response *api__events_response(api_request_t *r);
/* Frees r's stream when no response took it (the request ended first). */
void api__events_drop(api_request_t *r);
/* Ends every stream (they send what they hold, then end) and refuses new ones; waits up to
 * wait_ms for them to finish. From api_stop, before libmicrohttpd stops (no stream may be
 * suspended then). NULL is a no-op. */
void api__events_close(api_events_t *h, unsigned wait_ms);
/* Appends the event streams' /metrics families. NULL: nothing. */
void api__events_metrics(api_events_t *h, sbuf_t *b);
/* Appends the process_* families (metrics_process.c): CPU, memory, start time, descriptors
 * and the limits. A source that cannot be read leaves its families out (logged once). Any
 * thread. */
void api__process_metrics(api_server_t *srv, sbuf_t *b);
/* Opens /proc/self/stat for api__process_metrics' reads: the descriptor (caller owns; close it
 * at the stop), or -1 with errno set. Any thread. */
int api__process_open(void);

#endif

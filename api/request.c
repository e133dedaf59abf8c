/* api/request.c: what a handler reads from its request and how it answers: the query arguments
 * (percent-decoded), the body (inflated when gzip; a JSON body also with its byte order mark
 * skipped and a blank body told apart, api__json_body), and the response (a JSON error naming what
 * is wrong, a JSON value or text, a backend error mapped to its status, the admission of a batch
 * with its refusals merged into the parse errors).
 *
 * These are the helpers every route handler (handlers.c, influx.c, model_routes.c, admin.c,
 * events.c) calls; server.c, which accepts, routes and sends, only reads the response they set
 * (r->status, r->resp, r->content_type, r->retry_after, and beside an error the InfluxDB
 * header of its route, r->err_code or r->influx_err). They touch nothing but the request and
 * the server's backend, so they run on whichever thread runs the handler ("any thread"). A
 * response set twice keeps the last (set_body frees the first). */
#include "api_int.h"
#include "err.h"
#include "parse.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

int api__hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long api__pct_decode(const char *s, size_t n, char *out, size_t size, int plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n) {
            int h = api__hexval(s[i + 1]), l = api__hexval(s[i + 2]);
            if (h >= 0 && l >= 0) {
                c = (char)(h * 16 + l);
                i += 2;
            }
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= size)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

const char *api__arg(api_request_t *r, const char *name, char *buf, size_t size)
{
    const char *raw = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    if (raw == NULL)
        return NULL;
    if (api__pct_decode(raw, strlen(raw), buf, size, 1) < 0) {
        /* Never ignore a parameter the client sent: answer 400 (callers check r->status). */
        api__error(r, 400, "parameter '%s': longer than %zu bytes or holds a NUL byte", name,
                   size - 1);
        return NULL;
    }
    return buf;
}

int api__is_get(const api_request_t *r)
{
    return strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
}

static void set_body(api_request_t *r, unsigned status, const char *ctype, char *body, size_t n)
{
    free(r->resp);
    r->status = status;
    r->resp = body;
    r->resp_len = n;
    r->content_type = ctype;
    r->err_code = NULL; /* an error's headers go with its body (error_headers) */
    r->influx_err[0] = '\0';
}

void api__answer_clear(api_request_t *r)
{
    set_body(r, 0, NULL, NULL, 0);
}

int api__v2(const api_request_t *r)
{
    /* A path InfluxDB 2 may have that vigild does not; leading slashes skipped as server.c's
     * routing skips them. */
    if (r->route == ROUTE_NOT_FOUND && r->url) {
        const char *u = r->url + strspn(r->url, "/");
        return strncmp(u, "api/v2", 6) == 0 && (u[6] == '/' || u[6] == '\0');
    }
    return r->route == ROUTE_WRITE_V2 || r->route == ROUTE_HEALTH;
}

/* InfluxDB 2's error code string for an HTTP status: its errors.E* codes, each with the status
 * InfluxDB 2 answers it with (kit/transport/http ErrorCodeToStatusCode). It has none for 415
 * (InfluxDB 2 does not refuse an encoding: it fails to parse the body) nor 507: 415 is
 * "invalid" (the request is wrong as sent), 507 "unavailable" (retried once there is space).
 * No 429 "too many requests": vigild never answers one. Its back-pressure, a full write queue,
 * is a 503 with Retry-After (api__backend_error), which InfluxData's clients retry as they
 * retry a 429 and /write's clients have always had; InfluxDB 2 OSS's write handler has no 429
 * either (a write it cannot store is a 500 "internal error"). */
static const char *v2_code(unsigned status)
{
    switch (status) {
    case 400:
    case 415:
        return "invalid";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not found";
    case 405:
        return "method not allowed";
    case 409:
        return "conflict";
    case 413:
    case 414: /* a head over http.max_header_bytes (head.c api__head_too_large): InfluxDB 2 */
    case 431: /* has no code for it, as Go's net/http refuses such a head itself, in text */
        return "request too large";
    case 503:
    case 507:
        return "unavailable";
    default:
        return "internal error";
    }
}

/* Sets the header InfluxDB's clients read beside an error body (server.c sends it). On InfluxDB
 * 2's routes its code, the body's "code" (X-Platform-Error-Code, as kit/transport/http sets it).
 * On InfluxDB 1's /write and /query the message (X-Influxdb-Error), as influxd 1.x's httpError
 * sets it: cut at API_INFLUX_ERR_MAX bytes, and none on a 401, which carries the challenge
 * instead, nor on a 405, which influxd's router answers itself in plain text, without it. Control
 * bytes become spaces: influxd's Go server turns a message's newlines into spaces, and strict
 * parsers (Node's) refuse a response with any other control byte in a header. Call after set_body,
 * which clears both. */
static void error_headers(api_request_t *r, unsigned status, const char *msg)
{
    if (api__v2(r)) {
        r->err_code = v2_code(status);
        return;
    }
    if ((r->route != ROUTE_WRITE && r->route != ROUTE_QUERY) || status == 401 || status == 405)
        return;
    size_t n = strnlen(msg, API_INFLUX_ERR_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)msg[i];
        r->influx_err[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    r->influx_err[n] = '\0';
}

/* The answer when memory runs out while building one: a 500 in the route's form (a constant,
 * copied; without even that memory, the status alone), with its error header. */
static void out_of_memory(api_request_t *r)
{
    static const char v1[] = "{\"error\":\"out of memory\"}\n";
    static const char v2[] = "{\"code\":\"internal error\",\"message\":\"out of memory\"}\n";
    const char *body = api__v2(r) ? v2 : v1;
    char *copy = strdup(body);
    set_body(r, 500, "application/json", copy, copy ? strlen(copy) : 0);
    error_headers(r, 500, "out of memory");
}

void api__error(api_request_t *r, unsigned status, const char *fmt, ...)
{
    /* Whole, however long: a message may quote a token as long as the query (influxd prints
     * it whole). Most fit the stack buffer; a longer one is formatted again on the heap, and
     * without memory it is cut to the buffer rather than lost. */
    char buf[512], *msg = buf;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof buf && (msg = malloc((size_t)n + 1)) != NULL) {
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    } else if (msg == NULL) {
        msg = buf;
    }
    sbuf_t b;
    sbuf_init(&b);
    if (api__v2(r)) { /* InfluxDB 2's form, which its clients read */
        sbuf_append(&b, "{\"code\":", 8);
        api__json_str(&b, v2_code(status));
        sbuf_append(&b, ",\"message\":", 11);
    } else {
        sbuf_append(&b, "{\"error\":", 9);
    }
    api__json_str(&b, msg);
    sbuf_append(&b, "}\n", 2);
    if (api__body(r, status, "application/json", &b) == 0) /* else the 500 has its own */
        error_headers(r, status, msg);
    if (msg != buf)
        free(msg);
}

void api__json(api_request_t *r, unsigned status, json_t *v)
{
    char *s = v ? api__json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (s == NULL) {
        out_of_memory(r);
        return;
    }
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (t) {
        t[n++] = '\n';
        t[n] = '\0';
        s = t;
    }
    set_body(r, status, "application/json", s, n);
}

void api__json_text(api_request_t *r, char *json)
{
    sbuf_t b;
    sbuf_init(&b);
    sbuf_append(&b, json, strlen(json));
    sbuf_append(&b, "\n", 1);
    free(json);
    api__body(r, 200, "application/json", &b);
}

int api__body(api_request_t *r, unsigned status, const char *ctype, sbuf_t *b)
{
    size_t n = 0;
    char *p = sbuf_steal(b, &n);
    if (p == NULL && b->oom) {
        sbuf_deinit(b);
        out_of_memory(r);
        return -1;
    }
    set_body(r, status, ctype, p, n);
    return 0;
}

static void reject_item(void *arg, uint32_t item, const char *reason)
{
    parse_errors_add(arg, item, "%s", reason);
}

static int by_item(const void *a, const void *b)
{
    uint32_t x = ((const parse_error_t *)a)->item, y = ((const parse_error_t *)b)->item;
    return (x > y) - (x < y);
}

int api__admit(api_request_t *r, batch_t *b, parse_errors_t *errs)
{
    if (r->srv->be.admit == NULL || b->npoints == 0)
        return 0;
    uint32_t before = errs->kept;
    int rc = r->srv->be.admit(r->srv->be.ctx, b, 0, reject_item, errs);
    if (rc) {
        api__error(r, 500, "checking device and channel limits: %s", err_str(rc));
        return -1;
    }
    if (errs->kept > before) /* parse errors and refusals, merged by item */
        qsort(errs->e, errs->kept, sizeof errs->e[0], by_item);
    return 0;
}

void api__backend_error(api_request_t *r, int err, const char *what)
{
    switch (err) {
    case ERR_LIMIT:
        api__error(r, 409, "%s: device limit reached (storage.max_devices)", what);
        break;
    case ERR_BUSY:
        r->retry_after = 1;
        api__error(r, 503, "%s: write queue is full, retry later", what);
        break;
    case ERR_AGAIN:
        r->retry_after = 1;
        api__error(r, 503, "%s: store busy reloading after a failed write, retry later", what);
        break;
    case ERR_UNPUBLISHED:
        r->retry_after = 1;
        api__error(r, 503, "%s: store busy publishing its last write, retry later", what);
        break;
    case ERR_LOCKED: /* another process holds the database's lock: its holder decides */
        r->retry_after = 5;
        api__error(r, 503, "%s: the database is locked by another process; try again", what);
        break;
    case ERR_RESOURCE: /* EMFILE, ENFILE, ENOMEM: passes, as tz()'s lookup (its own 503) */
        r->retry_after = 1;
        api__error(r, 503, "%s: out of file descriptors or memory, retry later", what);
        break;
    case ERR_NOSPACE:
        r->retry_after = 30;
        api__error(r, 507, "%s: no space left on the data volume", what);
        break;
    case ERR_CLOSED:
        r->retry_after = 5;
        api__error(r, 503, "%s: server is shutting down", what);
        break;
    case ERR_NOTFOUND:
        api__error(r, 404, "%s: not found", what);
        break;
    case ERR_INVAL:
        api__error(r, 400, "%s: invalid request", what);
        break;
    default:
        api__error(r, 500, "%s: %s", what, err_str(err));
    }
}

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 when the bytes there are not one
 * (a stray continuation byte, an overlong form, a surrogate, past U+10FFFF, or cut short). */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* bounds of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (s[1] < lo || s[1] > hi) /* also stops at the NUL terminator */
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* Writes s as a JSON string. JSON is UTF-8: bytes that are not valid UTF-8 (line protocol
 * takes any bytes in names, and error messages quote raw input, shortened anywhere) are
 * written as U+FFFD, so every answer stays valid JSON. */
void api__json_str(sbuf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sbuf_append(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80) {
            size_t n = utf8_seq((const unsigned char *)s);
            if (n > 0) {
                s += n - 1;
                continue;
            }
            sbuf_append(b, run, (size_t)(s - run));
            sbuf_append(b, "\\ufffd", 6);
            run = s + 1;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sbuf_append(b, run, (size_t)(s - run));
        char esc[7] = {'\\', (char)c, 0};
        size_t n = 2;
        if (c == '\n')
            esc[1] = 'n';
        else if (c == '\t')
            esc[1] = 't';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        sbuf_append(b, esc, n);
        run = s + 1;
    }
    sbuf_append(b, run, (size_t)(s - run));
    sbuf_append(b, "\"", 1);
}

void api__json_num(sbuf_t *b, double v)
{
    /* The shortest of %.15g..%.17g that reads back as the same double: exact and readable. */
    char buf[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    sbuf_append(b, buf, strlen(buf));
}

/* Inflates a gzip body (one member, or several concatenated as `cat a.gz b.gz` makes) into a
 * new buffer of at most max bytes in all, each growth of it charged to r (api__mem_take).
 * Returns 0, 1 when too large, 2 when the charge was refused (r's answer set; what it took is
 * given back), or -1 when the body is not valid gzip. */
static int gunzip(api_request_t *r, const char *in, size_t n, size_t max, char **out,
                  size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return -1;
    size_t cap = n * 4 + 1024 < max + 1 ? n * 4 + 1024 : max + 1;
    size_t charged = 0;
    char *buf = NULL;
    int rc = 2;
    if (api__mem_take(r, cap))
        goto done;
    charged = cap;
    rc = -1;
    buf = malloc(cap);
    if (buf == NULL)
        goto done;
    /* Bytes inflated so far, over all members: z.total_out restarts at 0 with each member
     * (inflateReset), so it cannot say where the next one's output goes. */
    size_t used = 0;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    for (;;) {
        z.next_out = (Bytef *)buf + used;
        z.avail_out = (uInt)(cap - used);
        int zr = inflate(&z, Z_NO_FLUSH);
        used = cap - z.avail_out;
        if (zr == Z_STREAM_END) {
            /* Concatenated gzip members are legal; continue with the next one. */
            if (z.avail_in > 0) {
                if (inflateReset(&z) != Z_OK)
                    goto done;
                continue;
            }
            rc = 0;
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            goto done;
        if (z.avail_out == 0) {
            if (cap > max) {
                rc = 1;
                goto done;
            }
            size_t ncap = cap * 2 < max + 1 ? cap * 2 : max + 1;
            if (api__mem_take(r, ncap - cap)) {
                rc = 2;
                goto done;
            }
            charged += ncap - cap;
            char *nb = realloc(buf, ncap);
            if (nb == NULL)
                goto done;
            buf = nb;
            cap = ncap;
        } else if (z.avail_in == 0) {
            goto done; /* truncated stream */
        }
    }
    *out = buf;
    *outlen = used;
    buf = NULL;
done:
    free(buf);
    if (rc != 0)
        api__mem_give(r, charged);
    inflateEnd(&z);
    return rc;
}

int api__request_body(api_request_t *r, char **body, size_t *len, int *owned)
{
    const char *enc =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
    *owned = 0;
    if (enc == NULL || strcasecmp(enc, "identity") == 0 || *enc == '\0') {
        *body = r->body ? r->body : "";
        *len = r->len;
        return 0;
    }
    if (strcasecmp(enc, "gzip") != 0 && strcasecmp(enc, "x-gzip") != 0) {
        api__error(r, 415, "Content-Encoding '%s' is not supported (use gzip or identity)", enc);
        return -1;
    }
    int rc = gunzip(r, r->body ? r->body : "", r->len, r->max_body, body, len);
    if (rc == 2)
        return -1;
    if (rc == 1) {
        api__error(r, 413, "request body exceeds %zu bytes after gzip decoding", r->max_body);
        return -1;
    }
    if (rc < 0) {
        api__error(r, 400, "request body is not valid gzip");
        return -1;
    }
    *owned = 1;
    return 0;
}

/* Charges the tree jansson would build from the len JSON bytes at body (json_tree_bytes) before
 * it is built: 0, or -1 with the answer set (api__mem_take's 413 or 503). The charge stays
 * until the request completes. */
static int json_charge(api_request_t *r, const char *body, size_t len)
{
    size_t items;
    return api__mem_take(r, json_tree_bytes(body, len, &items));
}

int api__json_body(api_request_t *r, json_t **v, json_error_t *jerr)
{
    *v = NULL;
    char *body;
    size_t len;
    int owned;
    if (api__request_body(r, &body, &len, &owned))
        return -1;
    int rc = 0;
    if (!api__body_utf8_ok(r, body, len)) {
        rc = -1;
    } else if (!json_body_blank(body, len)) { /* a mark or blanks alone are no body */
        const size_t bom = json_bom_len(body, len);
        if (json_charge(r, body + bom, len - bom)) {
            rc = -1;
        } else {
            *v = json_loadb(body + bom, len - bom, 0, jerr);
            rc = *v == NULL;
        }
    }
    if (owned)
        free(body);
    return rc;
}

void api__json_error(api_request_t *r, const json_error_t *jerr, const char *suffix)
{
    char msg[512];
    parse_json_errmsg(msg, sizeof msg, jerr, suffix);
    api__error(r, 400, "%s", msg);
}

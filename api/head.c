/* api/head.c: the checks of a request's head at the access handler's first call, before it is
 * routed on: the bounds on its bytes (http.max_header_bytes), header lines
 * (http.max_header_lines) and cookies (http.max_cookies), and a head libmicrohttpd took in where
 * HTTP has none (a line of an empty name, a value folded onto the next line). They read
 * libmicrohttpd's records of the head and, for 0.9.75, its read buffer. Worker thread. */
#include "api_int.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* What api__head_too_large learns of the head from libmicrohttpd's records of it. */
struct head_seen {
    size_t lines;         /* header lines (MHD_HEADER_KIND records) */
    size_t cookies;       /* cookies of its Cookie headers (MHD_COOKIE_KIND records) */
    int empty_name;       /* a header line's name is empty */
    const char *last_end; /* the end of the last header line's value */
    const char *length;   /* the first Content-Length's value */
    int length_differs;   /* another Content-Length gives another value */
};

static enum MHD_Result see_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    struct head_seen *h = cls;
    if (kind == MHD_COOKIE_KIND) {
        h->cookies++;
        return MHD_YES;
    }
    h->lines++;
    h->empty_name |= key[0] == '\0';
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        const char *v = value ? value : "";
        if (h->length == NULL)
            h->length = v;
        else
            h->length_differs |= strcmp(h->length, v) != 0;
    }
    h->last_end = value ? value + strlen(value) : NULL;
    return MHD_YES;
}

/* Whether the head has a line of an empty name (one that begins with ':'), which is not HTTP
 * (a field name is a token of at least one character, RFC 9110 5.1). libmicrohttpd 0.9.75
 * (connection.c, MHD_CONNECTION_HEADER_PART_RECEIVED) ends the head at such a line when a
 * header line came before it: process_header_line writes the NUL that ends the name over the
 * colon, the line's first byte, and the state machine then takes the line for the empty one
 * that ends the head. What followed it (any number of lines, the rest of the head) is left in
 * its buffer: dropped with the connection, or read as the connection's next request. So such a
 * head was served from its lines before the ':' alone, whatever its size (session 50). As the
 * first header line it is recorded, with an empty name. Told here from libmicrohttpd's buffer:
 * the head it counted is [method, method + header_size), and its last record's value ends some
 * bytes before that end: the line's end (CRLF, or LF, each made NULs) and the empty line's (the
 * same), so 2 to 4 NULs; more, or a byte not NUL, is a line it did not record: the ':' line,
 * or the rest of a value folded onto the next line (obsolete, RFC 9112 5.2, which a server may
 * refuse with 400; libmicrohttpd 0.9.75 appends it to the header's name). Not told apart: a ':'
 * line with no value whose line or the one before ends in a bare LF (3 or 4 NULs, as a valid
 * end). What follows the head cannot tell it either: the bytes after it are the same as a valid
 * head's followed by an empty line (served, RFC 9112 2.2), and bytes not yet received there are
 * libmicrohttpd's memory, not ours to read (docs/reliability.md, session 51). Built against
 * another libmicrohttpd, only the empty name is told. Worker thread. */
static int head_malformed(const api_request_t *r, const struct head_seen *h, size_t head_size)
{
    if (h->empty_name)
        return 1;
#if MHD_VERSION == 0x00097500
    /* The buffer's layout below is 0.9.75's (read in its source): another version may leave CR
     * and LF unzeroed or trim values, and would have every head with a header refused. */
    uintptr_t from = (uintptr_t)r->method, end = from + head_size, last = (uintptr_t)h->last_end;
    if (h->last_end == NULL || last < from || last > end)
        return 0; /* no header line, or a value libmicrohttpd keeps elsewhere */
    if (end - last > 4)
        return 1;
    for (const char *p = h->last_end; p < r->method + head_size; p++)
        if (*p != '\0')
            return 1;
#else
    (void)r;
    (void)head_size;
#endif
    return 0;
}

char api__many_args_mark[1];

/* libmicrohttpd 0.9.75 takes a record (struct MHD_HTTP_Header, 64 bytes with the pool's
 * alignment) from the connection's memory for each of the URL's parameters, as for each header
 * line; when that memory ran out (about 1,400 parameters with the default settings) it answered
 * nothing and left the connection open until its timeout (session 53). It calls this callback
 * with the raw request line's URL (NUL-terminated) before it splits the parameters at each '&'
 * (connection.c, parse_initial_message_line), in its own writable buffer. A URL of more than
 * API_URL_MAX_ARGS parameters has its query string cut here to none, so that libmicrohttpd
 * takes no record for it, and the request is marked for head.c's JSON 414. Worker thread. */
void *api__uri_seen(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    char *q = strchr(uri, '?'); /* libmicrohttpd's buffer: writable */
    if (q == NULL)
        return NULL;
    size_t n = 1; /* libmicrohttpd records empty parameters too: one per '&', plus one */
    for (const char *p = q + 1; *p && n <= API_URL_MAX_ARGS; p++)
        n += *p == '&';
    if (n <= API_URL_MAX_ARGS)
        return NULL;
    q[1] = '\0';
    return api__many_args_mark;
}

static enum MHD_Result add_arg_len(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    *(size_t *)cls += strlen(key) + 2 + (value ? strlen(value) : 0); /* "?k=v" or "&k=v" */
    return MHD_YES;
}

/* A URL's 414 on /query points to a form body: only /query takes its parameters from one too. */
static const char *form_hint(const api_request_t *r)
{
    return r->route == ROUTE_QUERY ? ": send a long query as a form body" : "";
}

/* Refuses a request whose URL has more than API_URL_MAX_ARGS parameters: 414; whose head
 * (request line and headers, as libmicrohttpd counted them) is over http.max_header_bytes: 414 when
 * its URL alone is, else 431; whose header lines are more than http.max_header_lines, or cookies
 * more than http.max_cookies: 431; or that has a line of an empty name: 400, closing the connection
 * (what libmicrohttpd left of the head would be read as its next request). Returns 1 when refused
 * (the answer set). Worker thread, at the access handler's first call. */
int api__head_too_large(api_request_t *r)
{
    if (r->many_args) {
        api__error(r, 414, "request URL has more than %d query parameters (vigild's bound)%s",
                   API_URL_MAX_ARGS, form_hint(r));
        return 1;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    size_t max = r->srv->opts.max_header;
    if (ci == NULL || ci->header_size <= max) {
        struct head_seen h = {0}; /* from the records libmicrohttpd took for them */
        MHD_get_connection_values(r->conn, MHD_HEADER_KIND | MHD_COOKIE_KIND, see_value, &h);
        if (ci != NULL && head_malformed(r, &h, ci->header_size)) {
            r->close = 1;
            api__error(r, 400,
                       "request head has a header line with an empty name (a line beginning "
                       "with ':') or a value folded onto the next line: not valid HTTP");
            return 1;
        }
        /* libmicrohttpd 0.9.75 frames the body by the first Content-Length: with another value
         * after it, the bytes that one counts would be read as the connection's next request
         * (read69c's finding 4, a request smuggled past a proxy that takes the last). RFC 9112
         * 6.3: 400 and closed. The same value repeated frames the body the same way: served. */
        if (h.length_differs) {
            r->close = 1;
            api__error(r, 400,
                       "request has Content-Length headers of different values: its body's end "
                       "is unknown (RFC 9112 6.3)");
            return 1;
        }
        if (h.lines > r->srv->opts.max_lines)
            api__error(r, 431, "request of %zu header lines exceeds http.max_header_lines (%u)",
                       h.lines, r->srv->opts.max_lines);
        else if (h.cookies > r->srv->opts.max_cookies)
            api__error(r, 431, "request of %zu cookies exceeds http.max_cookies (%u)", h.cookies,
                       r->srv->opts.max_cookies);
        else
            return 0;
        return 1;
    }
    size_t url_len = strlen(r->url); /* the path; the query string is in the arguments */
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, add_arg_len, &url_len);
    if (url_len > max)
        api__error(r, 414, "request URL of %zu bytes exceeds http.max_header_bytes (%zu bytes)%s",
                   url_len, max, form_hint(r));
    else
        api__error(r, 431,
                   "request line and headers of %zu bytes exceed http.max_header_bytes "
                   "(%zu bytes)",
                   ci->header_size, max);
    return 1;
}

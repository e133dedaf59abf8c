/* api/influx_pretty.c: InfluxDB 1.x's pretty=true, on /query and /write: influxd 1.6.7 wraps
 * every route's writer in its jsonFormatter, which marshals an answer (results, or an error:
 * a 400, 401, 404, 5xx) with Go's json.MarshalIndent(v, "", "    ") when the URL's pretty is
 * exactly "true" (r.URL.Query().Get: not a form body's, not "1" or "TRUE"; checked against
 * influxd 1.6.7), then a "\n". json.MarshalIndent is json.Marshal then json.Indent, a
 * re-spacing of the compact text that leaves every token as it was; vigild's compact answers
 * are already Go's bytes (numbers, escapes, key order), so indenting their text as json.Indent
 * does gives influxd's pretty bytes. jansson's JSON_INDENT would not: it re-prints reals with
 * 17 digits (0.1 as 0.10000000000000001) and does not escape '<' as Go does. An indented
 * answer is bounded (PRETTY_MAX): past it the compact one is sent. Any thread; no state, no
 * lock. */
#include "api_int.h"

#include <stdlib.h>
#include <string.h>

/* The largest indented answer: 4 times API_PAGE_BYTES, the compact answer's bound. Indenting
 * adds a newline and the depth's spaces per value, 29 bytes for a value of a SELECT's row (depth
 * 7): a compact answer of one-digit numbers grows 12.5 times (8 MiB would be 104 MB, and half a
 * second of a libmicrohttpd worker); a larger indented answer is not built, the compact one (the
 * same content) is sent instead. */
#define PRETTY_MAX (4 * API_PAGE_BYTES)

/* Appends a newline and depth times Go's indent, four spaces. */
static void newline(sbuf_t *b, int depth)
{
    sbuf_append(b, "\n", 1);
    for (int i = 0; i < depth; i++)
        sbuf_append(b, "    ", 4);
}

/* Appends json (n bytes: compact JSON documents, each followed by a "\n", as /query's chunked
 * answers are) to out, each document indented as Go's json.Indent(dst, src, "", "    ") indents
 * it: a newline and the depth's indent after '{', '[' and ',', before '}' and ']' (an empty
 * object or array stays {} or []), ": " after a key; strings copied as they are. Whitespace
 * outside strings is dropped, but between documents, where it is kept. Returns 0, or -1 when
 * out would pass max bytes (out then holds a part; max a power of two times 256, out's buffer
 * stays within it: a byte of json adds under 4,096, its depth far below 1,000 in vigild's). */
static int indent(sbuf_t *out, const char *json, size_t n, size_t max)
{
    int depth = 0, in_str = 0, esc = 0, open = 0; /* open: a '{' or '[' with nothing in it yet */
    for (size_t i = 0; i < n; i++) {
        if (out->len + 4096 > max)
            return -1;
        char c = json[i];
        if (in_str) {
            sbuf_append(out, &c, 1);
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (depth == 0 && !open)
                sbuf_append(out, &c, 1);
            continue;
        }
        if (open && c != '}' && c != ']') {
            open = 0;
            newline(out, ++depth);
        }
        switch (c) {
        case '{':
        case '[':
            open = 1;
            sbuf_append(out, &c, 1);
            break;
        case ',':
            sbuf_append(out, &c, 1);
            newline(out, depth);
            break;
        case ':':
            sbuf_append(out, ": ", 2);
            break;
        case '}':
        case ']':
            if (open)
                open = 0;
            else if (depth > 0)
                newline(out, --depth);
            sbuf_append(out, &c, 1);
            break;
        case '"':
            in_str = 1;
            /* fall through */
        default:
            sbuf_append(out, &c, 1);
        }
    }
    return 0;
}

void api__influx_pretty(api_request_t *r)
{
    if ((r->route != ROUTE_QUERY && r->route != ROUTE_WRITE) || r->resp == NULL ||
        r->content_type == NULL || strcmp(r->content_type, "application/json") != 0)
        return;
    const char *p = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "pretty");
    if (p == NULL || strcmp(p, "true") != 0)
        return;
    sbuf_t b;
    sbuf_init(&b);
    if (indent(&b, r->resp, r->resp_len, PRETTY_MAX) != 0 || b.oom) {
        /* the compact answer still says the same */
        sbuf_deinit(&b);
        return;
    }
    free(r->resp);
    r->resp = b.data;
    r->resp_len = b.len;
}

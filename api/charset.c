/* api/charset.c: what a request says of its body's text encoding, and what its first bytes show.
 * vigild reads UTF-8 only (US-ASCII is a subset): a body declared or found to be in another
 * encoding is refused before it is parsed, so the client is told the encoding, not that byte
 * 0xe9 or a BOM is "invalid JSON" or a bad line.
 *
 * The Content-Type's parameters are read as RFC 9110 (5.6.6, 8.3.1) writes them: after the
 * media type, `; name=value` pairs, the name a token, the value a token or a quoted string
 * (quoted-pair `\x` inside it is x), empty parameters (`;;`) allowed. vigild also takes blanks
 * around '=' (session 67 did, and some clients write `charset = utf-8`). Session 68 (the review
 * of int67): `charset="utf-8"x` was taken as UTF-8, the first of two charset parameters decided,
 * and a `;charset=` inside another parameter's quoted value was read as one; now text after a
 * value and a second charset (unless both say UTF-8) are a 400 naming the header, and quoted
 * values are skipped whole.
 *
 * Threading: any thread (libmicrohttpd's); pure but for the answer set on r. */
#include "api_int.h"
#include "batch.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The longest charset value kept to compare and name (IANA's longest names are 45). */
#define CHARSET_MAX 64

/* Whether c is an RFC 9110 tchar. */
static int tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *ows(const char *p)
{
    return p + strspn(p, " \t");
}

/* Whether cs names UTF-8 or US-ASCII (a subset). */
static int utf8_name(const char *cs)
{
    static const char *const utf8[] = {"utf-8", "utf8", "us-ascii", "ascii"};
    for (size_t i = 0; i < sizeof utf8 / sizeof utf8[0]; i++)
        if (strcasecmp(cs, utf8[i]) == 0)
            return 1;
    return 0;
}

/* Reads the parameters of ct into *cs (its charset value, unquoted, NUL-terminated, cut to
 * CHARSET_MAX bytes between UTF-8 characters; "" when none). Returns NULL, or why the header is not
 * well formed (a static text) with *name the parameter it is about (borrowed from ct, *name_len
 * bytes). */
static const char *params_read(const char *ct, char cs[CHARSET_MAX + 2], const char **name,
                               size_t *name_len)
{
    const char *p = ows(ct);
    int seen = 0;
    cs[0] = '\0';
    *name = "";
    *name_len = 0;
    p += strcspn(p, "; \t"); /* the media type: its own check is the route's */
    for (;;) {
        p = ows(p);
        if (*p == '\0')
            return NULL;
        if (*p != ';')
            return *name_len ? "text after the value of parameter" : "text after the media type";
        p = ows(p + 1);
        if (*p == ';' || *p == '\0')
            continue; /* an empty parameter */
        const char *n = p;
        while (tchar((unsigned char)*p))
            p++;
        *name = n;
        *name_len = (size_t)(p - n);
        if (*name_len == 0)
            return "a parameter without a name";
        p = ows(p);
        if (*p != '=')
            return "no '=value' for parameter";
        p = ows(p + 1);
        const int is_cs = *name_len == 7 && strncasecmp(n, "charset", 7) == 0;
        char val[CHARSET_MAX + 2]; /* a charset's value */
        size_t k = 0;
        if (*p == '"') {
            for (p++; *p != '"'; p++) {
                if (*p == '\0')
                    return "no closing quote in the value of parameter";
                if (*p == '\\' && p[1] != '\0')
                    p++;
                if (is_cs && k < CHARSET_MAX + 1)
                    val[k++] = *p;
            }
            p++;
        } else {
            /* Emptiness by the text, not by k: k counts the charset's bytes only (session 68's
             * review: `; foo=bar`, any other token value, was "an empty value"). */
            const char *v = p;
            for (; tchar((unsigned char)*p); p++)
                if (is_cs && k < CHARSET_MAX + 1)
                    val[k++] = *p;
            if (p == v && (*p == '\0' || *p == ';' || *p == ' ' || *p == '\t'))
                return "an empty value for parameter";
        }
        if (!is_cs)
            continue;
        val[k] = '\0'; /* one byte more than kept is read, so a cut falls between characters */
        val[batch_name_cut(val, CHARSET_MAX)] = '\0';
        /* A second charset is refused unless both say UTF-8 (the review of int68: some client
         * libraries append `; charset=utf-8` to a type that has it; which of two others a sender
         * meant is not known). */
        if (seen++ == 0)
            memcpy(cs, val, k + 1);
        else if (!utf8_name(cs) || !utf8_name(val))
            return "a second parameter";
    }
}

int api__charset_ok(api_request_t *r, int influx)
{
    const char *ct =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct == NULL)
        return 1;
    char cs[CHARSET_MAX + 2];
    const char *name;
    size_t name_len;
    const char *why = params_read(ct, cs, &name, &name_len);
    /* InfluxDB reads no part of the header: a malformed one on its write routes is read as far
     * as it goes (a charset named before the fault still counts), not refused, so a sender
     * influxd takes is taken here too. */
    if (why != NULL && influx)
        why = NULL;
    if (why != NULL) {
        api__error(r, 400,
                   "Content-Type '%.*s': %s%s%.*s%s (write type/subtype; name=value, the "
                   "value a token or a quoted string)",
                   (int)batch_name_cut(ct, 200), ct, why, name_len ? " '" : "",
                   (int)(name_len > 64 ? 64 : name_len), name, name_len ? "'" : "");
        return 0;
    }
    if (cs[0] == '\0' || utf8_name(cs))
        return 1;
    api__error(r, 415,
               "charset '%s' is not supported: vigild reads UTF-8 only (send the body in UTF-8, "
               "charset=utf-8)",
               cs);
    return 0;
}

int api__body_utf8_ok(api_request_t *r, const char *body, size_t len)
{
    const unsigned char *b = (const unsigned char *)body;
    const char *enc = NULL, *how = NULL;
    /* UTF-32's marks first: UTF-32LE's begins with UTF-16LE's. */
    if (len >= 4 && b[0] == 0xFF && b[1] == 0xFE && b[2] == 0 && b[3] == 0)
        enc = "UTF-32LE", how = "its byte order mark FF FE 00 00";
    else if (len >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0xFE && b[3] == 0xFF)
        enc = "UTF-32BE", how = "its byte order mark 00 00 FE FF";
    else if (len >= 2 && b[0] == 0xFF && b[1] == 0xFE)
        enc = "UTF-16LE", how = "its byte order mark FF FE";
    else if (len >= 2 && b[0] == 0xFE && b[1] == 0xFF)
        enc = "UTF-16BE", how = "its byte order mark FE FF";
    /* Without a mark, JSON's and line protocol's first character is ASCII: in UTF-16 one of its
     * two bytes is 0, in UTF-32 three of its four (RFC 4627's detection), which no UTF-8 text
     * begins with. UTF-32 first: UTF-32LE's "x" 00 00 00 begins as UTF-16LE's does. */
    else if (len >= 4 && b[0] != 0 && b[1] == 0 && b[2] == 0 && b[3] == 0)
        enc = "UTF-32LE", how = "three 00 bytes after its first character";
    else if (len >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] != 0)
        enc = "UTF-32BE", how = "three 00 bytes before its first character";
    else if (len >= 2 && b[0] != 0 && b[1] == 0)
        enc = "UTF-16LE", how = "a 00 byte after its first character";
    else if (len >= 2 && b[0] == 0 && b[1] != 0)
        enc = "UTF-16BE", how = "a 00 byte before its first character";
    if (enc == NULL)
        return 1;
    api__error(r, 415,
               "request body looks like %s (%s): vigild reads UTF-8 only (send the body in "
               "UTF-8, charset=utf-8)",
               enc, how);
    return 0;
}

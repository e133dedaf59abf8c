/* api/influxql_multipart.c: /query's parameters from a multipart/form-data body (curl -F), read
 * as influxd 1.6.7 reads them: Go's r.FormValue parses such a body (ParseMultipartForm) and
 * appends its values after the URL's, so a URL parameter wins over the body's; a part with a
 * file name is a file, not a value, and influxd's handler reads the first file part named "q"
 * when FormValue("q") is blank (curl -F "q=@queries.txt"). A body Go cannot read (no boundary,
 * a part cut short, no closing boundary) gives no values at all. The parts are cut by
 * libmicrohttpd's MHD_PostProcessor; a body with LF line ends only (which Go reads) is given to
 * it as CRLF (lf_to_crlf). Two bodies Go reads stay libmicrohttpd's 400, each saying why: a
 * Content-Type with BOUNDARY= not in lower case (the post processor reads the connection's
 * Content-Type itself, and takes no other) and a part named name=q, unquoted (the post
 * processor gives it no name); reading them would take a multipart parser of vigild's own.
 * Any thread; no state, no lock. */
#include "influxql.h"
#include "api_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What the post processor's iterator collects: each value percent-encoded (so that the
 * readers of api__iq_form_raw decode it as they decode a URL's) into b, by its offset and
 * length (slot API_IQ_FORM_N: the file "q"). */
struct mp {
    sbuf_t b;
    size_t off[API_IQ_FORM_N + 1], len[API_IQ_FORM_N + 1];
    int have[API_IQ_FORM_N + 1];
    int cur;     /* the slot the part being read fills; -1: none */
    int unnamed; /* a part libmicrohttpd gave no name (name=q unquoted, which Go reads; no
                  * Content-Disposition, which Go skips) */
    int lf;      /* the body had LF line ends only, given to libmicrohttpd as CRLF: every '\r'
                  * a piece holds is one of those, dropped */
};

/* Appends data (n bytes) to b with every byte but a letter or a digit as %XX. */
static void pct_encode(sbuf_t *b, const char *data, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            sbuf_append(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sbuf_append(b, e, 3);
        }
    }
}

/* MHD_PostDataIterator: a piece (size bytes at off) of the part named key (NULL: libmicrohttpd
 * 0.9.75 reads only a quoted name). A piece at off 0 begins a part (an empty value is one piece
 * of 0 bytes). */
static enum MHD_Result mp_piece(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *filename, const char *content_type,
                                const char *transfer_encoding, const char *data, uint64_t off,
                                size_t size)
{
    (void)kind, (void)content_type, (void)transfer_encoding;
    struct mp *m = cls;
    if (off == 0) {
        int slot = -1;
        if (key == NULL)
            m->unnamed = 1;
        else if (filename != NULL && filename[0] != '\0') /* Go's Part.FileName: a file */
            slot = strcmp(key, "q") == 0 ? API_IQ_FORM_N : -1;
        else
            slot = api__iq_form_slot(key);
        if (slot >= 0 && !m->have[slot]) {
            m->have[slot] = 1;
            m->off[slot] = m->b.len;
            m->cur = slot;
        } else {
            m->cur = -1;
        }
    }
    /* A q (value or file) already past API_IQ_Q_MAX bytes once decoded is api__iq_arg's 400 or
     * h_query's: the rest of it is not kept (a 32 MiB file would take 96 encoded) */
    int full =
        (m->cur == 0 || m->cur == API_IQ_FORM_N) && m->len[m->cur] > 3 * ((size_t)API_IQ_Q_MAX + 1);
    if (m->cur >= 0 && size > 0 && !full) {
        for (size_t i = 0, from = 0; m->lf && i <= size; i++) /* the value without the '\r's */
            if (i == size || data[i] == '\r') {
                pct_encode(&m->b, data + from, i - from);
                from = i + 1;
            }
        if (!m->lf)
            pct_encode(&m->b, data, size);
        m->len[m->cur] = m->b.len - m->off[m->cur];
    }
    return m->b.oom ? MHD_NO : MHD_YES;
}

/* Go's multipart reader reads a body whose first boundary line ends in a bare LF with LF line
 * ends throughout; libmicrohttpd 0.9.75 reads only CRLF. A body without a single '\r' is such a
 * body: its copy with each LF as CRLF (caller owns; free) is what libmicrohttpd reads, and its
 * values are the pieces without their '\r's (mp_piece), as Go's are. NULL for any other body,
 * or when out of memory (*oom set). */
static char *lf_to_crlf(const char *body, size_t len, size_t *out_len, int *oom)
{
    size_t lfs = 0;
    for (size_t i = 0; i < len; i++) {
        if (body[i] == '\r')
            return NULL;
        lfs += body[i] == '\n';
    }
    char *out = lfs > 0 ? malloc(len + lfs) : NULL;
    if (out == NULL) {
        *oom = lfs > 0;
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (body[i] == '\n')
            out[n++] = '\r';
        out[n++] = body[i];
    }
    *out_len = n;
    return out;
}

/* Whether the Content-Type ct names its boundary with a name not in lower case (BOUNDARY=,
 * which Go reads and libmicrohttpd 0.9.75 does not: it looks for "boundary=" as it is). */
static int boundary_not_lower(const char *ct)
{
    const char *p = strchr(ct, ';');
    for (; p != NULL; p = strchr(p + 1, ';')) {
        const char *k = p + 1 + strspn(p + 1, " \t");
        if (strncasecmp(k, "boundary=", 9) == 0 && strncmp(k, "boundary=", 9) != 0)
            return 1;
    }
    return 0;
}

int api__iq_multipart(api_request_t *r, const char **why)
{
    const char *ct =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    /* libmicrohttpd keeps the boundary twice in its buffer, and needs each part's header line
     * whole in the rest (a 300-byte file name failed in 256, which Go reads): 64 KiB, once per
     * request */
    size_t size = 2 * strlen(ct) + 65536;
    struct mp m = {.cur = -1};
    sbuf_init(&m.b);
    struct MHD_PostProcessor *pp = MHD_create_post_processor(r->conn, size, mp_piece, &m);
    if (pp == NULL) {
        *why = boundary_not_lower(ct)
                   ? "multipart/form-data body not read: its Content-Type's boundary parameter "
                     "is not written boundary= in lower case, the only way vigild reads it"
                   : "multipart/form-data body not read: its Content-Type names no boundary";
        return 0;
    }
    int oom = 0;
    size_t crlf_len = 0;
    char *crlf = lf_to_crlf(r->body, r->len, &crlf_len, &oom);
    m.lf = crlf != NULL;
    enum MHD_Result ok =
        oom ? MHD_NO : MHD_post_process(pp, crlf ? crlf : r->body, crlf ? crlf_len : r->len);
    free(crlf);
    m.b.oom |= oom;
    if (MHD_destroy_post_processor(pp) != MHD_YES && ok == MHD_YES)
        *why = "multipart/form-data body not read: it ends before its closing boundary";
    else if (ok != MHD_YES)
        *why = m.b.oom
                   ? "out of memory"
                   : "multipart/form-data body not read: its parts are not multipart/form-data's";
    if (ok != MHD_YES || *why != NULL) {
        oom = m.b.oom;
        sbuf_deinit(&m.b);
        return oom ? -1 : 0;
    }
    if (m.unnamed) /* read, but this is likely why a q is missing */
        *why = "a multipart/form-data part has no name vigild reads (no Content-Disposition, "
               "or a name not quoted, name=q, which vigild does not read: quote it)";
    r->iq_mp = m.b.data; /* freed with the request */
    for (int i = 0; i <= API_IQ_FORM_N; i++) {
        if (!m.have[i])
            continue;
        const char *v = m.b.data ? m.b.data + m.off[i] : "";
        if (i == API_IQ_FORM_N) {
            r->iq_qfile = v;
            r->iq_qfile_len = m.len[i];
        } else if (r->iq_form_v[i] == NULL) { /* the URL's wins */
            r->iq_form_v[i] = v;
            r->iq_form_len[i] = m.len[i];
        }
    }
    return 0;
}

/* tests/fuzz/fuzz_influxql.c: libFuzzer target of /query's InfluxQL reader (api/influxql.c: the
 * qs_* token reader and the statements it answers, run_query). The reader is private to
 * influxql.c, so this file includes influxql.c rather than widen the api's internal interface
 * for a test; libapi's own influxql.o is then never linked (every symbol it defines is defined
 * here), while influx.o comes from libapi for the names (api__db_known, api__db_remember).
 *
 * The input is the query text, as api__h_query gets it: NUL-terminated, at most 1,023 bytes
 * (its q buffer), then trimmed of Go's white space (trim_go_space) before the statements. Each
 * token must be NUL-terminated at its length, shorter than QT_TEXT_MAX, placed at line >= 1 and
 * char >= 0 (a quote is placed one char early, as influxd does), and move the reader forward (or be
 * the end); the statements, answered whole and chunked, must answer 200 or 400 with a body (a
 * chunked 200 may be empty), without a crash, leak or undefined behaviour. */
#include "../../api/influxql.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every token of q. */
static void tokens(const char *q)
{
    qscan_t s;
    qtoken_t t;
    qs_init(&s, q, q);
    for (size_t n = 0;; n++) {
        const char *before = s.p;
        qs_next(&s, &t);
        if (t.len >= QT_TEXT_MAX || strlen(t.text) != t.len || t.line < 1 || t.col < 0 ||
            s.p < before || s.p > q + strlen(q) || n > strlen(q))
            abort();
        if (t.kind == QT_EOF)
            return;
        if (s.p == before)
            abort(); /* a token that reads nothing would loop for ever */
    }
}

/* Checks the answer a query left in r, and clears it for the next one: a body, but for a
 * chunked answer to a query of no statement (influxd's empty 200). */
static void answered(api_request_t *r, int chunked)
{
    int empty_ok = chunked && r->status == 200;
    if ((r->status != 200 && r->status != 400) ||
        (!empty_ok && (r->resp == NULL || r->resp_len == 0)))
        abort();
    free(r->resp);
    r->resp = NULL;
    r->status = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct api_server srv; /* no backend: names are only listed (db_remember) */
    static int ready;
    if (!ready) {
        pthread_mutex_init(&srv.dbs_mu, NULL);
        pthread_mutex_init(&srv.dbs_add_mu, NULL);
        ready = 1;
    }
    char qbuf[1024];
    if (size >= sizeof qbuf)
        size = sizeof qbuf - 1;
    memcpy(qbuf, data, size);
    qbuf[size] = '\0';
    tokens(qbuf);
    const char *q = trim_go_space(qbuf);
    if (q < qbuf || q + strlen(q) > qbuf + size || (q[0] != '\0' && go_space(q) != 0))
        abort();

    /* The db parameter SHOW RETENTION POLICIES without ON reads is absent: libmicrohttpd's
     * lookup on no connection answers NULL (0.9.75). */
    api_request_t r = {.srv = &srv, .role = -1};
    for (int chunked = 0; chunked <= 1 && q[0] != '\0'; chunked++) {
        run_query(&r, q, chunked,
                  chunked ? 0 : 1000000); /* a CREATE runs twice: the second finds its name kept */
        answered(&r, chunked);
    }
    if (srv.ndbs == API_DBS_MAX)
        srv.ndbs = 0; /* room for the next names */
    return 0;
}

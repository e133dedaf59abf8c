/* tests/fuzz/fuzz_influxql.c: libFuzzer target of /query's InfluxQL reader (api/influxql.c: the
 * qs_* token reader and the statements it answers, run_query). The reader is private to
 * influxql.c, so this file includes influxql.c rather than widen the api's internal interface
 * for a test; libapi's own influxql.o is then never linked (every symbol it defines is defined
 * here), while influx.o comes from libapi for the names (api__db_known, api__db_remember) and
 * influxql_params.o for the bound parameters (api__iq_params_bind, api__iq_go_numbers,
 * api__iq_refused_zeroed; it calls api__q_digit, defined here; and api__iq_form_raw, which reads
 * no parameter here: the fake request has no connection and no body).
 *
 * The input is the query text, as api__h_query gets it: NUL-terminated, at most API_IQ_Q_MAX
 * bytes (64 KiB; libFuzzer's own -max_len, 4,096 or the largest seed, is the shorter bound in
 * practice: the seed grafana_all, 10 KiB, sets it), then trimmed of Go's white space
 * (trim_go_space) before the statements. Each token must be NUL-terminated at its length, no
 * longer than the bytes it was read from (a fixed name, "EOF", "BADSTRING", no longer than 9),
 * placed at line >= 1 and char >= 0 (a quote is placed one char early, as influxd does), and move
 * the reader forward (or be the end); the statements, answered whole and chunked, must answer 200
 * or 400 with a body (a chunked 200 may be empty), without a crash, leak or undefined
 * behaviour. SELECT and the SHOW statements read a fake store of two devices (fake_*), so their
 * answers run too; SELECT's, SHOW's and the database statements' files come from libapi
 * (influxql_select*.o, influxql_show.o, influxql_regex.o, influxql_db.o), which call the reader
 * defined here. The unchunked run binds parameters of each
 * kind ($s, $i, $f, $b, $n, $id, $d, $x ...: params above; $dn and $dm negative
 * durations, $dm -2^63 ns; $dv a duration string influxd refuses; $r and $rb regexes, $rb one
 * Go refuses, $rn a regex object that is no string), the chunked one none. The input is also
 * walked as params' JSON text for the numbers Go refuses (numbers). */
#include "../../api/influxql.c"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every token of q. */
static void tokens(const char *q)
{
    qmem_t m;
    qscan_t s;
    qtoken_t t;
    if (qmem_init(&m, q))
        abort();
    qs_init(&s, &m, q);
    for (size_t n = 0;; n++) {
        const char *before = s.p;
        api__qs_next(&s, &t);
        size_t span = (size_t)(s.p - before); /* blanks before the token too */
        if ((t.len > span && t.len > 9) || strlen(t.text) != t.len || t.line < 1 || t.col < 0 ||
            s.p < before || s.p > q + strlen(q) || n > strlen(q))
            abort();
        if (t.kind == QT_EOF)
            break;
        if (s.p == before)
            abort(); /* a token that reads nothing would loop for ever */
    }
    qmem_deinit(&m);
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

/* A store of two devices for SELECT and the SHOW statements: "pump-7" (channels temp and vib)
 * with a point every 5 s from T for a minute, and "pump-8" (temp) with none in range. */
#define FAKE_T 1732780800000LL

static const char *const fake_chans[] = {"temp", "vib"};

static int fake_device(const char *id, api_device_cb cb, void *arg)
{
    int seven = strcmp(id, "pump-7") == 0;
    api_device_t d = {.id = id,
                      .attrs_json = "{}",
                      .first_ts_ms = seven ? FAKE_T : 0,
                      .last_ts_ms = seven ? FAKE_T + 55000 : 0,
                      .last_seen_ms = -1,
                      .points = seven ? 12 : 1,
                      .nchannels = seven ? 2 : 1,
                      .channels = fake_chans};
    return cb(arg, &d);
}

static int fake_device_get(void *ctx, const char *id, int64_t deadline_us, api_device_cb cb,
                           void *arg)
{
    (void)ctx, (void)deadline_us;
    if (strcmp(id, "pump-7") != 0 && strcmp(id, "pump-8") != 0)
        return ERR_NOTFOUND;
    fake_device(id, cb, arg);
    return 0;
}

static int fake_device_list(void *ctx, const char *after, size_t limit, int64_t deadline_us,
                            api_device_cb cb, void *arg)
{
    (void)ctx, (void)after, (void)limit, (void)deadline_us;
    if (!fake_device("pump-7", cb, arg))
        fake_device("pump-8", cb, arg);
    return 0;
}

static int fake_query(void *ctx, const api_query_t *q, api_point_cb cb, void *arg)
{
    (void)ctx;
    if (strcmp(q->device, "pump-7") != 0)
        return 0;
    size_t sent = 0;
    for (int i = 0; i < 12; i++) {
        int k = q->desc ? 11 - i : i;
        int64_t ts = FAKE_T + k * 5000;
        double v[2] = {70.5 + k, 0.125 + k / 10.0};
        if (ts < q->from_ms || ts >= q->to_ms)
            continue;
        if ((q->limit && sent == q->limit) || cb(arg, ts, q->nchannels, q->channels, v))
            break;
        sent++;
    }
    return 0;
}

/* Walks the input as params' JSON text for the numbers Go refuses (api__iq_go_numbers, which reads
 * any text: it runs on what jansson read, or read up to a number it refused). */
static void numbers(const char *text)
{
    sbuf_t top;
    sbuf_init(&top);
    json_t *refused = json_object();
    if (refused == NULL || api__iq_go_numbers(text, &top, refused) != 0)
        abort(); /* out of memory under libFuzzer's malloc limit: reported as a crash */
    const char *name;
    json_t *why;
    json_object_foreach(refused, name, why)
    {
        if (!json_is_string(why) || strncmp(json_string_value(why), "strconv.Parse", 13) != 0)
            abort();
    }
    if (top.len > 0 && strncmp(top.data, "strconv.Parse", 13) != 0)
        abort();
    char *zeroed = api__iq_refused_zeroed(text); /* the same text, numbers jansson refuses as 0 */
    if (zeroed == NULL || strlen(zeroed) != strlen(text))
        abort();
    free(zeroed);
    sbuf_deinit(&top);
    json_decref(refused);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct api_server srv; /* names are only listed (db_remember); a fake store */
    static int ready;
    static json_t *params; /* bound parameters of each kind ($s, $i, ... in the input) */
    if (!ready) {
        json_t *raw = json_loads("{\"s\":\"pump-1\",\"e\":\"\",\"i\":-5,\"f\":2.5,\"g\":1e300,"
                                 "\"b\":true,\"n\":null,\"a\":[1],\"id\":{\"identifier\":\"temp\"},"
                                 "\"d\":{\"duration\":\"1h\"},\"x\":{\"foo\":1},\"o\":{},"
                                 "\"dn\":{\"duration\":\"-5m\"},"
                                 "\"dm\":{\"duration\":\"-1ns9223372036854775807ns\"},"
                                 "\"dv\":{\"duration\":\"1.5h\"},\"r\":{\"regex\":\"^pump-\\\\d$\"},"
                                 "\"rb\":{\"regex\":\"(\"},\"rn\":{\"regex\":5}}",
                                 0, NULL);
        params = raw ? api__iq_params_bind(raw, NULL) : NULL;
        json_decref(raw);
        if (params == NULL)
            abort();
        pthread_mutex_init(&srv.dbs_mu, NULL);
        pthread_mutex_init(&srv.dbs_add_mu, NULL);
        srv.device_tag = "device";
        srv.be.device_get = fake_device_get;
        srv.be.device_list = fake_device_list;
        srv.be.query = fake_query;
        ready = 1;
    }
    static char qbuf[API_IQ_Q_MAX + 1];
    if (size >= sizeof qbuf)
        size = sizeof qbuf - 1;
    memcpy(qbuf, data, size);
    qbuf[size] = '\0';
    tokens(qbuf);
    numbers(qbuf);
    const char *q = trim_go_space(qbuf);
    if (q < qbuf || q + strlen(q) > qbuf + size || (q[0] != '\0' && go_space(q) != 0))
        abort();

    /* The db parameter SHOW RETENTION POLICIES without ON reads is absent: libmicrohttpd's
     * lookup on no connection answers NULL (0.9.75). */
    api_request_t r = {.srv = &srv, .role = -1, .max_query_limit = 50, .max_scan_points = 100};
    for (int chunked = 0; chunked <= 1 && q[0] != '\0'; chunked++) {
        run_query(&r, q, chunked, chunked ? 0 : 1000000, /* a CREATE runs twice: the second */
                  chunked ? NULL : params);              /* finds its name kept */
        answered(&r, chunked);
    }
    if (srv.ndbs == API_DBS_MAX)
        srv.ndbs = 0; /* room for the next names */
    return 0;
}

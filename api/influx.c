/* api/influx.c: the InfluxDB v1 compatible endpoints, so Telegraf and the influx client write
 * to vigild unchanged: POST /write (line protocol, partial writes), POST|GET /query (only
 * CREATE DATABASE, SHOW DATABASES and SHOW RETENTION POLICIES are answered), /ping is in
 * server.c. Any thread.
 *
 * vigild has one store, so a database chooses nothing; but the influx shell's USE asks SHOW
 * DATABASES and refuses a name it does not list (and USE db.rp asks SHOW RETENTION POLICIES ON
 * db). So the server remembers the names CREATE DATABASE and /write?db= have used (srv->dbs,
 * under dbs_mu) and lists them: the database Telegraf writes to is there as soon as it created
 * it or wrote, as in InfluxDB. The backend keeps them (be.db_add, once per new name) and gives
 * them back at the next start (be.db_list), so USE works after a restart too. Every database
 * has one retention policy, "autogen", whose duration is storage.retention's. */
#include "api_int.h"
#include "err.h"
#include "log.h"
#include "vtime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The index of name[0..len) in srv->dbs, or -1. Under dbs_mu. */
static int db_find(const struct api_server *srv, const char *name, size_t len)
{
    for (int i = 0; i < srv->ndbs; i++)
        if (strncmp(srv->dbs[i], name, len) == 0 && srv->dbs[i][len] == '\0')
            return i;
    return -1;
}

/* Whether name[0..len) is listed by SHOW DATABASES. */
static int db_known(struct api_server *srv, const char *name, size_t len)
{
    pthread_mutex_lock(&srv->dbs_mu);
    int known = len <= API_DB_NAME_MAX && db_find(srv, name, len) >= 0;
    pthread_mutex_unlock(&srv->dbs_mu);
    return known;
}

/* Adds name[0..len) to the list unless it is there or the list is full. Under dbs_mu. */
static void db_insert(struct api_server *srv, const char *name, size_t len)
{
    if (db_find(srv, name, len) < 0 && srv->ndbs < API_DBS_MAX) {
        memcpy(srv->dbs[srv->ndbs], name, len);
        srv->dbs[srv->ndbs][len] = '\0';
        srv->ndbs++;
    }
}

/* Whether name[0..len) would be a new entry: not listed, and the list not full. */
static int db_is_new(struct api_server *srv, const char *name, size_t len)
{
    pthread_mutex_lock(&srv->dbs_mu);
    int is_new = db_find(srv, name, len) < 0 && srv->ndbs < API_DBS_MAX;
    pthread_mutex_unlock(&srv->dbs_mu);
    return is_new;
}

/* Remembers the database name[0..len) for SHOW DATABASES, unless it is known, empty, longer
 * than API_DB_NAME_MAX, not UTF-8 without control characters (it is listed as JSON), or the
 * list is full. A new name is kept by the backend first (outside dbs_mu: it waits for a
 * commit), so one listed is one a restart lists too. New names go one at a time (dbs_add_mu):
 * first uses at once of several names near the bound would otherwise all be kept and only
 * some listed, and a restart would list others. Returns 0, or the backend's error (the name
 * is not listed: its next use tries again). */
static int db_remember(struct api_server *srv, const char *name, size_t len)
{
    const char *why;
    if (len == 0 || len > API_DB_NAME_MAX || batch_name_check(name, len, &why))
        return 0;
    if (!db_is_new(srv, name, len))
        return 0; /* the common case: a known name, no backend call, no wait */
    pthread_mutex_lock(&srv->dbs_add_mu);
    int rc = 0;
    if (db_is_new(srv, name, len)) { /* again: a first use at once may have kept it */
        if (srv->be.db_add) {
            char z[API_DB_NAME_MAX + 1];
            memcpy(z, name, len);
            z[len] = '\0';
            rc = srv->be.db_add(srv->be.ctx, z);
        }
        if (rc == 0) {
            pthread_mutex_lock(&srv->dbs_mu);
            db_insert(srv, name, len);
            pthread_mutex_unlock(&srv->dbs_mu);
        }
    }
    pthread_mutex_unlock(&srv->dbs_add_mu);
    return rc;
}

static int db_loaded(void *arg, const char *name)
{
    struct api_server *srv = arg;
    size_t len = strlen(name);
    if (len <= API_DB_NAME_MAX)
        db_insert(srv, name, len);
    return srv->ndbs == API_DBS_MAX;
}

int api__dbs_load(struct api_server *srv)
{
    if (srv->be.db_list == NULL)
        return 0;
    pthread_mutex_lock(&srv->dbs_mu);
    int rc = srv->be.db_list(srv->be.ctx, API_DBS_MAX, db_loaded, srv);
    pthread_mutex_unlock(&srv->dbs_mu);
    return rc;
}

/* A warning that may repeat with every request (a cause that lasts, such as a full disk) is
 * logged at once the first time, then at most once a WARN_EVERY_MS per cause, saying how many
 * were left out since; a few causes are told apart (err codes), others share the last slot. */
#define WARN_EVERY_MS 60000
#define WARN_CAUSES   4

static pthread_mutex_t warn_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int cause;            /* an err code; 0: the slot is free */
    int64_t last_ms;      /* vtime_mono_ms() of the last one logged */
    unsigned suppressed;  /* left out since then */
} warn_slot[WARN_CAUSES]; /* guarded by warn_mu */

/* Logs "what: err_str(cause)" unless one of that cause was logged less than WARN_EVERY_MS ago
 * (then counts it). Any thread. */
static void warn_limited(const char *what, int cause)
{
    int64_t now = vtime_mono_ms();
    unsigned left_out = 0;
    int log_it = 0;
    pthread_mutex_lock(&warn_mu);
    int i = 0;
    while (i < WARN_CAUSES - 1 && warn_slot[i].cause != 0 && warn_slot[i].cause != cause)
        i++;
    if (warn_slot[i].cause != cause || now - warn_slot[i].last_ms >= WARN_EVERY_MS) {
        left_out = warn_slot[i].cause == cause ? warn_slot[i].suppressed : 0;
        warn_slot[i].cause = cause;
        warn_slot[i].last_ms = now;
        warn_slot[i].suppressed = 0;
        log_it = 1;
    } else {
        warn_slot[i].suppressed++;
    }
    pthread_mutex_unlock(&warn_mu);
    if (log_it && left_out > 0)
        log_warn("%s: %s (%u more like it in the last minute or more, not logged)", what,
                 err_str(cause), left_out);
    else if (log_it)
        log_warn("%s: %s", what, err_str(cause));
}

/* Remembers /write's db parameter. Never refuses the request: the name chooses nothing, so one
 * that cannot be kept (too long, a NUL, or the backend failed to keep it) is only not listed.
 * A backend failure is logged rate-limited: it lasts (a full disk) and every write retries. */
static void db_remember_arg(api_request_t *r)
{
    const char *raw = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "db");
    char buf[API_DB_NAME_MAX + 1];
    long n = raw ? api__pct_decode(raw, strlen(raw), buf, sizeof buf, 1) : -1;
    int rc = n > 0 ? db_remember(r->srv, buf, (size_t)n) : 0;
    if (rc)
        warn_limited("influx: cannot keep the database name of /write?db=", rc);
}

/* Whether /write's rp parameter names a policy vigild lists: none, empty, or "autogen" (the
 * only one SHOW RETENTION POLICIES answers). Otherwise answers influxd 1.6.7's words and
 * status for a policy it does not have (observed: 500 {"error":"retention policy not found:
 * NAME"}, the name percent-decoded, case kept) and returns 0. */
static int rp_known(api_request_t *r)
{
    char rp[256];
    const char *p = api__arg(r, "rp", rp, sizeof rp);
    if (r->status)
        return 0;
    if (p == NULL || p[0] == '\0' || strcmp(p, "autogen") == 0)
        return 1;
    api__error(r, 500, "retention policy not found: %s", p);
    return 0;
}

void api__h_write(api_request_t *r)
{
    struct api_server *srv = r->srv;
    char pbuf[16];
    const char *p = api__arg(r, "precision", pbuf, sizeof pbuf);
    if (r->status)
        return;
    lp_opts_t lo = {.device_tag = srv->opts.device_tag, .precision = LP_NS, .max_line = 0};
    if (p && lp_precision_parse(p, &lo.precision)) {
        api__error(r, 400, "parameter 'precision': '%s' is not one of ns, u, ms, s, m, h", p);
        return;
    }
    char *body;
    size_t len;
    int owned;
    if (api__request_body(r, &body, &len, &owned))
        return;
    size_t lines = 0;
    for (const char *q = body; q < body + len && (q = memchr(q, '\n', (size_t)(body + len - q)));
         q++)
        lines++;
    if (len > 0 && body[len - 1] != '\n')
        lines++; /* the last line need not end with a newline */
    if (lines > r->max_batch) {
        api__error(r, 413, "body holds more than %zu lines (the limit); split it", r->max_batch);
        if (owned)
            free(body);
        return;
    }
    batch_t b;
    batch_init(&b);
    parse_errors_t *errs = calloc(1, sizeof *errs);
    int rc = errs ? lp_parse(&b, body, len, &lo, vtime_now_ms(), 1, errs) : ERR_NOMEM;
    if (owned)
        free(body);
    if (rc) {
        api__error(r, 500, "parsing line protocol: %s", err_str(rc));
        goto out;
    }
    /* influxd parses the body first: a body of bad lines only gets its parse errors (below),
     * any other one the unknown policy's error, with nothing stored. */
    if (!(errs->parsed == 0 && errs->count > 0) && !rp_known(r))
        goto out;
    if (api__admit(r, &b, errs))
        goto out;
    size_t readings = b.nfields;
    if (b.npoints > 0) {
        rc = srv->be.write(srv->be.ctx, &b);
        if (rc) {
            api__backend_error(r, rc, "storing points");
            goto out;
        }
        db_remember_arg(r); /* only a write that stored points uses its db (not a refused one) */
    }
    api_count_ingest(srv, "lp", readings, errs->count);
    if (errs->count == 0) {
        r->status = 204;
        r->content_type = NULL;
        goto out;
    }
    const parse_error_t *first = &errs->e[0];
    if (errs->parsed == 0) {
        /* Every line bad, so nothing was written: InfluxDB answers the parse errors alone,
         * without "partial write" (Telegraf still sees "unable to parse" and drops the batch
         * rather than retry it). Where InfluxDB lists every bad line, the first one's number
         * and the count of the others stay. */
        if (errs->count == 1)
            api__error(r, 400, "%s (line %u)", first->msg, (unsigned)first->item);
        else
            api__error(r, 400, "%s (line %u); dropped=%u", first->msg, (unsigned)first->item,
                       (unsigned)errs->count);
        goto out;
    }
    /* InfluxDB's partial write: the good lines are stored, the answer names the first bad one
     * (a parse error, or a point refused by a limit or the retention horizon). */
    api__error(r, 400, "partial write: %s (line %u); dropped=%u", first->msg, (unsigned)first->item,
               (unsigned)errs->count);
out:
    free(errs);
    batch_deinit(&b);
}

/* Finds the q parameter in an application/x-www-form-urlencoded body; decodes into buf. */
static const char *form_q(const char *body, size_t len, char *buf, size_t size)
{
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop - p >= 2 && p[0] == 'q' && p[1] == '=') {
            size_t o = 0;
            for (const char *s = p + 2; s < stop && o + 1 < size; s++) {
                char c = *s;
                if (c == '+')
                    c = ' ';
                else if (c == '%' && stop - s > 2 && isxdigit((unsigned char)s[1]) &&
                         isxdigit((unsigned char)s[2])) {
                    char hx[3] = {s[1], s[2], 0};
                    c = (char)strtol(hx, NULL, 16);
                    s += 2;
                }
                buf[o++] = c;
            }
            buf[o] = '\0';
            return buf;
        }
        if (amp == NULL)
            break; /* not stop + 1: that would point past the end of the body */
        p = amp + 1;
    }
    return NULL;
}

/* If q starts with the keywords kw1 and kw2 (kw2 NULL: kw1 alone; any case, blanks before and
 * between), returns the text after them; else NULL. */
static const char *statement(const char *q, const char *kw1, const char *kw2)
{
    const char *kw[2] = {kw1, kw2};
    for (int k = 0; k < 2 && kw[k] != NULL; k++) {
        size_t n = strlen(kw[k]);
        while (isspace((unsigned char)*q))
            q++;
        if (strncasecmp(q, kw[k], n) != 0 || isalnum((unsigned char)q[n]) || q[n] == '_')
            return NULL;
        q += n;
    }
    return q;
}

/* Reads the database name at s, after blanks: an identifier (up to a blank, ';' or the end), or
 * a double-quoted one with InfluxQL's backslash escapes (Telegraf sends CREATE DATABASE
 * "telegraf"; "\n" is a newline, which db_remember does not list), into name[0..*len) (not
 * terminated; *len < size; 0 for ""). Returns the text after it; NULL for none, an unterminated
 * one, one of size bytes or more, or one with an escape InfluxQL refuses. */
static const char *db_name_parse(const char *s, char *name, size_t size, size_t *len)
{
    size_t n = 0;
    while (isspace((unsigned char)*s))
        s++;
    int quoted = *s == '"';
    if (quoted) {
        for (s++; *s != '"'; s++) {
            char c = *s;
            if (c == '\\') {
                c = *++s;
                if (c == 'n')
                    c = '\n';
                else if (c == '\0' || !strchr("\\\"'", c))
                    return NULL; /* an escape InfluxQL refuses, or the end */
            }
            if (c == '\0' || n + 1 == size)
                return NULL;
            name[n++] = c;
        }
        s++;
    } else {
        for (; *s != '\0' && *s != ';' && !isspace((unsigned char)*s); s++) {
            if (n + 1 == size)
                return NULL;
            name[n++] = *s;
        }
    }
    *len = n;
    return n > 0 || quoted ? s : NULL;
}

/* Whether only blanks and at most one ';' follow. */
static int statement_ends(const char *s)
{
    s += strspn(s, " \t\r\n");
    s += *s == ';';
    return s[strspn(s, " \t\r\n")] == '\0';
}

/* Answers SHOW DATABASES in InfluxDB 1.x's form: one series "databases" with a column "name"
 * and a row per remembered name, in the order of first use ("values" absent when none). */
static void show_databases(api_request_t *r)
{
    struct api_server *srv = r->srv;
    sbuf_t b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"databases\","
                    "\"columns\":[\"name\"]");
    pthread_mutex_lock(&srv->dbs_mu);
    for (int i = 0; i < srv->ndbs; i++) {
        sbuf_printf(&b, "%s", i == 0 ? ",\"values\":[[" : ",[");
        api__json_str(&b, srv->dbs[i]);
        sbuf_printf(&b, "]");
    }
    if (srv->ndbs > 0)
        sbuf_printf(&b, "]");
    pthread_mutex_unlock(&srv->dbs_mu);
    sbuf_printf(&b, "}]}]}\n");
    api__body(r, 200, "application/json", &b);
}

/* Appends d (ms, whole seconds) as Go's time.Duration prints it, as InfluxDB does: "0s",
 * "30s", "1m30s", "720h0m0s". */
static void go_duration(sbuf_t *b, int64_t ms)
{
    int64_t s = ms / 1000;
    if (s >= 3600)
        sbuf_printf(b, "%lldh%lldm%llds", (long long)(s / 3600), (long long)(s / 60 % 60),
                    (long long)(s % 60));
    else if (s >= 60)
        sbuf_printf(b, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
    else
        sbuf_printf(b, "%llds", (long long)s);
}

/* InfluxDB 1.x's shard group duration for a policy of duration ms (0: infinite): a week from
 * six months on and for infinite, a day from two days on, else an hour. */
static int64_t shard_group_ms(int64_t ms)
{
    const int64_t day = 86400000;
    if (ms == 0 || ms >= 180 * day)
        return 7 * day;
    return ms >= 2 * day ? day : 3600000;
}

/* Answers msg (then db, NULL: none) as InfluxDB answers a statement that failed: 200, with the
 * error in its one result. */
static void result_error(api_request_t *r, const char *msg, const char *db)
{
    sbuf_t b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"results\":[{\"statement_id\":0,\"error\":");
    char text[320];
    snprintf(text, sizeof text, "%s%s", msg, db ? db : "");
    api__json_str(&b, text);
    sbuf_printf(&b, "}]}\n");
    api__body(r, 200, "application/json", &b);
}

/* Answers SHOW RETENTION POLICIES [ON db] (rest: the text after the keywords) as InfluxDB 1.6.7
 * does: every database SHOW DATABASES lists has one policy, "autogen", the default, of
 * storage.retention's duration ("0s": kept forever); a database it does not list gets "database
 * not found: NAME", and without ON nor the db parameter, "database name required" (200 both). */
static void show_retention_policies(api_request_t *r, const char *rest)
{
    /* Longer names than SHOW DATABASES keeps are read, to be "not found" as in InfluxDB. */
    char name[256], dbuf[256];
    const char *db = name;
    size_t len = 0;
    const char *on = statement(rest, "ON", NULL);
    if (on != NULL) {
        rest = db_name_parse(on, name, sizeof name, &len);
        if (rest == NULL || !statement_ends(rest)) {
            api__error(r, 400,
                       "error parsing query: SHOW RETENTION POLICIES ON wants one database "
                       "name (of less than %zu bytes)",
                       sizeof name);
            return;
        }
        name[len] = '\0'; /* "": "database name required" below, as InfluxDB */
    } else if (!statement_ends(rest)) {
        api__error(r, 400, "error parsing query: SHOW RETENTION POLICIES takes only ON db");
        return;
    } else {
        db = api__arg(r, "db", dbuf, sizeof dbuf);
        if (r->status)
            return;
        len = db ? strlen(db) : 0;
    }
    if (len == 0) {
        result_error(r, "database name required", NULL);
        return;
    }
    if (!db_known(r->srv, db, len)) {
        result_error(r, "database not found: ", db);
        return;
    }
    int64_t ms = r->srv->opts.retention_ms;
    sbuf_t b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"results\":[{\"statement_id\":0,\"series\":[{\"columns\":[\"name\","
                    "\"duration\",\"shardGroupDuration\",\"replicaN\",\"default\"],\"values\":"
                    "[[\"autogen\",\"");
    go_duration(&b, ms);
    sbuf_printf(&b, "\",\"");
    go_duration(&b, shard_group_ms(ms));
    sbuf_printf(&b, "\",1,true]]}]}]}\n");
    api__body(r, 200, "application/json", &b);
}

/* Answers CREATE DATABASE (rest: the text after the keywords). What InfluxDB 1.6.7 cannot parse
 * is a 400 that keeps nothing; a second statement too (vigild answers one). WITH ... after the
 * name is not read (there is one store). A name that cannot be listed (too long, a control
 * character) is taken and not listed (db_remember); one the backend failed to keep is the
 * client's error. */
static void create_database(api_request_t *r, const char *rest)
{
    char name[256];
    size_t len = 0;
    const char *after = db_name_parse(rest, name, sizeof name, &len);
    if (after == NULL || !(statement_ends(after) || statement(after, "WITH", NULL))) {
        api__error(r, 400,
                   "error parsing query: CREATE DATABASE wants one database name (of less than "
                   "%zu bytes; quoted: with InfluxQL's escapes), then WITH ... or the end",
                   sizeof name);
        return;
    }
    if (len == 0) {
        result_error(r, "invalid name", NULL); /* InfluxDB's answer to "" */
        return;
    }
    int rc = db_remember(r->srv, name, len);
    if (rc) {
        api__backend_error(r, rc, "keeping the database name");
        return;
    }
    sbuf_t b;
    sbuf_init(&b);
    sbuf_append(&b, "{\"results\":[]}\n", 15);
    api__body(r, 200, "application/json", &b);
}

void api__h_query(api_request_t *r)
{
    char qbuf[1024];
    const char *q = api__arg(r, "q", qbuf, sizeof qbuf);
    if (r->status)
        return;
    if (q == NULL && r->body)
        q = form_q(r->body, r->len, qbuf, sizeof qbuf);
    if (q == NULL) {
        api__error(r, 400, "missing required parameter \"q\"");
        return;
    }
    const char *rest = statement(q, "CREATE", "DATABASE");
    if (rest != NULL && r->role >= 0 && r->role < API_ROLE_WRITE) {
        /* GET /query takes a read token (SHOW ...), but a name kept is a write to disk. */
        api__error(r, 403, "forbidden: a '%s' token cannot CREATE DATABASE (needs 'write')",
                   api_role_name((api_role_t)r->role));
        return;
    }
    if (rest != NULL) {
        create_database(r, rest);
        return;
    }
    rest = statement(q, "SHOW", "DATABASES");
    if (rest != NULL && statement_ends(rest)) {
        show_databases(r);
        return;
    }
    rest = statement(q, "SHOW", "RETENTION");
    if (rest != NULL && (rest = statement(rest, "POLICIES", NULL)) != NULL) {
        show_retention_policies(r, rest);
        return;
    }
    api__error(r, 400,
               "vigild answers only CREATE DATABASE, SHOW DATABASES and SHOW RETENTION POLICIES "
               "on /query; read readings through GET /v1/devices/{id}/readings");
}

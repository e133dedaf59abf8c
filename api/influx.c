/* api/influx.c: the InfluxDB v1 compatible endpoints, so Telegraf and the influx client write
 * to vigild unchanged: POST /write (line protocol, partial writes) and the database names
 * SHOW DATABASES lists. The line-protocol write itself (api__lp_write: parse, limits, store,
 * partial writes) is shared with InfluxDB 2's POST /api/v2/write (influx_v2.c), which differs
 * only in its parameters and its error form. POST|GET /query (CREATE DATABASE, SHOW DATABASES
 * and SHOW RETENTION POLICIES, read as influxd 1.6.7 reads InfluxQL) is in influxql.c, /ping
 * in server.c. Any thread.
 *
 * vigild has one store, so a database chooses nothing; but the influx shell's USE asks SHOW
 * DATABASES and refuses a name it does not list (and USE db.rp asks SHOW RETENTION POLICIES ON
 * db). So the server remembers the names CREATE DATABASE, /write?db= and /api/v2/write's
 * bucket have used (srv->dbs, under dbs_mu) and lists them: the database Telegraf writes to is
 * there as soon as it created it or wrote, as in InfluxDB. The backend keeps them (be.db_add,
 * once per new name) and gives them back at the next start (be.db_list), so USE works after a
 * restart too. Every database has one retention policy, "autogen", whose duration is
 * storage.retention's. */
#include "api_int.h"
#include "err.h"
#include "log.h"
#include "vtime.h"

#include <stdint.h>
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

int api__db_known(struct api_server *srv, const char *name, size_t len)
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

/* A new name is kept by the backend first (outside dbs_mu: it waits for a commit), so one
 * listed is one a restart lists too. New names go one at a time (dbs_add_mu): first uses at
 * once of several names near the bound would otherwise all be kept and only some listed, and
 * a restart would list others. */
int api__db_remember(struct api_server *srv, const char *name, size_t len)
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
 * were left out since. A cause has a slot of its own while one is free, or idle (its last one
 * logged WARN_EVERY_MS ago or more, none left out since: reusing it loses nothing); others
 * share the last slot, limited together whatever their cause, so that causes taking turns
 * there are not each logged at once every time. */
#define WARN_EVERY_MS 60000
#define WARN_CAUSES   4

static pthread_mutex_t warn_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int cause;            /* an err code of the last one logged; 0: the slot is free */
    int64_t last_ms;      /* vtime_mono_ms() of the last one logged */
    unsigned suppressed;  /* left out since then */
    int mixed;            /* some of those left out had another cause (the shared slot) */
} warn_slot[WARN_CAUSES]; /* guarded by warn_mu */

/* The slot of cause at now: its own, else a free or idle one, else the last (shared). Under
 * warn_mu. */
static int warn_slot_of(int cause, int64_t now)
{
    for (int i = 0; i < WARN_CAUSES; i++)
        if (warn_slot[i].cause == cause)
            return i;
    for (int i = 0; i < WARN_CAUSES; i++)
        if (warn_slot[i].cause == 0 ||
            (now - warn_slot[i].last_ms >= WARN_EVERY_MS && warn_slot[i].suppressed == 0))
            return i;
    return WARN_CAUSES - 1;
}

/* Logs "what: err_str(cause)" unless one was logged from its slot less than WARN_EVERY_MS ago
 * (then counts it). Any thread. */
static void warn_limited(const char *what, int cause)
{
    int64_t now = vtime_mono_ms();
    unsigned left_out = 0;
    int log_it = 0, mixed = 0;
    int64_t since_ms = 0;
    pthread_mutex_lock(&warn_mu);
    int i = warn_slot_of(cause, now);
    if (warn_slot[i].cause == 0 || now - warn_slot[i].last_ms >= WARN_EVERY_MS) {
        left_out = warn_slot[i].suppressed;
        mixed = warn_slot[i].mixed;
        since_ms = now - warn_slot[i].last_ms;
        warn_slot[i].cause = cause;
        warn_slot[i].last_ms = now;
        warn_slot[i].suppressed = 0;
        warn_slot[i].mixed = 0;
        log_it = 1;
    } else {
        warn_slot[i].suppressed++;
        warn_slot[i].mixed |= warn_slot[i].cause != cause;
    }
    pthread_mutex_unlock(&warn_mu);
    if (log_it && left_out > 0)
        log_warn("%s: %s (%u more %sin the last %lld s, not logged)", what, err_str(cause),
                 left_out, mixed ? "of this or other causes " : "like it ",
                 (long long)(since_ms / 1000));
    else if (log_it)
        log_warn("%s: %s", what, err_str(cause));
}

/* Remembers the database name[0..len) a write stored points under (/write's db, /api/v2/write's
 * bucket). Never refuses the request: the name chooses nothing, so one that cannot be kept (too
 * long, a NUL, or the backend failed to keep it) is only not listed. A backend failure is
 * logged rate-limited: it lasts (a full disk) and every write retries. */
static void db_remember_used(api_request_t *r, const char *name, size_t len)
{
    int rc = name && len > 0 ? api__db_remember(r->srv, name, len) : 0;
    if (rc)
        warn_limited(r->route == ROUTE_WRITE_V2
                         ? "influx: cannot keep the database name of /api/v2/write?bucket="
                         : "influx: cannot keep the database name of /write?db=",
                     rc);
}

/* Whether /write's rp parameter names a policy vigild lists: none, empty, or "autogen" (the
 * only one SHOW RETENTION POLICIES answers). Otherwise answers influxd 1.6.7's words and
 * status for a policy it does not have (observed: 500 {"error":"retention policy not found:
 * NAME"}, the name percent-decoded, case kept) and returns 0. A name longer than 255 bytes or
 * holding a NUL byte gets the same 500, not api__arg's 400 (Telegraf drops a batch answered
 * 400, but keeps and retries one answered 500, as against influxd); its words are influxd's
 * up to api__error's length, and a NUL byte is said rather than printed. */
static int rp_known(api_request_t *r)
{
    const char *raw = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "rp");
    if (raw == NULL)
        return 1;
    size_t rawlen = strlen(raw);
    char small[256]; /* the common case: no allocation */
    char *rp = rawlen < sizeof small ? small : malloc(rawlen + 1); /* decoding never grows */
    if (rp == NULL) {
        api__error(r, 500, "out of memory");
        return 0;
    }
    long n = api__pct_decode(raw, rawlen, rp, rawlen + 1, 1);
    int known = n == 0 || (n > 0 && strcmp(rp, "autogen") == 0);
    if (n < 0)
        api__error(r, 500, "retention policy not found: (a name holding a NUL byte)");
    else if (!known)
        api__error(r, 500, "retention policy not found: %s", rp);
    if (rp != small)
        free(rp);
    return known;
}

/* Whether /write's consistency parameter is a level influxd 1.6.7 takes: none, empty, or any,
 * one, quorum or all in any case (vigild is one node: the level chooses nothing). Otherwise
 * answers influxd's 400 {"error":"invalid consistency level"} (a NUL byte or a longer value
 * included) and returns 0. influxd asks this after the body parsed, before the policy. */
static int consistency_known(api_request_t *r)
{
    static const char *const levels[] = {"", "any", "one", "quorum", "all"};
    const char *raw = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "consistency");
    if (raw == NULL)
        return 1;
    char level[8];
    if (api__pct_decode(raw, strlen(raw), level, sizeof level, 1) >= 0)
        for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
            if (strcasecmp(level, levels[i]) == 0)
                return 1;
    api__error(r, 400, "invalid consistency level");
    return 0;
}

/* /write's checks after the parse (see api__h_write): the consistency level, then the policy. */
static int v1_params_known(api_request_t *r)
{
    return consistency_known(r) && rp_known(r);
}

void api__h_write(api_request_t *r)
{
    char pbuf[16];
    const char *p = api__arg(r, "precision", pbuf, sizeof pbuf);
    if (r->status)
        return;
    api_lp_write_t w = {.precision = LP_NS, .check = v1_params_known,
                        .unit = p && *p ? LP_UNIT_DECLARED : LP_UNIT_IMPLIED_PARAM};
    if (p && lp_precision_parse(p, &w.precision)) {
        api__error(r, 400, "parameter 'precision': '%s' is not one of n, ns, u, us, ms, s, m, h", p);
        return;
    }
    const char *raw = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "db");
    char db[API_DB_NAME_MAX + 1];
    long n = raw ? api__pct_decode(raw, strlen(raw), db, sizeof db, 1) : -1;
    if (n > 0) {
        w.db = db;
        w.db_len = (size_t)n;
    }
    api__lp_write(r, &w);
}

void api__lp_write(api_request_t *r, const api_lp_write_t *w)
{
    struct api_server *srv = r->srv;
    lp_opts_t lo = {.device_tag = srv->opts.device_tag,
                    .precision = w->precision,
                    .max_line = 0,
                    .unit = w->unit};
    char *body;
    size_t len;
    int owned;
    /* InfluxDB reads any Content-Type; its charset is read here as on the JSON routes (session
     * 68: a Latin-1 body declared so was read as UTF-8, each line with a Latin-1 letter refused
     * as "not valid UTF-8", the declared charset never named). */
    if (!api__charset_ok(r, 1) || api__request_body(r, &body, &len, &owned))
        return;
    if (!api__body_utf8_ok(r, body, len)) {
        if (owned)
            free(body);
        return;
    }
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
    int rc = errs ? lp_parse(&b, body, len, &lo, vtime_stamp_ms(), 1, errs) : ERR_NOMEM;
    if (owned)
        free(body);
    if (rc) {
        api__error(r, 500, "parsing line protocol: %s", err_str(rc));
        goto out;
    }
    /* influxd parses the body first: a body of bad lines only gets its parse errors (below),
     * any other one the bad consistency level's, then the unknown policy's error, with nothing
     * stored. */
    if (!(errs->parsed == 0 && errs->count > 0) && w->check && !w->check(r))
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
        /* only a write that stored points uses its db (not a refused one) */
        db_remember_used(r, w->db, w->db_len);
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

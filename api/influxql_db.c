/* api/influxql_db.c: /query's database statements, what Telegraf and the influx shell ask of
 * it: CREATE DATABASE (with its WITH clause), SHOW DATABASES and SHOW RETENTION POLICIES,
 * answered as influxd 1.6.7 answers them. The names these list and keep are influx.c's
 * (srv->dbs: api__db_known, api__db_remember); vigild keeps no retention policy, so a WITH
 * clause is only checked, and every database has one policy, "autogen", of
 * storage.retention's duration.
 *
 * Each statement is called by influxql.c's q_statements with s just after its keywords, and
 * reads the rest with influxql.c's token reader (api__qs_next), so a typo gets influxd's parse
 * error; run NULL is the first pass, which only reads. Any thread; the one lock is influx.c's
 * dbs_mu (inside the two calls, and around SHOW DATABASES's walk of srv->dbs). */
#include "influxql.h"

#include <stdint.h>
#include <string.h>

/* Reads a database name into t (t->text, t->len). Returns 0, or answers the error and -1. */
static int expect_name(api_request_t *r, qscan_t *s, qtoken_t *t)
{
    api__qs_next(s, t);
    if (t->kind != QT_IDENT) {
        api__q_parse_error(r, t, "identifier");
        return -1;
    }
    return 0;
}

/* SHOW DATABASES (s: after its keywords) in InfluxDB 1.x's form: one series "databases" with a
 * column "name" and a row per remembered name, in the order of first use ("values" absent when
 * none); what follows it, influxd's parse error. run NULL: only read. Returns 0 or -1 (the
 * answer set). */
int api__iq_show_databases(api_request_t *r, qscan_t *s, qrun_t *run)
{
    qtoken_t t;
    api__qs_next(s, &t);
    if (api__q_expect_end(r, &t))
        return -1;
    if (run == NULL)
        return 0;
    struct api_server *srv = r->srv;
    api__q_result_open(run);
    sbuf_printf(&run->b, ",\"series\":[{\"name\":\"databases\",\"columns\":[\"name\"]");
    pthread_mutex_lock(&srv->dbs_mu);
    for (int i = 0; i < srv->ndbs; i++) {
        sbuf_printf(&run->b, "%s", i == 0 ? ",\"values\":[[" : ",[");
        api__iq_str(&run->b, srv->dbs[i]);
        sbuf_printf(&run->b, "]");
    }
    if (srv->ndbs > 0)
        sbuf_printf(&run->b, "]");
    pthread_mutex_unlock(&srv->dbs_mu);
    sbuf_printf(&run->b, "}]");
    return 0;
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

/* SHOW RETENTION POLICIES [ON db] (s: after its keywords) as InfluxDB 1.6.7 answers it: every
 * database SHOW DATABASES lists has one policy, "autogen", the default, of storage.retention's
 * duration ("0s": kept forever); a database it does not list is the statement error "database
 * not found: NAME", and without ON nor the db parameter, "database name required"; what influxd
 * cannot parse, its parse error (400). run NULL: only read. Returns 0, 1 (failed: run->err), or
 * -1 (the answer set). */
int api__iq_show_retention_policies(api_request_t *r, qscan_t *s, qrun_t *run)
{
    char dbuf[256];
    qtoken_t t;
    api__qs_next(s, &t);
    const char *db = t.text;
    size_t len = 0;
    if (api__q_is(&t, "ON")) {
        /* Longer names than SHOW DATABASES keeps are read, to be "not found" as in InfluxDB;
         * "" is "database name required" below, as in InfluxDB. */
        if (expect_name(r, s, &t))
            return -1;
        db = t.text; /* t is now the name: its text is another */
        len = t.len;
        qtoken_t after;
        api__qs_next(s, &after);
        if (api__q_expect_end(r, &after))
            return -1;
    } else {
        if (api__q_expect_end(r, &t))
            return -1;
        db = api__iq_arg(r, "db", dbuf, sizeof dbuf);
        if (r->status)
            return -1;
        len = db ? strlen(db) : 0;
    }
    if (run == NULL)
        return 0;
    if (len == 0)
        return api__q_result_error(run, "database name required", NULL);
    if (!api__db_known(r->srv, db, len))
        return api__q_result_error(run, "database not found: ", db);
    int64_t ms = __atomic_load_n(&r->srv->opts.retention_ms, __ATOMIC_RELAXED);
    api__q_result_open(run);
    sbuf_printf(&run->b, ",\"series\":[{\"columns\":[\"name\",\"duration\","
                         "\"shardGroupDuration\",\"replicaN\",\"default\"],\"values\":"
                         "[[\"autogen\",\"");
    go_duration(&run->b, ms);
    sbuf_printf(&run->b, "\",\"");
    go_duration(&run->b, shard_group_ms(ms));
    sbuf_printf(&run->b, "\",1,true]]}]");
    return 0;
}

/* Reads CREATE DATABASE's WITH clause (after WITH) as influxd 1.6.7's parser does: at least one
 * of DURATION d, REPLICATION n, SHARD DURATION d and NAME rp, in that order, then the end.
 * *duration and *shard: the policy's and its shard groups' durations in ns (0: not given, or
 * INF). vigild keeps no policy, so the values are only checked. Returns 0, or answers the parse
 * error and -1. */
static int with_clause(api_request_t *r, qscan_t *s, int64_t *duration, int64_t *shard)
{
    qtoken_t t;
    *duration = *shard = 0;
    api__qs_next(s, &t);
    if (!api__q_is(&t, "DURATION") && !api__q_is(&t, "REPLICATION") && !api__q_is(&t, "SHARD") &&
        !api__q_is(&t, "NAME")) {
        api__q_parse_error(r, &t, "DURATION, NAME, REPLICATION, SHARD");
        return -1;
    }
    if (api__q_is(&t, "DURATION")) {
        if (api__q_expect_duration(r, s, &t, duration))
            return -1;
        api__qs_next(s, &t);
    }
    if (api__q_is(&t, "REPLICATION")) {
        if (api__q_expect_int(r, s, &t, 1, INT32_MAX))
            return -1;
        api__qs_next(s, &t);
    }
    if (api__q_is(&t, "SHARD")) {
        api__qs_next(s, &t);
        if (!api__q_is(&t, "DURATION")) {
            api__q_parse_error(r, &t, "DURATION");
            return -1;
        }
        if (api__q_expect_duration(r, s, &t, shard))
            return -1;
        api__qs_next(s, &t);
    }
    if (api__q_is(&t, "NAME")) {
        if (expect_name(r, s, &t))
            return -1;
        api__qs_next(s, &t);
    }
    return api__q_expect_end(r, &t);
}

/* CREATE DATABASE (s: after its keywords) as InfluxDB 1.6.7 answers it: {"statement_id":N}.
 * What influxd cannot parse (in the WITH clause too) is its parse error (400). A policy influxd
 * would refuse to create (under an hour, or shorter than its shard groups) is influxd's
 * statement error, and keeps nothing, as there. A name that cannot be listed (too long, a
 * control character) is taken and not listed (api__db_remember); one the backend failed to keep is
 * the client's error (the request's answer). run NULL: only read. Returns 0, 1 (failed:
 * run->err), or -1 (the answer set). */
int api__iq_create_database(api_request_t *r, qscan_t *s, qrun_t *run)
{
    qtoken_t name, t;
    int64_t duration = 0, shard = 0;
    if (expect_name(r, s, &name))
        return -1;
    api__qs_next(s, &t);
    if (api__q_is(&t, "WITH")) {
        if (with_clause(r, s, &duration, &shard))
            return -1;
    } else if (api__q_expect_end(r, &t)) {
        return -1;
    }
    if (run == NULL)
        return 0;
    if (name.len == 0)
        return api__q_result_error(run, "invalid name", NULL); /* InfluxDB's answer to "" */
    /* A bound negative duration ("-5h") too, as influxd refuses it. */
    if (duration != 0 && duration < 3600000000000)
        return api__q_result_error(run, "retention policy duration must be at least 1h0m0s", NULL);
    if (duration > 0 && shard > duration)
        return api__q_result_error(run,
                                   "retention policy duration must be greater than the shard "
                                   "duration",
                                   NULL);
    int rc = api__db_remember(r->srv, name.text, name.len);
    if (rc) {
        api__backend_error(r, rc, "keeping the database name");
        return -1;
    }
    api__q_result_open(run);
    return 0;
}

void api_set_retention(api_server_t *srv, int64_t retention_ms)
{
    __atomic_store_n(&srv->opts.retention_ms, retention_ms, __ATOMIC_RELAXED);
}

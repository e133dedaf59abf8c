/* storage/dbnames.c: the database names InfluxDB clients registered (schema 8's dbnames table).
 *
 * Why a table: vigild has one store, so an InfluxDB database name chooses nothing, but the
 * influx shell's USE refuses a name SHOW DATABASES does not list. The API kept the names in
 * memory only, so after a restart `USE telegraf` failed until something wrote to it again.
 *
 * Invariants: a name is a row once (UNIQUE); seq (the rowid) grows with each new name, so
 * ORDER BY seq is the order of first use. A name is written once, by a waited job on the writer
 * (store_dbname_put in storage.c), the caller having checked it is new: no per-request cost.
 *
 * Threads: store__dbname_write on the writer thread; store_dbnames_load on any thread, on a
 * reader connection. */
#include "err.h"
#include "storage_int.h"

#include <stdint.h>

const char store__sql_dbname_ins[] = "INSERT INTO dbnames(name) VALUES(?1) ON CONFLICT DO NOTHING";

int store__dbname_write(store_t *s, store_job_t *j)
{
    sqlite3_bind_text(s->w.dbname_ins, 1, j->text, -1, SQLITE_STATIC);
    return store__step_done(s, s->w.dbname_ins);
}

int store_dbnames_load(store_t *s, size_t max, store_dbname_cb cb, void *arg)
{
    store_reader_t *r = store__reader_get(s);
    sqlite3_stmt *st = NULL;
    /* Read once at start-up: a statement prepared for the call, not kept on every reader. */
    int rc =
        sqlite3_prepare_v2(r->db, "SELECT name FROM dbnames ORDER BY seq LIMIT ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, max == 0 || max > INT64_MAX ? -1 : (int64_t)max);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            if (cb(arg, (const char *)sqlite3_column_text(st, 0)) != 0) {
                rc = SQLITE_DONE;
                break;
            }
    }
    int err = 0;
    if (rc != SQLITE_DONE) {
        err = store__status(r->db, rc) == ERR_NOMEM ? ERR_NOMEM : ERR_IO;
        store__set_errmsg(s, "reading database names: %s", sqlite3_errmsg(r->db));
    }
    sqlite3_finalize(st);
    store__reader_put(s, r);
    return err;
}

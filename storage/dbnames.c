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
 * Threads: store__dbname_write on the writer thread. The names are read back by
 * store_dbnames_load (query.c, with the other reads: in a read transaction of its own). */
#include "storage_int.h"

const char store__sql_dbname_ins[] = "INSERT INTO dbnames(name) VALUES(?1) ON CONFLICT DO NOTHING";

int store__dbname_write(store_t *s, store_job_t *j)
{
    sqlite3_bind_text(s->w.dbname_ins, 1, j->text, -1, SQLITE_STATIC);
    return store__step_done(s, s->w.dbname_ins);
}

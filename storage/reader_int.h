/* storage/reader_int.h: reader.c's read transactions, for the storage/ files that read
 * (query.c); not part of the public API. store__reader_get, store__reader_put and
 * store__json_object are in storage_int.h. Any thread; r is a reader connection the caller
 * took (store__reader_get, store__reader_take) and has not put back. */
#ifndef VIGIL_READER_INT_H
#define VIGIL_READER_INT_H

#include "storage_int.h"

#include <sqlite3.h>
#include <stdint.h>

/* Takes a reader connection, waiting for one no later than deadline_us (vtime_mono_us's clock;
 * 0: without bound). Returns 0 with *out set, or ERR_AGAIN (message set) when the deadline
 * passed with every connection busy. */
int store__reader_take(store_t *s, int64_t deadline_us, store_reader_t **out);
/* SQLite's rc on r as a status (ERR_IO for a full disk or none), the message set naming what. */
int store__read_fail(store_t *s, store_reader_t *r, int rc, const char *what);
/* Begins a read transaction (a new snapshot). Returns 0 or the failure (message set). */
int store__read_begin(store_t *s, store_reader_t *r);
/* Ends the read transaction and puts r back (a COMMIT that fails is rolled back, logged). */
void store__read_end(store_t *s, store_reader_t *r);
/* The public face of a read's status: the documented codes, anything else ERR_IO. */
int store__read_status(int err);
/* A device's id by name inside r's transaction. Returns 0, ERR_NOTFOUND or a failure. */
int store__device_id(store_t *s, store_reader_t *r, const char *name, int64_t *id);
/* Begins r's transaction and binds device's id to st's first parameter. Returns 0,
 * ERR_NOTFOUND (no such device) or a failure; on failure st is left unbound. */
int store__read_on_device(store_t *s, store_reader_t *r, const char *device, sqlite3_stmt *st);
/* store__read_end, then store__read_status(err). */
int store__read_done(store_t *s, store_reader_t *r, int err);
/* Ends a row loop that stopped with rc: resets st and returns 0 or the failure. */
int store__rows_end(store_t *s, store_reader_t *r, sqlite3_stmt *st, int rc, const char *what);

/* A text column that the schema declares NOT NULL JSON; "{}" if SQLite hands back NULL. */
static inline const char *store__json_col(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t ? t : "{}";
}

#endif

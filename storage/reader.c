/* storage/reader.c: the reader pool and the read transactions every read runs in (query.c's
 * queries and reports): a reader connection taken and put back, BEGIN and COMMIT with their
 * failures, a device's id by name and the public face of a read's status.
 *
 * Invariants: a reader connection belongs to at most one thread at a time (taken from the free
 * list under rmu) and goes back to the pool outside any read transaction (store__read_end
 * rolls back one its COMMIT could not end, or the next store__read_begin does).
 *
 * Threads: any thread. */
#include "storage_int.h"
#include "reader_int.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Takes a reader connection for a call with a deadline (deadline_us, vtime_mono_us's clock; 0:
 * none, a wait without bound): every connection busy (slow callbacks, a burst of reads), it
 * waits for one no later than the deadline, as the call's waits for the writer do
 * (store__wait_deadline), so that an InfluxQL query answers its timeout on time instead of
 * queueing for the pool without bound. A free connection is taken even after the deadline: only
 * a wait is cut. Returns 0 with *out set, or ERR_AGAIN (the code of the call's other waits
 * ended by its deadline: api/ answers it as the query's timeout) with the message set; never
 * ERR_AGAIN without a deadline. */
int store__reader_take(store_t *s, int64_t deadline_us, store_reader_t **out)
{
    struct timespec dl;
    if (deadline_us > 0)
        store__wait_deadline(&dl, INT32_MAX, deadline_us); /* rcond is monotonic (mcond_init) */
    pthread_mutex_lock(&s->rmu);
    int rc = 0;
    while (s->rfree == NULL && rc != ETIMEDOUT)
        rc = deadline_us > 0 ? pthread_cond_timedwait(&s->rcond, &s->rmu, &dl)
                             : pthread_cond_wait(&s->rcond, &s->rmu);
    store_reader_t *r = s->rfree;
    if (r != NULL)
        s->rfree = r->next_free;
    pthread_mutex_unlock(&s->rmu);
    *out = r;
    if (r != NULL)
        return 0;
    store__set_errmsg(s, "timed out waiting for a reader connection (all %d busy)",
                      s->opts.readers);
    return ERR_AGAIN;
}

/* A reader connection for a call with no deadline: store__reader_take's wait without bound. */
store_reader_t *store__reader_get(store_t *s)
{
    store_reader_t *r = NULL;
    store__reader_take(s, 0, &r);
    return r;
}

void store__reader_put(store_t *s, store_reader_t *r)
{
    pthread_mutex_lock(&s->rmu);
    r->next_free = s->rfree;
    s->rfree = r;
    pthread_cond_signal(&s->rcond);
    pthread_mutex_unlock(&s->rmu);
}

int store__read_fail(store_t *s, store_reader_t *r, int rc, const char *what)
{
    int err = store__status(r->db, rc);
    store__set_errmsg(s, "%s: %s", what, sqlite3_errmsg(r->db));
    return err == ERR_NOSPACE || err == 0 ? ERR_IO : err;
}

/* Begins a read transaction (a new snapshot). A transaction store__read_end could not end (its
 * COMMIT and its ROLLBACK failed) is rolled back first: the connection never reads in that old
 * snapshot, nor fails every later read on BEGIN ("cannot start a transaction within a
 * transaction"); if the ROLLBACK fails again, this read fails, saying so. */
int store__read_begin(store_t *s, store_reader_t *r)
{
    int rc;
    if (!sqlite3_get_autocommit(r->db) &&
        (rc = sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL)) != SQLITE_OK)
        return store__read_fail(s, r, rc,
                                "ending the reader connection's previous read (ROLLBACK)");
    rc = sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : store__read_fail(s, r, rc, "BEGIN");
}

/* Ends the read transaction and returns the reader. A read-only transaction has nothing to
 * commit, but its COMMIT can still fail (SQLite out of memory preparing or running it, say):
 * the connection would go back to the pool inside it, its snapshot pinned (the WAL's
 * checkpoint held back) and the next BEGIN failing. It is rolled back instead; if that fails
 * too, the next store__read_begin tries again, and it is logged (the read itself was made: its
 * answer stands). Logged once per connection until a ROLLBACK or COMMIT ends it (r->stuck), and
 * that end too: while the ROLLBACK keeps failing, every read on the connection fails in
 * store__read_begin and ends here again, and a line per read would flood the log. */
void store__read_end(store_t *s, store_reader_t *r)
{
    if (!sqlite3_get_autocommit(r->db) &&
        sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK &&
        !sqlite3_get_autocommit(r->db)) {
        char why[256];
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(r->db));
        if (sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK &&
            !sqlite3_get_autocommit(r->db) && !r->stuck) {
            r->stuck = 1;
            log_warn("storage: a read transaction did not end (COMMIT: %s; ROLLBACK: %s); the "
                     "connection's next read rolls it back first, or fails (logged once until "
                     "it ends)",
                     why, sqlite3_errmsg(r->db));
        }
    }
    if (r->stuck && sqlite3_get_autocommit(r->db)) {
        r->stuck = 0;
        log_warn("storage: the read transaction that did not end is rolled back; the "
                 "connection reads again");
    }
    store__reader_put(s, r);
}

/* The public face of a read's status: the documented codes, anything else ERR_IO. ERR_LOCKED
 * passes (session 55): a reader's SQLITE_BUSY past the busy timeout is another process's
 * recovery of the WAL index holding its locks (WAL mode blocks readers for nothing else), said
 * as the writes say it (503, Retry-After), not a 500 "I/O error". */
int store__read_status(int err)
{
    return err == 0 || err == ERR_NOTFOUND || err == ERR_INVAL || err == ERR_NOMEM ||
                   err == ERR_AGAIN || err == ERR_UNPUBLISHED || err == ERR_LOCKED
               ? err
               : ERR_IO;
}

/* Finds a device's id by name inside the reader's transaction. Returns 0, ERR_NOTFOUND or a
 * failure. */
int store__device_id(store_t *s, store_reader_t *r, const char *name, int64_t *id)
{
    sqlite3_bind_text(r->dev_by_name, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(r->dev_by_name), err = 0;
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(r->dev_by_name, 0);
    else
        err = rc == SQLITE_DONE ? ERR_NOTFOUND : store__read_fail(s, r, rc, "reading device");
    sqlite3_reset(r->dev_by_name);
    sqlite3_clear_bindings(r->dev_by_name);
    return err;
}

/* Begins the reader's transaction and binds device's id to st's first parameter. Returns 0,
 * ERR_NOTFOUND (no such device) or a failure; on failure st is left unbound. */
int store__read_on_device(store_t *s, store_reader_t *r, const char *device, sqlite3_stmt *st)
{
    int64_t dev = 0;
    int err = store__read_begin(s, r);
    if (err == 0)
        err = store__device_id(s, r, device, &dev);
    if (err == 0)
        sqlite3_bind_int64(st, 1, dev);
    return err;
}

/* Ends the read (store__read_end) and returns store__read_status(err). */
int store__read_done(store_t *s, store_reader_t *r, int err)
{
    store__read_end(s, r);
    return store__read_status(err);
}

/* Ends a row loop that stopped with rc: resets st and returns 0 or the failure. */
int store__rows_end(store_t *s, store_reader_t *r, sqlite3_stmt *st, int rc, const char *what)
{
    int err = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store__read_fail(s, r, rc, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

/* No read transaction (store__read_begin): the statement reads no table, only its argument, so the
 * snapshot of a transaction left open (store__read_end) cannot change its answer. */
int store__json_object(store_t *s, const char *text)
{
    store_reader_t *r = store__reader_get(s);
    sqlite3_bind_text(r->json_obj, 1, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(r->json_obj), err;
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(r->json_obj, 0);
        err = t != NULL && strcmp((const char *)t, "object") == 0 ? 0 : ERR_INVAL;
    } else {
        err = store__read_fail(s, r, rc, "checking attributes");
    }
    sqlite3_reset(r->json_obj);
    sqlite3_clear_bindings(r->json_obj);
    store__reader_put(s, r);
    return err;
}

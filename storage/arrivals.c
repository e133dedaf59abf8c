/* storage/arrivals.c: the devices' arrivals (schema 11's arrivals table): the batched put the
 * daemon queues (periodically and at its stop), its write on the writer, and the start-up load.
 *
 * A put is one asynchronous job however many devices it holds: the records are packed into the
 * job's blob (three int64 values, the name's length as a uint32, the name and its NUL), so a
 * fleet's flush costs one queue entry and one pass of upserts inside the writer's next
 * transaction, not a job or a transaction a device. A device the store does not know (deleted
 * since the flush read it) is skipped, as every asynchronous put does (ops.c); a deleted
 * device's row is deleted with it (writer.c's do_delete).
 *
 * Threads: store_arrivals_put and store_arrivals_load any thread; store__arrivals_write the
 * writer thread only. */
#include "storage_int.h"
#include "reader_int.h"
#include "batch.h"
#include "err.h"
#include "log.h"
#include "vtime.h"

#include <stdlib.h>
#include <string.h>

#define REC_HEAD (3 * sizeof(int64_t) + sizeof(uint32_t))

int store_arrivals_put(store_t *s, const store_arrival_t *v, size_t n)
{
    if (n == 0)
        return 0;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const char *why;
        size_t len = v[i].device ? strlen(v[i].device) : 0;
        if (v[i].device == NULL || batch_name_check(v[i].device, len, &why) != 0)
            return ERR_INVAL;
        bytes += REC_HEAD + len + 1;
    }
    store_job_t *j = calloc(1, sizeof *j);
    if (j == NULL || (j->blob = malloc(bytes)) == NULL) {
        free(j);
        return ERR_NOMEM;
    }
    j->kind = JOB_ARRIVALS;
    j->blob_len = bytes;
    j->u.arrivals.n = n;
    j->op_bytes = sizeof *j + bytes;
    unsigned char *w = j->blob;
    for (size_t i = 0; i < n; i++) {
        int64_t head[3] = {v[i].seen_ms, v[i].last_ms, v[i].last_ts};
        uint32_t len = (uint32_t)strlen(v[i].device);
        memcpy(w, head, sizeof head);
        memcpy(w + sizeof head, &len, sizeof len);
        memcpy(w + REC_HEAD, v[i].device, len + 1);
        w += REC_HEAD + len + 1;
    }
    return store__op_enqueue(s, j);
}

int store__arrivals_write(store_t *s, store_job_t *j)
{
    store_writer_t *w = &s->w;
    const unsigned char *r = j->blob;
    size_t skipped = 0;
    const double t0 = vtime_mono_s();
    for (size_t i = 0; i < j->u.arrivals.n; i++) {
        int64_t head[3];
        uint32_t len;
        memcpy(head, r, sizeof head);
        memcpy(&len, r + sizeof head, sizeof len);
        const char *name = (const char *)r + REC_HEAD;
        r += REC_HEAD + len + 1;
        store_dev_t *d =
            store__devidx_find(&w->didx, store__devidx_key(&w->didx, name, len), name, len);
        if (d == NULL) {
            skipped++;
            continue;
        }
        sqlite3_bind_int64(w->arr_put, 1, d->id);
        for (int k = 0; k < 3; k++)
            sqlite3_bind_int64(w->arr_put, k + 2, head[k]);
        int err = store__step_done(s, w->arr_put);
        if (err)
            return err;
    }
    if (skipped)
        log_debug("storage: arrivals of %zu unknown devices ignored", skipped);
    /* Counted in the stats when the transaction commits (writer.c's account). */
    w->tx_arr_seconds += vtime_mono_s() - t0;
    w->tx_arr_rows += j->u.arrivals.n - skipped;
    w->tx_ops++;
    return 0;
}

int store_arrivals_load(store_t *s, store_arrival_cb cb, void *arg)
{
    store_reader_t *r = store__reader_get(s);
    sqlite3_stmt *st = r->arr_all;
    int err = store__read_begin(s, r);
    if (err == 0) {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            store_arrival_t a = {(const char *)sqlite3_column_text(st, 0),
                                 sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                                 sqlite3_column_int64(st, 3)};
            if (cb(arg, &a) != 0)
                break;
        }
        err = store__rows_end(s, r, st, rc, "reading arrivals");
    }
    return store__read_done(s, r, err);
}

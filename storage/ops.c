/* storage/ops.c: the writer's writes of the asynchronous puts (storage.h's store_model_put,
 * store_event_put, store_maint_put / store_maint_delete, store_detector_put, store_pred_put /
 * store_preds_drop), each inside the writer's open transaction (writer.c's run_job).
 *
 * An asynchronous put never fails its transaction for its own input: an unknown device (deleted
 * since the put: readings create devices) or a non-object info makes it a no-op, counted in
 * tx_ops_skipped, so other clients' readings are not rolled back for it. A put written counts
 * in tx_ops. Only the puts ops_queued counts (store__job_async) are counted, each once, written
 * or skipped (failed: account, writer.c): a maintenance change (JOB_MAINT, JOB_MAINT_DEL) is
 * waited for, not queued, and counting it let ops_written + ops_skipped + ops_failed run ahead
 * of the queue, which the restore's retry reads as a FIFO mark (pipeline_restart_retry.c).
 *
 * Threads: the writer thread only. */
#include "storage_int.h"
#include "err.h"
#include "log.h"

#include <string.h>

/* The device of an asynchronous put, or NULL (logged) when it does not exist: readings create
 * devices, so it was deleted, and the put is moot. */
static store_dev_t *op_device(store_t *s, store_job_t *j, const char *what)
{
    size_t len = strlen(j->device);
    store_dev_t *d = store__devidx_find(&s->w.didx, store__devidx_key(&s->w.didx, j->device, len),
                                        j->device, len);
    if (d == NULL) {
        log_debug("storage: %s for unknown device \"%s\" ignored", what, j->device);
        s->w.tx_ops_skipped += store__job_async(j); /* a maintenance change is not a queued put */
    }
    return d;
}

/* Runs an upsert whose SELECT yields no row when info is not a JSON object: the put is skipped,
 * not the transaction failed, since everyone else's readings share it. */
static int op_upsert(store_t *s, sqlite3_stmt *st, store_job_t *j, const char *what)
{
    int err = store__step_done(s, st);
    if (err)
        return err;
    if (sqlite3_changes(s->w.db) == 0) {
        log_warn("storage: %s for device \"%s\" ignored: info is not a JSON object", what,
                 j->device);
        s->w.tx_ops_skipped++;
    } else {
        s->w.tx_ops++;
    }
    return 0;
}

/* The shared checkpoint row of p[len] (ckpt.c) into *id; 0 when p is NULL (none). */
static int ckpt_ref(store_t *s, const void *p, size_t len, int64_t *id)
{
    *id = 0;
    if (p == NULL)
        return 0;
    return store__ckpt_add(s->w.db, s->w.ckpt_find, s->w.ckpt_add, p, len, id);
}

/* Deletes checkpoint row id if nothing refers to it (a put that wrote nothing). */
static int ckpt_unused(store_t *s, int64_t id)
{
    if (id == 0)
        return 0;
    sqlite3_bind_int64(s->w.ckpt_gc, 1, id);
    return store__step_done(s, s->w.ckpt_gc);
}

static int do_model(store_t *s, store_job_t *j)
{
    store_writer_t *w = &s->w;
    store_dev_t *d = op_device(s, j, "model");
    if (d == NULL)
        return 0;
    int64_t ck = 0;
    int err = ckpt_ref(s, j->blob, j->blob_len, &ck);
    if (err)
        return err;
    sqlite3_bind_int64(w->model_put, 1, d->id);
    sqlite3_bind_int64(w->model_put, 2, j->u.model.version);
    sqlite3_bind_int64(w->model_put, 3, j->u.model.created_ms);
    sqlite3_bind_text(w->model_put, 4, j->text, -1, SQLITE_STATIC);
    if (ck != 0)
        sqlite3_bind_int64(w->model_put, 5, ck);
    else
        sqlite3_bind_null(w->model_put, 5);
    err = op_upsert(s, w->model_put, j, "model");
    if (err == 0 && sqlite3_changes(w->db) == 0)
        err = ckpt_unused(s, ck);
    if (err || j->u.model.keep_k <= 0)
        return err;
    sqlite3_bind_int64(w->model_trim, 1, d->id);
    sqlite3_bind_int64(w->model_trim, 2, (int64_t)j->u.model.keep_k - 1);
    sqlite3_bind_int64(w->model_trim, 3, j->u.model.keep_version);
    return store__step_done(s, w->model_trim);
}

static int do_event(store_t *s, store_job_t *j)
{
    store_writer_t *w = &s->w;
    store_dev_t *d = op_device(s, j, "event");
    if (d == NULL)
        return 0;
    sqlite3_bind_int64(w->event_put, 1, d->id);
    sqlite3_bind_int64(w->event_put, 2, j->u.event.id);
    sqlite3_bind_int64(w->event_put, 3, j->u.event.start_ts);
    if (j->u.event.end_ts != -1)
        sqlite3_bind_int64(w->event_put, 4, j->u.event.end_ts);
    sqlite3_bind_text(w->event_put, 5, j->text, -1, SQLITE_STATIC);
    return op_upsert(s, w->event_put, j, "event");
}

/* Binds a maintenance job's device (?1) and period start (?2) to st. Returns the device, or
 * NULL when it is unknown (the job is skipped). */
static store_dev_t *maint_bind(store_t *s, store_job_t *j, sqlite3_stmt *st)
{
    store_dev_t *d = op_device(s, j, "maintenance period");
    if (d) {
        sqlite3_bind_int64(st, 1, d->id);
        sqlite3_bind_int64(st, 2, j->u.maint.start_ms);
    }
    return d;
}

/* A maintenance period: its upsert, then the device's periods beyond the newest
 * STORE_MAINT_KEEP deleted. */
static int do_maint(store_t *s, store_job_t *j)
{
    store_writer_t *w = &s->w;
    store_dev_t *d = maint_bind(s, j, w->maint_put);
    if (d == NULL)
        return 0;
    sqlite3_bind_int64(w->maint_put, 3, j->u.maint.end_ms);
    if (j->text)
        sqlite3_bind_text(w->maint_put, 4, j->text, -1, SQLITE_STATIC);
    int err = store__step_done(s, w->maint_put);
    if (err)
        return err;
    sqlite3_bind_int64(w->maint_trim, 1, d->id);
    sqlite3_bind_int64(w->maint_trim, 2, STORE_MAINT_KEEP);
    return store__step_done(s, w->maint_trim);
}

/* A cancelled maintenance period: the device's one starting at start_ms, deleted. */
static int do_maint_del(store_t *s, store_job_t *j)
{
    store_writer_t *w = &s->w;
    if (maint_bind(s, j, w->maint_del) == NULL)
        return 0;
    return store__step_done(s, w->maint_del);
}

static int do_detector(store_t *s, store_job_t *j)
{
    store_writer_t *w = &s->w;
    store_dev_t *d = op_device(s, j, "detector");
    if (d == NULL)
        return 0;
    const size_t clen = j->u.detector.ckpt_len, slen = j->blob_len - clen;
    int64_t ck = 0;
    int err = ckpt_ref(s, clen ? j->blob + slen : NULL, clen, &ck);
    if (err)
        return err;
    sqlite3_bind_int64(w->det_put, 1, d->id);
    sqlite3_bind_int64(w->det_put, 2, j->u.detector.saved_ms);
    sqlite3_bind_int64(w->det_put, 3, j->u.detector.last_ts);
    sqlite3_bind_blob64(w->det_put, 4, j->blob, slen, SQLITE_STATIC);
    if (ck != 0)
        sqlite3_bind_int64(w->det_put, 5, ck);
    else
        sqlite3_bind_null(w->det_put, 5);
    err = store__step_done(s, w->det_put);
    if (err == 0)
        w->tx_ops++;
    return err;
}

/* A prediction block: the trim, then the insert (preds has no unique key: the trim removed
 * the row of the same seq). */
static int do_pred(store_t *s, store_job_t *j)
{
    store_writer_t *w = &s->w;
    store_dev_t *d = op_device(s, j, "prediction block");
    if (d == NULL)
        return 0;
    sqlite3_bind_int64(w->pred_trim, 1, d->id);
    sqlite3_bind_int64(w->pred_trim, 2, j->u.pred.keep_from);
    sqlite3_bind_int64(w->pred_trim, 3, j->u.pred.seq);
    int err = store__step_done(s, w->pred_trim);
    if (err)
        return err;
    sqlite3_bind_int64(w->pred_ins, 1, d->id);
    sqlite3_bind_int64(w->pred_ins, 2, j->u.pred.seq);
    sqlite3_bind_int64(w->pred_ins, 3, j->u.pred.n);
    sqlite3_bind_int64(w->pred_ins, 4, j->u.pred.nch);
    sqlite3_bind_int64(w->pred_ins, 5, j->u.pred.t0);
    sqlite3_bind_int64(w->pred_ins, 6, j->u.pred.t1);
    sqlite3_bind_int64(w->pred_ins, 7, j->u.pred.sum);
    sqlite3_bind_blob64(w->pred_ins, 8, j->blob, j->blob_len, SQLITE_STATIC);
    err = store__step_done(s, w->pred_ins);
    if (err == 0)
        w->tx_ops++;
    return err;
}

static int do_pred_drop(store_t *s, store_job_t *j)
{
    store_dev_t *d = op_device(s, j, "prediction blocks' drop");
    if (d == NULL)
        return 0;
    sqlite3_bind_int64(s->w.del_preds, 1, d->id);
    int err = store__step_done(s, s->w.del_preds);
    if (err == 0)
        s->w.tx_ops++;
    return err;
}

int store__op_write(store_t *s, store_job_t *j)
{
    switch (j->kind) {
    case JOB_MODEL:
        return do_model(s, j);
    case JOB_EVENT:
        return do_event(s, j);
    case JOB_MAINT:
        return do_maint(s, j);
    case JOB_MAINT_DEL:
        return do_maint_del(s, j);
    case JOB_DETECTOR:
        return do_detector(s, j);
    case JOB_PRED:
        return do_pred(s, j);
    case JOB_PRED_DROP:
        return do_pred_drop(s, j);
    default:
        return ERR_IO; /* not an asynchronous put: run_job's */
    }
}

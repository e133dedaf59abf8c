/* daemon/backend.c: implements the API's backend table on top of storage.
 *
 * The API and storage never include each other (see docs/architecture.md); these adapters
 * translate between their plain structs. Every function here is "any thread": they are called
 * from libmicrohttpd's handler threads, and storage is thread-safe. */
#include "backend.h"
#include "err.h"
#include "log.h"
#include "prom.h"
#include "vtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int be_write(void *ctx, batch_t *b)
{
    backend_t *be = ctx;
    return store_write(be->store, b);
}

/* The times a write admits (time_admit): [lo, hi], each bound only when set. */
struct time_window {
    backend_t *be;
    int64_t lo, hi, now;      /* lo: retention's horizon (or INT64_MIN); hi: now + max_ahead */
    int64_t retention;        /* storage.retention as this write read it (live) */
    int64_t max_ahead;        /* storage.max_ahead as this write read it (live) */
    uint64_t old, ahead;      /* the points refused as older than lo, as later than hi */
    int64_t old_ts, ahead_ts; /* the first point refused as older than lo, as later than hi */
    api_reject_cb reject;
    void *arg;
};

/* batch_points_filter's test for time_admit: a point outside the window is reported by item,
 * saying which bound and which setting, and refused. */
static int within_window(void *arg, const batch_point_t *p, size_t i)
{
    struct time_window *w = arg;
    (void)i;
    if (p->ts_ms >= w->lo && p->ts_ms <= w->hi)
        return 1;
    char ts[32], at[32], set[32], why[256];
    vtime_format(p->ts_ms, ts, sizeof ts);
    if (p->ts_ms < w->lo) {
        if (w->old++ == 0)
            w->old_ts = p->ts_ms;
        vtime_format_duration(w->retention, set, sizeof set);
        snprintf(why, sizeof why,
                 "point beyond retention policy: ts %s is older than the horizon %s "
                 "(storage.retention = %s); not stored",
                 ts, vtime_format(w->lo, at, sizeof at), set);
    } else {
        if (w->ahead++ == 0)
            w->ahead_ts = p->ts_ms;
        vtime_format_duration(w->max_ahead, set, sizeof set);
        snprintf(why, sizeof why,
                 "point too far in the future: ts %s is more than %s ahead of this host's clock "
                 "%s (storage.max_ahead = %s); not stored",
                 ts, set, vtime_format(w->now, at, sizeof at), set);
    }
    w->reject(w->arg, p->item, why);
    return 0;
}

/* Counts n points refused by one of time_admit's bounds in *count; when its warning is due
 * (at most once a minute, *said_s), how many were refused since it was last said (at least n),
 * else 0. Any thread. */
static uint64_t refused_due(_Atomic uint64_t *count, _Atomic int64_t *said_s,
                            _Atomic uint64_t *said_total, uint64_t n)
{
    const uint64_t total = atomic_fetch_add_explicit(count, n, memory_order_relaxed) + n;
    if (!log_due(said_s, (int64_t)vtime_mono_s(), 60))
        return 0;
    return total - atomic_exchange(said_total, total);
}

/* time_admit's refusals, each said in the journal at most once a minute with how many since and
 * one of their times: each client gets its 400, but the journal is where an operator looks.
 * Too old: a gateway sending a backlog older than the retention (or a device whose clock is far
 * behind). Too far ahead: when vigild's own clock is behind (a board without a battery-backed
 * clock, before NTP) every device's readings are refused. */
static void time_refused(backend_t *be, const struct time_window *w)
{
    char ts[32], at[32], set[32];
    uint64_t since;
    if (w->old && (since = refused_due(&be->retention_refused, &be->old_warned_s,
                                       &be->old_warned_total, w->old))) {
        vtime_format_duration(w->retention, set, sizeof set);
        log_warn("ingest: %llu reading%s refused as older than the retention's horizon (%s), "
                 "e.g. ts %s: a backlog older than the retention, or a device's clock is behind "
                 "(storage.retention = %s; said at most once a minute, "
                 "vigil_retention_refused_points_total counts them)",
                 (unsigned long long)since, since == 1 ? "" : "s",
                 vtime_format(w->lo, at, sizeof at), vtime_format(w->old_ts, ts, sizeof ts), set);
    }
    if (w->ahead && (since = refused_due(&be->ahead_refused, &be->ahead_warned_s,
                                         &be->ahead_warned_total, w->ahead))) {
        vtime_format_duration(w->max_ahead, set, sizeof set);
        log_warn("ingest: %llu reading%s refused as stamped more than %s ahead of this host's "
                 "clock (%s), e.g. ts %s: a device's clock or this host's is wrong "
                 "(storage.max_ahead = %s; said at most once a minute, "
                 "vigil_ahead_refused_points_total counts them)",
                 (unsigned long long)since, since == 1 ? "" : "s", set,
                 vtime_format(w->now, at, sizeof at), vtime_format(w->ahead_ts, ts, sizeof ts),
                 set);
    }
}

/* Removes the points of [first, b->npoints) outside the times a write admits, each reported by
 * item, the others keeping their order:
 * - older than the retention horizon, as InfluxDB drops points beyond its retention policy: a
 *   stored point would only wait for the next sweep to delete it; refused, the client knows.
 *   The horizon is the sweep's clock: a wall clock stepped ahead by mistake refuses no live
 *   reading;
 * - stamped more than storage.max_ahead after vigild's wall clock, as Prometheus-style stores
 *   refuse samples too new: stored, one reading of a clock that jumped to 2100 would be its
 *   device's newest in listings, readings?order=desc and SELECT last() until 2100, and no route
 *   deletes one reading. Readings stamped by vigild are never refused: its stamps run at most
 *   VTIME_STAMP_CATCHUP_MAX_MS (12 h) ahead of its clock, and the bound is at least a day. */
static void time_admit(backend_t *be, int64_t retention, int64_t max_ahead, batch_t *b,
                       size_t first, api_reject_cb reject, void *arg)
{
    const int64_t now = vtime_now_ms();
    struct time_window w = {.be = be,
                            .lo = INT64_MIN,
                            .hi = INT64_MAX,
                            .now = now,
                            .retention = retention,
                            .max_ahead = max_ahead,
                            .reject = reject,
                            .arg = arg};
    if (retention > 0)
        w.lo = store_retention_now(be->store) - retention;
    if (max_ahead > 0)
        w.hi = now + max_ahead;
    (void)batch_points_filter(b, first, within_window, &w);
    time_refused(be, &w);
}

static int be_admit(void *ctx, batch_t *b, size_t first, api_reject_cb reject, void *arg)
{
    backend_t *be = ctx;
    /* Acquire: the sweeps, which this write reaches through the store's queue, then hold a
     * retention at least as long (main.c's reload sets a longer one there first). */
    const int64_t retention = atomic_load_explicit(&be->retention_ms, memory_order_acquire);
    const int64_t max_ahead = atomic_load_explicit(&be->max_ahead_ms, memory_order_relaxed);
    if (retention > 0 || max_ahead > 0)
        time_admit(be, retention, max_ahead, b, first, reject, arg);
    return be->quota ? quota_admit(be->quota, b, first, reject, arg) : 0;
}

static int be_device_put(void *ctx, const char *id, const char *attrs, int *created)
{
    backend_t *be = ctx;
    int rc = be->quota ? quota_device_add(be->quota, id) : 0;
    if (rc)
        return rc;
    rc = store_device_put(be->store, id, attrs, created);
    if (rc == 0 && attrs && be->pipe)
        pipeline_set_attrs(be->pipe, id, attrs); /* channel limits for forecasts */
    return rc;
}

static int be_device_delete(void *ctx, const char *id)
{
    backend_t *be = ctx;
    int rc = store_device_delete(be->store, id);
    if (rc == 0 && be->quota)
        quota_device_remove(be->quota, id);
    if (rc == 0 && be->pipe)
        pipeline_forget(be->pipe, id);
    return rc;
}

struct dev_relay {
    api_device_cb cb;
    void *arg;
    pipeline_t *pipe; /* NULL: no arrival times */
};

static int relay_device(void *arg, const store_device_info_t *in)
{
    struct dev_relay *r = arg;
    char *maint = NULL;
    if (r->pipe)
        (void)pipeline_maint_json(r->pipe, in->id, &maint); /* none, or not known: null */
    api_device_t d = {.id = in->id,
                      .attrs_json = in->attrs_json,
                      .created_ms = in->created_ms,
                      .first_ts_ms = in->first_ts_ms,
                      .last_ts_ms = in->last_ts_ms,
                      .last_seen_ms = r->pipe ? pipeline_last_seen(r->pipe, in->id) : -1,
                      .points = in->points,
                      .nchannels = in->nchannels,
                      .channels = in->channels,
                      .maint_json = maint};
    int stop = r->cb(r->arg, &d);
    free(maint);
    return stop;
}

static int be_device_get(void *ctx, const char *id, int64_t deadline_us, api_device_cb cb,
                         void *arg)
{
    backend_t *be = ctx;
    struct dev_relay r = {cb, arg, be->pipe};
    return store_device_get_until(be->store, id, deadline_us, relay_device, &r);
}

static int be_device_find(void *ctx, const char *id, api_device_cb cb, void *arg)
{
    backend_t *be = ctx;
    struct dev_relay r = {cb, arg, be->pipe};
    return store_device_find(be->store, id, relay_device, &r);
}

static int be_device_list(void *ctx, const char *after, size_t limit, int64_t deadline_us,
                          api_device_cb cb, void *arg)
{
    backend_t *be = ctx;
    struct dev_relay r = {cb, arg, be->pipe};
    return store_device_list_until(be->store, after, limit, deadline_us, relay_device, &r);
}

/* The ids and channels alone: no pipeline (no maintenance, no arrival time), no wait for a
 * reload of the maps. */
static int be_device_each(void *ctx, api_device_cb cb, void *arg)
{
    backend_t *be = ctx;
    struct dev_relay r = {cb, arg, NULL};
    return store_device_each(be->store, relay_device, &r);
}

static int be_query(void *ctx, const api_query_t *q, api_point_cb cb, void *arg)
{
    backend_t *be = ctx;
    store_query_t sq = {.device = q->device,
                        .from_ms = q->from_ms,
                        .to_ms = q->to_ms,
                        .channels = q->channels,
                        .nchannels = q->nchannels,
                        .limit = q->limit,
                        .desc = q->desc,
                        .deadline_us = q->deadline_us};
    /* api_point_cb and store_point_cb have the same signature by design. */
    return store_query(be->store, &sq, cb, arg);
}

static void be_metrics(void *ctx, sbuf_t *out)
{
    backend_t *be = ctx;
    static const double bounds[] = STORE_COMMIT_BUCKETS;
    store_stats_t st;
    store_stats_get(be->store, &st);
    sbuf_printf(
        out,
        "# HELP vigil_store_readings_written_total Readings committed to the database.\n"
        "# TYPE vigil_store_readings_written_total counter\n"
        "vigil_store_readings_written_total %llu\n"
        "# HELP vigil_store_commits_total Write transactions committed.\n"
        "# TYPE vigil_store_commits_total counter\nvigil_store_commits_total %llu\n"
        "# HELP vigil_store_commit_errors_total Write transactions that failed.\n"
        "# TYPE vigil_store_commit_errors_total counter\n"
        "vigil_store_commit_errors_total %llu\n"
        "# HELP vigil_store_commit_errors_by_reason_total Write transactions that "
        "failed, by reason: locked (another process held the database's lock), nospace "
        "(the disk was full), other.\n"
        "# TYPE vigil_store_commit_errors_by_reason_total counter\n"
        "vigil_store_commit_errors_by_reason_total{reason=\"locked\"} %llu\n"
        "vigil_store_commit_errors_by_reason_total{reason=\"nospace\"} %llu\n"
        "vigil_store_commit_errors_by_reason_total{reason=\"other\"} %llu\n"
        "# HELP vigil_store_maintenance_errors_total Compaction or retention steps that "
        "failed (their own work undone; the readings beside them still stored).\n"
        "# TYPE vigil_store_maintenance_errors_total counter\n"
        "vigil_store_maintenance_errors_total %llu\n"
        "# HELP vigil_store_damaged_chunks_total Reads that met a damaged readings row "
        "(checksum mismatch or malformed) and refused to serve it.\n"
        "# TYPE vigil_store_damaged_chunks_total counter\n"
        "vigil_store_damaged_chunks_total %llu\n"
        "# HELP vigil_store_queue_readings Readings waiting for the writer.\n"
        "# TYPE vigil_store_queue_readings gauge\nvigil_store_queue_readings %llu\n"
        "# HELP vigil_store_queue_capacity_readings Most readings the queue holds.\n"
        "# TYPE vigil_store_queue_capacity_readings gauge\n"
        "vigil_store_queue_capacity_readings %llu\n"
        "# HELP vigil_store_database_bytes Size of the database and its WAL on disk.\n"
        "# TYPE vigil_store_database_bytes gauge\nvigil_store_database_bytes %lld\n"
        "# HELP vigil_devices Devices known.\n# TYPE vigil_devices gauge\n"
        "vigil_devices %llu\n",
        (unsigned long long)st.readings_written, (unsigned long long)st.commits,
        (unsigned long long)st.commit_errors, (unsigned long long)st.commit_errors_locked,
        (unsigned long long)st.commit_errors_nospace,
        (unsigned long long)(st.commit_errors - st.commit_errors_locked - st.commit_errors_nospace),
        (unsigned long long)st.maintenance_errors, (unsigned long long)st.chunks_damaged,
        (unsigned long long)st.queue_readings, (unsigned long long)st.queue_max,
        (long long)st.db_bytes, (unsigned long long)st.devices);
    prom_histogram(out, "vigil_store_commit_seconds", "Latency of write transactions.", bounds,
                   st.commit_buckets, 12, st.commits, st.commit_seconds_sum);
    sbuf_printf(
        out,
        "# HELP vigil_store_retention_removed_chunks_total Readings rows (chunks) deleted by "
        "retention.\n# TYPE vigil_store_retention_removed_chunks_total counter\n"
        "vigil_store_retention_removed_chunks_total %llu\n"
        "# HELP vigil_store_retention_removed_points_total Timestamps (points of all their "
        "channels) "
        "in the rows deleted by retention.\n"
        "# TYPE vigil_store_retention_removed_points_total counter\n"
        "vigil_store_retention_removed_points_total %llu\n"
        "# HELP vigil_store_retention_removed_events_total Ended anomaly events deleted by "
        "retention.\n# TYPE vigil_store_retention_removed_events_total counter\n"
        "vigil_store_retention_removed_events_total %llu\n"
        "# HELP vigil_store_retention_sweeps_total Retention sweeps finished.\n"
        "# TYPE vigil_store_retention_sweeps_total counter\n"
        "vigil_store_retention_sweeps_total %llu\n"
        "# HELP vigil_store_retention_seconds_total Writer time spent in retention sweeps.\n"
        "# TYPE vigil_store_retention_seconds_total counter\n"
        "vigil_store_retention_seconds_total %.6f\n"
        "# HELP vigil_store_retention_last_sweep_seconds Start to end of the last retention sweep "
        "(its steps share the writer with other writes).\n"
        "# TYPE vigil_store_retention_last_sweep_seconds gauge\n"
        "vigil_store_retention_last_sweep_seconds %.3f\n"
        "# HELP vigil_retention_refused_points_total Points refused at write: older than the "
        "retention horizon.\n# TYPE vigil_retention_refused_points_total counter\n"
        "vigil_retention_refused_points_total %llu\n"
        "# HELP vigil_ahead_refused_points_total Points refused at write: stamped more than "
        "storage.max_ahead after this host's clock.\n"
        "# TYPE vigil_ahead_refused_points_total counter\n"
        "vigil_ahead_refused_points_total %llu\n",
        (unsigned long long)st.retention_chunks, (unsigned long long)st.retention_points,
        (unsigned long long)st.retention_events, (unsigned long long)st.retention_sweeps,
        st.retention_seconds, st.retention_last_sweep_seconds,
        (unsigned long long)atomic_load_explicit(&be->retention_refused, memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&be->ahead_refused, memory_order_relaxed));
    if (be->health) {
        char why[HEALTH_WHY_MAX];
        sbuf_printf(out,
                    "# HELP vigil_healthy Whether vigild considers itself healthy (1), as /healthz "
                    "answers 200; 0: /healthz answers 503 and says why.\n"
                    "# TYPE vigil_healthy gauge\nvigil_healthy %d\n",
                    health_storage(be->health, why, sizeof why) == 0);
    }
    if (be->snaps)
        snapshots_metrics(be->snaps, out);
    if (be->sched)
        snapsched_metrics(be->sched, out);
    if (be->stream)
        stream_metrics(be->stream, out);
    if (be->pipe) {
        size_t max = atomic_load_explicit(&be->metrics_max_devices, memory_order_relaxed);
        size_t omitted = pipeline_metrics(be->pipe, out, max);
        if (omitted && !atomic_exchange(&be->metrics_capped_logged, 1))
            log_info("/metrics: more devices than http.metrics_max_devices (%zu): per-device "
                     "series only for devices in warning or anomaly (%zu left out now; "
                     "vigil_metrics_devices_omitted has the count of each scrape)",
                     max, omitted);
    }
}

static int any_device(void *arg, const store_device_info_t *info)
{
    (void)arg;
    (void)info;
    return 0;
}

/* The pipeline, for a route on device id: a device whose first readings are acknowledged
 * (stored) and not scored yet is made known to the pipeline first (pipeline_adopt), so every
 * device route finds it from its first acknowledged reading on. A device neither knows is left
 * unknown (404). store_device_find, not _get: some of these routes run on a libmicrohttpd worker
 * (status, forecast, model), which must not sleep through the store's reload of its counters. */
static pipeline_t *pipe_for(void *ctx, const char *id)
{
    backend_t *be = ctx;
    if (id && !pipeline_knows(be->pipe, id) &&
        store_device_find(be->store, id, any_device, NULL) == 0)
        (void)pipeline_adopt(be->pipe, id); /* out of memory: answered as unknown */
    return be->pipe;
}

/* The pipeline's functions take the pipeline, not the backend: thin relays. */
static int be_status(void *ctx, const char *id, char **out)
{
    return pipeline_status(pipe_for(ctx, id), id, out);
}

static int be_predictions(void *ctx, const char *id, int64_t from, int64_t to, size_t limit,
                          char **out)
{
    return pipeline_predictions(pipe_for(ctx, id), id, from, to, limit, out);
}

static int be_predictions_each(void *ctx, const char *id, int64_t from, int64_t to, size_t limit,
                               int desc, api_prediction_cb cb, void *arg)
{
    return pipeline_predictions_each(pipe_for(ctx, id), id, from, to, limit, desc, cb, arg);
}

static int be_anomalies_each(void *ctx, const char *id, int64_t from, int64_t to, size_t limit,
                             int64_t deadline_us, api_episode_cb cb, void *arg)
{
    return pipeline_anomalies_each(pipe_for(ctx, id), id, from, to, limit, deadline_us, cb, arg);
}

static int be_forecast(void *ctx, const char *id, int horizon, char **out)
{
    return pipeline_forecast(pipe_for(ctx, id), id, horizon, out);
}

static int be_anomalies(void *ctx, const char *id, int active, int64_t from, int64_t to,
                        const char *tie_dev, int64_t tie_id, size_t limit, char **out)
{
    return pipeline_anomalies(pipe_for(ctx, id), id, active, from, to, tie_dev, tie_id, limit, out);
}

static int be_models(void *ctx, const char *id, char **out)
{
    return pipeline_models(pipe_for(ctx, id), id, out);
}

static void be_new_channels(void *ctx, const batch_t *b, api_channel_cb cb, void *arg)
{
    pipeline_new_channels(((backend_t *)ctx)->pipe, b, cb, arg);
}

static int be_channel_unmodelled(void *ctx, const char *id, const char *channel)
{
    return pipeline_channel_unmodelled(((backend_t *)ctx)->pipe, id, channel);
}

static int be_retrain(void *ctx, const char *id, int force, struct api_retrain *res)
{
    return pipeline_retrain(pipe_for(ctx, id), id, force, res);
}

static int be_accept(void *ctx, const char *id, const char *note, char **out)
{
    return pipeline_accept(pipe_for(ctx, id), id, note, out);
}

static int be_maint_start(void *ctx, const char *id, int64_t from_ms, int64_t until_ms,
                          int64_t minutes, const char *note, char **out)
{
    return pipeline_maint_start(pipe_for(ctx, id), id, from_ms, until_ms, minutes, note, out);
}

static int be_maint_end(void *ctx, const char *id, int64_t from_ms)
{
    pipeline_t *p = pipe_for(ctx, id);
    return from_ms < 0 ? pipeline_maint_end(p, id) : pipeline_maint_cancel(p, id, from_ms);
}

static int be_maint_list(void *ctx, const char *id, char **out)
{
    return pipeline_maint_list(pipe_for(ctx, id), id, out);
}

static int be_rollback(void *ctx, const char *id, uint32_t version, struct api_fit *out)
{
    struct pipeline_fit fit;
    int rc = pipeline_rollback(pipe_for(ctx, id), id, version, &fit);
    out->trained = fit.trained;
    out->now = fit.now;
    memcpy(out->size, fit.size, sizeof out->size);
    memcpy(out->dev_size, fit.dev_size, sizeof out->dev_size);
    out->unsaved = fit.unsaved;
    return rc;
}

static int be_weights_get(void *ctx, const char *id, void **buf, size_t *len)
{
    return pipeline_weights_get(pipe_for(ctx, id), id, buf, len);
}

static int be_weights_put(void *ctx, const char *id, const void *buf, size_t len, char *why,
                          size_t cap, int *unsaved)
{
    return pipeline_weights_put(pipe_for(ctx, id), id, buf, len, why, cap, unsaved);
}

static int be_snapshot(void *ctx, char **out)
{
    backend_t *be = ctx;
    return snapshots_take(be->snaps, be->pipe, out);
}

static int be_snapshots(void *ctx, char **out)
{
    return snapshots_list(((backend_t *)ctx)->snaps, out);
}

static int be_db_add(void *ctx, const char *name)
{
    return store_dbname_put(((backend_t *)ctx)->store, name);
}

static int be_db_list(void *ctx, size_t max, api_name_cb cb, void *arg)
{
    return store_dbnames_load(((backend_t *)ctx)->store, max, cb, arg);
}

static size_t be_health(void *ctx, api_check_t *checks)
{
    backend_t *be = ctx;
    return be->health ? health_api_checks(be->health, checks) : 0;
}

void backend_init(api_backend_t *out, backend_t *b)
{
    memset(out, 0, sizeof *out);
    out->ctx = b;
    out->write = be_write;
    out->admit = be_admit;
    out->device_put = be_device_put;
    out->device_delete = be_device_delete;
    out->device_get = be_device_get;
    out->device_find = be_device_find;
    out->device_list = be_device_list;
    out->device_each = be_device_each;
    out->query = be_query;
    out->metrics = be_metrics;
    out->health = be_health;
    out->db_add = be_db_add;
    out->db_list = be_db_list;
    if (b->snaps) {
        out->snapshot = be_snapshot;
        out->snapshots = be_snapshots;
    }
    if (b->pipe) {
        out->pipe_status = be_status;
        out->pipe_predictions = be_predictions;
        out->pipe_forecast = be_forecast;
        out->pipe_anomalies = be_anomalies;
        out->pipe_predictions_each = be_predictions_each;
        out->pipe_anomalies_each = be_anomalies_each;
        out->pipe_models = be_models;
        out->new_channels = be_new_channels;
        out->channel_unmodelled = be_channel_unmodelled;
        out->pipe_retrain = be_retrain;
        out->pipe_accept = be_accept;
        out->pipe_maint_start = be_maint_start;
        out->pipe_maint_end = be_maint_end;
        out->pipe_maint_list = be_maint_list;
        out->pipe_rollback = be_rollback;
        out->pipe_weights_get = be_weights_get;
        out->pipe_weights_put = be_weights_put;
    }
}

/* daemon/pipeline_metrics.c: the pipeline's /metrics families (per device and fleet-wide) and
 * the silence and last-arrival readings they use. Any thread: see device_families for the
 * locking. */
#include "dnum.h"
#include "err.h"
#include "log.h"
#include "pipeline_int.h"
#include "prom.h"
#include "sbuf.h"
#include "vtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- /metrics: the per-device families ------------------------------------------------------
 *
 * At fleet scale a scrape must stay cheap and small. The fleet's per-device series (score, state,
 * serving version, last arrival) are listed while the fleet has at most max_devices devices; beyond
 * that only the devices in warning or anomaly (the ones an operator must see by name) or in
 * planned maintenance (the ones the alerts on a device leave out), at most
 * max_devices of them, and vigil_metrics_devices_omitted says how many were left out. The
 * fleet-level count by state is always there, so alerting on "any device in anomaly" never depends
 * on the cap; so is the count of silent devices (vigil_devices_silent, pipeline_silence against one
 * clock reading per scrape).
 *
 * The walk is one pass with no lock held across formatting: devs_lock only while the count and
 * the head are read, each device's mutex only while its values are copied. That is safe
 * because a device, once added, lives as long as the pipeline (nothing removes one before
 * pipeline_destroy) and uthash appends at the tail of its insertion-order list: the next
 * pointers of the first n devices, seen under devs_lock, never change afterwards (a later
 * HASH_ADD writes only the then-tail's, which is the n-th device's at the earliest, never read
 * here). No allocation per device: the state, version and arrival lines go to three buffers
 * that grow geometrically and are appended to out after the pass (a family's lines must be
 * contiguous). */

/* Copies `"name"` (Prometheus label escaping) into dst, which has room for 2 * len + 2 bytes.
 * Returns the length written. */
static size_t label_copy(char *dst, const char *name, size_t len)
{
    size_t k = 0;
    dst[k++] = '"';
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '\\' || c == '"') {
            dst[k++] = '\\';
            dst[k++] = c;
        } else if (c == '\n') {
            dst[k++] = '\\';
            dst[k++] = 'n';
        } else {
            dst[k++] = c;
        }
    }
    dst[k++] = '"';
    return k;
}

/* Appends "<family>{device=<label>} <value>\n". family is at most 48 bytes, label (escaped,
 * quoted) at most 2 * BATCH_NAME_MAX + 2, value a NUL-terminated string under 40: the line fits
 * the stack buffer, so one append per line. */
static void device_line(sbuf_t *b, const char *family, size_t flen, const char *label, size_t llen,
                        const char *value)
{
    char line[48 + 8 + 2 * BATCH_NAME_MAX + 2 + 2 + 40 + 1];
    size_t vlen = strlen(value), k = 0;
    memcpy(line + k, family, flen);
    k += flen;
    memcpy(line + k, "{device=", 8);
    k += 8;
    memcpy(line + k, label, llen);
    k += llen;
    line[k++] = '}';
    line[k++] = ' ';
    memcpy(line + k, value, vlen);
    k += vlen;
    line[k++] = '\n';
    sbuf_append(b, line, k);
}

/* The same line for a name longer than BATCH_NAME_MAX (no device gets one through the API;
 * kept so such a device would still be listed): escaped straight into the buffer. */
static void device_line_long(sbuf_t *b, const char *family, const char *name, const char *value)
{
    sbuf_printf(b, "%s{device=", family);
    prom_label(b, name);
    sbuf_printf(b, "} %s\n", value);
}

#define FAM(s) s, sizeof s - 1

int64_t pipeline_last_seen(pipeline_t *p, const char *device)
{
    struct dev *d = pipeline__find(p, device);
    return d ? atomic_load_explicit(&d->seen_ms, memory_order_relaxed) : -1;
}

int64_t pipeline_silence(int64_t now_ms, int64_t seen_ms, int64_t start_ms,
                         size_t silent[PIPELINE_SILENT_N])
{
    static const int64_t after_s[PIPELINE_SILENT_N] = PIPELINE_SILENT_AFTER;
    int64_t since = seen_ms >= 0 ? seen_ms : start_ms;
    int64_t ms = now_ms > since ? now_ms - since : 0;
    for (int k = 0; k < PIPELINE_SILENT_N; k++)
        if (ms > after_s[k] * 1000)
            silent[k]++;
    return ms;
}

/* A counter family by reason: every reason of names[1..n-1] listed, at 0 until counted
 * (counts[0], an unknown reason, is not listed). */
static void reason_counter(sbuf_t *out, const char *family, const char *help,
                           const char *const *names, const atomic_uint_fast64_t *counts, int n)
{
    sbuf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", family, help, family);
    for (int k = 1; k < n; k++)
        sbuf_printf(out, "%s{reason=\"%s\"} %llu\n", family, names[k],
                    (unsigned long long)atomic_load(&counts[k]));
}

/* Appends vigil_device_limit_state{device,channel} of d's nlim limited channels lc[]. A few
 * lines of a device with limits: formatted with printf. */
static void limit_lines(sbuf_t *b, const char *device, const struct pipe_lim_copy *lc, int nlim)
{
    for (int k = 0; k < nlim; k++) {
        sbuf_printf(b, "vigil_device_limit_state{device=");
        prom_label(b, device);
        sbuf_printf(b, ",channel=");
        prom_label(b, lc[k].name);
        sbuf_printf(b, "} %d\n", lc[k].state);
    }
}

static size_t device_families(pipeline_t *p, sbuf_t *out, size_t max_devices)
{
    pthread_rwlock_rdlock(&p->devs_lock);
    struct dev *head = p->devs;
    size_t n = HASH_COUNT(p->devs);
    pthread_rwlock_unlock(&p->devs_lock);

    int all = n <= max_devices;
    size_t by_state[4] = {0, 0, 0, 0}, listed = 0, gone = 0, in_maint = 0;
    size_t lim_by_state[3] = {0, 0, 0}; /* limited channels by enum pipe_lim_state, every device */
    size_t silent[PIPELINE_SILENT_N] = {0};
    const int64_t now_ms = vtime_now_ms(); /* one clock for the whole pass */
    sbuf_t st, ver, seen, mnt, lim, evs, lik, mis;
    sbuf_init(&mis);
    sbuf_init(&evs);
    sbuf_init(&lik);
    sbuf_init(&st);
    sbuf_init(&ver);
    sbuf_init(&seen);
    sbuf_init(&mnt);
    sbuf_init(&lim);
    struct pipe_lim_copy lc[DETECTOR_MAX_CHANNELS];
    sbuf_printf(out, "# HELP vigil_device_anomaly_score Latest anomaly score per device (all "
                     "devices up to http.metrics_max_devices, else those in warning or "
                     "anomaly); no series while the device is learning (no score).\n"
                     "# TYPE vigil_device_anomaly_score gauge\n");
    char label[2 * BATCH_NAME_MAX + 2];
    struct dev *d = head;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            d = d->hh.next; /* device i-1's next: fixed since devs_lock (see above) */
        pthread_mutex_lock(&d->mu);
        int has = d->has_result;
        int state = has ? (int)d->last.state : 0;
        double score = d->last.score, likelihood = d->last.likelihood;
        unsigned version = has ? d->last.version : 0;
        int deleted = atomic_load_explicit(&d->deleted, memory_order_relaxed);
        int64_t seen_ms = atomic_load_explicit(&d->seen_ms, memory_order_relaxed);
        int maint = d->nmaint > 0 && pipeline__maint_on(d, now_ms);
        int nlim = d->limits ? pipeline__limits_copy(d, lc) : 0;
        const unsigned long long opened = (unsigned long long)d->events_opened;
        const int nmissing = __builtin_popcountll(d->missing);
        pthread_mutex_unlock(&d->mu);
        int alarm = 0; /* a channel in a limit alarm: listed beyond the cap too */
        for (int k = 0; k < nlim; k++)
            alarm |= lc[k].state != PIPE_LIM_OK;
        in_maint += (size_t)(maint && !deleted);
        if (deleted) { /* pipeline_forget: not a device any more */
            gone++;
            continue;
        }
        if (state < 0 || state > 3)
            state = 0;
        by_state[state]++;
        for (int k = 0; k < nlim; k++)
            lim_by_state[lc[k].state < 3 ? lc[k].state : 0]++;
        (void)pipeline_silence(now_ms, seen_ms, p->start_ms, silent);
        /* Beyond the cap: those in warning or anomaly, and those in maintenance, which the
         * silent alerts must be able to leave out (vigil_device_in_maintenance), and those with
         * a limit alarm (vigil_device_limit_state), which an operator must see by name too. */
        if (!all &&
            ((state < DET_WARNING && !maint && !alarm && !nmissing) || listed >= max_devices))
            continue;
        listed++;
        limit_lines(&lim, d->name, lc, nlim);
        char sc[40] = "", stv[2] = {(char)('0' + state), '\0'}, vv[16], sv[32], ev[24], lk[40] = "";
        /* A learning device has no score (its status says null): a 0 here read as healthy in
         * Grafana (session 67), so it has no series until its model scores, and the series
         * ends (stale) when it learns again. */
        const int has_score = has && state != DET_LEARNING;
        if (has_score) {
            snprintf(sc, sizeof sc, "%g", score);
            snprintf(lk, sizeof lk, "%g", likelihood);
        }
        snprintf(vv, sizeof vv, "%u", version);
        snprintf(ev, sizeof ev, "%llu", opened);
        char nm[4];
        snprintf(nm, sizeof nm, "%d", nmissing);
        /* Seconds with the milliseconds kept; no arrival since the start: the start. */
        int64_t at = seen_ms >= 0 ? seen_ms : p->start_ms;
        snprintf(sv, sizeof sv, "%lld.%03d", (long long)(at / 1000), (int)(at % 1000));
        if (d->name_len > BATCH_NAME_MAX) {
            if (has_score) {
                device_line_long(out, "vigil_device_anomaly_score", d->name, sc);
                device_line_long(&lik, "vigil_device_anomaly_likelihood", d->name, lk);
            }
            device_line_long(&st, "vigil_device_state", d->name, stv);
            device_line_long(&ver, "vigil_device_model_version", d->name, vv);
            device_line_long(&seen, "vigil_device_last_reading_timestamp_seconds", d->name, sv);
            device_line_long(&evs, "vigil_device_anomaly_events_total", d->name, ev);
            if (maint)
                device_line_long(&mnt, "vigil_device_in_maintenance", d->name, "1");
            if (nmissing)
                device_line_long(&mis, "vigil_device_channels_missing", d->name, nm);
            continue;
        }
        size_t llen = label_copy(label, d->name, d->name_len);
        if (has_score) {
            device_line(out, FAM("vigil_device_anomaly_score"), label, llen, sc);
            device_line(&lik, FAM("vigil_device_anomaly_likelihood"), label, llen, lk);
        }
        device_line(&st, FAM("vigil_device_state"), label, llen, stv);
        device_line(&ver, FAM("vigil_device_model_version"), label, llen, vv);
        device_line(&seen, FAM("vigil_device_last_reading_timestamp_seconds"), label, llen, sv);
        device_line(&evs, FAM("vigil_device_anomaly_events_total"), label, llen, ev);
        if (maint)
            device_line(&mnt, FAM("vigil_device_in_maintenance"), label, llen, "1");
        if (nmissing)
            device_line(&mis, FAM("vigil_device_channels_missing"), label, llen, nm);
    }
    /* The score is capped at repeat_cap (0.3) on alarm-level readings near another, so it sits
     * at 0.3 through an episode; the state follows this one (session 68, read68a). */
    sbuf_printf(out, "# HELP vigil_device_anomaly_likelihood Latest decision likelihood per "
                     "device, which the state follows (warning from 0.35, anomaly from 0.45; the "
                     "devices of vigil_device_anomaly_score).\n"
                     "# TYPE vigil_device_anomaly_likelihood gauge\n");
    sbuf_append(out, lik.data ? lik.data : "", lik.len);
    sbuf_printf(out, "# HELP vigil_device_state Device state: 0 learning, 1 normal, 2 warning, "
                     "3 anomaly.\n# TYPE vigil_device_state gauge\n");
    sbuf_append(out, st.data ? st.data : "", st.len);
    sbuf_printf(out, "# HELP vigil_device_model_version Serving model version per device.\n"
                     "# TYPE vigil_device_model_version gauge\n");
    sbuf_append(out, ver.data ? ver.data : "", ver.len);
    sbuf_printf(out, "# HELP vigil_device_last_reading_timestamp_seconds When the device's newest "
                     "reading arrived (Unix time of its commit, whatever the reading's own "
                     "timestamp; vigild's start if none arrived since).\n"
                     "# TYPE vigil_device_last_reading_timestamp_seconds gauge\n");
    sbuf_append(out, seen.data ? seen.data : "", seen.len);
    /* Per device, so a rule can count a device's short episodes, none of which lasts
     * VigilDeviceAnomaly's `for:` (session 68); the same devices as vigil_device_state. */
    sbuf_printf(out, "# HELP vigil_device_anomaly_events_total Anomaly events (episodes) opened "
                     "per device since vigild started (the devices of vigil_device_state).\n"
                     "# TYPE vigil_device_anomaly_events_total counter\n");
    sbuf_append(out, evs.data ? evs.data : "", evs.len);
    /* Only the devices in maintenance have a series: the alerts on a device (silent, in
     * warning) leave out those named here (etc/prometheus/vigil.rules.yml), so a pump stopped
     * for its service pages nobody. */
    sbuf_printf(out, "# HELP vigil_device_in_maintenance 1 for a device in planned maintenance "
                     "now (listed also beyond http.metrics_max_devices); no series otherwise.\n"
                     "# TYPE vigil_device_in_maintenance gauge\n");
    sbuf_append(out, mnt.data ? mnt.data : "", mnt.len);
    sbuf_printf(out, "# HELP vigil_device_limit_state Limit state per device and limited channel: "
                     "0 ok, 1 forecast (crosses a limit within pipeline.limit_horizon readings), "
                     "2 exceeded (listed as vigil_device_state, and beyond "
                     "http.metrics_max_devices while not 0).\n"
                     "# TYPE vigil_device_limit_state gauge\n");
    sbuf_append(out, lim.data ? lim.data : "", lim.len);
    /* Only the devices with a missing channel have a series (VigilChannelMissing). */
    sbuf_printf(out,
                "# HELP vigil_device_channels_missing Channels of the device missing from "
                "its last %d readings or more, over %d minutes (imputed: their last value carried forward), "
                "listed also beyond http.metrics_max_devices; no series while none is.\n"
                "# TYPE vigil_device_channels_missing gauge\n",
                PIPE_MISSING_AFTER, PIPE_MISSING_MS / 60000);
    sbuf_append(out, mis.data ? mis.data : "", mis.len);
    if (st.oom || ver.oom || seen.oom || mnt.oom || lim.oom || evs.oom || lik.oom || mis.oom)
        out->oom = 1; /* the exposition would lack lines: fail the scrape as a whole */
    sbuf_deinit(&st);
    sbuf_deinit(&ver);
    sbuf_deinit(&seen);
    sbuf_deinit(&mnt);
    sbuf_deinit(&lim);
    sbuf_deinit(&evs);
    sbuf_deinit(&lik);
    sbuf_deinit(&mis);
    sbuf_printf(out,
                "# HELP vigil_limit_alarms_total Channel limit alarms raised since vigild started, "
                "by state: forecast (the forecast crosses a limit), exceeded (a reading at or "
                "beyond it).\n"
                "# TYPE vigil_limit_alarms_total counter\n"
                "vigil_limit_alarms_total{state=\"forecast\"} %llu\n"
                "vigil_limit_alarms_total{state=\"exceeded\"} %llu\n",
                (unsigned long long)atomic_load(&p->limit_alarms[0]),
                (unsigned long long)atomic_load(&p->limit_alarms[1]));
    sbuf_printf(out,
                "# HELP vigil_limit_channels Limited channels by limit state now, over every "
                "device (vigil_device_limit_state names at most http.metrics_max_devices "
                "devices' channels).\n"
                "# TYPE vigil_limit_channels gauge\n"
                "vigil_limit_channels{state=\"ok\"} %zu\n"
                "vigil_limit_channels{state=\"forecast\"} %zu\n"
                "vigil_limit_channels{state=\"exceeded\"} %zu\n",
                lim_by_state[PIPE_LIM_OK], lim_by_state[PIPE_LIM_FORECAST],
                lim_by_state[PIPE_LIM_EXCEEDED]);
    sbuf_printf(out, "# HELP vigil_devices_by_state Devices by detector state (a device without "
                     "a scored reading counts as learning).\n"
                     "# TYPE vigil_devices_by_state gauge\n");
    for (int s = 0; s < 4; s++)
        sbuf_printf(out, "vigil_devices_by_state{state=\"%s\"} %zu\n", pipeline__state_names[s],
                    by_state[s]);
    sbuf_printf(out,
                "# HELP vigil_devices_in_maintenance Devices in planned maintenance now "
                "(their readings stored, not scored).\n"
                "# TYPE vigil_devices_in_maintenance gauge\n"
                "vigil_devices_in_maintenance %zu\n",
                in_maint);
    reason_counter(
        out, "vigil_anomaly_episodes_ended_total",
        "Anomaly episodes ended since vigild started, by how: cleared (readings as "
        "expected again), accepted (the regime was learnt as normal: the fault may "
        "persist), released (the step went back), reset (the device's model started "
        "over), operator (accepted as normal through the API), maintenance (the device "
        "went into planned maintenance), restart (stored open, its end lost: ended at the "
        "restart, the saved detector in no episode).",
        pipeline__end_names, p->ended, PIPE_END_N);
    reason_counter(out, "vigil_anomaly_episodes_opened_total",
                   "Anomaly episodes opened since vigild started, by what set them off: error "
                   "(the prediction error), level (a channel's level far from its history), step "
                   "(the step test), lasting (a warning that lasted).",
                   pipeline__open_names, p->opened, PIPE_OPEN_N);
    static const int after_s[PIPELINE_SILENT_N] = PIPELINE_SILENT_AFTER;
    sbuf_printf(out, "# HELP vigil_devices_silent Devices whose newest reading arrived more than "
                     "`after` seconds ago (with none since vigild started: started that long "
                     "ago); every device, at any fleet size.\n"
                     "# TYPE vigil_devices_silent gauge\n");
    for (int k = 0; k < PIPELINE_SILENT_N; k++)
        sbuf_printf(out, "vigil_devices_silent{after=\"%d\"} %zu\n", after_s[k], silent[k]);
    size_t omitted = n - gone - listed;
    sbuf_printf(out,
                "# HELP vigil_metrics_devices_omitted Devices whose per-device series this "
                "scrape left out (more devices than http.metrics_max_devices).\n"
                "# TYPE vigil_metrics_devices_omitted gauge\n"
                "vigil_metrics_devices_omitted %zu\n",
                omitted);
    return omitted;
}

size_t pipeline_metrics(pipeline_t *p, sbuf_t *out, size_t max_devices)
{
    static const double sb[] = PIPE_STEP_BUCKETS, tb[] = PIPE_TRAIN_BUCKETS,
                        dlb[] = PIPE_DELAY_BUCKETS;
    uint64_t scored = atomic_load(&p->scored), trainings = atomic_load(&p->trainings);
    /* Ended before taken, in this order: one scrape never shows more ended than taken, and
     * equal counts mean no job was in flight between the two loads. */
    const unsigned long long jobs_ended = atomic_load(&p->train_jobs_ended);
    const unsigned long long jobs_taken = atomic_load(&p->train_jobs_taken);
    sbuf_printf(out,
                "# HELP vigil_readings_scored_total Reading vectors scored by a detector.\n"
                "# TYPE vigil_readings_scored_total counter\nvigil_readings_scored_total %llu\n"
                "# HELP vigil_readings_not_scored_total Readings older than their device's "
                "newest, or stamped more than a day ahead of their arrival: stored, not "
                "scored.\n# TYPE vigil_readings_not_scored_total counter\n"
                "vigil_readings_not_scored_total %llu\n"
                "# HELP vigil_clock_steps_back_total Devices' clocks seen stepped back: a "
                "steady run of readings behind a device's newest that became its timeline "
                "(scored from there).\n# TYPE vigil_clock_steps_back_total counter\n"
                "vigil_clock_steps_back_total %llu\n"
                "# HELP vigil_model_relearns_total Times a device's model started learning again "
                "because a scored reading brought a new channel (a typo, a field added later) "
                "while its detection was on: detection off until a training (logged, a warning; "
                "a device still learning is not counted).\n"
                "# TYPE vigil_model_relearns_total counter\nvigil_model_relearns_total %llu\n"
                "# HELP vigil_model_trainings_total Trainings finished.\n"
                "# TYPE vigil_model_trainings_total counter\nvigil_model_trainings_total %llu\n"
                "# HELP vigil_model_swaps_total Trainings whose candidate replaced the serving "
                "model.\n# TYPE vigil_model_swaps_total counter\nvigil_model_swaps_total %llu\n"
                "# HELP vigil_model_training_failures_total Device trainings that ended in an "
                "error or whose version the store did not take (logged; the serving model "
                "stays).\n"
                "# TYPE vigil_model_training_failures_total counter\n"
                "vigil_model_training_failures_total %llu\n"
                "# HELP vigil_train_queue_jobs Devices due for training, waiting for a training "
                "thread (each at most once).\n"
                "# TYPE vigil_train_queue_jobs gauge\nvigil_train_queue_jobs %zu\n"
                "# HELP vigil_train_postponed_total Training requests merged into one already due "
                "or running for the device.\n# TYPE vigil_train_postponed_total counter\n"
                "vigil_train_postponed_total %llu\n"
                "# HELP vigil_train_jobs_ended_total Training jobs (one device's or one group's) "
                "ended, whatever they did: trained, kept the serving model, trained nothing or "
                "failed; counted once the requests they owed are asked again.\n"
                "# TYPE vigil_train_jobs_ended_total counter\nvigil_train_jobs_ended_total %llu\n"
                "# HELP vigil_train_jobs_taken_total Training jobs a training thread took from "
                "the due-set; each is counted in vigil_train_jobs_ended_total at its end.\n"
                "# TYPE vigil_train_jobs_taken_total counter\nvigil_train_jobs_taken_total %llu\n",
                (unsigned long long)scored, (unsigned long long)atomic_load(&p->skipped_old),
                (unsigned long long)atomic_load(&p->clock_steps),
                (unsigned long long)atomic_load(&p->relearns), (unsigned long long)trainings,
                (unsigned long long)atomic_load(&p->swaps),
                (unsigned long long)atomic_load(&p->train_failures), pipeline__due_len(p),
                (unsigned long long)atomic_load(&p->train_merged), jobs_ended, jobs_taken);
    size_t inq = 0;
    for (int s = 0; s < p->nshards; s++) {
        pthread_mutex_lock(&p->shards[s].mu);
        inq += p->shards[s].queued;
        pthread_mutex_unlock(&p->shards[s].mu);
    }
    sbuf_printf(out,
                "# HELP vigil_readings_scored_serving_total Reading vectors scored by a trained "
                "model (their device past learning).\n"
                "# TYPE vigil_readings_scored_serving_total counter\n"
                "vigil_readings_scored_serving_total %llu\n"
                "# HELP vigil_readings_scored_lstm_total Of those, the vectors an LSTM predicted.\n"
                "# TYPE vigil_readings_scored_lstm_total counter\nvigil_readings_scored_lstm_total "
                "%llu\n",
                (unsigned long long)atomic_load(&p->scored_serving),
                (unsigned long long)atomic_load(&p->scored_lstm));
    sbuf_printf(out,
                "# HELP vigil_readings_batched_total Readings of group members stepped together "
                "in one batched model step.\n# TYPE vigil_readings_batched_total counter\n"
                "vigil_readings_batched_total %llu\n",
                (unsigned long long)atomic_load(&p->batched));
    sbuf_printf(out,
                "# HELP vigil_inference_queue_readings Readings waiting for their detector.\n"
                "# TYPE vigil_inference_queue_readings gauge\n"
                "vigil_inference_queue_readings %zu\n",
                inq);
    uint64_t cum[10];
    for (int i = 0; i < 8; i++)
        cum[i] = atomic_load(&p->step_hist[i]);
    prom_histogram(out, "vigil_inference_seconds", "Time of one detector step.", sb, cum, 8, scored,
                   atomic_load(&p->step_ns_total) / 1e9);
    for (int i = 0; i < 10; i++)
        cum[i] = atomic_load(&p->delay_hist[i]);
    uint64_t fed = scored + atomic_load(&p->skipped_old);
    prom_histogram(out, "vigil_score_delay_seconds",
                   "Delay from a reading's commit (its acknowledgement) to its device's updated "
                   "status.",
                   dlb, cum, 10, fed, atomic_load(&p->delay_us_total) / 1e6);
    for (int i = 0; i < 8; i++)
        cum[i] = atomic_load(&p->train_hist[i]);
    prom_histogram(out, "vigil_training_seconds", "Time of one training job.", tb, cum, 8,
                   atomic_load(&p->train_jobs), atomic_load(&p->train_ms_total) / 1e3);
    pipeline__arrivals_metrics(p, out);
    return device_families(p, out, max_devices);
}

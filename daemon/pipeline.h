/* daemon/pipeline.h: the online pipeline: every committed reading goes to its device's
 * detector (model/detector.h) on an inference worker; training runs on a separate pool; the
 * results (status, predictions, anomaly events, model versions) are served to the API.
 *
 * Threads: pipeline_feed runs on the storage writer thread (after each commit). Each device
 * belongs to one inference shard (hash of its id), whose thread scores its readings in commit
 * order. Training jobs run on the training pool. The query functions are "any thread" (HTTP
 * handlers). Per device, a mutex guards the detector and everything derived from it; the lock
 * order is devs_lock (read) -> device mu; shard queues have leaf locks. */
#ifndef VIGIL_PIPELINE_H
#define VIGIL_PIPELINE_H

#include "api.h"
#include "batch.h"
#include "detector.h"
#include "sbuf.h"
#include "storage.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pipeline_opts {
    int workers;        /* inference shards (threads) */
    int train_threads;  /* training pool threads */
    int train_nice;     /* nice increment of the training threads (ingest and scoring first) */
    int shard_nice;     /* nice increment of the inference (shard) threads (0: none) */
    size_t shard_queue; /* most readings waiting per shard before the writer waits */
    size_t predictions; /* predictions kept per device (a ring) */
    size_t group_rows;  /* readings a group's training pools from its members' windows at most,
                           whole windows in turn from one training to the next (0: all) */
    size_t events;      /* anomaly events kept per device */
    int versions;       /* model versions kept per device */
    int save_every;     /* readings between saves of a device's detector (0: only at exit) */
    struct detector_config det;
    /* Episodes opening and ending, maintenance beginning and ending, devices' state changes
     * are published here (borrowed: outlives the pipeline); NULL: not published. */
    api_events_t *hub;
    /* A device publishes at most one state message per this many ms; a change within it is
     * held and the state then current sent when it ends (pipeline_maint_tick). 0: every
     * change at once. */
    unsigned state_min_ms;
    /* Channel limits (a device's attributes): the forecast check of a device with limits runs
     * at most once per limit_check_every scored readings, looking limit_horizon steps ahead
     * (0: no forecast alarms, only "exceeded"); daemon/pipeline_limits.c. */
    int limit_check_every;
    int limit_horizon;
    /* An event continues the device's previous one when that ended "cleared" at most this
     * many scored readings before it opened (docs/reliability.md "One fault, one chain");
     * -1: 2 x det.err_short; 0: never. */
    int continue_within;
} pipeline_opts_t;

/* Defaults: 1 worker, 1 training thread, 1,000,000 readings, 2,000 predictions, 8,000 pooled
 * group rows,
 * 16 events in memory (all are in the store), 10 versions, a save every 10,000 readings,
 * a state message per device per 1,000 ms at most, a limit forecast check every 10 readings
 * looking 60 steps ahead, events continuing one another within 2 x err_short readings,
 * detector_config_default(). */
void pipeline_opts_default(pipeline_opts_t *o);

typedef struct pipeline pipeline_t;

/* Starts the shards and the training pool. store (may be NULL: nothing is persisted) keeps the
 * model versions, anomaly events and saved detectors; it must outlive the pipeline. Returns 0,
 * ERR_NOMEM, ERR_IO. Caller owns *out; free with pipeline_destroy. */
int pipeline_create(pipeline_t **out, const pipeline_opts_t *o, store_t *store);

/* Brings back what the store kept: each device's attributes (limits), its saved detector
 * (models, thresholds, hidden state), its model versions and its last anomaly event; then
 * steps each detector through the readings committed after its save, so no device re-enters
 * learning after a restart. Call once, before readings flow. Returns 0 or an ERR_. */
int pipeline_restore(pipeline_t *p);

/* Saves every device's detector to the store (asynchronously, through its writer); a device
 * with no detector yet, or one whose training is unconfirmed, keeps its last save. *queued (may
 * be NULL) receives how many saves were queued. A full queue is waited for (store_flush, no
 * lock held) and the walk resumes. Returns how many detectors' saves failed before reaching the
 * queue (no memory; the store refusing: disk full, closing, still full after a flush), 0 when
 * none did; *first_err (may be NULL) receives the first one's ERR_ (0: none). Whether the
 * queued saves were committed is the store's to say (store_flush, then its ops_failed). */
int pipeline_save_all(pipeline_t *p, int *queued, int *first_err);

/* Stops the scoring threads (what they hold is scored first) and waits for the training under
 * way, whose LSTM training is abandoned at its next minibatch (nothing applied; its asker saved
 * as asking for a training) and which otherwise saves its detectors as it ends; the trainings
 * still waiting are not run (they are saved as asked for). Afterwards only pipeline_save_all
 * and pipeline_destroy may be called, and nothing may be fed. A second call does nothing. Loop
 * thread (the stop). */
void pipeline_stop(pipeline_t *p);

/* Says the daemon started: its loop runs from now (vigild's main, just before the loop), or a
 * stop signalled during the start ends it before it serves (main.c, vigild__start_signals_end:
 * a stop, not a failed start). The stop's lines (pipeline_stop's due trainings not run and its
 * wait for the training under way; the "restart" ends left open to the next restart) say "at
 * the stop" (or "at stop") from then on, "after the failed start" before (a start that failed
 * after the restore: the loop runs there only to close its handles, its maintenance timer never
 * ticked, and only the stop's own ticks ran, which put nothing; then vigild__teardown frees the
 * pipeline). Loop thread. */
void pipeline_set_started(pipeline_t *p);

/* pipeline_stop if not done, then puts the devices' newest prediction blocks to the store,
 * waits for their commit and frees everything. */
void pipeline_destroy(pipeline_t *p);

/* Queues a committed batch for scoring. When all its points go to one shard it takes b's
 * contents (b is left empty), else it copies them (b unchanged); the caller frees b either way.
 * Its readings' devices record their arrival now (one wall-clock reading per batch; see
 * pipeline_last_seen). Blocks while the device's shard is full (backpressure up to the
 * writer). Writer thread. */
void pipeline_feed(pipeline_t *p, batch_t *b);

/* Blocks until every reading fed so far has been scored (tests and shutdown). Any thread. */
void pipeline_drain(pipeline_t *p);

/* JSON answers for the API; *out is malloc'd text the caller frees. Return 0, ERR_NOTFOUND
 * (device unknown to the pipeline), ERR_INVAL (bad argument), ERR_RANGE (no model yet). */
int pipeline_status(pipeline_t *p, const char *device, char **out);
/* pipeline_predictions: the oldest limit entries of [from, to) in time order, or (desc) the
 * newest limit, newest first. */
int pipeline_predictions(pipeline_t *p, const char *device, int64_t from, int64_t to, size_t limit,
                         int desc, char **out);
int pipeline_forecast(pipeline_t *p, const char *device, int horizon, char **out);
/* The same answers entry by entry, as api_backend_t's pipe_predictions_each and
 * pipe_anomalies_each describe them (/query's vigil_* measurements). */
int pipeline_predictions_each(pipeline_t *p, const char *device, int64_t from, int64_t to,
                              size_t limit, int desc, api_prediction_cb cb, void *arg);
int pipeline_anomalies_each(pipeline_t *p, const char *device, int64_t from, int64_t to,
                            size_t limit, int64_t deadline_us, api_episode_cb cb, void *arg);
/* The newest events overlapping [from, to) (device NULL: the fleet's), newest start first,
 * then device name and id descending (api_backend_t's pipe_anomalies; with tie_dev, not NULL,
 * also those that started at to whose (device, id) is below (tie_dev, tie_id)): the newest
 * limit + 1, at most PIPELINE_EVENTS_READ in all. */
#define PIPELINE_EVENTS_READ 10000
int pipeline_anomalies(pipeline_t *p, const char *device, int active_only, int64_t from, int64_t to,
                       const char *tie_dev, int64_t tie_id, size_t limit, char **out);
int pipeline_models(pipeline_t *p, const char *device, char **out);

/* An operator asks for a retraining now (POST .../model/retrain): the device joins the training
 * due-set (served in the order devices became due). res is zeroed first. While the device's own
 * detector, or (session 66) another member's of its group (the group's training takes every
 * member), holds an anomaly episode open, nothing changes and 0 is returned with res->open set,
 * res->device the device that holds it and res->event its event's JSON (NULL: no event kept, or
 * out of memory): the training would learn the fault and the episode would end "cleared"
 * (session 65). With force, each such episode is ended first as pipeline_accept ends it
 * (ended_by "operator", a note naming the forced retrain, and on another member the device
 * asked), res->ended the device's ended event's JSON and res->ended_others a JSON array of the
 * other members' (NULL when none, or only that was lost), and the training is asked for (0 even
 * when it merges into one queued or running). Each call is logged at info level, and each
 * member's episode a forced retrain ends. Returns 0, ERR_NOTFOUND, ERR_RANGE (too little data),
 * ERR_BUSY (the device is already due or training), ERR_NOMEM. res's texts malloc'd (caller
 * frees). Any thread. */
int pipeline_retrain(pipeline_t *p, const char *device, int force, struct api_retrain *res);

/* An operator accepts the device's open anomaly episode as its new normal (POST
 * .../anomalies/accept): the detector ends it (detector_accept), its event ends "operator" with
 * note (copied; NULL: none) and is stored, a training is asked for at once, and the detector is
 * saved. *out: the ended event's JSON, malloc'd. Returns 0, ERR_NOTFOUND, ERR_RANGE (no episode
 * open: nothing changes), ERR_NOMEM (before anything changed, or after the acceptance when
 * only its answer was lost). Any thread. */
int pipeline_accept(pipeline_t *p, const char *device, const char *note, char **out);

/* A planned maintenance period of a device: wall-clock ms [start_ms, end_ms). Readings whose
 * timestamps fall in one are stored but neither scored nor trained on. */
struct maint_span {
    int64_t start_ms, end_ms;
};

/* The first of spans[n] other than spans[skip] (skip -1: none) that shares a moment with m
 * (half-open spans: one ending where the other starts does not), or -1. Pure. */
int pipeline_maint_overlap(const struct maint_span *spans, int n, struct maint_span m, int skip);

/* Planned maintenance (daemon/pipeline_maint.c): the device's readings timestamped in a period
 * are stored but not scored nor trained on. from_ms -1: from now, and a device in maintenance
 * now gets the new end and note instead; until_ms -1: now + minutes. An anomaly open when the
 * period begins ends "maintenance": at once when it is current, else at the first reading
 * timestamped in it (pipeline__maint_skip). note: copied, NULL: none. from_ms and until_ms of a
 * period already there (the same start and end) are that period again: its note replaced and
 * stored again (the retry of an unstored POST), not an overlap. The period is stored (its
 * commit waited for) before the return. *out: {"device", "maintenance" (as the status shows
 * it), "period" (as pipeline_maint_list lists it)}, malloc'd; on ERR_BUSY the period
 * overlapped, as listed. Returns 0, ERR_NOTFOUND, ERR_INVAL (until not after from and now),
 * ERR_BUSY (overlaps another period of the device), ERR_LIMIT (STORE_MAINT_KEEP periods not
 * past already), ERR_NOMEM (before anything changed, or after, when only the answer was
 * lost), or, when the change was made in memory but not stored, ERR_NOSPACE, ERR_CLOSED or
 * ERR_IO with *out the answer as on success: the change stays in effect until a restart. Any
 * thread. */
int pipeline_maint_start(pipeline_t *p, const char *device, int64_t from_ms, int64_t until_ms,
                         int64_t minutes, const char *note, char **out);
/* Ends the device's maintenance now (stored before the return). Returns 0, ERR_NOTFOUND,
 * ERR_RANGE (not in maintenance), or ERR_NOSPACE, ERR_CLOSED, ERR_IO (not stored: the end is
 * undone, the period goes on as before). Any thread. */
int pipeline_maint_end(pipeline_t *p, const char *device);
/* Cancels the device's scheduled period starting at from_ms (deleted from the store before the
 * return). Returns 0, ERR_NOTFOUND (device), ERR_RANGE (no period starts there), ERR_BUSY (the
 * period is past or current: not cancelled), or ERR_NOSPACE, ERR_CLOSED, ERR_IO (not stored:
 * the cancel is undone, the period still scheduled). Once stored, the streams (o.hub) get
 * "event: maintenance" with the period's "state" "cancelled". Any thread. */
int pipeline_maint_cancel(pipeline_t *p, const char *device, int64_t from_ms);
/* The device's periods, oldest first: {"device", "periods": [{"from", "from_ts", "until",
 * "until_ts", "note", "state": "past|current|scheduled"}]}, malloc'd into *out. Returns 0,
 * ERR_NOTFOUND, ERR_NOMEM. Any thread. */
int pipeline_maint_list(pipeline_t *p, const char *device, char **out);
/* The device's current maintenance as the status shows it ("null" when none), malloc'd into
 * *out. Returns 0, ERR_NOTFOUND (unknown), ERR_RANGE (never in maintenance: *out NULL),
 * ERR_NOMEM. Any thread. */
int pipeline_maint_json(pipeline_t *p, const char *device, char **out);
/* The held counts of the pipeline's rate-limited lines (failed trainings, detectors not saved,
 * episodes' openings, ends and ends by the detector, limit alarms and limits exceeded:
 * common/log.h log_limit_take) whose minute is over, each said in a line of its own at its
 * kind's level, "pipeline: WHAT: N more since the last one logged, not logged one by one"
 * (task ops67: a flood that stopped left its count to a line that never came); stop: all of
 * them at once (the stop's last lines). Costs seven atomic loads when nothing is held. Any
 * thread. */
void pipeline_log_flush(pipeline_t *p, int stop);
/* Announces on the event streams (o.hub) the maintenance periods that began or ended by the
 * clock (vigild's) since the last call: "event: maintenance" with {"device", "maintenance",
 * "period"} as a POST's answer gives them, the period "current" or "past". Costs one atomic
 * load until the fleet's earliest boundary passes, then one walk over the devices. Call it
 * often (the loop's timer: every MAINT_TICK_MS); one caller at a time. */
void pipeline_maint_tick(pipeline_t *p);

/* Queues to the store the arrivals (newest arrival, and the arrival and timestamp of the newest
 * scored reading) of every device whose arrivals changed since they were last queued or
 * restored, so silence and last_seen survive a restart: when force, now, every device in one
 * asynchronous put; else in a pass that starts once its period (PIPE_ARRIVALS_MS, 60 s) has
 * passed since the last one began and walks PIPE_ARRIVALS_SLICE devices a call, one put a
 * slice (call it often: the loop's timer). A put refused (the store's queue full, the disk
 * full) is tried again after a second, the pass resuming at its slice; after a put lost with
 * its transaction (the store's ops_failed moved) the next pass queues every device.
 * Costs, per device, one relaxed load and its mutex for two fields; nothing on the readings'
 * path. Returns the devices this call queued, or an ERR_ (negative). The loop thread (or the
 * stop, on it) only: one caller at once. */
int pipeline_arrivals_flush(pipeline_t *p, int force);

/* Changes o.state_min_ms (a reload). A device's next state message starts an interval of the
 * new length; a change held now is published by the first tick at most the new interval later
 * (its old interval's end, if sooner). Any thread. */
void pipeline_set_state_min_ms(pipeline_t *p, unsigned ms);

/* Why a version cannot serve a device (pipeline_rollback's ERR_INVAL): the channels it was
 * trained on and the device's now; both 0 when it kept no parameters. An LSTM of another size
 * (the same channel counts): size {hidden, layers} of the version's LSTM and dev_size of the
 * device's model (the hidden size, model.hidden then, and the number of layers, 1: no
 * setting, it was made with); else all 0. */
struct pipeline_fit {
    int trained, now;
    int size[2], dev_size[2];
    /* A rollback that returned 0: 0 when what serves now is saved (committed) before the
     * return, else why not (ERR_NOSPACE, ERR_IO, ERR_LOCKED, ERR_CLOSED, ERR_BUSY, ERR_NOMEM):
     * the version serves, and a restart (a crash or a stop whose save fails too) would serve
     * the one before it again (session 68: nothing saved a rollback but a stop or a snapshot). */
    int unsaved;
};

/* Makes a kept version serve again: an LSTM's from its checkpoint, a linear model's from its
 * coefficients, persistence as it is (each version that swapped one in keeps them in the
 * store). Returns 0, ERR_NOTFOUND (no such device), ERR_RANGE (it keeps no such version that
 * served, or the version's record was not stored), ERR_INVAL (it cannot serve the device as it
 * is, *fit says why: fit->trained 0, a linear or persistence version recorded by an older
 * vigild, which kept no parameters for them; else trained on fit->trained channels and the
 * device has fit->now, or, the same counts, an LSTM of another size than the device's model,
 * fit->size and fit->dev_size), ERR_CORRUPT (kept bytes damaged, or in a later vigild's
 * format), or the store's error. *fit is always set. On 0 the detector is saved and the save
 * committed before the return (fit->unsaved says when that failed). Any thread. */
int pipeline_rollback(pipeline_t *p, const char *device, uint32_t version,
                      struct pipeline_fit *fit);

/* The serving LSTM's weights as safetensors (PyTorch names); *buf is malloc'd. ERR_RANGE when
 * the device has no model yet, ERR_INVAL when a linear model or persistence serves. */
int pipeline_weights_get(pipeline_t *p, const char *device, void **buf, size_t *len);

/* Installs safetensors weights as a new version. ERR_INVAL (shape), ERR_CORRUPT (bad file).
 * On 0 the version and the detector are saved and committed before the return; *unsaved (not
 * NULL) gets 0, or why that failed (as pipeline_fit's unsaved: the weights serve until a
 * restart). */
int pipeline_weights_put(pipeline_t *p, const char *device, const void *buf, size_t len, char *why,
                         size_t cap, int *unsaved);

/* Sets channel limits from a device's attributes JSON ({"limits":{"temp":{"max":90}}}).
 * Any thread. */
void pipeline_set_attrs(pipeline_t *p, const char *device, const char *attrs_json);

/* Makes a device the store holds known to the pipeline before its first readings are scored
 * (they are committed and acknowledged first, and reach the pipeline's queue only then), as a
 * PUT of the device does: a request right after the first reading's acknowledgement finds it.
 * The caller checks the store. Returns 0 or ERR_NOMEM. Any thread. */
int pipeline_adopt(pipeline_t *p, const char *device);

/* 1 when the pipeline knows device (and it is not deleted), else 0. Any thread. */
int pipeline_knows(pipeline_t *p, const char *device);

/* Before a write of b: calls cb for each field of b that would bring its device, whose
 * detection is on (a model trained), a new channel, which makes the model start learning again
 * when the reading is scored (pipeline_score.c): only in a point the shard will score
 * (pipeline__point_fate: of at most PIPE_POINT_FIELDS (256) fields, not out of order behind
 * the device's newest or b's points before it, not far ahead, not in a maintenance period),
 * and only in the device's first such point of b
 * (learning again after it, it loses nothing more). A channel the model has no room for
 * (DETECTOR_MAX_CHANNELS) is not one. A device the pipeline does not know yet, or still
 * learning, reports nothing, even when its first training ends between this call and the
 * scoring (the scoring then warns in the log and counts the relearn; told here as "possibly
 * detecting" it would be wrong whenever the reading is scored first, which drops the training
 * as stale and loses nothing). A prediction: the shard may differ for a point at the edge of
 * "far ahead", a run behind the newest that becomes the timeline (a clock stepped back), a
 * training that ends meanwhile, or a concurrent write. cb's group and leads:
 * pipeline__group_place (a group of one is no group). Any thread. */
void pipeline_new_channels(pipeline_t *p, const batch_t *b, api_channel_cb cb, void *arg);

/* 1 when device's model has no room for channel: DETECTOR_MAX_CHANNELS channels, none of them
 * named channel (its readings are stored, not modelled, and its limits never judged), else 0.
 * Any thread. */
int pipeline_channel_unmodelled(pipeline_t *p, const char *device, const char *channel);

/* A device deleted from the store: the pipeline forgets what it learnt (detector, channels,
 * predictions, events, versions, attributes, group), so its status is a 404 again and readings
 * sent to the same id later start a new device from learning, whatever their timestamps. A
 * training under way for it is dropped when it ends. Any thread. */
void pipeline_forget(pipeline_t *p, const char *device);

/* When device's newest reading arrived (wall-clock ms of the commit that held it, whatever the
 * reading's own timestamp), or -1: unknown device, or none arrived since the pipeline started.
 * Any thread; takes no device mutex (a listing never waits for a step or a training). */
int64_t pipeline_last_seen(pipeline_t *p, const char *device);

/* The buckets of vigil_devices_silent, in seconds: a device counts in each bucket whose bound
 * its silence exceeds. Fixed: 60 s is beyond any live feed's interval (vigil-sim 1 s, Telegraf's
 * default flush 10 s), 3600 s catches hourly reporters. */
#define PIPELINE_SILENT_N 3
// clang-format off
#define PIPELINE_SILENT_AFTER {60, 300, 3600}
// clang-format on

/* How long a device has been silent at wall-clock now_ms: since seen_ms, its newest reading's
 * arrival, or, when none arrived since the pipeline started (seen_ms < 0), since start_ms, the
 * pipeline's start (a lower bound: what came before a restart is not known); 0 when the clock
 * went back past it. Adds 1 to silent[k] for each bucket (PIPELINE_SILENT_AFTER) it exceeds
 * (more than: exactly 60 s is not silent after 60). Returns the silence in ms. Pure. */
int64_t pipeline_silence(int64_t now_ms, int64_t seen_ms, int64_t start_ms,
                         size_t silent[PIPELINE_SILENT_N]);

/* Appends the pipeline's Prometheus families. The per-device ones list every device while there
 * are at most max_devices, else only those in warning or anomaly (at most max_devices of them);
 * 0 lists none. Returns the number of devices left out. Any thread; holds no lock while it
 * formats, so a scrape never stalls ingest. Out of memory: out->oom is set. */
size_t pipeline_metrics(pipeline_t *p, sbuf_t *out, size_t max_devices);

#endif

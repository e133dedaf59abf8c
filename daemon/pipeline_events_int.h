/* daemon/pipeline_events_int.h: a device's anomaly events (pipeline_events.c): opening,
 * extending and ending them, their chains across a "cleared" end and a maintenance period or a
 * restart, and reading back the JSON they are stored as. Split from pipeline_int.h (session 60:
 * it had grown to 957 lines), which keeps struct event (struct dev holds its list) and the
 * events' JSON; included by the files that call these. Callers hold d->mu, as each says. */
#ifndef VIGIL_PIPELINE_EVENTS_INT_H
#define VIGIL_PIPELINE_EVENTS_INT_H

#include "pipeline_int.h"

/* The lines a minute of each of the pipeline's warnings a whole fleet can hit at once (struct
 * pipeline's train_fail_log, save_fail_log: common/log.h log_limit_take), and of anomaly
 * episodes' openings and of their ends (event_open_log, event_end_log, event_warn_log:
 * pipeline_evlog.c) and of limit alarms' changes (limit_log, limit_warn_log: pipeline_limits.c),
 * each of these a kind apart. */
#define PIPE_WARN_BURST   5
#define PIPE_WARN_EVERY_S 60
#define PIPE_EVLOG_BURST  10

/* Ends d's active event (if any) as `why` with note (taken, NULL: none), at the last reading
 * scored, and stores it. Returns the event's JSON (malloc'd; NULL when out of memory). An episode
 * without a kept event is answered, when untracked is set, as an event with id 0 that is
 * neither kept nor stored; else nothing is ended and NULL returned. Caller holds d->mu. */
char *pipeline__event_end(pipeline_t *p, struct dev *d, int why, char *note, int untracked);

/* Forgets d's cleared event (dev.cleared): the next event continues nothing. A maintenance
 * period that begins, an operator's accept (both through pipeline__event_end, even when they
 * end no event), a rollback and a PUT of weights call it. Caller holds d->mu. */
void pipeline__event_chain_break(pipeline_t *p, struct dev *d);

/* A maintenance period of d began (by the clock, pipeline_maint_tick; or a DELETE found it
 * begun before the tick's look; or the restore found one begun while vigild was stopped), or
 * another model serves d (a rollback, a PUT of weights or a training's swap): breaks the chain
 * (pipeline__event_chain_break) and marks the event open now, if any, chain_broken (its row
 * stored again, not published), so that its end "cleared" (on readings timestamped before the
 * period, or judged by the new model) does not make it continuable. No store read; the store
 * puts are queued, never waited for. Caller holds d->mu. */
void pipeline__event_break_open(pipeline_t *p, struct dev *d);

/* At a restart (pipeline_restore, after the saved detector is loaded and before the catch-up):
 * first, when the restore has the device's newest active stored event ended ("restart": its
 * end lost, pipeline_restore_events.c), that end is stored (no later than the start of a
 * later stored event of the device), published and counted, a warning logged (docs/reliability.md,
 * "Builds told apart, an event left open by a failed stop, leftovers (session 59)"). Then, when the
 * device's newest stored event ended "cleared" at or before the saved detector's last reading, with
 * a side for its leading channel, d->cleared is that event again, dated as many readings back as
 * the store holds after its end up to that reading (docs/reliability.md, "Session 30"): the next
 * event may continue it as it would have without the restart. Else nothing. A maintenance period of
 * d (restored before) that began by now and had not ended by that event's end breaks it there (its
 * row marked), and one that had not ended by d's last reading marks an event restored active
 * (pipeline__event_break_open): a period that began while vigild was stopped (docs/reliability.md,
 * "Session 31"). Queries the store: not inside another query's callback. Caller holds d->mu. */
void pipeline__event_chain_restore(pipeline_t *p, struct dev *d);

/* Stores and publishes e, an event of d the restore ended "restart" (its end lost; how: why,
 * logged after "was stored open"); once queued, counts it; unless quiet, logs it ended, or
 * put again while vigild runs when the put was not queued (pipeline__restart_keep). stored
 * (borrowed, may be NULL): the row's stored JSON, put with the end set instead of e's when d
 * knows no channels (restored without a detector); a stored JSON that is no object is replaced
 * by e's (session 61). Returns 0 or the put's code (ERR_BUSY, ERR_NOMEM). Caller holds d->mu. */
int pipeline__event_restart_store(pipeline_t *p, struct dev *d, const struct event *e,
                                  const char *stored, const char *how, int quiet);
/* The restore's "restart" ends kept until they are known stored (pipeline_restart_retry.c;
 * docs/reliability.md, "The restore's open events, the leads of session 60 (session 61)"): a
 * put the store refused, or queued with a transaction that then failed, is put again while
 * vigild runs. Keeps e's end as js (takes ownership, even on failure; NULL: its copy failed),
 * with queued: its put was queued (counted, logged and published then); replayed: e is the
 * catch-up's end of a row it replayed (left_end), held in d's list: its JSON built again from
 * that event at each put, and the log lines count it apart from the "restart" ends (task
 * events64). Returns 0 (kept) or ERR_NOMEM (not kept: js NULL, or no room; counted, said at the
 * restore's end). Restore only. */
int pipeline__restart_keep(pipeline_t *p, struct dev *d, const struct event *e, char *js,
                           int queued, int replayed);
/* The number of ends kept so far: the restore's mark before it queues some. Restore only. */
size_t pipeline__restart_mark(const pipeline_t *p);
/* After the restore waited for the writer: the ends kept from mark on are dropped when their
 * put was queued and lost is 0 (stored), else kept to be put again. Restore only. */
void pipeline__restart_check(pipeline_t *p, size_t mark, int lost);
/* At the restore's end: the ends still kept are put again from the maintenance tick (logged
 * once), or, none kept, the list goes. Restore only. */
void pipeline__restart_begin(pipeline_t *p);
/* The maintenance tick's part (pipeline_maint_tick, the loop): the ends whose puts were handled
 * with none lost since are stored (counted and published then, those not already, unless their
 * device was deleted; logged once all are); a round every PIPE_RESTART_RETRY_MS puts the others
 * again, paced (PIPE_RESTART_TICK_PUTS a tick, none while the store's queue of puts is half
 * full; a transient refusal goes on at the next tick, any other drops that end);
 * PIPE_RESTART_RETRIES rounds or PIPE_RESTART_SPAN_MS at most, then left to the next restart
 * (logged). Once the pipeline stopped (the stop's ticks), the settle only: no puts. Costs a
 * pointer test when none is kept. */
void pipeline__restart_retry(pipeline_t *p);
/* The stop's end of the retries (pipeline_destroy): logs how many kept ends are left open to
 * the next restart (their puts refused, lost, or not put: the stop's ticks put none), if any
 * ("at the stop", or "after the failed start" when pipeline_set_started was not called), and
 * what the retries came to for the others (stored, dropped: restart_done's lines), then frees
 * what is kept. Loop only, after the stop's last tick. */
void pipeline__restart_stop(pipeline_t *p);

/* Rows copied out of the restore's events read (pipeline_restore_events.c). */
struct stale_row;
struct ev_rows {
    struct stale_row *v;
    size_t n, room;
    size_t lost; /* rows not copied (out of memory) */
};

/* The restore's read of the open stored events of names[0..n) (pipeline_restore_events.c):
 * each device's newest goes on or ends, its other open rows end "restart", except the rows
 * opened after the saved detector's save, left to the catch-up's replay: copied into left (zeroed
 * first by the caller), ended by pipeline__event_ids_apply if the replay did not open them again.
 * Restore only. */
void pipeline__events_restore(pipeline_t *p, char *const *names, size_t n, struct ev_rows *left);

/* The restore's read of each device's highest stored event id (store_events_max_ids), after
 * pipeline__events_restore: a device's next event is numbered past it, so the events' upsert
 * does not overwrite a stored one (docs/reliability.md, "A device restored without a detector
 * numbers its events past the stored ones (session 60)"). A device without a detector takes it
 * at the read; one with a detector at pipeline__event_ids_apply, after its catch-up. A failed
 * read is logged. Restore only. */
struct ev_id {
    struct dev *d;
    uint64_t id;
};
struct ev_ids {
    pipeline_t *p;
    struct ev_id *v;
    size_t n, room;
    size_t lost;         /* devices not kept (out of memory) */
    int read;            /* the highest ids' read succeeded (dev.replay_max holds them) */
    struct ev_rows left; /* pipeline__events_restore's rows left to the catch-up */
};
void pipeline__event_ids_read(pipeline_t *p, struct ev_ids *ids);
/* After the catch-up: ends "restart" the rows left to it that it did not open again (ids->left),
 * then raises each kept device's next event id to its stored highest; frees ids' lists. */
void pipeline__event_ids_apply(struct ev_ids *ids);
/* Before d's catch-up (d restored with a detector): reads, in one query, the start and id of
 * each of d's stored events that began after the saved detector's last reading into d->replay,
 * which the catch-up's openings take their ids from (pipeline_events.c event_next_id), freed
 * once the catch-up is drained (pipeline_restore). Not read when maxed (ids->read: d->replay_max
 * is d's highest stored id) and that id is not past d's next one: no event was stored after the
 * save (a clean stop's restore; the read a device made the restore of 4,000 devices half as
 * long again: review of events64). Returns 0, or the store's error (logged by the caller;
 * d->replay left NULL: the replay numbers from the saved next id, as before task events64).
 * Caller does not hold d->mu. Restore only. */
int pipeline__event_replay_keys(pipeline_t *p, struct dev *d, int maxed);
/* After the catch-up is drained, before its left rows' fates (pipeline__event_ids_apply): d's
 * provisional event still open (event.prov, pipeline_events.c event_settle) numbered past every
 * stored row, stored and published; a detector save held for its id (pipeline__save_held) made.
 * Caller does not hold d->mu. Restore only. */
void pipeline__event_replay_settle(pipeline_t *p, struct dev *d);

/* An event restored active at a restart (pipeline_restore_events.c on_event): its sides from its
 * stored JSON into e->above / e->below, and, unless d->lean came with the saved blob
 * (e->lean_kept), d->lean signed by them (e->share as the restored magnitude), so its side, its
 * continuing and its being continued survive the restart; and its "chain_broken" (a period began
 * while it was open) into e->chain_broken. Caller holds d->mu. */
void pipeline__event_sides_restore(struct dev *d, struct event *e, const char *info_json);

/* The side of its prediction channel c of e was on: +1 above, -1 below, 0 unknown (the active
 * event's from d->lean, falling back on a restored event's sides; an ended one's as fixed at
 * its end). Caller holds d->mu. */
int pipeline__event_side(const struct dev *d, const struct event *e, int c);

/* Reads a stored event's JSON (pipeline__event_json's): the channels its "channels" name with
 * side "above" (*above, bit c for d->ch[c]) and "below" (*below), the index in d->ch of the
 * first listed (its leading channel; -1 none), its "fault" (*fault; 0 none), each listed
 * channel's share (its fraction of the episode) into share[c] unless share is NULL (the others
 * left as they are), and returns its ended_by (DET_END_ / PIPE_END_, 0 active or unknown).
 * Caller holds d->mu. */
int pipeline__event_info_read(const struct dev *d, const char *info_json, uint64_t *above,
                              uint64_t *below, int *lead, uint64_t *fault, float *share);

/* A stored event's JSON with "chain_broken": true added (malloc'd; NULL out of memory or not
 * JSON), and whether a stored JSON says so (pipeline__event_chain_break / _restore). */
char *pipeline__event_info_break(const char *info_json);
int pipeline__event_info_broken(const char *info_json);

/* Appends a zeroed event to d's list (growing it on demand), dropping the oldest when o.events
 * are kept. Returns it, or NULL when out of memory or o.events is 0. Caller holds d->mu. */
struct event *pipeline__event_add(pipeline_t *p, struct dev *d);
/* Empties d's event list, freeing the events' notes (the list's room stays). Caller holds d->mu,
 * or d is not shared. */
void pipeline__events_clear(struct dev *d);
/* Opens, extends or closes d's anomaly event after the step that gave r for the reading at ts
 * (pipeline_events.c). The device's shard (point_finish); caller holds d->mu. */
void pipeline__track_event(pipeline_t *p, struct dev *d, int64_t ts,
                           const struct detector_result *r);
/* Whether a limited line of l's kind, at level, is said now (pipeline_evlog.c): 0 during
 * pipeline_restore (its catch-up replays what the vigild before said) unless unsaid (an
 * episode no stored row had: event.unsaid), 0 below the log's level
 * without taking any of l's lines (read67a's finding 4: unprinted lines used up the minute's
 * allowance, and the next printed one counted them as left out), and past PIPE_EVLOG_BURST
 * lines a minute (the occurrence then counted); else 1, note (size bytes) what the line adds
 * (log_limit_note). One l serves one level. Any thread. */
int pipeline__evlog_due(pipeline_t *p, struct log_limit *l, enum log_level level, int unsaid,
                        char *note, size_t size);

/* Says a line of d's (an episode's, a limit's: pipeline_evlog.c): at once, in the log's turn of
 * d's shard (struct evlog_lines.mu), or, d's shard scoring it (d->log_to), added to the shard's
 * list, written by pipeline__evlog_write once the shard has let d->mu go (a line it cannot keep,
 * out of memory, at once after the list). Caller holds d->mu. */
void pipeline__evlog_say(pipeline_t *p, const struct dev *d, enum log_level level, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));
/* The shard, before it lets its devices' locks go: 1 when l has lines, l->mu then taken (the
 * log's turn kept until pipeline__evlog_write); else 0. */
int pipeline__evlog_hold(struct evlog_lines *l);
/* Writes l's lines, in the order said, empties l and lets l->mu go (pipeline__evlog_hold gave
 * 1). Shard thread, holding no device's lock. */
void pipeline__evlog_write(struct evlog_lines *l);
void pipeline__evlog_lines_init(struct evlog_lines *l);
/* Writes what l still has (its shard stopped) and frees it. */
void pipeline__evlog_lines_deinit(struct evlog_lines *l);

/* The log lines of e's opening and of its end (pipeline_evlog.c): at most PIPE_EVLOG_BURST of
 * each a minute, none before pipeline_restore is over but e->unsaid's. Caller holds d->mu. */
void pipeline__event_log_open(pipeline_t *p, const struct dev *d, const struct event *e);
void pipeline__event_log_end(pipeline_t *p, const struct dev *d, const struct event *e);

#endif

/* daemon/pipeline_int.h: the pipeline's internal structures, shared by the daemon/pipeline*.c
 * files: pipeline.c (devices, shard threads, control calls), pipeline_score.c (the reading
 * path), pipeline_query.c (JSON answers), pipeline_predict.c (predictions, forecasts),
 * pipeline_metrics.c (/metrics) and the others named in their own header comments. */
#ifndef VIGIL_PIPELINE_INT_H
#define VIGIL_PIPELINE_INT_H

#include "log.h" /* struct log_limit */
#include "nameidx.h"
#include "pipeline.h"
#include "wpool.h"

#include <float.h>
#include <pthread.h>
#include <stdatomic.h>
#include <uthash.h>

/* A model version. What it swapped in, when it has it kept (an LSTM's checkpoint, or a linear
 * model's or persistence's parameters, detector_pred_save), is in the store only
 * (store_model_put_keep at record time, store_model_get at rollback): memory keeps no copy. */
struct version {
    uint32_t version;
    char *info_json; /* owned: created, kind, swapped, metrics (see pipeline__version_json) */
    int has_ckpt;    /* the store holds its checkpoint or parameters: it can be rolled back to */
    int peeked;      /* a record without "channels": its kept bytes' header was read for them */
};

/* How an event ended: the detector's enum detector_end, and beyond it the daemon's own. */
#define PIPE_END_RESET    (DET_END_RELEASED + 1)  /* the detector started over (channels changed) */
#define PIPE_END_OPERATOR (PIPE_END_RESET + 1)    /* accepted through the API (pipeline_accept) */
#define PIPE_END_MAINT    (PIPE_END_OPERATOR + 1) /* maintenance began (pipeline_maint_start) */
/* Stored open, its end lost, and ended at a restart: the saved detector had opened it and was
 * in no episode, or it was behind a later open event of its device (pipeline_restore_events.c;
 * docs/reliability.md, sessions 59 and 60). */
#define PIPE_END_RESTART (PIPE_END_MAINT + 1)
#define PIPE_END_N       (PIPE_END_RESTART + 1)
/* What opened an event: the detector's enum detector_open (0: unknown, an event saved before
 * events told it, or one the detector did not open on this run's reading). */
#define PIPE_OPEN_N (DET_OPEN_LASTING + 1)

/* The JSON and /metrics names of a device's state (DET_LEARNING..DET_ANOMALY), of
 * event.ended_by (index 0: still active, NULL) and of event.opened_by (index 0: unknown, NULL).
 * Defined in pipeline_query.c. */
extern const char *const pipeline__state_names[4];
extern const char *const pipeline__end_names[PIPE_END_N];
extern const char *const pipeline__open_names[PIPE_OPEN_N];
/* The JSON names of a serving predictor's kind (DET_KIND_PERSISTENCE..DET_KIND_LSTM), for the
 * status, the model versions and the forecast. Defined in pipeline_query.c. */
extern const char *const pipeline__kind_names[3];

struct event {
    uint64_t id;
    int64_t start_ts, end_ts; /* end_ts < 0 while active */
    float peak;
    float share[DETECTOR_MAX_CHANNELS]; /* accumulated score-weighted contributions */
    int ended_by;  /* enum detector_end or a PIPE_END_ beyond it; 0 while active */
    int opened_by; /* enum detector_open; 0 unknown */
    char *note;    /* owned (pipeline__events_clear frees it): the operator's note, NULL: none */
    /* The fault it continues (pipeline__track_event, docs/reliability.md "One fault, one
     * chain"): the id of the event it continues and the chain's first event; both 0 when it
     * continues none.
     * An event active across a restart gets them back from its stored row (on_event). */
    uint64_t continues, fault;
    /* The side of its prediction each channel was on over the episode (bit c: channel c), as
     * fixed at its end from dev.lean (event_sides_fix), or as its stored row names them (an
     * event restored active): "side" "above" / "below" in its JSON; neither bit: unknown. The
     * active event's sides are dev.lean's (event_side). */
    uint64_t above, below;
    /* 1 once a maintenance period, an operator's action or a rollback broke its chain after it
     * ended cleared (pipeline__event_chain_break), or a maintenance period began while it was
     * open (pipeline__event_break_open; then its clear is not remembered): "chain_broken" in
     * its JSON and stored row, so a restart does not let the next event continue it (review,
     * session 30; session 31). */
    int chain_broken;
    /* 1 on the event active at a save restored with dev.lean as it was (blob format 5): its
     * sides go on from it, not from its stored row's (pipeline__event_sides_restore). */
    int lean_kept;
    /* 1 on an event restored active that opened after the saved detector (in no episode) was
     * saved (a crash; pipeline_restore_events.c event_restore): the catch-up's readings before
     * its start do not end it, and the one that enters anomaly again goes on with it (review,
     * session 59; pipeline__track_event), unless an earlier event opened after the save too
     * replays first: then it is dropped, and the replay opens it again under its id (session
     * 63). dev.next_event_id stays the saved one until it goes on. */
    int ahead;
    /* 1 on the catch-up's opening at no key's start with a key not hit after it: id 0, not
     * stored or published until numbered (event_settle: the key's id once a reading of it
     * reaches that key's start, else one past every stored row; read64c's findings). */
    int prov;
    /* 1 on the catch-up's opening numbered past every stored row with the device's keys read
     * (event_past_id with d->replay_keyed, at once or by event_settle): no stored row had it,
     * so no vigild before logged it (readings acknowledged but not scored at a kill -9); its
     * opening and end are logged during the restore (pipeline__evlog_due). Task ops68. */
    int unsaid;
    /* 1 on the catch-up's event that is a stored row still open at the kill (the `ahead` row
     * gone on with, or an opening that took the key of a row with no end): its opening was
     * said, its end by no vigild, so the end's line is said during the restore too
     * (pipeline__event_log_end; read69a's finding 1: before, an end the catch-up replayed
     * was never logged). */
    int end_unsaid;
};

/* A device group (pipeline_groups_int.h; its table, member lists and walks: pipeline_groups.c). */
struct group;

_Static_assert(DETECTOR_MAX_CHANNELS <= 64, "dev.last_present is a 64-bit mask");

/* The prediction ring's exact tail (entries), and a sealed block's entries at most and at
 * least (pipeline__ring_block_len chooses between them by the channel count; pipeline_ring.c
 * describes the layout). */
#define PIPE_RING_TAIL      256
#define PIPE_RING_BLOCK     64
#define PIPE_RING_BLOCK_MIN 16

/* A device's prediction ring: per scored reading its timestamp, score, state and predicted
 * values, the newest `cap` of them; the newest min(cap, PIPE_RING_TAIL) or so exact, older ones in
 * sealed blocks (timestamps, scores and states exact, predicted values within 1/131,070 of the
 * channel's range over their block). With a store, a sealed block is handed to it (one at a time,
 * pipeline_score.c) and freed once committed: memory keeps the tail and the blocks not yet
 * committed, the store the older ones (pipeline_ring.c). Guarded by its device's mu, but ack. */
struct pred_ring {
    size_t cap; /* entries answered at most (o.predictions; 0: none recorded) */
    int nch;
    /* The exact tail: a circular array of tail_room entries (grown on demand up to tail_cap),
     * tail_len of them valid, the newest just before tail_head. One allocation of packed
     * entries, each ts, score, state, pred [nch] together (pipeline_ring.c). */
    void *tail;
    size_t tail_cap, tail_room, tail_head, tail_len;
    /* Live sealed blocks, oldest first: a circular array of blk_room pointers from blk_head
     * (NULL: the block is in the store only), then in the same allocation blk_n [blk_room], each
     * block's entries. Blocks [0, blk_mem) from the oldest are in the store, [blk_mem, blk_len)
     * in memory. Live block i has the sequence number seq_next - blk_len + i. */
    unsigned char **blk;
    uint16_t *blk_n;
    size_t blk_room, blk_head, blk_len, blk_mem;
    size_t sealed;     /* entries in the live blocks */
    size_t skip;       /* the oldest entries held but not answered (beyond cap) */
    int64_t seq_next;  /* the next sealed block's number */
    int64_t sent_next; /* the next block to put to the store */
    /* The store's reports (pipeline__ring_ack, writer thread): every block up to ok_upto is
     * committed; failed: a put failed since the last settle. Left alone by deinit. */
    struct pred_ack {
        atomic_int_fast64_t ok_upto;
        atomic_int failed;
    } ack;
};

/* A ring entry, oldest first; returns nonzero to stop the walk. pred is borrowed for the call. */
typedef int (*pipeline__ring_fn)(void *arg, int64_t ts, float score, uint8_t state,
                                 const float *pred);

/* Entries of a block sealed from a full tail for nch channels: the most, up to PIPE_RING_BLOCK,
 * whose block (regular timestamps, 16-bit values) and its row in the store fit three to a 4 KiB
 * page; at least PIPE_RING_BLOCK_MIN (more than 18 channels: then fewer to a page). */
size_t pipeline__ring_block_len(int nch);

/* An empty ring for cap entries of nch channels, blocks numbered from seq_next (allocates
 * nothing). */
void pipeline__ring_init(struct pred_ring *r, size_t cap, int nch, int64_t seq_next);
/* Frees what the ring holds; it is then empty with cap 0. NULL is a no-op. */
void pipeline__ring_deinit(struct pred_ring *r);
/* Appends an entry (pred [nch] copied), dropping the oldest beyond cap. Returns 0, or ERR_NOMEM
 * (out of memory, or cap 0: the entry is not recorded and the ring is unchanged). No
 * allocation but a tail growth (up to PIPE_RING_TAIL entries) and, once the tail is full, one block
 * per PIPE_RING_BLOCK entries. */
int pipeline__ring_push(struct pred_ring *r, int64_t ts, float score, uint8_t state,
                        const float *pred);
/* Calls fn for each answered entry held in memory, oldest first, until it returns nonzero
 * (returned). The answered entries before them are in the store (pipeline__ring_stored). No
 * allocation. */
int pipeline__ring_each(const struct pred_ring *r, pipeline__ring_fn fn, void *arg);
/* Entries answered (at most cap), in memory and in the store. */
size_t pipeline__ring_len(const struct pred_ring *r);
/* The answered entries in the store: blocks [*seq_lo, *seq_hi) (equal: none), whose first *skip
 * entries are not answered; returns how many entries they answer. */
size_t pipeline__ring_stored(const struct pred_ring *r, int64_t *seq_lo, int64_t *seq_hi,
                             size_t *skip);

/* A sealed block to hand to the store. */
struct pred_block {
    int64_t seq, keep_from, t0, t1; /* keep_from: the store may delete blocks below it */
    uint32_t n;
    const unsigned char *bytes; /* borrowed: valid until the ring next changes */
    size_t len;
};

/* Frees the blocks the store has committed (it answers them from now on), and after a failed
 * put makes the blocks after the committed prefix due again. Caller holds mu. */
void pipeline__ring_settle(struct pred_ring *r);
/* The next block in memory to put to the store, oldest first, in *b (then marked put): returns
 * 1, or 0 when every block in memory is put. Caller holds mu. */
int pipeline__ring_next(struct pred_ring *r, struct pred_block *b);
/* The put of block seq failed at once: it and those after it are due again. */
void pipeline__ring_unsend(struct pred_ring *r, int64_t seq);
/* The store's report on block seq (status 0: committed). Any thread (store_pred_cb); the reports
 * of one ring come in the order of its puts. */
void pipeline__ring_ack(struct pred_ring *r, int64_t seq, int status);
/* Seals the whole tail into blocks (its values kept exactly, two blocks to a page of the store
 * for 8 channels), e.g. at shutdown. Returns 0 or ERR_NOMEM (part of it may be sealed). */
int pipeline__ring_seal_tail(struct pred_ring *r);
/* Block i (from the oldest live one) in *b if it is in memory: returns 1, else 0. */
int pipeline__ring_block(const struct pred_ring *r, size_t i, struct pred_block *b);
/* Appends a block that is in the store (numbered seq, n entries) as the newest, at restore
 * (the tail must be empty). A seq that does not follow the newest live block's forgets the
 * blocks before it. Returns 0 or ERR_NOMEM. */
int pipeline__ring_adopt(struct pred_ring *r, int64_t seq, uint32_t n);
/* Calls fn for the entries of a block read from the store (bytes[len], n entries of nch
 * channels) from index `from` on. Returns fn's stop, 0, or ERR_CORRUPT (bytes not a well-formed
 * block of n entries and nch channels: fn not called). */
int pipeline__ring_block_each(const unsigned char *bytes, size_t len, uint32_t n, int nch,
                              size_t from, pipeline__ring_fn fn, void *arg);

/* A shard's shared channel list (dev.chl): pipeline_chan_int.h. */
struct chlist;

/* A device's name is kept inside struct dev when shorter than this (with its NUL), so the
 * lookup's comparison reads no other allocation. */
#define PIPE_NAME_INLINE 44

/* A stored event's start and id, for the restore's catch-up (dev.replay). */
struct replay_key {
    int64_t start_ts;
    uint64_t id;
    int hit;        /* a replayed opening took its id (event_next_id): the row opened again */
    int64_t end_ts; /* the row's end, -1 while open (replay_key_over) */
};

/* A device. Laid out for the shard's per-point path: the fields every scored point reads or
 * writes come first, the lookup's (name, name_len, name_buf) in the first cache line and the
 * step's in the next few (pipeline_score.c prefetches them points ahead, dev_prefetch), the
 * status's and training's after. Allocated aligned to a cache line. At 100k devices every point's
 * device is cold: each further line it touches is one more miss. */
struct dev {
    /* Set at creation, never changed (read without a lock). */
    char *name; /* the hash key: name_buf, or owned when longer */
    size_t name_len;
    int shard;
    char name_buf[PIPE_NAME_INLINE];
    pthread_mutex_t mu;  /* guards everything below but hh */
    struct group *group; /* d's group or NULL */
    detector_t *det;
    uint64_t gen; /* bumped when det is replaced (channels changed), so stale jobs are dropped */
    int nch;
    int has_result;
    int nmaint; /* periods in maint (below): read by every point, so here with the hot fields */
    /* The state last published on the event streams (enum detector_state; learning before
     * any): every scored point compares its state with it (pipeline_state.c). */
    uint8_t st_sent;
    /* 1 while d has limit alarms to judge (limits below, or a rebuild to try again): the one
     * test a scored point of a device without limits pays, on a line it reads anyway. */
    uint8_t lim_on;
    /* The shard's copy of ch[0..nch) (map_channels' fast path), valid while chl_gen == gen
     * (every change of ch bumps gen). Shard thread, under mu. */
    const struct chlist *chl;
    uint64_t chl_gen;
    int64_t last_ts; /* newest scored timestamp, -1 before the first */
    /* Wall-clock ms the reading of last_ts ARRIVED (its batch's commit, as seen_ms), -1 when
     * last_ts is (none scored since the pipeline started, a forget or a clock step back) or it
     * came from the restore's catch-up (no arrival). Only readings the detector takes set it, so
     * last_ms - last_ts is the lag of the device's clock as its scored readings show it
     * (stale_end's clock-behind rule), which a reading not scored (far ahead, out of order, in a
     * period) does not move. Shard, under mu. */
    int64_t last_ms;
    /* Wall-clock ms of the restored detector's newest save (the store's saved_ms), -1 when none
     * was restored: pipeline__maint_restore_ended's line between a period the running vigild
     * saw end and one that ended while it was stopped. Set by the restore only, under mu. */
    int64_t det_saved_ms;
    /* Wall-clock ms its newest reading ARRIVED (the commit of the batch that held it, read once
     * per batch: pipeline__feed_at), whatever the reading's own timestamp, scored or not; -1:
     * none since the pipeline started (restored devices, devices only declared). Written by
     * the shard under mu; read without it (relaxed) by device listings and /metrics. */
    atomic_int_fast64_t seen_ms;
    double dt_ms;     /* running estimate of the reading interval */
    int64_t since_ts; /* when the current state began */
    uint64_t scored;
    /* Anomaly events opened since the pipeline started or the device was deleted (its
     * catch-up's too; pipeline_forget resets it, session 69), for /metrics'
     * vigil_device_anomaly_events_total: short episodes that never last a rule's `for:` still
     * count (session 68). */
    uint64_t events_opened;
    uint64_t since_save; /* readings scored since the detector was last saved */
    int save_held; /* a save skipped while event.prov, made once numbered: pipeline__save_held */
    /* Monotonic time its newest reading was scored (first_settle). */
    int64_t scored_ns;
    uint64_t last_present; /* bit c: channel c was in the newest scored reading */
    uint64_t inputs;       /* bit c: channel c is an input (the "inputs" attribute) in the detector
                              made last (pipeline__inputs_mask at dev_reset_detector) */
    /* Anomaly events, oldest first; the last one may be active. Room for events_room, grown on
     * demand (pipeline__event_add) up to o.events: most devices never have one. */
    struct event *events;
    size_t nevents, events_room;
    /* The newest event when the detector ended it "cleared" (pipeline__track_event): the next
     * event may continue it. id 0: none (another end; a maintenance period, an operator's
     * accept or a rollback since: pipeline__event_chain_break; or none known:
     * pipeline__event_chain_restore restores it after a restart). scored: d->scored at its end;
     * gen: d->gen then (a new detector continues nothing); ch its leading channel and side its
     * direction (+1 above the prediction, -1 below). */
    struct {
        uint64_t id, fault, scored, gen;
        int ch, side;
        /* Restored at a restart (pipeline__event_chain_restore, the event not in d->events):
         * its stored row (owned) and times, so a break can store it "chain_broken"; else NULL. */
        char *info;
        int64_t start_ts, end_ts;
    } cleared;
    /* The active event's share, each reading's part signed by the side of its prediction the
     * channel was on (+ above, - below): the sign of the leading channel's is the fault's
     * direction. Only the active event needs it (an ended one keeps the signs: event.above,
     * event.below), so it is the device's, zeroed when an event opens. A channel whose
     * parts cancel exactly (two capped scores, one each side) takes the side of the newest
     * reading that leaned it: lean_seen's bit c says one did, lean_up's that it was above. */
    float lean[DETECTOR_MAX_CHANNELS];
    uint64_t lean_seen, lean_up;
    /* The newest o.predictions predictions (pipeline_ring.c). The actual values are not kept:
     * they are the stored readings, joined by timestamp when the ring is read. */
    struct pred_ring ring;
    float last_x[DETECTOR_MAX_CHANNELS];
    struct detector_result last;
    /* Read by a point only in map_channels' slow path, by the status and by training. */
    char *ch[DETECTOR_MAX_CHANNELS];
    float lim_min[DETECTOR_MAX_CHANNELS], lim_max[DETECTOR_MAX_CHANNELS]; /* NaN: none */
    /* The limit alarms (pipeline_limits.c): lim_gen counts changes of the limits
     * (pipeline__apply_limits), lim_built the one the states in limits were built for (they
     * differ only after a rebuild ran out of memory: the next reading tries again). limits:
     * NULL when d has no limits. */
    uint64_t lim_gen, lim_built;
    struct dev_limits *limits;
    char *attrs; /* owned JSON object text of the device's attributes, or NULL */
    /* The channels its newest readings lacked (pipeline_missing.c): miss_run[c] readings in a
     * row without channel c (0: the newest had it), seen_ts[c] the newest reading that had it
     * (-1: none since the start), miss_base the first reading noted since the start (-1: none),
     * missing bit c once miss_run[c] reached PIPE_MISSING_AFTER and PIPE_MISSING_MS passed
     * since seen_ts[c] (or miss_base). */
    uint32_t miss_run[DETECTOR_MAX_CHANNELS];
    int64_t seen_ts[DETECTOR_MAX_CHANNELS];
    int64_t miss_base;
    uint64_t missing;
    uint64_t skipped_old;
    uint64_t skipped_future; /* readings stamped beyond PIPE_FUTURE_MS: since the start, unsaved */
    /* The run of readings behind last_ts (pipeline_score.c back_run): its length, its first
     * and newest timestamps, their arrivals (wall ms); clock_steps: the runs that became
     * the device's timeline (its clock stepped back), since the start, unsaved. */
    uint32_t back_n;
    int64_t back_ts0, back_ts, back_at0, back_at;
    int64_t back_step_at; /* arrival of the newest step (PIPE_BACK_HOLD_MS) */
    uint64_t clock_steps;
    /* The newest step's overlap of the two timelines: from the new one's first reading to the
     * old one's newest (half-open; start == end: none). Its trainings' windows leave it out
     * (pipeline__window_skip), where the two timelines' readings interleave by timestamp. In
     * memory only: a restart reads the overlap as it is stored. */
    struct maint_span step_skip;
    int training; /* a training job for d runs */
    /* A training's job is applied but its version not yet confirmed stored (pipeline_train.c
     * member_apply to member_end): no save meanwhile (pipeline__save), so a saved detector never
     * serves a version the store may not hold. Under mu. */
    int unconfirmed;
    /* 1 from pipeline_forget (deleted from the store) until a reading comes (dev_reset_detector)
     * or attributes are set again: the API's lookups (pipeline__find) do not see d meanwhile.
     * Written under mu, read without it (relaxed: a query racing the delete sees either). */
    atomic_int deleted;
    /* d->gen as pipeline_forget left it (0: never deleted): a job made before (its gen below)
     * was dropped because the device was deleted, even once a reading has made it again
     * (deleted cleared). Under mu. Session 54. */
    uint64_t forget_gen;
    int due; /* d is in the training due-set (p->due_head list) */
    /* Restored from a save made while a training was asked for and not applied (blob format
     * 4): pipeline_restore asks for it again after the catch-up. */
    int train_asked;
    int again; /* a retrain asked through the API while d (or its group) was training, or any
                  request made while left_out: trained once more when that ends, so the request
                  is not lost (d->mu); one asked while the training only waits in the due-set
                  joins it instead */
    /* The training under way has nothing left to run for d: d held an episode when it began
     * and was left out (put off, pipeline_train.c member_begin), or d's part of it is over
     * (member_end; its due and its group's training flag stay set until train_next ends it).
     * A request d makes before that training ends would merge into a training that does not
     * take it, so it sets `again` instead. Set by member_begin and member_end, and by
     * pipeline__group_move joining a group that trains; cleared when d's part of a training
     * begins (member_begin), by pipeline__group_move joining an idle group or none, by train_next
     * when a training d was in, or whose group d is in, ends, unless d's group trains then
     * (that training's end clears it); d->mu. */
    int left_out;
    /* An operator's retrain (POST .../retrain) of d not yet trained: the training it asks or
     * joins takes every member of d's group, held ones too (the operator decided; the
     * schedule's and other members' trainings leave a held member out). d->mu. */
    int retrain_all;
    struct dev *due_next;    /* next in the due-set; guarded by p->due_mu */
    struct group *due_group; /* the group d was in when it became due; guarded by due_mu */
    uint64_t next_event_id;
    /* The restore's catch-up only (pipeline__event_replay_keys; freed, and d's next id raised
     * to replay_max, once the rows left to it are ended: read64's finding 2): the start and id
     * of each stored event that began after the saved detector's last reading, one a start
     * (the open row, else the highest id: read64's finding 3), start ascending, so a replayed
     * opening takes the id of the row it opened before the crash, and one that opened no stored row
     * an id past replay_max: the device's highest stored id (pipeline__event_ids_read) and theirs;
     * 0 when the keys' read failed (task events64: numbered from the saved next id, a replay
     * missing an earlier episode's readings overwrote the later rows with other episodes; review of
     * events64: a row opened after the save on a clock stepped back is no key). Zeroed with replay.
     * d->mu. */
    struct replay_key *replay;
    size_t nreplay;
    uint64_t replay_max;
    /* The keys were read (pipeline__event_replay_keys returned 0 having read them, replay NULL
     * when none began after the save): replay_max is past every stored row, so an `ahead` row
     * a replayed opening comes before is dropped, not gone on with (read64's finding 1), and a
     * left row was opened again when its key was hit, not when the next id reached its id
     * (left_end; read64's finding 4). 0: the read failed or was skipped. d->mu. */
    int replay_keyed;
    /* The catch-up's ids past every stored row are known: replay_keyed, or the keys' read
     * skipped because the highest ids were read and none is past the saved next id (nothing
     * opened after the save). An opening numbered past them (event_past_id) had no stored
     * row, so no vigild logged it (event.unsaid; task ops68). Zeroed with replay. d->mu. */
    int replay_past;
    /* While d's shard scores it (pipeline_score.c, with d->mu): the shard's list, where d's
     * episode and limit lines wait until the lock is let go (pipeline__evlog_say); NULL
     * otherwise, the lines then written at once. d->mu. */
    struct evlog_lines *log_to;
    uint64_t listed; /* token of the last anomalies listing that included the active event */
    /* Model versions, oldest first: the o.versions newest and the serving one (array room for
     * o.versions + 2). */
    struct version *versions;
    size_t nversions;
    /* 1 when a version was appended since the last listing's peek (versions_peek,
     * pipeline_query.c): set under mu where one is appended, cleared under mu by the peek,
     * read without mu by a listing, so that one whose records were all peeked takes no lock
     * and allocates nothing for the peek. */
    atomic_int peek_todo;
    uint32_t serving_version;
    /* The highest version number stored for d when its saved detector was not restored (lost or
     * unusable: its kept versions are listed all the same); a detector made for d numbers its
     * versions after it and after those listed (dev_reset_detector). d->mu. */
    uint32_t ver_floor;
    uint64_t rollback_mark; /* the last group rollback that visited d (pipeline_rollback.c); mu */
    /* Maintenance periods, nmaint of them, ordered by start and never overlapping, at most
     * STORE_MAINT_KEEP (allocated at the first, so a device never serviced holds none): past
     * ones, then at most one current (the clock in it), then scheduled ones. maint_notes[k]:
     * maint[k]'s note (owned, NULL: none), in the same allocation as maint. maint_told[k]: what
     * the event streams last heard of maint[k] (enum maint_told), in that allocation too. */
    struct maint_span *maint;
    char **maint_notes;
    unsigned char *maint_told;
    /* The event streams' state messages (pipeline_state.c): the score of the reading that
     * entered the current state (at since_ts); no other message before st_next_ms (monotonic);
     * st_held: a change waits in p->held for that moment (held_next: the next there, written
     * before the push, read by the tick after it took the list). */
    float since_score;
    int st_held;
    int64_t st_next_ms;
    uint64_t st_opened; /* api_events_opened at the last state message (pipeline_state.c) */
    struct dev *held_next;
    /* pipeline_restore only: the fleet-wide read of active events reached the device (its
     * newest row taken, the rest ended); restore_ev_ts: the last row's start. */
    int restore_ev;
    int64_t restore_ev_ts;
    /* pipeline_restore only: the fleet-wide read of model versions reported the device. */
    int restore_ver;
    /* The arrivals (seen_ms, last_ms, last_ts) as last queued to the store or restored from it
     * (pipeline_arrivals.c): the flusher's own (the loop thread, the stop, the restore). */
    int64_t arr_seen, arr_last, arr_ts;
    UT_hash_handle hh; /* p->devs; guarded by p->devs_lock */
};

/* Episode and limit lines a shard formatted while it held a device's d->mu, written once it has
 * let the lock go (pipeline_evlog.c pipeline__evlog_say, pipeline__evlog_write; task ops68: a
 * log write that blocks, stderr a journal pipe not read, held the device, and /metrics and its
 * status behind it). Shard thread only. */
struct evlog_line {
    enum log_level level;
    char *text; /* owned */
};
struct evlog_lines {
    struct evlog_line *v;
    size_t n, room;
    /* The log's turn for the shard's devices: held by the shard from before it lets a device
     * go, when it has lines, until they are written; taken by a line of one of its devices said
     * elsewhere (an operator's accept, a maintenance period: written at once). So an episode's
     * "ended" an API thread says is never written before its "opened" the shard still keeps
     * (review of ops68). Taken with the device's d->mu held, never the other way round. */
    pthread_mutex_t mu;
};

struct shard_msg {
    batch_t b;
    int64_t fed_ns;     /* when the writer handed it over (monotonic), for the delay histogram */
    int64_t arrived_ms; /* its readings' arrival (wall clock, ms); -1: not an arrival (restore) */
    struct shard_msg *next;
};

struct shard {
    pipeline_t *p;
    int index;
    pthread_t thread;
    pthread_mutex_t mu;   /* guards head, tail, queued, busy, stopping; leaf lock */
    pthread_cond_t cv;    /* work arrived / stop */
    pthread_cond_t space; /* queue shrank */
    pthread_cond_t idle;  /* queue empty and not busy */
    struct shard_msg *head, *tail;
    size_t queued; /* readings */
    int busy, stopping;
    float *work; /* scratch of batched group steps (shard thread only) */
    size_t work_len;
    struct detector_result *res; /* their results [DETECTOR_MAX_BATCH] (shard thread only) */
    nameidx_t chlists;           /* struct chlist by key (shard thread only; seeded at its
                                  * first list: pipeline_chan.c) */
    int64_t arrived_ms;          /* the message being scored's arrived_ms (shard thread only) */
    int64_t future_ms;        /* its points stamped after this are not scored (shard thread only) */
    struct evlog_lines lines; /* said while scoring, written after (shard thread only) */
};

struct pipeline {
    pipeline_opts_t o;
    store_t *store;             /* borrowed; may be NULL */
    pthread_rwlock_t devs_lock; /* guards devs and idx (not the devices' contents) */
    struct dev *devs;           /* every device (uthash: owns them; walked by listings; never
                                 * searched, its buckets from the key in idx) */
    nameidx_t idx;              /* the same devices by name, for lookups (common/nameidx.h) */
    struct shard *shards;
    int nshards;
    wpool_t *train;
    /* The training due-set: devices waiting for a training thread, oldest first, each at most
     * once (its dev.due flag); one pool job per entry. */
    pthread_mutex_t due_mu; /* guards due_head, due_tail, due_len and dev.due_next; leaf lock */
    struct dev *due_head, *due_tail;
    size_t due_len;
    pthread_mutex_t groups_mu; /* guards groups (the table); leaf lock */
    /* Numbers group rollbacks, for their marks (dev.rollback_mark); relaxed. */
    atomic_uint_fast64_t rollback_marks;
    struct group *groups;
    /* Counters for /metrics (relaxed atomics). */
    atomic_uint_fast64_t scored, skipped_old, trainings, swaps, train_merged;
    atomic_uint_fast64_t clock_steps;    /* devices' timelines begun after a step back */
    atomic_uint_fast64_t relearns;       /* models begun again on a new channel (logged) */
    atomic_uint_fast64_t train_failures; /* device trainings that ended in an error (logged) */
    /* Lines a fleet can cause at once (failed trainings, saves not queued; episodes' openings
     * and ends, once events_logged: pipeline_restore over), limited a minute (PIPE_WARN_BURST,
     * PIPE_EVLOG_BURST). The warn-level episode ends (accepted or released by the detector) and
     * limits exceeded have limits of their own, so the info lines of a flapping fleet cannot
     * leave them only counted (read67a's finding 4). */
    struct log_limit train_fail_log, save_fail_log, event_open_log, event_end_log;
    struct log_limit event_warn_log; /* episodes the detector ended by itself */
    struct log_limit limit_log;      /* limit alarms forecast or ended (pipeline_limits.c) */
    struct log_limit limit_warn_log; /* limits exceeded */
    struct log_limit missing_warn_log, missing_log; /* channels missing, reported again */
    atomic_int events_logged;
    /* Training jobs (one device's or one group's) whose end train_next has done: flags cleared
     * and the requests the job owed asked again, counted last. */
    atomic_uint_fast64_t train_jobs_ended;
    /* Training jobs train_next took from the due-set (session 67): every one taken reaches the
     * count above, so taken minus ended is the jobs in flight (a test's "settled" wait). */
    atomic_uint_fast64_t train_jobs_taken;
    /* The put-off lines (pipeline_put_off.c): when the last was logged (monotonic ms,
     * 0: never) and how many were counted since instead of logged. */
    atomic_int_fast64_t put_off_log_ms;
    atomic_uint_fast64_t put_off_quiet;
    /* Of scored: by a trained model (the device past learning), and of those by an LSTM. */
    atomic_uint_fast64_t scored_serving, scored_lstm;
    atomic_uint_fast64_t batched; /* readings stepped in a group's batched step of >= 2 */
    atomic_uint_fast64_t step_ns_total, train_ms_total, train_jobs;
    atomic_uint_fast64_t step_hist[8];   /* PIPE_STEP_BUCKETS */
    atomic_uint_fast64_t train_hist[8];  /* PIPE_TRAIN_BUCKETS */
    atomic_uint_fast64_t delay_hist[10]; /* PIPE_DELAY_BUCKETS, counted per reading vector */
    atomic_uint_fast64_t delay_us_total;
    atomic_uint_fast64_t list_token; /* numbers anomalies listings (see pipeline_anomalies) */
    atomic_uint_fast64_t ended[PIPE_END_N];   /* events ended, by event.ended_by (0 unused) */
    atomic_uint_fast64_t opened[PIPE_OPEN_N]; /* events opened, by event.opened_by (0 not listed) */
    /* Limit alarms raised (pipeline_limits.c): [0] forecast, [1] exceeded. */
    atomic_uint_fast64_t limit_alarms[2];
    atomic_int stopping; /* pipeline_stop began: a first training waits for no backfill, an
                            LSTM's training is abandoned (detector_job_set_cancel) */
    int stopped;         /* pipeline_stop ended (its caller's thread: the stop's) */
    int started;         /* pipeline_set_started: the daemon's loop ran its ticks, not only
                            a failed start's closes (loop thread) */
    int64_t start_ms;    /* wall clock at pipeline_create: what a device's silence counts from
                            when no reading of it arrived since (set once, read anywhere) */
    /* The earliest maintenance boundary (a period's start or end, wall-clock ms) not yet
     * announced across the fleet: pipeline_maint_tick walks the devices only once the clock
     * passes it. Lowered by whoever adds a boundary (any thread); 0 (calloc): not known yet. */
    atomic_int_fast64_t maint_next_ms;
    /* Held across each maintenance change (POST, DELETE, cancel), from reading the periods to
     * applying the committed change, so changes reach memory in the order they reach the store
     * (pipeline_maint.c). Taken before a device's mu, never under it; the writer, shards and
     * trainings never take it. */
    pthread_mutex_t maint_mu;
    /* Devices whose state change waits for its device's interval (o.state_min_ms) to end: a
     * lock-free stack (pushed by whoever holds the device's mu, taken whole by the loop's tick:
     * one consumer, so no ABA). NULL (calloc): none, and the tick costs one atomic load. */
    _Atomic(struct dev *) held;
    /* o.state_min_ms as a reload leaves it (pipeline_set_state_min_ms, the loop thread): read
     * relaxed at each state message and tick, never per reading. */
    atomic_uint state_min_ms;
    /* Tests only: $VIGIL_TEST_HOLD_DIR, read once at pipeline_create (empty: unset, the hold
     * points cost a test of its first byte); pipeline_train.c, test_hold, and
     * pipeline_rollback.c, member_rollback. */
    char test_hold_dir[256];
    /* The arrivals' flush (pipeline_arrivals.c), the flusher's own: its period and next due
     * time (monotonic ms); arr_failing: its last put was refused (logged once a run);
     * arr_ops_failed: the store's ops_failed at the start of the last pass that ended (a
     * change: the next pass redoes all); arr_retry_ms: when a pass whose put was refused
     * resumes (monotonic ms). */
    int64_t arr_every_ms, arr_next_ms, arr_retry_ms;
    int arr_failing;
    uint64_t arr_ops_failed;
    /* The pass under way (a flush walks arr_slice devices a tick): arr_n the devices it walks
     * (0: none under way), arr_i those walked, arr_cur the last walked; arr_redo: it queues
     * every device; arr_pass_failed: ops_failed at its start; arr_pass_us, arr_pass_devices:
     * its longest slice (microseconds on the loop) and the devices it queued so far. */
    struct dev *arr_cur;
    size_t arr_n, arr_i, arr_slice;
    int arr_redo;
    uint64_t arr_pass_failed;
    int64_t arr_pass_us, arr_pass_devices;
    /* The last pass that queued devices (the loop writes, /metrics reads, relaxed): its
     * longest slice's time on the loop thread in microseconds and the devices it queued. */
    atomic_int_fast64_t arr_flush_us, arr_flush_devices;
    /* The restore's "restart" ends not known stored (pipeline_restart_retry.c; NULL: none):
     * the restore's, then the loop's (pipeline__restart_retry). */
    struct restart_retry *rr;
    size_t rr_unkept; /* ends not kept (out of memory): the restore's, said at its end */
};

/* A reading whose timestamp is older than the wall clock by more than this when it is scored
 * is history (a backfill), not a live reading. */
#define PIPE_RECENT_MS 5000

/* The arrivals' flush period (pipeline_arrivals.c: why 60 s), and the devices one tick of a
 * flush walks (why 8192: the same file). */
#define PIPE_ARRIVALS_MS    60000
#define PIPE_ARRIVALS_SLICE 8192

/* A reading stamped more than this ahead of its arrival (or, for the restore's catch-up, of the
 * wall clock) is stored but not scored, and does not become its device's newest scored reading
 * (dev.last_ts; the store's newest it is): one reading from a gateway whose clock jumped to
 * 2100 would otherwise leave every later, true reading older than dev.last_ts, unscored until
 * 2100. A day is beyond any time-zone error (14 h), so a gateway that sends local time as UTC
 * is still scored. */
#define PIPE_FUTURE_MS 86400000LL

/* The largest interval between two scored readings, in reading intervals (dev.dt_ms), that
 * their device's interval estimate takes in: a longer one is a gap (pipeline_score.c). */
#define PIPE_DT_GAP 4.0

/* A device's clock stepped back (pipeline_score.c back_run): this many readings in a row
 * behind its newest scored one, in order among themselves and arriving as fast as their
 * timestamps advance, become its timeline. Fewer (a late reading, a retried batch) stay out of
 * order; a backfill sends hours in seconds and stays out of order however long it is. */
#define PIPE_BACK_RUN 10
/* Within such a run, a reading more than this or PIPE_DT_GAP reading intervals, the larger,
 * (plus twice its arrival's advance) after the one before starts a new run: a gateway's batch
 * of up to a minute (or of a few readings minutes apart) stays one run, and the step's readings
 * after a backfill are not taken for more of the backfill. */
#define PIPE_BACK_SLACK_MS 60000
/* After a step, no other for this long (by arrival): two feeds of one device, one lagging the
 * other by PIPE_BACK_RUN readings or more while the other comes in batches (two gateways whose
 * clocks differ; a buffer drained at the live pace between live batches), flipped its
 * timeline back at every batch, each flip dropping its stored predictions and moving its
 * detector's times back by the lag. A device's clock that steps back twice within it stays out
 * of order until it ends, as before steps were followed. */
#define PIPE_BACK_HOLD_MS 3600000

/* Histogram bounds in seconds (clang-format off keeps them on one line each). */
// clang-format off
#define PIPE_STEP_BUCKETS  {1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 1e-2}
#define PIPE_TRAIN_BUCKETS {0.1, 0.5, 1, 5, 10, 30, 60, 300}
#define PIPE_DELAY_BUCKETS {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}
// clang-format on

/* JSON texts describing an event and a version (for the API and the persistence hooks);
 * malloc'd, NULL when out of memory. pooled > 0: the version came from a group's training on
 * that many pooled readings (metrics.pooled_rows). Caller holds d->mu. */
char *pipeline__event_json(const struct dev *d, const struct event *e);
/* The enum detector_open an event's JSON names in "opened_by" (an event's info_json as
 * pipeline__event_json wrote it); 0 when it names none (saved before the field, or null). */
int pipeline__event_opened_by(const char *info_json);
/* The enum detector_kind a version's JSON (pipeline__version_json's) names when it swapped that
 * predictor in ("swapped": true); -1 when it did not (the serving model stayed) or the text
 * says neither. *channels (not NULL) gets the channels it was trained on, 0 when it does not
 * say (recorded before session 45). */
int pipeline__version_served(const char *info_json, int *channels);
/* d: the device (caller holds d->mu); its d->nch channels are the ones the version was trained
 * on ("channels"; it serves only that many), named in "predictors" (what predicts each channel:
 * info->persist, info->season). "decision" says why it serves or not. */
char *pipeline__version_json(const struct detector_train_info *info, int64_t created_ms,
                             double seconds, int has_ckpt, size_t pooled, const struct dev *d);
/* {"channel": "model" | "persistence" | "seasonal profile", ...} for d's nch channels. */
struct json_t *pipeline__predictors_json(char *const *ch, int nch, const uint8_t *persist,
                                         const uint8_t *season);

/* Saves d's detector (channel names + detector_save) to the store. Returns 0 (queued, no store,
 * held off while a training's version is unconfirmed: d->unconfirmed, or held while the newest
 * event is the catch-up's unnumbered one: d->save_held), or why not (ERR_NOMEM, or the store's
 * refusal; logged). Caller holds d->mu. */
int pipeline__save(pipeline_t *p, struct dev *d);
/* pipeline__save for an operator's change of what serves (pipeline__durable_saved): the same,
 * but ERR_AGAIN when the save is deferred (a training's version not yet confirmed, whose end
 * saves the device; the catch-up's event not yet numbered): not on disk when the answer goes
 * (read68e: such a rollback or PUT answered 200, "saved"). Caller holds d->mu. */
int pipeline__save_durable(pipeline_t *p, struct dev *d);
/* Makes the save held while the newest event was unnumbered (d->save_held) once it is numbered
 * and nothing else holds saves off (d->unconfirmed); else 0, still held. Returns as
 * pipeline__save. Caller holds d->mu. */
int pipeline__save_held(pipeline_t *p, struct dev *d);

/* An operator's change of what serves (a rollback, a PUT of weights) is saved before its answer
 * says it serves (session 68: a kill -9 after the answer served the older model again):
 * pipeline__durable_begin before the change (no lock held), each device's pipeline__save's
 * status added with pipeline__durable_saved (under d->mu), and pipeline__durable_end after
 * (no lock held: the writer's hooks take devices' locks) waits for the commit. It returns 0,
 * or why a save was not queued or was lost (a concurrent failed save counts too: the answer
 * then errs on the side of "not saved"), ERR_AGAIN when one was deferred (made by the
 * training's end: pipeline__save_durable) and none failed. A PUT of weights also puts its
 * version row (with the checkpoint a rollback reads): pipeline__durable_version adds that put's
 * status, and a model version lost with a commit since the begin then counts as well (session
 * 69: the version row lost with an earlier failed commit, the detector's save in a later one
 * that passed, answered 200). */
struct pipeline_durable {
    uint64_t failed; /* store_stats' detector_saves_failed at the begin */
    uint64_t models; /* store_stats' model_puts_failed at the begin */
    int versions;    /* pipeline__durable_version called: model versions lost count too */
    int rc;          /* the first save's refusal */
};
void pipeline__durable_begin(pipeline_t *p, struct pipeline_durable *w);
void pipeline__durable_saved(struct pipeline_durable *w, int save_rc);
void pipeline__durable_version(struct pipeline_durable *w, int put_rc);
int pipeline__durable_end(pipeline_t *p, const struct pipeline_durable *w);

/* Puts every device's writes to the store through fn, called with d->mu held (devs_lock
 * read-held; any thread but the store writer's): fn returns 0 (queued, or nothing to put) or
 * why not. A full queue (ERR_BUSY) makes the walk wait for the writer to empty it (store_flush,
 * no lock held) and call fn for that device again, with quiet_busy 0: any failure is final
 * then; quiet_busy 1: a busy answer is retried, so fn need not report it. Returns how many
 * devices' writes failed, *first_err (may be NULL) the first one's status (0: none). */
typedef int (*pipeline_dev_put_fn)(pipeline_t *p, struct dev *d, int quiet_busy, void *arg);
int pipeline__devs_put(pipeline_t *p, pipeline_dev_put_fn fn, void *arg, int *first_err);

/* Drops the oldest versions beyond the o.versions newest, except the serving one (kept so it can
 * be rolled back to). Caller holds d->mu. */
void pipeline__versions_trim(pipeline_t *p, struct dev *d);

/* Reads a training window: the device's newest o.det.history readings at or before to_ts from
 * the store, but for those in its maintenance periods skip[nskip] (a serviced device's readings
 * are not its normal behaviour), as rows [n, nch] in the order of names (the detector's
 * channels), oldest first, missing values carried forward. *rows is malloc'd (caller frees).
 * stepped: skip's last span is a clock step's overlap (pipeline__window_skip); when leaving it
 * out leaves no reading at all (the step went back further than the device's stored history,
 * as a gateway whose clock reset to 2000: nothing is older than the new timeline's first), the
 * window is read with it in, which up to to_ts is then the new timeline (and the old one's too
 * once the new one reaches the old one's first reading, as before session 43).
 * Returns 0, ERR_RANGE (no store), or the store's error. Training pool thread (any thread but the
 * writer's). */
int pipeline__window_read(pipeline_t *p, const char *device, char *const *names, int nch,
                          const struct maint_span *skip, int nskip, int stepped, int64_t to_ts,
                          float **rows, int *n);

/* The spans a training window of d leaves out, into skip[PIPE_WINDOW_SKIP_MAX]: its
 * maintenance periods and its newest clock step's overlap (pipeline_score.c timeline_step).
 * Returns how many. Caller holds d->mu. */
#define PIPE_WINDOW_SKIP_MAX (STORE_MAINT_KEEP + 1)
int pipeline__window_skip(const struct dev *d, struct maint_span *skip);

/* Puts d (or its group) in the training due-set (pipeline_train.c); d->mu held. Returns 0,
 * ERR_BUSY (due or training: merged), ERR_RANGE (not trainable), or the pool's error (ERR_CLOSED
 * at the stop: the request is kept, saved as asking). */
int pipeline__mark_due(pipeline_t *p, struct dev *d);
int pipeline__trainable(const pipeline_t *p, const struct dev *d); /* past warm-up; d->mu held */
/* 1 when the training d is due for (its own, or its group's) still waits in the due-set, so it
 * reads d's window when it runs; 0 when it has been taken (it may have read the window, or be
 * ending: d->due stays set until the end) or none is due. Caller holds d->mu. */
int pipeline__training_waits(pipeline_t *p, struct dev *d);

/* Makes the record of version info in *v (v->info_json malloc'd: caller owns it, NULL when out
 * of memory; pooled as for pipeline__version_json) and queues its put to the store, with the
 * serving LSTM's checkpoint when the version swapped one in, or the serving linear model's or
 * persistence's parameters (detector_pred_save) when it swapped that in (its rollback point).
 * Returns 0
 * (queued, or no store), or why it is not stored: the store's refusal (ERR_NOSPACE, ERR_BUSY,
 * ERR_CLOSED) or ERR_NOMEM (no checkpoint or no record made); v->has_ckpt is then 0. A queued put
 * may still be lost with a failed commit (store_flush, store_models_list tell). Does not add v to
 * d's history. Caller holds d->mu. */
int pipeline__version_put(pipeline_t *p, struct dev *d, const struct detector_train_info *info,
                          double seconds, size_t pooled, struct version *v);

/* Adds v to d's history, taking its info_json (v->info_json NULL after), and drops the oldest
 * beyond o.versions (pipeline__versions_trim). Caller holds d->mu. */
void pipeline__version_add(pipeline_t *p, struct dev *d, struct version *v);
/* The highest version number d keeps: of its listed versions and ver_floor (0: none). A
 * detector of d numbers its new versions after it (detector_number_after), as does a group's
 * training after that of every member taking part. Caller holds d->mu (pipeline.c). */
uint32_t pipeline__top_version(const struct dev *d);

/* The status follows the swap (pipeline__serving_changed), then the version is put and added to
 * d's history whether or not the store took it (logged; no rollback to it then): for weights
 * given by PUT. Returns the put's status (0: queued; the commit is pipeline__durable_end's).
 * Caller holds d->mu. */
int pipeline__record_version(pipeline_t *p, struct dev *d, const struct detector_train_info *info,
                             double seconds, size_t pooled);

/* The status's state follows the detector's, at once rather than at the next reading (an
 * operator's acceptance, a maintenance that ends an episode). Caller holds d->mu. */
void pipeline__state_follows(pipeline_t *p, struct dev *d);

/* d's state as the status shows it (enum detector_state). Caller holds d->mu. */
#define PIPE_SHOWN_STATE(d) ((uint8_t)((d)->has_result ? (d)->last.state : DET_LEARNING))

/* d's state differs from the one last published (d->st_sent): publishes it now (an "event:
 * state" message) if d's interval allows, else holds it for pipeline__state_flush. now_ms:
 * monotonic. No allocation, lock or hub call while held. Caller holds d->mu. */
void pipeline__state_note(pipeline_t *p, struct dev *d, int64_t now_ms);

/* Publishes the held changes whose interval ended (the state then current, unless it is the
 * one last published); the others stay held. A deleted device's held change is dropped. Loop
 * thread only (pipeline_maint_tick): one caller at a time. */
void pipeline__state_flush(pipeline_t *p, int64_t now_ms);

/* The "event: state" message of d, now in state PIPE_SHOWN_STATE(d) after previous: {"device",
 * "state", "previous", "ts", "time", "score"} (the reading that entered the state, score null
 * while the status has none). Malloc'd; NULL when out of memory. Caller holds d->mu. */
char *pipeline__state_json(const struct dev *d, int previous);

/* The status follows a change of the serving model (and the detector's state, as
 * pipeline__state_follows). Caller holds d->mu. */
void pipeline__serving_changed(pipeline_t *p, struct dev *d, int swapped, uint32_t version,
                               enum detector_kind kind);

/* Monotonic nanoseconds; a histogram observation (8 buckets). Any thread. */
int64_t pipeline__mono_ns(void);
void pipeline__observe(atomic_uint_fast64_t *hist, const double *bounds, double v);
/* n observations of v. */
void pipeline__observe_n(atomic_uint_fast64_t *hist, const double *bounds, double v, uint64_t n);

/* pipeline_feed for readings that arrived at wall-clock arrived_ms (-1: not an arrival, e.g.
 * the restore's catch-up of stored readings: no device's seen_ms changes). Writer thread, or
 * the restore before readings flow. */
void pipeline__feed_at(pipeline_t *p, batch_t *b, int64_t arrived_ms);

/* Devices in the training due-set now. Any thread. */
size_t pipeline__due_len(pipeline_t *p);

/* Logs that d, holding an episode, was left out of its scheduled training (g NULL) or of its
 * group g's (pipeline_put_off.c: named at once, then counted, one line a minute). Training
 * pool thread; caller holds d->mu. */
void pipeline__put_off_log(pipeline_t *p, const struct dev *d, const struct group *g);
/* Logs the devices counted quietly since the last put-off line, once its minute is over; with
 * final, whatever the minute. Training pool thread (each training calls it), or the stop. */
void pipeline__put_off_flush(pipeline_t *p, int final);
/* At the stop, once the training threads have ended: logs the count of devices whose put-off
 * training was not named in the log (pipeline__put_off_log) and not yet counted in a line. */
void pipeline__put_off_final(pipeline_t *p);

/* One device's part in a training. */
struct member {
    struct dev *d;
    detector_job_t *job;
    uint64_t gen;
    int64_t to_ts;
    int nch;
    char *names[DETECTOR_MAX_CHANNELS];
    /* The device's maintenance periods and newest clock step's overlap when the training
     * began: its window leaves them out. */
    struct maint_span skip[PIPE_WINDOW_SKIP_MAX];
    int nskip;
    int stepped; /* skip's last span is a clock step's overlap (pipeline__window_skip) */
    float *rows; /* its window [n, nch] */
    int n;
    size_t pooled; /* readings the group's training pooled (0: the device's own training) */
    int rc;        /* the training's outcome for this device (member_apply, versions_confirm) */
    int abandoned; /* the stop cancelled the training (ERR_CLOSED): no failure, asked again */
    /* A request of d's made before its part began (`again`, left_out set), which begin cleared
     * as the part's window answers it: set again by member_end when the part does not train. */
    int owed;
    int size[2]; /* {hidden, layers} its detector was made with, and its newest version */
    uint32_t newest;
    /* With a store, the job is applied (member_apply) but kept only once its version is stored
     * (versions_confirm, member_end): until then `before` holds the detector as it was, with
     * what the status said served (before_version, before_kind), and v the version's record. */
    int applied;
    detector_t *before;
    uint32_t before_version, serving;
    enum detector_kind before_kind;
    struct detector_train_info info;
    struct version v;
};

/* A training of `device` that failed with rc: logged and counted (pipeline_train.c). Training
 * pool thread. */
void pipeline__train_failed(pipeline_t *p, const char *device, const char *what, int rc);
/* A member's steps (pipeline_member.c), training pool thread: begin makes m's job under d's
 * lock, 0, or leaves it out (ERR_RANGE, ERR_INVAL, ERR_BUSY: put off for a held episode,
 * ERR_NOMEM); apply applies it (run_rc: the run's outcome; m->rc says how it went) under d's
 * lock; confirm looks the applied members' versions up in the store, holding no lock; end keeps
 * or undoes the training and frees m's memory (began: begin returned 0). */
int pipeline__member_begin(pipeline_t *p, struct member *m, struct group *g, int want_nch,
                           char *const *want, int leave_held);
void pipeline__member_apply(pipeline_t *p, struct member *m, int run_rc, double seconds);
void pipeline__versions_confirm(pipeline_t *p, struct member *ms, size_t n);
void pipeline__member_end(pipeline_t *p, struct member *m, int began);

/* point_prepare's check: 1 when a reading of d at ts falls in one of its maintenance periods,
 * and then the anomaly episode still open ends "maintenance" (the first reading of a scheduled
 * period is where it begins for the device; later ones find none open); in a period vigild's
 * clock has ended already (a clock behind, which its end left alone) its limit alarms end too.
 * Caller holds d->mu. */
int pipeline__maint_skip(pipeline_t *p, struct dev *d, int64_t ts);
/* Brings back every device's stored maintenance periods (pipeline_restore, before the catch-up:
 * the readings the catch-up steps through skip them too). Returns 0 or an ERR_. */
int pipeline__maint_restore(pipeline_t *p);
/* After the restore's catch-up (before the tick runs): the end of d's newest period restored
 * past, one that ended while vigild was stopped (after its detector's last save,
 * d->det_saved_ms), ends what the tick would have ended had it seen that end
 * (pipeline_maint.c stale_end: the episode open across the period when no reading at or after
 * its end was scored, and stale limit alarms). Takes d->mu. */
void pipeline__maint_restore_ended(pipeline_t *p, struct dev *d);
/* 1 when d is in maintenance at now_ms (wall clock). Caller holds d->mu. */
int pipeline__maint_on(struct dev *d, int64_t now_ms);
/* The status's "maintenance" now: {"until", "until_ts", "note"}, or JSON null when d is not in
 * maintenance (NULL: out of memory). Caller owns it (json_decref); caller holds d->mu. */
struct json_t *pipeline__maint_status(struct dev *d);
/* Frees d's maintenance periods and their notes. Caller holds d->mu, or d is not shared. */
void pipeline__maint_clear(struct dev *d);

/* A channel lacking from this many scored readings in a row, over at least PIPE_MISSING_MS of
 * the readings' time since its last one, is missing (pipeline_missing.c). The time keeps a
 * channel another source sends less often into the same device (Telegraf inputs at different
 * intervals) from being told missing between its readings. */
#define PIPE_MISSING_AFTER 10
#define PIPE_MISSING_MS 300000
/* Forgets which channels d lacked: none missing, none seen. Caller holds d->mu, or d is not
 * shared. */
void pipeline__missing_init(struct dev *d);
/* Counts the channels the reading at ts (just scored: d->last_present) lacked, and says those
 * that became missing or were reported again. Shard thread, d->mu held. */
void pipeline__missing_note(pipeline_t *p, struct dev *d, int64_t ts);
/* The status's "missing_channels": [{"channel", "readings_missing", "missing", "last_seen_ts",
 * "last_seen"}] of the channels the newest reading lacked (NULL: out of memory). Caller owns
 * it (json_decref); caller holds d->mu. */
struct json_t *pipeline__missing_json(const struct dev *d);

/* Brings back every device's stored arrivals (pipeline_restore, after the detectors and
 * before the catch-up). Returns 0 or an ERR_ (the read failed). */
int pipeline__arrivals_restore(pipeline_t *p);
/* Sets the flush's period and slice (p->arr_every_ms, p->arr_slice): PIPE_ARRIVALS_MS and
 * PIPE_ARRIVALS_SLICE, or (tests only) $VIGIL_TEST_ARRIVALS_MS and $VIGIL_TEST_ARRIVALS_SLICE,
 * said in the log. pipeline_create. */
void pipeline__arrivals_init(pipeline_t *p);

/* /metrics' arrivals families (vigil_arrivals_flush_seconds, _devices): any thread. */
void pipeline__arrivals_metrics(pipeline_t *p, sbuf_t *out);

/* The test hooks' upper bounds (pipeline__test_knob's max): a period in ms, at most a day, so
 * "now + period" (int64_t ms) cannot overflow (review read64b: VIGIL_TEST_ARRIVALS_MS at
 * LLONG_MAX was signed overflow in pass_begin); the devices an arrivals tick walks, at most a
 * million (the default walks 8192), and the readings between two detector saves, the same. */
#define PIPE_KNOB_MS_MAX    86400000LL
#define PIPE_KNOB_COUNT_MAX 1000000LL

/* Any thread (pipeline.c; pipeline_arrivals.c and pipeline_restart_retry.c use it). A test
 * hook's positive value up to max (max >= 1), read from the environment variable name (tests
 * only: said in the log with what, a warning), or 0 when unset or empty; any other value than
 * digits making a positive number ("3000ms", "3e3", " 3000", "+3000", "-5", "0": "not a
 * positive whole number"), or one above max ("above max"), is ignored (0) with a warning naming
 * it: vigild starts as if it were unset. */
long long pipeline__test_knob(const char *name, long long max, const char *what);

/* A stored reading (a double; NaN and Inf are refused at the write) as the detector's float,
 * for scoring (pipeline_score.c) and for a training's window (pipeline_window.c) alike.
 * Beyond float range (|v| > FLT_MAX, 1e39, 1e300) the cast gave Inf, which the detector takes
 * for a missing reading and imputes: a fault a million times bigger than one that opens an
 * anomaly at once only made a warning. Clamped to +-FLT_MAX, it scores as the extreme it is;
 * the window reads it the same way, so a channel stuck there is learnt as the level it scored
 * at, as a stuck 1e6 is (read as missing there, each training learnt the channel at its value
 * before the fault, and the accepted episode opened again after every training). */
static inline float pipeline__reading_float(double v)
{
    return v > FLT_MAX ? FLT_MAX : v < -FLT_MAX ? -FLT_MAX : (float)v;
}

/* Looks a device up (NULL if unknown); the caller then locks d->mu. Any thread. */
struct dev *pipeline__find(pipeline_t *p, const char *device);

/* Finds or creates a device. NULL when out of memory. Any thread. */
struct dev *pipeline__dev(pipeline_t *p, const char *device);
/* pipeline__dev for a name of len bytes whose key in p->idx is k; pipeline__dev_same is the
 * index's name comparison for a struct dev. Any thread. */
struct dev *pipeline__dev_k(pipeline_t *p, const char *name, size_t len, nameidx_key_t k);
int pipeline__dev_same(const void *item, const char *name, size_t len);

/* Scores the points of a committed message, in order per device (pipeline_score.c). Shard
 * thread: sh's. */
void pipeline__score_message(pipeline_t *p, struct shard *sh, const batch_t *b);

/* Puts d's sealed prediction blocks not yet put to the store (pipeline_score.c); cb NULL: no
 * reports (at shutdown). Returns 0 or the refused put's status (the block stays in memory).
 * Caller holds d->mu. */
int pipeline__ring_handoff(pipeline_t *p, struct dev *d, store_pred_cb cb);

/* Empties the prediction ring for d->nch channels and frees its arrays (they grow on demand
 * as predictions are recorded). Caller holds d->mu. */
int pipeline__ring_alloc(pipeline_t *p, struct dev *d);

/* The channels of d that its "inputs" attribute names (bit c: d->ch[c]), 0 when none or when
 * it names every channel (a device must score one: logged). Caller holds d->mu. */
uint64_t pipeline__inputs_mask(const struct dev *d);
/* The same from attributes attrs (JSON or NULL) and channel names ch[nch] of device name. */
uint64_t pipeline__inputs_mask_of(const char *attrs, char *const *ch, int nch, const char *name);
/* A PUT of attributes changed d's input set (d->inputs differs from pipeline__inputs_mask):
 * makes d's detector again with the new set (the device relearns, as at a new channel).
 * Caller holds d->mu. Returns 0, or ERR_NOMEM. */
int pipeline__inputs_relearn(pipeline_t *p, struct dev *d);
/* Sets d's channel limits from d->attrs and rebuilds its limit states (pipeline_limits.c): an
 * alarm whose limit went ends with an "ok" message; the new limits are judged at d's next
 * scored reading. Caller holds d->mu. */
void pipeline__apply_limits(pipeline_t *p, struct dev *d);

/* A channel's limit state (pipeline_limits.c), as /metrics' vigil_device_limit_state shows it. */
enum pipe_lim_state { PIPE_LIM_OK = 0, PIPE_LIM_FORECAST = 1, PIPE_LIM_EXCEEDED = 2 };

/* After a scored reading of d (d->last_x, d->last_ts, d->last_present updated): rebuilds d's
 * limit states if the last rebuild failed, judges "exceeded" on the reading and, once per
 * o.limit_check_every readings, "forecast" (the detector's forecast, d with a model only); each
 * change publishes an "event: limit" message. No allocation but a rebuild's and the forecast's
 * own scratch. Shard thread; caller holds d->mu. */
void pipeline__limits_check(pipeline_t *p, struct dev *d);
/* Frees d's limit states (d->limits NULL after). Caller holds d->mu, or d is not shared. */
void pipeline__limits_free(struct dev *d);
/* At the end (end_ms) of a maintenance period of d (pipeline_maint.c): every limit alarm of d
 * not judged since by a reading timestamped at or after end_ms ends with an "ok" message, and
 * its state is ok "since" null until d's next scored reading judges it again, as after a
 * restart, so a device silent after the work shows no stale alarm. A channel a reading after
 * the period judged already (the period ends by vigild's clock, a reading is scored by its own
 * timestamp) keeps its state. Caller holds d->mu. */
void pipeline__limits_reset(pipeline_t *p, struct dev *d, int64_t end_ms);
/* d's readings go on from a new timeline (its clock stepped back: pipeline_score.c): the
 * forecast check runs at its next scored reading, so a forecast alarm's at_ts follows the new
 * timeline at once. Caller holds d->mu. */
void pipeline__limits_timeline(struct dev *d);
/* The crossing of channel c's limits (d->lim_max[c], d->lim_min[c]) the limit alarms judge
 * (pipeline_limits.c), for the alarm and the forecast route alike: the first of the h steps
 * of mean (the detector's forecast [h, d->nch], NULL: none) whose value is at or beyond a limit,
 * and, while c departs from its prediction (d in warning or anomaly, c with at least an even
 * share of the error), the step at which the significant trend of c's newest readings reaches
 * one, when earlier. Returns the step (1 the next reading), 0 when none within h; *side the
 * limit (0 max, 1 min; -1 none), *by_trend 1 when the trend's. Caller holds d->mu. */
int pipeline__limit_crossing(const struct dev *d, int c, const float *mean, int h, int *side,
                             int *by_trend);
/* The interval the forecast's steps and the limit alarms' crossings are spaced by, in
 * microseconds: d's running average of its reading intervals (1 s before it has one), rounded
 * to the microsecond below 10 s and to the millisecond from 10 s, so that the forecast's
 * "interval_ms" prints it exactly in 7 significant digits (pipeline__jinterval). Step k is
 * k * it / 1000 ms after the newest reading, rounded down. Caller holds d->mu
 * (pipeline_predict.c). */
int64_t pipeline__step_us(const struct dev *d);
/* Step k's time after the newest reading at interval us (pipeline__step_us): k * us / 1000 ms,
 * rounded down, without overflowing for any interval (pipeline_predict.c). */
int64_t pipeline__step_ms(int64_t us, int64_t k);
/* An interval of pipeline__step_us as the forecast's "interval_ms": an integer when it is whole
 * milliseconds, else a real (below 10 s: at most 7 significant digits, exact as printed).
 * Caller owns it (json_decref) (pipeline_predict.c). */
struct json_t *pipeline__jinterval(int64_t us);
/* The status's "limits": per limited channel {"state", "since_ts", "since", "max", "min",
 * "deadband", "limit", "crossing"}; {} for a device without limits. Caller owns it (json_decref;
 * NULL: out of memory); caller holds d->mu. */
struct json_t *pipeline__limits_status(const struct dev *d);

/* A timestamp (ms) as the API's time string, "2023-11-14T22:13:20.000Z" (pipeline_query.c). */
struct json_t *pipeline__jtime(int64_t ms);
/* A finite v as a JSON real, anything else as null (JSON has no NaN) (pipeline_query.c).
 * Caller owns it (json_decref). */
struct json_t *pipeline__jnum(double v);
/* Prints v compactly with 7 significant digits into *out (caller owns; free) and releases v
 * (takes ownership, even on failure). Returns 0, or ERR_NOMEM (*out NULL) (pipeline_query.c). */
int pipeline__dump(struct json_t *v, char **out);
/* One channel's limit state copied out for /metrics. */
struct pipe_lim_copy {
    uint8_t state; /* enum pipe_lim_state */
    char name[BATCH_NAME_MAX + 1];
};
/* Copies d's limit states into out (room for DETECTOR_MAX_CHANNELS); returns how many. Caller
 * holds d->mu. */
int pipeline__limits_copy(const struct dev *d, struct pipe_lim_copy *out);

#endif

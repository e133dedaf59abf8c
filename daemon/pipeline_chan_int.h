/* daemon/pipeline_chan_int.h: mapping a point's fields onto its device's channels
 * (pipeline_chan.c): the shards' shared channel lists, the map itself, and the checks that
 * point_prepare and pipeline_new_channels share (what becomes of a point; whether a device's
 * detection is on). Split from pipeline_int.h (session 66: it had grown to 969 lines), which
 * declares struct chlist alone for the pointer struct dev holds; included by the files that
 * map channels or call these. Callers hold d->mu, as each says. */
#ifndef VIGIL_PIPELINE_CHAN_INT_H
#define VIGIL_PIPELINE_CHAN_INT_H

#include "pipeline_int.h"

/* A channel list, shared by the devices of a shard that have it (dev.chl): its names in order,
 * each followed by a NUL. Shard thread only; freed with the shard. */
struct chlist {
    int n;
    size_t key_len;
    char key[];
};

/* Channel lists a shard keeps at most (a client giving each device its own channel names
 * cannot grow them without bound; devices beyond take map_channels' slow path). */
#define PIPE_CHLISTS 4096

/* Maps pt's fields onto d's channels into idx[pt->nfields] (-1: beyond the detector's width),
 * adding new channels (pipeline_chan.c). Returns 1 when the channel set changed (the detector
 * must be rebuilt), 0 when not, or ERR_NOMEM. Shard thread; caller holds d->mu. */
int pipeline__map_channels(struct shard *sh, struct dev *d, const batch_t *b,
                           const batch_point_t *pt, int *idx);
/* The most fields a point may have to be scored: point_prepare maps them onto channels in an
 * array of this many (a wider point is stored, not scored, and brings no channel). */
#define PIPE_POINT_FIELDS (DETECTOR_MAX_CHANNELS * 4)

/* pipeline_chan.c, caller holds d->mu. point_fate: what point_prepare does with pt, a reading
 * of d (newest: d's newest scored ts), PIPE_PT_SCORED or why not (PIPE_PT_WIDE: more than
 * PIPE_POINT_FIELDS fields); pure, pipeline_new_channels asks it too. detecting: 1 when d's
 * detection is on (its detector past DET_LEARNING). */
enum { PIPE_PT_SCORED, PIPE_PT_WIDE, PIPE_PT_OLD, PIPE_PT_FUTURE, PIPE_PT_MAINT };
int pipeline__point_fate(struct dev *d, const batch_point_t *pt, int64_t newest, int64_t future_ms);
int pipeline__detecting(const struct dev *d);

/* Frees a shard's channel lists (pipeline_destroy, after the shard stopped). */
void pipeline__chlists_free(nameidx_t *x);

#endif

/* daemon/pipeline_groups_int.h: the device groups (pipeline_groups.c): struct group, the groups'
 * table, each group's member list and the walk over it. Split from pipeline_int.h (session 59:
 * it had grown to 960 lines), which declares struct group alone for the pointers it holds;
 * included by the files that look inside a group or call these. The locks are pipeline_int.h's
 * (groups_mu, due_mu) and the group's rollback_mu; their order is pipeline_train.c's header's
 * (groups_mu's: pipeline_groups.c's). */
#ifndef VIGIL_PIPELINE_GROUPS_INT_H
#define VIGIL_PIPELINE_GROUPS_INT_H

#include "pipeline_int.h"

/* A device group: its members (devices whose attributes name it) share one model. Never freed
 * before the pipeline. */
struct group {
    UT_hash_handle hh;
    char *name;        /* owned; the hash key */
    int due, training; /* guarded by pipeline.due_mu */
    /* Its members in the order they joined (room for members_room), kept beside dev.group
     * (changed together, under the device's mu then groups_mu), so a training finds them
     * without walking every device. Guarded by pipeline.groups_mu. */
    struct dev **members;
    size_t nmembers, members_room;
    uint64_t left; /* how many times a member has left: a walk's mark (pipeline__group_next) */
    /* Where in the member list the next training starts pooling windows (o.group_rows): only
     * the training that set `training` touches it. */
    size_t pool_next;
    /* Held through a rollback of the group (pipeline_rollback.c), so two asked at once on two
     * members do not interleave their installs. Taken before any device's mu; guards nothing
     * else. Groups live until the pipeline is destroyed. */
    pthread_mutex_t rollback_mu;
};

/* Finds or creates the group `name` (NULL when out of memory). Any thread. */
struct group *pipeline__group(pipeline_t *p, const char *name);

/* Moves d from its group (d->group, or none) to g (or none): d->group and both member lists.
 * Joining g while it trains sets d->left_out; joining g idle, or no group, while in no training
 * asks again for a request of d's merged meanwhile (d->again: pipeline__mark_due). Returns 0, or
 * ERR_NOMEM (d stays where it was). Caller holds d->mu. */
int pipeline__group_move(pipeline_t *p, struct dev *d, struct group *g);

/* Frees the groups (pipeline_destroy). */
void pipeline__groups_free(pipeline_t *p);

/* The devices of group g, in the order they joined: *out is malloc'd (caller frees). Takes
 * groups_mu only. Returns 0 or ERR_NOMEM. */
int pipeline__group_members(pipeline_t *p, struct group *g, struct dev ***out, size_t *n);
/* A walk over g's members (pipeline__group_next): zeroed to begin. */
struct group_walk {
    const struct dev *at; /* the member it stands on (NULL: not begun) */
    size_t i;             /* at's index in g's list when the walk stood on it */
    uint64_t left;        /* g's left count then */
};
/* The next member of g on walk w (w zeroed: its first), or NULL past the list's end; borrowed
 * (a device stays allocated once deleted). Allocates nothing: a walk over g's members for a
 * caller that needs no copy (a group's rollback, an operator's retrain given, session 58; a
 * training's end, session 59). Goes on from the member it stood on
 * while no member has left g since (joins only append: nobody moved), else back to the start:
 * every device in g throughout the walk is seen, some maybe twice (the walk restarts once for
 * each step over which a member left, so it ends once members stop leaving). Takes groups_mu
 * only. */
struct dev *pipeline__group_next(pipeline_t *p, struct group *g, struct group_walk *w);
/* The rule of who leads a group's training (session 67, read67a: one rule for the training and
 * the new-channel warnings): of the members that begin it (pipeline__member_begin), the one
 * with the newest version (pipeline__top_version) leads, the first of equals in join order;
 * its channels are the training's, and a member with other channels is left out, keeping its
 * model. 1 when a member whose newest version is va leads before one with vb that comes
 * earlier in the order (train_next sorts the members by it, and train_set's first member that
 * begins leads; pipeline__group_place predicts it). Before session 67 the warnings took the
 * first member with a model in join order, which the training did not. */
int pipeline__leads_before(uint32_t va, uint32_t vb);
/* Where d (in a group, locked), whose channels are or will be ch[0..nch) (a point's new
 * channels appended), stands in its group's next training, for the new-channel warnings:
 * PIPE_GROUP_ALONE (no other member), PIPE_GROUP_LEADS (d leads, pipeline__leads_before: the
 * training takes its channels and leaves out the members with other ones), PIPE_GROUP_FOLLOWS
 * (another member leads, with other channels: d is left out) or PIPE_GROUP_MATCHES (the lead's
 * channels are d's, or d leads and every other member has its channels: nobody is left out;
 * session 67, read67a: such a member was told it was left out). Only members that would begin
 * can lead: one holding an episode is left out of its episode's trainings (pipeline_train.c),
 * unless an operator's retrain takes every member, which this cannot foresee. Side-effect free:
 * the other members are only tried (trylock, 64 times at most): one busy throughout neither
 * leads nor counts as matching, so it may be called holding d->mu. Takes groups_mu at each
 * step. */
enum { PIPE_GROUP_ALONE, PIPE_GROUP_LEADS, PIPE_GROUP_FOLLOWS, PIPE_GROUP_MATCHES };
int pipeline__group_place(pipeline_t *p, const struct dev *d, int nch, const char *const *ch);
/* Gives an operator's retrain (retrain_all) to d (NULL: to g's first member that takes it, on a
 * walk of g's list: nothing allocated) if it is in g and not deleted. Returns 0, or ERR_NOTFOUND
 * (none is). Holding no lock. */
int pipeline__group_retrain_give(pipeline_t *p, struct group *g, struct dev *d);

#endif

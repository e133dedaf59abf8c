/* daemon/pipeline_groups.c: the device groups' table and member lists (moved unchanged from
 * pipeline_train.c, session 48, which trains the groups).
 *
 * Locks: groups_mu (leaf) guards the groups table and each group's member list; it is taken
 * under a device's mu (pipeline__group_move, which takes due_mu after it, not inside it, and
 * may then ask for a training, pipeline__mark_due, under the device's mu alone).
 * pipeline__group_place, holding one device's mu, only tries the other members' (trylock).
 * Threads: any (callers say which lock they hold). */
#include "err.h"
#include "pipeline_groups_int.h"
#include "pipeline_int.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* ---- groups ------------------------------------------------------------------------------- */

/* Group names come from the admin API, so the table's buckets come from the name's key in
 * p->idx (seeded, and its seed never changes after pipeline_create), not from uthash's unseeded
 * Jenkins hash; HASH_DEL uses the value stored at add. */
struct group *pipeline__group(pipeline_t *p, const char *name)
{
    struct group *g;
    size_t len = strlen(name);
    unsigned hv = (unsigned)nameidx_key(&p->idx, name, len).h;
    pthread_mutex_lock(&p->groups_mu);
    HASH_FIND_BYHASHVALUE(hh, p->groups, name, (unsigned)len, hv, g);
    if (g == NULL && (g = calloc(1, sizeof *g)) != NULL) {
        if ((g->name = strdup(name)) == NULL) {
            free(g);
            g = NULL;
        } else {
            pthread_mutex_init(&g->rollback_mu, NULL);
            HASH_ADD_KEYPTR_BYHASHVALUE(hh, p->groups, g->name, (unsigned)len, hv, g);
        }
    }
    pthread_mutex_unlock(&p->groups_mu);
    return g;
}

void pipeline__groups_free(pipeline_t *p)
{
    struct group *g, *tmp;
    HASH_ITER(hh, p->groups, g, tmp)
    {
        HASH_DEL(p->groups, g);
        pthread_mutex_destroy(&g->rollback_mu);
        free(g->members);
        free(g->name);
        free(g);
    }
}

int pipeline__group_move(pipeline_t *p, struct dev *d, struct group *g)
{
    struct group *old = d->group;
    if (g == old)
        return 0;
    pthread_mutex_lock(&p->groups_mu);
    if (g && g->nmembers == g->members_room) {
        size_t room = g->members_room ? 2 * g->members_room : 8;
        struct dev **nv = realloc(g->members, room * sizeof *nv);
        if (nv == NULL) {
            pthread_mutex_unlock(&p->groups_mu);
            return ERR_NOMEM;
        }
        g->members = nv;
        g->members_room = room;
    }
    if (old) { /* keeps the others' order: trainings pool their windows in it */
        for (size_t i = 0; i < old->nmembers; i++)
            if (old->members[i] == d) {
                memmove(old->members + i, old->members + i + 1,
                        (old->nmembers - i - 1) * sizeof *old->members);
                old->nmembers--;
                old->left++;
                break;
            }
    }
    if (g)
        g->members[g->nmembers++] = d;
    d->group = g;
    pthread_mutex_unlock(&p->groups_mu);
    /* Joining g while g trains: that training may have copied its member list already, and a
     * request d makes before it ends would be merged into it with nothing to run for d. It is
     * asked again as the training ends (left_out, cleared there: train_next's loop over g's
     * members). Session 51; before, it was lost. */
    int training = 0;
    if (g) {
        pthread_mutex_lock(&p->due_mu);
        training = g->training;
        pthread_mutex_unlock(&p->due_mu);
    }
    if (training) {
        d->left_out = 1;
    } else if (!d->training && !d->due) {
        /* Joining g idle, or no group, in no training (its part of one over, or left out of
         * one it joined while that trained): a request merged meanwhile (again) is no other
         * training's to ask again, since none runs over d now (train_next's end loop runs over
         * that training's members and its group's, neither of which may hold d): asked for g,
         * or for d alone, here. Session 52; before, it waited for a training d was no part of,
         * or was lost. A deleted device's request goes with it (pipeline_forget clears `again`
         * before it leaves its group). */
        d->left_out = 0;
        if (d->again) {
            d->again = 0;
            (void)pipeline__mark_due(p, d);
        }
    }
    return 0;
}

int pipeline__group_members(pipeline_t *p, struct group *g, struct dev ***out, size_t *n)
{
    pthread_mutex_lock(&p->groups_mu);
    size_t k = g->nmembers;
    struct dev **v = malloc((k ? k : 1) * sizeof *v);
    if (v && k)
        memcpy(v, g->members, k * sizeof *v);
    pthread_mutex_unlock(&p->groups_mu);
    if (v == NULL)
        return ERR_NOMEM;
    *out = v;
    *n = k;
    return 0;
}

struct dev *pipeline__group_next(pipeline_t *p, struct group *g, struct group_walk *w)
{
    pthread_mutex_lock(&p->groups_mu);
    /* On from the member it stood on while no member has left since (a join appends: nobody
     * moved); after any leave, back to the start, which sees some members twice and skips none
     * of those in g throughout. Neither looking for w->at (it may have left and joined again
     * at the end) nor finding it at its index (members before it and it may have left, it
     * joined again and landed there) tells that nobody moved. */
    size_t i = w->at && w->left == g->left ? w->i + 1 : 0;
    struct dev *next = i < g->nmembers ? g->members[i] : NULL;
    w->at = next;
    w->i = i;
    w->left = g->left;
    pthread_mutex_unlock(&p->groups_mu);
    return next;
}

/* Whether d took g's operator's retrain: in g and not deleted. Takes d's mu. */
static int give_one(struct dev *d, const struct group *g)
{
    pthread_mutex_lock(&d->mu);
    const int in = !atomic_load_explicit(&d->deleted, memory_order_relaxed) && d->group == g;
    if (in)
        d->retrain_all = 1;
    pthread_mutex_unlock(&d->mu);
    return in;
}

int pipeline__group_retrain_give(pipeline_t *p, struct group *g, struct dev *d)
{
    if (d)
        return give_one(d, g) ? 0 : ERR_NOTFOUND;
    /* A walk, not a copy of the list (session 58): nothing to allocate, so no out-of-memory
     * drop. give_one takes each member's mu with groups_mu released (it is taken under a
     * device's mu, never the other way). A member that leaves meanwhile sends the walk back to
     * the start; one seen twice that did not take it (deleted, or out of g) refuses again. */
    struct group_walk w = {0};
    for (struct dev *e; (e = pipeline__group_next(p, g, &w)) != NULL;)
        if (give_one(e, g)) /* a device stays allocated once deleted */
            return 0;
    return ERR_NOTFOUND;
}

int pipeline__leads_before(uint32_t va, uint32_t vb)
{
    return va > vb;
}

/* 1 when e's channels are ch[0..nch), in that order (pipeline__member_begin's test). */
static int same_channels(const struct dev *e, int nch, const char *const *ch)
{
    if (e->nch != nch)
        return 0;
    for (int c = 0; c < nch; c++)
        if (strcmp(e->ch[c], ch[c]) != 0)
            return 0;
    return 1;
}

/* e's mu, tried a bounded number of times (its holder scores a reading or begins or applies a
 * training part: short): 0 when taken, else nonzero (never waited for: the caller holds
 * another device's mu). */
static int try_member(struct dev *e)
{
    for (int t = 0; t < 64; t++) {
        if (pthread_mutex_trylock(&e->mu) == 0)
            return 0;
        sched_yield();
    }
    return 1;
}

int pipeline__group_place(pipeline_t *p, const struct dev *d, int nch, const char *const *ch)
{
    struct group *g = d->group;
    pthread_mutex_lock(&p->groups_mu);
    const size_t n = g->nmembers;
    pthread_mutex_unlock(&p->groups_mu);
    if (n <= 1)
        return PIPE_GROUP_ALONE;
    /* A walk in join order (nothing allocated), d's own mu held: the others' are only tried,
     * never waited for, so no lock order is broken. d is in g's list (it cannot leave: its mu
     * is held), and d begins the next training (its detector starts learning again: no episode
     * held). The lead is the member that begins with the newest version, the first of equals
     * (pipeline__leads_before, train_next's order). */
    const struct dev *best = d;
    uint32_t best_top = 0;
    int seen = 0, best_same = 1, all_same = 1, others = 0;
    struct group_walk w = {0};
    for (struct dev *e; (e = pipeline__group_next(p, g, &w)) != NULL;) {
        if (e == d) {
            const uint32_t top = pipeline__top_version(d);
            if (!seen || pipeline__leads_before(top, best_top)) {
                best = d;
                best_top = top;
                best_same = 1;
            }
            seen = 1;
            continue;
        }
        if (try_member(e) != 0) { /* busy throughout: neither lead nor known to match */
            others++;
            all_same = 0;
            continue;
        }
        const int in = e->group == g && !atomic_load_explicit(&e->deleted, memory_order_relaxed);
        const int same = in && same_channels(e, nch, ch);
        const int begins = in && e->det != NULL && !detector_holding(e->det);
        const uint32_t top = begins ? pipeline__top_version(e) : 0;
        pthread_mutex_unlock(&e->mu);
        if (!in)
            continue;
        others++;
        all_same &= same;
        if (begins && (!seen || pipeline__leads_before(top, best_top))) {
            best = e;
            best_top = top;
            best_same = same;
            seen = 1;
        }
    }
    if (best != d)
        return best_same ? PIPE_GROUP_MATCHES : PIPE_GROUP_FOLLOWS;
    return others == 0 ? PIPE_GROUP_ALONE : all_same ? PIPE_GROUP_MATCHES : PIPE_GROUP_LEADS;
}

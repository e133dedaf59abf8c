/* daemon/pipeline_predict.c: the pipeline's prediction answers: the scored readings' predictions
 * (/predictions, and their rows for /query) and the forecast. Both prediction answers gather
 * the ring's entries in a time range (pred_gather: those in memory and the older ones in the
 * store's sealed blocks, in time order, at most the limit); /predictions joins them to the
 * stored readings of the same timestamps, the /query rows round them as the JSON does.
 *
 * Any thread: each function takes the device's mutex while it copies what it reports, and reads
 * the store without it. */
#include "dnum.h"
#include "err.h"
#include "log.h"
#include "pipeline_int.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The ring entries of one predictions answer, copied out under d->mu, and the stored readings
 * joined to them by timestamp (on_stored). */
struct pred_join {
    size_t n, next; /* entries; the first one not yet passed by the store's points */
    int nch;
    char *ch[DETECTOR_MAX_CHANNELS]; /* owned copies of the device's channel names */
    int64_t *ts;                     /* [n], increasing */
    float *score;                    /* [n] */
    uint8_t *state;                  /* [n] */
    float *pred;                     /* [n][nch] */
    double *actual; /* [n][nch]; NaN: the stored reading has no value of that channel */
};

static void pred_join_free(struct pred_join *j)
{
    for (int c = 0; c < j->nch; c++)
        free(j->ch[c]);
    free(j->ts);
    free(j->score);
    free(j->state);
    free(j->pred);
    free(j->actual);
}

/* store_point_cb: puts a stored point's values beside the ring entry of the same timestamp.
 * Points are in time order, like the entries; stored points without an entry (readings that
 * were not scored) are passed over. */
static int on_stored(void *arg, int64_t ts, size_t n, const char *const *channels,
                     const double *values)
{
    struct pred_join *j = arg;
    while (j->next < j->n && j->ts[j->next] < ts)
        j->next++;
    if (j->next == j->n)
        return 1;
    if (j->ts[j->next] != ts)
        return 0;
    double *a = j->actual + j->next * (size_t)j->nch;
    for (size_t i = 0; i < n; i++) {
        /* Both orders are of first appearance, so channel i is usually the device's i. */
        int c = (int)i < j->nch && strcmp(channels[i], j->ch[i]) == 0 ? (int)i : -1;
        for (int k = 0; c < 0 && k < j->nch; k++)
            if (strcmp(channels[i], j->ch[k]) == 0)
                c = k;
        if (c >= 0)
            a[c] = values[i];
    }
    j->next++;
    return j->next == j->n;
}

/* pipeline__ring_fn: copies an entry in [from, to) into the join (room for `room`), stops once
 * it is full; notes the oldest entry's timestamp. */
struct pred_pick {
    struct pred_join *j;
    int64_t from, to, oldest;
    size_t room;
};

static int pred_pick(void *arg, int64_t ts, float score, uint8_t state, const float *pred)
{
    struct pred_pick *k = arg;
    struct pred_join *j = k->j;
    if (k->oldest < 0)
        k->oldest = ts;
    if (ts < k->from || ts >= k->to)
        return ts >= k->to; /* entries are in time order: none after this one fits */
    j->ts[j->n] = ts;
    j->score[j->n] = score;
    j->state[j->n] = state;
    memcpy(j->pred + j->n * (size_t)j->nch, pred, (size_t)j->nch * sizeof *pred);
    return ++j->n == k->room;
}

/* pipeline__ring_fn: notes the oldest entry's timestamp only. */
static int pred_pick_oldest(void *arg, int64_t ts, float score, uint8_t state, const float *pred)
{
    (void)score, (void)state, (void)pred;
    ((struct pred_pick *)arg)->oldest = ts;
    return 1;
}

/* Allocates room for `room` entries of nch channels in j. Returns 0 or ERR_NOMEM. */
static int pred_room(struct pred_join *j, size_t room, int nch)
{
    size_t cells = room * (size_t)nch;
    j->nch = nch;
    j->ts = malloc(room * sizeof *j->ts);
    j->score = malloc(room * sizeof *j->score);
    j->state = malloc(room);
    j->pred = malloc(cells * sizeof *j->pred);
    j->actual = malloc(cells * sizeof *j->actual);
    return j->ts && j->score && j->state && j->pred && j->actual ? 0 : ERR_NOMEM;
}

/* What an answer reads from the store: the blocks [seq_lo, seq_hi), the first `skip` entries of
 * the first not answered (pipeline__ring_stored). */
struct pred_plan {
    int64_t seq_lo, seq_hi;
    size_t skip, stored; /* stored: entries they answer */
    int64_t mem_oldest;  /* the oldest answered entry in memory (-1: none) */
};

/* Copies the channel names and the ring's answered entries in memory in [from, to), at most
 * limit, into m (room for them); fills the plan of the rest. Caller holds d->mu. Returns 0 or
 * ERR_NOMEM. */
static int pred_copy(const struct dev *d, int64_t from, int64_t to, size_t limit,
                     struct pred_join *j, struct pred_join *m, struct pred_plan *plan)
{
    j->nch = m->nch = d->nch;
    for (int c = 0; c < d->nch; c++)
        if ((j->ch[c] = strdup(d->ch[c])) == NULL)
            return ERR_NOMEM;
    plan->stored = pipeline__ring_stored(&d->ring, &plan->seq_lo, &plan->seq_hi, &plan->skip);
    size_t room = pipeline__ring_len(&d->ring) - plan->stored;
    if (room > limit)
        room = limit;
    struct pred_pick k = {m, from, to, -1, room};
    if (room == 0) {
        pipeline__ring_each(&d->ring, pred_pick_oldest, &k);
        plan->mem_oldest = k.oldest;
        return 0;
    }
    if (pred_room(m, room, d->nch))
        return ERR_NOMEM;
    pipeline__ring_each(&d->ring, pred_pick, &k);
    plan->mem_oldest = k.oldest;
    return 0;
}

/* store_pred_read_cb: a stored block's answered entries into the join (pred_pick), or only the
 * oldest one's timestamp. Blocks come in order; the first may be newer than planned (the ring
 * moved on and the store trimmed it meanwhile: the answer then starts later), but a gap after it
 * is an error. */
struct pred_read {
    struct pred_pick *k;
    const struct pred_plan *plan;
    int only_oldest;
    int64_t next; /* the block expected next (-1: the first) */
    int stopped;  /* the walk ended before the last block */
    int rc;
};

static int on_pred_block(void *arg, int64_t seq, uint32_t n, int nch, const void *blob, size_t len)
{
    struct pred_read *x = arg;
    if ((x->next >= 0 && seq != x->next) || nch != x->k->j->nch) {
        x->rc = ERR_CORRUPT;
        return 1;
    }
    size_t from = seq == x->plan->seq_lo ? x->plan->skip : 0;
    x->next = seq + 1;
    int stop = pipeline__ring_block_each(blob, len, n, nch, from,
                                         x->only_oldest ? pred_pick_oldest : pred_pick, x->k);
    if (stop < 0)
        x->rc = stop;
    x->stopped = stop != 0;
    return stop != 0;
}

/* Gathers the predictions of device in [from, to), at most limit, into j (time order; its
 * actual values not read) and the oldest entry kept in *oldest (-1: none). Returns 0 (j then the
 * caller's to free with pred_join_free), or ERR_NOTFOUND, ERR_NOMEM, ERR_CORRUPT, ERR_IO (j
 * freed). */
static int pred_gather(pipeline_t *p, const char *device, int64_t from, int64_t to, size_t limit,
                       struct pred_join *j_out, int64_t *oldest_out)
{
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    struct pred_join j, m;
    memset(&j, 0, sizeof j);
    memset(&m, 0, sizeof m);
    struct pred_plan plan;
    /* The part in memory under d->mu, then the older part from the store without it: blocks
     * leave memory only once committed, so the store has every block below the memory's. */
    pthread_mutex_lock(&d->mu);
    int rc = pred_copy(d, from, to, limit, &j, &m, &plan);
    pthread_mutex_unlock(&d->mu);
    int64_t oldest = plan.mem_oldest;
    if (rc == 0 && plan.stored > 0 && p->store) {
        size_t room = plan.stored + m.n < limit ? plan.stored + m.n : limit;
        /* Entries after the first in memory are newer than every stored one: then only the
         * oldest stored timestamp is needed. */
        int only_oldest = plan.mem_oldest >= 0 && from > plan.mem_oldest;
        if (!only_oldest)
            rc = pred_room(&j, room, j.nch);
        struct pred_pick k = {&j, from, to, -1, room};
        struct pred_read x = {&k, &plan, only_oldest, -1, 0, 0};
        if (rc == 0)
            rc = store_preds_read(p->store, device, plan.seq_lo, plan.seq_hi, on_pred_block, &x);
        /* The newest stored blocks are missing (none at all: all trimmed, the ring moved on). */
        if (rc == 0 && x.rc == 0 && !x.stopped && x.next >= 0 && x.next != plan.seq_hi)
            x.rc = ERR_CORRUPT;
        if (rc == 0)
            rc = x.rc;
        if (rc == ERR_NOTFOUND) /* deleted meanwhile */
            rc = 0;
        if (rc == ERR_CORRUPT)
            log_error("pipeline: stored predictions of '%s' unreadable: %s", device,
                      x.rc ? "a block is malformed or missing" : store_errmsg(p->store));
        if (k.oldest >= 0)
            oldest = k.oldest;
        if (only_oldest)
            j.n = 0;
    }
    /* The stored entries first, then those in memory, at most limit. */
    if (rc == 0 && m.n > 0 && j.ts == NULL) {
        struct pred_join t = m; /* the memory part is the whole answer */
        memcpy(t.ch, j.ch, sizeof t.ch);
        memset(j.ch, 0, sizeof j.ch);
        pred_join_free(&j);
        j = t;
        memset(&m, 0, sizeof m);
    } else if (rc == 0 && m.n > 0) {
        for (size_t i = 0; i < m.n && j.n < limit; i++, j.n++) {
            j.ts[j.n] = m.ts[i];
            j.score[j.n] = m.score[i];
            j.state[j.n] = m.state[i];
            memcpy(j.pred + j.n * (size_t)j.nch, m.pred + i * (size_t)j.nch,
                   (size_t)j.nch * sizeof *j.pred);
        }
    }
    m.nch = 0; /* its names are j's */
    pred_join_free(&m);
    if (rc) {
        pred_join_free(&j);
        return rc;
    }
    *j_out = j;
    *oldest_out = oldest;
    return 0;
}

/* Whether a ring entry's reading was scored with no model (state learning): its "prediction" is
 * only the previous reading carried forward (the reading itself at the first) and its score
 * is 0, not a score. Both answers say null there (session 66: 0.0 read as a prediction or a
 * score of zero, and plotted so). */
static int unmodelled(uint8_t state)
{
    return state == DET_LEARNING;
}

int pipeline_predictions(pipeline_t *p, const char *device, int64_t from, int64_t to, size_t limit,
                         int desc, char **out)
{
    struct pred_join j;
    int64_t oldest;
    /* The gather keeps the oldest entries of the range: desc reads all of it (at most
     * model.predictions) and answers its newest limit, from index lo on, newest first. */
    int rc = pred_gather(p, device, from, to, desc ? SIZE_MAX : limit, &j, &oldest);
    if (rc)
        return rc;
    const size_t lo = desc && j.n > limit ? j.n - limit : 0;
    for (size_t i = 0; i < j.n * (size_t)j.nch; i++)
        j.actual[i] = NAN;
    /* The actual values: the stored readings over the entries' span, read without d->mu (a
     * reading overwritten since shows its current value). No store (unit tests) or a device
     * deleted meanwhile: all null, and so are the actuals in a damaged readings chunk (the
     * predictions do not live there: read69e 5). */
    if (j.n > lo && p->store) {
        j.next = lo;
        store_query_t q = {
            .device = device, .from_ms = j.ts[lo], .to_ms = j.ts[j.n - 1] + 1, .skip_damaged = 1};
        rc = store_query(p->store, &q, on_stored, &j);
        if (rc == ERR_NOTFOUND)
            rc = 0;
    }
    if (rc) {
        pred_join_free(&j);
        return rc;
    }
    json_t *pts = json_array();
    for (size_t k = lo; k < j.n; k++) {
        const size_t i = desc ? j.n - 1 - (k - lo) : k;
        const float *pv = j.pred + i * (size_t)j.nch;
        const double *av = j.actual + i * (size_t)j.nch;
        const int none = unmodelled(j.state[i]);
        json_t *pred = json_object(), *act = json_object();
        for (int c = 0; c < j.nch; c++) {
            json_object_set_new(pred, j.ch[c], pipeline__jnum(none ? NAN : pv[c]));
            json_object_set_new(act, j.ch[c], pipeline__jnum(av[c]));
        }
        json_array_append_new(pts, json_pack("{s:I,s:o,s:o,s:s,s:o,s:o}", "ts", (json_int_t)j.ts[i],
                                             "time", pipeline__jtime(j.ts[i]), "score",
                                             pipeline__jnum(none ? NAN : j.score[i]), "state",
                                             pipeline__state_names[j.state[i]], "predicted", pred,
                                             "actual", act));
    }
    pred_join_free(&j);
    json_t *v = json_pack("{s:s,s:o,s:o}", "device", device, "points", pts, "retained_from_ts",
                          oldest >= 0 ? json_integer(oldest) : json_null());
    return pipeline__dump(v, out);
}

/* v as the JSON answers print it (JSON_REAL_PRECISION(7): "%.7g"), so that /query's series
 * carry the same numbers as /predictions; NaN stays NaN (null there). */
static double json_rounded(float v)
{
    return isfinite(v) ? dnum_round(v, 7) : NAN;
}

int pipeline_predictions_each(pipeline_t *p, const char *device, int64_t from, int64_t to,
                              size_t limit, int desc, api_prediction_cb cb, void *arg)
{
    struct pred_join j;
    int64_t oldest;
    /* The gather keeps the oldest entries of the range: desc reads all of it (at most
     * model.predictions) to pass the newest limit. */
    int rc = pred_gather(p, device, from, to, desc ? SIZE_MAX : limit, &j, &oldest);
    if (rc)
        return rc;
    double pred[DETECTOR_MAX_CHANNELS];
    api_prediction_t e = {
        .nchannels = (size_t)j.nch, .channels = (const char *const *)j.ch, .predicted = pred};
    for (size_t k = 0; k < j.n && k < limit; k++) {
        size_t i = desc ? j.n - 1 - k : k;
        const int none = unmodelled(j.state[i]);
        for (int c = 0; c < j.nch; c++)
            pred[c] = none ? NAN : json_rounded(j.pred[i * (size_t)j.nch + c]);
        e.ts_ms = j.ts[i];
        e.score = none ? NAN : json_rounded(j.score[i]);
        e.state = j.state[i];
        if (cb(arg, &e))
            break;
    }
    pred_join_free(&j);
    return 0;
}

int64_t pipeline__step_us(const struct dev *d)
{
    const double ms = d->dt_ms > 0 ? d->dt_ms : 1000;
    if (ms >= 1e4) /* 8 digits and more: whole ms, printed as an integer */
        return (int64_t)llround(ms) * 1000;
    const int64_t us = (int64_t)llround(ms * 1000);
    return us > 0 ? us : 1;
}

int64_t pipeline__step_ms(int64_t us, int64_t k)
{
    /* k * us / 1000 without its product: us reaches 2.5e17 (readings VTIME_MAX_MS apart) */
    return k * (us / 1000) + k * (us % 1000) / 1000;
}

json_t *pipeline__jinterval(int64_t us)
{
    return us % 1000 == 0 ? json_integer(us / 1000) : json_real((double)us / 1000.0);
}

int pipeline_forecast(pipeline_t *p, const char *device, int horizon, char **out)
{
    if (horizon < 1 || horizon > 10000)
        return ERR_INVAL;
    struct dev *d = pipeline__find(p, device);
    if (d == NULL)
        return ERR_NOTFOUND;
    pthread_mutex_lock(&d->mu);
    if (d->det == NULL) {
        pthread_mutex_unlock(&d->mu);
        return ERR_RANGE;
    }
    size_t cells = (size_t)horizon * (size_t)d->nch;
    float *mean = malloc(cells * sizeof *mean), *band = malloc(cells * sizeof *band);
    int rc = mean && band ? detector_forecast(d->det, mean, band, horizon) : ERR_NOMEM;
    if (rc) {
        pthread_mutex_unlock(&d->mu);
        free(mean);
        free(band);
        return rc;
    }
    const int64_t us = pipeline__step_us(d);
    json_t *steps = json_array();
    for (int k = 0; k < horizon; k++) {
        json_t *vals = json_object();
        for (int c = 0; c < d->nch; c++) {
            float m = mean[(size_t)k * d->nch + c], b = band[(size_t)k * d->nch + c];
            json_object_set_new(vals, d->ch[c],
                                json_pack("{s:o,s:o,s:o}", "mean", pipeline__jnum(m), "low",
                                          pipeline__jnum(m - b), "high", pipeline__jnum(m + b)));
        }
        int64_t ts = d->last_ts + pipeline__step_ms(us, k + 1);
        json_array_append_new(steps, json_pack("{s:I,s:o,s:o}", "ts", (json_int_t)ts, "time",
                                               pipeline__jtime(ts), "values", vals));
    }
    /* Time to limit: the crossing the limit alarms judge (pipeline__limit_crossing) within
     * this horizon: the model's forecast, or the readings' trend while the channel departs
     * from its prediction, "by" saying which. */
    json_t *ttl = json_object();
    for (int c = 0; c < d->nch; c++) {
        if (isnan(d->lim_min[c]) && isnan(d->lim_max[c]))
            continue;
        int side, by_trend, k = pipeline__limit_crossing(d, c, mean, horizon, &side, &by_trend);
        json_t *e = json_null();
        if (k > 0) {
            int64_t in_ms = pipeline__step_ms(us, k), ts = d->last_ts + in_ms;
            e = json_pack("{s:s,s:f,s:i,s:I,s:I,s:o,s:s}", "limit", side == 0 ? "max" : "min",
                          "value", (double)(side == 0 ? d->lim_max[c] : d->lim_min[c]), "steps", k,
                          "in_ms", (json_int_t)in_ms, "at_ts", (json_int_t)ts, "at",
                          pipeline__jtime(ts), "by", by_trend ? "trend" : "model");
        }
        json_object_set_new(ttl, d->ch[c], e);
    }
    json_t *v =
        json_pack("{s:s,s:i,s:o,s:I,s:{s:I,s:s},s:o,s:o}", "device", d->name, "horizon", horizon,
                  "interval_ms", pipeline__jinterval(us), "from_ts", (json_int_t)d->last_ts,
                  "model", "version", (json_int_t)d->last.version, "kind",
                  pipeline__kind_names[d->last.kind], "steps", steps, "time_to_limit", ttl);
    pthread_mutex_unlock(&d->mu);
    free(mean);
    free(band);
    return pipeline__dump(v, out);
}

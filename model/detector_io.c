/* model/detector_io.c: saving a whole detector to bytes, for a restart. The format is
 * detector_format.h's; detector_load.c loads it back.
 *
 * Invariants: one serialiser walks the fields for both sizing and writing, so the two cannot
 * disagree. Threading: save reads the detector (owner thread). */
#include <stddef.h>
#include <string.h>

#include "detector_format.h"
#include "err.h"
#include "internal.h"

struct wr {
    unsigned char *p; /* NULL: only count */
    size_t len, cap;
};

static void put(struct wr *w, const void *src, size_t n)
{
    if (w->p && w->len + n <= w->cap)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

/* Whether onset_record's reference (rec_max, rec_n) is kept and saved: a field that reads it
 * is set. */
int detector__keeps_record(const struct detector_config *c)
{
    return c->onset_record > 0.0f || c->record_open > 0.0f || c->record_open_one > 0.0f;
}

/* The LSTM goes outside the bytes when asked and it is what serves (detector_model). */
static int lstm_outside(const detector_t *d, int shared)
{
    return shared && d->lstm && d->kind == DET_KIND_LSTM;
}

static void write_all(const detector_t *d, struct wr *w, int shared)
{
    const size_t C = (size_t)d->C;
    uint32_t magic = DET_MAGIC, fmt = DET_FORMAT;
    put(w, &magic, 4);
    put(w, &fmt, 4);
    put(w, &d->C, sizeof d->C);
    put(w, &d->cfg, sizeof d->cfg);
    put(w, &d->ep_accepted, sizeof d->ep_accepted); /* format 23 */
    put(w, &d->tripped, sizeof d->tripped);         /* format 48 */
    put(w, &d->ep_trip, sizeof d->ep_trip);         /* format 48 */
#define PUT_FIELD(f) put(w, &(f), sizeof(f));
    FIELDS(PUT_FIELD)
#undef PUT_FIELD
    put(w, d->ctx, sizeof(float) * (size_t)d->ctx_cap * C);
    put(w, d->last, sizeof(float) * C);
    put(w, d->lin_ab, sizeof(float) * C * C);
    put(w, d->lin_b, sizeof(float) * C);
    put(w, d->persist, C);
    put(w, d->lo, sizeof(float) * C);
    put(w, d->hi, sizeof(float) * C);
    put(w, d->pred, sizeof(float) * C);
    put(w, d->state, 2 * sizeof(float) * d->state_len);
    put(w, d->err_scale, sizeof(float) * C);
    put(w, d->resid_rms, sizeof(float) * C);
    put(w, d->lmean, sizeof(float) * C);
    put(w, d->lscale, sizeof(float) * C);
    put(w, d->rinv, sizeof(float) * C * C);
    if (d->cfg.op_point && C >= 2) {
        put(w, &d->op_n, sizeof d->op_n);
        put(w, d->op_ew, sizeof(double) * C);
        put(w, d->op_sum, sizeof(double) * C);
        put(w, d->op_sumsq, sizeof(double) * C);
    }
    if (d->cfg.season_bins > 0) {
        put(w, d->season, C);
        put(w, d->s_period, sizeof(int) * C);
        put(w, d->s_a, sizeof(float) * C);
        put(w, d->s_phi, sizeof(float) * C);
        const size_t np = detector__season_count(d->season, (int)C);
        if (np > 0)
            put(w, d->s_prof, sizeof(float) * np * (size_t)d->cfg.season_bins);
    }
    if (d->cfg.burst_memory) {
        put(w, &d->burst_n, sizeof d->burst_n);
        put(w, &d->burst_head, sizeof d->burst_head);
        put(w, &d->burst_pend, sizeof d->burst_pend);
        put(w, &d->ep_peak, sizeof d->ep_peak);
        put(w, &d->pend_peak, sizeof d->pend_peak);
        put(w, &d->pend_end, sizeof d->pend_end);
        put(w, d->burst_peak, sizeof d->burst_peak);
        put(w, d->burst_end, sizeof d->burst_end);
    }
    if (d->cfg.shift_len > 0 && C >= 2) {
        put(w, &d->sh_n, sizeof d->sh_n);
        put(w, d->sh_sum, sizeof(double) * C);
        put(w, d->sh_sumsq, sizeof(double) * C);
        put(w, d->sh_lsum, sizeof(double) * C);
        put(w, &d->sh_post, sizeof d->sh_post);
        put(w, &d->sh_ch1, sizeof d->sh_ch1);
        if (d->cfg.shift_plain) {
            put(w, d->sh_psum, sizeof(double) * C);
            put(w, d->sh_psumsq, sizeof(double) * C);
        }
        if (d->cfg.settle_release) {
            put(w, &d->st_ch1, sizeof d->st_ch1);
            put(w, &d->sh_lead, sizeof d->sh_lead);
            put(w, &d->st_post, sizeof d->st_post);
            put(w, &d->sh_far, sizeof d->sh_far);
        }
    }
    if (d->cfg.season_opinion && d->cfg.season_bins > 0) {
        put(w, &d->n_op, sizeof d->n_op);
        put(w, &d->o_n, sizeof d->o_n);
        if (d->cfg.season_accum > 0.0f) {
            put(w, &d->o_age, sizeof d->o_age);
            put(w, &d->o_an, sizeof d->o_an);
        }
        for (int i = 0; i < d->n_op; i++) {
            const struct detector__opinion *o = &d->o_rec[i];
            put(w, &o->ch, sizeof o->ch);
            put(w, &o->period, sizeof o->period);
            put(w, &o->mean, sizeof o->mean);
            put(w, &o->sd, sizeof o->sd);
            put(w, &o->ew, sizeof o->ew);
            put(w, &o->sum, sizeof o->sum);
            put(w, &o->sumsq, sizeof o->sumsq);
            for (size_t k = 0; d->cfg.season_accum > 0.0f && k < N_ACC_FIELDS; k++)
                put(w, (const char *)o + ACC_FIELDS[k].off, ACC_FIELDS[k].len);
        }
        if (d->n_op > 0)
            put(w, d->o_prof, sizeof(float) * (size_t)d->n_op * (size_t)d->cfg.season_bins);
    }
    if (detector__keeps_record(&d->cfg)) {
        put(w, &d->rec_max, sizeof d->rec_max);
        put(w, &d->rec_n, sizeof d->rec_n);
    }
    if (d->cfg.warn_run > 0) {
        put(w, &d->run_n, sizeof d->run_n);
        put(w, &d->run_sum, sizeof d->run_sum);
        if (d->cfg.warn_region) /* format 22 and later */
            put(w, &d->run_out, sizeof d->run_out);
    }
    if (d->cfg.record_quiet)
        put(w, &d->quiet_n, sizeof d->quiet_n);
    if (d->cfg.onset_rate)
        put(w, &d->ons_rate, sizeof d->ons_rate);
    if (d->cfg.range_quiet > 0.0f) {
        put(w, &d->vr_n, sizeof d->vr_n);
        put(w, d->vr_lo, sizeof(float) * C);
        put(w, d->vr_hi, sizeof(float) * C);
    }
    if (d->cfg.onset_rhythm) {
        put(w, &d->rh_n, sizeof d->rh_n);
        put(w, d->rh_at, sizeof d->rh_at);
        put(w, d->rh_raw, sizeof d->rh_raw);
        if (d->cfg.rhythm_time)
            put(w, d->rh_ts, sizeof d->rh_ts);
    }
    if (d->cfg.mean_far > 0.0f)
        put(w, &d->mf_on, sizeof d->mf_on);
    if (d->cfg.opinion_open)
        put(w, &d->opin_run, sizeof d->opin_run);
    if (d->cfg.accept_grow > 0.0f) { /* format 43 */
#define PUT_FIELD(f) put(w, &(f), sizeof(f));
        GROW_FIELDS(PUT_FIELD)
#undef PUT_FIELD
    }
    if (d->cfg.hold_echo > 0.0f || d->cfg.hold_decay > 0.0f) { /* format 44 */
#define PUT_FIELD(f) put(w, &(f), sizeof(f));
        ECHO_FIELDS(PUT_FIELD)
#undef PUT_FIELD
    }
    if (d->cfg.hold_decay > 0.0f) { /* format 46 */
#define PUT_FIELD(f) put(w, &(f), sizeof(f));
        DECAY_FIELDS(PUT_FIELD)
#undef PUT_FIELD
    }
    put(w, d->prev_contrib, sizeof(float) * C);
    put(w, d->ring, sizeof(float) * (size_t)d->cfg.err_window);
    put(w, d->shortbuf, sizeof(float) * (size_t)d->cfg.err_short);
    const int outside = lstm_outside(d, shared);
    uint64_t mlen = outside ? LSTM_OUTSIDE : d->lstm ? model_checkpoint_size(d->lstm) : 0;
    put(w, &mlen, 8);
    if (outside) { /* which model it was (format 7): the loader refuses another */
        uint32_t fp = model_fingerprint(d->lstm);
        put(w, &fp, 4);
    }
    if (mlen > 0 && !outside) {
        if (w->p && w->len + mlen <= w->cap) {
            size_t got = 0;
            if (model_checkpoint_save(d->lstm, w->p + w->len, (size_t)mlen, &got) < 0 ||
                got != mlen)
                w->cap = 0; /* cannot happen: sizes agree; make the caller see ERR_RANGE */
        }
        w->len += (size_t)mlen;
    }
    uint32_t crc = w->p && w->len <= w->cap ? model__crc32(0, w->p, w->len) : 0;
    put(w, &crc, 4);
}

static size_t save_size(const detector_t *d, int shared)
{
    struct wr w = {NULL, 0, 0};
    write_all(d, &w, shared);
    return w.len;
}

static int save(const detector_t *d, void *buf, size_t cap, size_t *len, int shared)
{
    if (!d || !buf || !len)
        return ERR_INVAL;
    struct wr w = {buf, 0, cap};
    write_all(d, &w, shared);
    if (w.len > w.cap)
        return ERR_RANGE;
    *len = w.len;
    return 0;
}

size_t detector_save_size(const detector_t *d)
{
    return save_size(d, 0);
}

int detector_save(const detector_t *d, void *buf, size_t cap, size_t *len)
{
    return save(d, buf, cap, len, 0);
}

size_t detector_save_shared_size(const detector_t *d)
{
    return save_size(d, 1);
}

int detector_save_shared(const detector_t *d, void *buf, size_t cap, size_t *len)
{
    return save(d, buf, cap, len, 1);
}

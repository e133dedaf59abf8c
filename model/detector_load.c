/* model/detector_load.c: loading a saved detector back from its bytes (detector_io.c writes
 * them; the format is detector_format.h's), for a restart. Every older format still loads,
 * with the settings it ran with.
 *
 * Invariants: the loader checks the CRC first, then every index and count against its bounds,
 * and never reads outside the buffer; a blob too short for the sizes it claims is refused
 * before anything is allocated for them. Threading: load creates a new detector (any thread). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "detector_format.h"
#include "err.h"
#include "internal.h"

/* A kept onset's timestamp loads only within this of the epoch (ms, about 146 million years), as
 * step_begin clamps onset_rhythm's clock: gaps between two of them then cannot overflow int64
 * (2^62 - 1 on both sides: at most 2^63 - 2). */
#define RH_TS_MAX (((int64_t)1 << 62) - 1)
/* The count of readings seen loads only up to this (2^62: 146,000 years at a million readings a
 * second): a reading count (a kept onset's, say) then casts to int64 and a gap between two of
 * them cannot overflow. */
#define SEEN_MAX ((uint64_t)1 << 62)
/* Format 2's config ended at confirm, padded to the struct's alignment; format 3's warm_epochs
 * fills that padding, so both have the same size: the config up to tail_plain, the field format
 * 4 added. Format 4's config is the whole struct. */
#define CFG_V3_SIZE offsetof(struct detector_config, tail_plain)
/* Format 4's config: up to open_median, the field format 5 added. */
#define CFG_V4_SIZE offsetof(struct detector_config, open_median)
/* Format 5's config: up to extrap_weight, the field format 6 added, with the struct's tail
 * padding (extrap_weight may have taken it, as warm_epochs did in format 3). */
#define CFG_V5_SIZE                                                                                \
    ((offsetof(struct detector_config, extrap_weight) + _Alignof(struct detector_config) - 1) /    \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 6's config: up to serving_f16, the first field format 7 added, with the tail padding. */
#define CFG_V6_SIZE                                                                                \
    ((offsetof(struct detector_config, serving_f16) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 7's config: up to op_point, the field format 8 added, with the tail padding. */
#define CFG_V7_SIZE                                                                                \
    ((offsetof(struct detector_config, op_point) + _Alignof(struct detector_config) - 1) /         \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 8's config: up to model_kind, the field format 9 added, with the tail padding. */
#define CFG_V8_SIZE                                                                                \
    ((offsetof(struct detector_config, model_kind) + _Alignof(struct detector_config) - 1) /       \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 9's config: up to season_bins, the field format 10 added, with the tail padding. */
#define CFG_V9_SIZE                                                                                \
    ((offsetof(struct detector_config, season_bins) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 10's config: up to burst_memory, the first field format 11 added, with the tail
 * padding. */
#define CFG_V10_SIZE                                                                               \
    ((offsetof(struct detector_config, burst_memory) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 11's config: up to season_opinion, the field format 12 added, with the tail padding. */
#define CFG_V11_SIZE                                                                               \
    ((offsetof(struct detector_config, season_opinion) + _Alignof(struct detector_config) - 1) /   \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 12's config: up to shift_plain, the field format 13 added, with the tail padding. */
#define CFG_V12_SIZE                                                                               \
    ((offsetof(struct detector_config, shift_plain) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 13's config: up to shift_release, the field format 14 added, with the tail padding. */
#define CFG_V13_SIZE                                                                               \
    ((offsetof(struct detector_config, shift_release) + _Alignof(struct detector_config) - 1) /    \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 14's config: up to onset_record, the field format 15 added, with the tail padding. */
#define CFG_V14_SIZE                                                                               \
    ((offsetof(struct detector_config, onset_record) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 15's config: up to settle_release, the field format 16 added, with the tail padding. */
#define CFG_V15_SIZE                                                                               \
    ((offsetof(struct detector_config, settle_release) + _Alignof(struct detector_config) - 1) /   \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 16's config: up to season_accum, the field format 17 added, with the tail padding. */
#define CFG_V16_SIZE                                                                               \
    ((offsetof(struct detector_config, season_accum) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 17's config: up to record_open, the field format 18 added, with the tail padding. */
#define CFG_V17_SIZE                                                                               \
    ((offsetof(struct detector_config, record_open) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 18's config: up to score_tails, the field format 19 added, with the tail padding. */
#define CFG_V18_SIZE                                                                               \
    ((offsetof(struct detector_config, score_tails) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 19's config: up to warn_run, the field format 20 added, with the tail padding. */
#define CFG_V19_SIZE                                                                               \
    ((offsetof(struct detector_config, warn_run) + _Alignof(struct detector_config) - 1) /         \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 20's config: up to onset_quiet, the field format 21 added, with the tail padding. */
#define CFG_V20_SIZE                                                                               \
    ((offsetof(struct detector_config, onset_quiet) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 21's config: up to warn_region, the field format 22 added, with the tail padding. */
#define CFG_V21_SIZE                                                                               \
    ((offsetof(struct detector_config, warn_region) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Formats 22 and 23's config (23 added no field): up to record_quiet, the field format 24 added,
 * with the tail padding. */
#define CFG_V23_SIZE                                                                               \
    ((offsetof(struct detector_config, record_quiet) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 24's config: up to onset_rate, the field format 25 added, with the tail padding. */
#define CFG_V24_SIZE                                                                               \
    ((offsetof(struct detector_config, onset_rate) + _Alignof(struct detector_config) - 1) /       \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 26's config: up to shift_winsor, the field format 27 added, with the tail padding. */
#define CFG_V26_SIZE                                                                               \
    ((offsetof(struct detector_config, shift_winsor) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 27's config: up to range_quiet, the field format 28 added, with the tail padding. */
#define CFG_V27_SIZE                                                                               \
    ((offsetof(struct detector_config, range_quiet) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 28's config: up to offset_release, the field format 29 added, with the tail padding. */
#define CFG_V28_SIZE                                                                               \
    ((offsetof(struct detector_config, offset_release) + _Alignof(struct detector_config) - 1) /   \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 29's config: up to opinion_open, the field format 30 added, with the tail padding. */
#define CFG_V29_SIZE                                                                               \
    ((offsetof(struct detector_config, opinion_open) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 30's config: up to hold_recent, the field format 31 added, with the tail padding. */
#define CFG_V30_SIZE                                                                               \
    ((offsetof(struct detector_config, hold_recent) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 31's config: up to record_open_one, the field format 32 added, with the tail padding. */
#define CFG_V31_SIZE                                                                               \
    ((offsetof(struct detector_config, record_open_one) + _Alignof(struct detector_config) - 1) /  \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 32's config: up to onset_rhythm, the field format 33 added, with the tail padding. */
#define CFG_V32_SIZE                                                                               \
    ((offsetof(struct detector_config, onset_rhythm) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 33's config: up to range_far, the field format 34 added, with the tail padding. */
#define CFG_V33_SIZE                                                                               \
    ((offsetof(struct detector_config, range_far) + _Alignof(struct detector_config) - 1) /        \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 35's config: up to mean_far, the field format 36 added, with the tail padding. */
#define CFG_V35_SIZE                                                                               \
    ((offsetof(struct detector_config, mean_far) + _Alignof(struct detector_config) - 1) /         \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 36's config: up to rhythm_time, the field format 37 added, with the tail padding. */
#define CFG_V36_SIZE                                                                               \
    ((offsetof(struct detector_config, rhythm_time) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 37's config: up to onset_now, the field format 38 added, with the tail padding. */
#define CFG_V37_SIZE                                                                               \
    ((offsetof(struct detector_config, onset_now) + _Alignof(struct detector_config) - 1) /        \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 38's config: up to onset_tie, the field format 39 added, with the tail padding. */
#define CFG_V38_SIZE                                                                               \
    ((offsetof(struct detector_config, onset_tie) + _Alignof(struct detector_config) - 1) /        \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 39's config: up to avg_epochs, the field format 40 added, with the tail padding. */
#define CFG_V39_SIZE                                                                               \
    ((offsetof(struct detector_config, avg_epochs) + _Alignof(struct detector_config) - 1) /       \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 40's config: up to lstm_min_rows, the field format 41 added, with the tail padding. */
#define CFG_V40_SIZE                                                                               \
    ((offsetof(struct detector_config, lstm_min_rows) + _Alignof(struct detector_config) - 1) /    \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 41's config: up to offset_trend, the field format 42 added, with the tail padding. */
#define CFG_V41_SIZE                                                                               \
    ((offsetof(struct detector_config, offset_trend) + _Alignof(struct detector_config) - 1) /     \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 42's config: up to accept_grow, the field format 43 added, with the tail padding. */
#define CFG_V42_SIZE                                                                               \
    ((offsetof(struct detector_config, accept_grow) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 43's config: up to hold_echo, the field format 44 added, with the tail padding. */
#define CFG_V43_SIZE                                                                               \
    ((offsetof(struct detector_config, hold_echo) + _Alignof(struct detector_config) - 1) /        \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 44's config: up to burst_wide, the field format 45 added, with the tail padding. */
#define CFG_V44_SIZE                                                                               \
    ((offsetof(struct detector_config, burst_wide) + _Alignof(struct detector_config) - 1) /       \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 45's config: up to hold_decay, the field format 46 added, with the tail padding. */
#define CFG_V45_SIZE                                                                               \
    ((offsetof(struct detector_config, hold_decay) + _Alignof(struct detector_config) - 1) /       \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 46's config: up to spread_mean, the field format 47 added, with the tail padding. */
#define CFG_V46_SIZE                                                                               \
    ((offsetof(struct detector_config, spread_mean) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 47's config: up to trip_level, the field format 48 added, with the tail padding. */
#define CFG_V47_SIZE                                                                               \
    ((offsetof(struct detector_config, trip_level) + _Alignof(struct detector_config) - 1) /       \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 48's config: up to input, the field format 49 added, with the tail padding. */
#define CFG_V48_SIZE                                                                               \
    ((offsetof(struct detector_config, input) + _Alignof(struct detector_config) - 1) /            \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
/* Format 25's config: up to shift_confirm, the field format 26 added, with the tail padding. */
#define CFG_V25_SIZE                                                                               \
    ((offsetof(struct detector_config, shift_confirm) + _Alignof(struct detector_config) - 1) /    \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))
_Static_assert(CFG_V3_SIZE == (offsetof(struct detector_config, confirm) + sizeof(int) +
                               _Alignof(struct detector_config) - 1) /
                                  _Alignof(struct detector_config) *
                                  _Alignof(struct detector_config),
               "format 3's config must keep format 2's size");
/* Format 1's config: the current one up to retrain_seconds, the first field added after it. */
#define CFG_V1_SIZE offsetof(struct detector_config, retrain_seconds)

struct rd {
    const unsigned char *p;
    size_t len, off;
    int bad;
};

static void get(struct rd *r, void *dst, size_t n)
{
    if (r->bad || n > r->len - r->off) {
        r->bad = 1;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p + r->off, n);
    r->off += n;
}

/* Format 1's history ring (cap rows; its head and length were read into ctx_head and
 * ctx_len): the newest rows that fit become the context ring. */
static int v1_history(detector_t *d, struct rd *r, int cap)
{
    const size_t C = (size_t)d->C;
    const int head = d->ctx_head, len = d->ctx_len;
    if (cap < 1 || head < 0 || head >= cap || len < 0 || len > cap) {
        r->bad = 1;
        return 0;
    }
    float *hist = malloc(sizeof(float) * (size_t)cap * C);
    if (!hist)
        return ERR_NOMEM;
    get(r, hist, sizeof(float) * (size_t)cap * C);
    int n = len < d->ctx_cap ? len : d->ctx_cap;
    for (int k = 0; k < n; k++) {
        int row = ((head - n + k) % cap + cap) % cap;
        memcpy(d->ctx + (size_t)k * C, hist + (size_t)row * C, sizeof(float) * C);
    }
    d->ctx_len = n;
    d->ctx_head = n % d->ctx_cap;
    free(hist);
    return 0;
}

/* The largest raw score the windows may hold: the step writes log1p of a finite double (at most
 * 709.8, and some 125 with err_corr's finite weights and Z_CAP), so a loaded one past this is
 * corrupt. A long-window entry is a short-window mean: at most this plus the sums' tolerance. */
#define RAW_MAX 1000.0f
/* How far a window's running sums may be from the sums of its entries and still be kept as
 * saved (they drift from them by rounding alone, by far less; the long window's are redone
 * every err_window readings anyway). Farther, they are redone from the entries: derived
 * values, and kept as they were saved a restarted detector scores bit for bit as the live one. */
#define SUM_TOL 1e-3

/* The short and long windows as the step leaves them (fuzz_detector's scored round trip, session
 * 63): their entries within [0, RAW_MAX] (a long-window entry within +-2 RAW_MAX: a mean whose
 * sum may be off by SUM_TOL), their running sums (the short one never redone live) those of the
 * entries within SUM_TOL, else redone. A saved short sum that was NaN or huge made each scored
 * reading's short mean, pushed to the long window, NaN or infinite; an infinite raw score kept
 * as an onset's size is a state the next load refuses. Returns 0 if an entry is out of range. */
static int windows_ok(detector_t *d)
{
    double s = 0.0, ss = 0.0;
    /* A window not yet full holds entries 0 .. len - 1, the next at len (the step fills it from
     * an empty one in order; the sums and the short maximum read those): a head elsewhere let
     * the next push expose an entry never written, unchecked. */
    if ((d->short_len < d->cfg.err_short && d->short_head != d->short_len) ||
        (d->ring_len < d->cfg.err_window && d->ring_head != d->ring_len))
        return 0;
    /* The record counts readings that left a full short window (it and the window are reset
     * together): a record with the window not full let the hold read entries never written. */
    if (d->rec_n > 0 && d->short_len < d->cfg.err_short)
        return 0;
    for (int k = 0; k < d->short_len; k++) {
        if (!(d->shortbuf[k] >= 0.0f && d->shortbuf[k] <= RAW_MAX))
            return 0;
        s += d->shortbuf[k];
    }
    if (!(fabs(d->short_sum - s) <= SUM_TOL))
        d->short_sum = s;
    s = 0.0;
    for (int k = 0; k < d->ring_len; k++) {
        if (!(fabs(d->ring[k]) <= 2.0f * RAW_MAX))
            return 0;
        s += d->ring[k];
        ss += (double)d->ring[k] * d->ring[k];
    }
    if (!(fabs(d->ring_sum - s) <= SUM_TOL) || !(fabs(d->ring_sumsq - ss) <= SUM_TOL * (1.0 + ss)))
        d->ring_sum = s, d->ring_sumsq = ss;
    return 1;
}

static int load(detector_t **out, const void *buf, size_t len, const model_t *lstm)
{
    if (!out || !buf)
        return ERR_INVAL;
    const unsigned char *b = buf;
    if (len < 16)
        return ERR_CORRUPT;
    uint32_t crc;
    memcpy(&crc, b + len - 4, 4);
    if (crc != model__crc32(0, b, len - 4))
        return ERR_CORRUPT;
    struct rd r = {b, len - 4, 0, 0};
    uint32_t magic, fmt;
    int C;
    struct detector_config cfg;
    memset(&cfg, 0, sizeof cfg);
    get(&r, &magic, 4);
    get(&r, &fmt, 4);
    get(&r, &C, sizeof C);
    if (r.bad || magic != DET_MAGIC)
        return ERR_CORRUPT;
    if (fmt < 1 || fmt > DET_FORMAT)
        return ERR_INVAL;
    get(&r, &cfg,
        fmt == 1   ? CFG_V1_SIZE
        : fmt < 4  ? CFG_V3_SIZE
        : fmt < 5  ? CFG_V4_SIZE
        : fmt < 6  ? CFG_V5_SIZE
        : fmt < 7  ? CFG_V6_SIZE
        : fmt < 8  ? CFG_V7_SIZE
        : fmt < 9  ? CFG_V8_SIZE
        : fmt < 10 ? CFG_V9_SIZE
        : fmt < 11 ? CFG_V10_SIZE
        : fmt < 12 ? CFG_V11_SIZE
        : fmt < 13 ? CFG_V12_SIZE
        : fmt < 14 ? CFG_V13_SIZE
        : fmt < 15 ? CFG_V14_SIZE
        : fmt < 16 ? CFG_V15_SIZE
        : fmt < 17 ? CFG_V16_SIZE
        : fmt < 18 ? CFG_V17_SIZE
        : fmt < 19 ? CFG_V18_SIZE
        : fmt < 20 ? CFG_V19_SIZE
        : fmt < 21 ? CFG_V20_SIZE
        : fmt < 22 ? CFG_V21_SIZE
        : fmt < 24 ? CFG_V23_SIZE
        : fmt < 25 ? CFG_V24_SIZE
        : fmt < 26 ? CFG_V25_SIZE
        : fmt < 27 ? CFG_V26_SIZE
        : fmt < 28 ? CFG_V27_SIZE
        : fmt < 29 ? CFG_V28_SIZE
        : fmt < 30 ? CFG_V29_SIZE
        : fmt < 31 ? CFG_V30_SIZE
        : fmt < 32 ? CFG_V31_SIZE
        : fmt < 33 ? CFG_V32_SIZE
        : fmt < 34 ? CFG_V33_SIZE
        : fmt < 36 ? CFG_V35_SIZE
        : fmt < 37 ? CFG_V36_SIZE
        : fmt < 38 ? CFG_V37_SIZE
        : fmt < 39 ? CFG_V38_SIZE
        : fmt < 40 ? CFG_V39_SIZE
        : fmt < 41 ? CFG_V40_SIZE
        : fmt < 42 ? CFG_V41_SIZE
        : fmt < 43 ? CFG_V42_SIZE
        : fmt < 44 ? CFG_V43_SIZE
        : fmt < 45 ? CFG_V44_SIZE
        : fmt < 46 ? CFG_V45_SIZE
        : fmt < 47 ? CFG_V46_SIZE
        : fmt < 48 ? CFG_V47_SIZE
        : fmt < 49 ? CFG_V48_SIZE
                   : sizeof cfg);
    if (r.bad)
        return ERR_CORRUPT;
    if (fmt == 1)
        cfg.confirm = 1; /* the rest added since format 1 stays 0 (memset): as it ran */
    if (fmt < 3)
        cfg.warm_epochs = 0;
    if (fmt < 4)
        cfg.tail_plain = 1; /* format 3 and before: the Gaussian tail */
    if (fmt < 5)
        cfg.open_median = 0; /* format 4 and before: no median test at an opening */
    if (fmt < 6)
        cfg.extrap_weight = 0.0f; /* format 5 and before: no extrapolation term */
    if (fmt < 7) {
        cfg.serving_f16 = 0; /* format 6 and before: float32 (its padding bytes undefined) */
        cfg.err_corr = 0;    /* and channels' errors summed as independent */
    }
    if (fmt < 8)
        cfg.op_point = 0; /* format 7 and before: no operating-point likelihood */
    if (fmt < 9)
        cfg.model_kind = DET_MODEL_AUTO; /* format 8 and before: keep-or-swap by validation */
    if (fmt < 10)
        cfg.season_bins = 0; /* format 9 and before: no seasonal predictor */
    if (fmt < 11) {          /* format 10 and before: no memory of bursts, no step test */
        cfg.burst_memory = 0;
        cfg.shift_len = 0;
    }
    if (fmt < 12)
        cfg.season_opinion = 0; /* format 11 and before: no second opinion */
    if (fmt < 13)               /* format 12 and before: the lines' jump on every channel */
        cfg.shift_plain = 0;
    if (fmt < 14)
        cfg.shift_release = 0; /* format 13 and before: the hold waits for Q's mean */
    if (fmt < 15)
        cfg.onset_record = 0.0f; /* format 14 and before: onsets reported at their likelihood */
    if (fmt < 16)
        cfg.settle_release = 0; /* format 15 and before: the other terms hold the episode on */
    if (fmt < 17)
        cfg.season_accum = 0.0f; /* format 16 and before: no accumulated departure */
    if (fmt < 18)
        cfg.record_open = 0.0f; /* format 17 and before: every opening at alarm_level */
    if (fmt < 19)
        cfg.score_tails = 0; /* format 18 and before: the error's tail in the score as it is */
    if (fmt < 20)
        cfg.warn_run = 0; /* format 19 and before: a warning never opens by lasting */
    if (fmt < 21)
        cfg.onset_quiet = 0.0f; /* format 20 and before: onsets ranked by l alone below g */
    if (fmt < 22)
        cfg.warn_region = 0; /* format 21 and before: a run opens wherever the device is */
    if (fmt < 24)
        cfg.record_quiet = 0; /* format 23 and before: g alone, the quiet since the training */
    if (fmt < 25)
        cfg.onset_rate = 0; /* format 24 and before: a record not weighed by the onsets' rate */
    if (fmt < 26)
        cfg.shift_confirm = 0; /* format 25 and before: a step's opening confirmed as any */
    if (fmt < 27)
        cfg.shift_winsor = 0.0f; /* format 26 and before: every step estimate entered as it was */
    if (fmt < 28)
        cfg.range_quiet = 0.0f; /* format 27 and before: the quiet's credit wherever it went */
    if (fmt < 29)
        cfg.offset_release = 0; /* format 28 and before: the error holds a steady offset */
    if (fmt < 30)
        cfg.opinion_open = 0; /* format 29 and before: the second opinions open nothing */
    if (fmt < 31)
        cfg.hold_recent = 0; /* format 30 and before: held on the median alone */
    if (fmt < 32)
        cfg.record_open_one = 0.0f; /* format 31 and before: record_open on every device */
    if (fmt < 33)
        cfg.onset_rhythm = 0; /* format 32 and before: every onset ranked, routine or not */
    if (fmt < 34) {
        cfg.range_far = 0.0f; /* format 33 and before: a reading's value news only to the model */
        cfg.range_open = 0;
    }
    if (fmt < 36)
        cfg.mean_far = 0.0f; /* format 35 and before: a level's mean news only to the model */
    if (fmt < 37)
        cfg.rhythm_time = 0; /* format 36 and before: a schedule kept in reading counts */
    if (fmt < 38)
        cfg.onset_now = 0; /* format 37 and before: l credited whatever the newest reading */
    if (fmt < 39)
        cfg.onset_tie = 0; /* format 38 and before: a tie with the record ranked as any onset */
    if (fmt < 40)
        cfg.avg_epochs = 0.0f; /* format 39 and before: the last step's weights serve */
    if (fmt < 41)
        cfg.lstm_min_rows = 0; /* format 40 and before: an LSTM trained at every training */
    if (fmt < 42) {
        cfg.offset_trend = 0.0f; /* format 41 and before: a drift's steady error released */
        cfg.record_young = 0;    /* and no record counted as one the error is within */
    }
    if (fmt < 43)
        cfg.accept_grow = 0.0f; /* format 42 and before: a growing fault accepted at 500 */
    if (fmt < 44)
        cfg.hold_echo = 0.0f; /* format 43 and before: the error alone holds an episode */
    if (fmt < 45)
        cfg.burst_wide = 0; /* format 44 and before: a burst is shorter than err_short readings */
    if (fmt < 46) {
        cfg.hold_decay = 0.0f; /* format 45 and before: a decay held until the error let go */
        cfg.decay_run = 0;
    }
    if (fmt < 47)
        cfg.spread_mean = 0; /* format 46 and before: a level with no spread waits */
    if (fmt < 48)
        cfg.trip_level = 0.0f; /* format 47 and before: no reading is an alarm alone */
    if (fmt < 49)
        memset(cfg.input, 0, sizeof cfg.input); /* format 48 and before: every channel scored */
    /* The arrays sized by C and the configuration must be in the blob before anything is
     * allocated for them: a short blob claiming a huge history or window is corrupt, not a
     * reason to allocate gigabytes (found by tests/fuzz/fuzz_detector). A lower bound: the
     * exact layout is checked as it is read. */
    if (C < 1 || C > DETECTOR_MAX_CHANNELS || cfg.train.window < 1 || cfg.train.window > 100000 ||
        cfg.history < 0 || cfg.history > 10000000 || cfg.err_window < 0 ||
        cfg.err_window > 10000000 || cfg.err_short < 0 || cfg.err_short > 10000000)
        return ERR_CORRUPT;
    /* The model's state too (2 x its length, up to 2 x 12,300 floats at hidden 2048 x 3
     * layers), from the shape alone: session 56; before, a blob claiming a big shape was read
     * only after a model of it was made (detector_create). */
    struct model_config mc;
    detector__model_config(&mc, &cfg, C);
    if (model__config_check(&mc) < 0)
        return ERR_CORRUPT;
    const uint64_t C64 = (uint64_t)C;
    const uint64_t rows = fmt == 1 ? (uint64_t)cfg.history : 2 * (uint64_t)cfg.train.window;
    uint64_t need = 4 * (rows * C64 + C64 * C64 + 9 * C64 + (uint64_t)cfg.err_window +
                         (uint64_t)cfg.err_short + 2 * (uint64_t)model_config_state_len(&mc)) +
                    C64 + 8;
    if (need > r.len - r.off)
        return ERR_CORRUPT;
    detector_t *d;
    int rc = detector_create(&d, &cfg, C);
    if (rc == ERR_INVAL)
        return ERR_CORRUPT;
    if (rc < 0)
        return rc;
    const size_t Cz = (size_t)C;
    if (fmt >= 23)
        get(&r, &d->ep_accepted, sizeof d->ep_accepted);
    if (fmt >= 48) {
        get(&r, &d->tripped, sizeof d->tripped); /* format 47 and before: no trip, 0 */
        get(&r, &d->ep_trip, sizeof d->ep_trip);
    }
#define GET_FIELD(f) get(&r, &(f), sizeof(f));
    if (fmt == 1) {
        FIELDS_V1(GET_FIELD)
        rc = v1_history(d, &r, cfg.history);
        if (rc < 0) {
            detector_destroy(d);
            return rc;
        }
    } else {
        if (fmt < 4) {
            FIELDS_V3(GET_FIELD)
            d->dred = d->since_red == 0; /* one likelihood then: the decision's was the score's */
        } else {
            FIELDS(GET_FIELD)
        }
        get(&r, d->ctx, sizeof(float) * (size_t)d->ctx_cap * Cz);
    }
#undef GET_FIELD
    if (fmt < 23) /* unsaved: accepted only if it had not yet been learnt (see DET_FORMAT) */
        d->ep_accepted = d->det_state == DET_ANOMALY && d->in_anomaly >= cfg.accept_after;
    get(&r, d->last, sizeof(float) * Cz);
    get(&r, d->lin_ab, sizeof(float) * Cz * Cz);
    get(&r, d->lin_b, sizeof(float) * Cz);
    get(&r, d->persist, Cz);
    get(&r, d->lo, sizeof(float) * Cz);
    get(&r, d->hi, sizeof(float) * Cz);
    get(&r, d->pred, sizeof(float) * Cz);
    get(&r, d->state, 2 * sizeof(float) * d->state_len);
    get(&r, d->err_scale, sizeof(float) * Cz);
    get(&r, d->resid_rms, sizeof(float) * Cz);
    get(&r, d->lmean, sizeof(float) * Cz);
    get(&r, d->lscale, sizeof(float) * Cz);
    if (fmt >= 7)
        get(&r, d->rinv, sizeof(float) * Cz * Cz);
    if (cfg.op_point && C >= 2) { /* format 8 and later, as the config says */
        get(&r, &d->op_n, sizeof d->op_n);
        get(&r, d->op_ew, sizeof(double) * Cz);
        get(&r, d->op_sum, sizeof(double) * Cz);
        get(&r, d->op_sumsq, sizeof(double) * Cz);
    }
    if (cfg.season_bins > 0) { /* format 10 and later, as the config says */
        get(&r, d->season, Cz);
        get(&r, d->s_period, sizeof(int) * Cz);
        get(&r, d->s_a, sizeof(float) * Cz);
        get(&r, d->s_phi, sizeof(float) * Cz);
        /* The profiles of the channels that use one: allocated only once the bytes are seen
         * to be there (season[c] > 1 is refused below). */
        const size_t np = detector__season_count(d->season, C);
        const size_t pb = sizeof(float) * np * (size_t)cfg.season_bins;
        if (np > 0 && !r.bad && pb <= r.len - r.off) {
            d->s_prof = malloc(pb);
            if (!d->s_prof) {
                rc = ERR_NOMEM;
                goto fail;
            }
            get(&r, d->s_prof, pb);
        } else if (np > 0) {
            r.bad = 1;
        }
    }
    if (cfg.burst_memory) { /* format 11 and later, as the config says */
        get(&r, &d->burst_n, sizeof d->burst_n);
        get(&r, &d->burst_head, sizeof d->burst_head);
        get(&r, &d->burst_pend, sizeof d->burst_pend);
        get(&r, &d->ep_peak, sizeof d->ep_peak);
        get(&r, &d->pend_peak, sizeof d->pend_peak);
        get(&r, &d->pend_end, sizeof d->pend_end);
        get(&r, d->burst_peak, sizeof d->burst_peak);
        get(&r, d->burst_end, sizeof d->burst_end);
    }
    if (cfg.shift_len > 0 && C >= 2) { /* format 11 and later, as the config says */
        get(&r, &d->sh_n, sizeof d->sh_n);
        get(&r, d->sh_sum, sizeof(double) * Cz);
        get(&r, d->sh_sumsq, sizeof(double) * Cz);
        get(&r, d->sh_lsum, sizeof(double) * Cz);
        get(&r, &d->sh_post, sizeof d->sh_post);
        get(&r, &d->sh_ch1, sizeof d->sh_ch1);
        if (cfg.shift_plain) { /* format 13 and later, as the config says */
            get(&r, d->sh_psum, sizeof(double) * Cz);
            get(&r, d->sh_psumsq, sizeof(double) * Cz);
        }
        if (cfg.settle_release) { /* format 16 and later, as the config says */
            get(&r, &d->st_ch1, sizeof d->st_ch1);
            get(&r, &d->sh_lead, sizeof d->sh_lead);
            get(&r, &d->st_post, sizeof d->st_post);
            get(&r, &d->sh_far, sizeof d->sh_far);
        }
    }
    if (cfg.season_opinion && cfg.season_bins > 0) { /* format 12 and later, as the config says */
        int n = 0;
        get(&r, &n, sizeof n);
        get(&r, &d->o_n, sizeof d->o_n);
        const int acc = cfg.season_accum > 0.0f; /* format 17 and later, as the config says */
        if (acc) {
            get(&r, &d->o_age, sizeof d->o_age);
            get(&r, &d->o_an, sizeof d->o_an);
        }
        /* Records and profiles: allocated only once the bytes are seen to be there. */
        const size_t rec =
            2 * sizeof(int) + 2 * sizeof(float) + 3 * sizeof(double) + (acc ? ACC_BYTES : 0);
        const size_t SB = (size_t)cfg.season_bins;
        if (!r.bad && n >= 1 && n <= C && (rec + sizeof(float) * SB) * (size_t)n <= r.len - r.off) {
            d->o_rec = calloc(1, sizeof *d->o_rec * (size_t)n + sizeof(float) * SB * (size_t)n);
            if (!d->o_rec) {
                rc = ERR_NOMEM;
                goto fail;
            }
            d->n_op = n;
            d->o_prof = (float *)(d->o_rec + n);
            for (int i = 0; i < n; i++) {
                struct detector__opinion *o = &d->o_rec[i];
                get(&r, &o->ch, sizeof o->ch);
                get(&r, &o->period, sizeof o->period);
                get(&r, &o->mean, sizeof o->mean);
                get(&r, &o->sd, sizeof o->sd);
                get(&r, &o->ew, sizeof o->ew);
                get(&r, &o->sum, sizeof o->sum);
                get(&r, &o->sumsq, sizeof o->sumsq);
                for (size_t k = 0; acc && k < N_ACC_FIELDS; k++)
                    get(&r, (char *)o + ACC_FIELDS[k].off, ACC_FIELDS[k].len);
            }
            get(&r, d->o_prof, sizeof(float) * SB * (size_t)n);
        } else if (n != 0) {
            r.bad = 1;
        }
    }
    if (detector__keeps_record(&cfg)) { /* format 15 and later */
        get(&r, &d->rec_max, sizeof d->rec_max);
        get(&r, &d->rec_n, sizeof d->rec_n);
    }
    if (cfg.warn_run > 0) { /* format 20 and later */
        get(&r, &d->run_n, sizeof d->run_n);
        get(&r, &d->run_sum, sizeof d->run_sum);
        if (cfg.warn_region) /* format 22 and later */
            get(&r, &d->run_out, sizeof d->run_out);
    }
    if (cfg.record_quiet) /* format 24 and later */
        get(&r, &d->quiet_n, sizeof d->quiet_n);
    if (cfg.onset_rate) /* format 25 and later */
        get(&r, &d->ons_rate, sizeof d->ons_rate);
    if (cfg.range_quiet > 0.0f) { /* format 28 and later */
        get(&r, &d->vr_n, sizeof d->vr_n);
        get(&r, d->vr_lo, sizeof(float) * Cz);
        get(&r, d->vr_hi, sizeof(float) * Cz);
    }
    if (cfg.onset_rhythm) { /* format 33 and later */
        get(&r, &d->rh_n, sizeof d->rh_n);
        get(&r, d->rh_at, sizeof d->rh_at);
        get(&r, d->rh_raw, sizeof d->rh_raw);
        if (cfg.rhythm_time) /* format 37 and later */
            get(&r, d->rh_ts, sizeof d->rh_ts);
    }
    if (cfg.mean_far > 0.0f) /* format 36 and later */
        get(&r, &d->mf_on, sizeof d->mf_on);
    if (cfg.opinion_open && fmt >= 35)
        get(&r, &d->opin_run, sizeof d->opin_run);
    if (cfg.accept_grow > 0.0f) { /* format 43 and later */
#define GET_FIELD(f) get(&r, &(f), sizeof(f));
        GROW_FIELDS(GET_FIELD)
#undef GET_FIELD
    }
    if (cfg.hold_echo > 0.0f || cfg.hold_decay > 0.0f) { /* format 44 and later */
#define GET_FIELD(f) get(&r, &(f), sizeof(f));
        ECHO_FIELDS(GET_FIELD)
#undef GET_FIELD
    }
    if (cfg.hold_decay > 0.0f && fmt < 47) { /* format 46: the readings since the peak */
        int32_t since;
        get(&r, &d->dk_peak, sizeof d->dk_peak);
        get(&r, &since, sizeof since); /* read nothing: dropped */
        get(&r, &d->dk_left, sizeof d->dk_left);
    } else if (cfg.hold_decay > 0.0f) { /* format 47 and later */
#define GET_FIELD(f) get(&r, &(f), sizeof(f));
        DECAY_FIELDS(GET_FIELD)
#undef GET_FIELD
    }
    if (fmt != 1)
        get(&r, d->prev_contrib, sizeof(float) * Cz);
    get(&r, d->ring, sizeof(float) * (size_t)cfg.err_window);
    get(&r, d->shortbuf, sizeof(float) * (size_t)cfg.err_short);
    uint64_t mlen = 0;
    get(&r, &mlen, 8);
    rc = ERR_CORRUPT;
    const int outside = mlen == LSTM_OUTSIDE && fmt >= 5;
    uint32_t fp = 0;
    if (outside && fmt >= 7)
        get(&r, &fp, 4);
    if (r.bad || (!outside && mlen > r.len - r.off) || (outside && lstm == NULL) ||
        (outside && fmt >= 7 && fp != model_fingerprint(lstm)))
        goto fail;
    if (outside) {
        d->lstm = model_share(lstm); /* read-only, as the detectors that share it serve it */
    } else if (mlen > 0) {
        int mrc = model_checkpoint_load(&d->lstm, r.p + r.off, (size_t)mlen);
        if (mrc < 0) {
            rc = mrc == ERR_NOMEM ? ERR_NOMEM : ERR_CORRUPT;
            goto fail;
        }
        r.off += (size_t)mlen;
    }
    if (d->lstm) {
        struct model_config a, bc;
        model_get_config(d->lstm, &a);
        detector__model_config(&bc, &d->cfg, d->C);
        if (a.n_inputs != bc.n_inputs || a.n_outputs != bc.n_outputs || a.n_layers != bc.n_layers ||
            a.n_hidden != bc.n_hidden)
            goto fail;
    }
    if (r.off != r.len)
        goto fail;
    /* Bounds of every index and count, and the kind's requirements. */
    if (d->n_seen > SEEN_MAX || d->ctx_head < 0 || d->ctx_head >= d->ctx_cap || d->ctx_len < 0 ||
        d->ctx_len > d->ctx_cap || d->ring_head < 0 || d->ring_head >= cfg.err_window ||
        d->ring_len < 0 || d->ring_len > cfg.err_window || d->ring_since_resum < 0 ||
        d->ring_since_resum > cfg.err_window || d->short_head < 0 ||
        d->short_head >= cfg.err_short || d->short_len < 0 || d->short_len > cfg.err_short ||
        (unsigned)d->kind > DET_KIND_LSTM || (unsigned)d->det_state > DET_ANOMALY ||
        (unsigned)d->ep_accepted > (d->det_state == DET_ANOMALY) ||
        (unsigned)d->tripped > (d->det_state == DET_NORMAL || d->det_state == DET_WARNING) ||
        (unsigned)d->ep_trip > (d->det_state == DET_ANOMALY) ||
        (d->kind == DET_KIND_LSTM && !d->lstm) || (outside && d->kind != DET_KIND_LSTM) ||
        d->next_version < d->version || d->lstm_window < 1 ||
        /* The episode's counts index the short window (detector__recent_median's k = in_anomaly +
         * 1) and grow by one a reading: a negative or near-INT_MAX count is corrupt (found by
         * tests/fuzz/fuzz_detector once it scored what loaded). */
        d->in_anomaly < 0 || d->in_anomaly > (1 << 30) || d->since_red < 0 ||
        d->since_red > (1 << 30) || d->below < 0 || d->below > (1 << 30) ||
        (cfg.op_point && C >= 2 && !(d->op_n >= -1.0 && d->op_n <= 1e18)) ||
        (cfg.burst_memory &&
         (d->burst_n < 0 || d->burst_n > DETECTOR_MAX_BURSTS || d->burst_head < 0 ||
          d->burst_head >= DETECTOR_MAX_BURSTS || d->burst_pend < 0 || d->burst_pend > 1)) ||
        (cfg.shift_len > 0 && C >= 2 &&
         (!(d->sh_n >= 0.0 && d->sh_n <= 1e18) || d->sh_ch1 < 0 || d->sh_ch1 > C || d->st_ch1 < 0 ||
          d->st_ch1 > C || d->sh_lead < 0 || d->sh_lead > 1)) ||
        (detector__keeps_record(&cfg) &&
         (d->rec_n < 0 || !(d->rec_max >= 0.0f && isfinite(d->rec_max)))) ||
        (cfg.warn_run > 0 && (d->run_n < 0 || d->run_n > (1 << 30) ||
                              !(d->run_sum >= 0.0 && d->run_sum <= d->run_n + 1.0) ||
                              d->run_out < 0 || d->run_out > d->run_n)) ||
        (cfg.record_quiet && (d->quiet_n < 0 || d->quiet_n > (1 << 30))) ||
        (cfg.onset_rate && !(d->ons_rate >= 0.0 && d->ons_rate <= cfg.err_window + 1.0)) ||
        (cfg.range_quiet > 0.0f && d->vr_n < 0) ||
        (cfg.onset_rhythm && (d->rh_n < 0 || d->rh_n > DETECTOR_RHYTHM_N)) ||
        (cfg.opinion_open && (d->opin_run < 0 || d->opin_run > (1 << 30))) ||
        (cfg.mean_far > 0.0f && (d->mf_on < 0 || d->mf_on > 1)) ||
        (cfg.accept_grow > 0.0f &&
         (d->gr_n < 0 || d->gr_n > (1 << 30) || d->gr_pn < 0 || d->gr_pn > (1 << 30) ||
          !(d->gr_sum >= 0.0 && d->gr_sum <= 1e300 && d->gr_sq >= 0.0 && d->gr_sq <= 1e300) ||
          !(d->gr_psum >= 0.0 && d->gr_psum <= 1e300 && d->gr_psq >= 0.0 && d->gr_psq <= 1e300))))
        goto fail;
    if (!windows_ok(d))
        goto fail;
    /* The context rows and the last reading as the step writes them: finite (a value that is not
     * is carried forward, or 0 before any); a NaN row joined range_quiet's range as it left the
     * short window, and the range the next load refuses (fuzz_detector, session 63). */
    for (size_t k = 0; k < (size_t)d->ctx_cap * Cz; k++)
        if (!isfinite(d->ctx[k]))
            goto fail;
    for (size_t c = 0; c < Cz; c++)
        if (!isfinite(d->last[c]))
            goto fail;
    /* err_corr's weights finite: one infinite made every raw score after the load infinite, and
     * the onset the scoring kept an infinite size the next load refuses (session 63). */
    for (size_t k = 0; cfg.err_corr && k < Cz * Cz; k++)
        if (!isfinite(d->rinv[k]))
            goto fail;
    for (int i = 0; cfg.onset_rhythm && i < d->rh_n; i++) /* oldest first, all before now */
        if ((i > 0 && d->rh_at[i] <= d->rh_at[i - 1]) || d->rh_at[i] >= d->n_seen ||
            !(d->rh_raw[i] >= 0.0f && isfinite(d->rh_raw[i])) ||
            (d->rh_ts[i] != DETECTOR_NO_TIME &&
             (d->rh_ts[i] < -RH_TS_MAX || d->rh_ts[i] > RH_TS_MAX)))
            goto fail;
    for (size_t c = 0; cfg.range_quiet > 0.0f && d->vr_n > 0 && c < Cz; c++)
        if (!(d->vr_lo[c] <= d->vr_hi[c]) || !isfinite(d->vr_lo[c]) || !isfinite(d->vr_hi[c]))
            goto fail;
    for (size_t c = 0; c < Cz; c++)
        if (d->version > 0 && !(d->err_scale[c] > 0.0f && isfinite(d->err_scale[c])))
            goto fail;
    for (int i = 0, prev = -1; i < d->n_op; i++) { /* channel order, valid periods and spreads */
        const struct detector__opinion *o = &d->o_rec[i];
        if (o->ch <= prev || o->ch >= C || o->period < 2 || o->period > cfg.history ||
            !(o->sd > 0.0f && isfinite(o->sd)) || !isfinite(o->mean) ||
            !(o->asd >= 0.0f && isfinite(o->asd)) || !(o->n0 >= 0.0f && isfinite(o->n0)) ||
            o->own < 0 || o->own > 1 || (o->own && !(o->asd > 0.0f)))
            goto fail;
        prev = o->ch;
    }
    if (cfg.season_opinion && cfg.season_bins > 0 && !(d->o_n >= -1.0 && d->o_n <= 1e18))
        goto fail;
    if (cfg.season_accum > 0.0f && cfg.season_opinion && cfg.season_bins > 0 &&
        !(d->o_age >= -1.0 && d->o_age <= 1e18 && d->o_an >= 0.0 && d->o_an <= 1e18))
        goto fail;
    for (size_t c = 0; cfg.season_bins > 0 && c < Cz; c++)
        if (d->season[c] > 1 || d->s_period[c] < 0 || d->s_period[c] > cfg.history ||
            (d->season[c] && d->s_period[c] < 2))
            goto fail;
    *out = d;
    return 0;
fail:
    detector_destroy(d);
    return rc;
}

int detector_load(detector_t **out, const void *buf, size_t len)
{
    return load(out, buf, len, NULL);
}

int detector_load_shared(detector_t **out, const void *buf, size_t len, const model_t *lstm)
{
    return load(out, buf, len, lstm);
}

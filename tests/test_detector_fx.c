/* tests/test_detector_fx.c: fixtures shared by the parts of test_detector
 * (tests/test_detector_*.c): synthetic series, driving the detector as the daemon does, and cutting
 * a save back to an older format. Moved whole from tests/test_detector.c; declared in
 * tests/test_detector_fx.h. */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "detector.h"
#include "detector_int.h" /* the save cutters and run_to_decay_quiet read the state */
#include "err.h"
#include "test_detector_fx.h"

/* ---- synthetic data ---------------------------------------------------------------------- */

uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double gauss(uint64_t *s)
{
    double u1 = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(rng_next(s) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

/* A coupled pump-like process, n readings of C = 4 channels, row-major: a 60-reading cycle
 * (vibration), a current that follows it with a lag, a temperature on a slow 900-reading
 * cycle with correlated noise, and a pressure that mixes the first two; Gaussian sensor noise
 * on each. Healthy means the same regime throughout: a channel that wanders out of the range
 * the model was trained on is flagged until a retraining takes it in (docs/detection.md). */
float *make_process(int n, uint64_t seed)
{
    float *x = malloc(sizeof(float) * 4 * (size_t)n);
    assert_non_null(x);
    uint64_t s = seed;
    double temp = 0.0, prev0 = 0.0;
    for (int t = 0; t < n; t++) {
        double v = sin(2.0 * 3.14159265358979 * t / 60.0);
        temp = 0.95 * temp + 0.02 * gauss(&s);
        x[4 * t + 0] = (float)(v + 0.05 * gauss(&s));
        x[4 * t + 1] = (float)(2.0 + 0.8 * prev0 + 0.05 * gauss(&s));
        x[4 * t + 2] =
            (float)(40.0 + 0.5 * sin(2.0 * 3.14159265358979 * t / 900.0) + temp + 0.02 * gauss(&s));
        x[4 * t + 3] = (float)(5.0 + 0.5 * v - 0.3 * prev0 + 0.05 * gauss(&s));
        prev0 = v;
    }
    return x;
}

/* ---- driving the detector as the daemon does ---------------------------------------------- */

int trainings;

/* One training of d on x's first n rows, applied; its report in *info. */
void train_on(detector_t *d, const float *x, int n, struct detector_train_info *info)
{
    detector_job_t *job;
    assert_int_equal(detector_job_create(&job, d), 0);
    assert_int_equal(detector_job_set_data(job, x, n), 0);
    assert_int_equal(detector_job_run(job), 0);
    assert_int_equal(detector_job_apply(d, job, info), 0);
    detector_job_destroy(job);
}

/* Steps reading t of series [n, C] taken at ts_ms (DETECTOR_NO_TIME: none) and trains inline
 * when asked, on the window of the newest `history` rows up to t, as the daemon reads it from
 * its store. */
void step_ts(detector_t *d, int64_t ts_ms, const float *series, int t, int C,
             const uint8_t *present, struct detector_result *res)
{
    assert_int_equal(detector_step_ts(d, ts_ms, series + (size_t)C * t, present, res), 0);
    assert_true(res->score >= 0.0f && res->score <= 1.0f);
    if (!res->want_train)
        return;
    detector_job_t *job;
    int rc = detector_job_create(&job, d);
    if (rc == ERR_RANGE)
        return;
    assert_int_equal(rc, 0);
    assert_int_equal(detector_job_set_data(job, series, t + 1), 0);
    assert_int_equal(detector_job_run(job), 0);
    struct detector_train_info info;
    assert_int_equal(detector_job_apply(d, job, &info), 0);
    detector_job_destroy(job);
    if (getenv("DBG"))
        print_message("train v%u swapped %d kind %d lstm %.4f linear %.4f pers %.4f serving %.4f\n",
                      info.version, info.swapped, info.kind, info.val_mse_lstm, info.val_mse_linear,
                      info.val_mse_persistence, info.val_mse_serving);
    trainings++;
}

/* step_ts with reading t at t seconds. */
void step(detector_t *d, const float *series, int t, int C, const uint8_t *present,
          struct detector_result *res)
{
    step_ts(d, (int64_t)t * 1000, series, t, C, present, res);
}

int float_bits(float v)
{
    int bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

detector_t *new_detector_cfg(const struct detector_config *cfg, int C)
{
    detector_t *d;
    assert_int_equal(detector_create(&d, cfg, C), 0);
    return d;
}

detector_t *new_detector(int C)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    return new_detector_cfg(&cfg, C);
}

void make_trip_burst(float *x, int n, uint64_t seed, float by)
{
    double v = 0.0;
    for (int t = 0; t < n; t++) {
        v = 0.5 * v + 0.1 * gauss(&seed);
        x[t] = (float)v;
    }
    x[1400] += by;
    x[1401] += by;
}

float *make_linear(int n, uint64_t seed)
{
    float *x = malloc(sizeof(float) * 4 * (size_t)n);
    assert_non_null(x);
    uint64_t s = seed;
    double v[4] = {0, 0, 0, 0};
    for (int t = 0; t < n; t++) {
        double nv[4];
        for (int c = 0; c < 4; c++)
            nv[c] = 0.8 * v[c] + 0.15 * v[(c + 1) % 4] + 0.1 * gauss(&s);
        for (int c = 0; c < 4; c++) {
            v[c] = nv[c];
            x[4 * t + c] = (float)(10.0 + c + v[c]);
        }
    }
    return x;
}

enum detector_state machine_state(const detector_t *d, const struct detector_result *res)
{
    if (res->state == DET_LEARNING)
        return DET_LEARNING;
    if (res->state == DET_ANOMALY && d->det_state != DET_ANOMALY)
        assert_true(d->cfg.trip_level > 0.0f && res->score >= d->cfg.trip_level);
    else
        assert_int_equal(res->state, d->det_state);
    return d->det_state;
}

void assert_same_result(const struct detector_result *a, const struct detector_result *b, int C)
{
    assert_memory_equal(&a->score, &b->score, sizeof a->score);
    assert_memory_equal(&a->likelihood, &b->likelihood, sizeof a->likelihood);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->want_train, b->want_train);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->ended_by, b->ended_by);
    assert_int_equal(a->opened_by, b->opened_by);
    assert_memory_equal(a->pred, b->pred, sizeof(float) * (size_t)C);
    assert_memory_equal(a->contrib, b->contrib, sizeof(float) * (size_t)C);
}

/* Cuts format 48's trip state (tripped and ep_trip, the two i32 after ep_accepted) out of a save
 * of *len bytes (the CRC left for the caller to redo). */
static void cut_tripped(unsigned char *buf, size_t *len)
{
    const size_t at = 12 + sizeof(struct detector_config) + sizeof(int), n = 2 * sizeof(int);
    memmove(buf + at, buf + at + n, *len - at - n);
    *len -= n;
}

/* Drops format 21's ep_accepted (an int right after the config) from a save of *len bytes whose
 * config is still the whole struct, so the bytes have format 20's layout (the CRC, the last 4
 * bytes, is left for the caller to redo). Every older format's cut starts with it. */
void cut_ep_accepted(unsigned char *buf, size_t *len)
{
    cut_tripped(buf, len); /* format 48's, after it: no format without ep_accepted had it */
    const size_t at = 12 + sizeof(struct detector_config);
    memmove(buf + at, buf + at + sizeof(int), *len - at - sizeof(int));
    *len -= sizeof(int);
}

/* Sets *cfg as the loader leaves the config of a format (2 or later) that ended before the field
 * at offset field of struct detector_config: that field and every later one 0, its off value,
 * except tail_plain (format 4's), which formats 3 and before load as 1. An older format's test
 * runs its saved detector on this, as the format did (it had none of those fields, nor their
 * state), so a field added later needs no line in every older format's test. */
void config_as_format(struct detector_config *cfg, size_t field)
{
    memset((char *)cfg + field, 0, sizeof *cfg - field);
    if (field <= offsetof(struct detector_config, tail_plain))
        cfg->tail_plain = 1;
}

/* Cuts format 7's additions out of a save of len bytes (the config's tail from serving_f16, and the
 * C x C error weights, which lie just before the previous reading's contributions, the long and
 * short windows and the LSTM checkpoint's length), so the bytes have format 6's layout; returns
 * the new length (the CRC, the last 4 bytes, is left for the caller to redo). The checkpoint
 * length is found as the u64 that counts the bytes after it up to the CRC. */
size_t cut_weights(unsigned char *buf, size_t len, int C, const struct detector_config *cfg)
{
    cut_ep_accepted(buf, &len);
    size_t p = 12 + sizeof *cfg;
    for (; p + 12 <= len; p++) {
        uint64_t m;
        memcpy(&m, buf + p, 8);
        if (m == len - 12 - p)
            break;
    }
    assert_true(p + 12 <= len);
    const size_t w = sizeof(float) * (size_t)C * C;
    const size_t at = p - sizeof(float) * ((size_t)cfg->err_short + cfg->err_window + C) - w;
    memmove(buf + at, buf + at + w, len - at - w);
    len -= w;
    const size_t tail = sizeof *cfg - CFG6_SIZE;
    memmove(buf + 12 + CFG6_SIZE, buf + 12 + sizeof *cfg, len - 12 - sizeof *cfg);
    return len - tail;
}
float *make_pump(int n, int m)
{
    float *x = malloc(sizeof(float) * PUMP_C * (size_t)n);
    assert_non_null(x);
    uint64_t s = 5000 + (uint64_t)m;
    const double pi = 3.14159265358979323846, a = 1.0 - exp(-1.0 / 3), b = 1.0 - exp(-1.0 / 60);
    double speed = 0.75, flow = 90.0, temp = 60.0;
    for (int t = 0; t < n; t++) {
        double target = 0.75 + 0.15 * sin(2 * pi * t / 600.0) + 0.05 * sin(2 * pi * t / 97.0);
        speed += (target - speed) * 0.2 + 0.002 * gauss(&s);
        flow += (120.0 * speed - flow) * a + 0.4 * gauss(&s);
        double pressure = 1.2 + 0.00035 * flow * flow + 0.02 * gauss(&s);
        double current = 4.0 + 0.09 * flow * pressure / 3.0 + 0.05 * gauss(&s);
        temp += (35.0 + 2.2 * current - temp) * b + 0.03 * gauss(&s);
        double vib = 1.1 + 1.6 * speed * speed + 0.05 * gauss(&s);
        const double v[PUMP_C] = {speed,
                                  flow,
                                  pressure,
                                  current,
                                  temp,
                                  vib,
                                  0.6 * current * (0.8 + 0.2 * speed),
                                  1480.0 * speed * (1.0 - 0.002 * current)};
        for (int c = 0; c < PUMP_C; c++)
            x[(size_t)PUMP_C * t + c] = (float)v[c];
    }
    return x;
}

/* A format-5 save (the config's last 4 bytes were padding then, now extrap_weight) loads with
 * extrap_weight 0, whatever its padding held, and continues bit for bit as the detector that
 * ran without the term; the same pump with the term (format 6) raises fewer anomalies, so the
 * check can tell the two apart. */
/* Gives a save (buf, *len bytes) whose format-7 additions cut_weights has cut the format
 * number fmt (5 or 6) and redoes its CRC. */
void as_format6(unsigned char *buf, size_t *len, uint32_t fmt)
{
    memcpy(buf + 4, &fmt, 4);
    uint32_t crc = model__crc32(0, buf, *len - 4);
    memcpy(buf + *len - 4, &crc, 4);
}

/* Cuts the save buf[*len] back to format fmt, whose config ended before the field at offset
 * field of struct detector_config (padded to the struct's alignment): the config's newer bytes
 * (and before format 23 ep_accepted, cut_ep_accepted) are dropped, junk is written where the field
 * lies if it took that padding (the older format must not read it), and the format number and CRC
 * are redone. Returns 1 when the junk went into the padding. */
int cut_to_format(unsigned char *buf, size_t *len, size_t field, int junk, uint32_t fmt)
{
    const size_t al = _Alignof(struct detector_config), size = sizeof(struct detector_config);
    const size_t keep = (field + al - 1) / al * al;
    if (fmt < 23)
        cut_ep_accepted(buf, len);
    else if (fmt < 48)
        cut_tripped(buf, len);
    memmove(buf + 12 + keep, buf + 12 + size, *len - 12 - size);
    *len -= size - keep;
    const int in_padding = field + sizeof(int) <= keep;
    if (in_padding)
        memcpy(buf + 12 + field, &junk, sizeof junk);
    as_format6(buf, len, fmt);
    return in_padding;
}

/* Drops the n bytes right before prev_contrib from d's save buf[*len] (found from the end of
 * the blob: CRC, the LSTM's checkpoint and its length, the short and long windows,
 * prev_contrib; the CRC is left for the caller to redo), first checked against expect (NULL:
 * not checked). */
void drop_before_contrib(unsigned char *buf, size_t *len, const detector_t *d, size_t n,
                         const void *expect)
{
    const size_t mlen = d->lstm ? model_checkpoint_size(d->lstm) : 0;
    const size_t at = *len - 4 - mlen - 8 -
                      sizeof(float) * (size_t)(d->cfg.err_short + d->cfg.err_window + d->C) - n;
    if (expect)
        assert_memory_equal(buf + at, expect, n);
    memmove(buf + at, buf + at + n, *len - at - n);
    *len -= n;
}

/* Formats 30-34 had opinion_open without saving its run (opin_run, format 35's 4 bytes before
 * prev_contrib): drops them from d's save buf[*len] (checked against d's run) and starts d's
 * run over, as those formats ran after a load. Nothing when d's config has no opinion_open. */
void drop_opin_run(unsigned char *buf, size_t *len, detector_t *d)
{
    if (!d->cfg.opinion_open)
        return;
    drop_before_contrib(buf, len, d, sizeof d->opin_run, &d->opin_run);
    d->opin_run = 0;
}

/* A detector of C channels with cfg, fed x[n, C] up to reading cut, saved, its save cut back to
 * format fmt (cut_to_format: the config ends before the field at offset field, junk where it
 * lay in the padding) and loaded; the saved and the loaded detector then run to n in step and
 * must agree bit for bit. The same bytes claimed as format fmt + 1 must be refused. The saved
 * detector runs with cfg as format fmt's loader leaves it (config_as_format). Returns the readings
 * after the cut reported at or above score_level; *top the largest score among them, *opened the
 * anomalies opened after the cut. */
int cut_and_continue(const struct detector_config *cfg, int C, const float *x, int n, int cut,
                     size_t field, int junk, uint32_t fmt, double *top, int *opened)
{
    struct detector_config old = *cfg;
    config_as_format(&old, field);
    cfg = &old;
    detector_t *a, *b;
    assert_int_equal(detector_create(&a, cfg, C), 0);
    struct detector_result ra, rb;
    for (int t = 0; t < cut; t++)
        step(a, x, t, C, NULL, &ra);
    size_t len = detector_save_size(a), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(a, buf, len, &got), 0);
    if (fmt < 35)
        drop_opin_run(buf, &len, a);
    cut_to_format(buf, &len, field, junk, fmt);
    assert_int_equal(detector_load(&b, buf, len), 0);
    int onsets = 0;
    *top = 0.0;
    *opened = 0;
    for (int t = cut; t < n; t++) {
        step(a, x, t, C, NULL, &ra);
        step(b, x, t, C, NULL, &rb);
        assert_same_result(&ra, &rb, C);
        onsets += rb.score >= cfg->score_level;
        *opened += rb.changed && rb.state == DET_ANOMALY;
        if (rb.score > *top)
            *top = rb.score;
    }
    as_format6(buf, &len, fmt + 1);
    detector_t *c = NULL;
    assert_int_not_equal(detector_load(&c, buf, len), 0);
    detector_destroy(a);
    detector_destroy(b);
    free(buf);
    return onsets;
}

/* cut_and_continue for a test that counts the anomalies opened after the cut (returned). */
int load_older_format(const struct detector_config *cfg, const float *x, int n, int cut, int C,
                      size_t field, int junk, uint32_t fmt)
{
    double top;
    int opened;
    cut_and_continue(cfg, C, x, n, cut, field, junk, fmt, &top, &opened);
    return opened;
}

/* ---- ninth round: the operating-point likelihood (op_point) ------------------------------- */

/* A detector loaded from d's save, to run beside d (it must answer as d does). */
detector_t *reloaded(const detector_t *d)
{
    size_t len = detector_save_size(d), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(d, buf, len, &got), 0);
    detector_t *e;
    assert_int_equal(detector_load(&e, buf, got), 0);
    free(buf);
    return e;
}

/* Steps d by reading t of x[., C] (step). From reading save_at > 0 on, *e (NULL before) is a copy
 * loaded from d's save there, stepped beside it: it must answer bit for bit as d does. */
void step_twin(detector_t *d, detector_t **e, int save_at, const float *x, int t, int C,
               struct detector_result *res)
{
    if (t == save_at)
        *e = reloaded(d);
    step(d, x, t, C, NULL, res);
    if (*e) {
        struct detector_result re;
        step(*e, x, t, C, NULL, &re);
        assert_same_result(res, &re, C);
    }
}

/* Runs the n readings x[n, C] through a detector with cfg and frees x; returns the readings
 * from onset to the first flagged one (-1: never), *before the anomalies opened before the
 * onset, *top the top channel at the first flagged reading, *held the flagged readings from
 * the onset on. With save_at > 0, the detector is saved there and a loaded copy runs beside it
 * and must agree bit for bit. */
int onset_run(const struct detector_config *cfg, float *x, int n, int C, int onset, int save_at,
              int *before, int *top, int *held)
{
    detector_t *d, *e = NULL;
    assert_int_equal(detector_create(&d, cfg, C), 0);
    struct detector_result res;
    int flagged_at = -1;
    *before = *held = 0;
    *top = -1;
    for (int t = 0; t < n; t++) {
        step_twin(d, &e, save_at, x, t, C, &res);
        if (t < onset) {
            *before += res.changed && res.state == DET_ANOMALY;
        } else {
            *held += res.is_anomaly;
            if (res.is_anomaly && flagged_at < 0) {
                flagged_at = t;
                *top = res.top_channel;
            }
        }
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
    return flagged_at < 0 ? -1 : flagged_at - onset;
}

/* ---- tenth round: the seasonal candidate (season_bins) ------------------------------------ */

float *make_slow_cycle(int n, int stop, uint64_t seed, double keep)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    assert_non_null(x);
    uint64_t s = seed * 7919 + 3;
    double w = 0.0;
    for (int t = 0; t < n; t++) {
        w = 0.5 * w + 0.2 * gauss(&s);
        const int ph = (t + OPIN_P / 2) % OPIN_P; /* stop = 1,500: phase 0 */
        double cyc = ph < 80    ? 0.0
                     : ph < 100 ? (ph - 80) / 10.0
                     : ph < 180 ? 2.0
                                : (200 - ph) / 10.0;
        if (t >= stop)
            cyc *= keep;
        x[t] = (float)(5.0 + cyc + w);
    }
    return x;
}

/* Saves buf's first len - 4 bytes with a fresh CRC as a len-byte blob in out and loads it. */
int load_recrc(const unsigned char *buf, size_t len, unsigned char *out)
{
    memcpy(out, buf, len - 4);
    uint32_t crc = model__crc32(0, out, len - 4);
    memcpy(out + len - 4, &crc, 4);
    detector_t *d = NULL;
    int rc = detector_load(&d, out, len);
    detector_destroy(d);
    return rc;
}

/* ---- eleventh round: the step test (shift_len) ------------------------------------------- */

/* Six channels, row-major [n, 6], a pump seen as SKAB's valve experiments show it: channel 0 a
 * flow hovering around 30 (white noise of deviation 1), channel 1 a temperature (noise 0.02)
 * that wanders 2 units over a 2,500-reading cycle and, from reading 1,000, drops by `drift`
 * more along a half cosine of 300 readings (a drift that sets in and speeds up, far beyond
 * anything in its training rows), channels 2 and 3 a coupled 60-reading cycle, channels 4 and 5
 * white noise (a pressure and a voltage). From `onset` the flow steps down by `by` deviations
 * and stays there. */
float *make_step_drift(int n, int onset, double by, double drift, uint64_t seed)
{
    enum { C = 6 };
    float *x = malloc(sizeof(float) * C * (size_t)n);
    assert_non_null(x);
    uint64_t s = seed;
    const double pi = 3.14159265358979, innov = sqrt(1.0 - 0.95 * 0.95);
    double ar = 0.0;
    for (int t = 0; t < n; t++) {
        double v = sin(2.0 * pi * t / 60.0);
        double dr = t < 1000    ? 0.0
                    : t >= 1300 ? drift
                                : drift * 0.5 * (1.0 - cos(pi * (t - 1000) / 300.0));
        ar = 0.95 * ar + innov * gauss(&s);
        x[C * t + 0] = (float)(30.0 + ar - (t >= onset ? by : 0.0));
        x[C * t + 1] = (float)(60.0 + 2.0 * sin(2.0 * pi * t / 2500.0) - dr + 0.02 * gauss(&s));
        x[C * t + 2] = (float)(v + 0.05 * gauss(&s));
        x[C * t + 3] = (float)(5.0 + 0.5 * v + 0.05 * gauss(&s));
        x[C * t + 4] = (float)(2.0 + 0.3 * gauss(&s));
        x[C * t + 5] = (float)(230.0 + 10.0 * gauss(&s));
    }
    return x;
}

/* ---- twelfth round: bursts shown before (burst_memory) ------------------------------------ */

/* cut_and_continue over make_slow_cycle(1680, 1500, seed 1, keep), cut at 1,400 (after the
 * training at 1,200) to format fmt at the config's field, with junk 1 in its padding. */
void slow_cycle_cut(const struct detector_config *cfg, double keep, size_t field, uint32_t fmt)
{
    enum { N = 1680, CUT = 1400 };
    float *x = make_slow_cycle(N, 1500, 1, keep);
    double top;
    int opened;
    cut_and_continue(cfg, 1, x, N, CUT, field, 1, fmt, &top, &opened);
    print_message("format %u load: largest score after the cut %.3f, as saved\n", (unsigned)fmt,
                  top);
    free(x);
}

/* ---- how an episode ended (detector_result.ended_by) ------------------------------------- */

/* make_step_drift's pump (drift 4, n readings) whose flow steps down by 3 deviations at 1,600
 * for `len` readings (len < 0: for good) and then comes back; with `noisier` the pump runs
 * differently after the return (channel 3 follows channel 2's cycle with more gain), as in
 * settle_run. */
float *make_end_pump(int n, int len, int noisier, uint64_t seed)
{
    const int onset = 1600, C = 6;
    float *x = make_step_drift(n, onset, 0.0, 4.0, seed);
    uint64_t s = seed * 7919u + 17u;
    for (int t = 0; t < n; t++) {
        int in_fault = t >= onset && (len < 0 || t < onset + len);
        x[C * t + 0] = (float)(30.0 + gauss(&s) - (in_fault ? 3.0 : 0.0));
        if (noisier && t >= onset + len)
            x[C * t + 3] += (float)(0.3 * sin(2.0 * 3.14159265358979 * t / 60.0));
    }
    return x;
}

/* ---- twenty-second round: a warning that lasts opens (warn_run) -------------------------- */

/* make_step_drift's pump without its step or drift (n readings, seed) whose white-noise channel
 * 4 turns f times noisier from reading 1,500 on: a wear that adds noise. */
float *make_noisier(int n, double f, uint64_t seed)
{
    float *x = make_step_drift(n, n, 0.0, 0.0, seed);
    for (int t = 1500; t < n; t++)
        x[6 * t + 4] = (float)(2.0 + f * (x[6 * t + 4] - 2.0));
    return x;
}

/* The defaults with warn_run wr and the warning's levels at 0.2 (warn_level and clear_level: a
 * tail of 1e-2, so a moderate fault stays a warning for long and the run's combination needs
 * four independent short means, 40 readings, at the least to reach alarm_level). */
void warn_run_config(struct detector_config *cfg, int wr)
{
    detector_config_default(cfg);
    cfg->warn_level = cfg->clear_level = 0.2f;
    cfg->warn_run = wr;
}

/* ---- an accepted episode across a restart (ep_accepted, format 23) ----------------------- */

/* The first reason an episode ends by from reading `from` of x (N rows, C 6) through d (and a
 * beside it, which must agree bit for bit when given); DET_END_NONE: none ended. */
enum detector_end first_end(detector_t *d, detector_t *a, const float *x, int from, int n)
{
    struct detector_result rd, ra;
    enum detector_end why = DET_END_NONE;
    for (int t = from; t < n; t++) {
        step(d, x, t, 6, NULL, &rd);
        if (a) {
            step(a, x, t, 6, NULL, &ra);
            assert_same_result(&ra, &rd, 6);
        }
        if (why == DET_END_NONE)
            why = rd.ended_by;
    }
    return why;
}

/* ---- twenty-fifth round: the quiet weighs the record, across trainings (record_quiet) -------- */

/* Steps the n detectors d[] by reading t of x[., C] into r[] and asserts that they decide alike:
 * each one's state machine (machine_state) and decision likelihood are d[0]'s. The reported
 * state may differ by trip_level's trips, which follow the reported score the compared settings
 * rank (machine_state asserts each at the trip level). */
void step_alike(detector_t **d, int n, const float *x, int t, int C, struct detector_result *r)
{
    for (int i = 0; i < n; i++) {
        step(d[i], x, t, C, NULL, &r[i]);
        assert_int_equal(machine_state(d[i], &r[i]), machine_state(d[0], &r[0]));
        assert_true(r[i].likelihood == r[0].likelihood);
    }
}

/* ---- thirty-first round: a level that moved and stays (offset_release) --------------------- */

/* One channel, an AR(1) level (0.5, innovations 0.1), 2,000 readings; from OR_ONSET a lasting
 * step of +`step` (the device settled at a new level: a one-step predictor that reverts to its
 * training level misses every reading by about the same amount). */
float *make_new_level(uint64_t seed, double step)
{
    float *x = malloc(sizeof(float) * 2000);
    assert_non_null(x);
    double v = 0.0;
    for (int t = 0; t < 2000; t++) {
        v = 0.5 * v + 0.1 * gauss(&seed);
        x[t] = (float)(v + (t >= OR_ONSET ? step : 0.0));
    }
    return x;
}

/* Devices whose levels the operating point and the step test judge are not touched by a
 * one-sensor rule: make_step_drift's six channels (the flow down by 4 and 7 deviations at
 * 1,500, seeds 1-3) give the same result on every reading with the configuration `on` as with
 * its int or float field at offset `field` set to 0. */
void assert_multichannel_same(const struct detector_config *on, size_t field, const char *name)
{
    enum { N = 2200, C = 6 };
    for (uint64_t seed = 1; seed <= 3; seed++)
        for (int k = 0; k < 2; k++) {
            float *x = make_step_drift(N, 1500, k ? 7.0 : 4.0, 0.0, seed);
            struct detector_config cfg = *on;
            detector_t *a, *b;
            assert_int_equal(detector_create(&a, &cfg, C), 0);
            memset((char *)&cfg + field, 0, sizeof(int));
            assert_int_equal(detector_create(&b, &cfg, C), 0);
            struct detector_result ra, rb;
            int held = 0;
            for (int t = 0; t < N; t++) {
                step(a, x, t, C, NULL, &ra);
                step(b, x, t, C, NULL, &rb);
                assert_same_result(&ra, &rb, C);
                held += t >= 1500 && ra.is_anomaly;
            }
            print_message("seed %d step %d: %d readings flagged from the step on, as with %s 0\n",
                          (int)seed, k ? 7 : 4, held, name);
            detector_destroy(a);
            detector_destroy(b);
            free(x);
        }
}

/* assert_multichannel_same with the defaults on: the field's default against 0. */
void assert_multichannel_unchanged(size_t field, const char *name)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_multichannel_same(&def, field, name);
}

/* ---- thirty-fifth round: an episode ends when its recent readings are normal (hold_recent) -- */

/* One channel, make_new_level's AR(1) level (0.5, innovations 0.1), HR_N readings. kind 0: a
 * burst from HR_ONSET, +2.0 decaying by 0.85 a reading for 6 readings, after which the values
 * are back at their level (the return: HR_ONSET + 6). kind 1: a lasting noisy fault from
 * HR_ONSET (make_new_level's step of +0.6: 5 of the level's deviations, the one-step error
 * about 3 of its own), whose error now and then falls back inside the noise. */
float *make_hold_case(uint64_t seed, int kind)
{
    float *x = make_new_level(seed, kind ? 0.6 : 0.0);
    for (int k = 0; kind == 0 && k < 6; k++)
        x[HR_ONSET + k] += (float)(2.0 * pow(0.85, k));
    return x;
}

/* ---- thirty-sixth round: an onset that keeps a schedule is routine (onset_rhythm) ---------- */

/* One channel at 0.13 with noise (sd 0.01), RH_N readings, and a one-reading spike to about 1.4
 * once a "day": spike k at 150 + k RH_PERIOD with a jitter of -2..2 readings (a nightly job),
 * k = 0 .. RH_SPIKES - 1, their readings in at[]. Any two gaps between spikes then differ by at
 * most 8 readings, within 1/32 of a day (9). Spike `big` (-1: none) goes to 5.0 instead
 * (its raw score about 1.7 above the routine's, more than the log 2 the rule allows); off > 0
 * adds a spike of the routine's size at reading off, off the schedule. */
float *make_routine(uint64_t seed, int big, int off, int *at)
{
    float *x = malloc(sizeof(float) * RH_N);
    assert_non_null(x);
    uint64_t s = seed;
    for (int t = 0; t < RH_N; t++)
        x[t] = (float)(0.13 + 0.01 * gauss(&s));
    for (int k = 0; k < RH_SPIKES; k++) {
        at[k] = 150 + k * RH_PERIOD + (int)(rng_next(&s) % 5) - 2;
        x[at[k]] = (float)((k == big ? 5.0 : 1.4) + 0.05 * gauss(&s));
    }
    if (off > 0)
        x[off] = (float)(1.4 + 0.05 * gauss(&s));
    return x;
}

/* ---- one sensor: a fault that changes the pattern, not the range (a guard) ---------------- */

/* One channel: an AR(1) level (0.5, innovations 0.1) for PF_ONSET readings, then a control loop
 * hunting: 0.3 times that level plus a square wave of +-0.18 with period 4, every value within
 * about 1.6 of the level's deviations of its level. */
float *make_hunting(uint64_t seed)
{
    float *x = malloc(sizeof(float) * PF_N);
    assert_non_null(x);
    double v = 0.0;
    for (int t = 0; t < PF_N; t++) {
        v = 0.5 * v + 0.1 * gauss(&seed);
        x[t] = (float)(t < PF_ONSET ? v : 0.3 * v + ((t / 2) % 2 ? 0.18 : -0.18));
    }
    return x;
}

/* ---- sixtieth round: a drift is not a settled level (offset_trend) ------------------------- */

/* make_new_level's device (AR(1) level 0.5, innovations 0.1) whose level steps by +3 (30
 * innovation deviations) at OR_ONSET and then drifts on by `rate` a reading for `len`
 * readings (0: to the end), where it stays. */
float *make_drift(uint64_t seed, double rate, int len)
{
    float *x = make_new_level(seed, 3.0);
    for (int t = OR_ONSET; t < 2000; t++) {
        const int k = t - OR_ONSET;
        x[t] += (float)(rate * (len > 0 && k > len ? len : k));
    }
    return x;
}

/* Runs x (one channel, 2,000 readings, freed) with cfg (drift_run: the defaults and
 * offset_trend `trend`): returns the readings flagged from OR_ONSET on; *first_end is the
 * reading after OR_ONSET at which the first episode from there ended (-1: none) and *why its
 * ended_by. With save_at > 0 a loaded copy saved there runs beside it bit for bit. */
int cfg_drift_run(const struct detector_config *cfg, float *x, int save_at, int *first_end,
                  enum detector_end *why)
{
    detector_t *d, *e = NULL;
    assert_int_equal(detector_create(&d, cfg, 1), 0);
    struct detector_result res;
    int flagged = 0;
    *first_end = -1;
    *why = DET_END_NONE;
    for (int t = 0; t < 2000; t++) {
        step_twin(d, &e, save_at, x, t, 1, &res);
        if (t < OR_ONSET)
            continue;
        flagged += res.is_anomaly;
        if (*first_end < 0 && res.ended_by != DET_END_NONE) {
            *first_end = t - OR_ONSET;
            *why = res.ended_by;
        }
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
    return flagged;
}

/* A fresh detector with cfg saved and loaded (*kept: its config), then its save cut back to
 * format fmt (cut_to_format at field, junk in the padding; before format 43 without
 * accept_grow's blocks) and loaded (*cut: its config). */
void save_kept_and_cut(const struct detector_config *cfg, size_t field, int junk, uint32_t fmt,
                       struct detector_config *kept, struct detector_config *cut)
{
    detector_t *d, *b;
    assert_int_equal(detector_create(&d, cfg, 1), 0);
    size_t len = detector_save_size(d), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(d, buf, len, &got), 0);
    assert_int_equal(detector_load(&b, buf, len), 0);
    *kept = b->cfg;
    detector_destroy(b);
    if (fmt < 46 && cfg->hold_decay > 0.0f) /* right before prev_contrib, after the echo's */
        drop_before_contrib(buf, &len, d, DECAY_STATE, NULL);
    if (fmt < 44 && cfg->hold_echo > 0.0f) /* right before prev_contrib, after the blocks */
        drop_before_contrib(buf, &len, d, ECHO_STATE, NULL);
    if (fmt < 43 && cfg->accept_grow > 0.0f)
        drop_before_contrib(buf, &len, d, GROW_STATE, NULL);
    cut_to_format(buf, &len, field, junk, fmt);
    assert_int_equal(detector_load(&b, buf, len), 0);
    *cut = b->cfg;
    detector_destroy(b);
    detector_destroy(d);
    free(buf);
}

/* cut_and_continue of make_drift's detector (seed 1) with cfg, cut at cut_at back to format fmt
 * (the config ending before field; junk, 3.0f's bits, where it lay in the padding), then
 * save_kept_and_cut of a fresh one: *kept and *cut its configs. */
void drift_cut_and_kept(const struct detector_config *cfg, int cut_at, size_t field, uint32_t fmt,
                        struct detector_config *kept, struct detector_config *cut)
{
    float *x = make_drift(1, 0.01, 0);
    double top;
    int opened;
    const int junk = float_bits(3.0f);
    cut_and_continue(cfg, 1, x, 2000, cut_at, field, junk, fmt, &top, &opened);
    free(x);
    save_kept_and_cut(cfg, field, junk, fmt, kept, cut);
}

/* ---- sixty-seventh round: a burst's decay ends its episode (hold_decay) ------------------ */

/* make_new_level's healthy AR(1) (values' deviation about 0.115) with, from HR_ONSET, kind 0 a
 * spike +3.0 that decays by 0.8 a reading (26 deviations; half way back after 4 readings),
 * kind 1 a fault that jumps by +3.0 and relaxes to +1.8 for good (+1.8 + 1.2 * 0.7^k: 40 % of
 * the way back, then stays 16 deviations from the old level). */
float *make_decay_case(uint64_t seed, int kind)
{
    float *x = make_new_level(seed, 0.0);
    for (int t = HR_ONSET; t < HR_N; t++) {
        const double k = t - HR_ONSET;
        x[t] += (float)(kind == 0 ? 3.0 * pow(0.8, k) : 1.8 + 1.2 * pow(0.7, k));
    }
    return x;
}

/* Steps make_decay_case's spike (seed) with the defaults until the reading after the one whose
 * episode hold_decay ended (its quiet, dk_left, still on): returns that reading's index, -1 if
 * the rule ended none. */
int run_to_decay_quiet(detector_t *d, const float *x)
{
    struct detector_result res;
    for (int t = 0; t < HR_N; t++) {
        step(d, x, t, 1, NULL, &res);
        if (t >= HR_ONSET && res.ended_by != DET_END_NONE && d->dk_left > 0)
            return t + 1;
    }
    return -1;
}
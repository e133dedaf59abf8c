/* tests/test_detector_io.c: unit tests of save and load (model/detector_io.c, detector_load.c): the
 * round trip, formats 3 and 5, and saved state that load validates (onset_rhythm's state, the
 * episode counts), and a linear or persistence predictor's kept parameters (model/detector_pred.c);
 * formats 8 and 47 and detector_apply_settings on a loaded detector (moved from
 * test_detector_calib.c); a blob claiming a shape too big for it (session 56); counts past their
 * bounds (session 62). Part of test_detector: tests/test_detector.c runs them, in the order of
 * the single file they were moved from; the fixtures shared with the other parts are in
 * tests/test_detector_fx.c. */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "detector.h"
#include "detector_int.h"
#include "err.h"
#include "test_atomic.h"
#include "test_detector_fx.h"

/* Save after 1,300 readings, load, and feed both the next 1,200 readings (a retraining and a
 * fault among them): identical results. Then corrupt and truncated copies are refused. */
static void test_save_load(void **unused)
{
    const int n = 2500, cut = 1300, C = 4;
    float *x = make_process(n, 21);
    for (int t = 2000; t < 2100; t++)
        x[C * t + 3] += 1.0f;
    detector_t *a = new_detector(C), *b;
    struct detector_result ra, rb;
    for (int t = 0; t < cut; t++)
        step(a, x, t, C, NULL, &ra);
    size_t cap = detector_save_size(a), len;
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    assert_int_equal(detector_save(a, buf, cap - 1, &len), ERR_RANGE);
    assert_int_equal(detector_save(a, buf, cap, &len), 0);
    assert_int_equal(len, cap);
    assert_int_equal(detector_load(&b, buf, len), 0);
    assert_int_equal(detector_get_state(a), detector_get_state(b));
    int flagged = 0;
    for (int t = cut; t < n; t++) {
        step(a, x, t, C, NULL, &ra);
        step(b, x, t, C, NULL, &rb);
        assert_same_result(&ra, &rb, C);
        flagged += ra.is_anomaly;
    }
    assert_true(flagged > 0);

    detector_t *c = NULL;
    assert_int_equal(detector_load(&c, buf, 0), ERR_CORRUPT);
    assert_int_equal(detector_load(&c, buf, 10), ERR_CORRUPT);
    assert_int_equal(detector_load(&c, buf, len / 2), ERR_CORRUPT);
    assert_int_equal(detector_load(&c, buf, len - 1), ERR_CORRUPT);
    for (size_t at = 0; at < len; at += len / 7 + 1) {
        buf[at] ^= 0x20;
        assert_int_equal(detector_load(&c, buf, len), ERR_CORRUPT);
        buf[at] ^= 0x20;
    }
    assert_int_equal(detector_load(&c, buf, len), 0); /* intact again */
    detector_destroy(c);
    detector_destroy(a);
    detector_destroy(b);
    free(buf);
    free(x);
}

/* A format-3 detector (saved before the decision likelihood) loads with tail_plain 1 and
 * score_level 0, and continues exactly as it ran: the blob is a format-4 save of a detector on
 * those settings with format 4's additions cut out (the config's tail from tail_plain, and the
 * previous reading's decision flag, the last of the scalar fields: 128 bytes of them before it). */
static void test_load_format3(void **unused)
{
    const int n = 2500, cut = 1300, C = 4;
    float *x = make_process(n, 21);
    for (int t = 2000; t < 2100; t++)
        x[C * t + 3] += 1.0f;
    struct detector_config cfg;
    detector_config_default(&cfg);
    /* tail_plain 1, score_level 0 and every later field off, as format 3 ran. */
    config_as_format(&cfg, offsetof(struct detector_config, tail_plain));
    detector_t *a = new_detector_cfg(&cfg, C), *b;
    struct detector_result ra, rb;
    for (int t = 0; t < cut; t++)
        step(a, x, t, C, NULL, &ra);
    size_t len = detector_save_size(a), got;
    unsigned char *buf = malloc(len), *old = malloc(len);
    assert_non_null(buf);
    assert_non_null(old);
    assert_int_equal(detector_save(a, buf, len, &got), 0);
    len = cut_weights(buf, len, C, &cfg);
    const size_t cfg_at = 12, tail = CFG6_SIZE - offsetof(struct detector_config, tail_plain);
    const size_t dred_at = cfg_at + CFG6_SIZE + 128;
    size_t o = 0;
    memcpy(old, buf, cfg_at + CFG6_SIZE - tail);
    o = cfg_at + CFG6_SIZE - tail;
    memcpy(old + o, buf + cfg_at + CFG6_SIZE, dred_at - (cfg_at + CFG6_SIZE));
    o += dred_at - (cfg_at + CFG6_SIZE);
    memcpy(old + o, buf + dred_at + sizeof(int), len - 4 - dred_at - sizeof(int));
    o += len - 4 - dred_at - sizeof(int);
    uint32_t fmt = 3;
    memcpy(old + 4, &fmt, 4);
    uint32_t crc = model__crc32(0, old, o);
    memcpy(old + o, &crc, 4);
    o += 4;
    assert_int_equal(detector_load(&b, old, o), 0);
    int flagged = 0;
    for (int t = cut; t < n; t++) {
        step(a, x, t, C, NULL, &ra);
        step(b, x, t, C, NULL, &rb);
        assert_same_result(&ra, &rb, C);
        flagged += ra.is_anomaly;
    }
    assert_true(flagged > 0);
    /* The same bytes as format 4 are the wrong length for it. */
    fmt = 4;
    memcpy(old + 4, &fmt, 4);
    crc = model__crc32(0, old, o - 4);
    memcpy(old + o - 4, &crc, 4);
    assert_int_equal(detector_load(&b, old, o), ERR_CORRUPT);
    detector_destroy(a);
    detector_destroy(b);
    free(buf);
    free(old);
    free(x);
}

static void test_load_format5(void **unused)
{
    enum { N = 1199, C = 6, CUT = 300 };
    float *x = make_pump(N, 12), *y = malloc(sizeof(float) * C * N);
    assert_non_null(y);
    for (int t = 0; t < N; t++)
        memcpy(y + (size_t)C * t, x + (size_t)PUMP_C * t, sizeof(float) * C);
    struct detector_config cfg;
    detector_config_default(&cfg);
    config_as_format(&cfg, offsetof(struct detector_config, extrap_weight));
    detector_t *a = new_detector_cfg(&cfg, C), *w = new_detector_cfg(&cfg, C), *b;
    struct detector_result ra, rb, rw;
    for (int t = 0; t < CUT; t++)
        step(a, y, t, C, NULL, &ra);
    size_t len = detector_save_size(a), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(a, buf, len, &got), 0);
    len = cut_weights(buf, len, C, &cfg);
    const size_t cfg_at = 12, at = cfg_at + offsetof(struct detector_config, extrap_weight);
    assert_true(at + sizeof(float) <= cfg_at + CFG6_SIZE); /* it took format 5's padding */
    const float junk = 0.1f;
    memcpy(buf + at, &junk, sizeof junk);
    as_format6(buf, &len, 5);
    assert_int_equal(detector_load(&b, buf, len), 0);
    /* w: the same detector with the term, from the same point (a format-6 load of it). */
    uint32_t fmt = 6;
    memcpy(buf + 4, &fmt, 4);
    uint32_t crc = model__crc32(0, buf, len - 4);
    memcpy(buf + len - 4, &crc, 4);
    detector_destroy(w);
    assert_int_equal(detector_load(&w, buf, len), 0);
    int alarms_a = 0, alarms_w = 0;
    for (int t = CUT; t < N; t++) {
        step(a, y, t, C, NULL, &ra);
        step(b, y, t, C, NULL, &rb);
        step(w, y, t, C, NULL, &rw);
        assert_same_result(&ra, &rb, C);
        alarms_a += ra.state == DET_ANOMALY && ra.changed;
        alarms_w += rw.state == DET_ANOMALY && rw.changed;
    }
    print_message("format 5 (no term): %d anomalies; with extrap_weight %.1f: %d\n", alarms_a, junk,
                  alarms_w);
    assert_true(alarms_a > alarms_w);
    detector_destroy(a);
    detector_destroy(b);
    detector_destroy(w);
    free(buf);
    free(y);
    free(x);
}

/* ---- review (session 13): onset_rhythm's saved state is validated on load --------------- */

/* Where the n bytes of needle first occur in hay[len] (len when nowhere). */
static size_t find_bytes(const unsigned char *hay, size_t len, const void *needle, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return i;
    return len;
}

/* make_routine's detector (seed 1, the defaults) 20 readings after its sixth spike, the series
 * in *x (the caller frees it) and the spikes' readings in at[RH_SPIKES]: onsets kept. */
static detector_t *after_sixth_spike(float **x, int *at)
{
    *x = make_routine(1, -1, -1, at);
    struct detector_config cfg;
    detector_config_default(&cfg);
    detector_t *d = new_detector_cfg(&cfg, 1);
    struct detector_result r;
    for (int t = 0; t <= at[5] + 20; t++)
        step(d, *x, t, 1, NULL, &r);
    return d;
}

/* A format-33 save of make_routine's detector (seed 1) after its sixth spike holds its kept
 * onsets (rh_n i32, rh_at u64 [8], rh_raw f32 [8], found by their bytes). With the CRC redone,
 * the bytes as saved load, and so do an rh_n of 0, a newest onset at n_seen - 1 and a size of
 * 0; every hostile variant is refused with ERR_CORRUPT, never an index out of range: rh_n -1,
 * 9 or INT32_MAX, two onsets out of order or at the same count, an onset at or after n_seen
 * (u64 max too), a size NaN, +inf or negative, and the blob cut inside the state. Format 37
 * (rhythm_time) adds their timestamps (rh_ts i64 [8]) after the sizes: checked below. */
static void test_rhythm_state_refused(void **unused)
{
    (void)unused;
    int at[RH_SPIKES];
    float *x;
    detector_t *d = after_sixth_spike(&x, at);
    const int n = d->rh_n;
    print_message("rhythm state: %d onsets kept, the newest at %llu of %llu readings\n", n,
                  (unsigned long long)d->rh_at[n - 1], (unsigned long long)d->n_seen);
    assert_true(n >= 3 && n < DETECTOR_RHYTHM_N); /* room for rh_n + 1 to be a lie */
    size_t len = detector_save_size(d), got;
    unsigned char *buf = malloc(len), *alt = malloc(len);
    assert_non_null(buf);
    assert_non_null(alt);
    assert_int_equal(detector_save(d, buf, len, &got), 0);
    const size_t at_off = find_bytes(buf, len, d->rh_at, sizeof d->rh_at);
    assert_true(at_off >= 4 && at_off < len);
    const size_t n_off = at_off - 4, raw_off = at_off + sizeof d->rh_at;
    int32_t rn;
    memcpy(&rn, buf + n_off, 4);
    assert_int_equal(rn, n);
    assert_memory_equal(buf + raw_off, d->rh_raw, sizeof d->rh_raw);
    assert_int_equal(load_recrc(buf, len, alt), 0);

    const uint64_t seen = d->n_seen, prev = d->rh_at[n - 2];
    const int32_t ns_ok[] = {0}, ns_bad[] = {-1, DETECTOR_RHYTHM_N + 1, INT32_MAX};
    const uint64_t last_ok[] = {seen - 1}, last_bad[] = {seen, seen + 1, UINT64_MAX, prev};
    const float raw_ok[] = {0.0f}, raw_bad[] = {NAN, INFINITY, -0.5f};
    unsigned char *last_at = buf + at_off + sizeof(uint64_t) * (size_t)(n - 1);
    unsigned char *last_raw = buf + raw_off + sizeof(float) * (size_t)(n - 1);
    for (int ok = 0; ok < 2; ok++) {
        const int want = ok ? 0 : ERR_CORRUPT;
        const size_t nn = ok ? 1 : 3, na = ok ? 1 : 4, nr = ok ? 1 : 3;
        for (size_t i = 0; i < nn; i++) {
            memcpy(buf + n_off, ok ? &ns_ok[i] : &ns_bad[i], 4);
            assert_int_equal(load_recrc(buf, len, alt), want);
        }
        memcpy(buf + n_off, &rn, 4);
        for (size_t i = 0; i < na; i++) {
            memcpy(last_at, ok ? &last_ok[i] : &last_bad[i], 8);
            assert_int_equal(load_recrc(buf, len, alt), want);
        }
        memcpy(last_at, &d->rh_at[n - 1], 8);
        for (size_t i = 0; i < nr; i++) {
            memcpy(last_raw, ok ? &raw_ok[i] : &raw_bad[i], 4);
            assert_int_equal(load_recrc(buf, len, alt), want);
        }
        memcpy(last_raw, &d->rh_raw[n - 1], 4);
    }
    /* rh_n one more than kept: the slot after the newest (0 in the save) is not after it. */
    const int32_t more = n + 1;
    memcpy(buf + n_off, &more, 4);
    assert_int_equal(load_recrc(buf, len, alt), ERR_CORRUPT);
    memcpy(buf + n_off, &rn, 4);
    /* The first two onsets swapped. */
    memcpy(buf + at_off, &d->rh_at[1], 8);
    memcpy(buf + at_off + 8, &d->rh_at[0], 8);
    assert_int_equal(load_recrc(buf, len, alt), ERR_CORRUPT);
    memcpy(buf + at_off, d->rh_at, 16);
    /* rhythm_time (the default): the timestamps after the sizes, the newest as saved, unknown,
     * 0 or -(2^62 - 1) load; +-2^62, INT64_MAX or INT64_MIN + 1 (a gap could overflow) do not. */
    const size_t ts_off = raw_off + sizeof d->rh_raw;
    assert_memory_equal(buf + ts_off, d->rh_ts, sizeof d->rh_ts);
    assert_true(d->rh_ts[n - 1] == (int64_t)d->rh_at[n - 1] * 1000);
    const int64_t ts_ok[] = {DETECTOR_NO_TIME, 0, -((int64_t)1 << 62) + 1, d->rh_ts[n - 1]};
    const int64_t ts_bad[] = {(int64_t)1 << 62, -((int64_t)1 << 62), INT64_MAX, INT64_MIN + 1};
    unsigned char *last_ts = buf + ts_off + sizeof(int64_t) * (size_t)(n - 1);
    for (size_t i = 0; i < 4; i++) {
        memcpy(last_ts, &ts_ok[i], 8);
        assert_int_equal(load_recrc(buf, len, alt), 0);
    }
    for (size_t i = 0; i < 4; i++) {
        memcpy(last_ts, &ts_bad[i], 8);
        assert_int_equal(load_recrc(buf, len, alt), ERR_CORRUPT);
    }
    memcpy(last_ts, &d->rh_ts[n - 1], 8);
    for (size_t cut = n_off; cut < ts_off + sizeof d->rh_ts; cut += 4)
        assert_int_equal(load_recrc(buf, cut + 4, alt), ERR_CORRUPT);
    assert_int_equal(load_recrc(buf, len, alt), 0); /* every change undone */
    free(buf);
    free(alt);
    free(x);
    detector_destroy(d);
}

/* A detector in an episode (make_hold_case's lasting fault, seed 1, 10 readings into its
 * episode), saved: its episode's counts (below, in_anomaly after det_state in the scalars after
 * the config, found by the fields' sizes and checked against the detector's values) are
 * validated on load. With the CRC redone, an in_anomaly of -196608 (tests/fuzz/fuzz_detector's
 * input: loaded before, and the first reading's hold then read recent_median's v[-98304]), -1,
 * 2^30 + 1 or INT32_MAX, or a below of -1 or INT32_MAX, is refused with ERR_CORRUPT; an
 * in_anomaly of 1000 loads and scores (the median takes at most short_len readings). */
static void test_episode_counts_refused(void **unused)
{
    (void)unused;
    float *x = make_hold_case(1, 1);
    struct detector_config cfg;
    detector_config_default(&cfg);
    detector_t *d = new_detector_cfg(&cfg, 1), *e;
    struct detector_result r;
    memset(&r, 0, sizeof r);
    int t = 0;
    for (; t < HR_N && !(r.state == DET_ANOMALY && d->in_anomaly >= 10); t++)
        step(d, x, t, 1, NULL, &r);
    assert_true(t < HR_N - 40);
    t--; /* the last reading stepped */
    size_t len = detector_save_size(d), got;
    unsigned char *buf = malloc(len), *alt = malloc(len);
    assert_non_null(buf);
    assert_non_null(alt);
    assert_int_equal(detector_save(d, buf, len, &got), 0);
    /* magic, format, C, the config, ep_accepted, tripped, ep_trip, then FIELDS_V1
     * (detector_format.h) in order. */
    size_t off = 12 + sizeof d->cfg + sizeof d->ep_accepted + sizeof d->tripped +
                 sizeof d->ep_trip + sizeof d->ctx_head + sizeof d->ctx_len + sizeof d->have_last +
                 sizeof d->n_seen + sizeof d->due_at + sizeof d->kind + sizeof d->version +
                 sizeof d->next_version + sizeof d->have_pred + sizeof d->ring_head +
                 sizeof d->ring_len + sizeof d->ring_since_resum + sizeof d->ring_sum +
                 sizeof d->ring_sumsq + sizeof d->short_head + sizeof d->short_len +
                 sizeof d->short_sum;
    const size_t below_at = off + sizeof d->det_state, anom_at = below_at + sizeof d->below;
    assert_memory_equal(buf + off, &d->det_state, sizeof d->det_state);
    assert_memory_equal(buf + below_at, &d->below, sizeof d->below);
    assert_memory_equal(buf + anom_at, &d->in_anomaly, sizeof d->in_anomaly);
    assert_memory_equal(buf + anom_at + sizeof d->in_anomaly, &d->since_red, sizeof d->since_red);
    print_message("episode at reading %d: in_anomaly %d, below %d\n", t, d->in_anomaly, d->below);
    assert_int_equal(load_recrc(buf, len, alt), 0);
    const int32_t anom_bad[] = {-196608, -1, (1 << 30) + 1, INT32_MAX},
                  below_bad[] = {-1, INT32_MAX};
    for (size_t i = 0; i < sizeof anom_bad / sizeof anom_bad[0]; i++) {
        memcpy(buf + anom_at, &anom_bad[i], 4);
        assert_int_equal(load_recrc(buf, len, alt), ERR_CORRUPT);
    }
    memcpy(buf + anom_at, &d->in_anomaly, 4);
    for (size_t i = 0; i < sizeof below_bad / sizeof below_bad[0]; i++) {
        memcpy(buf + below_at, &below_bad[i], 4);
        assert_int_equal(load_recrc(buf, len, alt), ERR_CORRUPT);
    }
    memcpy(buf + below_at, &d->below, 4);
    const int32_t long_episode = 1000;
    memcpy(buf + anom_at, &long_episode, 4);
    assert_int_equal(load_recrc(buf, len, alt), 0);
    assert_int_equal(detector_load(&e, alt, len), 0);
    for (int k = t + 1; k < t + 30; k++)
        step(e, x, k, 1, NULL, &r);
    detector_destroy(e);
    free(buf);
    free(alt);
    free(x);
    detector_destroy(d);
}

/* A linear version's parameters (detector_pred_save) install again with detector_set_pred:
 * the bytes round-trip, the kind and version serve; persistence's (no coefficients) too.
 * Corrupt, truncated and foreign bytes are refused and leave the detector as it was. */
static void test_pred_round_trip(void **unused)
{
    const int n = 1300, C = 4;
    float *x = make_process(n, 33);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.model_kind = DET_MODEL_LINEAR;
    detector_t *a = new_detector_cfg(&cfg, C), *fresh = new_detector_cfg(&cfg, C), *b;
    struct detector_result r;
    for (int t = 0; t < n; t++)
        step(a, x, t, C, NULL, &r);
    assert_int_equal(r.kind, DET_KIND_LINEAR);
    const uint32_t v = r.version;
    assert_true(v >= 1);

    size_t cap = detector_pred_size(a), len, plen;
    assert_int_equal(cap, 16 + 4 * (C * C + C) + 4);
    unsigned char *buf = malloc(cap), *again = malloc(cap), pers[64];
    assert_non_null(buf);
    assert_non_null(again);
    assert_int_equal(detector_pred_save(a, buf, cap - 1, &len), ERR_RANGE);
    assert_int_equal(detector_pred_save(a, buf, cap, &len), 0);
    assert_int_equal(len, cap);
    assert_int_equal(detector_pred_save(fresh, pers, sizeof pers, &plen), 0); /* persistence */
    assert_int_equal(plen, 20);
    enum detector_kind k;
    int ch;
    assert_int_equal(detector_pred_check(buf, len, &k, &ch), 0);
    assert_int_equal(k, DET_KIND_LINEAR);
    assert_int_equal(ch, C);

    /* b: a's twin, rolled to persistence (as version 9), then back to a's linear version. */
    size_t scap = detector_save_size(a), slen;
    unsigned char *sbuf = malloc(scap);
    assert_non_null(sbuf);
    assert_int_equal(detector_save(a, sbuf, scap, &slen), 0);
    assert_int_equal(detector_load(&b, sbuf, slen), 0);
    assert_int_equal(detector_set_pred(b, pers, plen, 9, &k), 0);
    assert_int_equal(k, DET_KIND_PERSISTENCE);
    assert_int_equal(detector_pred_size(b), 20);
    step(b, x, n - 1, C, NULL, &r);
    assert_int_equal(r.kind, DET_KIND_PERSISTENCE);
    assert_int_equal(r.version, 9);
    assert_int_equal(detector_set_pred(b, buf, len, v, &k), 0);
    assert_int_equal(k, DET_KIND_LINEAR);
    assert_int_equal(detector_pred_save(b, again, cap, &len), 0);
    assert_memory_equal(again, buf, cap); /* the same coefficients */
    step(b, x, n - 1, C, NULL, &r);
    assert_int_equal(r.kind, DET_KIND_LINEAR);
    assert_int_equal(r.version, v);

    /* Refused: truncated, every byte flipped in turn, another channel count. b unchanged. */
    for (size_t cut = 0; cut < cap; cut++)
        assert_int_equal(detector_set_pred(b, buf, cut, 3, NULL), ERR_CORRUPT);
    assert_int_equal(detector_set_pred(b, NULL, cap, 3, NULL), ERR_CORRUPT);
    for (size_t at = 0; at < cap; at++) {
        buf[at] ^= 0x01;
        assert_int_equal(detector_set_pred(b, buf, cap, 3, NULL), ERR_CORRUPT);
        buf[at] ^= 0x01;
    }
    detector_t *other = new_detector_cfg(&cfg, C + 1);
    assert_int_equal(detector_set_pred(other, buf, cap, 3, NULL), ERR_INVAL);
    assert_int_equal(detector_pred_save(b, again, cap, &len), 0);
    assert_memory_equal(again, buf, cap);
    step(b, x, n - 1, C, NULL, &r);
    assert_int_equal(r.kind, DET_KIND_LINEAR);
    assert_int_equal(r.version, v);

    detector_destroy(other);
    detector_destroy(b);
    detector_destroy(fresh);
    detector_destroy(a);
    free(sbuf);
    free(again);
    free(buf);
    free(x);
}

/* A format-8 save (before model_kind) loads, as DET_MODEL_AUTO, and continues bit for bit as
 * the saved detector (model_kind auto) would have, through a training. */
static void test_load_format8(void **unused)
{
    enum { N = 1400, C = 4, CUT = 700 };
    float *x = make_linear(N, 78);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.train.max_epochs = 4;
    cfg.warm_epochs = 2;
    config_as_format(&cfg, offsetof(struct detector_config, model_kind));
    detector_t *a = new_detector_cfg(&cfg, C), *b;
    struct detector_result ra, rb;
    for (int t = 0; t < CUT; t++)
        step(a, x, t, C, NULL, &ra);
    size_t len = detector_save_size(a), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(a, buf, len, &got), 0);
    assert_int_equal(got, len);
    /* Format 8: the config ends before model_kind; where model_kind took format 8's tail
     * padding (the configs are then the same size), junk there: format 8 must not read it. */
    cut_to_format(buf, &len, offsetof(struct detector_config, model_kind), 99, 8);
    assert_int_equal(detector_load(&b, buf, len), 0);
    /* The same bytes claiming format 9: a config cut short, or the junk as model_kind (not a
     * kind): not loaded either way. */
    as_format6(buf, &len, 9);
    detector_t *c = NULL;
    assert_int_not_equal(detector_load(&c, buf, len), 0);
    for (int t = CUT; t < N; t++) {
        step(a, x, t, C, NULL, &ra);
        step(b, x, t, C, NULL, &rb);
        assert_same_result(&ra, &rb, C);
    }
    detector_destroy(a);
    detector_destroy(b);
    free(buf);
    free(x);
}

/* Feeds readings [from, to) of x to d, running every training it asks for on the readings so
 * far; returns the trainings run. */
static int feed_training(detector_t *d, const float *x, int C, int from, int to,
                         struct detector_result *res)
{
    int trained = 0;
    for (int t = from; t < to; t++) {
        assert_int_equal(detector_step_ts(d, (int64_t)t * 1000, x + (size_t)C * t, NULL, res), 0);
        if (!res->want_train)
            continue;
        struct detector_train_info info;
        train_on(d, x, t + 1, &info);
        trained++;
    }
    return trained;
}

/* detector_apply_settings: a detector saved with model_kind auto (serving the linear baseline,
 * which wins on this process) and restored with model_kind lstm serves an LSTM after its next
 * training, and retrains on the new retrain_every; the same save restored without the call
 * keeps auto (linear) and the old schedule. Out-of-range settings change nothing. */
static void test_apply_settings(void **unused)
{
    enum { N = 1800, C = 4, CUT = 700 };
    float *x = make_linear(N, 79);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.train.max_epochs = 4;
    cfg.warm_epochs = 2;
    detector_t *a = new_detector_cfg(&cfg, C), *b, *c;
    struct detector_result ra, rb, rc;
    assert_int_equal(feed_training(a, x, C, 0, CUT, &ra), 1); /* the first training, at 200 */
    assert_int_equal(ra.kind, DET_KIND_LINEAR);
    size_t len = detector_save_size(a), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(a, buf, len, &got), 0);
    assert_int_equal(detector_load(&b, buf, len), 0);
    assert_int_equal(detector_load(&c, buf, len), 0);
    struct detector_config live = cfg;
    live.model_kind = 7; /* not a kind */
    assert_int_equal(detector_apply_settings(b, &live), ERR_INVAL);
    live.model_kind = DET_MODEL_LSTM;
    live.retrain_every = 300;
    assert_int_equal(detector_apply_settings(b, &live), 0);
    /* Due at reading 1,200 (the old schedule's point stays), then every 300: 1,500, 1,800. */
    assert_int_equal(feed_training(b, x, C, CUT, N, &rb), 3);
    assert_int_equal(rb.kind, DET_KIND_LSTM);
    assert_non_null(detector_model(b));
    assert_int_equal(feed_training(c, x, C, CUT, N, &rc), 1); /* 1,200 only */
    assert_int_equal(rc.kind, DET_KIND_LINEAR);
    assert_null(detector_model(c));
    detector_destroy(a);
    detector_destroy(b);
    detector_destroy(c);
    free(buf);
    free(x);
}

/* A format-47 save (no trip_level, no trip bit) loads with trip_level 0, as it ran; the daemon
 * then applies the running configuration to it (detector_apply_settings, daemon/
 * pipeline_store.c), so a device saved before the upgrade takes the running trip_level (the
 * default 0.8) and, from the load on, runs bit for bit as a detector that had it all along:
 * test_load_format47's burst (seed 2, +0.8 at 1,400, cut at 1,350) is a one-reading anomaly
 * opened by the error, which the same save loaded without the call does not report (review of
 * session 47's trip). */
static void test_load_format47_running(void **unused)
{
    (void)unused;
    enum { N = 1500, CUT = 1350 };
    float x[N];
    make_trip_burst(x, N, 2, 0.8f);
    struct detector_config cfg;
    detector_config_default(&cfg);
    detector_t *a = new_detector_cfg(&cfg, 1), *b, *c;
    struct detector_result ra, rb, rc;
    for (int t = 0; t < CUT; t++)
        step(a, x, t, 1, NULL, &ra);
    size_t len = detector_save_size(a), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(a, buf, len, &got), 0);
    cut_to_format(buf, &len, offsetof(struct detector_config, trip_level), -1, 47);
    assert_int_equal(detector_load(&b, buf, len), 0);
    assert_int_equal(detector_load(&c, buf, len), 0);
    assert_true(b->cfg.trip_level == 0.0f);
    assert_int_equal(detector_apply_settings(b, &cfg), 0);
    assert_true(b->cfg.trip_level == 0.8f);
    int trips = 0, flagged_c = 0;
    for (int t = CUT; t < N; t++) {
        step(a, x, t, 1, NULL, &ra);
        step(b, x, t, 1, NULL, &rb);
        step(c, x, t, 1, NULL, &rc);
        assert_same_result(&ra, &rb, 1);
        trips += rb.opened_by == DET_OPEN_ERROR && b->det_state != DET_ANOMALY;
        flagged_c += rc.is_anomaly;
    }
    assert_true(trips >= 1);
    assert_int_equal(flagged_c, 0);
    detector_destroy(a);
    detector_destroy(b);
    detector_destroy(c);
    free(buf);
}

/* ---- session 56: a saved shape too big for its blob is refused before it is allocated ---- */

/* Under failalloc.c (VIGIL_FAILALLOC_FLAG and LD_PRELOAD set): with floor > 0, allocations of
 * floor bytes and more on this thread fail until fail_big(0); else nothing. Returns whether it
 * is preloaded. */
static int fail_big(size_t floor)
{
    const char *flag = getenv("VIGIL_FAILALLOC_FLAG");
    if (flag == NULL || getenv("LD_PRELOAD") == NULL)
        return 0;
    if (floor == 0) {
        unlink(flag);
        return 1;
    }
    char text[32];
    snprintf(text, sizeof text, "%zu\n", floor);
    assert_int_equal(test_write_atomic(flag, text), 0);
    return 1;
}

/* A save of a fresh 1-channel detector with its config's shape rewritten to hidden 2048 x 3
 * layers (the CRC redone): the blob holds the state of its own small shape, not the 2 x 12,289
 * floats (98 KB) of the claimed one, and is refused as corrupt. detector_create made a model of
 * the shape (about 400 MB) before load read the state until session 56; load now checks the
 * blob's length against the state first and detector_create makes no model. Run under
 * tests/fault/failalloc.c (ctest unit_detector_failalloc: this test alone, every allocation of
 * 4 KiB or more on this thread failing while the flag exists) it shows the load allocating nothing
 * for the shape: main's load returned ERR_NOMEM there (its throw-away model, about 400 MB), and
 * a load without the length check would too (detector_create's block for the shape: its state
 * and work buffers, about 200 KB). The detector of the shape is then made with allocations of
 * 1 MiB and more failing. Without the preload the refusal alone is checked. */
static void test_load_big_shape_refused(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    detector_t *a = new_detector_cfg(&cfg, 1), *b = NULL;
    size_t len = detector_save_size(a), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(a, buf, len, &got), 0);
    detector_destroy(a);
    const size_t cfg_at = 12; /* magic, format, C */
    const int hidden = 2048, layers = 3;
    memcpy(buf + cfg_at + offsetof(struct detector_config, n_hidden), &hidden, sizeof hidden);
    memcpy(buf + cfg_at + offsetof(struct detector_config, n_layers), &layers, sizeof layers);
    uint32_t crc = model__crc32(0, buf, got - 4);
    memcpy(buf + got - 4, &crc, 4);
    const size_t state = 2 * sizeof(float) * (1 + 2 * (size_t)layers * hidden);
    assert_true(got < state); /* the claimed state alone does not fit in it */
    const int preload = fail_big(4096);
    const int rc = detector_load(&b, buf, got);
    fail_big(0);
    print_message("a %zu-byte blob claiming hidden %d x %d layers: %d (%s)%s\n", got, hidden,
                  layers, rc, err_str(rc),
                  preload ? ", allocations of 4 KiB and more failing" : "");
    assert_int_equal(rc, ERR_CORRUPT);
    assert_null(b);
    /* The shape itself is valid: a detector of it is made, without a model of it. */
    cfg.n_hidden = hidden;
    cfg.n_layers = layers;
    fail_big(1 << 20);
    const int made = detector_create(&a, &cfg, 1);
    fail_big(0);
    assert_int_equal(made, 0);
    detector_destroy(a);
    free(buf);
}

/* tests/fuzz/fuzz_detector's find (session 62): a saved count of readings near 2^64, its kept
 * onsets just below it, loaded, then scored: keeps_schedule cast the counts to int64 and took
 * the gap between two of opposite signs (a signed overflow UBSan reports). A count past 2^62 is
 * refused; 2^62, the onsets just below, loads and scores. A reading's timestamp past 2^62 ms
 * is onset_rhythm's clock at 2^62 - 1, the bound a kept onset's timestamp loads within. Then
 * the warning run's count (the fuzzer's second find) and the counts the second reader found
 * with a lower bound only (ring_since_resum, since_red), each refused past its bound. */
static void test_counts_bounded(void **unused)
{
    (void)unused;
    int at[RH_SPIKES];
    float *x;
    detector_t *d = after_sixth_spike(&x, at), *b = NULL;
    struct detector_result r;
    const int n = d->rh_n;
    assert_true(n >= 3);
    const uint64_t seen = d->n_seen, top = (uint64_t)1 << 62;
    const uint64_t counts[] = {UINT64_MAX - 1, top + 1, top};
    size_t len = detector_save_size(d), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    for (size_t k = 0; k < 3; k++) {
        const uint64_t by = counts[k] - seen;
        d->n_seen += by;
        for (int i = 0; i < n; i++)
            d->rh_at[i] += by;
        assert_int_equal(detector_save(d, buf, len, &got), 0);
        const int rc = detector_load(&b, buf, got);
        print_message("n_seen %llu: load %d\n", (unsigned long long)counts[k], rc);
        assert_int_equal(rc, counts[k] > top ? ERR_CORRUPT : 0);
        for (int t = at[5] + 21; b != NULL && t < at[7] + 20; t++)
            step(b, x, t, 1, NULL, &r); /* through the next two onsets */
        detector_destroy(b);
        b = NULL;
        d->n_seen -= by;
        for (int i = 0; i < n; i++)
            d->rh_at[i] -= by;
    }
    /* The fuzzer's second find: a warning's run of 2^30 readings, all beyond, overflowed
     * warn_run_open's 2 * run_out (int). A run past 2^30 readings is refused; one of 2^30 loads
     * and scores (a sanitizer build reports the overflow). */
    const int run_n = d->run_n, run_out = d->run_out;
    const double run_sum = d->run_sum;
    for (int k = 0; k < 2; k++) {
        d->run_n = (1 << 30) + (k == 0);
        d->run_out = 1 << 30;
        d->run_sum = (double)(1 << 30);
        assert_int_equal(detector_save(d, buf, len, &got), 0);
        const int rc = detector_load(&b, buf, got);
        print_message("run_n %d: load %d\n", d->run_n, rc);
        assert_int_equal(rc, k == 0 ? ERR_CORRUPT : 0);
        for (int t = at[5] + 21; b != NULL && t < at[5] + 30; t++)
            step(b, x, t, 1, NULL, &r);
        detector_destroy(b);
        b = NULL;
    }
    d->run_n = run_n;
    d->run_out = run_out;
    d->run_sum = run_sum;
    const float v = 0.0f;
    assert_int_equal(detector_step_ts(d, INT64_MAX, &v, NULL, &r), 0);
    assert_true(d->rh_now == (int64_t)top - 1);
    assert_int_equal(detector_step_ts(d, INT64_MIN + 1, &v, NULL, &r), 0);
    assert_true(d->rh_now == -(int64_t)top + 1);
    /* The second reader's finds (session 62): counts with a lower bound only at load. The long
     * window's readings since its sums were redone (live below err_window; INT_MAX overflowed
     * its ++) and the readings since the last red (live within [0, 2^30]; negative made
     * onset_rank's discount negative). */
    int *const field[] = {&d->ring_since_resum, &d->ring_since_resum, &d->since_red, &d->since_red};
    const int bad[] = {d->cfg.err_window + 1, INT32_MAX, -1, (1 << 30) + 1};
    for (size_t k = 0; k < 4; k++) {
        const int keep = *field[k];
        *field[k] = bad[k];
        assert_int_equal(detector_save(d, buf, len, &got), 0);
        const int rc = detector_load(&b, buf, got);
        print_message("count %zu at %d: load %d\n", k, bad[k], rc);
        assert_int_equal(rc, ERR_CORRUPT);
        *field[k] = keep;
    }
    assert_int_equal(detector_save(d, buf, len, &got), 0);
    assert_int_equal(detector_load(&b, buf, got), 0);
    detector_destroy(b);
    free(buf);
    free(x);
    detector_destroy(d);
}

/* Saves d into buf and loads it back, wanting want; the loaded copy (NULL on a refusal). */
static detector_t *save_load_rc(detector_t *d, unsigned char *buf, size_t len, int want)
{
    size_t got;
    detector_t *b = NULL;
    assert_int_equal(detector_save(d, buf, len, &got), 0);
    assert_int_equal(detector_load(&b, buf, got), want);
    return b;
}

/* fuzz_detector's scored round trip (session 63): a saved state whose err_corr weights were
 * infinite (every raw score after the load infinite), whose short window's running sum was NaN
 * (every short mean NaN, pushed to the long window), or whose context held a NaN (range_quiet's
 * range took it), loaded, scored, and left a state the next load refuses. The loader refuses
 * weights that are not finite and window entries out of the range the step writes; it redoes a
 * running sum far from its entries' (derived), and keeps one within rounding of them as saved (a
 * restart scores bit for bit). */
static void test_windows_bounded(void **unused)
{
    (void)unused;
    const int n = 1300, C = 4;
    float *x = make_process(n, 21);
    detector_t *d = new_detector(C);
    struct detector_result r;
    for (int t = 0; t < n; t++)
        step(d, x, t, C, NULL, &r);
    assert_true(d->cfg.err_corr && d->short_len > 1 && d->ring_len > 1);
    const size_t len = detector_save_size(d);
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    detector_destroy(save_load_rc(d, buf, len, 0));
    struct {
        float *at, v;
        int want;
    } cases[] = {
        {&d->shortbuf[0], INFINITY, ERR_CORRUPT},
        {&d->shortbuf[0], NAN, ERR_CORRUPT},
        {&d->shortbuf[0], -1.0f, ERR_CORRUPT},
        {&d->shortbuf[0], 1001.0f, ERR_CORRUPT},
        {&d->ring[0], INFINITY, ERR_CORRUPT},
        {&d->ring[0], NAN, ERR_CORRUPT},
        {&d->ring[0], -1e4f, ERR_CORRUPT},
        {&d->ring[0], -1e-6f, 0}, /* rounding's */
        {&d->rinv[1], INFINITY, ERR_CORRUPT},
        {&d->rinv[1], NAN, ERR_CORRUPT},
        {&d->rinv[1], -1.0f, 0}, /* off the diagonal, a weight may be negative */
        {&d->ctx[0], NAN, ERR_CORRUPT},
        {&d->ctx[1], -INFINITY, ERR_CORRUPT},
        {&d->last[0], NAN, ERR_CORRUPT},
        {&d->ctx[1], -3e38f, 0}, /* a reading */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const float keep = *cases[k].at;
        const double ssum = d->short_sum, rsum = d->ring_sum, rsq = d->ring_sumsq;
        *cases[k].at = cases[k].v;
        if (cases[k].at == &d->ring[0]) { /* the sums as the step would keep them */
            d->ring_sum += (double)cases[k].v - keep;
            d->ring_sumsq += (double)cases[k].v * cases[k].v - (double)keep * keep;
        }
        print_message("case %zu: %g\n", k, (double)cases[k].v);
        detector_destroy(save_load_rc(d, buf, len, cases[k].want));
        *cases[k].at = keep;
        d->short_sum = ssum, d->ring_sum = rsum, d->ring_sumsq = rsq;
    }
    /* A window not yet full is filled in order: its head at its length, or refused; and it has
     * no record yet (the record counts readings that left the full window). */
    const int slen = d->short_len, shead = d->short_head, rec_n = d->rec_n;
    assert_int_equal(slen, d->cfg.err_short);
    assert_true(rec_n > 0);
    d->short_len = slen - 1;
    d->short_head = 0; /* past its length: the slot at slen - 1 never written */
    d->rec_n = 0;
    detector_destroy(save_load_rc(d, buf, len, ERR_CORRUPT));
    d->short_head = slen - 1;
    detector_destroy(save_load_rc(d, buf, len, 0));
    d->rec_n = rec_n;
    detector_destroy(save_load_rc(d, buf, len, ERR_CORRUPT));
    d->short_len = slen, d->short_head = shead;
    /* Running sums: NaN and far off redone from the entries, within rounding kept as saved. */
    double exact = 0.0;
    for (int k = 0; k < d->short_len; k++)
        exact += d->shortbuf[k];
    const double ssum = d->short_sum, sums[] = {NAN, 1e300, exact + 0.5, exact + 1e-6};
    for (size_t k = 0; k < 4; k++) {
        d->short_sum = sums[k];
        detector_t *b = save_load_rc(d, buf, len, 0);
        assert_true(b->short_sum == (k < 3 ? exact : sums[k]));
        for (int t = 0; t < 30; t++) /* scored, it saves and loads back */
            step(b, x, n - 30 + t, C, NULL, &r);
        detector_destroy(save_load_rc(b, buf, len, 0));
        detector_destroy(b);
    }
    d->short_sum = ssum;
    /* The long window's sums likewise: NaN and far off redone from its entries. */
    double rs = 0.0, rq = 0.0;
    for (int k = 0; k < d->ring_len; k++)
        rs += d->ring[k], rq += (double)d->ring[k] * d->ring[k];
    const double rsum = d->ring_sum, rsq = d->ring_sumsq;
    d->ring_sum = NAN, d->ring_sumsq = rq + 1e6;
    detector_t *b = save_load_rc(d, buf, len, 0);
    assert_true(b->ring_sum == rs && b->ring_sumsq == rq);
    detector_destroy(b);
    d->ring_sum = rsum, d->ring_sumsq = rsq;
    detector_destroy(save_load_rc(d, buf, len, 0));
    free(buf);
    free(x);
    detector_destroy(d);
}

/* The likelihood levels in [0, 1] and clear_count at most 2^30 (session 63's read of the loader:
 * a negative alarm level made a warning's run sum negative, and a clear_count past 2^30 let
 * `below` count past its load bound: states the next load refuses). */
static void test_levels_bounded(void **unused)
{
    (void)unused;
    struct detector_config base, c;
    detector_config_default(&base);
    const struct {
        float alarm, warn, clear;
        int clear_count, ok;
    } cases[] = {
        {1.0f, 0.0f, 0.0f, 1 << 30, 1}, {-0.1f, -0.2f, -0.2f, 1, 0},
        {0.45f, -0.1f, 0.35f, 1, 0},    {0.45f, 0.35f, -0.1f, 1, 0},
        {1.01f, 0.35f, 0.35f, 1, 0},    {0.45f, 0.35f, 0.35f, (1 << 30) + 1, 0},
        {0.45f, NAN, 0.35f, 1, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        detector_t *d = NULL;
        c = base;
        c.alarm_level = cases[k].alarm;
        c.warn_level = cases[k].warn;
        c.clear_level = cases[k].clear;
        c.clear_count = cases[k].clear_count;
        const int rc = detector_create(&d, &c, 2);
        print_message("levels case %zu: %d\n", k, rc);
        assert_true(cases[k].ok ? rc == 0 : rc != 0);
        detector_destroy(d);
    }
}

/* A sensor's "invalid" values near +-FLT_MAX among a one-channel device's readings, -3e38 just
 * after 3e38 (session 63's second reader): the calibration's floor of the error and level
 * scales took the RMS of one-step changes, whose float difference overflowed to infinity, and
 * the loader refuses an infinite scale: the device's detector was dropped at every restart.
 * Each saved state loads back now. */
static void test_extreme_readings_saved(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.warmup = 200, cfg.history = 600, cfg.retrain_every = 400;
    cfg.model_kind = DET_MODEL_LINEAR;
    const int n = 1800;
    float *x = malloc(sizeof(float) * n);
    assert_non_null(x);
    uint64_t rs = 63;
    for (int t = 0; t < n; t++) {
        const uint64_t u = rng_next(&rs);
        x[t] = t % 97 == 0 ? 3e38f : t % 97 == 1 ? -3e38f : (float)sin(t * 0.05) + 0.01f * (u % 10);
    }
    detector_t *d = new_detector_cfg(&cfg, 1), *b;
    struct detector_result r;
    int loads = 0;
    for (int t = 0; t < n; t++) {
        step(d, x, t, 1, NULL, &r);
        if (t >= 200 && t % 50 == 0) {
            b = reloaded(d); /* fails the test if the save does not load */
            detector_destroy(b);
            loads++;
        }
    }
    assert_true(loads > 20 && d->version > 0);
    free(x);
    detector_destroy(d);
}

const struct CMUnitTest detector_io_tests[] = {
    cmocka_unit_test(test_save_load),
    cmocka_unit_test(test_load_format3),
    cmocka_unit_test(test_load_format5),
    cmocka_unit_test(test_rhythm_state_refused),
    cmocka_unit_test(test_episode_counts_refused),
    cmocka_unit_test(test_pred_round_trip),
    cmocka_unit_test(test_load_format8),
    cmocka_unit_test(test_apply_settings),
    cmocka_unit_test(test_load_format47_running),
    cmocka_unit_test(test_load_big_shape_refused),
    cmocka_unit_test(test_counts_bounded),
    cmocka_unit_test(test_windows_bounded),
    cmocka_unit_test(test_levels_bounded),
    cmocka_unit_test(test_extreme_readings_saved),
};
const size_t detector_io_count = sizeof detector_io_tests / sizeof detector_io_tests[0];

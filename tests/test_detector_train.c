/* tests/test_detector_train.c: unit tests of training jobs (model/detector_train.c): the warm
 * start, a worse job not swapped, retrain_seconds, batched steps, extrapolation, coupled errors
 * counted once, serving_f16, and a scheduled training put off inside a held episode
 * (detector_train_put_off), and the LSTM's minimum rows. Part of test_detector:
 * tests/test_detector.c runs them, in the order of the single file they were moved from; the
 * fixtures shared with the other parts are in tests/test_detector_fx.c. */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "detector.h"
#include "err.h"
#include "test_detector_fx.h"

/* A cubed sine: a nonlinear cycle that neither persistence nor the linear baseline follows. */
static float *make_cubic(int n)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    assert_non_null(x);
    uint64_t s = 13;
    for (int t = 0; t < n; t++) {
        double v = sin(2.0 * 3.14159265358979 * t / 25.0);
        x[t] = (float)(v * v * v + 0.01 * gauss(&s));
    }
    return x;
}

/* The good model for a serving LSTM: trained directly with the engine on x[n]. Caller owns
 * the result (model_destroy). */
static model_t *train_good(const struct detector_config *cfg, const float *x, int n)
{
    struct model_config mc;
    model_config_default(&mc, 1, 1);
    mc.n_hidden = cfg->n_hidden;
    mc.n_layers = cfg->n_layers;
    model_t *base, *good;
    assert_int_equal(model_create(&base, &mc), 0);
    struct model_train_config tc;
    model_train_config_default(&tc);
    tc.window = 32;
    tc.max_epochs = 60;
    tc.lr = 1e-2f;
    tc.patience = 0;
    tc.val_fraction = 0.0f;
    assert_int_equal(model_train(&good, base, &tc, x, (size_t)n, NULL), 0);
    model_destroy(base);
    return good;
}

/* A one-channel detector on cfg (the defaults, but max_epochs `max_epochs` at a rate too small
 * to move the weights, warm_epochs `warm_epochs`, no retraining by count, an LSTM on any number
 * of rows) that has stepped through x[n] and serves train_good's LSTM as version 7. The caller
 * owns *d (detector_destroy) and *good (model_destroy). */
static void serve_good(detector_t **d, model_t **good, struct detector_config *cfg, int max_epochs,
                       int warm_epochs, const float *x, int n)
{
    detector_config_default(cfg);
    cfg->train.max_epochs = max_epochs;
    cfg->train.lr = 1e-7f;
    cfg->retrain_every = 0;
    cfg->warm_epochs = warm_epochs;
    cfg->lstm_min_rows = 0; /* the LSTM trains on 800 rows of one channel */
    assert_int_equal(detector_create(d, cfg, 1), 0);
    struct detector_result res;
    for (int t = 0; t < n; t++)
        assert_int_equal(detector_step(*d, x + t, NULL, &res), 0);
    *good = train_good(cfg, x, n);
    assert_int_equal(detector_set_model(*d, *good, 7), 0);
}

/* A training job (one epoch at a rate too small to move the weights) while a well-trained
 * LSTM serves: its candidate validates as the serving LSTM does when it starts from the
 * serving weights (warm_epochs), and far worse when it starts afresh. */
static double warm_candidate_cost(int warm_epochs, double *serving, int *epochs)
{
    const int n = 1200;
    float *x = make_cubic(n);
    struct detector_config cfg;
    detector_t *d;
    model_t *good;
    serve_good(&d, &good, &cfg, 60, warm_epochs, x, n);
    struct detector_train_info info;
    train_on(d, x, n, &info);
    *serving = info.val_mse_serving;
    *epochs = info.epochs;
    model_destroy(good);
    detector_destroy(d);
    free(x);
    return info.val_mse_lstm;
}

static void test_warm_start(void **unused)
{
    double serving_w, serving_c;
    int epochs_w, epochs_c;
    double warm = warm_candidate_cost(1, &serving_w, &epochs_w);
    double cold = warm_candidate_cost(0, &serving_c, &epochs_c);
    print_message("serving %.4f, warm-started candidate %.4f (%d epochs), fresh %.4f (%d)\n",
                  serving_w, warm, epochs_w, cold, epochs_c);
    assert_int_equal(epochs_w, 1);
    assert_true(epochs_c > 1);
    assert_true(fabs(warm - serving_w) <= 0.1 * serving_w);
    assert_true(cold > 2.0 * serving_c);
}

/* A serving LSTM trained well; a job whose settings cannot train (one epoch at a tiny rate,
 * starting afresh) validates worse and must not be swapped in: version and weights stay. */
static void test_worse_job_not_swapped(void **unused)
{
    const int n = 1200;
    float *x = make_cubic(n);
    struct detector_config cfg;
    detector_t *d;
    model_t *good;
    serve_good(&d, &good, &cfg, 1, 0, x, n);

    detector_job_t *job;
    assert_int_equal(detector_job_create(&job, d), 0);
    assert_int_equal(detector_job_run(job), ERR_INVAL); /* no window given yet */
    assert_int_equal(detector_job_set_data(job, x, cfg.warmup - 1), ERR_RANGE);
    assert_int_equal(detector_job_set_data(job, x, n), 0);
    assert_int_equal(detector_job_run(job), 0);
    struct detector_train_info info;
    assert_int_equal(detector_job_apply(d, job, &info), 0);
    detector_job_destroy(job);
    print_message("serving %.4f, lstm %.4f, linear %.4f, persistence %.4f\n", info.val_mse_serving,
                  info.val_mse_lstm, info.val_mse_linear, info.val_mse_persistence);
    assert_int_equal(info.swapped, 0);
    assert_true(info.version > 7);
    assert_true(info.val_mse_serving < info.val_mse_lstm);
    assert_true(info.val_mse_serving < info.val_mse_linear);
    assert_true(info.val_mse_serving < info.val_mse_persistence);
    assert_int_equal(info.kind, DET_KIND_LSTM);
    struct detector_result res;
    assert_int_equal(detector_step(d, x, NULL, &res), 0);
    assert_int_equal(res.version, 7);

    /* The serving weights are the installed ones. */
    size_t na = model_checkpoint_size(good), nb = model_checkpoint_size(detector_model(d)), la, lb;
    assert_int_equal(na, nb);
    unsigned char *ba = malloc(na), *bb = malloc(nb);
    assert_non_null(ba);
    assert_non_null(bb);
    assert_int_equal(model_checkpoint_save(good, ba, na, &la), 0);
    assert_int_equal(model_checkpoint_save(detector_model(d), bb, nb, &lb), 0);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
    model_destroy(good);
    detector_destroy(d);
    free(x);
}

/* retrain_seconds across a clock stepped back an hour 30 readings after a training: with the
 * detector's times moved by the step (detector_shift_time, as vigild does when the readings
 * become the device's new timeline) the next ask comes 60 readings after the training, as
 * without a step; unmoved, the schedule starts again at the step (90). */
static void test_retrain_seconds_clock_step(void **unused)
{
    (void)unused;
    const int C = 4, n = 400;
    float *x = make_process(n, 17);
    for (int shifted = 0; shifted <= 1; shifted++) {
        struct detector_config cfg;
        detector_config_default(&cfg);
        cfg.retrain_every = 0;
        cfg.retrain_seconds = 60;
        detector_t *d = new_detector_cfg(&cfg, C);
        struct detector_result res;
        int trained_at = -1, asked_at = -1;
        int64_t ts = 1700000000000LL;
        for (int t = 0; t < n && asked_at < 0; t++, ts += 1000) {
            if (trained_at >= 0 && t == trained_at + 30) {
                ts -= 3600000;
                if (shifted)
                    assert_int_equal(detector_shift_time(d, -3600000), 0);
            }
            assert_int_equal(detector_step_ts(d, ts, x + (size_t)C * t, NULL, &res), 0);
            if (!res.want_train)
                continue;
            if (trained_at < 0) {
                train_on(d, x, t + 1, NULL);
                trained_at = t;
            } else {
                asked_at = t;
            }
        }
        assert_true(trained_at >= 0);
        assert_int_equal(asked_at - trained_at, shifted ? 60 : 90);
        detector_destroy(d);
    }
    assert_int_equal(detector_shift_time(NULL, 1), ERR_INVAL);
    free(x);
}

/* retrain_seconds: with retrain_every 0, a serving detector asks for training when its
 * readings' timestamps have advanced retrain_seconds since the last training: after 60
 * readings 1 s apart, after 6 readings 10 s apart; never for readings without a time. */
static void test_retrain_seconds(void **unused)
{
    const int C = 4, n = 900;
    float *x = make_process(n, 17);
    for (int gap_s = 1; gap_s <= 10; gap_s += 9) {
        struct detector_config cfg;
        detector_config_default(&cfg);
        cfg.retrain_every = 0;
        cfg.retrain_seconds = 60;
        detector_t *d = new_detector_cfg(&cfg, C);
        struct detector_result res;
        int t = 0, trained_at = -1, asks = 0, last_ask = -1;
        for (; t < n; t++) {
            int64_t ts = 1700000000000LL + (int64_t)t * gap_s * 1000;
            assert_int_equal(detector_step_ts(d, ts, x + (size_t)C * t, NULL, &res), 0);
            if (!res.want_train)
                continue;
            if (trained_at >= 0) { /* a time-scheduled ask */
                asks++;
                assert_int_equal(t - (last_ask >= 0 ? last_ask : trained_at), 60 / gap_s);
                last_ask = t;
                if (asks == 3)
                    break;
                continue; /* not trained: it asks again a period later */
            }
            train_on(d, x, t + 1, NULL);
            trained_at = t;
        }
        assert_int_equal(asks, 3);
        detector_destroy(d);
    }
    /* Without timestamps the time schedule never fires (retrain_every 0: no count schedule
     * either, beyond the warm-up's). */
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.retrain_every = 0;
    cfg.retrain_seconds = 1;
    detector_t *d = new_detector_cfg(&cfg, C);
    struct detector_result res;
    int wants = 0;
    for (int t = 0; t < 600; t++) {
        assert_int_equal(detector_step(d, x + (size_t)C * t, NULL, &res), 0);
        if (res.want_train && detector_get_state(d) == DET_LEARNING) {
            train_on(d, x, t + 1, NULL);
        } else {
            wants += res.want_train;
        }
    }
    assert_int_equal(wants, 0);
    detector_destroy(d);
    free(x);
}

/* A group's batched step: three detectors serving copies of one LSTM, stepped together by
 * detector_step_batch (one batched model step), give what three single steps give, within
 * float rounding of the batched sgemm (1e-4 relative on predictions, 1e-3 on raw scores);
 * a detector of another version in the same batch advances alone and exactly, and so does one
 * serving another LSTM under the group's version number (a PUT of weights on each member, and
 * a group rollback to it, give each member its own LSTM under one number: the batch stepped
 * it with the first member's weights before). */
static void test_batch_step_matches_single(void **unused)
{
    const int n = 400, M = 5;
    float *x = make_cubic(n + 40);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.retrain_every = 0;
    struct model_config mc;
    model_config_default(&mc, 1, 1);
    mc.n_hidden = cfg.n_hidden;
    model_t *base, *m;
    assert_int_equal(model_create(&base, &mc), 0);
    struct model_train_config tc;
    model_train_config_default(&tc);
    tc.window = 32;
    tc.max_epochs = 5;
    tc.val_fraction = 0.0f;
    assert_int_equal(model_train(&m, base, &tc, x, (size_t)n, NULL), 0);
    detector_t *single[5], *batch[5];
    for (int i = 0; i < M; i++) {
        single[i] = new_detector_cfg(&cfg, 1);
        batch[i] = new_detector_cfg(&cfg, 1);
        /* Members start at different phases of the staggered states (i readings more). */
        struct detector_result r;
        for (int t = 0; t < 5 + 7 * i; t++) {
            assert_int_equal(detector_step(single[i], x + t, NULL, &r), 0);
            assert_int_equal(detector_step(batch[i], x + t, NULL, &r), 0);
        }
        uint32_t version = i == M - 1 ? 9 : 8;      /* the last one is not the group's version */
        const model_t *own = i == M - 2 ? base : m; /* the group's number, its own LSTM */
        assert_int_equal(detector_set_model(single[i], own, version), 0);
        assert_int_equal(detector_set_model(batch[i], own, version), 0);
    }
    float *work = malloc(sizeof(float) * detector_batch_work_len(batch[0], M));
    assert_non_null(work);
    for (int t = 40; t < n; t++) {
        float xs[5];
        int64_t ts[5];
        struct detector_result rs[5], rb[5];
        for (int i = 0; i < M; i++) {
            xs[i] = x[t - 3 * i] * (1.0f + 0.1f * (float)i);
            ts[i] = (int64_t)t * 1000;
            assert_int_equal(detector_step_ts(single[i], ts[i], &xs[i], NULL, &rs[i]), 0);
        }
        assert_int_equal(detector_step_batch(batch, M, ts, xs, NULL, rb, work), 0);
        for (int i = 0; i < M; i++) {
            if (i >= M - 2) { /* advanced alone: exactly the single step */
                assert_true(rs[i].pred[0] == rb[i].pred[0] && rs[i].raw == rb[i].raw);
            } else {
                assert_true(fabsf(rs[i].pred[0] - rb[i].pred[0]) <=
                            1e-4f * (1.0f + fabsf(rs[i].pred[0])));
                assert_true(fabsf(rs[i].raw - rb[i].raw) <= 1e-3f * (1.0f + rs[i].raw));
            }
            assert_int_equal(rs[i].state, rb[i].state);
            assert_int_equal(rs[i].version, rb[i].version);
        }
    }
    int64_t ts0 = 0;
    float x0 = 0.0f;
    struct detector_result r0;
    assert_int_equal(detector_step_batch(batch, 0, &ts0, &x0, NULL, &r0, work), ERR_INVAL);
    for (int i = 0; i < M; i++) {
        detector_destroy(single[i]);
        detector_destroy(batch[i]);
    }
    free(work);
    model_destroy(m);
    model_destroy(base);
    free(x);
}

/* Healthy anomalies (openings) of one pump (make_pump's pump m, vigil-sim's six default
 * channels) between its first training (reading 200) and its second (1,200), with the
 * defaults and the given extrap_weight. */
static int pump_first_model_alarms(int m, float w)
{
    enum { N = 1199, C = 6 }; /* speed, flow, pressure, current, temp, vib: PUMP_C's first six */
    float *x = make_pump(N, m), *y = malloc(sizeof(float) * C * N);
    assert_non_null(y);
    for (int t = 0; t < N; t++)
        memcpy(y + (size_t)C * t, x + (size_t)PUMP_C * t, sizeof(float) * C);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.extrap_weight = w;
    detector_t *d = new_detector_cfg(&cfg, C);
    struct detector_result res;
    int alarms = 0;
    for (int t = 0; t < N; t++) {
        step(d, y, t, C, NULL, &res);
        alarms += res.state == DET_ANOMALY && res.changed;
    }
    assert_int_equal(res.version, 1); /* the first model served throughout */
    detector_destroy(d);
    free(y);
    free(x);
    return alarms;
}

/* The raw score of reading t + 1 of x[, C] if its errors were exactly e[C]: d is cloned (a save
 * and load, which continues bit for bit), one clone reveals the prediction, another is given it
 * plus e. */
static float raw_of_errors(const detector_t *d, const float *x, int t, int C, const float *e)
{
    size_t len = detector_save_size(d), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(d, buf, len, &got), 0);
    detector_t *p, *q;
    assert_int_equal(detector_load(&p, buf, got), 0);
    assert_int_equal(detector_load(&q, buf, got), 0);
    struct detector_result res;
    assert_int_equal(detector_step_ts(p, (int64_t)(t + 1) * 1000, x + (size_t)C * t, NULL, &res),
                     0);
    float y[DETECTOR_MAX_CHANNELS];
    for (int c = 0; c < C; c++)
        y[c] = res.pred[c] + e[c];
    assert_int_equal(detector_step_ts(q, (int64_t)(t + 1) * 1000, y, NULL, &res), 0);
    detector_destroy(p);
    detector_destroy(q);
    free(buf);
    return res.raw;
}

/* One disturbance that coupled channels all follow counts once (err_corr, eighth round): a
 * plant whose channels 0 and 1 both follow one unpredictable disturbance (their one-step errors
 * correlate about 0.9) and whose channel 2 is independent, trained once its calibration tail is
 * whole (1,200 readings). An error of k on channels 0 and 1 together (the coupling the plant
 * shows) must score below an error of k * sqrt(2) on channel 0 alone, which the plain sum of
 * squared scaled errors scores the same (within the two scales' difference, a few per cent):
 * compared as the sums they are log1p of, with err_corr 0 (formats 1-6) the two are within
 * 10 % of each other, with the default the coupled one is below 0.8 of the other (about 0.7:
 * 2 / (1 + rho) against 1 / (1 + rho) + 1, the form's weights for rho about 0.9). An error against
 * the coupling (k and -k) is not excused: it scores at least as much as the lone one. */
static void coupled_raws(int err_corr, float *together, float *alone, float *against)
{
    enum { N = 1300, C = 3 };
    float *x = malloc(sizeof(float) * C * N);
    assert_non_null(x);
    uint64_t s = 4242;
    double u = 0.0, w = 0.0;
    for (int t = 0; t < N; t++) {
        u = 0.95 * u + gauss(&s);
        w = 0.9 * w + 0.5 * gauss(&s);
        x[C * t + 0] = (float)(10.0 + u + 0.3 * gauss(&s));
        x[C * t + 1] = (float)(20.0 + u + 0.3 * gauss(&s));
        x[C * t + 2] = (float)(5.0 + w);
    }
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.warmup = 1200;
    cfg.retrain_every = 0;
    cfg.err_corr = err_corr;
    detector_t *d = new_detector_cfg(&cfg, C);
    struct detector_result res;
    for (int t = 0; t < N - 1; t++)
        step(d, x, t, C, NULL, &res);
    assert_int_equal(res.version, 1);
    const float k = 4.0f;
    const float e1[C] = {k, k, 0.0f}, e2[C] = {k * 1.41421356f, 0.0f, 0.0f}, e3[C] = {k, -k, 0.0f};
    *together = raw_of_errors(d, x, N - 2, C, e1);
    *alone = raw_of_errors(d, x, N - 2, C, e2);
    *against = raw_of_errors(d, x, N - 2, C, e3);
    detector_destroy(d);
    free(x);
}

static void test_coupled_errors_count_once(void **unused)
{
    (void)unused;
    float tog0, alone0, ag0, tog, alone, ag;
    coupled_raws(0, &tog0, &alone0, &ag0);
    coupled_raws(1, &tog, &alone, &ag);
    print_message("raw score of a coupled error / a lone one / one against the coupling: "
                  "%.3f / %.3f / %.3f (err_corr 0: %.3f / %.3f / %.3f)\n",
                  tog, alone, ag, tog0, alone0, ag0);
    /* Compared as the quadratic forms q = C expm1(raw) the raw scores compress. */
    assert_true(fabs(expm1(tog0) - expm1(alone0)) < 0.1 * expm1(alone0)); /* plain sum: same */
    assert_true(expm1(tog) < 0.8 * expm1(alone));
    assert_true(ag >= alone);
}

/* A pump's first model, trained on its first 200 readings (speeds 0.75-0.95, a third of its
 * 600-reading cycle), meets speeds down to 0.55 from about reading 280: pressure is quadratic
 * in the flow and the current about cubic, so the linear baseline errs more the further the
 * pump leaves the range it was fitted on, and with extrap_weight 0 (formats 1-5) 5 of these 30
 * healthy pumps raised an anomaly (as 4 of vigil-sim's 30 did, docs/detection.md, "Seventh
 * round"). The default extrap_weight widens the error scales where the prediction
 * extrapolates: no pump alarms that did not before, and only pump 9 still does (its vibration
 * follows the speed, which is predicted by persistence there, and a persisted channel's
 * spread is not kept, so it never counts as out of range). */
static void test_extrapolation_first_model(void **unused)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    assert_true(cfg.extrap_weight > 0.0f);
    int now = 0, before = 0;
    for (int m = 0; m < 30; m++) {
        int a = pump_first_model_alarms(m, cfg.extrap_weight);
        int b = pump_first_model_alarms(m, 0.0f);
        if (a || b)
            print_message("pump %d: %d healthy anomalies (extrap_weight 0: %d)\n", m, a, b);
        assert_true(a <= b);
        now += a;
        before += b;
    }
    print_message("first models, 30 healthy pumps: %d anomalies (extrap_weight 0: %d)\n", now,
                  before);
    assert_true(before >= 4); /* the case: without the term these pumps alarm */
    assert_true(now <= 1);
}

/* A fault at an operating point the first model never saw is still flagged on its channel:
 * a linear plant (so the model's extrapolation is right) whose control channel ramps, with a
 * 50-reading ripple, from the range of its first 200 readings to 2-3 standard deviations
 * beyond it by reading 550, every channel following, so every channel's input is out of its
 * region and each channel's own excursion counts as extrapolation (as far as the others').
 * At reading 550 one output steps by 12 noise deviations, against the move or along it: the
 * step must be flagged within FAULT_LATENCY readings with that channel on top, at most 2
 * readings later than without the term, and nothing is flagged before it. */
static int ramp_fault_delay(float w, float step_by)
{
    enum { N = 600, C = 4, AT = 550, CH = 2 };
    const double pi = 3.14159265358979323846;
    float *x = malloc(sizeof(float) * C * N);
    assert_non_null(x);
    uint64_t s = 77;
    for (int t = 0; t < N; t++) {
        double u = 1.0 + 0.001 * t + 0.1 * sin(2 * pi * t / 50.0) + 0.01 * gauss(&s);
        x[C * t + 0] = (float)u;
        x[C * t + 1] = (float)(3.0 + 2.0 * u + 0.05 * gauss(&s));
        x[C * t + 2] = (float)(1.0 - 1.5 * u + 0.05 * gauss(&s));
        x[C * t + 3] = (float)(0.5 * x[C * t + 1] + u + 0.05 * gauss(&s));
        if (t >= AT)
            x[C * t + CH] += step_by;
    }
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.extrap_weight = w;
    detector_t *d = new_detector_cfg(&cfg, C);
    struct detector_result res;
    int early = 0, flagged = -1;
    for (int t = 0; t < N; t++) {
        step(d, x, t, C, NULL, &res);
        if (res.state != DET_ANOMALY || !res.changed)
            continue;
        if (t < AT)
            early++;
        else if (flagged < 0 && res.top_channel == CH)
            flagged = t;
    }
    print_message("extrap_weight %.1f, step %+.1f: %d anomalies before it, flagged %d readings "
                  "after it\n",
                  w, step_by, early, flagged < 0 ? -1 : flagged - AT);
    assert_int_equal(res.version, 1); /* the first model served throughout */
    assert_int_equal(early, 0);
    assert_true(flagged >= AT && flagged - AT <= FAULT_LATENCY);
    detector_destroy(d);
    free(x);
    return flagged - AT;
}

static void test_extrapolation_fault_flagged(void **unused)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    for (int k = 0; k < 2; k++) {
        const float by = k ? -0.6f : 0.6f;
        int with = ramp_fault_delay(cfg.extrap_weight, by), without = ramp_fault_delay(0.0f, by);
        assert_true(with <= without + 2);
    }
}

/* serving_f16: the LSTM a detector's own training installs serves in float16 (float32 with
 * serving_f16 0); a model given with detector_set_model serves as given (shared, float32 here),
 * a compact one too; a training that warm-starts from a compact serving model trains its
 * widened copy, and an LSTM it installs is float16; save/load keeps the float16 model and
 * continues bit for bit; a format-6 save loads with serving_f16 0. */
static void test_serving_f16(void **unused)
{
    const int n = 1200;
    float *x = make_cubic(n);
    struct detector_config cfg;
    detector_config_default(&cfg);
    assert_int_equal(cfg.serving_f16, 1);
    cfg.retrain_every = 0;
    cfg.warm_epochs = 3;
    /* cut_weights cuts format 7's state only: d runs as format 9 did (no state after it). */
    config_as_format(&cfg, offsetof(struct detector_config, season_bins));
    detector_t *d = new_detector_cfg(&cfg, 1), *d32;
    struct detector_config c32 = cfg;
    c32.serving_f16 = 0;
    d32 = new_detector_cfg(&c32, 1);
    struct detector_result res;
    for (int t = 0; t < n; t++) {
        assert_int_equal(detector_step(d, x + t, NULL, &res), 0);
        assert_int_equal(detector_step(d32, x + t, NULL, &res), 0);
    }
    /* The first training installs an LSTM of d's own: float16, and float32 on d32. */
    detector_t *both[2] = {d, d32};
    for (int k = 0; k < 2; k++) {
        struct detector_train_info info;
        train_on(both[k], x, n, &info);
        print_message("serving_f16 %d: first training: swapped %d, kind %d\n", 1 - k, info.swapped,
                      info.kind);
        assert_int_equal(info.kind, DET_KIND_LSTM);
        assert_int_equal(model_is_compact(detector_model(both[k])), 1 - k);
    }
    model_t *good = train_good(&cfg, x, n), *good16;
    assert_int_equal(model_compact(&good16, good), 0);
    assert_int_equal(detector_set_model(d, good, 7), 0);
    assert_ptr_equal(detector_model(d), good);
    assert_int_equal(detector_set_model(d, good16, 8), 0);
    assert_ptr_equal(detector_model(d), good16);
    assert_int_equal(detector_set_model(d32, good, 7), 0);
    assert_ptr_equal(detector_model(d32), good);
    /* A training from the compact serving model (warm start). */
    struct detector_train_info info;
    train_on(d, x, n, &info);
    print_message("serving_f16: after a warm-started training: swapped %d, kind %d\n", info.swapped,
                  info.kind);
    if (info.kind == DET_KIND_LSTM)
        assert_int_equal(model_is_compact(detector_model(d)), 1);
    /* Save and load: the float16 model comes back, and the two continue alike. */
    size_t cap = detector_save_size(d), len;
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    assert_int_equal(detector_save(d, buf, cap, &len), 0);
    detector_t *e;
    assert_int_equal(detector_load(&e, buf, len), 0);
    if (info.kind == DET_KIND_LSTM)
        assert_int_equal(model_is_compact(detector_model(e)), 1);
    struct detector_result ra, rb;
    for (int t = 0; t < 200; t++) {
        float v = x[t] + (t > 150 ? 0.5f : 0.0f);
        assert_int_equal(detector_step(d, &v, NULL, &ra), 0);
        assert_int_equal(detector_step(e, &v, NULL, &rb), 0);
        assert_same_result(&ra, &rb, 1);
    }
    /* Format 6: serving_f16 was not there; it loads as 0 (a training of f would install
     * float32; here only the config's value is checked, through a save of f: format 7 again). */
    free(buf);
    cap = detector_save_size(d);
    buf = malloc(cap);
    assert_non_null(buf);
    assert_int_equal(detector_save(d, buf, cap, &len), 0);
    len = cut_weights(buf, len, 1, &cfg);
    as_format6(buf, &len, 6);
    detector_t *f;
    assert_int_equal(detector_load(&f, buf, len), 0);
    size_t flen;
    unsigned char *fb = malloc(detector_save_size(f));
    assert_non_null(fb);
    assert_int_equal(detector_save(f, fb, detector_save_size(f), &flen), 0);
    int f16_saved;
    memcpy(&f16_saved, fb + 12 + offsetof(struct detector_config, serving_f16), sizeof(int));
    assert_int_equal(f16_saved, 0);
    free(fb);
    free(buf);
    model_destroy(good);
    model_destroy(good16);
    detector_destroy(d);
    detector_destroy(d32);
    detector_destroy(e);
    detector_destroy(f);
    free(x);
}

/* ---- forty-eighth round: an onset that ties the record (onset_tie) ------------------------- */

/* Runs a default detector with lstm_min_rows min_rows over make_cubic's n readings (one
 * channel: a cycle the LSTM predicts far better than the linear fit), training inline as the
 * daemon does (at 200, 1,200, 2,200 readings: 134, 800, 1,600 training rows); each training's
 * report in info[k] and what served after it in served[k] (an LSTM: 1). Returns the trainings. */
static int min_rows_trainings(int min_rows, int n, struct detector_train_info *info, int *served)
{
    float *x = make_cubic(n);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.lstm_min_rows = min_rows;
    detector_t *d = new_detector_cfg(&cfg, 1);
    struct detector_result res;
    int k = 0;
    for (int t = 0; t < n; t++) {
        assert_int_equal(detector_step(d, x + t, NULL, &res), 0);
        if (!res.want_train)
            continue;
        assert_true(k < 3);
        train_on(d, x, t + 1, &info[k]);
        served[k] = detector_model(d) != NULL;
        print_message("lstm_min_rows %d at %d (%zu rows): kind %d epochs %d lstm %.4f linear %.4f "
                      "persistence %.4f\n",
                      min_rows, t + 1, info[k].rows, info[k].kind, info[k].epochs,
                      info[k].val_mse_lstm, info[k].val_mse_linear, info[k].val_mse_persistence);
        k++;
    }
    detector_destroy(d);
    free(x);
    return k;
}

/* lstm_min_rows: a training with fewer training rows than the minimum trains no LSTM (no cost,
 * no epochs) and serves none, though with the field off the same training's LSTM validates
 * best and serves; the first training with enough rows trains one afresh (no serving LSTM to
 * warm-start from: more epochs than warm_epochs allows) and serves it. -1 (one training value
 * a parameter: 1,233 for 16 units on one channel) waits for the third training. */
static void test_lstm_min_rows(void **unused)
{
    (void)unused;
    struct detector_train_info off[2], on[2], size[3];
    int s_off[2], s_on[2], s_size[3];
    assert_int_equal(min_rows_trainings(0, 1300, off, s_off), 2);
    assert_int_equal(off[0].rows, 134);
    assert_int_equal(s_off[0], 1); /* the premise: on 134 rows the LSTM validates best */
    assert_true(off[0].val_mse_lstm < off[0].val_mse_linear);
    assert_true(off[0].val_mse_lstm < off[0].val_mse_persistence);

    assert_int_equal(min_rows_trainings(300, 1300, on, s_on), 2);
    assert_true(isnan(on[0].val_mse_lstm));
    assert_int_equal(on[0].epochs, 0);
    assert_int_equal(s_on[0], 0);
    assert_true(on[0].kind != DET_KIND_LSTM);
    assert_int_equal(on[1].rows, 800);
    assert_int_equal(s_on[1], 1);
    assert_int_equal(on[1].kind, DET_KIND_LSTM);
    assert_true(on[1].epochs > 8); /* cold: a warm start stops at warm_epochs (8) */
    assert_true(on[1].val_mse_lstm < on[1].val_mse_linear);

    /* The minimum itself is enough: 800 rows train one at 800, not at 801. */
    struct detector_train_info at[2];
    int s_at[2];
    assert_int_equal(min_rows_trainings(800, 1300, at, s_at), 2);
    assert_int_equal(at[1].rows, 800);
    assert_int_equal(s_at[1], 1);
    assert_int_equal(min_rows_trainings(801, 1300, at, s_at), 2);
    assert_true(isnan(at[1].val_mse_lstm));
    assert_int_equal(s_at[1], 0);

    assert_int_equal(min_rows_trainings(-1, 2300, size, s_size), 3);
    assert_true(isnan(size[0].val_mse_lstm) && isnan(size[1].val_mse_lstm));
    assert_int_equal(s_size[0] + s_size[1], 0);
    assert_int_equal(size[2].rows, 1600);
    assert_int_equal(s_size[2], 1);
    assert_true(size[2].epochs > 8);

    /* Out of range: below -1. */
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.lstm_min_rows = -2;
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), ERR_INVAL);
}

/* lstm_min_rows -1 in a group's job: the members' training rows pooled count together. One
 * member's 1,000 readings of one channel hold 667 training rows, fewer than the LSTM's 1,233
 * parameters: its own job trains no LSTM; two members' pooled (1,334 rows) train one. */
static void test_lstm_min_rows_pooled(void **unused)
{
    (void)unused;
    const int n = 1000;
    float *x = make_cubic(2 * n); /* two members: its halves */
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.retrain_every = 0;
    assert_int_equal(cfg.lstm_min_rows, -1);
    detector_t *d = new_detector_cfg(&cfg, 1);
    struct detector_result res;
    for (int t = 0; t < n; t++)
        assert_int_equal(detector_step(d, x + n + t, NULL, &res), 0);
    struct detector_train_info one, pooled;
    train_on(d, x + n, n, &one);
    assert_int_equal(one.rows, 667);
    assert_true(isnan(one.val_mse_lstm));
    assert_int_equal(one.epochs, 0);
    const int lens[2] = {n, n};
    detector_job_t *j;
    assert_int_equal(detector_job_create(&j, d), 0);
    assert_int_equal(detector_job_set_pooled(j, x, lens, 2), 0);
    assert_int_equal(detector_job_run(j), 0);
    assert_int_equal(detector_job_apply(d, j, &pooled), 0);
    detector_job_destroy(j);
    print_message("one member: %zu rows, lstm %.4f; pooled: %zu rows, lstm %.4f, %d epochs\n",
                  one.rows, one.val_mse_lstm, pooled.rows, pooled.val_mse_lstm, pooled.epochs);
    assert_int_equal(pooled.rows, 2 * 667);
    assert_true(isfinite(pooled.val_mse_lstm));
    assert_true(pooled.epochs > 0);
    detector_destroy(d);
    free(x);
}

/* The stop's cancel flag (detector_job_set_cancel) is read beyond the LSTM's minibatches: by the
 * validation runs of every predictor that follow (read69b's finding 8: an LSTM of 64 units run
 * over 20,000 rows held a stop 1.5 s, and the training's version was stored). A job that trains
 * no LSTM (model_kind linear) has no minibatch to read it in: set, its run still ends
 * ERR_CLOSED (before session 69: 0, the job run whole); clear, the same job runs to 0. */
static void test_cancel_after_the_epochs(void **unused)
{
    (void)unused;
    const int n = 1200;
    float *x = make_cubic(n);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.retrain_every = 0;
    cfg.model_kind = DET_MODEL_LINEAR;
    detector_t *d = new_detector_cfg(&cfg, 1);
    struct detector_result res;
    for (int t = 0; t < n; t++)
        assert_int_equal(detector_step(d, x + t, NULL, &res), 0);
    atomic_int cancel = 1;
    detector_job_t *j;
    assert_int_equal(detector_job_create(&j, d), 0);
    assert_int_equal(detector_job_set_data(j, x, n), 0);
    detector_job_set_cancel(j, &cancel);
    assert_int_equal(detector_job_run(j), ERR_CLOSED);
    detector_job_destroy(j);
    atomic_store(&cancel, 0);
    assert_int_equal(detector_job_create(&j, d), 0);
    assert_int_equal(detector_job_set_data(j, x, n), 0);
    detector_job_set_cancel(j, &cancel);
    assert_int_equal(detector_job_run(j), 0);
    struct detector_train_info info;
    assert_int_equal(detector_job_apply(d, j, &info), 0);
    assert_true(info.kind != DET_KIND_LSTM);
    detector_job_destroy(j);
    detector_destroy(d);
    free(x);
}

/* The training rows of one channel at which lstm_min_rows -1 trains an LSTM of 16 units: its
 * parameter count as stored (model_param_count, safetensors): 4H (I + H) weights, two bias
 * vectors of 4H (PyTorch's b_ih and b_hh), the head's H + 1 per output: 1,233 on one channel.
 * A job on n readings trains on n - 400 of them (val_rows). Returns whether an LSTM trained. */
static int lstm_trains_at(int n_train)
{
    const int n = n_train + 400;
    float *x = make_cubic(n);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.retrain_every = 0;
    detector_t *d = new_detector_cfg(&cfg, 1);
    struct detector_result res;
    for (int t = 0; t < n; t++)
        assert_int_equal(detector_step(d, x + t, NULL, &res), 0);
    struct detector_train_info info;
    train_on(d, x, n, &info);
    assert_int_equal(info.rows, n_train);
    detector_destroy(d);
    free(x);
    return !isnan(info.val_mse_lstm);
}

/* lstm_min_rows -1's count is the parameters' as stored, 1,233 on one channel (not 1,169, the
 * count with one bias vector that docs once gave). */
static void test_lstm_min_rows_count(void **unused)
{
    (void)unused;
    struct model_config mc;
    model_config_default(&mc, 1, 1);
    mc.n_hidden = 16;
    model_t *m;
    assert_int_equal(model_create(&m, &mc), 0);
    assert_int_equal(model_param_count(m), 1233);
    model_destroy(m);
    assert_false(lstm_trains_at(1232));
    assert_true(lstm_trains_at(1233));
}

/* ---- trainhold (session 29): a scheduled training begun inside a held episode ------------- */

/* detector_train_put_off, as the daemon calls it when a training its schedule asked for before
 * an episode opened is begun by a training thread after (the request waited in the due-set):
 * make_drift's drift (seed 1, accept_after 200, accept_grow 3, retrain_every 500: the next
 * training due at +300) held at +100; put off there, no reading asks while it is held, and the
 * first reading after the episode ends (detector_end_episode at +250) asks. The same detector
 * not put off asks for nothing there (its training is due at +300): without the function's
 * change the first assertion after the end fails. Not held, the next reading asks. */
static void test_train_put_off(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.accept_after = 200;
    cfg.accept_grow = 3.0f;
    cfg.retrain_every = 500;
    float *x = make_drift(1, 0.01, 0);
    detector_t *d[2];
    struct detector_result res[2];
    for (int k = 0; k < 2; k++)
        d[k] = new_detector_cfg(&cfg, 1);
    for (int t = 0; t < OR_ONSET - 50; t++)
        for (int k = 0; k < 2; k++)
            step(d[k], x, t, 1, NULL, &res[k]);
    /* Not held: the next reading asks (and step trains it, so the schedule is as before). */
    assert_false(detector_holding(d[0]));
    assert_int_equal(detector_train_put_off(d[0]), 0);
    step(d[0], x, OR_ONSET - 50, 1, NULL, &res[0]);
    assert_int_equal(res[0].want_train, 1);
    step(d[1], x, OR_ONSET - 50, 1, NULL, &res[1]);
    for (int t = OR_ONSET - 49; t < OR_ONSET + 100; t++)
        for (int k = 0; k < 2; k++)
            step(d[k], x, t, 1, NULL, &res[k]);
    for (int k = 0; k < 2; k++)
        assert_true(detector_holding(d[k]));
    assert_int_equal(detector_train_put_off(d[0]), 0);
    for (int t = OR_ONSET + 100; t < OR_ONSET + 250; t++) {
        for (int k = 0; k < 2; k++) {
            step(d[k], x, t, 1, NULL, &res[k]);
            assert_int_equal(res[k].want_train, 0);
            assert_int_equal(res[k].state, DET_ANOMALY);
        }
    }
    for (int k = 0; k < 2; k++) {
        assert_int_equal(detector_end_episode(d[k]), 0);
        struct detector_result r;
        assert_true(detector_step_ts(d[k], (int64_t)(OR_ONSET + 250) * 1000, x + OR_ONSET + 250,
                                     NULL, &r) >= 0);
        assert_int_equal(r.want_train, k == 0); /* put off: asked; not: due at +300 */
    }
    assert_int_equal(detector_train_put_off(NULL), ERR_INVAL);
    for (int k = 0; k < 2; k++)
        detector_destroy(d[k]);
    free(x);
}

const struct CMUnitTest detector_train_tests[] = {
    cmocka_unit_test(test_warm_start),
    cmocka_unit_test(test_worse_job_not_swapped),
    cmocka_unit_test(test_retrain_seconds),
    cmocka_unit_test(test_retrain_seconds_clock_step),
    cmocka_unit_test(test_batch_step_matches_single),
    cmocka_unit_test(test_extrapolation_first_model),
    cmocka_unit_test(test_serving_f16),
    cmocka_unit_test(test_coupled_errors_count_once),
    cmocka_unit_test(test_extrapolation_fault_flagged),
    cmocka_unit_test(test_lstm_min_rows),
    cmocka_unit_test(test_lstm_min_rows_pooled),
    cmocka_unit_test(test_cancel_after_the_epochs),
    cmocka_unit_test(test_lstm_min_rows_count),
    cmocka_unit_test(test_train_put_off),
};
const size_t detector_train_count = sizeof detector_train_tests / sizeof detector_train_tests[0];

/* tests/test_detector.c: unit tests of the per-device detector (model/detector.h).
 *
 * Behaviour on synthetic series with the daemon's default settings: an injected fault in one
 * channel of a coupled multichannel series is flagged within FAULT_LATENCY readings and named
 * as the top channel; a slow drift on a channel whose level spans far more than its noise is
 * flagged on that channel; a long healthy series raises no anomaly; a constant channel (and one
 * that steps to a new constant) leaves no stuck alarm; a training job that validates worse
 * than the serving model is not swapped in; save/load continues bit for bit and rejects
 * corrupt or truncated bytes with ERR_CORRUPT; the same input gives the same output; the
 * members of a group of pumps run in step, sharing one model, stay quiet while healthy and a
 * fault on one of them is flagged on it with its channel.
 * The detector is driven as vigild and vigil-replay drive it (step; on want_train create, run
 * and apply a job inline). No timing is asserted. Everything is freed (valgrind/ASan clean). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "detector.h"
#include "detector_int.h" /* test_shift_sums_incremental reads the window sums */
#include "err.h"

#ifdef __GLIBC__
#include <malloc.h> /* mallopt(M_PERTURB): test_min_rows_calibration */
#endif

/* Readings after a fault's onset within which it must be flagged as an anomaly. */
#define FAULT_LATENCY 20

/* ---- synthetic data ---------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double gauss(uint64_t *s)
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
static float *make_process(int n, uint64_t seed)
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

static int trainings;

/* One training of d on x's first n rows, applied; its report in *info. */
static void train_on(detector_t *d, const float *x, int n, struct detector_train_info *info)
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
static void step_ts(detector_t *d, int64_t ts_ms, const float *series, int t, int C,
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
static void step(detector_t *d, const float *series, int t, int C, const uint8_t *present,
                 struct detector_result *res)
{
    step_ts(d, (int64_t)t * 1000, series, t, C, present, res);
}

static detector_t *new_detector(int C)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, C), 0);
    return d;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_lifecycle(void **unused)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    detector_t *d = NULL;
    assert_int_equal(detector_create(&d, &cfg, 0), ERR_INVAL);
    assert_int_equal(detector_create(&d, &cfg, DETECTOR_MAX_CHANNELS + 1), ERR_INVAL);
    struct detector_config bad = cfg;
    bad.history = cfg.warmup - 1;
    assert_int_equal(detector_create(&d, &bad, 2), ERR_INVAL);
    assert_int_equal(detector_create(&d, &cfg, 2), 0);
    float x[2] = {1.0f, 2.0f}, mean[2], band[2];
    struct detector_result res;
    assert_int_equal(detector_step(d, x, NULL, &res), 0);
    assert_int_equal(res.state, DET_LEARNING);
    assert_int_equal(res.is_anomaly, 0);
    assert_int_equal(detector_forecast(d, mean, band, 1), ERR_RANGE);
    detector_job_t *job;
    assert_int_equal(detector_job_create(&job, d), ERR_RANGE); /* not enough history */
    assert_int_equal(detector_channels(d), 2);
    assert_null(detector_model(d));
    detector_destroy(d);
    detector_destroy(NULL);
    detector_job_destroy(NULL);
}

/* A step of +0.6 (12 noise deviations) in the current channel after 1,500 healthy readings:
 * flagged within FAULT_LATENCY readings, with the current channel on top; nothing flagged
 * before it. */
static void test_fault_flagged_with_channel(void **unused)
{
    const int n = 1800, onset = 1500, C = 4;
    float *x = make_process(n, 7);
    for (int t = onset; t < n; t++)
        x[C * t + 1] += 0.6f;
    detector_t *d = new_detector(C);
    struct detector_result res;
    int flagged_at = -1, top = -1;
    for (int t = 0; t < n; t++) {
        step(d, x, t, C, NULL, &res);
        if (t < onset) {
            assert_int_equal(res.is_anomaly, 0);
        } else if (res.is_anomaly && flagged_at < 0) {
            flagged_at = t;
            top = res.top_channel;
        }
    }
    print_message("fault flagged %d readings after onset, top channel %d\n", flagged_at - onset,
                  top);
    assert_true(flagged_at >= onset && flagged_at - onset <= FAULT_LATENCY);
    assert_int_equal(top, 1);
    float mean[5 * 4], band[5 * 4];
    assert_int_equal(detector_forecast(d, mean, band, 5), 0);
    for (int k = 0; k < 5 * C; k++)
        assert_true(isfinite(mean[k]) && band[k] >= 0.0f);
    detector_destroy(d);
    free(x);
}

/* An overheating drift on a slow channel: the temperature of make_process with its slow
 * cycle widened to +-4.5 (its level spans far more than its per-reading noise, as a real
 * temperature's does) starts to rise at 0.08 per reading, faster as it goes (vigil-sim's
 * overheat, tools/sim.c). Each reading's error is a few noise deviations but a small fraction
 * of the channel's span: flagged within 60 readings with the temperature on top. With
 * confirm = 2 (the default) nothing at all is flagged before the drift. With confirm = 1
 * nothing is flagged in the 800 readings before it; earlier, one reading of this healthy part
 * is a known false alarm (reading 1404, a lone reading at likelihood 0.509 on the current
 * channel, 200 readings after the second training; issue 4's healthy false alarms). */
static void slow_drift(int confirm)
{
    const int n = 2600, onset = 2300, C = 4;
    float *x = make_process(n, 13);
    double drift = 0.0;
    for (int t = 0; t < n; t++) {
        if (t >= onset)
            drift += 0.08 * (1.0 + (t - onset) / 60.0);
        x[C * t + 2] += (float)(4.5 * sin(2.0 * 3.14159265358979 * t / 900.0) + drift);
    }
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.confirm = confirm;
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, C), 0);
    struct detector_result res;
    int flagged_at = -1, top = -1;
    for (int t = 0; t < n; t++) {
        step(d, x, t, C, NULL, &res);
        if (getenv("DBG") && res.is_anomaly)
            print_message("t %d lik %.3f raw %.3f top %d kind %d\n", t, (double)res.likelihood,
                          (double)res.raw, res.top_channel, res.kind);
        if (t < onset) {
            if (confirm > 1 || t >= onset - 800)
                assert_int_equal(res.is_anomaly, 0);
        } else if (res.is_anomaly && flagged_at < 0) {
            flagged_at = t;
            top = res.top_channel;
        }
    }
    print_message("drift flagged %d readings after onset, top channel %d (confirm %d)\n",
                  flagged_at - onset, top, confirm);
    assert_true(flagged_at >= onset && flagged_at - onset <= 60);
    assert_int_equal(top, 2);
    detector_destroy(d);
    free(x);
}

static void test_slow_drift_flagged(void **unused)
{
    slow_drift(1);
}

static void test_slow_drift_flagged_confirm2(void **unused)
{
    slow_drift(2);
}

/* 8,000 healthy readings (several retrainings): never an anomaly. */
static void test_healthy_quiet(void **unused)
{
    const int n = 8000, C = 4;
    float *x = make_process(n, 11);
    detector_t *d = new_detector(C);
    struct detector_result res;
    int anomalies = 0, warnings = 0;
    float top = 0.0f;
    trainings = 0;
    for (int t = 0; t < n; t++) {
        step(d, x, t, C, NULL, &res);
        anomalies += res.is_anomaly;
        if (getenv("DBG") && res.state >= DET_WARNING)
            print_message("t %d lik %.3f raw %.3f top %d v %u kind %d x %.3f %.3f pred %.3f %.3f\n",
                          t, (double)res.likelihood, (double)res.raw, res.top_channel, res.version,
                          res.kind, x[C * t], x[C * t + 1], res.pred[0], res.pred[1]);
        warnings += res.state == DET_WARNING;
        if (res.likelihood > top)
            top = res.likelihood;
    }
    print_message("healthy: %d trainings, %d warning readings, highest likelihood %.3f\n",
                  trainings, warnings, (double)top);
    assert_true(trainings >= 5);
    assert_int_equal(anomalies, 0);
    detector_destroy(d);
    free(x);
}

/* The decision likelihood (tail_plain 0, the default) treats the long window's mean and
 * deviation as estimates from its effective sample: never above the Gaussian likelihood the score
 * reports where that matters (score_level above 1 keeps the score uncapped, so it is the Gaussian
 * likelihood itself), and further below it while the window holds few short means (right after
 * the first training, seeded from its 66-reading tail) than once it holds hundreds. With
 * tail_plain 1 the two are the same. */
static void test_decision_likelihood(void **unused)
{
    const int n = 3000, C = 4;
    float *x = make_process(n, 5);
    for (int plain = 0; plain <= 1; plain++) {
        struct detector_config cfg;
        detector_config_default(&cfg);
        cfg.score_level = 2.0f;
        cfg.tail_plain = plain;
        cfg.op_point = 0;       /* the error's likelihood alone (op_point's can only raise it) */
        cfg.shift_len = 0;      /* and the step test's */
        cfg.season_opinion = 0; /* the second opinion can only raise the score */
        detector_t *d;
        assert_int_equal(detector_create(&d, &cfg, C), 0);
        struct detector_result res;
        double ratio[2] = {0.0, 0.0};
        int count[2] = {0, 0}, below = 0;
        for (int t = 0; t < n; t++) {
            step(d, x, t, C, NULL, &res);
            if (res.state == DET_LEARNING)
                continue;
            if (plain) {
                assert_true(res.likelihood == res.score);
                continue;
            }
            if (res.score < 0.05f)
                continue; /* below the mean both are near 0 and may cross */
            assert_true(res.likelihood <= res.score + 1e-6f);
            below += res.likelihood < res.score - 0.01f;
            int late = t >= 2000 && t < 3000 ? 1 : t < cfg.warmup + 100 ? 0 : -1;
            if (late >= 0) {
                ratio[late] += res.likelihood / res.score;
                count[late]++;
            }
        }
        if (!plain) {
            assert_true(count[0] > 10 && count[1] > 10);
            print_message("decision/score likelihood: %.3f over the first 100 scored readings, "
                          "%.3f over readings 2000-2999; %d readings lower by > 0.01\n",
                          ratio[0] / count[0], ratio[1] / count[1], below);
            assert_true(below > 0);
            assert_true(ratio[0] / count[0] < ratio[1] / count[1] - 0.02);
        }
        detector_destroy(d);
    }
    free(x);
}

/* A constant channel beside a live one raises nothing; when the constant steps to a new
 * constant (a set point change), any alarm ends within 50 readings and does not return. */
/* open_median guards an opening with the median of the last raw scores. The default, 3, must
 * keep a lone spike's episode (the predictor errs on the spike and on the readings it predicts
 * from it) and a burst of three; the median of the whole short window (10) flags neither, so
 * the test is not vacuous: the opening test is what decides. The quiet readings before are
 * never flagged. */
static void test_open_median(void **unused)
{
    const int n = 1500, C = 4, lone = 1300, burst = 1400;
    float *x = make_process(n, 11);
    x[C * lone + 1] += 3.0f;
    for (int t = burst; t < burst + 3; t++)
        x[C * t + 1] += 3.0f;
    for (int om = 3; om <= 10; om += 7) {
        struct detector_config cfg;
        detector_config_default(&cfg);
        assert_int_equal(cfg.open_median, 3);
        cfg.open_median = om;
        cfg.range_open = 0; /* a +3 spike is far beyond the current's range: it would open */
        detector_t *d;
        assert_int_equal(detector_create(&d, &cfg, C), 0);
        struct detector_result res;
        int at_lone = 0, at_burst = 0, before = 0;
        for (int t = 0; t < n; t++) {
            step(d, x, t, C, NULL, &res);
            if (t >= 1000 && t < lone)
                before += res.is_anomaly;
            else if (t >= lone && t < lone + 20)
                at_lone += res.is_anomaly;
            else if (t >= burst && t < burst + 20)
                at_burst += res.is_anomaly;
        }
        print_message("open_median %d: flagged %d after the lone spike, %d after the burst\n", om,
                      at_lone, at_burst);
        assert_int_equal(before, 0);
        if (om == 3) {
            assert_true(at_lone > 0);
            assert_true(at_burst > 0);
        } else {
            assert_int_equal(at_lone, 0);
            assert_int_equal(at_burst, 0);
        }
        detector_destroy(d);
    }
    free(x);
}

static void test_constant_channel_not_stuck(void **unused)
{
    const int n = 4000, step_at = 2500, C = 2;
    float *p = make_process(n, 3);
    float *x = malloc(sizeof(float) * 2 * n);
    assert_non_null(x);
    for (int t = 0; t < n; t++) {
        x[2 * t] = p[4 * t];
        x[2 * t + 1] = t < step_at ? 7.25f : 8.5f;
    }
    detector_t *d = new_detector(C);
    struct detector_result res;
    for (int t = 0; t < n; t++) {
        step(d, x, t, 2, NULL, &res);
        if (t < step_at || t >= step_at + 50)
            assert_int_equal(res.is_anomaly, 0);
    }
    assert_int_equal(detector_get_state(d), DET_NORMAL);
    detector_destroy(d);
    free(p);
    free(x);
}

/* The forecast of a channel predicted by persistence (constant in training) follows its recent
 * trend once it drifts, so a time to a limit exists; while it only stays level, or wanders as
 * noise without a trend, its forecast stays flat. The other channel (the LSTM's) is finite. */
static void test_forecast_persistence_trend(void **unused)
{
    const int n = 700, ramp_at = 600, C = 2, K = 20;
    float *p = make_process(n, 5);
    float *x = malloc(sizeof(float) * 2 * n);
    assert_non_null(x);
    uint64_t s = 99;
    for (int t = 0; t < n; t++) {
        x[2 * t] = p[4 * t];
        x[2 * t + 1] = t < 300       ? 7.25f
                       : t < ramp_at ? 7.25f + 0.01f * (float)gauss(&s)
                                     : 7.25f + 0.05f * (float)(t - ramp_at);
    }
    detector_t *d = new_detector(C);
    struct detector_result res;
    float mean[K * 2], band[K * 2];
    for (int t = 0; t < n; t++) {
        step(d, x, t, C, NULL, &res);
        if (t == 299 || t == ramp_at - 1) { /* level, then level with noise: flat */
            assert_int_equal(detector_forecast(d, mean, band, K), 0);
            for (int j = 1; j < K; j++)
                assert_float_equal(mean[2 * j + 1], x[2 * t + 1], 1e-6);
        }
    }
    assert_int_equal(detector_forecast(d, mean, band, K), 0);
    const float last = x[2 * (n - 1) + 1];
    assert_float_equal(mean[1], last, 1e-4); /* the first step: the served prediction */
    for (int j = 1; j < K; j++) {
        assert_float_equal(mean[2 * j + 1], last + 0.05f * (float)j, 1e-3);
        assert_true(isfinite(mean[2 * j]) && band[2 * j] > 0.0f);
        assert_true(band[2 * j + 1] >= band[2 * (j - 1) + 1]);
    }
    detector_destroy(d);
    free(p);
    free(x);
}

/* detector_trend: the line through a channel's newest readings. Before 8 readings none
 * (ERR_RANGE); on an exact ramp its slope, a zero standard error and the newest value; on a
 * ramp with noise the slope within a few standard errors; bad arguments refused. */
static void test_trend(void **unused)
{
    const int C = 2;
    detector_t *d = new_detector(C);
    struct detector_result res;
    double slope, se, level;
    float x[2];
    uint64_t s = 7;
    for (int t = 0; t < 7; t++) {
        x[0] = 3.0f + 0.5f * (float)t;
        x[1] = 1.0f;
        assert_int_equal(detector_step(d, x, NULL, &res), 0);
    }
    assert_int_equal(detector_trend(d, 0, &slope, &se, &level), ERR_RANGE);
    for (int t = 7; t < 300; t++) {
        x[0] = 3.0f + 0.5f * (float)t;
        x[1] = 1.0f + 0.01f * (float)t + 0.2f * (float)gauss(&s);
        assert_int_equal(detector_step(d, x, NULL, &res), 0);
    }
    assert_int_equal(detector_trend(d, 0, &slope, &se, &level), 0);
    assert_float_equal(slope, 0.5, 1e-4);
    assert_true(se < 1e-3);
    assert_float_equal(level, 3.0 + 0.5 * 299, 1e-2);
    assert_int_equal(detector_trend(d, 1, &slope, &se, &level), 0);
    assert_true(se > 0.0 && fabs(slope - 0.01) < 4.0 * se);
    assert_true(fabs(level - (1.0 + 0.01 * 299)) < 0.2);
    assert_int_equal(detector_trend(d, 2, &slope, &se, &level), ERR_INVAL);
    assert_int_equal(detector_trend(d, -1, &slope, &se, &level), ERR_INVAL);
    assert_int_equal(detector_trend(NULL, 0, &slope, &se, &level), ERR_INVAL);
    detector_destroy(d);
}

/* Missing channels are carried forward and counted. */
static void test_missing_carried_forward(void **unused)
{
    const int n = 600, C = 4;
    float *x = make_process(n, 5);
    detector_t *d = new_detector(C);
    struct detector_result res;
    uint8_t present[4] = {1, 0, 1, 1};
    for (int t = 0; t < n; t++) {
        int gap = t % 50 == 49;
        if (gap)
            x[C * t + 3] = NAN;
        step(d, x, t, C, gap ? present : NULL, &res);
        assert_int_equal(res.imputed, gap ? 2 : 0);
    }
    detector_destroy(d);
    free(x);
}

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

/* A training job (one epoch at a rate too small to move the weights) while a well-trained
 * LSTM serves: its candidate validates as the serving LSTM does when it starts from the
 * serving weights (warm_epochs), and far worse when it starts afresh. */
static double warm_candidate_cost(int warm_epochs, double *serving, int *epochs)
{
    const int n = 1200;
    float *x = make_cubic(n);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.train.max_epochs = 60;
    cfg.train.lr = 1e-7f;
    cfg.retrain_every = 0;
    cfg.warm_epochs = warm_epochs;
    cfg.lstm_min_rows = 0; /* the candidate is an LSTM on 800 rows of one channel */
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    for (int t = 0; t < n; t++)
        assert_int_equal(detector_step(d, x + t, NULL, &res), 0);
    model_t *good = train_good(&cfg, x, n);
    assert_int_equal(detector_set_model(d, good, 7), 0);
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
    detector_config_default(&cfg);
    cfg.train.max_epochs = 1;
    cfg.train.lr = 1e-7f;
    cfg.retrain_every = 0;
    cfg.warm_epochs = 0;
    cfg.lstm_min_rows = 0; /* the job trains an LSTM on 800 rows of one channel */
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    for (int t = 0; t < n; t++)
        assert_int_equal(detector_step(d, x + t, NULL, &res), 0);

    model_t *good = train_good(&cfg, x, n);
    assert_int_equal(detector_set_model(d, good, 7), 0);

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

static void assert_same_result(const struct detector_result *a, const struct detector_result *b,
                               int C)
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

/* model/detector_io.c's CRC (internal to the model library). */
uint32_t model__crc32(uint32_t crc, const void *buf, size_t n);

/* Format 6's config: up to serving_f16 (format 7's first field), with the struct's tail
 * padding (detector_load.c). */
#define CFG6_SIZE                                                                                  \
    ((offsetof(struct detector_config, serving_f16) + _Alignof(struct detector_config) - 1) /      \
     _Alignof(struct detector_config) * _Alignof(struct detector_config))

/* Drops format 21's ep_accepted (an int right after the config) from a save of *len bytes whose
 * config is still the whole struct, so the bytes have format 20's layout (the CRC, the last 4
 * bytes, is left for the caller to redo). Every older format's cut starts with it. */
static void cut_ep_accepted(unsigned char *buf, size_t *len)
{
    const size_t at = 12 + sizeof(struct detector_config);
    memmove(buf + at, buf + at + sizeof(int), *len - at - sizeof(int));
    *len -= sizeof(int);
}

/* Sets *cfg as the loader leaves the config of a format (2 or later) that ended before the field
 * at offset field of struct detector_config: that field and every later one 0, its off value,
 * except tail_plain (format 4's), which formats 3 and before load as 1. An older format's test
 * runs its saved detector on this, as the format did (it had none of those fields, nor their
 * state), so a field added later needs no line in every older format's test. */
static void config_as_format(struct detector_config *cfg, size_t field)
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
static size_t cut_weights(unsigned char *buf, size_t len, int C, const struct detector_config *cfg)
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
    detector_t *a, *b;
    assert_int_equal(detector_create(&a, &cfg, C), 0);
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
        detector_t *d;
        assert_int_equal(detector_create(&d, &cfg, C), 0);
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
            detector_job_t *job;
            assert_int_equal(detector_job_create(&job, d), 0);
            assert_int_equal(detector_job_set_data(job, x, t + 1), 0);
            assert_int_equal(detector_job_run(job), 0);
            assert_int_equal(detector_job_apply(d, job, NULL), 0);
            detector_job_destroy(job);
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
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, C), 0);
    struct detector_result res;
    int wants = 0;
    for (int t = 0; t < 600; t++) {
        assert_int_equal(detector_step(d, x + (size_t)C * t, NULL, &res), 0);
        if (res.want_train && detector_get_state(d) == DET_LEARNING) {
            detector_job_t *job;
            assert_int_equal(detector_job_create(&job, d), 0);
            assert_int_equal(detector_job_set_data(job, x, t + 1), 0);
            assert_int_equal(detector_job_run(job), 0);
            assert_int_equal(detector_job_apply(d, job, NULL), 0);
            detector_job_destroy(job);
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
 * a detector of another version in the same batch advances alone and exactly. */
static void test_batch_step_matches_single(void **unused)
{
    const int n = 400, M = 4;
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
    detector_t *single[4], *batch[4];
    for (int i = 0; i < M; i++) {
        assert_int_equal(detector_create(&single[i], &cfg, 1), 0);
        assert_int_equal(detector_create(&batch[i], &cfg, 1), 0);
        /* Members start at different phases of the staggered states (i readings more). */
        struct detector_result r;
        for (int t = 0; t < 5 + 7 * i; t++) {
            assert_int_equal(detector_step(single[i], x + t, NULL, &r), 0);
            assert_int_equal(detector_step(batch[i], x + t, NULL, &r), 0);
        }
        uint32_t version = i == M - 1 ? 9 : 8; /* the last one is not the group's version */
        assert_int_equal(detector_set_model(single[i], m, version), 0);
        assert_int_equal(detector_set_model(batch[i], m, version), 0);
    }
    float *work = malloc(sizeof(float) * detector_batch_work_len(batch[0], M));
    assert_non_null(work);
    for (int t = 40; t < n; t++) {
        float xs[4];
        int64_t ts[4];
        struct detector_result rs[4], rb[4];
        for (int i = 0; i < M; i++) {
            xs[i] = x[t - 3 * i] * (1.0f + 0.1f * (float)i);
            ts[i] = (int64_t)t * 1000;
            assert_int_equal(detector_step_ts(single[i], ts[i], &xs[i], NULL, &rs[i]), 0);
        }
        assert_int_equal(detector_step_batch(batch, M, ts, xs, NULL, rb, work), 0);
        for (int i = 0; i < M; i++) {
            if (i == M - 1) { /* advanced alone: exactly the single step */
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

/* Group training: one job on two members' pooled windows decides; each member's job shares
 * that decision. Both then serve the same version and the same weights, but each keeps its
 * own error scales: the same error scores lower on the noisier member. */
static void test_group_share(void **unused)
{
    const int n = 1200, C = 4;
    float *a = make_process(n, 31), *b = make_process(n, 32);
    uint64_t s = 77;
    for (int t = 0; t < n * C; t++)
        b[t] += 0.3f * (float)gauss(&s); /* member b is much noisier */
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.retrain_every = 0;
    detector_t *da, *db;
    assert_int_equal(detector_create(&da, &cfg, C), 0);
    assert_int_equal(detector_create(&db, &cfg, C), 0);
    struct detector_result ra, rb;
    for (int t = 0; t < n; t++) {
        assert_int_equal(detector_step(da, a + (size_t)C * t, NULL, &ra), 0);
        assert_int_equal(detector_step(db, b + (size_t)C * t, NULL, &rb), 0);
    }
    float *pool = malloc(sizeof(float) * 2 * (size_t)n * C);
    assert_non_null(pool);
    memcpy(pool, a, sizeof(float) * (size_t)n * C);
    memcpy(pool + (size_t)n * C, b, sizeof(float) * (size_t)n * C);
    const int lens[2] = {n, n}, bad[2] = {n, -1}, short_last[2] = {2 * n - 10, 10};
    detector_job_t *g, *ja, *jb;
    assert_int_equal(detector_job_create(&g, da), 0);
    assert_int_equal(detector_job_set_pooled(g, pool, bad, 2), ERR_INVAL);
    /* The last window is the validation tail's: it must hold warmup rows. */
    assert_int_equal(detector_job_set_pooled(g, pool, short_last, 2), ERR_RANGE);
    assert_int_equal(detector_job_set_pooled(g, pool, lens, 2), 0);
    assert_int_equal(detector_job_create(&ja, da), 0);
    assert_int_equal(detector_job_create(&jb, db), 0);
    assert_int_equal(detector_job_set_data(ja, a, n), 0);
    assert_int_equal(detector_job_set_data(jb, b, n), 0);
    assert_int_equal(detector_job_share(ja, g), ERR_INVAL); /* the group job has not run */
    assert_int_equal(detector_job_run(g), 0);
    assert_int_equal(detector_job_share(ja, g), 0);
    assert_int_equal(detector_job_share(jb, g), 0);
    assert_int_equal(detector_job_share(jb, g), ERR_INVAL); /* already decided */
    struct detector_train_info ia, ib;
    assert_int_equal(detector_job_apply(da, ja, &ia), 0);
    assert_int_equal(detector_job_apply(db, jb, &ib), 0);
    assert_int_equal(ia.version, ib.version);
    assert_int_equal(ia.kind, ib.kind);
    assert_int_equal(ia.swapped, 1);
    assert_int_equal(ib.swapped, 1);
    if (ia.kind == DET_KIND_LSTM) {
        size_t na = model_checkpoint_size(detector_model(da)), la, lb;
        unsigned char *ba = malloc(na), *bb = malloc(na);
        assert_non_null(ba);
        assert_non_null(bb);
        assert_int_equal(model_checkpoint_save(detector_model(da), ba, na, &la), 0);
        assert_int_equal(model_checkpoint_save(detector_model(db), bb, na, &lb), 0);
        assert_int_equal(la, lb);
        assert_memory_equal(ba, bb, la);
        free(ba);
        free(bb);
    }
    /* The same error of 0.5 on every channel, against each member's own prediction. */
    float pa[4], pb[4], band[4];
    assert_int_equal(detector_step(da, a + (size_t)C * (n - 1), NULL, &ra), 0);
    assert_int_equal(detector_step(db, b + (size_t)C * (n - 1), NULL, &rb), 0);
    assert_int_equal(detector_forecast(da, pa, band, 1), 0);
    assert_int_equal(detector_forecast(db, pb, band, 1), 0);
    for (int c = 0; c < C; c++) {
        pa[c] += 0.5f;
        pb[c] += 0.5f;
    }
    assert_int_equal(detector_step(da, pa, NULL, &ra), 0);
    assert_int_equal(detector_step(db, pb, NULL, &rb), 0);
    print_message("group: version %u kind %d, raw score of the same error: quiet %.3f noisy %.3f\n",
                  ia.version, ia.kind, (double)ra.raw, (double)rb.raw);
    assert_true(ra.raw > rb.raw);
    detector_job_destroy(g);
    detector_job_destroy(ja);
    detector_job_destroy(jb);

    /* A second group training on the same windows: whether it swaps or keeps the serving
     * model, each member records the decision under a new version number (a kept model
     * recorded under the serving version would duplicate it in the history), and serves the
     * new version only if it was swapped in. */
    for (int round = 0; round < 2; round++) {
        assert_int_equal(detector_job_create(&g, da), 0);
        assert_int_equal(detector_job_set_pooled(g, pool, lens, 2), 0);
        assert_int_equal(detector_job_create(&ja, da), 0);
        assert_int_equal(detector_job_create(&jb, db), 0);
        assert_int_equal(detector_job_set_data(ja, a, n), 0);
        assert_int_equal(detector_job_set_data(jb, b, n), 0);
        assert_int_equal(detector_job_run(g), 0);
        assert_int_equal(detector_job_share(ja, g), 0);
        assert_int_equal(detector_job_share(jb, g), 0);
        struct detector_train_info ia2, ib2;
        assert_int_equal(detector_job_apply(da, ja, &ia2), 0);
        assert_int_equal(detector_job_apply(db, jb, &ib2), 0);
        print_message("group round %d: version %u swapped %d (serving %u)\n", round + 2,
                      ia2.version, ia2.swapped, ia.version);
        assert_true(ia2.version > ia.version);
        assert_int_equal(ia2.version, ib2.version);
        assert_int_equal(ia2.swapped, ib2.swapped);
        assert_int_equal(detector_step(da, a + (size_t)C * (n - 1), NULL, &ra), 0);
        assert_int_equal(detector_step(db, b + (size_t)C * (n - 1), NULL, &rb), 0);
        assert_int_equal(ra.version, ia2.swapped ? ia2.version : ia.version);
        assert_int_equal(rb.version, ra.version);
        if (ia2.swapped)
            ia = ia2;
        detector_job_destroy(g);
        detector_job_destroy(ja);
        detector_job_destroy(jb);
    }
    detector_destroy(da);
    detector_destroy(db);
    free(pool);
    free(a);
    free(b);
}

/* A fleet of pumps run in step, as vigil-sim's are: the same dynamics and sensors, one speed
 * schedule for all (a 600-reading cycle and a 97-reading one), each pump from the same start,
 * each with its own noise. n readings of PUMP_C channels (speed, flow, pressure, current,
 * temperature, vibration, power, rpm) of pump m. */
#define PUMP_C 8
static float *make_pump(int n, int m)
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

/* A group's training as the daemon does it: every member's job on its own window (its newest
 * `history` rows up to reading t), one group job on the members' windows one after another
 * (each a series of its own), each member's job takes the group's decision, every job is
 * applied. Returns the kind that serves. */
static enum detector_kind group_train(detector_t **ds, float **series, int M, int t)
{
    const int hist = 2000, n = t + 1 < hist ? t + 1 : hist, C = PUMP_C;
    float *pool = malloc(sizeof(float) * (size_t)M * n * C);
    int lens[DETECTOR_MAX_BATCH];
    assert_non_null(pool);
    for (int i = 0; i < M; i++) {
        memcpy(pool + (size_t)i * n * C, series[i] + (size_t)(t + 1 - n) * C,
               sizeof(float) * (size_t)n * C);
        lens[i] = n;
    }
    detector_job_t *g, *js[DETECTOR_MAX_BATCH];
    assert_int_equal(detector_job_create(&g, ds[0]), 0);
    assert_int_equal(detector_job_set_pooled(g, pool, lens, M), 0);
    assert_int_equal(detector_job_run(g), 0);
    struct detector_train_info info;
    for (int i = 0; i < M; i++) {
        assert_int_equal(detector_job_create(&js[i], ds[i]), 0);
        assert_int_equal(detector_job_set_data(js[i], series[i] + (size_t)(t + 1 - n) * C, n), 0);
        assert_int_equal(detector_job_share(js[i], g), 0);
        assert_int_equal(detector_job_apply(ds[i], js[i], &info), 0);
        detector_job_destroy(js[i]);
    }
    print_message("group training at %d: version %u kind %d (costs lstm %.4f linear %.4f "
                  "persistence %.4f)\n",
                  t, info.version, info.kind, info.val_mse_lstm, info.val_mse_linear,
                  info.val_mse_persistence);
    detector_job_destroy(g);
    free(pool);
    return info.kind;
}

/* Healthy members of a group stay quiet, and a fault on one of them is flagged on it, with its
 * channel. The members run in step and their first training comes after 400 readings (the
 * daemon's first training waits for a backfill to end): their windows end where their pumps
 * are far from where they started. Trained on the windows laid end to end as one series, the
 * group's LSTM learnt the jump from each window's end to the next one's start (the same jump
 * every time), predicted it once a member looked like a window's end again, and every member
 * went into anomaly at once; and with only the last window's tail held out, the other
 * members' tails (their calibration rows) and the decision's tail (the same time span) were
 * in-sample. With the old pooled job (one series): 21 anomalies on healthy data here, every
 * member two readings after the first training (docs/detection.md, "Groups"). The members run
 * 1,300 readings past their first training and the run ends 100 readings after the fault's
 * onset, before the schedule first takes the pumps faster than in any training (an LSTM's known
 * weakness, docs/detection.md). */
static void test_group_healthy_quiet(void **unused)
{
    enum { M = 8, HEALTHY = 1800, FAULT_AT = 1700, FAULTY = 3, FAULT_CH = 5 };
    const int C = PUMP_C;
    float *series[M];
    detector_t *ds[M];
    struct detector_config cfg;
    detector_config_default(&cfg);
    for (int i = 0; i < M; i++) {
        series[i] = make_pump(HEALTHY, i);
        assert_int_equal(detector_create(&ds[i], &cfg, C), 0);
    }
    float *work = malloc(sizeof(float) * detector_batch_work_len(ds[0], M));
    float *x = malloc(sizeof(float) * M * C);
    assert_non_null(work);
    assert_non_null(x);
    struct detector_result res[M];
    int lstm_served = 0, alarms_healthy = 0, flagged_at = -1, others_alarm = 0;
    for (int t = 0; t < HEALTHY; t++) {
        for (int i = 0; i < M; i++)
            memcpy(x + (size_t)i * C, series[i] + (size_t)t * C, sizeof(float) * C);
        if (t >= FAULT_AT) /* a loose mounting on one member: its vibration steps up */
            x[(size_t)FAULTY * C + FAULT_CH] += 0.3f;
        assert_int_equal(detector_step_batch(ds, M, NULL, x, NULL, res, work), 0);
        int want = 0;
        for (int i = 0; i < M; i++) {
            want |= res[i].want_train;
            if (res[i].state != DET_ANOMALY || !res[i].changed)
                continue;
            print_message("t %d member %d: anomaly, top channel %d, kind %d\n", t, i,
                          res[i].top_channel, res[i].kind);
            if (t < FAULT_AT)
                alarms_healthy++;
            else if (i != FAULTY)
                others_alarm++;
            else if (flagged_at < 0 && res[i].top_channel == FAULT_CH)
                flagged_at = t;
        }
        /* The first training once 400 readings are in; then as the members ask. The fault's
         * readings are not trained on. */
        if (want && t >= 400 && t < FAULT_AT)
            lstm_served += group_train(ds, series, M, t) == DET_KIND_LSTM;
    }
    print_message("group of %d: %d anomalies on healthy data, fault flagged %d readings after "
                  "its onset, %d on other members, %d trainings served by the LSTM\n",
                  M, alarms_healthy, flagged_at - FAULT_AT, others_alarm, lstm_served);
    assert_true(lstm_served >= 1); /* a shared LSTM served: the case that went wrong */
    assert_int_equal(alarms_healthy, 0);
    assert_true(flagged_at >= FAULT_AT && flagged_at - FAULT_AT <= FAULT_LATENCY);
    assert_int_equal(others_alarm, 0);
    for (int i = 0; i < M; i++) {
        detector_destroy(ds[i]);
        free(series[i]);
    }
    free(work);
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
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, C), 0);
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
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, C), 0);
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
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, C), 0);
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

/* A format-5 save (the config's last 4 bytes were padding then, now extrap_weight) loads with
 * extrap_weight 0, whatever its padding held, and continues bit for bit as the detector that
 * ran without the term; the same pump with the term (format 6) raises fewer anomalies, so the
 * check can tell the two apart. */
/* Gives a save (buf, *len bytes) whose format-7 additions cut_weights has cut the format
 * number fmt (5 or 6) and redoes its CRC. */
static void as_format6(unsigned char *buf, size_t *len, uint32_t fmt)
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
static int cut_to_format(unsigned char *buf, size_t *len, size_t field, int junk, uint32_t fmt)
{
    const size_t al = _Alignof(struct detector_config), size = sizeof(struct detector_config);
    const size_t keep = (field + al - 1) / al * al;
    if (fmt < 23)
        cut_ep_accepted(buf, len);
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
static void drop_before_contrib(unsigned char *buf, size_t *len, const detector_t *d, size_t n,
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
static void drop_opin_run(unsigned char *buf, size_t *len, detector_t *d)
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
static int cut_and_continue(const struct detector_config *cfg, int C, const float *x, int n,
                            int cut, size_t field, int junk, uint32_t fmt, double *top, int *opened)
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
static int load_older_format(const struct detector_config *cfg, const float *x, int n, int cut,
                             int C, size_t field, int junk, uint32_t fmt)
{
    double top;
    int opened;
    cut_and_continue(cfg, C, x, n, cut, field, junk, fmt, &top, &opened);
    return opened;
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
    detector_t *a, *b, *w;
    assert_int_equal(detector_create(&a, &cfg, C), 0);
    assert_int_equal(detector_create(&w, &cfg, C), 0);
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
    detector_t *d, *d32;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_config c32 = cfg;
    c32.serving_f16 = 0;
    assert_int_equal(detector_create(&d32, &c32, 1), 0);
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

/* Two detectors fed the same readings give bit-identical results throughout. */
static void test_deterministic(void **unused)
{
    const int n = 2600, C = 4;
    float *x = make_process(n, 99);
    for (int t = 1800; t < 1900; t++)
        x[C * t] *= 1.5f;
    detector_t *a = new_detector(C), *b = new_detector(C);
    struct detector_result ra, rb;
    for (int t = 0; t < n; t++) {
        step(a, x, t, C, NULL, &ra);
        step(b, x, t, C, NULL, &rb);
        assert_same_result(&ra, &rb, C);
    }
    detector_destroy(a);
    detector_destroy(b);
    free(x);
}

/* ---- shared checkpoints and batched group calibration ------------------------------------ */

/* Settings under which an LSTM serves after a short training: a few epochs, and the LSTM
 * preferred whatever the simpler predictors validate (lstm_margin far below 0), so that these
 * tests exercise the LSTM paths whatever the data favour. */
static void lstm_config(struct detector_config *cfg)
{
    detector_config_default(cfg);
    cfg->train.max_epochs = 4;
    cfg->warm_epochs = 2;
    cfg->lstm_margin = -1000.0f;
    cfg->lstm_min_rows = 0; /* an LSTM serves from the first training on, however few rows */
}

/* model_checkpoint_save of m into a new buffer; caller frees it. */
static unsigned char *ckpt_bytes(const model_t *m, size_t *len)
{
    size_t cap = model_checkpoint_size(m);
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    assert_int_equal(model_checkpoint_save(m, buf, cap, len), 0);
    return buf;
}

/* A detector serving an LSTM, saved with detector_save_shared (its LSTM kept outside the bytes,
 * as a group's members keep it once in the daemon's store) and loaded with that checkpoint
 * (twice: two members sharing one model, the caller's own handle released at once), continues
 * bit for bit as the original over the next 1,200 readings, a retraining (which replaces the
 * shared LSTM) and a fault among them. The shared bytes are smaller than detector_save's by at
 * least the checkpoint; detector_load_shared also takes detector_save's bytes. A detector that
 * serves no LSTM saves the same bytes either way. Refused with ERR_CORRUPT, without a crash:
 * the shared bytes without a model (detector_load, or a NULL lstm), with a model of another
 * shape, truncated, or with a flipped bit. */
static void test_save_shared_round_trip(void **unused)
{
    const int n = 2500, cut = 1300, C = 4;
    float *x = make_process(n, 23);
    for (int t = 2000; t < 2100; t++)
        x[C * t + 1] += 1.0f;
    struct detector_config cfg;
    lstm_config(&cfg);
    detector_t *a, *b = NULL, *c = NULL, *e = NULL;
    assert_int_equal(detector_create(&a, &cfg, C), 0);
    struct detector_result ra, rb, rc;

    /* Before any training nothing serves an LSTM: the shared save is the plain save. */
    for (int t = 0; t < 50; t++)
        step(a, x, t, C, NULL, &ra);
    size_t s0 = detector_save_size(a), l0, l1;
    assert_int_equal(detector_save_shared_size(a), s0);
    unsigned char *p0 = malloc(s0), *p1 = malloc(s0);
    assert_non_null(p0);
    assert_non_null(p1);
    assert_int_equal(detector_save(a, p0, s0, &l0), 0);
    assert_int_equal(detector_save_shared(a, p1, s0, &l1), 0);
    assert_int_equal(l0, l1);
    assert_memory_equal(p0, p1, l0);
    free(p0);
    free(p1);

    for (int t = 50; t < cut; t++)
        step(a, x, t, C, NULL, &ra);
    const model_t *serving = detector_model(a);
    assert_non_null(serving);
    size_t clen;
    unsigned char *ckpt = ckpt_bytes(serving, &clen);
    size_t full = detector_save_size(a), cap = detector_save_shared_size(a), len;
    assert_int_equal(cap + clen, full + 4); /* less the checkpoint, plus its fingerprint */
    unsigned char *buf = malloc(cap), *fbuf = malloc(full);
    assert_non_null(buf);
    assert_non_null(fbuf);
    assert_int_equal(detector_save_shared(a, buf, cap - 1, &len), ERR_RANGE);
    assert_int_equal(detector_save_shared(a, buf, cap, &len), 0);
    assert_int_equal(len, cap);
    size_t flen;
    assert_int_equal(detector_save(a, fbuf, full, &flen), 0);

    /* The checkpoint as the daemon reads it back, shared by two loaded detectors. */
    model_t *m;
    assert_int_equal(model_checkpoint_load(&m, ckpt, clen), 0);
    assert_int_equal(detector_load_shared(&b, buf, len, m), 0);
    assert_int_equal(detector_load_shared(&c, fbuf, flen, m), 0); /* lstm unused */
    assert_int_equal(detector_load_shared(&e, buf, len, m), 0);
    model_destroy(m); /* b and e hold their own handles */
    assert_ptr_equal(detector_model(b), detector_model(e));
    assert_int_equal(detector_get_state(a), detector_get_state(b));
    int flagged = 0, trained = trainings;
    for (int t = cut; t < n; t++) {
        step(a, x, t, C, NULL, &ra);
        step(b, x, t, C, NULL, &rb);
        step(c, x, t, C, NULL, &rc);
        assert_same_result(&ra, &rb, C);
        assert_same_result(&ra, &rc, C);
        assert_int_equal(ra.kind, DET_KIND_LSTM);
        flagged += ra.is_anomaly;
    }
    print_message("shared save: %zu bytes + checkpoint %zu (plain save %zu); %d trainings, "
                  "%d readings flagged after the load\n",
                  len, clen, full, trainings - trained, flagged);
    assert_true(trainings - trained >= 3); /* a, b, c each retrained (retrain_every 1000) */
    assert_true(flagged > 0);
    /* e, never stepped, still serves the loaded weights, unchanged by b's retraining. */
    size_t elen;
    unsigned char *eb = ckpt_bytes(detector_model(e), &elen);
    assert_int_equal(elen, clen);
    assert_memory_equal(eb, ckpt, clen);
    free(eb);
    detector_destroy(e);
    e = NULL;

    /* Refusals. */
    model_t *other;
    struct model_config mc;
    model_config_default(&mc, C, C);
    mc.n_hidden = cfg.n_hidden + 4;
    assert_int_equal(model_create(&other, &mc), 0);
    assert_int_equal(model_checkpoint_load(&m, ckpt, clen), 0);
    assert_int_equal(detector_load(&e, buf, len), ERR_CORRUPT);
    assert_int_equal(detector_load_shared(&e, buf, len, NULL), ERR_CORRUPT);
    assert_int_equal(detector_load_shared(&e, buf, len, other), ERR_CORRUPT);
    /* A model of the same shape that is not the one that served (fresh weights; or the same
     * weights one ulp apart in the checkpoint's last parameter, its CRC redone). */
    model_t *twin;
    mc.n_hidden = cfg.n_hidden;
    mc.seed = 99;
    assert_int_equal(model_create(&twin, &mc), 0);
    assert_int_equal(detector_load_shared(&e, buf, len, twin), ERR_CORRUPT);
    model_destroy(twin);
    unsigned char *alt = malloc(clen);
    assert_non_null(alt);
    memcpy(alt, ckpt, clen);
    alt[clen - 8] ^= 0x01; /* one ulp of the last parameter (little-endian, before the CRC) */
    uint32_t acrc = model__crc32(0, alt, clen - 4);
    memcpy(alt + clen - 4, &acrc, 4);
    assert_int_equal(model_checkpoint_load(&twin, alt, clen), 0);
    assert_int_equal(detector_load_shared(&e, buf, len, twin), ERR_CORRUPT);
    model_destroy(twin);
    free(alt);
    assert_int_equal(detector_load_shared(&e, buf, 0, m), ERR_CORRUPT);
    assert_int_equal(detector_load_shared(&e, buf, 10, m), ERR_CORRUPT);
    assert_int_equal(detector_load_shared(&e, buf, len / 2, m), ERR_CORRUPT);
    assert_int_equal(detector_load_shared(&e, buf, len - 1, m), ERR_CORRUPT);
    for (size_t at = 0; at < len; at += len / 11 + 1) {
        buf[at] ^= 0x04;
        assert_int_equal(detector_load_shared(&e, buf, len, m), ERR_CORRUPT);
        buf[at] ^= 0x04;
    }
    assert_int_equal(detector_load_shared(&e, buf, len, m), 0); /* intact again */
    detector_destroy(e);
    model_destroy(other);
    model_destroy(m);
    detector_destroy(a);
    detector_destroy(b);
    detector_destroy(c);
    free(ckpt);
    free(buf);
    free(fbuf);
    free(x);
}

/* Batched group calibration: a group of four members with windows of different lengths (so
 * some members leave the batch before others) and different noise; the group job's decision
 * (an LSTM) taken by each member one at a time (detector_job_share) and by all at once
 * (detector_job_share_batch), on twin detectors; one member's held-out tail leaves the range
 * the group trained on, so the LSTM's inputs are clamped there. Both give the same decision
 * (version, kind, swap, per-channel fallback), the same predictions afterwards (bit for bit: the
 * same shared model and carried states), and the same error scales and long windows to the rounding
 * of the batched sgemm: over the next 300 readings the raw scores agree within SHARE_TOL relative
 * and the likelihoods within SHARE_TOL absolute, the states exactly. Also ERR_INVAL for n < 1, a
 * NULL job or a job of another channel count. */
#define SHARE_TOL 1e-4f
static void test_share_batch_matches_single(void **unused)
{
    enum { M = 4, C = 4, MORE = 300 };
    const int len[M] = {900, 700, 1000, 600};
    struct detector_config cfg;
    lstm_config(&cfg);
    cfg.retrain_every = 0;
    float *x[M];
    detector_t *ds[M], *db[M];
    struct detector_result rs, rb;
    int total = 0;
    for (int i = 0; i < M; i++) {
        x[i] = make_process(len[i] + MORE, 60 + (uint64_t)i);
        uint64_t s = 300 + (uint64_t)i;
        for (int t = 0; t < (len[i] + MORE) * C; t++)
            x[i][t] += 0.05f * (float)i * (float)gauss(&s);
        if (i == 1) /* an excursion in its held-out tail, beyond the group's training range */
            for (int t = len[i] - 60; t < len[i] - 40; t++)
                x[i][(size_t)C * t] += 3.0f;
        assert_int_equal(detector_create(&ds[i], &cfg, C), 0);
        assert_int_equal(detector_create(&db[i], &cfg, C), 0);
        for (int t = 0; t < len[i]; t++) {
            assert_int_equal(detector_step(ds[i], x[i] + (size_t)C * t, NULL, &rs), 0);
            assert_int_equal(detector_step(db[i], x[i] + (size_t)C * t, NULL, &rb), 0);
        }
        total += len[i];
    }
    float *pool = malloc(sizeof(float) * (size_t)total * C);
    assert_non_null(pool);
    for (int i = 0, at = 0; i < M; at += len[i], i++)
        memcpy(pool + (size_t)at * C, x[i], sizeof(float) * (size_t)len[i] * C);
    detector_job_t *g, *js[M], *jb[M];
    assert_int_equal(detector_job_create(&g, ds[0]), 0);
    assert_int_equal(detector_job_set_pooled(g, pool, len, M), 0);
    assert_int_equal(detector_job_run(g), 0);

    /* Refusals, on jobs of their own (a refused batch leaves its jobs unusable). */
    detector_t *two;
    assert_int_equal(detector_create(&two, &cfg, 2), 0);
    float x2[2] = {0};
    for (int t = 0; t < cfg.warmup; t++) {
        x2[0] = (float)t;
        x2[1] = (float)(t % 7);
        assert_int_equal(detector_step(two, x2, NULL, &rs), 0);
    }
    detector_job_t *bad[2], *none[2] = {NULL, NULL};
    assert_int_equal(detector_job_create(&bad[0], ds[0]), 0);
    assert_int_equal(detector_job_create(&bad[1], two), 0);
    assert_int_equal(detector_job_set_data(bad[0], x[0], len[0]), 0);
    float *rows2 = calloc((size_t)cfg.warmup * 2, sizeof(float));
    assert_non_null(rows2);
    assert_int_equal(detector_job_set_data(bad[1], rows2, cfg.warmup), 0);
    assert_int_equal(detector_job_share_batch(bad, 0, g), ERR_INVAL);
    assert_int_equal(detector_job_share_batch(none, 2, g), ERR_INVAL);
    assert_int_equal(detector_job_share_batch(bad, 2, g), ERR_INVAL);
    assert_int_equal(detector_job_share_batch(bad, 1, NULL), ERR_INVAL);
    detector_job_destroy(bad[0]);
    detector_job_destroy(bad[1]);
    detector_destroy(two);
    free(rows2);

    struct detector_train_info is[M], ib[M];
    for (int i = 0; i < M; i++) {
        assert_int_equal(detector_job_create(&js[i], ds[i]), 0);
        assert_int_equal(detector_job_create(&jb[i], db[i]), 0);
        assert_int_equal(detector_job_set_data(js[i], x[i], len[i]), 0);
        assert_int_equal(detector_job_set_data(jb[i], x[i], len[i]), 0);
        assert_int_equal(detector_job_share(js[i], g), 0);
    }
    assert_int_equal(detector_job_share_batch(jb, M, g), 0);
    for (int i = 0; i < M; i++) {
        assert_int_equal(detector_job_apply(ds[i], js[i], &is[i]), 0);
        assert_int_equal(detector_job_apply(db[i], jb[i], &ib[i]), 0);
        assert_int_equal(is[i].kind, DET_KIND_LSTM);
        assert_int_equal(ib[i].kind, DET_KIND_LSTM);
        assert_int_equal(is[i].version, ib[i].version);
        assert_int_equal(is[i].swapped, ib[i].swapped);
        assert_memory_equal(is[i].persist, ib[i].persist, C);
        detector_job_destroy(js[i]);
        detector_job_destroy(jb[i]);
    }
    detector_job_destroy(g);

    float draw = 0.0f, dlik = 0.0f;
    for (int i = 0; i < M; i++)
        for (int t = len[i]; t < len[i] + MORE; t++) {
            assert_int_equal(detector_step(ds[i], x[i] + (size_t)C * t, NULL, &rs), 0);
            assert_int_equal(detector_step(db[i], x[i] + (size_t)C * t, NULL, &rb), 0);
            assert_memory_equal(rs.pred, rb.pred, sizeof(float) * C);
            assert_true(isfinite(rs.raw) && isfinite(rb.raw));
            float r = fabsf(rs.raw - rb.raw) / (1.0f + rs.raw),
                  l = fabsf(rs.likelihood - rb.likelihood);
            draw = r > draw ? r : draw;
            dlik = l > dlik ? l : dlik;
            assert_true(r <= SHARE_TOL);
            assert_true(l <= SHARE_TOL);
            assert_int_equal(rs.state, rb.state);
            assert_int_equal(rs.version, rb.version);
        }
    print_message("share_batch against share: largest raw score difference %.3g (relative), "
                  "likelihood %.3g\n",
                  (double)draw, (double)dlik);
    for (int i = 0; i < M; i++) {
        detector_destroy(ds[i]);
        detector_destroy(db[i]);
        free(x[i]);
    }
    free(pool);
}

/* One group's calibration with the fewest rows allowed: each of three members' own window is
 * warmup (16, the least a detector accepts) rows, the group job's windows are long enough to
 * train its LSTM; the members take its decision in one detector_job_share_batch, a fourth
 * detector trains alone on 16 rows (detector_job_run). Then each steps 60 more readings.
 * Returns every step's results and every detector's detector_save bytes afterwards. With
 * perturb, glibc fills what malloc returns with a byte of our choosing (M_PERTURB), so an error
 * row that calibration reads without writing takes a different value in each run. */
enum { MIN_MEMBERS = 3, MIN_MORE = 60 };
struct min_run {
    unsigned char *save[MIN_MEMBERS + 1];
    size_t len[MIN_MEMBERS + 1];
    struct detector_result res[MIN_MEMBERS + 1][MIN_MORE];
};

static void min_rows_run(struct min_run *out, int perturb, int calib_all)
{
#ifdef __GLIBC__
    mallopt(M_PERTURB, perturb);
#else
    (void)perturb;
#endif
    enum { C = 4, W = 600 };
    struct detector_config cfg;
    lstm_config(&cfg);
    cfg.warmup = 16;
    cfg.retrain_every = 0;
    cfg.calib_all = calib_all;
    float *x[MIN_MEMBERS + 1], *pool = malloc(sizeof(float) * MIN_MEMBERS * W * C);
    assert_non_null(pool);
    detector_t *d[MIN_MEMBERS + 1];
    detector_job_t *js[MIN_MEMBERS + 1], *g;
    const int lens[MIN_MEMBERS] = {W, W, W};
    struct detector_result r;
    for (int i = 0; i <= MIN_MEMBERS; i++) {
        x[i] = make_process(W + MIN_MORE, 80 + (uint64_t)i);
        assert_int_equal(detector_create(&d[i], &cfg, C), 0);
        for (int t = 0; t < W; t++)
            assert_int_equal(detector_step(d[i], x[i] + (size_t)C * t, NULL, &r), 0);
        if (i < MIN_MEMBERS)
            memcpy(pool + (size_t)i * W * C, x[i], sizeof(float) * W * C);
        assert_int_equal(detector_job_create(&js[i], d[i]), 0);
        /* The newest warmup rows only: one fewer is refused. */
        const float *tail = x[i] + (size_t)(W - cfg.warmup) * C;
        assert_int_equal(detector_job_set_data(js[i], tail + C, cfg.warmup - 1), ERR_RANGE);
        assert_int_equal(detector_job_set_data(js[i], tail, cfg.warmup), 0);
    }
    assert_int_equal(detector_job_create(&g, d[0]), 0);
    assert_int_equal(detector_job_set_pooled(g, pool, lens, MIN_MEMBERS), 0);
    assert_int_equal(detector_job_run(g), 0);
    assert_int_equal(detector_job_share_batch(js, MIN_MEMBERS, g), 0);
    assert_int_equal(detector_job_run(js[MIN_MEMBERS]), 0);
    struct detector_train_info info;
    const model_t *shared = NULL; /* the group's model (alive while a member holds it) */
    for (int i = 0; i <= MIN_MEMBERS; i++) {
        assert_int_equal(detector_job_apply(d[i], js[i], &info), 0);
        if (i < MIN_MEMBERS) {
            assert_int_equal(info.kind, DET_KIND_LSTM);
            /* The members serve the group's one model, float32 (serving_f16 is for own ones). */
            if (i == 0)
                shared = detector_model(d[0]);
            assert_ptr_equal(detector_model(d[i]), shared);
            assert_int_equal(model_is_compact(detector_model(d[i])), 0);
        }
        detector_job_destroy(js[i]);
        for (int t = 0; t < MIN_MORE; t++) {
            struct detector_result *res = &out->res[i][t];
            assert_int_equal(detector_step(d[i], x[i] + (size_t)C * (W + t), NULL, res), 0);
            assert_true(isfinite(res->raw) && res->raw >= 0.0f);
            assert_true(isfinite(res->likelihood));
        }
        size_t cap = detector_save_size(d[i]);
        out->save[i] = malloc(cap);
        assert_non_null(out->save[i]);
        assert_int_equal(detector_save(d[i], out->save[i], cap, &out->len[i]), 0);
        detector_destroy(d[i]);
        free(x[i]);
    }
    detector_job_destroy(g);
    free(pool);
#ifdef __GLIBC__
    mallopt(M_PERTURB, 0);
#endif
}

/* With the fewest rows allowed, calibration writes every error row it reads: two runs whose
 * fresh memory holds different bytes (0x7f..., a float of 3.4e38, and 0xbf..., -1.49) give
 * finite scores and the same results and saved detectors bit for bit; both for calib_all 0
 * (the validation tail) and 1 (every row after one row of context). Without glibc the runs
 * are only compared (and valgrind, which sees uninitialised reads, is the stronger check). */
static void test_min_rows_calibration(void **unused)
{
    for (int calib_all = 0; calib_all <= 1; calib_all++) {
        struct min_run *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
        assert_non_null(a);
        assert_non_null(b);
        min_rows_run(a, 0x80, calib_all);
        min_rows_run(b, 0x40, calib_all);
        for (int i = 0; i <= MIN_MEMBERS; i++) {
            for (int t = 0; t < MIN_MORE; t++)
                assert_same_result(&a->res[i][t], &b->res[i][t], 4);
            assert_int_equal(a->len[i], b->len[i]);
            assert_memory_equal(a->save[i], b->save[i], a->len[i]);
            free(a->save[i]);
            free(b->save[i]);
        }
        free(a);
        free(b);
    }
}

/* A linear process, n readings of C = 4 channels: each channel relaxes towards its own level
 * and leans on the next one, x_t[c] = 0.8 x_{t-1}[c] + 0.15 x_{t-1}[c+1] + noise (around
 * levels 10 + c). The linear baseline is the exact model of it, so it validates better than a
 * briefly trained LSTM. */
static float *make_linear(int n, uint64_t seed)
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

/* model_kind on data where the linear baseline wins: auto serves it; lstm serves the LSTM
 * from the first training on, and a later candidate LSTM replaces the serving one exactly when
 * it validates better; linear never trains an LSTM (no LSTM cost in any training's report).
 * The three detectors see the same readings and train at the same points (200 and 1,200). */
static void test_model_kind(void **unused)
{
    enum { N = 1400, C = 4 };
    float *x = make_linear(N, 77);
    const int kinds[3] = {DET_MODEL_AUTO, DET_MODEL_LSTM, DET_MODEL_LINEAR};
    enum detector_kind served[3];
    int trained[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        struct detector_config cfg;
        detector_config_default(&cfg);
        cfg.train.max_epochs = 4;
        cfg.warm_epochs = 2;
        cfg.model_kind = kinds[k];
        detector_t *d;
        assert_int_equal(detector_create(&d, &cfg, C), 0);
        struct detector_result res;
        for (int t = 0; t < N; t++) {
            assert_int_equal(detector_step_ts(d, (int64_t)t * 1000, x + (size_t)C * t, NULL, &res),
                             0);
            if (!res.want_train)
                continue;
            detector_job_t *job;
            assert_int_equal(detector_job_create(&job, d), 0);
            assert_int_equal(detector_job_set_data(job, x, t + 1), 0);
            assert_int_equal(detector_job_run(job), 0);
            struct detector_train_info info;
            assert_int_equal(detector_job_apply(d, job, &info), 0);
            detector_job_destroy(job);
            print_message("model_kind %d at %d: swapped %d kind %d (lstm %.4f linear %.4f "
                          "persistence %.4f serving %.4f)\n",
                          kinds[k], t, info.swapped, info.kind, info.val_mse_lstm,
                          info.val_mse_linear, info.val_mse_persistence, info.val_mse_serving);
            if (kinds[k] == DET_MODEL_LINEAR || (kinds[k] == DET_MODEL_AUTO && trained[k] == 0)) {
                /* auto at 200: 134 rows of 4 channels are fewer values than the LSTM has
                 * parameters (the default lstm_min_rows, -1): no LSTM trained either */
                assert_true(isnan(info.val_mse_lstm));
                assert_true(info.kind != DET_KIND_LSTM);
            } else {
                assert_false(isnan(info.val_mse_lstm));
                assert_true(info.val_mse_linear < info.val_mse_lstm); /* linear wins here */
            }
            if (kinds[k] == DET_MODEL_LSTM) {
                assert_int_equal(info.kind, DET_KIND_LSTM);
                if (trained[k] == 0)
                    assert_int_equal(info.swapped, 1);
                else
                    assert_int_equal(info.swapped, info.val_mse_lstm < info.val_mse_serving);
            }
            trained[k]++;
        }
        served[k] = res.kind;
        assert_int_equal(trained[k], 2);
        assert_true((detector_model(d) != NULL) == (kinds[k] == DET_MODEL_LSTM));
        detector_destroy(d);
    }
    assert_int_equal(served[0], DET_KIND_LINEAR);
    assert_int_equal(served[1], DET_KIND_LSTM);
    assert_true(served[2] != DET_KIND_LSTM);
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
    detector_t *a, *b;
    assert_int_equal(detector_create(&a, &cfg, C), 0);
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
        detector_job_t *job;
        assert_int_equal(detector_job_create(&job, d), 0);
        assert_int_equal(detector_job_set_data(job, x, t + 1), 0);
        assert_int_equal(detector_job_run(job), 0);
        struct detector_train_info info;
        assert_int_equal(detector_job_apply(d, job, &info), 0);
        detector_job_destroy(job);
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
    detector_t *a, *b, *c;
    assert_int_equal(detector_create(&a, &cfg, C), 0);
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

/* ---- ninth round: the operating-point likelihood (op_point) ------------------------------- */

/* Four channels: channel 0 an AR(1) level (coefficient 0.95, stationary deviation 1 around 10,
 * a slowly wandering process level such as a flow or a pressure), channel 1 white noise, and
 * a coupled 60-reading cycle on channels 2 and 3. From `onset` channel 0 moves by `by`
 * stationary deviations over `ramp` readings and stays there. A one-step predictor of an AR
 * level follows the new level after a reading or two (its error is then 0.05 of the step,
 * about 1.6 innovations), so after the onset only the level shows the change. */
static float *make_ar_level(int n, int onset, int ramp, double by, uint64_t seed)
{
    float *x = malloc(sizeof(float) * 4 * (size_t)n);
    assert_non_null(x);
    uint64_t s = seed;
    double ar = 0.0;
    const double innov = sqrt(1.0 - 0.95 * 0.95);
    for (int t = 0; t < n; t++) {
        double v = sin(2.0 * 3.14159265358979 * t / 60.0);
        ar = 0.95 * ar + innov * gauss(&s);
        double shift = t < onset ? 0.0 : t >= onset + ramp ? by : by * (t - onset + 1) / ramp;
        x[4 * t + 0] = (float)(10.0 + ar + shift);
        x[4 * t + 1] = (float)(3.0 + 0.1 * gauss(&s));
        x[4 * t + 2] = (float)(v + 0.05 * gauss(&s));
        x[4 * t + 3] = (float)(5.0 + 0.5 * v + 0.05 * gauss(&s));
    }
    return x;
}

/* A detector loaded from d's save, to run beside d (it must answer as d does). */
static detector_t *reloaded(const detector_t *d)
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
static void step_twin(detector_t *d, detector_t **e, int save_at, const float *x, int t, int C,
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
static int onset_run(const struct detector_config *cfg, float *x, int n, int C, int onset,
                     int save_at, int *before, int *top, int *held)
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

/* Runs make_ar_level(1800, 1500, ramp, by, seed) through a detector with op_point set as
 * given; returns the readings from the onset to the first flagged one (-1: never), *before the
 * anomalies opened before the onset, *top the top channel at the first flagged reading, *held
 * the flagged readings from the onset on (300 readings). With
 * save_at > 0, the detector is saved there and a loaded copy runs beside it and must agree bit
 * for bit. */
static int ar_level_delay(int op_point, int ramp, double by, uint64_t seed, int save_at,
                          int *before, int *top, int *held)
{
    const int n = 1800, onset = 1500, C = 4;
    float *x = make_ar_level(n, onset, ramp, by, seed);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.op_point = op_point;
    cfg.shift_len = 0; /* the operating point alone (the step test holds such a step too) */
    return onset_run(&cfg, x, n, C, onset, save_at, before, top, held);
}

/* A lasting step of 10 stationary deviations on an AR level channel, seeds 1-6: the one-step
 * error flags its onset (or not: seed 5) and then lets go, since the predictor follows the new
 * level; with op_point (the default) the episode opens within FAULT_LATENCY readings and is
 * held for at least 250 of the 300 readings after the onset (accept_after is 500), nothing
 * flagged before it. Without the term no seed holds it for 100 readings (6-69 measured), so
 * the test fails with the setting off. A save before the onset, loaded, continues bit for bit
 * through the shift (format 8's operating-point state). */
static void test_op_point_level_shift(void **unused)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.op_point, 1);
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int b1, t1, h1, b0, t0, h0;
        int on = ar_level_delay(1, 1, 10.0, seed, seed == 1 ? 1400 : -1, &b1, &t1, &h1);
        int off = ar_level_delay(0, 1, 10.0, seed, -1, &b0, &t0, &h0);
        print_message("seed %d: op_point 1: delay %d top %d, %d of 300 flagged (%d before); "
                      "op_point 0: delay %d top %d, %d flagged (%d before)\n",
                      (int)seed, on, t1, h1, b1, off, t0, h0, b0);
        assert_int_equal(b1, 0);
        assert_true(on >= 0 && on <= FAULT_LATENCY);
        assert_true(h1 >= 250);
        assert_true(h0 < 100);
    }
}

/* A format-7 save (no op_point in its config; its padding bytes, where op_point may lie, set
 * to junk) loads with op_point 0 and continues bit for bit as a detector without the term; the
 * same bytes claimed as format 8 are refused if they lack the state the config asks for. */
static void test_load_format7(void **unused)
{
    const int n = 1800, cut = 1300, C = 4;
    float *x = make_ar_level(n, 1500, 1, 6.0, 1);
    struct detector_config cfg;
    detector_config_default(&cfg);
    config_as_format(&cfg, offsetof(struct detector_config, op_point));
    detector_t *a, *b;
    assert_int_equal(detector_create(&a, &cfg, C), 0);
    struct detector_result ra, rb;
    for (int t = 0; t < cut; t++)
        step(a, x, t, C, NULL, &ra);
    size_t len = detector_save_size(a), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(a, buf, len, &got), 0);
    /* Format 7's config ends at op_point, padded to the struct's alignment. */
    const size_t cfg7 =
        (offsetof(struct detector_config, op_point) + _Alignof(struct detector_config) - 1) /
        _Alignof(struct detector_config) * _Alignof(struct detector_config);
    const size_t at = 12 + offsetof(struct detector_config, op_point);
    cut_ep_accepted(buf, &len);
    memmove(buf + 12 + cfg7, buf + 12 + sizeof cfg, len - 12 - sizeof cfg);
    len -= sizeof cfg - cfg7;
    if (at + sizeof(int) <= 12 + cfg7) { /* op_point took format 7's padding: junk there */
        const int junk = 1;
        memcpy(buf + at, &junk, sizeof junk);
    }
    uint32_t fmt = 7;
    memcpy(buf + 4, &fmt, 4);
    uint32_t crc = model__crc32(0, buf, len - 4);
    memcpy(buf + len - 4, &crc, 4);
    assert_int_equal(detector_load(&b, buf, len), 0);
    int flagged_a = 0;
    for (int t = cut; t < n; t++) {
        step(a, x, t, C, NULL, &ra);
        step(b, x, t, C, NULL, &rb);
        assert_same_result(&ra, &rb, C);
        flagged_a += ra.is_anomaly;
    }
    if (at + sizeof(int) <= 12 + cfg7) {
        /* As format 8 the junk is op_point 1, whose state the bytes do not hold. */
        fmt = 8;
        memcpy(buf + 4, &fmt, 4);
        crc = model__crc32(0, buf, len - 4);
        memcpy(buf + len - 4, &crc, 4);
        detector_t *c = NULL;
        assert_int_equal(detector_load(&c, buf, len), ERR_CORRUPT);
    }
    print_message("format 7 load: %d flagged readings after the cut, as saved\n", flagged_a);
    detector_destroy(a);
    detector_destroy(b);
    free(buf);
    free(x);
}

/* ---- tenth round: the seasonal candidate (season_bins) ------------------------------------ */

/* One channel with a daily-like cycle of SEASON_P readings (longer than the LSTM's context): a
 * plateau 2 units high for the middle half of each cycle (sharp edges, as a shift schedule or a
 * batch process makes) on a sine of amplitude 0.5, Gaussian noise 0.05. From `stop` on the cycle
 * stops: the channel stays at its level between cycles (the pattern is gone, as in a machine that
 * no longer runs its shifts). */
#define SEASON_P 100
static float *make_shifts(int n, int stop, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    assert_non_null(x);
    uint64_t s = seed;
    for (int t = 0; t < n; t++) {
        const int ph = t % SEASON_P;
        double v = 5.0;
        if (t < stop)
            v += (ph >= SEASON_P / 4 && ph < 3 * SEASON_P / 4 ? 2.0 : 0.0) +
                 0.5 * sin(2.0 * 3.14159265358979 * ph / SEASON_P);
        x[t] = (float)(v + 0.05 * gauss(&s));
    }
    return x;
}

/* Runs make_shifts(n, stop, seed) through a detector with season_bins as given (the rest the
 * defaults); returns the readings from the first missed edge (the first cycle start at or
 * after stop plus a quarter cycle) to the first flagged reading (-1: never), the anomalies
 * opened before stop in *before, the flagged readings from the missed edge on in *held (100
 * readings), and the last training's report before stop in *info (a training that an
 * offset_release asks for after it sees the cycle gone). With save_at > 0 a loaded copy saved
 * there runs beside it and must agree bit for bit. */
static int season_delay(int bins, uint64_t seed, int save_at, int *before, int *held,
                        struct detector_train_info *info)
{
    const int n = 1700, stop = 1500;
    const int edge = (stop + SEASON_P - 1) / SEASON_P * SEASON_P + SEASON_P / 4;
    float *x = make_shifts(n, stop, seed);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.season_bins = bins;
    detector_t *d, *e = NULL;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res, re;
    int flagged_at = -1;
    *before = *held = 0;
    for (int t = 0; t < n; t++) {
        if (t == save_at)
            e = reloaded(d);
        assert_int_equal(detector_step_ts(d, (int64_t)t * 1000, x + t, NULL, &res), 0);
        if (e) {
            assert_int_equal(detector_step_ts(e, (int64_t)t * 1000, x + t, NULL, &re), 0);
            assert_same_result(&res, &re, 1);
        }
        if (res.want_train) {
            struct detector_train_info late;
            train_on(d, x, t + 1, t < stop ? info : &late);
            if (e) {
                struct detector_train_info ie;
                train_on(e, x, t + 1, &ie);
            }
        }
        if (t < stop)
            *before += res.changed && res.state == DET_ANOMALY;
        if (t >= edge && t < edge + 100) {
            *held += res.is_anomaly;
            if (res.is_anomaly && flagged_at < 0)
                flagged_at = t;
        }
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
    return flagged_at < 0 ? -1 : flagged_at - edge;
}

/* A cycle whose sharp edges a one-step predictor cannot foresee, seeds 1-4: with the seasonal
 * candidate its training at reading 1,200 finds the period (100 readings) and predicts the
 * channel by the profile, so when the cycle stops the missed edge is flagged within FAULT_LATENCY
 * readings and held for at least 50 of the 100 readings after it, with nothing flagged before.
 * Without it (season_bins 0) the error scale spans the edges and the flat channel is predicted
 * better than ever: never flagged (measured: 92-100 of 100 readings flagged at once with it, none
 * without), so the test fails with the setting off. A save before the stop, with the profile
 * serving, loaded, continues bit for bit through it (format 10's seasonal state). */
static void test_season_missing_cycle(void **unused)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.season_bins, 256);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct detector_train_info i1, i0;
        int b1, h1, b0, h0;
        int on = season_delay(256, seed, seed == 1 ? 1400 : -1, &b1, &h1, &i1);
        int off = season_delay(0, seed, -1, &b0, &h0, &i0);
        print_message("seed %d: season_bins 256: period %d chosen %d, delay %d, %d of 100 "
                      "flagged (%d before); 0: delay %d, %d flagged (%d before)\n",
                      (int)seed, i1.season_period[0], i1.season[0], on, h1, b1, off, h0, b0);
        assert_int_equal(i1.season_period[0], SEASON_P);
        assert_int_equal(i1.season[0], 1);
        assert_int_equal(i0.season[0], 0);
        assert_int_equal(b1, 0);
        assert_true(on >= 0 && on <= FAULT_LATENCY);
        assert_true(h1 >= 50);
        assert_true(off < 0 || off > FAULT_LATENCY);
    }
}

/* season_opinion: one channel, a daily load curve of period OPIN_P: low for 80 readings, a
 * 20-reading ramp up by 2, high for 80, a ramp down, under an AR(1) wander (0.5, innovations
 * 0.2); a ramp's steps (0.1 a reading) are ordinary against the wander's, so the training at
 * 1,200 finds the period but the profile does not validate 10 % better as a one-step predictor
 * and is not chosen. From `stop` (the start of a low phase) the load curve fails to come: the
 * next ramp up (from stop + 80) does not happen, the channel stays low, every reading an
 * ordinary step from the last; or, with keep > 0, the curve flattens: from `stop` the day's
 * swing is keep times its own (keep 0: it fails to come). */
#define OPIN_P 200
static float *make_slow_cycle(int n, int stop, uint64_t seed, double keep)
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

/* Replays make_slow_cycle (stop 1,500, keep; the defaults with season_opinion = opin & 3,
 * opinion_open = opin >> 2 (off unless asked: the older tests measure the score) and
 * season_accum = accum) and returns the
 * readings from the missed ramp's start (stop + 80) to the first reported score at or above
 * score_level (-1: not within the 100 readings the high phase would have lasted); *flag the
 * same for the first flagged reading, *before the readings scored at or above score_level and
 * the anomalies opened between the first training and the stop, *info the training at 1,200's
 * report. With save_at > 0 a loaded copy saved there runs beside it and must agree bit for
 * bit. */
static int opinion_delay(int opin, float accum, double keep, uint64_t seed, int save_at, int *flag,
                         int *before, struct detector_train_info *info)
{
    const int stop = 1500, miss = stop + 80, n = miss + 100;
    float *x = make_slow_cycle(n, stop, seed, keep);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.season_opinion = opin & 3;
    cfg.opinion_open = opin >> 2;
    cfg.season_accum = accum;
    cfg.lstm_min_rows = 0; /* the premise: an LSTM (800 rows) serves and the profile does not */
    detector_t *d, *e = NULL;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res, re;
    int scored_at = -1, flagged_at = -1;
    *before = 0;
    for (int t = 0; t < n; t++) {
        if (t == save_at)
            e = reloaded(d);
        assert_int_equal(detector_step_ts(d, (int64_t)t * 1000, x + t, NULL, &res), 0);
        if (e) {
            assert_int_equal(detector_step_ts(e, (int64_t)t * 1000, x + t, NULL, &re), 0);
            assert_same_result(&res, &re, 1);
        }
        if (res.want_train) {
            struct detector_train_info it;
            train_on(d, x, t + 1, &it);
            if (t + 1 == 1200)
                *info = it;
            if (e) {
                struct detector_train_info ie;
                train_on(e, x, t + 1, &ie);
            }
        }
        if (t >= 1200 && t < stop)
            *before += (res.changed && res.state == DET_ANOMALY) + (res.score >= cfg.score_level);
        if (t >= miss && res.score >= cfg.score_level && scored_at < 0)
            scored_at = t;
        if (t >= miss && res.is_anomaly && flagged_at < 0)
            flagged_at = t;
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
    *flag = flagged_at < 0 ? -1 : flagged_at - miss;
    return scored_at < 0 ? -1 : scored_at - miss;
}

/* A daily load curve that fails to come (seeds 1-4): the training at 1,200 finds its period and
 * does not choose the profile. With season_opinion 1 (the default) the profile is kept as a
 * second opinion and the missed ramp's day is reported at or above score_level before the high
 * phase would have ended, nothing between the training and the stop; with 3 it is flagged
 * too. With 0 the one-step predictor, which sees ordinary steps, neither scores nor flags it in
 * that time in any seed, so the test fails with the setting off; with 1 the flags are 0's (the
 * decision is unchanged). A save at 1,400, loaded, continues bit for bit through the stop
 * (format 12's state). */
static void test_opinion_missing_cycle(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.season_opinion, 1);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct detector_train_info i1, i3, i0;
        int f1, f3, f0, b1, b3, b0;
        int s1 = opinion_delay(1, 0.0f, 0.0, seed, seed == 1 ? 1400 : -1, &f1, &b1, &i1);
        int s3 = opinion_delay(3, 0.0f, 0.0, seed, seed == 2 ? 1400 : -1, &f3, &b3, &i3);
        int s0 = opinion_delay(0, 0.0f, 0.0, seed, -1, &f0, &b0, &i0);
        print_message("seed %d: period %d chosen %d; season_opinion 1: score after %d, flag %d "
                      "(%d before); 3: score %d, flag %d (%d before); 0: score %d, flag %d (%d "
                      "before)\n",
                      (int)seed, i1.season_period[0], i1.season[0], s1, f1, b1, s3, f3, b3, s0, f0,
                      b0);
        assert_true(abs(i1.season_period[0] - OPIN_P) <= OPIN_P / 20);
        assert_int_equal(i1.season[0], 0);
        assert_int_equal(b1, 0);
        assert_int_equal(b3, 0);
        assert_true(s1 >= 0);
        assert_true(f3 >= 0);
        assert_int_equal(f1, f0);
        assert_int_equal(s0, -1);
        assert_int_equal(f0, -1);
    }
}

/* A format-9 save (no season_bins in its config; junk where season_bins may lie in its tail
 * padding) loads with season_bins 0 and continues bit for bit; the same bytes claimed as format
 * 10 are refused when that junk asks for seasonal state the bytes lack. */
static void test_load_format9(void **unused)
{
    enum { N = 1400, CUT = 700 };
    float *x = make_shifts(N, N, 3);
    struct detector_config cfg;
    detector_config_default(&cfg);
    load_older_format(&cfg, x, N, CUT, 1, offsetof(struct detector_config, season_bins), 256, 9);
    free(x);
}

/* Three channels, row-major [n, 3]: make_shifts' cycle (seed 5) on channel 0 and on channel 2
 * (seed 6, a third of a cycle later), Gaussian noise around 3 on channel 1 (no period), the
 * cycles stopping at `stop`. */
static float *make_mixed_season(int n, int stop)
{
    float *a = make_shifts(n + SEASON_P, stop, 5), *b = make_shifts(n + SEASON_P, stop + 33, 6);
    float *x = malloc(sizeof(float) * 3 * (size_t)n);
    assert_non_null(x);
    uint64_t s = 7;
    for (int t = 0; t < n; t++) {
        x[3 * t + 0] = a[t];
        x[3 * t + 1] = (float)(3.0 + 0.1 * gauss(&s));
        x[3 * t + 2] = b[t + 33];
    }
    free(a);
    free(b);
    return x;
}

/* Saves buf's first len - 4 bytes with a fresh CRC as a len-byte blob in out and loads it. */
static int load_recrc(const unsigned char *buf, size_t len, unsigned char *out)
{
    memcpy(out, buf, len - 4);
    uint32_t crc = model__crc32(0, out, len - 4);
    memcpy(out + len - 4, &crc, 4);
    detector_t *d = NULL;
    int rc = detector_load(&d, out, len);
    detector_destroy(d);
    return rc;
}

/* Format 10 keeps a seasonal profile only for the channels that use one. Three channels, the
 * linear baseline serving (no LSTM checkpoint, so the blob's tail layout is known here): after
 * the training at 1,200 the two cycling channels choose their profile and the noise channel
 * does not. The save is then exactly 4 x season_bins bytes per chosen channel longer than the
 * fresh detector's, which itself holds only the 13 bytes a channel of flags and scalars more
 * than with season_bins 0 (main's layout saved C x season_bins floats whatever was chosen). A
 * copy loaded there serves bit for bit as the saved one (steps, forecasts, and a training at
 * 2,200 after the cycles stop, which replaces the profiles). Blobs whose profiles are cut, or
 * whose flags claim more or fewer profiles than they hold, are refused (CRC redone). */
static void test_season_save_only_chosen(void **unused)
{
    enum { C = 3, N = 2600, STOP = 2100, CUT = 1500, K = 20 };
    float *x = make_mixed_season(N, STOP);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.model_kind = DET_MODEL_LINEAR;
    /* The offsets below are format 10's layout: no state of format 11's fields on (shift_len's
     * would sit between the profiles and the tail). */
    config_as_format(&cfg, offsetof(struct detector_config, burst_memory));
    cfg.season_bins = 0;
    detector_t *a, *b = NULL;
    assert_int_equal(detector_create(&a, &cfg, C), 0);
    const size_t size_nobins = detector_save_size(a);
    detector_destroy(a);
    cfg.season_bins = 256;
    assert_int_equal(detector_create(&a, &cfg, C), 0);
    const size_t size_fresh = detector_save_size(a);
    assert_int_equal(size_fresh, size_nobins + 13 * C);

    struct detector_result ra, rb;
    struct detector_train_info info;
    memset(&info, 0, sizeof info);
    for (int t = 0; t < CUT; t++) {
        assert_int_equal(detector_step_ts(a, (int64_t)t * 1000, x + (size_t)C * t, NULL, &ra), 0);
        if (ra.want_train)
            train_on(a, x, t + 1, &info);
    }
    print_message("at %d: season %d %d %d, periods %d %d %d\n", CUT, info.season[0], info.season[1],
                  info.season[2], info.season_period[0], info.season_period[1],
                  info.season_period[2]);
    assert_int_equal(info.season[0], 1);
    assert_int_equal(info.season[1], 0);
    assert_int_equal(info.season[2], 1);
    const size_t SB = 256, np = 2;
    size_t len = detector_save_size(a), got;
    assert_int_equal(len, size_fresh + np * SB * sizeof(float));
    unsigned char *buf = malloc(len), *alt = malloc(len + 8);
    assert_non_null(buf);
    assert_non_null(alt);
    assert_int_equal(detector_save(a, buf, len, &got), 0);
    assert_int_equal(got, len);

    /* The tail: season [C] | s_period, s_a, s_phi [C] each | profiles [np, SB] | prev_contrib
     * [C] | ring [err_window] | shortbuf [err_short] | checkpoint length 0 | CRC. */
    const size_t prof_end =
        len - 4 - 8 - sizeof(float) * ((size_t)cfg.err_window + (size_t)cfg.err_short + C);
    const size_t prof_at = prof_end - np * SB * sizeof(float);
    const size_t flags_at = prof_at - 3 * 4 * C - C;
    for (int c = 0; c < C; c++)
        assert_int_equal(buf[flags_at + c], info.season[c]);
    assert_int_equal(load_recrc(buf, len, alt), 0); /* the re-CRC'd copy itself loads */
    /* Cut (the bytes before `cut`, then a CRC) inside, at and around the profiles; and every
     * 997th length. */
    for (size_t cut = prof_at - 16; cut <= prof_end + 16; cut += 4)
        assert_int_equal(load_recrc(buf, cut + 4, alt), ERR_CORRUPT);
    for (size_t l = 16; l < len; l += 997)
        assert_int_equal(load_recrc(buf, l, alt), ERR_CORRUPT);
    /* Flags that claim a profile more (channel 1), or one fewer (channel 2), or 2. */
    const unsigned char flips[3][2] = {{1, 1}, {2, 0}, {0, 2}};
    for (int f = 0; f < 3; f++) {
        const unsigned char was = buf[flags_at + flips[f][0]];
        buf[flags_at + flips[f][0]] = flips[f][1];
        assert_int_equal(load_recrc(buf, len, alt), ERR_CORRUPT);
        buf[flags_at + flips[f][0]] = was;
    }

    assert_int_equal(detector_load(&b, buf, len), 0);
    float ma[K * C], ba[K * C], mb[K * C], bb[K * C];
    int changed = 0;
    for (int t = CUT; t < N; t++) {
        step(a, x, t, C, NULL, &ra);
        step(b, x, t, C, NULL, &rb);
        assert_same_result(&ra, &rb, C);
        if (t % 50 == 0) {
            assert_int_equal(detector_forecast(a, ma, ba, K), 0);
            assert_int_equal(detector_forecast(b, mb, bb, K), 0);
            assert_memory_equal(ma, mb, sizeof ma);
            assert_memory_equal(ba, bb, sizeof ba);
        }
        changed += detector_save_size(a) != len;
    }
    print_message("after the stop: save %zu bytes (%zu at the cut), %d readings at another size\n",
                  detector_save_size(a), len, changed);
    detector_destroy(a);
    detector_destroy(b);
    free(alt);
    free(buf);
    free(x);
}

/* ---- eleventh round: the step test (shift_len) ------------------------------------------- */

/* Six channels, row-major [n, 6], a pump seen as SKAB's valve experiments show it: channel 0 a
 * flow hovering around 30 (white noise of deviation 1), channel 1 a temperature (noise 0.02)
 * that wanders 2 units over a 2,500-reading cycle and, from reading 1,000, drops by `drift`
 * more along a half cosine of 300 readings (a drift that sets in and speeds up, far beyond
 * anything in its training rows), channels 2 and 3 a coupled 60-reading cycle, channels 4 and 5
 * white noise (a pressure and a voltage). From `onset` the flow steps down by `by` deviations
 * and stays there. */
static float *make_step_drift(int n, int onset, double by, double drift, uint64_t seed)
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

/* Runs make_step_drift(1800, 1500, by, drift, seed) through a detector with shift_len as given
 * (the defaults otherwise); returns the readings from the onset to the first flagged one (-1:
 * never), with *before the anomalies opened before the onset, *top the top channel at the
 * first flagged reading and *held the flagged readings from the onset on (300). With save_at >
 * 0, a copy loaded from a save there runs beside it and must agree bit for bit. */
static int step_drift_delay(int shift_len, int op_point, double by, double drift, uint64_t seed,
                            int save_at, int *before, int *top, int *held)
{
    const int n = 1800, onset = 1500, C = 6;
    float *x = make_step_drift(n, onset, by, drift, seed);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_len = shift_len;
    cfg.op_point = op_point;
    /* The schedule's trainings as this round measured them: make_step_drift's temperature
     * drift, which opens an episode in some seeds and grows, would put them off with
     * accept_grow (docs/detection.md, "Sixty-third round"). */
    cfg.accept_grow = 0.0f;
    return onset_run(&cfg, x, n, C, onset, save_at, before, top, held);
}

/* The step test on its own (op_point 0, which a step of this size would also trip): a flow
 * level (AR(1), coefficient 0.95, the ninth round's) steps down by 8 stationary deviations at
 * reading 1,500 and stays there, while from reading 1,000 a temperature drifts by 4 units (200
 * of its noise deviations) into a range it never had, seeds 1-6. The one-step error flags the
 * onset (or not: seed 6), then lets go, since the predictor follows the new level: without the
 * test no seed holds it for 250 of the 300 readings after it (1-101 measured). With it the step
 * is held (270-296 measured) once the test sees it, and it opens no episode of its own before
 * the onset, drift or not (the episodes the error opens there, seeds 4 and 5, are the same
 * without it). A save at 1,400, loaded, continues bit for bit through the step (format 11's
 * state). */
static void test_shift_step_held(void **unused)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.shift_len, 32);
    int held_off = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int b1, t1, h1, b0, t0, h0;
        int on = step_drift_delay(32, 0, 8.0, 4.0, seed, seed == 1 ? 1400 : -1, &b1, &t1, &h1);
        int off = step_drift_delay(0, 0, 8.0, 4.0, seed, -1, &b0, &t0, &h0);
        print_message("seed %d: shift_len 32: delay %d top %d, %d of 300 flagged (%d before); "
                      "0: delay %d top %d, %d flagged (%d before)\n",
                      (int)seed, on, t1, h1, b1, off, t0, h0, b0);
        assert_int_equal(b1, b0);
        assert_true(on >= 0 && on <= 2 * def.shift_len);
        assert_true(h1 >= 250);
        held_off += h0 >= 250;
    }
    assert_int_equal(held_off, 0);
}

/* ---- twelfth round: bursts shown before (burst_memory) ------------------------------------ */

#define BURST_FIRST 1250 /* the first burst: after the training at reading 1,200 */
#define BURST_EVERY 100
#define BURST_COUNT 8
#define BURST_STEP  2100 /* the lasting step, before the training at 2,200 */

/* make_process with BURST_COUNT bursts of 3 readings of +0.6 (12 noise deviations) on the
 * current channel, every BURST_EVERY readings from BURST_FIRST, then from BURST_STEP a lasting
 * step of the same +0.6 on that channel. */
static float *make_bursts(int n, uint64_t seed)
{
    float *x = make_process(n, seed);
    for (int b = 0; b < BURST_COUNT; b++)
        for (int k = 0; k < 3; k++)
            x[4 * (BURST_FIRST + b * BURST_EVERY + k) + 1] += 0.6f;
    for (int t = BURST_STEP; t < n; t++)
        x[4 * t + 1] += 0.6f;
    return x;
}

/* Runs make_bursts(2200, seed) through a detector with burst_memory as given; returns the
 * readings from the step to its first flagged one (-1: never), *opened the bursts during which
 * (or in the 10 readings after) an anomaly opened, *before the anomalies opened before the
 * first burst. With save_at > 0 a copy loaded from a save there runs beside it and must agree
 * bit for bit. */
static int burst_run(int burst_memory, uint64_t seed, int save_at, int *opened, int *before)
{
    const int n = 2200, C = 4;
    float *x = make_bursts(n, seed);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.burst_memory = burst_memory;
    detector_t *d, *e = NULL;
    assert_int_equal(detector_create(&d, &cfg, C), 0);
    struct detector_result res;
    int flagged_at = -1;
    *opened = *before = 0;
    int last_burst = -1;
    for (int t = 0; t < n; t++) {
        step_twin(d, &e, save_at, x, t, C, &res);
        int opens = res.changed && res.state == DET_ANOMALY;
        if (t < BURST_FIRST) {
            *before += opens;
        } else if (t < BURST_STEP) {
            int b = (t - BURST_FIRST) / BURST_EVERY, into = (t - BURST_FIRST) % BURST_EVERY;
            if (opens && into < 13 && b != last_burst) {
                (*opened)++;
                last_burst = b;
            }
        } else if (res.is_anomaly && flagged_at < 0) {
            flagged_at = t;
        }
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
    return flagged_at < 0 ? -1 : flagged_at - BURST_STEP;
}

/* Eight identical bursts (3 readings of 12 noise deviations on one channel, every 100
 * readings) after a training, then a lasting step of the same size, seeds 1-4. Without
 * burst_memory 4-5 of the 8 bursts open an episode (the freeze keeps most of each out of the
 * long window; what enters of their ends widens it, so not all); with it (the default) the
 * first does, and a later one only where its peak short mean beats every burst remembered: 2-3
 * of 8. The lasting step, whose short mean rises above every burst's peak, is flagged 4
 * readings after its onset either way, and nothing opens before the first burst. Asserted: at
 * most 3 with the setting, at least 4 and more than with it without (so the test fails with
 * the setting off), the step within FAULT_LATENCY. A save at the second burst (the first
 * remembered), loaded, continues bit for bit (format 11's state). */
static void test_burst_memory(void **unused)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.burst_memory, 1);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        int o1, b1, o0, b0;
        int on = burst_run(1, seed, seed == 1 ? BURST_FIRST + BURST_EVERY + 5 : -1, &o1, &b1);
        int off = burst_run(0, seed, -1, &o0, &b0);
        print_message("seed %d: burst_memory 1: %d of %d bursts opened, step flagged after %d "
                      "(%d before); burst_memory 0: %d opened, step after %d (%d before)\n",
                      (int)seed, o1, BURST_COUNT, on, b1, o0, off, b0);
        assert_int_equal(b1, 0);
        assert_true(o1 >= 1 && o1 <= 3);
        assert_true(o0 >= 4 && o1 < o0);
        assert_true(on >= 0 && on <= FAULT_LATENCY);
    }
}

/* A format-10 save (no burst_memory or shift_len in its config; junk where burst_memory may lie
 * in its tail padding) loads with both 0 and continues bit for bit as the saved detector
 * without them (through the bursts and the step); the same bytes claimed as format 11 are
 * refused. */
static void test_load_format10(void **unused)
{
    enum { N = 2200, CUT = 1300, C = 4 };
    float *x = make_bursts(N, 2);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, N, CUT, C,
                                   offsetof(struct detector_config, burst_memory), 256, 10);
    print_message("format 10 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* cut_and_continue over make_slow_cycle(1680, 1500, seed 1, keep), cut at 1,400 (after the
 * training at 1,200) to format fmt at the config's field, with junk 1 in its padding. */
static void slow_cycle_cut(const struct detector_config *cfg, double keep, size_t field,
                           uint32_t fmt)
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

/* A format-11 save (no season_opinion in its config; junk where the field may lie in its tail
 * padding) of make_slow_cycle's detector after the training at 1,200 loads with season_opinion
 * 0 and continues bit for bit as the saved detector without it, through the missed load curve;
 * the same bytes claimed as format 12 are refused. */
static void test_load_format11(void **unused)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    slow_cycle_cut(&cfg, 0.0, offsetof(struct detector_config, season_opinion), 11);
}

/* ---- fourteenth round: the plain difference where it is the better estimate (shift_plain) -- */

/* make_step_drift's pump, but its flow (channel 0) is white noise of deviation 1 around 30, as
 * SKAB's flows are (lag-1 autocorrelation near 0), stepping down by `by` deviations from reading
 * 1,500; the temperature drifts by 4 units from reading 1,000 as there. Runs it through a
 * detector with the defaults and shift_plain as given; returns the readings from the onset to
 * the first flagged one (-1: never), *before the anomalies opened before the onset, *held the
 * flagged readings from the onset on (300). With save_at > 0, a copy loaded from a save there
 * runs beside it and must agree bit for bit. */
static int plain_step_run(int shift_plain, double by, uint64_t seed, int save_at, int *before,
                          int *held)
{
    const int n = 2150, onset = 1850, C = 6;
    float *x = make_step_drift(n, onset, 0.0, 4.0, seed);
    uint64_t s = seed * 7919u + 17u;
    for (int t = 0; t < n; t++)
        x[C * t + 0] = (float)(30.0 + gauss(&s) - (t >= onset ? by : 0.0));
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_plain = shift_plain;
    /* The schedule's trainings as this round measured them: make_step_drift's temperature
     * drift, which opens an episode in some seeds and grows, would put them off with
     * accept_grow (docs/detection.md, "Sixty-third round"). */
    cfg.accept_grow = 0.0f;
    int top;
    return onset_run(&cfg, x, n, C, onset, save_at, before, &top, held);
}

/* A flow that is white noise around its level (deviation 1) steps down by 2 deviations at
 * reading 1,850 while the temperature has drifted 4 units (200 of its noise deviations) since
 * reading 1,000, seeds 1-6, the defaults otherwise. The lines' jump (shift_len's estimate) has a
 * deviation of half a spread on such a channel, the plain difference of the two 32-reading means
 * a quarter: with shift_plain the flow's plain difference is chosen (its deviation since the
 * training is the smaller) and the step is held in every seed (271-290 of the 300 readings after
 * it measured, first flagged 7-29 readings after it), without it only where the one-step error
 * happens to catch it (seeds 2 and 6: 272; the others 0-43). The temperature keeps the lines'
 * jump (its plain difference varies far more since the training), so the setting opens nothing
 * before the onset that the defaults do not (seed 5 opens one there either way). Asserted: held
 * at least 250 in every seed with it, in at most 2 without (so the test fails with the setting
 * off), flagged within 2 shift_len readings, the same openings before the onset. A save at
 * 1,800, loaded, continues bit for bit through the step (format 13's state). */
static void test_shift_plain_small_step(void **unused)
{
    struct detector_config def;
    detector_config_default(&def);
    int held_off = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int b1, h1, b0, h0;
        int on = plain_step_run(1, 2.0, seed, seed == 1 ? 1800 : -1, &b1, &h1);
        int off = plain_step_run(0, 2.0, seed, -1, &b0, &h0);
        print_message("seed %d: shift_plain 1: delay %d, %d of 300 held (%d before); "
                      "0: delay %d, %d held (%d before)\n",
                      (int)seed, on, h1, b1, off, h0, b0);
        assert_int_equal(b1, b0);
        assert_true(on >= 0 && on <= 2 * def.shift_len);
        assert_true(h1 >= 250);
        held_off += h0 >= 250;
    }
    assert_true(held_off <= 2);
}

/* A format-12 save (no shift_plain in its config; junk where the field lies in the config's
 * tail padding) of a six-channel detector with the step test on loads with shift_plain 0 and
 * continues bit for bit as the saved detector (through a step of 8 deviations, which opens an
 * episode); the same bytes claimed as format 13 are refused (the junk is not a valid
 * shift_plain). */
static void test_load_format12(void **unused)
{
    enum { N = 2150, CUT = 1800, C = 6 };
    float *x = make_step_drift(N, 1850, 8.0, 4.0, 3);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, N, CUT, C,
                                   offsetof(struct detector_config, shift_plain), 256, 12);
    print_message("format 12 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* A format-13 save (no shift_release in its config; junk where the field lies in the config's
 * tail padding) of a six-channel detector with the step test and shift_plain on loads with
 * shift_release 0 and continues bit for bit as the saved detector (through a step of 8 deviations,
 * which opens an episode); the same bytes claimed as format 14 are refused (the junk is not a valid
 * shift_release). */
static void test_load_format13(void **unused)
{
    enum { N = 2150, CUT = 1800, C = 6 };
    float *x = make_step_drift(N, 1850, 8.0, 4.0, 3);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_plain = 1;
    int opened = load_older_format(&cfg, x, N, CUT, C,
                                   offsetof(struct detector_config, shift_release), 256, 13);
    print_message("format 13 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* ---- sixteenth round: the step hold released by the step back (shift_release) ------------- */

/* plain_step_run's pump (its flow white noise of deviation 1 around 30), the flow stepping down
 * by `by` deviations at reading 1,850 and back up at 2,150 (a valve that reopens), the
 * temperature drifting as there; shift_plain on, shift_release as given. Returns the flagged
 * readings in the 150 after the return; *held gets the flagged readings of the 300 in the
 * fault, *before the anomalies opened before the onset. */
static int release_run(int shift_release, double by, uint64_t seed, int *before, int *held)
{
    const int n = 2300, onset = 1850, back = 2150, C = 6;
    float *x = make_step_drift(n, onset, 0.0, 4.0, seed);
    uint64_t s = seed * 7919u + 17u;
    for (int t = 0; t < n; t++)
        x[C * t + 0] = (float)(30.0 + gauss(&s) - (t >= onset && t < back ? by : 0.0));
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_plain = 1;
    cfg.shift_release = shift_release;
    /* The schedule's trainings as this round measured them: make_step_drift's temperature
     * drift, which opens an episode in some seeds and grows, would put them off with
     * accept_grow (docs/detection.md, "Sixty-third round"). */
    cfg.accept_grow = 0.0f;
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, C), 0);
    struct detector_result res;
    int after = 0;
    *before = *held = 0;
    for (int t = 0; t < n; t++) {
        step(d, x, t, C, NULL, &res);
        if (t < onset)
            *before += res.changed && res.state == DET_ANOMALY;
        else if (t < back)
            *held += res.is_anomaly;
        else
            after += res.is_anomaly;
    }
    detector_destroy(d);
    free(x);
    return after;
}

/* The flow steps down by 3 deviations for 300 readings and comes back, seeds 1-6. Without the
 * release the hold lasts until the newest shift_len readings' mean crosses the midpoint between
 * the two levels (about shift_len / 2 readings after the return); with it the step back, judged
 * at alarm_level for the one channel, ends it sooner. Asserted: the fault is held as well with it
 * (at least 250 of its 300 readings in every seed, so the release does not fire inside it), the
 * same openings before the onset, and fewer flagged readings after the return with it than
 * without it in every seed (measured: 11-15 against 23-27; so the test fails with it off). */
static void test_shift_release(void **unused)
{
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int b1, h1, b0, h0;
        int on = release_run(1, 3.0, seed, &b1, &h1);
        int off = release_run(0, 3.0, seed, &b0, &h0);
        print_message("seed %d: shift_release 1: %d of 300 held, %d flagged after the return (%d "
                      "before); 0: %d held, %d after (%d before)\n",
                      (int)seed, h1, on, b1, h0, off, b0);
        assert_int_equal(b1, b0);
        assert_true(h1 >= 250);
        assert_true(on < off);
    }
}

/* ---- seventeenth round: onsets ranked by what the device has shown (onset_record) ---------- */

#define REC_AT_FIRST  1400 /* after the training at reading 1,200; the next is at 2,200 */
#define REC_AT_REPEAT 1600
#define REC_AT_RECORD 1800

/* One channel, an AR(1) level (0.5, innovations 0.1) with three bursts of 4 readings: +1.2 (12
 * innovation deviations) at REC_AT_FIRST, +0.9 at REC_AT_REPEAT (smaller than one the device
 * has shown since its training) and +4.0 at REC_AT_RECORD (larger than anything since). */
static float *make_record_bursts(int n, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    assert_non_null(x);
    double v = 0.0;
    for (int t = 0; t < n; t++) {
        v = 0.5 * v + 0.1 * gauss(&seed);
        x[t] = (float)v;
    }
    const int at[3] = {REC_AT_FIRST, REC_AT_REPEAT, REC_AT_RECORD};
    const float by[3] = {1.2f, 0.9f, 4.0f};
    for (int b = 0; b < 3; b++)
        for (int k = 0; k < 4; k++)
            x[at[b] + k] += by[b];
    return x;
}

/* Runs make_record_bursts(2000, seed) with onset_record r: on[b] the score of each burst's onset
 * (its first reading within 13 of the start reported at or above score_level; -1: none),
 * states[t] and scores[t] every reading's. With save_at > 0 a copy loaded from a save there runs
 * beside it and must agree bit for bit (format 15's state). */
static void record_run(float r, float decay, uint64_t seed, int save_at, float on[3],
                       uint8_t *states, float *scores)
{
    const int n = 2000;
    float *x = make_record_bursts(n, seed);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.onset_record = r;
    cfg.record_quiet = 0;   /* the record 200 readings after a burst: onset_record's own ranking */
    cfg.onset_rate = 0;     /* nor format 25's */
    cfg.range_quiet = 0.0f; /* nor format 28's */
    cfg.hold_decay = decay;
    detector_t *d, *e = NULL;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    const int at[3] = {REC_AT_FIRST, REC_AT_REPEAT, REC_AT_RECORD};
    for (int b = 0; b < 3; b++)
        on[b] = -1.0f;
    for (int t = 0; t < n; t++) {
        step_twin(d, &e, save_at, x, t, 1, &res);
        states[t] = (uint8_t)res.state;
        scores[t] = res.score;
        for (int b = 0; b < 3; b++)
            if (t >= at[b] && t < at[b] + 13 && on[b] < 0.0f && res.score >= cfg.score_level)
                on[b] = res.score;
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
}

/* With onset_record (the default), the onset of a burst no larger than one the device has shown
 * since its training is reported at most score_level + (1 - score_level)(1 - r), the record's
 * share withheld, and the onsets of the first burst and of one larger than anything since above
 * it, the record at least 0.2 above the repeat. Without it (0) each onset is reported at its
 * likelihood, which saturates: the record of 40 deviations ranks within 0.2 of the repeat of 9
 * (in at least three of the four seeds). The decision is the same reading for reading, and so is
 * every score below score_level. Seeds 1-4, with hold_decay 0 (onset_record alone) and with the
 * defaults' hold_decay, where every assertion but the saturation without onset_record holds
 * (there the record's onset ranks 0.17-0.42 above the repeat's without onset_record: 0.774-0.968
 * against 0.552-0.665 in seeds 1-4, measured); a save between the repeat and the record
 * continues bit for bit. */
static void test_onset_record(void **unused)
{
    enum { N = 2000 };
    struct detector_config def;
    detector_config_default(&def);
    const float r = def.onset_record, red = def.score_level;
    assert_true(r > 0.0f);
    const float bound = red + (1.0f - red) * (1.0f - r) + 1e-6f;
    uint8_t st1[N], st0[N];
    static float sc1[N], sc0[N];
    int flat_without = 0;
    for (int k = 0; k < 8; k++) {
        const uint64_t seed = 1 + (uint64_t)(k % 4);
        const float decay = k < 4 ? 0.0f : def.hold_decay; /* alone, then with the defaults' */
        float on1[3], on0[3];
        record_run(r, decay, seed, seed == 1 ? 1700 : 0, on1, st1, sc1);
        record_run(0.0f, decay, seed, 0, on0, st0, sc0);
        print_message(
            "seed %d hold_decay %.1f: onsets first / repeat / record %.3f / %.3f / %.3f with "
            "onset_record %.1f, %.3f / %.3f / %.3f without\n",
            (int)seed, (double)decay, on1[0], on1[1], on1[2], r, on0[0], on0[1], on0[2]);
        for (int b = 0; b < 3; b++) {
            assert_true(on1[b] >= red); /* every burst is an onset either way */
            assert_true(on0[b] >= red);
        }
        assert_true(on1[1] <= bound);
        assert_true(on1[2] > bound);
        assert_true(on1[0] > bound);
        assert_true(on1[2] >= on1[1] + 0.2f);
        flat_without += k < 4 && on0[2] < on0[1] + 0.2f;
        assert_memory_equal(st1, st0, sizeof st1);
        for (int t = 0; t < N; t++)
            if (sc1[t] < red)
                assert_true(sc1[t] == sc0[t]);
    }
    assert_true(flat_without >= 3);
}

/* A format-14 save (no onset_record in its config, which the field grew by 8 bytes) of
 * record_run's detector with onset_record 0 loads with 0 and continues bit for bit as the saved
 * detector through the record burst; the same bytes claimed as format 15 are refused. */
static void test_load_format14(void **unused)
{
    enum { N = 2000, CUT = 1700 };
    float *x = make_record_bursts(N, 2);
    struct detector_config cfg;
    detector_config_default(&cfg);
    double top;
    int opened;
    int onsets = cut_and_continue(
        &cfg, 1, x, N, CUT, offsetof(struct detector_config, onset_record), 0, 14, &top, &opened);
    print_message("format 14 load: %d readings at score_level after the cut (largest %.3f), as "
                  "saved\n",
                  onsets, top);
    assert_true(onsets >= 1);
    free(x);
}

/* ---- twentieth round: an excursion within the device's record opens later (record_open) ---- */

#define RO_SPIKE     1400 /* after the training at reading 1,200; the next is at 2,200 */
#define RO_SPIKE_LEN 15
#define RO_BURST0    1500 /* bursts at 1,500, 1,600, 1,700 */
#define RO_STEP      1850

/* One channel, an AR(1) level (0.5, innovations 0.1): RO_SPIKE_LEN readings of +3.0 (30
 * innovation deviations) from RO_SPIKE, an excursion the device shows and comes back from (an
 * episode longer than err_short: no burst for burst_memory); three bursts of 3 readings of +`by`
 * from RO_BURST0, 100 apart, each reading's error smaller than the excursion's; from RO_STEP a
 * lasting step of +6.0, beyond it. */
static float *make_record_spike(int n, float by, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    assert_non_null(x);
    double v = 0.0;
    for (int t = 0; t < n; t++) {
        v = 0.5 * v + 0.1 * gauss(&seed);
        x[t] = (float)v + (t >= RO_STEP ? 6.0f : 0.0f);
    }
    for (int k = 0; k < RO_SPIKE_LEN; k++)
        x[RO_SPIKE + k] += 3.0f;
    for (int b = 0; b < 3; b++)
        for (int k = 0; k < 3; k++)
            x[RO_BURST0 + 100 * b + k] += by;
    return x;
}

/* Runs make_record_spike(2000, by, seed) on channel 0 of C channels (any others independent
 * AR(1) levels like it, from seed + 100) through a detector with cfg: *opened the episodes that
 * open at the bursts (within 13 readings of each), *warned their readings in state warning,
 * returns the first flagged reading from RO_STEP on (-1: none), and asserts nothing opens
 * elsewhere before RO_STEP. With save_at > 0 a copy loaded from a save there runs beside it bit
 * for bit. */
static int record_spike_run(const struct detector_config *cfg, int C, float by, uint64_t seed,
                            int save_at, int *opened, int *warned)
{
    const int n = 2000;
    float *s = make_record_spike(n, by, seed), *x = malloc(sizeof(float) * (size_t)n * C);
    assert_non_null(x);
    uint64_t other = seed + 100;
    double v[DETECTOR_MAX_CHANNELS] = {0};
    for (int t = 0; t < n; t++) {
        x[(size_t)t * C] = s[t];
        for (int c = 1; c < C; c++) {
            v[c] = 0.5 * v[c] + 0.1 * gauss(&other);
            x[(size_t)t * C + c] = (float)v[c];
        }
    }
    detector_t *d, *e = NULL;
    assert_int_equal(detector_create(&d, cfg, C), 0);
    struct detector_result res;
    int flagged = -1, prev = 0;
    *opened = *warned = 0;
    for (int t = 0; t < n; t++) {
        step_twin(d, &e, save_at, x, t, C, &res);
        const int at_burst = t >= RO_BURST0 && (t - RO_BURST0) % 100 < 13 && t < RO_STEP;
        const int at_spike = t >= RO_SPIKE && t < RO_SPIKE + RO_SPIKE_LEN;
        if (res.is_anomaly && !prev && t < RO_STEP && !at_spike) {
            if (!at_burst)
                fail_msg("seed %d: an episode opens at %d, not at a burst", (int)seed, t);
            (*opened)++;
        }
        *warned += at_burst && res.state == DET_WARNING;
        if (t >= RO_STEP && flagged < 0 && res.is_anomaly)
            flagged = t;
        prev = res.is_anomaly;
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
    free(s);
    return flagged;
}

/* record_spike_run on one channel with record_open ro and onset_record 0 (so that the record is
 * kept, and saved, for record_open alone). */
static int record_open_run(float ro, float by, uint64_t seed, int save_at, int *opened, int *warned)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.onset_record = 0.0f;
    cfg.record_open = ro;
    /* The bursts' control (some open without record_open) was measured on hold_median alone:
     * with hold_recent the excursion's episode ends 3 readings sooner, its tail's short means
     * enter the reference, and no +1.0 burst opens in seed 2 (docs/detection.md, "Thirty-fifth
     * round"). hold_decay (the sixty-seventh round) likewise: with it no +1.0 burst opens nor
     * warns without record_open in seed 1, so the control would test nothing. */
    cfg.hold_recent = 0;
    cfg.hold_decay = 0.0f;
    return record_spike_run(&cfg, 1, by, seed, save_at, opened, warned);
}

/* With record_open, an excursion within the device's record since its training (bursts whose
 * readings are each smaller than a spike it showed) needs the error's decision likelihood at
 * record_open to open an episode; below it, a warning at most. At record_open 1 no burst opens
 * (each still raises a warning), where without the setting (0) at least one does in every seed;
 * a lasting step beyond the record is flagged within FAULT_LATENCY either way, at most 2
 * readings later with it (the bursts' short means, warnings now, entered the long window). Seeds
 * 1-4 and two burst sizes; a save between the bursts (record_open set, onset_record 0: the record
 * is saved for record_open) continues bit for bit. The default is off (0: not adopted at the
 * merge with the nineteenth round, docs/detection.md "Twentieth round"). */
static void test_record_open(void **unused)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_true(def.record_open == 0.0f);
    const float sizes[2] = {1.0f, 1.4f};
    for (int i = 0; i < 2; i++)
        for (uint64_t seed = 1; seed <= 4; seed++) {
            int op1, w1, op0, w0;
            int f1 = record_open_run(1.0f, sizes[i], seed, seed == 1 ? 1550 : 0, &op1, &w1);
            int f0 = record_open_run(0.0f, sizes[i], seed, 0, &op0, &w0);
            print_message("bursts +%.1f seed %d: episodes at the bursts %d with record_open 1 "
                          "(%d readings in warning), %d without; step flagged at +%d / +%d\n",
                          (double)sizes[i], (int)seed, op1, w1, op0, f1 - RO_STEP, f0 - RO_STEP);
            assert_int_equal(op1, 0);
            assert_true(w1 >= 3);
            assert_true(op0 >= 1);
            assert_true(f1 >= RO_STEP && f1 - RO_STEP <= FAULT_LATENCY);
            assert_true(f0 >= RO_STEP && f1 - f0 <= 2);
        }
}

/* A format-17 save (no record_open in its config; junk where the field takes the tail padding)
 * of make_record_spike's detector with record_open 0 (and onset_record 0: no record saved)
 * loads with 0 and continues bit for bit as the saved detector through the bursts and the step;
 * the same bytes as format 18 (record_open the junk 0.9, so a record is expected) are
 * refused (format 15 on the twentieth round's branch). */
static void test_load_format17(void **unused)
{
    enum { N = 2000, CUT = 1450 };
    float *x = make_record_spike(N, 1.0f, 3);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.onset_record = 0.0f;
    double top;
    int opened;
    const int junk = 0x3f666666; /* 0.9f: a record_open the config check would accept */
    cut_and_continue(&cfg, 1, x, N, CUT, offsetof(struct detector_config, record_open), junk, 17,
                     &top, &opened);
    print_message("format 17 load: largest score after the cut %.3f, as saved\n", top);
    free(x);
}

/* ---- session 10: the step test's window sums kept incrementally --------------------------- */

/* Channel c's direct sums over the context ring's newest 2 q - 1 rows, the window sums d keeps
 * (detector_int.h, sw_sum and sw_suv): out[0], out[1] P's sum and sum of u v over its q rows,
 * out[2], out[3] Q's over its q - 1; mag[k] the sum of out[k]'s terms' magnitudes. */
static void direct_sums(const detector_t *d, int q, int c, double *out, double *mag)
{
    const int cap = d->ctx_cap, C = d->C;
    const double m = 0.5 * (q - 1);
    for (int k = 0; k < 4; k++)
        out[k] = mag[k] = 0.0;
    for (int i = 0; i < 2 * q - 1; i++) {
        const int row = ((d->ctx_head - (2 * q - 1) + i) % cap + cap) % cap, h = i >= q;
        const double v = d->ctx[(size_t)row * C + c], u = (h ? i - q : i) - m;
        out[2 * h] += v;
        mag[2 * h] += fabs(v);
        out[2 * h + 1] += u * v;
        mag[2 * h + 1] += fabs(u * v);
    }
}

/* 1 when d's window sums are valid, after asserting that each is within 1e-12 of its terms'
 * magnitudes of the direct sum (relative to the sum itself on these readings: tighter than
 * 1e-9); 0 when they are not valid (nothing to check). */
static int sums_checked(const detector_t *d, int q)
{
    if (!d->sw_ok)
        return 0;
    for (int c = 0; c < d->C; c++) {
        double ref[4], mag[4];
        direct_sums(d, q, c, ref, mag);
        const double got[4] = {d->sw_sum[0][c], d->sw_suv[0][c], d->sw_sum[1][c], d->sw_suv[1][c]};
        for (int k = 0; k < 4; k++)
            if (!(fabs(got[k] - ref[k]) <= 1e-12 * mag[k]))
                fail_msg("channel %d sum %d: kept %.17g, direct %.17g", c, k, got[k], ref[k]);
    }
    return 1;
}

/* The window sums over 3,000 readings of make_step_drift's six channels (seed 7, the defaults:
 * q = 32, a context ring of 64 rows, so 46 wraps): the flow steps down by 8 deviations at
 * 1,500 (an episode), the temperature drifts from 1,000, trainings on schedule. After every
 * reading from the first test on, except those after which a training was applied (its reseed
 * drops the sums until the next test), the sums are valid and equal the direct sums. A save in
 * the episode (1,560), loaded, starts without them; rebuilt, they equal the saved detector's to
 * the bit, and the copy answers as the original to the end. A reading of 3e12 on the
 * voltage at 2,700 makes the updates round: the sums are then rebuilt from the ring at each
 * of the 2 q readings it is in the window (invalid after each), and valid again after. */
static void test_shift_sums_incremental(void **unused)
{
    enum { N = 3000, C = 6, SAVE_AT = 1560, SPIKE = 2700 };
    float *x = make_step_drift(N, 1500, 8.0, 4.0, 7);
    x[C * SPIKE + 5] = 3e12f;
    struct detector_config cfg;
    detector_config_default(&cfg);
    /* The schedule's trainings as this round measured them: make_step_drift's temperature
     * drift, which opens an episode in some seeds and grows, would put them off with
     * accept_grow (docs/detection.md, "Sixty-third round"). */
    cfg.accept_grow = 0.0f;
    const int q = cfg.shift_len;
    detector_t *d, *e = NULL;
    assert_int_equal(detector_create(&d, &cfg, C), 0);
    assert_true(d->ctx_cap >= 2 * q);
    const int trained0 = trainings;
    int first = -1, checked = 0, reseeds = 0, anomaly = 0, invalid_after_spike = 0;
    struct detector_result res, re;
    for (int t = 0; t < N; t++) {
        const int before = trainings;
        step(d, x, t, C, NULL, &res);
        if (e) {
            step(e, x, t, C, NULL, &re);
            assert_same_result(&res, &re, C);
            sums_checked(e, q);
        }
        if (first < 0 && d->sw_ok)
            first = t;
        anomaly += t >= 1500 && res.state == DET_ANOMALY;
        if (trainings > before && first >= 0) {
            reseeds++;
            assert_false(d->sw_ok);
            continue;
        }
        if (first < 0)
            continue;
        if (t >= SPIKE && t < SPIKE + 2 * q) {
            invalid_after_spike += !d->sw_ok;
            continue;
        }
        checked += sums_checked(d, q);
        if (t == SAVE_AT) {
            e = reloaded(d);
            assert_false(e->sw_ok);
            assert_int_equal(detector__shift_sums(e), q);
            assert_true(e->sw_ok);
            for (int h = 0; h < 2; h++) {
                assert_memory_equal(e->sw_sum[h], d->sw_sum[h], sizeof(double) * C);
                assert_memory_equal(e->sw_suv[h], d->sw_suv[h], sizeof(double) * C);
            }
        }
    }
    print_message("first test at %d, %d trainings (%d after it), sums checked after %d readings, "
                  "%d anomaly readings from the step, invalid after %d readings of the spike\n",
                  first, trainings - trained0, reseeds, checked, anomaly, invalid_after_spike);
    assert_true(first >= 0 && first < 400);
    assert_true(reseeds >= 2);
    assert_true(anomaly >= 250);
    assert_int_equal(invalid_after_spike, 2 * q);
    assert_int_equal(checked, N - first - reseeds - 2 * q);
    detector_destroy(d);
    detector_destroy(e);
    free(x);
}

/* ---- eighteenth round: an episode released when its step has gone back (settle_release) ---- */

/* What the flow does around settle_run's fault window (1,600-1,900). */
enum settle_case {
    SETTLE_RETURNS, /* steps down by 3 deviations and back; the pump runs differently after */
    SETTLE_PERSIST, /* steps down by 3 deviations and stays there */
    SETTLE_GROWING, /* steps down by 3 deviations, then keeps falling 3 more per 300 readings */
    SETTLE_SWING    /* steps down by 3 deviations, then swings to 3 above its level */
};

/* release_run's pump (shift_plain and shift_release on, the defaults otherwise), the flow as
 * `kind` says, through a detector with settle_release as given (trainings as they fall due,
 * inline). Returns the flagged readings in the 150 after 2,150; *held gets the flagged readings
 * of the 300 in the fault window, *before the anomalies opened before the onset, *released the
 * readings with `released` set. With save_at > 0 a copy loaded from a save there runs beside it
 * and must agree bit for bit. */
static int settle_run(int settle, enum settle_case kind, uint64_t seed, int save_at, int *before,
                      int *held, int *released)
{
    const int n = 2190, onset = 1600, back = 1900, C = 6;
    float *x = make_step_drift(n, onset, 0.0, 4.0, seed);
    uint64_t s = seed * 7919u + 17u;
    for (int t = 0; t < n; t++) {
        double off = 0.0, sd = 1.0;
        if (t >= onset)
            off = kind == SETTLE_GROWING   ? -3.0 - 3.0 * (t - onset) / 300.0
                  : t < back               ? -3.0
                  : kind == SETTLE_SWING   ? 3.0
                  : kind == SETTLE_PERSIST ? -3.0
                                           : 0.0;
        x[C * t + 0] = (float)(30.0 + sd * gauss(&s) + off);
        /* After the return the pump runs differently: channel 3 follows the cycle of channel 2
         * with a gain of 0.8 instead of 0.5 (6 of its noise deviations at the peaks; its mean
         * stays), which the model's prediction error sees and its level does not. */
        if (t >= back && kind == SETTLE_RETURNS)
            x[C * t + 3] += (float)(0.3 * sin(2.0 * 3.14159265358979 * t / 60.0));
    }
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_plain = 1;
    cfg.shift_release = 1;
    cfg.settle_release = settle;
    /* The schedule's trainings as this round measured them: make_step_drift's temperature
     * drift, which opens an episode in some seeds and grows, would put them off with
     * accept_grow (docs/detection.md, "Sixty-third round"). */
    cfg.accept_grow = 0.0f;
    detector_t *d, *e = NULL;
    assert_int_equal(detector_create(&d, &cfg, C), 0);
    struct detector_result res, re;
    int after = 0;
    *before = *held = *released = 0;
    for (int t = 0; t < n; t++) {
        if (t == save_at)
            e = reloaded(d);
        step(d, x, t, C, NULL, &res);
        if (e) {
            step(e, x, t, C, NULL, &re);
            assert_same_result(&res, &re, C);
        }
        *released += res.released;
        if (res.released)
            assert_int_equal(res.state, DET_NORMAL); /* it ends as any episode does */
        if (t < onset)
            *before += res.changed && res.state == DET_ANOMALY;
        else if (t < back)
            *held += res.is_anomaly;
        else
            after += res.is_anomaly;
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
    return after;
}

/* A valve fault that ends, and a pump that runs differently after it: the flow steps down by 3
 * deviations for 300 readings, comes back to its level and then runs 6 times noisier, seeds 1-6.
 * Without settle_release the step hold is released by the step back, but the error's
 * likelihood (against the long window, frozen since the opening) holds the episode through the
 * 150 readings after the return; with it the episode ends once the flow has landed back, its
 * result says `released`, and the training it asks for takes the noisier state in. Asserted:
 * a release in every seed with it and none without; fewer flagged readings after the return
 * with it in every seed, and at most half as many in all; the fault itself held as well
 * (at least 250 of 300 either way); the same openings before the onset. A save at 2,100
 * (inside the fault, the hold armed), loaded, continues bit for bit through the release
 * (format 16's state). */
static void test_settle_release(void **unused)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.settle_release, 1); /* the default since the merge */
    int sum1 = 0, sum0 = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int b1, h1, r1, b0, h0, r0;
        int on = settle_run(1, SETTLE_RETURNS, seed, seed == 1 ? 2100 : -1, &b1, &h1, &r1);
        int off = settle_run(0, SETTLE_RETURNS, seed, -1, &b0, &h0, &r0);
        print_message("seed %d: settle_release 1: %d of 300 held, %d of 290 flagged after the "
                      "return, %d released (%d before); 0: %d held, %d after, %d released (%d "
                      "before)\n",
                      (int)seed, h1, on, r1, b1, h0, off, r0, b0);
        assert_int_equal(b1, b0);
        assert_true(h1 >= 250 && h0 >= 250);
        assert_true(r1 >= 1);
        assert_int_equal(r0, 0);
        assert_true(on < off);
        sum1 += on;
        sum0 += off;
    }
    assert_true(2 * sum1 <= sum0);
}

/* Faults that have not ended are not released: the flow's step persists (and the pump runs
 * noisier), keeps growing (3 more deviations over the 300 readings), or swings from 3 below its
 * level to 3 above it (a step back that shift_release sees but that lands far from the old
 * level: a new fault, not a return), seeds 1-6. Asserted: no reading released, and the same
 * flagged readings with settle_release as without it, in the fault window and after it. */
static void test_settle_keeps_faults(void **unused)
{
    static const enum settle_case kinds[] = {SETTLE_PERSIST, SETTLE_GROWING, SETTLE_SWING};
    static const char *names[] = {"persists", "grows", "swings"};
    for (int k = 0; k < 3; k++)
        for (uint64_t seed = 1; seed <= 6; seed++) {
            int b1, h1, r1, b0, h0, r0;
            int on = settle_run(1, kinds[k], seed, -1, &b1, &h1, &r1);
            int off = settle_run(0, kinds[k], seed, -1, &b0, &h0, &r0);
            print_message("%s, seed %d: settle_release 1: %d of 300 held, %d of 290 after, %d "
                          "released; 0: %d held, %d after\n",
                          names[k], (int)seed, h1, on, r1, h0, off);
            assert_int_equal(r1, 0);
            assert_int_equal(h1, h0);
            assert_int_equal(on, off);
            assert_int_equal(b1, b0);
        }
}

/* A format-15 save (no settle_release in its config; junk where the field would lie in the
 * config's tail padding) of a six-channel detector with the step test, shift_plain,
 * shift_release and onset_record on loads with settle_release 0 and continues bit for bit as
 * the saved detector (through a step of 8 deviations, which opens an episode); the same bytes
 * claimed as format 16 are refused. */
static void test_load_format15(void **unused)
{
    enum { N = 2150, CUT = 1800, C = 6 };
    float *x = make_step_drift(N, 1850, 8.0, 4.0, 3);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, N, CUT, C,
                                   offsetof(struct detector_config, settle_release), 256, 15);
    print_message("format 15 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* ---- nineteenth round: a day that departs from its cycle, accumulated (season_accum) ---- */

/* make_slow_cycle's daily load curve, whose swing flattens to 0.6 of itself from the stop
 * (seeds 1-4; the training at 1,200 finds the period, 198-201 readings, and does not choose the
 * profile). The high phase then runs 0.8 (3.5 reading spreads of the wander) below its profile,
 * each reading an ordinary step. With season_accum at its default (0.1: the deviation's
 * exponential mean over 20 readings, a tenth of the period, judged against its spread over the
 * training rows and the held-out tail) the flattened day is reported at or above score_level
 * before the high phase would have ended, and nothing between the training and the stop; with
 * it 0 (the second opinion's short mean alone, judged against its values since the training),
 * not in that time in any seed, so the test fails without the behaviour. The decision is
 * unchanged (the first flag is the same either way). Saves at 1,400 (seeds 1, 2), loaded,
 * continue bit for bit through the stop (format 16's state). */
/* The checks both season_accum tests share, of a run with the default (on: scored, flagged,
 * scored before the departure) and one without it (off): the training's choice of the profile
 * is `chosen`, nothing is scored at score_level before the departure with the default, and the
 * first flag is the same (the decision is unchanged). */
static void accum_check(uint64_t seed, const struct detector_train_info *ia, int chosen,
                        const int on[3], const int off[3])
{
    print_message("seed %d: period %d chosen %d; season_accum on: scored after %d, flag %d (%d "
                  "before); off: scored after %d, flag %d (%d before)\n",
                  (int)seed, ia->season_period[0], ia->season[0], on[0], on[1], on[2], off[0],
                  off[1], off[2]);
    assert_int_equal(ia->season[0], chosen);
    assert_int_equal(on[2], 0);
    assert_int_equal(on[1], off[1]);
}

static void test_accum_flat_day(void **unused)
{
    (void)unused;
    const double keep = 0.6;
    struct detector_config def;
    detector_config_default(&def);
    assert_true(def.season_accum > 0.0f);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct detector_train_info ia, i0;
        int fa, f0, ba, b0;
        int sa =
            opinion_delay(1, def.season_accum, keep, seed, seed <= 2 ? 1400 : -1, &fa, &ba, &ia);
        int s0 = opinion_delay(1, 0.0f, keep, seed, -1, &f0, &b0, &i0);
        accum_check(seed, &ia, 0, (int[3]){sa, fa, ba}, (int[3]){s0, f0, b0});
        assert_true(sa >= 0);
        assert_int_equal(s0, -1);
    }
}

/* A smooth cycle (period SEASON_P, a sine of amplitude 2 under an AR(1) wander of 0.5,
 * innovations 0.05) whose swing flattens to 0.8 of itself from reading `stop`. */
static float *make_smooth_cycle(int n, int stop, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    assert_non_null(x);
    double w = 0.0;
    for (int t = 0; t < n; t++) {
        w = 0.5 * w + 0.05 * gauss(&seed);
        const double v = 2.0 * sin(2.0 * 3.14159265358979 * t / SEASON_P);
        x[t] = (float)(5.0 + (t >= stop ? 0.8 : 1.0) * v + w);
    }
    return x;
}

/* Runs make_smooth_cycle(1700, 1500, seed) with the defaults and season_accum as given: *scored
 * and *flagged the readings from the flattening to the first score at or above score_level and
 * to the first flag (-1: none), *before the readings scored at that level between the training
 * at 1,200 and the flattening, *info the last training's report. */
static void smooth_run(float accum, uint64_t seed, int *scored, int *flagged, int *before,
                       struct detector_train_info *info)
{
    const int n = 1700, stop = 1500;
    float *x = make_smooth_cycle(n, stop, seed);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.season_accum = accum;
    cfg.opinion_open = 0; /* the score's test; opinion_open's is test_opinion_open */
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    *scored = *flagged = -1;
    *before = 0;
    for (int t = 0; t < n; t++) {
        assert_int_equal(detector_step_ts(d, (int64_t)t * 1000, x + t, NULL, &res), 0);
        if (res.want_train)
            train_on(d, x, t + 1, info);
        if (t >= 1200 && t < stop)
            *before += res.score >= cfg.score_level;
        if (t >= stop && *scored < 0 && res.score >= cfg.score_level)
            *scored = t - stop;
        if (t >= stop && *flagged < 0 && res.is_anomaly)
            *flagged = t - stop;
    }
    detector_destroy(d);
    free(x);
}

/* A chosen profile's own record (season_accum): a smooth cycle whose profile the training at
 * 1,200 chooses (seeds 1-4) flattens to 0.8 of its swing. The seasonal predictor's one-step
 * error sees that too, within 20 readings; with the default the accumulated departure reports
 * it at score_level no later in any seed and earlier in at least three (measured: 1-4 readings
 * earlier in all four), with nothing scored at that level between the training and the
 * flattening, and the same first flag. Without the chosen profile's record the two runs score
 * at the same reading, so the test fails without that part of the behaviour. */
static void test_accum_chosen_profile(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    int earlier = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct detector_train_info ia, i0;
        int sa, fa, ba, s0, f0, b0;
        smooth_run(def.season_accum, seed, &sa, &fa, &ba, &ia);
        smooth_run(0.0f, seed, &s0, &f0, &b0, &i0);
        accum_check(seed, &ia, 1, (int[3]){sa, fa, ba}, (int[3]){s0, f0, b0});
        assert_true(sa >= 0 && s0 >= 0 && sa <= s0);
        earlier += sa < s0;
    }
    assert_true(earlier >= 3);
}

/* A format-15 save (no season_accum in its config) of make_slow_cycle's flattening detector
 * after the training at 1,200 loads with season_accum 0 and continues bit for bit as the saved
 * detector without it, through the flattened day; the same bytes claimed as format 16 are
 * refused. */
static void test_load_format16(void **unused)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    slow_cycle_cut(&cfg, 0.6, offsetof(struct detector_config, season_accum), 16);
}

/* ---- how an episode ended (detector_result.ended_by) ------------------------------------- */

/* make_step_drift's pump (drift 4, n readings) whose flow steps down by 3 deviations at 1,600
 * for `len` readings (len < 0: for good) and then comes back; with `noisier` the pump runs
 * differently after the return (channel 3 follows channel 2's cycle with more gain), as in
 * settle_run. */
static float *make_end_pump(int n, int len, int noisier, uint64_t seed)
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

/* Runs make_end_pump(2190, len, noisier, seed) through a detector with cfg (shift_plain and
 * shift_release on), trainings inline, and counts the readings that end an episode by each
 * reason in ends[4]. Asserted on every reading: a reason exactly on the reading that leaves
 * state anomaly, `released` readings ending by release unless their regime had been accepted. */
static void end_run(struct detector_config *cfg, int len, int noisier, uint64_t seed, int ends[4])
{
    const int n = 2190, C = 6;
    float *x = make_end_pump(n, len, noisier, seed);
    cfg->shift_plain = 1;
    cfg->shift_release = 1;
    detector_t *d;
    assert_int_equal(detector_create(&d, cfg, C), 0);
    struct detector_result res;
    enum detector_state prev = DET_LEARNING;
    memset(ends, 0, 4 * sizeof *ends);
    for (int t = 0; t < n; t++) {
        step(d, x, t, C, NULL, &res);
        int left = prev == DET_ANOMALY && res.state != DET_ANOMALY;
        assert_int_equal(res.ended_by != DET_END_NONE, left);
        assert_true(res.ended_by >= DET_END_NONE && res.ended_by <= DET_END_RELEASED);
        if (res.released)
            assert_true(res.ended_by == DET_END_RELEASED || res.ended_by == DET_END_ACCEPTED);
        if (res.ended_by == DET_END_RELEASED)
            assert_int_equal(res.released, 1);
        ends[res.ended_by]++;
        prev = res.state;
    }
    detector_destroy(d);
    free(x);
}

/* Each way an episode ends is told on the reading that ends it, seeds 1-3: a 100-reading fault
 * that goes away (settle_release off) clears; a fault that stays past accept_after (60 here)
 * ends accepted, its regime learnt; a fault whose step goes back while the pump runs
 * differently after it (settle_run's SETTLE_RETURNS) is released. Asserted: at least one
 * episode ends by the expected reason and none by the others (the fault-free readings before
 * the onset open nothing that would end otherwise). */
static void test_episode_end_reason(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct detector_config cfg;
        int ends[4];
        detector_config_default(&cfg);
        cfg.settle_release = 0;
        end_run(&cfg, 100, 0, seed, ends);
        print_message("seed %d: cleared %d accepted %d released %d (a fault that goes away)\n",
                      (int)seed, ends[1], ends[2], ends[3]);
        assert_true(ends[DET_END_CLEARED] >= 1);
        assert_int_equal(ends[DET_END_ACCEPTED] + ends[DET_END_RELEASED], 0);

        detector_config_default(&cfg);
        cfg.accept_after = 60;
        end_run(&cfg, -1, 0, seed, ends);
        print_message("seed %d: cleared %d accepted %d released %d (a fault that stays)\n",
                      (int)seed, ends[1], ends[2], ends[3]);
        assert_true(ends[DET_END_ACCEPTED] >= 1);
        assert_int_equal(ends[DET_END_RELEASED], 0);

        detector_config_default(&cfg);
        end_run(&cfg, 300, 1, seed, ends);
        print_message("seed %d: cleared %d accepted %d released %d (a step that goes back)\n",
                      (int)seed, ends[1], ends[2], ends[3]);
        assert_true(ends[DET_END_RELEASED] >= 1);
        assert_int_equal(ends[DET_END_ACCEPTED], 0);
    }
}

/* ---- twenty-first round: the error's tail on the second opinions' scale (score_tails) ------ */

/* The likelihood's map (log(tail + 1e-10) / log(1e-10)) of twice the tail that s maps. */
static double tail_doubled(double s)
{
    const double L = log(1e-10);
    double tail = exp(s * L) - 1e-10;
    double r = log(fmin(2.0 * (tail > 0.0 ? tail : 0.0), 1.0) + 1e-10) / L;
    return r < 0.0 ? 0.0 : r > 1.0 ? 1.0 : r;
}

/* Two detectors in step on x[n] (one channel), the defaults with score_tails 1 and 0, trained
 * alike: the decisions (state, flag, likelihood) agree at every reading; every score below
 * score_level with score_tails lies between tail_doubled of the one without and that one (the
 * larger of the doubled error's likelihood and an opinion's). Returns the readings on which it
 * is tail_doubled's value and lower (the error made the score, on the opinions' scale). */
static int score_tails_run(const float *x, int n, int season_bins)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.season_bins = season_bins;
    detector_t *a, *b;
    assert_int_equal(detector_create(&a, &cfg, 1), 0);
    cfg.score_tails = 0;
    assert_int_equal(detector_create(&b, &cfg, 1), 0);
    struct detector_result ra, rb;
    int doubled = 0;
    for (int t = 0; t < n; t++) {
        step(a, x, t, 1, NULL, &ra);
        step(b, x, t, 1, NULL, &rb);
        assert_int_equal(ra.state, rb.state);
        assert_int_equal(ra.is_anomaly, rb.is_anomaly);
        assert_true(ra.likelihood == rb.likelihood);
        if (ra.score >= cfg.score_level || rb.score >= cfg.score_level)
            continue;
        const double lo = tail_doubled(rb.score);
        assert_true(ra.score <= rb.score + 1e-6f);
        assert_true(ra.score >= lo - 1e-5);
        doubled += fabs(ra.score - lo) < 1e-5 && ra.score < rb.score - 1e-4f;
    }
    detector_destroy(a);
    detector_destroy(b);
    return doubled;
}

/* score_tails (the default): make_slow_cycle's load curve, going on as it was (seeds 1-3),
 * keeps its found profile as a second opinion from the training at 1,200; from then the
 * error's likelihood in the reported score is that of twice its tail, as the opinion's already
 * is. The decision is the same as without; hundreds of readings' scores are the doubled tail's
 * (none without the change: the test fails with it off). Without a kept profile (season_bins 0)
 * the error's likelihood is compared with nothing and the scores are the same either way. */
static void test_score_tails(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.score_tails, 1);
    enum { N = 2000 };
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float *x = make_slow_cycle(N, N, seed, 1.0);
        int with = score_tails_run(x, N, def.season_bins), alone = score_tails_run(x, N, 0);
        print_message("seed %d: %d scores on the opinions' scale with a kept profile, %d without\n",
                      (int)seed, with, alone);
        assert_true(with >= 100);
        assert_int_equal(alone, 0);
        free(x);
    }
}

/* A format-18 save (no score_tails in its config; junk where the field may lie in the tail
 * padding) of make_slow_cycle's detector after its profile was kept loads with score_tails 0
 * and continues bit for bit as the saved detector with 0; the same bytes claimed as format 19
 * are refused (the junk is not a valid score_tails, or the config is short). */
static void test_load_format18(void **unused)
{
    (void)unused;
    enum { N = 1800, CUT = 1400 };
    float *x = make_slow_cycle(N, N, 2, 1.0);
    struct detector_config cfg;
    detector_config_default(&cfg);
    double top;
    int opened;
    cut_and_continue(&cfg, 1, x, N, CUT, offsetof(struct detector_config, score_tails), 256, 18,
                     &top, &opened);
    print_message("format 18 load: largest score after the cut %.3f, as saved\n", top);
    free(x);
}

/* ---- twenty-second round: a warning that lasts opens (warn_run) -------------------------- */

/* make_step_drift's pump without its step or drift (n readings, seed) whose white-noise channel
 * 4 turns f times noisier from reading 1,500 on: a wear that adds noise. */
static float *make_noisier(int n, double f, uint64_t seed)
{
    float *x = make_step_drift(n, n, 0.0, 0.0, seed);
    for (int t = 1500; t < n; t++)
        x[6 * t + 4] = (float)(2.0 + f * (x[6 * t + 4] - 2.0));
    return x;
}

/* The defaults with warn_run wr and the warning's levels at 0.2 (warn_level and clear_level: a
 * tail of 1e-2, so a moderate fault stays a warning for long and the run's combination needs
 * four independent short means, 40 readings, at the least to reach alarm_level). */
static void warn_run_config(struct detector_config *cfg, int wr)
{
    detector_config_default(cfg);
    cfg->warn_level = cfg->clear_level = 0.2f;
    cfg->warn_run = wr;
}

/* Runs make_noisier(2100, f, seed) through warn_run_config(wr) (onset_run: trainings inline, a
 * copy loaded from a save at save_at > 0 beside it, bit for bit). Returns the readings from
 * 1,500 to the first flagged one (-1: never); *before the anomalies opened before 1,500, *held
 * the readings flagged from 1,500 on. */
static int noisier_run(int wr, double f, uint64_t seed, int save_at, int *before, int *held)
{
    struct detector_config cfg;
    warn_run_config(&cfg, wr);
    int top;
    return onset_run(&cfg, make_noisier(2100, f, seed), 2100, 6, 1500, save_at, before, &top, held);
}

/* The length of the warning run warn_run_config(20) carries into reading `at` of
 * make_noisier(at, f, seed): a save there is to carry one, or it tests nothing of warn_run's
 * state. */
static int noisier_run_at(double f, uint64_t seed, int at)
{
    float *x = make_noisier(at, f, seed);
    struct detector_config cfg;
    warn_run_config(&cfg, 20);
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 6), 0);
    struct detector_result res;
    for (int t = 0; t < at; t++)
        step(d, x, t, 6, NULL, &res);
    int n = d->run_n;
    detector_destroy(d);
    free(x);
    return n;
}

/* A noise fault (channel 4 twice as noisy from 1,500) that mostly raises warnings, seeds 1-6:
 * with warn_run 20 it is flagged in more seeds than without, in every seed it is flagged
 * without it no later with it, and in at least one seed only with it (a run of warnings that
 * never reached alarm_level). The same pump healthy (f 1) opens no episode with warn_run, in any
 * seed (it does warn: 6-26 readings a seed, measured); nothing opens before the fault. A save
 * at 1,560 (seed 1, inside a run: the episode opens at 1,574 with warn_run) continues bit for
 * bit. warn_run is 20 by default. */
static void test_warn_run(void **unused)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.warn_run, 20);
    assert_true(noisier_run_at(2.0, 1, 1560) > 0);
    int with = 0, without = 0, only_with = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int b0, h0, b1, h1;
        int d0 = noisier_run(0, 2.0, seed, 0, &b0, &h0);
        int d1 = noisier_run(20, 2.0, seed, seed == 1 ? 1560 : 0, &b1, &h1);
        print_message("seed %d noisier: warn_run 0 delay %d (held %d), 20: delay %d (held %d)\n",
                      (int)seed, d0, h0, d1, h1);
        assert_int_equal(b0 + b1, 0);
        with += d1 >= 0;
        without += d0 >= 0;
        only_with += d1 >= 0 && d0 < 0;
        if (d0 >= 0)
            assert_true(d1 >= 0 && d1 <= d0);
        int bh, hh;
        assert_int_equal(noisier_run(20, 1.0, seed, 0, &bh, &hh), -1);
        assert_int_equal(bh + hh, 0);
    }
    assert_true(with > without);
    assert_true(only_with >= 1);
}

/* A format-19 save (format 18 on the round's branch; no warn_run in its config, no run state) of
 * the noisier pump (seed 1), cut at 1,560, loads with warn_run 0 whatever the config's padding
 * held, and continues bit for bit as the detector that ran without it. */
static void test_load_format19(void **unused)
{
    enum { N = 2100, CUT = 1560 };
    float *x = make_noisier(N, 2.0, 1);
    struct detector_config cfg;
    warn_run_config(&cfg, 0);
    int opened =
        load_older_format(&cfg, x, N, CUT, 6, offsetof(struct detector_config, warn_run), 20, 19);
    print_message("format 19 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* ---- twenty-fourth round: an onset after a long quiet ranks higher (onset_quiet) ------------ */

/* make_process(n, seed) with bumps of +amp on channel 3 for 6 readings, at gaps that make both
 * bursty spells (40 readings apart) and long quiets (400 and more). */
static float *make_spells(int n, uint64_t seed)
{
    static const int at[] = {700, 740, 780, 1250, 1290, 1700, 2150, 2190, 2600};
    static const float amp[] = {0.5f, 0.7f, 0.9f, 0.4f, 0.8f, 0.5f, 0.45f, 0.9f, 0.5f};
    float *x = make_process(n, seed);
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++)
        for (int t = at[i]; t < at[i] + 6 && t < n; t++)
            x[4 * t + 3] += amp[i];
    return x;
}

/* cut_and_continue over make_spells(n, seed 1) (4 channels), cut at 1,280 (between the spell's
 * onsets) back to format fmt before the field at offset field; prints and asserts that onsets
 * follow the cut, so the loaded detector has ranked some as the saved one did. */
static void spells_load_older(int n, size_t field, int junk, uint32_t fmt)
{
    enum { CUT = 1280 };
    float *x = make_spells(n, 1);
    struct detector_config cfg;
    detector_config_default(&cfg);
    double top;
    int opened;
    int onsets = cut_and_continue(&cfg, 4, x, n, CUT, field, junk, fmt, &top, &opened);
    print_message("format %u load: %d onsets after the cut, largest score %.3f, as saved\n", fmt,
                  onsets, top);
    assert_true(onsets >= 1);
    free(x);
}

/* onset_quiet: make_spells (seeds 1-3) through four detectors that differ only in how an onset
 * ranks: onset_record 0 (c: the onset's likelihood as it is, so its place l), onset_quiet 0 (a),
 * the default 0.5 (d) and 1 (b). The decision is the same in all four at every reading, and
 * every score below score_level too. At each onset a's, d's and b's scores are 0.5 + 0.5 (0.8 g
 * + 0.2 ((1 - k) l + k q)): d - a = 0.05 (q - l) and b - a = 0.1 (q - l), q = 1 - exp(-s /
 * err_window) with s the readings since the previous one c reported at or above score_level or
 * capped at repeat_cap (since a training: q = 1), within float rounding. The test fails with the
 * term off (d = a while q != l). Some onset after a long quiet that a ranked below one in a spell
 * ranks above it in d: the rank's effect. */
static void test_onset_quiet(void **unused)
{
    (void)unused;
    enum { N = 3000, C = 4 };
    struct detector_config def;
    detector_config_default(&def);
    assert_true(def.onset_quiet == 0.5f);
    assert_true(def.onset_record == 0.8f);
    int onsets = 0, quiet = 0, spell = 0, flips = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float *x = make_spells(N, seed);
        detector_t *d[4];
        const float k[4] = {-1.0f, 0.0f, 0.5f, 1.0f}; /* c, a, d, b */
        for (int i = 0; i < 4; i++) {
            struct detector_config cfg = def;
            cfg.onset_record = i == 0 ? 0.0f : def.onset_record;
            cfg.onset_quiet = i == 0 ? 0.0f : k[i];
            cfg.record_quiet = 0;   /* q from the training, g alone: record_quiet's own test */
            cfg.onset_rate = 0;     /* nor format 25's */
            cfg.range_quiet = 0.0f; /* nor format 28's */
            cfg.onset_now = 0;      /* nor format 38's */
            assert_int_equal(detector_create(&d[i], &cfg, C), 0);
        }
        double qs[64], sa[64], sd[64];
        int n_on = 0, last_red = -1, seen = trainings;
        for (int t = 0; t < N; t++) {
            struct detector_result r[4];
            for (int i = 0; i < 4; i++)
                step(d[i], x, t, C, NULL, &r[i]);
            for (int i = 1; i < 4; i++) {
                assert_int_equal(r[i].state, r[0].state);
                assert_int_equal(r[i].is_anomaly, r[0].is_anomaly);
                assert_true(r[i].likelihood == r[0].likelihood);
                if (r[0].score < def.score_level)
                    assert_true(r[i].score == r[0].score);
            }
            if (r[0].score >= def.score_level) {
                double q = last_red < 0 ? 1.0 : -expm1(-(t - last_red - 1.0) / def.err_window);
                double l = 2.0 * (r[0].score - 0.5);
                assert_true(fabs((r[2].score - r[1].score) - 0.05 * (q - l)) < 1e-5);
                assert_true(fabs((r[3].score - r[1].score) - 0.1 * (q - l)) < 1e-5);
                if (n_on < 64) {
                    qs[n_on] = q;
                    sa[n_on] = r[1].score;
                    sd[n_on] = r[2].score;
                    n_on++;
                }
                quiet += q > 0.15;
                spell += q < 0.05;
            }
            if (r[0].score >= def.score_level || r[0].score == def.repeat_cap)
                last_red = t;
            if (trainings != seen) /* four trainings: one a detector, each resets the count */
                last_red = -1;
            seen = trainings;
        }
        for (int i = 0; i < n_on; i++)
            for (int j = 0; j < n_on; j++)
                flips += qs[i] > qs[j] + 0.1 && sa[i] < sa[j] && sd[i] > sd[j];
        print_message("seed %d: %d onsets\n", (int)seed, n_on);
        onsets += n_on;
        for (int i = 0; i < 4; i++)
            detector_destroy(d[i]);
        free(x);
    }
    print_message("onset_quiet: %d onsets, %d after a quiet (q > 0.15), %d in a spell (q < 0.05), "
                  "%d pairs the quiet reorders\n",
                  onsets, quiet, spell, flips);
    assert_true(quiet >= 3 && spell >= 3);
    assert_true(flips >= 1);
}

/* A format-20 save (no onset_quiet in its config) of make_spells' detector (seed 1), cut at
 * 1,280 (between the spell's onsets), loads with onset_quiet 0 and continues bit for bit as the
 * saved detector with 0; the same bytes claimed as format 21 are refused. */
static void test_load_format20(void **unused)
{
    (void)unused;
    spells_load_older(1800, offsetof(struct detector_config, onset_quiet), -1, 20);
}

/* ---- twenty-third round: a run where the model extrapolates does not open (warn_region) -- */

/* Six channels, row-major [n, 6], a pump driven by its load L: channel 0 the load (about 1, a
 * slow AR wander of deviation 0.02, read to 0.002), flow, pressure, current and vibration as
 * 100 L, 5 L^2, 20 L^3 and 2 L^1.5 with sensor noise, channel 5 a steady temperature. From
 * reading 400 the load falls by 0.25 along a half cosine of 300 readings and stays there: a
 * healthy move to an operating point far beyond the 134 rows of the first training (at 200;
 * the next is at 1,200), which the first linear model can only extrapolate to, its error
 * growing on every channel that the load drives. */
static float *make_load_move(int n, uint64_t seed)
{
    enum { C = 6, MOVE = 400, RAMP = 300 };
    float *x = malloc(sizeof(float) * C * (size_t)n);
    assert_non_null(x);
    uint64_t s = seed;
    const double pi = 3.14159265358979, innov = sqrt(1.0 - 0.95 * 0.95), by = 0.25;
    double ar = 0.0;
    for (int t = 0; t < n; t++) {
        ar = 0.95 * ar + innov * gauss(&s);
        double mv = t < MOVE           ? 0.0
                    : t >= MOVE + RAMP ? by
                                       : by * 0.5 * (1.0 - cos(pi * (t - MOVE) / RAMP));
        double L = 1.0 + 0.02 * ar - mv;
        x[C * t + 0] = (float)(L + 0.002 * gauss(&s));
        x[C * t + 1] = (float)(100.0 * L + 0.5 * gauss(&s));
        x[C * t + 2] = (float)(5.0 * L * L + 0.05 * gauss(&s));
        x[C * t + 3] = (float)(20.0 * L * L * L + 0.2 * gauss(&s));
        x[C * t + 4] = (float)(2.0 * pow(L, 1.5) + 0.03 * gauss(&s));
        x[C * t + 5] = (float)(60.0 + 0.1 * gauss(&s));
    }
    return x;
}

/* The anomalies opened on make_load_move(1100, seed) with warn_run_config(wr) and warn_region
 * as given (a copy loaded from a save at save_at > 0 beside it, bit for bit). */
static int load_move_opened(int wr, int region, uint64_t seed, int save_at)
{
    struct detector_config cfg;
    warn_run_config(&cfg, wr);
    cfg.warn_region = region;
    int opened, top, held;
    onset_run(&cfg, make_load_move(1100, seed), 1100, 6, 1100, save_at, &opened, &top, &held);
    return opened;
}

/* The run (its length, and how many of its readings lay beyond the model's region) that
 * warn_run_config(20) with warn_region carries into reading `at` of make_load_move(at, seed). */
static void load_move_run_at(uint64_t seed, int at, int *run_n, int *run_out)
{
    float *x = make_load_move(at, seed);
    struct detector_config cfg;
    warn_run_config(&cfg, 20);
    cfg.warn_region = 1;
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 6), 0);
    struct detector_result res;
    for (int t = 0; t < at; t++)
        step(d, x, t, 6, NULL, &res);
    *run_n = d->run_n;
    *run_out = d->run_out;
    detector_destroy(d);
    free(x);
}

/* The healthy load move, seeds 1-6: with warn_run and without warn_region, its warnings open
 * episodes (in at least half of the seeds); without warn_run nothing opens (so those were the
 * runs'), and with warn_region nothing opens either: its runs are made of readings beyond the
 * first model's region. The noise fault of test_warn_run (one channel, inside the region) is
 * flagged at the same reading with warn_region as without it, in every seed. A save inside a
 * run with readings beyond the region (seed 1, reading 575) continues bit for bit. warn_region
 * is 1 by default. */
static void test_warn_region(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.warn_region, 1);
    int run_n, run_out;
    load_move_run_at(1, 575, &run_n, &run_out);
    print_message("seed 1 load move at 575: run %d, %d beyond the region\n", run_n, run_out);
    assert_true(run_out > 0 && run_n >= run_out);
    int seeds_opened = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        int without = load_move_opened(20, 0, seed, 0);
        int gated = load_move_opened(20, 1, seed, seed == 1 ? 575 : 0);
        int no_run = load_move_opened(0, 0, seed, 0);
        print_message("seed %d load move: opened %d without warn_region, %d with, %d without "
                      "warn_run\n",
                      (int)seed, without, gated, no_run);
        assert_int_equal(no_run, 0);
        assert_int_equal(gated, 0);
        seeds_opened += without > 0;
        struct detector_config cfg;
        int delay[2], b[2], top, held[2];
        for (int region = 0; region <= 1; region++) {
            warn_run_config(&cfg, 20);
            cfg.warn_region = region;
            delay[region] = onset_run(&cfg, make_noisier(2100, 2.0, seed), 2100, 6, 1500, 0,
                                      &b[region], &top, &held[region]);
        }
        assert_int_equal(delay[1], delay[0]);
        assert_int_equal(held[1], held[0]);
    }
    assert_true(seeds_opened >= 3);
}

/* A format-21 save (no warn_region in its config, no run_out) of the load move (seed 1), cut
 * at 575 (inside a run), loads with warn_region 0 whatever the config's padding held, and continues
 * bit for bit as the detector that ran without it. */
static void test_load_format21(void **unused)
{
    (void)unused;
    enum { N = 1100, CUT = 575 };
    float *x = make_load_move(N, 1);
    struct detector_config cfg;
    warn_run_config(&cfg, 20);
    int opened = load_older_format(&cfg, x, N, CUT, 6,
                                   offsetof(struct detector_config, warn_region), 20, 21);
    print_message("format 21 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* ---- an accepted episode across a restart (ep_accepted, format 23) ----------------------- */

/* The readings the lasting flow step (make_end_pump(n, -1, 0, seed)) takes through a detector
 * with cfg (trainings inline) until its episode's regime has been accepted and learnt: the
 * training the acceptance asked for (on the same reading, inline) has zeroed in_anomaly and
 * the episode is still open. -1: never. */
static int accepted_cut(const struct detector_config *cfg, const float *x, int n)
{
    detector_t *d;
    assert_int_equal(detector_create(&d, cfg, 6), 0);
    struct detector_result res;
    int cut = -1;
    for (int t = 0; t < n && cut < 0; t++) {
        step(d, x, t, 6, NULL, &res);
        if (d->det_state == DET_ANOMALY && d->ep_accepted && d->in_anomaly < cfg->accept_after)
            cut = t + 1;
    }
    detector_destroy(d);
    return cut;
}

/* The first reason an episode ends by from reading `from` of x (N rows, C 6) through d (and a
 * beside it, which must agree bit for bit when given); DET_END_NONE: none ended. */
static enum detector_end first_end(detector_t *d, detector_t *a, const float *x, int from, int n)
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

/* A flow step that stays (accept_after 60, seeds 1-3) is accepted and its regime learnt by the
 * training that acceptance asks for, which zeroes in_anomaly while the episode still lasts (it
 * ends on the next reading). A save just after that training loads and the episode ends
 * "accepted", bit for bit as the saved detector (ended_by included); the same save cut to
 * format 22, which has no ep_accepted, can only derive it from in_anomaly and ends it otherwise
 * (as every restart there did before format 23). */
static void test_accepted_across_save(void **unused)
{
    (void)unused;
    enum { N = 1800, C = 6 };
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float *x = make_end_pump(N, -1, 0, seed);
        struct detector_config cfg;
        detector_config_default(&cfg);
        cfg.accept_after = 60;
        /* a runs as format 22 did (the cut below has no state of later fields). */
        config_as_format(&cfg, offsetof(struct detector_config, record_quiet));
        const int cut = accepted_cut(&cfg, x, N);
        assert_true(cut > 1600);
        detector_t *a, *b, *c;
        assert_int_equal(detector_create(&a, &cfg, C), 0);
        struct detector_result ra;
        for (int t = 0; t < cut; t++)
            step(a, x, t, C, NULL, &ra);
        assert_int_equal(ra.state, DET_ANOMALY);
        size_t len = detector_save_size(a), got;
        unsigned char *buf = malloc(len), *old = malloc(len);
        assert_non_null(buf);
        assert_non_null(old);
        assert_int_equal(detector_save(a, buf, len, &got), 0);
        memcpy(old, buf, len);
        cut_to_format(old, &got, offsetof(struct detector_config, record_quiet), 0, 22);
        assert_int_equal(detector_load(&b, buf, len), 0);
        assert_int_equal(detector_load(&c, old, got), 0);
        enum detector_end now = first_end(b, a, x, cut, N), was = first_end(c, NULL, x, cut, N);
        print_message("seed %d: saved after the acceptance's training (reading %d): ends %d, as "
                      "format 22 %d\n",
                      (int)seed, cut, (int)now, (int)was);
        assert_int_equal(now, DET_END_ACCEPTED);
        assert_true(was != DET_END_NONE && was != DET_END_ACCEPTED);
        detector_destroy(a);
        detector_destroy(b);
        detector_destroy(c);
        free(buf);
        free(old);
        free(x);
    }
}

/* A format-20 save (no ep_accepted) of the lasting flow step (seed 1, accept_after 60) loads and
 * continues bit for bit, ended_by included, through the episode that ends "accepted" at 1,666
 * (test_accepted_across_save): cut before the onset (1,560), and inside the episode before its
 * acceptance (1,630), where ep_accepted derived from in_anomaly is 0 as it was. */
static void test_load_format22(void **unused)
{
    (void)unused;
    enum { N = 1800, C = 6 };
    float *x = make_end_pump(N, -1, 0, 1);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.accept_after = 60;
    const int cuts[2] = {1560, 1630};
    for (int k = 0; k < 2; k++) {
        int opened = load_older_format(&cfg, x, N, cuts[k], C,
                                       offsetof(struct detector_config, record_quiet), 0, 22);
        print_message("format 22 load at %d: %d anomalies opened after the cut, as saved\n",
                      cuts[k], opened);
    }
    free(x);
}

/* tests/integration/test_pipeline.py's rotation (x = sin, y = cos of 2 pi k / 40, z = 0.5 x +
 * 0.3 y + 2, noise 0.01 on each), z shifted by 0.5 for good from reading 650; [n, 3]. */
static float *make_shifted_rotation(int n, uint64_t seed)
{
    float *x = malloc(sizeof(float) * 3 * (size_t)n);
    assert_non_null(x);
    uint64_t s = seed;
    const double w = 2.0 * 3.14159265358979 / 40.0;
    for (int k = 0; k < n; k++) {
        double a = sin(w * k) + 0.01 * gauss(&s), b = cos(w * k) + 0.01 * gauss(&s);
        x[3 * k] = (float)a;
        x[3 * k + 1] = (float)b;
        x[3 * k + 2] = (float)(0.5 * a + 0.3 * b + 2.0 + 0.01 * gauss(&s) + (k >= 650 ? 0.5 : 0.0));
    }
    return x;
}

/* Runs make_shifted_rotation(n, seed) through a detector with it_events' settings (warmup 300,
 * retrain_every 0, hidden 8), each training made and applied `lag` readings after the reading
 * that asked for it, on the window that ends at that reading (as the daemon does: its job waits
 * for a worker). Returns the reading that ends the shift's episode (-1: none by n), its reason
 * in *why, the reading its acceptance's training applied at in *applied. */
static int late_training_end(int lag, uint64_t seed, int n, enum detector_end *why, int *applied)
{
    enum { C = 3 };
    float *x = make_shifted_rotation(n, seed);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.warmup = 300;
    cfg.retrain_every = 0;
    cfg.n_hidden = 8;
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, C), 0);
    struct detector_result res;
    int asked = -1, opened = -1, ended = -1;
    *applied = -1;
    for (int t = 0; t < n && ended < 0; t++) {
        assert_int_equal(detector_step_ts(d, (int64_t)t * 1000, x + (size_t)C * t, NULL, &res), 0);
        if (res.changed && res.state == DET_ANOMALY && t >= 650 && opened < 0)
            opened = t;
        if (res.ended_by != DET_END_NONE && opened >= 0) {
            ended = t;
            *why = res.ended_by;
        }
        if (res.want_train && asked < 0)
            asked = t;
        if (asked >= 0 && t >= asked + (asked > 650 ? lag : 0)) {
            struct detector_train_info info;
            train_on(d, x, asked + 1, &info);
            if (asked > 650 && *applied < 0)
                *applied = t;
            asked = -1;
        }
    }
    detector_destroy(d);
    free(x);
    return ended;
}

/* The shift's episode is accepted at its 500th reading, which asks for a training. Applied at
 * once (lag 0, as vigil-replay trains) the episode ends on the next reading; applied 1, 5 or
 * 20 readings later on the window that ends at the reading that asked (the daemon's), it ends
 * within 50 readings of that training as well, seeds 1-3: the acceptance lasts until the
 * episode ends (ep_accepted). Before, the training's zeroed in_anomaly froze the windows and
 * re-armed the step hold, and the episode went on past reading 1,900 (another 750). */
static void test_accepted_training_late(void **unused)
{
    (void)unused;
    static const int lags[] = {0, 1, 5, 20};
    for (uint64_t seed = 1; seed <= 3; seed++)
        for (size_t i = 0; i < sizeof lags / sizeof lags[0]; i++) {
            enum detector_end why = DET_END_NONE;
            int applied;
            int ended = late_training_end(lags[i], seed, 1900, &why, &applied);
            print_message("seed %d lag %2d: acceptance's training applied at %d, episode ended at "
                          "%d (reason %d)\n",
                          (int)seed, lags[i], applied, ended, (int)why);
            assert_true(applied > 1100);
            assert_true(ended > applied && ended <= applied + 50);
            assert_int_equal(why, DET_END_ACCEPTED);
        }
}

/* ---- twenty-fifth round: the quiet weighs the record, across trainings (record_quiet) -------- */

/* Steps the n detectors d[] by reading t of x[., C] into r[] and asserts that they decide alike:
 * each one's state, flag and decision likelihood are d[0]'s. */
static void step_alike(detector_t **d, int n, const float *x, int t, int C,
                       struct detector_result *r)
{
    for (int i = 0; i < n; i++) {
        step(d[i], x, t, C, NULL, &r[i]);
        assert_int_equal(r[i].state, r[0].state);
        assert_int_equal(r[i].is_anomaly, r[0].is_anomaly);
        assert_true(r[i].likelihood == r[0].likelihood);
    }
}

/* record_quiet: make_spells (seeds 1-3) through three detectors: record_quiet 0 with onset_quiet
 * 0 (a: 0.5 + 0.5 (0.8 g + 0.2 l) at an onset), onset_record 0 (c: the onset's likelihood, so
 * its place l; with a, g), and the default (b). The decision is the same in all three at every
 * reading, and so is every score below score_level. At each onset b's score is 0.5 + 0.5 (0.8 g
 * q + 0.2 (0.5 l + 0.5 q)), q = 1 - exp(-s / err_window), s the readings since the previous one
 * c reported at or above score_level or capped at repeat_cap, counted across trainings (none
 * yet: q = 1), within float rounding. Fails with g not weighed by q or with q counted from the
 * training (make_spells has a spell that a training cuts). A record in a spell ranks lower in b
 * than in a. */
static void test_record_quiet(void **unused)
{
    (void)unused;
    enum { N = 3000, C = 4 };
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.record_quiet, 1);
    int onsets = 0, records = 0, spell_records = 0, lowered = 0, across = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float *x = make_spells(N, seed);
        detector_t *d[3];
        for (int i = 0; i < 3; i++) {
            struct detector_config cfg = def;
            cfg.record_quiet = i == 2;
            cfg.onset_rate = 0;     /* q alone: onset_rate has its own test */
            cfg.range_quiet = 0.0f; /* q whole: range_quiet has its own test */
            cfg.onset_now = 0;      /* l whole: onset_now has its own test */
            cfg.onset_quiet = i == 0 ? 0.0f : def.onset_quiet;
            cfg.onset_record = i == 1 ? 0.0f : def.onset_record;
            assert_int_equal(detector_create(&d[i], &cfg, C), 0);
        }
        int last_red = -1, seen = trainings, trained = 0;
        for (int t = 0; t < N; t++) {
            struct detector_result r[3];
            step_alike(d, 3, x, t, C, r);
            if (r[1].score < def.score_level) {
                assert_true(r[0].score == r[1].score && r[2].score == r[1].score);
            } else if (r[0].score < 1.0f - 1e-6f) {
                double q = last_red < 0 ? 1.0 : -expm1(-(t - last_red - 1.0) / def.err_window);
                double l = fmin(2.0 * (r[1].score - 0.5), 1.0);
                double g = (2.0 * (r[0].score - 0.5) - 0.2 * l) / 0.8;
                double want = 0.5 + 0.5 * (0.8 * g * q + 0.2 * (0.5 * l + 0.5 * q));
                assert_true(fabs(r[2].score - want) < 2e-5);
                onsets++;
                records += g > 0.01;
                spell_records += g > 0.01 && q < 0.1;
                lowered += g > 0.01 && q < 0.1 && r[2].score < r[0].score - 0.05;
                across += trained && last_red >= 0; /* a training since the previous one */
                trained = 0;
            }
            if (r[1].score >= def.score_level || r[1].score == def.repeat_cap)
                last_red = t;
            trained |= trainings != seen; /* four trainings: one a detector, none resets q */
            seen = trainings;
        }
        for (int i = 0; i < 3; i++)
            detector_destroy(d[i]);
        free(x);
    }
    print_message("record_quiet: %d onsets, %d records, %d of them in a spell (q < 0.1), %d ranked "
                  "lower by 0.05 or more; %d onsets after a training that kept the quiet\n",
                  onsets, records, spell_records, lowered, across);
    assert_true(onsets >= 10 && records >= 3);
    assert_true(lowered >= 1);
    assert_true(across >= 1);
}

/* A format-23 save (no record_quiet in its config, no quiet count) of make_spells' detector
 * (seed 1), cut at 1,280 (between the spell's onsets), loads with record_quiet 0 whatever the
 * config's padding held, and continues bit for bit as the saved detector with 0; the same bytes
 * claimed as format 24 are refused. */
static void test_load_format23(void **unused)
{
    (void)unused;
    spells_load_older(2300, offsetof(struct detector_config, record_quiet), 256, 23);
}

/* ---- twenty-sixth round: a record is as new as the device's onsets are rare (onset_rate) ---- */

/* onset_rate: make_spells (seeds 1-3) through three detectors: the default with onset_rate 0
 * (a: 0.5 + 0.5 (0.8 g q + 0.2 p) at an onset, p = 0.5 l + 0.5 q), onset_record 0 (c: its
 * onset's likelihood, so l) and the default (b). The decision is the same in all three at
 * every reading, and so is every score below score_level. At each onset b's score is 0.5 + 0.5
 * (0.8 g q / (1 + n) + 0.2 p), n = the sum over the earlier onsets (a's readings at or above
 * score_level) of exp(-age / err_window), counted across trainings, computed here outside the
 * detector, within float rounding. Fails with g not divided (onset_rate ignored), with the count
 * reset by a training, or with a different memory. A record after earlier onsets ranks lower in
 * b than in a. */
static void test_onset_rate(void **unused)
{
    (void)unused;
    enum { N = 3000, C = 4 };
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.onset_rate, 1);
    int onsets = 0, counted = 0, lowered = 0, across = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float *x = make_spells(N, seed);
        detector_t *d[3];
        for (int i = 0; i < 3; i++) {
            struct detector_config cfg = def;
            cfg.onset_rate = i == 2;
            cfg.range_quiet = 0.0f; /* q whole: range_quiet has its own test */
            cfg.onset_now = 0;      /* l whole: onset_now has its own test */
            cfg.onset_record = i == 1 ? 0.0f : def.onset_record;
            assert_int_equal(detector_create(&d[i], &cfg, C), 0);
        }
        int last_red = -1, seen = trainings, trained = 0, n_ons = 0, ons_at[64];
        for (int t = 0; t < N; t++) {
            struct detector_result r[3];
            step_alike(d, 3, x, t, C, r);
            if (r[1].score < def.score_level) {
                assert_true(r[0].score == r[1].score && r[2].score == r[1].score);
            } else {
                double n = 0.0;
                for (int k = 0; k < n_ons; k++)
                    n += exp(-(double)(t - ons_at[k]) / def.err_window);
                if (r[0].score < 1.0f - 1e-6f) {
                    double q = last_red < 0 ? 1.0 : -expm1(-(t - last_red - 1.0) / def.err_window);
                    double l = fmin(2.0 * (r[1].score - 0.5), 1.0), p = 0.5 * l + 0.5 * q;
                    double gq = (2.0 * (r[0].score - 0.5) - 0.2 * p) / 0.8;
                    double want = 0.5 + 0.5 * (0.8 * gq / (1.0 + n) + 0.2 * p);
                    assert_true(fabs(r[2].score - want) < 2e-5);
                    onsets++;
                    counted += n > 0.5 && gq > 0.01;
                    lowered += n > 0.5 && gq > 0.01 && r[2].score < r[0].score - 0.02;
                    across += trained && n > 0.1; /* a training since an onset still counted */
                }
                assert_true(n_ons < 64);
                ons_at[n_ons++] = t;
                trained = 0;
            }
            if (r[1].score >= def.score_level || r[1].score == def.repeat_cap)
                last_red = t;
            trained |= trainings != seen;
            seen = trainings;
        }
        for (int i = 0; i < 3; i++)
            detector_destroy(d[i]);
        free(x);
    }
    print_message("onset_rate: %d onsets, %d records after earlier onsets (n > 0.5), %d ranked "
                  "lower by 0.02 or more; %d onsets after a training with the count kept\n",
                  onsets, counted, lowered, across);
    assert_true(onsets >= 10 && counted >= 3);
    assert_true(lowered >= 1);
    assert_true(across >= 1);
}

/* A format-24 save (no onset_rate in its config, no onset count) of make_spells' detector
 * (seed 1), cut at 1,280 (between the spell's onsets), loads with onset_rate 0 whatever the
 * config's padding held, and continues bit for bit as the saved detector with 0; the same bytes
 * claimed as format 25 are refused. */
static void test_load_format24(void **unused)
{
    (void)unused;
    spells_load_older(2300, offsetof(struct detector_config, onset_rate), 256, 24);
}

/* ---- twenty-seventh round: the step test confirms itself (shift_confirm) ------------------- */

/* make_step_drift(1800, 1500, by, 0, seed) (a flow that steps down by `by` stationary
 * deviations at 1,500, no drift) through the defaults with shift_confirm as given; returns the
 * delay to the first flagged reading (-1: never), *before and *held as onset_run's. With spike,
 * the flow also takes one reading of +spike deviations at 1,200 (after the first two trainings:
 * the step test judges it). */
static int step_confirm_delay(int shift_confirm, double by, double spike, uint64_t seed,
                              int save_at, int *before, int *held)
{
    const int n = 1800, onset = 1500, C = 6;
    float *x = make_step_drift(n, onset, by, 0.0, seed);
    x[C * 1200] += (float)spike;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_confirm = shift_confirm;
    int top;
    return onset_run(&cfg, x, n, C, onset, save_at, before, &top, held);
}

/* shift_confirm: steps of 4-8 stationary deviations of the AR flow, seeds 1-6, each run with and
 * without it. It opens no episode before the step that the run without it does not (nor with a
 * single reading of 30 deviations at 1,200, which opens one episode with it and without it),
 * flags no step later or for fewer readings, finds more and some earlier (measured: 19 of 30
 * against 18, step 4 seed 1 at 31 readings and never without; step 5 seed 5 one reading sooner):
 * the step test's likelihood flickers around alarm_level as the step enters its window, and
 * confirm = 2 waits for two readings in a row that may never come. A save inside the step's
 * approach (seed 1, step 4, reading 1,510) continues bit for bit. */
static void test_shift_confirm(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.shift_confirm, 1);
    static const double steps[] = {4.0, 5.0, 6.0, 7.0, 8.0};
    int earlier = 0, found = 0, found0 = 0, gained = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        for (uint64_t seed = 1; seed <= 6; seed++) {
            int b1, h1, b0, h0, bs, hs, bs0, hs0;
            int save = seed == 1 && steps[i] == 4.0 ? 1510 : -1;
            int on = step_confirm_delay(1, steps[i], 0.0, seed, save, &b1, &h1);
            int off = step_confirm_delay(0, steps[i], 0.0, seed, -1, &b0, &h0);
            step_confirm_delay(1, steps[i], 30.0, seed, -1, &bs, &hs);
            step_confirm_delay(0, steps[i], 30.0, seed, -1, &bs0, &hs0);
            print_message("step %.0f seed %d: shift_confirm 1: delay %d, %d of 300 flagged (%d "
                          "before; %d with the spike); 0: delay %d, %d flagged (%d before; %d)\n",
                          steps[i], (int)seed, on, h1, b1, bs, off, h0, b0, bs0);
            assert_int_equal(b1, b0);
            assert_int_equal(bs, bs0);
            if (off >= 0)
                assert_true(on >= 0 && on <= off);
            assert_true(h1 >= h0);
            found += on >= 0;
            found0 += off >= 0;
            earlier += on >= 0 && (off < 0 || on < off);
            gained += off >= 0 ? off - on : 0;
        }
    print_message("shift_confirm: %d steps found (%d without it), %d earlier, %d readings sooner "
                  "where both found it\n",
                  found, found0, earlier, gained);
    assert_true(found > found0);
    assert_true(earlier >= 2);
}

/* A format-25 save (no shift_confirm in its config) of test_shift_confirm's pump, cut at 1,490
 * (just before the step), loads with shift_confirm 0 whatever the config's padding held, and
 * continues bit for bit as the saved detector with 0; the same bytes claimed as format 26 are
 * refused. Two pumps: seed 2's step of 7 deviations opens an episode either way; seed 1's step
 * of 4 opens one only with shift_confirm (test_shift_confirm), so a loader that left the field
 * on would not continue as saved. */
static void test_load_format25(void **unused)
{
    (void)unused;
    enum { N = 1800, CUT = 1490, C = 6 };
    const struct {
        double by;
        uint64_t seed;
    } pump[2] = {{7.0, 2}, {4.0, 1}};
    for (int k = 0; k < 2; k++) {
        float *x = make_step_drift(N, 1500, pump[k].by, 0.0, pump[k].seed);
        struct detector_config cfg;
        detector_config_default(&cfg);
        int opened = load_older_format(&cfg, x, N, CUT, C,
                                       offsetof(struct detector_config, shift_confirm), 257, 25);
        print_message("format 25 load, step %.0f seed %d: %d anomalies opened after the cut, as "
                      "saved\n",
                      pump[k].by, (int)pump[k].seed, opened);
        if (k == 0)
            assert_true(opened >= 1);
        free(x);
    }
}

/* ---- what opened an episode (detector_result.opened_by) ---------------------------------- */

/* Runs the n readings x[n, C] through a detector with cfg (trainings inline) and frees x.
 * Asserted on every reading: a reason exactly on the reading that enters state anomaly, and a
 * known one. Returns the reason of the first episode opened at or after `onset`
 * (DET_OPEN_NONE: none), *before the episodes opened before it. */
static enum detector_open open_reason(const struct detector_config *cfg, float *x, int n, int C,
                                      int onset, int *before)
{
    detector_t *d;
    assert_int_equal(detector_create(&d, cfg, C), 0);
    struct detector_result res;
    enum detector_state prev = DET_LEARNING;
    enum detector_open first = DET_OPEN_NONE;
    *before = 0;
    for (int t = 0; t < n; t++) {
        step(d, x, t, C, NULL, &res);
        int entered = prev != DET_ANOMALY && res.state == DET_ANOMALY;
        assert_int_equal(res.opened_by != DET_OPEN_NONE, entered);
        assert_true(res.opened_by >= DET_OPEN_NONE && res.opened_by <= DET_OPEN_LASTING);
        if (entered && t < onset)
            (*before)++;
        if (entered && t >= onset && first == DET_OPEN_NONE)
            first = res.opened_by;
        prev = res.state;
    }
    detector_destroy(d);
    free(x);
    return first;
}

/* The reason of the first episode a feature's series opens at `onset` with the feature on
 * (cfg) and off (off); asserted: nothing opens before the onset, the run without the feature
 * never names it, and an episode that opens only with it names it. Returns 1 when the run with
 * it names it. */
static int open_reason_pair(const struct detector_config *cfg, const struct detector_config *off,
                            float *x, int n, int C, int onset, enum detector_open feature)
{
    float *y = malloc(sizeof(float) * (size_t)n * (size_t)C);
    assert_non_null(y);
    memcpy(y, x, sizeof(float) * (size_t)n * (size_t)C);
    int b1, b0;
    enum detector_open with = open_reason(cfg, x, n, C, onset, &b1);
    enum detector_open without = open_reason(off, y, n, C, onset, &b0);
    static const char *const names[] = {"none", "error", "level", "step", "lasting"};
    print_message("  %s with the feature, %s without\n", names[with], names[without]);
    assert_int_equal(b1 + b0, 0);
    assert_true(without != feature);
    if (without == DET_OPEN_NONE && with != DET_OPEN_NONE)
        assert_int_equal(with, feature);
    return with == feature;
}

/* Each reason, seeds 1-6, from a series made to open that way. A flow reading of +30
 * deviations (make_step_drift's pump at 1,200, test_shift_confirm's spike) opens on the
 * prediction error in every seed (range_open 0: with it, the spike opens at once as a level).
 * The flow stepping down by 4 stationary deviations at 1,500 (test_shift_confirm's smallest
 * step; shift_len 0 without the step test), the AR level moving by 10 at 1,500
 * (test_op_point_level_shift's; shift_len 0, op_point 0 without it) and the noisier pump
 * (test_warn_run's; warn_run 0 without it) open_reason_pair's assertions, and each names its
 * feature in at least one seed (measured: the step in seed 1, the level in seed 2, where the
 * error misses its onset, and since range_open in every seed, the move's first reading being
 * far beyond the level's range; the lasting warning in seeds 1, 2 and 6, in 6 ahead of the
 * error). The level's "without" runs with range_open 0 as well. */
static void test_episode_open_reason(void **unused)
{
    (void)unused;
    int steps = 0, levels = 0, lasting = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        struct detector_config cfg, off;
        int before;
        detector_config_default(&cfg);
        float *x = make_step_drift(1800, 1800, 0.0, 0.0, seed);
        x[6 * 1200] += 30.0f;
        off = cfg;
        off.range_open = 0; /* with it, the spike (far beyond the flow's range) opens as a level */
        assert_int_equal(open_reason(&off, x, 1800, 6, 1200, &before), DET_OPEN_ERROR);
        assert_int_equal(before, 0);

        print_message("seed %d, a step of 4:\n", (int)seed);
        off = cfg;
        off.shift_len = 0;
        steps += open_reason_pair(&cfg, &off, make_step_drift(1800, 1500, 4.0, 0.0, seed), 1800, 6,
                                  1500, DET_OPEN_STEP);

        print_message("seed %d, a level that moves by 10:\n", (int)seed);
        cfg.shift_len = 0;
        off = cfg;
        off.op_point = 0;
        off.range_open = 0; /* a level of 10 leaves the range: range_open opens it as a level too */
        levels += open_reason_pair(&cfg, &off, make_ar_level(1800, 1500, 1, 10.0, seed), 1800, 4,
                                   1500, DET_OPEN_LEVEL);

        print_message("seed %d, a channel twice as noisy:\n", (int)seed);
        warn_run_config(&cfg, 20);
        warn_run_config(&off, 0);
        lasting += open_reason_pair(&cfg, &off, make_noisier(2100, 2.0, seed), 2100, 6, 1500,
                                    DET_OPEN_LASTING);
    }
    assert_true(steps >= 1 && levels >= 1 && lasting >= 1);
}

/* ---- twenty-eighth round: the step test's reference winsorised (shift_winsor) ------------- */

/* make_step_drift(1800, 1500, by, 0, seed), with the flow's step spread over a ramp of 48
 * readings (a valve closing slowly), through the defaults with shift_winsor as given; returns
 * the delay to the first flagged reading (-1: never), *before and *held as onset_run's. */
static int ramp_winsor_delay(float winsor, double by, uint64_t seed, int save_at, int *before,
                             int *held)
{
    const int n = 1800, onset = 1500, C = 6, R = 48;
    float *x = make_step_drift(n, onset, by, 0.0, seed);
    for (int t = onset; t < onset + R; t++)
        x[C * t] += (float)(by * (1.0 - (t - onset + 1.0) / R));
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.shift_winsor = winsor;
    int top;
    return onset_run(&cfg, x, n, C, onset, save_at, before, &top, held);
}

/* shift_winsor 2.5: ramps of 4-8 stationary deviations of the AR flow over 48 readings, seeds
 * 1-6, each run with it and without. The ramp's growing estimates enter the reference while the
 * test's window still holds only part of it and widen the deviation it is then judged against;
 * winsorised, they cannot, and more ramps are found (measured: 13 of 30 against 10, seed 1's
 * ramps of 6-8 deviations at 31-34 readings and never without), none later, and no anomaly
 * opens before the ramp in any run. A save inside the ramp (seed 1, 5 deviations, reading 1,530)
 * continues bit for bit. */
static void test_shift_winsor(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_true(def.shift_winsor == 0.0f);
    static const double steps[] = {4.0, 5.0, 6.0, 7.0, 8.0};
    int earlier = 0, later = 0, found = 0, found0 = 0, more_before = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        for (uint64_t seed = 1; seed <= 6; seed++) {
            int b1, h1, b0, h0;
            int save = seed == 1 && steps[i] == 5.0 ? 1530 : -1;
            int on = ramp_winsor_delay(2.5f, steps[i], seed, save, &b1, &h1);
            int off = ramp_winsor_delay(0.0f, steps[i], seed, -1, &b0, &h0);
            print_message("ramp %.0f seed %d: shift_winsor 2.5: delay %d, %d of 300 flagged (%d "
                          "before); 0: delay %d, %d flagged (%d before)\n",
                          steps[i], (int)seed, on, h1, b1, off, h0, b0);
            found += on >= 0;
            found0 += off >= 0;
            earlier += on >= 0 && (off < 0 || on < off);
            later += off >= 0 && (on < 0 || on > off);
            more_before += b1 > b0;
        }
    print_message("shift_winsor: %d ramps found (%d without it), %d earlier, %d later, %d runs "
                  "with more openings before the ramp\n",
                  found, found0, earlier, later, more_before);
    assert_true(found > found0);
    assert_int_equal(later, 0);
    assert_int_equal(more_before, 0);
}

/* A format-26 save (no shift_winsor in its config) of test_shift_confirm's pump (seed 2, step
 * 7), cut at 1,490 (just before the step), loads with shift_winsor 0 whatever the config's
 * padding held, and continues bit for bit as the saved detector with 0. shift_winsor fills
 * format 26's tail padding (the config keeps its size), so the junk there is all ones, a NaN
 * as a float: the same bytes claimed as format 27 read it and are refused. */
static void test_load_format26(void **unused)
{
    (void)unused;
    enum { N = 1800, CUT = 1490, C = 6 };
    float *x = make_step_drift(N, 1500, 7.0, 0.0, 2);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, N, CUT, C,
                                   offsetof(struct detector_config, shift_winsor), -1, 26);
    print_message("format 26 load: %d anomalies opened after the cut, as saved\n", opened);
    assert_true(opened >= 1);
    free(x);
}

/* ---- thirtieth round: the quiet's credit goes where the device has not been (range_quiet) ---- */

/* range_quiet: make_spells (seeds 1-3), whose later bumps stay within the range the earlier and
 * larger ones set, through two detectors: range_quiet 0 (a) and the default (b). The decision
 * is the same in both at every reading, and so is every score below score_level. Each channel's
 * range is kept here outside the detector: from the first scored reading t0 on, reading t folds
 * in x[t - (err_short - 1)] after its own score (the reading that leaves the short window). At
 * each onset whose short window (x[t - err_short + 1 .. t]) stays within every channel's range,
 * b's score is a's less 0.5 (1 - 0.8) 0.5 q range_quiet (the quiet's share of the likelihood's
 * part), q = 1 - exp(-s / err_window) for the s readings since the previous one at score_level;
 * elsewhere it is a's. Fails with the share ignored and with the range reset by a training
 * (both tried). */
static void test_range_quiet(void **unused)
{
    (void)unused;
    enum { N = 3000, C = 4 };
    struct detector_config def;
    detector_config_default(&def);
    assert_true(def.range_quiet == 0.4f);
    const int S = def.err_short;
    int within = 0, beyond = 0, across = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float *x = make_spells(N, seed);
        detector_t *d[2];
        for (int i = 0; i < 2; i++) {
            struct detector_config cfg = def;
            cfg.range_quiet = i == 0 ? 0.0f : def.range_quiet;
            cfg.range_far = 0.0f; /* it reads range_quiet's range: not in a's */
            assert_int_equal(detector_create(&d[i], &cfg, C), 0);
        }
        float lo[C] = {0}, hi[C] = {0};
        int n_in = 0, last_red = -1, seen = trainings, trained = 0;
        for (int t = 0; t < N; t++) {
            struct detector_result r[2];
            step_alike(d, 2, x, t, C, r);
            if (r[0].state == DET_LEARNING)
                continue;
            int in = n_in > 0;
            for (int k = t - S + 1 < 0 ? 0 : t - S + 1; in && k <= t; k++)
                for (int c = 0; c < C; c++)
                    in &= x[k * C + c] >= lo[c] && x[k * C + c] <= hi[c];
            if (r[0].score < def.score_level || r[0].score >= 1.0f - 1e-6f) {
                assert_true(r[1].score == r[0].score);
            } else {
                double q = last_red < 0 ? 1.0 : -expm1(-(t - last_red - 1.0) / def.err_window);
                double cut =
                    in ? 0.5 * (1.0 - def.onset_record) * def.onset_quiet * q * def.range_quiet
                       : 0.0;
                assert_true(fabs(r[1].score - (r[0].score - cut)) < 2e-5);
                within += in && cut > 0.001;
                beyond += !in;
                across += in && trained;
                trained = 0;
            }
            if (r[0].score >= def.score_level || r[0].score == def.repeat_cap)
                last_red = t;
            trained |= trainings != seen;
            seen = trainings;
            if (t - S + 1 >= 0) { /* the reading that leaves the short window */
                const float *v = x + (t - S + 1) * C;
                for (int c = 0; c < C; c++) {
                    lo[c] = n_in == 0 || v[c] < lo[c] ? v[c] : lo[c];
                    hi[c] = n_in == 0 || v[c] > hi[c] ? v[c] : hi[c];
                }
                n_in++;
            }
        }
        for (int i = 0; i < 2; i++)
            detector_destroy(d[i]);
        free(x);
    }
    print_message("range_quiet: %d onsets within the range (ranked lower by 0.02 q), %d beyond "
                  "it (as before); %d within after a training\n",
                  within, beyond, across);
    assert_true(within >= 3 && beyond >= 3);
    assert_true(across >= 1);
}

/* A format-27 save (no range_quiet in its config, no range) of make_spells' detector (seed 1),
 * cut at 1,280 (between the spell's onsets, after the larger bumps set the range), loads with
 * range_quiet 0 and continues bit for bit as the saved detector with 0, though onsets within
 * the range follow (the test's detectors would part there with the field on); the same bytes
 * claimed as format 28 are refused. */
static void test_load_format27(void **unused)
{
    (void)unused;
    spells_load_older(2300, offsetof(struct detector_config, range_quiet), -1, 27);
}

/* ---- thirty-first round: a level that moved and stays (offset_release) --------------------- */

#define OR_ONSET 1400 /* after the training at 1,200 */

/* One channel, an AR(1) level (0.5, innovations 0.1), 2,000 readings; from OR_ONSET a lasting
 * step of +`step` (the device settled at a new level: a one-step predictor that reverts to its
 * training level misses every reading by about the same amount). */
static float *make_new_level(uint64_t seed, double step)
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

/* Runs x (one channel, 2,000 readings, freed) with offset_release `after`: *opened the first
 * reading flagged from OR_ONSET on (-1: none), returns the length of that episode (to the end
 * if it does not end); *why its ended_by, *asked whether the reading that ended it asked for a
 * training, *again the episodes opened after it; asserts nothing opens before OR_ONSET. With
 * save_at > 0 a loaded copy saved there runs beside it bit for bit. */
static int new_level_run(float *x, int after, int save_at, int *opened, enum detector_end *why,
                         int *asked, int *again)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.offset_release = after;
    detector_t *d, *e = NULL;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    int ended = -1;
    *opened = -1;
    *why = DET_END_NONE;
    *asked = *again = 0;
    for (int t = 0; t < 2000; t++) {
        step_twin(d, &e, save_at, x, t, 1, &res);
        if (t < OR_ONSET && res.changed && res.is_anomaly)
            fail_msg("an episode opens at %d, before the new level", t);
        if (t >= OR_ONSET && *opened < 0 && res.is_anomaly)
            *opened = t;
        if (*opened >= 0 && ended < 0 && res.ended_by != DET_END_NONE) {
            ended = t;
            *why = res.ended_by;
            *asked = res.want_train;
        } else if (ended >= 0) {
            *again += res.changed && res.is_anomaly;
        }
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
    return *opened < 0 ? 0 : (ended < 0 ? 2000 : ended) - *opened;
}

/* offset_release (the default, 100): on one channel a level that moved by 30 innovation
 * deviations and stays is flagged at its onset as before, and its episode ends as released
 * on its 100th reading (99 flagged; within 10 more: the short window must be a steady offset),
 * asking for a training, after which nothing opens again in the 500 readings left; without it
 * (0) the error holds the same episode until it is accepted at accept_after (500). Seeds 1-4;
 * a save inside the episode (1,450) continues bit for bit. Without the release in
 * detector__score the first assertion fails (the episode lasts 500 readings). */
static void test_offset_release(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.offset_release, 100);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        int o1, o0, a1, a0, g1, g0;
        enum detector_end w1, w0;
        int l1 =
            new_level_run(make_new_level(seed, 3.0), 100, seed == 1 ? 1450 : 0, &o1, &w1, &a1, &g1);
        int l0 = new_level_run(make_new_level(seed, 3.0), 0, 0, &o0, &w0, &a0, &g0);
        print_message("seed %d: new level flagged at +%d, episode %d readings (end %d, training "
                      "asked %d, %d opened after); offset_release 0: %d readings (end %d)\n",
                      (int)seed, o1 - OR_ONSET, l1, (int)w1, a1, g1, l0, (int)w0);
        assert_true(l1 >= 99 && l1 <= 110);
        assert_int_equal(w1, DET_END_RELEASED);
        assert_true(a1);
        assert_int_equal(g1, 0);
        assert_int_equal(o1, o0);
        assert_true(o1 >= OR_ONSET && o1 - OR_ONSET <= FAULT_LATENCY);
        assert_true(l0 >= def.accept_after);
        assert_int_equal(w0, DET_END_ACCEPTED);
    }
}

/* Devices whose levels the operating point and the step test judge are not touched by a
 * one-sensor rule: make_step_drift's six channels (the flow down by 4 and 7 deviations at
 * 1,500, seeds 1-3) give the same result on every reading with the configuration `on` as with
 * its int or float field at offset `field` set to 0. */
static void assert_multichannel_same(const struct detector_config *on, size_t field,
                                     const char *name)
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
static void assert_multichannel_unchanged(size_t field, const char *name)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_multichannel_same(&def, field, name);
}

/* Devices whose levels the operating point and the step test judge keep their episodes as
 * before: the same result on every reading with offset_release 100 as with 0. */
static void test_offset_release_multichannel(void **unused)
{
    (void)unused;
    assert_multichannel_unchanged(offsetof(struct detector_config, offset_release),
                                  "offset_release");
}

/* A format-28 save (no offset_release in its config; on main the field takes format 28's tail
 * padding, after range_quiet: -1 there, which a loader that read it would refuse, and which
 * makes the same bytes claimed as format 29 a refused config) of the one-channel new level's
 * detector, cut inside the episode (1,450), loads with offset_release 0 and continues bit for
 * bit as the saved detector run without it: the episode is held to its acceptance. */
static void test_load_format28(void **unused)
{
    (void)unused;
    float *x = make_new_level(2, 3.0);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, 2000, 1450, 1,
                                   offsetof(struct detector_config, offset_release), -1, 28);
    print_message("format 28 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* ---- thirty-third round: a second opinion's onset opens (opinion_open) ---- */

/* make_slow_cycle's load curve that fails to come (keep 0) and that flattens to 0.6 (keep 0.6,
 * where season_accum's accumulated departure sees it), seeds 1-4: the training at 1,200 keeps
 * the profile as a second opinion without choosing it. With opinion_open (the default) the
 * missed or flattened day is flagged before the high phase would have ended (8-55 readings
 * after the missed ramp's start), and at most one episode opens between the training and the
 * stop (measured: one in seed 3, whose period is estimated at 198 of 200 and drifts, none in
 * the others; nothing is scored there either way); with it off the one-step error flags neither in
 * that time (the fifteenth and nineteenth rounds' tests: the decision was the error's), so
 * the test fails without the behaviour. Saves at 1,400 (seeds 1, 2), loaded, continue bit for
 * bit through the opening (the run count is not saved, and is 0 there). */
static void test_opinion_open(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.opinion_open, 1);
    const double keeps[2] = {0.0, 0.6};
    for (int k = 0; k < 2; k++)
        for (uint64_t seed = 1; seed <= 4; seed++) {
            struct detector_train_info ion, ioff;
            int fon, foff, bon, boff;
            opinion_delay(1 | 4, def.season_accum, keeps[k], seed, seed <= 2 ? 1400 : -1, &fon,
                          &bon, &ion);
            opinion_delay(1, def.season_accum, keeps[k], seed, -1, &foff, &boff, &ioff);
            print_message("keep %.1f seed %d: period %d chosen %d; opinion_open 1: flag %d (%d "
                          "before); 0: flag %d (%d before)\n",
                          keeps[k], (int)seed, ion.season_period[0], ion.season[0], fon, bon, foff,
                          boff);
            assert_int_equal(ion.season[0], 0);
            assert_true(fon >= 0);
            assert_true(bon <= 1);
            assert_int_equal(foff, -1);
        }
}

/* A format-29 save (no opinion_open in its config; -1 where the field may lie in format 29's
 * tail padding, which a loader that read it would refuse, and which makes the same bytes
 * claimed as format 30 a refused config) of make_slow_cycle's detector (keep 0, seed 1), cut
 * at 1,400 after the training that kept the profile, loads with opinion_open 0 and continues
 * bit for bit as the saved detector run without it, through the missed day that the opinion
 * would open on. */
static void test_load_format29(void **unused)
{
    (void)unused;
    float *x = make_slow_cycle(1680, 1500, 1, 0.0);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, 1680, 1400, 1,
                                   offsetof(struct detector_config, opinion_open), -1, 29);
    print_message("format 29 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* ---- thirty-fifth round: an episode ends when its recent readings are normal (hold_recent) -- */

#define HR_ONSET OR_ONSET /* make_new_level's onset, after the training at 1,200 */
#define HR_N     2000     /* make_new_level's length */

/* One channel, make_new_level's AR(1) level (0.5, innovations 0.1), HR_N readings. kind 0: a
 * burst from HR_ONSET, +2.0 decaying by 0.85 a reading for 6 readings, after which the values
 * are back at their level (the return: HR_ONSET + 6). kind 1: a lasting noisy fault from
 * HR_ONSET (make_new_level's step of +0.6: 5 of the level's deviations, the one-step error
 * about 3 of its own), whose error now and then falls back inside the noise. */
static float *make_hold_case(uint64_t seed, int kind)
{
    float *x = make_new_level(seed, kind ? 0.6 : 0.0);
    for (int k = 0; kind == 0 && k < 6; k++)
        x[HR_ONSET + k] += (float)(2.0 * pow(0.85, k));
    return x;
}

/* Runs x (one channel, HR_N readings; not freed) with cfg: returns the reading
 * that ends the first episode opened from HR_ONSET on (HR_N: it does not end, -1: none
 * opens), *opened the episodes opened from HR_ONSET on, *why how the first ended; asserts
 * nothing opens before HR_ONSET. With save_at > 0 a loaded copy saved there runs beside it
 * bit for bit. */
static int hold_case_cfg(const struct detector_config *cfg, const float *x, int save_at,
                         int *opened, enum detector_end *why)
{
    detector_t *d, *e = NULL;
    assert_int_equal(detector_create(&d, cfg, 1), 0);
    struct detector_result res;
    int ended = -1, first = -1;
    *opened = 0;
    *why = DET_END_NONE;
    for (int t = 0; t < HR_N; t++) {
        step_twin(d, &e, save_at, x, t, 1, &res);
        int opens = res.changed && res.state == DET_ANOMALY;
        if (t < HR_ONSET && opens)
            fail_msg("an episode opens at %d, before the case", t);
        if (t >= HR_ONSET && opens && first < 0)
            first = t;
        *opened += t >= HR_ONSET && opens;
        if (first >= 0 && ended < 0 && res.ended_by != DET_END_NONE) {
            ended = t;
            *why = res.ended_by;
        }
    }
    detector_destroy(d);
    detector_destroy(e);
    return first < 0 ? -1 : ended < 0 ? HR_N : ended;
}

/* hold_case_cfg with the defaults and hold_recent `k`. */
static int hold_case_run(const float *x, int k, int save_at, int *opened, enum detector_end *why)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.hold_recent = k;
    return hold_case_cfg(&cfg, x, save_at, opened, why);
}

/* hold_recent (the default, 3): on one channel, a burst that decays over 6 readings is
 * flagged as one episode, which ends within 4 readings of the values' return (HR_ONSET + 6)
 * in at least 6 of seeds 1-12 (measured: 7; the model's error stays up for a few readings
 * after a burst in the others, and those readings are not normal) and never later than with
 * hold_recent 0, whose median of up to err_short readings ends it 5-8 readings after the
 * return in every seed: without the rule the first assertion fails. A save inside the burst
 * (seed 1, 1,403) continues bit for bit. */
static void test_hold_recent_burst(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.hold_recent, 3);
    const int back = HR_ONSET + 6;
    int soon = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        float *x = make_hold_case(seed, 0);
        struct detector_config c3 = def, c0 = def;
        c3.hold_decay = c0.hold_decay = 0.0f; /* hold_recent alone: the decay's rule ends the */
        c0.hold_recent = 0;                   /* burst a reading before its return (below)   */
        int od, o3, o0;
        enum detector_end wd, w3, w0;
        int e3 = hold_case_cfg(&c3, x, seed == 1 ? HR_ONSET + 3 : 0, &o3, &w3);
        int e0 = hold_case_cfg(&c0, x, 0, &o0, &w0);
        int ed = hold_case_cfg(&def, x, 0, &od, &wd);
        print_message("seed %d: burst episode ends %+d after the return (%d opened); "
                      "hold_recent 0: %+d (%d opened); defaults (hold_decay 0.5): %+d (%d "
                      "opened)\n",
                      (int)seed, e3 - back, o3, e0 - back, o0, ed - back, od);
        free(x);
        assert_int_equal(o3, 1);
        assert_int_equal(w3, DET_END_CLEARED);
        assert_true(e3 >= back && e3 <= e0);
        /* With the defaults the burst (a decay, 2.0 x 0.85^k) is still one episode, ended
         * cleared, never later than by hold_recent alone, and no earlier than its last
         * reading (back - 1: 0.89, under half its peak; measured -1 to +1 in seeds 1-12). */
        assert_int_equal(od, 1);
        assert_int_equal(wd, DET_END_CLEARED);
        assert_true(ed >= back - 1 && ed <= e3);
        soon += e3 - back <= 4;
    }
    assert_true(soon >= 6);
}

/* The lasting fault of make_hold_case (kind 1), seeds 1-12, some of whose readings fall back
 * inside the noise: with hold_recent 3 (the default) it is held exactly as with 0, one
 * episode from its onset (two in seed 2, as with 0) until offset_release lets it go, 101-125
 * readings on; no third normal reading in a row comes inside it. hold_recent 2 splits it in
 * 6 of the 12 seeds (up to 13 episodes), and the median of the newest 5 readings (the
 * thirty-fifth round's first form) in 2 of seeds 1-8 (6 and 12 episodes): measured. */
static void test_hold_recent_lasting(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        float *x = make_hold_case(seed, 1);
        int o3, o0;
        enum detector_end w3, w0;
        int e3 = hold_case_run(x, 3, 0, &o3, &w3);
        int e0 = hold_case_run(x, 0, 0, &o0, &w0);
        print_message("seed %d: fault's first episode ends at +%d (ended_by %d, %d opened); "
                      "hold_recent 0: +%d (%d, %d opened)\n",
                      (int)seed, e3 - HR_ONSET, (int)w3, o3, e0 - HR_ONSET, (int)w0, o0);
        free(x);
        assert_int_equal(w3, DET_END_RELEASED);
        assert_int_equal(e3, e0);
        assert_int_equal(o3, o0);
        assert_true(o3 <= (seed == 2 ? 2 : 1));
    }
}

/* Devices whose levels the level tests judge are unchanged: the same result on every reading
 * with hold_recent 3 as with 0 (assert_multichannel_unchanged). */
static void test_hold_recent_multichannel(void **unused)
{
    (void)unused;
    assert_multichannel_unchanged(offsetof(struct detector_config, hold_recent), "hold_recent");
}

/* A format-30 save (no hold_recent in its config; -1 where the field may lie in format 30's
 * tail padding, which a loader that read it would refuse, and which makes the same bytes
 * claimed as format 31 a refused config) of the burst's detector (seed 3, whose episode ends 4
 * readings sooner with the rule), cut inside the burst (1,403), loads with hold_recent 0 and
 * continues bit for bit as the saved detector run without it. */
static void test_load_format30(void **unused)
{
    (void)unused;
    float *x = make_hold_case(3, 0);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, HR_N, HR_ONSET + 3, 1,
                                   offsetof(struct detector_config, hold_recent), -1, 30);
    print_message("format 30 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
}

/* ---- thirty-seventh round: record_open's level on a one-sensor device (record_open_one) ---- */

/* record_spike_run on C channels with onset_record 0 (the record kept, and saved, for the
 * setting under test alone), record_open ro and record_open_one one. */
static int record_one_run(int C, float ro, float one, float by, uint64_t seed, int save_at,
                          int *opened, int *warned)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.onset_record = 0.0f;
    cfg.record_open = ro;
    cfg.record_open_one = one;
    cfg.hold_recent = 0; /* the bursts' control, as record_open_run's: measured without it */
    cfg.hold_decay = 0.0f; /* and without hold_decay, which ends the spike set's episode sooner */
    return record_spike_run(&cfg, C, by, seed, save_at, opened, warned);
}

/* On one channel (no level test judges it) record_open_one is record_open's level: at 1 the
 * bursts within the record the 15-reading spike set (+1.0, +1.4 against +3.0) open nothing and
 * raise warnings, where with it off at least one opens in every seed; bursts beyond every
 * reading since the training (+4.0) still open. A lasting step beyond the record is flagged
 * within FAULT_LATENCY either way. On two channels with a level (the spike's series and an
 * independent AR(1) level: the operating point and the step test judge them) record_open_one 1
 * changes nothing (the same episodes, warnings and step delay as off), while record_open 1
 * there holds every +1.0 burst to a warning (measured: 0 episodes against 1-2, seeds 1-4), so
 * the data exercise the rule the restriction keeps out. A save between the bursts (onset_record
 * and record_open 0: the record is saved for record_open_one alone, keeps_record in
 * detector_io.c) continues bit for bit. The default, 0.5, is score_level (docs/detection.md,
 * "Thirty-seventh round"). */
static void test_record_open_one(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_true(def.record_open_one == 0.5f);
    assert_true(def.record_open_one == def.score_level);
    const float sizes[3] = {1.0f, 1.4f, 4.0f};
    for (int i = 0; i < 3; i++)
        for (uint64_t seed = 1; seed <= 4; seed++) {
            int op1, w1, op0, w0;
            int f1 = record_one_run(1, 0.0f, 1.0f, sizes[i], seed, seed == 1 ? 1550 : 0, &op1, &w1);
            int f0 = record_one_run(1, 0.0f, 0.0f, sizes[i], seed, 0, &op0, &w0);
            print_message("one channel, bursts +%.1f seed %d: episodes at the bursts %d with "
                          "record_open_one 1 (%d readings in warning), %d off; step at +%d / +%d\n",
                          (double)sizes[i], (int)seed, op1, w1, op0, f1 - RO_STEP, f0 - RO_STEP);
            if (sizes[i] < 3.0f) {
                assert_int_equal(op1, 0);
                assert_true(w1 >= 3);
                assert_true(op0 >= 1);
            } else {
                assert_true(op1 >= 1);
            }
            assert_true(f1 >= RO_STEP && f1 - RO_STEP <= FAULT_LATENCY);
            assert_true(f0 >= RO_STEP && f0 - RO_STEP <= FAULT_LATENCY);
            /* The defaults (hold_recent 3, hold_decay 0.5 too): no burst within the record
             * opens, and the step is flagged within FAULT_LATENCY. Measured, not asserted: the
             * +4.0 bursts open in none of seeds 1-4 (with hold_decay 0 in seed 1 only: 2
             * episodes, the step at +4 against +8 with it; +8 in seeds 2-4 either way). */
            struct detector_config nd = def;
            nd.hold_decay = 0.0f;
            int opd, wd, fd = record_spike_run(&def, 1, sizes[i], seed, 0, &opd, &wd);
            int opn, wn, fn = record_spike_run(&nd, 1, sizes[i], seed, 0, &opn, &wn);
            print_message("  defaults: episodes at the bursts %d (%d in warning); step at +%d; "
                          "hold_decay 0: %d (%d), +%d\n",
                          opd, wd, fd - RO_STEP, opn, wn, fn - RO_STEP);
            if (sizes[i] < 3.0f)
                assert_int_equal(opd, 0);
            assert_true(fd >= RO_STEP && fd - RO_STEP <= FAULT_LATENCY);
        }
    for (uint64_t seed = 1; seed <= 4; seed++) {
        int op1, w1, op0, w0, opr, wr;
        int f1 = record_one_run(2, 0.0f, 1.0f, 1.0f, seed, 0, &op1, &w1);
        int f0 = record_one_run(2, 0.0f, 0.0f, 1.0f, seed, 0, &op0, &w0);
        record_one_run(2, 1.0f, 0.0f, 1.0f, seed, 0, &opr, &wr);
        print_message("two channels seed %d: episodes at the bursts %d with record_open_one 1, %d "
                      "off, %d with record_open 1\n",
                      (int)seed, op1, op0, opr);
        assert_int_equal(op1, op0);
        assert_int_equal(w1, w0);
        assert_int_equal(f1, f0);
        assert_true(op0 >= 1);
        assert_true(opr < op0);
    }
}

/* A format-31 save (no record_open_one in its config; -1 where the field may lie in format 31's
 * tail padding, which a loader that read it would refuse, and which makes the same bytes
 * claimed as format 32 a refused config) of make_record_spike's one-channel detector (bursts
 * +1.0, seed 1), cut at 1,450 between the spike and the bursts, loads with record_open_one 0
 * and continues bit for bit as the saved detector run without it: the bursts within the record
 * open episodes, as they did. */
static void test_load_format31(void **unused)
{
    (void)unused;
    float *x = make_record_spike(2000, 1.0f, 1);
    struct detector_config cfg;
    detector_config_default(&cfg);
    int opened = load_older_format(&cfg, x, 2000, 1450, 1,
                                   offsetof(struct detector_config, record_open_one), -1, 31);
    print_message("format 31 load: %d anomalies opened after the cut, as saved\n", opened);
    assert_true(opened >= 1);
    free(x);
}

/* ---- thirty-sixth round: an onset that keeps a schedule is routine (onset_rhythm) ---------- */

#define RH_PERIOD 288 /* a day at 5-minute readings */
#define RH_SPIKES 12
#define RH_N      (150 + (RH_SPIKES - 1) * RH_PERIOD + 100)
#define RH_EARLY  24 /* two hours */

/* One channel at 0.13 with noise (sd 0.01), RH_N readings, and a one-reading spike to about 1.4
 * once a "day": spike k at 150 + k RH_PERIOD with a jitter of -2..2 readings (a nightly job),
 * k = 0 .. RH_SPIKES - 1, their readings in at[]. Any two gaps between spikes then differ by at
 * most 8 readings, within 1/32 of a day (9). Spike `big` (-1: none) goes to 5.0 instead
 * (its raw score about 1.7 above the routine's, more than the log 2 the rule allows); off > 0
 * adds a spike of the routine's size at reading off, off the schedule. */
static float *make_routine(uint64_t seed, int big, int off, int *at)
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

/* make_routine(seed, big, off) through onset_rhythm 0 (a) and 1 (b), alike in every decision
 * (step_alike) and in every score below score_level; b is saved at `cut` (> 0) and its loaded
 * copy run beside it, bit for bit. sa[k], sb[k]: a's and b's scores at day k's onset (the
 * first reading from RH_EARLY before spike k to the spike that a reports at score_level or
 * above; the spike itself if none), where b's other scores are a's or score_level; *off_a,
 * *off_b at reading off. Returns the other readings at which b's score is not a's. */
static int routine_run(uint64_t seed, int big, int off, int cut, float *sa, float *sb, float *off_a,
                       float *off_b)
{
    int at[RH_SPIKES];
    float *x = make_routine(seed, big, off, at);
    struct detector_config cfg;
    detector_config_default(&cfg);
    detector_t *d[2], *c = NULL;
    for (int i = 0; i < 2; i++) {
        cfg.onset_rhythm = i;
        assert_int_equal(detector_create(&d[i], &cfg, 1), 0);
    }
    int k = 0, moved = 0, seen = 0;
    for (int t = 0; t < RH_N; t++) {
        struct detector_result r[2], rc;
        if (t == cut) {
            size_t len = detector_save_size(d[1]), got;
            unsigned char *buf = malloc(len);
            assert_non_null(buf);
            assert_int_equal(detector_save(d[1], buf, len, &got), 0);
            assert_int_equal(detector_load(&c, buf, got), 0);
            free(buf);
        }
        step_alike(d, 2, x, t, 1, r);
        if (c) {
            step(c, x, t, 1, NULL, &rc);
            assert_same_result(&r[1], &rc, 1);
        }
        if (r[0].score < cfg.score_level)
            assert_true(r[1].score == r[0].score);
        /* Day k's onset: the spike, or a reading up to RH_EARLY readings before it where the
         * predictor expected it (a profile that took the spike in: seed 3 after its second
         * training; the spike itself then ranks lower or is capped at repeat_cap). */
        const int near = k < RH_SPIKES && t >= at[k] - RH_EARLY && t <= at[k];
        if (near && !seen && (r[0].score >= cfg.score_level || t == at[k])) {
            sa[k] = r[0].score;
            sb[k] = r[1].score;
            seen = 1;
        } else if (near) {
            assert_true(r[1].score == r[0].score || r[1].score == cfg.score_level);
        } else {
            moved += r[1].score != r[0].score;
        }
        if (k < RH_SPIKES && t == at[k]) {
            k++;
            seen = 0;
        }
        if (t == off) {
            *off_a = r[0].score;
            *off_b = r[1].score;
        }
    }
    detector_destroy(d[0]);
    detector_destroy(d[1]);
    detector_destroy(c);
    free(x);
    return moved;
}

/* onset_rhythm: a daily one-reading spike with a jitter of a few readings (seeds 1-3) through
 * onset_rhythm 0 and 1, alike in every decision. Spike 0 comes while learning; days 1-11 have
 * an onset each (the spike, or a reading up to RH_EARLY before it where the predictor came to
 * expect it), ranked above score_level + 0.005 without the rule. With it, each day's onset from
 * the third repeat on ranks at score_level (its gap to an earlier one matches two earlier gaps
 * within 1/32 of it), except day 4's: the first training (at 1,200) narrowed the error scale,
 * so the first spike under it has a raw score well above the three before it (news once;
 * measured: 5.80 against at most 4.39, seed 1). Nothing else's score moves. A spike of the same
 * size off the schedule (in the middle of day 8) ranks as without the rule, and so does spike 6 on
 * schedule when it goes to 5.0 (not the routine's size), while day 7 stays routine (after it, that
 * spike in the long window keeps days 8-10 below score_level, seed 1: the chain breaks). A save and
 * load after the fifth spike continues bit for bit. Fails with the rule off, without its size
 * test, and with the onsets' times or sizes not saved (the loaded copy parts from the saved
 * detector: found so). */
static void test_onset_rhythm(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.onset_rhythm, 1);
    const float red = def.score_level;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float sa[RH_SPIKES], sb[RH_SPIKES], oa = -1.0f, ob = -1.0f, ba[RH_SPIKES], bb[RH_SPIKES];
        int moved = routine_run(seed, -1, 150 + 8 * RH_PERIOD + RH_PERIOD / 2,
                                150 + 5 * RH_PERIOD - 20, sa, sb, &oa, &ob);
        float u, v;
        int bmoved = routine_run(seed, 6, -1, -1, ba, bb, &u, &v);
        print_message("seed %d: days 1-11 %.3f %.3f %.3f %.3f %.3f ... %.3f without, %.3f %.3f "
                      "%.3f %.3f %.3f ... %.3f with; off the schedule %.3f -> %.3f; spike 6 at "
                      "5.0: %.3f -> %.3f\n",
                      (int)seed, sa[1], sa[2], sa[3], sa[4], sa[5], sa[11], sb[1], sb[2], sb[3],
                      sb[4], sb[5], sb[11], oa, ob, ba[6], bb[6]);
        assert_int_equal(moved, 0);
        for (int k = 1; k < RH_SPIKES; k++) {
            assert_true(sa[k] >= red + 0.005f);
            if (k >= 5)
                assert_true(sb[k] == red);
            else
                assert_true(sb[k] == sa[k]);
        }
        assert_true(oa >= red + 0.005f && ob == oa);
        assert_true(ba[6] >= red + 0.005f && bb[6] == ba[6]);
        assert_true(bb[7] == red); /* the schedule goes on after it */
        assert_int_equal(bmoved, 0);
    }
}

/* cut_and_continue over make_routine (seed 1, the defaults), cut after its fifth spike, to
 * format fmt, whose config ended before the field at offset field (-1 where it may lie in the
 * tail padding): at least 4 onsets after the cut, bit for bit as saved. */
static void routine_load_older(size_t field, uint32_t fmt)
{
    int at[RH_SPIKES];
    float *x = make_routine(1, -1, -1, at);
    struct detector_config cfg;
    detector_config_default(&cfg);
    double top;
    int opened;
    int onsets = cut_and_continue(&cfg, 1, x, RH_N, at[4] + 20, field, -1, fmt, &top, &opened);
    print_message("format %u load: %d onsets after the cut, largest score %.3f, as saved\n",
                  (unsigned)fmt, onsets, top);
    assert_true(onsets >= 4);
    free(x);
}

/* A format-32 save (no onset_rhythm in its config, no onsets' times) of make_routine's
 * detector (seed 1), cut after its fifth spike, loads with onset_rhythm 0 and continues bit for
 * bit as the saved detector run without it, through the repeats the rule would rank at
 * score_level; the same bytes claimed as format 33 are refused (-1 where the field may lie in
 * format 32's tail padding). */
static void test_load_format32(void **unused)
{
    (void)unused;
    routine_load_older(offsetof(struct detector_config, onset_rhythm), 32);
}

/* ---- one sensor: a fault that changes the pattern, not the range (a guard) ---------------- */

#define PF_ONSET 2000 /* the fault's first reading */
#define PF_N     3000

/* One channel: an AR(1) level (0.5, innovations 0.1) for PF_ONSET readings, then a control loop
 * hunting: 0.3 times that level plus a square wave of +-0.18 with period 4, every value within
 * about 1.6 of the level's deviations of its level. */
static float *make_hunting(uint64_t seed)
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

/* The one-sensor rules that end an episode sooner or open it later (hold_recent,
 * offset_release, record_open_one) must not let such a fault go: its values stay in range, its
 * prediction errors do not, and those are what a one-sensor device is judged on. With the
 * defaults, over seeds 1-16, every fault is flagged (at least 10 of its 1,000 readings; the
 * weakest, 11, is seed 6, where an earlier one-reading false alarm set the record and the
 * fault's decision likelihood hovers at 0.45-0.52: 180 with record_open_one 0), and all
 * together at least 2,000 readings (measured: 2,341; 2,541 with record_open_one 0), with at
 * most one reading a seed flagged before the fault. The thirty-eighth round's value test (not
 * merged, tag detect38-hold-back), which let such faults go within a few readings, fails it
 * (docs/detection.md, "Thirty-eighth round"). */
static void test_one_sensor_pattern_fault(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    int total = 0;
    for (uint64_t seed = 1; seed <= 16; seed++) {
        float *x = make_hunting(seed);
        detector_t *d;
        assert_int_equal(detector_create(&d, &cfg, 1), 0);
        struct detector_result res;
        int flagged = 0, before = 0;
        for (int t = 0; t < PF_N; t++) {
            step(d, x, t, 1, NULL, &res);
            if (res.state == DET_ANOMALY)
                *(t < PF_ONSET ? &before : &flagged) += 1;
        }
        print_message("seed %d: hunting fault flagged %d of %d readings, %d before it\n", (int)seed,
                      flagged, PF_N - PF_ONSET, before);
        detector_destroy(d);
        free(x);
        assert_true(before <= 1);
        assert_true(flagged >= 10);
        total += flagged;
    }
    assert_true(total >= 2000);
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
    float *x = make_routine(1, -1, -1, at);
    struct detector_config cfg;
    detector_config_default(&cfg);
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result r;
    for (int t = 0; t <= at[5] + 20; t++)
        step(d, x, t, 1, NULL, &r);
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
     * 0 or -2^62 load; 2^62 + 1, INT64_MAX or INT64_MIN + 1 (a gap could overflow) do not. */
    const size_t ts_off = raw_off + sizeof d->rh_raw;
    assert_memory_equal(buf + ts_off, d->rh_ts, sizeof d->rh_ts);
    assert_true(d->rh_ts[n - 1] == (int64_t)d->rh_at[n - 1] * 1000);
    const int64_t ts_ok[] = {DETECTOR_NO_TIME, 0, -((int64_t)1 << 62), d->rh_ts[n - 1]};
    const int64_t ts_bad[] = {((int64_t)1 << 62) + 1, INT64_MAX, INT64_MIN + 1};
    unsigned char *last_ts = buf + ts_off + sizeof(int64_t) * (size_t)(n - 1);
    for (size_t i = 0; i < 4; i++) {
        memcpy(last_ts, &ts_ok[i], 8);
        assert_int_equal(load_recrc(buf, len, alt), 0);
    }
    for (size_t i = 0; i < 3; i++) {
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
    detector_t *d, *e;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
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
    /* magic, format, C, the config, ep_accepted, then FIELDS_V1 (detector_format.h) in order. */
    size_t off = 12 + sizeof d->cfg + sizeof d->ep_accepted + sizeof d->ctx_head +
                 sizeof d->ctx_len + sizeof d->have_last + sizeof d->n_seen + sizeof d->due_at +
                 sizeof d->kind + sizeof d->version + sizeof d->next_version + sizeof d->have_pred +
                 sizeof d->ring_head + sizeof d->ring_len + sizeof d->ring_since_resum +
                 sizeof d->ring_sum + sizeof d->ring_sumsq + sizeof d->short_head +
                 sizeof d->short_len + sizeof d->short_sum;
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

/* ---- an operator accepts an episode (detector_accept) ------------------------------------ */

/* Runs x [n, C] (freed) through a detector with cfg, trainings inline, until its first episode
 * from `onset` on has lasted 30 readings; then, with `accept`, the operator accepts it. The
 * next `wait` readings are stepped without the training they ask for (the daemon's applies
 * later), beside a copy loaded from a save made right after the acceptance (bit for bit); then
 * that training applies and the rest runs with trainings inline. Returns the reading accepted
 * at; *asked: the first reading after it asked for a training; *held: readings in state anomaly
 * while the training waited; *again: episodes opened after the acceptance. */
static int accept_run(const struct detector_config *cfg, float *x, int n, int C, int onset,
                      int accept, int wait, int *asked, int *held, int *again)
{
    detector_t *d, *e = NULL;
    assert_int_equal(detector_create(&d, cfg, C), 0);
    struct detector_result res;
    int t = 0, since = -1;
    for (; t < n && since < 30; t++) {
        step(d, x, t, C, NULL, &res);
        since = t >= onset && res.is_anomaly ? since + 1 : since;
        if (t >= onset && since >= 0)
            assert_int_equal(res.state, DET_ANOMALY); /* the fault holds its episode */
    }
    assert_true(since == 30);
    const int at = t - 1;
    *asked = *held = *again = 0;
    if (accept) {
        assert_int_equal(detector_accept(d), 0);
        assert_int_equal(detector_get_state(d), DET_NORMAL);
        assert_int_equal(detector_accept(d), ERR_RANGE); /* no episode open any more */
        e = reloaded(d);
    }
    for (int k = 0; k < wait && t < n; k++, t++) {
        assert_int_equal(detector_step_ts(d, (int64_t)t * 1000, x + (size_t)C * t, NULL, &res), 0);
        if (e) {
            struct detector_result re;
            assert_int_equal(detector_step_ts(e, (int64_t)t * 1000, x + (size_t)C * t, NULL, &re),
                             0);
            assert_same_result(&res, &re, C);
        }
        if (k == 0)
            *asked = res.want_train;
        *held += res.is_anomaly;
        *again += accept && res.changed && res.is_anomaly;
        assert_int_equal(res.ended_by, DET_END_NONE); /* the acceptance made no result */
    }
    struct detector_train_info info;
    train_on(d, x, t, &info);
    for (; t < n; t++) {
        step(d, x, t, C, NULL, &res);
        *again += accept && res.changed && res.is_anomaly;
    }
    detector_destroy(d);
    detector_destroy(e);
    free(x);
    return at;
}

/* An operator accepts an episode 30 readings into a lasting fault, the defaults otherwise:
 * make_end_pump's flow down by 3 deviations for good from 1,600 (six channels: the operating
 * point and the step test judge its level) and make_new_level's one sensor up by 30
 * innovation deviations from 1,400 (offset_release 0: the error alone would hold it to
 * accept_after), seeds 1-3. The state is normal at once, the next reading asks for a
 * training, nothing opens in the 150 readings before that training applies, nor after it to
 * the end of the series (nor when it applies on the first reading after the acceptance, with
 * only 30-odd readings of the level in its window), and a save made right after the acceptance
 * continues bit for bit.
 * Without the acceptance the same readings stay flagged (the fault holds its episode), and
 * detector_accept without an open episode is ERR_RANGE. */
static void test_operator_accept(void **unused)
{
    (void)unused;
    for (int w = 0; w < 2; w++)
        for (uint64_t seed = 1; seed <= 3; seed++)
            for (int one = 0; one < 2; one++) {
                const int wait = w ? 150 : 1; /* readings before the training applies */
                struct detector_config cfg;
                detector_config_default(&cfg);
                cfg.offset_release = one ? 0 : cfg.offset_release;
                const int C = one ? 1 : 6, n = one ? 2000 : 2200, onset = one ? OR_ONSET : 1600;
                int at[2], asked[2], held[2], again[2]; /* [1]: accepted, [0]: not */
                for (int acc = 0; acc < 2; acc++)
                    at[acc] = accept_run(
                        &cfg, one ? make_new_level(seed, 3.0) : make_end_pump(n, -1, 0, seed), n, C,
                        onset, acc, wait, &asked[acc], &held[acc], &again[acc]);
                print_message("seed %d, %d channel(s): accepted at %d; training asked %d, %d of %d "
                              "readings flagged before it applied, %d episodes after to %d; not "
                              "accepted: %d flagged\n",
                              (int)seed, C, at[1], asked[1], held[1], wait, again[1], n, held[0]);
                assert_int_equal(at[1], at[0]);
                assert_true(asked[1]);
                assert_int_equal(held[1], 0);
                assert_int_equal(again[1], 0);
                assert_int_equal(held[0], wait);
            }
    detector_t *d = new_detector(4);
    assert_int_equal(detector_accept(d), ERR_RANGE); /* learning */
    assert_int_equal(detector_accept(NULL), ERR_INVAL);
    detector_destroy(d);
}

/* Planned maintenance ends an episode without learning it (detector_end_episode): the same
 * lasting faults as test_operator_accept's (six channels, the flow down for good; one sensor up
 * by 30 deviations with offset_release 0), seeds 1-3, ended 30 readings into their episodes.
 * The state is normal at once and no training is asked for; the fault is still there, so a new
 * episode opens within err_short readings and holds (the level was not learnt, unlike an
 * acceptance); a save made right after the end continues bit for bit. Without an open episode
 * it is ERR_RANGE. */
static void test_end_episode(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 3; seed++)
        for (int one = 0; one < 2; one++) {
            struct detector_config cfg;
            detector_config_default(&cfg);
            cfg.offset_release = one ? 0 : cfg.offset_release;
            const int C = one ? 1 : 6, n = one ? 2000 : 2200, onset = one ? OR_ONSET : 1600;
            float *x = one ? make_new_level(seed, 3.0) : make_end_pump(n, -1, 0, seed);
            detector_t *d;
            assert_int_equal(detector_create(&d, &cfg, C), 0);
            struct detector_result res, re;
            int t = 0, since = -1;
            for (; t < n && since < 30; t++) {
                step(d, x, t, C, NULL, &res);
                since = t >= onset && res.is_anomaly ? since + 1 : since;
            }
            assert_true(since == 30);
            assert_int_equal(detector_end_episode(d), 0);
            assert_int_equal(detector_get_state(d), DET_NORMAL);
            assert_int_equal(detector_end_episode(d), ERR_RANGE);
            detector_t *e = reloaded(d);
            int reopened = -1, flagged = 0, asked = 0;
            const int from = t;
            for (; t < n; t++) {
                assert_int_equal(
                    detector_step_ts(d, (int64_t)t * 1000, x + (size_t)C * t, NULL, &res), 0);
                assert_int_equal(
                    detector_step_ts(e, (int64_t)t * 1000, x + (size_t)C * t, NULL, &re), 0);
                assert_same_result(&res, &re, C);
                if (t < from + cfg.err_short)
                    asked |= res.want_train;
                if (reopened < 0 && res.changed && res.is_anomaly)
                    reopened = t - from;
                flagged += res.is_anomaly;
            }
            print_message("seed %d, %d channel(s): ended at %d; reopened %d readings later, %d of "
                          "%d flagged after\n",
                          (int)seed, C, from - 1, reopened, flagged, n - from);
            assert_false(asked);
            assert_true(reopened >= 0 && reopened <= cfg.err_short);
            assert_true(flagged >= (n - from) / 2);
            detector_destroy(d);
            detector_destroy(e);
            free(x);
        }
    detector_t *d = new_detector(4);
    assert_int_equal(detector_end_episode(d), ERR_RANGE); /* learning */
    assert_int_equal(detector_end_episode(NULL), ERR_INVAL);
    detector_destroy(d);
}

/* ---- fortieth round: a reading far beyond the device's record of values (range_far) ------- */

#define FD_N     3600
#define FD_FROM  200  /* the first scored reading (warmup): the range starts there */
#define FD_JUST  2400 /* a dip 0.2 of the range's width below its minimum */
#define FD_FAR   3000 /* a dip 0.8 of the width below it */
#define FD_SHARE 0.5f

/* Lowers x[t] to u widths below the range of x[FD_FROM .. t - 1] (the values the detector has
 * shown since it began scoring); returns the range's width. */
static double dip_below(float *x, int t, double u)
{
    float lo = x[FD_FROM], hi = x[FD_FROM];
    for (int k = FD_FROM; k < t; k++) {
        lo = x[k] < lo ? x[k] : lo;
        hi = x[k] > hi ? x[k] : hi;
    }
    x[t] = (float)(lo - u * ((double)hi - lo));
    return (double)hi - lo;
}

/* One sensor whose error scale is wide in a direction unrelated to the fault's: an AR(1) level
 * (0.5, innovations 0.1) with an upward burst (+0.5 to +1, decaying with the level) every 40
 * readings on average, and two single readings below its range: FD_JUST 0.2 of the width below
 * (news to no one) and FD_FAR 0.8 below (as NAB's ec2_request_latency_system_failure w0). */
static float *make_far_dip(uint64_t seed)
{
    float *x = malloc(sizeof(float) * FD_N);
    assert_non_null(x);
    uint64_t s = seed;
    double v = 0.0;
    for (int t = 0; t < FD_N; t++) {
        v = 0.5 * v + 0.1 * gauss(&s);
        if (rng_next(&s) % 40 == 0)
            v += 0.5 + 0.5 * (double)(rng_next(&s) >> 11) / 9007199254740992.0;
        x[t] = (float)v;
    }
    dip_below(x, FD_JUST, 0.2);
    dip_below(x, FD_FAR, 0.8);
    return x;
}

/* range_far: make_far_dip (seeds 1-3) through range_far 0 (a), 0.5 (b) and 0.5 with range_open
 * (c), the other settings the defaults. Before FD_FAR the three agree in every result (the
 * bursts and the just-beyond dip are not far); at FD_FAR, where a's score is the likelihood's,
 * below score_level, b reports the dip at 0.5 + 0.5 (1 - 0.5 / u) at least, u its excess in
 * widths of the range kept here, b's decision is a's, and c opens an episode (level, channel 0)
 * that ends within err_short readings, as an error's episode of one reading does. */
static void test_range_far(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float *x = make_far_dip(seed);
        detector_t *d[3];
        for (int i = 0; i < 3; i++) {
            struct detector_config cfg;
            detector_config_default(&cfg);
            cfg.range_far = i == 0 ? 0.0f : FD_SHARE;
            cfg.range_open = i == 2;
            assert_int_equal(detector_create(&d[i], &cfg, 1), 0);
        }
        float lo = 0.0f, hi = 0.0f;
        int scored = 0, ended = -1;
        double u = 0.0;
        for (int t = 0; t < FD_N && ended < 0; t++) {
            struct detector_result r[3];
            for (int i = 0; i < 3; i++)
                step(d[i], x, t, 1, NULL, &r[i]);
            if (t < FD_FAR) {
                for (int i = 1; i < 3; i++) {
                    assert_true(r[i].score == r[0].score);
                    assert_int_equal(r[i].state, r[0].state);
                }
            } else if (t == FD_FAR) {
                u = (lo - x[t]) / ((double)hi - lo);
                print_message("seed %d: dip %.2f widths below the range: score %.3f without, "
                              "%.3f with range_far; opened %d (by %d)\n",
                              (int)seed, u, r[0].score, r[1].score, r[2].state == DET_ANOMALY,
                              r[2].opened_by);
                assert_true(u > 0.7 && u < 0.9);
                assert_true(r[0].score < 0.5f && r[0].state != DET_ANOMALY);
                assert_true(r[1].score >= 0.5 + 0.5 * (1.0 - FD_SHARE / u) - 1e-6);
                assert_int_equal(r[1].state, r[0].state);
                assert_int_equal(r[2].state, DET_ANOMALY);
                assert_int_equal(r[2].opened_by, DET_OPEN_LEVEL);
                assert_int_equal(r[2].top_channel, 0);
            } else if (r[2].state != DET_ANOMALY) {
                ended = t;
            }
            if (t == FD_JUST) /* 0.2 widths below: as without the rule (checked above) */
                assert_true((lo - x[t]) / ((double)hi - lo) > 0.15);
            if (r[0].state != DET_LEARNING) {
                lo = scored == 0 || x[t] < lo ? x[t] : lo;
                hi = scored == 0 || x[t] > hi ? x[t] : hi;
                scored++;
            }
        }
        assert_true(ended > FD_FAR && ended <= FD_FAR + 10);
        for (int i = 0; i < 3; i++)
            detector_destroy(d[i]);
        free(x);
    }
}

/* A healthy 4-channel process (make_process) whose temperature (channel 2) still warms up, 20
 * degrees over the first readings (time constant 300), sets new maxima for its first thousand
 * readings: none is far beyond its range, which grows with it. A new device's range is narrow:
 * a jump of the pressure (channel 3) by 5 of its early range's widths at reading 300, 100
 * readings into the range, is not judged by it (too young). With range_far and range_open the
 * results are range_far 0's at every reading (seeds 1-3). */
static void test_range_far_warmup(void **unused)
{
    (void)unused;
    enum { N = 2400, C = 4, JUMP = 300 };
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float *x = make_process(N, seed);
        float lo = x[FD_FROM * C + 3], hi = lo;
        for (int t = 0; t < N; t++)
            x[t * C + 2] += (float)(20.0 * -expm1(-t / 300.0));
        for (int t = FD_FROM; t < JUMP; t++) {
            lo = x[t * C + 3] < lo ? x[t * C + 3] : lo;
            hi = x[t * C + 3] > hi ? x[t * C + 3] : hi;
        }
        x[JUMP * C + 3] = hi + 5.0f * (hi - lo);
        detector_t *d[2];
        for (int i = 0; i < 2; i++) {
            struct detector_config cfg;
            detector_config_default(&cfg);
            cfg.range_far = i == 0 ? 0.0f : FD_SHARE;
            cfg.range_open = i;
            assert_int_equal(detector_create(&d[i], &cfg, C), 0);
        }
        int maxima = 0;
        float top = x[FD_FROM * C + 2];
        for (int t = 0; t < N; t++) {
            struct detector_result r[2];
            for (int i = 0; i < 2; i++)
                step(d[i], x, t, C, NULL, &r[i]);
            assert_true(r[1].score == r[0].score);
            assert_int_equal(r[1].state, r[0].state);
            assert_int_equal(r[1].opened_by, r[0].opened_by);
            if (t > FD_FROM && x[t * C + 2] > top) {
                top = x[t * C + 2];
                maxima++;
            }
        }
        print_message("seed %d: %d new temperature maxima, none far\n", (int)seed, maxima);
        assert_true(maxima >= 50);
        for (int i = 0; i < 2; i++)
            detector_destroy(d[i]);
        free(x);
    }
}

/* A format-33 save (no range_far in its config) of make_far_dip's detector (seed 1) with
 * range_far and range_open on, cut 10 readings before its far dip, loads with both 0 and
 * continues bit for bit as the saved detector run without them, through the dip the rule would
 * report at 0.69 and open on (test_range_far): no score there reaches 0.5, nothing opens. The
 * same bytes claimed as format 34 are refused (-1 where the field may lie in format 33's tail
 * padding). */
static void test_load_format33(void **unused)
{
    (void)unused;
    float *x = make_far_dip(1);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.range_far = FD_SHARE;
    cfg.range_open = 1;
    double top;
    int opened;
    cut_and_continue(&cfg, 1, x, FD_FAR + 1, FD_FAR - 10,
                     offsetof(struct detector_config, range_far), -1, 33, &top, &opened);
    print_message("format 33 load: largest score %.3f after the cut, %d opened, as saved\n", top,
                  opened);
    assert_true(top < 0.5);
    assert_int_equal(opened, 0);
    free(x);
}

/* ---- restart equivalence (session 14): state a restart must keep --------------------------- */

#define RS_STOP 1500            /* make_slow_cycle's stop: the load curve fails to come */
#define RS_N    (RS_STOP + 180) /* the missed ramp (stop + 80) and its high phase */

/* Steps d by reading t of make_slow_cycle's one channel as opinion_delay does (the readings'
 * time a second apart) and trains at once when asked; fills res. */
static void cycle_step(detector_t *d, const float *x, int t, struct detector_result *res)
{
    assert_int_equal(detector_step_ts(d, (int64_t)t * 1000, x + t, NULL, res), 0);
    if (res->want_train) {
        struct detector_train_info info;
        train_on(d, x, t + 1, &info);
    }
}

/* The reading of make_slow_cycle (stop RS_STOP, keep 0, seed 1) at which opinion_open opens its
 * episode with the defaults (the kept profile's run at alarm_level reaching `confirm`): found
 * by a first pass; asserts there is one, after the stop, opened on the level. */
static int opinion_open_reading(const float *x)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.lstm_min_rows = 0; /* as opinion_delay's: an LSTM serves, the profile does not */
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    int at = -1;
    for (int t = 0; t < RS_N && at < 0; t++) {
        cycle_step(d, x, t, &res);
        if (t >= RS_STOP && res.changed && res.state == DET_ANOMALY && d->opin_run == cfg.confirm)
            at = t;
    }
    detector_destroy(d);
    assert_true(at > RS_STOP);
    assert_int_equal(res.opened_by, DET_OPEN_LEVEL);
    return at;
}

/* make_slow_cycle (stop RS_STOP, keep 0, seed 1) into *x (caller frees) and a default detector
 * *d (caller destroys) stepped up to the reading opinion_open opens its episode on (returned),
 * not that one: the second opinion's run in progress, at confirm - 1. */
static int cycle_before_open(float **x, detector_t **d)
{
    *x = make_slow_cycle(RS_N, RS_STOP, 1, 0.0);
    const int open_at = opinion_open_reading(*x);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.lstm_min_rows = 0; /* as opinion_delay's: an LSTM serves, the profile does not */
    assert_int_equal(detector_create(d, &cfg, 1), 0);
    struct detector_result res;
    for (int t = 0; t < open_at; t++)
        cycle_step(*d, *x, t, &res);
    assert_int_equal((*d)->opin_run, cfg.confirm - 1);
    return open_at;
}

/* opinion_open's run (opin_run) is saved (format 35): a detector saved one reading before its
 * second opinion's run reaches `confirm` (cycle_before_open) and loaded opens the same episode
 * on the same reading and continues bit for bit. Format 34 did not save the run: the loaded
 * copy's run started over and opened its episode a reading late, or not at all (vigil-replay
 * --restart-every 1 on NAB's art_daily_jumpsup, docs/reliability.md). */
static void test_opinion_run_saved(void **unused)
{
    (void)unused;
    float *x;
    detector_t *d;
    const int open_at = cycle_before_open(&x, &d);
    detector_t *e = reloaded(d);
    assert_int_equal(e->opin_run, d->opin_run);
    struct detector_result rd, re;
    for (int t = open_at; t < RS_N; t++) {
        cycle_step(d, x, t, &rd);
        cycle_step(e, x, t, &re);
        assert_same_result(&rd, &re, 1);
        if (t == open_at) {
            assert_true(re.changed && re.state == DET_ANOMALY);
            assert_int_equal(re.opened_by, DET_OPEN_LEVEL);
        }
    }
    print_message("opinion run saved at reading %d: the loaded copy opens there too\n", open_at);
    detector_destroy(d);
    detector_destroy(e);
    free(x);
}

/* A format-34 save (no opin_run: drop_opin_run) of the same detector at the same reading, the
 * run at 1, loads with the run at 0 and continues bit for bit as the saved detector does with
 * its run started over (as format 34 ran); the same bytes claimed as format 35 are refused (4
 * bytes short). */
static void test_load_format34(void **unused)
{
    (void)unused;
    float *x;
    detector_t *d, *e = NULL;
    const int open_at = cycle_before_open(&x, &d);
    d->cfg.mean_far = 0.0f;    /* format 36's: d runs on as format 34 loads it */
    d->cfg.rhythm_time = 0;    /* format 37's: no onsets' times in the save */
    d->cfg.accept_grow = 0.0f; /* format 43's: no error blocks in the save */
    d->cfg.hold_echo = 0.0f;   /* format 44's: no level or error run in the save */
    d->cfg.hold_decay = 0.0f;  /* format 46's: no level or peak in the save */
    d->cfg.burst_wide = 0;     /* format 45's: d runs on as format 34 loads it */
    struct detector_result rd, re;
    size_t len = detector_save_size(d), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(d, buf, len, &got), 0);
    drop_opin_run(buf, &len, d); /* d's run starts over, as format 34 ran after a load */
    cut_to_format(buf, &len, offsetof(struct detector_config, mean_far), -1, 34);
    assert_int_equal(detector_load(&e, buf, len), 0);
    assert_int_equal(e->opin_run, 0);
    assert_int_equal(e->cfg.burst_wide, 0);
    int opened = 0;
    for (int t = open_at; t < RS_N; t++) {
        cycle_step(d, x, t, &rd);
        cycle_step(e, x, t, &re);
        assert_same_result(&rd, &re, 1);
        opened += re.changed && re.state == DET_ANOMALY;
    }
    print_message("format 34 load at reading %d: %d anomalies opened after it, as saved\n", open_at,
                  opened);
    as_format6(buf, &len, 35);
    detector_t *c = NULL;
    assert_int_equal(detector_load(&c, buf, len), ERR_CORRUPT);
    detector_destroy(d);
    detector_destroy(e);
    free(buf);
    free(x);
}

/* ---- forty-third round: a slow excursion beyond every value the device has shown (mean_far) - */

#define MF_N    3000
#define MF_FROM 2400 /* the excursion starts: MF_RAMP readings down, MF_HOLD held, then back */
#define MF_RAMP 25
#define MF_HOLD 40
#define MF_U    0.3 /* the held level's mean, in widths of the range below its minimum */

/* One sensor that wanders (an AR(1) level, 0.995, innovations 0.05, which persistence predicts
 * best) with a single-reading upward spike (+0.5 to +1) every 40 readings on average, so its
 * error scale is wide, that from MF_FROM goes down over MF_RAMP readings, by about half an
 * error scale a reading, to a level whose mean over the held readings lies MF_U of the range's
 * width below every value shown before (from the first scored reading FD_FROM), holds it
 * MF_HOLD readings and comes back: NAB's ambient_temperature_system_failure in kind (a level
 * 0.1-0.4 widths beyond a long-held range, reached in readings the predictor's error scale
 * calls ordinary). */
static float *make_slow_excursion(uint64_t seed)
{
    float *x = malloc(sizeof(float) * MF_N);
    assert_non_null(x);
    uint64_t s = seed;
    double v = 0.0, lo = 0.0, hi = 0.0, held = 0.0;
    for (int t = 0; t < MF_N; t++) {
        v = 0.995 * v + 0.05 * gauss(&s);
        const int spike = rng_next(&s) % 40 == 0;
        x[t] = (float)(v + (spike ? 0.5 + 0.5 * (double)(rng_next(&s) >> 11) / 0x1p53 : 0.0));
        if (t >= FD_FROM && t < MF_FROM) {
            lo = t == FD_FROM || x[t] < lo ? x[t] : lo;
            hi = t == FD_FROM || x[t] > hi ? x[t] : hi;
        }
        held += t >= MF_FROM + MF_RAMP && t < MF_FROM + MF_RAMP + MF_HOLD ? x[t] / MF_HOLD : 0.0;
    }
    const double drop = held - lo + MF_U * (hi - lo); /* the held readings' mean at MF_U below */
    for (int t = MF_FROM; t < MF_FROM + 2 * MF_RAMP + MF_HOLD; t++) {
        const int k = t - MF_FROM, up = k - MF_RAMP - MF_HOLD;
        const double a = k < MF_RAMP ? (k + 1.0) / MF_RAMP : up < 0 ? 1.0 : -up / (double)MF_RAMP;
        x[t] -= (float)(drop * (up < 0 ? a : 1.0 + a));
    }
    return x;
}

/* mean_far: make_slow_excursion (seeds 1-3) with mean_far 0 (a) and its default (b), range_far
 * off in both (a single reading of the held level may lie 0.5 widths out, which is range_far's
 * business, not this test's) and the linear baseline or persistence serving (model_kind
 * linear: both follow a level, as persistence did in NAB's seed 2; an LSTM that holds its
 * trained level sees the excursion in its error, as in seeds 1 and 3). Before the climb the two
 * agree in every result. In a, no score of the excursion reaches score_level: the error sees
 * the climb as ordinary readings. In b, the first reading whose short mean lies more than the share
 * beyond the range of every value shown before it is an onset at score_level or more, none
 * after it while the mean stays out, and a crossing again soon after (the range takes in the
 * excursion's readings as they leave the short window) is ranked at the lowest onset rank (its
 * quiet is a few readings). The decisions are a's at every reading (only the score moves). A
 * copy loaded from b's save at the onset continues bit for bit (mf_on saved). */
static void test_mean_far(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float *x = make_slow_excursion(seed);
        detector_t *d[2], *e = NULL;
        for (int i = 0; i < 2; i++) {
            struct detector_config cfg;
            detector_config_default(&cfg);
            cfg.range_far = 0.0f;
            cfg.model_kind = DET_MODEL_LINEAR; /* follows the level, as persistence does */
            cfg.mean_far = i == 0 ? 0.0f : cfg.mean_far;
            assert_int_equal(detector_create(&d[i], &cfg, 1), 0);
        }
        assert_true(d[1]->cfg.mean_far > 0.0f); /* the default is on */
        double top_a = 0.0, first = 0.0, later = 0.0;
        int onsets = 0, at = -1;
        for (int t = 0; t < MF_N; t++) {
            struct detector_result r[2], re;
            for (int i = 0; i < 2; i++)
                step(d[i], x, t, 1, NULL, &r[i]);
            if (e != NULL) {
                step(e, x, t, 1, NULL, &re);
                assert_same_result(&r[1], &re, 1);
            }
            assert_int_equal(r[1].state, r[0].state);
            assert_true(t >= MF_FROM || r[1].score == r[0].score);
            if (t < MF_FROM)
                continue;
            top_a = r[0].score > top_a ? r[0].score : top_a;
            if (r[1].score >= 0.5f && r[0].score < 0.5f) {
                onsets++;
                if (at < 0) {
                    at = t;
                    first = r[1].score;
                    e = reloaded(d[1]);
                } else if (r[1].score > later) {
                    later = r[1].score;
                }
            }
        }
        print_message("seed %d: largest score of the excursion %.3f without mean_far; with it "
                      "%d onsets, the first at reading %d (%.3f; climb from %d), the others at "
                      "%.3f at most\n",
                      (int)seed, top_a, onsets, at, first, MF_FROM, later);
        assert_true(top_a < 0.5);
        assert_true(onsets >= 1);
        assert_true(at > MF_FROM && at < MF_FROM + MF_RAMP + MF_HOLD);
        assert_true(later < 0.51); /* a crossing again right after: the lowest onset rank */
        detector_destroy(e);
        detector_destroy(d[1]);
        detector_destroy(d[0]);
        free(x);
    }
}

/* A format-35 save (no mean_far in its config) of make_slow_excursion's detector (seed 1), cut
 * before its climb, loads with mean_far 0 and continues bit for bit as the saved detector run
 * without it, through the excursion the rule reports (test_mean_far): no score reaches 0.5.
 * The same bytes claimed as format 36 are refused (-1 where the field may lie in format 35's
 * tail padding). */
static void test_load_format35(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.range_far = 0.0f; /* test_mean_far's settings */
    cfg.model_kind = DET_MODEL_LINEAR;
    float *x = make_slow_excursion(1);
    double top;
    int opened, onsets = cut_and_continue(&cfg, 1, x, MF_N, MF_FROM - 10,
                                          offsetof(struct detector_config, mean_far), -1, 35, &top,
                                          &opened);
    print_message("format 35 load: %d readings at 0.5 or more after the cut (largest %.3f), as "
                  "saved\n",
                  onsets, top);
    assert_int_equal(onsets, 0);
    free(x);
}

/* A healthy one-sensor device that warms up, 20 over its first readings (time constant 300) on
 * top of a steady climb of 0.002 a reading for the whole series and AR noise, sets new maxima
 * for as long as it runs; its short mean leaves the range of the values before it by (err_short
 * - 1) / 2 readings' climb at most, a small share of a width that grows with it: with mean_far
 * on, every result is mean_far 0's (seeds 1-3). */
static void test_mean_far_warmup(void **unused)
{
    (void)unused;
    enum { N = 3000 };
    for (uint64_t seed = 1; seed <= 3; seed++) {
        float x[N], top = 0.0f;
        uint64_t s = seed;
        double v = 0.0;
        int maxima = 0; /* new maxima from the first scored reading on */
        for (int t = 0; t < N; t++) {
            v = 0.8 * v + 0.1 * gauss(&s);
            x[t] = (float)(20.0 * -expm1(-t / 300.0) + 0.002 * t + v);
            maxima += t > FD_FROM && x[t] > top;
            top = t >= FD_FROM && x[t] > top ? x[t] : top;
        }
        struct detector_config cfg;
        detector_config_default(&cfg);
        detector_t *on, *off;
        assert_int_equal(detector_create(&on, &cfg, 1), 0);
        cfg.mean_far = 0.0f;
        assert_int_equal(detector_create(&off, &cfg, 1), 0);
        struct detector_result r_on, r_off;
        for (int t = 0; t < N; t++) {
            step(on, x, t, 1, NULL, &r_on);
            step(off, x, t, 1, NULL, &r_off);
            assert_same_result(&r_on, &r_off, 1);
        }
        print_message("seed %d: %d new maxima, no short mean far\n", (int)seed, maxima);
        assert_true(maxima >= 50);
        detector_destroy(on);
        detector_destroy(off);
    }
}

/* ---- forty-fifth round: a schedule kept in time, not in readings (rhythm_time) ------------- */

#define RT_DROP_AT  (150 + 5 * RH_PERIOD + 100) /* the first reading the feed drops */
#define RT_DROP_LEN 60                          /* five hours of readings never delivered */
#define RT_STEP_MS  300000                      /* readings 5 minutes apart */

/* The largest score of each detector in r[n] over each day k's onset (the readings from RH_EARLY
 * before spike k to the spike, at[k]; o the reading's index in the full series) into top[i][k]. */
static void rt_note(const struct detector_result *r, int n, int o, const int *at,
                    float top[][RH_SPIKES])
{
    for (int k = 0; k < RH_SPIKES; k++)
        for (int i = 0; o >= at[k] - RH_EARLY && o <= at[k] && i < n; i++)
            if (r[i].score > top[i][k])
                top[i][k] = r[i].score;
}

/* make_routine (seeds 1-3) with RT_DROP_LEN readings after day 5's spike never delivered (a
 * gateway's outage), the others at their own time (RT_STEP_MS apart), through rhythm_time 0 (a)
 * and 1 (b), alike in every decision. In readings the outage shortens the gaps that span it by
 * 60, far beyond 1/32 of a day (9): a finds no schedule through days 6 and 7 (each of their
 * onsets ranks above score_level + 0.005, as in test_onset_rhythm without the rule). In time
 * the gaps are still a day, give or take the jitter: b ranks every day's onset after the outage
 * at score_level. b saved before the outage and loaded goes on bit for bit (fails with the
 * onsets' times not saved: the loaded copy would judge in time on no onsets). Without
 * timestamps, rhythm_time 1 (the default) gives every result of rhythm_time 0, bit for bit. */
static void test_rhythm_time(void **unused)
{
    (void)unused;
    enum { N = RH_N - RT_DROP_LEN };
    struct detector_config cfg;
    detector_config_default(&cfg);
    assert_int_equal(cfg.rhythm_time, 1);
    const float red = cfg.score_level;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        int at[RH_SPIKES], orig[N];
        float *x = make_routine(seed, -1, -1, at), *y = malloc(sizeof(float) * N);
        assert_non_null(y);
        for (int t = 0, i = 0; t < RH_N; t++)
            if (t < RT_DROP_AT || t >= RT_DROP_AT + RT_DROP_LEN) {
                orig[i] = t;
                y[i++] = x[t];
            }
        detector_t *d[2], *u[2], *c = NULL;
        for (int i = 0; i < 2; i++) {
            cfg.rhythm_time = i;
            assert_int_equal(detector_create(&d[i], &cfg, 1), 0);
            assert_int_equal(detector_create(&u[i], &cfg, 1), 0);
        }
        float top[2][RH_SPIKES] = {{0}};
        for (int i = 0; i < N; i++) {
            struct detector_result r[2], q[2], rc;
            if (orig[i] == at[4] + 20)
                c = reloaded(d[1]);
            const int64_t ts = (int64_t)orig[i] * RT_STEP_MS;
            for (int k = 0; k < 2; k++) {
                step_ts(d[k], ts, y, i, 1, NULL, &r[k]);
                step_ts(u[k], DETECTOR_NO_TIME, y, i, 1, NULL, &q[k]);
            }
            assert_int_equal(r[1].state, r[0].state);
            assert_true(r[1].likelihood == r[0].likelihood);
            assert_same_result(&q[0], &q[1], 1);
            if (c) {
                step_ts(c, ts, y, i, 1, NULL, &rc);
                assert_same_result(&r[1], &rc, 1);
            }
            rt_note(r, 2, orig[i], at, top);
        }
        print_message("seed %d: days 5-11 in readings %.3f %.3f %.3f %.3f %.3f %.3f %.3f, in time "
                      "%.3f %.3f %.3f %.3f %.3f %.3f %.3f\n",
                      (int)seed, top[0][5], top[0][6], top[0][7], top[0][8], top[0][9], top[0][10],
                      top[0][11], top[1][5], top[1][6], top[1][7], top[1][8], top[1][9], top[1][10],
                      top[1][11]);
        assert_true(top[0][6] >= red + 0.005f && top[0][7] >= red + 0.005f);
        for (int k = 6; k < RH_SPIKES; k++)
            assert_true(top[1][k] == red);
        for (int i = 0; i < 2; i++) {
            detector_destroy(d[i]);
            detector_destroy(u[i]);
        }
        detector_destroy(c);
        free(x);
        free(y);
    }
}

/* A format-36 save (no rhythm_time in its config, no onsets' times) of make_routine's detector
 * (seed 1) with rhythm_time set (the default), cut after its fifth spike, loads with rhythm_time
 * 0 (gaps in readings, as it ran: the kept onsets keep their counts) and continues bit for bit
 * as the saved detector run without it; the same bytes claimed as format 37 are refused (-1
 * where the field may lie in format 36's tail padding). */
static void test_load_format36(void **unused)
{
    (void)unused;
    routine_load_older(offsetof(struct detector_config, rhythm_time), 36);
}

/* ---- forty-seventh round: an onset marked on a reading back in the noise (onset_now) ------- */

enum { FB_N = 3000, FB_RUN = 9 };
static const int fb_at[] = {700, 1130, 1610, 2240, 2600}; /* irregular: no schedule */

/* FB_N readings of white noise from the generator s (caller owns; free with free). */
static float *fb_noise(uint64_t *s)
{
    float *x = malloc(sizeof(float) * FB_N);
    assert_non_null(x);
    for (int t = 0; t < FB_N; t++)
        x[t] = (float)gauss(s);
    return x;
}

/* One channel of white noise (the predictors learn to expect 0, the error scale is about 1)
 * with fading bursts at fb_at: a reading 6 deviations out, then FB_RUN readings of +-1.5
 * deviations. Alone each of those is ordinary (its raw score as a short mean stays below
 * score_level), but they carry the short mean up after the spike, so it crosses the level on
 * one of them: the onset is marked on a reading back in the noise, a burst that is fading. */
static float *make_fading_bursts(uint64_t seed)
{
    uint64_t s = seed;
    float *x = fb_noise(&s);
    for (size_t i = 0; i < sizeof fb_at / sizeof fb_at[0]; i++) {
        x[fb_at[i]] = rng_next(&s) & 1 ? 6.0f : -6.0f;
        for (int k = 1; k <= FB_RUN; k++)
            x[fb_at[i] + k] = k % 2 ? 1.5f : -1.5f;
    }
    return x;
}

/* Side by side, for a rule of the onset rank that moves only the score: detector a (cfg_a)
 * and b (cfg_b) fed x[FB_N] (one channel). Every decision is a's (state, flag, decision
 * likelihood, raw score), and so is every score below score_level; at an onset b ranks at most
 * as a does and still at score_level or more. raws[t] gets a's raw scores; at each onset, check
 * gets the reading, both results, raws and the largest raw score of the short window (peak). */
struct rank_check {
    int seed, lowered, kept;
    int err_short; /* the detectors' (set by ranks_side_by_side) */
    float red;     /* their score_level (likewise) */
    void (*at_onset)(struct rank_check *c, int t, const struct detector_result r[2],
                     const float *raws, float peak);
};

static void ranks_side_by_side(const struct detector_config *cfg_a,
                               const struct detector_config *cfg_b, const float *x,
                               struct rank_check *c)
{
    const float red = c->red = cfg_a->score_level;
    const int S = c->err_short = cfg_a->err_short;
    float *raws = malloc(sizeof(float) * FB_N);
    assert_non_null(raws);
    detector_t *d[2];
    assert_int_equal(detector_create(&d[0], cfg_a, 1), 0);
    assert_int_equal(detector_create(&d[1], cfg_b, 1), 0);
    for (int t = 0; t < FB_N; t++) {
        struct detector_result r[2];
        for (int i = 0; i < 2; i++)
            step(d[i], x, t, 1, NULL, &r[i]);
        raws[t] = r[0].raw;
        float peak = 0.0f;
        for (int k = t >= S - 1 ? t - S + 1 : 0; k <= t; k++)
            peak = raws[k] > peak ? raws[k] : peak;
        assert_int_equal(r[1].state, r[0].state);
        assert_int_equal(r[1].is_anomaly, r[0].is_anomaly);
        assert_true(r[1].likelihood == r[0].likelihood);
        assert_true(r[1].raw == r[0].raw);
        if (r[0].score < red) {
            assert_true(r[1].score == r[0].score);
            continue;
        }
        assert_true(r[1].score <= r[0].score && r[1].score >= red);
        c->at_onset(c, t, r, raws, peak);
    }
    detector_destroy(d[1]);
    detector_destroy(d[0]);
    free(raws);
}

/* onset_now: an onset b lowers is marked on a reading below its short window's largest raw
 * score (the excursion peaked earlier); one on the window's largest reading keeps a's rank. */
static void now_at_onset(struct rank_check *c, int t, const struct detector_result r[2],
                         const float *raws, float peak)
{
    (void)raws;
    if (r[1].score < r[0].score) {
        print_message("seed %d reading %d: onset %.4f -> %.4f (raw %.2f, window's largest %.2f)\n",
                      c->seed, t, r[0].score, r[1].score, r[0].raw, peak);
        assert_true(r[0].raw < peak);
        c->lowered++;
    }
    if (r[0].raw == peak) {
        assert_true(r[1].score == r[0].score);
        c->kept++;
    }
}

/* A rank rule (the int config field at offset field, 1 by default) through 0 (a) and the
 * default (b) side by side on make's series for seeds 1-3; c collects what at_onset counts. */
static void rank_rule_runs(size_t field, float *(*make)(uint64_t), struct rank_check *c)
{
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(*(const int *)((const char *)&def + field), 1);
    for (c->seed = 1; c->seed <= 3; c->seed++) {
        float *x = make((uint64_t)c->seed);
        struct detector_config off = def;
        *(int *)((char *)&off + field) = 0;
        ranks_side_by_side(&off, &def, x, c);
        free(x);
    }
}

/* onset_now: make_fading_bursts (seeds 1-3) through onset_now 0 (a) and the default (b, 1),
 * side by side (ranks_side_by_side). b ranks some onset lower (the test fails with the rule
 * off), and each one it lowers is marked on a reading below the short window's largest raw
 * score; an onset on the window's largest reading is ranked as a ranks it. */
static void test_onset_now(void **unused)
{
    (void)unused;
    struct rank_check c = {.at_onset = now_at_onset};
    rank_rule_runs(offsetof(struct detector_config, onset_now), make_fading_bursts, &c);
    print_message("%d onsets lowered, %d onsets on their window's largest reading kept\n",
                  c.lowered, c.kept);
    assert_true(c.lowered >= 1);
}

/* The rank rules' load tests: a format-fmt save of x's detector (seed 1, the defaults), cut
 * (cut_and_continue) before the field at offset field, at reading at, continues bit for bit as
 * the saved detector run without the field; some reading after the cut is at 0.5 or more. */
static void load_rank_format(float *x, int at, size_t field, int fmt)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    double top;
    int opened, onsets = cut_and_continue(&cfg, 1, x, FB_N, at, field, -1, fmt, &top, &opened);
    print_message("format %d load: %d readings at 0.5 or more after the cut (largest %.3f), as "
                  "saved\n",
                  fmt, onsets, top);
    assert_true(onsets >= 1);
    free(x);
}

/* A format-37 save (no onset_now in its config) of make_fading_bursts' detector (seed 1) with
 * the defaults, cut between its second and third bursts, loads with onset_now 0 and continues
 * bit for bit as the saved detector run without it, through the bursts test_onset_now sees
 * lowered; the same bytes claimed as format 38 are refused (-1 where the field may lie in
 * format 37's tail padding). */
static void test_load_format37(void **unused)
{
    (void)unused;
    load_rank_format(make_fading_bursts(1), fb_at[2] - 200,
                     offsetof(struct detector_config, onset_now), 37);
}

/* ---- forty-eighth round: an onset that ties the record (onset_tie) ------------------------- */

/* One channel of white noise with equal spikes at fb_at (irregular: no schedule) far past the
 * raw score's cap (z^2 1e12), so every spike's raw score is the same float: each spike after the
 * first that the record since the training holds ties it. */
static float *make_equal_spikes(uint64_t seed)
{
    uint64_t s = seed;
    float *x = fb_noise(&s);
    for (size_t i = 0; i < sizeof fb_at / sizeof fb_at[0]; i++)
        x[fb_at[i]] = 1e9f;
    return x;
}

/* onset_tie: an onset b ranks at score_level below a's rank has a short window whose largest
 * raw score is, to the float, the raw score of a reading before that window, and no larger than
 * every one before it: the same error again (the record b compares with is the one since the
 * latest training, which the test does not see). */
static void tie_at_onset(struct rank_check *c, int t, const struct detector_result r[2],
                         const float *raws, float peak)
{
    if (!(r[1].score < r[0].score))
        return;
    const int S = c->err_short;
    float before = 0.0f;
    int seen = 0;
    for (int k = 0; k + S <= t; k++) {
        before = raws[k] > before ? raws[k] : before;
        seen |= raws[k] == peak;
    }
    print_message("seed %d reading %d: onset %.4f -> %.4f (window's largest raw %.3f, largest "
                  "before it %.3f)\n",
                  c->seed, t, r[0].score, r[1].score, peak, before);
    assert_true(r[1].score == c->red);
    assert_true(peak <= before && seen);
    c->lowered++;
}

/* onset_tie: make_equal_spikes (seeds 1-3) through onset_tie 0 (a) and the default (b, 1), side
 * by side (ranks_side_by_side). b ranks some onset at score_level that a ranks above it (the
 * test fails with the rule off), each a tie (tie_at_onset). */
static void test_onset_tie(void **unused)
{
    (void)unused;
    struct rank_check c = {.at_onset = tie_at_onset};
    rank_rule_runs(offsetof(struct detector_config, onset_tie), make_equal_spikes, &c);
    print_message("%d onsets ranked at score_level\n", c.lowered);
    assert_true(c.lowered >= 1);
}

/* A format-38 save (no onset_tie in its config) of make_equal_spikes' detector (seed 1) with
 * the defaults, cut between its second and third spikes, loads with onset_tie 0 and continues
 * bit for bit as the saved detector run without it, through the spikes test_onset_tie sees
 * tie; the same bytes claimed as format 39 are refused (-1 where the field may lie in format
 * 38's tail padding). */
static void test_load_format38(void **unused)
{
    (void)unused;
    load_rank_format(make_equal_spikes(1), fb_at[2] - 200,
                     offsetof(struct detector_config, onset_tie), 38);
}

/* A format-39 save (no avg_epochs in its config) of make_equal_spikes' detector (seed 1) with
 * the defaults, cut between its second and third spikes, loads with avg_epochs 0 and continues
 * bit for bit as the saved detector run without it, through the trainings after the cut; the
 * same bytes claimed as format 40 are refused (-1 where the field may lie in format 39's tail
 * padding: a NaN there, if the loader kept it, fails the config's check). */
static void test_load_format39(void **unused)
{
    (void)unused;
    load_rank_format(make_equal_spikes(1), fb_at[2] - 200,
                     offsetof(struct detector_config, avg_epochs), 39);
    /* After the cut above no LSTM serves (the trainings install persistence), so that run is
     * the same whatever avg_epochs the load gives: the loaded config itself. The default
     * (avg_epochs 1) survives a format-40 save and load; cut to format 39 it loads as 0, and
     * stays 0 through what the daemon applies to a detector it loads at start-up
     * (detector_apply_settings with the running defaults, daemon/pipeline_store.c). */
    struct detector_config cfg;
    detector_config_default(&cfg);
    detector_t *d = new_detector(1), *b;
    assert_true(d->cfg.avg_epochs == 1.0f);
    d->cfg.accept_grow = 0.0f; /* format 43's: no error blocks in the save */
    d->cfg.hold_echo = 0.0f;   /* format 44's: no level or error run in the save */
    d->cfg.hold_decay = 0.0f;  /* format 46's: no level or peak in the save */
    size_t len = detector_save_size(d), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(d, buf, len, &got), 0);
    assert_int_equal(detector_load(&b, buf, len), 0);
    assert_true(b->cfg.avg_epochs == 1.0f);
    detector_destroy(b);
    cut_to_format(buf, &len, offsetof(struct detector_config, avg_epochs), -1, 39);
    assert_int_equal(detector_load(&b, buf, len), 0);
    assert_true(b->cfg.avg_epochs == 0.0f);
    assert_int_equal(detector_apply_settings(b, &cfg), 0);
    assert_true(b->cfg.avg_epochs == 0.0f);
    detector_destroy(b);
    detector_destroy(d);
    free(buf);
}

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
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
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
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    for (int t = 0; t < n; t++)
        assert_int_equal(detector_step(d, x + n + t, NULL, &res), 0);
    struct detector_train_info one, pooled;
    detector_job_t *j;
    assert_int_equal(detector_job_create(&j, d), 0);
    assert_int_equal(detector_job_set_data(j, x + n, n), 0);
    assert_int_equal(detector_job_run(j), 0);
    assert_int_equal(detector_job_apply(d, j, &one), 0);
    detector_job_destroy(j);
    assert_int_equal(one.rows, 667);
    assert_true(isnan(one.val_mse_lstm));
    assert_int_equal(one.epochs, 0);
    const int lens[2] = {n, n};
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
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
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

/* A format-40 save (no lstm_min_rows in its config) of make_equal_spikes' detector (seed 1)
 * with the defaults, cut between its second and third spikes, loads with lstm_min_rows 0 and
 * continues bit for bit as that detector; the same bytes claimed as format 41 are refused (-7,
 * out of the field's range, where it may lie in format 40's tail padding: -1 is a valid
 * setting). The loaded config keeps 0 until the running settings are applied, and a set value
 * survives a format-41 save and load. */
static void test_load_format40(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    float *x = make_equal_spikes(1);
    double top;
    int opened, onsets = cut_and_continue(&def, 1, x, FB_N, fb_at[2] - 200,
                                          offsetof(struct detector_config, lstm_min_rows), -7, 40,
                                          &top, &opened);
    assert_true(onsets >= 1);
    free(x);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.lstm_min_rows = 600;
    cfg.accept_grow = 0.0f; /* format 43's: no error blocks in the save */
    cfg.hold_echo = 0.0f;   /* format 44's: no level or error run in the save */
    cfg.hold_decay = 0.0f;  /* format 46's: no level or peak in the save */
    detector_t *d, *b;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    size_t len = detector_save_size(d), got;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(detector_save(d, buf, len, &got), 0);
    assert_int_equal(detector_load(&b, buf, len), 0);
    assert_int_equal(b->cfg.lstm_min_rows, 600);
    detector_destroy(b);
    cut_to_format(buf, &len, offsetof(struct detector_config, lstm_min_rows), -1, 40);
    assert_int_equal(detector_load(&b, buf, len), 0);
    assert_int_equal(b->cfg.lstm_min_rows, 0);
    /* As vigild restores it: the running settings applied, model.lstm_min_rows among them
     * (the default -1; a configured 0 or N alike), so a format-40 detector follows vigild.conf
     * from then on; out of range: refused, nothing changed. Saved again in format 41 it keeps
     * the value it took. */
    struct detector_config run = def;
    run.lstm_min_rows = -2;
    assert_int_equal(detector_apply_settings(b, &run), ERR_INVAL);
    assert_int_equal(b->cfg.lstm_min_rows, 0);
    run.lstm_min_rows = 900;
    assert_int_equal(detector_apply_settings(b, &run), 0);
    assert_int_equal(b->cfg.lstm_min_rows, 900);
    assert_int_equal(detector_apply_settings(b, &def), 0);
    assert_int_equal(b->cfg.lstm_min_rows, -1);
    size_t len2 = detector_save_size(b), got2;
    unsigned char *buf2 = malloc(len2);
    assert_non_null(buf2);
    assert_int_equal(detector_save(b, buf2, len2, &got2), 0);
    detector_destroy(b);
    assert_int_equal(detector_load(&b, buf2, got2), 0);
    assert_int_equal(b->cfg.lstm_min_rows, -1);
    detector_destroy(b);
    free(buf2);
    detector_destroy(d);
    free(buf);
}

/* ---- sixtieth round: a drift is not a settled level (offset_trend) ------------------------- */

/* make_new_level's device (AR(1) level 0.5, innovations 0.1) whose level steps by +3 (30
 * innovation deviations) at OR_ONSET and then drifts on by `rate` a reading for `len`
 * readings (0: to the end), where it stays. */
static float *make_drift(uint64_t seed, double rate, int len)
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
static int cfg_drift_run(const struct detector_config *cfg, float *x, int save_at, int *first_end,
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

static int drift_run(float *x, float trend, int save_at, int *first_end, enum detector_end *why)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.offset_trend = trend;
    cfg.accept_grow = 0.0f; /* the drift accepted at accept_after, as the sixtieth round ran */
    return cfg_drift_run(&cfg, x, save_at, first_end, why);
}

/* offset_trend 3 (the default; negative or NaN refused): a level that steps and then keeps
 * drifting away (0.01 a reading, about 0.09 of the level's deviations, for the 600 readings
 * left) is no longer let go as settled: with offset_trend 0 (main's behaviour) the episode
 * ends as released on about its 100th reading and the training it asks for takes the drift
 * in (fewer than 150 readings flagged of 600); with 3 it is held until it is accepted at
 * accept_after (500 readings). The same step that stays (rate 0) is released as before, on
 * its 100th-110th reading, and a drift that stops after 200 readings is released once it has
 * stopped. Seeds 1-3; a save inside the held episode (1,650) continues bit for bit. With
 * channel_drifts forced to 0 the held drift is released at +99 (the test fails). */
static void test_offset_trend(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    assert_true(cfg.offset_trend == 3.0f);
    detector_t *bad;
    cfg.offset_trend = -1.0f;
    assert_int_equal(detector_create(&bad, &cfg, 1), ERR_INVAL);
    cfg.offset_trend = NAN;
    assert_int_equal(detector_create(&bad, &cfg, 1), ERR_INVAL);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        int e0, e3, es, eq;
        enum detector_end w0, w3, ws, wq;
        const int f0 = drift_run(make_drift(seed, 0.01, 0), 0.0f, 0, &e0, &w0);
        const int f3 = drift_run(make_drift(seed, 0.01, 0), 3.0f, seed == 1 ? 1650 : 0, &e3, &w3);
        const int fs = drift_run(make_drift(seed, 0.0, 0), 3.0f, 0, &es, &ws);
        const int fq = drift_run(make_drift(seed, 0.01, 200), 3.0f, 0, &eq, &wq);
        print_message("seed %d: drift, offset_trend 0: %d of 600 flagged, ended at +%d (%d); 3: "
                      "%d flagged, ended at +%d (%d); step: %d flagged, ended at +%d (%d); drift "
                      "stopping at +200: %d flagged, ended at +%d (%d)\n",
                      (int)seed, f0, e0, (int)w0, f3, e3, (int)w3, fs, es, (int)ws, fq, eq,
                      (int)wq);
        assert_int_equal(w0, DET_END_RELEASED);
        assert_true(e0 >= 99 && e0 <= 110 && f0 < 150);
        assert_int_equal(w3, DET_END_ACCEPTED);
        assert_true(e3 >= 500 && f3 >= 500);
        assert_int_equal(ws, DET_END_RELEASED);
        assert_true(es >= 99 && es <= 110);
        assert_int_equal(wq, DET_END_RELEASED);
        assert_true(eq >= 200 && eq < 400);
    }
}

/* accept_grow's error blocks in a save (format 43): two counts and four sums, right before
 * prev_contrib. */
#define GROW_STATE (2 * sizeof(int) + 4 * sizeof(double))
/* hold_echo's level and error run in a save (format 44): three floats and two counts, right
 * before prev_contrib. */
#define ECHO_STATE (3 * sizeof(float) + 2 * sizeof(int))
/* hold_decay's peak and the readings left unlearnt (format 47; format 46 had the readings since
 * the peak between them): a float and a count, right before prev_contrib. */
#define DECAY_STATE (sizeof(float) + sizeof(int))

/* A fresh detector with cfg saved and loaded (*kept: its config), then its save cut back to
 * format fmt (cut_to_format at field, junk in the padding; before format 43 without
 * accept_grow's blocks) and loaded (*cut: its config). */
static void save_kept_and_cut(const struct detector_config *cfg, size_t field, int junk,
                              uint32_t fmt, struct detector_config *kept,
                              struct detector_config *cut)
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
static void drift_cut_and_kept(const struct detector_config *cfg, int cut_at, size_t field,
                               uint32_t fmt, struct detector_config *kept,
                               struct detector_config *cut)
{
    float *x = make_drift(1, 0.01, 0);
    double top;
    int opened, junk;
    const float three = 3.0f;
    memcpy(&junk, &three, sizeof junk);
    cut_and_continue(cfg, 1, x, 2000, cut_at, field, junk, fmt, &top, &opened);
    free(x);
    save_kept_and_cut(cfg, field, junk, fmt, kept, cut);
}

/* A format-41 save (no offset_trend in its config) of make_drift's detector (seed 1) cut inside
 * the drift's episode loads with offset_trend 0 and continues bit for bit as that detector (which
 * releases the drift, as format 41 ran); junk (3.0f's bits) where the field would lie in format
 * 41's padding is not read. */
static void test_load_format41(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.offset_trend = 3.0f;
    /* A detector saved with offset_trend 3 keeps it in the current format; cut back to 41, 0. */
    struct detector_config kept, cut;
    drift_cut_and_kept(&cfg, OR_ONSET + 50, offsetof(struct detector_config, offset_trend), 41,
                       &kept, &cut);
    assert_true(kept.offset_trend == 3.0f);
    assert_true(cut.offset_trend == 0.0f);
}

/* session 21's review's young case (docs/reliability.md): one channel of N(0, 1) noise whose
 * level steps by 12 on the first reading after the warm-up (300 readings, `at`) and drifts on
 * by 0.05 a reading. */
static float *make_young_drift(uint64_t seed, int at)
{
    float *x = malloc(sizeof(float) * 2000);
    assert_non_null(x);
    for (int t = 0; t < 2000; t++)
        x[t] = (float)(gauss(&seed) + (t >= at ? 12.0 + 0.05 * (t - at) : 0.0));
    return x;
}

/* record_young (the default 1): make_young_drift's fault, on the first reading after the
 * warm-up's training, is caught where its decision likelihood reaches alarm_level: over data
 * seeds 1-8 it is flagged within FAULT_LATENCY readings and through nearly all of its first
 * 300 readings in 5 (1, 3, 5, 6, 7; in 2, 4 and 8 the young Student t keeps the likelihood at
 * 0.42-0.45, below the alarm: not caught either way), against 1 (seed 6) with record_young 0,
 * where record_open_one's 0.5 applies while the record since the training is empty and the
 * fault's own short means then widen the young long window. A flagged fault never flags fewer
 * readings with the rule. Fails with the record_young condition removed from detector__score. */
static void test_record_young(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_int_equal(def.record_young, 1);
    int caught[2] = {0, 0};
    for (uint64_t seed = 1; seed <= 8; seed++) {
        int first[2] = {-1, -1}, flagged[2] = {0, 0};
        for (int y = 0; y <= 1; y++) {
            struct detector_config cfg = def;
            cfg.record_young = y;
            cfg.warmup = 300; /* the review's daemon settings */
            cfg.retrain_every = 0;
            cfg.n_hidden = 8;
            detector_t *d;
            assert_int_equal(detector_create(&d, &cfg, 1), 0);
            float *x = make_young_drift(seed, 300);
            struct detector_result res;
            for (int t = 0; t < 600; t++) {
                step(d, x, t, 1, NULL, &res);
                if (t < 300)
                    continue;
                if (res.is_anomaly && first[y] < 0)
                    first[y] = t - 300;
                flagged[y] += res.is_anomaly;
            }
            detector_destroy(d);
            free(x);
            caught[y] += first[y] >= 0 && first[y] <= FAULT_LATENCY && flagged[y] >= 280;
        }
        print_message("seed %d: record_young 0: %d of 300 flagged (first +%d); 1: %d (first +%d)\n",
                      (int)seed, flagged[0], first[0], flagged[1], first[1]);
        assert_true(flagged[1] >= flagged[0]);
    }
    assert_true(caught[1] >= 5);
    assert_true(caught[0] <= 1);
}

/* ---- sixty-second round: a fault that keeps growing is not accepted (accept_grow) --------- */

/* make_drift's device through cfg_drift_run with the defaults, accept_after 200 (blocks of 100
 * readings, so the 600 readings after OR_ONSET hold five checks), accept_grow `grow` and
 * offset_release `rel` (0: the error holds a settled level to accept_after). */
static int grow_run(uint64_t seed, double rate, int len, float grow, int rel, int save_at, int *end,
                    enum detector_end *why)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.accept_after = 200;
    cfg.accept_grow = grow;
    cfg.offset_release = rel;
    return cfg_drift_run(&cfg, make_drift(seed, rate, len), save_at, end, why);
}

/* accept_grow (negative, NaN or above 1,000 refused): make_drift's level that steps by 30
 * innovation deviations and drifts on by 0.01 a reading to the end is held by offset_trend
 * and accepted at accept_after (200 here) with accept_grow 0, while it still grows; with 3
 * its error grows from block to block, so it is never accepted and stays flagged to the end
 * (600 readings). The same step that stays, held by its error (offset_release 0), is
 * accepted at accept_after either way; a drift that stops after 250 readings (offset_release
 * 0) is accepted at accept_after with 0, with 3 once a block after the stop (300-400) is
 * compared with the next: at +500. Seeds 1-3; a save inside the held drift between two checks
 * (+350) continues bit for bit. With grow_note's error_grows forced to 0 the drift is accepted
 * at +200 (the test fails). */
static void test_accept_grow(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    assert_true(cfg.accept_grow == 3.0f);
    detector_t *bad;
    const float refused[] = {-1.0f, NAN, 1001.0f};
    for (int i = 0; i < 3; i++) {
        cfg.accept_grow = refused[i];
        assert_int_equal(detector_create(&bad, &cfg, 1), ERR_INVAL);
    }
    for (uint64_t seed = 1; seed <= 3; seed++) {
        int e0, e3, s0, s3, q0, q3;
        enum detector_end w0, w3, v0, v3, u0, u3;
        const int f0 = grow_run(seed, 0.01, 0, 0.0f, 100, 0, &e0, &w0);
        const int f3 = grow_run(seed, 0.01, 0, 3.0f, 100, seed == 1 ? OR_ONSET + 350 : 0, &e3, &w3);
        const int g0 = grow_run(seed, 0.0, 0, 0.0f, 0, 0, &s0, &v0);
        const int g3 = grow_run(seed, 0.0, 0, 3.0f, 0, 0, &s3, &v3);
        const int h0 = grow_run(seed, 0.01, 250, 0.0f, 0, 0, &q0, &u0);
        const int h3 = grow_run(seed, 0.01, 250, 3.0f, 0, 0, &q3, &u3);
        print_message("seed %d: drift: accept_grow 0: %d of 600 flagged, ended at +%d (%d); 3: %d, "
                      "+%d (%d); step: 0: %d, +%d (%d); 3: %d, +%d (%d); drift stopping at +250: "
                      "0: %d, +%d (%d); 3: %d, +%d (%d)\n",
                      (int)seed, f0, e0, (int)w0, f3, e3, (int)w3, g0, s0, (int)v0, g3, s3, (int)v3,
                      h0, q0, (int)u0, h3, q3, (int)u3);
        assert_int_equal(w0, DET_END_ACCEPTED);
        assert_true(e0 >= 200 && e0 < 210 && f0 < 230);
        assert_int_equal(w3, DET_END_NONE);
        assert_true(f3 >= 590);
        assert_int_equal(v0, DET_END_ACCEPTED);
        assert_true(s0 >= 200 && s0 < 210);
        assert_int_equal(v3, DET_END_ACCEPTED);
        assert_true(s3 >= 200 && s3 < 210);
        assert_int_equal(u0, DET_END_ACCEPTED);
        assert_true(q0 >= 200 && q0 < 210);
        assert_int_equal(u3, DET_END_ACCEPTED);
        assert_true(q3 >= 300 && q3 < 510 && h3 >= 300);
    }
}

/* An operator's acceptance (detector_accept, the daemon's accept route) ends a growing fault
 * that accept_grow holds: make_drift's drift (seed 1, accept_after 200, accept_grow 3),
 * accepted at +300, ends there and asks for a training. */
static void test_accept_grow_operator(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.accept_after = 200;
    cfg.accept_grow = 3.0f;
    float *x = make_drift(1, 0.01, 0);
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    for (int t = 0; t < OR_ONSET + 300; t++)
        step(d, x, t, 1, NULL, &res);
    assert_int_equal(res.state, DET_ANOMALY);
    assert_int_equal(detector_accept(d), 0);
    assert_int_equal(detector_get_state(d), DET_NORMAL);
    assert_true(d->due_at <= d->n_seen + 1);
    detector_destroy(d);
    free(x);
}

/* The training schedule while accept_grow holds a fault: make_drift's drift (seed 1,
 * accept_after 200, accept_grow 3) with trainings due inside its held episode, by count
 * (retrain_every 500: due at +300) or by the readings' time (retrain_seconds 500), asks for
 * none while it is held, so the drift stays flagged to the end (600 readings) and no training
 * learns it; the first reading after the episode ends (here by detector_end_episode, +450)
 * asks for the training put off. Without step_end's hold, the training at +300 learns the
 * drift and the episode ends there (the test fails: fewer than 320 flagged). With
 * accept_grow 0 the schedule is as before (a training inside the episode, which it ends). */
static void test_accept_grow_schedule(void **unused)
{
    (void)unused;
    for (int by_time = 0; by_time <= 1; by_time++) {
        for (int grow = 0; grow <= 1; grow++) {
            struct detector_config cfg;
            detector_config_default(&cfg);
            cfg.accept_after = 200;
            cfg.accept_grow = grow ? 3.0f : 0.0f;
            cfg.retrain_every = by_time ? 0 : 500;
            cfg.retrain_seconds = by_time ? 500 : 0;
            float *x = make_drift(1, 0.01, 0);
            detector_t *d;
            assert_int_equal(detector_create(&d, &cfg, 1), 0);
            struct detector_result res;
            int flagged = 0, asked = 0, ended = -1;
            for (int t = 0; t < 2000; t++) {
                if (grow && t == OR_ONSET + 450) {
                    assert_int_equal(detector_end_episode(d), 0);
                    step(d, x, t, 1, NULL, &res);
                    assert_int_equal(res.want_train, 1); /* the training put off */
                    break;
                }
                step(d, x, t, 1, NULL, &res);
                if (t < OR_ONSET)
                    continue;
                flagged += res.is_anomaly;
                asked += res.want_train;
                if (ended < 0 && res.ended_by != DET_END_NONE)
                    ended = t - OR_ONSET;
            }
            print_message("%s, accept_grow %d: %d flagged, %d trainings asked, ended at +%d\n",
                          by_time ? "retrain_seconds" : "retrain_every", grow ? 3 : 0, flagged,
                          asked, ended);
            if (grow) {
                assert_int_equal(asked, 0);
                assert_int_equal(ended, -1);
                assert_true(flagged >= 440);
            } else {
                assert_true(asked >= 1);
            }
            detector_destroy(d);
            free(x);
        }
    }
}

/* A format-42 save (no accept_grow in its config) of make_drift's detector (seed 1, accept_after
 * 200, accept_grow 3) cut inside the drift's held episode loads with accept_grow 0 and continues
 * bit for bit as that detector (which accepts the drift at accept_after, as format 42 ran);
 * junk (3.0f's bits) where the field would lie in format 42's padding is not read. A detector
 * saved with accept_grow 3 keeps it; cut back to format 42, 0. */
static void test_load_format42(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.accept_after = 200;
    cfg.accept_grow = 3.0f;
    struct detector_config kept, cut;
    drift_cut_and_kept(&cfg, OR_ONSET + 150, offsetof(struct detector_config, accept_grow), 42,
                       &kept, &cut);
    assert_true(kept.accept_grow == 3.0f);
    assert_true(cut.accept_grow == 0.0f);
}

/* ---- sixty-fourth round: an episode ends when its values and its error's pattern are back --- */

/* make_hold_case (kind 0 the burst, 1 the lasting noisy fault) or another one-sensor case of
 * HR_N readings, run as hold_case_run with hold_echo `echo` (the rest the defaults). */
static int echo_case_run(const float *x, float echo, int save_at, int *opened,
                         enum detector_end *why)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.hold_echo = echo;
    return hold_case_cfg(&cfg, x, save_at, opened, why);
}

/* hold_echo 2: on one channel, make_hold_case's burst (seeds 1-12) is one episode, ended
 * `cleared`, never later than with hold_echo 0, and sooner in at least 3 seeds (measured: 2,
 * 10 and 12, +2 / +4 / +2 after the values' return against +4 / +8 / +3): without the rule
 * the last assertion fails. In the others the model's error after the return changes sign
 * (this AR(1) model carries little of the burst), so it ends as before. A save inside seed
 * 10's burst continues bit for bit (the frozen level and the error's run in it). */
static void test_hold_echo_burst(void **unused)
{
    (void)unused;
    struct detector_config def;
    detector_config_default(&def);
    assert_true(def.hold_echo == 2.0f);
    const int back = HR_ONSET + 6;
    int sooner = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        float *x = make_hold_case(seed, 0);
        int o1, o0;
        enum detector_end w1, w0;
        struct detector_config c1 = def, c0 = def;
        c1.hold_decay = c0.hold_decay = 0.0f; /* hold_echo alone (the decay's rule: below) */
        c0.hold_echo = 0.0f;
        int e1 = hold_case_cfg(&c1, x, seed == 10 ? HR_ONSET + 3 : 0, &o1, &w1);
        int e0 = hold_case_cfg(&c0, x, 0, &o0, &w0);
        int od;
        enum detector_end wd;
        int ed = hold_case_cfg(&def, x, 0, &od, &wd);
        print_message("seed %d: burst ends %+d after the return (%d opened); hold_echo 0: %+d "
                      "(%d opened); defaults (hold_decay 0.5): %+d (%d opened, %d)\n",
                      (int)seed, e1 - back, o1, e0 - back, o0, ed - back, od, (int)wd);
        free(x);
        assert_int_equal(o1, 1);
        assert_int_equal(w1, DET_END_CLEARED);
        assert_true(e1 >= back && e1 <= e0);
        assert_int_equal(od, 1); /* the defaults: as in test_hold_recent_burst */
        assert_int_equal(wd, DET_END_CLEARED);
        assert_true(ed >= back - 1 && ed <= e1);
        sooner += e1 < e0;
    }
    assert_true(sooner >= 3);
}

/* make_hunting's control loop hunting inside the old range (seeds 1-16) with hold_echo 2:
 * flagged on exactly as many readings in each seed as with 0 (measured: 11-510 of 1,000,
 * 4,049 in all), at least 10 in each. The values are back inside the band, but the error
 * swings from one side to the other, which (b) asks not to: with (a) alone (a throwaway
 * build that skipped the sign test) the same faults were flagged on 874 readings in all, 1-7 in
 * 9 of the 16 seeds, in up to 11 episodes (the thirty-eighth round's failure). */
static void test_hold_echo_pattern_fault(void **unused)
{
    (void)unused;
    int total = 0;
    for (uint64_t seed = 1; seed <= 16; seed++) {
        float *x = make_hunting(seed);
        int flagged[2] = {0, 0};
        for (int on = 0; on <= 1; on++) {
            struct detector_config cfg;
            detector_config_default(&cfg);
            cfg.hold_echo = on ? 2.0f : 0.0f;
            detector_t *d;
            assert_int_equal(detector_create(&d, &cfg, 1), 0);
            struct detector_result res;
            for (int t = 0; t < PF_N; t++) {
                step(d, x, t, 1, NULL, &res);
                flagged[on] += t >= PF_ONSET && res.state == DET_ANOMALY;
            }
            detector_destroy(d);
        }
        print_message("seed %d: hunting fault flagged %d of %d readings (hold_echo 0: %d)\n",
                      (int)seed, flagged[1], PF_N - PF_ONSET, flagged[0]);
        free(x);
        assert_int_equal(flagged[1], flagged[0]);
        assert_true(flagged[1] >= 10);
        total += flagged[1];
    }
    assert_true(total >= 2000);
}

/* One channel, HR_N readings: make_new_level's AR(1) level with, from HR_ONSET, kind 0 a
 * harsher lasting fault (+1.0 with extra noise of deviation 0.4: about a tenth of its readings
 * back inside the normal range) or kind 1 a level that drifts back slowly (+2.0 decaying by
 * 0.95 a reading). */
static float *make_echo_case(uint64_t seed, int kind)
{
    float *x = make_new_level(seed, 0.0);
    uint64_t s = seed * 7919 + 11;
    for (int t = HR_ONSET; t < HR_N; t++)
        x[t] += (float)(kind ? 2.0 * pow(0.95, t - HR_ONSET) : 1.0 + 0.4 * gauss(&s));
    return x;
}

/* Faults the rule must not split or cut short, seeds 1-12 with hold_echo 2 against 0:
 * make_hold_case's lasting noisy fault (the same end, reason and episodes), the harsher fault
 * and the slow drift back (no more episodes, none ending later). */
static void test_hold_echo_lasting(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 12; seed++)
        for (int kind = 0; kind < 3; kind++) {
            float *x = kind == 0 ? make_hold_case(seed, 1) : make_echo_case(seed, kind - 1);
            int o1, o0;
            enum detector_end w1, w0;
            int e1 = echo_case_run(x, 2.0f, 0, &o1, &w1);
            int e0 = echo_case_run(x, 0.0f, 0, &o0, &w0);
            print_message("seed %d %s: first episode ends at +%d (%d, %d opened); hold_echo 0: "
                          "+%d (%d, %d opened)\n",
                          (int)seed,
                          kind == 0   ? "lasting"
                          : kind == 1 ? "harsh"
                                      : "drift",
                          e1 - HR_ONSET, (int)w1, o1, e0 - HR_ONSET, (int)w0, o0);
            free(x);
            assert_true(o1 <= o0);
            assert_true(e1 == e0 || (kind == 2 && e1 < e0));
            if (kind == 0)
                assert_true(o1 == o0 && w1 == w0);
        }
}

/* hold_echo is a one-sensor rule: make_step_drift's six channels give the same result on every
 * reading with it 2 as 0. */
static void test_hold_echo_multichannel(void **unused)
{
    (void)unused;
    struct detector_config on;
    detector_config_default(&on);
    on.hold_echo = 2.0f;
    assert_multichannel_same(&on, offsetof(struct detector_config, hold_echo), "hold_echo");
}

/* A format-43 save (no hold_echo in its config; 3.0f's bits where the field may lie in format
 * 43's padding, not read) of the burst's detector (seed 10, whose episode ends 4 readings
 * sooner with hold_echo 2), cut inside the burst, loads with hold_echo 0 and continues bit for
 * bit as the saved detector run without it; the same bytes claimed as 44 are refused. A
 * detector saved with hold_echo 2 keeps it; cut back to format 43, 0. */
static void test_load_format43(void **unused)
{
    (void)unused;
    struct detector_config cfg, kept, cut;
    detector_config_default(&cfg);
    cfg.hold_echo = 2.0f;
    const float three = 3.0f;
    int junk;
    memcpy(&junk, &three, sizeof junk);
    float *x = make_hold_case(10, 0);
    int opened = load_older_format(&cfg, x, HR_N, HR_ONSET + 3, 1,
                                   offsetof(struct detector_config, hold_echo), junk, 43);
    print_message("format 43 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
    save_kept_and_cut(&cfg, offsetof(struct detector_config, hold_echo), junk, 43, &kept, &cut);
    assert_true(kept.hold_echo == 2.0f);
    assert_true(cut.hold_echo == 0.0f);
}

/* ---- review of the sixty-fourth round: faults inside the old range (hold_echo) ------------ */

#define SF_ONSET 1400 /* after the training at 1,200 */
#define SF_LEN   1000 /* the fault's length */
#define SF_N     2600 /* readings: the fault, then 200 healthy ones */

/* One channel, SF_N readings: a strongly autocorrelated healthy signal, AR(1) 0.9 with
 * innovations of deviation 0.1 (its values' deviation about 0.23, 2.3 times the one-step error
 * of a model that learnt it), and from SF_ONSET for SF_LEN readings kind 0/1 a step of
 * +1.5/+3 innovation deviations, kind 2 a ramp to +0.5 (about 2 values' deviations) over the
 * fault, kind 3 a sine of amplitude 0.15 and period 40 added, kind 4 a sawtooth inside the
 * old range (+0.15 a reading for 4 readings, then back: a valve that sticks and slips). */
static float *make_slow_fault(uint64_t seed, int kind)
{
    float *x = malloc(sizeof(float) * SF_N);
    assert_non_null(x);
    double v = 0.0;
    for (int t = 0; t < SF_N; t++) {
        v = 0.9 * v + 0.1 * gauss(&seed);
        double f = 0.0, u = t - SF_ONSET;
        if (t >= SF_ONSET && t < SF_ONSET + SF_LEN)
            f = kind == 0   ? 0.15
                : kind == 1 ? 0.3
                : kind == 2 ? 0.5 * u / SF_LEN
                : kind == 3 ? 0.15 * sin(6.283185307179586 * u / 40.0)
                            : 0.15 * fmod(u, 4.0) - 0.225;
        x[t] = (float)(v + f);
    }
    return x;
}

/* Runs make_slow_fault's x with hold_echo `echo` (the rest the defaults): *opened the
 * episodes opened inside the fault, returns its readings flagged; asserts nothing opens
 * before it. */
static int slow_fault_run(const float *x, float echo, int *opened)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.hold_echo = echo;
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    int flagged = 0;
    *opened = 0;
    for (int t = 0; t < SF_N; t++) {
        step(d, x, t, 1, NULL, &res);
        int opens = res.changed && res.state == DET_ANOMALY, in = t >= SF_ONSET;
        if (!in && opens)
            fail_msg("an episode opens at %d, before the fault", t);
        in = in && t < SF_ONSET + SF_LEN;
        *opened += in && opens;
        flagged += in && res.state == DET_ANOMALY;
    }
    detector_destroy(d);
    return flagged;
}

/* The sixty-fourth round's own stated gap: a fault the model misses on one side while its
 * values stay within hold_echo spreads of the old level. Seeds 1-12, hold_echo 2 against 0:
 * the steps, the ramp and the slow sine (kinds 0-3) are flagged on no more than a few
 * readings either way (an AR(1) 0.9 model misses a level offset d by only 0.1 d after its
 * first reading, so the error holds nothing for the rule to end; measured: 0 readings in 46
 * of the 48, 1-2 in seed 11's ramp and sine, the same with 0 and 2). The sawtooth's model
 * errors run on one side for 3 readings of every 4, and its values stay in range: before the
 * review's fix (echo_back asks that a reading of the err_short window went out of the band:
 * a burst before the return) hold_echo 2 flagged 334 of the 481 readings hold_echo 0 flags
 * (69 %), ending and reopening its episodes (seed 10: 11 episodes against 4, seed 12: 8
 * against 4); with it 396 (82 %, seed 12 as with 0; seed 10 still 11 episodes: its values do
 * leave the band, docs/detection.md, "Review of the sixty-fourth round"). */
static void test_hold_echo_slow_fault(void **unused)
{
    (void)unused;
    int saw[2] = {0, 0};
    for (int kind = 0; kind < 5; kind++)
        for (uint64_t seed = 1; seed <= 12; seed++) {
            float *x = make_slow_fault(seed, kind);
            int o[2], f[2];
            for (int on = 0; on <= 1; on++)
                f[on] = slow_fault_run(x, on ? 2.0f : 0.0f, &o[on]);
            print_message("kind %d seed %2d: %4d readings flagged, %d opened; hold_echo 0: %4d, "
                          "%d\n",
                          kind, (int)seed, f[1], o[1], f[0], o[0]);
            free(x);
            if (kind < 4) {
                assert_int_equal(f[1], f[0]);
                assert_true(f[0] <= 5);
            } else {
                saw[0] += f[0];
                saw[1] += f[1];
            }
        }
    assert_true(saw[0] >= 300);
    assert_true(5 * saw[1] >= 4 * saw[0]);
}

/* ---- sixty-sixth round: bursts that outlast a short window (burst_wide) ------------------ */

#define BW_N      1900 /* readings: trainings at 200 and 1,200 */
#define BW_FIRST  1300 /* the two bursts, both after the training at 1,200 */
#define BW_SECOND 1600
#define BW_LEN    14 /* readings of each burst */

/* One channel, BW_N readings: AR(1) 0.8 with innovations of deviation 0.2, and two bursts that
 * decay, +3 * 0.85^k (k = 0..19) from BW_FIRST and +2.7 * 0.85^k from BW_SECOND (no larger):
 * a spike of counts and its decay, whose episode outlasts one short window. */
static float *make_wide_case(uint64_t seed)
{
    float *x = malloc(sizeof(float) * BW_N);
    assert_non_null(x);
    double v = 0.0;
    for (int t = 0; t < BW_N; t++) {
        v = 0.8 * v + 0.2 * gauss(&seed);
        x[t] = (float)v;
    }
    uint64_t s = 99; /* the same jumps in both bursts, the second's at 0.85 of the first's */
    for (int k = 0; k < BW_LEN; k++) {
        double j = 2.0 * fabs(gauss(&s));
        x[BW_FIRST + k] += (float)j;
        x[BW_SECOND + k] += (float)(0.85 * j);
    }
    return x;
}

/* Runs make_wide_case(seed) with burst_wide wide and hold_decay decay: *len1 the first burst's
 * episode length (readings in state anomaly from its opening), returns 1 when an episode opened
 * at the second burst (within 20 readings of it); *other the episodes opened elsewhere. */
static int wide_run(uint64_t seed, int wide, float decay, int *len1, int *other)
{
    float *x = make_wide_case(seed);
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.burst_wide = wide;
    cfg.hold_decay = decay;
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    int second = 0;
    *len1 = *other = 0;
    for (int t = 0; t < BW_N; t++) {
        step(d, x, t, 1, NULL, &res);
        if (t >= BW_FIRST && t < BW_SECOND && res.state == DET_ANOMALY)
            (*len1)++;
        if (!(res.changed && res.state == DET_ANOMALY))
            continue;
        if (t >= BW_SECOND && t < BW_SECOND + 20)
            second = 1;
        else if (!(t >= BW_FIRST && t < BW_FIRST + 20))
            (*other)++;
    }
    detector_destroy(d);
    free(x);
    return second;
}

/* Two bursts of 14 readings of jumps the model cannot predict, the second no larger, after a
 * training, seeds 1-4, hold_decay 0 (burst_wide alone): the first's episode lasts 13-17
 * readings, longer than one short window, so without burst_wide the second opens too; with
 * burst_wide 2 the first is a burst the device has shown and the second does not open. Nothing
 * else opens either way. With the defaults (hold_decay 0.5 as well) the first's episode ends
 * on the burst's decay, no longer than without it (measured 12-15), the second does not open,
 * nor anything else. */
static void test_burst_wide(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        int l0, o0, l2, o2;
        int s0 = wide_run(seed, 0, 0.0f, &l0, &o0), s2 = wide_run(seed, 2, 0.0f, &l2, &o2);
        int ld, od, sd = wide_run(seed, 2, 0.5f, &ld, &od);
        print_message("seed %d: burst_wide 0: first lasts %d, second %d, other %d; 2: first %d, "
                      "second %d, other %d; defaults: first %d, second %d, other %d\n",
                      (int)seed, l0, s0, o0, l2, s2, o2, ld, sd, od);
        assert_true(ld >= 1 && ld <= l2);
        assert_int_equal(sd, 0);
        assert_int_equal(od, 0);
        assert_true(l0 >= 10 && l0 < 20 && l2 == l0); /* longer than one short window */
        assert_int_equal(s0, 1);
        assert_int_equal(s2, 0);
        assert_int_equal(o0, 0);
        assert_int_equal(o2, 0);
    }
}

/* A format-45 save with burst_wide 2 (the default), taken after make_wide_case's first burst
 * (seed 1) was recorded, loads and continues bit for bit: the second burst does not open. A
 * format-44 save (no burst_wide in its config; 3.0f's bits where the field may lie in format
 * 44's padding, not read) loads with burst_wide 0 and continues bit for bit as the saved
 * detector run without it, where the second burst opens; the same bytes claimed as 45 are
 * refused. A detector saved with burst_wide 2 keeps it; cut back to format 44, 0. */
static void test_load_format44(void **unused)
{
    (void)unused;
    struct detector_config cfg, kept, cut;
    detector_config_default(&cfg);
    assert_int_equal(cfg.burst_wide, 2);
    const float three = 3.0f;
    int junk;
    memcpy(&junk, &three, sizeof junk);
    float *x = make_wide_case(1);
    double top;
    int opened;
    cut_and_continue(&cfg, 1, x, BW_N, BW_FIRST + 30, offsetof(struct detector_config, hold_decay),
                     junk, 45, &top, &opened);
    assert_int_equal(opened, 0); /* the second burst does not open after the load either */
    opened = load_older_format(&cfg, x, BW_N, BW_FIRST + 30, 1,
                               offsetof(struct detector_config, burst_wide), junk, 44);
    print_message("format 44 load: %d anomalies opened after the cut, as saved\n", opened);
    assert_int_equal(opened, 1); /* without burst_wide the second burst opens */
    free(x);
    save_kept_and_cut(&cfg, offsetof(struct detector_config, burst_wide), junk, 44, &kept, &cut);
    assert_int_equal(kept.burst_wide, 2);
    assert_int_equal(cut.burst_wide, 0);
}

/* An episode released (settle_release, offset_release: a change of state, a training asked
 * for) or accepted is not a burst with burst_wide 2, however short; one of the same length that
 * ended by itself is, and without burst_wide it is not (longer than err_short). burst_note is
 * asked directly with the episode's last state, as detector__score asks it (the closing note
 * of session 25: this condition had no test). */
static void test_burst_wide_by_itself(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    assert_int_equal(cfg.burst_wide, 2);
    for (int wide = 0; wide <= 2; wide += 2)
        for (int how = 0; how < 3; how++) { /* 0 by itself, 1 released, 2 accepted */
            cfg.burst_wide = wide;
            detector_t *d;
            assert_int_equal(detector_create(&d, &cfg, 1), 0);
            d->det_state = DET_ANOMALY;
            d->in_anomaly = cfg.err_short + 2; /* longer than a short window, shorter than 2 */
            d->ep_peak = 5.0f;
            d->ep_accepted = how == 2;
            detector__burst_note(d, DET_NORMAL, 1.0, how == 1);
            assert_int_equal(d->burst_pend, wide == 2 && how == 0);
            if (d->burst_pend)
                assert_true(d->pend_peak == 5.0f);
            detector_destroy(d);
        }
}

/* ---- sixty-seventh round: a burst's decay ends its episode (hold_decay) ------------------ */

/* make_new_level's healthy AR(1) (values' deviation about 0.115) with, from HR_ONSET, kind 0 a
 * spike +3.0 that decays by 0.8 a reading (26 deviations; half way back after 4 readings),
 * kind 1 a fault that jumps by +3.0 and relaxes to +1.8 for good (+1.8 + 1.2 * 0.7^k: 40 % of
 * the way back, then stays 16 deviations from the old level). */
static float *make_decay_case(uint64_t seed, int kind)
{
    float *x = make_new_level(seed, 0.0);
    for (int t = HR_ONSET; t < HR_N; t++) {
        const double k = t - HR_ONSET;
        x[t] += (float)(kind == 0 ? 3.0 * pow(0.8, k) : 1.8 + 1.2 * pow(0.7, k));
    }
    return x;
}

/* Runs x with the defaults and hold_decay f: returns the readings flagged from HR_ONSET on. */
static int decay_flagged(const float *x, float f)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.hold_decay = f;
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    int flagged = 0;
    for (int t = 0; t < HR_N; t++) {
        step(d, x, t, 1, NULL, &res);
        flagged += t >= HR_ONSET && res.state == DET_ANOMALY;
    }
    detector_destroy(d);
    return flagged;
}

/* make_decay_case's spike (3.0 x 0.8^k from HR_ONSET) and, `gap` readings after its start, a
 * lasting step of +`step` on the same sensor (review of the sixty-seventh round). */
static float *make_spike_then_fault(uint64_t seed, int gap, double step)
{
    float *x = make_decay_case(seed, 0);
    for (int t = HR_ONSET + gap; t < HR_N; t++)
        x[t] += (float)step;
    return x;
}

/* Runs x with the defaults and hold_decay f: returns the first reading from `from` on that
 * opens or continues an episode flagged for 40 readings in a row (-1: none, the fault missed). */
static int fault_flag_at(const float *x, float f, int from, int *first)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.hold_decay = f;
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    int start = -1, found = -1;
    *first = -1;
    for (int t = 0; t < HR_N && found < 0; t++) {
        step(d, x, t, 1, NULL, &res);
        if (t < from)
            continue;
        if (res.state == DET_ANOMALY) {
            if (*first < 0)
                *first = t;
            if (start < 0)
                start = t;
            if (t - start + 1 >= 40)
                found = start;
        } else {
            start = -1;
        }
    }
    detector_destroy(d);
    return found;
}

/* A spike followed 1-20 readings after its start by a lasting step on the same sensor (+1.0,
 * below half the spike's peak: what the decay's test counts as "back"; +1.5; +2.5), seeds
 * 1-12 (720 cases; review of the sixty-seventh round). Measured, hold_decay 0.5 / 2 (the
 * default) against 0: the step is always flagged, first within 8 readings of its start
 * (hold_decay 0: within 10, once 26); but the lasting flag (40 readings in a row) comes beyond
 * FAULT_LATENCY in 11 cases, worst +24 (hold_decay 0: 1, +26), beyond 10 readings in 107
 * (hold_decay 0: 1): the rule ends the spike's episode while the step holds the values
 * half-way back, and its quiet (err_short readings) holds the reopening, so the alarm is split.
 * Asserted: never missed, first flagged within FAULT_LATENCY, a lasting flag found, and the
 * count beyond FAULT_LATENCY no worse than measured (a guard for later changes). */
static void test_hold_decay_then_fault(void **unused)
{
    (void)unused;
    const double steps[3] = {1.0, 1.5, 2.5};
    int worst = 0, worst0 = 0, worstf = 0, late = 0, late0 = 0;
    for (int i = 0; i < 3; i++)
        for (int gap = 1; gap <= 20; gap++)
            for (uint64_t seed = 1; seed <= 12; seed++) {
                float *x = make_spike_then_fault(seed, gap, steps[i]);
                const int F = HR_ONSET + gap;
                int a1, a0;
                int f1 = fault_flag_at(x, 0.5f, F, &a1), f0 = fault_flag_at(x, 0.0f, F, &a0);
                free(x);
                int d1 = f1 < 0 ? 9999 : f1 - F, d0 = f0 < 0 ? 9999 : f0 - F;
                if (d1 > worst)
                    worst = d1;
                if (d0 > worst0)
                    worst0 = d0;
                if (getenv("DBGF") || d1 > d0 + 2 || d1 > FAULT_LATENCY)
                    print_message("step +%.1f gap %d seed %d: first flagged +%d, for good +%d; "
                                  "hold_decay 0: +%d, +%d\n",
                                  steps[i], gap, (int)seed, a1 - F, d1, a0 - F, d0);
                if (a1 - F > worstf)
                    worstf = a1 - F;
                late += d1 > FAULT_LATENCY;
                late0 += d0 > FAULT_LATENCY;
                assert_true(a1 >= F && a1 - F <= FAULT_LATENCY); /* never missed */
                assert_true(f1 >= F); /* and flagged for good */
            }
    print_message("spike then step: worst first flag +%d, worst for good +%d (hold_decay 0: "
                  "+%d); for good beyond FAULT_LATENCY in %d of 720 (hold_decay 0: %d)\n",
                  worstf, worst, worst0, late, late0);
    assert_true(late <= 11);
}

/* A spike that decays, seeds 1-6: with hold_decay 0.5 its episode ends sooner than without
 * (cleared, not released: no training asked), and no more episodes open (the decay reopens
 * nothing); a copy saved inside the episode (HR_ONSET + 2, the peak kept) continues bit for
 * bit. Invalid settings are refused. hold_decay 0.5, decay_run 2 is the default. */
static void test_hold_decay_spike(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    assert_true(cfg.hold_decay == 0.5f && cfg.decay_run == 2); /* on by default (format 46) */
    detector_t *bad;
    cfg.hold_decay = 1.5f;
    assert_int_equal(detector_create(&bad, &cfg, 1), ERR_INVAL);
    cfg.hold_decay = 0.5f;
    cfg.decay_run = 0;
    assert_int_equal(detector_create(&bad, &cfg, 1), ERR_INVAL);
    int sooner = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        float *x = make_decay_case(seed, 0);
        struct detector_config on, off;
        detector_config_default(&on);
        detector_config_default(&off);
        assert_true(on.hold_decay == 0.5f && on.decay_run == 2); /* the default */
        off.hold_decay = 0.0f;
        int o1, o0;
        enum detector_end w1, w0;
        int e1 = hold_case_cfg(&on, x, HR_ONSET + 2, &o1, &w1);
        int e0 = hold_case_cfg(&off, x, 0, &o0, &w0);
        print_message("seed %d spike: hold_decay 0.5 ends at +%d (%d, %d opened); 0: +%d (%d, %d "
                      "opened)\n",
                      (int)seed, e1 - HR_ONSET, (int)w1, o1, e0 - HR_ONSET, (int)w0, o0);
        free(x);
        assert_true(e1 > HR_ONSET && e1 <= e0);
        assert_int_equal(w1, DET_END_CLEARED);
        assert_true(o1 <= o0);
        sooner += e1 < e0;
    }
    assert_true(sooner >= 4);
}

/* A fault that jumps and relaxes only 40 % of the way back (make_decay_case kind 1), seeds
 * 1-6: hold_decay 0.5 flags exactly the readings hold_decay 0 flags. */
static void test_hold_decay_partial_fault(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        float *x = make_decay_case(seed, 1);
        int f1 = decay_flagged(x, 0.5f), f0 = decay_flagged(x, 0.0f);
        print_message("seed %d partial relax: %d readings flagged; hold_decay 0: %d\n", (int)seed,
                      f1, f0);
        free(x);
        assert_int_equal(f1, f0);
        assert_true(f0 >= 20);
    }
}

/* make_hold_case's lasting fault (a new level 0.6, about 5 deviations, whose readings scatter
 * below half of its highest), seeds 1-12: with hold_decay 0.5 its first episode ends where and
 * as with 0, and as many open (without DECAY_DROP it was ended on its 3rd-16th reading and
 * split in 3: measured on the first form of the rule). */
static void test_hold_decay_lasting(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        float *x = make_hold_case(seed, 1);
        struct detector_config on, off;
        detector_config_default(&on);
        detector_config_default(&off);
        assert_true(on.hold_decay == 0.5f && on.decay_run == 2); /* the default */
        off.hold_decay = 0.0f;
        int o1, o0;
        enum detector_end w1, w0;
        int e1 = hold_case_cfg(&on, x, 0, &o1, &w1);
        int e0 = hold_case_cfg(&off, x, 0, &o0, &w0);
        print_message("seed %d lasting: hold_decay 0.5 ends at +%d (%d, %d opened); 0: +%d (%d, "
                      "%d opened)\n",
                      (int)seed, e1 - HR_ONSET, (int)w1, o1, e0 - HR_ONSET, (int)w0, o0);
        free(x);
        assert_int_equal(e1, e0);
        assert_int_equal(w1, w0);
        assert_int_equal(o1, o0);
    }
}

/* A format-45 save (no hold_decay in its config; 3.0f's bits where the field may lie in format
 * 45's padding, not read) of the spike's detector (seed 1), cut inside the spike's episode,
 * loads with hold_decay 0 and continues bit for bit as the saved detector run without it; the
 * same bytes claimed as 46 are refused. A default detector (format 46: hold_decay 0.5,
 * decay_run 2) keeps it through a save and load; cut back to format 45 (its peak dropped), the
 * rule is off (hold_decay 0, decay_run 0), as format 45 ran. */
static void test_load_format45(void **unused)
{
    (void)unused;
    struct detector_config cfg, kept, cut;
    detector_config_default(&cfg);
    assert_true(cfg.hold_decay == 0.5f && cfg.decay_run == 2); /* a format-46 default: on */
    const float three = 3.0f;
    int junk;
    memcpy(&junk, &three, sizeof junk);
    float *x = make_decay_case(1, 0);
    int opened = load_older_format(&cfg, x, HR_N, HR_ONSET + 2, 1,
                                   offsetof(struct detector_config, hold_decay), junk, 45);
    print_message("format 45 load: %d anomalies opened after the cut, as saved\n", opened);
    free(x);
    save_kept_and_cut(&cfg, offsetof(struct detector_config, hold_decay), junk, 45, &kept, &cut);
    assert_true(kept.hold_decay == 0.5f && kept.decay_run == 2);
    assert_true(cut.hold_decay == 0.0f && cut.decay_run == 0);
}

/* Steps make_decay_case's spike (seed) with the defaults until the reading after the one whose
 * episode hold_decay ended (its quiet, dk_left, still on): returns that reading's index, -1 if
 * the rule ended none. */
static int run_to_decay_quiet(detector_t *d, const float *x)
{
    struct detector_result res;
    for (int t = 0; t < HR_N; t++) {
        step(d, x, t, 1, NULL, &res);
        if (t >= HR_ONSET && res.ended_by != DET_END_NONE && d->dk_left > 0)
            return t + 1;
    }
    return -1;
}

/* A training applied inside hold_decay's quiet (the err_short readings after an episode the
 * rule ended) reseeds the short window, which then holds no decay: the quiet ends with it and the
 * long window learns the next reading (before the fix the quiet went on up to err_short readings
 * and the next reading was not learnt). Seeds 1-6, each a spike the rule ends. */
static void test_hold_decay_reseed(void **unused)
{
    (void)unused;
    int found = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        float *x = make_decay_case(seed, 0);
        detector_t *d = new_detector(1);
        const int t = run_to_decay_quiet(d, x);
        if (t < 0) {
            detector_destroy(d);
            free(x);
            continue;
        }
        found++;
        assert_true(d->dk_left > 0);
        struct detector_train_info info;
        train_on(d, x, t, &info); /* recalibrate (the default): the windows are reseeded */
        assert_int_equal(d->dk_left, 0);
        const int head = d->ring_head, len = d->ring_len;
        struct detector_result res;
        step(d, x, t, 1, NULL, &res);
        print_message("seed %d: trained in the decay's quiet at %d; quiet %d, long window %d -> %d "
                      "(head %d -> %d)\n",
                      (int)seed, t, d->dk_left, len, d->ring_len, head, d->ring_head);
        assert_true(d->ring_head != head || d->ring_len != len); /* learnt */
        detector_destroy(d);
        free(x);
    }
    assert_true(found >= 4);
}

/* ---- sixty-eighth round: a level that mostly repeats one value (spread_mean) ------------- */

/* One channel, HR_N readings of a counter that mostly reads 0 (NAB's rogue_agent_key_updown):
 * 1 reading in 10 at 0.5-2.0. From HR_ONSET, kind 0: a spike of +60 then +20, after which the
 * counter reads as before; kind 1: the same +60, then a lasting level of 40 (two thirds of the
 * peak) with the counter's noise on it: a fault, never half way back; kind 2: the same with a
 * lasting level of 20 (a third of the peak: what the decay's rule counts as back). */
static float *make_sparse_case(uint64_t seed, int kind)
{
    float *x = malloc(sizeof(float) * HR_N);
    assert_non_null(x);
    for (int t = 0; t < HR_N; t++) {
        const uint64_t r = rng_next(&seed);
        x[t] = r % 10 == 0 ? (float)(0.5 + 1.5 * (double)(r >> 11) / 9007199254740992.0) : 0.0f;
        if (t == HR_ONSET)
            x[t] += 60.0f;
        else if (t == HR_ONSET + 1)
            x[t] += kind == 1 ? 40.0f : 20.0f;
        else if (t > HR_ONSET && kind)
            x[t] += kind == 1 ? 40.0f : 20.0f;
    }
    return x;
}

/* Runs x with the defaults and spread_mean m: returns the readings flagged in [HR_ONSET, to);
 * *opened the episodes opened there, *sd the level's spread (eb_sd) at the first of them. */
static int sparse_flagged(const float *x, int m, int to, int *opened, float *sd)
{
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.spread_mean = m;
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    int flagged = 0;
    *opened = 0;
    *sd = -1.0f;
    for (int t = 0; t < to; t++) {
        step(d, x, t, 1, NULL, &res);
        if (t < HR_ONSET)
            continue;
        flagged += res.state == DET_ANOMALY;
        if (res.changed && res.state == DET_ANOMALY && (*opened)++ == 0)
            *sd = d->eb_sd;
    }
    detector_destroy(d);
    return flagged;
}

/* A spike on a counter that mostly reads 0, seeds 1-12: the level before it has a median
 * absolute deviation of 0, so with spread_mean 0 hold_echo and hold_decay wait and the error
 * holds the episode; with 1 (the default) the level has a spread and the decay's rule ends the
 * episode sooner (never later), and no more episodes open. Invalid settings are refused. */
static void test_spread_mean_spike(void **unused)
{
    (void)unused;
    struct detector_config cfg;
    detector_config_default(&cfg);
    assert_int_equal(cfg.spread_mean, 1); /* on by default (format 47) */
    detector_t *bad;
    cfg.spread_mean = 2;
    assert_int_equal(detector_create(&bad, &cfg, 1), ERR_INVAL);
    cfg.spread_mean = -1;
    assert_int_equal(detector_create(&bad, &cfg, 1), ERR_INVAL);
    int sooner = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        float *x = make_sparse_case(seed, 0);
        int o1, o0;
        float sd1, sd0;
        const int f1 = sparse_flagged(x, 1, HR_ONSET + 40, &o1, &sd1);
        const int f0 = sparse_flagged(x, 0, HR_ONSET + 40, &o0, &sd0);
        print_message("seed %d sparse spike: spread_mean 1: %d flagged (%d opened, spread %.3g); "
                      "0: %d (%d, %.3g)\n",
                      (int)seed, f1, o1, (double)sd1, f0, o0, (double)sd0);
        free(x);
        assert_true(o1 >= 1 && o0 >= 1); /* the spike is flagged either way */
        assert_true(sd0 == 0.0f && sd1 > 0.0f);
        assert_true(f1 <= f0 && o1 <= o0);
        sooner += f1 < f0;
    }
    assert_true(sooner >= 9);
}

/* The nearest lasting fault on that counter (make_sparse_case kind 1: +60, then a level of 40
 * that stays), seeds 1-12: spread_mean 1 flags exactly the readings 0 flags, one episode held
 * until offset_release lets the settled level go (about 100 readings, measured: 99 in seed 1,
 * as with 0; the training it asks for learns the level). */
static void test_spread_mean_lasting(void **unused)
{
    (void)unused;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        float *x = make_sparse_case(seed, 1);
        int o1, o0;
        float sd1, sd0;
        const int f1 = sparse_flagged(x, 1, HR_ONSET + 200, &o1, &sd1);
        const int f0 = sparse_flagged(x, 0, HR_ONSET + 200, &o0, &sd0);
        print_message("seed %d sparse lasting: spread_mean 1: %d of 200 flagged (%d opened); 0: "
                      "%d (%d)\n",
                      (int)seed, f1, o1, f0, o0);
        free(x);
        assert_int_equal(f1, f0);
        assert_int_equal(o1, o0);
        assert_true(f1 >= 90 && o1 == 1);
        /* kind 2 (measured for the round's cost, docs/detection.md): the lasting level a third
         * of the peak is flagged for about as long, its alarm perhaps split (the sixty-seventh
         * round's cost, now on such counters too); asserted: flagged for most of the 200. */
        x = make_sparse_case(seed, 2);
        const int g1 = sparse_flagged(x, 1, HR_ONSET + 200, &o1, &sd1);
        const int g0 = sparse_flagged(x, 0, HR_ONSET + 200, &o0, &sd0);
        print_message("seed %d sparse lasting at a third: spread_mean 1: %d of 200 flagged (%d "
                      "opened); 0: %d (%d)\n",
                      (int)seed, g1, o1, g0, o0);
        free(x);
        assert_true(g1 >= 80);
    }
}

/* A format-46 save (the readings since hold_decay's peak, an i32, between dk_peak and dk_left)
 * taken inside the decay's quiet after make_decay_case's spike (seed 1) loads, the count read
 * and dropped, and continues bit for bit as the saved detector; the same bytes without the count
 * claimed as 46 are refused. */
static void test_load_format46(void **unused)
{
    (void)unused;
    float *x = make_decay_case(1, 0);
    detector_t *a = new_detector(1), *b = NULL;
    const int cut = run_to_decay_quiet(a, x);
    assert_true(cut > HR_ONSET);
    assert_true(a->dk_left > 0 && a->dk_peak > 0.0f);
    size_t len = detector_save_size(a), got;
    unsigned char *buf = malloc(len + sizeof(int)), *plain = malloc(len);
    assert_non_null(buf);
    assert_non_null(plain);
    assert_int_equal(detector_save(a, buf, len, &got), 0);
    /* The plain save claimed as 46: one count short. */
    memcpy(plain, buf, len);
    as_format6(plain, &len, 46);
    assert_int_not_equal(detector_load(&b, plain, len), 0);
    /* Insert the count (junk: nothing reads it) before dk_left, right before prev_contrib. */
    const size_t mlen = a->lstm ? model_checkpoint_size(a->lstm) : 0;
    const size_t at = len - 4 - mlen - 8 -
                      sizeof(float) * (size_t)(a->cfg.err_short + a->cfg.err_window + a->C) -
                      sizeof(int);
    assert_memory_equal(buf + at, &a->dk_left, sizeof(int));
    memmove(buf + at + sizeof(int), buf + at, len - at);
    const int since = 12345;
    memcpy(buf + at, &since, sizeof since);
    len += sizeof(int);
    /* 1 (a valid spread_mean) in format 46's padding, where the field lies: not read. */
    cut_to_format(buf, &len, offsetof(struct detector_config, spread_mean), 1, 46);
    assert_int_equal(detector_load(&b, buf, len), 0);
    assert_int_equal(b->cfg.spread_mean, 0);
    assert_true(b->dk_left == a->dk_left && b->dk_peak == a->dk_peak);
    const int left = b->dk_left;
    struct detector_result ra, rb;
    for (int t = cut; t < HR_N; t++) {
        step(a, x, t, 1, NULL, &ra);
        step(b, x, t, 1, NULL, &rb);
        assert_same_result(&ra, &rb, 1);
    }
    print_message("format 46 load in the decay's quiet (%d readings of it left): continues bit "
                  "for bit\n",
                  left);
    detector_destroy(a);
    detector_destroy(b);
    free(plain);
    free(buf);
    free(x);
}

/* A format-46 save of a detector with hold_decay 0 (no decay state saved: nothing to drop) and
 * hold_echo on, of make_sparse_case's spike (seed 1; a level whose median absolute deviation is
 * 0, where spread_mean matters), cut inside its episode: loads with spread_mean 0 whatever
 * format 46's padding held (3.0f's bits, then 1, a valid value) and continues bit for bit as
 * the saved detector run without it; the same bytes claimed as 47 are refused. A detector saved
 * with spread_mean 1 keeps it (format 47). (Review of the sixty-eighth round.) */
static void test_load_format46_plain(void **unused)
{
    (void)unused;
    struct detector_config cfg, kept, cut;
    detector_config_default(&cfg);
    cfg.hold_decay = 0.0f;
    cfg.decay_run = 0;
    assert_true(cfg.hold_echo > 0.0f && cfg.spread_mean == 1);
    const float three = 3.0f;
    int junk;
    memcpy(&junk, &three, sizeof junk);
    float *x = make_sparse_case(1, 0);
    const int opened = load_older_format(&cfg, x, HR_N, HR_ONSET + 2, 1,
                                         offsetof(struct detector_config, spread_mean), junk, 46);
    print_message("format 46 load (hold_decay 0): %d anomalies opened after the cut, as saved\n",
                  opened);
    free(x);
    save_kept_and_cut(&cfg, offsetof(struct detector_config, spread_mean), 1, 46, &kept, &cut);
    assert_int_equal(kept.spread_mean, 1);
    assert_int_equal(cut.spread_mean, 0);
    assert_true(cut.hold_decay == 0.0f && cut.hold_echo == cfg.hold_echo);
}

/* spread_mean on a level of huge values: 3 readings in 8 at `big`, the rest at `base`, frozen
 * as at an opening. base 0, big 1e30 and 3e38: a median absolute deviation of 0, the mean's
 * spread taken, finite (summed in a double; at most half the deviations are not 0, so the mean
 * stays below FLT_MAX / 2). base -3e38, big 3e38: the median of the two middle values
 * overflows (-inf, as before this round), so do the deviations from it: the spread is inf,
 * never NaN, and neither hold_echo nor hold_decay ends anything on it (they wait, as with no
 * spread). Values never reach the ring as inf or NaN (imputed). (Review of the sixty-eighth
 * round.) */
static void test_spread_mean_huge(void **unused)
{
    (void)unused;
    const float base[3] = {-3e38f, 0.0f, 0.0f}, big[3] = {3e38f, 1e30f, 3e38f};
    for (int k = 0; k < 3; k++) {
        detector_t *d = new_detector(1);
        struct detector_result res;
        float *x = malloc(sizeof(float) * 60);
        assert_non_null(x);
        for (int t = 0; t < 60; t++)
            x[t] = t % 8 < 3 ? big[k] : base[k];
        for (int t = 0; t < 60; t++) /* learning: the context ring fills, nothing trains */
            step(d, x, t, 1, NULL, &res);
        d->eb_gap = 1 << 20; /* no episode just before */
        detector__echo_freeze(d);
        print_message("level %g / %g: median %g, spread %g\n", (double)base[k], (double)big[k],
                      (double)d->eb_med, (double)d->eb_sd);
        /* base -3e38: the median of two middle values -3e38 overflows to -inf (0.5f * (a + b),
         * as before this round); the rules wait on it as well (below). */
        assert_true(k == 0 ? isinf(d->eb_med) : d->eb_med == base[k]);
        assert_false(isnan(d->eb_sd));
        assert_true(d->eb_sd > 0.0f);
        if (k == 0)
            assert_true(isinf(d->eb_sd));
        else
            assert_true(isfinite(d->eb_sd));
        if (k == 0) {
            const float probe[4] = {base[k], big[k], 0.0f, -1e30f};
            d->dk_peak = fabsf(big[k] - base[k]); /* inf as well: decay_note keeps none such */
            for (int i = 0; i < 4; i++) {
                assert_int_equal(detector__echo_back(d, &probe[i]), 0);
                assert_int_equal(detector__decay_back(d, &probe[i]), 0);
            }
            d->dk_peak = 3e38f;
            for (int i = 0; i < 4; i++)
                assert_int_equal(detector__decay_back(d, &probe[i]), 0);
        }
        free(x);
        detector_destroy(d);
    }
}

/* ---- review of the sixty-eighth round: a training applied inside an open episode ---------- */

/* make_new_level's healthy AR(1) with, from HR_ONSET, a fault at +3.0 for `high` readings that
 * then falls to +1.2 and stays there (a lasting fault, 40 % of its peak: what the decay's test
 * counts as "back"; 16 of the values' deviations from the old level). */
static float *make_high_then_lasting(uint64_t seed, int high)
{
    float *x = make_new_level(seed, 0.0);
    for (int t = HR_ONSET; t < HR_N; t++)
        x[t] += t < HR_ONSET + high ? 3.0f : 1.2f;
    return x;
}

/* Runs x with the defaults and hold_decay f, a training applied (train_on: as a daemon's job
 * created before the episode and applied inside it) at reading train_at (-1: none): returns the
 * readings flagged in [from, from + 200), *opened the episodes opened there, *gap_at where
 * (from from) the first one ended (-1: not there) and *gap the readings unflagged before the
 * next opened (-1: none opened). */
static int lasting_flagged(const float *x, float f, int train_at, int from, int *opened,
                           int *gap_at, int *gap)
{
    *gap_at = *gap = -1;
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.hold_decay = f;
    detector_t *d;
    assert_int_equal(detector_create(&d, &cfg, 1), 0);
    struct detector_result res;
    int flagged = 0;
    *opened = 0;
    for (int t = 0; t < from + 200; t++) {
        if (t == train_at) { /* on the readings before the episode */
            struct detector_train_info info;
            train_on(d, x, HR_ONSET, &info);
        }
        step(d, x, t, 1, NULL, &res);
        if (t < from)
            continue;
        flagged += res.state == DET_ANOMALY;
        *opened += res.changed && res.state == DET_ANOMALY;
        if (*opened == 0 && res.state != DET_ANOMALY && *gap_at < 0)
            *gap_at = t - from; /* the first episode's end */
        if (*opened == 1 && res.changed && res.state == DET_ANOMALY)
            *gap = t - from - *gap_at; /* the readings unflagged before the reopening */
    }
    detector_destroy(d);
    return flagged;
}

/* A training applied inside an open episode (a daemon's job created before it, on the readings
 * before it) reseeds the windows and zeroes in_anomaly; a fault held at +3.0 for 25 readings
 * (past hold_decay's two short windows) that then falls to +1.2 and stays, seeds 1-6: without
 * the training the decay's rule leaves it (flagged as with hold_decay 0); with it, the rule ends
 * nothing more of the episode either (flagged as with hold_decay 0 and the same training; review
 * of the sixty-eighth round: it ended the episode at the fall and split the alarm). */
static void test_hold_decay_reseed_open(void **unused)
{
    (void)unused;
    const int high = 25, from = HR_ONSET + high;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        float *x = make_high_then_lasting(seed, high);
        int o_n, o_t, o_t0, o_n0, ga, gp, ta, tg;
        const int n = lasting_flagged(x, 0.5f, -1, from, &o_n, &ga, &gp);
        const int tr = lasting_flagged(x, 0.5f, HR_ONSET + 20, from, &o_t, &ta, &tg);
        const int tr0 = lasting_flagged(x, 0.0f, HR_ONSET + 20, from, &o_t0, &ga, &gp);
        const int n0 = lasting_flagged(x, 0.0f, -1, from, &o_n0, &ga, &gp);
        print_message("seed %d high then lasting: hold_decay 0.5: %d of 200 flagged (%d opened); "
                      "trained inside: %d (%d); hold_decay 0 trained inside: %d (%d); 0: %d (%d)\n",
                      (int)seed, n, o_n, tr, o_t, tr0, o_t0, n0, o_n0);
        print_message("  trained inside, hold_decay 0.5: ended at +%d (-1: not there), "
                      "unflagged %d before it reopened (-1: none)\n",
                      ta, tg);
        free(x);
        assert_true(n == n0 && o_n == 0 && o_n0 == 0); /* held past two windows: left alone */
        /* Trained inside: the decay's rule ends nothing more (before the fix it ended the
         * episode at the fall, +1, and the fault went unflagged 10 readings, then reopened). */
        assert_int_equal(tr, tr0);
        assert_int_equal(o_t, o_t0);
        assert_int_equal(o_t, 0);
    }
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
        assert_int_equal(detector_create(&d[k], &cfg, 1), 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_fault_flagged_with_channel),
        cmocka_unit_test(test_slow_drift_flagged),
        cmocka_unit_test(test_slow_drift_flagged_confirm2),
        cmocka_unit_test(test_warm_start),
        cmocka_unit_test(test_healthy_quiet),
        cmocka_unit_test(test_decision_likelihood),
        cmocka_unit_test(test_open_median),
        cmocka_unit_test(test_constant_channel_not_stuck),
        cmocka_unit_test(test_forecast_persistence_trend),
        cmocka_unit_test(test_trend),
        cmocka_unit_test(test_missing_carried_forward),
        cmocka_unit_test(test_worse_job_not_swapped),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_load_format3),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_retrain_seconds),
        cmocka_unit_test(test_batch_step_matches_single),
        cmocka_unit_test(test_group_share),
        cmocka_unit_test(test_group_healthy_quiet),
        cmocka_unit_test(test_extrapolation_first_model),
        cmocka_unit_test(test_load_format5),
        cmocka_unit_test(test_serving_f16),
        cmocka_unit_test(test_coupled_errors_count_once),
        cmocka_unit_test(test_extrapolation_fault_flagged),
        cmocka_unit_test(test_save_shared_round_trip),
        cmocka_unit_test(test_share_batch_matches_single),
        cmocka_unit_test(test_min_rows_calibration),
        cmocka_unit_test(test_op_point_level_shift),
        cmocka_unit_test(test_model_kind),
        cmocka_unit_test(test_load_format8),
        cmocka_unit_test(test_apply_settings),
        cmocka_unit_test(test_load_format7),
        cmocka_unit_test(test_season_missing_cycle),
        cmocka_unit_test(test_opinion_missing_cycle),
        cmocka_unit_test(test_load_format9),
        cmocka_unit_test(test_season_save_only_chosen),
        cmocka_unit_test(test_shift_step_held),
        cmocka_unit_test(test_burst_memory),
        cmocka_unit_test(test_load_format10),
        cmocka_unit_test(test_load_format11),
        cmocka_unit_test(test_shift_plain_small_step),
        cmocka_unit_test(test_load_format12),
        cmocka_unit_test(test_load_format13),
        cmocka_unit_test(test_shift_release),
        cmocka_unit_test(test_onset_record),
        cmocka_unit_test(test_load_format14),
        cmocka_unit_test(test_record_open),
        cmocka_unit_test(test_load_format17),
        cmocka_unit_test(test_shift_sums_incremental),
        cmocka_unit_test(test_settle_release),
        cmocka_unit_test(test_settle_keeps_faults),
        cmocka_unit_test(test_load_format15),
        cmocka_unit_test(test_accum_flat_day),
        cmocka_unit_test(test_load_format16),
        cmocka_unit_test(test_accum_chosen_profile),
        cmocka_unit_test(test_episode_end_reason),
        cmocka_unit_test(test_score_tails),
        cmocka_unit_test(test_warn_run),
        cmocka_unit_test(test_load_format18),
        cmocka_unit_test(test_load_format19),
        cmocka_unit_test(test_onset_quiet),
        cmocka_unit_test(test_load_format20),
        cmocka_unit_test(test_warn_region),
        cmocka_unit_test(test_load_format21),
        cmocka_unit_test(test_accepted_across_save),
        cmocka_unit_test(test_load_format22),
        cmocka_unit_test(test_accepted_training_late),
        cmocka_unit_test(test_record_quiet),
        cmocka_unit_test(test_load_format23),
        cmocka_unit_test(test_onset_rate),
        cmocka_unit_test(test_load_format24),
        cmocka_unit_test(test_shift_confirm),
        cmocka_unit_test(test_load_format25),
        cmocka_unit_test(test_episode_open_reason),
        cmocka_unit_test(test_shift_winsor),
        cmocka_unit_test(test_load_format26),
        cmocka_unit_test(test_range_quiet),
        cmocka_unit_test(test_load_format27),
        cmocka_unit_test(test_offset_release),
        cmocka_unit_test(test_offset_release_multichannel),
        cmocka_unit_test(test_load_format28),
        cmocka_unit_test(test_opinion_open),
        cmocka_unit_test(test_load_format29),
        cmocka_unit_test(test_hold_recent_burst),
        cmocka_unit_test(test_hold_recent_lasting),
        cmocka_unit_test(test_hold_recent_multichannel),
        cmocka_unit_test(test_load_format30),
        cmocka_unit_test(test_record_open_one),
        cmocka_unit_test(test_load_format31),
        cmocka_unit_test(test_onset_rhythm),
        cmocka_unit_test(test_load_format32),
        cmocka_unit_test(test_one_sensor_pattern_fault),
        cmocka_unit_test(test_rhythm_state_refused),
        cmocka_unit_test(test_episode_counts_refused),
        cmocka_unit_test(test_operator_accept),
        cmocka_unit_test(test_end_episode),
        cmocka_unit_test(test_range_far),
        cmocka_unit_test(test_range_far_warmup),
        cmocka_unit_test(test_opinion_run_saved),
        cmocka_unit_test(test_load_format33),
        cmocka_unit_test(test_load_format34),
        cmocka_unit_test(test_mean_far),
        cmocka_unit_test(test_mean_far_warmup),
        cmocka_unit_test(test_load_format35),
        cmocka_unit_test(test_rhythm_time),
        cmocka_unit_test(test_load_format36),
        cmocka_unit_test(test_onset_now),
        cmocka_unit_test(test_load_format37),
        cmocka_unit_test(test_onset_tie),
        cmocka_unit_test(test_load_format38),
        cmocka_unit_test(test_load_format39),
        cmocka_unit_test(test_lstm_min_rows),
        cmocka_unit_test(test_lstm_min_rows_pooled),
        cmocka_unit_test(test_lstm_min_rows_count),
        cmocka_unit_test(test_load_format40),
        cmocka_unit_test(test_offset_trend),
        cmocka_unit_test(test_load_format41),
        cmocka_unit_test(test_record_young),
        cmocka_unit_test(test_accept_grow),
        cmocka_unit_test(test_accept_grow_operator),
        cmocka_unit_test(test_accept_grow_schedule),
        cmocka_unit_test(test_load_format42),
        cmocka_unit_test(test_hold_echo_burst),
        cmocka_unit_test(test_hold_echo_pattern_fault),
        cmocka_unit_test(test_hold_echo_lasting),
        cmocka_unit_test(test_hold_echo_multichannel),
        cmocka_unit_test(test_hold_echo_slow_fault),
        cmocka_unit_test(test_load_format43),
        cmocka_unit_test(test_burst_wide),
        cmocka_unit_test(test_load_format44),
        cmocka_unit_test(test_burst_wide_by_itself),
        cmocka_unit_test(test_hold_decay_spike),
        cmocka_unit_test(test_hold_decay_then_fault),
        cmocka_unit_test(test_hold_decay_partial_fault),
        cmocka_unit_test(test_hold_decay_lasting),
        cmocka_unit_test(test_load_format45),
        cmocka_unit_test(test_hold_decay_reseed),
        cmocka_unit_test(test_load_format46),
        cmocka_unit_test(test_spread_mean_spike),
        cmocka_unit_test(test_spread_mean_lasting),
        cmocka_unit_test(test_hold_decay_reseed_open),
        cmocka_unit_test(test_load_format46_plain),
        cmocka_unit_test(test_spread_mean_huge),
        cmocka_unit_test(test_train_put_off),
    };
    /* DETECTOR_TESTS="test_x*" runs a subset (cmocka's filter) while iterating. */
    if (getenv("DETECTOR_TESTS"))
        cmocka_set_test_filter(getenv("DETECTOR_TESTS"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

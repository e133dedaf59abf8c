/* tests/test_detector_calib.c: unit tests of groups and calibration (model/detector_calib.c,
 * detector_train.c): a group of pumps sharing one model, shared checkpoints, batched group
 * calibration, min_rows and the model kind (the loads of format 8 and 47 and apply_settings on a
 * loaded detector moved to test_detector_io.c, make_linear to the fixtures). Part of test_detector:
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

#ifdef __GLIBC__
#include <malloc.h> /* mallopt(M_PERTURB): test_min_rows_calibration */
#endif

#include "detector.h"
#include "detector_int.h"
#include "err.h"
#include "test_detector_fx.h"

/* One group training of da (the lead, on pool's nseg windows) and db, each member's job on its
 * own rows (a, b: n each), every job applied and released: ia and ib say what each recorded. */
static void group_round(detector_t *da, detector_t *db, const float *pool, const int *lens,
                        int nseg, const float *a, const float *b, int n,
                        struct detector_train_info *ia, struct detector_train_info *ib)
{
    detector_job_t *g, *ja, *jb;
    assert_int_equal(detector_job_create(&g, da), 0);
    assert_int_equal(detector_job_set_pooled(g, pool, lens, nseg), 0);
    assert_int_equal(detector_job_create(&ja, da), 0);
    assert_int_equal(detector_job_create(&jb, db), 0);
    assert_int_equal(detector_job_set_data(ja, a, n), 0);
    assert_int_equal(detector_job_set_data(jb, b, n), 0);
    assert_int_equal(detector_job_run(g), 0);
    assert_int_equal(detector_job_share(ja, g), 0);
    assert_int_equal(detector_job_share(jb, g), 0);
    assert_int_equal(detector_job_apply(da, ja, ia), 0);
    assert_int_equal(detector_job_apply(db, jb, ib), 0);
    detector_job_destroy(g);
    detector_job_destroy(ja);
    detector_job_destroy(jb);
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
    detector_t *da = new_detector_cfg(&cfg, C), *db = new_detector_cfg(&cfg, C);
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
        struct detector_train_info ia2, ib2;
        group_round(da, db, pool, lens, 2, a, b, n, &ia2, &ib2);
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
    }
    detector_destroy(da);
    detector_destroy(db);
    free(pool);
    free(a);
    free(b);
}

/* Review of session 48's api3, fixed by task versions7: share_take decided whether a member
 * already serves the group's model by its serving version number alone. A member trained alone
 * (its own version 1) that joins a group serving the group's version 1 kept its own model when
 * the group's training kept what serves, and recorded the group's kept decision as if it served
 * the group's model. Now it installs the group's model (db forecasts as the lead does) under a
 * number of its own, 2, after its version 1. Linear models only: deterministic, and the group's
 * candidate, fit on the window the lead's serving model was fit on, costs the same and is kept. */
static void test_group_share_same_number_other_model(void **unused)
{
    const int n = 1200, C = 4;
    float *a = make_process(n, 41), *b = make_process(n, 42);
    for (int t = 0; t < n * C; t++)
        b[t] = 3.0f * b[t] + 2.0f; /* another device: another linear model */
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.retrain_every = 0;
    cfg.model_kind = DET_MODEL_LINEAR;
    /* dc, b's twin never trained (version 0), is the control: it installs the group's. */
    detector_t *da = new_detector_cfg(&cfg, C), *db = new_detector_cfg(&cfg, C);
    detector_t *dc = new_detector_cfg(&cfg, C);
    struct detector_result r;
    struct detector_train_info ia, ib, ic;
    detector_job_t *g, *ja, *jb, *jc;
    for (int t = 0; t < n; t++) {
        assert_int_equal(detector_step(da, a + (size_t)C * t, NULL, &r), 0);
        assert_int_equal(detector_step(db, b + (size_t)C * t, NULL, &r), 0);
        assert_int_equal(detector_step(dc, b + (size_t)C * t, NULL, &r), 0);
    }
    /* Each trained alone: each serves its own version 1. */
    assert_int_equal(detector_job_create(&ja, da), 0);
    assert_int_equal(detector_job_create(&jb, db), 0);
    assert_int_equal(detector_job_set_data(ja, a, n), 0);
    assert_int_equal(detector_job_set_data(jb, b, n), 0);
    assert_int_equal(detector_job_run(ja), 0);
    assert_int_equal(detector_job_run(jb), 0);
    assert_int_equal(detector_job_apply(da, ja, &ia), 0);
    assert_int_equal(detector_job_apply(db, jb, &ib), 0);
    assert_int_equal(ia.version, 1);
    assert_int_equal(ib.version, 1);
    detector_job_destroy(ja);
    detector_job_destroy(jb);
    /* db joins da's group; the group's training, led by da, keeps da's version 1. */
    const int lens[1] = {n};
    assert_int_equal(detector_job_create(&g, da), 0);
    assert_int_equal(detector_job_set_pooled(g, a, lens, 1), 0);
    assert_int_equal(detector_job_create(&ja, da), 0);
    assert_int_equal(detector_job_create(&jb, db), 0);
    assert_int_equal(detector_job_create(&jc, dc), 0);
    assert_int_equal(detector_job_set_data(ja, a, n), 0);
    assert_int_equal(detector_job_set_data(jb, b, n), 0);
    assert_int_equal(detector_job_set_data(jc, b, n), 0);
    assert_int_equal(detector_job_run(g), 0);
    assert_int_equal(detector_job_share(ja, g), 0);
    assert_int_equal(detector_job_share(jb, g), 0);
    assert_int_equal(detector_job_share(jc, g), 0);
    assert_int_equal(detector_job_apply(da, ja, &ia), 0);
    assert_int_equal(detector_job_apply(db, jb, &ib), 0);
    assert_int_equal(detector_job_apply(dc, jc, &ic), 0);
    assert_int_equal(ic.swapped, 1);
    assert_int_equal(ic.version, 1); /* installed under the group's serving number */
    assert_int_equal(ia.swapped, 0); /* the situation this needs: the group kept version 1 */
    /* The same rows into both, then each one's forecast: the same model forecasts the same. */
    for (int t = n - 50; t < n; t++) {
        assert_int_equal(detector_step(da, a + (size_t)C * t, NULL, &r), 0);
        assert_int_equal(detector_step(dc, a + (size_t)C * t, NULL, &r), 0);
        assert_int_equal(detector_step(db, a + (size_t)C * t, NULL, &r), 0);
    }
    assert_int_equal(r.version, 2); /* db's serving number: its own, after its version 1 */
    float fa[4], fb[4], fc[4], band[4];
    assert_int_equal(detector_forecast(da, fa, band, 1), 0);
    assert_int_equal(detector_forecast(db, fb, band, 1), 0);
    assert_int_equal(detector_forecast(dc, fc, band, 1), 0);
    print_message("kept group version %u: db swapped %d, forecasts lead %.4f db %.4f dc %.4f\n",
                  ia.version, ib.swapped, (double)fa[0], (double)fb[0], (double)fc[0]);
    assert_memory_equal(fa, fc, sizeof fa); /* the control: the group's model forecasts so */
    /* db serves its own version 1, not the group's model: it installs the group's under a
     * number of its own, after its newest (main: swapped 0, its own forecast, version 1). */
    assert_int_equal(ib.swapped, 1);
    assert_int_equal(ib.version, 2);
    assert_memory_equal(fa, fb, sizeof fa);
    detector_job_destroy(g);
    detector_job_destroy(ja);
    detector_job_destroy(jb);
    /* The group keeps version 1 again: db, serving the group's model under its own number 2,
     * records the kept decision (3, as da) and installs nothing again. */
    group_round(da, db, a, lens, 1, a, b, n, &ia, &ib);
    assert_int_equal(ia.swapped, 0);
    assert_int_equal(ib.swapped, 0);
    assert_int_equal(ib.version, 3);
    assert_int_equal(ia.version, 3);
    assert_int_equal(detector_step(db, a + (size_t)C * (n - 1), NULL, &r), 0);
    assert_int_equal(r.version, 2);
    detector_job_destroy(jc);
    detector_destroy(da);
    detector_destroy(db);
    detector_destroy(dc);
    free(a);
    free(b);
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
        ds[i] = new_detector_cfg(&cfg, C);
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
    detector_t *a = new_detector_cfg(&cfg, C), *b = NULL, *c = NULL, *e = NULL;
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
        ds[i] = new_detector_cfg(&cfg, C);
        db[i] = new_detector_cfg(&cfg, C);
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
    detector_t *two = new_detector_cfg(&cfg, 2);
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
        d[i] = new_detector_cfg(&cfg, C);
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
        detector_t *d = new_detector_cfg(&cfg, C);
        struct detector_result res;
        for (int t = 0; t < N; t++) {
            assert_int_equal(detector_step_ts(d, (int64_t)t * 1000, x + (size_t)C * t, NULL, &res),
                             0);
            if (!res.want_train)
                continue;
            struct detector_train_info info;
            train_on(d, x, t + 1, &info);
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

const struct CMUnitTest detector_calib_tests[] = {
    cmocka_unit_test(test_group_share),
    cmocka_unit_test(test_group_share_same_number_other_model),
    cmocka_unit_test(test_group_healthy_quiet),
    cmocka_unit_test(test_save_shared_round_trip),
    cmocka_unit_test(test_share_batch_matches_single),
    cmocka_unit_test(test_min_rows_calibration),
    cmocka_unit_test(test_model_kind),
};
const size_t detector_calib_count = sizeof detector_calib_tests / sizeof detector_calib_tests[0];

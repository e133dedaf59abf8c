/* tests/test_detector_number.c: a job's number when the detector's next number was taken while
 * it ran (detector_job_number_after; docs/reliability.md, "A put-back member serves its group's
 * model (session 51)"). Part of test_detector: tests/test_detector.c runs it; the fixtures are in
 * tests/test_detector_fx.c. */

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

/* A group training of da (the lead) and db on rows a and b (n each, pooled a then b): the jobs
 * made, run and shared, not applied. */
static void group_jobs(detector_t *da, detector_t *db, float *pool, const float *a, const float *b,
                       int n, detector_job_t **g, detector_job_t **ja, detector_job_t **jb)
{
    const int C = 4, lens[2] = {n, n};
    memcpy(pool, a, sizeof(float) * (size_t)n * C);
    memcpy(pool + (size_t)n * C, b, sizeof(float) * (size_t)n * C);
    assert_int_equal(detector_job_create(g, da), 0);
    assert_int_equal(detector_job_set_pooled(*g, pool, lens, 2), 0);
    assert_int_equal(detector_job_create(ja, da), 0);
    assert_int_equal(detector_job_create(jb, db), 0);
    assert_int_equal(detector_job_set_data(*ja, a, n), 0);
    assert_int_equal(detector_job_set_data(*jb, b, n), 0);
}

/* The daemon's put-back case (it_stoptrain PutBackWhileGroupTrains): while the group's second
 * training runs, db gets a PUT of weights under the number the training was given (2) and a
 * rollback to 1, the version its job began with, so its job is not stale and the group's swap
 * installs on it. Numbered after db's 2, db serves the group's model as its 3 (before task
 * versions8 the job installed it as 2, the PUT's number) and its next training is 4; da, whose
 * newest is 1, keeps the group's 2 (number_after below the job's number changes nothing).
 * UINT32_MAX leaves the job as it was. Linear models: deterministic. */
static void test_job_number_after(void **unused)
{
    const int n = 1200, C = 4;
    float *a = make_linear(n, 61), *b = make_linear(n, 62), *a2 = make_linear(n, 63),
          *b2 = make_linear(n, 64), *pool = malloc(sizeof(float) * 2 * (size_t)n * C);
    assert_non_null(pool);
    for (int t = 0; t < n * C; t++) { /* another regime: the linear model of a, b fails it */
        a2[t] = 3.0f * a2[t] - 20.0f;
        b2[t] = 3.0f * b2[t] - 20.0f;
    }
    struct detector_config cfg;
    detector_config_default(&cfg);
    cfg.retrain_every = 0;
    cfg.model_kind = DET_MODEL_LINEAR;
    detector_t *da = new_detector_cfg(&cfg, C), *db = new_detector_cfg(&cfg, C);
    struct detector_result r;
    for (int t = 0; t < n; t++) {
        assert_int_equal(detector_step(da, a + (size_t)C * t, NULL, &r), 0);
        assert_int_equal(detector_step(db, b + (size_t)C * t, NULL, &r), 0);
    }
    struct detector_train_info ia, ib;
    detector_job_t *g, *ja, *jb;
    group_jobs(da, db, pool, a, b, n, &g, &ja, &jb); /* the group's first: version 1 */
    assert_int_equal(detector_job_run(g), 0);
    assert_int_equal(detector_job_share(ja, g), 0);
    assert_int_equal(detector_job_share(jb, g), 0);
    assert_int_equal(detector_job_apply(da, ja, &ia), 0);
    assert_int_equal(detector_job_apply(db, jb, &ib), 0);
    assert_int_equal(ib.version, 1);
    detector_job_destroy(g);
    detector_job_destroy(ja);
    detector_job_destroy(jb);

    group_jobs(da, db, pool, a2, b2, n, &g, &ja, &jb); /* the second: version 2 */
    unsigned char v1[4096];
    size_t len;
    assert_int_equal(detector_pred_save(db, v1, sizeof v1, &len), 0);
    assert_int_equal(detector_set_pred(db, v1, len, 2, NULL), 0); /* the PUT takes 2 */
    assert_int_equal(detector_set_pred(db, v1, len, 1, NULL), 0); /* the rollback to 1 */
    assert_int_equal(detector_job_run(g), 0);
    assert_int_equal(detector_job_share(ja, g), 0);
    assert_int_equal(detector_job_share(jb, g), 0);
    detector_job_number_after(ja, 1);
    detector_job_number_after(jb, 2);
    assert_int_equal(detector_job_apply(da, ja, &ia), 0);
    assert_int_equal(detector_job_apply(db, jb, &ib), 0);
    print_message("put back: da version %u swapped %d, db version %u swapped %d\n", ia.version,
                  ia.swapped, ib.version, ib.swapped);
    assert_int_equal(ia.swapped, 1); /* the situation this needs: the group swapped */
    assert_int_equal(ia.version, 2);
    assert_int_equal(ib.swapped, 1);
    assert_int_equal(ib.version, 3); /* main: 2, the PUT's number */
    detector_job_destroy(g);
    detector_job_destroy(ja);
    detector_job_destroy(jb);
    /* The same rows into both: db serves the group's model, as its 3. */
    for (int t = n - 50; t < n; t++) {
        assert_int_equal(detector_step(da, a2 + (size_t)C * t, NULL, &r), 0);
        assert_int_equal(r.version, 2);
        assert_int_equal(detector_step(db, a2 + (size_t)C * t, NULL, &r), 0);
        assert_int_equal(r.version, 3);
    }
    float fa[4], fb[4], band[4];
    assert_int_equal(detector_forecast(da, fa, band, 1), 0);
    assert_int_equal(detector_forecast(db, fb, band, 1), 0);
    assert_memory_equal(fa, fb, sizeof fa);

    /* db's own next training takes 4; the one after, numbered after 5, takes 6 (a number not
     * above the job's, or one that cannot be passed, leaves it), and the next 7. */
    train_on(db, b2, n, &ib);
    assert_int_equal(ib.version, 4);
    detector_job_t *j;
    assert_int_equal(detector_job_create(&j, db), 0);
    assert_int_equal(detector_job_set_data(j, b2, n), 0);
    assert_int_equal(detector_job_run(j), 0);
    detector_job_number_after(j, UINT32_MAX);
    detector_job_number_after(j, 3);
    detector_job_number_after(j, 5);
    detector_job_number_after(NULL, 5);
    assert_int_equal(detector_job_apply(db, j, &ib), 0);
    assert_int_equal(ib.version, 6);
    detector_job_destroy(j);
    assert_int_equal(detector_job_create(&j, db), 0); /* apply moved the next number past it */
    assert_int_equal(detector_job_set_data(j, b2, n), 0);
    assert_int_equal(detector_job_run(j), 0);
    assert_int_equal(detector_job_apply(db, j, &ib), 0);
    assert_int_equal(ib.version, 7);
    detector_job_destroy(j);
    detector_destroy(da);
    detector_destroy(db);
    free(pool);
    free(a);
    free(b);
    free(a2);
    free(b2);
}

const struct CMUnitTest detector_number_tests[] = {
    cmocka_unit_test(test_job_number_after),
};
const size_t detector_number_count = sizeof detector_number_tests / sizeof detector_number_tests[0];

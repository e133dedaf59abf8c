/* tests/test_storage_rows.c: unit tests of storage/ through a store's chunk rows: overwrites that
 * span several rows, compaction of small rows, range queries at the edges of rows. Moved
 * unchanged from tests/test_storage_chunks.c (whose tests are the codecs' own, without a
 * store), to keep each file a readable size; tests/test_storage.c's main() runs this file's
 * table right after that file's, in the order they had there. */
#include "storage_fx.h"

/* Overwrites that span several rows, fall between rows, or reach before the first: the newest
 * value wins per (ts, channel), other channels stay, rows never overlap, points stay exact. */
static void test_overwrite_across_chunks(void **state)
{
    fx_t *f = *state;
    /* Rows of 100 points each at even ts 0, 2, ..., 1998 (10 rows). */
    for (int r = 0; r < 10; r++)
        write_series(f->s, "ow", r * 200, 2, 100, 0);
    assert_int_equal(device(f->s, "ow", 0).points, 1000);
    assert_true(chunk_rows(f->dir, "ow", NULL) >= 1);
    /* Overwrite channel a only at ts 150..650 (odd ones are new points between old ones), and
     * a point before the first. */
    batch_t b;
    batch_init(&b);
    static const char *const a[] = {"a"};
    for (int64_t ts = 150; ts <= 650; ts++) {
        double v = -(double)ts;
        add_point(&b, "ow", ts, 1, a, &v);
    }
    double vfirst = 7.5;
    add_point(&b, "ow", -5, 1, a, &vfirst);
    assert_int_equal(store_write(f->s, &b), 0);
    batch_deinit(&b);
    int64_t pts;
    chunk_rows(f->dir, "ow", &pts);
    devinfo_t d = device(f->s, "ow", 0);
    assert_int_equal(d.points, 1000 + 250 + 1);
    assert_int_equal(pts, d.points);
    assert_int_equal(d.first, -5);
    assert_int_equal(d.last, 1998);
    got_t *g = malloc(sizeof *g);
    /* Every point of [-10, 700), checked. */
    assert_int_equal(query(f->s, "ow", -10, 700, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 1 + 75 + 501 + 24);
    for (size_t i = 0; i < g->n; i++) {
        int64_t ts = g->ts[i];
        if (i > 0)
            assert_true(ts > g->ts[i - 1]);
        if (ts == -5) {
            assert_true(g->nv[i] == 1 && got_val(g, i, "a") == 7.5);
        } else if (ts >= 150 && ts <= 650) {
            assert_true(got_val(g, i, "a") == -(double)ts);
            if (ts % 2 == 0)
                assert_true(got_val(g, i, "b") == ow_val(ts, 1, 0));
            else
                assert_int_equal(g->nv[i], 1);
        } else {
            assert_true(ts % 2 == 0);
            assert_true(got_val(g, i, "a") == ow_val(ts, 0, 0) &&
                        got_val(g, i, "b") == ow_val(ts, 1, 0));
        }
    }
    /* A retried batch (the same points again) changes nothing. */
    write_series(f->s, "ow", 1000, 2, 100, 0);
    assert_int_equal(device(f->s, "ow", 0).points, 1251);
    /* A whole overwrite of everything with new values, in one batch, then read back. */
    write_series(f->s, "ow", 0, 1, 2000, 0.5);
    d = device(f->s, "ow", 0);
    assert_int_equal(d.points, 2001);
    chunk_rows(f->dir, "ow", &pts);
    assert_int_equal(pts, 2001);
    assert_int_equal(query(f->s, "ow", 0, 2000, NULL, 0, 1000, 1, g), 0);
    assert_int_equal(g->n, 1000); /* the newest first */
    for (size_t i = 0; i < g->n; i++) {
        int64_t ts = 1999 - (int64_t)i;
        assert_int_equal(g->ts[i], ts);
        assert_true(got_val(g, i, "a") == ow_val(ts, 0, 0.5) &&
                    got_val(g, i, "b") == ow_val(ts, 1, 0.5));
    }
    /* Late data far behind (more than a span): merged where it belongs. */
    write_series(f->s, "ow", -10 * (int64_t)STORE_CHUNK_SPAN_MS, 1000, 3, 0);
    assert_int_equal(device(f->s, "ow", 0).points, 2004);
    assert_int_equal(device(f->s, "ow", 0).first, -10 * (int64_t)STORE_CHUNK_SPAN_MS);
    assert_int_equal(query(f->s, "ow", INT64_MIN, 0, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 4);
    free(g);
}

/* Rows of a few points (pending readings written out early, runs after an overwrite in the same
 * transaction) are small; compaction merges them into full rows (within the next transaction at
 * STORE_COMPACT_ROWS of them, else when the writer is idle), and nothing read changes. */
static void test_compaction(void **state)
{
    fx_t *f = *state;
    const int N = 5 * STORE_COMPACT_ROWS + 3;
    for (int i = 0; i < N; i++) {
        write_series(f->s, "c1", 1000 * i, 1, 1, 0);
        assert_int_equal(store__test_pend_flush(f->s), 0); /* a row of one point */
    }
    int64_t pts;
    /* Idle compaction follows the last commit; wait for it (bounded: 20 s). */
    size_t rows = 0;
    for (int tries = 0; tries < 200; tries++) {
        rows = chunk_rows(f->dir, "c1", &pts);
        if (rows == 1)
            break;
        usleep(100 * 1000);
    }
    assert_int_equal(rows, 1);
    assert_int_equal(pts, N);
    assert_int_equal(device(f->s, "c1", 0).points, N);
    got_t *g = malloc(sizeof *g);
    assert_int_equal(query(f->s, "c1", 0, INT64_MAX, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, (size_t)N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(g->ts[i], 1000 * i);
        assert_true(got_val(g, (size_t)i, "a") == ow_val(1000 * i, 0, 0));
    }
    /* Batches queued while the writer is held are written by one transaction. The first
     * reaches back before c2's newest point, so c2's runs in that transaction go to rows
     * directly: each later batch its own small row; the compaction forced by
     * STORE_COMPACT_ROWS small rows runs inside that transaction, so the rows are merged by the
     * time the batches are acknowledged. */
    const int M = 3 * STORE_COMPACT_ROWS;
    write_series(f->s, "c2", 1000, 1, 1, 0);
    late_small_rows(f->s, "c2", M, 500, 1000, 1, 0, 1);
    rows = chunk_rows(f->dir, "c2", &pts);
    assert_int_equal(pts, M + 2);
    assert_int_equal(rows, 1);
    /* Reopen: the same data, the same counters. */
    store_close(f->s);
    f->s = open_store(f->dir, 0);
    assert_int_equal(device(f->s, "c1", 0).points, N);
    assert_int_equal(device(f->s, "c2", 0).points, M + 2);
    assert_int_equal(query(f->s, "c2", 0, 2000, NULL, 0, 0, 1, g), 0);
    assert_int_equal(g->n, (size_t)(M + 2));
    assert_int_equal(g->ts[0], 1000 + M);
    assert_int_equal(g->ts[M + 1], 500);
    free(g);
}

/* Range queries at the edges of rows: from and to inside a row, on its t0 and t_last, between
 * rows, before everything; descending; pagination by limit. */
static void test_range_boundaries(void **state)
{
    fx_t *f = *state;
    /* 3 rows: ts 0..99, 1000..1099, and one starting just before the span ends. */
    write_series(f->s, "rb", 0, 1, 100, 0);
    write_series(f->s, "rb", 1000, 1, 100, 0);
    write_series(f->s, "rb", STORE_CHUNK_SPAN_MS, 1, 2, 0);
    got_t *g = malloc(sizeof *g);
    struct {
        int64_t from, to;
        size_t n;
        int64_t first;
    } cases[] = {
        {0, 1, 1, 0},
        {99, 100, 1, 99},
        {100, 1000, 0, 0},
        {50, 1050, 100, 50},
        {99, 1001, 2, 99},
        {1099, 1100, 1, 1099},
        {-100, 0, 0, 0},
        {1100, STORE_CHUNK_SPAN_MS, 0, 0},
        {STORE_CHUNK_SPAN_MS + 1, INT64_MAX, 1, STORE_CHUNK_SPAN_MS + 1},
        {INT64_MIN, INT64_MAX, 202, 0},
        {5, 5, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(query(f->s, "rb", cases[i].from, cases[i].to, NULL, 0, 0, 0, g), 0);
        assert_int_equal(g->n, cases[i].n);
        if (g->n)
            assert_int_equal(g->ts[0], cases[i].first);
        for (size_t k = 0; k < g->n; k++)
            assert_true(g->ts[k] >= cases[i].from && g->ts[k] < cases[i].to);
        /* The same descending: the same points, reversed. */
        got_t *h = malloc(sizeof *h);
        assert_int_equal(query(f->s, "rb", cases[i].from, cases[i].to, NULL, 0, 0, 1, h), 0);
        assert_int_equal(h->n, g->n);
        for (size_t k = 0; k < g->n; k++)
            assert_int_equal(h->ts[k], g->ts[g->n - 1 - k]);
        free(h);
    }
    /* Pagination: pages of 7 from 0, each from the last ts + 1, give every point once. */
    int64_t from = 0, seen = 0, prev = -1;
    for (int pages = 0; pages < 100; pages++) {
        assert_int_equal(query(f->s, "rb", from, INT64_MAX, NULL, 0, 7, 0, g), 0);
        if (g->n == 0)
            break;
        assert_true(g->n <= 7);
        for (size_t k = 0; k < g->n; k++) {
            assert_true(g->ts[k] > prev);
            prev = g->ts[k];
        }
        seen += (int64_t)g->n;
        from = prev + 1;
    }
    assert_int_equal(seen, 202);
    /* The newest readings (desc, limit 1), as the pipeline asks at restart. */
    assert_int_equal(query(f->s, "rb", INT64_MIN, INT64_MAX, NULL, 0, 1, 1, g), 0);
    assert_int_equal(g->n, 1);
    assert_int_equal(g->ts[0], STORE_CHUNK_SPAN_MS + 1);
    /* A channel filter skips points without it (c exists only at ts 5). */
    const char *cc[] = {"c"};
    double v = 3;
    write1(f->s, "rb", 5, 1, cc, &v);
    assert_int_equal(query(f->s, "rb", INT64_MIN, INT64_MAX, cc, 1, 0, 1, g), 0);
    assert_int_equal(g->n, 1);
    assert_int_equal(g->ts[0], 5);
    assert_true(got_val(g, 0, "c") == 3);
    free(g);
}

const struct CMUnitTest storage_rows_tests[] = {
    cmocka_unit_test_setup_teardown(test_overwrite_across_chunks, setup, teardown),
    cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
    cmocka_unit_test_setup_teardown(test_range_boundaries, setup, teardown),
};
const size_t storage_rows_ntests = sizeof storage_rows_tests / sizeof storage_rows_tests[0];

/* tests/test_storage_migrate.c: unit tests of storage/, schema migrations: a database of each
 * schema version 1 to 7, filled and opened, is upgraded in place with its data intact.
 *
 * Moved from tests/test_storage.c, whose main() runs this file's table with the others. */
#include "storage_fx.h"

/* A database left by the first release (schema 1) is upgraded in place, its data intact. */
static void test_migrate_v1(void **state)
{
    fx_t *f = *state;
    char path[128];
    old_schema(f, 1, path, sizeof path);
    /* What schema 1 holds after one reading of "old": temp=21.5 at ts 10. */
    unsigned char blob[32];
    size_t n = store__pair_put(blob, 0, 21.5);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO devices VALUES(1, 'old', 5, '{\"k\":2}', 10, 10, 1);"
                                  "INSERT INTO channels VALUES(1, 0, 'temp')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT INTO readings VALUES(1, 10, ?1)", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_blob(st, 1, blob, (int)n, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    /* No pipeline tables yet. */
    assert_int_not_equal(sqlite3_exec(db, "SELECT * FROM models", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    f->s = open_store(f->dir, 0);
    devinfo_t d = device(f->s, "old", 0);
    assert_string_equal(d.attrs, "{\"k\":2}");
    assert_int_equal(d.points, 1);
    got_t *g = malloc(sizeof *g);
    assert_int_equal(query(f->s, "old", 0, 100, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 1);
    assert_true(got_val(g, 0, "temp") == 21.5);
    /* New readings go on; the new tables work. */
    const char *ch[] = {"temp", "rpm"};
    const double v[] = {22.5, 1500};
    write1(f->s, "old", 10, 2, ch, v);
    assert_int_equal(store_model_put(f->s, "old", 1, "{}", "c", 1, 5), 0);
    assert_int_equal(store_event_put(f->s, "old", 1, 10, -1, NULL), 0);
    assert_int_equal(store_flush(f->s), 0);
    models_t *m = models(f->s, "old", 0);
    assert_int_equal(m->n, 1);
    free(m);
    assert_int_equal(query(f->s, "old", 0, 100, NULL, 0, 0, 0, g), 0);
    assert_true(got_val(g, 0, "temp") == 22.5 && got_val(g, 0, "rpm") == 1500);
    free(g);
    store_close(f->s);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* Reopening a current database migrates nothing. */
    f->s = open_store(f->dir, 0);
    assert_int_equal(device(f->s, "old", 0).points, 1);
}

/* A schema 2 database (one row per (device, ts)) is migrated: its readings become chunks, every
 * value comes back bit for bit, the counters are kept, the old table is gone. */
static void test_migrate_v2(void **state)
{
    fx_t *f = *state;
    char path[128];
    old_schema(f, 2, path, sizeof path);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    enum { NPTS = 2500, NCH = 40 };
    assert_int_equal(sqlite3_exec(db,
                                  "BEGIN;"
                                  "INSERT INTO devices VALUES(1, 'm1', 5, '{}', 0, 2499000, 2500);"
                                  "INSERT INTO devices VALUES(2, 'm2', 5, '{}', 7, 7, 1);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (int c = 0; c < NCH; c++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO channels VALUES(1, %d, 'c%d')", c, c);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    assert_int_equal(sqlite3_exec(db, "INSERT INTO channels VALUES(2, 0, 'x')", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT INTO readings VALUES(?1, ?2, ?3)", -1, &st, NULL),
        SQLITE_OK);
    unsigned char blob[NCH * STORE_PAIR_MAX];
    for (int t = 0; t < NPTS; t++) {
        size_t len = 0;
        for (int c = 0; c < NCH; c += 1 + t % 3) /* sparse channels, some past idx 31 */
            len += store__pair_put(blob + len, c, c == 7 ? -0.0 : t * 0.01 + c * 1e-7);
        sqlite3_bind_int64(st, 1, 1);
        sqlite3_bind_int64(st, 2, (int64_t)t * 1000);
        sqlite3_bind_blob(st, 3, blob, (int)len, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    size_t len = store__pair_put(blob, 0, 1e300);
    sqlite3_bind_int64(st, 1, 2);
    sqlite3_bind_int64(st, 2, 7);
    sqlite3_bind_blob(st, 3, blob, (int)len, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    f->s = open_store(f->dir, 0);
    assert_int_equal(device(f->s, "m1", 0).points, NPTS);
    assert_int_equal(device(f->s, "m2", 0).points, 1);
    int64_t pts;
    size_t rows = chunk_rows(f->dir, "m1", &pts);
    assert_int_equal(pts, NPTS);
    assert_true(rows >= 3 && rows < 20);
    got_t *g = malloc(sizeof *g);
    const char *sel[] = {"c0", "c7", "c31", "c39"};
    for (int64_t from = 0; from < NPTS * 1000; from += 1000 * 1000) {
        assert_int_equal(query(f->s, "m1", from, from + 1000 * 1000, sel, 4, 0, 0, g), 0);
        assert_int_equal(g->n, 1000 < NPTS - from / 1000 ? 1000 : NPTS - from / 1000);
        for (size_t i = 0; i < g->n; i++) {
            int t = (int)(g->ts[i] / 1000);
            assert_int_equal(g->ts[i], (int64_t)t * 1000);
            for (int c = 0, k = 0; c < NCH; c += 1 + t % 3) {
                if (c != 0 && c != 7 && c != 31 && c != 39)
                    continue;
                double want = c == 7 ? -0.0 : t * 0.01 + c * 1e-7;
                assert_int_equal(bits_of(g->vals[i][k]), bits_of(want));
                k++;
            }
        }
    }
    assert_int_equal(query(f->s, "m2", 0, 100, NULL, 0, 0, 0, g), 0);
    assert_true(g->n == 1 && g->ts[0] == 7 && got_val(g, 0, "x") == 1e300);
    free(g);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    assert_int_not_equal(sqlite3_exec(db, "SELECT 1 FROM readings_v2", NULL, NULL, NULL),
                         SQLITE_OK);
    sqlite3_close(db);
    f->s = open_store(f->dir, 0);
}

/* A version 3 database (rows only, no log) is migrated to the log's schema: its readings stay
 * readable, new ones go to pending readings, and both survive a reopen. */
static void test_migrate_v3(void **state)
{
    fx_t *f = *state;
    char path[128];
    old_schema(f, 3, path, sizeof path);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO devices VALUES(7, 'v3', 5, '{}', 0, 99, 100);"
                                  "INSERT INTO channels VALUES(7, 0, 'a');"
                                  "INSERT INTO channels VALUES(7, 1, 'b');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    store_cell_t cells[200];
    for (int i = 0; i < 200; i++)
        cells[i] = (store_cell_t){i / 2, i % 2, ow_val(i / 2, i % 2, 0)};
    store_codec_t codec = {0};
    const unsigned char *data;
    size_t len;
    assert_int_equal(store__chunk_encode(&codec, cells, 200, &data, &len), 0);
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT INTO readings VALUES(7, 0, 99, 100, ?1)", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_blob(st, 1, data, (int)len, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
    store__codec_free(&codec);

    f->s = open_store(f->dir, 0);
    check_series(f->s, "v3", 0, 100, 0);
    write_series(f->s, "v3", 100, 1, 10, 0);
    write_series(f->s, "new", 0, 1, 3, 0);
    check_series(f->s, "v3", 0, 110, 0);
    int64_t pts;
    assert_int_equal(chunk_rows(f->dir, "v3", &pts), 1);
    assert_int_equal(pts, 100);
    store_close(f->s);
    f->s = open_store(f->dir, 0);
    check_series(f->s, "v3", 0, 110, 0);
    check_series(f->s, "new", 0, 3, 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* A version 4 database (checkpoints inline in models) is migrated: each distinct checkpoint
 * becomes one ckpts row that its versions refer to, every version reads back the same bytes,
 * and the saved detectors (inline checkpoints, opaque to the store) load as they were. */
static void test_migrate_v4(void **state)
{
    fx_t *f = *state;
    char path[128];
    old_schema(f, 4, path, sizeof path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    /* Three members of a group with versions 1 and 2 (the same two checkpoints), one device
     * with its own, a version without one, and the members' saved detectors. */
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO devices(id, name, created_ms) VALUES(1, 'm1', 1), (2, 'm2', 2),"
                     " (3, 'm3', 3), (4, 'own', 4);"
                     "INSERT INTO models VALUES(1, 1, 5, '{}', x'0102030405'),"
                     " (2, 1, 5, '{}', x'0102030405'), (3, 1, 5, '{}', x'0102030405'),"
                     " (1, 2, 6, '{}', x'0a0b'), (2, 2, 6, '{}', x'0a0b'),"
                     " (3, 2, 6, '{}', x'0a0b'), (4, 1, 5, '{}', x'ff'),"
                     " (4, 2, 6, '{\"v\":2}', NULL);"
                     "INSERT INTO detectors VALUES(1, 7, 70, x'aa01'), (2, 7, 71, x'aa02'),"
                     " (3, 7, 72, x'aa03');",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    f->s = open_store(f->dir, 0);
    assert_int_equal(sql_int(f->dir, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    /* models is a rowid table without the inline column, and every version came across. */
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM sqlite_master WHERE name='models_v4'"),
                     0);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM pragma_table_info('models')"
                                     " WHERE name='ckpt'"),
                     0);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM models"), 8);
    assert_int_equal(sql_int(f->dir, "SELECT created_ms FROM models WHERE device_id=1"
                                     " AND version=2"),
                     6);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM ckpts"), 3);
    assert_int_equal(sql_int(f->dir, "SELECT refs FROM ckpts WHERE data=x'0102030405'"), 3);
    assert_int_equal(sql_int(f->dir, "SELECT refs FROM ckpts WHERE data=x'0a0b'"), 3);
    check_refs(f->dir);
    const char *names[] = {"m1", "m2", "m3"};
    for (int i = 0; i < 3; i++) {
        models_t *m = models(f->s, names[i], 0);
        assert_int_equal(m->n, 2);
        assert_int_equal(m->has_ckpt[0], 1);
        assert_int_equal(m->has_ckpt[1], 1);
        free(m);
        m = calloc(1, sizeof *m);
        assert_int_equal(store_model_get(f->s, names[i], 1, on_model_data, m), 0);
        assert_int_equal(m->ckpt_len, 5);
        assert_memory_equal(m->ckpt, "\x01\x02\x03\x04\x05", 5);
        assert_int_equal(store_model_get(f->s, names[i], -1, on_model_data, m), 0);
        assert_int_equal(m->got_version, 2);
        assert_int_equal(m->ckpt_len, 2);
        assert_memory_equal(m->ckpt, "\x0a\x0b", 2);
        free(m);
    }
    models_t *m = models(f->s, "own", 0);
    assert_int_equal(m->n, 2);
    assert_int_equal(m->has_ckpt[0], 1);
    assert_int_equal(m->has_ckpt[1], 0);
    free(m);
    dets_t d = {0};
    assert_int_equal(store_detectors_load(f->s, on_detector, &d), 0);
    assert_int_equal(d.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(d.dev[i], names[i]);
        assert_int_equal(d.last[i], 70 + i);
        assert_int_equal(d.len[i], 2);
        assert_int_equal(d.ckpt_id[i], 0);
    }
    /* The migrated rows take part in the counting: trimming version 1 everywhere drops its
     * checkpoint. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_model_put(f->s, names[i], 3, "{}", "\x0a\x0b", 2, 2), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM ckpts"), 2);
    assert_int_equal(sql_int(f->dir, "SELECT refs FROM ckpts WHERE data=x'0a0b'"), 6);
    check_refs(f->dir);
}

/* A database of schema version with one device, name, opened (migrated) as f->s. */
static void migrated_with_device(fx_t *f, int version, const char *name)
{
    char path[128], sql[128];
    old_schema(f, version, path, sizeof path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    snprintf(sql, sizeof sql, "INSERT INTO devices(id, name, created_ms) VALUES(1, '%s', 1)", name);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    f->s = open_store(f->dir, 0);
    assert_int_equal(sql_int(f->dir, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
}

/* A version 5 database gains the preds table; its devices and everything else stay. */
static void test_migrate_v5(void **state)
{
    fx_t *f = *state;
    migrated_with_device(f, 5, "v5");
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM sqlite_master WHERE name='preds'"), 1);
    unsigned char buf[256];
    store_pred_t b = pred_block(buf, 64, 0, -1, 0);
    assert_int_equal(store_pred_put(f->s, "v5", &b, NULL, NULL), 0);
    assert_int_equal(store_flush(f->s), 0);
    preds_got_t *g = calloc(1, sizeof *g);
    assert_non_null(g);
    assert_int_equal(store_preds_read(f->s, "v5", 0, 1, on_pred_read, g), 0);
    assert_int_equal(g->n, 1);
    assert_memory_equal(g->bytes[0], buf, 64);
    free(g);
}

/* A version 6 database gains the maint table and keeps its devices. */
static void test_migrate_v6(void **state)
{
    fx_t *f = *state;
    migrated_with_device(f, 6, "v6");
    assert_int_equal(store_maint_put(f->s, "v6", 1, 2, "x"), 0);
    assert_int_equal(store_flush(f->s), 0);
    maint_got_t *g = calloc(1, sizeof *g);
    assert_non_null(g);
    assert_int_equal(store_maint_load(f->s, on_maint, g), 0);
    assert_int_equal(g->n, 1);
    assert_string_equal(g->dev[0], "v6");
    assert_string_equal(g->note[0], "x");
    free(g);
}

/* A version 7 database gains the dbnames table and keeps its devices. */
static void test_migrate_v7(void **state)
{
    fx_t *f = *state;
    migrated_with_device(f, 7, "v7");
    assert_int_equal(store_dbname_put(f->s, "telegraf"), 0);
    names_got_t g = {0};
    assert_int_equal(store_dbnames_load(f->s, 0, on_dbname, &g), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.name[0], "telegraf");
}

const struct CMUnitTest storage_migrate_tests[] = {
    cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
    cmocka_unit_test_setup_teardown(test_migrate_v2, setup, teardown),
    cmocka_unit_test_setup_teardown(test_migrate_v3, setup, teardown),
    cmocka_unit_test_setup_teardown(test_migrate_v4, setup, teardown),
    cmocka_unit_test_setup_teardown(test_migrate_v5, setup, teardown),
    cmocka_unit_test_setup_teardown(test_migrate_v6, setup, teardown),
    cmocka_unit_test_setup_teardown(test_migrate_v7, setup, teardown),
};
const size_t storage_migrate_ntests =
    sizeof storage_migrate_tests / sizeof storage_migrate_tests[0];

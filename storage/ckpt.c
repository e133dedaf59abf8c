/* storage/ckpt.c: model checkpoints stored once, whoever refers to them (schema 5).
 *
 * A device group's members all serve one model: before schema 5 every member stored its own
 * copy of the same checkpoint in each of its model versions and in its saved detector (226 MB of
 * `models` at 100k devices in groups of 256). Now a checkpoint is a row of `ckpts(id, hash,
 * refs, data)` found by its bytes: `models.ckpt_id` and `detectors.ckpt_id` refer to it, so
 * identical checkpoints (a group version's, whichever member records it) are one row, and disk
 * and restore time grow with groups rather than members.
 *
 * Invariants: no two rows hold the same bytes (a put looks its bytes up first: the hash, then
 * the bytes themselves, so a hash collision costs a second row, never a wrong model); refs is
 * the number of models and detectors rows whose ckpt_id is the row's id, kept by the schema's
 * triggers on every insert, update and delete of those rows, which also delete a row whose refs
 * fall to 0. A row found or added for a put that then wrote nothing keeps refs 0 and is removed
 * by the caller (store__ckpt_drop_unused).
 *
 * Threads: the writer thread (its statements), or the opening thread during the migration. */
#include "err.h"
#include "log.h"
#include "storage_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char store__sql_ckpt_find[] = "SELECT id FROM ckpts WHERE hash=?1 AND data=?2";
const char store__sql_ckpt_add[] = "INSERT INTO ckpts(hash, refs, data) VALUES(?1, 0, ?2)";

/* 64-bit FNV-1a: spreads checkpoints over the hash index; equality is decided by the bytes. */
static int64_t ckpt_hash(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3u;
    }
    return (int64_t)h;
}

int store__ckpt_add(sqlite3 *db, sqlite3_stmt *find, sqlite3_stmt *add, const void *p, size_t len,
                    int64_t *id)
{
    const int64_t h = ckpt_hash(p, len);
    sqlite3_bind_int64(find, 1, h);
    sqlite3_bind_blob64(find, 2, p, len, SQLITE_STATIC);
    int rc = sqlite3_step(find);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(find, 0);
    sqlite3_reset(find);
    sqlite3_clear_bindings(find);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc != SQLITE_DONE)
        return store__status(db, rc) ? store__status(db, rc) : ERR_IO;
    sqlite3_bind_int64(add, 1, h);
    sqlite3_bind_blob64(add, 2, p, len, SQLITE_STATIC);
    rc = sqlite3_step(add);
    sqlite3_reset(add);
    sqlite3_clear_bindings(add);
    if (rc != SQLITE_DONE)
        return store__status(db, rc) ? store__status(db, rc) : ERR_IO;
    *id = sqlite3_last_insert_rowid(db);
    return 0;
}

/* Schema 4 -> 5: every models row's inline checkpoint moves to ckpts (one row per distinct
 * checkpoint); the triggers count the references. The keys are collected first, so no row is
 * updated under a running scan of its table. Saved detectors keep their inline checkpoint (the
 * detector blob is opaque here): the pipeline's next save of each one splits it off. */
int store__migrate_ckpts(sqlite3 *db, char *errmsg, size_t errsize)
{
    sqlite3_stmt *sel = NULL, *get = NULL, *upd = NULL, *find = NULL, *add = NULL;
    int64_t *keys = NULL; /* (device_id, version) pairs */
    size_t n = 0, cap = 0;
    int err = 0;
    int rc = sqlite3_prepare_v2(db, "SELECT device_id, version FROM models WHERE ckpt IS NOT NULL",
                                -1, &sel, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "SELECT ckpt FROM models WHERE device_id=?1 AND version=?2", -1,
                                &get, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "UPDATE models SET ckpt_id=?3, ckpt=NULL"
                                " WHERE device_id=?1 AND version=?2",
                                -1, &upd, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, store__sql_ckpt_find, -1, &find, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, store__sql_ckpt_add, -1, &add, NULL);
    if (rc != SQLITE_OK)
        goto sqlfail;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        if (store__grow((void **)&keys, &cap, 2 * n + 2, sizeof *keys)) {
            err = ERR_NOMEM;
            break;
        }
        keys[2 * n] = sqlite3_column_int64(sel, 0);
        keys[2 * n + 1] = sqlite3_column_int64(sel, 1);
        n++;
    }
    if (err == 0 && rc != SQLITE_DONE)
        goto sqlfail;
    for (size_t i = 0; err == 0 && i < n; i++) {
        sqlite3_bind_int64(get, 1, keys[2 * i]);
        sqlite3_bind_int64(get, 2, keys[2 * i + 1]);
        if ((rc = sqlite3_step(get)) != SQLITE_ROW)
            goto sqlfail;
        int64_t id = 0;
        /* The blob is valid until get is reset: add copies it into its own row. */
        err = store__ckpt_add(db, find, add, sqlite3_column_blob(get, 0),
                              (size_t)sqlite3_column_bytes(get, 0), &id);
        sqlite3_reset(get);
        if (err)
            break;
        sqlite3_bind_int64(upd, 1, keys[2 * i]);
        sqlite3_bind_int64(upd, 2, keys[2 * i + 1]);
        sqlite3_bind_int64(upd, 3, id);
        rc = sqlite3_step(upd);
        sqlite3_reset(upd);
        if (rc != SQLITE_DONE)
            goto sqlfail;
    }
    if (err) {
        snprintf(errmsg, errsize, "migrating model checkpoints: %s", err_str(err));
        goto out;
    }
    if (n > 0)
        log_info("storage: %zu model checkpoints moved to the shared checkpoints table", n);
    goto out;
sqlfail:
    snprintf(errmsg, errsize, "migrating model checkpoints: %s", sqlite3_errmsg(db));
    err = store__status(db, rc) ? store__status(db, rc) : ERR_IO;
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(get);
    sqlite3_finalize(upd);
    sqlite3_finalize(find);
    sqlite3_finalize(add);
    free(keys);
    return err;
}

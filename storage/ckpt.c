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

/* Schema 4 -> 5: copies every row of models_v4 into the new models table, each inline
 * checkpoint into ckpts (one row per distinct checkpoint; the triggers count the references),
 * then drops models_v4. Saved detectors keep their inline checkpoint (the detector blob is
 * opaque here): the pipeline's next save of each one splits it off. */
int store__migrate_ckpts(sqlite3 *db, char *errmsg, size_t errsize)
{
    sqlite3_stmt *sel = NULL, *ins = NULL, *find = NULL, *add = NULL;
    int64_t n = 0, with = 0;
    int err = 0;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT device_id, version, created_ms, info, ckpt FROM models_v4"
                                " ORDER BY device_id, version",
                                -1, &sel, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "INSERT INTO models(device_id, version, created_ms, info, ckpt_id)"
                                " VALUES(?1, ?2, ?3, ?4, ?5)",
                                -1, &ins, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, store__sql_ckpt_find, -1, &find, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, store__sql_ckpt_add, -1, &add, NULL);
    if (rc != SQLITE_OK)
        goto sqlfail;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        int64_t id = 0;
        if (sqlite3_column_type(sel, 4) != SQLITE_NULL) {
            /* The blob is valid until sel steps: add copies it into its own row. */
            err = store__ckpt_add(db, find, add, sqlite3_column_blob(sel, 4),
                                  (size_t)sqlite3_column_bytes(sel, 4), &id);
            if (err)
                break;
            with++;
        }
        for (int c = 0; c < 3; c++)
            sqlite3_bind_int64(ins, c + 1, sqlite3_column_int64(sel, c));
        sqlite3_bind_text(ins, 4, (const char *)sqlite3_column_text(sel, 3), -1, SQLITE_TRANSIENT);
        if (id != 0)
            sqlite3_bind_int64(ins, 5, id);
        else
            sqlite3_bind_null(ins, 5);
        int irc = sqlite3_step(ins);
        sqlite3_reset(ins);
        sqlite3_clear_bindings(ins);
        if (irc != SQLITE_DONE) {
            rc = irc;
            goto sqlfail;
        }
        n++;
    }
    if (err) {
        snprintf(errmsg, errsize, "migrating model checkpoints: %s", err_str(err));
        goto out;
    }
    if (rc != SQLITE_DONE)
        goto sqlfail;
    sqlite3_finalize(sel);
    sel = NULL;
    if (sqlite3_exec(db, "DROP TABLE models_v4", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sqlite3_errcode(db);
        goto sqlfail;
    }
    if (n > 0)
        log_info("storage: %lld model versions migrated, %lld checkpoints moved to the shared"
                 " checkpoints table",
                 (long long)n, (long long)with);
    goto out;
sqlfail:
    snprintf(errmsg, errsize, "migrating model checkpoints: %s", sqlite3_errmsg(db));
    err = store__status(db, rc) ? store__status(db, rc) : ERR_IO;
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    sqlite3_finalize(find);
    sqlite3_finalize(add);
    return err;
}

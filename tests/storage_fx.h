/* tests/storage_fx.h: fixtures, helpers and constants shared by the test_storage_*.c files.
 *
 * Moved from tests/test_storage.c unchanged but for "static" (and the continuation lines of a
 * signature realigned); each function and its comment is in storage_fx.c, each type and constant
 * below. */
#ifndef VIGIL_TESTS_STORAGE_FX_H
#define VIGIL_TESTS_STORAGE_FX_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "batch.h"
#include "err.h"
#include "log.h"
#include "storage.h"
#include "store_hooks.h"
#include "storage_int.h"
#include "vtime.h"

/* ---- fixtures and helpers ---- */

typedef struct fx {
    char dir[64];
    store_t *s;
} fx_t;

/* Collects query results: up to 64 points of up to 8 channels. */
typedef struct got {
    size_t n;
    int64_t ts[1024];
    size_t nv[1024];
    char names[1024][8][16];
    double vals[1024][8];
    size_t stop_after; /* 0: never stop */
} got_t;

typedef struct devinfo {
    int calls;
    char id[64];
    char attrs[128];
    int64_t first, last, points, created;
    size_t nch;
    char ch[16][16];
    char list[32][32]; /* ids seen by store_device_list */
} devinfo_t;

/* Completion counter for asynchronous submissions. */
typedef struct counter {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int done, ok, bad;
} counter_t;

typedef struct models {
    int n;
    int64_t version[16], created[16];
    char info[16][64];
    int has_ckpt[16];
    /* store_model_get */
    int64_t got_version;
    char got_info[64];
    unsigned char ckpt[256];
    size_t ckpt_len;
    int ckpt_null;
} models_t;

typedef struct events {
    int n, stop_after;
    char dev[32][16];
    int64_t id[32], start[32], end[32];
    char info[32][32];
} events_t;
#define EVR_DAY (24LL * 3600 * 1000)

typedef struct dets {
    int n;
    char dev[8][16];
    int64_t last[8];
    size_t len[8];
    unsigned char first[8];
    int64_t ckpt_id[8];
    size_t ckpt_len[8];
    unsigned char ckpt_first[8];
} dets_t;

typedef struct span {
    size_t n;
    int64_t first, last;
} span_t;

/* Compaction inside a client transaction that fails (a trigger refuses a row of 12 points or
 * more, which only the compaction writes here): the transaction's batches are all acknowledged
 * (before session 28 each got ERR_IO), their readings are stored and read back, uncompacted;
 * once the trigger is gone, the same pattern is compacted in its transaction. Held, the writer
 * runs the batches in one transaction: the first moves device c's pending reading into a row
 * (a late reading), so the others go to rows directly, one small row each, and c reaches
 * STORE_COMPACT_ROWS small rows: compacted in that transaction. */
#define CF_BATCHES (STORE_COMPACT_ROWS + 6)

typedef struct preds_got {
    int n;
    int64_t seq[64], t1[64];
    uint32_t cnt[64];
    size_t len[64];
    unsigned char bytes[64][256];
    char dev[64][16];
} preds_got_t;

/* Maintenance periods as store_maint_load reports them. */
typedef struct maint_got {
    int n;
    char dev[32][8];
    int64_t start[32], end[32];
    char note[32][16]; /* "" for none */
} maint_got_t;

/* ---- database names (schema 8) ---- */

typedef struct names_got {
    int n;
    char name[8][STORE_DBNAME_MAX + 1];
} names_got_t;

/* ---- Session 30 (task maint3): maintenance on a full disk, the savepoint's preparation, the
 * compaction back-off's loose ends ---- */

#define FD_CH 40

typedef struct exec_arg {
    store_t *s;
    const char *sql;
    int status;
} exec_arg_t;

/* ---- compaction failures and back-offs (test_storage_compaction.c, test_storage_idle.c) ---- */

/* A trigger refusing the rows of 2 points or more (which only compaction writes) of the devices
 * whose names begin with 'b'. */
#define REFUSE_B_TRIGGER                                                                           \
    "CREATE TRIGGER inject_b BEFORE INSERT ON readings WHEN NEW.n >= 2 AND NEW.device_id IN"       \
    " (SELECT id FROM devices WHERE name LIKE 'b%') BEGIN SELECT RAISE(ABORT, 'injected'); END"

/* stderr into a file while a test runs (the store logs there): errcap_start, errcap_stop. */
typedef struct errcap {
    char path[96];
    int saved;
} errcap_t;

void rm_dir(const char *dir);
store_t *open_store(const char *dir, size_t queue_max);
int setup(void **state);
int teardown(void **state);
void add_point(batch_t *b, const char *dev, int64_t ts, size_t n, const char *const *names,
               const double *vals);
void write1(store_t *s, const char *dev, int64_t ts, size_t n, const char *const *names,
            const double *vals);
int collect(void *arg, int64_t ts, size_t n, const char *const *names, const double *vals);
double got_val(const got_t *g, size_t i, const char *ch);
int query(store_t *s, const char *dev, int64_t from, int64_t to, const char *const *ch, size_t nch,
          size_t limit, int desc, got_t *g);
int on_device(void *arg, const store_device_info_t *info);
devinfo_t device(store_t *s, const char *dev, int expect);
void counter_init(counter_t *c);
void counter_deinit(counter_t *c);
void on_done(void *arg, int status);
void counter_wait(counter_t *c, int n);
void late_small_rows(store_t *s, const char *dev, int m, int64_t late, int64_t ts0, int64_t step,
                     double v0, double dv);
void fill_batch(batch_t *b, const char *dev, int64_t ts0, size_t n);
void assert_plans(const fx_t *f, const char *const *sqls, const char *const *want, size_t n);
void touch_device(store_t *s, const char *dev);
int on_model(void *arg, int64_t version, int64_t created_ms, const char *info, int has_ckpt);
void on_model_data(void *arg, int64_t version, const char *info, const void *ckpt, size_t len);
models_t *models(store_t *s, const char *dev, int expect);
int on_event(void *arg, const char *device, int64_t id, int64_t start, int64_t end,
             const char *info);
int events(store_t *s, const char *dev, int active, int64_t from, int64_t to, size_t limit,
           events_t *e);
int on_detector(void *arg, const char *device, int64_t last_ts, int64_t saved_ms, const void *blob,
                size_t len, int64_t ckpt_id, const void *ckpt, size_t ckpt_len);
void old_schema(fx_t *f, int version, char *path, size_t size);
uint64_t bits_of(double v);
size_t chunk_rows(const char *dir, const char *dev, int64_t *points);
double ow_val(int64_t ts, int ch, double off);
void write_series(store_t *s, const char *dev, int64_t ts0, int64_t step, size_t n, double off);
void check_series(store_t *s, const char *dev, int64_t ts0, size_t n, double off);
store_t *open_retention(const char *dir, int64_t retention_ms);
int count_point(void *arg, int64_t ts, size_t n, const char *const *names, const double *vals);
span_t all_points(store_t *s, const char *dev);
void exec_file(const char *dir, const char *sql);
store_test_wstate_t wst(store_t *s);
int64_t sql_int(const char *dir, const char *sql);
int64_t sql_int_ro(const char *path, const char *sql, const char *arg);
void check_refs(const char *dir);
store_pred_t pred_block(unsigned char *buf, size_t len, int64_t seq, int64_t keep_from, int salt);
int on_pred_read(void *arg, int64_t seq, uint32_t n, int nch, const void *blob, size_t len);
int on_maint(void *arg, const char *device, int64_t start_ms, int64_t end_ms, const char *note);
int on_dbname(void *arg, const char *name);
void add_wide(batch_t *b, const char *dev, int64_t ts, uint64_t *rng);
void *exec_main(void *arg);
void exec_queue(exec_arg_t *ea, pthread_t *th, store_t *s, const char *sql);
void full_disk_start(store_t *s, batch_t *b, int64_t t0, uint64_t *rng);
/* full_disk_start from the tests' usual start: *rng seeded 1, b initialised (the caller
 * deinits it), t0 now (vtime_now_ms), returned. */
int64_t full_disk_begin(store_t *s, batch_t *b, uint64_t *rng);
int64_t dev_id(store_t *s, const char *dev);
void errcap_start(errcap_t *e, const char *dir);
char *errcap_stop(errcap_t *e);
int count_in(const char *text, const char *needle);
int dms_refused_to_another(const char *shm);
int small_rows_until(store_t *s, const char *dev, int64_t *last, uint64_t until);
const store_cfail_t *cfail_of(store_t *s, const char *dev);
void small_round(store_t *s, const char *dev, int64_t *last);
const store_cfail_t *rounds_until_cfail(store_t *s, const char *dev, int64_t *last);
void bad_fails_once(fx_t *f, int64_t t0, int64_t *lb);
void assert_bad_kept(fx_t *f, uint64_t maint, uint64_t commit, int64_t t0, int64_t lb);
void submit_point(store_t *s, const char *dev, int64_t ts, counter_t *c);
void fail_a_batch(store_t *s, counter_t *c);
void hold_failed_reload(store_t *s, counter_t *c);

/* Each test file's tests, in the order they had in test_storage.c. */
extern const struct CMUnitTest storage_writes_tests[];
extern const size_t storage_writes_ntests;
extern const struct CMUnitTest storage_queue_tests[];
extern const size_t storage_queue_ntests;
extern const struct CMUnitTest storage_chunks_tests[];
extern const size_t storage_chunks_ntests;
extern const struct CMUnitTest storage_rows_tests[];
extern const size_t storage_rows_ntests;
extern const struct CMUnitTest storage_pending_tests[];
extern const size_t storage_pending_ntests;
extern const struct CMUnitTest storage_devices_tests[];
extern const size_t storage_devices_ntests;
extern const struct CMUnitTest storage_reload_tests[];
extern const size_t storage_reload_ntests;
extern const struct CMUnitTest storage_readers_tests[];
extern const size_t storage_readers_ntests;
extern const struct CMUnitTest storage_migrate_tests[];
extern const size_t storage_migrate_ntests;
extern const struct CMUnitTest storage_events_tests[];
extern const size_t storage_events_ntests;
extern const struct CMUnitTest storage_evbounds_tests[];
extern const size_t storage_evbounds_ntests;
extern const struct CMUnitTest storage_retention_tests[];
extern const size_t storage_retention_ntests;
extern const struct CMUnitTest storage_compaction_tests[];
extern const size_t storage_compaction_ntests;
extern const struct CMUnitTest storage_idle_tests[];
extern const size_t storage_idle_ntests;
extern const struct CMUnitTest storage_fulldisk_tests[];
extern const size_t storage_fulldisk_ntests;
extern const struct CMUnitTest storage_walline_tests[];
extern const size_t storage_walline_ntests;
extern const struct CMUnitTest storage_snapshot_tests[];
extern const size_t storage_snapshot_ntests;

#endif

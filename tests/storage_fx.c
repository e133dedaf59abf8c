/* tests/storage_fx.c: fixtures and helpers shared by the test_storage_*.c files (see
 * storage_fx.h). */
#include "storage_fx.h"

void rm_dir(const char *dir)
{
    const char *names[] = {"vigil.db", "vigil.db-wal", "vigil.db-shm", "vigil.db-journal",
                           "vigil.lock"};
    char path[128];
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

store_t *open_store(const char *dir, size_t queue_max)
{
    store_opts_t o;
    store_opts_default(&o);
    o.dir = dir;
    o.sync_full = 0; /* durability is not under test; fsyncs only slow the suite down */
    o.readers = 2;
    if (queue_max)
        o.queue_max = queue_max;
    store_t *s = NULL;
    char msg[256];
    int err = store_open(&s, &o, msg, sizeof msg);
    if (err)
        fprintf(stderr, "store_open: %s: %s\n", err_str(err), msg);
    assert_int_equal(err, 0);
    return s;
}

int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/vigil-test-storage-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    f->s = open_store(f->dir, 0);
    *state = f;
    return 0;
}

int teardown(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    rm_dir(f->dir);
    free(f);
    return 0;
}

/* Adds one point with n (name, value) pairs. */
void add_point(batch_t *b, const char *dev, int64_t ts, size_t n, const char *const *names,
               const double *vals)
{
    assert_int_equal(batch_point_begin(b, dev, strlen(dev), ts, 0), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(batch_field_add(b, names[i], strlen(names[i]), vals[i]), 0);
    assert_int_equal(batch_point_commit(b), 1);
}

void write1(store_t *s, const char *dev, int64_t ts, size_t n, const char *const *names,
            const double *vals)
{
    batch_t b;
    batch_init(&b);
    add_point(&b, dev, ts, n, names, vals);
    assert_int_equal(store_write(s, &b), 0);
    assert_int_equal(b.npoints, 0);
    batch_deinit(&b);
}

int collect(void *arg, int64_t ts, size_t n, const char *const *names, const double *vals)
{
    got_t *g = arg;
    assert_true(n >= 1 && n <= 8);
    assert_true(g->n < 1024);
    g->ts[g->n] = ts;
    g->nv[g->n] = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(g->names[g->n][i], 16, "%s", names[i]);
        g->vals[g->n][i] = vals[i];
    }
    g->n++;
    return g->stop_after != 0 && g->n >= g->stop_after;
}

/* Value of channel ch at result i, or NAN when absent. */
double got_val(const got_t *g, size_t i, const char *ch)
{
    for (size_t k = 0; k < g->nv[i]; k++)
        if (strcmp(g->names[i][k], ch) == 0)
            return g->vals[i][k];
    return NAN;
}

int query(store_t *s, const char *dev, int64_t from, int64_t to, const char *const *ch, size_t nch,
          size_t limit, int desc, got_t *g)
{
    store_query_t q = {dev, from, to, ch, nch, limit, desc, 0, 0};
    memset(g, 0, sizeof *g);
    return store_query(s, &q, collect, g);
}

int on_device(void *arg, const store_device_info_t *info)
{
    devinfo_t *d = arg;
    if (d->calls < 32)
        snprintf(d->list[d->calls], sizeof d->list[0], "%s", info->id);
    d->calls++;
    snprintf(d->id, sizeof d->id, "%s", info->id);
    snprintf(d->attrs, sizeof d->attrs, "%s", info->attrs_json);
    d->first = info->first_ts_ms;
    d->last = info->last_ts_ms;
    d->points = info->points;
    d->created = info->created_ms;
    d->nch = info->nchannels;
    for (size_t i = 0; i < info->nchannels && i < 16; i++)
        snprintf(d->ch[i], sizeof d->ch[i], "%s", info->channels[i]);
    return 0;
}

devinfo_t device(store_t *s, const char *dev, int expect)
{
    devinfo_t d;
    memset(&d, 0, sizeof d);
    assert_int_equal(store_device_get(s, dev, on_device, &d), expect);
    return d;
}

void counter_init(counter_t *c)
{
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->done = c->ok = c->bad = 0;
}

void counter_deinit(counter_t *c)
{
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
}

void on_done(void *arg, int status)
{
    counter_t *c = arg;
    pthread_mutex_lock(&c->mu);
    c->done++;
    if (status == 0)
        c->ok++;
    else
        c->bad++;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

void counter_wait(counter_t *c, int n)
{
    pthread_mutex_lock(&c->mu);
    while (c->done < n)
        pthread_cond_wait(&c->cond, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

/* With the writer held, queues m + 1 batches of one point of channel "a" of dev, the first at
 * late (before dev's newest point: the transaction's runs of dev then go to rows directly, each
 * later batch its own small row) and batch i at ts0 + step * i, value v0 + dv * i; releases the
 * writer and waits until every batch is acknowledged, each a success. One transaction writes
 * them, and with m >= STORE_COMPACT_ROWS compacts the small rows before the acknowledgements. */
void late_small_rows(store_t *s, const char *dev, int m, int64_t late, int64_t ts0, int64_t step,
                     double v0, double dv)
{
    static const char *const ch[] = {"a"};
    counter_t cnt;
    counter_init(&cnt);
    store__test_hold(s, 1);
    for (int i = 0; i <= m; i++) {
        batch_t b;
        batch_init(&b);
        double v = v0 + dv * i;
        add_point(&b, dev, i == 0 ? late : ts0 + step * i, 1, ch, &v);
        assert_int_equal(store_submit(s, &b, on_done, &cnt), 0);
        batch_deinit(&b);
    }
    store__test_hold(s, 0);
    counter_wait(&cnt, m + 1);
    assert_int_equal(cnt.ok, m + 1);
    counter_deinit(&cnt);
}

/* A batch of n points of one channel "v" for dev at ts0, ts0+1, ... */
void fill_batch(batch_t *b, const char *dev, int64_t ts0, size_t n)
{
    static const char *const ch[] = {"v"};
    for (size_t i = 0; i < n; i++) {
        double v = (double)(ts0 + (int64_t)i) * 0.5;
        add_point(b, dev, ts0 + (int64_t)i, 1, ch, &v);
    }
}

/* Each of the n statements sqls[i] is planned on the fixture's database with want[i] in
 * exactly one line of its EXPLAIN QUERY PLAN, and no line scans a table or sorts in a temporary
 * b-tree (index order, no scan). */
void assert_plans(const fx_t *f, const char *const *sqls, const char *const *want, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/vigil.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (size_t i = 0; i < n; i++) {
        char sql[1024];
        snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", sqls[i]);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        int found = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *detail = (const char *)sqlite3_column_text(st, 3);
            found += strstr(detail, want[i]) != NULL;
            assert_null(strstr(detail, "SCAN"));
            assert_null(strstr(detail, "TEMP B-TREE"));
        }
        assert_int_equal(found, 1);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

/* ---- the anomaly pipeline's state ---- */

/* Writes one reading so the device exists (readings create devices). */
void touch_device(store_t *s, const char *dev)
{
    const char *ch[] = {"v"};
    const double v = 1;
    write1(s, dev, 1, 1, ch, &v);
}

int on_model(void *arg, int64_t version, int64_t created_ms, const char *info, int has_ckpt)
{
    models_t *m = arg;
    assert_true(m->n < 16);
    m->version[m->n] = version;
    m->created[m->n] = created_ms;
    snprintf(m->info[m->n], sizeof m->info[0], "%s", info);
    m->has_ckpt[m->n] = has_ckpt;
    m->n++;
    return 0;
}

void on_model_data(void *arg, int64_t version, const char *info, const void *ckpt, size_t len)
{
    models_t *m = arg;
    m->got_version = version;
    snprintf(m->got_info, sizeof m->got_info, "%s", info);
    assert_true(len <= sizeof m->ckpt);
    m->ckpt_null = ckpt == NULL;
    if (len)
        memcpy(m->ckpt, ckpt, len);
    m->ckpt_len = len;
}

models_t *models(store_t *s, const char *dev, int expect)
{
    models_t *m = calloc(1, sizeof *m);
    assert_int_equal(store_models_list(s, dev, on_model, m), expect);
    return m;
}

int on_event(void *arg, const char *device, int64_t id, int64_t start, int64_t end,
             const char *info)
{
    events_t *e = arg;
    assert_true(e->n < 32);
    snprintf(e->dev[e->n], sizeof e->dev[0], "%s", device);
    e->id[e->n] = id;
    e->start[e->n] = start;
    e->end[e->n] = end;
    snprintf(e->info[e->n], sizeof e->info[0], "%s", info);
    e->n++;
    return e->stop_after && e->n >= e->stop_after;
}

int events(store_t *s, const char *dev, int active, int64_t from, int64_t to, size_t limit,
           events_t *e)
{
    memset(e, 0, sizeof *e);
    return store_events_query(s, dev, active, from, to, limit, on_event, e);
}

int on_detector(void *arg, const char *device, int64_t last_ts, int64_t saved_ms, const void *blob,
                size_t len, int64_t ckpt_id, const void *ckpt, size_t ckpt_len)
{
    (void)saved_ms;
    dets_t *d = arg;
    assert_true(d->n < 8);
    snprintf(d->dev[d->n], sizeof d->dev[0], "%s", device);
    d->last[d->n] = last_ts;
    d->len[d->n] = len;
    d->first[d->n] = len ? *(const unsigned char *)blob : 0;
    assert_true((ckpt_id == 0) == (ckpt == NULL));
    d->ckpt_id[d->n] = ckpt_id;
    d->ckpt_len[d->n] = ckpt_len;
    d->ckpt_first[d->n] = ckpt_len ? *(const unsigned char *)ckpt : 0;
    d->n++;
    return 0;
}

/* Closes the fixture's store and leaves in its directory an empty database of schema version
 * `version` (store__test_create), for a migration test to fill and open; path gets its file. */
void old_schema(fx_t *f, int version, char *path, size_t size)
{
    store_close(f->s);
    f->s = NULL;
    rm_dir(f->dir);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    char msg[256];
    snprintf(path, size, "%s/vigil.db", f->dir);
    assert_int_equal(store__test_create(path, version, msg, sizeof msg), 0);
}

/* ---- the compact value encoding ---- */

uint64_t bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

/* The readings rows of a device: count, and that they do not overlap and hold their n. */
size_t chunk_rows(const char *dir, const char *dev, int64_t *points)
{
    char path[128];
    snprintf(path, sizeof path, "%s/vigil.db", dir);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT r.t0, r.t_last, r.n FROM readings r JOIN devices d"
                                        " ON d.id=r.device_id WHERE d.name=?1 ORDER BY r.t0",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, dev, -1, SQLITE_STATIC);
    size_t rows = 0;
    int64_t prev_last = INT64_MIN, pts = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t t0 = sqlite3_column_int64(st, 0), tl = sqlite3_column_int64(st, 1);
        if (rows > 0)
            assert_true(t0 > prev_last);
        assert_true(tl >= t0 && tl - t0 <= STORE_CHUNK_SPAN_MS);
        assert_true(sqlite3_column_int64(st, 2) >= 1 &&
                    sqlite3_column_int64(st, 2) <= STORE_CHUNK_POINTS);
        prev_last = tl;
        pts += sqlite3_column_int64(st, 2);
        rows++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (points != NULL)
        *points = pts;
    return rows;
}

/* Writes points ts0, ts0+step, ... (n of them) of dev in one batch, channels a and b with
 * values f(ts) + off. */
double ow_val(int64_t ts, int ch, double off)
{
    return (double)(ts % 100000) * 0.01 + ch + off;
}

void write_series(store_t *s, const char *dev, int64_t ts0, int64_t step, size_t n, double off)
{
    static const char *const ch[] = {"a", "b"};
    batch_t b;
    batch_init(&b);
    for (size_t i = 0; i < n; i++) {
        int64_t ts = ts0 + (int64_t)i * step;
        const double v[] = {ow_val(ts, 0, off), ow_val(ts, 1, off)};
        add_point(&b, dev, ts, 2, ch, v);
    }
    assert_int_equal(store_write(s, &b), 0);
    batch_deinit(&b);
}

/* Checks that dev holds exactly the points ts0, ts0+1, ... ts0+n-1 written by write_series
 * with offset off, ascending and descending. */
void check_series(store_t *s, const char *dev, int64_t ts0, size_t n, double off)
{
    got_t *g = malloc(sizeof *g);
    for (int desc = 0; desc < 2; desc++) {
        assert_int_equal(query(s, dev, INT64_MIN, INT64_MAX, NULL, 0, 0, desc, g), 0);
        assert_int_equal(g->n, n);
        for (size_t i = 0; i < n; i++) {
            int64_t ts = desc ? ts0 + (int64_t)(n - 1 - i) : ts0 + (int64_t)i;
            assert_int_equal(g->ts[i], ts);
            assert_true(got_val(g, i, "a") == ow_val(ts, 0, off));
            assert_true(got_val(g, i, "b") == ow_val(ts, 1, off));
        }
    }
    devinfo_t d = device(s, dev, 0);
    assert_int_equal(d.points, (int64_t)n);
    if (n > 0) {
        assert_int_equal(d.first, ts0);
        assert_int_equal(d.last, ts0 + (int64_t)n - 1);
    }
    free(g);
}

store_t *open_retention(const char *dir, int64_t retention_ms)
{
    store_opts_t o;
    store_opts_default(&o);
    o.dir = dir;
    o.sync_full = 0;
    o.readers = 2;
    o.retention_ms = retention_ms;
    store_t *s = NULL;
    char msg[256];
    assert_int_equal(store_open(&s, &o, msg, sizeof msg), 0);
    return s;
}

int count_point(void *arg, int64_t ts, size_t n, const char *const *names, const double *vals)
{
    span_t *sp = arg;
    (void)n, (void)names, (void)vals;
    if (sp->n++ == 0)
        sp->first = ts;
    sp->last = ts;
    return 0;
}

/* Every point of dev, counted. */
span_t all_points(store_t *s, const char *dev)
{
    span_t sp = {0, -1, -1};
    store_query_t q = {dev, INT64_MIN, INT64_MAX, NULL, 0, 0, 0, 0, 0};
    assert_int_equal(store_query(s, &q, count_point, &sp), 0);
    return sp;
}

/* Runs sql on the closed store's database file (a connection of its own). */
void exec_file(const char *dir, const char *sql)
{
    char path[128];
    snprintf(path, sizeof path, "%s/vigil.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* The writer's back-off state as it last published it (under its lock: no racy reads). */
store_test_wstate_t wst(store_t *s)
{
    store_test_wstate_t w;
    assert_int_equal(store__test_wstate(s, &w), 0);
    return w;
}

/* ---- shared checkpoints (schema 5) ---- */

/* One integer from SQL (?1 bound to arg unless it is NULL) on the database file at path, through
 * a connection of its own opened with flags (WAL readers see the last commit). */
static int64_t sql_int_at(const char *path, int flags, const char *sql, const char *arg)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, flags, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (arg != NULL)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* One integer from SQL on the database file (a second connection; WAL readers see the last
 * commit). */
int64_t sql_int(const char *dir, const char *sql)
{
    char path[128];
    snprintf(path, sizeof path, "%s/vigil.db", dir);
    return sql_int_at(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, sql, NULL);
}

/* sql_int on the database file at path, read-only, with ?1 bound to arg (unless NULL). */
int64_t sql_int_ro(const char *path, const char *sql, const char *arg)
{
    return sql_int_at(path, SQLITE_OPEN_READONLY, sql, arg);
}

/* Every ckpts row is referred to exactly refs times, and by at least one row. */
void check_refs(const char *dir)
{
    assert_int_equal(sql_int(dir, "SELECT count(*) FROM ckpts c WHERE refs<>"
                                  " (SELECT count(*) FROM models WHERE ckpt_id=c.id)"
                                  " + (SELECT count(*) FROM detectors WHERE ckpt_id=c.id)"
                                  " OR refs<1"),
                     0);
    assert_int_equal(sql_int(dir, "SELECT count(*) FROM models WHERE ckpt_id IS NOT NULL"
                                  " AND ckpt_id NOT IN (SELECT id FROM ckpts)"),
                     0);
}

/* A block of len bytes whose content depends on seq and salt. */
store_pred_t pred_block(unsigned char *buf, size_t len, int64_t seq, int64_t keep_from, int salt)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(seq * 31 + (int64_t)i * 7 + salt);
    return (store_pred_t){.seq = seq,
                          .keep_from = keep_from,
                          .t0 = 1000 * seq,
                          .t1 = 1000 * seq + 63,
                          .n = 64,
                          .nch = 8,
                          .blob = buf,
                          .len = len};
}

int on_pred_read(void *arg, int64_t seq, uint32_t n, int nch, const void *blob, size_t len)
{
    preds_got_t *g = arg;
    assert_int_equal(nch, 8);
    assert_true(g->n < 64 && len <= 256);
    g->seq[g->n] = seq;
    g->cnt[g->n] = n;
    g->len[g->n] = len;
    memcpy(g->bytes[g->n], blob, len);
    g->n++;
    return 0;
}

int on_maint(void *arg, const char *device, int64_t start_ms, int64_t end_ms, const char *note)
{
    maint_got_t *g = arg;
    assert_true(g->n < 32);
    snprintf(g->dev[g->n], sizeof g->dev[0], "%s", device);
    g->start[g->n] = start_ms;
    g->end[g->n] = end_ms;
    snprintf(g->note[g->n], sizeof g->note[0], "%s", note ? note : "");
    g->n++;
    return 0;
}

int on_dbname(void *arg, const char *name)
{
    names_got_t *g = arg;
    assert_true(g->n < 8);
    snprintf(g->name[g->n++], sizeof g->name[0], "%s", name);
    return 0;
}

/* One point of dev with FD_CH channels of pseudo-random values (they do not compress), so a
 * row of a few points takes overflow pages. */
void add_wide(batch_t *b, const char *dev, int64_t ts, uint64_t *rng)
{
    static char names[FD_CH][8];
    static const char *ptrs[FD_CH];
    double vals[FD_CH];
    for (int c = 0; c < FD_CH; c++) {
        snprintf(names[c], sizeof names[c], "c%03d", c);
        ptrs[c] = names[c];
        *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
        vals[c] = (double)(*rng >> 11) / 9007199254740992.0;
    }
    add_point(b, dev, ts, FD_CH, ptrs, vals);
}

void *exec_main(void *arg)
{
    exec_arg_t *a = arg;
    a->status = store__test_exec(a->s, a->sql);
    return NULL;
}

/* Runs store__test_exec(s, sql) on a thread of its own (*th; join it), so that the statement's
 * job is queued behind what is queued now without waiting for its commit; returns after 200 ms,
 * the job queued. ea->status is its status once joined. */
void exec_queue(exec_arg_t *ea, pthread_t *th, store_t *s, const char *sql)
{
    *ea = (exec_arg_t){s, sql, -1};
    assert_int_equal(pthread_create(th, NULL, exec_main, ea), 0);
    usleep(200000);
}

/* test_maint_full_disk's start (also the review's tests): "tiny" with one point at t0, "w0" and
 * "w1" with 15 small rows of FD_CH random channels each, the database capped at its page count
 * in the same transaction; returns once the idle compaction after it failed (ERR_NOSPACE,
 * counted once, maint_nospace set). b is left empty. */
void full_disk_start(store_t *s, batch_t *b, int64_t t0, uint64_t *rng)
{
    static const char *const ch[] = {"v"};
    double v = 0;
    write1(s, "tiny", t0, 1, ch, &v);
    add_wide(b, "w0", t0, rng);
    add_wide(b, "w1", t0, rng);
    assert_int_equal(store_write(s, b), 0);
    store__test_hold(s, 1);
    counter_t c;
    counter_init(&c);
    for (int r = 1; r <= 7; r++) {
        for (int d = 0; d < 2; d++) {
            add_wide(b, d ? "w1" : "w0", t0 + r * 1000 - 1001, rng);
            add_wide(b, d ? "w1" : "w0", t0 + r * 1000, rng);
        }
        assert_int_equal(store_submit(s, b, on_done, &c), 0);
    }
    /* The cap goes in the same transaction, after the rounds (a job of its own, queued from a
     * thread since store__test_exec waits). */
    exec_arg_t ea;
    pthread_t th;
    exec_queue(&ea, &th, s, "PRAGMA max_page_count=1"); /* behind the rounds */
    store__test_hold(s, 0);
    counter_wait(&c, 7);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(ea.status, 0);
    assert_int_equal(c.bad, 0);
    /* The writer's state is published after the failure is counted: waited for itself. */
    store_stats_t st0;
    for (int i = 0; i < 100 && !wst(s).maint_nospace; i++)
        usleep(20000);
    assert_true(wst(s).maint_nospace);
    store_stats_get(s, &st0);
    assert_int_equal(st0.maintenance_errors, 1);
    counter_deinit(&c);
}

int64_t full_disk_begin(store_t *s, batch_t *b, uint64_t *rng)
{
    *rng = 1;
    const int64_t t0 = vtime_now_ms();
    batch_init(b);
    full_disk_start(s, b, t0, rng);
    return t0;
}

/* ---- compaction failures and back-offs (test_storage_compaction.c, test_storage_idle.c) ---- */

/* The id of a committed device, read from the database (the writer's maps are its own: a
 * reload frees them while the writer runs). */
int64_t dev_id(store_t *s, const char *dev)
{
    return sql_int_ro(s->db_path, "SELECT id FROM devices WHERE name = ?1", dev);
}

/* errcap_t: stderr into a file while a test runs (the store logs there). Starts the capture. */
void errcap_start(errcap_t *e, const char *dir)
{
    snprintf(e->path, sizeof e->path, "%s/stderr.txt", dir);
    fflush(stderr);
    e->saved = dup(2);
    int fd = open(e->path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(e->saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    close(fd);
}

/* Stops the capture; returns what was logged meanwhile (caller frees), also shown again. */
char *errcap_stop(errcap_t *e)
{
    fflush(stderr);
    dup2(e->saved, 2);
    close(e->saved);
    FILE *fp = fopen(e->path, "r");
    assert_non_null(fp);
    char *text = calloc(1, 1 << 20);
    assert_non_null(text);
    size_t n = fread(text, 1, (1 << 20) - 1, fp);
    fclose(fp);
    unlink(e->path);
    fwrite(text, 1, n, stderr);
    return text;
}

/* How many times needle occurs in text. */
int count_in(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* Gives dev a small row (a late reading, then a new one) each round, 20 ms apart, until the
 * store has counted `until` maintenance errors (at most 200 rounds). Returns the rounds. */
int small_rows_until(store_t *s, const char *dev, int64_t *last, uint64_t until)
{
    store_stats_t st;
    store_stats_get(s, &st);
    int r = 0;
    while (st.maintenance_errors < until && r < 200) {
        small_round(s, dev, last);
        usleep(20000);
        store_stats_get(s, &st);
        r++;
    }
    assert_true(st.maintenance_errors >= until);
    return r;
}

/* A copy of the back-off entry of dev's compaction (w->cfail, as the writer last published
 * it), or NULL. The copy is overwritten by the next call. */
const store_cfail_t *cfail_of(store_t *s, const char *dev)
{
    static store_cfail_t copy;
    int64_t id = dev_id(s, dev);
    store_test_wstate_t w = wst(s);
    for (size_t i = 0; i < w.ncfail && i < STORE_TEST_CFAIL; i++)
        if (w.cfail[i].id == id) {
            copy = w.cfail[i];
            return &copy;
        }
    return NULL;
}

/* One round of small rows of dev (a late reading and a new one, value 3). */
void small_round(store_t *s, const char *dev, int64_t *last)
{
    static const char *const ch[] = {"v"};
    double v = 3;
    batch_t b;
    batch_init(&b);
    add_point(&b, dev, *last - 1, 1, ch, &v);
    add_point(&b, dev, *last + 1000, 1, ch, &v);
    *last += 1000;
    assert_int_equal(store_write(s, &b), 0);
    batch_deinit(&b);
}

/* Rounds of small rows of dev (small_round), 20 ms apart, at most 200, until its compaction has
 * failed (it is in the back-off list). Returns its entry, as cfail_of. */
const store_cfail_t *rounds_until_cfail(store_t *s, const char *dev, int64_t *last)
{
    for (int r = 0; r < 200 && cfail_of(s, dev) == NULL; r++)
        small_round(s, dev, last), usleep(20000);
    const store_cfail_t *c = cfail_of(s, dev);
    assert_non_null(c);
    return c;
}

/* "bad"'s first reading at t0, REFUSE_B_TRIGGER, then small rows of "bad" until its compaction
 * has failed once: the start of the tests of a failed compaction's back-off. *lb: the time of
 * its newest reading. */
void bad_fails_once(fx_t *f, int64_t t0, int64_t *lb)
{
    static const char *const ch[] = {"v"};
    double v = 0;
    *lb = t0;
    write1(f->s, "bad", t0, 1, ch, &v);
    assert_int_equal(store__test_exec(f->s, REFUSE_B_TRIGGER), 0);
    small_rows_until(f->s, "bad", lb, 1);
}

/* The store counted `maint` maintenance and `commit` commit errors, and "bad" kept every reading:
 * its first at t0, then two per round of small rows (a second apart) up to lb. */
void assert_bad_kept(fx_t *f, uint64_t maint, uint64_t commit, int64_t t0, int64_t lb)
{
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.maintenance_errors, maint);
    assert_int_equal(st.commit_errors, commit);
    assert_int_equal(all_points(f->s, "bad").n, 1 + 2 * (lb - t0) / 1000);
}

/* ---- a failed batch and the maps reload after it (test_storage_reload.c, _readers.c) ---- */

/* Submits a batch of one reading (v 1) of dev at ts; c (initialised here) counts its callback. */
void submit_point(store_t *s, const char *dev, int64_t ts, counter_t *c)
{
    static const char *const ch[] = {"v"};
    double v = 1;
    counter_init(c);
    batch_t b;
    batch_init(&b);
    add_point(&b, dev, ts, 1, ch, &v);
    assert_int_equal(store_submit(s, &b, on_done, c), 0);
    batch_deinit(&b);
}

/* Writes "p" (two pending readings), installs a trigger refusing device "bad" and submits a
 * batch of "bad", which fails: the writer then reloads its maps (c counts the batch's
 * callback). */
void fail_a_batch(store_t *s, counter_t *c)
{
    static const char *const ch[] = {"v"};
    double v = 1;
    write1(s, "p", 1000, 1, ch, &v);
    write1(s, "p", 2000, 1, ch, &v);
    assert_int_equal(store__test_exec(s, "CREATE TRIGGER refuse_bad BEFORE INSERT ON devices"
                                         " WHEN NEW.name = 'bad'"
                                         " BEGIN SELECT RAISE(ABORT, 'injected'); END"),
                     0);
    submit_point(s, "bad", 1000, c);
}

/* The reads' bound on a reload an hour; fail_a_batch (c initialised there), its reload held:
 * the writer stops at the hold, the counters withdrawn (set the reload's failures before: the
 * hold comes first). */
void hold_failed_reload(store_t *s, counter_t *c)
{
    store__test_pend_wait_ms(s, 3600 * 1000);
    store__test_reload_hold(s, 1);
    fail_a_batch(s, c);
    wait_reload_held(s);
}

/* Whether another process is refused the exclusive lock on the -shm's dead-man-switch byte
 * (SQLite's os_unix.c UNIX_SHM_DMS: ((22 + SQLITE_SHM_NLOCK) * 4) + SQLITE_SHM_NLOCK = 128),
 * which every connection holds a shared lock on: a process granted it takes itself for the
 * first connection and resets the shared memory under the others. POSIX locks are per
 * process, so the question is asked from a child. (Moved from test_storage_readers.c in
 * session 57: test_storage_walline.c asks it too.) */
int dms_refused_to_another(const char *shm)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(shm, O_RDWR | O_CLOEXEC);
        struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 128, .l_len = 1};
        _exit(fd >= 0 && fcntl(fd, F_SETLK, &l) != 0 ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status) == 0;
}

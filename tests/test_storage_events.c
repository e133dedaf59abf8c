/* tests/test_storage_events.c: unit tests of storage/, events and checkpoints: event queries and
 * their index, the overlap bound and its migration, and checkpoints shared between models (the
 * bound's upkeep by retention is in test_storage_evbounds.c).
 *
 * Moved from tests/test_storage.c, whose main() runs this file's table with the others. */
#include "storage_fx.h"
#include "storage_evq.h"

static void test_events(void **state)
{
    fx_t *f = *state;
    touch_device(f->s, "a");
    touch_device(f->s, "b");
    /* a/1 [100, 200], a/2 [300, active], b/1 [150, 400], b/2 [500, 600], b/3 [700, active]. */
    assert_int_equal(store_event_put(f->s, "a", 1, 100, -1, "{\"peak\":0.5}"), 0);
    assert_int_equal(store_event_put(f->s, "a", 1, 100, 200, "{\"peak\":0.9}"), 0);
    assert_int_equal(store_event_put(f->s, "a", 2, 300, -1, NULL), 0);
    assert_int_equal(store_event_put(f->s, "b", 1, 150, 400, NULL), 0);
    assert_int_equal(store_event_put(f->s, "b", 2, 500, 600, NULL), 0);
    assert_int_equal(store_event_put(f->s, "b", 3, 700, -1, NULL), 0);
    assert_int_equal(store_flush(f->s), 0);
    events_t *e = malloc(sizeof *e);
    assert_int_equal(events(f->s, "a", 0, 0, INT64_MAX, 0, e), 0);
    assert_int_equal(e->n, 2);
    assert_string_equal(e->dev[0], "a");
    assert_int_equal(e->id[0], 2);
    assert_int_equal(e->end[0], -1);
    assert_string_equal(e->info[0], "{}");
    assert_int_equal(e->id[1], 1);
    assert_int_equal(e->start[1], 100);
    assert_int_equal(e->end[1], 200);
    assert_string_equal(e->info[1], "{\"peak\":0.9}"); /* the second put replaced the first */
    /* Fleet-wide active, newest first. */
    assert_int_equal(events(f->s, NULL, 1, 0, INT64_MAX, 0, e), 0);
    assert_int_equal(e->n, 2);
    assert_string_equal(e->dev[0], "b");
    assert_int_equal(e->id[0], 3);
    assert_string_equal(e->dev[1], "a");
    assert_int_equal(e->id[1], 2);
    /* a/2 ends; it leaves the active list. */
    assert_int_equal(store_event_put(f->s, "a", 2, 300, 350, "{\"peak\":1}"), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(events(f->s, NULL, 1, 0, INT64_MAX, 0, e), 0);
    assert_int_equal(e->n, 1);
    assert_int_equal(e->id[0], 3);
    assert_int_equal(events(f->s, "a", 1, 0, INT64_MAX, 0, e), 0);
    assert_int_equal(e->n, 0);
    /* Overlap with [250, 450): a/2 [300, 350] and b/1 [150, 400]; not a/1 (ended at 200) nor b/2
     * (starts at 500). An end equal to from overlaps; a start equal to to does not. */
    assert_int_equal(events(f->s, NULL, 0, 250, 450, 0, e), 0);
    assert_int_equal(e->n, 2);
    assert_true(strcmp(e->dev[0], "a") == 0 && e->id[0] == 2);
    assert_true(strcmp(e->dev[1], "b") == 0 && e->id[1] == 1);
    assert_int_equal(events(f->s, NULL, 0, 200, 500, 0, e), 0);
    assert_int_equal(e->n, 3);
    /* An active event overlaps any window after its start. */
    assert_int_equal(events(f->s, "b", 0, 10000, 20000, 0, e), 0);
    assert_int_equal(e->n, 1);
    assert_int_equal(e->id[0], 3);
    assert_int_equal(events(f->s, NULL, 1, 0, 700, 0, e), 0);
    assert_int_equal(e->n, 0);
    /* Limit and stop. */
    assert_int_equal(events(f->s, NULL, 0, 0, INT64_MAX, 2, e), 0);
    assert_int_equal(e->n, 2);
    assert_int_equal(e->start[0], 700);
    assert_int_equal(e->start[1], 500);
    memset(e, 0, sizeof *e);
    e->stop_after = 1;
    assert_int_equal(store_events_query(f->s, NULL, 0, 0, INT64_MAX, 0, on_event, e), 0);
    assert_int_equal(e->n, 1);
    assert_int_equal(events(f->s, "nosuch", 0, 0, INT64_MAX, 0, e), ERR_NOTFOUND);
    assert_int_equal(e->n, 0);
    assert_int_equal(store_event_put(f->s, "a", 9, 100, 99, NULL), ERR_INVAL);
    free(e);
}

/* store_events_max_ids' rows: each device's highest id, in read order. */
struct max_ids {
    char dev[4][8];
    int64_t id[4];
    int n, stop_after;
};

static int on_max_id(void *arg, const char *device, int64_t max_id)
{
    struct max_ids *m = arg;
    assert_true(m->n < 4);
    snprintf(m->dev[m->n], sizeof m->dev[0], "%s", device);
    m->id[m->n++] = max_id;
    return m->stop_after && m->n == m->stop_after;
}

static void test_events_max_ids(void **state)
{
    /* Each device's highest stored event id, ended or active (the restore numbers a device's
     * next events past it); a device without events is not reported. */
    fx_t *f = *state;
    touch_device(f->s, "a");
    touch_device(f->s, "b");
    touch_device(f->s, "c");
    assert_int_equal(store_event_put(f->s, "a", 1, 100, 200, NULL), 0);
    assert_int_equal(store_event_put(f->s, "a", 7, 300, -1, NULL), 0);
    assert_int_equal(store_event_put(f->s, "b", 12, 50, 60, NULL), 0);
    assert_int_equal(store_event_put(f->s, "b", 3, 500, -1, NULL), 0);
    assert_int_equal(store_flush(f->s), 0);
    struct max_ids m = {0};
    assert_int_equal(store_events_max_ids(f->s, on_max_id, &m), 0);
    assert_int_equal(m.n, 2);
    assert_string_equal(m.dev[0], "a");
    assert_int_equal(m.id[0], 7);
    assert_string_equal(m.dev[1], "b");
    assert_int_equal(m.id[1], 12);
    m = (struct max_ids){.stop_after = 1};
    assert_int_equal(store_events_max_ids(f->s, on_max_id, &m), 0);
    assert_int_equal(m.n, 1);
}

static void test_events_index_used(void **state)
{
    /* The overlap queries' two parts (schema 9): the active events from a partial index, the
     * ended ones within their length bound. */
    const char *sqls[] = {store__sql_ev_dev, store__sql_ev_dev, store__sql_ev_dev_active};
    const char *want[] = {
        "USING INDEX events_dev_active (device_id=? AND start_ts<?)",
        "USING INDEX events_device_start (device_id=? AND start_ts>? AND start_ts<?)",
        "USING INDEX events_dev_active (device_id=? AND start_ts<?)"};
    assert_plans(*state, sqls, want, 3);
    /* The fleet's (schema 10): in the whole page order (start, device name, id) from the
     * indexes that hold it, the page key a range bound on them: no sort at all, not even of one
     * start time's events (assert_plans fails on any TEMP B-TREE). */
    const char *all[] = {store__sql_ev_all, store__sql_ev_all, store__sql_ev_all_active,
                         store__sql_ev_all};
    const char *want_all[] = {
        "SEARCH events USING INDEX events_active_name ((start_ts,dev_name,id)<(?,?,?))",
        "SEARCH events USING INDEX events_start_name (start_ts>? AND "
        "(start_ts,dev_name,id)<(?,?,?))",
        "SEARCH events USING INDEX events_active_name ((start_ts,dev_name,id)<(?,?,?))",
        "USING COVERING INDEX devices_ev_maxlen"};
    assert_plans(*state, all, want_all, 4);
}

/* ---- the events' overlap bound (schema 9): queries against a brute-force overlap ---- */

const char *const evq_devs[3] = {"q0", "q1", "q2"};

static int evq_on(void *arg, const char *device, int64_t id, int64_t start, int64_t end,
                  const char *info)
{
    evq_got_t *g = arg;
    (void)info;
    assert_true(g->n < EVQ_MAX);
    g->e[g->n++] = (evq_ep_t){device[1] - '0', 1, id, start, end};
    return 0;
}

/* The order store_events_query promises: newest start first, then highest device name, then id
 * (the names sort as their indexes). */
static int evq_cmp(const void *a, const void *b)
{
    const evq_ep_t *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? 1 : -1;
    if (x->dev != y->dev)
        return x->dev < y->dev ? 1 : -1;
    return x->id < y->id ? 1 : x->id > y->id ? -1 : 0;
}

/* Whether e comes before the page key (to, tdev, tid) in the listing's order: it started
 * before to, or at to with (device name, id) below (tdev, tid) (tdev NULL: none at to). */
static int evq_below(const evq_ep_t *e, int64_t to, const char *tdev, int64_t tid)
{
    if (e->start != to || tdev == NULL)
        return e->start < to;
    int c = strcmp(evq_devs[e->dev], tdev);
    return c < 0 || (c == 0 && e->id < tid);
}

/* Compares the store's answer for device dev (-1: the fleet) with the live episodes of eps that
 * overlap [from, to) (with tdev, also those at to below (tdev, tid): store_events_query_tie),
 * sorted and cut at limit; a device in the bit set gone is not found. The rows read go to
 * *out when not NULL (caller frees). */
void evq_check_tie(store_t *s, const evq_ep_t *eps, size_t n, int dev, int active, int64_t from,
                   int64_t to, const char *tdev, int64_t tid, size_t limit, unsigned gone,
                   evq_got_t **out)
{
    evq_ep_t *want = malloc((n + 1) * sizeof *want);
    evq_got_t *got = calloc(1, sizeof *got);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const evq_ep_t *e = &eps[i];
        if (e->live && (dev < 0 || e->dev == dev) && evq_below(e, to, tdev, tid) &&
            (e->end == -1 || (!active && e->end >= from)))
            want[m++] = *e;
    }
    qsort(want, m, sizeof *want, evq_cmp);
    if (limit && m > limit)
        m = limit;
    int err = store_events_query_tie(s, dev < 0 ? NULL : evq_devs[dev], active, from, to, tdev, tid,
                                     limit, evq_on, got);
    if (dev >= 0 && (gone >> dev & 1))
        m = 0;
    assert_int_equal(err, dev >= 0 && (gone >> dev & 1) ? ERR_NOTFOUND : 0);
    if (got->n != m)
        fprintf(stderr, "dev %d active %d [%lld, %lld) limit %zu: %zu rows, want %zu\n", dev,
                active, (long long)from, (long long)to, limit, got->n, m);
    assert_int_equal(got->n, m);
    for (size_t i = 0; i < m; i++) {
        assert_int_equal(got->e[i].dev, want[i].dev);
        assert_int_equal(got->e[i].id, want[i].id);
        assert_int_equal(got->e[i].start, want[i].start);
        assert_int_equal(got->e[i].end, want[i].end);
    }
    if (out)
        *out = got;
    else
        free(got);
    free(want);
}

void evq_check(store_t *s, const evq_ep_t *eps, size_t n, int dev, int active, int64_t from,
               int64_t to, size_t limit, unsigned gone)
{
    evq_check_tie(s, eps, n, dev, active, from, to, NULL, 0, limit, gone, NULL);
}

/* Pages of limit rows, each going on after the last row of the one before (its start, device
 * and id, as GET /v1/anomalies' before= does): every live episode of dev (-1: the fleet) once,
 * in order, however many share a start time. */
static void evq_pages(store_t *s, const evq_ep_t *eps, size_t n, int dev, int active, size_t limit,
                      unsigned gone)
{
    size_t total = 0, want = 0;
    for (size_t i = 0; i < n; i++)
        want += eps[i].live && (dev < 0 || eps[i].dev == dev) && (!active || eps[i].end == -1);
    int64_t to = INT64_MAX, tid = 0;
    char tdev[8] = "";
    for (size_t page = 0; page <= n; page++) {
        evq_got_t *got = NULL;
        evq_check_tie(s, eps, n, dev, active, INT64_MIN, to, tdev[0] ? tdev : NULL, tid, limit,
                      gone, &got);
        total += got->n;
        if (got->n < limit) {
            free(got);
            break;
        }
        const evq_ep_t *last = &got->e[got->n - 1];
        to = last->start;
        tid = last->id;
        snprintf(tdev, sizeof tdev, "%s", evq_devs[last->dev]);
        free(got);
    }
    if (!(dev >= 0 && (gone >> dev & 1)))
        assert_int_equal(total, want);
}

uint64_t evq_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Random ranges (empty ones, ranges before, among and after the episodes), every device and the
 * fleet, active or all, with and without a limit; plus the unbounded range. */
static void evq_check_many(store_t *s, const evq_ep_t *eps, size_t n, uint64_t *rng, unsigned gone)
{
    static const size_t limits[] = {0, 1, 2, 5, 17};
    for (int q = 0; q < 300; q++) {
        int dev = (int)(evq_rand(rng) % 4) - 1;
        int active = evq_rand(rng) % 5 == 0;
        int64_t from = (int64_t)(evq_rand(rng) % 11000) - 500;
        int64_t to = from + (int64_t)(evq_rand(rng) % 400);
        evq_check(s, eps, n, dev, active, from, to, limits[evq_rand(rng) % 5], gone);
    }
    for (int dev = -1; dev < 3; dev++)
        evq_check(s, eps, n, dev, 0, INT64_MIN, INT64_MAX, 0, gone);
    /* A page's key at an episode's start (so ties are there), with a device name among the
     * others' ("q15": between q1 and q2), before every one or after every one. */
    static const char *const tdevs[] = {"q0", "q1", "q15", "q2", "q3", ""};
    for (int q = 0; q < 300; q++) {
        int dev = (int)(evq_rand(rng) % 4) - 1;
        int active = evq_rand(rng) % 5 == 0;
        int64_t to = eps[evq_rand(rng) % n].start;
        int64_t span = (int64_t)(evq_rand(rng) % 400); /* saturated: one episode at INT64_MIN+1 */
        int64_t from = to < INT64_MIN + span ? INT64_MIN : to - span;
        evq_check_tie(s, eps, n, dev, active, from, to, tdevs[evq_rand(rng) % 6],
                      (int64_t)(evq_rand(rng) % 130), limits[evq_rand(rng) % 5], gone, NULL);
    }
    for (int dev = -1; dev < 3; dev++)
        for (size_t l = 1; l < 5; l++)
            evq_pages(s, eps, n, dev, l == 4, l, gone);
}

/* Episodes of three devices with equal starts, zero lengths, active ones and some longer than
 * most ranges; then ends changed (closed, reopened, shortened), events deleted behind the store's
 * back (the bound stays, now too large) and a device deleted: every query's rows, order and
 * limit match the brute force throughout. */
static void test_events_overlap_bound(void **state)
{
    fx_t *f = *state;
    for (int d = 0; d < 3; d++)
        touch_device(f->s, evq_devs[d]);
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    evq_ep_t *eps = calloc(301, sizeof *eps);
    int64_t next_id[3] = {1, 1, 1};
    for (size_t i = 0; i < 300; i++) {
        evq_ep_t *e = &eps[i];
        e->dev = (int)(evq_rand(&rng) % 3);
        e->id = next_id[e->dev]++;
        e->start = (int64_t)(evq_rand(&rng) % 800) * 10;
        int kind = (int)(evq_rand(&rng) % 10);
        e->end = kind < 2    ? e->start
                 : kind == 2 ? -1
                 : kind == 3 ? e->start + (int64_t)(evq_rand(&rng) % 2000)
                             : e->start + (int64_t)(evq_rand(&rng) % 40);
        e->live = 1;
        assert_int_equal(store_event_put(f->s, evq_devs[e->dev], e->id, e->start, e->end, NULL), 0);
    }
    assert_int_equal(store_flush(f->s), 0);
    evq_check_many(f->s, eps, 300, &rng, 0);

    for (int k = 0; k < 60; k++) {
        evq_ep_t *e = &eps[evq_rand(&rng) % 300];
        int kind = (int)(evq_rand(&rng) % 3);
        e->end = kind == 0 ? -1 : e->start + (int64_t)(evq_rand(&rng) % (kind == 1 ? 3000 : 5));
        assert_int_equal(store_event_put(f->s, evq_devs[e->dev], e->id, e->start, e->end, "{}"), 0);
    }
    /* One episode of each device stretched past every length before (an update, not an insert),
     * then looked for just before its end, where only its new length reaches. */
    evq_ep_t *longest[3] = {NULL, NULL, NULL};
    for (size_t i = 0; i < 300; i++)
        if (longest[eps[i].dev] == NULL)
            longest[eps[i].dev] = &eps[i];
    for (int d = 0; d < 3; d++) {
        evq_ep_t *e = longest[d];
        e->end = e->start + 4000 + d;
        assert_int_equal(store_event_put(f->s, evq_devs[d], e->id, e->start, e->end, "{}"), 0);
    }
    assert_int_equal(store_flush(f->s), 0);
    for (int d = 0; d < 3; d++)
        for (int dev = -1; dev < 3; dev++)
            evq_check(f->s, eps, 300, dev, 0, longest[d]->end - 1, longest[d]->end + 1, 0, 0);
    evq_check_many(f->s, eps, 300, &rng, 0);

    char path[128];
    snprintf(path, sizeof path, "%s/vigil.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM events WHERE id % 3 = 0", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    for (size_t i = 0; i < 300; i++)
        eps[i].live = eps[i].id % 3 != 0;
    evq_check_many(f->s, eps, 300, &rng, 0);

    assert_int_equal(store_device_delete(f->s, "q1"), 0);
    for (size_t i = 0; i < 300; i++)
        eps[i].live &= eps[i].dev != 1;
    evq_check_many(f->s, eps, 300, &rng, 1u << 1);

    /* An episode over nearly the whole int64 range: its length overflows, the bound turns off. */
    eps[300] = (evq_ep_t){0, 1, 1000, INT64_MIN + 1, INT64_MAX - 1};
    assert_int_equal(store_event_put(f->s, "q0", 1000, INT64_MIN + 1, INT64_MAX - 1, NULL), 0);
    assert_int_equal(store_flush(f->s), 0);
    for (int dev = -1; dev < 3; dev++) {
        evq_check(f->s, eps, 301, dev, 0, INT64_MAX - 2, INT64_MAX, 0, 1u << 1);
        evq_check(f->s, eps, 301, dev, 0, INT64_MIN, INT64_MIN + 2, 0, 1u << 1);
    }
    evq_check_many(f->s, eps, 301, &rng, 1u << 1);
    free(eps);
}

/* A schema 8 database with episodes (one far longer than the others, one active) is migrated:
 * each device's bound is computed from its ended episodes, and the queries find them all. */
static void test_events_migrate_v8(void **state)
{
    fx_t *f = *state;
    char path[128];
    old_schema(f, 8, path, sizeof path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO devices(id, name, created_ms) VALUES(1, 'q0', 1), (2, 'q1', 1),"
                     " (3, 'q2', 1);"
                     "INSERT INTO events VALUES(1, 1, 100, 5000, '{}'), (1, 2, 200, 210, '{}'),"
                     " (1, 3, 6000, 6000, '{}'), (1, 4, 6500, NULL, '{}'),"
                     " (2, 1, 100, 130, '{}'), (2, 2, 7000, 7020, '{}'), (2, 3, 7000, 7001, '{}');",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    evq_ep_t eps[] = {{0, 1, 1, 100, 5000},  {0, 1, 2, 200, 210},  {0, 1, 3, 6000, 6000},
                      {0, 1, 4, 6500, -1},   {1, 1, 1, 100, 130},  {1, 1, 2, 7000, 7020},
                      {1, 1, 3, 7000, 7001}, {2, 1, 1, 8000, 8500}};
    f->s = open_store(f->dir, 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT ev_maxlen FROM devices ORDER BY id", -1, &st, NULL),
        SQLITE_OK);
    const int64_t maxlen[] = {4900, 30, 0};
    for (int d = 0; d < 3; d++) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int64(st, 0), maxlen[d]);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    const int64_t ranges[][2] = {{4990, 5010}, {5001, 5002}, {0, 100},     {101, 102},
                                 {6000, 6001}, {9000, 9999}, {7020, 7021}, {INT64_MIN, 1}};
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        for (int dev = -1; dev < 3; dev++)
            for (size_t limit = 0; limit < 3; limit++)
                evq_check(f->s, eps, 7, dev, 0, ranges[i][0], ranges[i][1], limit, 0);
    /* A new, longer episode through the store raises q2's bound from 0. */
    assert_int_equal(store_event_put(f->s, "q2", 1, 8000, 8500, NULL), 0);
    assert_int_equal(store_flush(f->s), 0);
    uint64_t rng = 12345;
    evq_check_many(f->s, eps, 8, &rng, 0);
}

/* A group's members record the same checkpoint in their versions and saved detectors: it is
 * stored once, every member reads it back, and the row goes when the last reference does
 * (trimmed versions, replaced detectors, deleted devices). */
static void test_ckpts_shared(void **state)
{
    fx_t *f = *state;
    const char *devs[] = {"g1", "g2", "g3", "solo"};
    unsigned char x[200], y[200], z[200]; /* models_t holds 256 bytes */
    for (size_t i = 0; i < sizeof x; i++) {
        x[i] = (unsigned char)(i * 7);
        y[i] = (unsigned char)(i * 11);
        z[i] = (unsigned char)(i * 13);
    }
    for (int i = 0; i < 4; i++)
        touch_device(f->s, devs[i]);
    for (int i = 0; i < 4; i++) {
        const unsigned char *ck = i < 3 ? x : y;
        assert_int_equal(store_model_put(f->s, devs[i], 1, "{}", ck, sizeof x, 2), 0);
        assert_int_equal(store_detector_put(f->s, devs[i], 10 + i, "s", 1, ck, sizeof x), 0);
    }
    /* A put skipped for its info leaves no checkpoint row behind. */
    assert_int_equal(store_model_put(f->s, "g1", 9, "[1]", z, sizeof z, 2), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM ckpts"), 2);
    assert_int_equal(sql_int(f->dir, "SELECT max(refs) FROM ckpts"), 6);
    check_refs(f->dir);
    for (int i = 0; i < 4; i++) {
        models_t *m = calloc(1, sizeof *m);
        assert_int_equal(store_model_get(f->s, devs[i], 1, on_model_data, m), 0);
        assert_int_equal(m->ckpt_len, sizeof x);
        assert_memory_equal(m->ckpt, i < 3 ? x : y, sizeof x);
        free(m);
    }
    dets_t d = {0};
    assert_int_equal(store_detectors_load(f->s, on_detector, &d), 0);
    assert_int_equal(d.n, 4);
    /* The three sharing x one after another, in creation order, then "solo"'s y. */
    for (int i = 0; i < 3; i++) {
        assert_string_equal(d.dev[i], devs[i]);
        assert_int_equal(d.ckpt_id[i], d.ckpt_id[0]);
        assert_int_equal(d.ckpt_len[i], sizeof x);
        assert_int_equal(d.ckpt_first[i], x[0]);
        assert_int_equal(d.len[i], 1);
        assert_int_equal(d.first[i], 's');
        assert_int_equal(d.last[i], 10 + i);
    }
    assert_string_equal(d.dev[3], "solo");
    assert_true(d.ckpt_id[3] != d.ckpt_id[0]);
    assert_int_equal(d.ckpt_first[3], 0); /* y[0] */
    /* Versions 2 and 3 (keep 2: version 1 goes) with z; the members' detectors move to z. */
    for (int v = 2; v <= 3; v++)
        for (int i = 0; i < 3; i++)
            assert_int_equal(store_model_put(f->s, devs[i], v, "{}", z, sizeof z, 2), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_detector_put(f->s, devs[i], 20, "t", 1, z, sizeof z), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM ckpts"), 2); /* y and z */
    assert_int_equal(sql_int(f->dir, "SELECT max(refs) FROM ckpts"), 9);
    check_refs(f->dir);
    models_t *m = calloc(1, sizeof *m);
    assert_int_equal(store_model_get(f->s, "g2", 3, on_model_data, m), 0);
    assert_int_equal(m->ckpt_len, sizeof z);
    assert_memory_equal(m->ckpt, z, sizeof z);
    free(m);
    /* A detector saved without a checkpoint drops its reference. */
    assert_int_equal(store_detector_put(f->s, "solo", 30, "u", 1, NULL, 0), 0);
    assert_int_equal(store_flush(f->s), 0);
    check_refs(f->dir);
    assert_int_equal(sql_int(f->dir, "SELECT min(refs) FROM ckpts"), 1); /* y: version 1 */
    /* Deleting every device that refers to a checkpoint deletes it. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(store_device_delete(f->s, devs[i]), 0);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM ckpts"), 0);
    /* And a reopen reads what it wrote. */
    touch_device(f->s, "g1");
    assert_int_equal(store_model_put(f->s, "g1", 1, "{}", x, sizeof x, 0), 0);
    assert_int_equal(store_detector_put(f->s, "g1", 5, "s", 1, x, sizeof x), 0);
    assert_int_equal(store_detector_put(f->s, "g1", 5, "s", 1, x, 0), ERR_INVAL);
    assert_int_equal(store_flush(f->s), 0);
    store_close(f->s);
    f->s = open_store(f->dir, 0);
    memset(&d, 0, sizeof d);
    assert_int_equal(store_detectors_load(f->s, on_detector, &d), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.ckpt_len[0], sizeof x);
    assert_int_equal(sql_int(f->dir, "SELECT refs FROM ckpts"), 2);
    check_refs(f->dir);
}

const struct CMUnitTest storage_events_tests[] = {
    cmocka_unit_test_setup_teardown(test_events, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_max_ids, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_index_used, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_overlap_bound, setup, teardown),
    cmocka_unit_test_setup_teardown(test_events_migrate_v8, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ckpts_shared, setup, teardown),
};
const size_t storage_events_ntests = sizeof storage_events_tests / sizeof storage_events_tests[0];

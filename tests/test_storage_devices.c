/* tests/test_storage_devices.c: unit tests of storage/, devices and their maps: device reports,
 * models, detectors and deletion, predictions, database names, maintenance windows, maps undone and
 * reloaded after a failed transaction.
 *
 * Moved from tests/test_storage.c, whose main() runs this file's table with the others. */
#include "storage_fx.h"

static void test_devices(void **state)
{
    fx_t *f = *state;
    int created = -1;
    assert_int_equal(store_device_put(f->s, "pump-1", "{\"site\":\"north\"}", &created), 0);
    assert_int_equal(created, 1);
    devinfo_t d = device(f->s, "pump-1", 0);
    assert_string_equal(d.attrs, "{\"site\":\"north\"}");
    assert_int_equal(d.points, 0);
    assert_int_equal(d.first, -1);
    assert_int_equal(d.last, -1);
    assert_int_equal(d.nch, 0);
    assert_true(d.created > 0);
    /* NULL keeps the attributes; new ones replace them. */
    assert_int_equal(store_device_put(f->s, "pump-1", NULL, &created), 0);
    assert_int_equal(created, 0);
    assert_string_equal(device(f->s, "pump-1", 0).attrs, "{\"site\":\"north\"}");
    assert_int_equal(store_device_put(f->s, "pump-1", "{\"site\":\"south\"}", &created), 0);
    assert_string_equal(device(f->s, "pump-1", 0).attrs, "{\"site\":\"south\"}");
    assert_int_equal(store_device_put(f->s, "pump-2", NULL, &created), 0);
    assert_int_equal(created, 1);
    assert_string_equal(device(f->s, "pump-2", 0).attrs, "{}");
    /* Invalid input. */
    assert_int_equal(store_device_put(f->s, "pump-3", "[1,2]", &created), ERR_INVAL);
    assert_int_equal(store_device_put(f->s, "pump-3", "{bad", &created), ERR_INVAL);
    assert_int_equal(store_device_put(f->s, "", NULL, &created), ERR_INVAL);
    assert_int_equal(store_device_put(f->s, "a\nb", NULL, &created), ERR_INVAL);
    device(f->s, "pump-3", ERR_NOTFOUND);
    /* A device declared first, then written to. */
    const char *ch[] = {"t"};
    const double v = 1.5;
    write1(f->s, "pump-1", 42, 1, ch, &v);
    d = device(f->s, "pump-1", 0);
    assert_int_equal(d.points, 1);
    assert_int_equal(d.first, 42);
    write1(f->s, "pump-4", 43, 1, ch, &v);
    /* List in id order, paginated. */
    memset(&d, 0, sizeof d);
    assert_int_equal(store_device_list(f->s, NULL, 0, on_device, &d), 0);
    assert_int_equal(d.calls, 3);
    assert_string_equal(d.list[0], "pump-1");
    assert_string_equal(d.list[1], "pump-2");
    assert_string_equal(d.list[2], "pump-4");
    memset(&d, 0, sizeof d);
    assert_int_equal(store_device_list(f->s, NULL, 2, on_device, &d), 0);
    assert_int_equal(d.calls, 2);
    memset(&d, 0, sizeof d);
    assert_int_equal(store_device_list(f->s, "pump-2", 2, on_device, &d), 0);
    assert_int_equal(d.calls, 1);
    assert_string_equal(d.list[0], "pump-4");
    /* The cursor need not name an existing device (it may have been deleted since). */
    memset(&d, 0, sizeof d);
    assert_int_equal(store_device_list(f->s, "pump-3", 2, on_device, &d), 0);
    assert_int_equal(d.calls, 1);
    assert_string_equal(d.list[0], "pump-4");
    /* Delete removes the device, its channels and readings; a new one starts afresh. */
    assert_int_equal(store_device_delete(f->s, "pump-1"), 0);
    assert_int_equal(store_device_delete(f->s, "pump-1"), ERR_NOTFOUND);
    device(f->s, "pump-1", ERR_NOTFOUND);
    got_t *g = malloc(sizeof *g);
    assert_int_equal(query(f->s, "pump-1", 0, 100, NULL, 0, 0, 0, g), ERR_NOTFOUND);
    const char *ch2[] = {"other"};
    write1(f->s, "pump-1", 7, 1, ch2, &v);
    d = device(f->s, "pump-1", 0);
    assert_int_equal(d.points, 1);
    assert_int_equal(d.nch, 1);
    assert_string_equal(d.ch[0], "other");
    assert_string_equal(d.attrs, "{}");
    assert_int_equal(query(f->s, "pump-1", 0, 100, NULL, 0, 0, 0, g), 0);
    assert_int_equal(g->n, 1);
    assert_int_equal(g->ts[0], 7);
    free(g);
    /* The list is ordered by id, not by creation: the re-created pump-1 still comes first. */
    memset(&d, 0, sizeof d);
    assert_int_equal(store_device_list(f->s, NULL, 0, on_device, &d), 0);
    assert_int_equal(d.calls, 3);
    assert_string_equal(d.list[0], "pump-1");
    assert_string_equal(d.list[2], "pump-4");
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.devices, 3);
}

/* store_models_list_all's rows: "device:version:has_ckpt:info", at most 8; stop_after > 0
 * stops the listing at that row. */
struct all_models {
    char row[8][48];
    int n, stop_after;
};

static int on_model_all(void *arg, const char *device, int64_t version, int64_t created_ms,
                        const char *info, int has_ckpt)
{
    struct all_models *a = arg;
    assert_true(a->n < 8);
    assert_true(created_ms > 0);
    snprintf(a->row[a->n++], sizeof a->row[0], "%s:%lld:%d:%s", device, (long long)version,
             has_ckpt, info);
    return a->stop_after > 0 && a->n == a->stop_after;
}

static void test_models(void **state)
{
    fx_t *f = *state;
    touch_device(f->s, "m1");
    touch_device(f->s, "m2");
    unsigned char ck[200];
    for (size_t i = 0; i < sizeof ck; i++)
        ck[i] = (unsigned char)(i * 7);
    /* Five versions, keep 3: versions 3, 4, 5 remain. Version 4 has no checkpoint. */
    for (int v = 1; v <= 5; v++) {
        char info[32];
        snprintf(info, sizeof info, "{\"v\":%d}", v);
        assert_int_equal(store_model_put(f->s, "m1", v, info, v == 4 ? NULL : ck,
                                         v == 4 ? 0 : sizeof ck - (size_t)v, 3),
                         0);
    }
    assert_int_equal(store_model_put(f->s, "m2", 1, NULL, NULL, 0, 0), 0);
    assert_int_equal(store_flush(f->s), 0);
    models_t *m = models(f->s, "m1", 0);
    assert_int_equal(m->n, 3);
    for (int i = 0; i < 3; i++) {
        char info[32];
        snprintf(info, sizeof info, "{\"v\":%d}", i + 3);
        assert_int_equal(m->version[i], i + 3);
        assert_string_equal(m->info[i], info);
        assert_int_equal(m->has_ckpt[i], i + 3 != 4);
        assert_true(m->created[i] > 0);
    }
    int64_t created4 = m->created[1];
    free(m);
    m = models(f->s, "m2", 0);
    assert_int_equal(m->n, 1);
    assert_string_equal(m->info[0], "{}");
    assert_int_equal(m->has_ckpt[0], 0);
    free(m);
    /* The fleet's versions in one read (the start's restore): device by device in creation
     * order, each lowest version first, as the two lists above; a callback's stop is not an
     * error. */
    struct all_models all = {0};
    assert_int_equal(store_models_list_all(f->s, on_model_all, &all), 0);
    assert_int_equal(all.n, 4);
    assert_string_equal(all.row[0], "m1:3:1:{\"v\":3}");
    assert_string_equal(all.row[1], "m1:4:0:{\"v\":4}");
    assert_string_equal(all.row[2], "m1:5:1:{\"v\":5}");
    assert_string_equal(all.row[3], "m2:1:0:{}");
    struct all_models two = {.stop_after = 2};
    assert_int_equal(store_models_list_all(f->s, on_model_all, &two), 0);
    assert_int_equal(two.n, 2);
    /* Get one version, the highest, and a missing one. */
    m = calloc(1, sizeof *m);
    assert_int_equal(store_model_get(f->s, "m1", 3, on_model_data, m), 0);
    assert_int_equal(m->got_version, 3);
    assert_string_equal(m->got_info, "{\"v\":3}");
    assert_int_equal(m->ckpt_len, sizeof ck - 3);
    assert_memory_equal(m->ckpt, ck, sizeof ck - 3);
    assert_int_equal(store_model_get(f->s, "m1", -1, on_model_data, m), 0);
    assert_int_equal(m->got_version, 5);
    assert_int_equal(store_model_get(f->s, "m1", 4, on_model_data, m), 0);
    assert_int_equal(m->ckpt_len, 0);
    assert_true(m->ckpt_null);
    assert_int_equal(store_model_get(f->s, "m1", 1, on_model_data, m), ERR_NOTFOUND);
    assert_int_equal(store_model_get(f->s, "nosuch", 1, on_model_data, m), ERR_NOTFOUND);
    free(m);
    /* Rewriting version 3 without a checkpoint keeps its checkpoint and created_ms; rewriting
     * version 4 with one adds it. */
    assert_int_equal(store_model_put(f->s, "m1", 3, "{\"chosen\":false}", NULL, 0, 3), 0);
    assert_int_equal(store_model_put(f->s, "m1", 4, "{\"v\":4}", ck, 10, 3), 0);
    assert_int_equal(store_flush(f->s), 0);
    m = calloc(1, sizeof *m);
    assert_int_equal(store_model_get(f->s, "m1", 3, on_model_data, m), 0);
    assert_string_equal(m->got_info, "{\"chosen\":false}");
    assert_int_equal(m->ckpt_len, sizeof ck - 3);
    assert_int_equal(store_model_get(f->s, "m1", 4, on_model_data, m), 0);
    assert_int_equal(m->ckpt_len, 10);
    free(m);
    m = models(f->s, "m1", 0);
    assert_int_equal(m->n, 3);
    assert_int_equal(m->created[1], created4);
    free(m);
    /* keep_k 1 trims to the highest version even when an older one is written. */
    assert_int_equal(store_model_put(f->s, "m1", 2, "{}", NULL, 0, 1), 0);
    assert_int_equal(store_flush(f->s), 0);
    m = models(f->s, "m1", 0);
    assert_int_equal(m->n, 1);
    assert_int_equal(m->version[0], 5);
    free(m);
    m = models(f->s, "nosuch", ERR_NOTFOUND);
    assert_int_equal(m->n, 0);
    free(m);
    /* Refused at once. */
    assert_int_equal(store_model_put(f->s, NULL, 1, NULL, NULL, 0, 0), ERR_INVAL);
    assert_int_equal(store_model_put(f->s, "a\nb", 1, NULL, NULL, 0, 0), ERR_INVAL);
    assert_int_equal(store_model_put(f->s, "m1", 1, NULL, NULL, 5, 0), ERR_INVAL);
    assert_int_equal(store_model_put(f->s, "m1", 1, NULL, NULL, 0, -1), ERR_INVAL);
}

/* A put that names no device, or carries info that is not a JSON object, is skipped without
 * failing the readings that share its transaction. */
static void test_ops_skipped(void **state)
{
    fx_t *f = *state;
    touch_device(f->s, "d");
    counter_t c;
    counter_init(&c);
    batch_t b;
    batch_init(&b);
    store__test_hold(f->s, 1);
    fill_batch(&b, "d", 100, 10);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    assert_int_equal(store_model_put(f->s, "d", 1, "[1,2]", NULL, 0, 0), 0);
    assert_int_equal(store_event_put(f->s, "d", 1, 5, -1, "{bad"), 0);
    assert_int_equal(store_event_put(f->s, "d", 2, 5, -1, "\"text\""), 0);
    assert_int_equal(store_detector_put(f->s, "nosuch", 1, "x", 1, NULL, 0), 0);
    assert_int_equal(store_event_put(f->s, "nosuch", 1, 5, -1, NULL), 0);
    assert_int_equal(store_event_put(f->s, "d", 3, 5, 6, "{\"ok\":true}"), 0);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.ops_queued, 6);
    store__test_hold(f->s, 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(c.ok, 1);
    store_stats_get(f->s, &st);
    assert_int_equal(st.ops_queued, 0);
    assert_int_equal(st.ops_skipped, 5);
    assert_int_equal(st.ops_written, 1);
    assert_int_equal(st.ops_failed, 0);
    assert_int_equal(device(f->s, "d", 0).points, 11);
    device(f->s, "nosuch", ERR_NOTFOUND);
    models_t *m = models(f->s, "d", 0);
    assert_int_equal(m->n, 0);
    free(m);
    batch_deinit(&b);
    counter_deinit(&c);
}

static void test_detectors_and_delete(void **state)
{
    fx_t *f = *state;
    touch_device(f->s, "a");
    touch_device(f->s, "b");
    unsigned char *big = malloc(100000);
    memset(big, 0xab, 100000);
    assert_int_equal(store_detector_put(f->s, "b", 10, big, 100000, NULL, 0), 0);
    assert_int_equal(store_detector_put(f->s, "a", 5, "\x01\x02", 2, NULL, 0), 0);
    assert_int_equal(store_detector_put(f->s, "a", 6, "\x03", 1, NULL, 0), 0); /* replaces */
    assert_int_equal(store_detector_put(f->s, "a", 1, NULL, 5, NULL, 0), ERR_INVAL);
    free(big);
    assert_int_equal(store_model_put(f->s, "a", 1, "{}", "ck", 2, 0), 0);
    assert_int_equal(store_event_put(f->s, "a", 1, 1, -1, NULL), 0);
    assert_int_equal(store_event_put(f->s, "b", 1, 2, -1, NULL), 0);
    assert_int_equal(store_flush(f->s), 0);
    dets_t d = {0};
    assert_int_equal(store_detectors_load(f->s, on_detector, &d), 0);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.dev[0], "a"); /* device creation order */
    assert_int_equal(d.last[0], 6);
    assert_int_equal(d.len[0], 1);
    assert_int_equal(d.first[0], 3);
    assert_string_equal(d.dev[1], "b");
    assert_int_equal(d.len[1], 100000);
    assert_int_equal(d.first[1], 0xab);
    /* Deleting a device takes its models, events and detector with it. */
    assert_int_equal(store_device_delete(f->s, "a"), 0);
    memset(&d, 0, sizeof d);
    assert_int_equal(store_detectors_load(f->s, on_detector, &d), 0);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.dev[0], "b");
    events_t *e = malloc(sizeof *e);
    assert_int_equal(events(f->s, NULL, 0, 0, INT64_MAX, 0, e), 0);
    assert_int_equal(e->n, 1);
    assert_string_equal(e->dev[0], "b");
    free(e);
    touch_device(f->s, "a");
    models_t *m = models(f->s, "a", 0);
    assert_int_equal(m->n, 0);
    free(m);
    /* And they survive a restart. */
    store_close(f->s);
    f->s = open_store(f->dir, 0);
    memset(&d, 0, sizeof d);
    assert_int_equal(store_detectors_load(f->s, on_detector, &d), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.len[0], 100000);
}

/* The maps a rolled-back compaction leaves are reloaded with everything its transaction
 * committed: a device created there (its channels, its pending readings, published to readers)
 * and a device deleted there. Held, the writer takes cf_round's batches, a new device "n" (two
 * channels, two pending readings) and the deletion of "gone" in one transaction whose compaction
 * the trigger refuses. Afterwards "n" is read back whole, writes to its channels (and a third)
 * go in without a duplicate channel row, "gone" is unknown and created anew by a write, and all
 * of it holds after a reopen. */
static void *delete_gone(void *arg)
{
    return (void *)(intptr_t)store_device_delete(arg, "gone");
}

static void test_maintenance_undone_maps(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"}, *const ab[] = {"a", "b"}, *const bza[] = {"b", "z", "a"};
    double v = 1, vv[3] = {1, 2, 3};
    write1(f->s, "gone", 1000, 1, ch, &v);
    assert_int_equal(store__test_exec(f->s, "CREATE TRIGGER inject_compact BEFORE INSERT ON"
                                            " readings WHEN NEW.n >= 12"
                                            " BEGIN SELECT RAISE(ABORT, 'injected'); END"),
                     0);
    write1(f->s, "c", 100000, 1, ch, &v); /* pending */
    counter_t c;
    counter_init(&c);
    batch_t b;
    batch_init(&b);
    store__test_hold(f->s, 1);
    add_point(&b, "c", 50000, 1, ch, &v); /* late: the pending reading becomes a row */
    assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    for (int i = 1; i < CF_BATCHES; i++) {
        v = i;
        add_point(&b, "c", 100000 + i * 1000, 1, ch, &v);
        assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    }
    add_point(&b, "n", 1000, 2, ab, vv);
    add_point(&b, "n", 2000, 2, ab, vv);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, delete_gone, f->s), 0);
    usleep(300000); /* the deletion queued behind the batches */
    store__test_hold(f->s, 0);
    counter_wait(&c, CF_BATCHES + 1);
    assert_int_equal(c.ok, CF_BATCHES + 1);
    void *rc;
    pthread_join(th, &rc);
    assert_int_equal((intptr_t)rc, 0);
    batch_deinit(&b);
    counter_deinit(&c);
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.maintenance_rollbacks, 1);
    assert_int_equal(st.commit_errors, 0);

    for (int round = 0; round < 2; round++) {
        devinfo_t d = device(f->s, "n", 0);
        assert_int_equal(d.points, round == 0 ? 2 : 3);
        assert_int_equal(d.nch, round == 0 ? 2 : 3);
        assert_int_equal(d.first, 1000);
        assert_int_equal(all_points(f->s, "n").n, round == 0 ? 2 : 3);
        assert_int_equal(all_points(f->s, "c").n, CF_BATCHES + 1);
        assert_int_equal(device(f->s, "c", 0).points, CF_BATCHES + 1);
        if (round == 0) {
            device(f->s, "gone", ERR_NOTFOUND);
            write1(f->s, "n", 3000, 3, bza, vv); /* a lost channel would be inserted again */
            write1(f->s, "gone", 5000, 1, ch, &v);
        }
        d = device(f->s, "gone", 0);
        assert_int_equal(d.points, 1);
        assert_int_equal(d.first, 5000);
        got_t g;
        assert_int_equal(query(f->s, "n", 0, 10000, NULL, 0, 0, 0, &g), 0);
        assert_int_equal(g.n, 3);
        assert_true(got_val(&g, 2, "z") == 2);
        assert_true(got_val(&g, 0, "b") == 2);
        store_stats_get(f->s, &st);
        assert_int_equal(st.commit_errors, 0);
        store_close(f->s);
        f->s = open_store(f->dir, 0);
    }
}

/* A device's report while the writer reloads its maps (after a failed transaction, here a
 * client's; or undone maintenance, as above): the published counters, which add the pending
 * readings to the devices row's (rows only), are withdrawn until the reload ends. Before session
 * 33 a report took the devices row's counters then: test_maintenance_undone_maps read 0 points
 * for "n" and "gone" (all pending) after a reopen whose idle compaction of "c" failed, 1 run in
 * 10 under load. "p" has pending readings only, "r" rows and one pending reading. A trigger
 * refuses device "bad", so its batch fails and the writer reloads; the hook stops the reload
 * there. A report waits for it: ERR_AGAIN when it does not end (about a second), the full counts
 * when it ends meanwhile; the failed batch is refused, nothing else is lost. store_device_each,
 * which reads no counters, does not wait (task iqids: InfluxQL's SHOW statements): the ids and
 * channels at once, the same ids in the same order as store_device_list's after the reload. */
typedef struct reload_read {
    store_t *s;
    const char *dev;
    int rc;
    devinfo_t d;
} reload_read_t;

static void *reload_read(void *arg)
{
    reload_read_t *rr = arg;
    rr->rc = store_device_get(rr->s, rr->dev, on_device, &rr->d);
    return NULL;
}

static void test_reload_device_stats(void **state)
{
    fx_t *f = *state;
    static const char *const ch[] = {"v"};
    double v = 1;
    for (int i = 0; i < 5; i++)
        write1(f->s, "r", 1000 + i * 1000, 1, ch, &v);
    assert_int_equal(store__test_pend_flush(f->s), 0); /* r's five readings in rows */
    write1(f->s, "r", 9000, 1, ch, &v);
    write1(f->s, "p", 1000, 1, ch, &v);
    write1(f->s, "p", 2000, 1, ch, &v);
    assert_int_equal(device(f->s, "r", 0).points, 6);
    assert_int_equal(device(f->s, "p", 0).points, 2);
    assert_int_equal(store__test_exec(f->s, "CREATE TRIGGER refuse_bad BEFORE INSERT ON devices"
                                            " WHEN NEW.name = 'bad'"
                                            " BEGIN SELECT RAISE(ABORT, 'injected'); END"),
                     0);

    store__test_reload_hold(f->s, 1);
    counter_t c;
    counter_init(&c);
    batch_t b;
    batch_init(&b);
    add_point(&b, "bad", 1000, 1, ch, &v);
    assert_int_equal(store_submit(f->s, &b, on_done, &c), 0);
    wait_reload_held(f->s);
    /* The reload does not end: no counts rather than the rows' alone. */
    device(f->s, "p", ERR_AGAIN);
    devinfo_t d;
    memset(&d, 0, sizeof d);
    assert_int_equal(store_device_list(f->s, NULL, 0, on_device, &d), ERR_AGAIN);
    /* store_device_each (no counters) answers at once: the ids in order, their channels. */
    devinfo_t each;
    memset(&each, 0, sizeof each);
    assert_int_equal(store_device_each(f->s, on_device, &each), 0);
    assert_int_equal(each.calls, 2);
    assert_string_equal(each.list[0], "p");
    assert_string_equal(each.list[1], "r");
    assert_int_equal(each.points, -1);
    assert_int_equal(each.first, -1);
    assert_int_equal(each.last, -1);
    assert_int_equal(each.nch, 1);
    assert_string_equal(each.ch[0], "v");
    /* It ends while a report waits: the report has the full counts. */
    reload_read_t rr = {.s = f->s, .dev = "p"};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reload_read, &rr), 0);
    usleep(100000);
    store__test_reload_hold(f->s, 0);
    pthread_join(th, NULL);
    assert_int_equal(rr.rc, 0);
    assert_int_equal(rr.d.points, 2);
    assert_int_equal(rr.d.first, 1000);
    assert_int_equal(rr.d.last, 2000);
    counter_wait(&c, 1);
    assert_int_equal(c.bad, 1);
    batch_deinit(&b);
    counter_deinit(&c);

    /* Afterwards, and after a reopen: every acknowledged reading, nothing of "bad". */
    for (int round = 0; round < 2; round++) {
        assert_int_equal(device(f->s, "p", 0).points, 2);
        d = device(f->s, "r", 0);
        assert_int_equal(d.points, 6);
        assert_int_equal(d.first, 1000);
        assert_int_equal(d.last, 9000);
        assert_int_equal(all_points(f->s, "r").n, 6);
        device(f->s, "bad", ERR_NOTFOUND);
        memset(&d, 0, sizeof d);
        assert_int_equal(store_device_list(f->s, NULL, 0, on_device, &d), 0);
        assert_int_equal(d.calls, 2);
        /* The same ids, in the same order, as store_device_each listed during the reload. */
        assert_memory_equal(d.list, each.list, sizeof d.list);
        store_close(f->s);
        f->s = open_store(f->dir, 0);
    }
}

/* ---- prediction blocks (schema 6) ---- */

/* The reports of pred puts, in the order the writer made them. */
typedef struct preds_seen {
    int n;
    int64_t seq[64];
    int status[64];
} preds_seen_t;

static void on_pred(void *arg, int64_t seq, int status)
{
    preds_seen_t *p = arg;
    if (p->n < 64) {
        p->seq[p->n] = seq;
        p->status[p->n] = status;
    }
    p->n++;
}

static int on_pred_list(void *arg, const char *device, int64_t seq, uint32_t n, int nch, int64_t t1)
{
    preds_got_t *g = arg;
    assert_int_equal(nch, 8);
    assert_true(g->n < 64);
    snprintf(g->dev[g->n], sizeof g->dev[0], "%s", device);
    g->seq[g->n] = seq;
    g->cnt[g->n] = n;
    g->t1[g->n] = t1;
    g->n++;
    return 0;
}

/* Puts, reads by seq range, the trim below keep_from and from the put's seq on, the listing for
 * start-up, sizes, reports in put order, a drop, a device's deletion, and bad arguments. */
static void test_preds(void **state)
{
    fx_t *f = *state;
    assert_int_equal(store_device_put(f->s, "d1", NULL, NULL), 0);
    assert_int_equal(store_device_put(f->s, "d2", NULL, NULL), 0);
    unsigned char buf[256];
    preds_seen_t seen = {0};
    for (int64_t q = 0; q < 5; q++) {
        store_pred_t b = pred_block(buf, 100 + (size_t)q, q, -1, 0);
        assert_int_equal(store_pred_put(f->s, "d1", &b, on_pred, &seen), 0);
    }
    store_pred_t b2 = pred_block(buf, 50, 0, -1, 9);
    assert_int_equal(store_pred_put(f->s, "d2", &b2, NULL, NULL), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(seen.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(seen.seq[i], i);
        assert_int_equal(seen.status[i], 0);
    }
    /* [1, 4): blocks 1, 2, 3, their bytes as put. */
    preds_got_t *g = calloc(1, sizeof *g);
    assert_non_null(g);
    assert_int_equal(store_preds_read(f->s, "d1", 1, 4, on_pred_read, g), 0);
    assert_int_equal(g->n, 3);
    for (int i = 0; i < 3; i++) {
        unsigned char want[256];
        pred_block(want, 101 + (size_t)i, 1 + i, -1, 0);
        assert_int_equal(g->seq[i], 1 + i);
        assert_int_equal(g->cnt[i], 64);
        assert_int_equal(g->len[i], 101 + i);
        assert_memory_equal(g->bytes[i], want, g->len[i]);
    }
    int64_t blocks, bytes;
    assert_int_equal(store_preds_size(f->s, "d1", &blocks, &bytes), 0);
    assert_int_equal(blocks, 5);
    assert_int_equal(bytes, 100 + 101 + 102 + 103 + 104);
    /* Block 5 keeping from 3: 0..2 go. Then block 4 again (other bytes): 5 goes too. */
    store_pred_t b = pred_block(buf, 120, 5, 3, 0);
    assert_int_equal(store_pred_put(f->s, "d1", &b, NULL, NULL), 0);
    b = pred_block(buf, 90, 4, 3, 1);
    assert_int_equal(store_pred_put(f->s, "d1", &b, NULL, NULL), 0);
    assert_int_equal(store_flush(f->s), 0);
    memset(g, 0, sizeof *g);
    assert_int_equal(store_preds_list(f->s, on_pred_list, g), 0);
    assert_int_equal(g->n, 3); /* d1: 3, 4; d2: 0 (devices in creation order) */
    assert_string_equal(g->dev[0], "d1");
    assert_int_equal(g->seq[0], 3);
    assert_int_equal(g->t1[0], 3063);
    assert_string_equal(g->dev[1], "d1");
    assert_int_equal(g->seq[1], 4);
    assert_string_equal(g->dev[2], "d2");
    assert_int_equal(g->seq[2], 0);
    memset(g, 0, sizeof *g);
    assert_int_equal(store_preds_read(f->s, "d1", 0, INT64_MAX, on_pred_read, g), 0);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->len[1], 90);
    assert_memory_equal(g->bytes[1], buf, 90);
    /* Bad arguments: nothing queued, no report. */
    seen.n = 0;
    b = pred_block(buf, 10, 7, 0, 0);
    b.len = 0;
    assert_int_equal(store_pred_put(f->s, "d1", &b, on_pred, &seen), ERR_INVAL);
    b = pred_block(buf, 10, 7, 0, 0);
    b.n = 0;
    assert_int_equal(store_pred_put(f->s, "d1", &b, on_pred, &seen), ERR_INVAL);
    b = pred_block(buf, 10, 7, 0, 0);
    b.nch = 65;
    assert_int_equal(store_pred_put(f->s, "d1", &b, on_pred, &seen), ERR_INVAL);
    b = pred_block(buf, 10, 7, 0, 0);
    b.t1 = b.t0 - 1;
    assert_int_equal(store_pred_put(f->s, "d1", &b, on_pred, &seen), ERR_INVAL);
    b = pred_block(buf, 10, 7, 0, 0);
    assert_int_equal(store_pred_put(f->s, "no such/../name\n", &b, on_pred, &seen), ERR_INVAL);
    /* An unknown device: a no-op, reported committed (the ring may free its block). */
    store_stats_t st0, st1;
    store_stats_get(f->s, &st0);
    assert_int_equal(store_pred_put(f->s, "ghost", &b, on_pred, &seen), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.status[0], 0);
    store_stats_get(f->s, &st1);
    assert_int_equal(st1.ops_skipped, st0.ops_skipped + 1);
    assert_int_equal(store_preds_read(f->s, "ghost", 0, 10, on_pred_read, g), ERR_NOTFOUND);
    assert_int_equal(store_preds_size(f->s, "ghost", &blocks, &bytes), ERR_NOTFOUND);
    /* A drop, and a deletion, take every block of their device only. */
    assert_int_equal(store_preds_drop(f->s, "d1"), 0);
    assert_int_equal(store_flush(f->s), 0);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM preds WHERE device_id=(SELECT id FROM"
                                     " devices WHERE name='d1')"),
                     0);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM preds"), 1);
    assert_int_equal(store_device_delete(f->s, "d2"), 0);
    assert_int_equal(sql_int(f->dir, "SELECT count(*) FROM preds"), 0);
    free(g);
}

/* A block whose bytes do not match their checksum, or whose count is out of range, is an error
 * (ERR_CORRUPT), not a crash: the blocks before it are reported, it is not. */
static void test_preds_corrupt(void **state)
{
    fx_t *f = *state;
    assert_int_equal(store_device_put(f->s, "c", NULL, NULL), 0);
    unsigned char buf[256];
    for (int64_t q = 0; q < 3; q++) {
        store_pred_t b = pred_block(buf, 200, q, -1, 0);
        assert_int_equal(store_pred_put(f->s, "c", &b, NULL, NULL), 0);
    }
    assert_int_equal(store_flush(f->s), 0);
    preds_got_t *g = calloc(1, sizeof *g);
    assert_non_null(g);
    /* One byte changed. */
    assert_int_equal(store__test_exec(f->s, "UPDATE preds SET data=x'00' || substr(data, 2)"
                                            " WHERE seq=1"),
                     0);
    assert_int_equal(store_preds_read(f->s, "c", 0, 3, on_pred_read, g), ERR_CORRUPT);
    assert_int_equal(g->n, 1);
    assert_int_equal(g->seq[0], 0);
    assert_string_not_equal(store_errmsg(f->s), "");
    /* Truncated. */
    memset(g, 0, sizeof *g);
    assert_int_equal(store__test_exec(f->s, "UPDATE preds SET data=substr(data, 1, 10)"
                                            " WHERE seq=2"),
                     0);
    assert_int_equal(store_preds_read(f->s, "c", 2, 3, on_pred_read, g), ERR_CORRUPT);
    assert_int_equal(g->n, 0);
    /* A count out of range, a NULL blob: refused by the read, left out of the listing. */
    assert_int_equal(store__test_exec(f->s, "UPDATE preds SET n=0 WHERE seq=0"), 0);
    assert_int_equal(store_preds_read(f->s, "c", 0, 1, on_pred_read, g), ERR_CORRUPT);
    assert_int_equal(g->n, 0);
    assert_int_equal(store_preds_list(f->s, on_pred_list, g), 0);
    assert_int_equal(g->n, 2); /* blocks 1 and 2: their bytes are only read by a read */
    free(g);
}

/* A put lost with a failed transaction (disk full) is reported failed, in order with the
 * others, so the ring keeps its block and puts it again. */
static void test_preds_failed_report(void **state)
{
    fx_t *f = *state;
    assert_int_equal(store_device_put(f->s, "r", NULL, NULL), 0);
    unsigned char buf[256];
    preds_seen_t seen = {0};
    counter_t c;
    counter_init(&c);
    batch_t bt;
    batch_init(&bt);
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1"), 0);
    store__test_hold(f->s, 1);
    fill_batch(&bt, "r-new", 0, 20000);
    assert_int_equal(store_submit(f->s, &bt, on_done, &c), 0);
    store_pred_t b = pred_block(buf, 200, 0, -1, 0);
    assert_int_equal(store_pred_put(f->s, "r", &b, on_pred, &seen), 0);
    store__test_hold(f->s, 0);
    counter_wait(&c, 1);
    assert_int_equal(c.bad, 1);
    (void)store_flush(f->s); /* its reports have run once it returns, whatever its status */
    assert_int_equal(seen.n, 1);
    assert_int_not_equal(seen.status[0], 0);
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1073741823"), 0);
    batch_deinit(&bt);
    counter_deinit(&c);
}

/* a's 20 periods keep the newest STORE_MAINT_KEEP (16), oldest first, a put with the same start
 * replaces the end and note; b's one is reported after a's (creation order); the periods survive
 * a reopen; deleting a deletes its periods; an end before the start and an unknown device put
 * nothing. */
static void test_maint(void **state)
{
    fx_t *f = *state;
    touch_device(f->s, "a");
    touch_device(f->s, "b");
    assert_int_equal(store_maint_put(f->s, "b", 50, 60, NULL), 0);
    for (int i = 0; i < 20; i++) {
        char note[16];
        snprintf(note, sizeof note, "n%d", i);
        assert_int_equal(store_maint_put(f->s, "a", 1000 * i, 1000 * i + 500, note), 0);
    }
    assert_int_equal(store_maint_put(f->s, "a", 19000, 19100, "ended"), 0);
    assert_int_equal(store_maint_put(f->s, "a", 10, 5, NULL), ERR_INVAL);
    assert_int_equal(store_maint_put(f->s, "nosuch", 1, 2, NULL), 0);
    assert_int_equal(store_flush(f->s), 0);
    /* Waited for, never on the queue of puts: not counted as its puts (ops_written + ops_skipped
     * + ops_failed is the restore's retry's FIFO mark against ops_queued). */
    store_stats_t st;
    store_stats_get(f->s, &st);
    assert_int_equal(st.ops_written + st.ops_skipped + st.ops_failed, 0);
    maint_got_t *g = calloc(2, sizeof *g);
    assert_non_null(g);
    assert_int_equal(store_maint_load(f->s, on_maint, g), 0);
    assert_int_equal(g->n, STORE_MAINT_KEEP + 1);
    for (int i = 0; i < STORE_MAINT_KEEP; i++) {
        assert_string_equal(g->dev[i], "a");
        assert_int_equal(g->start[i], 1000 * (i + 4));
    }
    assert_int_equal(g->end[0], 4500);
    assert_string_equal(g->note[0], "n4");
    assert_int_equal(g->end[STORE_MAINT_KEEP - 1], 19100);
    assert_string_equal(g->note[STORE_MAINT_KEEP - 1], "ended");
    assert_string_equal(g->dev[STORE_MAINT_KEEP], "b");
    assert_int_equal(g->start[STORE_MAINT_KEEP], 50);
    assert_string_equal(g->note[STORE_MAINT_KEEP], "");

    store_close(f->s);
    f->s = open_store(f->dir, 0);
    assert_int_equal(store_maint_load(f->s, on_maint, &g[1]), 0);
    assert_memory_equal(&g[1], &g[0], sizeof g[0]);

    assert_int_equal(store_device_delete(f->s, "a"), 0);
    memset(g, 0, sizeof *g);
    assert_int_equal(store_maint_load(f->s, on_maint, g), 0);
    assert_int_equal(g->n, 1);
    assert_string_equal(g->dev[0], "b");
    free(g);
}

/* store_dbname_put keeps each name once, in the order of first use, across a reopen; the load's
 * max bounds what it reports; a name the API would not list is refused. */
static void test_dbnames(void **state)
{
    fx_t *f = *state;
    names_got_t g = {0};
    assert_int_equal(store_dbnames_load(f->s, 0, on_dbname, &g), 0);
    assert_int_equal(g.n, 0);
    char longest[STORE_DBNAME_MAX + 2];
    memset(longest, 'x', sizeof longest - 1);
    longest[STORE_DBNAME_MAX] = '\0';
    const char *names[] = {"telegraf", "plant db", "tele\"graf", longest};
    for (int i = 0; i < 4; i++)
        assert_int_equal(store_dbname_put(f->s, names[i]), 0);
    assert_int_equal(store_dbname_put(f->s, "plant db"), 0); /* known: no second row */
    char too_long[STORE_DBNAME_MAX + 2];
    memset(too_long, 'y', sizeof too_long - 1);
    too_long[STORE_DBNAME_MAX + 1] = '\0';
    assert_int_equal(store_dbname_put(f->s, too_long), ERR_INVAL);
    assert_int_equal(store_dbname_put(f->s, ""), ERR_INVAL);
    assert_int_equal(store_dbname_put(f->s, "c\x01trl"), ERR_INVAL);
    assert_int_equal(store_dbname_put(f->s, NULL), ERR_INVAL);
    /* Waited for: committed when the put returns, so a reopen lists them. */
    store_close(f->s);
    f->s = open_store(f->dir, 0);
    assert_int_equal(store_dbnames_load(f->s, 0, on_dbname, &g), 0);
    assert_int_equal(g.n, 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(g.name[i], names[i]);
    memset(&g, 0, sizeof g);
    assert_int_equal(store_dbnames_load(f->s, 2, on_dbname, &g), 0);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.name[1], "plant db");
}

/* The maintenance periods s holds once its queue is committed, in the first of n new
 * maint_got_t (caller frees). */
static maint_got_t *maint_committed(store_t *s, int n)
{
    maint_got_t *g = calloc((size_t)n, sizeof *g);
    assert_non_null(g);
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(store_maint_load(s, on_maint, g), 0);
    return g;
}

/* store_maint_delete: a cancelled period is deleted, the device's others kept with their notes
 * (also after a reopen); a start where none is, another device's period and an unknown device
 * delete nothing. */
static void test_maint_delete(void **state)
{
    fx_t *f = *state;
    touch_device(f->s, "a");
    touch_device(f->s, "b");
    assert_int_equal(store_maint_put(f->s, "a", 100, 200, "shift"), 0);
    assert_int_equal(store_maint_put(f->s, "a", 300, 400, "week-end"), 0);
    assert_int_equal(store_maint_put(f->s, "b", 300, 400, NULL), 0);
    assert_int_equal(store_maint_delete(f->s, "a", 300), 0);
    assert_int_equal(store_maint_delete(f->s, "a", 150), 0);
    assert_int_equal(store_maint_delete(f->s, "nosuch", 100), 0);
    assert_int_equal(store_maint_delete(f->s, "", 100), ERR_INVAL);
    maint_got_t *g = maint_committed(f->s, 2);
    assert_int_equal(g->n, 2);
    assert_string_equal(g->dev[0], "a");
    assert_int_equal(g->start[0], 100);
    assert_int_equal(g->end[0], 200);
    assert_string_equal(g->note[0], "shift");
    assert_string_equal(g->dev[1], "b");
    assert_int_equal(g->start[1], 300);

    store_close(f->s);
    f->s = open_store(f->dir, 0);
    assert_int_equal(store_maint_load(f->s, on_maint, &g[1]), 0);
    assert_memory_equal(&g[1], &g[0], sizeof g[0]);
    free(g);
}

/* store_maint_put and store_maint_delete return their own commit's status: a put the full
 * disk refused is ERR_NOSPACE (not 0 as a queued put was) and left nothing; right after, both
 * are refused without a try; once space returns and the back-off has passed, the same put
 * commits and a reopen has it. */
static void test_maint_commit_status(void **state)
{
    fx_t *f = *state;
    touch_device(f->s, "a");
    assert_int_equal(store_maint_put(f->s, "a", 100, 200, "kept"), 0);
    char note[6000]; /* overflow pages: it cannot fit in the pages there are */
    memset(note, 'n', sizeof note - 1);
    note[sizeof note - 1] = '\0';
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1"), 0);
    assert_int_equal(store_maint_put(f->s, "a", 300, 400, note), ERR_NOSPACE);
    assert_int_equal(store_maint_put(f->s, "a", 300, 400, NULL), ERR_NOSPACE);
    assert_int_equal(store_maint_delete(f->s, "a", 100), ERR_NOSPACE);
    maint_got_t *g = maint_committed(f->s, 2);
    assert_int_equal(g->n, 1);
    assert_int_equal(g->start[0], 100);

    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1073741823"), 0);
    int err = ERR_NOSPACE;
    for (int i = 0; i < 100 && err == ERR_NOSPACE; i++)
        if ((err = store_maint_put(f->s, "a", 300, 400, note)) == ERR_NOSPACE)
            usleep(50000);
    assert_int_equal(err, 0);
    store_close(f->s);
    f->s = open_store(f->dir, 0);
    memset(g, 0, 2 * sizeof *g);
    assert_int_equal(store_maint_load(f->s, on_maint, g), 0);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->start[1], 300);
    assert_int_equal(g->end[1], 400);
    assert_int_equal(strlen(g->note[1]), sizeof g->note[1] - 1); /* on_maint cuts it */
    free(g);
}

const struct CMUnitTest storage_devices_tests[] = {
    cmocka_unit_test_setup_teardown(test_devices, setup, teardown),
    cmocka_unit_test_setup_teardown(test_models, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ops_skipped, setup, teardown),
    cmocka_unit_test_setup_teardown(test_detectors_and_delete, setup, teardown),
    cmocka_unit_test_setup_teardown(test_maintenance_undone_maps, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reload_device_stats, setup, teardown),
    cmocka_unit_test_setup_teardown(test_preds, setup, teardown),
    cmocka_unit_test_setup_teardown(test_preds_corrupt, setup, teardown),
    cmocka_unit_test_setup_teardown(test_preds_failed_report, setup, teardown),
    cmocka_unit_test_setup_teardown(test_maint, setup, teardown),
    cmocka_unit_test_setup_teardown(test_maint_delete, setup, teardown),
    cmocka_unit_test_setup_teardown(test_maint_commit_status, setup, teardown),
    cmocka_unit_test_setup_teardown(test_dbnames, setup, teardown),
};
const size_t storage_devices_ntests =
    sizeof storage_devices_tests / sizeof storage_devices_tests[0];

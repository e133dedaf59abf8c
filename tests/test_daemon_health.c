/* tests/test_daemon_health.c: unit tests of daemon/health.c's storage check: its message whole
 * with every reason at once (health__reasons on made-up counters, the longest numbers), the
 * refused-writes rule at its edges (counters again: a refusal within the bound, the store's
 * back-off under a shorter bound), and a full disk on a real store with a 1 s bound: writes the
 * store refuses without trying during its back-off keep the check failing (before task health2
 * only failed transactions counted, so the check read healthy while clients were being
 * refused). The daemon-level cases (/healthz, /health, vigil_healthy) are
 * tests/integration/test_health.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "err.h"
#include "health.h"
#include "storage.h"
#include "vtime.h"

#include "daemon_fx.h"
#include "store_hooks.h"

/* Every reason at once, with the longest numbers the counters can hold and the longest error
 * text, fits HEALTH_WHY_MAX whole: each reason's end is there and nothing is cut. (A stall and
 * refused writes at once needs a write refused without trying after the writer's last
 * progress, then a stall on the next one; the daemon cannot be driven there on demand.) Before
 * task health2 the reasons were formatted into 256 bytes each and the check's message had
 * 512: this case lost the maps' reason. A buffer too small cuts with "..." after the first
 * reason's opening. */
static void test_message_whole(void **state)
{
    (void)state;
    const int64_t now = 9000000000000000LL; /* about 285,000 years of uptime, in ms */
    store_stats_t st;
    memset(&st, 0, sizeof st);
    st.queue_readings = st.ops_queued = UINT64_MAX;
    st.commit_fail_run = UINT64_MAX;
    st.commit_last_err = ERR_AGAIN;
    st.commit_last_ms = 1;
    st.commit_fail_ms = now - 2;
    st.write_refused_ms = now - 1;
    st.refusing_until_ms = INT64_MAX;
    st.maps_reload_fails = 1000;
    for (int e = -1; strcmp(err_str(e), "unknown error") != 0; e--) /* the longest text */
        if (strlen(err_str(e)) > strlen(err_str(st.commit_last_err)))
            st.commit_last_err = e;
    char why[HEALTH_WHY_MAX];
    unsigned bits = health__reasons(&st, now - 1, now, now - 2, why, sizeof why);
    assert_int_equal(bits, HEALTH_STALLED | HEALTH_COMMITS | HEALTH_MAPS_STALE);
    assert_true(strlen(why) < sizeof why - 1);
    assert_null(strstr(why, "..."));
    assert_true(strncmp(why, "the storage writer has finished no transaction", 46) == 0);
    assert_non_null(strstr(why, "; writes are refused: the last 18446744073709551615 write"));
    assert_non_null(strstr(why, "refused without trying (disk full) 0.0 s ago"));
    assert_non_null(strstr(why, ", and the store refuses writes without trying (disk full) for "));
    assert_non_null(strstr(why, " s more; commits: the last "));
    const char *tail = "; reloading the device maps failed 1000 times in a row: reads answer 503 "
                       "until it succeeds";
    assert_true(strlen(why) > strlen(tail));
    assert_string_equal(why + strlen(why) - strlen(tail), tail);
    /* ... and the data folder's after them, at its longest (read69a 4: 1,024 bytes cut it). */
    char files[HEALTH_FILES_MAX];
    memset(files, 'x', sizeof files - 1);
    files[sizeof files - 1] = '\0';
    health__files_reason(why, sizeof why, files);
    assert_null(strstr(why, "..."));
    size_t end = strlen(why), n = sizeof files - 1;
    assert_true(end > n + 2);
    assert_memory_equal(why + end - n - 2, "; ", 2);
    assert_string_equal(why + end - n, files);

    char small[40];
    assert_int_equal(health__reasons(&st, now - 1, now, now - 2, small, sizeof small), bits);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_string_equal(small, "the storage writer has finished no t...");
    /* A cut message stays cut: no reason after its "..." (read69a 4). */
    health__files_reason(small, sizeof small, "the data folder /x is not the one vigild opened");
    assert_string_equal(small, "the storage writer has finished no t...");
    /* A cut between characters leaves room, still nothing after it. */
    char tiny[11];
    health__files_reason(strcpy(tiny, ""), sizeof tiny, "ab\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9xyz");
    assert_string_equal(tiny, "ab\xc3\xa9\xc3\xa9...");
    health__files_reason(tiny, sizeof tiny, "z");
    assert_string_equal(tiny, "ab\xc3\xa9\xc3\xa9...");
}

/* Healthy counters give no message. */
static void test_message_healthy(void **state)
{
    (void)state;
    store_stats_t st;
    memset(&st, 0, sizeof st);
    char why[HEALTH_WHY_MAX];
    strcpy(why, "x");
    assert_int_equal(health__reasons(&st, 0, 5000, 1000, why, sizeof why), 0);
    assert_string_equal(why, "");
}

/* The refused-writes rule at its edges, on made-up counters (no clock): a write refused without
 * trying within the bound counts past the failed transaction's own window; under a bound shorter
 * than the store's 1 s back-off (a systemd watchdog's 4 periods can be 400 ms) the check fails
 * while the store refuses, even with no write refused yet; past both it passes, and a commit
 * since passes it at once. test_refused_without_trying shows the first on a real store; the
 * back-off half (refusing_until_ms) had no test. */
static void test_refusal_window(void **state)
{
    (void)state;
    const int64_t now = 100000;
    store_stats_t st;
    memset(&st, 0, sizeof st);
    st.commit_fail_run = 1;
    st.commit_last_err = ERR_NOSPACE;
    st.commit_last_ms = now - 5000;
    char why[HEALTH_WHY_MAX];

    /* Bound 400 ms: the failure is 600 ms old, nothing refused since, the back-off runs on. */
    st.commit_fail_ms = now - 600;
    st.refusing_until_ms = now + 400;
    assert_int_equal(health__reasons(&st, 0, now, 400, why, sizeof why), HEALTH_COMMITS);
    assert_non_null(strstr(why, "writes are refused: the last 1 write transaction failed (no "
                                "space left on device), the latest 0.6 s ago (counts for 0.4 s), "
                                "and the store refuses writes without trying (disk full) for 0.4 "
                                "s more; commits: the last 5.0 s ago"));
    st.refusing_until_ms = now; /* the back-off just ended */
    assert_int_equal(health__reasons(&st, 0, now, 400, why, sizeof why), 0);
    assert_string_equal(why, "");

    /* Bound 1 s: the failure is past it, a write refused without trying 0.5 s ago is not. */
    st.commit_fail_ms = now - 1050;
    st.refusing_until_ms = now - 50;
    st.write_refused_ms = now - 500;
    assert_int_equal(health__reasons(&st, 0, now, 1000, why, sizeof why), HEALTH_COMMITS);
    assert_non_null(strstr(why, "the latest 1.1 s ago, the latest refused without trying (disk "
                                "full) 0.5 s ago (counts for 1.0 s); commits: "));
    st.write_refused_ms = now - 1001;
    assert_int_equal(health__reasons(&st, 0, now, 1000, why, sizeof why), 0);

    /* A commit since the failure: healthy, whatever was refused before it. */
    st.write_refused_ms = now - 10;
    st.refusing_until_ms = now + 900;
    st.commit_fail_run = 0;
    assert_int_equal(health__reasons(&st, 0, now, 1000, why, sizeof why), 0);
}

/* ---- a full disk on a real store ---- */

typedef struct fulldisk {
    char dir[40];
    store_t *s;
    batch_t b;
} fulldisk_t;

static void add_points(batch_t *b, const char *dev, int64_t ts0, int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(batch_point_begin(b, dev, strlen(dev), ts0 + i, 0), 0);
        assert_int_equal(batch_field_add(b, "v", 1, (double)i), 0);
        assert_int_equal(batch_point_commit(b), 1);
    }
}

static void on_done(void *arg, int status)
{
    (void)arg;
    (void)status;
}

/* A store whose database is capped at its size (SQLite raises a smaller cap to the page count):
 * the next write that grows it finds the disk full. */
static void fulldisk_open(fulldisk_t *f)
{
    memset(f, 0, sizeof *f);
    strcpy(f->dir, "/tmp/vigil-test-dhealth-XXXXXX");
    f->s = dfx_store_open(f->dir, 1);
    batch_init(&f->b);
    add_points(&f->b, "before", 1000, 1);
    assert_int_equal(store_write(f->s, &f->b), 0);
    assert_int_equal(store__test_exec(f->s, "PRAGMA max_page_count=1"), 0);
}

static void fulldisk_close(fulldisk_t *f)
{
    batch_deinit(&f->b);
    dfx_store_remove(f->s, f->dir);
}

static void sleep_until(int64_t mono_ms)
{
    for (int64_t now; (now = vtime_mono_ms()) < mono_ms;)
        usleep((useconds_t)(mono_ms - now) * 1000);
}

/* One turn: a write finds the disk full (its transaction fails), writes submitted for half the
 * store's 1 s back-off are refused without trying, then, nothing written, the check looks just
 * after the failed transaction's 1 s (the old rule's window) has passed. Returns 1 when the
 * turn shows the rule: a refusal was seen and the look ended within the bound of the last one,
 * so the check must fail; 0 when the machine was too slow for that (the caller takes another
 * turn). */
static int refused_turn(fulldisk_t *f, health_t *h, int64_t *refused_at)
{
    batch_reset(&f->b);
    add_points(&f->b, "big", 0, 20000);
    /* Tried: the previous turn (if any) ended past its back-off. */
    assert_int_equal(store_write(f->s, &f->b), ERR_NOSPACE);
    int64_t failed_by = vtime_mono_ms(); /* the transaction failed before this */
    int64_t last = 0;
    while (vtime_mono_ms() < failed_by + 500) {
        batch_reset(&f->b);
        add_points(&f->b, "small", 0, 1);
        int64_t before = vtime_mono_ms();
        int err = store_submit(f->s, &f->b, on_done, NULL);
        if (err != ERR_NOSPACE) { /* queued: the back-off had ended (a slow machine) */
            assert_int_equal(err, 0);
            return 0;
        }
        last = before;
        usleep(20000);
    }
    if (last == 0)
        return 0;
    sleep_until(failed_by + 1050);
    char why[HEALTH_WHY_MAX];
    unsigned bits = health_storage(h, why, sizeof why);
    if (vtime_mono_ms() >= last + 1000)
        return 0;
    assert_int_equal(bits, HEALTH_COMMITS);
    assert_non_null(strstr(why, "writes are refused: the last "));
    assert_non_null(strstr(why, "(no space left on device)"));
    assert_non_null(strstr(why, "refused without trying (disk full)"));
    assert_non_null(strstr(why, "(counts for 1.0 s)"));
    *refused_at = last;
    return 1;
}

/* http.health_stall_s = 1 and a full disk: writes submitted during the store's back-off after a
 * failed transaction are refused without one, and the check fails for the bound after the
 * last of them, past the failed transaction's own window. With nothing written after, it passes
 * again once the last refusal is older than the bound (the circuit breaker as before). The
 * turn is repeated (bounded) when the machine was too slow to show it. */
static void test_refused_without_trying(void **state)
{
    (void)state;
    fulldisk_t f;
    fulldisk_open(&f);
    health_t h;
    health_init(&h, f.s, 1000);
    int64_t refused_at = 0;
    int shown = 0;
    for (int turn = 0; turn < 20 && !shown; turn++)
        shown = refused_turn(&f, &h, &refused_at);
    assert_true(shown);
    sleep_until(refused_at + 1100);
    char why[HEALTH_WHY_MAX];
    assert_int_equal(health_storage(&h, why, sizeof why), 0);
    assert_string_equal(why, "");
    health_deinit(&h);
    fulldisk_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_whole),
        cmocka_unit_test(test_message_healthy),
        cmocka_unit_test(test_refusal_window),
        cmocka_unit_test(test_refused_without_trying),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

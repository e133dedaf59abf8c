/* tests/test_storage_snapshot.c: what a failed copy of store_snapshot returns (storage/
 * snapshot.c's vacuum_into; task stop3, session 58). ERR_CLOSED says the copy was cancelled (a
 * stop: the POST's 503 "server is shutting down", the scheduled copy's silence), so only
 * SQLITE_INTERRUPT (the progress handler's cancel) and SQLITE_BUSY once cancelled (the busy
 * handler gave up, snapshot_busy) map to it; a copy that fails for its own reason keeps its
 * code even when a stop has cancelled it meanwhile, so the log says what went wrong.
 *
 * The failure is a file-size limit (RLIMIT_FSIZE's soft limit 0 for this process during the
 * call, SIGXFSZ caught): VACUUM INTO's first write to the new file fails with EFBIG, as on a
 * full volume, without a tmpfs or root. The writer is held meanwhile (store__test_hold), so
 * nothing else of the store writes under the limit. The signal's handler is the stop's cancel:
 * it sets the flag the copy's cancel check reads, at the failed write itself.
 *
 * And a copy meeting another process's recovery of the WAL index (a forked child holding its
 * locks) past the wait, without a cancel (session 59): the store opened with the test hook
 * VIGIL_TEST_BUSY_MS, so the wait is a second, not STORE_BUSY_TIMEOUT_MS's 10.
 *
 * Run by tests/test_storage.c's main() with the other files' tables. */
#include "storage_fx.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>

/* The cancel flag store_snapshot polls (set from the start, or by the SIGXFSZ handler to
 * cancel_on_xfsz). */
static volatile sig_atomic_t cancel_flag, cancel_on_xfsz;

static int cancelled(void *arg)
{
    (void)arg;
    return cancel_flag;
}

static void on_xfsz(int sig)
{
    (void)sig;
    cancel_flag = cancel_on_xfsz;
}

enum { LIMIT_NONE, LIMIT_ONLY, LIMIT_CANCELS };

/* store_snapshot of f's store into f->dir/copy.db with the cancel check above (cancel_flag
 * first set to cancel_at_start); with limit, under a file-size limit of 0, SIGXFSZ caught and
 * (LIMIT_CANCELS) setting the flag. The copy, failed, is never left behind. Returns its code,
 * errmsg its message. */
static int snapshot_into(fx_t *f, int cancel_at_start, int limit, char *errmsg, size_t size)
{
    char dest[128];
    snprintf(dest, sizeof dest, "%s/copy.db", f->dir);
    assert_int_equal(store_flush(f->s), 0);
    store__test_hold(f->s, 1);
    cancel_flag = cancel_at_start;
    cancel_on_xfsz = limit == LIMIT_CANCELS;
    struct rlimit was, zero;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_xfsz;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
    zero = was;
    zero.rlim_cur = 0;
    if (limit) {
        assert_int_equal(sigaction(SIGXFSZ, &sa, &old), 0);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &zero), 0);
    }
    int64_t bytes = -1;
    int rc = store_snapshot(f->s, dest, cancelled, NULL, &bytes, errmsg, size);
    if (limit) {
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
        assert_int_equal(sigaction(SIGXFSZ, &old, NULL), 0);
    }
    store__test_hold(f->s, 0);
    struct stat st;
    assert_int_not_equal(stat(dest, &st), 0); /* removed: a partial copy takes no space */
    return rc;
}

/* The copy's write fails (EFBIG) and the stop's cancel comes with it: the failure is said as it
 * is (ERR_IO, SQLite's message with the system's), not as a cancel. */
static void test_snapshot_failure_in_a_stop_keeps_its_code(void **state)
{
    fx_t *f = *state;
    write_series(f->s, "snap", 0, 1000, 50, 0);
    char errmsg[512];
    int rc = snapshot_into(f, 0, LIMIT_CANCELS, errmsg, sizeof errmsg);
    assert_int_equal(cancel_flag, 1); /* the limit was met: the cancel came at the failed write */
    assert_int_equal(rc, ERR_IO);
    assert_non_null(strstr(errmsg, "copying "));
    assert_non_null(strstr(errmsg, strerror(EFBIG)));
    /* The same failure without a cancel: the same code. */
    rc = snapshot_into(f, 0, LIMIT_ONLY, errmsg, sizeof errmsg);
    assert_int_equal(cancel_flag, 0);
    assert_int_equal(rc, ERR_IO);
    /* Without the limit the copy is made. */
    char dest[128];
    int64_t bytes = 0;
    cancel_flag = 0;
    snprintf(dest, sizeof dest, "%s/made.db", f->dir);
    assert_int_equal(store_snapshot(f->s, dest, cancelled, NULL, &bytes, errmsg, sizeof errmsg), 0);
    assert_true(bytes > 0);
}

/* A copy cancelled from the start, long enough for the progress handler to run (a table of
 * 50,000 rows: VACUUM INTO copies it in one statement of more than SNAPSHOT_PROGRESS_OPS steps),
 * is interrupted: ERR_CLOSED, the copy removed. */
static void test_snapshot_cancelled_is_closed(void **state)
{
    fx_t *f = *state;
    assert_int_equal(store__test_exec(f->s, "CREATE TABLE scratch(x INTEGER)"), 0);
    assert_int_equal(store__test_exec(f->s, "INSERT INTO scratch WITH RECURSIVE c(i) AS (SELECT 1 "
                                            "UNION ALL SELECT i + 1 FROM c WHERE i < 50000) "
                                            "SELECT i FROM c"),
                     0);
    char errmsg[512];
    assert_int_equal(snapshot_into(f, 1, LIMIT_NONE, errmsg, sizeof errmsg), ERR_CLOSED);
    assert_non_null(strstr(errmsg, "interrupted"));
}

/* The wait for another process's lock in this file's store (VIGIL_TEST_BUSY_MS, read at
 * store_open: storage/testhooks.c), so that a copy gives up in a second, not 10. */
#define BUSY_MS 1000

static int setup_busy(void **state)
{
    setenv("VIGIL_TEST_BUSY_MS", "1000", 1); /* BUSY_MS */
    int rc = setup(state);
    unsetenv("VIGIL_TEST_BUSY_MS");
    return rc;
}

/* A child process caught in the middle of recovering the store's WAL index, as
 * tests/integration/test_dblocked.py's RECOVERING is (its two locks taken directly): -shm's
 * write lock (byte 120) and recovery lock (byte 122) held, the index header's first copy
 * inverted, so a reader must recover the index and waits for SQLITE_BUSY_RECOVERY. Writes one
 * byte to *held once it holds them; puts the header back and exits 0 once its pipe reads EOF
 * (closed by release_recovering), or after 30 s. Only async-signal-safe calls after fork. */
static pid_t hold_recovering(fx_t *f, int *tell)
{
    char shm[128];
    snprintf(shm, sizeof shm, "%s/vigil.db-shm", f->dir);
    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    if (pipe(down) != 0) {
        int e = errno;
        close(up[0]);
        close(up[1]);
        fail_msg("pipe: %s", strerror(e));
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(up[0]);
        close(up[1]);
        close(down[0]);
        close(down[1]);
        fail_msg("fork: %s", strerror(e));
    }
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        int fd = open(shm, O_RDWR);
        struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 120, .l_len = 1};
        unsigned char hdr[48], bad[48];
        if (fd < 0 || fcntl(fd, F_SETLK, &l) != 0)
            _exit(2);
        l.l_start = 122;
        if (fcntl(fd, F_SETLK, &l) != 0 || pread(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr)
            _exit(3);
        for (size_t i = 0; i < sizeof hdr; i++)
            bad[i] = (unsigned char)~hdr[i];
        if (pwrite(fd, bad, sizeof bad, 0) != (ssize_t)sizeof bad || write(up[1], "h", 1) != 1)
            _exit(4);
        struct pollfd p = {.fd = down[0], .events = POLLIN};
        (void)poll(&p, 1, 30000); /* bounded: let go when told, or after 30 s */
        _exit(pwrite(fd, hdr, sizeof hdr, 0) == (ssize_t)sizeof hdr ? 0 : 5);
    }
    close(up[1]);
    close(down[0]);
    char c;
    ssize_t k;
    do
        k = read(up[0], &c, 1); /* 1: held; 0 (EOF): the child failed */
    while (k < 0 && errno == EINTR);
    close(up[0]);
    if (k != 1) {
        /* Reaped before the test fails, so no child outlives it (a zombie, or one still
         * holding the locks for the next test): killed in case it is alive. */
        int status = 0;
        close(down[1]);
        kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
        fail_msg("the child did not take the -shm locks (read %zd, exit %d)", k,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    *tell = down[1];
    return pid;
}

static void release_recovering(pid_t pid, int tell)
{
    int status;
    close(tell);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Another process recovering the WAL index past the wait, no cancel (session 58 tested only a
 * cancelled copy's wait, it_dblocked the 10 s one): ERR_LOCKED, not ERR_CLOSED (no stop asked
 * for it), SQLite's message, no copy left; the room check's reads and VACUUM INTO's share one
 * deadline (store__busy_wait_from from the first wait), so the copy gives up after about
 * BUSY_MS, not once per read (three reads: 3 x BUSY_MS before session 58); once the other
 * process lets go, a copy is made. */
static void test_snapshot_busy_without_cancel_is_locked(void **state)
{
    fx_t *f = *state;
    write_series(f->s, "snap", 0, 1000, 50, 0);
    assert_int_equal(store_flush(f->s), 0);
    char dest[128], errmsg[512];
    snprintf(dest, sizeof dest, "%s/copy.db", f->dir);
    int tell;
    pid_t pid = hold_recovering(f, &tell);
    cancel_flag = 0;
    int64_t bytes = -1, t0 = vtime_mono_ms();
    int rc = store_snapshot(f->s, dest, cancelled, NULL, &bytes, errmsg, sizeof errmsg);
    int64_t took = vtime_mono_ms() - t0;
    release_recovering(pid, tell);
    assert_int_equal(rc, ERR_LOCKED);
    assert_non_null(strstr(errmsg, "copying "));
    assert_non_null(strstr(errmsg, "locked"));
    struct stat st;
    assert_int_not_equal(stat(dest, &st), 0);
    assert_true(took >= BUSY_MS - 50);     /* it waited (sqlite3_sleep's steps, to the deadline) */
    assert_true(took < 2 * BUSY_MS + 500); /* one deadline: three would be 3 s */
    assert_int_equal(store_snapshot(f->s, dest, cancelled, NULL, &bytes, errmsg, sizeof errmsg), 0);
    assert_true(bytes > 0);
}

const struct CMUnitTest storage_snapshot_tests[] = {
    cmocka_unit_test_setup_teardown(test_snapshot_failure_in_a_stop_keeps_its_code, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_snapshot_cancelled_is_closed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_snapshot_busy_without_cancel_is_locked, setup_busy,
                                    teardown),
};
const size_t storage_snapshot_ntests =
    sizeof storage_snapshot_tests / sizeof storage_snapshot_tests[0];

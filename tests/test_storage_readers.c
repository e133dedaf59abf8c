/* tests/test_storage_readers.c: unit tests of storage/'s reader pool (task leftovers, session
 * 41): a read with a deadline stops waiting for a reader connection when the deadline passes,
 * at its first connection and at the one it takes again after a wait for the writer; and a
 * read transaction whose COMMIT fails is rolled back, not left open on the pooled connection.
 * Task leftovers2 (session 42): one that cannot end is logged once, not at every read, and the
 * database names are read in a transaction of their own, not in one left open.
 *
 * The reader connections are held directly (store__reader_get, as a slow callback would hold
 * them) and handed back with store__reader_put; the COMMIT (and ROLLBACK) of the readers'
 * transactions are made to fail with an SQLite authorizer on their connections, which refuses
 * the statement as it is prepared (SQLITE_AUTH), as an I/O or memory failure would fail it.
 * Task files3 (session 53): store__wal_files_mode, which tightens the -wal and -shm while the
 * store's connections hold them, leaves their POSIX locks on the -shm in place. Review of task
 * files5 (session 54): store__open_fd reads a database through a descriptor.
 *
 * Run by tests/test_storage.c's main() with the other files' tables. */
#include "storage_fx.h"
#include "dbfiles_int.h"
#include "vtime.h"

static const char *const ch[] = {"v"};

/* The most reader connections a test holds (the fixture opens 2). */
#define RD_MAX 8

/* Takes every reader connection of s into held[] (s->opts.readers of them). */
static int hold_readers(store_t *s, store_reader_t **held)
{
    int n = s->opts.readers;
    assert_true(n <= RD_MAX);
    for (int i = 0; i < n; i++)
        held[i] = store__reader_get(s);
    return n;
}

static void put_readers(store_t *s, store_reader_t **held, int n)
{
    for (int i = 0; i < n; i++)
        store__reader_put(s, held[i]);
}

/* A read of "p" with a deadline dl_ms after it starts, on its own thread: a readings query
 * (kind 0), a report (1) or a list of every device (2). */
typedef struct dl_read {
    store_t *s;
    int kind;
    int64_t dl_ms;
    int rc;
    int64_t points;
    char msg[STORE_ERRMSG_LEN];
    int done; /* atomic */
} dl_read_t;

static void *dl_read_main(void *arg)
{
    dl_read_t *d = arg;
    int64_t deadline = vtime_mono_us() + d->dl_ms * 1000;
    if (d->kind == 0) {
        got_t *g = calloc(1, sizeof *g);
        assert_non_null(g);
        store_query_t q = {"p", 0, 10000, ch, 1, 0, 0, deadline, 0};
        d->rc = store_query(d->s, &q, collect, g);
        d->points = (int64_t)g->n;
        free(g);
    } else {
        devinfo_t info;
        memset(&info, 0, sizeof info);
        d->rc = d->kind == 1 ? store_device_get_until(d->s, "p", deadline, on_device, &info)
                             : store_device_list_until(d->s, NULL, 0, deadline, on_device, &info);
        d->points = info.points;
    }
    snprintf(d->msg, sizeof d->msg, "%s", store_errmsg(d->s));
    __atomic_store_n(&d->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Waits (10 s at most, on the flag) for the read to answer; returns whether it did. The bound
 * only ends a test on old code, where the read waits for a connection until it is handed
 * back. */
static int dl_read_answers(dl_read_t *d)
{
    for (int i = 0; i < 10000 && !__atomic_load_n(&d->done, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    return __atomic_load_n(&d->done, __ATOMIC_ACQUIRE);
}

/* Every reader connection held: a query, a report and a device list of "p", each with a
 * deadline 50 ms away, answer ERR_AGAIN, saying they timed out waiting for a reader connection,
 * while the connections are still held (the test hands them back only after the answers, or
 * after 10 s). No time is measured: the deadlines pass while the connections are surely held.
 * Before (session 41) each waited in store__reader_get until a connection came back, whatever
 * its deadline, and then answered 0. */
static void test_reader_wait_ends_at_deadline(void **state)
{
    fx_t *f = *state;
    double v = 1;
    write1(f->s, "p", 1000, 1, ch, &v);
    store_reader_t *held[RD_MAX];
    for (int kind = 0; kind < 3; kind++) {
        int n = hold_readers(f->s, held);
        dl_read_t d = {.s = f->s, .kind = kind, .dl_ms = 50};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, dl_read_main, &d), 0);
        int answered = dl_read_answers(&d);
        put_readers(f->s, held, n);
        pthread_join(th, NULL);
        assert_true(answered);
        assert_int_equal(d.rc, ERR_AGAIN);
        assert_non_null(strstr(d.msg, "timed out waiting for a reader connection"));
    }
    /* The connections back, the same reads answer. */
    for (int kind = 0; kind < 3; kind++) {
        dl_read_t d = {.s = f->s, .kind = kind, .dl_ms = 10000};
        dl_read_main(&d);
        assert_int_equal(d.rc, 0);
        assert_int_equal(d.points, 1);
    }
}

/* The connection taken again after a wait: a query (deadline 3 s away) waits for a held maps
 * reload with no connection (storage2); while it waits the test takes every connection, then
 * lets the reload go on. The query, woken by the reload, finds no connection free and answers
 * ERR_AGAIN at its deadline, saying it timed out waiting for a reader connection, the
 * connections still held. Before, it waited in store__reader_get until they were handed back
 * (after 10 s here) and answered 0. The one assumption on speed: the test releases the reload
 * within the 3 s (else the query's wait for the reload ends first: the message says so). */
static void test_reader_wait_after_reload_ends_at_deadline(void **state)
{
    fx_t *f = *state;
    counter_t c;
    hold_failed_reload(f->s, &c);
    int w0 = store__test_pend_waits(f->s);
    dl_read_t d = {.s = f->s, .kind = 0, .dl_ms = 3000};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, dl_read_main, &d), 0);
    for (int i = 0; i < 10000 && store__test_pend_waits(f->s) < w0 + 1; i++)
        usleep(1000);
    int waited = store__test_pend_waits(f->s) - w0;
    store_reader_t *held[RD_MAX];
    int n = hold_readers(f->s, held); /* free: the waiting query holds none */
    store__test_reload_hold(f->s, 0);
    int answered = dl_read_answers(&d);
    put_readers(f->s, held, n);
    pthread_join(th, NULL);
    store__test_pend_wait_ms(f->s, 0);
    counter_wait(&c, 1);
    assert_int_equal(waited, 1);
    assert_true(answered);
    /* The speed assumption broken (the reload published after the deadline, so the wait for it
     * ended first): said so, rather than as the message assertion below failing on a NULL. */
    if (strstr(d.msg, "pending readings") != NULL)
        fail_msg("the query's 3 s deadline passed before the released reload was published (a "
                 "machine this slow cannot run this test): %s",
                 d.msg);
    assert_int_equal(d.rc, ERR_AGAIN);
    assert_non_null(strstr(d.msg, "timed out waiting for a reader connection"));
    assert_int_equal(c.bad, 1);
    counter_deinit(&c);
    /* Everything back: the query answers, with the counters reloaded. */
    d = (dl_read_t){.s = f->s, .kind = 0, .dl_ms = 10000};
    dl_read_main(&d);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.points, 2);
}

/* What the authorizer refuses: 1 COMMIT, 2 COMMIT and ROLLBACK, 0 nothing. */
static int deny_mode;

static int deny_end(void *arg, int action, const char *a1, const char *a2, const char *a3,
                    const char *a4)
{
    (void)arg;
    (void)a2;
    (void)a3;
    (void)a4;
    if (action != SQLITE_TRANSACTION || a1 == NULL)
        return SQLITE_OK;
    if (deny_mode >= 1 && strcmp(a1, "COMMIT") == 0)
        return SQLITE_DENY;
    if (deny_mode >= 2 && strcmp(a1, "ROLLBACK") == 0)
        return SQLITE_DENY;
    return SQLITE_OK;
}

/* Sets (or, with on 0, removes) deny_end on every reader connection; they are all free. */
static void readers_authorizer(store_t *s, int on)
{
    for (int i = 0; i < s->opts.readers; i++)
        sqlite3_set_authorizer(s->readers[i].db, on ? deny_end : NULL, NULL);
}

/* How many reader connections are inside a transaction (all free: read on this thread). */
static int readers_in_txn(store_t *s)
{
    int k = 0;
    for (int i = 0; i < s->opts.readers; i++)
        k += !sqlite3_get_autocommit(s->readers[i].db);
    return k;
}

/* Writes "p" (one reading, at 1000) and has the readers' COMMIT and ROLLBACK refused as mode
 * says (deny_mode). */
static void deny_from(fx_t *f, int mode)
{
    double v = 1;
    write1(f->s, "p", 1000, 1, ch, &v);
    deny_mode = mode;
    readers_authorizer(f->s, 1);
}

/* The report of "p": its status, its points in *points (-1 when it failed). */
static int report_p(store_t *s, int64_t *points)
{
    devinfo_t d;
    memset(&d, 0, sizeof d);
    int rc = store_device_get(s, "p", on_device, &d);
    *points = rc == 0 ? d.points : -1;
    return rc;
}

/* A read transaction whose COMMIT fails (the authorizer refuses it): the read answers, and its
 * connection goes back to the pool outside any transaction (rolled back), so the next read
 * sees a later write. Then COMMIT and ROLLBACK both fail: no read answers from an old snapshot
 * (each either fails or sees the newest write), and once ROLLBACK works again every connection
 * recovers at its next read. Before (session 41) the failed COMMIT was ignored: the connection
 * stayed in its transaction (one in a transaction after the first read) and every later read
 * on it failed at BEGIN ("cannot start a transaction within a transaction"), for good. */
static void test_read_end_commit_fails(void **state)
{
    fx_t *f = *state;
    double v = 1;
    int64_t pts;
    deny_from(f, 1);
    int rc1 = report_p(f->s, &pts);
    int64_t pts1 = pts;
    int stuck1 = readers_in_txn(f->s);
    write1(f->s, "p", 2000, 1, ch, &v);
    int rc2 = report_p(f->s, &pts);
    int64_t pts2 = pts;

    deny_mode = 2; /* neither COMMIT nor ROLLBACK */
    int rc3 = report_p(f->s, &pts);
    int stuck3 = readers_in_txn(f->s);
    write1(f->s, "p", 3000, 1, ch, &v);
    int stale = 0; /* reads that answered, but not with the newest write */
    for (int i = 0; i < 2 * f->s->opts.readers; i++)
        stale += report_p(f->s, &pts) == 0 && pts != 3;

    deny_mode = 0; /* ROLLBACK works again */
    int bad = 0;
    for (int i = 0; i < f->s->opts.readers + 1; i++)
        bad += report_p(f->s, &pts) != 0 || pts != 3;
    int stuck_end = readers_in_txn(f->s);
    readers_authorizer(f->s, 0);

    assert_int_equal(rc1, 0);
    assert_int_equal(pts1, 1);
    assert_int_equal(stuck1, 0);
    assert_int_equal(rc2, 0);
    assert_int_equal(pts2, 2);
    assert_int_equal(rc3, 0); /* the read was made: its answer stands */
    assert_int_equal(stuck3, 1);
    assert_int_equal(stale, 0);
    assert_int_equal(bad, 0);
    assert_int_equal(stuck_end, 0);
}

/* Review of session 41's read_end (task leftovers2): a connection whose read transaction cannot
 * end (COMMIT and ROLLBACK refused) logs it once, not at each read on it: the first read
 * answers and logs "a read transaction did not end"; the 10 reads after it fail in read_begin
 * (the ROLLBACK refused again) and log nothing more; once ROLLBACK works the next read answers
 * and "... is rolled back; the connection reads again" is logged once. One thread, so each read
 * takes the connection the last one put back (the pool's free list is a stack): one stuck
 * connection. Before: the warning at every read, 11 times here, and no line at its end. */
static void test_read_end_stuck_logged_once(void **state)
{
    fx_t *f = *state;
    int64_t pts;
    deny_from(f, 2);
    errcap_t e;
    errcap_start(&e, f->dir);
    int rc0 = report_p(f->s, &pts);
    int failed = 0;
    for (int i = 0; i < 10; i++)
        failed += report_p(f->s, &pts) != 0;
    int stuck = readers_in_txn(f->s);
    deny_mode = 0;
    int rc_back = report_p(f->s, &pts);
    char *log = errcap_stop(&e);
    readers_authorizer(f->s, 0);
    int warned = count_in(log, "a read transaction did not end");
    int ended = count_in(log, "the read transaction that did not end is rolled back");
    free(log);
    assert_int_equal(rc0, 0);
    assert_int_equal(failed, 10);
    assert_int_equal(stuck, 1);
    assert_int_equal(warned, 1); /* before: 11 */
    assert_int_equal(rc_back, 0);
    assert_int_equal(pts, 1);
    assert_int_equal(ended, 1);
    assert_int_equal(readers_in_txn(f->s), 0);
}

/* Task leftovers2: store_dbnames_load reads in a read transaction of its own (read_begin), not
 * in one a read left open: a report leaves its connection in its transaction (COMMIT and
 * ROLLBACK refused), whose snapshot holds "a" only; "b" is then committed. The load on that
 * connection (the one the last read put back) fails while the ROLLBACK is refused, and once it
 * works lists both. Before, it ran its SELECT in the open transaction: "a" alone, answered as
 * the whole list (both times, the transaction staying open). */
static void test_dbnames_load_not_in_stuck_read(void **state)
{
    fx_t *f = *state;
    int64_t pts;
    assert_int_equal(store_dbname_put(f->s, "a"), 0);
    deny_from(f, 2);
    int rc0 = report_p(f->s, &pts);
    int stuck = readers_in_txn(f->s);
    assert_int_equal(store_dbname_put(f->s, "b"), 0);
    names_got_t g1, g2;
    memset(&g1, 0, sizeof g1);
    memset(&g2, 0, sizeof g2);
    int rc1 = store_dbnames_load(f->s, 0, on_dbname, &g1);
    deny_mode = 0;
    int rc2 = store_dbnames_load(f->s, 0, on_dbname, &g2);
    readers_authorizer(f->s, 0);
    assert_int_equal(rc0, 0);
    assert_int_equal(stuck, 1);
    assert_int_equal(rc1, ERR_IO); /* before: 0, listing "a" alone */
    assert_int_equal(g1.n, 0);
    assert_int_equal(rc2, 0);
    assert_int_equal(g2.n, 2); /* before: 1 */
    assert_string_equal(g2.name[0], "a");
    assert_string_equal(g2.name[1], "b");
    assert_int_equal(readers_in_txn(f->s), 0);
}

/* ---- Session 53 (task files3): tightening the -shm keeps SQLite's locks on it ---- */

/* store__wal_files_mode on the open store's -shm made 0666 (as SQLite makes it beside another
 * user's 0666 vigil.db): tightened to 0660, and the store's locks on it still refuse another
 * process. files2's version open()ed and close()d a normal descriptor of the file, and the
 * close dropped every POSIX lock of the process on it (the lock was then granted); an O_PATH
 * descriptor's close does not (Linux's filp_close skips locks_remove_posix for FMODE_PATH). */
static void test_wal_files_mode_keeps_shm_locks(void **state)
{
    fx_t *f = *state;
    char shm[4200];
    struct stat st;
    snprintf(shm, sizeof shm, "%s-shm", f->s->db_path);
    assert_int_equal(chmod(shm, 0666), 0); /* by name: chmod opens nothing */
    assert_true(dms_refused_to_another(shm));
    store__wal_files_mode(f->s->db_path);
    assert_int_equal(stat(shm, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0660); /* the path that tightens ran */
    assert_true(dms_refused_to_another(shm));  /* files2's: granted */
}

/* Without /proc (a chroot, a container without it: store__test_proc_fd points where nothing
 * is), the O_PATH chmod of a 0666 -shm fails: one warning that says what failed and why in
 * words (the /proc name, "is /proc mounted?", what to do), the mode left, nothing else broken:
 * the store still serves a write and a read. Before, the warning said only "cannot be changed:
 * No such file or directory", which reads as if the -shm were missing. Session 54: a second
 * call (as after each snapshot) does not say it again (before: two warnings). */
static void test_wal_files_mode_without_proc(void **state)
{
    fx_t *f = *state;
    char shm[4200];
    struct stat st;
    errcap_t cap;
    snprintf(shm, sizeof shm, "%s-shm", f->s->db_path);
    assert_int_equal(chmod(shm, 0666), 0);
    store__test_proc_fd = "/nonexistent-proc/self/fd";
    errcap_start(&cap, f->dir);
    store__wal_files_mode(f->s->db_path);
    store__wal_files_mode(f->s->db_path);
    char *log = errcap_stop(&cap);
    store__test_proc_fd = "/proc/self/fd";
    assert_int_equal(stat(shm, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0666);
    assert_int_equal(count_in(log, "cannot be changed"), 1);
    assert_non_null(strstr(log, "-shm is mode 0666, open to every local user, and cannot be "
                                "changed: vigild changes it through /nonexistent-proc/self/fd/"));
    assert_non_null(strstr(log, "No such file or directory (is /proc mounted?); chmod o-rwx it"));
    free(log);
    assert_true(dms_refused_to_another(shm));
    write_series(f->s, "np", 0, 1, 10, 0);
    check_series(f->s, "np", 0, 10, 0);
}

/* Review of task files5 (session 54): store__open_fd, the restore's check of its copy, reads
 * the file through the descriptor: after the name has led to another file (a database of
 * another application id swapped in), the descriptor's database is the one read; nothing is
 * made beside the name; and the file truncated under the open connection reads short (a
 * failed quick_check), where a mapping of it would have ended the process with SIGBUS. */
static void test_open_fd_reads_the_descriptor(void **state)
{
    fx_t *f = *state;
    char path[4200], other[4200];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/copy.db", f->dir);
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    const char *names[] = {path, other};
    for (int i = 0; i < 2; i++) {
        char sql[200];
        assert_int_equal(sqlite3_open(names[i], &db), SQLITE_OK);
        snprintf(sql, sizeof sql,
                 "PRAGMA application_id = %d; PRAGMA journal_mode = WAL;"
                 "CREATE TABLE t(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                 "FROM n WHERE i < 2000) INSERT INTO t SELECT randomblob(500) FROM n;",
                 i + 7);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(rename(other, path), 0);
    assert_int_equal(store__open_fd(fd, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 7); /* the descriptor's, not the name's 8 */
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal(sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(access(other, F_OK), -1);
    char beside[4300];
    snprintf(beside, sizeof beside, "%s-journal", path);
    assert_int_equal(access(beside, F_OK), -1);
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
    int tfd = open(fdpath, O_WRONLY | O_CLOEXEC);
    if (tfd >= 0) { /* /proc mounted: the same file, truncated to its first 8 pages */
        assert_int_equal(ftruncate(tfd, 8 * 4096), 0);
        close(tfd);
        const char *ok = NULL; /* as check_copy: a failed prepare or step, or not "ok" */
        if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            ok = (const char *)sqlite3_column_text(st, 0);
        assert_true(ok == NULL || strcmp(ok, "ok") != 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    close(fd);
}

const struct CMUnitTest storage_readers_tests[] = {
    cmocka_unit_test_setup_teardown(test_reader_wait_ends_at_deadline, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reader_wait_after_reload_ends_at_deadline, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_read_end_commit_fails, setup, teardown),
    cmocka_unit_test_setup_teardown(test_read_end_stuck_logged_once, setup, teardown),
    cmocka_unit_test_setup_teardown(test_dbnames_load_not_in_stuck_read, setup, teardown),
    cmocka_unit_test_setup_teardown(test_wal_files_mode_keeps_shm_locks, setup, teardown),
    cmocka_unit_test_setup_teardown(test_wal_files_mode_without_proc, setup, teardown),
    cmocka_unit_test_setup_teardown(test_open_fd_reads_the_descriptor, setup, teardown),
};
const size_t storage_readers_ntests =
    sizeof storage_readers_tests / sizeof storage_readers_tests[0];

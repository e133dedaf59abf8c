/* tests/test_storage_walline.c: the final checkpoint's "WAL was not emptied" line (task locks10,
 * session 57) is said only once the writer's connection is closed.
 *
 * The line asks the -shm who holds a lock (store__lock_holder: F_GETLK, which needs a descriptor
 * opened for reading), and closing any descriptor of a file drops every POSIX lock the process
 * holds on it: said while the writer's connection was still open (before d23f77e1), it dropped
 * that connection's own locks on the -shm, its shared lock on the dead-man-switch byte among
 * them, so another process opening the database in that moment took itself for the first
 * connection and reset the shared memory under it. Nothing of that is left to see once the
 * connection has closed, so the test looks in the moment before: sqlite3_close is wrapped below
 * (this executable's definition is the one storage/'s objects link to; the wrapper calls
 * SQLite's through dlsym), and when it is the watched connection's, a child asks whether this
 * process still holds the dead-man-switch lock (dms_refused_to_another).
 *
 * Another process (a child that takes the locks with fcntl alone, no SQLite, so nothing of this
 * process's SQLite state is carried across the fork) holds the WAL index's checkpoint lock
 * (byte 121 of -shm: the final checkpoint gives up at once, SQLITE_BUSY, no busy wait) and a
 * shared lock on the database's shared range (as every SQLite connection does in WAL mode: the
 * closing connection cannot take the exclusive lock its own last checkpoint needs, so the WAL
 * stays and the line is said after the close too). It takes no lock on byte 128, so a refusal
 * there is this process's.
 *
 * Run by tests/test_storage.c's main() with the other files' tables. */
#include "storage_fx.h"
#include "dbfiles_int.h"

#include <dlfcn.h>

/* The connection whose close is watched (NULL: none), and what was seen at its close: 1 if the
 * close came, and whether this process still held its lock on the -shm then. Test thread only
 * (the store's writer connection is closed by store_close's caller). */
static sqlite3 *watch_db;
static char watch_shm[4300];
static int watch_closed, watch_locked;

int sqlite3_close(sqlite3 *db)
{
    static int (*real)(sqlite3 *);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "sqlite3_close");
    if (db != NULL && db == watch_db) {
        watch_db = NULL;
        watch_closed = 1;
        watch_locked = dms_refused_to_another(watch_shm);
    }
    return real(db);
}

/* The other process: takes the locks above, says so on ready (one byte), holds them until go is
 * closed. Returns its pid. */
static pid_t hold_ckpt_lock(const char *db_path, int *go_w)
{
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char shm[4300];
        snprintf(shm, sizeof shm, "%s-shm", db_path);
        close(ready[0]);
        close(go[1]);
        int dfd = open(db_path, O_RDWR | O_CLOEXEC), sfd = open(shm, O_RDWR | O_CLOEXEC);
        /* SQLite's SHARED_FIRST (PENDING_BYTE + 2) and SHARED_SIZE; WAL_CKPT_LOCK's byte. */
        struct flock sh = {
            .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0x40000002, .l_len = 510};
        struct flock ck = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 121, .l_len = 1};
        char c =
            dfd >= 0 && sfd >= 0 && fcntl(dfd, F_SETLK, &sh) == 0 && fcntl(sfd, F_SETLK, &ck) == 0
                ? 'y'
                : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        while (read(go[0], &c, 1) > 0) /* until the parent closes go */
            ;
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    assert_int_equal(c, 'y');
    *go_w = go[1];
    return pid;
}

/* The store closed while another process holds the checkpoint lock: the line names that
 * process, says nothing of page counts (the checkpoint could not begin), and the writer's
 * connection still held this process's lock on the -shm when it closed. Before d23f77e1 (the
 * line said between the checkpoint and the close) the lock was gone by then: a child was
 * granted the dead-man-switch byte (watch_locked 0). */
static void test_wal_line_after_the_close(void **state)
{
    fx_t *f = *state;
    char db_path[4200];
    snprintf(db_path, sizeof db_path, "%s", f->s->db_path);
    snprintf(watch_shm, sizeof watch_shm, "%s-shm", db_path);
    write_series(f->s, "wl", 0, 1, 50, 0); /* the WAL holds commits */
    assert_int_equal(store_flush(f->s), 0);
    int go = -1;
    pid_t holder = hold_ckpt_lock(db_path, &go);
    assert_true(dms_refused_to_another(watch_shm)); /* the store's connections hold it */
    watch_closed = watch_locked = 0;
    watch_db = f->s->w.db;
    errcap_t cap;
    errcap_start(&cap, f->dir);
    store_close(f->s);
    f->s = NULL;
    char *log = errcap_stop(&cap);
    watch_db = NULL;
    close(go);
    int status = 0;
    assert_int_equal(waitpid(holder, &status, 0), holder);
    assert_int_equal(watch_closed, 1);
    assert_int_equal(watch_locked, 1); /* d23f77e1's parent: 0, the lock dropped while open */
    char who[96];
    snprintf(who, sizeof who, "another process (pid %ld: ", (long)holder);
    assert_int_equal(count_in(log, "storage: the WAL was not emptied at close"), 1);
    assert_non_null(strstr(log, who));
    assert_non_null(strstr(log, "-wal stays beside it, committed: the next start reads it"));
    assert_null(strstr(log, "pages"));
    free(log);
    /* What was committed is there: the WAL is read at the next opening. */
    f->s = open_store(f->dir, 0);
    check_series(f->s, "wl", 0, 50, 0);
}

const struct CMUnitTest storage_walline_tests[] = {
    cmocka_unit_test_setup_teardown(test_wal_line_after_the_close, setup, teardown),
};
const size_t storage_walline_ntests =
    sizeof storage_walline_tests / sizeof storage_walline_tests[0];

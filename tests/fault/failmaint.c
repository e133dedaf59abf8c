/* tests/fault/failmaint.c: an LD_PRELOAD library for the integration tests that makes vigild's
 * writes of maintenance periods fail, or holds them, while a flag file exists: sqlite3_step of a
 * statement on the maint table (storage/schema.c's "INSERT INTO maint(...) ... ON CONFLICT DO
 * UPDATE" and its "DELETE FROM maint ..." statements). A file starting with "hold": the step
 * waits until the file is gone or says otherwise (at most 60 s, so a test that forgot the file
 * does not hang vigild), then runs; meanwhile the file "<flag>.held" exists (a test waits
 * for it). Any other content: the step returns SQLITE_IOERR without running, as a failed write
 * would; the writer rolls the transaction back and answers ERR_IO, which the maintenance
 * routes answer 500. The environment: VIGIL_FAILMAINT_FLAG, the flag file's path (required);
 * VIGIL_FAILMAINT_SQL, other statement prefixes ('|' between) to fail instead (optional);
 * VIGIL_FAILMAINT_HOLD_SQL, a statement prefix held while the flag file exists, whatever it says
 * (optional: test_iqwait.py fails a write with "fail" and so holds the store's reload of its maps
 * that the failure begins, until the file is gone); VIGIL_FAILMAINT_AFTER, a number N of steps
 * of a failing statement that run before the others fail, so a read fails part way, after N
 * rows, as on a corrupt page (optional: test_startup.py's fleet reads at the start). Its count
 * starts again whenever a step is of another statement than the one before (the restore's reads
 * run one after another on one thread). Every other statement goes straight to SQLite's
 * sqlite3_step (vigild links SQLite dynamically). VIGIL_FAILMAINT_HOLD_WAL set (to anything):
 * the WAL hook the store registers (storage/writer.c's store__wal_hook, where the writer
 * publishes a commit) waits the same way while the flag file exists, so a commit is visible to
 * the readers and not published (test_iqwait.py: the 503 of ERR_UNPUBLISHED).
 * VIGIL_FAILMAINT_SLEPT (optional, session 57): a file made at each sqlite3_sleep, which vigild
 * calls only from its busy handler (storage/schema.c's store__busy_wait), as it waits for another
 * process's lock: a test sees the wait begin, removes the file and sees it again while the wait
 * goes on (test_dblocked.py's StopLateLock). */
#include <dlfcn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { RUN, HOLD, FAIL };

/* Whether sql writes the maint table. The prefixes end in "(" or " " so a table named
 * maint-something (none today) never matches. With VIGIL_FAILMAINT_SQL set, the statements
 * starting with it instead (test_influx_names.py: "INSERT INTO dbnames(", a database name kept),
 * or with any of several separated by '|' (test_health.py: a failing write, then the maps
 * reload's "SELECT id, name, first_ts"). */
static int writes_maint(const char *sql)
{
    const char *other = getenv("VIGIL_FAILMAINT_SQL");
    if (other != NULL && other[0] != '\0') {
        for (const char *p = other;; p++) { /* prefixes separated by '|' */
            size_t n = strcspn(p, "|");
            if (n > 0 && strncmp(sql, p, n) == 0)
                return 1;
            p += n;
            if (*p == '\0')
                return 0;
        }
    }
    static const char *const prefix[] = {"INSERT INTO maint(", "DELETE FROM maint ",
                                         "UPDATE maint "};
    for (size_t i = 0; i < sizeof prefix / sizeof prefix[0]; i++)
        if (strncmp(sql, prefix[i], strlen(prefix[i])) == 0)
            return 1;
    return 0;
}

/* What to do with stmt now: RUN, HOLD or FAIL (the flag file is read each time: a test changes
 * it while vigild runs). */
static int mode(sqlite3_stmt *stmt)
{
    const char *flag = getenv("VIGIL_FAILMAINT_FLAG");
    const char *sql = sqlite3_sql(stmt);
    if (flag == NULL || sql == NULL)
        return RUN;
    const char *hold = getenv("VIGIL_FAILMAINT_HOLD_SQL");
    if (hold != NULL && hold[0] != '\0' && strncmp(sql, hold, strlen(hold)) == 0) {
        /* VIGIL_FAILMAINT_HOLD_FLAG (optional): a file whose existence holds that statement
         * instead of the flag file's, so the flag file can fail other writes meanwhile
         * (test_stop.py's StopFailTraining holds a training's read while the flag file fails
         * the detectors' saves, then lets the read go on with the failure still in force). */
        const char *hold_flag = getenv("VIGIL_FAILMAINT_HOLD_FLAG");
        if (hold_flag != NULL && hold_flag[0] != '\0')
            flag = hold_flag;
        return access(flag, F_OK) == 0 ? HOLD : RUN;
    }
    if (!writes_maint(sql))
        return RUN;
    FILE *f = fopen(flag, "r");
    if (f == NULL)
        return RUN;
    char word[5] = {0};
    size_t n = fread(word, 1, 4, f);
    fclose(f);
    return n == 4 && memcmp(word, "hold", 4) == 0 ? HOLD : FAIL;
}

/* While a step is held, the file "<flag>.held" exists: a test waits for it (the writer is in
 * the statement now) instead of sleeping and hoping. on: create it; 0: remove it if there. */
static void mark_held(int on)
{
    const char *flag = getenv("VIGIL_FAILMAINT_FLAG");
    char path[4096];
    if (flag == NULL || snprintf(path, sizeof path, "%s.held", flag) >= (int)sizeof path)
        return;
    if (!on) {
        unlink(path);
        return;
    }
    FILE *f = fopen(path, "w");
    if (f != NULL)
        fclose(f);
}

/* Whether this step of a failing statement is one of the VIGIL_FAILMAINT_AFTER that run. */
static int after_runs(sqlite3_stmt *stmt)
{
    static sqlite3_stmt *last;
    static long steps;
    const char *after = getenv("VIGIL_FAILMAINT_AFTER");
    if (after == NULL || after[0] == '\0')
        return 0;
    if (stmt != last) {
        last = stmt;
        steps = 0;
    }
    return steps++ < atol(after);
}

/* Waits while the flag file exists, "<flag>.held" meanwhile (600 x 100 ms at most). */
static void hold_while_flag(void)
{
    const char *flag = getenv("VIGIL_FAILMAINT_FLAG");
    if (flag == NULL || access(flag, F_OK) != 0)
        return;
    mark_held(1);
    for (int i = 0; i < 600 && access(flag, F_OK) == 0; i++)
        usleep(100000);
    mark_held(0);
}

static int (*store_wal_hook)(void *, sqlite3 *, const char *, int);

static int held_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    hold_while_flag();
    return store_wal_hook(arg, db, name, frames);
}

void *sqlite3_wal_hook(sqlite3 *db, int (*cb)(void *, sqlite3 *, const char *, int), void *arg)
{
    static void *(*real)(sqlite3 *, int (*)(void *, sqlite3 *, const char *, int), void *);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "sqlite3_wal_hook");
    if (cb != NULL && getenv("VIGIL_FAILMAINT_HOLD_WAL") != NULL) {
        store_wal_hook = cb; /* vigild registers one, on its writer's connection */
        cb = held_wal_hook;
    }
    return real(db, cb, arg);
}

int sqlite3_step(sqlite3_stmt *stmt)
{
    static int (*real)(sqlite3_stmt *);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "sqlite3_step");
    int m = mode(stmt), held = m == HOLD;
    if (held)
        mark_held(1);
    for (int i = 0; i < 600 && m == HOLD; i++) {
        usleep(100000);
        m = mode(stmt);
    }
    if (held)
        mark_held(0);
    if (m == FAIL && after_runs(stmt))
        m = RUN;
    return m == FAIL ? SQLITE_IOERR : real(stmt);
}

int sqlite3_sleep(int ms)
{
    static int (*real)(int);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "sqlite3_sleep");
    const char *mark = getenv("VIGIL_FAILMAINT_SLEPT");
    if (mark != NULL && mark[0] != '\0' && access(mark, F_OK) != 0) {
        FILE *f = fopen(mark, "w");
        if (f != NULL)
            fclose(f);
    }
    return real(ms);
}

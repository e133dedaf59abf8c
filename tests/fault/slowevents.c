/* tests/fault/slowevents.c: an LD_PRELOAD library for the integration tests that holds vigild's
 * event puts (SQLite's "INSERT INTO events ...") while a flag file exists, so a test can keep an
 * event's end uncommitted (the writer's transaction open) for as long as it wants, and release it
 * by deleting the file. The environment: VIGIL_SLOWEVENTS_FLAG, the flag file's path (required).
 * A put waits at most 60 s (a test that forgot the file does not hang vigild). Every other
 * statement goes straight to SQLite's sqlite3_step (vigild links SQLite dynamically). */
#include <dlfcn.h>
#include <stdlib.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

static int held(sqlite3_stmt *stmt)
{
    const char *flag = getenv("VIGIL_SLOWEVENTS_FLAG");
    const char *sql = sqlite3_sql(stmt);
    return flag && sql && strncmp(sql, "INSERT INTO events", 18) == 0 && access(flag, F_OK) == 0;
}

int sqlite3_step(sqlite3_stmt *stmt)
{
    static int (*real)(sqlite3_stmt *);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "sqlite3_step");
    for (int i = 0; i < 600 && held(stmt); i++)
        usleep(100000);
    return real(stmt);
}

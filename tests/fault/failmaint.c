/* tests/fault/failmaint.c: an LD_PRELOAD library for the integration tests that makes vigild's
 * writes of maintenance periods fail while a flag file exists: sqlite3_step of a statement on
 * the maint table (storage/schema.c's "INSERT INTO maint(...) ... ON CONFLICT DO UPDATE" and its
 * "DELETE FROM maint ..." statements) returns SQLITE_IOERR without running, as a failed write
 * would. The writer rolls the transaction back and answers ERR_IO, which the maintenance routes
 * answer 500. The environment: VIGIL_FAILMAINT_FLAG, the flag file's path (required). Every
 * other statement goes straight to SQLite's sqlite3_step (vigild links SQLite dynamically). */
#include <dlfcn.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether stmt writes the maint table. The prefixes are exact: "maint(" and "maint " so the
 * statements of other tables (none is named maint-something today) never match. */
static int writes_maint(const char *sql)
{
    static const char *const prefix[] = {"INSERT INTO maint(", "DELETE FROM maint ",
                                         "UPDATE maint "};
    for (size_t i = 0; i < sizeof prefix / sizeof prefix[0]; i++)
        if (strncmp(sql, prefix[i], strlen(prefix[i])) == 0)
            return 1;
    return 0;
}

int sqlite3_step(sqlite3_stmt *stmt)
{
    static int (*real)(sqlite3_stmt *);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "sqlite3_step");
    const char *flag = getenv("VIGIL_FAILMAINT_FLAG");
    const char *sql = sqlite3_sql(stmt);
    if (flag && sql && writes_maint(sql) && access(flag, F_OK) == 0)
        return SQLITE_IOERR;
    return real(stmt);
}

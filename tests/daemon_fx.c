/* tests/daemon_fx.c: a temporary store for the daemon/ unit tests (daemon_fx.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon_fx.h"

store_t *dfx_store_open(char *dir, int readers)
{
    assert_non_null(mkdtemp(dir));
    store_opts_t o;
    store_opts_default(&o);
    o.dir = dir;
    o.sync_full = 0;
    o.readers = readers;
    store_t *s = NULL;
    char msg[256];
    assert_int_equal(store_open(&s, &o, msg, sizeof msg), 0);
    return s;
}

void dfx_store_remove(store_t *s, const char *dir)
{
    store_close(s);
    static const char *const names[] = {"vigil.db", "vigil.db-wal", "vigil.db-shm", "vigil.lock"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    assert_int_equal(rmdir(dir), 0);
}

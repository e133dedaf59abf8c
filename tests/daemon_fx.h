/* tests/daemon_fx.h: a temporary store for the daemon/ unit tests (test_daemon.c,
 * test_daemon_api.c, test_daemon_health.c). Include after <cmocka.h>. */
#ifndef VIGIL_DAEMON_FX_H
#define VIGIL_DAEMON_FX_H

#include "storage.h"

/* Makes the directory dir (a mkdtemp template, changed in place) and opens a store in it with
 * readers reader connections and no full sync; fails the test when either fails. Returns the
 * store: caller owns; close and remove it with dfx_store_remove. */
store_t *dfx_store_open(char *dir, int readers);

/* Closes s and removes its files and its directory dir (failing the test if that fails). */
void dfx_store_remove(store_t *s, const char *dir);

#endif

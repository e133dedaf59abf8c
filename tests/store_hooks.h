/* tests/store_hooks.h: the store's reload test hooks (storage/storage_int.h) for the tests that
 * hold a maps reload (storage's and the daemon's; the daemon's cannot include storage_int.h,
 * whose uthash settings clash with theirs), and the one bounded wait for that hold. Include
 * after <cmocka.h>. */
#ifndef VIGIL_TESTS_STORE_HOOKS_H
#define VIGIL_TESTS_STORE_HOOKS_H

#include <unistd.h>

#include "storage.h"

int store__test_exec(store_t *s, const char *sql);
void store__test_reload_hold(store_t *s, int hold);
int store__test_reload_held(store_t *s);
int store__test_publish_held(store_t *s);

/* Waits (10 s at most) until held(s) says the writer stopped at a hold, and fails the test if
 * it did not. */
static inline void wait_held(store_t *s, int (*held)(store_t *))
{
    for (int i = 0; i < 10000 && !held(s); i++)
        usleep(1000);
    assert_true(held(s));
}

/* The reload stopped at the hold store__test_reload_hold set. */
static inline void wait_reload_held(store_t *s)
{
    wait_held(s, store__test_reload_held);
}

#endif

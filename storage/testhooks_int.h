/* storage/testhooks_int.h: the store's test hooks (storage_int.h's tests-only part): the
 * switches and counters by which tests/test_storage*.c, tests/storage_fx.c and the daemon's tests
 * hold the writer, make its reloads or savepoint fail and read its published state. Kept apart
 * from storage_int.h so that header holds what the store's own files share; it includes this one
 * at its end, so every file that includes storage_int.h sees the hooks as before. Defined in
 * testhooks.c, storage.c, maint.c, retention.c and dbfiles.c. Not part of the public API. */
#ifndef VIGIL_TESTHOOKS_INT_H
#define VIGIL_TESTHOOKS_INT_H

#include "storage_int.h"

#include <stdint.h>

/* Test hooks (tests only: the test_storage binary, tests/test_storage*.c and tests/storage_fx.c;
 * tests/test_daemon.c uses some). */
/* Copies the writer's state into s->wpub when s->wpub_on (qmu held; writer thread, or open
 * before it starts). */
void store__wstate_publish(store_t *s);
/* The writer's state as last published (store_test_wstate_t), read under qmu. Any thread.
 * Returns 0, or ERR_INVAL (*out zeroed) when s does not publish (opened without
 * store__test_wstate_on). */
int store__test_wstate(store_t *s, store_test_wstate_t *out);
/* From the next publication on, wpub.chan_chain_max is that of device name's channel table
 * ("" for none). Any thread. */
void store__test_wstate_dev(store_t *s, const char *name);
/* Test hook: while nonzero, store_open makes the store publish its writer's state (wpub); 0
 * (the default) publishes nothing. Set once by the test program before any store_open. */
extern int store__test_wstate_on;
/* Makes (1) or lets (0) the preparation of the maintenance savepoint's statements fail (a
 * statement SQLite refuses), from the writer's next maintenance on. Any thread. */
void store__test_savepoint_break(store_t *s, int broken);
/* Stops (1) or lets (0) the writer take queued work; store_close releases a hold. */
void store__test_hold(store_t *s, int hold);
/* While set (1), each maps reload of the writer (after a failed transaction or undone
 * maintenance) stops once the published pending readings and counters are withdrawn (pgen -1),
 * until released (0); store_close releases it. store__test_reload_held: 1 while a reload is
 * stopped there. Any thread. */
void store__test_reload_hold(store_t *s, int hold);
int store__test_reload_held(store_t *s);
/* The next n maps reloads of the writer (not the load at open) fail with ERR_IO, as a database
 * that cannot be read would make them (n < 0: every one, until set again); 0 ends it.
 * store__test_reload_tries: the reloads begun since open. Any thread. */
void store__test_reload_fail(store_t *s, int n);
int store__test_reload_tries(store_t *s);
/* Sets the bound on a read's wait for withdrawn counters (STORE_PEND_WAIT_MS) to ms for the
 * waits that start after it; 0 restores the default. So a test can show a wait ended by a
 * reload's outcome, not by its deadline. Any thread. */
void store__test_pend_wait_ms(store_t *s, int64_t ms);
/* As store__test_pend_wait_ms, for a query's waits for a commit's publication (PEND_SYNC_MS):
 * so a test can show such a wait ended by its caller's deadline. Any thread. */
void store__test_pend_sync_ms(store_t *s, int64_t ms);
/* The reads' waits for withdrawn counters begun since open (store__pend_wait calls that found
 * them withdrawn), so a test knows a reader waits. Any thread. */
int store__test_pend_waits(store_t *s);
/* Test hooks: while hold is set, a commit's publication waits after COMMIT, before the readers
 * see its generation (store__test_publish_held: 1 while one waits there; store_close releases
 * it); store__test_pend_stale: the reads' copies that found another generation than their
 * snapshot's since open; store__test_pend_syncs: the reads that waited for a publication. */
void store__test_publish_hold(store_t *s, int hold);
int store__test_publish_held(store_t *s);
int store__test_pend_stale(store_t *s);
int store__test_pend_syncs(store_t *s);
/* Writer thread: while *hold (atomic) is set, stays here with *held 1 (store__test_reload_hold,
 * store__test_publish_hold). */
void store__test_pause(const int *hold, int *held);
/* Test hook: while nonzero, store_open starts the writer held (as store__test_hold(s, 1) would,
 * but before its first look), so a test can read what the open set up before any idle work
 * changes it. Set and cleared by a test around store_open, on the owning thread; 0 otherwise. */
extern int store__test_open_held;
/* Runs one SQL statement on the writer connection, in the writer's next transaction, and waits
 * for the commit; e.g. "PRAGMA max_page_count=1". Returns the job status. */
int store__test_exec(store_t *s, const char *sql);
/* Writes every device's pending readings (pending.c) as rows in the writer's next transaction
 * and waits for the commit. Returns the transaction's status. */
int store__test_pend_flush(store_t *s);
/* How many devices' length bounds (devices.ev_maxlen) the retention sweeps have set again since
 * open, in committed steps (retention.c). */
uint64_t store__test_bounds_set(store_t *s);
/* From the next retention sweep's start on, its horizon is wall_ms minus the retention, as if
 * the wall clock read wall_ms then (0: the real clock again), so a test can put the horizon on
 * a reading's timestamp exactly. Any thread. */
void store__test_retain_clock(store_t *s, int64_t wall_ms);
/* Tests only (tests/integration/test_filemodes.py, session 53): with $VIGIL_TEST_HOLD_DIR set,
 * point `at` ("restore-open", "lock-named", "restore-rename") waits while the file <dir>/<at>
 * exists (common/testhold.h's test_hold_wait, as the pipeline's training threads: at most 60 s,
 * <dir>/<at>.held existing meanwhile, a warning logged), so that a test changes a file inside a
 * window a few instructions wide without a timing guess. Unset (any deployment): one getenv.
 * Any thread. */
void store__test_hold_point(const char *at);
/* Tests only (tests/integration/test_stopqueue.py, session 58): the bound of the asynchronous
 * puts queued or in the open transaction, read once at store_open: $VIGIL_TEST_OPS_MAX when it
 * is a number from 1 to STORE_OPS_MAX (a warning logged: a test hook), else STORE_OPS_MAX. A
 * test fills the queue with a fleet of a few devices instead of over 10,000 (too slow under
 * ASan). Unset (any deployment): one getenv. */
size_t store__test_ops_max(void);
/* Tests only (tests/test_storage_snapshot.c, session 59): the wait for another process's lock
 * (store__busy_wait_from's deadline), read once at store_open as store__test_ops_max is:
 * $VIGIL_TEST_BUSY_MS when it is a number from 1 to STORE_BUSY_TIMEOUT_MS (a warning logged),
 * else STORE_BUSY_TIMEOUT_MS. A unit test sees a wait give up without 10 s of waiting.
 * Unset (any deployment): one getenv. */
int64_t store__test_busy_ms(void);
/* The folder whose <fd> entries name the process's descriptors, for store__drop_other_bits's
 * chmod of an O_PATH descriptor: "/proc/self/fd", which a test points elsewhere to see the
 * warning said when /proc is not mounted. Set by a test only, on the thread that then calls
 * store__wal_files_mode, while no snapshot runs (nothing else reads it meanwhile). */
extern const char *store__test_proc_fd;

#endif

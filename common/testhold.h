/* common/testhold.h: the test hook that holds a thread at a named point while a test changes a
 * file (VIGIL_TEST_HOLD_DIR; storage's restore and lock, the pipeline's training threads, the
 * stop around its saves: daemon/stop.c). */
#ifndef VIGIL_TESTHOLD_H
#define VIGIL_TESTHOLD_H

#include <stdatomic.h>

/* Tests only. With dir (the value of $VIGIL_TEST_HOLD_DIR; NULL or "": returns at once, so a
 * deployment pays one test) naming a folder and the file <dir>/<at> existing, waits while that
 * file exists, at most 60 s (a test that forgot it does not hang vigild), <dir>/<at>.held
 * existing meanwhile so the test knows the point is reached; the wait also ends once *stop
 * (NULL: none) is set. who, if not NULL, logs "WHO: VIGIL_TEST_HOLD_DIR is set (a test hook):
 * waiting at 'AT'" first. Returns 1 if it waited, else 0. Any thread, holding no lock but a
 * group's rollback_mu (pipeline_rollback.c's "rollback-read": another rollback of that group
 * waits behind it, nothing else takes that lock). */
int test_hold_wait(const char *dir, const char *at, const atomic_int *stop, const char *who);

#endif

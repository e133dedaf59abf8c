/* common/nice.h: per-thread CPU priority. Linux keeps a nice value per thread (a thread's id is
 * a process id to setpriority), so a daemon can lower its bulk threads (ingest, storage,
 * inference, training) and leave its query threads at the process's priority: under load the
 * scheduler then runs a woken query thread first. Any thread; no state. */
#ifndef VIGIL_NICE_H
#define VIGIL_NICE_H

#include <pthread.h>

/* Adds n (>= 0) to the calling thread's nice value, at most 19 (0: leaves it alone), so the
 * bulk threads stay below the process's priority whatever it was started with. Failure (e.g. a
 * sandbox that forbids it) leaves the thread at its priority, which is still correct: returns 0
 * or -1. */
int thread_nice(int n);

/* pthread_create of fn(arg) in a thread that first adds n to its nice value (thread_nice), and
 * returns only once it has: whoever looks at the thread after this call (a test reading /proc,
 * the scheduler) sees its final priority. Returns 0 or pthread_create's error number. */
int thread_create_niced(pthread_t *t, int n, void *(*fn)(void *), void *arg);

#endif

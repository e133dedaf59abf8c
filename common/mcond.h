/* common/mcond.h: condition variables whose timed waits run on CLOCK_MONOTONIC, and their
 * deadlines. pthread_cond_timedwait takes an absolute time on the condition variable's clock,
 * which is CLOCK_REALTIME unless set otherwise: a wall-clock step (NTP, an operator's date)
 * would then stretch or cut every wait in progress. vigil's waits are intervals, so every
 * timed condition variable is made here and every deadline computed here. Any thread; no state. */
#ifndef VIGIL_MCOND_H
#define VIGIL_MCOND_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Initialises *cv (as pthread_cond_init does) on CLOCK_MONOTONIC. Returns 0, or ERR_NOMEM
 * (the system lacked memory or another resource) or ERR_INVAL (the clock was refused), with
 * *cv left uninitialised. The caller destroys it with pthread_cond_destroy. */
int mcond_init(pthread_cond_t *cv);

/* Sets *dl to the monotonic time ms milliseconds from now (a negative ms counts as 0), as
 * pthread_cond_timedwait on a condition variable of mcond_init wants it. */
void mcond_deadline(struct timespec *dl, int64_t ms);

/* Adds ms (>= 0) to *ts and normalises it (tv_nsec in [0, 1e9)). mcond_deadline's arithmetic,
 * public for its test. */
void mcond_add_ms(struct timespec *ts, int64_t ms);

#endif

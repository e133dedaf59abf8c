/* common/mcond.c: see mcond.h. */
#include "mcond.h"
#include "err.h"

#include <errno.h>

/* Maps a pthread error number to vigil's code: a shortage, or a refusal of the arguments. */
static int from_errno(int e)
{
    return e == ENOMEM || e == EAGAIN ? ERR_NOMEM : ERR_INVAL;
}

int mcond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int e = pthread_condattr_init(&ca);
    if (e != 0)
        return from_errno(e);
    e = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (e == 0)
        e = pthread_cond_init(cv, &ca);
    /* The attribute is only read by pthread_cond_init: the condition variable outlives it. */
    pthread_condattr_destroy(&ca);
    return e == 0 ? 0 : from_errno(e);
}

void mcond_add_ms(struct timespec *ts, int64_t ms)
{
    /* tv_nsec < 1e9 and (ms % 1000) * 1e6 < 1e9: their sum carries at most one second. */
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec += 1;
        ts->tv_nsec -= 1000000000L;
    }
}

void mcond_deadline(struct timespec *dl, int64_t ms)
{
    /* CLOCK_MONOTONIC is always there on Linux and dl is valid: clock_gettime cannot fail. */
    clock_gettime(CLOCK_MONOTONIC, dl);
    mcond_add_ms(dl, ms < 0 ? 0 : ms);
}

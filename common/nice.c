/* common/nice.c: see nice.h. */
#include "nice.h"

#include <errno.h>
#include <semaphore.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

int thread_nice(int n)
{
    if (n <= 0)
        return 0;
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, tid);
    if (cur == -1 && errno != 0)
        return -1;
    return setpriority(PRIO_PROCESS, tid, cur + n > 19 ? 19 : cur + n);
}

struct niced_start {
    void *(*fn)(void *);
    void *arg;
    int n;
    sem_t niced; /* posted once the thread has its nice value */
};

/* The new thread: takes what it needs from the creator's stack, nices itself, lets the
 * creator go on, then runs fn. */
static void *niced_main(void *arg)
{
    struct niced_start *st = arg;
    void *(*fn)(void *) = st->fn;
    void *fn_arg = st->arg;
    thread_nice(st->n);
    sem_post(&st->niced); /* st is gone after this */
    return fn(fn_arg);
}

int thread_create_niced(pthread_t *t, int n, void *(*fn)(void *), void *arg)
{
    struct niced_start st = {.fn = fn, .arg = arg, .n = n};
    if (sem_init(&st.niced, 0, 0) != 0)
        return errno;
    int rc = pthread_create(t, NULL, niced_main, &st);
    if (rc == 0)
        while (sem_wait(&st.niced) != 0 && errno == EINTR)
            ;
    sem_destroy(&st.niced);
    return rc;
}

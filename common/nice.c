/* common/nice.c: see nice.h. */
#include "nice.h"

#include <errno.h>
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

/* daemon/fdlimit.c: the open-file limit vigild's configured limits need (see fdlimit.h). Moved
 * out of main.c, which had passed 1,000 lines. Main thread, at start; no state. */
#include "fdlimit.h"

#include "log.h"

#include <string.h>
#include <sys/resource.h>

/* Descriptors the configured limits may need: one per HTTP and stream connection, plus a margin
 * for what else holds one: SQLite's files (database, WAL, shared memory) for the writer and each
 * reader, the epoll and wake-up descriptors of each HTTP thread, the listeners (and the
 * stream's duplicate), the log, the notification socket, libuv's loop and its reserve. */
static unsigned long fds_needed(const struct config *c, unsigned long *margin)
{
    *margin = 32 + 3 * ((unsigned long)c->readers + 1) + 3 * (unsigned long)c->http_threads;
    unsigned long stream = strcmp(c->stream_listen, "off") != 0 ? c->stream_max_connections : 0u;
    return (unsigned long)c->max_connections + stream + *margin;
}

void fdlimit_raise(const struct config *c)
{
    struct rlimit rl;
    unsigned long margin, need = fds_needed(c, &margin);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return;
    struct rlimit want = rl;
    want.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (want.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &want) == 0)
        rl = want;
    if (rl.rlim_cur >= need)
        return;
    log_warn("open-file limit %lu is below the %lu descriptors the limits may need "
             "(http.max_connections %u + stream.max_connections %u + %lu for SQLite, the log "
             "and the listeners): raise LimitNOFILE= (ulimit -n) or lower the limits; connections "
             "past it fail to be accepted (vigil_http_accept_errors_total, "
             "vigil_stream_accept_errors_total)",
             (unsigned long)rl.rlim_cur, need, c->max_connections,
             strcmp(c->stream_listen, "off") != 0 ? c->stream_max_connections : 0u, margin);
}

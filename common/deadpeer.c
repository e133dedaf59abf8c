/* common/deadpeer.c: see deadpeer.h. */
#include "deadpeer.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define DEADPEER_PROBES 4

int deadpeer_set(int fd, unsigned timeout_s)
{
    if (timeout_s == 0)
        return 0;
    int on = 1;
    int idle = timeout_s / 2 > 0 ? (int)(timeout_s / 2) : 1;
    int intvl =
        timeout_s / (2 * DEADPEER_PROBES) > 0 ? (int)(timeout_s / (2 * DEADPEER_PROBES)) : 1;
    int cnt = DEADPEER_PROBES;
    unsigned user_ms = timeout_s * 1000u;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof user_ms) != 0)
        return -1;
    return 0;
}

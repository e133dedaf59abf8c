/* common/deadpeer.c: see deadpeer.h. */
#include "deadpeer.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define DEADPEER_PROBES 4
/* Linux refuses a TCP_KEEPIDLE or TCP_KEEPINTVL over 32,767 s (MAX_TCP_KEEPIDLE, EINVAL): a
 * setting over 65,535 s would leave the options after them unset. TCP_USER_TIMEOUT bounds the
 * keep-alive's end anyway once set. */
#define DEADPEER_SECS_MAX 32767u

static int secs(unsigned s)
{
    return (int)(s < 1 ? 1 : s > DEADPEER_SECS_MAX ? DEADPEER_SECS_MAX : s);
}

int deadpeer_set(int fd, unsigned timeout_s)
{
    if (timeout_s == 0)
        return 0;
    int on = 1;
    int idle = secs(timeout_s / 2);
    int intvl = secs(timeout_s / (2 * DEADPEER_PROBES));
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

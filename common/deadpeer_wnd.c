/* common/deadpeer_wnd.c: deadpeer_room and deadpeer_ended_not_reading (deadpeer.h). Apart from
 * deadpeer.c because they need the kernel's struct tcp_info (<linux/tcp.h>: tcpi_snd_wnd, Linux
 * 5.4), which glibc's <netinet/tcp.h> lacks and cannot be included beside. Any thread; no
 * state. */
#include "deadpeer.h"

#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* The bytes of ours not yet acknowledged (*queued) and the peer's advertised window (*wnd, -1
 * when the kernel does not say it). Returns 0, or -1 when the queue cannot be read. */
static int out_state(int fd, size_t *queued, long long *wnd)
{
    int q = 0;
    if (ioctl(fd, SIOCOUTQ, &q) != 0 || q < 0)
        return -1;
    *queued = (size_t)q;
    struct tcp_info ti;
    memset(&ti, 0, sizeof ti);
    socklen_t len = sizeof ti;
    *wnd = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
                   len < offsetof(struct tcp_info, tcpi_snd_wnd) + sizeof ti.tcpi_snd_wnd
               ? -1
               : (long long)ti.tcpi_snd_wnd;
    return 0;
}

int deadpeer_room(int fd, size_t n)
{
    size_t queued;
    long long wnd;
    if (out_state(fd, &queued, &wnd) != 0)
        return 1;
    if (queued > 0)
        return 0;
    return wnd < 0 || (size_t)wnd >= n; /* a kernel without the window: the empty queue alone */
}

int deadpeer_ended_not_reading(int fd, unsigned timeout_s)
{
    size_t queued;
    long long wnd;
    struct tcp_info ti;
    memset(&ti, 0, sizeof ti);
    socklen_t len = sizeof ti;
    if (timeout_s == 0 || out_state(fd, &queued, &wnd) != 0 ||
        getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_last_ack_recv) + sizeof ti.tcpi_last_ack_recv)
        return 0;
    /* A peer that still answers the kernel's window probes has acknowledged within the last
     * probe interval, which doubles from the retransmission timeout, so at most about half
     * the timeout before its end (measured on loopback with 4 s: 1.0 s); a vanished one
     * answered nothing since it left (4.2 s; 3.1 s for one that vanished while its window
     * was closed, the probes having begun before). Two thirds lies between. */
    return (unsigned long long)ti.tcpi_last_ack_recv < timeout_s * 2000ull / 3 && queued > 0 &&
           (wnd < 0 || (size_t)wnd < queued); /* no window known (before 5.4): data waited */
}

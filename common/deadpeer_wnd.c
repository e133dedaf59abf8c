/* common/deadpeer_wnd.c: deadpeer_room (deadpeer.h). Apart from deadpeer.c because it needs
 * the kernel's struct tcp_info (<linux/tcp.h>: tcpi_snd_wnd, Linux 5.4), which glibc's
 * <netinet/tcp.h> lacks and cannot be included beside. Any thread; no state. */
#include "deadpeer.h"

#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

int deadpeer_room(int fd, size_t n)
{
    int queued = 0;
    if (ioctl(fd, SIOCOUTQ, &queued) != 0)
        return 1;
    if (queued > 0)
        return 0;
    struct tcp_info ti;
    memset(&ti, 0, sizeof ti);
    socklen_t len = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_snd_wnd) + sizeof ti.tcpi_snd_wnd)
        return 1; /* a kernel without the window: the empty queue alone */
    return ti.tcpi_snd_wnd >= n;
}

int deadpeer_window_shut(int fd, size_t n)
{
    int queued = 0;
    if (ioctl(fd, SIOCOUTQ, &queued) != 0 || queued < 0)
        return 0;
    struct tcp_info ti;
    memset(&ti, 0, sizeof ti);
    socklen_t len = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_snd_wnd) + sizeof ti.tcpi_snd_wnd)
        return 0;
    return (size_t)ti.tcpi_snd_wnd < (size_t)queued + n;
}

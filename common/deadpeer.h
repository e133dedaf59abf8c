/* common/deadpeer.h: finding a TCP peer that vanished without a FIN or reset (its cable pulled,
 * a NAT's mapping dropped). Without help the kernel learns of it only when its retransmissions
 * give up (some 15 minutes with Linux's defaults, tcp_retries2) and, on a connection where
 * nothing is sent, never (keep-alive probes are off unless asked, and then first sent after
 * two hours). The HTTP server and the stream listener set this on each socket they accept.
 * Any thread; no state. */
#ifndef VIGIL_DEADPEER_H
#define VIGIL_DEADPEER_H

#include <stddef.h>

/* Sets the accepted TCP socket fd to end its connection about timeout_s seconds after its peer
 * stopped answering: keep-alive probes (SO_KEEPALIVE) after timeout_s / 2 idle seconds, then
 * 4 probes timeout_s / 8 seconds apart (idle and interval each 1 to 32,767 s, Linux's bounds),
 * and TCP_USER_TIMEOUT timeout_s, the longest that sent data (an event stream's keep-alive, a
 * rejected line's answer) or a probe may stay unacknowledged, and (Linux) that the peer's
 * receive window may stay closed. The connection's next read or write then fails (ETIMEDOUT),
 * so its owner closes it. timeout_s 0: fd is left as it is (the system's defaults). Returns 0,
 * or -1 (errno set) when an option is refused, the options before it set. */
int deadpeer_set(int fd, unsigned timeout_s);

/* Whether n more bytes written to the connected TCP socket fd would go out at once and leave
 * nothing of ours waiting on the peer: everything written before is acknowledged (SIOCOUTQ 0)
 * and the peer's advertised receive window holds n bytes. Data that waits on a closed window
 * is what TCP_USER_TIMEOUT ends a connection for (above), so a writer that may hold back
 * (the stream's cumulative "ok N") asks first. n 0: the queue alone. 1 also when the kernel
 * cannot tell; a kernel that does not say the window (before Linux 5.4): the queue alone. */
int deadpeer_room(int fd, size_t n);

/* Whether the connected TCP socket fd, whose read or write just failed with ETIMEDOUT (the
 * timeout_s of deadpeer_set), was ended for a live peer that did not read: the peer still
 * acknowledged in the last two thirds of timeout_s (it answered the window probes) and its
 * advertised window could not take what of ours waited (a kernel that does not say the window,
 * before Linux 5.4: that something waited). 0 for a peer that vanished (it answered nothing
 * since, whatever its window was before), and also when the kernel cannot tell. It describes
 * the connection at its end, not its history: a client that was slow, read again, then vanished
 * is 0. */
int deadpeer_ended_not_reading(int fd, unsigned timeout_s);

#endif

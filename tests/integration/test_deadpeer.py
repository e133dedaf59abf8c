#!/usr/bin/python3
"""vigild integration (session 47, task http3): the options that find a vanished peer.

A client that vanishes without a FIN or reset (its cable pulled, a NAT's mapping dropped) kept
its event stream and its connection slot until TCP gave up: never on a connection where vigild
sends nothing (no keep-alive probes), some 15 minutes of retransmissions where it sends (an
event stream's keep-alives). Every accepted socket, HTTP's (http.dead_peer_timeout_s) and the
stream socket's (stream.dead_peer_timeout_s), now carries TCP keep-alive (idle half the
setting, then 4 probes an eighth of it apart) and TCP_USER_TIMEOUT (the setting): common/
deadpeer.c.

Loopback cannot lose a peer, so the test reads the options off vigild's own socket: it takes a
copy of the descriptor (pidfd_getfd, Linux 5.6; the test started vigild, so it may) whose peer
is the test's client, and asks it with getsockopt. On main's vigild the HTTP and the stream
sockets had SO_KEEPALIVE 0 and TCP_USER_TIMEOUT 0: both tests failed there.

pidfd_getfd needs ptrace's permission over vigild (root has it; another user has it over its own
child unless Yama's ptrace_scope is 2 or 3 or a seccomp profile refuses the call, as a
container's may). Where this process cannot take a descriptor from a child of its own, or has
no os.pidfd_open (Python before 3.9), nothing is tested: the script says why and exits 77,
which CTest reports as skipped (SKIP_RETURN_CODE), not passed."""

import ctypes
import os
import socket
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402

SYS_PIDFD_GETFD = 438  # the same number on every architecture


def getfd_refused():
    """Why this process cannot copy a descriptor of a child of its own, or None when it can."""
    if not hasattr(os, "pidfd_open"):
        return "os.pidfd_open missing (Python %s; 3.9 or later)" % sys.version.split()[0]
    libc = ctypes.CDLL(None, use_errno=True)
    with subprocess.Popen(["sleep", "30"], stdin=subprocess.PIPE) as child:
        try:
            pidfd = os.pidfd_open(child.pid)
            try:
                fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, 0, 0)
                err = ctypes.get_errno()
            finally:
                os.close(pidfd)
        finally:
            child.kill()
    if fd >= 0:
        os.close(fd)
        return None
    return "pidfd_getfd on a child refused: %s" % os.strerror(err)


def peer_sockopts(pid, client):
    """The dead-peer options of vigild's socket (process pid) whose peer is client's address:
    (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_USER_TIMEOUT), or None."""
    libc = ctypes.CDLL(None, use_errno=True)
    want = client.getsockname()
    pidfd = os.pidfd_open(pid)
    try:
        for name in os.listdir("/proc/%d/fd" % pid):
            try:
                if not os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith("socket:"):
                    continue
            except OSError:
                continue  # closed meanwhile
            fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd < 0:
                raise OSError(ctypes.get_errno(), "pidfd_getfd")
            s = socket.socket(fileno=fd)  # a copy: closing it leaves vigild's open
            try:
                if s.type != socket.SOCK_STREAM or s.getpeername() != want:
                    continue
                tcp = socket.IPPROTO_TCP
                return (s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                        s.getsockopt(tcp, socket.TCP_KEEPIDLE),
                        s.getsockopt(tcp, socket.TCP_KEEPINTVL),
                        s.getsockopt(tcp, socket.TCP_KEEPCNT),
                        s.getsockopt(tcp, socket.TCP_USER_TIMEOUT))
            except OSError:
                continue  # a listening socket, a UDP or unix socket: no peer
            finally:
                s.close()
    finally:
        os.close(pidfd)
    return None


class DeadPeer(vt.DaemonTestCase):
    """The defaults (60 s each) on one vigild, then settings of 20 s and 0 (off) on another."""

    def start(self, conf):
        cfg = vt.write_file(os.path.join(vt.mkdtemp(), "vigild.conf"),
                            "[model]\nenabled = false\n" + conf)
        d = vt.Vigild(config=cfg)
        d.start()
        self.addCleanup(d.stop)
        return d

    def opts(self, d, stream):
        """The options of vigild's side of a new connection to its HTTP port (a request made
        first, so libmicrohttpd has taken the connection) or its stream socket (a line
        answered first, so the listener has accepted it)."""
        if stream:
            c = d.stream_connect()
            c.send("pump v=1 1700000000000000000\n")
            self.assertTrue(c.read_line().startswith("ok"), c.responses)
            sock = c.sock
        else:
            sock = socket.create_connection(("127.0.0.1", d.http_port), timeout=30)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b" 200 ", sock.recv(4096))
        try:
            got = peer_sockopts(d.proc.pid, sock)
            self.assertIsNotNone(got, "no socket of vigild's has the client's address as peer")
            return got
        finally:
            sock.close()

    def test_defaults(self):
        d = self.start("")
        # keep-alive on, idle 30 s, 4 probes 7 s apart, unacknowledged data 60,000 ms
        for stream in (False, True):
            with self.subTest("stream" if stream else "http"):
                self.assertEqual(self.opts(d, stream), (1, 30, 7, 4, 60000))

    def test_settings(self):
        d = self.start("[http]\ndead_peer_timeout_s = 20\n[stream]\ndead_peer_timeout_s = 0\n")
        self.assertEqual(self.opts(d, False), (1, 10, 2, 4, 20000))
        # 0: the socket as the system made it (no keep-alive, no user timeout)
        self.assertEqual(self.opts(d, True)[0], 0)
        self.assertEqual(self.opts(d, True)[4], 0)

    def test_largest(self):
        # Idle and interval are capped at Linux's 32,767 s; the user timeout is the setting's.
        # (Before the review's fix the refused idle left the interval, count and user timeout
        # unset: (1, 7200, 75, 9, 0).)
        d = self.start("[http]\ndead_peer_timeout_s = 86400\n")
        self.assertEqual(self.opts(d, False), (1, 32767, 10800, 4, 86400000))


class PausedReader(vt.DaemonTestCase):
    """What the review measured (docs/reliability.md, "HTTP lanes and dead peers"): Linux applies
    TCP_USER_TIMEOUT to a closed receive window too, so a LIVE event-stream client that stops
    reading is ended once its window has stayed closed for http.dead_peer_timeout_s, before its
    unsent messages reach http.events_max_unsent (1 MiB). Kept and documented: pinned here so a
    change of it is seen. Since session 48 (task http4) such a stream is counted in
    vigil_event_streams_dropped_total, as a stream cut off for not reading is (the server ended
    it, not its client): on session 47's vigild the count stayed 0."""

    BODY = b'{"minutes": 5, "note": "%s"}' % (b"n" * 400)

    def start(self, conf=""):
        cfg = vt.write_file(os.path.join(vt.mkdtemp(), "vigild.conf"),
                            "[http]\ndead_peer_timeout_s = 2\n" + conf)
        d = vt.Vigild(config=cfg)
        d.start()
        self.addCleanup(d.stop)
        self.assertEqual(d.write_lp("pr v=1 %d" % (vt.now_ms() - 1000), precision="ms").status,
                         204)
        return d

    def stream(self, d, rcvbuf=None):
        s = socket.socket()
        self.addCleanup(s.close)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.connect(("127.0.0.1", d.http_port))
        s.sendall(b"GET /v1/events?types=maintenance HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b" 200 ", s.recv(64))
        return s

    def publish(self, d):
        """Two maintenance messages (~900 bytes)."""
        for method, b in (("POST", self.BODY), ("DELETE", None)):
            st, _, _ = vt.http_request(method, d.url("/v1/devices/pr/maintenance"), body=b,
                                       headers={"Content-Type": "application/json"},
                                       timeout=20)
            self.assertIn(st, (200, 204))

    def streams_until_none(self, d, publish):
        """Publishes (if asked) until no stream is open (at most 300 rounds): (streams,
        vigil_event_streams_dropped_total)."""
        streams = m = None
        for _ in range(300):  # ~900 bytes of messages each: at most ~270 KB, far below 1 MiB
            if publish:
                self.publish(d)
            m = d.metrics()
            streams = int(vt.metric_in(m, "vigil_event_streams", need=True))
            if streams == 0:
                break
            time.sleep(0.1)
        return streams, int(vt.metric_in(m, "vigil_event_streams_dropped_total", need=True))

    def test_window_closed_past_the_timeout(self):
        d = self.start()
        self.stream(d, rcvbuf=2048)  # a window soon closed; then never read again
        streams, dropped = self.streams_until_none(d, True)
        self.assertEqual(streams, 0, "the paused reader's stream still open")
        # Counted before the stream leaves vigil_event_streams (free_stream, then the detach).
        self.assertEqual(dropped, 1)
        self.assertIn("event stream cut off: its client stopped acknowledging", d.log())

    def test_clients_leaving_not_counted(self):
        """Review of task http4: a client that leaves (a close after reading, a half-close then
        a close, a reset) while messages flow is not counted, after a timed-out stream on the
        same libmicrohttpd thread (http.threads = 1) left ETIMEDOUT in that thread's errno. Each
        such stream's socket is in TCP_CLOSE at the free callback too (measured): only the
        failed send's errno (EPIPE, ECONNRESET) tells it from a timeout. With the errno check
        removed from ended_by_timeout (the review's trial) this failed: (0, 2) != (0, 1) at the
        first close."""
        d = self.start("threads = 1\n")
        self.stream(d, rcvbuf=2048)
        self.assertEqual(self.streams_until_none(d, True), (0, 1))
        for how in ("close", "half-close", "reset"):
            for _ in range(3):
                s = self.stream(d)
                self.publish(d)
                if how == "reset":
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif how == "half-close":
                    s.shutdown(socket.SHUT_WR)
                else:
                    s.settimeout(5)
                    self.assertTrue(s.recv(4096))  # it read what came
                s.close()
                self.publish(d)  # a send to the departed client
                self.assertEqual(self.streams_until_none(d, False), (0, 1), how)

    def test_quiet_after_the_window_closed(self):
        """Session 49 (task http5): the timeout found by events.c's reap_gone, not by a send.
        A burst of messages closes the paused reader's window (what the window refuses waits in
        the kernel's send buffer, 128 KiB, so libmicrohttpd has nothing left to send and the
        stream is suspended), then nothing is published and the keep-alive is an hour away, so
        no send of libmicrohttpd's meets the kernel's ETIMEDOUT: only reap_gone's poll (every
        second) sees the socket's error. It is counted as cut off and logged like a timeout a
        send met. With reap_gone's ETIMEDOUT branch removed (a patch, tried once) this failed:
        the stream was taken for a departed client, (0, 0) != (0, 1)."""
        d = self.start("events_keepalive_ms = 3600000\n")
        self.stream(d, rcvbuf=2048)
        for _ in range(10):  # ~9 KB: past the window, far below the send buffer
            self.publish(d)
        self.assertEqual(self.streams_until_none(d, False), (0, 1))
        self.assertIn("event stream cut off: its client stopped acknowledging", d.log())

if __name__ == "__main__":
    why = getfd_refused()
    vt.main(why and "%s; vigild's socket options cannot be read" % why)

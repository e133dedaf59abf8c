#!/usr/bin/python3
"""vigild integration (session 68, task stream68): how a stream connection that the dead-peer
timeout (stream.dead_peer_timeout_s) ended is counted, and a held "ok" after a lost window
update. Loopback cannot lose a peer, so the test runs vigild and its clients in a network
namespace of their own (unshare(CLONE_NEWNET): root, or a user namespace's root) and makes a
client vanish with two "blackhole" routing rules for its port (each direction), as a pulled
cable would: nothing of its reaches vigild, nothing of vigild's reaches it, no FIN, no reset.

Where the namespace is refused to a user other than root, nothing is tested: the script says
why and exits 77, which CTest reports as skipped (SKIP_RETURN_CODE), not passed. As root (CI), a
refused namespace, a missing "ip" (iproute2) or a refused rule fails the test instead."""

import ctypes
import os
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from test_streamread import small_window_client  # noqa: E402

CLONE_NEWNET = 0x40000000
NOT_READING = 'vigil_stream_connections_timed_out_total{reason="peer_not_reading"}'
SILENT = 'vigil_stream_connections_timed_out_total{reason="silent"}'


def own_network():
    """Moves this process into a new network namespace with its loopback up and the local
    table's rule moved after the test's (pref 100), so a rule can drop loopback traffic.
    Returns None, or why the namespace is refused to a user other than root (the test is then
    skipped). As root (CI) a refused namespace, a missing or a failing "ip" is an error, not a
    skip: tools/install-deps installs iproute2, and a skip there would hide the test."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        why = "unshare(CLONE_NEWNET) refused: %s" % os.strerror(ctypes.get_errno())
        if os.geteuid() == 0:  # CI runs as root: there the test must run, not pass as skipped
            sys.exit("%s, as root (a container without CAP_SYS_ADMIN?)" % why)
        return why
    for cmd in (["ip", "link", "set", "lo", "up"],
                ["ip", "rule", "add", "pref", "100", "lookup", "local"],
                ["ip", "rule", "del", "pref", "0"]):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as e:
            sys.exit("%s: %s (tools/install-deps installs iproute2)" % (cmd[0], e))
        if r.returncode != 0:
            sys.exit("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return None


def vanish(case, s):
    """Drops every packet to and from client socket s's port: its peer hears nothing more. The
    rules are removed at case's end whatever happens (the namespace itself goes with the
    process: vigild dies with the test, PR_SET_PDEATHSIG)."""
    case.addCleanup(reappear)
    port = str(s.getsockname()[1])
    for pref, sel in (("10", "dport"), ("11", "sport")):
        subprocess.run(["ip", "rule", "add", "pref", pref, "ipproto", "tcp", sel, port,
                        "blackhole"], check=True)


def reappear():
    """Removes vanish's rules (those there: it may run twice, or after a half-made vanish)."""
    for pref in ("10", "11"):
        subprocess.run(["ip", "rule", "del", "pref", pref], capture_output=True)


def fill_window(s, n=20000):
    """Comments, each read answered with an "ok" at once: the client's window fills with them
    (vigild then holds the newest)."""
    for _ in range(n):
        s.sendall(b"# ka\n")
        time.sleep(0.0002)


def drain(s, quiet=0.5):
    """Reads what has arrived until nothing comes for quiet seconds; returns it."""
    s.settimeout(quiet)
    got = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    return got


class Ended(vt.DaemonTestCase):
    CONFIG = "[stream]\ndead_peer_timeout_s = 4\n"

    def counts(self):
        return (self.d.metric(NOT_READING, need=True), self.d.metric(SILENT, need=True))

    def wait_counted(self, before, want):
        """Waits until the counts are before + want (not reading, silent)."""
        goal = (before[0] + want[0], before[1] + want[1])
        vt.wait_for("the counts %s" % (goal,), lambda: self.counts() == goal, 30,
                    lambda: "; counts %s; log %s" % (self.counts(), self.d.log()[-1500:]))

    def test_slow_reader_that_vanished_is_silent(self):
        # The client lets its window close, a refused line's error is written onto it (it is
        # not reading, for now), then it reads everything (the window opens) and vanishes: at
        # the timeout its peer answers nothing and its window was open. On session 67's code
        # the error written onto the closed window (shut_wnd) had it counted as not reading.
        before = self.counts()
        s = small_window_client(self.d.stream_port)
        self.addCleanup(s.close)
        fill_window(s)
        s.sendall(b"m,device=gone x= 1\n")
        time.sleep(1)
        got = drain(s)
        deadline = time.monotonic() + 15  # the held ok's poll backs off to 1 s; slow under ASan
        while not got.endswith(b"ok 20001\n") and time.monotonic() < deadline:
            got += drain(s)
        self.assertIn(b"error 20001 ", got)
        self.assertTrue(got.endswith(b"ok 20001\n"), got[-60:])
        vanish(self, s)
        self.wait_counted(before, (0, 1))
        self.assertNotIn("connection from 127.0.0.1:%d ended" % s.getsockname()[1],
                         self.d.log())

    def test_never_reading_client_under_1mib_is_not_reading(self):
        # A client that never reads, whose refused lines' answers stay far under 1 MiB (each
        # written while vigild saw room in its window): ended by the timeout, it is counted as
        # not reading, the peer having answered the kernel's window probes till the end.
        before = self.counts()
        s = small_window_client(self.d.stream_port)
        self.addCleanup(s.close)
        for i in range(300):  # ~12 KB of answers, each read's error written on its own
            s.sendall(b"m,device=nr x= %d\n" % i)
            time.sleep(0.005)
        self.wait_counted(before, (1, 0))
        self.assertIn("connection from 127.0.0.1:%d ended: it did not read its answers"
                      % s.getsockname()[1], self.d.log())

    def test_vanished_is_silent(self):
        before = self.counts()
        s = small_window_client(self.d.stream_port)
        self.addCleanup(s.close)
        s.sendall(b"m,device=v x=1 %d\n" % (vt.now_ms() * 1000000))
        s.settimeout(10)
        self.assertEqual(s.recv(100), b"ok 1\n")
        vanish(self, s)
        self.wait_counted(before, (0, 1))


class LostWindowUpdate(vt.DaemonTestCase):
    """The client's window update, sent as it reads, is lost; it then sends nothing and waits
    for its last "ok". vigild holds the ok while it sees the window closed; the keep-alive
    probes (dead_peer_timeout_s / 2 idle) carry the window back, but with
    dead_peer_timeout_s = 0 there are none, and on session 67's code the ok never came."""
    CONFIG = "[stream]\ndead_peer_timeout_s = 0\n"
    TIMEOUT = 0

    def test_held_ok_reaches_a_client_that_reads(self):
        s = small_window_client(self.d.stream_port)
        self.addCleanup(s.close)
        fill_window(s)
        s.sendall(b"m,device=lw%d x=1 %d\n" % (self.TIMEOUT, vt.now_ms() * 1000000))
        time.sleep(1)  # the point committed; its ok held (or waiting) on the closed window
        vanish(self, s)  # the window update the read sends is lost
        got = drain(s)
        time.sleep(0.3)
        reappear()
        got += drain(s, 12)
        self.assertTrue(got.endswith(b"ok 20001\n"), got[-60:])


class LostWindowUpdateKeepAlive(LostWindowUpdate):
    CONFIG = "[stream]\ndead_peer_timeout_s = 4\n"
    TIMEOUT = 4


if __name__ == "__main__":
    why = own_network()
    vt.main(why and "%s; a vanished peer cannot be made" % why)

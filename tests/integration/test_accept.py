#!/usr/bin/python3
"""vigild integration: accepting connections without descriptors or memory (docs/reliability.md,
"Out of descriptors or memory at accept"). Under a low open-file limit (LowFdLimit), with the
stream's accept failing (AcceptFails: tests/fault/failaccept.c) and with the stream connection's
allocation failing (ConnAllocFails: tests/fault/failalloc.c), vigild stays alive, its loop keeps
answering the connections it holds without spinning, the failures are counted in /metrics, and
once the pressure passes a new stream connection and a new HTTP request work again without a
restart."""

import os
import re
import resource
import socket
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
import pipeline_fx as tp  # noqa: E402  (DaemonPerTest)
from test_reliability import SANITIZED  # noqa: E402

FAILACCEPT = os.environ.get("VIGIL_FAILACCEPT", "")
FAILALLOC = os.environ.get("VIGIL_FAILALLOC", "")
NOFILE = 160        # the low open-file limit (soft and hard) of LowFdLimit
HOLD_MAX = 400      # at most this many connections held open (bounds the loops below)
ANSWER_S = 5        # how long a held connection may take to answer (a loaded or sanitized build)
CPU_BOUND = 0.5     # CPU seconds vigild may use in one second of waiting: a spinning loop uses ~1
T0 = 1_700_000_000_000


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def answered(client, line, timeout):
    """Sends one line on a stream connection; returns its answer, or None if none comes within
    timeout seconds (the connection not accepted) or the connection is closed."""
    client.sock.settimeout(timeout)
    try:
        client.send(line)
        return client.read_line()
    except OSError:
        return None
    finally:
        client.sock.settimeout(30)


def http_get(port, timeout):
    """GET /healthz on a new connection; its status, or None without an answer in time."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head = s.recv(64)
            return int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else None
    except OSError:
        return None


class Base(tp.DaemonPerTest):
    """setUp starts self.d; DaemonPerTest's tearDown stops it (exit 0; a no-op once stopped)
    and its run attaches the log to a failure."""

    def assert_not_spinning(self):
        pid = self.d.proc.pid
        c0 = cpu_seconds(pid)
        time.sleep(1.0)
        used = cpu_seconds(pid) - c0
        self.assertLess(used, CPU_BOUND, "vigild used %.2f s of CPU in 1 s of waiting" % used)

    def assert_works_again(self, k):
        """A new stream connection stores reading k + 1, acknowledged; a new HTTP request is
        answered. Returns k + 1."""
        k += 1
        c = self.d.stream_connect()
        c.send("m,device=acc v=%d %d\n" % (k, (T0 + 1000 * k) * 1_000_000))
        self.assertEqual(c.read_line(), "ok 1")
        c.close()
        self.assertEqual(http_get(self.d.http_port, 10), 200)
        self.assertIn(k, [p["values"]["v"] for p in self.d.readings("acc")])
        return k


class LowFdLimit(Base):
    """vigild under RLIMIT_NOFILE NOFILE (soft and hard): the start-up warning names the numbers;
    stream and HTTP connections are opened until accepts fail; vigild stays alive, answers on
    the connections it holds and does not spin; the HTTP accept errors are counted; once the held
    connections close, new ones work."""

    def setUp(self):
        self.d = vt.Vigild(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                                 (NOFILE, NOFILE)))
        self.d.start()

    def test_out_of_descriptors(self):
        self.assertRegex(self.d.log(), r"open-file limit %d is below the \d+ descriptors the "
                         r"limits may need \(http.max_connections 1024 \+ stream.max_connections "
                         r"1024 \+ \d+ for SQLite" % NOFILE)
        first = self.d.stream_connect()
        self.assertEqual(answered(first, "# first\n", 10), "ok 1")
        # A keep-alive HTTP connection opened first, to ask on while no new one is accepted.
        kept = self.http_held()
        self.assertIsNotNone(kept)
        held = [kept]
        stream_failed = self.hold(held, self.stream_held)
        http_failed = self.hold(held, self.http_held)
        self.assertEqual((stream_failed, http_failed), (3, 3), "never ran out of descriptors "
                         "with %d connections" % len(held))
        self.assertIsNone(self.stream_held(), "a stream connection accepted without descriptors")
        # HTTP still answers on a connection it holds.
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(kept.recv(4096).startswith(b"HTTP/1.1 200"))
        self.assertIsNone(self.d.proc.poll(), "vigild exited")
        self.assert_not_spinning()
        # The loop still serves the connection it holds: a reading stored and acknowledged.
        first.send("m,device=acc v=0 %d\n" % (T0 * 1_000_000))
        self.assertEqual(first.read_line(), "ok 2")
        for c in held:
            c.close()
        first.close()
        time.sleep(0.5)
        self.assert_works_again(0)
        self.assertGreater(self.d.metric("vigil_http_accept_errors_total", need=True), 0)
        # The log says why, once (the failures above are within the minute): HTTP's was only a
        # debug line, however many accepts failed.
        log = self.d.log()
        self.assertEqual(len(re.findall(r" warn  http: Error accepting connection: Too many "
                                        r"open files: retrying", log)), 1, log)

    def test_http_threads_without_connections(self):
        """The descriptors used up by stream connections alone, no HTTP connection open: a new
        HTTP connection cannot be accepted, and each libmicrohttpd thread, holding no connection,
        retries its accept as soon as the listening socket is ready (the old code: its 4 threads
        at a full core each, 2 s of CPU per second on 2 cores); vigild throttles them (mhd_log),
        and the connection is answered once descriptors are free."""
        held = []
        self.assertEqual(self.hold(held, self.stream_held), 3, "never ran out of descriptors "
                         "with %d connections" % len(held))
        # A descriptor can still come free (the stream's listener closes its duplicate when it
        # pauses): an HTTP connection answered meanwhile is held too, until one is not answered.
        waiting = None
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=10)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(0.5)
            try:
                s.recv(4096)
                held.append(s)
            except socket.timeout:
                waiting = s
                break
        self.assertIsNotNone(waiting, "3 HTTP connections accepted without descriptors")
        self.assert_not_spinning()
        waiting.settimeout(10)
        for c in held:
            c.close()
        self.assertTrue(waiting.recv(64).startswith(b"HTTP/1.1 200"))
        waiting.close()
        self.assertGreater(self.d.metric("vigil_http_accept_errors_total", need=True), 0)

    def hold(self, held, connect):
        """Opens connections with connect() (a socket-like object, or None when not answered)
        until 3 are not answered or HOLD_MAX are held; returns the number not answered."""
        failed = 0
        while len(held) < HOLD_MAX and failed < 3:
            c = connect()
            if c is None:
                failed += 1
            else:
                held.append(c)
        return failed

    def stream_held(self):
        """A new stream connection that answered a comment line within ANSWER_S, or None."""
        try:
            c = self.d.stream_connect(timeout=2)
        except OSError:
            return None
        if answered(c, "# held\n", ANSWER_S) == "ok 1":
            return c
        c.close()
        return None

    def http_held(self):
        """A new HTTP keep-alive connection that answered GET /healthz within ANSWER_S, or None."""
        s = None
        try:
            s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=ANSWER_S)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            if s.recv(4096).startswith(b"HTTP/1.1 200"):
                return s
        except OSError:
            pass
        if s is not None:
            s.close()
        return None


@unittest.skipUnless(os.path.exists(FAILACCEPT), "VIGIL_FAILACCEPT (tests/fault/failaccept.c's "
                     "library, set by CTest) not found")
class AcceptFails(Base):
    """vigild under tests/fault/failaccept.c's library: while its flag file exists, every accept
    on the stream socket fails with the errno it names, as libuv's reserve-descriptor trick
    cannot help (libuv then calls vigild again and again). vigild pauses the listener: no
    spinning, its loop answers, the failures are counted by reason; a connection made meanwhile
    waits in the kernel's backlog and is served once the flag is gone. SIGTERM while paused is
    a clean stop."""

    def setUp(self):
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        self.d = vt.Vigild(prefix=["env", "LD_PRELOAD=" + vt.preload(FAILACCEPT),
                                   "VIGIL_FAILACCEPT_FLAG=" + self.flag])
        self.d.start()

    def test_accept_fails_then_recovers(self):
        held = self.d.stream_connect()
        self.assertEqual(answered(held, "# held\n", 10), "ok 1")
        k, line = 0, 1
        for errno_name, reason in (("EMFILE", "out_of_fds"), ("ENOMEM", "out_of_memory")):
            name = 'vigil_stream_accept_errors_total{reason="%s"}' % reason
            before = self.d.metric(name, need=True)
            vt.write_file_atomic(self.flag, "%s %d" % (errno_name, self.d.stream_port))
            waiting = self.d.stream_connect()
            self.assertIsNone(answered(waiting, "# waiting\n", 1))
            self.assert_not_spinning()
            k, line = k + 1, line + 1
            held.send("m,device=acc v=%d %d\n" % (k, (T0 + 1000 * k) * 1_000_000))
            self.assertEqual(held.read_line(), "ok %d" % line)
            self.assertGreater(self.d.metric(name, need=True), before)
            self.assertEqual(self.d.get_json("/healthz")["status"], "ok")
            os.unlink(self.flag)
            waiting.sock.settimeout(10)
            self.assertEqual(waiting.read_line(), "ok 1")  # "# waiting", once accepted
            k = self.assert_works_again(k)
        self.assertIn("stream: cannot accept a connection", self.d.log())
        self.assertIn("stream: accepting connections again", self.d.log())
        held.close()
        vt.write_file_atomic(self.flag, "EMFILE %d" % self.d.stream_port)
        c = self.d.stream_connect()
        time.sleep(0.3)
        self.d.stop(timeout=30)  # exit code 0 while paused
        c.close()


@unittest.skipIf(SANITIZED, "a sanitizer build owns malloc: an LD_PRELOAD allocator cannot run "
                 "under it (this case runs in the plain build)")
@unittest.skipUnless(os.path.exists(FAILALLOC), "VIGIL_FAILALLOC (tests/fault/failalloc.c's "
                     "library, set by CTest) not found")
class ConnAllocFails(Base):
    """vigild under tests/fault/failalloc.c's library, failing allocations of 384 bytes and more
    on threads named "vigild" (the loop thread: the process's name) while its flag file exists:
    a new stream connection's state (struct conn) cannot be allocated. The connection stays
    pending and is taken once memory is back: the listener is not dead (the old code returned
    without uv_accept, and libuv stopped watching the listener for good)."""

    def setUp(self):
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        self.d = vt.Vigild(prefix=["env", "LD_PRELOAD=" + FAILALLOC,
                                   "VIGIL_FAILALLOC_FLAG=" + self.flag,
                                   "VIGIL_FAILALLOC_THREAD=vigild", "VIGIL_FAILALLOC_MIN=384"])
        self.d.start()

    def test_conn_alloc_fails_then_recovers(self):
        name = 'vigil_stream_accept_errors_total{reason="out_of_memory"}'
        before = self.d.metric(name, need=True)
        vt.write_file_atomic(self.flag, "384")
        waiting = self.d.stream_connect()
        self.assertIsNone(answered(waiting, "# waiting\n", 1))
        self.assert_not_spinning()
        os.unlink(self.flag)
        waiting.sock.settimeout(10)
        self.assertEqual(waiting.read_line(), "ok 1")
        self.assertGreater(self.d.metric(name, need=True), before)
        self.assert_works_again(0)


if __name__ == "__main__":
    unittest.main()

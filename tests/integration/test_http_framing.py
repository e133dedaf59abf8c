#!/usr/bin/python3
"""vigild integration (session 69, task http69): how a request's body is framed and how long it
may take, with raw sockets (read69c's findings 3, 4 and 8).

- Content-Length headers of different values: 400 and closed (RFC 9112 6.3). Before, the first
  one framed the body and the bytes after it ran as a second request: a smuggled point stored.
- HTTP/1.0 POST /write without Content-Length: 411. Before, 204 with the lines ignored.
- http.request_timeout_s: a body trickling in a byte at a time is answered 408 and closed at
  the deadline, one that stops coming is closed; both counted and logged. Before, a client
  sending a byte every second held its connection for ever (http.timeout_s is idle time).
  Pipelined behind an answered request, the 408 comes after that answer whole; on HTTPS the
  connection closes with nothing written into the TLS stream (review of http69).
- The connection limits say so: a warning a minute and a counter each."""

import os
import socket
import ssl
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from test_security import TlsVigild, openssl_cert  # noqa: E402  (helpers only)


def read_all(s, limit_s=10.0):
    """Everything s receives until the server closes it (or limit_s passes: then b"<open>"
    is appended, the connection still open)."""
    out, end = b"", time.monotonic() + limit_s
    while time.monotonic() < end:
        s.settimeout(max(0.05, end - time.monotonic()))
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return out
        if not b:
            return out
        out += b
    return out + b"<open>"


def raw(port, data, limit_s=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(data)
        return read_all(s, limit_s)
    finally:
        s.close()


def statuses(out):
    """The status codes of the HTTP answers in out, in order."""
    return [int(line.split()[1]) for line in out.split(b"\r\n") if line.startswith(b"HTTP/1.")]


def trickle(s, limit_s=15.0):
    """A byte of body on s every 0.5 s, reading what comes, until the server closes s (or
    limit_s passes). Returns (what came, seconds taken, the error that ended it or None)."""
    t0, out, err = time.monotonic(), b"", None
    s.settimeout(0.5)
    while time.monotonic() - t0 < limit_s:
        try:
            s.sendall(b"m")
            b = s.recv(4096)
        except socket.timeout:
            continue
        except OSError as e:  # a reset, or on TLS an EOF without close_notify (SSLError)
            err = e
            break
        if not b:
            break
        out += b
    return out, time.monotonic() - t0, err


def lp(device):
    return b"m,device=%s a=1 %d\n" % (device.encode(), time.time_ns())


class Framing(vt.DaemonTestCase):
    def post(self, body, lengths, version=b"HTTP/1.1", close=True):
        head = b"POST /write?db=x %s\r\nHost: x\r\n" % version
        if close:
            head += b"Connection: close\r\n"
        for n in lengths:
            head += b"Content-Length: %s\r\n" % n
        return raw(self.d.http_port, head + b"\r\n" + body)

    def test_differing_lengths_refused(self):
        """The body's first 19 bytes and, after them, a whole request for device smuggled,
        declared 19 and then the whole length (and the other way round): one 400, closed, and
        neither point stored (on main: two 204s and the smuggled point stored)."""
        first = b"m,device=front a=1\n"
        inner = lp("smuggled")
        second = (b"POST /write?db=x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(inner)
                  + inner)
        body = first + second
        for order in ((b"19", b"%d" % len(body)), (b"%d" % len(body), b"19")):
            with self.subTest(order=order):
                out = self.post(body, order, close=False)
                self.assertEqual(statuses(out), [400], out)
                self.assertIn(b"Content-Length headers of different values", out)
                self.assertIn(b"Connection: close", out)
                self.assertFalse(out.endswith(b"<open>"), "connection left open: %r" % out)
        self.d.device("smuggled", want=404)
        self.d.device("front", want=404)

    def test_same_length_repeated_served(self):
        """The same value twice frames the body the same way: stored. A list "n, n" in one
        header is libmicrohttpd's 400 (its HTML), nothing stored."""
        body = lp("samelen")
        out = self.post(body, (b"%d" % len(body), b"%d" % len(body)))
        self.assertEqual(statuses(out)[:1], [204], out)
        self.assertEqual(len(self.d.readings("samelen")), 1)
        body = lp("listlen")
        out = self.post(body, (b"%d, %d" % (len(body), len(body)),))
        self.assertEqual(statuses(out)[:1], [400], out)
        self.d.device("listlen", want=404)

    def test_http10_without_length_411(self):
        """HTTP/1.0 has no chunked bodies: without Content-Length the body cannot be read.
        411 naming the fix, closed (on main: 204 and the line ignored)."""
        out = self.post(lp("h10"), (), version=b"HTTP/1.0", close=False)
        self.assertEqual(statuses(out), [411], out)
        self.assertIn(b"without Content-Length", out)
        self.assertFalse(out.endswith(b"<open>"), out)
        self.d.device("h10", want=404)
        # with it: served as always
        body = lp("h10len")
        out = self.post(body, (b"%d" % len(body),), version=b"HTTP/1.0", close=False)
        self.assertEqual(statuses(out), [204], out)
        self.assertEqual(len(self.d.readings("h10len")), 1)


class RequestTimeout(vt.DaemonTestCase):
    CONFIG = "[http]\ntimeout_s = 20\nrequest_timeout_s = 3\n"

    def open_post(self, length):
        s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=10)
        s.sendall(b"POST /write?db=x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % length)
        return s

    def timeouts(self):
        return self.d.metric("vigil_http_request_timeouts_total", need=True)

    def test_trickling_body_408(self):
        """A byte every 0.5 s (never idle for http.timeout_s, 20 s): 408 and closed within a
        few seconds of the 3 s deadline, counted and logged (on main: open for as long as the
        client sends: 15 s here, then the test's own limit)."""
        before = self.timeouts()
        code408 = 'vigil_http_requests_total{route="write",code="408"}'
        before408 = self.d.metric(code408) or 0
        s = self.open_post(400)
        try:
            out, took, _ = trickle(s)
        finally:
            s.close()
        self.assertIn(b"HTTP/1.1 408 Request Timeout", out)
        self.assertIn(b"http.request_timeout_s", out)
        self.assertLess(took, 7.0, "closed after %.1f s" % took)
        self.assertGreaterEqual(took, 2.5)
        self.assertEqual(self.timeouts(), before + 1)
        vt.wait_for("the warning",
                    lambda: "did not arrive within http.request_timeout_s (3 s)" in self.d.log(),
                    5)
        # counted under its own code (read69e 7: "other" before 408 was a code label)
        self.assertEqual(self.d.metric(code408), before408 + 1)

    def test_stalled_body_closed(self):
        """Part of the body, then a byte at 2 s, then nothing: closed by the deadline (plus a
        second or two of libmicrohttpd's whole-second clock), not after http.timeout_s (20 s),
        and counted."""
        before = self.timeouts()
        s = self.open_post(400)
        t0 = time.monotonic()
        try:
            s.sendall(b"m,device=stall a=1")
            time.sleep(2)
            s.sendall(b" ")
            out = read_all(s, 15)
        finally:
            s.close()
        took = time.monotonic() - t0
        self.assertFalse(out.endswith(b"<open>"), "still open after %.1f s" % took)
        self.assertLess(took, 7.0)
        vt.wait_for("the count", lambda: self.timeouts() == before + 1, 5)
        self.d.device("stall", want=404)

    def test_pipelined_late_body_after_answer(self):
        """A whole request and, in the same packet, a second one whose body then trickles: the
        first is answered whole (204) before the 408 vigild writes itself for the second, the
        two not interleaved, and the first point stored (review of http69: libmicrohttpd reads
        a connection's next request only once the answer before it is sent)."""
        before = self.timeouts()
        first = lp("pipe1")
        s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=10)
        try:
            s.sendall(b"POST /write?db=x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                      % len(first) + first
                      + b"POST /write?db=x HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n\r\nm")
            out, _, _ = trickle(s)
        finally:
            s.close()
        self.assertEqual(statuses(out), [204, 408], out)
        # the 204 whole (no body, its head's end) before the 408 begins
        self.assertRegex(out, rb"^HTTP/1\.1 204 No Content\r\n(?:[^\r]+\r\n)*\r\n"
                              rb"HTTP/1\.1 408 Request Timeout\r\n")
        self.assertEqual(len(self.d.readings("pipe1")), 1)
        vt.wait_for("the count", lambda: self.timeouts() == before + 1, 5)
        # the server serves on: a new connection is answered
        self.assertEqual(self.d.get("/healthz")[0], 200)

    def test_slow_body_within_deadline_keeps_connection(self):
        """A body that takes 2 s (within the deadline, which lowers the connection's idle
        timeout meanwhile) is served, and the kept-alive connection waits http.timeout_s
        again: a request 5 s later on it is served."""
        body = lp("slowok")
        s = self.open_post(len(body))
        try:
            for i in range(4):
                s.sendall(body[i * len(body) // 4:(i + 1) * len(body) // 4])
                time.sleep(0.5)
            s.settimeout(5)
            self.assertIn(b"204 No Content", s.recv(4096))
            time.sleep(5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            out = read_all(s, 5)
        finally:
            s.close()
        self.assertEqual(statuses(out), [200], out)
        self.assertEqual(len(self.d.readings("slowok")), 1)


class RefusedThenLate(vt.DaemonTestCase):
    """read69e 7: a body refused by http.max_inflight_bytes (a 413, sent once the body is read)
    that trickles on past http.request_timeout_s is answered that 413 at the deadline, counted
    once as a 413 and not as a request timeout. On main the refusal was replaced by a raw 408
    (its advice lost) and counted as a timeout."""
    CONFIG = ("[http]\ntimeout_s = 20\nrequest_timeout_s = 3\n"
              "max_inflight_bytes = 1048576\n")

    def test_refusal_sent_at_deadline(self):
        before = self.d.metric("vigil_http_request_timeouts_total", need=True)
        line = b"m,device=late a=1\n"
        head = 1_100_000 // len(line) * line  # past 7/8 of 1 MiB once its buffer doubles
        s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=10)
        try:
            s.sendall(b"POST /write?db=x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                      % (len(head) + 400) + head)
            out, took, _ = trickle(s)
        finally:
            s.close()
        self.assertEqual(statuses(out), [413], out)
        self.assertIn(b"http.max_inflight_bytes (1 MB) allows one request (896 KB)", out)
        self.assertLess(took, 7.0, "closed after %.1f s" % took)
        self.assertEqual(self.d.metric('vigil_http_requests_total{route="write",code="413"}'),
                         1.0)
        self.assertIsNone(self.d.metric('vigil_http_requests_total{route="write",code="408"}'))
        self.assertEqual(self.d.metric("vigil_http_request_timeouts_total"), before)
        self.d.device("late", want=404)


class RequestTimeoutTls(unittest.TestCase):
    def test_late_tls_body_closed_unanswered(self):
        """On HTTPS (review of http69) a body trickling past http.request_timeout_s is closed
        with no plain-text 408 written into the TLS stream (the client would read a garbled
        record: WRONG_VERSION_NUMBER), counted, and HTTPS served after it."""
        tmp = vt.mkdtemp()
        cert, key = openssl_cert(tmp)
        conf = vt.write_file(os.path.join(tmp, "vigild.conf"),
                             "[http]\ntls_cert = %s\ntls_key = %s\ntimeout_s = 20\n"
                             "request_timeout_s = 3\n" % (cert, key))
        d = TlsVigild(cert, config=conf)
        d.start()
        try:
            ctx = ssl.create_default_context(cafile=cert)
            ctx.check_hostname = False
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.http_port), timeout=10),
                                server_hostname="127.0.0.1")
            try:
                s.sendall(b"POST /write?db=x HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n\r\n")
                out, took, err = trickle(s)
            finally:
                s.close()
            if isinstance(err, ssl.SSLError) and not isinstance(
                    err, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
                self.fail("a TLS record garbled (plain bytes in the stream?): %r" % err)
            self.assertEqual(out, b"")
            self.assertLess(took, 7.0, "closed after %.1f s" % took)
            self.assertGreaterEqual(took, 2.5)
            st, _, body = d.get("/metrics")
            self.assertEqual(st, 200)
            self.assertEqual(vt.metric_in(body.decode(), "vigil_http_request_timeouts_total"), 1)
            d.stop()
        finally:
            d.cleanup()

class ConnectionLimits(vt.DaemonTestCase):
    CONFIG = "[http]\nmax_connections = 6\nmax_connections_per_ip = 2\n"

    def test_limits_logged_and_counted(self):
        """Past the per-IP cap a connection is closed at once; at the total cap new clients
        wait in the backlog. Each is a warning (on main: nothing logged) and a counter."""
        held = []
        try:
            for _ in range(4):
                held.append(socket.create_connection(("127.0.0.1", self.d.http_port), 5))
            closed = 0
            for s in held:
                s.settimeout(1)
                try:
                    closed += s.recv(10) == b""
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed += 1
            self.assertEqual(closed, 2)
            for s in held:
                s.close()
            held = []
            for i in range(6):
                s = socket.socket()
                s.bind(("127.0.0.%d" % (2 + i // 2), 0))
                s.connect(("127.0.0.1", self.d.http_port))
                held.append(s)
            vt.wait_for("the total cap's warning",
                        lambda: "http.max_connections: new clients wait" in self.d.log(), 5)
        finally:
            for s in held:
                s.close()
        vt.wait_for("the per-IP cap's warning",
                    lambda: "its address holds http.max_connections_per_ip (2)" in self.d.log(), 5)
        m = self.d.metrics()
        self.assertEqual(vt.metric_in(m, "vigil_http_connections_refused_total"), 2)
        self.assertGreaterEqual(vt.metric_in(m, "vigil_http_connections_full_total"), 1)


if __name__ == "__main__":
    unittest.main()

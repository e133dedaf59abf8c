#!/usr/bin/python3
"""vigild integration: a stop (SIGTERM) with requests in flight (docs/reliability.md). Moved
whole from test_reliability.py (session 33), whose helpers (Base, req, wait_for, ...) these
tests share, as they share test_faults.py's MaintRequests; CTest it_stop runs alone
(RUN_SERIAL).

- StopAnswers (tests/fault/failmaint.c, VIGIL_FAILMAINT): writes (/write, /v1/readings, a
  maintenance POST) held at the writer across SIGTERM each get their 2xx and are stored;
  meanwhile a request on an idle keep-alive connection gets 503 with "Connection: close" (in
  InfluxDB 2's form on /api/v2/write), a new connection is refused, an idle one holds nothing
  up, and a request whose body never ends holds the stop for the 3 s grace only.
  StopCount: the stop's count of requests in flight is left as found by every kind of request
  (a count too high holds the stop for the grace, one too low drops a begun request's answer),
  and a declared oversized body during the stop gets its 413 at once. StopTls: the same
  accept policy over HTTPS closes new connections before the handshake.
- StopSignals: a SIGHUP, SIGTERM or SIGINT while the stop saves detectors (the loop has
  ended) neither ends vigild nor disturbs the stop.
- StopFail (failmaint.c): a stop whose detectors' saves fail exits 1 with one error line
  naming what was lost, not "stopped cleanly" (nor "writes succeed again", with nothing
  written), also with the disk failing since before the stop; a clean stop of the same vigild
  exits 0 with "stopped cleanly". StopFailBlocks: only the pipeline's last prediction blocks
  fail at the stop; the detectors' saves, committed before them, are kept, and the stop's line
  names the blocks' loss, not lost detectors. StopFailTraining: a training running at the stop
  whose detector's save fails is counted once, as a lost detector, not as a "last write".
"""

import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import ssl
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from test_security import TlsVigild, openssl_cert  # noqa: E402
from test_reliability import (Base, astuple, config_file, req, store_queue,  # noqa: E402
                              wait_for, wait_held)
from test_faults import FAILMAINT, MaintRequests  # noqa: E402


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library, set by CTest; not built in a TSan build) not found")
class StopAnswers(MaintRequests, Base):
    """A stop answers the requests it has begun (api/server.c, api_stop). vigild runs under
    tests/fault/failmaint.c's library: while its flag file says "hold", the writer waits in a
    maintenance POST's statement, and the writes queued behind it wait too. SIGTERM then finds
    requests in flight: each one gets its whole 2xx answer once the writer is released, and is
    on disk after a restart (test_held_writes_answered; before the fix, MHD_stop_daemon closed
    connections whose answer the worker had not yet sent). Meanwhile a request on an idle
    keep-alive connection is answered 503, Retry-After and "Connection: close", with a JSON
    error saying vigild is stopping, a new connection is refused, and another idle keep-alive
    connection does not hold the stop up: it ends without the grace's warning
    (test_requests_during_stop). A request whose body never ends holds the stop for the grace
    (3 s) only, then its connection closes (test_unfinished_request_bounded)."""
    CONFIG = "[model]\nwarmup = 1000000\n"  # the pipeline knows the device; nothing trains
    GRACE_WARNING = "begun before the stop still unanswered"

    def setUp(self):
        self.flag = os.path.join(vt.mkdtemp(), "hold")
        self.d = vt.Vigild(config=config_file(self.CONFIG), prefix=[
            "env", "LD_PRELOAD=" + vt.preload(FAILMAINT), "VIGIL_FAILMAINT_FLAG=" + self.flag])
        self.d.start()
        self.assertEqual(req(self.d, "POST", "/v1/readings",
                             [{"device": "mx", "ts": 1, "values": {"v": 1}}])[0], 200)

    def hold_writer(self, period):
        """Holds the writer in a maintenance POST of period; returns the thread that POSTs it
        and the list its answer (status, headers, JSON) goes to."""
        vt.write_file_atomic(self.flag, "hold")
        held = self.in_thread(lambda: self.maint("POST", body=period))
        wait_held(self.flag)
        return held

    def in_thread(self, fn):
        answer = []

        def run():
            try:
                answer.append(fn())
            except (OSError, http.client.HTTPException, AssertionError) as e:
                answer.append((None, None, "no answer: %r" % e))

        t = threading.Thread(target=run)
        t.start()
        return t, answer

    def stop_begun(self, held):
        """Waits until the held requests (held of them) are the requests in flight, then
        SIGTERM, and waits until the stop has begun (it then waits for the held writer)."""
        wait_begun(self.d, held, "the %d held request(s) in flight" % held)
        self.d.proc.send_signal(signal.SIGTERM)
        wait_for("the stop begun", lambda: "stopping intake" in self.d.log(), 10)
        self.assertIsNone(self.d.proc.poll())  # the stop waits for the handlers

    def release_and_exit(self, threads):
        os.unlink(self.flag)
        for t in threads:
            t.join(30)
        self.assertEqual(self.d.proc.wait(60), 0, self.d.log())
        self.d.proc = None
        vt._live.remove(self.d)

    def test_held_writes_answered(self):
        now = int(time.time() * 1000)
        b = {"from": now + 3600000, "until": now + 2 * 3600000, "note": "held at the stop"}
        maint = self.hold_writer(b)  # the writer is in the POST's statement: the writes below queue
        lp = self.in_thread(lambda: astuple(self.d.write_lp("m,device=mx v=2 2", precision="ms")))
        js = self.in_thread(lambda: req(self.d, "POST", "/v1/readings",
                                        [{"device": "mx", "ts": 3, "values": {"v": 3}}]))
        wait_for("both writes queued behind the held one", lambda: store_queue(self.d) == 2, 30)
        for t, answer in (maint, lp, js):
            self.assertTrue(t.is_alive(), answer)  # held
        self.stop_begun(3)
        self.release_and_exit([maint[0], lp[0], js[0]])
        answers = {"maintenance": maint[1][0], "/write": lp[1][0], "/v1/readings": js[1][0]}
        self.assertEqual({k: a[0] for k, a in answers.items()},
                         {"maintenance": 200, "/write": 204, "/v1/readings": 200}, answers)
        ans = maint[1][0][2]
        self.assertEqual((ans["period"]["from_ts"], ans["period"]["until_ts"]),
                         (b["from"], b["until"]))
        self.assertEqual(vt.loads(js[1][0][2])["accepted"], 1, answers)
        self.assertNotIn(self.GRACE_WARNING, self.d.log())
        self.d.start()
        self.assertEqual(self.listed(), [(b["from"], b["until"], b["note"])])
        self.assertEqual(self.stored("mx"), {1: {"v": 1}, 2: {"v": 2}, 3: {"v": 3}})
        self.d.stop()

    def test_requests_during_stop(self):
        idle = []  # keep-alive connections, one request answered on each
        for _ in range(3):
            c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=10)
            c.request("GET", "/v1/devices")
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            self.assertFalse(r.will_close)
            idle.append(c)
        now = int(time.time() * 1000)
        maint = self.hold_writer({"from": now + 3600000, "until": now + 2 * 3600000})
        self.stop_begun(1)

        c = idle[0]  # a new request on an idle keep-alive connection
        c.request("POST", "/v1/readings", body=json.dumps(
            [{"device": "mx", "ts": 4, "values": {"v": 4}}]),
            headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        self.assertEqual(r.status, 503, data)
        self.assertEqual(r.getheader("Connection", "").lower(), "close")
        self.assertEqual(r.getheader("Retry-After"), "5")
        self.assertJsonError((r.status, {k.lower(): v for k, v in r.getheaders()}, data), 503,
                             "vigild is stopping")
        self.assertTrue(r.will_close)
        c.close()
        # On InfluxDB 2's write, the same 503 in its form, which its clients read and retry.
        c = idle[2]
        c.request("POST", "/api/v2/write?org=o&bucket=b", body="m,device=mx v=5 5\n")
        r = c.getresponse()
        data = r.read()
        self.assertEqual((r.status, r.getheader("Retry-After")), (503, "5"), data)
        self.assertEqual(json.loads(data), {
            "code": "unavailable",
            "message": "vigild is stopping: request not run, retry once it is back"})
        c.close()
        with self.assertRaises(ConnectionError):  # a new connection: closed, unanswered
            vt.http_request("GET", self.d.url("/healthz"), timeout=10)

        self.release_and_exit([maint[0]])  # idle[1] still open
        self.assertEqual(maint[1][0][0], 200, maint[1])
        self.assertNotIn(self.GRACE_WARNING, self.d.log())  # idle[1] held nothing up
        idle[1].close()
        self.d.start()
        self.assertEqual(self.stored("mx"), {1: {"v": 1}})  # the 503's reading never ran
        self.d.stop()

    def test_unfinished_request_bounded(self):
        s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=30)
        s.sendall(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: 100\r\n\r\n[")  # its body never ends
        wait_begun(self.d, 1, "the unfinished request begun")  # its headers are in
        self.d.stop(timeout=30)  # exit 0
        self.assertIn("1 request(s) %s after 3000 ms" % self.GRACE_WARNING, self.d.log())
        self.assertEqual(s.recv(4096), b"")  # closed unanswered: nothing was run
        s.close()


def in_flight(d):
    """vigil_http_requests_in_flight: the requests vigild has begun (headers read) and not
    answered, the scrape reading it included."""
    v = d.metric("vigil_http_requests_in_flight")
    return None if v is None else int(v)


def wait_begun(d, n, what):
    """Waits (30 s at most) until exactly n requests besides the scrape itself are in flight.
    Only before a stop: once SIGTERM has come, a scrape is answered 503."""
    wait_for(what, lambda: in_flight(d) == n + 1, 30)


def log_time(text, needle):
    """The time (s since midnight UTC, ms resolution) of the first log line containing needle."""
    m = re.search(r"^\d{4}-\d\d-\d\dT(\d\d):(\d\d):(\d\d\.\d{3})Z .*%s" % re.escape(needle),
                  text, re.M)
    if m is None:
        raise AssertionError("no log line with %r" % needle)
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def slow_post(sock, body, auth=""):
    """Sends a /v1/readings POST's headers and the first 5 bytes of its body on sock: a request
    begun and unfinished, which holds a stop. Returns sock."""
    sock.sendall(("POST /v1/readings HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
                  "Content-Length: %d\r\n\r\n" % (auth, len(body))).encode() + body[:5])
    return sock


def slow_post_answered(tc, slow, body):
    """Sends the rest of slow_post's body: it must be answered 200, and vigild, whose stop it
    held, must then exit 0 without the grace's warning. Returns vigild's log."""
    slow.sendall(body[5:])
    answer = b""
    while b"\r\n\r\n" not in answer:
        got = slow.recv(4096)
        if not got:
            break
        answer += got
    slow.close()
    tc.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer)
    tc.assertEqual(tc.d.proc.wait(30), 0, tc.d.log())
    tc.d.proc = None
    vt._live.remove(tc.d)
    log = tc.d.log()
    tc.assertNotIn(StopAnswers.GRACE_WARNING, log)
    return log


class StopCount(Base):
    """The stop waits for the requests it has begun by a count (api/server.c, srv->inflight:
    from the access handler's first call to the completion callback). Every kind of request
    must leave it as it found it: an answer before the authentication (401), a CORS preflight,
    OPTIONS, HEAD, the early 413, a body the client abandons (its connection closed mid-body),
    an event stream ended by the client and one still open at the stop, requests run on the io
    threads (/v1/readings, /write, a query), each on fresh and on keep-alive connections; and,
    during the stop, the 503s (a POST, a HEAD, an OPTIONS on idle keep-alive connections). A
    count left too high holds every stop for the 3 s grace and logs its warning; one too low
    lets the stop close a request it has begun: a POST whose body is still arriving when
    SIGTERM comes (sent 0.5 s into the stop) must get its 200 and be stored. The stop ends
    without the grace's warning (its time, from its first log line to "stopped cleanly", is
    printed, not asserted)."""
    CONFIG = "[model]\nwarmup = 1000000\n[http]\nmax_body_bytes = 4096\ncors_origins = %s\n"
    ORIGIN = "http://dash.test"
    ADMIN = "adm1n-t0ken-CCCCCCCCCCCCCCCC"
    GRACE_WARNING = StopAnswers.GRACE_WARNING
    ROUNDS = 10

    def setUp(self):
        tokens = vt.write_file(os.path.join(vt.mkdtemp(), "tokens"), "admin %s\n" % self.ADMIN)
        os.chmod(tokens, 0o600)
        self.d = vt.Vigild(config=config_file(self.CONFIG % self.ORIGIN),
                           extra_args=["--auth-file", tokens])
        self.d.start()
        self.auth = {"Authorization": "Bearer " + self.ADMIN}

    def ask(self, c, method, path, body=None, headers=None):
        """One request on connection c; returns (status, body)."""
        h = dict(self.auth, **(headers or {}))
        if body is not None:
            h["Content-Type"] = "application/json"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, r.read()

    def auth_line(self):
        return "Authorization: Bearer %s\r\n" % self.ADMIN

    def raw(self, data):
        """A fresh connection that sends data; returns the socket."""
        s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=10)
        s.sendall(data)
        return s

    def every_kind(self, c, k):
        """One request of each kind, on the keep-alive connection c and on fresh ones."""
        auth = self.auth_line()
        ts = 1000 + k
        cases = [
            ("GET", "/v1/devices", None, {"Authorization": "Bearer wrong"}, 401),
            ("OPTIONS", "/v1/devices", None, {"Origin": self.ORIGIN,
                                              "Access-Control-Request-Method": "GET"}, 204),
            ("OPTIONS", "/v1/devices", None, None, 204),
            ("HEAD", "/v1/devices", None, None, 200),
            ("POST", "/v1/readings", json.dumps([{"device": "sc", "ts": ts, "values": {"v": k}}]),
             None, 200),
            ("GET", "/v1/devices/sc/readings?limit=5", None, None, 200),
            ("POST", "/write?db=db&precision=ms", "m,device=sc w=%d %d" % (k, ts), None, 204),
        ]
        for method, path, body, hdrs, want in cases:
            if hdrs and "Authorization" in hdrs:  # the 401 closes nothing: same connection
                c.request(method, path, headers=hdrs)
                r = c.getresponse()
                st = (r.status, r.read())
            else:
                st = self.ask(c, method, path, body, hdrs)
            self.assertEqual(st[0], want, (method, path, st))
            fresh = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=10)
            if not (hdrs and "Authorization" in hdrs):
                self.assertEqual(self.ask(fresh, method, path, body, hdrs)[0], want)
            fresh.close()
        # The early 413: answered on the headers, the body never sent.
        s = self.raw(("POST /v1/readings HTTP/1.1\r\nHost: x\r\n%sContent-Type: "
                      "application/json\r\nContent-Length: 100000\r\n\r\n" % auth).encode())
        self.assertIn(b" 413 ", s.recv(4096).split(b"\r\n")[0] + b" ")
        s.close()
        # A body the client abandons: the headers and part of the body, then the close.
        s = self.raw(("POST /v1/readings HTTP/1.1\r\nHost: x\r\n%sContent-Type: "
                      "application/json\r\nContent-Length: 100\r\n\r\n[" % auth).encode())
        wait_begun(self.d, 1, "the abandoned body's request begun")
        s.close()
        # An event stream the client ends.
        s = self.raw(("GET /v1/events HTTP/1.1\r\nHost: x\r\n%s\r\n" % auth).encode())
        self.assertIn(b" 200 ", s.recv(4096))
        s.close()

    def test_every_kind_counted_once(self):
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=10)
        for k in range(self.ROUNDS):
            self.every_kind(c, k)
        idle = []  # for the 503s during the stop
        for _ in range(3):
            i = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=10)
            self.assertEqual(self.ask(i, "GET", "/v1/devices")[0], 200)
            idle.append(i)
        stream = self.raw(("GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
                           "\r\n\r\n" % self.ADMIN).encode())
        self.assertIn(b" 200 ", stream.recv(4096))
        body = json.dumps([{"device": "sc", "ts": 99999, "values": {"v": -1}}]).encode()
        slow = slow_post(self.raw(b""), body, self.auth_line())
        wait_begun(self.d, 1, "every request above answered, the slow one begun")
        self.d.proc.send_signal(signal.SIGTERM)
        wait_for("the stop begun", lambda: "stopping intake" in self.d.log(), 10)
        st, data = self.ask(idle[0], "HEAD", "/v1/devices")
        self.assertEqual(st, 503)
        self.assertEqual(data, b"")
        self.assertEqual(self.ask(idle[1], "OPTIONS", "/v1/devices")[0], 503)
        self.assertEqual(self.ask(idle[2], "POST", "/v1/readings", json.dumps(
            [{"device": "sc", "ts": 99998, "values": {"v": -2}}]))[0], 503)
        time.sleep(0.5)
        stream.close()
        for i in idle + [c]:
            i.close()
        log = slow_post_answered(self, slow, body)
        # A count too high would hold the stop for the whole grace (3 s) and log its warning,
        # which slow_post_answered finds absent. How long the stop took is printed, not
        # asserted: a loaded machine or an ASan build stretches it without anything wrong.
        took = log_time(log, "stopped cleanly") - log_time(log, "stopping intake")
        sys.stderr.write("[stop: %.3f s from 'stopping intake' to 'stopped cleanly']\n" % took)
        self.d.start()
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=10)
        st, data = self.ask(c, "GET", "/v1/devices/sc/readings?limit=1000")
        c.close()
        pts = {p["ts"]: p["values"] for p in vt.loads(data)["points"]}
        self.assertEqual(pts.get(99999), {"v": -1.0}, pts)  # the slow POST's reading
        self.assertNotIn(99998, pts)  # the 503's never ran
        self.d.stop()

    def test_oversized_body_during_stop(self):
        """A request that begins during the stop declaring a body over http.max_body_bytes is
        answered 413 on its headers, as at any other time: its body is neither read nor
        waited for (the stop's 503 waits for the body, so the client is reading when the
        connection closes; an oversized one would hold the stop until the grace ends)."""
        idle = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=10)
        self.assertEqual(self.ask(idle, "GET", "/v1/devices")[0], 200)
        body = json.dumps([{"device": "sc", "ts": 5, "values": {"v": 5}}]).encode()
        slow = slow_post(self.raw(b""), body, self.auth_line())  # holds the stop
        wait_begun(self.d, 1, "the slow POST begun")
        self.d.proc.send_signal(signal.SIGTERM)
        wait_for("the stop begun", lambda: "stopping intake" in self.d.log(), 10)
        idle.sock.sendall(("POST /v1/readings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                           "%s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"
                           "\r\n" % self.ADMIN).encode())
        idle.sock.settimeout(1.5)  # well before the grace (3 s) would close it
        head = idle.sock.recv(4096)
        self.assertTrue(head.startswith(b"HTTP/1.1 413 "), head)
        self.assertIn(b"exceeds the limit of 4096 bytes", head + idle.sock.recv(4096))
        idle.close()
        slow_post_answered(self, slow, body)


class StopTls(Base):
    """The stop's accept policy over HTTPS (api/tls.c): libmicrohttpd applies it as it accepts,
    before the TLS handshake, so a new connection during the stop is closed before any TLS is
    spoken (the client's handshake fails), many of them hold nothing up, and a request on an
    idle keep-alive TLS connection gets the 503 (Retry-After, "Connection: close", the JSON
    error) while a POST whose body is still arriving gets its 200 and the stop then ends
    without the grace's warning."""

    def setUp(self):
        tmp = vt.mkdtemp()
        cert, key = openssl_cert(tmp)
        self.ctx = ssl.create_default_context(cafile=cert)
        self.d = TlsVigild(cert, config=config_file(
            "[model]\nwarmup = 1000000\n[http]\ntls_cert = %s\ntls_key = %s\n" % (cert, key)))
        self.d.start()

    def conn(self):
        return http.client.HTTPSConnection("127.0.0.1", self.d.http_port, timeout=10,
                                           context=self.ctx)

    def test_refused_before_the_handshake(self):
        idle = self.conn()
        idle.request("GET", "/v1/devices")
        r = idle.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        body = json.dumps([{"device": "tl", "ts": 7, "values": {"v": 7}}]).encode()
        slow = slow_post(self.ctx.wrap_socket(socket.create_connection(
            ("127.0.0.1", self.d.http_port), timeout=10), server_hostname="127.0.0.1"), body)
        wait_begun(self.d, 1, "the slow POST begun")
        self.d.proc.send_signal(signal.SIGTERM)
        wait_for("the stop begun", lambda: "stopping intake" in self.d.log(), 10)
        for _ in range(20):  # new connections: closed before the handshake
            c = self.conn()
            with self.assertRaises((OSError, http.client.HTTPException)):
                c.request("GET", "/healthz")
                c.getresponse()
            c.close()
        idle.request("POST", "/v1/readings", body=body,
                     headers={"Content-Type": "application/json"})
        r = idle.getresponse()
        data = r.read()
        self.assertJsonError((r.status, {k.lower(): v for k, v in r.getheaders()}, data), 503,
                             "vigild is stopping")
        self.assertEqual(r.getheader("Retry-After"), "5")
        self.assertEqual(r.getheader("Connection", "").lower(), "close")
        idle.close()
        slow_post_answered(self, slow, body)


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library, set by CTest; not built in a TSan build) not found")
class StopSignals(Base):
    """Signals that come after the loop has ended, while the stop saves detectors and closes
    storage (daemon/stop.c, teardown): a second SIGTERM, a SIGINT and a SIGHUP neither end
    vigild there nor disturb the stop, which still exits 0 with "stopped cleanly". The stop is
    held in the detectors' save (tests/fault/failmaint.c with VIGIL_FAILMAINT_SQL naming that
    statement), so the signals are sure to come then. Before, the loop's signal handles were
    closed as the loop ended and libuv restored the default actions: a SIGHUP there ended
    vigild unflushed, and a SIGTERM in the moment between libuv's restore and vigild's
    SIG_IGN did too (CI saw it: test_faults' test_write_held_at_stop exited -15)."""
    CONFIG = "[model]\nwarmup = 1000000\n"  # the pipeline knows the device; nothing trains

    def setUp(self):
        self.flag = os.path.join(vt.mkdtemp(), "hold")
        self.d = vt.Vigild(config=config_file(self.CONFIG), prefix=[
            "env", "LD_PRELOAD=" + vt.preload(FAILMAINT), "VIGIL_FAILMAINT_FLAG=" + self.flag,
            "VIGIL_FAILMAINT_SQL=INSERT INTO detectors("])
        self.d.start()

    def test_signals_while_saving(self):
        self.assertEqual(req(self.d, "POST", "/v1/readings",
                             [{"device": "sg", "ts": 1, "values": {"v": 1}}])[0], 200)
        vt.write_file_atomic(self.flag, "hold")
        proc = self.d.proc
        proc.send_signal(signal.SIGTERM)
        wait_held(self.flag)  # the stop is in the detectors' save: the loop has ended
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            proc.send_signal(sig)
            time.sleep(0.1)
            self.assertIsNone(proc.poll(), "vigild ended on signal %d during the stop\n%s"
                              % (sig, self.d.log()))
        os.unlink(self.flag)
        rc = proc.wait(30)
        self.assertEqual(rc, 0, self.d.log())
        self.assertIn("stopped cleanly", self.d.log())
        self.d.proc = None
        vt._live.remove(self.d)
        self.d.start()  # the device's detector was saved: restored
        self.assertIn("1 detectors restored", self.d.log())
        self.d.stop()


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library, set by CTest; not built in a TSan build) not found")
class StopFailBase(Base):
    """StopFail's and StopFailBlocks' vigild: under tests/fault/failmaint.c's library, failing
    the statements FAILING begins with while the flag file exists."""
    CONFIG = "[model]\nwarmup = 1000000\n"  # the pipeline knows the device; nothing trains

    def setUp(self):
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        self.d = vt.Vigild(config=config_file(self.CONFIG), prefix=[
            "env", "LD_PRELOAD=" + vt.preload(FAILMAINT), "VIGIL_FAILMAINT_FLAG=" + self.flag,
            "VIGIL_FAILMAINT_SQL=" + "|".join(self.FAILING)])
        self.d.start()

    def log_text(self):
        """The whole vigild log (Vigild.log shortens a long one)."""
        with open(self.d.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def start(self):
        """Starts vigild again; returns its log of this start."""
        before = len(self.log_text())
        self.d.start()
        return self.log_text()[before:]

    def sigterm(self):
        """SIGTERM; returns vigild's exit status and its log of the stop."""
        before = len(self.log_text())
        proc = self.d.proc
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        self.d.proc = None
        vt._live.remove(self.d)
        return rc, self.log_text()[before:]

    def post(self, devices, ts):
        """POSTs one reading (v = ts) of each of devices at ts; each answered 200."""
        for dev in devices:
            self.assertEqual(req(self.d, "POST", "/v1/readings",
                                 [{"device": dev, "ts": ts, "values": {"v": ts}}])[0], 200)


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library, set by CTest; not built in a TSan build) not found")
class StopFail(StopFailBase):
    """A stop that could not save what it must says so and exits 1 (daemon/stop.c, teardown;
    docs/reliability.md "stopfail"), so systemd records a failed stop. The detectors' save at
    the stop fails (tests/fault/failmaint.c fails "INSERT INTO detectors(" while its flag file
    exists, as a full or failing disk would, and the prediction blocks' writes: FAILING):
    vigild exits 1 with one error line naming the
    detectors whose state was lost, and never "stopped cleanly". Before, it logged the failed
    write, then "storage: writes succeed again" (the stop's flush, which wrote nothing) and
    "stopped cleanly", and exited 0. The same vigild stopped without the fault exits 0 with
    "stopped cleanly", and the state saved then is restored after the failed stop."""
    # Every write the stop makes fails (the detectors' saves, the prediction blocks the pipeline
    # hands over as it ends), and the readings' in test_failing_disk_at_stop: so a "writes
    # succeed again" at the stop can only come from a transaction that wrote nothing (a flush).
    FAILING = ("INSERT INTO detectors(", "INSERT INTO preds(", "DELETE FROM preds ",
               "INSERT INTO readings_log(")

    def test_failed_saves_exit_1(self):
        self.post(("fa", "fb"), 1)
        # A clean stop first: exit 0, "stopped cleanly", both detectors saved.
        rc, log = self.sigterm()
        self.assertEqual(rc, 0, self.d.log())
        self.assertIn("stopped cleanly", log)
        self.assertNotIn("stopped, but", log)
        self.assertIn("2 detectors restored", self.start())
        self.post(("fa",), 2)
        vt.write_file_atomic(self.flag, "fail")
        rc, log = self.sigterm()
        self.assertEqual(rc, 1, self.d.log())
        self.assertNotIn("stopped cleanly", log)
        self.assertNotIn("writes succeed again", log)  # nothing was written after the failure
        lines = [ln for ln in log.splitlines() if "stopped, but" in ln]
        self.assertEqual(len(lines), 1, log)
        self.assertIn("stopped, but 2 detectors' state could not be saved: I/O error; they "
                      "start from their last saved state next time", lines[0])
        # The writer's line names the injected failure (SQLite's words for SQLITE_IOERR), not
        # the connection's "not an error" (the step failed without running: nothing recorded).
        self.assertIn("disk I/O error", log)
        self.assertNotIn("not an error", log)
        # Their last saved state (the clean stop's) is what the next start restores.
        os.unlink(self.flag)
        self.assertIn("2 detectors restored", self.start())
        self.d.stop()

    def test_failing_disk_at_stop(self):
        """The disk fails while vigild runs (a reading's write fails, answered 5xx) and is still
        failing at the stop: the stop's first flush, a transaction that writes nothing, is no
        sign of a recovered disk (it logged "storage: writes succeed again"), and the saves
        that then fail make the stop exit 1."""
        self.assertEqual(req(self.d, "POST", "/v1/readings",
                             [{"device": "fc", "ts": 1, "values": {"v": 1}}])[0], 200)
        vt.write_file_atomic(self.flag, "fail")
        self.assertGreaterEqual(req(self.d, "POST", "/v1/readings",
                                    [{"device": "fc", "ts": 2, "values": {"v": 2}}])[0], 500)
        rc, log = self.sigterm()
        self.assertEqual(rc, 1, self.d.log())
        self.assertNotIn("writes succeed again", log)
        self.assertNotIn("stopped cleanly", log)
        self.assertIn("stopped, but 1 detector's state could not be saved: I/O error", log)


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library, set by CTest; not built in a TSan build) not found")
class StopFailBlocks(StopFailBase):
    """Only the prediction blocks' writes fail at the stop (FAILING; task leftovers2): the
    detectors' saves are committed before the pipeline hands its last blocks over, in a
    transaction of their own, so they are saved (their saved_ms moves on) and the stop's one
    error line names what was lost, the pipeline's last writes, not detectors' state; exit 1.
    Before, the blocks shared the saves' transaction and its failure lost both, and the stop's
    count of lost detectors was the store's count of every failed put (blocks included, bounded
    by the saves queued), so a failed transaction of blocks alone would also have been counted
    as lost detectors."""
    FAILING = ("INSERT INTO preds(", "DELETE FROM preds ")

    def saved_ms(self):
        db = sqlite3.connect(os.path.join(self.d.data_dir, "vigil.db"))
        try:
            return dict(db.execute("SELECT d.name, s.saved_ms FROM detectors s"
                                   " JOIN devices d ON d.id = s.device_id").fetchall())
        finally:
            db.close()

    def test_failed_blocks_not_detectors(self):
        self.post(("fa", "fb"), 1)
        rc, log = self.sigterm()
        self.assertEqual(rc, 0, self.d.log())
        saved = self.saved_ms()
        self.assertEqual(sorted(saved), ["fa", "fb"])
        self.start()
        self.post(("fa", "fb"), 2)
        vt.write_file_atomic(self.flag, "fail")
        rc, log = self.sigterm()
        self.assertEqual(rc, 1, self.d.log())
        lines = [ln for ln in log.splitlines() if "stopped, but" in ln]
        self.assertEqual(len(lines), 1, log)
        self.assertNotIn("detector", lines[0])  # before: "stopped, but 2 detectors' state ..."
        self.assertRegex(lines[0], r"stopped, but \d+ of the pipeline's last writes \(prediction "
                         r"blocks, events, arrivals\) (was|were) lost: I/O error")
        now = self.saved_ms()
        for dev in ("fa", "fb"):
            self.assertGreater(now[dev], saved[dev], dev)  # before: lost with the blocks
        self.assertIn("disk I/O error", log)  # the writer's line, naming the blocks' statement
        os.unlink(self.flag)
        self.assertIn("2 detectors restored", self.start())
        self.d.stop()


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library, set by CTest; not built in a TSan build) not found")
class StopFailTraining(StopFailBase):
    """A training still running at the stop, whose detector's save fails (task leftovers3): the
    stop's line counts the device once, as a detector whose state was lost, and names no other
    loss. The training is held in its window's read (tests/fault/failmaint.c holds "SELECT idx,
    name FROM channels" while the file self.hold exists) across SIGTERM, with the detectors'
    saves failing, then let go. Before, the stop saved the detectors while the training ran
    (the device counted as one lost detector) and the training's own failed save, committed
    after, was counted as one of "the pipeline's last writes (prediction blocks, events)":
    "stopped, but 1 detector's state could not be saved: ...; 3 of the pipeline's last writes
    (prediction blocks, events) were lost" (the training's save and the two other puts its failed
    transaction held). Now the stop waits for the training first and its saves, one a device,
    are what the count holds."""
    CONFIG = "[model]\nwarmup = 50\nkind = linear\nretrain_every = 0\n"
    FAILING = ("INSERT INTO detectors(",)

    def setUp(self):
        tmp = vt.mkdtemp()
        self.flag = os.path.join(tmp, "fail")
        self.hold = os.path.join(tmp, "hold")
        self.d = vt.Vigild(config=config_file(self.CONFIG), prefix=[
            "env", "LD_PRELOAD=" + vt.preload(FAILMAINT), "VIGIL_FAILMAINT_FLAG=" + self.flag,
            "VIGIL_FAILMAINT_SQL=" + "|".join(self.FAILING),
            "VIGIL_FAILMAINT_HOLD_SQL=SELECT idx, name FROM channels",
            "VIGIL_FAILMAINT_HOLD_FLAG=" + self.hold])
        self.d.start()

    def test_training_at_stop_counted_once(self):
        vt.write_file_atomic(self.hold, "")
        rows = [{"device": "fa", "ts": k, "values": {"v": k % 7}} for k in range(1, 81)]
        self.assertEqual(req(self.d, "POST", "/v1/readings", rows)[0], 200)
        wait_held(self.flag)  # the first training reads its window: held there
        vt.write_file_atomic(self.flag, "fail")
        before = len(self.log_text())
        proc = self.d.proc
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)  # the stop runs up to the training (before: and saved meanwhile)
        self.assertIsNone(proc.poll())
        os.unlink(self.hold)  # the training goes on, applies, and its save fails
        rc = proc.wait(60)
        self.d.proc = None
        vt._live.remove(self.d)
        log = self.log_text()[before:]
        self.assertEqual(rc, 1, self.d.log())
        lines = [ln for ln in log.splitlines() if "stopped, but" in ln]
        self.assertEqual(len(lines), 1, log)
        self.assertIn("stopped, but 1 detector's state could not be saved: I/O error; they start "
                      "from their last saved state next time", lines[0])
        self.assertNotIn("last writes", lines[0])  # before: "; 1 of the pipeline's last writes"
        os.unlink(self.flag)


if __name__ == "__main__":
    vt.main()

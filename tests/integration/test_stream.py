#!/usr/bin/python3
"""vigild integration: the line-protocol stream socket with a raw TCP client: acknowledgements
("ok N"), per-line errors ("error N reason") that keep the connection usable, a bounded
concurrent burst, end of input without a final newline; everything read back over HTTP; at
SIGTERM, every line read is stored and acknowledged before the connection closes (StreamStop);
--demo's feed stops first, every line it sent stored and acknowledged (DemoStop); --demo's
temperature limits, set once per data folder (DemoLimits); a second --demo run in one folder
continues the first's pumps (DemoRerun); --demo without its feed (the stream off, no vigil-sim
beside vigild) stops the start, naming why (DemoWithoutFeed)."""

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)

# Epoch ms of 2023-11-14: the stream's nanoseconds are refused before 1973 (session 67), so the
# tests' small times ride on it (T0 + k ms is (T0 + k) * 10**6 on the wire).
T0 = 1700000000000


class Stream(vt.DaemonTestCase):

    def test_lines_acks_and_errors(self):
        c = self.d.stream_connect()
        try:
            lines = [
                "m,device=st-1 a=1.5,b=2i 1700000000000000000",   # 1
                "m,device=st-1 a= 1700000001000000000",            # 2 bad
                "# comment",                                       # 3
                "",                                                # 4
                "m,device=st-1 a=0.1 1700000002000000000",        # 5
                "m,device=st-1 a=NaN 1700000003000000000",        # 6 bad
                "m,device=st-1 a=-0.0,c=true 1700000004000000000",  # 7
                "not line protocol",                               # 8 bad
                "m,device=st-1 a=1e-300 1700000005000000000\r",   # 9 (CRLF)
            ]
            c.send("".join(l + "\n" for l in lines))
            got = c.wait_ok(9)
            errs = vt.errors_of(got)
            self.assertEqual(sorted(errs), [2, 6, 8], got)
            for r in got:
                self.assertRegex(r, r"^(ok \d+|error \d+ .+)$")
            # Every error is reported before the ok that covers its line.
            ok_at = next(i for i, r in enumerate(got) if r == "ok 9")
            for i, r in enumerate(got):
                if r.startswith("error "):
                    self.assertLess(i, ok_at, got)
            oks = [int(r.split()[1]) for r in got if r.startswith("ok ")]
            self.assertEqual(oks, sorted(oks), got)
            # The connection is still usable after the errors; numbering continues.
            c.send("m,device=st-1 a=42 1700000006000000000\n")
            got2 = c.wait_ok(10)
            self.assertEqual(vt.errors_of(got2), {}, got2)
            c.send("m,device=st-1 a=\n")
            got3 = c.wait_ok(11)
            self.assertEqual(sorted(vt.errors_of(got3)), [11], got3)
            self.assertEqual(c.finish(), [])
        finally:
            c.close()
        self.assertPoints(self.d.readings("st-1"), [
            (1700000000000, {"a": 1.5, "b": 2.0}),
            (1700000002000, {"a": 0.1}),
            (1700000004000, {"a": -0.0, "c": 1.0}),
            (1700000005000, {"a": 1e-300}),
            (1700000006000, {"a": 42.0}),
        ])

    def test_series_key_device_and_escapes(self):
        c = self.d.stream_connect()
        try:
            c.send("cpu,region=b,host=a usage=0.5 1700000001000000000\n"
                   "m,device=st\\ 2\\,x v\\ 1=123456789.123456789 1700000002000000000\n")
            c.wait_ok(2)
        finally:
            c.close()
        self.assertPoints(self.d.readings("cpu,host=a,region=b"),
                          [(1700000001000, {"usage": 0.5})])
        self.assertPoints(self.d.readings("st 2,x"),
                          [(1700000002000, {"v 1": 123456789.123456789})])

    def test_no_trailing_newline(self):
        c = self.d.stream_connect()
        try:
            c.send("m,device=st-3 a=1 1700000000001000000\nm,device=st-3 a=2 1700000000002000000")
            rest = c.finish()
        finally:
            c.close()
        # Session 67: a last line without its newline was cut by the client's end, not stored
        # (it was, as a whole line; test_streamread.py's CutLine).
        self.assertEqual(vt.errors_of(rest), {2: "line not ended by a newline: not stored"})
        self.assertEqual(vt.last_ok(rest), 2, rest)
        self.assertPoints(self.d.readings("st-3"), [(1700000000001, {"a": 1.0})])

    def test_bad_last_line_without_newline(self):
        c = self.d.stream_connect()
        try:
            c.send("m,device=st-4 a=1 1700000000001000000\nm,device=st-4 a=")
            rest = c.finish()
        finally:
            c.close()
        self.assertEqual(sorted(vt.errors_of(rest)), [2], rest)
        self.assertEqual(vt.last_ok(rest), 2, rest)
        self.assertPoints(self.d.readings("st-4"), [(1700000000001, {"a": 1.0})])

    def test_newline_in_string_ends_the_line(self):
        # README: on the stream a newline always ends a line, even in a quoted string field
        # (on /write it may be part of the string): both halves are errors, nothing is stored,
        # and the numbering goes on by newlines.
        c = self.d.stream_connect()
        try:
            c.send('m,device=st-nl s="two\nlines",a=1 1700000000001000000\n'
                   'm,device=st-nl a=2 1700000000002000000\n')
            got = c.wait_ok(3)
            self.assertEqual(c.finish(), [])
        finally:
            c.close()
        self.assertEqual(vt.errors_of(got), {1: "unbalanced quotes", 2: "invalid field format"},
                         got)
        self.assertPoints(self.d.readings("st-nl"), [(1700000000002, {"a": 2.0})])

    def test_overwrite(self):
        c = self.d.stream_connect()
        try:
            c.send("m,device=st-5 a=1,b=2 1700000000001000000\n")
            c.wait_ok(1)
            c.send("m,device=st-5 a=3 1700000000001000000\n")
            c.wait_ok(2)
        finally:
            c.close()
        self.assertPoints(self.d.readings("st-5"), [(1700000000001, {"a": 3.0, "b": 2.0})])
        self.assertEqual(self.d.device("st-5")["points"], 1)

    def test_long_line(self):
        # Longer than stream.max_line_bytes (65536 by default): reported, connection kept.
        c = self.d.stream_connect()
        try:
            c.send("m,device=st-6 a=1 1700000000001000000\n")
            c.send("m,device=st-6 " + ",".join("f%d=1" % i for i in range(12000))
                   + " 1700000000002000000\n")
            c.send("m,device=st-6 a=3 1700000000003000000\n")
            got = c.wait_ok(3)
        finally:
            c.close()
        self.assertEqual(sorted(vt.errors_of(got)), [2], got)
        self.assertPoints(self.d.readings("st-6"), [(1700000000001, {"a": 1.0}),
                                                   (1700000000003, {"a": 3.0})])

    def test_burst_concurrent(self):
        conns, per_conn = 4, 50000
        t0 = 1600000000000
        results = [None] * conns
        errors = []

        def run(k):
            try:
                c = self.d.stream_connect(timeout=120)
                got = []
                reader_done = threading.Event()

                def reader():
                    try:
                        while True:
                            line = c.read_line()
                            if line is None:
                                break
                            got.append(line)
                    except OSError as e:
                        errors.append("conn %d read: %r" % (k, e))
                    reader_done.set()

                th = threading.Thread(target=reader)
                th.start()
                chunk = []
                for i in range(per_conn):
                    chunk.append("burst,device=st-burst-%d v=%d.5,w=%di %d\n"
                                 % (k, i, k, (t0 + i) * 1000000))
                    if len(chunk) == 5000:
                        c.send("".join(chunk))
                        chunk = []
                if chunk:
                    c.send("".join(chunk))
                c.sock.shutdown(socket.SHUT_WR)
                th.join(120)
                c.close()
                results[k] = got
            except Exception as e:  # reported by the main thread
                errors.append("conn %d: %r" % (k, e))

        start = time.monotonic()
        threads = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        elapsed = time.monotonic() - start
        self.assertEqual(errors, [])
        for k in range(conns):
            got = results[k]
            self.assertIsNotNone(got, "connection %d did not finish" % k)
            self.assertEqual(vt.errors_of(got), {}, got[:10])
            self.assertFalse([r for r in got if r.startswith("fail")], got[:10])
            self.assertEqual(vt.last_ok(got), per_conn, got[-5:])
        for k in range(conns):
            dev = "st-burst-%d" % k
            self.assertEqual(self.d.device(dev)["points"], per_conn)
            pts = self.d.readings(dev, limit=per_conn)
            self.assertEqual(len(pts), per_conn)
            for i, p in enumerate(pts):
                if p["ts"] != t0 + i or p["values"] != {"v": i + 0.5, "w": float(k)}:
                    self.fail("conn %d point %d: %r" % (k, i, p))
        sys.stderr.write("[burst: %d lines over %d connections in %.1fs]\n"
                         % (conns * per_conn, conns, elapsed))


class StreamLimits(vt.DaemonTestCase):
    CONFIG = """
[stream]
max_connections = 2
max_line_bytes = 256
"""

    def test_max_connections(self):
        a, b = self.d.stream_connect(), self.d.stream_connect()
        try:
            for k, c in enumerate((a, b)):
                c.send("m,device=sl-1 v%d=1 1700000000001000000\n" % k)
                c.wait_ok(1)
            third = self.d.stream_connect()
            try:
                rest = third.finish()  # sends nothing: reads the refusal, then EOF
            finally:
                third.close()
            self.assertTrue(rest and rest[0].startswith("error 0 ") and "connections" in rest[0],
                            rest)
            self.assertNotIn("ok 1", rest)
        finally:
            a.close()
            b.close()
        # The refused connection stored nothing; a slot frees once a connection closes.
        self.assertEqual(sorted(self.d.device("sl-1")["channels"]), ["v0", "v1"])
        deadline = time.monotonic() + 10
        while True:
            c = self.d.stream_connect()
            try:
                c.send("m,device=sl-1 v2=1 1700000000001000000\n")
                got = c.finish()
            finally:
                c.close()
            if "ok 1" in got or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertIn("ok 1", got)

    def test_max_line_bytes(self):
        ok_line = "m,device=sl-2 v=1 1700000000001000000"
        long_line = ("m,device=sl-2 " + ",".join("f%03d=1" % i for i in range(60))
                     + " 1700000000002000000")
        self.assertGreater(len(long_line), 256)
        c = self.d.stream_connect()
        try:
            c.send(ok_line + "\n" + long_line + "\n" + "m,device=sl-2 v=3 1700000000003000000\n")
            got = c.wait_ok(3)
        finally:
            c.close()
        errs = vt.errors_of(got)
        self.assertEqual(sorted(errs), [2], got)
        # Explore (session 41): a long line that came whole with its newline was "line too
        # long", one that outgrew the buffer first "line longer than 256 bytes": one wording,
        # naming the bound, for both.
        self.assertEqual(errs[2], "line longer than 256 bytes")
        # A long line arriving in pieces (longer than the buffer before its newline shows up).
        c = self.d.stream_connect()
        try:
            c.send(ok_line.replace("1700000000001000000", "1700000000004000000") + "\n"
                   + long_line[:200])
            time.sleep(0.05)
            c.send(long_line[200:] + long_line * 3)
            time.sleep(0.05)
            c.send("\nm,device=sl-2 v=5 1700000000005000000\n")
            got = c.wait_ok(3)
        finally:
            c.close()
        errs = vt.errors_of(got)
        self.assertEqual(sorted(errs), [2], got)
        self.assertEqual(errs[2], "line longer than 256 bytes")
        self.assertPoints(self.d.readings("sl-2"),
                          [(1700000000001, {"v": 1.0}), (1700000000003, {"v": 3.0}),
                           (1700000000004, {"v": 1.0}), (1700000000005, {"v": 5.0})])


    def test_long_last_line_without_newline(self):
        # The connection ends inside an overlong line: it is still reported and acknowledged.
        c = self.d.stream_connect()
        try:
            c.send("m,device=sl-3 v=1 1700000000001000000\nm,device=sl-3 " + "x" * 400)
            time.sleep(0.05)
            c.send("y" * 100)
            rest = c.finish()
        finally:
            c.close()
        self.assertEqual(sorted(vt.errors_of(rest)), [2], rest)
        self.assertEqual(vt.last_ok(rest), 2, rest)
        self.assertPoints(self.d.readings("sl-3"), [(1700000000001, {"v": 1.0})])


class StreamRefusalOrder(vt.DaemonTestCase):
    """The "error N" lines of one read go out in line order whichever check refused each line.
    The admission refuses in passes, the time window (storage.max_ahead) over every point of
    the read, then the device quota, so a later line's time refusal was answered before an
    earlier line's quota refusal (session 45: 3, 5, 6, 2 below)."""
    CONFIG = "[storage]\nmax_devices = 1\n"

    def test_time_and_quota_refusals_in_line_order(self):
        now = vt.now_ms() * 10**6
        far = 7258118400 * 10**9  # 2200-01-01: more than storage.max_ahead (1d) ahead
        lines = ["m,device=ro-1 v=1 %d" % now,
                 "m,device=ro-2 v=1 %d" % now,  # a second device: storage.max_devices
                 "m,device=ro-1 v=2 %d" % far,  # too far ahead
                 "m,device=ro-1 v=3 %d" % (now + 10**6),
                 "m,device=ro-1 v=",  # unparsable: waits for the admission of the lines before
                 "m,device=ro-3 v=1 %d" % far]  # too far ahead (and a third device)
        c = self.d.stream_connect()
        try:
            c.send("".join(line + "\n" for line in lines))  # one write: one read, one admission
            got = c.wait_ok(len(lines))
        finally:
            c.close()
        self.assertEqual([int(r.split()[1]) for r in got if r.startswith("error ")], [2, 3, 5, 6],
                         got)
        errs = vt.errors_of(got)
        self.assertIn("device limit reached", errs[2])
        self.assertIn("too far in the future", errs[3])
        self.assertIn("too far in the future", errs[6])
        self.assertEqual(got[-1], "ok 6")


class StreamBatches(vt.DaemonTestCase):
    """The stream parses what a read brings into one batch and admits it at once (device and
    channel limits): errors found by the parser and by the limits, in the middle of many good
    lines and across reads that split lines, are reported in line order under their own line
    numbers, each before the ok covering it, and every good line around them is stored."""
    CONFIG = """
[storage]
max_devices = 3
max_channels_per_device = 4
"""

    def test_bad_lines_among_many_split_across_reads(self):
        n = 3000
        bad = {
            1500: ("m,device=sb-1 a= 1", "missing field value"),       # parser
            2000: ("m,device=sb-1 c=1,d=2,e=3 %d" % ((T0 + 2000) * 10**6), "channel limit"),
            2001: ("m,device=sb-2 a=1 notatime", "bad timestamp"),    # right after a refusal
            2500: ("m,device=sb-4 a=1 %d" % ((T0 + 2500) * 10**6), "device limit"),
            2999: ("m,device=sb-3 a=NaN 1", "invalid number"),
        }
        # And refusals by the limits all along (a read admitted twice or not at all shows).
        for i in range(37, n, 97):
            bad.setdefault(i, ("m,device=sb-new-%d a=1 %d" % (i, (T0 + i) * 10**6), "device limit")
                           if i % 2 else
                           ("m,device=sb-2 x%d=1,y=2,z=3 %d" % (i % 5, (T0 + i) * 10**6),
                            "channel limit"))
        # The limits keep sb-1..3 with channels a and b: a line that would add a third is
        # refused, whichever read it arrives in.
        def good(i):
            return "m,device=sb-%d a=%d,b=%d.5 %d" % (1 + i % 3, i, i, (T0 + i) * 10**6)

        lines = [bad[i][0] if i in bad else good(i) for i in range(1, n + 1)]
        data = "".join(l + "\n" for l in lines).encode()
        c = self.d.stream_connect()
        try:
            # Pieces of odd sizes, so that reads end inside lines and inside numbers.
            at, k = 0, 0
            while at < len(data):
                step = (4093, 17, 65531, 1000, 3)[k % 5]
                c.send(data[at:at + step])
                at += step
                k += 1
                if k % 4 == 0:
                    time.sleep(0.01)
            got = c.wait_ok(n)
            got += c.finish()
        finally:
            c.close()
        self.assertFalse([r for r in got if r.startswith("fail")], got[:5])
        errs = vt.errors_of(got)
        self.assertEqual(sorted(errs), sorted(bad), [r for r in got if r.startswith("error")])
        for i, (_, reason) in bad.items():
            self.assertIn(reason, errs[i], (i, errs[i]))
        # Error lines in line order, each before the first ok that covers its line.
        err_lines = [int(r.split()[1]) for r in got if r.startswith("error ")]
        self.assertEqual(err_lines, sorted(err_lines), got)
        for i in bad:
            e_at = got.index(next(r for r in got if r.startswith("error %d " % i)))
            ok_at = next(j for j, r in enumerate(got)
                         if r.startswith("ok ") and int(r.split()[1]) >= i)
            self.assertLess(e_at, ok_at, (i, got[max(0, e_at - 3):e_at + 3]))
        self.assertEqual(vt.last_ok(got), n)
        # Every good line is stored, the bad ones are not.
        for dev in (1, 2, 3):
            want = [(T0 + i, {"a": float(i), "b": i + 0.5}) for i in range(1, n + 1)
                    if i not in bad and 1 + i % 3 == dev]
            self.assertPoints(self.d.readings("sb-%d" % dev, limit=n), want)
        self.assertEqual(sorted(self.d.device("sb-1")["channels"]), ["a", "b"])
        st, _, _ = vt.http_request("GET", self.d.url("/v1/devices/sb-4"))
        self.assertEqual(st, 404)


class SmallQueue(vt.DaemonTestCase):
    """A writer queue of 1,000 readings: HTTP answers 503 with Retry-After when it is full (never
    hangs), the stream slows down instead (backpressure), and nothing acknowledged is lost."""
    CONFIG = """
[http]
max_batch = 1000
threads = 8
[storage]
queue_max_readings = 1000
max_batch_delay_ms = 20
"""

    def test_busy_http_and_stream_backpressure(self):
        clients, rounds, per = 6, 6, 1000
        statuses = []
        errors = []
        lock = threading.Lock()

        def body(k, j):
            import json
            return json.dumps([{"device": "sq-http-%d" % k, "ts": j * per + i,
                                "values": {"v": j + i / 1024}} for i in range(per)])

        def http_client(k):
            try:
                for j in range(rounds):
                    for attempt in range(400):
                        st, hdrs, data = vt.http_request(
                            "POST", self.d.url("/v1/readings"), body=body(k, j),
                            headers={"Content-Type": "application/json"})
                        with lock:
                            statuses.append(st)
                        if st == 200:
                            break
                        if st != 503 or hdrs.get("retry-after") is None or \
                                "error" not in vt.loads(data):
                            errors.append("client %d: %d %r %r" % (k, st, hdrs, data))
                            return
                        time.sleep(0.01)
                    else:
                        errors.append("client %d: batch %d never accepted" % (k, j))
                        return
            except Exception as e:
                errors.append("client %d: %r" % (k, e))

        stream_lines = 20000
        stream_got = []

        def stream_client():
            try:
                c = self.d.stream_connect(timeout=60)
                c.send("".join("m,device=sq-stream v=%d %d\n" % (i, (T0 + i) * 10 ** 6)
                               for i in range(stream_lines)))
                stream_got.extend(c.finish())
                c.close()
            except Exception as e:
                errors.append("stream: %r" % e)

        threads = [threading.Thread(target=http_client, args=(k,)) for k in range(clients)]
        threads.append(threading.Thread(target=stream_client))
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads), "a client hung")
        self.assertEqual(errors, [])
        self.assertTrue(set(statuses) <= {200, 503}, set(statuses))
        self.assertEqual(statuses.count(200), clients * rounds)
        self.assertGreater(statuses.count(503), 0, "the queue never filled: test is too weak")
        self.assertEqual(vt.errors_of(stream_got), {})
        self.assertFalse([r for r in stream_got if r.startswith("fail")], stream_got[:5])
        self.assertEqual(vt.last_ok(stream_got), stream_lines)
        for k in range(clients):
            pts = self.d.readings("sq-http-%d" % k, limit=10000)
            self.assertEqual(len(pts), rounds * per)
            for p in pts:
                j, i = divmod(p["ts"], per)
                if p["values"] != {"v": j + i / 1024}:
                    self.fail("client %d: %r" % (k, p))
        pts = self.d.readings("sq-stream", limit=stream_lines)
        self.assertEqual([(p["ts"], p["values"]["v"]) for p in pts],
                         [(T0 + i, float(i)) for i in range(stream_lines)])
        self.assertEqual(self.d.metric('vigil_http_requests_total{route="readings",code="503"}',
                                       need=True), statuses.count(503))


class StreamStop(tp.DaemonPerTest):
    """SIGTERM while a client streams: vigild stops reading, stores and acknowledges every line
    it has read, half-closes, and discards the client's further input until the client ends its
    own or has everything vigild wrote (at most 2 s): the client reads its answers to a clean
    end of input, never a reset. Checked from both sides: the answers (the "ok"s rise, every bad
    line up to the last "ok" has its error, the last "ok" is short of what was sent: the stop
    fell mid-stream), and after a restart the device holds exactly the good lines up to the last
    "ok" (its count and newest timestamp: nothing acknowledged is missing, nothing stored went
    unacknowledged). Line k's timestamp is k ms; every other line is bad in the slow reader's
    case, whose answers then outgrow the sockets' buffers."""
    CONFIG = "[model]\nenabled = false\n"
    LINES = 300000

    def data(self, dev, bad):
        return "".join("bad line %d\n" % k if bad and k % 2 == 0 else
                       "st,device=%s v=%d %d\n" % (dev, k, (T0 + k) * 10 ** 6)
                       for k in range(1, self.LINES + 1)).encode()

    def connect(self, rcvbuf=None):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.connect(("127.0.0.1", self.d.stream_port))
        s.setblocking(False)
        return s

    def sigterm(self):
        self.d.proc.send_signal(signal.SIGTERM)
        self.t_stop = time.monotonic()

    def recv(self, s, got):
        """The next bytes of answers (b"": vigild's end of output); a reset fails the test."""
        try:
            return s.recv(65536)
        except ConnectionResetError as e:
            self.fail("the connection was reset after %d bytes of answers: %r" % (len(got), e))

    def read_to_end(self, s):
        """Reads the answers to vigild's end of output."""
        s.setblocking(True)
        s.settimeout(30)
        got = b""
        while True:
            b = self.recv(s, got)
            if not b:
                return got.decode().split("\n")[:-1]
            got += b

    def stopped(self):
        """vigild's exit after the SIGTERM: clean, within the shutdown's bound."""
        rc = self.d.proc.wait(30)
        self.assertEqual(rc, 0, self.d.log())
        self.d.proc = None
        vt._live.remove(self.d)

    def check(self, dev, answers, sent, bad):
        oks = [int(a.split()[1]) for a in answers if a.startswith("ok ")]
        self.assertTrue(oks, answers[:5])
        self.assertEqual(oks, sorted(set(oks)), "the oks do not rise")
        last = oks[-1]
        sent_lines = sent.count(b"\n")
        self.assertLess(last, sent_lines, "nothing was left unread at the stop: test is too weak")
        self.assertEqual([a for a in answers if not a.startswith(("ok ", "error "))], [])
        errs = sorted(vt.errors_of(answers))
        self.assertEqual(errs, [k for k in range(1, last + 1) if k % 2 == 0] if bad else [])
        good = [k for k in range(1, last + 1) if not (bad and k % 2 == 0)]
        self.d.start()
        doc = self.d.device(dev)
        self.assertEqual((doc["points"], doc["last_ts"]), (len(good), T0 + good[-1]))
        self.d.stop()
        sys.stderr.write("[%s: %d lines sent, %d before the SIGTERM, last ok %d; answers read and "
                         "vigild exited %.2f s after the SIGTERM]\n"
                         % (dev, sent_lines, self.stop_line, last, self.t_exit - self.t_stop))

    def test_stop_while_streaming(self):
        """A client that sends and reads at once; the SIGTERM once 1,000 lines are
        acknowledged. It sends on until vigild's end of output (or a refused send)."""
        data, sent, got = self.data("stop-a", False), 0, b""
        s = self.connect()
        self.t_stop = None
        try:
            while True:
                w = [s] if sent < len(data) else []
                r, w, _ = select.select([s], w, [], 10)
                self.assertTrue(r or w, "no progress for 10 s")
                if w:
                    try:
                        sent += s.send(data[sent:sent + 65536])
                    except OSError:
                        data = data[:sent]  # refused: vigild has closed; read the rest
                if r:
                    b = self.recv(s, got)
                    if not b:
                        break
                    got += b
                if self.t_stop is None and vt.last_ok(got.decode().split("\n")[:-1]) >= 1000:
                    self.stop_line = sent and data[:sent].count(b"\n")
                    self.sigterm()
        finally:
            s.close()
        self.stopped()
        self.t_exit = time.monotonic()
        self.check("stop-a", got.decode().split("\n")[:-1], data[:sent], False)

    def test_stop_with_slow_reader(self):
        """A client that does not read its answers while it sends (a small receive buffer; every
        other line bad, so the answers fill the buffers between): vigild stops reading its input
        for lack of room for answers. SIGTERM; the client goes on sending (the rest of its lines, for at most 0.5 s), then
        reads.
        Before conn_linger the close reset the connection and the client lost every "ok"."""
        data, sent = self.data("stop-b", True), 0
        s = self.connect(rcvbuf=4096)
        try:
            deadline = time.monotonic() + 3
            while sent < len(data) // 2 and time.monotonic() < deadline:
                try:
                    sent += s.send(data[sent:sent + 65536])
                except BlockingIOError:
                    time.sleep(0.01)
            self.stop_line = data[:sent].count(b"\n")
            self.sigterm()
            until = time.monotonic() + 0.5
            while time.monotonic() < until and sent < len(data):
                try:
                    sent += s.send(data[sent:sent + 65536])
                except BlockingIOError:
                    time.sleep(0.01)
                except OSError:
                    break
            answers = self.read_to_end(s)
        finally:
            s.close()
        self.stopped()
        self.t_exit = time.monotonic()
        self.check("stop-b", answers, data[:sent], True)


class DemoStop(unittest.TestCase):
    """vigild --demo stopped as a user stops it: Ctrl-C (SIGINT to the foreground process
    group: vigild and vigil-sim both get it) or a signal to vigild alone. The feed stops
    sending, and everything it sent is stored and acknowledged before vigild closes the stream:
    the sim's own final report says 0 unacknowledged readings, and after a restart the four
    pumps hold exactly the lines it says it sent. The stop comes in the live phase (after the
    900 s of backfill per pump), where the sim sends a step a second; before the fix vigild
    closed the stream right after telling the sim to stop, and a signal to vigild alone left
    the sim's last step (4 lines, errors=24) unread every time."""

    PUMPS = ["pump-%d" % i for i in range(1, 5)]
    DONE = re.compile(r"vigil-sim: done mode=stream lines_sent=(\d+) readings_sent=(\d+) "
                      r"readings_acked=(\d+) errors=(\d+) ")

    def run_demo(self, stop):
        # Its own process group, so a signal to the group reaches vigild and its feed only.
        d = vt.Vigild(extra_args=["--demo"], preexec_fn=os.setpgrp)
        d.start()
        try:
            # Live: every pump past its backfill by a few steps.
            deadline = time.monotonic() + 60
            while min(self.points(d, p) for p in self.PUMPS) < 903:
                self.assertLess(time.monotonic(), deadline, "the demo feed is not live\n" + d.log())
                time.sleep(0.2)
            stop(d.proc)
            t_stop = time.monotonic()
            rc = d.proc.wait(30)
            took = time.monotonic() - t_stop
            d.proc = None
            vt._live.remove(d)
            self.assertEqual(rc, 0, d.log())
            d.check_sanitizers()
            done = self.DONE.findall(d.log())
            self.assertEqual(len(done), 1, "no final report of vigil-sim\n" + d.log())
            lines, readings, acked, errors = map(int, done[0])
            self.assertEqual((errors, acked), (0, readings), d.log())
            self.assertGreaterEqual(lines, 4 * 903)  # stopped in the live phase
            # Everything the sim sent is stored: the pumps' points after a restart.
            d.extra_args = []
            d.start()
            stored = sum(d.device(p)["points"] for p in self.PUMPS)
            d.stop()
            self.assertEqual(stored, lines)
            sys.stderr.write("[%s: %d lines sent, all acknowledged and stored; vigild exited %.2f "
                             "s after the signal]\n" % (self.id().split(".")[-1], lines, took))
        finally:
            d.cleanup()

    @staticmethod
    def points(d, dev):
        """The device's stored points; 0 before its first."""
        st, _, body = d.get("/v1/devices/" + dev)
        return vt.loads(body)["points"] if st == 200 else 0

    def test_ctrl_c_to_the_group(self):
        self.run_demo(lambda proc: os.killpg(proc.pid, signal.SIGINT))

    def test_sigint_to_vigild_alone(self):
        self.run_demo(lambda proc: proc.send_signal(signal.SIGINT))

    def test_sigterm_to_vigild_alone(self):
        self.run_demo(lambda proc: proc.send_signal(signal.SIGTERM))

    def test_feed_that_does_not_exit(self):
        """A feed that does not stop (SIGSTOPped here) holds the stop no longer than the wait's
        bound (2 s) and the stream's linger (at most 2 s more): vigild goes on stopping,
        kills it and exits 0."""
        d = vt.Vigild(extra_args=["--demo"])
        d.start()
        try:
            deadline = time.monotonic() + 60
            while self.points(d, "pump-1") == 0:
                self.assertLess(time.monotonic(), deadline, "no readings from the feed")
                time.sleep(0.2)
            with open("/proc/%d/task/%d/children" % (d.proc.pid, d.proc.pid)) as f:
                sim = int(f.read().split()[0])
            os.kill(sim, signal.SIGSTOP)
            t_stop = time.monotonic()
            d.stop(timeout=30)
            took = time.monotonic() - t_stop
            self.assertIn("vigil-sim has not exited 2000 ms after SIGTERM", d.log())
            self.assertLess(took, 10, d.log())
            sys.stderr.write("[a stopped feed: vigild exited %.2f s after SIGTERM]\n" % took)
        finally:
            d.cleanup()



class DemoLimits(unittest.TestCase):
    """--demo gives the pumps new to the data folder a temperature limit ({"max": 90,
    "deadband": 2}), set once: a restart on the same folder keeps what a user PUT since (other
    attributes, another limit). With storage.max_devices below 4, the pumps beyond it get none,
    logged as the device quota (not as a temperature limit exceeded); the others keep theirs."""

    PUMPS = DemoStop.PUMPS
    LIMIT = {"limits": {"temp": {"max": 90, "deadband": 2}}}

    def wait_pumps(self, d, pumps):
        deadline = time.monotonic() + 60
        while min(DemoStop.points(d, p) for p in pumps) == 0:
            self.assertLess(time.monotonic(), deadline, "no readings from the feed\n" + d.log())
            time.sleep(0.2)

    def put(self, d, dev, attrs):
        r = d.curl("PUT", "/v1/devices/" + dev, "-H", "Content-Type: application/json",
                   "--data-binary", json.dumps(attrs))
        self.assertEqual(r.status, 200, r)

    def test_set_once_and_kept_across_a_restart(self):
        d = vt.Vigild(extra_args=["--demo"])
        d.start()
        try:
            self.wait_pumps(d, self.PUMPS)
            for p in self.PUMPS:
                self.assertEqual(d.device(p)["attrs"], self.LIMIT, p)
            self.put(d, "pump-1", {"site": "north"})
            self.put(d, "pump-2", {"limits": {"temp": {"max": 95}}})
            d.stop()
            d.start()
            self.wait_pumps(d, self.PUMPS)
            self.assertEqual(d.device("pump-1")["attrs"], {"site": "north"})
            self.assertEqual(d.device("pump-2")["attrs"], {"limits": {"temp": {"max": 95}}})
            self.assertEqual(d.device("pump-3")["attrs"], self.LIMIT)
            d.stop()
        finally:
            d.cleanup()

    def test_device_quota(self):
        conf = vt.write_file(os.path.join(vt.mkdtemp(), "vigild.conf"),
                             "[storage]\nmax_devices = 2\n")
        d = vt.Vigild(config=conf, extra_args=["--demo"])
        d.start()
        try:
            self.wait_pumps(d, self.PUMPS[:2])
            for p in self.PUMPS[:2]:
                self.assertEqual(d.device(p)["attrs"], self.LIMIT, p)
            for p in self.PUMPS[2:]:
                self.assertIn("demo: %s gets no temperature limit: device limit reached "
                              "(storage.max_devices)" % p, d.log())
            d.stop()
        finally:
            d.cleanup()


class DemoRerun(unittest.TestCase):
    """A second --demo run in one data folder, within the 15 minutes of history of the first,
    continues the stored pumps: its history starts a second after their newest reading, so
    every reading it sends is scored (none older than its pump's newest), and the first run's
    readings are not interleaved with a second series. On main the second run sent its 15 minutes again
    over the end of the first run's: 896 of them per pump stored between the first run's
    readings (flow alternating 67 and 108 every half second) and counted in
    readings_not_scored_out_of_order, so this test failed there on that count."""

    PUMPS = DemoStop.PUMPS

    def test_second_run_continues_the_first(self):
        d = vt.Vigild(extra_args=["--demo"])
        d.start()
        try:
            deadline = time.monotonic() + 60
            while min(DemoStop.points(d, p) for p in self.PUMPS) < 903:
                self.assertLess(time.monotonic(), deadline, "the demo feed is not live\n" + d.log())
                time.sleep(0.2)
            d.stop()
            d.extra_args = []  # the first run's newest readings, read without a feed
            d.start()
            newest = {p: d.device(p)["last_ts"] for p in self.PUMPS}
            d.stop()
            d.extra_args = ["--demo"]
            d.start()  # the same data folder
            # Scored past the first run's newest by 3 live steps: on main, after the history
            # (sent first, before the live steps) was scored or counted out of order.
            deadline = time.monotonic() + 60
            while True:
                st = {p: d.get_json("/v1/devices/%s/status" % p) for p in self.PUMPS}
                if all((st[p]["last_ts"] or 0) >= newest[p] + 3000 for p in self.PUMPS):
                    break
                self.assertLess(time.monotonic(), deadline, "no live readings\n" + d.log())
                time.sleep(0.2)
            # The counts below are of the feed's stamps (its simulated clock steps 1000 ms
            # exactly, backfill and live alike, and a slow feed falls behind without skipping a
            # step), so a slow or loaded machine does not change them; only the waits above
            # depend on its speed, each bounded by its deadline.
            for p in self.PUMPS:
                self.assertEqual(st[p]["readings_not_scored_out_of_order"], 0, (p, d.log()))
                # The first run's last 30 s hold its readings alone, one a second.
                pts = d.readings(p, **{"from": newest[p] - 30000, "to": newest[p] + 1,
                                       "channels": "flow"})
                self.assertEqual(len(pts), 31, (p, [q["ts"] for q in pts]))
                # The second run's first reading is a second (the feed's interval) after them.
                pts = d.readings(p, **{"from": newest[p] + 1, "to": newest[p] + 2001,
                                       "channels": "flow"})
                self.assertEqual([q["ts"] - newest[p] for q in pts], [1000, 2000], p)
            self.assertIn("demo: vigil-sim feeds 4 simulated pumps, continuing the stored ones "
                          "from a second after their newest reading", d.log())
            # The folder to remove is the one in use (session 68: it said ./vigil-data).
            self.assertIn("(remove %s for a fresh demo)" % os.path.abspath(d.data_dir), d.log())
            d.stop()
        finally:
            d.cleanup()


    def test_newest_ahead_of_the_clock_is_not_continued(self):
        """A stored pump whose newest reading is ahead of the clock (the clock stepped back
        since the first run) is not continued: the readings would be stamped as far ahead (from
        a day ahead, every one refused). The feed starts as on a first run, with a warning.
        Before the review the feed continued from an hour ahead, so pump-1 had no reading in
        the 15 minutes before the clock and this test failed on that count."""
        d = vt.Vigild()
        d.start()
        try:
            ahead = vt.now_ms() + 3600 * 1000
            r = d.write_lp("pump,device=pump-1 flow=1 %d\n" % ahead, precision="ms")
            self.assertEqual(r.status, 204, r)
            d.stop()
            d.extra_args = ["--demo"]
            d.start()
            deadline = time.monotonic() + 60
            while DemoStop.points(d, "pump-1") < 901:  # its history, then the stamp ahead
                self.assertLess(time.monotonic(), deadline, "no history\n" + d.log())
                time.sleep(0.2)
            now = vt.now_ms()
            pts = d.readings("pump-1", **{"from": now - 900000, "to": now + 1,
                                          "channels": "flow"})
            self.assertGreaterEqual(len(pts), 850, d.log())
            self.assertIn("demo: the stored pumps' newest reading (%s) is" % vt.iso_ms(ahead),
                          d.log())
            self.assertIn("remove %s for a fresh demo" % os.path.abspath(d.data_dir), d.log())
            d.stop()
        finally:
            d.cleanup()


class DemoWithoutFeed(unittest.TestCase):
    """--demo that cannot run its feed stops the start with exit status 1 and one line saying
    why, before the data folder is created (--check-config too): the stream off, or no
    vigil-sim beside vigild. Before, vigild logged an error among the start's lines and ran on,
    fed by nothing: a first-time user saw an empty device list and a daemon that "worked"."""

    def run_vigild(self, exe, *args):
        work = vt.mkdtemp()
        data = os.path.join(work, "vigil-data")
        http = vt.free_port()
        p = subprocess.run([exe, "--demo", "--data-dir", data, "--http", "127.0.0.1:%d" % http]
                           + list(args), cwd=work, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=20)
        self.assertFalse(os.path.exists(data), "the data folder was created\n" + p.stderr)
        return p

    def test_stream_off(self):
        for extra in ([], ["--check-config"]):
            p = self.run_vigild(vt.VIGILD, "--stream", "off", *extra)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("vigild: --demo needs the stream socket, and stream.listen is off",
                          p.stderr)

    def test_no_vigil_sim_beside_vigild(self):
        lone = os.path.join(vt.mkdtemp(), "vigild")  # vigild alone in a folder
        shutil.copy2(vt.VIGILD, lone)
        sim = os.path.join(os.path.dirname(lone), "vigil-sim")
        for extra in ([], ["--check-config"]):
            p = self.run_vigild(lone, "--stream", "127.0.0.1:%d" % vt.free_port(), *extra)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("vigild: --demo: cannot run the feed %s: No such file or directory"
                          % sim, p.stderr)


if __name__ == "__main__":
    vt.main()

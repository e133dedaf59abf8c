#!/usr/bin/python3
"""vigild integration: GET /v1/events, the fleet's events pushed as Server-Sent Events.

Anomaly: a device fed until it serves, then a fault: the stream says "event: anomaly" with the
device, active true and opened_by within a bounded time of the fault's acknowledgement, the
event as GET .../anomalies lists it; an operator's accept is the ended event (ended_by
"operator"), exactly the POST's answer; a maintenance POST and its DELETE are "event:
maintenance", exactly as the answers say; ?device= gets only its device's; ids are
RUN-SEQ, SEQ one more per message.

Resume: Last-Event-ID gets exactly the messages after it still in the ring (http.events_ring),
none twice, then live ones; an id older than the ring, of another run or malformed gets an
"event: reset" first (then live ones): never a silent gap.

DeviceBurst: another device's messages, more than the ring, neither cut nor reset a ?device=
stream (open, or resuming across them).

State, StateBounded, Reload, ReloadRaised, KeepaliveCapped and StateReturnSeen (state
messages, bounds on reload) are in test_sse_state.py (it_sse_state).

Limits: unknown or repeated parameters are 400s; with tokens 401 without one, 200 with a read
token; http.max_event_streams open, the next is 503 with Retry-After; an idle stream gets a
keep-alive comment every http.events_keepalive_ms, by which a stream whose client went away is
found and its place freed, or at once when a new stream finds every place taken (GoneAtTheLimit:
closed and reset clients); a client that never reads is cut off once it is
http.events_max_unsent behind (vigil_event_streams_dropped_total) while another stream keeps
receiving every message.

Shutdown: SIGTERM with three streams open: vigild exits 0 promptly and each curl sees its
stream end cleanly (exit 0); SIGHUP keeps streams open. A stream whose client stopped reading
is closed after the streams' 2 s, not held for the HTTP stop's 3 s grace too (SilentAtStop).

Reads streams with curl -N in a subprocess (a reader thread per stream) and, for the client
that never reads, a raw socket; every wait is bounded. Python 3 standard library.
"""

import http.client
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import vigiltest as vt  # noqa: E402

T0 = 1_700_000_000_000


class Sse:
    """One GET /v1/events read by curl -N: the status, headers and the messages as they come
    (dicts of id, event, data parsed as JSON), comment lines counted."""

    def __init__(self, d, query="", headers=()):
        args = ["curl", "-sSN", "-i", "--max-time", "120"]
        for h in headers:
            args += ["-H", h]
        self.proc = subprocess.Popen(args + [d.url("/v1/events" + query)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.cv = threading.Condition()
        self.status = None
        self.headers = {}
        self.messages = []
        self.arrived = []  # time.monotonic() of each message's arrival
        self.comments = 0
        self.retry = None
        self.body = b""  # an answer that is not a stream
        self.ended = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        f = self.proc.stdout
        line = f.readline()
        with self.cv:
            m = re.match(rb"HTTP/1\.[01] (\d+)", line)
            self.status = int(m.group(1)) if m else -1
            self.cv.notify_all()
        while True:
            line = f.readline()
            if line in (b"", b"\r\n"):
                break
            k, _, v = line.decode().partition(":")
            with self.cv:
                self.headers[k.strip().lower()] = v.strip()
        fields = {}
        for line in iter(f.readline, b""):
            if self.status != 200:
                self.body += line
                continue
            line = line.rstrip(b"\n").decode()
            with self.cv:
                if line == "":
                    if "data" in fields:
                        fields["data"] = json.loads(fields["data"])
                        self.messages.append(fields)
                        self.arrived.append(time.monotonic())
                    fields = {}
                elif line.startswith(":"):
                    self.comments += 1
                else:
                    k, _, v = line.partition(":")
                    v = v[1:] if v.startswith(" ") else v
                    if k == "retry":
                        self.retry = int(v)
                    else:
                        fields[k] = v
                self.cv.notify_all()
        with self.cv:
            self.ended = True
            self.cv.notify_all()

    def wait(self, what, pred, timeout=15):
        """Waits until pred(self) is true (under the lock); returns its value."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                v = pred(self)
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %.0fs waiting for %s (messages %r, "
                                         "status %r, ended %r)" % (timeout, what, self.messages,
                                                                   self.status, self.ended))
                self.cv.wait(left)

    def open(self):
        """Waits for the stream's retry line (the answer is a 200 stream); returns self."""
        self.wait("the stream's retry line", lambda s: s.retry is not None or s.ended)
        assert self.status == 200 and self.retry is not None, (self.status, self.body)
        return self

    def count(self, n, timeout=15):
        """Waits for at least n messages; returns them all."""
        self.wait("%d messages" % n, lambda s: len(s.messages) >= n, timeout)
        with self.cv:
            return list(self.messages)

    def finish(self, timeout=15):
        """Waits for the stream's end; returns curl's exit code."""
        self.wait("the stream's end", lambda s: s.ended, timeout)
        return self.proc.wait(timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)
        self.thread.join(10)
        self.proc.stdout.close()


def seq(msg):
    """The SEQ of a message's id RUN-SEQ."""
    run, _, n = msg["id"].rpartition("-")
    assert run.isdigit() and n.isdigit(), msg
    return int(n)


class SseTest(tp.DaemonPerTest):
    def setUp(self):
        super().setUp()
        self.streams = []

    def tearDown(self):
        for s in self.streams:
            s.close()
        super().tearDown()

    def stream(self, query="", headers=(), opened=True):
        s = Sse(self.d, query, headers)
        self.streams.append(s)
        return s.open() if opened else s

    def device(self, dev):
        """A device the pipeline knows (one reading)."""
        tp.post_readings(self.d, dev, [[0.0]], [T0], ["x"])
        tp.wait_scored(self.d, dev, 1)

    def maint(self, dev, note=None):
        """Starts and ends a maintenance of dev; returns the two answers' JSON."""
        body = {"minutes": 5}
        if note:
            body["note"] = note
        start = tp.jreq(self.d, "POST", "/v1/devices/%s/maintenance" % dev, body)
        tp.jreq(self.d, "DELETE", "/v1/devices/%s/maintenance" % dev, want=204)
        return start

    def first_model(self, dev):
        """Feeds dev 650 normal readings: its first model trains on the first 500 (learning to
        normal)."""
        data = tp.rotation(650, 0, tp.OMEGA_A, 0.01, random.Random(3))
        self.feed(dev, data[:500], 0)
        tp.wait_idle(self.d, dev, 1)
        self.feed(dev, data[500:650], 500)

    def silent_client(self, open_before):
        """A raw socket that sends its request and never reads, with a small receive buffer;
        returns it once vigild counts it (open_before + 1 streams)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", self.d.http_port))
        sock.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        tp.wait_for("the silent stream", lambda: self.d.metric("vigil_event_streams", need=True) ==
                    open_before + 1, 5)
        return sock

    def flap(self, dev, seconds, rounds):
        """Flaps dev (its first model served) between anomaly and normal, about every 0.15 s,
        for at least seconds and rounds, ending after a fault's readings; returns the states
        the status showed. A later call goes on from where the last one ended."""
        d = self.d
        k, i = getattr(self, "flapped", (650, 0))
        seen, brng = [], random.Random(4 + i)
        t0 = time.monotonic()
        while True:
            # A fault (its amplitude growing, so the detector keeps flagging it), then a
            # maintenance that ends the episode.
            self.feed(dev, tp.rotation(3, k, tp.OMEGA_B, 0.01, brng, amp=3.0 + i), k)
            k, i = k + 3, i + 1
            seen.append(tp.status(d, dev)["state"])
            time.sleep(0.05)
            if time.monotonic() - t0 >= seconds and i >= rounds:
                break
            tp.jreq(d, "POST", "/v1/devices/%s/maintenance" % dev, {"minutes": 5})
            seen.append(tp.status(d, dev)["state"])
            tp.jreq(d, "DELETE", "/v1/devices/%s/maintenance" % dev, want=204)
            time.sleep(0.05)
        self.flapped = (k, i)
        return seen

    def publish_until_cut(self, dev):
        """Messages of about 700 bytes (maintenance of dev with a 400-byte note) until a stream
        is cut off (a silent client's kernel buffers fill, about 200 KB, then it falls
        http.events_max_unsent behind); returns how many were published."""
        n = 0
        while self.d.metric("vigil_event_streams_dropped_total", need=True) == 0:
            self.assertLess(n, 1000, "the client that never reads was never cut off")
            for _ in range(10):
                self.maint(dev, note="n" * 400)
                n += 2
        self.assertEqual(self.d.metric("vigil_event_streams_dropped_total", need=True), 1)
        return n


class Anomaly(SseTest):

    def test_fault_accept_and_maintenance_pushed(self):
        d, dev = self.d, "sse-1"
        self.device("other")
        every, mine, others = self.stream(), self.stream("?device=" + dev), \
            self.stream("?device=other")
        # Every type: the same messages, with the device's state changes between them.
        typed = self.stream("?types=anomaly,maintenance,state")
        self.assertEqual(every.headers.get("content-type"), "text/event-stream")
        self.assertEqual(every.headers.get("cache-control"), "no-cache")
        rng = random.Random(3)
        data = tp.rotation(650, 0, tp.OMEGA_A, 0.01, rng)
        self.feed(dev, data[:500], 0)
        tp.wait_idle(d, dev, 1)
        self.feed(dev, data[500:650], 500)
        self.assertEqual(every.messages, [])  # nothing happened yet
        burst = tp.rotation(30, 650, tp.OMEGA_B, 0.01, random.Random(4), amp=3.0)
        self.feed(dev, burst, 650, wait=False)  # answered: acknowledged (committed)
        acked = time.monotonic()
        opened = every.count(1, timeout=10)[0]
        self.assertLess(time.monotonic() - acked, 10)
        self.assertEqual(opened["event"], "anomaly", opened)
        ev = opened["data"]
        self.assertEqual(ev["device"], dev)
        self.assertIs(ev["active"], True)
        self.assertIn(ev["opened_by"], ("error", "level", "step", "lasting"), ev)
        self.assertIsNone(ev["ended_by"])
        tp.wait_scored(d, dev, 680)
        listed = d.get_json("/v1/devices/%s/anomalies" % dev)["anomalies"][0]
        # The listing's peak and channels grew with the episode's later readings.
        for k in ("device", "id", "start_ts", "start", "active", "opened_by", "ended_by"):
            self.assertEqual(ev[k], listed[k], k)
        self.assertEqual(set(ev), set(listed))

        accepted = tp.jreq(d, "POST", "/v1/devices/%s/anomalies/accept" % dev,
                           {"note": "checked"})
        ended = every.count(2)[1]
        self.assertEqual(ended["event"], "anomaly")
        self.assertEqual(ended["data"], accepted)
        self.assertIs(ended["data"]["active"], False)
        self.assertEqual(ended["data"]["ended_by"], "operator")
        self.assertEqual(ended["data"]["id"], ev["id"])
        self.assertIn(ended["data"], d.get_json("/v1/devices/%s/anomalies" % dev)["anomalies"])

        started = self.maint(dev, note="new seal")
        self.maint("other")
        msgs = every.count(6)
        self.assertEqual([m["event"] for m in msgs], ["anomaly"] * 2 + ["maintenance"] * 4)
        self.assertEqual(msgs[2]["data"], started)
        self.assertEqual(msgs[2]["data"]["period"]["state"], "current")
        end = msgs[3]["data"]
        self.assertEqual((end["device"], end["maintenance"], end["period"]["state"],
                          end["period"]["note"], end["period"]["from_ts"]),
                         (dev, None, "past", "new seal", started["period"]["from_ts"]))
        self.assertEqual([m["data"]["device"] for m in msgs[4:]], ["other", "other"])
        # SEQ counts every type's messages: the default stream's ids increase, and the state
        # messages (which it skips) fill the gaps.
        first = seq(msgs[0])
        self.assertEqual([seq(m) for m in msgs], sorted({seq(m) for m in msgs}))
        self.assertEqual(len({m["id"].rpartition("-")[0] for m in msgs}), 1)  # one run
        full = typed.wait("the typed stream's 6 events",
                          lambda s: [m for m in s.messages if seq(m) <= seq(msgs[-1])]
                          if len([m for m in s.messages if m["event"] != "state"]) >= 6
                          else None)
        self.assertEqual([seq(m) for m in full if seq(m) >= first],
                         list(range(first, seq(msgs[-1]) + 1)))
        self.assertEqual([m for m in full if m["event"] != "state"], msgs)
        # Filtered: each stream exactly its device's messages, with the same ids.
        self.assertEqual(mine.count(4), msgs[:4])
        self.assertEqual(others.count(2), msgs[4:])
        time.sleep(0.3)
        self.assertEqual((len(every.messages), len(mine.messages), len(others.messages)),
                         (6, 4, 2))
        self.assertEqual(d.metric("vigil_event_streams", need=True), 4)
        text = d.metrics()
        by = {t: vt.metric_in(text, 'vigil_event_stream_messages_by_type_total{type="%s"}' % t,
                              need=True) for t in ("anomaly", "maintenance", "state")}
        self.assertEqual((by["anomaly"], by["maintenance"]), (2, 4))
        # Its HELP names every type it counts (session 68: it left out "limit").
        help_ = [ln for ln in text.splitlines()
                 if ln.startswith("# HELP vigil_event_stream_messages_by_type_total ")]
        types = re.findall(r'^vigil_event_stream_messages_by_type_total\{type="(\w+)"\}', text,
                           re.M)
        self.assertEqual(sorted(types), ["anomaly", "limit", "maintenance", "state"], text)
        self.assertEqual(len(help_), 1, text)
        for t in types:
            self.assertIn(t, help_[0])
        # Normal at the first model; the fault's anomaly too unless it came within the second
        # after it and the accept's normal before that second ended (then neither is sent).
        self.assertGreaterEqual(by["state"], 1)
        self.assertEqual(vt.metric_in(text, "vigil_event_stream_messages_total", need=True),
                         sum(by.values()))
        self.assertEqual(d.metric("vigil_event_streams_dropped_total", need=True), 0)

    def test_sighup_keeps_streams_sigterm_ends_them(self):
        d = self.d
        self.device("m")
        streams = [self.stream() for _ in range(3)]
        d.proc.send_signal(signal.SIGHUP)
        vt_deadline = time.monotonic() + 15
        while "configuration reloaded" not in d.log() and time.monotonic() < vt_deadline:
            time.sleep(0.05)
        self.maint("m")
        for s in streams:
            self.assertEqual([m["event"] for m in s.count(2)], ["maintenance"] * 2)
            self.assertFalse(s.ended)
        t = time.monotonic()
        d.stop(timeout=15)  # SIGTERM: exit 0 asserted
        self.assertLess(time.monotonic() - t, 10)
        for s in streams:
            self.assertEqual(s.finish(timeout=5), 0)  # the stream's last chunk: a clean end
            self.assertEqual(len(s.messages), 2)


class Framing(SseTest):

    def test_newlines_in_user_strings(self):
        """A note (and so the message's JSON) holding CR, LF and text that looks like SSE fields
        stays one data line: the JSON is compact, its control characters escaped."""
        self.device("f")
        s = self.stream()
        note = "first\nid: 1-1\r\nevent: reset\rdata: {}\n\nlast"
        start = self.maint("f", note=note)
        msgs = s.count(2)
        self.assertEqual([m["event"] for m in msgs], ["maintenance", "maintenance"])
        self.assertEqual(msgs[0]["data"], start)
        self.assertEqual(msgs[0]["data"]["maintenance"]["note"], note)
        time.sleep(0.2)
        self.assertEqual(len(s.messages), 2)


class Resume(SseTest):
    CONFIG = tp.config_text(0, extra="[http]\nevents_ring = 8\n")

    def test_last_event_id(self):
        d = self.d
        self.device("r")
        live = self.stream()
        for _ in range(6):
            self.maint("r")
        msgs = live.count(12)
        ids = [m["id"] for m in msgs]
        first = seq(msgs[0])
        self.assertEqual([seq(m) for m in msgs], list(range(first, first + 12)))
        run = ids[0].rpartition("-")[0]

        # Messages 5-12 are in the ring (8): after the 6th, exactly the 6 after it.
        back = self.stream(headers=["Last-Event-ID: " + ids[5]])
        self.assertEqual(back.count(6), msgs[6:])
        # After the 4th: the 5th onwards, all still held.
        back4 = self.stream(headers=["Last-Event-ID: " + ids[3]])
        self.assertEqual(back4.count(8), msgs[4:])
        # After the newest: nothing until the next, which comes once.
        now = self.stream(headers=["Last-Event-ID: " + ids[-1]])
        self.maint("r")
        new = live.count(14)[12:]
        self.assertEqual(now.count(2), new)
        self.assertEqual(back.count(8), msgs[6:] + new)
        time.sleep(0.3)
        self.assertEqual(len(back.messages), 8)  # none twice
        self.assertEqual(len(now.messages), 2)

        # After the 2nd: the 3rd and 4th left the ring: a reset, then live messages only.
        # Only ids as vigild writes them: no sign, blank or leading zero before the SEQ.
        newest = seq(new[-1])
        for last, why in ((ids[1], "too_old"), ("12345-3", "other_run"),
                          (run + "-999999", "invalid"), ("garbage", "invalid"),
                          (run + "-+%d" % newest, "invalid"), (run + "- %d" % newest, "invalid"),
                          (run + "-0%d" % newest, "invalid"), (run + "-", "invalid")):
            s = self.stream(headers=["Last-Event-ID: " + last])
            reset = s.count(1)[0]
            self.assertEqual(reset["event"], "reset", reset)
            self.assertEqual(reset["data"]["reason"], why, reset)
            self.assertIs(reset["data"]["missed"], True)
            self.assertEqual(reset["data"]["reread"], "/v1/anomalies?active=true")
            self.assertEqual(reset["id"], new[-1]["id"])  # resuming after it misses nothing
            time.sleep(0.2)
            self.assertEqual(len(s.messages), 1)
        self.maint("r")
        self.assertEqual(s.count(3)[1:], live.count(16)[14:])


class DeviceBurst(SseTest):
    """?device= counts as ?types= does: another device's messages, more than http.events_ring
    of them (and more bytes than http.events_max_unsent), neither cut an open stream of one
    device nor reset one resuming across them; the watched device's next message comes to
    both. A resume across one of the device's own messages that left still gets the reset."""

    CONFIG = tp.config_text(0, extra="[http]\nevents_ring = 16\nevents_max_unsent = 4096\n")

    def test_other_device_burst(self):
        d = self.d
        self.device("w")
        self.device("o")
        mine = self.stream("?device=w")
        self.maint("w")
        got = mine.count(2)
        for _ in range(12):
            self.maint("o", note="n" * 300)  # 24 messages of about 600 bytes
        back = self.stream("?device=w", headers=["Last-Event-ID: " + got[1]["id"]])
        old = self.stream("?device=w", headers=["Last-Event-ID: " + got[0]["id"]])
        self.maint("w")
        new = mine.count(4)[2:]
        self.assertEqual([m["data"]["device"] for m in new], ["w", "w"])
        self.assertEqual(back.count(2), new)  # no reset first
        reset = old.count(3)[0]  # w's second message left the ring
        self.assertEqual((reset["event"], reset["data"]["reason"]), ("reset", "too_old"))
        self.assertEqual(old.messages[1:], new)
        time.sleep(0.3)
        self.assertEqual(len(mine.messages), 4)
        self.assertFalse(mine.ended)
        self.assertEqual(d.metric("vigil_event_streams_dropped_total", need=True), 0)


class Limits(SseTest):
    CONFIG = tp.config_text(0, extra="[http]\nmax_event_streams = 3\nevents_keepalive_ms = 500\n")

    def test_params(self):
        for q, want in (("?x=1", "parameter 'x': unknown here (this endpoint takes device, types)"),
                        ("?device=a&device=b", "parameter 'device': given more than once"),
                        ("?device=", "parameter 'device': is empty")):
            r = vt.curl(self.d.url("/v1/events" + q), timeout=5)
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json()["error"], want)

    def test_stream_limit_and_keepalive(self):
        d = self.d
        a, b, c = self.stream(), self.stream(), self.stream()
        r = vt.curl(d.url("/v1/events"), timeout=5)
        self.assertEqual(r.status, 503, r)
        self.assertIn("http.max_event_streams", r.json()["error"])
        self.assertEqual(r.headers.get("retry-after"), "10")
        # Idle streams hear a keep-alive comment every 500 ms.
        a.wait("keep-alives", lambda s: s.comments >= 3, timeout=5)
        self.assertEqual(d.metric("vigil_event_streams", need=True), 3)
        # A client gone: its next keep-alive finds it, and its place is free again.
        c.close()
        tp.wait_for("the closed stream's place",
                    lambda: d.metric("vigil_event_streams", need=True) == 2, 5)
        self.stream()
        self.assertEqual(d.metric("vigil_event_streams_dropped_total", need=True), 0)


    def test_head(self):
        """HEAD: the stream's headers and nothing else (no stream place taken), so the
        connection serves its next request."""
        d = self.d
        a, b, c = self.stream(), self.stream(), self.stream()  # every place taken
        conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=5)
        try:
            conn.request("HEAD", "/v1/events")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.read(), b"")
            self.assertEqual(r.getheader("Content-Type"), "text/event-stream")
            self.assertEqual(r.getheader("Cache-Control"), "no-cache")
            self.assertEqual(r.getheader("X-Accel-Buffering"), "no")
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.read())["status"], "ok")
        finally:
            conn.close()
        self.assertEqual(d.metric("vigil_event_streams", need=True), 3)


class GoneAtTheLimit(SseTest):
    """Explore (session 41): a stream whose client had gone was found only at its next
    keep-alive, so clients reconnecting faster than http.events_keepalive_ms filled
    http.max_event_streams with streams of nobody and the next were refused 503. A stream
    finding every place taken now ends those whose client closed (FIN) or reset (RST) its
    connection and takes the place; live streams keep theirs, one whose client reads nothing
    too."""
    CONFIG = tp.config_text(0, extra="[http]\nmax_event_streams = 4\n"
                                     "events_keepalive_ms = 3600000\n")

    def raw_stream(self):
        """A stream on a raw socket, returned once its retry line came."""
        sock = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=5)
        sock.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        deadline = time.monotonic() + 5
        while b"retry:" not in got and time.monotonic() < deadline:
            got += sock.recv(4096)
        self.assertIn(b" 200 ", got.split(b"\r\n")[0])
        return sock

    def test_closed_clients_free_their_places(self):
        d = self.d
        a, b = self.stream(), self.stream()
        raw = self.raw_stream()
        silent = self.silent_client(3)  # alive, never reads: polled at each full attach below
        try:
            r = vt.curl(d.url("/v1/events"), timeout=5)
            self.assertEqual(r.status, 503, r)  # four live streams: nothing to end
            b.close()  # curl ends: a FIN
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()  # a reset
            # The keep-alive that would find them is an hour away: these take their places now.
            c, e = self.stream(), self.stream()
            r = vt.curl(d.url("/v1/events"), timeout=5)
            self.assertEqual(r.status, 503, r)  # a, silent, c and e are live and keep theirs
            tp.wait_for("the ended streams freed",
                        lambda: d.metric("vigil_event_streams", need=True) == 4, 5)
            self.assertFalse(a.ended or c.ended or e.ended)
            # Not cut offs:
            self.assertEqual(d.metric("vigil_event_streams_dropped_total", need=True), 0)
            self.assertNotIn("event stream cut off", d.log())
            self.device("gone-1")
            self.maint("gone-1")  # the live streams still receive
            for s in (a, c, e):
                s.count(2)
            # The silent client's stream was not ended by the attaches that polled it: it gets
            # both messages, and no end of stream (b"") before them.
            silent.settimeout(0.5)
            got = b""
            deadline = time.monotonic() + 10
            while got.count(b"event: maintenance") < 2 and time.monotonic() < deadline:
                try:
                    k = silent.recv(65536)
                except socket.timeout:
                    continue
                self.assertNotEqual(k, b"", "the silent client's stream ended: %r" % got)
                got += k
            self.assertEqual(got.count(b"event: maintenance"), 2, got)
        finally:
            silent.close()


class GoneFreesItsConnection(SseTest):
    """Session 47 (task http2): a stream whose client left below http.max_event_streams was
    found only at its second keep-alive after (the first write after a FIN succeeds: 30 s with
    the default 15 s; here an hour), and its connection counted towards
    http.max_connections_per_ip meanwhile: two clients that left and a live one filled this
    one's three, and every new connection from the address was closed unanswered (main: so for the whole
    wait here, and this test failed). The keep-alive thread now looks for them every second."""
    CONFIG = tp.config_text(0, extra="[http]\nmax_connections_per_ip = 3\n"
                                     "events_keepalive_ms = 3600000\n")

    def healthz(self):
        try:
            return vt.http_request("GET", self.d.url("/healthz"), timeout=5)[0] == 200
        except OSError:  # closed unanswered: the address's connections are all taken
            return False

    def one_stream(self):
        try:
            return self.d.metric("vigil_event_streams", need=True) == 1
        except OSError:  # closed unanswered, as in healthz
            return False

    def test_left_streams_free_their_connections(self):
        a = self.stream()  # stays: a live stream keeps its place
        left = [self.stream() for _ in range(2)]
        self.assertFalse(self.healthz())  # three streams: the address's three connections
        for s in left:
            s.close()  # curl ends: a FIN
        tp.wait_for("a connection accepted again", self.healthz, 20)
        # Both left streams reaped, not only the first: with one still held, the address's
        # three places are the live stream, that one and the connection a request just closed
        # (vigild may see its FIN after the next connect), and the next request can be closed
        # unanswered (seen once under ASan, session 49's CI).
        tp.wait_for("both left streams reaped", self.one_stream, 20)
        # The reads below may meet the same race as one_stream's (the request before them not
        # yet seen closed: a connection reset seen once under ASan, session 52's CI): read again.
        got = {}

        def read():
            try:
                got["streams"] = self.d.metric("vigil_event_streams", need=True)
                got["dropped"] = self.d.metric("vigil_event_streams_dropped_total", need=True)
                return True
            except OSError:
                return False
        tp.wait_for("the metrics answered", read, 20)
        self.assertEqual(got["streams"], 1)
        self.assertEqual(got["dropped"], 0)  # not cut offs
        self.assertNotIn("event stream cut off", self.d.log())
        self.assertFalse(a.ended)


class Tokens(SseTest):

    def setUp(self):
        path = os.path.join(vt.mkdtemp(), "tokens")
        vt.write_file(path, "read r3ad-t0ken-AAAAAAAAAAAAAAAA\n")
        os.chmod(path, 0o600)
        self.d = vt.Vigild(config=tp.make_config(self.CONFIG), extra_args=["--auth-file", path])
        self.d.start()
        self.streams = []

    def test_read_token(self):
        r = vt.curl(self.d.url("/v1/events"), timeout=5)
        self.assertEqual(r.status, 401, r)
        r = vt.curl(self.d.url("/v1/events"),
                    timeout=5, args=["-H", "Authorization: Bearer wrong-t0ken-AAAAAAAAAAAA"])
        self.assertEqual(r.status, 401, r)
        s = self.stream(headers=["Authorization: Bearer r3ad-t0ken-AAAAAAAAAAAAAAAA"])
        self.assertEqual(s.status, 200)


class Cors(SseTest):
    CONFIG = tp.config_text(0, extra="[http]\ncors_origins = http://dash.example\n")

    def test_browser_stream_and_resume_preflight(self):
        """A dashboard on a listed origin: the stream carries Access-Control-Allow-Origin, and
        the preflight of a fetch-based EventSource (one that sends a token) resuming with
        Last-Event-ID allows that header, or the browser refuses the reconnection."""
        s = self.stream(headers=["Origin: http://dash.example"])
        self.assertEqual(s.headers.get("access-control-allow-origin"), "http://dash.example")
        r = vt.curl(self.d.url("/v1/events"), timeout=5, method="OPTIONS",
                    args=["-H", "Origin: http://dash.example",
                          "-H", "Access-Control-Request-Method: GET",
                          "-H", "Access-Control-Request-Headers: authorization,last-event-id"])
        self.assertEqual(r.status, 204, r)
        allowed = [h.strip().lower()
                   for h in r.headers.get("access-control-allow-headers", "").split(",")]
        self.assertIn("authorization", allowed)
        self.assertIn("last-event-id", allowed)


class SmallUnsent(SseTest):
    CONFIG = tp.config_text(0, extra="[http]\nevents_max_unsent = 1024\n")

    def test_message_longer_than_max_unsent(self):
        """A client that has read everything is 0 bytes behind: a message longer than
        http.events_max_unsent (its lowest, 1 KiB; a maintenance with a 500-byte note is about
        1.3 KB) reaches it, it is not cut off for it."""
        self.device("m")
        s = self.stream()
        start = self.maint("m", note="n" * 500)
        msgs = s.count(2)
        self.assertEqual(msgs[0]["data"], start)
        self.assertGreater(len(json.dumps(start)), 1024)
        self.assertEqual(self.d.metric("vigil_event_streams_dropped_total", need=True), 0)
        self.assertEqual(self.d.metric("vigil_event_streams", need=True), 1)


class SlowClient(SseTest):
    CONFIG = tp.config_text(0, extra="[http]\nevents_max_unsent = 4096\n")

    def test_never_reading_client_cut_off(self):
        d = self.d
        self.device("s")
        reader = self.stream()
        sock = self.silent_client(1)
        n = self.publish_until_cut("s")  # 4 KiB behind
        tp.wait_for("one stream", lambda: d.metric("vigil_event_streams", need=True) == 1, 5)
        # The reader received every message, in order, while the other was stuck and cut.
        self.maint("s")
        msgs = reader.count(n + 2)
        self.assertEqual([seq(m) for m in msgs], list(range(seq(msgs[0]), seq(msgs[0]) + n + 2)))
        # The silent client finds its stream ended once it reads what the kernel kept.
        sock.settimeout(10)
        got = 0
        try:
            while True:
                b = sock.recv(65536)
                if not b:
                    break
                got += len(b)
        except ConnectionResetError:
            pass
        sock.close()
        self.assertGreater(got, 0)
        self.assertEqual(d.metric("vigil_event_streams_dropped_total", need=True), 1)


class SilentAtStop(SseTest):
    """SIGTERM with a stream whose client stopped reading (its kernel buffers full, not yet
    http.events_max_unsent behind): the stop gives the streams their 2 s to take the last chunk
    (api__events_close), then closes this one; it is not waited for again as a request "begun
    before the stop still unanswered" (api_stop's 3 s grace is for answers, and a stream has had
    its own). The stop, from its first log line to "stopped cleanly", stays under 4 s (about 2 s:
    on the old code 5 s and the grace's warning), exit 0."""
    CONFIG = tp.config_text(0, extra="[http]\nevents_max_unsent = 4194304\n")

    def test_silent_stream_closed_after_its_grace(self):
        d = self.d
        self.device("q")
        sock = self.silent_client(0)
        for _ in range(200):  # 400 messages of about 700 bytes: more than the kernel keeps
            self.maint("q", note="n" * 400)
        self.assertEqual(d.metric("vigil_event_streams_dropped_total", need=True), 0)
        self.assertEqual(d.metric("vigil_event_streams", need=True), 1)
        d.stop(timeout=30)  # SIGTERM: exit 0 asserted
        sock.close()
        log = open(d.log_path, encoding="utf-8", errors="replace").read()
        self.assertNotIn("begun before the stop still unanswered", log)
        t = [re.search(r"^\S+T(\d\d):(\d\d):(\d\d\.\d+)Z .*%s" % w, log, re.M)
             for w in ("stopping intake", "stopped cleanly")]
        took = [int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) for m in t]
        self.assertGreaterEqual(took[1] - took[0], 1.9)  # the streams' 2 s: the client was stuck
        self.assertLess(took[1] - took[0], 4.0)


class ClockBoundaries(SseTest):
    """Maintenance periods beginning and ending by vigild's clock alone (no request at the
    moment) are pushed, within about a second (the loop looks every 250 ms), as the status and
    /metrics see them; a cancel is pushed with the period's state "cancelled"; a change the API
    announced is not announced again by the clock; ?device= filters them as the others."""

    SLACK_MS = 1500  # the loop's 250 ms look, a loaded machine's scheduling, curl's read

    def arrives(self, s, n, at_ms):
        """Waits for s's n-th message, due at at_ms (wall clock); checks it came no earlier and
        not much later; returns its data."""
        msg = s.count(n, timeout=at_ms / 1000 - time.time() + 10)[n - 1]
        now_ms = time.time() * 1000
        self.assertGreaterEqual(now_ms, at_ms, msg)
        self.assertLess(now_ms, at_ms + self.SLACK_MS, msg)
        self.assertEqual(msg["event"], "maintenance", msg)
        return msg["data"]

    def test_scheduled_period_begins_and_ends(self):
        d, dev = self.d, "clock-1"
        self.device(dev)
        self.device("other")
        every, mine, others = self.stream(), self.stream("?device=" + dev), \
            self.stream("?device=other")
        now = int(time.time() * 1000)
        start, end = now + 2000, now + 4000
        planned = tp.jreq(d, "POST", "/v1/devices/%s/maintenance" % dev,
                          {"from": start, "until": end, "note": "week-end"})
        self.assertEqual(planned["period"]["state"], "scheduled")
        self.assertEqual(every.count(1)[0]["data"], planned)

        began = self.arrives(every, 2, start)
        self.assertEqual(began["device"], dev)
        self.assertEqual(began["period"]["state"], "current")
        self.assertEqual((began["period"]["from_ts"], began["period"]["until_ts"]), (start, end))
        self.assertEqual(began["maintenance"],
                         {"until": planned["period"]["until"], "until_ts": end,
                          "note": "week-end"})
        # The stream agrees with the status and /metrics, which follow the same clock.
        self.assertEqual(tp.status(d, dev)["maintenance"], began["maintenance"])
        self.assertEqual(d.metric("vigil_devices_in_maintenance", need=True), 1)

        ended = self.arrives(every, 3, end)
        self.assertEqual((ended["device"], ended["maintenance"], ended["period"]["state"],
                          ended["period"]["note"], ended["period"]["from_ts"]),
                         (dev, None, "past", "week-end", start))
        self.assertIsNone(tp.status(d, dev)["maintenance"])
        self.assertEqual(d.metric("vigil_devices_in_maintenance", need=True), 0)

        time.sleep(1)  # four more looks of the loop: nothing is announced twice
        msgs = every.count(3)
        self.assertEqual(len(msgs), 3, msgs)
        self.assertEqual([seq(m) for m in msgs], list(range(seq(msgs[0]), seq(msgs[0]) + 3)))
        self.assertEqual(mine.count(3), msgs)
        self.assertEqual(others.messages, [])

    def test_cancel_pushed(self):
        d, dev = self.d, "clock-2"
        self.device(dev)
        self.device("other")
        every, others = self.stream(), self.stream("?device=other")
        now = int(time.time() * 1000)
        planned = tp.jreq(d, "POST", "/v1/devices/%s/maintenance" % dev,
                          {"from": now + 60000, "until": now + 120000})
        tp.jreq(d, "DELETE", "/v1/devices/%s/maintenance?from=%d" % (dev, now + 60000),
                want=204)
        msgs = every.count(2)
        self.assertEqual(msgs[0]["data"], planned)
        gone = msgs[1]["data"]
        self.assertEqual(msgs[1]["event"], "maintenance")
        self.assertEqual((gone["device"], gone["maintenance"], gone["period"]["state"]),
                         (dev, None, "cancelled"))
        for k in ("from", "from_ts", "until", "until_ts", "note"):
            self.assertEqual(gone["period"][k], planned["period"][k], k)
        self.assertEqual(d.get_json("/v1/devices/%s/maintenance" % dev)["periods"], [])
        time.sleep(0.5)
        self.assertEqual((len(every.messages), others.messages), (2, []))

    def test_api_changes_not_repeated_by_the_clock(self):
        """A period POSTed from now, then ended by DELETE: the two answers' messages only,
        none from the clock's looks (which see the same begin and end)."""
        self.device("clock-3")
        s = self.stream()
        started = tp.jreq(self.d, "POST", "/v1/devices/clock-3/maintenance", {"minutes": 5})
        time.sleep(1)
        self.assertEqual([m["data"] for m in s.messages], [started])
        tp.jreq(self.d, "DELETE", "/v1/devices/clock-3/maintenance", want=204)
        self.assertEqual(s.count(2)[1]["data"]["period"]["state"], "past")
        time.sleep(1)
        self.assertEqual(len(s.messages), 2, s.messages)


if __name__ == "__main__":
    vt.main()

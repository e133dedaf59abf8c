#!/usr/bin/python3
"""vigild integration: GET /metrics passes `promtool check metrics` (Debian prometheus) and its
counters match the traffic the test sent: readings by protocol, rejected items, HTTP requests
by route and status, readings committed."""

import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
CLOCKSHIFT = os.environ.get("VIGIL_CLOCKSHIFT", "")  # tests/fault/clockshift.c, set by CTest


def parse(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not m:
            raise AssertionError("unparsable metrics line: %r" % line)
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())))


class PromtoolMixin:

    def promtool(self, text):
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, "promtool check metrics:\n%s\n---\n%s" % (p.stdout, text))
        self.assertEqual(p.stdout.strip(), "", p.stdout)


class Metrics(PromtoolMixin, vt.DaemonTestCase):

    def test_metrics_after_traffic(self):
        # Fresh daemon: promtool accepts the exposition before any traffic too.
        r = self.d.curl("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/plain"), r.headers)
        self.promtool(r.body.decode())

        # JSON: 3 items with 2+1+3 readings, then one partial batch (1 good reading, 2 bad items).
        r = self.d.post_json([{"device": "m-json", "ts": 1, "values": {"a": 1, "b": 2}},
                              {"device": "m-json", "ts": 2, "values": {"a": 3}},
                              {"device": "m-json", "ts": 3, "values": {"a": 4, "b": 5, "c": 6}}])
        self.assertEqual(r.status, 200, r)
        r = self.d.post_json([{"device": "m-json", "ts": 4, "values": {"a": 7}},
                              {"device": "m-json", "ts": 5, "values": {"a": "x"}},
                              {"device": "m-json"}])
        self.assertEqual(r.status, 400, r)
        json_ok, json_bad = 7, 2
        # Line protocol: 4 lines with 5 readings, then a partial write (2 readings, 1 bad line).
        r = self.d.write_lp("m,device=m-lp a=1 1\nm,device=m-lp a=2,b=3 2\n"
                            "m,device=m-lp a=4 3\nm,device=m-lp s=\"x\",c=5 4\n", precision="ms")
        self.assertEqual(r.status, 204, r)
        r = self.d.write_lp("m,device=m-lp a=6,b=7 5\nm,device=m-lp a= 6\n", precision="ms")
        self.assertEqual(r.status, 400, r)
        lp_ok, lp_bad = 7, 1
        # Stream: 100 lines with 2 readings each, 3 bad lines.
        c = self.d.stream_connect()
        try:
            c.send("".join("m,device=m-st a=%d,b=%d %d\n" % (i, i, (1700000000000 + i) * 10 ** 6)
                           for i in range(100))
                   + "bad\nm,device=m-st a=\nm a=1 x\n")
            got = c.wait_ok(103)
            self.assertEqual(sorted(vt.errors_of(got)), [101, 102, 103])
            c.finish()
        finally:
            c.close()
        st_ok, st_bad = 200, 3
        # Some reads and errors for the request counters.
        for _ in range(3):
            self.assertEqual(self.d.get("/v1/devices/m-json/readings")[0], 200)
        self.assertEqual(self.d.get("/v1/devices/nope/readings")[0], 404)
        self.assertEqual(self.d.get("/no/such/route")[0], 404)
        self.assertEqual(self.d.curl("DELETE", "/v1/readings").status, 405)

        text = self.d.metrics()
        self.promtool(text)
        m = parse(text)
        self.assertEqual(value(m, "vigil_ingest_readings_total", proto="json"), json_ok)
        self.assertEqual(value(m, "vigil_ingest_readings_total", proto="lp"), lp_ok)
        self.assertEqual(value(m, "vigil_ingest_readings_total", proto="stream"), st_ok)
        self.assertEqual(value(m, "vigil_ingest_rejected_total", proto="json"), json_bad)
        self.assertEqual(value(m, "vigil_ingest_rejected_total", proto="lp"), lp_bad)
        self.assertEqual(value(m, "vigil_ingest_rejected_total", proto="stream"), st_bad)
        self.assertEqual(value(m, "vigil_store_readings_written_total"), json_ok + lp_ok + st_ok)
        self.assertEqual(value(m, "vigil_http_requests_total", route="readings", code="200"), 1)
        self.assertEqual(value(m, "vigil_http_requests_total", route="readings", code="400"), 1)
        self.assertEqual(value(m, "vigil_http_requests_total", route="readings", code="405"), 1)
        self.assertEqual(value(m, "vigil_http_requests_total", route="write", code="204"), 1)
        self.assertEqual(value(m, "vigil_http_requests_total", route="write", code="400"), 1)
        self.assertEqual(value(m, "vigil_http_requests_total", route="device_readings",
                               code="200"), 3)
        self.assertEqual(value(m, "vigil_http_requests_total", route="device_readings",
                               code="404"), 1)
        self.assertEqual(value(m, "vigil_http_requests_total", route="not_found", code="404"), 1)
        self.assertGreaterEqual(value(m, "vigil_http_requests_total", route="metrics",
                                      code="200"), 1)
        self.assertEqual(value(m, "vigil_devices"), 3)
        self.assertEqual(value(m, "vigil_store_queue_readings"), 0)
        self.assertGreater(value(m, "vigil_store_database_bytes"), 0)
        self.assertGreater(value(m, "vigil_store_commits_total"), 0)
        self.assertEqual(value(m, "vigil_store_commit_errors_total"), 0)
        self.assertEqual(value(m, "vigil_store_maintenance_errors_total"), 0)
        self.assertEqual(value(m, "vigil_store_commit_seconds_count"),
                         value(m, "vigil_store_commits_total"))
        self.assertEqual(value(m, "vigil_store_commit_seconds_bucket", le="+Inf"),
                         value(m, "vigil_store_commit_seconds_count"))
        self.assertEqual(value(m, "vigil_stream_connections"), 0)
        # Nothing negative, nothing NaN.
        for k, v in m.items():
            self.assertTrue(v >= 0, (k, v))

    def test_stream_connection_gauge(self):
        c = self.d.stream_connect()
        try:
            c.send("m,device=m-g a=1 1700000000000000000\n")
            c.wait_ok(1)
            m = parse(self.d.metrics())
            self.assertEqual(value(m, "vigil_stream_connections"), 1)
        finally:
            c.close()

    def test_requests_in_flight_gauge(self):
        """vigil_http_requests_in_flight: requests whose headers are in and whose answer is not
        yet sent, each scrape counting itself. N POSTs whose bodies have not finished read
        N + 1; an open event stream adds nothing; one body finished (answered 200) brings it to
        N, the others' connections closed to 1."""
        def in_flight():
            text = self.d.metrics()
            self.assertIn("# TYPE vigil_http_requests_in_flight gauge\n", text)
            return value(parse(text), "vigil_http_requests_in_flight")

        def wait_in_flight(n):
            tp.wait_for("vigil_http_requests_in_flight %d" % n, lambda: in_flight() == n, 30)

        wait_in_flight(1)  # this scrape alone
        n = 3
        body = json.dumps([{"device": "m-if", "ts": 1, "values": {"a": 1}}]).encode()
        slow = []
        try:
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=30)
                s.sendall(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                          + body[:5])  # the rest of the body is not sent yet
                slow.append(s)
            wait_in_flight(n + 1)
            events = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=30)
            slow.append(events)
            events.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b" 200 ", events.recv(4096).split(b"\r\n")[0] + b" ")
            # The stream's answer has begun: not counted (a stream counted stays at n + 2). A
            # wait, not one look: the scrape before it may still be counted, its answer read by
            # the client before libmicrohttpd's completion callback ran (seen under ASan and load).
            wait_in_flight(n + 1)
            slow[0].sendall(body[5:])
            answer = b""
            while b"\r\n\r\n" not in answer:
                got = slow[0].recv(4096)
                self.assertTrue(got, answer)
                answer += got
            self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer)
            wait_in_flight(n)
        finally:
            for s in slow:
                s.close()
        wait_in_flight(1)


class LearningScore(PromtoolMixin, vt.DaemonTestCase):
    """A device still learning has no vigil_device_anomaly_score series: its status says score
    null, and the 0 exported before session 67 read as healthy in Grafana."""

    def test_learning_device_has_no_score(self):
        r = self.d.post_json([{"device": "m-learn", "ts": i, "values": {"a": i}}
                              for i in range(1, 4)])
        self.assertEqual(r.status, 200, r)
        s = tp.wait_scored(self.d, "m-learn", 1, timeout=20)
        self.assertEqual((s["state"], s["score"]), ("learning", None), s)
        text = self.d.metrics()
        self.promtool(text)
        m = parse(text)
        self.assertEqual(value(m, "vigil_device_state", device="m-learn"), 0)
        self.assertIsNone(value(m, "vigil_device_anomaly_score", device="m-learn"), text)
        self.assertIn("# TYPE vigil_device_anomaly_score gauge", text)  # declared all the same


class BuildInfo(vt.DaemonTestCase):
    """vigild --version names the build: the version, the git commit (a commit of this
    repository when built from its checkout) and the build type; /metrics' vigil_build_info,
    /health's "commit" and the start-up line say the same (task ops9, session 59: before, every
    build said "vigild 0.1.0")."""

    def test_version_names_the_build_as_metrics_do(self):
        out = subprocess.run([vt.VIGILD, "--version"], stdout=subprocess.PIPE, text=True,
                             timeout=30, check=True).stdout
        version, commit, btype = vt.version_parts(out)
        self.assertNotEqual(btype, "", "no build type: %r" % out)  # CMakeLists.txt sets one
        top = subprocess.run(["git", "-C", vt.REPO, "rev-parse", "--show-toplevel"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if top.returncode == 0 and (os.path.realpath(top.stdout.strip()) ==
                                    os.path.realpath(vt.REPO)):
            # Built from this checkout: one of its commits (HEAD at the last build).
            self.assertNotEqual(commit, "", "a git checkout's build names no commit: %r" % out)
            self.assertEqual(subprocess.run(
                ["git", "-C", vt.REPO, "cat-file", "-e", commit.split("-")[0] + "^{commit}"],
                stderr=subprocess.DEVNULL).returncode, 0, "not a commit here: %r" % out)
        m = parse(self.d.curl("GET", "/metrics").body.decode())
        infos = [dict(labels) for (name, labels), v in m.items() if name == "vigil_build_info"]
        self.assertEqual(infos, [{"version": version, "commit": commit, "build_type": btype}])
        self.assertEqual(value(m, "vigil_build_info", version=version, commit=commit,
                               build_type=btype), 1)
        self.assertEqual(self.d.get_json("/health")["commit"], commit or "unknown")
        described = out.split(" ", 1)[1].rstrip("\n")
        self.assertIn("vigild %s: data in" % described, self.d.log())


class MetricsCap(PromtoolMixin, vt.DaemonTestCase):
    """http.metrics_max_devices: with more devices than the cap, the per-device families list
    only devices in warning or anomaly (none here: a device with 5 readings is learning), the
    fleet-level families stay, vigil_metrics_devices_omitted counts the devices left out and
    the daemon says so once in its log. A reload that raises the cap lists them all again."""

    CONFIG = "[http]\nmetrics_max_devices = 2\n"

    # Listed only once a model scores the device (none here but by chance).
    SCORED = ("vigil_device_anomaly_score", "vigil_device_anomaly_likelihood")

    def per_device(self, m):
        return sorted((name, dict(labels)["device"]) for (name, labels) in m
                      if name.startswith("vigil_device_"))

    def test_cap_then_reload(self):
        devs = ["cap-a", "cap-b", 'cap-"c"']  # a quote: the label escaping
        r = self.d.post_json([{"device": dv, "ts": t, "values": {"v": t}}
                              for dv in devs for t in range(1, 6)])
        self.assertEqual(r.status, 200, r)
        # The pipeline learns of a device after its readings are committed, a moment after the
        # 200: until it knows all three, it lists the ones it knows (at most the cap; seen in
        # CI). Wait, bounded, until it counts three devices learning.
        deadline = time.monotonic() + 10
        while True:
            text = self.d.metrics()
            m = parse(text)
            if value(m, "vigil_devices_by_state", state="learning") == 3:
                break
            self.assertLess(time.monotonic(), deadline, text)
            time.sleep(0.02)
        self.promtool(text)
        self.assertEqual(value(m, "vigil_devices"), 3)
        self.assertEqual(self.per_device(m), [])
        self.assertEqual(value(m, "vigil_metrics_devices_omitted"), 3)
        self.assertEqual(value(m, "vigil_devices_by_state", state="learning"), 3)
        for st in ("normal", "warning", "anomaly"):
            self.assertEqual(value(m, "vigil_devices_by_state", state=st), 0, st)
        self.assertEqual(value(m, "vigil_store_readings_written_total"), 15)
        self.assertIn("# TYPE vigil_device_state gauge", text)  # the families stay declared
        # A device in planned maintenance is listed beyond the cap too: the alerts on a silent
        # device leave it out by its vigil_device_in_maintenance series.
        st, _, body = vt.http_request("POST", self.d.url("/v1/devices/cap-a/maintenance"),
                                      body=b'{"minutes": 5}',
                                      headers={"Content-Type": "application/json"})
        self.assertEqual(st, 200, body)
        m = parse(self.d.metrics())
        # (vigil_device_anomaly_events_total, session 68: the devices of vigil_device_state.)
        self.assertEqual([x for x in self.per_device(m) if x[0] not in self.SCORED], [
            ("vigil_device_anomaly_events_total", "cap-a"),
            ("vigil_device_in_maintenance", "cap-a"),
            ("vigil_device_last_reading_timestamp_seconds", "cap-a"),
            ("vigil_device_model_version", "cap-a"), ("vigil_device_state", "cap-a")])
        self.assertEqual(value(m, "vigil_metrics_devices_omitted"), 2)
        self.assertEqual(value(m, "vigil_devices_in_maintenance"), 1)
        # A second scrape: the log line is not repeated.
        parse(self.d.metrics())
        self.assertEqual(self.d.log().count("more devices than http.metrics_max_devices"), 1,
                         self.d.log())

        # Reload with the cap at the fleet's size: every device listed, nothing omitted.
        vt.write_file(self.d.config, "[http]\nmetrics_max_devices = 3\n")
        deadline = time.monotonic() + 10
        while ", HTTP on " not in self.d.log():  # logged once the SIGHUP handler is installed
            self.assertLess(time.monotonic(), deadline, self.d.log())
            time.sleep(0.02)
        self.d.proc.send_signal(signal.SIGHUP)
        while "configuration reloaded; applied: http.metrics_max_devices" not in self.d.log():
            self.assertLess(time.monotonic(), deadline, self.d.log())
            time.sleep(0.05)
        text = self.d.metrics()
        self.promtool(text)
        m = parse(text)
        self.assertEqual(value(m, "vigil_metrics_devices_omitted"), 0)
        want = sorted((f, dv.replace('"', '\\"')) for f in
                      ("vigil_device_state", "vigil_device_model_version",
                       "vigil_device_last_reading_timestamp_seconds",
                       "vigil_device_anomaly_events_total") for dv in devs)
        want = sorted(want + [("vigil_device_in_maintenance", "cap-a")])  # its 5 minutes
        got = [x for x in self.per_device(m) if x[0] not in self.SCORED]
        self.assertEqual(got, want)
        for dv in devs:
            self.assertEqual(value(m, "vigil_device_state", device=dv.replace('"', '\\"')), 0)


class SilentDevices(PromtoolMixin, vt.DaemonTestCase):
    """A device that stops reporting shows it: vigil_device_last_reading_timestamp_seconds and the
    device JSON's last_seen_ts are when its newest reading ARRIVED (not its timestamp: one
    device sends 2001's readings, the other next year's), so the silent one's stays put while
    the other's moves, and its age (scrape time less it) grows; a reading older than the
    device's newest, or more than a day ahead of its arrival (stored, not scored), is an
    arrival too. vigil_devices_silent (buckets of 60
    s and more, fixed: no test knob) counts 0 for devices heard from within the test and is
    exported before any device; a declared device that never reported counts from vigild's
    start (JSON null), also after a restart, which keeps the others' arrivals (session 59;
    test_arrivals.py for silence across restarts and crashes). Also what a fresh vigild
    exports at 0: the training failure counter and each route's success code, not the whole
    code matrix."""

    OLD = 978_307_200_000  # 2001-01-01: a backfill
    NEW = None  # a year ahead of the wall clock: a gateway with a wrong clock
    # Such readings are refused by default since session 43 (storage.max_ahead, it_clock
    # FarFuture); stored, not scored, they still count as arrivals, which this class checks.
    CONFIG = "[storage]\nmax_ahead = 0\n"

    def scrape(self):
        t0 = time.time()
        text = self.d.metrics()
        t1 = time.time()
        self.promtool(text)
        return parse(text), t0, t1

    def seen(self, m, dev):
        return value(m, "vigil_device_last_reading_timestamp_seconds", device=dev)

    def post(self, dev, ts_list):
        r = self.d.post_json([{"device": dev, "ts": t, "values": {"v": 1.0}} for t in ts_list])
        self.assertEqual(r.status, 200, r)

    def wait_seen(self, devs, after, timeout=10):
        """Scrapes until every device in devs has a timestamp of at least `after` (the pipeline
        learns of a reading a moment after its 200); bounded."""
        deadline = time.monotonic() + timeout
        while True:
            m, t0, t1 = self.scrape()
            if all((self.seen(m, dv) or 0) >= after for dv in devs):
                return m, t0, t1
            self.assertLess(time.monotonic(), deadline, (devs, after, m))
            time.sleep(0.05)

    def test_silent_device(self):
        started = time.time()
        m, _, _ = self.scrape()
        # A fresh vigild: no device yet, every bucket exported at 0.
        for after in ("60", "300", "3600"):
            self.assertEqual(value(m, "vigil_devices_silent", after=after), 0, after)
        self.assertEqual(value(m, "vigil_model_training_failures_total"), 0)
        # Each route's success code(s) at 0 before its first request; no other code.
        for route, code in (("ping", "204"), ("write", "204"), ("status", "200"),
                            ("device", "200"), ("device", "201"), ("model_retrain", "202"),
                            ("model_weights", "200"), ("not_found", "404")):
            self.assertEqual(value(m, "vigil_http_requests_total", route=route, code=code), 0,
                             (route, code))
        codes = {(dict(k)["route"], dict(k)["code"]) for (name, k) in m
                 if name == "vigil_http_requests_total"}
        self.assertNotIn(("ping", "500"), codes)
        self.assertNotIn(("model_retrain", "200"), codes)
        self.assertLess(len(codes), 30, sorted(codes))

        new = (int(time.time()) + 365 * 86400) * 1000
        t_post = time.time()
        self.post("s-old", [self.OLD + 1000 * k for k in range(5)])
        self.post("s-new", [new + 1000 * k for k in range(5)])
        # The longest id (200 bytes) with a quote: the longest line the gauge's family makes.
        longest = 's-"' + "x" * 197
        self.post(longest, [1])
        # Declared, never reporting.
        self.assertEqual(self.d.curl("PUT", "/v1/devices/s-quiet", "-H",
                                     "Content-Type: application/json", "-d", "{}").status, 201)
        m, t0, t1 = self.wait_seen(["s-old", "s-new", longest.replace('"', '\\"')],
                                   t_post - 0.01)
        seen_old, seen_new = self.seen(m, "s-old"), self.seen(m, "s-new")
        for sv in (seen_old, seen_new):  # arrival: now, not 2001 nor next year
            self.assertGreaterEqual(sv, t_post - 0.01)
            self.assertLessEqual(sv, t1 + 0.01)
        # The declared device: vigild's start (it never reported).
        quiet = self.seen(m, "s-quiet")
        self.assertLessEqual(quiet, started + 0.01)
        self.assertGreater(quiet, started - 60)
        # The device JSON says the same, in the style of last_ts/last.
        for dv, sv, last_ts in (("s-old", seen_old, self.OLD + 4000), ("s-new", seen_new, new + 4000)):
            doc = self.d.device(dv)
            self.assertEqual(doc["last_ts"], last_ts)  # the reading's own timestamp
            self.assertAlmostEqual(doc["last_seen_ts"] / 1000, sv, delta=0.0015)
            self.assertEqual(doc["last_seen"][:19],
                             time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(doc["last_seen_ts"]
                                                                            // 1000)))
        doc = self.d.device("s-quiet")
        self.assertIsNone(doc["last_seen_ts"])
        self.assertIsNone(doc["last_seen"])
        listed = {x["id"]: x for x in self.d.get_json("/v1/devices")["devices"]}
        self.assertEqual(listed["s-old"]["last_seen_ts"], self.d.device("s-old")["last_seen_ts"])

        # s-new stops; s-old keeps reporting (still 2001's timestamps) for about 2 s.
        age0 = t1 - seen_new
        for k in range(5, 10):
            time.sleep(0.4)
            self.post("s-old", [self.OLD + 1000 * k])
        m, t0, t1 = self.wait_seen(["s-old"], seen_old + 1.5)
        self.assertEqual(self.seen(m, "s-new"), seen_new)  # silent: unchanged
        self.assertGreater(self.seen(m, "s-old"), seen_old + 1.5)
        age1 = t0 - self.seen(m, "s-new")
        self.assertGreaterEqual(age1, age0 + 1.5)  # its age grows with the wall clock
        self.assertLess(t1 - self.seen(m, "s-old"), age1)
        self.assertEqual(self.d.device("s-new")["last_seen_ts"], round(seen_new * 1000))
        # Everything arrived within this test, well under 60 s: no bucket counts a device
        # (the 60 s bucket only while the test has not run that long on a slow machine).
        if time.time() - started < 55:
            self.assertEqual(value(m, "vigil_devices_silent", after="60"), 0)
        self.assertEqual(value(m, "vigil_devices_silent", after="300"), 0)
        self.assertEqual(value(m, "vigil_devices_silent", after="3600"), 0)

        # A reading older than s-old's newest is stored but not scored: it still arrived. So did
        # s-new's next year's readings, which are not scored either (more than a day ahead of
        # their arrival: the device never leaves learning on them).
        t_post = time.time()
        self.post("s-old", [self.OLD - 1000])
        m, _, _ = self.wait_seen(["s-old"], t_post - 0.01)
        self.assertEqual(self.d.get_json("/v1/devices/s-old/status")
                         ["readings_not_scored_out_of_order"], 1)
        self.assertEqual(self.d.get_json("/v1/devices/s-new/status")["state"], "learning")

        # Across a clean restart the arrivals are kept (the stop writes them, the restore reads
        # them before anything is served, session 59): the same last_seen_ts and gauge as
        # before it. The declared device that never reported still counts from the (new) start.
        before = {dv: self.d.device(dv)["last_seen_ts"] for dv in ("s-old", "s-new")}
        t_restart = time.time()
        self.d.restart()
        m, _, _ = self.scrape()
        for dv in ("s-old", "s-new"):
            self.assertEqual(self.d.device(dv)["last_seen_ts"], before[dv], dv)
            self.assertAlmostEqual(self.seen(m, dv), before[dv] / 1000, delta=0.0015, msg=dv)
        self.assertIsNone(self.d.device("s-quiet")["last_seen_ts"])
        self.assertGreaterEqual(self.seen(m, "s-quiet"), t_restart - 0.01)
        self.assertEqual(value(m, "vigil_devices_silent", after="300"), 0)


class MetricsCapFlagged(PromtoolMixin, vt.DaemonTestCase):
    """Beyond http.metrics_max_devices the per-device families still list the devices in
    warning or anomaly: 3 devices (a 2-channel oscillator their linear model predicts), cap 2,
    one pushed into anomaly by readings far off its pattern; it alone is listed."""

    CONFIG = ("[http]\nmetrics_max_devices = 2\n"
              "[model]\nwarmup = 100\nretrain_every = 0\nhidden = 4\n")

    def feed(self, dev, ks, fn):
        r = self.d.post_json([{"device": dev, "ts": 1_700_000_000_000 + 1000 * k, "values": fn(k)}
                              for k in ks])
        self.assertEqual(r.status, 200, r)

    def wait(self, what, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            self.assertLess(time.monotonic(), deadline, "timed out: %s\n%s" % (what, self.d.log()))
            time.sleep(0.1)

    def test_flagged_devices_listed(self):
        rnd = random.Random(1)

        def wave(k):
            return {"x": math.sin(0.3 * k) + rnd.gauss(0, 0.01),
                    "y": math.cos(0.3 * k) + rnd.gauss(0, 0.01)}
        for dev in ("f-a", "f-b", "f-c"):
            self.feed(dev, range(150), wave)
        for dev in ("f-a", "f-b", "f-c"):
            self.wait(dev + " trained", lambda: (lambda m: m["versions"] and not m["training"])(
                self.d.get_json("/v1/devices/%s/model" % dev)), 60)
        # Readings scored by the trained model calibrate its threshold; then the jump.
        self.feed("f-b", range(150, 200), wave)
        self.feed("f-b", range(200, 230), lambda k: {"x": 40.0 + k % 3, "y": -30.0})
        self.wait("f-b in anomaly", lambda: self.d.get_json("/v1/devices/f-b/status")["state"]
                  == "anomaly", 10)
        text = self.d.metrics()
        self.promtool(text)
        m = parse(text)
        devs = sorted({dict(labels)["device"] for (name, labels) in m
                       if name.startswith("vigil_device_")})
        self.assertEqual(devs, ["f-b"])
        self.assertEqual(value(m, "vigil_device_state", device="f-b"), 3)
        self.assertGreaterEqual(value(m, "vigil_device_model_version", device="f-b"), 1)
        self.assertIsNotNone(value(m, "vigil_device_anomaly_score", device="f-b"))
        self.assertEqual(value(m, "vigil_metrics_devices_omitted"), 2)
        self.assertEqual(value(m, "vigil_devices_by_state", state="anomaly"), 1)
        self.assertEqual(sum(value(m, "vigil_devices_by_state", state=st)
                             for st in ("learning", "normal", "warning", "anomaly")), 3)


@unittest.skipUnless(os.path.exists(CLOCKSHIFT), "VIGIL_CLOCKSHIFT (tests/fault/clockshift.c's "
                     "library, set by CTest; not built for a TSan build) not found")
class SilenceShifted(PromtoolMixin, tp.DaemonPerTest):
    """vigil_devices_silent's buckets rise through the daemon without a minute's wait: vigild
    runs under tests/fault/clockshift.c's library, which moves its wall clock (CLOCK_REALTIME
    only; timers and the watchdog keep the monotonic one) forward by the milliseconds a file
    holds. No setting of the product changes: the buckets stay 60, 300 and 3600 s. Two devices
    report; the clock moves 61 s on: both are in the 60 s bucket, none in 300; one reports again
    and leaves it; 240 s more: both in the 60 s bucket, the one silent since the start in the
    300 s bucket too."""

    def setUp(self):
        self.shift = vt.write_file_atomic(os.path.join(vt.mkdtemp(), "shift"), "0")
        self.d = vt.Vigild(prefix=["env", "LD_PRELOAD=" + vt.preload(CLOCKSHIFT),
                                   "VIGIL_CLOCKSHIFT_FILE=" + self.shift])
        self.d.start()

    def scrape(self):
        text = self.d.metrics()
        self.promtool(text)
        return parse(text)

    def silent(self, m):
        return [value(m, "vigil_devices_silent", after=a) for a in ("60", "300", "3600")]

    def move_clock(self, ms):
        """Moves vigild's wall clock to ms ahead of the true one; returns after the library
        has read it (it reads the file at most 20 ms apart)."""
        vt.write_file_atomic(self.shift, str(ms))
        time.sleep(0.1)

    def report(self, dev, ts, after):
        """Posts a reading of dev and waits until its arrival (vigild's clock) is at least
        `after` seconds since the epoch."""
        r = self.d.post_json([{"device": dev, "ts": ts, "values": {"v": 1.0}}])
        self.assertEqual(r.status, 200, r)
        deadline = time.monotonic() + 10
        while True:
            m = self.scrape()
            seen = value(m, "vigil_device_last_reading_timestamp_seconds", device=dev)
            if seen is not None and seen >= after:
                return m
            self.assertLess(time.monotonic(), deadline, (dev, after, seen))
            time.sleep(0.05)

    def test_silent_buckets(self):
        t0 = time.time()
        self.report("q-a", 1000, t0 - 0.01)
        m = self.report("q-b", 1000, t0 - 0.01)
        self.assertEqual(self.silent(m), [0, 0, 0])
        self.move_clock(61000)
        m = self.scrape()
        self.assertEqual(self.silent(m), [2, 0, 0])
        # The arrival gauge is vigild's clock too: both still show their true arrival.
        self.assertLess(value(m, "vigil_device_last_reading_timestamp_seconds", device="q-a"),
                        time.time() + 1)
        # q-a reports again (at vigild's clock, 61 s ahead): it leaves the bucket.
        m = self.report("q-a", 2000, time.time() + 60)
        self.assertEqual(self.silent(m), [1, 0, 0])
        self.move_clock(301000)
        self.assertEqual(self.silent(self.scrape()), [2, 1, 0])
        self.d.stop()


class StatusCodes(unittest.TestCase):
    """api/api_int.h's API_STATUS_CODES, the codes vigil_http_requests_total counts by name,
    holds only codes some handler in api/ or daemon/ answers (each written as a literal there):
    a code no route answers is a column that can never move (429 was one)."""

    def test_every_counted_code_is_answered(self):
        with open(os.path.join(vt.REPO, "api", "api_int.h")) as f:
            m = re.search(r"#define API_STATUS_CODES\s*\\\s*\{([^}]*)\}", f.read())
        self.assertIsNotNone(m, "API_STATUS_CODES not found in api/api_int.h")
        codes = re.findall(r"\d+", m.group(1))
        self.assertGreater(len(codes), 10)
        sources = ""
        for d in ("api", "daemon"):
            for name in sorted(os.listdir(os.path.join(vt.REPO, d))):
                if name.endswith(".c"):
                    with open(os.path.join(vt.REPO, d, name)) as f:
                        sources += f.read()
        unanswered = [c for c in codes if not re.search(r"(?<![\w.])%s(?![\w.])" % c, sources)]
        self.assertEqual(unanswered, [], "counted, never answered")


class MetricIn(unittest.TestCase):
    """vt.metric_in, the tests' one look-up of a series in a /metrics answer, reads the
    Prometheus text format as a scraper does (no vigild needed): a series named with its labels
    in any order, label values with the format's escapes (\\\\, \\", \\n) and characters a
    pattern would stop at (`,`, `}`, `=`, space) or a line break other than \\n, the values +Inf,
    -Inf and NaN, a sample with an (integer) timestamp; a line of another shape or a series
    twice is an error, not a miss."""
    TEXT = (
        "# HELP h A histogram.\n"
        "# TYPE h histogram\n"
        'h_bucket{le="0.5"} 2\n'
        'h_bucket{le="+Inf"} 7\n'
        "g NaN\n"
        "n -Inf 1700000000000\n"
        'd{device="a\\"b\\\\c\\nd, e}=f",channel="x"} 4.5e3\n'
        'd{device="a",channel="x"} 1\n'
        'u{v="a\x1cb\rc\u2028d"} 2\n')  # lines end at \n alone, whatever a value holds

    def test_series_and_values(self):
        self.assertEqual(vt.metric_in(self.TEXT, 'h_bucket{le="+Inf"}'), 7)
        self.assertEqual(vt.metric_in(self.TEXT, 'h_bucket{le="0.5"}'), 2)
        self.assertTrue(math.isnan(vt.metric_in(self.TEXT, "g")))
        self.assertEqual(vt.metric_in(self.TEXT, "n"), float("-inf"))
        # Labels in another order than written; the escaped value matched whole.
        self.assertEqual(vt.metric_in(self.TEXT, 'd{channel="x",device="a\\"b\\\\c\\nd, e}=f"}'),
                         4500)
        self.assertEqual(vt.metric_in(self.TEXT, 'd{channel="x",device="a"}'), 1)
        self.assertEqual(vt.metric_in(self.TEXT, 'u{v="a\x1cb\rc\u2028d"}'), 2)
        self.assertEqual(vt.parse_metrics(self.TEXT)[
            ("d", frozenset({("device", 'a"b\\c\nd, e}=f'), ("channel", "x")}))], 4500)

    def test_misses(self):
        self.assertIsNone(vt.metric_in(self.TEXT, "h"))  # a family, not a series
        self.assertIsNone(vt.metric_in(self.TEXT, 'd{device="a"}'))  # a label short
        self.assertIsNone(vt.metric_in(self.TEXT, 'h_bucket{le="Inf"}'))
        with self.assertRaisesRegex(AssertionError, 'no d{device="b"} in /metrics'):
            vt.metric_in(self.TEXT, 'd{device="b"}', need=True)

    def test_malformed_answers_are_errors(self):
        for bad in ('x{a="b} 1', "x 1 2 3", 'x{a="\\q"} 1', 'x{a="1"b="2"} 1',
                    'x{a="1",a="2"} 1', "x", "x 1\nx 1.0", "x one",
                    "x 1 soon", "x 1 1.5"):
            with self.subTest(line=bad), self.assertRaises(AssertionError):
                vt.metric_in(bad, "x")


if __name__ == "__main__":
    vt.main()

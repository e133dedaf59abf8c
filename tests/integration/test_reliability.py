#!/usr/bin/python3
"""vigild integration: reliability under faults and hostile clients (docs/reliability.md).

- CrashLoop: HTTP JSON, /write and stream clients that keep each reading until it is
  acknowledged (and send it again otherwise) run while vigild is killed with SIGKILL at random
  moments, at least 20 times, and restarted; afterwards every acknowledged reading is stored
  exactly once with its value, PRAGMA integrity_check is ok, and a device that had a model
  keeps it (same version, not learning) after the last restart.
- Overload: clients offering far more than the writer takes (storage.queue_max_readings =
  1000): HTTP gets 503 with Retry-After and a JSON error, the stream socket stops reading (the
  sender blocks), vigild's peak RSS (VmHWM) stays under RSS_BOUND_MB, and every acknowledged
  reading is stored. (tests/integration/test_stream.py SmallQueue checks the statuses and the
  metrics of the same situation at a smaller scale.)
- DiskFull, MaintenanceDiskFull, MaintenanceEndDiskFull, MaintenanceWriteFailed,
  TrainingDiskFull, GroupTrainingDiskFull, TrainingOutOfMemory: test_faults.py;
  StopAnswers, StopCount, StopTls: test_stop.py (moved there whole, session 33).
- Hostile: 2,000 idle or half-sent HTTP connections and 1,000 idle stream connections do not
  starve a normal client (its requests complete within NORMAL_CLIENT_S); one address cannot
  take more than http.max_connections_per_ip; malformed, truncated, oversized, binary and
  badly compressed bodies on every endpoint that takes one, and bad parameters on every read
  endpoint, get a 4xx with a JSON error; the daemon stays up and stores nothing from them.
- Valgrind (only with VIGIL_VALGRIND=1, CTest it_valgrind): a representative session (ingest
  over JSON, /write and the stream, queries, the pipeline scoring and training three devices,
  SIGTERM) against vigild under valgrind --leak-check=full; any memory error or definite leak
  makes valgrind exit 99, which fails the test.
"""

import collections
import http.client
import json
import math
import os
import random
import resource
import socket
import subprocess
import sys
import threading
import time
import unittest
import zlib

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from test_crash import integrity_check  # noqa: E402

CRASH_KILLS = int(os.environ.get("VIGIL_CRASH_KILLS", "20"))
RSS_BOUND_MB = 96        # vigild's peak RSS under the overload test (configuration below)
NORMAL_CLIENT_S = 2.0    # a normal client's request beside 3,000 idle connections
T0 = 1_700_000_000_000   # epoch ms of the first reading of each load client


def _sanitized():
    with open(vt.VIGILD, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


SANITIZED = _sanitized()  # vigild built with -DVIGIL_SANITIZE=ON or -DVIGIL_TSAN=ON
FAILALLOC = os.environ.get("VIGIL_FAILALLOC", "")  # tests/fault/failalloc.c's library (CTest)


def needs_failalloc(cls):
    """Skips the test class cls, saying why, in a sanitizer build (ASan must own malloc: an
    LD_PRELOAD allocator cannot run under it; such cases run in the plain build) and where
    CTest gave no failalloc.c library (VIGIL_FAILALLOC)."""
    cls = unittest.skipUnless(os.path.exists(FAILALLOC), "VIGIL_FAILALLOC (tests/fault/"
                              "failalloc.c's library, set by CTest) not found")(cls)
    return unittest.skipIf(SANITIZED, "a sanitizer build owns malloc: an LD_PRELOAD allocator "
                           "cannot run under it (this case runs in the plain build)")(cls)


def config_file(text):
    return vt.write_file(os.path.join(vt.mkdtemp(), "vigild.conf"), text)


def req(d, method, path, body=None, headers=None, timeout=30):
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        headers = dict(headers or {}, **{"Content-Type": "application/json"})
    if isinstance(body, str):
        body = body.encode()
    return vt.http_request(method, d.url(path), body=body, headers=headers, timeout=timeout)


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def sqlite_rows(db, sql):
    """Runs a read-only query with the sqlite3 CLI beside the running daemon (WAL readers do not
    block the writer)."""
    p = subprocess.run(["sqlite3", "-readonly", db, sql], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    return p.stdout.strip() if p.returncode == 0 else None


def astuple(res):
    """A CurlResult as req's (status, headers, body)."""
    return res.status, res.headers, res.body


def wait_for(what, fn, timeout):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.1)


def wait_held(flag):
    """Waits until tests/fault/failmaint.c holds vigild's writer in a maintenance write (it
    creates flag + ".held" there): the writer is in the statement, not merely about to be."""
    wait_for("the writer held in the maintenance write",
             lambda: os.path.exists(flag + ".held"), 30)


def store_queue(d):
    """vigil_store_queue_readings: the readings waiting for the writer."""
    v = d.metric("vigil_store_queue_readings")
    return None if v is None else int(v)


class Base(unittest.TestCase):
    assertPoints = vt.DaemonTestCase.assertPoints
    assertJsonError = vt.DaemonTestCase.assertJsonError
    d = None

    def run(self, result=None):
        before = (len(result.failures), len(result.errors)) if result else (0, 0)
        out = super().run(result)
        if result is not None and (len(result.failures), len(result.errors)) != before \
                and self.d is not None:
            sys.stderr.write("\n%s\n" % self.d.log())
        if self.d is not None:
            self.d.cleanup()
        return out

    def stored(self, device):
        """{ts: values} of every stored point of device ({} when it does not exist)."""
        st, _, _ = self.d.get("/v1/devices/%s" % vt.quote(device))
        if st == 404:
            return {}
        return {p["ts"]: p["values"] for p in self.d.readings(device, limit=100000)}


# ============================================================================================
# Crash loop
# ============================================================================================

def val(k):
    """The value of a load client's k-th reading: exact in binary, differs per reading."""
    return k * 0.25 + (k % 7) / 1024


class CrashLoop(Base):
    CONFIG = """
[model]
warmup = 200
retrain_every = 0
hidden = 4
"""

    def setUp(self):
        self.d = vt.Vigild(config=config_file(self.CONFIG))
        self.d.start()

    def give_model(self, device):
        """Feeds device until the pipeline trained a model and the database holds its version;
        returns its status."""
        items = [{"device": device, "ts": T0 + 1000 * k,
                  "values": {"a": math.sin(k / 5), "b": math.cos(k / 7), "c": (k % 10) / 10}}
                 for k in range(400)]
        st, _, body = req(self.d, "POST", "/v1/readings", items)
        self.assertEqual(st, 200, body)

        def served():
            st, _, body = req(self.d, "GET", "/v1/devices/%s/status" % device)
            s = vt.loads(body) if st == 200 else {}
            return s if (s.get("model") or {}).get("version", 0) >= 1 else None

        s = wait_for("a model for " + device, served, 120)
        dev_id = wait_for("the device row", lambda: sqlite_rows(
            self.d.db_path, "SELECT id FROM devices WHERE name = '%s'" % device), 30)
        wait_for("the model version in the database", lambda: sqlite_rows(
            self.d.db_path, "SELECT count(*) FROM models WHERE device_id = %s AND version = %d"
            % (dev_id, s["model"]["version"])) == "1", 30)
        wait_for("the saved detector", lambda: sqlite_rows(
            self.d.db_path, "SELECT count(*) FROM detectors WHERE device_id = %s" % dev_id)
            == "1", 30)
        return s

    def test_sigkill_loop(self):
        d = self.d
        model_before = self.give_model("cl-model")
        stop = threading.Event()
        errors = []
        acked = {"cl-json": {}, "cl-lp": {}, "cl-stream": {}}
        counts = collections.Counter()   # retries, refused connections, ...
        lock = threading.Lock()

        def deliver(what, send):
            """Calls send() until it returns True (acknowledged); False/exceptions retry.
            Bounded: 120 s per batch."""
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if send():
                        return True
                except (OSError, http.client.HTTPException):
                    with lock:
                        counts[what + " connection errors"] += 1
                with lock:
                    counts[what + " retries"] += 1
                time.sleep(0.02)
            errors.append("%s: a batch was never acknowledged" % what)
            return False

        def http_client(device, per):
            n = 0
            while not stop.is_set():
                ks = range(n * per, (n + 1) * per)
                if device == "cl-json":
                    body = json.dumps([{"device": device, "ts": T0 + k, "values": {"v": val(k)}}
                                       for k in ks])
                    path, ctype, want = "/v1/readings", "application/json", 200
                else:
                    body = "".join("load,device=%s v=%r %d\n" % (device, val(k), T0 + k)
                                   for k in ks)
                    path, ctype, want = "/write?db=x&precision=ms", "text/plain", 204

                def send():
                    st, hdrs, data = vt.http_request("POST", d.url(path), body=body.encode(),
                                                     headers={"Content-Type": ctype}, timeout=10)
                    if st == want:
                        return True
                    if st != 503:  # 503: the daemon is starting or shutting down, or busy
                        errors.append("%s: unexpected %d %r" % (device, st, data[:200]))
                        stop.set()
                    return False

                if not deliver(device, send):
                    return
                with lock:
                    for k in ks:
                        acked[device][T0 + k] = val(k)
                n += 1

        def stream_client():
            device = "cl-stream"
            pending = collections.OrderedDict()  # k -> line, sent and not acknowledged yet
            nxt = 0
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if stop.is_set() and not pending:
                    return
                try:
                    c = vt.StreamClient("127.0.0.1", d.stream_port, timeout=10)
                except OSError:
                    with lock:
                        counts["stream connection errors"] += 1
                    time.sleep(0.02)
                    continue
                lines = []  # line number - 1 -> k
                try:
                    while True:
                        if stop.is_set() and not pending:
                            return
                        if not stop.is_set() and len(pending) < 200:
                            for k in range(nxt, nxt + 200):
                                pending[k] = "load,device=%s v=%r %d\n" % (device, val(k),
                                                                           (T0 + k) * 10 ** 6)
                            nxt += 200
                        chunk = list(pending)
                        first = len(lines) + 1
                        lines += chunk
                        c.send("".join(pending[k] for k in chunk))
                        failed = set()
                        while True:
                            line = c.read_line()
                            if line is None:
                                raise ConnectionError("closed")
                            parts = line.split(" ")
                            if parts[0] == "fail":
                                failed.update(range(int(parts[1]), int(parts[2]) + 1))
                                with lock:
                                    counts["stream fail lines"] += int(parts[2]) - int(parts[1]) + 1
                                continue
                            if parts[0] != "ok":
                                errors.append("stream: %s" % line)
                                stop.set()
                                return
                            if int(parts[1]) >= len(lines):
                                break
                        with lock:
                            for ln in range(first, len(lines) + 1):
                                if ln not in failed:
                                    k = lines[ln - 1]
                                    acked[device][T0 + k] = val(k)
                                    pending.pop(k, None)
                except (OSError, ConnectionError):
                    with lock:
                        counts["stream reconnects"] += 1
                finally:
                    c.close()
            errors.append("stream: lines never acknowledged: %d" % len(pending))

        threads = [threading.Thread(target=http_client, args=("cl-json", 100)),
                   threading.Thread(target=http_client, args=("cl-lp", 100)),
                   threading.Thread(target=stream_client)]
        t_start = time.monotonic()
        for t in threads:
            t.start()
        rng = random.Random(int(os.environ.get("VIGIL_CRASH_SEED", "6")))
        kill_times = []
        try:
            for _ in range(CRASH_KILLS):
                # Random moments: right after start-up (restore, retraining) up to mid-load.
                time.sleep(rng.choice((rng.uniform(0.0, 0.15), rng.uniform(0.2, 1.2))))
                with lock:
                    before = sum(len(v) for v in acked.values())
                kill_times.append(before)
                d.kill()
                d.start(timeout=60)
                if errors:
                    break
        finally:
            stop.set()
            for t in threads:
                t.join(200)
        self.assertFalse(any(t.is_alive() for t in threads), "a load client did not finish")
        self.assertEqual(errors, [])
        self.assertEqual(len(kill_times), CRASH_KILLS)
        # Kills landed while readings were being acknowledged, not all before the load began.
        self.assertGreater(len(set(kill_times)), CRASH_KILLS // 4, kill_times)
        for dev, got in acked.items():
            self.assertGreater(len(got), 1000, "%s: too few readings acknowledged" % dev)
        total = sum(len(v) for v in acked.values())
        elapsed = time.monotonic() - t_start
        sys.stderr.write("[crash loop: %d SIGKILLs in %.0f s, %d readings acknowledged "
                         "(json %d, lp %d, stream %d); %r]\n"
                         % (CRASH_KILLS, elapsed, total, len(acked["cl-json"]),
                            len(acked["cl-lp"]), len(acked["cl-stream"]), dict(counts)))

        # One more kill, then the files as the crash left them pass integrity_check.
        d.kill()
        self.assertEqual(integrity_check(d.db_path), "ok")
        d.start(timeout=60)
        for dev, want in acked.items():
            have = self.stored(dev)
            # Every acknowledged reading exactly once, with its value; every reading sent was
            # eventually acknowledged (the clients retry), so nothing else is there either.
            self.assertEqual(len(have), len(want), dev)
            self.assertEqual(d.device(dev)["points"], len(want), dev)
            bad = [ts for ts, v in want.items() if have.get(ts) != {"v": v}]
            self.assertEqual(bad[:5], [], "%s: %d acknowledged readings lost or wrong"
                             % (dev, len(bad)))
        # The model and the detector state came back.
        def model_back():
            st, _, body = req(d, "GET", "/v1/devices/cl-model/status")
            return vt.loads(body) if st == 200 else None

        s = wait_for("cl-model's status", model_back, 30)
        self.assertNotEqual(s["state"], "learning", s)
        self.assertGreaterEqual(s["model"]["version"], model_before["model"]["version"], s)
        self.assertGreaterEqual(s["readings_scored"], model_before["readings_scored"], s)
        versions = [v["version"] for v in d.get_json("/v1/devices/cl-model/model")["versions"]]
        self.assertIn(model_before["model"]["version"], versions)
        d.stop()
        self.assertEqual(integrity_check(d.db_path), "ok")


# ============================================================================================
# Overload
# ============================================================================================

class Overload(Base):
    CONFIG = """
[http]
threads = 4
max_body_bytes = 1048576
max_batch = 1000
[storage]
queue_max_readings = 1000
max_batch_delay_ms = 20
[model]
enabled = false
"""

    def setUp(self):
        self.d = vt.Vigild(config=config_file(self.CONFIG))
        self.d.start()

    def test_overload_bounded(self):
        d = self.d
        stop = threading.Event()
        errors, statuses = [], collections.Counter()
        acked = collections.defaultdict(dict)
        lock = threading.Lock()
        per = 1000

        def http_client(k):
            dev = "ov-http-%d" % k
            n = 0
            try:
                while not stop.is_set():
                    body = json.dumps([{"device": dev, "ts": n * per + i, "values": {"v": n + i}}
                                       for i in range(per)]).encode()
                    while True:  # hostile: retries at once, ignoring Retry-After
                        st, hdrs, data = vt.http_request(
                            "POST", d.url("/v1/readings"), body=body,
                            headers={"Content-Type": "application/json"}, timeout=30)
                        with lock:
                            statuses[st] += 1
                        if st == 200:
                            break
                        if st != 503 or not hdrs.get("retry-after") or \
                                "error" not in vt.loads(data):
                            errors.append("%s: %d %r %r" % (dev, st, hdrs, data[:200]))
                            return
                        if stop.is_set():
                            return
                    with lock:
                        for i in range(per):
                            acked[dev][n * per + i] = float(n + i)
                    n += 1
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %r" % (dev, e))

        stream_stats = []

        def stream_client(k):
            dev = "ov-stream-%d" % k
            lines = 150000
            data = "".join("ov,device=%s v=%d %d\n" % (dev, i, (T0 + i + 1) * 10 ** 6)
                           for i in range(lines)).encode()
            s = socket.create_connection(("127.0.0.1", d.stream_port), timeout=60)
            s.setblocking(False)
            got = bytearray()
            sent, stalls = 0, 0
            import selectors
            sel = selectors.DefaultSelector()
            sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
            deadline = time.monotonic() + 90
            try:
                while sent < len(data) and time.monotonic() < deadline:
                    for key, ev in sel.select(0.5):
                        if ev & selectors.EVENT_READ:
                            chunk = s.recv(65536)
                            if not chunk:
                                raise ConnectionError("closed early")
                            got += chunk
                        if ev & selectors.EVENT_WRITE and sent < len(data):
                            try:
                                sent += s.send(data[sent:sent + 262144])
                            except BlockingIOError:
                                stalls += 1
                    if not sel.select(0):
                        stalls += 1  # neither readable nor writable: the server is not reading
                s.setblocking(True)
                s.settimeout(60)
                s.shutdown(socket.SHUT_WR)
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            finally:
                s.close()
            responses = got.decode().splitlines()
            with lock:
                stream_stats.append((dev, lines, sent == len(data), stalls, responses))

        threads = [threading.Thread(target=http_client, args=(k,)) for k in range(12)]
        threads += [threading.Thread(target=stream_client, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        hwm = 0
        t_end = time.monotonic() + 12
        while time.monotonic() < t_end:
            hwm = max(hwm, vm_hwm_kb(d.proc.pid))
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(120)
        hwm = max(hwm, vm_hwm_kb(d.proc.pid))
        self.assertFalse(any(t.is_alive() for t in threads), "a client hung")
        self.assertEqual(errors, [])
        self.assertTrue(set(statuses) <= {200, 503}, statuses)
        self.assertGreater(statuses[503], 0,
                           "the queue was never full: the test offers too little (%r)" % statuses)
        if not SANITIZED:  # ASan's shadow memory and quarantine are no measure of vigild's
            self.assertLess(hwm, RSS_BOUND_MB * 1024, "vigild's VmHWM %d kB" % hwm)
        sys.stderr.write("[overload: HTTP %r; vigild VmHWM %.1f MB (bound %d MB%s)]\n"
                         % (dict(statuses), hwm / 1024, RSS_BOUND_MB,
                            ", not checked: sanitizer build" if SANITIZED else ""))
        # The stream: the server stopped reading while the writer was saturated (the sender saw
        # its socket not writable), and every line ended acknowledged and stored.
        self.assertEqual(len(stream_stats), 2)
        for dev, lines, all_sent, stalls, responses in stream_stats:
            self.assertTrue(all_sent, "%s: the server stopped taking lines for good" % dev)
            self.assertEqual(vt.errors_of(responses), {})
            self.assertFalse([r for r in responses if r.startswith("fail")], responses[:3])
            self.assertEqual(vt.last_ok(responses), lines)
            self.assertGreater(stalls, 0, "%s: the server never stopped reading" % dev)
            have = self.stored(dev)
            self.assertEqual(len(have), lines)
            self.assertEqual(have.get(T0 + lines), {"v": float(lines - 1)})
            sys.stderr.write("[overload: %s: %d lines, %d stalls of the sender]\n"
                             % (dev, lines, stalls))
        for dev, want in acked.items():
            have = self.stored(dev)
            self.assertEqual(len(have), len(want), dev)
            for ts, v in want.items():
                if have.get(ts) != {"v": v}:
                    self.fail("%s: acknowledged reading at %d lost" % (dev, ts))
        d.stop()


# ============================================================================================
# Hostile input
# ============================================================================================

class Hostile(Base):
    CONFIG = """
[http]
max_connections = 4096
max_body_bytes = 65536
max_batch = 100
[stream]
max_connections = 2048
[model]
warmup = 200
hidden = 2
retrain_every = 0
"""

    def setUp(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < 8192:
            self.skipTest("RLIMIT_NOFILE hard limit %d < 8192" % hard)
        if soft != resource.RLIM_INFINITY and soft < 8192:
            resource.setrlimit(resource.RLIMIT_NOFILE, (8192, hard))  # vigild inherits it
        self.d = vt.Vigild(config=config_file(self.CONFIG))
        self.d.start()

    def normal_client(self, tag):
        """A normal client's write and read; returns the seconds they took."""
        t = time.monotonic()
        st, _, body = req(self.d, "POST", "/v1/readings",
                          {"device": "normal", "ts": tag, "values": {"v": tag}}, timeout=10)
        self.assertEqual(st, 200, body)
        st, _, body = req(self.d, "GET", "/v1/devices/normal/readings?from=%d&to=%d"
                          % (tag, tag + 1), timeout=10)
        self.assertEqual(st, 200, body)
        self.assertEqual(vt.loads(body)["points"][0]["values"], {"v": float(tag)})
        return time.monotonic() - t

    def test_idle_connections_do_not_starve(self):
        d = self.d
        socks = []
        try:
            # 2,000 HTTP connections from 8 other loopback addresses (250 each, under the
            # per-address limit of 256): half idle, half stuck in the middle of their headers.
            for i in range(2000):
                s = socket.socket()
                s.bind(("127.0.0.%d" % (2 + i % 8), 0))
                s.connect(("127.0.0.1", d.http_port))
                if i % 2:
                    s.send(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Le")
                socks.append(s)
            # 1,000 idle stream connections, half with a partial line.
            for i in range(1000):
                s = socket.create_connection(("127.0.0.1", d.stream_port))
                if i % 2:
                    s.send(b"m,device=idle v=")
                socks.append(s)
            time.sleep(0.5)
            took = [self.normal_client(1000 + k) for k in range(5)]
            sys.stderr.write("[idle: %d connections open; normal client requests took %s s]\n"
                             % (len(socks), ", ".join("%.3f" % x for x in took)))
            self.assertLess(max(took), NORMAL_CLIENT_S, took)
            c = d.stream_connect(timeout=10)
            try:
                t = time.monotonic()
                c.send("m,device=normal-stream v=1 %d\n" % ((T0 + 1) * 10 ** 6))
                self.assertEqual(c.wait_ok(1), ["ok 1"])
                self.assertLess(time.monotonic() - t, NORMAL_CLIENT_S)
            finally:
                c.close()
            # The idle connections are still open (nothing dropped them to make room).
            def stream_conns():
                return (d.metric("vigil_stream_connections") or 0) >= 1000

            wait_for("the 1,000 idle stream connections counted", stream_conns, 30)
            # One more address tries to take 300 connections: past 256 they are closed at
            # once, and the normal client is still served.
            extra, closed = [], set()
            for i in range(300):
                s = socket.socket()
                s.bind(("127.0.0.99", 0))
                s.connect(("127.0.0.1", d.http_port))
                s.setblocking(False)
                extra.append(s)
            socks += extra

            def closed_now():
                """Adds to closed the ones of extra vigild has closed by now (it accepts and
                closes them as its threads get to them: polled, not read once after a fixed
                sleep); true once the 44 past the limit are."""
                for i, s in enumerate(extra):
                    if i in closed:
                        continue
                    try:
                        if s.recv(1) == b"":
                            closed.add(i)
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed.add(i)
                return len(closed) >= 300 - 256

            try:
                wait_for("the connections past the per-address limit closed", closed_now, 30)
            except AssertionError:
                pass  # reported below with the count
            self.assertGreaterEqual(len(closed), 300 - 256, "per-address limit not applied")
            self.assertLess(self.normal_client(5000), NORMAL_CLIENT_S)
        finally:
            for s in socks:
                s.close()
        self.assertEqual(d.get("/healthz")[0], 200)
        d.stop()

    def test_bad_bodies_on_every_endpoint(self):
        d = self.d
        # A device with a model, so the model routes read their bodies.
        items = [{"device": "hx", "ts": k, "values": {"a": math.sin(k), "b": k % 3}}
                 for k in range(400)]
        for i in range(0, len(items), 100):
            st, _, body = req(d, "POST", "/v1/readings", items[i:i + 100])
            self.assertEqual(st, 200, body)
        wait_for("hx's model", lambda: (vt.loads(req(d, "GET", "/v1/devices/hx/status")[2])
                                        .get("model") or {}).get("version", 0) >= 1, 60)
        before = d.device("hx")["points"]
        rnd = random.Random(7)
        binary = bytes(rnd.randrange(256) for _ in range(3000)) + b"\0\xff\xfe"
        good_json = json.dumps([{"device": "hx", "ts": 10 ** 6 + k, "values": {"a": 1}}
                                for k in range(20)])
        bodies = {
            "malformed": b"{\"device\": \"hx\", values: [1,2,}",
            "truncated": good_json[:len(good_json) // 2].encode(),
            "binary": binary,
            "oversized": b"[" + b" " * 70000 + b"]",
            "empty": b"",
            "deep": b"[" * 5000 + b"]" * 5000,
            "utf16": '{"device":"hx"}'.encode("utf-16"),
        }
        endpoints = [("POST", "/v1/readings"), ("POST", "/write?db=x"),
                     ("PUT", "/v1/devices/hx-put"), ("POST", "/query"),
                     ("POST", "/v1/devices/hx/model/rollback"),
                     ("PUT", "/v1/devices/hx/model/weights")]
        seen = collections.Counter()
        for method, path in endpoints:
            for kind, b in bodies.items():
                res = req(d, method, path, body=b)
                if kind == "empty" and path.startswith("/write"):
                    # InfluxDB answers an empty write with 204 as well: nothing to store.
                    self.assertIn(res[0], (204, 400), res)
                    continue
                if kind == "empty" and method == "PUT" and path == "/v1/devices/hx-put":
                    # An empty body declares the device without attributes.
                    self.assertEqual(res[0], 201, res)
                    self.assertEqual(d.curl("DELETE", path).status, 200)
                    continue
                msg = self.assertJsonError(res, res[0])
                self.assertTrue(400 <= res[0] < 500, "%s %s (%s): %r" % (method, path, kind,
                                                                         res))
                if kind == "oversized":
                    self.assertEqual(res[0], 413, (method, path, msg))
                seen[res[0]] += 1
            # A gzip body that is not gzip, and a real gzip bomb past the limit.
            res = req(d, method, path, body=binary, headers={"Content-Encoding": "gzip"})
            self.assertJsonError(res, res[0])
            self.assertTrue(400 <= res[0] < 500, res)
            bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
            data = bomb.compress(b"[" + b" " * (8 << 20) + b"]") + bomb.flush()
            res = req(d, method, path, body=data, headers={"Content-Encoding": "gzip"})
            # The ingest routes decode gzip (limit applied after decoding); the others do not
            # take compressed bodies and refuse it as they find it (/query reads only its q
            # parameter, rollback wants {"version": N}).
            ingest = path.startswith(("/v1/readings", "/write"))
            self.assertJsonError(res, 413 if ingest else res[0])
            self.assertTrue(400 <= res[0] < 500, res)
            res = req(d, method, path, body=b"{}", headers={"Content-Encoding": "br"})
            self.assertJsonError(res, 415 if ingest else res[0])
            self.assertTrue(400 <= res[0] < 500, res)
        # Read endpoints: bad, binary and oversized parameters.
        reads = ["/v1/devices/hx/readings?from=yesterday", "/v1/devices/hx/readings?limit=-1",
                 "/v1/devices/hx/readings?limit=99999999999999999999",
                 "/v1/devices/hx/readings?to=%00%ff", "/v1/devices/hx/readings?order=sideways",
                 "/v1/devices/hx/readings?channels=" + ",".join("c%d" % i for i in range(300)),
                 "/v1/devices?limit=x", "/v1/devices/hx/predictions?from=1e400",
                 "/v1/devices/hx/forecast?horizon=-5", "/v1/devices/hx/forecast?horizon=a",
                 "/v1/devices/hx/anomalies?active=maybe", "/v1/anomalies?from=%ff%fe",
                 "/v1/devices/" + "x" * 300, "/v1/devices/%00/status", "/nowhere%00"]
        for path in reads:
            res = req(d, "GET", path)
            self.assertJsonError(res, res[0])
            self.assertTrue(400 <= res[0] < 500, (path, res))
        # Raw protocol abuse: a bad chunked body, a truncated body (the client goes away), a
        # bogus request line. libmicrohttpd answers these itself (400 with its own HTML body)
        # or closes the connection; either way vigild stays up and stores nothing.
        for raw in (b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"ZZZ\r\nxx\r\n",
                    b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
                    + good_json.encode()[:100],
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + binary[:200],
                    b"GET /healthz HTTP/9.9\r\n\r\n"):
            s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
            s.close()
        # The stream: binary garbage, a line over the limit, NUL bytes; each bad line is named.
        c = d.stream_connect()
        try:
            c.send(binary.replace(b"\n", b" ") + b"\n" + b"m,device=hx v=" + b"1" * 70000 + b"\n"
                   + b"m,device=h\0x v=1 1700000000001000000\n"
                   + b"m,device=hx-ok v=2 1700000000002000000\n")
            got = c.finish()
        finally:
            c.close()
        self.assertEqual(sorted(vt.errors_of(got)), [1, 2, 3], got)
        self.assertEqual(vt.last_ok(got), 4)
        # Nothing of any bad request was stored; the daemon is healthy.
        self.assertEqual(d.device("hx")["points"], before)
        self.assertEqual(d.get("/v1/devices/hx-put")[0], 404)
        self.assertEqual(self.stored("hx-ok"), {1700000000002: {"v": 2.0}})
        self.assertEqual(d.get("/healthz")[0], 200)
        sys.stderr.write("[hostile bodies: statuses %r]\n" % dict(seen))
        d.stop()


# ============================================================================================
# Valgrind
# ============================================================================================

@unittest.skipUnless(SANITIZED and b"__asan_init" in open(vt.VIGILD, "rb").read(),
                     "vigild is not an ASan build")
class SanitizerHarness(Base):
    """The harness notices a sanitizer report: a SEGV inside an ASan vigild makes ASan print
    its report and abort, and both the exit code and the log marker fail the test."""

    def test_report_fails_the_test(self):
        self.d = vt.Vigild()
        self.d.start()
        self.d.proc.send_signal(11)  # ASan catches SIGSEGV: "ERROR: AddressSanitizer: SEGV"
        self.d.proc.wait(60)
        with self.assertRaises(AssertionError):
            self.d.check_sanitizers()
        self.d.proc = None
        vt._live.remove(self.d)


@unittest.skipUnless(os.environ.get("VIGIL_VALGRIND") == "1", "set VIGIL_VALGRIND=1 (it_valgrind)")
@unittest.skipIf(SANITIZED, "valgrind cannot run a sanitizer build")
class Valgrind(Base):
    PREFIX = ["valgrind", "--quiet", "--leak-check=full", "--errors-for-leak-kinds=definite",
              "--show-leak-kinds=definite", "--error-exitcode=99", "--num-callers=30",
              "--trace-children=no"]
    CONFIG = """
[http]
threads = 2
[storage]
readers = 2
[model]
warmup = 60
hidden = 4
retrain_every = 0
"""

    def setUp(self):
        self.d = vt.Vigild(config=config_file(self.CONFIG), prefix=self.PREFIX)
        self.d.start(timeout=120)

    def test_session_under_valgrind(self):
        d = self.d
        # Ingest: JSON, /write (plain and gzip), the stream.
        for dev in ("vg-1", "vg-2", "vg-3"):
            items = [{"device": dev, "ts": T0 + 1000 * k,
                      "values": {"a": math.sin(k / 4), "b": math.cos(k / 9)}} for k in range(80)]
            st, _, body = req(d, "POST", "/v1/readings", items, timeout=120)
            self.assertEqual(st, 200, body)
        r = d.write_lp("".join("m,device=vg-lp v=%di,w=%r %d\n" % (i, i / 3, 1000 + i)
                               for i in range(50)), precision="ms")
        self.assertEqual(r.status, 204, r)
        r = d.write_lp("m,device=vg-gz v=1 1\n", precision="s", gz=True)
        self.assertEqual(r.status, 204, r)
        c = d.stream_connect(timeout=120)
        try:
            c.send("".join("m,device=vg-stream v=%d %d\n" % (i, (T0 + i + 1) * 10 ** 6)
                           for i in range(200)) + "bad line\n")
            got = c.finish()
        finally:
            c.close()
        self.assertEqual(sorted(vt.errors_of(got)), [201])
        self.assertEqual(vt.last_ok(got), 201)
        # Errors on the way (item errors, 404, 405, 413 paths are all allocations to free).
        st, _, _ = req(d, "POST", "/v1/readings", [{"device": "vg-1", "values": {"a": "x"}}])
        self.assertEqual(st, 400)
        self.assertEqual(req(d, "GET", "/v1/devices/none")[0], 404)
        self.assertEqual(req(d, "DELETE", "/v1/readings")[0], 405)
        # Queries.
        self.assertEqual(len(d.readings("vg-stream", limit=50)), 200)
        self.assertEqual(len(d.readings("vg-lp")), 50)
        self.assertEqual(d.get_json("/v1/devices")["devices"][0]["id"], "vg-1")
        self.assertIn("vigil_ingest_readings_total", d.metrics())
        r = d.curl("PUT", "/v1/devices/vg-decl", "--data-binary", '{"site":"x"}')
        self.assertEqual(r.status, 201, r)
        self.assertEqual(d.curl("DELETE", "/v1/devices/vg-decl").status, 200)
        # The pipeline trains and scores the three devices.
        for dev in ("vg-1", "vg-2", "vg-3"):
            def served(dev=dev):
                st, _, body = req(d, "GET", "/v1/devices/%s/status" % dev, timeout=120)
                s = vt.loads(body) if st == 200 else {}
                return s if (s.get("model") or {}).get("version", 0) >= 1 else None

            s = wait_for(dev + " trained", served, 240)
            self.assertGreater(s["readings_scored"], 0, s)
        items = [{"device": "vg-1", "ts": T0 + 1000 * k, "values": {"a": 5.0, "b": -5.0}}
                 for k in range(80, 90)]
        self.assertEqual(req(d, "POST", "/v1/readings", items, timeout=120)[0], 200)
        wait_for("vg-1 scored", lambda: d.get_json("/v1/devices/vg-1/predictions?from=%d"
                                                   % (T0 + 80000))["points"], 120)
        self.assertEqual(req(d, "GET", "/v1/devices/vg-1/forecast?horizon=5", timeout=120)[0],
                         200)
        self.assertEqual(req(d, "GET", "/v1/devices/vg-1/model", timeout=120)[0], 200)
        self.assertEqual(req(d, "GET", "/v1/anomalies", timeout=120)[0], 200)
        d.stop(timeout=300)  # SIGTERM: exit code 0, else valgrind found errors (99)
        with open(d.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        self.assertNotIn("definitely lost", log)
        self.assertNotIn("Invalid read", log)
        self.assertNotIn("Invalid write", log)
        self.assertNotIn("uninitialised", log)


if __name__ == "__main__":
    vt.main()

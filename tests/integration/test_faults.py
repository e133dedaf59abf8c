#!/usr/bin/python3
"""vigild integration: the disk fills, the store's writes fail, trainings fail
(docs/reliability.md). Moved whole from test_reliability.py (session 33), whose helpers
(Base, req, wait_for, ...) these tests share; CTest it_faults runs alone (RUN_SERIAL).

- DiskFull: the data directory on a small tmpfs (mounted here; needs root, else skipped:
  test_crash.py WriteErrors covers refused writes with RLIMIT_FSIZE). Filling it makes writes
  fail with 507 and a JSON error (the stream answers "fail A B"), nothing acknowledged is
  lost, and once space returns (a filler file is deleted) writes succeed again without a
  restart. MaintenanceDiskFull: a maintenance POST or cancel the full volume could not store
  is answered 507 (not 200/204) saying what holds meanwhile; the same requests succeed once
  space returns, and a restart holds what the last successful answers said.
  MaintenanceEndDiskFull: a DELETE ending the current period that the full volume refuses
  (over and over) never shows the device out of maintenance, in its status or /metrics.
  MaintenanceWriteFailed (tests/fault/failmaint.c, VIGIL_FAILMAINT): a maintenance POST,
  cancel or end whose write fails (SQLITE_IOERR) is answered 500, "stored": false, and changes
  what the README says; the same requests succeed once writes do. A write held across SIGTERM
  is committed, never answered 503 (the API stops before the store closes).
- TrainingDiskFull, GroupTrainingDiskFull, TrainingOutOfMemory: a training that fails (its
  version cannot be stored; its allocations fail) is counted and logged once, and the model
  that served serves on; once the fault is gone a training succeeds and is stored.
"""

import collections
import http.client
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from test_crash import integrity_check  # noqa: E402
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
from test_reliability import (Base, FAILALLOC, T0, config_file, needs_failalloc,  # noqa: E402
                              req, sqlite_rows, wait_for, wait_held)


# ============================================================================================
# Disk full
# ============================================================================================

class TmpfsVolume(Base):
    """vigild (CONFIG) with its data directory on a small tmpfs of its own, which fill() fills."""
    SIZE_MB = 8
    CONFIG = "[model]\nenabled = false\n"

    def setUp(self):
        self.mnt = vt.tmpfs_mount(self, self.SIZE_MB, "; test_crash.py WriteErrors covers "
                                  "refused writes with RLIMIT_FSIZE")
        self.d = vt.Vigild(data_dir=os.path.join(self.mnt, "data"),
                           config=config_file(self.CONFIG))
        self.d.start()

    def fill(self, leave_kb):
        """A filler file taking all but about leave_kb of the volume."""
        return vt.fill_volume(self.mnt, leave_kb * 1024)


class DiskFull(TmpfsVolume):
    def test_disk_full_and_back(self):
        d = self.d
        acked, refused = [], []
        filler = self.fill(600)
        for j in range(200):
            body = json.dumps([{"device": "df", "ts": j * 1000 + i, "values": {"v": j + i / 1000,
                                                                             "w": i * 1.5}}
                               for i in range(1000)])
            st, hdrs, data = vt.http_request("POST", d.url("/v1/readings"), body=body)
            if st == 200:
                acked.append(j)
                continue
            self.assertJsonError((st, hdrs, data), 507, "no space")
            self.assertTrue(hdrs.get("retry-after"), hdrs)
            refused.append(j)
            if len(refused) >= 3:
                break
        self.assertTrue(refused, "the volume never filled: test is too weak")
        # The stream: "fail A B" for what could not be stored, never a false "ok".
        c = d.stream_connect()
        try:
            c.send("".join("df,device=df-stream v=%d %d\n" % (i, (1700000000000 + i + 1) * 10 ** 6)
                           for i in range(5000)))
            got = c.finish()
        finally:
            c.close()
        self.assertEqual(vt.errors_of(got), {})
        fails = [r for r in got if r.startswith("fail ")]
        self.assertTrue(fails, got[-3:])
        self.assertIn("space", fails[0])
        # Reads still work; the daemon is up (/ping) but says it stores nothing (/healthz 503
        # naming the storage); what was acknowledged is there.
        self.assertEqual(d.get("/ping")[0], 204)
        self.assertJsonError(d.get("/healthz"), 503, "unhealthy: storage: writes are refused")
        self.assertEqual(d.device("df")["points"], 1000 * len(acked))
        # The failed transactions counted by their reason: the full volume, not a lock.
        m = d.metrics()
        reason = 'vigil_store_commit_errors_by_reason_total{reason="%s"}'
        by = {r: vt.metric_in(m, reason % r, need=True) for r in ("nospace", "locked", "other")}
        self.assertGreater(by["nospace"], 0, m)
        self.assertEqual(by["locked"], 0, m)
        self.assertEqual(by["nospace"] + by["other"],
                         vt.metric_in(m, "vigil_store_commit_errors_total", need=True), m)
        # Space returns: writes succeed again, without a restart (within the 1 s back-off).
        os.unlink(filler)
        resumed = None
        for attempt in range(100):
            body = json.dumps([{"device": "df", "ts": 10 ** 7 + i, "values": {"v": i}}
                               for i in range(1000)])
            st, _, data = vt.http_request("POST", d.url("/v1/readings"), body=body)
            if st == 200:
                resumed = attempt
                break
            self.assertEqual(st, 507, data)
            time.sleep(0.1)
        self.assertIsNotNone(resumed, "writes did not resume after space returned")
        self.assertEqual(d.get("/healthz")[0], 200)  # healthy again by itself
        c = d.stream_connect()
        try:
            c.send("df,device=df-stream v=-1 1700000999000000000\n")
            self.assertEqual(c.wait_ok(1)[-1], "ok 1")
        finally:
            c.close()
        sys.stderr.write("[disk full: %d batches of 1000 acknowledged, then 507; resumed after "
                         "%d retries once space returned]\n" % (len(acked), resumed))
        d.stop()
        self.assertEqual(integrity_check(d.db_path), "ok")
        d.start()
        have = self.stored("df")
        self.assertEqual(len(have), 1000 * len(acked) + 1000)
        for j in acked:
            for i in range(0, 1000, 97):
                self.assertEqual(have.get(j * 1000 + i), {"v": j + i / 1000, "w": i * 1.5})
        for j in refused:
            self.assertNotIn(j * 1000, have, "a refused batch was stored")
        self.assertEqual(self.stored("df-stream").get(1700000999000), {"v": -1.0})
        d.stop()


class MaintRequests:
    """Device mx's maintenance requests, for the test cases below: maint() answers (status,
    headers, JSON or None), listed() its periods as (from_ts, until_ts, note)."""

    def maint(self, method, query="", body=None):
        st, hdrs, data = req(self.d, method, "/v1/devices/mx/maintenance" + query, body)
        return st, hdrs, vt.loads(data) if data else None

    def listed(self):
        st, _, ans = self.maint("GET")
        self.assertEqual(st, 200, ans)
        return [(m["from_ts"], m["until_ts"], m["note"]) for m in ans["periods"]]


class MaintenanceDiskFull(MaintRequests, TmpfsVolume):
    """A maintenance change the full volume could not store is answered 507 with Retry-After and
    says what holds: a POST's period is in effect (listed) until vigild restarts, a cancel is
    undone (the period still scheduled); readings are refused as before. Once space returns the
    same requests succeed, and after a restart the periods are those the last successful answers
    said. The changes are made within the store's one-second disk-full back-off after a refused
    batch, so none of them can slip into a commit that finds room in the WAL."""
    CONFIG = "[model]\nwarmup = 1000000\n"  # the pipeline knows the devices; nothing trains

    def readings(self, k, n=1000):
        body = [{"device": "df", "ts": k * 1000 + i, "values": {"v": k + i / 1000}}
                for i in range(n)]
        return req(self.d, "POST", "/v1/readings", body)

    def test_maintenance_while_disk_full(self):
        self.assertEqual(req(self.d, "POST", "/v1/readings",
                             [{"device": "mx", "ts": 1, "values": {"v": 1}}])[0], 200)
        now = int(time.time() * 1000)
        a = (now + 3600000, now + 2 * 3600000, "stored first")
        b = {"from": now + 3 * 3600000, "until": now + 4 * 3600000, "note": "while full"}
        st, _, ans = self.maint("POST", body={"from": a[0], "until": a[1], "note": a[2]})
        self.assertEqual(st, 200, ans)

        filler = self.fill(600)
        for k in range(200):
            st, hdrs, data = self.readings(k)
            if st != 200:
                self.assertJsonError((st, hdrs, data), 507, "no space")
                break
        else:
            self.fail("the volume never filled: test is too weak")
        st, hdrs, ans = self.maint("POST", body=b)
        self.assertEqual(st, 507, ans)
        self.assertTrue(hdrs.get("retry-after"), hdrs)
        self.assertIn("in effect until vigild restarts, not stored", ans["error"])
        self.assertIs(ans["stored"], False)
        self.assertEqual(ans["period"]["from_ts"], b["from"])
        st, hdrs, ans = self.maint("DELETE", "?from=%d" % a[0])
        self.assertEqual(st, 507, ans)
        self.assertTrue(hdrs.get("retry-after"), hdrs)
        self.assertIn("still scheduled (not cancelled), not stored", ans["error"])
        self.assertEqual(self.readings(1000, 10)[0], 507)  # the readings path as before
        held = [a, (b["from"], b["until"], b["note"])]
        self.assertEqual(self.listed(), held)

        os.unlink(filler)
        for _ in range(100):
            st, _, ans = self.maint("POST", body=b)  # the very same period: not a 409 with itself
            if st != 507:
                break
            time.sleep(0.1)
        self.assertEqual(st, 200, ans)
        self.assertEqual((ans["period"]["from_ts"], ans["period"]["until_ts"]),
                         (b["from"], b["until"]))
        self.assertEqual(self.listed(), held)
        self.assertEqual(self.maint("DELETE", "?from=%d" % a[0])[0], 204)
        self.d.stop()
        self.assertEqual(integrity_check(self.d.db_path), "ok")
        self.d.start()
        self.assertEqual(self.listed(), held[1:])
        self.d.stop()


class MaintenanceEndDiskFull(TmpfsVolume):
    """A DELETE ending the current period that the full volume could not store changes nothing,
    not even for a moment: while it is refused, again and again (507, "still in maintenance (not
    ended)"), threads polling the device's status and /metrics never see it out of maintenance,
    and nothing is pushed to an event stream. Each round of DELETEs runs within the store's
    one-second disk-full back-off after a refused batch, so none can slip into a commit that
    finds room in the WAL. The code before this test applied the end, then undid it when the
    commit failed: the pollers saw "maintenance": null in that gap."""
    CONFIG = "[model]\nwarmup = 1000000\n"  # the pipeline knows the devices; nothing trains
    DELETES = 100  # refused DELETEs at least: rounds go on (ROUNDS at least) until there are
    ROUNDS, MAX_ROUNDS = 4, 40  # as many at ASan's speed on a loaded machine
    ROUND_S = 0.5  # DELETEs per round, well within the 1 s back-off

    def refuse_batch(self):
        """Posts readings of another device until a batch is refused with 507 after a real try
        (the first try after the back-off), which starts a new back-off; returns that moment."""
        for k in range(400):
            t = time.monotonic()
            body = [{"device": "df", "ts": (self.k + k) * 1000 + i, "values": {"v": i}}
                    for i in range(1000)]
            st, hdrs, data = req(self.d, "POST", "/v1/readings", body)
            if st != 200:
                self.assertJsonError((st, hdrs, data), 507, "no space")
                self.k += k + 1
                return t
        self.fail("the volume never filled: test is too weak")

    def test_failed_end_never_leaves_maintenance(self):
        d, self.k = self.d, 0
        now = int(time.time() * 1000)
        self.assertEqual(req(d, "POST", "/v1/readings",
                             [{"device": "mx", "ts": now, "values": {"v": 1}}])[0], 200)
        st, _, body = req(d, "POST", "/v1/devices/mx/maintenance", {"minutes": 60, "note": "n"})
        self.assertEqual(st, 200, body)
        until = vt.loads(body)["maintenance"]["until_ts"]
        sse = subprocess.Popen(["curl", "-sN", "--max-time", "60", d.url("/v1/events")],
                               stdout=subprocess.PIPE)
        self.addCleanup(sse.kill)
        filler = self.fill(600)
        seen, stop = collections.Counter(), threading.Event()

        def poll(path, check):
            while not stop.is_set():
                st, _, data = req(d, "GET", path)
                seen[(path, st == 200 and check(data))] += 1

        in_maint = re.compile(rb"^vigil_devices_in_maintenance 1$", re.M)
        pollers = [threading.Thread(target=poll, args=(
            "/v1/devices/mx/status", lambda b: vt.loads(b)["maintenance"] is not None))
            for _ in range(3)]
        pollers.append(threading.Thread(target=poll, args=(
            "/metrics", lambda b: in_maint.search(b) is not None)))
        deletes = 0
        try:
            for t in pollers:
                t.start()
            for r in range(self.MAX_ROUNDS):
                if r >= self.ROUNDS and deletes >= self.DELETES:
                    break
                time.sleep(1.1)  # the back-off of the last refused batch is over
                t0 = self.refuse_batch()
                while time.monotonic() - t0 < self.ROUND_S:
                    st, hdrs, data = req(d, "DELETE", "/v1/devices/mx/maintenance")
                    self.assertJsonError((st, hdrs, data), 507, "still in maintenance (not ended)")
                    deletes += 1
        finally:
            stop.set()
            for t in pollers:
                t.join()
        sys.stderr.write("[failed DELETEs: %d; polls: %r]\n" % (deletes, dict(seen)))
        self.assertGreaterEqual(deletes, self.DELETES)
        self.assertEqual([k for k in seen if not k[1]], [], seen)
        self.assertEqual(tp.status(d, "mx")["maintenance"]["until_ts"], until)

        os.unlink(filler)
        for _ in range(100):
            st, _, data = req(d, "DELETE", "/v1/devices/mx/maintenance")
            if st != 507:
                break
            time.sleep(0.1)
        self.assertEqual(st, 204, data)
        self.assertIsNone(tp.status(d, "mx")["maintenance"])
        time.sleep(0.3)
        d.stop()
        # The stream (opened after the POST) heard the successful DELETE only.
        pushed = sse.communicate(timeout=30)[0].decode()
        states = re.findall(r'"state":"(\w+)"\}\}', pushed)
        self.assertEqual(states, ["past"], pushed[-2000:])


FAILMAINT = os.environ.get("VIGIL_FAILMAINT", "")


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library, set by CTest; not built in a TSan build) not found")
class MaintenanceWriteFailed(MaintRequests, Base):
    """vigild runs under tests/fault/failmaint.c's library: while its flag file exists, every
    write of the maint table fails with SQLITE_IOERR (a failed write, not a full disk). A POST
    the store could not commit is answered 500 (no Retry-After), naming the device, "not
    stored (the write failed)", "stored": false and its period, which is listed (in effect
    until vigild restarts, as the README says) but not in the database; a cancel and an end
    are answered 500 and change nothing (the period still scheduled, the device still in
    maintenance). Once the file is gone the same requests succeed, and a restart lists what the
    last successful answers said. The 503 (ERR_CLOSED, vigild stopping) cannot be reached over
    HTTP: vigild stops its API, waiting for the running handlers, before it closes the store.
    test_write_held_at_stop shows it: a POST whose write the file ("hold") holds while SIGTERM
    arrives keeps vigild from exiting, and once released is committed (listed after a restart)
    and answered 200, never 503 and never left unanswered (the stop waits for the answer to
    leave: api/server.c, api_stop; before it did, 2 runs in 10 had no answer, the connection
    closed during the stop)."""
    CONFIG = "[model]\nwarmup = 1000000\n"  # the pipeline knows the device; nothing trains

    def setUp(self):
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        self.d = vt.Vigild(config=config_file(self.CONFIG), prefix=[
            "env", "LD_PRELOAD=" + vt.preload(FAILMAINT), "VIGIL_FAILMAINT_FLAG=" + self.flag])
        self.d.start()

    def stored_rows(self):
        return sqlite_rows(self.d.db_path, "SELECT start_ms, end_ms, note FROM maint"
                           " ORDER BY start_ms")

    def assertUnstored(self, answer, holds):
        st, hdrs, ans = answer
        self.assertEqual(st, 500, ans)
        self.assertFalse(hdrs.get("retry-after"), hdrs)
        self.assertIn("maintenance: device 'mx': %s, not stored (the write failed): retry" % holds,
                      ans["error"])
        self.assertIs(ans["stored"], False)
        return ans

    def test_maintenance_write_failed(self):
        self.assertEqual(req(self.d, "POST", "/v1/readings",
                             [{"device": "mx", "ts": 1, "values": {"v": 1}}])[0], 200)
        now = int(time.time() * 1000)
        st, _, ans = self.maint("POST", body={"until": now + 1800000, "note": "current"})
        self.assertEqual(st, 200, ans)
        c = (ans["period"]["from_ts"], ans["period"]["until_ts"], "current")
        a = (now + 3600000, now + 2 * 3600000, "stored first")
        st, _, ans = self.maint("POST", body={"from": a[0], "until": a[1], "note": a[2]})
        self.assertEqual(st, 200, ans)
        b = {"from": now + 3 * 3600000, "until": now + 4 * 3600000, "note": "while failing"}
        rows_before = self.stored_rows()
        self.assertEqual(rows_before.count("\n"), 1, rows_before)  # c and a

        vt.write_file_atomic(self.flag, "")
        ans = self.assertUnstored(self.maint("POST", body=b),
                                  "the period in effect until vigild restarts")
        self.assertEqual((ans["period"]["from_ts"], ans["period"]["until_ts"]),
                         (b["from"], b["until"]))
        self.assertUnstored(self.maint("DELETE", "?from=%d" % a[0]),
                            "the period still scheduled (not cancelled)")
        self.assertUnstored(self.maint("DELETE"), "still in maintenance (not ended)")
        self.assertIsNotNone(tp.status(self.d, "mx")["maintenance"])
        held = [c, a, (b["from"], b["until"], b["note"])]
        self.assertEqual(self.listed(), held)
        self.assertEqual(self.stored_rows(), rows_before)  # nothing of the three was written
        self.assertIn("pipeline: maintenance of 'mx' not stored: ", self.d.log())

        os.unlink(self.flag)
        st, _, ans = self.maint("POST", body=b)  # the very same period: not a 409 with itself
        self.assertEqual(st, 200, ans)
        self.assertEqual((ans["period"]["from_ts"], ans["period"]["until_ts"]),
                         (b["from"], b["until"]))
        self.assertEqual(self.maint("DELETE", "?from=%d" % a[0])[0], 204)
        self.assertEqual(self.maint("DELETE")[0], 204)
        self.assertIsNone(tp.status(self.d, "mx")["maintenance"])
        after = self.listed()
        self.assertEqual([p[0] for p in after], [c[0], b["from"]])  # c ended, a cancelled
        self.assertLess(after[0][1], c[1])
        self.d.stop()
        self.assertEqual(integrity_check(self.d.db_path), "ok")
        self.d.start()
        self.assertEqual(self.listed(), after)
        self.d.stop()

    def test_write_held_at_stop(self):
        self.assertEqual(req(self.d, "POST", "/v1/readings",
                             [{"device": "mx", "ts": 1, "values": {"v": 1}}])[0], 200)
        now = int(time.time() * 1000)
        b = {"from": now + 3600000, "until": now + 2 * 3600000, "note": "held at the stop"}
        vt.write_file_atomic(self.flag, "hold")
        answer = []

        def post():
            try:
                answer.append(self.maint("POST", body=b))
            except (OSError, http.client.HTTPException) as e:  # a failure, reported below
                answer.append((None, None, "no answer: %r" % e))

        t = threading.Thread(target=post)
        t.start()
        wait_held(self.flag)
        self.assertTrue(t.is_alive(), answer)  # the write is held
        proc = self.d.proc
        proc.send_signal(signal.SIGTERM)
        wait_for("the stop begun", lambda: "stopping intake" in self.d.log(), 10)
        time.sleep(0.5)
        self.assertIsNone(proc.poll())  # the stop waits for the handler
        self.assertTrue(t.is_alive(), answer)
        os.unlink(self.flag)
        t.join(30)
        st, hdrs, ans = answer[0]
        self.assertEqual(st, 200, ans)  # committed and answered: not a 503, not a closed socket
        self.assertNotIn("stored", ans)
        # A second SIGTERM while the stop goes on (here while storage flushes and closes, as a
        # rule) is logged, not the end of vigild: the stop still exits 0.
        self.d.stop()
        self.d.start()
        self.assertEqual(self.listed(), [(b["from"], b["until"], b["note"])])
        self.d.stop()


# ============================================================================================
# Trainings that fail
# ============================================================================================

class TrainingFaults:
    """Devices with a model whose retraining is made to fail, then to succeed (mixed into a
    TestCase whose setUp started self.d with CONFIG): one device, or the members of GROUP, which
    train together (one group training, a version for each member). A training is asked for
    through the API only (retrain_every = 0), so the test knows how many ran. The model that
    serves when they run is an LSTM of random weights given by PUT: any training validates
    better and swaps, so a failed one that was not undone would show in what serves."""
    CONFIG = "[model]\nwarmup = 200\nretrain_every = 0\nhidden = %d\n" % tp.HIDDEN
    DEVS = ("tf",)
    GROUP = None
    CH = ("x", "y", "z")

    def post(self, k0, n):
        """POSTs readings k0 .. k0 + n - 1 of an oscillation for every device (the linear model
        and an LSTM predict it, persistence does not); returns the HTTP status."""
        items = [{"device": dev, "ts": T0 + 1000 * k,
                  "values": {"x": math.sin(0.2 * k), "y": math.cos(0.2 * k),
                             "z": 0.5 * math.sin(0.2 * k) + 2 + i}}
                 for k in range(k0, k0 + n) for i, dev in enumerate(self.DEVS)]
        st, _, body = req(self.d, "POST", "/v1/readings", items)
        self.assertIn(st, (200, 507), body)
        return st

    def failures(self):
        return int(self.d.metric("vigil_model_training_failures_total", need=True))

    def model(self, dev, known=True):
        """GET .../model of dev; None when the device is not known yet and known is False."""
        st, _, body = req(self.d, "GET", "/v1/devices/%s/model" % dev)
        if st == 404 and not known:
            return None
        self.assertEqual(st, 200, body)
        return vt.loads(body)

    def models(self, known=True):
        """{device: GET .../model} once no device is training, else None."""
        ms = {dev: self.model(dev, known) for dev in self.DEVS}
        return None if any(m is None or m["training"] for m in ms.values()) else ms

    def idle(self):
        """The models once none is training and no training is queued (a group's members may
        each have asked for one), else None."""
        return self.models(False) if self.d.metric("vigil_train_queue_jobs") == 0 else None

    def give_model(self, n=400):
        """Feeds n readings, waits for the first model, then PUTs random LSTM weights to every
        device; returns {device: GET .../model} once those versions are in the database."""
        for dev in self.DEVS if self.GROUP else ():
            r = self.d.curl("PUT", "/v1/devices/%s" % dev, "-H", "Content-Type: application/json",
                            "--data-binary", json.dumps({"group": self.GROUP}))
            self.assertIn(r.status, (200, 201), r)
        self.assertEqual(self.post(0, n), 200)
        wait_for("the first model", lambda: (lambda ms: ms if ms and all(
            m["versions"] for m in ms.values()) else None)(self.idle()), 120)
        for dev in self.DEVS:
            r = self.d.curl("PUT", "/v1/devices/%s/model/weights" % dev, "-H",
                            "Content-Type: application/octet-stream", "--data-binary", "@-",
                            stdin=tp.st_build(tp.lstm_tensors(3, tp.HIDDEN, 3, 5)))
            self.assertEqual(r.status, 200, r)
        ms = self.models()
        for dev, m in ms.items():
            self.assertEqual(m["serving"]["kind"], "lstm", m)
            self.wait_stored(dev, m["serving"]["version"])
        return ms

    def wait_stored(self, dev, version):
        wait_for("version %d of %s in the database" % (version, dev), lambda: sqlite_rows(
            self.d.db_path, "SELECT count(*) FROM models m JOIN devices d ON d.id = m.device_id "
            "WHERE d.name = '%s' AND m.version = %d" % (dev, version)) == "1", 30)

    def retrain(self, queued_ok=False):
        """Asks for a training of the first device (of its group, when it has one); forced:
        under the random LSTM its readings may hold an anomaly episode open (unforced, 409
        since session 65). Returns whether the answer ended one: that ending is an acceptance,
        whose training is asked again at the next reading when the one asked now has ended
        (README "anomalies", detector_accept), so one more training follows the next readings.
        queued_ok: a 409 "already queued or running" is taken as the retrain merged into that
        training (pipeline_retrain's ERR_BUSY: it joins it), returning False."""
        st, _, body = req(self.d, "POST",
                          "/v1/devices/%s/model/retrain?force=true" % self.DEVS[0])
        if queued_ok and st == 409 and b"is already queued or running" in body:
            return False
        self.assertEqual(st, 202, body)
        return "ended" in vt.loads(body)

    def fail_once(self, m0):
        """Asks for a training that must fail: it is counted and logged once per device, and
        the model that served serves on (same version, same history, not learning), scoring."""
        f0 = self.failures()
        want, logged = f0 + len(self.DEVS), {dev: self.logged(dev) for dev in self.DEVS}
        self.ended = self.retrain()
        wait_for("the failed training to be counted", lambda: self.failures() >= want, 120)
        m1 = wait_for("the training to end", self.models, 60)
        for dev in self.DEVS:
            self.assertEqual(m1[dev]["serving"], m0[dev]["serving"], dev)
            self.assertEqual(m1[dev]["versions"], m0[dev]["versions"],
                             "a failed training left a version of %s" % dev)
            st = self.d.get_json("/v1/devices/%s/status" % dev)
            self.assertEqual(st["model"]["version"], m0[dev]["serving"]["version"], st)
            self.assertNotEqual(st["state"], "learning", st)
            self.assertEqual(self.logged(dev), logged[dev] + 1, self.d.log())
        # One request, one failure per device: it is not retried in a loop.
        time.sleep(1.5)
        self.assertEqual(self.failures(), f0 + len(self.DEVS))
        return self.failures()

    def logged(self, dev):
        return self.d.log().count("pipeline: training for device '%s' failed: " % dev)

    def succeed(self, m0, f):
        """Asks for a training that must succeed now: a new version of every device, listed,
        serving and stored (one version for a group's members), and no further failure."""
        top = max(v["version"] for m in m0.values() for v in m["versions"])
        # A failed training that had ended an episode (fail_once) was asked again by the first
        # reading after it: that one ran once the fault was gone. When it gave every device a
        # new version, it is the training this proves; else one is asked for now.
        # The idle moment can come before the readings space_back posted are all scored: one
        # scored after it asks that training again, and the retrain below then finds it queued
        # (409, merged: review of ops66 saw it once in 4 runs, "the retrain joins it" logged).
        # The training queued either way is the one waited for.
        ms = wait_for("no training queued or running", self.idle, 120)
        if not all(any(v["version"] > top for v in m["versions"]) for m in ms.values()):
            self.retrain(queued_ok=True)
        ms = wait_for("a new version", lambda: (lambda ms: ms if ms and all(any(
            v["version"] > top for v in m["versions"]) for m in ms.values()) else None)(
                self.models()), 120)
        for dev, m in ms.items():
            new = max(v["version"] for v in m["versions"])
            self.assertEqual(m["serving"]["version"], new, "the random LSTM still serves: %r" % m)
            self.wait_stored(dev, new)
        self.assertEqual(len({m["serving"]["version"] for m in ms.values()}), 1, ms)
        self.assertEqual(self.failures(), f)
        return ms

class FleetDiskFull(TmpfsVolume):
    """read66b's finding 7 (session 66): a full disk fails every device of a fleet at once.
    The warnings a device can each cause (a detector not saved, a training failed) are said at
    most 5 times a minute, the later ones counted, their count said once the minute is over or
    at the stop (task ops67); the stop's summary counts every detector it
    tried and those lost as its closing error line does (before: one line per device, 200 at
    the stop, and a summary of 85 detectors beside "200 detectors' state could not be saved")."""
    CONFIG = ""  # the model on: each device has a detector to save
    DEVICES = 200

    def test_fleet_on_a_full_disk_logs_a_bounded_number_of_lines(self):
        d = self.d
        t0 = 1_700_000_000_000
        refused = 0
        for b in range(400):
            lines = "\n".join("m,device=d%d a=%d,b=%d %d" % (dev, b * 25 + k, k, t0 + (b * 25 + k) * 1000)
                              for k in range(25) for dev in range(self.DEVICES))
            st, _, body = vt.http_request("POST", d.url("/write?db=x&precision=ms"), body=lines)
            if st == 507:
                refused += 1
                if refused >= 3:
                    break
            else:
                self.assertEqual(st, 204, body)
        self.assertEqual(refused, 3, "the volume never filled: test is too weak")
        failed = int(d.metric("vigil_model_training_failures_total", need=True))
        d.stop(codes=(1,))  # the stop's saves are lost: exit 1, as documented
        log = d.log()
        # The lines the limiter held are counted by a line of their own once their minute is
        # over, or at the stop (task ops67: before, only a later line of the same kind said
        # them, and a flood that stopped left them unsaid).
        said = log.count("pipeline: detector of '")
        self.assertLessEqual(said, 5, log)
        held = [int(n) for n in re.findall(r"pipeline: detectors not saved: (\d+) more since "
                                           r"the last one logged, not logged one by one", log)]
        self.assertEqual(said, 5, "fewer than 6 saves refused: test is too weak\n" + log)
        self.assertGreaterEqual(len(held), 1, log)  # more than one when a minute ended between
        said = log.count("pipeline: training for device '")
        self.assertLessEqual(said, 5, log)
        held_t = [int(n) for n in re.findall(r"pipeline: failed trainings: (\d+) more since the "
                                             r"last one logged", log)]
        self.assertGreaterEqual(said + sum(held_t), failed, log)  # each one, said or counted
        m = re.search(r"the stop's last scoring and saves \((\d+) detectors, (\d+) of them not "
                      r"saved, ", log)
        self.assertIsNotNone(m, log)
        self.assertEqual(int(m.group(1)), self.DEVICES, log)
        lost = re.search(r"stopped, but (\d+) detectors' state could not be saved", log)
        self.assertIsNotNone(lost, log)
        self.assertEqual(lost.group(1), m.group(2), log)
        self.assertLessEqual(5 + sum(held), int(lost.group(1)), log)


class TrainingDiskFull(TrainingFaults, TmpfsVolume):
    """The disk fills while the model is enabled: readings are refused (507), what was
    acknowledged stays, a training then fails (its version cannot be stored), and the device
    serves on with the model it had; once space returns a training succeeds and is stored."""

    def test_training_while_disk_full(self):
        m0 = self.give_model()
        filler, k, f = self.fill_while_scoring(m0)
        self.space_back(filler, k)
        self.succeed(m0, f)
        self.d.stop()
        self.assertEqual(integrity_check(self.d.db_path), "ok")

    def fill_while_scoring(self, m0):
        """Fills the volume while readings are taken (fewer than accept_after (500) under the
        random LSTM: their anomaly is not accepted as the new regime, which would ask for a
        training of its own), then lets a training fail; returns (filler, k, failures)."""
        filler = self.fill(32)
        k, acked = 400, 400
        for _ in range(9):
            if self.post(k, 50) != 200:
                break
            k, acked = k + 50, acked + 50
        else:
            self.fail("the volume never filled: test is too weak")
        self.fill(0)  # the last pages too: no commit can succeed now
        self.assertEqual(self.post(k, 10), 507)
        f = self.fail_once(m0)
        self.assertJsonError(self.d.get("/healthz"), 503, "unhealthy: storage: writes are refused")
        for dev in self.DEVS:
            self.assertEqual(self.d.device(dev)["points"], acked)
            preds = self.d.get_json("/v1/devices/%s/predictions?limit=5" % dev)
            self.assertTrue(preds["points"], preds)
        return filler, k, f

    def space_back(self, filler, k):
        os.unlink(filler)
        for _ in range(100):
            if self.post(k, 10) == 200:
                return
            time.sleep(0.1)
        self.fail("writes did not resume after space returned")


class GroupTrainingDiskFull(TrainingDiskFull):
    """The same for a group of two devices (README "groups"): the group's training runs on both
    windows and applies to both members; neither version can be stored, so both members'
    trainings are undone, each counted and logged once, and both serve on with the model they
    had; once space returns the group's training gives both one new version, stored."""
    DEVS = ("tga", "tgb")
    GROUP = "tg"


@needs_failalloc
class TrainingOutOfMemory(TrainingFaults, Base):
    """vigild runs under tests/fault/failalloc.c's library: while its flag file exists, the
    allocations on a training thread of at least the size the file holds fail. 4096 bytes: the
    training window's (24 KB here); 32768: the job's own (its copy of the model, its training
    buffers). Each time a training fails (counted once, logged with the device and the reason)
    and the device serves on with the model it had, readings still taken and scored; once the
    file is gone a training succeeds and is stored."""

    def setUp(self):
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        self.d = vt.Vigild(config=config_file(self.CONFIG), prefix=[
            "env", "LD_PRELOAD=" + FAILALLOC, "VIGIL_FAILALLOC_FLAG=" + self.flag])
        self.d.start()

    def test_training_out_of_memory(self):
        m0 = self.give_model()
        k = 400
        for size, reason in ((4096, "its window not read: out of memory"),
                             (32768, "out of memory")):
            vt.write_file_atomic(self.flag, str(size))
            f = self.fail_once(m0)
            self.assertIn("training for device '%s' failed: %s;" % (self.DEVS[0], reason),
                          self.d.log())
            self.assertEqual(self.post(k, 50), 200)
            k += 50
            wait_for("the new readings scored", lambda: self.d.get_json(
                "/v1/devices/%s/status" % self.DEVS[0])["readings_scored"] >= k, 30)
            # A forced retrain that ended an episode: its acceptance's training, asked again
            # by those readings, failed the same way (once: not in a loop); else none ran.
            wait_for("no training queued or running", self.idle, 120)
            self.assertEqual(self.failures(), f + (len(self.DEVS) if self.ended else 0),
                             self.d.log())
            f = self.failures()
        os.unlink(self.flag)
        self.succeed(m0, f)
        self.d.stop()


if __name__ == "__main__":
    vt.main()

#!/usr/bin/env python3
"""/healthz, /health and /metrics' vigil_healthy tell whether vigild stores what it is sent
(daemon/health.c), with curl and urllib against the real vigild:
- FailingCommits: the store's commits fail (tests/fault/failmaint.c fails the readings log's
  INSERT, as a full or failing disk would): /healthz answers 503 naming the storage, /health
  "fail" with its storage check failing, vigil_healthy 0; once the fault clears, the next
  commit makes all three healthy again by themselves.
- RefusedWritesExpire: a circuit breaker, not a latch: with the fault still on and nothing
  written, /healthz is 200 again once the last failure is older than http.health_stall_s (2 s
  here), and 503 again after the next refused write.
- MapsReloadFailing: the write fails and so does the store's reload of its device maps after
  it (failmaint.c fails both statements): /healthz stays 503 naming the reload after the
  failed write stops counting, and all three are healthy again once the reload succeeds.
- StalledWriter: another connection holds SQLite's write lock (as test_watchdog.py), so the
  writer cannot finish a transaction while a reading waits; without a systemd watchdog
  /healthz goes 503 naming the stall after http.health_stall_s (1 s here, set by a reload from
  3600 s: the 503 within the test's 9 s shows the reload applied it), and 200 again once the
  lock goes and the reading is stored.
"""

import json
import os
import sqlite3
import sys
import threading
import time
import unittest

import test_ops
import vigiltest as vt
from vigiltest import Vigild, mkdtemp, write_file

FAILMAINT = os.environ.get("VIGIL_FAILMAINT", "")


def health(d):
    """GET /health with urllib: (status, parsed body)."""
    st, _, body = vt.http_request("GET", d.url("/health"))
    return st, json.loads(body)


def wait_until(what, cond, timeout=20):
    """Polls cond() (bounded) until it returns a true value; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("not within %ds: %s" % (timeout, what))
        time.sleep(0.05)


def healthz_503(d, contains):
    """The /healthz answer (curl) when it is a 503 whose error contains contains, else None."""
    res = d.curl("GET", "/healthz")
    if res.status == 503 and contains in res.json().get("error", ""):
        return res
    return None


def vigil_healthy(d):
    return int(d.metric("vigil_healthy", need=True))


class HealthCase(unittest.TestCase):
    """Each test starts its own vigild as self.d in setUp; run() attaches its log to a failure,
    then removes its directory."""

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        d = getattr(self, "d", None)
        if d is not None:
            if result is not None and len(result.failures) + len(result.errors) > before:
                sys.stderr.write("\n%s\n" % d.log())
            d.cleanup()
        return out

    def start_failing(self, conf="", sql="INSERT INTO readings_log("):
        """Starts self.d (the model off, conf before it) with failmaint.c failing the
        statements starting with sql ('|' between prefixes) while the file self.flag exists."""
        self.flag = os.path.join(mkdtemp(), "fail")
        cfg = write_file(os.path.join(mkdtemp(), "vigild.conf"),
                         conf + "[model]\nenabled = false\n")
        self.d = Vigild(config=cfg, prefix=[
            "env", "LD_PRELOAD=" + vt.preload(FAILMAINT), "VIGIL_FAILMAINT_FLAG=" + self.flag,
            "VIGIL_FAILMAINT_SQL=" + sql])
        self.d.start()

    def assertStorageFails(self, reason):
        """/health 503 "fail" with its one check, storage, failing for reason; vigil_healthy 0."""
        st, body = health(self.d)
        self.assertEqual((st, body["status"]), (503, "fail"), body)
        self.assertTrue(body["message"].startswith("unhealthy: storage: " + reason), body)
        self.assertEqual(len(body["checks"]), 1, body)
        check = body["checks"][0]
        self.assertEqual((check["name"], check["status"]), ("storage", "fail"), body)
        self.assertTrue(check["message"].startswith(reason), body)
        self.assertEqual(vigil_healthy(self.d), 0)

    def assertHealthy(self):
        res = self.d.curl("GET", "/healthz")
        self.assertEqual(res.status, 200, res)
        st, body = health(self.d)
        self.assertEqual((st, body["status"]), (200, "pass"), body)
        self.assertEqual(body["checks"], [{"name": "storage", "status": "pass"}], body)
        self.assertEqual(vigil_healthy(self.d), 1)


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library) is not set: run this through ctest -R it_health (not built "
                     "under TSan)")
class FailingCommits(HealthCase):
    def setUp(self):
        self.start_failing()

    def test_failing_commits_then_recovery(self):
        r = self.d.post_json({"device": "h", "ts": 1000, "values": {"v": 1}})
        self.assertEqual(r.status, 200, r)
        self.assertHealthy()

        vt.write_file_atomic(self.flag, "fail")
        r = self.d.post_json({"device": "h", "ts": 2000, "values": {"v": 2}})
        self.assertGreaterEqual(r.status, 500, r)
        res = wait_until("/healthz 503 naming the storage",
                         lambda: healthz_503(self.d, "unhealthy: storage: writes are refused"))
        self.assertIn("failed (I/O error", res.json()["error"])
        self.assertStorageFails("writes are refused")
        # Reads still answer: health is not a gate on the API.
        self.assertEqual(self.d.get("/v1/devices/h")[0], 200)

        os.unlink(self.flag)
        # The fault is gone; the next write commits (after the store's reload a 503 may come
        # first: retried, bounded) and health returns by itself.
        wait_until("a write stored again", lambda: self.d.post_json(
            {"device": "h", "ts": 3000, "values": {"v": 3}}).status == 200)
        self.assertHealthy()
        self.d.stop()


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT is not set (see FailingCommits)")
class RefusedWritesExpire(HealthCase):
    """Refused writes are a circuit breaker, not a latch (review): a vigild a load balancer stops
    sending writes to would otherwise never commit again and stay 503 for good. With the fault
    still on and nothing written, /healthz turns 200 once the last failure is older than the
    bound (http.health_stall_s, 2 s here); the next refused write makes it 503 again. Waits are
    polls bounded far above the bound, and the 503 is looked for after each of a bounded run of
    refused writes, so a slow machine only takes more turns."""

    def setUp(self):
        self.start_failing("[http]\nhealth_stall_s = 2\n")
        self.ts = 1000

    def refuse_until_503(self):
        """Posts refused writes until /healthz is 503 right after one (bounded); returns it."""
        def once():
            self.ts += 1000
            r = self.d.post_json({"device": "e", "ts": self.ts, "values": {"v": 1}})
            self.assertGreaterEqual(r.status, 500, r)
            return healthz_503(self.d, "unhealthy: storage: writes are refused")
        return wait_until("/healthz 503 after a refused write", once, timeout=30)

    def test_refused_writes_expire(self):
        r = self.d.post_json({"device": "e", "ts": self.ts, "values": {"v": 1}})
        self.assertEqual(r.status, 200, r)
        self.assertHealthy()

        vt.write_file_atomic(self.flag, "fail")
        res = self.refuse_until_503()
        self.assertIn("(counts for 2.0 s)", res.json()["error"])
        # Nothing more is written and the fault stays: healthy again once the bound has passed.
        wait_until("/healthz 200 with the fault on and no writes",
                   lambda: self.d.curl("GET", "/healthz").status == 200, timeout=30)
        self.assertTrue(os.path.exists(self.flag))
        self.assertHealthy()
        # The next refused write opens the breaker again.
        self.refuse_until_503()
        self.assertEqual(vigil_healthy(self.d), 0)

        os.unlink(self.flag)
        wait_until("a write stored again", lambda: self.d.post_json(
            {"device": "e", "ts": 99000, "values": {"v": 3}}).status == 200)
        self.assertHealthy()
        self.d.stop()


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT is not set (see FailingCommits)")
class MapsReloadFailing(HealthCase):
    """The storage check fails while the store's reload of its device maps keeps failing (reads
    answer 503 meanwhile), after the refused write that started it no longer counts. failmaint.c
    fails the readings log's INSERT (the write fails, so the store reloads its maps) and the
    reload's first statement (SELECT ... FROM devices): no test-only path in vigild. With
    http.health_stall_s = 1 the failed write counts for 1 s; the reload is retried when idle
    (1 s, doubling to 4 s) and keeps failing, so /healthz stays 503 naming the reload alone
    (fails without the maps rule: it would be 200 once the write is 1 s old). Once the fault
    clears the next retry succeeds and all three are healthy again, nothing written meanwhile."""

    def setUp(self):
        self.start_failing("[http]\nhealth_stall_s = 1\n",
                           "INSERT INTO readings_log(|SELECT id, name, first_ts,")

    def test_reload_failing_then_recovery(self):
        r = self.d.post_json({"device": "m", "ts": 1000, "values": {"v": 1}})
        self.assertEqual(r.status, 200, r)
        self.assertHealthy()

        vt.write_file_atomic(self.flag, "fail")
        r = self.d.post_json({"device": "m", "ts": 2000, "values": {"v": 2}})
        self.assertGreaterEqual(r.status, 500, r)

        def reload_alone():
            res = healthz_503(self.d, "unhealthy: storage: reloading the device maps failed")
            return res if res and "writes are refused" not in res.json()["error"] else None
        res = wait_until("/healthz 503 naming the failing reload alone", reload_alone)
        self.assertRegex(res.json()["error"], r"^unhealthy: storage: reloading the device maps "
                         r"failed \d+ times? in a row: reads answer 503 until it succeeds$")
        self.assertStorageFails("reloading the device maps failed")
        # As the message says: reads of the counters answer 503 meanwhile.
        self.assertEqual(self.d.get("/v1/devices/m")[0], 503)

        os.unlink(self.flag)
        # Nothing written: the idle writer's next retry (within 4 s) reloads the maps.
        wait_until("/healthz 200 again", lambda: self.d.curl("GET", "/healthz").status == 200)
        self.assertHealthy()
        self.assertEqual(self.d.get("/v1/devices/m")[0], 200)
        r = self.d.post_json({"device": "m", "ts": 3000, "values": {"v": 3}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual([p["ts"] for p in self.d.readings("m")], [1000, 3000])
        self.d.stop()


class StalledWriter(HealthCase):
    def setUp(self):
        cfg = write_file(os.path.join(mkdtemp(), "vigild.conf"),
                         "[http]\nhealth_stall_s = 3600\n[model]\nenabled = false\n")
        self.d = Vigild(config=cfg)
        self.d.start()

    def test_stall_without_watchdog(self):
        self.assertNotIn("NOTIFY_SOCKET", os.environ)
        write_file(self.d.config, "[http]\nhealth_stall_s = 1\n[model]\nenabled = false\n")
        test_ops.hup(self.d, r"configuration reloaded; applied: http.health_stall_s")
        r = self.d.post_json({"device": "s", "ts": 1000, "values": {"v": 1}})
        self.assertEqual(r.status, 200, r)
        self.assertHealthy()

        lock = sqlite3.connect(self.d.db_path, timeout=5, isolation_level=None)
        self.addCleanup(lock.close)
        lock.execute("BEGIN IMMEDIATE")
        res = {}

        def post():
            res["r"] = self.d.post_json({"device": "s", "ts": 2000, "values": {"v": 2}})

        th = threading.Thread(target=post)
        th.start()
        try:
            # The writer waits in SQLite's busy handler (10 s) before it would fail the
            # transaction: the stall shows well before that, after the 1 s bound.
            got = wait_until("/healthz 503 naming the stalled writer", lambda: healthz_503(
                self.d, "unhealthy: storage: the storage writer has finished no transaction"),
                timeout=9)
            self.assertIn("(bound 1.0 s)", got.json()["error"])
            st, body = health(self.d)
            self.assertEqual((st, body["checks"][0]["status"]), (503, "fail"), body)
            self.assertIn("finished no transaction", body["checks"][0]["message"])
            self.assertEqual(vigil_healthy(self.d), 0)
        finally:
            lock.execute("ROLLBACK")
            th.join(60)
        self.assertFalse(th.is_alive())
        self.assertEqual(res["r"].status, 200, res)
        wait_until("/healthz 200 again", lambda: self.d.curl("GET", "/healthz").status == 200)
        self.assertHealthy()
        self.assertEqual([p["ts"] for p in self.d.readings("s")], [1000, 2000])
        self.d.stop()


if __name__ == "__main__":
    unittest.main()

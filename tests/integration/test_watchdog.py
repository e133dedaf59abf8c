#!/usr/bin/env python3
"""The systemd watchdog covers the storage writer, and a long start-up extends systemd's timeout.

On a fake $NOTIFY_SOCKET (test_ops.NotifySocket):
- Stalled writer: another process holds SQLite's write lock on vigild's database (what an
  operator's `sqlite3` shell left inside a transaction does); vigild's writer then waits in
  SQLite's busy handler, unable to commit. No fault injection: the stall is real. While
  readings wait and no transaction finishes for 4 watchdog periods, vigild stops sending
  WATCHDOG=1 and logs why; once the lock goes, the writer commits, the waiting reading is
  acknowledged and the pings resume.
- Slow start: a restart that must catch up detectors on many stored readings sends
  EXTEND_TIMEOUT_USEC= before READY=1, at once and then every 2 s while it works.
"""

import os
import sqlite3
import sys
import threading
import time
import unittest

import vigiltest as vt
from vigiltest import Vigild, mkdtemp, write_file
from test_ops import NotifySocket, start_with_env


def wait_log(d, text, timeout=20):
    deadline = time.monotonic() + timeout
    while text not in d.log():
        if time.monotonic() > deadline:
            raise AssertionError("no %r in the log within %ds\n%s" % (text, timeout, d.log()))
        time.sleep(0.05)
    return time.monotonic()


class TestWriterWatchdog(unittest.TestCase):
    def test_stalled_writer_stops_pings(self):
        ns = NotifySocket()
        cfg = write_file(os.path.join(mkdtemp(), "vigild.conf"),
                         "[model]\nenabled = false\n")
        d = Vigild(config=cfg)
        lock = None
        try:
            # WATCHDOG_USEC 0.5 s: pings every 0.25 s; the writer bound is 4 periods, 2 s.
            start_with_env(d, {"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "500000"})
            ns.wait_for("READY", "1")
            # Under steady ingest the pings keep their period.
            t_load = time.monotonic()
            for k in range(30):
                r = d.post_json([{"device": "wd", "ts": 1000 + k * 10 + i, "values": {"v": i}}
                                 for i in range(10)])
                self.assertEqual(r.status, 200, r)
                time.sleep(0.05)
            time.sleep(0.6)
            pings = [t for t in ns.times("WATCHDOG") if t > t_load]
            self.assertGreaterEqual(len(pings), 4, pings)
            gaps = [b - a for a, b in zip(pings, pings[1:])]
            self.assertLess(max(gaps), 1.0, gaps)

            # Hold the write lock, then write: the reading waits for the writer.
            lock = sqlite3.connect(d.db_path, timeout=5, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
            t_lock = time.monotonic()
            res = {}

            def post():
                res["r"] = d.post_json({"device": "wd-stalled", "ts": 5000, "values": {"v": 1}})
                res["t"] = time.monotonic()

            th = threading.Thread(target=post)
            th.start()
            t_quiet = wait_log(d, "watchdog: not pinging systemd: the storage writer has "
                                  "finished no transaction for", timeout=15)
            # Progress is sampled every ping (0.25 s), so the bound counts from the last sample
            # before the write: up to one ping early.
            self.assertGreaterEqual(t_quiet - t_lock, 1.5, "withheld well before the 2 s bound")
            # vigild logs, then sends the STATUS: wait (bounded) for that message itself, not
            # for any STATUS (an earlier one matched, and the check raced the datagram).
            deadline = time.monotonic() + 5
            while not any(kv.get("STATUS", "").startswith("unhealthy, watchdog pings withheld")
                          for _, kv in list(ns.msgs)):
                self.assertLess(time.monotonic(), deadline, [m[1] for m in ns.msgs][-5:])
                time.sleep(0.02)
            # Stay stalled well past the bound (the writer's busy timeout is 10 s): no ping.
            time.sleep(2.5)
            self.assertTrue(th.is_alive(), "the write finished while the lock was held")
            t_release = time.monotonic()
            quiet = [t for t in ns.times("WATCHDOG") if t_quiet + 0.3 < t < t_release]
            self.assertEqual(quiet, [], "pings while the writer was stalled")
            lock.execute("ROLLBACK")
            lock.close()
            lock = None
            th.join(30)
            self.assertEqual(res["r"].status, 200, res["r"])
            wait_log(d, "watchdog: healthy again, pinging systemd", timeout=10)
            deadline = time.monotonic() + 5
            while not [t for t in ns.times("WATCHDOG") if t > t_release]:
                self.assertLess(time.monotonic(), deadline, "pings did not resume")
                time.sleep(0.05)
            self.assertEqual(len(d.readings("wd-stalled")), 1)
            pings = ns.times("WATCHDOG")
            gap = max(b - a for a, b in zip(pings, pings[1:]))
            sys.stderr.write("\nwriter stalled %.1f s: pings withheld after %.1f s, longest gap "
                             "between pings %.1f s, write acknowledged %.1f s after the release\n"
                             % (t_release - t_lock, t_quiet - t_lock, gap, res["t"] - t_release))
            # Idle afterwards: nothing waits, so pings go on.
            time.sleep(1.5)
            late = [t for t in ns.times("WATCHDOG") if t > time.monotonic() - 1.2]
            self.assertGreaterEqual(len(late), 3, late)
            d.stop()
        finally:
            if lock is not None:
                lock.close()
            ns.close()
            d.cleanup()


class TestStartupExtension(unittest.TestCase):
    DEVICES = 4
    LATER = 120000  # readings per device stored after the detectors were saved

    def test_slow_start_extends_timeout(self):
        tmp = mkdtemp()
        # kind lstm: a large LSTM per device whatever its rows (auto trains none on 67 rows of
        # two channels), so the start's catch-up is slow enough to need the extensions
        base = "[model]\nwarmup = 100\nretrain_every = 0\nhidden = 160\nkind = lstm\n"
        on = write_file(os.path.join(tmp, "on.conf"), base)
        off = write_file(os.path.join(tmp, "off.conf"), base + "enabled = false\n")
        data = os.path.join(tmp, "data")
        # 1. Train a detector per device, and save them (clean stop).
        d = Vigild(data_dir=data, config=on)
        d.start()
        ts0 = 1_700_000_000_000
        for k in range(self.DEVICES):
            lines = "".join("m,device=x%d a=%f,b=%f %d\n" % (k, (i % 50) / 10, (i % 7) / 3,
                                                             ts0 + i * 1000)
                            for i in range(400))
            self.assertEqual(d.write_lp(lines, precision="ms").status, 204)
        deadline = time.monotonic() + 300  # 4 LSTMs of 160 under ASan and load: > 120 s seen
        while True:
            states = [(d.get_json("/v1/devices/x%d/status" % k).get("model") or {}).get("version")
                      for k in range(self.DEVICES)]
            if all(v and v >= 1 for v in states):
                break
            self.assertLess(time.monotonic(), deadline, "detectors did not train: %r" % states)
            time.sleep(0.5)
        d.stop()
        # 2. Without the pipeline: many more readings, which the detectors have not seen.
        d.config = off
        d.start()
        for k in range(self.DEVICES):
            for c in range(0, self.LATER, 20000):  # 20,000 lines per request
                lines = "".join("m,device=x%d a=%f,b=%f %d\n"
                                % (k, (i % 50) / 10, (i % 7) / 3, ts0 + (400 + i) * 1000)
                                for i in range(c, c + 20000))
                self.assertEqual(d.write_lp(lines, precision="ms").status, 204)
        d.stop()
        # 3. With the pipeline and systemd: the start catches up on every device.
        ns = NotifySocket()
        try:
            d.config = on
            t0 = time.monotonic()
            start_with_env(d, {"NOTIFY_SOCKET": ns.path}, timeout=300)
            ready = ns.wait_for("READY", "1", timeout=300)
            t_ready = ns.msgs[ready][0]
            ext = [(t, kv) for t, kv in ns.msgs[:ready] if "EXTEND_TIMEOUT_USEC" in kv]
            sys_msg = "start-up %.1f s, extensions at %r" % (
                t_ready - t0, [round(t - t0, 2) for t, _ in ext])
            sys.stderr.write("\n%s\n" % sys_msg)
            self.assertGreaterEqual(t_ready - t0, 3.0, "start-up too quick to test: " + sys_msg)
            self.assertTrue(all(kv["EXTEND_TIMEOUT_USEC"] == "10000000" for _, kv in ext))
            self.assertTrue(ext[0][1]["STATUS"].startswith("starting: "), ext[0][1])
            self.assertTrue(any(kv["STATUS"].startswith("starting: restoring detectors")
                                for _, kv in ext), ext)
            # At once, then every 2 s until READY: no gap near the 10 s they grant.
            times = [t0] + [t for t, _ in ext] + [t_ready]
            self.assertGreaterEqual(len(ext), int((t_ready - t0) / 2.0), sys_msg)
            self.assertLess(max(b - a for a, b in zip(times, times[1:])), 5.0, sys_msg)
            # None after READY=1 (until STOPPING).
            n = len(ns.msgs)
            time.sleep(2.5)
            self.assertFalse([kv for _, kv in ns.msgs[ready + 1:n] if "EXTEND_TIMEOUT_USEC" in kv])
            self.assertIn("caught up", d.log())
            d.stop()
        finally:
            ns.close()
            d.cleanup()


if __name__ == "__main__":
    vt.main()

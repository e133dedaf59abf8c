#!/usr/bin/python3
"""vigild integration: storage.retention. Readings written while no retention is set are
removed by the sweep at the next start with `retention = 1d` (whole old chunks; newer ones and
the pending newest readings stay), as the API and /metrics show; writes older than the horizon
are refused naming the item or line (JSON, /write, stream) while the rest is stored; with a
short retention, readings that age past it while the daemon runs go with a periodic sweep; a
SIGHUP applies a new retention without a restart, a shorter one deleting from the next sweep,
a longer one keeping (test_sighup_applies_retention); a bad value stops start-up naming the key."""

import os
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from test_ops import hup  # noqa: E402

DAY = 86400 * 1000
CLOCKSHIFT = os.environ.get("VIGIL_CLOCKSHIFT", "")  # tests/fault/clockshift.c, set by CTest


def series(device, ts0, step, n, base):
    return [{"device": device, "ts": ts0 + i * step, "values": {"v": base + i}}
            for i in range(n)]


class Retention(vt.DaemonTestCase):

    def tearDown(self):
        if getattr(self, "daemon", None):
            try:
                self.daemon.stop()
            finally:
                self.daemon.cleanup()

    def start(self, conf_text, daemon=None):
        conf = vt.write_file(os.path.join(vt.mkdtemp(), "vigild.conf"), conf_text)
        if daemon is None:
            daemon = vt.Vigild(config=conf)
        else:
            daemon.config = conf
        self.daemon = self.d = daemon
        return daemon.start()

    def wait_metric(self, name, at_least, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            v = self.d.metric(name, need=True)
            if v >= at_least:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("%s stayed at %s (want >= %s)" % (name, v, at_least))
            time.sleep(0.2)

    @classmethod
    def setUpClass(cls):
        pass  # each test starts its own daemon

    @classmethod
    def tearDownClass(cls):
        pass

    def test_sweep_at_start_and_refused_writes(self):
        d = self.start("[model]\nenabled = false\n")
        now = vt.now_ms()
        old = series("r-old", now - 3 * DAY, 1000, 300, 0)
        mix_old = series("r-mix", now - 3 * DAY, 1000, 300, 0)
        mix_new = series("r-mix", now - 3600 * 1000, 1000, 300, 1000)
        mix_pending = series("r-mix", now - 60 * 1000, 1000, 20, 2000)
        # Each batch of 300 fills a chunk (128 readings or more go to a row); the last 20 stay
        # pending readings.
        for batch in (old, mix_old, mix_new, mix_pending):
            r = d.post_json(batch)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(d.device("r-old")["points"], 300)
        self.assertEqual(d.device("r-mix")["points"], 620)
        d.stop()

        d = self.start("[model]\nenabled = false\n[storage]\nretention = 1d\n", daemon=d)
        # A sweep runs at start: the two 3-day-old chunks (600 points) go.
        self.assertEqual(self.wait_metric("vigil_store_retention_removed_points_total", 600), 600)
        m = d.metrics()
        self.assertEqual(
            vt.metric_in(m, "vigil_store_retention_removed_chunks_total", need=True), 2)
        self.assertGreaterEqual(vt.metric_in(m, "vigil_store_retention_sweeps_total", need=True), 1)
        self.assertGreater(vt.metric_in(m, "vigil_store_retention_seconds_total", need=True), 0)
        self.assertEqual(d.readings("r-old"), [])
        dev = d.device("r-old")
        self.assertEqual(dev["points"], 0)
        # The device itself stays (its channels and attributes), with no readings.
        self.assertIsNone(dev["first_ts"], dev)
        self.assertPoints(d.readings("r-mix"),
                          [(p["ts"], p["values"]) for p in mix_new + mix_pending])
        dev = d.device("r-mix")
        self.assertEqual(dev["points"], 320)
        self.assertEqual(dev["first_ts"], mix_new[0]["ts"])

        # Writes older than the horizon: refused by item/line, the rest stored.
        now = vt.now_ms()
        r = d.post_json([{"device": "r-w", "ts": now - 2 * DAY, "values": {"v": 1}},
                         {"device": "r-w", "ts": now, "values": {"v": 2}}])
        self.assertEqual(r.status, 400, r)
        doc = r.json()
        self.assertEqual(doc["accepted"], 1, doc)
        self.assertEqual(doc["rejected"], 1, doc)
        self.assertEqual(doc["errors"][0]["index"], 0, doc)
        self.assertIn("beyond retention policy", doc["errors"][0]["error"])
        self.assertIn("storage.retention = 1d", doc["errors"][0]["error"])
        r = d.write_lp("m,device=r-w v=3 %d\nm,device=r-w v=4 %d\n" % (now + 1, now - 2 * DAY),
                       precision="ms")
        self.assertJsonError(r, 400, ["partial write", "beyond retention policy", "(line 2)",
                                      "dropped=1"])
        c = d.stream_connect()
        try:
            c.send("m,device=r-w v=5 %d\nm,device=r-w v=6 %d\n"
                   % ((now - 2 * DAY) * 10 ** 6, (now + 2) * 10 ** 6))
            got = c.wait_ok(2)
            errs = vt.errors_of(got)
            self.assertEqual(sorted(errs), [1], got)
            self.assertIn("beyond retention policy", errs[1])
            c.finish()
        finally:
            c.close()
        self.assertPoints(d.readings("r-w"), [(now, {"v": 2}), (now + 1, {"v": 3}),
                                              (now + 2, {"v": 6})])
        self.assertEqual(d.metric("vigil_retention_refused_points_total", need=True), 3)
        # The journal says so once a minute with the count since (the first write's one here):
        # a gateway's backlog older than the retention is otherwise only in its own 400s.
        warns = [l for l in d.log().splitlines() if "refused as older than the retention" in l]
        self.assertEqual(len(warns), 1, d.log())
        for part in ("ingest: 1 reading refused", "e.g. ts %s" % vt.iso_ms(now - 2 * DAY),
                     "storage.retention = 1d", "vigil_retention_refused_points_total"):
            self.assertIn(part, warns[0])

    def test_periodic_sweep(self):
        # 10 s retention: a sweep every second (a tenth of it, at least 1 s).
        d = self.start("[model]\nenabled = false\n[storage]\nretention = 10s\n")
        now = vt.now_ms()
        rows = series("r-p", now - 5000, 1, 300, 0)   # one chunk of 300 points
        pending = series("r-p", now - 4000, 1, 20, 500)  # pending readings after it
        for batch in (rows, pending):
            r = d.post_json(batch)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(d.device("r-p")["points"], 320)
        # Once older than 10 s the chunk goes with the next sweep; the pending readings wait
        # until they become a chunk (within 10 minutes), so they are still there.
        self.assertEqual(self.wait_metric("vigil_store_retention_removed_points_total", 300), 300)
        self.assertGreaterEqual(d.metric("vigil_store_retention_sweeps_total", need=True), 2)
        self.assertPoints(d.readings("r-p"), [(p["ts"], p["values"]) for p in pending])
        self.assertEqual(d.device("r-p")["points"], 20)

    def test_sighup_applies_retention(self):
        """storage.retention is live (README's reload list): a SIGHUP that shortens it from 30d
        to 10s is applied in the same process, the next sweep (a tenth of the new retention
        after the last one) deletes the 10-day-old readings stored under 30d, writes older than
        10s are refused naming it, and SHOW RETENTION POLICIES says 10s; a SIGHUP that
        lengthens it to 100s stores a 30-second-old chunk that the sweeps after keep. Before, the
        reload logged it as needing a restart and nothing was deleted."""
        base = "[model]\nenabled = false\n[storage]\nretention = %s\n"
        d = self.start(base % "30d")
        pid = d.proc.pid
        q = "q=SHOW RETENTION POLICIES ON plant"
        self.assertEqual(d.curl("POST", "/query", "--data-urlencode",
                                "q=CREATE DATABASE plant").status, 200)
        now = vt.now_ms()
        self.assertEqual(d.post_json(series("r-h", now - 10 * DAY, 1000, 300, 0)).status, 200)
        self.assertEqual(d.device("r-h")["points"], 300)
        vt.write_file(d.config, base % "10s")
        log = hup(d, r"configuration reloaded; applied: [^\n]*storage\.retention")
        self.assertNotIn("applied only after a restart", log)
        self.assertEqual(
            self.wait_metric("vigil_store_retention_removed_points_total", 300, timeout=20), 300)
        self.assertEqual(d.readings("r-h"), [])
        self.assertEqual(d.device("r-h")["points"], 0)
        r = d.post_json(series("r-h", vt.now_ms() - 60000, 1000, 1, 0))
        self.assertEqual(r.status, 400, r)
        self.assertIn("(storage.retention = 10s)", r.json()["errors"][0]["error"])
        r = d.curl("POST", "/query", "--data-urlencode", q)
        self.assertEqual(r.json()["results"][0]["series"][0]["values"][0][:2],
                         ["autogen", "10s"], r)

        vt.write_file(d.config, base % "100s")
        hup(d, r"configuration reloaded; applied: [^\n]*storage\.retention")
        sweeps = d.metric("vigil_store_retention_sweeps_total", need=True)
        # One chunk 30 s old: 10s would delete it, 100s keeps it for 70 s more, time for the
        # two sweeps below (about 20 s) on a loaded machine.
        young = series("r-h", vt.now_ms() - 30000, 1, 300, 1000)
        r = d.post_json(young)
        self.assertEqual(r.status, 200, r)
        # Two sweeps more (one every 10 s): the second started after the write.
        self.wait_metric("vigil_store_retention_sweeps_total", sweeps + 2, timeout=40)
        self.assertEqual(d.metric("vigil_store_retention_removed_points_total", need=True), 300)
        self.assertPoints(d.readings("r-h"), [(p["ts"], p["values"]) for p in young])
        self.assertEqual(d.metric("vigil_retention_refused_points_total", need=True), 1)
        self.assertEqual(d.proc.pid, pid)

    def start_shifted(self, device):
        """Starts vigild under tests/fault/clockshift.c (its shift file "0", returned) with
        `retention = 30s`, and stores one chunk of 300 points of device stamped five minutes
        ahead, so that no sweep may delete them within the test's time without a step."""
        tmp = vt.mkdtemp()
        shift = vt.write_file_atomic(os.path.join(tmp, "shift"), "0")
        conf = vt.write_file(os.path.join(tmp, "vigild.conf"),
                             "[model]\nenabled = false\n[storage]\nretention = 30s\n")
        self.daemon = self.d = d = vt.Vigild(
            config=conf, prefix=["env", "LD_PRELOAD=" + vt.preload(CLOCKSHIFT),
                                 "VIGIL_CLOCKSHIFT_FILE=" + shift])
        d.start()
        r = d.post_json(series(device, vt.now_ms() + 300000, 1, 300, 0))
        self.assertEqual(r.status, 200, r)
        return d, shift

    @unittest.skipUnless(os.path.exists(CLOCKSHIFT), "VIGIL_CLOCKSHIFT (tests/fault/clockshift.c's "
                         "library, set by CTest; not built for a TSan build) not found")
    def test_clock_stepped_forward_deletes_nothing(self):
        """vigild's wall clock stepped a day forward by mistake (tests/fault/clockshift.c moves
        CLOCK_REALTIME only) with `retention = 30s`: the sweeps meanwhile (one every 3 s) take
        their horizon from the elapsed time, not from the clock, so the readings stay and a
        gateway's live reading is stored, not refused as beyond retention; the step
        is logged. Before, the first sweep on the stepped clock deleted every sealed chunk, and
        the live reading was refused. The readings are stamped five minutes ahead, so that no
        sweep may delete them within the test's time (the module's timeout) without the step:
        the result does not depend on the machine's speed."""
        d, shift = self.start_shifted("r-c")
        self.assertEqual(d.device("r-c")["points"], 300)
        sweeps = d.metric("vigil_store_retention_sweeps_total", need=True)
        vt.write_file_atomic(shift, str(DAY))  # read by the library within 20 ms
        time.sleep(0.1)
        self.wait_metric("vigil_store_retention_sweeps_total", sweeps + 2, timeout=20)
        self.assertEqual(d.metric("vigil_store_retention_removed_points_total", need=True), 0)
        self.assertEqual(d.device("r-c")["points"], 300)
        r = d.post_json([{"device": "r-c", "ts": vt.now_ms(), "values": {"v": 1}}])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(d.metric("vigil_retention_refused_points_total", need=True), 0)
        self.assertIn("retention's horizon and its refusal of old writes follow the elapsed "
                      "time", d.log())
        vt.write_file_atomic(shift, "0")

    @unittest.skipUnless(os.path.exists(CLOCKSHIFT), "VIGIL_CLOCKSHIFT (tests/fault/clockshift.c's "
                         "library, set by CTest; not built for a TSan build) not found")
    def test_restart_keeps_the_hold(self):
        """vigild restarted while its wall clock is a day ahead (stepped while it was stopped,
        or while a step was held): the start reads retention's clock saved at the last sweep
        (DATA_DIR/retention-clock, the same boot: CLOCK_BOOTTIME gives the time elapsed) and
        holds the step as the running vigild would, so the readings stay. Before, the hold was
        in memory only and the first sweep after the start deleted the sealed chunk by the
        stepped clock. Readings stamped five minutes ahead, as in the test above."""
        d, shift = self.start_shifted("r-k")
        sweeps = d.metric("vigil_store_retention_sweeps_total", need=True)
        self.wait_metric("vigil_store_retention_sweeps_total", sweeps + 1, timeout=20)
        self.assertTrue(os.path.exists(os.path.join(d.data_dir, "retention-clock")))
        d.stop()
        vt.write_file_atomic(shift, str(DAY))
        d.start()
        self.wait_metric("vigil_store_retention_sweeps_total", 2, timeout=20)
        self.assertEqual(d.metric("vigil_store_retention_removed_points_total", need=True), 0)
        self.assertEqual(d.device("r-k")["points"], 300)
        self.assertIn("retention's clock goes on from its last sweep", d.log())
        self.assertIn("retention's horizon and its refusal of old writes follow the elapsed "
                      "time", d.log())
        d.stop()
        vt.write_file_atomic(shift, "0")

    @unittest.skipUnless(os.path.exists(CLOCKSHIFT), "VIGIL_CLOCKSHIFT (tests/fault/clockshift.c's "
                         "library, set by CTest; not built for a TSan build) not found")
    def test_reload_turning_retention_on_keeps_the_hold(self):
        """As test_restart_keeps_the_hold, but restarted with `retention = 0` (the clock file
        not read then) and retention turned on again by a SIGHUP: the reload reads the clock
        saved by the last sweep before its first sweep, so the step is held and the readings
        stay. Before (leftovers5), only an open with a retention read it: the first sweep after
        the reload took the stepped wall clock and deleted the sealed chunk."""
        d, shift = self.start_shifted("r-r")
        sweeps = d.metric("vigil_store_retention_sweeps_total", need=True)
        self.wait_metric("vigil_store_retention_sweeps_total", sweeps + 1, timeout=20)
        d.stop()
        on = "[model]\nenabled = false\n[storage]\nretention = %s\n"
        vt.write_file(d.config, on % "0")
        vt.write_file_atomic(shift, str(DAY))
        d.start()
        self.assertNotIn("retention's clock goes on from its last sweep", d.log())
        vt.write_file(d.config, on % "30s")
        hup(d, r"configuration reloaded; applied: [^\n]*storage\.retention")
        self.wait_metric("vigil_store_retention_sweeps_total", 2, timeout=20)
        self.assertEqual(d.metric("vigil_store_retention_removed_points_total", need=True), 0)
        self.assertEqual(d.device("r-r")["points"], 300)
        self.assertIn("retention's clock goes on from its last sweep", d.log())
        d.stop()
        vt.write_file_atomic(shift, "0")

    def test_damaged_clock_file_ignored(self):
        """A DATA_DIR/retention-clock that cannot be used (garbage, cut short, empty, a
        directory) is ignored at the start with a warning naming it and why, and vigild starts
        on the wall clock. Before, it was passed over without a word."""
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        lines = "not the boot_id, wall_ms and boot_ms lines vigild writes"
        cases = [("garbage", "\x00\xffnot a clock\n", lines),
                 ("cut short", "boot_id %s\nwall_ms 17" % boot, lines),
                 ("empty", "", lines),
                 ("a directory", None, "Is a directory")]
        for name, text, why in cases:
            with self.subTest(name):
                data = os.path.join(vt.mkdtemp(), "data")
                os.mkdir(data)
                path = os.path.join(data, "retention-clock")
                if text is None:
                    os.mkdir(path)
                else:
                    with open(path, "w", encoding="latin-1") as f:
                        f.write(text)
                d = self.start("[storage]\nretention = 1d\n[model]\nenabled = false\n",
                               vt.Vigild(data_dir=data, stream=False))
                try:
                    self.assertEqual(d.get_json("/healthz")["status"], "ok")
                    self.assertIn("storage: retention's clock in %s is ignored: %s; it starts "
                                  "from the wall clock as it is" % (path, why), d.log())
                    self.assertNotIn("retention's clock goes on from its last sweep", d.log())
                finally:  # a failed case's daemon stopped too, before the next case's
                    self.daemon = None
                    try:
                        d.stop()
                    finally:
                        d.cleanup()

    def test_bad_value_names_key(self):
        p = check_retention("30 days", "bad.conf")
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("bad.conf:2: storage.retention: '30 days'", p.stdout)
        for good in ("0", "", "30d", "12h", "90m", "3600s", "2w"):
            p = check_retention(good)
            self.assertEqual(p.returncode, 0, "%r: %s" % (good, p.stdout))
        # A unit is required and counts from seconds; no sign, fraction, blank or overflow.
        for bad in ("3600000", "3600000ms", "1.5h", "-1d", "+1d", "1 d", "1D",
                    "99999999999999999999d", "9999999999999999d"):
            p = check_retention(bad)
            self.assertNotEqual(p.returncode, 0, "%r: %s" % (bad, p.stdout))
            self.assertIn("storage.retention", p.stdout)


def check_retention(value, name="retention.conf"):
    """vigild --check-config on a file setting storage.retention = value (line 2)."""
    conf = vt.write_file(os.path.join(vt.mkdtemp(), name), "[storage]\nretention = %s\n" % value)
    return subprocess.run([vt.VIGILD, "--config", conf, "--check-config"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)

if __name__ == "__main__":
    vt.main()

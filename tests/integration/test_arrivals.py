#!/usr/bin/python3
"""vigild integration: a device's arrivals kept across a restart (task maint9, session 59).

Each device's newest arrival (last_seen, vigil_device_last_reading_timestamp_seconds, what
vigil_devices_silent counts from) and the arrival of its newest scored reading are written to
the arrivals table by the stop and by a periodic flush of the changed ones
(daemon/pipeline_arrivals.c; VIGIL_TEST_ARRIVALS_MS lowers its 60 s period to 300 ms here), and
restored before the restore's catch-up. A device silent for more than 60 s stays counted silent
across a clean restart and keeps its last_seen across a kill -9 after a flush; a deleted
device's row goes with it and it does not come back; the scored reading's arrival (the
maintenance rule's last_ms) is restored, so the flushes after the restart do not rewrite it.
LostFlush (review of maint9): a put lost with its transaction is written again, the device
silent."""

import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402

FLUSH_MS = 300
FAILMAINT = os.environ.get("VIGIL_FAILMAINT", "")
os.environ["VIGIL_TEST_ARRIVALS_MS"] = str(FLUSH_MS)  # inherited by every vigild started here
rows = vt.arrival_rows  # the arrivals table, device by device


def silent(text, after):
    """The devices silent for after seconds, in text (one /metrics answer)."""
    return vt.metric_in(text, 'vigil_devices_silent{after="%s"}' % after, need=True)


def gauge(text, dev):
    """dev's newest arrival in seconds, in text (one /metrics answer); None when not there."""
    return vt.metric_in(text, 'vigil_device_last_reading_timestamp_seconds{device="%s"}' % dev)


class Base(vt.FreshDaemonTestCase):

    def post(self, dev, ts_list):
        r = self.d.post_json([{"device": dev, "ts": t, "values": {"v": 1.0 + (t % 7) / 10}}
                              for t in ts_list])
        self.assertEqual(r.status, 200, r)

    def seen(self, dev):
        return self.d.device(dev)["last_seen_ts"]

    def wait_row(self, dev, seen_ms):
        return vt.wait_for("%s's arrival %s flushed to the arrivals table" % (dev, seen_ms),
                           lambda: rows(self.d.db_path).get(dev, (None,))[0] == seen_ms
                           and rows(self.d.db_path)[dev], 15,
                           lambda: " (table: %r)" % rows(self.d.db_path))


class Arrivals(Base):

    def test_silence_survives_restarts(self):
        d = self.d
        t0 = vt.now_ms() - 3_600_000  # the readings' own timestamps: an hour ago, one a second
        for dev in ("quiet", "live", "gone"):
            self.post(dev, [t0 + 1000 * k for k in range(5)])
        for dev in ("quiet", "live", "gone"):
            vt.wait_for(dev + " seen", lambda: self.seen(dev) is not None, 15)
        seen_q = self.seen("quiet")
        # The periodic flush writes the row; then a crash.
        self.wait_row("quiet", seen_q)
        self.wait_row("gone", self.seen("gone"))
        d.kill()
        d.start()
        self.assertEqual(self.seen("quiet"), seen_q, "last_seen after kill -9")
        self.assertAlmostEqual(gauge(d.metrics(), "quiet"), seen_q / 1000, delta=0.0015)

        # A deleted device loses its row and does not come back.
        self.assertEqual(d.curl("DELETE", "/v1/devices/gone").status, 200)
        vt.wait_for("gone's row deleted", lambda: "gone" not in rows(d.db_path), 15)

        # quiet stays silent past 60 s; live reports every few seconds.
        deadline = time.monotonic() + 120
        while True:
            self.post("live", [vt.now_ms() - 3_000_000])
            text = d.metrics()
            if silent(text, "60") >= 1:
                break
            self.assertLess(time.monotonic(), deadline, text)
            time.sleep(2)
        ts_live = vt.now_ms() - 2_900_000
        self.post("live", [ts_live])
        vt.wait_for("live's newest reading seen",
                    lambda: gauge(d.metrics(), "live") * 1000 > seen_q + 60_000, 15)
        self.assertEqual(silent(d.metrics(), "60"), 1)  # quiet only
        d.stop()
        # live's newest reading was scored after the crash's restart, with an arrival: the stop
        # wrote that arrival (last_ms) with the reading's timestamp (last_ts), the detector's
        # saved last_ts too.
        row_live = rows(d.db_path)["live"]
        self.assertEqual(row_live[2], ts_live, row_live)
        self.assertGreater(row_live[1], seen_q + 60_000, row_live)
        self.assertEqual(row_live[1], row_live[0], row_live)  # its newest arrival was scored
        d.start()
        text = d.metrics()
        # On main: 0 (quiet counted from the new start) and last_seen null.
        self.assertEqual(silent(text, "60"), 1, text)
        self.assertEqual(silent(text, "300"), 0, text)
        self.assertEqual(self.seen("quiet"), seen_q)
        self.assertAlmostEqual(gauge(text, "quiet"), seen_q / 1000, delta=0.0015)
        self.assertEqual(self.seen("live"), row_live[0])
        self.assertIsNone(gauge(text, "gone"))
        d.get_json("/v1/devices/gone", want=404)

        # live's last_ms was restored with the detector's last_ts: the flushes after the
        # restart find nothing changed, so its row stays as the stop wrote it (a last_ms left
        # at -1 would be rewritten within a flush period).
        time.sleep(5 * FLUSH_MS / 1000)
        self.assertEqual(rows(d.db_path)["live"], row_live)
        self.assertEqual(rows(d.db_path)["quiet"][0], seen_q)


class Slices(Base):
    """A flush walks the fleet in slices across the loop's ticks (session 60: one walk of
    100,000 devices held the loop about 45 ms): VIGIL_TEST_ARRIVALS_SLICE=2 (a test hook) makes
    every pass of seven devices four slices, each its own put. Every device's newest arrival
    reaches the table, those of the last slice too, pass after pass; a pass whose cursor did not
    move on (or restarted each tick) would write the first slice's devices only."""

    def setUp(self):
        self.d = vt.Vigild(prefix=["env", "VIGIL_TEST_ARRIVALS_SLICE=2"])
        self.d.start()

    def test_every_slice_written(self):
        d = self.d
        self.assertIn("VIGIL_TEST_ARRIVALS_SLICE is 2 (a test hook)", d.log())
        devs = ["s%d" % k for k in range(7)]
        t0 = vt.now_ms() - 3_600_000
        for rnd in range(2):  # the second: every row rewritten, in a pass after the first
            before = {dev: self.seen(dev) if rnd else None for dev in devs}
            for dev in devs:
                self.post(dev, [t0 + 1000 * rnd])
            for dev in devs:
                seen = vt.wait_for(dev + " seen anew",
                                   lambda: self.seen(dev) != before[dev] and self.seen(dev), 15)
                self.wait_row(dev, seen)
        self.assertGreater(d.metric("vigil_arrivals_flush_devices", need=True), 0)


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library) is not set: run this through ctest -R it_arrivals")
class LostFlush(Base):
    """A flush's put lost with its transaction (failmaint.c fails the arrivals upsert: the
    writer rolls the transaction back, ERR_IO, the put counted in ops_failed) is written again
    once writes succeed, although the device sends nothing more (review of maint9: the marks said
    it written, so a silent device kept its older row until its next reading, the stop too)."""

    def setUp(self):
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        self.d = vt.Vigild(prefix=[
            "env", "LD_PRELOAD=" + vt.preload(FAILMAINT), "VIGIL_FAILMAINT_FLAG=" + self.flag,
            "VIGIL_FAILMAINT_SQL=INSERT INTO arrivals("])
        self.d.start()

    def tearDown(self):
        if os.path.exists(self.flag):
            os.unlink(self.flag)
        super().tearDown()

    def test_lost_put_written_again(self):
        d = self.d
        t0 = vt.now_ms() - 3_600_000
        self.post("quiet", [t0])
        seen1 = vt.wait_for("quiet seen", lambda: self.seen("quiet"), 15)
        # Its row complete (the scored reading's arrival and timestamp too), so nothing of quiet
        # is queued when the flag is made: the next reading's own transaction commits.
        vt.wait_for("quiet's row", lambda: rows(d.db_path).get("quiet") == (seen1, seen1, t0),
                    15, lambda: " (table: %r)" % rows(d.db_path))
        self.assertEqual(d.metric("vigil_store_commit_errors_total", need=True), 0)
        vt.write_file_atomic(self.flag, "fail")
        self.post("quiet", [t0 + 1000])
        seen2 = vt.wait_for("quiet's second arrival",
                            lambda: self.seen("quiet") != seen1 and self.seen("quiet"), 15)
        # The flush queues it; its transaction fails, and every flush while the flag exists.
        vt.wait_for("the arrivals put's transaction failed",
                    lambda: d.metric("vigil_store_commit_errors_total", need=True) >= 1, 15)
        self.assertEqual(rows(d.db_path)["quiet"][0], seen1)
        os.unlink(self.flag)
        # quiet sends nothing more. Before the review's fix the row stayed at seen1 for good.
        vt.wait_for("quiet's lost arrival written again",
                    lambda: rows(d.db_path)["quiet"][0] == seen2, 15,
                    lambda: " (table: %r)" % rows(d.db_path))
        d.stop()
        d.start()
        self.assertEqual(self.seen("quiet"), seen2)


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library) is not set: run this through ctest -R it_arrivals")
class RestoreReadFails(Base):
    """The start's read of the arrivals table fails after its first row (failmaint.c,
    VIGIL_FAILMAINT_AFTER=1: SQLITE_IOERR from the second step on, as a corrupt page would).
    The first device's arrivals are restored; the log's one line says how many were and that
    the others' silence and last_seen count from the start (session 60: before, it said the
    arrivals "not restored", though the first device's were)."""

    def test_partial_read_said(self):
        d = self.d
        t0 = vt.now_ms() - 3_600_000
        devs = ("r-a", "r-b", "r-c")  # created in this order: the table's read order
        for dev in devs:
            self.post(dev, [t0])
            vt.wait_for(dev + " seen", lambda: self.seen(dev) is not None, 15)
        seen = {dev: self.seen(dev) for dev in devs}
        d.stop()
        self.assertEqual({k: v[0] for k, v in rows(d.db_path).items()}, seen)
        vt.start_reads_failing(d, "SELECT d.name, a.seen_ms, a.last_ms, a.last_ts")
        log = d.log()
        lines = [ln for ln in log.splitlines() if "stored arrivals" in ln]
        self.assertEqual(len(lines), 1, log)
        self.assertRegex(lines[0], r"stored arrivals restored for 1 devices, the rest not "
                         r"\(.+\): their silence and last_seen count from the start$")
        self.assertEqual(self.seen("r-a"), seen["r-a"])
        self.assertIsNone(self.seen("r-b"))
        self.assertIsNone(self.seen("r-c"))


if __name__ == "__main__":
    vt.main()

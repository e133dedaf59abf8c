#!/usr/bin/python3
"""vigild integration: the start's restore reads the fleet's model versions and active events
in one read each (docs/reliability.md, "Startup (session 42)"; one query of each a device
before), and brings every device back as it was: status, model versions, anomaly listing. A
device whose saved detector is corrupt is still refused and reported as before (it learns
again, the log names it), and the devices around it are restored all the same.

Python 3 standard library.
"""

import json
import os
import sqlite3
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import vigiltest as vt  # noqa: E402
import test_evcont as tc  # noqa: E402  (helpers only: its TestCases are not collected here)

# What a restart changes by design: the arrival time of the newest reading is kept in memory
# only (docs/writing.md "Devices and readings").
VOLATILE = ("last_seen_ts", "last_seen")


# An older active row added to su-open-2's events while vigild is stopped (its id).
STALE = 1000


class RestoreBase(tc.ChainBase):
    """The helpers (no tests of its own)."""
    maxDiff = None

    def events(self, dev):
        """The device's anomaly listing less the STALE row added to su-open-2 (checked apart)."""
        return [e for e in super().events(dev) if dev != "su-open-2" or e["id"] != STALE]

    def view(self, dev):
        """What a client reads of dev: its status (less VOLATILE), model versions and events."""
        st = {k: v for k, v in tp.status(self.d, dev).items() if k not in VOLATILE}
        return st, tp.models(self.d, dev), self.events(dev)

    def open_two(self):
        """su-open-1 and su-open-2 trained, each with an event open (its sides and opening
        reason in the stored row)."""
        for seed, dev in ((1, "su-open-1"), (2, "su-open-2")):
            rows = tc.overshoot(1500, 1.5, seed)
            self.trained(dev, rows, ["level"])
            self.post(dev, rows[tc.ONSET:tc.ONSET + 2], tc.ONSET, ["level"])
            tp.wait_for("%s: an event open" % dev, lambda: (
                lambda e: len(e) == 1 and e[0]["active"])(self.events(dev)), 10)

    def open_two_go_on(self, before):
        """After a restart, open_two's events go on and end cleared with the ids they had."""
        for seed, dev in ((1, "su-open-1"), (2, "su-open-2")):
            rows = tc.overshoot(1500, 1.5, seed)
            self.post(dev, rows[tc.ONSET + 2:], tc.ONSET + 2, ["level"])
            first, _ = self.two_events(dev)
            self.assertEqual(first["id"], before[dev][2][0]["id"], first)
            self.assertEqual(first["ended_by"], "cleared", first)


class RestoreFleet(RestoreBase):
    def test_every_device_restored_corrupt_one_refused(self):
        d = self.d
        # Two devices with an event open at the stop (their sides and opening reason come from
        # the stored rows), one trained and quiet, one still learning, one to be corrupted.
        self.open_two()
        for seed, dev in ((3, "su-quiet"), (4, "su-corrupt")):
            self.trained(dev, tc.overshoot(1500, 1.5, seed), ["level"])
        self.post("su-learning", tc.overshoot(50, 1.5, 5), 0, ["level"])
        devs = ("su-open-1", "su-open-2", "su-quiet", "su-learning", "su-corrupt")
        before = {dev: self.view(dev) for dev in devs}
        for dev in ("su-open-1", "su-open-2"):
            self.assertTrue(before[dev][2][0]["active"], before[dev])
            self.assertEqual(before[dev][2][0]["channels"][0].get("side"), "above", before[dev])
        for dev in ("su-open-1", "su-open-2", "su-quiet", "su-corrupt"):
            self.assertEqual(len(before[dev][1]["versions"]), 2, before[dev])
        self.assertEqual(before["su-learning"][0]["state"], "learning", before["su-learning"])
        d.stop()
        # One byte of su-corrupt's saved detector flipped in the middle: its CRC fails.
        db = sqlite3.connect(d.db_path)
        with db:
            (blob,) = db.execute("SELECT blob FROM detectors WHERE device_id=(SELECT id FROM"
                                 " devices WHERE name='su-corrupt')").fetchone()
            bad = bytearray(blob)
            bad[len(bad) // 2] ^= 0xFF
            db.execute("UPDATE detectors SET blob=? WHERE device_id=(SELECT id FROM devices"
                       " WHERE name='su-corrupt')", (bytes(bad),))
            # su-open-2 gets a second active row, older than its open event and naming the
            # other side (a store left so by a lost end): the restore takes the newest, as the
            # device's own query's LIMIT 1 did before the fleet-wide read; were the older one
            # taken, the open event's side (from its row) would be lost. The older one is
            # ended "restart" at the open event's start (session 60: until then it stayed
            # open in the store for good), its side as its row named it.
            dev_id, start, info = db.execute(
                "SELECT e.device_id, e.start_ts, e.info FROM events e JOIN devices d ON"
                " d.id=e.device_id WHERE d.name='su-open-2' AND e.end_ts IS NULL").fetchone()
            stale = json.loads(info)  # the listing answers a stored row's info
            self.assertEqual(stale["channels"][0]["side"], "above", stale)
            stale["channels"][0]["side"] = "below"
            stale.update(id=STALE, start_ts=start - 1000)
            stale.pop("start")
            db.execute("INSERT INTO events(device_id, id, start_ts, end_ts, info)"
                       " VALUES(?, ?, ?, NULL, ?)",
                       (dev_id, STALE, start - 1000, json.dumps(stale)))
        db.close()
        d.start()
        log = d.log()
        self.assertIn("saved detector of 'su-corrupt' unusable (corrupt or truncated data); it"
                      " learns again", log)
        self.assertIn("pipeline: 4 detectors restored (1 unusable", log)
        for dev in ("su-open-1", "su-open-2", "su-quiet", "su-learning"):
            self.assertEqual(self.view(dev), before[dev], dev)
        stale = tp.wait_for("the older row ended", lambda: (lambda e: e if len(e) == 1 and not e[
            0]["active"] else None)([e for e in tc.ChainBase.events(self, "su-open-2")
                                     if e["id"] == STALE]), 10)
        self.assertEqual((stale[0]["ended_by"], stale[0]["end_ts"], stale[0]["start_ts"],
                          stale[0]["channels"][0]["side"]), ("restart", start, start - 1000,
                                                             "below"), stale)
        st, models, events = self.view("su-corrupt")
        self.assertEqual(st["state"], "learning", st)
        self.assertEqual(events, before["su-corrupt"][2])
        # Its stored versions stay in the store and are listed (session 47; they were not until
        # a detector of it was saved again): its new versions are numbered after them.
        self.assertEqual([v["version"] for v in models["versions"]],
                         [v["version"] for v in before["su-corrupt"][1]["versions"]], models)
        self.assertTrue(models["versions"], models)
        # The restored open events go on: each ends cleared once the fault settles.
        self.open_two_go_on(before)


FAILMAINT = os.environ.get("VIGIL_FAILMAINT", "")


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library, set by CTest; not built in a TSan build) not found")
class FleetReadFails(RestoreBase):
    """The fleet's versions read and its active events read each fail after their first row
    (tests/fault/failmaint.c, VIGIL_FAILMAINT_AFTER=1: SQLITE_IOERR from the second step on, as
    a corrupt page would fail them part way). The restore goes on device by device for the
    devices the read did not finish (session 43), so every device comes back as it was; before,
    each device after the failing row lost its versions or its open event (one warning)."""

    def test_devices_after_the_failure_restored(self):
        d = self.d
        self.open_two()
        self.trained("su-quiet", tc.overshoot(1500, 1.5, 3), ["level"])
        devs = ("su-open-1", "su-open-2", "su-quiet")
        before = {dev: self.view(dev) for dev in devs}
        for dev in devs:
            self.assertEqual(len(before[dev][1]["versions"]), 2, before[dev])
        d.stop()
        # The versions read's rows come device by device in creation order: su-open-1's first
        # version is read, its second fails (its list cut); the events read's rows newest start
        # first, then device name descending: su-open-2's event is read, su-open-1's fails.
        vt.start_reads_failing(d, "SELECT d.name, m.version|SELECT dev_name, id, start_ts")
        for dev in devs:
            self.assertEqual(self.view(dev), before[dev], dev)
        log = d.log()
        self.assertIn("pipeline: the fleet's model versions read failed", log)
        self.assertIn("pipeline: the fleet's active events read failed", log)
        self.assertNotIn("not restored", log)
        self.assertIn("pipeline: 3 detectors restored (0 unusable", log)
        self.open_two_go_on(before)


if __name__ == "__main__":
    unittest.main(verbosity=2)

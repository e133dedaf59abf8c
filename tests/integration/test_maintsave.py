#!/usr/bin/python3
"""vigild integration: a detector the restore saves keeps the training it asked for before the
stop, so a crash before that training runs does not lose it (commit 888661a5). Moved from
test_maint.py (session 58), whose SilentCase helpers these tests use.

RestoreSaveKeepsTheRequest (session 57): the save of the end of a period that ended while
vigild was stopped (pipeline__maint_restore_ended).
CatchUpSaveKeepsTheRequest (session 58): the save of the restore's catch-up, whose reading in a
period ends the episode (tests/fault/failmaint.c holds the live save that would have made it).

Python 3 standard library.
"""

import os
import random
import re
import sqlite3
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import test_groups as tg  # noqa: E402  (helpers only)
import vigiltest as vt  # noqa: E402
from test_events import z_shifted  # noqa: E402
import test_maint as tm  # noqa: E402  (helpers only)


def saved_blob(d, dev):
    """dev's saved detector, read from the store (vigild running or not)."""
    db = sqlite3.connect(d.db_path, timeout=10)
    try:
        row = db.execute("SELECT t.blob FROM detectors t JOIN devices v ON v.id = t.device_id"
                         " WHERE v.name = ?", (dev,)).fetchone()
        return row[0] if row else None
    finally:
        db.close()


class AskedAtTheStop(tm.MaintenanceCase, tg.Held):
    """Helpers of RestoreSaveKeepsTheRequest and CatchUpSaveKeepsTheRequest (no tests of its
    own): a device stopped asking for a training, with an episode open and a period current."""
    CONFIG = tp.config_text(150, extra="train_threads = 1\n")  # asks 150 after a training

    def asked_and_stopped(self, dev, length):
        """The one training thread held at "take" with another device's first training
        ("busy"); dev's schedule then asks for a training, which waits in the due-set, and a
        fault opens an episode (held: the schedule asks nothing more). A period of length ms
        planned, current when vigild stops: the stop skips the queued job and saves dev as
        asking (asserted). Returns dev's active event, its status before the period, the
        period's start and dev's saved detector."""
        d = self.d
        rng = random.Random(57)
        data = tp.rotation(650, 0, tp.OMEGA_A, 0.01, rng)
        self.feed(dev, data[:tp.WARMUP], 0)
        tp.wait_idle(d, dev, 1)  # trained at the warm-up's end: the schedule asks 150 later
        self.hold("take")
        self.feed("busy", tp.rotation(tp.WARMUP, 0, tp.OMEGA_A, 0.01, rng), 0)
        self.held("take")  # busy's first training: the thread held
        self.feed(dev, data[tp.WARMUP:], tp.WARMUP)
        tp.wait_for("the device's request queued",
                    lambda: d.metric("vigil_train_queue_jobs") or None, 10)
        self.feed(dev, z_shifted(30, 650, rng), 650)
        before = tp.status(d, dev)
        self.assertEqual(before["state"], "anomaly", before)
        active = tp.wait_for("the active event listed", lambda: self.events(dev), 10)[0]
        start = tm.SilentCase.plan(self, dev, length)
        self.sleep_until(start + 300)  # begun, the tick saw it
        d.stop()
        self.assertLess(time.time() * 1000, start + length, "too slow: stopped after the end")
        stopped = saved_blob(d, dev)
        self.assertTrue(tg.blob_train_asked(stopped))  # the stop's save keeps the request
        return active, before, start, stopped

    def asked_again_after_a_crash(self, dev, stopped):
        """Once dev's saved detector is no longer `stopped` (the restore's save committed),
        SIGKILL, before either training begins and before any later save; the next start asks
        both trainings again (asserted: 2), and released, dev gets version 2."""
        d = self.d
        tp.wait_for("the restore's save in the store",
                    lambda: saved_blob(d, dev) != stopped or None, 30)
        d.kill()
        seen = len(d.log())
        d.start()
        m = re.search(r"(\d+) trainings asked for before the stop asked again", d.log()[seen:])
        self.assertIsNotNone(m, d.log()[-2000:])
        self.assertEqual(int(m.group(1)), 2, m.group(0))  # 888661a5^: 1 (busy's)
        self.release("take")
        self.assertEqual([v["version"] for v in tp.wait_idle(d, dev, 2, 120)["versions"]],
                         [2, 1])


class RestoreSaveKeepsTheRequest(AskedAtTheStop):
    """Session 57 (task train15: commit 888661a5's test). asked_and_stopped with a 10 s period.
    The period ends while vigild is stopped; the restart's restore ends the episode
    "maintenance" and saves the detector (pipeline__maint_restore_ended) before it asks the
    trainings again (busy's held at "take" again, the device's queued behind it). vigild is
    killed (SIGKILL) once that save is in the store; the next start asks for both trainings
    again and the device's runs. Before 888661a5 the restore's save dropped the request (the
    device neither due nor training yet): the start after the crash asked 1 training again
    (busy's) and the device got no second version."""

    def test_a_request_saved_by_the_restore_survives_a_crash(self):
        d, dev = self.d, "asked"
        active, before, start, stopped = self.asked_and_stopped(dev, 10000)
        self.sleep_until(start + 10000)
        d.start()
        # The restore ended the episode (and saved the detector), then asked the trainings.
        tm.SilentCase.ended_maintenance(self, dev, active, before["last_ts"])
        self.held("take")
        self.asked_again_after_a_crash(dev, stopped)


FAILMAINT = os.environ.get("VIGIL_FAILMAINT", "")


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library, set by CTest; not built in a TSan build) not found")
class CatchUpSaveKeepsTheRequest(AskedAtTheStop):
    """Session 58: 888661a5's other case, the catch-up's save. asked_and_stopped with a period
    of 10 minutes, current throughout (so the restore's end of a period past,
    RestoreSaveKeepsTheRequest's, never runs). vigild runs under tests/fault/failmaint.c, its
    flag file holding the detectors' saves ("INSERT INTO detectors("). Restarted, it asks both
    trainings again (busy's held at "take", the device's queued); three readings in the period
    are stored and scored, ending the episode "maintenance", whose save of the detector is held
    in the writer: SIGKILL there. The saved detector is still the stop's, so the next start's
    catch-up feeds the three readings again, ends the episode and saves the detector before it
    asks the trainings again (the device neither due nor training then): that save, committed
    (nothing else saves the device before the trainings run), records the request
    (BLOB_TRAIN_ASKED, asserted); a SIGKILL after it, and the next start asks both trainings
    again. With 888661a5 reverted the catch-up's save dropped the request: its flag is not
    set."""

    def setUp(self):
        self.holds = vt.mkdtemp()
        self.flag = os.path.join(vt.mkdtemp(), "hold")
        self.d = vt.Vigild(config=tp.make_config(self.CONFIG), prefix=[
            "env", "VIGIL_TEST_HOLD_DIR=" + self.holds, "LD_PRELOAD=" + vt.preload(FAILMAINT),
            "VIGIL_FAILMAINT_FLAG=" + self.flag, "VIGIL_FAILMAINT_SQL=INSERT INTO detectors("])
        self.d.start()
        self.t0 = int(time.time() * 1000) - 1000 * 1000  # MaintenanceCase's

    def tearDown(self):
        if os.path.exists(self.flag):
            os.unlink(self.flag)
        super().tearDown()

    def test_a_request_saved_by_the_catch_up_survives_a_crash(self):
        d, dev = self.d, "asked"
        active, before, start, stopped = self.asked_and_stopped(dev, 600000)
        d.start()
        self.held("take")  # busy's, asked again; the device's queued behind it
        vt.write_file_atomic(self.flag, "hold")
        ts = [start + 100 * i for i in range(1, 4)]  # in the period, before vigild's clock
        tp.post_readings(d, dev, z_shifted(3, 680, random.Random(58)), ts, tp.CH3)
        tp.wait_for("the episode's end's save held", lambda: os.path.exists(
            self.flag + ".held") or None, 30)
        d.kill()
        os.unlink(self.flag)
        self.assertEqual(saved_blob(d, dev), stopped)  # the readings are the catch-up's
        d.start()
        self.held("take")
        caught_up = tp.wait_for("the catch-up's save in the store", lambda: (
            lambda b: b if b != stopped else None)(saved_blob(d, dev)), 30)
        self.assertTrue(tg.blob_train_asked(caught_up))  # 888661a5 reverted: False
        self.assertFalse(self.events(dev)[0]["active"])
        self.asked_again_after_a_crash(dev, stopped)


if __name__ == "__main__":
    vt.main()

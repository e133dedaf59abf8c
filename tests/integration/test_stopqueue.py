#!/usr/bin/env python3
"""The stop's paths between its two maintenance ticks (daemon/stop.c's stop_pipeline; task stop3,
session 58), which StopTicks (test_maint.py) does not reach:

- StopQueueFull: the stop flushes its saves before the second tick because pipeline_save_all
  returns with up to the store's bound of puts still queued, and the tick's end_episode puts
  are refused at a full queue (op_enqueue does not wait). A fleet past 10,000 devices is too
  slow for a test (under ASan above all): vigild runs with VIGIL_TEST_OPS_MAX (a test hook, read
  once at the store's open) set to the number of detectors the stop saves, and the writer held
  in the detectors' save (tests/fault/failmaint.c's VIGIL_FAILMAINT_HOLD_SQL), so the queue is
  exactly full when save_all returns.
- StopLostWrites: the first tick's event end, failed in the writer (failmaint.c failing the
  events' insert), is counted with the stop's other lost writes, in its log line and exit code.

Both hold the stop at its VIGIL_TEST_HOLD_DIR points (common/testhold.h) while the device's
period ends, as StopTicks does."""
import os
import re
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import vigiltest as vt  # noqa: E402
from test_faults import FAILMAINT  # noqa: E402
from test_maint import SilentCase, saved_ms  # noqa: E402


def main_thread_waits(pid):
    """Whether vigild's main thread (the loop's, which runs the stop) waits on a futex (a
    condition or a lock: store_flush waiting for the writer): vigiltest.thread_wait."""
    try:
        w = vt.thread_wait(pid, pid)
    except (OSError, IndexError):
        return False
    return "futex" in w or w == "syscall 202"


def waits_on(pid, seconds):
    """Whether the main thread waits on a futex at every look for seconds (a look every 0.1 s):
    a wait for the held writer lasts until the test lets it go, a lock's moment does not."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not main_thread_waits(pid):
            return False
        time.sleep(0.1)
    return True


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library, set by CTest; not built in a TSan build) not found")
class StopCase(SilentCase):
    """vigild with the stop's hold points and failmaint.c preloaded (env(): more of its
    environment); hold files in self.holds, failmaint's flag self.flag (absent: nothing fails)."""

    def env(self):
        return []

    def setUp(self):
        self.holds = vt.mkdtemp()
        self.flag = os.path.join(self.holds, "fail")
        self.d = vt.Vigild(config=tp.make_config(self.CONFIG), prefix=[
            "env", "VIGIL_TEST_HOLD_DIR=" + self.holds, "LD_PRELOAD=" + vt.preload(FAILMAINT),
            "VIGIL_FAILMAINT_FLAG=" + self.flag] + self.env())
        self.d.start()
        self.t0 = int(time.time() * 1000) - 1000 * 1000  # MaintenanceCase's

    def tearDown(self):
        # A test that failed midway leaves no failing insert, held writer or held stop behind
        # for the tearDown's stop (its exit would add an error to the real one).
        for name in os.listdir(self.holds):
            if not name.endswith(".held"):
                os.unlink(os.path.join(self.holds, name))
        super().tearDown()


class StopQueueFull(StopCase):
    """The period ends while the stop waits before its saves (point stop-saves); then the
    writer is held in the detectors' save, so the stop's saves fill the queue (its bound, by
    VIGIL_TEST_OPS_MAX, the number of detectors saved: the device's and 15 fillers') and stay
    there. The stop must flush them before its second tick: without the flush the tick's
    end_episode puts met the full queue and were refused, and after the restart the episode was
    still open (the restore took the period as seen, its end before the stop's save)."""
    # Devices of a few readings beside the one in anomaly: enough that the bound (their count
    # and one) leaves room for the puts of the setup's scoring and training, never refused.
    FILLERS = 15
    SAVED = FILLERS + 1  # the detectors the stop saves: the queue's bound

    def env(self):
        # The detectors' save is held while self.writer exists (failmaint.c's HOLD_FLAG): made
        # only once the stop waits before its saves, so the stop's first flushes are not held.
        self.writer = os.path.join(self.holds, "writer")
        return ["VIGIL_TEST_OPS_MAX=%d" % self.SAVED,
                "VIGIL_FAILMAINT_HOLD_SQL=INSERT INTO detectors(",
                "VIGIL_FAILMAINT_HOLD_FLAG=" + self.writer]

    def test_period_ending_before_the_saves_of_a_full_queue(self):
        d, dev = self.d, "stop-full"
        self.assertIn("VIGIL_TEST_OPS_MAX is %d (a test hook)" % self.SAVED, d.log())
        for i in range(self.FILLERS):
            filler = "filler-%d" % i
            tp.post_readings(d, filler, [[0.0, 1.0, 2.0]] * 5,
                             [self.t0 + 1000 * k for k in range(5)], tp.CH3)
            tp.wait_scored(d, filler, 5)
        pid = d.proc.pid
        try:
            active, before = self.hold_across_the_end(
                dev, 52, "stop-saves", then=lambda: vt.write_file_atomic(self.writer, ""))
            # The writer is in the first save (failmaint.c's "<flag>.held"), the queue full,
            # and the stop waits: in the flush before the second tick, or (without that flush)
            # after the tick, whose puts the full queue refused.
            tp.wait_for("the writer held in a detector's save",
                        lambda: os.path.exists(self.flag + ".held"), 30)
            tp.wait_for("the stop waiting for the held writer", lambda: waits_on(pid, 1.0), 30)
        finally:
            if os.path.exists(self.writer):
                os.unlink(self.writer)
        d.stop()  # waits for the exit: 0, no sanitizer report
        log = d.log()
        self.assertIn("waiting at 'stop-saves'", log)
        m = re.search(r"the stop's last scoring and saves \((\d+) detectors", log)
        self.assertIsNotNone(m, log)
        self.assertEqual(int(m.group(1)), self.SAVED, "the queue was not full at the tick")
        d.start()
        self.ended_maintenance(dev, active, before["last_ts"])
        self.assertIsNone(tp.status(d, dev)["maintenance"])


class StopLostWrites(StopCase):
    """The period ends while the stop waits before its first tick (point stop-tick); the events'
    writes fail from then on (failmaint.c). The first tick's event end is one of the stop's lost
    writes: the log's one error line counts it with the pipeline's other last writes, the exit
    is 1. The tick's puts are committed (their transaction failed) before the stop's saves, so
    the stop's save of the device commits after the period's end and no detector is said lost.
    Without the first tick's ends in "other" (before session 57) the event's loss was not said;
    without the flush after the first tick (before the review of stop3) the writer took the
    tick's event, its save and the stop's save into one transaction (its 2 ms wait for more),
    all three lost, and the line said "1 detector's state could not be saved" too."""

    ALONE = ("stopped, but 1 of the pipeline's last writes (prediction blocks, events) was lost: "
             "I/O error")

    def env(self):
        return ["VIGIL_FAILMAINT_SQL=INSERT INTO events("]

    def test_first_ticks_end_lost_is_counted(self):
        d, dev = self.d, "stop-lost"
        self.hold_across_the_end(dev, 53, "stop-tick",
                                 then=lambda: vt.write_file_atomic(self.flag, "fail"))
        d.stop(codes=(1,))
        log = d.log()
        lines = [ln.split(None, 1)[-1] for ln in log.splitlines() if "stopped, but" in ln]
        self.assertEqual(len(lines), 1, log)  # the time stamp cut off: the level, the text
        self.assertEqual(lines[0], "error " + self.ALONE, log)
        self.assertIn("waiting at 'stop-tick'", log)
        self.assertGreaterEqual(saved_ms(d.db_path, dev), self.end_ms, "the stop's save lost")


if __name__ == "__main__":
    vt.main()

#!/usr/bin/python3
"""vigild integration: anomaly episodes in the log (read66b's finding 8, session 66;
docs/reliability.md "Signals during the start, quiet starts, log floods (session 66)").
An episode's opening is an info line naming the device, the event's id, what opened it and the
sensors by their share; its end is a line saying how it ended (info when cleared, warn when the
detector accepted or released it by itself). Before session 66 neither was logged.

One sensor's overshooting fault (test_evcont.py's overshoot, seed 1): two events, the first
ended "cleared". The rate limit (10 lines a minute of each) is unit_common's
test_log_limit_burst.

Python 3 standard library.
"""

import os
import re
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import test_evcont as tc  # noqa: E402  (helpers only: its TestCases are not collected here)
import test_events as te  # noqa: E402  (helpers only)
import test_stopqueue as sq  # noqa: E402  (its test cases not imported: run by it_stopqueue)
import vigiltest as vt  # noqa: E402


class EpisodesLogged(tc.ChainBase):
    def test_open_and_cleared_end_are_logged(self):
        dev = "evlog-1"
        rows = tc.overshoot(1500, 1.5, 1)
        self.trained(dev, rows, ["level"])
        self.post(dev, rows[tc.ONSET:], tc.ONSET, ["level"])
        first, second = self.two_events(dev)
        self.assertEqual(first["ended_by"], "cleared", first)
        log = self.d.log()
        opened = re.findall(r" info  anomaly: device '%s': event (\d+) opened \(by (\w+); "
                            r"sensors: level 100%%\)" % dev, log)
        self.assertEqual(opened, [(str(first["id"]), first["opened_by"]),
                                  (str(second["id"]), second["opened_by"])], log[-4000:])
        self.assertRegex(log, r" info  anomaly: device '%s': event %d ended: cleared \(the "
                         r"readings came back to what the model expects\) after \S+ of "
                         r"readings \(peak [0-9.]+\)" % (dev, first["id"]))
        # A restart's catch-up says none of them again.
        self.d.stop()
        self.d.start()
        after = self.d.log().split("==== start #2")[1]
        self.assertNotIn("anomaly: device", after)


class CatchUpLogged(tc.ChainBase):
    """Task ops68: the restore's catch-up logs the episodes it opens under an id no stored row
    had (their readings acknowledged, not scored, at a kill -9: no vigild said them), during the
    restore; those an earlier vigild logged, it does not say again. vigild runs with
    VIGIL_TEST_HOLD_DIR: "shard-score" there holds a committed message before its scoring
    (daemon/pipeline.c shard_main)."""

    def setUp(self):
        self.holds = vt.mkdtemp()
        self.d = vt.Vigild(config=tp.make_config(self.CONFIG),
                           prefix=["env", "VIGIL_TEST_HOLD_DIR=" + self.holds])
        self.d.start()

    def tearDown(self):
        for name in os.listdir(self.holds):  # a failed test leaves no shard waiting
            os.remove(os.path.join(self.holds, name))
        super().tearDown()

    def restored_part(self):
        """The second start's log up to the restore's last line (its catch-up's lines)."""
        after = self.d.log().split("==== start #2")[1]
        end = re.search(r"pipeline: \d+ detectors restored", after)
        self.assertIsNotNone(end, after[-4000:])
        return after[:end.start()]

    def test_episodes_the_catch_up_opens_first_are_logged(self):
        dev = "evlog-2"
        rows = tc.overshoot(1500, 1.5, 1)
        self.trained(dev, rows, ["level"])
        hold = os.path.join(self.holds, "shard-score")
        vt.write_file(hold, "")
        tp.post_readings(self.d, dev, rows[tc.ONSET:],
                         [te.T0 + 1000 * i for i in range(tc.ONSET, len(rows))], ["level"])
        vt.wait_for("the shard held before scoring", lambda: os.path.exists(hold + ".held"), 10)
        self.d.kill()  # the fault's readings acknowledged (committed), none scored
        os.remove(hold)
        self.assertNotIn("anomaly: device", self.d.log())
        self.d.start()
        first, second = self.two_events(dev)
        self.assertEqual(first["ended_by"], "cleared", first)
        said = self.restored_part()
        opened = re.findall(r" info  anomaly: device '%s': event (\d+) opened \(by \w+; "
                            r"sensors: level 100%%\)" % dev, said)
        self.assertEqual(opened, [str(first["id"]), str(second["id"])], said[-4000:])
        self.assertRegex(said, r" info  anomaly: device '%s': event %d ended: cleared " % (
            dev, first["id"]))
        # Once each: the restore's end says none again.
        self.assertEqual(self.d.log().count("event %d opened" % first["id"]), 1)

    def test_episodes_logged_before_a_kill_are_not_said_again(self):
        dev = "evlog-3"
        rows = tc.overshoot(1500, 1.5, 1)
        self.trained(dev, rows, ["level"])
        self.post(dev, rows[tc.ONSET:], tc.ONSET, ["level"])
        first, second = self.two_events(dev)
        for e in (first, second):
            sq.wait_stored("event %d stored" % e["id"], self.d, dev, e["id"], 10,
                           ended=not e["active"])
        self.assertIn("event %d opened" % second["id"], self.d.log())
        self.d.kill()  # the detector's last save at the training of reading 1,200: replayed
        self.d.start()
        after = self.d.log().split("==== start #2")[1]
        self.assertIn("catching up", after)
        self.assertNotIn("anomaly: device", after)
        self.assertEqual([e["id"] for e in self.two_events(dev)], [first["id"], second["id"]])


if __name__ == "__main__":
    unittest.main(verbosity=2)

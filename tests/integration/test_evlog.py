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
import test_evcont as tc  # noqa: E402  (helpers only: its TestCases are not collected here)


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


if __name__ == "__main__":
    unittest.main(verbosity=2)

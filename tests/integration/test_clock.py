#!/usr/bin/python3
"""vigild integration: its own wall clock stepped back (tests/fault/clockshift.c moves
CLOCK_REALTIME only). Readings sent without a timestamp are stamped on arrival, but never back:
after a step back of an hour the stamps go on from just after the newest given (at half speed
until the clock catches up), so the device's readings stay in order and are all scored, and
none lands on a millisecond an earlier one holds; the step is logged. Before, the 20 readings
after the step were stamped an hour back and none was scored (out of order)."""

import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from pipeline_fx import wait_for  # noqa: E402

HOUR = 3600 * 1000
CLOCKSHIFT = os.environ.get("VIGIL_CLOCKSHIFT", "")  # tests/fault/clockshift.c, set by CTest


class ClockStepsBack(unittest.TestCase):

    def tearDown(self):
        if getattr(self, "d", None):
            try:
                self.d.stop()
            finally:
                self.d.cleanup()

    def status(self, device):
        return self.d.get_json("/v1/devices/%s/status" % vt.quote(device))

    @unittest.skipUnless(os.path.exists(CLOCKSHIFT), "VIGIL_CLOCKSHIFT (tests/fault/clockshift.c's "
                         "library, set by CTest; not built for sanitizer builds) not found")
    def test_stamps_never_go_back(self):
        tmp = vt.mkdtemp()
        shift = vt.write_file(os.path.join(tmp, "shift"), "0")
        self.d = d = vt.Vigild(prefix=["env", "LD_PRELOAD=" + CLOCKSHIFT,
                                       "VIGIL_CLOCKSHIFT_FILE=" + shift])
        d.start()
        dev = "stamped-1"

        def send(n):
            for i in range(n):  # one request each, 20 ms apart: each its own millisecond
                r = d.post_json({"device": dev, "values": {"v": float(i % 5)}})
                self.assertEqual(r.status, 200, r)
                time.sleep(0.02)

        send(20)
        wait_for("20 scored", lambda: self.status(dev).get("readings_scored", 0) >= 20, 60)
        vt.write_file(shift, str(-HOUR))  # read by the library within 20 ms
        time.sleep(0.1)
        send(20)
        st = wait_for("40 scored", lambda: (lambda s: s if s.get("readings_scored", 0) +
                                            s.get("readings_not_scored_out_of_order", 0) >= 40
                                            else None)(self.status(dev)), 60)
        self.assertEqual(st["readings_not_scored_out_of_order"], 0, st)
        self.assertEqual(st["readings_scored"], 40, st)
        pts = d.readings(dev, limit=1000)
        self.assertEqual(len(pts), 40, pts)  # none replaced
        ts = [p["ts"] for p in pts]
        self.assertEqual(ts, sorted(set(ts)))
        self.assertIn("the wall clock stepped back by", d.log())
        vt.write_file(shift, "0")


if __name__ == "__main__":
    vt.main()

#!/usr/bin/python3
"""vigild integration: input channels (session 69, read69b's finding 2; docs/operator.md "Input
channels"). A device whose set point sp is a square wave (1 and 0.7, switched every 300
readings) and whose flow, pres and temp follow it, on the default model settings: scored as a
sensor, sp's routine switches open long anomaly episodes (the step test's, held while the step
lasts: 280 readings and more); marked with {"inputs": ["sp"]}, none of 50 readings or more opens
and no event names sp, while a drift on flow from reading 4,400 is still caught (in short
episodes, not held: see the test). The
attribute is checked (a 400 naming inputs or inputs[i]); changing the set on a device that has
readings answers a warning and makes it learn again. Main before session 69 took "inputs" as an
unknown attribute and scored sp like any channel.

Python 3 standard library; every wait is bounded.
"""

import math
import os
import random
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
import pipeline_fx as tp  # noqa: E402

T0 = 1_796_600_000_000
N = 5200
CH = ["sp", "flow", "pres", "temp"]


def rows(seed, fault=-1):
    """read69b's generator (gen.py): sp, flow, pres, temp; flow drifts by 0.05 a reading from
    fault on (-1: never)."""
    rng = random.Random(seed)
    out = []
    for i in range(N):
        sp = 1.0 if (i // 300) % 2 == 0 else 0.7
        flow = 50 * sp + 2 * math.sin(i / 40) + rng.gauss(0, 0.5)
        pres = 3.0 * sp * sp + 0.05 * math.sin(i / 40) + rng.gauss(0, 0.03)
        temp = 60 + 10 * sp + 3 * math.sin(2 * math.pi * i / 500) + rng.gauss(0, 0.3)
        if fault >= 0 and i >= fault:
            flow += 0.05 * (i - fault)
        out.append([sp, flow, pres, temp])
    return out


class Inputs(unittest.TestCase):

    def setUp(self):
        self.d = vt.Vigild()
        self.d.start()

    def tearDown(self):
        self.d.stop()
        self.d.cleanup()

    def put(self, dev, attrs, want=(200, 201)):
        st, _, data = tp.req(self.d, "PUT", "/v1/devices/%s" % dev, attrs)
        self.assertIn(st, want if isinstance(want, tuple) else (want,), data)
        return vt.loads(data)

    def feed(self, devs):
        """Feeds each device its rows in blocks of 100, each block scored and no training
        running before the next (so trainings come at the same readings on every run)."""
        for k in range(0, N, 100):
            for dev, data in devs.items():
                tp.post_readings(self.d, dev, data[k:k + 100],
                                 [T0 + 1000 * i for i in range(k, k + len(data[k:k + 100]))], CH)
            for dev in devs:
                tp.wait_scored(self.d, dev, k + 100)
                tp.wait_for("%s: no training" % dev,
                            lambda: not tp.models(self.d, dev)["training"], 60)
            # ... and no training queued or its job still ending (`training` is false a few ms
            # before the job ends, and a due one is queued before it begins: under load one
            # then ran on into the next block; the review of session 69 saw the flow fault
            # caught only in short episodes once while bench.py ran).
            tp.wait_for("no training queued or ending", lambda: (
                self.d.metric("vigil_train_queue_jobs") == 0 and self.d.metric(
                    "vigil_train_jobs_ended_total") >= self.d.metric("vigil_train_jobs_taken_total")
                and not any(tp.models(self.d, dev)["training"] for dev in devs)) or None, 60)

    def episodes(self, dev):
        """(start reading, length, channels named) of the device's episodes from 2,500 on; an
        open one runs to the end."""
        evs = self.d.get_json("/v1/devices/%s/anomalies?limit=1000" % dev)["anomalies"]
        out = []
        for e in evs:
            s = (e["start_ts"] - T0) // 1000
            end = (e["end_ts"] - T0) // 1000 if e["end_ts"] is not None else N
            if s >= 2500:
                out.append((s, end - s, [c["channel"] for c in e["channels"]
                                         if c["share"] > 0]))
        return sorted(out)

    def test_set_point_marked_as_input(self):
        self.put("press-2", {"inputs": ["sp"]})
        self.put("press-3", {"inputs": ["sp"]})
        self.feed({"press-1": rows(1), "press-2": rows(1), "press-3": rows(1, fault=4400)})
        scored, marked, fault = (self.episodes(d) for d in ("press-1", "press-2", "press-3"))
        long_scored = [e for e in scored if e[1] >= 50]
        self.assertGreaterEqual(len(long_scored), 2, scored)
        self.assertEqual([e for e in marked if e[1] >= 50], [], marked)
        self.assertLess(len(marked), len(scored), (marked, scored))
        for e in marked + fault:
            self.assertNotIn("sp", e[2], e)
        # Caught (at 4,502, as vigil-replay --inputs sp on the same series), not held: the
        # linear model predicts flow from its previous reading, so a slow drift within the
        # range sp's levels gave is seen in short episodes (1 and 12 readings) only, as it is
        # unmarked (there the switch's own episode at 4,530 hides it).
        caught = [e for e in fault if 4400 <= e[0] < 4700]
        self.assertTrue(caught, fault)
        self.assertIn("flow", caught[0][2], fault)
        st = tp.status(self.d, "press-2")
        self.assertEqual(st["state"], "normal", st)

        # A new set on a device with readings: a warning, and it learns again.
        ans = self.put("press-2", {"inputs": ["sp", "pres"]})
        self.assertIn("the set of input channels changed", " ".join(ans.get("warnings", [])), ans)
        self.assertEqual(tp.status(self.d, "press-2")["state"], "learning")
        self.assertIn("press-2': its input channels changed", self.d.log())
        # The same set in another order changes nothing.
        ans = self.put("press-2", {"inputs": ["pres", "sp"]})
        self.assertNotIn("warnings", ans)

    def test_set_kept_across_restarts(self):
        """The input set is the saved detector's after a clean stop (the same set PUT again
        relearns nothing); one changed after the last save and lost in a crash is not restored
        with the old set: the device learns again (before session 69's review, the saved
        detector came back with sp alone while the attribute named sp and pres)."""
        self.d.stop()
        self.d.config = tp.make_config(tp.config_text(0, warmup=300))
        self.d.start()
        self.put("press-1", {"inputs": ["sp"]})
        data = rows(1)
        for k in range(0, 600, 100):
            tp.post_readings(self.d, "press-1", data[k:k + 100],
                             [T0 + 1000 * i for i in range(k, k + 100)], CH)
            tp.wait_scored(self.d, "press-1", k + 100)
            tp.wait_for("no training", lambda: not tp.models(self.d, "press-1")["training"], 60)
        tp.wait_idle(self.d, "press-1")
        tp.post_readings(self.d, "press-1", data[600:700],
                         [T0 + 1000 * i for i in range(600, 700)], CH)
        tp.wait_scored(self.d, "press-1", 700)
        self.assertNotEqual(tp.status(self.d, "press-1")["state"], "learning")
        self.d.restart()
        self.put("press-1", {"inputs": ["sp"]})
        self.assertNotEqual(tp.status(self.d, "press-1")["state"], "learning")
        self.assertNotIn("press-1': its input channels changed", self.d.log())
        # A new set, then a crash before any save: the old detector is not taken back.
        self.put("press-1", {"inputs": ["sp", "pres"]})
        self.d.kill()
        self.d.start()
        tp.post_readings(self.d, "press-1", data[700:800],
                         [T0 + 1000 * i for i in range(700, 800)], CH)
        tp.wait_for("press-1 learning",
                    lambda: tp.status(self.d, "press-1")["state"] == "learning", 30)
        self.assertIn("its saved detector was made with other input channels", self.d.log())

    def test_attribute_checked(self):
        for body, field in (({"inputs": "sp"}, "field 'inputs'"),
                            ({"inputs": [1]}, "field 'inputs[0]'"),
                            ({"inputs": ["sp", "sp"]}, "field 'inputs[1]'"),
                            ({"inputs": [""]}, "field 'inputs[0]'")):
            err = self.put("x-1", body, want=400)
            self.assertIn(field, err["error"], (body, err))
        self.put("x-1", {"inputs": None})
        self.put("x-1", {"inputs": []})

    def test_warnings_follow_the_channels_in_effect(self):
        """read69e 3: the PUT's warnings come from the channels the pipeline makes inputs, not
        from the attribute's text. On main a name matching no channel ("SP" for sp) and a list
        naming every channel were both told "the device relearns" (neither changes anything:
        the pipeline ignores the one and scores every channel for the other), and neither was
        told what it does."""
        tp.post_readings(self.d, "y-1", rows(1)[:3], [T0 + 1000 * i for i in range(3)], CH)
        tp.wait_scored(self.d, "y-1", 3)
        w = " | ".join(self.put("y-1", {"inputs": ["SP"]}).get("warnings", []))
        self.assertIn("inputs: device 'y-1' has no channel 'SP' yet (it is an input when one "
                      "comes)", w)
        self.assertNotIn("relearns", w)
        w = " | ".join(self.put("y-1", {"inputs": CH}).get("warnings", []))
        self.assertIn("inputs: the list names every channel of device 'y-1': all are scored", w)
        self.assertNotIn("relearns", w)
        self.assertNotIn("no channel", w)
        w = " | ".join(self.put("y-1", {"inputs": ["sp", "TEMP"]}).get("warnings", []))
        self.assertIn("the set of input channels changed", w)
        self.assertIn("no channel 'TEMP' yet", w)
        self.assertNotIn("names every channel", w)


if __name__ == "__main__":
    unittest.main()

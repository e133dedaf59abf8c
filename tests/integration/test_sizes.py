#!/usr/bin/python3
"""vigild integration: sizes and version numbers (session 46).

1. model.hidden changed in the config shapes new detectors only: a device made before keeps its
   size. A group holding a member of each size never hands a member an LSTM of another size
   than its own (the group's LSTM, of its leader's size, went to every member: the other
   member then served it and was discarded as corrupt at the next restart).

Python 3 standard library.
"""

import os
import random
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import test_groups as tg  # noqa: E402  (helpers only)
import vigiltest as vt  # noqa: E402


def lstm_hidden(d, dev):
    """The hidden size of the LSTM a device serves (GET .../model/weights), None if none."""
    st, _, body = tp.req(d, "GET", "/v1/devices/%s/model/weights" % dev)
    if st != 200:
        return None
    t = tp.st_parse(body)
    # The first layer's recurrent weights: [4 H, H].
    for name, (_, shape, _) in sorted(t.items()):
        if len(shape) == 2 and shape[0] == 4 * shape[1]:
            return shape[1]
    raise AssertionError("no recurrent weights in %r" % sorted(t))


class GroupOfTwoSizes(tp.DaemonPerTest):
    CONFIG = tp.config_text(0)

    def test_no_member_gets_an_lstm_of_another_size(self):
        d, rng = self.d, random.Random(46)
        # "small" made with model.hidden = HIDDEN, trained alone in the group.
        tg.put_group(d, "small", "g1")
        self.feed("small", tg.squashed(400, 0, tp.OMEGA_A, 0.01, rng), 0)
        tp.wait_idle(d, "small", 1)
        d.stop()
        vt.write_file(d.config, tp.config_text(0, hidden=2 * tp.HIDDEN))
        d.start()
        # "big" made after the change, in the same group: both train together.
        tg.put_group(d, "big", "g1")
        self.feed("big", tg.squashed(400, 3, tp.OMEGA_A, 0.01, rng), 0)
        devs = ("small", "big")

        def settled():
            s = [tp.status(d, x) for x in devs]
            if any(tp.models(d, x)["training"] for x in devs) or \
                    tg.metric_value(d, "vigil_train_queue_jobs") or \
                    any(x["state"] == "learning" for x in s):
                return None
            return s
        tp.wait_for("both members trained", settled, 60)
        # A retrain of the group asked on each member in turn (the squashed oscillator: an LSTM
        # serves the group).
        for x in devs:
            top = max(v["version"] for v in tp.models(d, x)["versions"])
            r = d.curl("POST", "/v1/devices/%s/model/retrain" % x)
            self.assertEqual(r.status, 202, r)
            tp.wait_for("a retrain asked on " + x, lambda: max(v["version"] for v in tp.models(
                d, x)["versions"]) > top and settled(), 60)
        sizes = {x: lstm_hidden(d, x) for x in ("small", "big")}
        # The group's LSTM serves (else no size could differ), each member at most its own size.
        self.assertTrue(any(sizes.values()), sizes)
        before = {x: tp.status(d, x) for x in ("small", "big")}
        self.assertIn(sizes["small"], (None, tp.HIDDEN), sizes)
        self.assertIn(sizes["big"], (None, 2 * tp.HIDDEN), sizes)
        d.stop()
        d.start()
        for x in ("small", "big"):
            s = tp.status(d, x)
            self.assertEqual((s["model"], s["state"] != "learning"),
                             (before[x]["model"], True), s)


if __name__ == "__main__":
    unittest.main()

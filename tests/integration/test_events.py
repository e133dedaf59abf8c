#!/usr/bin/python3
"""vigild integration: how an anomaly episode ended, told to the operator.

EndedBy: a device pushed into an anomaly by a burst of another regime, then given its own
regime back. While active its event says "ended_by": null; once ended, GET /v1/anomalies and
the device's events say how (cleared, accepted or released), vigil_anomaly_episodes_ended_total
counts it under that reason (every reason listed at 0 from the start), and after a restart the
closed event, read back from the database, still says how it ended. An episode still active
when the device's channel set changes ends by "reset".

Python 3 standard library.
"""

import os
import random
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_pipeline as tp  # noqa: E402  (helpers only: its TestCases are not collected here)
import vigiltest as vt  # noqa: E402

T0 = 1_700_000_000_000  # DaemonPerTest.feed's first timestamp
REASONS = ("cleared", "accepted", "released", "reset")


def ended_counts(d):
    """vigil_anomaly_episodes_ended_total by reason (asserts every reason is listed)."""
    text = d.metrics()
    counts = {}
    for r in REASONS:
        m = re.search(r'^vigil_anomaly_episodes_ended_total\{reason="%s"\} (\S+)$' % r, text,
                      re.M)
        if m is None:
            raise AssertionError("no vigil_anomaly_episodes_ended_total for reason %s" % r)
        counts[r] = float(m.group(1))
    return counts


class EndedBy(tp.DaemonPerTest):

    def events(self, dev):
        return self.d.get_json("/v1/devices/%s/anomalies" % dev)["anomalies"]

    def test_ended_event_says_how_across_a_restart(self):
        d, dev = self.d, "ev-1"
        self.assertEqual(ended_counts(d), {r: 0 for r in REASONS})
        rng = random.Random(3)
        data = tp.rotation(650, 0, tp.OMEGA_A, 0.01, rng)
        burst = tp.rotation(30, 650, tp.OMEGA_B, 0.01, random.Random(4), amp=3.0)
        self.feed(dev, data[:500], 0)
        tp.wait_idle(d, dev, 1)
        self.feed(dev, data[500:650], 500)
        self.feed(dev, burst, 650)
        self.assertEqual(tp.status(d, dev)["state"], "anomaly")
        active = tp.wait_for("the active event listed", lambda: self.events(dev), 10)[0]
        self.assertTrue(active["active"], active)
        self.assertIn("ended_by", active)
        self.assertIsNone(active["ended_by"], active)

        # Its own regime again, 100 readings at a time (at most 600), until the episode ends.
        k = 680
        while tp.status(d, dev)["state"] == "anomaly":
            self.assertLess(k, 680 + 600, "the episode never ended")
            self.feed(dev, tp.rotation(100, k, tp.OMEGA_A, 0.01, rng), k)
            k += 100
        ended = tp.wait_for("the event closed in the listing", lambda: [
            e for e in self.events(dev) if not e["active"]], 10)
        self.assertEqual(ended[0]["id"], active["id"], ended)
        why = ended[0]["ended_by"]
        self.assertIn(why, ("cleared", "accepted", "released"), ended[0])
        fleet = [e for e in d.get_json("/v1/anomalies")["anomalies"] if e["device"] == dev]
        self.assertIn(ended[0], fleet)
        counts = ended_counts(d)
        for r in REASONS:
            want = sum(1 for e in self.events(dev) if not e["active"] and e["ended_by"] == r)
            self.assertEqual(counts[r], want, (r, counts))
        self.assertEqual(counts[why], len([e for e in ended if e["ended_by"] == why]))
        self.assertGreaterEqual(counts[why], 1)
        before = self.events(dev)

        d.stop()  # SIGTERM: exit 0 asserted
        d.start()
        self.assertEqual(self.events(dev), before)
        self.assertEqual(ended_counts(d), {r: 0 for r in REASONS})  # counters of this run

    def test_channels_changed_ends_by_reset(self):
        """An episode still active when the device's channel set changes ends by "reset": the
        device's detector starts over (learning), no detector reason."""
        d, dev = self.d, "ev-2"
        data = tp.rotation(650, 0, tp.OMEGA_A, 0.01, random.Random(5))
        self.feed(dev, data[:500], 0)
        tp.wait_idle(d, dev, 1)
        self.feed(dev, data[500:650], 500)
        self.feed(dev, tp.rotation(30, 650, tp.OMEGA_B, 0.01, random.Random(6), amp=3.0), 650)
        self.assertEqual(tp.status(d, dev)["state"], "anomaly")
        # One more reading, with a fourth channel (feed's timestamps: T0 + 1 s a reading).
        tp.post_readings(d, dev, [[0.0, 1.0, 2.3, 7.0]], [T0 + 1000 * 680], tp.CH3 + ["w"])
        ended = tp.wait_for("the event closed", lambda: [
            e for e in self.events(dev) if not e["active"]], 10)
        self.assertEqual(ended[0]["ended_by"], "reset", ended)
        self.assertEqual(ended_counts(d)["reset"], 1)


if __name__ == "__main__":
    vt.main()

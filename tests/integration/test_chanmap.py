#!/usr/bin/python3
"""vigild integration: how a point's fields map onto its device's channels.

The pipeline maps a point's fields onto the device's channels by name. Its fast path (a
point that carries exactly the device's channels in their order, checked against the shard's
shared copy of the channel list) and its slow path (any other order, a subset, a new channel)
must give the same mapping: the status's latest values name each value's own channel.

1. Points in the device's order, then reordered, then a subset (the rest carried forward),
   then in order again: every latest value is the one sent for that channel.
2. A new channel joins (the model starts learning again) and later points, in the new order
   and in another, still map by name.
3. Two devices with the same channels in different orders, fed alternately in the same
   requests, each map by name (a shared channel list belongs to one order only).

Python 3 standard library.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402

T0 = 1_700_000_000_000


def lp(device, ts, fields):
    """One line-protocol line with fields in the given order ([(name, value)])."""
    return "m,device=%s %s %d" % (device, ",".join("%s=%r" % (k, float(v)) for k, v in fields),
                                  ts)


class ChannelMap(vt.DaemonTestCase):

    def write(self, lines):
        r = self.d.write_lp("\n".join(lines) + "\n", precision="ms")
        self.assertEqual(r.status, 204, r.body)

    def wait_scored(self, device, n, timeout=60):
        deadline = time.time() + timeout
        while True:
            s = self.d.get_json("/v1/devices/%s/status" % device)
            if s.get("readings_scored", 0) >= n:
                return s
            if time.time() > deadline:
                raise AssertionError("%s scored %r of %d" % (device, s.get("readings_scored"), n))
            time.sleep(0.05)

    def test_order_subset_and_back(self):
        dev, ts = "map-1", T0
        chans = ["a", "b", "c", "d"]
        for i in range(20):  # the device's order is a, b, c, d
            self.write([lp(dev, ts, [(c, 10 * k + i) for k, c in enumerate(chans)])])
            ts += 1000
        s = self.wait_scored(dev, 20)
        self.assertEqual(s["latest"], {"a": 19.0, "b": 29.0, "c": 39.0, "d": 49.0})
        self.write([lp(dev, ts, [("d", 4.5), ("b", 2.5), ("a", 1.5), ("c", 3.5)])])
        ts += 1000
        s = self.wait_scored(dev, 21)
        self.assertEqual(s["latest"], {"a": 1.5, "b": 2.5, "c": 3.5, "d": 4.5})
        self.write([lp(dev, ts, [("c", -3.0), ("a", -1.0)])])
        ts += 1000
        s = self.wait_scored(dev, 22)
        self.assertEqual(s["latest"], {"a": -1.0, "b": 2.5, "c": -3.0, "d": 4.5})
        self.assertEqual(sorted(s["imputed_channels"]), ["b", "d"])
        self.write([lp(dev, ts, [("a", 7.0), ("b", 8.0), ("c", 9.0), ("d", 6.0)])])
        s = self.wait_scored(dev, 23)
        self.assertEqual(s["latest"], {"a": 7.0, "b": 8.0, "c": 9.0, "d": 6.0})
        self.assertEqual(s["imputed_channels"], [])

    def test_new_channel(self):
        dev, ts = "map-2", T0
        for i in range(10):
            self.write([lp(dev, ts, [("x", i), ("y", 100 + i)])])
            ts += 1000
        self.wait_scored(dev, 10)
        self.write([lp(dev, ts, [("x", 1.0), ("z", 3.0), ("y", 2.0)])])
        ts += 1000
        s = self.wait_scored(dev, 11)
        self.assertEqual(s["latest"], {"x": 1.0, "y": 2.0, "z": 3.0})
        for i in range(5):  # the new order: x, y, z
            self.write([lp(dev, ts, [("x", i), ("y", 10 + i), ("z", 20 + i)])])
            ts += 1000
        s = self.wait_scored(dev, 16)
        self.assertEqual(s["latest"], {"x": 4.0, "y": 14.0, "z": 24.0})
        self.write([lp(dev, ts, [("z", -2.0), ("y", -1.0), ("x", -0.5)])])
        s = self.wait_scored(dev, 17)
        self.assertEqual(s["latest"], {"x": -0.5, "y": -1.0, "z": -2.0})

    def test_two_orders_same_names(self):
        ts = T0
        for i in range(15):
            self.write([lp("ord-1", ts, [("p", i), ("q", 50 + i), ("r", 90 + i)]),
                        lp("ord-2", ts, [("r", 300 + i), ("q", 200 + i), ("p", 100 + i)])])
            ts += 1000
        s1, s2 = self.wait_scored("ord-1", 15), self.wait_scored("ord-2", 15)
        self.assertEqual(s1["latest"], {"p": 14.0, "q": 64.0, "r": 104.0})
        self.assertEqual(s2["latest"], {"p": 114.0, "q": 214.0, "r": 314.0})
        # Each in the other's order now.
        self.write([lp("ord-1", ts, [("r", 3.0), ("q", 2.0), ("p", 1.0)]),
                    lp("ord-2", ts, [("p", 4.0), ("q", 5.0), ("r", 6.0)])])
        s1, s2 = self.wait_scored("ord-1", 16), self.wait_scored("ord-2", 16)
        self.assertEqual(s1["latest"], {"p": 1.0, "q": 2.0, "r": 3.0})
        self.assertEqual(s2["latest"], {"p": 4.0, "q": 5.0, "r": 6.0})


if __name__ == "__main__":
    unittest.main()

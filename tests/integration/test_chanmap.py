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
4. NewChannel (session 65), a device with a trained model:
   - A JSON write bringing it a new channel says so in the answer's "warnings" (once, not on
     the next write), the log says it at warn level, vigil_model_relearns_total counts it,
     and GET .../model lists no version serving while version 0 (persistence) learns: the
     old version is "serving": false, "rollback": false, and a rollback to it is 409.
   - A value beyond float range (1e39, -1e300) scores as the extreme it is, like 1e6 (an
     anomaly at once), not as a missing reading; latest shows it (clamped to +-FLT_MAX).
   - A channel stuck beyond float range opens one episode, and once accepted the trainings
     learn it (their window reads it clamped as well): it does not open again.
5. NewChannelTold (session 65, read65c's findings): what the warning says is true.
   - A reading that will not be scored (out of order behind the device's newest or the batch's
     point before it, far ahead, in a maintenance period, more than 256 fields) brings no
     channel: no warning.
   - A brand-new device whose fields come one by one loses no detection (it has none yet): no
     warning, not counted, an info line.
   - A group member's warning and log line say what the group's trainings do, by where it
     stands (session 66, read66a): a member that does not lead is left out until its channels
     match; the member with the newest model (session 67; the first of equals in join order)
     relearns and the others, left out, keep their model (checked through the group's next
     training); a member whose new channels match the lead's, or a lead whose channels every
     other member has, is told so (session 67, read67a); a group of one is told as a device
     alone. The log line names every new channel of the point.
   - At most 16 warnings a batch (the counter has them all), and a device with 62 channels
     sent 2 new ones in one point and 2 more in the next is told of the first 2 (room for 2,
     and the first point starts the learning again).
6. A PUT limit on a channel beyond the model's 64 (stored, not modelled) says it is never
   judged, and one on a channel never sent says it has none
   (ChannelMap.test_limit_on_a_channel_beyond_the_model).

Python 3 standard library.
"""

import math
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
import pipeline_fx as tp  # noqa: E402

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
        # b and d imputed: listed in missing_channels since the reading before (session 69),
        # their latest values kept (not missing: fewer than 10 readings and 5 minutes).
        self.assertEqual(s["latest"], {"a": -1.0, "b": 2.5, "c": -3.0, "d": 4.5})
        self.assertEqual(sorted(s["imputed_channels"]), ["b", "d"])
        self.assertEqual(sorted((m["channel"], m["readings_missing"], m["last_seen_ts"])
                                for m in s["missing_channels"]),
                         [("b", 1, ts - 2000), ("d", 1, ts - 2000)])
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

    def test_limit_on_a_channel_beyond_the_model(self):
        """A limit on a channel the model has no room for (64 channels, not one of them) is
        never judged: the PUT says so, for a channel stored beyond the 64 and for one never
        sent, each in its own words. Session 65: no warning for c64, and "applies when one
        comes" for zz; main (session 66, read66a): "stored" of zz, never sent."""
        dev = "wide-lim"
        self.assertEqual(self.d.post_json([{"device": dev, "ts": T0, "values": {
            "c%02d" % c: float(c) for c in range(65)}}]).status, 200)
        self.wait_scored(dev, 1)
        r = self.d.curl("PUT", "/v1/devices/%s" % dev, "-H", "Content-Type: application/json",
                        "--data-binary", '{"limits": {"c00": {"max": 1}, "c64": {"max": 1}, '
                        '"zz": {"max": 1}}}')
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(r.json().get("warnings", [])), [
            "limits.c64: the model of device 'wide-lim' has its 64 channels, 'c64' not one of "
            "them: stored, not modelled, the limit is never judged",
            "limits.zz: device 'wide-lim' has no channel 'zz' and its model has its 64 channels: "
            "readings of it would be stored, not modelled; the limit is never judged"], r.json())


FLT_MAX = 3.4028234663852886e38


class NewChannel(vt.DaemonTestCase):
    CONFIG = tp.config_text(0)

    def trained(self, dev):
        """Feeds dev the linear oscillator through its warmup; waits for a version to serve."""
        rng = random.Random(7)
        n = tp.WARMUP + 20
        ts = [T0 + 1000 * k for k in range(n)]
        tp.post_readings(self.d, dev, tp.rotation(n, 0, tp.OMEGA_A, 0.01, rng), ts, tp.CH3)
        tp.wait_scored(self.d, dev, n)
        m = tp.wait_for("%s to serve a trained version" % dev,
                        lambda: (lambda m: m if m["serving"]["version"] > 0
                                 and not m["training"] else None)(tp.models(self.d, dev)), 120)
        return m, n

    def post(self, dev, k, values):
        r = self.d.post_json([{"device": dev, "ts": T0 + 1000 * k, "values": values}])
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_new_channel_warns_and_no_version_serves(self):
        d, dev = self.d, "nc-1"
        m, k = self.trained(dev)
        old = m["serving"]["version"]
        self.assertEqual([v["version"] for v in m["versions"] if v["serving"]], [old], m)
        before = d.metric("vigil_model_relearns_total", need=True)
        ans = self.post(dev, k, {"x": 0.1, "y": 0.9, "z": 2.3, "typo": 1.0})
        self.assertEqual(ans.get("warnings"), ["device 'nc-1': new channel 'typo': its model "
                                               "starts learning again"], ans)
        tp.wait_scored(d, dev, k + 1)
        ans = self.post(dev, k + 1, {"x": 0.1, "y": 0.9, "z": 2.3, "typo": 1.0})
        self.assertNotIn("warnings", ans)  # known now: nothing more starts again
        tp.wait_scored(d, dev, k + 2)
        self.assertEqual(d.metric("vigil_model_relearns_total"), before + 1)
        self.assertRegex(d.log(), r"warn +pipeline: device 'nc-1' has a new channel 'typo' "
                                  r"\(4 channels now\): its model starts learning again")
        m = tp.models(d, dev)
        self.assertEqual(m["serving"], {"version": 0, "kind": "persistence"}, m)
        self.assertEqual([v["version"] for v in m["versions"] if v["serving"]], [], m)
        v = [v for v in m["versions"] if v["version"] == old][0]
        self.assertFalse(v["rollback"], v)
        r = d.curl("POST", "/v1/devices/%s/model/rollback" % dev, "--data-binary",
                   '{"version": %d}' % old)
        self.assertEqual(r.status, 409, r)
        self.assertIn("was trained on 3 channels and the device has 4 now", r.json()["error"])

    def test_beyond_float_range_is_extreme_not_missing(self):
        d = self.d
        got = {}
        for dev, x, x_as in (("big-0", 1e6, 1e6), ("big-1", 1e39, FLT_MAX),
                             ("big-2", -1e300, -FLT_MAX)):
            _, k = self.trained(dev)
            self.post(dev, k, {"x": x, "y": 0.9, "z": 2.3})
            s = tp.wait_scored(d, dev, k + 1)
            # latest: 7 significant digits, as every latest value (3.402823e+38)
            x_got = s["latest"]["x"]  # main: null (taken for missing)
            got[dev] = (s["state"], s["imputed_channels"],
                        x_got if x_got is None else round(x_got / x_as, 6))
        self.assertEqual(got, {"big-0": ("anomaly", [], 1.0), "big-1": ("anomaly", [], 1.0),
                               "big-2": ("anomaly", [], 1.0)})

    def test_stuck_beyond_float_range_is_learnt_once_accepted(self):
        """A channel stuck beyond float range opens one episode; once it is accepted, the
        trainings learn the channel at the level it scores at (the window reads it clamped too),
        as a stuck 1e6 is learnt. The window read it as missing (carried forward from before the
        fault): each training learnt the old level and the accepted episode opened again."""
        d, dev = self.d, "stuck-1"
        _, k = self.trained(dev)
        first = T0 + 1000 * k  # the first stuck reading: it opens the episode (main: none)
        rng = random.Random(11)

        def stuck(n):
            nonlocal k
            for _ in range(n // 50):
                rows = [[1e39, r[1], r[2]] for r in tp.rotation(50, k, tp.OMEGA_A, 0.01, rng)]
                tp.post_readings(d, dev, rows, [T0 + 1000 * j for j in range(k, k + 50)], tp.CH3)
                k += 50
                tp.wait_scored(d, dev, k)
                tp.wait_for("%s: no training running" % dev,
                            lambda: not tp.models(d, dev)["training"] or None, 120)
        stuck(1000)  # the episode, accepted (accept_after), and the training that asks
        for v in (3, 4):  # two more trainings (retrain_every is 0 here), each fed after
            tp.jreq(d, "POST", "/v1/devices/%s/model/retrain" % dev, want=202)
            tp.wait_idle(d, dev, v)
            stuck(300)
        eps = d.get_json("/v1/devices/%s/anomalies" % dev)["anomalies"]
        s = tp.status(d, dev)
        # branch before the fix: 2 episodes, the device in anomaly at the end; main: 1 episode,
        # opened later than the first stuck reading (taken for missing), then normal
        self.assertEqual((len(eps), eps[0]["start_ts"] if eps else None, s["state"]),
                         (1, first, "normal"), (eps, s))


class NewChannelTold(vt.DaemonTestCase):
    """A small warmup: trained devices are cheap here (read65c's findings, session 65)."""
    WARMUP = 40
    # max_ahead 7d: a reading 2 days ahead is stored (not scored) rather than refused.
    CONFIG = tp.config_text(0, warmup=WARMUP, hidden=16, extra="[storage]\nmax_ahead = 7d\n")

    def feed(self, devs, n, chans, k0=0):
        """n readings of each of devs, interleaved, one request."""
        items = [{"device": v, "ts": T0 + 1000 * k,
                  "values": {c: math.sin(0.3 * k + i) + 0.01 * j for i, c in enumerate(chans)}}
                 for k in range(k0, k0 + n) for j, v in enumerate(devs)]
        tp.jreq(self.d, "POST", "/v1/readings", items)

    def trained(self, devs, chans=("x", "y", "z")):
        """Feeds devs through the warmup; waits until each serves a trained version."""
        n = self.WARMUP + 20
        self.feed(devs, n, chans)
        for dev in devs:
            tp.wait_scored(self.d, dev, n)
            tp.wait_for("%s to serve a trained version" % dev,
                        lambda: (lambda m: m["serving"]["version"] > 0
                                 and not m["training"])(tp.models(self.d, dev)) or None, 120)
        return n

    def post(self, items):
        r = self.d.post_json(items)
        self.assertEqual(r.status, 200, r)
        return r.json().get("warnings")

    def test_readings_not_scored_bring_nothing(self):
        """main: each of the four answers warned of 'typo', though none was scored (and no
        relearn was logged or counted)."""
        d, dev = self.d, "ns-1"
        k = self.trained([dev])
        before = d.metric("vigil_model_relearns_total", need=True)
        known = {"x": 0.1, "y": 0.2, "z": 0.3}
        typo = dict(known, typo=1.0)
        got = []
        got.append(self.post([{"device": dev, "ts": T0 + 1000 * (k - 5), "values": typo}]))
        ahead = int(time.time() * 1000) + 2 * 86400000
        got.append(self.post([{"device": dev, "ts": ahead, "values": typo}]))
        got.append(self.post([{"device": dev, "ts": T0 + 1000 * (k + 10), "values": known},
                              {"device": dev, "ts": T0 + 1000 * (k + 9), "values": typo}]))
        tp.jreq(d, "POST", "/v1/devices/%s/maintenance" % dev, {"minutes": 5})
        got.append(self.post([{"device": dev, "ts": int(time.time() * 1000), "values": typo}]))
        self.assertEqual(got, [None] * 4)
        # Stored, not scored: the device still has 3 channels and nothing began again.
        self.post([{"device": dev, "ts": T0 + 1000 * (k + 20), "values": known}])
        s = tp.wait_scored(d, dev, k + 2)
        self.assertEqual(sorted(s["latest"]), ["x", "y", "z"], s)
        self.assertEqual(d.metric("vigil_model_relearns_total"), before)
        self.assertNotIn("new channel 'typo'", d.log())

    def test_point_too_wide_to_score_brings_nothing(self):
        """A point of more than 256 fields is stored, not scored (point_prepare maps at most
        PIPE_POINT_FIELDS): no warning. Branch before the review (session 66): 16 warnings (room
        for 61 of its 300 new fields), while nothing began again."""
        d, dev = self.d, "wide-pt"
        k = self.trained([dev])
        before = d.metric("vigil_model_relearns_total", need=True)
        known = {"x": 0.1, "y": 0.2, "z": 0.3}
        wide = dict(known, **{"f%03d" % i: 1.0 for i in range(300)})
        self.assertIsNone(self.post([{"device": dev, "ts": T0 + 1000 * k, "values": wide}]))
        self.post([{"device": dev, "ts": T0 + 1000 * (k + 1), "values": known}])
        s = tp.wait_scored(d, dev, k + 1)
        self.assertEqual(sorted(s["latest"]), ["x", "y", "z"], s)
        self.assertEqual(d.metric("vigil_model_relearns_total"), before)

    def test_fields_one_by_one_in_the_first_warmup(self):
        """main: 'hum' and 'pres' each warned, logged at warn level and counted, while the
        device had no detection to lose."""
        d, dev = self.d, "tr-1"
        before = d.metric("vigil_model_relearns_total", need=True)
        got = []
        for k, chans in enumerate((["temp"], ["temp", "hum"], ["temp", "hum", "pres"])):
            got.append(self.post([{"device": dev, "ts": T0 + 1000 * k,
                                   "values": {c: 1.0 + k for c in chans}}]))
            tp.wait_scored(d, dev, k + 1)
        self.assertEqual(got, [None] * 3)
        self.assertEqual(d.metric("vigil_model_relearns_total"), before)
        log = d.log()
        self.assertRegex(log, r"info +pipeline: device 'tr-1' has a new channel 'pres' \(3 "
                              r"channels now\): its model, still learning, starts again")
        self.assertNotRegex(log, r"warn +pipeline: device 'tr-1' has a new channel")

    def group(self, name, devs):
        for v in devs:
            r = self.d.curl("PUT", "/v1/devices/%s" % v, "-H", "Content-Type: application/json",
                            "--data-binary", '{"group": "%s"}' % name)
            self.assertIn(r.status, (200, 201), r)

    def test_group_member_told_of_its_group(self):
        """A later member (not the group's first with a model) is left out until its channels
        match. main: "... until they match, this device or the others get no detection" (one
        text for every member; session 65's, read66a)."""
        d, devs = self.d, ["gm-a", "gm-b"]
        self.group("gm", devs)
        k = self.trained(devs)
        got = self.post([{"device": "gm-b", "ts": T0 + 1000 * k,
                          "values": {"x": 0.1, "y": 0.2, "z": 0.3, "w": 1.0}}])
        tp.wait_scored(d, "gm-b", k + 1)
        self.assertEqual(got, ["device 'gm-b': new channel 'w': its model starts learning again, "
                               "and group 'gm' trains only the members with the channels of its "
                               "member with the newest model: this device gets no detection "
                               "until its channels match theirs or it leaves the group"])
        self.assertRegex(d.log(), r"warn +pipeline: device 'gm-b' has a new channel 'w' \(4 "
                                  r"channels now\): its model starts learning again, and group "
                                  r"'gm' trains only the members with the channels of its member "
                                  r"with the newest model: this device gets no detection until "
                                  r"its channels match theirs")

    def test_group_first_member_told_the_others_keep_their_model(self):
        """The group's first member: its new channels are what the group's trainings take, so
        it gets detection back and the other member, left out, keeps its model (and detects).
        The log line names both new channels. main: the one group text ("this device or the
        others get no detection"), and the log named 'w' alone."""
        d, devs = self.d, ["gf-a", "gf-b"]
        self.group("gf", devs)
        k = self.trained(devs)
        vb = tp.models(d, "gf-b")["serving"]["version"]
        got = self.post([{"device": "gf-a", "ts": T0 + 1000 * k,
                          "values": {"x": 0.1, "y": 0.2, "z": 0.3, "w": 1.0, "v": 2.0}}])
        tail = ("its model starts learning again, and group 'gf' trains only the members with "
                "its channels (it has the group's newest model): the others keep the model they "
                "have, left out of its trainings until they have these channels")
        self.assertEqual(got, ["device 'gf-a': new channel '%s': %s" % (c, tail)
                               for c in ("w", "v")])
        tp.wait_scored(d, "gf-a", k + 1)
        self.assertRegex(d.log(), r"warn +pipeline: device 'gf-a' has new channels 'w', 'v' \(5 "
                                  r"channels now\): its model starts learning again, and group "
                                  r"'gf' trains only the members with its channels \(it has the "
                                  r"group's newest model\): the others keep the model")
        # Its warmup on the new channels, the other member fed on its three meanwhile: the
        # group's training takes gf-a's channels, leaves gf-b out, and gf-b keeps serving.
        self.feed(["gf-a"], self.WARMUP + 20, ("x", "y", "z", "w", "v"), k + 1)
        self.feed(["gf-b"], self.WARMUP + 20, ("x", "y", "z"), k)
        tp.wait_scored(d, "gf-a", k + 1 + self.WARMUP + 20)
        tp.wait_scored(d, "gf-b", k + self.WARMUP + 20)
        tp.wait_for("gf-a to serve a model trained on its 5 channels",
                    lambda: (lambda m: m["serving"]["version"] > 0 and not m["training"])(
                        tp.models(d, "gf-a")) or None, 120)
        self.assertEqual(tp.models(d, "gf-b")["serving"]["version"], vb)
        self.assertNotEqual(tp.status(d, "gf-b")["state"], "learning")
        self.assertIn("device 'gf-b' has other channels than its group 'gf': left out", d.log())

    def w_one_then_other(self, group, devs, first, join=None):
        """devs put in group (in the order join, else devs) and trained; devs[0] sent 'w' (its
        warning has the text first), then devs[1]: told its channels now match. Returns the
        readings each was fed before 'w'."""
        d = self.d
        self.group(group, join or devs)
        k = self.trained(devs)
        w = {"x": 0.1, "y": 0.2, "z": 0.3, "w": 1.0}
        for i, dev in enumerate(devs):
            got = self.post([{"device": dev, "ts": T0 + 1000 * k, "values": w}])
            tp.wait_scored(d, dev, k + 1)
            if i == 0:
                self.assertEqual(len(got), 1, got)
                self.assertIn(first, got[0])
        self.assertEqual(got, ["device '%s': new channel 'w': its model starts learning again, "
                               "and its channels now match those group '%s' trains with: the "
                               "group's next training gives it the shared model" % (dev, group)])
        return k

    def test_group_member_whose_channels_match_told_so(self):
        """gs-a gets 'w' (it leads: equal versions, joined first), then gs-b gets 'w': its
        channels now match the lead's, and the group's next training gives both the model on
        four channels. main (read67a): gs-b was told it gets no detection until its channels
        match theirs."""
        d, devs = self.d, ["gs-a", "gs-b"]
        k = self.w_one_then_other("gs", devs, "trains only the members with its channels")
        v0 = tp.models(d, "gs-b")["serving"]["version"]
        self.assertRegex(d.log(), r"warn +pipeline: device 'gs-b' has a new channel 'w' \(4 "
                                  r"channels now\): its model starts learning again, and its "
                                  r"channels now match those group 'gs' trains with")
        self.feed(devs, self.WARMUP + 20, ("x", "y", "z", "w"), k + 1)
        for dev in devs:
            tp.wait_scored(d, dev, k + 1 + self.WARMUP + 20)
        tp.wait_for("gs-b to serve a model on its 4 channels",
                    lambda: (lambda m: m["serving"]["version"] > v0 and not m["training"])(
                        tp.models(d, "gs-b")) or None, 120)
        self.assertNotIn("device 'gs-b' has other channels", d.log())

    def test_group_lead_whose_channels_the_others_have_told_so(self):
        """The reverse order: gr-b gets 'w' first (it follows gr-a, which leads with three
        channels), then gr-a, the lead, gets 'w': every other member already has its channels,
        so nobody is left out. main (read67a): gr-a was told the others are left out until
        they have these channels."""
        self.w_one_then_other("gr", ["gr-b", "gr-a"],
                              "this device gets no detection until its channels match",
                              join=["gr-a", "gr-b"])

    def test_group_of_one_told_as_a_device_alone(self):
        """A group of one member trains as a lone device: the plain text. main: the group text
        ("this device or the others get no detection", when there are no others)."""
        d, dev = self.d, "g1-a"
        self.group("g1", [dev])
        k = self.trained([dev])
        got = self.post([{"device": dev, "ts": T0 + 1000 * k,
                          "values": {"x": 0.1, "y": 0.2, "z": 0.3, "w": 1.0}}])
        self.assertEqual(got, ["device 'g1-a': new channel 'w': its model starts learning again"])
        tp.wait_scored(d, dev, k + 1)
        self.assertRegex(d.log(), r"warn +pipeline: device 'g1-a' has a new channel 'w' \(4 "
                                  r"channels now\): its model starts learning again, detection "
                                  r"off for model.warmup readings")

    def test_warnings_capped_and_room_across_the_batch(self):
        """At most 16 warnings for a batch bringing 18 trained devices a new channel each (the
        counter has all 18). A trained device with 62 channels sent n0, n1 in one point and n2,
        n3 in the next of one batch is told of n0 and n1 only (DETECTOR_MAX_CHANNELS 64; the
        first point starts its learning again). main: all four (room counted per point)."""
        d = self.d
        devs = ["cap-%02d" % i for i in range(18)]
        k = self.trained(devs, ("a",))
        before = d.metric("vigil_model_relearns_total", need=True)
        got = self.post([{"device": v, "ts": T0 + 1000 * k, "values": {"a": 1.0, "b": 2.0}}
                         for v in devs])
        self.assertEqual(got, ["device '%s': new channel 'b': its model starts learning again"
                               % v for v in devs[:16]])
        for v in devs:
            tp.wait_scored(d, v, k + 1)
        self.assertEqual(d.metric("vigil_model_relearns_total"), before + 18)
        chans = ["c%02d" % c for c in range(62)]
        k = self.trained(["wide-1"], chans)
        wide = {c: 0.5 for c in chans}
        got = self.post([{"device": "wide-1", "ts": T0 + 1000 * k,
                          "values": dict(wide, n0=1.0, n1=2.0)},
                         {"device": "wide-1", "ts": T0 + 1000 * (k + 1),
                          "values": dict(wide, n2=3.0, n3=4.0)}])
        self.assertEqual(got, ["device 'wide-1': new channel '%s': its model starts learning "
                               "again" % c for c in ("n0", "n1")])
        tp.wait_scored(d, "wide-1", k + 2)
        self.assertEqual(d.metric("vigil_model_relearns_total"), before + 19)


if __name__ == "__main__":
    unittest.main()

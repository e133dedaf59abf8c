#!/usr/bin/python3
"""vigild integration: device groups (issue 4): PUT /v1/devices/{id} with {"group": "g1"}.

The members of a group share one model (one training on their pooled windows, one version
history), each keeps its own LSTM state, error scales, threshold and events; members'
readings that arrive together are stepped as one batched model step.

1. Two members trained together serve the same model version (and a group retrain gives both
   the next one); GET device and status show the group.
2. A fault on one member is flagged on that member only.
3. A bad group value is refused with 400 naming the field.
4. Devices that move between groups, or leave one, before their first reading are trained with
   the group they are in (each group keeps its member list beside the devices' group), and
   vigil_readings_scored_serving_total counts exactly the vectors scored by a trained model.
5. model.group_rows bounds the readings a group's training pools (at least one window); a
   window cut to fit is pooled first, so the group still trains.
6. After a restart a member serves the group's version with the same weights and state, and
   the store holds the group's model once (schema 5's shared checkpoints).
7. A member's channel that is flat in its own readings is predicted by persistence whatever
   the group decided for that channel.
8. The group's decision validates on every member's held-out readings (pooled).

Python 3 standard library.
"""

import json
import math
import os
import re
import sqlite3
import struct
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_pipeline as tp  # noqa: E402  (helpers only)
import vigiltest as vt  # noqa: E402

T0 = 1_700_000_000_000


def metric_value(d, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), d.metrics(), re.M)
    return float(m.group(1)) if m else None


def squashed(n, start, omega, noise, rng, amp=1.0):
    """A 3-channel oscillator squashed through tanh, with a third harmonic: unlike
    tp.rotation, no linear map of one reading predicts the next, and the LSTM serves."""
    rows = []
    for k in range(start, start + n):
        c, s = math.cos(omega * k), math.sin(omega * k)
        rows.append([round(amp * math.tanh(4 * c) + rng.gauss(0, noise), 6),
                     round(amp * math.tanh(4 * s) + rng.gauss(0, noise), 6),
                     round(amp * math.cos(3 * omega * k) + rng.gauss(0, noise), 6)])
    return rows


def put_group(d, dev, group, want=(200, 201)):
    r = d.curl("PUT", "/v1/devices/%s" % dev, "-H", "Content-Type: application/json",
               "--data-binary", json.dumps({"group": group}))
    if r.status not in want:
        raise AssertionError("PUT %s: %d %r" % (dev, r.status, r.body[:300]))
    return r


def feed_together(d, devs, rows_by_dev, start_k):
    """Posts the members' readings interleaved (same timestamps, one request per 1000): each
    instant's readings of all members arrive together."""
    items = []
    n = len(rows_by_dev[devs[0]])
    for k in range(n):
        for dev in devs:
            items.append({"device": dev, "ts": T0 + 1000 * (start_k + k),
                          "values": dict(zip(tp.CH3, rows_by_dev[dev][k]))})
    for i in range(0, len(items), 1000):
        tp.jreq(d, "POST", "/v1/readings", items[i:i + 1000])
    for dev in devs:
        tp.wait_scored(d, dev, start_k + n)


class Groups(tp.DaemonPerTest):
    CONFIG = tp.config_text(0)

    def trained_pair(self):
        """Two members trained together: the warm-up's 300 readings, the first training, then
        100 more readings (a device that goes on sending, not a backfill)."""
        d, devs = self.d, ["ga", "gb"]
        for dev in devs:
            put_group(d, dev, "g1")
        rng = tp.random.Random(21)
        rows = {"ga": tp.rotation(400, 0, tp.OMEGA_A, 0.01, rng),
                "gb": tp.rotation(400, 7, tp.OMEGA_A, 0.03, rng, amp=1.3)}
        first = {dev: r[:tp.WARMUP] for dev, r in rows.items()}
        feed_together(d, devs, first, 0)
        for dev in devs:
            tp.wait_idle(d, dev, 1)
        feed_together(d, devs, {dev: r[tp.WARMUP:] for dev, r in rows.items()}, tp.WARMUP)
        # Each member's first request may have trained the group once: wait until no training
        # is due or running and both serve the same version.

        def same():
            s = [tp.status(d, dev) for dev in devs]
            m = [tp.models(d, dev) for dev in devs]
            if any(x["training"] for x in m) or metric_value(d, "vigil_train_queue_jobs"):
                return None
            return s if s[0]["model"] == s[1]["model"] else None
        return devs, rng, tp.wait_for("both members on one version", same, 60)

    def test_members_share_a_version(self):
        d = self.d
        devs, rng, st = self.trained_pair()
        for s in st:
            self.assertEqual(s["group"], "g1", s)
            self.assertNotEqual(s["state"], "learning", s)
            self.assertGreaterEqual(s["model"]["version"], 1, s)
        for dev in devs:
            self.assertEqual(d.device(dev)["group"], "g1")
        ma, mb = tp.models(d, "ga"), tp.models(d, "gb")
        self.assertEqual([v["version"] for v in ma["versions"]],
                         [v["version"] for v in mb["versions"]])
        self.assertEqual(ma["group"], "g1")
        # A retrain asked on one member trains the group: both get the same next version (the
        # first training saw the first 300 readings, this one all 400, so its candidate is
        # swapped in).
        v0 = st[0]["model"]["version"]
        n0 = max(v["version"] for v in ma["versions"])
        r = d.curl("POST", "/v1/devices/gb/model/retrain")
        self.assertEqual(r.status, 202, r)

        def newer():
            m = [tp.models(d, dev) for dev in devs]
            tops = [max(v["version"] for v in x["versions"]) for x in m]
            return tops if all(t > n0 for t in tops) and not any(x["training"] for x in m) \
                else None
        tops = tp.wait_for("a new group version", newer, 60)
        self.assertEqual(tops[0], tops[1])
        sa, sb = tp.status(d, "ga"), tp.status(d, "gb")
        self.assertEqual(sa["model"], sb["model"])
        self.assertGreaterEqual(sa["model"]["version"], v0)
        # Scoring continues for both after the new version, the members' readings of each
        # instant in one batched step.
        b0 = metric_value(d, "vigil_readings_batched_total")
        more = {"ga": tp.rotation(20, 400, tp.OMEGA_A, 0.01, rng),
                "gb": tp.rotation(20, 407, tp.OMEGA_A, 0.03, rng, amp=1.3)}
        feed_together(d, devs, more, 400)
        self.assertEqual(metric_value(d, "vigil_readings_batched_total") - b0, 40)
        # After a restart: the group, the shared version and the version history are back.
        before = [tp.status(d, dev) for dev in devs]
        hist = [[v["version"] for v in tp.models(d, dev)["versions"]] for dev in devs]
        for h in hist:  # each decision under its own number, whether swapped or kept
            self.assertEqual(len(set(h)), len(h), h)
        d.stop()
        d.start()
        for dev, s0, h0 in zip(devs, before, hist):
            s = tp.status(d, dev)
            self.assertEqual((s["group"], s["model"], s["state"] != "learning"),
                             ("g1", s0["model"], True), s)
            self.assertEqual([v["version"] for v in tp.models(d, dev)["versions"]], h0)
        more = {"ga": tp.rotation(5, 420, tp.OMEGA_A, 0.01, rng),
                "gb": tp.rotation(5, 427, tp.OMEGA_A, 0.03, rng, amp=1.3)}
        b0 = metric_value(d, "vigil_readings_batched_total")
        feed_together(d, devs, more, 420)
        self.assertEqual(metric_value(d, "vigil_readings_batched_total") - b0, 10)

    def test_restart_restores_the_shared_model_once(self):
        """A restarted member serves the group's version with the same weights and continues
        from the same state: its forecast is the one before the stop, and its prediction of
        the next reading is that forecast's first step. The store holds the group's model
        once: both members' saved detectors and each version's members refer to one
        checkpoint row."""
        d, devs = self.d, ["ga", "gb"]
        for dev in devs:
            put_group(d, dev, "g1")
        rng = tp.random.Random(21)
        rows = {"ga": squashed(421, 0, tp.OMEGA_A, 0.01, rng),
                "gb": squashed(421, 7, tp.OMEGA_A, 0.02, rng, amp=1.3)}
        feed_together(d, devs, {dev: r[:tp.WARMUP] for dev, r in rows.items()}, 0)
        for dev in devs:
            tp.wait_idle(d, dev, 1)

        def serving():
            s = [tp.status(d, dev) for dev in devs]
            if any(x["training"] for x in s) or metric_value(d, "vigil_train_queue_jobs"):
                return None
            return s if s[0]["model"] == s[1]["model"] else None
        tp.wait_for("both members on one version", serving, 60)
        feed_together(d, devs, {dev: r[tp.WARMUP:420] for dev, r in rows.items()}, tp.WARMUP)
        tp.wait_for("both members on one version", serving, 60)
        before = {}
        for dev in devs:
            s = tp.status(d, dev)
            self.assertEqual(s["model"]["kind"], "lstm", s)  # a checkpoint to share
            before[dev] = (s["model"], tp.models(d, dev)["versions"],
                           tp.req(d, "GET", "/v1/devices/%s/model/weights" % dev)[2],
                           d.get_json("/v1/devices/%s/forecast?horizon=5" % dev)["steps"])
        self.assertEqual(before["ga"][2], before["gb"][2])
        d.stop()  # SIGTERM: every detector saved
        db = sqlite3.connect(d.db_path)
        dets = db.execute("SELECT v.name, t.ckpt_id FROM detectors t JOIN devices v"
                          " ON v.id = t.device_id ORDER BY v.name").fetchall()
        self.assertEqual([n for n, _ in dets], devs)
        self.assertIsNotNone(dets[0][1])
        self.assertEqual(dets[0][1], dets[1][1], dets)
        # One row per version with a checkpoint, whichever member recorded it.
        per_version = db.execute(
            "SELECT m.version, count(DISTINCT m.ckpt_id), count(*) FROM models m"
            " WHERE m.ckpt_id IS NOT NULL GROUP BY m.version").fetchall()
        self.assertTrue(per_version)
        for v, ids, refs in per_version:
            self.assertEqual((ids, refs), (1, 2), (v, per_version))
        n_ckpts = db.execute("SELECT count(*) FROM ckpts").fetchone()[0]
        self.assertLessEqual(n_ckpts, len(per_version) + 1)
        db.close()
        d.start()
        self.assertIn("1 shared models", d.log())
        for dev in devs:
            s = tp.status(d, dev)
            self.assertEqual((s["group"], s["model"], s["state"] != "learning"),
                             ("g1", before[dev][0], True), s)
            self.assertEqual(tp.models(d, dev)["versions"], before[dev][1], dev)
            self.assertEqual(tp.req(d, "GET", "/v1/devices/%s/model/weights" % dev)[2],
                             before[dev][2], dev)
            self.assertEqual(d.get_json("/v1/devices/%s/forecast?horizon=5" % dev)["steps"],
                             before[dev][3], dev)
        b0 = metric_value(d, "vigil_readings_batched_total")
        feed_together(d, devs, {dev: r[420:] for dev, r in rows.items()}, 420)
        self.assertEqual(metric_value(d, "vigil_readings_batched_total") - b0, 2)
        for dev in devs:
            p = d.get_json("/v1/devices/%s/predictions?from=%d" % (dev, T0 + 420 * 1000))
            self.assertEqual(len(p["points"]), 1, p)
            step = before[dev][3][0]
            self.assertEqual(step["ts"], T0 + 420 * 1000)
            self.assertEqual(p["points"][0]["predicted"],
                             {ch: v["mean"] for ch, v in step["values"].items()}, (dev, p, step))

    def test_flat_channel_of_one_member_predicted_exactly(self):
        """Three members whose z moves (a linear function of x and y) and one whose z is
        constant: the group's model predicts z for the three (persistence, 20 steps ahead over
        half a period, is far worse there), and the fourth takes that model but predicts its
        own flat z by persistence, exactly, as a device trained alone would (before: the group's
        model, about 2.06 for 2.0)."""
        d, devs = self.d, ["ga", "gb", "gc", "gd"]
        for dev in devs:
            put_group(d, dev, "g1")
        rng = tp.random.Random(22)
        rows = {dev: tp.rotation(tp.WARMUP + 20, 5 * k, tp.OMEGA_A, 0.01, rng)
                for k, dev in enumerate(devs)}
        rows["gd"] = [[x, y, 2.0] for x, y, _ in rows["gd"]]
        feed_together(d, devs, {dev: r[:tp.WARMUP] for dev, r in rows.items()}, 0)
        for dev in devs:
            tp.wait_idle(d, dev, 1)

        def serving():
            s = [tp.status(d, dev) for dev in devs]
            if any(x["training"] for x in s) or metric_value(d, "vigil_train_queue_jobs"):
                return None
            return s if all(x["model"] == s[0]["model"] for x in s) else None
        st = tp.wait_for("all members on one version", serving, 60)
        self.assertNotEqual(st[0]["model"]["kind"], "persistence", st)
        feed_together(d, devs, {dev: r[tp.WARMUP:] for dev, r in rows.items()}, tp.WARMUP)
        frm = T0 + tp.WARMUP * 1000
        pts = {dev: d.get_json("/v1/devices/%s/predictions?from=%d" % (dev, frm))["points"]
               for dev in devs}
        for dev in devs:
            self.assertEqual(len(pts[dev]), 20, dev)
        self.assertEqual([p["predicted"]["z"] for p in pts["gd"]], [2.0] * 20, pts["gd"][:3])
        # The others' z comes from the model: not the previous reading's value.
        for dev in ("ga", "gb", "gc"):
            prev = [r[2] for r in rows[dev][tp.WARMUP - 1:-1]]
            got = [p["predicted"]["z"] for p in pts[dev]]
            self.assertGreater(sum(1 for g, q in zip(got, prev) if abs(g - q) > 1e-6), 10,
                               (dev, got[:3], prev[:3]))

    def test_decision_validates_on_every_members_tail(self):
        """The group's keep-or-swap decision scores each predictor on every member's held-out
        readings (the newest third of each window, at most val_rows), each member's errors
        normalised by its own tail's variance per channel and the members weighted alike: the
        recorded persistence cost is that pooled figure, computed here from the readings, and
        not the cost on any one member's tail (before: the last member's only)."""
        d, devs = self.d, ["va", "vb", "vc"]
        for dev in devs:
            put_group(d, dev, "v1")
        rng = tp.random.Random(23)
        # Faster members: larger persistence errors for their spread.
        rows = {dev: tp.rotation(tp.WARMUP, 5 * k, tp.OMEGA_A * (1 + 0.5 * k), 0.01, rng,
                                 amp=1.0 + 0.5 * k) for k, dev in enumerate(devs)}
        feed_together(d, devs, rows, 0)

        def trained():
            m = [tp.models(d, dev) for dev in devs]
            return None if any(x["training"] or not x["versions"] for x in m) else m
        ms = tp.wait_for("the group trained", trained, 60)
        got = {m["versions"][-1]["metrics"]["val_mse_persistence"] for m in ms}
        self.assertEqual(len(got), 1, got)  # one decision for all
        got = got.pop()
        self.assertEqual([m["versions"][-1]["metrics"]["pooled_rows"] for m in ms],
                         [3 * tp.WARMUP] * 3)

        def f32(x):
            return struct.unpack("f", struct.pack("f", x))[0]
        nv = tp.WARMUP // 3  # each window's tail: min(val_rows 400, 300 / 3)

        def member_cost(r):
            """Per channel: the tail's squared persistence errors over nv, over the tail's
            variance."""
            out = []
            for c in range(3):
                x = [f32(row[c]) for row in r]
                tail = x[-nv:]
                sse = sum(f32(x[t] - x[t - 1]) ** 2 for t in range(len(x) - nv, len(x)))
                mu = sum(tail) / nv
                var = sum((v - mu) ** 2 for v in tail) / nv
                out.append(sse / nv / var)
            return out
        per = [member_cost(rows[dev]) for dev in devs]
        pooled = sum(sum(p[c] for p in per) / len(per) for c in range(3)) / 3
        self.assertAlmostEqual(got / pooled, 1.0, delta=1e-4, msg=(got, pooled))
        for p in per:  # and it could not be one member's
            self.assertGreater(abs(sum(p) / 3 / pooled - 1.0), 0.05, (per, pooled))

    def test_fault_flagged_on_its_member_only(self):
        d = self.d
        devs, rng, _ = self.trained_pair()
        healthy = {"ga": tp.rotation(100, 400, tp.OMEGA_A, 0.01, rng),
                   "gb": tp.rotation(100, 407, tp.OMEGA_A, 0.03, rng, amp=1.3)}
        feed_together(d, devs, healthy, 400)
        for dev in devs:
            self.assertEqual(d.get_json("/v1/devices/%s/anomalies" % dev)["anomalies"], [], dev)
        fault = {"ga": [[x + 4.0, y, z] for x, y, z in tp.rotation(30, 500, tp.OMEGA_A, 0.01, rng)],
                 "gb": tp.rotation(30, 507, tp.OMEGA_A, 0.03, rng, amp=1.3)}
        feed_together(d, devs, fault, 500)
        ev_a = d.get_json("/v1/devices/ga/anomalies")["anomalies"]
        ev_b = d.get_json("/v1/devices/gb/anomalies")["anomalies"]
        self.assertGreaterEqual(len(ev_a), 1, "the fault on ga was not flagged")
        self.assertTrue(ev_a[0]["active"] or ev_a[0]["start_ts"] >= T0 + 500 * 1000, ev_a[0])
        self.assertEqual(ev_b, [], "a fault on ga was flagged on gb")

    def test_moved_members_train_with_their_group(self):
        d = self.d
        for dev, g in (("ga", "g1"), ("gb", "g1"), ("gc", "g1"), ("gc", "g2"), ("ge", "g2"),
                       ("gd", "g1"), ("gd", None)):
            put_group(d, dev, g)
        devs = ["ga", "gb", "gc", "ge", "gd"]
        rng = tp.random.Random(5)
        rows = {dev: tp.rotation(tp.WARMUP + 20, 3 * k, tp.OMEGA_A, 0.01, rng)
                for k, dev in enumerate(devs)}
        s0 = metric_value(d, "vigil_readings_scored_total")
        v0 = metric_value(d, "vigil_readings_scored_serving_total")
        # One reading short of the warm-up: nobody asked for training, every vector is learning.
        feed_together(d, devs, {dev: r[:tp.WARMUP - 1] for dev, r in rows.items()}, 0)
        self.assertEqual(metric_value(d, "vigil_readings_scored_total") - s0,
                         len(devs) * (tp.WARMUP - 1))
        self.assertEqual(metric_value(d, "vigil_readings_scored_serving_total"), v0)
        feed_together(d, devs, {dev: r[tp.WARMUP - 1:tp.WARMUP] for dev, r in rows.items()},
                      tp.WARMUP - 1)

        def trained():
            st = [tp.status(d, dev) for dev in devs]
            m = [tp.models(d, dev) for dev in devs]
            if any(x["training"] for x in m) or metric_value(d, "vigil_train_queue_jobs") or \
                    any(x["state"] == "learning" for x in st):
                return None
            return st
        st = dict(zip(devs, tp.wait_for("every device trained", trained, 60)))
        self.assertEqual([st[dev]["group"] for dev in devs], ["g1", "g1", "g2", "g2", None])
        self.assertEqual(st["ga"]["model"], st["gb"]["model"])
        self.assertEqual(st["gc"]["model"], st["ge"]["model"])
        # Each group's training pooled its own members' windows (WARMUP readings each), not the
        # members of the other group or gd's (which trained alone: nothing pooled).
        for dev in devs:
            pooled = [v["metrics"].get("pooled_rows") for v in tp.models(d, dev)["versions"]]
            if dev == "gd":
                self.assertEqual(pooled, [None])
            else:
                self.assertEqual(len(pooled), 1, pooled)
                self.assertTrue(2 * tp.WARMUP - 2 <= pooled[0] <= 2 * tp.WARMUP, (dev, pooled))
        # Now every vector is scored by a trained model, and those an LSTM predicted are a part.
        s1 = metric_value(d, "vigil_readings_scored_total")
        v1 = metric_value(d, "vigil_readings_scored_serving_total")
        l1 = metric_value(d, "vigil_readings_scored_lstm_total")
        feed_together(d, devs, {dev: r[tp.WARMUP:] for dev, r in rows.items()}, tp.WARMUP)
        self.assertEqual(metric_value(d, "vigil_readings_scored_total") - s1, len(devs) * 20)
        self.assertEqual(metric_value(d, "vigil_readings_scored_serving_total") - v1,
                         len(devs) * 20)
        self.assertLessEqual(metric_value(d, "vigil_readings_scored_lstm_total") - l1,
                             len(devs) * 20)

    def test_bad_group_refused(self):
        d = self.d
        for body in ('{"group": 5}', '{"group": ""}', '{"group": ["a"]}'):
            r = d.curl("PUT", "/v1/devices/gx", "-H", "Content-Type: application/json",
                       "--data-binary", body)
            self.assertJsonError(r, 400, "group")
        put_group(d, "gx", None)  # null: no group
        self.assertIsNone(d.device("gx")["group"])

    def assertJsonError(self, res, status, contains=None):
        self.assertEqual(res.status, status, res)
        doc = res.json()
        self.assertIn("error", doc)
        if contains:
            self.assertIn(contains, doc["error"])


def train_group(test, devs, group, seed):
    """Puts devs in group, feeds each a warm-up of readings together and waits until the group
    has trained; returns each member's model history."""
    d = test.d
    for dev in devs:
        put_group(d, dev, group)
    rng = tp.random.Random(seed)
    feed_together(d, devs, {dev: tp.rotation(tp.WARMUP, 5 * k, tp.OMEGA_A, 0.01, rng)
                            for k, dev in enumerate(devs)}, 0)

    def trained():
        m = [tp.models(d, dev) for dev in devs]
        if any(x["training"] or not x["versions"] for x in m):
            return None
        return m
    return tp.wait_for("the group trained", trained, 60)


class GroupRows(tp.DaemonPerTest):
    # A window of WARMUP readings, and group_rows below it: one window is pooled.
    CONFIG = tp.config_text(0, extra="train_window = %d\ngroup_rows = 1\n" % tp.WARMUP)

    def test_pool_bounded(self):
        for m in train_group(self, ["ra", "rb", "rc"], "r1", 8):
            self.assertEqual([v["metrics"]["pooled_rows"] for v in m["versions"]],
                             [tp.WARMUP] * len(m["versions"]), m["versions"])


class GroupRowsCut(tp.DaemonPerTest):
    # Windows of WARMUP readings and room for two and a half of them: the third member's window
    # is cut to its newest half and pooled first, so the last window (whose newest readings
    # validate the group's candidate) is a whole one.
    CONFIG = tp.config_text(0, extra="train_window = %d\ngroup_rows = %d\n"
                            % (tp.WARMUP, 2 * tp.WARMUP + tp.WARMUP // 2))

    def test_cut_window_pooled(self):
        devs = ["ca", "cb", "cc"]
        for m in train_group(self, devs, "c1", 9):
            self.assertEqual([v["metrics"]["pooled_rows"] for v in m["versions"]],
                             [2 * tp.WARMUP + tp.WARMUP // 2] * len(m["versions"]),
                             m["versions"])
        for dev in devs:
            self.assertNotEqual(tp.status(self.d, dev)["state"], "learning", dev)


if __name__ == "__main__":
    vt.main()

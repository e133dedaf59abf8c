#!/usr/bin/python3
"""vigild integration: sizes and version numbers (session 46).

1. model.hidden changed in the config shapes new detectors only: a device made before keeps its
   size. A group holding a member of each size never hands a member an LSTM of another size
   than its own (the group's LSTM, of its leader's size, went to every member: the other
   member's training then failed, or it served it and was discarded as corrupt at the next
   restart). Session 47: the group's LSTM is of the size most members were made with (it was
   the leader's), so only the odd member trains alone.
2. A device whose saved detector is lost (its detectors row deleted, as vigild discards a
   damaged one) learns again and numbers its new versions after the ones it keeps, which all
   stay as they were and are listed beside the new ones (the new training took number 1 again,
   overwriting the kept version 1, and the kept 2 and 3 came back above it). Session 47: they
   are listed at once (they were not until the next restart), and the same when the startup's
   one read of the fleet's versions fails and they are read device by device.
3. So does a device that starts learning again on a new channel: its new version follows the
   kept ones (it took number 1 again: listed twice, and the kept one overwritten in the store).
4. Session 47 (groups5): a restored detector saved before its device's newest kept version
   numbers its next one after it (it took that number again); a group's training that leaves
   out its newest member is numbered after every member that takes part (a guard: main passed).
5. Session 48 (api3): a group's kept decision led by a member that is not the newest has a
   newer member keep what it served instead of recording the lead's serving number, one it
   keeps for its own model (it was listed twice, and overwritten in the store). Its review: a
   group training whose first member's window is too short, with one other member, trains the
   other (vigild died of a segmentation fault).

Python 3 standard library.
"""

import os
import random
import re
import subprocess
import sys
import time
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


def full_log(d):
    """The whole vigild log (d.log() keeps only its end, for messages)."""
    with open(d.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def small_then_bigger(test, rng):
    """"small" made with model.hidden = HIDDEN in group g1 and trained alone, then vigild
    restarted with model.hidden = 2 HIDDEN (devices made from then on are bigger)."""
    d = test.d
    tg.put_group(d, "small", "g1")
    test.feed("small", tg.squashed(400, 0, tp.OMEGA_A, 0.01, rng), 0)
    tp.wait_idle(d, "small", 1)
    d.stop()
    vt.write_file(d.config, tp.config_text(0, hidden=2 * tp.HIDDEN))
    d.start()


def settled(d, devs):
    """devs' statuses once none learns and no training runs or waits; else None."""
    s = [tp.status(d, x) for x in devs]
    if any(tp.models(d, x)["training"] for x in devs) or \
            d.metric("vigil_train_queue_jobs") or \
            any(x["state"] == "learning" for x in s):
        return None
    return s


class GroupOfTwoSizes(tp.DaemonPerTest):
    CONFIG = tp.config_text(0)

    def test_no_member_gets_an_lstm_of_another_size(self):
        d, rng = self.d, random.Random(46)
        small_then_bigger(self, rng)
        # "big" made after the change, in the same group: both train together.
        tg.put_group(d, "big", "g1")
        self.feed("big", tg.squashed(400, 3, tp.OMEGA_A, 0.01, rng), 0)
        devs = ("small", "big")
        tp.wait_for("both members trained", lambda: settled(d, devs), 60)
        # A retrain of the group asked on each member in turn (the squashed oscillator: an LSTM
        # serves the group).
        for x in devs:
            top = max(v["version"] for v in tp.models(d, x)["versions"])
            r = d.curl("POST", "/v1/devices/%s/model/retrain" % x)
            self.assertEqual(r.status, 202, r)
            tp.wait_for("a retrain asked on " + x, lambda: max(v["version"] for v in tp.models(
                d, x)["versions"]) > top and settled(d, devs), 60)
        sizes = {x: lstm_hidden(d, x) for x in ("small", "big")}
        # The group's LSTM serves (else no size could differ), each member at most its own size.
        self.assertTrue(any(sizes.values()), sizes)
        before = {x: tp.status(d, x) for x in ("small", "big")}
        self.assertIn(sizes["small"], (None, tp.HIDDEN), sizes)
        self.assertIn(sizes["big"], (None, 2 * tp.HIDDEN), sizes)
        # An LSTM serves: the last training's group decision was an LSTM, which the member of
        # the other size did not take, and the log names it and both sizes.
        m = re.findall(r"device '(small|big)' of group 'g1' trained its own model: it was made "
                       r"with hidden (\d+), layers \d+; the group's LSTM has hidden (\d+)",
                       full_log(d))
        self.assertTrue(m, d.log())
        own = {"small": tp.HIDDEN, "big": 2 * tp.HIDDEN}
        for dev, h_own, h_grp in m:
            self.assertEqual((int(h_own), int(h_grp)), (own[dev], 3 * tp.HIDDEN - own[dev]), m)
        # The last training's own-trained member's version pooled nothing; the other's did.
        newest = {x: max(tp.models(d, x)["versions"], key=lambda v: v["version"]) for x in devs}
        other = "big" if m[-1][0] == "small" else "small"
        self.assertEqual((m[-1][0] + " pooled " + str("pooled_rows" in newest[m[-1][0]]["metrics"]),
                          other + " pooled " + str("pooled_rows" in newest[other]["metrics"])),
                         (m[-1][0] + " pooled False", other + " pooled True"), newest)
        d.stop()
        d.start()
        for x in ("small", "big"):
            s = tp.status(d, x)
            self.assertEqual((s["model"], s["state"] != "learning"),
                             (before[x]["model"], True), s)


class GroupOfTwoSizesMajority(tp.DaemonPerTest):
    """Session 47: the group's LSTM is of the size most members were made with. One member made
    before a change of model.hidden (and leading: the newest version), two after: the two share
    the group's LSTM of their size and the first trains its own. Before, the group's LSTM had
    the leader's size whatever the others', so each of the two trained its own model (a cost of
    two trainings, and no model shared)."""
    CONFIG = tp.config_text(0)

    def test_the_odd_member_trains_alone(self):
        d, rng = self.d, random.Random(47)
        small_then_bigger(self, rng)
        devs = ("small", "big1", "big2")
        for k, x in enumerate(devs[1:]):
            tg.put_group(d, x, "g1")
        tg.feed_together(d, devs[1:], {x: tg.squashed(400, 3 + 2 * k, tp.OMEGA_A, 0.01, rng)
                                       for k, x in enumerate(devs[1:])}, 0)
        tp.wait_for("the members trained", lambda: settled(d, devs), 60)
        # Retrains of the group (bounded) until its decision is an LSTM (the squashed oscillator).
        for _ in range(3):
            if lstm_hidden(d, "big1"):
                break
            top = max(v["version"] for v in tp.models(d, "small")["versions"])
            self.assertEqual(d.curl("POST", "/v1/devices/small/model/retrain").status, 202)
            tp.wait_for("a retrain", lambda: max(v["version"] for v in tp.models(
                d, "small")["versions"]) > top and settled(d, devs), 60)
        sizes = {x: lstm_hidden(d, x) for x in devs}
        self.assertEqual((sizes["big1"], sizes["big2"]), (2 * tp.HIDDEN, 2 * tp.HIDDEN), sizes)
        self.assertIn(sizes["small"], (None, tp.HIDDEN), sizes)
        st = {x: tp.status(d, x)["model"] for x in devs}
        self.assertEqual(st["big1"], st["big2"])  # one version: the group's
        # Every group training with an LSTM: only the odd one trained its own.
        m = re.findall(r"device '(\w+)' of group 'g1' trained its own model: it was made "
                       r"with hidden (\d+), layers \d+; the group's LSTM has hidden (\d+)",
                       full_log(d))
        self.assertTrue(m, d.log())
        self.assertEqual(sorted(set(m)), [("small", str(tp.HIDDEN), str(2 * tp.HIDDEN))], m)


FAILMAINT = os.environ.get("VIGIL_FAILMAINT", "")


class LostDetector(tp.DaemonPerTest):
    CONFIG = tp.config_text(0)

    def top(self, dev):
        m = tp.models(self.d, dev)
        return None if m["training"] else max((v["version"] for v in m["versions"]), default=0)

    def lose(self, dev, rng):
        """dev trained three times (versions 1-3), then vigild stopped and its saved detector
        deleted (as vigild discards a damaged one); returns the kept versions' listing."""
        d = self.d
        self.feed(dev, tp.rotation(400, 0, tp.OMEGA_A, 0.01, rng), 0)
        tp.wait_idle(d, dev, 1)
        for _ in range(2):
            t0 = self.top(dev)
            r = d.curl("POST", "/v1/devices/%s/model/retrain" % dev)
            self.assertEqual(r.status, 202, r)
            tp.wait_for("a retrain", lambda: (self.top(dev) or 0) > t0, 60)
        kept = sorted(tp.models(d, dev)["versions"], key=lambda v: v["version"])
        self.assertEqual([v["version"] for v in kept], [1, 2, 3])
        d.stop()
        p = subprocess.run(["sqlite3", d.db_path, "DELETE FROM detectors; SELECT changes();"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "1"), p.stderr)
        return kept

    def test_new_versions_numbered_after_the_kept_ones(self):
        d, rng, dev = self.d, random.Random(3), "lost-1"
        kept = self.lose(dev, rng)
        d.start()
        self.assertEqual(tp.status(d, dev)["state"], "learning")

        def unserved(vs):
            """Each version as it was but the serving flag (the new one serves)."""
            return [{k: x for k, x in v.items() if k != "serving"} for v in vs]
        # Its kept versions are listed at once (session 47; before, only after the next
        # restart), as they were.
        got = sorted(tp.models(d, dev)["versions"], key=lambda v: v["version"])
        self.assertEqual(unserved(got), unserved(kept))
        self.feed(dev, tp.rotation(400, 400, tp.OMEGA_A, 0.01, rng), 400)
        tp.wait_for("the first training after the loss", lambda: (self.top(dev) or 0) > 3, 60)
        new = tp.status(d, dev)["model"]["version"]
        self.assertEqual(new, 4)
        for restart in (0, 1):
            if restart:
                d.stop()
                d.start()
            got = sorted(tp.models(d, dev)["versions"], key=lambda v: v["version"])
            self.assertEqual([v["version"] for v in got], [1, 2, 3, 4])
            self.assertEqual(unserved(got[:3]), unserved(kept))
            self.assertEqual(tp.status(d, dev)["model"]["version"], 4)
        # The next training goes on after them.
        r = d.curl("POST", "/v1/devices/%s/model/retrain" % dev)
        self.assertEqual(r.status, 202, r)
        tp.wait_for("a retrain", lambda: (self.top(dev) or 0) > 4, 60)
        self.assertEqual(self.top(dev), 5)

    @unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                         "library, set by CTest; not built in a TSan build) not found")
    def test_numbered_after_the_kept_ones_when_the_fleet_read_fails(self):
        """The startup's one read of the fleet's versions fails at its first row (as a corrupt
        page would), so every device's versions are read one by one: a lost detector's too, so
        its new versions still follow the kept ones (session 47; before, the device-by-device
        read passed over a device with no detector, and its first new version was 1 again,
        overwriting the kept version 1)."""
        d, rng, dev = self.d, random.Random(6), "lost-3"
        self.lose(dev, rng)
        flag = os.path.join(vt.mkdtemp(), "fail")
        vt.write_file_atomic(flag, "fail")
        d.prefix = ["env", "LD_PRELOAD=" + vt.preload(FAILMAINT), "VIGIL_FAILMAINT_FLAG=" + flag,
                    "VIGIL_FAILMAINT_AFTER=0", "VIGIL_FAILMAINT_SQL=SELECT d.name, m.version"]
        try:
            d.start()
        finally:
            os.unlink(flag)
        self.assertIn("pipeline: the fleet's model versions read failed", d.log())
        self.assertNotIn("not restored", d.log())
        self.feed(dev, tp.rotation(400, 400, tp.OMEGA_A, 0.01, rng), 400)
        tp.wait_for("the first training after the loss", lambda: tp.status(d, dev)[
            "state"] != "learning" and self.top(dev), 60)
        self.assertEqual(tp.status(d, dev)["model"]["version"], 4)
        d.prefix = []
        d.stop()
        d.start()
        got = sorted(tp.models(d, dev)["versions"], key=lambda v: v["version"])
        self.assertEqual([v["version"] for v in got], [1, 2, 3, 4])

    def test_rollback_while_it_learns_again(self):
        """A lost detector's kept version that served rolls back at once, while the device
        learns again (review of session 47: they are listed at once; before, they were not, and
        the rollback was 404 until the next restart): it serves that version, its next training
        is numbered after the kept ones, and a restart keeps both."""
        d, rng, dev = self.d, random.Random(7), "lost-4"
        self.lose(dev, rng)
        d.start()
        self.assertEqual(tp.status(d, dev)["state"], "learning")
        served = [v["version"] for v in tp.models(d, dev)["versions"] if v["rollback"]]
        self.assertIn(1, served)  # the first version served: a linear model
        # Its first training (asked by the readings caught up at the start) may apply at any
        # time from here: the rollback's answer says what served then.
        r = tp.jreq(d, "POST", "/v1/devices/%s/model/rollback" % dev, {"version": 1})
        self.assertEqual(r, {"device": dev, "serving": 1})
        self.assertNotEqual(tp.status(d, dev)["state"], "learning")
        # That training is numbered after the kept versions.
        tp.wait_for("the first training after the loss", lambda: (self.top(dev) or 0) > 3, 60)
        self.assertEqual(self.top(dev), 4)
        before = tp.status(d, dev)["model"]
        d.stop()
        d.start()
        self.assertEqual(sorted(v["version"] for v in tp.models(d, dev)["versions"]), [1, 2, 3, 4])
        self.assertEqual(tp.status(d, dev)["model"], before)

    def test_detector_saved_before_its_newest_version(self):
        """A saved detector older than the device's newest kept version (as kill -9 can leave
        it: the version's record committed, the detector saved after it not yet): its next
        training is numbered after the kept ones, not under the newest one's number again."""
        d, dev = self.d, "behind-1"
        self.feed(dev, tp.rotation(400, 0, tp.OMEGA_A, 0.01, random.Random(47)), 0)
        tp.wait_idle(d, dev, 1)
        d.stop()
        sql = lambda q: subprocess.run(["sqlite3", d.db_path, q], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, timeout=30)
        p = sql("CREATE TABLE det_old AS SELECT * FROM detectors; SELECT count(*) FROM det_old;")
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "1"), p.stderr)
        d.start()
        for want in ([2, 1], None):
            m0 = tp.models(d, dev)["versions"]
            r = d.curl("POST", "/v1/devices/%s/model/retrain" % dev)
            self.assertEqual(r.status, 202, r)
            tp.wait_for("a retrain", lambda: self.top(dev) is not None and
                        tp.models(d, dev)["versions"] != m0, 60)
            if want is None:
                break
            self.assertEqual(tops(d, dev), want)
            d.stop()
            p = sql("DELETE FROM detectors; INSERT INTO detectors SELECT * FROM det_old;"
                    " SELECT changes(); DROP TABLE det_old;")
            self.assertEqual((p.returncode, p.stdout.strip()), (0, "1"), p.stderr)
            d.start()
            self.assertEqual(tops(d, dev), [2, 1])
        self.assertEqual(tops(d, dev), [3, 2, 1])
        d.stop()
        d.start()
        self.assertEqual(tops(d, dev), [3, 2, 1])

    def test_deleted_and_made_again_starts_from_1(self):
        """The floor of a lost detector's versions goes with the device: one deleted and made
        again under its name has no kept versions, so it numbers from 1."""
        d, rng, dev = self.d, random.Random(4), "lost-2"
        self.feed(dev, tp.rotation(400, 0, tp.OMEGA_A, 0.01, rng), 0)
        tp.wait_idle(d, dev, 1)
        r = d.curl("POST", "/v1/devices/%s/model/retrain" % dev)
        self.assertEqual(r.status, 202, r)
        tp.wait_for("a retrain", lambda: not tp.models(d, dev)["training"] and max(
            v["version"] for v in tp.models(d, dev)["versions"]) == 2, 60)
        d.stop()
        p = subprocess.run(["sqlite3", d.db_path, "DELETE FROM detectors; SELECT changes();"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "1"), p.stderr)
        d.start()
        self.assertEqual(d.curl("DELETE", "/v1/devices/%s" % dev).status, 200)
        self.feed(dev, tp.rotation(400, 0, tp.OMEGA_A, 0.01, rng), 0)
        tp.wait_for("the first training after the delete", lambda: tp.status(d, dev)[
            "state"] != "learning" and not tp.models(d, dev)["training"], 60)
        got = [v["version"] for v in tp.models(d, dev)["versions"]]
        self.assertEqual((got, tp.status(d, dev)["model"]["version"]), ([1], 1))


def tops(d, dev):
    """dev's listed version numbers, newest first."""
    return [v["version"] for v in tp.models(d, dev)["versions"]]


class GroupNewestLeftOut(tp.DaemonPerTest):
    """Session 47 (groups5): a group's training that leaves out the member with the newest
    version is numbered after every member that takes part. hc, ha and hb join in that order
    and train together (version 1); hc holds a growing fault while the schedule trains ha and
    hb (version 2; hc keeps 1); then ha holds one, and the operator's acceptance of hc's asks
    for the group's training, which leaves ha out. train_next orders ha (the newest) first and
    hc (the list's first) next, so the first member that began is hc, whose own next number is
    2: led by it, as before session 47, hb recorded a second version 2 (or took back hc's 1).
    Now the newest of those that began (hb) leads, and hb's and hc's new versions come after
    every one they keep. A guard: main after session 47's groups4 passes it too."""
    CONFIG = tp.config_text(700)

    def test_numbered_after_every_member_that_takes_part(self):
        d, devs = self.d, ["hc", "ha", "hb"]
        for dev in devs:
            tg.put_group(d, dev, "n1")
        rng = random.Random(37)
        tg.feed_together(d, devs, {dev: tp.rotation(tp.WARMUP, 5 * k, tp.OMEGA_A, 0.01, rng)
                                   for k, dev in enumerate(devs)}, 0)
        v1 = tg.wait_newer(d, devs, 0, "the group trained")
        self.assertEqual(len(set(v1)), 1, v1)
        # hc's fault from reading 400 on; ha's and hb's schedules ask at their 1000th reading.
        n = 1000 - tp.WARMUP
        tg.feed_together(d, devs, {
            "hc": tg.ramp_z(n, tp.WARMUP, 400, rng),
            "ha": tp.rotation(n, tp.WARMUP + 5, tp.OMEGA_A, 0.01, rng),
            "hb": tp.rotation(n, tp.WARMUP + 10, tp.OMEGA_A, 0.01, rng)}, tp.WARMUP)
        v2 = tg.wait_newer(d, ["ha", "hb"], v1[0], "ha's and hb's group training")
        self.assertEqual(v2[0], v2[1], v2)
        self.assertEqual(tops(d, "hc"), [v1[0]])
        self.assertEqual(tp.status(d, "hc")["state"], "anomaly")
        self.assertEqual(len(tg.open_events(d, "hc")), 1)
        # ha's fault, fast, until it holds an episode (at most 400 readings).
        k = 1000
        while not tg.open_events(d, "ha"):
            self.assertLess(k, 1400, "ha's fault opened no episode")
            tg.feed_together(d, devs, {
                "hc": tg.ramp_z(20, k, 400, rng),
                "ha": tg.ramp_z(20, k + 5, 1005, rng, per=0.05),
                "hb": tp.rotation(20, k + 10, tp.OMEGA_A, 0.01, rng)}, k)
            k += 20
        self.assertEqual(tp.status(d, "ha")["state"], "anomaly")
        before = {dev: tops(d, dev) for dev in devs}
        self.assertEqual(before, {"hc": [v1[0]], "ha": [v2[0], v1[0]], "hb": [v2[0], v1[0]]})
        st, _, body = tp.req(d, "POST", "/v1/devices/hc/anomalies/accept", {"note": "known"})
        self.assertEqual(st, 200, body)

        def trained():
            # Every member: the training ends each member's part in turn (hc's before hb's), so
            # hc's new version can show while hb's part is still open (seen once under ASan).
            # hc's version first: once it shows, every member has begun, so a flag read after
            # it says that member's part has ended.
            top = tops(d, "hc")
            if top == before["hc"] or any(tp.models(d, x)["training"] for x in devs) or \
                    d.metric("vigil_train_queue_jobs"):
                return None
            return top
        tp.wait_for("the group's training asked by hc's acceptance", trained, 60)
        after = {dev: tops(d, dev) for dev in devs}
        self.assertEqual(after["ha"], before["ha"])  # held: left out
        for dev in ("hb", "hc"):
            self.assertEqual(len(after[dev]), len(set(after[dev])), (dev, after))
            self.assertGreater(after[dev][0], before[dev][0], (dev, before, after))
            self.assertEqual(after[dev][1:], before[dev], (dev, before, after))
        self.assertGreater(after["hb"][0], v2[0], after)
        # The store holds the same after a restart (no kept record overwritten).
        d.stop()
        d.start()
        self.assertEqual({dev: tops(d, dev) for dev in devs}, after)


class NewChannel(tp.DaemonPerTest):
    CONFIG = tp.config_text(0)

    def test_new_version_numbered_after_the_kept_ones(self):
        d, rng, dev = self.d, random.Random(5), "ch-1"
        self.feed(dev, tp.rotation(400, 0, tp.OMEGA_A, 0.01, rng), 0)
        tp.wait_idle(d, dev, 1)
        kept = tp.models(d, dev)["versions"]
        self.assertEqual([(v["version"], v["channels"]) for v in kept], [(1, 3)])
        rows = tp.rotation(400, 400, tp.OMEGA_A, 0.01, rng)
        tp.jreq(d, "POST", "/v1/readings", [
            {"device": dev, "ts": 1_700_000_000_000 + 1000 * (400 + k),
             "values": {"x": r[0], "y": r[1], "z": r[2], "w": 0.5 * r[0] + 0.01 * k}}
            for k, r in enumerate(rows)])
        tp.wait_scored(d, dev, 800)
        tp.wait_for("the training on four channels", lambda: tp.status(d, dev)["state"] !=
                    "learning" and not tp.models(d, dev)["training"], 60)
        for restart in (0, 1):
            if restart:
                d.stop()
                d.start()
            got = sorted(tp.models(d, dev)["versions"], key=lambda v: v["version"])
            self.assertEqual([(v["version"], v["channels"]) for v in got], [(1, 3), (2, 4)])
            self.assertEqual(tp.status(d, dev)["model"]["version"], 2)


class GroupKeepsLeadNotNewest(tp.DaemonPerTest):
    """Session 48 (api3): a group's training that keeps what serves (the candidate validates
    worse) has every member serve the lead's model under the lead's serving number
    (model/detector_calib.c share_take). When the lead is not the newest member (majority_lead
    picks the size most members share), that number may be one a member keeps for a model of
    its own: here x (made with model.hidden H, versions 1 linear, 2 persistence, 3 LSTM,
    serving 3) joins big1 and big2 (2 H, serving their linear version 1); their training keeps
    version 1 (big1 and big2 record 4, not swapped), x takes the decision (the lead serves a
    linear model, which fits any size). main recorded the lead's model on x as version 1
    again: listed [1, 3, 2, 1], serving 1, and after a restart x's own version 1 was gone
    (overwritten in the store). api3 had x keep what it served (3), recording nothing; since
    task versions7 x installs the group's model under a number of its own, 4, after its 3."""
    CONFIG = tp.config_text(0)

    def test_member_keeps_its_own_numbers(self):
        d, rng = self.d, random.Random(47)

        def retrain(dev, peers):
            # Forced: the squashed readings may hold x's episode open, and the training is
            # meant (unforced, 409 since session 65).
            t0 = max(tops(d, dev))
            self.assertEqual(d.curl("POST", "/v1/devices/%s/model/retrain?force=true" % dev)
                             .status, 202)
            tp.wait_for("a retrain of %s" % dev,
                        lambda: max(tops(d, dev)) > t0 and settled(d, peers), 60)

        tg.put_group(d, "x", "g1")
        self.feed("x", tp.rotation(400, 0, tp.OMEGA_A, 0.01, rng), 0)
        tp.wait_idle(d, "x", 1)
        self.feed("x", tg.squashed(400, 400, tp.OMEGA_A, 0.01, rng), 400)
        for _ in range(4):  # bounded: until a retrain swaps
            retrain("x", ["x"])
            if tp.models(d, "x")["serving"]["version"] > 1:
                break
        self.feed("x", tp.rotation(400, 800, tp.OMEGA_A, 0.01, rng), 800)
        retrain("x", ["x"])
        own = {v["version"]: v["created"] for v in tp.models(d, "x")["versions"]}
        d.stop()
        vt.write_file(d.config, tp.config_text(0, hidden=2 * tp.HIDDEN))
        d.start()
        bigs = ["big1", "big2"]
        for dev in bigs:
            tg.put_group(d, dev, "g2")
        tg.feed_together(d, bigs, {dev: tp.rotation(400, 3 + 2 * k, tp.OMEGA_A, 0.01, rng)
                                   for k, dev in enumerate(bigs)}, 0)
        tp.wait_for("the bigs trained", lambda: settled(d, bigs), 60)
        for dev in bigs:
            tg.put_group(d, dev, "g1")
        retrain("big1", ["x"] + bigs)
        # The situation this needs: the group kept its version 1 (no swap) and x served 3.
        m = tp.models(d, "big1")
        self.assertEqual((m["serving"]["version"], m["versions"][0]["version"]), (1, 4), m)
        self.assertFalse(m["versions"][0]["swapped"], m)
        listed = tops(d, "x")
        self.assertEqual(len(listed), len(set(listed)), listed)
        mx = tp.models(d, "x")
        self.assertEqual((listed, mx["serving"]["version"]), ([4, 3, 2, 1], 4), mx)
        self.assertEqual((mx["versions"][0]["swapped"], mx["serving"]["kind"]), (True, "linear"))
        d.stop()
        d.start()
        kept = {v["version"]: v["created"] for v in tp.models(d, "x")["versions"]}
        self.assertEqual({v: kept.get(v) for v in own}, own)
        self.assertEqual((tops(d, "x"), tp.models(d, "x")["serving"]["version"]), (listed, 4))


class GroupKeepsMemberTrainedAlone(tp.DaemonPerTest):
    """Task versions7: a device trained alone (its own version 1, linear) joins a group whose
    member serves the group's version 1, another model; the group's training keeps version 1
    (its candidates, trained on rows of another regime, validate worse). main decided that the
    joiner already served the group's model by its number (model/detector_calib.c share_take):
    it kept its own model and recorded the group's kept decision, serving 1. Now it installs the
    group's model under a number of its own (2, after its 1): it predicts what the lead predicts
    for the same readings, lists [2, 1] serving 2, across a restart, and rolls back to 1 and
    forth to 2."""
    CONFIG = tp.config_text(0)

    def test_joiner_installs_the_groups_model_under_its_own_number(self):
        d, rng, devs = self.d, random.Random(7), ["ga", "gb"]
        tg.put_group(d, "ga", "g")
        self.feed("ga", tp.rotation(500, 0, tp.OMEGA_A, 0.01, rng), 0)
        self.feed("gb", tp.rotation(500, 0, tp.OMEGA_A, 0.01, rng), 0)
        for dev in devs:
            tp.wait_idle(d, dev, 1)
        self.assertEqual({dev: tops(d, dev) for dev in devs}, {"ga": [1], "gb": [1]})
        tg.put_group(d, "gb", "g")
        # Another regime (fewer readings than accept_after), then regime A again: the newest
        # rows validate, the candidates trained on the rows before them predict them worse.
        n = 500
        for omega, k in ((tp.OMEGA_B, 300), (tp.OMEGA_A, tp.VAL_ROWS)):
            tg.feed_together(d, devs, {dev: tp.rotation(k, n, omega, 0.01, rng)
                                       for dev in devs}, n)
            n += k
        self.assertEqual(d.curl("POST", "/v1/devices/ga/model/retrain").status, 202)
        tp.wait_for("the group's training", lambda: settled(d, devs)
                    if min(max(tops(d, dev)) for dev in devs) > 1 else None, 60)
        # The situation this needs: the group kept ga's version 1.
        m = tp.models(d, "ga")
        self.assertEqual((m["serving"]["version"], tops(d, "ga")), (1, [2, 1]), m)
        self.assertFalse(m["versions"][0]["swapped"], m)

        def same_predictions(k, same=True):
            """The same readings into both: gb predicts them as ga does (the same model), or
            not (same=False: another model)."""
            rows = tp.rotation(20, k, tp.OMEGA_A, 0.01, rng)
            tg.feed_together(d, devs, {dev: rows for dev in devs}, k)
            path = "/v1/devices/%s/predictions?from=" + str(tg.T0 + 1000 * (k + 1))
            got = {dev: [p["predicted"] for p in d.get_json(path % dev)["points"]]
                   for dev in devs}
            self.assertEqual(len(got["ga"]), 19, got)
            self.assertEqual(got["gb"] == got["ga"], same, got)
            return k + 20

        for restart in (0, 1):
            if restart:
                d.stop()
                d.start()
            m = tp.models(d, "gb")
            self.assertEqual((m["serving"]["version"], tops(d, "gb")), (2, [2, 1]), m)
            self.assertTrue(m["versions"][0]["swapped"], m)
            n = same_predictions(n)
        for v in (1, 2):
            st, _, body = tp.req(d, "POST", "/v1/devices/gb/model/rollback", {"version": v})
            self.assertEqual(st, 200, body)
            self.assertEqual(tp.models(d, "gb")["serving"]["version"], v)
        n = same_predictions(n)
        # Review: a group's rollback by number gives each member its own record of that number.
        # ga's 1 is the group's model, gb's 1 the model it trained alone before it joined: a
        # rollback to 1 asked on ga leaves the members on two models (gb's own again, until
        # the group's next training). ga's 2 records the kept decision, no rollback point: a
        # rollback to 2 asked on ga is refused and changes nothing; asked on gb, gb's 2 (the
        # group's model) serves and ga, with no 2 that served, stays on its 1 (the same model).
        st, _, body = tp.req(d, "POST", "/v1/devices/ga/model/rollback", {"version": 1})
        self.assertEqual(st, 200, body)
        serving = {dev: tp.models(d, dev)["serving"]["version"] for dev in devs}
        self.assertEqual(serving, {"ga": 1, "gb": 1})
        n = same_predictions(n, same=False)
        st, _, body = tp.req(d, "POST", "/v1/devices/ga/model/rollback", {"version": 2})
        self.assertEqual((st, b"keeps no version 2 that served" in body), (404, True), body)
        serving = {dev: tp.models(d, dev)["serving"]["version"] for dev in devs}
        self.assertEqual(serving, {"ga": 1, "gb": 1})
        st, _, body = tp.req(d, "POST", "/v1/devices/gb/model/rollback", {"version": 2})
        self.assertEqual(st, 200, body)
        serving = {dev: tp.models(d, dev)["serving"]["version"] for dev in devs}
        self.assertEqual(serving, {"ga": 1, "gb": 2})
        self.assertIn("device 'ga' of group 'g' has no version 2 to roll back to", full_log(d))
        n = same_predictions(n)


class GroupFirstWindowShort(tp.DaemonPerTest):
    """Review of session 48's api3: a group's training whose first member (ma, first to join)
    begins but whose window is then too short (its readings fall in a maintenance period added
    after they were scored: the window skips them), with one other member that begins (mb).
    train_set kept ma, zeroed, as the lead (majority_lead, which would have chosen another,
    runs for two or more) and locked its NULL device: vigild died of a segmentation fault
    (main too, found reading majority_lead's change). Now mb leads and trains; ma keeps its
    version."""
    CONFIG = tp.config_text(0)

    def test_the_member_that_begins_leads(self):
        d, rng, devs = self.d, random.Random(3), ["ma", "mb"]
        for dev in devs:
            tg.put_group(d, dev, "gw")
        # Ahead of vigild's clock, so that a period added now (its until after now) covers them.
        t0 = (int(time.time()) + 600) * 1000
        tg.feed_together(d, devs, {dev: tp.rotation(400, 3 * k, tp.OMEGA_A, 0.01, rng)
                                   for k, dev in enumerate(devs)}, 0, t0=t0)
        tp.wait_for("the group trained", lambda: settled(d, devs), 60)
        self.assertEqual({dev: tops(d, dev) for dev in devs}, {"ma": [1], "mb": [1]})
        st, _, body = tp.req(d, "POST", "/v1/devices/ma/maintenance",
                             {"from": t0 - 1000, "until": t0 + 390 * 1000, "note": "window"})
        self.assertEqual(st, 200, body)
        self.assertEqual(d.curl("POST", "/v1/devices/ma/model/retrain").status, 202)
        tp.wait_for("mb's new version",
                    lambda: settled(d, devs) if tops(d, "mb")[0] > 1 else None, 60)
        self.assertEqual(tops(d, "ma"), [1])
        self.assertEqual(tops(d, "mb"), [2, 1])


if __name__ == "__main__":
    unittest.main()

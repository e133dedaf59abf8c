#!/usr/bin/python3
"""vigild integration: an operator's retrain during an open anomaly episode (session 65,
docs/reliability.md "An operator's retrain during an open anomaly"). A device's
POST .../model/retrain while its own detector holds an episode open is refused with a 409 that
names the open event (id, start) and the two ways on (POST .../anomalies/accept, or
?force=true): nothing is trained and the alarm stays. Forced, the episode ends as an
acceptance ends it (ended_by "operator", a note naming the forced retrain) and a training is
recorded, rather than the episode ending "cleared" a few readings after the retrained model
learnt the fault (main before session 65: 202, and the fault went quiet). Every operator's
retrain and rollback is logged at info level, accepted or refused. In a group, the member that
holds the episode is refused the same way, and since session 66 so is a retrain asked on another
member (it trains every member, so it would learn the fault too): the 409 names the member and
its event; forced, the member's episode ends as the operator's first (main: 202, and the group's
model learnt the fault)."""

import json
import os
import random
import re
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
import pipeline_fx as tp  # noqa: E402
from test_events import Events, z_shifted  # noqa: E402

FORCED_NOTE = "retrain forced (POST .../model/retrain?force=true)"


def numbers(raw):
    """The texts of the shares and peak scores in a raw JSON answer, in order."""
    return re.findall(r'"(?:share|peak_score)":([^,}\]]+)', raw.decode())


class Operator(Events):
    """The retrain and log helpers (no tests)."""

    def retrain(self, dev, query=""):
        st, _, data = tp.req(self.d, "POST",
                             "/v1/devices/%s/model/retrain%s" % (vt.quote(dev), query))
        return st, vt.loads(data) if data else None

    def events(self, dev):
        return self.d.get_json("/v1/devices/%s/anomalies" % vt.quote(dev))["anomalies"]

    def wait_log(self, what, pattern):
        return tp.wait_for(what, lambda: re.search(pattern, self.d.log()), 10)


class RetrainOpen(Operator):

    def test_refused_while_open_then_forced(self):
        d, dev = self.d, "ro-1"
        active, rng = self.open_z_episode(dev)
        before = tp.wait_idle(d, dev, 1)
        v0 = before["serving"]["version"]

        # Refused: 409 naming the event and both ways on; nothing trained, the alarm stays.
        st, err = self.retrain(dev)
        self.assertEqual(st, 409, err)
        msg = err["error"]
        self.assertIn("anomaly event %d, open since %s" % (active["id"], active["start"]), msg)
        self.assertIn("POST /v1/devices/%s/anomalies/accept" % dev, msg)
        self.assertIn("POST /v1/devices/%s/model/retrain?force=true" % dev, msg)
        self.assertEqual((err["event"]["id"], err["event"]["active"]), (active["id"], True), err)
        self.wait_log("the refusal logged",
                      r"operator retrain of device '%s' \(serving version %d\) refused: anomaly "
                      r"event %d is open" % (dev, v0, active["id"]))
        # Its event is written as the listing writes it, the shares and the peak at 7 digits
        # (session 67; before, at 17: "share":0.53291000000000002 beside the listing's 0.53291).
        listed = numbers(tp.req(d, "GET", "/v1/devices/%s/anomalies" % dev)[2])
        st, _, raw = tp.req(d, "POST", "/v1/devices/%s/model/retrain" % dev)
        self.assertEqual(st, 409, raw)
        self.assertTrue(listed, listed)
        self.assertEqual(numbers(raw), listed)
        st, err = self.retrain(dev, "?force=yes")
        self.assertEqual(st, 400, err)
        self.assertIn("'force'", err["error"])
        st, err = self.retrain(dev, "?force=false")
        self.assertEqual(st, 409, err)
        m = tp.models(d, dev)
        self.assertEqual((len(m["versions"]), m["training"]),
                         (len(before["versions"]), False), m)
        self.assertEqual(tp.status(d, dev)["state"], "anomaly")
        self.assertEqual([e["active"] for e in self.events(dev)], [True])

        # Forced: the event ends as the operator's, and a training is recorded.
        st, _, raw = tp.req(d, "POST", "/v1/devices/%s/model/retrain?force=true" % dev)
        self.assertEqual(st, 202, raw)
        ans = vt.loads(raw)
        ended = ans["ended"]
        self.assertEqual(numbers(raw),
                         numbers(tp.req(d, "GET", "/v1/devices/%s/anomalies" % dev)[2]))
        self.assertEqual((ans["device"], ans["training"]), (dev, "queued"), ans)
        self.assertEqual((ended["id"], ended["active"], ended["ended_by"], ended["note"]),
                         (active["id"], False, "operator", FORCED_NOTE), ended)
        self.assertEqual(tp.status(d, dev)["state"], "normal")
        self.assertEqual(self.events(dev), [ended])
        after = tp.wait_idle(d, dev, len(before["versions"]) + 1)
        self.assertGreater(after["versions"][0]["version"], v0, after)
        self.wait_log("the forced retrain logged",
                      r"operator retrain of device '%s' \(serving version %d\) forced during "
                      r"anomaly event %d: the event ended as the operator's, training queued"
                      % (dev, v0, active["id"]))
        self.assertEqual(self.assert_counted([dev])["operator"], 1)

        # A retrain with nothing open: 202, logged as queued.
        self.feed(dev, z_shifted(20, 700, rng), 700)
        n = len(tp.wait_idle(d, dev, len(after["versions"]))["versions"])
        served = tp.models(d, dev)["serving"]["version"]
        st, ans = self.retrain(dev)
        self.assertEqual(st, 202, ans)
        self.assertNotIn("ended", ans)
        self.wait_log("the retrain logged", r"operator retrain of device '%s' \(serving version "
                      r"%d\): training queued" % (dev, served))
        tp.wait_idle(d, dev, n + 1)

        # Rollbacks, done and refused, are logged too.
        now = tp.models(d, dev)["serving"]["version"]
        st, _, data = tp.req(d, "POST", "/v1/devices/%s/model/rollback" % dev, {"version": v0})
        self.assertEqual(st, 200, data)
        self.wait_log("the rollback logged", r"operator rollback of device '%s' from version %d "
                      r"to version %d: done" % (dev, now, v0))
        st, _, data = tp.req(d, "POST", "/v1/devices/%s/model/rollback" % dev, {"version": 999})
        self.assertEqual(st, 404, data)
        self.wait_log("the refused rollback logged",
                      r"operator rollback of device '%s' from version %d to version 999 refused: "
                      r"no such version that served" % (dev, v0))
        st, _ = self.retrain("no-such-device")
        self.assertEqual(st, 404)
        self.wait_log("the unknown device's retrain logged",
                      r"operator retrain of device 'no-such-device' refused: not known")


class GroupMemberOpen(Operator):
    """Two members of one group, trained together; a fault opens an episode on ga. A retrain
    asked on ga is refused (409, nothing trained), and since session 66 so is one asked on gb
    (409 naming ga and its event; main: 202, and the group's training learnt ga's fault). Forced
    on gb, ga's episode ends as the operator's (its note names gb; the answer's
    "ended_members") and the group trains: a new version for every member."""

    def ga_open_in_g1(self, ga="ga", gb="gb"):
        """ga and gb in group g1, trained together; a z fault then opens an episode on ga.
        Returns (ga's active event, each member's models once idle)."""
        d = self.d
        for dev in (ga, gb):
            r = d.curl("PUT", "/v1/devices/%s" % vt.quote(dev), "-H",
                       "Content-Type: application/json", "--data-binary",
                       json.dumps({"group": "g1"}))
            self.assertIn(r.status, (200, 201), r)
        rng = {ga: random.Random(7), gb: random.Random(8)}
        data = {dev: tp.rotation(680, 0, tp.OMEGA_A, 0.01, rng[dev]) for dev in (ga, gb)}
        for dev in (ga, gb):
            self.feed(dev, data[dev][:500], 0)
        for dev in (ga, gb):
            tp.wait_idle(d, dev, 1)
        for dev in (ga, gb):
            self.feed(dev, data[dev][500:650], 500)
        self.feed(ga, z_shifted(30, 650, rng[ga]), 650)
        self.feed(gb, data[gb][650:680], 650)
        self.assertEqual(tp.status(d, ga)["state"], "anomaly")
        active = tp.wait_for("ga's event listed", lambda: self.events(ga), 10)[0]
        before = {dev: tp.wait_idle(d, dev, 1) for dev in (ga, gb)}
        return active, before

    def test_long_utf8_names_refused_whole(self):
        """Two members with 200-byte ids of 2-byte characters: the 409s name both whole, with
        the event and the ways on (main before session 67: the sentence went through a
        160-byte buffer, cut inside a character: the holder's 409 ended at "open sin" and the
        other member's was a 500 "out of memory", jansson refusing the cut text; read67a)."""
        ga, gb = "\u00e4" * 100, "\u00f6" * 100  # BATCH_NAME_MAX bytes each
        active, before = self.ga_open_in_g1(ga, gb)
        since = "anomaly event %d, open since %s" % (active["id"], active["start"])
        st, err = self.retrain(ga)
        self.assertEqual(st, 409, err)
        self.assertEqual((err["device"], err["event"]["id"]), (ga, active["id"]), err)
        self.assertIn("retrain: device '%s' has %s: a training now" % (ga, since), err["error"])
        self.assertIn("POST /v1/devices/%s/model/retrain?force=true (which ends the event the "
                      "same way)" % ga, err["error"])
        st, err = self.retrain(gb)
        self.assertEqual(st, 409, err)
        self.assertEqual((err["device"], err["event"]["id"]), (ga, active["id"]), err)
        self.assertIn("retrain: device '%s' is in a group with '%s', which has %s: a training "
                      "now" % (gb, ga, since), err["error"])
        self.assertIn("POST /v1/devices/%s/anomalies/accept" % ga, err["error"])
        self.assertIn("POST /v1/devices/%s/model/retrain?force=true (which ends the event the "
                      "same way)" % gb, err["error"])
        for dev in (ga, gb):
            self.assertEqual(len(tp.models(self.d, dev)["versions"]),
                             len(before[dev]["versions"]), dev)
        self.assertEqual(tp.status(self.d, ga)["state"], "anomaly")

    def test_member_open_refuses_the_groups_retrain_until_forced(self):
        d = self.d
        active, before = self.ga_open_in_g1()

        st, err = self.retrain("ga")
        self.assertEqual(st, 409, err)
        self.assertEqual((err["device"], err["event"]["id"]), ("ga", active["id"]), err)
        self.assertIn("device 'ga' has anomaly event %d" % active["id"], err["error"])

        # Asked on gb: refused too, naming ga, its event and the ways on.
        st, err = self.retrain("gb")
        self.assertEqual(st, 409, err)
        self.assertEqual((err["device"], err["event"]["id"], err["event"]["active"]),
                         ("ga", active["id"], True), err)
        msg = err["error"]
        self.assertIn("device 'gb' is in a group with 'ga', which has anomaly event %d, open "
                      "since %s" % (active["id"], active["start"]), msg)
        self.assertIn("POST /v1/devices/ga/anomalies/accept", msg)
        self.assertIn("POST /v1/devices/gb/model/retrain?force=true", msg)
        self.assertNotIn(tp.MERGED, msg)
        self.wait_log("the member's refusal logged",
                      r"operator retrain of device 'gb' refused: group member 'ga' has anomaly "
                      r"event %d open" % active["id"])
        for dev in ("ga", "gb"):
            m = tp.models(d, dev)
            self.assertEqual((len(m["versions"]), m["training"]),
                             (len(before[dev]["versions"]), False), (dev, m))
        self.assertEqual(tp.status(d, "ga")["state"], "anomaly")
        self.assertEqual([e["active"] for e in self.events("ga")], [True])

        # Forced on gb: ga's episode ends as the operator's, then the group trains.
        st, ans = self.retrain("gb", "?force=true")
        self.assertEqual(st, 202, ans)
        self.assertEqual((ans["device"], ans["training"]), ("gb", "queued"), ans)
        self.assertNotIn("ended", ans)  # gb had no episode
        ended = ans["ended_members"]
        self.assertEqual([(e["device"], e["id"], e["active"], e["ended_by"], e["note"])
                          for e in ended],
                         [("ga", active["id"], False, "operator",
                           "retrain forced on group member 'gb' (POST "
                           ".../model/retrain?force=true)")], ended)
        self.assertEqual(tp.status(d, "ga")["state"], "normal")
        self.assertEqual(self.events("ga"), ended)
        # On disk before the answer: the stored row has its end (the listing is the memory's).
        self.assertEqual(self.sql("SELECT e.end_ts IS NOT NULL FROM events e JOIN devices v ON "
                                  "v.id = e.device_id WHERE v.name = 'ga' AND e.id = %d;"
                                  % active["id"]).strip(), "1")
        self.wait_log("the member's episode ended logged",
                      r"operator retrain of device 'gb' forced: anomaly event %d of group member "
                      r"'ga' ended as the operator's" % active["id"])
        for dev in ("ga", "gb"):
            tp.wait_idle(d, dev, len(before[dev]["versions"]) + 1)

    def test_forced_on_a_learning_member_ends_nothing(self):
        """gc joins g1 while ga's episode is open and has too few readings for a model: a
        retrain asked on it, forced or not, is answered "no model yet" and ga's episode stays
        open (wt/grp66 before its review: forced, ga's episode ended as the operator's and the
        answer, that 409, named none of it)."""
        d = self.d
        active, _ = self.ga_open_in_g1()
        r = d.curl("PUT", "/v1/devices/gc", "-H", "Content-Type: application/json",
                   "--data-binary", json.dumps({"group": "g1"}))
        self.assertIn(r.status, (200, 201), r)
        self.feed("gc", tp.rotation(20, 0, tp.OMEGA_A, 0.01, random.Random(9)), 0)
        for query in ("?force=true", ""):
            st, err = self.retrain("gc", query)
            self.assertEqual(st, 409, (query, err))
            self.assertIn("device 'gc' has no model yet (still learning)", err["error"], query)
        self.wait_log("gc's refusal logged", r"operator retrain of device 'gc' \(serving version "
                      r"\d+\) refused: no model yet")
        self.assertEqual(tp.status(d, "ga")["state"], "anomaly")
        self.assertEqual([(e["id"], e["active"]) for e in self.events("ga")],
                         [(active["id"], True)])
        self.assertNotIn("of group member 'ga' ended", d.log())


if __name__ == "__main__":
    unittest.main()

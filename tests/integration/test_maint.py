#!/usr/bin/python3
"""vigild integration: maintenance periods, how they end an anomaly episode and silence a
device; moved from test_events.py (whose Events base and helpers these tests use).

Maintenance: POST /v1/devices/{id}/maintenance silences a device for a while: an open
anomaly ends "maintenance", readings are stored and acknowledged but not scored (no
prediction, event or training), across a restart too; DELETE ends it and scoring resumes from
the state before.

ScheduledMaintenance: a period planned ahead ({"from", "until"}) changes nothing at the POST;
its first reading (by timestamp) ends the open episode "maintenance", its readings are not
scored, the status and metrics show it only while vigild's clock is in it; GET lists periods
as past, current or scheduled; overlaps are 409s; DELETE ?from=T cancels a scheduled one; both
survive restarts.

RestoreSaveKeepsTheRequest (session 57) is in test_maintsave.py (it_maintsave) since session 58.

Python 3 standard library.
"""

import json
import os
import random
import re
import signal
import sqlite3
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import test_groups as tg  # noqa: E402  (helpers only)
import test_sse as ts  # noqa: E402
import vigiltest as vt  # noqa: E402
from test_events import (  # noqa: E402
    Events, ended_counts, z_shifted)


class MaintenanceCase(Events):
    """Helpers of the maintenance classes (no tests of its own)."""

    def setUp(self):
        super().setUp()
        self.t0 = int(time.time() * 1000) - 1000 * 1000  # reading 1,000 is about now

    def feed(self, device, rows, start_k, t0=None, wait=True):
        return super().feed(device, rows, start_k, self.t0 if t0 is None else t0, wait)

    def maint(self, dev, method="POST", body=None, headers=None, query=""):
        st, _, data = tp.req(self.d, method, "/v1/devices/%s/maintenance%s" % (dev, query), body,
                             headers)
        return st, vt.loads(data) if data else None

    def in_maintenance(self):
        """vigil_devices_in_maintenance, checked against the devices named by
        vigil_device_in_maintenance (every one, in a fleet this small: the alerts on a device
        leave those out)."""
        text = self.d.metrics()
        n = vt.metric_in(text, "vigil_devices_in_maintenance", need=True)
        named = re.findall(r'^vigil_device_in_maintenance\{device="[^"]*"\} 1$', text, re.M)
        self.assertEqual(len(named), n, text)
        return n

    def points(self, dev):
        return self.d.get_json("/v1/devices/%s" % dev)["points"]

    def settled(self, dev, k):
        """Waits until everything posted before is scored: the pipeline has one shard (CONFIG),
        which scores in commit order, so a probe device's reading scored after them says so."""
        tp.post_readings(self.d, "probe", [[0.0, 1.0, 2.0]], [self.t0 + 1000 * k], tp.CH3)
        self.probes = getattr(self, "probes", 0) + 1
        tp.wait_scored(self.d, "probe", self.probes)
        return tp.status(self.d, dev)

    def sleep_until(self, ms):
        """Sleeps until vigild's clock (this host's) is past ms; at most 30 s."""
        wait = (ms - time.time() * 1000) / 1000 + 0.05
        self.assertLess(wait, 30)
        time.sleep(max(0.0, wait))

    def feed_maint(self, dev, rows, at_ms):
        """Posts rows at 20 ms steps from at_ms (acknowledged: post_readings asserts the 200) and
        checks they are stored; returns the next timestamp. The steps are short so the readings
        are not in the future when the maintenance ends (a live feed's never are)."""
        before = self.points(dev)
        ts = [at_ms + 20 * i for i in range(len(rows))]
        tp.post_readings(self.d, dev, rows, ts, tp.CH3)
        self.assertEqual(self.points(dev), before + len(rows))
        return ts[-1] + 20


class Maintenance(MaintenanceCase):
    """POST /v1/devices/{id}/maintenance {"minutes": N, "note"}: the open episode ends
    "maintenance" (counted by reason), the status, the device and vigil_devices_in_maintenance
    show it; readings of a large fault timestamped in the period are stored and acknowledged but
    neither scored nor predicted, open nothing and ask for no training, also after a restart in
    the middle (the period is stored); a second POST moves the end. DELETE ends it (204; 409
    when not in maintenance) and the next readings are scored and predicted again; a training
    after it leaves the period's readings out of its window. Bodies other
    than {"minutes": 1..10080, "note": string of at most 500 bytes} are 400s naming the field,
    an unknown device a 404, a GET lists no period yet. The feed's timestamps end about now, as
    a live feed's (the period is matched against the readings' own timestamps)."""

    def test_maintenance_silences_and_scoring_resumes(self):
        d, dev = self.d, "mnt-1"
        rng = random.Random(11)
        active = self.open_episode(dev, tp.rotation(650, 0, tp.OMEGA_A, 0.01, rng),
                                   z_shifted(30, 650, rng))
        self.assertTrue(active["active"], active)
        trained = len(tp.wait_idle(d, dev, 1)["versions"])
        for body, field in (({}, "'minutes'"), ({"minutes": 0}, "'minutes'"),
                            ({"minutes": 10081}, "'minutes'"), ({"minutes": "5"}, "'minutes'"),
                            ({"minutes": 1.5}, "'minutes'"), ({"minutes": 5, "note": 5}, "'note'"),
                            ({"minutes": 5, "note": "x" * 501}, "'note'"),
                            ({"minutes": 5, "why": "x"}, "'why'"), ([1], "JSON object"),
                            ("not json", "invalid JSON at line 1, column 3"),
                            (None, "JSON object")):
            st, err = self.maint(dev, body=body)
            self.assertEqual(st, 400, (body, err))
            self.assertIn(field, err["error"], (body, err))
        self.assertIsNone(tp.status(d, dev)["maintenance"])  # refused: nothing changed
        self.assertEqual(self.maint("no-such-device", body={"minutes": 5})[0], 404)
        self.assertEqual(self.maint("no-such-device", "DELETE")[0], 404)
        self.assertEqual(self.maint(dev, "GET"), (200, {"device": dev, "periods": []}))
        st, err = self.maint(dev, "DELETE")
        self.assertEqual(st, 409, err)
        self.assertIn("not in maintenance", err["error"])

        st, first = self.maint(dev, body={"minutes": 1, "note": "valve swapped"})
        self.assertEqual(st, 200, first)
        start_ms = first["maintenance"]["until_ts"] - 60000
        st, ans = self.maint(dev, body={"minutes": 30, "note": "valve swapped, bearings"})
        self.assertEqual(st, 200, ans)
        m = ans["maintenance"]
        self.assertEqual((m["until_ts"] - start_ms) // 60000, 30, (first, ans))  # end moved
        self.assertEqual(m["note"], "valve swapped, bearings")
        self.assertRegex(m["until"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
        self.assertEqual(tp.status(d, dev)["maintenance"], m)
        self.assertEqual(d.get_json("/v1/devices/%s" % dev)["maintenance"], m)
        self.assertEqual(self.in_maintenance(), 1)
        ended = self.events(dev)
        self.assertEqual(len(ended), 1, ended)
        self.assertEqual((ended[0]["id"], ended[0]["active"], ended[0]["ended_by"]),
                         (active["id"], False, "maintenance"), ended)
        self.assertEqual(self.assert_counted([dev])["maintenance"], 1)
        # The detector's episode ended with its event: the status (and vigil_device_state, which
        # the shipped alert reads) says normal through the period, not anomaly.
        self.assertEqual(tp.status(d, dev)["state"], "normal")

        # A fault far larger than the one that opened the episode, during the maintenance.
        before = self.settled(dev, 2000)
        outside = self.points(dev)
        at = self.feed_maint(dev, z_shifted(40, 700, rng, by=5.0), start_ms + 1)
        after = self.settled(dev, 2001)
        keys = ("readings_scored", "last_ts", "state")
        self.assertEqual([after[k] for k in keys], [before[k] for k in keys])
        self.assertEqual(self.events(dev), ended)
        preds = d.get_json("/v1/devices/%s/predictions?from=%d" % (dev, start_ms))["points"]
        self.assertEqual(preds, [])
        self.assertEqual(len(tp.models(d, dev)["versions"]), trained)

        d.stop()  # a restart in the middle: the maintenance goes on
        d.start()
        self.assertEqual(tp.status(d, dev)["maintenance"], m)
        self.assertEqual(self.in_maintenance(), 1)
        self.probes = 0
        at = self.feed_maint(dev, z_shifted(20, 740, rng, by=5.0), at)
        after = self.settled(dev, 2002)
        self.assertEqual([after[k] for k in keys], [before[k] for k in keys])
        self.assertEqual(self.events(dev), ended)

        time.sleep(max(0.0, (at - time.time() * 1000) / 1000 + 0.05))  # the readings are past
        st, _ = self.maint(dev, "DELETE")
        self.assertEqual(st, 204)
        self.assertEqual(self.maint(dev, "DELETE")[0], 409)
        self.assertIsNone(tp.status(d, dev)["maintenance"])
        self.assertIsNone(d.get_json("/v1/devices/%s" % dev)["maintenance"])
        self.assertEqual(self.in_maintenance(), 0)

        # Scoring resumes: the next readings (after the period's end) are scored and predicted.
        resume = max(at, int(time.time() * 1000) + 1000)
        tp.post_readings(d, dev, tp.rotation(30, 760, tp.OMEGA_A, 0.01, rng),
                         [resume + 1000 * i for i in range(30)], tp.CH3)
        tp.wait_scored(d, dev, before["readings_scored"] + 30)
        preds = d.get_json("/v1/devices/%s/predictions?from=%d" % (dev, start_ms))["points"]
        self.assertEqual(len(preds), 30, preds[:3])
        self.assertGreaterEqual(preds[0]["ts"], resume)

        # A training now leaves the 60 maintenance readings out of its window: it holds the
        # readings outside the period, and trains on all but its validation third (val_rows
        # 400 is more than a third of them).
        self.assertEqual(tp.req(d, "POST", "/v1/devices/%s/model/retrain" % dev)[0], 202)
        newest = tp.wait_idle(d, dev, trained + 1)["versions"][0]  # newest first
        n = outside + 30
        self.assertEqual(newest["metrics"]["rows"], n - n // 3, (n, newest))

    def test_admin_only_with_tokens(self):
        """With tokens on, maintenance is an admin's: a read token gets 403 (POST and DELETE),
        no token 401, an admin token gets through (404: no such device)."""
        self.restart_with_tokens()
        for method in ("POST", "DELETE"):
            for token, want in (("r3ad-t0ken-AAAAAAAAAAAAAAAA", 403), (None, 401),
                                ("adm1n-t0ken-CCCCCCCCCCCCCCCC", 404)):
                headers = {"Authorization": "Bearer " + token} if token else None
                st, err = self.maint("pump-3", method, {"minutes": 5}, headers)
                self.assertEqual(st, want, (method, token, err))
                self.assertIn("error", err)


class ScheduledMaintenance(MaintenanceCase):
    """POST /v1/devices/{id}/maintenance {"from": T, "until": T, "note"} plans a period ahead (T
    in epoch ms or RFC 3339, as a reading's ts): nothing changes at the POST; readings
    timestamped before it are scored, the first one timestamped in it ends the open episode
    "maintenance" (the device's clock decides, before vigild's reaches the start), those in it
    are stored but not scored; the status, the device and vigil_devices_in_maintenance show it
    only while vigild's clock is in it. GET lists the periods (past, current, scheduled) with
    their notes; a period overlapping another is a 409 naming it (one touching it is not); DELETE
    ?from=T cancels a scheduled one (404 when none starts there, 409 for a past or current one).
    A scheduled period, and its cancel, survive a restart. The very same period POSTed again
    is that period (200, its note replaced), not an overlap."""

    def listed(self, dev):
        st, ans = self.maint(dev, "GET")
        self.assertEqual(st, 200, ans)
        return [(m["from_ts"], m["until_ts"], m["note"], m["state"]) for m in ans["periods"]]

    def restart(self):
        self.d.stop()
        self.d.start()
        self.probes = 0  # the probe device's count starts again

    def test_plan_list_overlap_cancel_across_restarts(self):
        dev = "sched-2"
        self.feed(dev, tp.rotation(20, 0, tp.OMEGA_A, 0.01, random.Random(3)), 0)
        now = int(time.time() * 1000)
        start, until = now + 3600000, now + 2 * 3600000
        for body, field in (({"from": start}, "'until'"),
                            ({"from": start, "until": start}, "'until'"),
                            ({"until": now - 1000}, "'until'"),
                            ({"from": start, "until": start + 7 * 86400000 + 1}, "'until'"),
                            ({"minutes": 5, "until": until}, "'until'"),
                            ({"from": "tomorrow", "until": until}, "'from'"),
                            ({"from": start, "until": [1]}, "'until'"),
                            ({"from": start, "until": until, "to": 1}, "'to'")):
            st, err = self.maint(dev, body=body)
            self.assertEqual(st, 400, (body, err))
            self.assertIn(field, err["error"], (body, err))
        # Explore (session 41): an 'until' already past, without 'from', was "must be after
        # 'from'", naming a field the body does not have.
        st, err = self.maint(dev, body={"until": now - 1000})
        self.assertEqual(err["error"],
                         "field 'until': must be after now (without 'from' the period starts now)")
        self.assertEqual(self.listed(dev), [])

        st, ans = self.maint(dev, body={"from": vt.iso_ms(start), "until": vt.iso_ms(until),
                                        "note": "week-end shutdown"})
        self.assertEqual(st, 200, ans)
        self.assertIsNone(ans["maintenance"])
        self.assertEqual((ans["period"]["from"], ans["period"]["until"]),
                         (vt.iso_ms(start), vt.iso_ms(until)))
        # Touching is not overlapping: the next one starts where it ends (epoch ms this time).
        st, ans2 = self.maint(dev, body={"from": until, "until": until + 600000})
        self.assertEqual(st, 200, ans2)
        planned = [(start, until, "week-end shutdown", "scheduled"),
                   (until, until + 600000, None, "scheduled")]
        self.assertEqual(self.listed(dev), planned)
        self.assertIsNone(tp.status(self.d, dev)["maintenance"])
        self.assertEqual(self.in_maintenance(), 0)
        for body in ({"from": start - 60000, "until": start + 1},
                     {"from": start + 1, "until": start + 2},
                     {"from": until - 1, "until": until + 1}):
            st, err = self.maint(dev, body=body)
            self.assertEqual(st, 409, (body, err))
            o = err["overlaps"]
            self.assertIn((o["from_ts"], o["until_ts"]), [p[:2] for p in planned], err)
            self.assertIn(o["from"], err["error"])
            self.assertIn(o["until"], err["error"])
        self.assertEqual(self.maint(dev, body={"from": start - 60000, "until": start + 1})[1]
                         ["overlaps"]["from_ts"], start)
        self.assertEqual(self.listed(dev), planned)

        self.restart()  # scheduled periods and their notes come back from the store
        self.assertEqual(self.listed(dev), planned)
        self.assertEqual(self.maint(dev, "DELETE", None, None)[0], 409)  # none current
        st, err = self.maint(dev, "DELETE", query="?from=" + vt.quote(vt.iso_ms(start + 1)))
        self.assertEqual(st, 404, err)
        self.assertIn("starts at", err["error"])
        st, _ = self.maint(dev, "DELETE", query="?from=" + vt.quote(vt.iso_ms(start)))
        self.assertEqual(st, 204)
        self.assertEqual(self.listed(dev), planned[1:])
        self.assertEqual(self.maint(dev, "DELETE", query="?from=%d" % start)[0], 404)
        self.assertEqual(self.maint(dev, "DELETE", query="?from=soon")[0], 400)
        self.assertEqual(self.maint("no-such-device", "GET")[0], 404)
        self.restart()  # the cancel is stored too
        self.assertEqual(self.listed(dev), planned[1:])

    def test_scheduled_period_begins_with_its_first_reading(self):
        d, dev = self.d, "sched-1"
        rng = random.Random(12)
        fault = z_shifted(40, 650, rng)
        active = self.open_episode(dev, tp.rotation(650, 0, tp.OMEGA_A, 0.01, rng), fault[:30])
        self.assertTrue(active["active"], active)
        tp.wait_idle(d, dev, 1)

        now = int(time.time() * 1000)
        start, until = now + 10000, now + 16000
        st, ans = self.maint(dev, body={"from": start, "until": until, "note": "seal change"})
        self.assertEqual(st, 200, ans)
        self.assertEqual((ans["period"]["from_ts"], ans["period"]["until_ts"],
                          ans["period"]["note"], ans["period"]["state"]),
                         (start, until, "seal change", "scheduled"))
        self.assertIsNone(ans["maintenance"])
        self.assertEqual(self.events(dev)[0], active)  # the POST ended nothing

        # Before the period (by their timestamps): scored, the episode goes on.
        before = self.settled(dev, 2000)
        tp.post_readings(d, dev, fault[30:], [self.t0 + 1000 * k for k in range(680, 690)],
                         tp.CH3)
        scored = tp.wait_scored(d, dev, before["readings_scored"] + 10)["readings_scored"]
        self.assertEqual([e["active"] for e in self.events(dev)], [True])

        # In it, before vigild's clock gets there: stored, not scored; the first one ends the
        # episode "maintenance" and the state is normal.
        at = self.feed_maint(dev, z_shifted(20, 700, rng, by=5.0), start)
        after = self.settled(dev, 2001)
        self.assertLess(time.time() * 1000, start, "too slow: the period began meanwhile")
        self.assertEqual(after["readings_scored"], scored)
        self.assertEqual(after["state"], "normal")
        ended = self.events(dev)
        self.assertEqual((ended[0]["id"], ended[0]["active"], ended[0]["ended_by"]),
                         (active["id"], False, "maintenance"), ended)
        self.assertEqual(self.assert_counted([dev])["maintenance"], 1)
        self.assertIsNone(tp.status(d, dev)["maintenance"])  # not current yet
        self.assertEqual(self.in_maintenance(), 0)

        # Current while vigild's clock is in it.
        self.sleep_until(start)
        m = {"until": vt.iso_ms(until), "until_ts": until, "note": "seal change"}
        self.assertEqual(tp.status(d, dev)["maintenance"], m)
        self.assertEqual(d.get_json("/v1/devices/%s" % dev)["maintenance"], m)
        self.assertEqual(self.in_maintenance(), 1)
        self.assertEqual(self.listed(dev), [(start, until, "seal change", "current")])
        self.assertEqual(self.maint(dev, "DELETE", query="?from=%d" % start)[0], 409)  # current
        self.assertLess(time.time() * 1000, until, "too slow: the period ended meanwhile")

        # Past once it ends: scoring resumes after it, from the state before.
        self.sleep_until(max(at, until))
        self.assertIsNone(tp.status(d, dev)["maintenance"])
        self.assertEqual(self.in_maintenance(), 0)
        self.assertEqual(self.listed(dev), [(start, until, "seal change", "past")])
        st, err = self.maint(dev, "DELETE", query="?from=%d" % start)
        self.assertEqual(st, 409, err)
        self.assertIn("not scheduled", err["error"])
        resume = int(time.time() * 1000)
        tp.post_readings(d, dev, tp.rotation(10, 760, tp.OMEGA_A, 0.01, rng),
                         [resume + 100 * i for i in range(10)], tp.CH3)
        tp.wait_scored(d, dev, scored + 10)
        preds = d.get_json("/v1/devices/%s/predictions?from=%d" % (dev, start))["points"]
        self.assertEqual(len(preds), 10, preds[:3])
        self.assertGreaterEqual(preds[0]["ts"], until)

    def test_same_period_again_is_idempotent(self):
        """A from/until POST of the very period already there (the retry of one whose answer was
        lost or not stored) is that period again: 200, its note replaced and stored, one period
        listed; a period differing in its start or end still overlaps it (409)."""
        dev = "sched-3"
        self.feed(dev, tp.rotation(20, 0, tp.OMEGA_A, 0.01, random.Random(4)), 0)
        now = int(time.time() * 1000)
        start, until = now + 3600000, now + 2 * 3600000
        st, first = self.maint(dev, body={"from": start, "until": until, "note": "first"})
        self.assertEqual(st, 200, first)
        st, again = self.maint(dev, body={"from": vt.iso_ms(start), "until": until,
                                          "note": "again"})
        self.assertEqual(st, 200, again)
        self.assertEqual(again["period"], dict(first["period"], note="again"))
        self.assertEqual(self.listed(dev), [(start, until, "again", "scheduled")])
        for body in ({"from": start, "until": until + 1}, {"from": start + 1, "until": until}):
            st, err = self.maint(dev, body=body)
            self.assertEqual(st, 409, (body, err))
        self.restart()
        self.assertEqual(self.listed(dev), [(start, until, "again", "scheduled")])

    def test_right_after_the_first_reading(self):
        """A device's first reading is acknowledged once stored, and scored after that: a request
        on the device in between finds it all the same (it was a 404, "not known to the
        pipeline", before). Each POST carries 5,000 readings of another device and then a new
        device's first reading, so the one shard scores the 5,000 before it meets the new device;
        the first request on it, made at once, is each route in turn (status, anomalies, model
        versions, predictions, the maintenance list, a maintenance POST)."""
        rows = tp.rotation(5000, 0, tp.OMEGA_A, 0.01, random.Random(7))
        now = int(time.time() * 1000)
        body = {"from": now + 3600000, "until": now + 7200000, "note": "right after"}
        first = [
            lambda dev: tp.req(self.d, "GET", "/v1/devices/%s/status" % dev),
            lambda dev: tp.req(self.d, "GET", "/v1/devices/%s/anomalies" % dev),
            lambda dev: tp.req(self.d, "GET", "/v1/devices/%s/model" % dev),
            lambda dev: tp.req(self.d, "GET", "/v1/devices/%s/predictions" % dev),
            lambda dev: tp.req(self.d, "GET", "/v1/devices/%s/maintenance" % dev),
            lambda dev: tp.req(self.d, "POST", "/v1/devices/%s/maintenance" % dev, body),
        ]
        for k in range(30):
            dev = "fresh-%d" % k
            items = [{"device": "bulk", "ts": self.t0 + 5000 * k + i,
                      "values": dict(zip(tp.CH3, r))} for i, r in enumerate(rows)]
            items.append({"device": dev, "ts": now, "values": {"a": 1.0}})
            tp.jreq(self.d, "POST", "/v1/readings", items)
            st, _, data = first[k % len(first)](dev)
            self.assertEqual(st, 200, (dev, k % len(first), data))
        st, ans = self.maint("fresh-5", "DELETE", query="?from=%d" % body["from"])
        self.assertEqual(st, 204, ans)

    def test_list_with_a_read_token(self):
        """GET is a reader's (404 here: no such device), POST and DELETE ?from an admin's."""
        self.restart_with_tokens()
        read = {"Authorization": "Bearer r3ad-t0ken-AAAAAAAAAAAAAAAA"}
        self.assertEqual(self.maint("pump-3", "GET", None, read)[0], 404)
        self.assertEqual(self.maint("pump-3", "GET")[0], 401)
        self.assertEqual(self.maint("pump-3", "DELETE", None, read, "?from=1")[0], 403)
        self.assertEqual(self.maint("pump-3", "POST", {"from": 1, "until": 2}, read)[0], 403)


class SilentCase(MaintenanceCase):
    """Helpers of the silent-device classes (no tests of its own): a device in anomaly on
    readings timestamped about 320 s before now, a period planned ahead, its episode's end."""

    def anomalous(self, dev, seed):
        """dev in anomaly on readings 0..679 (its last about 320 s ago); returns the active
        event and the status."""
        rng = random.Random(seed)
        active = self.open_episode(dev, tp.rotation(650, 0, tp.OMEGA_A, 0.01, rng),
                                   z_shifted(30, 650, rng))
        self.assertTrue(active["active"], active)
        tp.wait_idle(self.d, dev, 1)
        st = tp.status(self.d, dev)
        self.assertEqual((st["state"], st["last_ts"]), ("anomaly", self.t0 + 679000), st)
        return active, st

    def plan(self, dev, length, start=None):
        """Schedules a period of dev of length ms from start (default: 2 s from now, room for
        the POST's commit and a second POST under load); returns its start."""
        start = int(time.time() * 1000) + 2000 if start is None else start
        st, ans = self.maint(dev, body={"from": start, "until": start + length,
                                        "note": "pump stopped"})
        self.assertEqual(st, 200, ans)
        self.assertEqual(ans["period"]["state"], "scheduled")
        return start

    def ended_maintenance(self, dev, active, last_ts):
        """Waits for dev's event to end "maintenance" at last_ts, nothing opened after it; the
        status normal. Returns the event."""
        evs = tp.wait_for("%s: the event ended" % dev, lambda: (
            lambda e: e if not e[0]["active"] else None)(self.events(dev)), 10)
        self.assertEqual(len(evs), 1, evs)
        self.assertEqual((evs[0]["id"], evs[0]["ended_by"], evs[0]["end_ts"]),
                         (active["id"], "maintenance", last_ts), evs)
        self.assertEqual(tp.status(self.d, dev)["state"], "normal")
        return evs[0]

    def hold_across_the_end(self, dev, seed, at, also=(), then=None):
        """dev in anomaly, silent, its 8 s period current; the hold files at and also made in
        self.holds (the stop's VIGIL_TEST_HOLD_DIR), SIGTERM; once the stop waits at at (before
        the period's end: else "too slow"), waits for the end, calls then() (if given) and
        releases at (also's stay: the caller removes them). Returns dev's active event and its
        status before. (StopTicks', shared with test_stopqueue.py.)"""
        got = self.anomalous(dev, seed)
        start = self.plan(dev, 8000)
        self.sleep_until(start + 300)  # current, and the loop's tick saw it begin
        for point in (at,) + tuple(also):
            vt.write_file(os.path.join(self.holds, point), "")
        hold = os.path.join(self.holds, at)
        try:
            self.d.proc.send_signal(signal.SIGTERM)
            tp.wait_for("the stop at its point %s" % at,
                        lambda: os.path.exists(hold + ".held"), 30)
            self.assertLess(time.time() * 1000, start + 8000,
                            "too slow: the stop reached %s after the period's end" % at)
            self.sleep_until(start + 8000)
            if then is not None:
                then()
        finally:
            os.unlink(hold)
        self.end_ms = start + 8000
        return got

    def normal_after(self, dev, k, ended):
        """Ten normal readings after the period (now on) are scored and open nothing."""
        scored = tp.status(self.d, dev)["readings_scored"]
        now = int(time.time() * 1000)
        tp.post_readings(self.d, dev, tp.rotation(10, k, tp.OMEGA_A, 0.01, random.Random(k)),
                         [now + 100 * i for i in range(10)], tp.CH3)
        st = tp.wait_scored(self.d, dev, scored + 10)
        self.assertEqual(st["state"], "normal", st)
        self.assertEqual(self.events(dev), [ended])


class SilentMaintenance(SilentCase):
    """Task maint5 (session 56): a device in anomaly that sends nothing through a period (the
    pump stopped for its service) has the episode open when the period began ended when the
    period ends, by vigild's clock or a DELETE, as its limit alarms end: its event ended
    "maintenance" (end_ts the last reading scored, before the period), counted, pushed on the
    stream after the period's "past" message, and the status normal, so the next normal reading
    opens nothing. A restart while the period is current ends it at the period's end as well,
    and one across the period's end at the restart. Readings timestamped after the period,
    scored before vigild's clock ends it (a device's clock ahead), judged the episode again: it
    is left as they left it. The fault's readings are timestamped about 320 s before now, so
    none falls in a period. A period that ended while vigild ran is not ended again by a
    restart (task maint6): an episode a late batch opened after it stays open. A device that
    sent readings while the period was current by vigild's clock, timestamped before it (its
    clock behind by more than the period), is not silent: its own first reading in the period
    ends the episode (task maint7)."""

    def test_silent_through_a_period_ended_by_the_clock(self):
        d, dev = self.d, "silent-clock"
        active, before = self.anomalous(dev, 21)
        sse = ts.Sse(d, "?types=anomaly,maintenance,state&device=" + dev).open()
        try:
            start = self.plan(dev, 6000)
            # Through the period a silent device keeps its last state (as before).
            tp.wait_for("the period current", lambda: tp.status(d, dev)["maintenance"], 10)
            self.assertEqual([(e["id"], e["active"]) for e in self.events(dev)],
                             [(active["id"], True)])
            self.assertEqual(tp.status(d, dev)["state"], "anomaly")
            self.sleep_until(start + 6000)
            ended = self.ended_maintenance(dev, active, before["last_ts"])
            self.assertIsNone(tp.status(d, dev)["maintenance"])
            self.assertEqual(self.assert_counted([dev])["maintenance"], 1)
            # The state's change back to normal is published too (at once, or held for the
            # state interval and sent by the tick: pipeline_state.c), after the episode's end.
            sse.wait("the state's change on the stream", lambda s: s.messages if any(
                m["event"] == "state" and m["data"]["state"] == "normal"
                for m in s.messages) else None)
            msgs = sse.messages
        finally:
            sse.close()
        others = [m for m in msgs if m["event"] != "state"]
        self.assertEqual([(m["event"], m["data"].get("period", {}).get("state"))
                          for m in others], [("maintenance", "scheduled"),
                                             ("maintenance", "current"),
                                             ("maintenance", "past"), ("anomaly", None)], msgs)
        self.assertEqual(others[3]["data"], ended)
        # Task maint7: the one state message after the episode's end says normal, from anomaly
        # (a stream opened after the device's last state message may hear "anomaly" once before,
        # state and previous the same: pipeline_state.c).
        after = [m["data"] for m in msgs[msgs.index(others[3]):] if m["event"] == "state"]
        self.assertEqual([(m["device"], m["state"], m["previous"]) for m in after],
                         [(dev, "normal", "anomaly")], msgs)
        self.normal_after(dev, 680, ended)

    def test_silent_through_a_period_ended_by_delete(self):
        """The same with a DELETE: ended by the time it is answered. Then the fault's later
        readings, timestamped before the period (a late batch), are scored from the state the
        end left (normal): the fault still there opens a new event (the next id, continuing
        nothing), where before the first went on."""
        d, dev = self.d, "silent-delete"
        active, before = self.anomalous(dev, 22)
        self.plan(dev, 600000)
        tp.wait_for("the period current", lambda: tp.status(d, dev)["maintenance"], 10)
        time.sleep(0.3)  # the tick's look (every 250 ms) saw it begin
        self.assertEqual([(e["id"], e["active"]) for e in self.events(dev)],
                         [(active["id"], True)])
        st, _ = self.maint(dev, "DELETE")
        self.assertEqual(st, 204)
        evs = self.events(dev)
        self.assertEqual((evs[0]["id"], evs[0]["ended_by"], evs[0]["end_ts"]),
                         (active["id"], "maintenance", before["last_ts"]), evs)
        self.assertEqual(tp.status(d, dev)["state"], "normal")
        self.assertEqual(self.assert_counted([dev])["maintenance"], 1)

        rng = random.Random(23)
        self.feed(dev, z_shifted(20, 680, rng), 680)  # readings 680..699: before the period
        evs = tp.wait_for("the late batch's event", lambda: (
            lambda e: e if len(e) == 2 else None)(self.events(dev)), 10)
        self.assertEqual((evs[0]["id"], evs[0]["active"], evs[0].get("continues")),
                         (active["id"] + 1, True, None), evs)
        self.assertEqual(evs[1]["ended_by"], "maintenance", evs)

    def past_told(self, sse):
        """Waits for the tick's "past" message on sse (one subscribed to maintenance), which
        it publishes just before stale_end; then gives stale_end 0.5 s to end anything.
        Returns the anomaly messages heard so far, with the index of "past" among sse's."""
        msgs = sse.wait("the period's past message", lambda s: s.messages if any(
            m["event"] == "maintenance" and m["data"]["period"]["state"] == "past"
            for m in s.messages) else None)
        time.sleep(0.5)
        past = [m["event"] == "maintenance" and m["data"]["period"]["state"] == "past"
                for m in msgs].index(True)
        return [(i, m["data"]) for i, m in enumerate(sse.messages)
                if m["event"] == "anomaly"], past

    def test_readings_in_the_period_end_it_there(self):
        """A device that sends readings in the period: its first one ends the episode, as
        before (its anomaly message before the period's past one); the period's end by the
        clock ends nothing more (one ending, counted once, one anomaly message)."""
        d, dev = self.d, "sends-in-period"
        active, before = self.anomalous(dev, 24)
        sse = ts.Sse(d, "?types=anomaly,maintenance&device=" + dev).open()
        try:
            start = self.plan(dev, 5000)
            self.sleep_until(start)
            self.feed_maint(dev, z_shifted(5, 700, random.Random(25), by=5.0), start + 100)
            ended = self.ended_maintenance(dev, active, before["last_ts"])
            self.sleep_until(start + 5000)
            anomaly, past = self.past_told(sse)
            self.assertEqual(self.events(dev), [ended])
            self.assertEqual(self.assert_counted([dev])["maintenance"], 1)
            self.assertEqual([m for _, m in anomaly], [ended])
            self.assertLess(anomaly[0][0], past, sse.messages)
        finally:
            sse.close()

    def test_clock_ahead_judged_it_again(self):
        """Readings timestamped after the period, scored before vigild's clock ends it, judged
        the episode (still anomaly on the fault): the period's end leaves it open."""
        d, dev = self.d, "clock-ahead"
        active, before = self.anomalous(dev, 26)
        sse = ts.Sse(d, "?types=anomaly,maintenance&device=" + dev).open()
        try:
            until = self.plan(dev, 5000) + 5000
            tp.post_readings(d, dev, z_shifted(10, 680, random.Random(27)),
                             [until + 1000 + 100 * i for i in range(10)], tp.CH3)
            st = tp.wait_scored(d, dev, before["readings_scored"] + 10)
            self.assertEqual(st["state"], "anomaly", st)
            self.sleep_until(until)
            anomaly, _ = self.past_told(sse)
        finally:
            sse.close()
        self.assertEqual(anomaly, [])
        evs = self.events(dev)
        self.assertEqual((len(evs), evs[0]["id"], evs[0]["active"]), (1, active["id"], True),
                         evs)
        self.assertEqual(tp.status(d, dev)["state"], "anomaly")

    def test_restart_while_current_and_across_the_end(self):
        """Two silent devices in anomaly, their periods current when vigild stops: "across"'s
        ends while it is stopped (ended "maintenance" at the restart), "mid"'s after the
        restart (still in anomaly then, ended "maintenance" at the period's end)."""
        d = self.d
        devs = ("mid", "across")
        got = {dev: self.anomalous(dev, 30 + i) for i, dev in enumerate(devs)}
        # "across" ends 10 s in: room for the stop under ASan and CI's load (review: 4 s left
        # the stop about 3.7 s); "mid" 30 s after that, room for the restart.
        start = self.plan("mid", 40000)
        self.plan("across", 10000, start)
        self.sleep_until(start + 300)  # both begun, the tick saw them
        d.stop()
        self.assertLess(time.time() * 1000, start + 10000, "too slow: stopped after the end")
        self.sleep_until(start + 10000)
        d.start()
        self.assertLess(time.time() * 1000, start + 40000, "too slow: the period ended")
        active, before = got["across"]
        self.ended_maintenance("across", active, before["last_ts"])
        self.assertIsNone(tp.status(d, "across")["maintenance"])
        active, before = got["mid"]
        self.assertEqual([(e["id"], e["active"]) for e in self.events("mid")],
                         [(active["id"], True)])
        st = tp.status(d, "mid")
        self.assertEqual(st["state"], "anomaly", st)
        self.assertIsNotNone(st["maintenance"], st)
        self.sleep_until(start + 40000)
        ended = self.ended_maintenance("mid", active, before["last_ts"])
        self.assertEqual(self.assert_counted(list(devs))["maintenance"], 2)
        self.normal_after("mid", 680, ended)

    def test_restart_keeps_a_late_batch_episode_open(self):
        """Task maint6: a period that ended while vigild ran (its episode ended "maintenance" by
        the tick), then a late batch timestamped before the period opens a new episode, which
        the running vigild leaves open: a restart before the device's next reading must leave
        it open too (the detector was saved at the stop, after the period's end: the restore
        does not take that end for one it missed). Before, the restore ended it "maintenance"."""
        d, dev = self.d, "late-batch"
        active, before = self.anomalous(dev, 40)
        start = self.plan(dev, 3000)
        self.sleep_until(start + 3000)
        self.ended_maintenance(dev, active, before["last_ts"])
        self.feed(dev, z_shifted(20, 680, random.Random(41)), 680)  # 680..699: before it
        evs = tp.wait_for("the late batch's event", lambda: (
            lambda e: e if len(e) == 2 else None)(self.events(dev)), 10)
        self.assertEqual((evs[0]["id"], evs[0]["active"]), (active["id"] + 1, True), evs)
        st = tp.status(d, dev)
        self.assertEqual(st["state"], "anomaly", st)
        d.stop()
        d.start()
        evs = self.events(dev)
        self.assertEqual([(e["id"], e["active"], e.get("ended_by")) for e in evs],
                         [(active["id"] + 1, True, None),
                          (active["id"], False, "maintenance")], evs)
        st = tp.status(d, dev)
        self.assertEqual((st["state"], st["last_ts"]), ("anomaly", self.t0 + 699000), st)
        self.assertEqual(ended_counts(d)["maintenance"], 0)  # the counters: since the start

    def test_clock_behind_by_more_than_the_period(self):
        """Task maint7 (session 57): a device whose clock is behind vigild's by more than the
        period sends through the period (by vigild's clock) readings timestamped before it: it
        is not silent, so the period's end by vigild's clock does not end its episode (before,
        stale_end ended it there and the next such readings opened a second event for the same
        fault); its own first reading in the period ends it, one event for the fault. Task
        maint8: its limit alarm (z beyond a max of 1.0, every reading) follows the same rule:
        not ended at the period's end by vigild's clock (before, an "ok" there and the next
        reading, still before the period, "exceeded" again: two alarms for one fault), ended by
        its first reading in the period, with the episode."""
        d, dev = self.d, "clock-behind"
        active, before = self.anomalous(dev, 28)
        tp.jreq(d, "PUT", "/v1/devices/" + dev, {"limits": {"z": {"max": 1.0}}})
        rng = random.Random(29)
        sse = ts.Sse(d, "?types=anomaly,maintenance,limit&device=" + dev).open()
        limit = lambda: [(m["data"]["state"], m["data"]["ts"])  # noqa: E731
                         for m in sse.messages if m["event"] == "limit"]
        raised = [("exceeded", self.t0 + 680000)]
        try:
            start = self.plan(dev, 4000)
            self.sleep_until(start + 300)  # vigild's clock in the period
            self.feed(dev, z_shifted(5, 680, rng), 680)  # stamped about 320 s before it
            sse.wait("the limit alarm", lambda s: limit())
            self.sleep_until(start + 4000)
            anomaly, _ = self.past_told(sse)
            self.assertEqual(anomaly, [])  # nothing ended at the period's end
            self.assertEqual(limit(), raised)
            self.feed(dev, z_shifted(20, 685, rng), 685)  # the device's clock still before it
            self.assertEqual([(e["id"], e["active"]) for e in self.events(dev)],
                             [(active["id"], True)])
            st = tp.status(d, dev)
            self.assertEqual((st["state"], st["last_ts"]), ("anomaly", self.t0 + 704000), st)
            self.assertEqual((st["limits"]["z"]["state"], limit()),
                             ("exceeded", raised), st["limits"])
            # Its clock reaches the period: the first reading in it ends the episode, as for
            # any device that sends (pipeline__maint_skip), and the alarm with it.
            self.feed_maint(dev, z_shifted(3, 705, rng, by=5.0), start + 100)
            self.ended_maintenance(dev, active, self.t0 + 704000)
            sse.wait("the alarm's end", lambda s: len(limit()) > 1)
            time.sleep(0.3)  # nothing after it
            self.assertEqual(limit(), raised + [("ok", self.t0 + 704000)])
        finally:
            sse.close()
        self.assertEqual(self.assert_counted([dev])["maintenance"], 1)

    def test_last_batch_in_flight_at_the_start(self):
        """Review (session 57): the device's last readings, timestamped just before the period,
        arrive just after its start (in flight, a gateway's last flush), then nothing: silent
        all the same (their lag behind their arrival is well under the period's length, not a
        clock behind by more than the period), so the period's end ends the episode
        "maintenance" at the last of them, as session 56 did. Readings 320 s behind, arriving
        at the same moment, keep it open (test_clock_behind_by_more_than_the_period)."""
        d, dev = self.d, "last-in-flight"
        active, before = self.anomalous(dev, 60)
        start = self.plan(dev, 6000)
        self.sleep_until(start + 300)  # vigild's clock in the period
        tp.post_readings(d, dev, z_shifted(3, 680, random.Random(61)),
                         [start - 600 + 200 * i for i in range(3)], tp.CH3)
        st = tp.wait_scored(d, dev, before["readings_scored"] + 3)
        self.assertEqual((st["state"], st["last_ts"]), ("anomaly", start - 200), st)
        self.assertEqual([(e["id"], e["active"]) for e in self.events(dev)],
                         [(active["id"], True)])
        self.sleep_until(start + 6000)
        self.ended_maintenance(dev, active, start - 200)
        self.assertEqual(self.assert_counted([dev])["maintenance"], 1)


class FarFuture(SilentCase):
    """Task maint8 (session 58): a reading the detector does not take says nothing of where
    the device's clock is. vigild runs with storage.max_ahead off, so a reading stamped more
    than a day ahead is stored (and not scored: the pipeline's own bound, PIPE_FUTURE_MS)."""
    CONFIG = SilentCase.CONFIG + "[storage]\nmax_ahead = 0\n"

    def test_far_future_reading_through_the_period(self):
        """A silent device whose only reading while the period is current is one stamped two
        days ahead (stored, not scored: more than a day ahead of its arrival) is still silent:
        the period's end ends its episode "maintenance". Before, its arrival (seen_ms, any
        reading), about 320 s after its newest scored reading's timestamp, more than the
        period, took it for a clock behind, and the episode stayed open."""
        d, dev = self.d, "far-future"
        active, before = self.anomalous(dev, 30)
        start = self.plan(dev, 4000)
        self.sleep_until(start + 300)
        tp.post_readings(d, dev, z_shifted(1, 680, random.Random(31)),
                         [int(time.time() * 1000) + 2 * 86400 * 1000], tp.CH3)
        tp.wait_for("the reading counted not scored", lambda: tp.status(
            d, dev)["readings_not_scored_future"] == 1, 10)
        self.assertLess(time.time() * 1000, start + 4000, "too slow: scored after the end")
        self.sleep_until(start + 4000)
        self.ended_maintenance(dev, active, before["last_ts"])
        self.assertEqual(self.assert_counted([dev])["maintenance"], 1)


def stored_row(db_path, sql, args):
    """The first row of sql (args bound) in the database at db_path (None: none), vigild
    running or not (WAL: a reader holds up no writer)."""
    db = sqlite3.connect(db_path)
    try:
        return db.execute(sql, args).fetchone()
    finally:
        db.close()


def saved_ms(db_path, dev):
    """dev's detector's saved_ms in the database at db_path (-1: none)."""
    row = stored_row(db_path, "SELECT t.saved_ms FROM detectors t JOIN devices v"
                     " ON v.id = t.device_id WHERE v.name = ?", (dev,))
    return row[0] if row else -1


def stored_event(db_path, dev, eid):
    """dev's event eid as stored in the database at db_path: (end_ts, its JSON as a dict), end_ts
    None while it is open; None when there is no such row."""
    row = stored_row(db_path, "SELECT e.end_ts, e.info FROM events e JOIN devices v"
                     " ON v.id = e.device_id WHERE v.name = ? AND e.id = ?", (dev, eid))
    return (row[0], json.loads(row[1])) if row else None


class StopTicks(SilentCase, tg.Held):
    """Task maint7 (session 57): the stop's two maintenance ticks (daemon/stop.c). A period
    that ends after the loop's last 250 ms look, once the stop has begun, must still have its
    silent device's episode ended "maintenance", not taken as seen by the restore (its end
    before the detector's save at the stop). vigild runs with VIGIL_TEST_HOLD_DIR: the stop
    waits at its points "stop-tick" (before the first tick), "stop-saves" (after it, before the
    saves) and "stop-saved" (after the saves, before the second tick) while the file of that
    name exists, "<point>.held" meanwhile, so the period ends (or vigild is killed) inside the
    stop without a timing guess, as a period ends while a large fleet's saves run."""

    def test_period_ending_before_the_saves(self):
        """The period ends while the stop waits before its saves (point stop-saves): the second
        tick (after the saves) ends the episode and saves the detector again; after the restart
        the event is ended "maintenance" and the status normal. Without that tick the episode
        stayed open across the restart (the stop's save came after the period's end)."""
        d, dev = self.d, "stop-saves"
        active, before = self.hold_across_the_end(dev, 50, "stop-saves")
        d.stop()  # waits for the exit: 0, no sanitizer report
        self.assertIn("stop: VIGIL_TEST_HOLD_DIR is set (a test hook): waiting at 'stop-saves'",
                      d.log())
        d.start()
        self.ended_maintenance(dev, active, before["last_ts"])
        self.assertIsNone(tp.status(d, dev)["maintenance"])

    def test_period_ending_before_the_first_tick_killed_after_the_saves(self):
        """The period ends while the stop waits before its first tick (point stop-tick); vigild
        is killed after the saves (point stop-saved, the device's save seen committed, after the
        period's end), before the second tick: a stop cut short (systemd's SIGKILL at
        TimeoutStopSec=). The first tick ended the episode and saved the detector before the
        saves, so after the restart the event is ended "maintenance". Without it the saves
        stored the episode open after the period's end, and the restore took the period as
        seen."""
        d, dev = self.d, "stop-killed"
        saved = os.path.join(self.holds, "stop-saved")
        try:
            active, before = self.hold_across_the_end(dev, 51, "stop-tick", ("stop-saved",))
            tp.wait_for("the stop at its point after the saves",
                        lambda: os.path.exists(saved + ".held"), 30)
            tp.wait_for("the stop's save of %s committed" % dev,
                        lambda: saved_ms(self.d.db_path, dev) >= self.end_ms, 30)
            d.kill()
        finally:
            self.release_all()
        d.start()
        self.ended_maintenance(dev, active, before["last_ts"])
        self.assertIsNone(tp.status(d, dev)["maintenance"])


if __name__ == "__main__":
    vt.main()

#!/usr/bin/env python3
"""A user's smaller surprises (session 66), each found by a black-box reader (read65b):

- readings of one device at one timestamp in one request (JSON, /write, a burst on the
  stream): stored as one reading (the store is keyed by device, channel and timestamp, the last
  value of a channel kept), and now scored as that one reading, so the status's `latest` is
  what the store keeps (it was the first of them, the others counted as out of order), and the
  JSON answer counts them (`"merged"`); across two requests the later one overwrites the store
  and is not scored again, as documented;
- a device's predictions and status while it learns: `predicted` and `score` are null (they were
  the previous reading carried forward and 0.0, read as a prediction and a score of zero), in
  /query's vigil_predictions and vigil_scores too;
- newline-delimited JSON's content types get the JSON array hint in their 415.

Run by CTest as it_surprises (VIGILD set); or directly with VIGILD=build/vigild.
"""

import json
import os
import sys
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402
import vigiltest as vt  # noqa: E402

T0 = 1765000000000  # 2025-12-06T05:46:40Z, a time every route takes


class SameTimestamp(vt.DaemonTestCase):
    """Readings repeating a device and timestamp: one rule for the store and the detector."""

    def stored(self, dev):
        return [(p["ts"], p["values"]) for p in self.d.readings(dev)]

    def test_json_batch_merged_last_wins(self):
        items = [{"device": "j1", "ts": T0, "values": {"x": 1, "y": 5}},
                 {"device": "j2", "ts": T0, "values": {"x": 7}},
                 {"device": "j1", "ts": T0, "values": {"x": 2}},
                 {"device": "j1", "ts": T0 + 1000, "values": {"x": 8, "y": 6}},
                 {"device": "j1", "ts": T0, "values": {"x": 3, "z": 4}}]
        r = self.d.post_json(items)
        self.assertEqual(r.status, 200, r)
        # Every item counted as accepted (none refused), two of them merged into an earlier one.
        self.assertEqual(vt.loads(r.body), {"accepted": 5, "merged": 2})
        self.assertEqual(self.stored("j1"), [(T0, {"x": 3, "y": 5, "z": 4}),
                                             (T0 + 1000, {"x": 8, "y": 6})])
        self.assertEqual(self.stored("j2"), [(T0, {"x": 7})])
        s = tp.wait_scored(self.d, "j1", 2)
        self.assertEqual(s["readings_scored"], 2, s)
        self.assertEqual(s["readings_not_scored_out_of_order"], 0, s)
        # z is in the first (merged) reading only: the newest lacks it, listed with its last
        # reading's time (session 69); its value stays in latest (not missing yet).
        self.assertEqual(s["latest"], {"x": 8.0, "y": 6.0, "z": 4.0}, s)
        self.assertEqual([(m["channel"], m["last_seen_ts"]) for m in s["missing_channels"]],
                         [("z", T0)], s)
        # The detector saw the merged reading: x = 3 is what it carried to the next one.
        pts = self.d.get_json("/v1/devices/j1/predictions")["points"]
        self.assertEqual([p["ts"] for p in pts], [T0, T0 + 1000], pts)
        self.assertEqual(pts[0]["actual"], {"x": 3.0, "y": 5.0, "z": 4.0}, pts)
        dev = self.d.device("j1")
        self.assertEqual((dev["points"], dev["channels"]), (2, ["x", "y", "z"]), dev)

    def test_json_latest_is_stored_value(self):
        # The reader's case: three values of one channel at one time.
        items = [{"device": "j3", "ts": T0, "values": {"x": v}} for v in (1, 2, 3)]
        r = self.d.post_json(items)
        self.assertEqual(vt.loads(r.body), {"accepted": 3, "merged": 2}, r)
        s = tp.wait_scored(self.d, "j3", 1)
        self.assertEqual(self.stored("j3"), [(T0, {"x": 3})])
        self.assertEqual(s["latest"], {"x": 3.0}, s)
        self.assertEqual((s["readings_scored"], s["readings_not_scored_out_of_order"]), (1, 0), s)
        # A batch without repeats says nothing of merging.
        r = self.d.post_json([{"device": "j3", "ts": T0 + 1000, "values": {"x": 4}}])
        self.assertEqual(vt.loads(r.body), {"accepted": 1}, r)

    def test_json_without_timestamps(self):
        # Items without ts arriving together get one time: one reading, the last value kept.
        r = self.d.post_json([{"device": "j4", "values": {"x": 1}},
                              {"device": "j4", "values": {"x": 2}}])
        self.assertEqual(vt.loads(r.body), {"accepted": 2, "merged": 1}, r)
        s = tp.wait_scored(self.d, "j4", 1)
        self.assertEqual([v for _, v in self.stored("j4")], [{"x": 2}])
        self.assertEqual(s["latest"], {"x": 2.0}, s)

    def test_json_refused_item_not_merged(self):
        # A refused item is not merged into the good one of its time, and is counted as refused.
        r = self.d.post_json([{"device": "j5", "ts": T0, "values": {"x": 1}},
                              {"device": "j5", "ts": T0, "values": {"x": "hot"}}])
        self.assertEqual(r.status, 400, r)
        doc = vt.loads(r.body)
        self.assertEqual((doc["accepted"], doc["rejected"], "merged" in doc), (1, 1, False), doc)
        self.assertEqual(self.stored("j5"), [(T0, {"x": 1})])

    def test_json_merged_past_point_width(self):
        # Two items of 200 channels each at one time are one reading of 400 fields: stored whole,
        # and, past the 256 fields a point the detector maps, not scored (on main the first item
        # was scored with its 200, the second counted as out of order). The next reading is.
        items = [{"device": "j7", "ts": T0, "values": {"c%d" % (h * 200 + c): c
                                                       for c in range(200)}} for h in (0, 1)]
        items.append({"device": "j7", "ts": T0 + 1000, "values": {"c0": 1}})
        r = self.d.post_json(items)
        self.assertEqual(vt.loads(r.body), {"accepted": 3, "merged": 1}, r)
        st = self.stored("j7")
        self.assertEqual([(ts, len(v)) for ts, v in st], [(T0, 400), (T0 + 1000, 1)])
        self.assertEqual(st[0][1]["c399"], 199)
        s = tp.wait_scored(self.d, "j7", 1)
        pts = self.d.get_json("/v1/devices/j7/predictions")["points"]
        self.assertEqual([p["ts"] for p in pts], [T0 + 1000], pts)
        self.assertEqual((s["readings_scored"], s["readings_not_scored_out_of_order"]), (1, 0), s)

    def test_two_requests_same_timestamp(self):
        # Across requests: the later one overwrites the stored value (a retry is always safe),
        # but the detector has scored that time already and does not step back: counted as out
        # of order, and the status's latest keeps the value it scored (documented).
        self.assertEqual(vt.loads(self.d.post_json(
            [{"device": "j6", "ts": T0, "values": {"x": 1}}]).body), {"accepted": 1})
        tp.wait_scored(self.d, "j6", 1)
        self.assertEqual(vt.loads(self.d.post_json(
            [{"device": "j6", "ts": T0, "values": {"x": 2}}]).body), {"accepted": 1})
        s = tp.wait_for("the repeat counted", lambda: (
            lambda s: s if s["readings_not_scored_out_of_order"] == 1 else None)(
                tp.status(self.d, "j6")), 30)
        self.assertEqual(self.stored("j6"), [(T0, {"x": 2})])
        self.assertEqual((s["readings_scored"], s["latest"]), (1, {"x": 1.0}), s)

    def test_write_body_merged(self):
        body = ("m,device=w1 x=1,y=5 %d\nm,device=w1 x=2 %d\nm,device=w1 x=3 %d\n"
                % (T0, T0, T0))
        r = self.d.write_lp(body, precision="ms")
        self.assertEqual(r.status, 204, r)
        s = tp.wait_scored(self.d, "w1", 1)
        self.assertEqual(self.stored("w1"), [(T0, {"x": 3, "y": 5})])
        self.assertEqual(s["latest"], {"x": 3.0, "y": 5.0}, s)
        self.assertEqual((s["readings_scored"], s["readings_not_scored_out_of_order"]), (1, 0), s)

    def test_stream_burst_merged(self):
        c = self.d.stream_connect()
        try:
            ns = T0 * 1000000
            c.send("m,device=s1 x=1,y=5 %d\nm,device=s1 x=2 %d\nm,device=s1 x=3 %d\n"
                   % (ns, ns, ns))
            c.wait_ok(3)
        finally:
            c.close()
        s = tp.wait_scored(self.d, "s1", 1)
        self.assertEqual(self.stored("s1"), [(T0, {"x": 3, "y": 5})])
        # The three lines reach the store in one batch when they arrive in one segment, as
        # here on loopback; a line of a later batch would be a later request's (above).
        self.assertEqual(s["latest"], {"x": 3.0, "y": 5.0}, s)
        self.assertEqual(s["readings_not_scored_out_of_order"], 0, s)


class Learning(vt.DaemonTestCase):
    """A device still learning has no model: its predictions and score are null."""

    def test_predictions_null_while_learning(self):
        items = [{"device": "p1", "ts": T0 + 1000 * k, "values": {"x": 10.0 + k, "y": 0.5}}
                 for k in range(5)]
        self.assertEqual(self.d.post_json(items).status, 200)
        s = tp.wait_scored(self.d, "p1", 5)
        self.assertEqual(s["state"], "learning", s)
        self.assertIsNone(s["score"], s)
        self.assertEqual(s["latest"], {"x": 14.0, "y": 0.5}, s)
        doc = self.d.get_json("/v1/devices/p1/predictions")
        self.assertEqual(len(doc["points"]), 5, doc)
        self.assertEqual(doc["retained_from_ts"], T0, doc)
        for k, p in enumerate(doc["points"]):
            self.assertEqual(p["state"], "learning", p)
            self.assertIsNone(p["score"], p)
            self.assertEqual(p["predicted"], {"x": None, "y": None}, p)
            self.assertEqual(p["actual"], {"x": 10.0 + k, "y": 0.5}, p)
        # /query's reserved measurements say the same: no value (null), the state 0 (learning).
        q = ("SELECT \"score\", \"state\" FROM \"vigil_scores\" WHERE \"device\" = 'p1'; "
             "SELECT \"x\" FROM \"vigil_predictions\" WHERE \"device\" = 'p1'")
        st, _, body = self.d.get("/query?" + urllib.parse.urlencode(
            {"db": "plant", "q": q, "epoch": "ms"}))
        self.assertEqual(st, 200, body)
        res = json.loads(body)["results"]
        self.assertEqual(res[0]["series"][0]["values"],
                         [[T0 + 1000 * k, None, 0] for k in range(5)], res)
        # A field with no value at all: no series (InfluxDB's answer for all-null rows).
        self.assertNotIn("series", res[1], res)
        # The forecast has none either: 409 (unchanged).
        st, _, body = self.d.get("/v1/devices/p1/forecast")
        self.assertEqual(st, 409, body)


class MissingChannel(vt.DaemonTestCase):
    """read69b's finding 3: a sensor that stopped reporting was imputed forever, the device
    normal, with no line, metric or field saying so, and "latest" showed its stale value as
    current. Now: "missing_channels" (readings in a row without it, when it was last reported)
    from the first reading that lacks it; once 10 readings and 5 minutes lacked it, "latest" null,
    a warn line and vigil_device_channels_missing; an info line when it is reported again. A
    channel sent less often (a second source at a longer interval into the same device) is
    never told missing between its readings (review of session 69: a count alone warned each
    minute for a channel sent once a minute beside one sent every second)."""

    def send(self, dev, k0, k1, has_y):
        items = []
        for k in range(k0, k1):
            values = {"x": float(k % 5)}
            if has_y(k):
                values["y"] = float(k % 5 + 1)
            items.append({"device": dev, "ts": T0 + 1000 * k, "values": values})
        r = self.d.post_json(items)
        self.assertEqual(r.status, 200, r)
        return tp.wait_scored(self.d, dev, k1)

    def gauge(self, dev):
        return self.d.metric('vigil_device_channels_missing{device="%s"}' % dev)

    def test_missing_channel_said(self):
        dev = "miss-1"
        s = self.send(dev, 0, 20, lambda k: True)
        self.assertEqual(s["missing_channels"], [], s)
        self.assertEqual(s["latest"], {"x": 4.0, "y": 5.0}, s)
        # Two sources: y once a minute beside x every second, for 3 minutes. y is listed
        # between its readings but never missing: no line, no series, its value in latest.
        s = self.send(dev, 20, 200, lambda k: k % 60 == 0)
        self.assertEqual(s["latest"], {"x": 4.0, "y": 1.0}, s)
        self.assertEqual(s["imputed_channels"], ["y"], s)
        self.assertEqual(s["missing_channels"], [
            {"channel": "y", "readings_missing": 19, "missing": False,
             "last_seen_ts": T0 + 180000, "last_seen": "2025-12-06T05:49:40.000Z"}], s)
        self.assertIsNone(self.gauge(dev))
        self.assertNotIn("channel 'y' missing", self.d.log())
        # Then y stops: missing once 5 minutes passed since its last reading (the reading at
        # k = 480), said once, null in latest, counted in /metrics.
        s = self.send(dev, 200, 479, lambda k: False)
        self.assertFalse(s["missing_channels"][0]["missing"], s)
        self.assertEqual(s["latest"]["y"], 1.0, s)
        self.assertIsNone(self.gauge(dev))
        s = self.send(dev, 479, 520, lambda k: False)
        self.assertEqual(s["missing_channels"][0]["readings_missing"], 339, s)
        self.assertTrue(s["missing_channels"][0]["missing"], s)
        self.assertIsNone(s["latest"]["y"], s)
        said = tp.logged(self.d, r" warn  pipeline: device 'miss-1': channel 'y' missing from "
                         r"its last 300 readings, 5 minutes or more \(last reported "
                         r"2025-12-06T05:49:40.000Z\)", 1)
        self.assertEqual(len(said), 1, self.d.log()[-3000:])
        self.assertEqual(self.gauge(dev), 1.0)
        # Reported again: the info line, the status and /metrics back to none.
        s = self.send(dev, 520, 522, lambda k: True)
        self.assertEqual(s["missing_channels"], [], s)
        self.assertEqual(s["latest"], {"x": 1.0, "y": 2.0}, s)
        back = tp.logged(self.d, r" info  pipeline: device 'miss-1': channel 'y' reported again "
                         r"after 339 readings without it", 1)
        self.assertEqual(len(back), 1, self.d.log()[-3000:])
        self.assertIsNone(self.gauge(dev))
        self.assertEqual(self.d.log().count("channel 'y' missing from"), 1)


    def test_input_channel_never_missing(self):
        """read69e 4: an input channel (a set point, often sent only when it changes) is held,
        not missing: listed with its count and missing false, its last value in latest, no
        warn line and no vigil_device_channels_missing, however long it is not sent. On main
        it was told missing like a dead sensor (a VigilChannelMissing page, latest null)."""
        dev = "miss-in"
        st, _, body = tp.req(self.d, "PUT", "/v1/devices/%s" % dev, {"inputs": ["y"]})
        self.assertIn(st, (200, 201), body)
        self.send(dev, 0, 20, lambda k: True)
        s = self.send(dev, 20, 520, lambda k: False)
        self.assertEqual(s["missing_channels"], [
            {"channel": "y", "readings_missing": 500, "missing": False,
             "last_seen_ts": T0 + 19000, "last_seen": "2025-12-06T05:46:59.000Z"}], s)
        self.assertEqual(s["latest"], {"x": 4.0, "y": 5.0}, s)
        self.assertIsNone(self.gauge(dev))
        self.assertNotIn("channel 'y' missing", self.d.log())


class NdjsonContentType(vt.DaemonTestCase):
    """Newline-delimited JSON's types on the JSON write: a 415 with the array hint."""

    def test_ndjson_types_hinted(self):
        body = '{"device":"n1","values":{"x":1}}\n{"device":"n1","values":{"x":2}}\n'
        for ct in ("application/x-ndjson", "application/jsonl", "application/x-jsonlines",
                   "application/ndjson", "Application/X-NDJSON; charset=utf-8"):
            r = self.d.curl("POST", "/v1/readings", "-H", "Content-Type: " + ct,
                            "--data-binary", "@-", stdin=body)
            msg = self.assertJsonError(r, 415, ["Content-Type '%s' is not supported" % ct,
                                                "send application/json",
                                                "one JSON array [{...}, {...}]"])
            self.assertIn("not one a line", msg)
        # Another type keeps its plain 415, and nothing was stored.
        r = self.d.curl("POST", "/v1/readings", "-H", "Content-Type: application/xml",
                        "--data-binary", "@-", stdin=body)
        msg = self.assertJsonError(r, 415, "send application/json")
        self.assertNotIn("array", msg)
        self.assertNoDevice("n1")


if __name__ == "__main__":
    vt.main()

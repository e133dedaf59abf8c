#!/usr/bin/python3
"""vigild integration: the JSON API over HTTP with curl, reading back: the readings' queries
and their parameters, the forecast cap, the anomaly pages and their caps, and the history
(History, HistoryWide). Every value is read back and compared exactly. Ingest, devices,
routing, errors and the HTTP limits: test_http.py."""

import json
import math
import os
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402


class Readings(vt.DaemonTestCase):
    DEV = "q-1"
    N = 57
    T0 = 1732780800000
    # A point at the last millisecond of 9999 is stored only with the future bound off (it is
    # refused by default since session 43: storage.max_ahead, it_clock FarFuture).
    CONFIG = "[storage]\nmax_ahead = 0\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        items = []
        for i in range(cls.N):
            v = {"a": i + 0.25}
            if i % 2 == 0:
                v["b"] = -i * 1e-3
            if i % 5 == 0:
                v["c"] = 1e300 / (i + 1)
            items.append({"device": cls.DEV, "ts": cls.T0 + i * 1000, "values": v})
        r = cls.d.post_json(items)
        assert r.status == 200, r
        cls.items = items

    def expect(self, lo=None, hi=None, chans=None):
        out = []
        for it in self.items:
            ts = it["ts"]
            if (lo is not None and ts < lo) or (hi is not None and ts >= hi):
                continue
            v = {k: float(x) for k, x in it["values"].items() if chans is None or k in chans}
            if v:
                out.append((ts, v))
        return out

    def test_all_default(self):
        doc = self.d.get_json("/v1/devices/%s/readings" % self.DEV)
        self.assertEqual(doc["device"], self.DEV)
        self.assertIsNone(doc["next"])
        self.assertPoints(doc["points"], self.expect())
        self.assertEqual(doc["points"][0]["time"], "2024-11-28T08:00:00.000Z")

    def test_from_to_forms(self):
        lo, hi = self.T0 + 10000, self.T0 + 20000
        self.assertPoints(self.d.readings(self.DEV, **{"from": lo, "to": hi}), self.expect(lo, hi))
        self.assertPoints(self.d.readings(self.DEV, **{"from": "2024-11-28T08:00:10Z",
                                                       "to": "2024-11-28T08:00:20.000Z"}),
                          self.expect(lo, hi))
        self.assertPoints(self.d.readings(self.DEV, **{"from": "2024-11-28T10:00:10+02:00",
                                                       "to": hi}),
                          self.expect(lo, hi))
        self.assertPoints(self.d.readings(self.DEV, **{"from": hi}), self.expect(hi))
        self.assertPoints(self.d.readings(self.DEV, to=lo + 1), self.expect(None, lo + 1))
        self.assertPoints(self.d.readings(self.DEV, **{"from": self.T0 + 500, "to": self.T0 + 999}),
                          [])

    def test_channels(self):
        self.assertPoints(self.d.readings(self.DEV, channels="b,c"), self.expect(chans={"b", "c"}))
        self.assertPoints(self.d.readings(self.DEV, channels="c"), self.expect(chans={"c"}))
        self.assertJsonError(self.d.get("/v1/devices/%s/readings?channels=a,nope" % self.DEV),
                             400, ["'channels'", "no channel 'nope'"])
        for cs, pos in (("a,,b", "name 2"), (",a", "name 1"), ("a,", "name 2")):
            with self.subTest(channels=cs):
                self.assertJsonError(self.d.get("/v1/devices/%s/readings?channels=%s"
                                                % (self.DEV, cs)), 400, ["'channels'", pos, "empty"])

    def test_limit_and_next(self):
        doc = self.d.get_json("/v1/devices/%s/readings?limit=10" % self.DEV)
        self.assertEqual(len(doc["points"]), 10)
        self.assertIsNotNone(doc["next"])
        self.assertTrue(doc["next"].startswith("/v1/devices/q-1/readings?"), doc["next"])
        for lim in (1, 7, 10, 56, 57, 58):
            with self.subTest(limit=lim):
                self.assertPoints(self.d.readings(self.DEV, limit=lim), self.expect())
        self.assertPoints(self.d.readings(self.DEV, limit=4, channels="c"),
                          self.expect(chans={"c"}))
        lo, hi = self.T0 + 3000, self.T0 + 41000
        self.assertPoints(self.d.readings(self.DEV, limit=6, **{"from": lo, "to": hi}),
                          self.expect(lo, hi))

    def test_next_at_range_end(self):
        # Pages that end exactly at the range's end: following `next` never leads to a 400.
        lo, hi = self.T0 + 10000, self.T0 + 20000  # 10 points
        for lim in (1, 2, 5, 10):
            with self.subTest(limit=lim):
                self.assertPoints(self.d.readings(self.DEV, limit=lim, **{"from": lo, "to": hi}),
                                  self.expect(lo, hi))
                self.assertPoints(self.d.readings(self.DEV, limit=lim, order="desc",
                                                  **{"from": lo, "to": hi}),
                                  list(reversed(self.expect(lo, hi))))
                self.assertPoints(self.d.readings(self.DEV, limit=lim, order="desc",
                                                  **{"from": self.T0, "to": hi}),
                                  list(reversed(self.expect(self.T0, hi))))
        # A point at the very last accepted millisecond (9999-12-31T23:59:59.999Z).
        last = 253402300799999
        r = self.d.post_json([{"device": "q-end", "ts": 0, "values": {"a": 1}},
                              {"device": "q-end", "ts": last, "values": {"a": 2}}])
        self.assertEqual(r.status, 200, r)
        self.assertPoints(self.d.readings("q-end", limit=1), [(0, {"a": 1.0}), (last, {"a": 2.0})])
        self.assertPoints(self.d.readings("q-end", limit=1, order="desc"),
                          [(last, {"a": 2.0}), (0, {"a": 1.0})])
        self.assertEqual(self.d.readings("q-end", **{"from": "9999-12-31T23:59:59.999Z"})[0]["time"],
                         "9999-12-31T23:59:59.999Z")

    def test_next_where_numbers_look_like_seconds(self):
        # Line protocol's nanoseconds name their unit, so readings can be stored from
        # 1970-01-02 to 1973-03-03, where a from=/to= number is refused as likely epoch seconds.
        # The pages' next links there must still be taken back (they were 400: it_crash's
        # kill -9 test, its stream at 1e9 ms, met it past 100,000 lines). precision=ns named:
        # without a unit such times are refused since session 67 (in67).
        t0 = 10 ** 9  # ms: 1970-01-12
        r = self.d.write_lp("".join("s,device=q-secs v=%d %d\n" % (i, (t0 + i) * 10 ** 6)
                                    for i in range(7)), precision="ns")
        self.assertEqual(r.status, 204, r)
        want = [(t0 + i, {"v": float(i)}) for i in range(7)]
        doc = self.d.get_json("/v1/devices/q-secs/readings?limit=3")
        self.assertIn("from=1970-01-12T", doc["next"])
        for lim in (1, 3):
            with self.subTest(limit=lim):
                self.assertPoints(self.d.readings("q-secs", limit=lim), want)
                self.assertPoints(self.d.readings("q-secs", limit=lim, order="desc",
                                                  **{"from": "1970-01-12T13:46:40Z",
                                                     "to": "1970-01-12T13:46:40.007Z"}),
                                  list(reversed(want)))

    def test_desc(self):
        want = list(reversed(self.expect()))
        self.assertPoints(self.d.readings(self.DEV, order="desc"), want)
        self.assertPoints(self.d.readings(self.DEV, order="desc", limit=8), want)
        lo, hi = self.T0 + 5000, self.T0 + 30000
        self.assertPoints(self.d.readings(self.DEV, order="desc", limit=3, channels="c",
                                          **{"from": lo, "to": hi}),
                          list(reversed(self.expect(lo, hi, {"c"}))))
        self.assertPoints(self.d.readings(self.DEV, order="asc", limit=20), self.expect())

    def test_bad_params(self):
        base = "/v1/devices/%s/readings?" % self.DEV
        for q, word in [("limit=0", "limit"), ("limit=abc", "limit"), ("limit=-5", "limit"),
                        ("limit=100000001", "limit"), ("from=yesterday", "from"),
                        ("to=2024-13-45T00:00:00Z", "to"), ("order=up", "order"),
                        ("from=2000&to=1000", "from"), ("from=1000&to=1000", "from"),
                        # too long for the parameter's buffer: refused, not silently ignored
                        ("order=descending", "order"), ("limit=" + "0" * 40 + "5", "limit"),
                        ("from=2024-11-28T08:00:10." + "0" * 60 + "Z", "from"),
                        ("channels=" + "a," * 5000 + "b", "channels"),
                        ("order=de%00sc", "order")]:
            with self.subTest(q=q):
                self.assertJsonError(self.d.get(base + q), 400, word)

    def test_unknown_device(self):
        self.assertJsonError(self.d.get("/v1/devices/nope-nope/readings"), 404, "nope-nope")
        self.assertJsonError(self.d.get("/v1/devices/nope-nope"), 404, "nope-nope")


class QueryParams(vt.DaemonTestCase):
    """Malformed query parameters get a 400 naming the parameter, never a silent default."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.d.post_json([{"device": "qp-1", "ts": 1000 + i, "values": {"a": i}}
                             for i in range(5)])
        assert r.status == 200, r
        # The pipeline's endpoints answer 404 until it has scored the device's readings (the
        # POST's answer means stored): wait for that, so no test races it.
        deadline = time.monotonic() + 60
        while cls.d.get("/v1/devices/qp-1/predictions")[0] != 200:
            assert time.monotonic() < deadline, "qp-1 never reached the pipeline"
            time.sleep(0.05)

    def test_unknown_parameter(self):
        for path, name in (("/v1/devices/qp-1/readings?form=1000", "form"),
                           ("/v1/devices/qp-1/readings?from=1000&lmit=2", "lmit"),
                           ("/v1/devices?limt=5", "limt"),
                           ("/v1/devices/qp-1?verbose=1", "verbose"),
                           ("/v1/devices/qp-1/forecast?steps=5", "steps"),
                           ("/v1/devices/qp-1/predictions?ordr=desc", "ordr"),
                           ("/v1/anomalies?device=qp-1", "device")):
            with self.subTest(path=path):
                msg = self.assertJsonError(self.d.get(path), 400, "'%s'" % name)
                self.assertIn("unknown", msg)
        r = self.d.post_json({"device": "qp-2", "ts": 1, "values": {"a": 1}},
                             path="/v1/readings?precision=ms")
        self.assertJsonError(r, 400, ["'precision'", "no parameters"])
        self.assertNoDevice("qp-2")

    def test_repeated_parameter(self):
        self.assertJsonError(self.d.get("/v1/devices/qp-1/readings?limit=2&limit=3"), 400,
                             ["'limit'", "more than once"])
        self.assertJsonError(self.d.get("/v1/devices/qp-1/readings?from=1&from=2"), 400, "'from'")

    def test_from_not_before_to(self):
        for ep in ("readings", "predictions", "anomalies"):
            for q in ("from=5000&to=1000", "from=1000&to=1000"):
                with self.subTest(ep=ep, q=q):
                    self.assertJsonError(self.d.get("/v1/devices/qp-1/%s?%s" % (ep, q)), 400,
                                         ["'from'", "'to'"])
        self.assertJsonError(self.d.get("/v1/anomalies?from=2026-11-28T10:00:00Z"
                                        "&to=2026-11-28T09:00:00Z"), 400, "'from'")

    def test_huge_and_malformed_integers(self):
        big = "99999999999999999999"
        msg = self.assertJsonError(self.d.get("/v1/devices/qp-1/forecast?horizon=" + big), 400,
                                   ["'horizon'", big, "10000"])
        self.assertNotIn("18446744073709551615", msg)
        for v in ("-1", "0", "abc", "1e3", "%2B5", "%205", "5x", ""):
            with self.subTest(v=v):
                self.assertJsonError(self.d.get("/v1/devices/qp-1/forecast?horizon=" + v), 400,
                                     "'horizon'")
                self.assertJsonError(self.d.get("/v1/devices/qp-1/readings?limit=" + v), 400,
                                     "'limit'")
        self.assertJsonError(self.d.get("/v1/devices?limit=" + big), 400, ["'limit'", big])

    def test_anomalies_limit(self):
        for path in ("/v1/anomalies", "/v1/devices/qp-1/anomalies"):
            with self.subTest(path=path):
                doc = self.d.get_json(path + "?limit=5")
                self.assertEqual(doc, {"anomalies": [], "next": None})
                self.assertJsonError(self.d.get(path + "?limit=0"), 400, "'limit'")
                self.assertJsonError(self.d.get(path + "?limit=1001"), 400, ["'limit'", "1000"])

    def test_predictions_pages(self):
        # 30 scored readings, read in pages of 7 by following "next": the same entries as
        # one page holds, in order, with nothing repeated.
        dev = "qp-pred"
        r = self.d.post_json([{"device": dev, "ts": 10000 + 10 * i, "values": {"a": i % 7}}
                              for i in range(30)])
        self.assertEqual(r.status, 200, r)
        deadline = time.monotonic() + 60
        while True:
            # 404 until the pipeline has taken the device's first reading (the POST's answer
            # means stored, not yet scored).
            st, _, body = self.d.get("/v1/devices/%s/predictions" % dev)
            self.assertIn(st, (200, 404), body)
            whole = json.loads(body) if st == 200 else {"points": []}
            if len(whole["points"]) == 30 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(whole["points"]), 30)
        self.assertIsNone(whole["next"])
        path, pages, got = "/v1/devices/%s/predictions?limit=7&to=10290" % dev, 0, []
        while path:
            doc = self.d.get_json(path)
            self.assertLessEqual(len(doc["points"]), 7)
            got += doc["points"]
            path = doc["next"]
            pages += 1
            self.assertLess(pages, 10)
        self.assertEqual([p["ts"] for p in got], [p["ts"] for p in whole["points"]][:29])
        self.assertEqual(got, whole["points"][:29])
        self.assertEqual(pages, 5)


class ForecastCap(vt.DaemonTestCase):
    """A forecast is one answer (not paged): its steps x channels are capped at 64,000 values,
    a longer horizon is a 400 naming 'horizon' and the device's most."""

    CONFIG = "[model]\nwarmup = 60\nhidden = 4\nretrain_every = 0\n"

    def trained(self, dev, nch):
        r = self.d.post_json([{"device": dev, "ts": 1000 * i,
                               "values": {"ch%02d" % c: math.sin(i / 7 + c) for c in range(nch)}}
                              for i in range(120)])
        self.assertEqual(r.status, 200, r)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st, _, body = self.d.get("/v1/devices/%s/model" % dev)
            if st == 200 and vt.loads(body)["versions"]:
                return
            time.sleep(0.1)
        self.fail("%s: no model within 120 s" % dev)

    def test_horizon_times_channels(self):
        self.trained("fc-64", 64)
        self.assertJsonError(self.d.get("/v1/devices/fc-64/forecast?horizon=1001"), 400,
                             ["'horizon'", "64 channels", "at most 1000"])
        doc = self.d.get_json("/v1/devices/fc-64/forecast?horizon=1000")
        self.assertEqual(len(doc["steps"]), 1000)
        self.assertEqual(len(doc["steps"][0]["values"]), 64)
        self.trained("fc-4", 4)
        doc = self.d.get_json("/v1/devices/fc-4/forecast?horizon=10000")
        self.assertEqual(len(doc["steps"]), 10000)
        self.assertJsonError(self.d.get("/v1/devices/fc-4/forecast?horizon=10001"), 400,
                             ["'horizon'", "10000"])
        self.assertJsonError(self.d.get("/v1/devices/fc-nope/forecast?horizon=5"), 404, "fc-nope")


class AnomalyPages(vt.DaemonTestCase):
    """Fleet-wide anomalies read page by page through "next": the same events as one page, in
    order, none repeated or lost, each page `limit` events even where that splits the events of
    one start time (before=; test_anompage.py at plant scale). Eight devices see the same sine;
    a burst of alternating spikes on channel a starts at three times: 3 devices (A), 3 (B), 2 (C)."""

    CONFIG = "[model]\nwarmup = 60\nhidden = 4\nretrain_every = 0\n"
    T0 = 1000000
    BURST = {"A": (150, 3), "B": (160, 3), "C": (170, 2)}  # group: (burst start, devices)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        devs = [(g, "ap-%s%d" % (g.lower(), k)) for g, (_, n) in sorted(cls.BURST.items())
                for k in range(n)]

        def rows(i0, i1):
            out = []
            for i in range(i0, i1):
                for g, dev in devs:
                    a, b = math.sin(i / 5.0), math.cos(i / 5.0)
                    j = i - 80 - cls.BURST[g][0]
                    if 0 <= j < 20:  # the burst: 20 readings of +-5 on a
                        a += 5.0 if j % 2 else -5.0
                    out.append({"device": dev, "ts": cls.T0 + 1000 * i, "values": {"a": a, "b": b}})
            return out
        assert cls.d.post_json(rows(0, 80)).status == 200
        deadline = time.monotonic() + 60
        for _, dev in devs:  # first models (linear: a sine is a linear system)
            while True:
                st, _, body = cls.d.get("/v1/devices/%s/model" % dev)
                if st == 200 and vt.loads(body)["versions"]:
                    break
                assert time.monotonic() < deadline, dev + ": no model in 60 s"
                time.sleep(0.1)
        assert cls.d.post_json(rows(80, 300)).status == 200
        cls.whole = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            doc = cls.d.get_json("/v1/anomalies")
            if len(doc["anomalies"]) == len(devs) and not any(e["active"]
                                                              for e in doc["anomalies"]):
                cls.whole = doc
                break
            time.sleep(0.1)
        assert cls.whole is not None, "want one ended event per device, got %r" % (doc,)

    def pages(self, path):
        got, sizes = [], []
        while path:
            doc = self.d.get_json(path)
            got += doc["anomalies"]
            sizes.append(len(doc["anomalies"]))
            path = doc["next"]
            self.assertLess(len(sizes), 10)
        return got, sizes

    def test_events_by_group(self):
        ev = self.whole["anomalies"]
        self.assertIsNone(self.whole["next"])
        starts = sorted({e["start_ts"] for e in ev}, reverse=True)
        self.assertEqual(len(starts), 3, ev)
        self.assertEqual([sum(1 for e in ev if e["start_ts"] == s) for s in starts], [2, 3, 3])
        self.assertEqual([e["start_ts"] for e in ev], sorted((e["start_ts"] for e in ev),
                                                             reverse=True))

    def test_pages_end_at_limit(self):
        # Every page holds limit events, also inside one start time (before=, session 42): the
        # concatenation is the one page's list, in its order (start, device name, id).
        for limit, sizes in ((2, [2, 2, 2, 2]), (4, [4, 4]), (5, [5, 3]), (8, [8])):
            with self.subTest(limit=limit):
                got, seen = self.pages("/v1/anomalies?limit=%d" % limit)
                self.assertEqual(seen, sizes)
                self.assertEqual([json.dumps(e, sort_keys=True) for e in got],
                                 [json.dumps(e, sort_keys=True)
                                  for e in self.whole["anomalies"]])

    # A time parameter between 1970-01-02 and 1973-03-03 (here to=, every event before it): a
    # number there is refused as likely epoch seconds, so the next links must give it back as
    # RFC 3339 (api__time_value). bd864c57's gave "&to=950400000": a 400 on the second page.
    TO_SECS = "1970-01-12T00:00:00Z"  # 950,400,000 ms

    def test_next_where_numbers_look_like_seconds(self):
        doc = self.d.get_json("/v1/anomalies?limit=3&to=" + self.TO_SECS)
        self.assertIn("to=1970-01-12T", doc["next"])
        got, seen = self.pages("/v1/anomalies?limit=3&to=" + self.TO_SECS)
        self.assertEqual(seen, [3, 3, 2])
        self.assertEqual(got, self.whole["anomalies"])

    def test_prediction_next_where_numbers_look_like_seconds(self):
        path = "/v1/devices/ap-a0/predictions?limit=%d&to=" + self.TO_SECS
        whole = self.d.get_json(path % 100000)
        self.assertIsNone(whole["next"])
        n = len(whole["points"])
        self.assertGreater(n, 100)
        doc = self.d.get_json(path % 100)
        self.assertIn("to=1970-01-12T", doc["next"])
        got, pages = [], 0
        link = path % 100
        while link:
            doc = self.d.get_json(link)
            got += doc["points"]
            link = doc["next"]
            pages += 1
            self.assertLessEqual(pages, n // 100 + 2)
        self.assertEqual(got, whole["points"])

    def test_device_pages(self):
        got, seen = self.pages("/v1/devices/ap-b1/anomalies?limit=1")
        self.assertEqual(seen, [1])
        self.assertEqual(got, [e for e in self.whole["anomalies"] if e["device"] == "ap-b1"])


class PageCaps(vt.DaemonTestCase):
    """A list page holds at most 8 MiB of JSON (readings, devices) whatever the limit; the page
    that reaches it ends early at an item boundary and its continuation gets the rest."""

    CAP = 8 << 20
    NAMES = ["c%04d" % i + "x" * 195 for i in range(4096)]  # 200 bytes each: ~0.85 MB a point

    def write_wide(self, device, ts_list):
        body = "".join("m,device=%s %s %d\n" % (device, ",".join(
            "%s=%d" % (n, t + i) for i, n in enumerate(self.NAMES)), t) for t in ts_list)
        r = self.d.write_lp(body, precision="ms")
        self.assertEqual(r.status, 204, r)

    def test_readings_page_cap(self):
        ts = list(range(1000, 1012))
        self.write_wide("wide-1", ts)
        for order in ("asc", "desc"):
            with self.subTest(order=order):
                path = "/v1/devices/wide-1/readings?limit=100&order=" + order
                pages = []
                while path:
                    st, _, body = self.d.get(path)
                    self.assertEqual(st, 200, body[:300])
                    self.assertLessEqual(len(body), self.CAP)
                    doc = vt.loads(body)
                    pages.append(doc["points"])
                    path = doc["next"]
                    self.assertLess(len(pages), 20)
                self.assertGreater(len(pages), 1, "one page of %d points" % len(pages[0]))
                self.assertLess(len(pages[0]), 12)
                got = [p for page in pages for p in page]
                want = ts if order == "asc" else ts[::-1]
                self.assertEqual([p["ts"] for p in got], want)
                for p in got:
                    self.assertEqual(len(p["values"]), 4096)
                    self.assertEqual(p["values"][self.NAMES[17]], p["ts"] + 17)
        # A page that holds every point asked for is not cut.
        doc = self.d.get_json("/v1/devices/wide-1/readings?limit=3")
        self.assertEqual(len(doc["points"]), 3)

    def test_devices_page_cap(self):
        ids = ["wdev-%02d" % i for i in range(11)]  # ~0.85 MB of channel names each
        for dev in ids:
            self.write_wide(dev, [5000])
        after, pages, got = None, [], []
        while True:
            q = "/v1/devices?limit=10000" + ("&after=" + after if after else "")
            st, _, body = self.d.get(q)
            self.assertEqual(st, 200, body[:300])
            self.assertLessEqual(len(body), self.CAP)
            doc = vt.loads(body)
            pages.append(len(doc["devices"]))
            got += [x["id"] for x in doc["devices"]]
            after = doc["next_after"]
            if not after:
                break
            self.assertLess(len(pages), 20)
        self.assertGreater(len(pages), 1, pages)
        self.assertEqual([x for x in got if x.startswith("wdev-")], ids)
        self.assertEqual(len(got), len(set(got)))


    def test_predictions_page_cap(self):
        # 64 modelled channels of 200-byte names: an entry is ~28 KB of JSON, so 400 entries
        # (11 MB) come in pages of at most 8 MiB.
        names = self.NAMES[:64]
        body = "".join("m,device=wpred %s %d\n" % (",".join(
            "%s=%d" % (n, (t + i) % 17) for i, n in enumerate(names)), 1000 * t)
            for t in range(1, 401))
        self.assertEqual(self.d.write_lp(body, precision="ms").status, 204)
        deadline = time.monotonic() + 60
        while True:  # 404 until the pipeline has the device, then pages fill as it scores
            got, pages, path = [], [], "/v1/devices/wpred/predictions?limit=1000"
            while path:
                st, _, body = self.d.get(path)
                self.assertIn(st, (200, 404), body[:300])
                if st == 404:
                    break
                self.assertLessEqual(len(body), self.CAP)
                doc = vt.loads(body)
                pages.append(len(doc["points"]))
                got += doc["points"]
                path = doc["next"]
                self.assertLess(len(pages), 20)
            if len(got) == 400 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual([p["ts"] for p in got], [1000 * t for t in range(1, 401)])
        self.assertGreater(len(pages), 1, pages)
        self.assertEqual(len(got[0]["predicted"]), 64)
        self.assertEqual(got[5]["actual"][names[3]], (6 + 3) % 17)


class History(vt.DaemonTestCase):
    """Readings in time buckets (GET .../readings?step=): every bucket checked against the
    aggregation of the readings the test wrote; pages by limit and by http.max_scan_points
    (made small here) follow `next` to exactly the whole answer."""

    CONFIG = "[http]\nmax_scan_points = %d\n" % 50
    SCAN = 50
    DEV = "hist-1"
    T0 = 1732780800000 + 123  # not aligned to any step below
    AGGS = ("count", "mean", "min", "max", "last")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        rows = []
        for i in range(600):
            if 250 <= i < 330:  # a gap of about 110 s: its buckets are omitted
                continue
            ts = cls.T0 + i * 1370 + (i * i) % 97
            v = {"a": math.sin(i) * 1000}
            if i % 3 == 0:
                v["b"] = -i * 0.37
            if 100 <= i < 200 or 400 <= i < 450:
                v["c"] = 1e300 / (i + 1)
            rows.append((ts, v))
        r = cls.d.post_json([{"device": cls.DEV, "ts": ts, "values": v} for ts, v in rows])
        assert r.status == 200, r
        cls.rows = rows
        cls.END = rows[-1][0] + 1

    def expect(self, step, lo=None, hi=None, chans=None, aggs=("count", "mean", "min", "max"),
               desc=False):
        """The buckets, aggregated here from the readings written."""
        groups = {}
        for ts, vals in self.rows:
            if (lo is not None and ts < lo) or (hi is not None and ts >= hi):
                continue
            for ch, v in vals.items():
                if chans is None or ch in chans:
                    groups.setdefault(ts - ts % step, {}).setdefault(ch, []).append((ts, v))
        out = []
        for b in sorted(groups, reverse=desc):
            g = groups[b]
            agg = {"count": lambda xs: len(xs),
                   "mean": lambda xs: math.fsum(v for _, v in xs) / len(xs),
                   "min": lambda xs: min(v for _, v in xs),
                   "max": lambda xs: max(v for _, v in xs),
                   "last": lambda xs: max(xs, key=lambda x: x[0])[1]}
            bucket = {"ts": b, "time": vt.iso_ms(b)}
            for a in aggs:
                bucket[a] = {ch: agg[a](xs) for ch, xs in g.items()}
            out.append(bucket)
        return out

    def assertBuckets(self, got, want):
        self.assertEqual([b["ts"] for b in got], [b["ts"] for b in want])
        for g, w in zip(got, want):
            self.assertEqual(sorted(g), sorted(w), "aggregates of bucket %d" % w["ts"])
            self.assertEqual(g["time"], w["time"])
            for a in w:
                if a in ("ts", "time"):
                    continue
                self.assertEqual(sorted(g[a]), sorted(w[a]), "%s channels at %d" % (a, w["ts"]))
                for ch, v in w[a].items():
                    x = g[a][ch]
                    if a == "count":
                        self.assertEqual(x, v)
                        self.assertIsInstance(x, int)
                    elif a == "mean":
                        # math.fsum is the correctly rounded sum; vigild's compensated sum
                        # may differ from it by an ulp of the sum before the division.
                        self.assertLessEqual(abs(x - v), 2 * math.ulp(v),
                                             "mean of %s at %d: %r, want %r" % (ch, w["ts"], x, v))
                    else:
                        self.assertTrue(vt.same_double(x, v),
                                        "%s of %s at %d: %r, want %r" % (a, ch, w["ts"], x, v))

    def pages(self, **params):
        """Every page of a bucket query, following `next`."""
        path = "/v1/devices/%s/readings?%s" % (self.DEV, urllib.parse.urlencode(params))
        pages = []
        while path:
            doc = self.d.get_json(path)
            self.assertEqual(doc["device"], self.DEV)
            pages.append(doc["buckets"])
            if doc["next"] is not None:
                self.assertIn("step=", doc["next"])
            path = doc["next"]
            self.assertLess(len(pages), 1000)
        return pages

    def buckets(self, **params):
        return [b for page in self.pages(**params) for b in page]

    def test_buckets_match_the_readings(self):
        for step, ms in (("1", 1), ("1000ms", 1000), ("7s", 7000), ("60000", 60000),
                         ("5m", 300000), ("1h", 3600000), ("1d", 86400000), ("366d", 366 * 86400000)):
            with self.subTest(step=step):
                self.assertBuckets(self.buckets(step=step, limit=100000), self.expect(ms))
                self.assertBuckets(self.buckets(step=step, limit=100000, agg=",".join(self.AGGS)),
                                   self.expect(ms, aggs=self.AGGS))
        # The same numbers as the raw points aggregated here (what a client would compute).
        raw = [(p["ts"], p["values"]) for p in self.d.readings(self.DEV, limit=100000)]
        self.assertEqual(raw, [(ts, {k: float(x) for k, x in v.items()}) for ts, v in self.rows])
        # With curl, the real client: the answer's shape.
        res = self.d.curl("GET", "/v1/devices/%s/readings?step=1m&agg=mean,max&limit=2" % self.DEV)
        self.assertEqual(res.status, 200, res)
        doc = res.json()
        self.assertEqual(doc["step"], 60000)
        self.assertEqual(len(doc["buckets"]), 2)
        self.assertEqual(sorted(doc["buckets"][0]), ["max", "mean", "time", "ts"])
        self.assertBuckets(doc["buckets"], self.expect(60000, aggs=("mean", "max"))[:2])
        self.assertIn("agg=mean,max", doc["next"])

    def test_subsets_and_channels(self):
        self.assertBuckets(self.buckets(step="30s", agg="last"), self.expect(30000, aggs=("last",)))
        self.assertBuckets(self.buckets(step="30s", agg="max,count,max"),
                           self.expect(30000, aggs=("count", "max")))
        self.assertBuckets(self.buckets(step="30s", channels="c,b"),
                           self.expect(30000, chans={"b", "c"}))
        # A bucket holding none of the selected channels is omitted, as an empty one is.
        got = self.buckets(step="10s", channels="c")
        self.assertBuckets(got, self.expect(10000, chans={"c"}))
        self.assertLess(len(got), len(self.buckets(step="10s")))

    def test_from_to_cut_buckets(self):
        lo, hi = self.T0 + 45678, self.T0 + 512345  # inside their buckets at every step below
        for step in (7000, 60000, 300000):
            with self.subTest(step=step):
                self.assertNotEqual(lo % step, 0)
                want = self.expect(step, lo, hi, aggs=self.AGGS)
                got = self.buckets(step=step, agg=",".join(self.AGGS), **{"from": lo, "to": hi})
                self.assertBuckets(got, want)
                # The first and last buckets hold only the readings inside [from, to).
                self.assertLess(got[0]["ts"], lo)
                self.assertLess(got[0]["count"]["a"], self.expect(step)[
                    [b["ts"] for b in self.expect(step)].index(got[0]["ts"])]["count"]["a"])
                self.assertBuckets(self.buckets(step=step, order="desc", agg="count,min",
                                                **{"from": lo, "to": hi}),
                                   self.expect(step, lo, hi, aggs=("count", "min"), desc=True))

    def test_desc(self):
        for step in (1000, 60000):
            with self.subTest(step=step):
                self.assertBuckets(self.buckets(step=step, order="desc", agg=",".join(self.AGGS)),
                                   self.expect(step, aggs=self.AGGS, desc=True))

    def test_pages_by_limit(self):
        # step=1s: one point a bucket, so up to 49 buckets a page the scan bound (50) never
        # ends a page first.
        for order in ("asc", "desc"):
            for lim in (1, 3, 7, 49):
                with self.subTest(order=order, limit=lim):
                    pages = self.pages(step="1s", limit=lim, order=order)
                    want = self.expect(1000, desc=order == "desc")
                    self.assertBuckets([b for p in pages for b in p], want)
                    self.assertTrue(all(len(p) == lim for p in pages[:-1]))
                    self.assertLessEqual(len(pages[-1]), lim)
                    # `next` is null as soon as no bucket is left: no empty last page.
                    self.assertEqual(len(pages), -(-len(want) // lim))
        pages = self.pages(step="20s", limit=2, order="desc")
        self.assertBuckets([b for p in pages for b in p], self.expect(20000, desc=True))
        self.assertTrue(all(len(p) == 2 for p in pages[:-1]))

    def test_pages_by_scan_bound(self):
        # http.max_scan_points = 50: a page ends at the first bucket boundary after 50 points
        # read; a bucket of more than 50 points is still whole, alone on its page.
        for order in ("asc", "desc"):
            for step, ms in (("1s", 1000), ("30s", 30000), ("1m", 60000), ("5m", 300000)):
                with self.subTest(order=order, step=step):
                    pages = self.pages(step=step, order=order, limit=100000)
                    want = self.expect(ms, desc=order == "desc")
                    self.assertBuckets([b for p in pages for b in p], want)
                    self.assertGreater(len(pages), 1)
                    for i, p in enumerate(pages):
                        self.assertTrue(p, "page %d is empty" % i)
                        read = [b["count"]["a"] for b in p]  # a: in every point
                        self.assertLess(sum(read[:-1]), self.SCAN, "page %d: %r" % (i, read))
                        if i + 1 < len(pages):
                            self.assertGreaterEqual(sum(read), self.SCAN, "page %d" % i)
                    if ms == 300000:  # ~219 points a bucket: one bucket a page
                        self.assertTrue(all(len(p) == 1 for p in pages))
        # The bound also holds with the raw route's limit: the smaller of both ends the page.
        pages = self.pages(step="1s", limit=20)
        self.assertTrue(all(len(p) == 20 for p in pages[:-1]))

    def test_empty_and_unknown(self):
        r = self.d.curl("PUT", "/v1/devices/hist-empty", "--data-binary", '{"site":"x"}')
        self.assertIn(r.status, (200, 201), r)
        doc = self.d.get_json("/v1/devices/hist-empty/readings?step=1m")
        self.assertEqual(doc, {"device": "hist-empty", "step": 60000, "buckets": [], "next": None})
        doc = self.d.get_json("/v1/devices/%s/readings?step=1m&from=%d&to=%d"
                              % (self.DEV, self.END, self.END + 10**9))
        self.assertEqual(doc["buckets"], [])
        self.assertIsNone(doc["next"])
        self.assertJsonError(self.d.get("/v1/devices/hist-nope/readings?step=1m"), 404,
                             "hist-nope")
        self.assertJsonError(self.d.get("/v1/devices/%s/readings?step=1m&channels=zz" % self.DEV),
                             400, ["'channels'", "'zz'"])

    def test_bad_params(self):
        base = "/v1/devices/%s/readings?" % self.DEV
        for q, words in [("step=0", ["'step'", "1ms to 366d"]),
                         ("step=0ms", ["'step'", "1ms to 366d"]),
                         ("step=367d", ["'step'", "1ms to 366d"]),
                         ("step=53w", ["'step'", "1ms to 366d"]),
                         ("step=99999999999999999999", ["'step'", "not a duration"]),
                         ("step=-1s", ["'step'", "not a duration"]),
                         ("step=1.5s", ["'step'", "not a duration"]),
                         ("step=1y", ["'step'", "not a duration"]),
                         ("step=abc", ["'step'", "not a duration"]),
                         ("step=", ["'step'", "not a duration"]),
                         ("step=1%20s", ["'step'", "not a duration"]),
                         ("step=" + "1" * 40, ["'step'"]),
                         ("step=1m&agg=avg", ["'agg'", "'avg'"]),
                         ("step=1m&agg=mean,median", ["'agg'", "'median'"]),
                         ("step=1m&agg=", ["'agg'", "'' is no aggregate"]),
                         ("step=1m&agg=,", ["'agg'", "'' is no aggregate"]),
                         ("step=1m&agg=count,,mean", ["'agg'", "'' is no aggregate"]),
                         ("step=1m&agg=mean,", ["'agg'", "'' is no aggregate"]),
                         ("agg=mean", ["'agg'", "'step'"]),
                         ("step=1m&step=2m", ["'step'"]),
                         ("step=1m&order=up", ["'order'"]),
                         ("step=1m&limit=0", ["'limit'"]),
                         ("step=1m&from=5&to=5", ["'from'"])]:
            with self.subTest(q=q):
                self.assertJsonError(self.d.get(base + q), 400, words)


class HistoryWide(vt.DaemonTestCase):
    """Pages of buckets ended by the 8 MiB cap (History's are ended by limit or the scan
    bound): a device of 2,000 channels, whose buckets are about 90 KB of JSON each."""

    DEV = "hist-wide"
    T0 = 1732780800000
    NCH, NPTS = 2000, 200
    PAGE_BYTES = 8 << 20

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for i in range(0, cls.NPTS, 10):
            r = cls.d.post_json([{"device": cls.DEV, "ts": cls.T0 + j * 1000,
                                  "values": {"c%04d" % k: float((j * 7 + k) % 13) for k in
                                             range(cls.NCH)}} for j in range(i, i + 10)])
            assert r.status == 200, r

    def test_byte_cap_pages(self):
        # Every bucket once, whole and in order, across pages each at most 8 MiB, asc and desc,
        # with `from` and `to` cutting nothing (step=1s: one point a bucket).
        for order in ("asc", "desc"):
            for agg in ("count,mean,min,max", "count,mean,min,max,last"):
                with self.subTest(order=order, agg=agg):
                    path = "/v1/devices/%s/readings?%s" % (self.DEV, urllib.parse.urlencode(
                        {"step": "1s", "order": order, "agg": agg, "limit": 100000}))
                    got, sizes = [], []
                    while path:
                        st, _, body = self.d.get(path)
                        self.assertEqual(st, 200, body[:200])
                        sizes.append(len(body))
                        doc = json.loads(body)
                        self.assertTrue(doc["buckets"], "an empty page")
                        got += doc["buckets"]
                        path = doc["next"]
                    self.assertGreater(len(sizes), 1, "the cap ended no page")
                    self.assertLessEqual(max(sizes), self.PAGE_BYTES)
                    want = [self.T0 + j * 1000 for j in range(self.NPTS)]
                    self.assertEqual([b["ts"] for b in got], want[::-1] if order == "desc" else want)
                    for b in got:
                        j = (b["ts"] - self.T0) // 1000
                        self.assertEqual(len(b["count"]), self.NCH)
                        self.assertEqual(b["max"]["c0005"], float((j * 7 + 5) % 13))


if __name__ == "__main__":
    vt.main()

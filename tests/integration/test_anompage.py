#!/usr/bin/python3
"""vigild integration: anomaly pages stay bounded when many events share one start time
(docs/http-api.md "Pages, parameters and methods", docs/reliability.md "Anomaly pages (session
42)").

Session 42's scale pass found GET /v1/anomalies never splitting the events of one start time
between pages: 10,500 devices faulting at one (Telegraf-aligned) timestamp made one 3.1 MB page,
and past 10,000 events at one start the store's read was cut, its next link (to= that start)
skipping the rest. Here the events are written with sqlite3 while vigild runs (three devices,
one of whose names sorts between the others' bytewise, "ap-10" < "ap-2"): 10,600 ended events at
one start, older ones (three active) at another, and 1,000 of about 10 KB each at a third (10 MB
of JSON at limit 1000). Following `next` from the first page, fleet-wide and for one device,
with from/to and active=true: every page holds at most `limit` events and 8 MiB of JSON, and
the pages hold every event of the range exactly once, newest start first, then device name,
then id. A malformed before= is a 400 naming it; an old next link (to=) still reads the events
before its start.

Python 3 standard library.
"""

import json
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import vigiltest as vt  # noqa: E402

T0 = 1_700_000_000_000
S = T0 + 100_000_000  # the plant-wide start: 10,600 events
S_OLD = S - 5_000  # 8 ended and 3 active events
S_BIG = S - 10_000  # 1,000 events of about 10 KB of JSON each
PAD = 10_000
# (device, first id, last id, start, end or None, padded)
GROUPS = [("ap-1", 1, 6000, S, S + 1000, False),
          ("ap-10", 1, 4000, S, S + 1000, False),
          ("ap-2", 1, 600, S, S + 1000, False),
          ("ap-1", 6001, 6005, S_OLD, S_OLD + 1000, False),
          ("ap-2", 601, 603, S_OLD, S_OLD + 1000, False),
          ("ap-10", 4001, 4003, S_OLD, None, False),
          ("ap-10", 4004, 5003, S_BIG, S_BIG + 1000, True)]
PAGE_BYTES = 8 << 20


def key(e):
    """An event's place in the listing's order (sorted descending)."""
    return (e["start_ts"], e["device"].encode(), e["id"])


class AnomalyPages(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.d = vt.Vigild(config=tp.make_config(tp.config_text(0)))
        cls.d.start()
        try:
            for dev in ("ap-1", "ap-10", "ap-2"):
                tp.post_readings(cls.d, dev, [[0.0, 0.0, 0.0]] * 3,
                                 [T0 + 1000 * k for k in range(3)], tp.CH3)
            # Written while vigild runs: ap-10's three active events are open rows behind one
            # another, which a restore ends ("restart": session 60 for a device with a
            # detector, ids60 without one, session 61 for a device known by its events alone),
            # so they are the store's rows, active, as rows whose end puts were lost are.
            names = "SELECT count(*) FROM devices WHERE name IN ('ap-1', 'ap-10', 'ap-2');"
            tp.wait_for("the devices stored", lambda: subprocess.run(
                ["sqlite3", "-cmd", ".timeout 30000", cls.d.db_path, names], check=True,
                capture_output=True, text=True).stdout.strip() == "3", 30)
            sql = ["BEGIN;"]
            for dev, a, b, start, end, padded in GROUPS:
                note = "'%s'" % ("x" * PAD) if padded else "NULL"
                sql.append(
                    "WITH RECURSIVE c(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM c WHERE i < %d)"
                    " INSERT INTO events(device_id, id, start_ts, end_ts, info) SELECT d.id, i, %d,"
                    " %s, json_object('device', '%s', 'id', i, 'start_ts', %d, 'end_ts', %s,"
                    " 'active', json('%s'), 'note', %s) FROM c, devices d WHERE d.name = '%s';"
                    % (a, b, start, "NULL" if end is None else end, dev, start,
                       "NULL" if end is None else end, "true" if end is None else "false", note,
                       dev))
            sql.append("COMMIT;")
            subprocess.run(["sqlite3", "-cmd", ".timeout 30000", cls.d.db_path, "\n".join(sql)],
                           check=True)
        except BaseException:
            cls.d.stop()
            cls.d.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.cleanup()

    def expected(self, dev=None, frm=None, to=None, active=False):
        """(device, id) of the events the range holds, in the listing's order."""
        out = []
        for d, a, b, start, end, _ in GROUPS:
            if dev not in (None, d) or (to is not None and start >= to):
                continue
            if (active and end is not None) or (frm is not None and end is not None
                                                 and end < frm):
                continue
            out += [{"device": d, "id": i, "start_ts": start} for i in range(a, b + 1)]
        out.sort(key=key, reverse=True)
        return [(e["device"], e["id"]) for e in out]

    def walk(self, url, limit):
        """Follows next from url; checks each page's bounds; returns (device, id) of every
        event listed, in order, and the number of pages."""
        got, pages, prev = [], 0, None
        for _ in range(200):  # 11,600 events at limit 100 would be 117 pages
            st, _, body = tp.req(self.d, "GET", url)
            self.assertEqual(st, 200, (url, body[:300]))
            self.assertLessEqual(len(body), PAGE_BYTES, url)
            page = json.loads(body)
            evs = page["anomalies"]
            self.assertLessEqual(len(evs), limit, url)
            keys = [key(e) for e in evs]
            self.assertEqual(keys, sorted(keys, reverse=True), url)
            if prev is not None and evs:
                self.assertLess(keys[0], prev, url)  # the pages go on, never back
            if evs:
                prev = keys[-1]
            got += [(e["device"], e["id"]) for e in evs]
            pages += 1
            url = page["next"]
            if url is None:
                return got, pages
        self.fail("more than 200 pages from %s" % url)

    def assertEveryOnce(self, got, want):
        self.assertEqual(len(got), len(set(got)), "an event listed twice")
        self.assertEqual(len(got), len(want))
        self.assertEqual(got, want)

    def test_fleet_pages(self):
        got, pages = self.walk("/v1/anomalies?limit=1000", 1000)
        self.assertEveryOnce(got, self.expected())
        self.assertEqual(pages, 12)  # 11,611 events: none ends before limit

    def test_byte_bound(self):
        """The 1,000 padded events (10 MB of JSON) at limit 1000: two pages of at most 8 MiB."""
        got, pages = self.walk("/v1/anomalies?limit=1000&to=%d" % S_OLD, 1000)
        self.assertEveryOnce(got, self.expected(to=S_OLD))
        self.assertEqual(pages, 2)

    def test_device_pages(self):
        for dev in ("ap-1", "ap-10", "ap-2"):
            got, _ = self.walk("/v1/devices/%s/anomalies?limit=700" % dev, 700)
            self.assertEveryOnce(got, self.expected(dev=dev))

    def test_range_and_active(self):
        frm, to = S_OLD, S + 1
        got, _ = self.walk("/v1/anomalies?limit=333&from=%d&to=%d" % (frm, to), 333)
        self.assertEveryOnce(got, self.expected(frm=frm, to=to))
        got, _ = self.walk("/v1/anomalies?limit=1&active=true", 1)
        self.assertEveryOnce(got, self.expected(active=True))
        got, _ = self.walk("/v1/devices/ap-10/anomalies?limit=2&active=true&to=%d" % S, 2)
        self.assertEveryOnce(got, self.expected(dev="ap-10", to=S, active=True))

    def test_next_names_the_last_event(self):
        page = self.d.get_json("/v1/anomalies?limit=2")
        last = page["anomalies"][-1]
        self.assertEqual((last["device"], last["id"]), ("ap-2", 599))
        self.assertEqual(page["next"], "/v1/anomalies?limit=2&before=%d,ap-2,599" % S)

    def test_old_to_link(self):
        """A next link of the old form (to= the oldest start on a page) reads the events that
        started before it, as it did."""
        got, _ = self.walk("/v1/anomalies?limit=1000&to=%d" % S, 1000)
        self.assertEveryOnce(got, self.expected(to=S))

    def test_bad_before(self):
        for bad in ("abc", "%d" % S, "%d,ap-1" % S, "%d,,5" % S, "x,ap-1,5" % (), "%d,ap-1,0" % S,
                    "%d,ap-1,5x" % S, "%d,ap-1,-5" % S, "%d,ap-1,%%205" % S, "%%2B%d,ap-1,5" % S,
                    "99999999999999999999,ap-1,5", "%d,ap-1,99999999999999999999" % S):
            st, _, body = tp.req(self.d, "GET", "/v1/anomalies?before=" + bad)
            self.assertEqual(st, 400, bad)
            msg = json.loads(body)["error"]
            self.assertIn("parameter 'before'", msg)
            self.assertIn("<start_ts>,<device>,<id>", msg)
        # A device name holding commas is read between the first comma and the last: "ap-1,x"
        # sorts between "ap-1" and "ap-10", so ap-1's events at S come next, whatever their id.
        st, _, body = tp.req(self.d, "GET", "/v1/anomalies?limit=1&before=%d,ap-1%%2Cx,7" % S)
        self.assertEqual(st, 200, body[:300])
        self.assertEqual([(e["device"], e["id"]) for e in json.loads(body)["anomalies"]],
                         [("ap-1", 6000)])


if __name__ == "__main__":
    vt.main()

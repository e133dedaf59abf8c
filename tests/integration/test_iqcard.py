#!/usr/bin/python3
"""vigild integration (session 33, iqcard): InfluxQL's cardinality statements other than SHOW
SERIES' (SHOW MEASUREMENT, TAG KEY, FIELD KEY and TAG VALUES [EXACT] CARDINALITY), each sent to
vigild and to a real influxd 1.6.7 (the InfluxdPair fixture, Debian's influxd on loopback)
holding the same points and compared byte for byte: the estimate and the count forms, ON, FROM
(names, db.rp.name, regexes), WHERE, LIMIT, OFFSET and influxd's parse errors; then where vigild
answers otherwise, as README says (the reserved measurements left out of SHOW TAG VALUES
CARDINALITY without FROM, FROM a name that is no device, a field in SHOW TAG KEYS' WHERE), and
that each count is what the list statement lists; that the counts stop at the answer's 8 MiB
bound when a statement is repeated to fill q (review); and that a count goes past the 8 MiB its
list would take (wt/card: counted as the list walks, no list built)."""

import http.client
import json
import os
import sys
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import InfluxdPair  # noqa: E402
from test_iqseries import DEVICES, POINTS, T, lp_tag  # noqa: E402  (constants only)

# What influxd holds of vigild's reserved measurements: a series per device in each, with the
# fields vigild's SHOW FIELD KEYS gives them (vigil_predictions: the devices' channels, x).
RESERVED_FIELDS = {
    "vigil_scores": "score=1,state=0",
    "vigil_anomalies": 'channels="x",continues=0,end=1,ended_by="a",fault=0,id=1,note="n",'
                       'opened_by="a",peak_score=1,text="t"',
    "vigil_predictions": "x=1",
}
RESERVED = "\n".join("%s,device=%s %s %d" % (m, lp_tag(d), f, T)
                     for m, f in sorted(RESERVED_FIELDS.items()) for d in DEVICES)

SAME = [
    # SHOW MEASUREMENT CARDINALITY: the estimate alone (ON aside), else one count
    "SHOW MEASUREMENT CARDINALITY",
    "show measurement cardinality",
    "SHOW MEASUREMENT CARDINALITY ON g",
    "SHOW MEASUREMENT EXACT CARDINALITY",
    "SHOW MEASUREMENT EXACT CARDINALITY ON g",
    "SHOW MEASUREMENT CARDINALITY LIMIT 1",
    "SHOW MEASUREMENT CARDINALITY LIMIT 0 OFFSET 0",
    "SHOW MEASUREMENT CARDINALITY OFFSET 1",
    "SHOW MEASUREMENT CARDINALITY WHERE device = 'a1'",
    "SHOW MEASUREMENT CARDINALITY WHERE device != 'a1'",
    "SHOW MEASUREMENT CARDINALITY WHERE device !~ /a/ AND device != 'b1'",
    "SHOW MEASUREMENT CARDINALITY WHERE (device = 'a1' OR device =~ /2/) AND device != 'a2'",
    "SHOW MEASUREMENT EXACT CARDINALITY WHERE device = 'zz'",
    "SHOW MEASUREMENT CARDINALITY WHERE zone = ''",
    "SHOW MEASUREMENT CARDINALITY WHERE zone = 'x'",
    "SHOW MEASUREMENT CARDINALITY WHERE device = 5",
    "SHOW MEASUREMENT CARDINALITY WHERE device = 5 OR device = 'a1'",
    "SHOW MEASUREMENT CARDINALITY WHERE device != 5",
    "SHOW MEASUREMENT EXACT CARDINALITY FROM a1",
    "SHOW MEASUREMENT CARDINALITY FROM \"a b,c=d\", \"q<&>\"",
    "SHOW MEASUREMENT CARDINALITY FROM g.autogen.a1",
    "SHOW MEASUREMENT CARDINALITY FROM /^a/",
    "SHOW MEASUREMENT CARDINALITY FROM zz",
    "SHOW MEASUREMENT CARDINALITY FROM /a/, b1, zz WHERE device != 'a2'",
    "SHOW MEASUREMENT CARDINALITY FROM vigil_scores WHERE device = 'a1'",
    "SHOW MEASUREMENT CARDINALITY ON g FROM /^vigil_/ LIMIT 2",
    "SHOW MEASUREMENT CARDINALITY; SHOW MEASUREMENT EXACT CARDINALITY WHERE device = 'q<&>'",
    # SHOW TAG KEY CARDINALITY: a count per measurement, with or without EXACT
    "SHOW TAG KEY CARDINALITY",
    "SHOW TAG KEY EXACT CARDINALITY",
    "SHOW TAG KEY CARDINALITY ON g",
    "SHOW TAG KEY CARDINALITY WHERE device = 'a1'",
    "SHOW TAG KEY CARDINALITY WHERE device =~ /^a/ OR device = 'b1' LIMIT 1",
    "SHOW TAG KEY CARDINALITY WHERE zone = ''",
    "SHOW TAG KEY CARDINALITY WHERE zone != 'x' LIMIT 1",
    "SHOW TAG KEY CARDINALITY WHERE zone = 'x'",
    "SHOW TAG KEY CARDINALITY WHERE device = 5",
    "SHOW TAG KEY CARDINALITY WHERE device != 5",
    "SHOW TAG KEY CARDINALITY FROM vigil_scores",
    "SHOW TAG KEY CARDINALITY ON g FROM a1",
    "SHOW TAG KEY CARDINALITY FROM a1 WHERE device = 'a2'",
    "SHOW TAG KEY CARDINALITY OFFSET 1",
    "SHOW TAG KEY EXACT CARDINALITY LIMIT 3 OFFSET 0",
    # SHOW FIELD KEY CARDINALITY: a count per measurement (the reserved ones' own fields)
    "SHOW FIELD KEY CARDINALITY",
    "SHOW FIELD KEY EXACT CARDINALITY",
    "SHOW FIELD KEY CARDINALITY FROM a1",
    "SHOW FIELD KEY CARDINALITY FROM vigil_anomalies",
    "SHOW FIELD KEY EXACT CARDINALITY ON g FROM vigil_scores LIMIT 3 OFFSET 0",
    "SHOW FIELD KEY CARDINALITY FROM zz",
    "SHOW FIELD KEY CARDINALITY WHERE device = 'a1'",
    "SHOW FIELD KEY CARDINALITY WHERE device = 'zz'",
    "SHOW FIELD KEY CARDINALITY WHERE device = 5",
    "SHOW FIELD KEY CARDINALITY FROM vigil_scores WHERE device = 'a1'",
    "SHOW FIELD KEY CARDINALITY FROM a1 WHERE device = 'a2'",
    "SHOW FIELD KEY CARDINALITY FROM a1 WHERE device =~ /1/",
    "SHOW FIELD KEY CARDINALITY OFFSET 1",
    # SHOW TAG VALUES CARDINALITY FROM a name (without FROM: below)
    "SHOW TAG VALUES CARDINALITY FROM vigil_scores WITH KEY = device",
    "SHOW TAG VALUES EXACT CARDINALITY FROM vigil_scores WITH KEY = device LIMIT 2",
    "SHOW TAG VALUES CARDINALITY FROM vigil_anomalies WITH KEY =~ /dev/ WHERE device =~ /^a/",
    "SHOW TAG VALUES CARDINALITY FROM vigil_predictions WITH KEY IN (zone, device)",
    "SHOW TAG VALUES CARDINALITY FROM vigil_scores WITH KEY = device WHERE device = 5",
    "SHOW TAG VALUES CARDINALITY FROM vigil_scores WITH KEY = device OFFSET 1",
    "SHOW TAG VALUES CARDINALITY WITH KEY = zone",
    "SHOW TAG VALUES CARDINALITY WITH KEY = device OFFSET 1",
    "SHOW TAG VALUES CARDINALITY WITH KEY = device WHERE device = 5",
    # influxd's parse errors
    "SHOW MEASUREMENT",
    "SHOW MEASUREMENT x",
    "SHOW MEASUREMENT EXACT x",
    "SHOW MEASUREMENT CARDINALITY x",
    "SHOW MEASUREMENT CARDINALITY FROM",
    "SHOW MEASUREMENT CARDINALITY FROM a1,",
    "SHOW MEASUREMENT CARDINALITY FROM a1 ON g",
    "SHOW MEASUREMENT CARDINALITY WITH MEASUREMENT =~ /a/",
    "SHOW MEASUREMENT CARDINALITY LIMIT x",
    "SHOW MEASUREMENT CARDINALITY WHERE",
    "SHOW MEASUREMENT CARDINALITY WHERE device = $x",
    "SHOW TAG KEY x",
    "SHOW TAG KEY EXACT",
    "SHOW TAG KEY CARDINALITY SLIMIT 1",
    "SHOW FIELD KEY CARDINALITY x",
    "SHOW FIELD KEY CARDINALITY WHERE device = 'a1' OR",
    "SHOW TAG VALUES EXACT x",
    "SHOW TAG VALUES CARDINALITY",
    "SHOW TAG VALUES CARDINALITY WITH KEY",
    "SHOW TAG VALUES CARDINALITY WITH KEY = device LIMIT -1",
    "SHOW TAG VALUES CARDINALITY WITH KEY = 'device'",
    "SHOW TAG VALUES CARDINALITY WITH KEY =~ device",
    "SHOW TAG VALUES CARDINALITY WITH KEY != device",
    "SHOW TAG VALUES CARDINALITY WITH KEY = x",
    # the list statement's too (influxd names IN, = and =~ only, though it takes != and !~)
    "SHOW TAG VALUES WITH KEY x",
]


class Cardinality(InfluxdPair):
    """The cardinality statements compared with influxd, which holds the reserved measurements
    as vigild answers them (a series per device, their fields)."""

    POINTS = POINTS
    INFLUXD_ONLY = RESERVED

    def test_cardinality_as_influxd(self):
        self.assert_same(SAME)

    def test_cardinality_post(self):
        self.assert_same(["SHOW TAG KEY CARDINALITY WHERE device =~ /^a/",
                          "SHOW MEASUREMENT EXACT CARDINALITY FROM /1$/"], method="POST")

    def test_tag_values_without_from_leave_reserved_out(self):
        # As SHOW TAG VALUES without FROM lists each device's own series alone (README), its
        # count leaves out the reserved three, which influxd counts (a value per device).
        for q in ("SHOW TAG VALUES CARDINALITY WITH KEY = device",
                  "SHOW TAG VALUES EXACT CARDINALITY WITH KEY =~ /.*/ LIMIT 1",
                  "SHOW TAG VALUES CARDINALITY WITH KEY IN (device, zone) WHERE device = 'a1'"):
            status, body = self.query(self.influxd.port, q)
            want = json.loads(body)["results"][0]["series"]
            self.assertIn("vigil_scores", [s["name"] for s in want], q)
            got = self.vigild(q)["results"][0]["series"]
            self.assertEqual(got, [s for s in want if not s["name"].startswith("vigil_")], q)

    def test_name_no_device_as_its_list(self):
        # FROM a name that is no device (Telegraf's "pump"): the device tag, and every device as
        # its value, as SHOW TAG KEYS and SHOW TAG VALUES FROM it list them (influxd: nothing
        # was written under that name here, so no count).
        for q, n in (("SHOW TAG KEY CARDINALITY FROM pump", 1),
                     ("SHOW TAG VALUES CARDINALITY FROM pump WITH KEY = device", len(DEVICES))):
            status, body = self.query(self.influxd.port, q)
            self.assertEqual(json.loads(body), {"results": [{"statement_id": 0}]}, q)
            self.assertEqual(self.vigild(q)["results"][0]["series"],
                             [{"name": "pump", "columns": ["count"], "values": [[n]]}], q)

    def test_counts_are_the_lists(self):
        # Each count is the number of rows the list statement answers, measurement by
        # measurement (vigild's own answers, influxd aside).
        for card, listed in (
                ("SHOW TAG KEY CARDINALITY WHERE device =~ /^a/", "SHOW TAG KEYS WHERE device =~ /^a/"),
                ("SHOW FIELD KEY CARDINALITY", "SHOW FIELD KEYS"),
                ("SHOW TAG VALUES CARDINALITY FROM vigil_scores WITH KEY = device WHERE "
                 "device != 'a1'",
                 "SHOW TAG VALUES FROM vigil_scores WITH KEY = device WHERE device != 'a1'"),
                ("SHOW TAG VALUES CARDINALITY WITH KEY = device",
                 "SHOW TAG VALUES WITH KEY = device")):
            got = {s["name"]: s["values"][0][0]
                   for s in self.vigild(card)["results"][0]["series"]}
            want = {s["name"]: len(s["values"])
                    for s in self.vigild(listed)["results"][0]["series"]}
            self.assertEqual(got, want, card)
        n = self.vigild("SHOW MEASUREMENT EXACT CARDINALITY WHERE device != 'a1'")
        keys = self.vigild("SHOW TAG KEYS WHERE device != 'a1'")["results"][0]["series"]
        self.assertEqual(n["results"][0]["series"][0]["values"], [[len(keys)]])

    def test_field_in_where_refused(self):
        # influxd reads a condition on a field in SHOW TAG KEYS' WHERE as met by the
        # measurements having that field, and as meeting no series in the cardinality
        # statements; vigild refuses it, naming the field (a statement error).
        for q, what, influxd_names in (
                ("SHOW TAG KEYS WHERE x = '1'", "SHOW TAG KEYS", list(DEVICES) + [
                    "vigil_predictions"]),
                ("SHOW TAG KEYS WHERE score =~ /1/ AND device = 'a1'", "SHOW TAG KEYS",
                 ["vigil_scores"]),
                ("SHOW TAG KEY CARDINALITY WHERE x = '1'", "SHOW TAG KEY CARDINALITY", []),
                ("SHOW FIELD KEY CARDINALITY WHERE x != '1' OR device = 'a1'",
                 "SHOW FIELD KEY CARDINALITY", ["a1", "vigil_anomalies", "vigil_predictions",
                                                "vigil_scores"]),
                ("SHOW MEASUREMENT CARDINALITY WHERE state = '0'",
                 "SHOW MEASUREMENT CARDINALITY", None)):
            status, body = self.query(self.influxd.port, q)
            self.assertEqual(status, 200, (q, body))
            res = json.loads(body)["results"][0]
            if influxd_names is not None:
                self.assertEqual([s["name"] for s in res.get("series", [])], influxd_names, q)
            field = q.split("WHERE ")[1].split(" ")[0]
            self.assertEqual(self.vigild(q)["results"][0]["error"],
                             "vigild does not support a field in %s's WHERE: %s" % (what, field),
                             q)
        # A tag nobody has is still a tag: its value '' in every series.
        self.assert_same(["SHOW TAG KEYS WHERE zone = ''", "SHOW TAG KEYS WHERE zone = 'x'"])

    def test_time_refused(self):
        # influxd refuses time in these WHEREs, a statement error in a 200; vigild answers its
        # words since influx5 (it said "vigild does not support WHERE in SHOW statements ...")
        for q in ("SHOW TAG KEY CARDINALITY WHERE time > 0",
                  "SHOW MEASUREMENT EXACT CARDINALITY WHERE time > 0"):
            status, body = self.query(self.influxd.port, q)
            self.assertIn("doesn't support time in WHERE clause",
                          json.loads(body)["results"][0]["error"], q)
            self.assertEqual(self.query(self.d.http_port, q), (status, body), q)


class CardinalityBounded(vt.DaemonTestCase):
    """review: each cardinality statement's counts go into the query's answer, which stops at
    8 MiB of JSON (its statements together) as the lists' does: a statement repeated to fill q
    gets the bound's error, then "not executed". Before, the counts were written past the
    bound (some 14 MB here; a 64 KB q of SHOW TAG KEY CARDINALITY over 20,000 devices some
    2.5 GB)."""

    def post(self, q):
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=120)
        c.request("POST", "/query", urllib.parse.urlencode({"q": q, "chunked": "true"}),
                  {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        body = r.read()
        c.close()
        self.assertEqual(r.status, 200, body[:200])
        # 8 MiB, then a "not executed" document (some 60 bytes) for each statement left.
        self.assertLessEqual(len(body), (8 << 20) + 64 * 1000)
        # A statement's counts come a document each ("partial" on all but the last, as from
        # influxd; influx8): one result per statement, its series together.
        res = []
        for line in body.splitlines():
            doc = json.loads(line)["results"][0] if line else None
            if doc is None:
                continue
            if res and res[-1].pop("partial", False):
                self.assertEqual(doc["statement_id"], res[-1]["statement_id"])
                res[-1]["series"] += doc["series"]
                res[-1].update({k: v for k, v in doc.items() if k != "series"})
            else:
                res.append(doc)
        return res

    def test_counts_bounded(self):
        ids = ["d%02d-" % i + "x" * 116 for i in range(80)]
        r = self.d.write_lp("\n".join("%s v=1 %d" % (d, T) for d in ids), precision="ms")
        self.assertEqual(r.status, 204, r)
        # 80 devices of 120 characters: some 14 KB of counts a statement, 1,000 statements.
        for one, n in (("SHOW TAG KEY CARDINALITY", 83),
                       ("SHOW FIELD KEY EXACT CARDINALITY", 83),
                       ("SHOW TAG VALUES CARDINALITY WITH KEY = device", 80)):
            res = self.post("; ".join([one] * 1000))
            ok = [x for x in res if "series" in x]
            self.assertGreater(len(ok), 100, one)
            self.assertEqual(len(ok[0]["series"]), n, one)
            self.assertEqual(ok[0]["series"][0]["values"], [[1]], one)
            self.assertEqual(res[len(ok)]["error"], "vigild answers at most 8 MiB of JSON for "
                             "one query, its statements together", one)
            self.assertEqual(len(res), 1000, one)
            self.assertEqual(res[-1]["error"], "not executed", one)


class QueryOne(vt.DaemonTestCase):
    """A vigild test that reads a one-statement /query's result."""

    def query(self, q):
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=120)
        c.request("GET", "/query?" + urllib.parse.urlencode({"q": q}))
        r = c.getresponse()
        body = r.read()
        c.close()
        self.assertEqual(r.status, 200, body[:200])
        return json.loads(body)["results"][0]


class CardinalityPastListBound(QueryOne):
    """wt/card: a count walks as its list statement walks but builds no list, so it counts more
    than the list's 8 MiB of JSON could hold (before, the list's own bound was the count's:
    its error, "add LIMIT", which a count cannot). 20,000 devices of 190-character ids (the
    line protocol's series key stops at 200 bytes): 8.45 MiB of SHOW TAG VALUES' series,
    4.5 MiB of their counts."""

    N = 20000

    @classmethod
    def tearDownClass(cls):
        # The stop saves 20,000 detectors: 4-16 s in Release, 56 s seen under ASan and load.
        # Its time is not what this class tests (the stop's saves: it_stop, it_scale).
        try:
            cls.d.stop(timeout=180)  # within ctest's 300 s for the file
        finally:
            cls.d.cleanup()

    def test_counts_past_the_list_bound(self):
        ids = ["d%05d-" % i + "x" * 183 for i in range(self.N)]
        for at in range(0, self.N, 2000):  # bodies of some 400 KB
            r = self.d.write_lp("\n".join("%s v=1 %d" % (d, T) for d in ids[at:at + 2000]),
                                precision="ms")
            self.assertEqual(r.status, 204, r)
        # The list is past its bound...
        self.assertEqual(self.query("SHOW TAG VALUES WITH KEY = device")["error"],
                         "vigild answers at most 8 MiB of JSON for one query, its statements "
                         "together: add LIMIT")
        # ... its count is not: a count of 1 for every device.
        series = self.query("SHOW TAG VALUES CARDINALITY WITH KEY = device")["series"]
        self.assertEqual([s["name"] for s in series], ids)
        self.assertEqual({json.dumps(s["values"]) for s in series}, {"[[1]]"})
        self.assertEqual(self.query("SHOW MEASUREMENT EXACT CARDINALITY")["series"][0]["values"],
                         [[self.N + 3]])


class CardinalityUncompiledFrom(QueryOne):
    """review of wt/card: SHOW MEASUREMENT CARDINALITY FROM /^*/ (read as a regex, refused by
    glibc's regcomp) counted each measurement through the regexes that had compiled, so the
    one that had not was read as a regex_t and vigild died of SIGSEGV. It answers the regex's
    error, or no row past OFFSET, as before wt/card; the daemon stops cleanly afterwards."""

    def test_uncompiled_from_regex(self):
        r = self.d.write_lp("a1 v=1 %d\nb1 v=1 %d" % (T, T), precision="ms")
        self.assertEqual(r.status, 204, r)
        for q in ("SHOW MEASUREMENT CARDINALITY FROM /^*/",
                  "SHOW MEASUREMENT EXACT CARDINALITY FROM a1, /^*/",
                  "SHOW MEASUREMENT CARDINALITY FROM /^a/, /^*/ WHERE device != 'b1'"):
            self.assertEqual(self.query(q),
                             {"statement_id": 0,
                              "error": "vigild cannot read the regular expression ^*"}, q)
        self.assertEqual(self.query("SHOW MEASUREMENT CARDINALITY FROM /^*/ OFFSET 1"),
                         {"statement_id": 0})
        self.assertEqual(self.query("SHOW MEASUREMENT CARDINALITY FROM /^a/")["series"],
                         [{"columns": ["count"], "values": [[1]]}])


if __name__ == "__main__":
    vt.main()

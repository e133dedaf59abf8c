#!/usr/bin/python3
"""vigild integration (session 33, showseries): InfluxQL SHOW SERIES, each statement sent to
vigild and to a real influxd 1.6.7 (the InfluxdPair fixture, Debian's influxd on loopback)
holding the same points and compared byte for byte: the series keys and their escaping, FROM
(names, db.rp.name, regexes, lists), WHERE on the device tag and on other tags (AND, OR,
parentheses), LIMIT and OFFSET, influxd's parse errors; then where vigild answers otherwise
(WHERE on time or a field: vigild's statement error; the reserved measurements left out
without FROM), as README says."""

import http.client
import json
import os
import sys
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import InfluxdPair  # noqa: E402

T = 1732780800000  # ms: 2024-11-28T08:00:00Z
# Each device its own measurement with its device tag, as vigild reads it. "a b,c=d" needs
# influxd's escapes in its series key (measurement: ',' and ' '; tag value: ',', '=' and ' ')
# and sorts before "a+" and "a1" by measurement, after them by escaped key; "q<&>" needs Go's
# JSON escapes.
DEVICES = ("a b,c=d", "a+", "a1", "a2", "b1", "q<&>")


def lp_measurement(m):
    return m.replace(",", "\\,").replace(" ", "\\ ")


def lp_tag(v):
    return v.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


POINTS = "\n".join("%s,device=%s x=%d %d" % (lp_measurement(d), lp_tag(d), i, T + i * 1000)
                   for i, d in enumerate(DEVICES))
# What influxd holds of vigild's reserved measurements: a series per device in each.
RESERVED = "\n".join("%s,device=%s score=1 %d" % (m, lp_tag(d), T) for m in (
    "vigil_anomalies", "vigil_predictions", "vigil_scores") for d in DEVICES)

WITHOUT_FROM = [
    "SHOW SERIES",
    "show series",
    "SHOW SERIES ON g",
    "SHOW SERIES LIMIT 2",
    "SHOW SERIES LIMIT 2 OFFSET 1",
    "SHOW SERIES OFFSET 4",
    "SHOW SERIES OFFSET 6",
    "SHOW SERIES LIMIT 0",
    "SHOW SERIES LIMIT 1 OFFSET 99999999999999999999",
    "SHOW SERIES WHERE device = 'a1'",
    "SHOW SERIES WHERE \"device\" = 'a b,c=d'",
    "SHOW SERIES WHERE device != 'a1'",
    "SHOW SERIES WHERE device =~ /^a/",
    "SHOW SERIES WHERE device !~ /1$/",
    "SHOW SERIES WHERE device = 'a1' OR device = 'b1'",
    "SHOW SERIES WHERE (device = 'a1' OR device =~ /2/) AND device != 'a2'",
    "SHOW SERIES WHERE device = 'zz'",
    "SHOW SERIES WHERE zone = ''",
    "SHOW SERIES WHERE zone != 'x'",
    "SHOW SERIES WHERE zone = 'x'",
    "SHOW SERIES WHERE zone = 'x' OR device = 'b1'",
    "SHOW SERIES WHERE device = 5",
    "SHOW SERIES WHERE device = 'a1' OR device = 'b1' LIMIT 1 OFFSET 1",
    "SHOW SERIES ORDER BY time",
    "SHOW SERIES WHERE device != 'b1' ORDER BY time DESC LIMIT 2 OFFSET 1",
    "SHOW SERIES ORDER BY time ASC, x",
    "SHOW SERIES; SHOW SERIES WHERE device = 'q<&>'",
    # x is every device's field: influxd's index leaves a condition on it out (met)
    "SHOW SERIES WHERE x = '1'",
    "SHOW SERIES WHERE x !~ /./",
    "SHOW SERIES WHERE x = '1' AND device = 'a1'",
    "SHOW SERIES WHERE x = '1' AND zone = 'z'",
    "SHOW SERIES WHERE x = 1",
    # influxd's parse errors
    "SHOW SERIES FROM",
    "SHOW SERIES WHERE",
    "SHOW SERIES FROM a1 WHERE",
    "SHOW SERIES LIMIT -1",
    "SHOW SERIES LIMIT x",
    "SHOW SERIES x",
    "SHOW SERIES SLIMIT 1",
    "SHOW SERIES OFFSET 1 LIMIT 1",
    "SHOW SERIES ORDER BY x",
    "SHOW SERIES ORDER BY",
    "SHOW SERIES ORDER BY time,",
    "SHOW SERIES LIMIT 1 ORDER BY time",
    "SHOW SERIES LIMIT 1 LIMIT 2",
    "SHOW SERIES WHERE device = $x",
    "SHOW SERIES WHERE device =~ /(/",
    "SHOW SERIES FROM a1,",
    "SHOW SERIES WHERE device = 'a1' OR",
    # the cardinality statements: an estimate without FROM, WHERE, LIMIT or OFFSET, else a count
    # per measurement (LIMIT ignored, OFFSET skipping each measurement's one count)
    "SHOW SERIES CARDINALITY",
    "SHOW SERIES EXACT CARDINALITY",
    "SHOW SERIES EXACT CARDINALITY ON g",
    "SHOW SERIES CARDINALITY WHERE device = 'a1' OR device =~ /^b/",
    "SHOW SERIES CARDINALITY LIMIT 1",
    "SHOW SERIES CARDINALITY LIMIT 0 OFFSET 0",
    "SHOW SERIES EXACT CARDINALITY OFFSET 1",
    "SHOW SERIES CARDINALITY WHERE device = 'zz'",
    "SHOW SERIES CARDINALITY WHERE zone = ''",
    "SHOW SERIES EXACT CARDINALITY WHERE device = 5",
    "SHOW SERIES EXACT CARDINALITY WHERE device = 5 OR device = 'a1'",
    "SHOW SERIES EXACT CARDINALITY WHERE device != 5",
    "SHOW SERIES EXACT",
    "SHOW SERIES EXACT LIMIT 2",
    "SHOW SERIES CARDINALITY x",
    "SHOW SERIES EXACT x",
    "SHOW SERIES CARDINALITY ORDER BY time",
    "SHOW SERIES CARDINALITY FROM a1 ON g",
    "SHOW SERIES EXACT CARDINALITY FROM",
]

WITH_FROM = [
    "SHOW SERIES FROM a1",
    "SHOW SERIES FROM \"a b,c=d\"",
    "SHOW SERIES ON g FROM g.autogen.a1",
    "SHOW SERIES FROM g..a2",
    "SHOW SERIES FROM a1, \"b1\"",
    "SHOW SERIES FROM b1, a1, b1",
    "SHOW SERIES FROM /^a/",
    "SHOW SERIES FROM /^a/, b1 LIMIT 3 OFFSET 1",
    "SHOW SERIES FROM vigil_scores",
    "SHOW SERIES FROM vigil_scores, a2",
    "SHOW SERIES FROM vigil_scores WHERE device = 'a1' OR device =~ /^b/",
    "SHOW SERIES FROM /^vigil_(scores|anomalies)$/ WHERE device != 'a1' LIMIT 5",
    "SHOW SERIES FROM /s/",
    "SHOW SERIES FROM /./ WHERE device =~ /[<]/",
    "SHOW SERIES FROM /^a/ WHERE device = 'b1'",
    "SHOW SERIES FROM a1 WHERE device = 'a1'",
    "SHOW SERIES FROM a1 WHERE device != 'a1'",
    "SHOW SERIES FROM /zzz/",
    # fields: vigil_scores' score, a device's x; x is no field of vigil_scores (a tag: '')
    "SHOW SERIES FROM vigil_scores, a1 WHERE score = 'q' OR device = 'a2'",
    "SHOW SERIES FROM vigil_scores, a1 WHERE x = 'q'",
    "SHOW SERIES FROM vigil_scores, a1 WHERE x = ''",
    "SHOW SERIES FROM a1, b1 WHERE x =~ /q/ AND device != 'b1'",
    "SHOW SERIES CARDINALITY FROM vigil_scores, a1",
    "SHOW SERIES CARDINALITY ON g FROM a1, /^b/",
    "SHOW SERIES EXACT CARDINALITY FROM /s/ WHERE device != 'a1'",
    "SHOW SERIES EXACT CARDINALITY FROM vigil_scores WHERE device =~ /^a/ LIMIT 1",
]


class Series(InfluxdPair):
    """SHOW SERIES without FROM: influxd here holds no reserved measurement, which vigild leaves
    out of this list (README)."""

    POINTS = POINTS

    def test_show_series_as_influxd(self):
        self.assert_same(WITHOUT_FROM)

    def test_show_series_post(self):
        self.assert_same(["SHOW SERIES WHERE device =~ /^a/ LIMIT 3"], method="POST")

    def test_time_and_fields_refused(self):
        # influxd reads a time condition against the points (a different answer and order);
        # vigild refuses it as a statement error naming WHERE, and a field compared with '>'
        # (influxd's statement error "invalid tag comparison operator").
        for q, influxd_err in (("SHOW SERIES WHERE time > 0", None),
                               ("SHOW SERIES WHERE device = 'a1' AND time > 0", None),
                               ("SHOW SERIES WHERE x > 0", "invalid tag comparison operator")):
            status, body = self.query(self.influxd.port, q)
            self.assertEqual(status, 200, (q, body))
            self.assertEqual(json.loads(body)["results"][0].get("error"), influxd_err, q)
            err = self.vigild(q)["results"][0]["error"]
            self.assertTrue(err.startswith("vigild does not support WHERE in SHOW statements"),
                            (q, err))

    def test_sources_bounded(self):
        # 32 sources are read; a 33rd is vigild's statement error (influxd has no bound).
        names = ",".join("a%d" % i for i in range(33))
        self.assertEqual(self.vigild("SHOW SERIES FROM " + names)["results"][0]["error"],
                         "vigild does not support more than 32 sources in SHOW SERIES' FROM")
        got = self.vigild("SHOW SERIES FROM a1," + ",".join("zz%d" % i for i in range(31)))
        self.assertEqual(got["results"][0]["series"][0]["values"][0], ["a1,device=a1"])

    def test_cardinality_field_refused(self):
        # influxd counts no series by a condition on a field ("x = '1'", "x != '1'" alike);
        # vigild refuses it as a statement error.
        for q, counted in (("SHOW SERIES CARDINALITY WHERE x = '1'", []),
                           ("SHOW SERIES EXACT CARDINALITY WHERE x != '1' OR device = 'a1'",
                            ["a1"])):
            status, body = self.query(self.influxd.port, q)
            self.assertEqual(status, 200, (q, body))
            # influxd: the field's condition meets no series (only device = 'a1' counts)
            got = json.loads(body)["results"][0].get("series", [])
            self.assertEqual([x["name"] for x in got], counted, q)
            err = self.vigild(q)["results"][0]["error"]
            self.assertEqual(err, "vigild does not support a field in SHOW SERIES CARDINALITY's "
                             "WHERE", q)


class SeriesFrom(InfluxdPair):
    """SHOW SERIES FROM names, regexes and the reserved measurements, influxd holding a series
    per device in each of the reserved three."""

    POINTS = POINTS
    INFLUXD_ONLY = RESERVED

    def test_show_series_from_as_influxd(self):
        self.assert_same(WITH_FROM)

    def test_without_from_leaves_reserved_out(self):
        q = "SHOW SERIES WHERE device = 'a1' OR device = 'b1'"
        status, body = self.query(self.influxd.port, q)
        want = json.loads(body)["results"][0]["series"][0]["values"]
        self.assertIn(["vigil_scores,device=a1"], want)
        got = self.vigild(q)["results"][0]["series"][0]["values"]
        self.assertEqual(got, [k for k in want if not k[0].startswith("vigil_")])

    def test_name_no_device_lists_every_device(self):
        # Telegraf's "pump": vigild keeps no measurement name, so as SHOW TAG VALUES FROM it,
        # every device under it (influxd: nothing was written under "pump" here).
        got = self.vigild("SHOW SERIES FROM pump WHERE device =~ /^a[12]$/")
        self.assertEqual(got["results"][0]["series"][0]["values"],
                         [["pump,device=a1"], ["pump,device=a2"]])


class SeriesPredictionsFields(InfluxdPair):
    """vigil_predictions' fields are the devices' channels (SHOW FIELD KEYS answers so): a
    condition on one in SHOW SERIES FROM vigil_predictions is met, as influxd's index leaves
    fields out; influxd holds vigil_predictions with the devices' field x, as vigild answers it."""

    POINTS = POINTS
    INFLUXD_ONLY = "\n".join("vigil_predictions,device=%s x=1 %d" % (lp_tag(d), T)
                             for d in DEVICES)

    def test_predictions_field_condition_as_influxd(self):
        self.assert_same([
            "SHOW FIELD KEYS FROM vigil_predictions",
            "SHOW SERIES FROM vigil_predictions",
            "SHOW SERIES FROM vigil_predictions WHERE x = 'q'",
            "SHOW SERIES FROM vigil_predictions WHERE x =~ /q/ AND device != 'a1'",
            "SHOW SERIES FROM vigil_predictions WHERE zone = 'q' OR x != ''",
        ])


class SeriesBounded(vt.DaemonTestCase):
    """SHOW SERIES repeated to fill q stops at the answer's bound (8 MiB of JSON, its statements
    together), with the bound's statement error and "not executed" after it."""

    def test_answer_bounded(self):
        ids = ["d%02d-" % i + "x" * 100 for i in range(20)]
        r = self.d.write_lp("\n".join("%s v=1 %d" % (d, T) for d in ids), precision="ms")
        self.assertEqual(r.status, 204, r)
        # 32 names that are no device, 20 devices each: 640 keys, some 80 KB a statement.
        one = "SHOW SERIES FROM " + ",".join("n%d" % i for i in range(32))
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=60)
        c.request("POST", "/query", urllib.parse.urlencode(
            {"q": "; ".join([one] * 200), "chunked": "true"}),
            {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        body = r.read()
        c.close()
        self.assertEqual(r.status, 200)
        self.assertLessEqual(len(body), (8 << 20) + 1024)
        res = [json.loads(line)["results"][0] for line in body.splitlines() if line]
        ok = [x for x in res if "series" in x]
        self.assertGreater(len(ok), 50)
        self.assertEqual(len(ok[0]["series"][0]["values"]), 640)
        self.assertEqual(ok[0]["series"][0]["values"][0], ["n0,device=" + ids[0]])
        self.assertEqual(res[len(ok)]["error"], "vigild answers at most 8 MiB of JSON for one "
                         "query, its statements together: add LIMIT")
        self.assertEqual(len(res), 200)
        self.assertEqual(res[-1]["error"], "not executed")


if __name__ == "__main__":
    vt.main()

#!/usr/bin/python3
"""vigild integration: Grafana's InfluxDB data source (InfluxQL) against vigild and a real
influxd 1.6.7 holding the same points (influxpair.py's InfluxdPair), answered byte for byte
alike: the statements Grafana sends (G_SAME, through GET and POST, and the influx CLI); the
answer's 8 MiB bound; and vigild's own series (vigil_predictions, vigil_scores,
vigil_anomalies) beside the readings, under the readings' bounds. A fleet's merged series,
multi-value template variables, SHOW without FROM and the empty string are in
test_influx_grafana_fleet.py."""

import http.client
import json
import os
import subprocess
import sys
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import G_POINTS, G_T, INFLUX, Influxd, InfluxdPair, g_range  # noqa: E402
import test_ops  # noqa: E402  (helpers only: hup)


# ---- Grafana's InfluxDB data source (InfluxQL): SELECT and SHOW against a real influxd --------

# Grafana-shaped statements (and edge cases) that both servers answer byte for byte alike.
G_SAME = [
    'SELECT mean("temp") FROM "pump-7" WHERE %s GROUP BY time(10s) fill(null)' % g_range(0, 60),
    'SELECT mean("temp"), max("vib") FROM "pump-7" WHERE %s GROUP BY time(20s) fill(null)'
    % g_range(-20, 30),  # a bucket before the first point, several fields
    'SELECT mean("temp") FROM "pump-7" WHERE %s GROUP BY time(10s) fill(none)' % g_range(3, 30),
    'SELECT last("temp"), first(temp), count(temp), min(temp), sum(temp) FROM "pump-7" WHERE %s '
    'GROUP BY time(10s) fill(previous)' % g_range(3, 30),
    'SELECT count(temp) FROM "pump-7" WHERE %s GROUP BY time(10s)' % g_range(-20, 0),
    'SELECT mean(temp) FROM "pump-7" WHERE %s GROUP BY time(10s) fill(7)' % g_range(-20, 0),
    'SELECT mean(temp) FROM "pump-7" WHERE %s GROUP BY time(10s) fill(previous) '
    'ORDER BY time DESC' % g_range(-20, 20),
    'SELECT mean(temp) FROM "pump-7" WHERE %s GROUP BY time(10s) LIMIT 2 OFFSET 1' % g_range(0, 40),
    'SELECT mean(temp) FROM "pump-7" WHERE time > %dms and time < %dms GROUP BY time(10s)'
    % (G_T, G_T + 20000),
    'SELECT mean(temp) FROM "pump-7" WHERE %s GROUP BY time(10s, 3s)' % g_range(1, 20),
    'SELECT mean(temp) AS t, mean(temp) FROM "pump-7" WHERE %s GROUP BY time(10s)' % g_range(0, 5),
    'SELECT mean(temp) FROM "pump-7" WHERE %s' % g_range(0, 20),
    'SELECT last(temp) FROM "pump-7"',
    'SELECT "temp" FROM "pump-7" WHERE time >= %dms LIMIT 3' % G_T,
    'SELECT "temp", vib FROM "pump-7" WHERE time >= %dms ORDER BY time DESC LIMIT 3' % G_T,
    'SELECT temp FROM "pump-7" WHERE time >= \'2024-11-28T08:00:20Z\' LIMIT 2 OFFSET 1',
    'SELECT temp, nope FROM "pump-7" LIMIT 2',
    'SELECT mean(temp) FROM "pump" WHERE ("device" = \'pump-9\') AND %s '
    'GROUP BY time(10s), "device" fill(null)' % g_range(0, 30),
    'SELECT max(temp) FROM "pump" WHERE "device" = \'pump-9\' AND %s GROUP BY time(1m)'
    % g_range(0, 30),
    # Grafana's casts, and its template variables' regular expressions on the device tag.
    'select mean("temp"::field) from "pump" where ("device"::tag = \'pump-9\') and %s '
    'group by time(10s), "device"::tag fill(null)' % g_range(0, 10),
    'SELECT mean(temp) FROM pump WHERE device =~ /^pump-(8|9)$/ AND %s '
    'GROUP BY time(10s), device' % g_range(0, 10),
    'SELECT mean(temp) FROM pump WHERE "device" =~ /^pump-9$/ AND %s GROUP BY time(10s)'
    % g_range(0, 10),
    # ORDER BY time DESC lists the series in descending tag order too, as influxd does.
    'SELECT temp FROM pump WHERE device =~ /^pump-(8|9)$/ GROUP BY device ORDER BY time DESC',
    'SELECT max(temp) FROM pump WHERE device =~ /^pump-(8|9)$/ AND %s '
    'GROUP BY time(1m), "device" ORDER BY time DESC' % g_range(0, 10),
    'SELECT mean(temp) FROM pump WHERE "device" =~ /^nope$/ AND %s GROUP BY time(10s)'
    % g_range(0, 10),
    # Go's regexp syntax, as influxd compiles it (glibc read \z and \D as letters: no series;
    # review29).
    'SELECT mean(temp) FROM pump WHERE "device" =~ /^pump-(8|9)\z/ AND %s GROUP BY time(10s), '
    '"device"' % g_range(0, 10),
    'SHOW MEASUREMENTS WITH MEASUREMENT =~ /^f\D$/',
    # Repetitions Go refuses: influxd's 400 (glibc compiled the second in 5 s and 1.1 GB).
    'SHOW MEASUREMENTS WITH MEASUREMENT =~ /a{2000}/',
    'SHOW MEASUREMENTS WITH MEASUREMENT =~ /((a{1,100}){1,100}){1,100}/',
    'SHOW MEASUREMENTS WITH MEASUREMENT =~ /e+++/',  # glibc doubled the tree per '+'
    'SHOW MEASUREMENTS WITH MEASUREMENT =~ /a{2}{3}/',
    'SELECT mean(temp) FROM pump WHERE "device" =~ /[/ AND %s GROUP BY time(10s)' % g_range(0, 10),
    # Edge cases: an empty range, now() - 6h (long before), no such field or measurement.
    'SELECT temp FROM "pump-7" WHERE time >= %dms and time < %dms' % (G_T, G_T),
    'SELECT mean(temp) FROM "pump-7" WHERE time >= now() - 6h GROUP BY time(10s)',
    'SELECT mean(nope) FROM "pump-7" WHERE %s GROUP BY time(10s)' % g_range(0, 20),
    'SELECT mean(temp) FROM "nope" WHERE %s GROUP BY time(10s)' % g_range(0, 20),
    'SELECT mean(temp), mean(nope) FROM "pump-7" WHERE %s GROUP BY time(10s) fill(none)'
    % g_range(-20, 0),
    'SELECT a, b, c, d, e, f, g, h, i, j, k, l FROM fl',
    'SELECT mean(a), sum(b), mean(c) FROM fl WHERE time <= %dms GROUP BY time(1s) fill(-1)'
    % (G_T + 2000),
    # Several devices without GROUP BY "device": one series merging them (a fleet's panel);
    # first and last of two devices' points at one time: the larger value, as influxd's.
    'SELECT mean(temp), min(temp), max(temp), sum(temp), count(temp) FROM pump WHERE '
    'device =~ /^pump-(8|9)$/ AND %s GROUP BY time(10s)' % g_range(0, 30),
    'SELECT first(temp), last(temp), max(vib), count(vib) FROM pump WHERE device =~ /^pump-(8|9)$/ '
    'AND %s GROUP BY time(10s) fill(none) ORDER BY time DESC' % g_range(-10, 30),
    'SELECT mean(vib), mean(nope), last(temp) FROM pump WHERE device =~ /^pump-(8|9)$/ AND %s '
    'GROUP BY time(10s) fill(previous) LIMIT 2 OFFSET 1' % g_range(-10, 40),
    'SELECT mean(temp), first(temp) FROM pump WHERE device =~ /^pump-(8|9)$/',
    'SELECT last(temp) FROM pump WHERE "device" =~ /^pump-(8|9)$/ AND time >= %dms' % G_T,
    'SELECT mean(temp) FROM pump WHERE device =~ /^pump-(8|9)$/ AND %s GROUP BY time(10s)'
    % g_range(100, 130),  # no point in the range
    'SELECT count(nope) FROM pump WHERE device =~ /^pump-(8|9)$/ AND %s GROUP BY time(10s)'
    % g_range(0, 30),  # no device has the field
    # Raw points of several devices: one series in time order, ties in device order (under
    # DESC, influxd's order of a tie varied with LIMIT and the fields: these have none).
    'SELECT temp FROM pump WHERE device =~ /^pump-(8|9)$/',
    'SELECT temp FROM pump WHERE device =~ /^pump-(8|9)$/ ORDER BY time DESC LIMIT 1 OFFSET 1',
    'SELECT temp, vib FROM pump WHERE device =~ /^pump-(8|9)$/ ORDER BY time DESC LIMIT 2',
    'SELECT vib FROM pump WHERE device =~ /^pump-(8|9)$/ AND time >= %dms' % G_T,
    'SELECT temp FROM pump WHERE device =~ /^pump-(8|9)$/ AND %s' % g_range(100, 130),
    # SLIMIT and SOFFSET choose series in tag order, whatever ORDER BY; several devices without
    # GROUP BY "device" are one series.
    'SELECT mean(temp) FROM pump WHERE device =~ /^pump-(8|9)$/ AND %s '
    'GROUP BY time(10s), device SLIMIT 1 SOFFSET 1' % g_range(0, 30),
    'SELECT mean(temp) FROM pump WHERE device =~ /^pump-(8|9)$/ AND %s '
    'GROUP BY time(10s), device ORDER BY time DESC SLIMIT 1' % g_range(0, 30),
    'SELECT temp FROM pump WHERE device =~ /^pump-(8|9)$/ GROUP BY device LIMIT 1 SOFFSET 5',
    'SELECT mean(temp) FROM pump WHERE device =~ /^pump-(8|9)$/ AND %s GROUP BY time(10s) '
    'SOFFSET 1' % g_range(0, 30),
    'SELECT mean(temp) FROM "pump-7" WHERE %s GROUP BY time(10s) SLIMIT 1' % g_range(0, 30),
    # time(0s) is no GROUP BY time(); an offset of 0s is none.
    'SELECT mean(temp) FROM "pump-7" WHERE %s GROUP BY time(0s)' % g_range(0, 30),
    'SELECT max(temp) FROM pump WHERE device =~ /^pump-(8|9)$/ AND %s GROUP BY time(0s), device'
    % g_range(0, 30),
    'SELECT mean(temp) FROM pump WHERE device =~ /^pump-(8|9)$/ AND %s GROUP BY time(10s, 0s)'
    % g_range(0, 30),
    # Grafana's template variables: tag values chosen by WITH KEY and WHERE on the device tag.
    'SHOW TAG VALUES FROM "pump" WITH KEY = "device" WHERE "device" =~ /^pump-(8|9)$/',
    "SHOW TAG VALUES FROM pump WITH KEY = \"device\" WHERE \"device\" = 'pump-8'",
    'SHOW TAG VALUES FROM pump WITH KEY IN ("device", "site") WHERE device =~ /^pump-(8|9)$/ '
    'LIMIT 1 OFFSET 1',
    "SHOW TAG VALUES FROM pump WITH KEY =~ /dev/ WHERE device =~ /^pump-/ AND device !~ /7/ "
    "AND device != 'pump-8'",
    'SHOW TAG VALUES FROM pump WITH KEY != "site" WHERE device =~ /^pump-(8|9)$/',
    "SHOW TAG VALUES FROM pump WITH KEY = \"device\" WHERE device = 'nope'",
    'SHOW TAG VALUES FROM pump WITH KEY =~ /^x/',
    # A key other than the device tag, alone or with it in IN (...).
    "SHOW TAG VALUES FROM pump WITH KEY IN (\"site\") WHERE device =~ /^pump-(8|9)$/",
    "SHOW TAG VALUES FROM pump WITH KEY IN (\"site\", \"device\") WHERE device =~ /^pump-9/",
    # Schema statements of the query editor.
    'SHOW FIELD KEYS FROM "pump-7"',
    'SHOW TAG KEYS FROM "pump"',
    'SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)PUMP-7/ LIMIT 100',
    # Several statements, and influxd's parse errors (400).
    'SHOW FIELD KEYS FROM "pump-7"; SELECT last(temp) FROM "pump-7"',
    'SELECT',
    'SELECT temp',
    'SELECT temp FROM',
    'SELECT 1',  # the end is placed one closer after a number, as influxd places it
    'SELECT mean(temp) FROM x GROUP BY time(1h',
    'SELECT temp FROM x LIMIT 1 x',
    'SHOW MEASUREMENTS LIMIT 1 x',
    # The 400's message escaped as Go's too: "found \u003c" (review32: before, a raw '<').
    'SELECT temp FROM x LIMIT <',
    "SHOW MEASUREMENTS LIMIT 1 '<&>'",
    # Times beyond int64 (the fuzzer's: vigild's arithmetic overflowed) are influxd's errors.
    'SELECT last(temp) FROM "pump-7" WHERE time > 99999999999999999999ms',
    'SELECT last(temp) FROM "pump-7" WHERE time > 99999999999999999999',
    'SELECT last(temp) FROM "pump-7" WHERE time < 9223372036854775807ms',
    'SELECT last(temp) FROM "pump-7" WHERE time > now() - 100000000w',
]


class GrafanaQueries(InfluxdPair):
    """What Grafana's built-in InfluxDB data source (InfluxQL mode) sends, sent to vigild and to
    a real influxd 1.6.7 (Debian's influxd, on loopback, stopped after) holding the same points:
    each statement of G_SAME is answered byte for byte alike; the differences README lists
    are asserted as vigild's own answers; what vigild does not answer is a statement error in a
    200 naming it; the bounds answer an error, never a cut result."""

    CONFIG = "[http]\nmax_query_points = 25\nmax_scan_points = 40\n"
    POINTS = G_POINTS

    @classmethod
    def vigild_only(cls):
        # 30 and 45 points: the bounds' devices.
        cls.post(cls.d.http_port, "/write?db=g&precision=ms", "\n".join(
            "big30 x=%d %d" % (i, G_T + i * 1000) for i in range(30)))
        cls.post(cls.d.http_port, "/write?db=g&precision=ms", "\n".join(
            "big45 x=%d %d" % (i, G_T + i * 1000) for i in range(45)))
        # A device named like a reserved measurement, and one sorting after the reserved three
        # (SHOW MEASUREMENTS lists them among the devices).
        cls.post(cls.d.http_port, "/write?db=g&precision=ms",
                 "vigil_scores x=1 %d\nwind-1 x=1 %d" % (G_T, G_T))

    def test_grafana_statements_as_influxd(self):
        self.assert_same(G_SAME)

    def test_time_formats_and_post_as_influxd(self):
        q = G_SAME[0]
        for kw in ({"epoch": None}, {"epoch": "s"}, {"epoch": "ms", "method": "POST"}):
            want, got = self.both(q, **kw)
            self.assertEqual(got, want, (q, kw))
        want, got = self.both(G_SAME[13], epoch=None)  # raw points: RFC 3339 times
        self.assertEqual(got, want)
        self.assertIn(b'"2024-11-28T08:00:05Z"', got[1])

    def measurements(self, q):
        ans = self.vigild(q)["results"][0]
        return [v[0] for v in ans["series"][0]["values"]] if "series" in ans else []

    def test_grafana_health_check(self):
        # Grafana 10's "Save & test" sends SHOW measurements and counts what comes back: the
        # devices and vigild's three own measurements (so the FROM list offers them), in one
        # sorted list; the device vigil_scores is listed once.
        self.assertEqual(self.measurements("SHOW measurements"),
                         ["big30", "big45", "fl", "pump-7", "pump-8", "pump-9", "vigil_anomalies",
                          "vigil_predictions", "vigil_scores", "wind-1"])
        # WITH MEASUREMENT, LIMIT and OFFSET count the three as any measurement.
        for q, want in (
                ("SHOW MEASUREMENTS LIMIT 1 OFFSET 3", ["pump-7"]),
                ("SHOW MEASUREMENTS LIMIT 2 OFFSET 5", ["pump-9", "vigil_anomalies"]),
                ("SHOW MEASUREMENTS LIMIT 7", ["big30", "big45", "fl", "pump-7", "pump-8",
                                               "pump-9", "vigil_anomalies"]),
                ("SHOW MEASUREMENTS OFFSET 7", ["vigil_predictions", "vigil_scores", "wind-1"]),
                ("SHOW MEASUREMENTS OFFSET 10", []),
                ("SHOW MEASUREMENTS WITH MEASUREMENT =~ /^vigil_/",
                 ["vigil_anomalies", "vigil_predictions", "vigil_scores"]),
                ("SHOW MEASUREMENTS WITH MEASUREMENT =~ /scores|-1$/ OFFSET 1", ["wind-1"]),
                ("SHOW MEASUREMENTS WITH MEASUREMENT = vigil_predictions", ["vigil_predictions"]),
                ('SHOW MEASUREMENTS WITH MEASUREMENT = "vigil_scores"', ["vigil_scores"]),
                ("SHOW MEASUREMENTS WITH MEASUREMENT = vigil", [])):
            self.assertEqual(self.measurements(q), want, q)

    def test_differences_listed_in_readme(self):
        # vigild keeps no measurement names: SHOW MEASUREMENTS lists devices (influxd: the
        # measurements "pump" and "pump-7"), and the device tag's values are every device.
        status, body = self.query(self.influxd.port, "SHOW MEASUREMENTS")
        self.assertEqual(json.loads(body)["results"][0]["series"][0]["values"],
                         [["fl"], ["pump"], ["pump-7"]])
        ans = self.vigild('SHOW TAG VALUES FROM "pump" WITH KEY = "device"')
        self.assertEqual(ans, {"results": [{"statement_id": 0, "series": [{
            "name": "pump", "columns": ["key", "value"],
            "values": [["device", d]
                       for d in ("big30", "big45", "fl", "pump-7", "pump-8", "pump-9",
                                 "vigil_scores", "wind-1")]
        }]}]})
        self.assertEqual(self.vigild('SHOW TAG VALUES FROM "pump" WITH KEY = "site"'),
                         {"results": [{"statement_id": 0}]})
        # GROUP BY "device" over a name that is no device: every device with the field.
        ans = self.vigild('SELECT mean(temp) FROM "pump" WHERE %s GROUP BY time(10s), "device"'
                          % g_range(0, 5))
        self.assertEqual([(s["tags"]["device"], s["values"]) for s in ans["results"][0]["series"]],
                         [("pump-7", [[G_T, 71]]), ("pump-8", [[G_T, 60.5]]),
                          ("pump-9", [[G_T, 72]])])

    def test_fill_arguments(self):
        """fill() as influxd 1.6.7 answers it (session 44): fill(linear) is vigild's statement
        error, named whole (was "fill(linear", unclosed); fill(foo), fill(NULL), fill(-(1)),
        fill(linear(1)) influxd's 400, fill(null, 1) its other 400; fill(+1) fills with 1."""
        g = 'SELECT mean(temp) FROM "pump-7" WHERE %s GROUP BY time(10s) ' % g_range(0, 20)
        for arg in ("linear", '"linear"'):
            self.assertEqual(self.vigild(g + "fill(%s)" % arg)["results"][0]["error"],
                             "vigild does not support fill(linear)", arg)
        nan = b"expected number argument in fill()"
        cases = [(arg, 400, nan) for arg in ("foo", "FOO", "-null", "-linear", "-foo", "LINEAR",
                                             "Linear", '"LINEAR"')]
        # null, none and previous are compared as written too (vigild filled these as their lower
        # case); a sign, a call, parentheses or an operator make an expression, no number (vigild:
        # "fill(+" or "fill((", its fill(linear) statement error, a parse error at the operator).
        cases += [(arg, 400, nan) for arg in ("NULL", "NONE", "PREVIOUS", "Null", '"NONE"',
                                              "+null", "-(1)", "+(1)", "(1)", "linear(1)",
                                              "null(1)", "1 + 1", "-1 * 2", "x::float")]
        # More than one argument: influxd's other 400, after reading them all (vigild: a parse
        # error at the ','). A sign folds into the number: fill(+1) fills (vigild: "fill(+").
        cases += [(arg, 400, b"fill requires an argument")
                  for arg in ("null, 1", "1, 2", "linear, null", "none,previous,1")]
        cases += [(arg, 200, b"")
                  for arg in ("+1", "+ 2.5", "-1", "null", "none", "previous", '"null"', "0")]
        # Parse errors after fill(linear) and in the arguments are influxd's.
        cases = [("fill(%s)" % arg, st, text) for arg, st, text in cases]
        cases += [(t, 400, b"") for t in ("fill(linear) LIMIT x", "fill(null 1)", "fill(null,)")]
        for tail, status, text in cases:
            with self.subTest(fill=tail):
                want, got = self.both(g + tail)
                self.assertEqual((got, got[0]), (want, status))
                self.assertIn(text, got[1])
        # Empty buckets (a point every 5 s, buckets of 1 s) filled with 1.
        want, got = self.both('SELECT mean(temp) FROM "pump-7" WHERE %s GROUP BY time(1s) '
                              'fill(+1)' % g_range(0, 4))
        self.assertEqual(got, want)
        self.assertEqual(json.loads(got[1])["results"][0]["series"][0]["values"],
                         [[G_T, 70.5]] + [[G_T + i * 1000, 1] for i in range(1, 5)])

    def test_unsupported_is_a_statement_error(self):
        for q, what in (
                ('SELECT median(temp) FROM "pump-7"', "the function median"),
                ('SELECT temp * 2 FROM "pump-7"', "math in SELECT"),
                ('SELECT * FROM "pump-7"', "SELECT *"),
                ('SELECT temp FROM /pump/', "a regular expression in FROM"),
                ('SELECT temp INTO x FROM "pump-7"', "SELECT INTO"),
                ('SELECT mean(temp) FROM (SELECT temp FROM "pump-7")', "subqueries"),
                ("SELECT temp FROM pump WHERE device = 'a' OR device = 'b'", "OR in WHERE"),
                # influxd answers this; vigild's 400 named it a parse error (review32). OR on
                # the device tag is answered since iqor (below); on another tag it is not.
                ("SHOW TAG VALUES FROM pump WITH KEY = \"device\" WHERE device = 'pump-8' OR "
                 "site = 'x'", "WHERE in SHOW TAG VALUES other than"),
                ('SELECT mean(temp) FROM "pump-7" GROUP BY time(10s) fill(linear)', "fill(linear"),
                ("SELECT temp FROM \"pump-7\" WHERE site = 'x'",
                 "conditions on a field or on a tag other than the device tag: site"),
                ('SELECT temp FROM "pump-7" WHERE temp > 5', "conditions on a field"),
                ('SELECT 1 + temp FROM "pump-7"', "this field expression: 1"),
                ("SELECT mean(temp) FROM \"pump-7\" GROUP BY time(1d) tz('Europe/Berlin')",
                 "tz(): vigild's buckets and times are UTC"),
):
            ans = self.vigild(q)
            self.assertEqual(list(ans["results"][0]), ["statement_id", "error"], q)
            self.assertIn("vigild does not support " + what, ans["results"][0]["error"], q)
        # SELECT * FROM one device names its fields (session 66: the influx shell's first
        # query was told to name them without which); FROM a name that is no device, as before.
        for q, dev, fields in (('SELECT * FROM "pump-7"', "pump-7", "temp, vib"),
                               ("SELECT * FROM pump WHERE device = 'pump-9'", "pump-9", "temp, vib")):
            self.assertEqual(self.vigild(q)["results"][0]["error"],
                             "vigild does not support SELECT *: name the fields (device '%s' has "
                             "%s)" % (dev, fields), q)
        self.assertEqual(self.vigild("SELECT * FROM pump")["results"][0]["error"],
                         "vigild does not support SELECT *: name the fields")
        # vigild's own measurements name their own fields (read67a: vigil_scores was told the
        # device's channels, which it has not); vigil_anomalies and no device: no hint.
        self.assertEqual(
            self.vigild("SELECT * FROM vigil_scores WHERE device = 'pump-7'")["results"][0]["error"],
            "vigild does not support SELECT *: name the fields (vigil_scores of device 'pump-7' "
            "has score, state)")
        for q in ("SELECT * FROM vigil_anomalies WHERE device = 'pump-7'",
                  "SELECT * FROM vigil_scores"):
            self.assertEqual(self.vigild(q)["results"][0]["error"],
                             "vigild does not support SELECT *: name the fields", q)
        # influxd's own statement errors, in its words (checked there); and OR on the device
        # tag in SHOW TAG VALUES, answered as influxd answers it (iqor; the case above before).
        for q in ('SELECT temp, mean(vib) FROM "pump-7"',
                  "SHOW TAG VALUES FROM pump WITH KEY = \"device\" WHERE device = 'pump-8' OR "
                  "device = 'pump-9'",
                  'SELECT temp FROM "pump-7" WHERE %s GROUP BY time(10s)' % g_range(0, 20)):
            want, got = self.both(q)
            self.assertEqual(got, want, q)
        # The run goes on after vigild's own error, as influxd's after its answer (influx8;
        # test_iqshow.py), and stops at a statement influxd fails, as in influxd.
        ans = self.vigild('SELECT median(temp) FROM "pump-7"; SHOW MEASUREMENTS')
        self.assertEqual(ans["results"][0]["error"], "vigild does not support the function median")
        self.assertIn("series", ans["results"][1])
        ans = self.vigild('SELECT mean() FROM "pump-7"; SHOW MEASUREMENTS')
        self.assertEqual(ans["results"], [{"statement_id": 0, "error": "not executed"}])
        self.assertEqual(self.d.curl("GET", "/ping").status, 204)

    def test_bounds(self):
        # max_query_points = 25 buckets or rows; max_scan_points = 40 points read.
        ans = self.vigild('SELECT mean(x) FROM big30 WHERE %s GROUP BY time(1s)' % g_range(0, 59))
        self.assertEqual(ans["results"][0]["error"], "max-select-buckets limit exceeded: (60/25)")
        ans = self.vigild("SELECT x FROM big30")
        self.assertIn("at most 25 rows for one SELECT (http.max_query_points)",
                      ans["results"][0]["error"])
        self.assertEqual(len(self.vigild("SELECT x FROM big30 LIMIT 25")["results"][0]
                             ["series"][0]["values"]), 25)
        ans = self.vigild("SELECT mean(x) FROM big45")
        self.assertIn("at most 40 points for one SELECT (http.max_scan_points)",
                      ans["results"][0]["error"])
        ans = self.vigild("SELECT mean(x) FROM big30")
        self.assertEqual(ans["results"][0]["series"][0]["values"], [[0, 14.5]])
        # Several devices merged: the points read count over all of them, the buckets alike.
        ans = self.vigild("SELECT mean(x) FROM m WHERE device =~ /^big/")
        self.assertIn("at most 40 points for one SELECT (http.max_scan_points)",
                      ans["results"][0]["error"])
        ans = self.vigild("SELECT mean(x) FROM m WHERE device =~ /^big/ AND %s GROUP BY time(1s)"
                          % g_range(0, 59))
        self.assertEqual(ans["results"][0]["error"], "max-select-buckets limit exceeded: (60/25)")
        ans = self.vigild("SELECT x FROM m WHERE device =~ /^big/")  # 26 points each read
        self.assertIn("at most 40 points for one SELECT (http.max_scan_points)",
                      ans["results"][0]["error"])
        ans = self.vigild("SELECT x FROM m WHERE device =~ /^big/ LIMIT 5 OFFSET 2")
        self.assertEqual(ans["results"][0]["series"][0]["values"],
                         [[G_T + 1000, 1], [G_T + 1000, 1], [G_T + 2000, 2], [G_T + 2000, 2],
                          [G_T + 3000, 3]])
        ans = self.vigild("SELECT x FROM m WHERE device =~ /^big/ OFFSET 26")
        self.assertIn("at most 25 rows for one SELECT", ans["results"][0]["error"])
        ans = self.vigild("SELECT count(x), sum(x) FROM m WHERE device =~ /^big/ AND %s "
                          "GROUP BY time(5s)" % g_range(0, 9))
        self.assertEqual(ans["results"][0]["series"][0]["values"],
                         [[G_T, 10, 20], [G_T + 5000, 10, 70]])

    def test_influx_cli_select(self):
        # The influx shell (chunked answers) prints the same table from both.
        q = 'SELECT mean("temp"), max("vib") FROM "pump-7" WHERE %s GROUP BY time(20s)' % (
            g_range(0, 40))
        outs = []
        for port in (self.influxd.port, self.d.http_port):
            p = subprocess.run([INFLUX, "-host", "127.0.0.1", "-port", str(port), "-database", "g",
                                "-precision", "ms", "-execute", q], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60, text=True)
            outs.append((p.returncode, p.stdout))
        self.assertEqual(outs[1], outs[0])
        self.assertIn("1732780820000 76   0.825", outs[1][1])


# ---- vigild's own series in Grafana: vigil_predictions, vigil_scores, vigil_anomalies ---------

V_STATES = {"learning": 0, "normal": 1, "warning": 2, "anomaly": 3}


def lp_str(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


class GrafanaVigilData(vt.DaemonTestCase):
    """What the detector saw: two devices trained on a 3-channel regime and pushed into an
    anomaly by a burst of another one (test_pipeline's rotation), pump-a's episode then accepted
    by the operator (closed), pump-b's still active; the same points written to a real influxd
    1.6.7 (the JSON answers turned into line protocol). No tests: GrafanaVigilSeries' here."""

    import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
    CONFIG = tp.config_text(0)
    T0 = 1_700_000_000_000

    @classmethod
    def feed(cls, dev, rows, k):
        tp = cls.tp
        tp.post_readings(cls.d, dev, rows, [cls.T0 + 1000 * i for i in range(k, k + len(rows))],
                         tp.CH3)
        tp.wait_scored(cls.d, dev, k + len(rows))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tp, random = cls.tp, __import__("random")
        for n, dev in enumerate(("pump-a", "pump-b")):
            data = tp.rotation(650, 0, tp.OMEGA_A, 0.01, random.Random(3 + n))
            cls.feed(dev, data[:500], 0)
            tp.wait_idle(cls.d, dev, 1)
            cls.feed(dev, data[500:650], 500)
            cls.feed(dev, tp.rotation(30, 650, tp.OMEGA_B, 0.01, random.Random(7), amp=3.0), 650)
            assert tp.status(cls.d, dev)["state"] == "anomaly", dev
        r = cls.d.curl("POST", "/v1/devices/pump-a/anomalies/accept", "-H",
                       "Content-Type: application/json", "--data",
                       '{"note": "bearing \\"B\\" checked\\\\ok\\n\\t\\u0001 at 80 \\u00b0C"}')
        assert r.status == 200, r
        cls.preds = {dev: cls.pred_points(dev) for dev in ("pump-a", "pump-b")}
        cls.events = tp.wait_for("both episodes listed", lambda: (
            lambda ev: ev if len(ev) == 2 else None)(cls.d.get_json("/v1/anomalies")["anomalies"]),
            10)
        cls.influxd = Influxd(vt.mkdtemp())
        cls.addClassCleanup(cls.influxd.log.close)
        cls.addClassCleanup(cls.influxd.stop)  # runs first, also when what follows fails
        GrafanaQueries.post(cls.influxd.port, "/query", "q=CREATE+DATABASE+g")
        status, body = GrafanaQueries.post(cls.influxd.port, "/write?db=g&precision=ms",
                                           cls.line_protocol().encode())
        assert status == 204, (status, body)

    @classmethod
    def pred_points(cls, dev):
        """Every prediction of dev from the JSON route, following next (bounded)."""
        out, path = [], "/v1/devices/%s/predictions?limit=1000" % dev
        for _ in range(10):
            doc = cls.d.get_json(path)
            out += doc["points"]
            if not doc.get("next"):
                return out
            path = doc["next"]
        raise AssertionError("more than 10 pages")

    @classmethod
    def episode_text(cls, e):
        # The channels with at least a tenth of the share (the first always), with their sides.
        names = ", ".join(c["channel"] + (" (%s)" % c["side"] if "side" in c else "")
                          for i, c in enumerate(e["channels"]) if i == 0 or c["share"] >= 0.1)
        return "%s: anomaly%s%s, peak score %.3g (%s)" % (
            e["device"], " on " if names else "", names, e["peak_score"],
            "active" if e["active"] else e["ended_by"])

    @classmethod
    def line_protocol(cls):
        """The JSON routes' predictions, scores and episodes as influxd's points."""
        lines = []
        for dev, pts in cls.preds.items():
            for p in pts:
                vals = ",".join("%s=%r" % (c, v) for c, v in sorted(p["predicted"].items())
                                if v is not None)
                if vals:
                    lines.append("vigil_predictions,device=%s %s %d" % (dev, vals, p["ts"]))
                score = "score=%r," % p["score"] if p["score"] is not None else ""
                lines.append("vigil_scores,device=%s %sstate=%d %d"
                             % (dev, score, V_STATES[p["state"]], p["ts"]))
        for e in cls.events:
            f = ["text=" + lp_str(cls.episode_text(e)), "id=%d" % e["id"],
                 "channels=" + lp_str(", ".join(c["channel"] for c in e["channels"])),
                 "peak_score=%r" % e["peak_score"]]
            f += ["%s=%s" % (k, lp_str(e[k])) for k in ("ended_by", "opened_by", "note")
                  if e.get(k) is not None]
            if e["end_ts"] is not None:
                f.append("end=%d" % e["end_ts"])
            lines.append("vigil_anomalies,device=%s %s %d" % (e["device"], ",".join(f),
                                                              e["start_ts"]))
        return "\n".join(lines)

    def vigild(self, q):
        status, body = GrafanaQueries.query(self.d.http_port, q)
        self.assertEqual(status, 200, (q, body))
        return json.loads(body)

    def rng(self, a, b):
        return "time >= %dms and time <= %dms" % (self.T0 + a * 1000, self.T0 + b * 1000)


class GrafanaVigilSeries(GrafanaVigilData):
    """GrafanaVigilData charted: Grafana's SELECTs of vigil_predictions, vigil_scores and
    vigil_anomalies answer what the JSON routes give, and what influxd 1.6.7 answers."""

    def test_predictions_as_the_json_route(self):
        # Actual vs predicted: the readings and, beside them, the same channel's predictions.
        ans = self.vigild("SELECT \"x\", \"y\", \"z\" FROM \"vigil_predictions\" WHERE "
                          "(\"device\" = 'pump-a') AND %s" % self.rng(0, 700))
        s = ans["results"][0]["series"][0]
        self.assertEqual((s["name"], s["columns"]), ("vigil_predictions", ["time", "x", "y", "z"]))
        want = [[p["ts"]] + [p["predicted"][c] for c in "xyz"] for p in self.preds["pump-a"]]
        self.assertEqual(len(want), 680)
        # The readings scored while it learned have no prediction (null since session 66): no
        # row, as influxd has none for a point without the fields asked.
        want = [w for w in want if w[1:] != [None, None, None]]
        self.assertTrue(0 < len(want) < 680, len(want))
        self.assertEqual(s["values"], want)
        ans = self.vigild("SELECT \"score\", \"state\" FROM \"vigil_scores\" WHERE "
                          "\"device\" = 'pump-b' AND %s" % self.rng(600, 700))
        want = [[p["ts"], p["score"], V_STATES[p["state"]]] for p in self.preds["pump-b"]
                if p["ts"] >= self.T0 + 600000]
        self.assertEqual(ans["results"][0]["series"][0]["values"], want)
        self.assertEqual(want[-1][2], 3)  # pump-b ends in its anomaly
        # The readings themselves are still the device's measurement.
        ans = self.vigild("SELECT \"x\" FROM \"pump-a\" WHERE %s LIMIT 1" % self.rng(0, 1))
        self.assertEqual(ans["results"][0]["series"][0]["name"], "pump-a")

    def test_annotations_as_the_json_route(self):
        # Grafana's annotation query: Text column "text", TimeEnd column "end", Tags "device".
        ans = self.vigild("SELECT \"text\", \"end\", \"device\" FROM \"vigil_anomalies\" "
                          "WHERE %s" % self.rng(0, 1000))
        s = ans["results"][0]["series"][0]
        self.assertEqual(s["columns"], ["time", "text", "end", "device"])
        want = sorted([e["start_ts"], self.episode_text(e), e["end_ts"], e["device"]]
                      for e in self.events)
        self.assertEqual(s["values"], want)
        self.assertIn("(operator)", want[0][1] + want[1][1])
        self.assertIn("(active)", want[0][1] + want[1][1])
        # An episode's row is at its start: a range that starts after it has none.
        ans = self.vigild("SELECT \"text\" FROM \"vigil_anomalies\" WHERE %s"
                          % self.rng(700, 1000))
        self.assertEqual(ans, {"results": [{"statement_id": 0}]})
        # README's annotation query for episodes begun before the range: its lower bound moved
        # back (time >= ${__from}ms - 1h) lists both, pump-b's still active (end null).
        ans = self.vigild("SELECT \"text\", \"end\" FROM \"vigil_anomalies\" WHERE "
                          "time >= %dms - 1h AND time <= %dms" % (self.T0 + 700000,
                                                                 self.T0 + 1000000))
        self.assertEqual(ans["results"][0]["series"][0]["values"], [r[:3] for r in want])

    def test_as_influxd(self):
        a, b, ports = self.rng(0, 700), self.rng(600, 700), (self.influxd.port, self.d.http_port)
        for q in (
                'SELECT "x", "z" FROM "vigil_predictions" WHERE "device" = \'pump-a\' AND %s' % b,
                'SELECT mean("x"), max("y") FROM "vigil_predictions" WHERE ("device" = '
                '\'pump-a\') AND %s GROUP BY time(1m) fill(null)' % a,
                'SELECT max("score"), last("state") FROM "vigil_scores" WHERE "device" =~ '
                '/^pump-(a|b)$/ AND %s GROUP BY time(30s), "device" fill(none)' % a,
                'SELECT "score" FROM "vigil_scores" WHERE "device" = \'pump-b\' ORDER BY time '
                'DESC LIMIT 5',
                'SELECT "text", "end" FROM "vigil_anomalies" WHERE %s' % a,
                'SELECT "text" FROM "vigil_anomalies" ORDER BY time DESC LIMIT 1 OFFSET 1',
                'SELECT "text", "channels", "ended_by", "opened_by", "peak_score", "id", "note" '
                'FROM "vigil_anomalies" WHERE "device" = \'pump-a\'',
                'SELECT "end" FROM "vigil_anomalies" WHERE %s' % a,  # the active one: no row
                'SELECT "text", "end" FROM "vigil_anomalies" WHERE "device" = \'pump-b\' AND time '
                '>= %dms - 1h AND time <= %dms' % (self.T0 + 700000, self.T0 + 710000),
                'SELECT "text" FROM "vigil_anomalies" WHERE %s GROUP BY "device" ORDER BY time '
                'DESC' % a,
                'SHOW FIELD KEYS FROM "vigil_predictions"', 'SHOW FIELD KEYS FROM "vigil_scores"',
                'SHOW FIELD KEYS FROM "vigil_anomalies"'):
            want, got = (GrafanaQueries.query(p, q) for p in ports)
            if "GROUP BY" in q:  # chunked: a series a document, as influxd's (session 50)
                self.assertEqual(*(GrafanaQueries.chunked(p, q) for p in ports), q)
            if q == 'SHOW FIELD KEYS FROM "vigil_anomalies"':
                # influxd lists the fields its points have; vigild its fixed ones, among them
                # continues and fault, which no episode here has (an event that continues
                # another: tests/integration/test_evcont.py).
                ans = json.loads(got[1])
                vals = ans["results"][0]["series"][0]["values"]
                for k in ("continues", "fault"):
                    self.assertIn([k, "float"], vals, got)
                    vals.remove([k, "float"])
                got = (got[0], json.dumps(ans, separators=(",", ":")).encode())
            self.assertEqual(got, want, q)
            self.assertIn(b'"series"', got[1], q)

    def test_episode_row_bound(self):
        # http.max_query_points bounds vigil_anomalies' rows as it does the readings': both
        # episodes under a bound of one are the readings' error, never a cut list (the first
        # version asked the pipeline for one more than the bound and answered what came: both
        # rows here, and of three episodes the newest two without a word). LIMIT 1, or one
        # device's, fits. Applied by a reload, then the class's configuration is put back.
        q = 'SELECT "text" FROM "vigil_anomalies"'
        self.assertEqual(len(self.vigild(q)["results"][0]["series"][0]["values"]), 2)
        vt.write_file(self.d.config, self.CONFIG + "[http]\nmax_query_points = 1\n")
        try:
            test_ops.hup(self.d, r"configuration reloaded; applied: http.max_query_points")
            res = self.vigild(q)["results"][0]
            self.assertIn("vigild answers at most 1 rows for one SELECT (http.max_query_points)",
                          res.get("error", ""), res)
            self.assertNotIn("series", res)
            res = self.vigild(q + " LIMIT 1")["results"][0]
            self.assertEqual([r[1] for r in res["series"][0]["values"]],
                             [self.episode_text(min(self.events,
                                                    key=lambda e: (e["start_ts"], e["device"])))])
            res = self.vigild(q + " WHERE \"device\" = 'pump-b'")["results"][0]
            self.assertEqual(len(res["series"][0]["values"]), 1)
        finally:
            vt.write_file(self.d.config, self.CONFIG)
            test_ops.hup(self.d, r"configuration reloaded; applied: http.max_query_points")

    def test_reserved_names_and_errors(self):
        # A device named like a reserved measurement: its readings through any other FROM name,
        # its own scores through the reserved one (its first reading: learning, no score: null
        # since session 66, 0 before).
        r = self.d.write_lp("m,device=vigil_scores t=1.5 %d" % self.T0, precision="ms")
        self.assertEqual(r.status, 204, r)
        ans = self.vigild("SELECT \"t\" FROM \"m\" WHERE \"device\" = 'vigil_scores'")
        self.assertEqual(ans["results"][0]["series"][0]["values"], [[self.T0, 1.5]])
        self.tp.wait_scored(self.d, "vigil_scores", 1)
        ans = self.vigild("SELECT \"score\", \"state\" FROM \"vigil_scores\" WHERE "
                          "\"device\" = 'vigil_scores'")
        self.assertEqual(ans["results"][0]["series"][0]["values"], [[self.T0, None, 0]])
        for q, err in (
                ('SELECT count("text") FROM "vigil_anomalies"', "vigil_anomalies raw only"),
                ('SELECT "nope" FROM "vigil_anomalies"', "vigil_anomalies has no field nope"),
                ('SELECT median("score") FROM "vigil_scores"', "the function median")):
            ans = self.vigild(q)
            self.assertIn(err, ans["results"][0]["error"], q)
        # Several devices in one series of predictions, as for readings: the fleet's mean is
        # the mean over every device's predictions.
        where = "WHERE \"device\" =~ /^pump/ AND %s" % self.rng(0, 700)
        ans = self.vigild("SELECT mean(\"x\"), count(\"x\") FROM \"vigil_predictions\" " + where)
        [[_, mean, count]] = ans["results"][0]["series"][0]["values"]
        per = self.vigild("SELECT mean(\"x\"), count(\"x\") FROM \"vigil_predictions\" " + where
                          + " GROUP BY \"device\"")["results"][0]["series"]
        self.assertGreater(len(per), 1)
        self.assertEqual(count, sum(s["values"][0][2] for s in per))
        self.assertAlmostEqual(mean, sum(s["values"][0][1] * s["values"][0][2] for s in per)
                               / count, places=9)


class GrafanaVigilBounds(vt.DaemonTestCase):
    """vigil_scores and vigil_predictions are read under the readings' bounds: at most
    http.max_scan_points entries read and http.max_query_points rows answered for one SELECT,
    else an error, never a cut result. A device's first readings are scored while it learns
    (no score, null since session 66, and state 0), so twelve readings give twelve entries."""

    CONFIG = "[http]\nmax_query_points = 5\nmax_scan_points = 8\n"
    T0 = 1_700_000_000_000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.d.write_lp("".join("m,device=b12 v=%d %d\n" % (i, cls.T0 + 1000 * i)
                                   for i in range(12)), precision="ms")
        assert r.status == 204, r
        GrafanaVigilSeries.tp.wait_scored(cls.d, "b12", 12)

    def answer(self, q):
        status, body = GrafanaQueries.query(self.d.http_port, q)
        self.assertEqual(status, 200, (q, body))
        return json.loads(body)["results"][0]

    def test_bounds(self):
        res = self.answer("SELECT max(state) FROM vigil_scores WHERE device = 'b12'")
        self.assertIn("at most 8 points for one SELECT (http.max_scan_points)", res["error"])
        res = self.answer("SELECT state FROM vigil_scores WHERE device = 'b12' AND "
                          "time <= %dms" % (self.T0 + 7000))
        self.assertIn("at most 5 rows for one SELECT (http.max_query_points)", res["error"])
        # Past the scan bound's count from the oldest: the newest entries are still found.
        res = self.answer("SELECT state FROM vigil_scores WHERE device = 'b12' AND "
                          "time >= %dms" % (self.T0 + 10000))
        self.assertEqual(res["series"][0]["values"], [[self.T0 + 10000, 0], [self.T0 + 11000, 0]])
        # (vigil_predictions has no value of a learning device's readings: vigil_scores' state.)
        res = self.answer("SELECT state FROM vigil_scores WHERE device = 'b12' ORDER BY time "
                          "DESC LIMIT 5")
        self.assertEqual([row[0] for row in res["series"][0]["values"]],
                         [self.T0 + 1000 * i for i in range(11, 6, -1)])
        res = self.answer("SELECT max(score), max(state) FROM vigil_scores WHERE device = 'b12' "
                          "AND time >= %dms AND time < %dms GROUP BY time(4s)"
                          % (self.T0, self.T0 + 8000))
        self.assertEqual(res["series"][0]["values"],
                         [[self.T0, None, 0], [self.T0 + 4000, None, 0]])


class GrafanaVigilNullEntries(vt.DaemonTestCase):
    """A device's learning entries have no score and no prediction (null since session 66) and
    are no points of a SELECT; the scored ones after them are all read. Review of ux66: the read
    stopped at http.max_scan_points + 1 entries, nulls included, so the values after more nulls
    than that were cut off without an error (11 of these 30 predictions answered)."""

    import pipeline_fx as tp  # noqa: E402
    CONFIG = tp.config_text(0, warmup=50, extra="[http]\nmax_scan_points = 60\n")
    T0 = 1_700_000_000_000

    def test_values_after_nulls(self):
        tp, random = self.tp, __import__("random")
        data = tp.rotation(80, 0, tp.OMEGA_A, 0.01, random.Random(3))
        ts = [self.T0 + 1000 * i for i in range(80)]
        tp.post_readings(self.d, "n80", data[:50], ts[:50], tp.CH3)
        tp.wait_scored(self.d, "n80", 50)
        tp.wait_idle(self.d, "n80", 1)
        tp.post_readings(self.d, "n80", data[50:], ts[50:], tp.CH3)
        tp.wait_scored(self.d, "n80", 80)
        pts = self.d.get_json("/v1/devices/n80/predictions?limit=1000")["points"]
        valued = [p["ts"] for p in pts if p["predicted"]["x"] is not None]
        self.assertTrue(len(pts) == 80 and 0 < len(valued) <= 60 and
                        len(pts) - len(valued) > 60 - len(valued), (len(pts), len(valued)))
        for q in ("SELECT x FROM vigil_predictions WHERE device = 'n80'",
                  "SELECT score FROM vigil_scores WHERE device = 'n80'"):
            with self.subTest(q=q):
                status, body = GrafanaQueries.query(self.d.http_port, q)
                self.assertEqual(status, 200, body)
                res = json.loads(body)["results"][0]
                self.assertNotIn("error", res)
                self.assertEqual([v[0] for v in res["series"][0]["values"]], valued, res)

class GrafanaVigilAnswerBytes(vt.DaemonTestCase):
    """vigil_anomalies' rows stop at the query's 8 MiB bound as SELECT's and SHOW's do
    (write_series' early stop: no daemon test before session 27). One device pushed into an
    anomaly (GrafanaVigilSeries' way), its episode accepted with a note of 500 '<' (3,000
    bytes escaped): 16 such fields a row, a statement repeated 200 times, some 9.6 MB."""

    import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
    CONFIG = tp.config_text(0)
    T0 = 1_700_000_000_000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tp, random = cls.tp, __import__("random")
        data = tp.rotation(650, 0, tp.OMEGA_A, 0.01, random.Random(3))
        for rows, k in ((data[:500], 0), (data[500:650], 500),
                        (tp.rotation(30, 650, tp.OMEGA_B, 0.01, random.Random(7), amp=3.0), 650)):
            tp.post_readings(cls.d, "pump-a", rows,
                             [cls.T0 + 1000 * i for i in range(k, k + len(rows))], tp.CH3)
            tp.wait_scored(cls.d, "pump-a", k + len(rows))
            if k == 0:
                tp.wait_idle(cls.d, "pump-a", 1)
        assert tp.status(cls.d, "pump-a")["state"] == "anomaly"
        r = cls.d.curl("POST", "/v1/devices/pump-a/anomalies/accept", "-H",
                       "Content-Type: application/json", "--data",
                       json.dumps({"note": "<" * 500}))
        assert r.status == 200, r

    def test_anomalies_bounded(self):
        one = "SELECT " + ", ".join(["note"] * 16) + " FROM vigil_anomalies"
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
        self.assertGreater(len(ok), 150)
        self.assertEqual(ok[0]["series"][0]["values"][0][1], "<" * 500)
        failed = res[len(ok)]
        self.assertEqual(failed["error"], "vigild answers at most 8 MiB of JSON for one query, "
                         "its statements together: narrow the time range or add LIMIT")
        self.assertEqual(len(res), 200)
        self.assertEqual(res[-1]["error"], "not executed")


class GrafanaAnswerBytes(vt.DaemonTestCase):
    """A query's whole answer, its statements together, stops at 8 MiB of JSON (review29): each
    statement's rows are bounded (http.max_query_points, default 100,000), but 16 fields a row
    and a statement repeated to fill q made 472 MB of JSON for one 959-byte GET. Default limits;
    32,000 points of one channel whose values print 16 to 18 characters: some 300 bytes a row."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for k in range(0, 32000, 16000):
            r = cls.d.write_lp("\n".join("wide x=%d.123456789012 %d" % (i, G_T + i)
                                          for i in range(k, k + 16000)) + "\n", precision="ms")
            assert r.status == 204, r
        # 300 devices of 10 long channel names: SHOW FIELD KEYS lists some 190 KB.
        chans = ",".join("channel_with_a_rather_long_name_%02d=1" % k for k in range(10))
        r = cls.d.write_lp("\n".join("many%03d %s %d" % (i, chans, G_T) for i in range(300))
                           + "\n", precision="ms")
        assert r.status == 204, r

    def query(self, q, chunked=False):
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=60)
        params = {"q": q, "epoch": "ms"}
        if chunked:
            params["chunked"] = "true"
        c.request("GET", "/query?" + urllib.parse.urlencode(params))
        r = c.getresponse()
        body = r.read()
        c.close()
        self.assertEqual(r.status, 200)
        self.assertLess(len(body), 9 << 20)
        if chunked:
            return vt.chunked_results(body)
        return json.loads(body)["results"]

    def test_answer_bytes_bounded(self):
        sel = "SELECT " + ", ".join(["x"] * 16) + " FROM wide"
        err = "vigild answers at most 8 MiB of JSON for one query"
        res = self.query(sel)  # 32,000 rows: some 10 MB
        self.assertEqual(len(res), 1)
        self.assertIn(err, res[0]["error"])
        # Two statements of 16,000 rows each: the first is answered, the second crosses.
        res = self.query(sel + " LIMIT 16000; " + sel + " LIMIT 16000")
        self.assertEqual(len(res[0]["series"][0]["values"]), 16000)
        self.assertIn(err, res[1]["error"])
        self.assertEqual(len(self.query(sel + " LIMIT 16000")[0]["series"][0]["values"]), 16000)

    def post_query(self, q):
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=60)
        c.request("POST", "/query", urllib.parse.urlencode({"q": q, "epoch": "ms"}),
                  {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        body = r.read()
        c.close()
        self.assertEqual(r.status, 200, body[:200])
        return body

    def test_statement_error_bounded(self):
        # review (session 26): a statement error quoting a name of the query was written whole
        # after an answer near the bound (a 60,000-byte name of '<' is 360,000 bytes escaped).
        # The failed statement's result is then one short error naming the bound.
        sel = "SELECT " + ", ".join(["x"] * 16) + " FROM wide LIMIT %d"
        lo, hi = 0, 16000  # the most rows of a second statement that fit beside 16,000
        for _ in range(15):  # bounded bisection: some 300 bytes a row
            if hi - lo <= 1:
                break
            mid = (lo + hi) // 2
            res = json.loads(self.post_query(sel % 16000 + "; " + sel % mid))["results"]
            lo, hi = (mid, hi) if "series" in res[1] else (lo, mid)
        self.assertGreater(lo, 10000)
        q = sel % 16000 + "; " + sel % lo + '; SELECT "%s"(x) FROM wide' % ("<" * 60000)
        body = self.post_query(q)
        self.assertLessEqual(len(body), (8 << 20) + 1024)
        res = json.loads(body)["results"]
        self.assertEqual(len(res[1]["series"][0]["values"]), lo)
        self.assertIn("vigild answers at most 8 MiB of JSON for one query", res[2]["error"])
        self.assertIn("the failed statement's error is left out", res[2]["error"])
        # The same error after a small answer is written whole.
        res = json.loads(self.post_query(sel % 10 + '; SELECT "%s"(x) FROM wide' % ("<" * 60000)))
        self.assertEqual(res["results"][1]["error"], "vigild does not support the function "
                         + "<" * 60000)

    def test_show_statements_bounded(self):
        # 63 statements fill q's 1,023 bytes: some 12 MB of SHOW FIELD KEYS before the bound.
        res = self.query(";".join(["SHOW FIELD KEYS"] * 63), chunked=True)
        ok = [r for r in res if "series" in r]
        self.assertGreater(len(ok), 30)
        self.assertEqual(len(ok[0]["series"]), 300 + 1 + 3)  # and "wide", the reserved three
        failed = res[len(ok)]
        self.assertIn("vigild answers at most 8 MiB of JSON for one query", failed["error"])
        self.assertEqual(len(res), 63)
        self.assertEqual(res[-1]["error"], "not executed")


if __name__ == "__main__":
    vt.main()

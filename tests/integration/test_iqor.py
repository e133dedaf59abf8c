#!/usr/bin/python3
"""vigild integration (session 33, iqor): InfluxQL edges influxd 1.6.7 answers, each sent to
vigild and to a real influxd (the InfluxdPair fixture, Debian's influxd on loopback) and compared
byte for byte: OR and parentheses in SHOW MEASUREMENTS / SHOW TAG KEYS / SHOW TAG VALUES ...
WHERE (Grafana's query builder sends "device" = 'a' OR "device" = 'b' for a multi-value
variable), LIMIT / OFFSET / SLIMIT / SOFFSET past int64, time strings (date only, space or T,
fractions, offsets), SHOW TAG VALUES without FROM (the reserved measurements listed)."""

import json
import os
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import InfluxdPair  # noqa: E402

T = 1732780800000  # ms: 2024-11-28T08:00:00Z
DEVICES = ("a1", "a2", "b1")
# Each device its own measurement with its device tag, as vigild reads it; influxd also gets
# the reserved measurements vigild keeps, a series per device in each.
POINTS = "\n".join("%s,device=%s x=%d %d" % (d, d, i, T + i * 1000) for i, d in enumerate(DEVICES))
RESERVED = "\n".join("%s,device=%s score=1 %d" % (m, d, T) for m in (
    "vigil_anomalies", "vigil_predictions", "vigil_scores") for d in DEVICES)

SHOW_OR = [
    "SHOW MEASUREMENTS WHERE device = 'a1' OR device = 'b1'",
    "SHOW MEASUREMENTS WHERE \"device\" = 'a1' OR \"device\" = 'b1' OR \"device\" = 'zz'",
    "SHOW MEASUREMENTS WHERE device = 'zz' OR device = 'yy'",
    "SHOW MEASUREMENTS WHERE device != 'a1' OR zone = 'b1'",
    "SHOW MEASUREMENTS WHERE device = 'a1' OR zone = 'b1'",
    "SHOW MEASUREMENTS WHERE zone = 'b1' OR zone != 'b1'",
    "SHOW MEASUREMENTS WHERE (device = 'a1' OR device = 'a2') AND device != 'a2'",
    "SHOW MEASUREMENTS WHERE device = 'a1' OR device = 'a2' AND device != 'a2'",
    "SHOW MEASUREMENTS WHERE device = 'a2' AND device != 'a2' OR device = 'a1'",
    "SHOW MEASUREMENTS WHERE device =~ /^a/ OR device !~ /1/",
    "SHOW MEASUREMENTS WHERE device !~ /^a/ OR device !~ /1/",
    "SHOW MEASUREMENTS WHERE ((device = 'b1')) OR (device =~ /2$/ AND device !~ /^b/)",
    "SHOW MEASUREMENTS WHERE device = 5 OR device = 'a1'",
    "SHOW MEASUREMENTS WHERE device = 'a1' OR device != true",
    "SHOW MEASUREMENTS WHERE device = 'a1' OR device = 'b1' LIMIT 1 OFFSET 1",
    "SHOW MEASUREMENTS WITH MEASUREMENT =~ /^[ab]/ WHERE device = 'a1' OR device = 'b1'",
    "SHOW TAG KEYS WHERE device = 'a1' OR device = 'b1'",
    "SHOW TAG KEYS WHERE (device = 'a1' OR device = 'b1') AND device != 'b1'",
    "SHOW TAG KEYS WHERE device = 'zz' OR zone = ''",
    "SHOW TAG KEYS WHERE device = 'zz' OR zone != ''",
    "SHOW TAG KEYS WHERE device = 'zz' OR (zone = '' AND device =~ /2/)",
    "SHOW TAG KEYS FROM a1 WHERE device = 'a1' OR device = 'b1'",
    "SHOW TAG KEYS FROM a2 WHERE device = 'a1' OR device = 'b1'",
    "SHOW TAG KEYS FROM vigil_scores WHERE device = 'zz' OR device =~ /b/",
    "SHOW TAG KEYS FROM vigil_scores WHERE device = 'zz' OR device =~ /q/",
    "SHOW TAG VALUES FROM vigil_scores WITH KEY = device WHERE device = 'a1' OR device = 'b1'",
    "SHOW TAG VALUES FROM vigil_scores WITH KEY = \"device\" WHERE (device =~ /a/ OR "
    "device = 'b1') AND device !~ /2/",
    "SHOW TAG VALUES FROM vigil_scores WITH KEY = device WHERE device = 'a1' OR device = 'a2' "
    "OR device = 'b1' LIMIT 1 OFFSET 1",
    "SHOW TAG VALUES FROM vigil_scores WITH KEY =~ /dev/ WHERE device = 'zz' OR device != 'a2'",
    # influxd's parse errors, read on past the OR
    "SHOW MEASUREMENTS WHERE device = 'a1' OR",
    "SHOW MEASUREMENTS WHERE (device = 'a1' OR device = 'b1'",
    "SHOW TAG KEYS WHERE device = 'a1' OR device = 'b1')",
    "SHOW TAG KEYS WHERE device = 'a1' OR OR device = 'b1'",
    "SHOW TAG VALUES WITH KEY = device WHERE device = 'a1' OR device = ",
    "SHOW TAG VALUES WITH KEY = device WHERE (device = 'a1') OR device =~ /(/",
]


class ShowOr(InfluxdPair):
    """OR, parentheses and AND/OR mixed in a SHOW statement's WHERE, as influxd answers them."""

    POINTS = POINTS
    INFLUXD_ONLY = RESERVED

    def test_show_where_or_as_influxd(self):
        self.assert_same(SHOW_OR)

    def test_show_where_or_grafana_post(self):
        # Grafana's POST mode, the multi-value variable's OR of three values.
        self.assert_same(["SHOW TAG VALUES FROM \"vigil_scores\" WITH KEY = \"device\" WHERE "
                          "\"device\" = 'a1' OR \"device\" = 'a2' OR \"device\" = 'b1'"],
                         method="POST")

    def test_or_regexes_each_counted(self):
        # The per-query regex budget (iqwhere, 8,000 units) counts each regex under OR and in
        # parentheses: /a{399}/ is 400 units, 20 of them pass, 21 are refused, as joined by AND.
        for op in (" OR ", " AND ", ") OR ("):
            q = lambda n: "SHOW TAG KEYS WHERE (" + op.join(["device =~ /a{399}/"] * n) + ")"
            status, body = self.query(self.d.http_port, q(20), method="POST")
            self.assertEqual((status, body), (200, b'{"results":[{"statement_id":0}]}'))
            status, body = self.query(self.d.http_port, q(21), method="POST")
            self.assertEqual(status, 400, body)
            self.assertIn(b"vigild compiles regular expressions of at most 8000 units", body)

    def test_tag_values_without_from_leave_reserved_out(self):
        # influxd lists each measurement's values under its name, the reserved three among them;
        # vigild leaves those three out of this list (README: every device's id thrice more).
        q = "SHOW TAG VALUES WITH KEY = device WHERE device = 'a1' OR device = 'b1'"
        status, body = self.query(self.influxd.port, q)
        want = json.loads(body)["results"][0]["series"]
        self.assertIn("vigil_scores", [x["name"] for x in want])
        got = self.vigild(q)["results"][0]["series"]
        self.assertEqual(got, [x for x in want if not x["name"].startswith("vigil_")])

    def test_too_many_conditions_named(self):
        q = "SHOW MEASUREMENTS WHERE " + " OR ".join("device = 'd%d'" % i for i in range(33))
        ans = self.vigild(q)
        self.assertEqual(ans["results"][0]["error"], "vigild does not support more than 32 "
                         "conditions in a SHOW statement's WHERE")
        q = "SHOW MEASUREMENTS WHERE " + " OR ".join("device = 'd%d'" % i for i in range(31))
        self.assertNotIn("error", self.vigild(q + " OR device = 'a1'")["results"][0])
        # 16 levels of parentheses are read, 17 named; 1,000 still read on for parse errors.
        deep = lambda n: "SHOW TAG KEYS WHERE " + "(" * n + "device = 'a1'" + ")" * n
        self.assertEqual(self.vigild(deep(16)), self.vigild("SHOW TAG KEYS WHERE device = 'a1'"))
        self.assertEqual(self.vigild(deep(17))["results"][0]["error"], "vigild does not support "
                         "parentheses nested more than 16 deep in a SHOW statement's WHERE")
        self.assertEqual(self.vigild(deep(900))["results"][0]["error"], "vigild does not support "
                         "parentheses nested more than 16 deep in a SHOW statement's WHERE")
        self.assert_same([deep(17)[:-1], deep(900) + ")"])  # influxd's parse errors


BIG = "9223372036854775808"  # int64's largest + 1
LIMITS = [
    "SELECT x FROM a1 LIMIT " + BIG,
    "SELECT x FROM a1 LIMIT 99999999999999999999",
    "SELECT x FROM a1 OFFSET " + BIG,
    "SELECT x FROM a1 LIMIT 9223372036854775807 OFFSET " + BIG,
    "SELECT x FROM a1 SLIMIT %s SOFFSET %s" % (BIG, BIG),
    "SELECT x FROM a1 SLIMIT " + BIG,
    "SELECT count(x) FROM a1 WHERE time >= %dms AND time < %dms GROUP BY time(1s) LIMIT %s"
    % (T, T + 3000, BIG),
    "SELECT count(x) FROM a1 WHERE time >= %dms AND time < %dms GROUP BY time(1s) fill(0) "
    "LIMIT 1 OFFSET %s" % (T, T + 3000, BIG),
    "SHOW MEASUREMENTS LIMIT " + BIG,
    "SHOW MEASUREMENTS OFFSET " + BIG,
    "SHOW MEASUREMENTS LIMIT %s OFFSET 1" % BIG,
    "SHOW TAG KEYS LIMIT " + BIG,
    "SHOW TAG KEYS SLIMIT %s SOFFSET 0" % BIG,
    "SHOW TAG VALUES FROM vigil_scores WITH KEY = device LIMIT %s OFFSET 2" % BIG,
    "SHOW TAG VALUES FROM vigil_scores WITH KEY = device OFFSET 99999999999999999999",
    "SELECT x FROM a1 LIMIT -1",  # influxd's parse errors, as before
    "SELECT x FROM a1 LIMIT 1.5",
]

# Each compared with time: a date alone, space or T, fractions (to the nanosecond), offsets,
# and what influxd calls an invalid timestamp string.
TIMES = ["'2024-01-02'", "'2024-11-28'", "'2024-11-29'", "'1969-12-31'", "'2024-02-29'",
         "'2024-11-28 08:00:00'", "'2024-11-28 08:00:01.000'", "'2024-11-28 08:00:00.000000001'",
         "'2024-11-28 07:59:59.999999999'", "'2024-11-28 08:00:01,5'", "'2024-11-28 8:00:01'",
         "'2024-11-28T08:00:01Z'", "'2024-11-28T08:00:00.000000001Z'", "'2024-11-28T8:00:01Z'",
         "'2024-11-28T09:00:01+01:00'", "'2024-11-28T07:00:01.5-01:00'",
         "'2024-11-28T08:00:01-00:00'", "'2024-11-28T08:00:01,5Z'",
         # invalid timestamp strings
         "'2024-11-28T08:00:00'", "'2024-11-28 09:00:00+01:00'", "'2024-11-28 08:00:00Z'",
         "'2024-11-28T08:00Z'", "'2024-11-28 08:00'", "'2024-02-30'", "'2023-02-29'",
         "'2024-11-28 07:59:60'", "'2024-11-28T24:00:00Z'", "'2024-11-28 08:00:00.'",
         "'2024-11-28T08:00:00.Z'", "'2024-11-28 08:00:00.0000000001'", "'2024-11-28t08:00:00z'",
         "'2024-11-28T09:00:00+1:00'", "'2024-11-28 '", "'2024-11-28x08:00:00'",
         "'2024-11-28 08:0:00'", "'2024-11-28z'", "'2024-11-28T08:00:00+01'"]


class LimitsAndTimes(InfluxdPair):
    """LIMIT, OFFSET, SLIMIT and SOFFSET past int64 (influxd: its largest), and time strings."""

    POINTS = POINTS
    INFLUXD_ONLY = RESERVED

    def test_counts_past_int64_as_influxd(self):
        self.assert_same(LIMITS)

    def test_time_strings_as_influxd(self):
        qs = []
        for t in TIMES:
            for op in (">=", ">", "<"):
                qs.append("SELECT x FROM a1 WHERE time %s %s" % (op, t))
        qs += ["SELECT x FROM a2 WHERE time >= '2024-11-28' AND time < '2024-11-28 08:00:01.5'",
               "SELECT count(x) FROM a2 WHERE time >= '2024-11-28 08:00:00' AND time < "
               "'2024-11-28T08:00:10Z' GROUP BY time(5s)",
               "SELECT x FROM a2 WHERE time >= '2024-11-28' + 8h AND time < '2024-11-29' - 1d + 9h",
               "SELECT x FROM a2 WHERE time > '2024-11-28 08:00:00.999999999' - 1ns"]
        self.assert_same(qs)

    def test_time_string_bounds_as_influxd(self):
        # review: influxd's time literals run from int64's least + 3 ns to its largest - 1.
        # Before 1970 the seconds were multiplied out before the fraction was added, so the
        # first 1677 times influxd reads were vigild's "does not support this time"; int64's
        # largest itself read as a time where influxd says it overflows.
        self.assert_same(["SELECT x FROM a1 WHERE time %s" % c for c in (
            "< '1677-09-21T00:12:43.145224195Z'", "> '1677-09-21T00:12:43.145224196Z'",
            "> '1677-09-21 00:12:44'", "> '1677-09-21T01:12:43.145224195+01:00'",
            "> '1969-12-31T23:59:59.5Z'", "< '2262-04-11T23:47:16.854775806Z'")])
        for t in ("2262-04-11T23:47:16.854775807Z", "1677-09-21T00:12:43.145224194Z",
                  "1677-09-21", "2300-01-01", "2262-04-11T23:47:17Z"):
            q = "SELECT x FROM a1 WHERE time > '%s'" % t
            status, body = self.query(self.influxd.port, q)
            self.assertEqual(status, 200, body)
            self.assertRegex(json.loads(body)["results"][0]["error"], "flows time literal$")
            self.assertEqual(self.vigild(q)["results"][0]["error"],
                             "vigild does not support this time: %s" % t)

    def test_number_and_duration_as_influxd(self):
        # A float with a duration (2.0 * 1h) is unreduced in influxd: no point meets it.
        self.assert_same(["SELECT x FROM a1 WHERE %s" % c for c in (
            "2.0 * 1h = 2h", "2.0 * 1h != 1h", "2.0 / 1h > 0", "2.5 % 1h = 2h", "2.0 + 1h > 0",
            "2.0 - 1h < 1h", "2.0 * 1h = 2h OR true",
            "1h * 2.0 = 2h", "2 * 1h = 2h", "2.0 * 1h = 7200000000000")])


class TagValuesWithoutFrom(InfluxdPair):
    """SHOW TAG VALUES without FROM: LIMIT and OFFSET count each measurement's values, as
    influxd's (a device's one: LIMIT 1 keeps every device, OFFSET 1 none); influxd here holds no
    reserved measurement, which vigild leaves out of this list (README)."""

    POINTS = POINTS

    def test_tag_values_without_from_as_influxd(self):
        self.assert_same([
            "SHOW TAG VALUES WITH KEY = device",
            "SHOW TAG VALUES WITH KEY = device LIMIT 1",
            "SHOW TAG VALUES WITH KEY = device LIMIT 2 OFFSET 1",
            "SHOW TAG VALUES WITH KEY = device OFFSET 1",
            "SHOW TAG VALUES WITH KEY = device WHERE device = 'a1' OR device = 'b1' LIMIT 1",
            "SHOW TAG VALUES WITH KEY = device WHERE device != 'a2' OR device = 'zz'",
            "SHOW TAG VALUES WITH KEY = device WHERE (device != 'a2' OR device = 'zz') AND "
            "device !~ /b/ LIMIT 1 OFFSET 0"])


if __name__ == "__main__":
    vt.main()

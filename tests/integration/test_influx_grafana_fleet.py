#!/usr/bin/python3
"""vigild integration: Grafana's InfluxDB data source (InfluxQL) over a fleet, against vigild and
a real influxd 1.6.7 holding the same points (influxpair.py's InfluxdPair), answered byte for
byte alike: a fleet's merged series, multi-value template variables (regexes of hundreds of
devices, long tokens and names), SHOW without FROM with Go's escapes, and the empty string.
Moved out of test_influx_grafana.py (session 52), which keeps Grafana's statements (G_SAME),
the answer's 8 MiB bound and vigild's own series."""

import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import G_T, InfluxdPair, g_range  # noqa: E402


# A fleet: two devices of one measurement, one without the channel y, 2,000 points each.
F_POINTS = "\n".join(
    ["fleet,device=f1 x=%d.5,y=%d.25 %d" % (i % 97, i % 13, G_T + i * 1000) for i in range(2000)]
    + ["fleet,device=f2 x=%d.75 %d" % (i % 89, G_T + i * 1000 + 500) for i in range(2000)]
    # A third device (raw merges sort and cut their rows as they read), and points after a gap
    # of 1,000 s (review32).
    + ["fleet,device=f3 x=%d.125 %d" % (i % 7, G_T + i * 1000 + 250) for i in range(500)]
    + ["fleet,device=f1 x=1.5 %d" % (G_T + 3000 * 1000),
       "fleet,device=f2 x=2.5 %d" % (G_T + 3000 * 1000 + 500)])


class GrafanaFleet(InfluxdPair):
    """A fleet panel: several devices without GROUP BY "device" are one series merging them, as
    influxd answers it. Default bounds: 2,000 one-second buckets of 16 fields are three of
    vigild's accumulator windows (MERGE_WINDOW_BYTES), each device read once per window."""

    POINTS = F_POINTS

    def test_fleet_as_influxd(self):
        fields = ", ".join("%s(%s)" % (fn, ch) for fn in ("mean", "min", "max", "sum",
                                                         "count", "first", "last", "mean")
                           for ch in ("x", "y"))
        rng = "time >= %dms AND time < %dms" % (G_T, G_T + 2000 * 1000)
        self.assert_same([
            "SELECT %s FROM fleet WHERE device =~ /^f/ AND %s GROUP BY time(1s)" % (fields, rng),
            "SELECT %s FROM fleet WHERE device =~ /^f/ AND %s GROUP BY time(1s) ORDER BY time DESC"
            % (fields, rng),
            # LIMIT and OFFSET across a window's edge (819 buckets of 16 fields a window).
            "SELECT %s FROM fleet WHERE device =~ /f/ AND %s GROUP BY time(1s) LIMIT 30 OFFSET 805"
            % (fields, rng),
            "SELECT mean(x), count(y) FROM fleet WHERE device =~ /^f(1|2)$/ AND %s "
            "GROUP BY time(7m) fill(0)" % rng,
            "SELECT max(x), min(y) FROM fleet WHERE device =~ /^f/",
            "SELECT mean(x) FROM fleet WHERE device =~ /^f/ AND time > %dms AND time < %dms "
            "GROUP BY time(10m)" % (G_T + 2000 * 1000, G_T + 2900 * 1000),  # past both ends
            # Raw points of three devices: the rows are cut to LIMIT + OFFSET while the third
            # is read (review32).
            "SELECT x, y FROM fleet WHERE device =~ /^f/ AND %s LIMIT 300 OFFSET 100" % rng,
            "SELECT y, x FROM fleet WHERE device =~ /^f/ AND %s ORDER BY time DESC LIMIT 300 "
            "OFFSET 650" % rng,
            # A range in a gap of every device's readings (within each one's first and last):
            # no series, as for one device (review32: before, a series of null buckets).
            "SELECT mean(x), count(x) FROM fleet WHERE device =~ /^f/ AND time >= %dms AND "
            "time < %dms GROUP BY time(10s) fill(0)" % (G_T + 2500 * 1000, G_T + 2600 * 1000),
            "SELECT last(x) FROM fleet WHERE device =~ /^f/ AND time >= %dms AND time < %dms "
            "GROUP BY time(10s) ORDER BY time DESC" % (G_T + 2500 * 1000, G_T + 2600 * 1000),
            # The same range's first window empty, a point in a later one (of 1,000 windows of
            # 819 buckets): every bucket, as influxd fills them.
            "SELECT max(x), min(x), mean(x), sum(x), count(x), first(x), last(x), max(x), "
            "min(x), mean(x), sum(x), count(x), first(x), last(x), max(x), mean(x) FROM fleet "
            "WHERE device =~ /^f/ AND time >= %dms AND time <= %dms GROUP BY time(1s)"
            % (G_T - 900 * 1000, G_T + 3000 * 1000),
        ])


# A fleet of 300 pumps in Telegraf's shape (measurement "plant", a device tag), two points each.
M_IDS = ["plant-north-pump-%03d" % i for i in range(1, 301)]
M_POINTS = "\n".join("plant,device=%s temp=%d.5 %d" % (d, i % 50, G_T + k * 5000)
                     for i, d in enumerate(M_IDS) for k in range(2))


def grafana_all(ids):
    """A multi-value template variable as Grafana's InfluxDB data source expands it into a
    regex: each value's regex characters escaped ('-' too), joined by '|'."""
    return "/^(%s)$/" % "|".join(d.replace("-", "\\-") for d in ids)


class GrafanaMultiValue(InfluxdPair):
    """A dashboard over a fleet with a multi-value variable ("All", or 200 of 300 pumps
    selected): Grafana sends one regex of every value, queries of several KiB (vigild refused a
    q over 1,023 bytes before session 25, influxd answered them). Answered byte for byte as
    influxd answers them, from the URL (GET) and from a form body (Grafana's POST mode)."""

    POINTS = M_POINTS

    def test_regex_of_200_devices_as_influxd(self):
        some = grafana_all(M_IDS[:200])
        self.assertTrue(4096 < len(some) < 8192, len(some))
        rng = "time >= %dms and time <= %dms" % (G_T, G_T + 60000)
        statements = [
            'SELECT mean("temp") FROM "plant" WHERE ("device" =~ %s) AND %s GROUP BY time(10s), '
            '"device" fill(null)' % (some, rng),
            'SELECT mean("temp") FROM "plant" WHERE ("device" =~ %s) AND %s GROUP BY time(10s) '
            'fill(null)' % (some, rng),
            'SELECT last("temp") FROM "plant" WHERE "device" =~ %s GROUP BY "device"'
            % grafana_all(M_IDS),
            'SHOW TAG VALUES FROM "plant" WITH KEY = "device" WHERE "device" =~ %s' % some,
        ]
        self.assert_same(statements)
        for method in ("GET", "POST"):
            want, got = self.both(statements[0], method=method)
            self.assertEqual(got, want, method)
            series = json.loads(got[1])["results"][0]["series"]
            self.assertEqual([x["tags"]["device"] for x in series], M_IDS[:200])

    def test_long_tokens_as_influxd(self):
        # Tokens longer than vigild read before (255 bytes), quoted whole in influxd's parse
        # error (past api__error's 511-byte message), or naming no device.
        long = "x" * 3000
        self.assert_same([
            "SELECT temp FROM plant LIMIT '%s'" % long,
            "SELECT temp FROM plant WHERE device = 'a' AND time > %sms x" % ("1" * 40),
            'SELECT mean(temp) FROM "%s" WHERE %s' % (long, g_range(0, 60)),
            'SELECT mean(temp) FROM plant WHERE device = \'%s\'' % long,
        ])

    def test_long_names_as_influxd(self):
        # review: SELECT kept its field names, aliases, FROM name and device in 256-byte
        # copies: a field name past them overflowed the statement's heap block (ASan: 400 bytes;
        # 20,000 corrupted the heap), an alias or a repeated name came back cut.
        one = "device = 'plant-north-pump-001' AND " + g_range(0, 60)
        self.assert_same([
            'SELECT mean(temp) AS "%s" FROM plant WHERE %s GROUP BY time(10s)' % ("a" * 300, one),
            'SELECT temp, temp, "%s", "%s" FROM plant WHERE %s' % ("c" * 300, "c" * 300, one),
            'SELECT mean("%s") FROM plant WHERE %s' % ("c" * 400, one),
            'SELECT mean("%s") FROM plant WHERE %s' % ("c" * 20000, one),
            # a statement error naming a long name (run->err was 320 bytes)
            'SHOW RETENTION POLICIES ON "%s"' % ("d" * 400),
        ])
        # Any FROM name with GROUP BY the device tag lists the devices (vigild keeps no
        # measurement: README), under that name, whole.
        ans = self.vigild('SELECT last(temp) FROM "%s" GROUP BY "device"' % ("p" * 300))
        self.assertEqual({x["name"] for x in ans["results"][0]["series"]}, {"p" * 300})

    def test_regex_bounds(self):
        # 1,000 alternatives (Grafana's "All" over 1,000 devices) are read; a 1,001st is
        # vigild's 400 (glibc's regcomp grows with their square; influxd takes it).
        names = ["plant-north-pump-%04d" % i for i in range(1, 1002)]
        q = 'SELECT last("temp") FROM "plant" WHERE "device" =~ %s GROUP BY "device"'
        ans = self.vigild(q % grafana_all(names[:1000]), method="POST")
        self.assertEqual(len(ans["results"][0].get("series", [])), 0)  # 4-digit names: none
        status, body = self.query(self.d.http_port, q % grafana_all(names), method="POST")
        self.assertEqual(status, 400, body)
        self.assertIn(b"vigild reads regular expressions of at most 1000 alternatives", body)


# Each device its own measurement, tagged with its id as vigild keeps it, and a channel with
# the characters Go's encoding/json escapes in its name. influxd also gets points shaped as
# vigild's three reserved measurements list their fields and tag.
S_POINTS = "\n".join([
    "s1,device=s1 a=1.5,b=2 %d" % G_T, "s2,device=s2 a=3 %d" % G_T,
    "esc,device=esc a<b=1,c&d>=2.5 %d" % G_T, "esc,device=esc a<b=2 %d" % (G_T + 1000)])
S_RESERVED = "\n".join([
    'vigil_anomalies,device=s1 channels="a",continues=1,end=1,ended_by="x",fault=1,id=1,'
    'note="n",opened_by="o",peak_score=1,text="t" %d' % G_T,
    "vigil_predictions,device=s1 a=1,a<b=1,b=1,c&d>=1 %d" % G_T,
    "vigil_scores,device=s1 score=1,state=1 %d" % G_T])


class GrafanaShowAll(InfluxdPair):
    """SHOW FIELD KEYS and SHOW TAG KEYS without FROM list every measurement, vigild's reserved
    three among them, and strings are escaped as Go's encoding/json escapes them (< > &)."""

    POINTS = S_POINTS
    INFLUXD_ONLY = S_RESERVED

    def test_show_without_from_as_influxd(self):
        self.assert_same(["SHOW FIELD KEYS", "SHOW TAG KEYS", "SHOW TAG KEYS ON g",
                          "SHOW FIELD KEYS; SHOW TAG KEYS", 'SHOW FIELD KEYS FROM "vigil_scores"',
                          'SHOW TAG VALUES WITH KEY = "device" WHERE device !~ /1/'])

    def test_go_escapes_as_influxd(self):
        self.assert_same(['SHOW FIELD KEYS FROM esc', 'SELECT "a<b", "c&d>" FROM esc',
                          'SELECT mean("a<b") AS "x>y&z" FROM esc',
                          'SHOW MEASUREMENTS WITH MEASUREMENT =~ /^e[^<>&]c$/'])
        # The JSON routes keep their own writer.
        self.assertIn('"c&d>"', self.d.curl("GET", "/v1/devices/esc").body.decode())


class EmptyString(InfluxdPair):
    """'' is the empty string as a value (session 25: vigild read it as the device "STRING", the
    name influxd prints for it in a parse error): no device has that name, so = '' selects
    nothing and != '' everything, as from influxd, with a device named STRING written."""

    POINTS = "\n".join(["plant,device=STRING temp=1.5 %d" % G_T,
                        "plant,device=e1 temp=2.5 %d" % G_T])

    def test_empty_string_as_influxd(self):
        rng = g_range(-10, 10)
        statements = [
            "SELECT temp FROM plant WHERE \"device\" = ''",
            "SELECT mean(temp) FROM plant WHERE (\"device\" = '') AND %s GROUP BY time(10s) "
            "fill(null)" % rng,
            "SELECT last(temp) FROM plant WHERE \"device\" = '' GROUP BY \"device\"",
            "SELECT temp FROM plant WHERE \"device\" = '' AND \"device\" = ''",
            "SELECT temp FROM \"STRING\" WHERE device = ''",
            "SHOW TAG VALUES FROM plant WITH KEY = \"device\" WHERE \"device\" = ''",
            "SHOW TAG VALUES FROM plant WITH KEY = \"device\" WHERE \"device\" != ''",
            # The device named STRING is still read by its name; '' still prints as STRING
            # in influxd's parse error.
            "SELECT temp FROM plant WHERE \"device\" = 'STRING'",
            "SHOW TAG VALUES FROM plant WITH KEY = \"device\" WHERE \"device\" = 'STRING'",
            "SHOW MEASUREMENTS LIMIT ''",
        ]
        self.assert_same(statements)
        # Not vacuous: STRING's point is there to be (wrongly) read, and = '' reads none.
        one = self.vigild(statements[7])["results"][0]
        self.assertEqual(one["series"][0]["values"], [[G_T, 1.5]])
        self.assertNotIn("series", self.vigild(statements[0])["results"][0])
        tv = self.vigild(statements[6])["results"][0]["series"][0]["values"]
        self.assertEqual(tv, [["device", "STRING"], ["device", "e1"]])


if __name__ == "__main__":
    vt.main()

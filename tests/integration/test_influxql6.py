#!/usr/bin/python3
"""vigild integration (session 52, task influx12): InfluxQL leftovers, fourth pass, each statement
sent to vigild and to a real influxd 1.6.7 (the InfluxdPair fixture, Debian's influxd on
loopback) holding the same points and compared byte for byte: a whole answer's series of more
than 10,000 rows (influxd's default chunk size; SHOW SERIES' keys too, ManySeries's 10,001
devices) ending in "partial":true, a chunk_size longer
than 127 bytes read as Go's ParseInt reads it, SHOW FIELD KEYS cut by chunk_size, and a
retention policy influxd does not hold in influxd's words. The points: a device written as a
measurement of its own with the device tag (a1, five points of two fields), Telegraf's shape
(pump,device=t1, t2, t3), and big, 10,005 points of one device: test_influxql5.py's."""

import http.client
import os
import sys
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402,F401  (DaemonTestCase, through InfluxdPair)
from influxpair import InfluxdPair  # noqa: E402
import test_influxql5 as ql5  # noqa: E402

# test_influxql5.py's points (a module, not its classes: those would run here too)
POINTS = ql5.POINTS


class Leftovers(InfluxdPair):
    """Session 51's "Noticed, not changed" list, each case compared with influxd 1.6.7."""

    POINTS = POINTS

    @staticmethod
    def ask(port, q, method="GET", **extra):
        """/query's answer, the parameters in the URL (GET) or a form body (POST); extra's None
        values are not sent."""
        params = {"db": "g", "q": q, "epoch": "ms"}
        params.update(extra)
        enc = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        if method == "GET":
            c.request("GET", "/query?" + enc)
        else:
            c.request("POST", "/query", enc, {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    compare = ql5.ChunkSize.compare  # cases: (query, the parameters besides db, q and epoch)

    def test_whole_series_past_10000_rows_partial_as_influxd(self):
        # influx12: answered whole, influxd 1.6.7 still cuts a series at its default chunk size
        # (10,000 rows) and joins the pieces, the first's "partial":true kept; vigild omitted it
        whole = {}
        cases = [("SELECT x FROM big", whole), ("SELECT x FROM big LIMIT 10001", whole),
                 ("SELECT x FROM big LIMIT 10000", whole),  # exactly 10,000: none
                 ("SELECT x FROM big LIMIT 10001 OFFSET 4", whole),
                 ("SELECT x FROM big LIMIT 10001 OFFSET 5", whole),  # 10,000 left: none
                 ("SELECT x FROM big ORDER BY time DESC", whole),
                 ("SELECT x FROM big WHERE device = 'big' GROUP BY device", whole),
                 ("SELECT x FROM big; SELECT x FROM a1", whole),
                 ("SELECT x FROM a1; SELECT x FROM big LIMIT 10002", whole),
                 ("SELECT x FROM big", {"chunk_size": "3"}),  # not read without chunked=true
                 ("SELECT x FROM big", {"chunked": "true"})]  # chunked: as before
        answers = self.compare(cases, "a whole series past 10,000 rows")
        self.assertEqual([a[1].count(b'"partial":true') for a in answers],
                         [1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 2])

    def test_whole_group_by_time_past_10000_buckets_as_influxd(self):
        # review (influx12): GROUP BY time()'s buckets are a series' rows too, the empty ones
        # fill() writes included; big's points are 1 s apart from T, 10,005 of them
        def span(seconds):
            return "time >= %dms AND time < %dms" % (ql5.T, ql5.T + 1000 * seconds)
        whole = {}
        cases = [("SELECT mean(x) FROM big WHERE %s GROUP BY time(1s)" % span(10005), whole),
                 ("SELECT mean(x) FROM big WHERE %s GROUP BY time(1s)" % span(10000), whole),
                 ("SELECT count(x) FROM big WHERE %s GROUP BY time(500ms)" % span(6000), whole),
                 ("SELECT max(x) FROM big WHERE %s GROUP BY time(500ms) fill(none)" % span(6000),
                  whole),
                 ("SELECT mean(x) FROM big WHERE %s GROUP BY time(500ms) fill(0)" % span(5001),
                  whole),
                 ("SELECT mean(x) FROM big WHERE %s GROUP BY time(500ms) fill(0)" % span(5000),
                  whole),
                 # device = 'big': without it vigild cannot tell big's points were tagged
                 ("SELECT mean(x), max(x) FROM big WHERE device = 'big' AND %s GROUP BY "
                  "time(1s), device ORDER BY time DESC" % span(10005), whole),
                 ("SELECT mean(x) FROM big WHERE %s GROUP BY time(1s) LIMIT 10001 OFFSET 2"
                  % span(10005), whole),
                 # Grafana's graph panel: its $timeFilter and $__interval, fill(null)
                 ('SELECT mean("x") FROM "big" WHERE ("device" =~ /^big$/) AND time >= %dms and '
                  'time <= %dms GROUP BY time(1s) fill(null)' % (ql5.T, ql5.T + 10004999), whole),
                 ("SELECT mean(x) FROM big WHERE %s GROUP BY time(1s)" % span(10005),
                  {"chunked": "true"})]
        answers = self.compare(cases, "a whole GROUP BY time() past 10,000 buckets")
        self.assertEqual([a[1].count(b'"partial":true') for a in answers],
                         [1, 0, 1, 0, 1, 0, 1, 1, 1, 2])

    def test_long_chunk_size_as_influxd(self):
        # influx12: Go's strconv.ParseInt reads any number of leading zeros; vigild read a value
        # longer than its 127-byte buffer as the default (10,000 rows). Overflow, a sign alone,
        # another character: ParseInt's error, influxd's default.
        z = "0" * 200
        cases = [(q, dict(extra, chunked="true")) for q, extra in [
            ("SELECT x FROM a1", {"chunk_size": z + "1"}),
            ("SELECT x FROM a1", {"chunk_size": z + "2"}),
            ("SELECT x FROM a1", {"chunk_size": "+" + z + "2"}),
            ("SELECT x FROM a1", {"chunk_size": "-" + z + "2"}),
            ("SELECT x FROM a1", {"chunk_size": "0" * 5000 + "3"}),
            ("SELECT x FROM a1", {"chunk_size": z + "9223372036854775807"}),
            ("SELECT x FROM big", {"chunk_size": z + "9223372036854775808"}),  # overflow
            ("SELECT x FROM big", {"chunk_size": z + "99999999999999999999"}),
            ("SELECT x FROM a1", {"chunk_size": z + "1x"}),
            ("SELECT x FROM a1", {"chunk_size": z}),  # zero: the default
            ("SELECT x FROM a1", {"chunk_size": z + "1", "method": "POST"}),
            ("SELECT x FROM a1", {"chunk_size": "0" * 100000 + "2", "method": "POST"})]]
        answers = self.compare(cases, "a long chunk_size")
        self.assertEqual([a[1].count(b"\n") for a in answers],
                         [5, 3, 3, 1, 2, 1, 2, 2, 1, 1, 5, 3])

    def test_show_field_keys_by_chunk_size_as_influxd(self):
        # influx12: influxd cuts SHOW FIELD KEYS' rows (a measurement's fields) by chunk_size;
        # vigild sent a measurement's fields in one document
        cases = [(q, {"chunked": "true", "chunk_size": size}) for q, size in [
            ("SHOW FIELD KEYS FROM a1", "1"), ("SHOW FIELD KEYS FROM a1", "2"),
            ("SHOW FIELD KEYS FROM a1", "3"), ("SHOW FIELD KEYS FROM a1 OFFSET 1", "1"),
            ("SHOW FIELD KEYS ON g FROM a1", "1"),
            ("SHOW FIELD KEYS FROM a1; SHOW FIELD KEYS FROM a1", "1"),
            ("SHOW FIELD KEYS FROM a1 LIMIT 1", "1"), ("SHOW FIELD KEYS FROM a1", None)]]
        cases.append(("SHOW FIELD KEYS FROM a1", {"chunk_size": "1"}))  # whole: not read
        answers = self.compare(cases, "SHOW FIELD KEYS by chunk_size")
        self.assertEqual(answers[0][1].count(b"\n"), 2, answers[0])  # x, then y
        # without FROM (vigild's devices, not influxd's measurements: not compared), a1's
        # series is cut alike, the next series' document after it
        status, body = self.ask(self.d.http_port, "SHOW FIELD KEYS", chunked="true",
                                chunk_size="1")
        self.assertEqual(status, 200, body)
        head = b'{"name":"a1","columns":["fieldKey","fieldType"],"values":'
        self.assertIn(head + b'[["x","float"]],"partial":true}],"partial":true}]}\n', body)
        self.assertIn(head + b'[["y","float"]]}],"partial":true}]}\n', body)

    def test_other_policy_in_influxd_words(self):
        # influx12: a policy influxd does not hold ends the run in its words, "retention policy
        # not found: rp2"; vigild said "vigild does not support a retention policy other than
        # autogen". Whole (the last statement, its error) and chunked (a document each).
        qs = ["SHOW TAG KEY CARDINALITY FROM g.rp2.a1 GROUP BY device",
              "SHOW TAG KEY CARDINALITY FROM g.rp2.a1", "SELECT x FROM g.rp2.a1",
              "SELECT x FROM rp2.a1", "SHOW FIELD KEYS FROM g.rp2.a1",
              "SHOW SERIES FROM g.rp2.a1", "SELECT x FROM a1; SELECT x FROM g.rp2.a1",
              "SELECT x FROM g.rp2.a1; SELECT x FROM a1"]
        self.compare([(q, extra) for q in qs for extra in ({}, {"chunked": "true"})],
                     "another policy in influxd's words")

    def test_time_of_a_tag_as_influxd(self):
        # influx12: GROUP BY time(x::tag), in SELECT and a grouped cardinality statement
        qs = ["SELECT mean(x) FROM a1 WHERE time > 0 GROUP BY time(x::tag)",
              "SELECT mean(x) FROM a1 WHERE time > 0 GROUP BY time(1h, x::tag)",
              "SHOW TAG KEY CARDINALITY FROM a1 GROUP BY time(x::tag)",
              "SHOW SERIES CARDINALITY FROM a1 GROUP BY time(1h, x::tag)"]
        self.compare([(q, extra) for q in qs for extra in ({}, {"chunked": "true"})],
                     "time() of a tag")

    def test_rp_parameter_as_influxd(self):
        # influx13: /query?rp=rp2 is the policy of every source naming none (db..name, /re/ as
        # well), and influxd's "retention policy not found: rp2" ends the run; vigild ignored the
        # parameter. SHOW TAG KEYS and TAG VALUES (any policy), a source naming autogen, and the
        # statements without a source answer as before; rp=autogen and an empty rp as now.
        qs = ["SELECT x FROM a1", "SELECT x FROM g..a1", "SELECT x FROM /a/",
              "SELECT x FROM a1, pump", "SELECT x FROM g.autogen.a1",
              "SELECT x FROM a1; SELECT x FROM g.autogen.a1", "SHOW FIELD KEYS FROM a1",
              "SHOW SERIES FROM a1", "SHOW SERIES FROM /a/", "SHOW TAG KEY CARDINALITY FROM a1",
              "SHOW TAG KEYS FROM a1", "SHOW TAG VALUES FROM a1 WITH KEY = device",
              "SHOW MEASUREMENTS WITH MEASUREMENT = a1", "SHOW RETENTION POLICIES",
              "SHOW FIELD KEYS", "SHOW SERIES", "SHOW TAG KEY CARDINALITY",
              "SHOW TAG KEY EXACT CARDINALITY", "SHOW FIELD KEY CARDINALITY ON g",
              "SHOW TAG VALUES EXACT CARDINALITY WITH KEY = device",
              "SHOW SERIES EXACT CARDINALITY", "SHOW SERIES CARDINALITY FROM a1",
              "SHOW MEASUREMENT EXACT CARDINALITY",
              "SHOW SERIES CARDINALITY"]
        cases = [(q, dict(extra, rp="rp2")) for q in qs for extra in ({}, {"chunked": "true"})]
        cases += [(q, {"rp": rp}) for q in qs[:2] for rp in ("AUTOGEN", '"rp2"', "autogen", "")]
        cases += [("SELECT x FROM a1", {"rp": "rp2", "method": "POST"}),
                  ("SELECT x FROM a1", {"rp": "autogen", "method": "POST"})]
        answers = self.compare(cases, "the rp parameter")
        self.assertEqual(sum(b"retention policy not found" in a[1] for a in answers), 40)

    def test_rp_parameter_order_and_length_as_influxd(self):
        # review (influx13): a cardinality statement with GROUP BY (or SHOW MEASUREMENT
        # CARDINALITY with a LIMIT or OFFSET other than 0) is no estimate to influxd, so rp=rp2
        # is its "retention policy not found", before vigild's "does not support GROUP BY"
        # (influxd's own dimension errors, before any reason of vigild's, and a database not
        # found still first); an rp of any length, as influxd (the branch read one past 255
        # bytes as absent)
        rp2 = {"rp": "rp2"}
        cases = [("SHOW MEASUREMENT CARDINALITY WHERE device = 'a1'", rp2),
                 ("SHOW SERIES CARDINALITY WHERE device = 'a1'", rp2),
                 ("SHOW SERIES CARDINALITY GROUP BY device", rp2),
                 ("SHOW SERIES CARDINALITY GROUP BY time(1s)", rp2),
                 ("SHOW SERIES EXACT CARDINALITY GROUP BY device", rp2),
                 ("SHOW SERIES CARDINALITY FROM a1 GROUP BY device", rp2),
                 ("SHOW SERIES CARDINALITY FROM g.rp2.a1 GROUP BY device", {}),
                 ("SHOW MEASUREMENT CARDINALITY GROUP BY device", rp2),
                 ("SHOW MEASUREMENT CARDINALITY LIMIT 1", rp2),
                 ("SHOW MEASUREMENT CARDINALITY OFFSET 1", rp2),
                 ("SHOW SERIES CARDINALITY GROUP BY 'x'", rp2),  # influxd's dimension error
                 ("SHOW MEASUREMENT CARDINALITY GROUP BY 'x'", rp2),
                 ("SHOW TAG KEY CARDINALITY GROUP BY 'x'", rp2),
                 ("SHOW TAG VALUES CARDINALITY WITH KEY = device GROUP BY 'x'", rp2),
                 ("SHOW MEASUREMENT CARDINALITY FROM g.rp2.a1 GROUP BY 'x'", {}),
                 ("SHOW TAG KEY CARDINALITY FROM a1, pump GROUP BY 'x'", {}),
                 ("SHOW SERIES CARDINALITY FROM g.rp2.a1 GROUP BY 'x'", {}),
                 ("SHOW SERIES CARDINALITY FROM nodb..a1 GROUP BY device", {}),
                 ("SHOW SERIES EXACT CARDINALITY WHERE time > 0", rp2),
                 ("SELECT x FROM a1", {"rp": "r" * 300}),
                 ("SELECT x FROM a1", {"rp": "r" * 300, "method": "POST"}),
                 ("SELECT x FROM a1", {"rp": "a\u00e9 %x+y"})]
        answers = self.compare(cases, "rp= in influxd's order, of any length")
        self.assertEqual(sum(b"retention policy not found" in a[1] for a in answers), 13)
        # the estimates read no policy (vigild's count is of its own measurements: against
        # itself without rp)
        for q in ["SHOW MEASUREMENT CARDINALITY", "SHOW MEASUREMENT CARDINALITY LIMIT 0",
                  "SHOW MEASUREMENT CARDINALITY OFFSET 0"]:
            with self.subTest(q=q):
                want = self.ask(self.d.http_port, q)
                self.assertIn(b"cardinality estimation", want[1])
                self.assertEqual(self.ask(self.d.http_port, q, rp="rp2"), want)

    def test_regex_source_of_another_policy_as_influxd(self):
        # influx13: a regex source naming a policy influxd does not hold (rp2./re/, db.rp2./re/)
        # ends the run in influxd's words; vigild said "does not support a regular expression
        # in FROM" (or, after a database it does not list, "database not found" as before)
        qs = ["SELECT x FROM g.rp2./a/", "SELECT x FROM rp2./a/", "SELECT x FROM a1, g.rp2./a/",
              "SHOW FIELD KEYS FROM g.rp2./a/", "SHOW SERIES FROM g.rp2./a/",
              "SHOW TAG KEY CARDINALITY FROM g.rp2./a/", "SELECT x FROM nodb.rp2./a/",
              "SELECT x FROM g.rp2./a/; SELECT x FROM a1"]
        self.compare([(q, extra) for q in qs for extra in ({}, {"chunked": "true"})],
                     "a regex source of another policy")
        # SHOW TAG KEYS and TAG VALUES take any policy: influxd answers FROM /a/'s series,
        # vigild (no regex source in them) its answer to FROM /a/, the policy ignored alike
        for q in ["SHOW TAG KEYS FROM %s", "SHOW TAG VALUES FROM %s WITH KEY = device"]:
            with self.subTest(q=q):
                want = self.ask(self.d.http_port, q % "/a/")
                self.assertIn(b"regular expression in FROM", want[1])
                self.assertEqual(self.ask(self.d.http_port, q % "g.rp2./a/"), want)
                self.assertEqual(self.ask(self.influxd.port, q % "g.rp2./a/"),
                                 self.ask(self.influxd.port, q % "/a/"))


class ManySeries(InfluxdPair):
    """10,001 series of one measurement, s,device=d00000 ... d10000: SHOW SERIES' keys, which
    influxd runs as a SELECT, past its default chunk size."""

    POINTS = "\n".join("s,device=d%05d x=1 %d" % (i, ql5.T) for i in range(10001))

    compare = Leftovers.compare
    ask = staticmethod(Leftovers.ask)

    def test_whole_show_series_past_10000_keys_partial_as_influxd(self):
        # influx12: answered whole, influxd marks SHOW SERIES' one series of more than 10,000
        # keys "partial":true as a SELECT series; vigild did not
        answers = self.compare([("SHOW SERIES FROM s", {}), ("SHOW SERIES FROM s LIMIT 10000", {}),
                                ("SHOW SERIES FROM s OFFSET 1", {}),
                                ("SHOW SERIES FROM s", {"chunked": "true"})],
                               "SHOW SERIES past 10,000 keys")
        self.assertEqual([a[1].count(b'"partial":true') for a in answers], [1, 0, 0, 2])


class VigilFieldKeys(ql5.grafana.GrafanaVigilData):
    """GrafanaVigilData's points (two trained devices, their predictions, scores and episodes,
    the same points written to influxd): vigild's own measurements' field keys by chunk_size."""

    def test_vigil_field_keys_by_chunk_size_as_influxd(self):
        # influx12: influxd cuts these too (session 52's first pass cut the devices' alone)
        ports = (self.influxd.port, self.d.http_port)
        for q, size in [('SHOW FIELD KEYS FROM "vigil_scores"', "1"),
                        ('SHOW FIELD KEYS FROM "vigil_predictions"', "2"),
                        ('SHOW FIELD KEYS FROM "vigil_predictions" OFFSET 1', "1"),
                        ('SHOW FIELD KEYS FROM "vigil_scores"; SHOW FIELD KEYS FROM "vigil_scores"',
                         "1")]:
            with self.subTest(q=q, chunk_size=size):
                want, got = (Leftovers.ask(p, q, chunked="true", chunk_size=size) for p in ports)
                self.assertEqual(want[0], 200, want)
                self.assertIn(b'"partial":true}]', want[1])  # a series cut in two at least
                self.assertEqual(got, want)
        # vigil_anomalies' ten fields (influxd lists only those its points have: not compared),
        # and without FROM vigil_scores' two (the measurements differ: vigild alone)
        for q, size, name, docs in [('SHOW FIELD KEYS FROM "vigil_anomalies"', "3",
                                     b'"vigil_anomalies"', 4),
                                    ("SHOW FIELD KEYS", "1", b'"vigil_scores"', 2)]:
            with self.subTest(q=q, chunk_size=size):
                status, body = Leftovers.ask(self.d.http_port, q, chunked="true", chunk_size=size)
                self.assertEqual(status, 200, body)
                self.assertEqual(body.count(b'"name":' + name), docs, body)


if __name__ == "__main__":
    unittest.main()

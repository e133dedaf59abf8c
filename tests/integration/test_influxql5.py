#!/usr/bin/python3
"""vigild integration (session 51, task influx11): InfluxQL leftovers, third pass, each statement
sent to vigild and to a real influxd 1.6.7 (the InfluxdPair fixture, Debian's influxd on
loopback) holding the same points and compared byte for byte: SELECT's series cut into documents
of chunk_size rows with chunked=true (vigil_anomalies' too), SOFFSET without SLIMIT (and
vigil_anomalies' SLIMIT and SOFFSET), and the GROUP BY dimensions influxd refuses in the
cardinality statements and in SELECT's time(). The points: a device written as a measurement of
its own with the device tag (a1, five points), Telegraf's shape, measurement pump with the tag
(t1 three points, t2 and t3 one each), and big, 10,005 points of one device (past influxd's
default chunk_size, 10,000); VigilMeasurements has GrafanaVigilData's points."""

import json
import os
import sys
import urllib.parse
import http.client

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import InfluxdPair  # noqa: E402
import test_influx_grafana as grafana  # noqa: E402  (its GrafanaVigilData: points, no tests)

T = 1732780800000  # ms: 2024-11-28T08:00:00Z
BIG = 10005
POINTS = "\n".join(
    ["a1,device=a1 x=%d,y=%d %d" % (i + 1, i + 2, T + 1000 * i) for i in range(5)] +
    ["pump,device=t1 x=7 %d" % T, "pump,device=t1 x=9 %d" % (T + 1000),
     "pump,device=t1 x=10 %d" % (T + 2000), "pump,device=t2 x=8 %d" % (T + 1000),
     "pump,device=t3 x=8 %d" % (T + 1000)] +
    ["big,device=big x=%d %d" % (i, T + 1000 * i) for i in range(BIG)])
SPAN = "time >= %dms AND time < %dms" % (T, T + 3000)


class ChunkSize(InfluxdPair):
    """chunk_size with chunked=true: a SELECT series' rows a document at most (and the answer's
    8 MiB bound still holding at chunk_size 1)."""

    POINTS = POINTS

    @staticmethod
    def ask(port, q, **extra):
        params = {"db": "g", "q": q, "epoch": "ms", "chunked": "true"}
        params.update(extra)  # chunked=None: not sent
        params = {k: v for k, v in params.items() if v is not None}
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", "/query?" + urllib.parse.urlencode(params))
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def compare(self, cases, what):
        """cases: (query, chunk_size or None for none, or a dict of ask's parameters:
        test_influxql6.py's). Asserts vigild's answer is influxd's, byte for byte; returns
        influxd's answers."""
        failed, answers = [], []
        for q, size in cases:
            extra = size if isinstance(size, dict) else {} if size is None else {"chunk_size": size}
            with self.subTest(q=q, chunk_size=size if len(str(size)) < 80 else str(size)[:80]):
                want, got = (self.ask(port, q, **extra)
                             for port in (self.influxd.port, self.d.http_port))
                self.assertEqual(want[0], 200, want[1][:300])
                answers.append(want)
                if got != want:
                    failed.append(q)
                    self.fail("%s chunk_size=%s\ninfluxd %r\nvigild  %r" % (
                        q, size, want[1][:600], got[1][:600]))
        print("\n%s: %d of %d as influxd" % (what, len(cases) - len(failed), len(cases)))
        return answers

    def test_select_split_by_chunk_size_as_influxd(self):
        # influx11: influxd 1.6.7 cuts a SELECT series into documents of chunk_size rows, the
        # series and the document "partial":true on all but the last of the series (no empty
        # document when the rows fill the last one); vigild ignored chunk_size
        cases = [("SELECT x FROM a1", "2"), ("SELECT x FROM a1", "1"),
                 ("SELECT x, y FROM a1", "1"), ("SELECT x FROM a1 LIMIT 4", "2"),
                 ("SELECT x FROM a1 LIMIT 3", "2"), ("SELECT x FROM a1 LIMIT 2 OFFSET 1", "1"),
                 ("SELECT x FROM a1 ORDER BY time DESC", "2"),
                 ("SELECT x FROM pump WHERE device = 't1'", "2"),
                 ("SELECT x FROM pump WHERE device = 't1' GROUP BY device", "2"),
                 ("SELECT x FROM pump WHERE device =~ /t/ GROUP BY device", "2"),
                 ("SELECT x FROM pump WHERE device =~ /t/ GROUP BY device SLIMIT 2", "3"),
                 ("SELECT x FROM pump WHERE device =~ /t/ GROUP BY device ORDER BY time DESC",
                  "1"),
                 ("SELECT mean(x) FROM pump WHERE device =~ /t/ AND %s GROUP BY time(1s), "
                  "device" % SPAN, "2"),
                 ("SELECT mean(x) FROM a1 WHERE time >= %dms AND time < %dms GROUP BY time(1s) "
                  "fill(none)" % (T, T + 5000), "2"),
                 ("SELECT x FROM a1; SELECT x FROM a1 LIMIT 3", "2"),
                 ("SELECT x FROM a1; SELECT x FROM pump WHERE device = 'zz'", "1"),
                 ("SELECT count(x) FROM a1", "1"), ("SELECT x FROM a1 WHERE time > now()", "2"),
                 ("SELECT x FROM a1", "+2"), ("SELECT x FROM a1", "02"),  # review: Go's ParseInt
                 # no split: as large as the series or larger, or not a number above 0
                 # (influxd's default, 10,000 rows)
                 ("SELECT x FROM a1", "5"), ("SELECT x FROM a1", "0"), ("SELECT x FROM a1", "-1"),
                 ("SELECT x FROM a1", "abc"), ("SELECT x FROM a1", "1.5"),
                 ("SELECT x FROM a1", " 1"), ("SELECT x FROM a1", "2147483648")]
        answers = self.compare(cases, "SELECT split by chunk_size")
        self.assertEqual(answers[0][1].count(b"\n"), 3, answers[0])  # three documents
        # without chunked=true chunk_size is not read
        want, got = (self.ask(port, "SELECT x FROM a1", chunked=None, chunk_size="2")
                     for port in (self.influxd.port, self.d.http_port))
        self.assertEqual(want[1].count(b"\n"), 1, want)  # one document, whole
        self.assertEqual(got, want)

    def test_show_series_split_by_chunk_size_as_influxd(self):
        # influx11: influxd cuts SHOW SERIES' keys by chunk_size too (not SHOW TAG KEYS', TAG
        # VALUES' or MEASUREMENTS'); vigild sent them whole
        re_a = "SHOW SERIES WHERE device =~ /^(a1|big)$/"  # a1,device=a1 and big,device=big
        self.compare([(re_a, "1"), (re_a + " LIMIT 1", "1"), (re_a + " OFFSET 1", "1"),
                      (re_a + "; SHOW SERIES FROM a1", "1"), (re_a, "2"), (re_a, None),
                      ("SHOW SERIES WHERE device = 'zz'", "1")], "SHOW SERIES by chunk_size")

    def test_default_chunk_size_as_influxd(self):
        # influx11: without a chunk_size (or one that is not a number above 0, or past int64)
        # influxd 1.6.7 cuts at 10,000 rows: big's 10,005 points are two documents
        cases = [("SELECT x FROM big", None), ("SELECT x FROM big", "0"),
                 ("SELECT x FROM big", "-5"), ("SELECT x FROM big", "99999999999999999999"),
                 ("SELECT x FROM big", "10005"), ("SELECT x FROM big", "4000"),
                 ("SELECT x FROM big WHERE device = 'big' GROUP BY device", None),
                 ("SELECT x FROM big", "1")]  # review: a row a document, 10,005 of them
        answers = self.compare(cases, "SELECT's default chunk_size")
        self.assertEqual([a[1].count(b"\n") for a in answers], [2, 2, 2, 2, 1, 3, 2, 10005])

    def test_answer_bound_with_chunk_size(self):
        # review: chunk_size 1 repeats a series' name and columns in each of its rows'
        # documents, and the answer is still built whole: the 8 MiB bound on one query's answer
        # (API_PAGE_BYTES) must stop it as it stops a whole answer and the default chunks. 60
        # statements of big's 10,005 rows (some 80 MB at chunk_size 1) end in the bound's error.
        q = "; ".join(["SELECT x FROM big"] * 60)
        for extra in ({"chunk_size": "1"}, {}, {"chunked": None}):
            with self.subTest(**extra):
                status, body = self.ask(self.d.http_port, q, **extra)
                self.assertEqual(status, 200, body[-300:])
                self.assertLessEqual(len(body), (8 << 20) + 4096)
                docs = [json.loads(line) for line in body.splitlines()]
                errors = [r["error"] for d in docs for r in d["results"] if "error" in r]
                # whole, the stopped statement's result is "not executed" (influxd keeps the
                # last result of an id): fewer than 60 results then
                self.assertTrue(errors[0].startswith("not executed" if "chunked" in extra else
                                                     "vigild answers at most 8 MiB of JSON for "
                                                     "one query, its statements together: "),
                                errors[:2])
                self.assertLess(max(r["statement_id"] for d in docs for r in d["results"]), 59)
                if extra.get("chunk_size") == "1":  # a row a document before the error
                    rows = [len(s["values"]) for d in docs for r in d["results"]
                            for s in r.get("series", [])]
                    self.assertGreater(len(rows), 10005)
                    self.assertEqual(set(rows), {1})


class VigilMeasurements(grafana.GrafanaVigilData):
    """GrafanaVigilData's points (two trained devices, their predictions, scores and two
    episodes, the same points written to influxd) asked with chunk_size, SLIMIT and SOFFSET:
    vigil_anomalies' series are written by influxql_vigil.c, the others by influxql_select.c."""

    def test_vigil_measurements_split_by_chunk_size_as_influxd(self):
        # influx11: as the readings' series (ChunkSize), influxd cuts these into documents of
        # chunk_size rows; vigild sent each series in one document
        a, ports = self.rng(0, 700), (self.influxd.port, self.d.http_port)
        cases = [('SELECT "text", "end" FROM "vigil_anomalies" WHERE %s' % a, "1"),
                 ('SELECT "text" FROM "vigil_anomalies" WHERE %s GROUP BY "device" ORDER BY '
                  'time DESC' % a, "1"),
                 ('SELECT "score" FROM "vigil_scores" WHERE "device" = \'pump-b\' ORDER BY time '
                  'DESC LIMIT 5', "2"),
                 ('SELECT max("score") FROM "vigil_scores" WHERE "device" =~ /^pump-(a|b)$/ AND '
                  '%s GROUP BY time(1m), "device" fill(none)' % a, "4"),
                 # (180 rows: the readings scored while pump-a learned have no prediction
                 # since session 66; 680 before, cut at 300)
                 ('SELECT "x", "z" FROM "vigil_predictions" WHERE "device" = \'pump-a\' AND %s'
                  % a, "100")]
        for q, size in cases:
            with self.subTest(q=q, chunk_size=size):
                want, got = (ChunkSize.ask(p, q, chunk_size=size) for p in ports)
                self.assertEqual(want[0], 200, want)
                self.assertIn(b'"partial":true}]', want[1])  # a series cut in two at least
                self.assertEqual(got, want)

    def test_vigil_series_offset_as_influxd(self):
        # influx11: vigil_anomalies' GROUP BY device did not read SLIMIT and SOFFSET (every
        # series answered); influxd keeps them from SOFFSET to SOFFSET + SLIMIT, in id order
        # whatever ORDER BY, none for SOFFSET without SLIMIT
        a = self.rng(0, 700)
        anom = 'SELECT "text" FROM "vigil_anomalies" WHERE %s ' % a
        self.both_whole_and_chunked(
            [anom + 'GROUP BY "device" SLIMIT 1', anom + 'GROUP BY "device" SOFFSET 1',
             anom + 'GROUP BY "device" SLIMIT 1 SOFFSET 1', anom + "SOFFSET 1",
             anom + 'GROUP BY "device" SLIMIT 5 SOFFSET 1',
             anom + 'GROUP BY "device" ORDER BY time DESC SLIMIT 1',
             anom + 'GROUP BY "device" ORDER BY time DESC SLIMIT 1 SOFFSET 1',
             anom + 'GROUP BY "device" SLIMIT 1 SOFFSET 2',
             'SELECT "score" FROM "vigil_scores" WHERE "device" =~ /pump/ AND %s GROUP BY '
             '"device" SOFFSET 1' % self.rng(0, 2)])

    def both_whole_and_chunked(self, qs):
        for q in qs:
            for chunked in (None, "true"):
                with self.subTest(q=q, chunked=chunked):
                    want, got = (ChunkSize.ask(p, q, chunked=chunked)
                                 for p in (self.influxd.port, self.d.http_port))
                    self.assertEqual(want[0], 200, want)
                    self.assertEqual(got, want)


class SeriesOffset(InfluxdPair):
    """SOFFSET without SLIMIT, as influxd 1.6.7's LimitTagSets takes it: no series. t0's one
    point a day before the others (the same shard group): a series with no row in the range."""

    POINTS = POINTS + "\npump,device=t0 x=1 %d" % (T - 86400000)

    def test_soffset_without_slimit_as_influxd(self):
        # influx11: influxd keeps series [SOFFSET, SOFFSET + SLIMIT), none when SLIMIT is 0;
        # vigild kept every series past SOFFSET
        qs = ["SELECT x FROM pump WHERE device =~ /t/ GROUP BY device SOFFSET 1",
              "SELECT x FROM pump WHERE device =~ /t/ GROUP BY device SOFFSET 2",
              "SELECT x FROM pump WHERE device =~ /t/ GROUP BY device SLIMIT 0 SOFFSET 1",
              "SELECT x FROM pump GROUP BY device SOFFSET 1",
              "SELECT mean(x) FROM pump WHERE device =~ /t/ GROUP BY device SOFFSET 1",
              "SELECT mean(x) FROM pump WHERE device =~ /t/ AND %s GROUP BY time(1s), device "
              "SOFFSET 1" % SPAN,
              "SELECT x FROM pump WHERE device =~ /t/ GROUP BY device SOFFSET 1; "
              "SELECT x FROM a1 LIMIT 1",
              # unchanged, compared: with SLIMIT, past the series, or SOFFSET 0
              "SELECT x FROM pump WHERE device =~ /t/ GROUP BY device SLIMIT 1 SOFFSET 1",
              "SELECT x FROM pump WHERE device =~ /t/ GROUP BY device SLIMIT 5 SOFFSET 1",
              "SELECT x FROM pump WHERE device =~ /t/ GROUP BY device SLIMIT 1 SOFFSET 3",
              "SELECT x FROM pump WHERE device =~ /t/ GROUP BY device SOFFSET 0",
              "SELECT x FROM pump WHERE device = 't1' GROUP BY device SOFFSET 1",
              "SELECT x FROM a1 SOFFSET 1", "SELECT x FROM pump WHERE device =~ /t/ SOFFSET 1",
              # review: SLIMIT and SOFFSET count t0's series, which has no row in the range
              "SELECT x FROM pump WHERE device =~ /t/ AND %s GROUP BY device SLIMIT 1" % SPAN,
              "SELECT x FROM pump WHERE device =~ /t/ AND %s GROUP BY device SLIMIT 2 "
              "SOFFSET 1" % SPAN]
        self.whole_and_chunked(qs, self.ok, "SOFFSET without SLIMIT")


class GroupByDimensions(InfluxdPair):
    """GROUP BY's dimensions influxd 1.6.7 refuses. A cardinality statement's GROUP BY: influxd
    answers a count per measurement and group, which vigild does not (its statement error,
    README); where influxd refuses the dimensions, vigild now refuses them in influxd's words.
    SELECT's GROUP BY time() of a regex, likewise."""

    POINTS = POINTS

    def test_refused_dimensions_as_influxd(self):
        # influx11: influxd judges the dimensions in their order as SELECT's (time() of
        # arguments it refuses, a call other than time(), time as a tag, an expression), an
        # error that ends the run; vigild answered "vigild does not support GROUP BY in the
        # cardinality statements" and ran on. A database not found comes first (SHOW SERIES'
        # cardinality answered the GROUP BY's error there).
        qs = ["SHOW SERIES CARDINALITY GROUP BY time", "SHOW SERIES CARDINALITY GROUP BY time(x)",
              "SHOW SERIES CARDINALITY GROUP BY time(10)",
              "SHOW SERIES CARDINALITY GROUP BY time()",
              "SHOW SERIES CARDINALITY GROUP BY time(1h,2h,3h)",
              "SHOW SERIES CARDINALITY GROUP BY time(1h), time(1h)",
              "SHOW SERIES CARDINALITY GROUP BY time(1h, x)",
              "SHOW SERIES CARDINALITY GROUP BY time(1h, now(1))",
              "SHOW SERIES CARDINALITY GROUP BY time(1h, foo())",
              "SHOW SERIES CARDINALITY GROUP BY time(x), 1",
              "SHOW SERIES CARDINALITY GROUP BY device, time(x)",
              "SHOW SERIES CARDINALITY GROUP BY mean(x)",
              "SHOW SERIES CARDINALITY GROUP BY fill(none)",
              "SHOW SERIES CARDINALITY GROUP BY mean(x), time(x)",
              "SHOW SERIES CARDINALITY GROUP BY time(x) + 1",
              "SHOW SERIES CARDINALITY GROUP BY time(1h) + 1",
              "SHOW SERIES EXACT CARDINALITY GROUP BY time(x)",
              "SHOW TAG KEY CARDINALITY GROUP BY time(x)",
              "SHOW TAG VALUES CARDINALITY WITH KEY = device GROUP BY time()",
              "SHOW FIELD KEY CARDINALITY GROUP BY time(1h,1h,1h)",
              "SHOW MEASUREMENT CARDINALITY GROUP BY time(x)",
              "SHOW MEASUREMENT EXACT CARDINALITY GROUP BY mean(x)",
              "SHOW SERIES CARDINALITY GROUP BY time(x); SHOW MEASUREMENTS LIMIT 1",
              "SHOW SERIES CARDINALITY FROM other..a1 GROUP BY time(x)",
              "SHOW SERIES CARDINALITY FROM other..a1 GROUP BY device",
              "SHOW SERIES CARDINALITY GROUP BY time(/x/)",
              "SHOW SERIES CARDINALITY GROUP BY time(1h, /x/)",
              # unchanged, compared: a literal first, a policy after the dimensions, time in
              # WHERE before them, a parse error
              "SHOW SERIES CARDINALITY GROUP BY 1, time(x)",
              "SHOW SERIES CARDINALITY FROM g.rp2.a1 GROUP BY time(x)",
              "SHOW SERIES CARDINALITY WHERE time > 0 GROUP BY time(x)",
              "SHOW SERIES CARDINALITY GROUP BY time (1h)"]
        self.whole_and_chunked(qs, lambda want, chunked: self.assertIn(want[0], (200, 400)),
                               "refused GROUP BY dimensions")
        # where influxd counts, vigild still answers its statement error (README)
        res = self.vigild("SHOW SERIES CARDINALITY GROUP BY device")["results"][0]
        self.assertEqual(res["error"], "vigild does not support GROUP BY in the cardinality "
                         "statements")

    def test_time_of_a_regex_as_influxd(self):
        # influx11: influxd reads a regex as time()'s argument and judges it no duration (its
        # statement error); vigild answered the 400 "found /, expected identifier, ..."
        qs = ["SELECT count(x) FROM a1 GROUP BY time(/x/)",
              "SELECT count(x) FROM a1 GROUP BY time(1h, /x/)",
              "SELECT count(x) FROM a1 GROUP BY time(/x/, 1h)",
              "SELECT count(x) FROM a1 GROUP BY time(/x/, x)",
              "SELECT count(x) FROM a1 GROUP BY time(/x/), time(1h)",
              "SELECT count(x) FROM a1 GROUP BY time(/x/); SELECT x FROM a1 LIMIT 1",
              # influxd's parse errors after the regex (main's was its 400 at the regex), or in it
              "SELECT count(x) FROM a1 GROUP BY time(/(/)",
              "SELECT count(x) FROM a1 GROUP BY time(/x/ 1h)",
              "SELECT count(x) FROM a1 GROUP BY time(/x/ + 1)"]
        self.whole_and_chunked(qs, lambda want, chunked: self.assertIn(want[0], (200, 400)),
                               "time() of a regex")


if __name__ == "__main__":
    vt.main()

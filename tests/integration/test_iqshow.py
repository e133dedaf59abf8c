#!/usr/bin/python3
"""vigild integration (session 45, second round, task influx5): InfluxQL's SHOW statements
where iqtime left them, each sent to vigild and to a real influxd 1.6.7 (the InfluxdPair
fixture, Debian's influxd on loopback) holding the same points and compared byte for byte:
SHOW FIELD KEYS' LIMIT and OFFSET (each measurement's fields, as influxd keeps them); time in
the WHERE of SHOW MEASUREMENTS and of the cardinality statements (influxd's error naming the
statement); and that /query's form body is read as sent whatever its Content-Encoding, as
influxd 1.6.7 reads it (a pin, not a fix: vigild already did so). Sessions 46 and 47 (tasks
influx6, influx7) added edges of the same kind: a regex where influxd peeks for one, statements
among others, the cardinality statements' GROUP BY."""

import gzip
import http.client
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import InfluxdPair  # noqa: E402

T = 1732780800000  # ms: 2024-11-28T08:00:00Z
# Each device its own measurement with its device tag, as vigild reads it, with 1 to 4 fields.
FIELDS = {"a1": "x=1,y=2,z=3", "a2": "y=1", "b1": "p=1,q=2,w=3,x=4"}
POINTS = "\n".join("%s,device=%s %s %d" % (d, d, f, T) for d, f in sorted(FIELDS.items()))
# What influxd holds of vigild's reserved measurements: a series per device in each, with the
# fields vigild's SHOW FIELD KEYS gives them (vigil_predictions: the devices' channels).
ANOMALY = ('channels="x",continues=0,end=1,ended_by="a",fault=0,id=1,note="n",opened_by="a",'
           'peak_score=1,text="t"')
RESERVED = "\n".join(
    "vigil_anomalies,device=%s %s %d\nvigil_predictions,device=%s %s %d\n"
    "vigil_scores,device=%s score=1,state=0 %d" % (d, ANOMALY, T, d, f, T, d, T)
    for d, f in sorted(FIELDS.items()))


class ShowEdges(InfluxdPair):
    """SHOW statements' edges and /query's form body, compared with influxd."""

    POINTS = POINTS
    INFLUXD_ONLY = RESERVED

    def test_limit_offset_per_measurement_as_influxd(self):
        # influx5: influxd keeps OFFSET n, LIMIT n of each measurement's sorted fields and
        # leaves out a measurement with none kept; vigild read both and listed every field
        # (iqtime's lead: "read but not applied")
        tails = ["LIMIT 1", "LIMIT 2 OFFSET 1", "OFFSET 1", "OFFSET 2", "OFFSET 3", "OFFSET 9",
                 "OFFSET 10", "OFFSET 99999999999", "LIMIT 0", "LIMIT 0 OFFSET 1", "OFFSET 0",
                 "LIMIT 3 OFFSET 8", "LIMIT 99999999999 OFFSET 1", "ORDER BY time DESC LIMIT 1"]
        qs = ["SHOW FIELD KEYS " + t for t in tails]
        qs += ["SHOW FIELD KEYS ON g LIMIT 1 OFFSET 1", "SHOW FIELD KEYS LIMIT 1; SHOW FIELD KEYS "
               "OFFSET 1"]
        for m in ("a1", "b1", "vigil_anomalies", "vigil_predictions", "vigil_scores"):
            qs += ["SHOW FIELD KEYS FROM %s %s" % (m, t) for t in (
                "LIMIT 1", "LIMIT 2 OFFSET 1", "OFFSET 1", "OFFSET 3", "LIMIT 3 OFFSET 8")]
        # the cardinality statements count every field still (their OFFSET 1: nothing)
        qs += ["SHOW FIELD KEY CARDINALITY LIMIT 1", "SHOW FIELD KEY EXACT CARDINALITY LIMIT 1",
               "SHOW FIELD KEY CARDINALITY OFFSET 1", "SHOW FIELD KEY CARDINALITY FROM b1 LIMIT 1"]
        failed = []
        for q in qs:
            with self.subTest(q=q):
                want, got = self.both(q)
                self.assertEqual(want[0], 200, want)
                self.assertNotIn(b'"error"', want[1])
                if got != want:
                    failed.append(q)
                self.assertEqual(got, want)
        print("\nSHOW FIELD KEYS with LIMIT/OFFSET: %d of %d as influxd" % (
            len(qs) - len(failed), len(qs)))

    def test_time_in_where_as_influxd(self):
        # influx5: influxd refuses time compared in SHOW MEASUREMENTS' WHERE and in the
        # cardinality statements' (but SHOW TAG VALUES CARDINALITY's), a statement error naming
        # the statement; vigild answered its own "vigild does not support WHERE in SHOW
        # statements other than ..." (or, for TIME = 'x', read TIME as a tag key: an answer)
        t = "time > 0"
        forms = [t, "device = 'a1' AND time > 0", '"time" > 0', "TIME > 0", "time = 'x'",
                 "(time > 0)", "device = 'a1' OR time > now() - 1h",
                 "((device = 'a') OR (time > 0))", "time > 0 AND x > 1", "TIME = 'x'",
                 "time =~ /x/", "device =~ /a1/ AND time <= now()", "time::tag = 'x'"]
        qs = ["SHOW MEASUREMENTS WHERE " + f for f in forms]
        qs += ["SHOW MEASUREMENTS WITH MEASUREMENT =~ /a/ WHERE time >= '2024-01-01T00:00:00Z' "
               "LIMIT 1", "SHOW MEASUREMENTS ON g WHERE time > 0 OFFSET 1"]
        for st in ("MEASUREMENT", "TAG KEY", "SERIES", "FIELD KEY"):
            for exact in ("", " EXACT"):
                qs += ["SHOW %s%s CARDINALITY WHERE %s" % (st, exact, f) for f in forms[:3]]
        qs += ["SHOW TAG KEY CARDINALITY FROM a1 WHERE time < now()",
               "SHOW FIELD KEY CARDINALITY FROM a1 WHERE time > 0 OFFSET 1",
               "SHOW SERIES CARDINALITY FROM a1 WHERE time > 0 LIMIT 1",
               "SHOW MEASUREMENT CARDINALITY ON g WHERE time > 0"]
        failed = []
        for q in qs:
            with self.subTest(q=q):
                want, got = self.both(q)
                self.assertEqual(want[0], 200, want)
                self.assertIn(b"doesn't support time in WHERE clause", want[1])
                if got != want:
                    failed.append(q)
                self.assertEqual(got, want)
        print("\ntime in SHOW's WHERE: %d of %d as influxd" % (len(qs) - len(failed), len(qs)))
        # not a time condition for influxd (HasTimeExpr: time on the left of a comparison):
        # no such error from either
        for q in ("SHOW MEASUREMENTS WHERE device =~ /x AND time > 0/",
                  "SHOW MEASUREMENTS WHERE device = 'time > 0'", "SHOW MEASUREMENTS WHERE 0 < time",
                  "SHOW MEASUREMENTS WHERE time + 1 > 0"):
            with self.subTest(q=q):
                for status, body in self.both(q):
                    self.assertEqual(status, 200, body)
                    self.assertNotIn(b"time in WHERE", body)

    def test_time_in_where_among_statements_as_influxd(self):
        # influx6: influxd refuses time in SHOW's WHERE in its statement rewrite, whose error it
        # sends without the statement's id: under id 0, replacing statement 0's result when
        # statement 1 failed, after the results before it when a later one did; vigild answered
        # it as the failed statement's own result
        m = "SHOW MEASUREMENTS LIMIT %d"
        bad = ["SHOW MEASUREMENTS WHERE time > 0", "SHOW SERIES EXACT CARDINALITY WHERE time > 0",
               "SHOW FIELD KEY CARDINALITY WHERE device = 'a1' AND time > 0"]
        qs = []
        for b in bad:
            for before in range(4):
                for after in range(3):
                    qs.append("; ".join([m % (i + 1) for i in range(before)] + [b]
                                        + [m % 9] * after))
        def check(want, chunked):
            self.assertEqual(want[0], 200, want)
            if chunked:  # whole, "not executed" replaces it when it was statement 0
                self.assertIn(b"doesn't support time in WHERE clause", want[1])
        self.whole_and_chunked(qs, check, "time in SHOW's WHERE among statements")

    def test_comment_opening_where_a_regex_goes_is_a_regex_as_influxd(self):
        # influx6: where influxd's parser looks for a regex (FROM, WITH MEASUREMENT) it peeks
        # past blanks alone, so "/*x*/" there is the regex "*x*" (Go's error, a 400); vigild
        # read a comment and answered the name after it
        qs = ["SELECT x FROM /*x*/ a1", "SELECT * FROM /*x*/ cpu", "SELECT x FROM  /*x*/ a1",
              "SELECT x FROM /* c */ /a/", "SELECT x FROM /*x*/", "SELECT x FROM /**/ a1",
              "SELECT x FROM /*.*/", "SELECT x FROM\n/*x*/ a1", "SHOW SERIES FROM /*x*/ a1",
              "SHOW TAG KEYS FROM /*x*/ a1", "SHOW FIELD KEYS FROM /*x*/ a1",
              "SHOW TAG VALUES FROM /*x*/ a1 WITH KEY = device",
              "SHOW MEASUREMENTS WITH MEASUREMENT = /*x*/ a1",
              "SHOW MEASUREMENTS WITH MEASUREMENT = /* c */ /a/",
              "SHOW SERIES CARDINALITY FROM /*x*/ a1", "SHOW TAG KEY CARDINALITY FROM /**/ a1",
              "SHOW MEASUREMENTS; SELECT x FROM /*x*/ a1"]
        failed = []
        for q in qs:
            with self.subTest(q=q):
                want, got = self.both(q)
                self.assertEqual(want[0], 400, want)
                self.assertIn(b"error parsing regexp", want[1])
                if got != want:
                    failed.append(q)
                self.assertEqual(got, want)
        print("\n/*x*/ where a regex goes: %d of %d as influxd" % (len(qs) - len(failed), len(qs)))
        # a comment elsewhere stays one for both, and a regex in FROM one (review)
        alike = ["SELECT x FROM a1 LIMIT 1 /*x*/", "SELECT x /*x*/ FROM a1",
                 "SELECT x FROM a1/*x*/", "SELECT x -- c\nFROM a1", "SELECT x FROM a1 -- c",
                 "SELECT x FROM -- c\na1", "SELECT x FROM a1 WHERE /* c */ device = 'a1'",
                 "SHOW SERIES FROM /a.*/", "SHOW MEASUREMENTS WITH MEASUREMENT =~ /a.*/"]
        self.whole_and_chunked(alike, self.ok, "a comment or a regex elsewhere")

    def test_regex_peeked_past_a_comment_or_after_a_name_as_influxd(self):
        # influx7: influxd peeks past blanks alone for a regex as it reads a SELECT field, a
        # call's argument and a GROUP BY dimension too, so "/*x*/" there is its regex error;
        # vigild read a comment. After a FROM name of one or two parts influxd has read the
        # blanks as a token before it peeks: blanks then '/' are "found <the blanks>, expected
        # regex"; vigild answered the query (or "found /, expected ;")
        qs = ["SELECT /*x*/ x FROM a1", "SELECT /*x*/ FROM a1", "SELECT x, /*x*/ y FROM a1",
              "SELECT /* x FROM a1", "SELECT mean(/*x*/x) FROM a1", "SELECT mean(x, /*x*/) FROM a1",
              "SELECT count( /*x*/ x) FROM a1", "SELECT x FROM a1 GROUP BY /*x*/",
              "SELECT x FROM a1 GROUP BY /*x*/ device", "SELECT x FROM a1 GROUP BY device, /*x*/",
              "SELECT mean(x) FROM a1 GROUP BY time(/*x*/1m)",
              "SELECT mean(x) FROM a1 GROUP BY time(1m, /*x*/ 1s)",
              "SELECT mean(x) FROM a1 GROUP BY time(1m) fill(/*x*/)",
              "SELECT mean(x) FROM a1 GROUP BY time(1m) fill( /*x*/0)",
              "SELECT x FROM a1 WHERE time > now(/*x*/)",
              "SELECT x FROM a1 WHERE now( /*x*/) > time",
              "SELECT x FROM a1 WHERE device = 'a1' AND f(/*x*/) > 1",
              "SELECT x FROM a1 tz(/*x*/ 'UTC')",
              "SELECT x FROM a1 /*x*/", "SELECT x FROM a1 /* c */ LIMIT 1",
              "SELECT x FROM a1  /* c */", "SELECT x FROM a1\t/* c */", "SELECT x FROM a1\n/* c */",
              "SELECT x\nFROM a1 \r\n /* c */", "SELECT x FROM a1 \r /* c */",
              "SELECT x FROM a1 /x/", "SELECT x FROM a1 / 2", 'SELECT x FROM "a1" /* c */',
              "SELECT x FROM g.autogen /* c */", "SELECT x FROM a1 /*x*/ WHERE time > 0",
              "SELECT x FROM a1 /* c */; SHOW MEASUREMENTS",
              "SHOW MEASUREMENTS; SELECT x FROM a1 /**/", "SHOW SERIES FROM a1 /* c */",
              "SHOW SERIES FROM a1, a2 /* c */", "SHOW SERIES FROM a1 /* c */, a2",
              "SHOW TAG KEYS FROM a1 /* c */", "SHOW FIELD KEYS FROM a1 /* c */",
              "SHOW TAG VALUES FROM a1 /* c */ WITH KEY = device",
              "SHOW SERIES CARDINALITY FROM a1 /* c */",
              "SHOW MEASUREMENTS WITH MEASUREMENT = a1 /* c */",
              "SHOW MEASUREMENTS WITH MEASUREMENT =~ a1 /* c */ LIMIT 1",
              # review: the token after the name is any influxd scans there, ';', ',' or a
              # comment too (printed ""), a '/' right after it: vigild ran these
              "SELECT x FROM a1;/* c */SHOW MEASUREMENTS", 'SELECT x FROM "a1";/* c */',
              "SELECT x FROM g.autogen;/x/", "SELECT x FROM a1,/*x*/a2",
              "SELECT x FROM a1-- c\n/* c */", "SELECT x FROM a1-- c\r\n/* c */ LIMIT 1",
              "SELECT x FROM a1/* c *//* d */",
              "SHOW MEASUREMENTS WITH MEASUREMENT = a1;/* c */SHOW MEASUREMENTS",
              "SHOW SERIES FROM a1,/a/", "SHOW TAG VALUES FROM a1;/* c */SHOW MEASUREMENTS",
              # review: a call's first argument where vigild reads on past what it does not
              # answer (math, a field condition, GROUP BY f(), SHOW's WHERE): its statement error
              "SELECT x + mean(/*x*/) FROM a1", "SELECT x FROM a1 WHERE x > mean(/*x*/)",
              "SELECT x FROM a1 WHERE time > now() - f(/*x*/)",
              "SELECT x FROM a1 GROUP BY f(/*x*/)",
              "SHOW MEASUREMENTS WHERE f(/*x*/) = 'a'",
              "SHOW TAG VALUES WITH KEY = device WHERE f( /*x*/) = 'a'"]
        def check(want, chunked):
            self.assertEqual(want[0], 400, want)
            self.assertRegex(want[1], b"error parsing regexp|expected regex|bad regex")
        self.whole_and_chunked(qs, check, "a regex peeked past a comment or after a name")
        # a comment where influxd peeks for no regex, or after a name of three parts, stays one
        alike = ["SELECT x /*x*/ FROM a1", "SELECT x FROM a1/* c */", "SELECT x FROM a1 -- c",
                 "SELECT x FROM g.autogen.a1 /* c */", "SELECT x FROM g..a1 /* c */",
                 "SELECT mean(x) /* c */ FROM a1 WHERE time >= 1732780800000ms AND time < "
                 "1732780900000ms GROUP BY time(1m) /* c */ fill(0) /* c */",
                 "SHOW MEASUREMENTS WITH MEASUREMENT = a1 -- c",
                 # review: comments where influxd reads them as such, as before this work
                 "SELECT mean(x) /* c */ FROM a1", "SELECT x FROM a1 -- c\nWHERE time > 0",
                 "-- c\nSELECT x FROM a1", "/* c */ SELECT x FROM a1",
                 "SELECT x FROM a1; /* c */ SHOW MEASUREMENTS",
                 "SELECT x FROM a1;\t/* c */SHOW MEASUREMENTS",
                 "SELECT x FROM a1 ;/* c */SHOW MEASUREMENTS",
                 "SELECT x FROM a1; -- c\nSHOW MEASUREMENTS",
                 "SELECT x FROM a1 LIMIT 1;/* c */SHOW MEASUREMENTS",
                 "SELECT x FROM g.autogen.a1;/* c */SHOW MEASUREMENTS",
                 "SELECT x FROM a1 WHERE time > 0 /* c */ LIMIT /* c */ 1",
                 "SELECT x /* c */, y FROM a1", "SELECT mean(x /* c */) FROM a1",
                 "SELECT x FROM a1/* c */ /* d */", "SELECT x FROM a1-- c\n /* c */",
                 "SELECT x FROM a1 -- c\n/* c */ LIMIT 1", "SHOW TAG KEYS /* c */ FROM a1"]
        self.whole_and_chunked(alike, self.ok, "a comment where influxd reads one")

    def test_call_in_where_and_distinct_argument_read_as_influxd(self):
        # influx8: a call compared in SELECT's WHERE (f(1, 2) = 1) and count(distinct(x)) were
        # vigild's statement errors read no further than their '(' (the statement skipped to its
        # end): a regex influxd peeks for in their arguments (/* after a ',' or a '(') or a
        # parse error after them was not influxd's 400. Both are now read as influxd parses them
        qs = ["SELECT x FROM a1 WHERE f(1, /*x*/ 2) = 1", "SELECT x FROM a1 WHERE f(1,/*x*/2) = 1",
              "SELECT x FROM a1 WHERE f(g(1, /*x*/ 2)) = 1",
              "SELECT x FROM a1 WHERE f(distinct(/*x*/ 2)) = 1",
              "SELECT x FROM a1 WHERE f(1, 2) = 1 AND g(/*x*/ 1) = 2",
              "SELECT x FROM a1 WHERE f(1, 2 = 1", "SELECT x FROM a1 WHERE f(1, 2) = 1 LIMIT x",
              "SELECT count(distinct(/*x*/ x)) FROM a1",
              "SELECT count(distinct(/*x*/ x /*y*/)) FROM a1",
              "SELECT count(distinct /*x*/ (x)) FROM a1",
              "SELECT count(distinct(x), /*x*/ 2) FROM a1", "SELECT count(distinct(x) FROM a1",
              "SELECT count(distinct(x)) FROM a1 LIMIT x", "SELECT count(distinct(x) +) FROM a1",
              "SELECT count(distinct) FROM a1"]
        self.whole_and_chunked(qs, self.bad, "a call in WHERE, distinct() in a call")
        # what influxd answers stays vigild's statement error, read whole: the statement after
        # it runs (the run goes on after vigild's own error)
        for q in ("SELECT x FROM a1 WHERE f(1 /*x*/, 2) = 1", "SELECT count(distinct(x)) FROM a1",
                  "SELECT count(distinct /*x*/ x) AS c FROM a1",
                  "SELECT count(distinct(x) + /*x*/ 1, 2) FROM a1"):
            with self.subTest(q=q):
                got = self.vigild(q + "; SHOW MEASUREMENTS LIMIT 1")["results"]
                self.assertIn("vigild does not support", got[0]["error"])
                self.assertEqual(got[1]["series"][0]["values"], [["a1"]])

    def test_with_measurement_qualified_as_influxd(self):
        # influx8: influxd reads SHOW MEASUREMENTS' WITH MEASUREMENT = as a FROM source
        # ([db.][rp.]name, db.rp./re/) and keeps the name or regex alone, whatever the database
        # and policy; vigild's 400 "found ., expected ;" at the first dot
        qs = ["SHOW MEASUREMENTS WITH MEASUREMENT = " + m for m in (
            "g.autogen.a1", "autogen.a1", "g..a1", "g.rp2.a1", "x.autogen.a1",
            '"g"."autogen"."b1" LIMIT 1', "g.autogen.nosuch", "g.autogen.vigil_scores",
            "g.autogen./b/ WHERE device = 'b1'", "autogen./a/", "g. autogen.a1",
            "g.autogen.", "g.autogen.a1 /x/", "autogen.a1 /x/", "g.autogen./*x*/", "g.'a1'")]
        qs += ["SHOW MEASUREMENTS WITH MEASUREMENT =~ g.autogen./a/",
               "SHOW MEASUREMENTS ON g WITH MEASUREMENT = g.autogen.a1 LIMIT 1 OFFSET 0",
               "SHOW MEASUREMENTS WITH MEASUREMENT = g.autogen.a1; SHOW MEASUREMENTS WITH "
               "MEASUREMENT = autogen.a2"]
        self.whole_and_chunked(qs, lambda want, chunked: None, "WITH MEASUREMENT = db.rp.name")

    def test_from_lists_on_show_statements(self):
        # influx8: influxd reads a list of sources after the SHOW statements' FROM (FROM a1,
        # a2, /re/) and answers a series per measurement; vigild's 400 "found ,, expected ...".
        # vigild now reads the list as influxd parses it: one name however often named is
        # answered as influxd answers it, several are vigild's statement error (the run goes on)
        same = ["SHOW TAG KEYS FROM a1, a1", "SHOW TAG KEYS FROM a1,a1 LIMIT 1",
                "SHOW TAG KEYS FROM a1 , a1", "SHOW TAG KEYS FROM a1, g.autogen.a1",
                "SHOW TAG KEYS FROM a1, a1 WHERE device = 'a1'", "SHOW FIELD KEYS FROM b1, b1",
                "SHOW FIELD KEYS FROM vigil_scores, vigil_scores",
                "SHOW TAG KEY CARDINALITY FROM a1, a1", "SHOW FIELD KEY CARDINALITY FROM b1, b1",
                "SHOW TAG KEYS FROM a1,", "SHOW TAG KEYS FROM a1, 'b'",
                "SHOW TAG KEYS FROM a1, b1 /x/", "SHOW TAG KEYS FROM a1, b1,/x/",
                "SHOW FIELD KEYS FROM a1, g.autogen./x/ /y/",
                "SHOW TAG VALUES FROM a1, WITH KEY = device"]
        self.whole_and_chunked(same, lambda want, chunked: None, "a FROM list of one name")
        several = ["SHOW TAG KEYS FROM a1, b1", "SHOW FIELD KEYS FROM a1, b1 LIMIT 1",
                   "SHOW TAG VALUES FROM a1, a2 WITH KEY = device",
                   "SHOW TAG KEYS FROM a1, b1 WHERE device = 'a1'",
                   "SHOW TAG KEY CARDINALITY FROM a1, b1", "SHOW FIELD KEY CARDINALITY FROM a1, b1",
                   "SHOW TAG VALUES CARDINALITY FROM a1, a2 WITH KEY = device"]
        for q in several:
            with self.subTest(q=q):
                want, got = self.both(q + "; SHOW MEASUREMENTS LIMIT 1")
                self.assertEqual(want[0], 200, want)
                self.assertIn(b'"series"', want[1])
                self.assertEqual(got, (200, b'{"results":[{"statement_id":0,"error":"vigild does '
                                            b'not support several measurements in FROM"},{"statem'
                                            b'ent_id":1,"series":[{"name":"measurements","columns'
                                            b'":["name"],"values":[["a1"]]}]}]}'))
        # a regex among them is vigild's statement error for a regex in FROM, as alone
        got = self.vigild("SHOW TAG VALUES FROM a1, /b/ WITH KEY = device")
        self.assertEqual(got["results"][0]["error"],
                         "vigild does not support a regular expression in FROM")

    def test_name_of_more_than_three_segments_as_influxd(self):
        # influx8: influxd reads a source's name as segments ('.' and a name, to a '/' or a
        # number after a '.') and refuses more than three, "too many segments in ..." (its
        # QuoteIdent of them; at line 1, char 1); vigild's "found ., expected ;" at the third dot
        qs = ["SELECT x FROM " + n for n in (
            "a.b.c.d.e", '"a b".c.d.e', 'a.b.c."d e"', "a..c.d", "a.b.c./x/", "a.b.c.",
            "a.b.c.d WHERE", "a.b.c.d, e", 'a.b."".d', "a.b.c. d", "a.b.c .d", "a.b.c.1",
            "a.b.1", "a1.1e3", "a.b.c.'s'", '"".b.c.d', 'a.b.c.""', "a.b.c.d./x/",
            "a.b.c.d /x/", '"a\\"b".c.d.e', "a.b.c.select", "a.b.c.d-e", "a.b.c. -- x")]
        qs += ["SHOW TAG KEYS FROM g.autogen.a1.x", "SHOW MEASUREMENTS; SHOW TAG KEYS FROM "
               "g.autogen.a1.x", "SHOW SERIES FROM a1, a.b.c.d",
               "SHOW MEASUREMENTS WITH MEASUREMENT = a.b.c.d", "SHOW FIELD KEYS FROM a1, a.b.c.d"]
        self.whole_and_chunked(qs, self.bad, "a name of more than three segments")

    def test_tag_values_from_a_device_as_influxd(self):
        # influx9: SHOW TAG VALUES (and its CARDINALITY) FROM a device's own name, no WHERE: that
        # device's one value, as SHOW SERIES and SHOW TAG KEYS read that name and as influxd
        # answers where the device's points are "a1,device=a1"; vigild listed (and counted)
        # every device
        qs = ["SHOW TAG VALUES FROM a1 WITH KEY = device", 'SHOW TAG VALUES FROM "b1" WITH KEY = '
              '"device"', "SHOW TAG VALUES ON g FROM g.autogen.a2 WITH KEY = device",
              "SHOW TAG VALUES FROM a1 WITH KEY = device LIMIT 1",
              "SHOW TAG VALUES FROM a1 WITH KEY = device LIMIT 2 OFFSET 0",
              "SHOW TAG VALUES FROM a1 WITH KEY = device OFFSET 1",
              "SHOW TAG VALUES FROM a1 WITH KEY = device ORDER BY time DESC LIMIT 1",
              "SHOW TAG VALUES FROM a1 WITH KEY =~ /dev/", "SHOW TAG VALUES FROM a1 WITH KEY != x",
              "SHOW TAG VALUES FROM b1 WITH KEY IN (x, device)",
              "SHOW TAG VALUES FROM a1 WITH KEY = x",
              "SHOW TAG VALUES FROM a1, a1 WITH KEY = device",
              "SHOW TAG VALUES FROM a1 WITH KEY = device; SHOW TAG VALUES FROM a2 WITH KEY = "
              "device",
              "SHOW TAG VALUES FROM vigil_scores WITH KEY = device",
              "SHOW TAG VALUES CARDINALITY FROM a1 WITH KEY = device",
              "SHOW TAG VALUES EXACT CARDINALITY FROM a1 WITH KEY = device",
              "SHOW TAG VALUES CARDINALITY FROM a1 WITH KEY = device OFFSET 1",
              "SHOW TAG VALUES CARDINALITY FROM a1 WITH KEY = device LIMIT 1",
              "SHOW TAG VALUES EXACT CARDINALITY FROM b1 WITH KEY IN (device, x)",
              "SHOW TAG VALUES CARDINALITY FROM a2 WITH KEY = x",
              "SHOW MEASUREMENTS LIMIT 1; SHOW TAG VALUES CARDINALITY FROM a1 WITH KEY = device"]
        self.whole_and_chunked(qs, self.ok, "SHOW TAG VALUES from a device")

    def test_review_tag_values_from_a_device_with_where_as_influxd(self):
        # influx9 review: FROM a device's id with a WHERE on the device tag, that device's value
        # when it passes, as influxd answers where its points are "a1,device=a1" and as vigild's
        # SHOW TAG KEYS reads that name; the branch listed a1 without WHERE and nothing with
        # WHERE device = 'a1', an answer no points of influxd's give
        qs = ["SHOW TAG VALUES FROM a1 WITH KEY = device WHERE device = 'a1'",
              "SHOW TAG VALUES FROM a1 WITH KEY = device WHERE device = 'a2'",
              "SHOW TAG VALUES FROM a1 WITH KEY = device WHERE device != ''",
              "SHOW TAG VALUES FROM a1 WITH KEY = device WHERE device = ''",
              "SHOW TAG VALUES FROM b1 WITH KEY = device WHERE device =~ /b/ OR device = 'x'",
              "SHOW TAG VALUES FROM b1 WITH KEY = device WHERE device !~ /b/",
              "SHOW TAG VALUES FROM a2 WITH KEY =~ /dev/ WHERE device = 'a2' AND device != 'a1'",
              "SHOW TAG VALUES FROM a1 WITH KEY = device WHERE device = 'a1' OFFSET 1",
              "SHOW TAG VALUES FROM a1 WITH KEY = device WHERE device = 'a1' LIMIT 1",
              "SHOW TAG VALUES FROM a1 WITH KEY = x WHERE device = 'a1'",
              "SHOW TAG VALUES FROM a1 WITH KEY = device WHERE device = 5",
              "SHOW TAG VALUES CARDINALITY FROM a1 WITH KEY = device WHERE device = 'a1'",
              "SHOW TAG VALUES EXACT CARDINALITY FROM a1 WITH KEY = device WHERE device =~ /a/",
              "SHOW TAG VALUES CARDINALITY FROM a1 WITH KEY = device WHERE device = 'b1'",
              "SHOW TAG VALUES CARDINALITY FROM a1 WITH KEY = device WHERE device = 5"]
        self.whole_and_chunked(qs, self.ok, "SHOW TAG VALUES from a device, WHERE")

    def test_tag_keys_and_values_from_another_policy_as_influxd(self):
        # influx9: influxd 1.6.7 answers SHOW TAG KEYS and SHOW TAG VALUES from the name alone,
        # whatever database and policy come before it (rp2 is no policy of its); vigild's
        # "retention policy other than autogen" error ended the run there
        qs = ["SHOW TAG KEYS FROM g.rp2.a1; SHOW MEASUREMENTS LIMIT 1",
              "SHOW TAG KEYS FROM rp2.a1", "SHOW TAG KEYS FROM x.rp2.b1",
              "SHOW TAG KEYS FROM rp2.a1, a1; SHOW MEASUREMENTS LIMIT 1",
              "SHOW TAG KEYS FROM a1, g.rp2.a1; SHOW MEASUREMENTS LIMIT 1",
              "SHOW TAG KEYS FROM g.rp2.a1 WHERE device = 'a1'",
              "SHOW TAG KEYS FROM g.rp2.a1 WHERE device = 'a2'",
              "SHOW TAG KEYS FROM rp2.vigil_scores LIMIT 1",
              "SHOW TAG VALUES FROM g.rp2.a1 WITH KEY = device; SHOW MEASUREMENTS LIMIT 1",
              "SHOW TAG VALUES FROM rp2.vigil_scores WITH KEY = device",
              "SHOW TAG VALUES FROM rp2.a1 WITH KEY = device WHERE device = 'a2'",
              "SHOW TAG VALUES FROM g.rp2.a1 WITH KEY = x; SHOW MEASUREMENTS LIMIT 1"]
        self.whole_and_chunked(qs, self.ok, "SHOW TAG KEYS / VALUES from another policy")
        # The other statements, and these two's CARDINALITY forms, still end the run, as
        # influxd's "retention policy not found" (chunked, its words and vigild's differ)
        self.assert_policy_ends_run(("SHOW FIELD KEYS FROM g.rp2.a1",
                                     "SHOW TAG KEY CARDINALITY FROM rp2.a1",
                                     "SHOW TAG VALUES CARDINALITY FROM g.rp2.a1 WITH KEY = device",
                                     "SELECT x FROM g.rp2.a1", "SHOW SERIES FROM rp2.a1"))

    def assert_policy_ends_run(self, qs):
        """Each of qs, a statement naming the policy rp2 (which neither server holds), ends the
        run, as influxd's "retention policy not found": whole, both answer "not executed"."""
        for q in qs:
            with self.subTest(q=q):
                want, got = self.both(q + "; SHOW MEASUREMENTS LIMIT 1")
                self.assertEqual(want, (200, b'{"results":[{"statement_id":0,"error":"not exec'
                                             b'uted"}]}'))
                self.assertEqual(got, want)

    def test_list_statements_chunked_as_influxd(self):
        # influx9: with chunked=true influxd sends SHOW TAG KEYS', SHOW FIELD KEYS' and SHOW TAG
        # VALUES' series a document each ("partial":true on all but the last in SHOW FIELD KEYS
        # alone); vigild sent them in one document
        qs = ["SHOW TAG KEYS", "SHOW TAG KEYS LIMIT 1", "SHOW TAG KEYS WHERE device = 'a1'",
              "SHOW TAG KEYS WHERE device != 'a1'", "SHOW TAG KEYS WHERE device = 'nosuch'",
              "SHOW TAG KEYS OFFSET 1", "SHOW FIELD KEYS", "SHOW FIELD KEYS LIMIT 1",
              "SHOW FIELD KEYS OFFSET 3", "SHOW FIELD KEYS LIMIT 2 OFFSET 1",
              "SHOW FIELD KEYS OFFSET 9", "SHOW FIELD KEYS FROM b1",
              "SHOW TAG KEYS; SHOW FIELD KEYS LIMIT 1 OFFSET 1; SHOW MEASUREMENTS LIMIT 1",
              "SHOW MEASUREMENTS LIMIT 1; SHOW TAG KEYS WHERE device =~ /a/"]
        self.whole_and_chunked(qs, self.ok, "list statements, chunked")
        # SHOW TAG VALUES without FROM: influxd's documents but the reserved three's, which
        # vigild does not list there (README)
        reserved = (b'"name":"vigil_anomalies"', b'"name":"vigil_predictions"',
                    b'"name":"vigil_scores"')
        for q in ("SHOW TAG VALUES WITH KEY = device", "SHOW TAG VALUES WITH KEY =~ /d/ LIMIT 1",
                  "SHOW TAG VALUES WITH KEY = device WHERE device =~ /a/; SHOW MEASUREMENTS "
                  "LIMIT 1"):
            with self.subTest(q=q):
                want, got = [self.chunked(port, q) for port in (self.influxd.port,
                                                                self.d.http_port)]
                docs = [d for d in want[1].split(b"\n") if not any(n in d for n in reserved)]
                self.assertGreater(len(docs), 3, want)
                self.assertEqual(got, (200, b"\n".join(docs)))

    def test_names_of_empty_segments_as_influxd(self):
        # influx9: a run of dots in a source's name, as influxd's parseSegmentedIdents reads it:
        # '.' right after '.' an empty segment (more than three: "too many segments"), '.' and a
        # digit a number that ends the name ("found .1, expected ;"); vigild's "found 1" / "found
        # ." / "found .1, expected identifier"
        qs = ["SELECT x FROM " + n for n in (
            "a..1", "a...b", "a....b", "a...1", "g..1 WHERE", '"a"..1', "a.b..1", "a.b...c",
            "a.b.c..d", "a.b.c...", "a.b.c..1", "a.b.c.d..e", "a.b.c../x/", "a......", "a....1",
            "a.b../x/", "a.b..c", "a..1; SHOW MEASUREMENTS", "a...", "a.../x/")]
        qs += ["SHOW TAG KEYS FROM a..1", "SHOW TAG VALUES FROM a..1 WITH KEY = device",
               "SHOW SERIES FROM a..1", "SHOW FIELD KEYS FROM a...b", "SHOW SERIES FROM a1, a.b..c",
               "SHOW MEASUREMENTS WITH MEASUREMENT = a..1", "SHOW TAG KEY CARDINALITY FROM a...1"]
        self.whole_and_chunked(qs, self.bad, "names of empty segments")

    def test_parenthesis_after_a_cast_as_influxd(self):
        # influx9: after name::type a '(' is no call to influxd: its expression ends there, its
        # 400 "found (, expected ;" (")" in parentheses); vigild read f::tag(1, 2) = 1 as a
        # condition on f, its statement error
        qs = ["SELECT x FROM a1 WHERE " + w for w in (
            "f::tag(1,2)=1", "f::field(1)=1", "f::tag (1)=1", "device::tag(1) = 'a1'",
            "device::tag = 'a1' AND f::tag(1)", "(f::tag(1))", "f::tag /* c */ (1)=1",
            "f::tag(1,2)=1; SHOW MEASUREMENTS", "time > 0 AND f::integer(1)", "f::tag(",
            "f(1)::tag = 1")]
        qs += ["SHOW TAG KEYS WHERE device::tag(1) = 'a1'",
               "SHOW MEASUREMENTS WHERE device::tag(1) = 'a1'",
               "SELECT mean(x) FROM a1 WHERE f::tag(1) GROUP BY time(1m)"]
        self.whole_and_chunked(qs, self.bad, "a parenthesis after a cast")

    def test_select_from_lists_read_as_influxd(self):
        # influx9: influxd reads a list of sources after SELECT's FROM; vigild's 400 "found ,,
        # expected ;". Parse errors in it are now influxd's; a list is vigild's statement error
        # (the run goes on), but a policy other than autogen in it ends the run, as influxd's
        qs = ["SELECT x FROM a1,", "SELECT x FROM a1, WHERE", "SELECT x FROM a1, 1",
              "SELECT x FROM a1, a2 WHERE device = 'a1' GROUP BY", "SELECT x FROM a1 , a2 LIMIT x",
              "SELECT x FROM a1, a.b.c.d", "SELECT x FROM a1,/x/ /y/", "SELECT x FROM a1, a..1"]
        self.whole_and_chunked(qs, self.bad, "SELECT's FROM lists, parse errors")
        for q in ("SELECT x FROM a1, a2", "SELECT x FROM a1, /a/", "SELECT x FROM a2, a2",
                  "SELECT mean(x) FROM a1, b1 WHERE device = 'a1' GROUP BY time(1m)"):
            with self.subTest(q=q):
                got = self.vigild(q + "; SHOW MEASUREMENTS LIMIT 1")["results"]
                self.assertEqual(got[0]["error"],
                                 "vigild does not support several measurements in FROM")
                self.assertEqual(got[1]["series"][0]["values"], [["a1"]])
        self.assert_policy_ends_run(("SELECT x FROM a1, g.rp2.a1", "SELECT x FROM g.rp2.a1, a1",
                                     "SELECT x FROM /a/, rp2.a1"))

    def test_cardinality_counts_chunked_as_influxd(self):
        # influx8: with chunked=true influxd sends a cardinality statement's counts a document
        # per series, "partial":true on all but the last; vigild sent one document of them all
        qs = ["SHOW TAG KEY CARDINALITY", "SHOW TAG KEY EXACT CARDINALITY",
              "SHOW FIELD KEY CARDINALITY", "SHOW FIELD KEY EXACT CARDINALITY LIMIT 2",
              "SHOW SERIES CARDINALITY FROM a1, a2", "SHOW SERIES EXACT CARDINALITY FROM a1, a2",
              "SHOW SERIES EXACT CARDINALITY FROM /a/", "SHOW FIELD KEY CARDINALITY FROM b1",
              "SHOW TAG KEY CARDINALITY WHERE device = 'a1'",
              "SHOW TAG KEY CARDINALITY; SHOW FIELD KEY CARDINALITY",
              "SHOW SERIES EXACT CARDINALITY FROM a1, a2; SHOW MEASUREMENTS LIMIT 1",
              "SHOW MEASUREMENTS LIMIT 1; SHOW TAG KEY CARDINALITY FROM a1"]
        self.whole_and_chunked(qs, self.ok, "cardinality counts, chunked")

    def test_cardinality_counts_chunked_shapes_as_influxd(self):
        # review of influx8: the counts chunked a document per measurement ("partial":true on
        # all but the last) over more shapes: none counted, one, several, with WHERE, LIMIT
        # and OFFSET. Left out, as vigild answers them otherwise whole too: FROM lists and
        # regexes but in SHOW SERIES (vigild's statement error), a name that is no device (a
        # count of the device tag), and counts over the reserved measurements, which this
        # influxd holds as points of its own (INFLUXD_ONLY)
        tails = ["FROM a1", "WHERE device = 'nosuch'", "WHERE device = 'a2'", "WHERE device =~ /a/",
                 "LIMIT 1", "LIMIT 2", "OFFSET 1", "LIMIT 1 OFFSET 1", "FROM a1 OFFSET 1"]
        qs = ["SHOW %s CARDINALITY %s" % (st, t) for st in ("TAG KEY", "TAG KEY EXACT",
                                                           "FIELD KEY", "FIELD KEY EXACT")
              for t in tails + ["FROM nosuch"] * st.startswith("FIELD")]
        qs += ["SHOW SERIES %sCARDINALITY %s" % (e, t) for e in ("", "EXACT ") for t in (
            "FROM a1", "FROM a1, a2, b1", "FROM /nosuch/", "FROM /1/", "WHERE device = 'nosuch'",
            "OFFSET 1", "LIMIT 1 OFFSET 1", "FROM /a/ LIMIT 1", "FROM a1 OFFSET 1",
            "ON g FROM b1, vigil_scores")]
        qs += ["SHOW TAG VALUES %sCARDINALITY WITH KEY = %s" % (e, t) for e in ("", "EXACT ")
               for t in ("nosuch", "device OFFSET 1")]
        qs += ["SHOW MEASUREMENT CARDINALITY", "SHOW MEASUREMENT EXACT CARDINALITY FROM /a/",
               "SHOW TAG KEY CARDINALITY LIMIT 1; SHOW SERIES CARDINALITY FROM a1, a2; SHOW "
               "FIELD KEY EXACT CARDINALITY WHERE device = 'nosuch'; SHOW MEASUREMENTS LIMIT 1"]
        self.whole_and_chunked(qs, self.ok, "cardinality counts of more shapes, chunked")

    def test_statements_after_an_error_influxd_sends_run_as_influxd(self):
        # influx7: influxd's executor sends SHOW MEASUREMENTS' "right side of '=' must be a tag
        # value string" as the statement's result and runs the statements after it; vigild
        # ended the run there ("not executed"). Its other statement errors still end the run
        ok, eq, ne = ("SHOW MEASUREMENTS LIMIT %d", "SHOW MEASUREMENTS WHERE device = 1",
                      "SHOW MEASUREMENTS WHERE x != 1 + 2")
        stops = ["SHOW MEASUREMENTS WHERE time > 0", "SELECT mean() FROM a1",
                 "SHOW RETENTION POLICIES ON nosuch", "SHOW MEASUREMENT CARDINALITY GROUP BY 1"]
        qs = ["; ".join(parts) for parts in (
            [eq, ok % 1], [ne, ok % 2], [ok % 1, eq, ok % 2], [eq, ok % 1, ne, ok % 2], [eq, eq],
            [eq, ne, eq], [ok % 1, ok % 2, ne], [eq, "SHOW TAG KEYS FROM a1", "SELECT x FROM a1"],
            ["SHOW MEASUREMENTS ON g WHERE device = 1 LIMIT 1", "SHOW FIELD KEYS FROM b1"])]
        qs += ["; ".join([eq] + [st] + [ok % 1] * after) for st in stops for after in (0, 1)]
        qs += ["; ".join([ok % 1, eq, st, ok % 2]) for st in stops]
        self.whole_and_chunked(qs, self.ok, "statements after an error influxd sends")

    def test_tag_compared_with_an_expression_as_influxd(self):
        # influx6: SHOW MEASUREMENTS WHERE x = 1 + (2 AND time > 0) compares x with an
        # expression (HasTimeExpr walks no operand): influxd's "right side of '=' must be a tag
        # value string"; vigild said "SHOW MEASUREMENTS doesn't support time in WHERE clause"
        # for it and its generic "vigild does not support WHERE ..." for the others
        qs = ["x = 1 + (2 AND time > 0)", "device = 1 + (2 AND time > 0)",
              "device = 'a1' AND x = (time > 0)", "x = f(time > 0)", "x = 1 + 2",
              "device = 'a' + 'b'", "device = 'a1' * 2", "device != 1 + 2", "device = x",
              "device = (1)", "device = ('a1')", "device = 'a1' OR x = 1 + 2",
              "x = 1 + 2 OR device = 'a1'", "device = now()", "device = 1 + 2 AND x != 3 + 4",
              "x != 3 + 4 AND device = 1 + 2", "device != 5 AND x = 3 + 4", "device = 1.5 + 2",
              "device = true AND false", "(x = 1 + 2)", "device =~ /a/ AND x = 1 + (time > 0)"]
        qs = ["SHOW MEASUREMENTS WHERE " + q for q in qs]
        qs += ["SHOW MEASUREMENTS WHERE x = 1 + 2 LIMIT 1", "SHOW MEASUREMENTS ON g WHERE x = 1 + 2"]
        failed = []
        for q in qs:
            with self.subTest(q=q):
                want, got = self.both(q)
                self.assertEqual(want[0], 200, want)
                self.assertIn(b"must be a tag value string", want[1])
                if got != want:
                    failed.append(q)
                self.assertEqual(got, want)
        print("\ntag compared with an expression: %d of %d as influxd" % (
            len(qs) - len(failed), len(qs)))
        # still the time error where HasTimeExpr finds time: in a part's own parentheses
        for q in ("SHOW MEASUREMENTS WHERE ((time > 0))",
                  "SHOW MEASUREMENTS WHERE (device = 'a1') AND (time > 0)"):
            with self.subTest(q=q):
                want, got = self.both(q)
                self.assertIn(b"doesn't support time in WHERE clause", want[1])
                self.assertEqual(got, want)

    def test_cardinality_group_by_as_influxd(self):
        # influx6: influxd reads GROUP BY after a cardinality statement's WHERE (rewriting the
        # statement to a SELECT count) and answers a count per group; vigild's 400 "found GROUP,
        # expected ;". vigild now parses it as influxd (its parse errors and its statement error
        # for a literal dimension byte for byte) and answers the rest with its statement error,
        # influxd's status (200) without its rows
        sts = ["MEASUREMENT", "MEASUREMENT EXACT", "SERIES", "SERIES EXACT", "TAG KEY",
               "TAG KEY EXACT", "FIELD KEY", "FIELD KEY EXACT"]
        same = []
        for st in sts:
            same += ["SHOW %s CARDINALITY GROUP BY %s" % (st, t) for t in (
                "", "1", "'x'", "device, 1", "device,", "device WHERE device = 'a1'",
                "device SLIMIT 1", "device fill(0)", "time(", "device, <")]
        same += ["SHOW TAG VALUES CARDINALITY WITH KEY = device GROUP BY 1",
                 "SHOW TAG VALUES CARDINALITY WITH KEY = device GROUP BY",
                 "SHOW MEASUREMENT CARDINALITY GROUP device",
                 "SHOW SERIES CARDINALITY WHERE time > 0 GROUP BY device",
                 "SHOW MEASUREMENT CARDINALITY GROUP BY device ORDER BY time DESC"]
        failed = []
        for q in same:
            with self.subTest(q=q):
                want, got = self.both(q)
                self.assertNotIn(b'"series"', want[1])
                if got != want:
                    failed.append(q)
                self.assertEqual(got, want)
        print("\ncardinality GROUP BY, errors: %d of %d as influxd" % (
            len(same) - len(failed), len(same)))
        counted = ["SHOW %s CARDINALITY %sGROUP BY %s" % (st, w, g) for st in sts
                   for w in ("", "WHERE device = 'a1' ") for g in ("device", "*", "device, host")]
        counted += ["SHOW FIELD KEY CARDINALITY FROM a1 GROUP BY device LIMIT 1",
                    "SHOW SERIES CARDINALITY ON g GROUP BY device",
                    "SHOW TAG VALUES CARDINALITY WITH KEY = device GROUP BY device",
                    "SHOW MEASUREMENT CARDINALITY GROUP BY /x/"]
        for q in counted:
            with self.subTest(q=q):
                want, got = self.both(q)
                self.assertEqual(want[0], 200, want)
                self.assertIn(b'"series"', want[1])
                self.assertEqual(got, (200, b'{"results":[{"statement_id":0,"error":"vigild does '
                                            b'not support GROUP BY in the cardinality statements'
                                            b'"}]}'))

    def test_statements_after_one_vigild_does_not_support_run(self):
        # influx8: vigild's own "vigild does not support ..." ended the run, where influxd
        # answers the statement and runs the ones after it: answered whole, the error itself
        # was lost ("not executed" in its place, as for a last statement's error of influxd's).
        # It is now the statement's result and the statements after it run: vigild answers
        # as influxd but for that one statement's result. influxd's own errors still end it
        nots = {"SELECT median(x) FROM a1": "the function median",
                "SELECT x FROM /a/": "a regular expression in FROM",
                "SELECT x FROM a1 WHERE x > 1":
                    "conditions on a field or on a tag other than the device tag: x",
                "SELECT x FROM a1 WHERE device =~ /a/ OR device =~ /b/ OR device =~ /c/":
                    "more than two regular expressions on the device tag",
                "SHOW TAG VALUES FROM /a/ WITH KEY = device LIMIT 1 OFFSET 1":
                    "a regular expression in FROM",
                "SHOW TAG KEYS FROM /a/ WHERE device = 'a1' LIMIT 1":
                    "a regular expression in FROM",
                "SHOW MEASUREMENT CARDINALITY GROUP BY device":
                    "GROUP BY in the cardinality statements",
                "SHOW SERIES CARDINALITY GROUP BY device LIMIT 1":
                    "GROUP BY in the cardinality statements"}
        ok, sent, stop = ("SHOW MEASUREMENTS LIMIT %d", "SHOW MEASUREMENTS WHERE device = 1",
                          "SELECT mean() FROM a1")
        u2 = "SELECT median(x) FROM a1"
        for u, what in nots.items():
            for parts, at in (([u, ok % 1], [0]), ([ok % 1, u, ok % 2], [1]),
                              ([u, sent, "SHOW TAG KEYS FROM a1", ok % 2], [0]),
                              ([u, u2, ok % 1], [0, 1]), ([ok % 1, u, stop, ok % 2], [1])):
                q = "; ".join(parts)
                errs = {i: "vigild does not support " + (what if i == parts.index(u) else
                                                         nots[u2]) for i in at}
                for chunked in (False, True):
                    with self.subTest(q=q, chunked=chunked):
                        want, got = [self.chunked(port, q) if chunked else self.query(port, q)
                                     for port in (self.influxd.port, self.d.http_port)]
                        self.assertEqual(want[0], 200, want)
                        self.assertEqual(got[0], 200, got)
                        self.assertEqual(self.results(got[1], chunked),
                                         self.results(want[1], chunked, errs), q)
        # a retention policy vigild does not hold is one influxd does not hold either: its
        # "retention policy not found" ends the run, and so does vigild's error
        q = "SHOW FIELD KEYS FROM g.rp2.a1; SHOW MEASUREMENTS LIMIT 1"
        want, got = self.both(q)
        self.assertEqual(want, (200, b'{"results":[{"statement_id":0,"error":"not executed"}]}'))
        self.assertEqual(got, want)

    def test_statement_read_again_spends_its_budget_once(self):
        # review of influx8: a statement vigild's own error is sent for is read again (parse
        # only) to find its end, the pass's budgets put back as the statement started: a bound
        # regex of 40,000 bytes (of 65,536 a query may bind in all) in such a statement, and
        # one of 20,000 after it, are read as the first pass read them. With the budgets not
        # put back (a patch), the second read counted the first's bytes again: 400 "vigild
        # reads bound regexes of at most 65536 bytes in all in a query"
        params = json.dumps({"r": {"regex": "x" * 40000}, "s": {"regex": "y" * 20000}})
        for q in ("SHOW SERIES CARDINALITY WHERE device =~ $r GROUP BY device",
                  "SELECT median(x) FROM a1 WHERE device =~ $r",
                  "SHOW TAG KEYS FROM a1, b1 WHERE device =~ $r"):
            with self.subTest(q=q):
                st, body = self.query(self.d.http_port, q + "; SHOW TAG KEYS WHERE device =~ $s; "
                                      "SHOW MEASUREMENTS LIMIT 1", method="POST", params=params)
                self.assertEqual(st, 200, body[:300])
                got = json.loads(body)["results"]
                self.assertIn("vigild does not support", got[0]["error"])
                self.assertEqual(got[1], {"statement_id": 1})
                self.assertEqual(got[2]["series"][0]["values"], [["a1"]])

    @staticmethod
    def results(body, chunked, errs=None):
        """The results of a /query answer (chunked: of each document), with those of the
        statements in errs (id: error) replaced by one result holding that error."""
        docs = [json.loads(line) for line in body.split(b"\n") if line] if chunked else \
            [json.loads(body)]
        out = []
        for doc in docs:
            for res in doc["results"]:
                i = res["statement_id"]
                if errs and i in errs:
                    res = {"statement_id": i, "error": errs[i]}
                    if res in out:
                        continue
                out.append(res)
        return out

    def test_query_form_body_encoding_ignored_as_influxd(self):
        # influx5: influxd 1.6.7 parses /query's form body as sent (Go's ParseForm), whatever
        # Content-Encoding says: a gzip body holds no q (its 400 "missing required parameter"),
        # a plain body under "gzip" or an unknown encoding is answered. vigild does the same,
        # where its other body routes inflate gzip and refuse another encoding (415): inflating
        # here would answer what influxd refuses, and refuse what it answers.
        plain = b"db=g&q=SHOW+MEASUREMENTS"
        for body, enc in ((gzip.compress(plain), "gzip"), (gzip.compress(plain), "x-gzip"),
                          (gzip.compress(plain), "br"), (plain, "gzip"), (plain, "br"),
                          (plain, "identity"), (plain, None)):
            with self.subTest(enc=enc, gzipped=body != plain):
                got = []
                for port in (self.influxd.port, self.d.http_port):
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    headers = {"Content-Type": "application/x-www-form-urlencoded"}
                    if enc:
                        headers["Content-Encoding"] = enc
                    c.request("POST", "/query", body, headers)
                    r = c.getresponse()
                    got.append((r.status, r.read()))
                    c.close()
                if body != plain:
                    self.assertEqual(got[0], (400, b'{"error":"missing required parameter '
                                                   b'\\"q\\""}\n'))
                else:
                    self.assertEqual(got[0][0], 200, got[0])
                self.assertEqual(got[1], got[0])


if __name__ == "__main__":
    vt.main()

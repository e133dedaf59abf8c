#!/usr/bin/python3
"""vigild integration (session 50, task influx10): InfluxQL leftovers, each statement sent to
vigild and to a real influxd 1.6.7 (the InfluxdPair fixture, Debian's influxd on loopback)
holding the same points and compared byte for byte, whole and with chunked=true: a source naming
a database neither server lists (FROM other..a1, other.autogen.a1: influxd's "database not
found", which ends the run), and SELECT's series chunked, a document each. The points: devices
written each as a measurement of its own with the device tag (a1, a2), one untagged (u1), and
Telegraf's shape, measurement pump with the tag (t1, t2)."""

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
POINTS = "\n".join([
    "a1,device=a1 x=1,y=2 %d" % T, "a1,device=a1 x=2,y=3 %d" % (T + 1000),
    "a2,device=a2 y=1 %d" % T, "u1 x=5 %d" % T, "u1 x=6 %d" % (T + 1000),
    "pump,device=t1 x=7 %d" % T, "pump,device=t2 x=8 %d" % (T + 1000)])
NOT_EXECUTED = b'{"results":[{"statement_id":0,"error":"not executed"}]}'


class Leftovers(InfluxdPair):
    """Sources naming another database, and SELECT's series chunked, compared with influxd."""

    POINTS = POINTS

    @classmethod
    def vigild_only(cls):
        # g2: a database both list (created on both), holding nothing on influxd
        for port in (cls.d.http_port, cls.influxd.port):
            status, body = cls.post(port, "/query", "q=CREATE+DATABASE+g2")
            assert status == 200, (port, status, body)

    def test_database_not_found_as_influxd(self):
        # influx10: influxd 1.6.7 looks a source's database up (db..name, db.rp.name, and
        # db../re/ too) and answers "database not found: other" for one it does not have, in
        # SELECT, SHOW SERIES, SHOW FIELD KEYS and every cardinality statement, ending the run
        # (whole, "not executed"; chunked, its error then "not executed"); vigild, whose one store
        # is every database, read the name alone and answered a1's points
        qs = ["SELECT x FROM other..a1", "SELECT x FROM other.autogen.a1",
              "SELECT x FROM other.rp2.a1", 'SELECT x FROM "other".autogen.a1',
              "SELECT x FROM G..a1", "SELECT x FROM other../a/", "SELECT x FROM other.autogen./a/",
              "SELECT DISTINCT(x) FROM other..a1", "SELECT x FROM other..a1 GROUP BY *",
              "SELECT x FROM other..a1 WHERE device = 'a1' AND y > 1",
              "SELECT mean(x), x FROM other..a1", "SELECT x FROM a1, other..a1",
              "SELECT mean(x) FROM other..a1 GROUP BY time(1s)",
              "SHOW SERIES FROM other..a1", "SHOW SERIES FROM other../a/",
              "SHOW SERIES FROM a1, other..a1", "SHOW FIELD KEYS FROM other..a1",
              "SHOW FIELD KEYS FROM other../a/", "SHOW FIELD KEYS FROM a1, other..a1",
              "SHOW SERIES CARDINALITY FROM other..a1", "SHOW SERIES CARDINALITY FROM other../a/",
              "SHOW SERIES EXACT CARDINALITY FROM other..a1",
              "SHOW TAG KEY CARDINALITY FROM other..a1",
              "SHOW TAG VALUES CARDINALITY FROM other..a1 WITH KEY = device",
              "SHOW FIELD KEY CARDINALITY FROM other..a1"]
        qs += [q + "; SELECT x FROM a1" for q in (
            "SELECT x FROM other..a1", "SELECT x FROM a1, other..a1", "SHOW SERIES FROM other..a1",
            "SHOW SERIES CARDINALITY FROM a1, other..a1")]
        qs.append("SELECT x FROM a1; SELECT x FROM other..a1; SELECT x FROM a1")

        def check(want, chunked):  # whole, "not executed" in its place after statement 0
            self.assertEqual(want[0], 200, want)
            self.assertTrue(b"database not found: " in want[1] or
                            b'"error":"not executed"' in want[1], want)
        self.whole_and_chunked(qs, check, "a database neither lists")

    def test_lookup_errors_in_a_list_as_influxd(self):
        # influx10: in a list of sources influxd looks every database up before any policy
        # (g.rp2.a1, other..a1: "database not found: other"), and either ends the run whatever
        # the list holds before it (a1, a2, g.rp2.a1); vigild named the first source's reason
        # (SELECT) or, in SHOW FIELD KEYS, "several measurements in FROM" and ran on
        qs = [q + "; SHOW MEASUREMENTS LIMIT 1" for q in (
            "SELECT x FROM g.rp2.a1, other..a1", "SELECT x FROM a1, g.rp2.a1, other..a1",
            "SELECT x FROM other..a1, g.rp2.a1", "SELECT x FROM other..a1, nope..a1",
            "SELECT x FROM a1, /a/, other..a1", "SHOW FIELD KEYS FROM g.rp2.a1, other..a1",
            "SHOW FIELD KEYS FROM a1, a2, g.rp2.a1", "SHOW FIELD KEYS FROM a1, a2, other..a1",
            "SHOW FIELD KEYS FROM /a/, other..a1", "SHOW TAG KEY CARDINALITY FROM g.rp2.a1, "
            "other..a1", "SHOW FIELD KEY CARDINALITY FROM a1, a2, other..a1",
            "SHOW SERIES FROM g.rp2.a1, other..a1")]
        for q in qs:
            with self.subTest(q=q):
                want, got = self.both(q)
                self.assertEqual(want, (200, NOT_EXECUTED))
                self.assertEqual(got, want)
        # chunked, the first document is influxd's error where it names a database
        self.whole_and_chunked([q for q in qs if "..a1" in q], self.ok, "lookup errors in a list")

    def test_database_ignored_where_influxd_ignores_it(self):
        # influx10: SHOW TAG KEYS and SHOW TAG VALUES answer from the name alone, as influxd
        # does (session 49's rule for another policy), and so does SHOW MEASUREMENTS' WITH
        # MEASUREMENT; a regex after another database stays vigild's statement error there
        self.whole_and_chunked([
            "SHOW TAG KEYS FROM other..a1", "SHOW TAG KEYS FROM other.autogen.a2",
            "SHOW TAG VALUES FROM other..a1 WITH KEY = device",
            "SHOW TAG KEYS FROM other..a1; SHOW TAG KEYS FROM a1",
            "SHOW MEASUREMENTS WITH MEASUREMENT = other..a1",
            "SELECT x FROM g..a1", "SELECT x FROM g.autogen.a1"], self.ok, "another database read")
        for q in ("SHOW TAG KEYS FROM other../a/", "SHOW TAG VALUES FROM other../a/ WITH KEY = "
                  "device"):
            res = self.vigild(q)["results"][0]
            self.assertEqual(res.get("error"), "vigild does not support a regular expression in "
                             "FROM", (q, res))
        # A database both list, not the query's: influxd reads its points (none here); vigild's
        # one store answers a1's (README)
        q = "SELECT x FROM g2..a1"
        self.assertEqual(self.query(self.influxd.port, q), (200, b'{"results":[{"statement_id"'
                                                                b':0}]}'))
        self.assertEqual(self.vigild(q)["results"][0]["series"][0]["values"],
                         [[T, 1], [T + 1000, 2]])

    def test_select_series_chunked_as_influxd(self):
        # influx10: with chunked=true influxd 1.6.7 sends a SELECT's series a document each,
        # "partial":true on all but the last; vigild sent them in one document
        qs = ["SELECT x FROM pump WHERE device =~ /t/ GROUP BY device",
              "SELECT mean(x) FROM pump WHERE device =~ /t/ GROUP BY device",
              "SELECT count(x) FROM pump WHERE device =~ /t/ GROUP BY device",
              "SELECT x FROM pump WHERE device =~ /t/ GROUP BY device LIMIT 1",
              "SELECT x FROM pump WHERE device =~ /t/ GROUP BY device SLIMIT 1",
              "SELECT x FROM pump WHERE device =~ /t/ GROUP BY device ORDER BY time DESC",
              "SELECT mean(x) FROM pump WHERE device =~ /t/ AND time >= %dms AND time < %dms "
              "GROUP BY time(1s), device" % (T, T + 2000),
              "SELECT mean(x) FROM pump WHERE device =~ /t/ AND time >= %dms AND time < %dms "
              "GROUP BY time(1s), device fill(none)" % (T, T + 2000),
              "SELECT x FROM pump WHERE device =~ /t/ GROUP BY device; SELECT x FROM pump WHERE "
              "device =~ /t/ GROUP BY device",
              "SELECT x FROM pump WHERE device =~ /t/", "SELECT x FROM pump WHERE device = 't1' "
              "GROUP BY device",
              # review: no series at all, and one of a vigil measurement next to readings'
              "SELECT x FROM pump WHERE device = 'zz' GROUP BY device",
              "SELECT x FROM pump WHERE device =~ /t/ AND time > now() GROUP BY device",
              "SELECT x FROM pump WHERE device =~ /zz/ GROUP BY device; SELECT x FROM pump WHERE "
              "device =~ /t/ GROUP BY device",
              "SELECT x FROM pump WHERE device =~ /t/ GROUP BY device SLIMIT 1 SOFFSET 1"]
        self.whole_and_chunked(qs, self.ok, "SELECT's series chunked")
        body = self.chunked(self.d.http_port, qs[0])[1].splitlines()
        self.assertEqual([b'"partial":true' in line for line in body], [True, False], body)
        self.assertEqual(vt.chunked_results(b"\n".join(body)),
                         self.vigild(qs[0])["results"])


class OwnDatabase(vt.DaemonTestCase):
    """What Grafana, Chronograf and Telegraf send must not meet "database not found": FROM
    naming the query's own db= (listed or not, as FROM with no database reads it), and a
    database SHOW DATABASES cannot list (longer than 64 bytes, or past its 32 names)."""

    LONG = "L" * 65

    def ask(self, db, q, method="GET"):
        enc = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ms"})
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=30)
        if method == "GET":
            c.request("GET", "/query?" + enc)
        else:  # Grafana's POST mode: the parameters in a form body
            c.request("POST", "/query", enc, {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        body = r.read()
        c.close()
        self.assertEqual(r.status, 200, body)
        return json.loads(body)["results"]

    def write(self, db, lines):
        status, body = InfluxdPair.post(self.d.http_port, "/write?precision=ms&db=" +
                                        urllib.parse.quote(db), lines)
        self.assertEqual(status, 204, body)

    def test_own_and_unlistable_databases_read(self):
        # review of influx10: the branch looked every FROM database up in SHOW DATABASES' list,
        # so a Chronograf-style FROM "db"."autogen"."a1" failed for a db= written to but not
        # listable (65 bytes, or the 33rd name), and for a db= not written to yet, where FROM a1
        # with the same db= answers
        self.write(self.LONG, "a1,device=a1 x=1 %d" % T)
        want = self.ask(self.LONG, "SELECT x FROM a1")
        self.assertEqual(want[0]["series"][0]["values"], [[T, 1]], want)
        for db, q in ((self.LONG, 'SELECT x FROM "%s"."autogen"."a1"' % self.LONG),
                      (self.LONG, 'SELECT x FROM "%s".."a1"' % self.LONG),
                      ("fresh", 'SELECT x FROM "fresh"."autogen"."a1"'),
                      ("fresh", "SELECT x FROM fresh..a1"),
                      ('we"ird.db', 'SELECT x FROM "we\\"ird.db"."autogen"."a1"'),
                      ("g", 'SELECT x FROM "autogen"."a1"'), ("g", "SELECT x FROM a1")):
            for method in ("GET", "POST"):
                with self.subTest(db=db, q=q, method=method):
                    self.assertEqual(self.ask(db, q, method), want)
        # another database than db=, never written to: influxd's error, the list not full
        self.assertEqual(self.ask("g", "SELECT x FROM other..a1")[0].get("error"),
                         "database not found: other")
        # 32 names listed: a 33rd written to is not listed, and FROM it reads on
        for i in range(32):
            self.write("d%02d" % i, "a1,device=a1 x=1 %d" % T)
        self.write("late", "a1,device=a1 x=1 %d" % T)
        names = [v[0] for v in self.ask("g", "SHOW DATABASES")[0]["series"][0]["values"]]
        self.assertEqual(len(names), 32, names)
        self.assertNotIn("late", names)
        self.assertEqual(self.ask("g", "SELECT x FROM late.autogen.a1"), want)


if __name__ == "__main__":
    vt.main()

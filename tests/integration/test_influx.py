#!/usr/bin/python3
"""vigild integration: InfluxDB v1 compatibility, the database statements: /query's CREATE and
SHOW DATABASES and SHOW RETENTION POLICIES (influxd 1.6.7's parse errors word for word; the
names kept across a restart, under concurrent first uses, on a full disk, within their bounds,
with tokens; the warning while a name cannot be kept), /write?rp=, and the real `influx`
command-line client (Debian influxdb-client) writing through /write, its interactive shell's
USE (also USE db.rp) and INSERT included (InfluxCli is here: DatabasesRestart types into its
shell). The line protocol: test_influx_write.py; Grafana's queries: test_influx_grafana.py;
InfluxQL compared with influxd 1.6.7: test_influxql*.py; what they share: influxpair.py."""

import http.client
import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import CREATED, INFLUX  # noqa: E402


class Databases(vt.DaemonTestCase):
    """SHOW DATABASES lists the names CREATE DATABASE and /write?db= used, in that order (a
    daemon of its own, so the list is exactly this test's)."""

    def show(self, q="SHOW DATABASES", method="POST"):
        """Asks q; asserts InfluxDB's form of the answer and returns the names it lists."""
        get = ["-G"] if method == "GET" else []
        r = self.d.curl(method, "/query", *get, "--data-urlencode", "q=" + q)
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        values = doc["results"][0]["series"][0].get("values")
        want = {"name": "databases", "columns": ["name"]}
        if values is not None:
            want["values"] = values
        self.assertEqual(doc, {"results": [{"statement_id": 0, "series": [want]}]})
        self.assertTrue(all(len(row) == 1 for row in values or []), values)
        return [row[0] for row in values or []]

    def test_show_databases(self):
        # InfluxDB's form with no database: the series without "values".
        r = self.d.curl("POST", "/query?q=SHOW+DATABASES")
        self.assertEqual(r.body.strip(), b'{"results":[{"statement_id":0,"series":'
                                         b'[{"name":"databases","columns":["name"]}]}]}')
        for q in ('CREATE DATABASE "tele\\"graf"', "create database plant WITH DURATION 1d",
                  "CREATE DATABASE telegraf", "CREATE  DATABASE plant",
                  "CREATE DATABASE " + "x" * 65,
                  # longer than vigild lists, and than it once read (255 bytes): taken
                  "CREATE DATABASE " + "z" * 256,
                  # InfluxQL reads \n as a newline (a control character: not listed)
                  'CREATE DATABASE "new\\nline"'):
            r = self.d.curl("POST", "/query", "--data-urlencode", "q=" + q)
            self.assertEqual((r.status, r.json()), (200, CREATED), q)
        # What InfluxDB 1.6.7 cannot parse is a 400 here too, in its words (QueryParseErrors
        # has more), and keeps nothing: no name, an unterminated one, an escape InfluxQL refuses
        # (any but \\, \", \' and \n), a second word after the name.
        for q, err in (("CREATE DATABASE", "found EOF, expected identifier at line 1, char 17"),
                       ("CREATE DATABASE ;", "found ;, expected identifier at line 1, char 17"),
                       ('CREATE DATABASE "unterminated',
                        "found unterminated, expected identifier at line 1, char 16"),
                       ('CREATE DATABASE "bad\\qescape"',
                        "found \\q, expected identifier at line 1, char 22"),
                       ("CREATE DATABASE two words", "found words, expected ; at line 1, char 21")):
            msg = self.assertJsonError(self.d.curl("POST", "/query", "--data-urlencode", "q=" + q),
                                       400, "error parsing query: " + err)
            self.assertTrue(msg.startswith("error parsing query: " + err), (q, msg))
        # An empty quoted name parses; InfluxDB refuses it in a 200.
        r = self.d.curl("POST", "/query", "--data-urlencode", 'q=CREATE DATABASE ""')
        self.assertEqual((r.status, r.json()),
                         (200, {"results": [{"statement_id": 0, "error": "invalid name"}]}))
        for db in ("telegraf", "my db", "", "c\x01trl", "y" * 65):
            r = self.d.write_lp("m,device=dbs v=1 1\n", precision="s", db=db)
            self.assertEqual(r.status, 204, r)   # a name never refuses a write
        # A write refused as a whole (a bad precision, every line bad) stores nothing and so
        # uses no database, as InfluxDB's /write creates none.
        self.assertEqual(self.d.write_lp("m,device=dbs v=1 1\n", precision="d",
                                         db="refused-precision").status, 400)
        self.assertEqual(self.d.write_lp("m,device=dbs v=\n", precision="s",
                                         db="refused-lines").status, 400)
        names = ['tele"graf', "plant", "telegraf", "my db"]
        self.assertEqual(self.show(), names)
        self.assertEqual(self.show("  show   databases ; ", method="GET"), names)
        self.assertEqual(self.d.curl("POST", "/query?q=show%20databases").json(),
                         {"results": [{"statement_id": 0, "series": [{
                             "name": "databases", "columns": ["name"],
                             "values": [[n] for n in names]}]}]})
        for q in ("SHOW DATABASESX", "SHOW SERIES", "DROP DATABASE plant",
                  "CREATE DATABASES x", "SHOW DATABASES; DROP DATABASE plant"):
            self.assertJsonError(self.d.curl("POST", "/query", "--data-urlencode", "q=" + q),
                                 400, "SHOW DATABASES")
        for q, err in (("SHOW DATABASES x", "found x, expected ; at line 1, char 16"),):
            self.assertJsonError(self.d.curl("POST", "/query", "--data-urlencode", "q=" + q),
                                 400, "error parsing query: " + err)
        self.assertEqual(self.show(), names)


def policies(retention, shard):
    """InfluxDB 1.6.7's answer to SHOW RETENTION POLICIES ON a database it has (as its oracle
    gave it: tools/influx_compare.py's set-up), with autogen's duration and shard duration."""
    return {"results": [{"statement_id": 0, "series": [{
        "columns": ["name", "duration", "shardGroupDuration", "replicaN", "default"],
        "values": [["autogen", retention, shard, 1, True]]}]}]}


class RetentionPolicies(vt.DaemonTestCase):
    """SHOW RETENTION POLICIES [ON db] answers one policy, autogen, of storage.retention's
    duration in Go's form, for the databases SHOW DATABASES lists, and InfluxDB's errors (in a
    200) for others; /write?rp=autogen writes."""

    CONFIG = "[storage]\nretention = 30d\n"

    def query(self, q, path="/query"):
        return self.d.curl("POST", path, "--data-urlencode", "q=" + q)

    def test_show_retention_policies(self):
        self.assertEqual(self.query("CREATE DATABASE plant").status, 200)
        r = self.d.curl("POST", "/write?db=tele+graf&rp=autogen&precision=s", "--data-binary",
                        "@-", stdin=b"m,device=rp-1 v=1 %d\n" % (time.time() - 60))
        self.assertEqual(r.status, 204, r)
        self.assertEqual(len(self.d.readings("rp-1")), 1)
        want = policies("720h0m0s", "24h0m0s")
        for q in ("SHOW RETENTION POLICIES ON plant", 'show retention policies on "tele graf";',
                  "  SHOW  RETENTION\tPOLICIES  ON  \"plant\" ; "):
            r = self.query(q)
            self.assertEqual((r.status, r.json()), (200, want), q)
        # Without ON: the db parameter's database (the shell's own SHOW RETENTION POLICIES).
        r = self.query("SHOW RETENTION POLICIES", "/query?db=plant")
        self.assertEqual((r.status, r.json()), (200, want))
        for q, path, err in (
                ("SHOW RETENTION POLICIES ON nosuch", "/query", "database not found: nosuch"),
                ('SHOW RETENTION POLICIES ON "Plant"', "/query", "database not found: Plant"),
                ("SHOW RETENTION POLICIES", "/query?db=nosuch", "database not found: nosuch"),
                ("SHOW RETENTION POLICIES ON " + "p" * 70, "/query",
                 "database not found: " + "p" * 70),
                ("SHOW RETENTION POLICIES", "/query", "database name required"),
                ('SHOW RETENTION POLICIES ON ""', "/query", "database name required"),
                ('SHOW RETENTION POLICIES ON "a\\nb"', "/query", "database not found: a\nb")):
            r = self.query(q, path)
            self.assertEqual((r.status, r.json()),
                             (200, {"results": [{"statement_id": 0, "error": err}]}), q)
        for q in ("SHOW RETENTION POLICIES ON", "SHOW RETENTION POLICIES ON plant x",
                  'SHOW RETENTION POLICIES ON "plant', "SHOW RETENTION POLICIES plant",
                  "SHOW RETENTION POLICIESX ON plant"):
            self.assertEqual(self.query(q).status, 400, q)


class WriteRetentionPolicy(vt.DaemonTestCase):
    """/write?rp= other than autogen (the one policy SHOW RETENTION POLICIES lists) is refused
    as influxd 1.6.7 (Debian's influxdb 1.6.7~rc0-1+b13) answered it on a database it has:
    500 {"error":"retention policy not found: NAME"}, the name percent-decoded, case kept
    (AUTOGEN is not autogen), and nothing stored, whatever the body (good lines, good and bad
    lines, string fields only, empty), also for a name of more than 255 bytes or with a NUL
    byte (500 as from influxd, not a 400). A body of bad lines only gets its parse error (400)
    first, as from influxd. No rp, an empty one and rp=autogen write."""

    def write(self, query, body):
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=30)
        try:
            c.request("POST", "/write?" + query, body=body.encode())
            resp = c.getresponse()
            return resp.status, resp.read()
        finally:
            c.close()

    def lp_counters(self):
        """/metrics' lp ingest counters: (readings taken, lines refused)."""
        text = self.d.get("/metrics")[2].decode()
        found = {}
        for line in text.splitlines():
            for name in ("vigil_ingest_readings_total", "vigil_ingest_rejected_total"):
                if line.startswith(name + '{proto="lp"} '):
                    found[name] = float(line.split()[-1])
        return found["vigil_ingest_readings_total"], found["vigil_ingest_rejected_total"]

    def test_unknown_policy(self):
        taken, refused = self.lp_counters()
        for query, body, name in (
                ("db=plant&rp=foo", "m,device=wrp-1 v=1 1000000000", "foo"),
                ("db=plant&rp=AUTOGEN&precision=s", "m,device=wrp-1 v=1 1", "AUTOGEN"),
                ("db=plant&rp=foo%20bar", "m,device=wrp-1 v=1 1000000000", "foo bar"),
                ("rp=weekly", "m,device=wrp-1 v=1 1000000000\nm,device=wrp-1 v= 2", "weekly"),
                ("db=new-db&rp=foo", 'm,device=wrp-1 s="x" 1000000000', "foo"),
                ("db=plant&rp=foo", "", "foo")):
            st, body = self.write(query, body)
            self.assertEqual((st, json.loads(body)),
                             (500, {"error": "retention policy not found: " + name}), query)
        st, body = self.write("db=plant&rp=foo", "m,device=wrp-1 v= 1")
        self.assertEqual((st, json.loads(body)),
                         (400, {"error": "unable to parse 'm,device=wrp-1 v= 1': missing field "
                                         "value (line 1)"}))
        # A name of more than 255 bytes or with a NUL byte: influxd's 500 too (api__arg's 400
        # made Telegraf drop the batch instead of keeping it to retry).
        st, body = self.write("db=plant&rp=" + "x" * 300, "m,device=wrp-1 v=1 1000000000")
        self.assertEqual((st, json.loads(body)),
                         (500, {"error": "retention policy not found: " + "x" * 300}))
        st, body = self.write("db=plant&rp=a%00b", "m,device=wrp-1 v=1 1000000000")
        self.assertEqual((st, json.loads(body)),
                         (500, {"error": "retention policy not found: (a name holding a NUL "
                                         "byte)"}))
        self.assertNoDevice("wrp-1")
        self.assertNotIn("new-db", Databases.show(self))  # a refused write uses no name
        # Nothing counted either, but the 400's bad line (a refused line, as from any /write).
        self.assertEqual(self.lp_counters(), (taken, refused + 1))
        for n, query in enumerate(("db=plant&rp=autogen", "db=plant&rp=", "db=plant")):
            st, body = self.write(query + "&precision=s", "m,device=wrp-2 v=%d %d" % (n, n + 1))
            self.assertEqual((st, body), (204, b""), query)
        self.assertPoints(self.d.readings("wrp-2"),
                          [(1000, {"v": 0.0}), (2000, {"v": 1.0}), (3000, {"v": 2.0})])

    def test_consistency_level(self):
        # influxd 1.6.7's answers (session 22, 127.0.0.1:19900): a level other than any, one,
        # quorum, all (any case) or empty is a 400 once the body parsed, before the policy's
        # 500, and stores nothing, the good lines of a partial write included; a body of bad
        # lines only gets its parse error first. vigild took every one of these before.
        bad = (400, {"error": "invalid consistency level"})
        for query, body in (("db=plant&consistency=bogus", "m,device=wcl-1 v=1 1"),
                            ("db=plant&consistency=x%20", "m,device=wcl-1 v=1 1"),
                            ("db=plant&consistency=a%00ny", "m,device=wcl-1 v=1 1"),
                            ("db=plant&consistency=bogus",
                             "m,device=wcl-1 v=1 1\nm,device=wcl-1 v= 2"),
                            ("db=plant&consistency=bogus", 'm,device=wcl-1 s="x" 1'),
                            ("db=plant&consistency=bogus", ""),
                            ("db=plant&consistency=bogus&rp=foo", "m,device=wcl-1 v=1 1")):
            st, answer = self.write(query + "&precision=s", body)
            self.assertEqual((st, json.loads(answer) if answer else answer), bad, (query, body))
        st, answer = self.write("db=plant&consistency=bogus&precision=s", "m,device=wcl-1 v= 1")
        self.assertEqual((st, json.loads(answer)),
                         (400, {"error": "unable to parse 'm,device=wcl-1 v= 1': missing field "
                                         "value (line 1)"}))
        self.assertNoDevice("wcl-1")
        for n, level in enumerate(("ANY", "one", "Quorum", "all", "")):
            st, answer = self.write("db=plant&precision=s&consistency=" + level,
                                    "m,device=wcl-2 v=%d %d" % (n, n + 1))
            self.assertEqual((st, answer), (204, b""), level)
        self.assertEqual(len(self.d.readings("wcl-2")), 5)

    def test_influx_cli_insert_into(self):
        # The shell's INSERT INTO rp ... writes with rp=: influxd 1.6.7 printed the same line.
        p = subprocess.run([INFLUX, "-host", "127.0.0.1", "-port", str(self.d.http_port),
                            "-database", "plant", "-execute",
                            "INSERT INTO weekly m,device=wrp-cli v=1"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, text=True)
        self.assertIn('ERR: {"error":"retention policy not found: weekly"}', p.stdout)
        self.assertNoDevice("wrp-cli")
        p = subprocess.run([INFLUX, "-host", "127.0.0.1", "-port", str(self.d.http_port),
                            "-database", "plant", "-execute",
                            "INSERT INTO autogen m,device=wrp-cli v=1"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, text=True)
        self.assertNotIn("ERR", p.stdout)
        self.assertEqual(len(self.d.readings("wrp-cli")), 1)


FAILMAINT = os.environ.get("VIGIL_FAILMAINT", "")


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library, set by CTest; not built in a sanitizer build) not found")
class DatabaseNameWarning(unittest.TestCase):
    """While a new database name cannot be kept (here every "INSERT INTO dbnames(" fails,
    tests/fault/failmaint.c), each /write?db=NEW that stores points tries again and fails; the
    warning is logged for the first at once, then at most once a minute per cause with the count
    of those left out (not once a request, as before). Takes a minute."""

    def test_warning_rate_limited(self):
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        vt.write_file(self.flag, "fail")
        own_daemon(self, self.warning_rate_limited, prefix=[
            "env", "LD_PRELOAD=" + FAILMAINT, "VIGIL_FAILMAINT_FLAG=" + self.flag,
            "VIGIL_FAILMAINT_SQL=INSERT INTO dbnames("])

    def warning_rate_limited(self):
        first = time.monotonic()
        for i in range(20):
            r = self.d.write_lp("m,device=dnw v=1 %d\n" % (i + 1), precision="s",
                                db="new%d" % (i % 3))
            self.assertEqual(r.status, 204, r)
        self.assertEqual(Databases.show(self), [])
        self.assertEqual(len(self.d.readings("dnw")), 20)
        warned = [l for l in self.d.log().splitlines() if "cannot keep the database name" in l]
        self.assertEqual(len(warned), 1, warned)
        self.assertIn("/write?db=: I/O error", warned[0])
        # A minute after the first, the next one is logged with the count left out.
        time.sleep(max(0.0, first + 61 - time.monotonic()))
        self.assertEqual(self.d.write_lp("m,device=dnw v=1 25\n", precision="s",
                                         db="new0").status, 204)
        warned = [l for l in self.d.log().splitlines() if "cannot keep the database name" in l]
        self.assertEqual(len(warned), 2, warned)
        self.assertRegex(warned[1],
                         r"I/O error \(19 more like it in the last 6[0-9] s, not logged\)$")
        os.unlink(self.flag)  # the names can be kept again: the next write keeps its name
        self.assertEqual(self.d.write_lp("m,device=dnw v=1 30\n", precision="s",
                                         db="new1").status, 204)
        self.assertEqual(Databases.show(self), ["new1"])


class QueryParseErrors(vt.DaemonTestCase):
    """What influxd cannot parse in the three statements vigild answers gets influxd's parse
    error, word for word (400 {"error":"error parsing query: found X, expected Y at line L,
    char C"}), and keeps nothing. Every statement below was sent to influxd 1.6.7 (Debian's
    influxdb 1.6.7~rc0-1+b13, on 127.0.0.1 with a database "plant") and its answer copied here:
    single-quoted names (strings), names starting with a digit (1x, 1.5, .5, 1h, 1µs), keywords
    (all 80 of InfluxQL 1.6.7, any case), backquotes, non-ASCII letters, bound parameters ($x),
    operators, bad escapes, unterminated quotes (a newline ends one), text after the name, an
    unterminated comment, WITH without an option, and positions over several lines. Also what
    influxd takes that vigild refused before: comments, ';;', '\r' as a blank, a quoted part
    after a bare one (x"y" is y), \' in a quoted name. WITH's clause (WITH_CLAUSE, session 22)
    is read to its end as influxd reads it; so are several statements in a query (STATEMENTS,
    session 22). Not compared: DROP DATABASE (vigild answers no DROP)."""

    # Several statements in one query: influxd 1.6.7's answers, copied byte for byte (session
    # 22). It parses the whole query first (a parse error anywhere runs nothing), then runs the
    # statements in order, each with its statement_id; the first that fails ends the run, with
    # its error when it was the last statement and "not executed" in its place when more
    # followed. vigild answered a second statement 400 before.
    STATEMENTS = (
        ("CREATE DATABASE p1; SHOW RETENTION POLICIES ON nosuch", 200,
         b'{"results":[{"statement_id":0},{"statement_id":1,'
         b'"error":"database not found: nosuch"}]}'),
        ("SHOW RETENTION POLICIES ON nosuch; CREATE DATABASE p2", 200,
         b'{"results":[{"statement_id":0,"error":"not executed"}]}'),
        ("CREATE DATABASE p3; SHOW RETENTION POLICIES ON nosuch; CREATE DATABASE p4; "
         "CREATE DATABASE p5", 200,
         b'{"results":[{"statement_id":0},{"statement_id":1,"error":"not executed"}]}'),
        ("CREATE DATABASE p6; CREATE DATABASE p7 x", 400,
         b'{"error":"error parsing query: found x, expected ; at line 1, char 40"}'),
        ("CREATE DATABASE p8;;CREATE DATABASE p9;", 200,
         b'{"results":[{"statement_id":0},{"statement_id":1}]}'),
        (";", 200, b'{}'),
        ("-- c", 200, b'{}'),
        ("SHOW RETENTION POLICIES; SHOW RETENTION POLICIES ON p8", 200,
         b'{"results":[{"statement_id":0,"error":"not executed"}]}'),
        ('CREATE DATABASE ""; CREATE DATABASE p10', 200,
         b'{"results":[{"statement_id":0,"error":"not executed"}]}'),
        ("CREATE DATABASE p11 WITH DURATION 1m; CREATE DATABASE p12", 200,
         b'{"results":[{"statement_id":0,"error":"not executed"}]}'),
        ("SHOW DATABASES CREATE DATABASE p13", 400,
         b'{"error":"error parsing query: found CREATE, expected ; at line 1, char 16"}'),
        ("CREATE DATABASE p14 ; ; ", 200, b'{"results":[{"statement_id":0}]}'),
        ("CREATE DATABASE one; CREATE DATABASE two", 200,
         b'{"results":[{"statement_id":0},{"statement_id":1}]}'),
    )

    # The same queries with chunked=true (the influx shell's), influxd 1.6.7's answers copied
    # byte for byte (review28, 127.0.0.1:19450): a document and newline per result, the failed
    # statement's error then "not executed" under its id for each later statement, and an
    # empty body for a query of no statement. Parse errors are the same 400s.
    STATEMENTS_CHUNKED = (
        (0, b'{"results":[{"statement_id":0}]}\n'
            b'{"results":[{"statement_id":1,"error":"database not found: nosuch"}]}\n'),
        (1, b'{"results":[{"statement_id":0,"error":"database not found: nosuch"}]}\n'
            b'{"results":[{"statement_id":0,"error":"not executed"}]}\n'),
        (2, b'{"results":[{"statement_id":0}]}\n'
            b'{"results":[{"statement_id":1,"error":"database not found: nosuch"}]}\n'
            b'{"results":[{"statement_id":1,"error":"not executed"}]}\n'
            b'{"results":[{"statement_id":1,"error":"not executed"}]}\n'),
        (4, b'{"results":[{"statement_id":0}]}\n{"results":[{"statement_id":1}]}\n'),
        (5, b''),
        (6, b''),
        (7, b'{"results":[{"statement_id":0,"error":"database name required"}]}\n'
            b'{"results":[{"statement_id":0,"error":"not executed"}]}\n'),
        (8, b'{"results":[{"statement_id":0,"error":"invalid name"}]}\n'
            b'{"results":[{"statement_id":0,"error":"not executed"}]}\n'),
        (9, b'{"results":[{"statement_id":0,"error":"retention policy duration must be at '
            b'least 1h0m0s"}]}\n{"results":[{"statement_id":0,"error":"not executed"}]}\n'),
        (11, b'{"results":[{"statement_id":0}]}\n'),
        (12, b'{"results":[{"statement_id":0}]}\n{"results":[{"statement_id":1}]}\n'),
    )

    # CREATE DATABASE ... WITH: influxd 1.6.7's answers, copied (session 22). vigild took every
    # one of these with its first option word before (DURATION without a value included).
    WITH_PARSE_ERRORS = (
        ("CREATE DATABASE x WITH DURATION", "found EOF, expected duration at line 1, char 33"),
        ("CREATE DATABASE y WITH DURATION 1d REPLICATION",
         "found EOF, expected integer at line 1, char 48"),
        ("CREATE DATABASE y2 WITH DURATION 1d REPLICATION 0",
         "invalid value 0: must be 1 <= n <= 2147483647 at line 1, char 49"),
        ("CREATE DATABASE y3 WITH DURATION 1d REPLICATION 1 SHARD",
         "found EOF, expected DURATION at line 1, char 57"),
        ("CREATE DATABASE y5 WITH SHARD 1h", "found 1h, expected DURATION at line 1, char 31"),
        ("CREATE DATABASE y6 WITH NAME", "found EOF, expected identifier at line 1, char 30"),
        ("CREATE DATABASE y8 WITH NAME foo DURATION 1d",
         "found DURATION, expected ; at line 1, char 34"),
        ("CREATE DATABASE y11 WITH DURATION x", "found x, expected duration at line 1, char 35"),
        ("CREATE DATABASE y12 WITH DURATION 1d x", "found x, expected ; at line 1, char 38"),
        ("CREATE DATABASE z1 WITH DURATION 1x", "invalid duration at line 1, char 34"),
        ("CREATE DATABASE z4 WITH DURATION 1h30", "invalid duration at line 1, char 34"),
        ("CREATE DATABASE z5 WITH DURATION '1d'", "found 1d, expected duration at line 1, char 33"),
        ("CREATE DATABASE z6 WITH DURATION 1.5h",
         "found 1.5, expected duration at line 1, char 34"),
        ("CREATE DATABASE z7 WITH DURATION 99999999999999999999h",
         "invalid duration at line 1, char 34"),
        ("CREATE DATABASE z8 WITH DURATION 9999999999w",
         "overflowed duration 9999999999w: choose a smaller duration or INF at line 1, char 34"),
        ("CREATE DATABASE z9 WITH DURATION 1d REPLICATION 1d",
         "found 1d, expected integer at line 1, char 49"),
        ("CREATE DATABASE z10 WITH DURATION 1d REPLICATION 99999999999",
         "invalid value 99999999999: must be 1 <= n <= 2147483647 at line 1, char 50"),
        ("CREATE DATABASE z11 WITH REPLICATION 1.5",
         "found 1.5, expected integer at line 1, char 38"),
        ("CREATE DATABASE z12 WITH DURATION 1d SHARD DURATION",
         "found EOF, expected duration at line 1, char 53"),
        ("CREATE DATABASE z13 WITH DURATION inf SHARD DURATION 1x",
         "invalid duration at line 1, char 54"),
        ("CREATE DATABASE z14 WITH NAME 'x'", "found x, expected identifier at line 1, char 30"),
        ("CREATE DATABASE z16 WITH DURATION 1µs", "invalid duration at line 1, char 35"),
        ("CREATE DATABASE z17 WITH DURATION 1d1", "invalid duration at line 1, char 35"),
        ("CREATE DATABASE z18 WITH DURATION 1hh", "invalid duration at line 1, char 35"),
        ("CREATE DATABASE z20 WITH REPLICATION 2147483648",
         "invalid value 2147483648: must be 1 <= n <= 2147483647 at line 1, char 38"),
        ("CREATE DATABASE z21 WITH DURATION 1d REPLICATION 1 SHARD DURATION 1h NAME rp x",
         "found x, expected ; at line 1, char 78"),
        ("CREATE DATABASE z23 WITH DURATION 2562048h",
         "overflowed duration 2562048h: choose a smaller duration or INF at line 1, char 35"),
        ("CREATE DATABASE z26 WITH REPLICATION 99999999999999999999",
         'strconv.Atoi: parsing "99999999999999999999": value out of range at line 1, char 38'),
        ("CREATE DATABASE z27 WITH DURATION 1d REPLICATION 1 SHARD DURATION 1h NAME",
         "found EOF, expected identifier at line 1, char 75"),
        ("CREATE DATABASE z28 WITH DURATION -1h", "found -, expected duration at line 1, char 35"),
        ("CREATE DATABASE z29 WITH DURATION 1M", "invalid duration at line 1, char 35"),
        ("CREATE DATABASE w1 WITH DURATION 1us", "invalid duration at line 1, char 34"),
        ("CREATE DATABASE w4 WITH DURATION 1n", "invalid duration at line 1, char 34"),
    )
    # What influxd runs: created, or its statement error (200) with nothing created.
    WITH_RUN = (
        ("CREATE DATABASE y WITH DURATION 1d REPLICATION 1", None),
        ("CREATE DATABASE y4 WITH SHARD DURATION 1h", None),
        ("CREATE DATABASE y7 WITH NAME foo", None),
        ("CREATE DATABASE y9 WITH DURATION INF", None),
        ("CREATE DATABASE z3 WITH DURATION 2h30m", None),
        ('CREATE DATABASE z15 WITH NAME "r p";', None),
        ("CREATE DATABASE z19 WITH DURATION 0s", None),
        ("CREATE DATABASE z22 WITH SHARD DURATION 0s", None),
        ("CREATE DATABASE z24 WITH DURATION 2562047h", None),
        ("CREATE DATABASE w2 WITH DURATION 3600000000u", None),
        ("CREATE DATABASE w3 WITH DURATION 1h1ns", None),
        ("CREATE DATABASE w6 WITH DURATION 3600000000µ", None),
        ("CREATE DATABASE w8 WITH DURATION 1d REPLICATION 007", None),
        ("CREATE DATABASE z2 WITH DURATION 1ns",
         "retention policy duration must be at least 1h0m0s"),
        ("CREATE DATABASE w5 WITH DURATION 59m59s",
         "retention policy duration must be at least 1h0m0s"),
        ("CREATE DATABASE w9 WITH DURATION 30m SHARD DURATION 2d",
         "retention policy duration must be at least 1h0m0s"),
        ("CREATE DATABASE w7 WITH DURATION 1d SHARD DURATION 2d",
         "retention policy duration must be greater than the shard duration"),
    )

    INFLUXD_PARSE_ERRORS = (
            ("SHOW RETENTION POLICIES ON 'x'", 'found x, expected identifier at line 1, char 27'),
            ("SHOW RETENTION POLICIES ON 'plant'",
             'found plant, expected identifier at line 1, char 27'),
            ('SHOW RETENTION POLICIES ON 1x', 'found 1x, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON 1', 'found 1, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON plant.autogen', 'found ., expected ; at line 1, char 33'),
            ('SHOW RETENTION POLICIES ON pl-ant', 'found -, expected ; at line 1, char 30'),
            ('SHOW RETENTION POLICIES ON plant x', 'found x, expected ; at line 1, char 34'),
            ('SHOW RETENTION POLICIES ON "pl"ant', 'found ant, expected ; at line 1, char 32'),
            ('SHOW RETENTION POLICIES ON "pl""ant"', 'found ant, expected ; at line 1, char 32'),
            ('SHOW RETENTION POLICIES ON `plant`',
             'found `, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON é', 'found é, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON plänt', 'found ä, expected ; at line 1, char 30'),
            ('SHOW RETENTION POLICIES ON "a\\qb"',
             'found \\q, expected identifier at line 1, char 31'),
            ('SHOW RETENTION POLICIES ON pl\\ant', 'found \\, expected ; at line 1, char 30'),
            ('SHOW RETENTION POLICIES ON pl"ant',
             'found ant, expected identifier at line 1, char 29'),
            ('SHOW RETENTION POLICIES ON on', 'found ON, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON select',
             'found SELECT, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON', 'found EOF, expected identifier at line 1, char 28'),
            # A token with no text: influxd prints its kind (review of session 21).
            ("SHOW RETENTION POLICIES ON ''",
             'found STRING, expected identifier at line 1, char 27'),
            ("CREATE DATABASE ''", 'found STRING, expected identifier at line 1, char 16'),
            ("SHOW RETENTION POLICIES ON '",
             'found BADSTRING, expected identifier at line 1, char 27'),
            ('SHOW RETENTION POLICIES ON "',
             'found BADSTRING, expected identifier at line 1, char 27'),
            ("SHOW RETENTION POLICIES ON '\nx",
             'found BADSTRING, expected identifier at line 1, char 27'),
            ('SHOW RETENTION POLICIES ON "\nx',
             'found BADSTRING, expected identifier at line 1, char 27'),
            ('SHOW RETENTION POLICIES ON ;', 'found ;, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON $x', 'found $x, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON pl$ant', 'found $ant, expected ; at line 1, char 30'),
            ('SHOW RETENTION POLICIES plant', 'found plant, expected ; at line 1, char 25'),
            ('SHOW DATABASES x', 'found x, expected ; at line 1, char 16'),
            # influxd trims Go's white space off the query first, and counts from what is left.
            ('  SHOW DATABASES x', 'found x, expected ; at line 1, char 16'),
            ('\nSHOW DATABASES x', 'found x, expected ; at line 1, char 16'),
            ('\x0bSHOW DATABASES x', 'found x, expected ; at line 1, char 16'),
            ("SHOW DATABASES 'x'", 'found x, expected ; at line 1, char 15'),
            ("CREATE DATABASE 'x'", 'found x, expected identifier at line 1, char 16'),
            ('CREATE DATABASE 1x', 'found 1x, expected identifier at line 1, char 17'),
            ('CREATE DATABASE 1', 'found 1, expected identifier at line 1, char 17'),
            ('CREATE DATABASE pl-ant', 'found -, expected ; at line 1, char 19'),
            ('CREATE DATABASE pl.ant', 'found ., expected ; at line 1, char 19'),
            ('CREATE DATABASE "pl"ant', 'found ant, expected ; at line 1, char 21'),
            ('CREATE DATABASE `x`', 'found `, expected identifier at line 1, char 17'),
            ('CREATE DATABASE plänt', 'found ä, expected ; at line 1, char 19'),
            ('CREATE DATABASE pl\\ant', 'found \\, expected ; at line 1, char 19'),
            ('CREATE DATABASE pl"ant', 'found ant, expected identifier at line 1, char 18'),
            ('CREATE DATABASE select', 'found SELECT, expected identifier at line 1, char 17'),
            ('CREATE DATABASE on', 'found ON, expected identifier at line 1, char 17'),
            ('CREATE DATABASE $x', 'found $x, expected identifier at line 1, char 17'),
            ('CREATE DATABASE x WITH',
             'found EOF, expected DURATION, NAME, REPLICATION, SHARD at line 1, char 24'),
            ('CREATE DATABASE x WITH foo',
             'found foo, expected DURATION, NAME, REPLICATION, SHARD at line 1, char 24'),
            ('CREATE DATABASE x x', 'found x, expected ; at line 1, char 19'),
            ('CREATE DATABASE "a\\qb"', 'found \\q, expected identifier at line 1, char 20'),
            ('CREATE DATABASE', 'found EOF, expected identifier at line 1, char 17'),
            ('CREATE DATABASE "unterminated',
             'found unterminated, expected identifier at line 1, char 16'),
            ('CREATE DATABASE "bad\\qescape"', 'found \\q, expected identifier at line 1, char 22'),
            ('CREATE DATABASE two words', 'found words, expected ; at line 1, char 21'),
            ('CREATE DATABASE ', 'found EOF, expected identifier at line 1, char 17'),
            ('CREATE DATABASE   ', 'found EOF, expected identifier at line 1, char 17'),
            ('CREATE DATABASE ;', 'found ;, expected identifier at line 1, char 17'),
            ('CREATE DATABASE "ä" x', 'found x, expected ; at line 1, char 21'),
            ('CREATE DATABASE "ä" "x', 'found x, expected ; at line 1, char 20'),
            ('SHOW DATABASES "x"', 'found x, expected ; at line 1, char 16'),
            ('SHOW DATABASES x1 y', 'found x1, expected ; at line 1, char 16'),
            ('CREATE DATABASE x2d /* c', 'found ILLEGAL, expected ; at line 1, char 21'),
            ('CREATE DATABASE x = 1', 'found =, expected ; at line 1, char 19'),
            ('CREATE DATABASE x =~ 1', 'found =~, expected ; at line 1, char 19'),
            ('CREATE DATABASE x != 1', 'found !=, expected ; at line 1, char 19'),
            ('CREATE DATABASE x ! 1', 'found !, expected ; at line 1, char 19'),
            ('CREATE DATABASE x <= 1', 'found <=, expected ; at line 1, char 19'),
            ('CREATE DATABASE x <> 1', 'found !=, expected ; at line 1, char 19'),
            ('CREATE DATABASE x >= 1', 'found >=, expected ; at line 1, char 19'),
            ('CREATE DATABASE x :: 1', 'found ::, expected ; at line 1, char 19'),
            ('CREATE DATABASE x : 1', 'found :, expected ; at line 1, char 19'),
            ('CREATE DATABASE 1.5', 'found 1.5, expected identifier at line 1, char 17'),
            ('CREATE DATABASE .5', 'found .5, expected identifier at line 1, char 17'),
            ('CREATE DATABASE .x', 'found ., expected identifier at line 1, char 17'),
            ('CREATE DATABASE 1.x', 'found 1, expected identifier at line 1, char 17'),
            ('CREATE DATABASE 1h', 'found 1h, expected identifier at line 1, char 17'),
            ('CREATE DATABASE 1h5', 'found 1h5, expected identifier at line 1, char 17'),
            ('CREATE DATABASE 1µs', 'found 1µs, expected identifier at line 1, char 17'),
            ('CREATE DATABASE $', 'found $, expected identifier at line 1, char 17'),
            ('CREATE DATABASE $"x"', 'found $x, expected identifier at line 1, char 17'),
            ('CREATE DATABASE $1', 'found $1, expected identifier at line 1, char 17'),
            ('CREATE DATABASE (x)', 'found (, expected identifier at line 1, char 17'),
            ('CREATE DATABASE #x', 'found #, expected identifier at line 1, char 17'),
            ('CREATE DATABASE -x', 'found -, expected identifier at line 1, char 17'),
            ('CREATE DATABASE x"y', 'found y, expected identifier at line 1, char 17'),
            ("CREATE DATABASE 'x", 'found x, expected identifier at line 1, char 16'),
            ("CREATE DATABASE 'a\\qb'", 'found \\q, expected identifier at line 1, char 20'),
            ("CREATE DATABASE 'a\\é'", 'found \\é, expected identifier at line 1, char 20'),
            ('CREATE DATABASE x WITH 1',
             'found 1, expected DURATION, NAME, REPLICATION, SHARD at line 1, char 24'),
            ('SHOW RETENTION POLICIES ON x.y', 'found ., expected ; at line 1, char 29'),
            ('SHOW RETENTION POLICIES ON "x".y', 'found ., expected ; at line 1, char 31'),
            ('show retention policies on Select',
             'found SELECT, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON ＰＬ', 'found Ｐ, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES x', 'found x, expected ; at line 1, char 25'),
            ('SHOW RETENTION POLICIES 1x', 'found 1x, expected ; at line 1, char 25'),
            ('SHOW RETENTION POLICIES "x"', 'found x, expected ; at line 1, char 25'),
            ('SHOW RETENTION POLICIES ON "ä" \'x\'', 'found x, expected ; at line 1, char 31'),
            ('CREATE DATABASE\n', 'found EOF, expected identifier at line 1, char 17'),
            ('CREATE\nDATABASE\n  1x', 'found 1x, expected identifier at line 3, char 3'),
            ('CREATE\nDATABASE\n  x y', 'found y, expected ; at line 3, char 5'),
            ('CREATE DATABASE "x\ny"', 'found x, expected identifier at line 1, char 16'),
            ("CREATE DATABASE 'x\ny'", 'found x, expected identifier at line 1, char 16'),
            ('SHOW RETENTION POLICIES ON x\ty', 'found y, expected ; at line 1, char 30'),
            ('SHOW RETENTION POLICIES ON\tx\x0by', 'found \x0b, expected ; at line 1, char 29'),
    )

    KEYWORDS = (
        "ALL ALTER ANALYZE AND ANY AS ASC BEGIN BY CARDINALITY CONTINUOUS CREATE DATABASE "
        "DATABASES DEFAULT DELETE DESC DESTINATIONS DIAGNOSTICS DISTINCT DROP DURATION END EVERY "
        "EXACT EXPLAIN FALSE FIELD FOR FROM GRANT GRANTS GROUP GROUPS IN INF INSERT INTO KEY KEYS "
        "KILL LIMIT MEASUREMENT MEASUREMENTS NAME OFFSET ON OR ORDER PASSWORD POLICIES POLICY "
        "PRIVILEGES QUERIES QUERY READ REPLICATION RESAMPLE RETENTION REVOKE SELECT SERIES SET "
        "SHARD SHARDS SHOW SLIMIT SOFFSET STATS SUBSCRIPTION SUBSCRIPTIONS TAG TO TRUE USER USERS "
        "VALUES WHERE WITH WRITE").split()

    def query(self, q):
        return self.d.curl("POST", "/query", "--data-urlencode", "q=" + q)

    def test_parse_errors_as_influxd(self):
        self.assertEqual(self.query("CREATE DATABASE plant").status, 200)
        listed = Databases.show(self)
        for q, err in self.INFLUXD_PARSE_ERRORS:
            r = self.query(q)
            self.assertEqual((r.status, r.json()), (400, {"error": "error parsing query: " + err}),
                             q)
        self.assertEqual(len(self.KEYWORDS), 80)
        for kw in self.KEYWORDS:
            for word in (kw, kw.lower()):
                r = self.query("SHOW RETENTION POLICIES ON " + word)
                self.assertEqual((r.status, r.json()), (400, {
                    "error": "error parsing query: found %s, expected identifier at line 1, "
                             "char 28" % kw}), word)
        # Words influxd does not reserve are names (checked there too).
        for word in ("fill", "time", "now", "tags", "fields", "null", "x1", "_x", "pl_ant9"):
            r = self.query("SHOW RETENTION POLICIES ON " + word)
            self.assertEqual((r.status, r.json()), (200, {"results": [
                {"statement_id": 0, "error": "database not found: " + word}]}), word)
        self.assertEqual(Databases.show(self), listed)  # nothing kept by a refused CREATE

    def test_with_clause_as_influxd(self):
        listed = Databases.show(self)
        for q, err in self.WITH_PARSE_ERRORS:
            r = self.query(q)
            self.assertEqual((r.status, r.json()), (400, {"error": "error parsing query: " + err}),
                             q)
        self.assertEqual(Databases.show(self), listed)  # nothing kept by a refused CREATE
        for q, err in self.WITH_RUN:
            r = self.query(q)
            want = CREATED if err is None else {"results": [{"statement_id": 0, "error": err}]}
            self.assertEqual((r.status, r.json()), (200, want), q)
        # influxd 1.6.7 listed, after these, exactly the ones it ran without an error.
        self.assertEqual([n for n in Databases.show(self) if n not in listed],
                         [q.split()[2] for q, err in self.WITH_RUN if err is None])

    def test_statements_as_influxd(self):
        listed = Databases.show(self)
        for q, status, body in self.STATEMENTS:
            r = self.query(q)
            self.assertEqual((r.status, r.body.strip()), (status, body), q)
        # influxd 1.6.7 then listed these, in this order (and nothing of a refused query).
        self.assertEqual([n for n in Databases.show(self) if n not in listed],
                         ["p1", "p3", "p8", "p9", "p14", "one", "two"])
        # Each statement's own result, in order (influxd: the same two, and the policies).
        r = self.query("; SHOW RETENTION POLICIES ON p8; SHOW DATABASES")
        doc = r.json()
        self.assertEqual((r.status, doc["results"][0]),
                         (200, policies("0s", "168h0m0s")["results"][0]))
        self.assertEqual(doc["results"][1]["statement_id"], 1)
        self.assertEqual(doc["results"][1]["series"][0]["name"], "databases")
        self.assertEqual(len(doc["results"]), 2)

    def test_statements_chunked_as_influxd(self):
        listed = Databases.show(self)
        for i, body in self.STATEMENTS_CHUNKED:
            q, status, _ = self.STATEMENTS[i]
            for args in (("/query?chunked=true", "--data-urlencode", "q=" + q),
                         ("/query", "--data", "chunked=true", "--data-urlencode", "q=" + q)):
                r = self.d.curl("POST", *args)
                self.assertEqual((r.status, r.body), (status, body), (q, args[-2]))
        # A parse error is the same 400; any value but "true" answers whole, as influxd.
        q, status, body = self.STATEMENTS[3]
        r = self.d.curl("POST", "/query?chunked=true", "--data-urlencode", "q=" + q)
        self.assertEqual((r.status, r.body.strip()), (status, body))
        q, status, body = self.STATEMENTS[0]
        for value in ("True", "1", "true" * 10):
            r = self.d.curl("POST", "/query?chunked=" + value, "--data-urlencode", "q=" + q)
            self.assertEqual((r.status, r.body.strip()), (status, body), value)
        # Kept: the names influxd kept (test_statements_as_influxd may have kept them first).
        kept = ["p1", "p3", "p8", "p9", "p14", "one", "two"]
        self.assertEqual([n for n in Databases.show(self) if n in kept or n not in listed], kept)

    def test_query_longer_than_vigild_reads(self):
        """vigild reads a q of at most 65,536 bytes, API_IQ_Q_MAX (influxd has no such bound:
        it ran all of these; 1,023 before session 25). A longer one is a 400 naming q and the
        bound and runs nothing, whether it comes in the URL or in a form body, Telegraf's way
        (review28: the form body's q was cut to its bound and run, a name cut at the last byte
        kept cut short); so is one holding a NUL byte. A URL longer than libmicrohttpd's memory
        for a connection (http.max_header_bytes, 32 KiB) is its 414, never a cut query."""
        listed = Databases.show(self)
        cut = "-- " + "p" * 65509 + "\nCREATE DATABASE cutshort"  # byte 65,536 within the name
        self.assertEqual(len(cut), 65537)
        many = "; ".join("CREATE DATABASE many%d" % i for i in range(3000))
        for q in (cut, many):
            self.assertJsonError(self.d.curl("POST", "/query", "--data-urlencode", "q@-",
                                             stdin=q),
                                 400, "parameter 'q': longer than 65536 bytes")
        self.assertJsonError(self.d.curl("POST", "/query", "--data", "q=CREATE+DATABASE+a%00b"),
                             400, "parameter 'q'")
        # GET: a q of 16 KiB (some 16 KiB of URL) is read whole; one of 40 KiB passes the
        # connection's 32 KiB: libmicrohttpd's 414, and nothing runs.
        # (SHOW DATABASES, not a CREATE: the class's names fill vigild's 32 in later tests.)
        get16 = "-- " + "g" * (16384 - 18) + "\nSHOW DATABASES"
        self.assertEqual(len(get16), 16384)
        self.assertEqual(Databases.show(self, get16, method="GET"), listed)
        r = self.d.curl("GET", "/query?q=" + urllib.parse.quote(cut[:40000] + "\nCREATE DATABASE "
                                                                 "get40"))
        self.assertEqual(r.status, 414, r)
        self.assertEqual(Databases.show(self), listed)
        fits = cut[:3] + cut[4:]  # 65,536 bytes: read whole
        r = self.d.curl("POST", "/query", "--data-urlencode", "q@-", stdin=fits)
        self.assertEqual((r.status, r.json()), (200, CREATED))
        self.assertEqual(Databases.show(self), listed + ["cutshort"])

    def test_what_influxd_takes(self):
        listed = Databases.show(self)  # the class's daemon: other tests' names too
        for q in ("CREATE DATABASE c1 -- a comment", "CREATE DATABASE /* c */ c2",
                  "CREATE DATABASE c3 /* c */;", "CREATE DATABASE c4;;", "CREATE DATABASE c5; ",
                  "CREATE DATABASE\r c6\r", 'CREATE DATABASE x"c7"', 'CREATE DATABASE "select"',
                  "create database c8 with duration 1d;"):
            r = self.query(q)
            self.assertEqual((r.status, r.json()), (200, CREATED), q)
        self.assertEqual([n for n in Databases.show(self, "SHOW DATABASES -- c")
                          if n not in listed],
                         ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "select", "c8"])
        for q, err in (('SHOW RETENTION POLICIES ON "a\\\'b"', "database not found: a'b"),
                       ("SHOW RETENTION POLICIES ON /* c */ nosuch -- c",
                        "database not found: nosuch")):
            r = self.query(q)
            self.assertEqual((r.status, r.json()),
                             (200, {"results": [{"statement_id": 0, "error": err}]}), q)
        r = self.query("SHOW RETENTION POLICIES ON \"select\";;")
        self.assertEqual((r.status, r.json()), (200, policies("0s", "168h0m0s")))
        # Go's white space trimmed off both ends (strings.TrimSpace), comments between the
        # keywords: influxd 1.6.7 answers these 200 (checked there).
        for q in ("SHOW DATABASES\x0b", "SHOW DATABASES\u3000\u2028 \t", "SHOW DATABASES\u0085",
                  "SHOW -- c\nDATABASES", "\x0c show databases ;  \n"):
            r = self.query(q)
            self.assertEqual((r.status, r.json()["results"][0]["series"][0]["name"]),
                             (200, "databases"), q)
        r = self.query("SHOW /* c */ RETENTION /**/ POLICIES ON \"select\"\x0c")
        self.assertEqual((r.status, r.json()), (200, policies("0s", "168h0m0s")))
        r = self.query("CREATE/**/DATABASE c9")
        self.assertEqual((r.status, r.json()), (200, CREATED))
        self.assertIn("c9", Databases.show(self))
        for q in (" ", "\u3000", ""):  # nothing left: influxd's missing q
            r = self.query(q)
            self.assertEqual((r.status, r.json()),
                             (400, {"error": "missing required parameter \"q\""}), repr(q))


def own_daemon(test, body, data_dir=None, prefix=()):
    """Runs body() with test.d a vigild of test's own (no stream socket; data_dir None: a
    temporary one; prefix: a command it runs under), started, for a test that stops and starts
    it; stops it after, writes its log when body fails, removes it."""
    test.d = vt.Vigild(data_dir=data_dir, stream=False, prefix=prefix)
    try:
        test.d.start()
        body()
        test.d.stop()
    except AssertionError:
        sys.stderr.write(test.d.log() + "\n")
        raise
    finally:
        test.d.cleanup()


class DatabasesRestart(unittest.TestCase):
    """The names CREATE DATABASE and /write?db= registered are kept in the database: after a
    restart SHOW DATABASES lists them, in the same order, and the shell's USE takes them."""

    show = Databases.show

    def test_names_survive_restart(self):
        own_daemon(self, self.names_survive_restart)

    def names_survive_restart(self):
        for q in ("CREATE DATABASE plant", 'CREATE DATABASE "tele\\"graf"',
                  "CREATE DATABASE plant"):
            r = self.d.curl("POST", "/query", "--data-urlencode", "q=" + q)
            self.assertEqual((r.status, r.json()), (200, CREATED), q)
        self.assertEqual(self.d.write_lp("m,device=dr-1 v=1 1\n", precision="s",
                                         db="site a").status, 204)
        names = ["plant", 'tele"graf', "site a"]
        self.assertEqual(self.show(), names)
        self.d.stop()
        self.d.start()
        self.assertEqual(self.show(), names)
        r = self.d.curl("POST", "/query", "--data-urlencode",
                        "q=SHOW RETENTION POLICIES ON \"site a\"")
        self.assertEqual(r.json(), policies("0s", "168h0m0s"))  # retention 0: forever
        out = InfluxCli.shell(self, "USE plant", "INSERT plant,device=dr-2 v=2 1000000000")
        self.assertIn("> USE plant\nUsing database plant\n", out)
        self.assertNotIn("ERR", out)
        self.assertEqual(len(self.d.readings("dr-2")), 1)
        # A name registered after the restart goes after the kept ones.
        self.assertEqual(self.d.write_lp("m,device=dr-1 v=1 2\n", precision="s",
                                         db="later").status, 204)
        self.assertEqual(self.show(), names + ["later"])


class DatabasesRace(unittest.TestCase):
    """First uses of new names at once, from many connections, near the 32-name bound: the
    names kept are the names listed, so a restart lists exactly what was listed before it (a
    name listed once never disappears) and the table holds at most 32 names."""

    show = Databases.show

    def test_concurrent_first_uses(self):
        own_daemon(self, self.concurrent_first_uses)

    def concurrent_first_uses(self):
        for i in range(29):
            r = self.d.curl("POST", "/query", "--data-urlencode", "q=CREATE DATABASE k%02d" % i)
            self.assertEqual(r.status, 200, r)
        # Connections opened first and a barrier, so the writes reach vigild together.
        n = 24
        conns = [http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=30)
                 for _ in range(n)]
        for c in conns:
            c.connect()
        bar = threading.Barrier(n)
        status = [None] * n

        def write(i):
            bar.wait()
            conns[i].request("POST", "/write?precision=s&db=new%02d" % i,
                             body=b"m,device=race-%d v=1 1\n" % i)
            resp = conns[i].getresponse()
            resp.read()
            status[i] = resp.status

        threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for c in conns:
            c.close()
        self.assertEqual(status, [204] * n)
        before = self.show()
        self.assertEqual(len(before), 32, before)
        self.d.stop()
        db = sqlite3.connect(self.d.db_path)
        try:
            kept = [row[0] for row in db.execute("SELECT name FROM dbnames ORDER BY seq")]
        finally:
            db.close()
        self.assertEqual(kept, before)
        self.d.start()
        self.assertEqual(self.show(), before)


class DatabasesDiskFull(unittest.TestCase):
    """A name that cannot be kept because the data volume is full is not listed: CREATE
    DATABASE answers 507 naming it, and a /write of a new name, refused as a whole, uses none;
    once space is back the same statements keep them, and a restart lists them."""

    show = Databases.show

    def test_names_on_a_full_disk(self):
        self.mnt = vt.tmpfs_mount(self, 64)
        own_daemon(self, self.names_on_a_full_disk, os.path.join(self.mnt, "data"))

    def create(self, name):
        return self.d.curl("POST", "/query", "--data-urlencode", "q=CREATE DATABASE " + name)

    def names_on_a_full_disk(self):
        self.assertEqual(self.create("before").status, 200)
        filler = vt.fill_volume(self.mnt, 0)
        r = self.create("full")
        self.assertEqual((r.status, r.json()["error"].split(":")[0]),
                         (507, "keeping the database name"), r)
        r = self.d.write_lp("m,device=df-1 v=1 1\n", precision="s", db="wfull")
        self.assertEqual(r.status, 507, r)
        self.assertEqual(self.show(), ["before"])
        os.unlink(filler)
        # The store refuses for a short back-off after a full disk: retried until it takes.
        deadline = time.monotonic() + 30
        while self.create("full").status != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        r = self.d.write_lp("m,device=df-1 v=1 2\n", precision="s", db="wfull")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.show(), ["before", "full", "wfull"])
        self.d.stop()
        self.d.start()
        self.assertEqual(self.show(), ["before", "full", "wfull"])


class DatabasesBounds(vt.DaemonTestCase):
    """SHOW DATABASES keeps at most 32 names of at most 64 bytes (README): a 64-byte name is
    listed, a 65-byte one not; from the 33rd on names are not listed, and still written to."""

    show = Databases.show

    def test_bounds(self):
        names = ["c" * 64, "w" * 64] + ["db%02d" % i for i in range(30)]
        for q in ("CREATE DATABASE " + "c" * 65, "CREATE DATABASE " + names[0]):
            r = self.d.curl("POST", "/query", "--data-urlencode", "q=" + q)
            self.assertEqual((r.status, r.json()), (200, CREATED), q)
        for db in ["w" * 65] + names[1:] + ["late%d" % i for i in range(5)]:
            r = self.d.write_lp("m,device=dbs-bound v=1 1\n", precision="s", db=db)
            self.assertEqual(r.status, 204, (db, r))
        self.assertEqual(self.show(), names)


class DatabasesWithTokens(vt.DaemonTestCase):
    """With tokens, /query takes a read token by GET and by POST (Grafana's two methods; the
    influx shell's USE and -execute send SHOW DATABASES by POST), but CREATE DATABASE, which
    keeps a name, needs a write token by either method (README "Authentication")."""

    READ = "influx-read-token-AAAAAAAA"
    WRITE = "influx-write-token-BBBBBBB"

    @classmethod
    def setUpClass(cls):
        path = os.path.join(vt.mkdtemp(), "tokens")
        vt.write_file(path, "read %s\nwrite %s\n" % (cls.READ, cls.WRITE))
        os.chmod(path, 0o600)
        cls.EXTRA_ARGS = ("--auth-file", path)
        super().setUpClass()

    def query(self, method, token, q):
        get = ["-G"] if method == "GET" else []
        return self.d.curl(method, "/query", *get, "-u", "x:" + token, "--data-urlencode",
                           "q=" + q)

    def test_query_roles(self):
        for method in ("POST", "GET"):  # GET takes a read token, but CREATE keeps a name
            self.assertJsonError(self.query(method, self.READ, "CREATE DATABASE plant"), 403,
                                 ["'read'", "needs 'write'"])
        r = self.query("GET", self.READ, "SHOW DATABASES")
        self.assertEqual(r.json()["results"][0].get("series", [{}])[0].get("values", []), [], r)
        r = self.query("POST", self.WRITE, "CREATE DATABASE plant")
        self.assertEqual((r.status, r.json()), (200, CREATED), r)
        self.assertJsonError(self.query("POST", self.READ, "SHOW DATABASES; CREATE DATABASE x"),
                             403, ["'read'", "needs 'write'"])
        for method, token in (("GET", self.READ), ("POST", self.READ), ("POST", self.WRITE)):
            r = self.query(method, token, "SHOW DATABASES")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["results"][0]["series"][0]["values"], [["plant"]])
        self.assertJsonError(self.d.curl("GET", "/query?q=SHOW+DATABASES"), 401)
        if not os.path.exists(INFLUX):
            self.skipTest("influx CLI not installed")
        for token, want in ((self.READ, "\nplant\n"), (self.WRITE, "\nplant\n")):
            p = subprocess.run([INFLUX, "-host", "127.0.0.1", "-port", str(self.d.http_port),
                                "-username", "x", "-password", token, "-execute",
                                "SHOW DATABASES"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60, text=True)
            self.assertIn(want, p.stdout)


class InfluxCli(vt.DaemonTestCase):

    def influx(self, *args, stdin=None):
        cmd = [INFLUX, "-host", "127.0.0.1", "-port", str(self.d.http_port)] + list(args)
        p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60, text=True)
        return p.returncode, p.stdout + p.stderr

    def shell(self, *lines):
        """Types each line into the interactive shell (on a pseudo-terminal: with a pipe it
        reads all of stdin as one query), each after its prompt, then exit; returns what the
        shell printed."""
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execve(INFLUX, [INFLUX, "-host", "127.0.0.1", "-port", str(self.d.http_port)],
                          dict(os.environ, TERM="dumb"))
            finally:
                os._exit(127)
        out = b""

        def read(until_prompt):
            nonlocal out
            mark, deadline = len(out), time.time() + 30
            while time.time() < deadline:
                if until_prompt and len(out) > mark and out.endswith(b"> "):
                    return
                if select.select([fd], [], [], 0.2)[0]:
                    try:
                        chunk = os.read(fd, 4096)
                    except OSError:  # the shell exited
                        chunk = b""
                    if not chunk:
                        return
                    out += chunk
            self.fail("the shell did not answer: %r" % out)

        try:
            read(True)
            for line in lines + ("exit",):
                os.write(fd, line.encode() + b"\r")
                read(line != "exit")
        finally:
            os.close(fd)
            os.waitpid(pid, 0)
        return out.decode("utf-8", "replace").replace("\r\n", "\n")

    def test_shell_use_and_insert(self):
        # USE asks SHOW DATABASES: a name nothing created or wrote to is not there (as in
        # InfluxDB); once a client wrote with db=plantdb (Telegraf does), USE takes it and
        # INSERT writes through /write.
        out = self.shell("USE plantdb")
        self.assertIn("> USE plantdb\nERR: Database plantdb doesn't exist.", out)
        self.assertIn("DB does not exist!", out)
        self.assertEqual(self.d.write_lp("m,device=cli-use v=1 1\n", precision="s",
                                         db="plantdb").status, 204)
        out = self.shell("USE plantdb", "INSERT plant,device=cli-use temp=71.5 1700000000000000000",
                         "INSERT plant,device=cli-use temp= 1700000001000000000")
        self.assertIn("> USE plantdb\nUsing database plantdb\n> INSERT plant,device=cli-use "
                      "temp=71.5 1700000000000000000\n> INSERT", out)
        self.assertIn("ERR: {\"error\":\"unable to parse 'plant,device=cli-use temp= "
                      "1700000001000000000': missing field value (line 1)\"}", out)
        self.assertNotIn("does not exist", out)
        self.assertPoints(self.d.readings("cli-use"),
                          [(1000, {"v": 1.0}), (1700000000000, {"temp": 71.5})])
        # -execute asks with chunked=true; the table lists the name.
        rc, out = self.influx("-execute", "SHOW DATABASES")
        self.assertEqual(rc, 0, out)
        self.assertIn("name: databases\nname\n----\n", out)
        self.assertIn("\nplantdb\n", out)

    def test_shell_use_db_rp(self):
        # USE db.rp asks SHOW RETENTION POLICIES ON "db": autogen, vigild's one policy, is
        # taken (INSERT then writes with rp=autogen), any other refused, as InfluxDB does.
        r = self.d.curl("POST", "/query", "--data-urlencode", "q=CREATE DATABASE rpdb")
        self.assertEqual(r.status, 200, r)
        out = self.shell("USE rpdb.autogen",
                         "INSERT plant,device=cli-rp temp=1.5 1700000000000000000",
                         "USE rpdb.weekly", "USE nosuchdb.autogen")
        self.assertIn("> USE rpdb.autogen\nUsing database rpdb\nUsing retention policy autogen\n"
                      "> INSERT plant,device=cli-rp temp=1.5 1700000000000000000\n> ", out)
        self.assertIn("> USE rpdb.weekly\nUsing database rpdb\nERR: RETENTION POLICY weekly "
                      "doesn't exist.", out)
        self.assertIn("> USE nosuchdb.autogen\nERR: Database nosuchdb doesn't exist.", out)
        self.assertPoints(self.d.readings("cli-rp"), [(1700000000000, {"temp": 1.5})])

    def test_execute_insert(self):
        rows = [
            ("INSERT plant,device=cli-1 temp=71.2,vib=0.031 1700000000000", 1700000000000,
             {"temp": 71.2, "vib": 0.031}),
            ("INSERT plant,device=cli-1 temp=-0.0,count=9007199254740993i 1700000000001",
             1700000000001, {"temp": -0.0, "count": float(9007199254740993)}),
            ("INSERT plant,device=cli-1 temp=1e-300,ok=true 1700000000002", 1700000000002,
             {"temp": 1e-300, "ok": 1.0}),
            ("INSERT plant,device=cli-1 temp=123456789.123456789 1700000000003", 1700000000003,
             {"temp": 123456789.123456789}),
        ]
        for stmt, _, _ in rows:
            rc, out = self.influx("-database", "db", "-precision", "ms", "-execute", stmt)
            self.assertEqual(rc, 0, out)
        self.assertPoints(self.d.readings("cli-1"), [(ts, v) for _, ts, v in rows])

    def test_execute_precision_and_series_key(self):
        rc, out = self.influx("-database", "db", "-precision", "s", "-execute",
                              "INSERT cpu,region=eu,host=h1 load=0.5 1700000000")
        self.assertEqual(rc, 0, out)
        rc, out = self.influx("-database", "db", "-precision", "rfc3339", "-execute",
                              "INSERT cpu,region=eu,host=h1 load=0.75 1700000000001000000")
        self.assertEqual(rc, 0, out)
        self.assertPoints(self.d.readings("cpu,host=h1,region=eu"),
                          [(1700000000000, {"load": 0.5}), (1700000000001, {"load": 0.75})])
        # The CLI offers -precision h and m too (InfluxDB takes both on /write).
        for prec, ts in (("h", "472223"), ("m", "28333334")):
            rc, out = self.influx("-database", "db", "-precision", prec, "-execute",
                                  "INSERT cpu,device=cli-hm load=1 " + ts)
            self.assertEqual(rc, 0, out)
            self.assertNotIn("ERR", out)
        self.assertPoints(self.d.readings("cli-hm"),
                          [(1700000040000, {"load": 1.0}), (1700002800000, {"load": 1.0})])

    def test_import_file(self):
        lines = ["plant,device=cli-imp a=%r,b=%di %d" % (i * 0.1, i, 1700000100000 + i)
                 for i in range(50)]
        path = os.path.join(self.d.tmp, "import.txt")
        vt.write_file(path, "# DDL\nCREATE DATABASE vigil\n\n# DML\n"
                            "# CONTEXT-DATABASE: vigil\n# CONTEXT-RETENTION-POLICY: autogen\n"
                      + "\n".join(lines) + "\n")
        rc, out = self.influx("-import", "-path", path, "-precision", "ms")
        self.assertEqual(rc, 0, out)
        self.assertIn("Processed 50 inserts", out)
        self.assertIn("Failed 0 inserts", out)
        self.assertPoints(self.d.readings("cli-imp"),
                          [(1700000100000 + i, {"a": i * 0.1, "b": float(i)}) for i in range(50)])

    def test_create_database(self):
        # What Telegraf and the CLI send first; vigild has no databases but must say yes.
        rc, out = self.influx("-execute", "CREATE DATABASE telegraf")
        self.assertEqual(rc, 0, out)
        self.assertNotIn("ERR", out)

    def test_parse_error_as_influxd(self):
        # influxd 1.6.7 answered this -execute with the same output and exit status 1.
        rc, out = self.influx("-execute", "SHOW RETENTION POLICIES ON 'x'")
        self.assertEqual(rc, 1, out)
        self.assertIn("ERR: error parsing query: found x, expected identifier at line 1, "
                      "char 27\n", out)

    def test_statement_error_before_others(self):
        # The shell asks chunked=true: influxd 1.6.7 sends the failed statement's error before
        # its "not executed", and the shell prints the first (this output and exit status 1,
        # from influxd; vigild's whole answer printed "ERR: not executed" before review28).
        rc, out = self.influx("-execute", "SHOW RETENTION POLICIES ON nosuch; CREATE DATABASE c2")
        self.assertEqual(rc, 1, out)
        self.assertTrue(out.startswith("\nERR: database not found: nosuch\n"), out)
        self.assertNotIn("not executed", out)

    def test_bad_insert_reports_error(self):
        rc, out = self.influx("-database", "db", "-precision", "ms", "-execute",
                              "INSERT plant,device=cli-bad temp= 1")
        # influx -execute prints the server's error and still exits 0 (the CLI's behaviour):
        # InfluxDB's words for a write whose every line is bad, and the line's number.
        self.assertIn("ERR: {\"error\":\"unable to parse 'plant,device=cli-bad temp= 1': "
                      "missing field value (line 1)\"}", out)
        self.assertNotIn("partial write", out)
        self.assertNoDevice("cli-bad")


if __name__ == "__main__":
    vt.main()

#!/usr/bin/python3
"""vigild integration (session 54, task influx16): InfluxQL leftovers, eighth pass, each query sent
with real curl to vigild and to a real influxd 1.6.7 (the InfluxdPair fixture, Debian's influxd on
loopback) holding the same points and compared byte for byte: /query's parameters from a
multipart/form-data body (curl -F "q=..." -F "db=...", and q from a file part, curl -F
"q=@queries.txt", as InfluxDB 1.x's docs submit queries), the URL's parameters winning over the
body's as in influxd, and a malformed multipart body (no boundary, cut short) read as no body,
vigild's 400 naming what is wrong with it. The points: influxpair.py's G_POINTS."""

import json
import os
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import G_POINTS, InfluxdPair, g_range  # noqa: E402

CURL = "/usr/bin/curl"
MISSING_Q = b'{"error":"missing required parameter \\"q\\""}'
# a statement both servers answer alike (not SHOW DATABASES: influxd's fixture holds "bench")
OTHER = "SELECT temp FROM pump WHERE device = 'pump-8' AND " + g_range(0, 30)
OTHER_URL = "/query?db=g&q=" + urllib.parse.quote_plus(OTHER)


def curl(port, *args, path="/query"):
    """/query's answer to curl -sS -XPOST with args (its -F parts): (status, body stripped)."""
    out = subprocess.run([CURL, "-sS", "-XPOST", "-o", "-", "-w", "\n%{http_code}", *args,
                          "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, timeout=60, check=True).stdout
    body, _, status = out.rpartition(b"\n")
    return int(status), body.strip()


class Multipart(InfluxdPair):
    """/query's parameters from a multipart/form-data body, compared with influxd 1.6.7."""

    POINTS = G_POINTS

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=self.tmp)

    def file(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def compare(self, cases, what, status=200):
        """Sends each case (curl's arguments, the path) to both servers; vigild's answer must be
        influxd's, byte for byte, and influxd's status status. Returns influxd's answers."""
        answers = []
        for args, path in cases:
            with self.subTest(args=args, path=path):
                want, got = (curl(port, *args, path=path)
                             for port in (self.influxd.port, self.d.http_port))
                self.assertEqual(want[0], status, want)
                answers.append(want)
                self.assertEqual(got, want)
        print("\n%s: %d cases" % (what, len(cases)))
        return answers

    def test_form_values_as_influxd(self):
        # curl -F "q=..." -F "db=...": vigild did not read a multipart body (400, missing q)
        sel = 'SELECT temp FROM "pump-7" WHERE ' + g_range(0, 20)
        dev = "SELECT temp FROM pump WHERE device = $d AND " + g_range(0, 30)
        f = lambda *parts: [a for p in parts for a in ("-F", p)]  # noqa: E731
        cases = [(f("q=" + sel, "db=g"), "/query"),
                 (f("q=" + sel, "db=g", "epoch=ms"), "/query"),
                 (f("q=" + sel, "db=g", "epoch=s", "rp=autogen"), "/query"),
                 (f("q=" + sel, "db=g", "epoch=ms", "chunked=true", "chunk_size=2"), "/query"),
                 (f("q=" + dev, "db=g", "epoch=ms", 'params={"d":"pump-9"}'), "/query"),
                 # a part with a Content-Type is a value all the same
                 (f("q=%s;type=text/plain" % sel, "db=g;type=text/plain"), "/query"),
                 (f("q=SHOW RETENTION POLICIES ON g"), "/query"),
                 # values holding what a URL would escape: sent as they are
                 (f("q=SELECT \"temp\" FROM \"pump-7\" WHERE time >= '2024-11-28T08:00:00Z' "
                    "AND time <= '2024-11-28T08:00:20Z'", "db=g"), "/query"),
                 # the URL's parameters win over the body's (Go appends the body's after them)
                 (f("q=" + sel, "db=g"), OTHER_URL),
                 (f("q=" + sel, "db=g", "epoch=ms"), "/query?epoch=s"),
                 (f("q=" + sel, "db=g", "epoch=s", "epoch=ms"), "/query"),  # the first value
                 (f("q=" + sel), "/query?db=g&chunked=true")]
        answers = self.compare(cases, "multipart values")
        self.assertIn(b'"series"', answers[0][1])
        self.assertIn(b"[1732780800,70.5]", answers[9][1])  # epoch=s
        self.assertIn(b"[1732780800,70.5]", answers[10][1])

    def test_query_file_as_influxd(self):
        # curl -F "q=@queries.txt": influxd reads the file part "q" when FormValue("q") is blank
        stmts = ['SELECT temp FROM "pump-7" WHERE ' + g_range(0, 20),
                 OTHER, "SELECT mean(temp) FROM \"pump-7\" WHERE " + g_range(0, 30)]
        lf = self.file("lf.txt", ("\n".join(s + ";" for s in stmts) + "\n").encode())
        crlf = self.file("crlf.txt", (";\r\n".join(stmts) + "\r\n").encode())
        empty = self.file("empty.txt", b"")
        cases = [(["-F", "q=@" + lf, "-F", "db=g", "-F", "epoch=ms"], "/query"),
                 (["-F", "q=@" + crlf, "-F", "db=g"], "/query"),
                 (["-F", "q=@%s;type=application/octet-stream" % crlf, "-F", "db=g"], "/query"),
                 (["-F", "q=@" + lf], "/query?db=g&chunked=true"),
                 (["-F", "q= ", "-F", "q=@" + lf, "-F", "db=g"], "/query"),  # blank: the file
                 (["-F", "q=" + OTHER, "-F", "q=@" + lf, "-F", "db=g"], "/query"),  # a value
                 (["-F", "q=@" + lf, "-F", "db=g"], OTHER_URL),
                 (["-F", "q=@" + empty, "-F", "db=g"], "/query")]  # no statement: {}
        answers = self.compare(cases, "multipart file q")
        self.assertEqual(answers[0][1].count(b'"statement_id"'), 3)
        self.assertEqual(answers[1][1].count(b'"statement_id"'), 3)
        self.assertEqual(answers[-1][1], b"{}")

    def test_malformed_body(self):
        # a body Go's ParseMultipartForm refuses gives no values: influxd's 400 "missing
        # required parameter", vigild's the same with why; a q in the URL runs as influxd runs it
        part = (b'--XX\r\nContent-Disposition: form-data; name="q"\r\n\r\n'
                b"SHOW RETENTION POLICIES ON g\r\n")
        bodies = {"no boundary": (b"multipart/form-data", part + b"--XX--\r\n"),
                  "cut short": (b"multipart/form-data; boundary=XX", part),
                  "cut in a part": (b"multipart/form-data; boundary=XX", part[:40])}
        whys = {"no boundary": b"its Content-Type names no boundary",
                "cut short": b"it ends before its closing boundary",
                "cut in a part": b"it ends before its closing boundary"}
        for name, (ctype, body) in bodies.items():
            path = self.file(name.replace(" ", "_"), body)
            args = ["-H", "Content-Type: " + ctype.decode(), "--data-binary", "@" + path]
            with self.subTest(body=name):
                want, got = (curl(port, *args) for port in (self.influxd.port, self.d.http_port))
                self.assertEqual(want, (400, MISSING_Q))
                self.assertEqual(got[0], 400, got)
                self.assertEqual(json.loads(got[1]), {
                    "error": 'missing required parameter "q" (multipart/form-data body not '
                             "read: %s)" % whys[name].decode()})
            self.compare([(args, OTHER_URL)], "malformed, q in the URL")
        # the same part, closed (with a preamble, without the last CRLF; a quoted boundary;
        # on a GET, which Go's ParseMultipartForm reads too): read
        closed = self.file("closed", part + b"--XX--\r\n")
        pre = self.file("pre", b"preamble\r\n" + part + b"--XX--")
        mp = "Content-Type: multipart/form-data; boundary=XX"
        self.compare([(["-H", mp, "--data-binary", "@" + closed], "/query"),
                      (["-H", mp, "--data-binary", "@" + pre], "/query"),
                      (["-H", mp.replace("XX", '"XX"'), "--data-binary", "@" + closed], "/query"),
                      (["-XGET", "-F", "q=" + OTHER, "-F", "db=g"], "/query")], "closed")

    def test_long_file_name_as_influxd(self):
        # review: a part's header line longer than libmicrohttpd's buffer (256 bytes past the
        # boundaries) was vigild's 400 where influxd reads it (curl's filename= names it)
        path = self.file("q.txt", b"SHOW RETENTION POLICIES ON g\n")
        answers = self.compare([(["-F", "q=@%s;filename=%s" % (path, "f" * 1000)], "/query")],
                               "a 1,000-byte file name")
        self.assertIn(b"autogen", answers[0][1])

    def test_part_without_disposition(self):
        # a part without Content-Disposition has no name (Go skips it): influxd's 400, vigild's
        # with why
        body = self.file("nocd", b"--XX\r\nContent-Type: text/plain\r\n\r\nSHOW DATABASES\r\n"
                         b"--XX--\r\n")
        args = ["-H", "Content-Type: multipart/form-data; boundary=XX", "--data-binary", "@" + body]
        self.assertEqual(curl(self.influxd.port, *args), (400, MISSING_Q))
        got = curl(self.d.http_port, *args)
        self.assertEqual(got[0], 400, got)
        self.assertIn(b"no Content-Disposition", got[1])

    def test_empty_first_value_as_influxd(self):
        # Go's FormValue is the first value, an empty one too: db= then db=nodb is db= (with
        # rp=rp2: influxd's "database name required"); vigild took the second until the
        # empty part was read as a part of its own
        body = self.file("empty", parts(("db", ""), ("db", "nodb"), ("rp", "rp2"),
                                        ("q", 'SELECT temp FROM "pump-7"')))
        mp = "Content-Type: multipart/form-data; boundary=XX"
        answers = self.compare([(["-H", mp, "--data-binary", "@" + body], "/query")], "empty")
        self.assertIn(b"database name required", answers[0][1])

    def test_unquoted_name(self):
        # Go reads name=q unquoted; libmicrohttpd 0.9.75 gives such a part no name (and
        # vigild's first multipart code crashed on it): the part is not read, and a missing q
        # says why
        body = self.file("unquoted", b"--XX\r\nContent-Disposition: form-data; name=q\r\n\r\n"
                         b"SHOW RETENTION POLICIES ON g\r\n--XX--\r\n")
        args = ["-H", "Content-Type: multipart/form-data; boundary=XX", "--data-binary", "@" + body]
        self.assertEqual(curl(self.influxd.port, *args)[0], 200)
        got = curl(self.d.http_port, *args)
        self.assertEqual(got[0], 400, got)
        self.assertEqual(json.loads(got[1]), {
            "error": 'missing required parameter "q" (a multipart/form-data part has no name '
                     "vigild reads (no Content-Disposition, or a name not quoted, name=q, which "
                     "vigild does not read: quote it))"})
        self.compare([(args, OTHER_URL)], "unquoted, q in the URL")  # vigild up, as influxd


def parts(*pairs):
    """A multipart/form-data body of boundary XX: its parts (name, value), each name quoted."""
    return b"".join(b'--XX\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                    % (k.encode(), v.encode()) for k, v in pairs) + b"--XX--\r\n"


class IntoMeasurement(InfluxdPair):
    """SELECT INTO [db.][rp.]:MEASUREMENT: its database and policy looked up as the other
    targets' (influxd's "database not found", "retention policy not found"), compared with
    influxd 1.6.7; vigild answered "vigild does not support SELECT INTO" (or a source's error)."""

    POINTS = G_POINTS

    @staticmethod
    def ask(port, q, rp):
        return curl(port, "--data-urlencode", "q=" + q, "-d", "db=g",
                    *(["-d", "rp=" + rp] if rp is not None else []))

    def test_measurement_target_looked_up(self):
        # influx16: plain_target left a :MEASUREMENT target unread
        targets = ["nodb.autogen.:MEASUREMENT", "g.rp2.:MEASUREMENT", "rp2.:MEASUREMENT",
                   "nodb..:MEASUREMENT", '"nodb".autogen.:MEASUREMENT', "nodb.rp2.:MEASUREMENT",
                   "nodb..:measurement"]
        qs = ['SELECT temp INTO %s FROM "pump-7"' % t for t in targets]
        qs += ['SELECT temp INTO g.autogen.:MEASUREMENT FROM g.rp2."pump-7"',
               'SELECT temp INTO g.autogen.:MEASUREMENT FROM "pump-7", nodb.."pump-7"',
               'SELECT temp INTO nodb..:MEASUREMENT FROM "pump-7"; SELECT temp FROM "pump-7"']
        answers = self.compare_rps(qs, 200)
        # two statements: influxd's "not executed" for the whole (as in test_influxql7.py)
        for a in answers:
            self.assertTrue(b"not found: " in a[1] or b"not executed" in a[1], a)

    def compare_rps(self, qs, status):
        """Asks each query of qs of both servers without rp= and with rp=rp2: influxd's
        status status, vigild's answer the same byte for byte. Returns influxd's answers."""
        answers = []
        for q in qs:
            for rp in (None, "rp2"):
                with self.subTest(q=q, rp=rp):
                    want, got = (self.ask(port, q, rp)
                                 for port in (self.influxd.port, self.d.http_port))
                    self.assertEqual(want[0], status, want)
                    answers.append(want)
                    self.assertEqual(got, want)
        return answers


class SubqueryParseErrors(InfluxdPair):
    """influxd's parse errors in a subquery's (or a refused SELECT INTO's) ORDER BY, LIMIT,
    OFFSET, SLIMIT and SOFFSET, which vigild skims: its 400, where vigild answered 200 with
    "vigild does not support subqueries"."""

    POINTS = G_POINTS
    ask = staticmethod(IntoMeasurement.ask)
    compare_rps = IntoMeasurement.compare_rps

    def test_tail_parse_errors_as_influxd(self):
        sub = 'SELECT temp FROM (SELECT temp FROM "pump-7" %s)'
        tails = ["LIMIT 1.5", "LIMIT x", "LIMIT 'a'", "SLIMIT -1", "OFFSET -1", "LIMIT",
                 "SOFFSET 1e3", "ORDER BY time, temp", "ORDER BY temp DESC", "ORDER BY",
                 "ORDER BY time ASC, time", "ORDER BY -"]
        qs = [sub % t for t in tails]
        qs += ['SELECT temp FROM (SELECT temp FROM "pump-7") ORDER BY temp',
               'SELECT temp FROM (SELECT temp FROM "pump-7") LIMIT 2.0',
               'SELECT temp INTO x FROM "pump-7" LIMIT 1.5',
               'SELECT temp INTO x FROM "pump-7" ORDER BY temp']
        self.compare_rps(qs, 400)
        # what influxd reads, vigild still refuses (not compared)
        for t in ["LIMIT 99999999999999999999", "ORDER BY time ASC LIMIT 1",
                  "LIMIT 1 OFFSET 2 SLIMIT 1 SOFFSET 0"]:
            with self.subTest(q=sub % t):
                self.assertEqual(self.ask(self.influxd.port, sub % t, None)[0], 200)
                got = self.ask(self.d.http_port, sub % t, None)
                self.assertIn(b"vigild does not support subqueries", got[1])


class SubqueryStatementErrors(InfluxdPair):
    """influxd's statement errors in a subquery without a function call (fill(none),
    fill(linear), GROUP BY time()), raised after its databases are looked up and before its
    policies; vigild answered "vigild does not support subqueries" (or the policy's error)."""

    POINTS = G_POINTS
    ask = staticmethod(IntoMeasurement.ask)
    compare_rps = IntoMeasurement.compare_rps

    def test_statement_errors_as_influxd(self):
        p7 = '"pump-7"'
        sub = "SELECT temp FROM (%s)"
        inner = ["SELECT temp FROM %s fill(none)", "SELECT temp FROM %s fill(linear)",
                 "SELECT temp FROM %s GROUP BY time(1m)",
                 "SELECT temp FROM %s GROUP BY time(1m) fill(0)",
                 "SELECT temp FROM %s GROUP BY device fill(none)",
                 "SELECT temp FROM (SELECT temp FROM %s fill(none))",
                 "SELECT temp, vib FROM %s WHERE time > 0 fill(none) LIMIT 1"]
        qs = [sub % (i % p7) for i in inner]
        qs += ["SELECT temp FROM (SELECT temp FROM nodb..%s fill(none))" % p7,  # the database's
               "SELECT temp FROM (SELECT temp FROM %s fill(none)), nodb..%s" % (p7, p7),
               "SELECT temp FROM (SELECT temp FROM g.rp2.%s fill(none))" % p7,  # not the policy's
               "SELECT 1 FROM (SELECT temp FROM %s fill(none))" % p7,  # the outer's first
               "SELECT temp FROM (SELECT temp FROM %s fill(none)); SELECT temp FROM %s" % (p7, p7)]
        answers = self.compare_rps(qs, 200)
        self.assertEqual(sum(b"must be used with a function" in a[1] for a in answers), 14)
        # review: a call's name is any case in influxd (FILL, TIME), fill's argument is not
        # (fill(NONE): its parse error); the skim read only lower-case fill(none) and time()
        cased = ["SELECT temp FROM %s FILL(none)", "SELECT temp FROM %s Fill(linear)",
                 "SELECT temp FROM %s GROUP BY TIME(1m)",
                 "SELECT temp FROM %s GROUP BY Time(1m) FILL(0)"]
        answers = self.compare_rps([sub % (i % p7) for i in cased], 200)
        self.assertEqual(sum(b"must be used with a function" in a[1] for a in answers), 6)
        bad = ["SELECT temp FROM %s fill(NONE)", "SELECT temp FROM %s FILL(LINEAR)",
               "SELECT temp FROM %s Fill(None)", "SELECT temp FROM %s GROUP BY time(1m) FILL(NULL)",
               "SELECT mean(temp) FROM %s GROUP BY time(1m) fill(Previous)"]
        qs = [sub % (i % p7) for i in bad]
        qs.append("SHOW DATABASES; " + qs[0])  # a parse error: no statement runs
        answers = self.compare_rps(qs, 400)
        self.assertIn(b"expected number argument in fill()", answers[0][1])
        # review: a clause out of order or repeated is influxd's parse error, ORDER BY time DESC
        # its ordering error: not a fill's error (the skim answered fill(none)'s); vigild's
        # refusal as on main (not compared)
        for i in ["SELECT temp FROM %s fill(none) GROUP BY time(1m)",
                  "SELECT temp FROM %s LIMIT 1 fill(none)", "SELECT temp FROM %s tz('UTC') fill(none)",
                  "SELECT temp FROM %s fill(none) fill(none)", "SELECT temp FROM %s fill(none, 1)",
                  "SELECT temp FROM %s fill(none) ORDER BY time DESC",
                  "SELECT temp FROM %s SLIMIT 1 GROUP BY time(1m)"]:
            q = sub % (i % p7)
            with self.subTest(q=q):
                self.assertNotIn(b"must be used", self.ask(self.influxd.port, q, None)[1])
                got = self.ask(self.d.http_port, q, None)
                self.assertIn(b"vigild does not support subqueries", got[1])
        # with a function: no error of its own, vigild's refusal as before (not compared)
        for q in [sub % "SELECT mean(temp) FROM %s fill(none)" % p7,
                  sub % "SELECT mean(temp) FROM %s GROUP BY time(1m)" % p7,
                  sub % "SELECT temp FROM %s fill(0)" % p7,
                  sub % "SELECT (mean(temp)) FROM %s fill(none)" % p7]:
            with self.subTest(q=q):
                self.assertEqual(self.ask(self.influxd.port, q, None)[0], 200)
                got = self.ask(self.d.http_port, q, None)
                self.assertIn(b"vigild does not support subqueries", got[1])


class BigFile(vt.FreshDaemonTestCase):
    """A vigild of CONFIG's and a file of many statements (no tests of its own)."""

    STREAM = False

    def big(self, times):
        path = os.path.join(vt.mkdtemp(), "big.txt")
        with open(path, "wb") as f:
            f.write(b"SHOW DATABASES;" * times)
        return path


class Limits(BigFile):
    """A multipart body within http.max_body_bytes, and over it: vigild's JSON 413, as for any
    body."""

    CONFIG = "[http]\nmax_body_bytes = 2048\n"

    def test_body_over_max_body_bytes(self):
        ok = curl(self.d.http_port, "-F", "q=SHOW DATABASES")
        self.assertEqual(ok[0], 200, ok)
        self.assertIn(b'"statement_id":0', ok[1])
        got = curl(self.d.http_port, "-F", "q=@" + self.big(200))  # 3,000 bytes
        self.assertEqual(got[0], 413, got)
        self.assertIn(b"2048", got[1])
        json.loads(got[1])


class QLimit(BigFile):
    """With the default http.max_body_bytes (32 MiB): a q over its bound, 64 KiB (vigild's
    400)."""

    def test_q_over_its_bound(self):
        too_long = b"longer than 65536 bytes or holds a NUL byte\"}"
        want = (400, b'{"error":"file \'q\': ' + too_long)
        self.assertEqual(curl(self.d.http_port, "-F", "q=@" + self.big(5000)), want)
        # 1.5 MB: not kept past the bound, the same 400; as a value, the URL's 400
        big = self.big(100000)
        self.assertEqual(curl(self.d.http_port, "-F", "q=@" + big), want)
        self.assertEqual(curl(self.d.http_port, "-F", "q=<" + big),
                         (400, b'{"error":"parameter \'q\': ' + too_long))


if __name__ == "__main__":
    unittest.main()

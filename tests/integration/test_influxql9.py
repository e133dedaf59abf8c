#!/usr/bin/python3
"""vigild integration (session 55, task influx17): /query's pretty=true, as InfluxDB 1.x's docs
write nearly every query (curl -G 'http://localhost:8086/query?pretty=true' --data-urlencode
"q=..."), and multipart/form-data bodies Go's reader takes that vigild answered 400. Each request
goes with real curl to vigild and to a real influxd 1.6.7 (the InfluxdPair fixture, Debian's
influxd on loopback) holding the same points, and the answers are compared byte for byte (status
and body). The points: influxpair.py's G_POINTS."""

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
SEL = 'SELECT temp FROM "pump-7" WHERE ' + g_range(0, 20)
DEV = "SELECT temp FROM pump WHERE device = 'pump-8' AND " + g_range(0, 30)
FL = "SELECT a, b, c, d, e, f, g, h, i, j, k, l FROM fl"  # numbers as Go prints them: an indenter must not re-print them


def curl(port, path, *args):
    """curl -sS's answer to path with args: (status, body as it came, nothing stripped)."""
    out = subprocess.run([CURL, "-sS", "-o", "-", "-w", "%{http_code}", *args,
                          "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, timeout=60, check=True).stdout
    return int(out[-3:]), out[:-3]


def url(**params):
    return "/query?" + urllib.parse.urlencode(params)


class Pair(InfluxdPair):
    POINTS = G_POINTS

    def compare(self, cases, what):
        """Sends each case (path, curl's arguments) to both servers: vigild's status and body
        must be influxd's, byte for byte. Returns influxd's answers."""
        answers = []
        for path, args in cases:
            with self.subTest(path=path, args=args):
                want = curl(self.influxd.port, path, *args)
                got = curl(self.d.http_port, path, *args)
                answers.append(want)
                self.assertEqual(got, want)
        print("\n%s: %d cases" % (what, len(cases)))
        return answers


class Pretty(Pair):
    """pretty=true: influxd's json.MarshalIndent(v, "", "    ") then "\\n", on every answer of
    /query (results, errors, chunked documents) and /write's errors; vigild ignored it."""

    def test_results_as_influxd(self):
        cases = [(url(pretty="true", db="g", q=SEL), []),
                 (url(pretty="true", db="g", q=SEL, epoch="ms"), []),
                 (url(db="g", q=DEV, epoch="s", pretty="true"), []),
                 (url(pretty="true", db="g", q=FL), []),
                 # several statements, one of them empty, one an error of its own
                 (url(pretty="true", db="g", epoch="ms",
                      q=SEL + "; SELECT temp FROM nothing; SELECT x FROM nodb..m; " + DEV), []),
                 (url(pretty="true", q="SHOW RETENTION POLICIES ON g"), []),
                 (url(pretty="true", q=";"), []),  # no statement: {}
                 # as InfluxDB's docs: curl -G --data-urlencode
                 ("/query?pretty=true", ["-G", "--data-urlencode", "db=g",
                                         "--data-urlencode", "q=" + SEL]),
                 # POST, the q in a form body, pretty in the URL
                 ("/query?pretty=true", ["--data-urlencode", "db=g", "--data-urlencode",
                                         "q=" + DEV]),
                 # multipart: pretty is the URL's only
                 ("/query?pretty=true", ["-F", "db=g", "-F", "q=" + SEL])]
        answers = self.compare(cases, "pretty results")
        self.assertTrue(answers[0][1].startswith(b'{\n    "results": [\n        {\n'), answers[0])
        self.assertEqual(answers[6], (200, b"{}\n"))

    def test_chunked_as_influxd(self):
        # each chunked document indented by itself, each followed by its "\n"
        cases = [(url(pretty="true", db="g", q=SEL, epoch="ms", chunked="true",
                      chunk_size="3"), []),
                 (url(pretty="true", db="g", q=SEL + "; " + DEV + "; SHOW RETENTION POLICIES ON g",
                      chunked="true"), []),
                 (url(pretty="true", db="g", q="SELECT x FROM nodb..m", chunked="true"), []),
                 (url(pretty="true", q=";", chunked="true"), [])]  # empty body
        answers = self.compare(cases, "pretty chunked")
        docs = answers[0][1].split(b"\n}\n")
        self.assertEqual(docs[-1], b"")  # each document ends in "}\n"
        self.assertEqual(len(docs), 3, answers[0])  # 4 rows, chunk_size 3: two documents
        self.assertTrue(all(d.startswith(b'{\n    "results": [') for d in docs[:-1]))

    def test_errors_as_influxd(self):
        cases = [("/query?pretty=true", []),  # missing q: 400
                 (url(pretty="true", q="SELECT FROM <"), []),  # parse error, '<' as \u003c
                 (url(pretty="true", db="g", q="SELECT temp FROM \"pump-7\"", epoch="ms",
                      params="{"), []),
                 (url(pretty="true", db="g", q=SEL), ["-XPOST", "-H",
                                                      "Content-Type: multipart/form-data",
                                                      "--data-binary", "x"])]
        answers = self.compare(cases, "pretty errors")
        self.assertEqual(answers[0], (400, b'{\n    "error": "missing required parameter '
                                           b'\\"q\\""\n}\n'))

    def test_other_spellings_compact_as_influxd(self):
        # influxd reads r.URL.Query().Get("pretty") == "true": no other spelling, no form value
        cases = [(url(pretty=p, db="g", q=SEL), []) for p in ("1", "TRUE", "True", "t", "")]
        cases += [("/query", ["--data-urlencode", "pretty=true", "--data-urlencode", "db=g",
                              "--data-urlencode", "q=" + SEL]),
                  ("/query?pretty=false&pretty=true", ["-G", "--data-urlencode", "q=;"]),
                  ("/query?pretty=true&pretty=false", ["-G", "--data-urlencode", "q=;"])]
        answers = self.compare(cases, "pretty's other spellings")
        self.assertNotIn(b"\n    ", answers[0][1])
        self.assertEqual(answers[-1], (200, b"{}\n"))

    def test_write_error_pretty(self):
        # influxd's /write errors are pretty too (its /ping has no body); vigild's words for a
        # bad line differ from influxd's (it names the line), so each is compared with its own
        # compact answer: the same error, in influxd's shape
        for port in (self.influxd.port, self.d.http_port):
            with self.subTest(port=port):
                status, compact = curl(port, "/write?db=g", "--data-binary", "m v=1 x y z")
                self.assertEqual(status, 400)
                self.assertTrue(compact.startswith(b'{"error":"') and compact.endswith(b'"}\n'))
                self.assertEqual(curl(port, "/write?db=g&pretty=true", "--data-binary",
                                      "m v=1 x y z"),
                                 (400, go_indented(compact)))


def go_indented(compact_error):
    """An error answer {"error":"..."}\n as influxd's json.MarshalIndent writes it."""
    return b'{\n    "error": ' + compact_error[9:-2] + b"\n}\n"


class PrettyAuth(vt.DaemonTestCase):
    """pretty=true on /query's 401 and 403 (auth on): influxd 1.6.7 indents them too (seen on an
    influxd with auth-enabled: {\n    "error": "authorization failed"\n}\n); vigild's words
    differ (its tokens), so each is compared with vigild's own compact answer."""

    READ = "influx-read-token-AAAAAAAA"

    @classmethod
    def setUpClass(cls):
        cls.EXTRA_ARGS = vt.auth_file_args("read %s\n" % cls.READ)
        super().setUpClass()

    def test_auth_errors_pretty(self):
        port = self.d.http_port
        for status, args in ((401, []), (401, ["-u", "x:wrong"]),
                             (403, ["-u", "x:" + self.READ, "-XPOST"])):
            with self.subTest(status=status, args=args):
                q = ["--data-urlencode", "q=CREATE DATABASE x"]
                got, compact = curl(port, "/query", *args, *q)
                self.assertEqual(got, status, compact)
                self.assertEqual(curl(port, "/query?pretty=true", *args, *q),
                                 (status, go_indented(compact)))


class PrettyBound(vt.DaemonTestCase):
    """An indented answer past 32 MiB is not built: the compact one (the same content) is sent.
    Indenting adds 29 bytes per value of a SELECT's row, so one-digit values grow 12.5 times
    (an 8 MiB answer would be 104 MB); influxd has no bound but its memory."""

    NF = 12

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        fields = ",".join("f%d=0" % j for j in range(cls.NF))
        lines = "\n".join("m %s %d" % (fields, 1732780800000 + i * 1000) for i in range(5000))
        path = vt.write_file(os.path.join(cls.d.tmp, "points.lp"), lines)
        status, _ = curl(cls.d.http_port, "/write?db=g&precision=ms", "--data-binary", "@" + path)
        assert status == 204, status

    def query(self, reps, **extra):
        sel = "SELECT %s FROM m WHERE time > 0" % ", ".join("f%d" % j for j in range(self.NF))
        return curl(self.d.http_port, url(db="g", epoch="s", q="; ".join([sel] * reps), **extra))

    def test_large_pretty_is_compact(self):
        # 4 statements: 740,554 bytes compact, 9,282,670 indented (within the bound)
        status, compact = self.query(4)
        self.assertEqual(status, 200)
        status, pretty = self.query(4, pretty="true")
        self.assertEqual(status, 200)
        self.assertTrue(pretty.startswith(b'{\n    "results": [\n'), pretty[:40])
        self.assertGreater(len(pretty), 12 * len(compact))
        self.assertEqual(vt.loads(pretty), vt.loads(compact))
        # 16: 2,962,180 bytes compact, 37,130,608 indented, past 32 MiB: compact
        status, compact = self.query(16)
        self.assertEqual(status, 200)
        self.assertGreater(len(compact), 2900000)
        status, pretty = self.query(16, pretty="true")
        self.assertEqual(status, 200)
        # not assertEqual on the bodies: unittest's diff of 37 MB runs for minutes
        self.assertTrue(pretty == compact, "%d bytes, not the compact %d: %r"
                        % (len(pretty), len(compact), pretty[:40]))


class MultipartAsGo(Pair):
    """Multipart bodies Go's mime/multipart reads and vigild answered 400: an unquoted name, LF
    line ends, BOUNDARY= in upper case."""

    def body(self, data):
        fd, path = tempfile.mkstemp(dir=self.tmp)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    def send(self, ctype, data):
        return ("/query", ["-XPOST", "-H", "Content-Type: " + ctype,
                           "--data-binary", "@" + self.body(data)])

    def test_lf_line_ends_as_influxd(self):
        # Go reads a body whose first boundary line ends in a bare LF with LF line ends (its
        # multipart.Reader's "\n mode"); libmicrohttpd reads CRLF only: vigild's 400, "missing
        # required parameter \"q\" (... it ends before its closing boundary)"
        lf = (b'--XX\nContent-Disposition: form-data; name="q"\n\n%s\n'
              b'--XX\nContent-Disposition: form-data; name="db"\n\ng\n--XX--\n' % DEV.encode())
        # a value holding LFs of its own keeps them (here q's statements, one a line)
        two = (b'--XX\nContent-Disposition: form-data; name="q"\n\n%s;\n%s\n'
               b'--XX\nContent-Disposition: form-data; name="db"\n\ng\n'
               b'--XX\nContent-Disposition: form-data; name="q"; filename="q.txt"\n\nSHOW\n'
               b'--XX--' % (DEV.encode(), SEL.encode()))
        mp = "multipart/form-data; boundary=XX"
        answers = self.compare([self.send(mp, lf), self.send(mp, two)], "LF line ends")
        self.assertIn(b"60.5", answers[0][1])
        self.assertEqual(answers[1][1].count(b'"statement_id"'), 2, answers[1])
        # cut short: both 400, vigild's saying why
        cut = self.send(mp, lf[:-8])
        self.assertEqual(curl(self.influxd.port, *cut[:1], *cut[1]),
                         (400, b'{"error":"missing required parameter \\"q\\""}\n'))
        self.assertEqual(curl(self.d.http_port, cut[0], *cut[1]), (400, (
            b'{"error":"missing required parameter \\"q\\" (multipart/form-data body not '
            b'read: it ends before its closing boundary)"}\n')))

    def test_upper_case_boundary_says_why(self):
        # Go reads BOUNDARY=; libmicrohttpd's post processor looks for "boundary=" in the
        # connection's Content-Type as it is and takes no other, so vigild stays a 400 (influxd's
        # 200), saying why rather than "names no boundary"
        body = (b'--XX\r\nContent-Disposition: form-data; name="q"\r\n\r\n%s\r\n'
                b'--XX\r\nContent-Disposition: form-data; name="db"\r\n\r\ng\r\n--XX--\r\n'
                % DEV.encode())
        for ctype in ("multipart/form-data; BOUNDARY=XX", "Multipart/Form-Data; Boundary=XX",
                      'multipart/form-data; charset=utf-8;BOUNDARY="XX"'):
            path, args = self.send(ctype, body)
            with self.subTest(ctype=ctype):
                self.assertEqual(curl(self.influxd.port, path, *args)[0], 200)
                self.assertEqual(curl(self.d.http_port, path, *args), (400, (
                    b'{"error":"missing required parameter \\"q\\" (multipart/form-data body '
                    b"not read: its Content-Type's boundary parameter is not written boundary= "
                    b'in lower case, the only way vigild reads it)"}\n')))


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/python3
"""vigild integration: InfluxDB v1 compatibility, the line protocol: POST /write with curl
(escaping, field types, comments, CRLF, precisions, device naming, gzip, partial writes,
overwrites, an empty body), /ping, and /query's CREATE DATABASE and its refusals; the
X-Influxdb-Error header of /write's and /query's errors, beside influxd 1.6.7's. The database
statements and the influx CLI: test_influx.py; Grafana's queries: test_influx_grafana*.py;
InfluxQL compared with influxd 1.6.7: test_influxql*.py."""

import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import CREATED, CREATED_BYTES, InfluxdPair  # noqa: E402


class LineProtocol(vt.DaemonTestCase):

    def ok(self, res):
        self.assertEqual(res.status, 204, res)
        self.assertEqual(res.body, b"")
        self.assertIn("x-influxdb-version", res.headers)

    def test_field_types_and_exact_values(self):
        body = ("m,device=lp-types f1=0.1,f2=1e-300,f3=-0.0,f4=123456789.123456789,f5=-1.5E+10 1000\n"
                "m,device=lp-types i1=42i,i2=-9223372036854775808i,i3=9223372036854775807i,"
                "u1=18446744073709551615u,u2=0u 2000\n"
                "m,device=lp-types b1=t,b2=T,b3=true,b4=True,b5=TRUE,b6=f,b7=F,b8=false,"
                "b9=False,b10=FALSE 3000\n"
                "m,device=lp-types s=\"only a string\" 4000\n"
                "m,device=lp-types s=\"he said \\\"hi\\\", x=1 \\\\\",v=5,t=\"a b=c,d\" 5000\n"
                "m,device=lp-types big=1.7976931348623157e308,tiny=5e-324,n=-1 6000\n"
                "m,device=lp-types int_exp=1e3,plain=7 7000\n")
        self.ok(self.d.write_lp(body, precision="ms"))
        self.assertPoints(self.d.readings("lp-types"), [
            (1000, {"f1": 0.1, "f2": 1e-300, "f3": -0.0, "f4": 123456789.123456789,
                    "f5": -1.5e10}),
            (2000, {"i1": 42.0, "i2": float(-9223372036854775808),
                    "i3": float(9223372036854775807), "u1": float(18446744073709551615),
                    "u2": 0.0}),
            (3000, {"b1": 1.0, "b2": 1.0, "b3": 1.0, "b4": 1.0, "b5": 1.0,
                    "b6": 0.0, "b7": 0.0, "b8": 0.0, "b9": 0.0, "b10": 0.0}),
            (5000, {"v": 5.0}),
            (6000, {"big": 1.7976931348623157e308, "tiny": 5e-324, "n": -1.0}),
            (7000, {"int_exp": 1000.0, "plain": 7.0}),
        ])
        self.assertNotIn("s", self.d.device("lp-types")["channels"])

    def test_escaping_and_series_key(self):
        body = ("cpu,host=a,region=b usage=1.5 1000\n"
                "cpu,region=b,host=a usage=2.5 2000\n"          # same series key after sorting
                "my\\ meas\\,x,device=lp-esc1 f=1 1000\n"      # measurement escapes, device tag
                "m,device=lp\\ esc\\,2\\=x f\\ 1=1,f\\,2=2,f\\=3=3 1000\n"
                "we\\,ird\\ m,tag\\ k=v\\,a\\=l,b=2 f=9 1000\n"
                "m,device=lp-esc3,zone=z\\ 1 x=\"str\",y=3 1000\n"
                "m,zz=1,aa=2,device=lp-esc4 y=4 1000\n"
                "m\\=eq,device=lp-esc5 ü=5 1000\n")
        self.ok(self.d.write_lp(body, precision="ms"))
        self.assertPoints(self.d.readings("cpu,host=a,region=b"),
                          [(1000, {"usage": 1.5}), (2000, {"usage": 2.5})])
        self.assertPoints(self.d.readings("lp-esc1"), [(1000, {"f": 1.0})])
        self.assertPoints(self.d.readings("lp esc,2=x"),
                          [(1000, {"f 1": 1.0, "f,2": 2.0, "f=3": 3.0})])
        self.assertPoints(self.d.readings("we\\,ird\\ m,b=2,tag\\ k=v\\,a\\=l"),
                          [(1000, {"f": 9.0})])
        self.assertPoints(self.d.readings("lp-esc3"), [(1000, {"y": 3.0})])
        self.assertPoints(self.d.readings("lp-esc4"), [(1000, {"y": 4.0})])
        self.assertPoints(self.d.readings("lp-esc5"), [(1000, {"ü": 5.0})])
        self.assertEqual(self.d.device("cpu,host=a,region=b")["points"], 2)

    def test_comments_blank_crlf(self):
        body = ("# a comment\r\n"
                "\r\n"
                "m,device=lp-crlf a=1 1000\r\n"
                "   \n"
                "#m,device=lp-crlf a=99 1500\n"
                "m,device=lp-crlf a=2,b=3 2000\r\n"
                "m,device=lp-crlf a=4 3000")                   # no final newline
        self.ok(self.d.write_lp(body, precision="ms"))
        self.assertPoints(self.d.readings("lp-crlf"),
                          [(1000, {"a": 1.0}), (2000, {"a": 2.0, "b": 3.0}), (3000, {"a": 4.0})])

    def test_precisions(self):
        cases = [
            ("ns", "1700000000123456789", 1700000000123),
            (None, "1700000000124999999", 1700000000124),    # default: ns, floor
            ("n", "1700000000125000000", 1700000000125),
            ("u", "1700000000126999", 1700000000126),
            ("us", "1700000000127000", 1700000000127),
            ("ms", "1700000000128", 1700000000128),
            ("s", "1700000001", 1700000001000),
            ("m", "28333334", 1700000040000),               # minutes and hours, as InfluxDB
            ("h", "472223", 1700002800000),
        ]
        for i, (prec, ts, want) in enumerate(cases):
            with self.subTest(precision=prec):
                dev = "lp-prec-%d" % i
                self.ok(self.d.write_lp("m,device=%s v=%d %s\n" % (dev, i, ts), precision=prec))
                self.assertPoints(self.d.readings(dev), [(want, {"v": float(i)})])
        self.assertJsonError(self.d.write_lp("m,device=lp-prec-x v=1 1\n", precision="d"),
                             400, "precision")
        self.assertJsonError(self.d.write_lp("m,device=lp-prec-x v=1 1\n",
                                             precision="milliseconds-please"), 400, "precision")
        self.assertNoDevice("lp-prec-x")

    def test_seconds_without_precision_refused(self):
        """Session 67: seconds, ms or us sent without precision= (read as ns: 1970) are a 400
        naming the line, the value, the date and the fix, that line not stored; declared
        (precision=ns included) they are kept; the same on /api/v2/write and the stream."""
        body = "pump,device=p67-ok vib=2 1733580000000000000\npump,device=p67 vib=1 1733580000\n"
        res = self.d.write_lp(body)
        self.assertJsonError(res, 400, "partial write")
        err = json.loads(res.body)["error"]
        self.assertIn("timestamp 1733580000 as nanoseconds (no precision given) is "
                      "1970-01-01T00:00:01.733Z, before 1973-03-03T09:46:40Z: looks like epoch seconds: "
                      "declare precision=s (line 2)", err)
        self.assertNoDevice("p67")
        res = self.d.write_lp("pump,device=p67 vib=1 1733580000123\n")
        self.assertJsonError(res, 400, "looks like epoch milliseconds: declare precision=ms "
                             "(line 1)")
        self.assertNoDevice("p67")
        # Microseconds: the longest reason, whose fix was cut to "declare precision" (review).
        res = self.d.write_lp("pump,device=p67 vib=1 1733580000123456\n")
        self.assertJsonError(res, 400, "looks like epoch microseconds: declare precision=us "
                             "(line 1)")
        self.assertNoDevice("p67")
        self.ok(self.d.write_lp("pump,device=p67 vib=1 1733580000\n", precision="s"))
        self.assertPoints(self.d.readings("p67"), [(1733580000000, {"vib": 1.0})])
        self.ok(self.d.write_lp("pump,device=p67-ns vib=1 5000000\n", precision="ns"))
        self.assertPoints(self.d.readings("p67-ns"), [(5, {"vib": 1.0})])
        res = self.d.curl("POST", "/api/v2/write?org=o&bucket=db", "--data-binary", "@-",
                          stdin=b"pump,device=p67-v2 vib=1 1733580000\n")
        self.assertEqual(res.status, 400, res)
        self.assertIn(b"looks like epoch seconds: declare precision=s (line 1)", res.body)
        self.assertNoDevice("p67-v2")
        c = self.d.stream_connect()
        try:
            c.send("pump,device=p67-st vib=1 1733580000\n"
                   "pump,device=p67-st vib=2 1733580000000000000\n")
            rest = c.finish()
        finally:
            c.close()
        self.assertEqual(vt.errors_of(rest), {
            1: "timestamp 1733580000 as nanoseconds (the stream's unit) is "
               "1970-01-01T00:00:01.733Z, before 1973-03-03T09:46:40Z: looks like epoch seconds: send "
               "nanoseconds (1733580000000000000) or no timestamp"}, rest)
        self.assertPoints(self.d.readings("p67-st"), [(1733580000000, {"vib": 2.0})])

    def test_no_timestamp_uses_server_time(self):
        before = vt.now_ms()
        self.ok(self.d.write_lp("m,device=lp-now v=3.5\n"))
        after = vt.now_ms()
        pts = self.d.readings("lp-now")
        self.assertEqual(len(pts), 1)
        self.assertTrue(before - 1 <= pts[0]["ts"] <= after + 1, (before, pts, after))
        self.assertEqual(pts[0]["values"], {"v": 3.5})

    def test_gzip(self):
        body = "".join("m,device=lp-gz v=%d.25,w=%di %d\n" % (i, i, 1000 + i) for i in range(300))
        self.ok(self.d.write_lp(body, precision="ms", gz=True))
        self.assertPoints(self.d.readings("lp-gz"),
                          [(1000 + i, {"v": i + 0.25, "w": float(i)}) for i in range(300)])
        # A gzip file on disk, as in the README: --data-binary @file.gz
        import gzip
        path = os.path.join(self.d.tmp, "lines.gz")
        vt.write_file(path, gzip.compress(b"m,device=lp-gz2 v=1 5\n"), "wb")
        r = self.d.curl("POST", "/write?db=x&precision=s", "-H", "Content-Encoding: gzip",
                        "--data-binary", "@" + path)
        self.ok(r)
        self.assertPoints(self.d.readings("lp-gz2"), [(5000, {"v": 1.0})])
        r = self.d.curl("POST", "/write?db=x", "-H", "Content-Encoding: deflate",
                        "--data-binary", "m,device=lp-gz3 v=1")
        self.assertJsonError(r, 415, "deflate")
        self.assertNoDevice("lp-gz3")

    def test_gzip_members(self):
        # Concatenated gzip members (cat a.gz b.gz) are one valid body: every member's lines
        # are stored, not only the last one's (gunzip once wrote each member over the last).
        import gzip
        path = os.path.join(self.d.tmp, "members.gz")
        members = [gzip.compress(("m,device=lp-gzm v=%d %d\n" % (i, 1000 * (i + 1))).encode())
                   for i in range(3)]
        vt.write_file(path, b"".join(members), "wb")
        r = self.d.curl("POST", "/write?precision=ms", "-H", "Content-Encoding: gzip",
                        "--data-binary", "@" + path)
        self.ok(r)
        self.assertPoints(self.d.readings("lp-gzm"),
                          [(1000 * (i + 1), {"v": float(i)}) for i in range(3)])
        # A valid member followed by bytes that are not gzip: 400, nothing stored.
        vt.write_file(path, members[0] + b"not gzip", "wb")
        r = self.d.curl("POST", "/write?precision=ms", "-H", "Content-Encoding: gzip",
                        "--data-binary", "@" + path)
        self.assertJsonError(r, 400, "gzip")

    def test_partial_write(self):
        body = ("m,device=lp-part a=1 1000\n"
                "m,device=lp-part a= 2000\n"
                "m,device=lp-part a=3 3000\n"
                "m,device=lp-part 4000\n"
                "m,device=lp-part a=5 five\n"
                "m,device=lp-part a=\"s\" ,b=1 6000\n"
                "m,device=lp-part a=7 7000\n")
        r = self.d.write_lp(body, precision="ms")
        msg = self.assertJsonError(r, 400, "line 2")
        self.assertIn("partial write", msg)
        self.assertIn("dropped=4", msg)
        self.assertPoints(self.d.readings("lp-part"),
                          [(1000, {"a": 1.0}), (3000, {"a": 3.0}), (7000, {"a": 7.0})])
        # Every line bad: nothing was written, so, as InfluxDB, no "partial write", only the
        # parse error; the first bad line's number stays, and the count when there are more.
        r = self.d.write_lp("m,device=lp-bad a=nan 1\n# c\n\nm,device=lp-bad a=inf 2\n"
                            "m,device=lp-bad a=1x 3\n", precision="ms")
        self.assertEqual(self.assertJsonError(r, 400),
                         "unable to parse 'm,device=lp-bad a=nan 1': invalid number (line 1); "
                         "dropped=3")
        r = self.d.write_lp("\nm,device=lp-bad a=1 1 extra\n", precision="ms")
        self.assertEqual(self.assertJsonError(r, 400),
                         "unable to parse 'm,device=lp-bad a=1 1 extra': bad timestamp (line 2)")
        # A good line of string fields only stores nothing, yet makes the write partial.
        r = self.d.write_lp("m,device=lp-bad s=\"x\" 1\nm,device=lp-bad a= 2\n",
                            precision="ms")
        self.assertEqual(self.assertJsonError(r, 400),
                         "partial write: unable to parse 'm,device=lp-bad a= 2': "
                         "missing field value (line 2); dropped=1")
        r = self.d.write_lp("m,device=lp-bad a=1,a=2 x\n", precision="ms")
        self.assertJsonError(r, 400)
        self.assertNoDevice("lp-bad")

    def test_overwrite(self):
        self.ok(self.d.write_lp("m,device=lp-ow a=1,b=2 1000\n", precision="ms"))
        self.ok(self.d.write_lp("m,device=lp-ow a=10 1000\n", precision="ms"))
        self.ok(self.d.write_lp("m,device=lp-ow a=10 1000000\n", precision="u"))
        self.assertPoints(self.d.readings("lp-ow"), [(1000, {"a": 10.0, "b": 2.0})])
        self.assertEqual(self.d.device("lp-ow")["points"], 1)

    def test_empty_body(self):
        self.ok(self.d.write_lp("", precision="ms"))
        self.ok(self.d.write_lp("# nothing but a comment\n\n", precision="ms"))

    def test_ping(self):
        r = self.d.curl("GET", "/ping")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.assertIn("x-influxdb-version", r.headers)
        r = self.d.curl("HEAD", "/ping")  # curl -I: the headers are the whole output
        self.assertEqual(r.status, 204, r)
        self.assertIn("x-influxdb-version", r.headers)
        st, hdrs, body = vt.http_request("HEAD", self.d.url("/ping"))
        self.assertEqual((st, body), (204, b""))

    def test_query(self):
        r = self.d.curl("POST", "/query?q=CREATE+DATABASE+x")
        self.assertEqual((r.status, r.body.strip()), (200, CREATED_BYTES), r)
        r = self.d.curl("POST", "/query", "--data-urlencode", "q=CREATE DATABASE \"my db\"")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), CREATED)
        r = self.d.curl("GET", "/query?q=create%20database%20y")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), CREATED)
        self.assertJsonError(self.d.curl("POST", "/query"), 400, "q")
        self.assertJsonError(self.d.curl("POST", "/query", "--data-urlencode",
                                         "q=DROP DATABASE cpu"), 400,
                             "CREATE DATABASE, SHOW DATABASES and SHOW RETENTION POLICIES")


class ErrorHeader(InfluxdPair):
    """influxd 1.x sends each /write and /query error's message in an X-Influxdb-Error header
    too (its httpError; clients such as influxdb-java and aioinflux read it, and InfluxData's
    v2 clients when the body is empty): at most 1,024 bytes, a newline as a space. vigild sends
    its own message there, as its body's "error" says it, beside a real influxd 1.6.7 answering
    the same requests; none where influxd sends none (a statement's error in a 200)."""

    @staticmethod
    def ask(port, method, path, body=None):
        """(status, X-Influxdb-Error or None, body) of one request to the server on port."""
        status, headers, data = vt.http_request(method, "http://127.0.0.1:%d%s" % (port, path),
                                                body)
        return status, headers.get("x-influxdb-error"), data

    def both_refuse(self, method, path, body=None):
        """The (status, header, body) of influxd and of vigild; asserts that both refuse the
        request with the header carrying the body's message (vigild: cut, newlines as spaces,
        as influxd cuts and its server writes it). Not InfluxdPair.both, which asks a query."""
        answers = [self.ask(port, method, path, body)
                   for port in (self.influxd.port, self.d.http_port)]
        for status, header, data in answers:
            self.assertGreaterEqual(status, 400, answers)
            self.assertIsNotNone(header, answers)
            want = json.loads(data)["error"].replace("\n", " ")[:1024]
            self.assertEqual(header, want, answers)
        return answers

    def test_query_errors(self):
        # A parse error: the same message from both, word for word (test_influx_errors.py).
        (_, ih, _), (_, vh, _) = self.both_refuse("GET",
                                                  "/query?q=SHOW+DATABASES+CREATE+DATABASE+x")
        self.assertEqual(vh, ih)
        self.assertEqual(vh, "error parsing query: found CREATE, expected ; at line 1, char 16")
        self.both_refuse("GET", "/query")  # no q
        # A statement's error is in the 200's body, in neither server's header.
        for port in (self.influxd.port, self.d.http_port):
            status, header, data = self.ask(port, "GET", "/query?db=nope&q=SHOW+MEASUREMENTS")
            self.assertEqual((status, header), (200, None), data)

    def test_method_not_allowed(self):
        # influxd's router answers a method a route lacks (405, plain text) without the header:
        # vigild's JSON 405 carries none either.
        for method, path in (("GET", "/write?db=g"), ("PUT", "/query?q=SHOW+DATABASES")):
            for port in (self.influxd.port, self.d.http_port):
                status, header, data = self.ask(port, method, path)
                self.assertEqual((status, header), (405, None), (port, data))

    def test_write_errors(self):
        self.both_refuse("POST", "/write?db=g", "m,device=hdr-1 v= 1\n")
        # Several bad lines, one long: influxd's message, one line per bad line, is over 1,024
        # bytes (vigild's names the first bad line, shortened; its cut: test_daemon_api.c).
        (_, ih, idata), _ = self.both_refuse(
            "POST", "/write?db=g", "m,device=hdr-2 v=1\nbad\n%s\nq\n" % ("x" * 2000))
        self.assertEqual(len(ih), 1024, idata)
        self.assertIn("\n", json.loads(idata)["error"])


if __name__ == "__main__":
    vt.main()

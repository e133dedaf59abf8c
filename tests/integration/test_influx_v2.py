#!/usr/bin/python3
"""vigild integration: InfluxDB 2's write API, POST /api/v2/write, with curl (precisions, gzip,
partial writes, an all-bad body, its parameters and their errors, the limits, tokens: every error
in v2's form {"code": ..., "message": ...} with the code in X-Platform-Error-Code, on other
/api/v2/ paths too), GET /health (open, its
body and order, CORS), and with InfluxData's own JavaScript client (@influxdata/influxdb-client
1.35.0, installed by tools/install-deps; integration/influx_v2_client.js). The v1 /write:
test_influx_write.py."""

import gzip
import http.client
import json
import os
import shutil
import subprocess
import sys
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import own_daemon, show_databases  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_JS = os.path.join(HERE, "influx_v2_client.js")
# Where tools/install-deps puts the client (VIGIL_NODE_DIR overrides it, as there).
NODE_DIR = os.environ.get("VIGIL_NODE_DIR", "/usr/local/lib/vigil-node")
NODE_MODULES = os.path.join(NODE_DIR, "node_modules")

READ = "r3ad-t0ken-v2-AAAAAAAAAAAAAAAA"
WRITE = "wr1te-t0ken-v2-BBBBBBBBBBBBBBBB"
TOKENS = "read %s\nwrite %s\n" % (READ, WRITE)
# tests/fault/failmaint.c (CTest sets VIGIL_FAILMAINT for it_influx_v2): fails the store's
# writes while a flag file exists, for a 5xx the client retries.
FAILMAINT = os.environ.get("VIGIL_FAILMAINT", "")
# tests/fault/failalloc.c (CTest sets VIGIL_FAILALLOC for it_influx_v2): fails large allocations
# on chosen threads while a flag file exists (BodyOutOfMemory: the body's buffer).
FAILALLOC = os.environ.get("VIGIL_FAILALLOC", "")


def sanitized():
    """Whether vigild is a sanitizer build: no failalloc.c (ASan owns malloc), and failmaint.c
    only under ASan, not TSan (vt.preload puts ASan's runtime first)."""
    with open(vt.VIGILD, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


def v2_path(bucket="b", org="o", precision=None, **more):
    q = {}
    if bucket is not None:
        q["bucket"] = bucket
    if org is not None:
        q["org"] = org
    if precision is not None:
        q["precision"] = precision
    q.update(more)
    return "/api/v2/write?" + urllib.parse.urlencode(q)


def write_v2(d, body, path=None, headers=(), gz=False, **params):
    """POSTs body to /api/v2/write with curl; returns the CurlResult."""
    args = ["--data-binary", "@-"]
    data = body.encode() if isinstance(body, str) else body
    if gz:
        data = gzip.compress(data)
        args += ["-H", "Content-Encoding: gzip"]
    for h in headers:
        args += ["-H", h]
    return d.curl("POST", path or v2_path(**params), *args, stdin=data)


def run_client(tc, job):
    """Runs influx_v2_client.js on job against tc.d; returns its JSON result. Fails (never
    skips) when node or the client is missing."""
    node = shutil.which("node")
    tc.assertIsNotNone(node, "node is missing: run tools/install-deps")
    tc.assertTrue(os.path.isdir(os.path.join(NODE_MODULES, "@influxdata", "influxdb-client")),
                  "@influxdata/influxdb-client is missing from %s: run tools/install-deps"
                  % NODE_MODULES)
    job = dict(job, url=tc.d.url(""))
    env = dict(os.environ, NODE_PATH=NODE_MODULES)
    p = subprocess.run([node, CLIENT_JS, json.dumps(job)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=60)
    tc.assertEqual(p.returncode, 0, p.stderr.decode())
    return json.loads(p.stdout.decode().strip().splitlines()[-1])


class V2Assertions:

    def assertV2Error(self, res, status, code, contains=()):
        """Asserts status, InfluxDB 2's error body {"code": code, "message": "..."} (holding
        each of contains) and its X-Platform-Error-Code header, the same code; returns the
        message."""
        self.assertEqual(res.status, status, "want %d, got %r" % (status, res))
        self.assertTrue(res.headers.get("content-type", "").startswith("application/json"),
                        res.headers)
        self.assertEqual(res.headers.get("x-platform-error-code"), code, res.headers)
        self.assertNotIn("x-influxdb-error", res.headers)
        doc = res.json()
        self.assertEqual(sorted(doc), ["code", "message"], res.body)
        self.assertEqual(doc["code"], code, res.body)
        self.assertTrue(doc["message"], res.body)
        for c in [contains] if isinstance(contains, str) else contains:
            self.assertIn(c, doc["message"], res.body)
        return doc["message"]

    def ok(self, res):
        self.assertEqual(res.status, 204, res)
        self.assertEqual(res.body, b"")


class WriteV2(V2Assertions, vt.DaemonTestCase):

    def test_precisions(self):
        # Whole seconds, so that each of v2's units can say them; none: ns, v2's default.
        cases = [(None, 1000000), ("ns", 1000000), ("us", 1000), ("ms", 1), ("s", None)]
        for i, (prec, per_ms) in enumerate(cases):
            dev = "v2-prec-%s" % (prec or "default")
            ts_ms = 1700000000000 + 1000 * i
            ts = ts_ms * per_ms if per_ms else ts_ms // 1000
            self.ok(write_v2(self.d, "m,device=%s v=%d.5 %d\n" % (dev, i, ts), precision=prec))
            self.assertPoints(self.d.readings(dev), [(ts_ms, {"v": i + 0.5})])

    def test_v1_precisions_refused(self):
        for prec in ("n", "u", "m", "h", "S", "nanoseconds"):
            res = write_v2(self.d, "m,device=v2-badprec v=1\n", precision=prec)
            self.assertV2Error(res, 400, "invalid", ["precision", "'%s'" % prec,
                                                      "ns, us, ms, and s"])
        self.assertNoDevice("v2-badprec")

    def test_gzip(self):
        body = "".join("m,device=v2-gz a=%d,b=%d %d\n" % (i, -i, 1000 + i) for i in range(300))
        self.ok(write_v2(self.d, body, gz=True, precision="ms"))
        self.assertPoints(self.d.readings("v2-gz"),
                          [(1000 + i, {"a": float(i), "b": float(-i)}) for i in range(300)])

    def test_partial_write(self):
        body = ("m,device=v2-part v=1 1000\n"
                "this is not line protocol\n"
                "m,device=v2-part v=3 3000\n"
                "m,device=v2-part v= 4000\n")
        res = write_v2(self.d, body, precision="ms")
        msg = self.assertV2Error(res, 400, "invalid",
                                 ["partial write", "unable to parse 'this is not line protocol'",
                                  "(line 2)", "dropped=2"])
        self.assertTrue(msg.startswith("partial write: "), msg)
        self.assertPoints(self.d.readings("v2-part"), [(1000, {"v": 1.0}), (3000, {"v": 3.0})])

    def test_all_bad(self):
        res = write_v2(self.d, "m,device=v2-allbad v=\nnope\n", precision="ms")
        msg = self.assertV2Error(res, 400, "invalid", ["unable to parse", "(line 1)",
                                                       "dropped=2"])
        self.assertNotIn("partial write", msg)
        self.assertNoDevice("v2-allbad")

    def test_bucket_and_org_required(self):
        line = "m,device=v2-params v=1 1000\n"
        self.assertV2Error(write_v2(self.d, line, bucket=None, precision="ms"), 404,
                           "not found", ["bucket not found", "'bucket'"])
        self.assertV2Error(write_v2(self.d, line, bucket="", precision="ms"), 404, "not found",
                           "bucket not found")
        self.assertV2Error(write_v2(self.d, line, org=None, precision="ms"), 400, "invalid",
                           ["orgID or org"])
        self.assertV2Error(write_v2(self.d, line, org="", precision="ms"), 400, "invalid",
                           ["orgID or org"])
        self.assertNoDevice("v2-params")
        # bucketID and orgID stand for them (vigild has no IDs: any value).
        self.ok(write_v2(self.d, line, bucket=None, org=None, precision="ms",
                         bucketID="0123456789abcdef", orgID="fedcba9876543210"))
        self.assertPoints(self.d.readings("v2-params"), [(1000, {"v": 1.0})])
        # Precision is asked first, as InfluxDB 2 does.
        self.assertV2Error(write_v2(self.d, line, bucket=None, org=None, precision="h"), 400,
                           "invalid", "precision")

    def test_bucket_is_a_database(self):
        self.ok(write_v2(self.d, "m,device=v2-db v=1 1000\n", bucket="v2bucket", precision="ms"))
        self.ok(write_v2(self.d, "m,device=v2-db v=2 2000\n", bucket="v2rpdb/autogen",
                         precision="ms"))
        names = show_databases(self)
        self.assertIn("v2bucket", names)
        self.assertIn("v2rpdb", names)
        self.assertNotIn("v2rpdb/autogen", names)
        # A refused write uses no bucket.
        write_v2(self.d, "garbage\n", bucket="v2never", precision="ms")
        self.assertNotIn("v2never", show_databases(self))

    def test_other_errors_in_v2_form(self):
        # InfluxDB 2 has no code for 415: "invalid", the request is wrong as sent.
        res = write_v2(self.d, "m,device=v2-enc v=1\n", headers=["Content-Encoding: br"])
        self.assertV2Error(res, 415, "invalid", "Content-Encoding")
        res = write_v2(self.d, "not gzip at all", headers=["Content-Encoding: gzip"])
        self.assertV2Error(res, 400, "invalid", "gzip")
        res = self.d.curl("GET", v2_path())
        self.assertV2Error(res, 405, "method not allowed", "POST")
        self.assertEqual(res.headers.get("allow"), "POST, OPTIONS")
        res = self.d.curl("OPTIONS", v2_path())
        self.assertEqual(res.status, 204, res)
        self.assertEqual(res.headers.get("allow"), "POST, OPTIONS")
        # A path of InfluxDB 2's API vigild does not have: its 404, in its form.
        self.assertV2Error(self.d.curl("POST", "/api/v2/query?org=o"), 404, "not found",
                           "no such endpoint: POST /api/v2/query")
        # Leading slashes are skipped as the routes skip them ("//api/v2/write" is the write).
        self.assertV2Error(self.d.curl("GET", "//api/v2/buckets"), 404, "not found",
                           "no such endpoint: GET //api/v2/buckets")
        self.assertJsonError(self.d.curl("GET", "/api/v2x"), 404)
        # v1's routes keep v1's form, without v2's header: /write's errors have influxd 1.x's
        # X-Influxdb-Error (test_influx_write.py), but for a 405 as influxd's, vigil's own
        # routes neither.
        res = self.d.curl("GET", "/write?db=x")
        self.assertJsonError(res, 405)
        self.assertNotIn("x-platform-error-code", res.headers)
        self.assertNotIn("x-influxdb-error", res.headers)
        res = self.d.curl("POST", "/write?db=x", "--data-binary", "m,device=v1-bad v=\n")
        self.assertEqual(res.headers.get("x-influxdb-error"), self.assertJsonError(res, 400))
        self.assertNotIn("x-platform-error-code", res.headers)
        res = self.d.curl("GET", "/api/v1/write")
        self.assertJsonError(res, 404)
        self.assertNotIn("x-platform-error-code", res.headers)
        self.assertNotIn("x-influxdb-error", res.headers)
        self.assertNoDevice("v2-enc")

    def test_metrics(self):
        def counts():
            text = self.d.metrics()
            series = 'vigil_http_requests_total{route="write_v2",code="%d"}'
            return (int(vt.metric_in(text, series % 204, need=True)),
                    int(vt.metric_in(text, series % 400) or 0),
                    int(vt.metric_in(text, 'vigil_ingest_readings_total{proto="lp"}', need=True)),
                    int(vt.metric_in(text, 'vigil_ingest_rejected_total{proto="lp"}', need=True)))
        before = counts()
        self.ok(write_v2(self.d, "m,device=v2-met a=1,b=2 1000\n", precision="ms"))
        write_v2(self.d, "m,device=v2-met c=3 2000\nbad\n", precision="ms")
        after = counts()
        self.assertEqual(after[0] - before[0], 1)
        self.assertEqual(after[1] - before[1], 1)
        self.assertEqual(after[2] - before[2], 3)
        self.assertEqual(after[3] - before[3], 1)

    def test_js_client(self):
        points = [{"measurement": "pump", "tags": {"site": "north"},
                   "fields": {"temp": 20.5 + i, "rpm": 1000.0 + i}, "ts": 1700000000000 + i}
                  for i in range(5)]
        res = run_client(self, {"org": "o", "bucket": "jsbucket", "precision": "ms",
                                "batchSize": 2, "defaultTags": {"device": "v2-js-ms"},
                                "points": points})
        self.assertEqual(res, {"ok": True, "attempts": 0})
        self.assertPoints(self.d.readings("v2-js-ms"),
                          [(1700000000000 + i, {"temp": 20.5 + i, "rpm": 1000.0 + i})
                           for i in range(5)])
        self.assertIn("jsbucket", show_databases(self))
        # ns, the client's default, with the device as a point's own tag; 400 points in one
        # batch exceed the client's gzip threshold (1,000 bytes): it sends them gzipped.
        points = [{"measurement": "m", "tags": {"device": "v2-js-ns"}, "fields": {"v": i * 0.25},
                   "ts": str((1700000001000 + i) * 1000000 + 999999)}  # exact: a JSON string
                  for i in range(400)]
        res = run_client(self, {"org": "o", "bucket": "jsbucket", "precision": "ns",
                                "batchSize": 1000, "points": points})
        self.assertEqual(res, {"ok": True, "attempts": 0})
        self.assertPoints(self.d.readings("v2-js-ns"),
                          [(1700000001000 + i, {"v": i * 0.25}) for i in range(400)])

    def test_js_client_bad_line(self):
        # A 400 is an error the client reports and does not retry (it retries 429 and 5xx).
        res = run_client(self, {"org": "o", "bucket": "b", "precision": "ms", "batchSize": 10,
                                "points": [{"measurement": "m", "tags": {"device": "v2-js-bad"},
                                            "fields": {"v": 1.0}, "ts": 1000}],
                                "records": ["m,device=v2-js-bad v= 2000"]})
        self.assertFalse(res["ok"], res)
        self.assertEqual(res.get("statusCode"), 400, res)
        self.assertEqual(res.get("code"), "invalid", res)
        self.assertEqual(res.get("platformCode"), "invalid", res)  # X-Platform-Error-Code
        self.assertIn("partial write", res["message"])
        self.assertIn("(line 2)", res["message"])
        self.assertEqual(res["attempts"], 1, "a 400 was retried: %r" % res)
        self.assertPoints(self.d.readings("v2-js-bad"), [(1000, {"v": 1.0})])


class RetryV2(V2Assertions, unittest.TestCase):
    """The client retries a 5xx (the store's write failing: tests/fault/failmaint.c), and its
    retry stores the point once the store writes again."""

    def test_js_client_retries_5xx(self):
        if not FAILMAINT and sanitized():
            self.skipTest("a TSan build: no tests/fault/failmaint.c to fail the store's "
                          "writes with (CTest builds it without TSan)")
        self.assertTrue(os.path.exists(FAILMAINT),
                        "VIGIL_FAILMAINT (tests/fault/failmaint.c's library) is not set: run "
                        "this through ctest -R it_influx_v2")
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        vt.write_file_atomic(self.flag, "fail")
        own_daemon(self, self.retries, prefix=[
            "env", "LD_PRELOAD=" + vt.preload(FAILMAINT), "VIGIL_FAILMAINT_FLAG=" + self.flag,
            "VIGIL_FAILMAINT_SQL=INSERT INTO readings_log("])

    def retries(self):
        job = {"org": "o", "bucket": "b", "precision": "ms", "maxRetries": 2,
               "waitRetriesMs": 20000,
               "points": [{"measurement": "m", "tags": {"device": "v2-js-retry"},
                           "fields": {"v": 3.0}, "ts": 7000}]}
        res = run_client(self, job)
        self.assertFalse(res["ok"], res)
        self.assertIn(res.get("statusCode"), (500, 503), res)
        self.assertIn(res.get("code"), ("internal error", "unavailable"), res)
        # The client reads the code from X-Platform-Error-Code too, and a 503's Retry-After.
        self.assertEqual(res.get("platformCode"), res.get("code"), res)
        self.assertEqual(res.get("retryAfter"), 1 if res["statusCode"] == 503 else 0, res)
        self.assertEqual((res["attempts"], res["storedLater"]), (3, 0),
                         "a 5xx not retried twice: %r" % res)
        self.assertEqual(self.d.get("/v1/devices/v2-js-retry")[0], 404)
        os.unlink(self.flag)
        # The store writes again (after its reload): the write succeeds, at once or by the
        # client's retries of the 503s meanwhile.
        res = run_client(self, dict(job, maxRetries=20, retryDelay=500))
        self.assertTrue(res["ok"] or res["storedLater"] == 1, res)
        self.assertEqual([(p["ts"], p["values"]) for p in self.d.readings("v2-js-retry")],
                         [(7000, {"v": 3.0})])


@unittest.skipUnless(os.path.exists(FAILALLOC), "VIGIL_FAILALLOC (tests/fault/failalloc.c's "
                     "library, set by CTest) not found")
class BodyOutOfMemory(V2Assertions, unittest.TestCase):
    """A body vigild has no memory to keep (failalloc.c: the HTTP workers' allocations of 16 KiB
    and more fail while the flag file exists; the body buffer's first is 16 KiB + 1) is a 503
    with Retry-After, nothing stored: the client sends it again later. Not a 413, which tells
    it never to. In v2's form on /api/v2/write, in vigil's on /write."""

    def setUp(self):
        if sanitized():
            self.skipTest("a sanitizer build owns malloc: no LD_PRELOAD allocator under it")
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        self.d = vt.Vigild(prefix=[
            "env", "LD_PRELOAD=" + FAILALLOC, "VIGIL_FAILALLOC_FLAG=" + self.flag,
            "VIGIL_FAILALLOC_MIN=16385", "VIGIL_FAILALLOC_THREAD=MHD-worker"])
        self.d.start()
        self.addCleanup(self.d.stop)

    def post(self, conn, path, device):
        body = "m,device=%s v=1 1000\n#%s\n" % (device, "x" * 40000)
        conn.request("POST", path, body=body)
        r = conn.getresponse()
        self.headers = r.headers
        return r.status, r.getheader("Retry-After"), r.read()

    def test_503_retry_later(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=10)
        self.addCleanup(conn.close)
        conn.request("GET", "/healthz")  # the connection's own memory, before the flag
        conn.getresponse().read()
        vt.write_file_atomic(self.flag, "16385")
        st, ra, data = self.post(conn, v2_path(precision="ms"), "v2-oom")
        self.assertEqual((st, ra), (503, "5"), data)
        self.assertEqual(json.loads(data), {
            "code": "unavailable",
            "message": "out of memory reading the request body: nothing stored, retry later"})
        self.assertEqual(self.headers.get("X-Platform-Error-Code"), "unavailable")
        st, ra, data = self.post(conn, "/write?db=x&precision=ms", "v1-oom")
        self.assertEqual((st, ra), (503, "5"), data)
        self.assertEqual(json.loads(data), {
            "error": "out of memory reading the request body: nothing stored, retry later"})
        self.assertEqual(self.headers.get("X-Influxdb-Error"),
                         "out of memory reading the request body: nothing stored, retry later")
        self.assertIsNone(self.headers.get("X-Platform-Error-Code"))
        os.unlink(self.flag)
        self.assertEqual(self.d.get("/v1/devices/v2-oom")[0], 404)
        self.assertEqual(self.d.get("/v1/devices/v1-oom")[0], 404)
        st, _, data = self.post(conn, v2_path(precision="ms"), "v2-oom")
        self.assertEqual(st, 204, data)
        self.assertEqual(len(self.d.readings("v2-oom")), 1)


class LimitsV2(V2Assertions, vt.DaemonTestCase):
    CONFIG = "[http]\nmax_body_bytes = 2048\nmax_batch = 3\n"

    def test_body_too_large(self):
        body = "".join("m,device=v2-big v=%d %d\n" % (i, 1000 + i) for i in range(3))
        body += "#" + "x" * 2100 + "\n"
        res = write_v2(self.d, body, precision="ms")
        self.assertV2Error(res, 413, "request too large", "2048")
        self.assertNoDevice("v2-big")

    def test_gzip_inflates_too_large(self):
        res = write_v2(self.d, "#" + "y" * 100000 + "\n", gz=True, precision="ms")
        self.assertV2Error(res, 413, "request too large", "gzip")

    def test_chunked_body_too_large(self):
        # No Content-Length: refused once the body passes the limit, not on its headers.
        body = "m,device=v2-chunk v=1 1000\n" + "#" + "z" * 3000 + "\n"
        res = write_v2(self.d, body, precision="ms", headers=["Transfer-Encoding: chunked"])
        self.assertV2Error(res, 413, "request too large",
                           "request body exceeds the limit of 2048 bytes")
        self.assertNoDevice("v2-chunk")

    def test_too_many_lines(self):
        body = "".join("m,device=v2-many v=%d %d\n" % (i, 1000 + i) for i in range(4))
        self.assertV2Error(write_v2(self.d, body, precision="ms"), 413, "request too large",
                           ["more than 3 lines"])
        self.assertNoDevice("v2-many")
        self.ok(write_v2(self.d, "".join(body.splitlines(True)[:3]), precision="ms"))
        self.assertEqual(len(self.d.readings("v2-many")), 3)


class WithTokens:
    """A daemon test case whose vigild has TOKENS on (--auth-file)."""

    @classmethod
    def setUpClass(cls):
        path = os.path.join(vt.mkdtemp(), "tokens")
        vt.write_file(path, TOKENS)
        os.chmod(path, 0o600)
        cls.EXTRA_ARGS = ("--auth-file", path)
        super().setUpClass()


class TokensV2(WithTokens, V2Assertions, vt.DaemonTestCase):

    def test_curl_tokens(self):
        line = "m,device=v2-tok v=1 1000\n"
        # InfluxDB 2's words and scheme: its clients send "Authorization: Token TOKEN".
        res = write_v2(self.d, line, precision="ms")
        self.assertEqual(self.assertV2Error(res, 401, "unauthorized"),
                         "unauthorized access: send 'Authorization: Token TOKEN'")
        self.assertEqual(res.headers.get("www-authenticate"), 'Token realm="vigil"')
        res = write_v2(self.d, line, precision="ms", headers=["Authorization: Token not-a-token"])
        self.assertEqual(self.assertV2Error(res, 401, "unauthorized"),
                         "unauthorized access: invalid token")
        self.assertEqual(res.headers.get("www-authenticate"), 'Token realm="vigil"')
        # A path under /api/v2/ vigild does not have: the token first, in v2's form.
        self.assertV2Error(self.d.curl("GET", "/api/v2/buckets"), 401, "unauthorized",
                           "send 'Authorization: Token TOKEN'")
        self.assertV2Error(self.d.curl("GET", "/api/v2/buckets", "-H",
                                       "Authorization: Token " + READ),
                           404, "not found", "no such endpoint: GET /api/v2/buckets")
        # v1's routes as before: Bearer named, Basic offered where InfluxDB 1 takes it.
        res = self.d.curl("POST", "/write?db=x", "--data-binary", line)
        self.assertEqual(self.assertJsonError(res, 401),
                         "authentication required: send 'Authorization: Bearer TOKEN', or the "
                         "token as the password (influx shell: -username any -password TOKEN; "
                         "Telegraf: password = \"TOKEN\")")
        self.assertEqual(res.headers.get("www-authenticate"),
                         'Bearer realm="vigil", Basic realm="vigil"')
        # influxd 1.6.7 (auth-enabled, checked by hand) sends no X-Influxdb-Error on a 401, the
        # challenge instead, and the message on a 403: so does vigild, and no v2 header.
        self.assertNotIn("x-influxdb-error", res.headers)
        self.assertNotIn("x-platform-error-code", res.headers)
        res = self.d.curl("POST", "/write?db=x", "--data-binary", line,
                          "-H", "Authorization: Bearer " + READ)
        self.assertEqual(res.headers.get("x-influxdb-error"), self.assertJsonError(res, 403))
        res = self.d.curl("GET", "/v1/devices")
        self.assertEqual(self.assertJsonError(res, 401),
                         "authentication required: send 'Authorization: Bearer TOKEN'")
        self.assertEqual(res.headers.get("www-authenticate"), 'Bearer realm="vigil"')
        self.assertV2Error(write_v2(self.d, line, precision="ms",
                                    headers=["Authorization: Token " + READ]),
                           403, "forbidden", "needs 'write'")
        self.ok(write_v2(self.d, line, precision="ms",
                         headers=["Authorization: Token " + WRITE]))
        st, _, body = self.d.get("/v1/devices/v2-tok/readings",
                                 headers={"Authorization": "Bearer " + READ})
        self.assertEqual(st, 200, body)
        self.assertEqual([(p["ts"], p["values"]) for p in json.loads(body)["points"]],
                         [(1000, {"v": 1.0})])

    def test_overlong_p_then_u(self):
        # An overlong p is an unknown token, not a 400 (auth.c), so the u after it is tried.
        # The write succeeds: its 204 carries no error header left from the dropped 400.
        res = self.d.curl("POST", "/write?db=x&precision=ms&p=%s&u=%s" % ("z" * 1100, WRITE),
                          "--data-binary", "m,device=v1-longp v=1 1000\n")
        self.assertEqual(res.status, 204, res)
        self.assertNotIn("x-influxdb-error", res.headers)
        self.assertNotIn("content-type", res.headers)

    def test_js_client_tokens(self):
        job = {"org": "o", "bucket": "b", "precision": "ms",
               "points": [{"measurement": "m", "tags": {"device": "v2-js-tok"},
                           "fields": {"v": 7.0}, "ts": 5000}]}
        res = run_client(self, dict(job, token=READ))
        self.assertFalse(res["ok"], res)
        self.assertEqual((res.get("statusCode"), res.get("code"), res["attempts"]),
                         (403, "forbidden", 1), res)
        res = run_client(self, dict(job, token="wrong"))
        self.assertEqual((res.get("statusCode"), res.get("code"), res["attempts"]),
                         (401, "unauthorized", 1), res)
        self.assertEqual(res.get("message"), "unauthorized access: invalid token", res)
        res = run_client(self, job)  # no token: the client sends no Authorization
        self.assertEqual((res.get("statusCode"), res.get("code"), res.get("message")),
                         (401, "unauthorized",
                          "unauthorized access: send 'Authorization: Token TOKEN'"), res)
        res = run_client(self, dict(job, token=WRITE))
        self.assertEqual(res, {"ok": True, "attempts": 0})
        st, _, body = self.d.get("/v1/devices/v2-js-tok/readings",
                                 headers={"Authorization": "Bearer " + READ})
        self.assertEqual(st, 200, body)
        self.assertEqual([(p["ts"], p["values"]) for p in json.loads(body)["points"]],
                         [(5000, {"v": 7.0})])


DASH = "https://dash.example.com"


class HealthV2(WithTokens, V2Assertions, vt.DaemonTestCase):
    """GET /health as InfluxDB 2 answers it, open (no token) while tokens are on, with CORS as
    the other GET routes, with its storage check in InfluxDB 2's check form (name, status).
    Its 503 "fail" is tested in test_health.py (the store's commits failing, a stalled writer)
    and tests/test_daemon_api.c. influxd 1.6.7 (Debian's) has no /health: it answers 404 "404
    page not found"."""
    CONFIG = "[http]\ncors_origins = %s\n" % DASH

    def test_pass(self):
        res = self.d.curl("GET", "/health", "-H", "Origin: " + DASH)
        self.assertEqual(res.status, 200, res)
        self.assertTrue(res.headers.get("content-type", "").startswith("application/json"))
        doc = json.loads(res.body, object_pairs_hook=lambda kv: kv)  # pairs: keeps the order
        self.assertEqual([k for k, _ in doc],
                         ["name", "message", "status", "checks", "version", "commit"], res.body)
        doc = dict(doc)
        version = self.d.curl("GET", "/healthz").json()["version"]
        self.assertEqual({k: v for k, v in doc.items() if k != "commit"},
                         {"name": "influxdb", "message": "ready for queries and writes",
                          "status": "pass", "version": version,
                          "checks": [[("name", "storage"), ("status", "pass")]]})
        self.assertTrue(doc["commit"], res.body)
        self.assertEqual(res.headers.get("access-control-allow-origin"), DASH)
        st, _, body = vt.http_request("HEAD", self.d.url("/health"))
        self.assertEqual((st, body), (200, b""))

    def test_methods_and_cors(self):
        res = self.d.curl("OPTIONS", "/health")
        self.assertEqual(res.status, 204, res)
        self.assertEqual(res.headers.get("allow"), "GET, HEAD, OPTIONS")
        res = self.d.curl("OPTIONS", "/health", "-H", "Origin: " + DASH,
                          "-H", "Access-Control-Request-Method: GET")
        self.assertEqual(res.status, 204, res)
        self.assertEqual(res.headers.get("access-control-allow-origin"), DASH)
        self.assertEqual(res.headers.get("access-control-allow-methods"), "GET, HEAD")
        # Its errors are InfluxDB 2's, as /api/v2/write's; /healthz keeps vigil's.
        res = self.d.curl("POST", "/health", "--data-binary", "x")
        self.assertV2Error(res, 405, "method not allowed", "GET, HEAD, OPTIONS")
        self.assertEqual(res.headers.get("allow"), "GET, HEAD, OPTIONS")
        self.assertJsonError(self.d.curl("POST", "/healthz", "--data-binary", "x"), 405)


if __name__ == "__main__":
    vt.main()

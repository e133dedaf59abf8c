"""What vigild's InfluxDB v1 compatibility tests share (test_influx.py, test_influx_names.py,
test_influx_errors.py, test_influx_write.py, test_influx_grafana.py, test_influx_grafana_fleet.py,
test_influxql.py, test_influxql_escape.py, test_influxql2.py, test_influxql3.py,
test_influxql_edge.py; not a test file itself): the influx CLI's path, influxd 1.6.7's answers
to a CREATE DATABASE and to SHOW RETENTION POLICIES (policies), the points both servers hold
(G_POINTS, from G_T; g_range),
InfluxdPair, a vigild beside a real influxd 1.6.7 (Debian's influxdb, on loopback) holding the same
points, to compare their answers byte for byte, and the database statements' helpers:
show_databases, influx_shell (the CLI's interactive shell) and own_daemon (a vigild of a test's
own). Plain functions, not TestCase methods: a TestCase class imported into a second test file runs
its tests there too."""

import http.client
import json
import os
import pty
import select
import shutil
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from ingest import Influxd  # noqa: E402


INFLUX = shutil.which("influx") or "/usr/bin/influx"

# influxd 1.6.7's answer to a CREATE DATABASE it ran (Debian's influxdb 1.6.7~rc0-1+b13, on
# 127.0.0.1, session 22), byte for byte; vigild answered {"results":[]} before.
CREATED_BYTES = b'{"results":[{"statement_id":0}]}'
CREATED = json.loads(CREATED_BYTES)


def policies(retention, shard):
    """InfluxDB 1.6.7's answer to SHOW RETENTION POLICIES ON a database it has (as its oracle
    gave it: tools/influx_compare.py's set-up), with autogen's duration and shard duration."""
    return {"results": [{"statement_id": 0, "series": [{
        "columns": ["name", "duration", "shardGroupDuration", "replicaN", "default"],
        "values": [["autogen", retention, shard, 1, True]]}]}]}


G_T = 1732780800000  # ms: 2024-11-28T08:00:00Z
# The same points go to both servers: "pump-7" as a measurement of its own (vigild: the device
# pump-7), and Telegraf's shape, measurement "pump" with a device tag (vigild: the devices pump-8
# and pump-9). Values are exact in binary halves, so means print alike whatever the summation.
G_POINTS = "\n".join(
    ["pump-7 temp=%d.5,vib=0.%d25 %d" % (70 + i, i + 1, G_T + i * 5000) for i in range(12)]
    + ["pump,device=pump-9 temp=71.5 %d" % G_T, "pump,device=pump-9 temp=72.5 %d" % (G_T + 5000),
       "pump,device=pump-8 temp=60.5 %d" % G_T,
       # Numbers as Go's encoding/json prints them (shortest digits, e-7 but e+21, no %f tail).
       "fl a=1e21,b=1e-7,c=123456789012345680000,d=0.000001,e=-0.0000001,f=1e20,g=5e-324,"
       "h=1.7976931348623157e308,i=-0,j=100 %d" % G_T,
       "fl a=0.1,b=0.2,c=0.3,k=-2.25e-5,l=9.999999999999999e20 %d" % (G_T + 1),
       "fl a=33.333333333333336 %d" % (G_T + 1500),
       "pump,device=pump-9 temp=73.5,vib=0.5 %d" % (G_T + 20000)])  # vib: pump-9's only


def g_range(a, b):
    return "time >= %dms and time <= %dms" % (G_T + a * 1000, G_T + b * 1000)


class InfluxdPair(vt.DaemonTestCase):
    """A vigild and a real influxd 1.6.7 (Debian's influxd, on loopback, stopped after) holding
    the same POINTS (database g, precision ms); INFLUXD_ONLY go to influxd alone (what vigild
    holds as its own measurements). assert_same and whole_and_chunked (with its checks ok and
    bad; test_iqshow.py's before session 50) compare their answers."""

    POINTS = ""
    INFLUXD_ONLY = ""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = vt.mkdtemp()
        cls.influxd = Influxd(cls.tmp)
        try:
            for port in (cls.d.http_port, cls.influxd.port):
                cls.post(port, "/query", "q=CREATE+DATABASE+g")
                for body in (cls.POINTS, cls.INFLUXD_ONLY if port == cls.influxd.port else ""):
                    if body:
                        status, res = cls.post(port, "/write?db=g&precision=ms", body)
                        assert status == 204, (port, status, res)
            cls.vigild_only()
        except BaseException:
            cls.influxd.stop()
            raise

    @classmethod
    def vigild_only(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        try:
            cls.influxd.stop()
            cls.influxd.log.close()
        finally:
            super().tearDownClass()

    @staticmethod
    def post(port, path, body):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    @staticmethod
    def query(port, q, epoch="ms", method="GET", params=None):
        """params: the bound parameters' JSON text, as the influx clients send it (None: no
        params parameter)."""
        bound, params = params, {"db": "g", "q": q}
        if epoch:
            params["epoch"] = epoch
        if bound is not None:
            params["params"] = bound
        enc = urllib.parse.urlencode(params)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        if method == "GET":
            c.request("GET", "/query?" + enc)
        else:  # Grafana's POST mode: the parameters in a form body
            c.request("POST", "/query", enc, {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        body = r.read().strip()
        c.close()
        return r.status, body

    def both(self, q, **kw):
        return self.query(self.influxd.port, q, **kw), self.query(self.d.http_port, q, **kw)

    def vigild(self, q, **kw):
        status, body = self.query(self.d.http_port, q, **kw)
        self.assertEqual(status, 200, (q, body))
        return json.loads(body)

    def assert_same(self, statements, **kw):
        for q in statements:
            want, got = self.both(q, **kw)
            if got != want:  # not assertEqual: its diff of two MB-long answers takes minutes
                at = next((i for i, (a, b) in enumerate(zip(got[1], want[1])) if a != b),
                          min(len(got[1]), len(want[1])))
                self.fail("%s\nvigild %d: ...%r\ninfluxd %d: ...%r" % (
                    q, got[0], got[1][max(0, at - 80):at + 120], want[0],
                    want[1][max(0, at - 80):at + 120]))

    def bad(self, want, chunked):
        """A whole_and_chunked check: influxd answered 400."""
        self.assertEqual(want[0], 400, want)

    def ok(self, want, chunked):
        """A whole_and_chunked check: influxd answered 200."""
        self.assertEqual(want[0], 200, want)

    def whole_and_chunked(self, qs, check, what):
        """Asks each query of qs of both servers, whole and with chunked=true; check(influxd's
        answer, chunked) asserts what influxd says; vigild's must be the same, byte for byte.
        Prints how many answers were influxd's."""
        failed = []
        for q in qs:
            for chunked in (False, True):
                with self.subTest(q=q, chunked=chunked):
                    got = [self.chunked(port, q) if chunked else self.query(port, q)
                           for port in (self.influxd.port, self.d.http_port)]
                    check(got[0], chunked)
                    if got[1] != got[0]:
                        failed.append(q)
                    self.assertEqual(got[1], got[0])
        print("\n%s: %d of %d as influxd" % (what, 2 * len(qs) - len(failed), 2 * len(qs)))

    @staticmethod
    def chunked(port, q):
        """/query's answer with chunked=true: a document per result."""
        enc = urllib.parse.urlencode({"db": "g", "q": q, "epoch": "ms", "chunked": "true"})
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/query?" + enc)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body


def show_databases(tc, q="SHOW DATABASES", method="POST"):
    """Asks q of tc.d (tc: a test whose d is a started vigild); asserts InfluxDB's form of the
    answer and returns the names it lists. Databases.show (test_influx.py) before influxsplit2."""
    get = ["-G"] if method == "GET" else []
    r = tc.d.curl(method, "/query", *get, "--data-urlencode", "q=" + q)
    tc.assertEqual(r.status, 200, r)
    doc = r.json()
    values = doc["results"][0]["series"][0].get("values")
    want = {"name": "databases", "columns": ["name"]}
    if values is not None:
        want["values"] = values
    tc.assertEqual(doc, {"results": [{"statement_id": 0, "series": [want]}]})
    tc.assertTrue(all(len(row) == 1 for row in values or []), values)
    return [row[0] for row in values or []]


def influx_shell(tc, *lines):
    """Types each line into the influx CLI's interactive shell on tc.d (tc: a test whose d is a
    started vigild; on a pseudo-terminal: with a pipe it reads all of stdin as one query), each
    after its prompt, then exit; returns what the shell printed. InfluxCli.shell
    (test_influx.py) before influxsplit2."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(INFLUX, [INFLUX, "-host", "127.0.0.1", "-port", str(tc.d.http_port)],
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
        tc.fail("the shell did not answer: %r" % out)

    try:
        read(True)
        for line in lines + ("exit",):
            os.write(fd, line.encode() + b"\r")
            read(line != "exit")
    finally:
        os.close(fd)
        os.waitpid(pid, 0)
    return out.decode("utf-8", "replace").replace("\r\n", "\n")


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

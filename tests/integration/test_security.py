#!/usr/bin/env python3
"""Security: HTTPS (http.tls_cert / http.tls_key) with a certificate made by openssl, CORS for
browser dashboards (http.cors_origins), and tokens on the stream socket ("auth TOKEN").

Every daemon runs on loopback with free ports and a temporary data directory (vigiltest.py);
the clients are curl and raw sockets."""

import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
import unittest
import urllib.parse

import vigiltest as vt
from vigiltest import Vigild, mkdtemp, write_file

READ = "r3ad-t0ken-AAAAAAAAAAAAAAAA"
WRITE = "wr1te-t0ken-BBBBBBBBBBBBBBBB"
ADMIN = "adm1n-t0ken-CCCCCCCCCCCCCCCC"
TOKENS = "read %s\nwrite %s\nadmin %s\n" % (READ, WRITE, ADMIN)


def token_file(text=TOKENS):
    path = os.path.join(mkdtemp(), "tokens")
    write_file(path, text)
    os.chmod(path, 0o600)
    return path


def openssl_cert(d, name="server", cn="localhost"):
    """A self-signed certificate for localhost and 127.0.0.1 and its key, in d."""
    cert, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=" + cn, "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if p.returncode != 0:
        raise AssertionError("openssl: %s" % p.stdout.decode())
    os.chmod(key, 0o600)
    return cert, key


def check_config(conf):
    p = subprocess.run([vt.VIGILD, "--config", conf, "--check-config"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60, text=True)
    return p.returncode, p.stdout


class TlsVigild(Vigild):
    """A Vigild serving HTTPS: its URLs are https and its helper requests trust cafile (and
    check that the certificate names 127.0.0.1 unless check_hostname is false: a certificate
    for another name, as README's, is reached at 127.0.0.1 too)."""

    def __init__(self, cafile, check_hostname=True, **kw):
        super().__init__(**kw)
        self.cafile = cafile
        self.check_hostname = check_hostname

    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.http_port, path)

    def _request(self, method, url, body=None, headers=None, timeout=30):
        u = urllib.parse.urlsplit(url)
        ctx = ssl.create_default_context(cafile=self.cafile)
        ctx.check_hostname = self.check_hostname
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=ctx)
        try:
            conn.request(method, u.path + ("?" + u.query if u.query else ""), body=body,
                         headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def get(self, path, headers=None):
        return self._request("GET", self.url(path), headers=headers)

    def curl(self, method, path, *args, stdin=None):
        return vt.curl(self.url(path), method, ("--cacert", self.cafile) + args, stdin=stdin)

    def start(self, *a, **kw):
        # Vigild.start probes /healthz with vigiltest.http_request (plain HTTP): for the time of
        # the start, that probe speaks HTTPS with our CA.
        saved = vt.http_request
        vt.http_request = self._request
        try:
            return super().start(*a, **kw)
        finally:
            vt.http_request = saved


class TestTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = mkdtemp()
        cls.cert, cls.key = openssl_cert(cls.tmp)
        cls.conf = write_file(os.path.join(cls.tmp, "vigild.conf"),
                              "[http]\ntls_cert = %s\ntls_key = %s\n" % (cls.cert, cls.key))
        cls.d = TlsVigild(cls.cert, config=cls.conf, extra_args=["--auth-file", token_file()])
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    def test_https_ingest_and_read_back(self):
        d = self.d
        r = d.curl("POST", "/v1/readings", "-H", "Authorization: Bearer " + WRITE,
                   "-H", "Content-Type: application/json", "--data-binary", "@-",
                   stdin='[{"device":"tls-1","ts":1000,"values":{"t":21.5}},'
                         '{"device":"tls-1","ts":2000,"values":{"t":-0.25}}]')
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"accepted": 2})
        r = d.curl("POST", "/write?db=x&precision=ms", "-u", "telegraf:" + WRITE,
                   "--data-binary", "@-", stdin="m,device=tls-1 t=22 3000\n")
        self.assertEqual(r.status, 204, r)
        r = d.curl("GET", "/v1/devices/tls-1/readings", "-H", "Authorization: Bearer " + READ)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([(p["ts"], p["values"]) for p in r.json()["points"]],
                         [(1000, {"t": 21.5}), (2000, {"t": -0.25}), (3000, {"t": 22})])
        # The token check runs over TLS as over plain HTTP.
        self.assertEqual(d.curl("GET", "/v1/devices").status, 401)
        # The log says the API speaks HTTPS.
        self.assertIn("HTTPS on 127.0.0.1:%d" % d.http_port, d.log())

    def test_plain_http_fails(self):
        port = self.d.http_port
        # curl speaking plain HTTP to the TLS port gets no HTTP answer (libmicrohttpd's GnuTLS
        # drops what is not a TLS record): curl fails, e.g. "Empty reply from server".
        p = subprocess.run(["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w",
                            "%{http_code}", "http://127.0.0.1:%d/healthz" % port],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertEqual(p.stdout.decode().strip(), "000")
        # A client that does not trust the certificate refuses it (curl exit 60).
        p = subprocess.run(["curl", "-sS", "--max-time", "10", "-o", "/dev/null",
                            "https://127.0.0.1:%d/healthz" % port],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 60, p.stderr)
        # Still serving.
        self.assertEqual(self.d.curl("GET", "/healthz").status, 200)

    def test_tls_versions(self):
        # The server offers TLS 1.2 and 1.3 only; curl limited to 1.3 and to 1.2 both work.
        for v in ("--tlsv1.3", "--tls-max"):
            args = [v] if v == "--tlsv1.3" else ["--tlsv1.2", "--tls-max", "1.2"]
            self.assertEqual(self.d.curl("GET", "/healthz", *args).status, 200, v)


class TestTlsGoneStreams(unittest.TestCase):
    """Explore (session 41): at http.max_event_streams, a new stream ends the streams whose
    client has gone (test_sse.py GoneAtTheLimit) over HTTPS too, where a client closing
    cleanly sends a TLS close_notify before its FIN: unread bytes that must not make it look
    alive."""

    def test_closed_tls_streams_free_their_places(self):
        tmp = mkdtemp()
        cert, key = openssl_cert(tmp)
        conf = write_file(os.path.join(tmp, "vigild.conf"),
                          "[http]\ntls_cert = %s\ntls_key = %s\nmax_event_streams = 2\n"
                          "events_keepalive_ms = 3600000\n" % (cert, key))
        d = TlsVigild(cert, config=conf)
        d.start()
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False

        def stream():
            """A stream's TLS socket and its status line (once the retry line came, or the
            answer ended)."""
            raw = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            deadline = time.monotonic() + 10
            while b"retry:" not in got and b"}" not in got and time.monotonic() < deadline:
                b = s.recv(4096)
                if not b:
                    break
                got += b
            return s, got.split(b"\r\n")[0]

        try:
            a, st_a = stream()
            b, st_b = stream()
            self.assertEqual((st_a, st_b), (b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"))
            c, st_c = stream()
            self.assertIn(b" 503 ", st_c)  # both places live
            c.close()
            for s in (a, b):  # close_notify (vigild does not answer it: no wait), then FIN
                s.settimeout(0.5)
                try:
                    s.unwrap()
                except OSError:
                    pass
                s.close()
            e, st_e = stream()
            self.assertEqual(st_e, b"HTTP/1.1 200 OK")  # the hour's keep-alive not waited for
            e.close()
            d.stop()
        finally:
            d.cleanup()


class TestTlsConfig(unittest.TestCase):
    """Bad certificate or key files stop the start, naming the setting and the file."""

    def conf(self, cert, key):
        return write_file(os.path.join(mkdtemp(), "vigild.conf"),
                          "[http]\ntls_cert = %s\ntls_key = %s\n" % (cert, key))

    def test_bad_files(self):
        tmp = mkdtemp()
        cert, key = openssl_cert(tmp)
        cert2, key2 = openssl_cert(tmp, "other", "other")
        junk = write_file(os.path.join(tmp, "junk.pem"), "not a pem file\n")
        enc = os.path.join(tmp, "enc.key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-aes256", "-pass", "pass:x",
                        "-out", enc], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        missing = os.path.join(tmp, "missing.key")
        cases = [
            (cert, missing, "http.tls_key: %s: cannot open" % missing),
            (junk, key, "http.tls_cert: %s: not a PEM certificate" % junk),
            (key, key, "http.tls_cert: %s: not a PEM certificate" % key),
            (cert, junk, "http.tls_key: %s: not a PEM private key" % junk),
            (cert, key2, "http.tls_key: %s does not go with the certificate in %s" % (key2, cert)),
            (cert, enc, "http.tls_key: %s: the private key is encrypted" % enc),
        ]
        for c, k, want in cases:
            conf = self.conf(c, k)
            rc, out = check_config(conf)
            self.assertNotEqual(rc, 0, (c, k, out))
            self.assertIn(want, out)
            # The daemon itself refuses to start with the same message, listening on nothing.
            p = subprocess.run([vt.VIGILD, "--config", conf, "--data-dir",
                                os.path.join(mkdtemp(), "d"), "--http", "127.0.0.1:0",
                                "--stream", "off"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60, text=True)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn(want, p.stdout)
        # Both or neither.
        conf = write_file(os.path.join(mkdtemp(), "vigild.conf"), "[http]\ntls_cert = %s\n" % cert)
        rc, out = check_config(conf)
        self.assertNotEqual(rc, 0)
        self.assertIn("http.tls_cert and http.tls_key: set both", out)
        rc, out = check_config(self.conf(cert, key))
        self.assertEqual(rc, 0, out)
        rc, out = check_config(self.conf(cert2, key2))
        self.assertEqual(rc, 0, out)


DASH = "https://dash.example.com"
LOCAL = "http://localhost:3000"


class TestCors(vt.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.cfg = write_file(os.path.join(mkdtemp(), "vigild.conf"),
                             "[http]\ncors_origins = %s , %s\n" % (DASH, LOCAL))
        cls.d = Vigild(config=cls.cfg, extra_args=["--auth-file", token_file()])
        cls.d.start()

    def preflight(self, path, origin, method="POST"):
        return self.d.curl("OPTIONS", path, "-H", "Origin: " + origin,
                           "-H", "Access-Control-Request-Method: " + method,
                           "-H", "Access-Control-Request-Headers: authorization, content-type")

    def test_preflight(self):
        for origin in (DASH, LOCAL, "HTTPS://DASH.example.com"):
            r = self.preflight("/v1/readings", origin)
            self.assertEqual(r.status, 204, r)  # no token needed
            self.assertEqual(r.headers.get("access-control-allow-origin"), origin)
            self.assertEqual(r.headers.get("access-control-allow-methods"), "POST")
            allow = [h.strip().lower()
                     for h in r.headers.get("access-control-allow-headers", "").split(",")]
            self.assertIn("authorization", allow)
            self.assertIn("content-type", allow)
            self.assertEqual(r.headers.get("access-control-max-age"), "3600")
            self.assertEqual(r.headers.get("vary"), "Origin")
            self.assertEqual(r.body, b"")
        r = self.preflight("/v1/devices/pump%2F1", DASH, "DELETE")
        self.assertEqual(r.headers.get("access-control-allow-methods"), "GET, PUT, DELETE")

    def test_disallowed_origin(self):
        for origin in ("https://evil.example.com", "https://dash.example.com:8443",
                       "http://dash.example.com", "null"):
            r = self.preflight("/v1/readings", origin)
            # An ordinary request then: no token, 401, and not a single CORS header.
            self.assertEqual(r.status, 401, r)
            self.assertFalse([h for h in r.headers if h.startswith("access-control-")], r.headers)
            r = self.d.curl("GET", "/v1/devices", "-H", "Origin: " + origin,
                            "-H", "Authorization: Bearer " + READ)
            self.assertEqual(r.status, 200, r)
            self.assertFalse([h for h in r.headers if h.startswith("access-control-")], r.headers)
            self.assertEqual(r.headers.get("vary"), "Origin")

    def test_actual_requests(self):
        r = self.d.curl("POST", "/v1/readings", "-H", "Origin: " + DASH,
                        "-H", "Authorization: Bearer " + WRITE, "-H",
                        "Content-Type: application/json", "--data-binary", "@-",
                        stdin='{"device":"cors-1","ts":1000,"values":{"v":1}}')
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("access-control-allow-origin"), DASH)
        self.assertEqual(r.headers.get("vary"), "Origin")
        self.assertIn("Retry-After", r.headers.get("access-control-expose-headers", ""))
        # InfluxDB's browser clients read its error headers (X-Platform-Error-Code on v2's
        # errors, X-Influxdb-Error on v1's): readable across origins too.
        exposed = [h.strip() for h in r.headers.get("access-control-expose-headers").split(",")]
        self.assertIn("X-Platform-Error-Code", exposed)
        self.assertIn("X-Influxdb-Error", exposed)
        r = self.d.curl("GET", "/v1/devices/cors-1/readings", "-H", "Origin: " + LOCAL,
                        "-H", "Authorization: Bearer " + READ)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("access-control-allow-origin"), LOCAL)
        # Errors carry it too, so the dashboard can read why (here: no token).
        r = self.d.curl("GET", "/v1/devices", "-H", "Origin: " + DASH)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.headers.get("access-control-allow-origin"), DASH)
        # Without an Origin header: no CORS header but Vary.
        r = self.d.curl("GET", "/healthz")
        self.assertNotIn("access-control-allow-origin", r.headers)
        self.assertEqual(r.headers.get("vary"), "Origin")

    def test_z_reload_changes_origins(self):
        d = self.d
        try:
            write_file(self.cfg, "[http]\ncors_origins = *\n")
            vt_hup(d, "configuration reloaded; applied: http.cors_origins")
            r = self.preflight("/v1/devices", "https://anything.example", "GET")
            self.assertEqual(r.status, 204, r)
            self.assertEqual(r.headers.get("access-control-allow-origin"), "*")
            # A bad list is rejected as a whole; '*' stays.
            write_file(self.cfg, "[http]\ncors_origins = https://a.example/path\n")
            log = vt_hup(d, "reload rejected")
            self.assertIn("http.cors_origins: 'https://a.example/path' is not an origin", log)
            r = self.preflight("/v1/devices", "https://other.example", "GET")
            self.assertEqual(r.headers.get("access-control-allow-origin"), "*")
            # Empty: CORS off, not even Vary.
            write_file(self.cfg, "[http]\ncors_origins =\n")
            vt_hup(d, "applied: http.cors_origins")
            r = self.preflight("/v1/devices", DASH, "GET")
            self.assertEqual(r.status, 401, r)
            self.assertFalse([h for h in r.headers if h.startswith("access-control-")])
            self.assertNotIn("vary", r.headers)
        finally:
            write_file(self.cfg, "[http]\ncors_origins = %s , %s\n" % (DASH, LOCAL))
            vt_hup(d, "configuration reloaded")

    def test_bad_lists(self):
        for value, want in (("https://a.example/", "'https://a.example/' is not an origin"),
                            ("*, https://a.example", "'*' allows every origin: give it alone"),
                            ("a.example", "'a.example' is not an origin"),
                            ("https://a.example,,https://b.example", "'' is not an origin")):
            conf = write_file(os.path.join(mkdtemp(), "vigild.conf"),
                              "[http]\ncors_origins = %s\n" % value)
            rc, out = check_config(conf)
            self.assertNotEqual(rc, 0, value)
            self.assertIn("http.cors_origins: " + want, out)


def vt_hup(d, pattern, timeout=10):
    """Sends SIGHUP and waits for one more log line containing pattern; returns the log."""
    before = d.log().count(pattern)
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while d.log().count(pattern) <= before:
        if time.monotonic() > deadline:
            raise AssertionError("no %r in the log after SIGHUP\n%s" % (pattern, d.log()))
        time.sleep(0.05)
    return d.log()


class TestStreamAuth(vt.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tokens = token_file()
        cls.d = Vigild(extra_args=["--auth-file", cls.tokens])
        cls.d.start()

    def points(self, device):
        r = self.d.curl("GET", "/v1/devices/%s/readings" % device,
                        "-H", "Authorization: Bearer " + READ)
        return r.json()["points"] if r.status == 200 else r.status

    def refused(self, first, reason):
        """Sends first, then a data line; expects "error 0 reason", the close, nothing stored."""
        c = self.d.stream_connect(timeout=20)
        try:
            t0 = time.monotonic()
            c.send(first + "m,device=refused v=1 1700000001000000000\n")
            line = c.read_line()
            self.assertEqual(line, "error 0 " + reason)
            # The server closes the connection (within its 2 s linger).
            self.assertIsNone(c.read_line())
            self.assertLess(time.monotonic() - t0, 15)
        finally:
            c.close()

    def test_write_tokens_stream(self):
        for i, tok in enumerate((WRITE, ADMIN)):
            c = self.d.stream_connect()
            try:
                c.send("auth %s\n" % tok)
                self.assertEqual(c.read_line(), "ok 0")
                c.send("m,device=sa-%d v=1 1700000001000000000\nbad line\n"
                       "m,device=sa-%d v=2 1700000002000000000\n"
                       % (i, i))
                got = c.finish()
                # Lines are numbered from 1 after the auth line, as without tokens.
                self.assertEqual(vt.errors_of(got).keys(), {2}, got)
                self.assertEqual(vt.last_ok(got), 3, got)
            finally:
                c.close()
            self.assertEqual([(p["ts"], p["values"]) for p in self.points("sa-%d" % i)],
                             [(1700000001000, {"v": 1}), (1700000002000, {"v": 2})])
        # The auth line and the data may come in one packet, with CRLF.
        c = self.d.stream_connect()
        try:
            c.send("auth %s\r\nm,device=sa-crlf v=3 1700000003000000000\r\n" % WRITE)
            got = c.finish()
            self.assertEqual(got, ["ok 0", "ok 1"], got)
        finally:
            c.close()

    def test_refusals(self):
        self.refused("", "authentication required: send 'auth TOKEN' (a write token) as the "
                         "first line")
        self.refused("auth not-a-token-at-all-xxxx\n", "invalid token")
        self.refused("auth\n", "authentication required: send 'auth TOKEN' (a write token) as "
                               "the first line")
        self.refused("auth %s extra\n" % WRITE, "invalid token")
        self.refused("auth %s\n" % READ, "forbidden: a 'read' token cannot write (needs 'write')")
        self.refused("AUTH %s\n" % WRITE, "authentication required: send 'auth TOKEN' (a write "
                                          "token) as the first line")
        # An overlong first line.
        self.refused("x" * 70000 + "\n", "authentication required: send 'auth TOKEN' (a write "
                                         "token) as the first line")
        self.assertEqual(self.points("refused"), 404)
        # A client that sends much more after a bad auth line still reads the error (the
        # server discards the rest instead of resetting the connection).
        c = self.d.stream_connect(timeout=20)
        try:
            c.send("auth %s\n" % READ)
            for k in range(200):
                c.send("m,device=refused v=%d %d\n" % (k, (k + 1) * 10**9) * 50)
            self.assertTrue(c.read_line().startswith("error 0 forbidden"))
            self.assertIsNone(c.read_line())
        finally:
            c.close()
        self.assertEqual(self.points("refused"), 404)
        self.assertIn("stream: connection refused: invalid token", self.d.log())

    def test_z_rotation(self):
        # A reload that removes the write token: new connections with it are refused; one
        # authenticated before goes on (the token is checked once per connection).
        d = self.d
        early = d.stream_connect()
        try:
            early.send("auth %s\n" % WRITE)
            self.assertEqual(early.read_line(), "ok 0")
            new = "wr1te-t0ken-NEWNEWNEWNEWNEWNE"
            write_file(self.tokens, "read %s\nwrite %s\n" % (READ, new))
            vt_hup(d, "configuration reloaded")
            self.refused("auth %s\n" % WRITE, "invalid token")
            c = d.stream_connect()
            c.send("auth %s\nm,device=rot v=1 1700000001000000000\n" % new)
            self.assertEqual(c.finish(), ["ok 0", "ok 1"])
            c.close()
            early.send("m,device=rot v=2 1700000002000000000\n")
            self.assertEqual(early.finish(), ["ok 1"])
            self.assertEqual(len(self.points("rot")), 2)
        finally:
            early.close()


class TestDemoWithTokens(unittest.TestCase):
    """--demo with tokens configured: the feed gets a write token of its own (VIGIL_TOKEN in its
    environment, never on its command line) and its readings arrive; vigil-sim sends
    $VIGIL_TOKEN over HTTP as a bearer token."""

    def wait_points(self, d, device, token, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = d.curl("GET", "/v1/devices/%s" % device, "-H", "Authorization: Bearer " + token)
            if r.status == 200 and r.json().get("points", 0) > 0:
                return r.json()["points"]
            time.sleep(0.5)
        self.fail("no readings from %s within %ds\n%s" % (device, timeout, d.log()))

    def test_demo_feed_authenticates(self):
        d = Vigild(extra_args=["--auth-file", token_file(), "--demo"])
        d.start()
        try:
            self.assertGreater(self.wait_points(d, "pump-1", READ), 0)
            # The demo token is nobody else's: the file's tokens are unchanged, and an
            # unauthenticated client is still refused.
            self.assertEqual(d.curl("GET", "/v1/devices").status, 401)
            with open("/proc/%d/task/%d/children" % (d.proc.pid, d.proc.pid)) as f:
                kids = f.read().split()
            self.assertTrue(kids, "vigil-sim is not running")
            with open("/proc/%s/cmdline" % kids[0], "rb") as f:
                cmdline = f.read()
            self.assertIn(b"vigil-sim", cmdline)
            self.assertNotIn(b"auth", cmdline)
            self.assertNotIn(b"VIGIL_TOKEN", cmdline)
            d.stop()
            self.assertNotIn("connection refused", d.log())
        finally:
            d.cleanup()

    def test_sim_http_token(self):
        d = Vigild(extra_args=["--auth-file", token_file()])
        d.start()
        try:
            sim = os.path.join(os.path.dirname(vt.VIGILD), "vigil-sim")
            base = [sim, "--http", "127.0.0.1:%d" % d.http_port, "--devices", "2",
                    "--backfill", "60", "--duration", "60", "--speed", "0", "--quiet"]
            env = dict(os.environ, VIGIL_TOKEN=READ)
            p = subprocess.run(base, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=120, text=True)
            self.assertIn("readings_acked=0 ", p.stdout)  # a read token may not write
            env["VIGIL_TOKEN"] = WRITE
            p = subprocess.run(base, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=120, text=True)
            self.assertEqual(p.returncode, 0, p.stdout)
            self.assertIn(" errors=0 ", p.stdout)
            self.assertGreater(self.wait_points(d, "pump-2", READ, timeout=10), 0)
        finally:
            d.stop()
            d.cleanup()


class TestStreamWithoutTokens(vt.DaemonTestCase):
    def test_no_auth_line_needed(self):
        # Without tokens nothing changes: the first line is data.
        c = self.d.stream_connect()
        c.send("m,device=open v=1 1700000001000000000\n")
        self.assertEqual(c.finish(), ["ok 1"])
        c.close()


if __name__ == "__main__":
    vt.main()

#!/usr/bin/env python3
"""Operations: the systemd unit (systemd-analyze), the notification protocol on a fake
NOTIFY_SOCKET (READY, STATUS, WATCHDOG period, RELOADING, STOPPING), configuration reload on
SIGHUP, bearer-token authentication and roles, and the connection and size limits.

Every daemon runs on loopback with free ports and a temporary data directory (vigiltest.py)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

import vigiltest as vt
from vigiltest import Vigild, mkdtemp, write_file
# The package, the installed files, the man pages and the tools' command lines
# (test_package.py), collected here: it_ops.
from test_package import ManPages, TestInstall, ToolCommandLines  # noqa: E402,F401

UNIT = os.path.join(vt.REPO, "systemd", "vigild.service")


class NotifySocket:
    """A fake systemd notification socket: a datagram unix socket, in the abstract namespace
    (path "@...") or the file system. Messages are collected with their arrival time."""

    def __init__(self, abstract=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "vigil-test-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.path = "@" + name
        else:
            self.path = os.path.join(mkdtemp(), "notify")
            self.sock.bind(self.path)
        self.msgs = []  # (monotonic time, {key: value})
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.closed:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            kv = {}
            for line in data.decode().split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    kv[k] = v
            with self.cond:
                self.msgs.append((time.monotonic(), kv))
                self.cond.notify_all()

    def wait_for(self, key, value=None, after=0, timeout=20):
        """Waits for a message (index >= after) holding key (= value); returns its index."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(after, len(self.msgs)):
                    kv = self.msgs[i][1]
                    if key in kv and (value is None or kv[key] == value):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s%s from vigild within %ds; got %r"
                                         % (key, "" if value is None else "=" + value, timeout,
                                            [m[1] for m in self.msgs]))
                self.cond.wait(left)

    def times(self, key):
        with self.cond:
            return [t for t, kv in self.msgs if key in kv]

    def close(self):
        self.closed = True
        self.thread.join()
        self.sock.close()


def start_with_env(d, env, timeout=15.0):
    """Starts d with extra environment variables (Vigild.start inherits os.environ)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        d.start(timeout=timeout)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class TestUnit(unittest.TestCase):
    def test_systemd_analyze_verify(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze not installed (tools/install-deps installs systemd)")
        tmp = mkdtemp()
        # The unit names the installed paths; point it at the binary under test so verify can
        # check ExecStart= and ExecReload=, and give man(1) the pages Documentation= names
        # (vigild(8), vigild.conf(5)) from the source tree: verify runs man on each.
        with open(UNIT) as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/bin/vigild --config /etc/vigil/vigild.conf "
                      "--data-dir /var/lib/vigil", text)
        unit = write_file(os.path.join(tmp, "vigild.service"),
                          text.replace("/usr/bin/vigild", vt.VIGILD))
        pages = [os.path.join(vt.REPO, "docs", p) for p in ("vigild.8", "vigild.conf.5")]
        env = dict(os.environ)
        args = ["systemd-analyze", "verify"]
        if all(os.path.exists(p) for p in pages) and shutil.which("man"):
            for page in pages:
                sec = os.path.join(tmp, "man", "man" + page.rsplit(".", 1)[1])
                os.makedirs(sec, exist_ok=True)
                shutil.copy(page, sec)
            env["MANPATH"] = os.path.join(tmp, "man")
        else:
            args.append("--man=no")
        p = subprocess.run(args + [unit], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=env, timeout=60)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out)
        # Warnings (an unknown key, a bad value) do not change the exit code: any output fails.
        self.assertEqual(out.strip(), "", out)
        # The hardening is real: systemd's own exposure score stays low ("OK", <= 2.0).
        p = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                            unit], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode()[-3000:])
        for key in ("Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID",
                    "DynamicUser=yes", "StateDirectory=vigil", "ConfigurationDirectory=vigil",
                    "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                    "NoNewPrivileges=yes", "RestrictAddressFamilies=", "SystemCallFilter=",
                    "MemoryMax="):
            self.assertIn(key, text)


class TestNotify(unittest.TestCase):
    def run_notify(self, abstract):
        ns = NotifySocket(abstract=abstract)
        cfg = write_file(os.path.join(mkdtemp(), "vigild.conf"), "[daemon]\nlog_level = info\n")
        d = Vigild(config=cfg)
        try:
            t0 = time.monotonic()
            start_with_env(d, {"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "1000000"})
            i = ns.wait_for("READY", "1")
            ready = ns.msgs[i][1]
            self.assertIn("devices", ready.get("STATUS", ""), ready)
            self.assertEqual(int(ready["MAINPID"]), d.proc.pid)
            # Readings show up in the periodic status line (every 5 s): devices and a rate.
            r = d.post_json([{"device": "n-%d" % k, "ts": 1000 + k, "values": {"v": k}}
                             for k in range(3)])
            self.assertEqual(r.status, 200, r)
            j = ns.wait_for("STATUS", after=i + 1, timeout=15)
            self.assertRegex(ns.msgs[j][1]["STATUS"], r"^serving: 3 devices, \d+ readings/s")
            # WATCHDOG=1 at half of WATCHDOG_USEC (1 s): every 0.5 s, give or take scheduling.
            pings = [t for t in ns.times("WATCHDOG") if t > t0]
            self.assertGreaterEqual(len(pings), 8, pings)
            gaps = [b - a for a, b in zip(pings[1:], pings[2:])]
            avg = sum(gaps) / len(gaps)
            self.assertTrue(0.4 <= avg <= 0.75, "watchdog period %.3f s: %r" % (avg, gaps))
            self.assertLess(max(gaps), 1.0, gaps)  # the deadline itself
            # SIGHUP: RELOADING=1, then READY=1 again.
            n = len(ns.msgs)
            d.proc.send_signal(signal.SIGHUP)
            k = ns.wait_for("RELOADING", "1", after=n)
            self.assertIn("MONOTONIC_USEC", ns.msgs[k][1])
            ns.wait_for("READY", "1", after=k)
            # SIGTERM: STOPPING=1, and a clean exit.
            n = len(ns.msgs)
            d.stop()
            ns.wait_for("STOPPING", "1", after=n, timeout=1)
        finally:
            ns.close()
            d.cleanup()

    def test_abstract_socket(self):
        self.run_notify(abstract=True)

    def test_path_socket(self):
        self.run_notify(abstract=False)

    def notify_without_watchdog(self, env, config=None, preexec_fn=None):
        """Starts vigild with env beside NOTIFY_SOCKET, waits for READY=1 and returns (ns, d):
        the caller stops d (stop_without_pings), closes ns and cleans d up."""
        ns = NotifySocket()
        d = Vigild(config=config, preexec_fn=preexec_fn)
        try:
            start_with_env(d, dict({"NOTIFY_SOCKET": ns.path}, **env))
            ns.wait_for("READY", "1")
        except BaseException:
            ns.close()
            d.cleanup()
            raise
        return ns, d

    def stop_without_pings(self, ns, d, what, codes=(0,)):
        """Stops d (an exit code in codes), waits for STOPPING=1 and checks that no
        WATCHDOG=1 was ever sent."""
        n = len(ns.msgs)
        d.stop(codes=codes)
        ns.wait_for("STOPPING", "1", after=n, timeout=5)
        self.assertNotIn("systemd notification disabled", d.log())
        self.assertEqual(ns.times("WATCHDOG"), [], (what, [m[1] for m in ns.msgs]))

    def test_watchdog_usec_digits_only(self):
        """Task knobs64: WATCHDOG_USEC is read as systemd writes it, digits only
        (common/posint.h): main's strtoull took "+1000000" and " 1000000" as a second, and "-5"
        as 2^64 - 5 µs. Review read64b: a bad value (these, 0, one above 2^64 - 1) turns off the
        watchdog alone, with a warning naming it, as libsystemd's sd_watchdog_enabled does
        (sd_notify goes on): READY=1 and STOPPING=1 are sent, no WATCHDOG=1. knobs64 turned off
        the whole socket, so a Type=notify unit's start would time out."""
        for value, why in (("+1000000", "is not a positive integer"),
                           (" 1000000", "is not a positive integer"),
                           ("-5", "is not a positive integer"),
                           ("0", "is not a positive integer"),
                           ("18446744073709551616", "is above 18446744073709551615")):
            ns, d = self.notify_without_watchdog({"WATCHDOG_USEC": value})
            try:
                self.assertIn("systemd watchdog disabled: WATCHDOG_USEC='%s' %s" % (value, why),
                              d.log())
                self.stop_without_pings(ns, d, value)
            finally:
                ns.close()
                d.cleanup()

    def test_watchdog_pid_empty(self):
        """Review read64b: WATCHDOG_PID set but empty names no process, as systemd's
        parse_pid("") fails (sd_watchdog_enabled: no watchdog). knobs64 took it for ours and
        pinged every half period."""
        ns, d = self.notify_without_watchdog({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": ""})
        try:
            # At 0.1 s a ping, a watchdog would have sent several meanwhile: wait for the
            # first periodic STATUS= (5 s) rather than a fixed sleep.
            i = ns.wait_for("READY", "1")
            ns.wait_for("STATUS", after=i + 1, timeout=15)
            self.stop_without_pings(ns, d, "WATCHDOG_PID=''")
        finally:
            ns.close()
            d.cleanup()

    def test_watchdog_usec_infinity(self):
        """WatchdogSec=infinity: systemd writes WATCHDOG_USEC=18446744073709551615 (USEC_INFINITY,
        2^64 - 1), which libsystemd's sd_watchdog_enabled takes for no watchdog. vigild still
        notifies (READY=1, STOPPING=1: knobs64's first bound disabled every notification) and
        sends no WATCHDOG=1. Review read64b: kept as a period it made the stall bound
        (WRITER_STALL_PERIODS of it) some 2.3 million years, so a refused write kept /healthz 503
        "for 73786976294838 s": now the bound is http.health_stall_s (2 s here). Writes are
        refused by a file size limit (RLIMIT_FSIZE, SIGXFSZ ignored, as test_crash's
        WriteErrors); /healthz is looked at right after each refused one (bounded)."""
        import resource

        limit = 3 * 1024 * 1024

        def preexec():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        cfg = write_file(os.path.join(mkdtemp(), "vigild.conf"),
                         "[http]\nhealth_stall_s = 2\n")
        ns, d = self.notify_without_watchdog({"WATCHDOG_USEC": "18446744073709551615"},
                                             config=cfg, preexec_fn=preexec)
        try:
            self.assertNotIn("systemd watchdog disabled", d.log())
            error = None
            for j in range(400):
                body = json.dumps([{"device": "inf", "ts": j * 1000 + i,
                                    "values": {"v": i * 1.1, "w": j}} for i in range(1000)])
                st, _, _ = vt.http_request("POST", d.url("/v1/readings"), body=body)
                if st == 200:
                    continue
                st, _, data = d.get("/healthz")
                if st == 503 and b"counts for" in data:
                    error = vt.loads(data)["error"]
                    break
            self.assertIsNotNone(error, "no refused write made /healthz 503")
            self.assertIn("(counts for 2.0 s)", error)
            # A stop whose last saves the limit refused exits 1 (vigiltest.Vigild.stop).
            self.stop_without_pings(ns, d, "infinity", codes=(0, 1))
        finally:
            ns.close()
            d.cleanup()

    def test_without_systemd(self):
        # No NOTIFY_SOCKET: nothing is sent, nothing breaks; SIGHUP reloads, SIGTERM stops.
        d = Vigild()
        try:
            d.start()
            # /healthz answers a moment before the signal handlers are installed (a SIGHUP that
            # early is ignored, by design; under systemd a reload waits for READY=1): wait for
            # the start-up line logged after them, as systemd waits for READY.
            deadline = time.monotonic() + 10
            while ", HTTP on " not in d.log():
                self.assertLess(time.monotonic(), deadline, d.log())
                time.sleep(0.02)
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "configuration reloaded" not in d.log():
                self.assertLess(time.monotonic(), deadline, d.log())
                time.sleep(0.05)
            d.stop()
        finally:
            d.cleanup()


def hup(d, pattern, timeout=10):
    """Sends SIGHUP and waits until the log holds one more line matching pattern."""
    before = len(re.findall(pattern, d.log()))
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while len(re.findall(pattern, d.log())) <= before:
        if time.monotonic() > deadline:
            raise AssertionError("no %r in the log after SIGHUP\n%s" % (pattern, d.log()))
        time.sleep(0.05)
    return d.log()


def items(n, device="r-1"):
    return [{"device": device, "ts": 1000 + i, "values": {"v": i}} for i in range(n)]


class TestReload(vt.FreshDaemonTestCase):
    CONFIG = ("[daemon]\nlog_level = info\n[http]\nmax_batch = 100\n"
              "max_body_bytes = 65536\n")

    def test_live_settings(self):
        d = self.d
        self.assertEqual(d.post_json(items(101)).status, 413)
        self.assertEqual(d.post_json(items(10)).status, 200)
        # Live: the batch and body limits, the query page size, the log level.
        write_file(self.cfg, "[daemon]\nlog_level = info\n[http]\nmax_batch = 1000\n"
                   "max_body_bytes = 1048576\nmax_query_points = 5\n")
        log = hup(d, "configuration reloaded")
        self.assertRegex(log, r"applied: http.max_body_bytes, http.max_batch, "
                              r"http.max_query_points")
        self.assertEqual(d.post_json(items(101)).status, 200)
        self.assertEqual(d.post_json(items(1001)).status, 413)
        r = d.curl("GET", "/v1/devices/r-1/readings?limit=6")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(len(d.get_json("/v1/devices/r-1/readings?limit=5")["points"]), 5)
        # A setting that needs a restart is named, not applied; the live ones still apply (the
        # log level: the info line of this reload is not printed, the warning is).
        write_file(self.cfg, "[daemon]\nlog_level = warn\n[http]\nmax_batch = 1000\n"
                   "max_body_bytes = 1048576\nthreads = 2\n")
        log = hup(d, "applied only after a restart: http.threads")
        self.assertEqual(log.count("configuration reloaded; applied"), 1, log)
        self.assertEqual(d.post_json(items(101)).status, 200)

    def test_invalid_config_is_rejected(self):
        d = self.d
        write_file(self.cfg, "[daemon]\nlog_level = info\n[http]\nmax_batch = 1000\n")
        hup(d, "configuration reloaded")
        self.assertEqual(d.post_json(items(101)).status, 200)
        bad = [
            ("[http]\nmax_batch = 5\nmax_body_bytes = lots\n", ":3: http.max_body_bytes"),
            ("[http]\nmax_batch = 5\nbogus = 1\n", ":3: unknown key 'bogus'"),
            ("[nosuch]\nx = 1\n", ":1: unknown section [nosuch]"),
            ("[http]\nmax_batch = 5\n[retetion]\n", ":3: unknown section [retetion]"),
            ("[http]\nmax_batch = 5\nmax_connections\n", ":3: syntax error"),
            ("[http]\nmax_batch = 5\n[http]\nmax_batch = 6\n",
             ":4: http.max_batch is set twice (first on line 2)"),
            ("[http]\nmax_batch = 5\0 and the rest\n", ":2: a NUL byte"),
            ("[http]\nmax_batch = 5\nmax_connections: 10\n", ":3: a ':' before any '='"),
            ("[http]\nmax_batch = 5\ncors_origins = https://a.example # dashboard\n",
             ":3: http.cors_origins: 'https://a.example # dashboard' has a '#' after a blank"),
            ("[http]\nmax_batch = 3000\n[storage]\nqueue_max_readings = 2000\n",
             "exceeds storage.queue_max_readings"),
        ]
        for text, reason in bad:
            write_file(self.cfg, text)
            # The unit's ExecReload checks the file first, so `systemctl reload` fails too.
            p = subprocess.run([vt.VIGILD, "--config", self.cfg, "--check-config"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertNotEqual(p.returncode, 0, text)
            log = hup(d, "reload rejected")
            line = [x for x in log.splitlines() if "reload rejected" in x][-1]
            self.assertIn(self.cfg, line)
            self.assertIn(reason, line)
            # The running configuration is kept: 101 items still fit, 1001 do not.
            self.assertEqual(d.post_json(items(101)).status, 200, text)
            self.assertEqual(d.post_json(items(1001)).status, 413, text)
        # A file that went away is rejected the same way.
        os.unlink(self.cfg)
        line = [x for x in hup(d, "reload rejected").splitlines() if "reload rejected" in x][-1]
        self.assertIn("cannot open", line)
        self.assertEqual(d.post_json(items(101)).status, 200)
        # Ingest, queries and the stream go on; the daemon is healthy and stops cleanly.
        c = d.stream_connect()
        c.send("m,device=after-reload v=1 1700000001000000000\n")
        self.assertEqual(vt.last_ok(c.finish()), 1)
        self.assertEqual(d.get_json("/healthz")["status"], "ok")


READ = "r3ad-t0ken-AAAAAAAAAAAAAAAA"
WRITE = "wr1te-t0ken-BBBBBBBBBBBBBBBB"
ADMIN = "adm1n-t0ken-CCCCCCCCCCCCCCCC"
TOKENS = ("# vigil tokens\n\nread %s\n  write\t%s  \nadmin %s\n# end\n" % (READ, WRITE, ADMIN))
INFLUX = shutil.which("influx") or "/usr/bin/influx"


def token_file(text=TOKENS, mode=0o600):
    path = os.path.join(mkdtemp(), "tokens")
    write_file(path, text)
    os.chmod(path, mode)
    return path


def bearer(tok):
    return ["-H", "Authorization: Bearer " + tok]


class ReaderVigild(Vigild):
    """A Vigild whose helper reads (get, get_json, readings, device) carry a read token."""

    def get(self, path, headers=None):
        h = dict(headers or {})
        h.setdefault("Authorization", "Bearer " + READ)
        return super().get(path, h)


class TestAuth(vt.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tokens = token_file()
        cls.d = ReaderVigild(extra_args=["--auth-file", cls.tokens])
        cls.d.start()

    def req(self, method, path, tok=None, data=None, extra=()):
        args = list(extra)
        if tok:
            args += bearer(tok)
        if data is not None:
            args += ["--data-binary", "@-"]
        return self.d.curl(method, path, *args, stdin=data)

    def test_open_routes(self):
        self.assertEqual(self.req("GET", "/healthz").status, 200)
        self.assertEqual(self.req("GET", "/ping").status, 204)
        self.assertEqual(self.req("GET", "/metrics").status, 200)
        # Not even a 404 without a token: unknown paths are not revealed.
        self.assertJsonError(self.req("GET", "/nosuch"), 401)

    def test_missing_and_invalid_tokens(self):
        for path in ("/v1/devices", "/v1/anomalies", "/v1/devices/x/readings"):
            r = self.req("GET", path)
            self.assertJsonError(r, 401, "Bearer")
            self.assertEqual(r.headers.get("www-authenticate"), 'Bearer realm="vigil"')
            for bad in ("nope", READ + "x", READ[:-1], READ.upper(), ""):
                r = self.req("GET", path, extra=["-H", "Authorization: Bearer " + bad])
                self.assertJsonError(r, 401)
                self.assertIn("www-authenticate", r.headers)
        # Basic and u/p are for the InfluxDB routes only.
        self.assertJsonError(self.req("GET", "/v1/devices", extra=["-u", "x:" + READ]), 401)
        self.assertJsonError(self.req("GET", "/v1/devices?p=" + READ), 401)
        # A rejected write stores nothing.
        body = '{"device":"auth-no","ts":1,"values":{"v":1}}'
        self.assertJsonError(self.req("POST", "/v1/readings", None, body), 401)
        self.assertJsonError(self.req("POST", "/v1/readings", "bad-token-xxxxxxxxx", body), 401)
        self.assertJsonError(self.req("POST", "/v1/readings", READ, body), 403, "write")
        self.assertEqual(self.req("GET", "/v1/devices/auth-no", READ).status, 404)

    def test_roles(self):
        body = '{"device":"auth-1","ts":1,"values":{"v":1}}'
        self.assertEqual(self.req("POST", "/v1/readings", WRITE, body).status, 200)
        self.assertEqual(self.req("POST", "/v1/readings", ADMIN, body).status, 200)
        self.assertEqual(self.req("GET", "/v1/devices/auth-1", READ).status, 200)
        # The scheme is case-insensitive; "Token" (InfluxDB 2 clients) works too.
        self.assertEqual(self.req("GET", "/v1/devices", extra=[
            "-H", "Authorization: bearer " + READ]).status, 200)
        self.assertEqual(self.req("GET", "/v1/devices", extra=[
            "-H", "Authorization: Token " + READ]).status, 200)
        # Device changes and model control are admin's.
        for tok in (READ, WRITE):
            r = self.req("PUT", "/v1/devices/auth-2", tok, '{"site":"x"}')
            self.assertJsonError(r, 403, ["'admin'", "PUT"])
            self.assertJsonError(self.req("DELETE", "/v1/devices/auth-1", tok), 403, "admin")
            for path in ("/v1/devices/auth-1/model/retrain", "/v1/devices/auth-1/model/rollback"):
                self.assertJsonError(self.req("POST", path, tok, '{"version":1}'), 403)
            self.assertJsonError(self.req("PUT", "/v1/devices/auth-1/model/weights", tok, "x"),
                                 403)
        self.assertNoDevice("auth-2")
        self.assertEqual(self.req("PUT", "/v1/devices/auth-2", ADMIN, '{"site":"x"}').status,
                         201)
        for path in ("/v1/devices/auth-1/status", "/v1/devices/auth-1/model",
                     "/v1/devices/auth-1/model/weights", "/v1/devices/auth-1/forecast"):
            self.assertNotIn(self.req("GET", path, READ).status, (401, 403), path)
        self.assertNotIn(self.req("POST", "/v1/devices/auth-1/model/retrain", ADMIN).status,
                         (401, 403))
        self.assertEqual(self.req("DELETE", "/v1/devices/auth-2", ADMIN).status, 200)
        self.assertNoDevice("auth-2")
        # 401 and 403 are counted in /metrics like every status.
        m = self.d.metrics()
        self.assertRegex(m, r'vigil_http_requests_total\{[^}]*code="401"[^}]*\} [1-9]')
        self.assertRegex(m, r'vigil_http_requests_total\{[^}]*code="403"[^}]*\} [1-9]')

    def test_write_credentials(self):
        lp = "m,device=auth-lp v=%d %d\n"
        ways = [("bearer", bearer(WRITE), ""), ("u/p", [], "&u=telegraf&p=" + WRITE),
                ("p only", [], "&p=" + WRITE), ("basic", ["-u", "telegraf:" + WRITE], ""),
                ("token", ["-H", "Authorization: Token " + WRITE], "")]
        for i, (name, args, q) in enumerate(ways):
            r = self.d.curl("POST", "/write?db=x&precision=ms" + q, "--data-binary", "@-", *args,
                            stdin=lp % (i, i + 1))
            self.assertEqual(r.status, 204, (name, r))
        self.assertEqual(len(self.d.readings("auth-lp")), len(ways))
        for args, q, code in [([], "", 401), ([], "&u=x&p=wrong", 401),
                              (["-u", "x:wrong"], "", 401), ([], "&u=x&p=" + READ, 403),
                              (["-u", "x:" + READ], "", 403)]:
            r = self.d.curl("POST", "/write?db=x&precision=ms" + q, "--data-binary", "@-", *args,
                            stdin=lp % (99, 99))
            self.assertJsonError(r, code)
            if code == 401:
                self.assertIn('Basic realm="vigil"', r.headers.get("www-authenticate", ""))
        self.assertEqual(len(self.d.readings("auth-lp")), len(ways))

    def influx(self, *args):
        cmd = [INFLUX, "-host", "127.0.0.1", "-port", str(self.d.http_port)] + list(args)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                           text=True)
        return p.returncode, p.stdout

    def test_influx_cli(self):
        if not os.path.exists(INFLUX):
            self.skipTest("influx CLI not installed")
        rc, out = self.influx("-username", "x", "-password", WRITE, "-execute",
                              "CREATE DATABASE plant")
        self.assertEqual(rc, 0, out)
        rc, out = self.influx("-username", "x", "-password", WRITE, "-database", "plant",
                              "-precision", "ms", "-execute",
                              "INSERT pump,device=auth-cli temp=70.5 1732780800123")
        self.assertEqual(rc, 0, out)
        self.assertPoints(self.d.readings("auth-cli"), [(1732780800123, {"temp": 70.5})])
        self.assertNotIn("ERR", out)
        # The CLI exits 0 after a failed INSERT; it prints the server's error.
        for pw, err in (("wrong-password-xxxxxx", "invalid token"), (READ, "forbidden")):
            rc, out = self.influx("-username", "x", "-password", pw, "-database", "plant",
                                  "-precision", "ms", "-execute",
                                  "INSERT pump,device=auth-cli temp=1 1732780800999")
            self.assertIn("ERR", out)
            self.assertIn(err, out)
        self.assertEqual(len(self.d.readings("auth-cli")), 1)


class TestJournal(unittest.TestCase):
    """Under systemd, stderr is the journal's stream ($JOURNAL_STREAM names its device and
    inode): each line carries its syslog priority as a "<N>" prefix, so `journalctl -p warning`
    and alerts on priority see vigild's warnings and errors (without it every line was
    priority 6, info), and no time of its own (the journal records one)."""

    def run_vigild(self, args, journal=True, stop=False):
        tmp = mkdtemp()
        path = os.path.join(tmp, "stderr")
        with open(path, "w") as err:
            st = os.fstat(err.fileno())
            ino = st.st_ino if journal else st.st_ino + 1  # another stream: not the journal
            env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, ino))
            p = subprocess.Popen([vt.VIGILD, "--data-dir", os.path.join(tmp, "data"), "--http",
                                  "127.0.0.1:0", "--stream", "off"] + args, env=env,
                                 stdout=subprocess.DEVNULL, stderr=err)
            try:
                if stop:
                    for _ in range(300):  # 30 s at most for the start
                        with open(path) as f:
                            if re.search(r"vigild \S+( \([^)]*\))?: data in", f.read()):
                                break
                        time.sleep(0.1)
                    p.send_signal(signal.SIGTERM)
                rc = p.wait(timeout=60)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        with open(path) as f:
            return rc, f.read().splitlines()

    def test_priorities(self):
        rc, lines = self.run_vigild(["--log-level", "debug"], stop=True)
        self.assertEqual(rc, 0, lines)
        self.assertIn("<6>info  stopped cleanly", lines)
        for line in lines:
            self.assertRegex(line, r"^<(7>debug|6>info |4>warn |3>error) \S", lines)
        # A configuration that stops the start is an error too.
        conf = write_file(os.path.join(mkdtemp(), "bad.conf"), "[daemon]\nlog_level = loud\n")
        rc, lines = self.run_vigild(["--config", conf])
        self.assertEqual(rc, 1, lines)
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("<3>vigild: " + conf + ":2: daemon.log_level"), lines)

    def test_command_line_errors(self):
        # A bad command line stops the service too: one line, the error priority, the reason
        # (journalctl -p err shows it), no usage text. Before, getopt's own message and the
        # flag checks' had no priority (info) and the 17 usage lines followed.
        rc, lines = self.run_vigild(["--bogus"])
        self.assertEqual((rc, lines), (2, ["<3>vigild: unknown option '--bogus' (vigild --help "
                                           "lists the options)"]))
        rc, lines = self.run_vigild(["-x"])
        self.assertEqual((rc, lines), (2, ["<3>vigild: unknown option '-x' (vigild --help lists "
                                           "the options)"]))
        # An unknown letter inside a cluster, after a long option: the letter, not that option
        # (it named '--demo').
        rc, lines = self.run_vigild(["--demo", "-xD"])
        self.assertEqual((rc, lines), (2, ["<3>vigild: unknown option '-x' (vigild --help lists "
                                           "the options)"]))
        # A prefix of several long options is ambiguous, not unknown, and lists them; a prefix
        # of one is that option (getopt_long's abbreviations).
        rc, lines = self.run_vigild(["--d"])
        self.assertEqual((rc, lines), (2, ["<3>vigild: ambiguous option '--d': '--data-dir', "
                                           "'--demo' (vigild --help lists the options)"]))
        rc, lines = self.run_vigild(["--c=x.conf"])
        self.assertEqual((rc, lines), (2, ["<3>vigild: ambiguous option '--c=x.conf': "
                                           "'--config', '--check-config' (vigild --help lists "
                                           "the options)"]))
        # A value given to an option that takes none names that option (it said unknown).
        rc, lines = self.run_vigild(["--dem=1"])
        self.assertEqual((rc, lines), (2, ["<3>vigild: '--demo' takes no value: '--dem=1' "
                                           "(vigild --help lists the options)"]))
        rc, lines = self.run_vigild(["--log-l", "loud"])
        self.assertEqual(rc, 1, lines)
        self.assertTrue(lines[0].startswith("<3>vigild: --log-level: "), lines)
        rc, lines = self.run_vigild(["--config"])
        self.assertEqual((rc, lines), (2, ["<3>vigild: --config needs a value (vigild --help "
                                           "lists the options)"]))
        rc, lines = self.run_vigild(["stray"])
        self.assertEqual((rc, lines), (2, ["<3>vigild: unexpected argument 'stray' (vigild "
                                           "--help lists the options)"]))
        rc, lines = self.run_vigild(["--auth-file="])
        self.assertEqual((rc, lines), (2, ["<3>vigild: --auth-file: empty value"]))
        rc, lines = self.run_vigild(["--log-level", "info\tx"])
        self.assertEqual((rc, lines), (2, ["<3>vigild: --log-level: the value has a control "
                                           "character (0x09)"]))
        rc, lines = self.run_vigild(["--data-dir", "/nonexistent-vigil/a/b", "--check-config"])
        self.assertEqual(rc, 1, lines)
        self.assertEqual(lines, ["<3>vigild: data directory: /nonexistent-vigil/a/b does not "
                                 "exist and cannot be created: /nonexistent-vigil/a: No such file "
                                 "or directory"])
        # On a terminal (not the journal): the message without a prefix, then the usage.
        rc, lines = self.run_vigild(["--bogus"], journal=False)
        self.assertEqual(rc, 2, lines)
        self.assertEqual(lines[:2], ["vigild: unknown option '--bogus'", "usage: vigild [options]"])

    def test_not_the_journal(self):
        # Redirected elsewhere (a wrapper, a pipe), the lines keep their time and no prefix.
        rc, lines = self.run_vigild([], journal=False, stop=True)
        self.assertEqual(rc, 0, lines)
        self.assertTrue(lines, lines)
        # The start line says the stream is off, not "stream on off (port 0)".
        self.assertTrue(any(re.search(r"HTTP on 127\.0\.0\.1:0 \(port \d+\), stream off$", line)
                            for line in lines), lines)
        for line in lines:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info |warn ) \S",
                             lines)


class TestAuthFile(unittest.TestCase):
    def check(self, text, *args, mode=0o600):
        path = token_file(text, mode)
        p = subprocess.run([vt.VIGILD, "--auth-file", path, "--check-config"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return path, p.returncode, p.stdout + p.stderr

    def test_bad_files_stop_start_up(self):
        good = "read %s\n" % READ
        cases = [
            (good + "reader %s\n" % WRITE, ":2: unknown role 'reader'"),
            (good + "# ok\nwrite\n", ":3: want 'ROLE TOKEN'"),
            (good + "write %s extra\n" % WRITE, ":2: want 'ROLE TOKEN'"),
            ("write short\n", ":1: token of 5 characters (want 16 to 256)"),
            ("admin " + "x" * 257 + "\n", ":1: token of 257"),
            (good + "\nadmin %s\n" % READ, ":3: duplicate token (first on line 1)"),
            ("write caf\u00e9-token-xxxxxxxxxx\n", ":1: token holds a byte"),
            ("# nothing\n\n", ": no tokens"),
        ]
        for text, reason in cases:
            path, rc, out = self.check(text)
            self.assertEqual(rc, 1, (text, out))
            self.assertIn(path + reason, out)
        p = subprocess.run([vt.VIGILD, "--auth-file", "/nonexistent/tokens", "--check-config"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("vigild: --auth-file: /nonexistent/tokens: cannot open", p.stderr)
        # From the configuration file, the setting and its line are named (session 65: the
        # message was the path alone, naming neither).
        cfg = write_file(os.path.join(mkdtemp(), "vigild.conf"),
                         "[http]\n\nauth_file = /nonexistent/tokens\n")
        p = subprocess.run([vt.VIGILD, "--config", cfg, "--check-config"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("vigild: http.auth_file (%s line 3): /nonexistent/tokens: cannot open" % cfg,
                      p.stderr)
        path, rc, out = self.check(TOKENS)
        self.assertEqual(rc, 0, out)
        # A start with a bad file listens on nothing.
        d = Vigild(extra_args=["--auth-file", token_file("write x\n")])
        try:
            with self.assertRaises(AssertionError) as cm:
                d.start(timeout=10)
            self.assertIn("exited with 1", str(cm.exception))
        finally:
            d.cleanup()

    def test_world_readable_warns(self):
        path = token_file(TOKENS, 0o644)
        d = Vigild(extra_args=["--auth-file", path])
        try:
            d.start()
            self.assertIn("readable by every user", d.log())
            d.stop()
        finally:
            d.cleanup()

    def test_config_file_metrics_auth_and_rotation(self):
        tokens = token_file()
        cfg = write_file(os.path.join(mkdtemp(), "vigild.conf"),
                         "[http]\nauth_file = %s\nmetrics_auth = true\n" % tokens)
        d = Vigild(config=cfg)
        try:
            d.start()
            self.assertEqual(d.curl("GET", "/healthz").status, 200)
            self.assertEqual(d.curl("GET", "/metrics").status, 401)
            self.assertEqual(d.curl("GET", "/metrics", *bearer(READ)).status, 200)
            # Rotation: a new file on reload; the old token stops working at once.
            new_read = "n3w-read-t0ken-DDDDDDDDDDDD"
            write_file(tokens, "read %s\nadmin %s\n" % (new_read, ADMIN))
            hup(d, "configuration reloaded")
            self.assertEqual(d.curl("GET", "/v1/devices", *bearer(READ)).status, 401)
            self.assertEqual(d.curl("GET", "/v1/devices", *bearer(new_read)).status, 200)
            # A broken token file on reload is rejected with file:line; the tokens stay.
            write_file(tokens, "read %s\nsuperuser %s\n" % (READ, WRITE))
            log = hup(d, "reload rejected")
            self.assertIn(tokens + ":2: unknown role 'superuser'", log)
            self.assertEqual(d.curl("GET", "/v1/devices", *bearer(new_read)).status, 200)
            self.assertEqual(d.curl("GET", "/v1/devices", *bearer(READ)).status, 401)
            # metrics_auth is live; so is turning authentication off.
            write_file(cfg, "[http]\nauth_file = %s\nmetrics_auth = false\n" % tokens)
            write_file(tokens, "read %s\n" % new_read)
            hup(d, "configuration reloaded")
            self.assertEqual(d.curl("GET", "/metrics").status, 200)
            self.assertEqual(d.curl("GET", "/v1/devices").status, 401)
            write_file(cfg, "[http]\n")
            log = hup(d, "authentication is off")
            self.assertEqual(d.curl("GET", "/v1/devices").status, 200)
            d.stop()
        finally:
            d.cleanup()


def raw_get(port, path="/healthz"):
    """Opens a connection and sends one GET; returns (socket, first bytes of the answer), the
    answer empty when the server closed the connection instead."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        got = s.recv(4096)
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    return s, got


class TestConnectionsPerIp(vt.DaemonTestCase):
    CONFIG = "[http]\nmax_connections_per_ip = 3\n"

    def hold(self, deadline):
        """A connection that got an answer (the server may still be reaping closed ones)."""
        while True:
            s, got = raw_get(self.d.http_port)
            if got.startswith(b"HTTP/1.1 200"):
                return s
            s.close()
            self.assertLess(time.monotonic(), deadline, "no connection admitted: %r" % got)
            time.sleep(0.05)

    def test_connections_per_ip(self):
        deadline = time.monotonic() + 10
        held = [self.hold(deadline) for _ in range(3)]
        try:
            # A fourth connection from the same address is closed without an answer.
            s, got = raw_get(self.d.http_port)
            s.close()
            self.assertEqual(got, b"")
            # One closes: a new client gets in.
            held.pop().close()
            held.append(self.hold(time.monotonic() + 10))
        finally:
            for s in held:
                s.close()


class TestLimits(vt.DaemonTestCase):
    CONFIG = """
[http]
max_header_bytes = 8192
max_query_points = 50
"""

    def test_header_size(self):
        r = self.d.curl("GET", "/healthz", "-H", "X-Pad: " + "a" * 6000)
        self.assertEqual(r.status, 200, r)
        # An oversized head is vigild's JSON 431 (414 for a long URL); libmicrohttpd's own HTML
        # only past twice the limit (test_http.py MhdErrors, docs/reliability.md).
        r = self.d.curl("GET", "/healthz", "-H", "X-Pad: " + "a" * 10000)
        self.assertJsonError(r, 431, "http.max_header_bytes (8192 bytes)")
        r = self.d.curl("GET", "/v1/devices?x=" + "a" * 10000)
        self.assertJsonError(r, 414, "http.max_header_bytes (8192 bytes)")
        # Bodies are not headers: a 1 MB body goes through the same small connection memory.
        pts = [{"device": "lim-big", "ts": i, "values": {"v": i, "w": -i}} for i in range(20000)]
        r = self.d.post_json(pts)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(self.d.readings("lim-big")), 20000)

    def test_query_caps(self):
        # A page holds at most http.max_query_points; more is a clear 400, paging goes on.
        self.assertJsonError(self.d.get("/v1/devices/lim-big/readings?limit=51"), 400, "limit")
        doc = self.d.get_json("/v1/devices/lim-big/readings?limit=50")
        self.assertEqual(len(doc["points"]), 50)
        self.assertTrue(doc["next"])
        self.assertJsonError(self.d.get("/v1/devices?limit=10001"), 400, "limit")
        self.assertJsonError(self.d.get("/v1/devices/lim-big/forecast?horizon=10001"), 400)


class TestDeviceLimits(vt.FreshDaemonTestCase):
    assertJsonError = vt.DaemonTestCase.assertJsonError

    def assertNoDevice(self, device):
        st, hdrs, body = self.d.get("/v1/devices/%s" % vt.quote(device))
        self.assertEqual(st, 404, body)

    CONF = "[storage]\nmax_devices = %d\nmax_channels_per_device = 4\n"
    CONFIG = CONF % 3

    def test_devices_and_channels(self):
        d = self.d
        r = d.post_json([{"device": "q-%d" % i, "ts": 1, "values": {"a": 1}} for i in range(3)])
        self.assertEqual(r.status, 200, r)
        # JSON: the refused items are named by index, the others stored.
        r = d.post_json([{"device": "q-new", "ts": 2, "values": {"a": 1}},
                         {"device": "q-0", "ts": 2, "values": {"b": 2, "c": 3, "d": 4}},
                         {"device": "q-1", "ts": 2, "values": {"b": 1, "c": 1, "d": 1, "e": 1}},
                         {"device": "q-0", "ts": 3, "values": {"a": 5, "e": 5}},
                         {"device": "q-2", "ts": 2, "values": {"a": "x"}}])
        self.assertEqual(r.status, 400, r)
        doc = r.json()
        self.assertEqual((doc["accepted"], doc["rejected"]), (1, 4), doc)
        errs = {e["index"]: e["error"] for e in doc["errors"]}
        self.assertEqual(sorted(errs), [0, 2, 3, 4], doc)
        self.assertIn("device limit reached: 3 devices (storage.max_devices)", errs[0])
        self.assertIn("channel limit reached: device 'q-1' would have 5 channels", errs[2])
        self.assertIn("storage.max_channels_per_device = 4", errs[3])
        self.assertIn("not a number", errs[4])
        self.assertNoDevice("q-new")
        self.assertEqual(sorted(d.device("q-0")["channels"]), ["a", "b", "c", "d"])
        self.assertEqual(d.device("q-1")["channels"], ["a"])
        # Known channels of a full device still take readings.
        r = d.post_json({"device": "q-0", "ts": 4, "values": {"a": 1, "d": 2}})
        self.assertEqual(r.status, 200, r)
        # Line protocol: InfluxDB's partial write names the first refused line.
        r = d.write_lp("m,device=q-1 a=2 10\nm,device=q-lp a=1 10\nm,device=q-2 a=3 10\n",
                       precision="ms")
        self.assertEqual(r.status, 400, r)
        self.assertIn("device limit reached", r.json()["error"])
        self.assertIn("(line 2); dropped=1", r.json()["error"])
        self.assertNoDevice("q-lp")
        self.assertEqual(len(d.readings("q-2")), 2)
        # Stream: "error N reason" for the refused line, the rest acknowledged and stored.
        c = d.stream_connect()
        c.send("m,device=q-st a=1 1700000001000000000\nm,device=q-1 a=7 1700000002000000000\n")
        got = c.finish()
        c.close()
        self.assertIn("device limit reached", vt.errors_of(got)[1])
        self.assertEqual(vt.last_ok(got), 2)
        self.assertNoDevice("q-st")
        self.assertEqual([p["ts"] for p in d.readings("q-1")], [1, 10, 1700000002000])
        # PUT of a new device: 409; a deletion frees a place.
        self.assertJsonError(d.curl("PUT", "/v1/devices/q-put", "-d", "{}"), 409, "max_devices")
        self.assertEqual(d.curl("DELETE", "/v1/devices/q-2").status, 200)
        self.assertEqual(d.curl("PUT", "/v1/devices/q-put", "-d", "{}").status, 201)
        self.assertJsonError(d.curl("PUT", "/v1/devices/q-put2", "-d", "{}"), 409)
        # The counts come back from storage after a restart.
        d.restart()
        r = d.post_json({"device": "q-after", "ts": 1, "values": {"a": 1}})
        self.assertEqual(r.status, 400, r)
        self.assertIn("device limit", r.json()["errors"][0]["error"])
        # The limits are live: a reload raises them.
        write_file(self.cfg, self.CONF % 5)
        hup(d, "configuration reloaded")
        r = d.post_json({"device": "q-after", "ts": 1, "values": {"a": 1}})
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    vt.main()

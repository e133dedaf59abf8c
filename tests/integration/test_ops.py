#!/usr/bin/env python3
"""Operations: the systemd unit (systemd-analyze), the notification protocol on a fake
NOTIFY_SOCKET (READY, STATUS, WATCHDOG period, RELOADING, STOPPING), configuration reload on
SIGHUP, bearer-token authentication and roles, and the connection and size limits.

Every daemon runs on loopback with free ports and a temporary data directory (vigiltest.py)."""

import base64
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


def start_with_env(d, env):
    """Starts d with extra environment variables (Vigild.start inherits os.environ)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        d.start()
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
        # check ExecStart= and ExecReload=, and give man(1) the page from the source tree.
        with open(UNIT) as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/bin/vigild --config /etc/vigil/vigild.conf "
                      "--data-dir /var/lib/vigil", text)
        unit = write_file(os.path.join(tmp, "vigild.service"),
                          text.replace("/usr/bin/vigild", vt.VIGILD))
        man = os.path.join(vt.REPO, "docs", "vigild.8")
        env = dict(os.environ)
        args = ["systemd-analyze", "verify"]
        if os.path.exists(man) and shutil.which("man"):
            os.makedirs(os.path.join(tmp, "man", "man8"))
            shutil.copy(man, os.path.join(tmp, "man", "man8", "vigild.8"))
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
            self.assertTrue(0.4 <= avg <= 0.65, "watchdog period %.3f s: %r" % (avg, gaps))
            self.assertLess(max(gaps), 0.95, gaps)
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

    def test_without_systemd(self):
        # No NOTIFY_SOCKET: nothing is sent, nothing breaks; SIGHUP reloads, SIGTERM stops.
        d = Vigild()
        try:
            d.start()
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


class TestReload(unittest.TestCase):
    BASE = "[daemon]\nlog_level = info\n[http]\nmax_batch = 100\nmax_body_bytes = 65536\n"

    def setUp(self):
        self.cfg = os.path.join(mkdtemp(), "vigild.conf")
        write_file(self.cfg, self.BASE)
        self.d = Vigild(config=self.cfg)
        self.d.start()

    def tearDown(self):
        try:
            self.d.stop()
        finally:
            self.d.cleanup()

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
            ("[nosuch]\nx = 1\n", ":2: unknown section [nosuch]"),
            ("[http]\nmax_batch = 5\nmax_connections\n", ":3: syntax error"),
            ("[http]\nmax_batch = 5\n[storage]\nqueue_max_readings = 2000\n"
             "[http]\nmax_batch = 3000\n", "exceeds storage.queue_max_readings"),
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
        c.send("m,device=after-reload v=1 1000000000\n")
        self.assertEqual(vt.last_ok(c.finish()), 1)
        self.assertEqual(d.get_json("/healthz")["status"], "ok")


if __name__ == "__main__":
    vt.main()

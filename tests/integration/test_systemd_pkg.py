#!/usr/bin/env python3
"""The Debian package's life under a real systemd (CTest it_systemd_pkg): what its maintainer
scripts (systemd/deb/postinst, prerm, postrm) do to vigild.service when an operator installs,
upgrades, removes and purges it, and a slow and a hung start against `TimeoutStartSec=`.

The systemd is test_systemd.py's (Container: systemd 252 as PID 1 of namespaces of its own, on
an overlay of the host's `/`; see that file's docstring), and so are the skips (77) and the
clean-up. The host's `/usr/sbin/policy-rc.d` (an image's, refusing every start and stop: exit
101) is deleted inside the overlay, as on an installed system, where there is none; with it,
deb-systemd-invoke starts, restarts and stops nothing.

TestPackageLife (in order): `dpkg -i` of the package `cpack -G DEB` makes (0.1.0), `systemctl
enable --now`, data and an LSTM; an upgrade to 0.1.0+1 (the same package, its version bumped
with dpkg-deb) while vigild runs; an upgrade to 0.1.0+2, whose shipped vigild.conf differs
(a conffile the operator edited: dpkg's prompt, non-interactively); upgrades to 0.1.0+3 and
0.1.0+4 (the conffile as 0.1.0+2's) of an enabled vigild the operator stopped (started) and of
a running one not enabled (restarted), a reinstall of 0.1.0+4 of a disabled, stopped one (left
stopped); `dpkg -r`, a reinstall (an enabled vigild started); `dpkg -P`, a reinstall (a first
install: nothing started); with a policy-rc.d refusing (exit 101) put back, an upgrade of a
running vigild and a reinstall of an enabled, stopped one (neither restarted nor started), and
a `dpkg -r` of a running one (removed, vigild not stopped). The steps are numbered test_01...
so that unittest's order by name is theirs.
TestSlowStart: 4 devices' LSTMs catching up on 480,000 readings at the start, under a drop-in
`TimeoutStartSec=2s`; a start held (VIGIL_TEST_HOLD_DIR's "lock-named" point: vigild waits
using no CPU) killed at the timeout.
"""

import json
import os
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_systemd as ts  # noqa: E402
import vigiltest as vt  # noqa: E402
from vigiltest import mkdtemp  # noqa: E402

CONF = "/etc/vigil/vigild.conf"
WANTS = "/etc/systemd/system/multi-user.target.wants/vigild.service"
POLICY = "/usr/sbin/policy-rc.d"


def rebuild(deb, out, version, conf_line=None):
    """deb rebuilt as version (dpkg-deb -R, then -b), conf_line appended to its vigild.conf."""
    root = os.path.join(out, version)
    subprocess.run(["dpkg-deb", "-R", deb, root], check=True, timeout=120)
    control = os.path.join(root, "DEBIAN", "control")
    with open(control) as f:
        text = f.read()
    with open(control, "w") as f:
        f.write("".join("Version: %s\n" % version if line.startswith("Version: ") else line
                        for line in text.splitlines(True)))
    if conf_line is not None:
        with open(os.path.join(root, CONF.lstrip("/")), "a") as f:
            f.write(conf_line + "\n")
        md5 = subprocess.run(["md5sum", CONF.lstrip("/")], cwd=root, stdout=subprocess.PIPE,
                             text=True, check=True).stdout
        sums = os.path.join(root, "DEBIAN", "md5sums")
        with open(sums) as f:
            lines = [line for line in f if not line.endswith("  " + CONF.lstrip("/") + "\n")]
        with open(sums, "w") as f:
            f.write("".join(lines) + md5)
    path = os.path.join(out, "vigil_%s.deb" % version)
    # gzip -1, not dpkg-deb's default xz: 0.2 s instead of 4 to 12 s a package here, and how the
    # package is compressed is not what the tests look at.
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "-b", root, path],
                   check=True, stdout=subprocess.DEVNULL, timeout=120)
    return path


def container_with(debs):
    """A booted Container, each deb copied to /root/NAME (and read back), no policy-rc.d (see the
    docstring), no man-db index rebuilt at each dpkg call (ts.MANDB_FLAG)."""
    c = ts.booted()
    for deb in debs:
        ts.copy_in(c, deb, "/root/" + os.path.basename(deb))
    # dpkg still runs man-db's trigger, which says "Not building database".
    ts.delete_inside(c, POLICY, ts.MANDB_FLAG)
    return c


class PackageSteps(ts.UnitHelpers):
    def dpkg(self, args):
        """dpkg run as a script would (stdin at its end: no terminal to answer a prompt)."""
        p = self.c.run("sh", "-c", "dpkg " + args, stdin=b"", timeout=300)
        return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")

    def status(self):
        """dpkg's status of vigil, e.g. "ii 0.1.0"; "" once purged."""
        code, out, _ = self.c.sh("dpkg-query -W -f '${db:Status-Abbrev}${Version}' vigil")
        return " ".join(out.split()) if code == 0 else ""

    def state(self):
        """(is-enabled, is-active) of vigild.service."""
        return tuple(self.c.sh("systemctl %s vigild" % what)[1].strip()
                     for what in ("is-enabled", "is-active"))

    def exe(self, pid):
        return self.ok("readlink /proc/%d/exe" % pid).strip()

    def vigilds(self):
        """The pids of the vigild processes running (any, not only the service's)."""
        code, out, _ = self.c.sh("pgrep -x vigild")
        return [int(p) for p in out.split()]

    def last_line(self, pid):
        return [m for _, p, m in self.journal() if p == pid][-1]

    def serves_the_data(self):
        code, body = self.http("/v1/devices/pump-7/status")
        self.assertEqual(code, 200, body)
        self.assertEqual(json.loads(body)["latest"], {"temp": 64.8, "vib": 0.022})
        code, body = self.http("/v1/devices/pump-1/status")
        self.assertEqual(json.loads(body)["model"]["kind"], "lstm", body)

    def restarted(self, pid, what):
        """After an upgrade: a new vigild, from the new file, the old one stopped cleanly."""
        new = self.main_pid()
        self.assertNotIn(new, (0, pid), what)
        self.assertEqual(self.exe(new), "/usr/bin/vigild", what)  # not "... (deleted)"
        self.assertEqual(self.vigilds(), [new], what)
        self.assertEqual(self.last_line(pid), "info  stopped cleanly", what)
        self.assertEqual(self.state(), ("enabled", "active"), what)

    def installed(self, deb, version, state):
        """dpkg -i deb: version configured, vigild.service then in state (is-enabled,
        is-active), and a vigild process only if it is active (the service's)."""
        code, out = self.dpkg("-i " + deb)
        self.assertEqual(code, 0, out)
        self.assertEqual(self.status(), "ii " + version)
        self.assertEqual(self.state(), state, out)
        self.assertEqual(self.vigilds(), [self.main_pid()] if state[1] == "active" else [])

    def policy_refusing(self, action):
        """A policy-rc.d refusing every action (exit 101, as in Debian's chroots, containers and
        image builds) put in the container's overlay (the step's finally deletes it; the host's
        is untouched). Returns deb-systemd-invoke's line refusing action on vigild.service."""
        self.ok("printf '#!/bin/sh\\nexit 101\\n' > %s && chmod 755 %s" % (POLICY, POLICY))
        return "%s returned 101, not running '%s vigild.service'" % (POLICY, action)

    def runs_on(self, args, status, pid, refused):
        """dpkg args under policy_refusing: it succeeds (vigil's status then status), and the
        service's vigild is still pid, from the replaced or removed file, the only one; dpkg's
        output has refused (deb-systemd-invoke's line)."""
        code, out = self.dpkg(args)
        self.assertEqual(code, 0, out)
        self.assertEqual(self.status(), status)
        self.assertEqual(self.main_pid(), pid, out)
        self.assertEqual(self.exe(pid), "/usr/bin/vigild (deleted)")
        self.assertEqual(self.vigilds(), [pid])
        self.assertIn(refused, out)

    def removed(self, how, status):
        """dpkg how (-r, -P) vigil: prerm stopped the running vigild cleanly, none is left."""
        pid = self.main_pid()
        code, out = self.dpkg(how + " vigil")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.status(), status)
        self.assertEqual(self.vigilds(), [])
        self.assertEqual(self.last_line(pid), "info  stopped cleanly")
        s = self.show("ActiveState", "Result", "ExecMainStatus")
        self.assertEqual((s["ActiveState"], s["Result"], s["ExecMainStatus"]),
                         ("inactive", "success", "0"))


class TestPackageLife(PackageSteps, unittest.TestCase):
    """In order: each step goes on from where the one before left the package and vigild."""

    @classmethod
    def setUpClass(cls):
        tmp = mkdtemp()
        v1 = ts.build_deb()
        cls.v2 = "/root/" + os.path.basename(rebuild(v1, tmp, "0.1.0+1"))
        cls.v3 = "/root/" + os.path.basename(rebuild(v1, tmp, "0.1.0+2", "# 0.1.0+2"))
        cls.v4 = "/root/" + os.path.basename(rebuild(v1, tmp, "0.1.0+3", "# 0.1.0+2"))
        cls.v5 = "/root/" + os.path.basename(rebuild(v1, tmp, "0.1.0+4", "# 0.1.0+2"))
        debs = [v1] + [os.path.join(tmp, os.path.basename(d))
                       for d in (cls.v2, cls.v3, cls.v4, cls.v5)]
        cls.v1 = "/root/" + os.path.basename(v1)
        cls.c = container_with(debs)

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def test_01_first_install(self):
        """postinst: "A first install only tells systemd about the unit": loaded, not enabled,
        not started; the operator edits the configuration and enables it."""
        code, out = self.dpkg("-i " + self.v1)
        self.assertEqual(code, 0, out)
        self.assertEqual(self.status(), "ii 0.1.0")
        self.assertEqual(self.state(), ("disabled", "inactive"))
        self.assertEqual(self.show("LoadState")["LoadState"], "loaded")
        self.assertEqual(self.vigilds(), [])
        ts.installed_binary(self.c)
        ts.lstm_conf(self.c)  # the operator's edit of the conffile
        self.ok("systemctl enable --now vigild")
        self.assertEqual(self.state(), ("enabled", "active"))
        code, body = self.http("/v1/readings",
                               [{"device": "pump-7", "values": {"temp": 64.8, "vib": 0.022}}])
        self.assertEqual(code, 200, body)
        self.assertIn("errors=0", self.ok("vigil-sim --devices 2 --backfill 900 --duration 930 "
                                          "--speed 0 --fault-at -1 2>&1"))

        def lstm():
            code, body = self.http("/v1/devices/pump-1/status")
            return code == 200 and json.loads(body)["model"]["kind"] == "lstm"
        self.wait_for("pump-1 serving an LSTM", lstm, 120)

    def test_02_upgrade(self):
        """postinst on an upgrade: restart, so the new binary serves; the data, the model
        and the operator's edit kept (the shipped vigild.conf unchanged: no prompt)."""
        pid = self.main_pid()
        code, out = self.dpkg("-i " + self.v2)
        self.assertEqual(code, 0, out)
        self.assertEqual(self.status(), "ii 0.1.0+1")
        self.restarted(pid, out)
        self.serves_the_data()
        self.ok("grep -qx 'kind = lstm' " + CONF)
        self.assertEqual(self.ok("ls /etc/vigil").split(), ["vigild.conf"])

    def test_03_upgrade_new_conffile(self):
        """A new package's vigild.conf differs from the edited one: dpkg asks, and without a
        terminal the upgrade stops unconfigured, the old vigild running from the deleted file;
        --force-confold keeps the edit and configures it (postinst restarts vigild)."""
        pid = self.main_pid()
        code, out = self.dpkg("-i " + self.v3)
        self.assertNotEqual(code, 0, out)
        self.assertIn("end of file on stdin at conffile prompt", out)
        self.assertEqual(self.status(), "iU 0.1.0+2")
        self.assertEqual(self.main_pid(), pid)
        self.assertEqual(self.exe(pid), "/usr/bin/vigild (deleted)")
        code, out = self.dpkg("--force-confold --configure vigil")
        self.assertEqual(code, 0, out)
        self.assertEqual(self.status(), "ii 0.1.0+2")
        self.restarted(pid, out)
        self.serves_the_data()
        self.ok("grep -qx 'kind = lstm' %s && ! grep -q '^# 0.1.0+2$' %s && "
                "grep -qx '# 0.1.0+2' %s.dpkg-dist" % (CONF, CONF, CONF))

    def test_04_upgrade_enabled_stopped(self):
        """An enabled vigild the operator stopped is started by an upgrade, as debhelper's
        snippet does (before session 55, try-restart left it stopped until the next boot)."""
        self.ok("systemctl stop vigild")
        self.assertEqual(self.state(), ("enabled", "inactive"))
        self.installed(self.v4, "0.1.0+3", ("enabled", "active"))
        self.serves_the_data()

    def test_05_upgrade_started_by_hand(self):
        """A vigild running but not enabled (started by hand) is restarted by an upgrade, so the
        new binary serves; it stays not enabled."""
        # start: a no-op after test_04; each step from here stands if the one before failed.
        self.ok("systemctl start vigild && systemctl disable vigild")
        self.assertEqual(self.state(), ("disabled", "active"))
        pid = self.main_pid()
        code, out = self.dpkg("-i " + self.v5)
        self.assertEqual(code, 0, out)
        self.assertEqual(self.status(), "ii 0.1.0+4")
        new = self.main_pid()
        self.assertNotIn(new, (0, pid), out)
        self.assertEqual(self.exe(new), "/usr/bin/vigild")  # not "... (deleted)"
        self.assertEqual(self.vigilds(), [new])
        self.assertEqual(self.last_line(pid), "info  stopped cleanly")
        self.assertEqual(self.state(), ("disabled", "active"))
        self.serves_the_data()

    def test_06_reinstall_disabled_stopped(self):
        """A disabled, stopped vigild stays stopped at a configure with a previous version (here
        `dpkg -i` of the installed 0.1.0+4 again: postinst configure 0.1.0+4)."""
        try:
            # disable: a no-op after test_05 (see there).
            self.ok("systemctl disable --now vigild")
            self.assertEqual(self.state(), ("disabled", "inactive"))
            self.installed(self.v5, "0.1.0+4", ("disabled", "inactive"))
        finally:  # test_07 needs an enabled, running vigild, even if this step failed
            code, out, err = self.c.sh("systemctl enable --now vigild")
        self.assertEqual(code, 0, out + err)

    def test_07_remove_reinstall(self):
        """prerm stops vigild cleanly; the data, the configuration and the enablement stay; a
        reinstall (postinst configure from config-files, with the removed version) starts the
        enabled vigild, as debhelper's snippet does (before session 55 it stayed stopped)."""
        self.removed("-r", "rc 0.1.0+4")
        self.ok("test -f %s && test -L /var/lib/vigil && test -f %s && test -L %s"
                % (ts.DB, CONF, WANTS))
        self.installed(self.v5, "0.1.0+4", ("enabled", "active"))
        self.serves_the_data()

    def test_08_purge_reinstall(self):
        """README "Under systemd": a purge keeps the database in /var/lib/vigil; postrm drops the
        enablement link; dpkg deletes the conffile. A reinstall is a first install again, and
        serves the kept database once enabled."""
        self.ok("systemctl start vigild")  # a no-op after test_07 (see test_05)
        self.removed("-P", "")
        self.ok("test -f %s && test -L /var/lib/vigil && ! test -e %s && ! test -L %s && "
                "! test -e /etc/vigil" % (ts.DB, WANTS, WANTS))
        self.assertEqual(self.show("LoadState")["LoadState"], "not-found")
        self.installed(self.v3, "0.1.0+2", ("disabled", "inactive"))
        self.ok("systemctl enable --now vigild")
        self.serves_the_data()

    def test_09_policy_rc_d(self):
        """A policy-rc.d refusing every action (exit 101, as in Debian's chroots, containers and
        image builds) keeps an upgrade from restarting a running vigild and a reinstall from
        starting an enabled, stopped one: postinst acts only through deb-systemd-invoke, which
        asks it first."""
        self.ok("systemctl enable --now vigild")  # a no-op after test_08 (see test_05)
        pid = self.main_pid()
        refused = self.policy_refusing("restart")
        try:
            # 0.1.0+2 (test_08) to 0.1.0+4; not restarted: the old vigild runs on from the
            # replaced file.
            self.runs_on("-i " + self.v5, "ii 0.1.0+4", pid, refused)
            self.ok("systemctl stop vigild")
            self.assertEqual(self.state(), ("enabled", "inactive"))
            # Without the policy this starts it (test_04, test_07).
            self.installed(self.v5, "0.1.0+4", ("enabled", "inactive"))
        finally:  # the host's policy-rc.d is untouched: this one is in the overlay only
            code, out, err = self.c.sh("rm -f %s && systemctl start vigild" % POLICY)
        self.assertEqual(code, 0, out + err)
        self.serves_the_data()

    def test_10_remove_under_policy_rc_d(self):
        """`dpkg -r` under a policy-rc.d refusing (exit 101): prerm asks through
        deb-systemd-invoke, as debhelper's snippet does (dh_installsystemd's prerm: `stop ...
        || true`), which runs nothing and exits 0. So the removal succeeds, and vigild runs on
        from the deleted file, as the policy asks (a chroot's or an image build's daemons are
        not the package's to stop); the operator stops it (cleanly: the unit's file is gone but
        systemd still has it loaded), and a reinstall without the policy starts it (test_07)."""
        self.ok("systemctl enable --now vigild")  # a no-op after test_09 (see test_05)
        pid = self.main_pid()
        refused = self.policy_refusing("stop")
        try:
            # Not stopped: the same vigild, from the removed file, still the service's.
            self.runs_on("-r vigil", "rc 0.1.0+4", pid, refused)
            self.assertEqual(self.show("ActiveState", "LoadState"),
                             {"ActiveState": "active", "LoadState": "not-found"})
            self.ok("systemctl stop vigild")
            self.assertEqual(self.vigilds(), [])
            self.assertEqual(self.last_line(pid), "info  stopped cleanly")
        finally:  # the host's policy-rc.d is untouched: this one is in the overlay only
            code, out, err = self.c.sh("rm -f %s" % POLICY)
        self.assertEqual(code, 0, out + err)
        self.installed(self.v5, "0.1.0+4", ("enabled", "active"))
        self.serves_the_data()


class TestSlowStart(PackageSteps, unittest.TestCase):
    """As test_watchdog.py TestStartupExtension: 4 devices, each with a large LSTM, catch up on
    120,000 readings stored while the model was off; here under systemd, whose TimeoutStartSec=
    (2 s in a drop-in) the start outlasts. Then a start held without CPU, killed at the timeout."""
    DEVICES = 4
    LATER = 120000
    BASE = "[model]\\nwarmup = 100\\nretrain_every = 0\\nhidden = 400\\nkind = lstm\\n"
    DROPIN = "/etc/systemd/system/vigild.service.d/start.conf"

    @classmethod
    def setUpClass(cls):
        deb = ts.build_deb()
        cls.c = container_with([deb])
        code, out, err = cls.c.sh("dpkg -i /root/" + os.path.basename(deb))
        assert code == 0, out + err

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def conf(self, extra=""):
        self.ok("printf '%s%s' > %s" % (self.BASE, extra, CONF))

    def write(self, first, count):
        """count readings per device from index first, 20,000 lines per /write request."""
        code = (
            "import urllib.request\n"
            "for k in range(%d):\n"
            "    for c in range(%d, %d, 20000):\n"
            "        body = ''.join('m,device=x%%d a=%%f,b=%%f %%d\\n' %% (k, (i %% 50) / 10, "
            "(i %% 7) / 3, 1700000000000 + i * 1000) for i in range(c, min(c + 20000, %d)))\n"
            "        r = urllib.request.urlopen(urllib.request.Request("
            "'http://127.0.0.1:8470/write?db=db&precision=ms', body.encode()), timeout=60)\n"
            "        assert r.status == 204, r.status\n"
            % (self.DEVICES, first, first + count, first + count))
        p = self.c.run("python3", "-c", code, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_1_slow_start(self):
        self.conf()
        self.ok("systemctl start vigild")
        self.write(0, 400)

        def trained():
            for k in range(self.DEVICES):
                code, body = self.http("/v1/devices/x%d/status" % k)
                if code != 200 or not (json.loads(body).get("model") or {}).get("version"):
                    return False
            return True
        self.wait_for("4 detectors trained", trained, 120)
        self.ok("systemctl stop vigild")
        self.conf("enabled = false\\n")
        self.ok("systemctl start vigild")
        self.write(400, self.LATER)
        self.ok("systemctl stop vigild")
        self.conf()
        self.ok("mkdir -p %s && printf '[Service]\\nTimeoutStartSec=2s\\n' > %s && "
                "systemctl daemon-reload" % (os.path.dirname(self.DROPIN), self.DROPIN))
        self.assertEqual(self.show("TimeoutStartUSec")["TimeoutStartUSec"], "2s")
        self.ok("systemctl start vigild", timeout=300)
        s = self.show("ActiveState", "NRestarts", "ExecMainStartTimestampMonotonic",
                      "ActiveEnterTimestampMonotonic", "MainPID")
        took = (int(s["ActiveEnterTimestampMonotonic"]) -
                int(s["ExecMainStartTimestampMonotonic"])) / 1e6
        self.assertEqual((s["ActiveState"], s["NRestarts"]), ("active", "0"))
        rows = self.journal()
        pid = int(s["MainPID"])
        self.assertTrue(any("caught up" in m for _, p, m in rows if p == pid), rows[-10:])
        self.assertFalse([m for _, p, m in rows if p == 1 and "timed out" in m])
        # What the start's length proves: past TimeoutStartSec=2s, the first EXTEND_TIMEOUT_USEC=
        # (10 s, sent at once) was needed; past 10 s, the periodic ones too. A machine fast
        # enough to start sooner proves less, and says so instead of failing or passing as if.
        if took <= 2.5:
            self.skipTest("start-up took %.1f s, within TimeoutStartSec=2s: no extension was "
                          "needed, nothing shown" % took)
        sys.stderr.write("\nstart-up under systemd: %.1f s: %s\n" % (took, (
            "the periodic extensions were needed (past the first one's 10 s)" if took > 10.5
            else "only the first extension was needed (the periodic ones not shown)")))

    def test_2_hung_start(self):
        self.ok("systemctl stop vigild && mkdir -p /run/vigil-hold && touch "
                "/run/vigil-hold/lock-named && printf '[Service]\\nTimeoutStartSec=2s\\n"
                "Environment=VIGIL_TEST_HOLD_DIR=/run/vigil-hold\\n' > %s && "
                "systemctl daemon-reload" % self.DROPIN)
        t0 = time.monotonic()
        code, out, err = self.c.sh("systemctl start vigild", timeout=120)
        took = time.monotonic() - t0
        sys.stderr.write("\nheld start failed after %.1f s\n" % took)
        self.assertNotEqual(code, 0, out + err)
        rows = self.journal()
        sysd = [m for _, p, m in rows if p == 1]
        self.assertIn("vigild.service: start operation timed out. Terminating.", sysd)
        self.assertTrue(any("vigild.service: Failed with result 'timeout'." == m for m in sysd),
                        sysd[-10:])
        own = [m for _, p, m in rows if p > 1]
        self.assertIn("warn  storage: VIGIL_TEST_HOLD_DIR is set (a test hook): waiting at "
                      "'lock-named'", own)
        self.assertTrue(any("no progress (under 20 ms of CPU in 2000 ms)" in m for m in own), own[-10:])
        # Killed at the first extension's 10 s (sent at once), not TimeoutStartSec=2s's; an
        # extension sent without CPU used would have carried the start to the hold's end (60 s)
        # and 'active' (code 0, no 'timeout' above). No bound on took: the journal says it.
        self.ok("rm -r /run/vigil-hold %s && systemctl daemon-reload && systemctl reset-failed "
                "vigild; systemctl restart vigild" % self.DROPIN)
        self.assertEqual(self.state()[1], "active")


if __name__ == "__main__":
    ts.main("the package")

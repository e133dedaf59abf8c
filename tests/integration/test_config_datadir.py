#!/usr/bin/python3
"""vigild integration: the data directory at the start and in --check-config: start-up
refusals that touch nothing (StartupRefusals) and the check finding what the start would fail
on (CheckConfigDataDir). Moved unchanged from test_config.py (session 51, task code8: that file
had grown past the size limit), whose run() and CWD they use."""

import fcntl
import os
import pwd
import shutil
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from test_config import CWD, run  # noqa: E402  (the helpers only: its TestCases are not collected)


class StartupRefusals(unittest.TestCase):
    """Start-up fails cleanly (nonzero exit, a reason naming the place) and touches nothing."""

    def start_fails(self, data_dir, *words):
        rc, out, err = run("--data-dir", data_dir, "--http", "127.0.0.1:0", "--stream", "off")
        self.assertNotEqual(rc, 0, err)
        for w in words:
            self.assertIn(w, err)
        return err

    def digest(self, path):
        import hashlib
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def test_data_dir_is_a_file(self):
        tmp = vt.mkdtemp()
        path = vt.write_file(os.path.join(tmp, "plain-file"), "not a directory\n")
        self.start_fails(path, path)

    def test_not_a_database(self):
        tmp = vt.mkdtemp()
        db = vt.write_file(os.path.join(tmp, "vigil.db"), os.urandom(8192), "wb")
        before = self.digest(db)
        self.start_fails(tmp, tmp)
        self.assertEqual(self.digest(db), before, "a refused database was modified")

    def test_newer_schema_refused(self):
        d = vt.Vigild(stream=False)
        try:
            d.start()
            r = d.post_json({"device": "sv-1", "ts": 1, "values": {"a": 1}})
            self.assertEqual(r.status, 200, r)
            d.stop()
            ver = subprocess.run(["sqlite3", d.db_path, "PRAGMA user_version;"],
                                 stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
            subprocess.run(["sqlite3", d.db_path, "PRAGMA user_version=%d;" % (int(ver) + 100)],
                           check=True)
            before = self.digest(d.db_path)
            self.start_fails(d.data_dir, "version")
            self.assertEqual(self.digest(d.db_path), before, "a refused database was modified")
            subprocess.run(["sqlite3", d.db_path, "PRAGMA user_version=%s;" % ver], check=True)
            d.start()
            self.assertEqual(d.device("sv-1")["points"], 1)
            d.stop()
        finally:
            d.cleanup()


class CheckConfigDataDir(unittest.TestCase):
    """--check-config looks at the data directory as the start would use it, creating nothing:
    each case a start fails on fails the check too, naming the path and the reason (before, the
    check said "configuration ok" and the start then failed). A directory a running vigild holds
    is reported, not failed: the unit's ExecReload= runs the check beside its own vigild."""

    def check(self, data_dir, as_user=(), journal=False, cwd=CWD):
        """Runs the check (from cwd); with journal, its stderr is a file named by
        $JOURNAL_STREAM, as systemd's journal stream is under the unit's ExecReload=."""
        cmd = list(as_user) + [vt.VIGILD, "--check-config", "--data-dir", data_dir]
        if not journal:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=30, cwd=cwd)
            return p.returncode, p.stdout, p.stderr
        path = os.path.join(vt.mkdtemp(), "stderr")
        with open(path, "w") as err:
            st = os.fstat(err.fileno())
            env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=err, text=True, timeout=30, cwd=CWD, env=env)
        with open(path) as f:
            return p.returncode, p.stdout, f.read()

    def refused(self, data_dir, reason, as_user=(), start_says=None):
        rc, out, err = self.check(data_dir, as_user)
        self.assertEqual((rc, out, err), (1, "", "vigild: data directory: %s\n" % reason))
        # The start fails on it as well: the check is no stricter than the start.
        p = subprocess.run(list(as_user) + [vt.VIGILD, "--data-dir", data_dir, "--http",
                                            "127.0.0.1:0", "--stream", "off"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60, cwd=CWD)
        self.assertEqual(p.returncode, 1, p.stderr)
        if start_says:
            self.assertIn(start_says, p.stderr)

    def test_refusals(self):
        tmp = vt.mkdtemp()
        missing = os.path.join(tmp, "no-parent", "data")
        # The start names the missing parent too (read68b: "creating DIR: No such file or
        # directory", as if DIR itself should have been there).
        self.refused(missing, "%s does not exist and cannot be created: %s: No such file or "
                     "directory" % (missing, os.path.dirname(missing)),
                     start_says="creating %s: its parent %s does not exist"
                     % (missing, os.path.dirname(missing)))
        self.assertFalse(os.path.exists(os.path.dirname(missing)))
        path = vt.write_file(os.path.join(tmp, "plain-file"), "x\n")
        self.refused(path, "%s: not a directory" % path)
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        os.mkdir(os.path.join(data, "vigil.db"))
        self.refused(data, "%s/vigil.db: not a regular file (a directory, device, FIFO or "
                     "socket)" % data)
        os.rmdir(os.path.join(data, "vigil.db"))
        os.unlink(os.path.join(data, "vigil.lock"))  # the refused start's
        os.symlink(os.path.join(tmp, "elsewhere"), os.path.join(data, "vigil.lock"))
        self.refused(data, "%s/vigil.lock: not a regular file (a symbolic link)" % data)
        os.unlink(os.path.join(data, "vigil.lock"))
        dangling = os.path.join(tmp, "dangling")
        os.symlink(os.path.join(tmp, "gone"), dangling)
        self.refused(dangling, "%s: a symbolic link to a missing directory" % dangling)
        self.assertEqual(self.check(data), (0, "configuration ok\n", ""))
        self.assertEqual(sorted(os.listdir(data)), [], "the check created files")

    def test_relative_folder_named_absolute(self):
        """A relative data folder is named absolute in the check's answers, as the serving line
        and the store name it (task ops68: before, as typed, relative to a working directory the
        answer did not say; under systemd's ExecReload=, /)."""
        tmp = os.path.realpath(vt.mkdtemp())
        rc, out, err = self.check("./no-parent/data", cwd=tmp)
        self.assertEqual((rc, out, err), (1, "", "vigild: data directory: %s/no-parent/data does "
                                          "not exist and cannot be created: %s/no-parent: No "
                                          "such file or directory\n" % (tmp, tmp)))
        vt.write_file(os.path.join(tmp, "plain-file"), "x\n")
        self.assertEqual(self.check("plain-file", cwd=tmp),
                         (1, "", "vigild: data directory: %s/plain-file: not a directory\n"
                          % tmp))
        self.assertEqual(self.check("data", cwd=tmp), (0, "configuration ok\n", ""))
        self.assertEqual(os.listdir(tmp), ["plain-file"], "the check created files")

    def test_kernel_filesystems(self):
        # Root passes faccessat's W_OK on /proc and /sys, where no file can be created: the
        # check said "configuration ok" and the start then failed (session 66). Their magic
        # numbers refuse them for every user.
        for d, fs in (("/proc", "proc"), ("/sys", "sysfs")):
            if not os.path.ismount(d):
                self.skipTest("%s is not mounted here" % d)
            out = subprocess.run(["stat", "-f", "-c", "%T", d], capture_output=True, text=True)
            if out.stdout.strip() != fs:
                self.skipTest("%s is %r here, not %s" % (d, out.stdout.strip(), fs))
            self.refused(d, "%s: on %s, a kernel filesystem where no database can be created, "
                         "whatever the permissions" % (d, fs))
            missing = os.path.join(d, "vigil-data")
            self.refused(missing, "%s does not exist and cannot be created in %s: %s is a kernel "
                         "filesystem where no database can be created, whatever the permissions"
                         % (missing, d, fs))

    def as_other_user(self, tmp):
        """The command prefix that runs the check as a user who cannot write a 0555 directory,
        and that user's "user NAME (uid N)": nobody through setpriv when root."""
        uid = os.geteuid()
        as_user = ()
        if uid == 0:  # root writes anywhere: check as nobody
            if shutil.which("setpriv") is None:
                self.skipTest("root without setpriv (util-linux) cannot drop privileges")
            uid = 65534
            as_user = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
            os.chmod(tmp, 0o755)
            if subprocess.run(list(as_user) + [vt.VIGILD, "--version"], cwd=CWD,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
                self.skipTest("nobody cannot run %s" % vt.VIGILD)
        try:
            who = "user %s (uid %d)" % (pwd.getpwuid(uid).pw_name, uid)
        except KeyError:
            who = "uid %d" % uid
        return as_user, who

    def test_not_writable(self):
        # The reason ends with the user the check ran as: permissions are that user's, and an
        # administrator checking under their own account may be refused where the service's
        # user is not (it said only "Permission denied").
        tmp = vt.mkdtemp()
        data = os.path.join(tmp, "data")
        os.mkdir(data, 0o555)
        as_user, who = self.as_other_user(tmp)
        self.refused(data, "%s: Permission denied (the database is created and written there); "
                     "checked as %s" % (data, who), as_user)
        self.refused(os.path.join(data, "sub"), "%s/sub does not exist and cannot be created in "
                     "%s: Permission denied; checked as %s" % (data, data, who), as_user)

    def held_and_not_writable(self, journal=False):
        """A data directory held by a flock like vigild's, read-only to the user the check runs
        as: the check's (rc, out, err), the directory, that user's prefix and name."""
        tmp = vt.mkdtemp()
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        lock = vt.write_file(os.path.join(data, "vigil.lock"), "")
        os.chmod(lock, 0o644)
        os.chmod(data, 0o555)
        as_user, who = self.as_other_user(tmp)
        with open(lock) as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return self.check(data, as_user, journal), data, as_user, who

    def test_held_and_not_writable(self):
        # A directory a vigild holds that a restart could not use (read-only under it): said
        # beside the held lock, exit 0, as the unit's ExecReload= runs this check and a reload
        # rereads only the configuration (a token revoked must not wait for the disk). It
        # failed, so `systemctl reload` did.
        (rc, out, err), data, as_user, who = self.held_and_not_writable()
        # What a restart would fail on is a warning on stderr (the journal's priority 4; it
        # was info on stdout, unseen by `journalctl -p warning`); the exit stays 0.
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "configuration ok; %s/vigil.lock is held: a vigild runs on this "
                         "data directory (another would not start on it)\n" % data)
        self.assertEqual(err, "vigild: warning: a restart would fail: %s: Permission denied (the "
                         "database is created and written there); checked as %s\n" % (data, who))
        # Released: the same directory fails the check.
        rc, out, err = self.check(data, as_user)
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("Permission denied", err)

    def test_held_and_not_writable_to_journal(self):
        # Under systemd (stderr the journal's stream) the warning carries the journal's warning
        # prefix, so `journalctl -p warning` shows what a restart would fail on beside the
        # reload; the "configuration ok" line on stdout has none.
        (rc, out, err), data, _, who = self.held_and_not_writable(journal=True)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith("configuration ok; "), out)
        self.assertEqual(err, "<4>vigild: warning: a restart would fail: %s: Permission denied "
                         "(the database is created and written there); checked as %s\n"
                         % (data, who))

    def test_held_by_a_running_vigild(self):
        d = vt.Vigild(stream=False)
        try:
            d.start()
            rc, out, err = self.check(d.data_dir)
            self.assertEqual((rc, err), (0, ""))
            self.assertEqual(out, "configuration ok; %s/vigil.lock is held: a vigild runs on this "
                             "data directory (another would not start on it)\n" % d.data_dir)
            d.stop()
            self.assertEqual(self.check(d.data_dir), (0, "configuration ok\n", ""))
        finally:
            d.cleanup()


if __name__ == "__main__":
    vt.main()

#!/usr/bin/python3
"""vigild integration: the data folder's file modes, whatever the umask (session 52, task files1).

- Modes (FileModes.test_modes_under_umask_022): vigild started under umask 022 (the default of
  a shell; systemd's unit sets UMask=0027) with a data_dir written with a trailing slash. After
  a write, a sweep of retention (its clock file) and a snapshot, every file in the data folder
  has the mode README states: the database, its -wal and -shm, the lock and retention's clock
  0640, the folder 0750, snapshots/ 0700 and a snapshot 0600; no other file is there. The log
  and the snapshot's answer show no "//". A restore run under umask 077 leaves vigil.db 0640
  too. Before, under umask 022, SQLite made the database and its -wal and -shm 0644 (readable
  by every local user), retention's clock 0644, and the paths were "data//vigil.db".
- Wider modes (FileModes.test_wider_mode_tightened): a database and -wal left by an older
  vigild open to other users (0644, 0664) lose those bits at the next start, group bits kept
  (0640, 0660), with one warning per file naming the modes; the start after says nothing. A
  vigil.lock 0604 likewise becomes 0600 (a lock others may open, others may flock: a vigild
  stopped could not start again while they hold it).
- Links (FileModes.test_links_refused): a vigil.db, -wal or -shm that is a symbolic link stops
  the start with --check-config's words, and its target is not created.
"""

import os
import stat
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
from test_backup import snap  # noqa: E402
from test_retention import metric  # noqa: E402

CONF = "[model]\nenabled = false\n[storage]\nretention = 1d\n"


def umask(mask):
    return lambda: os.umask(mask)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class FileModes(vt.LogOnFailure):
    def start(self, conf, data_dir=None, mask=0o022):
        tmp = vt.mkdtemp()
        path = vt.write_file(os.path.join(tmp, "vigild.conf"), conf)
        self.d = d = vt.Vigild(data_dir=data_dir, config=path, stream=False,
                                    preexec_fn=umask(mask))
        self.addCleanup(d.cleanup)
        return d.start()

    def test_modes_under_umask_022(self):
        tmp = vt.mkdtemp()
        data = os.path.join(tmp, "data")
        d = self.start(CONF, data_dir=data + "/")
        r = d.post_json([{"device": "fm-1", "ts": vt.now_ms() - i * 1000, "values": {"v": i}}
                         for i in range(100)])
        self.assertEqual(r.status, 200, r)
        tp.wait_for("a sweep of retention (its clock saved)",
                    lambda: metric(d.metrics(), "vigil_store_retention_sweeps_total") >= 1, 30)
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        self.assertEqual(d.device("fm-1")["points"], 100)  # the WAL and shared memory in use
        want = {"": 0o750, "vigil.db": 0o640, "vigil.db-wal": 0o640, "vigil.db-shm": 0o640,
                "vigil.lock": 0o640, "retention-clock": 0o640, "snapshots": 0o700,
                os.path.join("snapshots", os.path.basename(doc["path"])): 0o600}
        got = {}
        for top, dirs, files in os.walk(data):
            for name in [""] if top == data else []:
                got[name] = mode(top)
            for name in dirs + files:
                path = os.path.join(top, name)
                got[os.path.relpath(path, data)] = mode(path)
        self.assertEqual({k: "%04o" % v for k, v in got.items()},
                         {k: "%04o" % v for k, v in want.items()})
        self.assertNotIn("//", doc["path"])
        d.stop()
        self.assertNotIn("//", d.log().replace("http://", ""))
        self.assertIn("storage: opened %s/vigil.db" % data, d.log())
        p = subprocess.run([vt.VIGILD, "--data-dir", data + "/", "--restore", doc["path"]],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120, preexec_fn=umask(0o077))
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertNotIn("//", p.stdout)
        self.assertEqual("%04o" % mode(os.path.join(data, "vigil.db")), "0640")

    def test_wider_mode_tightened(self):
        d = self.start(CONF)
        r = d.post_json({"device": "fm-2", "ts": vt.now_ms(), "values": {"v": 1}})
        self.assertEqual(r.status, 200, r)
        d.kill()  # the -wal and -shm stay
        db = d.db_path
        os.chmod(db, 0o644)
        os.chmod(db + "-wal", 0o664)
        os.chmod(os.path.join(d.data_dir, "vigil.lock"), 0o604)
        d.start()
        self.assertEqual("%04o %04o" % (mode(db), mode(db + "-wal")), "0640 0660")
        self.assertEqual("%04o" % mode(os.path.join(d.data_dir, "vigil.lock")), "0600")
        self.assertEqual(d.device("fm-2")["points"], 1)
        self.assertIn("storage: %s was mode 0644, open to every local user: now 0640" % db,
                      d.log())
        self.assertIn("storage: %s-wal was mode 0664, open to every local user: now 0660" % db,
                      d.log())
        self.assertIn("storage: %s/vigil.lock was mode 0604, open to every local user: now 0600"
                      % d.data_dir, d.log())
        d.stop()
        d.start()
        self.assertEqual(d.log().count("open to every local user"), 3)
        d.stop()

    def test_links_refused(self):
        """A vigil.db, -wal or -shm that is a symbolic link stops the start, as --check-config
        says it would; the link's target is left as it was (review of files1: SQLite followed a
        link to vigil.db, and created a dangling one's target 0644)."""
        tmp = vt.mkdtemp()
        data = os.path.join(tmp, "data")
        os.mkdir(data, 0o750)
        for name in ("vigil.db", "vigil.db-wal", "vigil.db-shm"):
            target = os.path.join(tmp, "target")  # missing: SQLite would create it
            link = os.path.join(data, name)
            os.symlink(target, link)
            p = subprocess.run([vt.VIGILD, "--data-dir", data, "--http", "127.0.0.1:0",
                                "--stream", "off"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=60, cwd=tmp, preexec_fn=umask(0o022))
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("%s: not a regular file (a symbolic link)" % link, p.stdout)
            self.assertFalse(os.path.lexists(target), name)
            os.unlink(link)
            if name == "vigil.db":  # the -wal and -shm links beside a real database
                vt.write_file(link, "")


if __name__ == "__main__":
    unittest.main()

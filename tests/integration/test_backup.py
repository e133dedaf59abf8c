#!/usr/bin/python3
"""vigild integration: online backup (POST /v1/admin/snapshot) and restore.

- Restore (Backup.test_snapshot_under_ingest_restores): devices with a serving model, an
  anomaly event and a scheduled maintenance period; while a bounded feeder POSTs readings (each
  answer must be 200), a snapshot is taken (200, {"path", "bytes", "took_ms", "time"}; the file
  0600 in a 0700 folder under the data folder). vigild stops; `PRAGMA integrity_check` of the
  copy says ok; the copy, as vigil.db of a fresh data folder, starts a second vigild (another
  port) that has every reading acknowledged before the snapshot was asked for, the model
  versions, the event, the maintenance period and the detectors' state (readings scored), and
  scores new readings (status serving, predictions).
- Busy (Backup.test_one_at_a_time): the test holds SQLite's write lock from a connection of its
  own (BEGIN IMMEDIATE; well under the writer's 10 s busy timeout), so a first snapshot waits
  in its flush of the detectors' saves (vigil_snapshot_in_progress 1); a second one meanwhile
  is a 409. The lock released, the first completes (200).
- vigild --restore FILE (Backup.test_restore_command): refused (exit 1, saying why) while a
  vigild runs on the folder, for a database that is not vigil's, a file that is not one, and a
  live database (a WAL beside it); after kill -9 (a WAL holding a newer reading) it puts the
  snapshot in place (owned as the file it replaced, when run as root) and removes the WAL, and
  the next start serves the snapshot's readings. A copy taken while vigild wrote
  (Backup.test_restore_refuses_a_copy_taken_mid_write): the data folder copied under a running
  vigild (a WAL beside vigil.db), a snapshot copied mid-transaction (a hot rollback journal
  beside it) are refused naming that file, the source left as it was; the same files once
  stopped (journal rolled back, vigild stopped) are restored. A final rename that fails
  (Backup.test_failed_swap_keeps_wal) puts the WAL and shared memory back. Links planted in
  the data folder (Backup.test_restore_follows_no_link): a link at vigil.lock is refused (its
  missing target not created), one at .vigil.db.restore removed (its target unchanged;
  vigil.db a file). Not a regular file (Backup.test_restore_refuses_what_is_not_a_file): a
  FIFO (the restore hung), a directory or a device as the source, a FIFO or a directory as its
  -wal or -journal, is refused naming it and what it is, within a bounded run.
  As root (Backup.test_restore_as_root_owner, else skipped): a folder that does not exist is
  refused, not created; in an empty folder of another user's, vigil.lock and vigil.db are that
  user's.
- Stop (Backup.test_stop_cancels): the same hold keeps a snapshot running when SIGTERM comes;
  it fails without a copy (the JSON 503 naming the stop; session 54: a closed connection is no
  longer accepted, api_stop waits for the answers it began), vigild exits 0 and
  logs it, and no snapshot file nor temporary file is left. (The copy itself also polls the stop and is interrupted: tried by
  hand on a large database, see docs/reliability.md; not in this test, whose timing it would
  make depend on the machine.)
- Keep, methods, body (Backup.test_keep_list_methods): storage.snapshots_keep = 2 keeps the two
  newest of four (a file of the operator's in the folder stays); GET /v1/admin/snapshots lists
  them newest first; 405 with Allow; a body other than none or {} is a 400 naming it.
- Partial listing (Backup.test_no_prune_from_a_partial_listing): with more snapshot files than
  vigild lists (10,000), none is pruned and the log says why.
- Start (Backup.test_start_sweeps_tmp_and_file_uri): a crash's temporary file (and its
  -journal, -wal, -shm: session 68) is removed at start; a restore source named "file:..."
  (relative) is read as that file, not as an SQLite URI.
- Clock stepped back (Backup.test_clock_stepped_back): with two snapshots named in the future
  and keep = 2, a new snapshot survives its own pruning (it and the newest other are kept); at
  start the last success is the newest file's modification time, capped at now.
- Auth (Auth): with tokens, no token 401, read 403, admin 200, for both routes.
- Full volume (FullVolume): the data folder on a small tmpfs (root only, else skipped), filled
  but for 64 KiB: a snapshot is a 507 with Retry-After, no partial file is left, readings still
  answer; space back, the next snapshot is a 200. Filled but for 1 MiB (room for ingest, not
  for a copy and its margin): the snapshot is refused before it starts (507, the log says
  "not enough free space"), readings are still stored.
- Schedule (ScheduledSnapshots, storage.snapshot_every = 1s, the smallest allowed): the first
  is named with a time at least one interval after the database opened (not at start); each is
  counted (vigil_snapshots_total{result="ok"} = the log's "scheduled snapshot taken" lines),
  named as the POST's, in its folder, pruned by snapshots_keep; vigil_snapshot_interval_seconds
  follows a reload (1 -> 0, and then no more are taken). One due while the POST's runs (held by
  the write lock) is skipped and logged, not failed; the next succeeds. A stop during a
  scheduled snapshot (held likewise) exits 0, the copy cancelled, no file left.
- Schedule on a full volume (ScheduledFullVolume, root only): scheduled snapshots fail with
  the reason in the log (the free-space check's), are counted, at most one per interval (no
  tight loop), leave no file; space back, the next one succeeds.
"""

import datetime
import json
import os
import random
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
from test_security import ADMIN, READ, token_file  # noqa: E402
from test_ops import hup  # noqa: E402

T0 = 1_700_000_000_000


def snap(d, body=None, headers=None):
    st, hdrs, data = tp.req(d, "POST", "/v1/admin/snapshot", body, headers)
    return st, hdrs, (vt.loads(data) if data else None)


def in_progress(d):
    return d.metric("vigil_snapshot_in_progress") == 1


def snap_in_thread(d):
    """POSTs a snapshot from a thread and waits until it is in progress (call with a WriteLock
    held, so that it stays so). Returns the thread and a dict whose "answer" the thread sets."""
    got = {}

    def take():
        got["answer"] = snap(d)
    th = threading.Thread(target=take)
    th.start()
    tp.wait_for("the POST's snapshot in progress", lambda: in_progress(d), 5)
    return th, got


def restore(d, src, data_dir=None):
    """vigild --restore src into d's data folder (or data_dir); the finished process."""
    return subprocess.run([vt.VIGILD, "--data-dir", data_dir or d.data_dir, "--restore", src],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120)


def snap_files(d):
    folder = os.path.join(d.data_dir, "snapshots")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


class WriteLock:
    """SQLite's write lock on vigild's database, held by a connection of the test's own
    (BEGIN IMMEDIATE): vigild's writer waits for it (busy timeout 10 s), readers do not."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, timeout=10, isolation_level=None)

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc):
        self.db.execute("ROLLBACK")
        self.db.close()


class Backup(tp.DaemonPerTest):
    CONFIG = tp.config_text(0, extra="\n[storage]\nsnapshots_keep = 2\n")

    def test_snapshot_under_ingest_restores(self):
        d = self.d
        data = tp.rotation(650, 0, tp.OMEGA_A, 0.01, random.Random(3))
        burst = tp.rotation(30, 650, tp.OMEGA_B, 0.01, random.Random(4), amp=3.0)
        for dev in ("pump-a", "event-1"):
            self.feed(dev, data[:500], 0)
            tp.wait_idle(d, dev, 1)
        self.feed("pump-a", data[500:650], 500)
        self.feed("event-1", data[500:650], 500)
        self.feed("event-1", burst, 650)
        self.assertEqual(tp.status(d, "event-1")["state"], "anomaly")
        events = tp.wait_for("event-1's event listed", lambda: d.get_json(
            "/v1/devices/event-1/anomalies?active=true")["anomalies"], 10)
        now = int(time.time() * 1000)
        period = tp.jreq(d, "POST", "/v1/devices/pump-a/maintenance",
                         {"from": now + 86400000, "until": now + 90000000,
                          "note": "valve swap"})["period"]
        versions = {dev: tp.models(d, dev)["versions"] for dev in ("pump-a", "event-1")}
        scored = tp.status(d, "pump-a")["readings_scored"]

        # The feeder: bounded, every POST must be acknowledged (200); each batch remembers
        # whether its answer came before the snapshot was asked for.
        acked, failed, asked = [], [], threading.Event()
        stop = threading.Event()

        def feeder():
            k = 0
            while not stop.is_set() and k < 200000:
                ts = [T0 + 10 * (k + i) for i in range(200)]
                items = [{"device": "feed", "ts": t, "values": {"v": float(t % 977)}}
                         for t in ts]
                st, _, body = tp.req(d, "POST", "/v1/readings", items)
                if st != 200:
                    failed.append((st, body[:200]))
                    return
                acked.append((ts, not asked.is_set()))
                k += 200
        th = threading.Thread(target=feeder)
        th.start()
        try:
            tp.wait_for("the feeder's first batches", lambda: len(acked) >= 5, 30)
            asked.set()
            st, hdrs, doc = snap(d)
            # Readings keep flowing while the copy runs and after it.
            n_at_answer = len(acked)
            tp.wait_for("ingest after the snapshot", lambda: len(acked) >= n_at_answer + 3, 30)
        finally:
            stop.set()
            th.join()
        self.assertEqual(failed, [])
        self.assertEqual(st, 200, doc)
        self.assertEqual(sorted(doc), ["bytes", "path", "time", "took_ms"])
        path = doc["path"]
        folder = os.path.realpath(os.path.join(d.data_dir, "snapshots"))
        self.assertEqual(os.path.dirname(path), folder)
        self.assertRegex(os.path.basename(path), r"^vigil-\d{8}T\d{6}\.\d{3}Z\.db$")
        self.assertEqual(os.path.getsize(path), doc["bytes"])
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(folder).st_mode), 0o700)
        self.assertRegex(doc["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        m = d.metrics()
        self.assertEqual(vt.metric_in(m, 'vigil_snapshots_total{result="ok"}', need=True), 1)
        self.assertEqual(vt.metric_in(m, "vigil_snapshot_in_progress", need=True), 0)
        self.assertNotIn("vigil_snapshot_last_success_timestamp_seconds 0.000", m)
        d.stop()

        p = subprocess.run(["sqlite3", path, "PRAGMA integrity_check;"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
        self.assertEqual(p.stdout.strip(), "ok")

        # Restore into a fresh data folder, as README says: the copy becomes vigil.db.
        fresh = os.path.join(vt.mkdtemp(), "data")
        os.mkdir(fresh, 0o750)
        with open(path, "rb") as src, open(os.path.join(fresh, "vigil.db"), "wb") as dst:
            dst.write(src.read())
        d2 = vt.Vigild(data_dir=fresh, config=d.config)
        d2.start()
        try:
            before = sorted(t for ts, early in acked if early for t in ts)
            got = [p["ts"] for p in d2.readings("feed", limit=100000)]
            self.assertTrue(set(before) <= set(got),
                            "%d acknowledged readings missing" % len(set(before) - set(got)))
            self.assertLessEqual(len(got), sum(len(ts) for ts, _ in acked))
            for dev in ("pump-a", "event-1"):
                self.assertEqual(tp.models(d2, dev)["versions"], versions[dev], dev)
            evs = d2.get_json("/v1/devices/event-1/anomalies")["anomalies"]
            self.assertIn(events[0]["id"], [e["id"] for e in evs])
            periods = d2.get_json("/v1/devices/pump-a/maintenance")["periods"]
            self.assertIn((period["from_ts"], period["until_ts"], "valve swap"),
                          [(q["from_ts"], q["until_ts"], q["note"]) for q in periods])
            s = tp.status(d2, "pump-a")
            self.assertNotEqual(s["state"], "learning", s)
            self.assertEqual(s["readings_scored"], scored)
            ts = [T0 + 1000 * k for k in range(650, 660)]
            tp.post_readings(d2, "pump-a", data[640:650], ts, tp.CH3)
            tp.wait_scored(d2, "pump-a", scored + 10)
            pred = d2.get_json("/v1/devices/pump-a/predictions?from=%d" % ts[0])["points"]
            self.assertEqual([q["ts"] for q in pred], ts)
        finally:
            d2.stop()
            d2.cleanup()
        sys.stderr.write("[snapshot under ingest: %d bytes in %d ms; %d batches of 200 "
                         "acknowledged before it was asked for, %d in all] "
                         % (doc["bytes"], doc["took_ms"], sum(1 for _, e in acked if e),
                            len(acked)))

    def test_restore_command(self):
        d = self.d
        d.post_json([{"device": "r", "ts": T0, "values": {"v": 1}}])
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        d.post_json([{"device": "r", "ts": T0 + 1000, "values": {"v": 2}}])
        # Refused while vigild runs on the folder, and for a file that is not a vigil snapshot.
        p = restore(d, doc["path"])
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("in use by another vigild", p.stdout)
        self.assertEqual([q["ts"] for q in d.readings("r")], [T0, T0 + 1000])
        other = os.path.join(vt.mkdtemp(), "other.db")
        sqlite3.connect(other).execute("CREATE TABLE t(x)").connection.close()
        empty = os.path.join(vt.mkdtemp(), "data")  # the copy is checked: the lock comes first
        os.mkdir(empty)
        for src, says in ((other, "not a vigil database"), (d.config, "cannot read"),
                          (d.db_path, "vigil.db-wal: a write-ahead log beside the source")):
            p = restore(d, src, empty)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn(says, p.stdout)
        # kill -9: the newest reading is in vigil.db-wal, which the restore must not replay
        # into the snapshot.
        d.kill()
        self.assertGreater(os.path.getsize(d.db_path + "-wal"), 0)
        # The restored file takes the replaced one's owner (root only: a service user's file).
        owner = (65534, 65534) if os.geteuid() == 0 else None
        if owner:
            os.chown(d.db_path, *owner)
        p = restore(d, doc["path"])
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("restored", p.stdout)
        if owner:
            st = os.stat(d.db_path)
            self.assertEqual((st.st_uid, st.st_gid), owner)
        self.assertFalse(os.path.exists(d.db_path + "-wal"))
        self.assertFalse(os.path.exists(d.db_path + "-shm"))
        d.start()
        self.assertEqual([q["ts"] for q in d.readings("r")], [T0])

    def test_restore_refuses_a_copy_taken_mid_write(self):
        """A data folder copied with cp while vigild runs (its WAL holds the newest commits), and
        a snapshot copied in the middle of a transaction (a hot rollback journal beside it, its
        uncommitted pages in the file): each is refused, exit 1, naming the file beside the
        source and saying to take a snapshot; the target folder and the source are untouched."""
        d = self.d
        d.post_json([{"device": "r%d" % i, "ts": T0, "values": {"v": i}} for i in range(20)])
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        d.post_json([{"device": "r0", "ts": T0 + 1000, "values": {"v": 1}}])  # acknowledged
        live = os.path.join(vt.mkdtemp(), "copy")
        shutil.copytree(d.data_dir, live)
        self.assertGreater(os.path.getsize(os.path.join(live, "vigil.db-wal")), 0)
        # A hot journal, made as a writer leaves one mid-transaction: a cache of 2 pages makes
        # SQLite spill the transaction's pages into the file (their originals in the journal),
        # and the two files are copied before the ROLLBACK.
        work = vt.mkdtemp()
        held = os.path.join(work, "held.db")
        shutil.copy(doc["path"], held)
        db = sqlite3.connect(held, isolation_level=None)
        db.execute("PRAGMA cache_size=2")
        db.execute("BEGIN")
        db.execute("DELETE FROM readings")
        db.execute("CREATE TABLE pad(x)")
        db.execute("INSERT INTO pad SELECT zeroblob(4000) FROM (WITH RECURSIVE n(i) AS "
                   "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) SELECT i FROM n)")
        torn = os.path.join(vt.mkdtemp(), "torn.db")
        shutil.copy(held, torn)
        shutil.copy(held + "-journal", torn + "-journal")
        db.execute("ROLLBACK")
        db.close()
        with open(torn + "-journal", "rb") as f:
            self.assertNotEqual(f.read(1), b"\0")
        with open(torn, "rb") as f:
            torn_bytes = f.read()
        target = os.path.join(vt.mkdtemp(), "data")
        os.mkdir(target)
        for src, says in ((os.path.join(live, "vigil.db"),
                           os.path.join(live, "vigil.db-wal") + ": a write-ahead log beside the "
                           "source is not empty: the database was copied while open"),
                          (torn, torn + "-journal: a hot rollback journal beside the source: it "
                           "was copied in the middle of a transaction")):
            p = restore(d, src, target)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("restore refused: " + says, p.stdout)
            self.assertIn("POST /v1/admin/snapshot, or stop vigild", p.stdout)
            self.assertEqual([n for n in os.listdir(target) if n.startswith(("vigil.db", "."))],
                             [])
        # The source is read, never rolled back: the journal and the torn file stay as copied.
        with open(torn, "rb") as f:
            self.assertEqual(f.read(), torn_bytes)
        self.assertTrue(os.path.exists(torn + "-journal"))
        # The same files stopped being a copy mid-write (the journal rolled back by SQLite,
        # the data folder's vigild stopped): both are restored.
        sqlite3.connect(torn).execute("SELECT count(*) FROM sqlite_master").connection.close()
        self.assertFalse(os.path.exists(torn + "-journal"))
        p = restore(d, torn, target)
        self.assertEqual(p.returncode, 0, p.stdout)
        d.stop()
        self.assertFalse(os.path.exists(d.db_path + "-wal"))
        p = restore(d, d.db_path, target)
        self.assertEqual(p.returncode, 0, p.stdout)
        d.start()

    def test_restore_refuses_a_damaged_page(self):
        """A snapshot with one b-tree page overwritten: refused, exit 1, as damaged, SQLite's
        report on one line (read68b: its several lines were quoted as they came)."""
        d = self.d
        d.post_json([{"device": "dp%d" % i, "ts": T0, "values": {"v": i}} for i in range(200)])
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        bad = os.path.join(vt.mkdtemp(), "bad.db")
        shutil.copy(doc["path"], bad)
        size = os.path.getsize(bad)
        page = 4096
        with open(bad, "r+b") as f:  # every page past the schema's: b-tree pages as garbage
            for n in range(2, size // page):
                f.seek(n * page)
                f.write(bytes([0x0D, 0xFF, 0xFF, 0xFF]) + b"\xAA" * 60)
        target = os.path.join(vt.mkdtemp(), "data")
        os.mkdir(target)
        p = restore(d, bad, target)
        self.assertEqual(p.returncode, 1, p.stdout)
        line = [l for l in p.stdout.splitlines() if "restore refused" in l]
        self.assertEqual(len(line), 1, p.stdout)
        self.assertIn("restore refused: %s: damaged (PRAGMA quick_check: " % bad, line[0])
        self.assertEqual([n for n in os.listdir(target) if n.startswith(("vigil.db", "."))], [])

    def test_restore_follows_no_link(self):
        """Links planted in the data folder (writable by the service's user; the restore runs
        as root): neither the copy nor the lock is written through them."""
        d = self.d
        d.post_json([{"device": "r", "ts": T0, "values": {"v": 1}}])
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        d.stop()
        elsewhere = vt.mkdtemp()
        victim = vt.write_file(os.path.join(elsewhere, "victim"), "not to be overwritten\n")
        # The lock file: a link to a file that does not exist yet must not create it.
        lock = os.path.join(d.data_dir, "vigil.lock")
        created = os.path.join(elsewhere, "created-by-root")
        os.replace(lock, lock + ".aside")
        os.symlink(created, lock)
        p = restore(d, doc["path"])
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("vigil.lock", p.stdout)
        self.assertFalse(os.path.lexists(created))
        os.replace(lock + ".aside", lock)
        # The copy's temporary name: the link is removed, its target left as it was, and
        # vigil.db becomes a regular file.
        tmp = os.path.join(d.data_dir, ".vigil.db.restore")
        os.symlink(victim, tmp)
        p = restore(d, doc["path"])
        self.assertEqual(p.returncode, 0, p.stdout)
        with open(victim) as f:
            self.assertEqual(f.read(), "not to be overwritten\n")
        self.assertFalse(os.path.lexists(tmp))
        self.assertFalse(os.path.islink(d.db_path))
        self.assertEqual(stat.S_IMODE(os.stat(d.db_path).st_mode), 0o640)
        d.start()
        self.assertEqual([q["ts"] for q in d.readings("r")], [T0])

    def test_failed_swap_keeps_wal(self):
        """A restore whose final rename fails (vigil.db is, here, a folder that is not empty)
        puts the WAL and shared memory back: the old database's newest commits are kept."""
        d = self.d
        d.post_json([{"device": "r", "ts": T0, "values": {"v": 1}}])
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        d.stop()
        for name in ("vigil.db", "vigil.db-wal", "vigil.db-shm"):
            path = os.path.join(d.data_dir, name)
            if os.path.exists(path):
                os.unlink(path)
        os.mkdir(d.db_path)
        vt.write_file(os.path.join(d.db_path, "in-the-way"), "x")
        vt.write_file(d.db_path + "-wal", "the newest commits")
        vt.write_file(d.db_path + "-shm", "shared memory")
        p = restore(d, doc["path"])
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("renaming", p.stdout)
        with open(d.db_path + "-wal") as f:
            self.assertEqual(f.read(), "the newest commits")
        with open(d.db_path + "-shm") as f:
            self.assertEqual(f.read(), "shared memory")
        self.assertEqual(sorted(n for n in os.listdir(d.data_dir) if n.startswith(".")), [])
        shutil.rmtree(d.db_path)
        os.unlink(d.db_path + "-wal")
        os.unlink(d.db_path + "-shm")
        p = restore(d, doc["path"])
        self.assertEqual(p.returncode, 0, p.stdout)
        d.start()
        self.assertEqual([q["ts"] for q in d.readings("r")], [T0])

    def test_restore_refuses_what_is_not_a_file(self):
        """A source, or a -wal or -journal beside it, that is not a regular file is refused
        before it is opened, naming it and what it is, exit 1, the target untouched: a FIFO
        (whose open blocked the restore for good), a directory, a character device. Each run is
        bounded (20 s), so a hang fails. The same snapshot without them is restored."""
        d = self.d
        d.post_json([{"device": "r", "ts": T0, "values": {"v": 1}}])
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        work = vt.mkdtemp()
        fifo = os.path.join(work, "fifo.db")
        os.mkfifo(fifo)
        folder = os.path.join(work, "folder.db")
        os.mkdir(folder)
        src = os.path.join(work, "snap.db")
        shutil.copy(doc["path"], src)
        target = os.path.join(vt.mkdtemp(), "data")
        os.mkdir(target)

        def refused(path, says):
            try:
                p = subprocess.run([vt.VIGILD, "--data-dir", target, "--restore", path],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   timeout=20)
            except subprocess.TimeoutExpired:
                self.fail("vigild --restore %s hung (killed after 20 s)" % path)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn("restore refused: " + says, p.stdout)
            self.assertEqual(os.listdir(target), [])  # refused before the lock is taken
        refused(fifo, fifo + " is a FIFO, not a regular file")
        refused(folder, folder + " is a directory, not a regular file")
        refused("/dev/null", "/dev/null is a character device, not a regular file")
        for beside in ("-wal", "-journal"):
            os.mkfifo(src + beside)
            refused(src, src + beside + " is a FIFO, not a regular file: SQLite would read it "
                    "as part of the database beside it")
            os.unlink(src + beside)
        os.mkdir(src + "-journal")
        refused(src, src + "-journal is a directory, not a regular file")
        os.rmdir(src + "-journal")
        p = restore(d, src, target)
        self.assertEqual(p.returncode, 0, p.stdout)

    def test_restore_as_root_owner(self):
        """Run as root, --restore refuses a folder that does not exist (root would own it and
        its lock) and gives a lock it creates the folder's owner (root only, else skipped)."""
        if os.geteuid() != 0:
            self.skipTest("root only: the owners are root's to give")
        d = self.d
        d.post_json([{"device": "r", "ts": T0, "values": {"v": 1}}])
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        top = vt.mkdtemp()
        missing = os.path.join(top, "data")
        p = restore(d, doc["path"], missing)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("does not exist", p.stdout)
        self.assertFalse(os.path.exists(missing))
        # A folder the service's user made, empty: the lock and the database are that user's.
        nobody = (65534, 65534)
        os.mkdir(missing, 0o750)
        os.chown(missing, *nobody)
        p = restore(d, doc["path"], missing)
        self.assertEqual(p.returncode, 0, p.stdout)
        for name in ("vigil.lock", "vigil.db"):
            s = os.stat(os.path.join(missing, name))
            self.assertEqual((s.st_uid, s.st_gid), nobody, name)

    def test_clock_stepped_back(self):
        """Snapshots named in the future (taken before the clock was stepped back): a new one
        is kept by the pruning even though its name sorts below them (keep = 2: it and the
        newest-named other one), and the last success read at start is the newest file's
        modification time capped at now, not the future name."""
        d = self.d
        d.post_json([{"device": "r", "ts": T0, "values": {"v": 1}}])
        st, _, doc = snap(d)  # makes the folder
        self.assertEqual(st, 200, doc)
        folder = os.path.join(d.data_dir, "snapshots")
        future = ["vigil-20991231T000000.000Z.db", "vigil-20991231T000001.000Z.db"]
        for n in future:
            with open(doc["path"], "rb") as src:
                vt.write_file(os.path.join(folder, n), src.read(), "wb")
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        made = os.path.basename(doc["path"])
        self.assertTrue(os.path.exists(doc["path"]), "the answer names a pruned file")
        self.assertEqual(snap_files(d), sorted([made, future[1]]))
        d.stop()
        # At start: future names, files last modified a day ago and (the other) in 2099.
        day_ago = time.time() - 86400
        os.utime(doc["path"], (day_ago, day_ago))
        os.utime(os.path.join(folder, future[1]), (day_ago - 60, day_ago - 60))
        d.start()
        self.assertAlmostEqual(d.metric("vigil_snapshot_last_success_timestamp_seconds", need=True),
                               day_ago, delta=0.01)
        d.stop()
        os.utime(doc["path"], (4102444800, 4102444800))  # 2100
        t0 = time.time()
        d.start()
        last = d.metric("vigil_snapshot_last_success_timestamp_seconds", need=True)
        self.assertGreaterEqual(last, t0 - 1)
        self.assertLessEqual(last, time.time() + 1)

    def test_no_prune_from_a_partial_listing(self):
        """More snapshot files than vigild lists (10,000): it cannot tell the newest, so it
        deletes none (and says so) instead of pruning a subset in directory order."""
        d = self.d
        d.post_json([{"device": "r", "ts": T0, "values": {"v": 1}}])
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        folder = os.path.join(d.data_dir, "snapshots")
        for i in range(10000):
            t = datetime.datetime(2001, 1, 1) + datetime.timedelta(seconds=i)
            open(os.path.join(folder, t.strftime("vigil-%Y%m%dT%H%M%S.000Z.db")), "w").close()
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        self.assertEqual(len(snap_files(d)), 10002)
        self.assertIn("not pruned: its listing was incomplete", d.log())

    def test_start_sweeps_tmp_and_file_uri(self):
        """A crash's temporary file is removed at start (before any snapshot); a restore
        source whose relative name begins with "file:" is read as a file, not as an SQLite URI
        (which would name another file)."""
        d = self.d
        d.post_json([{"device": "r", "ts": T0, "values": {"v": 1}}])
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        d.stop()
        left = os.path.join(d.data_dir, "snapshots", ".vigil-20260101T000000.000Z.db.tmp")
        vt.write_file(left, "a crash's partial copy")
        # What SQLite makes beside it while the copy is written: left for good until session 68
        # (read68b: a kill -9 during a snapshot). A name that only begins alike stays.
        beside = [left + x for x in ("-journal", "-wal", "-shm")]
        other = left + "-other"
        for path in beside + [other]:
            vt.write_file(path, "x")
        d.start()
        self.assertFalse(os.path.exists(left))
        self.assertEqual([p for p in beside if os.path.exists(p)], [])
        self.assertTrue(os.path.exists(other))
        os.unlink(other)
        self.assertEqual(counted(d, "ok"), 0)
        d.stop()
        cwd = vt.mkdtemp()
        with open(doc["path"], "rb") as src:
            vt.write_file(os.path.join(cwd, "file:snap.db"), src.read(), "wb")
        p = subprocess.run([vt.VIGILD, "--data-dir", d.data_dir, "--restore", "file:snap.db"],
                           cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout)
        d.start()
        self.assertEqual([q["ts"] for q in d.readings("r")], [T0])

    def test_one_at_a_time(self):
        d = self.d
        self.feed("pump-a", tp.rotation(400, 0, tp.OMEGA_A, 0.01, random.Random(5)), 0)
        with WriteLock(d.db_path):
            th, first = snap_in_thread(d)
            st, hdrs, doc = snap(d)
            self.assertEqual(st, 409, doc)
            self.assertIn("another snapshot", doc["error"])
        th.join(60)
        self.assertEqual(first["answer"][0], 200, first["answer"])
        self.assertEqual(snap_files(d), [os.path.basename(first["answer"][2]["path"])])
        self.assertEqual(counted(d, "ok"), 1)

    def test_stop_cancels(self):
        d = self.d
        self.feed("pump-a", tp.rotation(400, 0, tp.OMEGA_A, 0.01, random.Random(6)), 0)
        answer, stopped = {}, {}

        def take():
            try:
                answer["got"] = snap(d)
            except OSError as e:  # a closed connection: recorded, and failed below
                answer["got"] = e

        def stop():  # one SIGTERM, and exit 0 asserted
            try:
                d.stop()
            except AssertionError as e:
                stopped["error"] = e
        with WriteLock(d.db_path):
            th = threading.Thread(target=take)
            th.start()
            tp.wait_for("the snapshot in progress", lambda: in_progress(d), 5)
            stopper = threading.Thread(target=stop)
            stopper.start()
            # The lock is released only once the stop has begun (logged after the snapshot is
            # marked cancelled): the copy must not start.
            tp.wait_for("the stop to begin", lambda: "stopping intake" in d.log(), 10)
        th.join(60)
        stopper.join(60)
        self.assertEqual(stopped, {})
        # The stop waits for the answers of the requests it began (api_stop, session 21): the
        # client always gets the JSON 503 naming why, never a closed connection (session 54).
        got = answer["got"]
        self.assertIsInstance(got, tuple, got)
        self.assertEqual(got[0], 503, got)
        self.assertIn("shutting down", got[2]["error"])
        self.assertIn("snapshot failed: vigild is shutting down", d.log())
        self.assertEqual(snap_files(d), [])

    def test_keep_list_methods(self):
        d = self.d
        d.post_json([{"device": "a", "ts": T0, "values": {"v": 1}}])
        folder = os.path.join(d.data_dir, "snapshots")
        names = []
        for i in range(4):
            st, _, doc = snap(d, {} if i % 2 else None)
            self.assertEqual(st, 200, doc)
            names.append(os.path.basename(doc["path"]))
            if i == 0:
                vt.write_file(os.path.join(folder, "operator-notes.txt"), "mine\n")
        self.assertEqual(len(set(names)), 4)
        self.assertEqual(snap_files(d), sorted(names[2:] + ["operator-notes.txt"]))
        doc = d.get_json("/v1/admin/snapshots")
        self.assertEqual(doc["dir"], os.path.realpath(folder))
        self.assertEqual([s["name"] for s in doc["snapshots"]], names[:1:-1])
        for s in doc["snapshots"]:
            self.assertEqual(s["bytes"], os.path.getsize(os.path.join(folder, s["name"])))
            self.assertRegex(s["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        for method in ("GET", "PUT", "DELETE"):
            st, hdrs, body = tp.req(d, method, "/v1/admin/snapshot")
            self.assertEqual(st, 405, body)
            self.assertEqual(hdrs.get("allow"), "POST, OPTIONS")
        st, hdrs, body = tp.req(d, "POST", "/v1/admin/snapshots")
        self.assertEqual(st, 405, body)
        for body, says in (({"path": "/etc/passwd"}, "'path'"), ("[]", "empty JSON object"),
                           ("x", "invalid JSON at line 1, column 1: ")):
            st, _, doc = snap(d, body)
            self.assertEqual(st, 400, doc)
            self.assertIn(says, doc["error"])
        st, _, doc = tp.req(d, "POST", "/v1/admin/snapshot?dir=/tmp")
        self.assertEqual(st, 400, doc)
        self.assertEqual(len(snap_files(d)), 3)
        self.assertEqual(counted(d, "ok"), 4)


class Auth(vt.DaemonTestCase):
    CONFIG = "[http]\nauth_file = %s\n[model]\nenabled = false\n" % token_file()

    def test_admin_only(self):
        for method, path in (("POST", "/v1/admin/snapshot"), ("GET", "/v1/admin/snapshots")):
            st, hdrs, body = tp.req(self.d, method, path)
            self.assertJsonError((st, hdrs, body), 401)
            st, hdrs, body = tp.req(self.d, method, path,
                                    headers={"Authorization": "Bearer " + READ})
            self.assertJsonError((st, hdrs, body), 403)
            st, hdrs, body = tp.req(self.d, method, path,
                                    headers={"Authorization": "Bearer " + ADMIN})
            self.assertEqual(st, 200, body)


class TmpfsVolume(unittest.TestCase):
    """vigild with its data folder on a small tmpfs (root only, else skipped); no tests."""
    SIZE_MB = 8
    CONFIG = "[model]\nenabled = false\n"

    def setUp(self):
        self.mnt = vt.tmpfs_mount(self, self.SIZE_MB)
        conf = vt.write_file(os.path.join(vt.mkdtemp(), "vigild.conf"), self.CONFIG)
        self.d = vt.Vigild(data_dir=os.path.join(self.mnt, "data"), config=conf)
        self.d.start()
        self.addCleanup(self.d.cleanup)

    def fill(self, leave=64 * 1024):
        """20,000 readings stored, then the volume filled but for leave bytes (64 KiB: less
        than a copy of the database needs). Returns the filler's path (delete it to free the
        space)."""
        d = self.d
        for j in range(20):
            body = [{"device": "df", "ts": T0 + j * 1000 + i, "values": {"v": j + i / 1000}}
                    for i in range(1000)]
            tp.jreq(d, "POST", "/v1/readings", body)
        db_bytes = os.path.getsize(d.db_path) + os.path.getsize(d.db_path + "-wal")
        filler = vt.fill_volume(self.mnt, leave)
        self.assertGreater(db_bytes, 256 * 1024, "the database must outgrow the space left")
        return filler


class FullVolume(TmpfsVolume):

    def test_507_then_200(self):
        d = self.d
        filler = self.fill()
        st, hdrs, doc = snap(d)
        self.assertEqual(st, 507, doc)
        self.assertIn("no space", doc["error"])
        self.assertTrue(hdrs.get("retry-after"), hdrs)
        self.assertEqual(snap_files(d), [])
        self.assertEqual(counted(d, "failed"), 1)
        self.assertEqual(len(d.readings("df", limit=100000)), 20000)
        os.unlink(filler)
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        self.assertEqual(snap_files(d), [os.path.basename(doc["path"])])
        d.stop()

    def test_room_for_ingest_not_a_copy(self):
        """Free space for ingest but not for a copy with room to spare: the snapshot is refused
        up front (507, the log saying how much is free and needed), so it never fills the
        volume; nothing is left, and readings are stored meanwhile and after."""
        d = self.d
        filler = self.fill(leave=1024 * 1024)
        st, hdrs, doc = snap(d)
        self.assertEqual(st, 507, doc)
        self.assertTrue(hdrs.get("retry-after"), hdrs)
        self.assertIn("snapshot failed: not enough free space in", d.log())
        self.assertEqual(snap_files(d), [])
        body = [{"device": "df2", "ts": T0 + i, "values": {"v": i}} for i in range(1000)]
        tp.jreq(d, "POST", "/v1/readings", body)
        self.assertEqual(len(d.readings("df2", limit=100000)), 1000)
        os.unlink(filler)
        st, _, doc = snap(d)
        self.assertEqual(st, 200, doc)
        d.stop()


def counted(d, result):
    """vigil_snapshots_total{result=...} now."""
    return int(d.metric('vigil_snapshots_total{result="%s"}' % result, need=True))


def log_lines(d, text):
    return [line for line in d.log().splitlines() if text in line]


def log_time(line):
    """Unix time of a log line ("2026-11-30T06:49:57.945Z info  ...")."""
    return datetime.datetime.strptime(line[:24], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def name_time(name):
    """Unix time of a snapshot's name ("vigil-20261130T065001.947Z.db")."""
    return datetime.datetime.strptime(name[6:25], "%Y%m%dT%H%M%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def schedule(d, config, every):
    """Rewrites d's configuration file with storage.snapshot_every = every and reloads it."""
    vt.write_file(d.config, config + "\n[storage]\nsnapshot_every = %s\n" % every)
    hup(d, "configuration reloaded; applied: storage.snapshot_every")


SNAP_NAME = r"^vigil-\d{8}T\d{6}\.\d{3}Z\.db$"


class ScheduledSnapshots(tp.DaemonPerTest):
    """storage.snapshot_every: snapshots on a schedule, through the POST's code."""
    BASE = tp.config_text(0, extra="\n[storage]\nsnapshots_keep = 2\n")
    CONFIG = BASE + "snapshot_every = 1s\n"

    def test_named_pruned_counted(self):
        d = self.d
        d.post_json([{"device": "a", "ts": T0, "values": {"v": 1}}])
        tp.wait_for("three scheduled snapshots", lambda: counted(d, "ok") >= 3, 30)
        self.assertIn("vigil_snapshot_interval_seconds 1.000\n", d.metrics())
        schedule(d, self.BASE, "0")  # off: the counts hold still from here
        self.assertIn("vigil_snapshot_interval_seconds 0.000\n", d.metrics())
        taken = [re.search(r"snapshot: (\S+), ", line).group(1)
                 for line in log_lines(d, "info  snapshot: /")]
        ok = counted(d, "ok")
        self.assertGreaterEqual(ok, 3)
        self.assertEqual(len(taken), ok)
        self.assertEqual(len(log_lines(d, "scheduled snapshot taken")), ok)
        self.assertEqual(counted(d, "failed"), 0)
        # Named as the POST's, in the same folder, pruned to the newest two by snapshots_keep.
        names = [os.path.basename(p) for p in taken]
        for p in taken:
            self.assertEqual(os.path.dirname(p), os.path.join(os.path.realpath(d.data_dir),
                                                              "snapshots"))
        for n in names:
            self.assertRegex(n, SNAP_NAME)
        self.assertEqual(snap_files(d), sorted(names)[-2:])
        self.assertEqual(len(log_lines(d, "(storage.snapshots_keep = 2)")), ok - 2)
        listed = d.get_json("/v1/admin/snapshots")["snapshots"]
        self.assertEqual([s["name"] for s in listed], sorted(names)[::-1][:2])
        # The first is due one interval after the start, not at it.
        opened = log_time(log_lines(d, "storage: opened")[0])
        self.assertGreaterEqual(name_time(min(names)), opened + 1.0)
        # Off: none more.
        time.sleep(2.5)
        self.assertEqual(counted(d, "ok"), ok)

    def test_skipped_when_one_runs(self):
        d = self.d
        schedule(d, self.BASE, "1h")  # (one may have run since the start)
        self.feed("pump-a", tp.rotation(400, 0, tp.OMEGA_A, 0.01, random.Random(7)), 0)
        ok = counted(d, "ok")
        with WriteLock(d.db_path):
            th, posted = snap_in_thread(d)
            # Due one second after the reload: it meets the POST's, still waiting for the lock.
            schedule(d, self.BASE, "1s")
            tp.wait_for("a scheduled snapshot skipped", lambda: log_lines(
                d, "scheduled snapshot skipped: another snapshot is being taken"), 8)
        th.join(60)
        self.assertEqual(posted["answer"][0], 200, posted["answer"])
        self.assertEqual(counted(d, "failed"), 0)  # skipped is not failed
        tp.wait_for("the next scheduled one", lambda: counted(d, "ok") >= ok + 2, 30)

    def test_stop_during_scheduled_copy(self):
        d = self.d
        schedule(d, self.BASE, "0")  # (one may have run since the start)
        self.feed("pump-a", tp.rotation(400, 0, tp.OMEGA_A, 0.01, random.Random(8)), 0)
        before = snap_files(d)
        stopped = {}

        def stop():  # one SIGTERM, and exit 0 asserted
            try:
                d.stop(timeout=30)
            except AssertionError as e:
                stopped["error"] = e
        with WriteLock(d.db_path):
            schedule(d, self.BASE, "1s")
            tp.wait_for("the scheduled snapshot in progress", lambda: in_progress(d), 5)
            stopper = threading.Thread(target=stop)
            stopper.start()
            tp.wait_for("the stop to begin", lambda: "stopping intake" in d.log(), 10)
        stopper.join(60)
        self.assertEqual(stopped, {})
        self.assertIn("snapshot failed: vigild is shutting down", d.log())
        self.assertEqual(log_lines(d, "scheduled snapshot failed"), [])  # a stop, not a failure
        self.assertEqual(snap_files(d), before)  # no new file, no temporary one


class ScheduledFullVolume(TmpfsVolume):
    """A scheduled snapshot on a full volume fails, is counted and logged, is tried again one
    interval later (not in a tight loop), and succeeds once there is space again."""

    def test_fails_then_succeeds(self):
        d = self.d
        filler = self.fill()
        schedule(d, self.CONFIG, "1s")
        on = time.monotonic()
        tp.wait_for("two failed scheduled snapshots", lambda: counted(d, "failed") >= 2, 30)
        failed = counted(d, "failed")
        self.assertLessEqual(failed, time.monotonic() - on + 1)
        lines = log_lines(d, "scheduled snapshot failed: ")
        self.assertGreaterEqual(len(lines), 2)
        self.assertIn("not enough free space", lines[0])  # the check before the copy
        self.assertIn("next attempt in 1 s", lines[0])
        self.assertEqual(snap_files(d), [])
        self.assertEqual(counted(d, "ok"), 0)
        self.assertEqual(len(d.readings("df", limit=100000)), 20000)
        os.unlink(filler)
        tp.wait_for("a scheduled snapshot once space is back", lambda: counted(d, "ok") >= 1, 30)
        for n in snap_files(d):
            self.assertRegex(n, SNAP_NAME)
        self.assertGreaterEqual(len(snap_files(d)), 1)
        d.stop()


class ReadOnlyDatabase(unittest.TestCase):
    """A vigil.db the daemon's user cannot write (a restore by hand that kept a backup's mode
    0444) stops the start naming the file and why. SQLite opened it read-only without a word:
    vigild said it was ready and /healthz answered 200 until the first reading failed."""

    def test_read_only_file_refused(self):
        tmp = vt.mkdtemp()
        data = os.path.join(tmp, "data")
        cmd = [vt.VIGILD, "--data-dir", data, "--http", "127.0.0.1:0", "--stream", "off"]
        as_user = []
        if os.geteuid() == 0:
            # root writes any file: run as nobody, which the read-only mode then binds
            if shutil.which("setpriv") is None:
                self.skipTest("root without setpriv (util-linux) cannot drop privileges")
            as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            os.chmod(tmp, 0o755)
        # A database a vigild ran on and stopped cleanly: in WAL mode, so SQLite opens it
        # read-only with no write needed (a snapshot, not yet in WAL mode, failed at the
        # switch, if with a cryptic message).
        d = vt.Vigild(data_dir=data)
        d.start()
        d.stop()
        for name in os.listdir(data):
            path = os.path.join(data, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif name != "vigil.db":
                os.unlink(path)
        os.chmod(os.path.join(data, "vigil.db"), 0o444)
        if as_user:
            for path in (data, os.path.join(data, "vigil.db")):
                os.chown(path, 65534, 65534)
            # nobody must reach the file and run vigild (a checkout or TMPDIR under a 0700
            # /root would fail the start otherwise, with another message)
            probe = subprocess.run(as_user + ["sh", "-c", 'test -r "$1" && exec "$2" --version',
                                              "sh", os.path.join(data, "vigil.db"), vt.VIGILD],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if probe.returncode != 0:
                self.skipTest("nobody cannot read %s or run %s: %s"
                              % (os.path.join(data, "vigil.db"), vt.VIGILD, probe.stderr.strip()))
        p = subprocess.Popen(as_user + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
        try:
            _, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.terminate()
            _, err = p.communicate(timeout=60)
            self.fail("vigild started on a read-only database:\n" + err)
        self.assertEqual(p.returncode, 1, err)
        self.assertIn("%s/vigil.db: the database can only be read (Permission denied)" % data,
                      err)
        self.assertNotIn("HTTP on", err)


if __name__ == "__main__":
    vt.main()

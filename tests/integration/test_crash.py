#!/usr/bin/python3
"""vigild integration: durability. A clean restart (SIGTERM, exit 0) keeps everything; after
kill -9 every acknowledged reading (HTTP JSON 200, /write 204, stream "ok N") is there and
PRAGMA integrity_check is ok, including when the kill lands in the middle of concurrent
ingest. A device group's members come back after kill -9 serving the group's version from the
one stored copy of its model."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
import pipeline_fx as tp  # noqa: E402  (wait_scored)

# Epoch ms of 2023-11-14: the stream's nanoseconds are refused before 1973 (session 67).
T0 = 1700000000000


def integrity_check(db_path):
    """PRAGMA integrity_check with the sqlite3 CLI on a copy of the database and its WAL (so the
    check does not recover the WAL in place before vigild gets to)."""
    tmp = vt.mkdtemp("vigil-icheck-")
    try:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db_path + suffix):
                shutil.copyfile(db_path + suffix, os.path.join(tmp, "vigil.db" + suffix))
        p = subprocess.run(["sqlite3", os.path.join(tmp, "vigil.db"), "PRAGMA integrity_check;"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        return p.stdout.strip()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Base(unittest.TestCase):
    assertPoints = vt.DaemonTestCase.assertPoints

    def setUp(self):
        self.d = vt.Vigild()
        self.d.start()

    def tearDown(self):
        self.d.cleanup()

    def run(self, result=None):
        before = (len(result.failures), len(result.errors)) if result else (0, 0)
        out = super().run(result)
        if result is not None and (len(result.failures), len(result.errors)) != before:
            sys.stderr.write("\n%s\n" % self.d.log())
        return out

    def snapshot(self):
        """Every device (as listed) and every point of each, for comparison across restarts."""
        ids, after = [], None
        while True:
            doc = self.d.get_json("/v1/devices?limit=2" + ("&after=" + vt.quote(after)
                                                           if after else ""))
            ids += doc["devices"]
            after = doc["next_after"]
            if after is None:
                break
        return {dev["id"]: (dev, self.d.readings(dev["id"], limit=1000)) for dev in ids}

    def ingest_all_protocols(self):
        r = self.d.post_json([{"device": "rs-json", "ts": 1000 + i,
                               "values": {"a": i * 0.1, "b": -0.0 if i == 0 else 1e-300 * i}}
                              for i in range(20)])
        self.assertEqual(r.status, 200, r)
        r = self.d.write_lp("".join("m,device=rs-lp v=%di,w=%r %d\n" % (i, i / 7, 2000 + i)
                                    for i in range(20)), precision="ms")
        self.assertEqual(r.status, 204, r)
        r = self.d.curl("PUT", "/v1/devices/rs-declared", "--data-binary", '{"site":"x","n":2}')
        self.assertEqual(r.status, 201, r)
        c = self.d.stream_connect()
        try:
            c.send("".join("m,device=rs-stream v=%r %d\n" % (123456789.123456789 + i,
                                                             (T0 + 3000 + i) * 1000000)
                           for i in range(20)))
            got = c.wait_ok(20)
            self.assertEqual(vt.errors_of(got), {})
        finally:
            c.close()


class Restart(Base):

    def test_restart_keeps_everything(self):
        self.ingest_all_protocols()
        # A device's last_seen is set by its shard after the write is acknowledged: wait until
        # every reading is scored, so the snapshot holds the newest arrival the stop stores.
        for dev in ("rs-json", "rs-lp", "rs-stream"):
            tp.wait_scored(self.d, dev, 20)
        before = self.snapshot()
        self.assertEqual(len(before), 4)
        self.d.stop()  # asserts exit code 0
        self.assertEqual(integrity_check(self.d.db_path), "ok")
        self.d.start()
        after = self.snapshot()
        self.assertEqual(sorted(after), sorted(before))
        # Everything stored comes back, the arrival time of a device's newest reading too
        # (stored by the stop since session 59; docs/writing.md "Devices and readings"); the
        # declared device that never reported has none before and after.
        for dev in before:
            self.assertEqual(after[dev][0], before[dev][0], dev)
            self.assertPoints(after[dev][1], [(p["ts"], p["values"]) for p in before[dev][1]])
        self.assertEqual(after["rs-declared"][0]["attrs"], {"site": "x", "n": 2})
        self.assertPoints(self.d.readings("rs-json"),
                          [(1000 + i, {"a": i * 0.1, "b": -0.0 if i == 0 else 1e-300 * i})
                           for i in range(20)])
        # Still writable after the restart, and a second restart is clean too.
        r = self.d.post_json({"device": "rs-json", "ts": 5000, "values": {"a": 5}})
        self.assertEqual(r.status, 200, r)
        self.d.restart()
        self.assertEqual(self.d.device("rs-json")["points"], 21)
        self.d.stop()

    def test_sigint_is_clean_too(self):
        r = self.d.post_json({"device": "rs-int", "ts": 1, "values": {"a": 1}})
        self.assertEqual(r.status, 200, r)
        p = self.d.proc
        p.send_signal(2)
        self.assertEqual(p.wait(60), 0, self.d.log())
        self.d.proc = None
        vt._live.remove(self.d)
        self.d.start()
        self.assertPoints(self.d.readings("rs-int"), [(1, {"a": 1.0})])
        self.d.stop()

    def test_sigterm_right_after_healthz(self):
        # The signal handlers are in place before HTTP answers: a SIGTERM sent the moment
        # /healthz first answers is a clean stop (exit 0), never SIGTERM's default action.
        self.d.stop()
        for i in range(10):
            self.d.start()
            p = self.d.proc
            p.send_signal(15)
            self.assertEqual(p.wait(60), 0, "start %d\n%s" % (i, self.d.log()))
            self.d.proc = None
            vt._live.remove(self.d)

    def test_sighup_keeps_running(self):
        # SIGHUP (configuration reload) must neither stop nor disturb the daemon.
        r = self.d.post_json({"device": "rs-hup", "ts": 1, "values": {"a": 1}})
        self.assertEqual(r.status, 200, r)
        self.d.proc.send_signal(1)
        time.sleep(0.2)
        self.assertIsNone(self.d.proc.poll(), "vigild exited on SIGHUP")
        r = self.d.post_json({"device": "rs-hup", "ts": 2, "values": {"a": 2}})
        self.assertEqual(r.status, 200, r)
        self.assertPoints(self.d.readings("rs-hup"), [(1, {"a": 1.0}), (2, {"a": 2.0})])
        self.d.stop()

    def test_stop_with_idle_stream_connection(self):
        # An open, idle stream connection must not keep the daemon from exiting.
        c = self.d.stream_connect()
        try:
            c.send("m,device=rs-idle a=1 %d\n" % ((T0 + 1) * 10 ** 6))
            c.wait_ok(1)
            self.d.stop()
            self.assertEqual(c.finish(), [])
        finally:
            c.close()
        self.d.start()
        self.assertPoints(self.d.readings("rs-idle"), [(T0 + 1, {"a": 1.0})])
        self.d.stop()


    def test_sigterm_during_stream_ingest(self):
        # SIGTERM while a client is streaming: the daemon flushes what it parsed, sends the final
        # acknowledgements, closes the connection and exits 0; every acknowledged line is stored.
        n = 100000
        c = self.d.stream_connect()
        got = []

        def reader():
            while True:
                try:
                    line = c.read_line()
                except OSError:
                    return
                if line is None:
                    return
                got.append(line)

        def sender():
            try:
                c.send("".join("m,device=rs-term v=%d %d\n" % (i, (T0 + i) * 10 ** 6)
                               for i in range(n)))
            except OSError:
                pass

        rt = threading.Thread(target=reader)
        st = threading.Thread(target=sender)
        rt.start()
        st.start()
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            time.sleep(0.001)
        self.assertTrue(got, "no acknowledgement before SIGTERM")
        self.d.stop()  # SIGTERM, exit code 0
        rt.join(30)
        st.join(30)
        c.close()
        self.assertFalse(rt.is_alive() or st.is_alive(), "client threads did not finish")
        self.assertEqual(vt.errors_of(got), {}, got[:5])
        acked = vt.last_ok(got)
        self.assertGreater(acked, 0)
        sys.stderr.write("[SIGTERM after %d of %d stream lines acknowledged]\n" % (acked, n))
        self.d.start()
        pts = self.d.readings("rs-term", limit=100000)
        have = {p["ts"]: p["values"] for p in pts}
        for i in range(acked):
            if have.get(T0 + i) != {"v": float(i)}:
                self.fail("acknowledged line %d missing after SIGTERM and restart" % (i + 1))
        self.d.stop()

    def test_sigterm_during_http_requests(self):
        # Requests in flight when SIGTERM arrives complete (200 means durable); none hangs.
        results = []
        lock = threading.Lock()

        def client(k):
            for j in range(50):
                body = json.dumps([{"device": "rs-http-%d" % k, "ts": j * 100 + i,
                                    "values": {"v": j * 100 + i}} for i in range(100)])
                try:
                    st, _, _ = vt.http_request("POST", self.d.url("/v1/readings"), body=body,
                                               timeout=30)
                except OSError:
                    return
                with lock:
                    results.append((k, j, st))
                if st != 200:
                    return

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(results) < 8 and time.monotonic() < deadline:
            time.sleep(0.001)
        self.d.stop()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "a client hung")
        self.assertTrue(all(st in (200, 503) for _, _, st in results), results)
        self.d.start()
        for k, j, st in results:
            if st == 200:
                pts = self.d.readings("rs-http-%d" % k, **{"from": j * 100, "to": j * 100 + 100})
                self.assertEqual([(p["ts"], p["values"]["v"]) for p in pts],
                                 [(j * 100 + i, float(j * 100 + i)) for i in range(100)])
        self.d.stop()


class Crash(Base):

    def test_kill9_after_acks(self):
        self.ingest_all_protocols()
        before = self.snapshot()
        self.d.kill()
        self.assertEqual(integrity_check(self.d.db_path), "ok")
        self.d.start()
        after = self.snapshot()
        self.assertEqual(sorted(after), sorted(before))
        for dev in before:
            self.assertPoints(after[dev][1], [(p["ts"], p["values"]) for p in before[dev][1]])
        self.assertEqual(after["rs-declared"][0]["attrs"], {"site": "x", "n": 2})
        self.d.stop()
        self.assertEqual(integrity_check(self.d.db_path), "ok")

    def test_kill9_sync_normal(self):
        # storage.sync = normal: an acknowledged reading survives a crash of vigild (not of the
        # machine, which a test cannot simulate).
        self.d.cleanup()
        cfg = vt.write_file(os.path.join(vt.mkdtemp(), "vigild.conf"), "[storage]\nsync = normal\n")
        self.d = vt.Vigild(config=cfg)
        self.d.start()
        self.ingest_all_protocols()
        before = self.snapshot()
        self.d.kill()
        self.assertEqual(integrity_check(self.d.db_path), "ok")
        self.d.start()
        after = self.snapshot()
        self.assertEqual(sorted(after), sorted(before))
        for dev in before:
            self.assertPoints(after[dev][1], [(p["ts"], p["values"]) for p in before[dev][1]])
        self.d.stop()

    def test_kill9_during_concurrent_ingest(self):
        stop = threading.Event()
        json_acked = []      # batch numbers answered 200
        stream_ok = [0, 0]   # highest "ok N" per connection
        errors = []
        per_batch = 50
        max_batches = 400
        chunk, max_chunks = 500, 400

        def json_batch(n):
            # 10**12 ms (2001): a number from 1e8 to 1e11 is refused as epoch seconds
            return [{"device": "cr-json", "ts": 10 ** 12 + n * per_batch + i,
                     "values": {"v": n + i / 64, "n": n}} for i in range(per_batch)]

        def json_loop():
            for n in range(max_batches):
                if stop.is_set():
                    return
                try:
                    r = vt.curl(self.d.url("/v1/readings"), "POST",
                                ["-H", "Content-Type: application/json", "--data-binary", "@-"],
                                stdin=json.dumps(json_batch(n)), timeout=20)
                except AssertionError:
                    return  # the daemon is gone
                if r.status == 200:
                    json_acked.append(n)
                else:
                    errors.append("json batch %d: %r" % (n, r))
                    return

        def stream_loop(k):
            try:
                c = self.d.stream_connect(timeout=20)
            except OSError as e:
                errors.append("stream connect: %r" % e)
                return

            def reader():
                while True:
                    try:
                        line = c.read_line()
                    except OSError:
                        return
                    if line is None:
                        return
                    if line.startswith("ok "):
                        stream_ok[k] = max(stream_ok[k], int(line.split()[1]))
                    else:
                        errors.append("stream %d: %s" % (k, line))

            th = threading.Thread(target=reader)
            th.start()
            try:
                for j in range(max_chunks):
                    if stop.is_set():
                        break
                    c.send("".join("cr,device=cr-stream-%d v=%d %d\n"
                                   % (k, j * chunk + i, (T0 + j * chunk + i) * 10 ** 6)
                                   for i in range(chunk)))
                    time.sleep(0.005)
            except OSError:
                pass
            th.join(30)
            c.close()

        threads = [threading.Thread(target=json_loop)] + \
            [threading.Thread(target=stream_loop, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if len(json_acked) >= 10 and min(stream_ok) >= 5000:
                break
            time.sleep(0.01)
        self.d.kill()
        stop.set()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "a client thread did not stop")
        self.assertEqual(errors, [])
        self.assertGreaterEqual(len(json_acked), 10, "too few JSON acknowledgements before kill")
        self.assertGreaterEqual(min(stream_ok), 5000, "too few stream acknowledgements")
        sys.stderr.write("[killed with %d JSON batches and %r stream lines acknowledged]\n"
                         % (len(json_acked), stream_ok))

        self.assertEqual(integrity_check(self.d.db_path), "ok")
        self.d.start()
        # Every acknowledged JSON batch is there, exactly.
        pts = {p["ts"]: p["values"] for p in self.d.readings("cr-json", limit=100000)}
        for n in json_acked:
            for item in json_batch(n):
                got = pts.get(item["ts"])
                want = {k: float(v) for k, v in item["values"].items()}
                self.assertEqual(got, want, "acknowledged JSON batch %d, ts %d" % (n, item["ts"]))
        # Every acknowledged stream line is there, exactly; unacknowledged ones may be or not.
        for k in range(2):
            pts = self.d.readings("cr-stream-%d" % k, limit=100000)
            have = {p["ts"]: p["values"] for p in pts}
            for line in range(stream_ok[k]):
                ts = T0 + line
                self.assertEqual(have.get(ts), {"v": float(line)},
                                 "stream %d: acknowledged line %d lost" % (k, line + 1))
        self.d.stop()
        self.assertEqual(integrity_check(self.d.db_path), "ok")


class GroupCrash(Base):
    """kill -9 after a device group's training: every member comes back serving the group's
    version from its saved detector and the one stored copy of the group's model (schema 5:
    a checkpoint row the members' detectors and versions refer to), parsed once, and the
    members are stepped together again; the checkpoints' reference counts stay exact."""

    def test_kill9_group_members_restored(self):
        import test_groups as tg
        tp = tg.tp
        self.d.cleanup()
        self.d = vt.Vigild(config=tp.make_config(tp.config_text(0)))
        self.d.start()
        d, devs = self.d, ["ka", "kb", "kc"]
        for dev in devs:
            tg.put_group(d, dev, "kg")
        rng = tp.random.Random(31)
        rows = {dev: tg.squashed(tp.WARMUP + 30, 4 * k, tp.OMEGA_A, 0.01, rng)
                for k, dev in enumerate(devs)}
        tg.feed_together(d, devs, {dev: r[:tp.WARMUP] for dev, r in rows.items()}, 0)

        def serving():
            s = [tp.status(d, dev) for dev in devs]
            if any(x["training"] or x["state"] == "learning" for x in s) or \
                    d.metric("vigil_train_queue_jobs"):
                return None
            return s if all(x["model"] == s[0]["model"] for x in s) else None
        st = tp.wait_for("the group serving one version", serving, 60)
        self.assertEqual(st[0]["model"]["kind"], "lstm", st)
        tg.feed_together(d, devs, {dev: r[tp.WARMUP:tp.WARMUP + 20] for dev, r in rows.items()},
                         tp.WARMUP)
        before = {dev: (tp.status(d, dev), tp.models(d, dev)["versions"]) for dev in devs}
        nv = sum(len(v) for _, v in before.values())
        # The versions and detectors are saved asynchronously after the training: wait until
        # the database has all of them, each referring to a stored checkpoint (sqlite3 beside
        # vigild, WAL), then kill.

        def saved():
            p = subprocess.run(
                ["sqlite3", d.db_path,
                 "SELECT (SELECT count(*) FROM models WHERE ckpt_id IS NOT NULL),"
                 " (SELECT count(DISTINCT ckpt_id) FROM detectors WHERE ckpt_id IS NOT NULL),"
                 " (SELECT count(*) FROM detectors WHERE ckpt_id IS NOT NULL);"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
            return p.returncode == 0 and p.stdout.strip() == "%d|1|%d" % (nv, len(devs))
        tp.wait_for("the group's versions and detectors in the database", saved, 30)
        d.kill()
        self.assertEqual(integrity_check(d.db_path), "ok")
        d.start()
        self.assertIn("(0 unusable, 1 shared models)", d.log())
        for dev in devs:
            s = tp.status(d, dev)
            self.assertNotEqual(s["state"], "learning", s)
            self.assertEqual((s["group"], s["model"]), ("kg", before[dev][0]["model"]), s)
            self.assertEqual(tp.models(d, dev)["versions"], before[dev][1], dev)
        b0 = d.metric("vigil_readings_batched_total")
        tg.feed_together(d, devs, {dev: r[tp.WARMUP + 20:] for dev, r in rows.items()},
                         tp.WARMUP + 20)
        self.assertEqual(d.metric("vigil_readings_batched_total") - b0, 30)
        d.stop()
        p = subprocess.run(
            ["sqlite3", d.db_path,
             "SELECT count(*) FROM ckpts c WHERE refs <> (SELECT count(*) FROM models"
             " WHERE ckpt_id = c.id) + (SELECT count(*) FROM detectors WHERE ckpt_id = c.id)"
             " OR refs < 1;"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "0"), p.stderr)


class WriteErrors(Base):
    """The data volume refuses writes (a file size limit, RLIMIT_FSIZE, with SIGXFSZ ignored):
    writes get a JSON 5xx error or a stream "fail A B", nothing of a failed batch is stored,
    the daemon stays up and readable, stops with exit code 0, and after a restart without the
    limit every acknowledged reading is there and the database is intact."""

    LIMIT = 3 * 1024 * 1024

    def setUp(self):
        import resource
        import signal as sig

        def limit():
            sig.signal(sig.SIGXFSZ, sig.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.LIMIT, self.LIMIT))

        self.d = vt.Vigild(preexec_fn=limit)
        self.d.start()

    def test_write_errors(self):
        acked, failed = [], []
        for j in range(300):
            body = json.dumps([{"device": "we-http", "ts": j * 1000 + i,
                                "values": {"v": i * 1.1, "w": j}} for i in range(1000)])
            st, hdrs, data = vt.http_request("POST", self.d.url("/v1/readings"), body=body)
            if st == 200:
                acked.append(j)
                continue
            self.assertIn(st, (500, 503, 507), data)
            self.assertIn("error", vt.loads(data))
            failed.append(j)
            if len(failed) >= 3:
                break
        self.assertTrue(failed, "the size limit never refused a write: test is too weak")
        self.assertGreater(len(acked), 0)
        # The stream: every line ends up covered by "ok" or "fail", and the daemon keeps going.
        c = self.d.stream_connect()
        n = 20000
        try:
            c.send("".join("m,device=we-stream v=%d %d\n" % (i, (T0 + i + 1) * 10 ** 6)
                           for i in range(n)))
            got = c.finish()
        finally:
            c.close()
        self.assertEqual(vt.errors_of(got), {})
        fail_ranges = []
        for r in got:
            if r.startswith("fail "):
                _, a, b, _reason = r.split(" ", 3)
                fail_ranges.append((int(a), int(b)))
        self.assertEqual(max([vt.last_ok(got)] + [b for _, b in fail_ranges]), n, got[-5:])
        # Up (/ping); /healthz is 503 naming the storage while the last write failed, 200 if
        # the last one (the stream's, or a model's) happened to fit under the limit.
        self.assertEqual(self.d.get("/ping")[0], 204)
        st, _, body = self.d.get("/healthz")
        if st != 200:
            self.assertEqual(st, 503, body)
            self.assertIn("unhealthy: storage: writes are refused", vt.loads(body)["error"])
        self.assertEqual(self.d.device("we-http")["points"], 1000 * len(acked))
        self.assertGreaterEqual(self.d.metric("vigil_store_commit_errors_total", need=True), 1)
        # The stop's saves may not fit under the limit either: then vigild says what it lost
        # and exits 1 (docs/reliability.md "stopfail"); a clean stop otherwise.
        self.d.stop(codes=(0, 1))
        stop_log = self.d.log().rsplit("signal 15", 1)[-1]
        self.assertNotEqual("stopped cleanly" in stop_log, "stopped, but" in stop_log, stop_log)
        self.d.preexec_fn = None
        self.assertEqual(integrity_check(self.d.db_path), "ok")
        self.d.start()
        pts = self.d.readings("we-http", limit=100000)
        self.assertEqual(sorted({p["ts"] // 1000 for p in pts}), acked)
        self.assertEqual(len(pts), 1000 * len(acked))
        for p in pts:
            j, i = divmod(p["ts"], 1000)
            if p["values"] != {"v": i * 1.1, "w": float(j)}:
                self.fail("we-http: %r" % p)
        failed_lines = set()
        for a, b in fail_ranges:
            failed_lines.update(range(a, b + 1))
        st, _, body = self.d.get("/v1/devices/we-stream/readings?limit=100000")
        have = {p["ts"] for p in vt.loads(body)["points"]} if st == 200 else set()
        for line in range(1, n + 1):
            if line in failed_lines:
                self.assertNotIn(T0 + line, have, "a line reported as failed was stored")
            else:
                self.assertIn(T0 + line, have, "acknowledged stream line %d lost" % line)
        sys.stderr.write("[write errors: %d HTTP batches acked, %d refused; stream fail ranges %r]\n"
                         % (len(acked), len(failed), fail_ranges[:5]))
        self.d.stop()


if __name__ == "__main__":
    vt.main()

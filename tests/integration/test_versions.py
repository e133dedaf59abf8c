#!/usr/bin/python3
"""vigild integration: model versions, the training queue and the retraining schedule (issue 4).

1. KeepK: with model.versions = 2, after a rollback to an old version and several later
   trainings (which do not swap), the serving version is still kept (in memory and in the
   database, beside the 2 newest), and after a restart it can still be rolled back to.
2. TrainQueue: many devices become due for training at once with one training thread: every
   one of them is trained (none dropped), and the queue depth in /metrics returns to 0.
3. RetrainSeconds: with model.retrain_seconds set and retrain_every = 0, a device is retrained
   when its readings' timestamps have advanced that far (readings' time, not the wall clock).
4. RollbackKinds (session 44): every version that served is a rollback target, not only an
   LSTM's. A device served by a linear model, then by an LSTM (PUT weights), is rolled back to
   the linear version: 200, the status and GET .../model show it serving (kind linear, that
   version), its predictions go on (and are the linear model's: near the oscillator's readings)
   and it still serves after a restart, from which a rollback to it works again; the same for
   persistence. A linear version recorded by an older vigild (its kept parameters removed from
   the database, as such a vigild left it) answers 409 saying why (404 before session 45); a
   kept checkpoint in a later vigild's format is 500 "corrupt", not that 409. Session 45: a
   version trained on other channels than the device has now (a channel came since) is 409
   naming both counts, not 500 "corrupt" (kept for a flipped byte: the CRC), and is not marked
   "rollback": true. Session 46: a restart with another model.hidden leaves a device's size
   (its LSTM version rolls back); a kept LSTM of another size is 409 naming both sizes
   (hidden, layers; session 47). A record kept before session 45 (no "channels" in its JSON) is judged by its
   kept bytes' header in GET .../model ("rollback": false on a device with another channel
   count now).

Python 3 standard library.
"""

import os
import random
import re
import sqlite3
import struct
import subprocess
import sys
import zlib

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import vigiltest as vt  # noqa: E402

T0 = 1_700_000_000_000


def feed_const(d, device, n, start_k, value=(1.0, 2.0, 3.0), step_ms=1000):
    """Posts n readings of exactly constant channels (flat: every predictor is persistence, so
    no later training validates better than what serves and none swaps)."""
    ts = [T0 + step_ms * k for k in range(start_k, start_k + n)]
    tp.post_readings(d, device, [list(value)] * n, ts, tp.CH3)
    return tp.wait_scored(d, device, start_k + n)


class KeepK(tp.DaemonPerTest):
    CONFIG = tp.config_text(0, extra="versions = 2\n")

    def retrain_no_swap(self, dev):
        before = tp.models(self.d, dev)
        n0 = max(v["version"] for v in before["versions"])
        r = self.d.curl("POST", "/v1/devices/%s/model/retrain" % dev)
        self.assertEqual(r.status, 202, r)

        def done():
            m = tp.models(self.d, dev)
            new = [v for v in m["versions"] if v["version"] > n0]
            return (m, new[0]) if new and not m["training"] else None
        m, v = tp.wait_for("a new version of %s" % dev, done, 60)
        self.assertFalse(v["swapped"], v)
        return m

    def stored_versions(self, dev):
        p = subprocess.run(["sqlite3", self.d.db_path,
                            "SELECT m.version FROM models m JOIN devices d ON d.id = m.device_id"
                            " WHERE d.name = '%s' ORDER BY m.version;" % dev],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [int(x) for x in p.stdout.split()]

    def test_serving_version_survives_trims_and_restart(self):
        d, dev = self.d, "keep-1"
        feed_const(d, dev, 400, 0)
        tp.wait_idle(d, dev, 1)
        w1 = tp.st_build(tp.lstm_tensors(3, tp.HIDDEN, 3, 1))
        w2 = tp.st_build(tp.lstm_tensors(3, tp.HIDDEN, 3, 2))
        v1 = None
        for w in (w1, w2):
            r = d.curl("PUT", "/v1/devices/%s/model/weights" % dev, "--data-binary", "@-",
                       "-H", "Content-Type: application/octet-stream", stdin=w)
            self.assertEqual(r.status, 200, r)
            if v1 is None:
                v1 = r.json()["versions"][0]["version"]
        r = d.curl("POST", "/v1/devices/%s/model/rollback" % dev, "--data-binary",
                   '{"version": %d}' % v1)
        self.assertEqual(r.status, 200, r)
        k = 400
        for _ in range(3):  # three trainings that keep v1 serving: each trims to 2 + serving
            feed_const(d, dev, 5, k)
            k += 5
            m = self.retrain_no_swap(dev)
        vs = [v["version"] for v in m["versions"]]
        self.assertEqual(m["serving"]["version"], v1, m)
        self.assertIn(v1, vs, "the serving version was trimmed from memory: %r" % vs)
        self.assertEqual(len(vs), 3, vs)  # the 2 newest and the serving one
        top = sorted(vs)[-2:]
        tp.wait_for("the database to hold the same versions",
                    lambda: self.stored_versions(dev) == sorted([v1] + top), 30)
        served = [v for v in m["versions"] if v["version"] == v1][0]
        self.assertTrue(served["serving"] and served["rollback"], served)

        d.stop()
        d.start()
        m2 = tp.models(d, dev)
        self.assertEqual(sorted(v["version"] for v in m2["versions"]), sorted([v1] + top), m2)
        r = d.curl("POST", "/v1/devices/%s/model/rollback" % dev, "--data-binary",
                   '{"version": %d}' % v1)
        self.assertEqual(r.status, 200, r)
        st, _, body = tp.req(d, "GET", "/v1/devices/%s/model/weights" % dev)
        self.assertEqual(st, 200, body[:300])
        got = tp.st_parse(body)
        want = tp.st_parse(w1)
        self.assertEqual({n: v[2] for n, v in got.items() if n in want},
                         {n: v[2] for n, v in want.items()})


class RollbackKinds(tp.DaemonPerTest):
    def roll(self, dev, version, want=200):
        r = self.d.curl("POST", "/v1/devices/%s/model/rollback" % dev, "--data-binary",
                        '{"version": %d}' % version)
        self.assertEqual(r.status, want, r)
        if want == 200:
            self.assertEqual(r.json(), {"device": dev, "serving": version})
        return r

    def serves(self, dev, version, kind, k, rows):
        """version (kind) serves dev: in the status, in GET .../model; then readings rows (from
        reading k) are scored by it and have predictions. Returns the predictions."""
        self.assertEqual(tp.status(self.d, dev)["model"], {"version": version, "kind": kind})
        m = tp.models(self.d, dev)
        self.assertEqual(m["serving"]["version"], version, m)
        self.assertEqual(m["serving"]["kind"], kind, m)
        self.assertEqual([v["version"] for v in m["versions"] if v["serving"]], [version], m)
        ts = self.feed(dev, rows, k)
        s = tp.status(self.d, dev)
        self.assertEqual(s["model"], {"version": version, "kind": kind}, s)
        pts = self.d.get_json("/v1/devices/%s/predictions?from=%d" % (dev, ts[0]))["points"]
        self.assertEqual([p["ts"] for p in pts], ts)
        for p in pts:
            self.assertEqual(set(p["predicted"]), set(tp.CH3), p)
        return pts

    def first_model(self, dev, kind):
        m = tp.wait_idle(self.d, dev, 1)
        first = m["serving"]
        self.assertEqual(first["kind"], kind, m)
        v = [x for x in m["versions"] if x["version"] == first["version"]][0]
        self.assertTrue(v["swapped"] and v["rollback"], v)
        return first["version"]

    def put_lstm(self, dev, seed):
        r = self.d.curl("PUT", "/v1/devices/%s/model/weights" % dev, "--data-binary", "@-",
                        "-H", "Content-Type: application/octet-stream",
                        stdin=tp.st_build(tp.lstm_tensors(3, tp.HIDDEN, 3, seed)))
        self.assertEqual(r.status, 200, r)
        v = r.json()["versions"][0]["version"]
        self.assertEqual(tp.status(self.d, dev)["model"], {"version": v, "kind": "lstm"})
        return v

    def test_linear_version(self):
        dev, rng = "lin-1", random.Random(11)
        self.feed(dev, tp.rotation(500, 0, tp.OMEGA_A, 0.01, rng), 0)
        lin = self.first_model(dev, "linear")
        lstm = self.put_lstm(dev, 1)
        self.roll(dev, lin)
        pts = self.serves(dev, lin, "linear", 500, tp.rotation(20, 500, tp.OMEGA_A, 0.01, rng))
        # The linear model's coefficients serve: it predicts the oscillator near the noise
        # (the random LSTM that served before is far off; persistence by some 0.15).
        for p in pts[2:]:
            for c in tp.CH3:
                self.assertLess(abs(p["predicted"][c] - p["actual"][c]), 0.08, p)
        r = self.d.curl("GET", "/v1/devices/%s/model/weights" % dev)
        self.assertEqual(r.status, 409, r)  # safetensors is an LSTM's format only
        tp.check_versions(self, tp.models(self.d, dev))

        self.d.stop()
        self.d.start()
        self.serves(dev, lin, "linear", 520, tp.rotation(5, 520, tp.OMEGA_A, 0.01, rng))
        self.roll(dev, lstm)  # forward to the LSTM, then back to the linear model again
        self.assertEqual(tp.status(self.d, dev)["model"], {"version": lstm, "kind": "lstm"})
        self.roll(dev, lin)
        self.serves(dev, lin, "linear", 525, tp.rotation(5, 525, tp.OMEGA_A, 0.01, rng))

    def test_persistence_version(self):
        dev = "flat-1"
        feed_const(self.d, dev, 400, 0)
        per = self.first_model(dev, "persistence")
        self.put_lstm(dev, 2)
        self.roll(dev, per)
        pts = self.serves(dev, per, "persistence", 400, [[1.0, 2.0, 3.0]] * 5)
        for p in pts:
            self.assertEqual(p["predicted"], {"x": 1.0, "y": 2.0, "z": 3.0}, p)
        self.d.stop()
        self.d.start()
        self.serves(dev, per, "persistence", 405, [[1.0, 2.0, 3.0]] * 5)

    def test_older_vigild_version_409(self):
        dev, rng = "old-1", random.Random(12)
        self.feed(dev, tp.rotation(500, 0, tp.OMEGA_A, 0.01, rng), 0)
        lin = self.first_model(dev, "linear")
        lstm = self.put_lstm(dev, 3)
        self.d.stop()
        # What a vigild before session 44 stored for a linear version: no kept bytes.
        p = subprocess.run(["sqlite3", self.d.db_path,
                            "UPDATE models SET ckpt_id = NULL, info = json_set(info, '$.rollback',"
                            " json('false')) WHERE version = %d AND device_id = (SELECT id FROM"
                            " devices WHERE name = '%s'); SELECT changes();" % (lin, dev)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "1"), p.stderr)
        self.d.start()
        # 409 (session 45; was 404): the version is kept, its state refuses the request, as
        # the other refusals of a thing that exists are ("serves no LSTM", "has no model yet").
        r = self.roll(dev, lin, 409)
        self.assertEqual(r.json()["error"],
                         "rollback: version %d of device '%s' kept no parameters: it was trained "
                         "by an older vigild, which kept only an LSTM's weights (versions trained "
                         "since keep theirs)" % (lin, dev))
        r = self.roll(dev, 999, 404)
        self.assertIn("keeps no version 999 that served", r.json()["error"])
        self.assertEqual(tp.status(self.d, dev)["model"], {"version": lstm, "kind": "lstm"})

    def test_later_checkpoint_format_500(self):
        """A kept LSTM checkpoint in a format this vigild does not know (a later vigild's: its
        format number raised, its CRC made right, in a row of its own so the saved detector's
        stays) is 500 "corrupt", not the older vigild's 409 (the review's fix: it was that 404,
        the read's ERR_INVAL taken for the missing parameters)."""
        dev, rng = "new-1", random.Random(13)
        self.feed(dev, tp.rotation(500, 0, tp.OMEGA_A, 0.01, rng), 0)
        lin = self.first_model(dev, "linear")
        lstm = self.put_lstm(dev, 4)
        self.roll(dev, lin)
        self.d.stop()
        db = sqlite3.connect(self.d.db_path)
        where = (" WHERE version = ? AND device_id = (SELECT id FROM devices WHERE name = ?)")
        (data,) = db.execute("SELECT data FROM ckpts WHERE id = (SELECT ckpt_id FROM models"
                             + where + ")", (lstm, dev)).fetchone()
        b = bytearray(data)
        self.assertEqual(bytes(b[:4]), b"VGLM")
        b[4:8] = struct.pack("<I", 99)
        b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])))
        with db:
            cid = db.execute("INSERT INTO ckpts(hash, refs, data) VALUES(0, 0, ?)",
                             (bytes(b),)).lastrowid
            db.execute("UPDATE models SET ckpt_id = ?" + where, (cid, lstm, dev))
        db.close()
        self.d.start()
        r = self.roll(dev, lstm, 500)
        self.assertEqual(r.json()["error"], "rollback: corrupt or truncated data")
        self.assertEqual(tp.status(self.d, dev)["model"], {"version": lin, "kind": "linear"})

    def test_other_channels_409_flipped_byte_500(self):
        """Session 45: a device that gained a channel (a reading with a new field: its
        detector starts over on 4) keeps its versions trained on 3; a rollback to one is the
        operator's request that cannot be done, 409 naming both counts (it was 500 "corrupt":
        the detector's ERR_INVAL for the shape), and GET .../model no longer marks them as
        rollback points. A linear version's record with one byte flipped is still 500."""
        dev, rng = "chan-1", random.Random(14)
        self.feed(dev, tp.rotation(500, 0, tp.OMEGA_A, 0.01, rng), 0)
        lin = self.first_model(dev, "linear")
        lstm = self.put_lstm(dev, 5)
        # The flipped byte first, on the 3 channels the version has (the CRC fails): 500.
        self.d.stop()
        db = sqlite3.connect(self.d.db_path)
        where = (" WHERE version = ? AND device_id = (SELECT id FROM devices WHERE name = ?)")
        (cid, data) = db.execute("SELECT id, data FROM ckpts WHERE id = (SELECT ckpt_id FROM"
                                 " models" + where + ")", (lin, dev)).fetchone()
        self.assertEqual(bytes(data[:4]), b"VGSP")
        b = bytearray(data)
        b[20] ^= 0x40
        with db:
            db.execute("UPDATE ckpts SET data = ? WHERE id = ?", (bytes(b), cid))
        self.d.start()
        r = self.roll(dev, lin, 500)
        self.assertEqual(r.json()["error"], "rollback: corrupt or truncated data")
        self.d.stop()
        with db:
            db.execute("UPDATE ckpts SET data = ? WHERE id = ?", (bytes(data), cid))
        db.close()
        self.d.start()
        self.roll(dev, lin)
        self.roll(dev, lstm)
        # A fourth channel: the versions were trained on 3.
        ts = [T0 + 1000 * k for k in range(500, 505)]
        tp.post_readings(self.d, dev, [[0.1, 0.2, 2.0, 7.0]] * 5, ts, tp.CH3 + ["w"])
        tp.wait_scored(self.d, dev, 505)
        for v in (lin, lstm):
            r = self.roll(dev, v, 409)
            self.assertEqual(r.json()["error"],
                             "rollback: version %d of device '%s' was trained on 3 channels "
                             "and the device has 4 now: it cannot serve them (a version "
                             "serves only the channels it was trained on)" % (v, dev))
        m = tp.models(self.d, dev)
        for v in m["versions"]:
            self.assertFalse(v["rollback"], v)
        # After a restart too (the versions' channel counts are kept with them).
        self.d.stop()
        self.d.start()
        m = tp.models(self.d, dev)
        self.assertEqual(sorted(v["version"] for v in m["versions"]), [lin, lstm], m)
        for v in m["versions"]:
            self.assertFalse(v["rollback"], v)
        # Versions recorded before session 45 do not say their channels: the kept bytes
        # tell, when the rollback installs them (the same 409, not 500).
        self.d.stop()
        p = subprocess.run(["sqlite3", self.d.db_path,
                            "UPDATE models SET info = json_remove(info, '$.channels') WHERE"
                            " device_id = (SELECT id FROM devices WHERE name = '%s');"
                            " SELECT changes();" % dev],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "2"), p.stderr)
        self.d.start()
        for v in (lin, lstm):
            r = self.roll(dev, v, 409)
            self.assertIn("was trained on 3 channels and the device has 4 now", r.json()["error"])


    def test_record_without_channels_judged_by_its_header(self):
        """Session 46: records kept by a vigild before session 45 name no channels. GET
        .../model reads their kept bytes' header (a linear record's channel count, an LSTM
        checkpoint's outputs) and lists them with "channels" and, on a device that has another
        channel count now, "rollback": false (they were listed true until a rollback to them
        was refused); a record on as many channels as its device stays a rollback point."""
        dev, rng = "pre45-1", random.Random(16)
        self.feed(dev, tp.rotation(500, 0, tp.OMEGA_A, 0.01, rng), 0)
        lin = self.first_model(dev, "linear")
        lstm = self.put_lstm(dev, 8)
        same = "pre45-2"
        self.feed(same, tp.rotation(500, 0, tp.OMEGA_A, 0.01, rng), 0)
        same_lin = self.first_model(same, "linear")
        ts = [T0 + 1000 * k for k in range(500, 505)]
        tp.post_readings(self.d, dev, [[0.1, 0.2, 2.0, 7.0]] * 5, ts, tp.CH3 + ["w"])
        tp.wait_scored(self.d, dev, 505)
        self.d.stop()
        p = subprocess.run(["sqlite3", self.d.db_path,
                            "UPDATE models SET info = json_remove(info, '$.channels');"
                            " SELECT changes();"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "3"), p.stderr)
        self.d.start()
        m = tp.models(self.d, dev)
        self.assertEqual(sorted((v["version"], v["kind"], v.get("channels"), v["rollback"])
                                for v in m["versions"]),
                         sorted([(lin, "linear", 3, False), (lstm, "lstm", 3, False)]), m)
        # Listed again: the same answer, the headers read once (session 47: a listing after
        # which no version was appended takes no lock for the peek).
        self.assertEqual(tp.models(self.d, dev), m)
        m = tp.models(self.d, same)
        self.assertEqual([(v["version"], v.get("channels"), v["rollback"])
                          for v in m["versions"]], [(same_lin, 3, True)], m)
        for v in (lin, lstm):
            r = self.roll(dev, v, 409)
            self.assertIn("was trained on 3 channels and the device has 4 now", r.json()["error"])
        self.roll(same, same_lin)

    def test_lstm_of_another_size_409(self):
        """Session 46: model.hidden changed in the config shapes new detectors only, so a
        device made before keeps its size and its LSTM versions roll back (200). A kept LSTM
        of another size than the device's model (here the record of a device made after the
        change, put in the older device's version row) is 409 naming both sizes (hidden x
        layers, session 47) and model.hidden and model.layers, not 500 "corrupt", and the
        device stays as it was."""
        dev, rng = "size-1", random.Random(15)
        self.feed(dev, tp.rotation(500, 0, tp.OMEGA_A, 0.01, rng), 0)
        lin = self.first_model(dev, "linear")
        lstm = self.put_lstm(dev, 6)
        self.roll(dev, lin)
        self.d.stop()
        vt.write_file(self.d.config, tp.config_text(0, hidden=2 * tp.HIDDEN))
        self.d.start()
        self.roll(dev, lstm)
        self.roll(dev, lin)
        big = "size-2"
        self.feed(big, tp.rotation(500, 0, tp.OMEGA_A, 0.01, rng), 0)
        self.first_model(big, "linear")
        r = self.d.curl("PUT", "/v1/devices/%s/model/weights" % big, "--data-binary", "@-",
                        "-H", "Content-Type: application/octet-stream",
                        stdin=tp.st_build(tp.lstm_tensors(3, 2 * tp.HIDDEN, 3, 7)))
        self.assertEqual(r.status, 200, r)
        big_v = r.json()["versions"][0]["version"]
        self.d.stop()
        p = subprocess.run(["sqlite3", self.d.db_path,
                            "UPDATE models SET ckpt_id = (SELECT ckpt_id FROM models WHERE"
                            " version = %d AND device_id = (SELECT id FROM devices WHERE name ="
                            " '%s')) WHERE version = %d AND device_id = (SELECT id FROM devices"
                            " WHERE name = '%s'); SELECT changes();" % (big_v, big, lstm, dev)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "1"), p.stderr)
        self.d.start()
        r = self.roll(dev, lstm, 409)
        # Both sizes named (session 47; before, only the settings), why it is refused and what
        # the operator can do (session 51; before, "the layers are no setting").
        self.assertEqual(r.json()["error"],
                         "rollback: version %d of device '%s' is an LSTM of hidden %d, layers 1, "
                         "and cannot serve the device, whose model keeps the size it was made "
                         "with: hidden %d, layers 1; roll back to a version of that size (the "
                         "device's own trainings make no other; GET .../model lists the versions "
                         "kept)"
                         % (lstm, dev, 2 * tp.HIDDEN, tp.HIDDEN))
        self.assertEqual(tp.status(self.d, dev)["model"], {"version": lin, "kind": "linear"})
        self.roll(dev, lin)

class TrainQueue(tp.DaemonPerTest):
    # One training thread, many devices due at once: the due-set holds each of them once and
    # serves them all in turn (the old queue of 64 jobs dropped the rest, and a device that
    # sent no more readings was never trained).
    N, WARM = 90, 100
    CONFIG = tp.config_text(0, warmup=WARM, extra="train_threads = 1\n")

    def test_many_devices_due_at_once_all_trained(self):
        d = self.d
        items = []
        for i in range(self.N):
            for k in range(self.WARM):
                items.append({"device": "q-%02d" % i, "ts": T0 + 1000 * k,
                              "values": {"x": (k * (i + 3)) % 17 * 0.1, "y": (k % 7) * 0.3,
                                         "z": 1.0 + (k % 5) * 0.01 * i}})
        for j in range(0, len(items), 5000):
            tp.jreq(d, "POST", "/v1/readings", items[j:j + 5000])
        # Everything is due once scored; at most N entries ever wait.
        for i in range(self.N):
            tp.wait_scored(d, "q-%02d" % i, self.WARM)
        depth = d.metric("vigil_train_queue_jobs")
        self.assertIsNotNone(depth)
        self.assertLessEqual(depth, self.N)

        def all_trained():
            return all(len(tp.models(d, "q-%02d" % i)["versions"]) >= 1 for i in range(self.N))
        tp.wait_for("all %d devices trained" % self.N, all_trained, 180)
        for i in range(self.N):
            s = tp.status(d, "q-%02d" % i)
            self.assertNotEqual(s["state"], "learning", s)
        tp.wait_for("an empty training queue",
                    lambda: d.metric("vigil_train_queue_jobs") == 0, 60)
        self.assertGreaterEqual(d.metric("vigil_model_trainings_total"), self.N)
        # A retrain asked for twice while the first waits or runs is merged, not queued twice.
        r1 = d.curl("POST", "/v1/devices/q-00/model/retrain")
        r2 = d.curl("POST", "/v1/devices/q-00/model/retrain")
        self.assertEqual(r1.status, 202, r1)
        self.assertIn(r2.status, (202, 409), r2)  # 202 only if the first already finished


class RetrainSeconds(tp.DaemonPerTest):
    # No count schedule: only the readings' time asks for retraining, every 60 s of it. One
    # training thread: the due-set is first in, first out, which the marker below relies on.
    CONFIG = tp.config_text(0, extra="retrain_seconds = 60\ntrain_threads = 1\n")

    def test_retrained_by_readings_time(self):
        d, dev = self.d, "rs-1"
        rng = tp.random.Random(5)
        rows = tp.rotation(tp.WARMUP + 20, 0, tp.OMEGA_A, 0.01, rng)
        # Warm-up readings 1 s apart: the first training.
        ts = [T0 + 1000 * k for k in range(tp.WARMUP)]
        tp.post_readings(d, dev, rows[:tp.WARMUP], ts, tp.CH3)
        tp.wait_scored(d, dev, tp.WARMUP)
        m = tp.wait_idle(d, dev, 1)
        n0 = len(m["versions"])
        last = ts[-1]
        # Readings 10 s apart: 50 s of readings' time asks for nothing (wall time does not
        # count: the daemon is given time to act on a wrong request) ...
        for k in range(1, 6):
            tp.post_readings(d, dev, [rows[tp.WARMUP + k]], [last + 10000 * k], tp.CH3)
        tp.wait_scored(d, dev, tp.WARMUP + 5)
        # A request is asked as its reading is scored (the same lock): a wrong one is in the
        # due-set now. A later event that must come after it: rs-m's first training, asked
        # now, trains after it (session 55; before, a 1.5 s sleep, then a look).
        tp.post_readings(d, "rs-m", rows[:tp.WARMUP], ts, tp.CH3)
        tp.wait_idle(d, "rs-m", 1)
        m = tp.models(d, dev)
        self.assertEqual((len(m["versions"]), m["training"]), (n0, False), m)
        # ... the reading 60 s after the last training does.
        tp.post_readings(d, dev, [rows[tp.WARMUP + 6]], [last + 60000], tp.CH3)
        tp.wait_scored(d, dev, tp.WARMUP + 6)
        m = tp.wait_idle(d, dev, n0 + 1)
        self.assertEqual(len(m["versions"]), n0 + 1, m)
        self.assertEqual(m["versions"][0]["metrics"]["rows"] > 0, True, m["versions"][0])


class StopSkipsQueuedTrainings(tp.DaemonPerTest):
    """A stop does not run the trainings still waiting in the due-set (at fleet scale that was
    minutes of training before vigild exited): it says how many it left, and exits cleanly. The
    next start asks for each of them again at once, with no new reading (before blob format 4 a
    device's detector asked again only warm-up / 4 + 1 readings later, so a device whose feed
    had stopped never got its first model)."""
    CONFIG = tp.config_text(0, warmup=20, extra="train_threads = 1\n")

    def queue_trainings(self, ndev):
        """Posts 25 readings to each of ndev devices ("q-0" ...) and waits for 50 trainings
        queued (one training thread: most wait). Also test_restartstop.py's FailedStartLines."""
        lines = "".join("m,device=q-%d a=%d,b=%d,c=%d %d\n"
                        % (i, (k * 7 + i) % 11, (k * 5 + i) % 13, k % 3, T0 + 1000 * k)
                        for i in range(ndev) for k in range(25))
        self.assertEqual(self.d.write_lp(lines, precision="ms").status, 204)
        queued = tp.wait_for("trainings queued", lambda: (
            self.d.metric("vigil_train_queue_jobs") or 0) >= 50 or None, 60)
        self.assertTrue(queued)

    def test_stop_leaves_queued_trainings(self):
        d, ndev = self.d, 300
        self.queue_trainings(ndev)
        d.stop(timeout=60)
        m = re.search(r"pipeline: (\d+) due trainings not run at stop", d.log())
        self.assertIsNotNone(m, d.log()[-2000:])
        skipped = int(m.group(1))
        self.assertGreater(skipped, 0)

        d.start()
        asked = re.findall(r"(\d+) trainings asked for before the stop asked again", d.log())
        self.assertEqual(len(asked), 2, d.log()[-2000:])  # one line a start
        self.assertGreaterEqual(int(asked[-1]), skipped)
        tp.wait_for("the queued trainings run",
                    lambda: d.metric("vigil_train_queue_jobs") == 0 or None, 180)
        for i in range(ndev):  # each has its first model (one may still be training: waited)
            tp.wait_idle(d, "q-%d" % i, 1, timeout=30)


if __name__ == "__main__":
    vt.main()

#!/usr/bin/python3
"""vigild integration (session 69): a damaged readings chunk is said, not served.

Damaged.test_flipped_byte: readings of device "pump" are written and vigild stopped (its
pending readings then in chunk rows); one byte inside the oldest chunk's data is changed with
Python's sqlite3, as a bad disk would. Then:
- `vigild --restore` of that database into another folder is refused (exit 1), naming the
  device and the chunk's time range and the way out; the folder gets no vigil.db. With
  `--accept-damaged` (task dmg69) it is restored, the chunk named in a warning.
- vigild started again on it answers a readings query over that range with a 500 naming the
  device and "damaged", never with the changed values; a range past the chunk still answers;
  the log says it once (device, time range) though asked twice; vigil_store_damaged_chunks_total
  counts both reads (and a training's, when one was asked before the stop); the predictions over
  that range answer with null actual values inside the chunk (task dmg69; before: a 500).
On main (before session 69) the chunk had no checksum: the query answered 200 with a wrong
value, the restore succeeded and there was no such metric.
"""

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402

T0 = 1_700_000_000_000
N = 300


class Damaged(unittest.TestCase):
    def setUp(self):
        self.d = vt.Vigild()
        self.addCleanup(self.d.cleanup)

    def damage_oldest(self):
        """Flips a byte inside the oldest readings row of the stopped vigild's database; returns
        that row's (t0, t_last)."""
        db = sqlite3.connect(self.d.db_path)
        t0, t_last, data = db.execute(
            "SELECT t0, t_last, data FROM readings ORDER BY t0 LIMIT 1").fetchone()
        data = bytearray(data)
        data[len(data) // 2] ^= 0x10
        db.execute("UPDATE readings SET data = ? WHERE t0 = ?", (bytes(data), t0))
        db.commit()
        db.close()
        return t0, t_last

    def stored_and_damaged(self):
        """Starts vigild, writes N + 10 pump readings in two runs two hours apart (two chunk
        rows: a chunk spans at most an hour), stops it and damages the older row (damage_oldest,
        whose (t0, t_last) it returns)."""
        d = self.d
        d.start()
        lines = ["pump temp=%d.5 %d" % (20 + i % 5, T0 + i * 1000) for i in range(N)]
        lines += ["pump temp=30.25 %d" % (T0 + 2 * 3600 * 1000 + i) for i in range(10)]
        r = d.write_lp("\n".join(lines) + "\n", precision="ms")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(len(d.readings("pump")), N + 10)
        d.stop()
        return self.damage_oldest()

    def predictions(self, device, frm):
        """Every prediction entry of device from frm on, following `next` links."""
        path = "/v1/devices/%s/predictions?from=%d" % (device, frm)
        points = []
        while path:
            doc = self.d.get_json(path)
            points += doc["points"]
            path = doc["next"]
        return points

    def test_flipped_byte(self):
        d = self.d
        t0, t_last = self.stored_and_damaged()
        self.assertEqual((t0, t_last), (T0, T0 + (N - 1) * 1000))
        where = 'device "pump" from %d to %d ms' % (t0, t_last)

        other = os.path.join(d.tmp, "other")
        os.mkdir(other)
        src = os.path.join(d.tmp, "damaged.db")
        shutil.copyfile(d.db_path, src)
        p = subprocess.run([vt.VIGILD, "--data-dir", other, "--restore", src],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("damaged readings chunk of " + where, p.stdout)
        self.assertIn("--accept-damaged", p.stdout)
        self.assertFalse(os.path.exists(os.path.join(other, "vigil.db")))
        # read69e 2: with --accept-damaged the copy is restored, the chunk named on stderr
        # (main: an unknown option, exit 2).
        p = subprocess.run([vt.VIGILD, "--data-dir", other, "--restore", src,
                            "--accept-damaged"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("vigild: warning: 1 damaged readings chunk restored as it is", p.stderr)
        self.assertIn("damaged readings chunk of " + where, p.stderr)
        self.assertIn("restored " + src, p.stdout)
        self.assertTrue(os.path.exists(os.path.join(other, "vigil.db")))
        p = subprocess.run([vt.VIGILD, "--data-dir", other, "--accept-damaged"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 2, p.stdout)
        self.assertIn("--accept-damaged goes with --restore FILE", p.stdout)

        d.start()
        for _ in range(2):
            st, _, body = d.get("/v1/devices/pump/readings?from=%d&to=%d" % (T0, T0 + 3600000))
            self.assertEqual(st, 500, body)
            self.assertIn("device 'pump'", body.decode())
            self.assertIn("damaged", body.decode())
        later = d.get_json("/v1/devices/pump/readings?from=%d" % (T0 + 3600 * 1000))
        self.assertEqual(len(later["points"]), 10)
        # Both reads, and a training asked again at the start (one asked before the stop, as
        # the stop's timing has it) reads its window over the chunk too: 2 or 3.
        self.assertIn(vt.metric_in(d.metrics(), "vigil_store_damaged_chunks_total", True), (2, 3),
                      d.log())
        self.assertEqual(len(re.findall("damaged readings chunk of " + re.escape(where),
                                        d.log())), 1, d.log())
        # read69e 5: the predictions over the damaged range answer, their actual values there
        # null (main: a 500 for the whole page).
        preds = self.predictions("pump", T0)
        inside = [p for p in preds if p["ts"] <= t_last]
        after = [p for p in preds if p["ts"] > t_last]
        self.assertTrue(inside and after, preds)
        self.assertEqual({str(p["actual"]) for p in inside}, {"{'temp': None}"}, inside)
        self.assertEqual({p["actual"]["temp"] for p in after}, {30.25}, after)

    def test_write_into_damaged_chunk(self):
        """read69e 1: a late write whose time fell in a damaged chunk's span failed the writer's
        whole transaction (merge_region read the row: ERR_CORRUPT), so another device's reading
        in the same request was lost too: 500 "storing points: I/O error" (main). Now the
        damaged row is replaced by what the write brings, with a warn line naming it; the other
        device's reading is stored and the range is served again."""
        d = self.d
        t0, t_last = self.stored_and_damaged()
        d.start()
        r = d.write_lp("pump temp=1.25 %d\nfan rpm=3 %d\n" % (T0 + 5500, T0 + 9000000),
                       precision="ms")
        self.assertEqual(r.status, 204, r)
        fan = d.readings("fan")
        self.assertEqual(len(fan), 1, fan)
        pts = d.get_json("/v1/devices/pump/readings?from=%d&to=%d"
                         % (T0, T0 + 3600000))["points"]
        self.assertEqual(len(pts), 1, pts)
        self.assertIn("1.25", str(pts[0]))
        self.assertIn('a write into the damaged readings chunk of device "pump" from %d to %d ms '
                      'replaces it: its %d points' % (t0, t_last, N), d.log())
        self.assertEqual(len(d.readings("pump")), 11)
        st, _, body = d.get("/healthz")
        self.assertEqual(st, 200, body)

    def test_catch_up_leaves_a_damaged_chunk_out(self):
        """The start re-reads a device's stored readings into its detector (all its history when
        no detector was saved); a damaged chunk among them dropped the whole re-read, unsaid
        (review of chk69). Now the chunk is left out, as a training's window leaves it: the
        sound chunk's 10 readings are scored (on the branch before: none)."""
        d = self.d
        self.stored_and_damaged()
        db = sqlite3.connect(d.db_path)
        db.execute("DELETE FROM detectors")  # no saved detector: its history is re-read
        db.commit()
        db.close()
        d.start()
        st = d.get_json("/v1/devices/pump/status")
        self.assertEqual(st.get("readings_scored"), 10, st)
        self.assertIn('damaged readings chunk of device "pump"', d.log())

    def test_damaged_event_details_and_limit(self):
        """read68b 4: an event whose stored details (the row's info JSON) are cut vanished from
        the listing unsaid, and a stored limit that is not a number was dropped unsaid (the
        status showed "limits": {}). Now the event is listed with its row's times, "damaged":
        true and a note; the limit is named in a warning at the start. Main: the listing had no
        event 2, and the log no word of the limit."""
        d = self.d
        d.start()
        lines = ["pump temp=%d.5 %d" % (20 + i % 5, T0 + i * 1000) for i in range(20)]
        self.assertEqual(d.write_lp("\n".join(lines) + "\n", precision="ms").status, 204)
        r = d.curl("PUT", "/v1/devices/pump", "-H", "Content-Type: application/json",
                   "--data-binary", '{"limits": {"temp": {"max": 90}}}')
        self.assertEqual(r.status, 200, r)
        d.stop()
        db = sqlite3.connect(d.db_path)
        dev = db.execute("SELECT id FROM devices WHERE name = 'pump'").fetchone()[0]
        whole = ('{"device":"pump","id":1,"start_ts":%d,"end_ts":%d,"active":false,'
                 '"ended_by":"cleared","opened_by":"error"}' % (T0 + 1000, T0 + 2000))
        db.execute("INSERT INTO events(device_id, id, start_ts, end_ts, info) VALUES (?,?,?,?,?)",
                   (dev, 1, T0 + 1000, T0 + 2000, whole))
        db.execute("INSERT INTO events(device_id, id, start_ts, end_ts, info) VALUES (?,?,?,?,?)",
                   (dev, 2, T0 + 5000, T0 + 9000, '{"device":"pump","id":2,"start_ts":17'))
        db.execute("UPDATE devices SET attrs = ? WHERE id = ?",
                   ('{"limits": {"temp": {"max": "90"}}}', dev))
        db.commit()
        db.close()
        d.start()
        evs = d.get_json("/v1/devices/pump/anomalies")["anomalies"]
        self.assertEqual(sorted(e["id"] for e in evs), [1, 2], evs)
        cut = [e for e in evs if e["id"] == 2][0]
        self.assertEqual((cut["start_ts"], cut["end_ts"], cut["active"], cut["damaged"]),
                         (T0 + 5000, T0 + 9000, False, True), cut)
        self.assertIn("damaged (not JSON)", cut["note"])
        self.assertNotIn("damaged", [e for e in evs if e["id"] == 1][0])
        self.assertIn("pipeline: device 'pump': the stored limit max of channel 'temp' is not a "
                      "finite number: not applied", d.log())


if __name__ == "__main__":
    unittest.main()

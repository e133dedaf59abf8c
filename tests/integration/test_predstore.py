"""Integration tests of the prediction ring's store hand-off (daemon/pipeline_ring.c): a device's
older predictions are sealed into blocks that go to the store (table preds) and leave memory
once committed. GET /v1/devices/{id}/predictions answers the newest model.predictions entries
across the memory/store boundary, paged or not, with no gap and no duplicate; the predictions
survive a clean restart bit for bit (the tail is sealed exactly at shutdown); a DELETE removes
the stored blocks; the store keeps a bounded number of blocks per device; an 8-channel
device's blocks go three to a page.

Starts the real vigild on loopback (tests/integration/vigiltest.py); reads the database with
Python's sqlite3 (read-only) to see the blocks."""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402

CAP = 600  # model.predictions: more than the exact tail (256), so blocks are sealed
DEV = "ps-1"
T0 = 1_700_000_000_000


def lines(dev, k0, k1):
    return "".join("m,device=%s a=%d,b=%.3f %d\n" % (dev, k % 7, (k % 11) * 0.25, T0 + 1000 * k)
                   for k in range(k0, k1))


class PredStore(vt.FreshDaemonTestCase):
    CONFIG = "[model]\npredictions = %d\n" % CAP

    def send(self, dev, k0, k1):
        for a in range(k0, k1, 500):
            r = self.d.write_lp(lines(dev, a, min(a + 500, k1)), precision="ms")
            self.assertEqual(r.status, 204, r)
        for _ in range(600):  # bounded: 60 s
            st = self.d.curl("GET", "/v1/devices/%s/status" % dev)
            if st.status == 200 and st.json().get("readings_scored", 0) >= k1 - self.base:
                return
            time.sleep(0.1)
        self.fail("readings of %s not scored in 60 s" % dev)

    def preds(self, dev, query=""):
        r = self.d.curl("GET", "/v1/devices/%s/predictions?limit=100000%s" % (dev, query))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def paged(self, dev, limit):
        """Every page of limit entries, following next."""
        out = []
        path = "/v1/devices/%s/predictions?limit=%d" % (dev, limit)
        for _ in range(100):  # bounded
            doc = self.d.get_json(path)
            out += doc["points"]
            if not doc.get("next"):
                return out
            path = doc["next"]
        self.fail("more than 100 pages")

    def blocks(self, dev):
        """(seq, n) of the device's stored blocks, read-only beside the running daemon."""
        db = sqlite3.connect("file:%s?mode=ro" % self.d.db_path, uri=True, timeout=10)
        try:
            return db.execute("SELECT p.seq, p.n FROM preds p JOIN devices d ON d.id=p.device_id"
                              " WHERE d.name=? ORDER BY p.seq", (dev,)).fetchall()
        finally:
            db.close()

    def wait_stored(self, dev, want):
        """Waits (bounded) until the store holds at least `want` blocks of dev: the writer
        commits within milliseconds, the ring frees a block at the device's next reading."""
        for _ in range(100):
            b = self.blocks(dev)
            if len(b) >= want:
                return b
            time.sleep(0.1)
        self.fail("fewer than %d blocks of %s stored: %r" % (want, dev, self.blocks(dev)))

    def check_newest(self, doc, k_end):
        ts = [p["ts"] for p in doc["points"]]
        self.assertEqual(ts, [T0 + 1000 * k for k in range(k_end - CAP, k_end)])
        self.assertEqual(doc["retained_from_ts"], T0 + 1000 * (k_end - CAP))
        for p in doc["points"]:  # the actual values are joined on both sides of the boundary
            k = (p["ts"] - T0) // 1000
            self.assertEqual(p["actual"]["a"], k % 7, p)

    def test_boundary_restart_delete(self):
        self.base = 0
        n = 1500  # about 20 blocks sealed, 5 live ones in the store beside the tail
        self.send(DEV, 0, n)
        stored = self.wait_stored(DEV, 3)
        # Every answer: the newest CAP, in order, each once, the same as the pages.
        whole = self.preds(DEV)
        self.check_newest(whole, n)
        self.assertEqual(self.paged(DEV, 97), whole["points"])
        # A window across the memory/store boundary: the store holds blocks, memory the tail
        # (at most 256 + a block not yet committed), so entry n - CAP + 100 is stored and
        # n - 50 in memory.
        lo, hi = T0 + 1000 * (n - CAP + 100), T0 + 1000 * (n - 50)
        win = self.preds(DEV, "&from=%d&to=%d" % (lo, hi))
        self.assertEqual(win["points"], [p for p in whole["points"] if lo <= p["ts"] < hi])
        self.assertEqual(win["retained_from_ts"], whole["retained_from_ts"])
        # From inside the memory part: only those, and the oldest stored one's ts as before.
        lo = T0 + 1000 * (n - 100)
        tail = self.preds(DEV, "&from=%d" % lo)
        self.assertEqual(tail["points"], [p for p in whole["points"] if p["ts"] >= lo])
        self.assertEqual(tail["retained_from_ts"], whole["retained_from_ts"])
        # Bounded: the live blocks and one spare (keep_from), never the 20 sealed.
        stored = self.blocks(DEV)
        self.assertLessEqual(sum(c for _, c in stored), CAP + 2 * 64, stored)
        self.assertEqual([s for s, _ in stored], list(range(stored[0][0], stored[-1][0] + 1)))

        # A clean restart: the same answer, bit for bit (the tail was sealed exactly).
        self.d.restart()
        again = self.preds(DEV)
        self.assertEqual(again, whole)
        self.assertIn("stored prediction blocks", self.d.log())
        # New readings continue the ring: still the newest CAP, no gap at the restart (the
        # scored count goes on from the restored detector's).
        self.base = 0
        self.send(DEV, n, n + 300)
        after = self.preds(DEV)
        self.check_newest(after, n + 300)
        old = {p["ts"]: p for p in whole["points"]}
        for p in after["points"]:
            if p["ts"] in old:
                self.assertEqual(p, old[p["ts"]])

        # DELETE: the blocks go with the device; its readings start a new ring.
        self.assertEqual(self.d.curl("DELETE", "/v1/devices/%s" % DEV).status, 200)
        self.assertEqual(self.blocks(DEV), [])
        self.assertEqual(self.d.curl("GET", "/v1/devices/%s/predictions" % DEV).status, 404)
        self.base = n + 1000
        self.send(DEV, n + 1000, n + 1100)
        doc = self.preds(DEV)
        self.assertEqual([p["ts"] for p in doc["points"]],
                         [T0 + 1000 * k for k in range(n + 1000, n + 1100)])

    def test_newest_first(self):
        """read69b's finding 9: ?limit=N gave the oldest N kept, with no way to ask for the
        newest. order=desc gives the newest N, newest first, across the memory/store boundary,
        its pages going back in time; order takes what the readings route takes."""
        dev, self.base = "ps-desc", 0
        n = 1500
        self.send(dev, 0, n)
        self.wait_stored(dev, 3)
        whole = self.preds(dev)["points"]
        self.assertEqual(len(whole), CAP)
        newest = whole[::-1]
        doc = self.d.get_json("/v1/devices/%s/predictions?limit=300&order=desc" % dev)
        self.assertEqual(doc["points"], newest[:300])
        self.assertEqual(doc["points"][0]["ts"], T0 + 1000 * (n - 1))
        # Its next page continues back in time, newest first again, to the oldest kept.
        got, path = [], "/v1/devices/%s/predictions?limit=97&order=desc" % dev
        for _ in range(100):  # bounded
            page = self.d.get_json(path)
            got += page["points"]
            if not page.get("next"):
                break
            self.assertIn("order=desc", page["next"])
            path = page["next"]
        self.assertEqual(got, newest)
        # Within a range: its newest.
        lo, hi = T0 + 1000 * (n - 400), T0 + 1000 * (n - 100)
        win = self.d.get_json("/v1/devices/%s/predictions?from=%d&to=%d&limit=10&order=desc"
                              % (dev, lo, hi))
        self.assertEqual([p["ts"] for p in win["points"]],
                         [T0 + 1000 * k for k in range(n - 101, n - 111, -1)])
        # order=asc is the default; anything else is the readings route's 400.
        asc = self.d.get_json("/v1/devices/%s/predictions?limit=5&order=asc" % dev)
        self.assertEqual(asc["points"], whole[:5])
        for bad in ("down", "DESC", ""):  # empty too, as readings
            r = self.d.curl("GET", "/v1/devices/%s/predictions?order=%s" % (dev, bad))
            self.assertEqual(r.status, 400, r)
            self.assertIn("parameter 'order': want 'asc' or 'desc'", r.body.decode(), r)

    def test_corrupt_block(self):
        # A stored block whose bytes were damaged on disk: the answer is a JSON error, the
        # daemon goes on.
        self.base = 0
        self.send(DEV, 0, 1200)
        stored = self.wait_stored(DEV, 3)
        self.d.stop()
        db = sqlite3.connect(self.d.db_path)
        db.execute("UPDATE preds SET data=randomblob(length(data)) WHERE seq=?",
                   (stored[-1][0],))
        db.commit()
        db.close()
        self.d.start()
        r = self.d.curl("GET", "/v1/devices/%s/predictions?limit=100000" % DEV)
        self.assertEqual(r.status, 500, r)
        self.assertIn("error", r.json())
        self.assertIn("prediction", self.d.log())
        lo = T0 + 1000 * 1100
        tail = self.d.curl("GET", "/v1/devices/%s/predictions?from=%d" % (DEV, lo))
        self.assertEqual(tail.status, 500, tail)  # after the restart every block is stored
        self.assertEqual(self.d.curl("GET", "/healthz").status, 200)

    def test_crash_keeps_stored_blocks(self):
        # SIGKILL: the tail is lost, the committed blocks stay; what is answered after the
        # restart has no duplicate and is in order.
        self.base = 0
        self.send(DEV, 0, 1200)
        self.wait_stored(DEV, 3)
        self.d.kill()
        self.d.start()
        ts = [p["ts"] for p in self.preds(DEV)["points"]]
        self.assertEqual(ts, sorted(set(ts)))
        self.assertTrue(all(t < T0 + 1000 * 1200 for t in ts))

    def test_three_blocks_a_page(self):
        # An 8-channel device's blocks (60 entries, 1,303 bytes: pipeline_ring.c) go three to a
        # 4 KiB page of the store, where schema 6's 64-entry blocks (1,384 bytes) went two.
        self.base = 0
        dev = "ps-8"
        n = 1000
        body = "".join("m,device=%s %s %d\n" % (
            dev, ",".join("c%d=%.2f" % (c, 10 * c + (k * (c + 3)) % 17 * 0.5) for c in range(8)),
            T0 + 1000 * k) for k in range(n))
        self.assertEqual(self.d.write_lp(body, precision="ms").status, 204)
        for _ in range(600):  # bounded: 60 s
            st = self.d.curl("GET", "/v1/devices/%s/status" % dev)
            if st.status == 200 and st.json().get("readings_scored", 0) >= n:
                break
            time.sleep(0.1)
        stored = self.wait_stored(dev, 6)
        self.assertEqual({c for _, c in stored}, {60}, stored)
        db = sqlite3.connect("file:%s?mode=ro" % self.d.db_path, uri=True, timeout=10)
        try:
            cells = [c for (c,) in db.execute(
                "SELECT ncell FROM dbstat WHERE name='preds' AND pagetype='leaf'")]
            sizes = {ln for (ln,) in db.execute("SELECT length(data) FROM preds")}
        finally:
            db.close()
        self.assertEqual(max(cells), 3, (cells, sizes))
        self.assertLessEqual(max(sizes), 1310, sizes)


if __name__ == "__main__":
    vt.main()

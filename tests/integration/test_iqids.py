#!/usr/bin/python3
"""vigild integration (task iqids): InfluxQL's SHOW statements answer while the store reloads its
device maps, instead of waiting for the reload.

After a failed write transaction the store reloads its maps, withdrawing the devices' counters
meanwhile; a read of the counters or the readings waits for the reload. The SHOW statements
(SHOW MEASUREMENTS, SHOW TAG KEYS, SHOW TAG VALUES WITH KEY = device, SHOW SERIES, and the
cardinality statements that count what they list) need the device ids and channels alone, which
the reload does not change: they now walk them through the backend's device_each
(store_device_each), which does not wait. Grafana sends these on every dashboard load to fill its
variables.

- HeldReload: the readings log's INSERT fails (tests/fault/failmaint.c) and the reload that the
  failure begins is held at its first statement (VIGIL_FAILMAINT_HOLD_SQL) until the test lets
  it go, as in test_iqwait.py. With http.query_timeout = 30s each SHOW answers 200 with the
  answer it gives before and after the reload (ids and order), within 10 s (a generous bound,
  far under the 30 s deadline), alone and all in one chunked query. A SELECT of the readings
  still waits: the store's own bound, then its 503; with the deadline lowered to 200 ms
  (SIGHUP) influxd's "query-timeout limit exceeded".
  The reload was held throughout. On the old code the SHOWs answer the store's 503 ("store
  busy reloading"): the test fails there.
- FailingReload: the reload itself fails (its first statement fails too, the store retries
  it every few seconds): the SHOWs answer their ids; the SELECT answers the 503 at once, as
  before; once the fault clears, the SELECT answers the readings again.
"""

import os
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
import test_ops  # noqa: E402
from test_health import wait_until  # noqa: E402  (the function alone: no TestCase imported)
from test_iqwait import FAILMAINT, RELOAD_SQL, TIMEOUT_ERR, query  # noqa: E402

T = 1_700_000_000_000
BASE = "[model]\nenabled = false\n"
# Three devices: two under a Telegraf-style measurement with the device tag, one named by its
# measurement; pump-2 has two channels.
POINTS = ["plant,device=pump-1 v=1 %d" % T, "plant,device=pump-2 v=2,w=3 %d" % T,
          "pump-3 t=4 %d" % T]
IDS = ["pump-1", "pump-2", "pump-3"]
SHOWS = ["SHOW MEASUREMENTS", "SHOW TAG KEYS", 'SHOW TAG VALUES WITH KEY = "device"',
         "SHOW SERIES", "SHOW FIELD KEYS", "SHOW MEASUREMENT EXACT CARDINALITY",
         "SHOW SERIES EXACT CARDINALITY", 'SHOW TAG VALUES EXACT CARDINALITY WITH KEY = "device"',
         'SHOW MEASUREMENTS WHERE "device" =~ /^pump-[12]$/']
SELECT = 'SELECT v FROM plant WHERE "device" = \'pump-1\''
PROMPT_S = 10  # a SHOW's bound during the reload: generous, a third of the 30 s deadline


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library) is not set: run this through ctest -R it_iqids (not built "
                     "under TSan)")
class ReloadCase(vt.DaemonTestCase):
    """A vigild with failmaint.c preloaded (fail_sql: the statements its flag fails), the three
    devices written, and the SHOWs' answers before any reload (self.before)."""

    HOLD = True

    @classmethod
    def setUpClass(cls):
        cls.flag = os.path.join(vt.mkdtemp(), "fail")
        fail_sql = "INSERT INTO readings_log("
        env = ["env", "LD_PRELOAD=" + vt.preload(FAILMAINT), "VIGIL_FAILMAINT_FLAG=" + cls.flag]
        if cls.HOLD:
            env.append("VIGIL_FAILMAINT_HOLD_SQL=" + RELOAD_SQL)
        else:  # the reload's first statement fails too (test_health.py MapsReloadFailing)
            fail_sql += "|" + RELOAD_SQL[:len("SELECT id, name, first_ts,")]
        cls.cfg = BASE + "[http]\nquery_timeout = 30s\n"
        cls.d = vt.Vigild(config=vt.write_file(os.path.join(vt.mkdtemp(), "vigild.conf"),
                                               cls.cfg),
                          prefix=env + ["VIGIL_FAILMAINT_SQL=" + fail_sql])
        cls.d.start()

    def setUp(self):
        r = self.d.write_lp("\n".join(POINTS), precision="ms")
        self.assertEqual(r.status, 204, r)
        self.before = {q: self.show(q) for q in SHOWS}
        for q, ids in ((SHOWS[0], IDS), (SHOWS[-1], IDS[:2])):  # and vigil_* (README)
            self.assertEqual([v[0] for v in self.before[q]["series"][0]["values"]
                              if v[0].startswith("pump")], ids)
        self.assertEqual(self.select(), (200, [["2023-11-14T22:13:20Z", 1]]))

    def show(self, q):
        """q's one result (a 200 with series), within PROMPT_S."""
        t0 = time.monotonic()
        st, res = query(self.d, q)
        took = time.monotonic() - t0
        self.assertEqual(st, 200, (q, res))
        self.assertIn("series", res[0], (q, res))
        self.assertLess(took, PROMPT_S, q)
        return res[0]

    def select(self):
        """SELECT's (status, values), or (status, the error or the body)."""
        st, res = query(self.d, SELECT)
        if st != 200:
            return st, res
        return 200, res[0]["series"][0]["values"] if "series" in res[0] else res[0].get("error")

    def assertShowsAsBefore(self):
        for q in SHOWS:
            self.assertEqual(self.show(q), self.before[q], q)
        # All in one chunked query, as Grafana's variables are not: each statement its answer.
        st, res = query(self.d, "; ".join(SHOWS), chunked=True)
        self.assertEqual(st, 200, res)
        # A statement's series sent a document each (a cardinality statement's counts, SHOW TAG
        # KEYS', FIELD KEYS', TAG VALUES'; influx8, influx9) are joined by query
        # (vigiltest.chunked_results): one result per statement.
        self.assertEqual(res, [dict(self.before[q], statement_id=i) for i, q in enumerate(SHOWS)])

    def fail_write(self):
        """Fails a write (the flag "fail"), in a thread: its answer arrives in self.failed."""
        self.failed = []
        vt.write_file_atomic(self.flag, "fail")
        self.writer = threading.Thread(target=lambda: self.failed.append(
            self.d.write_lp("plant,device=pump-1 v=9 %d" % (T + 1000), precision="ms")))
        self.writer.start()

    def readings_back(self):
        """Waits until the reload is over (the SELECT answers the readings, the failed write
        aside); then the SHOWs answer as before."""
        wait_until("the reload published", lambda: isinstance(self.select()[1], list))
        self.assertEqual(self.select(), (200, [["2023-11-14T22:13:20Z", 1]]))
        self.assertShowsAsBefore()


class HeldReload(ReloadCase):
    def test_shows_answer_during_reload(self):
        self.fail_write()
        try:
            wait_until("the store's reload held", lambda: os.path.exists(self.flag + ".held"))
            self.assertShowsAsBefore()
            # A read of the readings still waits: the store's own bound, then its 503.
            st, body = self.select()
            self.assertEqual(st, 503, body)
            self.assertIn("store busy reloading", body)
            # With a deadline under that bound, the deadline's error, as before. No SHOW is
            # asserted under that deadline: its answer would tell the machine's speed (the
            # SHOWs' not waiting is the 30 s deadline's answers above, the 503 on the old code).
            vt.write_file(self.d.config, BASE + "[http]\nquery_timeout = 200ms\n")
            test_ops.hup(self.d, r"configuration reloaded")
            self.assertEqual(self.select(), (200, TIMEOUT_ERR))
            self.assertTrue(os.path.exists(self.flag + ".held"))  # the reload was never over
            vt.write_file(self.d.config, self.cfg)
            test_ops.hup(self.d, r"configuration reloaded")
        finally:
            if os.path.exists(self.flag):
                os.unlink(self.flag)
            self.writer.join(60)
        self.assertGreaterEqual(self.failed[0].status, 500, self.failed)
        self.readings_back()


class FailingReload(ReloadCase):
    HOLD = False

    def test_shows_answer_while_reload_fails(self):
        self.fail_write()
        self.writer.join(60)
        self.assertGreaterEqual(self.failed[0].status, 500, self.failed)
        # The reload fails and is retried (1 s, doubling to 4 s) while the flag is there.
        st, body = self.select()
        self.assertEqual(st, 503, body)
        self.assertIn("store busy reloading", body)
        self.assertShowsAsBefore()
        self.assertEqual(self.select()[0], 503)  # still failing after the SHOWs
        os.unlink(self.flag)
        self.readings_back()  # nothing written: the idle writer's next retry reloads the maps


if __name__ == "__main__":
    unittest.main()

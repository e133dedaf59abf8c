#!/usr/bin/python3
"""vigild integration (session 47, task http2): the http-io threads keep one thread for ingest.

Requests that wait for the disk run on http.threads http-io threads (api/server.c). A read may
wait there for seconds: a /query up to http.query_timeout (30 s), a read meeting the store's
reload, a snapshot's copy. Before, as many waiting reads as io threads held them all, and every
write of the fleet queued behind them until one ended. Now reads (every io route but ingest)
take at most http.threads - 1 of them, so a write is answered while they wait.

Here the reads wait on a held SQL statement (tests/fault/failmaint.c holds the store reader's
device list, "SELECT id, name, attrs, created_ms ...", while a flag file exists; at most 60 s):
with http.threads = 2, two GET /v1/devices wait (one on a thread, one queued), and a /write is
answered 204 while they are still held. On main's vigild the write got no answer within 20 s
(both io threads held): this test failed there. No timing is asserted beyond that bound."""

import os
import sys
import threading
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from test_health import wait_until  # noqa: E402  (the function alone: no TestCase imported)

FAILMAINT = os.environ.get("VIGIL_FAILMAINT", "")
T = 1_700_000_000_000
# storage/schema.c's reader statements for a device and the device list.
DEVICES_SQL = "SELECT id, name, attrs, created_ms"


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library) is not set: run this through ctest -R it_httpio")
class IngestLane(vt.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.flag = os.path.join(vt.mkdtemp(), "flag")
        cfg = vt.write_file(os.path.join(vt.mkdtemp(), "vigild.conf"),
                            "[model]\nenabled = false\n[http]\nthreads = 2\n")
        cls.d = vt.Vigild(config=cfg, prefix=["env", "LD_PRELOAD=" + FAILMAINT,
                                              "VIGIL_FAILMAINT_FLAG=" + cls.flag,
                                              "VIGIL_FAILMAINT_HOLD_SQL=" + DEVICES_SQL])
        cls.d.start()

    def test_write_while_reads_wait(self):
        r = self.d.write_lp("pump v=1 %d" % T, precision="ms")
        self.assertEqual(r.status, 204, r)
        reads = []
        vt.write_file(self.flag, "hold")
        threads = [threading.Thread(target=lambda: reads.append(
            vt.http_request("GET", self.d.url("/v1/devices"), timeout=90))) for _ in range(2)]
        try:
            for t in threads:
                t.start()
            wait_until("a device list held", lambda: os.path.exists(self.flag + ".held"))
            st, _, body = vt.http_request("POST", self.d.url("/write?db=db&precision=ms"),
                                          body=b"pump v=2 %d" % (T + 1000), timeout=20)
            self.assertEqual(st, 204, body)
            # The reads were still waiting: the write did not wait for them.
            self.assertTrue(os.path.exists(self.flag + ".held"))
            self.assertEqual(reads, [])
        finally:
            os.unlink(self.flag)
            for t in threads:
                t.join(90)
        self.assertEqual(sorted(st for st, _, _ in reads), [200, 200])
        self.assertEqual(len(self.d.readings("pump")), 2)


if __name__ == "__main__":
    unittest.main()

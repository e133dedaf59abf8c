#!/usr/bin/python3
"""vigild integration (session 47, tasks http2 and http3): the http-io threads' two lanes.

Requests that wait for the disk run on http.threads http-io threads (api/server.c). A read may
wait there for seconds: a /query up to http.query_timeout (30 s), a read meeting the store's
reload, a snapshot's copy. Before task http2, as many waiting reads as io threads held them all,
and every write of the fleet queued behind them until one ended. Now reads take at most
http.threads - 1 of them, so a write is answered while they wait (IngestLane).

Task http3: an operator's short writes (a device's PUT and DELETE, a maintenance period's POST
and DELETE, an acceptance, a rollback, new weights: route.c's api__request_write_lane) take the
writes' lane too (OperatorLane; on main's vigild the device's PUT got no answer within 20 s);
and once a stop has begun no write can come, so its queued reads run on every io thread
(StopLiftsCap; on main one at a time: the second thread never took a read).

Task http4 (session 48): the io threads are http.threads + 1, and reads with an operator's
writes take at most http.threads of them, so the last is ingest's however many operator writes
wait (IngestBehindOperator; on main's vigild the /write got no answer within 20 s).

Here the reads wait on a held SQL statement (tests/fault/failmaint.c holds the store reader's
device list while a file exists; at most 60 s): with http.threads = 2, GET /v1/devices
?after=a wait (one on a thread, the others queued). No timing is asserted beyond the bounded waits."""

import os
import signal
import sys
import threading
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from test_health import wait_until  # noqa: E402  (the function alone: no TestCase imported)
from test_stop import wait_begun  # noqa: E402  (likewise)

FAILMAINT = os.environ.get("VIGIL_FAILMAINT", "")
T = 1_700_000_000_000
# storage/schema.c's reader statement for a page of the device list after a name (GET
# /v1/devices?after=): not the one for a single device, which a device's PUT answers with, nor
# the whole list's, which the pipeline reads too (with the model on, a held whole list held the
# storage writer's thread as well).
LIST_SQL = "SELECT id, name, attrs, created_ms, first_ts, last_ts, points FROM devices WHERE name>"


def io_threads_held(pid):
    """How many of vigild's http-io threads are in failmaint.c's hold (its usleep); the others
    wait on a condition (a futex)."""
    return vt.threads_asleep(pid, "http-io")


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library) is not set: run this through ctest -R it_httpio")
class HeldReads(vt.DaemonTestCase):
    """A vigild (http.threads = 2) whose device list pages are held while cls.hold exists.
    The flag file itself is never made (it would hold or fail the maint table's writes): only
    "<flag>.held" appears, while a page is held."""
    MODEL = "false"
    THREADS = 2
    CONF = ""  # more settings

    @classmethod
    def setUpClass(cls):
        tmp = vt.mkdtemp()
        cls.flag, cls.hold = os.path.join(tmp, "flag"), os.path.join(tmp, "hold")
        cfg = vt.write_file(os.path.join(vt.mkdtemp(), "vigild.conf"),
                            "[model]\nenabled = %s\n[http]\nthreads = %d\n%s"
                            % (cls.MODEL, cls.THREADS, cls.CONF))
        cls.d = vt.Vigild(config=cfg, prefix=["env", "LD_PRELOAD=" + vt.preload(FAILMAINT),
                                              "VIGIL_FAILMAINT_FLAG=" + cls.flag,
                                              "VIGIL_FAILMAINT_HOLD_FLAG=" + cls.hold,
                                              "VIGIL_FAILMAINT_HOLD_SQL=" + LIST_SQL])
        cls.d.start()

    def hold_reads(self, n):
        """Sends n GET /v1/devices?after=a, each in a thread, once the flag holds them; returns once
        one is held and all n are in flight. Returns (threads, answers)."""
        reads = []
        vt.write_file_atomic(self.hold, "")
        threads = [threading.Thread(target=lambda: reads.append(
            vt.http_request("GET", self.d.url("/v1/devices?after=a"), timeout=90))) for _ in range(n)]
        for t in threads:
            t.start()
        wait_until("a device list held", lambda: os.path.exists(self.flag + ".held"))
        wait_begun(self.d, n, "the %d reads in flight" % n)
        return threads, reads

    def release(self, threads):
        if os.path.exists(self.hold):
            os.unlink(self.hold)
        for t in threads:
            t.join(90)

    def write_beside_puts(self, nreads, devs):
        """With nreads held reads and a PUT of each of devs in flight, a /write of devs[0] must
        be answered 204 while all still wait (io_threads_held: one io thread in the held read).
        Returns (reads, puts), the answers once released."""
        for dev in devs:
            self.assertEqual(self.d.write_lp("%s v=1 %d" % (dev, T), precision="ms").status, 204)
        threads, reads = self.hold_reads(nreads)
        puts = []
        put = [threading.Thread(target=lambda dev=dev: puts.append(self.request(
            "PUT", "/v1/devices/" + dev, b'{"site": "south"}'))) for dev in devs]
        for t in put:
            t.start()
        try:
            wait_begun(self.d, nreads + len(devs), "the reads and the PUTs in flight")
            st, _, body = vt.http_request("POST", self.d.url("/write?db=db&precision=ms"),
                                          body=b"%s v=2 %d" % (devs[0].encode(), T + 1000),
                                          timeout=20)
            self.assertEqual(st, 204, body)
            # All were still waiting: the write waited for none.
            self.assertTrue(os.path.exists(self.flag + ".held"))
            self.assertEqual((reads, puts), ([], []))
            self.assertEqual(io_threads_held(self.d.proc.pid), 1)
        finally:
            self.release(threads + put)
        self.assertEqual(len(self.d.readings(devs[0])), 2)
        return reads, puts

    def request(self, method, path, body=None, json=True):
        headers = {"Content-Type": "application/json"} if json and body is not None else {}
        st, _, data = vt.http_request(method, self.d.url(path), body=body, headers=headers,
                                      timeout=20)
        return st, data


class IngestLane(HeldReads):
    def test_write_while_reads_wait(self):
        r = self.d.write_lp("pump v=1 %d" % T, precision="ms")
        self.assertEqual(r.status, 204, r)
        threads, reads = self.hold_reads(2)
        try:
            st, _, body = vt.http_request("POST", self.d.url("/write?db=db&precision=ms"),
                                          body=b"pump v=2 %d" % (T + 1000), timeout=20)
            self.assertEqual(st, 204, body)
            # The reads were still waiting: the write did not wait for them.
            self.assertTrue(os.path.exists(self.flag + ".held"))
            self.assertEqual(reads, [])
        finally:
            self.release(threads)
        self.assertEqual(sorted(st for st, _, _ in reads), [200, 200])
        self.assertEqual(len(self.d.readings("pump")), 2)


class OperatorLane(HeldReads):
    MODEL = "true"

    def test_operator_writes_while_reads_wait(self):
        dev = "/v1/devices/op-1"
        self.assertEqual(self.d.write_lp("op-1 v=1 %d" % T, precision="ms").status, 204)
        threads, reads = self.hold_reads(2)
        try:
            # Each answered while both reads wait (on main the PUT: TimeoutError after 20 s).
            for method, path, body, want in (
                    ("PUT", dev, b'{"site": "north"}', 200),
                    ("POST", dev + "/maintenance", b'{"minutes": 5, "note": "held reads"}', 200),
                    ("DELETE", dev + "/maintenance", None, 204),
                    ("POST", dev + "/anomalies/accept", b"{}", 409),  # none open: answered
                    ("POST", dev + "/model/rollback", b'{"version": 9}', 404),  # none such
                    ("PUT", dev + "/model/weights", b"not safetensors", 400),
                    ("DELETE", dev, None, 200)):
                with self.subTest(method=method, path=path):
                    st, data = self.request(method, path, body,
                                            json=not path.endswith("weights"))
                    self.assertEqual(st, want, data)
            self.assertTrue(os.path.exists(self.flag + ".held"))
            self.assertEqual(reads, [])
        finally:
            self.release(threads)
        self.assertEqual(sorted(st for st, _, _ in reads), [200, 200])


class IngestBehindOperator(HeldReads):
    """Task http4 (session 48): an operator's writes had no cap of their own, so held operator
    writes could take every io thread the reads left and ingest waited behind them. Here two
    devices' PUTs wait for the store's only reader connection (storage.readers = 1), which the
    held read has: each stored the attributes, then reads the device back. On main's vigild the
    read took one of the two io threads, a PUT the other, and the /write got no answer within
    20 s (TimeoutError). Now reads and an operator's writes together take at most http.threads
    of the http.threads + 1 io threads: the last one is ingest's (a third thread alone would
    not do: the second PUT would take it)."""
    CONF = "[storage]\nreaders = 1\n"

    def test_write_while_an_operator_write_waits(self):
        reads, puts = self.write_beside_puts(1, ("op-2", "op-3"))
        self.assertEqual([st for st, _, _ in reads], [200])
        self.assertEqual([st for st, _ in puts], [200, 200])


class OneThread(HeldReads):
    """Review of task http4: with http.threads = 1 the io threads are two, one the reads and an
    operator's writes share and one only ingest takes. Here a held read has the shared one, a
    second read and a device's PUT queue behind it, and a /write is answered meanwhile. On
    main's vigild (one io thread, shared by all) the /write got no answer within 20 s."""
    THREADS = 1

    def test_write_beside_a_held_read(self):
        reads, puts = self.write_beside_puts(2, ("one",))
        self.assertEqual(sorted(st for st, _, _ in reads), [200, 200])
        self.assertEqual([st for st, _ in puts], [200])


class StopLiftsCap(HeldReads):
    def test_stop_runs_queued_reads_on_every_thread(self):
        threads, reads = self.hold_reads(3)
        try:
            # Before the stop one read runs; the other threads are kept for writes (since
            # session 48 three io threads: http.threads + 1).
            wait_until("one io thread in the held read", lambda: io_threads_held(
                self.d.proc.pid) == 1)
            self.d.proc.send_signal(signal.SIGTERM)
            wait_until("the stop begun", lambda: "stopping intake" in self.d.log(), 10)
            # No write can come now: the queued reads take the other threads (main: never).
            wait_until("every io thread in a held read", lambda: io_threads_held(
                self.d.proc.pid) == 3)
            self.assertIsNone(self.d.proc.poll())  # the stop waits for them
        finally:
            self.release(threads)
        self.assertEqual(self.d.proc.wait(60), 0, self.d.log())
        self.d.proc = None
        vt._live.remove(self.d)
        # Begun before the stop: each answered.
        self.assertEqual(sorted(st for st, _, _ in reads), [200, 200, 200])


if __name__ == "__main__":
    unittest.main()

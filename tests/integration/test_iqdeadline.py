#!/usr/bin/python3
"""vigild integration (session iqdl): where /query's deadline (http.query_timeout) was still
missing, and from when it counts.

- SELECT FROM vigil_anomalies reads the events history (up to 10,000 events) and checks the
  deadline inside that read (the store's listing too) and after it: with 1 ms a read of 9,900
  stored events (far more than 1 ms of SQLite reads and JSON parsing on any machine) answers
  "query-timeout limit exceeded"; before, it was read and answered whole whatever the deadline.
- The deadline counts from when the statements start (the body read, the query parsed), as
  influxd starts its query-timeout when it executes the query: a POST whose form body arrives
  over some seconds still runs a query of microseconds with a 1 s deadline; before, the upload
  ate the deadline and the statement answered the timeout's error.
- Statements after the one stopped answer "not executed" under its statement_id, as influxd
  1.6.7 does (README; compared with Debian's influxd, [coordinator] query-timeout = "1ms")."""

import json
import os
import socket
import sqlite3
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
import test_iqtimeout as iqt  # noqa: E402  (TimeoutClient)

T = 1_700_000_000_000
NEV = 9900  # under the listing's cap (10,000), which answers its own error
TIMEOUT_ERR = iqt.TIMEOUT_ERR
ANOM = 'SELECT "id" FROM "vigil_anomalies" WHERE "device" = \'ev\' AND time >= 0 LIMIT 3'


class QueryDeadline(iqt.TimeoutClient, vt.DaemonTestCase):
    CONFIG = ""  # the model on: vigil_anomalies is the pipeline's

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.d
        r = d.write_lp("ev v=1 %d" % T, precision="ms")
        if r.status != 204:
            raise AssertionError("write: %r" % (r,))
        # NEV ended events of device ev, written while vigild is down, as test_events.py does.
        d.stop()
        db = sqlite3.connect(d.db_path, timeout=10, isolation_level=None)
        (dev,) = db.execute("SELECT id FROM devices WHERE name = 'ev'").fetchone()
        rows = []
        for i in range(1, NEV + 1):
            start, end = T + i * 10_000, T + i * 10_000 + 5_000
            info = {"device": "ev", "id": i, "start_ts": start, "end_ts": end, "active": False,
                    "peak_score": 0.5, "ended_by": "score",
                    "channels": [{"channel": "v", "share": 1.0}]}
            rows.append((dev, i, start, end, json.dumps(info)))
        db.execute("BEGIN")
        db.executemany("INSERT INTO events(device_id, id, start_ts, end_ts, info) "
                       "VALUES (?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
        db.close()
        d.start()

    def test_anomalies_read_stops(self):
        self.timeout("1h")
        full = self.query(ANOM, chunked=False)
        self.assertEqual(full[0]["series"][0]["values"],
                         [["2023-11-14T22:13:30Z", 1], ["2023-11-14T22:13:40Z", 2],
                          ["2023-11-14T22:13:50Z", 3]])
        # 1 ms: the read of 9,900 events passes it whatever the machine; the statement answers
        # the timeout's error (the deadline starts as the statements do: not before this one).
        self.timeout("1ms")
        self.assertEqual(self.query(ANOM, chunked=False),
                         [{"statement_id": 0, "error": TIMEOUT_ERR}])
        # Several of them, chunked: each answered before the stopped one is intact, the rest
        # "not executed" under its statement_id (whichever one the deadline hits, or none on a
        # machine fast enough to read them all within 30 ms: how many is a speed, not asserted).
        for ms in ("1ms", "5ms", "30ms"):
            self.timeout(ms)
            res = self.query("; ".join([ANOM] * 8), chunked=True)
            self.assertEqual(len(res), 8)
            errs = [i for i, x in enumerate(res) if "error" in x]
            k = errs[0] if errs else len(res)
            if errs:
                self.assertEqual(res[k], {"statement_id": k, "error": TIMEOUT_ERR})
            for i, x in enumerate(res[:k]):
                self.assertEqual(x, dict(full[0], statement_id=i))
            for x in res[k + 1:]:
                self.assertEqual(x, {"statement_id": k, "error": "not executed"})

    def test_slow_body_not_counted(self):
        # A form body trickled over 2.5 s, then a query of microseconds, with a 1 s deadline:
        # the deadline counts from the statements' start, so it answers.
        self.timeout("1s")
        body = urllib.parse.urlencode({"q": "SHOW MEASUREMENTS"}).encode()
        s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=30)
        try:
            s.sendall(b"POST /query HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body))
            for i in range(5):  # bounded: 5 pieces, 0.5 s apart
                s.sendall(body[i * len(body) // 5:(i + 1) * len(body) // 5])
                time.sleep(0.5)
            s.sendall(body[5 * len(body) // 5:])
            resp = s.makefile("rb").read()  # to the server's close (Connection: close)
        finally:
            s.close()
        head, _, payload = resp.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), resp[:300])
        res = json.loads(payload)["results"]
        self.assertNotIn("error", res[0], res)
        self.assertIn(["ev"], res[0]["series"][0]["values"], res)


if __name__ == "__main__":
    vt.main()

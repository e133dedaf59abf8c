#!/usr/bin/python3
"""vigild integration (session 33, qtimeout): /query's deadline, http.query_timeout (influxd's
[coordinator] query-timeout). A query of many statements over many devices, which runs for a
long while as a whole though each statement is bounded, stops at the deadline: the statement
running then gets the error "query-timeout limit exceeded", the results answered before it
stay, and the statements after it are not run ("not executed" with chunked=true). With the
default (30s) and with 0 (off) the same query answers fully; SIGHUP changes the deadline;
/metrics' vigil_http_query_timeouts_total counts the queries stopped. On main the key is
unknown (its reload is rejected) and the counter does not exist: both tests fail there."""

import http.client
import json
import os
import sys
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
import test_ops  # noqa: E402  (hup only)

T = 1_700_000_000_000
NDEV = 1000
TIMEOUT_ERR = "query-timeout limit exceeded"
BASE = "[model]\nenabled = false\n"
# 200 statements, each walking the 1,000 devices and counting them (SHOW MEASUREMENT
# CARDINALITY walks as SHOW TAG KEYS does, counting instead of writing: wt/card): far more than
# 1 ms of work on any machine, 0.2-0.35 s in all here (Release, loaded 2-core host; 0.7-0.9 s
# when the count still built and parsed SHOW TAG KEYS' answer).
MANY = "; ".join(["SHOW MEASUREMENT EXACT CARDINALITY"] * 200)
# The same, 1,500 times (54 KB of q's 64 KiB; 2.1-2.5 s of work here, as above, 5.4-7.3 s
# before wt/card): for the 50 ms deadline, which it must not meet on any machine, however fast.
MORE = "; ".join(["SHOW MEASUREMENT EXACT CARDINALITY"] * 1500)
# One statement reading every device (a series each; some 25 ms here): its device walk checks the
# deadline.
ONE = "SELECT last(v) FROM pump WHERE device =~ /./ GROUP BY device"


class TimeoutClient:
    """timeout() and query() of a DaemonTestCase (test_iqdeadline.py's too): not a TestCase, so
    importing it runs no test twice."""

    def timeout(self, value):
        """Sets http.query_timeout (None: the key left out, its default) by SIGHUP, over the
        class's CONFIG."""
        text = self.CONFIG + ("[http]\nquery_timeout = %s\n" % value if value is not None else "")
        vt.write_file(self.d.config, text)
        test_ops.hup(self.d, r"configuration reloaded")

    def query(self, q, chunked):
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=120)
        form = {"q": q}
        if chunked:
            form["chunked"] = "true"
        c.request("POST", "/query", urllib.parse.urlencode(form),
                  {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        body = r.read()
        c.close()
        self.assertEqual(r.status, 200, body[:300])
        if chunked:
            return vt.chunked_results(body)
        return json.loads(body)["results"]


class QueryTimeout(TimeoutClient, vt.DaemonTestCase):
    CONFIG = BASE

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        body = "\n".join("dev%04d v=1 %d" % (i, T) for i in range(NDEV))
        r = cls.d.write_lp(body, precision="ms")
        if r.status != 204:
            raise AssertionError("write: %r" % (r,))

    def timeouts(self):
        return int(self.d.metric("vigil_http_query_timeouts_total", need=True))

    def assertFull(self, res, n):
        self.assertEqual(len(res), n)
        for i, x in enumerate(res):
            self.assertEqual(x["statement_id"], i)
            self.assertNotIn("error", x, x)
            self.assertIn("series", x, x)

    def assertStopped(self, res, n):
        """chunked: results 0..k-1 answered, k the timeout's error, then "not executed" for each
        statement left, under k's statement_id as influxd 1.6.7 sends them (README)."""
        self.assertEqual(len(res), n)
        errs = [i for i, x in enumerate(res) if "error" in x]
        self.assertTrue(errs, "no statement stopped")
        k = errs[0]
        self.assertEqual(res[k]["error"], TIMEOUT_ERR, res[k])
        self.assertNotIn("series", res[k])
        for x in res[:k]:
            self.assertIn("series", x, x)
        for x in res[k + 1:]:
            self.assertEqual(x, {"statement_id": k, "error": "not executed"})
        return k

    def test_deadline(self):
        # The default (30 s): the whole query answers; a count of every measurement (the 1,000
        # devices and the three reserved measurements) for each statement.
        self.timeout(None)
        before = self.timeouts()
        res = self.query(MANY, chunked=True)
        self.assertFull(res, 200)
        self.assertEqual(res[0]["series"][0]["values"], [[NDEV + 3]])
        res = self.query(ONE, chunked=False)
        self.assertFull(res, 1)
        self.assertEqual(len(res[0]["series"]), NDEV)
        self.assertEqual(self.timeouts(), before)
        # 1 ms (SIGHUP): it stops at the statement running then; nothing after it is run.
        self.timeout("1ms")
        k = self.assertStopped(self.query(MANY, chunked=True), 200)
        self.assertLess(k, 199)
        self.assertEqual(self.timeouts(), before + 1)
        # Answered whole, as influxd: the results up to the one that failed, which reads "not
        # executed" as the run went on past it (README), and no result after it.
        res = self.query(MANY, chunked=False)
        self.assertLess(len(res), 200)
        self.assertEqual(res[-1], {"statement_id": len(res) - 1, "error": "not executed"})
        self.assertFull(res[:-1], len(res) - 1)
        # One statement alone stops too (its walk checks the deadline), with the error.
        self.assertEqual(self.query(ONE, chunked=False),
                         [{"statement_id": 0, "error": TIMEOUT_ERR}])
        self.assertEqual(self.timeouts(), before + 3)
        # 50 ms: the same shape, after some statements answered on most machines (not asserted:
        # how many is a speed). MORE, not MANY: MANY's 200 take some tenths of a second here, too
        # near 50 ms on a fast machine; MORE's 1,500 cannot finish in 50 ms, and a slower machine
        # only stops it sooner.
        self.timeout("50ms")
        self.assertStopped(self.query(MORE, chunked=True), 1500)
        self.assertEqual(self.timeouts(), before + 4)
        # 0 (off): the whole query answers again, however long it runs.
        self.timeout("0")
        self.assertFull(self.query(MANY, chunked=True), 200)
        self.assertFull(self.query(ONE, chunked=True), 1)
        self.assertEqual(self.timeouts(), before + 4)

    def test_select(self):
        # SELECTs over every device, 20 of them (some 0.7 s here, Release, loaded): with 1h each
        # answers every device's series (1h, not 30s: an ASan build on a busy CI machine runs
        # this some 10-20 times slower); with 1ms the query stops as the SHOWs do.
        q = "; ".join([ONE] * 20)
        self.timeout("1h")
        res = self.query(q, chunked=True)
        self.assertFull(res, 20)
        self.assertEqual(len(res[19]["series"]), NDEV)
        self.timeout("1ms")
        self.assertStopped(self.query(q, chunked=True), 20)

    def test_answered_intact(self):
        # Whatever statement a deadline stops, and wherever inside its walk: the body is valid
        # JSON (whole and chunked), each result before the stopped one is the same as without a
        # deadline (no half-written series), then the error and "not executed" as README says.
        # Which statement stops at which deadline is a speed, so only that shape is asserted.
        kinds = ["SHOW SERIES", "SHOW TAG VALUES WITH KEY = device", "SHOW FIELD KEYS",
                 "SELECT v FROM pump WHERE device =~ /./ GROUP BY device",
                 "SELECT count(v) FROM pump WHERE device =~ /./ GROUP BY device",
                 "SHOW SERIES CARDINALITY", "SHOW MEASUREMENTS", "SHOW TAG KEYS",
                 "SELECT mean(v) FROM pump WHERE device =~ /^dev0/"]
        q = "; ".join(kinds * 6)
        n = len(kinds) * 6
        self.timeout("0")
        full = self.query(q, chunked=False)
        self.assertFull(full[:5], 5)
        self.assertEqual(self.query(q, chunked=True), full)
        for ms in (1, 3, 8, 20, 45, 80, 130, 220):
            self.timeout("%dms" % ms)
            for chunked in (True, False):
                res = self.query(q, chunked)
                errs = [i for i, x in enumerate(res) if "error" in x]
                k = errs[0] if errs else len(res)
                self.assertEqual(res[:k], full[:k], (ms, chunked, k))
                if not errs:
                    self.assertEqual(len(res), n)
                elif chunked:
                    self.assertEqual(self.assertStopped(res, n), k)
                else:  # whole: the failed one last, "not executed" unless it was the last
                    self.assertEqual(res[k:], [{"statement_id": k, "error": TIMEOUT_ERR
                                                if k == n - 1 else "not executed"}])


if __name__ == "__main__":
    vt.main()

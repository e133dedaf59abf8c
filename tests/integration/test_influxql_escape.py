#!/usr/bin/python3
"""vigild integration: InfluxQL compared with influxd 1.6.7 (influxpair.py's InfluxdPair),
session 26 (IqEscape): the answer's 8 MiB bound on escaped strings, two device regexes in one
SELECT. Moved unchanged from test_influxql.py (session 51, task code8: that file had grown past
the size limit), whose points (C_POINTS) it shares. The other InfluxQL classes:
test_influxql.py (IqCompat, IqFix, IqFix2), test_influxql2.py (IqFix3 to IqFix5),
test_influxql3.py (IqFix6 to IqFix8, IqWhere), test_influxql_edge.py (IqEdge)."""

import http.client
import json
import os
import sys
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import G_T, InfluxdPair, g_range  # noqa: E402
from test_influxql import C_POINTS  # noqa: E402  (the points only: its TestCases are not collected)


# 20 devices named with 199 bytes of '<', '>' and '&' (vigild's only: influxd holds C_POINTS):
# 4 KB of names a SHOW, 24 KB once each byte is Go's 6-byte \u00XX.
E_NAMES = [("<>&" * 66) + chr(ord("a") + i) for i in range(20)]


class IqEscape(InfluxdPair):
    """Session 26, task iqescape. /query's answer bound (API_PAGE_BYTES, 8 MiB) holds for the
    bytes sent: the strings are escaped as Go writes them ('<' as \u003c) when they are written,
    not after the answer is complete (which let an answer of '<>&' names reach 6x the bound,
    and copied it). Two regexes on the device tag in a SELECT, ANDed or ORed, answered as
    influxd 1.6.7 answers them, within the statement's one regex budget."""

    POINTS = C_POINTS
    BOUND = 8 << 20
    SLACK = 1024  # the failed statement's error (and whole, "not executed") past the bound

    @classmethod
    def vigild_only(cls):
        status, res = cls.post(cls.d.http_port, "/write?db=g&precision=ms",
                               "\n".join("%s x=1 %d" % (n, G_T) for n in E_NAMES))
        assert status == 204, (status, res)

    def raw(self, q, chunked=False):
        params = {"db": "g", "q": q}
        if chunked:
            params["chunked"] = "true"
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=120)
        c.request("POST", "/query", urllib.parse.urlencode(params),
                  {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        body = r.read()
        c.close()
        self.assertEqual(r.status, 200, body[:300])
        return body

    def check_bounded(self, stmt, n):
        one = self.raw(stmt)  # one statement's answer, escaped
        self.assertNotIn(b"<", one)
        self.assertIn(b"\\u003c\\u003e\\u0026", one)
        per = len(one) - len('{"results":[]}\n')  # one result's bytes, escaped
        # Unescaped, n of them stay under the bound; escaped, they pass it.
        self.assertLess(n * (per - 5 * one.count(b"\\u00")), self.BOUND)
        self.assertGreater(n * per, self.BOUND)
        for chunked in (False, True):
            body = self.raw(";".join([stmt] * n), chunked)
            self.assertNotIn(b"<", body)
            if chunked:
                res = vt.chunked_results(body)
            else:
                res = json.loads(body)["results"]
            ok = [r for r in res if "error" not in r]
            # Chunked, each statement after the failed one is its own "not executed" document
            # (as from influxd): 64 bytes each past the bound, as for a plain answer.
            left = n - len(ok) - 1 if chunked else 0
            self.assertLessEqual(len(body), self.BOUND + self.SLACK + 64 * left)
            # Every result before the failed one whole; the failed one the statement error of
            # any answer past the bound, then "not executed" under its id for each statement
            # left (chunked; whole, influxd keeps an id's last result: "not executed").
            want = json.loads(one)["results"][0]
            for i, r in enumerate(ok):
                self.assertEqual(r, dict(want, statement_id=i))
            # Stopped by the bound on the escaped bytes: one result more would pass it (chunked,
            # a result of several series takes a document each: its own answer's bytes).
            p = len(self.raw(stmt, True)) if chunked else per
            self.assertLessEqual(len(ok) * p, self.BOUND)
            self.assertGreater((len(ok) + 2) * (p + 16), self.BOUND)
            failed = res[len(ok)]
            self.assertEqual(failed["statement_id"], len(ok))
            if chunked:
                self.assertTrue(failed["error"].startswith(
                    "vigild answers at most 8 MiB of JSON for one query, its statements "
                    "together"), failed)
                self.assertEqual(len(res), n)
                self.assertEqual(res[-1], {"statement_id": len(ok), "error": "not executed"})
            else:  # influxd keeps an id's last result: "not executed", as for a plain answer
                self.assertEqual(res[len(ok):], [{"statement_id": len(ok),
                                                   "error": "not executed"}])

    def test_escaped_names_bounded(self):
        # SHOW MEASUREMENTS (the devices' names), 1,000 times: 4 MB as written, 24 MB escaped
        # (sent whole before: VmHWM 13 -> 41 MB; now 8 MiB at most, as a plain answer).
        self.check_bounded("SHOW MEASUREMENTS WITH MEASUREMENT =~ /^</", 1000)

    def test_escaped_tag_values_bounded(self):
        # The device tag's values, and the device's name beside each.
        self.check_bounded('SHOW TAG VALUES WITH KEY = "device" WHERE device =~ /^</', 800)

    def test_escaped_answer_unchanged(self):
        # Under the bound, the answer is Go's: each '<>&' escaped, nothing else changed.
        body = self.raw("SHOW MEASUREMENTS WITH MEASUREMENT =~ /^</")
        want = {"results": [{"statement_id": 0, "series": [{
            "name": "measurements", "columns": ["name"], "values": [[n] for n in E_NAMES]}]}]}
        self.assertEqual(json.loads(body), want)
        self.assertEqual(body, json.dumps(want, separators=(",", ":")).replace(
            "<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode() + b"\n")
        # A statement error quoting them: escaped too.
        res = self.raw("SELECT temp FROM pump WHERE \"a<&>\" = 'x'")
        self.assertIn(b"\\u003c\\u0026\\u003e", res)
        self.assertNotIn(b"<", res)

    def test_two_device_regexes_as_influxd(self):
        one = g_range(0, 30)
        self.assert_same([
            "SELECT temp FROM pump WHERE device =~ /8/ AND device =~ /pump/",
            "SELECT temp FROM pump WHERE \"device\" =~ /pump/ AND \"device\" =~ /9/",
            "SELECT temp FROM pump WHERE device =~ /8/ AND device =~ /9/",
            "SELECT temp FROM pump WHERE device =~ /8/ OR device =~ /9/",
            "SELECT temp FROM pump WHERE device =~ /8/ OR device =~ /zz/",
            "SELECT temp FROM pump WHERE device =~ /zz/ OR device =~ /yy/",
            "SELECT temp FROM pump WHERE device =~ /^pump-8$/ OR device =~ /^pump-9$/ "
            "GROUP BY device",
            "SELECT mean(temp) FROM pump WHERE (device =~ /8/ OR device =~ /9/) AND %s "
            "GROUP BY time(10s), device" % one,
            "SELECT mean(temp) FROM pump WHERE %s AND (device =~ /8/ OR device =~ /9/) "
            "GROUP BY time(10s)" % one,
            "SELECT temp FROM pump WHERE device =~ /pump/ AND %s AND device =~ /9/" % one,
            "SELECT temp FROM pump WHERE device = 'pump-9' AND device =~ /pump/ AND "
            "device =~ /9/",
            "SELECT temp FROM pump WHERE device = 'pump-9' AND device =~ /pump/ AND "
            "device =~ /8/",
            "SELECT temp FROM pump WHERE device = 'pump-8' AND (device =~ /9/ OR device =~ /8/)",
            "SELECT temp FROM pump WHERE device =~ /(?i)PUMP-8/ OR device =~ /9/",
            "SELECT temp FROM pump WHERE device =~ /8/ OR device =~ /9/ ORDER BY time DESC "
            "LIMIT 2",
            "SELECT temp FROM pump WHERE device =~ /8/ OR device =~ /[/",
        ])
        # Not vacuous: OR reads both devices, AND the one both regexes meet.
        both = self.vigild("SELECT temp FROM pump WHERE device =~ /8/ OR device =~ /9/ "
                           "GROUP BY device")["results"][0]["series"]
        self.assertEqual([s["tags"]["device"] for s in both], ["pump-8", "pump-9"])
        one = self.vigild("SELECT temp FROM pump WHERE device =~ /p/ AND device =~ /9/ "
                          "GROUP BY device")["results"][0]["series"]
        self.assertEqual([s["tags"]["device"] for s in one], ["pump-9"])

    def test_two_device_regexes_what_vigild_refuses(self):
        # OR beside anything but the other regex, and a third regex: still vigild's statement
        # errors (influxd answers them).
        for q, what in (
                ("SELECT temp FROM pump WHERE device =~ /8/ OR device =~ /9/ AND time > 0",
                 "OR in WHERE"),
                ("SELECT temp FROM pump WHERE time > 0 AND device =~ /8/ OR device =~ /9/",
                 "OR in WHERE"),
                ("SELECT temp FROM pump WHERE device =~ /8/ OR device = 'pump-9'", "OR in WHERE"),
                ("SELECT temp FROM pump WHERE device =~ /p/ AND device =~ /u/ AND device =~ /9/",
                 "more than two regular expressions on the device tag")):
            ans = self.vigild(q)["results"][0]
            self.assertEqual(ans["error"], "vigild does not support " + what, q)

    def test_two_device_regexes_budget(self):
        # The two count against the statement's one budget (1,000 alternatives): two of 600
        # are vigild's 400 naming it; each alone is answered.
        a = "/^(%s)$/" % "|".join("pump-%d" % i for i in range(600))
        b = "/^(%s)$/" % "|".join("pump-%d" % i for i in range(1, 601))
        for op in ("AND", "OR"):
            q = "SELECT temp FROM pump WHERE device =~ %s %s device =~ %s" % (a, op, b)
            status, body = self.query(self.d.http_port, q, method="POST")
            self.assertEqual(status, 400, body[:200])
            self.assertIn(b"vigild reads at most 1000 alternatives and optional repetitions",
                          body)
        for re in (a, b):
            ans = self.vigild("SELECT temp FROM pump WHERE device =~ %s" % re, method="POST")
            self.assertEqual(len(ans["results"][0]["series"][0]["values"]), 4)


if __name__ == "__main__":
    vt.main()

#!/usr/bin/python3
"""vigild integration: its own wall clock stepped back (tests/fault/clockshift.c moves
CLOCK_REALTIME only). Readings sent without a timestamp are stamped on arrival, but never back:
after a step back of an hour the stamps go on from just after the newest given (at half speed
until the clock catches up), so the device's readings stay in order and are all scored, and
none lands on a millisecond an earlier one holds; the step is logged. Before, the 20 readings
after the step were stamped an hour back and none was scored (out of order). Also: readings
stamped far ahead (FarFuture), and from=/to= times that their offset puts outside 1970-9999 or
that look like epoch seconds (QueryTimes)."""

import json
import os
import sys
import time
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from pipeline_fx import wait_for  # noqa: E402
import test_ops  # noqa: E402

HOUR = 3600 * 1000
DAY = 24 * HOUR
Y2100 = 4102444800000  # 2100-01-01 in epoch ms
CLOCKSHIFT = os.environ.get("VIGIL_CLOCKSHIFT", "")  # tests/fault/clockshift.c, set by CTest


class OwnDaemon(unittest.TestCase):
    """A test that starts its own vigild as self.d, stopped and removed after it."""

    def tearDown(self):
        if getattr(self, "d", None):
            try:
                self.d.stop()
            finally:
                self.d.cleanup()


class QueryTimes(OwnDaemon):

    def test_offset_out_of_range(self):
        """from=/to= as RFC 3339 times that their offset puts before 1970 or after 9999 say so,
        as JSON's ts does (docs/writing.md "Writing readings"); what is no time keeps the general
        message. Before, both got "is not epoch milliseconds or RFC 3339". Each is one line
        under 160 bytes (iqtime: the leap second's was 180, its reason shortened)."""
        self.d = d = vt.Vigild()
        d.start()
        self.assertEqual(d.post_json({"device": "qt", "ts": 1000, "values": {"v": 1}}).status, 200)
        for path in ("/v1/devices/qt/readings", "/v1/anomalies"):
            for q, want in (
                    ("from=1970-01-01T00:30:00%2B01:00",
                     "parameter 'from': '1970-01-01T00:30:00+01:00': before "
                     "1970-01-01T00:00:00Z once its offset is applied: vigil keeps Unix time "
                     "from 1970 on"),
                    ("to=9999-12-31T23:30:00-01:00",
                     "parameter 'to': '9999-12-31T23:30:00-01:00': after "
                     "9999-12-31T23:59:59.999Z once its offset is applied"),
                    ("from=2016-12-31T23:59:60Z", "parameter 'from': '2016-12-31T23:59:60Z': "
                     "second 60 (a leap second) is refused: Unix time has none; send second "
                     "59.999 or epoch milliseconds"),
                    ("from=yesterday",
                     "parameter 'from': 'yesterday' is not epoch milliseconds or RFC 3339"),
                    ("from=2024-13-01T00:00:00Z",
                     "parameter 'from': '2024-13-01T00:00:00Z' is not epoch milliseconds or "
                     "RFC 3339")):
                st, _, body = d.get("%s?%s" % (path, q))
                self.assertEqual(st, 400, (path, q, body))
                self.assertIn(want, json.loads(body)["error"], (path, q))
                self.assertLess(len(json.loads(body)["error"]), 160, (path, q))
        # A 1969 time that its offset brings into 1970 is taken.
        got = d.readings("qt", **{"from": "1969-12-31T23:00:00.500-01:00"})
        self.assertEqual([p["ts"] for p in got], [1000], got)

    def test_missing_offset_or_t(self):
        """from=/to= and JSON's ts say what is missing from a date and time: no offset (a local
        time, which vigild does not guess), or another character than 'T' between date and time.
        Before: "is not epoch milliseconds or RFC 3339" and "not an RFC 3339 timestamp ..."
        alone. A space for the 'T' (RFC 3339 5.6's NOTE) is taken, as it always was."""
        self.d = d = vt.Vigild()
        d.start()
        # iqtime: the reason first, the general words after, in one line under 160 bytes (was
        # "not an RFC 3339 timestamp between 1970 and 9999: " then the reason)
        rfc = "; not an RFC 3339 timestamp"
        no_off = "no offset after the time: add Z (UTC) or +hh:mm" + rfc
        no_t = "'T' expected between date and time, as in 2026-11-28T10:00:00Z" + rfc
        cases = (("2026-12-04T10:00:00", no_off), ("2026-12-04 10:00:00.5", no_off),
                 ("2026-12-04_10:00:00Z", no_t))
        for path in ("/v1/devices/qt/readings", "/v1/anomalies"):
            for name in ("from", "to"):
                for v, why in cases:
                    q = urllib.parse.urlencode({name: v}, quote_via=urllib.parse.quote)
                    st, _, body = d.get("%s?%s" % (path, q))
                    err = json.loads(body)["error"]
                    self.assertEqual((st, err), (400, "parameter '%s': '%s': %s" % (name, v, why)),
                                     (path, q))
                    self.assertLess(len(err), 160, err)
        res = d.post_json([{"device": "qt", "ts": v, "values": {"v": 1}} for v, _ in cases] +
                          [{"device": "qt", "ts": "2026-12-04 10:00:00Z", "values": {"v": 2}}])
        self.assertEqual(res.status, 400, res)
        doc = res.json()
        self.assertEqual(doc["accepted"], 1, doc)
        self.assertEqual({e["index"]: e["error"] for e in doc["errors"]},
                         {i: "ts: " + why for i, (_, why) in enumerate(cases)})
        got = d.readings("qt", **{"from": "2026-12-04 10:00:00Z"})
        self.assertEqual([(p["ts"], p["values"]) for p in got], [(1796378400000, {"v": 2.0})], got)


    def test_date_alone_and_epoch_units(self):
        """review (iqtime): from=/to= say what JSON's ts says of a date alone (its time
        missing) and of epoch micro- or nanoseconds (the unit, and the milliseconds to send),
        the reason first, one line under 160 bytes. Before, each was "is not epoch
        milliseconds or RFC 3339". What is no time keeps that general message (a negative number
        kept it until session 48: now it is before 1970)."""
        self.d = d = vt.Vigild()
        d.start()
        rng = "after 9999 as epoch milliseconds; "
        cases = (("2026-12-04", "no time after the date: add one and its offset, as in "
                  "2026-11-28T10:00:00Z; not an RFC 3339 timestamp"),
                 ("1733300000000123", rng + "looks like epoch microseconds: send milliseconds, "
                  "e.g. 1733300000000"),
                 ("1733300000000123456", rng + "looks like epoch nanoseconds: send milliseconds, "
                  "e.g. 1733300000000"),
                 ("-1733300000000123", "before 1970 as epoch milliseconds, which start at 0 (1970-01-01)"))  # session 48
        general = (("yesterday", "no time"),)  # session 49: past int64 and 2026-12 say why
        for path in ("/v1/devices/qt/readings", "/v1/anomalies"):
            for name in ("from", "to"):
                for v, why in cases:
                    st, _, body = d.get("%s?%s=%s" % (path, name, v))
                    err = json.loads(body)["error"]
                    self.assertEqual((st, err), (400, "parameter '%s': '%s': %s" % (name, v, why)),
                                     (path, name))
                    self.assertLess(len(err), 160, err)
                for v, _ in general:
                    st, _, body = d.get("%s?%s=%s" % (path, name, v))
                    self.assertEqual((st, json.loads(body)["error"]), (400, "parameter '%s': '%s' "
                                     "is not epoch milliseconds or RFC 3339, e.g. 1796000000000 "
                                     "or 2026-11-28T10:00:00Z" % (name, v)), v)
        # JSON's ts gives the same reasons (its range words before the unit's)
        res = d.post_json([{"device": "qt", "ts": v, "values": {"v": 1}} for v in
                           ("2026-12-04", 1733300000000123, 1733300000000123456)])
        self.assertEqual(res.status, 400, res)
        errs = {e["index"]: e["error"] for e in res.json()["errors"]}
        self.assertEqual(errs[0], "ts: " + cases[0][1])
        for i in (1, 2):
            self.assertTrue(errs[i].endswith(cases[i][1][len(rng):]), errs[i])

    def test_epoch_seconds(self):
        """A read route's time in [1e8, 1e11) as a number is epoch seconds sent for milliseconds
        (1970-01-02 to 1973-03-03 in ms): refused with a 400 naming the parameter, in the words
        JSON's ts uses (docs/writing.md "Writing readings"), on every route taking from=/to= and on
        DELETE .../maintenance?from=. Before, from=1796000000 was read as 1970-01-21 and
        answered every reading since, to= nothing. The same days as RFC 3339 and the numbers
        either side of the range are taken."""
        self.d = d = vt.Vigild()
        d.start()
        secs = 1796000000  # 2026-11-30 in epoch seconds
        res = d.post_json([{"device": "qt", "ts": 1000, "values": {"v": 1}},
                           {"device": "qt", "ts": secs * 1000, "values": {"v": 2}},
                           {"device": "qt", "ts": secs, "values": {"v": 3}}])
        self.assertEqual(res.status, 400, res)
        why = ("between 1970-01-02 and 1973-03-03 in milliseconds: looks like epoch seconds")
        self.assertEqual([e["error"] for e in res.json()["errors"]],
                         ["ts: " + why + " (or a counter of milliseconds since a device's boot); "
                          "send epoch milliseconds or an RFC 3339 string"])
        paths = ("/v1/devices/qt/readings", "/v1/devices/qt/predictions",
                 "/v1/devices/qt/anomalies", "/v1/anomalies")
        for path in paths:
            for name in ("from", "to"):
                for v in (secs, 100000000, 99999999999):
                    st, _, body = d.get("%s?%s=%d" % (path, name, v))
                    err = json.loads(body).get("error")
                    self.assertEqual((st, err), (400, "parameter '%s': '%d': %s; send "
                                                 "milliseconds, e.g. %d" % (name, v, why,
                                                                            v * 1000)),
                                     (path, name, v))
                    self.assertLess(len(err), 160, err)
                for v in ("99999999", "100000000000", "1972-01-01T00:00:00Z"):
                    q = urllib.parse.urlencode({name: v})
                    st, _, body = d.get("%s?%s" % (path, q))
                    self.assertNotEqual(st, 400, (path, q, body))
        res = d.curl("DELETE", "/v1/devices/qt/maintenance?from=%d" % secs)
        self.assertEqual((res.status, res.json().get("error")),
                         (400, "parameter 'from': '%d': %s; send milliseconds, e.g. %d"
                          % (secs, why, secs * 1000)))
        # In milliseconds the same time reads the reading written then, and the range's edges
        # as numbers still bound a query.
        got = d.readings("qt", **{"from": secs * 1000})
        self.assertEqual([p["ts"] for p in got], [secs * 1000], got)
        got = d.readings("qt", **{"to": 99999999})
        self.assertEqual([p["ts"] for p in got], [1000], got)


    def test_epoch_seconds_written_otherwise(self):
        """Epoch seconds with a fraction or an exponent (Python's time.time(), 1.796e9, a sign)
        are refused on a read's from=/to= and DELETE .../maintenance?from= as the integer is,
        naming the parameter and the milliseconds to send, as JSON's ts refuses the same numbers
        (session 48; before, each got "is not epoch milliseconds or RFC 3339"). A negative
        number says it is before 1970, a fraction of a millisecond or a whole number written so
        says that, as JSON's ts does; JSON takes the whole number 1.796e12, a parameter does not."""
        self.d = d = vt.Vigild()
        d.start()
        why = "between 1970-01-02 and 1973-03-03 in milliseconds: looks like epoch seconds"
        cases = [("1796000000.123", why + "; send milliseconds, e.g. 1796000000123"),
                 ("+1796000000", why + "; send milliseconds, e.g. 1796000000000"),
                 ("1.796e9", why + "; send milliseconds, e.g. 1796000000000"),
                 ("1.796E+9", why + "; send milliseconds, e.g. 1796000000000"),
                 ("-1796000000", "before 1970 as epoch milliseconds, which start at 0 (1970-01-01)"),
                 ("-5", "before 1970 as epoch milliseconds, which start at 0 (1970-01-01)"),
                 ("1796000000123.5", "not a whole number of milliseconds"),
                 ("1.796e12", "not an integer: send milliseconds as digits, e.g. 1796000000000")]
        res = d.post_json([{"device": "qd", "ts": 1000, "values": {"v": 1}}])
        self.assertEqual(res.status, 200, res)
        for path in ("/v1/devices/qd/readings", "/v1/devices/qd/predictions",
                     "/v1/devices/qd/anomalies", "/v1/anomalies"):
            for name in ("from", "to"):
                for v, want in cases:
                    q = urllib.parse.urlencode({name: v})
                    st, _, body = d.get("%s?%s" % (path, q))
                    self.assertEqual((st, json.loads(body).get("error")),
                                     (400, "parameter '%s': '%s': %s" % (name, v, want)),
                                     (path, q))
        # Typed unencoded (curl '...?from=+1796000000'), the '+' arrives as a space (review:
        # before, the generic message, where main refused it as seconds).
        st, _, body = d.get("/v1/devices/qd/readings?from=+1796000000")
        self.assertEqual((st, json.loads(body).get("error")),
                         (400, "parameter 'from': ' 1796000000': " + cases[1][1]))
        for v, want in cases:
            res = d.curl("DELETE", "/v1/devices/qd/maintenance?" +
                         urllib.parse.urlencode({"from": v}))
            self.assertEqual((res.status, res.json().get("error")),
                             (400, "parameter 'from': '%s': %s" % (v, want)), v)
        # The write path: the same numbers as JSON's ts, seconds refused in the same words,
        # before 1970 and a fraction refused, the whole real taken.
        res = d.post_json([{"device": "qd", "ts": json.loads(v), "values": {"v": 2}}
                           for v in ("1796000000.123", "1.796e9", "-5", "1796000000123.5",
                                     "1.796e12")])
        self.assertEqual(res.status, 400, res)
        errs = {e["index"]: e["error"] for e in res.json()["errors"]}
        self.assertEqual(sorted(errs), [0, 1, 2, 3], errs)
        for i in (0, 1):
            self.assertTrue(errs[i].startswith("ts: " + why), errs[i])
        self.assertEqual(errs[3], "ts: not a whole number of milliseconds")

    def assert_whys(self, path, name, cases):
        """Each (the raw query value, as the daemon sees it, why) of cases sent as name= to path
        is 400 with why after the parameter's words, one line under 160 bytes."""
        for raw, v, why in cases:
            st, _, body = self.d.get("%s?%s=%s" % (path, name, raw))
            err = json.loads(body).get("error")
            self.assertEqual((st, err), (400, "parameter '%s': '%s': %s" % (name, v, why)),
                             (path, name, raw))
            self.assertLess(len(err), 160, err)

    def test_read_time_messages(self):
        """Session 49: from=/to= values a user types by mistake say what is wrong and what is
        taken, naming the parameter, on every read route and DELETE .../maintenance; on main each
        got "is not epoch milliseconds or RFC 3339" (a negative number "before 1970 as epoch
        milliseconds", JSON's negative ts "out of range: epoch milliseconds between 1970 and
        9999": now both name where epoch milliseconds start). now and now-1h stay refused.
        Each message is one line under 160 bytes."""
        self.d = d = vt.Vigild()
        d.start()
        self.assertEqual(d.post_json({"device": "qm", "ts": 1000, "values": {"v": 1}}).status, 200)
        space = "white space at its end: send the time alone, epoch milliseconds or RFC 3339"
        rel = ("relative times (now, now-1h) are not taken: send epoch milliseconds or RFC 3339; "
               "a bound left out is open")
        inf = ("not a finite number: send epoch milliseconds, from 0 (1970) to 253402300799999 "
               "(9999)")
        before = "before 1970 as epoch milliseconds, which start at 0 (1970-01-01)"
        cases = (  # (the raw query value, as the daemon sees it, why)
            ("2026-12", "2026-12", "an incomplete date: give year-month-day, a time and an "
             "offset, as in 2026-11-28T10:00:00Z; not an RFC 3339 timestamp"),
            ("1796000000s", "1796000000s", "a unit after the number: send epoch milliseconds as "
             "digits alone, e.g. 1796000000000"),
            ("now", "now", rel), ("now-1h", "now-1h", rel),
            ("1e400", "1e400", "after 9999 as epoch milliseconds, which end at 253402300799999 "
             "(9999-12-31)"),
            ("inf", "inf", inf), ("nan", "nan", inf),
            ("1796000000000%20", "1796000000000 ", space),
            ("1796000000000+", "1796000000000 ", space),
            ("-1", "-1", before),
            ("2026-11-28T10:00:00+01:00", "2026-11-28T10:00:00 01:00", "a space before the "
             "offset: a '+' in a query string is a space; send it as %2B, e.g. %2B01:00"))
        for path in ("/v1/devices/qm/readings", "/v1/devices/qm/predictions",
                     "/v1/devices/qm/anomalies", "/v1/anomalies"):
            for name in ("from", "to"):
                self.assert_whys(path, name, cases)
        res = d.curl("DELETE", "/v1/devices/qm/maintenance?from=now")
        self.assertEqual((res.status, res.json().get("error")),
                         (400, "parameter 'from': 'now': " + rel))
        # What is no time at all: the general words, with an example of each form taken.
        st, _, body = d.get("/v1/devices/qm/readings?from=yesterday")
        self.assertEqual((st, json.loads(body).get("error")),
                         (400, "parameter 'from': 'yesterday' is not epoch milliseconds or RFC "
                          "3339, e.g. 1796000000000 or 2026-11-28T10:00:00Z"))
        # "+0100" (an offset typed alone): refused since session 50 (test_read_time_leftovers).
        # JSON's ts: a negative one in the parameter's words; a date cut short says so.
        res = d.post_json([{"device": "qm", "ts": v, "values": {"v": 2}} for v in (-1, "2026-12")])
        self.assertEqual(res.status, 400, res)
        errs = {e["index"]: e["error"] for e in res.json()["errors"]}
        self.assertEqual(errs, {0: "ts: " + before, 1: "ts: " + cases[0][2]})

    def test_read_time_leftovers(self):
        """Session 50: an empty from=/to= says it is empty (main: "'' is not epoch milliseconds
        or RFC 3339", refused as now); an offset without its colon (+0100), its '+' unencoded
        too, says what is wrong (main: the general words; refused as now); "+0100" alone (or
        " 0100") is refused as an offset alone (main: taken as 100 ms, from read from 1970 and
        to found nothing). Digits alone of 1970's first day and "+1796000000000" stay taken."""
        self.d = d = vt.Vigild()
        d.start()
        for ts in (1000, 1796000000000):
            self.assertEqual(d.post_json({"device": "qo", "ts": ts, "values": {"v": 1}}).status,
                             200)
        colon = ("an offset without its colon: write +hh:mm, as in 2026-11-28T10:00:00+01:00; "
                 "not an RFC 3339 timestamp")
        space = ("a space and an offset without its colon: a '+' in a query string is a space; "
                 "send %2B and hh:mm, e.g. %2B01:00")
        sign = ("a sign before a time of 1970's first day: likely an offset alone; send a whole "
                "time, e.g. 2026-11-28T10:00:00%2B01:00")
        blank = ("a space (an unencoded '+') before a time of 1970's first day: likely an offset "
                 "alone; send a whole time, '+' as %2B")
        cases = (  # (the raw query value, as the daemon sees it, why)
            ("2026-11-28T10:00:00%2B0100", "2026-11-28T10:00:00+0100", colon),
            ("2026-11-28T10:00:00-0100", "2026-11-28T10:00:00-0100", colon),
            ("2026-11-28T10:00:00+0100", "2026-11-28T10:00:00 0100", space),
            ("%2B0100", "+0100", sign), ("+0100", " 0100", blank))
        for path in ("/v1/devices/qo/readings", "/v1/devices/qo/anomalies"):
            for name in ("from", "to"):
                st, _, body = d.get("%s?%s=" % (path, name))
                self.assertEqual((st, json.loads(body).get("error")),
                                 (400, "parameter '%s' is empty: give epoch milliseconds or RFC "
                                  "3339, e.g. 1796000000000 or 2026-11-28T10:00:00Z, or leave "
                                  "'%s' out" % (name, name)), (path, name))
                self.assert_whys(path, name, cases)
        res = d.curl("DELETE", "/v1/devices/qo/maintenance?from=")
        self.assertEqual((res.status, res.json().get("error")),
                         (400, "parameter 'from' is empty: give epoch milliseconds or RFC 3339, "
                          "e.g. 1796000000000 or 2026-11-28T10:00:00Z, or leave 'from' out"))
        # JSON's ts says the colon is missing too.
        res = d.post_json({"device": "qo", "ts": "2026-11-28T10:00:00+0100", "values": {"v": 2}})
        self.assertEqual((res.status, res.json().get("errors", [{}])[0].get("error")),
                         (400, "ts: " + colon), res.json())
        # Taken as before: digits alone, a sign before a later time, an offset with its colon.
        for params, want in (({"from": "0100"}, [1000, 1796000000000]),
                             ({"to": "0100"}, []),
                             ({"from": "+1796000000000"}, [1796000000000]),
                             ({"to": "2026-11-28T10:00:00+01:00"}, [1000])):
            got = d.readings("qo", **params)
            self.assertEqual([p["ts"] for p in got], want, (params, got))


class ClockStepsBack(OwnDaemon):

    def status(self, device):
        return self.d.get_json("/v1/devices/%s/status" % vt.quote(device))

    @unittest.skipUnless(os.path.exists(CLOCKSHIFT), "VIGIL_CLOCKSHIFT (tests/fault/clockshift.c's "
                         "library, set by CTest; not built for a TSan build) not found")
    def test_stamps_never_go_back(self):
        tmp = vt.mkdtemp()
        shift = vt.write_file_atomic(os.path.join(tmp, "shift"), "0")
        self.d = d = vt.Vigild(prefix=["env", "LD_PRELOAD=" + vt.preload(CLOCKSHIFT),
                                       "VIGIL_CLOCKSHIFT_FILE=" + shift])
        d.start()
        dev = "stamped-1"

        def send(n):
            for i in range(n):  # one request each, 20 ms apart: each its own millisecond
                r = d.post_json({"device": dev, "values": {"v": float(i % 5)}})
                self.assertEqual(r.status, 200, r)
                time.sleep(0.02)

        send(20)
        wait_for("20 scored", lambda: self.status(dev).get("readings_scored", 0) >= 20, 60)
        vt.write_file_atomic(shift, str(-HOUR))  # read by the library within 20 ms
        time.sleep(0.1)
        send(20)
        st = wait_for("40 scored", lambda: (lambda s: s if s.get("readings_scored", 0) +
                                            s.get("readings_not_scored_out_of_order", 0) >= 40
                                            else None)(self.status(dev)), 60)
        self.assertEqual(st["readings_not_scored_out_of_order"], 0, st)
        self.assertEqual(st["readings_scored"], 40, st)
        pts = d.readings(dev, limit=1000)
        self.assertEqual(len(pts), 40, pts)  # none replaced
        ts = [p["ts"] for p in pts]
        self.assertEqual(ts, sorted(set(ts)))
        self.assertIn("the wall clock stepped back by", d.log())
        vt.write_file_atomic(shift, "0")

    @unittest.skipUnless(os.path.exists(CLOCKSHIFT), "VIGIL_CLOCKSHIFT (tests/fault/clockshift.c's "
                         "library, set by CTest; not built for a TSan build) not found")
    def test_shift_file_read_empty_keeps_the_shift(self):
        """The shifter caught reading its file empty (written in place: truncated, not yet
        written) keeps the shift it had: vigild's clock stays an hour back throughout. Before
        session 60 an empty read was no shift for 20 ms: the readings stamped then were an
        hour ahead, and the next ones, the shift read again, a step back vigild logged."""
        tmp = vt.mkdtemp()
        shift = vt.write_file_atomic(os.path.join(tmp, "shift"), str(-HOUR))
        self.d = d = vt.Vigild(prefix=["env", "LD_PRELOAD=" + vt.preload(CLOCKSHIFT),
                                       "VIGIL_CLOCKSHIFT_FILE=" + shift])
        d.start()
        dev = "shift-empty-1"

        def send(n):
            for i in range(n):  # one request each, 20 ms apart: a re-read of the file each
                r = d.post_json({"device": dev, "values": {"v": float(i % 5)}})
                self.assertEqual(r.status, 200, r)
                time.sleep(0.02)

        send(5)
        vt.write_file(shift, "")  # in place, as a writer between truncating and writing
        send(15)
        vt.write_file_atomic(shift, str(-HOUR))
        send(5)
        wait_for("25 scored", lambda: self.status(dev).get("readings_scored", 0) +
                 self.status(dev).get("readings_not_scored_out_of_order", 0) >= 25, 60)
        self.assertNotIn("the wall clock stepped", d.log())
        ts = [p["ts"] for p in d.readings(dev, limit=1000)]
        self.assertEqual(len(ts), 25, ts)
        self.assertLess(max(ts), time.time() * 1000 - HOUR / 2, ts)  # all an hour back


class FarFuture(OwnDaemon):
    """A reading stamped more than storage.max_ahead (default a day) after vigild's clock is
    refused at write, naming its item or line, in JSON, /write and the stream: stored, one
    reading of a gateway whose clock jumped to 2100 stayed the device's newest in listings and
    in SELECT last() until 2100 (session 42 kept it, stored but not scored). 0 turns it off."""

    def start(self, conf=None):
        path = None
        if conf is not None:
            path = vt.write_file(os.path.join(vt.mkdtemp(), "vigild.conf"), conf)
        self.d = vt.Vigild(config=path)
        self.d.start()
        return self.d

    def last_value(self, device):
        q = 'SELECT last(v) FROM m WHERE "device" = \'%s\'' % device
        st, _, body = self.d.get("/query?" + urllib.parse.urlencode({"db": "db", "q": q,
                                                                      "epoch": "ms"}))
        self.assertEqual(st, 200, body)
        return json.loads(body)["results"][0]["series"][0]["values"][0]

    def test_far_future_refused(self):
        d = self.start("[model]\nenabled = false\n")
        now = vt.now_ms()
        r = d.post_json([{"device": "ff", "ts": now, "values": {"v": 1}},
                         {"device": "ff", "ts": Y2100, "values": {"v": 99}},
                         {"device": "ff", "ts": now + 23 * HOUR, "values": {"v": 2}}])
        self.assertEqual(r.status, 400, r)
        doc = r.json()
        self.assertEqual((doc["accepted"], doc["rejected"]), (2, 1), doc)
        self.assertEqual(doc["errors"][0]["index"], 1, doc)
        err = doc["errors"][0]["error"]
        for part in ("too far in the future", "ts 2100-01-01T00:00:00.000Z",
                     "more than 1d ahead", "storage.max_ahead = 1d", "not stored"):
            self.assertIn(part, err)
        r = d.write_lp("m,device=ff v=3 %d\nm,device=ff v=98 %d\n" % (now + 1, now + 2 * DAY),
                       precision="ms")
        self.assertEqual(r.status, 400, r)
        self.assertIn("too far in the future", r.body.decode())
        self.assertIn("(line 2)", r.body.decode())
        c = d.stream_connect()
        try:
            c.send("m,device=ff v=97 %d\nm,device=ff v=4 %d\n"
                   % (Y2100 * 10 ** 6, (now + 2) * 10 ** 6))
            errs = vt.errors_of(c.wait_ok(2))
            self.assertEqual(sorted(errs), [1], errs)
            self.assertIn("too far in the future", errs[1])
            c.finish()
        finally:
            c.close()
        pts = d.readings("ff")
        self.assertEqual([p["ts"] for p in pts], [now, now + 1, now + 2, now + 23 * HOUR], pts)
        self.assertEqual(d.device("ff")["last_ts"], now + 23 * HOUR)
        self.assertEqual(self.last_value("ff")[1], 2)  # SELECT last(): not a refused one
        self.assertEqual(d.metric("vigil_ahead_refused_points_total", need=True), 3)
        # The journal says so once a minute with the count since (the first write's one here):
        # with vigild's own clock behind, every device's readings are refused.
        warns = [l for l in d.log().splitlines() if "refused as stamped more than 1d ahead" in l]
        self.assertEqual(len(warns), 1, d.log())
        for part in ("ingest: 1 reading refused", "e.g. ts 2100-01-01T00:00:00.000Z",
                     "a device's clock or this host's is wrong", "storage.max_ahead = 1d"):
            self.assertIn(part, warns[0])

    def test_reload(self):
        # storage.max_ahead is live: a reload turns it off and sets another bound, without a
        # restart (the same process answers; before, "applied only after a restart").
        d = self.start("[model]\nenabled = false\n")
        pid, now = d.proc.pid, vt.now_ms()
        self.assertEqual(d.post_json({"device": "fr", "ts": Y2100, "values": {"v": 1}}).status, 400)
        vt.write_file(d.config, "[model]\nenabled = false\n[storage]\nmax_ahead = 0\n")
        log = test_ops.hup(d, r"configuration reloaded; applied: storage.max_ahead")
        self.assertNotIn("applied only after a restart", log)
        self.assertEqual(d.post_json({"device": "fr", "ts": Y2100, "values": {"v": 2}}).status, 200)
        vt.write_file(d.config, "[model]\nenabled = false\n[storage]\nmax_ahead = 2d\n")
        test_ops.hup(d, r"configuration reloaded; applied: storage.max_ahead")
        self.assertEqual(d.post_json({"device": "fr", "ts": now + 47 * HOUR,
                                      "values": {"v": 3}}).status, 200)
        r = d.post_json({"device": "fr", "ts": now + 3 * DAY, "values": {"v": 4}})
        self.assertEqual(r.status, 400, r)
        self.assertIn("(storage.max_ahead = 2d)", r.json()["errors"][0]["error"])
        self.assertEqual(d.proc.pid, pid)

    def test_bound_off(self):
        d = self.start("[model]\nenabled = false\n[storage]\nmax_ahead = 0\n")
        r = d.post_json({"device": "ff0", "ts": Y2100, "values": {"v": 99}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(d.device("ff0")["last_ts"], Y2100)
        self.assertEqual(d.metric("vigil_ahead_refused_points_total", need=True), 0)


if __name__ == "__main__":
    vt.main()

#!/usr/bin/python3
"""vigild integration: limit alarms on a device's channels, now and forecast.

A device's attributes carry channel limits (PUT /v1/devices/{id} {"limits": {"temp": {"max":
90, "deadband": 2}}}); each limited channel has a limit state, ok, forecast or exceeded, shown
by GET .../status ("limits") and /metrics (vigil_device_limit_state{device,channel},
vigil_limit_alarms_total{state}), and every change of it is one "event: limit" message on the
streams that ask ?types=limit, and one line of the log (session 67: warn when exceeded, info
otherwise; at most 10 a minute, as episodes' lines).

Exceeded: a reading at or beyond a max (or a min) is "exceeded" at once, in the status, the
metrics and one message; the first reading back inside is "ok" again (one message); with a
deadband, a value hovering within it of the limit stays exceeded (no flapping) and clears only
once inside by more than the deadband. A PUT removing the limit publishes a final "ok" and the
channel's state is gone (a DELETE of the device too); a PUT keeping the alarmed limit keeps its
state. After a restart every state is ok (since null) until the next reading judges it. A
device without limits shows "limits": {}; beyond http.metrics_max_devices a device with a limit
alarm is still listed. The default stream (no ?types=) gets no limit message.

Forecast: a device with a trained model whose channel ramps steadily toward its max is
"forecast" (with the crossing's steps, in_ms and at) before it is "exceeded"; a device still
learning gets no forecast alarm, and pipeline.limit_horizon = 0 turns them off. vigil-sim's
overheating pump, whose model forecasts its temperature back along the load cycle, is forecast
by its readings' trend ("by": "trend") once the temperature departs from its prediction; the
same temperature mirrored (falling toward a min) is forecast by trend on the min, and back well
inside the max after exceeding it, it is not forecast by the line that still rises past it. A
forecast alarm is raised at the second check in a row that sees a crossing within the horizon,
held while one is seen within 1.25 x the horizon, cleared beyond (ForecastRules, against the
forecast route's time_to_limit, the same crossing, "by" included); a PUT moving the limit
makes the next check the first for its new value. A stored deadband not below
max - min is clamped to half the band.

Maintenance: readings in a period are not judged; when the period ends (a DELETE, or its end
by vigild's clock) every alarm ends with an "ok" message, and the first reading after it judges
again: a device silent after the work shows no stale "exceeded", and one whose clock is ahead,
already judged by a reading timestamped after the period, keeps that state. Out of memory in a rebuild
(RebuildOutOfMemory, failalloc): the open alarms end with their "ok" before the next reading
raises them again.

Errors: bad limit fields are 400s naming the field (limits.temp.deadband; a deadband not
below max - min; a value beyond a float's range, and one already stored reads as absent); the
two [pipeline] keys' bad values stop vigild naming the file, line and key.

Python 3 standard library; every wait is bounded.
"""

import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import test_sse as ts  # noqa: E402  (Sse only)
import vigiltest as vt  # noqa: E402

T0 = 1_700_000_000_000


def ramp(n, k, slope, rng):
    """Readings k..k+n of a channel rising slope a reading from 50, with a little noise."""
    return [round(50 + slope * i + rng.gauss(0, 0.05), 4) for i in range(k, k + n)]


def limit_state(d, dev, ch):
    """vigil_device_limit_state of dev's channel ch, or None when not listed."""
    v = d.metric('vigil_device_limit_state{device="%s",channel="%s"}' % (dev, ch))
    return None if v is None else int(v)


def alarms(d):
    """vigil_limit_alarms_total by state (both must be listed)."""
    text = d.metrics()
    return {s: int(vt.metric_in(text, 'vigil_limit_alarms_total{state="%s"}' % s, need=True))
            for s in ("forecast", "exceeded")}


def channels(d):
    """vigil_limit_channels by state (all three must be listed)."""
    text = d.metrics()
    return {s: int(vt.metric_in(text, 'vigil_limit_channels{state="%s"}' % s, need=True))
            for s in ("ok", "forecast", "exceeded")}


class LimitTest(ts.SseTest):
    CONFIG = tp.config_text(0)  # warmup 300: a device learns for its first 300 readings

    def put_limits(self, dev, limits, want=200):
        r = self.d.curl("PUT", "/v1/devices/%s" % dev, "-H", "Content-Type: application/json",
                        "--data-binary", json.dumps({"limits": limits}))
        if want == 200 and r.status == 201:  # created by this PUT
            want = 201
        self.assertEqual(r.status, want, r)
        return r

    def feed(self, dev, values, k, channel="temp"):
        """Posts one reading per value (1 s apart from reading k on) and waits until scored."""
        tp.post_readings(self.d, dev, [[v] for v in values],
                         [T0 + 1000 * i for i in range(k, k + len(values))], [channel])
        tp.wait_scored(self.d, dev, k + len(values))
        return k + len(values)

    def limits(self, dev):
        return tp.status(self.d, dev)["limits"]

    def messages(self, s, n):
        """The stream's first n messages (waits for them), as (state, limit, reading)."""
        return [(m["data"]["state"], m["data"]["limit"], m["data"]["reading"])
                for m in s.count(n)]


class Exceeded(LimitTest):

    def test_above_max_then_back_inside(self):
        d = self.d
        s = self.stream("?types=limit")
        plain = self.stream()  # the default types: anomaly and maintenance
        k = self.feed("pump-1", [80.0], 0)
        self.assertEqual(self.limits("pump-1"), {}, "no limits yet")
        self.assertIsNone(limit_state(d, "pump-1", "temp"))
        self.assertEqual(alarms(d), {"forecast": 0, "exceeded": 0})
        self.put_limits("pump-1", {"temp": {"max": 90}})
        k = self.feed("pump-1", [85.0, 95.5], k)
        lim = self.limits("pump-1")["temp"]
        self.assertEqual(lim["state"], "exceeded", lim)
        self.assertEqual(lim["limit"], "max")
        self.assertEqual(lim["max"], 90)
        self.assertIsNone(lim["min"])
        self.assertEqual(lim["deadband"], 0)
        self.assertEqual(lim["since_ts"], T0 + 2000)
        self.assertIsNone(lim["crossing"], "a learning device has no forecast")
        self.assertEqual(limit_state(d, "pump-1", "temp"), 2)
        self.assertEqual(alarms(d), {"forecast": 0, "exceeded": 1})
        msg = s.count(1)[0]
        self.assertEqual(msg["event"], "limit")
        self.assertEqual(msg["data"], {
            "device": "pump-1", "channel": "temp", "state": "exceeded", "previous": "ok",
            "limit": "max", "value": 90, "reading": 95.5, "ts": T0 + 2000,
            "time": "2023-11-14T22:13:22.000Z", "crossing": None})
        # Still beyond: no other message. The first reading back inside: ok, once.
        k = self.feed("pump-1", [97.0, 89.9, 80.0, 70.0], k)
        self.assertEqual(self.messages(s, 2), [("exceeded", "max", 95.5), ("ok", "max", 89.9)])
        lim = self.limits("pump-1")["temp"]
        self.assertEqual((lim["state"], lim["limit"], lim["since_ts"]), ("ok", None, T0 + 4000))
        self.assertEqual(limit_state(d, "pump-1", "temp"), 0)
        self.assertEqual(alarms(d), {"forecast": 0, "exceeded": 1})
        # A min: at the limit counts (as the forecast's time_to_limit does).
        self.put_limits("pump-1", {"temp": {"max": 90}, "pressure": {"min": 1.5}})
        self.feed("pump-1", [1.6, 1.5], k, channel="pressure")
        self.assertEqual(s.count(3)[2]["data"]["channel"], "pressure")
        self.assertEqual(self.messages(s, 3)[2], ("exceeded", "min", 1.5))
        self.assertEqual(self.limits("pump-1")["pressure"]["limit"], "min")
        self.assertEqual(limit_state(d, "pump-1", "pressure"), 2)
        self.assertEqual(limit_state(d, "pump-1", "temp"), 0)
        self.assertEqual(alarms(d), {"forecast": 0, "exceeded": 2})
        self.assertEqual(len(s.messages), 3, s.messages)
        self.assertEqual([m for m in plain.messages if m["event"] == "limit"], [])
        # The log has each change too (task ops67: before, none was logged).
        self.assertEqual(tp.logged(d, r" (warn|info)  limit: device 'pump-1' (.*)", 3), [
            ("warn", "channel 'temp': exceeded its max 90 (reading 95.5)"),
            ("info", "channel 'temp': back within its limits (was exceeded)"),
            ("warn", "channel 'pressure': exceeded its min 1.5 (reading 1.5)")])

    def hover(self, dev, deadband):
        """Feeds a value hovering about a max of 90 (deadband given or not); returns the
        stream's messages as (state, limit, reading) once the last reading is scored."""
        s = self.stream("?types=limit&device=" + dev)
        lim = {"max": 90}
        if deadband is not None:
            lim["deadband"] = deadband
        self.put_limits(dev, {"temp": lim})
        values = [85.0, 91.0, 89.5, 90.5, 88.5, 91.0, 89.0, 88.1, 87.9, 85.0]
        self.feed(dev, values, 0)
        # A marker on another channel's limit: once it arrives, every temp message has.
        self.put_limits(dev, {"temp": lim, "marker": {"max": 0}})
        self.feed(dev, [1.0], len(values), channel="marker")
        msgs = s.wait("the marker", lambda st: any(
            m["data"]["channel"] == "marker" for m in st.messages) and list(st.messages))
        return [(m["data"]["state"], m["data"]["limit"], m["data"]["reading"])
                for m in msgs if m["data"]["channel"] == "temp"]

    def test_deadband_holds_a_hovering_value(self):
        # Without a deadband every crossing is a change (the first reading back inside clears).
        self.assertEqual(self.hover("nodb", None), [
            ("exceeded", "max", 91.0), ("ok", "max", 89.5), ("exceeded", "max", 90.5),
            ("ok", "max", 88.5), ("exceeded", "max", 91.0), ("ok", "max", 89.0)])
        # With 2: exceeded until a reading below 88 (87.9), one ok; no flapping in between.
        self.assertEqual(self.hover("db2", 2), [("exceeded", "max", 91.0), ("ok", "max", 87.9)])
        lim = self.limits("db2")["temp"]
        self.assertEqual((lim["state"], lim["deadband"]), ("ok", 2))

    def test_put_removing_limits(self):
        d = self.d
        s = self.stream("?types=limit")
        self.put_limits("pump-2", {"temp": {"max": 90}, "flow": {"min": 5}})
        k = self.feed("pump-2", [95.0], 0)
        self.assertEqual(self.limits("pump-2")["temp"]["state"], "exceeded")
        # A limit on a channel the device has not sent has no state (yet).
        self.assertNotIn("flow", self.limits("pump-2"))
        self.assertIsNone(limit_state(d, "pump-2", "flow"))
        # Removed: the PUT ends the alarm with "ok" (the newest reading's value) and the states
        # are gone; readings beyond the old limit raise nothing.
        self.put_limits("pump-2", None)
        self.assertEqual(self.messages(s, 2), [("exceeded", "max", 95.0), ("ok", "max", 95.0)])
        self.assertEqual(s.count(2)[1]["data"]["value"], 90)
        self.assertEqual(self.limits("pump-2"), {})
        self.assertIsNone(limit_state(d, "pump-2", "temp"))
        self.assertIsNone(limit_state(d, "pump-2", "flow"))
        k = self.feed("pump-2", [96.0], k)
        # A limit that stays keeps its state across a PUT changing another: no message.
        self.put_limits("pump-2", {"temp": {"max": 90}})
        k = self.feed("pump-2", [97.0], k)
        self.put_limits("pump-2", {"temp": {"max": 90, "deadband": 1}, "flow": {"min": 5}})
        self.assertEqual(self.limits("pump-2")["temp"]["state"], "exceeded")
        self.feed("pump-2", [89.5], k)
        self.assertEqual(self.limits("pump-2")["temp"]["state"], "exceeded", "within the deadband")
        self.assertEqual(self.messages(s, 3)[2], ("exceeded", "max", 97.0))
        self.assertEqual(len(s.messages), 3, s.messages)
        # The log says why the alarm ended: its limit went, not the readings (review of ops67:
        # it said "back within its limits" of a reading still at 95).
        self.assertEqual(tp.logged(d, r" (warn|info)  limit: device 'pump-2' (.*)", 3), [
            ("warn", "channel 'temp': exceeded its max 90 (reading 95)"),
            ("info", "channel 'temp': alarm ended (was exceeded): its limit was removed"),
            ("warn", "channel 'temp': exceeded its max 90 (reading 97)")])

    def test_delete_ends_the_alarm(self):
        s = self.stream("?types=limit")
        self.put_limits("pump-5", {"temp": {"max": 90}})
        self.feed("pump-5", [95.0], 0)
        self.assertEqual(self.d.curl("DELETE", "/v1/devices/pump-5").status, 200)
        msgs = s.count(2)
        self.assertEqual([(m["data"]["state"], m["data"]["previous"]) for m in msgs],
                         [("exceeded", "ok"), ("ok", "exceeded")])
        # The device is gone with its readings: the final ok names no reading.
        self.assertEqual((msgs[1]["data"]["reading"], msgs[1]["data"]["ts"]), (None, None))
        self.assertIsNone(limit_state(self.d, "pump-5", "temp"))

    def test_restart_starts_from_ok(self):
        d = self.d
        self.put_limits("pump-4", {"temp": {"max": 90}})
        k = self.feed("pump-4", [95.0], 0)
        self.assertEqual(self.limits("pump-4")["temp"]["state"], "exceeded")
        d.stop()
        d.start()
        s = self.stream("?types=limit")
        lim = self.limits("pump-4")["temp"]
        self.assertEqual((lim["state"], lim["since_ts"], lim["max"]), ("ok", None, 90), lim)
        self.assertEqual(limit_state(d, "pump-4", "temp"), 0)
        self.assertEqual(alarms(d), {"forecast": 0, "exceeded": 0})
        # Judged again at the next reading.
        self.feed("pump-4", [96.0], k)
        self.assertEqual(self.messages(s, 1), [("exceeded", "max", 96.0)])
        self.assertEqual(self.limits("pump-4")["temp"]["since_ts"], T0 + 1000)

    def test_stored_limits_beyond_a_float(self):
        """Attributes stored before check_limits bounded them to a float's range: a deadband
        or a limit beyond it is taken as none (an infinite deadband never cleared, and the
        status lost the channel's entry)."""
        d = self.d
        self.put_limits("old", {"temp": {"max": 90}})
        k = self.feed("old", [80.0], 0)
        d.stop()
        db = sqlite3.connect(d.db_path, timeout=10, isolation_level=None)
        db.execute("UPDATE devices SET attrs=? WHERE name='old'", (json.dumps(
            {"limits": {"temp": {"max": 90, "deadband": 1e300}, "flow": {"max": 1e39}}}),))
        db.close()
        d.start()
        k = self.feed("old", [95.0, 89.5], k)
        self.feed("old", [1e30], k, channel="flow")
        lim = self.limits("old")
        self.assertEqual((lim["temp"]["state"], lim["temp"]["deadband"]), ("ok", 0), lim)
        self.assertNotIn("flow", lim, "a max beyond a float is no limit")
        self.assertIsNone(limit_state(d, "old", "flow"))

    def test_stored_deadband_too_wide_is_clamped(self):
        """A deadband not below max - min stored before the API refused it (an alarm on the
        max could clear only beyond the min: never) is clamped to half the band when loaded,
        logged: exceeded at 11 clears below 10 - 5, not at 6."""
        d = self.d
        self.put_limits("wide", {"temp": {"min": 0, "max": 10}})
        k = self.feed("wide", [5.0], 0)
        d.stop()
        db = sqlite3.connect(d.db_path, timeout=10, isolation_level=None)
        db.execute("UPDATE devices SET attrs=? WHERE name='wide'", (json.dumps(
            {"limits": {"temp": {"min": 0, "max": 10, "deadband": 25}}}),))
        db.close()
        d.start()
        s = self.stream("?types=limit")
        k = self.feed("wide", [11.0, 6.0], k)
        self.assertEqual(self.limits("wide")["temp"]["deadband"], 5, self.limits("wide"))
        self.assertEqual(self.limits("wide")["temp"]["state"], "exceeded")
        self.feed("wide", [4.5], k)
        self.assertEqual(self.messages(s, 2), [("exceeded", "max", 11.0), ("ok", "max", 4.5)])
        self.assertIn("stored deadband 25 is not below max - min (10); 5 used", d.log())

    def test_bad_limit_fields(self):
        for lim, field in (({"temp": {"max": 90, "deadband": -1}}, "'limits.temp.deadband'"),
                           ({"temp": {"max": 90, "deadband": "2"}}, "'limits.temp.deadband'"),
                           ({"temp": {"deadband": 1}}, "'limits.temp'"),
                           ({"temp": {"max": 90, "dead_band": 1}}, "'limits.temp.dead_band'"),
                           ({"temp": {"min": 9, "max": 1}}, "'limits.temp'"),
                           # A deadband as wide as the band between the limits: an alarm on
                           # one side could clear only beyond the other, so never.
                           ({"temp": {"min": 0, "max": 10, "deadband": 10}},
                            "'limits.temp.deadband'"),
                           ({"temp": {"min": 0, "max": 10, "deadband": 25}},
                            "'limits.temp.deadband'"),
                           # Beyond a float (how vigild keeps a limit): infinite there, so the
                           # status could not show it and an alarm with it never cleared.
                           ({"temp": {"max": 1e39}}, "'limits.temp.max'"),
                           ({"temp": {"min": -1e39}}, "'limits.temp.min'"),
                           ({"temp": {"max": 90, "deadband": 1e300}}, "'limits.temp.deadband'")):
            r = self.put_limits("pump-3", lim, want=400)
            self.assertIn("field " + field, r.json()["error"], (lim, r))
        self.put_limits("pump-3", {"temp": {"max": 90, "deadband": 0}})
        self.put_limits("pump-3", {"temp": {"min": 0, "max": 10, "deadband": 9.5}})


class Maintenance(LimitTest):

    def test_alarms_end_with_the_period(self):
        """Planned maintenance (README): readings in a period are not scored, so not judged.
        The crew pushing a value beyond the limit, or back inside, changes no limit state and
        publishes nothing during the period; when it ends (DELETE), each alarm ends with an
        "ok" message (since null: not judged since), and the first reading after the period
        judges again: still beyond, exceeded again."""
        d = self.d
        s = self.stream("?types=limit&device=pm")
        self.put_limits("pm", {"temp": {"max": 90}, "marker": {"max": 0}})
        t0 = int(time.time() * 1000) - 10_000  # before the period
        tp.post_readings(d, "pm", [[95.0]], [t0], ["temp"])
        tp.wait_scored(d, "pm", 1)
        self.assertEqual(self.messages(s, 1), [("exceeded", "max", 95.0)])
        tp.jreq(d, "POST", "/v1/devices/pm/maintenance", {"minutes": 60})
        t1 = int(time.time() * 1000) + 1000  # in the period: stored, not scored
        tp.post_readings(d, "pm", [[80.0], [97.0], [70.0]], [t1, t1 + 1000, t1 + 2000],
                         ["temp"])
        lim = self.limits("pm")["temp"]
        self.assertEqual((lim["state"], lim["since_ts"]), ("exceeded", t0), lim)
        self.assertEqual(limit_state(d, "pm", "temp"), 2)
        tp.jreq(d, "DELETE", "/v1/devices/pm/maintenance", want=204)
        self.assertEqual(self.messages(s, 2)[1], ("ok", "max", 95.0))
        lim = self.limits("pm")["temp"]
        self.assertEqual((lim["state"], lim["since_ts"], lim["limit"]), ("ok", None, None), lim)
        self.assertEqual(limit_state(d, "pm", "temp"), 0)
        # After the period: 96 is still beyond, exceeded again at that reading.
        t2 = int(time.time() * 1000) + 60_000
        tp.post_readings(d, "pm", [[96.0]], [t2], ["temp"])
        tp.wait_scored(d, "pm", 2)
        self.assertEqual(self.messages(s, 3)[2], ("exceeded", "max", 96.0))
        self.assertEqual(self.limits("pm")["temp"]["since_ts"], t2)

    def test_silent_device_after_a_period_by_the_clock(self):
        """A period that ends by vigild's clock (pipeline_maint_tick) ends the alarms of a
        device that sends nothing after it: no stale "exceeded" (the old code kept it)."""
        d = self.d
        s = self.stream("?types=limit&device=quiet")
        self.put_limits("quiet", {"temp": {"max": 90}})
        t0 = int(time.time() * 1000) - 10_000
        tp.post_readings(d, "quiet", [[95.0]], [t0], ["temp"])
        tp.wait_scored(d, "quiet", 1)
        self.assertEqual(self.messages(s, 1), [("exceeded", "max", 95.0)])
        until = int(time.time() * 1000) + 1500
        tp.jreq(d, "POST", "/v1/devices/quiet/maintenance", {"until": until})
        self.assertEqual(self.messages(s, 2)[1], ("ok", "max", 95.0))  # waits for the tick
        self.assertGreaterEqual(time.time() * 1000, until)
        lim = self.limits("quiet")["temp"]
        self.assertEqual((lim["state"], lim["since_ts"]), ("ok", None), lim)
        self.assertEqual(channels(d), {"ok": 1, "forecast": 0, "exceeded": 0})

    def test_reading_after_the_end_judged_before_the_tick(self):
        """A period ends by vigild's clock, a reading is scored by its own timestamp: a device
        whose clock is ahead sends a reading timestamped after the period while vigild's clock
        is still in it, and that reading judges the state (95: exceeded). The period's end
        leaves it (the old code's tick ended it with an "ok" the reading had not given, then
        the next reading beyond raised it again): the next message is the next reading's own,
        80 back inside."""
        d = self.d
        s = self.stream("?types=limit&device=ahead")
        ms = self.stream("?types=maintenance&device=ahead")
        self.put_limits("ahead", {"temp": {"max": 90}})
        until = int(time.time() * 1000) + 1500
        tp.jreq(d, "POST", "/v1/devices/ahead/maintenance", {"until": until})
        tp.post_readings(d, "ahead", [[95.0]], [until + 500], ["temp"])  # after the period
        tp.wait_scored(d, "ahead", 1)
        self.assertEqual(self.messages(s, 1), [("exceeded", "max", 95.0)])
        # The tick's message of the period's end (the alarms' reset follows it on the loop).
        past = [m["data"] for m in ms.count(2)][1]
        self.assertEqual(past["period"]["state"], "past", past)
        lim = self.limits("ahead")["temp"]
        self.assertEqual((lim["state"], lim["since_ts"]), ("exceeded", until + 500), lim)
        tp.post_readings(d, "ahead", [[80.0]], [until + 1500], ["temp"])
        tp.wait_scored(d, "ahead", 2)
        self.assertEqual(self.messages(s, 2)[1], ("ok", "max", 80.0))


FAILALLOC = os.environ.get("VIGIL_FAILALLOC", "")


def sanitized():
    """1 for a sanitizer build of vigild, which owns malloc (no LD_PRELOAD allocator)."""
    with open(vt.VIGILD, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


@unittest.skipUnless(os.path.exists(FAILALLOC), "VIGIL_FAILALLOC (tests/fault/failalloc.c's "
                     "library, set by CTest) not found")
class RebuildOutOfMemory(LimitTest):
    """A PUT whose rebuild of the limit states runs out of memory (tests/fault/failalloc.c: the
    forecast buffers, 1.25 x limit_horizon 10,000 x 1 channel = 50,000 bytes, fail on the HTTP
    threads while the flag file exists). The alarms are off until the next reading: an alarm
    open then ends with its "ok" message, as when its limit goes, so the stream never says
    "previous": "ok" of a channel it last saw exceeded; the next reading raises it again."""
    CONFIG = tp.config_text(0, extra="[pipeline]\nlimit_horizon = 10000\n")

    def setUp(self):
        if sanitized():
            self.skipTest("a sanitizer build owns malloc: no LD_PRELOAD allocator under it")
        self.streams = []
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        self.d = vt.Vigild(config=tp.make_config(self.CONFIG), prefix=[
            "env", "LD_PRELOAD=" + FAILALLOC, "VIGIL_FAILALLOC_FLAG=" + self.flag,
            "VIGIL_FAILALLOC_MIN=40000", "VIGIL_FAILALLOC_THREAD=http-io"])
        self.d.start()

    def test_alarm_ends_then_comes_back(self):
        s = self.stream("?types=limit")
        self.put_limits("oom", {"temp": {"max": 90}})
        k = self.feed("oom", [95.0], 0)
        self.assertEqual(self.messages(s, 1), [("exceeded", "max", 95.0)])
        vt.write_file_atomic(self.flag, "40000")
        self.put_limits("oom", {"temp": {"max": 90, "deadband": 1}})
        os.unlink(self.flag)
        self.assertIn("limit alarms of 'oom' off until its next reading: out of memory",
                      self.d.log())
        self.feed("oom", [96.0], k)
        msgs = s.count(3)
        self.assertEqual([(m["data"]["state"], m["data"]["previous"], m["data"]["reading"])
                          for m in msgs],
                         [("exceeded", "ok", 95.0), ("ok", "exceeded", 95.0),
                          ("exceeded", "ok", 96.0)])
        lim = self.limits("oom")["temp"]
        self.assertEqual((lim["state"], lim["deadband"]), ("exceeded", 1), lim)


class MetricsCap(LimitTest):
    CONFIG = tp.config_text(0, extra="[http]\nmetrics_max_devices = 1\n")

    def test_alarm_listed_beyond_the_cap(self):
        d = self.d
        for dev in ("calm", "hot"):
            self.put_limits(dev, {"temp": {"max": 90}})
        self.feed("calm", [80.0], 0)
        self.feed("plain", [80.0], 0)
        self.feed("hot", [95.0], 0)
        # Three devices, a cap of one: only the one with a limit alarm is listed.
        self.assertEqual(limit_state(d, "hot", "temp"), 2)
        self.assertIsNone(limit_state(d, "calm", "temp"))
        self.assertIsNotNone(d.metric('vigil_device_state{device="hot"}'))
        self.assertIsNone(d.metric('vigil_device_state{device="calm"}'))
        self.assertEqual(channels(d), {"ok": 1, "forecast": 0, "exceeded": 1})

    def test_alarms_beyond_the_cap_counted(self):
        """More devices in a limit alarm than the cap: /metrics names at most the cap, and
        vigil_limit_channels counts every one, so VigilLimitAlarmsNotListed can say so."""
        d = self.d
        for dev in ("hot1", "hot2", "hot3"):
            self.put_limits(dev, {"temp": {"max": 90}})
            self.feed(dev, [95.0], 0)
        text = d.metrics()
        self.assertEqual(len(re.findall(r"^vigil_device_limit_state\{", text, re.M)), 1, text)
        self.assertEqual(channels(d), {"ok": 0, "forecast": 0, "exceeded": 3})


class Forecast(LimitTest):
    # pipeline.limit_check_every and limit_horizon at their defaults (10, 60).

    def test_ramp_is_forecast_before_exceeded(self):
        d = self.d
        rng = random.Random(1)
        s = self.stream("?types=limit")
        # Limits from the start: the ramp crosses nothing while the device learns (300).
        self.put_limits("ramp", {"temp": {"max": 60}})
        k = self.feed("ramp", ramp(300, 0, 0.02, rng), 0)
        tp.wait_idle(d, "ramp", 1)
        self.assertEqual(s.messages, [], "a learning device has no forecast alarms")
        # Readings 300..549 go from 56 to 61: the max (60) at reading ~500.
        k = self.feed("ramp", ramp(250, k, 0.02, rng), k)
        msgs = s.count(2)
        first, second = msgs[0]["data"], msgs[1]["data"]
        self.assertEqual((first["state"], first["previous"], first["limit"]),
                         ("forecast", "ok", "max"), msgs)
        c = first["crossing"]
        self.assertTrue(1 <= c["steps"] <= 60, c)
        self.assertEqual(c["in_ms"], 1000 * c["steps"])
        self.assertEqual(c["at_ts"], first["ts"] + c["in_ms"])
        self.assertLess(first["reading"], 60)
        self.assertEqual((second["state"], second["previous"]), ("exceeded", "forecast"), msgs)
        self.assertGreaterEqual(second["reading"], 60)
        self.assertLess(first["ts"], second["ts"])
        a = alarms(d)
        self.assertGreaterEqual(a["forecast"], 1)
        self.assertGreaterEqual(a["exceeded"], 1)
        sys.stderr.write("ramp: forecast at %.2f (crossing in %d steps), exceeded at %.2f, "
                         "%d readings later\n" % (first["reading"], c["steps"], second["reading"],
                                                  (second["ts"] - first["ts"]) // 1000))


class ForecastRules(LimitTest):
    """The forecast alarm's rules (README "Channel limits"), against the forecast route's
    time_to_limit, which reports the same crossing (pipeline__limit_crossing): raised when two
    checks in a row forecast a crossing within the horizon (60), held while one is forecast
    within 1.25 x the horizon (75), cleared when none is. The limits are set before the first
    reading, so the checks (every 10 readings) are at readings 0, 10, 20, ...: fed up to a
    check, the route (horizon 75, the check's own) sees what the check saw."""

    def ttl(self, dev):
        f = tp.jreq(self.d, "GET", "/v1/devices/%s/forecast?horizon=75" % dev)
        return f["time_to_limit"]["temp"], f["steps"]

    def test_raised_on_the_second_check_held_then_cleared(self):
        rng = random.Random(1)
        s = self.stream("?types=limit")
        self.put_limits("r", {"temp": {"max": 60}})
        k = self.feed("r", ramp(301, 0, 0.02, rng), 0)  # readings 0..300: 300 is a check
        tp.wait_idle(self.d, "r", 1)
        seen = []
        while k < 560 and self.limits("r")["temp"]["state"] == "ok":
            k = self.feed("r", ramp(10, k, 0.02, rng), k)  # up to the next check
            t, _ = self.ttl("r")
            seen.append(t and t["steps"])
            lim = self.limits("r")["temp"]
            if t is None or t["steps"] > 60 or len(seen) < 2 or not seen[-2] or seen[-2] > 60:
                self.assertEqual(lim["state"], "ok", (seen, lim))  # not two in a row yet
        lim = self.limits("r")["temp"]
        self.assertEqual(lim["state"], "forecast", (seen, lim))
        self.assertTrue(len(seen) >= 2 and 0 < seen[-2] <= 60 and 0 < seen[-1] <= 60, seen)
        self.assertEqual((lim["crossing"]["steps"], lim["crossing"]["by"]),
                         (seen[-1], t["by"]), (lim, t))
        self.assertEqual(t["by"], "model")
        sys.stderr.write("crossings at the checks: %s\n" % seen)
        # Held: the max moved so far up that the next check's crossing is beyond the horizon
        # but within 1.25 x (the route's mean 70 steps ahead: about 69 at the next reading).
        _, steps = self.ttl("r")
        self.put_limits("r", {"temp": {"max": round(steps[69]["values"]["temp"]["mean"], 4)}})
        k = self.feed("r", ramp(1, k, 0.02, rng), k)  # a rebuild: the check at the next reading
        t, _ = self.ttl("r")
        self.assertTrue(t and 60 < t["steps"] <= 75, t)
        lim = self.limits("r")["temp"]
        self.assertEqual(lim["state"], "forecast", (t, lim))
        self.assertEqual(lim["crossing"]["steps"], t["steps"], lim)
        # Cleared: beyond 75 steps.
        _, steps = self.ttl("r")
        self.put_limits("r", {"temp": {"max": round(steps[74]["values"]["temp"]["mean"] + 1, 4)}})
        k = self.feed("r", ramp(1, k, 0.02, rng), k)
        self.assertIsNone(self.ttl("r")[0])
        self.assertEqual(self.limits("r")["temp"]["state"], "ok")
        self.assertEqual([(m["data"]["state"], m["data"]["previous"]) for m in s.count(2)],
                         [("forecast", "ok"), ("ok", "forecast")])
        # The log: forecast, then no longer (review of ops67: "back within its limits (was
        # forecast)" of readings that never left them).
        said = tp.logged(self.d, r" (?:warn|info)  limit: device 'r' channel 'temp': (.*)", 2)
        self.assertEqual(len(said), 2, said)
        self.assertEqual(said[0], "forecast to cross its max 60 (by model)", said)
        self.assertRegex(said[1], r"^no longer forecast to cross its max [0-9.]+$")

    def test_a_changed_limit_needs_its_own_two_checks(self):
        """A check that saw a crossing of the max within the horizon, then a PUT moving the
        max: the next check (the rebuild's, at the next reading) is the first to judge the new
        max, so it raises nothing although it sees a crossing within the horizon; the check
        after it, seeing one again, raises the alarm. The old code carried the first sighting
        over to the new max and raised the alarm at the rebuild's check."""
        rng = random.Random(1)
        s = self.stream("?types=limit")
        self.put_limits("c", {"temp": {"max": 60}})
        k = self.feed("c", ramp(301, 0, 0.02, rng), 0)  # readings 0..300: 300 is a check
        tp.wait_idle(self.d, "c", 1)
        t = None
        while k < 560 and not (t and t["steps"] <= 60):
            k = self.feed("c", ramp(10, k, 0.02, rng), k)  # up to the next check
            t, steps = self.ttl("c")
        self.assertTrue(t and t["steps"] <= 60, t)
        self.assertEqual(self.limits("c")["temp"]["state"], "ok")  # seen once
        # A max the route's forecast crosses 40 steps ahead: within the horizon at the next
        # reading too.
        mx = round(steps[39]["values"]["temp"]["mean"], 4)
        self.put_limits("c", {"temp": {"max": mx}})
        k = self.feed("c", ramp(1, k, 0.02, rng), k)  # the rebuild's check
        t, _ = self.ttl("c")
        self.assertTrue(t and t["steps"] <= 60, t)
        self.assertEqual(self.limits("c")["temp"]["state"], "ok", t)
        k = self.feed("c", ramp(10, k, 0.02, rng), k)  # the next check
        self.assertEqual(self.limits("c")["temp"]["state"], "forecast", self.ttl("c"))
        self.assertEqual([m["data"]["state"] for m in s.count(1)], ["forecast"])

def sim_pump(n, duration):
    """vigil-sim's pump-n (seed 1, 900 s of history then faults from 45 s: pump-1 bearing,
    pump-2 overheat, ..., pump-6 none) as --csv writes it: (channels, rows of floats)."""
    sim = os.path.join(os.path.dirname(vt.VIGILD), "vigil-sim")
    out = vt.mkdtemp()
    subprocess.run([sim, "--csv", out, "--devices", str(max(n, 4)), "--duration", str(duration),
                    "--backfill", "900", "--fault-at", "45", "--seed", "1"], check=True,
                   timeout=60, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    with open(os.path.join(out, "pump-%d.csv" % n)) as fh:
        rows = [line.strip().split(",") for line in fh]
    return rows[0][1:], [[float(v) for v in r[1:]] for r in rows[1:]]


class ForecastByTrend(LimitTest):
    # vigil-sim's overheating pump: its model (trained on the healthy readings) forecasts the
    # temperature back along the pump's load cycle, while the fault drives it up through the
    # limit. Once the temperature departs from its prediction (the device in anomaly, temp
    # with most of the error), its readings' trend forecasts the crossing ("by": "trend").

    def run_overheat(self, mirror, back_at=None):
        """Feeds pump-2's temperature (mirrored about 100 with mirror: a cooling fault toward a
        min of 110, the same line falling; back to about 70 from row back_at on, when given: the
        cooling restored) and checks that its first limit message is a forecast by trend, after
        the fault and before it is exceeded. Returns the stream."""
        d = self.d
        chans, X = sim_pump(2, 1300)  # pump-2: overheat from row 945
        temp = chans.index("temp")
        self.assertTrue(max(r[temp] for r in X[:945]) < 85 < max(r[temp] for r in X), "data")
        side, limit = ("min", 110) if mirror else ("max", 90)
        for r in X if mirror else ():
            r[temp] = round(200 - r[temp], 4)
        for i in range(back_at or len(X), len(X)):
            X[i][temp] = 70 + 0.05 * (i % 7 - 3)
        s = self.stream("?types=limit")
        self.put_limits("p2", {"temp": {side: limit}})
        ts = self.feed_rows("p2", chans, X)
        msgs = [m["data"] for m in s.count(2)]
        first = msgs[0]
        self.assertEqual((first["state"], first["limit"]), ("forecast", side), msgs)
        self.assertEqual(first["crossing"]["by"], "trend", first)
        self.assertTrue(first["reading"] > limit if mirror else first["reading"] < limit, first)
        self.assertGreaterEqual(first["ts"], ts[945], "not before the fault")
        ex = [m for m in s.messages if m["data"]["state"] == "exceeded"]
        self.assertTrue(ex, s.messages)
        self.assertEqual(ex[0]["data"]["limit"], side)
        self.assertLess(first["ts"], ex[0]["data"]["ts"])
        sys.stderr.write("%s: forecast by trend at %.2f (crossing in %d steps), exceeded "
                         "%d readings later\n" % ("cooling" if mirror else "overheat",
                                                   first["reading"], first["crossing"]["steps"],
                                                   (ex[0]["data"]["ts"] - first["ts"]) // 1000))
        return s

    def feed_rows(self, dev, chans, X):
        """Posts rows X (1 s apart), waiting for the first training after 300 of them (the
        model of those rows: no retraining after), then the rest in 50s. Returns their ts."""
        d = self.d
        ts = [T0 + 1000 * i for i in range(len(X))]
        tp.post_readings(d, dev, X[:300], ts[:300], chans)
        tp.wait_scored(d, dev, 300)
        tp.wait_idle(d, dev, 1)
        for k in range(300, len(X), 50):
            tp.post_readings(d, dev, X[k:k + 50], ts[k:k + 50], chans)
            tp.wait_scored(d, dev, min(k + 50, len(X)))
        return ts

    def test_healthy_load_ramps_raise_nothing(self):
        # pump-6 has no fault: its temperature rides its load cycle up to about 81. The line
        # through its last 64 readings would cross a max of 85 within 60 s at some of its load
        # ramps (166-172 of 3,000 readings, session 21); the model forecasts the cycle's turn,
        # and the channel never departs from its prediction, so nothing is raised.
        chans, X = sim_pump(6, 3000)
        temp = chans.index("temp")
        self.assertTrue(78 < max(r[temp] for r in X) < 83, "data")
        s = self.stream("?types=limit")
        self.put_limits("p6", {"temp": {"max": 85}})
        self.feed_rows("p6", chans, X)
        time.sleep(0.5)
        self.assertEqual(s.messages, [])
        self.assertEqual(alarms(self.d), {"forecast": 0, "exceeded": 0})

    def test_overheat_is_forecast_by_trend(self):
        self.run_overheat(mirror=False)

    def test_falling_toward_a_min_is_forecast_by_trend(self):
        self.run_overheat(mirror=True)

    def test_route_reports_the_trend_crossing(self):
        """The forecast route's time_to_limit is the alarm's crossing: by trend while the
        temperature departs (the old route had the model's only: null here)."""
        chans, X = sim_pump(2, 1300)
        self.put_limits("p2", {"temp": {"max": 90}})
        self.feed_rows("p2", chans, X[:1211])  # 1210: the confirming check (1200, 1210)
        lim = tp.status(self.d, "p2")["limits"]["temp"]
        self.assertEqual((lim["state"], lim["crossing"]["by"]), ("forecast", "trend"), lim)
        f = tp.jreq(self.d, "GET", "/v1/devices/p2/forecast?horizon=75")
        t = f["time_to_limit"]["temp"]
        self.assertIsNotNone(t, f["time_to_limit"])
        self.assertEqual((t["by"], t["steps"], t["limit"], t["value"]),
                         ("trend", lim["crossing"]["steps"], "max", 90), (t, lim))
        self.assertEqual(t["at_ts"], lim["crossing"]["at_ts"])

    def test_back_inside_is_not_forecast_by_a_lagging_line(self):
        # Back to 70 at row 1280, 29 readings after exceeding 90: the line through the last 64
        # readings still rises and is past 90 there. The reading is 20 inside: ok, and no
        # forecast (the old code published one "in 1 step" at 70.3, at the same reading).
        s = self.run_overheat(mirror=False, back_at=1280)
        time.sleep(0.5)  # a forecast would come with the ok, at the same reading
        got = [(m["data"]["state"], m["data"]["ts"]) for m in s.messages]
        self.assertEqual([g[0] for g in got], ["forecast", "exceeded", "ok"], s.messages)
        self.assertEqual(got[2][1], T0 + 1000 * 1280)


class ForecastOff(LimitTest):
    CONFIG = tp.config_text(0, extra="[pipeline]\nlimit_horizon = 0\nlimit_check_every = 1\n")

    def test_no_forecast_alarms(self):
        rng = random.Random(1)
        s = self.stream("?types=limit")
        self.put_limits("ramp", {"temp": {"max": 60}})
        k = self.feed("ramp", ramp(300, 0, 0.02, rng), 0)
        tp.wait_idle(self.d, "ramp", 1)
        self.feed("ramp", ramp(250, k, 0.02, rng), k)
        msgs = s.count(1)
        self.assertEqual(msgs[0]["data"]["state"], "exceeded", msgs)
        self.assertEqual(alarms(self.d)["forecast"], 0)


class ConfigKeys(unittest.TestCase):

    def bad(self, text, line, *words):
        tmp = vt.mkdtemp()
        path = vt.write_file(os.path.join(tmp, "vigild.conf"), text)
        p = subprocess.run([vt.VIGILD, "--config", path, "--check-config"], text=True,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30, cwd=tmp)
        self.assertNotEqual(p.returncode, 0, "accepted:\n%s" % text)
        self.assertIn("%s:%d:" % (path, line), p.stderr)
        for w in words:
            self.assertIn(w, p.stderr)

    def test_bad_values(self):
        for text, line, key in (
                ("[pipeline]\nlimit_check_every = 0\n", 2, "pipeline.limit_check_every"),
                ("[pipeline]\nlimit_check_every = ten\n", 2, "pipeline.limit_check_every"),
                ("[pipeline]\n\nlimit_horizon = -1\n", 3, "pipeline.limit_horizon"),
                ("[pipeline]\nlimit_horizon = 10001\n", 2, "pipeline.limit_horizon")):
            self.bad(text, line, key)

    def test_good_values(self):
        tmp = vt.mkdtemp()
        path = vt.write_file(os.path.join(tmp, "vigild.conf"),
                             "[pipeline]\nlimit_check_every = 1\nlimit_horizon = 0\n")
        p = subprocess.run([vt.VIGILD, "--config", path, "--check-config"], text=True,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30, cwd=tmp)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
"""vigild integration: what breaks a chain of events ("continues", "fault"; test_evcont.py,
whose ChainBase these tests use, has the chains themselves).

Periods: chains and maintenance periods (task evcont4): a DELETE before the loop's look, a
period begun while vigild was stopped, an event open when a period begins.

ModelChanges: a rollback or a PUT of weights while an event is open (task evcont5), and a
training's swap, open or between a cleared end and the next opening (task evcont6): the open
event is marked chain_broken, so nothing continues it.

Python 3 standard library.
"""

import http.client
import json
import os
import random
import sys
import time
import unittest
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_events as te  # noqa: E402  (helpers only: its TestCases are not collected here)
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import test_sse as ts  # noqa: E402
from test_evcont import (  # noqa: E402
    ChainBase, ONSET, overshoot, WITHIN)


def now_ms():
    return int(time.time() * 1000)


def delete_at(test, d, path, start):
    """DELETEs the current period of `path` as soon as vigild's clock reaches `start`: from
    20 ms before it, repeated on one kept-alive connection (each before the start is answered
    at once, 409, with no store commit; a round trip is well under a ms here) until answered
    204, bounded at 2 s. So it lands within about a ms of the start, mostly in its own ms.
    Returns the number of tries and the ms (this clock, vigild's too) the answered one was
    sent in: vigild read its clock for it at or after that ms."""
    url = urllib.parse.urlsplit(d.url(path))
    time.sleep(max(0.0, (start - 20 - now_ms()) / 1000))
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        deadline = time.monotonic() + 2
        tries = 0
        while True:
            sent = now_ms()
            conn.request("DELETE", url.path)
            r = conn.getresponse()
            body = r.read()
            tries += 1
            if r.status == 204:
                return tries, sent
            test.assertLess(time.monotonic(), deadline, (r.status, body))
    finally:
        conn.close()


class Periods(ChainBase):
    """Chains and maintenance periods, the remaining cases (task evcont4): a DELETE before the
    loop's look, a period begun while vigild was stopped, an event open when a period begins.
    The readings are timestamped 500 s and more before now, so none falls in a period."""

    def cleared(self, dev, rows, t0):
        """Trains dev and feeds the overshoot until its first event ended cleared."""
        self.trained(dev, rows, ["level"], t0)
        self.post(dev, rows[ONSET:ONSET + 7], ONSET, ["level"], t0)
        self.first_cleared(dev)

    def not_continued(self, dev, rows, t0, k):
        """Feeds rows[k:]: the second event opens within the bound, continues nothing, and the
        first carries chain_broken. Returns the two events."""
        self.post(dev, rows[k:], k, ["level"], t0)
        first, second = self.two_events(dev)
        self.assertTrue(0 < self.gap(first, second) <= WITHIN, (first, second))
        self.assertNotIn("continues", second)
        self.assertIs(first.get("chain_broken"), True, first)
        return first, second

    def test_delete_before_the_tick_looks_breaks_the_chain(self):
        """The first event ended cleared; a period scheduled 1.5 s ahead is DELETEd as soon as
        vigild's clock reaches it (delete_at: within about a ms of the start since task
        evcont6, 7-19 ms before), before the loop's look (every 250 ms) announces it current.
        The DELETE breaks the chain as that look would have: the second event continues
        nothing (on main b53e282 it continues the first). The stream tells who came first:
        when the loop announced "current" (it broke the chain then), another device tries
        again, up to 3 (with the look's odds of falling in that ms about 1 in 250 per device,
        the retry is now a safety net, not the rule)."""
        d = self.d
        rows = overshoot(1500, 1.5, 1)
        t0 = now_ms() - 1000 * 2000
        for attempt in range(3):
            dev = "mnt-race-%d" % attempt
            self.cleared(dev, rows, t0)
            path = "/v1/devices/%s/maintenance" % dev
            sse = ts.Sse(d, "?types=maintenance&device=" + dev).open()
            try:
                start = now_ms() + 1500
                planned = tp.jreq(d, "POST", path, {"from": start, "until": start + 60000})
                self.assertEqual(planned["period"]["state"], "scheduled")
                tries, _ = delete_at(self, d, path, start)
                late = now_ms() - start
                # The DELETE's message names the period as it ended it (until now, or the
                # start + 1 ms in the start's own ms: "past" either way since task evcont6);
                # the loop's names it whole.
                sse.wait("%s: the DELETE's message" % dev, lambda s: any(
                    m["data"]["period"]["until_ts"] < start + 60000 for m in s.messages), 15)
                heard = [(m["data"]["period"]["state"],
                          m["data"]["period"]["until_ts"] - start) for m in sse.messages]
            finally:
                sse.close()
            print("%s: DELETE answered %d ms after the start (%d tries); the stream heard "
                  "(state, until - from) %s" % (dev, late, tries, heard), file=sys.stderr)
            if ("current", 60000) not in heard:
                break
        else:
            self.fail("the loop announced the period before the DELETE in 3 tries")
        self.assertEqual(heard[0], ("scheduled", 60000), heard)
        self.assertEqual(len(heard), 2, heard)
        self.assertEqual(heard[1][0], "past", heard)
        self.not_continued(dev, rows, t0, ONSET + 7)

    def test_period_begun_while_stopped_breaks_the_chain(self):
        """Two devices, each with its first event ended cleared and a period scheduled 3 s
        ahead: vigild is stopped before the periods begin and started after both began (the
        second also ended). At the restart the first's period is current, the second's past;
        neither holds a reading nor was announced as beginning, yet each breaks its device's
        restored chain: the second event continues nothing and the first carries chain_broken
        (on main b53e282 the second continues the first, the chain restored). "stopped-open":
        its event open at the stop is marked at the restart, and so not continued."""
        d = self.d
        rows = overshoot(1500, 1.5, 1)
        t0 = now_ms() - 1000 * 2000
        devs = ("stopped-current", "stopped-past")
        for dev in devs:
            self.cleared(dev, rows, t0)
        # A third device is stopped with its first event open (2 readings into the
        # overshoot): the restore marks it as the tick would have (it then ends cleared on the
        # readings timestamped before the period, and nothing continues it).
        self.trained("stopped-open", rows, ["level"], t0)
        self.post("stopped-open", rows[ONSET:ONSET + 2], ONSET, ["level"], t0)
        tp.wait_for("stopped-open: the first event open", lambda: (
            lambda e: len(e) == 1 and e[0]["active"])(self.events("stopped-open")), 10)
        start = now_ms() + 3000
        for dev, until in zip(devs + ("stopped-open",),
                              (start + 600000, start + 1000, start + 600000)):
            planned = tp.jreq(d, "POST", "/v1/devices/%s/maintenance" % dev,
                              {"from": start, "until": until})
            self.assertEqual(planned["period"]["state"], "scheduled")
        d.stop()
        self.assertLess(now_ms(), start, "vigild stopped after the periods began")
        time.sleep((start + 1500 - now_ms()) / 1000)  # all begun, the second ended
        d.start()
        self.assertIsNotNone(tp.status(d, devs[0])["maintenance"])
        self.assertIsNone(tp.status(d, devs[1])["maintenance"])
        for dev in devs:
            self.not_continued(dev, rows, t0, ONSET + 7)
        now = self.events("stopped-open")
        self.assertTrue(now[0]["active"], now)
        self.assertIs(now[0].get("chain_broken"), True, now)
        first, _ = self.not_continued("stopped-open", rows, t0, ONSET + 2)
        self.assertEqual(first["ended_by"], "cleared", first)

    def test_event_open_when_a_period_begins_is_not_continued(self):
        """The first event open (2 readings into the overshoot) when a period scheduled 2 s
        ahead begins by vigild's clock (its "current" message heard on the stream); the fault's
        later readings, timestamped before the period, end that event "cleared" and open the
        second within the bound: it continues nothing, the first carries chain_broken (on main
        b53e282 the second continues the first). Device "open-restart": vigild stopped and
        started after the period began, the first event still open: its mark comes back from
        its stored row, the same result."""
        d = self.d
        rows = overshoot(1500, 1.5, 1)
        t0 = now_ms() - 1000 * 2000
        devs = ("open-live", "open-restart")
        for dev in devs:
            self.trained(dev, rows, ["level"], t0)
            self.post(dev, rows[ONSET:ONSET + 2], ONSET, ["level"], t0)
            tp.wait_for("%s: the first event open" % dev, lambda: (
                lambda e: len(e) == 1 and e[0]["active"])(self.events(dev)), 10)
        sse = ts.Sse(d, "?types=maintenance").open()
        try:
            start = now_ms() + 2000
            for dev in devs:
                planned = tp.jreq(d, "POST", "/v1/devices/%s/maintenance" % dev,
                                  {"from": start, "until": start + 600000})
                self.assertEqual(planned["period"]["state"], "scheduled")
            sse.wait("the clock's messages, current", lambda s: all(any(
                m["data"]["device"] == dev and m["data"]["period"]["state"] == "current"
                for m in s.messages) for dev in devs), 15)
        finally:
            sse.close()
        for dev in devs:
            evs = self.events(dev)
            self.assertTrue(len(evs) == 1 and evs[0]["active"], evs)  # no reading: still open
        first, _ = self.not_continued(devs[0], rows, t0, ONSET + 2)
        self.assertEqual(first["ended_by"], "cleared", first)
        d.stop()
        d.start()
        now = self.events(devs[1])
        self.assertTrue(now[0]["active"], now)
        self.assertIs(now[0].get("chain_broken"), True, now)
        first, _ = self.not_continued(devs[1], rows, t0, ONSET + 2)
        self.assertEqual(first["ended_by"], "cleared", first)

    def test_event_opened_in_a_current_period_is_marked_live_as_at_a_restart(self):
        """Review (session 31): a period POSTed current, then the overshoot's readings,
        timestamped before it (none falls in it), open the first event while the period is
        current by vigild's clock. It is listed with chain_broken while open, as a restart
        would mark it (pipeline__event_chain_restore's rule), and after its clear the second
        continues nothing; before the review's fix the live event was not marked and the
        second continued it (a restart in between changed the chain)."""
        d, dev = self.d, "open-in-period"
        rows = overshoot(1500, 1.5, 1)
        t0 = now_ms() - 1000 * 2000
        self.trained(dev, rows, ["level"], t0)
        now = now_ms()
        planned = tp.jreq(d, "POST", "/v1/devices/%s/maintenance" % dev,
                          {"from": now, "until": now + 600000})
        self.assertEqual(planned["period"]["state"], "current")
        self.post(dev, rows[ONSET:ONSET + 2], ONSET, ["level"], t0)
        tp.wait_for("%s: the first event open" % dev, lambda: (
            lambda e: len(e) == 1 and e[0]["active"])(self.events(dev)), 10)
        self.assertIs(self.events(dev)[0].get("chain_broken"), True, self.events(dev))
        first, _ = self.not_continued(dev, rows, t0, ONSET + 2)
        self.assertEqual(first["ended_by"], "cleared", first)

    def test_delete_in_the_start_ms_says_past(self):
        """Task evcont6: a DELETE in the very millisecond a period starts ends it at start + 1
        ms; its stream message names the period as the DELETE left it ("past", no maintenance
        now), not as it was at that ms (main ddcbb91 says "current"). Without a clock hook
        (tests/fault/clockshift.c only shifts the clock, and it_evcont does not preload it) the
        DELETE lands in the start's ms by speed: one kept-alive connection repeats it from
        20 ms before the start (each before the start answered at once, no store commit), so
        the first after it is mostly in the start's ms. A period ended later (a DELETE a ms or
        more late) must say "past" too. until - from = 1 does not prove the start's ms: a
        DELETE whose clock read was start + 1 ms ends the period there too and says "past" on
        main as well (review: the test pinned to a busy core, main's vigild passed 2 of 6 runs
        that way). So a try counts only when, besides until - from = 1, the answered DELETE was
        sent no later than the start's ms (vigild read its clock at start or start + 1), and
        HITS such tries are wanted, up to 15 periods: main passes only if every one of them was
        read at start + 1 (under that load each try's delay was up to 4 ms, so this is odds,
        not proof; unloaded every counted try was in the start's ms)."""
        d, dev = self.d, "mnt-start-ms"
        tp.post_readings(d, dev, [[0.0]], [now_ms() - 1000 * 2000], ["level"])
        path = "/v1/devices/%s/maintenance" % dev
        sse = ts.Sse(d, "?types=maintenance&device=" + dev).open()
        tried, hits, HITS = [], 0, 3
        try:
            for attempt in range(15):
                start = now_ms() + 300
                planned = tp.jreq(d, "POST", path, {"from": start, "until": start + 60000})
                self.assertEqual(planned["period"]["state"], "scheduled")
                _, sent = delete_at(self, d, path, start)
                msg = sse.wait("%s: the DELETE's message %d" % (dev, attempt), lambda s: (
                    lambda m: m if m else None)([m["data"] for m in s.messages
                                                 if m["data"]["period"]["from_ts"] == start
                                                 and m["data"]["period"]["until_ts"]
                                                 < start + 60000]), 10)
                self.assertEqual(len(msg), 1, msg)
                late = msg[0]["period"]["until_ts"] - start
                tried.append((late, sent - start, msg[0]["period"]["state"]))
                self.assertEqual(msg[0]["period"]["state"], "past", (late, msg))
                self.assertIsNone(msg[0]["maintenance"], msg)
                listed = tp.jreq(d, "GET", path)["periods"]
                self.assertEqual([p["state"] for p in listed if p["from_ts"] == start],
                                 ["past"], listed)
                hits += late == 1 and sent <= start
                if hits == HITS:
                    break
        finally:
            sse.close()
        print("%s: (until - from, sent - from, state) per try %s" % (dev, tried),
              file=sys.stderr)
        self.assertEqual(hits, HITS, "too few DELETEs in the start's ms in 15 tries: %s" % tried)


class ModelChanges(ChainBase):
    """A rollback or a PUT of weights while an event is open (task evcont5), and a training's
    swap, open or between a cleared end and the next opening (task evcont6): as at a period's
    beginning, the open event is marked chain_broken (listing and stored row), so when the
    fault's later readings end it "cleared" nothing continues it. model.kind = lstm: the LSTM
    serves from the first training (200 readings), so a device has within seconds a serving
    model whose weights can be read and PUT back, and a version with kept weights to roll
    back to (Released.CONFIG's linear first models have neither). Rolling back to the serving
    version and PUTting its own weights keep the model the same, so the readings after it
    open and end the events as without it: the test sees only the chain."""
    CONFIG = te.Released.CONFIG + "kind = lstm\n"

    def open_first(self, dev, rows):
        self.trained(dev, rows, ["level"])
        self.post(dev, rows[ONSET:ONSET + 2], ONSET, ["level"])
        tp.wait_for("%s: the first event open" % dev, lambda: (
            lambda e: len(e) == 1 and e[0]["active"])(self.events(dev)), 10)

    def broken_pair(self, dev):
        """The device's two events: the first ended cleared and carries chain_broken, the
        second opened within the bound and continues nothing. Returns them."""
        first, second = self.two_events(dev)
        print("%s: first ended %s at +%d, the second opened %d readings later (continues %s)"
              % (dev, first["ended_by"], te.reading(first["end_ts"]) - ONSET,
                 self.gap(first, second), second.get("continues")), file=sys.stderr)
        self.assertEqual(first["ended_by"], "cleared", first)
        self.assertTrue(0 < self.gap(first, second) <= WITHIN, (first, second))
        self.assertNotIn("continues", second)
        self.assertIs(first.get("chain_broken"), True, first)
        return first, second

    def not_continued(self, dev, rows, listed):
        """Feeds the rest of the fault: the first event ends cleared, the second opens within
        the bound and continues nothing; the first was listed (`listed`, read while open after
        the change) and is listed after its end with chain_broken."""
        self.post(dev, rows[ONSET + 2:], ONSET + 2, ["level"])
        self.broken_pair(dev)
        self.assertTrue(len(listed) == 1 and listed[0]["active"], listed)
        self.assertIs(listed[0].get("chain_broken"), True, listed)

    def test_put_of_weights_while_open_breaks_the_chain(self):
        """The serving weights GET and PUT back (a new version, the same model) 2 readings
        into the overshoot: the open event is listed chain_broken at once and the second
        continues nothing (on main 0fd94c2 the second continues the first)."""
        d, dev = self.d, "put-open"
        rows = overshoot(1500, 1.5, 1)
        self.open_first(dev, rows)
        st, _, w = tp.req(d, "GET", "/v1/devices/%s/model/weights" % dev)
        self.assertEqual(st, 200, w[:300])
        before = tp.models(d, dev)["serving"]["version"]
        r = d.curl("PUT", "/v1/devices/%s/model/weights" % dev, "--data-binary", "@-",
                   "-H", "Content-Type: application/octet-stream", stdin=w)
        self.assertEqual(r.status, 200, r)
        self.assertGreater(tp.models(d, dev)["serving"]["version"], before)
        self.not_continued(dev, rows, self.events(dev))

    def test_rollback_while_open_breaks_the_chain_across_a_restart(self):
        """A rollback to the serving version (the training at 200's LSTM; the one at 1,200
        does not swap and keeps no weights here) 2 readings into the overshoot, then vigild
        stopped and started with the event still open: the mark comes back from its stored
        row, and the second event continues nothing (on main 0fd94c2 it continues the
        first)."""
        d, dev = self.d, "rollback-open"
        rows = overshoot(1500, 1.5, 1)
        self.open_first(dev, rows)
        v = tp.models(d, dev)["serving"]["version"]
        r = d.curl("POST", "/v1/devices/%s/model/rollback" % dev, "--data-binary",
                   '{"version": %d}' % v)
        self.assertEqual(r.status, 200, r)
        live = self.events(dev)
        d.stop()
        d.start()
        self.not_continued(dev, rows, self.events(dev))
        self.assertIs(live[0].get("chain_broken"), True, live)  # marked at once, too

    def test_real_rollback_while_open_breaks_the_chain(self):
        """A rollback to a different model (review): the serving weights are a donor device's
        (trained on another seed's readings, PUT before the fault: version C), and 2 readings
        into the overshoot the device rolls back to its own training at 200 (version A), whose
        weights are not C's: the model judging the readings really changes while the event is
        open. The open event is listed chain_broken at once and the second continues nothing."""
        d, dev, donor = self.d, "rollback-real", "rollback-donor"
        drows = overshoot(1500, 1.5, 2)
        self.post(donor, drows[:200], 0, ["level"])
        tp.wait_idle(d, donor, 1)
        rows = overshoot(1500, 1.5, 1)
        self.trained(dev, rows, ["level"])
        own = tp.models(d, dev)["serving"]["version"]
        st, _, wa = tp.req(d, "GET", "/v1/devices/%s/model/weights" % dev)
        self.assertEqual(st, 200, wa[:300])
        st, _, wc = tp.req(d, "GET", "/v1/devices/%s/model/weights" % donor)
        self.assertEqual(st, 200, wc[:300])
        self.assertNotEqual(wa, wc)
        r = d.curl("PUT", "/v1/devices/%s/model/weights" % dev, "--data-binary", "@-",
                   "-H", "Content-Type: application/octet-stream", stdin=wc)
        self.assertEqual(r.status, 200, r)
        self.assertGreater(tp.models(d, dev)["serving"]["version"], own)
        self.post(dev, rows[ONSET:ONSET + 2], ONSET, ["level"])
        tp.wait_for("%s: the first event open" % dev, lambda: (
            lambda e: len(e) == 1 and e[0]["active"])(self.events(dev)), 10)
        r = d.curl("POST", "/v1/devices/%s/model/rollback" % dev, "--data-binary",
                   '{"version": %d}' % own)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(tp.models(d, dev)["serving"]["version"], own)
        st, _, wnow = tp.req(d, "GET", "/v1/devices/%s/model/weights" % dev)
        self.assertEqual(st, 200, wnow[:300])
        self.assertEqual(wnow, wa)  # the device's own model again, not the donor's
        self.not_continued(dev, rows, self.events(dev))


    def swap_ready(self, dev, rows):
        """Trains dev and PUTs a donor's LSTM, trained on an AR(1) of coefficient -0.8 where
        dev's is 0.5 (it predicts dev badly), so that the next training's own LSTM validates
        better and is swapped in: the swap is certain. Returns the models after the PUT."""
        d, donor = self.d, dev + "-donor"
        g = random.Random(5).gauss
        v, drows = 0.0, []
        for _ in range(200):
            v = -0.8 * v + 0.1 * g(0, 1)
            drows.append([round(v, 6)])
        self.post(donor, drows, 0, ["level"])
        tp.wait_idle(d, donor, 1)
        st, _, w = tp.req(d, "GET", "/v1/devices/%s/model/weights" % donor)
        self.assertEqual(st, 200, w[:300])
        self.trained(dev, rows, ["level"])
        r = d.curl("PUT", "/v1/devices/%s/model/weights" % dev, "--data-binary", "@-",
                   "-H", "Content-Type: application/octet-stream", stdin=w)
        self.assertEqual(r.status, 200, r)
        return tp.models(d, dev)

    def swap(self, dev, put, query=""):
        """An operator's retrain (POST .../retrain; during an episode only with ?force=true
        since session 65); asserts that its version was swapped in."""
        st, _, data = tp.req(self.d, "POST", "/v1/devices/%s/model/retrain%s" % (dev, query))
        self.assertEqual(st, 202, data)
        after = tp.wait_idle(self.d, dev, len(put["versions"]) + 1)
        self.assertGreater(after["serving"]["version"], put["serving"]["version"], after)

    def test_training_swap_after_a_cleared_end_breaks_the_chain(self):
        """Task evcont6: a training that swaps a new model in between a cleared end and the
        next opening breaks the chain, as a rollback or a PUT of weights does (the chain's
        promise: one fault seen by one model). The donor's LSTM serves from before the fault;
        the first event ends cleared (at +4), then a retrain swaps the device's own in, and
        the second event opens within the bound (4 readings later here): it continues nothing
        and the first carries chain_broken, also after a restart (its stored row). On main
        ddcbb91 the second continues the first."""
        d, dev = self.d, "swap-cleared"
        rows = overshoot(1500, 1.5, 1)
        put = self.swap_ready(dev, rows)
        self.post(dev, rows[ONSET:ONSET + 7], ONSET, ["level"])
        self.first_cleared(dev)
        self.swap(dev, put)
        self.post(dev, rows[ONSET + 7:], ONSET + 7, ["level"])
        self.broken_pair(dev)
        d.stop()
        d.start()
        first, second = self.two_events(dev)
        self.assertIs(first.get("chain_broken"), True, first)
        self.assertNotIn("continues", second)

    def test_forced_retrain_while_open_ends_the_event(self):
        """Task evcont6 asked that a swap 2 readings into the overshoot mark the event open
        then, as a rollback does. Since session 65 an operator's retrain during an open episode
        is refused unless forced, and forced it ends the event as the operator's first (as an
        acceptance does), so the training swaps no model under an open event of this device;
        since session 66 neither does one asked on another member of its group
        (test_group_swap_asked_on_another_member_marks_the_event: refused, or forced, the
        member's event ended first). Here: the forced retrain's event is ended "operator", and
        stays so after a restart."""
        d, dev = self.d, "swap-open"
        rows = overshoot(1500, 1.5, 1)
        put = self.swap_ready(dev, rows)
        self.post(dev, rows[ONSET:ONSET + 2], ONSET, ["level"])
        tp.wait_for("%s: the first event open" % dev, lambda: (
            lambda e: len(e) == 1 and e[0]["active"])(self.events(dev)), 10)
        self.assertNotIn("chain_broken", self.events(dev)[0])  # the PUT came before it
        st, _, data = tp.req(d, "POST", "/v1/devices/%s/model/retrain" % dev)
        self.assertEqual((st, json.loads(data)["device"]), (409, dev), data)  # the open episode's
        self.swap(dev, put, "?force=true")
        live = self.events(dev)
        self.assertTrue(len(live) == 1 and live[0]["ended_by"] == "operator", live)
        d.stop()
        d.start()
        now = self.events(dev)
        self.assertTrue(len(now) == 1 and now[0]["ended_by"] == "operator", now)
    def test_group_swap_asked_on_another_member_marks_the_event(self):
        """Review (task evcont6): a group's training swaps every member's model, the member
        that did not ask included. Two members of group swapg, trained together; both get the
        donor's bad LSTM (PUT); a fault opens an event on swapg-a. Until session 66 a retrain
        asked on swapg-b trained the group over swapg-a's open event, which was then listed
        chain_broken; since, it is refused (409 naming swapg-a's event), and forced it ends that
        event as the operator's first: the swap leaves it ended, not chain_broken. (A member
        whose episode opens once the retrain has looked is still swapped and marked so.)"""
        d, a, b = self.d, "swapg-a", "swapg-b"
        for dev in (a, b):
            r = d.curl("PUT", "/v1/devices/%s" % dev, "-H", "Content-Type: application/json",
                       "--data-binary", json.dumps({"group": "swapg"}))
            self.assertIn(r.status, (200, 201), r)
        rows = {a: overshoot(1500, 1.5, 1), b: overshoot(1500, 1.5, 2)}
        for lo, hi, nv in ((0, 200, 1), (200, 1200, 2), (1200, ONSET, 0)):
            for dev in (a, b):
                self.post(dev, rows[dev][lo:hi], lo, ["level"])
            for dev in (a, b):
                tp.wait_idle(d, dev, nv)
        g = random.Random(5).gauss
        v, drows = 0.0, []
        for _ in range(200):
            v = -0.8 * v + 0.1 * g(0, 1)
            drows.append([round(v, 6)])
        self.post("swapg-donor", drows, 0, ["level"])
        tp.wait_idle(d, "swapg-donor", 1)
        st, _, w = tp.req(d, "GET", "/v1/devices/swapg-donor/model/weights")
        self.assertEqual(st, 200, w[:300])
        put = {}
        for dev in (a, b):
            r = d.curl("PUT", "/v1/devices/%s/model/weights" % dev, "--data-binary", "@-",
                       "-H", "Content-Type: application/octet-stream", stdin=w)
            self.assertEqual(r.status, 200, r)
            put[dev] = tp.models(d, dev)["serving"]["version"]
        self.post(a, rows[a][ONSET:ONSET + 2], ONSET, ["level"])
        tp.wait_for("%s: the first event open" % a, lambda: (
            lambda e: len(e) == 1 and e[0]["active"])(self.events(a)), 10)
        self.assertNotIn("chain_broken", self.events(a)[0])  # the PUT came before it
        st, _, data = tp.req(d, "POST", "/v1/devices/%s/model/retrain" % b)
        self.assertEqual((st, json.loads(data)["device"]), (409, a), data)
        open_id = self.events(a)[0]["id"]
        self.assertEqual(tp.req(d, "POST", "/v1/devices/%s/model/retrain?force=true" % b)[0], 202)
        after = tp.wait_for("%s: swapped by the group's training" % a, lambda: (
            lambda m: m if m["serving"]["version"] > put[a] and not m["training"] else None)(
                tp.models(d, a)), 60)
        self.assertEqual(after.get("group"), "swapg", after)
        other = tp.wait_idle(d, b, 1)
        self.assertEqual(other["serving"]["version"], after["serving"]["version"], other)
        live = self.events(a)
        self.assertEqual([(e["id"], e["active"], e["ended_by"]) for e in live],
                         [(open_id, False, "operator")], live)
        self.assertNotIn("chain_broken", live[0])


if __name__ == "__main__":
    unittest.main()

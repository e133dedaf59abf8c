#!/usr/bin/python3
"""vigild integration: GET /v1/events' state messages (?types=state) and the event streams'
bounds on reload; moved from test_sse.py (whose Sse client and SseTest base these tests use).

State: a device's state changes as "event: state" messages (http.events_state_min_ms 0);
StateBounded: the default interval bounds a flapping device's; Reload: the streams' bounds
apply on SIGHUP to the streams already open; ReloadRaised: a raised
http.events_state_min_ms spaces a flapping device's state messages from the reload on;
KeepaliveCapped: a keep-alive longer than half of http.timeout_s is lowered to that half;
StateReturnSeen: a state's change and return within the interval are not lost.

Python 3 standard library.
"""

import os
import random
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_ops  # noqa: E402  (hup only)
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import vigiltest as vt  # noqa: E402
from test_sse import seq, SseTest  # noqa: E402


def states(msgs):
    return [m["data"]["state"] for m in msgs]


class State(SseTest):
    """event: state (?types=state), here with http.events_state_min_ms = 0 (every change): a
    device from learning to normal (its first model), into warning and anomaly by a fault, back
    to normal by an operator's accept. The stream sees each change once, in order, "previous"
    chaining from learning, ending on the status's state; a stream without ?types sees none;
    ?device= combines with it; the 400s of ?types."""

    CONFIG = tp.config_text(0, extra="[http]\nevents_state_min_ms = 0\n")

    def check_chain(self, msgs, dev):
        self.assertEqual(msgs[0]["data"]["previous"], "learning", msgs)
        for a, b in zip(msgs, msgs[1:]):
            self.assertEqual(b["data"]["previous"], a["data"]["state"], msgs)
            self.assertLess(seq(a), seq(b))
            self.assertLessEqual(a["data"]["ts"], b["data"]["ts"])
        for m in msgs:
            data = m["data"]
            self.assertEqual(m["event"], "state")
            self.assertEqual(set(data), {"device", "state", "previous", "ts", "time", "score"})
            self.assertEqual(data["device"], dev)
            self.assertNotEqual(data["state"], data["previous"], m)
            self.assertEqual(data["time"], time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(
                data["ts"] // 1000)) + ".%03dZ" % (data["ts"] % 1000))
            self.assertTrue(0 <= data["score"] <= 1, m)

    def until_status(self, s, dev):
        """Waits until s's newest message names the status's state of dev; returns them all."""
        return s.wait("the stream's state = the status's", lambda s: list(s.messages) if (
            s.messages and s.messages[-1]["data"]["state"] == tp.status(self.d, dev)["state"])
            else None)

    def test_changes_in_order(self):
        d, dev = self.d, "st-1"
        self.device("other")  # learning all along: no state message
        st, plain = self.stream("?types=state"), self.stream()
        mine = self.stream("?types=state&device=" + dev)
        none = self.stream("?types=state&device=other")
        rng = random.Random(3)
        data = tp.rotation(650, 0, tp.OMEGA_A, 0.01, rng)
        self.feed(dev, data[:500], 0)
        tp.wait_idle(d, dev, 1)
        first = st.count(1)[0]
        self.assertEqual((first["data"]["state"], first["data"]["previous"]),
                         ("normal", "learning"))
        self.assertEqual(tp.status(d, dev)["state"], "normal")
        self.feed(dev, data[500:650], 500)
        burst = tp.rotation(30, 650, tp.OMEGA_B, 0.01, random.Random(4), amp=3.0)
        self.feed(dev, burst, 650)
        msgs = self.until_status(st, dev)
        self.assertEqual(msgs[-1]["data"]["state"], "anomaly")
        self.check_chain(msgs, dev)
        # Each change once: the fault's first reading, its onset ranked at model.trip_level (0.8,
        # the default since session 47), is an anomaly at once; its second confirms it, so the
        # state stays anomaly (without the trip it went through warning: the first at alarm
        # level, the second confirming).
        self.assertEqual(states(msgs)[:2], ["normal", "anomaly"])
        status = tp.status(d, dev)
        self.assertEqual((msgs[-1]["data"]["ts"], msgs[-1]["data"]["time"]),
                         (status["since_ts"], status["since"]))

        tp.jreq(d, "POST", "/v1/devices/%s/anomalies/accept" % dev, {})
        msgs = self.until_status(st, dev)
        self.assertEqual((msgs[-1]["data"]["state"], msgs[-1]["data"]["previous"]),
                         ("normal", "anomaly"))
        self.check_chain(msgs, dev)
        time.sleep(0.5)
        self.assertEqual(st.messages, msgs)  # nothing more, nothing twice
        self.assertEqual(mine.messages, msgs)
        self.assertEqual(none.messages, [])
        self.assertNotIn("state", [m["event"] for m in plain.messages])
        self.assertEqual([m["event"] for m in plain.messages], ["anomaly", "anomaly"])
        self.assertEqual(d.metric('vigil_event_stream_messages_by_type_total{type="state"}',
                                  need=True), len(msgs))

    def test_types_params(self):
        for q, bad in (("?types=", ""), ("?types=bogus", "bogus"), ("?types=state,", ""),
                       ("?types=anomaly,Anomaly", "Anomaly"), ("?types=,state", "")):
            r = vt.curl(self.d.url("/v1/events" + q), timeout=5)
            self.assertEqual(r.status, 400, (q, r))
            self.assertEqual(r.json()["error"],
                             "parameter 'types': '%s' is no message type (a comma list of "
                             "anomaly, maintenance, state, limit)" % bad, q)
        r = vt.curl(self.d.url("/v1/events?types=state&types=anomaly"), timeout=5)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"], "parameter 'types': given more than once")
        # Every type, in any order, a type twice: a stream.
        for q in ("?types=state,maintenance,anomaly", "?types=state,state", "?types=anomaly"):
            self.stream(q)


class StateBounded(SseTest):
    """The default http.events_state_min_ms (1000): a device flapping between anomaly and
    normal many times a second (a fault's readings, then a maintenance that ends its episode,
    again and again) costs at most about one state message a second, and the stream ends on
    the device's current state within about a second and a quarter."""

    def test_flapping_device(self):
        d, dev = self.d, "flap-1"
        st = self.stream("?types=state")
        self.first_model(dev)
        t0 = time.monotonic()
        seen = self.flap(dev, 4, 20)
        elapsed = time.monotonic() - t0
        changes = sum(1 for a, b in zip(seen, seen[1:]) if a != b)
        sys.stderr.write("[flapping: %d changes seen by polling in %.1f s, %d state messages]\n"
                         % (changes, elapsed, len(st.messages)))
        self.assertGreater(changes, 20, seen)  # it did flap
        status = tp.status(d, dev)["state"]
        msgs = st.wait("the final state", lambda s: list(s.messages) if (
            s.messages[-1]["data"]["state"] == status) else None, timeout=5)
        time.sleep(1.5)  # an interval and more: nothing after it
        self.assertEqual(st.messages, msgs)
        for a, b in zip(msgs, msgs[1:]):
            self.assertEqual(b["data"]["previous"], a["data"]["state"], msgs)
        # A change that came and went within an interval is not sent: never a state after itself.
        for m in msgs:
            self.assertNotEqual(m["data"]["state"], m["data"]["previous"], msgs)
        # The first model's normal, then at most one per second of flapping (and one more for
        # the interval the flapping began in).
        self.assertLessEqual(len(msgs) - 1, elapsed + 2, (len(msgs), elapsed, msgs))
        self.assertGreaterEqual(len(msgs), 2)


class Reload(SseTest):
    """The event streams' bounds apply on reload (SIGHUP), to the streams already open, which
    stay open: http.events_keepalive_ms from the keep-alive thread's next look,
    http.events_max_unsent from the next message, http.events_state_min_ms at the loop's next
    tick. The daemon starts with bounds the test then changes (the ones that would keep each
    test from seeing anything for minutes), so each check fails if the reload only logged the
    change ("applied only after a restart")."""

    START = "[http]\nevents_keepalive_ms = 25000\nevents_max_unsent = 1073741824\n" \
            "events_state_min_ms = 600000\n"
    CONFIG = tp.config_text(0, extra=START)

    def reload(self, **http):
        """Rewrites the [http] section's bounds (the others as at the start) and reloads."""
        text = self.CONFIG.replace(self.START, "[http]\n" + "".join(
            "%s = %s\n" % kv for kv in sorted(http.items())))
        vt.write_file(self.d.config, text)
        log = test_ops.hup(self.d, r"configuration reloaded; applied")
        line = [x for x in log.splitlines() if "configuration reloaded; applied" in x][-1]
        for k in http:
            self.assertIn("http." + k, line)
        self.assertNotIn("applied only after a restart", log)

    def test_keepalive(self):
        s = self.stream()
        time.sleep(1.0)
        self.assertEqual(s.comments, 0)  # 25 s between keep-alives
        self.reload(events_keepalive_ms=200)
        t = time.monotonic()
        s.wait("keep-alives at the new interval", lambda s: s.comments >= 5, timeout=5)
        self.assertLess(time.monotonic() - t, 4)
        self.assertFalse(s.ended)
        # Back to a long interval: the comments stop (at most one already due).
        self.reload(events_keepalive_ms=30000)
        n = s.comments
        time.sleep(1.0)
        self.assertLessEqual(s.comments, n + 1)
        self.assertEqual(self.d.metric("vigil_event_streams_dropped_total", need=True), 0)

    def test_max_unsent(self):
        """A client that never reads, connected before the reload, is cut off once it falls
        4 KiB behind (the new bound), not 1 GiB; the stream that reads goes on."""
        d = self.d
        self.device("s")
        reader = self.stream()
        sock = self.silent_client(1)
        self.reload(events_max_unsent=4096)
        n = self.publish_until_cut("s")  # 4 KiB behind, not 1 GiB
        self.assertIn("events_max_unsent", d.log())
        msgs = reader.count(n)
        self.assertEqual([seq(m) for m in msgs], list(range(seq(msgs[0]), seq(msgs[0]) + n)))
        self.assertFalse(reader.ended)
        sock.close()

    def test_state_interval(self):
        """A change held by a 10-minute interval is sent at the first tick after a reload to
        0; from then on every change at once."""
        d, dev = self.d, "st-r"
        st = self.stream("?types=state")
        self.first_model(dev)
        self.assertEqual(states(st.count(1)), ["normal"])  # the first: no interval before it
        burst = tp.rotation(30, 650, tp.OMEGA_B, 0.01, random.Random(4), amp=3.0)
        self.feed(dev, burst, 650)
        self.assertEqual(tp.status(d, dev)["state"], "anomaly")
        time.sleep(1.0)
        self.assertEqual(states(st.messages), ["normal"])  # held: the interval goes on
        self.reload(events_state_min_ms=0)
        t = time.monotonic()
        msgs = st.wait("the held state", lambda s: list(s.messages) if len(s.messages) >= 2
                       else None, timeout=5)
        self.assertLess(time.monotonic() - t, 2)
        self.assertEqual([(m["data"]["previous"], m["data"]["state"]) for m in msgs],
                         [("learning", "normal"), ("normal", "anomaly")])
        tp.jreq(d, "POST", "/v1/devices/%s/anomalies/accept" % dev, {})
        msgs = st.count(3, timeout=5)
        self.assertEqual(states(msgs), ["normal", "anomaly", "normal"])
        self.assertFalse(st.ended)


class ReloadRaised(SseTest):
    """A reload that raises http.events_state_min_ms (here from 0 to 2,000 ms) bounds a
    flapping device's state messages from then on: after the first (its interval under 0 had
    ended), none closer than the new interval."""

    START = "[http]\nevents_state_min_ms = 0\n"
    CONFIG = tp.config_text(0, extra=START)
    reload = Reload.reload

    def test_state_interval_raised(self):
        dev = "st-up"
        st = self.stream("?types=state")
        self.first_model(dev)
        st.count(1)
        self.flap(dev, 1, 6)
        time.sleep(0.5)  # every change out (interval 0)
        with st.cv:
            n0, before = len(st.messages), list(st.arrived)
        gaps = [b - a for a, b in zip(before, before[1:])]
        self.assertLess(min(gaps), 1.0, gaps)  # as they come with 0
        self.reload(events_state_min_ms=2000)
        self.flap(dev, 9, 10)  # four intervals and more
        time.sleep(2.5)  # the held change's interval ends
        with st.cv:
            after = list(st.arrived[n0:])
        self.assertGreaterEqual(len(after), 2, st.messages[n0:])  # 3 to 5 seen
        gaps = [b - a for a, b in zip(after, after[1:])]
        sys.stderr.write("[raised: %d state messages after the reload, %s s apart]\n"
                         % (len(after), ", ".join("%.2f" % g for g in gaps)))
        # Sent 2.0 s apart or more (at a 250 ms tick); 0.5 s for the delivery's jitter.
        self.assertGreaterEqual(min(gaps), 1.5, gaps)
        msgs = st.messages
        for a, b in zip(msgs, msgs[1:]):  # nothing lost by the reload: the chain holds
            self.assertEqual(b["data"]["previous"], a["data"]["state"], msgs)


class KeepaliveCapped(SseTest):
    """A keep-alive longer than half of http.timeout_s is lowered to that half (else an idle
    stream would be closed as idle before it), logged at the start and again only by a reload
    that changes http.events_keepalive_ms, not by every reload."""

    WARN = "http.events_keepalive_ms 10000: lowered to 1500 ms"
    START = "[http]\ntimeout_s = 3\nevents_keepalive_ms = 10000\n"
    CONFIG = tp.config_text(0, extra=START)

    def reload(self, text):
        vt.write_file(self.d.config, tp.config_text(0, extra=text))
        return test_ops.hup(self.d, r"configuration reloaded")

    def test_capped_and_logged_once(self):
        d = self.d
        self.assertEqual(d.log().count(self.WARN), 1)
        s = self.stream()
        # Idle for twice the timeout: kept open by keep-alives every 1.5 s, not closed.
        time.sleep(6.0)
        self.assertGreaterEqual(s.comments, 2)
        self.assertFalse(s.ended)
        log = self.reload(self.START + "max_batch = 5000\n")  # another setting only
        self.assertEqual(log.count(self.WARN), 1)
        log = self.reload("[http]\ntimeout_s = 3\nevents_keepalive_ms = 20000\n")
        self.assertIn("http.events_keepalive_ms 20000: lowered to 1500 ms", log)
        self.assertFalse(s.ended)



class StateReturnSeen(SseTest):
    """Task stflake (it_readme's flake): a device's state published (anomaly), then within the
    interval a change (a maintenance ends the episode: normal, held) and its return (a new
    fault: anomaly again). A stream opened in between, whose reader read the status (normal)
    as README says to, must still get the device's current state (anomaly) within the interval
    + 250 ms: the flush may not drop the return because it is the state last published. The
    interval is long (5 s) so the change and its return fall inside it on a busy machine."""

    CONFIG = tp.config_text(0, extra="[http]\nevents_state_min_ms = 5000\n")

    def fault_until(self, dev, k, state):
        """Feeds dev 3 fault readings at a time (larger each time) until its status is state;
        returns the next reading index."""
        for i in range(8):
            self.feed(dev, tp.rotation(3, k, tp.OMEGA_B, 0.01, random.Random(10 + k),
                                       amp=4.0 + 2 * i), k)
            k += 3
            if tp.status(self.d, dev)["state"] == state:
                return k
        self.fail("%s never in %s: %r" % (dev, state, tp.status(self.d, dev)))

    def test_return_within_interval_reaches_new_stream(self):
        d, dev = self.d, "ret-1"
        a = self.stream("?types=state")
        self.first_model(dev)
        a.wait("normal", lambda s: states(s.messages) == ["normal"], timeout=10)
        k = self.fault_until(dev, 650, "anomaly")
        a.wait("anomaly", lambda s: states(s.messages)[-1:] == ["anomaly"], timeout=10)
        sent = a.arrived[-1]
        # Within the interval of that message: normal (held), seen by a new stream's reader...
        tp.jreq(d, "POST", "/v1/devices/%s/maintenance" % dev, {"minutes": 5})
        tp.jreq(d, "DELETE", "/v1/devices/%s/maintenance" % dev, want=204)
        b = self.stream("?types=state")
        self.assertEqual(tp.status(d, dev)["state"], "normal")
        # ... then anomaly again, which lasts.
        self.fault_until(dev, k, "anomaly")
        changed = time.monotonic()
        self.assertLess(changed - sent, 4.5, "too slow to fall inside the 5 s interval")
        msgs = b.wait("the device's current state (anomaly)", lambda s: list(s.messages) if (
            states(s.messages)[-1:] == ["anomaly"]) else None, timeout=5 + 0.25 + 1.5)
        self.assertLessEqual(b.arrived[-1] - changed, 5 + 0.25 + 1.0, msgs)
        self.assertEqual(tp.status(d, dev)["state"], "anomaly")
        # The old stream's chain still holds: each message's previous is the last one's state.
        for x, y in zip(a.messages, a.messages[1:]):
            self.assertEqual(y["data"]["previous"], x["data"]["state"], a.messages)


if __name__ == "__main__":
    vt.main()

#!/usr/bin/python3
"""vigild integration: the online anomaly pipeline (issue 4), end to end on the real daemon.

1. Faults flagged (SimFaults): vigil-sim feeds 6 pumps (healthy history, then one fault per
   pump 1-5); each fault is flagged by an anomaly event naming its channel within a stated
   number of readings of the fault's start, nothing is flagged before the faults, and the
   healthy pump-6 raises no anomaly over more than an hour of readings; with seeds 3, 2 and 4.
   The history arrives in bulk and the first training has all of it; the live part is held
   where every pump's second training comes due, at the first fault's start, until those
   trainings are done, so each pump meets its fault with a model trained on healthy readings.
   Also: forecast with a limit on the overheating pump (time_to_limit), forecast errors, and
   /metrics (promtool) with the pipeline's families.
2. Restart (Restart): after SIGTERM the models, versions, anomaly events and detector states
   are back and scoring continues where it stopped; after kill -9 the versions are still there.
3. Under load (Load): 50 devices pushed at once over /write and the stream: every reading is
   scored exactly once and in order; readings older than a device's newest are stored but not
   scored. `test_pipeline.py Load` with $VIGILD_TSAN set runs this test alone against a
   ThreadSanitizer build (CTest: it_pipeline_tsan; skipped, exit 77, without $VIGILD_TSAN).

Retraining, validation, rollback, PyTorch weights and DELETE are in test_pipeline_models.py
(it_pipeline_models); the helpers both files share are in pipeline_fx.py.

Python 3 standard library.
"""

import json
import os
import random
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
TSAN_ONLY = len(sys.argv) > 1 and sys.argv[1] == "Load" and "VIGILD_TSAN" in os.environ
if len(sys.argv) > 1 and sys.argv[1] == "Load" and os.environ.get("VIGIL_REQUIRE_TSAN") == "1" \
        and "VIGILD_TSAN" not in os.environ:
    print("VIGILD_TSAN not set: the ThreadSanitizer load test is skipped")
    sys.exit(77)
if TSAN_ONLY:
    os.environ["VIGILD"] = os.environ["VIGILD_TSAN"]
import vigiltest as vt  # noqa: E402
from pipeline_fx import (  # noqa: E402
    check_versions, config_text, DaemonPerTest, HIDDEN, jreq, lstm_tensors, models, OMEGA_A,
    OMEGA_B, PROMTOOL, req, rotation, sim_path, st_build, st_parse, status, VAL_ROWS, wait_for,
    wait_idle, wait_scored)


# ============================================================================================
# 1. Faults flagged by the detector on vigil-sim's pumps; forecast; metrics.
# ============================================================================================

# vigil-sim run: one reading per simulated second per pump; BACKFILL seconds of history at full
# speed, then live readings at SPEED x real time; pump-i's fault starts at simulated second
# BACKFILL + FAULT_AT + 15 (i - 1), i.e. at reading index BACKFILL + FAULT_AT + 15 (i - 1)
# (reading 0 at t = 0), pump-6 is healthy throughout. DURATION >= 3600: an hour of readings.
SIM_DEVICES, SIM_BACKFILL, SIM_FAULT_AT, SIM_DURATION, SIM_SPEED = 6, 1200, 600, 3700, 150
# The reading count at which every pump's second training comes due: the first model applies
# once the backfill (SIM_BACKFILL readings) is scored, and retrain_every (600, SimFaults.CONFIG)
# readings later the schedule asks again. The live part is held there (SimFaults.setUpClass),
# which must be no later than the first fault's start.
SIM_SECOND = SIM_BACKFILL + 600
assert SIM_SECOND <= SIM_BACKFILL + SIM_FAULT_AT
# Seeds: SimFaults runs with seed 3, SimFaultsSeed1, SimFaultsSeed2 and SimFaultsSeed4 with 1, 2
# and 4 (each its own daemon and sim run, about 20 s). With each, pump-6 must raise nothing in
# the hour and no pump anything before its fault. Seed 1 was left out until the eighth detection
# round (err_corr, docs/detection.md): before it, its healthy pump-6 raised a 5-reading episode
# (peak 0.55) in one loaded run. Since then its runs raised no alarm; what failed under load (a
# bounded loop of the unit tests at -j2 beside it, load average 5-12; SimFaultsSeed2 as well,
# with the vigild before the round too) was the training count, 3 where 4 were asserted:
# trainings lagging the 150x replay (test_healthy_pump_raises_no_anomaly now asks for 3).
# Session 12: the live part now waits for every pump's first model (SimFaults.setUpClass),
# which took the machine's load out of what the detector sees (docs/reliability.md, "SimFaults
# under load"). Measured with vigil-replay on healthy
# runs of seeds 1-4 (10 pumps each, no faults, 3700 readings, first training on 1200, then
# every 600; 2500 scored readings per pump, 28 pump-hours in all): 6 events, 0 with seed 2,
# 1 with seed 3 (pump-3), 3 with seed 1 (pumps 3, 4, 10), 2 with seed 4 (pumps 7, 10).
SIM_SEED = int(os.environ.get("VIGIL_SIM_SEED", "3"))
# Detection bounds in readings after the fault's start. Observed delays in brackets (seeds 1-4,
# several runs each, first model trained on the whole backfill): pump-1 bearing/vib [11-14],
# pump-2 overheat/temp [13-23], pump-3 stuck pressure [9-11], pump-4 current spikes [9-23],
# pump-5 cavitation flow or pressure [1-2]. (pump-2's overheat was missed while the error
# floor was 10 % of a channel's span; the floor now follows the channel's one-step changes.)
FAULTS = {  # device: (fault, channel(s) named first by the event, bound in readings)
    "pump-1": ("bearing", "vib", 40),
    "pump-2": ("overheat", "temp", 60),
    "pump-3": ("stuck", "pressure", 40),
    "pump-4": ("spikes", "current", 60),
    # Cavitation makes both flow and pressure noisy (vigil-sim): either may rank first. The
    # noise added to the flow stays in the pump's flow state (its 3 s lag), and the motor
    # current follows flow and pressure from the next reading on (tools/sim.c, pump_step): the
    # current's one-step changes grow about as much as theirs (measured on vigil-sim --csv,
    # seeds 1 and 4, the 60 readings after the fault against the 600 before: flow 28x/23x,
    # pressure 24x/17x, current 22x/15x, speed 0.8x, vib 1.1x), so current takes a share too.
    "pump-5": ("cavitation", ("flow", "pressure"), 20),
}


class SimFaults(vt.DaemonTestCase):
    # The warm-up covers the sim's 600 s operating cycle; hidden size is the default. The
    # backfill arrives in bulk, so the first training has all of it (two cycles).
    CONFIG = config_text(600, warmup=600, hidden=16)
    SEED = SIM_SEED

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.d
        devs = ["pump-%d" % i for i in range(1, SIM_DEVICES + 1)]
        # One simulated run sent in three parts: the backfill; then, once every pump's first
        # model serves, the live readings up to SIM_SECOND; then, once the second trainings
        # that came due there are done, the rest of the hour (--from continues the run
        # exactly: same seed, same start, the pumps run silently up to it).
        # The first hold: in one part, the live readings raced the first trainings: at 150x
        # real time a training that takes a few seconds on a loaded machine lands hundreds of
        # readings late, after the first faults began (measured: first models landing at
        # readings 1,274 to 2,102 under two busy loops, faults from 1,800), and those pumps
        # were flagged late, with other channel shares, or trained too few times.
        # The second: every pump's second training comes due at SIM_SECOND readings, the
        # reading before pump-1's fault and 60 before pump-5's, and a training's window ends
        # at the newest reading scored when it begins (daemon/pipeline_train.c, member_begin).
        # Six trainings queued at once began up to 600 readings later in the 150x replay, so
        # whether pump-5 met its fault with its first model or its second, and how many of
        # the fault's readings the second one had learnt (1 to hundreds; in 20 of 31 runs its
        # arrival cleared the episode), depended on the machine's load, and so did the first
        # event's channel shares (docs/reliability.md, "SimFaults: pump-5's cavitation shares").
        # A device meets its fault with a model trained on healthy readings, as these bounds
        # assume and as a real-time feed gives it.
        start_ms = vt.now_ms() - SIM_BACKFILL * 1000
        cmd = [sim_path(), "--stream", "127.0.0.1:%d" % d.stream_port,
               "--devices", str(SIM_DEVICES), "--interval", "1000", "--speed", str(SIM_SPEED),
               "--backfill", str(SIM_BACKFILL), "--start", str(start_ms),
               "--fault-at", str(SIM_FAULT_AT), "--seed", str(cls.SEED), "--quiet"]
        for part in (["--duration", str(SIM_BACKFILL)],
                     ["--from", str(SIM_BACKFILL), "--duration", str(SIM_SECOND)],
                     ["--from", str(SIM_SECOND), "--duration", str(SIM_DURATION)]):
            p = subprocess.run(cmd + part, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=120)
            if p.returncode != 0:
                raise AssertionError("vigil-sim failed (%d): %s" % (p.returncode,
                                                                    p.stdout.decode()))
            upto = int(part[-1])
            if upto == SIM_DURATION:
                break
            for dev in devs:
                wait_scored(d, dev, upto, timeout=60)
                wait_idle(d, dev, 1 if upto == SIM_BACKFILL else 2, timeout=120)
            if upto == SIM_SECOND:
                # Each second training had the healthy readings up to the hold: its window
                # ended there (the first model applied at SIM_BACKFILL readings or, the wait
                # for the backfill ending a few readings early, just before).
                for dev in devs:
                    second = sorted(models(d, dev)["versions"], key=lambda v: v["version"])[1]
                    rows = second["metrics"]["rows"]
                    assert SIM_SECOND - VAL_ROWS - 20 <= rows <= SIM_SECOND - VAL_ROWS, \
                        (dev, second)
        cls.ts0 = {}
        for i in range(1, SIM_DEVICES + 1):
            dev = "pump-%d" % i
            s = wait_scored(d, dev, SIM_DURATION, timeout=60)
            cls.ts0[dev] = d.get_json("/v1/devices/%s/readings?limit=1" % dev)["points"][0]["ts"]
            assert s["last_ts"] == cls.ts0[dev] + (SIM_DURATION - 1) * 1000, s
        # The replay runs at 150x real time, the trainings in real time: on a loaded machine
        # they lag it. Let those that came due finish (no device due, none training) so the
        # checks see what the schedule made, whatever the machine's load.

        def caught_up():
            return (d.metric("vigil_train_queue_jobs") == 0 and
                    not any(models(d, dev)["training"] for dev in devs))
        wait_for("the due trainings to finish", caught_up, 120)

    def events(self, dev):
        return self.d.get_json("/v1/devices/%s/anomalies" % dev)["anomalies"]

    def check_fault(self, dev):
        fault, channel, bound = FAULTS[dev]
        i = int(dev.split("-")[1]) - 1
        fault_ts = self.ts0[dev] + (SIM_BACKFILL + SIM_FAULT_AT + 15 * i) * 1000
        evs = sorted(self.events(dev), key=lambda e: e["start_ts"])
        early = [e for e in evs if e["start_ts"] < fault_ts]
        self.assertEqual(early, [], "%s: anomaly before its %s fault" % (dev, fault))
        self.assertTrue(evs, "%s: %s fault not flagged at all" % (dev, fault))
        first = evs[0]
        delay = (first["start_ts"] - fault_ts) // 1000
        sys.stderr.write("seed %d %s (%s): flagged %d readings after the fault start, channels %s\n"
                         % (self.SEED, dev, fault, delay, " ".join(
                             "%s:%.2f" % (c["channel"], c["share"]) for c in first["channels"])))
        self.assertLessEqual(delay, bound, "%s: %s flagged after %d readings (bound %d): %r"
                             % (dev, fault, delay, bound, first))
        chans = channel if isinstance(channel, tuple) else (channel,)
        own = sum(c["share"] for c in first["channels"] if c["channel"] in chans)
        if len(chans) == 1:
            self.assertEqual(first["channels"][0]["channel"], channel, first)
        else:
            # A fault on two channels (cavitation: flow and pressure) splits its error between
            # them, and a coupled channel (the motor's current) can rank first on its own: the
            # two together must outweigh any other channel, and one of them be among the top 2.
            self.assertTrue(first["channels"][0]["channel"] in chans or
                            first["channels"][1]["channel"] in chans, first)
            others = [c["share"] for c in first["channels"] if c["channel"] not in chans]
            self.assertGreater(own, max(others), first)
        # The fault's channel(s) carry a good part of the error (cavitation's two together).
        self.assertGreater(own, 0.3, first)
        # peak_score is the episode's highest decision likelihood: at least the alarm level
        # (the status's threshold), although with confirm = 2 every reading's score in it is
        # capped.
        threshold = status(self.d, dev)["threshold"]
        self.assertGreaterEqual(first["peak_score"], threshold, first)
        self.assertEqual(first["device"], dev)

    def test_faults_flagged_with_their_channel(self):
        for dev in ("pump-1", "pump-3", "pump-4", "pump-5"):
            self.check_fault(dev)

    def test_no_anomaly_before_overheat(self):
        fault_ts = self.ts0["pump-2"] + (SIM_BACKFILL + SIM_FAULT_AT + 15) * 1000
        self.assertEqual([e for e in self.events("pump-2") if e["start_ts"] < fault_ts], [])

    def test_overheat_flagged(self):
        """The overheating drift of pump-2 is flagged on temp (a slow channel: its error
        floor follows its one-step changes, not its span)."""
        self.check_fault("pump-2")

    def test_healthy_pump_raises_no_anomaly(self):
        s = status(self.d, "pump-6")
        self.assertGreaterEqual(s["readings_scored"], 3600, s)
        self.assertEqual(s["readings_not_scored_out_of_order"], 0, s)
        self.assertEqual(self.events("pump-6"), [])
        self.assertEqual(s["state"], "normal", s)
        # It was retrained on schedule (warm-up, then every 600 readings), so the hour was
        # covered by models that kept learning, not by one frozen model. Five trainings can
        # come due in the replay (at 1200, 1800, ... 3600 readings); one that comes due while
        # the device still trains waits for it (vigil_train_postponed_total), and the next is
        # due 600 readings after the one that ran, so a machine too loaded to keep up with the
        # 150x replay trains fewer: at least the first and two more.
        m = models(self.d, "pump-6")
        self.assertGreaterEqual(len(m["versions"]), 3, m)
        check_versions(self, m)
        # The first training had the whole backfill (SIM_BACKFILL readings, sent in bulk), less
        # the validation tail, not only the warm-up's 600 (which would give 400 rows). A little
        # margin: the wait for the backfill ends within the last few seconds of its timestamps.
        first = min(m["versions"], key=lambda v: v["version"])
        self.assertGreaterEqual(first["metrics"]["rows"], SIM_BACKFILL - VAL_ROWS - 20, first)
        # Fleet-wide listing: only faulty pumps; ?active=true a subset of it.
        all_ev = self.d.get_json("/v1/anomalies")["anomalies"]
        self.assertTrue(all_ev)
        self.assertEqual({e["device"] for e in all_ev} - set(FAULTS), set())
        active = self.d.get_json("/v1/anomalies?active=true")["anomalies"]
        self.assertTrue(all(e["active"] and e["end"] is None for e in active), active)

    def test_predictions_beside_actuals(self):
        ts0 = self.ts0["pump-6"]
        frm = ts0 + 3000 * 1000
        doc = self.d.get_json("/v1/devices/pump-6/predictions?from=%d&limit=50" % frm)
        pts = doc["points"]
        self.assertEqual(len(pts), 50)
        self.assertEqual([p["ts"] for p in pts], [frm + 1000 * k for k in range(50)])
        raw = {p["ts"]: p["values"] for p in self.d.readings("pump-6", **{"from": frm, "limit": 50})}
        for p in pts:
            self.assertEqual(set(p["predicted"]), {"speed", "flow", "pressure", "current", "temp", "vib"})
            for ch, v in p["actual"].items():
                self.assertAlmostEqual(v, raw[p["ts"]][ch], places=3)
            self.assertTrue(0 <= p["score"] <= 1, p)
            # A healthy pump's one-step predictions are close (temperature moves slowly).
            self.assertLess(abs(p["predicted"]["temp"] - p["actual"]["temp"]), 1.0, p)

    def test_forecast_time_to_limit_while_overheating(self):
        s = status(self.d, "pump-2")
        temp = s["latest"]["temp"]
        limit = round(temp + 3.0, 1)
        r = self.d.curl("PUT", "/v1/devices/pump-2", "-H", "Content-Type: application/json",
                        "--data-binary", json.dumps({"limits": {"temp": {"max": limit}}}))
        self.assertEqual(r.status, 200, r)
        horizon = 120
        f = self.d.get_json("/v1/devices/pump-2/forecast?horizon=%d" % horizon)
        self.assertEqual(f["horizon"], horizon)
        self.assertEqual(len(f["steps"]), horizon)
        self.assertEqual(f["from_ts"], s["last_ts"])
        prev = f["from_ts"]
        for st in f["steps"]:
            self.assertGreater(st["ts"], prev)
            prev = st["ts"]
            self.assertEqual(set(st["values"]), {"speed", "flow", "pressure", "current", "temp", "vib"})
            for ch, v in st["values"].items():
                self.assertTrue(v["low"] <= v["mean"] <= v["high"], (ch, st))
        self.assertAlmostEqual(f["interval_ms"], 1000, delta=1)
        ttl = f["time_to_limit"]
        self.assertIsNotNone(ttl.get("temp"), "overheating pump: no time to the limit %.1f "
                             "(latest %.2f): %r" % (limit, temp, [st["values"]["temp"]["mean"]
                                                                   for st in f["steps"][:20]]))
        t = ttl["temp"]
        self.assertEqual(t["limit"], "max")
        self.assertAlmostEqual(t["value"], limit, places=3)
        self.assertTrue(1 <= t["steps"] <= horizon, t)
        self.assertEqual(t["at_ts"], f["steps"][t["steps"] - 1]["ts"])
        means = [st["values"]["temp"]["mean"] for st in f["steps"]]
        if t["by"] == "model":
            # The model's forecast: its first step at or above the limit, none before it.
            self.assertGreaterEqual(means[t["steps"] - 1], limit)
            self.assertTrue(all(m < limit for m in means[:t["steps"] - 1]), means[:t["steps"]])
        else:
            # The readings' trend (README "Channel limits"): the temperature departs from its
            # prediction, in an episode held since the fault began (the model, trained before
            # it, is not retrained on the schedule while it grows: docs/detection.md,
            # "Sixty-third round"), so the model's forecast need not reach the limit.
            self.assertEqual(t["by"], "trend", t)
            self.assertIn(s["state"], ("warning", "anomaly"), s)
        sys.stderr.write("pump-2 temp %.2f, limit %.1f: forecast crosses it in %d steps (by %s)\n"
                         % (temp, limit, t["steps"], t["by"]))
        # No limit on the healthy pump: no time_to_limit entries.
        f6 = self.d.get_json("/v1/devices/pump-6/forecast?horizon=5")
        self.assertEqual(f6["time_to_limit"], {})
        self.assertEqual(len(f6["steps"]), 5)

    def test_forecast_errors(self):
        for bad in ("0", "-1", "10001", "abc", ""):
            self.assertJsonError(self.d.curl("GET", "/v1/devices/pump-2/forecast?horizon=" + bad),
                                 400, "horizon")
        self.assertJsonError(self.d.curl("GET", "/v1/devices/no-such-pump/forecast?horizon=5"), 404)
        # A device still learning has no model: 409.
        jreq(self.d, "POST", "/v1/readings",
             [{"device": "young-1", "ts": 1000 + k, "values": {"a": k}} for k in range(5)])
        wait_scored(self.d, "young-1", 5)
        self.assertEqual(status(self.d, "young-1")["state"], "learning")
        self.assertJsonError(self.d.curl("GET", "/v1/devices/young-1/forecast?horizon=5"), 409)

    def test_metrics_pipeline_families(self):
        text = self.d.metrics()
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, "promtool check metrics:\n%s" % p.stdout)
        self.assertEqual(p.stdout.strip(), "", p.stdout)

        def val(name, labels=""):
            return vt.metric_in(text, name + labels, need=True)
        scored = val("vigil_readings_scored_total")
        self.assertGreaterEqual(scored, SIM_DEVICES * SIM_DURATION)
        for fam in ("vigil_inference_seconds", "vigil_training_seconds"):
            self.assertIn("# TYPE %s histogram" % fam, text)
            self.assertGreater(val(fam + "_count"), 0)
            self.assertEqual(val(fam + "_bucket", '{le="+Inf"}'), val(fam + "_count"))
        self.assertEqual(val("vigil_inference_seconds_count"), scored)
        # At least three trainings a pump (test_healthy_pump_raises_no_anomaly says why).
        self.assertGreaterEqual(val("vigil_model_trainings_total"), 3 * SIM_DEVICES)
        for i in range(1, SIM_DEVICES + 1):
            dev = "pump-%d" % i
            sc = val("vigil_device_anomaly_score", '{device="%s"}' % dev)
            self.assertTrue(0 <= sc <= 1, sc)
            self.assertAlmostEqual(sc, status(self.d, dev)["score"], places=4)
            self.assertGreaterEqual(val("vigil_device_model_version", '{device="%s"}' % dev), 1)
            self.assertIn(val("vigil_device_state", '{device="%s"}' % dev), (1, 2, 3))


class SimFaultsSeed1(SimFaults):
    SEED = 1


class SimFaultsSeed2(SimFaults):
    SEED = 2


class SimFaultsSeed4(SimFaults):
    SEED = 4


# ============================================================================================
# 4. Restart: models, versions, events and detector states survive; scoring continues.
# ============================================================================================

class Restart(DaemonPerTest):

    def snapshot(self, devs):
        out = {}
        for dev in devs:
            s = status(self.d, dev)
            out[dev] = {"status": s, "models": models(self.d, dev),
                        "anomalies": self.d.get_json("/v1/devices/%s/anomalies" % dev)}
        return out

    def test_sigterm_keeps_models_states_and_events(self):
        d = self.d
        data = rotation(650, 0, OMEGA_A, 0.01, random.Random(3))
        burst = rotation(60, 650, OMEGA_B, 0.01, random.Random(4), amp=3.0)
        lstm = st_build(lstm_tensors(3, HIDDEN, 3, 31))
        # Twins: the same readings and the same LSTM (PUT after 500 readings); twin-b gets
        # readings 550-649 before the restart, twin-a after it. If the restart brings every
        # detector state back as it was, twin-a then predicts and scores exactly as twin-b did.
        for dev in ("twin-a", "twin-b", "event-1"):
            self.feed(dev, data[:500], 0)
            wait_idle(d, dev, 1)
        for dev in ("twin-a", "twin-b"):
            r = d.curl("PUT", "/v1/devices/%s/model/weights" % dev, "--data-binary", "@-",
                       stdin=lstm)
            self.assertEqual(r.status, 200, r)
            self.feed(dev, data[500:550], 500)
        ts_b = self.feed("twin-b", data[550:650], 550)
        ref = d.get_json("/v1/devices/twin-b/predictions?from=%d" % ts_b[0])["points"]
        self.assertEqual(len(ref), 100)
        # event-1: an anomaly still active at the stop.
        self.feed("event-1", data[500:650], 500)
        self.feed("event-1", burst[:30], 650)
        s = status(d, "event-1")
        self.assertEqual(s["state"], "anomaly", s)
        # Events reach the store asynchronously: the listing may trail the status briefly.
        wait_for("event-1's event listed", lambda: d.get_json(
            "/v1/devices/event-1/anomalies?active=true")["anomalies"], 10)
        before = self.snapshot(("twin-a", "event-1"))
        active = before["event-1"]["anomalies"]["anomalies"][0]
        self.assertTrue(active["active"], active)
        weights = req(d, "GET", "/v1/devices/twin-a/model/weights")[2]
        # ck-1: two LSTM versions with kept weights, to roll back to after the restart.
        self.feed("ck-1", data[:400], 0)
        wait_idle(d, "ck-1", 1)
        w1, w2 = lstm_tensors(3, HIDDEN, 3, 51), lstm_tensors(3, HIDDEN, 3, 52)
        vs = []
        for w in (w1, w2):
            r = d.curl("PUT", "/v1/devices/ck-1/model/weights", "--data-binary", "@-",
                       stdin=st_build(w))
            self.assertEqual(r.status, 200, r)
            vs.append(r.json()["versions"][0]["version"])

        d.stop()  # SIGTERM: exit 0 asserted
        d.start()
        # The kept weights came back from the database: rolling back to the older one serves
        # exactly its weights.
        r = d.curl("POST", "/v1/devices/ck-1/model/rollback", "--data-binary",
                   '{"version": %d}' % vs[0])
        self.assertEqual(r.status, 200, r)
        got = st_parse(req(d, "GET", "/v1/devices/ck-1/model/weights")[2])
        self.assertEqual({k: v[2] for k, v in got.items()}, {k: v[1] for k, v in w1.items()})
        self.assertEqual(status(d, "ck-1")["model"], {"version": vs[0], "kind": "lstm"})
        after = self.snapshot(("twin-a", "event-1"))
        for dev in ("twin-a", "event-1"):
            b, a = before[dev], after[dev]
            self.assertNotEqual(a["status"]["state"], "learning", a["status"])
            for k in ("state", "model", "last_ts", "since_ts", "readings_scored",
                      "readings_not_scored_out_of_order", "latest"):
                self.assertEqual(a["status"][k], b["status"][k], "%s after restart: %s" % (dev, k))
            self.assertEqual(a["models"], b["models"], dev)
            self.assertEqual(a["anomalies"], b["anomalies"], dev)
        self.assertEqual(req(d, "GET", "/v1/devices/twin-a/model/weights")[2], weights)
        self.assertIn(active, d.get_json("/v1/anomalies?active=true")["anomalies"])

        # Scoring continues from the same state: twin-a now scores readings 550-649 exactly
        # as twin-b did without a restart.
        ts_a = self.feed("twin-a", data[550:650], 550)
        got = d.get_json("/v1/devices/twin-a/predictions?from=%d" % ts_a[0])["points"]
        self.assertEqual([p["ts"] for p in got], ts_a)
        for g, r in zip(got, ref):
            self.assertEqual((g["predicted"], g["score"], g["state"]),
                             (r["predicted"], r["score"], r["state"]), "reading %d" % g["ts"])
        s = status(d, "twin-a")
        self.assertEqual(s["readings_scored"], 650)
        # The active event goes on (same id) while the fault lasts.
        self.feed("event-1", burst[30:], 680)
        evs = d.get_json("/v1/devices/event-1/anomalies")["anomalies"]
        self.assertEqual(evs[0]["id"], active["id"], evs)
        self.assertGreaterEqual(evs[0]["peak_score"], active["peak_score"])
        self.assertEqual(len(evs), len(before["event-1"]["anomalies"]["anomalies"]))

    def test_kill9_keeps_versions(self):
        d = self.d
        rng = random.Random(8)
        self.feed("k-1", rotation(500, 0, OMEGA_A, 0.01, rng), 0)
        wait_idle(d, "k-1", 1)
        r = d.curl("POST", "/v1/devices/k-1/model/retrain")
        self.assertEqual(r.status, 202, r)
        n = len(models(d, "k-1")["versions"])
        m = wait_idle(d, "k-1", n + 1)
        self.feed("k-1", rotation(20, 500, OMEGA_A, 0.01, rng), 500)
        s = status(d, "k-1")
        # Versions and the detector are saved asynchronously after a training: wait until the
        # database has every version (sqlite3 reads beside vigild, WAL), then kill.
        nv = len(m["versions"])

        def stored():
            p = subprocess.run(["sqlite3", d.db_path, "SELECT count(*) FROM models m JOIN devices "
                                "d ON d.id = m.device_id WHERE d.name = 'k-1';"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
            return p.returncode == 0 and p.stdout.strip() == str(nv)
        wait_for("k-1's %d versions in the database" % nv, stored, 30)
        d.kill()
        d.start()
        m2 = models(d, "k-1")
        self.assertEqual(m2["versions"], m["versions"])
        s2 = status(d, "k-1")
        self.assertNotEqual(s2["state"], "learning", s2)
        self.assertEqual((s2["model"], s2["last_ts"]), (s["model"], s["last_ts"]), s2)
        self.feed("k-1", rotation(10, 520, OMEGA_A, 0.01, rng), 520, wait=False)
        wait_for("k-1 scoring after kill -9",
                 lambda: status(d, "k-1")["last_ts"] == 1_700_000_000_000 + 529 * 1000, 30)


# ============================================================================================
# 6. Under load: every reading scored exactly once, in order per device.
# ============================================================================================

class Load(DaemonPerTest):
    CONFIG = config_text(0, extra="workers = 4\ntrain_threads = 2\n")
    DEVICES, BATCHES, PER = 50, 10, 50  # 500 readings per device: each passes the warm-up
    T0 = 1_750_000_000_000

    def sender(self, i, barrier, errors):
        dev = "ld-%02d" % i
        rng = random.Random(i)
        try:
            conn = None
            stream = self.d.stream_connect(timeout=120)
            lines_sent = 0
            barrier.wait(30)
            a = b = 0.0
            for batch in range(self.BATCHES):
                lines = []
                for j in range(self.PER):
                    k = batch * self.PER + j
                    a += rng.gauss(0, 0.1)
                    b = 0.8 * b + rng.gauss(0, 0.1)
                    lines.append("load,device=%s a=%.6f,b=%.6f %d"
                                 % (dev, a, b, self.T0 + i + 1000 * k))
                if batch % 2:  # the stream's timestamps are nanoseconds
                    lines = [ln + "000000" for ln in lines]
                body = "\n".join(lines) + "\n"
                if batch % 2 == 0:  # /write?precision=ms, HTTP keep-alive
                    if conn is None:
                        conn = vt.http.client.HTTPConnection("127.0.0.1", self.d.http_port,
                                                             timeout=120)
                    conn.request("POST", "/write?db=x&precision=ms", body=body.encode())
                    resp = conn.getresponse()
                    data = resp.read()
                    if resp.status != 204:
                        raise AssertionError("%s /write: %d %r" % (dev, resp.status, data))
                else:  # the stream; "ok N" after the batch is committed
                    stream.send(body)
                    lines_sent += self.PER
                    got = stream.wait_ok(lines_sent)
                    if vt.errors_of(got):
                        raise AssertionError("%s stream: %r" % (dev, got))
            stream.finish()
            stream.close()
            if conn is not None:
                conn.close()
        except Exception as e:  # noqa: BLE001 (reported by the main thread)
            errors.append("%s: %r" % (dev, e))

    def poller(self, stop, errors):
        """Reads everything the pipeline serves while it scores and trains (HTTP threads
        beside the shards and the training pool), and asks for retrainings."""
        rng = random.Random(99)
        want = {"status": (200, 404), "model": (200, 404), "predictions?limit=5": (200, 404),
                "forecast?horizon=3": (200, 404, 409), "anomalies": (200, 404)}
        try:
            while not stop.is_set():
                dev = "ld-%02d" % rng.randrange(self.DEVICES)
                for what, ok in want.items():
                    st = req(self.d, "GET", "/v1/devices/%s/%s" % (dev, what))[0]
                    if st not in ok:
                        raise AssertionError("GET %s/%s: %d" % (dev, what, st))
                st = req(self.d, "POST", "/v1/devices/%s/model/retrain" % dev)[0]
                if st not in (202, 404, 409):
                    raise AssertionError("POST %s retrain: %d" % (dev, st))
                for path in ("/metrics", "/v1/anomalies?active=true"):
                    if req(self.d, "GET", path)[0] != 200:
                        raise AssertionError("GET %s" % path)
        except Exception as e:  # noqa: BLE001 (reported by the main thread)
            errors.append("poller: %r" % e)

    def test_scored_exactly_once_in_order(self):
        d = self.d
        barrier = threading.Barrier(self.DEVICES)
        errors = []
        threads = [threading.Thread(target=self.sender, args=(i, barrier, errors))
                   for i in range(self.DEVICES)]
        stop = threading.Event()
        pollers = [threading.Thread(target=self.poller, args=(stop, errors)) for _ in range(2)]
        t0 = time.monotonic()
        for t in threads + pollers:
            t.start()
        for t in threads:
            t.join(180)
        stop.set()
        for t in pollers:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads + pollers), "senders hung")
        self.assertEqual(errors, [])
        n = self.BATCHES * self.PER
        for i in range(self.DEVICES):
            dev = "ld-%02d" % i
            s = wait_scored(d, dev, n, timeout=120)
            self.assertEqual(s["readings_scored"], n, s)
            self.assertEqual(s["readings_not_scored_out_of_order"], 0, s)
            self.assertEqual(s["last_ts"], self.T0 + i + 1000 * (n - 1))
            preds = d.get_json("/v1/devices/%s/predictions?limit=%d" % (dev, n + 10))["points"]
            self.assertEqual([p["ts"] for p in preds], [self.T0 + i + 1000 * k for k in range(n)],
                             "%s: each reading scored once, in time order" % dev)
        sys.stderr.write("load: %d devices x %d readings scored in %.1fs\n"
                         % (self.DEVICES, n, time.monotonic() - t0))
        # Old timestamps (between stored ones, older than each device's newest): stored, not
        # scored.
        old_devs = ["ld-%02d" % i for i in range(5)]
        lines = []
        for i, dev in enumerate(old_devs):
            for k in (3, 100, n - 2):
                lines.append("load,device=%s a=%d,b=-1 %d" % (dev, 1000 + k, self.T0 + i + 1000 * k + 500))
        r = d.write_lp("\n".join(lines) + "\n", precision="ms")
        self.assertEqual(r.status, 204, r)
        for i, dev in enumerate(old_devs):
            s = wait_for("%s: 3 readings not scored" % dev,
                         lambda: (lambda s: s if s["readings_not_scored_out_of_order"] >= 3 else None)(
                             status(d, dev)), 30)
            self.assertEqual(s["readings_not_scored_out_of_order"], 3, s)
            self.assertEqual(s["readings_scored"], n, s)
            for k in (3, 100, n - 2):
                ts = self.T0 + i + 1000 * k + 500
                pts = d.readings(dev, **{"from": ts, "to": ts + 1})
                self.assertEqual([(p["ts"], p["values"]) for p in pts],
                                 [(ts, {"a": 1000.0 + k, "b": -1.0})])
        # Each device passed the warm-up, so trainings ran beside the scoring: each has a model.
        for i in range(self.DEVICES):
            wait_idle(d, "ld-%02d" % i, 1, timeout=180)
        text = d.metrics()
        self.assertGreaterEqual(vt.metric_in(text, "vigil_model_trainings_total", need=True),
                                self.DEVICES)
        self.assertEqual(vt.metric_in(text, "vigil_readings_scored_total", need=True),
                         self.DEVICES * n)
        self.assertEqual(vt.metric_in(text, "vigil_readings_not_scored_total", need=True),
                         3 * len(old_devs))


if __name__ == "__main__":
    vt.main()

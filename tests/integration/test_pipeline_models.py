#!/usr/bin/python3
"""vigild integration: the online anomaly pipeline's models (issue 4), end to end on the real
daemon; moved from test_pipeline.py (which keeps the faults, the restarts and the load).

1. Retrain and validation (Models): POST .../model/retrain -> 202 and a new version with its
   metrics; a candidate that validates worse (trained on another regime, validated on the one
   the serving model knows) is not swapped in; the serving flags follow `swapped`.
   A backfill sent in bulk to a new device is its first training's data (Models).
2. Rollback (Models): between two kept LSTM versions; 404 for an unknown version, 400 for a bad
   body (to a linear or persistence version: test_versions.py RollbackKinds).
3. PyTorch weights (Models): GET .../model/weights is safetensors with PyTorch names; weights
   made in torch and PUT serve, and the daemon's next predictions are torch's outputs for the
   same readings (float rounding apart).
4. Delete (DeleteDevice): DELETE /v1/devices/{id} makes the pipeline forget the device; the
   same id afterwards starts a new device from learning.
5. The forecast's interval_ms (ForecastInterval, session 47): the interval its steps use,
   printed exactly (an integer in whole ms, never in exponent form).

Python 3 standard library; test 3 also needs torch and numpy (python3-torch).
"""

import json
import math
import os
import random
import re
import sys
from decimal import Decimal

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from pipeline_fx import (  # noqa: E402
    CH3, check_versions, config_text, context_len, feed, HIDDEN, lstm_tensors, models, OMEGA_A,
    OMEGA_B, post_readings, put_weights, req, rotation, st_build, st_parse, status,
    torch_lstm_net, VAL_ROWS, wait_for, wait_idle, wait_scored)


# ============================================================================================
# 1-4. Retraining and validation, rollback, PyTorch weights; DELETE.
# ============================================================================================

class Models(vt.DaemonTestCase):
    # No scheduled retraining: every training after the first ones is asked for by the test,
    # so what a version was trained and validated on is known.
    CONFIG = config_text(0)

    def feed(self, device, rows, start_k, t0=1_700_000_000_000):
        return feed(self.d, device, rows, start_k, CH3, t0)

    def trained(self, device, rng, n=500):
        """A device that learned regime A from n readings (its first trainings done)."""
        self.feed(device, rotation(n, 0, OMEGA_A, 0.01, rng), 0)
        m = wait_idle(self.d, device, 1)
        s = status(self.d, device)
        self.assertNotEqual(s["state"], "learning", s)
        self.assertEqual(s["readings_scored"], n)
        return m

    def retrain(self, device):
        """POST retrain?force=true -> 202; waits for the new version; returns (GET model, new
        version). Forced: the other regimes and random weights these tests feed may hold an
        anomaly episode open (an unforced retrain is then 409 since session 65), and the tests
        mean the training (forced, such an episode ends "operator": "ended" in the answer)."""
        before = models(self.d, device)
        n0 = max([v["version"] for v in before["versions"]] or [0])
        r = self.d.curl("POST", "/v1/devices/%s/model/retrain?force=true" % device)
        self.assertEqual(r.status, 202, r)
        ans = r.json()
        self.assertEqual((ans["device"], ans["training"]), (device, "queued"), ans)
        self.assertEqual(ans.get("ended", {"ended_by": "operator"})["ended_by"], "operator", ans)

        def done():
            m = models(self.d, device)
            new = [v for v in m["versions"] if v["version"] > n0]
            return (m, new[0]) if new and not m["training"] else None
        return wait_for("a new version of %s" % device, done, 60)

    def test_predictions_actual_is_the_stored_reading(self):
        """The predictions' actual values are the stored readings, joined by timestamp: what was
        sent, null for a channel the reading lacked, the current value after an overwrite."""
        dev, rng = "join-1", random.Random(11)
        rows = rotation(40, 0, OMEGA_A, 0.01, rng)
        ts = self.feed(dev, rows, 0)
        # A reading without y: scored with y carried forward, and the status says so.
        t_gap = ts[-1] + 1000
        post_readings(self.d, dev, [[0.125, 2.5]], [t_gap], ["x", "z"])
        s = wait_scored(self.d, dev, 41)
        self.assertEqual(s["imputed_channels"], ["y"], s)
        path = "/v1/devices/%s/predictions?from=%d" % (dev, ts[0])
        preds = self.d.get_json(path)["points"]
        self.assertEqual([p["ts"] for p in preds], ts + [t_gap])
        for p, r in zip(preds, rows):
            self.assertEqual(p["actual"], dict(zip(CH3, r)), p)
            self.assertEqual(set(p["predicted"]), set(CH3))
        self.assertEqual(preds[-1]["actual"], {"x": 0.125, "y": None, "z": 2.5})
        # Overwrites (older than the newest: stored, not scored) show in the actual values;
        # the predictions stay.
        post_readings(self.d, dev, [[-7.5]], [ts[5]], ["y"])
        post_readings(self.d, dev, [[3.75]], [t_gap], ["y"])
        again = self.d.get_json(path)["points"]
        self.assertEqual(again[5]["actual"], {"x": rows[5][0], "y": -7.5, "z": rows[5][2]})
        self.assertEqual(again[-1]["actual"], {"x": 0.125, "y": 3.75, "z": 2.5})
        self.assertEqual([p["actual"] for p in again[:5]], [p["actual"] for p in preds[:5]])
        self.assertEqual([p["predicted"] for p in again], [p["predicted"] for p in preds])
        self.assertEqual(status(self.d, dev)["readings_scored"], 41)
        # A full reading: nothing imputed any more.
        post_readings(self.d, dev, [[0.25, 0.5, 2.0]], [t_gap + 1000], CH3)
        s = wait_scored(self.d, dev, 42)
        self.assertEqual(s["imputed_channels"], [], s)
        # A window inside the ring, with a limit: only its entries, each with its own reading.
        mid = self.d.get_json("/v1/devices/%s/predictions?from=%d&to=%d&limit=3"
                              % (dev, ts[10], ts[20]))["points"]
        self.assertEqual([p["ts"] for p in mid], ts[10:13])
        self.assertEqual([p["actual"] for p in mid], [dict(zip(CH3, r)) for r in rows[10:13]])
        empty = self.d.get_json("/v1/devices/%s/predictions?from=%d" % (dev, t_gap + 5000))
        self.assertEqual(empty["points"], [])

    def test_predictions_sealed_within_bound(self):
        """The prediction ring keeps its newest entries exactly and seals older ones in blocks
        of 64 (daemon/pipeline_ring.c): once sealed, an entry keeps its timestamp, score and
        state exactly and its predicted values within 1/131,070 of the channel's range over
        its block (plus float rounding), and the ring still answers every entry. The entries
        looked at are a model's: those of the readings scored while the device learned answer
        no prediction (null since session 66), whatever their sealed values."""
        dev, rng = "seal-1", random.Random(5)
        self.trained(dev, rng, 300)  # ring entries 0-299, blocks from entry 0
        ts = self.feed(dev, rotation(200, 300, OMEGA_A, 0.01, rng), 300)
        path = "/v1/devices/%s/predictions?from=%d&limit=100000" % (dev, ts[0])
        exact = self.d.get_json(path)["points"]  # entries 300-499: none sealed yet
        self.assertEqual([p["ts"] for p in exact], ts)
        ts += self.feed(dev, rotation(400, 500, OMEGA_A, 0.01, rng), 500)
        doc = self.d.get_json(path)
        later = doc["points"]
        self.assertEqual([p["ts"] for p in later], ts)
        self.assertEqual(doc["retained_from_ts"], ts[0] - 300 * 1000)
        changed = 0
        for b0 in (20, 84):  # entries 320-383 and 384-447: sealed blocks now, exact before
            block = exact[b0:b0 + 64]
            self.assertTrue(all(p["state"] != "learning" for p in block), block[:2])
            for ch in CH3:
                vals = [p["predicted"][ch] for p in block]
                bound = (max(vals) - min(vals)) / 131070.0
                for e, g in zip(block, later[b0:b0 + 64]):
                    self.assertEqual((g["ts"], g["score"], g["state"], g["actual"]),
                                     (e["ts"], e["score"], e["state"], e["actual"]))
                    want, got = e["predicted"][ch], g["predicted"][ch]
                    self.assertLessEqual(abs(got - want), bound + 2.5e-7 * abs(want),
                                         "%d %s: %r sealed as %r" % (e["ts"], ch, want, got))
                    changed += got != want
        # Sealed, not copied (else this test would not cover the sealed blocks).
        self.assertGreater(changed, 0)

    def test_retrain_validates_and_swaps_only_better(self):
        dev, rng = "val-1", random.Random(7)
        m0 = self.trained(dev, rng, 1000)
        check_versions(self, m0)
        v0 = m0["serving"]["version"]
        self.assertGreaterEqual(v0, 1)
        self.assertEqual(m0["serving"]["kind"], "linear", m0)  # a linear oscillator
        # A candidate that validates worse: 300 readings of another regime (fewer than the
        # detector's accept_after, so it does not ask for a training itself), then VAL_ROWS of
        # regime A again. The retraining holds out the newest VAL_ROWS (regime A) for
        # validation and trains on the rows before them, 300 of 1300 regime B, so its
        # candidates predict regime A worse than the serving model, fitted on regime A alone.
        self.feed(dev, rotation(300, 1000, OMEGA_B, 0.01, rng), 1000)
        self.feed(dev, rotation(VAL_ROWS, 1300, OMEGA_A, 0.01, rng), 1300)
        self.assertEqual(wait_idle(self.d, dev, 1)["versions"], m0["versions"],
                         "no training without a request (retrain_every = 0)")
        m1, v = self.retrain(dev)
        met = v["metrics"]
        self.assertFalse(v["swapped"], v)
        self.assertEqual(met["rows"], 1300, v)
        best = min(c for c in (met["val_mse_lstm"], met["val_mse_linear"],
                               met["val_mse_persistence"]) if c is not None)
        self.assertGreater(best, met["val_mse_serving_before"], v)
        self.assertGreater(met["epochs"], 0, v)
        self.assertFalse(v["serving"], v)
        self.assertEqual(m1["serving"]["version"], v0, m1)
        check_versions(self, m1)
        # The detector kept scoring with the version it had.
        k = 1300 + VAL_ROWS
        self.feed(dev, rotation(5, k, OMEGA_A, 0.01, rng), k)
        self.assertEqual(status(self.d, dev)["model"]["version"], v0)

        # A candidate that validates better is swapped in: a PUT installs an LSTM with random
        # weights, which predicts regime A badly; the next retraining's candidates do better
        # on the newest readings and one of them replaces it at once.
        doc = self.put_weights(dev, st_build(lstm_tensors(3, HIDDEN, 3, 99, scale=1.0))).json()
        vp = doc["versions"][0]["version"]
        self.assertEqual(status(self.d, dev)["model"], {"version": vp, "kind": "lstm"})
        self.feed(dev, rotation(100, k + 5, OMEGA_A, 0.01, rng), k + 5)
        self.assertEqual(status(self.d, dev)["model"], {"version": vp, "kind": "lstm"})
        m2, v2 = self.retrain(dev)
        self.assertTrue(v2["swapped"], v2)
        self.assertTrue(v2["serving"], m2)
        met = v2["metrics"]
        self.assertLess(met["val_mse_" + v2["kind"]], met["val_mse_serving_before"], v2)
        check_versions(self, m2)
        self.assertEqual(m2["serving"], {"version": v2["version"], "kind": v2["kind"],
                                         "predictors": v2["predictors"]}, m2)
        # The status names the new model as soon as it serves, before the next reading.
        s = status(self.d, dev)
        self.assertEqual(s["model"], {"version": v2["version"], "kind": v2["kind"]}, s)
        self.feed(dev, rotation(5, 1605, OMEGA_A, 0.01, rng), 1605)
        s = status(self.d, dev)
        self.assertEqual(s["model"], {"version": v2["version"], "kind": v2["kind"]}, s)

    def test_backfill_in_bulk_is_the_first_training(self):
        """Readings sent in bulk to a new device (a backfill of its history) all go into its
        first training, not the warm-up's WARMUP only: one version, trained on every reading but
        the validation tail, and nothing flagged on the healthy history."""
        dev, rng = "bulk-1", random.Random(5)
        n = 1500
        self.feed(dev, rotation(n, 0, OMEGA_A, 0.01, rng), 0)
        m = wait_idle(self.d, dev, 1)
        self.assertEqual(len(m["versions"]), 1, m)
        v = m["versions"][0]
        self.assertTrue(v["swapped"], v)
        # Trained on n - VAL_ROWS rows (1100); the warm-up alone would give WARMUP * 2 / 3.
        self.assertEqual(v["metrics"]["rows"], n - VAL_ROWS, v)
        check_versions(self, m)
        s = status(self.d, dev)
        self.assertEqual((s["state"], s["readings_scored"]), ("normal", n), s)
        # It scores the live readings that follow with that model, without false alarms.
        self.feed(dev, rotation(200, n, OMEGA_A, 0.01, rng), n)
        self.assertEqual(self.d.get_json("/v1/devices/%s/anomalies" % dev)["anomalies"], [])
        self.assertEqual(status(self.d, dev)["model"]["version"], v["version"])

    def test_weights_only_while_an_lstm_serves(self):
        """GET .../model/weights gives the serving LSTM; once a linear model serves again it is
        409, not the LSTM that served before."""
        dev, rng = "kind-1", random.Random(17)
        self.trained(dev, rng, 500)
        self.assertEqual(status(self.d, dev)["model"]["kind"], "linear")
        # It has a model (the linear one), so the answer says no LSTM serves, not that the
        # device is still learning (with model.kind auto every device starts so).
        r = self.d.curl("GET", "/v1/devices/%s/model/weights" % dev)
        self.assertJsonError(r, 409, "serves no LSTM")
        self.assertNotIn("still learning", r.json()["error"])
        self.put_weights(dev, st_build(lstm_tensors(3, HIDDEN, 3, 41, scale=1.0)))
        self.get_weights(dev)
        self.feed(dev, rotation(50, 500, OMEGA_A, 0.01, rng), 500)
        # The oscillator is linear: the linear candidate predicts it at the noise floor, which
        # the LSTM candidate cannot beat by the detector's margin; the random LSTM is far worse.
        m, v = self.retrain(dev)
        self.assertTrue(v["swapped"], v)
        self.assertEqual(v["kind"], "linear", v)
        self.assertTrue(v["rollback"], v)  # its coefficients are kept (session 44)
        self.assertEqual(status(self.d, dev)["model"], {"version": v["version"], "kind": "linear"})
        self.assertJsonError(self.d.curl("GET", "/v1/devices/%s/model/weights" % dev), 409)

    def test_retrain_errors(self):
        self.assertJsonError(self.d.curl("POST", "/v1/devices/nobody/model/retrain"), 404)
        post_readings(self.d, "few-1", [[1, 2, 3]] * 5, [1000 + k for k in range(5)], CH3)
        wait_scored(self.d, "few-1", 5)
        self.assertJsonError(self.d.curl("POST", "/v1/devices/few-1/model/retrain"), 409)
        self.assertJsonError(self.d.curl("GET", "/v1/devices/few-1/model/weights"), 409,
                             "has no model yet")
        self.assertJsonError(self.d.curl("GET", "/v1/devices/nobody/model"), 404)
        m = models(self.d, "few-1")
        self.assertEqual(m["versions"], [])
        self.assertEqual(m["state"], "learning")

    def put_weights(self, device, blob, want=200):
        return put_weights(self, device, blob, want)

    def get_weights(self, device):
        st, hdrs, body = req(self.d, "GET", "/v1/devices/%s/model/weights" % device)
        self.assertEqual(st, 200, body[:300])
        self.assertEqual(hdrs["content-type"], "application/octet-stream")
        return st_parse(body)

    def test_rollback_between_lstm_versions(self):
        dev, rng = "roll-1", random.Random(11)
        m = self.trained(dev, rng)
        lin = m["serving"]["version"]
        if m["serving"]["kind"] != "lstm":
            self.assertJsonError(self.d.curl("GET", "/v1/devices/%s/model/weights" % dev), 409)
        w1, w2 = lstm_tensors(3, HIDDEN, 3, 1), lstm_tensors(3, HIDDEN, 3, 2)
        doc1 = self.put_weights(dev, st_build(w1)).json()
        v1 = doc1["versions"][0]
        self.assertEqual((v1["kind"], v1["swapped"], v1["rollback"], v1["serving"]),
                         ("lstm", True, True, True), v1)
        self.assertGreater(v1["version"], lin)
        doc2 = self.put_weights(dev, st_build(w2)).json()
        v2 = doc2["versions"][0]
        self.assertEqual(v2["version"], v1["version"] + 1, doc2)
        self.assertTrue(v2["serving"] and v2["rollback"], v2)
        check_versions(self, doc2)
        got = self.get_weights(dev)
        self.assertEqual({k: v[2] for k, v in got.items()}, {k: v[1] for k, v in w2.items()})

        r = self.d.curl("POST", "/v1/devices/%s/model/rollback" % dev, "--data-binary",
                        json.dumps({"version": v1["version"]}))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"device": dev, "serving": v1["version"]})
        s = status(self.d, dev)
        self.assertEqual(s["model"], {"version": v1["version"], "kind": "lstm"}, s)
        mm = models(self.d, dev)
        self.assertEqual([v["version"] for v in mm["versions"] if v["serving"]], [v1["version"]])
        check_versions(self, mm)
        got = self.get_weights(dev)
        self.assertEqual({k: v[2] for k, v in got.items()}, {k: v[1] for k, v in w1.items()},
                         "the rolled-back version's weights serve again")
        # Scoring goes on with it.
        post_readings(self.d, dev, rotation(3, 500, OMEGA_A, 0.01, rng),
                      [1_700_000_000_000 + 1000 * k for k in range(500, 503)], CH3)
        s = wait_scored(self.d, dev, 503)
        self.assertEqual(s["model"], {"version": v1["version"], "kind": "lstm"}, s)

        # And forward again to the newer one.
        r = self.d.curl("POST", "/v1/devices/%s/model/rollback" % dev, "--data-binary",
                        '{"version": %d}' % v2["version"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(status(self.d, dev)["model"]["version"], v2["version"])

        # Errors: an unknown version, bad bodies, an unknown device. (The linear version is a
        # rollback target too since session 44: test_versions.py RollbackKinds.)
        r = self.d.curl("POST", "/v1/devices/%s/model/rollback" % dev, "--data-binary",
                        '{"version": 999}')
        self.assertJsonError(r, 404)
        self.assertEqual(r.json()["error"], "rollback: device '%s' keeps no version 999 that "
                         "served (GET .../model lists the versions kept; \"rollback\": true "
                         "marks those that can serve again)" % dev)
        for body in ("", "{}", "[1]", "nonsense", '{"version": "1"}', '{"version": 0}',
                     '{"version": -3}', '{"version": 1.5}', '{"version": 4294967296}'):
            self.assertJsonError(self.d.curl("POST", "/v1/devices/%s/model/rollback" % dev,
                                             "--data-binary", body), 400, "version")
        # Explore (session 41): an unknown device was "has no version 1 with kept weights".
        r = self.d.curl("POST", "/v1/devices/nobody/model/rollback", "--data-binary",
                        '{"version": 1}')
        self.assertJsonError(r, 404)
        self.assertEqual(r.json()["error"], "rollback: device 'nobody' is not known to the "
                         "pipeline (no readings yet?)")
        self.assertEqual(status(self.d, dev)["model"]["version"], v2["version"])

    def test_weights_put_errors(self):
        dev, rng = "wbad-1", random.Random(5)
        self.trained(dev, rng, 400)
        before = models(self.d, dev)
        self.put_weights(dev, b"not safetensors", 400)
        good = st_build(lstm_tensors(3, HIDDEN, 3, 3))
        self.put_weights(dev, good[:len(good) - 10], 400)  # truncated
        self.put_weights(dev, st_build(lstm_tensors(3, HIDDEN + 1, 3, 3)), 400)  # hidden size
        self.put_weights(dev, st_build(lstm_tensors(4, HIDDEN, 4, 3)), 400)  # channels
        # Each wrong file's 400 says what is wrong (session 67: every malformed file was "body
        # is not a valid safetensors file of an LSTM model", every shape "(channels or inputs)").
        bad = "body is not a valid safetensors file of an LSTM model: "

        def said(blob, msg):
            self.assertEqual(self.put_weights(dev, blob, 400).json()["error"], msg)
        t = lstm_tensors(3, HIDDEN, 3, 3)
        said(b"", bad + "0 bytes: shorter than a safetensors header's length (8 bytes)")
        said(b"PK\x03\x04" + b"\0" * 60, bad + "a zip file (torch.save's output?), not "
             "safetensors: save with safetensors.torch.save_file(model.state_dict(), path)")
        f64 = st_build(t).replace(b'"lstm.weight_hh_l0":{"dtype":"F32"',
                                  b'"lstm.weight_hh_l0":{"dtype":"F64"')
        said(f64, bad + "tensor 'lstm.weight_hh_l0': dtype F64, want F32 (call model.float() "
             "before saving)")
        said(st_build({"model." + k: v for k, v in t.items()}),
             bad + "no tensor 'lstm.weight_ih_l0' (found 'model.lstm.weight_ih_l0': save the "
             "state_dict of the module whose attributes are lstm and fc, so the names start "
             "with 'lstm.' and 'fc.')")
        fc_t = dict(t, **{"fc.weight": ([HIDDEN, 3], t["fc.weight"][1])})
        said(st_build(fc_t), bad + "tensor 'fc.weight': shape [%d,3], want [3,%d] (transposed: "
             "PyTorch keeps a weight as [out, in])" % (HIDDEN, HIDDEN))
        # A name given twice: its own reason (was "...: malformed", the reason left unsaid).
        dup = dict(t, **{"fc.weigh2": ([HIDDEN, 3], t["fc.weight"][1])})
        said(st_build(dup).replace(b'"fc.weigh2"', b'"fc.weight"'),
             bad + "tensor 'fc.weight': named twice in the header")
        # One tensor with and without the "lstm." prefix (read67c: the shape came from one,
        # the data from the other, whichever came last).
        alias = dict(t, **{"weight_ih_l0": t["lstm.weight_ih_l0"]})
        said(st_build(alias), bad + "tensors 'lstm.weight_ih_l0' and 'weight_ih_l0': one tensor "
             "given twice, with and without the 'lstm.' prefix")
        said(st_build(lstm_tensors(3, HIDDEN + 1, 3, 3)),
             "the weights' shape does not fit device '%s': device '%s' needs inputs 3, hidden "
             "%d, layers 1, outputs 3 (inputs and outputs: its channels in the order they first "
             "arrived; hidden: model.hidden when it began); the file has inputs 3, hidden %d, "
             "layers 1, outputs 3" % (dev, dev, HIDDEN, HIDDEN + 1))
        self.assertEqual(models(self.d, dev)["versions"], before["versions"])
        r = self.d.curl("PUT", "/v1/devices/nobody/model/weights", "--data-binary", "@-",
                        stdin=good)
        self.assertJsonError(r, 404)

    def test_pytorch_weights_serve(self):
        import numpy as np
        import torch
        torch.set_num_threads(1)
        dev, rng = "torch-1", random.Random(13)
        n0 = 500
        rows = rotation(n0, 0, OMEGA_A, 0.01, rng)
        self.feed(dev, rows, 0)
        wait_idle(self.d, dev, 1)
        # An LSTM must serve for GET to give its weights: install one, read the shapes back.
        self.put_weights(dev, st_build(lstm_tensors(3, HIDDEN, 3, 21)))
        got = self.get_weights(dev)
        for name in ("lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
                     "lstm.bias_hh_l0", "fc.weight", "fc.bias", "input_mean", "input_scale"):
            self.assertIn(name, got)
            self.assertEqual(got[name][0], "F32")
        G, I = got["lstm.weight_ih_l0"][1]
        O, H = got["fc.weight"][1]
        self.assertEqual((G, I, O, H), (4 * HIDDEN, 3, 3, HIDDEN))
        self.assertFalse(any(k.startswith("lstm.weight_ih_l1") for k in got))

        # The same module in torch with known weights, written with torch's state_dict names.
        torch.manual_seed(1234)
        net = torch_lstm_net(I, H, O)
        with torch.no_grad():
            for p in net.parameters():
                p.uniform_(-0.5, 0.5)
            net.input_mean.copy_(torch.tensor([0.05, -0.02, 2.0]))
            net.input_scale.copy_(torch.tensor([0.7, 0.7, 0.4]))
        tensors = {k: (list(v.shape), v.detach().contiguous().numpy().astype("<f4").tobytes())
                   for k, v in net.state_dict().items()}
        doc = self.put_weights(dev, st_build(tensors)).json()
        put_version = doc["versions"][0]["version"]
        self.assertTrue(doc["versions"][0]["serving"], doc)
        back = self.get_weights(dev)
        self.assertEqual({k: v[2] for k, v in back.items()}, {k: v[1] for k, v in tensors.items()})

        # New readings after the PUT; their predictions must be torch's.
        n1 = 70
        new = rotation(n1, n0, OMEGA_A, 0.01, rng)
        ts = self.feed(dev, new, n0)
        allrows = rows + new
        m = models(self.d, dev)
        self.assertEqual(m["versions"][0]["version"], put_version,
                         "no other model may serve during the comparison: %r" % m["versions"][0])
        preds = self.d.get_json("/v1/devices/%s/predictions?from=%d" % (dev, ts[0]))["points"]
        self.assertEqual([p["ts"] for p in preds], ts)
        x = torch.tensor(np.array(allrows, dtype=np.float32))
        worst = 0.0
        with torch.no_grad():
            for j, p in enumerate(preds):
                k = n0 + j  # the reading's index in the detector's sequence
                L = context_len(k)
                ref = net(x[k - L:k])[-1].numpy()
                for c, ch in enumerate(CH3):
                    got_v = p["predicted"][ch]
                    err = abs(got_v - float(ref[c]))
                    tol = 2e-5 * abs(float(ref[c])) + 2e-5 * float(net.input_scale[c])
                    worst = max(worst, err / tol)
                    self.assertLessEqual(err, tol, "reading %d (context %d) %s: vigild %r, torch "
                                         "%r" % (k, L, ch, got_v, float(ref[c])))
                self.assertEqual(p["actual"], dict(zip(CH3, allrows[k])))
        sys.stderr.write("torch: %d predictions x %d channels match (worst |diff|/tolerance "
                         "%.3f)\n" % (len(preds), len(CH3), worst))
        # And they are not what the model before the PUT would have said (the linear model
        # predicts this oscillator almost exactly; the random LSTM does not).
        far = max(abs(p["predicted"][ch] - p["actual"][ch]) for p in preds for ch in CH3)
        self.assertGreater(far, 0.1)


class ForecastInterval(vt.DaemonTestCase):
    """The forecast's interval_ms is the interval its steps are spaced by, as printed: rounded
    to the microsecond below 10 s and to the millisecond from 10 s (an integer then, never in
    exponent form), step k at from_ts + k x interval_ms, rounded down (session 47; before, it
    was printed to 7 significant digits, 1.08e+07 for readings 10,800,001 ms apart)."""

    CONFIG = "[model]\nwarmup = 60\nhidden = 4\nretrain_every = 0\n"

    def forecast(self, dev, gaps, t0=1_600_000_000_000):
        """Feeds dev 120 readings with explicit ts, the k-th gap gaps[k % len(gaps)] ms; waits
        for its first model; returns (forecast document, its raw body)."""
        ts, rows = t0, []
        for i in range(120):
            rows.append({"device": dev, "ts": ts, "values": {"a": math.sin(i / 7), "b": i % 5}})
            ts += gaps[i % len(gaps)]
        r = self.d.post_json(rows)
        self.assertEqual(r.status, 200, r)
        wait_for("a model of " + dev, lambda: models(self.d, dev)["versions"], 120)
        st, _, body = self.d.get("/v1/devices/%s/forecast?horizon=100" % dev)
        self.assertEqual(st, 200, body)
        doc = vt.loads(body)
        self.assertEqual(doc["from_ts"], rows[-1]["ts"])
        # Every step where k times the printed interval puts it (exact decimal arithmetic).
        iv = Decimal(repr(doc["interval_ms"]))
        self.assertEqual([s["ts"] for s in doc["steps"]],
                         [doc["from_ts"] + int(k * iv) for k in range(1, 101)])
        body = body.decode() if isinstance(body, bytes) else body
        return doc, re.search(r'"interval_ms":([^,]*),', body).group(1)

    def test_hours_apart_printed_whole(self):
        doc, text = self.forecast("fi-3h", [10_800_001])
        self.assertEqual(text, "10800001")
        # Uneven hours: the running average's fraction of a ms is not kept.
        doc, text = self.forecast("fi-3h-uneven", [10_800_000, 10_800_003])
        self.assertRegex(text, r"^1080000[0-3]$")

    def test_daily_printed_whole(self):
        self.assertEqual(self.forecast("fi-day", [86_400_000])[1], "86400000")

    def test_seconds_apart_to_the_microsecond(self):
        doc, text = self.forecast("fi-1s", [1000, 1003])
        self.assertRegex(text, r"^100[0-2]\.[0-9]{1,3}$")
        self.assertEqual(self.forecast("fi-even", [1000])[1], "1000")


class DeleteDevice(vt.DaemonTestCase):
    """DELETE /v1/devices/{id} makes the pipeline forget the device: its pipeline endpoints are
    404s, /metrics no longer lists it, and readings sent to the same id afterwards, whatever
    their timestamps, start a new device from learning (before: the old detector kept serving
    and refused them as older than its newest reading)."""

    CONFIG = config_text(0, warmup=60, hidden=4)

    def test_delete_then_reuse_the_id(self):
        d, dev, t0 = self.d, "del-1", 1000000
        r = d.post_json([{"device": dev, "ts": t0 + 1000 * i, "values": {"a": math.sin(i / 5)}}
                         for i in range(100)])
        self.assertEqual(r.status, 200, r)
        wait_scored(d, dev, 100)
        wait_for("a first model", lambda: models(d, dev)["versions"], 60)
        self.assertEqual(d.curl("DELETE", "/v1/devices/%s" % dev).status, 200)
        for ep in ("status", "predictions", "forecast", "anomalies", "model"):
            with self.subTest(ep=ep):
                self.assertJsonError(d.curl("GET", "/v1/devices/%s/%s" % (dev, ep)), 404)
        st, _, body = req(d, "GET", "/metrics")
        self.assertNotIn('device="%s"' % dev, body.decode())
        # The same id again, with other channels and older timestamps: a new device.
        r = d.post_json([{"device": dev, "ts": t0 + 1000 * i, "values": {"b": math.cos(i / 5)}}
                         for i in range(30)])
        self.assertEqual(r.status, 200, r)
        s = wait_scored(d, dev, 30)
        self.assertEqual(s["readings_scored"], 30, s)
        self.assertEqual(s["readings_not_scored_out_of_order"], 0, s)
        self.assertEqual(s["state"], "learning", s)
        self.assertEqual(set(s["latest"]), {"b"}, s)
        self.assertEqual(models(d, dev)["versions"], [])
        self.assertEqual(d.get_json("/v1/devices/%s/anomalies" % dev)["anomalies"], [])


if __name__ == "__main__":
    vt.main()

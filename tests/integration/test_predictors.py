#!/usr/bin/python3
"""vigild integration: what predicts each channel, said where a user looks (read69b 1, 4, 5).

1. Predictors: a channel flat in training is predicted by persistence, and the versions list
   (each version's "predictors"), GET .../model ("serving"."predictors") and the status
   ("predictors") say so by channel name. A PUT of weights serves the operator's module on every
   channel: its answer says "model" for each, and the next predictions are the module's, run in
   PyTorch over the documented contexts, on the flat channel too (before session 69 the
   per-channel choice survived the PUT: that channel stayed persistence). The PUT's version has
   null figures (not 0.0) and a "decision" saying it was PUT; a trained one says why it serves.
2. Weight files: a value not finite names its tensor; input_mean without input_scale (or the
   reverse) says "both or neither"; a tensor vigild does not use is accepted with a "warnings"
   entry naming it.

Python 3 standard library; test 1 also needs torch and numpy (python3-torch).
"""

import math
import os
import random
import struct
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from pipeline_fx import (  # noqa: E402
    check_versions, config_text, context_len, HIDDEN, lstm_tensors, models, OMEGA_A,
    post_readings, rotation, st_build, status, wait_idle, wait_scored)

CH4 = ["x", "y", "z", "sp"]  # sp: a set point held at 1.0 (flat in training)


def rows4(n, start, rng):
    return [r + [1.0] for r in rotation(n, start, OMEGA_A, 0.01, rng)]


class Predictors(vt.DaemonTestCase):
    CONFIG = config_text(0)

    def feed(self, device, rows, start_k, t0=1_700_000_000_000):
        ts = [t0 + 1000 * k for k in range(start_k, start_k + len(rows))]
        post_readings(self.d, device, rows, ts, CH4)
        wait_scored(self.d, device, start_k + len(rows))
        return ts

    def put_weights(self, device, blob, want=200):
        r = self.d.curl("PUT", "/v1/devices/%s/model/weights" % device,
                        "-H", "Content-Type: application/octet-stream", "--data-binary", "@-",
                        stdin=blob)
        self.assertEqual(r.status, want, r)
        return r

    def test_flat_channel_then_put_serves_every_channel(self):
        import numpy as np
        import torch
        from torch import nn
        torch.set_num_threads(1)
        dev, rng = "pred-1", random.Random(29)
        n0 = 500
        rows = rows4(n0, 0, rng)
        self.feed(dev, rows, 0)
        m = wait_idle(self.d, dev, 1)
        v1 = m["versions"][0]
        # sp, flat in training, is predicted by persistence; the oscillator's channels by the
        # model or by their seasonal profile (period 40, model.season_bins).
        want = v1["predictors"]
        self.assertEqual(want["sp"], "persistence", v1)
        self.assertEqual(sorted(want), sorted(CH4), v1)
        for ch in ("x", "y", "z"):
            self.assertIn(want[ch], ("model", "seasonal profile"), v1)
        self.assertEqual(m["serving"]["predictors"], want, m["serving"])
        self.assertEqual(status(self.d, dev)["predictors"], want)
        self.assertTrue(v1["decision"].startswith("first training"), v1)
        for k in ("val_mse_lstm_alone", "val_mse_linear_alone"):
            self.assertIn(k, v1["metrics"], v1)
        check_versions(self, m)

        I, H = len(CH4), HIDDEN

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(I, H, 1)
                self.fc = nn.Linear(H, I)
                self.register_buffer("input_mean", torch.zeros(I))
                self.register_buffer("input_scale", torch.ones(I))

            def forward(self, x):  # x: [T, I] raw -> [T, I] raw predictions of the next row
                z = (x - self.input_mean) / self.input_scale
                h, _ = self.lstm(z.unsqueeze(1))
                return self.fc(h.squeeze(1)) * self.input_scale + self.input_mean

        torch.manual_seed(4321)
        net = Net()
        with torch.no_grad():
            for p in net.parameters():
                p.uniform_(-0.5, 0.5)
            net.input_mean.copy_(torch.tensor([0.0, 0.0, 2.0, 1.0]))
            net.input_scale.copy_(torch.tensor([0.7, 0.7, 0.4, 0.5]))
        tensors = {k: (list(v.shape), v.detach().contiguous().numpy().astype("<f4").tobytes())
                   for k, v in net.state_dict().items()}
        doc = self.put_weights(dev, st_build(tensors)).json()
        every = dict.fromkeys(CH4, "model")
        self.assertEqual(doc["serving"]["predictors"], every, doc["serving"])
        self.assertNotIn("warnings", doc)
        put = doc["versions"][0]
        self.assertTrue(put["serving"], put)
        self.assertEqual(put["predictors"], every, put)
        self.assertTrue(put["decision"].startswith("weights PUT by the operator"), put)
        for k in ("val_mse_lstm", "val_mse_linear", "val_mse_persistence",
                  "val_mse_serving_before", "val_mse_lstm_alone", "val_mse_linear_alone",
                  "epochs", "rows", "train_seconds"):
            self.assertIsNone(put["metrics"][k], put)
        self.assertEqual(status(self.d, dev)["predictors"], every)
        check_versions(self, models(self.d, dev))

        n1 = 70
        new = rows4(n1, n0, rng)
        ts = self.feed(dev, new, n0)
        self.assertEqual(models(self.d, dev)["versions"][0]["version"], put["version"])
        preds = self.d.get_json("/v1/devices/%s/predictions?from=%d" % (dev, ts[0]))["points"]
        self.assertEqual([p["ts"] for p in preds], ts)
        x = torch.tensor(np.array(rows + new, dtype=np.float32))
        moved = 0.0
        with torch.no_grad():
            for j, p in enumerate(preds):
                k = n0 + j
                ref = net(x[k - context_len(k):k])[-1].numpy()
                for c, ch in enumerate(CH4):
                    got = p["predicted"][ch]
                    tol = 2e-5 * abs(float(ref[c])) + 2e-5 * float(net.input_scale[c])
                    self.assertLessEqual(abs(got - float(ref[c])), tol,
                                         "reading %d %s: vigild %r, torch %r"
                                         % (k, ch, got, float(ref[c])))
                moved = max(moved, abs(p["predicted"]["sp"] - 1.0))
        # The flat channel's prediction is the module's, not the last reading (1.0).
        self.assertGreater(moved, 0.01)

    def test_weight_file_errors_name_the_tensor(self):
        dev, rng = "pred-2", random.Random(31)
        self.feed(dev, rows4(400, 0, rng), 0)
        wait_idle(self.d, dev, 1)
        bad = "body is not a valid safetensors file of an LSTM model: "
        t = lstm_tensors(4, HIDDEN, 4, 7)

        def with_value(name, i, value):
            shape, data = t[name]
            b = bytearray(data)
            b[4 * i:4 * i + 4] = struct.pack("<f", value)
            return dict(t, **{name: (shape, bytes(b))})

        def said(tensors, msg):
            r = self.put_weights(dev, st_build(tensors), 400)
            self.assertEqual(r.json()["error"], bad + msg)
        for name, i, value in (("lstm.weight_hh_l0", 5, math.nan), ("fc.bias", 2, math.inf),
                               ("input_mean", 0, math.nan), ("input_scale", 3, -math.inf)):
            said(with_value(name, i, value),
                 "tensor '%s': a value that is not finite (NaN or infinity)" % name)
        said({k: v for k, v in t.items() if k != "input_scale"},
             "tensor 'input_mean' without 'input_scale': give both (the module's normalisation "
             "buffers) or neither (the inputs are then used as they are)")
        said({k: v for k, v in t.items() if k != "input_mean"},
             "tensor 'input_scale' without 'input_mean': give both (the module's normalisation "
             "buffers) or neither (the inputs are then used as they are)")
        # Neither: accepted, no warning.
        doc = self.put_weights(dev, st_build({k: v for k, v in t.items()
                                              if not k.startswith("input_")})).json()
        self.assertNotIn("warnings", doc)
        # A tensor vigild does not use: accepted, named in "warnings".
        extra = dict(t, **{"extra": ([2], struct.pack("<2f", 1.0, 2.0))})
        doc = self.put_weights(dev, st_build(extra)).json()
        self.assertEqual(doc["warnings"], ["tensor 'extra' is not part of the LSTM model vigild "
                                           "serves: not used"])
        two = dict(extra, **{"lstm.weight_ih_l7": ([2], struct.pack("<2f", 1.0, 2.0))})
        doc = self.put_weights(dev, st_build(two)).json()
        self.assertEqual(len(doc["warnings"]), 1, doc)
        self.assertIn("and 1 more are not part of the LSTM model", doc["warnings"][0])


if __name__ == "__main__":
    vt.main()

"""Helpers of the pipeline tests (test_pipeline.py, test_pipeline_models.py), imported by the
other integration tests as `tp` (import pipeline_fx as tp): the small model's configuration,
HTTP helpers, bounded waits, the rotation readings, safetensors, the LSTM's context length,
the validation tail, and DaemonPerTest (a daemon per test). Moved whole from test_pipeline.py.
"""

import json
import math
import os
import random
import re
import shutil
import struct
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402


PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def sim_path():
    p = os.environ.get("VIGIL_SIM")
    if p:
        return os.path.abspath(p)
    return os.path.join(os.path.dirname(vt.VIGILD), "vigil-sim")


# Small model settings so trainings are quick and the schedule is short.
WARMUP = 300
HIDDEN = 8


def config_text(retrain_every, warmup=WARMUP, hidden=HIDDEN, extra=""):
    return ("[model]\nwarmup = %d\nretrain_every = %d\nhidden = %d\n%s"
            % (warmup, retrain_every, hidden, extra))


def make_config(text):
    return vt.write_file(os.path.join(vt.mkdtemp(), "vigild.conf"), text)


# ---- HTTP helpers (http.client: faster than curl for many small requests) ------------------

def req(d, method, path, body=None, headers=None):
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        headers = dict(headers or {}, **{"Content-Type": "application/json"})
    if isinstance(body, str):
        body = body.encode()
    return vt.http_request(method, d.url(path), body=body, headers=headers, timeout=60)


def jreq(d, method, path, body=None, want=200):
    st, _, data = req(d, method, path, body)
    if st != want:
        raise AssertionError("%s %s: %d, want %d: %r" % (method, path, st, want, data[:500]))
    return vt.loads(data) if data else None


# A retrain merged into a training queued or running (api/model_routes.c's fail, ERR_BUSY): the
# 409 a test of merging expects, not the open episode's (session 65) or "no model yet".
MERGED = "is already queued or running"


def retrain(d, dev, query="", want=(202, 409)):
    """POSTs an operator's retrain of dev (query: "?force=true" or ""); asserts its status is in
    want and that a 409 is the "already queued or running" one (session 66: the tests of merging
    checked the status alone, which an open episode's 409 passes too). Returns the status."""
    st, _, data = req(d, "POST", "/v1/devices/%s/model/retrain%s" % (dev, query))
    if st not in want or (st == 409 and MERGED not in vt.loads(data).get("error", "")):
        raise AssertionError("POST %s retrain%s: %d, want %s (409: %r): %r"
                             % (dev, query, st, want, MERGED, data[:500]))
    return st


def post_readings(d, device, rows, ts, channels):
    """POSTs rows (lists of floats) at timestamps ts as JSON readings; asserts 200."""
    items = [{"device": device, "ts": t, "values": dict(zip(channels, r))}
             for t, r in zip(ts, rows)]
    for i in range(0, len(items), 5000):
        jreq(d, "POST", "/v1/readings", items[i:i + 5000])


def status(d, device, want=200):
    return jreq(d, "GET", "/v1/devices/%s/status" % vt.quote(device), want=want)


def models(d, device):
    return jreq(d, "GET", "/v1/devices/%s/model" % vt.quote(device))


def logged(d, pattern, n, timeout=10):
    """re.findall(pattern, d.log()) once it has n matches or more, else as it is after timeout
    seconds (the caller's assertion then says what it has). A shard writes an episode's or a
    limit's line just after it lets the device go (task ops68: not while holding it), so the line
    can follow by a moment what the status, the listings and the stream already show."""
    deadline = time.monotonic() + timeout
    while True:
        found = re.findall(pattern, d.log())
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def wait_for(what, fn, timeout):
    """Polls fn() until it returns a true value (returned); fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except AssertionError as e:
            last = e
            if time.monotonic() > deadline:
                raise
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(0.05)


def wait_scored(d, device, n, timeout=60):
    """Waits until the device's readings_scored reaches n; returns its status."""
    def done():
        st, _, body = req(d, "GET", "/v1/devices/%s/status" % vt.quote(device))
        if st != 200:
            return None
        s = vt.loads(body)
        return s if s.get("readings_scored", 0) >= n else None
    return wait_for("%s to score %d readings" % (device, n), done, timeout)


def feed(d, device, rows, start_k, channels, t0=1_700_000_000_000):
    """Posts rows as readings start_k.. of device, 1 s apart from t0, and waits until all are
    scored; returns their timestamps."""
    ts = [t0 + 1000 * k for k in range(start_k, start_k + len(rows))]
    post_readings(d, device, rows, ts, channels)
    wait_scored(d, device, start_k + len(rows))
    return ts


def put_weights(tc, device, blob, want=200):
    """PUT .../model/weights with blob (safetensors bytes) through tc's daemon (curl); asserts
    the status want and returns the answer."""
    r = tc.d.curl("PUT", "/v1/devices/%s/model/weights" % device,
                  "-H", "Content-Type: application/octet-stream", "--data-binary", "@-",
                  stdin=blob)
    tc.assertEqual(r.status, want, r)
    return r


def wait_idle(d, device, min_versions=1, timeout=60):
    """Waits until the device has at least min_versions versions and no training runs."""
    def done():
        m = models(d, device)
        return m if len(m["versions"]) >= min_versions and not m["training"] else None
    return wait_for("%s: %d versions, no training" % (device, min_versions), done, timeout)


def wait_jobs_over(d, device, timeout=60):
    """Waits until no training job is queued or ending and device shows none: GET .../model
    lists a training's version with "training": false a few ms before its job ends, and a
    retrain then is 409, merged (operator.md; session 69: tests that retrained right after
    wait_idle failed under load)."""
    return wait_for("no training job queued or ending", lambda: (
        d.metric("vigil_train_queue_jobs") == 0
        and d.metric("vigil_train_jobs_ended_total") >= d.metric("vigil_train_jobs_taken_total")
        and not models(d, device)["training"]) or None, timeout)


def rotation(n, start, omega, noise, rng, amp=1.0):
    """A 3-channel linear oscillator (x, y, and z = 0.5x + 0.3y + 2) with a little noise: the
    linear model predicts it almost perfectly, persistence does not."""
    rows = []
    for k in range(start, start + n):
        x = amp * math.sin(omega * k) + rng.gauss(0, noise)
        y = amp * math.cos(omega * k) + rng.gauss(0, noise)
        rows.append([round(x, 6), round(y, 6), round(0.5 * x + 0.3 * y + 2 + rng.gauss(0, noise), 6)])
    return rows


CH3 = ["x", "y", "z"]


def check_versions(tc, doc):
    """Invariants of GET .../model: exactly one version serves and it is the top-level serving
    version; a trained version swapped in iff its candidate validated better than what served
    (val cost of the kind now serving < val_mse_serving_before), and a version not swapped in
    has no candidate better than what served. Versions made by a PUT of weights (no training:
    epochs and rows null since session 69, 0 before) only need swapped and rollback."""
    vs = doc["versions"]
    serving = [v for v in vs if v["serving"]]
    tc.assertEqual(len(serving), 1, "exactly one serving version: %r" % vs)
    tc.assertEqual(serving[0]["version"], doc["serving"]["version"], doc)
    tc.assertEqual(serving[0]["kind"], doc["serving"]["kind"], doc)
    tc.assertEqual([v["version"] for v in vs], sorted((v["version"] for v in vs), reverse=True))
    for v in vs:
        m = v["metrics"]
        for k in ("val_mse_lstm", "val_mse_linear", "val_mse_persistence", "val_mse_serving_before",
                  "epochs", "rows", "train_seconds", "train_loss", "val_loss"):
            tc.assertIn(k, m, v)
        if m["epochs"] is None and m["rows"] is None:  # a PUT of weights
            tc.assertTrue(v["swapped"], v)
            tc.assertEqual(v["kind"], "lstm", v)
            continue
        tc.assertEqual(len(m["train_loss"]), min(m["epochs"], 64), v)
        before = m["val_mse_serving_before"]
        costs = {"lstm": m["val_mse_lstm"], "linear": m["val_mse_linear"],
                 "persistence": m["val_mse_persistence"]}
        cands = [c for c in costs.values() if c is not None]
        if v["swapped"]:
            if before is not None:
                tc.assertLess(costs[v["kind"]], before, "swapped in without validating better: %r" % v)
        else:
            tc.assertIsNotNone(before, v)
            tc.assertGreaterEqual(min(cands), before,
                                  "a better candidate was not swapped in: %r" % v)
        if v["rollback"]:  # every version that served keeps what serves again (session 44)
            tc.assertTrue(v["swapped"], v)


# ---- safetensors by hand (8-byte LE header length, JSON header, raw LE tensors) -------------

def st_parse(buf):
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], buf[8 + n + b:8 + n + e])
    return out


def st_build(tensors):
    """tensors: {name: (shape, bytes of little-endian float32)}."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (shape, data) in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def lstm_tensors(I, H, O, seed, scale=0.4):
    """A random 1-layer LSTM + head in PyTorch's names, with a non-trivial standardisation."""
    rng = random.Random(seed)

    def rnd(n):
        return struct.pack("<%df" % n, *[rng.uniform(-scale, scale) for _ in range(n)])
    return {
        "lstm.weight_ih_l0": ([4 * H, I], rnd(4 * H * I)),
        "lstm.weight_hh_l0": ([4 * H, H], rnd(4 * H * H)),
        "lstm.bias_ih_l0": ([4 * H], rnd(4 * H)),
        "lstm.bias_hh_l0": ([4 * H], rnd(4 * H)),
        "fc.weight": ([O, H], rnd(O * H)),
        "fc.bias": ([O], rnd(O)),
        "input_mean": ([I], struct.pack("<%df" % I, *[0.1 * (i + 1) for i in range(I)])),
        "input_scale": ([I], struct.pack("<%df" % I, *[0.8 + 0.3 * i for i in range(I)])),
    }


def torch_lstm_net(I, H, O):
    """A torch module as vigild reads one (docs/operator.md, "Bringing a model from PyTorch"):
    lstm and fc, and the input_mean and input_scale buffers; forward takes raw readings [T, I]
    and gives the raw predictions of the next reading [T, O]. Needs torch (python3-torch)."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(I, H, 1)
            self.fc = nn.Linear(H, O)
            self.register_buffer("input_mean", torch.zeros(I))
            self.register_buffer("input_scale", torch.ones(I))

        def forward(self, x):
            z = (x - self.input_mean) / self.input_scale
            h, _ = self.lstm(z.unsqueeze(1))
            return self.fc(h.squeeze(1)) * self.input_scale[:O] + self.input_mean[:O]
    return Net()


# The detector's LSTM runs two states staggered by half its training window T (32), each
# restarted from zero every T readings; the prediction for reading k (0-based, counting every
# reading the device's detector consumed) comes from the state that has consumed readings
# k-L .. k-1 with L = p + 1 if p >= T/2 else p + 1 + T/2, p = (k - 1) mod T (model/detector.c).
WINDOW = 32


def context_len(k):
    p = (k - 1) % WINDOW
    return p + 1 if p >= WINDOW // 2 else p + 1 + WINDOW // 2


# The detector's validation tail (detector_config_default's val_rows): a training holds out
# the newest VAL_ROWS readings to choose the serving predictor.
VAL_ROWS = 400
OMEGA_A = 2 * math.pi / 40  # the regime the serving model learns
OMEGA_B = 2 * math.pi / 9   # another one


class DaemonPerTest(unittest.TestCase):
    CONFIG = config_text(0)

    def setUp(self):
        self.d = vt.Vigild(config=make_config(self.CONFIG))
        self.d.start()

    def tearDown(self):
        self.d.stop()  # SIGTERM: a clean exit (0) and no sanitizer report in the log

    def run(self, result=None):
        before = (len(result.failures), len(result.errors)) if result else (0, 0)
        out = super().run(result)
        if result is not None and (len(result.failures), len(result.errors)) != before:
            sys.stderr.write("\n%s\n" % self.d.log())
        if hasattr(self, "d"):
            self.d.cleanup()
        return out

    def feed(self, device, rows, start_k, t0=1_700_000_000_000, wait=True):
        ts = [t0 + 1000 * k for k in range(start_k, start_k + len(rows))]
        post_readings(self.d, device, rows, ts, CH3)
        if wait:
            wait_scored(self.d, device, start_k + len(rows))
        return ts


class Holds:
    """A mixin before DaemonPerTest (or a subclass of it): vigild with the test hold points
    (common/testhold.h) in a directory of the test's own, self.holds. With VIGIL_TEST_HOLD_DIR
    set, a thread reaching a point waits while the file of the point's name exists there,
    "<point>.held" existing meanwhile (a stop ends every wait). Holds order vigild's work where
    timing would not."""

    def setUp(self):
        self.holds = vt.mkdtemp()
        self.d = vt.Vigild(config=make_config(self.CONFIG),
                           prefix=["env", "VIGIL_TEST_HOLD_DIR=" + self.holds])
        self.d.start()

    def tearDown(self):
        # A test that failed while holding leaves no thread waiting out the stop.
        self.release_all()
        super().tearDown()

    def release_all(self):
        """Removes every hold file: whatever waits at a point goes on."""
        for name in os.listdir(self.holds):
            if not name.endswith(".held"):
                os.unlink(os.path.join(self.holds, name))

    def hold(self, point):
        vt.write_file(os.path.join(self.holds, point), "")

    def release(self, point):
        os.unlink(os.path.join(self.holds, point))

#!/usr/bin/python3
"""Parity of vigil's LSTM engine (model/) with PyTorch's nn.LSTM + nn.Linear.

Run by CTest as `/usr/bin/python3 test_parity.py PATH/TO/model_parity_tool`. It fails (never
skips) when torch is missing: CI installs python3-torch.

1. vigil -> torch: a model created by vigil is exported to safetensors, loaded into torch with
   load_state_dict(strict=True), and both run the same 200-step sequence (vigil with its
   incremental step, and with its batched step); every output must match within 1e-5 relative
   (|a - b| <= 1e-5 * |b| + 1e-5 * scale_j, the second term being 1e-5 of the channel's scale,
   so outputs that cross zero are compared in the model's own units).
2. torch -> vigil: a model trained in torch (Adam, a few dozen steps) is written by torch's
   state_dict() names, imported by vigil and compared the same way; also with the bare
   nn.LSTM names (no "lstm." prefix) and no standardisation tensors.
3. training: both take the same Adam steps (with gradient clipping, then with Huber loss) from
   the same initial weights on the same windows; losses must agree within 1e-5 relative and
   every weight within 1e-5 + 1e-4 relative.
4. corrupt and truncated safetensors files make vigil exit with an error, never a crash.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
from torch import nn

TOOL = sys.argv[1] if len(sys.argv) > 1 else "build/model_parity_tool"
torch.set_num_threads(1)
failures = []


def check(cond, msg):
    print(("ok    " if cond else "FAIL  ") + msg, flush=True)
    if not cond:
        failures.append(msg)


class Net(nn.Module):
    """The PyTorch twin of a vigil model: standardise, nn.LSTM, nn.Linear, de-standardise."""

    def __init__(self, I, O, H, L):
        super().__init__()
        self.lstm = nn.LSTM(I, H, L)  # time-major: [T, B, I]
        self.fc = nn.Linear(H, O)
        self.register_buffer("input_mean", torch.zeros(I))
        self.register_buffer("input_scale", torch.ones(I))
        self.O = O

    def forward_std(self, z):
        h, _ = self.lstm(z)
        return self.fc(h)

    def forward(self, x):
        z = (x - self.input_mean) / self.input_scale
        y = self.forward_std(z)
        return y * self.input_scale[: self.O] + self.input_mean[: self.O]


def st_write(path, tensors):
    header, data, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy().astype("<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        data.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(data))


def st_read(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    base, out = 8 + n, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        b, e = info["data_offsets"]
        out[name] = torch.from_numpy(
            np.frombuffer(buf[base + b : base + e], dtype="<f4").reshape(info["shape"]).copy()
        )
    return out


def net_from_file(path):
    sd = st_read(path)
    G, I = sd["lstm.weight_ih_l0"].shape
    O = sd["fc.weight"].shape[0]
    L = sum(1 for k in sd if k.startswith("lstm.weight_ih_l"))
    net = Net(I, O, G // 4, L)
    net.load_state_dict(sd, strict=True)
    return net


def tool(*args, check_rc=True):
    r = subprocess.run([TOOL] + [str(a) for a in args], capture_output=True, text=True)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({r.returncode}): {r.stderr}")
    return r


def compare_outputs(name, got, ref, scale):
    err = np.abs(got - ref)
    bound = 1e-5 * np.abs(ref) + 1e-5 * scale[None, :]
    rel = np.max(err / np.maximum(np.abs(ref), 1e-30))
    check(bool(np.all(err <= bound)),
          f"{name}: {ref.size} outputs, max |diff| {err.max():.3g}, "
          f"max |diff|/|ref| {rel:.3g}, max |diff|/bound {np.max(err / bound):.3g}")


def run_vigil_forward(model_path, seq, O, batch=1):
    d = tempfile.mkdtemp()
    sp, pp = os.path.join(d, "seq.f32"), os.path.join(d, "pred.f32")
    seq.astype("<f4").tofile(sp)
    tool("forward", model_path, sp, seq.shape[0], pp, *([batch] if batch > 1 else []))
    return np.fromfile(pp, dtype="<f4").reshape(seq.shape[0], O)


def torch_forward(net, seq):
    with torch.no_grad():
        return net(torch.from_numpy(seq)[:, None, :])[:, 0, :].numpy()


def test_vigil_to_torch(tmp):
    I, O, L, H, T = 8, 5, 2, 32, 200
    path = os.path.join(tmp, "vigil.safetensors")
    tool("create", I, O, L, H, 42, path)
    net = net_from_file(path)
    rng = np.random.default_rng(1)
    mean, scale = net.input_mean.numpy(), net.input_scale.numpy()
    seq = (mean + scale * np.cumsum(rng.normal(0, 0.3, (T, I)), axis=0)).astype(np.float32)
    ref = torch_forward(net, seq)
    compare_outputs("vigil->torch, incremental step", run_vigil_forward(path, seq, O), ref,
                    scale[:O])
    compare_outputs("vigil->torch, batched step (B=4)", run_vigil_forward(path, seq, O, 4), ref,
                    scale[:O])


def train_torch(net, windows, lr, clip, huber, steps=None):
    """Adam steps on [steps, nb, T+1, I] raw windows, as vigil's trainer; returns the losses."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    lossf = nn.HuberLoss(delta=huber) if huber > 0 else nn.MSELoss()
    O, losses = net.O, []
    for w in windows:
        x = torch.from_numpy(w).transpose(0, 1)  # [T+1, nb, I]
        z = (x - net.input_mean) / net.input_scale
        y = net.forward_std(z[:-1])
        loss = lossf(y, z[1:, :, :O])
        opt.zero_grad()
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()
        losses.append(loss.item())
    return np.array(losses, dtype=np.float32)


def test_torch_to_vigil(tmp):
    I, O, L, H, T = 6, 6, 3, 24, 200
    torch.manual_seed(3)
    net = Net(I, O, H, L)
    rng = np.random.default_rng(2)
    net.input_mean.copy_(torch.from_numpy(rng.normal(0, 20, I).astype(np.float32)))
    net.input_scale.copy_(torch.from_numpy(rng.uniform(0.2, 5, I).astype(np.float32)))
    mean, scale = net.input_mean.numpy(), net.input_scale.numpy()
    t = np.arange(400)[:, None]
    series = (mean + scale * np.sin(0.1 * t + np.arange(I)) + 0.1 * scale * rng.normal(size=(400, I)))
    series = series.astype(np.float32)
    windows = np.stack([np.stack([series[s : s + 17] for s in rng.integers(0, 380, 16)])
                        for _ in range(40)])
    train_torch(net, windows, 1e-2, 1.0, 0.0)
    path = os.path.join(tmp, "torch.safetensors")
    st_write(path, net.state_dict())
    seq = series[:T]
    compare_outputs("torch-trained->vigil", run_vigil_forward(path, seq, O), torch_forward(net, seq),
                    scale[:O])
    # Bare nn.LSTM names, no standardisation tensors: vigil uses the identity.
    bare = {k[len("lstm."):] if k.startswith("lstm.") else k: v
            for k, v in net.state_dict().items() if not k.startswith("input_")}
    path2 = os.path.join(tmp, "bare.safetensors")
    st_write(path2, bare)
    with torch.no_grad():
        net.input_mean.zero_()
        net.input_scale.fill_(1.0)
    compare_outputs("torch (bare nn.LSTM names)->vigil", run_vigil_forward(path2, seq, O),
                    torch_forward(net, seq), np.ones(O, np.float32))


def test_training(tmp, clip, huber):
    I, O, L, H, T, nb, steps, lr = 5, 3, 2, 16, 20, 8, 6, 1e-2
    torch.manual_seed(7)
    net = Net(I, O, H, L)
    with torch.no_grad():
        net.input_mean.copy_(torch.tensor([1.0, -2.0, 3.0, 0.5, 10.0]))
        net.input_scale.copy_(torch.tensor([2.0, 0.5, 1.0, 3.0, 4.0]))
    init = os.path.join(tmp, "init.safetensors")
    st_write(init, net.state_dict())
    rng = np.random.default_rng(5)
    mean, scale = net.input_mean.numpy(), net.input_scale.numpy()
    # Windows of a noisy multichannel sine, so the loss has something to learn.
    t0 = rng.uniform(0, 100, size=(steps, nb, 1, 1))
    t = t0 + np.arange(T + 1)[None, None, :, None]
    phase = np.arange(I)[None, None, None, :]
    clean = np.sin(0.3 * t + phase)
    windows = mean + scale * (clean + 0.1 * rng.normal(size=(steps, nb, T + 1, I)))
    windows = windows.astype(np.float32)
    wp, out, lp = (os.path.join(tmp, n) for n in ("win.f32", "out.safetensors", "loss.f32"))
    windows.astype("<f4").tofile(wp)
    tool("train", init, wp, steps, nb, T, lr, clip, huber, out, lp)
    vl = np.fromfile(lp, dtype="<f4")
    tl = train_torch(net, windows, lr, clip, huber)
    what = f"training, {steps} Adam steps, clip {clip}, " + (f"Huber {huber}" if huber else "MSE")
    check(bool(np.all(np.abs(vl - tl) <= 1e-5 * np.abs(tl))),
          f"{what}: losses {tl[0]:.5f} -> {tl[-1]:.5f}, max rel diff "
          f"{np.max(np.abs(vl - tl) / np.abs(tl)):.3g}")
    got = st_read(out)
    worst, moved = 0.0, 0.0
    ok = True
    init_sd = st_read(init)
    for k, v in net.state_dict().items():
        a, b = got[k].numpy(), v.numpy()
        ok &= bool(np.all(np.abs(a - b) <= 1e-5 + 1e-4 * np.abs(b)))
        worst = max(worst, float(np.max(np.abs(a - b))))
        moved = max(moved, float(np.max(np.abs(b - init_sd[k].numpy()))))
    check(ok and moved > 10 * lr * 0.5,
          f"{what}: weights match, max |diff| {worst:.3g} (weights moved up to {moved:.3g})")


def test_corrupt(tmp):
    path = os.path.join(tmp, "vigil.safetensors")
    with open(path, "rb") as f:
        good = f.read()
    bad = os.path.join(tmp, "bad.safetensors")
    rng = np.random.default_rng(9)
    crashes, accepted_trunc = 0, 0
    lengths = sorted(set([0, 4, 8, 9, 20, len(good) // 2, len(good) - 1] +
                         list(rng.integers(0, len(good), 20))))
    for n in lengths:
        with open(bad, "wb") as f:
            f.write(good[:n])
        r = tool("load", bad, check_rc=False)
        crashes += r.returncode < 0
        accepted_trunc += r.returncode == 0
    (hl,) = struct.unpack("<Q", good[:8])
    for _ in range(60):
        b = bytearray(good)
        i = int(rng.integers(0, 8 + hl))
        b[i] = int(rng.integers(0, 256))
        with open(bad, "wb") as f:
            f.write(bytes(b))
        r = tool("load", bad, check_rc=False)
        crashes += r.returncode < 0 or r.returncode not in (0, 2)
    check(crashes == 0 and accepted_trunc == 0,
          f"corrupt input: {len(lengths)} truncations all rejected, 60 header corruptions, "
          f"{crashes} crashes")


def main():
    print(f"torch {torch.__version__}, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        test_vigil_to_torch(tmp)
        test_torch_to_vigil(tmp)
        test_training(tmp, clip=0.5, huber=0.0)
        test_training(tmp, clip=0.0, huber=0.5)
        test_corrupt(tmp)
    if failures:
        print(f"{len(failures)} parity check(s) failed")
        return 1
    print("all parity checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

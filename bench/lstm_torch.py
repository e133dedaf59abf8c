#!/usr/bin/python3
"""bench/lstm_torch.py: the PyTorch peer of bench/lstm_bench.c (run by bench/lstm).

Same three cases and shapes as the C side, same work per call (standardise the input, LSTM,
linear head, de-standardise; training: MSE, backward, clip_grad_norm_, Adam). For each case
it times variants (steps: nn.LSTM and nn.LSTMCell, each eager, torch.jit.script, the script
frozen and optimised by torch.jit.optimize_for_inference, and torch.jit.trace; training:
eager, script and trace, Adam with and without foreach), each after a warm-up of 20 calls
(the JIT's profiling runs), as the median of 5 runs of about 0.3 s, and prints the fastest
and every variant's rate as key=value lines:
  step_b1 steps_per_s=... best=...      step_b1_variants eager-LSTM=... script-LSTM=...
  step_b256 rows_per_s=... best=...     step_b256_variants ...
  train steps_per_s=... best=...        train_variants ...
Usage: lstm_torch.py THREADS [CASE [VARIANTS]] (VARIANTS, comma-separated, limits the search).
BENCH_CLOCK=cpu times with the process's CPU time (time.process_time) instead of the wall clock.
"""
import os
import sys
import time

import torch
from torch import nn

REPS = 5
WARMUP = 20
CLOCK = time.process_time if os.environ.get("BENCH_CLOCK") == "cpu" else time.perf_counter


def rate(fn):
    for _ in range(WARMUP):
        fn()
    t0 = CLOCK()
    fn()
    one = CLOCK() - t0
    iters = max(1, int(0.3 / max(one, 1e-9)))
    r = []
    for _ in range(REPS):
        t0 = CLOCK()
        for _ in range(iters):
            fn()
        r.append(iters / (CLOCK() - t0))
    r.sort()
    return r[REPS // 2]


class CellStep(nn.Module):
    """One step of an LSTM cell with the head: what vigil's model_step does."""

    def __init__(self, I, O, H):
        super().__init__()
        self.cell = nn.LSTMCell(I, H)
        self.fc = nn.Linear(H, O)
        self.register_buffer("mean", torch.randn(I))
        self.register_buffer("scale", torch.rand(I) + 0.5)
        self.O = O

    def forward(self, x, h, c):
        z = (x - self.mean) / self.scale
        h, c = self.cell(z, (h, c))
        y = self.fc(h) * self.scale[: self.O] + self.mean[: self.O]
        return y, h, c


class SeqStep(nn.Module):
    """The same step through nn.LSTM with a length-1 sequence."""

    def __init__(self, I, O, H):
        super().__init__()
        self.lstm = nn.LSTM(I, H)
        self.fc = nn.Linear(H, O)
        self.register_buffer("mean", torch.randn(I))
        self.register_buffer("scale", torch.rand(I) + 0.5)
        self.O = O

    def forward(self, x, h, c):
        z = (x - self.mean) / self.scale
        out, (h2, c2) = self.lstm(z.unsqueeze(0), (h.unsqueeze(0), c.unsqueeze(0)))
        y = self.fc(out[0]) * self.scale[: self.O] + self.mean[: self.O]
        return y, h2[0], c2[0]


STEP_VARIANTS = ("eager-LSTM", "eager-LSTMCell", "script-LSTM", "script-LSTMCell", "frozen-LSTM",
                 "frozen-LSTMCell", "trace-LSTM", "trace-LSTMCell")
TRAIN_VARIANTS = ("eager", "eager-foreach", "script", "script-foreach", "trace", "trace-foreach")


def bench_step(B, I, H, O, variants):
    x = torch.randn(B, I)
    rates = {}
    with torch.inference_mode():
        for kind in variants:
            torch.manual_seed(0)
            mod = (SeqStep if kind.endswith("-LSTM") else CellStep)(I, O, H).eval()
            h, c = torch.zeros(B, H), torch.zeros(B, H)
            if kind.startswith("script"):
                mod = torch.jit.script(mod)
            elif kind.startswith("frozen"):
                mod = torch.jit.optimize_for_inference(torch.jit.script(mod))
            elif kind.startswith("trace"):
                mod = torch.jit.trace(mod, (x, h, c))
            state = [h, c]

            def fn():
                _, state[0], state[1] = mod(x, state[0], state[1])

            rates[kind] = rate(fn)
    return rates


class SeqModel(nn.Module):
    def __init__(self, I, O, H):
        super().__init__()
        self.lstm = nn.LSTM(I, H)
        self.fc = nn.Linear(H, O)

    def forward(self, z):
        h, _ = self.lstm(z)
        return self.fc(h)


def bench_train(T, B, I, H, O, variants):
    rates = {}
    z = torch.randn(T + 1, B, I)
    for variant in variants:
        kind, foreach = variant.split("-")[0], variant.endswith("-foreach")
        torch.manual_seed(0)
        net = SeqModel(I, O, H)
        fwd = net
        if kind == "script":
            fwd = torch.jit.script(net)
        elif kind == "trace":
            fwd = torch.jit.trace(net, (z[:-1],))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, foreach=foreach)
        lossf = nn.MSELoss()

        def fn():
            y = fwd(z[:-1])
            loss = lossf(y, z[1:, :, :O])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()

        rates[variant] = rate(fn)
    return rates


def report(case, unit, rates, scale=1.0):
    name = max(rates, key=rates.get)
    print(f"{case} {unit}={rates[name] * scale:.1f} best={name}")
    print(f"{case}_variants " + " ".join(f"{k}={v * scale:.1f}" for k, v in rates.items()),
          flush=True)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    only = sys.argv[2] if len(sys.argv) > 2 else ""
    variant = sys.argv[3] if len(sys.argv) > 3 else ""
    torch.set_num_threads(threads)
    print(f"threads={threads} torch={torch.__version__} "
          f"clock={'cpu' if CLOCK is time.process_time else 'wall'}")
    step_v = tuple(variant.split(",")) if variant else STEP_VARIANTS
    train_v = tuple(variant.split(",")) if variant else TRAIN_VARIANTS
    if only in ("", "step_b1"):
        report("step_b1", "steps_per_s", bench_step(1, 8, 64, 8, step_v))
    if only in ("", "step_b256"):
        report("step_b256", "rows_per_s", bench_step(256, 32, 128, 32, step_v), 256)
    if only in ("", "train"):
        report("train", "steps_per_s", bench_train(64, 32, 8, 64, 8, train_v))


if __name__ == "__main__":
    main()

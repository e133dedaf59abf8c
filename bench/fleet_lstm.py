"""bench/fleet_lstm.py: memory per device when every device serves its own LSTM, which
bench/fleet's pumps never do (their linear baseline validates better). Standard library only;
needs gdb (bench/fleet_mem.py) and a vigild built with debug information.

    /usr/bin/python3 bench/fleet_lstm.py [--build build] [--devices 100] [--hidden 64]
                                         [--precision float16|float32]

A fresh vigild (configuration: only model.hidden, and model.serving_precision when --precision
is given: the precision of the weights each device serves; default the built-in one) gets --devices devices x 8 channels of a
chaotic logistic map, x' = 3.9 x (1 - x) per channel, each device and channel from its own
start (an LSTM of H=64 predicts it better than the linear baseline by more than
model.lstm_margin), over HTTP line protocol in rounds of 200 readings per device, the training
queue drained after each round, up to --readings readings per device (default 2,600: trainings
at 200 (warm-up), 1,200 and 2,200 with model.retrain_every = 1,000, and a full prediction ring).
Then, as bench/fleet does after its passes: malloc's in-use bytes and SQLite's (gdb), their
growth over an empty vigild's per device, and the parts per device (bench/fleet_mem.py).
Prints `BENCH fleet-lstm ...` and `BENCH fleet-lstm-memory ...`."""
import argparse, os, re, sys, tempfile, time, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Vigild, CHANNELS  # noqa: E402
import http.client  # noqa: E402


def post(v, body):
    c = http.client.HTTPConnection("127.0.0.1", v.port, timeout=120)
    c.request("POST", "/write?precision=ms", body=body)
    r = c.getresponse()
    r.read()
    c.close()
    if r.status != 204:
        sys.exit(f"fleet_lstm: POST /write answered {r.status}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--readings", type=int, default=2600)
    ap.add_argument("--precision", choices=("float16", "float32"), default=None)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    tmp = tempfile.mkdtemp(prefix="vigil-fleet-lstm-")
    try:
        conf = f"serving_precision = {a.precision}\n" if a.precision else ""
        v = Vigild(build, tmp, a.hidden, conf)
        time.sleep(0.5)
        empty_heap, empty_sqlite, _ = v.heap()
        empty_rss = v.proc_status("VmRSS")
        v.stop()
        v = Vigild(build, tmp, a.hidden, conf)
        n = a.devices
        x = [[(0.1 + 0.8 * ((d * 8 + c) * 0.6180339887 % 1.0)) for c in range(CHANNELS)]
             for d in range(n)]
        t0 = 1_700_000_000_000
        k = 0
        t_start = time.time()
        while k < a.readings:
            step = min(200, a.readings - k)
            lines = []
            for d in range(n):
                for j in range(step):
                    row = x[d]
                    for c in range(CHANNELS):
                        row[c] = 3.9 * row[c] * (1.0 - row[c])
                    fields = ",".join(f"c{c}={row[c]:.6f}" for c in range(CHANNELS))
                    lines.append(f"lc,device=lc-{d + 1} {fields} {t0 + 1000 * (k + j)}\n")
            for i in range(0, len(lines), 5000):
                post(v, "".join(lines[i:i + 5000]))
            k += step
            want = n * k
            # Drained: every reading scored, no device due, and no training finished for 3 s
            # (the queue does not count the job a training thread holds).
            deadline, last, still = time.time() + 600, -1, 0
            while time.time() < deadline and still < 6:
                m = v.metrics()
                done = m.get("vigil_model_trainings_total", 0)
                idle = (m.get("vigil_readings_scored_total", 0) >= want and
                        m.get("vigil_train_queue_jobs", 0) == 0 and done == last)
                still = still + 1 if idle else 0
                last = done
                time.sleep(0.5)
        m = v.metrics()
        rss = v.proc_status("VmRSS")
        heap, sqlite_mem, parts = v.heap()
        v.stop()
        known = {kk: xx for kk, xx in parts.items() if kk not in ("devices", "lstm_models") and
                 not kk.startswith(("lstm_serving", "lstm_held", "no_lstm"))}
        other = heap - empty_heap - (sqlite_mem - empty_sqlite) - sum(known.values())
        nd = max(parts.get("devices", 0), 1)
        print(f"BENCH fleet-lstm devices={n} hidden={a.hidden} readings_per_device={a.readings} "
              f"precision={a.precision or 'default'} "
              f"trainings={m.get('vigil_model_trainings_total', 0):.0f} "
              f"rss_per_device_kb={(rss - empty_rss) / n:.1f} "
              f"heap_per_device_kb={(heap - empty_heap) / 1024 / n:.1f} "
              f"heap_less_sqlite_per_device_kb="
              f"{(heap - empty_heap - (sqlite_mem - empty_sqlite)) / 1024 / n:.1f} "
              f"sqlite_mem_kb={sqlite_mem / 1024:.0f} wall_s={time.time() - t_start:.0f}",
              flush=True)
        print(f"BENCH fleet-lstm-memory devices={nd} " +
              " ".join(f"{kk}_b={xx / nd:.0f}" for kk, xx in sorted(known.items())) +
              f" other_b={other / nd:.0f} lstm_models={parts.get('lstm_models', 0)} "
              f"lstm_serving={parts.get('lstm_serving', 0)} "
              f"lstm_held_not_serving={parts.get('lstm_held_not_serving', 0)} "
              f"no_lstm={parts.get('no_lstm', 0)}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

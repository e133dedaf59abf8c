#!/usr/bin/python3
"""Healthy-pump false alarms and fault delays of vigil-replay on vigil-sim's pumps, offline.

  tools/sim_eval.py [--replay build/vigil-replay] [--sim build/vigil-sim] [--seeds 1,2,3]
                    [--episodes] [-s key=value]...

For each seed, vigil-sim --csv writes 10 pumps (pump-1..5 with the bearing, overheat, stuck,
spikes and cavitation faults, pump-6..10 healthy) with tests/integration/test_pipeline.py's
schedule: 1200 s of backfill, faults from 600 s after it (pump-k's at reading 1800 + 15 (k - 1)),
3700 readings a pump, one a second. Each pump is replayed through vigil-replay (the daemon's
detector and defaults; -s overrides a detector key, e.g. -s warmup=600 -s retrain_every=600
for the integration test's settings, or -s warmup=1200 -s retrain_every=600 for what the
daemon does with them: its first training waits for the bulk backfill). Printed per seed: anomaly episodes on the healthy pumps
(and how many readings they flag), episodes on the faulty pumps that end before their fault,
and each fault's delay in readings from its start to the first flagged reading at or after it,
with the top channel there. --episodes also prints each false-alarm episode (healthy, or ended
before its pump's fault): where it starts, how many readings it flags, the predictor that served
(0 persistence, 1 linear, 2 LSTM) and its version, how many readings that version had served,
the top channel at the opening and the episode's peak decision likelihood (the value the state
follows; 0.45 opens an anomaly). Python 3 standard library only.
"""
import argparse
import concurrent.futures
import csv
import os
import shutil
import subprocess
import tempfile

N, BACKFILL, FAULT_AT, DURATION = 10, 1200, 600, 3700
CHANNELS = ["speed", "flow", "pressure", "current", "temp", "vib"]
FAULTS = {1: "bearing", 2: "overheat", 3: "stuck", 4: "spikes", 5: "cavitation"}


def episodes(flags):
    """[start, end) runs of flagged readings."""
    out, start = [], None
    for i, f in enumerate(flags + [0]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i))
            start = None
    return out


def describe(k, rows, ep):
    """One episode of pump-k's -v rows: start, length, serving predictor, readings that version
    had served, top channel at the opening, peak decision likelihood."""
    start, end = ep
    kind, version = rows[start][6], rows[start][7]
    served = start
    while served > 0 and rows[served - 1][7] == version:
        served -= 1
    peak = max(float(r[8]) if len(r) > 8 else float("nan") for r in rows[start:end])
    return ("pump-%d: readings %d-%d (%d), kind %s v%s (serving for %d readings), top %s, "
            "peak likelihood %.3f" % (k, start, end - 1, end - start, kind, version,
                                      start - served, CHANNELS[int(rows[start][5])], peak))


def one_seed(a, seed):
    d = tempfile.mkdtemp(prefix="vigil-sim-eval-")
    try:
        subprocess.run([a.sim, "--csv", d, "--devices", str(N), "--backfill", str(BACKFILL),
                        "--fault-at", str(FAULT_AT), "--duration", str(DURATION), "--start", "0",
                        "--seed", str(seed)], check=True, stderr=subprocess.DEVNULL)
        res = {}
        for k in range(1, N + 1):
            src, dst = os.path.join(d, "pump-%d.csv" % k), os.path.join(d, "out-%d.csv" % k)
            extra = [x for kv in a.set for x in ("-s", kv)]
            subprocess.run([a.replay, "-v"] + extra + [src, dst], check=True,
                           stderr=subprocess.DEVNULL)
            with open(dst, newline="") as fh:
                rows = list(csv.reader(fh))[1:]
            flags = [int(r[2]) for r in rows]
            top = [int(r[5]) for r in rows]
            eps = episodes(flags)
            fault_at = BACKFILL + FAULT_AT + 15 * (k - 1) if k in FAULTS else len(rows)
            notes = [describe(k, rows, e) for e in eps if e[1] <= fault_at]
            if k in FAULTS:
                start = fault_at
                before = sum(1 for e in eps if e[1] <= start)
                after = [e for e in eps if e[1] > start]
                first = max(after[0][0], start) if after else None
                res[k] = (before, None if first is None else first - start,
                          None if first is None else CHANNELS[top[first]], notes)
            else:
                res[k] = (len(eps), sum(b - e for e, b in eps), notes)
        return seed, res
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replay", default="build/vigil-replay")
    ap.add_argument("--sim", default="build/vigil-sim")
    ap.add_argument("--seeds", default="1,2,3,4,5,6")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--episodes", action="store_true",
                    help="print each healthy or before-fault episode")
    ap.add_argument("-s", dest="set", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        results = sorted(pool.map(lambda s: one_seed(a, s), seeds))
    healthy = before = 0
    for seed, res in results:
        h = sum(res[k][0] for k in range(6, N + 1))
        hr = sum(res[k][1] for k in range(6, N + 1))
        b = sum(res[k][0] for k in FAULTS)
        healthy, before = healthy + h, before + b
        delays = " ".join("%s %s" % (FAULTS[k], "missed" if res[k][1] is None else
                                     "%d/%s" % (res[k][1], res[k][2])) for k in FAULTS)
        print("seed %d: healthy episodes %d (%d readings), before-fault episodes %d; delays %s"
              % (seed, h, hr, b, delays))
        if a.episodes:
            for k in range(1, N + 1):
                for note in res[k][-1]:
                    print("  " + note)
    print("total: %d healthy episodes in %d healthy pump-hours, %d before a fault"
          % (healthy, 5 * len(results), before))


if __name__ == "__main__":
    main()

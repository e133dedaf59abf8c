#!/usr/bin/env python3
"""Where NAB's tuned score loses: one line per labelled window of a bench.py output directory.

  tools/nab_windows.py --out DIR [--bench ../shared/eval/bench.py] [--data DIR] [--missed]

DIR is what `bench.py --out DIR` wrote. bench.py itself loads the labels and the outputs and
fits the corpus-wide threshold (standard profile), so the windows, the probation period and the
threshold are exactly the scorer's. Printed per window: its length, the first reading in it
whose anomaly_score reaches the tuned threshold (its index in the window and NAB's reward for
it, 1 at the window's start, about 0.86 at its label in the middle, 0 at its end) or MISS, the
same for the detector's own flags (is_anomaly), and the window's largest score. Then the
budget: windows found and what they earn, windows missed, and the readings outside windows at
or above the threshold with their cost (A_FP 0.11 each, weighted by NAB's sigmoid). --missed
prints only the windows that the threshold or the flags miss. Python 3 standard library only.
"""
import argparse, importlib.util, os, sys


def load_bench(path):
    spec = importlib.util.spec_from_file_location("bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def first_at(lst, hit):
    """(index in the window, reward) of the first reading of lst [(k, reward)] with hit(k)."""
    return next(((j, v) for j, (k, v) in enumerate(lst) if hit(k)), None)


def fmt(found):
    return "MISS" if found is None else f"{found[0]:4d} ({found[1]:+.2f})"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="a bench.py --out directory")
    ap.add_argument("--bench", default=os.path.join(here, "..", "..", "shared", "eval", "bench.py"))
    ap.add_argument("--data", default=None, help="bench.py's data directory (default: bench.py's)")
    ap.add_argument("--missed", action="store_true")
    a = ap.parse_args()
    b = load_bench(a.bench)
    data = a.data or os.path.join(os.path.dirname(os.path.abspath(a.bench)), "..", "data")
    files = b.load_nab(data, a.out)
    _, _, thr = b.nab_score_swept(files, "standard")
    afp = b.PROFILES["standard"][1]
    print(f"tuned threshold {thr:.4f} (standard profile)")
    earned = fp_cost = 0.0
    found = missed = fp_n = 0
    for name, points, scores, flags in files:
        off = len(scores) - len(points)
        wins = {}
        for k, (wid, (_, v)) in enumerate(points):
            if wid is None:
                if scores[off + k] >= thr:
                    fp_n += 1
                    fp_cost += afp * v
            else:
                wins.setdefault(wid, []).append((k, v))
        for wid, lst in sorted(wins.items()):
            tuned = first_at(lst, lambda k: scores[off + k] >= thr)
            own = first_at(lst, lambda k: flags[off + k])
            if tuned is None:
                missed += 1
            else:
                found += 1
                earned += tuned[1]
            if a.missed and tuned is not None and own is not None:
                continue
            top = max(scores[off + k] for k, _ in lst)
            print(f"{name:60s} w{wid} len {len(lst):4d}  tuned {fmt(tuned)}  own {fmt(own)}  "
                  f"max score {top:.3f}")
    print(f"found {found} windows earning {earned:+.2f}, missed {missed} ({-missed:+d}), "
          f"{fp_n} readings outside windows at or above the threshold ({fp_cost:+.2f})")


if __name__ == "__main__":
    sys.exit(main())

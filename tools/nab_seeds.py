#!/usr/bin/env python3
"""Which NAB files make a seed score low: each file's share of NAB standard tuned, across seeds.

  tools/nab_seeds.py OUT_DIR... [--threshold T] [--bench ../shared/eval/bench.py] [--data DIR]
                     [--files N] [--windows]

Each OUT_DIR is what one `bench.py --out DIR` run wrote (one seed each, NAB at least). NAB's
normalised score is a sum over files: a file earns 100 (raw + windows) / (2 x all windows), where
raw is its windows' rewards (-1 for a window missed) plus A_FP 0.11 times NAB's sigmoid weight for
every reading outside a window at or above the threshold. So a seed's score minus the mean over
the seeds splits exactly into the files' deviations, and the files whose share varies most are
where the seeds part. The threshold is each run's own tuned one (bench.py's nab_score_swept), or
--threshold T for all runs, which takes out the threshold's own movement.

Printed: one line per run (its score at the threshold, the threshold, windows found, readings
above it outside windows, and the three files furthest below their mean); the --files N files
whose share varies most (mean, sd, range, its correlation with the run's total, the split of its
sd into windows and false readings); with --windows, each window that some run misses and some
finds, with how often and the predictor kind (vigil-replay -v's `kind` column, if the outputs
have it) that served at its first reading above the threshold and, for the misses, at its end.
Python 3 standard library only.
"""
import argparse, csv, math, os, statistics, sys

from nab_windows import load_bench

KINDS = {"0": "persistence", "1": "linear", "2": "lstm"}


def kind_column(out, name):
    """The `kind` column of a -v output file, or None when the run was made without -v."""
    with open(os.path.join(out, "nab", name), newline="") as fh:
        rows = list(csv.reader(fh))
    if "kind" not in rows[0]:
        return None
    col = rows[0].index("kind")
    return [KINDS.get(r[col], r[col]) for r in rows[1:]]


def file_share(points, scores, off, thr, afp):
    """(window rewards, false-reading cost, false readings, {window: first reward index or None})."""
    first, fp_cost, fp_n = {}, 0.0, 0
    for k, (wid, (_, v)) in enumerate(points):
        hit = scores[off + k] >= thr
        if wid is None:
            if hit:
                fp_n += 1
                fp_cost += afp * v
        elif first.get(wid) is None:
            first[wid] = (k, v) if hit else None
    rewards = sum(-1.0 if f is None else f[1] for f in first.values())
    return rewards, fp_cost, fp_n, first


def one_run(b, data, out, fixed, want_kinds):
    """Per file of one run: its share in points, its parts, and its windows."""
    files = b.load_nab(data, out)
    _, nwin, tuned = b.nab_score_swept(files, "standard")
    thr = tuned if fixed is None else fixed
    afp = b.PROFILES["standard"][1]
    scale = 100.0 / (2 * nwin)
    run = {"thr": thr, "files": {}}
    for name, points, scores, _ in files:
        off = len(scores) - len(points)
        rewards, fp_cost, fp_n, first = file_share(points, scores, off, thr, afp)
        kinds = kind_column(out, name) if want_kinds else None
        wins = {}
        for wid, f in first.items():
            last = max(k for k, (w, _) in enumerate(points) if w == wid)
            at = last if f is None else f[0]
            wins[wid] = (f is not None, kinds[off + at] if kinds else "-")
        run["files"][name] = {
            "share": scale * (rewards + len(first) + fp_cost),
            "win": scale * (rewards + len(first)), "fp": scale * fp_cost, "fp_n": fp_n,
            "found": sum(1 for f in first.values() if f is not None), "wins": wins}
    run["total"] = sum(f["share"] for f in run["files"].values())
    return run


def corr(xs, ys):
    if len(xs) < 3 or statistics.pstdev(xs) == 0 or statistics.pstdev(ys) == 0:
        return float("nan")
    mx, my = statistics.mean(xs), statistics.mean(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / len(xs)
    return cov / (statistics.pstdev(xs) * statistics.pstdev(ys))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outs", nargs="+", help="bench.py --out directories, one run each")
    ap.add_argument("--bench", default=os.path.join(here, "..", "..", "shared", "eval", "bench.py"))
    ap.add_argument("--data", default=None, help="bench.py's data directory (default: bench.py's)")
    ap.add_argument("--threshold", type=float, default=None, help="one threshold for every run")
    ap.add_argument("--files", type=int, default=10, help="how many files to list (default 10)")
    ap.add_argument("--windows", action="store_true")
    a = ap.parse_args()
    b = load_bench(a.bench)
    data = a.data or os.path.join(os.path.dirname(os.path.abspath(a.bench)), "..", "data")
    runs = [one_run(b, data, out, a.threshold, a.windows) for out in a.outs]
    names = sorted(runs[0]["files"])
    mean = {n: statistics.mean(r["files"][n]["share"] for r in runs) for n in names}
    totals = [r["total"] for r in runs]
    print(f"{len(runs)} runs: score mean {statistics.mean(totals):.2f}, sd {statistics.pstdev(totals):.2f}"
          f" ({'threshold ' + str(a.threshold) if a.threshold is not None else 'each run tuned'})")
    for out, r in zip(a.outs, runs):
        dev = sorted((r["files"][n]["share"] - mean[n], n) for n in names)
        worst = "  ".join(f"{n.split('/')[-1][:-4]} {d:+.2f}" for d, n in dev[:3])
        found = sum(f["found"] for f in r["files"].values())
        fp_n = sum(f["fp_n"] for f in r["files"].values())
        print(f"{os.path.basename(os.path.normpath(out)):>8s} {r['total']:6.2f} thr {r['thr']:.4f} "
              f"found {found:2d} false {fp_n:3d}  lowest: {worst}")
    print(f"\n{'file':48s} {'mean':>6s} {'sd':>5s} {'min':>6s} {'max':>6s} {'corr':>5s} "
          f"{'sd win':>6s} {'sd fp':>6s} {'false':>5s}")
    sds = sorted(((statistics.pstdev([r["files"][n]["share"] for r in runs]), n) for n in names), reverse=True)
    for sd, n in sds[:a.files]:
        sh = [r["files"][n]["share"] for r in runs]
        sw = statistics.pstdev([r["files"][n]["win"] for r in runs])
        sf = statistics.pstdev([r["files"][n]["fp"] for r in runs])
        fp_n = statistics.mean(r["files"][n]["fp_n"] for r in runs)
        print(f"{n:48s} {mean[n]:6.2f} {sd:5.2f} {min(sh):6.2f} {max(sh):6.2f} {corr(sh, totals):5.2f} "
              f"{sw:6.2f} {sf:6.2f} {fp_n:5.1f}")
    if not a.windows:
        return 0
    print(f"\n{'window':52s} found  kinds when found / missed")
    for n in names:
        for wid in sorted(runs[0]["files"][n]["wins"]):
            got = [r["files"][n]["wins"][wid] for r in runs]
            hits = sum(1 for f, _ in got if f)
            if 0 < hits < len(runs):
                kf = statistics.multimode([k for f, k in got if f])
                km = [k for f, k in got if not f]
                print(f"{n + ' w' + str(wid):52s} {hits:2d}/{len(runs)}  "
                      f"{','.join(kf)} / {', '.join(f'{k} {km.count(k)}' for k in sorted(set(km)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

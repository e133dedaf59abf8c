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
outside windows at or above it, by the predictor that served them, persistence / linear / lstm,
and the three files furthest below their mean); the --files N files whose share varies most
(mean, sd, range, correlation with the run's total, the sd of the windows' part and of the false
readings' part); with --windows, each window that some runs find and some miss, its runs grouped
by the predictor serving at the window's first reading (vigil-replay -v's kind and version
columns; "-" without -v), with how many of each group find it and the range of the window's
largest score. A window found by an onset ranked a hair above the threshold in one run and a
hair below in another shows there.
Python 3 standard library only.
"""
import argparse, csv, os, statistics, sys

from nab_windows import load_bench

KINDS = {"0": "persistence", "1": "linear", "2": "lstm"}


def kind_column(out, name):
    """Per row of a -v output file, the predictor that served ("lstm v8": its kind and model
    version), or None when the run was made without -v."""
    with open(os.path.join(out, "nab", name), newline="") as fh:
        rows = list(csv.reader(fh))
    if "kind" not in rows[0]:
        return None
    col, ver = rows[0].index("kind"), rows[0].index("version")
    return [f"{KINDS.get(r[col], r[col])} v{r[ver]}" for r in rows[1:]]


def file_share(points, scores, off, thr, afp):
    """(window rewards, false-reading cost, false readings' indices, {window: (index, reward) of
    its first reading at the threshold, or None})."""
    first, fp_cost, fp_at = {}, 0.0, []
    for k, (wid, (_, v)) in enumerate(points):
        hit = scores[off + k] >= thr
        if wid is None:
            if hit:
                fp_at.append(k)
                fp_cost += afp * v
        elif first.get(wid) is None:
            first[wid] = (k, v) if hit else None
    rewards = sum(-1.0 if f is None else f[1] for f in first.values())
    return rewards, fp_cost, fp_at, first


def one_run(b, data, out, fixed):
    """Per file of one run: its share in points, its parts, and its windows."""
    files = b.load_nab(data, out)
    _, nwin, tuned = b.nab_score_swept(files, "standard")
    thr = tuned if fixed is None else fixed
    afp = b.PROFILES["standard"][1]
    scale = 100.0 / (2 * nwin)
    run = {"thr": thr, "files": {}}
    for name, points, scores, _ in files:
        off = len(scores) - len(points)
        rewards, fp_cost, fp_at, first = file_share(points, scores, off, thr, afp)
        kinds = kind_column(out, name)
        wins = {}
        for wid, f in first.items():
            ks = [k for k, (w, _) in enumerate(points) if w == wid]
            top = max(scores[off + k] for k in ks)
            wins[wid] = (f is not None, kinds[off + ks[0]] if kinds else "-", top)
        run["files"][name] = {
            "share": scale * (rewards + len(first) + fp_cost),
            "win": scale * (rewards + len(first)), "fp": scale * fp_cost, "fp_n": len(fp_at),
            "fp_kinds": [kinds[off + k] if kinds else "-" for k in fp_at],
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
    runs = [one_run(b, data, out, a.threshold) for out in a.outs]
    names = sorted(runs[0]["files"])
    mean = {n: statistics.mean(r["files"][n]["share"] for r in runs) for n in names}
    totals = [r["total"] for r in runs]
    print(f"{len(runs)} runs: score mean {statistics.mean(totals):.2f}, sd {statistics.pstdev(totals):.2f}"
          f" ({'threshold ' + str(a.threshold) if a.threshold is not None else 'each run tuned'})")
    for out, r in zip(a.outs, runs):
        dev = sorted((r["files"][n]["share"] - mean[n], n) for n in names)
        worst = "  ".join(f"{n.split('/')[-1][:-4]} {d:+.2f}" for d, n in dev[:3])
        found = sum(f["found"] for f in r["files"].values())
        fk = [k.split()[0] for f in r["files"].values() for k in f["fp_kinds"]]
        by_kind = "/".join(str(fk.count(k)) for k in ("persistence", "linear", "lstm"))
        by_kind = f" ({by_kind})" if "-" not in fk else ""  # no kinds without -v
        print(f"{os.path.basename(os.path.normpath(out)):>8s} {r['total']:6.2f} thr {r['thr']:.4f} "
              f"found {found:2d} false {len(fk):3d}{by_kind}  lowest: {worst}")
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
    print(f"\n{'window':52s} found  by the predictor serving at its start: found/runs, max score")
    for n in names:
        for wid in sorted(runs[0]["files"][n]["wins"]):
            got = [r["files"][n]["wins"][wid] for r in runs]
            hits = sum(1 for f, _, _ in got if f)
            if not 0 < hits < len(runs):
                continue
            by = {}
            for f, k, top in got:
                by.setdefault(k, []).append((f, top))
            parts = [f"{k} {sum(f for f, _ in v)}/{len(v)} {min(t for _, t in v):.3f}-"
                     f"{max(t for _, t in v):.3f}" for k, v in sorted(by.items(), key=lambda kv: -len(kv[1]))]
            print(f"{n + ' w' + str(wid):52s} {hits:2d}/{len(runs)}  {'; '.join(parts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

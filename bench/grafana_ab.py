"""Builds of vigild side by side on bench/grafana's data, CPU per query. Standard library only.

Usage: bench/grafana_ab.py [--days 30] [--runs-30d 10] [--runs-1h 200] [--keep DIR]
       [--cases mean-30d,raw-1h,history-1h] NAME=VIGILD [NAME=VIGILD ...]

bench/grafana's device (one device x 8 channels at 1 Hz for --days days, bench/ingest.py's
random walks) is written once into the first build (model.enabled = false), which is stopped;
each build then runs on its own copy of that data directory, and Grafana's mean-30d and raw-1h
queries (as in bench/grafana.py) go to the builds in turn, --runs-* times each after one
untimed warm-up each; history-1h (bench/history's GET /v1/devices/pump-0/readings?step=1h
&agg=mean,min,max over the whole history: every channel) runs --runs-30d times. Printed per
case: whether every build's last answer is the same byte for byte, and per build the CPU
seconds of its process a query (user + system from /proc, over the timed runs) and the median
wall time. No InfluxDB: this compares builds, where bench/grafana
compares vigild with influxd. With --keep DIR the written data directory is kept in DIR and
reused by the next run with the same DIR (the builds must read the same schema).
"""
import argparse, os, shutil, statistics, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grafana  # noqa: E402
from ingest import Vigild, batches, free_ports, lp_lines, make_points, post_all  # noqa: E402


def write_data(binary, days, conf, tmp, dest):
    """Writes the history into a vigild of binary and moves its stopped data directory to dest."""
    pts = make_points(1, int(days * 86400))
    bodies = [("\n".join(b) + "\n").encode() for b in batches(lp_lines(pts), 5000)]
    del pts
    v = Vigild(binary, tmp, ["--config", conf])
    post_all(v.port, "/write?db=bench&precision=ms", bodies, 2, "text/plain", 204)
    v.stop()
    shutil.move(os.path.join(v.dir, "data"), dest)


def start_copy(name, binary, data, conf, tmp):
    """Starts binary on a copy of the data directory data; returns the server (stop it)."""
    b = Vigild.__new__(Vigild)
    b.dir = tempfile.mkdtemp(dir=tmp, prefix=name + "-")
    shutil.copytree(data, os.path.join(b.dir, "data"))
    b.port, b.sport = free_ports(2)
    b.log = open(os.path.join(b.dir, "log"), "w")
    grafana.restart(b, binary, conf)
    return b


def run_case(servers, path, runs):
    """Alternates path over the servers; returns ({name: (CPU s a query, median s)}, same)."""
    for _, s in servers:
        grafana.fetch(s.port, path)
    cpu = {n: 0.0 for n, _ in servers}
    wall = {n: [] for n, _ in servers}
    bodies = {}
    for _ in range(runs):
        for n, s in servers:
            c = s.cpu_s()
            t = time.perf_counter()
            bodies[n] = grafana.fetch(s.port, path)
            wall[n].append(time.perf_counter() - t)
            cpu[n] += s.cpu_s() - c
    res = {n: (cpu[n] / runs, statistics.median(wall[n])) for n, _ in servers}
    return res, len(set(bodies.values())) == 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=30, help="history length (at most 400)")
    ap.add_argument("--runs-30d", type=int, default=10)
    ap.add_argument("--runs-1h", type=int, default=200)
    ap.add_argument("--cases", default="mean-30d,raw-1h")
    ap.add_argument("--keep", help="a directory to keep (and reuse) the written data in")
    ap.add_argument("builds", nargs="+", help="NAME=VIGILD")
    a = ap.parse_args()
    if not 0 < a.days <= 400:
        ap.error("--days: more than 0, at most 400")
    builds = [b.split("=", 1) for b in a.builds]
    if any(len(b) != 2 or not b[0] for b in builds):
        ap.error("builds: NAME=VIGILD")
    tmp = tempfile.mkdtemp(prefix="vigil-ab-")
    conf = os.path.join(tmp, "ab.conf")
    with open(conf, "w") as f:
        f.write("[model]\nenabled = false\n")
    newest = grafana.T0 + (int(a.days * 86400) - 1) * 1000
    cases = {
        "mean-30d": (f'SELECT mean("temp") FROM "pump-0" WHERE time >= '
                     f'{newest - 30 * grafana.DAY}ms and time <= {newest}ms '
                     f'GROUP BY time(1m) fill(null)', a.runs_30d),
        "raw-1h": (f'SELECT "temp" FROM "pump-0" WHERE time >= {newest - 3600000}ms and '
                   f'time <= {newest}ms', a.runs_1h),
        # bench/history's read of every channel (1-hour buckets), which decodes whole rows.
        "history-1h": (None, a.runs_30d),
    }
    history = (f"/v1/devices/pump-0/readings?step=1h&agg=mean,min,max&from={grafana.T0}"
               f"&to={newest + 1}&limit=100000")
    servers = []
    try:
        data = os.path.join(a.keep or tmp, "data")
        if not os.path.isdir(data):
            write_data(builds[0][1], a.days, conf, tmp, data)
        for name, binary in builds:
            servers.append((name, start_copy(name, binary, data, conf, tmp)))
        for case in a.cases.split(","):
            q, runs = cases[case]
            path = history if q is None else grafana.q_path("bench", q)
            res, same = run_case(servers, path, runs)
            print(f"AB {case} runs={runs} same={int(same)} " +
                  " ".join(f"{n}_cpu={c:.4f} {n}_wall={w:.4f}" for n, (c, w) in res.items()),
                  flush=True)
    finally:
        for _, s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Driver of bench/history; see that script. Standard library only.

Data: one device ("pump-0") x 8 channels at 1 Hz for --days days (30: 2,592,000 points, 20.7
million readings), bench/ingest.py's random walks, written as the same line-protocol batches
into vigild (model.enabled = false: no training competes with the queries) and into InfluxDB
1.6; InfluxDB is then left to compact its shard (bench/ingest.py's settled_bytes).

Each case reads the whole range in buckets of one step, with mean, min and max of every
channel: vigild GET /v1/devices/pump-0/readings?step=S&agg=mean,min,max (following `next`:
a page holds at most 8 MiB of JSON), InfluxDB SELECT mean(*),min(*),max(*) FROM m WHERE
device='pump-0' AND time in the range GROUP BY time(S) fill(none) (epoch=ms). A time is the
wall time from the request to the last byte of the last answer over one keep-alive connection
(JSON not parsed); the two alternate, --runs times each, after one untimed warm-up run each,
and the median is printed. Both answers are then parsed and compared: the same buckets, and
every mean, min and max equal to 1e-9 relative (the means are sums in different orders).
"""
import argparse, http.client, json, os, re, shutil, statistics, sys, tempfile, time, urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest import CHANNELS, Influxd, Vigild, batches, lp_lines, make_points, post_all  # noqa: E402

T0 = 1_700_000_000_000  # make_points' first timestamp
UNITS = {"s": 1000, "m": 60000, "h": 3600000, "d": 86400000}


def fetch_all(port, path, follow):
    """GETs path (and, with follow, each `next` page) on one connection; returns the bodies."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    bodies = []
    try:
        while path:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError(f"GET {path}: {r.status} {body[:300]!r}")
            bodies.append(body)
            path = None
            if follow:  # the page's last member; a regex, not a parse, keeps the timing fair
                m = re.search(rb'"next":(null|"([^"]*)")\}\s*$', body[-4096:])
                path = m.group(2).decode() if m.group(2) else None
    finally:
        c.close()
    return bodies


def vigil_path(step, t1):
    return (f"/v1/devices/pump-0/readings?step={step}&agg=mean,min,max&from={T0}&to={t1}"
            f"&limit=100000")


def influx_path(step, t1):
    q = (f"SELECT mean(*),min(*),max(*) FROM m WHERE device='pump-0' AND time >= {T0}ms "
         f"AND time < {t1}ms GROUP BY time({step}) fill(none)")
    return "/query?" + urllib.parse.urlencode({"db": "bench", "epoch": "ms", "q": q})


def vigil_buckets(bodies):
    out = {}
    for b in bodies:
        for k in json.loads(b)["buckets"]:
            out[k["ts"]] = {(a, ch): k[a][ch] for a in ("mean", "min", "max") for ch in k[a]}
    return out


def influx_buckets(body):
    res = json.loads(body)["results"][0]
    if "error" in res:
        raise RuntimeError("influxdb: " + res["error"])
    s = res["series"][0]
    cols = [tuple(c.split("_", 1)) for c in s["columns"][1:]]
    return {row[0]: {c: v for c, v in zip(cols, row[1:]) if v is not None} for row in s["values"]}


def compare(step, v, i):
    if sorted(v) != sorted(i):
        raise RuntimeError(f"step {step}: {len(v)} buckets from vigild, {len(i)} from InfluxDB")
    for ts in v:
        if sorted(v[ts]) != sorted(i[ts]):
            raise RuntimeError(f"step {step}, bucket {ts}: aggregates {sorted(v[ts])[:4]}... "
                               f"vs {sorted(i[ts])[:4]}...")
        for k, x in v[ts].items():
            y = i[ts][k]
            if abs(x - y) > 1e-9 * max(abs(x), abs(y), 1e-300):
                raise RuntimeError(f"step {step}, bucket {ts}, {k}: vigild {x!r}, InfluxDB {y!r}")
    return len(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigild", required=True)
    ap.add_argument("--days", type=float, default=30, help="history length (at most 400)")
    ap.add_argument("--steps", default="1m,1h", help="bucket widths, InfluxQL durations (s, m, h, d)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=5000)
    a = ap.parse_args()
    if not 0 < a.days <= 400:
        ap.error("--days: more than 0, at most 400")
    steps = [s for s in a.steps.split(",") if s]
    for s in steps:
        if not re.fullmatch(r"[1-9][0-9]*[smhd]", s):
            ap.error(f"--steps: '{s}' is not a whole number with s, m, h or d")
    npoints = int(a.days * 86400)
    t1 = T0 + npoints * 1000
    pts = make_points(1, npoints)
    readings = len(pts) * len(CHANNELS)
    bodies = [("\n".join(b) + "\n").encode() for b in batches(lp_lines(pts), a.batch)]
    del pts
    tmp = tempfile.mkdtemp(prefix="vigil-bench-")
    conf = os.path.join(tmp, "vigild.conf")
    with open(conf, "w") as f:
        f.write("[model]\nenabled = false\n")
    v = infl = None
    try:
        v = Vigild(a.vigild, tmp, ["--config", conf])
        infl = Influxd(tmp)
        t_v = post_all(v.port, "/write?db=bench&precision=ms", bodies, 2, "text/plain", 204)
        t_i = post_all(infl.port, "/write?db=bench&precision=ms", bodies, 2, "text/plain", 204)
        del bodies
        infl.settled_bytes()
        print(f"# {readings} readings written: vigild {t_v:.1f} s, InfluxDB {t_i:.1f} s",
              flush=True)
        for step in steps:
            vp, ip = vigil_path(step, t1), influx_path(step, t1)
            vb, ib = fetch_all(v.port, vp, True), fetch_all(infl.port, ip, False)  # warm-up
            n = compare(step, vigil_buckets(vb), influx_buckets(ib[0]))
            tv, ti = [], []
            for _ in range(a.runs):
                for times, port, path, follow in ((tv, v.port, vp, True),
                                                  (ti, infl.port, ip, False)):
                    t = time.perf_counter()
                    fetch_all(port, path, follow)
                    times.append(time.perf_counter() - t)
            mv, mi = statistics.median(tv), statistics.median(ti)
            print(f"BENCH history-{step} vigil={mv:.3f} influx={mi:.3f} ratio={mv / mi:.2f} "
                  f"buckets={n} pages={len(vb)} readings={readings} runs={a.runs} "
                  f"vigil_runs={','.join(f'{x:.3f}' for x in tv)} "
                  f"influx_runs={','.join(f'{x:.3f}' for x in ti)}", flush=True)
    finally:
        if infl is not None:
            infl.stop()
        if v is not None:
            v.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

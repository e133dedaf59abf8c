"""Driver of bench/grafana; see that script. Standard library only.

Against InfluxDB 1.6.7: one device ("pump-0") x 8 channels at 1 Hz for --days days, bench/
ingest.py's random walks, written as the same points into vigild (line protocol with the device
tag, model.enabled = false) and into InfluxDB (the device as the measurement, as Grafana's FROM
"pump-0" reads it on both); InfluxDB then compacts its shard. Grafana's panel queries, sent as
Grafana sends them (GET /query?db=&epoch=ms&q=):

  mean-1d   SELECT mean("temp") FROM "pump-0" WHERE time >= <newest - 1 day>ms and
            time <= <newest>ms GROUP BY time(1m) fill(null)
  mean-30d  the same over 30 days (the whole history when --days is shorter)
  raw-1h    SELECT "temp" FROM "pump-0" WHERE time >= <newest - 1 h>ms and time <= <newest>ms

A time is the wall time from the request to the last byte of the answer over one connection;
the servers alternate, --runs times each, after one untimed warm-up each; the median is
printed, with same_influx=1 when the two answers are equal byte for byte (else a # line shows
where they part). --base-vigild (main's build, say) runs a second vigild on a copy of the same
data directory, alternated with the others in every case: base=, ratio_base=, same_base=.
Each server's CPU time (its process's user + system, from /proc, in the kernel's ticks) over
the timed runs is printed too, as seconds a query: vigil_cpu=, influx_cpu=, base_cpu=, and
cpu_ratio_influx=, cpu_ratio_base= (vigild's over the other's); on a loaded machine it moves
less than the wall time.

vigild's own series (no peer has them; absolute times): a second vigild (model.warmup so large
that every device stays learning: each reading is scored, no training competes) gets --devices
devices x --entries readings of two channels at 1 Hz ending now, over one connection in time
order (a reading older than its device's newest is stored but not scored, so batches sent over
two connections, one overtaking another, left 1,600-1,900 scores of 2,000); the cases start
once /metrics shows the pipeline has taken every reading and each device has --entries scores
(checked again after a restart; at most 60 s, else the run fails); then

  scores-raw          SELECT "score" FROM "vigil_scores" WHERE time > now()-1h GROUP BY "device"
  scores-max-1m       SELECT max("score") ... GROUP BY time(1m), "device" fill(null)
  predictions-mean-1m SELECT mean("v") FROM "vigil_predictions" ... GROUP BY time(1m), "device"
                      fill(null)

and, after --episodes ended episodes (a minute apart, 30 s long, the newest ending an hour ago)
are inserted into its events table with vigild stopped:

  anomalies-6h     SELECT "text", "end", "device" FROM "vigil_anomalies" WHERE ("device" =
                   'd0') AND time >= <6 h before the newest episode>ms and time <= <now>ms
                   (Grafana's annotation query)
  anomalies-after  the same over the last 30 minutes (after every episode: no row)
  rest-anomalies-6h, rest-anomalies-after  GET /v1/anomalies?from=&to= over the same ranges
"""
import argparse, http.client, json, os, shutil, sqlite3, statistics, subprocess, sys, tempfile
import time, urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest import (Influxd, Vigild, batches, free_ports, lp_lines, make_points,  # noqa: E402
                    post_all, wait_http)

T0 = 1_700_000_000_000  # make_points' first timestamp
DAY = 86_400_000


def fetch(port, path):
    """GETs path on a new keep-alive connection; returns the body (status 200 required)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    if r.status != 200:
        raise RuntimeError(f"GET {path[:200]}: {r.status} {body[:300]!r}")
    return body


def q_path(db, q):
    return "/query?" + urllib.parse.urlencode({"db": db, "epoch": "ms", "q": q})


def cpu_s(proc):
    """CPU seconds (user + system, every thread) of the process proc (a Popen) so far."""
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alternate(servers, path, runs):
    """GETs path from each server (name, port, process) in turn, runs times after one untimed
    warm-up each; returns {name: (median seconds, [seconds], last body, CPU seconds of the
    server's process over the timed runs)}. Under load the CPU time moves less than the wall
    time (it counts in the kernel's ticks, 10 ms here, summed over the runs)."""
    for _, port, _ in servers:
        fetch(port, path)
    times = {name: [] for name, _, _ in servers}
    cpu = {name: 0.0 for name, _, _ in servers}
    bodies = {}
    for _ in range(runs):
        for name, port, proc in servers:
            c = cpu_s(proc)
            t = time.perf_counter()
            bodies[name] = fetch(port, path)
            times[name].append(time.perf_counter() - t)
            cpu[name] += cpu_s(proc) - c
    return {n: (statistics.median(ts), ts, bodies[n], cpu[n]) for n, ts in times.items()}


def differ(name, what, x, y):
    """Prints where two answers part, for the reader."""
    k = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
    print(f"# {name}: the answers differ from byte {k}: vigild {x[max(k - 60, 0):k + 60]!r}, "
          f"{what} {y[max(k - 60, 0):k + 60]!r}", flush=True)


def report(name, r, extra):
    """One BENCH line: vigild's median, InfluxDB's and the base build's when they ran."""
    mv, tv, vb, cv = r["vigil"]
    out = f"BENCH {name} vigil={mv:.4f}"
    for peer, label in (("influx", "influx"), ("base", "base")):
        if peer in r:
            m, _, b, _ = r[peer]
            out += f" {label}={m:.4f} ratio_{label}={mv / m:.2f} same_{label}={int(b == vb)}"
            if b != vb:
                differ(name, label, vb, b)
    out += f" bytes={len(vb)} {extra} runs={len(tv)}"
    # CPU seconds a query (the mean over the runs), and vigild's against each peer's.
    for n, (_, ts, _, c) in r.items():
        out += f" {n}_cpu={c / len(ts):.4f}"
        if n != "vigil":
            out += f" cpu_ratio_{n}={cv / c:.2f}" if c > 0 else f" cpu_ratio_{n}=inf"
    for n, (_, ts, _, _) in r.items():
        out += f" {n}_runs={','.join(f'{x:.4f}' for x in ts)}"
    print(out, flush=True)


def clone(v, binary, base_binary, conf, tmp):
    """The same data under a second build: stops v, copies its data directory, restarts v and
    starts base_binary on the copy. Returns the second server (stop it)."""
    v.stop()
    b = Vigild.__new__(Vigild)
    b.dir = tempfile.mkdtemp(dir=tmp, prefix="base-")
    shutil.copytree(os.path.join(v.dir, "data"), os.path.join(b.dir, "data"))
    b.port, b.sport = free_ports(2)
    b.log = open(os.path.join(b.dir, "log"), "w")
    restart(v, binary, conf)
    restart(b, base_binary, conf)
    return b


def peer_cases(a, vigild, tmp):
    npoints = int(a.days * 86400)
    newest = T0 + (npoints - 1) * 1000
    pts = make_points(1, npoints)
    vlines = lp_lines(pts)
    del pts
    ilines = [ln.replace("m,device=pump-0 ", "pump-0 ", 1) for ln in vlines]
    vbodies = [("\n".join(b) + "\n").encode() for b in batches(vlines, 5000)]
    del vlines
    ibodies = [("\n".join(b) + "\n").encode() for b in batches(ilines, 5000)]
    del ilines
    conf = os.path.join(tmp, "peer.conf")
    with open(conf, "w") as f:
        f.write("[model]\nenabled = false\n")
    v = infl = base = None
    try:
        v = Vigild(vigild, tmp, ["--config", conf])
        infl = Influxd(tmp)
        t_v = post_all(v.port, "/write?db=bench&precision=ms", vbodies, 2, "text/plain", 204)
        t_i = post_all(infl.port, "/write?db=bench&precision=ms", ibodies, 2, "text/plain", 204)
        del vbodies, ibodies
        infl.settled_bytes()
        print(f"# {npoints} points x 8 channels written: vigild {t_v:.1f} s, InfluxDB {t_i:.1f} s",
              flush=True)
        cases = [
            ("mean-1d", f'SELECT mean("temp") FROM "pump-0" WHERE time >= {newest - DAY}ms and '
                        f'time <= {newest}ms GROUP BY time(1m) fill(null)'),
            ("mean-30d", f'SELECT mean("temp") FROM "pump-0" WHERE time >= {newest - 30 * DAY}ms '
                         f'and time <= {newest}ms GROUP BY time(1m) fill(null)'),
            ("raw-1h", f'SELECT "temp" FROM "pump-0" WHERE time >= {newest - 3600000}ms and '
                       f'time <= {newest}ms'),
        ]
        if a.base_vigild:
            base = clone(v, vigild, a.base_vigild, conf, tmp)
        servers = [("vigil", v.port, v.p), ("influx", infl.port, infl.p)]
        servers += [("base", base.port, base.p)] if base else []
        for name, q in cases:
            report(name, alternate(servers, q_path("bench", q), a.runs), f"points={npoints}")
    finally:
        for srv in (infl, base, v):
            if srv is not None:
                srv.stop()


def restart(v, binary, conf):
    """Starts vigild again on v's data directory and ports (after v.stop())."""
    v.p = subprocess.Popen([binary, "--data-dir", os.path.join(v.dir, "data"),
                            "--http", f"127.0.0.1:{v.port}", "--stream", f"127.0.0.1:{v.sport}",
                            "--log-level", "warn", "--config", conf], stderr=v.log)
    wait_http(v.port, "/healthz")


def scores_by_device(port):
    """{device: count of its vigil_scores entries}, one /query for every device."""
    body = fetch(port, q_path("bench", 'SELECT count("score") FROM "vigil_scores" GROUP BY '
                                       '"device"'))
    doc = json.loads(body)
    return {s["tags"]["device"]: s["values"][0][1]
            for s in doc["results"][0].get("series", [])}


def metric(port, name):
    """The value of an unlabelled family in vigild's /metrics (0 when absent)."""
    for ln in fetch(port, "/metrics").decode().splitlines():
        if ln.startswith(name + " "):
            return float(ln.split()[1])
    return 0


def insert_episodes(data_dir, n, newest_end):
    """n ended episodes of d0, a minute apart, 30 s long, the newest ending at newest_end, into
    the stopped vigild's events table (as the pipeline stores them)."""
    db = sqlite3.connect(os.path.join(data_dir, "vigil.db"))
    with db:
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) "
            "INSERT INTO events(device_id, id, start_ts, end_ts, info) "
            "SELECT d.id, i, ?2 - (?1 - i) * 60000 - 30000, ?2 - (?1 - i) * 60000, "
            "json_object('device', 'd0', 'id', i, 'start_ts', ?2 - (?1 - i) * 60000 - 30000, "
            "'end_ts', ?2 - (?1 - i) * 60000, 'active', json('false'), 'peak_score', 7.5, "
            "'channels', json('[]'), 'ended_by', 'cleared', 'opened_by', NULL) "
            "FROM n, devices d WHERE d.name = 'd0'", (n, newest_end))
    db.close()


def settle(port, devices, entries, fed):
    """Waits (at most 60 s) until vigild's pipeline has scored every reading, then checks that
    each device has one vigil_scores entry a reading. fed: the readings this vigild's pipeline
    is to score since it started (devices * entries after the write; 0 after a restart, when
    the scores come from the store). Caught up: /metrics' vigil_readings_scored_total reaches
    fed with no reading queued; then every device's count (through /query) must be entries,
    polled too. Returns entries; raises, with the counts, when the wait ends or at once when
    /metrics counts a reading not scored (out of order: it never will be)."""
    counts, m = {}, {}
    for _ in range(600):
        m = {k: metric(port, k) for k in ("vigil_readings_scored_total",
                                          "vigil_readings_not_scored_total",
                                          "vigil_inference_queue_readings")}
        if m["vigil_readings_not_scored_total"] > 0:
            break
        if m["vigil_readings_scored_total"] >= fed and m["vigil_inference_queue_readings"] == 0:
            counts = scores_by_device(port)
            if len(counts) == devices and set(counts.values()) == {entries}:
                return entries
        time.sleep(0.1)
    counts = scores_by_device(port)
    got = sorted(set(counts.values())) or [0]
    raise RuntimeError(f"not every reading was scored: {len(counts)} of {devices} devices have "
                       f"scores, from {got[0]} to {got[-1]} of {entries} a device; /metrics {m}")


def vigil_cases(a, vigild, tmp):
    conf = os.path.join(tmp, "series.conf")
    with open(conf, "w") as f:
        f.write(f"[http]\nmax_query_points = 1000000\n[model]\nwarmup = {a.entries + 1000}\n"
                f"predictions = {max(a.entries, 2000)}\n")
    now = int(time.time() * 1000)
    first = now - a.entries * 1000
    lines = [f"m,device=d{d} v={(k % 97) * 0.37 + d:.2f},w={(k % 13) * 1.3:.1f} {first + k * 1000}"
             for k in range(a.entries) for d in range(a.devices)]
    bodies = [("\n".join(b) + "\n").encode() for b in batches(lines, 5000)]
    del lines
    v = Vigild(vigild, tmp, ["--config", conf])
    base = None
    try:
        # One connection, so the batches commit in time order: a reading older than its
        # device's newest is stored but not scored (README), and two connections let a batch
        # overtake an earlier one (1,600-1,900 scores of 2,000 a device, session 24).
        post_all(v.port, "/write?db=bench&precision=ms", bodies, 1, "text/plain", 204)
        del bodies
        settle(v.port, a.devices, a.entries, a.devices * a.entries)
        if a.base_vigild:
            base = clone(v, vigild, a.base_vigild, conf, tmp)
        servers = [("vigil", v.port, v.p)] + ([("base", base.port, base.p)] if base else [])
        n = settle(v.port, a.devices, a.entries, 0)  # again: v restarted when cloned
        if base:
            settle(base.port, a.devices, a.entries, 0)
        size = f"devices={a.devices} entries={a.entries} scores_per_device={n}"
        for name, q in (
                ("scores-raw", 'SELECT "score" FROM "vigil_scores" WHERE time > now()-1h '
                               'GROUP BY "device"'),
                ("scores-max-1m", 'SELECT max("score") FROM "vigil_scores" WHERE time > now()-1h '
                                  'GROUP BY time(1m), "device" fill(null)'),
                ("predictions-mean-1m", 'SELECT mean("v") FROM "vigil_predictions" WHERE '
                                        'time > now()-1h GROUP BY time(1m), "device" fill(null)')):
            r = alternate(servers, q_path("bench", q), a.runs)
            if b'"error"' in r["vigil"][2]:
                raise RuntimeError(f"{name}: {r['vigil'][2][:300]!r}")
            report(name, r, size)
        if a.episodes <= 0:
            return
        newest_end = now - 3600000
        for srv, binary in ((v, vigild), (base, a.base_vigild)):
            if srv is not None:
                srv.stop()
                insert_episodes(os.path.join(srv.dir, "data"), a.episodes, newest_end)
                restart(srv, binary, conf)
        # The restarted processes (the CPU times read their /proc entries).
        servers = [("vigil", v.port, v.p)] + ([("base", base.port, base.p)] if base else [])
        size = f"episodes={a.episodes}"
        lo6 = newest_end - 6 * 3600000
        for name, lo, hi in (("6h", lo6, now), ("after", now - 1800000, now)):
            q = (f'SELECT "text", "end", "device" FROM "vigil_anomalies" WHERE ("device" = \'d0\')'
                 f' AND time >= {lo}ms and time <= {hi}ms')
            report(f"anomalies-{name}", alternate(servers, q_path("bench", q), a.runs), size)
            report(f"rest-anomalies-{name}",
                   alternate(servers, f"/v1/anomalies?from={lo}&to={hi}", a.runs), size)
    finally:
        for srv in (base, v):
            if srv is not None:
                srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigild", required=True)
    ap.add_argument("--days", type=float, default=30, help="history length (at most 400)")
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--entries", type=int, default=2000, help="readings per device (at most 3000)")
    ap.add_argument("--episodes", type=int, default=200000)
    ap.add_argument("--runs", type=int, default=5, help="timed runs a case (1..1000)")
    ap.add_argument("--base-vigild", help="a second build (main's) run on a copy of the same data")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--skip-vigil-series", action="store_true")
    a = ap.parse_args()
    if not 0 < a.days <= 400:
        ap.error("--days: more than 0, at most 400")
    if not 0 < a.entries <= 3000 or not 0 < a.devices <= 10000 or a.episodes > 5_000_000:
        ap.error("--entries 1..3000 (within now()-1h), --devices 1..10000, --episodes <= 5e6")
    if not 0 < a.runs <= 1000:
        ap.error("--runs 1..1000")
    tmp = tempfile.mkdtemp(prefix="vigil-bench-")
    try:
        if not a.skip_peer:
            peer_cases(a, a.vigild, tmp)
        if not a.skip_vigil_series:
            vigil_cases(a, a.vigild, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

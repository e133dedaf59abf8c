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

A time is the wall time from the request to the last byte of the answer over one keep-alive
connection; the two servers alternate, --runs times each, after one untimed warm-up each; the
median is printed, with same=1 when the two answers are equal byte for byte.

vigild's own series (no peer has them; absolute times): a second vigild (model.warmup so large
that every device stays learning: each reading is scored, no training competes) gets --devices
devices x --entries readings of two channels at 1 Hz ending now; then

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
import argparse, http.client, os, shutil, signal, sqlite3, statistics, subprocess, sys, tempfile
import time, urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest import Influxd, Vigild, batches, lp_lines, make_points, post_all, wait_http  # noqa: E402

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


def timed(port, path, runs):
    """The median wall time of runs GETs of path after one untimed warm-up; also the body."""
    body = fetch(port, path)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fetch(port, path)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), ts, body


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
    v = infl = None
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
        for name, q in cases:
            path = q_path("bench", q)
            fetch(v.port, path), fetch(infl.port, path)  # warm-up
            tv, ti = [], []
            for _ in range(a.runs):  # alternated
                for times, port in ((tv, v.port), (ti, infl.port)):
                    t = time.perf_counter()
                    body = fetch(port, path)
                    times.append(time.perf_counter() - t)
                    if port == v.port:
                        vb = body
                    else:
                        ib = body
            mv, mi = statistics.median(tv), statistics.median(ti)
            print(f"BENCH {name} vigil={mv:.4f} influx={mi:.4f} ratio={mv / mi:.2f} "
                  f"same={int(vb == ib)} bytes={len(vb)} points={npoints} runs={a.runs} "
                  f"vigil_runs={','.join(f'{x:.4f}' for x in tv)} "
                  f"influx_runs={','.join(f'{x:.4f}' for x in ti)}", flush=True)
    finally:
        if infl is not None:
            infl.stop()
        if v is not None:
            v.stop()


def restart(v, binary, conf):
    """Starts vigild again on v's data directory and ports (after v.stop())."""
    v.p = subprocess.Popen([binary, "--data-dir", os.path.join(v.dir, "data"),
                            "--http", f"127.0.0.1:{v.port}", "--stream", f"127.0.0.1:{v.sport}",
                            "--log-level", "warn", "--config", conf], stderr=v.log)
    wait_http(v.port, "/healthz")


def count_scores(port, dev):
    body = fetch(port, q_path("bench", f'SELECT count("score") FROM "vigil_scores" WHERE '
                                      f'"device" = \'{dev}\''))
    doc = __import__("json").loads(body)
    s = doc["results"][0].get("series")
    return s[0]["values"][0][1] if s else 0


def line(name, t, runs, body, extra):
    print(f"BENCH {name} vigil={t:.4f} bytes={len(body)} {extra} runs={len(runs)} "
          f"vigil_runs={','.join(f'{x:.4f}' for x in runs)}", flush=True)


def vigil_cases(a, vigild, tmp):
    conf = os.path.join(tmp, "series.conf")
    with open(conf, "w") as f:
        f.write(f"[http]\nmax_query_points = 1000000\n[model]\nwarmup = {a.entries + 1000}\npredictions = {max(a.entries, 2000)}\n")
    now = int(time.time() * 1000)
    first = now - a.entries * 1000
    lines = [f"m,device=d{d} v={(k % 97) * 0.37 + d:.2f},w={(k % 13) * 1.3:.1f} {first + k * 1000}"
             for k in range(a.entries) for d in range(a.devices)]
    bodies = [("\n".join(b) + "\n").encode() for b in batches(lines, 5000)]
    del lines
    v = Vigild(vigild, tmp, ["--config", conf])
    try:
        post_all(v.port, "/write?db=bench&precision=ms", bodies, 2, "text/plain", 204)
        del bodies
        last, stable = -1, 0
        for _ in range(600):  # scored until the counts settle: at most 60 s
            n = (count_scores(v.port, "d0"), count_scores(v.port, f"d{a.devices - 1}"))
            stable = stable + 1 if n == last else 0
            last = n
            if stable >= 10 and min(n) > 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the scores did not settle within 60 s: counts {last}")
        size = f"devices={a.devices} entries={a.entries} scores_per_device={last[1]}"
        for name, q in (
                ("scores-raw", 'SELECT "score" FROM "vigil_scores" WHERE time > now()-1h '
                               'GROUP BY "device"'),
                ("scores-max-1m", 'SELECT max("score") FROM "vigil_scores" WHERE time > now()-1h '
                                  'GROUP BY time(1m), "device" fill(null)'),
                ("predictions-mean-1m", 'SELECT mean("v") FROM "vigil_predictions" WHERE '
                                        'time > now()-1h GROUP BY time(1m), "device" fill(null)')):
            t, runs, body = timed(v.port, q_path("bench", q), a.runs)
            if b'"error"' in body:
                raise RuntimeError(f"{name}: {body[:300]!r}")
            line(name, t, runs, body, size)
        if a.episodes <= 0:
            return
        v.stop()
        newest_end = now - 3600000
        db = sqlite3.connect(os.path.join(v.dir, "data", "vigil.db"))
        with db:
            db.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) "
                "INSERT INTO events(device_id, id, start_ts, end_ts, info) "
                "SELECT d.id, i, ?2 - (?1 - i) * 60000 - 30000, ?2 - (?1 - i) * 60000, "
                "json_object('device', 'd0', 'id', i, 'start_ts', ?2 - (?1 - i) * 60000 - 30000, "
                "'end_ts', ?2 - (?1 - i) * 60000, 'active', json('false'), 'peak_score', 7.5, "
                "'channels', json('[]'), 'ended_by', 'cleared', 'opened_by', NULL) "
                "FROM n, devices d WHERE d.name = 'd0'", (a.episodes, newest_end))
        db.close()
        restart(v, vigild, conf)
        size = f"episodes={a.episodes}"
        lo6 = newest_end - 6 * 3600000
        for name, lo, hi in (("6h", lo6, now), ("after", now - 1800000, now)):
            q = (f'SELECT "text", "end", "device" FROM "vigil_anomalies" WHERE ("device" = \'d0\')'
                 f' AND time >= {lo}ms and time <= {hi}ms')
            t, runs, body = timed(v.port, q_path("bench", q), a.runs)
            line(f"anomalies-{name}", t, runs, body, size)
            t, runs, body = timed(v.port, f"/v1/anomalies?from={lo}&to={hi}", a.runs)
            line(f"rest-anomalies-{name}", t, runs, body, size)
    finally:
        v.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigild", required=True)
    ap.add_argument("--days", type=float, default=30, help="history length (at most 400)")
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--entries", type=int, default=2000, help="readings per device (at most 3000)")
    ap.add_argument("--episodes", type=int, default=200000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--skip-vigil-series", action="store_true")
    a = ap.parse_args()
    if not 0 < a.days <= 400:
        ap.error("--days: more than 0, at most 400")
    if not 0 < a.entries <= 3000 or not 0 < a.devices <= 10000 or a.episodes > 5_000_000:
        ap.error("--entries 1..3000 (within now()-1h), --devices 1..10000, --episodes <= 5e6")
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

"""Driver of bench/episodes; see that script. Standard library only.

Data: devices d0 and d1 get one reading each through /write (model.warmup 100000: the pipeline runs, nothing trains), then, with
vigild stopped, --episodes ended episodes of d0 (a minute apart, 30 s long, the newest ending an
hour ago, as bench/grafana inserts them) and a tenth as many of d1 (ten minutes apart, 2 min
long) go into its events table; --long-ms > 0 makes d0's oldest episode that long (one long
anomaly raises the length bound of schema 9 for every later query). With --base-vigild the data
is made by the base build (its schema) and copied for vigild, so vigild's start (open=, the time
to /healthz) includes its schema migration when the schemas differ.

Ranges (ms): recent = the 6 h before now (360 episodes of d0), middle = 6 h around the middle
episode, old = the first 6 h of episodes, empty = the last 30 minutes (after every episode: no
row; today's worst case, every older episode checked). Cases per range: dev-<r> GET
/v1/devices/d0/anomalies?from=&to= (the route's page, at most 1000), dev10-<r> the same with
limit=10, fleet-<r> GET /v1/anomalies?from=&to=, iql-<r> /query's SELECT "text" FROM
"vigil_anomalies" WHERE "device" = 'd0' AND time >= ..ms AND time < ..ms (no limit).

A time is the wall time from the request to the last byte over a new connection; the servers
alternate, --runs times each, after one untimed warm-up each; the median is printed, with
same_base=1 when the two answers are equal byte for byte.
"""
import argparse, http.client, os, shutil, sqlite3, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest import Vigild, free_ports  # noqa: E402
from grafana import alternate, q_path, report, restart  # noqa: E402

MIN = 60_000
HOUR = 3_600_000


def post(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": "text/plain"})
        r = c.getresponse()
        r.read()
    finally:
        c.close()
    if r.status != 204:
        raise RuntimeError(f"POST {path}: {r.status}")


def insert(data_dir, n, newest_end, long_ms):
    """d0's n episodes and d1's n // 10 into the stopped vigild's events table."""
    db = sqlite3.connect(os.path.join(data_dir, "vigil.db"))
    sql = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) "
           "INSERT INTO events(device_id, id, start_ts, end_ts, info) "
           "SELECT d.id, i, ?2 - (?1 - i) * ?3 - ?4, ?2 - (?1 - i) * ?3, "
           "json_object('device', d.name, 'id', i, 'start_ts', ?2 - (?1 - i) * ?3 - ?4, "
           "'end_ts', ?2 - (?1 - i) * ?3, 'active', json('false'), 'peak_score', 7.5, "
           "'channels', json('[]'), 'ended_by', 'cleared', 'opened_by', NULL) "
           "FROM n, devices d WHERE d.name = ?5")
    with db:
        db.execute(sql, (n, newest_end, MIN, 30_000, "d0"))
        db.execute(sql, (max(n // 10, 1), newest_end, 10 * MIN, 2 * MIN, "d1"))
        if long_ms > 0:
            db.execute("UPDATE events SET start_ts = end_ts - ?1 WHERE id = 1 AND device_id = "
                       "(SELECT id FROM devices WHERE name = 'd0')", (long_ms,))
    db.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigild", required=True)
    ap.add_argument("--base-vigild", help="a second build (main's) run on a copy of the same data")
    ap.add_argument("--episodes", type=int, default=200000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--long-ms", type=int, default=0)
    a = ap.parse_args()
    if not 0 < a.episodes <= 5_000_000 or not 0 < a.runs <= 50:
        ap.error("--episodes 1..5e6, --runs 1..50")
    tmp = tempfile.mkdtemp(prefix="vigil-bench-")
    conf = os.path.join(tmp, "bench.conf")
    with open(conf, "w") as f:
        f.write("[model]\nwarmup = 100000\n")
    first = a.base_vigild or a.vigild
    v = b = None
    try:
        now = int(time.time() * 1000)
        v = Vigild(first, tmp, ["--config", conf])
        post(v.port, "/write?db=bench&precision=ms",
             f"m,device=d0 x=1 {now - HOUR}\nm,device=d1 x=1 {now - HOUR}\n".encode())
        v.stop()
        newest_end = now - HOUR
        t = time.perf_counter()
        insert(os.path.join(v.dir, "data"), a.episodes, newest_end, a.long_ms)
        print(f"# {a.episodes} episodes of d0 and {max(a.episodes // 10, 1)} of d1 inserted by "
              f"{'base' if a.base_vigild else 'vigil'}'s schema in "
              f"{time.perf_counter() - t:.1f} s", flush=True)
        if a.base_vigild:
            b = Vigild.__new__(Vigild)
            b.dir = tempfile.mkdtemp(dir=tmp, prefix="base-")
            shutil.copytree(os.path.join(v.dir, "data"), os.path.join(b.dir, "data"))
            b.port, b.sport = v.port, v.sport
            b.log = open(os.path.join(b.dir, "log"), "w")
            v.port, v.sport = free_ports(2)
        opened = {}
        for name, srv, binary in (("vigil", v, a.vigild), ("base", b, a.base_vigild)):
            if srv is not None:
                t = time.perf_counter()
                restart(srv, binary, conf)
                opened[name] = time.perf_counter() - t
        print("BENCH open " + " ".join(f"{n}={s:.3f}" for n, s in opened.items()) +
              f" episodes={a.episodes}", flush=True)
        servers = [("vigil", v.port, v.p)] + ([("base", b.port, b.p)] if b else [])
        oldest_start = newest_end - (a.episodes - 1) * MIN - 30_000
        mid = newest_end - (a.episodes // 2) * MIN
        ranges = (("recent", now - 6 * HOUR, now), ("middle", mid - 3 * HOUR, mid + 3 * HOUR),
                  ("old", oldest_start - HOUR, oldest_start + 5 * HOUR),
                  ("empty", now - 30 * MIN, now))
        size = f"episodes={a.episodes} long_ms={a.long_ms}"
        for r, lo, hi in ranges:
            for case, path in (
                    ("dev", f"/v1/devices/d0/anomalies?from={lo}&to={hi}"),
                    ("dev10", f"/v1/devices/d0/anomalies?from={lo}&to={hi}&limit=10"),
                    ("fleet", f"/v1/anomalies?from={lo}&to={hi}"),
                    ("iql", q_path("bench", 'SELECT "text" FROM "vigil_anomalies" WHERE '
                                            f'"device" = \'d0\' AND time >= {lo}ms AND '
                                            f'time < {hi}ms'))):
                res = alternate(servers, path, a.runs)
                if b'"error"' in res["vigil"][2]:
                    raise RuntimeError(f"{case}-{r}: {res['vigil'][2][:300]!r}")
                report(f"{case}-{r}", res, size)
    finally:
        for srv in (b, v):
            if srv is not None and getattr(srv, "p", None) is not None and srv.p.poll() is None:
                srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Driver of bench/soak; see that script. Standard library only.

One vigild on loopback (a temporary --data-dir, removed at the end unless --keep) fed by
build/vigil-sim over the stream socket: --devices pumps (default 300) x 6 channels, a --backfill
of history first (past model.warmup, so the devices serve from the start) then live at --speed
(default 2: 600 lines/s at 300 pumps). storage.sync = normal (the disk is shared). retrain_every
is small (default 60 readings) and model.train_window short, so trainings and model versions
come quickly: each device passes model.versions (10) kept versions within minutes, and the
pruning is what is watched. At the same time, on their own threads:
  - reads: GET /v1/devices (every page), /metrics, /v1/anomalies, a device's status, model and
    readings, and an InfluxQL SELECT ... GROUP BY time() on /query, in turn, one at a time;
  - one GET /v1/events stream (Server-Sent Events), read to the end, reconnected if it ends;
  - SIGHUP (a reload) every --reload-every seconds, POST /v1/admin/snapshot every
    --snapshot-every seconds (storage.snapshots_keep = 3 prunes them).

Every --sample seconds: RSS (VmRSS), open fds, threads, CPU seconds, the data folder's database
file, WAL and snapshot folder bytes, the rows of models (and the most of one device), ckpts,
preds and events (a read-only SQLite connection, opened for the count and closed), and the
1-minute load average of the machine (shared: other work is in the load too). Printed:
one `# t=...` line per sample, then `BENCH soak-start`, `soak-mid` and `soak-end` (the sample
nearest the start, middle and end) and `BENCH soak-slope` (least-squares slope per hour of each
measure over the run's second half: after warm-up, growth there is what a soak is for).
--vigild-prefix runs vigild under a command (valgrind --tool=massif ...); with an ASan build
(BUILD_DIR=build-asan, ASAN_OPTIONS=detect_leaks=1) a leak report makes vigild's exit status,
and so the soak, fail.
"""
import argparse, http.client, json, os, random, shutil, signal, sqlite3, subprocess, sys
import tempfile, threading, time, urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest import Vigild  # noqa: E402

MEASURES = ("rss_mb", "anon_mb", "fds", "threads", "cpu_s", "db_mb", "wal_mb", "snap_mb", "snaps",
            "model_rows", "ckpt_rows", "pred_rows", "event_rows", "load1")


class Reader(threading.Thread):
    """Reads in turn until stop is set; counts answers by status."""

    def __init__(self, port, devices, stop):
        super().__init__(daemon=True)
        self.port, self.devices, self.stop = port, devices, stop
        self.counts = {}
        self.errors = 0

    def get(self, c, path):
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        self.counts[r.status] = self.counts.get(r.status, 0) + 1
        return r.status, body

    def run(self):
        rnd = random.Random(7)
        c = None
        while not self.stop.is_set():
            try:
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                after = ""
                while True:  # every page of the device listing
                    st, body = self.get(c, "/v1/devices?limit=1000" + after)
                    nxt = json.loads(body).get("next_after") if st == 200 else None
                    if not nxt:
                        break
                    after = "&after=" + urllib.parse.quote(nxt)
                self.get(c, "/metrics")
                self.get(c, "/v1/anomalies")
                dev = f"pump-{rnd.randint(1, self.devices)}"
                self.get(c, f"/v1/devices/{dev}/status")
                self.get(c, f"/v1/devices/{dev}/model")
                self.get(c, f"/v1/devices/{dev}/readings?limit=500")
                q = (f"SELECT mean(flow),max(temp) FROM pump WHERE device='{dev}' AND "
                     f"time > now() - 10m GROUP BY time(1m)")
                self.get(c, "/query?" + urllib.parse.urlencode({"db": "soak", "q": q}))
            except (OSError, http.client.HTTPException, ValueError):
                self.errors += 1
                if c is not None:
                    c.close()
                c = None
                self.stop.wait(1)
            self.stop.wait(0.2)
        if c is not None:
            c.close()


class EventStream(threading.Thread):
    """One GET /v1/events stream, reconnected when it ends; counts messages."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.messages = 0
        self.connects = 0

    def run(self):
        while not self.stop.is_set():
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                c.request("GET", "/v1/events")
                r = c.getresponse()
                self.connects += 1
                while not self.stop.is_set():
                    line = r.fp.readline()  # a keep-alive comment every 15 s at most
                    if not line:
                        break
                    if line.startswith(b"event:"):
                        self.messages += 1
                c.close()
            except (OSError, http.client.HTTPException):
                pass
            self.stop.wait(1)


def proc_sample(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) / 1024
            elif line.startswith("RssAnon:"):  # the heap and thread stacks; the rest is files
                out["anon_mb"] = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    out["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def data_sample(data):
    out = {"db_mb": size(os.path.join(data, "vigil.db")) / 2**20,
           "wal_mb": size(os.path.join(data, "vigil.db-wal")) / 2**20}
    snap = os.path.join(data, "snapshots")
    names = os.listdir(snap) if os.path.isdir(snap) else []
    out["snaps"] = len(names)
    out["snap_mb"] = sum(size(os.path.join(snap, n)) for n in names) / 2**20
    try:
        db = sqlite3.connect(f"file:{os.path.join(data, 'vigil.db')}?mode=ro", uri=True,
                             timeout=5)
        try:
            out["model_rows"] = db.execute("SELECT count(*) FROM models").fetchone()[0]
            # Each bounded: checkpoints by the rows referring to them, predictions by
            # model.predictions a device, events by the events kept a device.
            for key, table in (("ckpt_rows", "ckpts"), ("pred_rows", "preds"),
                               ("event_rows", "events")):
                out[key] = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            out["model_max_per_dev"] = db.execute(
                "SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM models"
                " GROUP BY device_id)").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error as e:
        print(f"# models not read: {e}", flush=True)
    return out


def slope_per_h(samples, key):
    pts = [(s["t"], s[key]) for s in samples if key in s]
    if len(pts) < 3:
        return None  # too few samples for a slope
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    den = sum((t - mt) ** 2 for t, _ in pts)
    return None if den == 0 else sum((t - mt) * (v - mv) for t, v in pts) / den * 3600


def fmt_slope(v):
    return "na" if v is None else f"{v:.2f}"


def fmt(v):
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def on_term(signum, frame):
    sys.exit(128 + signum)  # runs main's finally: what the soak started is stopped


def main():
    signal.signal(signal.SIGTERM, on_term)
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigild", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", 1200)))
    ap.add_argument("--devices", type=int, default=300)
    ap.add_argument("--speed", type=float, default=2)
    ap.add_argument("--backfill", type=int, default=300, help="seconds of history sent first")
    ap.add_argument("--retrain-every", type=int, default=60)
    ap.add_argument("--lstm-min-rows", default="auto",
                    help="model.lstm_min_rows: 0 trains an LSTM at every training (checkpoints "
                    "in the store), auto mostly linear models at this train_window")
    ap.add_argument("--kind", default="auto",
                    help="model.kind: lstm serves every device an LSTM (a checkpoint a version)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="another vigild setting, e.g. storage.cache_mb=4 (repeatable)")
    ap.add_argument("--sample", type=float, default=10)
    ap.add_argument("--reload-every", type=float, default=300)
    ap.add_argument("--snapshot-every", type=float, default=240)
    ap.add_argument("--keep", action="store_true", help="keep the data folder (its path printed)")
    ap.add_argument("--vigild-prefix", default="",
                    help="a command vigild runs under, e.g. 'valgrind --tool=massif'")
    a = ap.parse_args()
    if a.seconds < 30:
        ap.error("--seconds (SOAK_SECONDS): at least 30")
    tmp = tempfile.mkdtemp(prefix="vigil-soak-")
    conf = os.path.join(tmp, "vigild.conf")
    with open(conf, "w") as f:
        f.write(f"[model]\nretrain_every = {a.retrain_every}\nwarmup = 100\ntrain_window = 300\n"
                f"lstm_min_rows = {a.lstm_min_rows}\nkind = {a.kind}\n"
                "[storage]\nsnapshots_keep = 3\nsync = normal\n")
        for kv in a.set:  # a section may come again; a key set twice is refused by vigild
            key, _, value = kv.partition("=")
            section, _, name = key.partition(".")
            f.write(f"[{section}]\n{name} = {value}\n")
    stop = threading.Event()
    v = sim = None
    threads = []
    samples = []
    try:
        binary = a.vigild
        args = ["--config", conf]
        if a.vigild_prefix:  # Vigild runs one binary: a wrapper script runs it under the prefix
            wrap = os.path.join(tmp, "vigild-wrapped")
            with open(wrap, "w") as f:
                f.write(f"#!/bin/sh\nexec {a.vigild_prefix} {os.path.abspath(a.vigild)} \"$@\"\n")
            os.chmod(wrap, 0o755)
            binary = wrap
        v = Vigild(binary, tmp, args)
        data = os.path.join(v.dir, "data")
        print(f"# vigild pid {v.p.pid}, data {data}, {a.devices} devices, "
              f"retrain_every {a.retrain_every}, lstm_min_rows {a.lstm_min_rows}, kind {a.kind}, "
              f"{a.seconds} s",
              flush=True)
        sim = subprocess.Popen([a.sim, "--stream", f"127.0.0.1:{v.sport}", "--devices",
                                str(a.devices), "--backfill", str(a.backfill), "--speed",
                                str(a.speed), "--quiet"],
                               stderr=open(os.path.join(v.dir, "sim.log"), "w"))
        threads = [Reader(v.port, a.devices, stop), EventStream(v.port, stop)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        next_reload, next_snap = a.reload_every, a.snapshot_every
        reloads = snaps_taken = snap_fail = 0
        while True:
            el = time.monotonic() - t0
            s = {"t": round(el, 1)}
            s.update(proc_sample(v.p.pid))
            s.update(data_sample(data))
            s["load1"] = os.getloadavg()[0]
            samples.append(s)
            print("# " + " ".join(f"{k}={fmt(x)}" for k, x in s.items()), flush=True)
            if sim.poll() is not None:
                raise RuntimeError(f"vigil-sim exited {sim.returncode} (see {v.dir}/sim.log)")
            if el >= a.seconds:
                break
            if el >= next_reload:
                v.p.send_signal(signal.SIGHUP)
                reloads += 1
                next_reload += a.reload_every
            if el >= next_snap:
                c = http.client.HTTPConnection("127.0.0.1", v.port, timeout=120)
                c.request("POST", "/v1/admin/snapshot")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    snaps_taken += 1
                else:
                    snap_fail += 1
                next_snap += a.snapshot_every
            stop.wait(max(0.0, t0 + len(samples) * a.sample - time.monotonic()))
        stop.set()
        threads[0].join(timeout=60)  # the event stream's thread ends at its next line
        r, e = threads
        common = (f"devices={a.devices} retrain_every={a.retrain_every} "
                  f"lstm_min_rows={a.lstm_min_rows} kind={a.kind} seconds={a.seconds} "
                  f"reloads={reloads} snapshots={snaps_taken} snapshot_failures={snap_fail} "
                  f"reads={sum(r.counts.values())} read_errors={r.errors} "
                  f"read_status={','.join(f'{k}:{n}' for k, n in sorted(r.counts.items()))} "
                  f"sse_messages={e.messages} sse_connects={e.connects}")
        for case, s in (("start", samples[0]), ("mid", samples[len(samples) // 2]),
                        ("end", samples[-1])):
            print(f"BENCH soak-{case} " + " ".join(f"{k}={fmt(x)}" for k, x in s.items()),
                  flush=True)
        half = [s for s in samples if s["t"] >= samples[-1]["t"] / 2]
        print("BENCH soak-slope per_hour_over_second_half " +
              " ".join(f"{k}={fmt_slope(slope_per_h(half, k))}" for k in MEASURES
                       if k != "load1") +
              " " + common, flush=True)
    finally:
        stop.set()
        if sim is not None and sim.poll() is None:
            sim.send_signal(signal.SIGTERM)
            try:
                sim.wait(timeout=30)
            except subprocess.TimeoutExpired:
                sim.kill()
        if v is not None:
            v.stop()
            print(f"# vigild stopped with 0; log {os.path.join(v.dir, 'log')}", flush=True)
        if a.keep:
            print(f"# kept {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

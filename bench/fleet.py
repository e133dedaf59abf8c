"""Driver of bench/fleet; see that script. Standard library only.

Per fleet size N: a fresh vigild (built-in defaults; only its ports and data folder are set),
fed by two vigil-sim processes on disjoint devices, pump-1..pump-N/2 over the stream socket and
the rest as POST /write?precision=ns batches of 5,000 lines over HTTP (2 keep-alive
connections), 8 channels a device, one vector per device per simulated second. Simulated time
is one timeline per N (vigil-sim --start/--from), so phases continue each other exactly:

  groups    with --group-size G: before any reading, PUT /v1/devices/pump-i {"group": "g-<k>"}
            (G consecutive pumps a group) through the API, 16 connections.
  warm-up   N <= --steady-max (default 100000, every size): 400 simulated seconds at full speed
            (model.warmup is 200 readings), then rounds of 101 s (a device that is still learning
            asks again for training every warmup/4+1 readings) until at most 1 % of the fleet is
            learning, the round cap is hit or --warmup-budget seconds have passed, each round
            after the training queue drained (at most --drain-max s); larger N: 2 simulated
            seconds, every device learning. serving= on the BENCH line is the fraction of the
            max pass's vectors scored by a trained model (vigil_readings_scored_serving_total),
            serving_lstm= by an LSTM: a figure from learning devices cannot pass for a scored one.
  max       full speed (sim --speed 0) over MEASURE readings (N <= --long-max, 1k: up to 2,700 s
            of simulated time in all, so the 1k fleet retrains on schedule and holds about an hour
            of data at the end; larger N: --measure-readings); perf records vigild throughout. The
            rate is readings / wall time from the sims' first live send (they first run their
            pumps silently up to --from: seconds of their CPU at 100k, not counted in the wall
            time, but in sim_cpu_ns_per_reading)
            until every reading is stored and scored (vigil_readings_scored_total plus
            not_scored reach the vectors sent); the p99 acknowledgement-to-status delay is
            interpolated in the vigil_score_delay_seconds histogram's difference over the pass.
  paced     when the max pass's p99 >= 1 s: sim --speed at 70 %, then 50 %, of the max rate.
  half      for the status size (--status-size, default the smallest): ingest paced at half the
            sustained rate throughout. Closed loop: wrk -t1 -c32 -d5s --latency on GET
            /v1/devices/pump-1/status on vigild and on the same JSON as a static file on nginx
            (1 worker, no access log), --status-rounds rounds alternating (v n, n v, v n), the
            medians reported: the rates and their ratio. Open loop: bench/http_rate.c at half
            nginx's median rate (the goal's rate), 5 s on vigild then on nginx, latency from when
            each request was due: the p99 at that rate. Why both: a closed-loop client at
            saturation measures its own queue (32 requests always in flight, so by Little's law
            the mean latency is 32 / rate) and sends fewer requests while the server stalls,
            so its p99 depends on -c and undercounts stalls; the goal's p99 belongs to a rate.
            goal_met=1: vigild's rate >= half nginx's, and at half nginx's rate the p99 < 5 ms,
            the rate was served, no errors, and the ingest ran throughout.

Memory: VmRSS after the passes less an empty vigild's, per device; the slope over N by least
squares. Then, attached with gdb for a moment: malloc's in-use bytes (malloc_stats) and SQLite's
(sqlite3_memory_used: mostly the writer's page cache, up to storage.cache_mb whatever N is)
less an empty vigild's, per device (heap_per_device_kb, heap_less_sqlite_per_device_kb), and
the heap's parts device by device (bench/fleet_mem.py: BENCH fleet-N-memory, bytes per device).
--hidden H runs vigild with model.hidden = H, --model-kind K with model.kind = K, --workers W
with model.workers = W, --rt-priority P with http.rt_priority = P (a configuration file holding
only those). vigild runs with OPENBLAS_NUM_THREADS=1, as
systemd/vigild.service starts it (unless the environment sets it). Disk: the data folder after a clean stop (database + WAL) / readings stored in all
phases. Disk in steady state, read live through a read-only sqlite3 (dbstat): after the max pass
(continued unmeasured to an hour of simulated data when N <= --long-max) and at the end, the
database's pages per reading stored by then (bytes_per_reading_1h) and their growth per reading
between the two (bytes_per_reading_slope); per device at the end, the fixed tables (checkpoints,
model versions, prediction blocks, saved detectors) and how many versions devices hold.
CPU per reading by stage: vigild's CPU time over the max pass (/proc) split by the perf
profile's samples (cpu-clock), grouped by symbol, then by library, then by thread.
"""
import argparse, http.client, json, os, re, resource, shutil, signal, subprocess, sys, tempfile, \
    threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest import free_ports, wait_http, dir_bytes  # noqa: E402
from fleet_perf import STAGES, source_functions, perf_report, wrk, \
    http_rate, median, Nginx  # noqa: E402

CHANNELS = 8
HTTP_BATCH = 5000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print("fleet:", *a, file=sys.stderr, flush=True)


# ---- vigild ------------------------------------------------------------------------------------

class Vigild:
    def __init__(self, build, tmp, hidden=0, model_conf="", kind=""):
        self.dir = tempfile.mkdtemp(dir=tmp, prefix="vigil-")
        self.data = os.path.join(self.dir, "data")
        self.port, self.sport = free_ports(2)
        self.log = open(os.path.join(self.dir, "log"), "w")
        conf = []
        if hidden > 0 or model_conf or kind:  # --hidden, --model-kind (and fleet_lstm.py's
            path = os.path.join(self.dir, "vigild.conf")  # --precision); the rest stay defaults
            with open(path, "w") as f:
                f.write("[model]\n" + (f"hidden = {hidden}\n" if hidden > 0 else "") +
                        (f"kind = {kind}\n" if kind else "") + model_conf)
            conf = ["--config", path]
        # As systemd/vigild.service runs it: one OpenBLAS thread per calling thread (a
        # training's or a group step's sgemm would otherwise wake OpenBLAS's own threads,
        # which spin in sched_yield on the two cores the pipeline needs).
        env = dict(os.environ)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        self.p = subprocess.Popen([os.path.join(build, "vigild")] + conf +
                                  ["--data-dir", self.data, "--http", f"127.0.0.1:{self.port}",
                                   "--stream", f"127.0.0.1:{self.sport}", "--log-level", "warn"],
                                  stderr=self.log, env=env)
        wait_http(self.port, "/healthz")

    def heap(self):
        """(malloc's in-use bytes over all arenas, SQLite's allocated bytes), read by attaching
        gdb for a moment (malloc_stats() prints to vigild's stderr, the log); (0, 0) when gdb
        is missing or fails. SQLite's bytes are mostly the writer's page cache (storage.cache_mb),
        which grows with the data, not with the devices."""
        logp = os.path.join(self.dir, "log")
        before = os.path.getsize(logp)
        try:
            out = subprocess.run(["gdb", "-p", str(self.p.pid), "-batch", "-ex",
                                  "call (void)malloc_stats()", "-ex",
                                  "print (long long)sqlite3_memory_used()", "-x",
                                  os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                               "fleet_mem.py")],
                                 capture_output=True, text=True, timeout=300).stdout
        except (OSError, subprocess.TimeoutExpired):
            return 0, 0, {}
        with open(logp) as f:
            f.seek(before)
            tail = f.read()
        m = re.search(r"Total \(incl. mmap\):\s*system bytes\s*=\s*\d+\s*in use bytes\s*=\s*(\d+)",
                      tail)
        q = re.findall(r"^\$\d+ = (\d+)", out, re.M)
        # bench/fleet_mem.py's parts per device (none for an empty vigild or without gdb).
        parts = {}
        pm = re.search(r"^MEM (.*)$", out, re.M)
        if pm:
            parts = {k: int(x) for k, x in (kv.split("=") for kv in pm.group(1).split())}
        return (int(m.group(1)) if m else 0), (int(q[-1]) if q else 0), parts

    def get(self, path, timeout=120):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def metrics(self):
        """Scalar metrics by 'name{labels}', plus '_states': devices per state (0 learning,
        1 normal, 2 warning, 3 anomaly) from vigil_devices_by_state (the per-device series stop
        at http.metrics_max_devices; a vigild without the family: counted from them).
        Per-device series are skipped."""
        st, body = self.get("/metrics")
        m, states, by_state = {}, [0, 0, 0, 0], None
        names = ["learning", "normal", "warning", "anomaly"]
        for line in body.decode().splitlines():
            if not line or line[0] == "#":
                continue
            if line.startswith("vigil_device_state{"):
                states[min(3, int(float(line.rsplit(" ", 1)[1])))] += 1
                continue
            if line.startswith("vigil_device_"):
                continue
            k, v = line.rsplit(" ", 1)
            if k.startswith('vigil_devices_by_state{state="'):
                by_state = by_state or [0, 0, 0, 0]
                by_state[names.index(k.split('"')[1])] = int(float(v))
            m[k] = float(v)
        m["_states"] = by_state if by_state is not None else states
        return m

    def proc_status(self, key):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def cpu_s(self):
        with open(f"/proc/{self.p.pid}/stat") as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / CLK_TCK

    def threads_cpu(self):
        out = {}
        for t in os.listdir(f"/proc/{self.p.pid}/task"):
            try:
                with open(f"/proc/{self.p.pid}/task/{t}/comm") as f:
                    name = f.read().strip()
                with open(f"/proc/{self.p.pid}/task/{t}/stat") as f:
                    v = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            name = re.sub(r"-\d+$", "", name)
            out[name] = out.get(name, 0) + (int(v[11]) + int(v[12])) / CLK_TCK
            try:  # time runnable but waiting for a CPU (other processes' load), seconds
                with open(f"/proc/{self.p.pid}/task/{t}/schedstat") as f:
                    out["wait:" + name] = out.get("wait:" + name, 0) + \
                        int(f.read().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                pass
        return out

    def stop(self):
        t0 = time.time()
        self.p.send_signal(signal.SIGTERM)
        self.rc = self.p.wait(timeout=900)
        self.stop_s = time.time() - t0
        if self.rc != 0:  # reported on the BENCH line: the disk figure is then incomplete
            with open(os.path.join(self.dir, "log")) as f:
                log(f"vigild exited {self.rc} on SIGTERM: {f.read()[-300:].strip()}")
        return dir_bytes(self.data)

    def query(self, q):
        """Rows (lists of strings) of q run by a read-only sqlite3 on the database, stopped or
        live (WAL mode lets a reader see the last commit beside the writer); [] on failure."""
        try:
            out = subprocess.run(["sqlite3", "-readonly", os.path.join(self.data, "vigil.db"), q],
                                 capture_output=True, text=True, timeout=600).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [ln.split("|") for ln in out.splitlines() if "|" in ln]

    def tables(self):
        """Bytes per table (with its indexes) of the database, from SQLite's dbstat."""
        q = ("SELECT coalesce(t.tbl_name, s.name), sum(s.pgsize) FROM dbstat s "
             "LEFT JOIN sqlite_schema t ON t.name = s.name GROUP BY 1")
        return {r[0]: int(r[1]) for r in self.query(q) if len(r) == 2}

    def snapshot(self, stored, t_sim):
        """The disk of the running vigild: per table (dbstat), the database's pages (page_count
        x page_size: what the file holds once the WAL is checkpointed, free pages included), the
        data folder (database, WAL and its index as they are now), and the model versions and
        checkpoints the devices hold, with the readings acknowledged by then."""
        t0 = time.time()
        pages = self.query("SELECT 'db', (SELECT page_count FROM pragma_page_count) * "
                           "(SELECT page_size FROM pragma_page_size)")
        ver = self.query("SELECT 'v', count(*), coalesce(min(c), 0), coalesce(max(c), 0), "
                         "(SELECT count(*) FROM ckpts) FROM (SELECT count(*) AS c FROM models "
                         "GROUP BY device_id)")
        snap = {"stored": stored, "t_sim": t_sim, "tables": self.tables(),
                "db": int(pages[0][1]) if pages else 0, "folder": dir_bytes(self.data),
                "devices_with_versions": int(ver[0][1]) if ver else 0,
                "versions_min": int(ver[0][2]) if ver else 0,
                "versions_max": int(ver[0][3]) if ver else 0,
                "ckpt_rows": int(ver[0][4]) if ver else 0}
        snap["versions"] = sum(int(r[1]) for r in self.query(
            "SELECT 'n', count(*) FROM models")) if ver else 0
        log(f"disk at {t_sim} simulated s, {stored:.0f} readings ({time.time() - t0:.1f} s to "
            f"read): database {snap['db']}, folder {snap['folder']}, versions "
            f"{snap['versions']} of {snap['devices_with_versions']} devices "
            f"({snap['versions_min']}-{snap['versions_max']}), checkpoints {snap['ckpt_rows']}, "
            f"tables {snap['tables']}")
        return snap


def fed(m):
    return m.get("vigil_readings_scored_total", 0) + m.get("vigil_readings_not_scored_total", 0)


def delay_quantile(m0, m1, q):
    """q-quantile of the score delay over the pass, in seconds, interpolated linearly in the
    bucket as Prometheus' histogram_quantile does; inf when beyond the last finite bucket."""
    pat = re.compile(r'vigil_score_delay_seconds_bucket\{le="([^"]+)"\}')
    b = []
    for k, v in m1.items():
        mm = pat.fullmatch(k)
        if mm:
            le = float("inf") if mm.group(1) == "+Inf" else float(mm.group(1))
            b.append((le, v - m0.get(k, 0)))
    b.sort()
    if not b or b[-1][1] <= 0:
        return float("nan")
    target = q * b[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in b:
        if c >= target:
            if le == float("inf"):
                return float("inf")
            return prev_le + (le - prev_le) * (target - prev_c) / max(c - prev_c, 1e-9)
        prev_le, prev_c = le, c
    return float("inf")


def serving_counts(m):
    """(scored, scored by a trained model, by an LSTM): NaN for the last two when vigild does
    not export them (a build before the serving counters)."""
    nan = float("nan")
    return (m.get("vigil_readings_scored_total", 0),
            m.get("vigil_readings_scored_serving_total", nan),
            m.get("vigil_readings_scored_lstm_total", nan))


def assign_groups(v, n, size, conns=16):
    """PUT /v1/devices/pump-i {"group": "g-<(i-1)//size>"} for i in 1..n through the real API,
    over `conns` keep-alive connections (each PUT waits for its commit: concurrency lets the
    writer group them). Before any reading, so every device is a member from its first reading.
    Returns the wall seconds."""
    t0 = time.time()
    errors = []

    def worker(k):
        c = http.client.HTTPConnection("127.0.0.1", v.port, timeout=120)
        try:
            for i in range(1 + k, n + 1, conns):
                body = json.dumps({"group": f"g-{(i - 1) // size}"})
                c.request("PUT", f"/v1/devices/pump-{i}", body,
                          {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                if r.status not in (200, 201):
                    errors.append(f"pump-{i}: {r.status}")
                    return
        except (OSError, http.client.HTTPException) as e:
            errors.append(str(e))
        finally:
            c.close()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError(f"group assignment failed: {errors[:3]}")
    return time.time() - t0


# ---- load --------------------------------------------------------------------------------------

class Sims:
    """The two vigil-sim processes of one phase: simulated seconds [frm, to) at `speed`."""

    def __init__(self, build, v, n, start_ms, frm, to, speed):
        half = n // 2
        common = ["--channels", str(CHANNELS), "--fault-at", "-1", "--quiet",
                  "--start", str(start_ms), "--from", str(frm), "--duration", str(to),
                  "--speed", f"{speed:.6f}", "--batch", str(HTTP_BATCH)]
        sim = os.path.join(build, "vigil-sim")
        cmds = [[sim, "--stream", f"127.0.0.1:{v.sport}", "--devices", str(half),
                 "--first-device", "1"],
                [sim, "--http", f"127.0.0.1:{v.port}", "--devices", str(n - half),
                 "--first-device", str(half + 1), "--connections", "2"]]
        self.procs = [subprocess.Popen(c + common, stderr=subprocess.PIPE, text=True)
                      for c in cmds]

    def wait(self, timeout=1800):
        tot = {}
        for p in self.procs:
            _, err = p.communicate(timeout=timeout)
            line = [ln for ln in err.splitlines() if ln.startswith("vigil-sim: done")]
            if p.returncode != 0 or not line:
                raise RuntimeError(f"vigil-sim failed ({p.returncode}): {err[-500:]}")
            for k, val in re.findall(r"(\w+)=([0-9.]+)", line[0]):
                tot[k] = max(tot.get(k, 0), float(val)) if k == "seconds" else \
                    tot.get(k, 0) + float(val)
        if tot.get("errors", 0):
            raise RuntimeError(f"vigil-sim: {tot['errors']:.0f} readings not acknowledged")
        return tot

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()


def wait_scored(v, target, timeout, poll):
    """Polls /metrics until target vectors are scored or skipped; returns (time, metrics)."""
    t0 = time.time()
    while True:
        m = v.metrics()
        if fed(m) >= target or time.time() - t0 > timeout:
            return time.time(), m
        time.sleep(poll)


def serving_fraction(m0, m1):
    """Of the vectors scored between two metrics reads: the fractions scored by a trained model
    and by an LSTM (NaN without the counters)."""
    s0, s1 = serving_counts(m0), serving_counts(m1)
    d = s1[0] - s0[0]
    if d <= 0:
        return (float("nan"), float("nan"))
    return ((s1[1] - s0[1]) / d, (s1[2] - s0[2]) / d)


def run_phase(build, v, n, start_ms, frm, to, speed, poll):
    """Runs one phase; returns a dict of what it measured."""
    m0 = v.metrics()
    c0, t0 = v.cpu_s(), time.time()
    th0 = v.threads_cpu()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sims = Sims(build, v, n, start_ms, frm, to, speed)
    try:
        tot = sims.wait()
    finally:
        sims.kill()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t_acked = time.time()
    # Each sim first runs its pumps silently up to --from (at 100k devices and 500 s, 5-10 s of
    # its CPU before the first reading is sent): the pass starts at its first live send, which
    # its own `seconds` (first send to last answer) dates.
    t_send = t_acked - tot["seconds"] if tot.get("seconds", 0) > 0 else t0
    t1, m1 = wait_scored(v, fed(m0) + tot["lines_sent"], 600, poll)
    c1 = v.cpu_s()
    th1 = v.threads_cpu()
    readings = tot["readings_acked"]
    r = {"readings": readings, "vectors": tot["lines_sent"], "wall": t1 - t_send,
         "wall_acked": t_acked - t_send, "rate": readings / (t1 - t_send), "cpu": c1 - c0,
         "sim_setup_s": t_send - t0,
         "sim_cpu": ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime,
         "p50": delay_quantile(m0, m1, 0.5), "p99": delay_quantile(m0, m1, 0.99),
         "scored_all": fed(m1) - fed(m0) >= tot["lines_sent"],
         "not_scored": m1.get("vigil_readings_not_scored_total", 0)
         - m0.get("vigil_readings_not_scored_total", 0),
         "trainings": m1.get("vigil_model_trainings_total", 0)
         - m0.get("vigil_model_trainings_total", 0),
         "postponed": m1.get("vigil_train_postponed_total", 0)
         - m0.get("vigil_train_postponed_total", 0),
         "retries": tot.get("retries", 0), "states": m1["_states"], "speed": speed,
         "serving": serving_fraction(m0, m1),
         "threads": {k: th1.get(k, 0) - th0.get(k, 0) for k in th1}, "m1": m1}
    return r

# ---- one fleet size ----------------------------------------------------------------------------

def fmt_ms(s):
    return "inf" if s == float("inf") else f"{s * 1000:.0f}"


def run_size(a, n, tmp, empty, funcs, do_status):
    rss_empty = empty["rss_kb"]
    res = {"n": n}
    v = Vigild(a.build, tmp, a.hidden, model_conf=a.model_conf, kind=a.model_kind)
    start_ms = (int(time.time()) - 8 * 86400) * 1000
    poll = 0.25 if n <= 10000 else 1.0
    stored = 0
    t_sim = 0
    phases = []
    try:
        # Groups first, through the API, before any reading arrives.
        if a.group_size > 0:
            res["group_put_s"] = assign_groups(v, n, a.group_size)
            log(f"N={n} {n} devices put in groups of {a.group_size}: "
                f"{res['group_put_s']:.1f} s")
        # Warm-up to serving: model.warmup (400) simulated seconds at full speed, then rounds of
        # 101 s (a device still learning asks again every warmup/4 + 1 readings) until at most
        # 1 % of the fleet is learning, each round after the training queue drained; bounded
        # by --max-rounds and by --warmup-budget seconds of wall time in all (then the max
        # pass runs with whatever still learns, and serving= says so). N > --steady-max: the
        # old 2 simulated seconds (every device exists, none trained).
        tw0 = time.time()
        m = v.metrics()
        tr0 = m.get("vigil_model_trainings_total", 0)
        tj0 = (m.get("vigil_training_seconds_count", 0), m.get("vigil_training_seconds_sum", 0))
        if n <= a.steady_max:
            t_end = 400
            r = run_phase(a.build, v, n, start_ms, 0, t_end, 0, poll)
            stored += r["readings"]
            t_sim = t_end
            rounds = 0
            res["warmup_feed_s"] = r["wall"]
            drain_s = 0.0
            while True:
                t0 = time.time()
                left = a.warmup_budget - (t0 - tw0)
                while time.time() - t0 < max(0.0, min(a.drain_max, left)):
                    m = v.metrics()
                    if m.get("vigil_train_queue_jobs", 0) == 0:
                        break
                    time.sleep(max(0.5, poll))
                drain_s += time.time() - t0
                m = v.metrics()
                learning = m["_states"][0]
                log(f"N={n} warm-up t={t_sim}s ({time.time() - tw0:.0f} s): states "
                    f"{m['_states']} (learning, normal, warning, anomaly), trainings "
                    f"{m.get('vigil_model_trainings_total', 0):.0f}, due "
                    f"{m.get('vigil_train_queue_jobs', 0):.0f}")
                if learning <= 0.01 * n or rounds >= a.max_rounds or \
                        time.time() - tw0 >= a.warmup_budget:
                    break
                r = run_phase(a.build, v, n, start_ms, t_sim, t_sim + 101, 0, poll)
                stored += r["readings"]
                t_sim += 101
                rounds += 1
            res["warmup_rounds"] = rounds
            res["warmup_drain_s"] = drain_s
            if n <= a.long_max:
                measure_to = max(t_sim + 300, a.steady_seconds)
            else:
                measure_to = t_sim + max(10, -(-a.measure_readings // (n * CHANNELS)))
        else:
            r = run_phase(a.build, v, n, start_ms, 0, 2, 0, poll)
            stored += r["readings"]
            t_sim = 2
            measure_to = t_sim + max(10, -(-a.measure_readings // (n * CHANNELS)))
        m = v.metrics()
        res["warmup_s"] = time.time() - tw0
        res["warmup_trainings"] = m.get("vigil_model_trainings_total", 0) - tr0
        tj = (m.get("vigil_training_seconds_count", 0) - tj0[0],
              m.get("vigil_training_seconds_sum", 0) - tj0[1])
        res["warmup_train_jobs"] = tj[0]
        res["warmup_s_per_train_job"] = tj[1] / tj[0] if tj[0] else 0.0
        res["warmup_rss_kb"] = v.proc_status("VmRSS")
        res["warm_states"] = m["_states"]

        # Max pass, profiled.
        prof = os.path.join(v.dir, "perf.data")
        perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", str(a.perf_freq),
                                 "-p", str(v.p.pid), "-o", prof, "-q"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            r = run_phase(a.build, v, n, start_ms, t_sim, measure_to, 0, poll)
        finally:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=120)
        stored += r["readings"]
        r["name"] = "max"
        r["sim_from"], r["sim_to"] = t_sim, measure_to
        phases.append(r)
        t_sim = measure_to
        log(f"N={n} max: {r['readings']:.0f} readings in {r['wall']:.1f}s "
            f"({r['rate']:.0f}/s), p99 {fmt_ms(r['p99'])} ms, cpu {r['cpu']:.1f}s, "
            f"states {r['states']}")
        res["max"] = r
        # Disk in steady state: the first point after an hour of simulated data (the long runs
        # go on to it unmeasured at full speed, usually from 2,700 s), the second at the end.
        if n <= a.long_max and t_sim < 3600:
            rf = run_phase(a.build, v, n, start_ms, t_sim, 3600, 0, poll)
            stored += rf["readings"]
            t_sim = 3600
        res["snap1"] = v.snapshot(stored, t_sim)
        stages, rows, total = perf_report(prof, funcs)
        res["stages"], res["rows"], res["samples"] = stages, rows, total

        # Paced passes while the p99 is over 1 s.
        best = r if r["p99"] < 1.0 and r["scored_all"] else None
        for frac in (0.7, 0.5):
            if best is not None:
                break
            speed = frac * r["rate"] / (n * CHANNELS)
            secs = max(3, round(speed * a.paced_wall))
            rp = run_phase(a.build, v, n, start_ms, t_sim, t_sim + secs, speed, poll)
            stored += rp["readings"]
            t_sim += secs
            rp["name"] = f"paced{int(frac * 100)}"
            rp["sim_from"], rp["sim_to"] = t_sim - secs, t_sim
            # The offered rate: a paced pass cannot go faster than it is fed.
            rp["rate"] = rp["readings"] / max(rp["wall_acked"], 1e-9)
            phases.append(rp)
            log(f"N={n} paced at {speed:.3f}x real time: {rp['rate']:.0f}/s, "
                f"p99 {fmt_ms(rp['p99'])} ms")
            if rp["p99"] < 1.0 and rp["scored_all"]:
                best = rp
        res["best"] = best

        # Status endpoint beside nginx, ingest at half the sustained rate. Closed loop (wrk)
        # for the rates, in alternating rounds (vigil, nginx, nginx, vigil, ...) so the
        # machine's changing load falls on both alike; then open loop at half nginx's rate
        # (the goal's rate) for the latency that rate gets, on vigild and on nginx.
        if do_status:
            sustained = best["rate"] if best else r["rate"] * 0.5
            speed = 0.5 * sustained / (n * CHANNELS)
            rounds, wsecs, psecs = a.status_rounds, 5, 5
            busy = 2 * rounds * wsecs + 2 * psecs + 4 * rounds + 10  # wrk and process starts
            secs = max(3, round(speed * busy))
            st, body = v.get("/v1/devices/pump-1/status")
            if st != 200:
                raise RuntimeError(f"status of pump-1: {st} {body[:200]!r}")
            vurl = f"http://127.0.0.1:{v.port}/v1/devices/pump-1/status"
            ng = Nginx(tmp, body)
            nurl = f"http://127.0.0.1:{ng.port}/status.json"
            wv, wn = [], []
            try:
                m0 = v.metrics()
                la0 = os.getloadavg()[0]
                sims = Sims(a.build, v, n, start_ms, t_sim, t_sim + secs, speed)
                try:
                    time.sleep(2)
                    for k in range(rounds):
                        order = [(wv, vurl), (wn, nurl)]
                        for out, url in (order if k % 2 == 0 else order[::-1]):
                            out.append(wrk(url, wsecs))
                    rate = 0.5 * median([x["rps"] for x in wn])
                    th0 = v.threads_cpu()
                    pv = http_rate(a.http_rate, v.port, "/v1/devices/pump-1/status", rate, psecs)
                    th1 = v.threads_cpu()
                    pn = http_rate(a.http_rate, ng.port, "/status.json", rate, psecs)
                    ingest_running = all(p.poll() is None for p in sims.procs)
                    tot = sims.wait()
                finally:
                    sims.kill()
                la1 = os.getloadavg()[0]
                _, m1 = wait_scored(v, fed(m0) + tot["lines_sent"], 600, poll)
            finally:
                ng.stop()
            stored += tot["readings_acked"]
            t_sim += secs
            # Per thread over vigild's open-loop pass: CPU and time runnable but waiting for a
            # CPU (schedstat), in ms per second of the pass.
            pth = {k: 1000 * (th1.get(k, 0) - th0.get(k, 0)) / psecs for k in th1}
            log("status open loop, vigild's threads, ms per s (CPU; runnable waiting for a CPU): "
                + ", ".join(f"{k} {pth[k]:.0f}; {pth.get('wait:' + k, 0):.0f}"
                            for k in sorted(pth, key=lambda k: -pth[k])
                            if not k.startswith("wait:") and pth[k] >= 1))
            res["status"] = {"vigil": wv, "nginx": wn, "paced": pv, "nginx_paced": pn,
                             "threads": pth,
                             "paced_rate": rate, "ingest_rate":
                             tot["readings_acked"] / max(tot["seconds"], 1e-9),
                             "ingest_throughout": ingest_running, "load": (la0, la1),
                             "speed": speed, "body_bytes": len(body),
                             "p99_delay": delay_quantile(m0, m1, 0.99)}
            log(f"status: closed loop vigil {wv}, nginx {wn}; open loop at {rate:.0f}/s: "
                f"vigil {pv}, nginx {pn}; load average {la0:.1f} -> {la1:.1f}")

        m = v.metrics()
        res["states"] = m["_states"]
        res["trainings"] = m.get("vigil_model_trainings_total", 0)
        res["postponed"] = m.get("vigil_train_postponed_total", 0)
        res["written"] = m.get("vigil_store_readings_written_total", 0)
        res["rss_kb"] = v.proc_status("VmRSS")
        res["hwm_kb"] = v.proc_status("VmHWM")
        res["vmdata_kb"] = v.proc_status("VmData")
        res["heap"], res["sqlite_mem"], res["parts"] = v.heap()
        res["sim_seconds"] = t_sim
        res["snap2"] = v.snapshot(stored, t_sim)
    finally:
        disk = v.stop()
    res["stored"] = stored
    res["disk"] = disk
    res["stop_s"] = v.stop_s
    res["exit"] = v.rc
    res["tables"] = v.tables()
    res["rss_per_dev_kb"] = (res["rss_kb"] - rss_empty) / n
    res["warmup_rss_per_dev_kb"] = (res["warmup_rss_kb"] - rss_empty) / n
    res["group_size"] = a.group_size
    res["hidden"] = a.hidden or "default"
    res["model_kind"] = a.model_kind or "default"
    res["vmdata_per_dev_kb"] = res["vmdata_kb"] / n
    # malloc's in-use bytes less an empty vigild's, and that less SQLite's growth (its page
    # cache, bounded by storage.cache_mb whatever N is), per device.
    res["empty_heap"], res["empty_sqlite"] = empty["heap"], empty["sqlite_mem"]
    res["heap_per_dev_kb"] = (res["heap"] - empty["heap"]) / 1024 / n
    res["heap_less_sqlite_per_dev_kb"] = \
        (res["heap"] - empty["heap"] - (res["sqlite_mem"] - empty["sqlite_mem"])) / 1024 / n
    res["phases"] = phases
    if not a.keep:
        shutil.rmtree(v.dir, ignore_errors=True)
    return res


def print_size(res):
    n = res["n"]
    best = res["best"] or res["max"]
    met = 1 if res["best"] else 0
    mx = res["max"]
    reading_ns = mx["cpu"] / max(mx["readings"], 1) * 1e9
    # Training over the max pass: jobs done against jobs due (a serving device retrains every
    # model.retrain_every = 1000 readings), and the CPU of one job on the training thread.
    due = mx["vectors"] * (1 - mx["states"][0] / n) / 1000
    # What the profile says this machine allows when vigild has both cores to itself: the
    # busiest thread's CPU per reading bounds one core, the total bounds two (training left out,
    # since it is asynchronous and falls behind rather than slowing ingest).
    th_ns = {k: x / max(mx["readings"], 1) * 1e9 for k, x in mx["threads"].items()
             if not k.startswith("wait:")}
    busiest = max((k for k in th_ns if k != "train"), key=lambda k: th_ns[k])
    sim_ns = mx["sim_cpu"] / max(mx["readings"], 1) * 1e9  # the two load generators
    est = min(1e9 / max(th_ns[busiest], 1),
              2e9 / max(reading_ns - th_ns.get("train", 0) + sim_ns, 1))
    train_ms = 1000 * mx["threads"].get("train", 0) / max(mx["trainings"], 1)
    total = max(res["samples"], 1)
    per = {s: reading_ns * res["stages"][s] / total for s in STAGES}
    stage_kv = " ".join(f"cpu_ns_{s}={per[s]:.0f}" for s in STAGES)
    st = res["states"]
    # The readings' tables: the chunk rows and the log of readings not yet cut into rows.
    readings_bytes = res['tables'].get('readings', 0) + res['tables'].get('readings_log', 0)
    # Steady state: the database at the first point (after an hour of simulated data for
    # N <= --long-max) per reading stored by then, and its growth per reading to the end; the
    # fixed per-device tables at the end (live), beside the stopped database's detectors.
    s1, s2 = res["snap1"], res["snap2"]
    slope = (s2["db"] - s1["db"]) / (s2["stored"] - s1["stored"]) \
        if s2["stored"] > s1["stored"] else float("nan")
    t2 = s2["tables"]
    print(f"BENCH fleet-{n} readings_per_s={best['rate']:.0f} "
          f"p99_status_delay_ms={fmt_ms(best['p99'])} "
          f"rss_per_device_kb={res['rss_per_dev_kb']:.1f} "
          f"bytes_per_reading={res['disk'] / max(res['stored'], 1):.2f} "
          f"p99_under_1s={met} pass={best['name']} max_rate={mx['rate']:.0f} "
          f"max_p99_ms={fmt_ms(mx['p99'])} cpu_ns_per_reading={reading_ns:.0f} {stage_kv} "
          f"train_jobs_done={mx['trainings']:.0f} train_jobs_due={due:.0f} "
          f"train_cpu_ms_per_job={train_ms:.1f} busiest_thread={busiest} "
          f"busiest_thread_ns_per_reading={th_ns[busiest]:.0f} "
          f"sim_cpu_ns_per_reading={sim_ns:.0f} cpu_bound_estimate_readings_per_s={est:.0f} "
          f"learning={st[0]} normal={st[1]} warning={st[2]} anomaly={st[3]} "
          f"trainings={res['trainings']:.0f} train_postponed={res['postponed']:.0f} "
          f"readings_stored={res['stored']:.0f} sim_seconds={res['sim_seconds']} "
          f"vmdata_per_device_kb={res['vmdata_per_dev_kb']:.1f} rss_kb={res['rss_kb']} "
          f"disk_bytes={res['disk']} readings_table_bytes_per_reading="
          f"{readings_bytes / max(res['stored'], 1):.2f} "
          f"detectors_table_bytes_per_device={res['tables'].get('detectors', 0) / n:.0f} "
          f"stop_s={res['stop_s']:.1f} vigild_exit={res['exit']} "
          f"serving={mx['serving'][0]:.4f} serving_lstm={mx['serving'][1]:.4f} "
          f"group_size={res['group_size']} warmup_s={res['warmup_s']:.0f} "
          f"warmup_rounds={res.get('warmup_rounds', 0)} "
          f"warmup_learning={res['warm_states'][0]} "
          f"warmup_train_jobs={res['warmup_train_jobs']:.0f} "
          f"warmup_s_per_train_job={res['warmup_s_per_train_job']:.3f} "
          f"warmup_rss_per_device_kb={res['warmup_rss_per_dev_kb']:.1f} "
          f"group_put_s={res.get('group_put_s', 0):.1f} hidden={res['hidden']} "
          f"model_kind={res['model_kind']} "
          f"heap_per_device_kb={res['heap_per_dev_kb']:.1f} "
          f"heap_less_sqlite_per_device_kb={res['heap_less_sqlite_per_dev_kb']:.1f} "
          f"sqlite_mem_kb={res['sqlite_mem'] / 1024:.0f} "
          f"bytes_per_reading_1h={s1['db'] / max(s1['stored'], 1):.2f} "
          f"folder_bytes_per_reading_1h={s1['folder'] / max(s1['stored'], 1):.2f} "
          f"snap1_sim_seconds={s1['t_sim']} snap1_readings={s1['stored']:.0f} "
          f"bytes_per_reading_slope={slope:.2f} "
          f"ckpt_bytes_per_device={t2.get('ckpts', 0) / n:.0f} "
          f"models_bytes_per_device={t2.get('models', 0) / n:.0f} "
          f"preds_bytes_per_device={t2.get('preds', 0) / n:.0f} "
          f"live_detectors_bytes_per_device={t2.get('detectors', 0) / n:.0f} "
          f"versions_per_device={s2['versions'] / n:.2f} versions_min={s2['versions_min']} "
          f"versions_max={s2['versions_max']} "
          f"versions_devices={s2['devices_with_versions']} "
          f"ckpts_per_device={s2['ckpt_rows'] / n:.2f}", flush=True)
    log(f"N={n} tables: {res['tables']}")
    parts = res.get("parts", {})
    if parts.get("devices"):
        # Heap bytes per device by part (bench/fleet_mem.py); "other" is the rest of the heap's
        # growth less SQLite's: storage's per-device state, buffers, malloc's free space.
        nd = parts["devices"]
        known = {k: x for k, x in parts.items() if k not in ("devices", "lstm_models") and
                 not k.startswith(("lstm_serving", "lstm_held", "no_lstm"))}
        other = res["heap"] - res["empty_heap"] - (res["sqlite_mem"] - res["empty_sqlite"]) - \
            sum(known.values())
        print(f"BENCH fleet-{n}-memory devices={nd} " +
              " ".join(f"{k}_b={x / nd:.0f}" for k, x in sorted(known.items())) +
              f" other_b={other / nd:.0f} sqlite_kb={res['sqlite_mem'] / 1024:.0f} "
              f"lstm_models={parts.get('lstm_models', 0)} "
              f"lstm_serving={parts.get('lstm_serving', 0)} "
              f"lstm_held_not_serving={parts.get('lstm_held_not_serving', 0)} "
              f"no_lstm={parts.get('no_lstm', 0)}", flush=True)
    th = {k: x for k, x in mx["threads"].items() if not k.startswith("wait:")}
    ths = sum(th.values()) or 1
    waits = {k[5:]: x for k, x in mx["threads"].items() if k.startswith("wait:")}
    log(f"N={n} time runnable but waiting for a CPU over the max pass, share of the pass: " +
        ", ".join(f"{k} {100 * x / mx['wall']:.0f}%" for k, x in
                  sorted(waits.items(), key=lambda kv: -kv[1]) if x > 0.01 * mx["wall"]))
    log(f"N={n} CPU by thread over the max pass ({mx['wall']:.1f} s; share of vigild's CPU, "
        f"then of one core): " + ", ".join(
            f"{k} {100 * x / ths:.0f}% ({100 * x / mx['wall']:.0f}%)"
            for k, x in sorted(th.items(), key=lambda kv: -kv[1]) if x))
    log(f"N={n} profile ({total} samples): " + ", ".join(
        f"{s} {100 * res['stages'][s] / total:.1f}%" for s in STAGES))
    for s in STAGES:
        top = [r for r in res["rows"] if r[1] == s][:6]
        log(f"  {s}: " + "; ".join(f"{r[4]} ({r[2]}, {r[3]}) {100 * r[0] / total:.1f}%"
                                   for r in top))
    for p in res["phases"]:
        log(f"  phase {p['name']}: sim {p['sim_from']}..{p['sim_to']} s, speed {p['speed']:.3f}, "
            f"{p['readings']:.0f} readings, {p['rate']:.0f}/s (sims' silent run to --from "
            f"{p['sim_setup_s']:.1f} s), serving {p['serving'][0]:.4f}, p50 {fmt_ms(p['p50'])} ms, "
            f"p99 {fmt_ms(p['p99'])} ms, trainings {p['trainings']:.0f}, postponed "
            f"{p['postponed']:.0f}, not scored {p['not_scored']:.0f}, 503 retries "
            f"{p['retries']:.0f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--steady-max", type=int, default=100000,
                    help="largest N brought to serving before measuring (larger N: 2 simulated "
                    "seconds of warm-up, every device learning)")
    ap.add_argument("--long-max", type=int, default=1000,
                    help="largest N whose max pass runs to --steady-seconds (larger N: "
                    "--measure-readings readings)")
    ap.add_argument("--warmup-budget", type=float, default=1200,
                    help="wall seconds at most for a warm-up to serving")
    ap.add_argument("--drain-max", type=float, default=120,
                    help="wall seconds at most waiting for the training queue between rounds")
    ap.add_argument("--group-size", type=int, default=0,
                    help="devices per model group, assigned through PUT /v1/devices/{id} before "
                    "any reading (0: every device its own model)")
    ap.add_argument("--steady-seconds", type=int, default=2700,
                    help="simulated seconds at the end of a steady fleet's max pass")
    ap.add_argument("--max-rounds", type=int, default=20)
    ap.add_argument("--measure-readings", type=int, default=8_000_000,
                    help="readings in the max pass of a fleet that is not brought to steady state")
    ap.add_argument("--paced-wall", type=float, default=20, help="seconds of a paced pass")
    ap.add_argument("--perf-freq", type=int, default=499)
    ap.add_argument("--status-size", type=int, default=0,
                    help="N at which the status endpoint is measured (default: the smallest)")
    ap.add_argument("--status-rounds", type=int, default=3,
                    help="alternating closed-loop rounds of 5 s on vigild and on nginx")
    ap.add_argument("--hidden", type=int, default=0,
                    help="model.hidden for vigild, through a configuration file holding only that "
                    "(0: the built-in default, no file)")
    ap.add_argument("--model-kind", choices=("auto", "lstm", "linear"), default="",
                    help="model.kind for vigild, written to the configuration file --hidden "
                    "writes (default: the built-in one)")
    ap.add_argument("--workers", type=int, default=0,
                    help="model.workers for vigild (inference threads), written to the "
                    "configuration file --hidden writes (0: the built-in default)")
    ap.add_argument("--rt-priority", type=int, default=0,
                    help="http.rt_priority for vigild (its HTTP workers at that SCHED_RR "
                    "priority), written to the configuration file --hidden writes (0: off, the "
                    "built-in default)")
    ap.add_argument("--keep", action="store_true", help="keep the data folders and profiles")
    a = ap.parse_args()
    a.model_conf = f"workers = {a.workers}\n" if a.workers > 0 else ""
    if a.rt_priority > 0:  # a section after [model]: the file's last
        a.model_conf += f"[http]\nrt_priority = {a.rt_priority}\n"
    a.build = os.path.abspath(a.build)
    for exe in ("vigild", "vigil-sim"):
        if not os.access(os.path.join(a.build, exe), os.X_OK):
            sys.exit(f"fleet: {a.build}/{exe} missing: build first (cmake --build {a.build})")
    sizes = [int(x) for x in a.sizes.split(",") if x]
    status_n = a.status_size or min(sizes)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    funcs = source_functions(root)
    with open("/proc/loadavg") as f:
        log(f"load average at start: {f.read().split()[:3]}")
    tmp = tempfile.mkdtemp(prefix="vigil-fleet-")
    t_start = time.time()
    a.http_rate = os.path.join(tmp, "http_rate")
    subprocess.run(["cc", "-O2", "-o", a.http_rate, os.path.join(root, "bench", "http_rate.c")],
                   check=True)
    try:
        v = Vigild(a.build, tmp, a.hidden, model_conf=a.model_conf, kind=a.model_kind)
        time.sleep(0.5)
        empty = {"rss_kb": v.proc_status("VmRSS")}
        empty["heap"], empty["sqlite_mem"], _ = v.heap()
        rss_empty = empty["rss_kb"]
        v.stop()
        if v.rc != 0:
            sys.exit("fleet: an empty vigild did not stop cleanly")
        # The generator alone (no socket): it must not be what bounds the rates below.
        dry = subprocess.run([os.path.join(a.build, "vigil-sim"), "--dry-run", "--devices",
                              "10000", "--channels", str(CHANNELS), "--speed", "0",
                              "--duration", "200", "--fault-at", "-1", "--quiet"],
                             capture_output=True, text=True, timeout=300).stderr
        rate = re.search(r"readings_per_s=(\d+)", dry)
        print(f"BENCH fleet-sim dry_run_readings_per_s={rate.group(1) if rate else 0} "
              f"readings=16000000 processes=1", flush=True)
        results = []
        for n in sizes:
            res = run_size(a, n, tmp, empty, funcs, n == status_n)
            results.append(res)
            print_size(res)
            if "status" in res:
                s = res["status"]

                def med(side, k):
                    return median([x[k] for x in s[side]])
                pv, pn = s["paced"], s["nginx_paced"]
                met = int(med("vigil", "rps") >= 0.5 * med("nginx", "rps")
                          and pv["p99_ms"] < 5 and pv["rps"] >= 0.98 * s["paced_rate"]
                          and pv["errors"] == 0 and s["ingest_throughout"])
                print(f"BENCH status-http vigil_rps={med('vigil', 'rps'):.0f} "
                      f"nginx_rps={med('nginx', 'rps'):.0f} "
                      f"ratio={med('vigil', 'rps') / med('nginx', 'rps'):.2f} "
                      f"p99_ms={med('vigil', 'p99'):.2f} p50_ms={med('vigil', 'p50'):.2f} "
                      f"nginx_p50_ms={med('nginx', 'p50'):.2f} "
                      f"nginx_p99_ms={med('nginx', 'p99'):.2f} "
                      f"paced_rps={pv['rps']:.0f} paced_p50_ms={pv['p50_ms']:.2f} "
                      f"paced_p99_ms={pv['p99_ms']:.2f} paced_p999_ms={pv['p999_ms']:.2f} "
                      f"paced_errors={pv['errors']:.0f} nginx_paced_p99_ms={pn['p99_ms']:.2f} "
                      f"nginx_paced_p999_ms={pn['p999_ms']:.2f} goal_met={met} "
                      f"rounds={len(s['vigil'])} "
                      f"wrk_cpu_share={med('vigil', 'cpu_share'):.2f} "
                      f"mhd_runnable_wait_ms_per_s="
                      f"{s['threads'].get('wait:MHD-worker', 0):.0f} "
                      f"load_avg={s['load'][0]:.1f}-{s['load'][1]:.1f} "
                      f"http_rt_priority={a.rt_priority} "
                      f"devices={n} ingest_readings_per_s={s['ingest_rate']:.0f} "
                      f"ingest_p99_status_delay_ms={fmt_ms(s['p99_delay'])} "
                      f"non2xx={sum(x['non2xx'] for x in s['vigil'])} "
                      f"body_bytes={s['body_bytes']}", flush=True)
        if len(results) >= 2:
            xs = [r["n"] for r in results]
            ys = [r["rss_kb"] for r in results]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / \
                sum((x - mx) ** 2 for x in xs)
            print(f"BENCH fleet-rss rss_slope_kb_per_device={slope:.1f} "
                  f"empty_rss_kb={rss_empty} sizes={a.sizes}", flush=True)
        with open("/proc/loadavg") as f:
            log(f"load average at end: {f.read().split()[:3]}; "
                f"{time.time() - t_start:.0f} s in all")
    finally:
        if a.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Driver of bench/ingest; see that script. Standard library only.

Data: DEVICES devices x 8 channels, one point per device per second, values as a sensor gives
them (random walks rounded to 2-4 decimals), sent in batches of BATCH points (line protocol, or
the same points as JSON), by WRITERS concurrent clients. --protos chooses vigild's protocols,
--no-influxdb skips InfluxDB, --perf profiles vigild during each transfer (perf, cpu-clock).
cpu_ns_per_reading is vigild's CPU time over the transfer per reading, loop_cpu_ns_per_reading
that of its main thread (the libuv loop: the stream's reads, parsing, admission, answers).
A rate is readings (channel values) acknowledged per second of wall time, from the first request to the last answer; every answer
means durable (vigild: committed with synchronous=FULL; InfluxDB: its WAL fsynced per write,
wal-fsync-delay 0s, the default). Bytes per reading: the data directory after shutdown (vigild)
or after InfluxDB's full compaction of the shard, divided by the readings stored; vigild's
readings_bytes_per_reading counts only the pages of its readings table, its index and the
readings log (SQLite's dbstat; the log holds each device's newest readings until they fill a
chunk row, so at many devices and few readings each it holds most of them), without the
pipeline's saved models and detectors that the data directory also holds.
"""
import argparse, http.client, json, os, random, shutil, signal, socket, sqlite3, subprocess
import sys, tempfile, threading, time

CHANNELS = ["vib", "current", "temp", "pressure", "flow", "speed", "rpm", "power"]


def free_ports(n):
    """n distinct free loopback ports: every socket held until all are chosen (one at a time,
    the kernel may hand out the same port twice)."""
    socks = []
    try:
        for _ in range(n):
            socks.append(socket.socket())
            socks[-1].bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port():
    return free_ports(1)[0]


def wait_http(port, path, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            if r.status in (200, 204):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not come up")


def make_points(devices, points, seed=7):
    """Returns [(device, ts_ms, [values])] in time order, devices interleaved."""
    rnd = random.Random(seed)
    state = [[rnd.uniform(10, 100) for _ in CHANNELS] for _ in range(devices)]
    t0 = 1_700_000_000_000
    out = []
    for k in range(points // devices):
        for d in range(devices):
            s = state[d]
            for c in range(len(CHANNELS)):
                s[c] += rnd.gauss(0, 0.1)
            out.append((f"pump-{d}", t0 + k * 1000, [round(v, 2 + c % 3) for c, v in enumerate(s)]))
    return out


def lp_lines(pts):
    return [f"m,device={d} " + ",".join(f"{c}={v!r}" for c, v in zip(CHANNELS, vals)) + f" {ts}"
            for d, ts, vals in pts]


def batches(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def post_all(port, path, bodies, writers, ctype, expect):
    """Sends bodies over `writers` keep-alive connections; returns seconds."""
    idx = [0]
    lock = threading.Lock()
    errors = []

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if idx[0] >= len(bodies):
                    return
                b = bodies[idx[0]]
                idx[0] += 1
            for attempt in range(1000):
                c.request("POST", path, body=b, headers={"Content-Type": ctype})
                r = c.getresponse()
                data = r.read()
                if r.status == 503:  # queue full: honour Retry-After, bounded
                    time.sleep(0.01)
                    continue
                if r.status != expect:
                    errors.append(f"{r.status} {data[:200]!r}")
                break

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(writers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{path}: {len(errors)} failed requests, first: {errors[0]}")
    return dt


def stream_all(port, chunks, writers):
    """Sends line chunks over `writers` stream connections; waits for the final ok of each."""
    per = [chunks[i::writers] for i in range(writers)]
    errors = []

    def worker(mine):
        s = socket.create_connection(("127.0.0.1", port))
        nlines = 0
        for ch in mine:
            s.sendall(ch)
            nlines += ch.count(b"\n")
        s.shutdown(socket.SHUT_WR)
        buf = b""
        while True:
            d = s.recv(1 << 16)
            if not d:
                break
            buf += d
        s.close()
        last = buf.strip().split(b"\n")[-1] if buf.strip() else b""
        if last != f"ok {nlines}".encode():
            errors.append(f"last answer {last[:100]!r}, expected ok {nlines}")

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(m,)) for m in per]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    if errors:
        raise RuntimeError("stream: " + errors[0])
    return dt


def print_profile(proto, path, top=12):
    """Prints the top symbols of a perf.data of vigild (share of all its samples, by thread)."""
    out = subprocess.run(["perf", "report", "-i", path, "--stdio", "--no-children", "-n",
                          "--sort", "comm,sym", "-t", "|"], capture_output=True, text=True)
    rows, total = [], 0
    for line in out.stdout.splitlines():
        f = [x.strip() for x in line.split("|")]
        if len(f) < 4 or not f[0].endswith("%"):
            continue
        try:
            n = int(f[1])
        except ValueError:
            continue
        total += n
        rows.append((n, f[2], f[3].split("] ", 1)[-1]))
    rows.sort(reverse=True)
    print(f"PROFILE ingest-{proto} samples={total}")
    for n, comm, sym in rows[:top]:
        print(f"  {100 * n / max(total, 1):5.1f}%  {comm:<14} {sym}")
    for want in ("quota_admit", "lp_parse_line"):
        n = sum(r[0] for r in rows if r[2] == want)
        print(f"  {want}: {100 * n / max(total, 1):.1f}% of the samples")
    sys.stdout.flush()


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


class Vigild:
    def __init__(self, binary, tmp, args=()):
        """args: more of vigild's options (bench/history's --config)."""
        self.dir = tempfile.mkdtemp(dir=tmp, prefix="vigil-")
        self.port, self.sport = free_ports(2)
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.p = subprocess.Popen([binary, "--data-dir", os.path.join(self.dir, "data"),
                                   "--http", f"127.0.0.1:{self.port}",
                                   "--stream", f"127.0.0.1:{self.sport}", "--log-level", "warn",
                                   *args],
                                  stderr=self.log)
        wait_http(self.port, "/healthz")

    def cpu_s(self, tid=None):
        """CPU seconds (user + system) of vigild, or of its thread tid (the loop: the pid)."""
        path = f"/proc/{self.p.pid}/stat" if tid is None else \
            f"/proc/{self.p.pid}/task/{tid}/stat"
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kb(self, key="VmHWM:"):
        """vigild's peak RSS (VmHWM:, its whole life's), or another /proc status line's kB."""
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=120)
        if rc != 0:
            raise RuntimeError(f"vigild exited {rc}")
        return dir_bytes(os.path.join(self.dir, "data"))

    def readings_bytes(self):
        """Bytes of the stopped database's readings table, its index and the readings log
        (pages, dbstat)."""
        db = sqlite3.connect(f"file:{os.path.join(self.dir, 'data', 'vigil.db')}?mode=ro", uri=True)
        try:
            return db.execute("SELECT sum(s.pgsize) FROM dbstat s JOIN sqlite_schema t"
                              " ON t.name=s.name WHERE t.tbl_name IN ('readings', 'readings_log')"
                              ).fetchone()[0]
        finally:
            db.close()


class Influxd:
    def __init__(self, tmp):
        self.dir = tempfile.mkdtemp(dir=tmp, prefix="influx-")
        self.port, bport = free_ports(2)
        conf = os.path.join(self.dir, "influxdb.conf")
        with open(conf, "w") as f:
            f.write(f"""reporting-disabled = true
bind-address = "127.0.0.1:{bport}"
[meta]
  dir = "{self.dir}/meta"
[data]
  dir = "{self.dir}/data"
  wal-dir = "{self.dir}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "2s"
  compact-full-write-cold-duration = "2s"
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
""")
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.p = subprocess.Popen(["influxd", "run", "-config", conf], stdout=self.log,
                                  stderr=self.log)
        wait_http(self.port, "/ping")
        c = http.client.HTTPConnection("127.0.0.1", self.port)
        c.request("POST", "/query?q=CREATE+DATABASE+bench")
        c.getresponse().read()

    def settled_bytes(self, timeout=60):
        """Waits until the shard is compacted (size stops changing), returns data+wal bytes."""
        last, stable, t0 = -1, 0, time.time()
        while time.time() - t0 < timeout and stable < 4:
            time.sleep(1)
            n = dir_bytes(os.path.join(self.dir, "data")) + dir_bytes(os.path.join(self.dir, "wal"))
            stable = stable + 1 if n == last else 0
            last = n
        return last

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigild", required=True)
    ap.add_argument("points", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--protos", default="json,lp,stream",
                    help="which of vigild's protocols to measure (comma-separated)")
    ap.add_argument("--no-influxdb", action="store_true",
                    help="skip InfluxDB (its fields print as 0)")
    ap.add_argument("--perf", action="store_true",
                    help="perf-record vigild during each transfer; print its top symbols")
    a = ap.parse_args()
    protos = [p for p in a.protos.split(",") if p]
    if not set(protos) <= {"json", "lp", "stream"}:
        ap.error("--protos: json, lp, stream")
    pts = make_points(a.devices, a.points)
    readings = len(pts) * len(CHANNELS)
    lines = lp_lines(pts)
    lp_bodies = [("\n".join(b) + "\n").encode() for b in batches(lines, a.batch)]
    json_bodies = [json.dumps([{"device": d, "ts": ts, "values": dict(zip(CHANNELS, v))}
                               for d, ts, v in b]).encode() for b in batches(pts, a.batch)]
    stream_chunks = [("\n".join(b) + "\n").encode() for b in batches(lines, a.batch)]
    tmp = tempfile.mkdtemp(prefix="vigil-bench-")
    try:
        infl_rate, infl_bpr = 0.0, 0.0
        if not a.no_influxdb:
            infl = Influxd(tmp)
            try:
                t_infl = post_all(infl.port, "/write?db=bench&precision=ms", lp_bodies,
                                  a.writers, "text/plain", 204)
                infl_bytes = infl.settled_bytes()
            finally:
                infl.stop()
            infl_rate = readings / t_infl
            infl_bpr = infl_bytes / readings
        for proto in protos:
            v = Vigild(a.vigild, tmp)
            perf = None
            try:
                cpu0, loop0 = v.cpu_s(), v.cpu_s(v.p.pid)
                if a.perf:
                    prof = os.path.join(v.dir, "perf.data")
                    perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "999",
                                             "-p", str(v.p.pid), "-o", prof, "-q"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(0.5)
                if proto == "json":
                    dt = post_all(v.port, "/v1/readings", json_bodies, a.writers,
                                  "application/json", 200)
                elif proto == "lp":
                    dt = post_all(v.port, "/write?db=bench&precision=ms", lp_bodies, a.writers,
                                  "text/plain", 204)
                else:
                    # The stream takes nanosecond timestamps.
                    chunks = [b.replace(b"\n", b"000000\n") for b in stream_chunks]
                    dt = stream_all(v.sport, chunks, a.writers)
                if perf is not None:
                    perf.send_signal(signal.SIGINT)
                    perf.wait(timeout=120)
                    print_profile(proto, prof)
                cpu, loop = v.cpu_s() - cpu0, v.cpu_s(v.p.pid) - loop0
                rss = v.rss_kb()
            finally:
                if perf is not None and perf.poll() is None:
                    perf.kill()
                vbytes = v.stop()
            rbytes = v.readings_bytes()
            rate = readings / dt
            print(f"BENCH ingest-{proto} vigil={rate:.0f} influxdb={infl_rate:.0f} "
                  f"ratio={rate / infl_rate if infl_rate else 0:.2f} bytes_per_reading={vbytes / readings:.2f} "
                  f"influxdb_bytes_per_reading={infl_bpr:.2f} readings={readings} "
                  f"vigil_peak_rss_kb={rss} readings_bytes_per_reading={rbytes / readings:.2f} "
                  f"cpu_ns_per_reading={cpu / readings * 1e9:.0f} "
                  f"loop_cpu_ns_per_reading={loop / readings * 1e9:.0f}",
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

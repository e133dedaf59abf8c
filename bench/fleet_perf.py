"""Profile and HTTP tools of bench/fleet.py, moved whole from it: the stages a perf profile's
samples are grouped into (STAGES, source_functions, classify, perf_report), wrk and
bench/http_rate.c runs, and an nginx beside vigild (Nginx). Standard library only.
"""
import os, re, resource, signal, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest import free_port, wait_http  # noqa: E402

STAGES = ["parse", "store", "infer", "score", "train", "http", "pipeline", "other"]


# ---- profile -----------------------------------------------------------------------------------

def source_functions(root):
    """Function names defined in the sources that make a stage, from the files themselves."""
    files = {"parse": ["api/parse_lp.c", "api/parse_json.c"],
             "store": ["storage/" + f for f in sorted(os.listdir(os.path.join(root, "storage")))
                       if f.endswith(".c")],
             "score": ["model/detector_score.c"],
             "train": ["model/train.c", "model/detector_train.c", "model/detector_calib.c",
                       "model/detector_season.c"],
             "infer": ["model/lstm.c", "model/dense.c", "model/linear.c", "model/model.c",
                       "model/f16.c", "model/detector.c"]}
    out = {}
    pat = re.compile(r"^[a-z][\w \*]*?\b(\w+)\(", re.M)
    for stage, fs in files.items():
        for f in fs:
            try:
                with open(os.path.join(root, f)) as fh:
                    for name in pat.findall(fh.read()):
                        out.setdefault(name, stage)
            except OSError:
                pass
    return out  # a name defined in two areas (a static helper) counts for the first listed


def classify(comm, dso, sym, funcs):
    """The stage of one profile entry: training's thread first (its forward passes and BLAS
    calls are training), then symbol names, libraries, the sources' function names; what the
    inference shard spends outside the detector is 'pipeline' (device lookup, channel mapping,
    the prediction ring, libc); the rest of the writer's thread is 'store', of HTTP threads
    'http'; the rest (the loop thread's stream I/O, the kernel's networking) 'other'."""
    s = re.sub(r"\.(isra|part|constprop|cold|arch_)\S*$", "", sym)
    if comm.startswith("train"):
        return "train"
    if re.match(r"(lp_parse|parse_|lp_)", s):
        return "parse"
    if re.match(r"(sqlite3|store__|store_)", s):
        return "store"
    if re.match(r"(model_train|adam)", s) or "backward" in s:
        return "train"
    if re.match(r"(detector__score|detector__raw_score|likelihood_score|short_push|ring_push|"
                r"recent_median|detector__windows)", s):
        return "score"
    if re.match(r"(detector_step|model_step|lstm_|dense_|predictor_advance|detector__lstm|"
                r"detector__clamp|model__gemv|gemv_f16)", s):  # gemv_f16c: the float16 step
        return "infer"
    if s.startswith("MHD_") or "libmicrohttpd" in dso:
        return "http"
    if "libsqlite3" in dso:
        return "store"
    if "openblas" in dso or "lapack" in dso:
        return "train" if comm.startswith("train") else "infer"
    if s in funcs and "vigild" in dso:
        return funcs[s]
    if comm.startswith("infer") or re.match(r"(pipeline|score_point|map_channels|shard_main|"
                                            r"track_event|hash_name)", s):
        return "pipeline"
    # The rest of the writer's thread (write, fsync, copies) is storage's; of an HTTP thread's,
    # the request's handling.
    if comm.startswith("store-writer"):
        return "store"
    if comm.startswith("MHD") or comm.startswith("http-io"):
        return "http"
    return "other"


def perf_report(path, funcs):
    """Returns (stage -> samples, [(samples, stage, comm, dso, sym)], total)."""
    out = subprocess.run(["perf", "report", "-i", path, "--stdio", "--no-children", "-n",
                          "--sort", "comm,dso,sym", "-t", "|"], capture_output=True, text=True)
    rows, stages, total = [], dict.fromkeys(STAGES, 0), 0
    for line in out.stdout.splitlines():
        f = [x.strip() for x in line.split("|")]
        if len(f) < 5 or not f[0].endswith("%"):
            continue
        try:
            n = int(f[1])
        except ValueError:
            continue
        comm, dso, sym = f[2], f[3], re.sub(r"^\[.\]\s*", "", f[4])
        st = classify(comm, dso, sym, funcs)
        stages[st] += n
        total += n
        rows.append((n, st, comm, dso, sym))
    rows.sort(reverse=True)
    return stages, rows, total


# ---- HTTP peers --------------------------------------------------------------------------------

def wrk(url, secs=10):
    """Closed loop: wrk -t1 -c32 for secs; its rate, p50/p99 (ms) and the share of one core
    wrk itself used (it runs on the same two cores as the server and the ingest)."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{secs}s", "--latency", url],
                         capture_output=True, text=True, timeout=secs + 60).stdout
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime

    def ms(s):
        mm = re.fullmatch(r"([0-9.]+)(us|ms|s)", s)
        return float(mm.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[mm.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50": ms(lat["50"]), "p99": ms(lat["99"]),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "cpu_share": cpu / max(time.time() - t0, 1e-9)}


def http_rate(exe, port, path, rate, secs=5):
    """Open loop (bench/http_rate.c): GET path at a fixed rate over 32 connections, latency
    from when each request was due; returns its figures (ms), 'rps' and 'errors'."""
    out = subprocess.run([exe, "127.0.0.1", str(port), path, f"{rate:.0f}", str(secs), "32"],
                         capture_output=True, text=True, timeout=secs + 120)
    r = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", out.stdout)}
    if "p99_ms" not in r:
        raise RuntimeError(f"http_rate failed ({out.returncode}): {out.stderr[-300:]}")
    return r


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


class Nginx:
    def __init__(self, tmp, body):
        self.dir = tempfile.mkdtemp(dir=tmp, prefix="nginx-")
        # nginx's worker runs as www-data when started by root: it must reach the file.
        for d in (tmp, self.dir):
            os.chmod(d, 0o755)
        self.port = free_port()
        os.makedirs(os.path.join(self.dir, "root"))
        with open(os.path.join(self.dir, "root", "status.json"), "wb") as f:
            f.write(body)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {self.dir}/tmp;
  types {{ application/json json; }}
  server {{
    listen 127.0.0.1:{self.port};
    root {self.dir}/root;
  }}
}}
""")
        self.p = subprocess.Popen(["/usr/sbin/nginx", "-c", conf, "-p", self.dir],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(self.port, "/status.json")
        except Exception:
            self.stop()
            raise

    def stop(self):
        self.p.send_signal(signal.SIGQUIT)
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()

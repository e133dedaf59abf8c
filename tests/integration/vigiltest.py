"""Shared helpers for vigild's integration tests (Python 3 standard library only).

Each test file starts the real vigild binary (path in $VIGILD, set by CTest) on 127.0.0.1 with
free ports and a temporary --data-dir, talks to it with real clients (curl, the influx CLI, raw
sockets, promtool, sqlite3) and stops it with SIGTERM, asserting exit code 0. The daemon's
stderr goes to a log file that is printed when a test fails. Temporary directories and child
processes are cleaned up even when a test fails or the interpreter exits early.
"""

import atexit
import functools
import gzip
import http.client
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def vigild_path():
    p = os.environ.get("VIGILD")
    if p:
        return os.path.abspath(p)
    for cand in ("build/vigild", "build-it/vigild"):
        full = os.path.join(REPO, cand)
        if os.path.exists(full):
            return full
    raise RuntimeError("set VIGILD to the vigild binary (CTest does this)")


VIGILD = vigild_path()


def preload(lib):
    """LD_PRELOAD's value for a fault library (tests/fault/): after ASan's runtime when vigild
    links one (a sanitizer build, tests/CMakeLists.txt), which refuses to start when a preloaded
    library comes before it."""
    out = subprocess.run(["ldd", VIGILD], capture_output=True, text=True).stdout
    asan = [ln.split("=>")[1].split()[0] for ln in out.splitlines()
            if "libasan.so" in ln and "=>" in ln]
    return ":".join(asan[:1] + [lib])


def start_reads_failing(d, sql):
    """Starts d (stopped) with tests/fault/failmaint.c ($VIGIL_FAILMAINT, set by CTest)
    preloaded, failing the statements that begin with sql (its list, "|" between them) from their
    second step on (VIGIL_FAILMAINT_AFTER=1: SQLITE_IOERR, as a corrupt page would fail a read
    part way), for this start's reads: the flag is removed once d.start() returns (d.prefix
    keeps the library, which fails nothing without its flag)."""
    flag = os.path.join(mkdtemp(), "fail")
    write_file_atomic(flag, "fail")
    d.prefix = ["env", "LD_PRELOAD=" + preload(os.environ["VIGIL_FAILMAINT"]),
                "VIGIL_FAILMAINT_FLAG=" + flag, "VIGIL_FAILMAINT_AFTER=1",
                "VIGIL_FAILMAINT_SQL=" + sql]
    try:
        d.start()
    finally:
        os.unlink(flag)


def arrival_rows(db_path):
    """{device name: (seen_ms, last_ms, last_ts)} of the arrivals table (daemon/
    pipeline_arrivals.c's flushes), vigild running or not (WAL: a reader holds up no writer);
    {} when there is no such table (before schema 11)."""
    db = sqlite3.connect(db_path)
    try:
        got = db.execute("SELECT v.name, a.seen_ms, a.last_ms, a.last_ts FROM arrivals a"
                         " JOIN devices v ON v.id = a.device_id").fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()
    return {r[0]: tuple(r[1:]) for r in got}

# Every daemon started, so an early exit still kills them; every temp dir, so it is removed.
_live = []
_tmpdirs = []


def _cleanup():
    for d in list(_live):
        d.kill()
    for t in _tmpdirs:
        shutil.rmtree(t, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signum, frame):
    _cleanup()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)


def _die_with_parent():
    """In the child before exec: SIGKILL it if the test process dies (e.g. killed by a CTest
    timeout), so no vigild outlives its test."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def mkdtemp(prefix="vigil-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


def free_ports(n):
    """n distinct free loopback TCP ports (bind port 0 n times, holding every socket until all
    are chosen: one at a time, the kernel may hand out the same port twice). With
    VIGIL_IT_PORTS=LO-HI in the environment (a machine shared by several test runs, each given
    its own range), only ports in that range are bound, from a random place in it."""
    socks = []
    span = os.environ.get("VIGIL_IT_PORTS")
    try:
        if span:
            lo, hi = (int(x) for x in span.split("-"))
            start = random.randrange(lo, hi + 1)
            for k in range(hi - lo + 1):
                if len(socks) == n:
                    break
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.bind(("127.0.0.1", lo + (start - lo + k) % (hi - lo + 1)))
                except OSError:
                    s.close()
                    continue
                socks.append(s)
            if len(socks) < n:
                raise OSError("VIGIL_IT_PORTS %s: fewer than %d free ports" % (span, n))
        else:
            for _ in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def listens_on(pid, port):
    """Whether process pid holds a listening TCP socket on port (Linux's /proc), or None when
    that cannot be read. free_ports' port may be handed to two tests starting at once: the one
    whose vigild binds it later (an ASan build still migrating its store) would otherwise take
    the other's /healthz for its own, and write, query and signal the wrong daemon."""
    try:
        inodes = set()
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue  # closed meanwhile
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                next(f)
                for line in f:
                    col = line.split()
                    if (col[3] == "0A" and int(col[1].rsplit(":", 1)[1], 16) == port
                            and col[9] in inodes):
                        return True
        return False
    except (OSError, IndexError, ValueError, StopIteration):
        return None


def free_port():
    """A free loopback TCP port."""
    return free_ports(1)[0]


def write_file(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)
    return path


def write_file_atomic(path, text):
    """Writes text to path through a temporary file beside it renamed over it (os.replace), so
    a process that opens path meanwhile reads its old text or the new, never a part (a fault
    library's flag file, read at each call it may fail: failalloc.c aborts on "2064 20"; the
    clock shifter's file, read every 20 ms: clockshift.c would read an empty one as no shift)."""
    tmp = write_file(path + ".tmp", text)
    os.replace(tmp, path)
    return path


def auth_file_args(tokens):
    """vigild's arguments for an auth file holding tokens (its lines, "role token\n" each),
    written mode 0600 in a fresh folder: ("--auth-file", path), for a class's EXTRA_ARGS."""
    path = write_file(os.path.join(mkdtemp(), "tokens"), tokens)
    os.chmod(path, 0o600)
    return ("--auth-file", path)


def tmpfs_mount(test, size_mb, why_skip=""):
    """A tmpfs of size_mb MiB mounted on a fresh folder for test (a unittest.TestCase), unmounted
    at its clean-up; the test is skipped where mounting is not allowed (not root)."""
    mnt = mkdtemp("vigil-tmpfs-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % size_mb, "tmpfs", mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        test.skipTest("cannot mount a tmpfs here (%s)%s" % (p.stdout.decode().strip(), why_skip))
    test.addCleanup(subprocess.run, ["umount", "-l", mnt])
    return mnt


def fill_volume(mnt, leave_bytes):
    """A file "filler" on the volume at mnt taking all its free space but about leave_bytes;
    returns its path (delete it to free the space)."""
    path = os.path.join(mnt, "filler")
    st = os.statvfs(mnt)
    with open(path, "ab") as f:
        try:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave_bytes))
        except OSError:
            pass
    return path


class _PortTaken(Exception):
    """vigild exited at start-up because a port it was given was in use (Vigild.start)."""


class Vigild:
    """One vigild process on a data directory. start() may be called again after stop()/kill()
    (a restart on the same data directory and, by default, the same ports)."""

    def __init__(self, data_dir=None, config=None, extra_args=(), stream=True, preexec_fn=None,
                 prefix=()):
        self.tmp = mkdtemp()
        self.prefix = list(prefix)  # a command vigild runs under, e.g. ["valgrind", ...]
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.config = config
        self.extra_args = list(extra_args)
        self.stream_enabled = stream
        self.http_port = None
        self.stream_port = None
        self.proc = None
        self.log_path = os.path.join(self.tmp, "vigild.log")
        self.starts = 0
        self.preexec_fn = preexec_fn  # run in the child before exec (e.g. resource limits)

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout=15.0, new_ports=False):
        """Starts vigild and waits for /healthz. The ports free_ports picked can be taken by
        another process before vigild binds them (ctest runs tests in parallel, and a restart
        reuses its ports): when vigild exits at start-up because it cannot listen, it is
        started again on new ports, at most three times."""
        for attempt in range(3):
            try:
                return self._start(timeout, new_ports or attempt > 0)
            except _PortTaken as e:
                with open(self.log_path, "a") as log:
                    log.write("==== %s: starting again on new ports\n" % e)
        return self._start(timeout, True)

    def _start(self, timeout, new_ports):
        assert self.proc is None, "already running"
        if self.http_port is None or new_ports:
            self.http_port, self.stream_port = free_ports(2)
        args = self.prefix + [VIGILD]
        if self.config:
            args += ["--config", self.config]
        args += ["--data-dir", self.data_dir, "--http", "127.0.0.1:%d" % self.http_port]
        if self.stream_enabled:
            args += ["--stream", "127.0.0.1:%d" % self.stream_port]
        else:
            args += ["--stream", "off"]
        args += self.extra_args
        self.starts += 1
        with open(self.log_path, "a") as log:
            log.write("==== start #%d: %s\n" % (self.starts, " ".join(args)))
        logf = open(self.log_path, "ab")
        user_pre = self.preexec_fn

        def pre():
            _die_with_parent()
            if user_pre:
                user_pre()

        log_at = logf.tell()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     preexec_fn=pre)
        logf.close()
        _live.append(self)
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                _live.remove(self)
                with open(self.log_path, "rb") as f:
                    f.seek(log_at)
                    said = f.read().decode("utf-8", "replace")
                if rc == 1 and "cannot listen for" in said and "in use" in said:
                    raise _PortTaken("vigild could not listen on port %d or %d"
                                     % (self.http_port, self.stream_port))
                raise AssertionError("vigild exited with %d during start-up\n%s" % (rc, self.log()))
            try:
                st, _, body = http_request("GET", self.url("/healthz"), timeout=2)
                if (st == 200 and json.loads(body).get("status") == "ok"
                        and listens_on(self.proc.pid, self.http_port) is not False):
                    return self  # (not False: another test's vigild on the same port is not it)
            except (OSError, http.client.HTTPException, ValueError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("vigild did not answer /healthz within %.0fs\n%s"
                                     % (timeout, self.log()))
            time.sleep(0.05)

    def stop(self, timeout=60.0, codes=(0,)):
        """SIGTERM; asserts an exit within timeout with a code in codes (a clean stop: 0; a
        test whose volume refuses writes may allow 1, a stop that lost its last saves)."""
        if self.proc is None:
            return
        p = self.proc
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("vigild did not exit within %.0fs of SIGTERM\n%s"
                                 % (timeout, self.log()))
        self.proc = None
        _live.remove(self)
        if rc not in codes:
            raise AssertionError("vigild exited with %d after SIGTERM (want %s)\n%s"
                                 % (rc, " or ".join(map(str, codes)), self.log()))
        self.check_sanitizers()

    def check_sanitizers(self):
        """With a sanitizer build (-DVIGIL_SANITIZE=ON), any report in the log fails the test."""
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return
        for marker in ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "ThreadSanitizer"):
            if marker in text:
                raise AssertionError("sanitizer report in the vigild log\n%s" % self.log())

    def kill(self):
        """SIGKILL (a crash): no flushing, no clean-up."""
        if self.proc is None:
            return
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None
        if self in _live:
            _live.remove(self)

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return "(no log)"
        text = data.decode("utf-8", "replace")
        if len(text) > 20000:
            text = "...\n" + text[-20000:]
        return "---- vigild log (%s) ----\n%s---- end of log ----" % (self.log_path, text)

    @property
    def db_path(self):
        return os.path.join(self.data_dir, "vigil.db")

    # ---- clients ---------------------------------------------------------------------------

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    def get(self, path, headers=None):
        return http_request("GET", self.url(path), headers=headers)

    def get_json(self, path, want=200):
        st, hdrs, body = self.get(path)
        if st != want:
            raise AssertionError("GET %s: status %d, want %d: %r" % (path, st, want, body))
        return loads(body)

    def curl(self, method, path, *args, stdin=None):
        return curl(self.url(path), method, args, stdin=stdin)

    def post_json(self, obj, path="/v1/readings", headers=()):
        """POSTs JSON with curl (obj: a Python value, or the body text as str/bytes)."""
        body = obj if isinstance(obj, (str, bytes)) else json.dumps(obj)
        args = ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        for h in headers:
            args += ["-H", h]
        return self.curl("POST", path, *args, stdin=body)

    def write_lp(self, body, precision=None, db="db", gz=False, extra=()):
        q = {"db": db}
        if precision is not None:
            q["precision"] = precision
        path = "/write?" + urllib.parse.urlencode(q)
        args = ["--data-binary", "@-"]
        data = body.encode() if isinstance(body, str) else body
        if gz:
            data = gzip.compress(data)
            args += ["-H", "Content-Encoding: gzip"]
        return self.curl("POST", path, *args, *extra, stdin=data)

    def readings(self, device, **params):
        """Every point of a device, following `next` links; returns the list of points."""
        path = "/v1/devices/%s/readings" % quote(device)
        if params:
            path += "?" + urllib.parse.urlencode(params)
        points = []
        pages = 0
        while path:
            doc = self.get_json(path)
            points += doc["points"]
            path = doc["next"]
            pages += 1
            if pages > 100000:
                raise AssertionError("too many pages")
        return points

    def device(self, device, want=200):
        return self.get_json("/v1/devices/%s" % quote(device), want=want)

    def metrics(self):
        st, _, body = self.get("/metrics")
        if st != 200:
            raise AssertionError("/metrics: %d" % st)
        return body.decode()

    def metric(self, name, need=False):
        """metric_in of a /metrics answer asked now: sample name's value, a float; None when
        there is none (with need, an AssertionError naming it)."""
        return metric_in(self.metrics(), name, need)

    def stream_connect(self, timeout=30.0):
        return StreamClient("127.0.0.1", self.stream_port, timeout)


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*')
_LABEL_ESC = re.compile(r"\\(.)")
_LABEL_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_SAMPLE = re.compile(r"[ \t]+([^ \t]+)(?:[ \t]+([^ \t]+))?[ \t]*")


def _unescape(m):
    if m.group(1) not in _LABEL_ESCAPES:
        raise ValueError("bad escape \\%s" % m.group(1))
    return _LABEL_ESCAPES[m.group(1)]


def metric_series(text):
    """(name, labels, end) of the series text begins with, as the Prometheus text format writes
    it: `name` or `name{a="b",c="d\\"e"}`, label values unescaped (\\\\, \\", \\n); labels a
    frozenset of (label, value) pairs (their order does not matter); end the index after it.
    Raises ValueError on anything else."""
    m = _METRIC_NAME.match(text)
    if m is None:
        raise ValueError("no metric name: %r" % text)
    i, labels = m.end(), {}
    if text[i:i + 1] == "{":
        i += 1
        while True:
            while text[i:i + 1] in (" ", "\t"):
                i += 1
            if text[i:i + 1] == "}":
                i += 1
                break
            lm = _LABEL.match(text, i)
            if lm is None:
                raise ValueError("bad label at %d: %r" % (i, text))
            if lm.group(1) in labels:
                raise ValueError("label %s twice: %r" % (lm.group(1), text))
            labels[lm.group(1)] = _LABEL_ESC.sub(_unescape, lm.group(2))
            i = lm.end()
            if text[i:i + 1] == ",":
                i += 1
            elif text[i:i + 1] != "}":
                raise ValueError("no , or } at %d: %r" % (i, text))
    return m.group(0), frozenset(labels.items()), i


def parse_metrics(text):
    """{(name, labels): value} of text, one /metrics answer (the Prometheus text format, lines
    ended by \\n alone): names and labels as metric_series gives them, values floats (+Inf, -Inf
    and NaN among them; an optional timestamp, an integer, after the value is passed over).
    Comments and blank lines are skipped; a line of another shape, or a series twice, raises
    AssertionError naming it."""
    return dict(_parsed(text))


@functools.lru_cache(maxsize=8)
def _parsed(text):
    """parse_metrics, kept for the few answers last asked (metric_in is often called several
    times on one answer); never to be changed by a caller."""
    out = {}
    for line in text.split("\n"):  # not splitlines: a label value may hold \r, \x1c, ...
        if not line.strip(" \t") or line.lstrip(" \t").startswith("#"):
            continue
        try:
            name, labels, end = metric_series(line)
            sm = _SAMPLE.fullmatch(line, end)
            if sm is None:
                raise ValueError("no value, or more than a value and a timestamp")
            value = float(sm.group(1))  # float() takes +Inf, -Inf and NaN as Prometheus writes
            if sm.group(2) is not None:
                int(sm.group(2))  # the timestamp, milliseconds
        except ValueError as e:
            raise AssertionError("unparsable /metrics line %r: %s" % (line, e))
        if (name, labels) in out:
            raise AssertionError("/metrics has %r twice" % line)
        out[(name, labels)] = value
    return out


def metric_in(text, name, need=False):
    """The value of series name (with its labels, if any, as vigild writes them: 'x{a="b"}'; their
    order does not matter) in text, one /metrics answer (read once when several series must be
    of the same moment; parse_metrics), a float; None when there is none, or with need an
    AssertionError naming it."""
    try:
        qname, qlabels, end = metric_series(name)
    except ValueError as e:
        raise AssertionError("metric_in: %s" % e)
    if end != len(name):
        raise AssertionError("metric_in: not one series: %r" % name)
    v = _parsed(text).get((qname, qlabels))
    if v is None and need:
        raise AssertionError("no %s in /metrics" % name)
    return v


def quote(s):
    return urllib.parse.quote(s, safe="")


def loads(body):
    """JSON decoding that keeps -0 as a float -0.0 (json.loads would make it the int 0)."""
    if isinstance(body, bytes):
        body = body.decode()

    def pint(s):
        return -0.0 if s == "-0" else int(s)

    return json.loads(body, parse_int=pint)


def chunked_results(body):
    """The results of a chunked /query answer (a JSON document a line), a statement's series
    sent a document each (as influxd 1.6.7 sends SHOW TAG KEYS', FIELD KEYS', TAG VALUES' and
    the cardinality counts') joined into its one result, "partial" dropped, as a whole answer
    holds them, and a SELECT series cut into documents of chunk_size rows (the series marked
    "partial") joined again; errors and "not executed" stay results of their own."""
    out = []
    for line in body.splitlines():
        if not line:
            continue
        res = json.loads(line)["results"][0]
        res.pop("partial", None)
        last = out[-1] if out else None
        if last and last["statement_id"] == res["statement_id"] and "series" in last and \
                "series" in res:
            if last["series"][-1].pop("partial", False):  # continued in this document
                last["series"][-1]["values"] += res["series"].pop(0)["values"]
            last["series"] += res["series"]
        else:
            out.append(res)
    return out


def same_double(a, b):
    """Exact equality of doubles, telling 0.0 from -0.0."""
    a, b = float(a), float(b)
    if a != b:
        return False
    if a == 0.0:
        return math.copysign(1.0, a) == math.copysign(1.0, b)
    return True


def http_request(method, url, body=None, headers=None, timeout=30):
    """A plain HTTP request (for reads and status checks); returns (status, headers, body)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        path = u.path + ("?" + u.query if u.query else "")
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def http_requests_at_once(port, reqs, timeout=30, connect_gap=0.0):
    """Sends each (method, path, body) of reqs to 127.0.0.1:port on a connection of its own, all
    at once: the connections are opened first and a barrier releases the requests, so they
    reach vigild together (its thread pool's workers race). connect_gap (seconds) spaces the
    connects, so each is accepted alone by whichever worker wakes first, rather than one worker
    accepting all of them in one series and serving them in turn. Returns [(status, body
    bytes)] in reqs' order; None for a request that got no answer."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=timeout) for _ in reqs]
    out = [None] * len(reqs)
    try:
        for c in conns:
            c.connect()
            time.sleep(connect_gap)
        go = threading.Barrier(len(reqs))

        def one(i):
            go.wait(timeout)
            method, path, body = reqs[i]
            conns[i].request(method, path, body=body)
            resp = conns[i].getresponse()
            out[i] = (resp.status, resp.read())

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(reqs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(2 * timeout)
    finally:
        for c in conns:
            c.close()
    return out


class CurlResult:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return loads(self.body)

    def __repr__(self):
        return "<HTTP %d %r>" % (self.status, self.body[:500])


def curl(url, method="GET", args=(), stdin=None, timeout=60):
    """Runs curl (the real client) on url; returns CurlResult(status, headers dict, body bytes).
    args are curl's own options (e.g. "--data-binary", "@-" to send stdin)."""
    d = tempfile.mkdtemp(prefix="vigil-curl-")
    try:
        hfile = os.path.join(d, "h")
        bfile = os.path.join(d, "b")
        cmd = ["curl", "-sS", "-g", "--max-time", str(timeout), "-D", hfile, "-o", bfile,
               "-w", "%{http_code}"]
        if method == "HEAD":
            cmd += ["-I"]
        elif method != "GET":
            cmd += ["-X", method]
        cmd += list(args) + [url]
        if isinstance(stdin, str):
            stdin = stdin.encode()
        p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout + 10)
        if p.returncode != 0:
            raise AssertionError("curl failed (%d): %s\n%s" % (p.returncode, " ".join(cmd),
                                                               p.stderr.decode()))
        status = int(p.stdout.decode().strip() or 0)
        headers = {}
        with open(hfile, "rb") as f:
            for line in f.read().decode("latin-1").split("\r\n"):
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
        with open(bfile, "rb") as f:
            body = f.read()
        return CurlResult(status, headers, body)
    finally:
        shutil.rmtree(d, ignore_errors=True)


class StreamClient:
    """A raw TCP client of the line-protocol stream. Responses are lines "ok N",
    "error N reason", "fail A B reason"."""

    def __init__(self, host, port, timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.responses = []
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def read_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                self.eof = True
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.decode()
        self.responses.append(line)
        return line

    def wait_ok(self, n):
        """Reads responses until "ok M" with M >= n; returns the responses read on the way."""
        got = []
        while True:
            line = self.read_line()
            if line is None:
                raise AssertionError("stream closed while waiting for ok %d; got %r" % (n, got))
            got.append(line)
            parts = line.split(" ", 2)
            if parts[0] == "ok" and int(parts[1]) >= n:
                return got
            if parts[0] == "fail":
                raise AssertionError("stream: %s" % line)

    def finish(self):
        """Half-closes (end of input) and reads every remaining response until the server closes."""
        self.sock.shutdown(socket.SHUT_WR)
        got = []
        while True:
            line = self.read_line()
            if line is None:
                break
            got.append(line)
        return got

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def errors_of(responses):
    """{line: reason} of the "error N reason" responses."""
    out = {}
    for r in responses:
        if r.startswith("error "):
            _, n, reason = r.split(" ", 2)
            out[int(n)] = reason
    return out


def last_ok(responses):
    oks = [int(r.split()[1]) for r in responses if r.startswith("ok ")]
    return max(oks) if oks else 0


def wait_for(what, pred, timeout, detail=lambda: ""):
    """pred()'s first true value, asked every 0.2 s; past timeout seconds, an AssertionError
    naming what, with detail() (e.g. a log's tail) after it."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.0f s%s" % (what, timeout, detail()))
        time.sleep(0.2)


# The system calls thread_wait names where wchan is hidden, by machine (platform.machine()):
# x86_64's own numbers (arch/x86/entry/syscalls/syscall_64.tbl), and the generic table
# (include/uapi/asm-generic/unistd.h) that aarch64, riscv64 and loongarch64 use.
SYSCALLS_GENERIC = {98: "futex", 101: "nanosleep", 115: "clock_nanosleep"}
SYSCALLS = {"x86_64": {202: "futex", 35: "nanosleep", 230: "clock_nanosleep"},
            "aarch64": SYSCALLS_GENERIC, "riscv64": SYSCALLS_GENERIC,
            "loongarch64": SYSCALLS_GENERIC}


def version_parts(out):
    """vigild --version's output as (version, commit, build type), "" for a part it leaves out;
    asserts its form: "vigild 0.1.0 (commit 0123456789ab[-dirty], Release)", the commit or the
    build type (or the parentheses) left out when there is none."""
    m = re.fullmatch(r"vigild (\d+\.\d+\.\d+)"
                     r"(?: \((?:commit ([0-9a-f]{12}(?:-dirty)?)(?:, (\w+))?|(\w+))\))?\n", out)
    assert m, "--version: %r" % out
    return m.group(1), m.group(2) or "", m.group(3) or m.group(4) or ""


def thread_wait(pid, tid):
    """Where thread tid of process pid waits: the kernel's wchan ("futex_wait_queue",
    "hrtimer_nanosleep", ...), or where that is hidden ("0") "syscall NAME", the system call it
    is in (SYSCALLS: futex, nanosleep, clock_nanosleep; "syscall running" when in none). Raises
    OSError or IndexError when the thread has ended or its files are not ours to read, and
    unittest.SkipTest on a machine SYSCALLS does not know (its number would be misread)."""
    task = "/proc/%d/task/%d/" % (pid, tid)
    with open(task + "wchan") as f:
        wchan = f.read()
    if wchan not in ("", "0"):
        return wchan
    with open(task + "syscall") as f:
        nr = f.read().split()[0]
    if not nr.isdigit():
        return "syscall " + nr  # "running", or -1 (in none)
    names = SYSCALLS.get(platform.machine())
    if names is None:
        raise unittest.SkipTest("wchan is hidden and %s's system call numbers are not in "
                                "vigiltest.SYSCALLS" % platform.machine())
    return "syscall " + names.get(int(nr), nr)


def threads_asleep(pid, comm):
    """How many of process pid's threads named comm sleep in nanosleep or clock_nanosleep (a
    usleep, SQLite's busy wait); the others wait on a condition (a futex) or in epoll
    (thread_wait). (test_httpio.py's, moved here in session 57 for test_dblocked.py.)"""
    n = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() != comm:
                    continue
            w = thread_wait(pid, int(tid))
            n += "nanosleep" in w
        except (OSError, IndexError):
            pass  # the thread ended, or its syscall is not ours to read
    return n


def now_ms():
    return int(time.time() * 1000)


def iso_ms(ms):
    """Epoch milliseconds as vigild writes them in messages: 2026-11-28T10:00:00.000Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


class LogOnFailure(unittest.TestCase):
    """A test class whose failures and errors carry the log of its daemon self.d (if any)."""

    def run(self, result=None):
        before_f = len(result.failures) if result else 0
        before_e = len(result.errors) if result else 0
        out = super().run(result)
        if result is not None and hasattr(self, "d") and (
                len(result.failures) > before_f or len(result.errors) > before_e):
            sys.stderr.write("\n%s\n" % self.d.log())
        return out


class FreshDaemonTestCase(LogOnFailure):
    """A test class giving each test its own daemon: CONFIG (INI text; config() may build it)
    written to self.cfg, the daemon self.d started in setUp (STREAM: with the stream listener),
    stopped in tearDown (a clean stop: exit code 0) and removed after the test."""

    CONFIG = ""
    STREAM = True

    def config(self):
        return self.CONFIG

    def setUp(self):
        self.cfg = write_file(os.path.join(mkdtemp(), "vigild.conf"), self.config())
        self.d = Vigild(config=self.cfg, stream=self.STREAM)
        self.d.start()

    def tearDown(self):
        self.d.stop()

    def run(self, result=None):
        # Removed after LogOnFailure wrote its log, and even when the stop failed.
        try:
            return super().run(result)
        finally:
            if "d" in self.__dict__:
                self.d.cleanup()


class DaemonTestCase(LogOnFailure):
    """A test class sharing one daemon (started in setUpClass, stopped cleanly with exit code 0
    in tearDownClass). Subclasses may set CONFIG (INI text) or EXTRA_ARGS."""

    CONFIG = None
    EXTRA_ARGS = ()

    @classmethod
    def setUpClass(cls):
        cfg = None
        if cls.CONFIG is not None:
            cfg = os.path.join(mkdtemp(), "vigild.conf")
            write_file(cfg, cls.CONFIG)
        cls.d = Vigild(config=cfg, extra_args=cls.EXTRA_ARGS)
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    # ---- assertions ------------------------------------------------------------------------

    def assertJsonError(self, res, status, contains=None):
        """res: CurlResult or (status, headers, body). Asserts the status and an error body
        {"error": "..."} (containing each of `contains`, if given); returns the message."""
        if isinstance(res, tuple):
            res = CurlResult(*res)
        self.assertEqual(res.status, status, "want %d, got %r" % (status, res))
        self.assertTrue(res.headers.get("content-type", "").startswith("application/json"),
                        "error content type: %r" % res.headers)
        try:
            doc = loads(res.body)
        except ValueError:
            self.fail("error body is not JSON: %r" % res.body)
        self.assertIsInstance(doc, dict, res.body)
        self.assertIn("error", doc, res.body)
        self.assertIsInstance(doc["error"], str)
        self.assertTrue(doc["error"], "empty error message")
        if contains:
            for c in [contains] if isinstance(contains, str) else contains:
                self.assertIn(c, doc["error"], res.body)
        return doc["error"]

    def assertPoints(self, points, expected):
        """points: as returned by readings(); expected: list of (ts, {channel: value}).
        Values compared as exact doubles (sign of zero included)."""
        got = [(p["ts"], p["values"]) for p in points]
        self.assertEqual(len(got), len(expected), "points: got %r want %r" % (got, expected))
        for (gts, gv), (ets, ev) in zip(got, expected):
            self.assertEqual(gts, ets, "timestamps: got %r want %r" % (got, expected))
            self.assertEqual(sorted(gv), sorted(ev), "channels at %d: %r vs %r" % (ets, gv, ev))
            for k in ev:
                self.assertTrue(same_double(gv[k], ev[k]),
                                "value of %s at %d: got %r want %r" % (k, ets, gv[k], ev[k]))

    def assertNoDevice(self, device):
        st, hdrs, body = self.d.get("/v1/devices/%s" % quote(device))
        self.assertJsonError((st, hdrs, body), 404)

    def device_ids(self):
        ids = []
        after = None
        while True:
            q = {"limit": 1000}
            if after:
                q["after"] = after
            doc = self.d.get_json("/v1/devices?" + urllib.parse.urlencode(q))
            ids += [x["id"] for x in doc["devices"]]
            after = doc["next_after"]
            if not after:
                return ids


def main(skipped=None):
    """Runs the calling script's tests; with skipped (why they cannot run here), prints
    `skipped: SKIPPED` and exits 77 instead, which CTest reports as a skip (SKIP_RETURN_CODE 77
    in tests/CMakeLists.txt)."""
    if skipped:
        print("skipped: %s" % skipped)
        sys.exit(77)
    unittest.main(verbosity=2)

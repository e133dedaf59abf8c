#!/usr/bin/python3
"""vigild integration: the shipped Prometheus rules, scrape configuration and Grafana dashboard
(etc/prometheus/, etc/grafana/) against the real tools and a real vigild.

1. Static (Files, Install): `promtool check rules` and `promtool check config` pass on the
   shipped files; `promtool test rules` passes tests/prometheus/vigil.rules.*.test.yml (one file
   per topic, each under 950 lines; each alert fires on a synthetic series and stays silent on a
   healthy one, and every alert is in them, firing and silent); every alert has a severity, an
   audience, a summary and a description; the dashboard is Grafana dashboard JSON
   (schemaVersion, a `datasource` variable of type datasource, `device` from label values,
   panels with gridPos inside the 24-column grid and not overlapping, targets with expr, every
   query on `${datasource}`, every query of up or a process_* family joined on
   vigil_build_info, no rate series with fixed decimals); `cmake --install` stages them
   unchanged under share/vigil.
2. Live (Live): the real vigild (harness) and the real Prometheus (Debian's `prometheus`,
   listening on 127.0.0.1 on a free port, storage in a temporary directory, scrape and rule
   evaluation every 1 s, the shipped rules file). Three devices learn a 2-channel oscillator;
   one is then pushed into anomaly by readings far off its pattern (as test_metrics.py's
   MetricsCapFlagged does), with some rejected input on the way. Through Prometheus's HTTP API:
   every rule evaluates without error and every recording rule yields a series; every `expr`
   of the dashboard, with its variables substituted (one device, and All), parses and returns a
   non-empty result (with at least one finite value over a 2-minute rate window, which covers
   the whole run), and with All none of another job's series, nor does what any aggregation
   aggregates, nested ones included (Prometheus also scrapes job "other", an exporter of
   process_* families as node_exporter, Prometheus or Grafana export them: the "vigild process"
   panels once showed its series too, and "vigild up" took its up); the per-device panels show
   the device in anomaly; the dashboard's variable queries find the job, the instance and the
   devices; every vigil_* and process_* name in the rules and the dashboard is a family vigild
   exports; VigilDeviceAnomaly is pending or firing for the device, naming it and its state, and
   no critical alert (VigilDown among them) is active.
   Both processes are stopped at the end (exit code 0).

Never skipped: without promtool or prometheus the tests fail, saying that tools/install-deps
installs them (Debian package prometheus). Every wait is bounded; all traffic is on loopback.
"""

import glob
import http.server
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402

RULES = os.path.join(vt.REPO, "etc", "prometheus", "vigil.rules.yml")
PROM_CONFIG = os.path.join(vt.REPO, "etc", "prometheus", "prometheus.yml")
# The rules' unit tests, split by topic (promtool takes them all in one run).
RULES_TESTS = sorted(glob.glob(os.path.join(vt.REPO, "tests", "prometheus",
                                          "vigil.rules.*.test.yml")))
DASHBOARD = os.path.join(vt.REPO, "etc", "grafana", "vigil-dashboard.json")
JOB = "vigil"  # the job name the rules' VigilDown selects (etc/prometheus/prometheus.yml)


def tool(name):
    """Path of a Prometheus tool; fails (never skips) when it is missing."""
    path = shutil.which(name) or os.path.join("/usr/bin", name)
    if not os.access(path, os.X_OK):
        raise AssertionError("%s not found: tools/install-deps installs it (Debian package "
                             "prometheus)" % name)
    return path


def run(args, cwd=None):
    p = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    return p.returncode, p.stdout


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def dashboard_panels(dash):
    """Every panel, rows' nested panels included."""
    out = []
    for p in dash["panels"]:
        out.append(p)
        out += p.get("panels", [])
    return out


def dashboard_targets(dash):
    """(panel title, target) of every query target."""
    return [(p["title"], t) for p in dashboard_panels(dash) for t in p.get("targets", [])]


def load_yaml(path):
    try:
        import yaml
    except ImportError:
        raise AssertionError("python3-yaml not found: tools/install-deps installs it")
    with open(path) as f:
        return yaml.safe_load(f)


def rule_list():
    """The shipped rules as (kind, name, expr)."""
    doc = load_yaml(RULES)
    return [("record" if "record" in r else "alert", r.get("record") or r.get("alert"), r["expr"])
            for g in doc["groups"] for r in g["rules"]]


def substitute(expr, job, instance, device, rate_interval):
    """Grafana's variables in a dashboard expression, as Grafana would substitute them."""
    return (expr.replace("$__rate_interval", rate_interval).replace("$job", job)
            .replace("$instance", instance).replace("$device", device))


# An aggregation's start, anywhere in an expression: the operator, a `by`/`without` clause
# before the argument if any, and the opening parenthesis.
AGGREGATION = re.compile(r"(?<![\w:])(sum|min|max|avg|group|count|stddev|stdvar|topk|bottomk|"
                         r"quantile|count_values)\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(")
PARAMETER = ("topk", "bottomk", "quantile", "count_values")  # a parameter before the argument


def in_strings(expr):
    r"""For each character of PromQL expr, whether it belongs to a string literal (its quotes
    included): "..." and '...' end at their first quote not escaped by a backslash (`\\` is an
    escaped backslash: "a\\" ends at its second quote), `...` at the next backtick (raw: no
    escapes)."""
    inside, quote, escaped = [], None, False
    for c in expr:
        if quote is None:
            quote = c if c in "\"'`" else None
            inside.append(quote is not None)
            continue
        inside.append(True)
        if escaped:
            escaped = False
        elif c == "\\" and quote != "`":
            escaped = True
        elif c == quote:
            quote = None
    if quote is not None:
        raise AssertionError("unterminated string in %s" % expr)
    return inside


def aggregated(expr):
    """What every aggregation of expr aggregates, outer and nested, in order of their start:
    `histogram_quantile(0.9, sum by (le) (rate(x[5m])))` gives `rate(x[5m])`; `sum(a) / sum(b)`
    gives a and b; `topk(20, x)` gives x; `sum(max by (d) (y))` gives `max by (d) (y)` and y.
    String literals are text: an aggregation's name or a bracket inside one is not one."""
    out = []
    inside = in_strings(expr)
    for m in AGGREGATION.finditer(expr):
        if inside[m.start()]:
            continue
        depth, comma = 0, None
        for i in range(m.end() - 1, len(expr)):
            if inside[i]:
                continue
            c = expr[i]
            depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(c, 0)
            if c == "," and depth == 1 and comma is None:
                comma = i
            if depth == 0:
                start = comma + 1 if m.group(1) in PARAMETER and comma is not None else m.end()
                out.append(expr[start:i].strip())
                break
        else:
            raise AssertionError("unbalanced aggregation in %s" % expr)
    return out


def job_names(data):
    """The jobs other than JOB among a query answer's series."""
    return {s["metric"]["job"] for s in data["result"]
            if isinstance(s, dict) and "job" in s["metric"]} - {JOB}


def regex_escape(s):
    """A literal value as Grafana puts a single selected value into a =~ matcher."""
    return re.sub(r"([\\.^$*+?()\[\]{}|])", r"\\\\\1", s)


# A vigil_* or process_* metric name in PromQL (not part of a recorded name such as
# instance:vigil_x:rate5m).
NAME = re.compile(r"(?<![\w:])(?:vigil|process)_\w+(?![\w:])")


class Files(unittest.TestCase):

    def test_promtool_check_rules(self):
        rc, out = run([tool("promtool"), "check", "rules", RULES])
        self.assertEqual(rc, 0, out)
        self.assertIn("SUCCESS", out)

    def test_promtool_check_config(self):
        rc, out = run([tool("promtool"), "check", "config", PROM_CONFIG])
        self.assertEqual(rc, 0, out)
        # The config loads the rules file beside it, which promtool checks too.
        self.assertIn("1 rule files found", out)
        self.assertIn("vigil.rules.yml", out)

    def test_promtool_test_rules(self):
        self.assertGreaterEqual(len(RULES_TESTS), 2, RULES_TESTS)
        rc, out = run([tool("promtool"), "test", "rules"]
                      + [os.path.basename(f) for f in RULES_TESTS],
                      cwd=os.path.dirname(RULES_TESTS[0]))
        self.assertEqual(rc, 0, out)
        self.assertEqual(out.count("SUCCESS"), len(RULES_TESTS), out)
        for f in RULES_TESTS:
            with open(f) as fh:
                self.assertLessEqual(len(fh.readlines()), 950, f)

    def test_every_alert_unit_tested(self):
        """Each alert of the rules file appears in the unit test, firing at least once."""
        cases = [c for f in RULES_TESTS for t in load_yaml(f)["tests"]
                 for c in t.get("alert_rule_test", [])]
        fired = {c["alertname"] for c in cases if c.get("exp_alerts")}
        silent = {c["alertname"] for c in cases if not c.get("exp_alerts")}
        alerts = {name for kind, name, _ in rule_list() if kind == "alert"}
        self.assertEqual(sorted(alerts - fired), [], "alerts never seen firing in the unit test")
        self.assertEqual(sorted(alerts - silent), [], "alerts never seen silent in the unit test")

    def test_alert_labels_and_annotations(self):
        doc = load_yaml(RULES)
        for g in doc["groups"]:
            for r in g["rules"]:
                if "alert" not in r:
                    continue
                self.assertIn(r["labels"].get("severity"), ("critical", "warning", "info"), r)
                self.assertIn(r["labels"].get("audience"), ("maintenance", "sre"), r)
                self.assertTrue(r["annotations"].get("summary"), r)
                self.assertTrue(r["annotations"].get("description"), r)

    def test_alert_counts_print_whole(self):
        """An alert on an increase() prints its value as a whole count, and no alert prints a
        rate with fixed decimals: a rare event's rate read "0.00/s" and increase()'s
        extrapolation "2.486 refused connections" (session 68, read68a)."""
        doc = load_yaml(RULES)
        for g in doc["groups"]:
            for r in g["rules"]:
                if "alert" not in r:
                    continue
                text = " ".join(r["annotations"].values())
                self.assertNotRegex(text, r'printf "%\.[1-9]f"', r["alert"])
                self.assertNotRegex(text, r"\}\}/s\b", r["alert"])
                if re.match(r"\s*(sum without \(\w+\) \()?increase\(", r["expr"]) \
                        and "$value" in text:
                    self.assertIn('printf "%.0f" $value', text, r["alert"])
                    self.assertNotRegex(text, r"\$value \| humanize \}\}", r["alert"])

    def test_table_sort_names_a_shown_column(self):
        """A table's sortBy names a column as shown, after its organize transform: Grafana
        matches the display name, so a sort by "Value" after Value was renamed did nothing
        (session 68, read68a: tables 5 and 31)."""
        n = 0
        for p in dashboard_panels(load_dashboard()):
            for sort in p.get("options", {}).get("sortBy", []):
                for t in p.get("transformations") or []:
                    if t["id"] != "organize":
                        continue
                    opts = t["options"]
                    n += 1
                    self.assertNotIn(sort["displayName"], opts.get("renameByName", {}),
                                     p["title"])
                    self.assertFalse(opts.get("excludeByName", {}).get(sort["displayName"]),
                                     p["title"])
        self.assertGreaterEqual(n, 2)

    def test_dashboard_structure(self):
        dash = load_dashboard()
        self.assertIsInstance(dash.get("schemaVersion"), int)
        self.assertGreaterEqual(dash["schemaVersion"], 30)
        self.assertTrue(dash.get("title"))
        self.assertTrue(dash.get("uid"))
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        ds = variables.get("datasource")
        self.assertIsNotNone(ds, "no datasource variable")
        self.assertEqual((ds["type"], ds["query"]), ("datasource", "prometheus"))
        dev = variables.get("device")
        self.assertIsNotNone(dev, "no device variable")
        self.assertEqual(dev["type"], "query")
        self.assertRegex(dev["definition"], r"^label_values\(.*,\s*device\)$")
        for v in variables.values():
            if v["type"] == "query":
                self.assertEqual(v["datasource"]["uid"], "${datasource}", v["name"])

        panels = dashboard_panels(dash)
        ids = [p["id"] for p in panels]
        self.assertEqual(len(ids), len(set(ids)), "panel ids repeat")
        cells = {}
        for p in panels:
            g = p["gridPos"]
            for k in ("h", "w", "x", "y"):
                self.assertIsInstance(g[k], int, (p["title"], k))
            self.assertTrue(g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["y"] >= 0, p["title"])
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells,
                                     "%r overlaps %r" % (p["title"], cells.get((x, y))))
                    cells[(x, y)] = p["title"]
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"], {"type": "prometheus", "uid": "${datasource}"},
                             p["title"])
            self.assertTrue(p.get("targets"), "%r has no targets" % p["title"])
            refs = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refs), len(set(refs)), p["title"])
            for t in p["targets"]:
                self.assertTrue(t.get("expr"), (p["title"], t))
                self.assertEqual(t["datasource"]["uid"], "${datasource}", p["title"])
        # up and the process_* families are every target's, not only vigild's: each query of
        # them keeps vigild's series (those of a target that exports vigil_build_info), so
        # with $job All no other job's target counts ("vigild up" took every job's up).
        for title, t in dashboard_targets(dash):
            if re.search(r"(?<![\w:])(up|process_\w+)\{", t["expr"]):
                self.assertRegex(t["expr"], r"and on \(job, instance\) .*vigil_build_info",
                                 title)
        # The panels the dashboard promises, by the families they show.
        exprs = " ".join(t["expr"] for _, t in dashboard_targets(dash))
        for fam in ("vigil_devices_by_state", "vigil_device_anomaly_score", "vigil_device_state",
                    "vigil_ingest_readings_total", "vigil_ingest_rejected_total",
                    "vigil_store_commits_total", "vigil_store_queue_readings",
                    "vigil_store_database_bytes", "vigil_inference_queue_readings",
                    "vigil_inference_seconds", "vigil_training_seconds", "vigil_model_swaps_total",
                    "vigil_train_queue_jobs", "vigil_train_postponed_total",
                    "vigil_http_requests_total", "vigil_devices_silent",
                    "vigil_device_last_reading_timestamp_seconds",
                    "vigil_model_training_failures_total", "process_start_time_seconds",
                    "process_cpu_seconds_total", "process_resident_memory_bytes",
                    "process_open_fds", "process_max_fds", "vigil_http_connections",
                    "vigil_http_connections_max", "vigil_stream_connections",
                    "vigil_stream_connections_max", "vigil_stream_connections_refused_total"):
            self.assertIn(fam, exprs)

    def test_rates_keep_their_decimals(self):
        """A series of rates is shown with as many decimals as it needs: a count fixed by the
        panel or an override (as the connection gauges' 0) rounds a rare event's rate to 0, as
        one stream refusal in 10 minutes, 0.00167/s, read 0.00 with 2 (the rules file says so
        at VigilStreamConnectionsRefused)."""
        for p in dashboard_panels(load_dashboard()):
            fc = p.get("fieldConfig", {})
            for t in p.get("targets", []):
                if not re.search(r"(?<![\w:])(rate|irate|increase|deriv)\(", t["expr"]):
                    continue
                decimals = fc.get("defaults", {}).get("decimals")
                for o in fc.get("overrides", []):
                    if o["matcher"] == {"id": "byFrameRefID", "options": t["refId"]}:
                        for prop in o["properties"]:
                            if prop["id"] == "decimals":
                                decimals = prop.get("value")
                    else:
                        self.assertNotIn("decimals", [q["id"] for q in o["properties"]],
                                         (p["title"], o["matcher"]))
                self.assertIsNone(decimals, (p["title"], t["refId"], t["expr"]))

    def test_aggregated_walks_nested_aggregations(self):
        """The Live check of what aggregations aggregate sees inside every one of them."""
        self.assertEqual(aggregated("sum(rate(x[5m]))"), ["rate(x[5m])"])
        self.assertEqual(aggregated("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))"),
                         ["rate(x_bucket[5m])"])
        self.assertEqual(aggregated("sum(a) / (sum by (r) (b{c=~\"(x|y\"}) > 0)"),
                         ["a", "b{c=~\"(x|y\"}"])
        self.assertEqual(aggregated("sum(max by (d) (min(y)))"),
                         ["max by (d) (min(y))", "min(y)", "y"])
        self.assertEqual(aggregated("topk(20, time() - z)"), ["time() - z"])
        self.assertEqual(aggregated("rate(x[5m]) and on (job) summary"), [])

    def test_aggregated_reads_string_literals(self):
        r"""A string's text is not PromQL: a quote after an escaped backslash ends it, and an
        aggregation's name or a parenthesis inside it is none. Before session 65 "b\\" and `\`
        were read on past their end ("unbalanced aggregation"), and label_replace's "sum($1)"
        gave an aggregation of $1."""
        self.assertEqual(aggregated(r'sum(x{a="b\\"}) + sum(y)'), [r'x{a="b\\"}', "y"])
        self.assertEqual(aggregated(r"max(x{a='it\'s (1'}) + min(y)"), [r"x{a='it\'s (1'}", "y"])
        self.assertEqual(aggregated(r"sum(x{a=~`\`}) + max(y)"), [r"x{a=~`\`}", "y"])
        self.assertEqual(aggregated('count(label_replace(x, "d", "sum($1)", "s", "(.*)"))'),
                         ['label_replace(x, "d", "sum($1)", "s", "(.*)")'])
        self.assertEqual(aggregated('x{a="sum(y)"}'), [])
        with self.assertRaisesRegex(AssertionError, "unterminated string"):
            aggregated(r'sum(x{a="b\"})')  # the quote escaped


class Install(unittest.TestCase):
    """cmake --install (staged with DESTDIR) puts the rules, the scrape config and the dashboard
    under <prefix>/share/vigil, unchanged, and the installed config still finds its rules."""

    def test_installed_files(self):
        build = os.path.dirname(vt.VIGILD)
        cache = os.path.join(build, "CMakeCache.txt")
        self.assertTrue(os.path.exists(cache), "vigild (%s) is not in a CMake build tree" % build)
        with open(cache) as f:
            prefix = re.search(r"^CMAKE_INSTALL_PREFIX:\w+=(.*)$", f.read(), re.M).group(1)
        dest = vt.mkdtemp(prefix="vigil-install-")
        p = subprocess.run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=dest),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout)
        share = dest + prefix + "/share/vigil"
        for src, rel in ((PROM_CONFIG, "prometheus/prometheus.yml"),
                         (RULES, "prometheus/vigil.rules.yml"),
                         (DASHBOARD, "grafana/vigil-dashboard.json")):
            with open(src, "rb") as f, open(os.path.join(share, rel), "rb") as g:
                self.assertEqual(f.read(), g.read(), rel)
        rc, out = run([tool("promtool"), "check", "config",
                       os.path.join(share, "prometheus", "prometheus.yml")])
        self.assertEqual(rc, 0, out)
        self.assertIn("1 rule files found", out)


class Prometheus:
    """The real Prometheus on 127.0.0.1, a temporary storage directory, its log in a file."""

    def __init__(self, config_path):
        self.tmp = vt.mkdtemp(prefix="vigil-prom-")
        self.config = config_path
        self.log_path = os.path.join(self.tmp, "prometheus.log")
        self.proc = None
        self.port = None

    def start(self, timeout=60.0):
        for attempt in range(3):
            self.port = vt.free_port()
            args = [tool("prometheus"), "--config.file=" + self.config,
                    "--storage.tsdb.path=" + os.path.join(self.tmp, "data"),
                    "--web.listen-address=127.0.0.1:%d" % self.port]
            logf = open(self.log_path, "ab")
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf, preexec_fn=vt._die_with_parent)
            logf.close()
            deadline = time.monotonic() + timeout
            while True:
                rc = self.proc.poll()
                if rc is not None:
                    self.proc = None
                    if "address already in use" in self.log() and attempt < 2:
                        break  # the port was taken before Prometheus bound it: another one
                    raise AssertionError("prometheus exited with %d at start\n%s"
                                         % (rc, self.log()))
                try:
                    st, _, _ = vt.http_request("GET", self.url("/-/ready"), timeout=2)
                    if st == 200:
                        return self
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    self.kill()
                    raise AssertionError("prometheus not ready within %.0f s\n%s"
                                         % (timeout, self.log()))
                time.sleep(0.1)
        raise AssertionError("prometheus could not listen\n%s" % self.log())

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def api(self, path, **params):
        """GET /api/v1/<path>; returns `data` of a successful answer, else fails."""
        q = urllib.parse.urlencode(params, doseq=True)
        st, _, body = vt.http_request("GET", self.url("/api/v1/" + path + ("?" + q if q else "")),
                                      timeout=30)
        doc = json.loads(body)
        if st != 200 or doc.get("status") != "success":
            raise AssertionError("prometheus %s %r: %d %s" % (path, params, st, body[:2000]))
        return doc["data"]

    def query(self, expr):
        return self.api("query", query=expr)

    def stop(self, timeout=60.0):
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("prometheus did not exit within %.0f s of SIGTERM\n%s"
                                 % (timeout, self.log()))
        if rc != 0:
            raise AssertionError("prometheus exited with %d after SIGTERM\n%s" % (rc, self.log()))

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "---- prometheus log ----\n%s---- end ----" % text[-20000:]


def finite_values(data):
    """The finite sample values of a query answer (vector or scalar)."""
    if data["resultType"] == "vector":
        vals = [float(s["value"][1]) for s in data["result"]]
    elif data["resultType"] == "scalar":
        vals = [float(data["result"][1])]
    else:
        raise AssertionError("unexpected result type %r" % data["resultType"])
    return [v for v in vals if math.isfinite(v)]


class OtherExporter:
    """Another job's target on a free loopback port: the process_* families as any Prometheus
    client library exports them (node_exporter, Prometheus and Grafana themselves), no vigil_*
    family."""
    BODY = ("process_start_time_seconds 1.7e9\nprocess_cpu_seconds_total 1.5\n"
            "process_resident_memory_bytes 3e7\nprocess_open_fds 12\n"
            "process_max_fds 1024\n").encode()

    def __init__(self):
        body = self.BODY

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Live(unittest.TestCase):
    """One vigild and one Prometheus scraping it every second with the shipped rules."""

    ANOMALOUS = "f-b"
    DEVICES = ("f-a", "f-b", "f-c")

    @classmethod
    def setUpClass(cls):
        cfg = os.path.join(vt.mkdtemp(), "vigild.conf")
        # A small model that trains in seconds and no periodic retraining (test_metrics.py's
        # MetricsCapFlagged): the anomaly comes from readings, not from a training's timing.
        vt.write_file(cfg, "[model]\nwarmup = 100\nretrain_every = 0\nhidden = 4\n")
        cls.d = vt.Vigild(config=cfg)
        cls.prom = None
        cls.other = None
        try:
            cls.d.start()
            cls.other = OtherExporter()
            tmp = vt.mkdtemp(prefix="vigil-promcfg-")
            prom_cfg = os.path.join(tmp, "prometheus.yml")
            vt.write_file(prom_cfg, (
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "rule_files:\n  - %s\n"
                "scrape_configs:\n  - job_name: %s\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n"
                "  - job_name: other\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n") % (json.dumps(RULES), JOB, cls.d.http_port,
                                                          cls.other.port))
            cls.prom = Prometheus(prom_cfg).start()
            cls.instance = "127.0.0.1:%d" % cls.d.http_port
            cls.drive()
        except BaseException:
            if cls.prom:
                sys.stderr.write(cls.prom.log() + "\n")
                cls.prom.kill()
            sys.stderr.write(cls.d.log() + "\n")
            cls.d.kill()
            cls.d.cleanup()
            if cls.other:
                cls.other.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.prom.stop()
        finally:
            try:
                cls.d.stop()
            finally:
                cls.d.cleanup()
                cls.other.stop()

    @classmethod
    def wait(cls, what, pred, timeout):
        return vt.wait_for(what, pred, timeout)

    @classmethod
    def feed(cls, dev, ks, fn):
        r = cls.d.post_json([{"device": dev, "ts": 1_700_000_000_000 + 1000 * k, "values": fn(k)}
                             for k in ks])
        if r.status != 200:
            raise AssertionError("POST readings for %s: %r" % (dev, r))

    @classmethod
    def drive(cls):
        """Scraped first, then: three devices learn, some input is rejected, one device is
        pushed into anomaly, and Prometheus's rules see it."""
        cls.wait("prometheus scrapes vigild",
                 lambda: [s for s in cls.prom.query('up{job="%s"} == 1' % JOB)["result"]], 30)
        cls.wait("prometheus scrapes the other job",
                 lambda: [s for s in cls.prom.query('up{job="other"} == 1')["result"]], 30)
        rnd = random.Random(1)

        def wave(k):
            return {"x": math.sin(0.3 * k) + rnd.gauss(0, 0.01),
                    "y": math.cos(0.3 * k) + rnd.gauss(0, 0.01)}
        for dev in cls.DEVICES:
            cls.feed(dev, range(150), wave)
        # Rejected input on each HTTP protocol: one bad item, one bad line (the others stored).
        r = cls.d.post_json([{"device": "f-a", "ts": 1_700_000_150_000, "values": {"x": "bad"}}])
        if r.status != 400:
            raise AssertionError("bad item: %r" % r)
        r = cls.d.write_lp("m,device=f-c x= 1\n", precision="ms")
        if r.status != 400:
            raise AssertionError("bad line: %r" % r)
        for dev in cls.DEVICES:
            cls.wait(dev + " trained", lambda: (lambda m: m["versions"] and not m["training"])(
                cls.d.get_json("/v1/devices/%s/model" % dev)), 90)
        # Readings scored by the trained model calibrate its threshold; then the jump.
        cls.feed(cls.ANOMALOUS, range(150, 200), wave)
        cls.feed(cls.ANOMALOUS, range(200, 230), lambda k: {"x": 40.0 + k % 3, "y": -30.0})
        cls.wait("f-b in anomaly", lambda: cls.d.get_json(
            "/v1/devices/%s/status" % cls.ANOMALOUS)["state"] == "anomaly", 30)
        cls.wait("VigilDeviceAnomaly pending or firing", lambda: cls.anomaly_alerts(), 30)
        # Rates need two samples after the last event; a few more scrapes make every window's
        # answer settled (scrapes are 1 s apart).
        time.sleep(5)

    @classmethod
    def anomaly_alerts(cls):
        return [a for a in cls.prom.api("alerts")["alerts"]
                if a["labels"].get("alertname") == "VigilDeviceAnomaly"]

    def run(self, result=None):
        before = (len(result.failures), len(result.errors)) if result else (0, 0)
        out = super().run(result)
        if result is not None and (len(result.failures), len(result.errors)) != before:
            sys.stderr.write("\n%s\n%s\n" % (self.prom.log(), self.d.log()))
        return out

    def test_device_anomaly_alert(self):
        alerts = self.anomaly_alerts()
        self.assertEqual(len(alerts), 1, alerts)
        a = alerts[0]
        self.assertIn(a["state"], ("pending", "firing"), a)
        self.assertEqual(a["labels"]["device"], self.ANOMALOUS, a)
        self.assertEqual(a["labels"]["state"], "anomaly", a)
        self.assertEqual(a["labels"]["instance"], self.instance, a)
        self.assertEqual(a["labels"]["severity"], "warning", a)
        self.assertIn(self.ANOMALOUS, a["annotations"]["summary"])
        self.assertEqual(float(a["value"]), 3.0, a)
        # vigild is up: no VigilDown, and no critical alert at all in this healthy run.
        others = [b["labels"] for b in self.prom.api("alerts")["alerts"]
                  if b["labels"].get("severity") == "critical"]
        self.assertEqual(others, [])

    def test_rules_evaluate(self):
        groups = self.prom.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        names = sorted(r["name"] for r in rules)
        self.assertEqual(names, sorted(name for _, name, _ in rule_list()))
        for r in rules:
            self.assertEqual(r["health"], "ok", r)
            self.assertFalse(r.get("lastError"), r)
            # Evaluated with the scrapes: not still waiting for its first evaluation.
            self.assertNotEqual(r.get("lastEvaluation", "").split("T")[0], "0001-01-01", r)
        for kind, name, _ in rule_list():
            if kind == "record":
                res = self.prom.query(name)["result"]
                self.assertTrue(res, "recording rule %s: no series" % name)
                for s in res:
                    self.assertEqual(s["metric"].get("instance"), self.instance, (name, s))
        # The listed count names the one device in anomaly; nothing goes unlisted.
        res = self.prom.query("instance:vigil_devices_anomaly_listed:count")["result"]
        self.assertEqual([float(s["value"][1]) for s in res], [1.0])

    def test_dashboard_queries(self):
        dash = load_dashboard()
        inst = regex_escape(self.instance)
        # $__rate_interval: Grafana's is at least 4 scrape intervals; 2m here covers all of
        # this run's activity (trainings included) since Prometheus's first scrape.
        substitutions = [(JOB, inst, self.ANOMALOUS, "2m"), (".*", ".*", ".*", "2m"),
                         (JOB, inst, self.ANOMALOUS, "4s")]
        problems = []
        checked = 0
        for job, instance, device, ri in substitutions:
            for title, t in dashboard_targets(dash):
                expr = substitute(t["expr"], job, instance, device, ri)
                self.assertNotIn("$", expr, "unsubstituted variable in %r: %s" % (title, expr))
                data = self.prom.query(expr)
                checked += 1
                jobs = job_names(data)
                # An aggregation drops the job label: what it aggregates must be vigild's too
                # (min(up) with All took the other job's up), at every level of nesting.
                for inner in aggregated(expr):
                    jobs |= job_names(self.prom.query(inner))
                if not data["result"]:
                    problems.append("%s: %s: empty result" % (title, expr))
                elif jobs:
                    problems.append("%s: %s: series of job %s" % (title, expr, sorted(jobs)))
                elif ri == "2m" and not finite_values(data):
                    problems.append("%s: %s: no finite value: %r" % (title, expr, data["result"]))
        self.assertEqual(problems, [], "\n".join(problems))
        self.assertEqual(checked, 3 * len(dashboard_targets(dash)))

    def test_dashboard_device_panels_show_the_anomaly(self):
        """The per-device panels, on the anomalous device, show its state and score."""
        dash = load_dashboard()
        inst = regex_escape(self.instance)
        for title, t in dashboard_targets(dash):
            if "vigil_device_state{" in t["expr"] and "device=~" in t["expr"]:
                res = self.prom.query(substitute(t["expr"], JOB, inst, self.ANOMALOUS,
                                                 "2m"))["result"]
                self.assertEqual([(s["metric"]["device"], s["value"][1]) for s in res],
                                 [(self.ANOMALOUS, "3")], title)
            # The likelihood the state follows (session 68: the score alone sat at its 0.3 cap).
            if "vigil_device_anomaly_likelihood{" in t["expr"]:
                res = self.prom.query(substitute(t["expr"], JOB, inst, self.ANOMALOUS,
                                                 "2m"))["result"]
                self.assertEqual([s["metric"]["device"] for s in res], [self.ANOMALOUS], title)
                self.assertTrue(0 <= float(res[0]["value"][1]) <= 1, res)

    def test_dashboard_variables(self):
        dash = load_dashboard()
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        want = {"job": [JOB], "instance": [self.instance], "device": list(self.DEVICES)}
        for name, expect in want.items():
            m = re.match(r"^label_values\((.*),\s*(\w+)\)$", variables[name]["definition"])
            self.assertIsNotNone(m, variables[name])
            sel = substitute(m.group(1), JOB, regex_escape(self.instance), ".*", "2m")
            values = self.prom.api("label/%s/values" % m.group(2), **{"match[]": sel})
            self.assertEqual(sorted(values), sorted(expect), (name, sel))

    def test_names_are_exported(self):
        """Every vigil_* name in the rules and the dashboard is a family vigild exports (or a
        histogram's series), or one of the rules' recorded names."""
        exported = set(re.findall(r"^# TYPE (\w+) ", self.d.metrics(), re.M))
        series = set(exported)
        for fam in exported:
            series |= {fam + "_bucket", fam + "_sum", fam + "_count"}
        used = set()
        for _, _, expr in rule_list():
            used |= set(NAME.findall(expr))
        for _, t in dashboard_targets(load_dashboard()):
            used |= set(NAME.findall(t["expr"]))
        for v in load_dashboard()["templating"]["list"]:
            used |= set(NAME.findall(v.get("definition", "")))
        self.assertGreater(len(used), 20)
        self.assertEqual(sorted(used - series), [])


if __name__ == "__main__":
    vt.main()

#!/usr/bin/python3
"""vigild integration: the examples of README.md and of the reference it links (docs/writing.md,
docs/anomalies.md, docs/operator.md split from it in session 67, docs/http-api.md: README's
"Using it" until session 53) work as shown.

Every curl command in their indented code blocks is either run, exactly as written but for
its host and port, against a vigild started here (in DOCS order, each document in its own order:
README's "Using it" and "Backup and restore", then "Writing readings" through "HTTPS"), or
named in SKIPPED with the reason it cannot run in a test (an `echo ... > FILE` line just
before a curl runs first, in the same shell: the file its `-F "q=@FILE"` sends). A
command run must exit 0 with an HTTP status below 400, the status its comment or sample says
(`# 202`, `(201/200)`, `HTTP/1.1 204 No Content`) when it says one, and every key of a sample
answer shown after it (or in its comment) must be in the answer. README's token file and
configuration snippets must pass `vigild --check-config`, and a device object has the keys
docs/writing.md lists. $VIGIL_DOCS checks another copy, a folder holding README.md and docs/
(break one example there: the test fails).

The event-stream examples (`curl -N .../v1/events`, "Events as they happen") run too, bounded:
each is started, the events its sample shows are caused (an anomaly opened, then ended by an
operator's accept with a note once a state stream has the anomaly's state message, a
maintenance period started; a device's state change), and it is stopped once they have arrived
(curl also has --max-time). Each message of README's sample must have arrived with the same
shape: its `event:`, an `id:` RUN-SEQ, and `data:` JSON with the same keys and kinds of value
(number, string, bool, null, object, list) at every level. The HTTPS example runs against a
second vigild serving README's snippet with a certificate made by README's openssl command in a
temporary folder; curl's --resolve points the certificate's name at 127.0.0.1 (the command is
otherwise as written).

The Quick start's curl commands, in its text rather than a code block, run too (QuickStart):
each against a vigild whose pump-1 serves a model, the event streams cut after 2 s
(again after 10, then 60 s, when no answer had begun).

The documentation's checks against the code (routes, metric families, keys, fields, the
dependency table, docs/architecture.md's source files) are in test_readme_docs.py
(it_readme_docs).
"""

import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from test_security import TlsVigild  # noqa: E402  (the class only: its tests are not run here)

# README and the reference it links, in the order their examples run (read_docs()).
DOCS_ROOT = os.environ.get("VIGIL_DOCS", vt.REPO)
DOCS = ("README.md", "docs/writing.md", "docs/anomalies.md", "docs/operator.md",
        "docs/http-api.md")
DOC_PATHS = tuple(os.path.join(DOCS_ROOT, d) for d in DOCS)
README = DOC_PATHS[0]

# Sections whose curl examples are run, in DOCS order.
RUN_SECTIONS = ("Using it", "Backup and restore", "Writing readings", "The stream socket",
                "Devices and readings", "Anomalies, predictions, forecasts and models",
                "Events as they happen", "Health and metrics", "HTTPS")

# Curl examples that cannot run here, each by a piece of its text, with the reason. An entry
# that matches no example fails the test (the README changed: update the list).
SKIPPED = {}

# Prefixed to each command: curl also reports the HTTP status on stderr (the command's own text
# and output are untouched).
CURL_STATUS = ("curl() { command curl --write-out '%{stderr}\\n@@status %{http_code}\\n' \"$@\"; }\n")

# Prefixed to an event-stream example: a bound on the stream, should the test fail to stop it.
CURL_BOUNDED = "curl() { command curl --max-time 120 \"$@\"; }\n"

# README's HTTPS example names this host, which resolves nowhere: curl --resolve maps it.
TLS_HOST = "vigil.plant.local"


# ---- README parsing ------------------------------------------------------------------------

def sections(text):
    """[(heading, [code block, ...])]: each heading (## or ###) with its indented code blocks,
    each block a list of lines without the 4-space indent."""
    out = [("", [])]
    block = None
    prev_blank = True
    for line in text.split("\n"):
        if line.startswith("#") and not line.startswith("    "):
            out.append((line.lstrip("#").strip(), []))
            block = None
        elif line.startswith("    ") and (block is not None or prev_blank):
            if block is None:
                block = []
                out[-1][1].append(block)
            block.append(line[4:])
        elif line.strip() == "" and block is not None:
            block.append("")
        else:
            block = None
        prev_blank = line.strip() == ""
    return out


def complete(cmd):
    """True when cmd is a whole shell command: quotes balanced, no trailing backslash."""
    if cmd.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(cmd, comments=True)
    except ValueError:
        return False
    return True


class Example:
    """One curl command of a block, the comment lines under it and the sample lines after it."""

    def __init__(self, section, cmd):
        self.section = section
        self.cmd = cmd
        self.setup = ""  # an `echo ... > FILE` line before it, run first (its @FILE)
        self.comments = []
        self.sample = []

    def notes(self):
        """The command's comments: after it on its line and on the lines under it."""
        first = self.cmd.split("\n")[-1]
        tail = first.split(" #", 1)[1] if " #" in first else ""
        return " ".join([tail] + self.comments)

    def want_statuses(self):
        """The statuses its comment or sample names (empty: any below 400)."""
        found = set()
        notes = self.notes()
        m = re.match(r"\s*(\d{3})\b", notes)
        if m:
            found.add(int(m.group(1)))
        for group in re.findall(r"\((\d{3}(?:/\d{3})+)\)", notes):
            found.update(int(s) for s in group.split("/"))
        for line in self.sample:
            m = re.match(r"HTTP/1\.1 (\d{3}) ", line)
            if m:
                found.add(int(m.group(1)))
        return found

    def sample_keys(self):
        """The keys of the sample answer (its lines after the command, or a JSON object in
        the comment)."""
        text = " ".join(line for line in self.sample if not line.startswith("HTTP/"))
        notes = self.notes()
        if "{" in notes:
            text += notes[notes.index("{"):]
        return set(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)":', text))


def examples(text):
    """Every curl (and stream client) example of text (read_docs()), as Example, in order."""
    out = []
    for heading, blocks in sections(text):
        for block in blocks:
            out += block_examples(heading, block)
    return out


def block_examples(heading, block):
    out = []
    cur = None
    setup = ""
    i = 0
    while i < len(block):
        line = block[i]
        body = line[2:] if line.startswith("$ ") else line
        if body.startswith("echo ") and re.search(r" > [\w.-]+$", body):
            setup = body  # writes the file the next curl sends (-F "q=@FILE")
            cur = None
        elif body.startswith("curl ") or body.startswith("printf ") and "8471" in "".join(block):
            cmd = body
            while not complete(cmd) and i + 1 < len(block):
                i += 1
                cmd += "\n" + block[i]
            cur = Example(heading, cmd)
            cur.setup, setup = setup, ""
            out.append(cur)
        elif cur is not None and line.strip().startswith("#"):
            cur.comments.append(line.strip().lstrip("#").strip())
        elif cur is not None and line.strip():
            cur.sample.append(line)
        i += 1
    return out


def json_keys(doc):
    """Every object key anywhere in doc."""
    keys = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            keys.add(k)
            keys |= json_keys(v)
    elif isinstance(doc, list):
        for v in doc:
            keys |= json_keys(v)
    return keys


def read_docs():
    """README and the reference documents it links, one text in DOCS order (each starts with
    its `# ` title, so no section runs on into the next document)."""
    texts = []
    for path in DOC_PATHS:
        with open(path, encoding="utf-8") as f:
            texts.append(f.read())
    return "\n".join(texts)


# ---- running -------------------------------------------------------------------------------

def post_readings(d, items):
    res = d.post_json(items)
    if res.status != 200:
        raise AssertionError("setup readings: %r" % res)


def feed(d, device, n, start_ms):
    """n calm readings of two channels, one a second from start_ms."""
    post_readings(d, [{"device": device, "ts": start_ms + i * 1000,
                       "values": {"vib": 0.03 + 0.005 * math.sin(i / 7.0),
                                  "temp": 70 + math.sin(i / 11.0)}} for i in range(n)])


def wait_for(what, pred, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s" % what)


def prepare_anomaly_devices(d):
    """What the anomalies section's examples act on: pump-1 with a model and an open anomaly
    (for the status sample's channels and the accept), pump-3 known (its maintenance)."""
    # 1,500 readings in bulk: the first training takes them all, enough rows for an LSTM of two
    # channels (model.kind auto trains one only on as many values as it has parameters), so
    # version 1 has weights to export and roll back to, as the examples do.
    start = vt.now_ms() - 1500 * 1000
    feed(d, "pump-1", 1500, start)
    feed(d, "pump-3", 300, start)

    # A version, not only "model": a device still learning reports {"version": 0}, and it is
    # not "training" while it waits for a training thread (or first_settle's next poll) after
    # its last reading is scored.
    def trained():
        st = d.get_json("/v1/devices/pump-1/status")
        return st if st.get("model", {}).get("version", 0) >= 1 and not st["training"] else None

    st = wait_for("pump-1's first model", trained)
    if st["model"] != {"version": 1, "kind": "lstm"}:
        raise AssertionError("the examples' rollback and weights want version 1 an LSTM: %r" % st)
    open_anomaly(d, "pump-1")


def open_anomaly(d, device):
    """Opens an anomaly episode on device (which serves a model and has none open): a swing no
    model of calm readings predicts (a persistence model follows a step), larger each time the
    detector has not alarmed on it within 10 s."""
    for size in (5.0, 50.0, 500.0, 5000.0, 50000.0):
        t = vt.now_ms()
        post_readings(d, [{"device": device, "ts": t + i * 1000,
                           "values": {"vib": size if i % 2 else -size, "temp": 70}}
                          for i in range(6)])
        try:
            return wait_for("%s in anomaly" % device, lambda: d.get_json(
                "/v1/devices/%s/status" % device)["state"] == "anomaly", timeout=10)
        except AssertionError:
            pass
    raise AssertionError("%s opened no anomaly: %r"
                         % (device, d.get_json("/v1/devices/%s/status" % device)))


# ---- event streams -------------------------------------------------------------------------

def is_event_stream(ex):
    return ex.cmd.startswith("curl -N ") and "/v1/events" in ex.cmd


def shape(v):
    """The kinds of v's values at every level: an object's keys with their shapes, a list's set
    of element shapes, else number (integer or not), string, bool or null."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return ["list"] + sorted({json.dumps(shape(x), sort_keys=True) for x in v})
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    return "number" if isinstance(v, (int, float)) else "string"


def sse_fields(line):
    """(field, value) of an SSE line, the one space after the colon dropped."""
    k, _, v = line.partition(":")
    return k, v[1:] if v.startswith(" ") else v


def sample_messages(sample):
    """README's sample messages (its blank lines are not kept: each starts at its id line), as
    dicts of their fields; the retry line is left out."""
    out = []
    for line in sample:
        k, v = sse_fields(line.strip())
        if k == "id":
            out.append({})
        if out and k in ("id", "event", "data"):
            out[-1][k] = v
    return out


def stream_messages(lines):
    """The complete messages (ended by a blank line) of an event stream's lines, as dicts of
    their fields; comments (a keep-alive) and the retry line left out."""
    out, cur = [], {}
    for line in lines:
        if line == "":
            if "data" in cur:
                out.append(cur)
            cur = {}
        elif not line.startswith(":"):
            k, v = sse_fields(line)
            cur[k] = v
    return out


def state_message(lines, device, state):
    """Whether an event stream's lines hold device's state message to state. The accept must
    wait for it: a change and its return within one http.events_state_min_ms interval send no
    message (README), so an accept that comes before the held anomaly is sent (the anomaly came
    within the interval of pump-1's last message, the loop's 250 ms look late under load) leaves
    a state stream without a message."""
    for m in stream_messages(lines):
        data = json.loads(m["data"]) if m.get("event") == "state" else {}
        if data.get("device") == device and data.get("state") == state:
            return True
    return False


def unmatched(want, got):
    """The messages of want that no message of got matches: the same event and data of the
    same shape."""
    def same(w, g):
        return (w.get("event") == g.get("event") and
                shape(json.loads(w["data"])) == shape(json.loads(g["data"])))
    return [w for w in want if not any(same(w, g) for g in got)]


class EventStream:
    """An event-stream example running in the background (its own process group), its output
    lines collected by a thread as they come."""

    def __init__(self, cmd, cwd):
        self.proc = subprocess.Popen(["bash", "-c", CURL_BOUNDED + cmd], cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.lines = []
        self.cv = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            with self.cv:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.cv.notify_all()

    def wait(self, what, pred, timeout=30.0):
        """Waits until pred(lines) holds, at most timeout seconds."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while not pred(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or not self.thread.is_alive():
                    raise AssertionError("waiting for %s; the stream said:\n%s"
                                         % (what, "\n".join(self.lines[-40:])))
                self.cv.wait(min(left, 0.5))

    def stop(self):
        """Ends the example (SIGTERM to its process group); returns its stderr."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.thread.join(timeout=10)
        err = self.proc.stderr.read().decode("utf-8", "replace")
        self.proc.stdout.close()
        self.proc.stderr.close()
        return err


def cause_sample_events(d, anomaly_sent):
    """The events README's stream samples show, on the devices the examples before them made:
    an anomaly opened on pump-1, ended by an operator's accept with a note (both also state
    changes), then a maintenance period started on pump-3 with a note. anomaly_sent() waits,
    before the accept, until the state streams have pump-1's anomaly (see state_message)."""
    open_anomaly(d, "pump-1")
    anomaly_sent()
    res = d.curl("POST", "/v1/devices/pump-1/anomalies/accept", "-d", '{"note":"checked"}')
    if res.status != 200:
        raise AssertionError("accept: %r" % res)
    res = d.curl("POST", "/v1/devices/pump-3/maintenance", "-d",
                 '{"minutes":30,"note":"new seal"}')
    if res.status not in (200, 201):
        raise AssertionError("maintenance: %r" % res)


class Examples(vt.DaemonTestCase):
    """The curl examples of the main sections, run in DOCS order against one vigild."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cwd = vt.mkdtemp()  # where -o and @file examples write and read

    def rewrite(self, cmd):
        """README's host:port to this vigild's (nothing else changes)."""
        cmd = re.sub(r"(localhost|127\.0\.0\.1):8470", "127.0.0.1:%d" % self.d.http_port, cmd)
        return cmd.replace('"127.0.0.1",8471', '"127.0.0.1",%d' % self.d.stream_port)

    def run_example(self, ex, cmd=None, prefix=CURL_STATUS, cwd=None):
        """Runs ex (cmd: its command rewritten, by default for this vigild) with prefix's curl,
        in cwd (by default the examples' folder)."""
        cmd = self.rewrite(ex.cmd) if cmd is None else cmd
        setup = ex.setup + "\n" if ex.setup else ""
        p = subprocess.run(["bash", "-c", prefix + setup + cmd], cwd=cwd or self.cwd,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        err = p.stderr.decode("utf-8", "replace")
        out = p.stdout.decode("utf-8", "replace")
        where = "%s: %s\nstdout: %s\nstderr: %s" % (ex.section, ex.cmd, out[:2000], err[-2000:])
        self.assertEqual(p.returncode, 0, where)
        return out, re.findall(r"@@status (\d+)", err), where

    def check_example(self, ex, **run):
        out, statuses, where = self.run_example(ex, **run)
        if not ex.cmd.startswith("curl"):  # the stream client: its answer is the sample
            for line in ex.sample:
                self.assertIn(line.strip(), out.split("\n"), where)
            return
        self.assertEqual(len(statuses), 1, where)
        status = int(statuses[0])
        want = ex.want_statuses()
        if want:  # a 4xx only where the example's comment names it (the retrain's 409)
            self.assertIn(status, want, where)
        else:
            self.assertTrue(200 <= status < 400, "HTTP %d\n%s" % (status, where))
        keys = ex.sample_keys()
        if keys:
            body = out[out.index("{"):] if "{" in out else ""
            try:
                doc = json.loads(body)
            except ValueError:
                self.fail("a sample answer is shown, the answer is not JSON\n" + where)
            self.assertLessEqual(keys, json_keys(doc), where)

    def check_event_streams(self, exs):
        """Runs the event-stream examples exs together, causes the events their samples show and
        stops them once every sample message has arrived with its shape (see the top)."""
        streams = [EventStream(self.rewrite(ex.cmd), self.cwd) for ex in exs]
        try:
            for st, ex in zip(streams, exs):
                # Its first line: the stream is attached to the hub by the time it is sent.
                st.wait("the stream's first line", lambda lines: len(lines) > 0)
                self.assertEqual(st.lines[0], ex.sample[0].strip(), ex.cmd)
            states = [st for st, ex in zip(streams, exs)
                      if any(m.get("event") == "state" for m in sample_messages(ex.sample))]

            def anomaly_sent():
                # The status shows the anomaly (open_anomaly), which stays until the accept: its
                # message is due within about the interval + 250 ms (README); bounded as st.wait.
                for st in states:
                    try:
                        st.wait("pump-1's state message to anomaly",
                                lambda lines: state_message(lines, "pump-1", "anomaly"))
                    except AssertionError as e:
                        # Seen once in 12 runs under load (review, session 32; cause not
                        # found): say what the daemon shows, for the next time.
                        raise AssertionError("%s\npump-1's status: %s\nits anomalies: %s\n%s"
                                             % (e, self.d.curl("GET", "/v1/devices/pump-1/status"),
                                                self.d.curl("GET", "/v1/devices/pump-1/anomalies"),
                                                self.d.log()[-4000:])) from None

            cause_sample_events(self.d, anomaly_sent)
            for st, ex in zip(streams, exs):
                want = sample_messages(ex.sample)
                self.assertGreater(len(want), 0, ex.cmd)
                st.wait("README's sample messages of %s" % ex.cmd,
                        lambda lines: not unmatched(want, stream_messages(lines)))
        finally:
            errs = [st.stop() for st in streams]
        for st, ex, err in zip(streams, exs, errs):
            got = stream_messages(st.lines)
            ids = [re.fullmatch(r"(\d+)-(\d+)", m.get("id", "")) for m in got]
            where = "%s\n%s\nstderr: %s" % (ex.cmd, "\n".join(st.lines), err)
            self.assertTrue(all(ids), where)  # RUN-SEQ, as README's samples
            self.assertEqual(len({m.group(1) for m in ids}), 1, where)  # one run
            seqs = [int(m.group(2)) for m in ids]
            self.assertEqual(seqs, sorted(set(seqs)), where)  # growing
            for w in sample_messages(ex.sample):
                self.assertRegex(w["id"], r"^\d+-\d+$", "README's sample id")

    def check_https(self, ex):
        """Runs README's HTTPS example against a vigild serving README's HTTPS snippet, with the
        certificate README's openssl command makes (in a temporary folder, the example's)."""
        text = read_docs()
        tmp = vt.mkdtemp()
        make_readme_cert(text, tmp)
        conf = vt.write_file(os.path.join(tmp, "c.conf"), readme_http_snippet(text, "tls_cert", tmp))
        d = TlsVigild(os.path.join(tmp, "vigild.crt"), check_hostname=False, config=conf,
                      stream=False)
        d.start()
        try:
            name = "%s:%d" % (TLS_HOST, d.http_port)
            prefix = CURL_STATUS.replace("command curl",
                                         "command curl --resolve %s:127.0.0.1" % name)
            self.check_example(ex, cmd=ex.cmd.replace(TLS_HOST + ":8470", name), prefix=prefix,
                               cwd=tmp)
        finally:
            d.stop()
            d.cleanup()

    def test_examples(self):
        exs = examples(read_docs())
        self.assertGreater(len(exs), 25, "the examples of README and docs/ not found")
        matched = {k: 0 for k in SKIPPED}
        ran = {s: 0 for s in RUN_SECTIONS}
        i = 0
        while i < len(exs):
            ex = exs[i]
            i += 1
            skip = [k for k in SKIPPED if k in ex.cmd]
            if skip:
                matched[skip[0]] += 1
                continue
            self.assertIn(ex.section, RUN_SECTIONS,
                          "an example outside the sections run, not in SKIPPED: %s" % ex.cmd)
            if ex.section.startswith("Anomalies") and ran[ex.section] == 0:
                prepare_anomaly_devices(self.d)
            if is_event_stream(ex):
                # It and the event-stream examples right after it, together on one set of events.
                group = [ex]
                while i < len(exs) and is_event_stream(exs[i]):
                    group.append(exs[i])
                    i += 1
                with self.subTest(example=" and ".join(e.cmd for e in group)):
                    self.check_event_streams(group)
                ran[ex.section] += len(group)
                continue
            with self.subTest(example=ex.cmd):
                if "https://" in ex.cmd:
                    self.check_https(ex)
                else:
                    self.check_example(ex)
            ran[ex.section] += 1
        sys.stderr.write("\nexamples run per section: %r; skipped: %d\n"
                         % (ran, sum(matched.values())))
        self.assertEqual([k for k, n in matched.items() if n == 0], [],
                         "SKIPPED entries that match no example")
        self.assertEqual([s for s, n in ran.items() if n == 0], [],
                         "sections with no example run")

    def test_device_object_keys(self):
        """"A device object has ..." lists its keys: a declared device without readings has
        them all (null where it has no readings)."""
        m = re.search(r"A device object has (.*?)\(epoch ms", read_docs(), re.S)
        self.assertIsNotNone(m, "docs/writing.md's device object sentence not found")
        keys = set(re.findall(r"`(\w+)`", m.group(1)))
        self.assertGreaterEqual(len(keys), 6, keys)
        res = self.d.curl("PUT", "/v1/devices/declared-only", "-d", "{}")
        self.assertIn(res.status, (200, 201), res)
        self.assertLessEqual(keys, set(res.json()), res)
        self.assertLessEqual(keys, set(self.d.device("declared-only")), res)


class QuickStart(vt.DaemonTestCase):
    """The curl commands in the Quick start's text (not a code block, so not among the
    examples above), as written but for the port, against a vigild whose pump-1 serves a model
    as the demo's does: each exits 0 with a status below 400 and a JSON answer; an event stream
    ("curl -sN .../v1/events...") opens with its retry line, then is cut by curl's --max-time."""

    def test_commands(self):
        text = read_docs()
        start = text.index("\n## Quick start")
        quick = text[start:text.index("\n## ", start + 1)]
        cmds = re.findall(r"`(curl [^`]*)`", quick)
        self.assertGreaterEqual(len(cmds), 5, "the Quick start's curl commands: %r" % cmds)
        feed(self.d, "pump-1", 600, vt.now_ms() - 600 * 1000)
        wait_for("pump-1's first model", lambda: self.d.get_json(
            "/v1/devices/pump-1/status").get("model", {}).get("version", 0) >= 1)
        port = "127.0.0.1:%d" % self.d.http_port
        for cmd in cmds:
            run = re.sub(r"(localhost|127\.0\.0\.1):8470", port, cmd)
            stream = "/v1/events" in cmd
            with self.subTest(command=cmd):
                # Only this vigild is asked: a command naming another host or port fails here
                # rather than reaching whatever listens there.
                self.assertIn(port + "/", run)
                # A stream is cut by --max-time once open; cut again later only when no answer
                # had begun by then (status 000, nothing read: a loaded machine), so no speed
                # is asserted.
                for bound in ((2, 10, 60) if stream else (None,)):
                    p, out, err = self.run_curl(run, bound)
                    if bound is None or out or "@@status 000" not in err:
                        break
                where = "%s\nstdout: %s\nstderr: %s" % (cmd, out[:2000], err[-2000:])
                status = re.findall(r"@@status (\d+)", err)
                self.assertEqual(len(status), 1, where)
                self.assertTrue(200 <= int(status[0]) < 400, where)
                if stream:
                    self.assertEqual(p.returncode, 28, where)  # curl's "timed out"
                    self.assertEqual(out.split("\n")[0], "retry: 3000", where)
                else:
                    self.assertEqual(p.returncode, 0, where)
                    self.assertIsInstance(json.loads(out), dict, where)

    def run_curl(self, cmd, max_time):
        """Runs cmd with curl reporting its status on stderr (and cut after max_time seconds
        unless None); returns (CompletedProcess, stdout, stderr)."""
        prefix = CURL_STATUS
        if max_time is not None:
            prefix = prefix.replace("command curl", "command curl --max-time %d" % max_time)
        p = subprocess.run(["bash", "-c", prefix + cmd], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        return p, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class DefaultDataDir(unittest.TestCase):
    """The Quick start's vigild keeps its data in ./vigil-data (the default, relative to where
    it runs): a snapshot ("Backup and restore") is named as that folder under the working
    directory, DIR/vigil-data/snapshots/..., not DIR/./vigil-data/..., in its answer and in
    the list's folder; run from /, a relative folder's is /FOLDER/snapshots, not
    //FOLDER/snapshots (a leading "//" is a path POSIX leaves to the system). The log names the
    folder the same way (session 67)."""

    def test_snapshot_path(self):
        cwd = os.path.realpath(vt.mkdtemp())
        self.check(cwd, "./vigil-data", os.path.join(cwd, "vigil-data", "snapshots"))

    def test_snapshot_path_from_root(self):
        data = os.path.join(os.path.realpath(vt.mkdtemp()), "data")
        self.check("/", data.lstrip("/"), os.path.join(data, "snapshots"))

    def check(self, cwd, data_dir, want):
        d = vt.Vigild(data_dir=data_dir, stream=False, preexec_fn=lambda: os.chdir(cwd))
        d.start()
        try:
            res = d.curl("POST", "/v1/admin/snapshot")
            self.assertEqual(res.status, 200, res)
            self.assertEqual(os.path.dirname(res.json()["path"]), want, res)
            self.assertTrue(os.path.isfile(res.json()["path"]), res)
            res = d.curl("GET", "/v1/admin/snapshots")
            self.assertEqual(res.json()["dir"], want, res)
            # The log names the folder as absolute, as the answers do (task ops67: it said
            # "data in ./vigil-data", relative to a working directory it does not say).
            data = os.path.dirname(want)
            log = d.log()
            self.assertIn(": data in %s, HTTP on " % data, log)
            self.assertIn("storage: opened %s/vigil.db (" % data, log)
        finally:
            d.stop()
            d.cleanup()


class InstallDeps(unittest.TestCase):
    """The Quick start's first command, tools/install-deps, on a machine where npm cannot reach
    its registry (a plant network): it warns and exits 0, so the `&& cmake ...` after it goes
    on, as the client it could not install is only a test's. apt-get, npm and sudo are stand-ins
    (apt-get succeeds, npm fails), so nothing is installed and no network is used."""

    def test_npm_unreachable(self):
        tmp = vt.mkdtemp()
        fake = os.path.join(tmp, "bin")
        os.makedirs(fake)
        for name, body in (("apt-get", "exit 0"), ("sudo", 'exec "$@"'),
                           ("npm", "echo 'npm error network ECONNREFUSED' >&2; exit 1")):
            os.chmod(vt.write_file(os.path.join(fake, name), "#!/bin/sh\n%s\n" % body), 0o755)
        env = dict(os.environ, PATH=fake + ":" + os.environ.get("PATH", ""),
                   VIGIL_NODE_DIR=os.path.join(tmp, "node"))
        p = subprocess.run([os.path.join(vt.REPO, "tools", "install-deps")], env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120)
        where = "stdout: %s\nstderr: %s" % (p.stdout, p.stderr)
        self.assertEqual(p.returncode, 0, where)
        self.assertIn("npm error network", p.stderr, where)  # npm's own words kept
        self.assertIn("install-deps: warning: npm could not install @influxdata/influxdb-client",
                      p.stderr, where)


def block_after(text, first_line):
    """The indented code block of README that starts with first_line."""
    for _, blocks in sections(text):
        for block in blocks:
            if block and block[0].strip() == first_line:
                return block
    raise AssertionError("README block starting %r not found" % first_line)


def make_readme_cert(text, folder):
    """Runs README's openssl command (its HTTPS block but the curl) in folder: vigild.crt and
    vigild.key there."""
    ssl = [b for _, bs in sections(text) for b in bs if b and b[0].startswith("openssl req")]
    if len(ssl) != 1:
        raise AssertionError("README's openssl command: %d blocks" % len(ssl))
    openssl = "\n".join(line for line in ssl[0] if line.strip() and not line.startswith("curl"))
    p = subprocess.run(["bash", "-c", openssl], cwd=folder, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    if p.returncode != 0:
        raise AssertionError("README's openssl command: %s" % p.stdout.decode("utf-8", "replace"))


def readme_http_snippet(text, first, folder):
    """README's [http] configuration snippet with a key starting with first, its
    /etc/vigil/tls/ taken as folder."""
    snippets = [b for _, bs in sections(text) for b in bs
                if b and b[0] == "[http]" and any(x.startswith(first) for x in b)]
    if len(snippets) != 1:
        raise AssertionError("README's [http] snippet with %s: %d" % (first, len(snippets)))
    return "\n".join(snippets[0]).replace("/etc/vigil/tls/", folder + "/") + "\n"


class ConfigSnippets(unittest.TestCase):
    """README's token file and configuration snippets are accepted by vigild as shown (the
    elided tokens `3f9c...` filled in, /etc/vigil/tls/ taken as a temporary folder)."""

    def check_config(self, *args):
        p = subprocess.run([vt.VIGILD, "--check-config"] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_token_file(self):
        block = block_after(read_docs(), "# /etc/vigil/tokens")
        n = [0]

        def token(m):
            n[0] += 1
            return m.group(1) + "%032x" % n[0]

        text = re.sub(r"\b([0-9a-f]{4})\.\.\.", token, "\n".join(block) + "\n")
        self.assertEqual(n[0], 3, text)
        path = vt.write_file(os.path.join(vt.mkdtemp(), "tokens"), text)
        os.chmod(path, 0o600)
        self.check_config("--auth-file", path)

    def test_https_and_cors(self):
        text = read_docs()
        tmp = vt.mkdtemp()
        make_readme_cert(text, tmp)  # in the folder the snippet names
        for first in ("tls_cert", "cors_origins"):
            conf = readme_http_snippet(text, first, tmp)
            with self.subTest(snippet=first):
                self.check_config("--config", vt.write_file(os.path.join(tmp, "c.conf"), conf))


if __name__ == "__main__":
    vt.main()

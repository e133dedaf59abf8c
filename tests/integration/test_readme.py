#!/usr/bin/python3
"""vigild integration: README.md's examples work as shown.

Every curl command in README's indented code blocks is either run, exactly as written but for
its host and port, against a vigild started here (in README order, sections "Writing readings"
through "Backup and restore"), or named in SKIPPED with the reason it cannot run in a test. A
command run must exit 0 with an HTTP status below 400, the status its comment or sample says
(`# 202`, `(201/200)`, `HTTP/1.1 204 No Content`) when it says one, and every key of a sample
answer shown after it (or in its comment) must be in the answer. README's token file and
configuration snippets must pass `vigild --check-config`, and a device object has the keys
README lists. $VIGIL_README checks another copy (break one example there: the test fails).
"""

import json
import math
import os
import re
import shlex
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402

README = os.environ.get("VIGIL_README", os.path.join(vt.REPO, "README.md"))

# Sections whose curl examples are run, in README order.
RUN_SECTIONS = ("Writing readings", "The stream socket", "Devices and readings",
                "Anomalies, predictions, forecasts and models", "Health and metrics",
                "Backup and restore")

# Curl examples that cannot run here, each by a piece of its text, with the reason. An entry
# that matches no example fails the test (the README changed: update the list).
SKIPPED = {
    "curl -N http://127.0.0.1:8470/v1/events": "the event stream runs until the client stops it",
    "curl -N 'http://127.0.0.1:8470/v1/events?types=state'":
        "the event stream runs until the client stops it",
    "curl --cacert vigild.crt https://vigil.plant.local:8470/healthz":
        "needs HTTPS and the name vigil.plant.local to resolve (the certificate and the "
        "configuration snippet are checked in ConfigSnippets)",
}

# Prefixed to each command: curl also reports the HTTP status on stderr (the command's own text
# and output are untouched).
CURL_STATUS = ("curl() { command curl --write-out '%{stderr}\\n@@status %{http_code}\\n' \"$@\"; }\n")


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
    """Every curl (and stream client) example of README, as Example, in order."""
    out = []
    for heading, blocks in sections(text):
        for block in blocks:
            out += block_examples(heading, block)
    return out


def block_examples(heading, block):
    out = []
    cur = None
    i = 0
    while i < len(block):
        line = block[i]
        body = line[2:] if line.startswith("$ ") else line
        if body.startswith("curl ") or body.startswith("printf ") and "8471" in "".join(block):
            cmd = body
            while not complete(cmd) and i + 1 < len(block):
                i += 1
                cmd += "\n" + block[i]
            cur = Example(heading, cmd)
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


def read_readme():
    with open(README, encoding="utf-8") as f:
        return f.read()


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
    # A swing no model of the calm readings predicts (a persistence model follows a step),
    # larger each time the detector has not alarmed on it within 10 s.
    for size in (5.0, 50.0, 500.0, 5000.0):
        t = vt.now_ms()
        post_readings(d, [{"device": "pump-1", "ts": t + i * 1000,
                           "values": {"vib": size if i % 2 else -size, "temp": 70}}
                          for i in range(6)])
        try:
            return wait_for("pump-1 in anomaly", lambda: d.get_json(
                "/v1/devices/pump-1/status")["state"] == "anomaly", timeout=10)
        except AssertionError:
            pass
    raise AssertionError("pump-1 opened no anomaly: %r" % d.get_json("/v1/devices/pump-1/status"))


class Examples(vt.DaemonTestCase):
    """The curl examples of the main sections, run in README order against one vigild."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cwd = vt.mkdtemp()  # where -o and @file examples write and read

    def rewrite(self, cmd):
        """README's host:port to this vigild's (nothing else changes)."""
        cmd = re.sub(r"(localhost|127\.0\.0\.1):8470", "127.0.0.1:%d" % self.d.http_port, cmd)
        return cmd.replace('"127.0.0.1",8471', '"127.0.0.1",%d' % self.d.stream_port)

    def run_example(self, ex):
        p = subprocess.run(["bash", "-c", CURL_STATUS + self.rewrite(ex.cmd)], cwd=self.cwd,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        err = p.stderr.decode("utf-8", "replace")
        out = p.stdout.decode("utf-8", "replace")
        where = "%s: %s\nstdout: %s\nstderr: %s" % (ex.section, ex.cmd, out[:2000], err[-2000:])
        self.assertEqual(p.returncode, 0, where)
        return out, re.findall(r"@@status (\d+)", err), where

    def check_example(self, ex):
        out, statuses, where = self.run_example(ex)
        if not ex.cmd.startswith("curl"):  # the stream client: its answer is the sample
            for line in ex.sample:
                self.assertIn(line.strip(), out.split("\n"), where)
            return
        self.assertEqual(len(statuses), 1, where)
        status = int(statuses[0])
        self.assertTrue(200 <= status < 400, "HTTP %d\n%s" % (status, where))
        want = ex.want_statuses()
        if want:
            self.assertIn(status, want, where)
        keys = ex.sample_keys()
        if keys:
            body = out[out.index("{"):] if "{" in out else ""
            try:
                doc = json.loads(body)
            except ValueError:
                self.fail("a sample answer is shown, the answer is not JSON\n" + where)
            self.assertLessEqual(keys, json_keys(doc), where)

    def test_examples(self):
        exs = examples(read_readme())
        self.assertGreater(len(exs), 25, "README's examples not found")
        matched = {k: 0 for k in SKIPPED}
        ran = {s: 0 for s in RUN_SECTIONS}
        for ex in exs:
            skip = [k for k in SKIPPED if k in ex.cmd]
            if skip:
                matched[skip[0]] += 1
                continue
            self.assertIn(ex.section, RUN_SECTIONS,
                          "an example outside the sections run, not in SKIPPED: %s" % ex.cmd)
            if ex.section.startswith("Anomalies") and ran[ex.section] == 0:
                prepare_anomaly_devices(self.d)
            with self.subTest(example=ex.cmd):
                self.check_example(ex)
            ran[ex.section] += 1
        sys.stderr.write("\nREADME examples run per section: %r; skipped: %d\n"
                         % (ran, sum(matched.values())))
        self.assertEqual([k for k, n in matched.items() if n == 0], [],
                         "SKIPPED entries that match no README example")
        self.assertEqual([s for s, n in ran.items() if n == 0], [],
                         "sections with no example run")

    def test_device_object_keys(self):
        """"A device object has ..." lists its keys: a declared device without readings has
        them all (null where it has no readings)."""
        m = re.search(r"A device object has (.*?)\(epoch ms", read_readme(), re.S)
        self.assertIsNotNone(m, "README's device object sentence not found")
        keys = set(re.findall(r"`(\w+)`", m.group(1)))
        self.assertGreaterEqual(len(keys), 6, keys)
        res = self.d.curl("PUT", "/v1/devices/declared-only", "-d", "{}")
        self.assertIn(res.status, (200, 201), res)
        self.assertLessEqual(keys, set(res.json()), res)
        self.assertLessEqual(keys, set(self.d.device("declared-only")), res)


def block_after(text, first_line):
    """The indented code block of README that starts with first_line."""
    for _, blocks in sections(text):
        for block in blocks:
            if block and block[0].strip() == first_line:
                return block
    raise AssertionError("README block starting %r not found" % first_line)


class ConfigSnippets(unittest.TestCase):
    """README's token file and configuration snippets are accepted by vigild as shown (the
    elided tokens `3f9c...` filled in, /etc/vigil/tls/ taken as a temporary folder)."""

    def check_config(self, *args):
        p = subprocess.run([vt.VIGILD, "--check-config"] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_token_file(self):
        block = block_after(read_readme(), "# /etc/vigil/tokens")
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
        text = read_readme()
        tmp = vt.mkdtemp()
        # The certificate by README's own openssl command, in the folder the snippet names.
        ssl = [b for _, bs in sections(text) for b in bs if b and b[0].startswith("openssl req")]
        self.assertEqual(len(ssl), 1)
        openssl = "\n".join(line for line in ssl[0] if line.strip() and not line.startswith("curl"))
        p = subprocess.run(["bash", "-c", openssl], cwd=tmp, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout)
        for first in ("tls_cert", "cors_origins"):
            snippets = [b for _, bs in sections(text) for b in bs
                        if b and b[0] == "[http]" and any(x.startswith(first) for x in b)]
            self.assertEqual(len(snippets), 1, first)
            conf = "\n".join(snippets[0]).replace("/etc/vigil/tls/", tmp + "/") + "\n"
            with self.subTest(snippet=first):
                self.check_config("--config", vt.write_file(os.path.join(tmp, "c.conf"), conf))


if __name__ == "__main__":
    vt.main()

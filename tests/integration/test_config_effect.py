#!/usr/bin/python3
"""vigild integration: settings taking effect (model.lstm_min_rows, settings of devices restored
from the database after a restart), reloads (SIGHUP) of single settings, and the documentation
(README, vigild(8), vigild.conf(5), etc/vigild.conf) against daemon/config.c's table. Moved out
of test_config.py (the command line and the file's parsing and errors), whole classes."""

import os
import re
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_ops  # noqa: E402  (hup only)
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import vigiltest as vt  # noqa: E402
from test_config import run  # noqa: E402  (the helper only: its TestCases are not collected)


class LstmMinRows(unittest.TestCase):
    """model.lstm_min_rows: with the default (auto: as many training values as the LSTM has
    parameters, 1,233 at hidden 16 on one channel) a device's first training on 200 rows trains
    no LSTM and the linear model (or persistence) serves; with 0 the same training trains an
    LSTM. A reload names the key as applied only after a restart, as model.kind."""

    ROWS = 200

    def first_version(self, value):
        """Starts a daemon (lstm_min_rows = value, None: the default), gives one device its
        warm-up of one channel and returns its first version's metrics and what serves."""
        extra = "" if value is None else "lstm_min_rows = %s\n" % value
        cfg = tp.make_config(tp.config_text(0, warmup=self.ROWS, hidden=16, extra=extra))
        d = vt.Vigild(config=cfg, stream=False)
        dev, t0 = "lmr-1", 1_700_000_000_000
        rows = tp.rotation(self.ROWS, 0, tp.OMEGA_A, 0.01, tp.random.Random(3))
        try:
            d.start()
            tp.post_readings(d, dev, [r[:1] for r in rows],
                             [t0 + 1000 * k for k in range(self.ROWS)], ["x"])
            tp.wait_scored(d, dev, self.ROWS)
            m = tp.wait_idle(d, dev, 1)
            if value is None:
                vt.write_file(cfg, tp.config_text(0, warmup=self.ROWS, hidden=16,
                                                  extra="lstm_min_rows = 0\n"))
                test_ops.hup(d, "applied only after a restart: model.lstm_min_rows")
            d.stop()
            return m["versions"][0]["metrics"], m["serving"]["kind"]
        except AssertionError:
            sys.stderr.write(d.log() + "\n")
            raise
        finally:
            d.cleanup()

    def test_default_then_zero(self):
        metrics, kind = self.first_version(None)
        self.assertEqual(metrics["epochs"], 0, metrics)
        self.assertIsNone(metrics["val_mse_lstm"], metrics)
        self.assertNotEqual(kind, "lstm")
        metrics, kind = self.first_version("0")
        self.assertGreater(metrics["epochs"], 0, metrics)
        self.assertIsNotNone(metrics["val_mse_lstm"], metrics)


class RestoredSettings(unittest.TestCase):
    """A device restored at start-up runs with the running configuration's model.kind and
    retraining schedule, not the ones saved with it (detector_apply_settings at restore)."""

    def test_restart_with_changed_kind_and_schedule(self):
        tmp = vt.mkdtemp()
        cfg = os.path.join(tmp, "vigild.conf")
        # First run: the linear model only, and no retraining schedule at all.
        vt.write_file(cfg, tp.config_text(0, extra="kind = linear\n"))
        d = vt.Vigild(config=cfg)
        dev, t0 = "rs-1", 1_700_000_000_000
        rows = tp.rotation(tp.WARMUP + 20, 0, tp.OMEGA_A, 0.01, tp.random.Random(7))
        try:
            d.start()
            ts = [t0 + 1000 * k for k in range(tp.WARMUP)]
            tp.post_readings(d, dev, rows[:tp.WARMUP], ts, tp.CH3)
            tp.wait_scored(d, dev, tp.WARMUP)
            m = tp.wait_idle(d, dev, 1)
            self.assertEqual(m["serving"]["kind"], "linear", m)
            n0, last = len(m["versions"]), ts[-1]
            d.stop()
            # Second run on the same data: an LSTM serves once one trains, and 60 s of the
            # readings' time asks for a retraining.
            vt.write_file(cfg, tp.config_text(0, extra="kind = lstm\nretrain_seconds = 60\n"))
            d.start()
            self.assertEqual(len(tp.models(d, dev)["versions"]), n0)
            for k in range(1, 7):  # 10 s apart: the last one is 60 s after the training
                tp.post_readings(d, dev, [rows[tp.WARMUP + k]], [last + 10000 * k], tp.CH3)
            tp.wait_scored(d, dev, tp.WARMUP + 6)
            m = tp.wait_idle(d, dev, n0 + 1)
            self.assertEqual(len(m["versions"]), n0 + 1, m)
            self.assertEqual(m["serving"]["kind"], "lstm", m)
            d.stop()
        except AssertionError:
            sys.stderr.write(d.log() + "\n")
            raise
        finally:
            d.cleanup()

    def test_restart_with_changed_lstm_min_rows(self):
        """A device whose first training (default auto: 200 rows of one channel are too few)
        trained no LSTM trains one at its next training once a restart sets lstm_min_rows 0."""
        tmp = vt.mkdtemp()
        cfg = os.path.join(tmp, "vigild.conf")
        vt.write_file(cfg, tp.config_text(0, warmup=200, hidden=16))
        d = vt.Vigild(config=cfg, stream=False)
        dev, t0 = "rs-2", 1_700_000_000_000
        rows = [r[:1] for r in tp.rotation(220, 0, tp.OMEGA_A, 0.01, tp.random.Random(3))]
        try:
            d.start()
            ts = [t0 + 1000 * k for k in range(200)]
            tp.post_readings(d, dev, rows[:200], ts, ["x"])
            tp.wait_scored(d, dev, 200)
            m = tp.wait_idle(d, dev, 1)
            self.assertIsNone(m["versions"][0]["metrics"]["val_mse_lstm"], m)
            n0, last = len(m["versions"]), ts[-1]
            d.stop()
            vt.write_file(cfg, tp.config_text(0, warmup=200, hidden=16,
                                              extra="lstm_min_rows = 0\nretrain_seconds = 60\n"))
            d.start()
            for k in range(1, 7):  # 10 s apart: the last one is 60 s after the training
                tp.post_readings(d, dev, [rows[200 + k]], [last + 10000 * k], ["x"])
            tp.wait_scored(d, dev, 206)
            m = tp.wait_idle(d, dev, n0 + 1)
            newest = max(m["versions"], key=lambda v: v["version"])
            self.assertIsNotNone(newest["metrics"]["val_mse_lstm"], m)
            self.assertGreater(newest["metrics"]["epochs"], 0, m)
            d.stop()
        except AssertionError:
            sys.stderr.write(d.log() + "\n")
            raise
        finally:
            d.cleanup()


class ReloadScanBound(tp.DaemonPerTest):
    """http.max_scan_points applies on reload: a page of readings in buckets (step=) that read
    every point in one page before is cut into pages after SIGHUP (its "next" appears), with
    the same buckets over all pages; without a restart (the same process answers)."""

    CONFIG = "[model]\nenabled = false\n"

    def pages(self, path):
        """The buckets of every page of path, following `next`."""
        out = []
        while path:
            doc = self.d.get_json(path)
            out.append(doc["buckets"])
            path = doc["next"]
            self.assertLess(len(out), 100)
        return out

    def test_max_scan_points(self):
        d, dev, t0 = self.d, "scan-1", 1_700_000_000_000
        path = "/v1/devices/%s/readings?step=10s&limit=1000" % dev
        pid = d.proc.pid
        tp.post_readings(d, dev, [[float(k)] for k in range(200)],
                         [t0 + 1000 * k for k in range(200)], ["v"])
        whole = self.pages(path)
        self.assertEqual([len(p) for p in whole], [20])
        vt.write_file(d.config, self.CONFIG + "[http]\nmax_scan_points = 30\n")
        log = test_ops.hup(d, r"configuration reloaded; applied: http.max_scan_points")
        self.assertNotIn("applied only after a restart", log)
        paged = self.pages(path)
        self.assertGreater(len(paged), 5)  # about 30 points (3 buckets) a page
        self.assertEqual([b for p in paged for b in p], whole[0])
        self.assertEqual(d.proc.pid, pid)


class ReloadControlCharacter(tp.DaemonPerTest):
    """cfgctl: a tab in a value: reload rejected, the running config kept; CRLF, tabs applied."""

    BASE = "[model]\r\nenabled = false\r\n[http]\r\n"
    CONFIG = BASE + "max_batch = 100\r\n"

    def test_reload(self):
        for text, pattern in [("max_batch = 1000\nauth_file = /a\tb\n", "reload rejected.*:5: "
                               "http.auth_file: the value has a control character \\(0x09"),
                              ("max_batch\t= 1000\t\r\n", "applied: http.max_batch")]:
            self.assertEqual(self.d.post_json(test_ops.items(101)).status, 413)
            vt.write_file(self.d.config, self.BASE + text)
            test_ops.hup(self.d, pattern)
        self.assertEqual(self.d.post_json(test_ops.items(101)).status, 200)


class EmptyGuard(tp.DaemonPerTest):
    """Session 51: an empty value turns off a duration only where off is its default
    (storage.retention, storage.snapshot_every). storage.max_ahead's future-stamp guard and
    http.query_timeout's deadline, on by default, are turned off by 0 alone: `max_ahead =`
    (a template's unset variable) is refused at start, by --check-config and by a reload, which
    keeps the running bound. main took it as 0 and stored a reading two days ahead."""

    CONFIG = "[model]\nenabled = false\n"

    def ahead(self, days):
        """POSTs one reading stamped days after this host's clock; returns the status."""
        ts = int(time.time() * 1000) + days * 86400000
        return self.d.post_json([{"device": "eg-1", "ts": ts, "values": {"v": 1}}]).status

    def test_empty_max_ahead_refused_zero_turns_it_off(self):
        d = self.d
        self.assertEqual(self.ahead(2), 400)
        vt.write_file(d.config, self.CONFIG + "[storage]\nmax_ahead =\n")
        test_ops.hup(d, re.escape("reload rejected, the running configuration is kept: ") + ".*"
                     + re.escape(":4: storage.max_ahead: an empty value would turn it off: leave "
                                 "the line out for the default 1d, or write 0 to turn it off on "
                                 "purpose"))
        self.assertEqual(self.ahead(2), 400)  # the running bound, a day, kept
        vt.write_file(d.config, self.CONFIG + "[storage]\nmax_ahead = 0\n")
        test_ops.hup(d, "configuration reloaded; applied: storage.max_ahead")
        self.assertEqual(self.ahead(2), 200)  # 0: turned off on purpose, stored

    def test_empty_values_at_check_config(self):
        tmp = vt.mkdtemp()
        for section, key, default in (("storage", "max_ahead", "1d"),
                                      ("http", "query_timeout", "30s")):
            path = vt.write_file(os.path.join(tmp, "e.conf"), "[daemon]\ndata_dir = %s\n[%s]\n"
                                 "%s =\n" % (os.path.join(tmp, "data"), section, key))
            rc, _, err = run("--check-config", "--config", path)
            self.assertNotEqual(rc, 0, err)
            self.assertIn("e.conf:4: %s.%s: an empty value would turn it off: leave the line "
                          "out for the default %s, or write 0 to turn it off on purpose"
                          % (section, key, default), err)
        for key in ("retention", "snapshot_every"):  # empty is their default, off: taken
            path = vt.write_file(os.path.join(tmp, "e.conf"), "[daemon]\ndata_dir = %s\n"
                                 "[storage]\n%s =\n" % (os.path.join(tmp, "data"), key))
            self.assertEqual(run("--check-config", "--config", path)[0], 0, key)


# ---- the documentation against daemon/config.c (session 30, task docaudit) -------------------

CONFIG_C = os.path.join(vt.REPO, "daemon", "config.c")
SHIPPED = os.path.join(vt.REPO, "etc", "vigild.conf")
MANPAGE = os.path.join(vt.REPO, "docs", "vigild.8")
# The configuration file's syntax and settings (in vigild(8) until session 52).
CONFPAGE = os.path.join(vt.REPO, "docs", "vigild.conf.5")
README = os.path.join(vt.REPO, "README.md")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def code_settings():
    """{"section.key": field} from config.c's settings[] table, in its order. Comments are
    dropped and whitespace is free, so a reformatted entry (clang-format wrapping one over two
    lines) still counts; an S( entry the pattern cannot read fails loudly, not silently."""
    src = re.sub(r"/\*.*?\*/|//[^\n]*", "", read(CONFIG_C), flags=re.S)
    table = re.split(r"settings\[\]\s*=\s*\{", src, maxsplit=1)[1]
    table = re.split(r"\n\s*\}\s*;", table, maxsplit=1)[0]
    found = re.findall(r'\bS\(\s*"(\w+)"\s*,\s*"(\w+)"\s*,\s*K_\w+\s*,\s*(\w+)\s*,', table)
    entries = len(re.findall(r"\bS\(", table))
    if len(found) != entries:
        raise AssertionError("config.c settings[]: %d S( entries, %d read (the table's form "
                             "changed?)" % (entries, len(found)))
    return {"%s.%s" % (s, k): f for s, k, f in found}


def c_number(expr):
    """A bound as config.c's table writes it ("100000", "1LL << 30", "36500LL * 86400000")."""
    m = re.fullmatch(r"(\d+)(?:LL)?(?:\s*(<<|\*)\s*(\d+)(?:LL)?)?", expr.strip())
    if m is None:
        raise AssertionError("config.c settings[]: bound %r not read (a new form?)" % expr)
    a, op, b = int(m.group(1)), m.group(2), m.group(3)
    return a if op is None else a << int(b) if op == "<<" else a * int(b)


def code_bounds():
    """{"section.key": (kind, min, max)} from config.c's settings[] table."""
    src = re.sub(r"/\*.*?\*/|//[^\n]*", "", read(CONFIG_C), flags=re.S)
    table = re.split(r"settings\[\]\s*=\s*\{", src, maxsplit=1)[1]
    table = re.split(r"\n\s*\}\s*;", table, maxsplit=1)[0]
    found = re.findall(r'\bS\(\s*"(\w+)"\s*,\s*"(\w+)"\s*,\s*(K_\w+)\s*,\s*\w+\s*,'
                       r'\s*([^,]+?)\s*,\s*([^,]+?)\s*\)\s*,', table)
    if len(found) != len(re.findall(r"\bS\(", table)):
        raise AssertionError("config.c settings[]: an S( entry not read (the table's form changed?)")
    return {"%s.%s" % (s, k): (kind, c_number(lo), c_number(hi)) for s, k, kind, lo, hi in found}


def duration_words(ms):
    """ms as the documents write a duration bound: 1ms, 1s, 1d, 36500d."""
    for unit, n in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000)):
        if ms % n == 0:
            return "%d%s" % (ms // n, unit)
    return "%dms" % ms


# The defaults themselves are not read from the C source: tests/test_daemon.c's
# test_defaults_match_shipped_file (ctest unit_daemon) loads etc/vigild.conf over
# config_default() with the real code and compares the whole config_t, so a default changed in
# config.c (or in api/, model/ where it copies theirs) without the file fails there (planted in
# review: config.c's readers 4 -> 8 failed unit_daemon). Here the file is held to the documents.


def shipped_settings():
    """{"section.key": value} of etc/vigild.conf, in file order."""
    out, section = {}, None
    for line in read(SHIPPED).splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            section = m.group(1)
            continue
        k, v = (x.strip() for x in line.split("=", 1))
        out["%s.%s" % (section, k)] = v
    return out


def shipped_comments():
    """{"section.key": the comment lines above it in etc/vigild.conf, joined by blanks}."""
    out, section, comment = {}, None, []
    for line in read(SHIPPED).splitlines():
        line = line.strip()
        if line.startswith("#"):
            comment.append(line[1:].strip())
        elif re.fullmatch(r"\[(\w+)\]", line):
            section, comment = line[1:-1], []
        elif "=" in line:
            out["%s.%s" % (section, line.split("=", 1)[0].strip())] = " ".join(comment)
            comment = []
    return out


def readme_section(text, heading):
    start = text.index("\n" + heading + "\n")
    m = re.search(r"\n## ", text[start + 1:])
    return text[start:start + 1 + m.start()] if m else text[start:]


def size_words(s):
    """A default as README writes it ("32 MiB", "1,000", "`full`", "none") as the file's
    value, or None when it is not one."""
    s = s.strip().strip("`")
    if s in ("none", "none (no authentication)", "none: plain HTTP"):
        return ""
    m = re.fullmatch(r"([\d,]+)(?: (KiB|MiB))?", s)
    if m:
        n = int(m.group(1).replace(",", ""))
        return str(n * {None: 1, "KiB": 1024, "MiB": 1 << 20}[m.group(2)])
    return s


class DocumentedSettings(unittest.TestCase):
    """Every setting daemon/config.c accepts is in etc/vigild.conf (whose values are
    config_default()'s: unit_daemon), and every one in the file is in vigild.conf(5)'s list and
    README's Configuration section with that default. Drifts caught: a key added to (or renamed
    in) config.c but not to the file or the docs; a default changed in one document only (in
    the code only: unit_daemon); a key dropped from the code but still documented."""

    def test_code_and_shipped_file_agree(self):
        """config.c's keys are exactly etc/vigild.conf's (its values are config_default()'s:
        unit_daemon's test_defaults_match_shipped_file)."""
        code, shipped = code_settings(), shipped_settings()
        self.assertGreater(len(code), 50)
        self.assertEqual(sorted(set(code) - set(shipped)), [], "accepted, not in etc/vigild.conf")
        self.assertEqual(sorted(set(shipped) - set(code)), [], "in etc/vigild.conf, not accepted")

    def test_every_setting_accepted(self):
        """--check-config accepts a file setting every key to its shipped default (the file
        rewritten with data_dir in a temp dir), so the shipped file is not only comments."""
        tmp = vt.mkdtemp()
        lines = []
        section = None
        for key, val in shipped_settings().items():
            sec, k = key.split(".")
            if sec != section:
                lines.append("[%s]" % sec)
                section = sec
            if key == "daemon.data_dir":
                val = os.path.join(tmp, "data")
            lines.append("%s = %s" % (k, val))
        path = vt.write_file(os.path.join(tmp, "all.conf"), "\n".join(lines) + "\n")
        rc, out, err = run("--check-config", "--config", path)
        self.assertEqual(rc, 0, err)
        # And one key more than the file lists is refused (so acceptance means something).
        vt.write_file(path, "\n".join(lines) + "\nno_such_key = 1\n")
        rc, out, err = run("--check-config", "--config", path)
        self.assertNotEqual(rc, 0, err)

    def test_manpage_lists_every_setting(self):
        man = read(CONFPAGE)
        block = man.split("\n.SH SETTINGS\n", 1)
        self.assertEqual(len(block), 2, "vigild.conf(5) has no SETTINGS list")
        block = block[1].split(".nf\n", 1)[1].split("\n.fi", 1)[0]
        listed, section = {}, None
        for line in block.splitlines():
            line = line.replace("\\-", "-").replace("\\&", "").strip()
            if line.startswith("."):
                continue  # a request (.ft)
            m = re.fullmatch(r"\[(\w+)\]", line)
            if m:
                section = m.group(1)
            elif line:
                k, v = (x.strip() for x in line.split("=", 1))
                listed["%s.%s" % (section, k)] = v
        self.assertEqual(listed, shipped_settings())
        m = re.search(r"The file has sections\n(.*?)\.\n", man, re.S)
        sections = set(re.findall(r"\[(\w+)\]", m.group(1)))
        self.assertEqual(sections, {k.split(".")[0] for k in shipped_settings()})

    def test_shipped_file_gives_every_bound(self):
        """Each numeric setting's comment in etc/vigild.conf says its bounds as config.c's
        table has them, in the numbers its error message uses ("0 to 19", "1024 to 1073741824";
        a duration "1s to 36500d"). Drift caught: bounds changed in the code and not in the
        file, and a setting whose bounds the file did not say at all (session 50: 44 of 52)."""
        comments, wrong = shipped_comments(), {}
        for key, (kind, lo, hi) in code_bounds().items():
            if kind in ("K_INT", "K_SIZE", "K_AUTO_INT", "K_UNIT"):
                want = "%d to %d" % (lo, hi)
            elif kind in ("K_DURATION", "K_TIMEOUT"):
                want = "%s to %s" % (duration_words(lo), duration_words(hi))
            else:
                continue  # words, strings and addresses: no bounds
            if not re.search(r"(?<![\w.,])%s(?!\w|[.,]\d)" % re.escape(want), comments[key]):
                wrong[key] = want
        self.assertEqual(wrong, {}, "etc/vigild.conf does not say these bounds")

    def test_documents_name_only_settings(self):
        """Every SECTION.KEY of a settings section that README, vigild(8), vigild.conf(5),
        vigild.conf or a docs/ page names is one config.c accepts (a file name as pipeline.c,
        Python's http.client aside). Drift caught: a renamed or dropped setting still named, and one
        never there (session 50: `model.layers` in README and docs/reliability.md,
        `model.save_every` in docs/reliability.md)."""
        keys, sections = set(code_settings()), {k.split(".")[0] for k in code_settings()}
        paths = [README, SHIPPED, MANPAGE, CONFPAGE] + sorted(
            os.path.join(vt.REPO, "docs", f) for f in os.listdir(os.path.join(vt.REPO, "docs"))
            if f.endswith((".md", ".1")))
        unknown = []
        for path in paths:
            text = read(path).replace("\\-", "-").replace("\\&", "")
            # The rollback's 409 said this until session 50 (api/model_routes.c), as
            # docs/reliability.md's record of session 47 quotes it; the layers are no setting.
            text = text.replace("the model.hidden and model.layers it was made", "")
            for m in re.finditer(r"(?<![\w./-])(%s)\.([a-z0-9_]+)(?![\w(/-])" % "|".join(sections),
                                 text):
                name = m.group(0)
                if name not in keys and m.group(2) not in ("c", "h") and name != "http.client":
                    unknown.append("%s:%d: %s" % (os.path.relpath(path, vt.REPO),
                                                  text.count("\n", 0, m.start()) + 1, name))
        self.assertEqual(unknown, [], "not a setting")

    def test_empty_values_documented(self):
        """The settings an empty value is accepted for (--check-config on "key =" under its
        section, each alone) are exactly those README's Configuration and vigild.conf(5) name as
        the exceptions to "An empty value is refused". Drift caught: storage.max_ahead and
        http.query_timeout took an empty value as 0 (off), as every duration, and neither
        document said so (session 50); since session 51 both refuse it (EmptyGuard)."""
        tmp = vt.mkdtemp()
        accepted = set()
        for key in code_settings():
            sec, k = key.split(".")
            text = "[daemon]\ndata_dir = %s\n" % os.path.join(tmp, "data")
            if sec != "daemon":
                text += "[%s]\n" % sec
            if key != "daemon.data_dir":
                text += "%s =\n" % k
            else:
                text = "[daemon]\ndata_dir =\n"
            path = vt.write_file(os.path.join(tmp, "empty.conf"), text)
            rc, out, err = run("--check-config", "--config", path)
            if rc == 0:
                accepted.add(key)
        self.assertIn("http.auth_file", accepted)  # so the check means something
        self.assertNotIn("daemon.data_dir", accepted)
        conf = readme_section(read(README), "## Configuration")
        m = re.search(r"An empty value is refused, except for (.*?)\.\n", conf, re.S)
        self.assertIsNotNone(m, "README's empty-value sentence not found")
        self.assertEqual(set(re.findall(r"`(\w+\.\w+)`", m.group(1))), accepted, "README")
        man = read(CONFPAGE)
        m = re.search(r"An empty value is an\s+error, except for\n(.*?)\.\n\.B ", man, re.S)
        self.assertIsNotNone(m, "vigild.conf(5)'s empty-value sentence not found")
        self.assertEqual(set(re.findall(r"\b(\w+\.\w+)\b", m.group(1))), accepted,
                         "vigild.conf(5)")

    def test_boolean_words_documented(self):
        """The words a true-or-false setting takes (http.metrics_auth, --check-config), of
        those an operator may try, are exactly README's (`true`/`false` and the ones after
        them). Drift caught: yes/no, on/off and 1/0 were taken and not documented (session
        50)."""
        tmp = vt.mkdtemp()
        tried = ("true", "false", "yes", "no", "on", "off", "1", "0", "y", "n", "t", "f",
                 "enable", "disable", "enabled", "disabled", "2", "-1")
        accepted = set()
        for word in tried:
            path = vt.write_file(os.path.join(tmp, "b.conf"),
                                 "[daemon]\ndata_dir = %s\n[http]\nmetrics_auth = %s\n"
                                 % (os.path.join(tmp, "data"), word.upper()))
            rc, out, err = run("--check-config", "--config", path)
            if rc == 0:
                accepted.add(word)
        conf = readme_section(read(README), "## Configuration")
        m = re.search(r"Words take any case:\s+`true`/`false`( \(also [^)]*\))?", conf)
        self.assertIsNotNone(m, "README's words of a true-or-false setting not found")
        documented = {"true", "false"} | set(re.findall(r"`(\w+)`", m.group(1) or ""))
        self.assertIn("false", accepted)  # so the check means something
        self.assertEqual(accepted, documented, "README")

    def test_readme_gives_every_default(self):
        conf = readme_section(read(README), "## Configuration")
        found = {}
        for key, val in re.findall(r"^\| `--[^|]*\| `(\w+\.\w+)` \| ([^|]+?) \|$", conf, re.M):
            found[key] = size_words(val)
        # "`key` (DEFAULT..." and "`key1` and `key2` (DEFAULT...": the default is the first
        # token of the parenthesis (a `word`, a number with its KiB/MiB, none, true or false),
        # whatever explanation follows it; a parenthesis opening otherwise names no default.
        for keys, val in re.findall(
                r"((?:`\w+\.\w+`(?:\s+and\s+)?)+)\s+\(\s*"
                r"(`[^`]*`|\d[\d,]*(?<!,)(?: [KM]iB)?|none|true|false)(?=[\s:;,)])",
                conf):
            for key in re.findall(r"`(\w+\.\w+)`", keys):
                found.setdefault(key, size_words(val))
        shipped = shipped_settings()
        self.assertEqual(sorted(set(shipped) - set(found)), [], "not in README's Configuration")
        wrong = {k: (found[k], v) for k, v in shipped.items() if found[k] != v}
        self.assertEqual(wrong, {}, "README default != etc/vigild.conf's")


def live_settings():
    """config.c's live_settings[]: the settings a reload applies."""
    src = re.sub(r"/\*.*?\*/|//[^\n]*", "", read(CONFIG_C), flags=re.S)
    parts = re.split(r"live_settings\[\]\s*=\s*\{", src, maxsplit=1)
    if len(parts) != 2:
        raise AssertionError("%s has no live_settings[] = {...} (renamed or moved?): update "
                             "live_settings() in test_config.py" % CONFIG_C)
    table = parts[1].split("};", 1)[0]
    return set(re.findall(r'"(\w+\.\w+)"', table))


class DocumentedReload(unittest.TestCase):
    """README's "SIGHUP reloads ... Applied at once:" list and vigild(8)'s SIGHUP entry name
    exactly the settings of config.c's live_settings[] (what a reload applies; test_ops.py
    TestReload runs a reload). Drift caught: a setting made live (or no longer live) in the code
    and not in a document, or named in one document only."""

    def test_reload_lists_equal_live_settings(self):
        live = live_settings()
        self.assertGreater(len(live), 10)
        conf = readme_section(read(README), "## Configuration")
        m = re.search(r"SIGHUP reloads.*?Applied at once:(.*?)Every\s+other\s+setting\s+needs"
                      r"\s+a\s+restart", conf, re.S)
        self.assertIsNotNone(m, "README's SIGHUP paragraph not found")
        self.assertEqual(set(re.findall(r"`(\w+\.\w+)`", m.group(1))), live, "README")
        man = read(MANPAGE)
        m = re.search(r"\.B SIGHUP\n.*?Applied at once:(.*?)Every\s+other\s+setting\s+needs"
                      r"\s+a\s+restart", man, re.S)
        self.assertIsNotNone(m, "vigild(8)'s SIGHUP entry not found")
        named = set(re.findall(r"^\.BR? (\w+\.\w+)", m.group(1), re.M))
        self.assertEqual(named, live, "vigild(8)")


if __name__ == "__main__":
    vt.main()

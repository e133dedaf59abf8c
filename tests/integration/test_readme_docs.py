#!/usr/bin/python3
"""vigild integration: the documentation against the code (moved from test_readme.py; CTest
it_readme_docs, which `ctest -R it_readme` runs with it_readme).

"README" below is README.md with the reference it links (docs/writing.md, docs/anomalies.md,
docs/operator.md, docs/http-api.md: README's "Using it" until session 53; operator.md split from
anomalies.md in session 67), read as one text by read_docs().

DocumentedApi: every route vigild answers is in README and docs/vigild.8, every /metrics family
in README, the device and status keys are named, error samples are as vigild answers them.
Dependencies: README's dependency table names exactly the packages tools/install-deps
installs. DocumentedFields: the fields the code writes are named in README (FIELD_SOURCES).
CSourceScan: the C scan those use finds definitions, not prototypes. SourceFiles:
docs/architecture.md's "Source files" names every C source. DocContents: the "Contents" of
docs/reliability.md, docs/detection.md and the three reference documents list every section
once, each link resolving.

Python 3 standard library.
"""

import json
import math
import os
import re
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from test_readme import (  # noqa: E402
    read_docs, README, DOC_PATHS, wait_for)


# ---- routes and metric names against the code (session 30, task docaudit) -------------------

MANPAGE = os.path.join(vt.REPO, "docs", "vigild.8")
# vigil_* names in README that are not /metrics families: InfluxQL measurements ("The InfluxDB
# query endpoint"). (The Debian package's file name, vigil_0.1.0_amd64.deb, is not read as a
# name: names start with a letter, so a version bump does not touch this test.)
NOT_FAMILIES = {"vigil_anomalies", "vigil_predictions", "vigil_scores"}


def readme_routes(text):
    """{path: (methods but OPTIONS, parameters or None for "any", route label)} from README's
    route table
    (the one whose header is `| route | methods | parameters |`)."""
    start = text.index("\n| route | methods | parameters |")
    out = {}
    for line in text[start + 1:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        path, methods, params, label = (c.strip() for c in line.strip("|").split("|"))
        params = params.split("(")[0].strip()
        out[path.strip("`")] = (
            tuple(re.findall(r"`(\w+)`", methods)),
            None if params.startswith("any") else
            () if params == "none" else tuple(re.findall(r"`(\w+)`", params)),
            label.strip("`"))
    return out


def manpage_routes():
    with open(MANPAGE, encoding="utf-8") as f:
        man = f.read()
    block = man.split(".SS Routes", 1)[1].split(".nf\n", 1)[1].split("\n.fi", 1)[0]
    out = {}
    for line in block.splitlines():
        if line.startswith("."):
            continue
        methods, path = line.replace("\\-", "-").split()
        out[path] = tuple(methods.split(","))
    return out


class DocumentedApi(vt.DaemonTestCase):
    """README's route table and vigild(8)'s route list are the routes vigild serves, with their
    methods and query parameters; README's family table is every family /metrics exports, and
    every vigil_* name README, vigild(8) and docs/architecture.md mention is one of them (the
    shipped rules and dashboard: test_dashboards.py's test_names_are_exported). Drifts caught:
    a route added to api/server.c (a new `route` label in /metrics) or renamed, a method or a
    parameter added or dropped (the Allow header; the 400 listing what a route takes), a family
    added, renamed or dropped, a renamed metric still quoted in the text."""

    # Every optional family on: retention and scheduled snapshots set, the stream socket on, a
    # device with a limit and readings (its per-device series).
    CONFIG = ("[storage]\nretention = 3650d\nsnapshot_every = 1h\n"
              "[model]\nwarmup = 20\nhidden = 4\nretrain_every = 0\n")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = cls.d.curl("PUT", "/v1/devices/doc-a", "-H", "Content-Type: application/json",
                       "--data-binary", "@-", stdin='{"limits":{"x":{"max":50}}}')
        if r.status not in (200, 201):
            raise AssertionError("PUT doc-a: %r" % r)
        now = vt.now_ms() - 100_000
        r = cls.d.post_json([{"device": "doc-a", "ts": now + 1000 * k,
                              "values": {"x": math.sin(0.3 * k)}} for k in range(40)])
        if r.status != 200:
            raise AssertionError("POST readings: %r" % r)

    def test_routes(self):
        routes = readme_routes(read_docs())
        self.assertGreater(len(routes), 20)
        metrics = self.d.metrics()
        labels = set(re.findall(r'^vigil_http_request_seconds_total\{route="(\w+)"\}', metrics,
                                re.M)) - {"not_found"}
        self.assertEqual(sorted(labels - {v[2] for v in routes.values()}), [],
                         "routes vigild serves that README's route table lacks")
        self.assertEqual(sorted({v[2] for v in routes.values()} - labels), [],
                         "README's route labels vigild does not have")
        self.assertEqual(manpage_routes(), {p: v[0] for p, v in routes.items()},
                         "vigild(8)'s route list != README's route table")
        for path, (methods, params, _) in routes.items():
            url = path.replace("{id}", "doc-a")
            with self.subTest(route=path):
                r = self.d.curl("OPTIONS", url)
                self.assertEqual(r.status, 204, r)
                allow = [m.strip() for m in r.headers.get("allow", "").split(",")]
                want = list(methods) + ["OPTIONS"]
                self.assertEqual(sorted(allow), sorted(want), "Allow of %s" % path)
                # A parameter no route takes: a /v1 route answers 400 listing those it takes.
                method = methods[0]
                r = self.d.curl(method, url + "?zz_undocumented=1")
                body = r.body.decode(errors="replace")
                m = re.search(r"this endpoint takes ([^)]*)\)", body)
                if params is None:
                    self.assertIsNone(m, "%s %s: %s" % (method, url, body))
                    continue
                self.assertEqual(r.status, 400, r)
                self.assertIsNotNone(m, body)
                took = () if m.group(1) == "no parameters" else tuple(m.group(1).split(", "))
                self.assertEqual(sorted(took), sorted(params), "parameters of %s" % path)

    def test_metric_families(self):
        text = self.d.metrics()
        families = set(re.findall(r"^# TYPE ((?:vigil|process)_\w+) ", text, re.M))
        readme = read_docs()
        start = readme.index("\n| family | type | labels |")
        table = {}
        for line in readme[start + 1:].splitlines()[2:]:
            if not line.startswith("|"):
                break
            name, typ, _ = (c.strip() for c in line.strip("|").split("|"))
            table[name.strip("`")] = typ
        types = dict(re.findall(r"^# TYPE ((?:vigil|process)_\w+) (\w+)", text, re.M))
        self.assertEqual(sorted(families - set(table)), [], "exported, not in README's table")
        self.assertEqual(sorted(set(table) - families), [], "in README's table, not exported")
        self.assertEqual({k: types[k] for k in table}, table, "types")
        series = set(families)
        for f in families:
            if types[f] == "histogram":
                series |= {f + "_bucket", f + "_sum", f + "_count"}
        for path in DOC_PATHS + (MANPAGE, os.path.join(vt.REPO, "docs", "vigild.conf.5"),
                                 os.path.join(vt.REPO, "docs", "architecture.md")):
            with open(path, encoding="utf-8") as f:
                named = set(re.findall(r"\bvigil_[a-z][a-z0-9_]*", f.read().replace("\\_", "_")))
            with self.subTest(doc=os.path.basename(path)):
                self.assertEqual(sorted(named - series - NOT_FAMILIES), [],
                                 "vigil_* names that are not /metrics families")

    def test_device_and_status_keys_named(self):
        """Every key of a device object (doc-a: attributes, readings) is in README's "A device
        object has" sentence, and every key of its status (scored: warm-up 20, 40 readings) in
        README's "The status has" paragraph. Drift caught: a key added to either answer (also
        one the source scan of DocumentedFields cannot see, as the device object's, built in
        daemon/backend.c and api/handlers.c) and not documented."""
        text = read_docs()
        m = re.search(r"A device object has (.*?)\(epoch ms", text, re.S)
        self.assertIsNotNone(m, "README's device object sentence not found")
        dev = self.d.curl("GET", "/v1/devices/doc-a")
        self.assertEqual(dev.status, 200, dev)
        self.assertEqual(sorted(set(dev.json()) - set(re.findall(r"`(\w+)`", m.group(1)))), [],
                         "device object keys README's sentence does not name")
        named = readme_names(field_part(text, "the status"))
        st = wait_for("doc-a's status with a score",
                      lambda: (lambda r: r.json() if r.status == 200 and "score" in r.json()
                               else None)(self.d.curl("GET", "/v1/devices/doc-a/status")))
        keys = set(st) | {"model." + k for k in st["model"]}
        self.assertEqual(sorted(k for k in keys if k.split(".")[-1] not in named), [],
                         "status keys README's status paragraph does not name")

    # README's JSON error samples ({"error":"..."}), each with a request that must get exactly
    # that message from vigild: (method, path, body; body None: none). Timestamps and the
    # retention's value are the request's and this vigild's, compared as placeholders.
    ERRORS = {
        "values.temp: not a number":
            ("POST", "/v1/readings", '[{"device":"doc-e","ts":1732780800123,"values":{"temp":"x"}}]'),
        "partial write: unable to parse 'bad line': invalid field format (line 2); dropped=1":
            ("POST", "/write?db=plant&precision=ms", "pump,device=doc-e temp=1 1732780800123\nbad line"),
        "unable to parse 'm a=': missing field value (line 1)":
            ("POST", "/write?db=plant", "m a="),
        "retention policy not found: weekly":
            ("POST", "/write?db=plant&rp=weekly", "pump,device=doc-e temp=1"),
        "invalid consistency level":
            ("POST", "/write?db=plant&consistency=xx", "pump,device=doc-e temp=1"),
        "error parsing query: found 1x, expected identifier at line 1, char 28":
            ("GET", "/query?q=SHOW%20RETENTION%20POLICIES%20ON%201x", None),
        "vigild does not support the function median":
            ("GET", "/query?db=plant&q=SELECT%20median(%22temp%22)%20FROM%20%22doc-a%22", None),
        "point beyond retention policy: ts 2026-11-26T02:44:58.000Z is older than the horizon "
        "2026-11-28T02:44:58.805Z (storage.retention = 1d); not stored":
            ("POST", "/v1/readings", None),  # a point older than the retention: made below
    }

    @staticmethod
    def error_form(msg):
        msg = re.sub(r"\s+", " ", msg)
        msg = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "TS", msg)
        return re.sub(r"storage\.retention = \w+", "storage.retention = R", msg)

    def test_error_samples(self):
        """Every {"error":"..."} README shows (but those with "..." in them) is, exactly, what
        vigild answers to the request ERRORS gives it (timestamps and the retention compared as
        placeholders). Drift caught: a message reworded in the code or in README, and a new
        error sample without its request here."""
        text = read_docs()
        samples = [re.sub(r"\s+", " ", m) for m in re.findall(r'"error": *"([^"]*)"', text)]
        samples = [m for m in samples if "..." not in m]
        self.assertGreaterEqual(len(samples), 7, samples)
        self.assertEqual(sorted(set(samples) - set(self.ERRORS)), [],
                         "README error samples with no request in ERRORS")
        for msg in samples:
            method, path, body = self.ERRORS[msg]
            if msg.startswith("point beyond retention"):
                body = json.dumps([{"device": "doc-e", "ts": vt.now_ms() - 4000 * 86400000,
                                    "values": {"temp": 1}}])
            with self.subTest(error=msg):
                args = ("--data-binary", "@-") if body is not None else ()
                r = self.d.curl(method, path, *args, stdin=body)
                doc = r.json()
                if "errors" in doc:
                    got = doc["errors"][0]["error"]
                elif "results" in doc:
                    got = doc["results"][0]["error"]
                else:
                    got = doc.get("error")
                self.assertEqual(self.error_form(got or ""), self.error_form(msg), r)


class Dependencies(unittest.TestCase):
    """README's dependency table names exactly the Debian packages tools/install-deps installs
    (a package added to one and not the other fails: every dependency has its reason written)."""

    def test_table_matches_install_deps(self):
        text = read_docs()
        m = re.search(r"^## Dependencies.*?\n(.*?)(?=^## )", text, re.S | re.M)
        self.assertIsNotNone(m, "README has no Dependencies section")
        documented = set()
        for line in m.group(1).splitlines():
            cells = line.split("|")
            if len(cells) < 3 or cells[1].strip() in ("package", "") or set(cells[1]) <= set("-| "):
                continue
            for name in re.split(r"[,\s]+", cells[1]):
                name = re.sub(r"\(.*", "", name).strip()
                if re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", name):
                    documented.add(name)
        with open(os.path.join(vt.REPO, "tools", "install-deps")) as f:
            script = f.read()
        pm = re.search(r'^PKGS="(.*?)"', script, re.S | re.M)
        self.assertIsNotNone(pm, "tools/install-deps has no PKGS list")
        installed = set(pm.group(1).replace("\\", " ").split())
        # The test-only packages it installs when their command is missing (nodejs, npm).
        nm = re.search(r'^NODE_PKGS="(.*?)"', script, re.M)
        self.assertIsNotNone(nm, "tools/install-deps has no NODE_PKGS list")
        installed |= set(nm.group(1).split())
        self.assertGreater(len(installed), 10)
        self.assertEqual(sorted(installed - documented), [],
                         "installed by tools/install-deps but not in README's table")
        self.assertEqual(sorted(documented - installed), [],
                         "in README's table but not installed by tools/install-deps")


# ---- the fields the code writes, named in README (no daemon) ------------------------------

def c_definition(src, name):
    """The text of the definition of C function name in src, from its first line (at column 0)
    to its closing brace at column 0; None if src defines no such function. A prototype (a
    forward declaration) or a comment naming the function is not its definition."""
    m = re.search(r"^[A-Za-z_][^\n;{}()]*\b%s\([^;{}]*\)\s*\{.*?\n\}\n" % re.escape(name), src,
                  re.S | re.M)
    return m.group(0) if m else None


def c_function(path, name):
    """The text of C function name in path (see c_definition). When path does not define it (a
    file split or renamed, the function renamed), the failure says so, and where the function is
    defined now if a source of the five modules defines it."""
    full = os.path.join(vt.REPO, path)
    src = ""
    if os.path.exists(full):
        with open(full, encoding="utf-8") as f:
            src = f.read()
    text = c_definition(src, name)
    if text is not None:
        return text
    now = []
    for d in ("common", "storage", "model", "api", "daemon"):
        for n in sorted(os.listdir(os.path.join(vt.REPO, d))):
            if n.endswith(".c"):
                with open(os.path.join(vt.REPO, d, n), encoding="utf-8") as f:
                    if c_definition(f.read(), name) is not None:
                        now.append(d + "/" + n)
    raise AssertionError("function %s not found (%s %s); %s: update FIELD_SOURCES in "
                         "test_readme_docs.py" % (name, path, "does not define it" if src else
                                                  "does not exist", "defined in " + ", ".join(now)
                                                  if now else "no source defines it (renamed?)"))


def readme_names(text):
    """Every name README gives as `name`, `"name"` or "name" (a JSON key or value)."""
    return (set(re.findall(r'`"?([a-z_]+)"?`', text)) | set(re.findall(r'"([a-z_]+)"', text)))


def readme_part(text, start, end):
    """README from the line starting with start to the next line starting with end."""
    i = text.index("\n" + start) + 1
    return text[i:text.index("\n" + end, i)]


# The JSON the daemon writes for each answer or message, by the C function that writes it, and
# the part of README that must name every key (and string value) it writes.
FIELD_SOURCES = {
    "the status": (("daemon/pipeline_query.c", "pipeline_status"),),
    "the anomaly events and messages": (("daemon/pipeline_query.c", "pipeline__event_json"),
                                        ("daemon/pipeline_query.c", "ranked")),
    "the state messages": (("daemon/pipeline_query.c", "pipeline__state_json"),),
    "the limit states and messages": (("daemon/pipeline_limits.c", "crossing_json"),
                                      ("daemon/pipeline_limits.c", "publish"),
                                      ("daemon/pipeline_limits.c", "pipeline__limits_status")),
    "the maintenance answers and messages": (("daemon/pipeline_maint.c", "span_json"),
                                             ("daemon/pipeline_maint.c", "maint_json"),
                                             ("daemon/pipeline_maint.c", "change_json")),
}


def field_part(text, what):
    if what == "the status":
        return readme_part(text, "The status has ", "An anomaly event")
    # docs/anomalies.md's two sections and docs/operator.md (split from it in session 67:
    # maintenance, limits), up to docs/http-api.md's `# ` title
    return readme_part(text, "## Anomalies, predictions", "# vigild's HTTP API")


class DocumentedFields(unittest.TestCase):
    """Every key (and string literal) the functions that build the status, the anomaly events,
    the state, limit and maintenance messages and answers write is named in README where they
    are described: the status's in its "The status has" paragraph, the others in "Anomalies,
    predictions, forecasts and models" and "Events as they happen". Drift caught: a field added
    to (or renamed in) one of those functions and not documented."""

    def test_fields_named(self):
        text = read_docs()
        for what, funcs in FIELD_SOURCES.items():
            part = field_part(text, what)
            named = readme_names(part)
            for path, name in funcs:
                keys = set(re.findall(r'"([a-z_]+)"', c_function(path, name)))
                with self.subTest(what=what, function=name):
                    self.assertGreater(len(keys), 1)
                    self.assertEqual(sorted(keys - named), [],
                                     "written by %s:%s, not named in README's part on %s"
                                     % (path, name, what))


class CSourceScan(unittest.TestCase):
    """c_function, which DocumentedFields reads the C source with, finds a definition through
    harmless refactors and says what to update when it cannot (review): a prototype at the top
    and a comment naming the function at column 0 are not its definition (before, a prototype
    made the scan read the next function's keys and blame them on this one), and a function
    whose file was split or renamed is named with where it is defined now (before: a bare
    FileNotFoundError)."""

    SRC = ("static json_t *ranked(char *const *names, int nch,\n"
           "                      const struct dev *d);\n"
           "/* ranked(): see below */\n"
           "static json_t *other(void)\n{\n"
           "    return json_pack(\"{s:s}\", \"wrong\", \"x\");\n}\n\n"
           "static json_t *ranked(char *const *names, int nch,\n"
           "                      const struct dev *d)\n{\n"
           "    return json_pack(\"{s:s}\", \"right\", \"x\");\n}\n")

    def test_definition_not_prototype(self):
        text = c_definition(self.SRC, "ranked")
        self.assertIsNotNone(text)
        self.assertIn('"right"', text)
        self.assertNotIn('"wrong"', text)
        self.assertIsNone(c_definition(self.SRC, "rank"))

    def test_moved_function_named(self):
        with self.assertRaisesRegex(AssertionError, r"pipeline__state_json not found \(daemon/"
                                    r"pipeline_gone\.c does not exist\); defined in "
                                    r"daemon/pipeline_query\.c.*FIELD_SOURCES"):
            c_function("daemon/pipeline_gone.c", "pipeline__state_json")
        with self.assertRaisesRegex(AssertionError, r"no_such_fn not found \(daemon/pipeline_query"
                                    r"\.c does not define it\); no source defines it"):
            c_function("daemon/pipeline_query.c", "no_such_fn")


class SourceFiles(unittest.TestCase):
    """docs/architecture.md's "Source files" names every .c file of common/, storage/, model/,
    api/, daemon/ and tools/ (as `dir/name.c`, or `name.c` for the detector's sources), and every
    `dir/name.c` it names there exists. Drift caught: a file added, split or renamed and not
    named, or a name left for a file that is gone."""

    DIRS = ("common", "storage", "model", "api", "daemon", "tools")

    def test_architecture_names_every_source(self):
        with open(os.path.join(vt.REPO, "docs", "architecture.md"), encoding="utf-8") as f:
            arch = f.read()
        m = re.search(r"^## Source files\n(.*?)(?=^## )", arch, re.S | re.M)
        self.assertIsNotNone(m, "docs/architecture.md has no Source files section")
        named = set(re.findall(r"`([a-z0-9_/]+\.c)`", m.group(1)))
        files = set()
        for d in self.DIRS:
            files |= {d + "/" + n for n in os.listdir(os.path.join(vt.REPO, d)) if n.endswith(".c")}
        self.assertGreater(len(files), 80)
        self.assertEqual(sorted(f for f in files if f not in named
                                and not (f.startswith("model/detector") and
                                         os.path.basename(f) in named)), [],
                         "sources docs/architecture.md's Source files does not name")
        self.assertEqual(sorted(n for n in named if "/" in n and n not in files), [],
                         "named in docs/architecture.md's Source files, not in the tree")


def github_slugs(text):
    """[(level, heading text, anchor)] for the Markdown headings of text outside code fences,
    the anchors as GitHub makes them: lower case, characters other than letters, digits, '_',
    '-' and ' ' dropped, spaces made '-', a repeated anchor suffixed -1, -2, ..."""
    seen, out, fence = {}, [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"(#{1,6}) (.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(2).strip().lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.append((len(m.group(1)), m.group(2), slug if n == 0 else "%s-%d" % (slug, n)))
    return out


class DocContents(unittest.TestCase):
    """docs/reliability.md and docs/detection.md, long logs of the work, each open with a
    "Contents" section by topic: it links every other `## ` section exactly once, and each of
    its links names an anchor of the document. Drift caught: a section appended (as each task
    does) and not listed, or a heading reworded under its link."""

    def check(self, name, least=21):
        with open(os.path.join(vt.REPO, "docs", name), encoding="utf-8") as f:
            text = f.read()
        heads = github_slugs(text)
        m = re.search(r"^## Contents\n(.*?)(?=^## )", text, re.S | re.M)
        self.assertIsNotNone(m, "docs/%s has no Contents section" % name)
        links = re.findall(r"\]\(#([^)]+)\)", m.group(1))
        anchors = {s for _, _, s in heads}
        self.assertEqual([a for a in links if a not in anchors], [],
                         "links in docs/%s's Contents to no heading" % name)
        sections = [s for lvl, h, s in heads if lvl == 2 and h != "Contents"]
        self.assertGreaterEqual(len(sections), least)
        self.assertEqual([s for s in sections if links.count(s) != 1], [],
                         "sections of docs/%s not listed once in its Contents" % name)

    def test_reliability(self):
        self.check("reliability.md")

    def test_detection(self):
        self.check("detection.md")

    def test_reference(self):
        """The reference moved out of README in session 53, each with its short Contents."""
        for name, least in (("writing.md", 3), ("anomalies.md", 2), ("operator.md", 4),
                            ("http-api.md", 6)):
            with self.subTest(doc=name):
                self.check(name, least)


class DocLinks(unittest.TestCase):
    """Every Markdown link of README.md and the reference documents to a document of the
    repository (`[x](docs/writing.md#writing-readings)`, `[x](#https)`) names a file that exists
    and, with a `#`, an anchor of its headings. Drift caught: a section moved or reworded while
    README's "Using it" still links it."""

    def test_links_resolve(self):
        bad = []
        for name in ("README.md", "docs/writing.md", "docs/anomalies.md", "docs/operator.md",
                     "docs/http-api.md"):
            path = os.path.join(vt.REPO, name)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            links = re.findall(r"\]\(([^)\s]*)\)", text)
            self.assertGreater(len(links), 1, name)
            for link in links:
                if re.match(r"[a-z]+:", link):
                    continue  # https: and the like
                target, _, anchor = link.partition("#")
                target = os.path.normpath(os.path.join(os.path.dirname(path), target)) \
                    if target else path
                if not os.path.isfile(target):
                    bad.append("%s: %s: no such file" % (name, link))
                    continue
                with open(target, encoding="utf-8") as f:
                    anchors = {a for _, _, a in github_slugs(f.read())}
                if anchor and anchor not in anchors:
                    bad.append("%s: %s: no such heading" % (name, link))
        self.assertEqual(bad, [])

    def test_quoted_sections(self):
        """A reference in words, `docs/writing.md "Devices and readings"` (the file, then a
        section in quotes), names the start of a heading of that file or of a paragraph's bold
        title there (`**Planned maintenance.**`), so a reader who opens the file finds it. Drift
        caught (session 53): README and docs/http-api.md sent readers to writing.md "InfluxDB",
        a section that stayed behind when the reference moved out of README."""
        bad, seen = [], 0
        for name in ("README.md", "docs/writing.md", "docs/anomalies.md", "docs/operator.md",
                     "docs/http-api.md"):
            with open(os.path.join(vt.REPO, name), encoding="utf-8") as f:
                text = f.read()
            # A reference wrapped at any of its spaces is one too (13 of them in session 53).
            refs = re.findall(r"(?:docs/)?([\w.-]+\.md),?\s+\"([^\"]{1,100})\"", text)
            seen += len(refs)
            for doc, title in refs:
                title = " ".join(title.split())
                path = os.path.join(vt.REPO, doc if doc == "README.md" else "docs/" + doc)
                if not os.path.isfile(path):
                    bad.append("%s: %s: no such file" % (name, doc))
                    continue
                with open(path, encoding="utf-8") as f:
                    target = f.read()
                heads = [h for _, h, _ in github_slugs(target)]
                bold = [" ".join(b.split()) for b in re.findall(r"\*\*([^*]+)\*\*", target)]
                if not any(h.startswith(title) for h in heads + bold):
                    bad.append('%s: %s "%s": no such heading or bold title' % (name, doc, title))
        # 51 in session 53: far fewer means the pattern no longer finds them.
        self.assertGreaterEqual(seen, 40, "the references in words not found")
        self.assertEqual(bad, [])


if __name__ == "__main__":
    vt.main()

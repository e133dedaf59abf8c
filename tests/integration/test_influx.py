#!/usr/bin/python3
"""vigild integration: InfluxDB v1 compatibility, the database statements: /query's CREATE and
SHOW DATABASES and SHOW RETENTION POLICIES (the names kept across a restart, under concurrent
first uses, on a full disk, within their bounds, with tokens), /write?rp=, and the real `influx`
command-line client (Debian influxdb-client) writing through /write, its interactive shell's
USE (also USE db.rp) and INSERT included. influxd 1.6.7's parse errors word for word:
test_influx_errors.py; the warning while a name cannot be kept: test_influx_names.py; the line
protocol: test_influx_write.py; Grafana's queries: test_influx_grafana*.py; InfluxQL compared
with influxd 1.6.7: test_influxql*.py; what they share (show_databases, influx_shell,
own_daemon): influxpair.py."""

import http.client
import json
import os
import sqlite3
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import (CREATED, INFLUX, influx_shell, own_daemon,  # noqa: E402
                        policies, show_databases)


class Databases(vt.DaemonTestCase):
    """SHOW DATABASES lists the names CREATE DATABASE and /write?db= used, in that order (a
    daemon of its own, so the list is exactly this test's)."""

    def show(self, q="SHOW DATABASES", method="POST"):
        """influxpair.show_databases(self, q, method)."""
        return show_databases(self, q, method)

    def test_show_databases(self):
        # InfluxDB's form with no database: the series without "values".
        r = self.d.curl("POST", "/query?q=SHOW+DATABASES")
        self.assertEqual(r.body.strip(), b'{"results":[{"statement_id":0,"series":'
                                         b'[{"name":"databases","columns":["name"]}]}]}')
        for q in ('CREATE DATABASE "tele\\"graf"', "create database plant WITH DURATION 1d",
                  "CREATE DATABASE telegraf", "CREATE  DATABASE plant",
                  "CREATE DATABASE " + "x" * 65,
                  # longer than vigild lists, and than it once read (255 bytes): taken
                  "CREATE DATABASE " + "z" * 256,
                  # InfluxQL reads \n as a newline (a control character: not listed)
                  'CREATE DATABASE "new\\nline"'):
            r = self.d.curl("POST", "/query", "--data-urlencode", "q=" + q)
            self.assertEqual((r.status, r.json()), (200, CREATED), q)
        # What InfluxDB 1.6.7 cannot parse is a 400 here too, in its words (QueryParseErrors
        # has more), and keeps nothing: no name, an unterminated one, an escape InfluxQL refuses
        # (any but \\, \", \' and \n), a second word after the name.
        for q, err in (("CREATE DATABASE", "found EOF, expected identifier at line 1, char 17"),
                       ("CREATE DATABASE ;", "found ;, expected identifier at line 1, char 17"),
                       ('CREATE DATABASE "unterminated',
                        "found unterminated, expected identifier at line 1, char 16"),
                       ('CREATE DATABASE "bad\\qescape"',
                        "found \\q, expected identifier at line 1, char 22"),
                       ("CREATE DATABASE two words", "found words, expected ; at line 1, char 21")):
            msg = self.assertJsonError(self.d.curl("POST", "/query", "--data-urlencode", "q=" + q),
                                       400, "error parsing query: " + err)
            self.assertTrue(msg.startswith("error parsing query: " + err), (q, msg))
        # An empty quoted name parses; InfluxDB refuses it in a 200.
        r = self.d.curl("POST", "/query", "--data-urlencode", 'q=CREATE DATABASE ""')
        self.assertEqual((r.status, r.json()),
                         (200, {"results": [{"statement_id": 0, "error": "invalid name"}]}))
        for db in ("telegraf", "my db", "", "c\x01trl", "y" * 65):
            r = self.d.write_lp("m,device=dbs v=1 1\n", precision="s", db=db)
            self.assertEqual(r.status, 204, r)   # a name never refuses a write
        # A write refused as a whole (a bad precision, every line bad) stores nothing and so
        # uses no database, as InfluxDB's /write creates none.
        self.assertEqual(self.d.write_lp("m,device=dbs v=1 1\n", precision="d",
                                         db="refused-precision").status, 400)
        self.assertEqual(self.d.write_lp("m,device=dbs v=\n", precision="s",
                                         db="refused-lines").status, 400)
        names = ['tele"graf', "plant", "telegraf", "my db"]
        self.assertEqual(self.show(), names)
        self.assertEqual(self.show("  show   databases ; ", method="GET"), names)
        self.assertEqual(self.d.curl("POST", "/query?q=show%20databases").json(),
                         {"results": [{"statement_id": 0, "series": [{
                             "name": "databases", "columns": ["name"],
                             "values": [[n] for n in names]}]}]})
        for q in ("SHOW DATABASESX", "SHOW SHARDS", "DROP DATABASE plant",
                  "CREATE DATABASES x", "SHOW DATABASES; DROP DATABASE plant"):
            self.assertJsonError(self.d.curl("POST", "/query", "--data-urlencode", "q=" + q),
                                 400, "SHOW DATABASES")
        for q, err in (("SHOW DATABASES x", "found x, expected ; at line 1, char 16"),):
            self.assertJsonError(self.d.curl("POST", "/query", "--data-urlencode", "q=" + q),
                                 400, "error parsing query: " + err)
        self.assertEqual(self.show(), names)


class RetentionPolicies(vt.DaemonTestCase):
    """SHOW RETENTION POLICIES [ON db] answers one policy, autogen, of storage.retention's
    duration in Go's form, for the databases SHOW DATABASES lists, and InfluxDB's errors (in a
    200) for others; /write?rp=autogen writes."""

    CONFIG = "[storage]\nretention = 30d\n"

    def query(self, q, path="/query"):
        return self.d.curl("POST", path, "--data-urlencode", "q=" + q)

    def test_show_retention_policies(self):
        self.assertEqual(self.query("CREATE DATABASE plant").status, 200)
        r = self.d.curl("POST", "/write?db=tele+graf&rp=autogen&precision=s", "--data-binary",
                        "@-", stdin=b"m,device=rp-1 v=1 %d\n" % (time.time() - 60))
        self.assertEqual(r.status, 204, r)
        self.assertEqual(len(self.d.readings("rp-1")), 1)
        want = policies("720h0m0s", "24h0m0s")
        for q in ("SHOW RETENTION POLICIES ON plant", 'show retention policies on "tele graf";',
                  "  SHOW  RETENTION\tPOLICIES  ON  \"plant\" ; "):
            r = self.query(q)
            self.assertEqual((r.status, r.json()), (200, want), q)
        # Without ON: the db parameter's database (the shell's own SHOW RETENTION POLICIES).
        r = self.query("SHOW RETENTION POLICIES", "/query?db=plant")
        self.assertEqual((r.status, r.json()), (200, want))
        for q, path, err in (
                ("SHOW RETENTION POLICIES ON nosuch", "/query", "database not found: nosuch"),
                ('SHOW RETENTION POLICIES ON "Plant"', "/query", "database not found: Plant"),
                ("SHOW RETENTION POLICIES", "/query?db=nosuch", "database not found: nosuch"),
                ("SHOW RETENTION POLICIES ON " + "p" * 70, "/query",
                 "database not found: " + "p" * 70),
                ("SHOW RETENTION POLICIES", "/query", "database name required"),
                ('SHOW RETENTION POLICIES ON ""', "/query", "database name required"),
                ('SHOW RETENTION POLICIES ON "a\\nb"', "/query", "database not found: a\nb")):
            r = self.query(q, path)
            self.assertEqual((r.status, r.json()),
                             (200, {"results": [{"statement_id": 0, "error": err}]}), q)
        for q in ("SHOW RETENTION POLICIES ON", "SHOW RETENTION POLICIES ON plant x",
                  'SHOW RETENTION POLICIES ON "plant', "SHOW RETENTION POLICIES plant",
                  "SHOW RETENTION POLICIESX ON plant"):
            self.assertEqual(self.query(q).status, 400, q)


class WriteRetentionPolicy(vt.DaemonTestCase):
    """/write?rp= other than autogen (the one policy SHOW RETENTION POLICIES lists) is refused
    as influxd 1.6.7 (Debian's influxdb 1.6.7~rc0-1+b13) answered it on a database it has:
    500 {"error":"retention policy not found: NAME"}, the name percent-decoded, case kept
    (AUTOGEN is not autogen), and nothing stored, whatever the body (good lines, good and bad
    lines, string fields only, empty), also for a name of more than 255 bytes or with a NUL
    byte (500 as from influxd, not a 400). A body of bad lines only gets its parse error (400)
    first, as from influxd. No rp, an empty one and rp=autogen write."""

    def write(self, query, body):
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=30)
        try:
            c.request("POST", "/write?" + query, body=body.encode())
            resp = c.getresponse()
            return resp.status, resp.read()
        finally:
            c.close()

    def lp_counters(self):
        """/metrics' lp ingest counters: (readings taken, lines refused)."""
        text = self.d.metrics()
        return tuple(vt.metric_in(text, name + '{proto="lp"}', need=True)
                     for name in ("vigil_ingest_readings_total", "vigil_ingest_rejected_total"))

    def test_unknown_policy(self):
        taken, refused = self.lp_counters()
        for query, body, name in (
                ("db=plant&rp=foo", "m,device=wrp-1 v=1 1700000000000000000", "foo"),
                ("db=plant&rp=AUTOGEN&precision=s", "m,device=wrp-1 v=1 1", "AUTOGEN"),
                ("db=plant&rp=foo%20bar", "m,device=wrp-1 v=1 1700000000000000000", "foo bar"),
                ("rp=weekly", "m,device=wrp-1 v=1 1700000000000000000\nm,device=wrp-1 v= 2",
                 "weekly"),
                ("db=new-db&rp=foo", 'm,device=wrp-1 s="x" 1700000000000000000', "foo"),
                ("db=plant&rp=foo", "", "foo")):
            st, body = self.write(query, body)
            self.assertEqual((st, json.loads(body)),
                             (500, {"error": "retention policy not found: " + name}), query)
        st, body = self.write("db=plant&rp=foo", "m,device=wrp-1 v= 1")
        self.assertEqual((st, json.loads(body)),
                         (400, {"error": "unable to parse 'm,device=wrp-1 v= 1': missing field "
                                         "value (line 1)"}))
        # A name of more than 255 bytes or with a NUL byte: influxd's 500 too (api__arg's 400
        # made Telegraf drop the batch instead of keeping it to retry).
        st, body = self.write("db=plant&rp=" + "x" * 300, "m,device=wrp-1 v=1 1700000000000000000")
        self.assertEqual((st, json.loads(body)),
                         (500, {"error": "retention policy not found: " + "x" * 300}))
        st, body = self.write("db=plant&rp=a%00b", "m,device=wrp-1 v=1 1700000000000000000")
        self.assertEqual((st, json.loads(body)),
                         (500, {"error": "retention policy not found: (a name holding a NUL "
                                         "byte)"}))
        self.assertNoDevice("wrp-1")
        self.assertNotIn("new-db", show_databases(self))  # a refused write uses no name
        # Nothing counted either, but the 400's bad line (a refused line, as from any /write).
        self.assertEqual(self.lp_counters(), (taken, refused + 1))
        for n, query in enumerate(("db=plant&rp=autogen", "db=plant&rp=", "db=plant")):
            st, body = self.write(query + "&precision=s", "m,device=wrp-2 v=%d %d" % (n, n + 1))
            self.assertEqual((st, body), (204, b""), query)
        self.assertPoints(self.d.readings("wrp-2"),
                          [(1000, {"v": 0.0}), (2000, {"v": 1.0}), (3000, {"v": 2.0})])

    def test_consistency_level(self):
        # influxd 1.6.7's answers (session 22, 127.0.0.1:19900): a level other than any, one,
        # quorum, all (any case) or empty is a 400 once the body parsed, before the policy's
        # 500, and stores nothing, the good lines of a partial write included; a body of bad
        # lines only gets its parse error first. vigild took every one of these before.
        bad = (400, {"error": "invalid consistency level"})
        for query, body in (("db=plant&consistency=bogus", "m,device=wcl-1 v=1 1"),
                            ("db=plant&consistency=x%20", "m,device=wcl-1 v=1 1"),
                            ("db=plant&consistency=a%00ny", "m,device=wcl-1 v=1 1"),
                            ("db=plant&consistency=bogus",
                             "m,device=wcl-1 v=1 1\nm,device=wcl-1 v= 2"),
                            ("db=plant&consistency=bogus", 'm,device=wcl-1 s="x" 1'),
                            ("db=plant&consistency=bogus", ""),
                            ("db=plant&consistency=bogus&rp=foo", "m,device=wcl-1 v=1 1")):
            st, answer = self.write(query + "&precision=s", body)
            self.assertEqual((st, json.loads(answer) if answer else answer), bad, (query, body))
        st, answer = self.write("db=plant&consistency=bogus&precision=s", "m,device=wcl-1 v= 1")
        self.assertEqual((st, json.loads(answer)),
                         (400, {"error": "unable to parse 'm,device=wcl-1 v= 1': missing field "
                                         "value (line 1)"}))
        self.assertNoDevice("wcl-1")
        for n, level in enumerate(("ANY", "one", "Quorum", "all", "")):
            st, answer = self.write("db=plant&precision=s&consistency=" + level,
                                    "m,device=wcl-2 v=%d %d" % (n, n + 1))
            self.assertEqual((st, answer), (204, b""), level)
        self.assertEqual(len(self.d.readings("wcl-2")), 5)

    def test_influx_cli_insert_into(self):
        # The shell's INSERT INTO rp ... writes with rp=: influxd 1.6.7 printed the same line.
        p = subprocess.run([INFLUX, "-host", "127.0.0.1", "-port", str(self.d.http_port),
                            "-database", "plant", "-execute",
                            "INSERT INTO weekly m,device=wrp-cli v=1"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, text=True)
        self.assertIn('ERR: {"error":"retention policy not found: weekly"}', p.stdout)
        self.assertNoDevice("wrp-cli")
        p = subprocess.run([INFLUX, "-host", "127.0.0.1", "-port", str(self.d.http_port),
                            "-database", "plant", "-execute",
                            "INSERT INTO autogen m,device=wrp-cli v=1"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, text=True)
        self.assertNotIn("ERR", p.stdout)
        self.assertEqual(len(self.d.readings("wrp-cli")), 1)


class DatabasesRestart(unittest.TestCase):
    """The names CREATE DATABASE and /write?db= registered are kept in the database: after a
    restart SHOW DATABASES lists them, in the same order, and the shell's USE takes them."""

    show = show_databases

    def test_names_survive_restart(self):
        own_daemon(self, self.names_survive_restart)

    def names_survive_restart(self):
        for q in ("CREATE DATABASE plant", 'CREATE DATABASE "tele\\"graf"',
                  "CREATE DATABASE plant"):
            r = self.d.curl("POST", "/query", "--data-urlencode", "q=" + q)
            self.assertEqual((r.status, r.json()), (200, CREATED), q)
        self.assertEqual(self.d.write_lp("m,device=dr-1 v=1 1\n", precision="s",
                                         db="site a").status, 204)
        names = ["plant", 'tele"graf', "site a"]
        self.assertEqual(self.show(), names)
        self.d.stop()
        self.d.start()
        self.assertEqual(self.show(), names)
        r = self.d.curl("POST", "/query", "--data-urlencode",
                        "q=SHOW RETENTION POLICIES ON \"site a\"")
        self.assertEqual(r.json(), policies("0s", "168h0m0s"))  # retention 0: forever
        out = influx_shell(self, "USE plant", "INSERT plant,device=dr-2 v=2 1000000000")
        self.assertIn("> USE plant\nUsing database plant\n", out)
        self.assertNotIn("ERR", out)
        self.assertEqual(len(self.d.readings("dr-2")), 1)
        # A name registered after the restart goes after the kept ones.
        self.assertEqual(self.d.write_lp("m,device=dr-1 v=1 2\n", precision="s",
                                         db="later").status, 204)
        self.assertEqual(self.show(), names + ["later"])


class DatabasesRace(unittest.TestCase):
    """First uses of new names at once, from many connections, near the 32-name bound: the
    names kept are the names listed, so a restart lists exactly what was listed before it (a
    name listed once never disappears) and the table holds at most 32 names."""

    show = show_databases

    def test_concurrent_first_uses(self):
        own_daemon(self, self.concurrent_first_uses)

    def concurrent_first_uses(self):
        for i in range(29):
            r = self.d.curl("POST", "/query", "--data-urlencode", "q=CREATE DATABASE k%02d" % i)
            self.assertEqual(r.status, 200, r)
        # Connections opened first and a barrier, so the writes reach vigild together.
        n = 24
        status = [r and r[0] for r in vt.http_requests_at_once(
            self.d.http_port, [("POST", "/write?precision=s&db=new%02d" % i,
                                b"m,device=race-%d v=1 1\n" % i) for i in range(n)])]
        self.assertEqual(status, [204] * n)
        before = self.show()
        self.assertEqual(len(before), 32, before)
        self.d.stop()
        db = sqlite3.connect(self.d.db_path)
        try:
            kept = [row[0] for row in db.execute("SELECT name FROM dbnames ORDER BY seq")]
        finally:
            db.close()
        self.assertEqual(kept, before)
        self.d.start()
        self.assertEqual(self.show(), before)


class DatabasesDiskFull(unittest.TestCase):
    """A name that cannot be kept because the data volume is full is not listed: CREATE
    DATABASE answers 507 naming it, and a /write of a new name, refused as a whole, uses none;
    once space is back the same statements keep them, and a restart lists them."""

    show = show_databases

    def test_names_on_a_full_disk(self):
        self.mnt = vt.tmpfs_mount(self, 64)
        own_daemon(self, self.names_on_a_full_disk, os.path.join(self.mnt, "data"))

    def create(self, name):
        return self.d.curl("POST", "/query", "--data-urlencode", "q=CREATE DATABASE " + name)

    def names_on_a_full_disk(self):
        self.assertEqual(self.create("before").status, 200)
        filler = vt.fill_volume(self.mnt, 0)
        r = self.create("full")
        self.assertEqual((r.status, r.json()["error"].split(":")[0]),
                         (507, "keeping the database name"), r)
        r = self.d.write_lp("m,device=df-1 v=1 1\n", precision="s", db="wfull")
        self.assertEqual(r.status, 507, r)
        self.assertEqual(self.show(), ["before"])
        os.unlink(filler)
        # The store refuses for a short back-off after a full disk: retried until it takes.
        deadline = time.monotonic() + 30
        while self.create("full").status != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        r = self.d.write_lp("m,device=df-1 v=1 2\n", precision="s", db="wfull")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.show(), ["before", "full", "wfull"])
        self.d.stop()
        self.d.start()
        self.assertEqual(self.show(), ["before", "full", "wfull"])


class DatabasesBounds(vt.DaemonTestCase):
    """SHOW DATABASES keeps at most 32 names of at most 64 bytes (README): a 64-byte name is
    listed, a 65-byte one not; from the 33rd on names are not listed, and still written to."""

    show = show_databases

    def test_bounds(self):
        names = ["c" * 64, "w" * 64] + ["db%02d" % i for i in range(30)]
        for q in ("CREATE DATABASE " + "c" * 65, "CREATE DATABASE " + names[0]):
            r = self.d.curl("POST", "/query", "--data-urlencode", "q=" + q)
            self.assertEqual((r.status, r.json()), (200, CREATED), q)
        for db in ["w" * 65] + names[1:] + ["late%d" % i for i in range(5)]:
            r = self.d.write_lp("m,device=dbs-bound v=1 1\n", precision="s", db=db)
            self.assertEqual(r.status, 204, (db, r))
        self.assertEqual(self.show(), names)


class DatabasesWithTokens(vt.DaemonTestCase):
    """With tokens, /query takes a read token by GET and by POST (Grafana's two methods; the
    influx shell's USE and -execute send SHOW DATABASES by POST), but CREATE DATABASE, which
    keeps a name, needs a write token by either method (docs/http-api.md "Authentication")."""

    READ = "influx-read-token-AAAAAAAA"
    WRITE = "influx-write-token-BBBBBBB"

    @classmethod
    def setUpClass(cls):
        path = os.path.join(vt.mkdtemp(), "tokens")
        vt.write_file(path, "read %s\nwrite %s\n" % (cls.READ, cls.WRITE))
        os.chmod(path, 0o600)
        cls.EXTRA_ARGS = ("--auth-file", path)
        super().setUpClass()

    def query(self, method, token, q):
        get = ["-G"] if method == "GET" else []
        return self.d.curl(method, "/query", *get, "-u", "x:" + token, "--data-urlencode",
                           "q=" + q)

    def test_query_roles(self):
        for method in ("POST", "GET"):  # GET takes a read token, but CREATE keeps a name
            self.assertJsonError(self.query(method, self.READ, "CREATE DATABASE plant"), 403,
                                 ["'read'", "needs 'write'"])
        r = self.query("GET", self.READ, "SHOW DATABASES")
        self.assertEqual(r.json()["results"][0].get("series", [{}])[0].get("values", []), [], r)
        r = self.query("POST", self.WRITE, "CREATE DATABASE plant")
        self.assertEqual((r.status, r.json()), (200, CREATED), r)
        self.assertJsonError(self.query("POST", self.READ, "SHOW DATABASES; CREATE DATABASE x"),
                             403, ["'read'", "needs 'write'"])
        for method, token in (("GET", self.READ), ("POST", self.READ), ("POST", self.WRITE)):
            r = self.query(method, token, "SHOW DATABASES")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["results"][0]["series"][0]["values"], [["plant"]])
        self.assertJsonError(self.d.curl("GET", "/query?q=SHOW+DATABASES"), 401)
        if not os.path.exists(INFLUX):
            self.skipTest("influx CLI not installed")
        # The shell cannot send a Bearer header: its 401 names the flags it has (session 66).
        p = subprocess.run([INFLUX, "-host", "127.0.0.1", "-port", str(self.d.http_port),
                            "-execute", "SHOW DATABASES"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, text=True)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("ERR: authentication required: send 'Authorization: Bearer TOKEN', or the "
                      "token as the password (influx shell: -username any -password TOKEN; "
                      "Telegraf: password = \"TOKEN\")", p.stdout)
        for token, want in ((self.READ, "\nplant\n"), (self.WRITE, "\nplant\n")):
            p = subprocess.run([INFLUX, "-host", "127.0.0.1", "-port", str(self.d.http_port),
                                "-username", "x", "-password", token, "-execute",
                                "SHOW DATABASES"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60, text=True)
            self.assertIn(want, p.stdout)


class InfluxCli(vt.DaemonTestCase):

    def influx(self, *args, stdin=None):
        cmd = [INFLUX, "-host", "127.0.0.1", "-port", str(self.d.http_port)] + list(args)
        p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60, text=True)
        return p.returncode, p.stdout + p.stderr

    def shell(self, *lines):
        """influxpair.influx_shell(self, *lines)."""
        return influx_shell(self, *lines)

    def test_shell_use_and_insert(self):
        # USE asks SHOW DATABASES: a name nothing created or wrote to is not there (as in
        # InfluxDB); once a client wrote with db=plantdb (Telegraf does), USE takes it and
        # INSERT writes through /write.
        out = self.shell("USE plantdb")
        self.assertIn("> USE plantdb\nERR: Database plantdb doesn't exist.", out)
        self.assertIn("DB does not exist!", out)
        self.assertEqual(self.d.write_lp("m,device=cli-use v=1 1\n", precision="s",
                                         db="plantdb").status, 204)
        out = self.shell("USE plantdb", "INSERT plant,device=cli-use temp=71.5 1700000000000000000",
                         "INSERT plant,device=cli-use temp= 1700000001000000000")
        self.assertIn("> USE plantdb\nUsing database plantdb\n> INSERT plant,device=cli-use "
                      "temp=71.5 1700000000000000000\n> INSERT", out)
        self.assertIn("ERR: {\"error\":\"unable to parse 'plant,device=cli-use temp= "
                      "1700000001000000000': missing field value (line 1)\"}", out)
        self.assertNotIn("does not exist", out)
        self.assertPoints(self.d.readings("cli-use"),
                          [(1000, {"v": 1.0}), (1700000000000, {"temp": 71.5})])
        # -execute asks with chunked=true; the table lists the name.
        rc, out = self.influx("-execute", "SHOW DATABASES")
        self.assertEqual(rc, 0, out)
        self.assertIn("name: databases\nname\n----\n", out)
        self.assertIn("\nplantdb\n", out)

    def test_shell_use_db_rp(self):
        # USE db.rp asks SHOW RETENTION POLICIES ON "db": autogen, vigild's one policy, is
        # taken (INSERT then writes with rp=autogen), any other refused, as InfluxDB does.
        r = self.d.curl("POST", "/query", "--data-urlencode", "q=CREATE DATABASE rpdb")
        self.assertEqual(r.status, 200, r)
        out = self.shell("USE rpdb.autogen",
                         "INSERT plant,device=cli-rp temp=1.5 1700000000000000000",
                         "USE rpdb.weekly", "USE nosuchdb.autogen")
        self.assertIn("> USE rpdb.autogen\nUsing database rpdb\nUsing retention policy autogen\n"
                      "> INSERT plant,device=cli-rp temp=1.5 1700000000000000000\n> ", out)
        self.assertIn("> USE rpdb.weekly\nUsing database rpdb\nERR: RETENTION POLICY weekly "
                      "doesn't exist.", out)
        self.assertIn("> USE nosuchdb.autogen\nERR: Database nosuchdb doesn't exist.", out)
        self.assertPoints(self.d.readings("cli-rp"), [(1700000000000, {"temp": 1.5})])

    def test_execute_insert(self):
        rows = [
            ("INSERT plant,device=cli-1 temp=71.2,vib=0.031 1700000000000", 1700000000000,
             {"temp": 71.2, "vib": 0.031}),
            ("INSERT plant,device=cli-1 temp=-0.0,count=9007199254740993i 1700000000001",
             1700000000001, {"temp": -0.0, "count": float(9007199254740993)}),
            ("INSERT plant,device=cli-1 temp=1e-300,ok=true 1700000000002", 1700000000002,
             {"temp": 1e-300, "ok": 1.0}),
            ("INSERT plant,device=cli-1 temp=123456789.123456789 1700000000003", 1700000000003,
             {"temp": 123456789.123456789}),
        ]
        for stmt, _, _ in rows:
            rc, out = self.influx("-database", "db", "-precision", "ms", "-execute", stmt)
            self.assertEqual(rc, 0, out)
        self.assertPoints(self.d.readings("cli-1"), [(ts, v) for _, ts, v in rows])

    def test_execute_precision_and_series_key(self):
        rc, out = self.influx("-database", "db", "-precision", "s", "-execute",
                              "INSERT cpu,region=eu,host=h1 load=0.5 1700000000")
        self.assertEqual(rc, 0, out)
        rc, out = self.influx("-database", "db", "-precision", "rfc3339", "-execute",
                              "INSERT cpu,region=eu,host=h1 load=0.75 1700000000001000000")
        self.assertEqual(rc, 0, out)
        self.assertPoints(self.d.readings("cpu,host=h1,region=eu"),
                          [(1700000000000, {"load": 0.5}), (1700000000001, {"load": 0.75})])
        # The CLI offers -precision h and m too (InfluxDB takes both on /write).
        for prec, ts in (("h", "472223"), ("m", "28333334")):
            rc, out = self.influx("-database", "db", "-precision", prec, "-execute",
                                  "INSERT cpu,device=cli-hm load=1 " + ts)
            self.assertEqual(rc, 0, out)
            self.assertNotIn("ERR", out)
        self.assertPoints(self.d.readings("cli-hm"),
                          [(1700000040000, {"load": 1.0}), (1700002800000, {"load": 1.0})])

    def test_import_file(self):
        lines = ["plant,device=cli-imp a=%r,b=%di %d" % (i * 0.1, i, 1700000100000 + i)
                 for i in range(50)]
        path = os.path.join(self.d.tmp, "import.txt")
        vt.write_file(path, "# DDL\nCREATE DATABASE vigil\n\n# DML\n"
                            "# CONTEXT-DATABASE: vigil\n# CONTEXT-RETENTION-POLICY: autogen\n"
                      + "\n".join(lines) + "\n")
        rc, out = self.influx("-import", "-path", path, "-precision", "ms")
        self.assertEqual(rc, 0, out)
        self.assertIn("Processed 50 inserts", out)
        self.assertIn("Failed 0 inserts", out)
        self.assertPoints(self.d.readings("cli-imp"),
                          [(1700000100000 + i, {"a": i * 0.1, "b": float(i)}) for i in range(50)])

    def test_create_database(self):
        # What Telegraf and the CLI send first; vigild has no databases but must say yes.
        rc, out = self.influx("-execute", "CREATE DATABASE telegraf")
        self.assertEqual(rc, 0, out)
        self.assertNotIn("ERR", out)

    def test_parse_error_as_influxd(self):
        # influxd 1.6.7 answered this -execute with the same output and exit status 1.
        rc, out = self.influx("-execute", "SHOW RETENTION POLICIES ON 'x'")
        self.assertEqual(rc, 1, out)
        self.assertIn("ERR: error parsing query: found x, expected identifier at line 1, "
                      "char 27\n", out)

    def test_statement_error_before_others(self):
        # The shell asks chunked=true: influxd 1.6.7 sends the failed statement's error before
        # its "not executed", and the shell prints the first (this output and exit status 1,
        # from influxd; vigild's whole answer printed "ERR: not executed" before review28).
        rc, out = self.influx("-execute", "SHOW RETENTION POLICIES ON nosuch; CREATE DATABASE c2")
        self.assertEqual(rc, 1, out)
        self.assertTrue(out.startswith("\nERR: database not found: nosuch\n"), out)
        self.assertNotIn("not executed", out)

    def test_bad_insert_reports_error(self):
        rc, out = self.influx("-database", "db", "-precision", "ms", "-execute",
                              "INSERT plant,device=cli-bad temp= 1")
        # influx -execute prints the server's error and still exits 0 (the CLI's behaviour):
        # InfluxDB's words for a write whose every line is bad, and the line's number.
        self.assertIn("ERR: {\"error\":\"unable to parse 'plant,device=cli-bad temp= 1': "
                      "missing field value (line 1)\"}", out)
        self.assertNotIn("partial write", out)
        self.assertNoDevice("cli-bad")


if __name__ == "__main__":
    vt.main()

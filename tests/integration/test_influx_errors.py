#!/usr/bin/python3
"""vigild integration: InfluxDB v1 compatibility, influxd 1.6.7's parse errors word for word in
the database statements vigild answers (CREATE DATABASE, SHOW DATABASES, SHOW RETENTION
POLICIES), and what influxd takes there (QueryParseErrors: ~50 s, so a file and a ctest of its
own, it_influx_errors, run beside the rest). The other database statements' tests:
test_influx.py; what they share: influxpair.py."""

import os
import sys
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import CREATED, policies, show_databases  # noqa: E402


class QueryParseErrors(vt.DaemonTestCase):
    """What influxd cannot parse in the three statements vigild answers gets influxd's parse
    error, word for word (400 {"error":"error parsing query: found X, expected Y at line L,
    char C"}), and keeps nothing. Every statement below was sent to influxd 1.6.7 (Debian's
    influxdb 1.6.7~rc0-1+b13, on 127.0.0.1 with a database "plant") and its answer copied here:
    single-quoted names (strings), names starting with a digit (1x, 1.5, .5, 1h, 1µs), keywords
    (all 80 of InfluxQL 1.6.7, any case), backquotes, non-ASCII letters, bound parameters ($x),
    operators, bad escapes, unterminated quotes (a newline ends one), text after the name, an
    unterminated comment, WITH without an option, and positions over several lines. Also what
    influxd takes that vigild refused before: comments, ';;', '\r' as a blank, a quoted part
    after a bare one (x"y" is y), \' in a quoted name. WITH's clause (WITH_CLAUSE, session 22)
    is read to its end as influxd reads it; so are several statements in a query (STATEMENTS,
    session 22). Not compared: DROP DATABASE (vigild answers no DROP)."""

    # Several statements in one query: influxd 1.6.7's answers, copied byte for byte (session
    # 22). It parses the whole query first (a parse error anywhere runs nothing), then runs the
    # statements in order, each with its statement_id; the first that fails ends the run, with
    # its error when it was the last statement and "not executed" in its place when more
    # followed. vigild answered a second statement 400 before.
    STATEMENTS = (
        ("CREATE DATABASE p1; SHOW RETENTION POLICIES ON nosuch", 200,
         b'{"results":[{"statement_id":0},{"statement_id":1,'
         b'"error":"database not found: nosuch"}]}'),
        ("SHOW RETENTION POLICIES ON nosuch; CREATE DATABASE p2", 200,
         b'{"results":[{"statement_id":0,"error":"not executed"}]}'),
        ("CREATE DATABASE p3; SHOW RETENTION POLICIES ON nosuch; CREATE DATABASE p4; "
         "CREATE DATABASE p5", 200,
         b'{"results":[{"statement_id":0},{"statement_id":1,"error":"not executed"}]}'),
        ("CREATE DATABASE p6; CREATE DATABASE p7 x", 400,
         b'{"error":"error parsing query: found x, expected ; at line 1, char 40"}'),
        ("CREATE DATABASE p8;;CREATE DATABASE p9;", 200,
         b'{"results":[{"statement_id":0},{"statement_id":1}]}'),
        (";", 200, b'{}'),
        ("-- c", 200, b'{}'),
        ("SHOW RETENTION POLICIES; SHOW RETENTION POLICIES ON p8", 200,
         b'{"results":[{"statement_id":0,"error":"not executed"}]}'),
        ('CREATE DATABASE ""; CREATE DATABASE p10', 200,
         b'{"results":[{"statement_id":0,"error":"not executed"}]}'),
        ("CREATE DATABASE p11 WITH DURATION 1m; CREATE DATABASE p12", 200,
         b'{"results":[{"statement_id":0,"error":"not executed"}]}'),
        ("SHOW DATABASES CREATE DATABASE p13", 400,
         b'{"error":"error parsing query: found CREATE, expected ; at line 1, char 16"}'),
        ("CREATE DATABASE p14 ; ; ", 200, b'{"results":[{"statement_id":0}]}'),
        ("CREATE DATABASE one; CREATE DATABASE two", 200,
         b'{"results":[{"statement_id":0},{"statement_id":1}]}'),
    )

    # The same queries with chunked=true (the influx shell's), influxd 1.6.7's answers copied
    # byte for byte (review28, 127.0.0.1:19450): a document and newline per result, the failed
    # statement's error then "not executed" under its id for each later statement, and an
    # empty body for a query of no statement. Parse errors are the same 400s.
    STATEMENTS_CHUNKED = (
        (0, b'{"results":[{"statement_id":0}]}\n'
            b'{"results":[{"statement_id":1,"error":"database not found: nosuch"}]}\n'),
        (1, b'{"results":[{"statement_id":0,"error":"database not found: nosuch"}]}\n'
            b'{"results":[{"statement_id":0,"error":"not executed"}]}\n'),
        (2, b'{"results":[{"statement_id":0}]}\n'
            b'{"results":[{"statement_id":1,"error":"database not found: nosuch"}]}\n'
            b'{"results":[{"statement_id":1,"error":"not executed"}]}\n'
            b'{"results":[{"statement_id":1,"error":"not executed"}]}\n'),
        (4, b'{"results":[{"statement_id":0}]}\n{"results":[{"statement_id":1}]}\n'),
        (5, b''),
        (6, b''),
        (7, b'{"results":[{"statement_id":0,"error":"database name required"}]}\n'
            b'{"results":[{"statement_id":0,"error":"not executed"}]}\n'),
        (8, b'{"results":[{"statement_id":0,"error":"invalid name"}]}\n'
            b'{"results":[{"statement_id":0,"error":"not executed"}]}\n'),
        (9, b'{"results":[{"statement_id":0,"error":"retention policy duration must be at '
            b'least 1h0m0s"}]}\n{"results":[{"statement_id":0,"error":"not executed"}]}\n'),
        (11, b'{"results":[{"statement_id":0}]}\n'),
        (12, b'{"results":[{"statement_id":0}]}\n{"results":[{"statement_id":1}]}\n'),
    )

    # CREATE DATABASE ... WITH: influxd 1.6.7's answers, copied (session 22). vigild took every
    # one of these with its first option word before (DURATION without a value included).
    WITH_PARSE_ERRORS = (
        ("CREATE DATABASE x WITH DURATION", "found EOF, expected duration at line 1, char 33"),
        ("CREATE DATABASE y WITH DURATION 1d REPLICATION",
         "found EOF, expected integer at line 1, char 48"),
        ("CREATE DATABASE y2 WITH DURATION 1d REPLICATION 0",
         "invalid value 0: must be 1 <= n <= 2147483647 at line 1, char 49"),
        ("CREATE DATABASE y3 WITH DURATION 1d REPLICATION 1 SHARD",
         "found EOF, expected DURATION at line 1, char 57"),
        ("CREATE DATABASE y5 WITH SHARD 1h", "found 1h, expected DURATION at line 1, char 31"),
        ("CREATE DATABASE y6 WITH NAME", "found EOF, expected identifier at line 1, char 30"),
        ("CREATE DATABASE y8 WITH NAME foo DURATION 1d",
         "found DURATION, expected ; at line 1, char 34"),
        ("CREATE DATABASE y11 WITH DURATION x", "found x, expected duration at line 1, char 35"),
        ("CREATE DATABASE y12 WITH DURATION 1d x", "found x, expected ; at line 1, char 38"),
        ("CREATE DATABASE z1 WITH DURATION 1x", "invalid duration at line 1, char 34"),
        ("CREATE DATABASE z4 WITH DURATION 1h30", "invalid duration at line 1, char 34"),
        ("CREATE DATABASE z5 WITH DURATION '1d'", "found 1d, expected duration at line 1, char 33"),
        ("CREATE DATABASE z6 WITH DURATION 1.5h",
         "found 1.5, expected duration at line 1, char 34"),
        ("CREATE DATABASE z7 WITH DURATION 99999999999999999999h",
         "invalid duration at line 1, char 34"),
        ("CREATE DATABASE z8 WITH DURATION 9999999999w",
         "overflowed duration 9999999999w: choose a smaller duration or INF at line 1, char 34"),
        ("CREATE DATABASE z9 WITH DURATION 1d REPLICATION 1d",
         "found 1d, expected integer at line 1, char 49"),
        ("CREATE DATABASE z10 WITH DURATION 1d REPLICATION 99999999999",
         "invalid value 99999999999: must be 1 <= n <= 2147483647 at line 1, char 50"),
        ("CREATE DATABASE z11 WITH REPLICATION 1.5",
         "found 1.5, expected integer at line 1, char 38"),
        ("CREATE DATABASE z12 WITH DURATION 1d SHARD DURATION",
         "found EOF, expected duration at line 1, char 53"),
        ("CREATE DATABASE z13 WITH DURATION inf SHARD DURATION 1x",
         "invalid duration at line 1, char 54"),
        ("CREATE DATABASE z14 WITH NAME 'x'", "found x, expected identifier at line 1, char 30"),
        ("CREATE DATABASE z16 WITH DURATION 1µs", "invalid duration at line 1, char 35"),
        ("CREATE DATABASE z17 WITH DURATION 1d1", "invalid duration at line 1, char 35"),
        ("CREATE DATABASE z18 WITH DURATION 1hh", "invalid duration at line 1, char 35"),
        ("CREATE DATABASE z20 WITH REPLICATION 2147483648",
         "invalid value 2147483648: must be 1 <= n <= 2147483647 at line 1, char 38"),
        ("CREATE DATABASE z21 WITH DURATION 1d REPLICATION 1 SHARD DURATION 1h NAME rp x",
         "found x, expected ; at line 1, char 78"),
        ("CREATE DATABASE z23 WITH DURATION 2562048h",
         "overflowed duration 2562048h: choose a smaller duration or INF at line 1, char 35"),
        ("CREATE DATABASE z26 WITH REPLICATION 99999999999999999999",
         'strconv.Atoi: parsing "99999999999999999999": value out of range at line 1, char 38'),
        ("CREATE DATABASE z27 WITH DURATION 1d REPLICATION 1 SHARD DURATION 1h NAME",
         "found EOF, expected identifier at line 1, char 75"),
        ("CREATE DATABASE z28 WITH DURATION -1h", "found -, expected duration at line 1, char 35"),
        ("CREATE DATABASE z29 WITH DURATION 1M", "invalid duration at line 1, char 35"),
        ("CREATE DATABASE w1 WITH DURATION 1us", "invalid duration at line 1, char 34"),
        ("CREATE DATABASE w4 WITH DURATION 1n", "invalid duration at line 1, char 34"),
    )
    # What influxd runs: created, or its statement error (200) with nothing created.
    WITH_RUN = (
        ("CREATE DATABASE y WITH DURATION 1d REPLICATION 1", None),
        ("CREATE DATABASE y4 WITH SHARD DURATION 1h", None),
        ("CREATE DATABASE y7 WITH NAME foo", None),
        ("CREATE DATABASE y9 WITH DURATION INF", None),
        ("CREATE DATABASE z3 WITH DURATION 2h30m", None),
        ('CREATE DATABASE z15 WITH NAME "r p";', None),
        ("CREATE DATABASE z19 WITH DURATION 0s", None),
        ("CREATE DATABASE z22 WITH SHARD DURATION 0s", None),
        ("CREATE DATABASE z24 WITH DURATION 2562047h", None),
        ("CREATE DATABASE w2 WITH DURATION 3600000000u", None),
        ("CREATE DATABASE w3 WITH DURATION 1h1ns", None),
        ("CREATE DATABASE w6 WITH DURATION 3600000000µ", None),
        ("CREATE DATABASE w8 WITH DURATION 1d REPLICATION 007", None),
        ("CREATE DATABASE z2 WITH DURATION 1ns",
         "retention policy duration must be at least 1h0m0s"),
        ("CREATE DATABASE w5 WITH DURATION 59m59s",
         "retention policy duration must be at least 1h0m0s"),
        ("CREATE DATABASE w9 WITH DURATION 30m SHARD DURATION 2d",
         "retention policy duration must be at least 1h0m0s"),
        ("CREATE DATABASE w7 WITH DURATION 1d SHARD DURATION 2d",
         "retention policy duration must be greater than the shard duration"),
    )

    INFLUXD_PARSE_ERRORS = (
            ("SHOW RETENTION POLICIES ON 'x'", 'found x, expected identifier at line 1, char 27'),
            ("SHOW RETENTION POLICIES ON 'plant'",
             'found plant, expected identifier at line 1, char 27'),
            ('SHOW RETENTION POLICIES ON 1x', 'found 1x, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON 1', 'found 1, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON plant.autogen', 'found ., expected ; at line 1, char 33'),
            ('SHOW RETENTION POLICIES ON pl-ant', 'found -, expected ; at line 1, char 30'),
            ('SHOW RETENTION POLICIES ON plant x', 'found x, expected ; at line 1, char 34'),
            ('SHOW RETENTION POLICIES ON "pl"ant', 'found ant, expected ; at line 1, char 32'),
            ('SHOW RETENTION POLICIES ON "pl""ant"', 'found ant, expected ; at line 1, char 32'),
            ('SHOW RETENTION POLICIES ON `plant`',
             'found `, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON é', 'found é, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON plänt', 'found ä, expected ; at line 1, char 30'),
            ('SHOW RETENTION POLICIES ON "a\\qb"',
             'found \\q, expected identifier at line 1, char 31'),
            ('SHOW RETENTION POLICIES ON pl\\ant', 'found \\, expected ; at line 1, char 30'),
            ('SHOW RETENTION POLICIES ON pl"ant',
             'found ant, expected identifier at line 1, char 29'),
            ('SHOW RETENTION POLICIES ON on', 'found ON, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON select',
             'found SELECT, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON', 'found EOF, expected identifier at line 1, char 28'),
            # A token with no text: influxd prints its kind (review of session 21).
            ("SHOW RETENTION POLICIES ON ''",
             'found STRING, expected identifier at line 1, char 27'),
            ("CREATE DATABASE ''", 'found STRING, expected identifier at line 1, char 16'),
            ("SHOW RETENTION POLICIES ON '",
             'found BADSTRING, expected identifier at line 1, char 27'),
            ('SHOW RETENTION POLICIES ON "',
             'found BADSTRING, expected identifier at line 1, char 27'),
            ("SHOW RETENTION POLICIES ON '\nx",
             'found BADSTRING, expected identifier at line 1, char 27'),
            ('SHOW RETENTION POLICIES ON "\nx',
             'found BADSTRING, expected identifier at line 1, char 27'),
            ('SHOW RETENTION POLICIES ON ;', 'found ;, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON $x', 'found $x, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON pl$ant', 'found $ant, expected ; at line 1, char 30'),
            ('SHOW RETENTION POLICIES plant', 'found plant, expected ; at line 1, char 25'),
            ('SHOW DATABASES x', 'found x, expected ; at line 1, char 16'),
            # influxd trims Go's white space off the query first, and counts from what is left.
            ('  SHOW DATABASES x', 'found x, expected ; at line 1, char 16'),
            ('\nSHOW DATABASES x', 'found x, expected ; at line 1, char 16'),
            ('\x0bSHOW DATABASES x', 'found x, expected ; at line 1, char 16'),
            ("SHOW DATABASES 'x'", 'found x, expected ; at line 1, char 15'),
            ("CREATE DATABASE 'x'", 'found x, expected identifier at line 1, char 16'),
            ('CREATE DATABASE 1x', 'found 1x, expected identifier at line 1, char 17'),
            ('CREATE DATABASE 1', 'found 1, expected identifier at line 1, char 17'),
            ('CREATE DATABASE pl-ant', 'found -, expected ; at line 1, char 19'),
            ('CREATE DATABASE pl.ant', 'found ., expected ; at line 1, char 19'),
            ('CREATE DATABASE "pl"ant', 'found ant, expected ; at line 1, char 21'),
            ('CREATE DATABASE `x`', 'found `, expected identifier at line 1, char 17'),
            ('CREATE DATABASE plänt', 'found ä, expected ; at line 1, char 19'),
            ('CREATE DATABASE pl\\ant', 'found \\, expected ; at line 1, char 19'),
            ('CREATE DATABASE pl"ant', 'found ant, expected identifier at line 1, char 18'),
            ('CREATE DATABASE select', 'found SELECT, expected identifier at line 1, char 17'),
            ('CREATE DATABASE on', 'found ON, expected identifier at line 1, char 17'),
            ('CREATE DATABASE $x', 'found $x, expected identifier at line 1, char 17'),
            ('CREATE DATABASE x WITH',
             'found EOF, expected DURATION, NAME, REPLICATION, SHARD at line 1, char 24'),
            ('CREATE DATABASE x WITH foo',
             'found foo, expected DURATION, NAME, REPLICATION, SHARD at line 1, char 24'),
            ('CREATE DATABASE x x', 'found x, expected ; at line 1, char 19'),
            ('CREATE DATABASE "a\\qb"', 'found \\q, expected identifier at line 1, char 20'),
            ('CREATE DATABASE', 'found EOF, expected identifier at line 1, char 17'),
            ('CREATE DATABASE "unterminated',
             'found unterminated, expected identifier at line 1, char 16'),
            ('CREATE DATABASE "bad\\qescape"', 'found \\q, expected identifier at line 1, char 22'),
            ('CREATE DATABASE two words', 'found words, expected ; at line 1, char 21'),
            ('CREATE DATABASE ', 'found EOF, expected identifier at line 1, char 17'),
            ('CREATE DATABASE   ', 'found EOF, expected identifier at line 1, char 17'),
            ('CREATE DATABASE ;', 'found ;, expected identifier at line 1, char 17'),
            ('CREATE DATABASE "ä" x', 'found x, expected ; at line 1, char 21'),
            ('CREATE DATABASE "ä" "x', 'found x, expected ; at line 1, char 20'),
            ('SHOW DATABASES "x"', 'found x, expected ; at line 1, char 16'),
            ('SHOW DATABASES x1 y', 'found x1, expected ; at line 1, char 16'),
            ('CREATE DATABASE x2d /* c', 'found ILLEGAL, expected ; at line 1, char 21'),
            ('CREATE DATABASE x = 1', 'found =, expected ; at line 1, char 19'),
            ('CREATE DATABASE x =~ 1', 'found =~, expected ; at line 1, char 19'),
            ('CREATE DATABASE x != 1', 'found !=, expected ; at line 1, char 19'),
            ('CREATE DATABASE x ! 1', 'found !, expected ; at line 1, char 19'),
            ('CREATE DATABASE x <= 1', 'found <=, expected ; at line 1, char 19'),
            ('CREATE DATABASE x <> 1', 'found !=, expected ; at line 1, char 19'),
            ('CREATE DATABASE x >= 1', 'found >=, expected ; at line 1, char 19'),
            ('CREATE DATABASE x :: 1', 'found ::, expected ; at line 1, char 19'),
            ('CREATE DATABASE x : 1', 'found :, expected ; at line 1, char 19'),
            ('CREATE DATABASE 1.5', 'found 1.5, expected identifier at line 1, char 17'),
            ('CREATE DATABASE .5', 'found .5, expected identifier at line 1, char 17'),
            ('CREATE DATABASE .x', 'found ., expected identifier at line 1, char 17'),
            ('CREATE DATABASE 1.x', 'found 1, expected identifier at line 1, char 17'),
            ('CREATE DATABASE 1h', 'found 1h, expected identifier at line 1, char 17'),
            ('CREATE DATABASE 1h5', 'found 1h5, expected identifier at line 1, char 17'),
            ('CREATE DATABASE 1µs', 'found 1µs, expected identifier at line 1, char 17'),
            ('CREATE DATABASE $', 'found $, expected identifier at line 1, char 17'),
            ('CREATE DATABASE $"x"', 'found $x, expected identifier at line 1, char 17'),
            ('CREATE DATABASE $1', 'found $1, expected identifier at line 1, char 17'),
            ('CREATE DATABASE (x)', 'found (, expected identifier at line 1, char 17'),
            ('CREATE DATABASE #x', 'found #, expected identifier at line 1, char 17'),
            ('CREATE DATABASE -x', 'found -, expected identifier at line 1, char 17'),
            ('CREATE DATABASE x"y', 'found y, expected identifier at line 1, char 17'),
            ("CREATE DATABASE 'x", 'found x, expected identifier at line 1, char 16'),
            ("CREATE DATABASE 'a\\qb'", 'found \\q, expected identifier at line 1, char 20'),
            ("CREATE DATABASE 'a\\é'", 'found \\é, expected identifier at line 1, char 20'),
            ('CREATE DATABASE x WITH 1',
             'found 1, expected DURATION, NAME, REPLICATION, SHARD at line 1, char 24'),
            ('SHOW RETENTION POLICIES ON x.y', 'found ., expected ; at line 1, char 29'),
            ('SHOW RETENTION POLICIES ON "x".y', 'found ., expected ; at line 1, char 31'),
            ('show retention policies on Select',
             'found SELECT, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES ON ＰＬ', 'found Ｐ, expected identifier at line 1, char 28'),
            ('SHOW RETENTION POLICIES x', 'found x, expected ; at line 1, char 25'),
            ('SHOW RETENTION POLICIES 1x', 'found 1x, expected ; at line 1, char 25'),
            ('SHOW RETENTION POLICIES "x"', 'found x, expected ; at line 1, char 25'),
            ('SHOW RETENTION POLICIES ON "ä" \'x\'', 'found x, expected ; at line 1, char 31'),
            ('CREATE DATABASE\n', 'found EOF, expected identifier at line 1, char 17'),
            ('CREATE\nDATABASE\n  1x', 'found 1x, expected identifier at line 3, char 3'),
            ('CREATE\nDATABASE\n  x y', 'found y, expected ; at line 3, char 5'),
            ('CREATE DATABASE "x\ny"', 'found x, expected identifier at line 1, char 16'),
            ("CREATE DATABASE 'x\ny'", 'found x, expected identifier at line 1, char 16'),
            ('SHOW RETENTION POLICIES ON x\ty', 'found y, expected ; at line 1, char 30'),
            ('SHOW RETENTION POLICIES ON\tx\x0by', 'found \x0b, expected ; at line 1, char 29'),
    )

    KEYWORDS = (
        "ALL ALTER ANALYZE AND ANY AS ASC BEGIN BY CARDINALITY CONTINUOUS CREATE DATABASE "
        "DATABASES DEFAULT DELETE DESC DESTINATIONS DIAGNOSTICS DISTINCT DROP DURATION END EVERY "
        "EXACT EXPLAIN FALSE FIELD FOR FROM GRANT GRANTS GROUP GROUPS IN INF INSERT INTO KEY KEYS "
        "KILL LIMIT MEASUREMENT MEASUREMENTS NAME OFFSET ON OR ORDER PASSWORD POLICIES POLICY "
        "PRIVILEGES QUERIES QUERY READ REPLICATION RESAMPLE RETENTION REVOKE SELECT SERIES SET "
        "SHARD SHARDS SHOW SLIMIT SOFFSET STATS SUBSCRIPTION SUBSCRIPTIONS TAG TO TRUE USER USERS "
        "VALUES WHERE WITH WRITE").split()

    def query(self, q):
        return self.d.curl("POST", "/query", "--data-urlencode", "q=" + q)

    def test_parse_errors_as_influxd(self):
        self.assertEqual(self.query("CREATE DATABASE plant").status, 200)
        listed = show_databases(self)
        for q, err in self.INFLUXD_PARSE_ERRORS:
            r = self.query(q)
            self.assertEqual((r.status, r.json()), (400, {"error": "error parsing query: " + err}),
                             q)
        self.assertEqual(len(self.KEYWORDS), 80)
        for kw in self.KEYWORDS:
            for word in (kw, kw.lower()):
                r = self.query("SHOW RETENTION POLICIES ON " + word)
                self.assertEqual((r.status, r.json()), (400, {
                    "error": "error parsing query: found %s, expected identifier at line 1, "
                             "char 28" % kw}), word)
        # Words influxd does not reserve are names (checked there too).
        for word in ("fill", "time", "now", "tags", "fields", "null", "x1", "_x", "pl_ant9"):
            r = self.query("SHOW RETENTION POLICIES ON " + word)
            self.assertEqual((r.status, r.json()), (200, {"results": [
                {"statement_id": 0, "error": "database not found: " + word}]}), word)
        self.assertEqual(show_databases(self), listed)  # nothing kept by a refused CREATE

    def test_with_clause_as_influxd(self):
        listed = show_databases(self)
        for q, err in self.WITH_PARSE_ERRORS:
            r = self.query(q)
            self.assertEqual((r.status, r.json()), (400, {"error": "error parsing query: " + err}),
                             q)
        self.assertEqual(show_databases(self), listed)  # nothing kept by a refused CREATE
        for q, err in self.WITH_RUN:
            r = self.query(q)
            want = CREATED if err is None else {"results": [{"statement_id": 0, "error": err}]}
            self.assertEqual((r.status, r.json()), (200, want), q)
        # influxd 1.6.7 listed, after these, exactly the ones it ran without an error.
        self.assertEqual([n for n in show_databases(self) if n not in listed],
                         [q.split()[2] for q, err in self.WITH_RUN if err is None])

    def test_statements_as_influxd(self):
        listed = show_databases(self)
        for q, status, body in self.STATEMENTS:
            r = self.query(q)
            self.assertEqual((r.status, r.body.strip()), (status, body), q)
        # influxd 1.6.7 then listed these, in this order (and nothing of a refused query).
        self.assertEqual([n for n in show_databases(self) if n not in listed],
                         ["p1", "p3", "p8", "p9", "p14", "one", "two"])
        # Each statement's own result, in order (influxd: the same two, and the policies).
        r = self.query("; SHOW RETENTION POLICIES ON p8; SHOW DATABASES")
        doc = r.json()
        self.assertEqual((r.status, doc["results"][0]),
                         (200, policies("0s", "168h0m0s")["results"][0]))
        self.assertEqual(doc["results"][1]["statement_id"], 1)
        self.assertEqual(doc["results"][1]["series"][0]["name"], "databases")
        self.assertEqual(len(doc["results"]), 2)

    def test_statements_chunked_as_influxd(self):
        listed = show_databases(self)
        for i, body in self.STATEMENTS_CHUNKED:
            q, status, _ = self.STATEMENTS[i]
            for args in (("/query?chunked=true", "--data-urlencode", "q=" + q),
                         ("/query", "--data", "chunked=true", "--data-urlencode", "q=" + q)):
                r = self.d.curl("POST", *args)
                self.assertEqual((r.status, r.body), (status, body), (q, args[-2]))
        # A parse error is the same 400; any value but "true" answers whole, as influxd.
        q, status, body = self.STATEMENTS[3]
        r = self.d.curl("POST", "/query?chunked=true", "--data-urlencode", "q=" + q)
        self.assertEqual((r.status, r.body.strip()), (status, body))
        q, status, body = self.STATEMENTS[0]
        for value in ("True", "1", "true" * 10):
            r = self.d.curl("POST", "/query?chunked=" + value, "--data-urlencode", "q=" + q)
            self.assertEqual((r.status, r.body.strip()), (status, body), value)
        # Kept: the names influxd kept (test_statements_as_influxd may have kept them first).
        kept = ["p1", "p3", "p8", "p9", "p14", "one", "two"]
        self.assertEqual([n for n in show_databases(self) if n in kept or n not in listed], kept)

    def test_query_longer_than_vigild_reads(self):
        """vigild reads a q of at most 65,536 bytes, API_IQ_Q_MAX (influxd has no such bound:
        it ran all of these; 1,023 before session 25). A longer one is a 400 naming q and the
        bound and runs nothing, whether it comes in the URL or in a form body, Telegraf's way
        (review28: the form body's q was cut to its bound and run, a name cut at the last byte
        kept cut short); so is one holding a NUL byte. A URL longer than http.max_header_bytes
        (32 KiB) is a 414 (vigild's JSON since session 47), never a cut query."""
        listed = show_databases(self)
        cut = "-- " + "p" * 65509 + "\nCREATE DATABASE cutshort"  # byte 65,536 within the name
        self.assertEqual(len(cut), 65537)
        many = "; ".join("CREATE DATABASE many%d" % i for i in range(3000))
        for q in (cut, many):
            self.assertJsonError(self.d.curl("POST", "/query", "--data-urlencode", "q@-",
                                             stdin=q),
                                 400, "parameter 'q': longer than 65536 bytes")
        self.assertJsonError(self.d.curl("POST", "/query", "--data", "q=CREATE+DATABASE+a%00b"),
                             400, "parameter 'q'")
        # GET: a q of 16 KiB (some 16 KiB of URL) is read whole; one of 40 KiB passes
        # http.max_header_bytes' 32 KiB: a 414, and nothing runs.
        # (SHOW DATABASES, not a CREATE: the class's names fill vigild's 32 in later tests.)
        get16 = "-- " + "g" * (16384 - 18) + "\nSHOW DATABASES"
        self.assertEqual(len(get16), 16384)
        self.assertEqual(show_databases(self, get16, method="GET"), listed)
        r = self.d.curl("GET", "/query?q=" + urllib.parse.quote(cut[:40000] + "\nCREATE DATABASE "
                                                                 "get40"))
        self.assertJsonError(r, 414, ["exceeds http.max_header_bytes (32768 bytes)",
                                      "send a long query as a form body"])
        self.assertIn("form body", r.headers.get("x-influxdb-error", ""))
        self.assertEqual(show_databases(self), listed)
        fits = cut[:3] + cut[4:]  # 65,536 bytes: read whole
        r = self.d.curl("POST", "/query", "--data-urlencode", "q@-", stdin=fits)
        self.assertEqual((r.status, r.json()), (200, CREATED))
        self.assertEqual(show_databases(self), listed + ["cutshort"])

    def test_what_influxd_takes(self):
        listed = show_databases(self)  # the class's daemon: other tests' names too
        for q in ("CREATE DATABASE c1 -- a comment", "CREATE DATABASE /* c */ c2",
                  "CREATE DATABASE c3 /* c */;", "CREATE DATABASE c4;;", "CREATE DATABASE c5; ",
                  "CREATE DATABASE\r c6\r", 'CREATE DATABASE x"c7"', 'CREATE DATABASE "select"',
                  "create database c8 with duration 1d;"):
            r = self.query(q)
            self.assertEqual((r.status, r.json()), (200, CREATED), q)
        self.assertEqual([n for n in show_databases(self, "SHOW DATABASES -- c")
                          if n not in listed],
                         ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "select", "c8"])
        for q, err in (('SHOW RETENTION POLICIES ON "a\\\'b"', "database not found: a'b"),
                       ("SHOW RETENTION POLICIES ON /* c */ nosuch -- c",
                        "database not found: nosuch")):
            r = self.query(q)
            self.assertEqual((r.status, r.json()),
                             (200, {"results": [{"statement_id": 0, "error": err}]}), q)
        r = self.query("SHOW RETENTION POLICIES ON \"select\";;")
        self.assertEqual((r.status, r.json()), (200, policies("0s", "168h0m0s")))
        # Go's white space trimmed off both ends (strings.TrimSpace), comments between the
        # keywords: influxd 1.6.7 answers these 200 (checked there).
        for q in ("SHOW DATABASES\x0b", "SHOW DATABASES\u3000\u2028 \t", "SHOW DATABASES\u0085",
                  "SHOW -- c\nDATABASES", "\x0c show databases ;  \n"):
            r = self.query(q)
            self.assertEqual((r.status, r.json()["results"][0]["series"][0]["name"]),
                             (200, "databases"), q)
        r = self.query("SHOW /* c */ RETENTION /**/ POLICIES ON \"select\"\x0c")
        self.assertEqual((r.status, r.json()), (200, policies("0s", "168h0m0s")))
        r = self.query("CREATE/**/DATABASE c9")
        self.assertEqual((r.status, r.json()), (200, CREATED))
        self.assertIn("c9", show_databases(self))
        for q in (" ", "\u3000", ""):  # nothing left: influxd's missing q
            r = self.query(q)
            self.assertEqual((r.status, r.json()),
                             (400, {"error": "missing required parameter \"q\""}), repr(q))


if __name__ == "__main__":
    vt.main()

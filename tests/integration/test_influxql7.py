#!/usr/bin/python3
"""vigild integration (session 53, task influx14): InfluxQL leftovers, sixth pass, each query sent
to vigild and to a real influxd 1.6.7 (the InfluxdPair fixture, Debian's influxd on loopback)
holding the same points and compared byte for byte: the query's db= looked up before a policy
vigild does not hold (influxd's "database not found: nodb" and "database name required" before
its "retention policy not found"), and an rp= holding an escape Go's url.ParseQuery refuses,
read as absent. The points: test_influxql5.py's (a1, pump's t1..t3, big)."""

import http.client
import os
import sys
import unittest
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402,F401  (DaemonTestCase, through InfluxdPair)
from influxpair import InfluxdPair  # noqa: E402
import test_influxql5 as ql5  # noqa: E402
import test_influxql6 as ql6  # noqa: E402  (a module, not its classes: those would run here too)


class Leftovers(InfluxdPair):
    """influx13's review's "Left" list, each case compared with influxd 1.6.7."""

    POINTS = ql5.POINTS

    ask = staticmethod(ql6.Leftovers.ask)  # db=None: no db parameter
    compare = ql5.ChunkSize.compare  # cases: (query, the parameters besides q and epoch)

    @staticmethod
    def raw(port, query):
        """/query's answer to query, a URL's query string sent as it is (escapes Python's
        urlencode would not write)."""
        url = "http://127.0.0.1:%d/query?%s" % (port, query)
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:  # a 4xx: its answer all the same
            with e:
                return e.code, e.read()

    def compare_raw(self, queries, what):
        """As compare, each query a raw query string; returns influxd's answers."""
        answers, same = [], 0
        for query in queries:
            with self.subTest(query=query):
                want, got = (self.raw(port, query) for port in (self.influxd.port,
                                                                 self.d.http_port))
                self.assertEqual(want[0], 200, want)
                answers.append(want)
                same += got == want
                self.assertEqual(got, want)
        print("\n%s: %d of %d as influxd" % (what, same, len(queries)))
        return answers

    def test_database_parameter_before_policy_as_influxd(self):
        # influx14: a source naming no database reads the query's db=, which influxd looks up
        # before the source's policy (rp= or rp.name): db=nodb is its "database not found:
        # nodb", db= empty or absent its "database name required" (ON nodb: nodb's); vigild
        # answered "retention policy not found". (Without a policy vigild refuses, vigild answers db=nodb from its
        # one store, as README says: not changed.)
        nodb, empty, none = {"db": "nodb"}, {"db": ""}, {"db": None}
        qs = ["SELECT x FROM a1", "SELECT x FROM /a/", "SELECT x FROM a1, g..a1",
              "SELECT x FROM g..a1, a1", "SHOW FIELD KEYS", "SHOW SERIES", "SHOW SERIES FROM a1",
              "SHOW TAG KEY CARDINALITY", "SHOW MEASUREMENT EXACT CARDINALITY",
              "SHOW SERIES CARDINALITY GROUP BY device",
              "SHOW SERIES CARDINALITY GROUP BY 'x'",  # the database before the dimension
              "SHOW TAG KEY CARDINALITY FROM a1, pump"]
        cases = [(q, dict(db, rp="rp2", **chunk)) for q in qs for db in (nodb, empty)
                 for chunk in ({}, {"chunked": "true"})]
        cases += [("SELECT x FROM a1", dict(none, rp="rp2")),
                  ("SELECT x FROM a1", dict(nodb, rp="rp2", method="POST")),
                  ("SELECT x FROM rp2.a1", nodb), ("SELECT x FROM rp2.a1", empty),
                  ("SELECT x FROM rp2.a1", none), ("SELECT x FROM rp2./a/", nodb),
                  ("SHOW FIELD KEYS FROM rp2.a1", nodb),
                  # a database named (FROM, ON): the policy's error, or the data, as before
                  ("SELECT x FROM g..a1", dict(nodb, rp="rp2")),
                  ("SELECT x FROM g..a1", dict(empty, rp="rp2")),
                  ("SELECT x FROM g.rp2.a1", nodb),
                  ("SELECT x FROM g.autogen.a1", dict(nodb, rp="rp2")),
                  ("SHOW FIELD KEYS ON g", dict(empty, rp="rp2")),
                  ("SHOW SERIES ON g", dict(nodb, rp="rp2")),
                  ("SHOW TAG KEY EXACT CARDINALITY ON g", dict(empty, rp="rp2")),
                  # ON a database vigild does not list: that database's error
                  ("SHOW FIELD KEYS ON nodb", {"rp": "rp2"}),
                  ("SHOW SERIES ON nodb", dict(empty, rp="rp2")),
                  ("SHOW MEASUREMENT EXACT CARDINALITY ON nodb", {"rp": "rp2"}),
                  ("SHOW SERIES CARDINALITY ON nodb GROUP BY device", dict(none, rp="rp2"))]
        answers = self.compare(cases, "db= before the policy")
        self.assertEqual(sum(b"database not found: nodb" in a[1] for a in answers), 32)
        self.assertEqual(sum(b"database name required" in a[1] for a in answers), 27)
        # db= holding an escape ParseQuery refuses: dropped, "database name required"
        self.compare_raw(["db=g%zz&q=SELECT+x+FROM+a1&rp=rp2",
                          "db=g%&q=SHOW+FIELD+KEYS&rp=rp2"], "db= with a bad escape")

    def test_into_and_subquery_sources_as_influxd(self):
        # influx14: vigild refuses SELECT INTO and subqueries, and said so ("vigild does not
        # support ...") before influxd's lookups: a database or policy influxd does not find in
        # any source (INTO's target, every FROM, a subquery's, rp= and db= for those naming
        # none) is its error, which ends the run, a database's before a policy's
        qs = ["SELECT x INTO b2 FROM g.rp2.a1", "SELECT x INTO b2 FROM nodb..a1",
              "SELECT x INTO b2 FROM a1, nodb..a1, g.rp2.a1", "SELECT x INTO g.rp2.b2 FROM a1",
              "SELECT x INTO rp2.b2 FROM a1", "SELECT x INTO nodb.autogen.b2 FROM a1",
              "SELECT x FROM (SELECT x FROM g.rp2.a1)",
              "SELECT x FROM (SELECT x FROM nodb..a1)",
              "SELECT x FROM (SELECT x FROM (SELECT x FROM g.rp2./a/))",
              "SELECT mean(x) FROM (SELECT x FROM g.rp2.a1) GROUP BY time(1h)",
              "SELECT x FROM g.rp2.a1, (SELECT x FROM a1)",
              "SELECT x FROM (SELECT x FROM a1), g.rp2.a1",
              "SELECT x FROM (SELECT mean(x) FROM a1 GROUP BY time(1h)), g.rp2.a1",
              "SELECT x FROM (SELECT x FROM a1), (SELECT x FROM nodb..a1)",
              "SELECT x FROM a1, (SELECT x FROM rp2.b)",
              "SELECT x INTO b2 FROM (SELECT x FROM g.rp2.a1)",
              "SELECT x FROM (SELECT x FROM g.rp2.a1); SELECT x FROM a1"]
        cases = [(q, chunk) for q in qs for chunk in ({}, {"chunked": "true"})]
        rp2 = {"rp": "rp2"}
        cases += [("SELECT x INTO b2 FROM a1", rp2), ("SELECT x INTO b2 FROM g.autogen.a1", rp2),
                  ('SELECT x INTO "b.2" FROM g.autogen.a1', rp2),
                  ("SELECT x INTO g..b2 FROM g.autogen.a1", rp2),
                  ("SELECT x INTO b2 FROM a1", {"rp": "rp2", "db": "nodb"}),
                  ("SELECT x INTO b2 FROM a1", {"rp": "rp2", "db": ""}),
                  ("SELECT * INTO g.autogen.:MEASUREMENT FROM /a/ GROUP BY *", rp2),
                  ("SELECT x FROM (SELECT x FROM a1)", rp2),
                  ("SELECT x FROM (SELECT x FROM a1 WHERE device =~ /FROM x/)", rp2)]
        answers = self.compare(cases, "INTO and subqueries' sources")
        # all but the whole answer to two statements, whose first ends the run: "not executed"
        self.assertEqual(sum(b"not found" in a[1] or b"required" in a[1] for a in answers),
                         len(cases) - 1)
        # influxd's parse errors in a source, as before
        for q in ["SELECT x FROM (SELECT x FROM $m)", "SELECT x FROM (SELECT x FROM a1.)",
                  "SELECT x INTO b2 FROM", "SELECT x INTO b2 FROM a1, (SELECT x FROM a1..)"]:
            with self.subTest(q=q):
                want, got = (self.ask(port, q) for port in (self.influxd.port, self.d.http_port))
                self.assertEqual(want[0], 400, want)
                self.assertEqual(got, want)
        # what influxd answers, vigild still refuses in its words (not compared): the run goes on
        for q in ["SELECT x FROM (SELECT x FROM a1); SELECT x FROM a1",
                  "SELECT x INTO b2 FROM g.autogen.a1; SELECT x FROM a1",
                  "SELECT x FROM (SELECT x FROM a1), a1; SELECT x FROM a1"]:
            with self.subTest(q=q):
                status, body = self.ask(self.d.http_port, q)
                self.assertEqual(status, 200, body)
                self.assertIn(b'"error":"vigild does not support ', body)
                self.assertIn(b'{"statement_id":1,"series":', body)

    def test_deep_and_long_source_lists_as_influxd(self):
        # influx14's review: api__iq_skip_params marks a subquery's '(' in a list in a 64-bit
        # mask, one bit a level, and reads no deeper by recursion: 200 levels of subqueries, a
        # source list of 2,001 names or 300 subqueries, a subquery at every other position and a
        # list at each of 70 levels are looked up as influxd does (POST: the query is long)
        sub, more = "(SELECT x FROM a1)", "SELECT x FROM a1"

        def nest(n, inner, tail=""):
            return "SELECT x FROM " + "(SELECT x FROM " * n + inner + ")" * n + tail

        qs = [nest(200, "g.rp2.a1"), nest(200, "a1", ", g.rp2.a1"),
              "SELECT x FROM " + "(SELECT x FROM " * 62 + sub + ", g.rp2.a1" + ")" * 62,
              "SELECT x FROM " + ", ".join(["a1"] * 2000 + ["g.rp2.a1"]),
              "SELECT x FROM " + ", ".join([sub] * 150 + ["(SELECT x FROM g.rp2.a1)"] + [sub] * 149),
              "SELECT x FROM " + ", ".join(["a1", sub] * 100 + ["nodb..a1"]),
              "SELECT x FROM " + "(SELECT x FROM a1, " * 70 + "a1" + ", g.rp2.a1)" * 70,
              "SELECT x FROM " + "(SELECT x FROM " * 70 + "a1" + "), a1" * 69 + "), g.rp2.a1",
              "SELECT x INTO b2 FROM " + "(SELECT x FROM " * 200 + "a1" + ")" * 200 + ", g.rp2.a1"]
        for q in qs:
            with self.subTest(q=q[:60]):
                want, got = (self.ask(port, q, method="POST")
                             for port in (self.influxd.port, self.d.http_port))
                self.assertIn(b"not found", want[1])
                self.assertEqual(got, want)
        # past the mask (a list after a subquery 64 levels down) vigild refuses it in its own
        # words, as before the change, and runs the next statement
        status, body = self.ask(self.d.http_port, "SELECT x FROM " + "(SELECT x FROM " * 64 +
                                sub + ", g.rp2.a1" + ")" * 64 + "; " + more, method="POST")
        self.assertEqual(status, 200, body)
        self.assertIn(b'"error":"vigild does not support subqueries"', body)
        self.assertIn(b'{"statement_id":1,"series":', body)

    def test_rp_parameter_with_a_bad_escape_as_influxd(self):
        # influx14: Go's url.ParseQuery drops a pair whose value holds an escape it refuses
        # (a '%' without two hex digits), so influxd reads such an rp= as absent; vigild named
        # it ("retention policy not found: %zz")
        answers = self.compare_raw(
            ["db=g&q=SELECT+x+FROM+a1&rp=%zz", "db=g&q=SELECT+x+FROM+a1&rp=%zzrp2",
             "db=g&q=SELECT+x+FROM+a1&rp=rp2%", "db=g&q=SELECT+x+FROM+a1&rp=%2",
             "db=g&q=SHOW+FIELD+KEYS+FROM+a1&rp=rp%2x", "db=g&q=SHOW+SERIES+FROM+a1&rp=%",
             "db=g&q=SELECT+x+FROM+a1&rp=%zz&chunked=true",
             # well-formed escapes, as before: named
             "db=g&q=SELECT+x+FROM+a1&rp=%72p2", "db=g&q=SELECT+x+FROM+a1&rp=rp2&x=%zz"],
            "rp= with a bad escape")
        self.assertEqual([b"retention policy not found" in a[1] for a in answers],
                         [False] * 7 + [True] * 2)

    def test_tag_statements_database_before_sources_as_influxd(self):
        # influx15: SHOW TAG KEYS and SHOW TAG VALUES look the statement's database (ON, else
        # db=) up before their sources, whatever FROM names: with rp=rp2, ON nodb or db=nodb is
        # influxd's "database not found: nodb", db= empty or absent its "database name
        # required"; vigild answered data (it still does with no policy it refuses, as README)
        qs = ["SHOW TAG KEYS", "SHOW TAG VALUES WITH KEY = device", "SHOW TAG KEYS FROM a1",
              "SHOW TAG VALUES FROM a1 WITH KEY = device", "SHOW TAG KEYS FROM g.rp2.a1",
              "SHOW TAG KEYS FROM nodb..a1", "SHOW TAG VALUES FROM rp2.a1 WITH KEY = device"]
        cases = [(q, dict(db, rp="rp2")) for q in qs
                 for db in ({"db": "nodb"}, {"db": ""}, {"db": None})]
        cases += [(q, dict(db, rp="rp2")) for q in ("SHOW TAG KEYS ON nodb",
                                                    "SHOW TAG VALUES ON nodb WITH KEY = device",
                                                    "SHOW TAG KEYS ON nodb FROM g..a1")
                  for db in ({"db": "g"}, {"db": None})]
        cases += [("SHOW TAG KEYS ON nodb", dict(db="nodb", rp="rp2", chunked="true")),
                  # the data, as before: a database influxd holds, or no policy asked
                  ("SHOW TAG KEYS ON g FROM a1", dict(db="nodb", rp="rp2")),
                  ("SHOW TAG VALUES ON g FROM a1 WITH KEY = device", dict(db="", rp="rp2")),
                  ("SHOW TAG KEYS FROM a1", {"rp": "rp2"}),
                  ("SHOW TAG KEYS FROM nodb.rp2.a1", {"rp": "rp2"})]
        answers = self.compare(cases, "the tag statements' database")
        self.assertEqual(sum(b"database not found: nodb" in a[1] for a in answers), 14)
        self.assertEqual(sum(b"database name required" in a[1] for a in answers), 14)

    def test_into_and_subqueries_with_the_default_policy_as_influxd(self):
        # influx15: vigild refuses SELECT INTO and subqueries; influxd looks their sources up,
        # a source naming no database (INTO's target too) in the query's db= whatever its
        # policy: db=nodb is its "database not found: nodb", db= empty or absent its "database
        # name required"; vigild said "vigild does not support SELECT INTO" (subqueries)
        qs = ["SELECT x INTO b2 FROM a1", "SELECT x FROM (SELECT x FROM a1)",
              "SELECT x INTO b2 FROM (SELECT x FROM a1)", "SELECT x INTO b2 FROM g..a1",
              "SELECT x INTO g..b2 FROM a1", "SELECT x FROM (SELECT x FROM g..a1), a1",
              "SELECT x INTO b2 FROM g.autogen.a1; SELECT x FROM a1"]
        cases = [(q, db) for q in qs for db in ({"db": "nodb"}, {"db": ""}, {"db": None})]
        cases += [("SELECT x INTO b2 FROM a1", {"db": "nodb", "chunked": "true"}),
                  ("SELECT x INTO b2 FROM a1", {"db": "nodb", "rp": "autogen"})]
        answers = self.compare(cases, "INTO and subqueries, the default policy")
        self.assertEqual(sum(b"database not found: nodb" in a[1] for a in answers), 8)
        self.assertEqual(sum(b"database name required" in a[1] for a in answers), 12)
        # two statements, the first refused: influxd's one result, "not executed" (as vigild's)
        self.assertEqual(sum(b'[{"statement_id":0,"error":"not executed"}]' in a[1]
                             for a in answers), 3)
        # sources whose databases influxd holds: vigild refuses the statement in its own words
        for q, db in [("SELECT x INTO b2 FROM a1", "g"), ("SELECT x FROM (SELECT x FROM a1)", "g"),
                      ("SELECT x FROM (SELECT x FROM g..a1)", None),
                      ("SELECT x INTO g.autogen.b2 FROM g..a1", None)]:
            with self.subTest(q=q, db=db):
                status, body = self.ask(self.d.http_port, q, db=db)
                self.assertEqual(status, 200, body)
                self.assertIn(b'"error":"vigild does not support ', body)

    def test_unclosed_subquery_as_influxd(self):
        # influx15: a refused statement's parentheses left open at its end (a subquery, a
        # WHERE's), or one ')' too many, are influxd's parse errors, which come before its
        # lookups; vigild answered the policy's error or "vigild does not support subqueries"
        qs = ["SELECT x FROM (SELECT x FROM a1, g.rp2.a1", "SELECT x FROM (SELECT x FROM g.rp2.a1",
              "SELECT x FROM (SELECT x FROM a1", "SELECT x FROM (SELECT x FROM a1 WHERE (x > 1)",
              "SELECT x FROM (SELECT x FROM a1; SELECT x FROM a1",
              "SELECT x INTO b2 FROM a1 WHERE (x > 1", "SELECT x INTO b2 FROM g.rp2.a1 WHERE (x > 1",
              "SELECT x FROM (SELECT x FROM a1 WHERE x > 1",
              "SELECT x FROM (SELECT x FROM a1 GROUP BY time(1h)",
              "SELECT x FROM (SELECT x FROM a1 LIMIT 1", "SELECT x FROM (SELECT x FROM a1\n",
              "SELECT x FROM (SELECT x FROM a1), (SELECT x FROM a1",
              "SELECT x FROM (SELECT x FROM a1)) ", "SELECT x INTO b2 FROM a1 WHERE x > 1)"]
        same = 0
        for q in qs:
            with self.subTest(q=q):
                want, got = (self.ask(port, q) for port in (self.influxd.port, self.d.http_port))
                self.assertEqual(want[0], 400, want)
                same += got == want
                self.assertEqual(got, want)
        print("\nunclosed subqueries: %d of %d as influxd" % (same, len(qs)))

    def post_raw(self, port, body, query="", ctype="application/x-www-form-urlencoded",
                 method="POST"):
        """/query's answer to a body sent as it is (a form's by default; ctype None: no
        Content-Type), beside the URL's query string."""
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request(method, "/query" + ("?" + query if query else ""), body.encode(),
                  {"Content-Type": ctype} if ctype is not None else {})
        r = c.getresponse()
        answer = r.status, r.read()
        c.close()
        return answer

    def test_parameters_read_as_go_parse_query_as_influxd(self):
        # influx15: influxd reads every /query parameter with r.FormValue: Go's url.ParseQuery
        # (Go 1.19) drops a pair with a bad escape in its name or value, or with a ';', and
        # decodes a name's escapes; FormValue is the first pair kept, a form body's before the
        # URL's. vigild read the URL's first pair named as sent (or the body's when none).
        a1 = "q=SELECT+x+FROM+a1"
        answers = self.compare_raw(
            ["db=g&%s&rp=%%zz&rp=rp2" % a1, "db=g&%s&rp=%%zz&rp=autogen&rp=rp2" % a1,
             "db=%%zz&db=nodb&%s&rp=rp2" % a1, "d%%62=nodb&%s&rp=rp2" % a1,
             "db=g&%s&r%%70=rp2" % a1, "db=g&%s&rp=rp2;x=1" % a1, "db=g&%s&rp;x=rp2" % a1,
             "db=g&%s&rp%%zz=rp2" % a1, "db=g&q%%zz=SELECT+x+FROM+a1+LIMIT+1&%s" % a1,
             "db=g&%71=SELECT+x+FROM+a1&rp=rp2", "db=g&%s&e%%70och=ms" % a1,
             "db=g&%s&epoch=%%zz&epoch=ms" % a1, "db=g&%s&chunke%%64=true&chunk_size=1" % a1,
             "db=g&%s&chunked=%%zz&chunked=true&chunk_size=1" % a1,
             "db=g&%s&chunked=true&chunk_size=%%zz&chunk_size=1" % a1,
             "db=g&%s;SELECT+x+FROM+a1+LIMIT+1&q=SELECT+x+FROM+a1+LIMIT+1" % a1,
             "%s&db=nodb;&rp=rp2" % a1, "%s&%%64%%62=nodb&rp=rp2" % a1],
            "parameters as ParseQuery reads them")
        self.assertEqual(sum(b"not found" in a[1] for a in answers), 6)
        # a form body's pair comes before the URL's (POST), as FormValue reads them
        cases = [("db=nodb&rp=rp2&" + a1, "db=g"), ("db=%zz&rp=rp2&" + a1, "db=nodb"),
                 ("rp=rp2&" + a1, "db=nodb&q=SELECT+x+FROM+a1+LIMIT+1"),
                 ("db=g&q=SELECT+x+FROM+a1+LIMIT+1", a1),
                 ("db=g&" + a1, "epoch=ms&rp=rp2")]
        same = 0
        for body, query in cases:
            with self.subTest(body=body, query=query):
                want, got = (self.post_raw(port, body, query)
                             for port in (self.influxd.port, self.d.http_port))
                self.assertEqual(want[0], 200, want)
                same += got == want
                self.assertEqual(got, want)
        print("\nform body before the URL: %d of %d as influxd" % (same, len(cases)))

    def test_body_read_as_a_form_only_as_influxd(self):
        # review (influx15): Go's ParseForm reads a body's pairs only for a POST, PUT or PATCH of
        # Content-Type application/x-www-form-urlencoded (any case, parameters after ';'); any
        # other body influxd leaves to the URL ("missing required parameter" without one). The
        # branch read any body first; main read any body's pairs when the URL had none
        a1, show = "db=g&q=SELECT+x+FROM+a1", "q=SHOW+RETENTION+POLICIES+ON+g"
        cases = [(a1, show, "text/plain", "POST"), (a1, show, None, "POST"),
                 (a1, show, "application/json", "POST"), (a1, "", None, "POST"),
                 (a1, "", "text/plain", "POST"),
                 (a1, show, "application/x-www-form-urlencoded", "GET"), (a1, show, "", "POST"),
                 (a1, show, " Application/X-WWW-Form-Urlencoded ; charset=utf-8", "POST"),
                 (a1, show, "application/x-www-form-urlencoded", "POST")]
        answers = []
        for body, query, ctype, method in cases:
            with self.subTest(body=body, query=query, ctype=ctype, method=method):
                want, got = (self.post_raw(port, body, query, ctype, method)
                             for port in (self.influxd.port, self.d.http_port))
                answers.append(want)
                self.assertEqual(got, want)
        self.assertEqual([b'"a1"' in a[1] for a in answers], [False] * 7 + [True] * 2)
        self.assertEqual([a[0] for a in answers[3:5]], [400, 400])


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/python3
"""vigild integration: an integrator's stumbles (session 67, read67b findings 7-9), with curl on
the real binary: a declared charset other than UTF-8 is a 415 naming it; /v1/devices gives the
next page as a ready path (`next`, the id percent-encoded) beside `next_after`; a device id in
the path longer than 200 bytes is one 400 naming the limit at any length up to the URL's."""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402

UTF8_ONLY = "is not supported: vigild reads UTF-8 only (send the body in UTF-8, charset=utf-8)"


class Integrator(vt.DaemonTestCase):

    def test_charset(self):
        body = b'[{"device":"caf\xe9","ts":1,"values":{"a":1}}]'  # Latin-1
        src = os.path.join(self.d.tmp, "latin1.json")
        vt.write_file(src, body, "wb")
        for declared, named in (("charset=iso-8859-1", "iso-8859-1"),
                                ("charset=latin1", "latin1"), ('charset="UTF-16"', "UTF-16"),
                                ("Charset = windows-1252", "windows-1252")):
            for ct in ("application/json; " + declared, "text/plain;" + declared):
                r = self.d.curl("POST", "/v1/readings", "-H", "Content-Type: " + ct,
                                "--data-binary", "@" + src)
                self.assertEqual(r.status, 415, (ct, r))
                self.assertEqual(r.json()["error"], "charset '%s' %s" % (named, UTF8_ONLY))
        # UTF-8 (any case, quoted) and US-ASCII are read.
        for i, declared in enumerate(("charset=utf-8", "charset=UTF8", 'charset="utf-8"',
                                      "charset=us-ascii")):
            r = self.d.curl("POST", "/v1/readings", "-H",
                            "Content-Type: application/json; " + declared, "--data-binary",
                            '[{"device":"cs-1","ts":%d,"values":{"a":1}}]' % (i + 1))
            self.assertEqual(r.status, 200, (declared, r))
        self.assertEqual(self.d.device("cs-1")["points"], 4)

    def test_charset_params(self):
        """Session 68 (the review of int67): the Content-Type's parameters are read as RFC 9110
        writes them. Text after a value (`charset="utf-8"x`) and a second charset were taken
        (the first decided), and a `;charset=` inside another parameter's quoted value was read
        as the charset: now a 400 naming the header, a 400, and the value skipped whole."""
        syntax = "(write type/subtype; name=value, the value a token or a quoted string)"
        one = '[{"device":"cp-1","ts":%d,"values":{"a":1}}]'
        for ct, why in (('application/json; charset="utf-8"x',
                         "text after the value of parameter 'charset'"),
                        ("application/json; charset=utf-8; charset=iso-8859-1",
                         "a second parameter 'charset'"),
                        ("application/json; charset=latin1; Charset=latin1",
                         "a second parameter 'Charset'"),
                        ('application/json; charset="utf-8', "no closing quote in the value of "
                         "parameter 'charset'"),
                        ("application/json; charset=", "an empty value for parameter 'charset'"),
                        ("application/json; =utf-8", "a parameter without a name"),
                        ("application/json; charset", "no '=value' for parameter 'charset'")):
            r = self.d.curl("POST", "/v1/readings", "-H", "Content-Type: " + ct,
                            "--data-binary", one % 1)
            self.assertEqual(r.status, 400, (ct, r))
            self.assertEqual(r.json()["error"], "Content-Type '%s': %s %s" % (ct, why, syntax))
        # A quoted value is one value: its ';charset=' is not a parameter; quoted-pair is read.
        for i, ct in enumerate(('application/json; x="a;charset=latin1"',
                                'application/json; charset="utf\\-8"',
                                "application/json;;charset=utf-8;",
                                'text/plain; x="a\\"b;charset=latin1"; charset=utf-8',
                                # Another parameter's token value (the review of int68: any was
                                # "an empty value"), a browser's form, a media type parameter.
                                "application/json; foo=bar",
                                "application/json;charset=UTF-8",
                                "application/json; charset=utf-8; version=1",
                                # Two charsets both UTF-8 are read (the review of int68: a 400;
                                # some client libraries append a charset to a type holding one).
                                "application/json; charset=utf-8; Charset=UTF-8",
                                "application/json;charset=UTF-8;charset=us-ascii")):
            r = self.d.curl("POST", "/v1/readings", "-H", "Content-Type: " + ct,
                            "--data-binary", one % (i + 1))
            self.assertEqual(r.status, 200, (ct, r))
        r = self.d.curl("POST", "/v1/readings", "-H",
                        'Content-Type: application/json; x="charset=utf-8"; charset=latin1',
                        "--data-binary", one % 9)
        self.assertEqual((r.status, r.json()["error"]), (415, "charset 'latin1' " + UTF8_ONLY))
        # A long value is named cut between characters (the review of int68: cut at 64 bytes
        # mid-character, the answer ended in "\ufffd"); the header likewise at 200 bytes.
        long_cs = "a" + "\u00e9" * 40
        r = self.d.curl("POST", "/v1/readings", "-H",
                        'Content-Type: application/json; charset="%s"' % long_cs,
                        "--data-binary", one % 10)
        self.assertEqual((r.status, r.json()["error"]),
                         (415, "charset '%s' %s" % ("a" + "\u00e9" * 31, UTF8_ONLY)))
        ct = 'application/json; x="%s"x' % ("a" * 178 + "\u00e9" * 20)
        r = self.d.curl("POST", "/v1/readings", "-H", "Content-Type: " + ct,
                        "--data-binary", one % 11)
        self.assertEqual((r.status, r.json()["error"]),
                         (400, "Content-Type '%s': text after the value of parameter 'x' %s"
                          % (ct.encode()[:199].decode(), syntax)))
        self.assertEqual(self.d.device("cp-1")["points"], 9)

    def test_write_charset(self):
        """Session 68: /write (line protocol) did not read the charset: a Latin-1 body declared
        so was read as UTF-8 (a 400 "invalid device tag: is not valid UTF-8", the charset not
        named). Now a 415 as on the JSON routes, nothing stored; Telegraf's and the influx
        clients' text/plain; charset=utf-8 is read."""
        src = os.path.join(self.d.tmp, "latin1.lp")
        vt.write_file(src, b"m,device=k\xfchl a=1 1000\n", "wb")
        for path in ("/write?db=x&precision=ms", "/api/v2/write?org=o&bucket=x&precision=ms"):
            r = self.d.curl("POST", path, "-H", "Content-Type: text/plain; charset=iso-8859-1",
                            "--data-binary", "@" + src)
            self.assertEqual(r.status, 415, (path, r))
            self.assertIn("charset 'iso-8859-1' " + UTF8_ONLY, r.body.decode())
            r = self.d.curl("POST", path, "-H", "Content-Type: text/plain; charset=latin1; x",
                            "--data-binary", "@" + src)
            self.assertEqual(r.status, 415, (path, r))
        ids = [d["id"] for d in self.d.get_json("/v1/devices")["devices"]]
        self.assertEqual([i for i in ids if i.startswith("k") or i == "wc-1"], [], ids)
        # A malformed header is read as InfluxDB reads it, not at all (the JSON routes' 400 would
        # refuse a sender influxd takes).
        for i, ct in enumerate(('text/plain; charset="utf-8"x', "text/plain charset=utf-8",
                                "application/json, text/plain")):
            r = self.d.curl("POST", "/write?db=x&precision=ms", "-H", "Content-Type: " + ct,
                            "--data-binary", "m,device=wc-0 a=1 %d" % (1000 + i))
            self.assertEqual(r.status, 204, (ct, r))
        self.assertEqual(self.d.device("wc-0")["points"], 3)
        r = self.d.curl("POST", "/write?db=x&precision=ms", "-H",
                        "Content-Type: text/plain; charset=utf-8", "--data-binary",
                        "m,device=wc-1 a=1 1000")
        self.assertEqual(r.status, 204, r)
        # Another parameter beside the charset is read, not refused (the review of int68).
        r = self.d.curl("POST", "/api/v2/write?org=o&bucket=x&precision=ms", "-H",
                        "Content-Type: text/plain; version=0.0.4; charset=utf-8",
                        "--data-binary", "m,device=wc-1 a=1 2000")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.d.device("wc-1")["points"], 2)

    def test_utf16_body(self):
        """Session 68 (int67's left item): a UTF-16 JSON body without a charset failed at its
        BOM as "invalid JSON"; now a 415 naming the encoding and how it was seen, on the JSON
        routes and /write alike, nothing stored."""
        text = '[{"device":"u16","ts":1,"values":{"a":1}}]'
        for name, data, enc, how in (
                ("le-bom", b"\xff\xfe" + text.encode("utf-16-le"), "UTF-16LE",
                 "its byte order mark FF FE"),
                ("be-bom", b"\xfe\xff" + text.encode("utf-16-be"), "UTF-16BE",
                 "its byte order mark FE FF"),
                ("le", text.encode("utf-16-le"), "UTF-16LE", "a 00 byte after its first character"),
                ("be", text.encode("utf-16-be"), "UTF-16BE", "a 00 byte before its first character"),
                ("utf32", text.encode("utf-32"), "UTF-32LE", "its byte order mark FF FE 00 00"),
                # Without a mark (the review of int68: UTF-32LE was named UTF-16LE, and UTF-32BE
                # was "invalid JSON").
                ("utf32le", text.encode("utf-32-le"), "UTF-32LE",
                 "three 00 bytes after its first character"),
                ("utf32be", text.encode("utf-32-be"), "UTF-32BE",
                 "three 00 bytes before its first character")):
            src = os.path.join(self.d.tmp, name + ".json")
            vt.write_file(src, data, "wb")
            want = "request body looks like %s (%s): vigild reads UTF-8 only (send the body in " \
                   "UTF-8, charset=utf-8)" % (enc, how)
            for method, path in (("POST", "/v1/readings"), ("PUT", "/v1/devices/u16"),
                                 ("POST", "/write?db=x")):
                r = self.d.curl(method, path, "-H", "Content-Type: application/json",
                                "--data-binary", "@" + src)
                self.assertEqual(r.status, 415, (name, path, r))
                self.assertIn(want, r.body.decode(), (name, path))
        ids = [d["id"] for d in self.d.get_json("/v1/devices")["devices"]]
        self.assertNotIn("u16", ids)

    def test_devices_next_path(self):
        odd = "line 1/pump #2?&x=\u00e9"
        rows = [{"device": name, "ts": 1, "values": {"a": 1}} for name in ("a-0", odd, "z-9")]
        self.assertEqual(self.d.post_json(rows).status, 200)
        seen, path, pages = [], "/v1/devices?limit=1", 0
        while path and pages < 10:
            pages += 1
            doc = self.d.get_json(path)
            seen += [d["id"] for d in doc["devices"]]
            if doc["next"] is None:
                self.assertIsNone(doc["next_after"])
                break
            self.assertEqual(doc["next_after"], seen[-1])
            path = doc["next"]
        self.assertEqual(seen, [d["id"] for d in self.d.get_json("/v1/devices")["devices"]])
        self.assertIn(odd, seen)
        k = seen.index(odd) + 1
        doc = self.d.get_json("/v1/devices?limit=%d" % k)
        self.assertEqual(doc["next"], "/v1/devices?after=line%%201%%2Fpump%%20%%232%%3F%%26x%%3D"
                                      "%%C3%%A9&limit=%d" % k)

    def test_long_id(self):
        self.assertEqual(self.d.post_json({"device": "d" * 200, "ts": 1, "values": {"a": 1}})
                         .status, 200)
        st, _, body = self.d.get("/v1/devices/%s/status" % ("d" * 200))
        self.assertNotEqual(st, 400, body)  # 200 bytes is an id
        for n in (201, 400, 600, 700, 2000, 2047, 2100, 8000, 30000):
            for path in ("/v1/devices/%s/status" % ("d" * n), "/v1/devices/%s" % ("d" * n),
                         "/v1/devices/%s/model/weights" % ("%64" * min(n, 8000))):
                st, _, body = self.d.get(path)
                self.assertEqual(st, 400, (n, body[:200]))
                self.assertEqual(vt.loads(body)["error"],
                                 "device id in the path: longer than 200 bytes", n)


if __name__ == "__main__":
    vt.main()

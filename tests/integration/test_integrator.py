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

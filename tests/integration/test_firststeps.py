#!/usr/bin/python3
"""vigild integration: an operator's first stumbles (session 66, task api66, from read66b's
black-box pass; docs/reliability.md "An operator's first stumbles (session 66)").

PutRemoves: a PUT of a device's attributes replaces them all, so {"group": "g1"} on a device
with limits dropped its limits, and their alarms, answered 200 in silence; the answer now warns,
naming each attribute the PUT removed (one sent as null was removed on purpose: no warning).

SelectStar: SELECT * FROM one device names its fields, each as SELECT takes it (quoted when odd).

ConfigPaths: a relative http.auth_file (or tls_cert, tls_key) in the config file was looked for in
the working directory, under systemd /: "auth_file = tokens" beside the file worked from its
folder and failed as a service. It is now the config file's folder, and the errors name the
absolute path looked at (--auth-file's relative path stays the working directory's, named in its
error).

Python 3 standard library.
"""

import os
import signal
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402


def removed(*names):
    """The warning of a PUT that removed the attributes names."""
    it = "them" if len(names) > 1 else "it"
    return ("this PUT removed the device's %s %s (a PUT replaces every attribute: send %s again "
            "to keep %s, or as null to remove %s without this warning)"
            % ("attributes" if len(names) > 1 else "attribute",
               ", ".join("'%s'" % n for n in names), it, it, it))


class PutRemoves(vt.DaemonTestCase):

    def put(self, dev, body=None):
        args = ["-d", body] if body is not None else []
        return self.d.curl("PUT", "/v1/devices/" + dev, *args)

    def test_put_names_what_it_removed(self):
        r = self.put("fs-1", '{"limits":{"t":{"max":9}},"site":"north"}')
        self.assertEqual(r.status, 201, r)
        self.assertNotIn("warnings", r.json())
        r = self.put("fs-1", '{"group":"g1"}')  # read66b's: the limits went in silence
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["attrs"], {"group": "g1"})
        self.assertEqual(r.json()["warnings"], [removed("limits", "site")])
        r = self.put("fs-1", '{"group":"g1","limits":null}')  # null: nothing removed
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("warnings", r.json())
        # Limits held as null had nothing to lose (review of api66: this warned "removed the
        # device's attribute 'limits'" of a null).
        r = self.put("fs-1", '{"group":"g1"}')
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("warnings", r.json())
        self.assertEqual(r.json()["attrs"], {"group": "g1"})
        r = self.put("fs-1", '{}')  # an empty object is a body: it removes every attribute
        self.assertEqual(r.json()["warnings"], [removed("group")])
        self.assertEqual(r.json()["attrs"], {})
        self.assertEqual(self.put("fs-1", '{"site":"south"}').status, 200)
        r = self.put("fs-1")  # no body: the attributes are kept
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("warnings", r.json())
        self.assertEqual(r.json()["attrs"], {"site": "south"})

    def test_reals_as_sent(self):
        # Attribute and limit numbers come back as they were sent (read68b: jansson's 17 digits
        # answered 0.1 as 0.10000000000000001 and a limit of 3.3 as 3.2999999999999998), and
        # still exactly (0.1 + 0.2 keeps its 17th digit).
        body = ('{"limits":{"t":{"min":0.1,"max":3.3}},"k":[0.1,1e-07,100.0,1e+16,'
                '0.30000000000000004,-2.5e-05,5e-324,1.7976931348623157e+308,7]}')
        for r in (self.put("fs-r", body), self.d.curl("GET", "/v1/devices/fs-r")):
            self.assertIn(b'"k":[0.1,1e-07,100.0,1e+16,0.30000000000000004,-2.5e-05,5e-324,'
                          b'1.7976931348623157e+308,7]', r.body)
            self.assertIn(b'"limits":{"t":{"max":3.3,"min":0.1}}', r.body)

    def test_removed_beside_the_limit_warnings(self):
        # A device that has sent readings: the limits' own warnings follow this one.
        self.assertEqual(self.put("fs-2", '{"group":"g2"}').status, 201)
        self.assertEqual(self.d.post_json({"device": "fs-2", "ts": 5, "values": {"t": 1}})
                         .status, 200)
        r = self.put("fs-2", '{"limits":{"zz":{"max":90}}}')
        self.assertEqual(r.status, 200, r)
        w = r.json()["warnings"]
        self.assertEqual(len(w), 2, w)
        self.assertEqual(w[0], removed("group"))
        self.assertTrue(w[1].startswith("limits.zz: "), w)
        self.assertEqual(self.d.device("fs-2")["attrs"], {"limits": {"zz": {"max": 90}}})

    def test_long_names_whole(self):
        # The warnings name attributes and channels whole (session 67: an attribute's name was
        # cut at 64 bytes in the removal warning).
        attr, dev, ch = "attr-" + "x" * 150, "fs-" + "d" * 190, "c" * 200
        body = '{"%s":1,"group":"%s"}' % (attr, "g" * 200)
        self.assertEqual(self.put(dev, body).status, 201)
        self.assertEqual(self.d.post_json({"device": dev, "ts": 5, "values": {"t": 1}})
                         .status, 200)
        r = self.put(dev, '{"limits":{"%s":{"max":90}}}' % ch)
        self.assertEqual(r.status, 200, r)
        w = r.json()["warnings"]
        self.assertEqual(len(w), 2, w)
        self.assertIn(w[0], (removed(attr, "group"), removed("group", attr)))
        self.assertEqual(w[1], "limits.%s: device '%s' has no channel '%s' yet (the limit "
                               "applies when one comes)" % (ch, dev, ch))

    def test_utf8_attribute_whole(self):
        # A multi-byte attribute name is named whole (main before session 67: cut at byte 64,
        # inside its 30th character, which the answer wrote as \ufffd; read67a 6).
        attr = "attr-" + "\u00e4" * 75
        self.assertEqual(self.put("fs-3", '{"%s":1}' % attr).status, 201)
        r = self.put("fs-3", '{}')
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["warnings"], [removed(attr)])


class SelectStar(vt.DaemonTestCase):
    """SELECT * FROM one device names its fields as SELECT takes them (review of api66: a field
    "a, b" was listed bare, read as two)."""

    def test_odd_field_names_quoted(self):
        self.assertEqual(self.d.post_json({"device": "odd-1", "ts": 5, "values": {
            "temp": 1, "a, b": 2, 'say "hi"': 3}}).status, 200)
        r = self.d.curl("POST", "/query", "--data-urlencode", 'q=SELECT * FROM "odd-1"')
        self.assertEqual(r.status, 200, r)
        err = r.json()["results"][0]["error"]
        self.assertTrue(err.startswith("vigild does not support SELECT *: name the fields "
                                       "(device 'odd-1' has "), err)
        for name in ("temp", '"a, b"', '"say \\"hi\\""'):
            self.assertIn(name, err)
        self.assertEqual(len(err), len("vigild does not support SELECT *: name the fields (device "
                                       "'odd-1' has temp, \"a, b\", \"say \\\"hi\\\"\")"), err)


TOKEN = "firststeps-read-token-AAAAAAAA"


class ConfigPaths(unittest.TestCase):

    def setUp(self):
        self.top = vt.mkdtemp()  # the working directory: no tokens here
        self.conf_dir = os.path.join(self.top, "conf")
        os.mkdir(self.conf_dir)
        self.conf = os.path.join(self.conf_dir, "vigild.conf")

    def write_conf(self, http):
        vt.write_file(self.conf, "[http]\n" + http)

    def check(self, *args, config=None):
        """vigild --check-config run in self.top: (exit code, stdout + stderr)."""
        p = subprocess.run([vt.VIGILD, "--config", config or self.conf, "--data-dir",
                            os.path.join(self.top, "data"), "--check-config"] + list(args),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30, cwd=self.top)
        return p.returncode, p.stdout

    def tokens(self):
        path = vt.write_file(os.path.join(self.conf_dir, "tokens"), "read %s\n" % TOKEN)
        os.chmod(path, 0o600)
        return path

    def test_auth_file_beside_the_config(self):
        self.tokens()
        self.write_conf("auth_file = tokens\n")
        # From another folder (systemd's is /): main looked for ./tokens there and refused.
        self.assertEqual(self.check(), (0, "configuration ok\n"))
        self.assertEqual(self.check(config="conf/vigild.conf"), (0, "configuration ok\n"))
        self.write_conf("auth_file = ./tokens\n")
        self.assertEqual(self.check(), (0, "configuration ok\n"))
        # A real start, with the config file's path relative to the working directory: the
        # token works, and the log names the file read.
        d = vt.Vigild(config="conf/vigild.conf", stream=False,
                      preexec_fn=lambda: os.chdir(self.top))
        try:
            d.start()
            self.assertEqual(d.curl("GET", "/v1/devices").status, 401)
            r = d.curl("GET", "/v1/devices", "-H", "Authorization: Bearer " + TOKEN)
            self.assertEqual(r.status, 200, r)
            self.assertIn("authentication: 1 tokens from %s/tokens" % self.conf_dir, d.log())
            d.stop()
        finally:
            d.cleanup()

    def test_reload_reads_the_same_file(self):
        # SIGHUP re-reads the config file given by a relative --config path: auth_file is the
        # same absolute path again (the working directory is not the config file's folder), so
        # a token rotated beside the config file is taken (review of api66).
        self.tokens()
        self.write_conf("auth_file = tokens\n")
        d = vt.Vigild(config="conf/vigild.conf", stream=False,
                      preexec_fn=lambda: os.chdir(self.top))
        try:
            d.start()
            new = "firststeps-rotated-token-BBBBBBBB"
            vt.write_file_atomic(os.path.join(self.conf_dir, "tokens"), "read %s\n" % new)
            os.chmod(os.path.join(self.conf_dir, "tokens"), 0o600)
            d.proc.send_signal(signal.SIGHUP)
            bearer = lambda t: d.curl("GET", "/v1/devices", "-H", "Authorization: Bearer " + t)
            vt.wait_for("the rotated token", lambda: bearer(new).status == 200, 30, d.log)
            self.assertEqual(bearer(TOKEN).status, 401)
            self.assertEqual(d.log().count("authentication: 1 tokens from %s/tokens"
                                           % self.conf_dir), 2, d.log())
            d.stop()
        finally:
            d.cleanup()

    def test_dotdot_and_symlink(self):
        self.tokens()
        self.write_conf("auth_file = tokens\n")
        # '..' in the config file's path: its folder all the same.
        up = os.path.join("..", os.path.basename(self.top), "conf", "vigild.conf")
        self.assertEqual(self.check(config=up), (0, "configuration ok\n"))
        # A symlink to the config file: the folder is the link's, not its target's (as
        # Prometheus reads it); the error names the path looked at.
        link = os.path.join(self.top, "linked.conf")
        os.symlink(self.conf, link)
        rc, out = self.check(config=link)
        self.assertEqual(rc, 1, out)
        self.assertIn("%s/tokens: cannot open: No such file or directory" % self.top, out)

    def test_deep_folder_without_relative_paths(self):
        # A config file in a folder deeper than a setting's room (511 bytes) naming no relative
        # path loads as on main (review of api66: it was refused, "the config file's folder is
        # too long a path", though no path was taken from it).
        deep = self.top
        for i in range(6):
            deep = os.path.join(deep, "%d" % i * 100)
        os.makedirs(deep)
        conf = os.path.join(deep, "vigild.conf")
        vt.write_file(conf, "[http]\nauth_file = %s\n" % self.tokens())
        self.assertEqual(self.check(config=conf), (0, "configuration ok\n"))
        # A relative one there is refused, naming the folder.
        vt.write_file(conf, "[http]\nauth_file = tokens\n")
        rc, out = self.check(config=conf)
        self.assertEqual(rc, 1, out)
        self.assertTrue(out.startswith("vigild: a relative http.auth_file, tls_cert or tls_key is "
                                       "taken from the config file's folder, a path longer than "
                                       "511 bytes: give an absolute one ("), out)

    def test_errors_name_the_path_looked_at(self):
        self.write_conf("auth_file = missing\n")
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assertIn("http.auth_file (%s line 2): %s/missing: cannot open: No such file or "
                      "directory" % (self.conf, self.conf_dir), out)
        self.write_conf("tls_cert = cert.pem\ntls_key = /abs/key.pem\n")
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assertIn("http.tls_cert: %s/cert.pem: cannot open" % self.conf_dir, out)
        # --auth-file's relative path is the working directory's: its error names that.
        self.write_conf("")
        rc, out = self.check("--auth-file", "tokens")
        self.assertEqual(rc, 1, out)
        self.assertIn("--auth-file: tokens: cannot open: No such file or directory (looked in "
                      "the working directory %s)" % self.top, out)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/python3
"""vigild integration: the command line and the configuration file: --version, --help,
--check-config, errors naming FILE:LINE and the reason, flags overriding the file. Settings
taking effect, reloads and the documentation checks: test_config_effect.py; the data directory's
refusals at the start and in --check-config: test_config_datadir.py."""

import errno
import os
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402


CWD = vt.mkdtemp()  # vigild runs here, so a default ./vigil-data could only land in a temp dir


def run(*args, timeout=30):
    p = subprocess.run([vt.VIGILD] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout, cwd=CWD)
    return p.returncode, p.stdout, p.stderr


def thread_fields(d, pick):
    """{thread name: set of pick(fields)} over vigild's threads, fields being /proc's stat
    fields after pid and comm (fields[0] is field 3, the state)."""
    out = {}
    for t in os.listdir("/proc/%d/task" % d.proc.pid):
        with open("/proc/%d/task/%s/comm" % (d.proc.pid, t)) as f:
            name = f.read().strip()
        with open("/proc/%d/task/%s/stat" % (d.proc.pid, t)) as f:
            st = f.read().rsplit(")", 1)[1].split()
        out.setdefault(name, set()).add(pick(st))
    return out


class CommandLine(unittest.TestCase):

    def setUp(self):
        self.tmp = vt.mkdtemp()

    def conf(self, text, name="vigild.conf"):
        return vt.write_file(os.path.join(self.tmp, name), text)

    def test_version(self):
        rc, out, err = run("--version")
        self.assertEqual(rc, 0, err)
        # "vigild 0.1.0 (commit 0123456789ab, Release)" since session 59 (the form asserted by
        # version_parts); a build type always (CMakeLists.txt sets one).
        self.assertNotEqual(vt.version_parts(out)[2], "", out)

    def test_help(self):
        rc, out, err = run("--help")
        self.assertEqual(rc, 0, err)
        for flag in ("--config", "--data-dir", "--http", "--stream", "--log-level",
                     "--check-config", "--version", "--help"):
            self.assertIn(flag, out)

    def test_unknown_option(self):
        rc, out, err = run("--no-such-flag")
        self.assertNotEqual(rc, 0)
        self.assertIn("usage", err)
        rc, out, err = run("stray-argument")
        self.assertNotEqual(rc, 0)
        self.assertIn("stray-argument", err)

    def test_check_config_shipped_file(self):
        path = os.path.join(vt.REPO, "etc", "vigild.conf")
        if not os.path.exists(path):
            self.skipTest("etc/vigild.conf not written yet")
        rc, out, err = run("--check-config", "--config", path)
        self.assertEqual(rc, 0, err)
        self.assertIn("ok", out)

    def test_check_config_valid(self):
        path = self.conf("""
; a comment
# another comment
[daemon]
data_dir = %s
log_level = warn

[http]
listen = 127.0.0.1:0
threads = 2
max_body_bytes = 1048576
max_batch = 5000

[stream]
listen = off

[influx]
device_tag = host

[storage]
sync = normal
queue_max_readings = 100000
max_batch_delay_ms = 0
""" % os.path.join(self.tmp, "never-created"))
        rc, out, err = run("--check-config", "--config", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), "configuration ok")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "never-created")),
                         "--check-config must not create the data directory")
        rc, out, err = run("--check-config")
        self.assertEqual(rc, 0, err)

    def bad(self, text, line, *words):
        path = self.conf(text)
        data = os.path.join(self.tmp, "data")
        for extra in (["--check-config"], ["--data-dir", data, "--http", "127.0.0.1:0",
                                           "--stream", "off"]):
            rc, out, err = run("--config", path, *extra)
            self.assertNotEqual(rc, 0, "accepted:\n%s\n%s" % (text, err))
            self.assertIn("%s:%d:" % (path, line), err)
            for w in words:
                self.assertIn(w, err)
            self.assertFalse(os.path.exists(os.path.join(data, "vigil.db")),
                             "a database was created despite the bad configuration")

    def test_unknown_key(self):
        self.bad("[http]\nlisten = 127.0.0.1:0\nthreds = 4\n", 3, "threds", "unknown key")
        self.bad("[http]\nretention = 30d\n", 2, "[http] (a key of [storage])")  # cfgctl
        self.bad("[daemon]\nmax_connections = 9\n", 2, "(a key of [http] or [stream])")

    def test_unknown_section(self):
        # Named at the section's line, with keys or without: inih calls vigild for keys only,
        # so a misspelt section left empty used to pass.
        self.bad("[daemon]\nlog_level = info\n\n[htpp]\nlisten = 127.0.0.1:0\n", 4,
                 "unknown section [htpp]")
        self.bad("[daemon]\nlog_level = info\n[retetion]\n", 3, "unknown section [retetion]")
        self.bad("[daemon]\n[retetion]\n\n[http]\nthreads = 2\n", 2,
                 "unknown section [retetion]")
        self.bad("threads = 2\n[http]\n", 1, "'threads' comes before any [section]")

    def test_key_given_twice(self):
        self.bad("[http]\nthreads = 2\nthreads = 3\n", 3,
                 "http.threads is set twice (first on line 2)")
        self.bad("[http]\nthreads = 2\n[model]\nhidden = 8\n[http]\nthreads = 3\n", 6,
                 "http.threads is set twice (first on line 2)")

    def test_line_too_long(self):
        # inih reads 200-byte lines: a longer one was cut in two, the rest parsed as the next
        # line (here "unknown key 'ashboard-05...'" on line 3, whose own key is valid), then
        # refused at 198 characters though http.cors_origins holds 1,023 (cfg4). A line now
        # holds 4,096 characters, every string setting's longest value with its key.
        origins = ",".join("https://dashboard-%02d.plant.example" % i for i in range(25))
        origins += ",https://" + "x" * (1023 - len(origins) - 9)
        self.assertEqual(len(origins), 1023)
        # 511 bytes in names of at most 200 (NAME_MAX is 255), the parent made: --check-config
        # also checks that the start could create the directory.
        data = os.path.join(self.tmp, "d" * 200, "e" * 200)
        data = os.path.join(data, "f" * (511 - len(data) - 1))
        self.assertEqual(len(data), 511)
        os.makedirs(os.path.dirname(data))
        path = self.conf("[daemon]\ndata_dir = %s ; the longest\n[http]\ncors_origins = %s\n"
                         "threads = 2\n" % (data, origins))
        rc, out, err = run("--check-config", "--config", path)
        self.assertEqual(rc, 0, err)
        # One byte more than the field holds: the setting's own error, at its line.
        self.bad("[http]\ncors_origins = %sx\nthreads = 2\n" % origins, 2,
                 "http.cors_origins: value must be 1 to 1023 characters")
        self.bad("[daemon]\ndata_dir = %sx\n" % data, 2,
                 "daemon.data_dir: value must be 1 to 511 characters")
        # A longer line: the line's error, never a cut value or the tail as a key.
        self.bad("[http]\nthreads = 2\ncors_origins = %s\n" % ("x" * 4096), 3,
                 "line longer than 4096 characters")

    def test_line_edges(self):
        # review: a NUL byte is refused at its line (fgets stopped the line there: the rest of
        # it was dropped unseen, and a long line behind a NUL escaped the length check, its
        # tail parsed as the next line).
        self.bad("[http]\nthreads = 2\0 junk\n", 2, "a NUL byte")
        self.bad("[http]\nthreads = 2\n\0[nope]\n", 3, "a NUL byte")
        self.bad("[http]\n;\0%s\n[nope]\n" % ("c" * 5000), 2, "a NUL byte")
        # The 4,096 characters hold with a CRLF line end as with LF, and for a last line
        # without one (at 198: a 199-character last line passed, a 198-character CRLF line did
        # not).
        line = "; " + "c" * 4094
        for text in ("[http]\r\n%s\r\nthreads = 2\r\n" % line, "[http]\n%s\n" % line,
                     "[http]\n%s" % line, "[http]\n%s\r" % line):
            with self.subTest(text=text[:12]):
                rc, out, err = run("--check-config", "--config", self.conf(text))
                self.assertEqual(rc, 0, err)
        self.bad("[http]\n%sc" % line, 2, "line longer than 4096 characters")
        self.bad("[http]\r\n%sc\r\n" % line, 2, "line longer than 4096 characters")
        # Blanks inside the brackets are part of the name (README).
        self.bad("[ http ]\nthreads = 2\n", 1, "unknown section [ http ]")

    def test_number_forms(self):
        # cfg4: strtoll took "+4", " 4" and "010" (ten, where C or a shell reads eight). A
        # number is plain decimal: digits, a '-' for the negative; no '+', no leading zeros.
        for key, value, word in [("http.threads", "+4", "without a '+' sign"),
                                 ("http.threads", "010", "no leading zeros"),
                                 ("http.threads", "04", "no leading zeros"),
                                 ("storage.max_batch_delay_ms", "00", "no leading zeros"),
                                 ("model.lstm_min_rows", "+600", "without a '+' sign"),
                                 ("http.max_body_bytes", "0x100000", "is not an integer"),
                                 ("storage.retention", "+30d", "without a '+' sign"),
                                 ("storage.retention", "030d", "no leading zeros"),
                                 ("storage.retention", "00", "no leading zeros"),
                                 ("http.listen", "127.0.0.1:08470", "no leading zeros in the port"),
                                 ("stream.listen", "127.0.0.1:+8471", "the port without a '+' sign")]:
            sec, k = key.split(".")
            with self.subTest(key=key, value=value):
                self.bad("[%s]\n%s = %s\n" % (sec, k, value), 2, key, "'%s'" % value, word)
        path = self.conf("[http]\nthreads = 10\nlisten = 127.0.0.1:0\n[storage]\n"
                         "max_batch_delay_ms = 0\nretention = 10d\n[model]\nlstm_min_rows = 0\n")
        rc, out, err = run("--check-config", "--config", path)
        self.assertEqual(rc, 0, err)
        # The flags that take a number (the ports of --http and --stream) say the same, which
        # vigild(8) promised ("an error saying which") and, until session 41's explore, the
        # ports did not say: only "is not ADDR:PORT".
        for flag, value, word in [("--http", "127.0.0.1:0847", "no leading zeros in the port"),
                                  ("--stream", "127.0.0.1:0847", "no leading zeros in the port"),
                                  ("--http", "[::1]:+8470", "the port without a '+' sign"),
                                  ("--stream", "127.0.0.1:+8471", "the port without a '+' sign")]:
            with self.subTest(flag=flag, value=value):
                rc, out, err = run("--check-config", flag, value)
                self.assertNotEqual(rc, 0, err)
                self.assertIn("%s: " % flag, err)
                self.assertIn("is not ADDR:PORT", err)
                self.assertIn(word, err)
        # A port that is no number at all gets no such hint, nor an [IPv6 address] without a
        # port, whose last group only looks like one (a review found "[::01]" told "no leading
        # zeros in the port").
        for value in ("127.0.0.1:0x1f", "127.0.0.1:08x", "[::01]", "[::1:080"):
            with self.subTest(value=value):
                rc, out, err = run("--check-config", "--http", value)
                self.assertNotEqual(rc, 0, err)
                self.assertIn("is not ADDR:PORT", err)
                self.assertNotIn("leading zeros", err)

    def test_words_any_case(self):
        # cfg4: the booleans and storage.sync took any case, model.kind, serving_precision and
        # log_level only lower case ("kind = LSTM" stopped the start). Every word any case.
        path = self.conf("[daemon]\nlog_level = WARN\n[model]\nkind = Linear\n"
                         "serving_precision = FLOAT32\nlstm_min_rows = Auto\n"
                         "[pipeline]\nevent_continue_within = AUTO\n[storage]\nsync = Normal\n")
        rc, out, err = run("--check-config", "--config", path)
        self.assertEqual(rc, 0, err)
        rc, out, err = run("--check-config", "--log-level", "Debug")
        self.assertEqual(rc, 0, err)
        # Explore (session 41): "off", the stream's word, took lower case only ("--stream OFF"
        # was "is not ADDR:PORT").
        for flags in (["--stream", "OFF"], ["--config", self.conf("[stream]\nlisten = Off\n")]):
            with self.subTest(flags=flags):
                rc, out, err = run("--check-config", *flags)
                self.assertEqual(rc, 0, err)
        self.bad("[model]\nkind = LSTM2\n", 2, "model.kind: 'LSTM2' is not auto, lstm or linear")

    def test_c1_controls_and_invalid_utf8(self):
        # cfg4: the C0 controls were refused (cfgctl), not U+0080..U+009F nor bytes that are
        # not UTF-8, which reached paths, origins and the log. Both named at FILE:LINE with
        # the key, also from a flag; valid UTF-8 passes.
        for value, word in [(b"/srv/a\xc2\x85b", "control character (U+0085)"),
                            (b"/srv/a\xc2\x9b", "control character (U+009B)"),
                            (b"/srv/a\xffb", "not valid UTF-8 (byte 0xff at offset 6)"),
                            (b"/srv/caf\xe9", "not valid UTF-8 (byte 0xe9 at offset 8)"),
                            (b"/srv/\xc0\xaf", "not valid UTF-8"),          # overlong '/'
                            (b"/srv/\xed\xa0\x80", "not valid UTF-8"),      # a surrogate
                            (b"/srv/\xf4\x90\x80\x80", "not valid UTF-8")]:  # > U+10FFFF
            with self.subTest(value=value):
                path = os.path.join(self.tmp, "c1.conf")
                with open(path, "wb") as f:
                    f.write(b"[daemon]\nlog_level = info\ndata_dir = " + value + b"\n")
                rc, out, err = run("--check-config", "--config", path)
                self.assertNotEqual(rc, 0, err)
                self.assertIn("%s:3: daemon.data_dir: " % path, err)
                self.assertIn(word, err)
        rc, out, err = run("--check-config", "--data-dir", "/srv/a\u0085b")
        self.assertNotEqual(rc, 0, err)
        self.assertIn("--data-dir: daemon.data_dir: the value has a control character (U+0085)",
                      err)
        path = self.conf("[daemon]\ndata_dir = %s\n" % os.path.join(self.tmp, "café-données"))
        rc, out, err = run("--check-config", "--config", path)
        self.assertEqual(rc, 0, err)

    def test_zero_durations(self):
        # cfg4: "0" was off and "0s" refused; 0 with any unit is off, as 0 and "" are.
        for v in ("0", "0s", "0m", "0h", "0d", "0w", ""):
            with self.subTest(value=v):
                path = self.conf("[storage]\nretention = %s\nsnapshot_every = %s\n" % (v, v))
                rc, out, err = run("--check-config", "--config", path)
                self.assertEqual(rc, 0, err)
        self.bad("[storage]\nretention = 0ms\n", 2, "storage.retention: '0ms' is not 0 (off)")

    def test_empty_values(self):
        # An empty value is refused for every kind but the optional strings (auth_file,
        # tls_*, cors_origins: empty is off) and the durations (empty is 0, off).
        for key, word in [("daemon.data_dir", "1 to 511 characters"),
                          ("influx.device_tag", "1 to 63 characters"),
                          ("http.threads", "'' is not an integer"),
                          ("model.lstm_min_rows", "'' is not auto or an integer"),
                          ("http.metrics_auth", "'' is not true or false"),
                          ("http.listen", "'' is not ADDR:PORT"),
                          ("stream.listen", "'' is not ADDR:PORT"),
                          ("daemon.log_level", "'' is not debug"),
                          ("storage.sync", "'' is not 'full' or 'normal'"),
                          ("model.kind", "'' is not auto"),
                          ("model.serving_precision", "'' is not float16")]:
            sec, k = key.split(".")
            with self.subTest(key=key):
                self.bad("[%s]\n%s =\n" % (sec, k), 2, key, word)
        path = self.conf("[http]\nauth_file =\ncors_origins =\ntls_cert =\ntls_key =\n"
                         "[storage]\nretention =\nsnapshot_every =\n")
        rc, out, err = run("--check-config", "--config", path)
        self.assertEqual(rc, 0, err)

    def test_file_forms(self):
        # A UTF-8 byte order mark, CRLF line ends, blanks and indented lines (each a line of
        # its own: inih alone takes an indented line after a key as the rest of that key's
        # value, here "daemon.log_level: '[http] ; api' is not ..."), a ';' comment after a
        # value.
        path = self.conf("\ufeff[daemon]\r\n  log_level = warn   \r\n\r\n  [http] ; api\r\n"
                         "  listen = 127.0.0.1:0 ; loopback\r\n  threads = 2\r\n"
                         "[stream]\r\n\tlisten = off\r\n")
        rc, out, err = run("--check-config", "--config", path)
        self.assertEqual(rc, 0, err)
        # A '#' after a blank in a value is refused at its line (README).
        self.bad("[http]\nthreads = 2 # two\n", 2, "http.threads: '2 # two'")

    def test_hash_after_a_blank(self):
        # inih keeps a '#' after a value in the value: a string setting took it silently
        # (main: data_dir "/var/lib/vigil  # SSD", `configuration ok`). Every string setting,
        # and a value that is only a comment, is refused naming the setting and the line.
        data = os.path.join(self.tmp, "d")
        cases = [("daemon", "data_dir", data + "  # SSD"),
                 ("daemon", "log_level", "warn # quieter"),
                 ("http", "listen", "127.0.0.1:0\t# loopback"),
                 ("http", "auth_file", "# none"),
                 ("http", "tls_cert", "/etc/vigil/c.pem # cert"),
                 ("http", "tls_key", "/etc/vigil/k.pem # key"),
                 ("http", "cors_origins", "https://a.example # dashboard"),
                 ("stream", "listen", "off # no stream"),
                 ("influx", "device_tag", "host # the tag"),
                 ("storage", "retention", "30d # a month")]
        for sec, key, value in cases:
            with self.subTest(key=key):
                self.bad("[%s]\n; a comment\n%s = %s\n" % (sec, key, value), 3,
                         "%s.%s: '%s' has a '#' after a blank" % (sec, key, value),
                         "line of its own")
        # A '#' with no blank before it stays part of the value; ';' after a blank and whole
        # '#' lines stay comments; an unknown key is named as such first.
        os.makedirs(data, exist_ok=True)  # a#b's parent: --check-config checks it could be made
        path = self.conf("[daemon]\n# data\ndata_dir = %s/a#b ; #1\n[http]\n"
                         "cors_origins = ; # none\n" % data)
        rc, out, err = run("--check-config", "--config", path)
        self.assertEqual(rc, 0, err)
        self.bad("[http]\nthreds = 4 # four\n", 2, "unknown key 'threds'")

    def test_malformed_section_header(self):
        # cfg3: a section line that is not '[name]' plus at most a comment is named as such,
        # not as an unknown section (main: "unknown section [a ;b]" where inih sees a syntax
        # error, "[a;b]" likewise, and "[http] threads = 2" passed with the key dropped unseen).
        cases = [("[daemon]\n[a ;b]\n", 2, "';' inside the brackets"),
                 ("[a;b]\nthreads = 2\n", 1, "';' inside the brackets"),
                 ("[ht#tp]\n", 1, "'#' inside the brackets"),
                 ("[http] threads = 2\n", 1, "'threads = 2' after ']'"),
                 ("[http]]\n", 1, "']' after ']'"),
                 ("[http\nthreads = 2\n", 1, "no closing ']'"),
                 ("[daemon]\n[]\n", 2, "no name between '[' and ']'")]
        for text, line, word in cases:
            with self.subTest(text=text):
                path = self.conf(text)
                rc, out, err = run("--check-config", "--config", path)
                self.assertEqual(rc, 1, err)
                self.assertIn("%s:%d: malformed section header: %s" % (path, line, word), err)
                self.assertNotIn("unknown section", err)
        # A well-formed unknown section stays one; a comment after the ']' is fine.
        self.bad("[daemon]\n[htpp] ; api\n", 2, "unknown section [htpp]")
        path = self.conf("[http] ; api\nthreads = 2\n[stream]# s\nlisten = off\n")
        rc, out, err = run("--check-config", "--config", path)
        self.assertEqual(rc, 0, err)

    def test_comment_after_a_typo_key(self):
        # cfg3: the unknown key is the fault, named without the comment, wherever the comment
        # is (main: "unknown key 'retetion_days # keep'" for the second form).
        for text in ("[storage]\nretetion_days = 3 # keep\n",
                     "[storage]\nretetion_days # keep = 3\n",
                     "[storage]\nretetion_days = 3 ; keep\n"):
            with self.subTest(text=text):
                path = self.conf(text)
                rc, out, err = run("--check-config", "--config", path)
                self.assertEqual(rc, 1, err)
                self.assertEqual(err, "vigild: %s:2: unknown key 'retetion_days' in section "
                                 "[storage]\n" % path)
        # A known key with a '#' comment before its '=' is refused for the '#'.
        self.bad("[storage]\nretention # keep = 3d\n", 2,
                 "storage.retention: a '#' after a blank before the '='", "line of its own")

    def test_flag_values(self):
        # cfg3: a flag's value is taken literally; empty, or with a line break or another
        # control character, it is refused naming the flag, exit 2 (main: --auth-file '' and
        # --data-dir 'a<newline>b' passed --check-config).
        for flag in ("--config", "--data-dir", "--http", "--stream", "--log-level",
                     "--auth-file", "--restore"):
            for value, word in (("", "empty value"), ("d\nx", "the value has a line break"),
                                ("d\r", "the value has a line break"),
                                ("d\tx", "the value has a control character (0x09)")):
                with self.subTest(flag=flag, value=value):
                    rc, out, err = run("--check-config", flag, value)
                    self.assertEqual(rc, 2, err)
                    self.assertEqual(err, "vigild: %s: %s\n" % (flag, word))
        rc, out, err = run("--check-config", "--data-dir=", "--http", "127.0.0.1:0")
        self.assertEqual((rc, err), (2, "vigild: --data-dir: empty value\n"))
        # A '#' (or ';') in a flag's value is part of it: vigild starts on that very directory.
        data = os.path.join(self.tmp, "d # ssd ; fast")
        d = vt.Vigild(data_dir=data, stream=False)
        try:
            d.start()
            self.assertTrue(os.path.exists(os.path.join(data, "vigil.db")))
            self.assertEqual(d.get("/healthz")[0], 200)
            d.stop()
        finally:
            d.cleanup()

    def test_colon_separator(self):
        # inih also splits 'key: value' (undocumented): refused, so that the file has one form,
        # the shipped file's; a missing '=' before an address was read as key 'listen 127.0.0.1'.
        self.bad("[http]\nthreads: 2\n", 2, "a ':' before any '='", "write 'key = value'")
        self.bad("[http]\nthreads = 2\n  listen: 127.0.0.1:0\n", 3, "not 'key: value'")
        self.bad("[http]\nlisten 127.0.0.1:0\n", 2, "a ':' before any '='")
        self.bad("[http]\nmax_connections ; :\n", 2, "syntax error")
        path = self.conf("[http]\n; a: b\n# c: d\nlisten = 127.0.0.1:0 ; e: f\n"
                         "[stream]\nlisten=[::1]:0\n")
        rc, out, err = run("--check-config", "--config", path)
        self.assertEqual(rc, 0, err)

    def test_control_characters(self):
        # cfgctl: a control character in a value is refused (main: passed); blanks around it not.
        for key, v, c in [("http.auth_file", "/etc/a\x1bb", "0x1b"), ("http.threads", "2\r3",
                          "0x0d"), ("http.listen", "127.0.0.1:0\tx", "0x09, a tab"),
                          ("daemon.data_dir", "/d\x7f", "0x7f")]:
            self.bad("[%s]\n%s = %s\n" % (*key.split("."), v), 2,
                     "%s: the value has a control character (%s)" % (key, c))
        self.bad("[http]\nthr\teads = 2\n", 2, "unknown key 'thr\\x09eads' in section [http]")
        path = self.conf("[http]\r\nthreads\t=\t2\t\r\nlisten = 127.0.0.1:0 \t; lo\t\r\n")
        self.assertEqual(run("--check-config", "--config", path)[:2], (0, "configuration ok\n"))

    def test_not_a_file(self):
        # A directory opens and reads as nothing: it used to pass as an empty file (defaults).
        rc, out, err = run("--check-config", "--config", self.tmp)
        self.assertNotEqual(rc, 0)
        self.assertIn("%s: cannot read: Is a directory" % self.tmp, err)

    def test_bad_values(self):
        cases = [
            ("[http]\nthreads = 0\n", 2, "http.threads"),
            ("[http]\nthreads = four\n", 2, "http.threads"),
            ("[http]\nmax_body_bytes = 12\n", 2, "http.max_body_bytes"),
            ("[http]\nmax_batch = -1\n", 2, "http.max_batch"),
            ("[http]\nlisten = localhost\n", 2, "http.listen"),
            ("[http]\nlisten = 127.0.0.1:99999\n", 2, "http.listen"),
            ("[http]\nlisten = localhost:8470\n", 2, "http.listen"),  # cfgctl: the bind's check
            ("[stream]\nlisten = 127.0.0.1:+80\n", 2, "a numeric IPv4 address or [IPv6 address]"),
            ("[daemon]\nlog_level = loud\n", 2, "daemon.log_level"),
            ("[storage]\nsync = sometimes\n", 2, "storage.sync"),
            ("[storage]\nreaders = 1\ncache_mb = 0\n", 3, "storage.cache_mb"),
            ("[daemon]\ndata_dir =\n", 2, "daemon.data_dir"),
            ("[daemon]\ndata_dir = '/d'\n", 2, "is in quotes"),  # cfgctl: main made dir "'"
            ("[stream]\nmax_line_bytes = 10x\n", 2, "stream.max_line_bytes"),
            ("[model]\npredictions = 0\n", 2, "model.predictions"),
            ("[model]\nkind = auto\nlstm_min_rows = -1\n", 3, "model.lstm_min_rows: '-1'"),
            ("[model]\nlstm_min_rows = some\n", 2, "model.lstm_min_rows: 'some' is not auto"),
            ("[model]\nlstm_min_rows = 10000001\n", 2, "from 0 to 10000000"),
        ]
        for text, line, word in cases:
            with self.subTest(text=text):
                self.bad(text, line, word)

    def test_syntax_error(self):
        self.bad("[http]\nthreads = 2\nthis line has no equals sign\n", 3, "syntax")

    def test_missing_file(self):
        path = os.path.join(self.tmp, "absent.conf")
        rc, out, err = run("--check-config", "--config", path)
        self.assertNotEqual(rc, 0)
        self.assertIn(path, err)

    def test_bad_flags(self):
        for args, word in [(["--log-level", "loud"], "--log-level"),
                           (["--http", "nowhere"], "--http"),
                           (["--stream", "1.2.3.4"], "--stream"),  # cfgctl: one socket twice
                           (["--http", "0.0.0.0:8479", "--stream", "127.0.0.1:8479"], "the same")]:
            with self.subTest(args=args):
                rc, out, err = run("--check-config", *args)
                self.assertNotEqual(rc, 0)
                self.assertIn(word, err)

    def test_cross_setting_check(self):
        path = self.conf("[http]\nmax_batch = 200000\n[storage]\nqueue_max_readings = 100000\n")
        rc, out, err = run("--check-config", "--config", path)
        self.assertNotEqual(rc, 0)
        self.assertIn("max_batch", err)


class Overrides(unittest.TestCase):

    def test_flags_override_file(self):
        tmp = vt.mkdtemp()
        file_data = os.path.join(tmp, "file-data")
        file_http, file_stream = vt.free_ports(2)
        cfg = vt.write_file(os.path.join(tmp, "vigild.conf"), """
[daemon]
data_dir = %s
log_level = error
[http]
listen = 127.0.0.1:%d
[stream]
listen = 127.0.0.1:%d
[influx]
device_tag = host
""" % (file_data, file_http, file_stream))
        d = vt.Vigild(config=cfg, extra_args=["--log-level", "info"])
        try:
            d.start()  # passes --data-dir, --http and --stream of its own
            self.assertNotEqual(d.http_port, file_http)
            # The file's device tag applies (no flag for it)...
            r = d.write_lp("cpu,host=ovr-1,device=ignored v=1.5 1000\n", precision="ms")
            self.assertEqual(r.status, 204, r)
            self.assertEqual(d.device("ovr-1")["points"], 1)
            c = d.stream_connect()
            c.send("cpu,host=ovr-2 v=2 1700000000001000000\n")
            c.wait_ok(1)
            c.close()
            self.assertEqual(d.device("ovr-2")["points"], 1)
            d.stop()
            # ...while the flags won over the file: data dir, ports and log level.
            self.assertTrue(os.path.exists(d.db_path), "database not in --data-dir")
            self.assertFalse(os.path.exists(file_data), "the file's data_dir was used")
            for port in (file_http, file_stream):
                s = socket.socket()
                try:
                    self.assertNotEqual(s.connect_ex(("127.0.0.1", port)), 0,
                                        "the file's address was bound")
                finally:
                    s.close()
            log = d.log()
            self.assertIn("info", log, "--log-level info did not override log_level = error")
        except AssertionError:
            sys.stderr.write(d.log() + "\n")
            raise
        finally:
            d.cleanup()

    def test_predictions_kept(self):
        # model.predictions bounds the ring GET .../predictions answers from: the newest ones.
        tmp = vt.mkdtemp()
        cfg = vt.write_file(os.path.join(tmp, "vigild.conf"), "[model]\npredictions = 50\n")
        d = vt.Vigild(config=cfg)
        try:
            d.start()
            lines = "".join("m,device=pk-1 a=%d,b=%d %d\n" % (k % 7, k % 5, 1000 * (k + 1))
                            for k in range(120))
            self.assertEqual(d.write_lp(lines, precision="ms").status, 204)
            for _ in range(300):  # bounded: 30 s
                r = d.curl("GET", "/v1/devices/pk-1/status")
                if r.status == 200 and r.json().get("readings_scored", 0) >= 120:
                    break
                time.sleep(0.1)
            r = d.curl("GET", "/v1/devices/pk-1/predictions?limit=1000")
            self.assertEqual(r.status, 200, r)
            pts = r.json()["points"]
            self.assertEqual(len(pts), 50, r.json())
            self.assertEqual(sorted(p["ts"] for p in pts), [1000 * (k + 1) for k in range(70, 120)])
            self.assertEqual(r.json()["retained_from_ts"], 71000, r.json())
        except AssertionError:
            sys.stderr.write(d.log() + "\n")
            raise
        finally:
            d.cleanup()

    def test_ingest_nice(self):
        # daemon.ingest_nice lowers the bulk threads (store writer, inference, http-io) by that
        # much below the process's priority (the HTTP workers keep it); training by
        # model.train_nice.
        def nices(d):  # stat field 19: nice
            return thread_fields(d, lambda st: int(st[16]))
        for text, bulk in (("", 5), ("[daemon]\ningest_nice = 12\n", 12),
                           ("[daemon]\ningest_nice = 0\n", 0)):
            tmp = vt.mkdtemp()
            d = vt.Vigild(config=vt.write_file(os.path.join(tmp, "vigild.conf"), text))
            try:
                d.start()
                base = os.nice(0)  # vigild starts at the test's nice value (ctest may be niced)
                # Each thread has its nice value before its creator goes on
                # (thread_create_niced), so it is there as soon as /healthz answers: no waiting.
                want = {"store-writer": {min(19, base + bulk)}, "infer": {min(19, base + bulk)},
                        "MHD-worker": {base}, "http-io": {min(19, base + bulk)},
                        "train-0": {min(19, base + 10)}}
                n = nices(d)
                self.assertEqual({k: n.get(k) for k in want}, want, n)
            finally:
                d.cleanup()

    def test_rt_priority(self):
        # http.rt_priority = 1: a libmicrohttpd worker that has served a request runs SCHED_RR
        # at priority 1, no other thread does; refused (no CAP_SYS_NICE, RLIMIT_RTPRIO 0): one
        # warning in the log. The default (0) leaves every thread SCHED_OTHER.
        def policies(d):  # stat fields 40 and 41: rt_priority, policy
            return thread_fields(d, lambda st: (int(st[37]), int(st[38])))
        import resource
        allowed = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 1
        on = "[http]\nrt_priority = 1\n"
        cases = [("", 0, (), allowed), (on, 1, (), allowed)]
        if allowed and resource.getrlimit(resource.RLIMIT_RTPRIO)[0] == 0 and \
                shutil.which("setpriv"):
            # Refused for certain: without CAP_SYS_NICE (dropped from the bounding set, so not
            # even root has it after exec) and with RLIMIT_RTPRIO 0.
            cases.append((on, 1, ("setpriv", "--bounding-set", "-sys_nice", "--"), False))
        for text, rt, prefix, can in cases:
            tmp = vt.mkdtemp()
            d = vt.Vigild(config=vt.write_file(os.path.join(tmp, "vigild.conf"), text),
                          prefix=prefix)
            try:
                d.start()
                for _ in range(8):  # separate connections, so more than one worker serves
                    self.assertEqual(d.curl("GET", "/healthz").status, 200)
                p = policies(d)
                others = {(prio, pol) for k, v in p.items() if k != "MHD-worker" for prio, pol in v}
                self.assertEqual(others, {(0, 0)}, p)
                if rt and can:
                    self.assertIn((1, 2), p["MHD-worker"], p)  # SCHED_RR is 2
                    self.assertTrue(p["MHD-worker"] <= {(0, 0), (1, 2)}, p)
                else:
                    self.assertEqual(p["MHD-worker"], {(0, 0)}, p)
                    self.assertEqual("rt_priority 1 refused" in d.log(), bool(rt), d.log())
            finally:
                d.cleanup()

    def test_file_log_level_applies(self):
        tmp = vt.mkdtemp()
        cfg = vt.write_file(os.path.join(tmp, "vigild.conf"), "[daemon]\nlog_level = error\n")
        d = vt.Vigild(config=cfg)
        try:
            d.start()
            d.stop()
            lines = [l for l in d.log().splitlines()
                     if not l.startswith(("====", "----"))]
            self.assertFalse([l for l in lines if " info " in l or " debug " in l], lines)
        finally:
            d.cleanup()

    def test_nothing_logged_per_reading(self):
        d = vt.Vigild()
        try:
            d.start()
            with open(d.log_path) as f:
                before = len(f.read().splitlines())
            for i in range(20):
                r = d.post_json([{"device": "quiet", "ts": i * 100 + j, "values": {"a": j}}
                                 for j in range(50)] + [{"device": "quiet", "values": {}}])
                self.assertEqual(r.status, 400, r)
                r = d.write_lp("".join("m,device=quiet b=%d %d\n" % (j, i * 100 + j)
                                       for j in range(50)) + "bad line\n", precision="ms")
                self.assertEqual(r.status, 400, r)
            c = d.stream_connect()
            c.send("".join("m,device=quiet c=%d %d\n" % (j, (1700000000000 + j) * 10 ** 6)
                           for j in range(1000))
                   + "bad\n")
            c.finish()
            c.close()
            with open(d.log_path) as f:
                lines = f.read().splitlines()
            self.assertLessEqual(len(lines) - before, 2, "\n".join(lines[before:]))
            d.stop()
            for line in open(d.log_path).read().splitlines():
                if not line.startswith("===="):
                    self.assertRegex(line, r"\b(debug|info|warn|warning|error)\b",
                                     "log lines carry a level")
        finally:
            d.cleanup()

    def test_stream_off(self):
        d = vt.Vigild(stream=False)
        try:
            d.start()
            s = socket.socket()
            try:
                self.assertNotEqual(s.connect_ex(("127.0.0.1", d.stream_port)), 0)
            finally:
                s.close()
            d.stop()
            # The start's line says the stream is off (it said "stream on off (port 0)").
            self.assertIn(", stream off\n", d.log())
            self.assertNotIn("stream on off", d.log())
        finally:
            d.cleanup()
        # "OFF" is "off" (any case, as every word): no stream socket, and vigild runs.
        d = vt.Vigild(stream=False, extra_args=["--stream", "OFF"])
        try:
            d.start()
            self.assertEqual(d.get("/healthz")[0], 200)
            self.assertIn(", stream off\n", d.log())
            d.stop()
        finally:
            d.cleanup()

    def test_port_in_use_and_data_dir_in_use(self):
        d = vt.Vigild()
        try:
            d.start()
            # HTTP port taken: a second instance (own data dir) must fail, not hang.
            other = os.path.join(d.tmp, "other")
            rc, out, err = run("--data-dir", other, "--http", "127.0.0.1:%d" % d.http_port,
                               "--stream", "off")
            self.assertNotEqual(rc, 0)
            self.assertIn(str(d.http_port), err)
            # The same with the stream on: it listens first and must be shut again (this hung
            # in the failure path's loop run, for ever, before the fix).
            rc, out, err = run("--data-dir", other + "2", "--http", "127.0.0.1:%d" % d.http_port,
                               "--stream", "127.0.0.1:0", timeout=15)
            self.assertNotEqual(rc, 0)
            self.assertIn("cannot listen for HTTP", err)
            # Same data directory: refused while the first one runs.
            rc, out, err = run("--data-dir", d.data_dir, "--http", "127.0.0.1:0",
                               "--stream", "off")
            self.assertNotEqual(rc, 0)
            self.assertIn(d.data_dir, err)
            self.assertEqual(d.get("/healthz")[0], 200)
            d.stop()
        finally:
            d.cleanup()

    def test_listen_failure_names_the_reason(self):
        # Explore (session 41): an HTTP address vigild could not listen on was "cannot listen
        # for HTTP on ADDR (address in use or not local?)", a guess, where the stream's says
        # why; libmicrohttpd's reason (the bind's errno) is now in the message, as strerror
        # words it, and libmicrohttpd's "port 0" (the address comes whole) is left out.
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            port = holder.getsockname()[1]
            tmp = vt.mkdtemp()
            rc, out, err = run("--data-dir", os.path.join(tmp, "a"), "--http",
                               "127.0.0.1:%d" % port, "--stream", "off")
            self.assertEqual(rc, 1, err)
            self.assertIn("cannot listen for HTTP on 127.0.0.1:%d: bind: %s"
                          % (port, os.strerror(errno.EADDRINUSE)), err)
            self.assertNotIn("port 0", err)
        finally:
            holder.close()
        # An address of no local interface (TEST-NET-1): its own reason, not "in use". Not on
        # a host that lets any address be bound (net.ipv4.ip_nonlocal_bind = 1): vigild would
        # start there and run until run()'s timeout.
        try:
            with open("/proc/sys/net/ipv4/ip_nonlocal_bind") as f:
                nonlocal_bind = f.read().strip() != "0"
        except OSError:
            nonlocal_bind = False
        if nonlocal_bind:
            self.skipTest("net.ipv4.ip_nonlocal_bind is on: any address can be bound")
        rc, out, err = run("--data-dir", os.path.join(tmp, "b"), "--http", "192.0.2.1:8470",
                           "--stream", "off")
        self.assertEqual(rc, 1, err)
        self.assertIn("cannot listen for HTTP on 192.0.2.1:8470: bind: %s"
                      % os.strerror(errno.EADDRNOTAVAIL), err)


if __name__ == "__main__":
    vt.main()

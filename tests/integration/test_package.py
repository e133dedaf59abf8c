#!/usr/bin/env python3
"""The package and the installed files: cmake --install (staged with DESTDIR), cpack -G DEB
checked by lintian, the maintainer scripts run with stand-ins, and the man pages against each
program's --help. Collected by test_ops.py (`ctest -R it_ops`), which imports the classes;
`python3 test_package.py` runs them alone."""

import gzip
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from vigiltest import mkdtemp, write_file  # noqa: E402

BUILD = os.path.dirname(vt.VIGILD)


def instrumented_build():
    """Whether BUILD is a sanitizer, TSan or fuzz build (its CMakeCache.txt says so)."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt"), encoding="utf-8") as f:
            cache = f.read()
    except OSError:
        return False
    return any(re.search(r"^%s:BOOL=ON$" % v, cache, re.M)
               for v in ("VIGIL_SANITIZE", "VIGIL_TSAN", "VIGIL_FUZZ"))
# (program, man page in docs/, section): every program the package installs has its page.
PAGES = (("vigild", "vigild.8", 8), ("vigil-sim", "vigil-sim.1", 1),
         ("vigil-replay", "vigil-replay.1", 1))
# (name, page, section) of the configuration file's page (since session 52; no program, so no
# OPTIONS to check against a --help).
CONF_PAGE = ("vigild.conf", "vigild.conf.5", 5)


def cache_value(build, key):
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split("=", 1)[1].strip()
    raise AssertionError("%s not in %s/CMakeCache.txt" % (key, build))


def readme_doc_links():
    """The files of docs/ README.md links (`](docs/name)` or `](docs/name#anchor)`), sorted."""
    with open(os.path.join(vt.REPO, "README.md"), encoding="utf-8") as f:
        return sorted(set(re.findall(r"\]\((docs/[^)#\s]+)[#)]", f.read())))


def unit_dir(prefix):
    """Where the unit belongs: systemd's own folder for the prefix /usr (pkg-config systemd:
    /lib/systemd/system on Debian 12, where it was /usr/lib/systemd/system), else the prefix's."""
    if prefix == "/usr" and shutil.which("pkg-config"):
        p = subprocess.run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.strip()
    return prefix + "/lib/systemd/system"


class TestInstall(unittest.TestCase):
    """cmake --install (staged with DESTDIR) and cpack -G DEB, from the build tree under test."""

    @classmethod
    def setUpClass(cls):
        cls.build = os.path.dirname(vt.VIGILD)
        if not os.path.exists(os.path.join(cls.build, "CMakeCache.txt")):
            raise unittest.SkipTest("vigild is not in a CMake build tree")
        cls.prefix = cache_value(cls.build, "CMAKE_INSTALL_PREFIX")
        # GNUInstallDirs: the configuration goes to /etc when the prefix is /usr.
        cls.etc = "/etc" if cls.prefix == "/usr" else cls.prefix + "/etc"
        cls.unit = unit_dir(cls.prefix) + "/vigild.service"

    def test_cmake_install(self):
        dest = mkdtemp()
        env = dict(os.environ, DESTDIR=dest)
        p = subprocess.run(["cmake", "--install", self.build], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout)
        root = dest + self.prefix
        for name in ("vigild", "vigil-sim", "vigil-replay"):
            self.assertTrue(os.access(os.path.join(root, "bin", name), os.X_OK), name)
        unit = dest + self.unit
        conf = dest + self.etc + "/vigil/vigild.conf"
        with open(unit) as f:
            text = f.read()
        self.assertIn("ExecStart=%s/bin/vigild --config %s/vigil/vigild.conf --data-dir "
                      "/var/lib/vigil\n" % (self.prefix, self.etc), text)
        # The rest is systemd/vigild.service as it is now (an edit of it once went in stale).
        with open(os.path.join(vt.REPO, "systemd", "vigild.service")) as g:
            self.assertEqual(text, g.read().replace("/usr/bin/vigild", self.prefix + "/bin/vigild")
                             .replace("/etc/vigil/", self.etc + "/vigil/"))
        with open(conf) as f, open(os.path.join(vt.REPO, "etc", "vigild.conf")) as g:
            self.assertEqual(f.read(), g.read())
        # The installed binary runs and accepts the installed configuration.
        vigild = os.path.join(root, "bin", "vigild")
        p = subprocess.run([vigild, "--config", conf, "--check-config"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout), (0, "configuration ok\n"))
        # Each program's man page and the configuration file's, compressed as Debian wants them
        # (gzip -n: no name, no time, so a rebuild makes the same bytes; lintian:
        # uncompressed-manual-page was an error), is the page in docs/ and renders without
        # warnings.
        for prog, page, sec in PAGES + (CONF_PAGE,):
            gz = os.path.join(root, "share", "man", "man%d" % sec, page + ".gz")
            self.check_gzip(gz, os.path.join(vt.REPO, "docs", page))
        # /usr/share/doc/vigil: the copyright file and the changelog Debian requires, the
        # changelog's version the package's.
        doc = os.path.join(root, "share", "doc", "vigil")
        with open(os.path.join(doc, "copyright")) as f:
            self.assertTrue(f.read().startswith("Format: https://www.debian.org/doc/"
                                                "packaging-manuals/copyright-format/1.0/\n"))
        with gzip.open(os.path.join(doc, "changelog.gz"), "rt") as f:
            first = f.readline()
        version = subprocess.run([vigild, "--version"], stdout=subprocess.PIPE, text=True,
                                 check=True).stdout.split()[1]
        self.assertEqual(first, "vigil (%s) unstable; urgency=medium\n" % version)
        # README.md and every file of docs/ it links beside it, as in the source, so that each
        # of the installed README's links to docs/ resolves there (docs/http-api.md, writing.md
        # and anomalies.md were left out at first, then detection.md, reliability.md,
        # architecture.md, benchmarks.md and the man pages' sources).
        links = readme_doc_links()
        self.assertIn("docs/detection.md", links)
        for name in ["README.md"] + links:
            self.assertTrue(os.path.isfile(os.path.join(doc, name)), name)
            with open(os.path.join(doc, name), "rb") as f, \
                    open(os.path.join(vt.REPO, name), "rb") as g:
                self.assertEqual(f.read(), g.read(), name)

    def check_gzip(self, gz, source):
        with open(gz, "rb") as f:
            head = f.read(10)
        # RFC 1952: FLG (byte 3) without FNAME, MTIME (bytes 4-7) zero.
        self.assertEqual((head[:3], head[3] & 0x08, head[4:8]), (b"\x1f\x8b\x08", 0, b"\0" * 4),
                         gz)
        with gzip.open(gz, "rb") as f, open(source, "rb") as g:
            self.assertEqual(f.read(), g.read(), gz)
        if shutil.which("groff"):
            p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", source],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.assertEqual((p.returncode, p.stdout), (0, ""), source)

    def test_cpack_deb(self):
        for tool in ("cpack", "dpkg-deb"):
            if shutil.which(tool) is None:
                self.skipTest(tool + " not installed")
        out = mkdtemp()
        p = subprocess.run(["cpack", "-G", "DEB", "--config",
                            os.path.join(self.build, "CPackConfig.cmake"), "-B", out],
                           cwd=self.build, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stdout)
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        self.assertEqual(len(debs), 1, os.listdir(out))
        deb = os.path.join(out, debs[0])
        files = subprocess.run(["dpkg-deb", "-c", deb], stdout=subprocess.PIPE, text=True,
                               check=True).stdout
        for path in ("%s/bin/vigild" % self.prefix, "%s/bin/vigil-sim" % self.prefix,
                     "%s/bin/vigil-replay" % self.prefix,
                     self.unit,
                     "%s/vigil/vigild.conf" % self.etc,
                     "%s/share/man/man8/vigild.8.gz" % self.prefix,
                     "%s/share/man/man5/vigild.conf.5.gz" % self.prefix,
                     "%s/share/man/man1/vigil-sim.1.gz" % self.prefix,
                     "%s/share/man/man1/vigil-replay.1.gz" % self.prefix,
                     "%s/share/doc/vigil/copyright" % self.prefix,
                     "%s/share/doc/vigil/changelog.gz" % self.prefix,
                     "%s/share/doc/vigil/README.md" % self.prefix) + tuple(
                         "%s/share/doc/vigil/%s" % (self.prefix, link)
                         for link in readme_doc_links()):
            self.assertIn("." + path + "\n", files)
        fields = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Version", "Depends"],
                                stdout=subprocess.PIPE, text=True, check=True).stdout
        self.assertIn("Package: vigil\n", fields)
        for lib in ("libuv1", "libsqlite3-0", "libmicrohttpd12", "libjansson4", "libopenblas0"):
            self.assertIn(lib, fields)
        # storage needs SQLite 3.35 (RETURNING), which dpkg-shlibdeps cannot see (it asked 3.20):
        # systemd/deb/shlibs.local tells it, so it is listed once (session 69: twice before, the
        # 3.35 we added and dpkg-shlibdeps' 3.20).
        self.assertIn("libsqlite3-0 (>= 3.35)", fields)
        self.assertEqual(fields.count("libsqlite3-0"), 1, fields)
        depends = [f.strip().split(" ")[0] for f in
                   fields.split("Depends:", 1)[1].strip().split(",")]
        self.assertEqual(len(depends), len(set(depends)), fields)
        # The configuration is a conffile: upgrades keep the operator's edits.
        conffiles = subprocess.run(["dpkg-deb", "-I", deb, "conffiles"], stdout=subprocess.PIPE,
                                   text=True, check=True).stdout
        self.assertEqual(conffiles, "%s/vigil/vigild.conf\n" % self.etc)
        self.check_lintian(deb)
        self.check_maintainer_scripts(deb)

    def check_lintian(self, deb):
        """lintian finds no error and no warning (it found 3 errors and 4 warnings: no copyright
        file, no changelog, an uncompressed man page, no page for vigil-sim and vigil-replay,
        description lines over 80 columns), and with its informational and pedantic tags on,
        only the one left: no init.d script for a systemd-only daemon. Session 52 fixed the
        others it found: hardening-no-bindnow, hardening-no-fortify-functions (the flags
        dpkg-buildflags gives a package's build) and binary-has-unneeded-section .comment
        (dh_strip removes it). tools/install-deps installs lintian: without it the test fails
        rather than pass unchecked."""
        self.assertIsNotNone(shutil.which("lintian"), "lintian not installed (tools/install-deps)")
        p = subprocess.run(["lintian", "-I", "--pedantic", "--tag-display-limit", "0", deb],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=300)
        allowed = ["package-supports-alternative-init-but-no-init.d-script"]
        if instrumented_build():
            # The sanitizer, TSan and fuzz builds leave Debian's hardening flags off on purpose
            # (CMakeLists.txt): their package is CI's, never shipped.
            allowed += ["hardening-no-bindnow", "hardening-no-fortify-functions"]
        tags = [x for x in p.stdout.splitlines() if re.match(r"[EWIP]: ", x)
                and not any(a in x for a in allowed)]
        self.assertEqual(tags, [], p.stdout)
        self.assertEqual(p.returncode, 0, p.stdout)

    def check_maintainer_scripts(self, deb):
        """The scripts, run with a recording systemctl and deb-systemd-invoke and systemd's
        folders moved to a temporary one: an upgrade restarts vigild, a removal stops
        it first, a purge drops the enablement link. Without them an upgraded vigild kept
        running the old binary and a removed one ran on from a deleted file."""
        ctl = mkdtemp()
        subprocess.run(["dpkg-deb", "-e", deb, ctl], check=True)
        tmp = mkdtemp()
        run, etc = os.path.join(tmp, "run"), os.path.join(tmp, "etc")
        os.makedirs(run)
        os.makedirs(os.path.join(etc, "multi-user.target.wants"))
        log = os.path.join(tmp, "calls")
        bindir = os.path.join(tmp, "bin")
        os.makedirs(bindir)
        for tool in ("systemctl", "deb-systemd-invoke"):
            stub = write_file(os.path.join(bindir, tool),
                              "#!/bin/sh\necho \"%s $*\" >> %s\n" % (tool, log))
            os.chmod(stub, 0o755)
        env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"])
        env.pop("DPKG_ROOT", None)

        def run_script(name, *args, **extra_env):
            path = os.path.join(ctl, name)
            self.assertTrue(os.stat(path).st_mode & 0o111, name + " is not executable")
            with open(path) as f:
                text = f.read()
            self.assertTrue(text.startswith("#!/bin/sh\n"), name)
            text = text.replace("/run/systemd/system", run).replace("/etc/systemd/system", etc)
            if os.path.exists(log):
                os.unlink(log)
            p = subprocess.run(["sh", "-e", "-c", text, name] + list(args),
                               env=dict(env, **extra_env),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 0, name + ": " + p.stdout)
            if not os.path.exists(log):
                return []
            with open(log) as f:
                return f.read().splitlines()

        reload = "systemctl --system daemon-reload"
        self.assertEqual(run_script("postinst", "configure", ""), [reload])
        # A configure with a previous version (an upgrade, a reinstall): restart, as debhelper's
        # snippet does (deb-systemd-invoke (re)starts an enabled unit, restarts a running one that
        # is not enabled, and leaves a disabled, stopped one: it_systemd_pkg, under systemd).
        self.assertEqual(run_script("postinst", "configure", "0.0.9"),
                         [reload, "deb-systemd-invoke restart vigild.service"])
        # The old package's postinst after a failed upgrade: a stopped vigild stays stopped.
        for abort in ("abort-upgrade", "abort-deconfigure"):
            self.assertEqual(run_script("postinst", abort, "0.1.1"),
                             [reload, "deb-systemd-invoke try-restart vigild.service"], abort)
        # A removal that failed after prerm stopped vigild: started again (deb-systemd-invoke
        # starts only an enabled unit), as debhelper's snippet does; it stayed stopped.
        self.assertEqual(run_script("postinst", "abort-remove"),
                         [reload, "deb-systemd-invoke start vigild.service"])
        self.assertEqual(run_script("prerm", "upgrade", "0.1.1"), [])
        self.assertEqual(run_script("prerm", "remove"), ["deb-systemd-invoke stop vigild.service"])
        self.assertEqual(run_script("postrm", "remove"), [reload])
        # The purge drops the link `systemctl enable` made to the package's unit (through /lib
        # or /usr/lib), and nothing else by that name: a link to the operator's own unit in
        # /etc, or a file, stayed behind before only by luck of the order (it was rm -f'd).
        wants = os.path.join(etc, "multi-user.target.wants")
        link = os.path.join(wants, "vigild.service")
        for target in ("/usr/lib/systemd/system/vigild.service",
                       "/lib/systemd/system/vigild.service"):
            os.symlink(target, link)
            self.assertEqual(run_script("postrm", "upgrade", "0.1.1"), [])
            self.assertTrue(os.path.islink(link))
            self.assertEqual(run_script("postrm", "purge"), [reload])
            self.assertFalse(os.path.lexists(link), target)
        for target in ("/etc/systemd/system/vigild.service", "/opt/vigil/vigild.service"):
            os.symlink(target, link)
            self.assertEqual(run_script("postrm", "purge"), [reload])
            self.assertEqual(os.readlink(link), target)
            os.unlink(link)
        write_file(link, "")
        self.assertEqual(run_script("postrm", "purge"), [reload])
        self.assertTrue(os.path.isfile(link))
        os.unlink(link)
        # A chrootless `dpkg --root` (DPKG_ROOT): the running systemd is the host's, left alone;
        # a purge drops the link under that root.
        root = mkdtemp()
        os.makedirs(root + os.path.join(etc, "multi-user.target.wants"))
        link = root + os.path.join(etc, "multi-user.target.wants", "vigild.service")
        os.symlink("/lib/systemd/system/vigild.service", link)
        self.assertEqual(run_script("postinst", "configure", "0.0.9", DPKG_ROOT=root), [])
        self.assertEqual(run_script("prerm", "remove", DPKG_ROOT=root), [])
        self.assertEqual(run_script("postinst", "abort-remove", DPKG_ROOT=root), [])
        self.assertEqual(run_script("postrm", "purge", DPKG_ROOT=root), [])
        self.assertFalse(os.path.lexists(link))
        # Without systemd running (a chroot, a container build) the scripts call nothing.
        os.rmdir(run)
        self.assertEqual(run_script("postinst", "configure", "0.0.9"), [])
        self.assertEqual(run_script("prerm", "remove"), [])
        self.assertEqual(run_script("postinst", "abort-remove"), [])



def help_options(prog):
    """The options `prog --help` lists: the first word of each indented line ("  --config FILE
    ...", "  -c FILE.ini ..."). --help must exit 0 and print to stdout (vigil-replay exited 2
    with one usage line on stderr)."""
    p = subprocess.run([os.path.join(BUILD, prog), "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert p.returncode == 0, "%s --help: exit %d: %s" % (prog, p.returncode, p.stderr)
    return set(re.findall(r"^ +(--?[a-z][a-z-]*)", p.stdout, re.M))


def man_options(page):
    """The options of a man page's OPTIONS section: the words of each .TP entry's tag line."""
    with open(os.path.join(vt.REPO, "docs", page)) as f:
        text = f.read()
    m = re.search(r"^\.SH OPTIONS\n(.*?)(?=^\.SH )", text, re.S | re.M)
    assert m, page + " has no OPTIONS section"
    tags = re.findall(r"^\.TP\n(.*)$", m.group(1), re.M)
    return {o for t in tags for o in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)",
                                                t.replace("\\-", "-"))}


class ManPages(unittest.TestCase):
    """Each program the package installs has a man page whose OPTIONS are exactly those its
    --help lists (vigil-sim and vigil-replay had none), and vigild(8) refers to the other two
    and to vigild.conf(5), which refers back to it.
    Drift caught: an option added to a program and not to its page, or the reverse."""

    def test_options_match_help(self):
        for prog, page, sec in PAGES:
            with self.subTest(prog=prog):
                self.assertTrue(os.path.exists(os.path.join(vt.REPO, "docs", page)), page)
                opts = help_options(prog)
                self.assertIn("--help", opts)
                self.assertEqual(sorted(man_options(page)), sorted(opts), page)

    def test_cross_references(self):
        with open(os.path.join(vt.REPO, "docs", "vigild.8")) as f:
            see_also = f.read().split(".SH SEE ALSO", 1)[1]
        for ref in (".BR vigil\\-sim (1)", ".BR vigil\\-replay (1)", ".BR vigild.conf (5)"):
            self.assertIn(ref, see_also)
        with open(os.path.join(vt.REPO, "docs", CONF_PAGE[1])) as f:
            self.assertIn(".BR vigild (8)", f.read().split(".SH SEE ALSO", 1)[1])
        for prog, page, sec in PAGES + (CONF_PAGE,):
            with open(os.path.join(vt.REPO, "docs", page)) as f:
                th = [x for x in f.read().splitlines() if x.startswith(".TH ")]
            self.assertEqual([x.split()[1:3] for x in th],
                             [[prog.upper().replace("-", "\\-"), str(sec)]], page)


class ToolCommandLines(unittest.TestCase):
    """vigil-sim's and vigil-replay's bad command lines: exit 2 with one first line naming the
    option and the value or the file's line, as vigild's do. vigil-sim took "--devices abc" as
    0 (atoi) and printed only the usage; vigil-replay said "bad setting ..." then "cannot use
    FILE" without the line, and only the usage for a bad --restart-every or -s."""

    def run_tool(self, prog, *args):
        p = subprocess.run([os.path.join(BUILD, prog)] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.stdout, "")
        return p.returncode, p.stderr.splitlines()[:1]

    def test_sim(self):
        cases = (
            (["--devices", "abc"], "--devices: 'abc' is not a whole number from 1 to 10000000"),
            (["--devices", "0"], "--devices: '0' is not a whole number from 1 to 10000000"),
            (["--channels", "2.5"], "--channels: '2.5' is not a whole number from 1 to 8"),
            (["--connections=65"], "--connections: '65' is not a whole number from 1 to 64"),
            (["--interval", "0"], "--interval: '0' is not a number >= 1e-06"),
            (["--speed", "-1"], "--speed: '-1' is not a number >= 0"),
            (["--fault-at", "1s"], "--fault-at: '1s' is not a number"),
            (["--seed", ""], "--seed: '' is not a whole number from 0 to 9007199254740992"),
            (["--csv", "", "--devices", "2"], "--csv: empty directory name"),
        )
        for args, msg in cases:
            with self.subTest(args=args):
                self.assertEqual(self.run_tool("vigil-sim", *args), (2, ["vigil-sim: " + msg]))

    def test_sim_banner(self):
        """The first line names the faults, or says there are none (session 68: --fault-at -1
        printed "faults from -1 s of live time:" and an empty list)."""
        cases = (
            ([], "vigil-sim: 4 pumps -> dry run; faults from +60 s of live time: "
                 "pump-1=bearing pump-2=overheat pump-3=stuck pump-4=spikes"),
            (["--fault-at", "-1"], "vigil-sim: 4 pumps -> dry run; no faults"),
            (["--first", "9", "--devices", "2"], "vigil-sim: 2 pumps -> dry run; no faults"),
        )
        for args, line in cases:
            with self.subTest(args=args):
                self.assertEqual(self.run_tool("vigil-sim", "--dry-run", "--duration", "0",
                                               *args), (0, [line]))

    def test_replay(self):
        tmp = mkdtemp()
        ini = write_file(os.path.join(tmp, "bad.ini"), "[detector]\nwarmup = 50\n\n"
                         "warmups = 5\nwarmup = x\n")
        syntax = write_file(os.path.join(tmp, "syntax.ini"), "warmup = 50\nwarmup 5\n")
        value = write_file(os.path.join(tmp, "value.ini"), "# x\n[detector]\nwarmup = 5x\n")
        missing = os.path.join(tmp, "missing.ini")
        # A line longer than libinih's buffer (199 characters in Debian's build) is named: it
        # read the rest as a line of its own ("2: not a [section] ..." for a long comment, then
        # every line one too high).
        long_line = write_file(os.path.join(tmp, "long.ini"), "#" + "x" * 300 + "\n"
                               "warmup = 50\nwarmups = 5\n")
        cases = (
            (["-c", ini], "-c %s:4: unknown setting 'warmups' (vigil-replay --settings lists them)"
             % ini),
            (["-c", syntax], "-c %s:2: not a [section] or key = value line" % syntax),
            (["-c", value], "-c %s:3: warmup: not a number in range: '5x'" % value),
            (["-c", missing], "-c %s: No such file or directory" % missing),
            (["-c", long_line], "-c %s:1: longer than 199 characters" % long_line),
            (["-c", tmp], "-c %s: Is a directory" % tmp),  # read as an empty file before
            (["-s", "warmup=x"], "-s: warmup: not a number in range: 'x'"),
            (["-s", "warmup"], "-s: not key=value: 'warmup'"),
            (["--restart-every", "-3"], "--restart-every: not a whole number >= 0: '-3'"),
            (["-q"], "unknown option '-q'"),
        )
        for args, msg in cases:
            with self.subTest(args=args):
                self.assertEqual(self.run_tool("vigil-replay", *(args + ["in.csv", "out.csv"])),
                                 (2, ["vigil-replay: " + msg]))
        # --settings lists every key the refusals point to, as the options before it leave
        # them, in a form -c reads back (read68d: the settings were listed nowhere a user has).
        ini = os.path.join(tmp, "all.ini")
        p = subprocess.run([os.path.join(BUILD, "vigil-replay"), "-s", "warmup=500",
                            "--settings"], stdout=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        self.assertIn("warmup = 500\n", p.stdout)
        self.assertIn("train.lr = ", p.stdout)
        keys = [l.split(" = ")[0] for l in p.stdout.splitlines()]
        self.assertEqual(len(keys), len(set(keys)))
        write_file(ini, p.stdout)
        q = subprocess.run([os.path.join(BUILD, "vigil-replay"), "-c", ini, "--settings"],
                           stdout=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual((q.returncode, q.stdout), (0, p.stdout))
        self.assertEqual(self.run_tool("vigil-replay", "--restart-every"),
                         (2, ["vigil-replay: --restart-every needs a value"]))
        self.assertEqual(self.run_tool("vigil-replay", "in.csv"),
                         (2, ["vigil-replay: needs INPUT.csv and OUTPUT.csv"]))
        self.assertEqual(self.run_tool("vigil-replay", "a", "b", "c"),
                         (2, ["vigil-replay: unexpected argument 'c'"]))


if __name__ == "__main__":
    vt.main()

#!/usr/bin/python3
"""vigild integration: InfluxDB v1 compatibility, the warning while a database name cannot be
kept (DatabaseNameWarning: a minute long, so a file and a ctest of its own, it_influx_names,
run beside the rest; CTest sets VIGIL_FAILMAINT, tests/fault/failmaint.c). The other database
statements' tests: test_influx.py; what they share: influxpair.py."""

import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import own_daemon, show_databases  # noqa: E402


FAILMAINT = os.environ.get("VIGIL_FAILMAINT", "")


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library, set by CTest; not built in a TSan build) not found")
class DatabaseNameWarning(unittest.TestCase):
    """While a new database name cannot be kept (here every "INSERT INTO dbnames(" fails,
    tests/fault/failmaint.c), each /write?db=NEW that stores points tries again and fails; the
    warning is logged for the first at once, then at most once a minute per cause with the count
    of those left out (not once a request, as before). Takes a minute."""

    def test_warning_rate_limited(self):
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        vt.write_file_atomic(self.flag, "fail")
        own_daemon(self, self.warning_rate_limited, prefix=[
            "env", "LD_PRELOAD=" + vt.preload(FAILMAINT), "VIGIL_FAILMAINT_FLAG=" + self.flag,
            "VIGIL_FAILMAINT_SQL=INSERT INTO dbnames("])

    def warning_rate_limited(self):
        first = time.monotonic()
        for i in range(20):
            r = self.d.write_lp("m,device=dnw v=1 %d\n" % (i + 1), precision="s",
                                db="new%d" % (i % 3))
            self.assertEqual(r.status, 204, r)
        self.assertEqual(show_databases(self), [])
        self.assertEqual(len(self.d.readings("dnw")), 20)
        warned = [l for l in self.d.log().splitlines() if "cannot keep the database name" in l]
        self.assertEqual(len(warned), 1, warned)
        self.assertIn("/write?db=: I/O error", warned[0])
        # A minute after the first, the next one is logged with the count left out.
        time.sleep(max(0.0, first + 61 - time.monotonic()))
        self.assertEqual(self.d.write_lp("m,device=dnw v=1 25\n", precision="s",
                                         db="new0").status, 204)
        warned = [l for l in self.d.log().splitlines() if "cannot keep the database name" in l]
        self.assertEqual(len(warned), 2, warned)
        self.assertRegex(warned[1],
                         r"I/O error \(19 more like it in the last 6[0-9] s, not logged\)$")
        os.unlink(self.flag)  # the names can be kept again: the next write keeps its name
        self.assertEqual(self.d.write_lp("m,device=dnw v=1 30\n", precision="s",
                                         db="new1").status, 204)
        self.assertEqual(show_databases(self), ["new1"])


if __name__ == "__main__":
    vt.main()

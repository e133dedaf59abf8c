#!/usr/bin/python3
"""vigild integration (session 42, scale): what a plant of thousands of devices found.

StopSavesEveryRing: at a stop, every device's newest predictions (the ring's exact tail, sealed
into up to four blocks a device) are saved after the detectors' saves; with 3,000 devices that
is more puts than the store's queue holds (STORE_OPS_MAX, 10,000), and before this session the
puts past it were lost ('the newest predictions of N devices not saved (out of memory or store
busy)', 1,614 of 4,000 devices at every stop of a plant's run). Now the stop waits for the
writer and goes on: it logs no loss, and after the restart every sampled device answers the same
predictions as before the stop.

Python 3 standard library; every wait is bounded."""

import os
import re
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402

T0 = 1_700_000_000_000
NDEV = 3000
WARM = 16      # model.warmup: readings before the first training
SCORED = 230   # readings scored after it, under the exact tail's 256: all sealed at the stop


def name(i):
    return "sc-%04d" % i


def lines(k0, k1):
    """Readings k0..k1-1 of every device, one channel, a small cycle."""
    return "".join("m,device=%s a=%d %d\n" % (name(i), (k + i) % 7, T0 + 1000 * k)
                   for k in range(k0, k1) for i in range(NDEV))


def family(text, fam):
    m = re.search(r"^%s (\S+)$" % re.escape(fam), text, re.M)
    return float(m.group(1)) if m else None


class StopSavesEveryRing(unittest.TestCase):
    def setUp(self):
        tmp = vt.mkdtemp()
        cfg = vt.write_file(os.path.join(tmp, "vigild.conf"),
                            "[model]\nwarmup = %d\nkind = linear\nretrain_every = 0\n" % WARM)
        self.d = vt.Vigild(config=cfg, stream=False)
        self.d.start()

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        try:
            out = super().run(result)
            if result is not None and len(result.failures) + len(result.errors) > before:
                sys.stderr.write("\n%s\n" % self.d.log()[-20000:])
        finally:
            if hasattr(self, "d"):
                self.d.cleanup()
        return out

    def send(self, k0, k1):
        step = max(1, 30000 // NDEV)
        for a in range(k0, k1, step):
            r = self.d.write_lp(lines(a, min(a + step, k1)), precision="ms")
            self.assertEqual(r.status, 204, r)

    def wait_metric(self, fam, ok, what):
        for _ in range(1800):  # bounded: 180 s
            v = family(self.d.metrics(), fam)
            if v is not None and ok(v):
                return v
            time.sleep(0.1)
        self.fail("%s: %s stayed %r" % (what, fam, family(self.d.metrics(), fam)))

    def preds(self, dev):
        r = self.d.curl("GET", "/v1/devices/%s/predictions?limit=100000" % dev)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_stop_saves_every_ring(self):
        self.send(0, WARM + 1)
        for _ in range(1800):  # bounded: 180 s
            text = self.d.metrics()
            st = {s: family(text, 'vigil_devices_by_state{state="%s"}' % s)
                  for s in ("learning", "normal", "warning", "anomaly")}
            if st["learning"] == 0 and sum(st.values()) == NDEV:
                break
            time.sleep(0.1)
        else:
            self.fail("not every device trained: %r" % st)
        self.send(WARM + 1, WARM + 1 + SCORED)
        total = NDEV * (WARM + 1 + SCORED)
        self.wait_metric("vigil_readings_scored_total", lambda v: v >= total,
                         "every reading scored")
        self.wait_metric("vigil_inference_queue_readings", lambda v: v == 0, "scoring done")
        sample = [name(i) for i in list(range(0, NDEV, 97)) + list(range(NDEV - 20, NDEV))]
        before = {dev: self.preds(dev) for dev in sample}
        for dev in sample:  # the tail holds them all: nothing sealed before the stop
            self.assertGreaterEqual(len(before[dev]["points"]), SCORED, dev)

        self.d.stop(timeout=120)
        self.d.start(timeout=120)
        lost = [dev for dev in sample if self.preds(dev) != before[dev]]
        self.assertEqual(lost, [], "predictions changed by the restart")
        log = self.d.log()
        self.assertNotIn("not saved", log)
        self.assertIn("stopped cleanly", log)
        self.d.stop(timeout=120)


if __name__ == "__main__":
    unittest.main()

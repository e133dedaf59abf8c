#!/usr/bin/python3
"""vigild integration (session 42, scale): what a plant of thousands of devices found.

StopSavesEveryRing: at a stop, every device's newest predictions (the ring's exact tail, sealed
into up to four blocks a device) are saved after the detectors' saves; with 3,000 devices that
is more puts than the store's queue holds (STORE_OPS_MAX, 10,000), and before this session the
puts past it were lost ('the newest predictions of N devices not saved (out of memory or store
busy)', 1,614 of 4,000 devices at every stop of a plant's run). Now the stop waits for the
writer and goes on: it logs no loss, and after the restart every sampled device answers the same
predictions as before the stop. The stop's log says how many detectors it saved and how long
its last scoring and saves took (before, nothing between 'stopping intake' and 'stopped').

PutOffLines: a training thread that finds a device holding an anomaly puts its scheduled
training off and says so in the log; when a fault hits the whole fleet while its trainings wait,
that was one line a device (2,342 within seconds at 4,000 devices). Now the first is logged and
the rest are counted into the next such line, at most one a minute.

AttrsLimit: a device's attributes (PUT /v1/devices/ID) are bounded by storage.max_attrs_bytes
(65,536 bytes of compact JSON by default): a larger PUT is a 413 naming the device and the key,
and stores nothing; one at the limit is taken. Before, only http.max_body_bytes (32 MiB) bounded
them, and they ride in every device listing and the pipeline keeps a copy per device (20 devices
with 4 MB each took 125 MB more RSS). A reload lowers the limit for the next PUT.

Python 3 standard library; every wait is bounded."""

import datetime
import json
import math
import os
import re
import signal
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


def stamp(text):
    """A log line's time (2026-12-04T07:01:01.983Z) in seconds."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


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
            v = self.d.metric(fam)
            if v is not None and ok(v):
                return v
            time.sleep(0.1)
        self.fail("%s: %s stayed %r" % (what, fam, self.d.metric(fam)))

    def preds(self, dev):
        r = self.d.curl("GET", "/v1/devices/%s/predictions?limit=100000" % dev)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_stop_saves_every_ring(self):
        self.send(0, WARM + 1)
        for _ in range(1800):  # bounded: 180 s
            text = self.d.metrics()
            st = {s: vt.metric_in(text, 'vigil_devices_by_state{state="%s"}' % s)
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
        # The stop says what it saved and how long that took, and lost nothing. The whole log:
        # d.log() keeps its last 20,000 characters, and the restart's lines come after.
        with open(self.d.log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()
        self.assertRegex(log, r"the stop's last scoring and saves \(%d detectors, "
                         r"the devices' newest predictions\) took \d+\.\d s" % NDEV)
        self.assertNotIn("not saved", log)
        self.assertIn("stopped cleanly", log)
        self.d.start(timeout=120)
        lost = [dev for dev in sample if self.preds(dev) != before[dev]]
        self.assertEqual(lost, [], "predictions changed by the restart")
        self.d.stop(timeout=120)


class PutOffLines(vt.FreshDaemonTestCase):
    """A plant-wide fault while the fleet's scheduled trainings wait: 300 two-channel devices
    all ask for a training at the same reading and one channel goes wild (a fault swinging by
    300 at every reading) right after, in the
    same request, so the training thread finds nearly every one of them holding an anomaly.
    Before session 42 each logged its own line ('device ... holds an anomaly: its scheduled
    training is put off ...', 2,342 lines in seconds at 4,000 devices); now the first is
    logged, and the others are counted into the next line, at most one a minute (the stop
    tells the count left), and named at debug level: nothing is lost."""

    N = 300
    EVERY = 100

    STREAM = False

    def config(self):
        return ("[daemon]\nlog_level = debug\n"
                "[model]\nwarmup = %d\nkind = linear\nretrain_every = %d\n" % (WARM, self.EVERY))

    @staticmethod
    def value(i, k):
        """A device's load cycle with a little noise (deterministic)."""
        return 50 + 10 * math.sin(2 * math.pi * (k + i) / 20) + ((k * 7919 + i * 104729) % 100) / 500

    def send(self, k0, k1, dip=False):
        body = "".join("m,device=po-%03d a=%.3f,b=%.3f %d\n"
                       % (i, (200 if k % 2 else -100) if dip else self.value(i, k),
                          self.value(i, k + 5) / 2,
                          T0 + 1000 * k)
                       for k in range(k0, k1) for i in range(self.N))
        r = self.d.write_lp(body, precision="ms")
        self.assertEqual(r.status, 204, r)

    def test_put_off_lines_bounded(self):
        self.send(0, WARM + 1)  # the warm-up: every device trains at the same reading
        for _ in range(1800):  # bounded: 180 s
            text = self.d.metrics()
            if (vt.metric_in(text, "vigil_model_trainings_total") == self.N
                    and vt.metric_in(text, "vigil_train_queue_jobs") == 0):
                break
            time.sleep(0.1)
        else:
            self.fail("the warm-up's trainings did not end")
        # Up to the next scheduled training of every device, then the dip, in one request.
        body_end = WARM + 1 + self.EVERY
        self.send(WARM + 1, body_end)
        self.send(body_end, body_end + 20, dip=True)
        for _ in range(1800):  # bounded: 180 s
            text = self.d.metrics()
            if (vt.metric_in(text, "vigil_train_queue_jobs") == 0
                    and vt.metric_in(text, 'vigil_devices_by_state{state="anomaly"}') is not None
                    and vt.metric_in(text, "vigil_inference_queue_readings") == 0):
                break
            time.sleep(0.1)
        self.assertGreater(self.d.metric('vigil_devices_by_state{state="anomaly"}'),
                           self.N // 2)
        self.d.stop()
        with open(self.d.log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()  # whole: d.log() keeps the last 20,000 characters
        # At info level one line names a device, then at most one a minute (a slow machine's
        # burst may outlast the minute: no timing is assumed, only the spacing).
        named = [stamp(m) for m in re.findall(
            r"^(\S+) info  pipeline: device 'po-\d+' holds an anomaly", log, re.M)]
        self.assertGreaterEqual(len(named), 1, "no device's training was put off")
        gaps = [b - a for a, b in zip(named, named[1:])]
        self.assertTrue(all(g >= 59.9 for g in gaps), "%d info lines naming a device, the "
                        "closest %.3f s apart" % (len(named), min(gaps or [0])))
        # The others are each named at debug level, and counted in the info lines (the last
        # count at the stop): as many as named.
        quiet = re.findall(r"debug pipeline: device '(po-\d+)' holds an anomaly", log)
        counts = [int(n) for pair in re.findall(
            r"\(and (\d+) other devices since the last such line\)|"
            r"pipeline: (\d+) other devices holding an anomaly were left out", log)
            for n in pair if n]
        self.assertGreater(len(quiet), 0)
        self.assertEqual(sum(counts), len(quiet), "counted %r, named at debug %d"
                         % (counts, len(quiet)))


CONFIG = "[storage]\nmax_attrs_bytes = %d\n"


class AttrsLimit(vt.FreshDaemonTestCase):
    STREAM = False  # CONFIG "": the defaults

    def put(self, dev, attrs):
        body = attrs if isinstance(attrs, str) else json.dumps(attrs)
        return self.d.curl("PUT", "/v1/devices/%s" % dev, "-H", "Content-Type: application/json",
                           "--data-binary", "@-", stdin=body)

    def test_attrs_limit(self):
        # {"n":"xxx..."} compact is len + 8 bytes: 65,536 at the default limit is taken.
        at = {"n": "x" * (65536 - 8)}
        self.assertEqual(len(json.dumps(at, separators=(",", ":"))), 65536)
        r = self.put("a-1", at)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.d.get_json("/v1/devices/a-1")["attrs"], at)
        # One byte more is refused, naming the device and the key; nothing is stored. Spaces
        # in the body do not count: the limit is on the attributes as stored.
        over = {"n": "x" * (65536 - 7)}
        r = self.put("a-2", json.dumps(over, indent=4))
        self.assertEqual(r.status, 413, r)
        err = r.json()["error"]
        self.assertIn("a-2", err)
        self.assertIn("storage.max_attrs_bytes (65536)", err)
        self.assertIn("65537 bytes", err)
        self.assertEqual(self.d.curl("GET", "/v1/devices/a-2").status, 404)
        # A replacement of a-1's attributes over the limit leaves the old ones.
        self.assertEqual(self.put("a-1", over).status, 413)
        self.assertEqual(self.d.get_json("/v1/devices/a-1")["attrs"], at)
        # A reload lowers it for the next PUT; attributes stored before stay.
        vt.write_file(self.cfg, CONFIG % 100)
        self.d.proc.send_signal(signal.SIGHUP)
        for _ in range(100):  # bounded: 10 s
            if self.put("a-3", {"n": "x" * 93}).status == 413:
                break
            time.sleep(0.1)
        r = self.put("a-3", {"n": "x" * 93})
        self.assertEqual(r.status, 413, r)
        self.assertIn("storage.max_attrs_bytes (100)", r.json()["error"])
        self.assertIn(self.put("a-3", {"n": "x" * 92}).status, (200, 201))
        self.assertEqual(self.d.get_json("/v1/devices/a-1")["attrs"], at)


if __name__ == "__main__":
    unittest.main()

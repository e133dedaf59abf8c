#!/usr/bin/python3
"""vigild integration: anomaly episodes in the log (read66b's finding 8, session 66;
docs/reliability.md "Signals during the start, quiet starts, log floods (session 66)").
An episode's opening is an info line naming the device, the event's id, what opened it and the
sensors by their share; its end is a line saying how it ended (info when cleared, warn when the
detector accepted or released it by itself). Before session 66 neither was logged.

One sensor's overshooting fault (test_evcont.py's overshoot, seed 1): two events, the first
ended "cleared". The rate limit (10 lines a minute of each) is unit_common's
test_log_limit_burst.

Python 3 standard library.
"""

import fcntl
import os
import re
import select
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import test_evcont as tc  # noqa: E402  (helpers only: its TestCases are not collected here)
import test_events as te  # noqa: E402  (helpers only)
import test_stopqueue as sq  # noqa: E402  (its test cases not imported: run by it_stopqueue)
import vigiltest as vt  # noqa: E402


class EpisodesLogged(tc.ChainBase):
    def test_open_and_cleared_end_are_logged(self):
        dev = "evlog-1"
        rows = tc.overshoot(1500, 1.5, 1)
        self.trained(dev, rows, ["level"])
        self.post(dev, rows[tc.ONSET:], tc.ONSET, ["level"])
        first, second = self.two_events(dev)
        self.assertEqual(first["ended_by"], "cleared", first)
        opened = tp.logged(self.d, r" info  anomaly: device '%s': event (\d+) opened \(by (\w+); "
                           r"sensors: level 100%%\)" % dev, 2)
        log = self.d.log()
        self.assertEqual(opened, [(str(first["id"]), first["opened_by"]),
                                  (str(second["id"]), second["opened_by"])], log[-4000:])
        self.assertRegex(log, r" info  anomaly: device '%s': event %d ended: cleared \(the "
                         r"readings came back to what the model expects\) after \S+ of "
                         r"readings \(peak [0-9.]+\)" % (dev, first["id"]))
        # A restart's catch-up says none of them again.
        self.d.stop()
        self.d.start()
        after = self.d.log().split("==== start #2")[1]
        self.assertNotIn("anomaly: device", after)


class CatchUpLogged(tp.Holds, tc.ChainBase):
    """Task ops68: the restore's catch-up logs the episodes it opens under an id no stored row
    had (their readings acknowledged, not scored, at a kill -9: no vigild said them), during the
    restore; those an earlier vigild logged, it does not say again. vigild runs with
    VIGIL_TEST_HOLD_DIR: "shard-score" there holds a committed message before its scoring
    (daemon/pipeline.c shard_main)."""

    def restored_part(self):
        """The second start's log up to the restore's last line (its catch-up's lines)."""
        after = self.d.log().split("==== start #2")[1]
        end = re.search(r"pipeline: \d+ detectors restored", after)
        self.assertIsNotNone(end, after[-4000:])
        return after[:end.start()]

    def test_episodes_the_catch_up_opens_first_are_logged(self):
        dev = "evlog-2"
        rows = tc.overshoot(1500, 1.5, 1)
        self.trained(dev, rows, ["level"])
        hold = os.path.join(self.holds, "shard-score")
        vt.write_file(hold, "")
        tp.post_readings(self.d, dev, rows[tc.ONSET:],
                         [te.T0 + 1000 * i for i in range(tc.ONSET, len(rows))], ["level"])
        vt.wait_for("the shard held before scoring", lambda: os.path.exists(hold + ".held"), 10)
        self.d.kill()  # the fault's readings acknowledged (committed), none scored
        os.remove(hold)
        self.assertNotIn("anomaly: device", self.d.log())
        self.d.start()
        first, second = self.two_events(dev)
        self.assertEqual(first["ended_by"], "cleared", first)
        said = self.restored_part()
        opened = re.findall(r" info  anomaly: device '%s': event (\d+) opened \(by \w+; "
                            r"sensors: level 100%%\)" % dev, said)
        self.assertEqual(opened, [str(first["id"]), str(second["id"])], said[-4000:])
        self.assertRegex(said, r" info  anomaly: device '%s': event %d ended: cleared " % (
            dev, first["id"]))
        # Once each: the restore's end says none again.
        self.assertEqual(self.d.log().count("event %d opened" % first["id"]), 1)

    def test_end_of_an_episode_open_at_the_kill_is_logged(self):
        """read69a's finding 1 (session 69): the first event opened and said live, the readings
        that end it acknowledged but not scored at a kill -9 (the shard held). The catch-up
        opens it again under its stored id and ends it: no vigild said that end. Before, its
        line was dropped (not `unsaid`: the stored row's id), in neither start's log."""
        dev = "evlog-6"
        rows = tc.overshoot(1500, 1.5, 1)
        self.trained(dev, rows, ["level"])
        k = tc.ONSET
        while True:  # a reading at a time until the first event is open
            self.post(dev, rows[k:k + 1], k, ["level"])
            k += 1
            evs = self.events(dev)
            if evs and evs[0]["active"]:
                break
        first = evs[0]
        self.assertEqual(len(tp.logged(self.d, "event %d opened" % first["id"], 1)), 1)
        sq.wait_stored("event %d stored" % first["id"], self.d, dev, first["id"], 10,
                       ended=False)
        hold = os.path.join(self.holds, "shard-score")
        vt.write_file(hold, "")
        tp.post_readings(self.d, dev, rows[k:], [te.T0 + 1000 * i for i in range(k, len(rows))],
                         ["level"])
        vt.wait_for("the shard held before scoring", lambda: os.path.exists(hold + ".held"), 10)
        self.d.kill()
        os.remove(hold)
        self.assertNotIn("event %d ended" % first["id"], self.d.log())
        self.d.start()
        after = self.two_events(dev)
        self.assertEqual(after[0]["id"], first["id"], after)
        self.assertEqual(after[0]["ended_by"], "cleared", after)
        said = self.restored_part()
        self.assertRegex(said, r" info  anomaly: device '%s': event %d ended: cleared "
                         % (dev, first["id"]))
        log = self.d.log()
        self.assertEqual(log.count("event %d opened" % first["id"]), 1, said[-4000:])
        self.assertEqual(log.count("event %d ended" % first["id"]), 1, said[-4000:])

    def two_stored_then_killed(self, dev):
        """The overshoot's two events of dev, live, stored and logged; then a kill -9 (the
        detector's last save at the training of reading 1,200: the catch-up replays them).
        Returns (first, second)."""
        rows = tc.overshoot(1500, 1.5, 1)
        self.trained(dev, rows, ["level"])
        self.post(dev, rows[tc.ONSET:], tc.ONSET, ["level"])
        first, second = self.two_events(dev)
        for e in (first, second):
            sq.wait_stored("event %d stored" % e["id"], self.d, dev, e["id"], 10,
                           ended=not e["active"])
        self.assertEqual(len(tp.logged(self.d, "event %d opened" % second["id"], 1)), 1)
        self.d.kill()
        return first, second

    def assert_none_said_again(self):
        after = self.d.log().split("==== start #2")[1]
        self.assertIn("catching up", after)
        self.assertNotIn("anomaly: device", after)

    def test_episodes_logged_before_a_kill_are_not_said_again(self):
        dev = "evlog-3"
        first, second = self.two_stored_then_killed(dev)
        self.d.start()
        self.assert_none_said_again()
        self.assertEqual([e["id"] for e in self.two_events(dev)], [first["id"], second["id"]])

    def test_stored_episode_opened_later_by_the_replay_is_not_said_again(self):
        """Session 69 (ops68's review): the catch-up's replay opens a stored episode a reading
        later than its row began (here the row's start moved a second earlier with sqlite3
        while vigild is down, as a live run that opened it on a reading the replay judges
        otherwise): it is the stored episode (same device, overlapping), not a new one. Before,
        the replay numbered it past every stored row and said "opened" during the restore, and
        the stored row was ended after the catch-up: the episode listed twice. The second
        event, open at the kill (the restore's `ahead` row); test_ended_... the first, ended."""
        self.moved_start_replayed("evlog-4", 1)

    def test_ended_episode_opened_later_by_the_replay_is_not_said_again(self):
        """As above, the first event's row (ended "cleared" before the kill) begun a second
        earlier: the replay's opening, a reading after it, takes that row's id and start."""
        self.moved_start_replayed("evlog-5", 0)

    def moved_start_replayed(self, dev, which):
        evs = self.two_stored_then_killed(dev)
        earlier = evs[which]["start_ts"] - 1000
        subprocess.run(["sqlite3", self.d.db_path, "UPDATE events SET start_ts = %d WHERE id = "
                        "%d AND device_id = (SELECT id FROM devices WHERE name = '%s');"
                        % (earlier, evs[which]["id"], dev)], check=True)
        self.d.start()
        self.assert_none_said_again()
        after = self.two_events(dev)
        self.assertEqual([e["id"] for e in after], [e["id"] for e in evs], after)
        self.assertEqual(after[which]["start_ts"], earlier, after[which])
        self.assertEqual(len(self.events(dev)), 2, self.events(dev))


class BlockedStderr(unittest.TestCase):
    """Task ops68: an episode's line written while its shard holds the device's lock held the
    device as long as the write blocked (stderr a journal pipe not read): the device's status,
    its anomalies and /metrics (every device's lock) did not answer. The shard now writes its
    lines after letting the lock go. vigild's stderr here is a pipe of one page, filled by the
    test, whose reader it pauses."""

    def setUp(self):
        self.r, self.w = os.pipe()
        fcntl.fcntl(self.w, 1031, 4096)  # F_SETPIPE_SZ: one page
        self.out, self.reading = [], threading.Event()
        self.reading.set()
        threading.Thread(target=self.reader, daemon=True).start()
        self.tmp = vt.mkdtemp()
        self.http_port = vt.free_ports(1)[0]
        self.proc = subprocess.Popen(
            [vt.VIGILD, "--config", tp.make_config(te.Released.CONFIG), "--data-dir",
             os.path.join(self.tmp, "data"), "--http", "127.0.0.1:%d" % self.http_port,
             "--stream", "off"], stdin=subprocess.DEVNULL, stdout=self.w, stderr=self.w)
        vt.wait_for("/healthz", lambda: self.answer("/healthz", 2) == 200, 15)

    def tearDown(self):
        self.reading.set()
        self.proc.terminate()
        self.proc.wait(60)
        os.close(self.w)

    def reader(self):
        """Reads vigild's output while self.reading is set. It reads only after select said
        there is something and the event is still set, so once the test has cleared it (and
        waited out a read under way) no read can take what the test wrote to fill the pipe."""
        while True:
            if not self.reading.is_set():
                time.sleep(0.01)
                continue
            if not select.select([self.r], [], [], 0.05)[0] or not self.reading.is_set():
                continue
            b = os.read(self.r, 65536)
            if not b:
                return
            self.out.append(b)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    def answer(self, path, timeout):
        """path's status code, or None when vigild did not answer within timeout."""
        try:
            return vt.http_request("GET", self.url(path), timeout=timeout)[0]
        except OSError:
            return None

    def test_a_blocked_write_holds_no_device(self):
        dev = "evlog-4"
        rows = tc.overshoot(1500, 1.5, 1)
        post = lambda k, to: (  # noqa: E731
            tp.post_readings(self, dev, rows[k:to], [te.T0 + 1000 * i for i in range(k, to)],
                             ["level"]), tp.wait_scored(self, dev, to))
        post(0, 200)
        tp.wait_idle(self, dev, 1)
        post(200, 1200)
        tp.wait_idle(self, dev, 2)
        post(1200, tc.ONSET)
        self.reading.clear()
        time.sleep(0.5)  # the reader's last read over
        fl = fcntl.fcntl(self.w, fcntl.F_GETFL)
        fcntl.fcntl(self.w, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        try:
            while True:
                os.write(self.w, b"#" * 512)
        except BlockingIOError:
            pass  # full: vigild's next line blocks
        fcntl.fcntl(self.w, fcntl.F_SETFL, fl)
        to = tc.ONSET + 10
        tp.post_readings(self, dev, rows[tc.ONSET:to],
                         [te.T0 + 1000 * i for i in range(tc.ONSET, to)], ["level"])
        # The shard is held in the opening's line: the readings after it wait unscored.
        time.sleep(1.0)
        for path in ("/v1/devices/%s/status" % dev, "/v1/devices/%s/anomalies" % dev,
                     "/metrics"):
            self.assertEqual(self.answer(path, 10), 200, path)
        self.assertLess(tp.status(self, dev)["readings_scored"], to)
        self.reading.set()
        tp.wait_scored(self, dev, to)
        vt.wait_for("the opening's line", lambda: re.search(
            r"anomaly: device '%s': event \d+ opened" % dev,
            b"".join(self.out).decode("utf-8", "replace")), 10)


if __name__ == "__main__":
    unittest.main(verbosity=2)

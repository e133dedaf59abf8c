#!/usr/bin/env python3
"""The restore's "restart" ends still kept when vigild ends (daemon/pipeline_restart_retry.c's
pipeline__restart_stop): the one line saying how many rows are left open to the next restart
(task stop62), beside what the retries came to for the others (task stop63), at a stop and after
a start that failed past the restore; and the teardown's other lines after a failed start
(task knobs64: FailedStartLines). Split from test_stopqueue.py (it_stopqueue: the retries
while vigild runs, RestartEndRetried, whose fixtures these tests borrow) when that file reached
950 lines."""
import os
import re
import socket
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import vigiltest as vt  # noqa: E402
import test_events as te  # noqa: E402  (its test cases not imported: run by it_events)
import test_stopqueue as sq  # noqa: E402  (likewise: run by it_stopqueue)
import test_versions as tv  # noqa: E402  (likewise: run by it_versions)
from test_maint import stored_event  # noqa: E402

LEFT_OPEN = "the \"restart\" ends of 1 events are not known stored %s: their rows are left open " \
    "to the next restart"


class RestartEndsLeftAtTheStop(te.Events):
    """A vigild whose events' insert fails from the start (failmaint.c, the flag file), so the
    restore's "restart" ends of open rows behind a later event are kept to be put again."""
    CONFIG = te.Released.CONFIG
    setUp = sq.OpenBehindALaterEvent.setUp
    post = sq.OpenBehindALaterEvent.post
    hold_the_stop = sq.RestartEndRetried.hold_the_stop
    stop_releasing_writer = sq.RestartEndRetried.stop_releasing_writer

    def test_ends_left_open_at_the_stop_said(self):
        """Task stop62 (item 2): an end kept while the store refuses it (the events' insert
        failing from the start, failmaint.c), then SIGTERM: the stop puts no end again, and its
        freeing of the kept ends says in one line how many rows are left open to the next
        restart. Main's pipeline_destroy freed them without a word."""
        d, dev = self.d, "retry-left-at-stop"
        _, _, old = sq.restart_end_failing(self, dev)  # the fault goes on
        tp.wait_for("the retries begun", lambda: "are not known stored: put again" in d.log(),
                    30)
        d.stop(codes=(0,))
        self.assertEqual(d.log().count(LEFT_OPEN % "at the stop"), 1, d.log())
        self.assertEqual(stored_event(d.db_path, dev, old)[0], None, "left open")

    def test_stored_and_left_open_both_said_at_the_stop(self):
        """Task stop63 (item 1): two kept ends (rows 5000 and 5001 behind the event, their puts
        lost at the start), the store's queue of puts bound at 2 (VIGIL_TEST_OPS_MAX: a round
        puts none while one is queued) and the writer held in a round's put of the first
        (failmaint.c's "hold"), let go once the stop waits at its "stop-begin" hold
        (stop_releasing_writer): the stop's flush commits that end and its settle says it
        stored; the other, never put again, is left open. Both are said. Main's stop said the
        one left open only: the stored end's line (restart_done's) was said only once no end
        was left, and the stop freed the list without it."""
        d, dev = self.d, "retry-two-at-stop"
        sq.two_rows_behind(self, dev)
        hold = self.hold_the_stop()
        d.prefix += ["VIGIL_TEST_OPS_MAX=2"]
        vt.write_file_atomic(self.flag, "fail")  # the events' insert fails from the start
        d.start()
        tp.wait_for("the retries begun", lambda: re.search(
            r"the \"restart\" ends of 2 events are not known stored: put again", d.log()), 30)
        vt.write_file_atomic(self.flag, "hold")  # the next round's first put held in the writer
        tp.wait_for("the round's put held", lambda: os.path.exists(self.flag + ".held"), 30)
        self.stop_releasing_writer(hold, self.flag)
        ends = {eid: stored_event(d.db_path, dev, eid)[0] for eid in (5000, 5001)}
        self.assertEqual(sum(end is not None for end in ends.values()), 1, ends)
        log = d.log()
        self.assertEqual(len(re.findall(r"the \"restart\" ends of 1 events are stored \(\d of "
                                        r"them counted now", log)), 1, log)
        self.assertEqual(log.count(LEFT_OPEN % "at the stop"), 1, log)
        self.assertNotIn("stopped, but", log)

    def test_ends_left_open_after_a_failed_start_said(self):
        """Task stop63 (item 2): a start that fails past the restore (its HTTP port taken) with
        an end kept (the fault on): vigild__teardown frees the pipeline with no tick of the
        maintenance timer run (the loop runs only to close its handles; the stop's own ticks
        put nothing), and the line says "after the failed start", as the teardown's own lines
        do; the row is left open. Main's said "at the
        stop" of a vigild that never ran."""
        d, dev = self.d, "retry-failed-start"
        _, _, old = sq.restart_end_failing(self, dev)  # the fault goes on
        d.stop(codes=(0,))
        out = failed_start(self, d)
        self.assertIn("are not known stored: put again", out)  # kept by the restore
        self.assertEqual(out.count(LEFT_OPEN % "after the failed start"), 1, out)
        self.assertNotIn("at the stop", out)
        self.assertEqual(stored_event(d.db_path, dev, old)[0], None, "left open")


def failed_start(test, d, env=()):
    """Starts d's vigild (stopped) again with its HTTP port taken (and env's variables, NAME=value
    each): the start fails past the restore (the port is bound after it), and vigild__teardown
    frees what it set up. Asserts the exit (1), the reason and no sanitizer report; returns the
    output."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        args = ["env"] + list(env) + d.prefix + [
            vt.VIGILD, "--config", d.config, "--data-dir", d.data_dir,
            "--http", "127.0.0.1:%d" % holder.getsockname()[1], "--stream", "off"]
        p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
    finally:
        holder.close()
    out = p.stdout
    test.assertEqual(p.returncode, 1, out)
    test.assertIn("cannot listen for HTTP", out)
    for marker in ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer"):
        test.assertNotIn(marker, out)
    return out


class FailedStartLines(tp.DaemonPerTest):
    """The teardown's own lines after a failed start (task knobs64, item 2): pipeline_stop's
    due trainings left and stop.c's closing line on the scoring and saves said "at stop" and
    "the stop's" of a vigild that never ran."""
    CONFIG = tv.StopSkipsQueuedTrainings.CONFIG
    queue_trainings = tv.StopSkipsQueuedTrainings.queue_trainings

    def test_failed_start_says_what_its_teardown_did(self):
        """Trainings queued (one training thread) and a stop that leaves most of them asked
        for; the next start asks for them again in its restore, then fails (its HTTP port
        taken): its teardown leaves them again and saves the detectors. Its lines say "after
        the failed start" and neither "at stop" nor "the stop's". Main's said "N due
        trainings not run at stop" and "the stop's last scoring and saves (...) took"."""
        d = self.d
        self.queue_trainings(300)
        d.stop(timeout=60)
        # The failed start's one training thread waits at "take" (VIGIL_TEST_HOLD_DIR,
        # daemon/pipeline_train.c: until the teardown's pipeline_stop sets p->stopping) with the
        # first training its restore asked for again: the others stay due however long the
        # start takes to fail (under load it could otherwise run them all, the count 0 and its
        # line not logged: review of knobs64).
        holds = os.path.join(d.tmp, "holds")
        os.makedirs(holds)
        vt.write_file(os.path.join(holds, "take"), "")
        out = failed_start(self, d, ["VIGIL_TEST_HOLD_DIR=" + holds])
        m = re.search(r"(\d+) trainings asked for before the stop asked again", out)
        self.assertIsNotNone(m, out[-3000:])
        asked = int(m.group(1))
        self.assertGreater(asked, 0, out[-3000:])  # the stop left them (StopSkipsQueuedTrainings)
        m = re.search(r"pipeline: (\d+) due trainings not run after the failed start \(saved as "
                      r"asked for", out)
        self.assertIsNotNone(m, out[-3000:])
        self.assertGreaterEqual(int(m.group(1)), asked - 1, out[-3000:])  # one taken at most
        self.assertRegex(out, r"pipeline: after the failed start, the scoring still queued and "
                              r"the saves \(\d+ detectors, the devices' newest predictions\) "
                              r"took")
        for said in ("not run at stop", "the stop's", "the stop waited", "stopped, but"):
            self.assertNotIn(said, out)


if __name__ == "__main__":
    vt.main()

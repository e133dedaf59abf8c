"""vigild: two gaps around a training's end (docs/reliability.md, "Two gaps around a training's
end (session 51)"), each held open by the training thread's test hook: with VIGIL_TEST_HOLD_DIR
set, a training thread reaching a point waits while the file of the point's name exists in that
directory, "<point>.held" existing meanwhile (daemon/pipeline_train.c, test_hold). No timing
guess: every wait is for a state the daemon shows, bounded.

1. RequestAfterItsPart: a device's own request (its schedule's) made once its part of a training
   is over, while the training's flags are not yet cleared (hold "end"), is asked again as the
   training ends, for a group's member and for a device alone. Main merged it into the training
   with nothing left to run it: lost, no second version until the schedule asked again
   retrain_every readings later. The same for a device that joins the group while the group
   trains (hold "apply"): that training does not take it.
2. PutBeforeTheKeptListed: a PUT of weights after a training recorded a kept decision (the
   training made stale by a PUT while it ran, hold "apply") and before that record is listed
   (hold "confirm") takes a number of its own, after the record's. Main numbered it after the
   listed versions and the serving one alone: the record's number, two records of one number
   listed and one of them lost in the store.
3. MovedBetweenTrainings (session 52): a device that joins a training group while its own
   group's training runs, and asks once that training ended: asked again as the second one
   ends (main: the first one's end cleared its left_out, and the request was lost).
4. JoinedThenLeftForAnIdleGroup (session 52): a device that joined a training group, asked
   (merged), then moved to a group that does not train, or to no group: the move asks for its
   new group's training, or its own (main: lost, the first group's end no longer saw it).
5. JoinBeforeTheCopy (session 52): a device that joins after a training took its group's
   entry (hold "take") and before it copied the members is in that training: its request
   while its part runs is answered, not asked again (main: one training more).
6. PartThatDoesNotTrain (session 53): a request made before the device's part began, which
   the begin clears as the part's window answers it, is asked again when the part then does
   not train (here the stop abandons it; main: dropped).
7. ChannelsChangedWhileItRan (session 53): an operator's retrain dropped because the device's
   channels changed while it ran is logged (main: no line); one dropped because the device
   was deleted and fed again meanwhile says so (review of session 54; main: "its channels
   changed").
8. WindowTooShort (review of session 53): a part whose window holds too few readings is said
   in one line (main: none), and a request made before it began is asked again once, not in a
   loop (main: dropped). No loop is proved by a later training, asked once gw's second has
   ended (vigil_train_jobs_ended_total), that trains with nothing of gw's before it (session
   55; a 2 s sleep before).
9. OutOfMemoryAtTheCopy (session 56): a group's training whose copy of the member list fails
   (out of memory, tests/fault/failalloc.c) ends as any other does: operator's retrains of its
   members asked while the entry was taken (hold "take") are asked again, and the group trains
   (main: returned early, the retrains lost until the next schedule). Session 57: only the
   allocations of the copy's size fail (failalloc's range), no premise about fopen's.
10. EndWithNoMemoryForACopy (session 57's OutOfMemoryAtTheSecondCopy; session 59): a request
   of a member that joined while the group trained is asked again as the training ends (before
   57: lost until the schedule), by a walk of the member list that allocates nothing: with the
   copies of the list failing, failalloc.c fails nothing (57 and 58 copied it: [824]).
11. EndWalkRejoined (review, session 57; no fault library since 59): as 10, with the end's walk
   held (hold "walk") at the group's first member while it leaves the group and joins it again;
   the walk starts over and still reaches the joiner (as first written, it went on from that
   member's new place at the list's end and skipped it).
12. RollbackOutOfMemory (session 58): a group rollback with allocations of the size of a copy
   of the group's member list failing on the HTTP threads rolls every member back (main: the
   copy failed, only the asking member was rolled back, the others stayed on their versions
   with a 200 and no line). The rollback walks the list now (pipeline__group_next), no copy.
13. RollbackWalkRestarted (review, session 58): a member that leaves the group and joins it
   again, over and over while the rollback walks it, sends the walk back to the start each
   time; every other member is read and said in the log once (before the fix: once more at
   each restart).
14. MemberLeftDuringItsRead (session 59): a member that leaves the group while the group's
   rollback reads its record (hold "rollback-read") stays as it is (with the still-in-the-group
   check taken out: rolled back in its new group).

Python 3 standard library.
"""

import json
import os
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_groups as tg  # noqa: E402  (helpers only)
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import vigiltest as vt  # noqa: E402
from test_reliability import FAILALLOC, needs_failalloc  # noqa: E402

EVERY = 100  # retrain_every: the schedule's next request, EVERY readings after a training


class Held(tg.Held):
    """tg.Held with the steps these tests share."""

    def asks_merged(self, dev, rng):
        """Feeds dev the readings its schedule asks at (the EVERY-th after its training's
        apply) and checks the request was merged (vigil_train_postponed_total rises)."""
        merged = self.d.metric("vigil_train_postponed_total")
        tg.feed_together(self.d, [dev], {dev: tp.rotation(EVERY + 10, tp.WARMUP, 0.07, 0.01, rng)},
                         tp.WARMUP)
        self.assertGreater(self.d.metric("vigil_train_postponed_total"), merged)

    def gc_alone_then_group_held(self, group, seed, point):
        """gc trained alone (version 1); ga and gb put into group and fed their warm-up, the
        group's first training held at point. Returns the random source for what follows."""
        d, devs = self.d, ["ga", "gb"]
        rng = tp.random.Random(seed)
        tg.feed_together(d, ["gc"], {"gc": tp.rotation(tp.WARMUP, 0, 0.07, 0.01, rng)}, 0)
        self.assertEqual([v["version"] for v in tp.wait_idle(d, "gc", 1)["versions"]], [1])
        for dev in devs:
            tg.put_group(d, dev, group)
        self.hold(point)
        tg.feed_together(d, devs, {dev: tp.rotation(tp.WARMUP, 0, 0.07, 0.01, rng)
                                   for dev in devs}, 0)
        self.held(point)
        return rng

    def ended(self):
        """vigil_train_jobs_ended_total: training jobs whose end is over."""
        return self.d.metric("vigil_train_jobs_ended_total")

    def group_of_idle(self, group, n):
        """n devices put into group, with two readings each (they never train)."""
        others = ["%s-%d" % (group, i) for i in range(n)]
        for dev in others:
            tg.put_group(self.d, dev, group)
        lines = "".join("m,device=%s x=%d,y=%d,z=%d %d\n" % (dev, k, k, k, tg.T0 + 1000 * k)
                        for dev in others for k in range(2))
        self.assertEqual(self.d.write_lp(lines, precision="ms").status, 204)
        for dev in others[::32]:
            tp.wait_scored(self.d, dev, 2)


def versions(d, dev):
    return [v["version"] for v in tp.models(d, dev)["versions"]]


class RequestAfterItsPart(Held):
    CONFIG = tp.config_text(EVERY)

    def request_in_the_gap(self, devs, asks):
        """Feeds devs their warm-up together (their first training asked), holds that training
        at "end" (every member's version listed, no training shown), feeds `asks` the readings
        its schedule asks at, then lets the training end; returns the versions of devs once a
        second one is listed on each (main: none came)."""
        d = self.d
        self.hold("end")
        rng = tp.random.Random(51)
        tg.feed_together(d, devs, {dev: tp.rotation(tp.WARMUP, 0, 0.07, 0.01, rng)
                                   for dev in devs}, 0)
        self.held("end")
        for dev in devs:
            m = tp.models(d, dev)
            self.assertEqual(([v["version"] for v in m["versions"]], m["training"]), ([1], False))
        # Merged into the held training (its flags still set): main dropped it there.
        self.asks_merged(asks, rng)
        self.assertEqual(versions(d, asks), [1])
        self.release("end")
        tg.wait_newer(d, devs, 1, "the training the request asked for", 90)
        return {dev: versions(d, dev) for dev in devs}

    def test_a_members_request_after_its_part(self):
        devs = ["ga", "gb"]
        for dev in devs:
            tg.put_group(self.d, dev, "gap51")
        got = self.request_in_the_gap(devs, "gb")
        self.assertEqual(got, {"ga": [2, 1], "gb": [2, 1]})  # one group training, one number

    def test_a_devices_request_after_its_training(self):
        self.assertEqual(self.request_in_the_gap(["solo"], "solo"), {"solo": [2, 1]})

    def test_a_joiners_request_while_its_group_trains(self):
        """gc, trained alone, joins the group while the group's first training runs (held at
        "apply": its member list copied without gc) and asks (its schedule): asked again as
        that training ends, which trains the group with gc. Main: merged and lost."""
        d, devs = self.d, ["ga", "gb"]
        rng = self.gc_alone_then_group_held("gap51j", 52, "apply")
        tg.put_group(d, "gc", "gap51j")
        self.asks_merged("gc", rng)
        self.release("apply")
        tg.wait_newer(d, devs + ["gc"], 1, "the training gc's request asked for", 90)
        self.assertEqual({dev: versions(d, dev) for dev in devs + ["gc"]},
                         {"ga": [2, 1], "gb": [2, 1], "gc": [2, 1]})


class MovedBetweenTrainings(Held):
    """Session 52: a device that moves from a group whose training runs to another group that
    trains too (two training threads). Main: the first training's end cleared the left_out
    its join had set, so its request, merged into the second training with nothing to run for
    it, was lost."""
    CONFIG = tp.config_text(EVERY, extra="train_threads = 2\n")

    def test_a_request_after_moving_into_a_training_group(self):
        d = self.d
        rng = tp.random.Random(53)
        for dev in ("ga", "x"):
            tg.put_group(d, dev, "move52a")
        tg.put_group(d, "gb", "move52b")
        # move52a's first training (ga and x), held at "end": both parts over.
        self.hold("end")
        tg.feed_together(d, ["ga", "x"], {dev: tp.rotation(tp.WARMUP, 0, 0.07, 0.01, rng)
                                          for dev in ("ga", "x")}, 0)
        self.held("end")
        # move52b's first training (gb alone: its member list copied), held at "apply".
        self.hold("apply")
        tg.feed_together(d, ["gb"], {"gb": tp.rotation(tp.WARMUP, 0, 0.07, 0.01, rng)}, 0)
        self.held("apply")
        tg.put_group(d, "x", "move52b")  # joins move52b while it trains
        self.release("end")  # move52a's training ends (main: cleared x's left_out)
        tp.wait_for("move52a's training over", lambda: not os.path.exists(
            os.path.join(self.holds, "end.held")) or None, 60)
        # x's schedule asks at the EVERY-th reading after its training's apply: merged into
        # move52b's training, which does not take it.
        self.asks_merged("x", rng)
        self.assertEqual(versions(d, "x"), [1])
        self.release("apply")
        # Asked again as move52b's training ends: a training of move52b with x (main: none).
        tg.wait_newer(d, ["x"], 1, "the training x's request asked for", 90)
        got = {dev: versions(d, dev)[0] for dev in ("gb", "x")}
        self.assertEqual(got["gb"], got["x"], got)  # one training of move52b, one number


class JoinedThenLeftForAnIdleGroup(Held):
    """Session 52: gc joins a group while it trains (in no member list of that training), asks
    (merged: asked again as that training ends), then moves to a group that does not train
    before it ends, or to no group: the move asks for its new group's training, or gc's own.
    Main: the first group's end no longer saw gc (neither its training's members nor its
    group's), and the request was lost."""
    CONFIG = tp.config_text(EVERY)

    def merged_then_moved(self, to):
        d = self.d
        rng = self.gc_alone_then_group_held("left52", 55, "apply")
        tg.put_group(d, "gc", "left52")
        self.asks_merged("gc", rng)
        tg.put_group(d, "gc", to)  # no training: asked for its new group (or gc alone) now
        self.release("apply")
        tg.wait_newer(d, ["gc"], 1, "the training gc's request asked for", 90)
        self.assertEqual(versions(d, "gc"), [2, 1])

    def test_a_request_merged_then_moved_to_an_idle_group(self):
        self.merged_then_moved("idle52")

    def test_a_request_merged_then_moved_to_no_group(self):
        # Review, session 52: the branch still lost it (a move to no group asked nothing).
        self.merged_then_moved(None)


class JoinBeforeTheCopy(Held):
    """Session 52: gc joins the group after a training took the group's entry ("take") and
    before it copied the member list, so that training takes gc; gc's request while its part
    runs is merged into it and answered. Main: the join had set gc's left_out (the group
    trains), which nothing cleared before the request, so the request was asked again after
    the training: one training more. One training thread: a probe device queued before the
    training ends is taken only after its end asked (or not) again, so the queue shows it."""
    CONFIG = tp.config_text(EVERY, extra="train_threads = 1\n")

    def test_a_joiner_taken_by_the_training_is_not_asked_again(self):
        d, devs = self.d, ["ga", "gb"]
        rng = self.gc_alone_then_group_held("join52", 54, "take")
        tg.put_group(d, "gc", "join52")  # the group trains: main set gc's left_out
        self.hold("apply")
        self.release("take")
        self.held("apply")  # gc's part runs (its window read)
        self.assertTrue(tp.models(d, "gc")["training"])
        self.asks_merged("gc", rng)
        self.hold("end")
        self.release("apply")
        self.held("end")
        tg.feed_together(d, ["probe"], {"probe": tp.rotation(tp.WARMUP, 0, 0.07, 0.01, rng)}, 0)
        tp.wait_for("the probe queued",
                    lambda: d.metric("vigil_train_queue_jobs") == 1 or None, 60)
        self.hold("take")
        self.release("end")
        self.held("take")  # the probe's training: the group's training has ended
        self.assertEqual(d.metric("vigil_train_queue_jobs"), 0)  # main: 1, gc's
        self.release("take")
        tp.wait_idle(d, "probe", 1, timeout=60)
        # One training of join52 with gc, which leads (the newest version): number 2 for all.
        self.assertEqual({dev: versions(d, dev) for dev in devs + ["gc"]},
                         {"ga": [2], "gb": [2], "gc": [2, 1]})


class PartThatDoesNotTrain(Held):
    """Session 53: gc joins the group after a training took the group's entry ("take") and
    asks (merged: its join set left_out, so `again`) before its part begins; the part's begin
    clears the request as its window answers it, and then the part does not train (the stop
    abandons the training). The asker, ga, left the group meanwhile, so the group is not due
    for it at the next start. Main: gc's request was dropped; now it is asked again as the
    training ends (kept as asked for at the stop), and the next start trains the group."""
    CONFIG = tp.config_text(EVERY, hidden=64, extra="kind = lstm\nlstm_min_rows = 0\n"
                            "train_threads = 1\n")

    def test_a_request_cleared_at_its_begin_is_asked_again(self):
        d = self.d
        rng = tp.random.Random(56)
        tg.feed_together(d, ["gc"], {"gc": tp.rotation(tp.WARMUP, 0, 0.07, 0.01, rng)}, 0)
        self.assertEqual([v["version"] for v in tp.wait_idle(d, "gc", 1)["versions"]], [1])
        for dev in ("ga", "gb"):
            tg.put_group(d, dev, "gone53")
        # ga's warm-up first: ga asks (the asker), gb's request is merged into its entry.
        self.hold("take")
        for dev in ("ga", "gb"):
            tg.feed_together(d, [dev], {dev: tp.rotation(tp.WARMUP, 0, 0.07, 0.01, rng)}, 0)
        self.held("take")
        tg.put_group(d, "gc", "gone53")  # in the training (its members not yet copied)
        self.asks_merged("gc", rng)  # before its part begins: again
        tg.put_group(d, "ga", None)  # the asker leaves: its request is ga's own at the start
        # Still held at "take": the hold ends once the stop has set the pipeline's stopping
        # flag (test_hold), so the group's LSTM run, which reads it before each minibatch, is
        # abandoned at its first (until the review the test released the hold as the log said
        # the stop began, before the flag was set: the run could end first).
        d.stop()
        self.release("take")  # or the restart's training would wait at it
        self.assertIn("abandoned at the stop; not asked again for this group: device 'ga', "
                      "whose schedule asked for it, has left it", d.log())
        d.start()
        # gc's request, saved as asked for: a training of gone53 with gc, numbered after gc's
        # 1 (main: none, gc stays at 1 until its schedule asks again, EVERY readings on).
        tg.wait_newer(d, ["gc"], 1, "the training gc's request asked for", 60)
        self.assertEqual(versions(d, "gc"), [2, 1])
        # One model in the group: gb, which had none, serves what gc serves, under the number
        # that names it on gc (the group's new model: 2 on both; the group's kept one, gc's 1:
        # gc records the kept decision as 2, and gb installs that model as its 1). gb's version
        # is written after gc's: waited for (the ASan stage of one CI run looked at once and
        # found none yet, session 54).
        tp.wait_for("gb's model from the group's training", lambda: versions(d, "gb") or None, 60)
        serving = {dev: tp.models(d, dev)["serving"]["version"] for dev in ("gb", "gc")}
        self.assertEqual(serving["gb"], serving["gc"], serving)
        self.assertEqual(versions(d, "gb"), [serving["gc"]])


class ChannelsChangedWhileItRan(Held):
    """Session 53: an operator's retrain (202) of a device whose channel set changes while the
    training runs is dropped (its job is stale: the device's model learns again on the new
    channels); the log now says so. Main: no version, and no line about the training."""
    CONFIG = tp.config_text(0)

    def retrain_held(self, dev, seed):
        """dev trained on its warm-up, then an operator's retrain (202) held at "apply"."""
        rng = tp.random.Random(seed)
        tg.feed_together(self.d, [dev], {dev: tp.rotation(tp.WARMUP, 0, 0.07, 0.01, rng)}, 0)
        tp.wait_idle(self.d, dev, 1)
        # ... and its job's end over: the version is listed and `training` false a few ms
        # before it, and a retrain in between is 409, merged (session 69: failed under load).
        tp.wait_jobs_over(self.d, dev)
        self.hold("apply")
        self.assertEqual(tp.req(self.d, "POST", "/v1/devices/%s/model/retrain" % dev)[0], 202)
        self.held("apply")

    def test_a_dropped_retrain_is_logged(self):
        d, dev = self.d, "chg"
        self.retrain_held(dev, 57)
        tp.jreq(d, "POST", "/v1/readings", [{"device": dev, "ts": tg.T0 + 1000 * tp.WARMUP,
                                             "values": {"x": 1.0, "y": 2.0, "z": 3.0, "w": 4.0}}])
        tp.wait_for("the new channel set",
                    lambda: "'chg' has a new channel 'w' (4 channels now)" in d.log() or None, 60)
        self.release("apply")
        # The line itself (main: none, timed out), then the flag: the line is written as the
        # part ends, and waiting for the flag first and reading the log once assumed no delay
        # between the two (session 54).
        line = ("pipeline: training of device 'chg' dropped: its channels changed while it ran, "
                "and its model learns again on the new ones")
        tp.wait_for("the dropped training's line", lambda: line in d.log() or None, 120)
        tp.wait_for("the training over", lambda: not tp.models(d, dev)["training"] or None, 120)
        self.assertEqual(versions(d, dev), [1])

    def test_a_replaced_devices_dropped_retrain_is_said(self):
        """Review of session 54: the device deleted and fed again (the same channels) while its
        operator's retrain runs: the dropped training's line says so (main: "its channels
        changed while it ran", the reading having cleared the DELETE's mark)."""
        d, dev = self.d, "rep"
        self.retrain_held(dev, 59)
        self.assertEqual(d.curl("DELETE", "/v1/devices/%s" % dev).status, 200)
        tp.jreq(d, "POST", "/v1/readings", [{"device": dev, "ts": tg.T0,
                                             "values": {"x": 1.0, "y": 2.0, "z": 3.0}}])
        tp.wait_for("the device made again",
                    lambda: tp.req(d, "GET", "/v1/devices/%s/status" % dev)[0] == 200 or None, 60)
        self.release("apply")
        line = ("pipeline: training of device 'rep' dropped: the device was deleted and made "
                "again while it ran, and its model learns again from its new readings")
        tp.wait_for("the dropped training's line", lambda: line in d.log() or None, 120)
        self.assertNotIn("'rep' dropped: its channels changed", d.log())
        tp.wait_for("the training over", lambda: not tp.models(d, dev)["training"] or None, 120)
        self.assertEqual(versions(d, dev), [])


class WindowTooShort(Held):
    """Review of session 53: a part whose window holds too few readings (those fell in a
    maintenance period added after they were scored) trains nothing; it is now said in one
    line (main: no line, an operator's retrain answered 202 or 409 included). Asked before the
    part began (gc joined gw while gw's training waited at "take", then an operator's retrain,
    merged: 409), the request is asked again once as the training ends: gw trains a second
    time, whose part of gc is short again and said again (main: dropped, no second training),
    and that second part asks nothing more: no loop of trainings (a loop would say the line
    again and again, and keep the queue busy). Held only through gw's first training: after it
    the test waits for outcomes, not for an order of the pool's (session 53's CI run saw the
    order the first version of this test assumed not hold once)."""
    CONFIG = tp.config_text(0, extra="train_threads = 1\n")
    LINE = ("pipeline: device 'gc' (group 'gw') not trained: its window holds 10 readings, too "
            "few to train on")

    def lines(self):
        with open(self.d.log_path, encoding="utf-8", errors="replace") as f:
            return f.read().count(self.LINE)

    def queued(self):
        return self.d.metric("vigil_train_queue_jobs")

    def test_said_once_a_part_and_asked_again_once(self):
        d, rng = self.d, tp.random.Random(58)
        # Ahead of vigild's clock, so that a period added now (its until after now) covers them.
        t0 = (int(time.time()) + 600) * 1000
        tg.feed_together(d, ["gc"], {"gc": tp.rotation(400, 0, 0.07, 0.01, rng)}, 0, t0=t0)
        tp.wait_idle(d, "gc", 1)
        tg.put_group(d, "ga", "gw")
        self.hold("take")
        tg.feed_together(d, ["ga"], {"ga": tp.rotation(tp.WARMUP, 0, 0.07, 0.01, rng)}, 0)
        self.held("take")
        tg.put_group(d, "gc", "gw")  # joins gw while gw's training waits: left_out
        st, _, body = tp.req(d, "POST", "/v1/devices/gc/maintenance",
                             {"from": t0 - 1000, "until": t0 + 390 * 1000, "note": "window"})
        self.assertEqual(st, 200, body)
        # Merged (gw trains) before gc's part begins: `again`, which the begin clears.
        tp.retrain(d, "gc", want=(409,))
        self.hold("end")
        # gc's training has ended (the one thread is at gw's "take"): jobs counted from here.
        ended = d.metric("vigil_train_jobs_ended_total")
        self.release("take")
        self.held("end")
        self.assertEqual(self.lines(), 1)  # main: 0
        self.release("end")
        # gc's request asked again as gw's first training ends: a second training of gw, whose
        # part of gc is short again (main: dropped, no second training, one line at most).
        tp.wait_for("gw's second training's line", lambda: self.lines() >= 2, 120)
        # Both of gw's trainings ended, the second's end included: whatever it asked again is
        # in the due-set now (session 55; before, a 2 s sleep, which a slow end outlasts).
        tp.wait_for("gw's two trainings ended", lambda: d.metric(
            "vigil_train_jobs_ended_total") >= ended + 2 or None, 120)
        # A later event that must come after: gm's first training, asked now, waits behind
        # anything gw's second training asked (one thread, the due-set first in, first out).
        tg.feed_together(d, ["gm"], {"gm": tp.rotation(tp.WARMUP, 0, 0.07, 0.01, rng)}, 0)
        tp.wait_idle(d, "gm", 1, timeout=120)
        # Exactly three jobs: gw's two and gm's (session 56; a third of gw's, which gm's waited
        # behind, ended before it).
        tp.wait_for("gm's job ended", lambda: d.metric(
            "vigil_train_jobs_ended_total") >= ended + 3 or None, 120)
        self.assertEqual(d.metric("vigil_train_jobs_ended_total"), ended + 3)
        self.assertEqual(self.lines(), 2)  # a loop: 3 or more
        self.assertEqual(len(versions(d, "ga")), 2)  # ga trained in each of gw's two trainings
        self.assertEqual(self.queued(), 0)  # and asked nothing more
        self.assertEqual(versions(d, "gc"), [1])


class PutBeforeTheKeptListed(Held):
    CONFIG = tp.config_text(0, extra="kind = lstm\nlstm_min_rows = 0\n")

    def put(self, dev, w, status=200):
        r = self.d.curl("PUT", "/v1/devices/%s/model/weights" % dev, "--data-binary", "@-",
                        "-H", "Content-Type: application/octet-stream", stdin=w)
        self.assertEqual(r.status, status, r)
        if status == 202:
            # Serving, but the save is the ending training's (read68e: a 200, "saved", while
            # a kill -9 before that end served the older model): said, not claimed.
            self.assertIs(r.json()["stored"], False, r)
            self.assertIn("a training of the device (or, for a group's rollback, of another "
                          "member) is ending, and its end saves it",
                          r.json()["note"])
        return tp.models(self.d, dev)["serving"]["version"]

    def test_put_numbered_after_a_kept_record_not_yet_listed(self):
        d, dev = self.d, "kept"
        self.feed(dev, tg.squashed(tp.WARMUP, 0, tp.OMEGA_A, 0.01, tp.random.Random(51)), 0)
        tp.wait_idle(d, dev, 1, timeout=120)
        st, _, w = tp.req(d, "GET", "/v1/devices/%s/model/weights" % dev)
        self.assertEqual(st, 200, w[:300])
        self.hold("apply")
        self.hold("confirm")
        # 202, or 409 merged into the first training still ending (asked again after it).
        tp.retrain(d, dev)
        self.held("apply")
        # The training's number (2), which makes the training stale (PutWhileTraining).
        self.assertEqual(self.put(dev, w), 2)
        self.release("apply")
        self.held("confirm")
        m = tp.models(d, dev)
        # Applied: its kept decision recorded as 3, after the PUT's 2, and not listed yet.
        self.assertEqual(([v["version"] for v in m["versions"]], m["training"]), ([2, 1], True))
        second = self.put(dev, w, 202)  # the training unconfirmed: its end saves the PUT
        self.release("confirm")
        tp.wait_idle(d, dev, 4, timeout=60)  # main: [3, 3, 2, 1], four too
        self.assertEqual(second, 4)  # main: 3, the kept record's number
        for restarted in (0, 1):
            m = tp.models(d, dev)
            self.assertEqual(m["serving"]["version"], 4, (restarted, m["serving"]))
            # Listed as added (the kept record last, at the training's end): one record each.
            got = sorted((v["version"] for v in m["versions"]), reverse=True)
            self.assertEqual(got, [4, 3, 2, 1], (restarted, m["versions"]))
            rec = {v["version"]: v for v in m["versions"]}
            self.assertFalse(rec[3]["swapped"], rec[3])
            self.assertGreater(rec[3]["metrics"]["epochs"], 0, rec[3])  # the training's record
            for put in (rec[4], rec[2]):
                self.assertIsNone(put["metrics"]["epochs"], put)  # the PUTs' records (null since s69)
            if not restarted:
                d.stop()
                d.start()


class FailAllocHeld(Held):
    """Held under tests/fault/failalloc.c: while self.flag exists, the training thread's
    allocations of exactly SIZE bytes fail (the flag file holds the range "SIZE SIZE", session
    57), SIZE being the copy of a member list the test aims at (8 bytes a member). Sizes are
    the code's own: no premise about the C library's (test_hold_wait's fopen; before session
    57 a floor of 2,048 bytes assumed that fopen allocates less). Each failure's size goes to
    self.failures' file (VIGIL_FAILALLOC_LOG), so a test asserts that the copy it aimed at
    failed, and nothing else did (review)."""
    CONFIG = tp.config_text(0, extra="train_threads = 1\n")
    SIZE = 0  # set by each class
    THREAD = "train-"  # failalloc.c's default: the training pool's threads

    def setUp(self):
        self.holds = vt.mkdtemp()
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        self.failures = self.flag + ".log"
        self.d = vt.Vigild(config=tp.make_config(self.CONFIG), prefix=[
            "env", "VIGIL_TEST_HOLD_DIR=" + self.holds, "LD_PRELOAD=" + FAILALLOC,
            "VIGIL_FAILALLOC_FLAG=" + self.flag, "VIGIL_FAILALLOC_MIN=%d" % self.SIZE,
            "VIGIL_FAILALLOC_LOG=" + self.failures, "VIGIL_FAILALLOC_THREAD=" + self.THREAD])
        self.d.start()

    def tearDown(self):
        if os.path.exists(self.flag):
            os.unlink(self.flag)
        super().tearDown()

    def fail_copies_of(self, members):
        """From now on, the copies of a list of `members` devices fail. The flag file is
        replaced whole (a temporary file renamed over it): failalloc.c reads it at each
        allocation it may fail, and a read of a part of "816 816" ("816 8": a maximum below
        the minimum) aborts vigild (session 58)."""
        size = struct.calcsize("P") * members
        self.assertEqual(size, self.SIZE)
        vt.write_file_atomic(self.flag, "%d %d" % (size, size))

    def failed(self):
        """The sizes of the allocations failalloc.c failed so far, in order."""
        if not os.path.exists(self.failures):
            return []
        with open(self.failures) as f:
            return [int(line) for line in f.read().split()]


@needs_failalloc
class OutOfMemoryAtTheCopy(FailAllocHeld):
    """The copy of the member list of a group of 258 (ga, gb and 256 members with two readings
    each, which never train: 2,064 bytes) fails, and only it. The group's first training is
    held at "take" (its entry taken, the list not yet copied) while operator's retrains of ga
    and gb are merged into it (409: `again`; one of them asked the training, the other is only
    in the group's list); the copy then fails. Its end (hold "end", where the flag goes) asks
    both again: the group trains, ga and gb get their first version, and exactly two jobs ended
    (vigil_train_jobs_ended_total). Main (before session 56) returned before the end (no "end"
    reached): no version, one job."""
    MEMBERS = 256
    SIZE = 8 * (MEMBERS + 2)

    def test_retrains_asked_while_taken_are_asked_again(self):
        d, devs, rng = self.d, ["ga", "gb"], tp.random.Random(59)
        for dev in devs:
            tg.put_group(d, dev, "gm")
        self.group_of_idle("gm", self.MEMBERS)
        self.hold("take")
        tg.feed_together(d, devs, {dev: tp.rotation(tp.WARMUP, 0, 0.07, 0.01, rng)
                                   for dev in devs}, 0)
        self.held("take")
        ended = self.ended()
        # Merged into the training whose entry is taken: each asked again as it ends.
        for dev in devs:
            tp.retrain(d, dev, want=(409,))
        self.fail_copies_of(len(devs) + self.MEMBERS)
        self.hold("end")
        self.release("take")
        # Main's early return never reached "end": its job ended without it.
        tp.wait_for("the failed training at its end", lambda: os.path.exists(
            os.path.join(self.holds, "end.held")) or self.ended() > ended or None, 120)
        os.unlink(self.flag)
        self.assertEqual(self.failed(), [self.SIZE])  # the copy, and nothing else
        log = d.log()
        self.assertTrue(any("training for device '%s' failed: out of memory;" % dev in log
                            for dev in devs), log[-3000:])
        self.release("end")
        for dev in devs:
            self.assertEqual([v["version"] for v in tp.wait_idle(d, dev, 1, 120)["versions"]],
                             [1], dev)
        tp.wait_for("both jobs ended", lambda: self.ended() >= ended + 2 or None, 120)
        self.assertEqual(self.ended(), ended + 2)
        self.assertEqual(d.metric("vigil_train_queue_jobs"), 0)


class JoinerAskedAgain:
    """The scenario of EndWithNoMemoryForACopy and EndWalkRejoined (a mixin: no tests of its
    own). gc, trained alone, joins the group (ga, gb and 100 idle members) while its first
    training is held at "apply" (its list copied without gc: 102 members) and asks (its
    schedule; merged: `again`). Held at "end", then released (at_the_end first; the walk held
    after its first member when WALK_HELD): gc's request is asked again by the end's walk of
    the group's members, a second training of the group, held at "take", which gives gc
    version 2. Before session 57 the end looked at the first copy's members alone and gc's
    request was lost (no training reached "take", one job ended)."""
    CONFIG = tp.config_text(EVERY, extra="train_threads = 1\n")
    MEMBERS = 100
    WALK_HELD = False

    def at_the_end(self):
        """Before the end goes on."""

    def after_the_end(self):
        """Once the first training's job ended."""

    def walk_held(self):
        """While the end's walk is held after its first member (WALK_HELD)."""

    def joiner_asked_again(self):
        d = self.d
        self.group_of_idle("gm57", self.MEMBERS)
        rng = self.gc_alone_then_group_held("gm57", 57, "apply")
        tg.put_group(d, "gc", "gm57")
        self.asks_merged("gc", rng)
        self.hold("end")
        self.release("apply")
        self.held("end")
        ended = self.ended()
        self.at_the_end()
        self.hold("take")
        if self.WALK_HELD:
            self.hold("walk")
        self.release("end")
        if self.WALK_HELD:
            self.walk_held()
        tp.wait_for("the first training's job ended", lambda: self.ended() > ended or None, 120)
        self.after_the_end()
        # gc's request, asked again: the group's second training (before 57: none, gc kept [1]).
        self.held("take", 60)
        self.release("take")
        tg.wait_newer(d, ["ga", "gb", "gc"], 1, "the training gc's request asked for", 120)
        self.assertEqual(versions(d, "gc"), [2, 1])
        self.assertEqual({dev: versions(d, dev) for dev in ("ga", "gb")},
                         {"ga": [2, 1], "gb": [2, 1]})


@needs_failalloc
class EndWithNoMemoryForACopy(JoinerAskedAgain, FailAllocHeld):
    """Session 59 (OutOfMemoryAtTheSecondCopy of session 57, changed): the end of a group's
    training walks the group's members (pipeline__group_next) and copies nothing. With the
    copies of 103 members' list (824 bytes: the 102 trained and gc) failing on the training
    thread from "end" on, gc's request is asked again, and failalloc.c failed nothing (its
    failures' log empty). Sessions 57 and 58 copied the list a second time there and walked it
    only when that copy failed: on that code the failures' log reads [824] (the copy, which this
    test used to assert failed)."""
    SIZE = 8 * (JoinerAskedAgain.MEMBERS + 3)

    def test_a_joiners_request_asked_again_with_no_memory_for_a_copy(self):
        self.joiner_asked_again()

    def at_the_end(self):
        self.fail_copies_of(self.MEMBERS + 3)

    def after_the_end(self):
        os.unlink(self.flag)
        self.assertEqual(self.failed(), [])  # no second copy: nothing of its size asked for


class EndWalkRejoined(JoinerAskedAgain, Held):
    """Review (session 57; no fault library since session 59, so the sanitizer build runs it):
    the end's walk of g's list is held ("walk") after g's first member, gm57-0, which then
    leaves g and joins it again: at the list's end now, after gc. The walk goes on from g's
    start (a member seen twice is harmless), so gc's request is asked again all the same. The
    walk as first written looked for the member it stood on and went on after it: from the
    list's end, gc skipped and its request lost until the schedule (no training reached
    "take"). Sessions 57 and 58 walked only when the end's copy was out of memory; on that code,
    with no fault library, the walk is never held (a training held at 'walk' never comes)."""
    WALK_HELD = True

    def test_a_joiners_request_asked_again_after_a_rejoin_mid_walk(self):
        self.joiner_asked_again()

    def walk_held(self):
        self.held("walk")
        tg.put_group(self.d, "gm57-0", "gm57-away")
        tg.put_group(self.d, "gm57-0", "gm57")
        self.release("walk")


@needs_failalloc
class RollbackOutOfMemory(FailAllocHeld):
    """Session 58: a rollback asked on one member of a group rolls every member back. ga and gb
    trained together (version 1, linear: tg.Groups' set-up), then an LSTM PUT on each (version
    2); 100 idle members join (two readings each, no version: each is said in the log and stays
    as it is). With allocations of a copy of the 102 members' list (816 bytes) failing on the
    http-io threads, where the rollback runs (route.c: IO_WRITES), the rollback to 1 asked on
    ga is answered 200 and both serve version 1; nothing of that size is allocated (the walk).
    Main: the copy failed (the failures' log: [816]), and gb stayed on its LSTM, version 2,
    with a 200 and no line."""
    CONFIG = tp.config_text(0)
    MEMBERS = 100
    SIZE = 8 * (MEMBERS + 2)
    THREAD = "http-io"
    linear_then_lstms = tg.Groups.linear_then_lstms
    trained_pair = tg.Groups.trained_pair

    def test_every_member_rolled_back_with_no_memory_for_a_copy(self):
        d = self.d
        devs, _, lin = self.linear_then_lstms((11, 12))
        self.group_of_idle("g1", self.MEMBERS)
        for dev in devs:
            self.assertEqual(tp.status(d, dev)["model"]["kind"], "lstm", dev)
        self.fail_copies_of(self.MEMBERS + 2)
        try:
            r = d.curl("POST", "/v1/devices/ga/model/rollback", "--data-binary",
                       '{"version": %d}' % lin["version"])
        finally:
            os.unlink(self.flag)
        self.assertEqual(r.status, 200, r)
        # Main: gb on its LSTM (version 2), the rollback's copy failed ([816]).
        self.assertEqual({dev: tp.status(d, dev)["model"] for dev in devs},
                         {dev: lin for dev in devs}, self.failed())
        self.assertEqual(self.failed(), [])  # no copy of the list: nothing of its size
        log = d.log()
        self.assertIn("device 'g1-0' of group 'g1' has no version %d to roll back to"
                      % lin["version"], log)
        self.assertNotIn("device 'gb' of group 'g1'", log)


class RollbackWalkRestarted(Held):
    """Review (session 58). As RollbackOutOfMemory (ga, gb, 100 idle members of g1), with no
    fault library (so the sanitizer build runs it too): while the rollback to 1 asked on ga runs, another member, "mover",
    leaves g1 and joins it again, over and over (at most 2,000 times), each leave sending the
    rollback's walk back to the list's start. Each idle member keeps no version 1, so the
    rollback reads the store for it (a miss, a flush, a miss) and says so in the log: once, the
    walk passing over the members it met before (their mark). Without the mark (the branch as
    written): each restart read those members again and said each line again (counts of 2 and
    more). The moves must overlap the rollback (asserted), else the test could not fail."""
    CONFIG = tp.config_text(0)
    MEMBERS = 100
    linear_then_lstms = tg.Groups.linear_then_lstms
    trained_pair = tg.Groups.trained_pair

    def test_members_met_again_are_not_rolled_back_again(self):
        d = self.d
        devs, _, lin = self.linear_then_lstms((11, 12))
        self.group_of_idle("g1", self.MEMBERS)
        tg.put_group(d, "mover", "g1")
        done, leaves, refused = threading.Event(), [], []  # leaves: (sent, answered)

        def put(group):  # http.client, not curl: no process started, more leaves a second
            st, _, body = vt.http_request("PUT", d.url("/v1/devices/mover"), json.dumps(
                {"group": group}).encode(), {"Content-Type": "application/json"})
            if st != 200:
                refused.append((st, body))

        def move():
            for _ in range(2000):
                if done.is_set():
                    break
                sent = time.monotonic()
                put("g1-away")
                leaves.append((sent, time.monotonic()))
                put("g1")

        mover = threading.Thread(target=move)
        mover.start()
        try:
            tp.wait_for("the mover's first leave", lambda: leaves or None, 30)
            asked = time.monotonic()
            r = d.curl("POST", "/v1/devices/ga/model/rollback", "--data-binary",
                       '{"version": %d}' % lin["version"])
            answered = time.monotonic()
        finally:
            done.set()
            mover.join(120)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(refused, [])
        within = [w for w in leaves if asked < w[0] and w[1] < answered]
        self.assertGreater(len(within), 1, "no leave within the rollback: it could not fail")
        self.assertEqual({dev: tp.status(d, dev)["model"] for dev in devs},
                         {dev: lin for dev in devs})
        with open(d.log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()  # whole: d.log() keeps its last 20,000 characters
        counts = {i: log.count("device 'g1-%d' of group 'g1' has no version %d to roll back to"
                               % (i, lin["version"])) for i in range(self.MEMBERS)}
        self.assertEqual(counts, {i: 1 for i in range(self.MEMBERS)})


class MemberLeftDuringItsRead(Held):
    """Session 59 (the second reader's finding 2 of session 58, untested until now): a member
    that leaves its group while the group's rollback reads its record from the store stays as
    it is. As RollbackOutOfMemory's set-up (ga and gb trained together in g1, version 1 linear,
    then an LSTM PUT on each, version 2), with no fault library: the rollback to 1 asked on ga
    is held after gb's read (hold point "rollback-read", pipeline_rollback.c's member_rollback)
    while gb moves to g1-away; released, the rollback answers 200, ga serves version 1 and gb
    still its LSTM (version 2), with no line about gb. With rollback_one's still-in-the-group
    check (ROLLBACK_LEFT) taken out, gb, in g1-away by then, is rolled back to g1's linear
    version 1."""
    CONFIG = tp.config_text(0)
    linear_then_lstms = tg.Groups.linear_then_lstms
    trained_pair = tg.Groups.trained_pair

    def test_a_member_that_left_during_its_read_stays_as_it_is(self):
        d = self.d
        devs, _, lin = self.linear_then_lstms((11, 12))
        before = tp.status(d, "gb")["model"]
        self.assertEqual(before["kind"], "lstm", before)
        asker, answers = self.rollback_asked_held(lin["version"])
        try:
            self.held("rollback-read")  # gb's record read (ga, the asker, is not walked)
            tg.put_group(d, "gb", "g1-away")
        finally:
            self.release("rollback-read")
            asker.join(120)
        self.assertFalse(asker.is_alive())
        self.assertEqual(answers[0].status, 200, answers[0])
        self.assertEqual(tp.status(d, "ga")["model"], lin)
        # Without the check: gb on g1's linear version 1 in g1-away.
        self.assertEqual(tp.status(d, "gb")["model"], before)
        self.assertNotIn("device 'gb' of group 'g1'", d.log())


if __name__ == "__main__":
    vt.main()

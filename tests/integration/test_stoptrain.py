"""vigild: a stop abandons a training in progress instead of waiting for it
(docs/reliability.md, "A stop abandons a training (session 46)").

1. OneDevice: SIGTERM while a device's first training (an LSTM of 128 cells on 4,000 readings,
   seconds of work) runs. vigild exits 0, its log says the training was abandoned at the stop
   and no training failed, the store holds no model version for the device and its saved
   detector is marked as asking for a training (blob format 4). After a restart, with no new
   reading, the training is asked for again and runs: a version appears. Before session 46 the
   stop waited for the training to end, which stored its version.
2. Group: the same for a group of two devices, whose training is the group's (one pooled job):
   abandoned, no version for either member, and after the restart the group trains once and
   both members get the same version. An operator's retrain of each member, asked while the
   training runs, is saved too: both members are saved as asking. An operator's retrain whose
   training is abandoned is saved as the operator's (session 47), on the member that asked.
3. OperatorsRetrainPending (session 47): a saved detector flagged with the operator's retrain
   alone is asked for a training at the start.
4. PutWhileTraining (session 47's review): a PUT of weights while a retrain runs takes number
   2; the training, stale, is recorded as 3, not as a second 2. Session 51: a PUT and then a
   rollback to the version the retrain began with: it swaps, serving under the PUT's number + 1.
5. PutBackWhileGroupTrains (session 49): a PUT of weights and a rollback to the job's starting
   version within one group training: the member serves the group's model under the next number
   after the PUT's (session 51; before, it kept what it served: member_apply's put-back).
6. GroupOutOfMemory (session 51, under tests/fault/failalloc.c): an abandoned operator's retrain
   is handed to a member that joined the group while its training's allocations fail (session
   58: the group's list is walked, not copied; sessions 51 to 57 dropped it, saying memory).

Durations are never asserted: the log line and the versions are the behaviour.

Python 3 standard library.
"""

import os
import re
import sqlite3
import struct
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_groups as tg  # noqa: E402  (helpers only)
from test_reliability import FAILALLOC, needs_failalloc  # noqa: E402  (helpers only)
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import vigiltest as vt  # noqa: E402

ROWS = 4000  # readings before the first training, all in its window
CONFIG = ("[model]\nwarmup = %d\ntrain_window = %d\nretrain_every = 0\nhidden = 128\n"
          "kind = lstm\nlstm_min_rows = 0\ntrain_threads = 1\n" % (ROWS, ROWS))
ABANDONED = "abandoned at the stop; asked again at the next start"


def saved(d, devs):
    """After a stop: {device: (model versions stored, saved detector asks for a training)}."""
    db = sqlite3.connect(d.db_path)
    try:
        out = {}
        for dev in devs:
            n = db.execute("SELECT count(*) FROM models m JOIN devices v ON v.id = m.device_id"
                           " WHERE v.name = ?", (dev,)).fetchone()[0]
            blob = db.execute("SELECT t.blob FROM detectors t JOIN devices v"
                              " ON v.id = t.device_id WHERE v.name = ?", (dev,)).fetchone()
            out[dev] = (n, blob is not None and tg.blob_train_asked(blob[0]))
        return out
    finally:
        db.close()


def versions(d, dev):
    return [v["version"] for v in tp.models(d, dev)["versions"]]


def retrain_after(d, dev):
    """An operator's retrain of group member dev once the group's last training is listed done
    (its versions, no training): 202, or 409 when the members' part of it has ended while its
    thread still marks the group as training (train_next clears that after train_set returns;
    no answer shows the moment). The retrain is merged then and asked again as that thread ends
    (d->again, with the operator's flag): the same training a test waits for next. Review of
    session 51: a 409 there failed Group tests (reproduced with a 0.4 s pause put in that gap).
    Forced: the test means "train now", and a 409 for an episode dev's readings happened to open
    (session 65) would leave it waiting for a training never asked (forced, none open: the same
    retrain)."""
    tp.retrain(d, dev, "?force=true")  # a 409: "already queued or running" (checked)


def settled(d, devs, than, what, timeout):
    """Waits until every member of devs's group has a version above `than` and every training
    job asked has ended, its end included: tg.wait_newer's "none training, none queued" holds
    in the moment between a job's members' parts ending (their "training" false) and the job's
    end, which asks again what was merged into it meanwhile (a member it left out, a part whose
    job went stale: `again`), and while a job taken from the queue has not begun its members'
    parts. Here every job is the group's (devs alone, one training thread, no PUT or rollback
    yet) and adds one version number, so the jobs ended (vigil_train_jobs_ended_total, counted
    after what a job asks again) equal the numbers listed once none is in flight; read first, a
    job ending after it cannot pass. A job taken from the queue whose members' parts have not
    begun shows neither queued nor training: the jobs taken (vigil_train_jobs_taken_total,
    session 67), read after the ended, equal to them say none was in flight between the two
    reads. Twice in a row (before session 67 the only guard against that gap) is kept."""
    def once():
        ended = d.metric("vigil_train_jobs_ended_total")
        m = [tp.models(d, dev) for dev in devs]
        if any(x["training"] for x in m) or d.metric("vigil_train_queue_jobs"):
            return None
        if d.metric("vigil_train_jobs_taken_total", need=True) != ended:
            return None
        tops = [max([v["version"] for v in x["versions"]] or [0]) for x in m]
        nums = {v["version"] for x in m for v in x["versions"]}
        return tops if min(tops) > than and ended == len(nums) else None
    seen = []

    def twice():
        tops = once()
        seen.append(tops)
        return tops if tops and seen[-2:] == [tops, tops] else None
    return tp.wait_for(what, twice, timeout)


class StopTrain(tp.DaemonPerTest):
    CONFIG = CONFIG

    def stop_while_training(self, devs, retrain=False):
        """Waits (bounded) until devs' training is under way, then (retrain: after an operator's
        retrain of every device, merged into it: 409) stops vigild (exit 0 asserted by stop)
        while it runs; returns the stop's log."""
        d = self.d
        tp.wait_for("the training under way",
                    lambda: all(tp.models(d, dev)["training"] for dev in devs) or None, 120)
        self.assertEqual([versions(d, dev) for dev in devs], [[] for _ in devs])
        for dev in devs if retrain else []:
            tp.retrain(d, dev, want=(409,))
        before = len(d.log())
        d.stop(timeout=120)
        return d.log()[before:]

    def restart_trains(self, devs):
        """Restarts vigild with no new reading: the abandoned training is asked for again and
        stores a version (bounded wait); returns each device's versions."""
        d = self.d
        before = len(d.log())
        d.start()
        m = re.search(r"(\d+) trainings asked for before the stop asked again", d.log()[before:])
        self.assertIsNotNone(m, d.log()[-2000:])
        self.assertGreaterEqual(int(m.group(1)), 1, m.group(0))
        got = {dev: tp.wait_idle(d, dev, 1, timeout=600)["versions"] for dev in devs}
        for dev in devs:
            self.assertEqual(tp.status(d, dev)["readings_scored"], ROWS)
        return {dev: [v["version"] for v in vs] for dev, vs in got.items()}


class OneDevice(StopTrain):
    def test_stop_abandons_a_training_asked_again_at_the_start(self):
        d = self.d
        rows = tg.squashed(ROWS, 0, tp.OMEGA_A, 0.01, tp.random.Random(46))
        self.feed("big", rows, 0)
        log = self.stop_while_training(["big"])
        self.assertIn("training of device 'big' %s" % ABANDONED, log)
        self.assertNotIn("training for device", log)  # train_failed's warning
        # Nothing half-trained stored; the request saved with the detector.
        self.assertEqual(saved(d, ["big"]), {"big": (0, True)})
        got = self.restart_trains(["big"])
        self.assertEqual(len(got["big"]), 1, got)


class Group(StopTrain):
    def group_fed(self, group, seed):
        """ga and gb put in group and fed ROWS readings each together (their training asked);
        returns the members."""
        devs = ["ga", "gb"]
        for dev in devs:
            tg.put_group(self.d, dev, group)
        rng = tp.random.Random(seed)
        tg.feed_together(self.d, devs, {dev: tg.squashed(ROWS, 7 * k, tp.OMEGA_A, 0.01, rng)
                                        for k, dev in enumerate(devs)}, 0)
        return devs

    def test_stop_abandons_a_groups_training_asked_again_at_the_start(self):
        d, devs = self.d, self.group_fed("g46", 47)
        # An operator's retrain of each member during the training: the asker's stays due with
        # the abandoned training; the other member's is asked again as the training ends, when
        # the closing pool refuses it, and is kept all the same (before the review, it was lost).
        log = self.stop_while_training(devs, retrain=True)
        self.assertIn("training of group 'g46' (2 devices) %s" % ABANDONED, log)
        self.assertNotIn("training for device", log)  # train_failed's warning
        self.assertEqual(saved(d, devs), {"ga": (0, True), "gb": (0, True)})
        got = self.restart_trains(devs)
        self.assertEqual(len(got["ga"]), 1, got)
        self.assertEqual(got["ga"], got["gb"])  # one group training, one version

    def test_abandoned_operators_retrain_saved_as_the_operators(self):
        """Session 47: an operator's retrain of a member whose training a stop abandons stays
        the operator's (saved with BLOB_TRAIN_ALL; the next start's training then takes held
        members too, it_groups GroupHeldMemberRetrainAcrossStop); before, the abandoned
        training had taken the request and the next start asked for the schedule's."""
        d, devs = self.d, self.group_fed("g47", 48)
        first = {dev: tp.wait_idle(d, dev, 1, timeout=600)["versions"] for dev in devs}
        self.assertEqual([len(v) for v in first.values()], [1, 1], first)
        retrain_after(d, "gb")
        tp.wait_for("the operator's training under way",
                    lambda: tp.models(d, "gb")["training"] or None, 120)
        before = len(d.log())
        d.stop(timeout=120)
        self.assertIn("training of group 'g47' (2 devices) %s" % ABANDONED, d.log()[before:])
        # On the member that asked (gb: 1 asked, 2 the operator's), not on the lead (ga, the
        # list's first of two at version 1), which may leave the group before the next
        # training: before session 47's groups5, {"ga": 2, "gb": 1}.
        self.assertEqual(tg.saved_flags(d, devs), {"ga": 0, "gb": 3})
        before = len(d.log())
        d.start()
        self.assertIn("trainings asked for before the stop asked again", d.log()[before:])
        tops = tg.wait_newer(d, devs, first["ga"][0]["version"], "the group's new version", 600)
        self.assertEqual(tops[0], tops[1], tops)


    def asker_leaves(self, group, seed, leave, said=ABANDONED):
        """Session 48: the member whose operator's retrain a stop abandons (gb) leaves the
        group while that training runs (leave(d) moves or deletes it); returns ga's version
        before. The operator's request is the group's: it stays with the member still in it.
        said: what the log says of the abandoned training."""
        d, devs = self.d, self.group_fed(group, seed)
        first = {dev: tp.wait_idle(d, dev, 1, timeout=600)["versions"] for dev in devs}
        self.assertEqual([len(v) for v in first.values()], [1, 1], first)
        retrain_after(d, "gb")
        tp.wait_for("the operator's training under way",
                    lambda: tp.models(d, "ga")["training"] or None, 120)
        leave(d)
        self.assertTrue(tp.models(d, "ga")["training"])  # the race this needs: still running
        before = len(d.log())
        d.stop(timeout=120)
        self.assertIn("training of group '%s' (2 devices) %s" % (group, said), d.log()[before:])
        return first["ga"][0]["version"]

    def restart_retrains_ga(self, v1):
        d = self.d
        before = len(d.log())
        d.start()
        self.assertIn("trainings asked for before the stop asked again", d.log()[before:])
        tg.wait_newer(d, ["ga"], v1, "the group's new version", 600)

    def test_abandoned_retrain_stays_with_the_group_when_the_asker_moves(self):
        """The asker PUT into another group while its group's training runs: main put the
        operator's flag back on the asker alone ({"ga": 0, "gb": 3}), so the next start
        retrained gb's new group and never the group the operator's training was for."""
        v1 = self.asker_leaves("g48m", 49, lambda d: tg.put_group(d, "gb", "g48-away"))
        flags = tg.saved_flags(self.d, ["ga", "gb"])
        self.assertEqual(flags["ga"] & 2, 2, flags)  # BLOB_TRAIN_ALL: the operator's
        self.assertEqual(flags["gb"] & 1, 1, flags)  # its own request, now its new group's
        self.restart_retrains_ga(v1)

    def test_abandoned_retrain_stays_with_the_group_when_the_asker_is_deleted(self):
        """The asker DELETEd while its group's training runs: main set the flag on the deleted
        device only (which saves nothing), so the group's operator's retrain was lost."""
        def delete(d):
            self.assertEqual(d.curl("DELETE", "/v1/devices/gb").status, 200)
        v1 = self.asker_leaves("g48d", 50, delete)
        self.assertEqual(tg.saved_flags(self.d, ["ga"])["ga"] & 2, 2)
        self.restart_retrains_ga(v1)

    def test_abandoned_retrain_goes_to_a_member_that_joined(self):
        """Session 49: every member of the training leaves the group while it runs (ga and gb
        PUT into another group) and gc joins it: the operator's retrain the stop abandons goes
        to gc, the group's member now (main dropped it: no flag on gc, and the group the
        operator asked to retrain was not trained at the next start). With no member left at
        all it is dropped, with a log line (not tested)."""
        d = self.d
        self.gc_joins("g49j", 54, 53)
        flags = tg.saved_flags(d, ["ga", "gb", "gc"])
        self.assertEqual(flags["gc"] & 2, 2, flags)  # BLOB_TRAIN_ALL: the operator's
        self.assertNotIn("has no member left", d.log())

    def gc_joins(self, group, gc_seed, seed, said=ABANDONED, then=lambda: None):
        """gc fed 50 readings alone; then asker_leaves(group, seed) with ga and gb leaving the
        group for another and gc joining it while the operator's retrain runs; then() last,
        before the stop."""
        rng = tp.random.Random(gc_seed)
        tg.feed_together(self.d, ["gc"], {"gc": tg.squashed(50, 0, tp.OMEGA_A, 0.01, rng)}, 0)
        tp.wait_scored(self.d, "gc", 50)

        def leave(d):
            tg.put_group(d, "gb", group + "-away")
            tg.put_group(d, "ga", group + "-away")
            tg.put_group(d, "gc", group)
            then()
        self.asker_leaves(group, seed, leave, said)

    def test_abandoned_retrain_of_an_emptied_group_is_dropped_with_a_log_line(self):
        """Review of session 49: every member leaves the group while its operator's retrain
        runs and none joins (ga and gb PUT into another group): the stop drops the request,
        nothing being left to retrain, and says so (main dropped it without a word); neither
        member carries the operator's flag into its new group. Session 50: one line says so
        (session 49 logged "abandoned at the stop; asked again at the next start" and then "has
        no member left: ... dropped" for the same training)."""
        d = self.d

        def leave(d):
            tg.put_group(d, "gb", "g49e-away")
            tg.put_group(d, "ga", "g49e-away")
        before = len(d.log())
        self.asker_leaves("g49e", 55, leave, "abandoned at the stop; not asked again: the group "
                          "has no member left, so the operator's retrain it was for is dropped")
        log = d.log()[before:]
        # Session 52: the asker (gb, the operator's) stays due in its new group; the line says
        # so (main's ended at "dropped", as if nothing were asked again).
        self.assertIn("is dropped; device 'gb', which became due for it, has left the group, "
                      "and its own request is asked again at the next start where the device is "
                      "then (it had run", log)
        self.assertEqual(tg.saved_flags(d, ["gb"])["gb"] & 1, 1)  # BLOB_TRAIN_ASKED
        self.assertNotIn("training of group 'g49e' (2 devices) " + ABANDONED, log)
        self.assertNotIn("has no member left: the operator's retrain its stopped", log)
        flags = tg.saved_flags(d, ["ga", "gb"])
        self.assertEqual((flags["ga"] & 2, flags["gb"] & 2), (0, 0), flags)

    def test_schedules_training_of_an_emptied_group_says_where_its_request_goes(self):
        """Session 51: a group's first training (its schedule's: no operator asked) that a
        stop abandons after every member left the group (ga and gb PUT into another) logged
        "asked again at the next start" for a group no member is left to ask for. The asker
        (the member that became due) stays due in its new group: the line names it, says the
        group is not asked again and where the request goes, and the next start trains the
        members in their new group."""
        d, devs = self.d, self.group_fed("g51e", 56)
        tp.wait_for("the training under way",
                    lambda: all(tp.models(d, dev)["training"] for dev in devs) or None, 120)
        for dev in devs:
            tg.put_group(d, dev, "g51e-away")
        self.assertTrue(tp.models(d, "ga")["training"])  # the race this needs: still running
        before = len(d.log())
        d.stop(timeout=120)
        log = d.log()[before:]
        self.assertRegex(log, r"training of group 'g51e' \(2 devices\) abandoned at the stop; not "
                         r"asked again for this group: device '(ga|gb)', whose schedule asked for "
                         r"it, has left it, and its request is asked again at the next start "
                         r"where the device is then")
        self.assertNotIn("training of group 'g51e' (2 devices) " + ABANDONED, log)
        got = self.restart_trains(devs)
        self.assertEqual(got["ga"], got["gb"])  # one training of g51e-away, one version


@needs_failalloc
class GroupOutOfMemory(StopTrain):
    """Session 51: vigild under tests/fault/failalloc.c's library. The operator's retrain of a
    group whose members all left it while it ran, gc having joined, is handed to gc even when
    every allocation of 8 bytes and more on the training thread fails (the flag file, written
    just before the stop). Session 58: the group's member list is walked
    (pipeline__group_retrain_give, pipeline__group_next), which allocates nothing. Sessions
    51 to 57 copied it: the copy failed, the request was dropped and the log said "out of
    memory looking for a member of the group" (main before 51 said "the group has no member
    left", which was false: gc was in it)."""

    # Group's helpers, not its tests
    group_fed, asker_leaves, gc_joins = Group.group_fed, Group.asker_leaves, Group.gc_joins

    def setUp(self):
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        self.d = vt.Vigild(config=tp.make_config(self.CONFIG), prefix=[
            "env", "LD_PRELOAD=" + FAILALLOC, "VIGIL_FAILALLOC_FLAG=" + self.flag,
            "VIGIL_FAILALLOC_MIN=8"])
        self.d.start()

    def test_abandoned_retrain_handed_on_with_no_memory(self):
        self.gc_joins("g51m", 57, 58, then=lambda: vt.write_file_atomic(self.flag, "8"))
        os.unlink(self.flag)
        log = self.d.log()
        self.assertNotIn("out of memory looking for a member", log)  # 51 to 57: dropped
        self.assertNotIn("has no member left", log)
        flags = tg.saved_flags(self.d, ["ga", "gb", "gc"])
        self.assertEqual(flags["gc"] & 2, 2, flags)  # BLOB_TRAIN_ALL: the operator's


class PutWhileTraining(StopTrain):
    """Review of session 47's groups5: a PUT of weights while a training runs takes the next
    number after the listed versions (2), the number the training was given when it began;
    that training (stale: it keeps the PUT's model) is recorded after it (3), not as a second
    version 2 (main and the branch: [2, 2, 1] listed, [2, 1] after a restart, the PUT's kept
    record overwritten by the training's)."""

    def test_training_numbered_after_the_put(self):
        d, dev = self.d, "put-run"
        self.feed(dev, tg.squashed(ROWS, 0, tp.OMEGA_A, 0.01, tp.random.Random(46)), 0)
        tp.wait_idle(d, dev, 1, timeout=600)
        st, _, w = tp.req(d, "GET", "/v1/devices/%s/model/weights" % dev)
        self.assertEqual(st, 200, w[:300])
        r = d.curl("POST", "/v1/devices/%s/model/retrain" % dev)
        self.assertEqual(r.status, 202, r)
        tp.wait_for("the retrain under way", lambda: tp.models(d, dev)["training"] or None, 120)
        r = d.curl("PUT", "/v1/devices/%s/model/weights" % dev, "--data-binary", "@-",
                   "-H", "Content-Type: application/octet-stream", stdin=w)
        self.assertEqual(r.status, 200, r)
        m = tp.models(d, dev)
        # The race this needs: the training (hidden 128, 4,000 rows) still runs after the PUT.
        self.assertTrue(m["training"], m)
        self.assertEqual((versions(d, dev), m["serving"]["version"]), ([2, 1], 2))
        tp.wait_for("the retrain ended", lambda: not tp.models(d, dev)["training"] or None, 600)
        self.assertEqual(versions(d, dev), [3, 2, 1])
        self.assertEqual(tp.models(d, dev)["serving"]["version"], 2)  # the PUT's: stale run
        d.stop()
        d.start()
        self.assertEqual(versions(d, dev), [3, 2, 1])


    def test_put_and_rollback_within_a_training(self):
        """Session 51 (versions8): a PUT then a rollback to the version the device's own
        training began with, both while it runs: the training is not stale, it swaps, and its
        model serves under the next number after the PUT's, across a restart (main: the device
        kept what it served, nothing recorded, as PutBackWhileGroupTrains's member did)."""
        d, dev = self.d, "put-back"
        rng = tp.random.Random(53)
        self.feed(dev, tg.squashed(ROWS, 0, tp.OMEGA_A, 0.01, rng), 0)
        first = tp.wait_idle(d, dev, 1, timeout=600)["versions"][0]["version"]
        self.feed(dev, tg.squashed(ROWS, ROWS, tp.OMEGA_B, 0.01, rng), ROWS)
        tp.wait_scored(d, dev, 2 * ROWS)
        tg.wait_newer(d, [dev], first, "the new regime's training", 600)
        began, listed = tp.models(d, dev)["serving"]["version"], versions(d, dev)
        st, _, w = tp.req(d, "GET", "/v1/devices/%s/model/weights" % dev)
        self.assertEqual(st, 200, w[:300])
        self.assertEqual(tp.req(d, "POST", "/v1/devices/%s/model/retrain" % dev)[0], 202)
        tp.wait_for("the retrain under way", lambda: tp.models(d, dev)["training"] or None, 120)
        r = d.curl("PUT", "/v1/devices/%s/model/weights" % dev, "--data-binary", "@-",
                   "-H", "Content-Type: application/octet-stream", stdin=w)
        self.assertEqual(r.status, 200, r)
        put = tp.models(d, dev)["serving"]["version"]
        self.assertEqual(put, max(listed) + 1)
        r = tp.jreq(d, "POST", "/v1/devices/%s/model/rollback" % dev, {"version": began})
        self.assertEqual(r, {"device": dev, "serving": began})
        self.assertTrue(tp.models(d, dev)["training"])  # the race this needs
        tp.wait_for("the retrain ended", lambda: not tp.models(d, dev)["training"] or None, 600)
        m = tp.models(d, dev)
        self.assertEqual(versions(d, dev), [put + 1, put] + listed)
        # The situation this needs: the training swaps (the new regime's window; seen in every
        # run), else it is recorded as kept after the PUT's, on main too.
        self.assertTrue(m["versions"][0]["swapped"], m["versions"][0])
        self.assertEqual(m["serving"]["version"], put + 1, m)
        d.stop()
        d.start()
        again = tp.models(d, dev)
        self.assertEqual(again["serving"], m["serving"])
        # The store's records, read at the start: the training's (a rollback point) and the PUT's.
        self.assertEqual([v["version"] for v in again["versions"]], [put + 1, put] + listed)
        self.assertEqual(again["versions"][0], m["versions"][0])


class PutBackWhileGroupTrains(StopTrain):
    """Session 49: member_apply's put-back (daemon/pipeline_train.c); session 51 (versions8): the
    put-back member serves the group's model. While an operator's retrain of group g49p runs, a
    PUT of weights on member gb takes the next number (the one the group's training was given)
    and a rollback of gb to the version the job began with puts that model back, so gb's job is
    not stale. The group's training swaps (the members learnt a regime at 4,000 readings and then
    saw another for a whole window): ga installs the group's model under the group's number, gb
    under the next number after its listed versions (the PUT's is one), with the training's
    record, so both serve the same weights; gb's PUT record stays whole, and all of it across a
    restart. Until versions8 gb kept what it served (a log line "keeps its version"): the
    members served two models until the group's next training."""

    def idle(self, devs):
        tp.wait_for("no training running or queued", lambda: not any(
            tp.models(self.d, dev)["training"] for dev in devs)
            and not self.d.metric("vigil_train_queue_jobs") or None, 600)

    def test_put_and_rollback_within_a_group_training(self):
        d, devs = self.d, Group.group_fed(self, "g49p", 51)
        first = {dev: tp.wait_idle(d, dev, 1, timeout=600)["versions"] for dev in devs}
        self.assertEqual([[v["version"] for v in vs] for vs in first.values()], [[1], [1]])
        rng = tp.random.Random(52)
        tg.feed_together(d, devs, {dev: tg.squashed(ROWS, ROWS + 7 * k, tp.OMEGA_B, 0.01, rng)
                                   for k, dev in enumerate(devs)}, ROWS)
        for dev in devs:
            tp.wait_scored(d, dev, 2 * ROWS)
        # The training the new regime asks for, done: "none running or queued" alone (the
        # branch's wait) was seen before it was queued in two runs of three in the review, which
        # then began at version 1 (the PUT took 3, the training's number being 2). And every job
        # it asked ended (settled): session 66, an ASan CI under load saw ga serve 4 where the
        # PUT's 3 was expected, a second training of the regime following the first.
        settled(d, devs, first["ga"][0]["version"], "the new regime's trainings", 600)
        began = tp.models(d, "gb")["serving"]["version"]
        listed = versions(d, "gb")  # began, or below it when the regime's training did not swap
        self.assertEqual(tp.models(d, "ga")["serving"]["version"], began)
        st, _, w = tp.req(d, "GET", "/v1/devices/gb/model/weights")
        self.assertEqual(st, 200, w[:300])
        retrain_after(d, "gb")
        tp.wait_for("the group's training under way",
                    lambda: tp.models(d, "gb")["training"] or None, 120)
        r = d.curl("PUT", "/v1/devices/gb/model/weights", "--data-binary", "@-",
                   "-H", "Content-Type: application/octet-stream", stdin=w)
        self.assertEqual(r.status, 200, r)
        put = tp.models(d, "gb")["serving"]["version"]
        self.assertEqual(put, max(listed) + 1)  # the training's number (PutWhileTraining)
        r = tp.jreq(d, "POST", "/v1/devices/gb/model/rollback", {"version": began})
        self.assertEqual(r, {"device": "gb", "serving": began})
        m = tp.models(d, "gb")
        self.assertTrue(m["training"], m)  # the race this needs: both within the training
        before = len(d.log())
        self.idle(devs)
        log = d.log()[before:]
        for restarted in (0, 1):
            ga, gb = tp.models(d, "ga"), tp.models(d, "gb")
            self.assertEqual(ga["serving"]["version"], put, ga["serving"])  # the group's
            self.assertTrue(ga["versions"][0]["swapped"])
            # gb: the group's model as its own next number (main: it served `began`, listed
            # [put] + listed), with the training's record; the PUT's record whole after it.
            self.assertEqual(gb["serving"]["version"], put + 1, (restarted, gb["serving"]))
            self.assertEqual(versions(d, "gb"), [put + 1, put] + listed)
            self.assertTrue(gb["versions"][0]["swapped"])
            self.assertGreater(gb["versions"][0]["metrics"]["epochs"], 0)
            self.assertIsNone(gb["versions"][1]["metrics"]["epochs"])  # a PUT: null since s69
            wa, wb = (tp.req(d, "GET", "/v1/devices/%s/model/weights" % dev) for dev in devs)
            self.assertEqual((wa[0], wb[0]), (200, 200))
            self.assertEqual(wa[2], wb[2])  # one model for the group
            self.assertNotEqual(wb[2], w)
            if not restarted:
                d.stop()
                d.start()
        self.assertNotIn("keeps its version", "".join(log))  # main's put-back logged so


class OperatorsRetrainPending(tp.DaemonPerTest):
    """Session 47 (groups5): a saved detector flagged with an operator's retrain (BLOB_TRAIN_ALL)
    and not as asking (BLOB_TRAIN_ASKED), as the stop leaves a member whose retrain joined
    another member's queued group training, is asked for a training at the next start: the
    operator's retrain is not left waiting for the schedule (main: no training, with
    retrain_every 0 never)."""
    CONFIG = tp.config_text(0)

    def test_asked_again_at_the_start(self):
        d, dev = self.d, "op-1"
        self.feed(dev, tp.rotation(tp.WARMUP, 0, tp.OMEGA_A, 0.01, tp.random.Random(49)), 0)
        self.assertEqual(len(tp.wait_idle(d, dev, 1)["versions"]), 1)
        d.stop()
        db = sqlite3.connect(d.db_path)
        try:
            blob = bytearray(db.execute("SELECT blob FROM detectors").fetchone()[0])
            self.assertEqual(tg.blob_flags(bytes(blob)), 0)
            struct.pack_into("<I", blob, tg.blob_flags_at(bytes(blob)), 2)
            db.execute("UPDATE detectors SET blob = ?", (bytes(blob),))
            db.commit()
        finally:
            db.close()
        before = len(d.log())
        d.start()
        self.assertIn("1 trainings asked for before the stop asked again", d.log()[before:])
        self.assertEqual(len(tp.wait_idle(d, dev, 2)["versions"]), 2)
        d.stop()
        self.assertEqual(tg.saved_flags(d, [dev]), {dev: 0})


if __name__ == "__main__":
    vt.main()

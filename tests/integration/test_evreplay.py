#!/usr/bin/env python3
"""Events opened after a detector's last save in no episode, replayed once by the restore's
catch-up (task events63, session 63; docs/reliability.md, "Events opened after a save in no
episode replayed once (session 63)"): after a kill -9 the catch-up replays the readings after the
save and numbers the events it opens from the saved next id, as before the crash, so the
restore leaves the open rows past that id to it (not ended "restart"), and the newest open row
(`ahead`) does not take an earlier event's replayed episode as its own. The lost ends are made
by reopening the rows while vigild is down (test_stopqueue.py's LostEndWhileRunning, whose
helpers these tests use). The review's tests delete readings after the save too (as a retention
sweep does while vigild is down): the rows the replay does not open again end "restart" after the
catch-up ("The rows left to the catch-up that it does not open again (session 63)"). read63c's
findings ("read63c's findings on the rows left to the catch-up (session 63)"): the newest row past
the saved detector's own event, a replayed end whose put was lost (failmaint.c), a live event
after a failed read of the highest ids, an `ahead` row the catch-up never reached; read63d's
finding 1 (a row left to the catch-up taken as replayed when the open-rows read fails); task
events64's ("events64: the replay's ids keyed on the stored rows, ... (session 64)"): an earlier
episode's readings cut, a re-sent replayed end after a chain break, the retry's words; read64's
("read64's findings on the replay's ids (session 64)"): late readings replayed before the `ahead`
row, a skipped ended row with the highest ids unread, two rows of one start, the fallback's fate."""
import json
import os
import re
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import test_events as te  # noqa: E402  (its test cases not imported: run by it_events)
import test_stopqueue as sq  # noqa: E402  (its test cases not imported: run by it_stopqueue)
import vigiltest as vt  # noqa: E402


FAILMAINT = os.environ.get("VIGIL_FAILMAINT", "")


def drop_readings(d, dev):
    """All of dev's stored readings deleted, vigild stopped (as a retention sweep deletes them
    when vigild was down longer than storage.retention), those not yet in a chunk row too."""
    sq.in_store(d.db_path, lambda db: (
        db.execute("DELETE FROM readings WHERE device_id = (SELECT id FROM devices WHERE"
                   " name = ?)", (dev,)),
        db.execute("UPDATE devices SET points = 0, log_seq = (SELECT MAX(seq) FROM"
                   " readings_log) WHERE name = ?", (dev,))))


class AfterSave(te.Events):
    """A one-sensor device trained (the detector saved at the training of reading 1,200), trips
    after that save, a kill -9 with some of their ends lost: the helpers."""
    CONFIG = te.Released.CONFIG

    def two_trips(self, dev, split=None, n=1700):
        """Trains dev and feeds it two trips after the detector's last save in no episode (at
        the training of reading 1,200), n readings in all; returns their events Y and Z once
        both ended "cleared". split: the readings from it on posted apart (their own chunk
        row)."""
        rows = sq.trip_rows(n, *sq.SECOND_TRIP)
        self.one_sensor(dev, rows[:split])
        if split is not None:
            sq.post_level(self.d, dev, rows, split, len(rows))
        evs = tp.wait_for("two closed events", lambda: (lambda e: e if len(e) == 2 else None)(
            [e for e in self.events(dev) if not e["active"]]), 10)
        y, z = sorted(evs, key=lambda e: e["id"])
        self.assertEqual((z["id"], y["ended_by"], z["ended_by"]), (y["id"] + 1, "cleared",
                                                                   "cleared"), evs)
        return y, z

    def cut(self, dev, where, args):
        """vigild stopped: dev's chunk rows matching where (args bound to it) deleted, with its
        readings not yet in a chunk row (two_trips' split: the ones after Z's opening); asserts
        a chunk row was deleted."""
        def cut(db):
            dev_id = db.execute("SELECT id FROM devices WHERE name = ?", (dev,)).fetchone()[0]
            n = db.execute("DELETE FROM readings WHERE device_id = ? AND " + where,
                           (dev_id,) + args).rowcount
            self.assertEqual(n, 1, "one chunk row deleted")
            db.execute("UPDATE devices SET log_seq = (SELECT MAX(seq) FROM readings_log) WHERE"
                       " id = ?", (dev_id,))
        sq.in_store(self.d.db_path, cut)

    def late_before(self, dev, rows, at):
        """Trains dev on rows (one trip after the save: X, returned once ended), then posts
        three readings, 3 above rows[at], timestamped within readings at and at + 1 (before
        X's start): skipped live as out of order, stored."""
        self.one_sensor(dev, rows)
        x = tp.wait_for("X ended", lambda: (lambda e: e[0] if len(e) == 1 else None)(
            [e for e in self.events(dev) if not e["active"]]), 10)
        late = [te.T0 + 1000 * at + 500, te.T0 + 1000 * at + 700, te.T0 + 1000 * at + 1300]
        tp.post_readings(self.d, dev, [[rows[at][0] + 3.0]] * 3, late, ["level"])
        tp.wait_for("the late readings skipped", lambda: tp.status(
            self.d, dev)["readings_not_scored_out_of_order"] == 3, 10)
        return x

    def x_open_after_late(self, dev):
        """X trips at reading 1,402 and stays open (readings to 1,402 posted), then three
        readings 3 above reading 1,401's, timestamped 0.2, 0.5 and 0.8 s after it, posted late
        (skipped live as out of order, stored). Returns post(k, to) (posts readings k to to - 1
        and waits for them scored), X, and the late readings' times, once X's opening is
        stored."""
        d = self.d
        rows = sq.trip_rows(1700)
        post = lambda k, to: (tp.post_readings(d, dev, rows[k:to], [  # noqa: E731
            te.T0 + 1000 * i for i in range(k, to)], ["level"]), tp.wait_scored(d, dev, to))
        post(0, 200)
        tp.wait_idle(d, dev, 1)
        post(200, 1200)
        tp.wait_idle(d, dev, 2)
        post(1200, 1403)
        x = tp.wait_for("X open", lambda: (lambda e: e[0] if len(e) == 1 else None)(
            [e for e in self.events(dev) if e["active"]]), 10)
        self.assertEqual(x["start_ts"], te.T0 + 1000 * 1402, x)
        late = [te.T0 + 1000 * 1401 + ms for ms in (200, 500, 800)]
        tp.post_readings(d, dev, [[rows[1401][0] + 3.0]] * 3, late, ["level"])
        tp.wait_for("the late readings skipped", lambda: tp.status(
            d, dev)["readings_not_scored_out_of_order"] == 3, 10)
        sq.wait_stored("X's opening stored", d, dev, x["id"], 10, ended=False)
        return post, x, late

    def save_on_late(self, dev):
        """The next start's vigild set to save a detector every so many readings
        (VIGIL_TEST_SAVE_EVERY) that the catch-up's save after dev's training's save falls on
        x_open_after_late's second late reading, inside the provisional episode. Returns
        every."""
        saved = sq.saved_last_ts(self.d.db_path, dev)  # the training's save
        every = (te.T0 + 1000 * 1401 - saved) // 1000 + 2  # readings after it to late[1]
        self.d.prefix = ["env", "VIGIL_TEST_SAVE_EVERY=%d" % every]
        return every

    def assert_saved_at(self, dev, every, ts):
        """The knob in the log (save_on_late), and dev's detectors row saved at ts."""
        d = self.d
        self.assertIn("VIGIL_TEST_SAVE_EVERY is %d (a test hook)" % every, d.log())
        try:  # the save's put is asynchronous; not so by then: the assertion says what it is
            tp.wait_for("the held save stored", lambda: sq.saved_last_ts(
                d.db_path, dev) == ts, 10)
        except AssertionError:
            pass
        self.assertEqual(sq.saved_last_ts(d.db_path, dev), ts, "every %d" % every)

    def restart_cutting(self, dev, y, z, where, args):
        """kill -9, Y's and Z's rows reopened, and dev's chunk rows cut (where, args: cut), then
        a start."""
        sq.restart_losing_ends(self, self.d, dev, [y["id"], z["id"]],
                               while_down=lambda: self.cut(dev, where, args))

    def none_replayed(self, dev, while_down=None):
        """Two trips Y and Z after the save, both rows reopened and dev's stored readings
        deleted while vigild is down (then while_down() when given), so the catch-up replays
        none: Y must end "restart" at Z's start, Z (`ahead`, unreached) at its own start, each
        logged once. Returns Z."""
        d = self.d
        y, z = self.two_trips(dev)
        sq.restart_losing_ends(self, d, dev, [y["id"], z["id"]], while_down=lambda: (
            drop_readings(d, dev), while_down and while_down()))
        row = sq.wait_stored("event %d's end stored" % y["id"], d, dev, y["id"], 30)
        self.assertEqual((row[0], row[1]["ended_by"]), (z["start_ts"], "restart"), row)
        for e in (y, z):
            self.assertEqual(d.log().count(
                "anomaly event %d of '%s' was stored open after its detector's last save, and "
                "the catch-up did not open it again" % (e["id"], dev)), 1, e["id"])
        row = sq.stored_event(d.db_path, dev, z["id"])
        self.assertEqual((row[0], row[1]["ended_by"]), (z["start_ts"], "restart"), row)
        return z


class ReplayedAfterSave(AfterSave):
    """Two trips after the save, both ended; their rows left to the catch-up's replay."""

    def two_trips_replayed(self, dev, lost):
        """Two trips after the detector's last save in no episode (at the training of reading
        1,200): events Y and Z open and end; kill -9 with the ends of lost (a function of Y's
        and Z's ids: the ids whose rows are reopened while vigild is down) lost. The catch-up's
        readings open both again under their ids and end them as before the crash: each stored
        and listed as it was, "cleared" counted twice (once an episode), no "restart", no third
        event."""
        d = self.d
        y, z = self.two_trips(dev)
        listed = [(e["id"], e["ended_by"], e["end_ts"]) for e in (z, y)]  # the listing's order
        sq.restart_losing_ends(self, d, dev, lost(y["id"], z["id"]), while_down=lambda: (
            self.assertLess(sq.saved_last_ts(d.db_path, dev), y["start_ts"],
                            "the detector was saved before both events opened")))
        for e in (y, z):
            row = sq.wait_stored("event %d's end stored" % e["id"], d, dev, e["id"], 30,
                              by=lambda by: by != "restart")
            self.assertEqual((row[0], row[1]["ended_by"]), (e["end_ts"], "cleared"), row)
        tp.wait_for("the catch-up's two ends counted",
                    lambda: sum(te.ended_counts(d).values()) >= 2, 30)
        self.assertEqual([(e["id"], e["ended_by"], e["end_ts"]) for e in self.events(dev)],
                         listed)
        self.assertEqual((te.ended_counts(d)["restart"], te.ended_counts(d)["cleared"]), (0, 2))
        self.assertNotIn("anomaly event %d of '%s' was stored open" % (y["id"], dev), d.log())
        self.assertEqual(sq.stored_row(d.db_path, "SELECT COUNT(*) FROM events e JOIN devices v ON"
                                    " v.id = e.device_id WHERE v.name = ?", (dev,))[0], 2)
        self.assertEqual(tp.status(d, dev)["state"], "normal")

    def test_rows_opened_after_a_save_in_no_episode_replayed_once(self):
        """Task events63 (session 63), the `ahead` case: both ends lost. Z, the newest open row,
        is past the saved next id (`ahead`), and so is Y, read behind it and opened after the
        save too: the restore must not end Y "restart" (the replay ends it again), and Z must
        not take Y's replayed episode as its own (then stored again as a third event). On
        main: Y ended "restart" at Z's start, Z ended "cleared" at its own start with Y's peak,
        and Z's episode stored again as event 3."""
        self.two_trips_replayed("ahead-two", lambda y, z: [y, z])

    def test_ahead_row_after_an_ended_event_replayed_once(self):
        """The same with Y's end stored and Z's lost: Z is the one open row, `ahead`, but not
        the first event after the save, so the replay's first episode (Y's) must not go on as
        Z."""
        self.two_trips_replayed("ahead-one", lambda y, z: [z])

    def test_rows_left_to_a_replay_that_opens_none_end_restart(self):
        """Review of events63 (session 63): the same two rows reopened, and the device's stored
        readings deleted while vigild is down (as a retention sweep deletes them when vigild was
        down longer than storage.retention), so the catch-up replays none. Y, left to the replay
        (past the saved next id), must still end: "restart" at Z's start, as a row behind a
        later one, counted and logged once. Before the review's repair Y stayed open in the store
        (nothing would end it until the next restart). read63c's finding 5: Z (`ahead`), which
        no replayed reading reached, ends "restart" at its own start after the catch-up too, and
        a live reading after the restart does not end it again; before, it stayed active and
        the first live reading ended it "reset" at that reading's time."""
        d, dev = self.d, "ahead-unreplayed"
        z = self.none_replayed(dev)
        scored = tp.status(d, dev)["readings_scored"]  # the saved count, before the live one
        tp.post_readings(d, dev, [[0.0]], [te.T0 + 1000 * 5000], ["level"])
        tp.wait_scored(d, dev, scored + 1)
        row = sq.stored_event(d.db_path, dev, z["id"])
        self.assertEqual((row[0], row[1]["ended_by"]), (z["start_ts"], "restart"), row)
        counts = te.ended_counts(d)
        self.assertEqual((counts["restart"], counts["reset"]), (2, 0), counts)
        self.assertEqual([e["active"] for e in self.events(dev)], [False, False])

    def test_newest_row_past_the_detectors_own_event_not_replayed_ends_restart(self):
        """read63c's finding 1: the detector saved in X's episode (a clean stop), then X ends,
        Y opens and ends, Z opens (the newest row: past X's id, started after the save); X's
        and Y's ends lost, and the device's readings deleted while vigild is down, so the
        catch-up replays none. X goes on (the saved detector's own event), Y ends "restart" at
        Z's start, and Z, the device's newest row, must end "restart" at its own start: before,
        the restore neither ended it nor left it to the catch-up, so it stayed open in the store
        beside X (two active events for one device)."""
        d, dev = self.d, "own-newest-unreplayed"
        rows = sq.trip_rows(1900, *sq.SECOND_TRIP, (1800, -3.0), (1801, -3.0))
        first = sq.first_trip(self, dev, rows)
        d.stop()
        d.start()
        for k, to in ((1403, 1602), (1602, 1700), (1700, 1803)):
            sq.post_level(d, dev, rows, k, to)
        x, y, z = first["id"], first["id"] + 1, first["id"] + 2
        sq.wait_stored("Z stored open", d, dev, z, 10, ended=False)
        for i in (x, y):
            sq.wait_stored("event %d stored ended" % i, d, dev, i, 10)
        z_start = sq.stored_event(d.db_path, dev, z)[1]["start_ts"]
        sq.restart_losing_ends(self, d, dev, [x, y], while_down=lambda: (
            self.assertEqual(sq.saved_last_ts(d.db_path, dev), first["start_ts"],
                             "the detector saved in X's episode"), drop_readings(d, dev)))
        row = sq.wait_stored("Y's end stored", d, dev, y, 30)
        self.assertEqual((row[0], row[1]["ended_by"]), (z_start, "restart"), row)
        row = sq.wait_stored("Z's end stored", d, dev, z, 10)
        self.assertEqual((row[0], row[1]["ended_by"]), (z_start, "restart"), row)
        self.assertEqual([(e["id"], e["active"]) for e in self.events(dev) if e["active"]],
                         [(x, True)])
        self.assertIsNone(sq.stored_event(d.db_path, dev, x)[0], "X goes on")
        self.assertEqual(te.ended_counts(d)["restart"], 2)

    def test_dropped_ahead_row_not_replayed_ends_restart(self):
        """Review of events63 (session 63): the same two rows reopened, and the device's stored
        readings from Z's opening on deleted while vigild is down (the chunk rows holding it and
        after, and its readings not yet in one), so the catch-up replays Y's episode (which
        drops Z, the `ahead` event, as an earlier event's opening comes first) and never reaches
        Z's. Z's row must still end: "restart" at its start. Y ends "cleared" as before. Before
        the review's repair Z's row stayed open (nothing would end it until the next restart)."""
        d, dev = self.d, "ahead-dropped"
        y, z = self.two_trips(dev, split=1550)
        self.restart_cutting(dev, y, z, "t_last >= ?", (z["start_ts"],))
        row = sq.wait_stored("event %d's end stored" % z["id"], d, dev, z["id"], 30)
        self.assertEqual((row[0], row[1]["ended_by"]), (z["start_ts"], "restart"), row)
        row = sq.wait_stored("event %d's end stored" % y["id"], d, dev, y["id"], 30)
        self.assertEqual((row[0], row[1]["ended_by"]), (y["end_ts"], "cleared"), row)
        self.assertEqual((te.ended_counts(d)["restart"], te.ended_counts(d)["cleared"]), (1, 1))

    def test_row_before_a_replayed_ahead_row_not_replayed_ends_restart(self):
        """Review of events63 (session 63): the same two rows reopened, and the chunk row of
        the readings from the save to before Z's opening (Y's among them) deleted while vigild
        is down, so the catch-up's first reading in anomaly is Z's opening and it goes on with
        Z, the `ahead` event (the next id raised to Z's, past Y's). Y, never opened again, must
        still end: "restart" at Z's start. Z ends "cleared" as before. Before the review's
        repair Y's row stayed open."""
        d, dev = self.d, "ahead-before-unreplayed"
        y, z = self.two_trips(dev, split=1550)
        self.restart_cutting(dev, y, z, "t0 > ? AND t_last < ?",
                             (sq.saved_last_ts(d.db_path, dev), z["start_ts"]))
        row = sq.wait_stored("event %d's end stored" % y["id"], d, dev, y["id"], 30)
        self.assertEqual((row[0], row[1]["ended_by"]), (z["start_ts"], "restart"), row)
        row = sq.wait_stored("event %d's end stored" % z["id"], d, dev, z["id"], 30)
        self.assertEqual((row[0], row[1]["ended_by"]), (z["end_ts"], "cleared"), row)
        self.assertEqual((te.ended_counts(d)["restart"], te.ended_counts(d)["cleared"]), (1, 1))

    def test_earliest_episode_gone_replay_keeps_each_rows_id(self):
        """read63c's finding 3 (task events64, session 64): three trips after the save, events
        X, Y and Z, all ended; Z's end lost (its row reopened, `ahead`), and the chunk row of
        the readings from the save to before Y's opening (X's episode among them) deleted while
        vigild is down (a retention cut), Y's and Z's readings kept. The replay opens Y's and
        Z's episodes again: each must take its own row's id (the stored row that began at its
        opening), so every row keeps its episode's start, end and reason (Z's end the replay's),
        the listing too, and nothing ends "restart". On the branch before: the replay numbered
        from the saved next id, so Y's episode overwrote X's row, Z's Y's, and Z's row ended
        "restart" at its start."""
        d, dev = self.d, "earliest-gone"
        rows = sq.trip_rows(1900, *sq.SECOND_TRIP, (1800, -3.0), (1801, -3.0))
        self.one_sensor(dev, rows[:1550])
        sq.post_level(d, dev, rows, 1550, len(rows))
        evs = tp.wait_for("three closed events", lambda: (lambda e: e if len(e) == 3 else None)(
            [e for e in self.events(dev) if not e["active"]]), 10)
        x, y, z = sorted(evs, key=lambda e: e["id"])
        self.assertEqual([e["id"] for e in (y, z)], [x["id"] + 1, x["id"] + 2], evs)
        listed = [(e["id"], e["start_ts"], e["end_ts"], e["ended_by"]) for e in self.events(dev)]
        kept = lambda r: (r[1]["start_ts"], r[0], r[1]["ended_by"])  # noqa: E731 (peaks: the
        # replay's detector has not scored the readings cut, so Y's and Z's may differ)
        before = {e["id"]: kept(sq.stored_event(d.db_path, dev, e["id"])) for e in evs}
        self.restart_cutting(dev, y, z, "t0 > ? AND t_last < ?",
                             (sq.saved_last_ts(d.db_path, dev), y["start_ts"]))
        sq.wait_stored("event %d's end stored" % z["id"], d, dev, z["id"], 30)
        tp.wait_for("the catch-up's two ends counted",
                    lambda: sum(te.ended_counts(d).values()) >= 2, 30)
        self.assertEqual({i: kept(sq.stored_event(d.db_path, dev, i)) for i in before}, before)
        self.assertEqual([(e["id"], e["start_ts"], e["end_ts"], e["ended_by"])
                          for e in self.events(dev)], listed)
        self.assertEqual((te.ended_counts(d)["restart"], te.ended_counts(d)["cleared"]), (0, 2))
        self.assertEqual(sq.stored_row(d.db_path, "SELECT COUNT(*) FROM events e JOIN devices v ON"
                                    " v.id = e.device_id WHERE v.name = ?", (dev,))[0], 3)

    def test_replayed_opening_at_no_stored_start_numbered_past_every_stored_row(self):
        """Review of events64 (session 64): two trips after the save, Y and Z, ended; while
        vigild is down (after a kill -9) Y's row is moved before the saved detector's last
        reading (as a row opened after the save on a clock stepped back since: its id past the
        saved next one, its start before the save) and Z's row deleted, so no stored row begins
        after the save. The replay opens both episodes at no stored start: each must take an id
        past every stored row, and the moved row stay as it is. On the branch before: the keys'
        floor was the highest id of the rows begun after the save (none), so Y's replayed
        episode took the saved next id plus one, the moved row's, and overwrote it."""
        d, dev = self.d, "past-every-row"
        y, z = self.two_trips(dev)
        moved = {}

        def move(db):
            last = sq.saved_last_ts(d.db_path, dev)
            dev_id = db.execute("SELECT id FROM devices WHERE name = ?", (dev,)).fetchone()[0]
            info = sq.stored_event(d.db_path, dev, y["id"])[1]
            info.update(start_ts=last - 20000, end_ts=last - 10000)
            moved.update(row=(last - 10000, info))
            db.execute("UPDATE events SET start_ts = ?, end_ts = ?, info = ? WHERE device_id = ?"
                       " AND id = ?", (last - 20000, last - 10000, json.dumps(info), dev_id,
                                       y["id"]))
            db.execute("DELETE FROM events WHERE device_id = ? AND id = ?", (dev_id, z["id"]))
        sq.restart_losing_ends(self, d, dev, [], while_down=lambda: sq.in_store(d.db_path, move))
        for i, e in ((y["id"] + 1, y), (y["id"] + 2, z)):
            row = sq.wait_stored("the replayed episode's row %d" % i, d, dev, i, 30)
            self.assertEqual((row[1]["start_ts"], row[0], row[1]["ended_by"]),
                             (e["start_ts"], e["end_ts"], "cleared"), row)
        self.assertEqual(sq.stored_event(d.db_path, dev, y["id"]), moved["row"])
        self.assertEqual(sq.stored_row(d.db_path, "SELECT COUNT(*) FROM events e JOIN devices v ON"
                                    " v.id = e.device_id WHERE v.name = ?", (dev,))[0], 3)


def rows_of(db_path, dev):
    """dev's stored rows as (id, start_ts, end_ts, ended_by, peak_score), by id."""
    return sq.in_store(db_path, lambda db: db.execute(
        "SELECT e.id, e.start_ts, e.end_ts, json_extract(e.info, '$.ended_by'),"
        " json_extract(e.info, '$.peak_score') FROM events e JOIN devices v ON v.id ="
        " e.device_id WHERE v.name = ? ORDER BY e.id", (dev,)).fetchall())


class Read64(AfterSave):
    """read64's findings 1 and 3 (docs/reliability.md, "read64's findings on the replay's ids
    (session 64)")."""

    def test_late_readings_replayed_before_the_ahead_row_open_their_own_event(self):
        """Finding 1: X opens after the save in no episode; then readings timestamped before X's
        start (a late batch) come: skipped live as out of order, but stored, so the catch-up
        after a kill -9 (X's end lost) scores them in time order and opens an episode before X's
        start. That episode must take an id past X's, and X's row be opened again at its start
        and ended at its end: before, the late episode went on as X (its id the saved next
        one's successor), its end clamped at X's start, and the replay's opening at X's start
        took X's id again (its key): the late episode's row was overwritten, never stored."""
        d, dev = self.d, "late-before-ahead"
        x = self.late_before(dev, sq.trip_rows(1700, (1400, -3.0), (1401, -3.0)), 1250)
        late = range(te.T0 + 1000 * 1250, te.T0 + 1000 * 1252)
        before = sq.wait_stored("X's end stored", d, dev, x["id"], 10)
        self.assertEqual(before[1]["ended_by"], "cleared", before)
        sq.restart_losing_ends(self, d, dev, [x["id"]])
        row = sq.wait_stored("X's end stored", d, dev, x["id"], 30)
        # its peak is the replay's: the late readings, scored now, moved the detector's state
        self.assertEqual((row[0], row[1]["ended_by"], row[1]["start_ts"], row[1]["channels"]),
                         (before[0], "cleared", x["start_ts"], before[1]["channels"]), row)
        got = tp.wait_for("the late episode stored ended", lambda: (lambda r: r if len(r) == 2 and
                          r[1][2] is not None else None)(rows_of(d.db_path, dev)), 30)
        self.assertEqual((got[1][0], got[1][1] in late), (x["id"] + 1, True), got)
        counts = te.ended_counts(d)  # since the start: the replay's ends, one each row
        self.assertEqual((counts["restart"], counts["cleared"]), (0, 2), counts)

    def test_two_rows_of_one_start_the_replay_takes_the_open_ones_id(self):
        """Finding 3: two stored rows began at Z's start (constructed: Z's row ended "reset" at
        its start, and an open one past it, as the device went on with). The replay's opening at
        that start must take the open row's id: before, bsearch picked either, and the replay
        ended the "reset" row again with Z's episode while the open row ended "restart"."""
        d, dev = self.d, "two-rows-one-start"
        y, z = self.two_trips(dev)
        d.kill()
        row = sq.stored_event(d.db_path, dev, z["id"])
        junk = dict(row[1], end_ts=z["start_ts"], end=row[1]["start"], ended_by="reset",
                    peak_score=0.5)
        real = dict(row[1], id=z["id"] + 1, active=True, end_ts=None, end=None, ended_by=None)

        def tie(db):
            dev_id = db.execute("SELECT id FROM devices WHERE name = ?", (dev,)).fetchone()[0]
            db.execute("UPDATE events SET end_ts = ?, info = ? WHERE device_id = ? AND id = ?",
                       (z["start_ts"], json.dumps(junk), dev_id, z["id"]))
            db.execute("INSERT INTO events(device_id, id, start_ts, end_ts, info) VALUES"
                       " (?, ?, ?, NULL, ?)", (dev_id, z["id"] + 1, z["start_ts"], json.dumps(real)))
        sq.in_store(d.db_path, tie)
        d.start()
        got = sq.wait_stored("the open row's end stored", d, dev, z["id"] + 1, 30)
        self.assertEqual((got[0], got[1]["ended_by"]), (z["end_ts"], "cleared"), got)
        self.assertEqual(rows_of(d.db_path, dev)[1], (z["id"], z["start_ts"], z["start_ts"],
                                                      "reset", 0.5))
        self.assertEqual(te.ended_counts(d)["restart"], 0)


@unittest.skipUnless(os.path.exists(FAILMAINT), "VIGIL_FAILMAINT (tests/fault/failmaint.c's "
                     "library) not built")
class FailingStore(AfterSave):
    """The same, vigild run with failmaint.c: the statements starting with FAIL_SQL fail while
    the flag file exists (read63c's findings 2 and 4)."""
    FAIL_SQL = None

    def setUp(self):
        self.flag = os.path.join(vt.mkdtemp(), "fail")
        self.d = vt.Vigild(config=tp.make_config(self.CONFIG), prefix=[
            "env", "LD_PRELOAD=" + vt.preload(FAILMAINT), "VIGIL_FAILMAINT_FLAG=" + self.flag,
            "VIGIL_FAILMAINT_SQL=" + self.FAIL_SQL])
        self.d.start()


class ReplayedEndLost(FailingStore):
    FAIL_SQL = "INSERT INTO events("
    # /healthz is "ok" 1 s after the catch-up's failed commit, not at the next commit that
    # succeeds (the default 60 s): the start waits for it, and under ASan no other commit came
    # within its 15 s once (task events64)
    CONFIG = AfterSave.CONFIG.rstrip("\n") + "\n[http]\nhealth_stall_s = 1\n"

    def test_replayed_end_not_stored_is_put_again_not_ended_restart(self):
        """read63c's finding 2: Y's and Z's rows reopened (the `ahead` case), and the events'
        puts failing at the start, so the catch-up replays both episodes (ended "cleared" in
        memory, counted) but their puts fail and the rows still read open after it. The restore
        must not end them "restart" too (before: a second end of each episode, counted and
        published, and stored "restart"): it puts the replay's ends again while vigild runs,
        and both rows are stored "cleared" at their own ends once the puts succeed."""
        d, dev = self.d, "replayed-end-lost"
        y, z = self.two_trips(dev)
        d.kill()
        for e in (y, z):
            sq.reopen(self, d.db_path, dev, e["id"])
        vt.write_file_atomic(self.flag, "fail")
        d.start()  # the restore and its catch-up run before vigild listens
        os.unlink(self.flag)
        for e in (y, z):
            row = sq.wait_stored("event %d's end stored" % e["id"], d, dev, e["id"], 30,
                                 by=lambda by: by != "restart")
            self.assertEqual((row[0], row[1]["ended_by"]), (e["end_ts"], "cleared"), row)
        self.assertIn("the ends of 2 events the catch-up replayed are not stored", d.log())
        # Task events64 (read63d's finding 5): the retry's lines do not call them "restart" ends
        self.assertIn("the ends of 2 events the catch-up replayed are not known stored: put "
                      "again every 5 s", d.log())
        tp.wait_for("the retry's line", lambda: "the ends of 2 events the catch-up replayed are "
                    "stored (0 of them counted now" in d.log(), 30)
        self.assertNotIn("\"restart\" ends", d.log())

    def test_replayed_end_put_again_keeps_a_later_chain_break(self):
        """read63d's finding 2 (task events64, session 64): as above, and the retry's first
        round fails too (its put held in the writer, then failed); then a maintenance period
        begins, which breaks the chain of Z (the device's newest event, ended "cleared" 7
        readings before the last: within event_continue_within's bound) and stores its row
        "chain_broken", and the next round puts Z's end again. That put must
        keep the mark (the end's JSON built again from the held event), or the next restart
        would let an event after the period continue Z. On the branch before: the round put
        the JSON of the restore's time back, and Z's row lost "chain_broken"."""
        d, dev = self.d, "replayed-end-chain"
        y, z = self.two_trips(dev, n=1610)  # Z's end close enough to the last reading to break
        d.kill()
        for e in (y, z):
            sq.reopen(self, d.db_path, dev, e["id"])
        vt.write_file_atomic(self.flag, "fail")
        d.start()
        errors = lambda: int(re.search(r"^vigil_store_commit_errors_total (\d+)$",  # noqa: E731
                                       d.metrics(), re.M).group(1))
        failed = errors()
        vt.write_file_atomic(self.flag, "hold")
        held = self.flag + ".held"
        tp.wait_for("the retry's first round held", lambda: os.path.exists(held), 30)
        vt.write_file_atomic(self.flag, "fail")
        tp.wait_for("its transaction failed", lambda: errors() > failed, 30)
        os.unlink(self.flag)
        st, _, body = tp.req(d, "POST", "/v1/devices/%s/maintenance" % dev, {"minutes": 60})
        self.assertEqual(st, 200, body)
        broken = lambda: (lambda r: r and r[1].get("chain_broken"))(  # noqa: E731
            sq.stored_event(d.db_path, dev, z["id"]))
        tp.wait_for("Z's row stored chain_broken", broken, 10)
        tp.wait_for("the retry's ends stored", lambda: re.search(
            r"ends of 2 events (the catch-up replayed )?are stored", d.log()), 30)
        row = sq.stored_event(d.db_path, dev, z["id"])
        self.assertEqual((row[0], row[1]["ended_by"], row[1].get("chain_broken")),
                         (z["end_ts"], "cleared", True), row)
        counts = te.ended_counts(d)
        self.assertEqual((counts["restart"], counts["cleared"]), (0, 2), counts)
        self.assertNotIn("was stored open after its detector's last save", d.log())


class MaxIdsUnread(FailingStore):
    FAIL_SQL = "SELECT d.name, e.m FROM"

    def live_trip_numbered_past(self, dev, z):
        """Posts readings 1,550 to 1,699 with a trip at 1,650 and asserts its live event is
        numbered Z's id + 1 (not Z's: the row Z keeps)."""
        rows = sq.trip_rows(1700, (1650, 1.5), (1651, 1.5))
        tp.post_readings(self.d, dev, rows[1550:1700],
                         [te.T0 + 1000 * i for i in range(1550, 1700)], ["level"])
        live = tp.wait_for("the live trip's event", lambda: [
            e for e in self.events(dev) if e["start_ts"] > z["start_ts"]], 30)
        self.assertEqual([e["id"] for e in live], [z["id"] + 1], live)

    def test_live_event_not_numbered_under_a_row_ended_after_the_catch_up(self):
        """read63c's finding 4: the read of the stored highest ids fails (logged), Y's and Z's
        rows reopened and the readings from Z's opening on deleted, so the catch-up replays Y
        (dropping Z, `ahead`) and Z's row ends "restart" after it. A later live trip must open
        an event past Z's id: before, the next id stayed at Y's (the replay's) and the live
        event took Z's id, overwriting Z's row."""
        d, dev = self.d, "max-ids-unread"
        y, z = self.two_trips(dev, split=1550)
        vt.write_file_atomic(self.flag, "fail")
        self.restart_cutting(dev, y, z, "t_last >= ?", (z["start_ts"],))
        os.unlink(self.flag)
        self.assertIn("the stored events' highest ids not read", d.log())
        row = sq.wait_stored("Z's end stored", d, dev, z["id"], 30)
        self.assertEqual((row[0], row[1]["ended_by"]), (z["start_ts"], "restart"), row)
        self.live_trip_numbered_past(dev, z)
        row = sq.stored_event(d.db_path, dev, z["id"])
        self.assertEqual((row[0], row[1]["ended_by"], row[1]["start_ts"]),
                         (z["start_ts"], "restart", z["start_ts"]), row)


    def test_live_event_not_numbered_under_an_ended_row_the_replay_skipped(self):
        """read64's finding 2: the highest ids' read fails, and Z (ended, not reopened: no row
        left to the catch-up) has its readings deleted while vigild is down, so the catch-up
        replays Y only. A later live trip must open an event past Z's id (the keys' highest id
        kept past the catch-up): before, the next id stayed at Y's and the live event took Z's
        id, overwriting Z's row."""
        d, dev = self.d, "max-ids-unread-ended"
        y, z = self.two_trips(dev, split=1550)
        before = sq.stored_event(d.db_path, dev, z["id"])
        vt.write_file_atomic(self.flag, "fail")
        d.kill()
        self.cut(dev, "t_last >= ?", (z["start_ts"],))
        d.start()
        os.unlink(self.flag)
        self.assertIn("the stored events' highest ids not read", d.log())
        self.live_trip_numbered_past(dev, z)
        tp.wait_for("the live event's row stored", lambda: sq.stored_event(d.db_path, dev,
                                                                            z["id"] + 1), 30)
        self.assertEqual(sq.stored_event(d.db_path, dev, z["id"]), before)


class LeftReadFails(FailingStore):
    # store_events_query's read of one device's open rows (storage/schema.c's
    # store__sql_ev_dev_active: up to its ORDER BY, which the query of all its rows lacks)
    FAIL_SQL = ("SELECT ?5, id, start_ts, end_ts, info FROM events WHERE device_id=?1 AND end_ts"
                " IS NULL AND start_ts<=?3 AND (start_ts<?3 OR ?5<?6 OR (?5=?6 AND id<?7))"
                " ORDER BY")

    def test_rows_left_to_a_replay_that_opens_none_end_restart_read_failing(self):
        """read63d's finding 1: the two rows none replayed (ReplayedAfterSave's
        test_rows_left_to_a_replay_that_opens_none_end_restart), with left_end's read of the
        device's open rows failing over the start. A row left to the catch-up is then taken as
        replayed only when the device's next id had reached its id after the replay; before the
        repair left_end raised the next id to each row's id as it went, so Z (read first: the
        newest) raised it past Y's and Y was taken as replayed and left open. Both must end
        "restart", as with the read working."""
        d = self.d
        self.none_replayed("left-read-fails", while_down=lambda: vt.write_file_atomic(
            self.flag, "fail"))
        os.unlink(self.flag)
        self.assertEqual(te.ended_counts(d)["restart"], 2)


    def test_ahead_row_after_a_late_episode_not_replayed_ends_restart_read_failing(self):
        """read64's finding 4: read64's finding 1 (Read64's late readings before X, X's end
        lost) on data where the replay does not reach X's opening again (the late readings
        moved the detector's state: no episode at X's start), with left_end's read of the open
        rows failing. The late episode takes an id past X's, so the next id passes X's: X must
        still end "restart" at its start (its key not hit), not be taken as replayed and left
        open to the next restart (the fate read from the next id: `numbered`)."""
        d, dev = self.d, "late-read-fails"
        x = self.late_before(dev, sq.trip_rows(1700), 1300)
        before = sq.wait_stored("X's end stored", d, dev, x["id"], 10)
        sq.restart_losing_ends(self, d, dev, [x["id"]], while_down=lambda: vt.write_file_atomic(
            self.flag, "fail"))
        os.unlink(self.flag)
        row = sq.wait_stored("X's end stored", d, dev, x["id"], 30)
        self.assertEqual((row[0], row[1]["ended_by"], row[1]["peak_score"]),
                         (x["start_ts"], "restart", before[1]["peak_score"]), row)
        got = rows_of(d.db_path, dev)
        self.assertEqual((len(got), got[1][0], got[1][3]), (2, x["id"] + 1, "cleared"), got)


class Read64c(AfterSave):
    """read64c's findings (docs/reliability.md, "read64c's findings: an earlier replayed opening
    (session 64)"): late readings, skipped live as out of order but stored, just before X's
    start (X the only event after the save), so the catch-up after a kill -9 opens X's episode
    0.8 s earlier than the live run did. It must go on as X's (its id, its row, the earlier
    start), listed and stored once, no "restart" end."""

    def early_episode(self, dev, lose_end):
        """X trips at reading 1,402; three readings 3 above reading 1,401's, timestamped 0.2,
        0.5 and 0.8 s after it, posted late; X's end stored, then a kill -9 (X's row reopened
        when lose_end) and a start. Returns X and the late readings' times once X's row is
        stored ended again."""
        d = self.d
        rows = sq.trip_rows(1700)
        self.one_sensor(dev, rows)
        x = tp.wait_for("X ended", lambda: (lambda e: e[0] if len(e) == 1 else None)(
            [e for e in self.events(dev) if not e["active"]]), 10)
        late = [te.T0 + 1000 * 1401 + ms for ms in (200, 500, 800)]
        tp.post_readings(d, dev, [[rows[1401][0] + 3.0]] * 3, late, ["level"])
        tp.wait_for("the late readings skipped", lambda: tp.status(
            d, dev)["readings_not_scored_out_of_order"] == 3, 10)
        sq.wait_stored("X's end stored", d, dev, x["id"], 10)
        sq.restart_losing_ends(self, d, dev, [x["id"]] if lose_end else [])
        tp.wait_for("caught up", lambda: tp.status(d, dev)["state"] == "normal", 30)
        try:  # the replay's puts are asynchronous; not so by then: assert_once says how
            tp.wait_for("X's row started at the late readings", lambda: (lambda r: r and r[0] is
                        not None and r[1]["start_ts"] == late[0])(
                            sq.stored_event(d.db_path, dev, x["id"])), 15)
        except AssertionError:
            pass
        return x, late

    def assert_once(self, dev, x, late):
        """X's episode stored and listed once, under X's id, from the first late reading to X's
        end, ended "cleared"; no "restart" end counted or logged."""
        d = self.d
        rows = [r for r in rows_of(d.db_path, dev) if r[1] < x["end_ts"] and r[2] is not None
                and r[2] > late[0]]
        self.assertEqual([r[:4] for r in rows], [(x["id"], late[0], x["end_ts"], "cleared")],
                         rows_of(d.db_path, dev))
        listed = [(e["id"], e["start_ts"], e["end_ts"]) for e in self.events(dev)
                  if e["start_ts"] < x["end_ts"] and (e["end_ts"] or 0) > late[0]]
        self.assertEqual(listed, [(x["id"], late[0], x["end_ts"])], self.events(dev))
        self.assertEqual(te.ended_counts(d)["restart"], 0)
        self.assertNotIn("was stored open", d.log())

    def test_earlier_replayed_opening_goes_on_as_the_ahead_row(self):
        """Finding 1: X's end lost (X restored `ahead`). Before: the replay's opening before X's
        start dropped X (read64's finding 1's rule), took a new id, and X ended "restart"."""
        x, late = self.early_episode("early-ahead", True)
        self.assert_once("early-ahead", x, late)

    def test_earlier_replayed_opening_takes_the_stored_rows_id(self):
        """Finding 2: X's end stored. Before: the replay's opening 0.8 s before X's stored start
        matched no key, took a new id, and the episode was stored and listed twice."""
        x, late = self.early_episode("early-ended", False)
        self.assert_once("early-ended", x, late)

    def test_an_earlier_opening_still_open_at_the_catch_ups_end_is_numbered(self):
        """Left (c) of read64c's section, the drain's settle: X opens at reading 1,402 (its row
        open at the kill -9), the late readings come, and X's row is made to start after the
        last stored reading while vigild is down (as if X's readings were lost: the late ones
        share their chunk row, so it cannot be cut apart). The catch-up's episode opens at no
        key's start with X's key after it (provisional) and is still open when the catch-up is
        drained: pipeline__event_replay_settle must number it past every stored row (X's id +
        1), store and list it under that id, and the live readings go on with it and end it;
        X, no reading of it replayed, ends "restart" at its start. Without the drain's settle
        the episode stayed provisional into live scoring: listed with id 0, stored only at its
        end, and every detector save of the device skipped until then. Session 65: the
        restart's vigild saves in the provisional episode (save_on_late), and that save, held,
        is made at the drain's settle (the detectors row at reading 1,402, the last replayed);
        before, the count started again at the skip and nothing was saved."""
        d, dev = self.d, "early-open-at-end"
        post, x, late = self.x_open_after_late(dev)
        x_start = x["start_ts"] + 500  # after the last stored reading (1,402)

        def move(db):
            info = dict(json.loads(db.execute(
                "SELECT e.info FROM events e JOIN devices v ON v.id = e.device_id WHERE v.name"
                " = ? AND e.id = ?", (dev, x["id"])).fetchone()[0]), start_ts=x_start)
            db.execute("UPDATE events SET start_ts = ?, info = ? WHERE id = ? AND device_id ="
                       " (SELECT id FROM devices WHERE name = ?)",
                       (x_start, json.dumps(info), x["id"], dev))
        every = self.save_on_late(dev)  # held, then made at the drain's settle (session 65)
        sq.restart_losing_ends(self, d, dev, [], while_down=lambda: sq.in_store(d.db_path, move))
        self.assert_saved_at(dev, every, te.T0 + 1000 * 1402)
        self.assertEqual(tp.status(d, dev)["state"], "anomaly")
        listed = sorted((e["id"], e["start_ts"], e["active"], e["ended_by"]) for e in
                        self.events(dev))
        self.assertEqual(listed, [(x["id"], x_start, False, "restart"),
                                  (x["id"] + 1, late[0], True, None)], self.events(dev))
        row = sq.wait_stored("the episode's opening stored", d, dev, x["id"] + 1, 10,
                             ended=False)
        self.assertEqual(row[1]["start_ts"], late[0], row)
        sq.ended_restart(self, d, dev, x["id"], x_start)
        post(1403, 1700)
        got = sq.wait_stored("the episode's end stored", d, dev, x["id"] + 1, 10)
        self.assertEqual((got[1]["start_ts"], got[1]["ended_by"]), (late[0], "cleared"), got)


class SaveHeld(AfterSave):
    """Left (e) of read64c's section (docs/reliability.md, "A save skipped while an event is
    provisional (session 65)"): a detector save due while the catch-up's episode is provisional
    (event.prov: no id yet) is held, and made on the reading that numbers the episode; before,
    the count of readings to the next save started again at the skip, and a kill -9 meanwhile
    replayed from the older save."""

    def test_a_save_held_while_provisional_is_made_when_the_event_is_numbered(self):
        """X opens at reading 1,402 (its row open at the kill -9), three late readings 0.2 to
        0.8 s after reading 1,401, and reading 1,403, which ends X "cleared". The restart's
        vigild saves every `every` readings (VIGIL_TEST_SAVE_EVERY), so its catch-up's save falls
        on the second late reading, in the provisional episode; reading 1,402 gives it X's id
        (X's key), and the held save is made there: the detectors row's last_ts is reading
        1,402's (the review of session 65: not the last replayed reading, 1,403, which the
        drain's settle would save at had the numbering reading not). A second kill -9 (the knob
        unset) replays from that save: X listed once, from the first late reading, ended
        "cleared" by reading 1,403 replayed, its row the same and the device's only one."""
        d, dev = self.d, "save-held"
        post, x, late = self.x_open_after_late(dev)
        post(1403, 1404)
        end = te.T0 + 1000 * 1403
        sq.wait_stored("X's end stored", d, dev, x["id"], 10)
        every = self.save_on_late(dev)
        sq.restart_losing_ends(self, d, dev, [])
        self.assert_saved_at(dev, every, te.T0 + 1000 * 1402)
        d.prefix = []
        sq.restart_losing_ends(self, d, dev, [])
        self.assertEqual([(e["id"], e["start_ts"], e["end_ts"], e["ended_by"]) for e in
                          self.events(dev)], [(x["id"], late[0], end, "cleared")],
                         self.events(dev))
        row = sq.wait_stored("X's replayed end stored", d, dev, x["id"], 10)
        self.assertEqual((row[1]["start_ts"], row[1]["ended_by"]), (late[0], "cleared"), row)
        got = rows_of(d.db_path, dev)
        self.assertEqual([r[:4] for r in got], [(x["id"], late[0], end, "cleared")], got)


if __name__ == "__main__":
    vt.main()

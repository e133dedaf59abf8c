#!/usr/bin/env python3
"""Events opened after a detector's last save in no episode, replayed once by the restore's
catch-up (task events63, session 63; docs/reliability.md, "Events opened after a save in no
episode replayed once (session 63)"): after a kill -9 the catch-up replays the readings after the
save and numbers the events it opens from the saved next id, as before the crash, so the
restore leaves the open rows past that id to it (not ended "restart"), and the newest open row
(`ahead`) does not take an earlier event's replayed episode as its own. The lost ends are made
by reopening the rows while vigild is down (test_stopqueue.py's LostEndWhileRunning, whose
helpers these tests use)."""
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_fx as tp  # noqa: E402  (the pipeline tests' helpers)
import test_events as te  # noqa: E402  (its test cases not imported: run by it_events)
import test_stopqueue as sq  # noqa: E402  (its test cases not imported: run by it_stopqueue)
import vigiltest as vt  # noqa: E402


class ReplayedAfterSave(te.Events):
    """A one-sensor device trained (the detector saved at the training of reading 1,200), two
    trips after that save, a kill -9 with some of their ends lost."""
    CONFIG = te.Released.CONFIG

    def two_trips_replayed(self, dev, lost):
        """Two trips after the detector's last save in no episode (at the training of reading
        1,200): events Y and Z open and end; kill -9 with the ends of lost (a function of Y's
        and Z's ids: the ids whose rows are reopened while vigild is down) lost. The catch-up's
        readings open both again under their ids and end them as before the crash: each stored
        and listed as it was, "cleared" counted twice (once an episode), no "restart", no third
        event."""
        d = self.d
        self.one_sensor(dev, sq.trip_rows(1700, *sq.SECOND_TRIP))
        evs = tp.wait_for("two closed events", lambda: (lambda e: e if len(e) == 2 else None)(
            [e for e in self.events(dev) if not e["active"]]), 10)
        y, z = sorted(evs, key=lambda e: e["id"])
        self.assertEqual((z["id"], y["ended_by"], z["ended_by"]), (y["id"] + 1, "cleared",
                                                                   "cleared"), evs)
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


if __name__ == "__main__":
    vt.main()

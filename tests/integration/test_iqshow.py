#!/usr/bin/python3
"""vigild integration (session 45, second round, task influx5): InfluxQL's SHOW statements
where iqtime left them, each sent to vigild and to a real influxd 1.6.7 (the InfluxdPair
fixture, Debian's influxd on loopback) holding the same points and compared byte for byte:
SHOW FIELD KEYS' LIMIT and OFFSET (each measurement's fields, as influxd keeps them)."""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402
from influxpair import InfluxdPair  # noqa: E402

T = 1732780800000  # ms: 2024-11-28T08:00:00Z
# Each device its own measurement with its device tag, as vigild reads it, with 1 to 4 fields.
FIELDS = {"a1": "x=1,y=2,z=3", "a2": "y=1", "b1": "p=1,q=2,w=3,x=4"}
POINTS = "\n".join("%s,device=%s %s %d" % (d, d, f, T) for d, f in sorted(FIELDS.items()))
# What influxd holds of vigild's reserved measurements: a series per device in each, with the
# fields vigild's SHOW FIELD KEYS gives them (vigil_predictions: the devices' channels).
ANOMALY = ('channels="x",continues=0,end=1,ended_by="a",fault=0,id=1,note="n",opened_by="a",'
           'peak_score=1,text="t"')
RESERVED = "\n".join(
    "vigil_anomalies,device=%s %s %d\nvigil_predictions,device=%s %s %d\n"
    "vigil_scores,device=%s score=1,state=0 %d" % (d, ANOMALY, T, d, f, T, d, T)
    for d, f in sorted(FIELDS.items()))


class FieldKeysLimit(InfluxdPair):
    """SHOW FIELD KEYS' LIMIT and OFFSET, compared with influxd."""

    POINTS = POINTS
    INFLUXD_ONLY = RESERVED

    def test_limit_offset_per_measurement_as_influxd(self):
        # influx5: influxd keeps OFFSET n, LIMIT n of each measurement's sorted fields and
        # leaves out a measurement with none kept; vigild read both and listed every field
        # (iqtime's lead: "read but not applied")
        tails = ["LIMIT 1", "LIMIT 2 OFFSET 1", "OFFSET 1", "OFFSET 2", "OFFSET 3", "OFFSET 9",
                 "OFFSET 10", "OFFSET 99999999999", "LIMIT 0", "LIMIT 0 OFFSET 1", "OFFSET 0",
                 "LIMIT 3 OFFSET 8", "LIMIT 99999999999 OFFSET 1", "ORDER BY time DESC LIMIT 1"]
        qs = ["SHOW FIELD KEYS " + t for t in tails]
        qs += ["SHOW FIELD KEYS ON g LIMIT 1 OFFSET 1", "SHOW FIELD KEYS LIMIT 1; SHOW FIELD KEYS "
               "OFFSET 1"]
        for m in ("a1", "b1", "vigil_anomalies", "vigil_predictions", "vigil_scores"):
            qs += ["SHOW FIELD KEYS FROM %s %s" % (m, t) for t in (
                "LIMIT 1", "LIMIT 2 OFFSET 1", "OFFSET 1", "OFFSET 3", "LIMIT 3 OFFSET 8")]
        # the cardinality statements count every field still (their OFFSET 1: nothing)
        qs += ["SHOW FIELD KEY CARDINALITY LIMIT 1", "SHOW FIELD KEY EXACT CARDINALITY LIMIT 1",
               "SHOW FIELD KEY CARDINALITY OFFSET 1", "SHOW FIELD KEY CARDINALITY FROM b1 LIMIT 1"]
        failed = []
        for q in qs:
            with self.subTest(q=q):
                want, got = self.both(q)
                self.assertEqual(want[0], 200, want)
                self.assertNotIn(b'"error"', want[1])
                if got != want:
                    failed.append(q)
                self.assertEqual(got, want)
        print("\nSHOW FIELD KEYS with LIMIT/OFFSET: %d of %d as influxd" % (
            len(qs) - len(failed), len(qs)))


if __name__ == "__main__":
    vt.main()

#!/usr/bin/env python3
"""Contract test of vigil-replay (the contract in ../shared/eval/bench.py's docstring).

  replay_contract.py PATH/TO/vigil-replay

On small generated series (three channels with a constant one, missing cells and a fault; and
one channel) it checks: the output header, one output row per input row with the timestamp
copied verbatim, anomaly_score in [0, 1], is_anomaly in {0, 1}, causality (replaying a prefix
of the input gives exactly the first rows of the full output, including prefixes that end
just before and after a retraining), determinism, and a clean failure on a missing input. It
checks the contract, not the detection quality. Python 3 standard library only.
"""
import math, os, random, subprocess, sys, tempfile

REPLAY = sys.argv[1] if len(sys.argv) > 1 else "build/vigil-replay"


def series_multi(n):
    rnd = random.Random(5)
    rows = []
    for t in range(n):
        a = math.sin(2 * math.pi * t / 50) + 0.05 * rnd.gauss(0, 1)
        b = 0.5 * math.cos(2 * math.pi * t / 50) + 0.05 * rnd.gauss(0, 1)
        if 1100 <= t < 1150:
            b += 1.5  # a fault
        cells = [f"{a:.5f}", f"{b:.5f}", "7.25"]  # the third channel is constant
        if t % 97 == 13:
            cells[1] = ""  # missing
        if t % 211 == 5:
            cells[0] = "nan"  # unparsable as a reading
        rows.append((f"2026-01-01T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z", cells))
    return ["timestamp", "a", "b", "const"], rows


def series_single(n):
    rnd = random.Random(9)
    rows = []
    for t in range(n):
        v = 100 + 10 * math.sin(2 * math.pi * t / 288) + rnd.gauss(0, 1)
        m = t * 5  # five-minute readings (session 67: "2015-02-26 000123" was read as no time,
        # silently; such a timestamp is now refused)
        rows.append((str(1424908800000 + m * 60000), [f"{v:.3f}"]))  # epoch ms
    return ["timestamp", "value"], rows


def write_csv(path, header, rows):
    with open(path, "w") as fh:
        fh.write(",".join(header) + "\n")
        for ts, cells in rows:
            fh.write(",".join([ts] + cells) + "\n")


def replay(tmp, name, header, rows):
    src, dst = os.path.join(tmp, name + ".csv"), os.path.join(tmp, name + ".out.csv")
    write_csv(src, header, rows)
    proc = subprocess.run([REPLAY, src, dst], stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 0, f"{name}: exit {proc.returncode}: {proc.stderr}"
    with open(dst) as fh:
        lines = fh.read().splitlines()
    return lines


def check(lines, rows, name):
    assert lines[0].split(",")[:3] == ["timestamp", "anomaly_score", "is_anomaly"], \
        f"{name}: header {lines[0]!r}"
    body = lines[1:]
    assert len(body) == len(rows), f"{name}: {len(body)} output rows for {len(rows)} input rows"
    for (ts, _), line in zip(rows, body):
        f = line.split(",")
        assert f[0] == ts, f"{name}: timestamp {f[0]!r} for {ts!r}"
        s = float(f[1])
        assert 0.0 <= s <= 1.0 and not math.isnan(s), f"{name}: score {f[1]}"
        assert f[2] in ("0", "1"), f"{name}: is_anomaly {f[2]!r}"
    return body


def main():
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, gen, n, cuts in (("multi", series_multi, 1600, (399, 400, 401, 900, 1399, 1400, 1401, 1120)),
                                   ("single", series_single, 1500, (400, 1000, 1401))):
            header, rows = gen(n)
            full = check(replay(tmp, name, header, rows), rows, name)
            again = check(replay(tmp, name + "_again", header, rows), rows, name)
            if full != again:
                print(f"FAIL {name}: two runs differ")
                failures += 1
            for cut in cuts:
                part = check(replay(tmp, f"{name}_{cut}", header, rows[:cut]), rows[:cut], name)
                if part != full[:cut]:
                    k = next(i for i, (a, b) in enumerate(zip(part, full)) if a != b)
                    print(f"FAIL {name}: prefix of {cut} rows differs at row {k}: {part[k]} vs {full[k]}")
                    failures += 1
            flagged = sum(1 for line in full if line.split(",")[2] == "1")
            print(f"ok   {name}: {n} rows, {len(cuts)} prefixes identical, {flagged} rows flagged")
        # A header alone: no rows out, header present.
        lines = replay(tmp, "empty", ["timestamp", "x"], [])
        assert lines == ["timestamp,anomaly_score,is_anomaly"], lines
        # A time with no millisecond of Unix time (a leap second; before 1970 by its offset) is
        # read as no time, as before, but said on stderr with its row (it was silent).
        src, dst = os.path.join(tmp, "leap.csv"), os.path.join(tmp, "leap.out.csv")
        write_csv(src, ["timestamp", "x"], [("2016-12-31 23:59:59", ["1"]),
                                             ("2016-12-31 23:59:60", ["2"]),
                                             ("1970-01-01T00:30:00+01:00", ["3"]),
                                             ("2017-01-01 00:00:00", ["4"])])
        proc = subprocess.run([REPLAY, src, dst], stderr=subprocess.PIPE, text=True)
        assert proc.returncode == 0, f"leap: exit {proc.returncode}: {proc.stderr}"
        with open(dst) as fh:
            assert len(fh.read().splitlines()) == 5
        err = proc.stderr.splitlines()
        assert len(err) == 2, err
        assert err[0].startswith("vigil-replay: row 2: timestamp '2016-12-31 23:59:60' read as "
                                 "no time: second 60 (a leap second) is refused"), err
        assert err[1].startswith("vigil-replay: row 3: timestamp '1970-01-01T00:30:00+01:00' "
                                 "read as no time: before 1970-01-01T00:00:00Z"), err
        print("ok   leap: second 60 and a time before 1970 named on stderr")
        # Common CSVs that ran silently wrong with exit 0 (session 67, read67b finding 5): quoted
        # cells are read (the same scores as unquoted), and a row of the wrong width, a
        # timestamp that is no time, a decimal comma, a time column not first and a ';' header
        # are refused, exit 1, naming the line.
        header, rows = series_multi(500)
        plain = replay(tmp, "plain", header, rows)
        src, dst = os.path.join(tmp, "quoted.csv"), os.path.join(tmp, "quoted.out.csv")
        with open(src, "w") as fh:
            for cells in [header] + [[ts] + c for ts, c in rows]:
                fh.write(",".join('"%s"' % c for c in cells) + "\r\n")
        proc = subprocess.run([REPLAY, src, dst], stderr=subprocess.PIPE, text=True)
        assert proc.returncode == 0, f"quoted: exit {proc.returncode}: {proc.stderr}"
        with open(dst) as fh:
            assert fh.read().splitlines() == plain, "quoted cells read otherwise than plain ones"
        print("ok   quoted: RFC 4180 cells give the same output as unquoted ones")

        # Blank lines (one at the end of a file, as editors leave) are no rows: skipped, the
        # output the same (the review of int67 found them refused as "1 cells").
        src, dst = os.path.join(tmp, "blank.csv"), os.path.join(tmp, "blank.out.csv")
        with open(src, "w") as fh:
            fh.write(",".join(header) + "\n")
            for n, (ts, c) in enumerate(rows):
                fh.write(",".join([ts] + c) + "\n" + ("\r\n" if n == 10 else ""))
            fh.write("\n \n")
        proc = subprocess.run([REPLAY, src, dst], stderr=subprocess.PIPE, text=True)
        assert proc.returncode == 0, f"blank: exit {proc.returncode}: {proc.stderr}"
        with open(dst) as fh:
            assert fh.read().splitlines() == plain, "blank lines changed the output"
        print("ok   blank: blank lines are no rows")

        def refused(name, text, want):
            src = os.path.join(tmp, name + ".csv")
            with open(src, "w") as fh:
                fh.write(text)
            proc = subprocess.run([REPLAY, src, os.path.join(tmp, name + ".out.csv")],
                                  stderr=subprocess.PIPE, text=True)
            assert proc.returncode == 1, f"{name}: exit {proc.returncode}: {proc.stderr}"
            assert proc.stderr == "vigil-replay: %s: %s\n" % (src, want), proc.stderr
            print(f"ok   {name}: refused: {want}")
        good = "1796000000000,1.5,2\n1796000001000,1.6,2\n"
        refused("wide", "timestamp,a,b\n" + good + "1796000002000,1.7,2,9\n",
                "line 4: 4 cells, the header has 3 (decimal commas? write 60.1, not 60,1)")
        refused("narrow", "timestamp,a,b\n" + good + "1796000002000,1.7\n",
                "line 4: 2 cells, the header has 3")
        refused("badts", "timestamp,a,b\n" + good + "yesterday,1.7,2\n",
                "line 4: timestamp 'yesterday' is not a time (epoch milliseconds, RFC 3339, or "
                "YYYY-MM-DD HH:MM:SS)")
        refused("deccomma", "timestamp,a,b\n" + good + '1796000002000,"1,7",2\n',
                "line 4, column 'a': '1,7' has a decimal comma: write it with a point")
        refused("tscol2", "a,timestamp,b\n1.5,1796000000000,2\n",
                "column 2 'timestamp' looks like the timestamp, but the first column ('a') is "
                "read as it: put the timestamp column first")
        refused("semi", "timestamp;a;b\n1796000000000;1,5;2\n",
                "need 1..64 channels after the timestamp; the header has ';' in it: the cells "
                "must be comma-separated")
        refused("openquote", 'timestamp,a\n1796000000000,"1.5\n',
                "line 2: a quote not closed on the line (a quoted cell across lines is not "
                "read), or text after a closing quote")
        # A missing input fails with a non-zero exit and a message.
        proc = subprocess.run([REPLAY, os.path.join(tmp, "absent.csv"), os.path.join(tmp, "o.csv")],
                              stderr=subprocess.PIPE, text=True)
        assert proc.returncode != 0 and proc.stderr, "missing input must fail"
    if failures:
        sys.exit(1)
    print("replay contract: all checks passed")


if __name__ == "__main__":
    main()

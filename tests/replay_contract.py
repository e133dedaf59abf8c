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
import math, os, random, signal, subprocess, sys, tempfile, time

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
        # read as no time, as before, but said on stderr with its line (it was silent; session
        # 68: "row N" there, "line N" in the refusals, now the file's line, the header line 1).
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
        assert err[0].startswith("vigil-replay: %s: line 3: timestamp '2016-12-31 23:59:60' "
                                 "read as no time: second 60 (a leap second) is refused" % src), err
        assert err[1].startswith("vigil-replay: %s: line 4: timestamp '1970-01-01T00:30:00+01:00' "
                                 "read as no time: before 1970-01-01T00:00:00Z" % src), err
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

        # Blanks before an opening quote and after a closing one are skipped, as Python's csv
        # module and pandas do with skipinitialspace=True (session 68: `1, "1.5"` was read as a
        # missing value): the same output as plain cells.
        src, dst = os.path.join(tmp, "spaced.csv"), os.path.join(tmp, "spaced.out.csv")
        with open(src, "w") as fh:
            for cells in [header] + [[ts] + c for ts, c in rows]:
                fh.write(cells[0] + "," + ",".join(' \t"%s" ' % c for c in cells[1:]) + "\n")
        proc = subprocess.run([REPLAY, src, dst], stderr=subprocess.PIPE, text=True)
        assert proc.returncode == 0, f"spaced: exit {proc.returncode}: {proc.stderr}"
        with open(dst) as fh:
            assert fh.read().splitlines() == plain, "blanks around quoted cells changed the output"
        print("ok   spaced: blanks around quoted cells are skipped")

        # Epoch seconds (session 68: read as milliseconds, dates in January 1970): a whole
        # number that would be 1970-01-02 to 1973-03-03 in ms is refused unless --time-unit
        # says the unit; --time-unit s reads seconds (a fraction too) with the scores of the
        # same times in milliseconds; --time-unit ms reads small numbers as milliseconds.
        def replay_with(name, text, *opts):
            src, dst = os.path.join(tmp, name + ".csv"), os.path.join(tmp, name + ".out.csv")
            with open(src, "w") as fh:
                fh.write(text)
            proc = subprocess.run([REPLAY, *opts, src, dst], stderr=subprocess.PIPE, text=True)
            assert proc.returncode == 0, f"{name}: exit {proc.returncode}: {proc.stderr}"
            with open(dst) as fh:
                return [l.split(",", 1) for l in fh.read().splitlines()]
        secs = [1796000000 + 300 * t for t in range(len(rows))]
        body = lambda stamps: "".join(",".join([ts] + c) + "\n" for ts, (_, c) in zip(stamps, rows))
        hdr = ",".join(header) + "\n"
        # retrain_seconds makes the scores depend on the times read.
        ms_out = replay_with("unit_ms", hdr + body(["%d000" % t for t in secs]),
                             "-s", "retrain_seconds=7200")
        s_out = replay_with("unit_s", hdr + body(["%d" % t for t in secs]),
                            "--time-unit", "s", "-s", "retrain_seconds=7200")
        f_out = replay_with("unit_sfrac", hdr + body(["%d.0004" % t for t in secs]),
                            "--time-unit", "s", "-s", "retrain_seconds=7200")
        assert [r[1] for r in s_out] == [r[1] for r in ms_out], "--time-unit s read otherwise"
        assert [r[1] for r in f_out] == [r[1] for r in ms_out], "seconds with a fraction"
        assert [r[0] for r in s_out[1:]] == ["%d" % t for t in secs], "timestamps not copied"
        small = replay_with("unit_small", "timestamp,x\n1000000000,1\n1000060000,2\n",
                            "--time-unit", "ms")
        assert len(small) == 3, small
        # A blank or a '+' before the seconds, as the guess reads them (read68e: refused as
        # seconds-like without --time-unit s, then as "not a time" with it).
        blank = replay_with("unit_blank", "timestamp,x\n 1796000000,1\n+1796000060,2\n"
                            "1796000120 ,3\n1796000180\t,4\n", "--time-unit", "s")
        assert len(blank) == 5, blank
        # ... and blanks after it (read69a 3: "1796000120 ," was "not a time", pointing at
        # --time-unit ms).
        assert [r[0] for r in blank[3:]] == ["1796000120 ", "1796000180\t"], blank
        print("ok   units: --time-unit s reads seconds as the same times in ms")

        def refused(name, text, want, *opts):
            src = os.path.join(tmp, name + ".csv")
            with open(src, "w") as fh:
                fh.write(text)
            proc = subprocess.run([REPLAY, *opts, src, os.path.join(tmp, name + ".out.csv")],
                                  stderr=subprocess.PIPE, text=True)
            assert proc.returncode == 1, f"{name}: exit {proc.returncode}: {proc.stderr}"
            assert proc.stderr == "vigil-replay: %s: %s\n" % (src, want), proc.stderr
            # No OUTPUT, nor a temporary file, is left (session 68: the rows before the refused
            # line were, a plausible but partial file).
            left = [n for n in os.listdir(tmp) if n.startswith(name + ".out.csv")]
            assert left == [], f"{name}: refused, but left {left}"
            print(f"ok   {name}: refused: {want}")
        good = "1796000000000,1.5,2\n1796000001000,1.6,2\n"
        refused("wide", "timestamp,a,b\n" + good + "1796000002000,1.7,2,9\n",
                "line 4: 4 cells, the header has 3 (decimal commas? write 60.1, not 60,1)")
        refused("narrow", "timestamp,a,b\n" + good + "1796000002000,1.7\n",
                "line 4: 2 cells, the header has 3")
        refused("badts", "timestamp,a,b\n" + good + "yesterday,1.7,2\n",
                "line 4: timestamp 'yesterday' is not a time (epoch milliseconds, RFC 3339, or "
                "YYYY-MM-DD HH:MM:SS; epoch seconds: --time-unit s)")
        refused("secs", "timestamp,a,b\n1796000000,1.5,2\n",
                "line 2: timestamp '1796000000' looks like epoch seconds (as milliseconds it is "
                "between 1970-01-02 and 1973-03-03): give --time-unit s, or --time-unit ms to "
                "read it as milliseconds")
        refused("secsms", "timestamp,a,b\n" + good, "line 2: timestamp '1796000000000' is not a "
                "time (epoch seconds, RFC 3339, or YYYY-MM-DD HH:MM:SS; epoch milliseconds: "
                "--time-unit ms)", "--time-unit", "s")
        # A refused line after many good rows: still no OUTPUT.
        refused("late", "timestamp,a,b\n" + "".join(
            "%d,1.5,2\n" % (1796000000000 + 1000 * t) for t in range(300)) + "x,1,2\n",
            "line 302: timestamp 'x' is not a time (epoch milliseconds, RFC 3339, or "
            "YYYY-MM-DD HH:MM:SS; epoch seconds: --time-unit s)")
        # An OUTPUT there before a refused run is left as it was.
        keep = os.path.join(tmp, "kept.csv")
        with open(keep, "w") as fh:
            fh.write("earlier\n")
        src = os.path.join(tmp, "keep_in.csv")
        with open(src, "w") as fh:
            fh.write("timestamp,a\n" + good.replace(",2\n", "\n") + "bad,1\n")
        proc = subprocess.run([REPLAY, src, keep], stderr=subprocess.PIPE, text=True)
        assert proc.returncode == 1, proc.stderr
        with open(keep) as fh:
            assert fh.read() == "earlier\n", "a refused run changed an existing OUTPUT"
        assert not [n for n in os.listdir(tmp) if n.startswith("kept.csv.")], "temporary file left"
        print("ok   kept: a refused run leaves an existing OUTPUT as it was")
        # A symbolic link to an OUTPUT: followed, its target kept as it was on a refused run
        # and replaced whole on a good one, the link kept; an existing OUTPUT keeps its mode
        # (the review of int68: the link was written through row by row, partial on a refusal,
        # and the renamed file got the default mode).
        os.chmod(keep, 0o640)
        link = os.path.join(tmp, "link.csv")
        os.symlink(keep, link)
        proc = subprocess.run([REPLAY, src, link], stderr=subprocess.PIPE, text=True)
        assert proc.returncode == 1, proc.stderr
        with open(keep) as fh:
            assert fh.read() == "earlier\n", "a refused run changed a linked OUTPUT"
        ok_in = os.path.join(tmp, "link_in.csv")
        with open(ok_in, "w") as fh:
            fh.write("timestamp,a\n" + good.replace(",2\n", "\n"))
        proc = subprocess.run([REPLAY, ok_in, link], stderr=subprocess.PIPE, text=True)
        assert proc.returncode == 0, proc.stderr
        assert os.path.islink(link), "the link was replaced by a file"
        with open(keep) as fh:
            assert len(fh.read().splitlines()) == 3, "the link's target not written"
        assert os.stat(keep).st_mode & 0o777 == 0o640, oct(os.stat(keep).st_mode)
        assert not [n for n in os.listdir(tmp) if ".csv." in n and n.startswith(("kept", "link"))]
        print("ok   link: a symbolic link's target replaced whole, its mode kept")
        # An OUTPUT this user may not write (0444) is refused and kept, as writing it in place
        # was (read69a 2: the temporary file's rename replaced it). As root, run as nobody:
        # root may write any file.
        ro = os.path.join(tmp, "ro.csv")
        with open(ro, "w") as fh:
            fh.write("precious\n")
        os.chmod(ro, 0o444)
        as_user = []
        if os.geteuid() == 0:
            os.chmod(tmp, 0o777)
            os.chmod(ok_in, 0o644)
            as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        proc = subprocess.run(as_user + [REPLAY, ok_in, ro], stderr=subprocess.PIPE, text=True)
        assert proc.returncode == 1, (proc.returncode, proc.stderr)
        assert proc.stderr == "vigil-replay: %s: Permission denied\n" % ro, proc.stderr
        with open(ro) as fh:
            assert fh.read() == "precious\n", "a read-only OUTPUT was replaced"
        assert not [n for n in os.listdir(tmp) if n.startswith("ro.csv.")], "temporary file left"
        print("ok   read-only: an OUTPUT this user may not write is refused and kept")
        # An interrupted run (SIGTERM, SIGINT) removes its temporary file and dies of the signal
        # (the review of int68: OUTPUT.csv.XXXXXX was left). The input is a FIFO held open, so
        # the run waits for rows with the temporary file there, whatever the machine's speed.
        for sig in (signal.SIGTERM, signal.SIGINT):
            fifo, dst = os.path.join(tmp, "fifo.csv"), os.path.join(tmp, "killed.csv")
            os.mkfifo(fifo)
            # (a shell's background job starts with SIGINT ignored, which vigil-replay keeps)
            proc = subprocess.Popen([REPLAY, fifo, dst], stderr=subprocess.PIPE, text=True,
                                    preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
            with open(fifo, "w") as fh:
                fh.write("timestamp,a\n1796000000000,1\n")
                fh.flush()
                deadline = time.monotonic() + 30
                while not [n for n in os.listdir(tmp) if n.startswith("killed.csv.")]:
                    assert time.monotonic() < deadline and proc.poll() is None, "no temp file"
                    time.sleep(0.01)
                proc.send_signal(sig)
                proc.wait(30)
            os.unlink(fifo)
            assert proc.returncode == -sig, (sig, proc.returncode, proc.stderr.read())
            left = [n for n in os.listdir(tmp) if n.startswith("killed.csv")]
            assert left == [], f"killed by {sig.name}, but left {left}"
            proc.stderr.close()
        print("ok   killed: SIGTERM and SIGINT leave no OUTPUT nor a temporary file")
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

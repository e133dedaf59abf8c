#!/usr/bin/env python3
"""Restart equivalence of the detector: a restart never changes what it decides.

  restart_equivalence.py PATH/TO/vigil-replay

vigild saves each device's detector at shutdown and loads it at start; the alarms after the
restart must be exactly those an uninterrupted daemon would have raised. vigil-replay's
--restart-every N saves, destroys and reloads the detector every N readings (a training asked
for on the reading of a cut runs on the loaded one). On generated series that exercise the
rules, this replays each with and without restarts (N = 1, 7, 100, 997) and asserts that the
outputs, with -v's debugging columns (raw score, state, top channel, predictor, version,
decision likelihood), are byte-identical; a failure names the first differing row.

The series (fixed seeds): one channel with a daily pattern, bursts, schedule-like spikes and a
lasting change of the pattern (the seasonal second opinion and its opening, opinion_open; the
bursts' memory; the onsets' rhythm and rate); and three channels whose levels move together,
with step faults (the operating point, the step test's opening and its hold). Python 3
standard library only. docs/reliability.md, "Restart equivalence".
"""
import math, os, random, subprocess, sys, tempfile

REPLAY = sys.argv[1] if len(sys.argv) > 1 else "build/vigil-replay"
RESTARTS = (1, 7, 100, 997)
DAY = 288  # readings a day: one every five minutes


def stamp(t):
    # Five-minute readings from 2026-01-01 (vigil-replay reads "YYYY-MM-DD HH:MM:SS" as UTC).
    m = 5 * t
    return f"2026-{1 + m // 43200:02d}-{1 + m // 1440 % 30:02d} {m // 60 % 24:02d}:{m % 60:02d}:00"


def series_bursty(n):
    """One channel: a daily load curve with noise, short bursts, a spike at the same time every
    day (a scheduled job), and from reading 3000 on a day shaped otherwise (the profile a
    training found no longer fits)."""
    rnd = random.Random(17)
    rows = []
    burst = 0
    for t in range(n):
        phase = 2 * math.pi * (t % DAY) / DAY
        v = 50 + 20 * math.sin(phase) + 5 * math.sin(2 * phase) + rnd.gauss(0, 1.5)
        if t >= 3000:
            v += 15 * min(1.0, (t - 3000) / DAY) * math.cos(3 * phase)  # the new shape
        if t % DAY == 100 or t % DAY == 101:
            v += 40  # the scheduled job
        if burst == 0 and rnd.random() < 0.004:
            burst = rnd.randint(2, 8)
        if burst > 0:
            v += rnd.uniform(15, 35)
            burst -= 1
        rows.append((stamp(t), [f"{v:.3f}"]))
    return ["timestamp", "load"], rows


def series_step(n):
    """Three channels: two that follow one operating point (a flow and a pressure), one that
    drifts slowly (a temperature); a valve sticks at reading 2600 (the flow steps down by 10 of
    its noise's deviations and stays) until 2900, whose return the step test opens on and holds,
    and a step on the pressure at 3500-3560 that the step test holds."""
    rnd = random.Random(23)
    rows = []
    for t in range(n):
        op = math.sin(2 * math.pi * t / 700) + 0.3 * math.sin(2 * math.pi * t / 97)
        flow = 10 + 2 * op + rnd.gauss(0, 0.1)
        pres = 3 + 0.5 * op + rnd.gauss(0, 0.03)
        temp = 40 + t / 500 + rnd.gauss(0, 0.2)
        if 2600 <= t < 2900:
            flow -= 1.0
        if 3500 <= t < 3560:
            pres += 0.3
        rows.append((stamp(t), [f"{flow:.4f}", f"{pres:.4f}", f"{temp:.3f}"]))
    return ["timestamp", "flow", "pressure", "temp"], rows


def replay(tmp, name, header, rows, extra):
    src, dst = os.path.join(tmp, name + ".csv"), os.path.join(tmp, name + ".out.csv")
    if not os.path.exists(src):
        with open(src, "w") as fh:
            fh.write(",".join(header) + "\n")
            for ts, cells in rows:
                fh.write(",".join([ts] + cells) + "\n")
    proc = subprocess.run([REPLAY, "-v"] + extra + [src, dst], stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 0, f"{name} {extra}: exit {proc.returncode}: {proc.stderr[-500:]}"
    with open(dst) as fh:
        return fh.read().splitlines()


def main():
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, gen, n in (("bursty", series_bursty, 4500), ("step", series_step, 4200)):
            header, rows = gen(n)
            plain = replay(tmp, name, header, rows, [])
            assert len(plain) == n + 1, f"{name}: {len(plain)} lines for {n} rows"
            flagged = sum(1 for line in plain[1:] if line.split(",")[2] == "1")
            # A series that raises nothing tests nothing of the state machine.
            assert flagged > 0, f"{name}: no row flagged"
            before = failures
            for every in RESTARTS:
                cut = replay(tmp, name, header, rows, ["--restart-every", str(every)])
                if cut != plain:
                    k = next((i for i, (a, b) in enumerate(zip(cut, plain)) if a != b),
                             min(len(cut), len(plain)))
                    print(f"FAIL {name}: --restart-every {every} differs first at row {k}:\n"
                          f"  restarted     {cut[k] if k < len(cut) else '(none)'}\n"
                          f"  uninterrupted {plain[k] if k < len(plain) else '(none)'}")
                    failures += 1
            if failures == before:
                print(f"ok   {name}: {n} rows, {flagged} flagged, identical with restarts every "
                      f"{RESTARTS}")
        # The option's argument is checked.
        proc = subprocess.run([REPLAY, "--restart-every", "x", "a.csv", "b.csv"],
                              stderr=subprocess.PIPE, text=True)
        assert proc.returncode == 2 and "usage" in proc.stderr, "a bad --restart-every must fail"
    if failures:
        sys.exit(1)
    print("restart equivalence: all outputs identical")


if __name__ == "__main__":
    main()

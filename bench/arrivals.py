"""Driver of bench/arrivals; see that script. Standard library only.

A fresh vigild (model.warmup 100000: nothing trains; the arrivals flush period lowered to
--period-ms with the test hook VIGIL_TEST_ARRIVALS_MS, so the bench need not wait a minute a
round) is given --devices devices, one reading each, over POST /write (batches of 5,000 lines).
Then --rounds rounds: one new reading for every device, wait until all are scored, then two
flush periods. The flush after a round finds every device changed when no flush fell inside the
round's ingest; the rounds whose last flush queued every device (vigil_arrivals_flush_devices
== N) are kept, and of those the medians of vigil_arrivals_flush_seconds (the loop thread's
time: the walk of every device and the packing of the put) and vigil_arrivals_write_seconds (the
writer's upserts of that put inside its transaction). Prints one line:
BENCH arrivals-flush devices=N rounds_full=K flush_ms=... flush_max_ms=... write_ms=...
"""
import argparse, http.client, os, shutil, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Vigild, fed, median  # noqa: E402

BATCH = 5000


def log(*a):
    print("arrivals:", *a, file=sys.stderr, flush=True)


def post_all(v, n, ts_ms):
    c = http.client.HTTPConnection("127.0.0.1", v.port, timeout=300)
    for lo in range(0, n, BATCH):
        body = "".join(f"m,device=pump-{i} v={1 + i % 7} {ts_ms}\n"
                       for i in range(lo, min(n, lo + BATCH))).encode()
        c.request("POST", "/write?precision=ms", body=body)
        r = c.getresponse()
        r.read()
        if r.status != 204:
            sys.exit(f"arrivals: POST /write answered {r.status}")
    c.close()


def wait_fed(v, target, timeout=600):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if fed(v.metrics()) >= target:
            return
        time.sleep(0.2)
    sys.exit(f"arrivals: {target} vectors not scored within {timeout} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--devices", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--period-ms", type=int, default=6000)
    ap.add_argument("--keep", action="store_true", help="keep the data folder")
    a = ap.parse_args()
    os.environ["VIGIL_TEST_ARRIVALS_MS"] = str(a.period_ms)
    tmp = tempfile.mkdtemp(prefix="vigil-arrivals-")
    v = None
    try:
        v = Vigild(a.build, tmp, model_conf="warmup = 100000\n")
        n = a.devices
        ts = int(time.time() * 1000) - 3_600_000
        t = time.time()
        post_all(v, n, ts)
        wait_fed(v, n)
        log(f"{n} devices created and scored in {time.time() - t:.1f} s")
        flush, write = [], []
        time.sleep(2 * a.period_ms / 1000)
        m0 = v.metrics()
        for k in range(a.rounds):
            post_all(v, n, ts + 1000 * (k + 1))
            wait_fed(v, n * (k + 2))
            time.sleep(2 * a.period_ms / 1000)
            m = v.metrics()
            got = int(m["vigil_arrivals_flush_devices"])
            rows = m["vigil_arrivals_written_total"] - m0["vigil_arrivals_written_total"]
            w_ms = (m["vigil_arrivals_write_seconds_total"] -
                    m0["vigil_arrivals_write_seconds_total"]) * 1e3
            m0 = m
            log(f"round {k}: last flush queued {got} devices, its longest hold of the loop "
                f"{m['vigil_arrivals_flush_seconds'] * 1e3:.2f} ms; writer {w_ms:.1f} ms for "
                f"{rows:.0f} rows")
            if got == n:
                flush.append(m["vigil_arrivals_flush_seconds"] * 1e3)
                write.append(w_ms)
        v.stop()
        rc_stop = v.rc
        if not flush:
            sys.exit("arrivals: no round's flush queued every device (raise --period-ms)")
        print(f"BENCH arrivals-flush devices={n} rounds_full={len(flush)} "
              f"flush_ms={median(flush):.2f} flush_max_ms={max(flush):.2f} "
              f"write_ms={median(write):.1f} period_ms={a.period_ms} stop_rc={rc_stop}",
              flush=True)
    finally:
        if v is not None and v.p.poll() is None:
            v.p.kill()
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

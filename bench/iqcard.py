"""InfluxQL cardinality statements at many devices: wall time and vigild's RSS growth.
Standard library only; no peer (a plain measurement of vigild itself).

One vigild (model.enabled = false) gets --devices devices of one channel, one reading each,
in line protocol (m,device=dNNNNN v=1). Each case is then sent --runs times (GET /query,
one connection each, after one untimed warm-up) and the median wall time from the request to
the answer's last byte is printed, with the daemon's peak RSS growth over the cases' runs
(VmHWM after, less VmRSS before the warm-up; each case runs in a vigild of its own, as VmHWM is
the process's whole life's peak) and the answer's length:

  tag-values-card  SHOW TAG VALUES CARDINALITY WITH KEY = "device"
  tag-key-card     SHOW TAG KEY CARDINALITY

Usage: python3 bench/iqcard.py --vigild build/vigild [--devices 20000] [--runs 5]
"""
import argparse, http.client, os, shutil, statistics, sys, tempfile, time, urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest import Vigild, post_all  # noqa: E402

CASES = [("tag-values-card", 'SHOW TAG VALUES CARDINALITY WITH KEY = "device"'),
         ("tag-key-card", "SHOW TAG KEY CARDINALITY")]


def query(port, q):
    """GETs /query?q=q on a new connection; returns (seconds, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    c.request("GET", "/query?db=bench&" + urllib.parse.urlencode({"q": q}))
    r = c.getresponse()
    body = r.read()
    dt = time.perf_counter() - t0
    c.close()
    if r.status != 200:
        raise RuntimeError(f"{q}: {r.status} {body[:300]!r}")
    return dt, body


def start(binary, tmp, devices):
    conf = os.path.join(tmp, "vigil.conf")
    with open(conf, "w") as f:
        f.write("[model]\nenabled = false\n")
    v = Vigild(binary, tmp, ["--config", conf])
    lines = [f"m,device=d{i:06d} v=1 {1_700_000_000_000 + i}" for i in range(devices)]
    bodies = ["\n".join(lines[i:i + 5000]) for i in range(0, len(lines), 5000)]
    post_all(v.port, "/write?db=bench&precision=ms", bodies, 1, "text/plain", 204)
    # Every device listed (the writes are taken asynchronously): the last of the devices and
    # the three reserved names, one row, so that the check itself grows no memory.
    for _ in range(600):
        _, body = query(v.port, f"SHOW MEASUREMENTS LIMIT 1 OFFSET {devices + 2}")
        if b'"values"' in body:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError("the devices were not all stored within 60 s")
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigild", required=True)
    ap.add_argument("--devices", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="iqcard-")
    try:
        for name, q in CASES:  # a vigild each: VmHWM is the process's whole life's peak
            v = start(a.vigild, tmp, a.devices)
            try:
                before = v.rss_kb("VmRSS:")
                query(v.port, q)
                times, body = [], b""
                for _ in range(a.runs):
                    dt, body = query(v.port, q)
                    times.append(dt)
                grow = v.rss_kb() - before
                print(f"{name} devices={a.devices} median_s={statistics.median(times):.4f} "
                      f"min_s={min(times):.4f} rss_growth_kb={grow} answer_bytes={len(body)}")
            finally:
                v.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

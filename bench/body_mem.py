#!/usr/bin/python3
"""Memory vigild holds for request bodies (session 69, task mem69; read69c findings 1 and 2).

Starts $VIGILD (build/vigild by default; tests/integration/vigiltest.py's Vigild) on
127.0.0.1:$BENCH_PORT (default 19760) with a fresh data folder for each case, and prints one
BENCH line per case: vigild's VmHWM (peak RSS) and VmRSS 2 s after, the answers' status codes and
the wall time. Not a test: nothing is asserted. Cases:
  bomb     one JSON body of 32 MiB, one valid item plus 16.7 million 1s under an unknown key
  bomb8    the same gzipped (32 KB), 8 at once
  batch    a 100,001-item batch (over http.max_batch), 15 times in a row
  okbatch  a valid batch of 100,000 readings of two values (one device each 1 ms), 3 times
  unfin    40 connections from 127.0.5.2-41, each sending all but the last byte of a 30 MiB body
Every wait is bounded."""
import gzip
import http.client
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import vigiltest as vt  # noqa: E402  (Vigild: start, wait for /healthz, stop)

PORT = int(os.environ.get("BENCH_PORT", "19760"))


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def post(body, gz=False, timeout=300):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    try:
        h = {"Content-Encoding": "gzip"} if gz else {}
        c.request("POST", "/v1/readings", body=body, headers=h)
        r = c.getresponse()
        r.read()
        return r.status
    except OSError:
        return 0
    finally:
        c.close()


def bomb_body():
    n = (32 * 1024 * 1024 - 100) // 2
    return b'{"device":"arr","values":{"a":1},"junk":[' + b"1," * (n - 1) + b"1]}"


def case_bomb():
    return [post(bomb_body())]


def case_bomb8():
    gz = gzip.compress(bomb_body(), 9)
    out = [None] * 8
    ts = [threading.Thread(target=lambda i=i: out.__setitem__(i, post(gz, True)))
          for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(600)
    return out


def case_batch():
    item = b'{"device":"b","values":{"a":1}}'
    body = b"[" + b",".join([item] * 100001) + b"]"
    return [post(body) for _ in range(15)]


def case_okbatch():
    codes = []
    t0 = int(time.time() * 1000) - 3 * 100000
    for k in range(3):
        body = "[" + ",".join('{"device":"ok","ts":%d,"values":{"a":%d,"b":1}}'
                              % (t0 + k * 100000 + i, i) for i in range(100000)) + "]"
        codes.append(post(body.encode()))
    return codes


def case_unfin():
    size = 30 * 1024 * 1024
    conns = []
    for i in range(40):
        s = socket.socket()
        s.settimeout(60)
        s.bind(("127.0.5.%d" % (i + 2), 0))
        s.connect(("127.0.0.1", PORT))
        s.sendall(b"POST /write?db=x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        s.sendall(b"m,device=u a=1\n" + b"#" * (size - 16))  # all but the last byte
        conns.append(s)
    time.sleep(2)
    codes = [post(b'{"device":"ok","values":{"a":1}}', timeout=10)]
    for s in conns:
        s.close()
    return codes


def main():
    cases = sys.argv[1:] or ["bomb", "bomb8", "batch", "okbatch", "unfin"]
    for name in cases:
        d = vt.Vigild(stream=False, extra_args=["--log-level", "warn"])
        d.http_port = PORT  # the port this bench was given, not a free one of the kernel's
        d.start(timeout=30)
        try:
            t0 = time.monotonic()
            codes = globals()["case_" + name]()
            secs = time.monotonic() - t0
            time.sleep(2)
            print("BENCH body-mem case=%s codes=%s seconds=%.1f vmhwm_kib=%d rss_after_kib=%d"
                  % (name, ",".join(str(c) for c in sorted(set(codes))), secs,
                     status_kib(d.proc.pid, "VmHWM"), status_kib(d.proc.pid, "VmRSS")),
                  flush=True)
        finally:
            d.stop()
            d.cleanup()


if __name__ == "__main__":
    main()

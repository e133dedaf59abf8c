#!/usr/bin/python3
"""RSS per idle HTTP connection of vigild (session 53, task http8).

Starts $BUILD_DIR/vigild (BUILD_DIR=build by default) on loopback, opens N keep-alive
connections (argv[1], default 200) that each send one GET /healthz and stay open, and prints
vigild's VmRSS before and after and the difference per connection (a BENCH line); stops vigild
and removes its data folder. libmicrohttpd 0.9.75 zeroes
the whole memory of a connection after each request (MHD_pool_reset), so each one that served a
request holds all of it: this measures MHD_OPTION_CONNECTION_MEMORY_LIMIT's real cost."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    vigild = os.path.join(os.environ.get("BUILD_DIR", "build"), "vigild")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    data = tempfile.mkdtemp(prefix="vigil-connmem-")
    p = subprocess.Popen([vigild, "--data-dir", data, "--http", "127.0.0.1:%d" % port,
                          "--stream", "off", "--log-level", "warn"])
    try:
        for _ in range(100):  # bounded: at most 10 s for the start
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1)
        before = rss_kib(p.pid)
        conns = []
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
                b = c.recv(4096)
                if not b:
                    break
                got += b
            conns.append(c)
        time.sleep(1)
        after = rss_kib(p.pid)
        print("BENCH http-conn-mem connections=%d rss_before_kib=%d rss_after_kib=%d "
              "kib_per_connection=%.1f" % (n, before, after, (after - before) / n))
        for c in conns:
            c.close()
    finally:
        p.terminate()
        p.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()

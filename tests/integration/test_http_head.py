#!/usr/bin/python3
"""vigild integration (session 49, task http5): heads of many short header lines.

A head (request line and headers) within http.max_header_bytes is served, and one over it is
vigild's own JSON 431, however many lines it is made of. libmicrohttpd reads the head into a
pool of memory per connection (MHD_OPTION_CONNECTION_MEMORY_LIMIT) and takes from it a record
of some 60 bytes per header line before vigild's handler sees the request; when the pool runs
out it answers its own HTML 431. Before session 49 the pool was twice the bound, so a head of
1,000 lines of 8 bytes (8,000 bytes, a quarter of the bound) got that HTML 431
(docs/reliability.md, "Heads of many short lines (session 49)")."""

import os
import socket
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigiltest as vt  # noqa: E402


def raw(port, data):
    """Sends data on a new connection; returns all that comes back until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(data)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b
    finally:
        s.close()


def head_of_lines(total, line):
    """A GET /healthz head of exactly total bytes whose headers are lines of `line` bytes
    (CRLF included; the last one takes what is left, at least `line`)."""
    pre = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    lines, left, i = [], total - len(pre) - 2, 0
    while left >= 2 * line:
        name = b"x%x:" % i
        lines.append(name + b"a" * (line - len(name) - 2) + b"\r\n")
        left -= line
        i += 1
    name = b"x%x:" % i
    lines.append(name + b"a" * (left - len(name) - 2) + b"\r\n")
    req = pre + b"".join(lines) + b"\r\n"
    assert len(req) == total, (len(req), total)
    return req, len(lines) + 2


def answer(out):
    """(status, headers, body) of an HTTP answer, or None when there was none."""
    if not out:
        return None
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    return int(lines[0].split()[1]), hdrs, body


class ManyLines(vt.DaemonTestCase):
    LIMIT = "http.max_header_bytes (32768 bytes)"
    LINES = "exceeds http.max_header_lines (100)"

    def ask(self, req):
        return answer(raw(self.d.http_port, req))

    def test_within_both_bounds_served(self):
        """Heads up to http.max_header_bytes (32 KiB) and http.max_header_lines (100) are
        served, in long lines or short."""
        for total, line in ((32768, 340), (32768, 1000), (3000, 30), (800, 8)):
            with self.subTest(total=total, line=line):
                req, n = head_of_lines(total, line)
                self.assertLessEqual(n, 100)
                res = self.ask(req)
                self.assertIsNotNone(res, "no answer to %d lines" % n)
                st, _, body = res
                self.assertEqual(st, 200, body[:200])
                self.assertEqual(vt.loads(body)["status"], "ok")

    def test_many_lines_json(self):
        """A head within the bytes bound of more lines than http.max_header_lines is vigild's
        JSON 431 naming the setting, up to many hundreds of lines. On main's vigild (no line
        bound, the memory twice the bytes bound) these got libmicrohttpd's HTML 431."""
        for total, line in ((8000, 8), (8000, 10), (16000, 20), (32768, 60), (32768, 300)):
            with self.subTest(total=total, line=line):
                req, n = head_of_lines(total, line)
                self.assertGreater(n, 100)
                self.assertJsonError(self.ask(req), 431,
                                     ["request of %d header lines and cookies" % n,
                                      self.LINES])

    def test_cookies_counted(self):
        """Each cookie of a Cookie header takes a record like a header line does: 101 of them
        are over the bound, 90 are not."""
        for n, status in ((90, 200), (101, 431)):
            with self.subTest(cookies=n):
                cookie = b"; ".join(b"c%d=v" % i for i in range(n))
                res = self.ask(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               b"Cookie: " + cookie + b"\r\n\r\n")
                if status == 200:
                    self.assertEqual(res[0], 200, res)
                else:
                    self.assertJsonError(res, 431, ["header lines and cookies", self.LINES])
        # A head at the bytes bound, nearly all one Cookie of 50 cookies (parsed in the same
        # memory): served.
        pre = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: "
        cookie = b"; ".join(b"c%02d=" % i + b"v" * 640 for i in range(50))
        req = pre + cookie + b"w" * (32768 - len(pre) - len(cookie) - 4) + b"\r\n\r\n"
        self.assertEqual(len(req), 32768)
        self.assertEqual(self.ask(req)[0], 200)

    def test_over_the_bytes_bound_json(self):
        """A head over the bytes bound in many lines is the bytes bound's JSON 431 (it is
        checked first). On main 40,000 bytes in 100-byte lines got the HTML 431."""
        for total, line in ((32769, 330), (33000, 200), (40000, 100)):
            with self.subTest(total=total, line=line):
                req, _ = head_of_lines(total, line)
                self.assertJsonError(self.ask(req), 431,
                                     ["request line and headers of %d bytes exceed" % total,
                                      self.LIMIT])


class FewerLines(vt.DaemonTestCase):
    CONFIG = """
[http]
max_header_lines = 10
"""

    def test_setting(self):
        """http.max_header_lines is the bound: 10 header lines (with Host and Connection)
        served, 11 refused."""
        for total, line, status in ((500, 60, 200), (800, 60, 431)):
            with self.subTest(total=total):
                req, n = head_of_lines(total, line)
                res = answer(raw(self.d.http_port, req))
                if status == 200:
                    self.assertLessEqual(n, 10)
                    self.assertEqual(res[0], 200, res)
                else:
                    self.assertGreater(n, 10)
                    self.assertJsonError(res, 431, ["request of %d header lines" % n,
                                                    "http.max_header_lines (10)"])


if __name__ == "__main__":
    unittest.main()

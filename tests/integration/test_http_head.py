#!/usr/bin/python3
"""vigild integration (session 49, task http5): heads of many short header lines.

A head (request line and headers) within http.max_header_bytes is served, and one over it is
vigild's own JSON 431, however many lines it is made of. libmicrohttpd reads the head into a
pool of memory per connection (MHD_OPTION_CONNECTION_MEMORY_LIMIT) and takes from it a record
of some 60 bytes per header line before vigild's handler sees the request; when the pool runs
out it answers its own HTML 431. Before session 49 the pool was twice the bound, so a head of
1,000 lines of 8 bytes (8,000 bytes, a quarter of the bound) got that HTML 431
(docs/reliability.md, "Heads of many short lines (session 49)")."""

import json
import os
import re
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
    COOKIES = "exceeds http.max_cookies (300)"

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
                                     ["request of %d header lines" % n, self.LINES])

    def test_cookies_bounded_apart(self):
        """Cookies are bounded by http.max_cookies (300), not by http.max_header_lines: a
        browser sends every cookie of the host name (up to 180 of a domain in Chrome, 150 in
        Firefox) in one Cookie header, so 101 to 300 are served, and 301 or 1,000 are the JSON
        431 naming the setting. On main's vigild (cookies counted as header lines, session 49)
        101 cookies and more got a 431 naming http.max_header_lines."""
        def cookies(n):
            return self.ask(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                            b"Cookie: " + b"; ".join(b"c%d=v" % i for i in range(n)) + b"\r\n\r\n")
        for n in (90, 101, 180, 300):
            with self.subTest(cookies=n):
                res = cookies(n)
                self.assertIsNotNone(res)
                self.assertEqual(res[0], 200, res)
        for n in (301, 1000):
            with self.subTest(cookies=n):
                self.assertJsonError(cookies(n), 431, ["request of %d cookies" % n, self.COOKIES])
        # Heads at the bytes bound, nearly all one Cookie of 50 or of 300 cookies (libmicrohttpd
        # parses cookies in a copy of the header, in the same memory): served.
        pre = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: "
        for n, size in ((50, 640), (300, 100)):
            with self.subTest(cookies=n, size=size):
                cookie = b"; ".join(b"c%03d=" % i + b"v" * size for i in range(n))
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


class EmptyNames(vt.DaemonTestCase):
    """A header line of an empty name (one beginning with ':') is not HTTP. libmicrohttpd
    (0.9.75) ends the head at such a line when a header came before it, and leaves the rest
    unread: on main's vigild a head of 32,769 bytes of ':' lines was served 200 although
    http.max_header_bytes is 32,768 (docs/reliability.md, session 50)."""

    MSG = "header line with an empty name"
    PRE = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"

    def ask(self, req):
        return answer(raw(self.d.http_port, req))

    def refused(self, req):
        res = self.ask(req)
        self.assertJsonError(res, 400, [self.MSG, "not valid HTTP"])
        self.assertEqual(res[1].get("connection"), "close", res[1])

    def test_colon_lines_over_the_bound(self):
        """32,769 and 40,000 bytes of ':' lines after the first headers: a JSON 400 that closes
        the connection, not 200."""
        for total in (32769, 40000):
            with self.subTest(total=total):
                pre = self.PRE + b"Connection: close\r\n"
                n = (total - len(pre) - 2) // 3
                req = pre + b":\r\n" * n + b"x" * (total - len(pre) - 2 - 3 * n) + b"\r\n"
                self.assertEqual(len(req), total)
                self.refused(req)

    def test_one_empty_name(self):
        """One line of an empty name, anywhere in the head, with or without a value; with
        keep-alive too (libmicrohttpd would read what followed as the next request)."""
        heads = (b":\r\nConnection: close\r\n\r\n",
                 b"Connection: close\r\n: v\r\nX-A: b\r\n\r\n",
                 b"Connection: close\r\n:v\r\n\r\n",
                 b"Connection: close\r\n:\r\n\r\n",
                 b"Accept: */*\r\n:\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for h in heads:
            with self.subTest(head=h):
                self.refused(self.PRE + h)

    def test_folded_value(self):
        """A value folded onto the next line (obsolete, RFC 9112 5.2) is refused alike."""
        self.refused(self.PRE + b"Connection: close\r\nX-A: b\r\n c\r\n\r\n")

    def test_valid_heads_served(self):
        """Empty values, bare LFs and a last header of an empty value stay served."""
        for h in (b"X-A:\r\nConnection: close\r\n\r\n",
                  b"Connection: close\r\nX-A:\r\n\r\n",
                  b"Connection: close\nX-A: 1\n\n",
                  b"Connection: close\r\nX-A: 1\n\r\n",
                  b"Connection: close\r\nX-A: a:b\r\n\r\n"):
            with self.subTest(head=h):
                res = self.ask(self.PRE + h)
                self.assertIsNotNone(res)
                self.assertEqual(res[0], 200, res)


    def test_other_valid_heads_served(self):
        """Heads where the bytes after the last header's value are not the head's end alone
        (review, session 50): no header at all (HTTP/1.0), a body in the same packet, and
        requests pipelined in one send, in CRLF and bare LF, each answered."""
        get = b"GET /healthz HTTP/1.1\nHost: x\n"
        post = (b"POST /write?db=x&precision=ns HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n"
                b"cpu v=1 1")
        cases = ((b"GET /healthz HTTP/1.0\r\n\r\n", [b"200"]),
                 (b"GET /healthz HTTP/1.0\nX-A:\n\n", [b"200"]),
                 (post.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"), [b"204"]),
                 (post + self.PRE + b"Connection: close\r\n\r\n", [b"204", b"200"]),
                 (get + b"\n" + get + b"X:\n\n" + get + b"Connection: close\n\n",
                  [b"200", b"200", b"200"]),
                 # session 51: pipelined after an empty line, after CRLF, bare LF and mixed
                 # heads, and after a body beginning 'cpu:'
                 (self.PRE + b"\r\n" + self.PRE + b"X-A:\n\r\n" + self.PRE
                  + b"Connection: close\r\n\n", [b"200", b"200", b"200"]),
                 (get + b"X-A: a:b\n\r\n" + get + b"Connection: close\n\n",
                  [b"200", b"200"]),
                 (post.replace(b"9\r\n", b"12\r\n").replace(b"cpu v=1 1", b"cpu:x v=1 1\n")
                  + self.PRE + b"Connection: close\r\n\r\n", [b"204", b"200"]))
        for req, want in cases:
            with self.subTest(req=req):
                self.assertEqual(re.findall(rb"HTTP/1\.[01] (\d+)", raw(self.d.http_port, req)),
                                 want)


    def test_empty_line_after_a_head_served(self):
        """An empty line after a bodiless head (RFC 9112 2.2: a server SHOULD ignore at least one
        empty line before a request line) is served (review, session 51: a check reading past
        the head refused it 400), in CRLF, bare LF and mixed heads, alone or before a request
        sent later on the same connection."""
        for req in (self.PRE + b"Connection: close\r\n\r\n\r\n",
                    self.PRE + b"Connection: close\r\n\r\n\n",
                    self.PRE + b"Connection: close\nX-A: 1\n\r\n\r\n",
                    self.PRE + b"Connection: close\r\nX-A: 1\n\r\n\n"):
            with self.subTest(req=req):
                self.assertEqual(re.findall(rb"HTTP/1\.[01] (\d+)", raw(self.d.http_port, req)),
                                 [b"200"])
        s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=10)
        try:
            s.sendall(self.PRE + b"\r\n\r\n")
            first = s.recv(65536)
            self.assertRegex(first, rb"^HTTP/1\.1 200 ")
            s.sendall(self.PRE + b"Connection: close\r\n\r\n")
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
            self.assertEqual(re.findall(rb"HTTP/1\.[01] (\d+)", out), [b"200"])
        finally:
            s.close()


class FewerLines(vt.DaemonTestCase):
    CONFIG = """
[http]
max_header_lines = 10
max_cookies = 5
"""

    def test_cookies_setting(self):
        """http.max_cookies is the bound: 5 cookies served, 6 refused."""
        for n, status in ((5, 200), (6, 431)):
            with self.subTest(cookies=n):
                cookie = b"; ".join(b"c%d=v" % i for i in range(n))
                res = answer(raw(self.d.http_port,
                                 b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                 b"Cookie: " + cookie + b"\r\n\r\n"))
                if status == 200:
                    self.assertEqual(res[0], 200, res)
                else:
                    self.assertJsonError(res, 431, ["request of 6 cookies",
                                                    "http.max_cookies (5)"])

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


class ManyArgs(vt.DaemonTestCase):
    """URLs of many query parameters (session 53, task http8). libmicrohttpd takes a record
    from the connection's memory for each parameter; before, a URL of about 1,400 or more
    (some 10 KB, within http.max_header_bytes) ran that memory out and got no answer at all,
    the connection left open until its timeout. Now more than 256 are vigild's JSON 414."""
    BOUND = "more than 256 query parameters (vigild's bound)"

    def get(self, path, *args):
        return vt.curl(self.d.url(path), "POST" if args else "GET", args, timeout=10)

    def test_many_args_answered(self):
        """1,300, 1,400 and 5,000 parameters on every kind of route get the JSON 414 within
        seconds (curl gives up after 10), and vigild stays up. On main's vigild 1,400 and
        5,000 got no answer (curl timed out)."""
        for n in (1300, 1400, 5000):
            q = "&".join("x%d=1" % i for i in range(n))
            for path, args in (("/healthz", ()), ("/v1/devices", ()), ("/query", ()),
                               ("/query", ("--data", "q=SHOW DATABASES")),
                               ("/write", ("--data-binary", "m v=1"))):
                with self.subTest(n=n, path=path, post=bool(args)):
                    msg = self.assertJsonError(self.get(path + "?" + q, *args), 414, [self.BOUND])
                    self.assertEqual(path == "/query", "send a long query as a form body" in msg)
        self.assertEqual(self.get("/healthz").status, 200)

    def test_ampersands_at_the_bytes_bound(self):
        """A URL of one-byte names between '&'s, its head exactly http.max_header_bytes, or
        the URL alone at the bound: the JSON 414. On main's vigild: no answer."""
        pre, post = b"GET /healthz?", b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        left = 32768 - len(pre) - len(post)
        req = pre + (b"a&" * left)[:left - 1] + b"a" + post
        self.assertEqual(len(req), 32768)
        self.assertJsonError(answer(raw(self.d.http_port, req)), 414, [self.BOUND])
        url = "/healthz?" + ("a&" * 32768)[:32768 - len("/healthz?") - 1] + "a"
        self.assertEqual(len(url), 32768)
        self.assertJsonError(self.get(url), 414, [self.BOUND])
        self.assertEqual(self.get("/healthz").status, 200)

    def test_refused_closes_unread(self):
        """The 414 is given before the body is read: libmicrohttpd closes the connection after
        it (Connection: close), so neither a POST's body (here itself a request) nor a
        pipelined next request is read as a request, and a HEAD's 414 has no body. On main's
        vigild: no answer (the socket timed out)."""
        q = b"&".join(b"x%d=1" % i for i in range(1400))
        nxt = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        for method, path, body in ((b"POST", b"/write", nxt), (b"POST", b"/query", nxt),
                                   (b"HEAD", b"/healthz", b""), (b"GET", b"/v1/devices", b"")):
            with self.subTest(method=method, path=path):
                out = raw(self.d.http_port, b"%s %s?%s HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: %d\r\n\r\n%s%s" % (method, path, q, len(body),
                                                              body, nxt))
                self.assertEqual(out.count(b"HTTP/1.1 "), 1, out)
                res = answer(out)
                self.assertEqual((res[0], res[1].get("connection")), (414, "close"), res)
                if method == b"HEAD":
                    self.assertEqual(res[2], b"")
                else:
                    self.assertIn(self.BOUND, json.loads(res[2])["error"])
        self.assertEqual(self.get("/healthz").status, 200)

    def test_at_the_bound_served(self):
        """256 parameters are served, also beside 100 header lines and 300 cookies (the
        memory holds a record for each), and 257 are the JSON 414."""
        q = "&".join("x%d=1" % i for i in range(256))
        self.assertEqual(self.get("/healthz?" + q).status, 200)
        self.assertJsonError(self.get("/healthz?" + q + "&"), 414, [self.BOUND])
        req = (b"GET /healthz?" + q.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"Cookie: " + b"; ".join(b"c%d=v" % i for i in range(300)) + b"\r\n" +
               b"".join(b"x%d: y\r\n" % i for i in range(97)) + b"\r\n")
        res = answer(raw(self.d.http_port, req))
        self.assertIsNotNone(res, "no answer")
        self.assertEqual(res[0], 200, res)


if __name__ == "__main__":
    unittest.main()

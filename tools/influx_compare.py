#!/usr/bin/python3
"""Sends the same /write (and /ping, /query) requests to vigild and to InfluxDB 1.x (Debian's
influxd, started here on loopback with a temporary directory and stopped after) and prints,
per case, what each answered and what each stored, side by side.

    /usr/bin/python3 tools/influx_compare.py --vigild build/vigild [--only NAME]

It asserts nothing: vigild deliberately differs in places (docs/writing.md "Writing readings"), so
the output is read by a person; a last table gives each case's status and number of points stored
by each ("differs" where either differs; equal counts may still hold different values, which the
per-case lines show). docs/reliability.md "Ingest against InfluxDB 1.6.7" is its summary.
Each case writes measurement m<N> into database c<N>, so cases never see each other's points.
InfluxDB's stored points are read back with SELECT * ... GROUP BY *, vigild's through the
devices it lists after the case that it did not list before."""

import argparse, gzip, http.client, json, os, sys, tempfile, urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from ingest import Influxd, Vigild  # noqa: E402

T = 1700000000000  # ms
TN = T * 1000000  # ns

# (name, query parameters, body with {m} for the measurement, extra headers)
CASES = [
    ("plain", {"precision": "ms"}, "{m},host=a v=1.5 %d" % T, {}),
    ("esc-meas", {"precision": "ms"}, "{m}\\ x\\,y,host=a v=1 %d" % T, {}),
    ("esc-tag", {"precision": "ms"}, "{m},t\\ k\\=1=v\\,a\\ l\\=x v=1 %d" % T, {}),
    ("esc-field-key", {"precision": "ms"}, "{m} f\\ 1=1,f\\,2=2,f\\=3=3 %d" % T, {}),
    ("backslash-other", {"precision": "ms"}, "{m},t=a\\b f\\x=1 %d" % T, {}),
    ("trailing-backslash-tag", {"precision": "ms"}, "{m},t=a\\ v=1 %d" % T, {}),
    ("string-escapes", {"precision": "ms"}, '{m} s="a \\"q\\" \\\\ b",v=2 %d' % T, {}),
    ("string-newline", {"precision": "ms"}, '{m} s="two\nlines",v=3 %d' % T, {}),
    ("string-only", {"precision": "ms"}, '{m} s="x" %d' % T, {}),
    ("int", {"precision": "ms"}, "{m} a=42i,b=-9223372036854775808i %d" % T, {}),
    ("int-overflow", {"precision": "ms"}, "{m} a=9223372036854775808i %d" % T, {}),
    ("uint", {"precision": "ms"}, "{m} a=18446744073709551615u %d" % T, {}),
    ("uint-negative", {"precision": "ms"}, "{m} a=-1u %d" % T, {}),
    ("float-1e3", {"precision": "ms"}, "{m} a=1e3,b=1E3,c=1e+3,d=1e-3 %d" % T, {}),
    ("float-dot", {"precision": "ms"}, "{m} a=-.5,b=.5,c=5.,d=-0 %d" % T, {}),
    ("float-plus", {"precision": "ms"}, "{m} a=+1 %d" % T, {}),
    ("float-plus-dot", {"precision": "ms"}, "{m} a=+.5 %d" % T, {}),
    ("float-leading-zeros", {"precision": "ms"}, "{m} a=007,b=00.5 %d" % T, {}),
    ("float-huge", {"precision": "ms"}, "{m} a=1e309 %d" % T, {}),
    ("float-tiny", {"precision": "ms"}, "{m} a=1e-400 %d" % T, {}),
    ("int-with-dot", {"precision": "ms"}, "{m} a=1.5i %d" % T, {}),
    ("int-plus", {"precision": "ms"}, "{m} a=+1i %d" % T, {}),
    ("bools", {"precision": "ms"},
     "{m} a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE %d" % T, {}),
    ("bool-tRUE", {"precision": "ms"}, "{m} a=tRUE %d" % T, {}),
    ("bool-yes", {"precision": "ms"}, "{m} a=yes %d" % T, {}),
    ("nan", {"precision": "ms"}, "{m} a=NaN %d" % T, {}),
    ("inf", {"precision": "ms"}, "{m} a=Inf %d" % T, {}),
    ("dup-field", {"precision": "ms"}, "{m} a=1,a=2 %d" % T, {}),
    ("dup-field-types", {"precision": "ms"}, "{m} a=1,a=2i %d" % T, {}),
    ("dup-tag", {"precision": "ms"}, "{m},t=1,t=2 a=1 %d" % T, {}),
    ("dup-point", {"precision": "ms"}, "{m} a=1 %d\n{m} a=2 %d" % (T, T), {}),
    ("dup-point-merge", {"precision": "ms"}, "{m} a=1,b=1 %d\n{m} a=2 %d" % (T, T), {}),
    ("field-type-conflict", {"precision": "ms"}, "{m} a=1 %d\n{m} a=2i %d" % (T, T + 1), {}),
    ("prec-default", {}, "{m} a=1 %d" % TN, {}),
    ("prec-n", {"precision": "n"}, "{m} a=1 %d" % TN, {}),
    ("prec-ns", {"precision": "ns"}, "{m} a=1 %d" % TN, {}),
    ("prec-u", {"precision": "u"}, "{m} a=1 %d" % (T * 1000), {}),
    ("prec-us", {"precision": "us"}, "{m} a=1 %d" % (T * 1000), {}),
    ("prec-ms", {"precision": "ms"}, "{m} a=1 %d" % T, {}),
    ("prec-s", {"precision": "s"}, "{m} a=1 %d" % (T // 1000), {}),
    ("prec-m", {"precision": "m"}, "{m} a=1 %d" % (T // 60000), {}),
    ("prec-h", {"precision": "h"}, "{m} a=1 %d" % (T // 3600000), {}),
    ("prec-bogus", {"precision": "xyz"}, "{m} a=1 %d" % TN, {}),
    ("prec-empty", {"precision": ""}, "{m} a=1 %d" % TN, {}),
    ("rp-param", {"precision": "ms", "rp": "autogen"}, "{m} a=1 %d" % T, {}),
    ("rp-unknown", {"precision": "ms", "rp": "nosuch"}, "{m} a=1 %d" % T, {}),
    ("consistency", {"precision": "ms", "consistency": "one"}, "{m} a=1 %d" % T, {}),
    ("unknown-param", {"precision": "ms", "foo": "bar"}, "{m} a=1 %d" % T, {}),
    ("no-ts", {}, "{m} a=1", {}),
    ("ts-negative", {"precision": "ms"}, "{m} a=1 -1000", {}),
    ("ts-zero", {"precision": "ms"}, "{m} a=1 0", {}),
    ("ts-future-2100", {"precision": "s"}, "{m} a=1 4102444800", {}),
    ("ts-ns-max", {}, "{m} a=1 9223372036854775806", {}),
    ("ts-ns-overflow", {}, "{m} a=1 9223372036854775808", {}),
    ("ts-float", {"precision": "ms"}, "{m} a=1 1700000000000.5", {}),
    ("ts-plus", {"precision": "ms"}, "{m} a=1 +%d" % T, {}),
    ("crlf", {"precision": "ms"}, "{m} a=1 %d\r\n{m} a=2 %d\r\n" % (T, T + 1), {}),
    ("blank-comment", {"precision": "ms"}, "\n# c\n  # indented\n\n{m} a=1 %d\n\n" % T, {}),
    ("leading-space", {"precision": "ms"}, "   {m} a=1 %d" % T, {}),
    ("leading-tab", {"precision": "ms"}, "\t{m} a=1 %d" % T, {}),
    ("leading-space-bad", {"precision": "ms"}, "{m} a=1 %d\n  {m} a= %d\n" % (T, T), {}),
    ("trailing-space", {"precision": "ms"}, "{m} a=1 %d   \n" % T, {}),
    ("trailing-space-no-ts", {"precision": "ms"}, "{m} a=1   \n", {}),
    ("two-spaces-before-ts", {"precision": "ms"}, "{m} a=1  %d" % T, {}),
    ("tab-separator", {"precision": "ms"}, "{m} a=1\t%d" % T, {}),
    ("no-final-newline", {"precision": "ms"}, "{m} a=1 %d\n{m} a=2 %d" % (T, T + 1), {}),
    ("gzip", {"precision": "ms"}, "{m} a=1 %d\n" % T, {"Content-Encoding": "gzip"}),
    ("long-line", {"precision": "ms"},
     "{m} " + ",".join("f%d=%d" % (i, i) for i in range(3000)) + " %d" % T, {}),
    ("long-tag", {"precision": "ms"}, "{m},t=" + "x" * 300 + " a=1 %d" % T, {}),
    ("partial", {"precision": "ms"},
     "{m} a=1 %d\n{m} a= %d\n{m} a=3 %d\n{m} a=x %d\n" % (T, T + 1, T + 2, T + 3), {}),
    ("all-bad", {"precision": "ms"}, "{m} a= 1\nbad\n", {}),
    ("all-bad-one", {"precision": "ms"}, "{m} a= 1\n", {}),
    ("string-only-and-bad", {"precision": "ms"}, '{m} s="x" %d\n{m} a= %d\n' % (T, T), {}),
    ("empty", {"precision": "ms"}, "", {}),
    ("only-comments", {"precision": "ms"}, "# x\n\n", {}),
    ("missing-fields", {"precision": "ms"}, "{m},t=1 %d" % T, {}),
    ("space-in-tags", {"precision": "ms"}, "{m}, t=1 a=1 %d" % T, {}),
    ("empty-tag-value", {"precision": "ms"}, "{m},t= a=1 %d" % T, {}),
    ("comma-end-fields", {"precision": "ms"}, "{m} a=1, %d" % T, {}),
    ("time-key-field", {"precision": "ms"}, "{m} time=1,a=2 %d" % T, {}),
    ("time-key-tag", {"precision": "ms"}, "{m},time=x a=2 %d" % T, {}),
    ("content-type-json", {"precision": "ms"}, "{m} a=1 %d" % T,
     {"Content-Type": "application/json"}),
    ("measurement-only", {"precision": "ms"}, "{m}", {}),
    ("unclosed-string", {"precision": "ms"}, '{m} s="abc %d' % T, {}),
    ("string-ends-backslash", {"precision": "ms"}, '{m} s="a\\\\",v=1 %d' % T, {}),
    ("quote-in-tag", {"precision": "ms"}, '{m},t="x" v=1 %d' % T, {}),
    ("quote-in-field-key", {"precision": "ms"}, '{m} "a"=1 %d' % T, {}),
    ("eq-in-tag-value", {"precision": "ms"}, "{m},t=a=b v=1 %d" % T, {}),
    ("comma-after-tags", {"precision": "ms"}, "{m},t=1, a=1 %d" % T, {}),
    ("two-spaces-after-meas", {"precision": "ms"}, "{m}  a=1 %d" % T, {}),
    ("unicode", {"precision": "ms"}, "{m},ort=Zürich temp°=1 %d" % T, {}),
    ("int-leading-zero", {"precision": "ms"}, "{m} a=007i,b=-0i %d" % T, {}),
    ("float-odd", {"precision": "ms"}, "{m} a=1.e5 %d" % T, {}),
    ("float-e-nodigits", {"precision": "ms"}, "{m} a=1e %d" % T, {}),
    ("float-dot-only", {"precision": "ms"}, "{m} a=. %d" % T, {}),
    ("float-minus-only", {"precision": "ms"}, "{m} a=- %d" % T, {}),
    ("ts-leading-zeros", {"precision": "ms"}, "{m} a=1 000%d" % T, {}),
    ("ts-minus-zero", {"precision": "ms"}, "{m} a=1 -0", {}),
    ("ts-s-overflow", {"precision": "s"}, "{m} a=1 9223372036854775", {}),
    ("cr-inside", {"precision": "ms"}, "{m} a=1\r,b=2 %d" % T, {}),
    ("no-db", {"precision": "ms", "db": ""}, "{m} a=1 %d" % T, {}),
    ("nul-in-tag", {"precision": "ms"}, "{m},t=a\x00b v=1 %d" % T, {}),
    ("lone-cr-line", {"precision": "ms"}, "{m} a=1 %d\n\r\n{m} a=2 %d" % (T, T + 1), {}),
    ("many-lines-partial-last", {"precision": "ms"},
     "".join("{m} a=%d %d\n" % (i, T + i) for i in range(5)) + "{m} a=", {}),
    ("double-backslash-tag", {"precision": "ms"}, "{m},t=a\\\\ b v=1 %d" % T, {}),
    ("double-backslash-tag-end", {"precision": "ms"}, "{m},t=C:\\\\ v=1 %d" % T, {}),
    ("double-backslash-comma", {"precision": "ms"}, "{m},t=a\\\\,u=c v=1 %d" % T, {}),
    ("double-backslash-field-key", {"precision": "ms"}, "{m} f\\\\ x=1 %d" % T, {}),
    ("double-backslash-field-key-end", {"precision": "ms"}, "{m} f\\\\=1 %d" % T, {}),
    ("double-backslash-meas", {"precision": "ms"}, "{m}\\\\ v=1 %d" % T, {}),
    ("double-backslash-meas-mid", {"precision": "ms"}, "{m}\\\\x,t=1 v=1 %d" % T, {}),
    ("backslash-before-eq-tagval", {"precision": "ms"}, "{m},t=a\\\\=b v=1 %d" % T, {}),
    ("double-backslash-field-key-comma", {"precision": "ms"}, "{m} f\\\\,g=1 %d" % T, {}),
    ("triple-backslash-field-key", {"precision": "ms"}, "{m} f\\\\\\ x=1 %d" % T, {}),
    ("double-backslash-tag-key", {"precision": "ms"}, "{m},t\\\\ k=1 v=1 %d" % T, {}),

]


def request(port, method, path, body=b"", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data.decode("utf-8", "replace").strip()


def influx_stored(port, db):
    q = urllib.parse.urlencode({"db": db, "epoch": "ms", "q": "SELECT * FROM /.*/ GROUP BY *"})
    _, body = request(port, "GET", "/query?" + q)
    out = []
    for res in json.loads(body).get("results", []):
        for s in res.get("series", []):
            tags = ",".join("%s=%s" % kv for kv in sorted(s.get("tags", {}).items()) if kv[1])
            for row in s["values"]:
                vals = " ".join("%s=%r" % (c, v) for c, v in zip(s["columns"][1:], row[1:])
                                if v is not None)
                out.append("%s%s %s %s" % (s["name"], "," + tags if tags else "", row[0], vals))
    return out


def vigil_devices(port):
    _, body = request(port, "GET", "/v1/devices?limit=10000")
    return {d["id"] for d in json.loads(body)["devices"]}


def vigil_stored(port, ids):
    out = []
    for dev in sorted(ids):
        path = "/v1/devices/%s/readings?limit=1000" % urllib.parse.quote(dev, safe="")
        _, body = request(port, "GET", path)
        for p in json.loads(body)["points"]:
            vals = " ".join("%s=%r" % kv for kv in sorted(p["values"].items()))
            out.append("%s %s %s" % (dev, p["ts"], vals))
    return out


def run(vigild, only):
    tmp = tempfile.mkdtemp(prefix="influx-compare-")
    infl = Influxd(tmp)
    vig = Vigild(vigild, tmp)
    summary = []
    try:
        for n, (name, params, body, headers) in enumerate(CASES):
            if only and name not in only:
                continue
            m, db = "m%d" % n, "c%d" % n
            request(infl.port, "POST", "/query?q=" + urllib.parse.quote("CREATE DATABASE " + db))
            data = body.replace("{m}", m).encode()
            if headers.get("Content-Encoding") == "gzip":
                data = gzip.compress(data)
            path = "/write?" + urllib.parse.urlencode(dict({"db": db}, **params))
            before = vigil_devices(vig.port)
            ia = request(infl.port, "POST", path, data, headers)
            va = request(vig.port, "POST", path, data, headers)
            print("== %s  %s" % (name, path))
            print("   body     %r" % (body.replace("{m}", m)[:120]))
            print("   influxdb %d %s" % (ia[0], ia[1][:300]))
            print("   vigild   %d %s" % (va[0], va[1][:300]))
            istored = influx_stored(infl.port, db)
            vstored = vigil_stored(vig.port, vigil_devices(vig.port) - before)
            for line in istored:
                print("   I: " + line[:200])
            for line in vstored:
                print("   V: " + line[:200])
            summary.append((name, ia[0], len(istored), va[0], len(vstored)))
        if not only or "ping" in only:
            for method in ("GET", "HEAD"):
                print("== ping %s  influxdb %r  vigild %r" % (
                    method, request(infl.port, method, "/ping"), request(vig.port, method, "/ping")))
            for q in ("CREATE DATABASE x", 'CREATE DATABASE "q\\"x"', "SHOW DATABASES",
                      "show databases;", "SHOW DATABASES x", "DROP DATABASE x",
                      "SHOW RETENTION POLICIES ON x", 'show retention policies on "q\\"x";',
                      "SHOW RETENTION POLICIES ON nosuch", "SHOW RETENTION POLICIES",
                      "SHOW RETENTION POLICIES ON x y", 'SHOW RETENTION POLICIES ON ""',
                      'SHOW RETENTION POLICIES ON "a\\nb"', "CREATE DATABASE",
                      'CREATE DATABASE "unterminated', 'CREATE DATABASE ""',
                      "CREATE DATABASE one; CREATE DATABASE two",
                      "CREATE DATABASE three; SHOW RETENTION POLICIES ON nosuch; "
                      "CREATE DATABASE four; SHOW DATABASES",
                      "CREATE DATABASE five; CREATE DATABASE six WITH DURATION 1m", ";"):
                # Several statements: also as the influx shell asks (chunked=true), where
                # influxd answers a document per result.
                chunked = (False, True) if ";" in q.rstrip("; ") or q == ";" else (False,)
                for c in chunked:
                    path = "/query?" + urllib.parse.urlencode(
                        dict({"q": q}, **({"chunked": "true"} if c else {})))
                    (ist, ibody), (vst, vbody) = (request(p, "POST", path)
                                                  for p in (infl.port, vig.port))
                    print("== query %r%s\n   influxdb %d %s\n   vigild   %d %s%s" % (
                        q, " chunked" if c else "", ist, ibody[:300], vst, vbody[:300],
                        "" if (ist, ibody) == (vst, vbody) else "\n   differs"))
        print("\n%-32s %-18s %-18s" % ("case", "influxdb", "vigild"))
        for name, ist, ipts, vst, vpts in summary:
            mark = "" if (ist, ipts) == (vst, vpts) else "  differs"
            print("%-32s %d, %2d points      %d, %2d points%s" % (name, ist, ipts, vst, vpts, mark))
    finally:
        infl.stop()
        vig.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vigild", required=True)
    ap.add_argument("--only", action="append", help="a case name (repeatable)")
    a = ap.parse_args()
    run(os.path.abspath(a.vigild), a.only)


if __name__ == "__main__":
    main()

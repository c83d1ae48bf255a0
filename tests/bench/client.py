#!/usr/bin/env python3
"""One timed fan-out against fanoutd, checked after the clock stops.

    client.py --port P --target URL --count N [--stream] [--timeout-ms MS]

POSTs a JSON array of N URLs (URL?n=0 .. URL?n=N-1, so no two are equal)
to 127.0.0.1:P/fetch, or /fetch?stream=1.  The clock covers the HTTP
exchange only: connect, send, and reading the whole answer; building the
body and checking the answer happen outside it.  Prints one line

    wall_ms first_ms

where first_ms is when the status line and headers arrived (for a
streaming answer, that is the first result), then checks.  Exits 1, with
the reason on stderr, unless the answer is complete and correct: HTTP 200, every index
0..N-1 exactly once, every result ok, and a summary with total = ok = N.
Standard library only.
"""
import argparse
import http.client
import json
import sys
import time


def fail(msg):
    print("client.py: " + msg, file=sys.stderr)
    sys.exit(1)


def check(results, summary, n):
    seen = bytearray(n)
    for r in results:
        i = r.get("index")
        if not isinstance(i, int) or not 0 <= i < n:
            fail("bad index %r" % (i,))
        if seen[i]:
            fail("index %d twice" % i)
        seen[i] = 1
        if r.get("ok") is not True:
            fail("index %d not ok: status %r error %r"
                 % (i, r.get("status"), r.get("error")))
    if len(results) != n:
        fail("%d results for %d URLs" % (len(results), n))
    if summary is None:
        fail("no summary")
    if summary.get("total") != n or summary.get("ok") != n:
        fail("summary total %r ok %r for %d URLs"
             % (summary.get("total"), summary.get("ok"), n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--timeout", type=float, default=600.0)
    a = ap.parse_args()

    sep = "&" if "?" in a.target else "?"
    body = json.dumps(["%s%sn=%d" % (a.target, sep, i)
                       for i in range(a.count)]).encode()
    path = "/fetch?stream=1" if a.stream else "/fetch"
    headers = {"Content-Type": "application/json"}

    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.timeout)
    conn.request("POST", path, body, headers)
    resp = conn.getresponse()
    t1 = time.perf_counter()
    data = resp.read()
    t2 = time.perf_counter()
    conn.close()

    # The timing line goes out first: a wrong answer still shows how long
    # it took, but the exit status says it does not count.
    print("%.3f %.3f" % ((t2 - t0) * 1e3, (t1 - t0) * 1e3), flush=True)
    if resp.status != 200:
        fail("HTTP %d: %s" % (resp.status, data[:300]))
    if a.stream:
        lines = data.splitlines()
        if not lines:
            fail("empty stream")
        results = [json.loads(x) for x in lines[:-1]]
        summary = json.loads(lines[-1]).get("summary")
    else:
        doc = json.loads(data)
        results = doc.get("results", [])
        summary = doc.get("summary")
        for pos, r in enumerate(results):
            if r.get("index") != pos:
                fail("result %d has index %r" % (pos, r.get("index")))
    check(results, summary, a.count)


if __name__ == "__main__":
    main()

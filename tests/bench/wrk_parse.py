#!/usr/bin/env python3
"""Read wrk --latency output on stdin; print
"req_per_s p99_ms errors requests".

errors adds the non-2xx/3xx count, socket errors and post.lua's
"fanout-not-ok" count.  Exits 1 when the output has no Requests/sec line.
"""
import re
import sys

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def main():
    out = sys.stdin.read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        print("wrk_parse.py: no Requests/sec in wrk output:\n" + out,
              file=sys.stderr)
        sys.exit(1)
    p99 = re.search(r"^\s+99(?:\.000)?%\s+(\S+)", out, re.M)
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"fanout-not-ok:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    total = re.search(r"(\d+) requests in", out)
    print("%s %.3f %d %d" % (rps.group(1), ms(p99.group(1)) if p99 else
                             float("nan"), errors,
                             int(total.group(1)) if total else 0))


if __name__ == "__main__":
    main()

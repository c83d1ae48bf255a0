#!/usr/bin/python3
"""The classic Python fan-out, as a bench contender.

    py_requests.py --target URL --count N [--workers 64]

asyncio + ThreadPoolExecutor(workers) + requests.get through
run_in_executor + gather, over URL?n=0 .. URL?n=N-1.  Needs Debian's
python3-requests (run it with /usr/bin/python3).  The clock starts after
the imports and the pool's creation, at the first submit, and stops when
gather returns.  Prints wall_ms; exits 1 unless every answer was a 200.
"""
import argparse
import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests


async def fan_out(urls, workers):
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        t0 = time.perf_counter()
        answers = await asyncio.gather(
            *(loop.run_in_executor(pool, requests.get, u) for u in urls))
        t1 = time.perf_counter()
    return answers, (t1 - t0) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--workers", type=int, default=64)
    a = ap.parse_args()
    sep = "&" if "?" in a.target else "?"
    urls = ["%s%sn=%d" % (a.target, sep, i) for i in range(a.count)]
    answers, wall_ms = asyncio.run(fan_out(urls, a.workers))
    bad = sum(1 for r in answers if r.status_code != 200)
    if bad:
        print("py_requests.py: %d answers not 200" % bad, file=sys.stderr)
        sys.exit(1)
    print("%.3f" % wall_ms)


if __name__ == "__main__":
    main()

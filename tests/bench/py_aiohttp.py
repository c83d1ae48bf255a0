#!/usr/bin/python3
"""The asyncio HTTPS fan-out, as S6's contender.

    py_aiohttp.py --target URL --count N --cafile FILE [--workers 64]

One aiohttp ClientSession over a TCPConnector of at most `workers`
connections, kept alive, and one SSL context that reads --cafile once,
as fanoutd reads its trust once: GET URL?n=0 .. URL?n=N-1 through
asyncio.gather.  aiohttp speaks HTTP/1.1 only, also to an HTTP/2 port.
Needs Debian's python3-aiohttp (run it with /usr/bin/python3).  The
clock starts after the imports and the SSL context (fanoutd builds its
store at start-up, also off the clock), at the first request, and stops
when gather returns.  Prints wall_ms; exits 1 unless every answer was a
200.
"""
import argparse
import asyncio
import ssl
import sys
import time

import aiohttp


async def fan_out(urls, workers, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    connector = aiohttp.TCPConnector(limit=workers, ssl=ctx)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(url):
            async with session.get(url) as r:
                await r.read()
                return r.status

        t0 = time.perf_counter()
        codes = await asyncio.gather(*(one(u) for u in urls))
        t1 = time.perf_counter()
    return codes, (t1 - t0) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--workers", type=int, default=64)
    a = ap.parse_args()
    sep = "&" if "?" in a.target else "?"
    urls = ["%s%sn=%d" % (a.target, sep, i) for i in range(a.count)]
    codes, wall_ms = asyncio.run(fan_out(urls, a.workers, a.cafile))
    bad = sum(1 for c in codes if c != 200)
    if bad:
        print("py_aiohttp.py: %d answers not 200" % bad, file=sys.stderr)
        sys.exit(1)
    print("%.3f" % wall_ms)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""scripts/loadtest (issue 3): many clients, hostile targets, every answer
checked, the daemon's memory watched.  Run it through scripts/loadtest,
which builds what it needs.

    loadtest.py [--clients 50] [--requests 20] [--seed 1]
                [--max-peak-mib 128] [--max-growth-mib 16]
                [--slow-readers [N]]

Starts the C upstream and fanoutd (64 threads, idle_ms 2000,
max_response_bytes 4096) through the integration harness.  CLIENTS threads
each send REQUESTS fan-outs of 10-50 items over one keep-alive connection,
half of them streaming (?stream=1).  The items mix normal targets
(/status/N, /delay/X, /bytes/N within the cap) with hostile ones: /hang
with a 300 ms item timeout, /reset, /bytes/N above max_response_bytes, a
number item and a gopher:// URL.  Each item's kind fixes what its result
must say, and every answer is checked whole:

  - HTTP 200, the right Content-Type; buffered results in input order,
    streamed ones each index exactly once, then a summary line;
  - per result: url and id echoed, status, ok, error code and bytes as
    the kind demands (a hang must also have run for its timeout);
  - the summary: total, ok, failed, status_counts and error_counts equal
    to what the results say.

Nothing may be lost: every request sent gets its answer.  The daemon's
VmRSS, RssAnon, VmHWM and thread count are sampled every 100 ms:
"baseline" is VmRSS after a warm-up round and idle_ms of quiet (idle
workers gone), "peak" the largest sample during the run, "after" VmRSS
after the same quiet.  The run fails when peak exceeds --max-peak-mib or
after exceeds baseline by more than --max-growth-mib, when the daemon no
longer answers /healthz, dies, does not exit 0 on SIGTERM or writes a
sanitizer report, or when the whole run overruns its deadline (150 s, plus
the slow readers' time).

Slow readers (--slow-readers [N], or LOADTEST_SLOW_READERS=N; 12 when the
mode is on): while the clients above run, N more clients each POST a
fan-out whose answer is large (--slow-urls, 1000, URLs of /redirect?to=
a URL --slow-url-bytes, 3000, long, so that each result carries two long
URLs: about 6 MiB; every other one streaming), then read the answer one
byte every --slow-interval (4) seconds for --slow-seconds (45: longer than
the daemon's client_timeout_ms), and close.  The mode reports, and does not
judge: the daemon's VmRSS, RssAnon and VmHWM at baseline, at peak and
after, their growth, a time line, and per reader whether the daemon cut
it off (its end of the connection left ESTABLISHED, seen in
/proc/net/tcp), when, and how much of the answer sat in the kernel's
socket queues.  In this mode the memory limits apply only when given
(--max-peak-mib, --max-growth-mib or their variables); the daemon's
queue_limit and max_request_bytes grow to admit the readers' fan-outs.
--rss-tsv FILE writes every sample.

Every knob also has an environment variable: LOADTEST_CLIENTS,
LOADTEST_REQUESTS, LOADTEST_SEED, LOADTEST_MAX_PEAK_MIB,
LOADTEST_MAX_GROWTH_MIB, LOADTEST_SLOW_READERS, LOADTEST_SLOW_INTERVAL,
LOADTEST_SLOW_SECONDS, LOADTEST_SLOW_URLS, LOADTEST_SLOW_URL_BYTES,
LOADTEST_RSS_TSV; LOADTEST_FANOUTD names another binary (an ASan build).
Prints a report and "loadtest: PASS" or "loadtest: FAIL"; exits 0 or 1.
Standard library only.
"""
import argparse
import collections
import http.client
import json
import os
import random
import select
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # the source tree may be read-only

from benchlib import (Sampler, env_float, env_int, harness, mib,  # noqa: E402
                      proc_status, run, use_binaries)

IDLE_MS = 2000
CLIENT_TIMEOUT_MS = 30000  # the daemon's default, said here to be shown
MAX_RESPONSE_BYTES = 4096
DEADLINE_S = 150
HANG_TIMEOUT_MS = 300
STATUSES = [200, 201, 204, 404, 500, 503]
# kind -> share of items
MIX = [("status", 36), ("delay", 25), ("bytes", 10), ("big", 6),
       ("hang", 8), ("reset", 8), ("number", 4), ("gopher", 3)]
MEM_KEYS = ("VmRSS", "RssAnon", "VmHWM", "Threads")


class Plan:
    """One fan-out: the body to send and what each item must give."""

    def __init__(self, rng, upstream, cap, tag, nitems):
        self.items, self.kinds = [], []
        kinds, weights = zip(*MIX)
        for i in range(nitems):
            kind = rng.choices(kinds, weights)[0]
            self.kinds.append((kind, self.item(rng, upstream, cap, kind,
                                               "%s-%d" % (tag, i))))
            self.items.append(self.kinds[-1][1][0])

    @staticmethod
    def item(rng, up, cap, kind, ident):
        """(item, expected): expected holds what the result must show."""
        if kind == "status":
            code = rng.choice(STATUSES)
            return "%s/status/%d" % (up, code), {"status": code}
        if kind == "delay":
            ms = rng.randint(0, 100)
            return ({"url": "%s/delay/%d" % (up, ms), "id": ident},
                    {"status": 200, "bytes": len("delayed\n")})
        if kind == "bytes":
            n = rng.randint(0, cap)
            return "%s/bytes/%d" % (up, n), {"status": 200, "bytes": n}
        if kind == "big":
            n = rng.randint(cap + 1, max(cap + 1, 1 << 20))
            return "%s/bytes/%d" % (up, n), {"error": "too_large"}
        if kind == "hang":
            return ({"url": "%s/hang" % up, "timeout_ms": HANG_TIMEOUT_MS,
                     "id": ident}, {"error": "timeout"})
        if kind == "reset":
            return "%s/reset" % up, {"error": "other"}
        if kind == "number":
            return rng.randint(0, 1000), {"error": "invalid_url"}
        return (up.replace("http://", "gopher://") + "/",
                {"error": "unsupported_scheme"})


def check_result(r, item, kind, exp, bad):
    """Append to bad what is wrong with result r of item (kind, exp)."""
    def wrong(what):
        bad.append("index %s (%s): %s; result %s"
                   % (r.get("index"), kind, what, json.dumps(r)[:300]))

    url = item["url"] if isinstance(item, dict) else item
    if r.get("url") != (url if isinstance(url, str) else None):
        wrong("url not echoed")
    if isinstance(item, dict) and "id" in item and r.get("id") != item["id"]:
        wrong("id not echoed")
    err = r.get("error")
    code = err.get("code") if isinstance(err, dict) else None
    status = r.get("status")
    if "error" in exp:
        if code != exp["error"]:
            wrong("error %r, expected %r" % (code, exp["error"]))
        if r.get("ok") is not False:
            wrong("ok is not false")
        if exp["error"] in ("timeout", "other", "invalid_url",
                            "unsupported_scheme") and status is not None:
            wrong("status %r, expected null" % (status,))
        if exp["error"] == "too_large" and status not in (None, 200):
            wrong("status %r for too_large" % (status,))
        if kind == "hang" and r["time_ms"]["total"] < HANG_TIMEOUT_MS - 50:
            wrong("timed out after %.1f ms" % r["time_ms"]["total"])
        return
    if err is not None:
        wrong("unexpected error")
    if status != exp["status"]:
        wrong("status %r, expected %r" % (status, exp["status"]))
    if r.get("ok") is not (200 <= exp["status"] < 400):
        wrong("ok %r" % (r.get("ok"),))
    if "bytes" in exp and r.get("bytes") != exp["bytes"]:
        wrong("bytes %r, expected %r" % (r.get("bytes"), exp["bytes"]))


def check_summary(s, results, bad):
    if not isinstance(s, dict):
        bad.append("no summary")
        return
    n = len(results)
    ok = sum(1 for r in results if r.get("ok") is True)
    sc = collections.Counter(str(r["status"]) for r in results
                             if r.get("status") is not None)
    ec = collections.Counter(r["error"]["code"] for r in results
                             if r.get("error"))
    want = {"total": n, "ok": ok, "failed": n - ok,
            "status_counts": dict(sc), "error_counts": dict(ec)}
    for k, v in want.items():
        if s.get(k) != v:
            bad.append("summary %s = %r, results say %r" % (k, s.get(k), v))
    if not isinstance(s.get("elapsed_ms"), (int, float)):
        bad.append("summary elapsed_ms missing")


def check_answer(plan, stream, status, ctype, data):
    bad = []
    n = len(plan.items)
    if status != 200:
        return ["HTTP %d: %s" % (status, data[:200])]
    try:
        if stream:
            if not ctype.startswith("application/x-ndjson"):
                bad.append("Content-Type %r" % ctype)
            lines = [json.loads(x) for x in data.splitlines() if x.strip()]
            results, summary = lines[:-1], (lines[-1].get("summary")
                                            if lines else None)
        else:
            if not ctype.startswith("application/json"):
                bad.append("Content-Type %r" % ctype)
            doc = json.loads(data)
            results, summary = doc.get("results", []), doc.get("summary")
            for pos, r in enumerate(results):
                if r.get("index") != pos:
                    bad.append("result %d has index %r (order)"
                               % (pos, r.get("index")))
                    break
    except ValueError as e:
        return ["unparseable answer: %s" % e]
    seen = collections.Counter(r.get("index") for r in results)
    missing = [i for i in range(n) if seen[i] == 0]
    twice = [i for i, c in seen.items() if c > 1]
    extra = [i for i in seen if not (isinstance(i, int) and 0 <= i < n)]
    if missing or twice or extra or len(results) != n:
        bad.append("%d results for %d items; missing %s, twice %s, bogus %s"
                   % (len(results), n, missing[:5], twice[:5], extra[:5]))
    for r in results:
        i = r.get("index")
        if isinstance(i, int) and 0 <= i < n:
            kind, (item, exp) = plan.kinds[i]
            check_result(r, item, kind, exp, bad)
    check_summary(summary, results, bad)
    return bad


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = self.answered = self.correct = 0
        self.items = 0
        self.kinds = collections.Counter()
        self.latency = []
        self.violations = []

    def add(self, plan, ms, problems):
        with self.lock:
            self.answered += 1
            self.items += len(plan.items)
            self.kinds.update(k for k, _ in plan.kinds)
            self.latency.append(ms)
            if problems:
                self.violations.extend(problems[:3])
            else:
                self.correct += 1


def client(cid, a, stats, nreq, seed):
    rng = random.Random(seed * 1000 + cid)
    conn = None
    for k in range(nreq):
        plan = Plan(rng, a.upstream, MAX_RESPONSE_BYTES,
                    "c%d-r%d" % (cid, k), rng.randint(10, 50))
        stream = k % 2 == 1
        body = json.dumps(plan.items)
        with stats.lock:
            stats.sent += 1
        t0 = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", a.port,
                                                  timeout=30)
            conn.request("POST", "/fetch?stream=1" if stream else "/fetch",
                         body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            ctype = resp.getheader("Content-Type", "")
            status = resp.status
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            with stats.lock:
                stats.violations.append("client %d request %d lost: %r"
                                        % (cid, k, e))
            if conn is not None:
                conn.close()
            conn = None
            continue
        ms = (time.perf_counter() - t0) * 1e3
        stats.add(plan, ms, check_answer(plan, stream, status, ctype, data))
    if conn is not None:
        conn.close()


def round_of(a, nclients, nreq, seed):
    stats = Stats()
    threads = [threading.Thread(target=client, daemon=True,
                                args=(c, a, stats, nreq, seed))
               for c in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats


def quiet_status(pid):
    """/proc status once idle workers have had time to exit."""
    time.sleep(IDLE_MS / 1000 + 1.0)
    return proc_status(pid, MEM_KEYS)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


# Slow readers.

TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV",
              "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT",
              "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK",
              "0A": "LISTEN", "0B": "CLOSING"}


def tcp_table():
    """{(local port, remote port): (state, tx_queue, rx_queue)} of the
    IPv4 TCP sockets (/proc/net/tcp); rx_queue is what the owner has not
    read yet, tx_queue what the peer has not acknowledged."""
    out = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            tx, rx = (int(x, 16) for x in p[4].split(":"))
            out[(int(p[1].rsplit(":", 1)[1], 16),
                 int(p[2].rsplit(":", 1)[1], 16))] = (p[3], tx, rx)
    return out


def slow_items(up, n, url_bytes):
    """n URLs of /redirect?to=T, T a URL url_bytes long: each result
    carries both, so the answer is about 2 * url_bytes * n bytes."""
    base = up.url("/status/200?pad=")
    items = []
    for i in range(n):
        target = "%s%0*d" % (base, max(url_bytes - len(base), 8), i)
        items.append(up.url("/redirect?to=" + harness.urlquote(target)))
    return items


class SlowReader(threading.Thread):
    """One client that POSTs a fan-out and then reads its answer one byte
    every interval seconds until `seconds` have passed since the request
    went out; the socket stays open until close().  Times are seconds
    since the request went out."""

    def __init__(self, idx, port, body, stream, interval, seconds):
        super().__init__(daemon=True)
        self.idx, self.port, self.stream = idx, port, stream
        self.body, self.interval, self.seconds = body, interval, seconds
        self.sock = None
        self.local_port = None
        self.t0 = None
        self.first = None       # the first byte of the answer was there
        self.got = b""          # the bytes read
        self.head = b""         # the answer's head, peeked at
        self.client_end = None  # (time, "EOF" or "reset") seen by recv
        self.server_end = None  # (time, state) of the daemon's end
        self.error = None

    def run(self):
        try:
            self._run()
        except OSError as e:
            self.error = "slow reader %d: %r" % (self.idx, e)

    def _run(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.sock = s
        path = "/fetch?stream=1" if self.stream else "/fetch"
        s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Content-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n" % (path, len(self.body))
                   ).encode() + self.body)
        self.t0 = time.monotonic()
        self.local_port = s.getsockname()[1]  # for the Watcher, after t0
        end = self.t0 + self.seconds
        tick = self.t0 + self.interval
        while time.monotonic() < end and self.client_end is None:
            # Until the answer starts, watch for its first byte; then
            # only wake for the ticks.
            wait = max(0.0, min(tick, end) - time.monotonic())
            if self.first is None:
                if select.select([s], [], [], wait)[0]:
                    self.first = time.monotonic() - self.t0
            else:
                time.sleep(wait)
            if time.monotonic() >= tick:
                tick += self.interval
                self._tick(s)

    def _tick(self, s):
        try:
            if b"\r\n\r\n" not in self.head:
                self.head = self.got + s.recv(
                    8192, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            b = s.recv(1, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except ConnectionResetError:
            self.client_end = (time.monotonic() - self.t0, "reset")
            return
        if not b:
            self.client_end = (time.monotonic() - self.t0, "EOF")
        else:
            self.got += b

    @property
    def read(self):
        return len(self.got)

    def size(self):
        """The whole answer's size in bytes, head included, when it has a
        Content-Length; else None."""
        length = self.status()[1]
        if length is None:
            return None
        return self.head.index(b"\r\n\r\n") + 4 + length

    def status(self):
        """The answer's status code and Content-Length (None if unseen)."""
        head = self.head.split(b"\r\n\r\n")[0].decode("latin-1")
        lines = head.split("\r\n")
        status = length = None
        if lines[0].startswith("HTTP/") and len(lines[0].split()) > 1:
            status = int(lines[0].split()[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        return status, length

    def close(self):
        if self.sock is not None:
            self.sock.close()


class Watcher(threading.Thread):
    """Notes when the daemon's end of each slow reader's connection
    leaves ESTABLISHED (closed, or gone), every 0.25 s."""

    def __init__(self, readers, dport):
        super().__init__(daemon=True)
        self.readers, self.dport = readers, dport
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.25):
            table = tcp_table()
            for r in self.readers:
                if r.local_port is None or r.server_end is not None:
                    continue
                e = table.get((self.dport, r.local_port))
                if e is None or e[0] != "01":
                    r.server_end = (time.monotonic() - r.t0,
                                    TCP_STATES.get(e[0], e[0]) if e
                                    else "gone")


def span(values, unit="", digits=1):
    """'a–b unit' or 'a unit' of a list of numbers."""
    if not values:
        return "—"
    lo, hi = min(values), max(values)
    f = "%%.%df" % digits
    text = f % lo if round(lo, digits) == round(hi, digits) else (
        (f + "–" + f) % (lo, hi))
    return text + unit


def slow_report(readers, queues, a):
    """Lines on the slow readers; queues: {reader: (client rx, server tx)}
    at the end of their time."""
    out = []
    for stream in (False, True):
        group = [r for r in readers if r.stream == stream]
        if not group:
            continue
        statuses = collections.Counter(r.status()[0] for r in group)
        lengths = [r.status()[1] for r in group if r.status()[1]]
        cut = [r for r in group if r.server_end or r.client_end]
        line = ("    %s (%d): HTTP %s" % (
            "streaming" if stream else "buffered", len(group),
            ", ".join("%s x%d" % (k, v) for k, v in statuses.items())))
        if lengths:
            line += ", answer %s MiB" % span([mib(x / 1024) for x in lengths])
        line += "; first byte at %s" % span(
            [r.first for r in group if r.first is not None], " s")
        line += "; read %s bytes each" % span([r.read for r in group],
                                                digits=0)
        out.append(line)
        line = "      cut off: %d of %d" % (len(cut), len(group))
        if cut:
            ends = [r.server_end[0] for r in cut if r.server_end]
            states = collections.Counter(r.server_end[1] for r in cut
                                         if r.server_end)
            seen = collections.Counter(r.client_end[1] for r in cut
                                       if r.client_end)
            line += ", the daemon's end closed at %s (%s)" % (
                span(ends, " s"), ", ".join("%s x%d" % kv
                                            for kv in states.items()))
            if seen:
                line += "; the reader saw %s" % ", ".join(
                    "%s x%d" % kv for kv in seen.items())
        left = [sum(queues.get(r, (0, 0))) + r.read for r in group]
        line += "; at %g s, %s MiB of each answer had left the daemon " \
                "(read + socket queues)" % (a.slow_seconds,
                                            span([mib(x / 1024)
                                                  for x in left]))
        sizes = [r.size() for r in group]
        if None not in sizes:
            line += ", %s MiB had not" % span(
                [mib(max(0, n - k) / 1024) for n, k in zip(sizes, left)])
        out.append(line)
    return out


def memory_report(base, sampler, after):
    """Lines on VmRSS, RssAnon and VmHWM: baseline, peak, growth, after,
    and a time line."""
    peak = sampler.max
    at = max(sampler.series, key=lambda s: s[1]["VmRSS"])[0] \
        if sampler.series else 0
    out = ["  daemon memory, MiB:   VmRSS  RssAnon  VmHWM",
           "    baseline          %7.1f  %7.1f  %5.1f"
           % (mib(base["VmRSS"]), mib(base["RssAnon"]), mib(base["VmHWM"])),
           "    peak              %7.1f  %7.1f  %5.1f   (VmRSS at %.1f s)"
           % (mib(peak["VmRSS"]), mib(peak["RssAnon"]), mib(peak["VmHWM"]),
              at),
           "    growth            %+7.1f  %+7.1f  %+5.1f"
           % (mib(peak["VmRSS"] - base["VmRSS"]),
              mib(peak["RssAnon"] - base["RssAnon"]),
              mib(peak["VmHWM"] - base["VmHWM"])),
           "    after (idle)      %7.1f  %7.1f  %5.1f"
           % (mib(after["VmRSS"]), mib(after["RssAnon"]),
              mib(after["VmHWM"]))]
    points, step, nxt = [], 5.0, 0.0
    for t, s in sampler.series:
        if t >= nxt:
            points.append("%2.0f s %5.1f/%-5.1f" % (t, mib(s["VmRSS"]),
                                                     mib(s["RssAnon"])))
            nxt += step
    out.append("    VmRSS/RssAnon every %.0f s:" % step)
    for i in range(0, len(points), 5):
        out.append(("      " + "  ".join(points[i:i + 5])).rstrip())
    return out


def write_series(path, sampler):
    with open(path, "w") as f:
        f.write("seconds\t" + "\t".join(MEM_KEYS) + "\n")
        for t, s in sampler.series:
            f.write("%.3f\t%s\n" % (t, "\t".join(str(s[k])
                                                  for k in MEM_KEYS)))


def start_slow(a, up, d):
    body = json.dumps(slow_items(up, a.slow_urls,
                                 a.slow_url_bytes)).encode()
    readers = [SlowReader(i, d.port, body, i % 2 == 1, a.slow_interval,
                          a.slow_seconds) for i in range(a.slow_readers)]
    for r in readers:
        r.start()
    watcher = Watcher(readers, d.port)
    watcher.start()
    return readers, watcher, len(body)


def end_slow(readers, watcher, dport):
    """Wait out the readers; their socket queues; close them."""
    for r in readers:
        r.join()
    table = tcp_table()
    queues = {}
    for r in readers:
        if r.local_port is not None:
            mine = table.get((r.local_port, dport), ("", 0, 0))
            theirs = table.get((dport, r.local_port), ("", 0, 0))
            queues[r] = (mine[2], theirs[1])
    time.sleep(0.3)  # one more look by the watcher before we close
    watcher.stop.set()
    watcher.join()
    for r in readers:
        r.close()
    return queues


# The run.

def options():
    ap = argparse.ArgumentParser(
        description="fanoutd load test (see the top of tests/bench/"
        "loadtest.py)")
    slow = env_int("LOADTEST_SLOW_READERS", 0)
    ap.add_argument("--clients", type=int,
                    default=env_int("LOADTEST_CLIENTS", 50))
    ap.add_argument("--requests", type=int,
                    default=env_int("LOADTEST_REQUESTS", 20))
    ap.add_argument("--seed", type=int, default=env_int("LOADTEST_SEED", 1))
    ap.add_argument("--max-peak-mib", type=float,
                    default=env_float("LOADTEST_MAX_PEAK_MIB", None))
    ap.add_argument("--max-growth-mib", type=float,
                    default=env_float("LOADTEST_MAX_GROWTH_MIB", None))
    ap.add_argument("--slow-readers", type=int, nargs="?", metavar="N",
                    const=slow or 12, default=slow)
    ap.add_argument("--slow-interval", type=float,
                    default=env_float("LOADTEST_SLOW_INTERVAL", 4))
    ap.add_argument("--slow-seconds", type=float,
                    default=env_float("LOADTEST_SLOW_SECONDS", 45))
    ap.add_argument("--slow-urls", type=int,
                    default=env_int("LOADTEST_SLOW_URLS", 1000))
    ap.add_argument("--slow-url-bytes", type=int,
                    default=env_int("LOADTEST_SLOW_URL_BYTES", 3000))
    ap.add_argument("--rss-tsv", default=os.environ.get("LOADTEST_RSS_TSV"))
    a = ap.parse_args()
    if not a.slow_readers:  # the slow-reader mode judges only when asked
        a.max_peak_mib = a.max_peak_mib or 128
        a.max_growth_mib = a.max_growth_mib or 16
    if a.slow_urls > 1000 or a.slow_url_bytes > 8000:
        ap.error("--slow-urls is at most 1000 (max_urls), --slow-url-bytes "
                 "at most 8000 (the daemon's URL limit)")
    return a


class Overrun(Exception):
    pass


def overrun(signum, frame):
    raise Overrun


def load(a, up, d):
    """The measured run; returns the violations."""
    pid = d.process.pid
    fresh = proc_status(pid, MEM_KEYS)
    warm = round_of(a, a.clients, 1, a.seed + 1)
    base = quiet_status(pid)

    sampler = Sampler(pid, 0.1, MEM_KEYS, series=True).start()
    slow = start_slow(a, up, d) if a.slow_readers else None
    t0 = time.perf_counter()
    stats = round_of(a, a.clients, a.requests, a.seed)
    elapsed = time.perf_counter() - t0
    queues = end_slow(slow[0], slow[1], d.port) if slow else {}
    sampler.stop()
    after = quiet_status(pid)
    if a.rss_tsv:
        write_series(a.rss_tsv, sampler)

    violations = warm.violations + stats.violations
    if stats.answered != stats.sent:
        violations.append("%d requests sent, %d answered"
                          % (stats.sent, stats.answered))
    if a.max_peak_mib and mib(sampler.max["VmRSS"]) > a.max_peak_mib:
        violations.append("peak RSS %.1f MiB above %.0f MiB"
                          % (mib(sampler.max["VmRSS"]), a.max_peak_mib))
    growth = after["VmRSS"] - base["VmRSS"]
    if a.max_growth_mib and mib(growth) > a.max_growth_mib:
        violations.append("RSS after the run %.1f MiB, %.1f MiB above the "
                          "baseline (allowed %.0f)"
                          % (mib(after["VmRSS"]), mib(growth),
                             a.max_growth_mib))

    print("loadtest: %d clients x %d fan-outs (half streaming), %d items, "
          "%.1f s, %.0f fan-outs/s, %.0f items/s"
          % (a.clients, a.requests, stats.items, elapsed,
             stats.answered / elapsed, stats.items / elapsed))
    print("  items by kind: " + ", ".join(
        "%s %d" % (k, stats.kinds[k]) for k, _ in MIX))
    print("  requests: %d sent, %d answered, %d complete and correct"
          % (stats.sent, stats.answered, stats.correct))
    print("  latency per fan-out: p50 %.0f ms, p99 %.0f ms, max %.0f ms"
          % (pct(stats.latency, 0.5), pct(stats.latency, 0.99),
             max(stats.latency or [0])))
    print("  daemon RSS: fresh %.1f MiB, baseline %.1f MiB (after warm-up "
          "and %d ms idle), peak %.1f MiB (%d samples), after %.1f MiB "
          "(%+.1f MiB)" % (mib(fresh["VmRSS"]), mib(base["VmRSS"]), IDLE_MS,
                           mib(sampler.max["VmRSS"]), sampler.count,
                           mib(after["VmRSS"]), mib(growth)))
    print("  daemon threads: baseline %d, peak %d, after %d"
          % (base["Threads"], sampler.max["Threads"], after["Threads"]))
    if slow:
        readers, _, body_bytes = slow
        print("  slow readers: %d, each %d URLs (a %.1f MiB request), one "
              "byte read every %g s for %g s; the daemon's "
              "client_timeout_ms is %d"
              % (len(readers), a.slow_urls, mib(body_bytes / 1024),
                 a.slow_interval, a.slow_seconds, CLIENT_TIMEOUT_MS))
        for line in slow_report(readers, queues, a):
            print(line)
        for r in readers:
            if r.error:
                violations.append(r.error)
            elif r.status()[0] not in (None, 200):
                violations.append("slow reader %d: HTTP %d"
                                  % (r.idx, r.status()[0]))
        for line in memory_report(base, sampler, after):
            print(line)
        if not (a.max_peak_mib or a.max_growth_mib):
            print("  memory not judged (LOADTEST_MAX_PEAK_MIB and "
                  "LOADTEST_MAX_GROWTH_MIB judge when set)")
    return violations


def main(a):
    up = harness.Upstream()
    config = {
        "workers": {"threads": 64, "queue_limit": 10000, "idle_ms": IDLE_MS},
        "limits": {"max_urls": 1000, "max_response_bytes": MAX_RESPONSE_BYTES,
                   "request_timeout_ms": 60000,
                   "client_timeout_ms": CLIENT_TIMEOUT_MS},
        "fetch": {"timeout_ms": 10000},
    }
    if a.slow_readers:  # room for the slow readers' requests
        config["limits"]["max_request_bytes"] = 16 << 20
        config["workers"]["queue_limit"] += a.slow_readers * a.slow_urls
    d = harness.Daemon(config)
    a.port, a.upstream = d.port, up.url("")

    signal.signal(signal.SIGALRM, overrun)
    signal.alarm(int(DEADLINE_S + (a.slow_seconds if a.slow_readers else 0)))
    try:
        violations = load(a, up, d)
    except Overrun:
        violations = ["the run did not end within its deadline"]
    signal.alarm(0)
    if violations:
        print("  VIOLATIONS: %d; first ones:" % len(violations))
        for v in violations[:15]:
            print("    " + v)
    else:
        print("  no violations")

    rc = 1 if violations else 0
    try:
        healthy = d.request("GET", "/healthz", timeout=5).status == 200
    except OSError:
        healthy = False
    if not healthy:
        print("  VIOLATION: the daemon no longer answers /healthz")
        rc = 1
    for problem in d.stop():
        print("  VIOLATION: " + problem[:1000])
        rc = 1
    err = d.process.stderr().splitlines()
    if err:
        print("  daemon stderr (%d lines), last:" % len(err))
        for line in err[-3:]:
            print("    " + line)
    print("loadtest: %s" % ("PASS" if rc == 0 else "FAIL"))
    return rc


if __name__ == "__main__":
    opts = options()
    use_binaries(os.environ.get("LOADTEST_FANOUTD"))
    run(lambda work: main(opts), "fanoutd-loadtest")

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
LOADTEST_RSS_TSV, LOADTEST_CLIENT_TIMEOUT_MS (the daemon's
client_timeout_ms, 30000 as its default); LOADTEST_FANOUTD names another
binary (an ASan build).
Prints a report and "loadtest: PASS" or "loadtest: FAIL"; exits 0 or 1.
Standard library only.
"""
import argparse
import collections
import http.client
import json
import os
import random
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True  # the source tree may be read-only

from benchlib import (Sampler, env_float, env_int, harness, mib,  # noqa: E402
                      proc_status, run, use_binaries)
from slowread import (MEM_KEYS, SlowReaders, memory_report,  # noqa: E402
                      slow_items, write_series)

IDLE_MS = 2000
MAX_RESPONSE_BYTES = 4096
DEADLINE_S = 150
HANG_TIMEOUT_MS = 300
STATUSES = [200, 201, 204, 404, 500, 503]
# kind -> share of items
MIX = [("status", 36), ("delay", 25), ("bytes", 10), ("big", 6),
       ("hang", 8), ("reset", 8), ("number", 4), ("gopher", 3)]


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
    ap.add_argument("--client-timeout-ms", type=int,
                    default=env_int("LOADTEST_CLIENT_TIMEOUT_MS", 30000))
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
    slow = None
    if a.slow_readers:
        slow = SlowReaders(a.slow_readers, d.port,
                           slow_items(up, a.slow_urls, a.slow_url_bytes),
                           a.slow_interval, a.slow_seconds).start()
    t0 = time.perf_counter()
    stats = round_of(a, a.clients, a.requests, a.seed)
    elapsed = time.perf_counter() - t0
    if slow:
        slow.finish()
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
        print("  slow readers: %d, each %d URLs (a %.1f MiB request), one "
              "byte read every %g s for %g s; the daemon's "
              "client_timeout_ms is %d"
              % (a.slow_readers, a.slow_urls, len(slow.body) / 1048576,
                 a.slow_interval, a.slow_seconds, a.client_timeout_ms))
        for line in slow.report():
            print(line)
        violations += slow.problems()
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
                   "client_timeout_ms": a.client_timeout_ms},
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

#!/usr/bin/env python3
"""The load test behind scripts/loadtest (issue 3): many clients, hostile
targets, every answer checked, the daemon's memory watched.

    loadtest.py --port P --upstream URL --pid PID --idle-ms MS \
        --max-response-bytes N [--clients 50] [--requests 20] [--seed S]

CLIENTS threads each send REQUESTS fan-outs of 10-50 items over one
keep-alive connection, half of them streaming (?stream=1).  The items mix
normal targets (/status/N, /delay/X, /bytes/N within the cap) with hostile
ones: /hang with a 300 ms item timeout, /reset, /bytes/N above
max_response_bytes, a number item and a gopher:// URL.  Each item's kind
fixes what its result must say, and every answer is checked whole:

  - HTTP 200, the right Content-Type; buffered results in input order,
    streamed ones each index exactly once, then a summary line;
  - per result: url and id echoed, status, ok, error code and bytes as
    the kind demands (a hang must also have run for its timeout);
  - the summary: total, ok, failed, status_counts and error_counts equal
    to what the results say.

Nothing may be lost: every request sent gets its answer.  The daemon's
VmRSS and thread count are sampled every 100 ms: "baseline" is VmRSS after
a warm-up round and idle_ms of quiet (idle workers gone), "peak" the
largest sample during the run, "after" VmRSS after the same quiet.  The
run fails when peak exceeds --max-peak-mib or after exceeds baseline by
more than --max-growth-mib.  Prints a short report; exits 1 on any
violation.  Standard library only.
"""
import argparse
import collections
import http.client
import json
import random
import sys
import threading
import time

HANG_TIMEOUT_MS = 300
STATUSES = [200, 201, 204, 404, 500, 503]
# kind -> share of items
MIX = [("status", 36), ("delay", 25), ("bytes", 10), ("big", 6),
       ("hang", 8), ("reset", 8), ("number", 4), ("gopher", 3)]


def rss_kib(pid):
    """(VmRSS KiB, Threads) of pid."""
    rss = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = self.peak_threads = 0
        self.samples = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                rss, threads = rss_kib(self.pid)
            except OSError:
                return
            self.peak = max(self.peak, rss)
            self.peak_threads = max(self.peak_threads, threads)
            self.samples += 1
            self.stop.wait(0.1)


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
        plan = Plan(rng, a.upstream, a.max_response_bytes,
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
    threads = [threading.Thread(target=client,
                                args=(c, a, stats, nreq, seed))
               for c in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats


def quiet_rss(a):
    """VmRSS once idle workers have had time to exit."""
    time.sleep(a.idle_ms / 1000 + 1.0)
    return rss_kib(a.pid)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--idle-ms", type=int, required=True)
    ap.add_argument("--max-response-bytes", type=int, required=True)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-peak-mib", type=float, default=128)
    ap.add_argument("--max-growth-mib", type=float, default=16)
    a = ap.parse_args()

    fresh, _ = rss_kib(a.pid)
    warm = round_of(a, a.clients, 1, a.seed + 1)
    baseline, base_threads = quiet_rss(a)

    sampler = Sampler(a.pid)
    sampler.start()
    t0 = time.perf_counter()
    stats = round_of(a, a.clients, a.requests, a.seed)
    elapsed = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    after, after_threads = quiet_rss(a)

    violations = warm.violations + stats.violations
    if stats.answered != stats.sent:
        violations.append("%d requests sent, %d answered"
                          % (stats.sent, stats.answered))
    mib = lambda k: k / 1024.0
    if mib(sampler.peak) > a.max_peak_mib:
        violations.append("peak RSS %.1f MiB above %.0f MiB"
                          % (mib(sampler.peak), a.max_peak_mib))
    if mib(after - baseline) > a.max_growth_mib:
        violations.append("RSS after the run %.1f MiB, %.1f MiB above the "
                          "baseline (allowed %.0f)" % (mib(after),
                                                       mib(after - baseline),
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
          "(%+.1f MiB)" % (mib(fresh), mib(baseline), a.idle_ms,
                           mib(sampler.peak), sampler.samples, mib(after),
                           mib(after - baseline)))
    print("  daemon threads: baseline %d, peak %d, after %d"
          % (base_threads, sampler.peak_threads, after_threads))
    if violations:
        print("  VIOLATIONS: %d; first ones:" % len(violations))
        for v in violations[:15]:
            print("    " + v)
        sys.exit(1)
    print("  no violations")


if __name__ == "__main__":
    main()

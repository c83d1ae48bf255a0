#!/usr/bin/python3
"""scripts/bench: fanoutd against the C upstream from tests/ on loopback,
one Markdown table (issue 5).  Run it through scripts/bench, which builds
and installs what it needs.

    bench.py [--list] [SCENARIO ...]     (default: $BENCH_SCENARIOS, or all)

Scenarios are the SCENARIOS table at the end: a name, a description and a
function of a Bench.  In each, the contenders are interleaved (A B C A B C
...): one unrecorded warm-up round, then BENCH_REPS (5) recorded rounds;
the table shows the median and min-max of each metric.

  S1  2000 URLs to /status/200 in one POST, URLs/s: fanoutd (threads 64),
      curl -Z --parallel-max 64 --parallel-immediate (a --config file of
      url/output pairs), Python asyncio + ThreadPoolExecutor(64) +
      requests.get (py_requests.py), and wrk -t1 -c64 straight at
      /status/200 (the ceiling).
  S2  200 URLs to /delay/200, concurrency 200 (fanoutd threads 256; curl
      -Z --parallel-max 200): wall time and overhead above 200 ms.
  S3  wrk -t1 -c64 --latency POSTing one-URL fan-outs (post.lua): req/s,
      p99.
  S4  one POST of 1,000 / 10,000 / 100,000 URLs to /status/200, buffered
      and streaming (?stream=1): wall, us/URL, peak RSS, (peak - idle)/URL.
  S5  10,000 URLs to /delay/1000 in one POST, threads 10000: wall, peak
      RSS, threads.
  S6  HTTPS (issue 10): a private nginx (tests/integration/pki.py: its
      own config in the scratch directory, a throw-away CA made by
      openssl) with an HTTP/1.1-only port (S6 h1) and an HTTP/2 port
      (S6 h2); BENCH_S6_URLS (500) URLs to /ok, 64 at a time, verifying
      against the system bundle plus the private CA.  Contenders: fanoutd
      cold (a fresh daemon: 64 new TLS connections) and warm (the same
      daemon's second fan-out), curl -Z --parallel-max 64 with that
      bundle and with the one-certificate CA file, and aiohttp
      (py_aiohttp.py) with the bundle.  nginx's access log ($connection,
      $ssl_session_reused) counts each run's TLS connections and
      resumptions (warm: the connections new since cold).  S6 conns counts the connections of 20 one-URL
      fan-outs 100 ms apart, and the new ones of 8 one-URL fan-outs after
      an 8-URL fan-out; S6 RSS is the idle RSS the shared store adds (the
      bundle against the one-certificate CA).
  S7  2000 URLs to /status/200 (issue 11), on one daemon (threads 64),
      alternately without checks and with expect {status: ["2xx"],
      body_regex: "^status \\d{3}$"}: URLs/s and daemon CPU per URL of
      each; the checked run must keep 0.8x of the unchecked rate.

How things are measured:
  - fanoutd's clock (benchlib.post_fanout) covers connect, send and the
    whole answer; the answer is then checked (every index once, all ok,
    summary), and a wrong answer is a failed repetition.  curl's clock is
    the wall time of the curl process (its start-up is included; S2 shows
    it on its own row).  Python's clock starts at the first submit, after
    the interpreter and imports.  wrk reports its own rate.
  - Peak RSS is VmHWM from /proc/PID/status.  S1-S3 run one daemon per
    scenario, so their peak covers the warm-up and every repetition.  S4
    and S5 start a fresh daemon for every measurement: idle RSS is VmRSS
    once /healthz answers (RssAnon beside it: the part that is not
    shared-library pages), peak is VmHWM after the one request.
  - "daemon CPU" is the daemon's utime + stime (/proc/PID/stat, all
    threads) over the measurement, per URL or per request: a figure that
    other load on the machine disturbs far less than wall time does.
  - Threads is the largest /proc/PID/status Threads seen by a sampler
    reading it every 20 ms while the scenario (S1-S3) or request (S4, S5)
    runs.

Environment: BENCH_REPS (5), BENCH_SCENARIOS ("S1 S2 S3 S4 S5 S6 S7"),
BENCH_WRK_SECONDS (S1's wrk, 2), BENCH_S3_SECONDS (5), BENCH_S4_SIZES
("1000 10000 100000"), BENCH_S6_URLS (500); BENCH_FANOUTD and BENCH_UPSTREAM name other
binaries to measure (a profiling build, an upstream with a longer listen
backlog); BENCH_KEEP=1 keeps the scratch directory (configs, results.tsv,
stderr of every process).

Exit status: 0 when every target holds, 1 otherwise, 2 for an unknown
scenario.
"""
import argparse
import contextlib
import os
import platform
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # the source tree may be read-only

from benchlib import (BENCH, PY, Results, Sampler, TOP, check_all_ok,
                      cpu_ticks, cpu_us_per, env_int, fanout, harness, log,
                      mib, numbered, proc_status, report_stderr, run, run_curl,
                      run_py_aiohttp, run_py_requests, run_wrk,
                      use_binaries, write_curl_config)  # noqa: E402
import pki  # noqa: E402  (tests/integration, put on the path by benchlib)

# scenario, contender, metric (fnmatch patterns), op, bound, shown as
TARGETS = [
    ("S1", "fanoutd", "x curl -Z", ">=", 1.5, ">= 1.5x"),
    ("S1", "fanoutd", "x wrk ceiling", ">=", 0.5, ">= 0.5x"),
    ("S2", "fanoutd", "overhead ms", "<=", 10, "<= 10 ms"),
    ("S3", "fanoutd", "req/s", ">=", 20000, ">= 20,000"),
    ("S3", "fanoutd", "p99 ms", "<", 10, "< 10 ms"),
    ("S4 100k", "*", "peak-idle B/URL", "<", 4096, "< 4096 B"),
    ("S4 100k", "fanoutd", "idle RSS MiB", "<", 8, "< 8 MiB"),
    ("S5", "fanoutd", "wall ms", "<", 2000, "< 2000 ms"),
    ("S5", "fanoutd", "peak RSS MiB", "<", 300, "< 300 MiB"),
    ("S6 h1", "fanoutd cold", "x curl -Z one-cert CA", "<=", 1.2,
     "<= 1.2x"),
    ("S6 h1", "fanoutd cold", "x aiohttp bundle", "<", 1.0, "< 1x"),
    ("S6 conns", "fanoutd 20 x 1 URL*", "TLS connections", "<=", 1, "1"),
    ("S6 conns", "fanoutd 8 x 1 URL*", "new TLS connections", "<=", 0, "0"),
    ("S6 RSS", "*", "idle RSS growth MiB", "<=", 1, "<= 1 MiB"),
    ("S7", "fanoutd checked", "x unchecked", ">=", 0.8, ">= 0.8x"),
    ("*", "*", "errors", "<=", 0, "0"),
]

# derived rows: scenario, contender, metric, numerator, denominator
RATIOS = [
    ("S1", "fanoutd", "x curl -Z", ("S1", "fanoutd", "URLs/s"),
     ("S1", "curl -Z", "URLs/s")),
    ("S1", "fanoutd", "x wrk ceiling", ("S1", "fanoutd", "URLs/s"),
     ("S1", "wrk (ceiling)", "URLs/s")),
    ("S7", "fanoutd checked", "x unchecked",
     ("S7", "fanoutd checked", "URLs/s"),
     ("S7", "fanoutd unchecked", "URLs/s")),
] + [(scen, "fanoutd cold", "x " + peer, (scen, "fanoutd cold", "wall ms"),
      (scen, peer, "wall ms"))
     for scen in ("S6 h1", "S6 h2")
     for peer in ("curl -Z one-cert CA", "aiohttp bundle")]


class Bench:
    """What a scenario function works with: the upstream (up), the knobs,
    the results, and helpers for the steps every scenario takes."""

    def __init__(self, work, up, results):
        self.work, self.up, self.results = work, up, results
        self.reps = env_int("BENCH_REPS", 5)
        self.wrk_seconds = env_int("BENCH_WRK_SECONDS", 2)
        self.s3_seconds = env_int("BENCH_S3_SECONDS", 5)
        self.s4_sizes = [int(x) for x in os.environ.get(
            "BENCH_S4_SIZES", "1000 10000 100000").split()]

    def path(self, name):
        """A file in the scratch directory."""
        return os.path.join(self.work, name)

    def rounds(self):
        """False for the unrecorded warm-up round, then True for each of
        the recorded ones; a scenario runs every contender once a round."""
        yield False
        for _ in range(self.reps):
            yield True

    def record(self, scen, cont, metric, value):
        self.results.add(scen, cont, metric, value)

    def correct(self, scen, cont, ok):
        self.record(scen, cont, "correct", 1 if ok else 0)

    def daemon(self, threads, max_urls, queue_limit=10000,
               max_request_bytes=1048576, extra=None):
        """A fresh fanoutd, ready once /healthz answers."""
        config = {
            "workers": {"threads": threads, "queue_limit": queue_limit,
                        "idle_ms": 60000},
            "limits": {"max_urls": max_urls,
                       "max_request_bytes": max_request_bytes,
                       "request_timeout_ms": 600000},
        }
        return harness.Daemon(harness.merge(config, extra))

    def stop(self, d):
        for problem in d.stop():
            log("fanoutd: " + problem)

    @contextlib.contextmanager
    def scenario_daemon(self, scen, threads, max_urls):
        """One daemon for a whole scenario, its threads sampled; records
        its threads max and peak RSS (warm-up included) at the end."""
        d = self.daemon(threads, max_urls)
        try:
            with Sampler(d.process.pid, 0.02) as s:
                yield d
            self.record(scen, "fanoutd", "threads max", s.max["Threads"])
            self.record(scen, "fanoutd", "peak RSS MiB",
                        mib(proc_status(d.process.pid)["VmHWM"]))
        finally:
            self.stop(d)

    def fanoutd_once(self, scen, cont, rec, d, items, stream=False):
        """One timed, checked fan-out; records its correctness when rec.
        Returns the Answer (answer.ok, answer.wall_ms)."""
        a = fanout(d, items, stream)
        if not a.ok:
            log("%s %s: wrong answer (%s ms): %s" % (
                scen, cont, "%.3f" % a.wall_ms if a.wall_ms else "no",
                a.problem))
        if rec:
            self.correct(scen, cont, a.ok)
        return a

    def curl_once(self, scen, rec, config, n, parallel):
        """One curl -Z run; records its correctness when rec.  Its wall
        ms, or None when a transfer failed."""
        ms = run_curl(config, n, parallel)
        if rec:
            self.correct(scen, "curl -Z", ms is not None)
        return ms

    def fresh_fanout(self, scen, cont, rec, n, target, threads,
                     stream=False):
        """One fan-out of n URLs on a fresh daemon (S4, S5); records idle
        and peak RSS, threads, wall, per-URL figures.  Returns the Answer."""
        d = self.daemon(threads, n, queue_limit=n,
                        max_request_bytes=n * 64 + 65536)
        try:
            time.sleep(0.1)
            idle = proc_status(d.process.pid)
            urls = numbered(target, n)
            with Sampler(d.process.pid, 0.02) as s:
                cpu = cpu_ticks(d.process.pid)
                a = self.fanoutd_once(scen, cont, rec, d, urls, stream)
                cpu = cpu_ticks(d.process.pid) - cpu
            peak = proc_status(d.process.pid)["VmHWM"]
        finally:
            self.stop(d)
        if not rec:
            return a
        self.record(scen, cont, "idle RSS MiB", mib(idle["VmRSS"]))
        self.record(scen, cont, "idle RssAnon MiB", mib(idle["RssAnon"]))
        self.record(scen, cont, "peak RSS MiB", mib(peak))
        self.record(scen, cont, "threads max", s.max["Threads"])
        if not a.ok:
            return a
        self.record(scen, cont, "wall ms", a.wall_ms)
        self.record(scen, cont, "peak-idle B/URL",
                    (peak - idle["VmRSS"]) * 1024 / n)
        self.record(scen, cont, "us/URL", a.wall_ms * 1000 / n)
        self.record(scen, cont, "daemon CPU us/URL", cpu_us_per(cpu, n))
        if stream:
            self.record(scen, cont, "first result ms", a.first_ms)
        return a


def urls_per_s(n, ms):
    return n / ms * 1000


def s1(b):
    n = 2000
    target = b.up.url("/status/200")
    urls = numbered(target, n)
    log("S1: %d URLs to /status/200, %d reps + warm-up" % (n, b.reps))
    config = b.path("s1.curl")
    write_curl_config(config, urls)
    with b.scenario_daemon("S1", 64, n) as d:
        for rec in b.rounds():
            cpu = cpu_ticks(d.process.pid)
            a = b.fanoutd_once("S1", "fanoutd", rec, d, urls)
            cpu = cpu_ticks(d.process.pid) - cpu
            if rec and a.ok:
                b.record("S1", "fanoutd", "URLs/s", urls_per_s(n, a.wall_ms))
                b.record("S1", "fanoutd", "daemon CPU us/URL",
                         cpu_us_per(cpu, n))

            ms = b.curl_once("S1", rec, config, n, 64)
            if rec and ms is not None:
                b.record("S1", "curl -Z", "URLs/s", urls_per_s(n, ms))

            ms = run_py_requests(target, n, 64)
            if rec:
                b.correct("S1", "python requests", ms is not None)
                if ms is not None:
                    b.record("S1", "python requests", "URLs/s",
                             urls_per_s(n, ms))

            w = run_wrk(target, b.wrk_seconds)
            if rec and w is not None:
                b.record("S1", "wrk (ceiling)", "URLs/s", w["rps"])


def s7(b):
    n = 2000
    urls = numbered(b.up.url("/status/200"), n)
    checked = {"urls": urls,
               "expect": {"status": ["2xx"], "body_regex": r"^status \d{3}$"}}
    log("S7: %d URLs to /status/200, with and without a status check and "
        "a body regex, %d reps + warm-up" % (n, b.reps))
    with b.scenario_daemon("S7", 64, n) as d:
        for rec in b.rounds():
            for cont, items in (("fanoutd unchecked", urls),
                                ("fanoutd checked", checked)):
                cpu = cpu_ticks(d.process.pid)
                a = fanout(d, items, check=lambda a, _, st: check_all_ok(
                    a, n, st))
                cpu = cpu_ticks(d.process.pid) - cpu
                if not a.ok:
                    log("S7 %s: wrong answer: %s" % (cont, a.problem))
                if not rec:
                    continue
                b.correct("S7", cont, a.ok)
                if a.ok:
                    b.record("S7", cont, "URLs/s", urls_per_s(n, a.wall_ms))
                    b.record("S7", cont, "daemon CPU us/URL",
                             cpu_us_per(cpu, n))


def s2(b):
    n, delay = 200, 200
    target = b.up.url("/delay/%d" % delay)
    log("S2: %d URLs to /delay/%d, concurrency %d, %d reps + warm-up"
        % (n, delay, n, b.reps))
    urls = numbered(target, n)
    config = b.path("s2.curl")
    write_curl_config(config, urls)
    with b.scenario_daemon("S2", 256, 1000) as d:
        for rec in b.rounds():
            a = b.fanoutd_once("S2", "fanoutd", rec, d, urls)
            if rec and a.ok:
                b.record("S2", "fanoutd", "wall ms", a.wall_ms)
                b.record("S2", "fanoutd", "overhead ms", a.wall_ms - delay)

            ms = b.curl_once("S2", rec, config, n, n)
            if rec and ms is not None:
                b.record("S2", "curl -Z", "wall ms", ms)
                b.record("S2", "curl -Z", "overhead ms", ms - delay)

            # curl's own start-up, part of its overhead above
            t0 = time.perf_counter()
            subprocess.run(["curl", "-s", "-o", "/dev/null",
                            "file:///dev/null"])
            if rec:
                b.record("S2", "curl process start-up", "wall ms",
                         (time.perf_counter() - t0) * 1e3)


def s3(b):
    log("S3: wrk -t1 -c64 -d%ds POSTing one-URL fan-outs, %d reps + warm-up"
        % (b.s3_seconds, b.reps))
    with b.scenario_daemon("S3", 64, 1000) as d:
        for rec in b.rounds():
            cpu = cpu_ticks(d.process.pid)
            w = run_wrk("http://127.0.0.1:%d/fetch" % d.port, b.s3_seconds,
                        script=os.path.join(BENCH, "post.lua"),
                        env={"FANOUT_TARGET": b.up.url("/status/200")})
            cpu = cpu_ticks(d.process.pid) - cpu
            if not rec:
                continue
            if w is None:
                b.correct("S3", "fanoutd", False)
                continue
            b.record("S3", "fanoutd", "req/s", w["rps"])
            b.record("S3", "fanoutd", "p99 ms", w["p99_ms"])
            b.record("S3", "fanoutd", "errors", w["errors"])
            b.record("S3", "fanoutd", "daemon CPU us/req",
                     cpu_us_per(cpu, max(w["requests"], 1)))


def label(n):
    """1000 -> 1k"""
    return "%dk" % (n // 1000) if n % 1000 == 0 else str(n)


def s4(b):
    target = b.up.url("/status/200")
    for n in b.s4_sizes:
        scen = "S4 " + label(n)
        log("%s: one POST of %d URLs, buffered and streaming, %d reps + "
            "warm-up" % (scen, n, b.reps))
        for rec in b.rounds():
            b.fresh_fanout(scen, "fanoutd", rec, n, target, 64)
            b.fresh_fanout(scen, "fanoutd stream", rec, n, target, 64,
                           stream=True)


def s5(b):
    n = 10000
    log("S5: %d URLs to /delay/1000 in one POST, threads %d, %d reps + "
        "warm-up" % (n, n, b.reps))
    for rec in b.rounds():
        a = b.fresh_fanout("S5", "fanoutd", rec, n, b.up.url("/delay/1000"),
                           n)
        if rec and a.ok:
            b.record("S5", "fanoutd", "overhead ms", a.wall_ms - 1000)


S6_PARALLEL = 64


def s6_count(b, ng, scen, cont, mark, n, before=frozenset()):
    """Record the new TLS connections (not in before) and resumptions
    nginx logged for a run of n requests since mark; returns the ids of
    the connections that carried them."""
    ids = {e.connection for e in ng.wait_entries(n, since=mark, timeout=10)}
    b.record(scen, cont, "new TLS connections", len(ids - before))
    b.record(scen, cont, "TLS resumptions", ng.resumed(since=mark))
    return ids


def s6_fanoutd(b, p, ng, scen, rec, urls):
    """A fresh daemon trusting the bundle: its first fan-out (cold), then
    its second (warm, on the connections of the first)."""
    d = b.daemon(S6_PARALLEL, len(urls),
                 extra={"tls": {"ca_file": p.ca_bundle_system}})
    seen = frozenset()
    try:
        for cont in ("fanoutd cold", "fanoutd warm"):
            mark = ng.mark()
            cpu = cpu_ticks(d.process.pid)
            a = b.fanoutd_once(scen, cont, rec, d, urls)
            cpu = cpu_ticks(d.process.pid) - cpu
            if rec and a.ok:
                b.record(scen, cont, "wall ms", a.wall_ms)
                b.record(scen, cont, "daemon CPU us/URL",
                         cpu_us_per(cpu, len(urls)))
                seen |= s6_count(b, ng, scen, cont, mark, len(urls), seen)
    finally:
        b.stop(d)


def s6_peers(b, p, ng, scen, rec, target, urls):
    """curl -Z with the bundle and with the one-certificate CA; aiohttp
    with the bundle."""
    config = b.path("s6.curl")
    write_curl_config(config, urls)
    for cont, ca in (("curl -Z bundle", p.ca_bundle_system),
                     ("curl -Z one-cert CA", p.ca_file)):
        mark = ng.mark()
        ms = run_curl(config, len(urls), S6_PARALLEL, ("--cacert", ca))
        if rec:
            b.correct(scen, cont, ms is not None)
            if ms is not None:
                b.record(scen, cont, "wall ms", ms)
                s6_count(b, ng, scen, cont, mark, len(urls))
    mark = ng.mark()
    ms = run_py_aiohttp(target, len(urls), S6_PARALLEL, p.ca_bundle_system)
    if rec:
        b.correct(scen, "aiohttp bundle", ms is not None)
        if ms is not None:
            b.record(scen, "aiohttp bundle", "wall ms", ms)
            s6_count(b, ng, scen, "aiohttp bundle", mark, len(urls))


def s6_warm_connections(b, p, ng, rec):
    """The connection targets: one-URL fan-outs reuse a connection."""
    scen = "S6 conns"
    d = b.daemon(S6_PARALLEL, 100,
                 extra={"tls": {"ca_file": p.ca_bundle_system}})
    try:
        ok, mark = True, ng.mark()
        for i in range(20):
            ok &= fanout(d, [ng.url("valid_b", "/ok?n=%d" % i)]).ok
            time.sleep(0.1)
        ng.wait_entries(20, since=mark)
        cont = "fanoutd 20 x 1 URL, 100 ms apart"
        if rec:
            b.correct(scen, cont, ok)
            b.record(scen, cont, "TLS connections", ng.connections(since=mark))
        mark = ng.mark()
        ok = fanout(d, numbered(ng.url("valid", "/ok"), 8)).ok
        first = {e.connection for e in ng.wait_entries(8, since=mark)}
        mark = ng.mark()
        for i in range(8):
            ok &= fanout(d, [ng.url("valid", "/ok?again=%d" % i)]).ok
        later = {e.connection for e in ng.wait_entries(8, since=mark)}
        cont = "fanoutd 8 x 1 URL after 8 URLs"
        if rec:
            b.correct(scen, cont, ok)
            b.record(scen, cont, "new TLS connections", len(later - first))
    finally:
        b.stop(d)


def s6_idle_rss(b, p, rec):
    """What the shared store adds to idle RSS: a daemon trusting the
    bundle against one trusting the one-certificate CA."""
    rss = {}
    for name, ca in (("bundle", p.ca_bundle_system), ("one-cert", p.ca_file)):
        d = b.daemon(S6_PARALLEL, 1000, extra={"tls": {"ca_file": ca}})
        try:
            time.sleep(0.1)
            rss[name] = proc_status(d.process.pid)["VmRSS"]
        finally:
            b.stop(d)
    if rec:
        b.record("S6 RSS", "fanoutd, bundle", "idle RSS MiB",
                 mib(rss["bundle"]))
        b.record("S6 RSS", "fanoutd, one-cert CA", "idle RSS MiB",
                 mib(rss["one-cert"]))
        b.record("S6 RSS", "shared store", "idle RSS growth MiB",
                 mib(rss["bundle"] - rss["one-cert"]))


def s6(b):
    n = env_int("BENCH_S6_URLS", 500)
    p = pki.get()
    if p.ca_bundle_system is None:
        log("S6: no %s, skipped" % pki.SYSTEM_BUNDLE)
        return
    ng = pki.Nginx(p)
    log("S6: %d HTTPS URLs, 64 at a time, h1 and h2, %d reps + warm-up"
        % (n, b.reps))
    try:
        for rec in b.rounds():
            for kind, scen in (("valid", "S6 h1"), ("h2", "S6 h2")):
                target = ng.url(kind, "/ok")
                urls = numbered(target, n)
                s6_fanoutd(b, p, ng, scen, rec, urls)
                s6_peers(b, p, ng, scen, rec, target, urls)
            s6_warm_connections(b, p, ng, rec)
            s6_idle_rss(b, p, rec)
    finally:
        problem = ng.stop()
        if problem:
            log("nginx: " + problem)


# name, description, function(Bench): a new scenario is one more line.
SCENARIOS = [
    ("S1", "2000 URLs to /status/200 in one POST: fanoutd, curl -Z, "
     "Python requests, wrk ceiling (URLs/s)", s1),
    ("S2", "200 URLs to /delay/200, concurrency 200: fanoutd, curl -Z "
     "(overhead above 200 ms)", s2),
    ("S3", "wrk -c64 POSTing one-URL fan-outs (req/s, p99)", s3),
    ("S4", "one POST of BENCH_S4_SIZES URLs, buffered and streaming "
     "(wall, RSS per URL)", s4),
    ("S5", "10,000 URLs to /delay/1000, threads 10000 (wall, peak RSS)", s5),
    ("S6", "HTTPS to nginx with a private CA, h1 and h2: fanoutd cold and "
     "warm, curl -Z (bundle, one-cert CA), aiohttp (wall, TLS "
     "connections)", s6),
    ("S7", "2000 URLs to /status/200 with a status check and a body regex "
     "against none (URLs/s, daemon CPU per URL)", s7),
]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def output_of(argv):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        return p.stdout.decode(errors="replace").strip()
    except OSError:
        return ""


def print_header(reps, elapsed, load_before):
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    print()
    print("Machine: %s cores, %s, Linux %s, %s" % (
        os.cpu_count(), model, platform.release(),
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print("Source: %s" % (output_of(["git", "-C", TOP, "describe", "--always",
                                     "--dirty"]) or "unknown"))
    print("Tools: %s; wrk %s; Python %s (requests %s); %s" % (
        " ".join(output_of(["curl", "--version"]).split()[:2]),
        output_of(["dpkg-query", "-W", "-f=${Version}", "wrk"]),
        output_of([PY, "-c", "import sys; print(sys.version.split()[0])"]),
        output_of([PY, "-c", "import requests; print(requests.__version__)"]),
        output_of([os.environ["FANOUTD_BIN"], "--version"]).splitlines()[0]))
    print("Runs: warm-up + %d repetitions, interleaved; %.0f s in all; load "
          "average before: %s" % (reps, elapsed, load_before))
    print()


def main():
    ap = argparse.ArgumentParser(
        description="Benchmark fanoutd (see the top of tests/bench/bench.py)")
    ap.add_argument("--list", action="store_true",
                    help="list the scenarios and exit")
    ap.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                    help="default: $BENCH_SCENARIOS, or every scenario")
    a = ap.parse_args()
    table = {name: (desc, fn) for name, desc, fn in SCENARIOS}
    if a.list:
        for name, desc, _ in SCENARIOS:
            print("%-4s %s" % (name, desc))
        return 0
    names = a.scenarios or os.environ.get(
        "BENCH_SCENARIOS", " ".join(table)).split()
    for name in names:
        if name not in table:
            log("unknown scenario %s (%s)" % (name, " ".join(table)))
            return 2
    use_binaries(os.environ.get("BENCH_FANOUTD"),
                 os.environ.get("BENCH_UPSTREAM"))

    def bench(work):
        b = Bench(work, harness.Upstream(),
                  Results(os.path.join(work, "results.tsv")))
        started = time.monotonic()
        load_before = loadavg()
        for name in names:
            log("load average: " + loadavg())
            table[name][1](b)
        print_header(b.reps, time.monotonic() - started, load_before)
        rc = 1 if b.results.table(TARGETS, RATIOS) else 0
        sys.stdout.flush()
        b.up.stop()
        report_stderr(work)
        return rc

    run(bench, "fanoutd-bench", keep=os.environ.get("BENCH_KEEP") == "1")


if __name__ == "__main__":
    sys.exit(main())

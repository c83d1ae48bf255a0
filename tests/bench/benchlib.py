"""What scripts/bench and scripts/loadtest share, on top of the
integration harness (tests/integration/harness.py), which starts the C
upstream and the daemon, finds free ports and stops every process by PID.

This module adds what a measurement needs: a scratch directory the run can
keep, readings of /proc/PID (status fields, CPU ticks) and a sampler thread
over them, the timed and checked fan-out client, the contenders run as
programs (curl -Z, wrk, tests/bench/py_requests.py), and the results table
(medians, min-max spreads, targets).  Standard library only.
"""
import collections
import fnmatch
import http.client
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(BENCH))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import harness  # noqa: E402

PY = "/usr/bin/python3"  # Debian's, where python3-requests lives
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print("==> " + msg, file=sys.stderr, flush=True)


def env_int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_float(name, default):
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def mib(kib):
    return kib / 1024.0


# The run: binaries, scratch directory, clean-up.

def use_binaries(fanoutd=None, upstream=None):
    """Point the harness at the binaries to run: the given paths, or the
    ones the build in $TOP/build made."""
    os.environ["FANOUTD_BIN"] = fanoutd or os.path.join(
        TOP, "build", "daemon", "fanoutd")
    os.environ["UPSTREAM_BIN"] = upstream or os.path.join(
        TOP, "build", "tests", "upstream")
    for name in ("FANOUTD_BIN", "UPSTREAM_BIN"):
        if not os.access(os.environ[name], os.X_OK):
            raise SystemExit("%s: %s is not an executable"
                             % (name, os.environ[name]))


def run(main, prefix, keep=False):
    """Run main() in a scratch directory; exit with its status.

    Every process the harness started is stopped by PID at the end, also
    on SIGINT or SIGTERM (exit 130).  The descriptor limit is raised to the
    hard limit first: S5 holds 10,000 connections on each side of the
    daemon, and children inherit the limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGTERM, _interrupted)
    work = tempfile.mkdtemp(prefix=prefix + ".")  # in $TMPDIR or /tmp
    harness.use_tmpdir(work)
    rc = 1
    try:
        rc = main(work)
    except KeyboardInterrupt:
        rc = 130
    finally:
        harness.kill_all()
        if keep:
            log("scratch kept in " + work)
        else:
            harness.remove_tmpdir()
    sys.exit(rc)


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def report_stderr(work):
    """Log the warning and error lines the processes of the run wrote."""
    pat = re.compile(r"warn|error|fatal|sanitizer", re.I)
    for name in sorted(os.listdir(work)):
        if "-stderr-" not in name:
            continue
        with open(os.path.join(work, name), errors="replace") as f:
            lines = [x.rstrip("\n") for x in f if pat.search(x)]
        if lines:
            log("%s: %d warning/error lines, first:" % (name, len(lines)))
            for x in lines[:3]:
                print(x, file=sys.stderr)


# /proc readings.

def proc_status(pid, keys=("VmRSS", "VmHWM", "RssAnon", "Threads")):
    """{key: number} from /proc/PID/status (kB for sizes), 0 when absent."""
    out = dict.fromkeys(keys, 0)
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in out:
                out[k] = int(v.split()[0])
    return out


cpu_ticks = harness.cpu_ticks


def cpu_us_per(ticks, n):
    """Microseconds of CPU per item."""
    return ticks * 1e6 / CLK_TCK / n


class Sampler:
    """Reads /proc/PID/status on a thread every interval seconds and keeps
    the largest value of each key; with series=True every sample too, as
    (seconds since start, {key: value}).  Use it with `with`."""

    def __init__(self, pid, interval, keys=("Threads",), series=False):
        self.pid, self.interval, self.keys = pid, interval, keys
        self.max = dict.fromkeys(keys, 0)
        self.series = [] if series else None
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.monotonic()
        while True:
            try:
                s = proc_status(self.pid, self.keys)
            except OSError:
                return  # the process is gone
            self.count += 1
            for k, v in s.items():
                self.max[k] = max(self.max[k], v)
            if self.series is not None:
                self.series.append((time.monotonic() - t0, s))
            if self._stop.wait(self.interval):
                return

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# The fan-out client.

class Answer:
    """One timed fan-out: wall_ms covers connect, send and reading the
    whole answer; first_ms is when the status line and headers arrived
    (for a streaming answer, the first result); problem is None when the
    check passed, else why not."""

    def __init__(self, wall_ms, first_ms, status, ctype, data):
        self.wall_ms, self.first_ms = wall_ms, first_ms
        self.status, self.ctype, self.data = status, ctype, data
        self.problem = None

    @property
    def ok(self):
        return self.problem is None


def numbered(target, n):
    """target?n=0 .. target?n=N-1, so that no two URLs are equal."""
    sep = "&" if "?" in target else "?"
    return ["%s%sn=%d" % (target, sep, i) for i in range(n)]


def post_fanout(port, items, stream=False, timeout=600.0):
    """POST items to 127.0.0.1:port/fetch[?stream=1]; an unchecked Answer.
    The body is built before the clock starts."""
    body = json.dumps(items).encode()
    path = "/fetch?stream=1" if stream else "/fetch"
    headers = {"Content-Type": "application/json"}
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, headers)
        resp = conn.getresponse()
        t1 = time.perf_counter()
        data = resp.read()
        t2 = time.perf_counter()
    finally:
        conn.close()
    return Answer((t2 - t0) * 1e3, (t1 - t0) * 1e3, resp.status,
                  resp.getheader("Content-Type", ""), data)


def results_of(answer, stream):
    """(results, summary) of a 200 answer; ValueError when malformed."""
    if stream:
        lines = answer.data.splitlines()
        if not lines:
            raise ValueError("empty stream")
        return ([json.loads(x) for x in lines[:-1]],
                json.loads(lines[-1]).get("summary"))
    doc = json.loads(answer.data)
    results = doc.get("results", [])
    for pos, r in enumerate(results):
        if r.get("index") != pos:
            raise ValueError("result %d has index %r" % (pos, r.get("index")))
    return results, doc.get("summary")


def check_all_ok(answer, n, stream):
    """None when the answer is complete and correct: HTTP 200, every index
    0..n-1 exactly once, every result ok, a summary with total = ok = n;
    else the first thing wrong."""
    if answer.status != 200:
        return "HTTP %d: %r" % (answer.status, answer.data[:300])
    try:
        results, summary = results_of(answer, stream)
    except ValueError as e:
        return "malformed answer: %s" % e
    seen = bytearray(n)
    for r in results:
        i = r.get("index")
        if not isinstance(i, int) or not 0 <= i < n:
            return "bad index %r" % (i,)
        if seen[i]:
            return "index %d twice" % i
        seen[i] = 1
        if r.get("ok") is not True:
            return ("index %d not ok: status %r error %r"
                    % (i, r.get("status"), r.get("error")))
    if len(results) != n:
        return "%d results for %d URLs" % (len(results), n)
    if summary is None:
        return "no summary"
    if summary.get("total") != n or summary.get("ok") != n:
        return ("summary total %r ok %r for %d URLs"
                % (summary.get("total"), summary.get("ok"), n))
    return None


def fanout(daemon, items, stream=False, check=check_all_ok, timeout=600.0):
    """One timed fan-out to daemon, checked after the clock stopped by
    check(answer, len(items), stream).  A transport error is a problem of
    the answer, not an exception."""
    try:
        a = post_fanout(daemon.port, items, stream, timeout)
    except (OSError, http.client.HTTPException) as e:
        a = Answer(None, None, None, "", b"")
        a.problem = "request failed: %r" % (e,)
        return a
    a.problem = check(a, len(items), stream)
    return a


# Contenders run as programs.

def write_curl_config(path, urls):
    """A curl --config file of url/output pairs."""
    with open(path, "w") as f:
        for u in urls:
            f.write('url = "%s"\noutput = "/dev/null"\n' % u)


def run_curl(config, n, parallel, extra=()):
    """Wall ms of curl -Z over config (its process start-up included), or
    None when not every one of its n transfers answered 200."""
    argv = ["curl", "-s", "--no-progress-meter", "-Z", "--parallel-max",
            str(parallel), "--parallel-immediate", "-w", "%{http_code}\n",
            *extra, "--config", config]
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ms = (time.perf_counter() - t0) * 1e3
    codes = p.stdout.decode().split()
    good = codes.count("200")
    if good != n:
        log("curl: %d transfers not 200" % (n - good))
        return None
    return ms


def run_py_requests(target, n, workers):
    """Wall ms of tests/bench/py_requests.py (its own clock), or None when
    not every answer was a 200."""
    p = subprocess.run([PY, os.path.join(BENCH, "py_requests.py"),
                        "--target", target, "--count", str(n),
                        "--workers", str(workers)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        log("python requests: "
            + (err[-1] if err else "exit %d" % p.returncode))
        return None
    return float(p.stdout)


def run_py_aiohttp(target, n, workers, cafile):
    """Wall ms of tests/bench/py_aiohttp.py (its own clock), or None when
    not every answer was a 200."""
    p = subprocess.run([PY, os.path.join(BENCH, "py_aiohttp.py"),
                        "--target", target, "--count", str(n),
                        "--workers", str(workers), "--cafile", cafile],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        log("aiohttp: " + (err[-1] if err else "exit %d" % p.returncode))
        return None
    return float(p.stdout)


WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(out):
    """wrk --latency output -> {rps, p99_ms, errors, requests}, or None
    without a Requests/sec line.  errors adds non-2xx/3xx answers, socket
    errors and post.lua's "fanout-not-ok" count."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        return None
    p99 = float("nan")
    m = re.search(r"^\s+99(?:\.000)?%\s+([\d.]+)(us|ms|s|m|h)\b", out, re.M)
    if m:
        p99 = float(m.group(1)) * WRK_UNITS[m.group(2)]
    errors = 0
    for pat in (r"Non-2xx or 3xx responses:\s+(\d+)",
                r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                r"timeout (\d+)",
                r"fanout-not-ok:\s+(\d+)"):
        m = re.search(pat, out)
        if m:
            errors += sum(int(x) for x in m.groups())
    total = re.search(r"(\d+) requests in", out)
    return {"rps": float(rps.group(1)), "p99_ms": p99, "errors": errors,
            "requests": int(total.group(1)) if total else 0}


def run_wrk(url, seconds, connections=64, script=None, env=None):
    """wrk -t1 -cC -dSs --latency [-s script] url, parsed (see parse_wrk)."""
    argv = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds,
            "--latency"]
    if script:
        argv += ["-s", script]
    p = subprocess.run(argv + [url], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT,
                       env=dict(os.environ, **(env or {})))
    out = p.stdout.decode(errors="replace")
    parsed = parse_wrk(out)
    if parsed is None:
        log("wrk: no Requests/sec in its output:\n" + out)
    return parsed


# Results and the Markdown table.

OPS = {">=": lambda v, b: v >= b, "<=": lambda v, b: v <= b,
       "<": lambda v, b: v < b, ">": lambda v, b: v > b}


def fmt(v):
    if v is None:
        return "—"
    if v != v:
        return "nan"  # wrk printed no p99
    a = abs(v)
    if v == int(v) and a < 1e6:
        return "{:,d}".format(int(v))
    if a >= 1000:
        return "{:,.0f}".format(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


class Results:
    """Measurements as (scenario, contender, metric) -> values, one value
    per recorded repetition, in the order keys first appear; also written
    to a TSV file as they come (kept with the scratch directory)."""

    def __init__(self, tsv):
        self.data = collections.OrderedDict()
        self.tsv = tsv
        open(tsv, "w").close()

    def add(self, scen, cont, metric, value):
        self.data.setdefault((scen, cont, metric), []).append(float(value))
        with open(self.tsv, "a") as f:
            f.write("%s\t%s\t%s\t%.10g\n" % (scen, cont, metric, value))

    def table(self, targets, ratios, out=sys.stdout):
        """Print the Markdown table and the targets line; returns the
        number of failed targets.

        Each row shows the median and the min-max spread and, where
        targets (scenario, contender, metric as fnmatch patterns, op,
        bound, text) set one, the target and PASS/FAIL judged on the
        median.  The metric "correct" holds 1 or 0 per repetition and
        passes only when every repetition answered completely and
        correctly.  ratios (scenario, contender, metric, numerator key,
        denominator key) are derived rows: a median over a median, shown
        after the numerator's row."""
        derived = collections.defaultdict(list)
        for scen, cont, metric, num, den in ratios:
            if self.data.get(num) and self.data.get(den):
                d = statistics.median(self.data[den])
                if d > 0:
                    derived[num].append(
                        ((scen, cont, metric),
                         [statistics.median(self.data[num]) / d]))
        print("| scenario | contender | metric | median | spread (min–max) "
              "| target | result |", file=out)
        print("|---|---|---|---:|---:|---|---|", file=out)
        npass = nfail = 0
        for key, values in self.data.items():
            for k, v in [(key, values)] + derived.get(key, []):
                text, passed = _row(k, v, targets)
                print(text, file=out)
                npass += passed is True
                nfail += passed is False
        print(file=out)
        print("Targets: %d passed, %d failed." % (npass, nfail), file=out)
        return nfail


def _target_for(key, targets):
    for s, c, m, op, bound, text in targets:
        if (fnmatch.fnmatchcase(key[0], s) and fnmatch.fnmatchcase(key[1], c)
                and fnmatch.fnmatchcase(key[2], m)):
            return op, bound, text
    return None


def _row(key, values, targets):
    """One table line for key; returns (text, passed or None)."""
    scen, cont, metric = key
    if metric == "correct":
        good = sum(1 for v in values if v == 1)
        ok = bool(values) and good == len(values)
        return ("| %s | %s | answers complete and correct | %d/%d | | all "
                "| %s |" % (scen, cont, good, len(values),
                            "PASS" if ok else "FAIL"), ok)
    med = statistics.median(values) if values else None
    spread = ""
    if len(values) > 1:
        spread = "%s–%s" % (fmt(min(values)), fmt(max(values)))
    t = _target_for(key, targets)
    verdict, passed, ttext = "", None, ""
    if t is not None:
        op, bound, ttext = t
        passed = med is not None and OPS[op](med, bound)
        verdict = "PASS" if passed else "FAIL"
    return ("| %s | %s | %s | %s | %s | %s | %s |"
            % (scen, cont, metric, fmt(med), spread, ttext, verdict), passed)

"""scripts/fanout, the client for shell scripts, against the real daemon.

The script runs as a subprocess (every run with a timeout) with a clean
environment: no FANOUT_* variables and no proxies.  URLs come from
arguments, files and stdin; the table and --json outputs are checked
against the upstream's answers; the exit status is 0 when every URL is
ok, 1 when one failed and 2 when the daemon is down or answers an error.
The JSON tool is jq when installed; the same checks run again with
FANOUT_JSON_TOOL=python3, the fallback.
"""

import json
import os
import shutil
import stat
import subprocess
import time

import harness as h
from harness import check, eq

RUN_TIMEOUT = 30
TOKEN = "s3cr3t-t0ken"
ODD_PATH = "/status/299?a=1&b='q\"x'&c=%41;d"  # status 299: ok


def script():
    path = os.path.join(h.env("FANOUTD_SRCDIR"), "scripts", "fanout")
    check(os.path.isfile(path), f"{path} is missing")
    if shutil.which("curl") is None:
        raise h.Skip("curl is not installed")
    return path


def clean_env(server, extra=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FANOUT_") and "proxy" not in k.lower()}
    env["FANOUT_SERVER"] = server
    env.update(extra or {})
    return env


def server_of(d):
    return f"http://{h.hostport(d.host, d.port)}"


class Run:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout.decode(errors="replace")
        self.err = p.stderr.decode(errors="replace")

    def __repr__(self):
        return f"<exit {self.rc} stdout {self.out[-600:]!r} stderr {self.err[-600:]!r}>"


def fanout(*args, server=None, stdin=b"", env=None):
    """scripts/fanout ARGS against server (the shared daemon by default)."""
    if server is None:
        server = server_of(h.daemon())
    if isinstance(stdin, str):
        stdin = stdin.encode()
    p = subprocess.run(["bash", script(), *args], input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=clean_env(server, env), timeout=RUN_TIMEOUT)
    return Run(p)


def table(run):
    """(rows, summary): rows as [url, status, total_ms, error]."""
    lines = run.out.splitlines()
    check(len(lines) >= 2, f"no table: {run!r}")
    eq(lines[0].split(), ["URL", "STATUS", "TOTAL_MS", "ERROR"], "header")
    rows = [line.split() for line in lines[1:-1]]
    for row in rows:
        eq(len(row), 4, f"columns of {row!r}")
        float(row[2])
    # The columns are aligned: every STATUS starts where the header's does.
    col = lines[0].index("STATUS")
    for line in lines[1:-1]:
        check(line[col - 2:col] == "  " and line[col] != " ",
              f"STATUS column not aligned in {run.out!r}")
    return rows, lines[-1]


def summary_line(ok, failed):
    return f"{ok} ok, {failed} failed, elapsed "


def tools():
    """The JSON tools to test: jq when installed, and python3."""
    out = ["python3"]
    if shutil.which("jq"):
        out.insert(0, "jq")
    return out


def write(name, text):
    path = h.tmpfile(name)
    with open(path, "w", newline="") as f:
        f.write(text)
    return path


def test_fanout_help():
    r = fanout("--help")
    eq(r.rc, 0, f"exit status {r!r}")
    for word in ("usage: fanout", "--server", "--token", "--timeout", "--json"):
        check(word in r.out, f"--help lacks {word!r}: {r.out!r}")


def test_fanout_urls_from_args():
    u = h.upstream()
    for tool in tools():
        u.reset_hits()
        urls = [u.url("/status/200"), u.url("/status/204"), u.url(ODD_PATH)]
        r = fanout(*urls, env={"FANOUT_JSON_TOOL": tool})
        eq(r.rc, 0, f"{tool}: exit status {r!r}")
        rows, summary = table(r)
        eq([row[0] for row in rows], urls, f"{tool}: URL column")
        eq([row[1] for row in rows], ["200", "204", "299"], f"{tool}: STATUS")
        eq([row[3] for row in rows], ["-", "-", "-"], f"{tool}: ERROR")
        check(summary.startswith(summary_line(3, 0)) and summary.endswith(" ms"),
              f"{tool}: summary {summary!r}")
        last = u.last("/status/299")
        check(last is not None and last["uri"] == ODD_PATH,
              f"{tool}: the odd URL arrived as {last!r}")
        eq(r.err, "", f"{tool}: stderr")


def test_fanout_urls_from_file():
    u = h.upstream()
    urls = [u.url("/status/200"), u.url("/status/201"), u.url("/delay/10")]
    text = ("# health checks\n\n"
            f"  {urls[0]}\r\n"
            "   \n"
            f"{urls[1]}\t\n"
            "#" + u.url("/status/500") + "\n"
            f"{urls[2]}")  # no newline at the end
    path = write("urls", text)
    for tool in tools():
        r = fanout(path, env={"FANOUT_JSON_TOOL": tool})
        eq(r.rc, 0, f"{tool}: exit status {r!r}")
        rows, summary = table(r)
        eq([row[0] for row in rows], urls, f"{tool}: URL column")
        eq([row[1] for row in rows], ["200", "201", "200"], f"{tool}: STATUS")
        check(summary.startswith(summary_line(3, 0)), f"summary {summary!r}")
        # The same file with --timeout goes as JSON, built by the script.
        r = fanout("--json", "--timeout", "5000", path,
                   env={"FANOUT_JSON_TOOL": tool})
        eq(r.rc, 0, f"{tool} --timeout: exit status {r!r}")
        eq([x["url"] for x in json.loads(r.out)["results"]], urls,
           f"{tool} --timeout: URLs")


def test_fanout_urls_from_stdin():
    u = h.upstream()
    urls = [u.url("/status/200"), u.url("/status/202")]
    for tool in tools():
        env = {"FANOUT_JSON_TOOL": tool}
        r = fanout(stdin="\n".join(urls) + "\n", env=env)
        eq(r.rc, 0, f"{tool}: exit status {r!r}")
        rows, _ = table(r)
        eq([row[0] for row in rows], urls, f"{tool}: URL column")
        eq([row[1] for row in rows], ["200", "202"], f"{tool}: STATUS")
        # "-" among other sources: read in place, order kept.
        first, last = u.url("/status/203"), u.url("/status/206")
        path = write("urls", last + "\n")
        r = fanout("--json", first, "-", path, stdin="\n".join(urls), env=env)
        eq(r.rc, 0, f"{tool} with -: exit status {r!r}")
        eq([x["url"] for x in json.loads(r.out)["results"]],
           [first] + urls + [last], f"{tool} with -: URLs in order")


def test_fanout_json_output():
    u = h.upstream()
    urls = [u.url("/status/200"), u.url("/bytes/7"), u.url(ODD_PATH)]
    r = fanout("--json", *urls)
    eq(r.rc, 0, f"exit status {r!r}")
    try:
        doc = json.loads(r.out)
    except ValueError as e:
        raise AssertionError(f"--json output is not JSON ({e}): {r.out[:300]!r}")
    direct = h.daemon().fetch_ok(urls)
    for answer in (doc, direct):
        eq([x["url"] for x in answer["results"]], urls, "result URLs")
    for key in ("status", "ok", "error", "bytes", "index"):
        eq([x[key] for x in doc["results"]], [x[key] for x in direct["results"]],
           f"results' {key} against a direct POST")
    eq(doc["summary"]["ok"], 3, "summary.ok")
    eq(doc["summary"]["failed"], 0, "summary.failed")
    eq(doc["results"][1]["bytes"], 7, "bytes of /bytes/7")


def test_fanout_exit_1_when_a_url_fails():
    u = h.upstream()
    closed = f"http://127.0.0.1:{h.free_port()}/"
    urls = [u.url("/status/200"), u.url("/status/500"), closed]
    for tool in tools():
        r = fanout(*urls, env={"FANOUT_JSON_TOOL": tool})
        eq(r.rc, 1, f"{tool}: exit status {r!r}")
        rows, summary = table(r)
        eq([row[0] for row in rows], urls, f"{tool}: URL column")
        eq([row[1] for row in rows], ["200", "500", "-"], f"{tool}: STATUS")
        eq([row[3] for row in rows], ["-", "-", "connect"], f"{tool}: ERROR")
        check(summary.startswith(summary_line(1, 2)), f"summary {summary!r}")
        r = fanout("--json", *urls, env={"FANOUT_JSON_TOOL": tool})
        eq(r.rc, 1, f"{tool} --json: exit status {r!r}")
        eq(json.loads(r.out)["summary"]["failed"], 2, f"{tool}: summary.failed")


def test_fanout_exit_2_when_the_daemon_is_down():
    u = h.upstream()
    server = f"http://127.0.0.1:{h.free_port()}"
    for args in ((u.url("/status/200"),),
                 ("--json", u.url("/status/200"))):
        r = fanout("--server", server, *args,
                   server="http://127.0.0.1:1")  # --server wins over the env
        eq(r.rc, 2, f"exit status {r!r}")
        eq(r.out, "", "stdout")
        check(server in r.err, f"stderr does not name the server: {r.err!r}")


def test_fanout_usage_errors():
    u = h.upstream()
    missing = os.path.join(h.tmpdir(), "no-such-file")
    for args in (("--bogus",), (missing,), ("--timeout", "soon", u.url("/")),
                 ("--timeout", "0", u.url("/")), ("--timeout",)):
        r = fanout(*args)
        eq(r.rc, 2, f"fanout {' '.join(args)}: exit status {r!r}")
        check("usage" in r.err, f"fanout {' '.join(args)}: stderr {r.err!r}")


def test_fanout_daemon_error_is_reported():
    u = h.upstream()
    d = h.daemon({"limits": {"max_urls": 1}})
    r = fanout(u.url("/status/200"), u.url("/status/201"), server=server_of(d))
    eq(r.rc, 2, f"exit status {r!r}")
    eq(r.out, "", "stdout")
    check("413" in r.err and "too_many_urls" in r.err,
          f"the daemon's error is not on stderr: {r.err!r}")


def curl_recorder():
    """A directory with a `curl` that logs its argv, then runs the real one."""
    real = shutil.which("curl")
    bindir = os.path.join(h.tmpdir(), "curl-recorder")
    os.makedirs(bindir, exist_ok=True)
    log = os.path.join(bindir, "argv.log")
    wrapper = os.path.join(bindir, "curl")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\n"
                f"printf '%s\\n' \"$@\" >>'{log}'\n"
                f"exec '{real}' \"$@\"\n")
    os.chmod(wrapper, stat.S_IRWXU)
    return bindir, log


def test_fanout_token():
    u = h.upstream()
    d = h.daemon({"security": {"auth_token": TOKEN}})
    server = server_of(d)
    url = u.url("/status/200")

    r = fanout(url, server=server)
    eq(r.rc, 2, f"no token: exit status {r!r}")
    check("401" in r.err and "unauthorized" in r.err, f"no token: {r.err!r}")

    r = fanout("--token", "wrong", url, server=server)
    eq(r.rc, 2, f"wrong token: exit status {r!r}")
    check("unauthorized" in r.err, f"wrong token: {r.err!r}")
    check("wrong" not in r.err.replace("wrong bearer", ""),
          f"the token is echoed: {r.err!r}")

    bindir, log = curl_recorder()
    path = bindir + os.pathsep + os.environ.get("PATH", "")
    r = fanout("--token", TOKEN, url, server=server, env={"PATH": path})
    eq(r.rc, 0, f"--token: exit status {r!r}")
    r = fanout(url, server=server,
               env={"PATH": path, "FANOUT_TOKEN": TOKEN})
    eq(r.rc, 0, f"FANOUT_TOKEN: exit status {r!r}")
    with open(log) as f:
        argv = f.read()
    check("/fetch" in argv, f"the recorder did not run curl: {argv!r}")
    check(TOKEN not in argv, f"the token is on curl's command line: {argv!r}")


def test_fanout_no_urls_is_exit_2():
    """Zero URLs (after blank lines and comments) is exit 2 with a message,
    and the daemon is never asked: `... | fanout - && deploy` must not
    deploy on an empty list."""
    bindir, log = curl_recorder()
    path = bindir + os.pathsep + os.environ.get("PATH", "")
    empty = write("empty", "")
    comments = write("comments", "# staging only\n\n   \r\n\t# x\n")
    cases = [(("-",), b""), ((), b""), ((empty,), b""), ((comments,), b""),
             (("-",), b"\n# only a comment\n  \n"),
             (("--timeout", "100", "-"), b""), (("--json", empty), b"")]
    for tool in tools():
        for args, stdin in cases:
            if os.path.exists(log):
                os.unlink(log)
            r = fanout(*args, stdin=stdin,
                       env={"PATH": path, "FANOUT_JSON_TOOL": tool})
            what = f"{tool} {args} stdin {stdin!r}"
            eq(r.rc, 2, f"{what}: exit status {r!r}")
            eq(r.out, "", f"{what}: stdout")
            check("no URLs" in r.err, f"{what}: stderr {r.err!r}")
            check(not os.path.exists(log), f"{what}: curl was run")
    # The pipeline of the README, with a list file that does not exist.
    missing = os.path.join(h.tmpdir(), "missing.txt")
    p = subprocess.run(
        ["bash", "-c", 'grep -v staging "$1" | bash "$2" - && echo deployed',
         "bash", missing, script()], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=clean_env(server_of(h.daemon())), timeout=RUN_TIMEOUT)
    eq(p.returncode, 2, f"exit status of the pipeline ({p.stderr!r})")
    check(b"deployed" not in p.stdout, f"deployed: {p.stdout!r}")


def test_fanout_timeout():
    u = h.upstream()
    for tool in tools():
        start = time.monotonic()
        r = fanout("--timeout", "200", u.url("/hang"), u.url("/status/200"),
                   env={"FANOUT_JSON_TOOL": tool})
        elapsed = time.monotonic() - start
        eq(r.rc, 1, f"{tool}: exit status {r!r}")
        rows, summary = table(r)
        eq(rows[0][0], u.url("/hang"), f"{tool}: first URL")
        eq(rows[0][1], "-", f"{tool}: status of /hang")
        eq(rows[0][3], "timeout", f"{tool}: error of /hang")
        check(150 <= float(rows[0][2]) < 3000,
              f"{tool}: /hang took {rows[0][2]} ms with --timeout 200")
        eq(rows[1][1], "200", f"{tool}: the other URL")
        check(summary.startswith(summary_line(1, 1)), f"summary {summary!r}")
        # The daemon's default fetch.timeout_ms is 10 s; 200 ms applied.
        check(elapsed < 5, f"{tool}: fanout took {elapsed:.1f}s")

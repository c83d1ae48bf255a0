"""scripts/fanout, the client for shell scripts, against the real daemon.

The script runs as a subprocess (every run with a timeout) with a clean
environment: no FANOUT_* variables and no proxies.  URLs come from
arguments, files and stdin; the table and --json outputs are checked
against the upstream's answers; the exit status is 0 when every URL is
ok, 1 when one failed and 2 when the daemon is down or answers an error.
The JSON tool is jq when installed; the same checks run again with
FANOUT_JSON_TOOL=python3, the fallback.
"""

import base64
import json
import os
import shutil
import stat
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
    for word in ("usage: fanout", "--server", "--token", "--timeout", "--json",
                 "--verbose", "--expect-status", "--expect-body", "--module",
                 "--method", "--header", "--data", "--retries", "Retry-After"):
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


# --- the options of issue 11 against a fake daemon ---------------------------
#
# The daemon does not know every field the client sends yet, so these tests
# run the client against FakeDaemon: a Python HTTP server on a loopback port
# of its own that records each request and answers from a list of canned
# replies.  They check the exact JSON the client sent, and what it makes of
# the answers; the real daemon is the one for what it already does.

# Strings that break naive JSON building: quotes, backslashes, line breaks,
# a tab, non-ASCII, a value that looks like an option, shell syntax.
TRICKY = 'say "hi" \\ back\\slash\nline 2\ttab é ☃ 😀 {"status":"ok"}'
DASHES = "--x"
SHELLY = "$HOME `id` $(echo no) '\"'"


class FakeDaemon:
    """A stand-in for fanoutd that records what it receives.

    replies: (status, headers, body) answered in turn, the last one again
    once the list runs out.  Each request is recorded as a dict: method,
    path, headers (names in lower case), body (bytes), json (parsed, or
    None) and t (time.monotonic() on arrival)."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                fake.serve(self)

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def server(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, handler):
        t = time.monotonic()
        n = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(n)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        with self.lock:
            self.requests.append({
                "method": handler.command, "path": handler.path,
                "headers": {k.lower(): v for k, v in handler.headers.items()},
                "body": body, "json": doc, "t": t})
            i = min(len(self.requests), len(self.replies)) - 1
            status, headers, reply = self.replies[i]
        if not isinstance(reply, bytes):
            reply = json.dumps(reply).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(reply)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(reply)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def only_request(self, what):
        eq(len(self.requests), 1, f"{what}: requests received")
        r = self.requests[0]
        eq((r["method"], r["path"]), ("POST", "/fetch"), f"{what}: request line")
        eq(r["headers"].get("accept"), "application/json", f"{what}: Accept")
        return r

    def sent_json(self, what):
        """The one request's JSON body, checking its Content-Type."""
        r = self.only_request(what)
        eq(r["headers"].get("content-type"), "application/json",
           f"{what}: Content-Type")
        check(r["json"] is not None, f"{what}: the body is not JSON: {r['body']!r}")
        return r["json"]


def result(url, status=200, ok=True, error=None, total=1.25, **more):
    r = {"url": url, "index": 0, "ok": ok, "status": status, "error": error,
         "bytes": 0, "time_ms": {"total": total}}
    r.update(more)
    return r


def answer(results):
    ok = sum(1 for r in results if r["ok"])
    for i, r in enumerate(results):
        r["index"] = i
    return {"results": results,
            "summary": {"ok": ok, "failed": len(results) - ok,
                        "error_counts": {}, "elapsed_ms": 3.4}}


URL_A = "http://a.example/health"
URL_B = "http://b.example/health"
ALL_OK = (200, {}, answer([result(URL_A), result(URL_B)]))


def fake_run(replies, *args, stdin=b"", env=None):
    """(run, fake): fanout ARGS against a fresh FakeDaemon."""
    with FakeDaemon(replies) as fake:
        r = fanout(*args, server=fake.server, stdin=stdin, env=env)
    return r, fake


def test_fanout_fake_plain_request_unchanged():
    """Without a request field the URLs go as text/plain, exactly as before;
    --timeout alone gives {"urls", "timeout_ms"}."""
    for tool in tools():
        env = {"FANOUT_JSON_TOOL": tool}
        r, fake = fake_run([ALL_OK], URL_A, "-", stdin=URL_B + "\n", env=env)
        eq(r.rc, 0, f"{tool}: exit status {r!r}")
        req = fake.only_request(tool)
        eq(req["headers"].get("content-type"), "text/plain", f"{tool}: Content-Type")
        eq(req["body"], f"{URL_A}\n{URL_B}\n".encode(), f"{tool}: body")
        r, fake = fake_run([ALL_OK], "--timeout", "0750", URL_A, URL_B, env=env)
        eq(r.rc, 0, f"{tool} --timeout: exit status {r!r}")
        eq(fake.sent_json(tool), {"urls": [URL_A, URL_B], "timeout_ms": 750},
           f"{tool} --timeout: request")


def test_fanout_fake_every_option():
    """Every new option, with strings that break naive JSON building, gives
    exactly the request fields of the API."""
    args = ["--expect-status", " 200, 2XX,300-399", "--expect-status=404",
            "--expect-body", '"status":"ok"', "--expect-body", TRICKY,
            "--expect-body", DASHES, "--expect-body=" + SHELLY,
            "--module", TRICKY, "--method", "PATCH",
            "-H", 'X-Quote: say "hi" \\ back ',
            "--header", "X-Utf8:é ☃",
            "-H", "X-Colons:  a:b: c",
            "--header=X-Empty:",
            "-H", "x-quote: replaced",  # the same name: the last one wins
            "-H", "X-Dash: " + DASHES,
            "--data", TRICKY, "--retries", "3", "--timeout", "1500",
            URL_A, URL_B]
    want = {"urls": [URL_A, URL_B], "timeout_ms": 1500,
            "expect": {"status": [200, "2xx", "300-399", 404],
                       "body_contains": ['"status":"ok"', TRICKY, DASHES,
                                         SHELLY]},
            "module": TRICKY, "method": "PATCH",
            "headers": {"X-Utf8": "é ☃", "X-Colons": "a:b: c", "X-Empty": "",
                        "x-quote": "replaced", "X-Dash": DASHES},
            "body": TRICKY, "retries": 3}
    for tool in tools():
        r, fake = fake_run([ALL_OK], *args, env={"FANOUT_JSON_TOOL": tool})
        eq(r.rc, 0, f"{tool}: exit status {r!r}")
        eq(fake.sent_json(tool), want, f"{tool}: request")
        # One field at a time, in its --name=value form too.
        for extra, fields in (
                (["--module=" + DASHES], {"module": DASHES}),
                (["--method=HEAD"], {"method": "HEAD"}),
                (["--retries=0"], {"retries": 0}),
                (["--expect-status", "2xx"], {"expect": {"status": ["2xx"]}}),
                (["--expect-body", "é"], {"expect": {"body_contains": ["é"]}}),
                (["--data="], {"body": ""}),
                (["--data", SHELLY], {"body": SHELLY}),
                (["-H", "A: 1", "-H", "B: 2"], {"headers": {"A": "1", "B": "2"}})):
            r, fake = fake_run([ALL_OK], *extra, URL_A,
                               env={"FANOUT_JSON_TOOL": tool})
            eq(r.rc, 0, f"{tool} {extra}: exit status {r!r}")
            eq(fake.sent_json(f"{tool} {extra}"), dict({"urls": [URL_A]}, **fields),
               f"{tool} {extra}: request")


def test_fanout_fake_data_files():
    """--data @FILE sends the file's bytes unchanged: as "body" when they are
    UTF-8 text without NUL, else as "body_base64"."""
    text = '\ufeff{"a": "é\\"\\\\"}\r\nline\n\n'.encode()
    binary = bytes(range(256))
    cases = [(text, "body", text.decode()),
             (b"", "body", ""),
             (binary, "body_base64", base64.b64encode(binary).decode()),
             (b"abc\0def", "body_base64", base64.b64encode(b"abc\0def").decode()),
             (b"caf\xe9", "body_base64", base64.b64encode(b"caf\xe9").decode()),
             (b"\xed\xa0\x80", "body_base64", "7aCA"),  # a UTF-16 surrogate
             ]
    for tool in tools():
        env = {"FANOUT_JSON_TOOL": tool}
        for data, key, value in cases:
            path = h.tmpfile("data")
            with open(path, "wb") as f:
                f.write(data)
            r, fake = fake_run([ALL_OK], "--data", "@" + path, URL_A, env=env)
            eq(r.rc, 0, f"{tool} {data[:20]!r}: exit status {r!r}")
            eq(fake.sent_json(tool), {"urls": [URL_A], key: value},
               f"{tool} {data[:20]!r}: request")
        # @- is stdin, when the URLs come from elsewhere.
        r, fake = fake_run([ALL_OK], "--data", "@-", URL_A, stdin=text, env=env)
        eq(r.rc, 0, f"{tool} @-: exit status {r!r}")
        eq(fake.sent_json(tool), {"urls": [URL_A], "body": text.decode()},
           f"{tool} @-: request")
        # A string argument that is not UTF-8 goes as base64 too.
        r, fake = fake_run([ALL_OK], b"--data", b"\xff\xfe", URL_A, env=env)
        eq(r.rc, 0, f"{tool} bytes: exit status {r!r}")
        eq(fake.sent_json(tool), {"urls": [URL_A], "body_base64": "//4="},
           f"{tool} bytes: request")


def test_fanout_fake_usage_errors():
    """Bad values are exit 2 with a message naming the option, and the
    daemon is never asked."""
    nofile = os.path.join(h.tmpdir(), "no-such-body")
    cases = [
        (["--expect-status", "abc"], "--expect-status"),
        (["--expect-status", "200,"], "--expect-status"),
        (["--expect-status", ",200"], "--expect-status"),
        (["--expect-status", "200,,300"], "--expect-status"),
        (["--expect-status", ""], "--expect-status"),
        (["--expect-status", "99"], "--expect-status"),
        (["--expect-status", "1000"], "--expect-status"),
        (["--expect-status", "099"], "--expect-status"),
        (["--expect-status", "2xxx"], "--expect-status"),
        (["--expect-status", "0xx"], "--expect-status"),
        (["--expect-status", "299-200"], "--expect-status"),
        (["--expect-status", "200-2xx"], "--expect-status"),
        (["--expect-status", "200 300"], "--expect-status"),
        (["--expect-status", "200\n"], "--expect-status"),
        (["--expect-status"], "--expect-status"),
        (["-H", "X-No-Colon"], "-H"),
        (["--header", ": value"], "-H"),
        (["-H", "Bad Name: value"], "-H"),
        (["-H", "X-A: one\r\nX-B: two"], "-H"),
        (["-H"], "-H"),
        (["--retries", "many"], "--retries"),
        (["--retries", "-1"], "--retries"),
        (["--module", ""], "--module"),
        (["--method", ""], "--method"),
        (["--expect-body", ""], "--expect-body"),
        ([b"--expect-body", b"\xff"], "--expect-body"),
        ([b"--module", b"caf\xe9"], "--module"),
        (["--data", "@" + nofile], "--data"),
        (["--data", "@" + h.tmpdir()], "--data"),
        (["--data", "@-", "-"], "--data"),
        (["--data", "@-"], "--data"),  # the URLs from stdin by default
    ]
    for tool in tools():
        for args, option in cases:
            urls = [] if args[-1] in ("-", "@-") else [URL_A]
            if args in (["--expect-status"], ["-H"]):
                urls = []
            r, fake = fake_run([ALL_OK], *args, *urls, stdin=URL_B + "\n",
                               env={"FANOUT_JSON_TOOL": tool})
            what = f"{tool} {args!r}"
            eq(r.rc, 2, f"{what}: exit status {r!r}")
            eq(r.out, "", f"{what}: stdout")
            check(option in r.err, f"{what}: stderr does not name {option}: {r.err!r}")
            eq(fake.requests, [], f"{what}: the daemon was asked")


VERBOSE_RESULTS = [
    result(URL_A, 301, ok=False, total=12.34,
           error={"code": "check_failed", "message": "status 301 not in [2xx]"},
           failed_checks=[
               {"check": "status", "expected": ["2xx"], "actual": 301.0},
               {"check": "body_contains", "expected": '"status":"ok"'},
               {"check": "headers", "expected": {"X-Env": "^prod$"},
                "actual": "staging é"},
               {"check": "max_ms", "expected": 200, "actual": 12.5}]),
    result(URL_B, total=2),
    result("http://c.example/", None, ok=False, total=0.5,
           error={"code": "connect",
                  "message": "connect: Connection refused\n(port 1)"}),
    result("http://d.example/", 500, ok=False, total=7),
]

VERBOSE_TABLE = """\
URL                      STATUS  TOTAL_MS  ERROR
http://a.example/health  301         12.3  check_failed
    status 301 not in [2xx]
    check status: expected ["2xx"], actual 301
    check body_contains: expected "\\"status\\":\\"ok\\""
    check headers: expected {"X-Env":"^prod$"}, actual "staging é"
    check max_ms: expected 200, actual 12.5
http://b.example/health  200          2.0  -
http://c.example/        -            0.5  connect
    connect: Connection refused (port 1)
http://d.example/        500          7.0  -
1 ok, 3 failed, elapsed 3 ms
"""


def test_fanout_fake_verbose():
    """--verbose puts each failed URL's message and failed checks under its
    row; without it the table is the plain one."""
    reply = (200, {}, answer(VERBOSE_RESULTS))
    plain = "".join(line + "\n" for line in VERBOSE_TABLE.splitlines()
                    if not line.startswith("    "))
    for tool in tools():
        env = {"FANOUT_JSON_TOOL": tool}
        r, _ = fake_run([reply], "--verbose", URL_A, env=env)
        eq(r.rc, 1, f"{tool} --verbose: exit status {r!r}")
        eq(r.out, VERBOSE_TABLE, f"{tool} --verbose: output")
        r, _ = fake_run([reply], URL_A, env=env)
        eq(r.rc, 1, f"{tool}: exit status {r!r}")
        eq(r.out, plain, f"{tool}: output without --verbose")
        r, _ = fake_run([reply], "--verbose", "--json", URL_A, env=env)
        eq(json.loads(r.out), reply[2], f"{tool} --verbose --json: output")


OVERLOADED = {"error": {"code": "overloaded", "message": "queue full, try later"}}


def test_fanout_fake_503_is_retried_once():
    """A 503 is retried once, after Retry-After seconds; stderr says so."""
    for tool, after in (("jq", 2), ("python3", 1)):
        if tool not in tools():
            continue
        replies = [(503, {"Retry-After": str(after)}, OVERLOADED), ALL_OK]
        r, fake = fake_run(replies, "--expect-status", "2xx", URL_A, URL_B,
                           env={"FANOUT_JSON_TOOL": tool})
        eq(r.rc, 0, f"{tool}: exit status {r!r}")
        eq(len(fake.requests), 2, f"{tool}: requests")
        first, second = fake.requests
        eq(second["body"], first["body"], f"{tool}: the retry's body")
        eq(second["json"]["expect"], {"status": ["2xx"]}, f"{tool}: the retry's body")
        gap = second["t"] - first["t"]
        check(after - 0.2 <= gap < 5, f"{tool}: retried after {gap:.2f}s, "
              f"Retry-After {after}")
        check("503" in r.err and "retrying" in r.err and
              "queue full, try later" in r.err and f"{after} s" in r.err,
              f"{tool}: stderr {r.err!r}")
        table(r)


def sleep_recorder():
    """A directory with a `sleep` that logs its argument and returns."""
    bindir = os.path.join(h.tmpdir(), "sleep-recorder")
    os.makedirs(bindir, exist_ok=True)
    log = os.path.join(bindir, "sleep.log")
    with open(os.path.join(bindir, "sleep"), "w") as f:
        f.write(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >>'{log}'\n")
    os.chmod(os.path.join(bindir, "sleep"), stat.S_IRWXU)
    return bindir, log


def test_fanout_fake_retry_after_bounds():
    """The wait is Retry-After's seconds, 1 without it or for a date, and at
    most 30 (a `sleep` on PATH records it)."""
    bindir, log = sleep_recorder()
    path = bindir + os.pathsep + os.environ.get("PATH", "")
    cases = [({}, "1"), ({"Retry-After": "0"}, "0"), ({"Retry-After": "7"}, "7"),
             ({"Retry-After": "30"}, "30"), ({"Retry-After": "31"}, "30"),
             ({"Retry-After": "99999999999999999999"}, "30"),
             ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, "1"),
             ({"Retry-After": "-5"}, "1")]
    for tool in tools():
        for headers, want in cases:
            if os.path.exists(log):
                os.unlink(log)
            r, fake = fake_run([(503, headers, OVERLOADED), ALL_OK], URL_A,
                               env={"FANOUT_JSON_TOOL": tool, "PATH": path})
            what = f"{tool} {headers}"
            eq(r.rc, 0, f"{what}: exit status {r!r}")
            eq(len(fake.requests), 2, f"{what}: requests")
            with open(log) as f:
                eq(f.read(), want + "\n", f"{what}: sleep's argument")


def test_fanout_fake_double_503_is_exit_2():
    """A second 503 is exit 2 with the daemon's message; no third try."""
    reply = (503, {"Retry-After": "0"}, OVERLOADED)
    for tool in tools():
        for args in ((URL_A,), ("--json", URL_A)):
            r, fake = fake_run([reply], *args, env={"FANOUT_JSON_TOOL": tool})
            eq(r.rc, 2, f"{tool} {args}: exit status {r!r}")
            eq(r.out, "", f"{tool} {args}: stdout")
            eq(len(fake.requests), 2, f"{tool} {args}: requests")
            last = r.err.strip().splitlines()[-1]
            check("503" in last and "overloaded: queue full, try later" in last,
                  f"{tool} {args}: the last stderr line {last!r}")
    # A 503 that is not fanoutd's JSON is reported as such.
    r, fake = fake_run([(503, {"Retry-After": "0"}, b"busy")], URL_A)
    eq(r.rc, 2, f"plain 503: exit status {r!r}")
    eq(len(fake.requests), 2, "plain 503: requests")
    check("HTTP 503" in r.err, f"plain 503: stderr {r.err!r}")


# --- the options the real daemon already understands ------------------------

def test_fanout_method_and_headers():
    """--method and -H reach the upstream through the real daemon."""
    u = h.upstream()
    value = 'say "hi" \\ back'
    for tool in tools():
        u.reset_hits()
        r = fanout("--method", "HEAD", "-H", "X-Probe: " + value,
                   "--header=X-Other:two", u.url("/status/204"),
                   env={"FANOUT_JSON_TOOL": tool})
        eq(r.rc, 0, f"{tool}: exit status {r!r}")
        rows, _ = table(r)
        eq(rows[0][1], "204", f"{tool}: status")
        hit = u.last("/status/204")
        check(hit is not None, f"{tool}: the upstream was not asked")
        eq(hit["method"], "HEAD", f"{tool}: method")
        got = {k.lower(): v for k, v in hit["headers"].items()}
        eq(got.get("x-probe"), value, f"{tool}: X-Probe")
        eq(got.get("x-other"), "two", f"{tool}: X-Other")


def test_fanout_verbose_real_daemon():
    """--verbose shows the daemon's error message under the failed row."""
    u = h.upstream()
    closed = f"http://127.0.0.1:{h.free_port()}/"
    urls = [u.url("/status/200"), closed]
    doc = json.loads(fanout("--json", *urls).out)
    message = doc["results"][1]["error"]["message"]
    check(message, "the daemon gave no message for a closed port")
    for tool in tools():
        r = fanout("--verbose", *urls, env={"FANOUT_JSON_TOOL": tool})
        eq(r.rc, 1, f"{tool}: exit status {r!r}")
        lines = r.out.splitlines()
        eq(len(lines), 5, f"{tool}: lines of {r.out!r}")
        eq(lines[2].split()[0::3], [closed, "connect"], f"{tool}: the failed row")
        eq(lines[3], "    " + " ".join(message.split("\n")),
           f"{tool}: the message line")

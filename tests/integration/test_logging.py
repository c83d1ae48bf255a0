"""Log line prefixes: where stderr is not the journal every line starts
with an RFC 3339 UTC time in milliseconds; in the journal it starts with
<N> and no time (journald stamps lines itself).  stderr is the journal only
when JOURNAL_STREAM names its device:inode, as systemd.exec(5) documents:
a process whose stderr was redirected still inherits the variable.
"""

import datetime
import json
import os
import re
import signal
import socket
import subprocess
import time

import harness as h
from harness import check, eq
from test_service import JOURNAL_SELF, ServiceDaemon, access_lines, clean_env

STAMPED = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z "
                     r"fanoutd: (error|warn|info|debug): \S")
# A zone far from UTC: a local time would be off by hours.
FAR_ZONE = "XYZ-9:30"
SLACK = 0.02  # the stamp is cut to milliseconds


def stamp_of(line):
    """The UTC time of a stamped line, as seconds since the epoch."""
    m = STAMPED.match(line)
    check(m is not None, f"a line without 'TIME fanoutd: LEVEL: ': {line!r}")
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def test_log_utc_millisecond_stamps_outside_the_journal():
    u = h.upstream()
    started = time.time()
    with ServiceDaemon(env={"TZ": FAR_ZONE}) as d:
        d.process.new_stderr()  # past the start-up lines
        spans = []
        for path in ("/status/200", "/delay/120", "/status/503"):
            before = time.time()
            d.fetch_ok([u.url(path)])
            spans.append((before, time.time()))
        text = d.process.new_stderr()
        lines = access_lines(text)
        eq(len(lines), 3, f"access lines: {text[-600:]!r}")
        for (before, after), line in zip(spans, lines):
            at = stamp_of(line["_line"])
            check(before - SLACK <= at <= after + SLACK,
                  f"{line['_line'][:24]} is not between the request's "
                  f"start and end ({before:.3f}..{after:.3f}, "
                  f"stamp {at:.3f})")
        d.signal(signal.SIGTERM)
        eq(d.wait_exit(), 0, "exit status")
        ended = time.time()
        text = d.process.stderr()
    lines = text.splitlines()
    check(len(lines) >= 5, f"too few lines: {text!r}")
    for line in lines:
        at = stamp_of(line)
        check(started - SLACK <= at <= ended + SLACK,
              f"stamp outside the daemon's life: {line!r}")
    check(not re.search(r"^<\d>", text, re.M), "<N> outside the journal")


def run_failing_start(journal_stream, stderr_path):
    """Start fanoutd on a port that is taken, so it logs one error and
    exits 1; its stderr goes to stderr_path.  journal_stream: the value of
    JOURNAL_STREAM (None: unset, JOURNAL_SELF: stderr's own dev:ino)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        conf = h.tmpfile("conf")
        with open(conf, "w") as f:
            f.write(h.render_config({"listen": {
                "address": "127.0.0.1", "port": taken.getsockname()[1]}}))
        env = clean_env({"TZ": FAR_ZONE})
        with open(stderr_path, "ab") as err:
            if journal_stream == JOURNAL_SELF:
                st = os.fstat(err.fileno())
                journal_stream = f"{st.st_dev}:{st.st_ino}"
            if journal_stream is not None:
                env["JOURNAL_STREAM"] = journal_stream
            p = subprocess.run([h.env("FANOUTD_BIN"), "-c", conf],
                               stdin=subprocess.DEVNULL, stdout=err,
                               stderr=err, env=env, timeout=30)
    eq(p.returncode, 1, "exit status on a taken port")
    with open(stderr_path, errors="replace") as f:
        return f.read()


def test_log_journal_only_when_journal_stream_names_stderr():
    other = h.tmpfile("other")
    st = os.stat(other)
    cases = [
        (None, "unset"),
        (f"{st.st_dev}:{st.st_ino}", "another file's dev:ino"),
        ("", "empty"), ("garbage", "not numbers"), ("8", "no inode"),
        ("8:", "empty inode"), (":8", "empty device"),
        ("8:4242x", "trailing junk"), ("-1:5", "negative"),
        ("99999999999999999999999:1", "device out of range"),
    ]
    for value, what in cases:
        path = h.tmpfile("stderr")
        text = run_failing_start(value, path)
        lines = text.splitlines()
        check(lines, f"JOURNAL_STREAM {what}: nothing logged")
        for line in lines:
            m = STAMPED.match(line)
            check(m is not None and m.group(2) == "error",
                  f"JOURNAL_STREAM {what} ({value!r}): not a stamped error "
                  f"line: {line!r}")
    # The same file, one inode off: still not the journal.
    path = h.tmpfile("stderr")
    st = os.stat(path)
    text = run_failing_start(f"{st.st_dev}:{st.st_ino + 1}", path)
    check(STAMPED.match(text), f"inode off by one: {text!r}")
    text = run_failing_start(f"{st.st_dev + 1}:{st.st_ino}", path)
    check(all(STAMPED.match(l) for l in text.splitlines()),
          f"device off by one: {text!r}")
    # stderr's own dev:ino: the journal, <3> and no time.
    path = h.tmpfile("stderr")
    text = run_failing_start(JOURNAL_SELF, path)
    lines = text.splitlines()
    check(lines, "nothing logged into the journal")
    for line in lines:
        check(re.match(r"<3>\S", line), f"journal line: {line!r}")
        check(not re.search(r"\d{4}-\d\d-\d\dT\d\d:", line),
              f"a time in a journal line: {line!r}")


def test_debug_logs_one_line_per_fetch():
    """log.level = "debug": one line per fetch with the request's id, the
    item's URL (escaped), its outcome and its phases; none at info."""
    u = h.upstream()
    refused = f"http://127.0.0.1:{h.free_port()}/"
    items = [u.url("/status/503?dbg"), refused, "http://\x01bad/"]
    with h.run_daemon({"log": {"level": "debug"}}) as d:
        r = d.request("POST", "/fetch", body=json.dumps(items).encode(),
                      headers={"Content-Type": "application/json",
                               "X-Request-Id": "dbg-1"})
        eq(r.status, 200, "the fan-out")
        lines = h.wait_for(lambda: [
            ln for ln in d.process.stderr().splitlines()
            if " fetch id=dbg-1 " in ln] if d.process.stderr().count(
                " fetch id=dbg-1 ") >= 3 else None, 5, "three fetch lines")
        by_index = {int(re.search(r" index=(\d+) ", ln).group(1)): ln
                    for ln in lines}
        eq(sorted(by_index), [0, 1, 2], "indexes logged")
        first = by_index[0]
        for word in (f"url={u.url('/status/503?dbg')} ", "status=503 ",
                     "error=- ", "attempts=1 ", "remote_ip=127.0.0.1 ",
                     "total_ms="):
            check(word in first, f"{word!r} not in {first!r}")
        for phase in ("queue", "dns", "connect", "tls", "ttfb", "transfer"):
            check(f" {phase}_ms=" in first, f"{phase} not in {first!r}")
        check("error=connect " in by_index[1] and "status=0 " in by_index[1],
              f"refused: {by_index[1]!r}")
        check("url=http://\\x01bad/ " in by_index[2] and
              "error=invalid_url " in by_index[2],
              f"control byte escaped: {by_index[2]!r}")
    with h.run_daemon({"log": {"level": "info"}}) as d:
        d.fetch_ok([u.url("/status/200?info")])
        check(" fetch id=" not in d.process.stderr(),
              "fetch lines at info level")

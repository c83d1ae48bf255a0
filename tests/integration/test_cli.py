"""The command line: -t config checks, --version, --help.

Config errors are data: a config text and what the message must name.
"""

import os
import re
import signal
import subprocess
import time

import harness as h
from harness import check, eq

RUN_TIMEOUT = 10


def run(*args):
    """fanoutd ARGS with a hard timeout; (exit status, stdout + stderr)."""
    p = subprocess.run([h.env("FANOUTD_BIN"), *args], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=RUN_TIMEOUT)
    return p.returncode, p.stdout.decode(errors="replace")


def run_split(*args, timeout=RUN_TIMEOUT):
    """fanoutd ARGS; (exit status, stdout, stderr) kept apart."""
    p = subprocess.run([h.env("FANOUTD_BIN"), *args], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return (p.returncode, p.stdout.decode(errors="replace"),
            p.stderr.decode(errors="replace"))


def write_config(text):
    path = h.tmpfile("conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def no_sanitizer_report(out):
    for mark in h.SANITIZER_MARKS:
        check(mark not in out, f"sanitizer report: {out[:1000]}")


FULL_CONFIG = """\
# every key, with its default
listen   = { address = "127.0.0.1"; port = 8080; };
workers  = { threads = 256; queue_limit = 10000; };
limits   = { max_urls = 1000; max_request_bytes = 1048576;
             max_response_bytes = 1048576; };
fetch    = { timeout_ms = 10000; connect_timeout_ms = 3000;
             follow_redirects = true; max_redirects = 5;
             user_agent = "fanoutd/test"; verify_tls = true; };
security = { auth_token = ""; allow_clients = [ "127.0.0.0/8", "::1/128" ];
             deny_targets = [ "169.254.0.0/16", "fe80::/10",
                              "fd00:ec2::254/128" ]; };
log      = { level = "info"; access_log = true; };
"""


def test_version():
    rc, out = run("--version")
    eq(rc, 0, f"exit status ({out})")
    check(re.search(r"\d+\.\d+", out), f"no version number in {out!r}")
    no_sanitizer_report(out)


def test_help():
    rc, out = run("--help")
    eq(rc, 0, f"exit status ({out})")
    check("-c" in out and "-t" in out, f"--help does not list -c and -t: {out!r}")
    no_sanitizer_report(out)


def test_unknown_option():
    rc, out = run("--no-such-option")
    check(rc != 0, f"exit status 0 for an unknown option ({out})")


def test_check_full_config():
    rc, out = run("-t", "-c", write_config(FULL_CONFIG))
    eq(rc, 0, f"exit status of -t ({out})")
    no_sanitizer_report(out)


def test_check_empty_config():
    rc, out = run("-t", "-c", write_config("# defaults only\n"))
    eq(rc, 0, f"exit status of -t ({out})")


def test_check_shipped_config():
    path = os.path.join(h.env("FANOUTD_SRCDIR"), "conf", "fanoutd.conf")
    check(os.path.exists(path), f"{path} is missing")
    rc, out = run("-t", "-c", path)
    eq(rc, 0, f"exit status of -t ({out})")


def test_check_good_modules():
    path = write_config('modules = (\n'
                        '  { name = "http_2xx"; expect = { status = [ "2xx" ]; };'
                        ' timeout_ms = 5000; },\n'
                        '  { name = "version"; capture = 200;'
                        ' capture_headers = [ "Server" ]; }\n);\n')
    rc, out = run("-t", "-c", path)
    eq(rc, 0, f"-t of good modules: {out}")


def test_check_missing_file():
    path = os.path.join(h.tmpdir(), "no-such.conf")
    rc, out = run("-t", "-c", path)
    check(rc != 0, "exit status 0 for a missing file")
    check(path in out, f"message does not name {path}: {out!r}")


def test_broken_config_refuses_to_start():
    path = write_config("workers = { threads = 0; };\n")
    rc, out = run("-c", path)
    check(rc != 0, f"started with a broken config ({out})")
    check(f"{path}:1" in out, f"message lacks {path}:1: {out!r}")


def test_config_errors_one_per_line():
    """-t and start-up print each error on a line of its own, the last
    one ended by a newline too."""
    path = write_config('workers = { threads = 0; };\n# c\n'
                        'fetch = { bogus = 1; };\n')
    for args in (["-t", "-c", path], ["-c", path]):
        rc, out, err = run_split(*args)
        check(rc != 0, f"{args}: exit status 0 for a broken config")
        eq(out, "", f"{args}: stdout")
        check(err.endswith("\n"), f"{args}: stderr lacks its last newline: "
                                  f"{err!r}")
        lines = err[:-1].split("\n")
        eq(len(lines), 2, f"{args}: error lines in {err!r}")
        check(lines[0].startswith(f"{path}:1: ") and "threads" in lines[0],
              f"{args}: first line {lines[0]!r}")
        check(lines[1].startswith(f"{path}:3: ") and "bogus" in lines[1],
              f"{args}: second line {lines[1]!r}")


def test_missing_config_error_ends_with_newline():
    path = os.path.join(h.tmpdir(), "no-such.conf")
    rc, _, err = run_split("-t", "-c", path)
    check(rc != 0, "exit status 0 for a missing file")
    eq(err, f"{path}: cannot read: No such file or directory\n", "stderr")


# A FIFO blocks open() until a writer comes: it must be refused at once.
FIFO_TIMEOUT = 5


def make_fifo(stem):
    path = h.tmpfile(stem)
    os.unlink(path)
    os.mkfifo(path, 0o600)
    return path


def fails_fast(args, words):
    start = time.monotonic()
    try:
        rc, out, err = run_split(*args, timeout=FIFO_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"fanoutd {' '.join(args)} still ran after "
                             f"{FIFO_TIMEOUT}s: it blocked on the FIFO")
    check(rc != 0, f"exit status 0 ({out!r} {err!r})")
    check(time.monotonic() - start < 2, "took over 2s to refuse a FIFO")
    for w in words:
        check(w in err, f"stderr lacks {w!r}: {err!r}")
    no_sanitizer_report(err)


def test_check_fifo_config_fails_fast():
    fifo = make_fifo("conf-fifo")
    fails_fast(["-t", "-c", fifo],
               [f"{fifo}: cannot read: not a regular file"])


def test_check_fifo_token_file_fails_fast():
    fifo = make_fifo("token-fifo")
    path = write_config(
        f'security = {{\n  auth_token_file = "{fifo}";\n}};\n')
    fails_fast(["-t", "-c", path],
               [f"{path}:2: security.auth_token_file:",
                f'"{fifo}": not a regular file'])


def test_reload_from_fifo_keeps_serving():
    """SIGHUP with the config file replaced by a FIFO: the reload fails
    and is logged, and the loop never blocks on the FIFO."""
    with h.run_daemon() as d:
        os.unlink(d.config_path)
        os.mkfifo(d.config_path, 0o600)
        os.kill(d.process.pid, signal.SIGHUP)
        h.wait_for(lambda: "not a regular file" in d.process.stderr(),
                   FIFO_TIMEOUT, "the reload error in the log")
        r = d.request("GET", "/healthz", timeout=1)
        eq(r.status, 200, "/healthz after a reload from a FIFO")
        err = d.process.stderr()
        check("keeping the running config" in err,
              f"no 'keeping the running config' line: {err[-600:]!r}")
        check(f"{d.config_path}: cannot read: not a regular file (a FIFO)"
              in err, f"reload error: {err[-600:]!r}")


# scripts/lib.sh ensure_packages with a fake apt-get (and sudo) first on
# PATH and the policy-rc.d path pointed into the test's directory.
FAKE_APT = """#!/bin/sh
# update: fine.  install: log whether the policy is in place, then
# behave as FAKE_APT_MODE says.
[ "$1" = update ] && exit 0
if [ -x "$FANOUTD_POLICY_RC" ] && ! "$FANOUTD_POLICY_RC" start; then
    echo "policy in place" >>"$FAKE_APT_LOG"
fi
case $FAKE_APT_MODE in
fail) exit 100 ;;
term) kill -TERM $PPID; exit 0 ;;
esac
exit 0
"""


def ensure_packages(mode, policy_text=None):
    """(exit status, output, apt log, policy path) of ensure_packages on a
    package that is surely missing, then `echo after`."""
    d = h.tmpfile("fakebin")
    os.unlink(d)
    os.mkdir(d)
    for name, text in (("apt-get", FAKE_APT),
                       ("sudo", '#!/bin/sh\nexec "$@"\n')):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(d, name), 0o755)
    policy = os.path.join(d, "policy-rc.d")
    if policy_text is not None:
        with open(policy, "w") as f:
            f.write(policy_text)
    log = os.path.join(d, "apt.log")
    lib = os.path.join(h.env("FANOUTD_SRCDIR"), "scripts", "lib.sh")
    env = dict(os.environ, PATH=d + ":" + os.environ["PATH"],
               FANOUTD_POLICY_RC=policy, FAKE_APT_LOG=log,
               FAKE_APT_MODE=mode)
    p = subprocess.run(
        ["bash", "-c", 'source "$1"; ensure_packages fanoutd-no-such-pkg-x; '
         'echo after', "bash", lib], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
        timeout=RUN_TIMEOUT)
    apt = open(log).read() if os.path.exists(log) else ""
    return p.returncode, p.stdout.decode(errors="replace"), apt, policy


def test_policy_rc_removed_after_failed_install():
    rc, out, apt, policy = ensure_packages("fail")
    eq(apt, "policy in place\n", f"the install ran without the policy ({out})")
    eq(rc, 100, f"exit status: set -e must stop at the failed install ({out})")
    check("after" not in out, f"ran on after a failed install: {out!r}")
    check(not os.path.lexists(policy),
          "policy-rc.d left behind: apt would never start a service again")


def test_policy_rc_removed_after_signal():
    rc, out, apt, policy = ensure_packages("term")
    eq(apt, "policy in place\n", f"the install ran without the policy ({out})")
    check(rc != 0 and "after" not in out,
          f"ran on after the install was killed (status {rc}): {out!r}")
    check(not os.path.lexists(policy), "policy-rc.d left behind on SIGTERM")


def test_policy_rc_removed_after_install():
    rc, out, apt, policy = ensure_packages("ok")
    eq(apt, "policy in place\n", f"the install ran without the policy ({out})")
    eq(rc, 0, f"exit status ({out})")
    check(out.rstrip().endswith("after"), f"output: {out!r}")
    check(not os.path.lexists(policy), "policy-rc.d left behind")


def test_policy_rc_of_someone_else_kept():
    mine = "#!/bin/sh\n# the admin's\nexit 0\n"
    rc, out, _, policy = ensure_packages("fail", policy_text=mine)
    check(rc != 0, f"exit status 0 after a failed install ({out})")
    with open(policy) as f:
        eq(f.read(), mine, "a policy-rc.d that was there before")


# Each: config text, the line of the error, words the message must hold.
SCENARIOS = [
    dict(name="check_wrong_type",
         text='# c\nlisten = { port = "80"; };\n', line=2, words=["port"]),
    dict(name="check_out_of_range",
         text='workers = { threads = 0; };\n', line=1, words=["threads"]),
    dict(name="check_port_out_of_range",
         text='\n\nlisten = { port = 70000; };\n', line=3, words=["port"]),
    dict(name="check_unknown_key",
         text='fetch = {\n timeout_ms = 100;\n bogus = 1;\n};\n', line=3,
         words=["bogus"]),
    dict(name="check_unknown_group",
         text='# c\n# c\nnonsense = { a = 1; };\n', line=3,
         words=["nonsense"]),
    dict(name="check_syntax_error",
         text='# c\nlimits = { max_urls = ; };\n', line=2, words=[]),
    dict(name="check_bad_log_level",
         text='log = { level = "loud"; };\n', line=1, words=["level"]),
    dict(name="check_bad_cidr",
         text='security = {\n deny_targets = [ "10.0.0.0/33" ];\n};\n',
         line=2, words=["deny_targets"]),
    dict(name="check_bool_as_string",
         text='fetch = { follow_redirects = "yes"; };\n', line=1,
         words=["follow_redirects"]),
    dict(name="check_max_urls_over_queue_limit",
         text='workers = { queue_limit = 10; };\nlimits = { max_urls = 20; };\n',
         line=None, words=["max_urls"]),
    # Modules are checked at load by the code that checks a request, so a
    # bad one is refused by -t, at start-up and on reload, not per request.
    dict(name="check_module_bad_regex",
         text='modules = (\n  { name = "m"; expect = { body_regex = "("; }; }\n);\n',
         line=2, words=["modules", "m", "body_regex"]),
    dict(name="check_module_bad_field_each_reported",
         text='modules = (\n  { name = "a"; retries = 9; },\n'
              '  { name = "b"; method = "BREW"; }\n);\n',
         line=[2, 3], words=["a", "retries", "b", "method"]),
    dict(name="check_module_body_on_head",
         text='modules = (\n  { name = "h"; method = "HEAD"; body = "x"; }\n);\n',
         line=2, words=["h", "body"]),
    dict(name="check_every_error_reported",
         text='workers = { threads = 0; };\n# c\nfetch = { bogus = 1; };\n',
         line=[1, 3], words=["threads", "bogus"]),
]


def scenario(s):
    path = write_config(s["text"])
    rc, out = run("-t", "-c", path)
    check(rc != 0, f"exit status 0 for a broken config ({out!r})")
    no_sanitizer_report(out)
    lines = s["line"] if isinstance(s["line"], list) else [s["line"]]
    for line in lines:
        where = f"{path}:{line}" if line is not None else f"{path}:"
        check(where in out, f"message lacks {where!r}: {out!r}")
    for word in s["words"]:
        check(word in out, f"message lacks {word!r}: {out!r}")


def test_port_zero_and_port_file():
    """listen.port = 0: the kernel picks a port, the start-up line names
    it, and --port-file gets it (written whole, then renamed)."""
    path = write_config('listen = { address = "127.0.0.1"; port = 0; };\n')
    port_file = os.path.join(h.tmpdir(), "fanoutd.port")
    p = h.Process([h.env("FANOUTD_BIN"), "-c", path, "--port-file",
                   port_file], "fanoutd")
    try:
        port = h.wait_for(lambda: os.path.exists(port_file) and
                          int(open(port_file).read()), 10, "the port file")
        check(0 < port < 65536, f"port {port}")
        eq(h.http_request("127.0.0.1", port, "GET", "/healthz",
                          timeout=5).status, 200, "/healthz on that port")
        check(f"listening on 127.0.0.1 port {port}," in p.stderr(),
              f"start-up line: {p.stderr()}")
        check(not os.path.exists(port_file + ".tmp"), "the .tmp is left")
    finally:
        p.stop()


def test_port_file_that_cannot_be_written():
    path = write_config('listen = { address = "127.0.0.1"; port = 0; };\n')
    bad = os.path.join(h.tmpdir(), "no-such-dir", "port")
    rc, out = run("-c", path, "--port-file", bad)
    check(rc != 0, f"started without its port file: {out}")
    check("--port-file" in out and "no-such-dir" in out, out)

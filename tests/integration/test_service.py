"""fanoutd as a service: the systemd units, the notify protocol, socket
activation, SIGHUP reloads, graceful stops, log lines, /metrics and
make install.

The units are checked with the tools systemd ships (`systemd-analyze verify`
and `security --offline`), which work without systemd as PID 1; the notify
protocol runs against a fake NOTIFY_SOCKET (an AF_UNIX datagram socket in
a temp dir); socket activation through `systemd-socket-activate`.  /metrics
is validated by promtool (Debian's prometheus package).  A tool that is
missing fails its test: scripts/lib.sh installs them.

Every daemon here is private to its test: it is started with its own
environment (NOTIFY_SOCKET, JOURNAL_STREAM, LISTEN_FDS) and often stopped
by the test itself, by PID.
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import harness as h
from harness import check, eq

CMD_TIMEOUT = 60
NOTIFY_TIMEOUT = 10.0
EXIT_TIMEOUT = 5.0

# Log everything a test may look for.
SERVICE_CONFIG = {"log": {"level": "info", "access_log": True}}
# Variables a service manager sets; a test sets the ones it wants.
MANAGER_VARS = ("NOTIFY_SOCKET", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID",
                "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID")


# ---------------------------------------------------------------- fixtures

def srcpath(*parts):
    return os.path.join(h.env("FANOUTD_SRCDIR"), *parts)


def tool(name, package):
    """The path of a tool that scripts/lib.sh must install."""
    path = shutil.which(name)
    if path is None:
        for d in ("/usr/sbin", "/sbin", "/usr/bin"):
            if os.access(os.path.join(d, name), os.X_OK):
                path = os.path.join(d, name)
                break
    check(path is not None,
          f"{name} is not installed: scripts/lib.sh must install Debian's "
          f"{package} package")
    return path


def run_cmd(argv, timeout=CMD_TIMEOUT, env=None, stdin=None):
    """argv with a hard timeout: (status, stdout, stderr)."""
    try:
        p = subprocess.run(argv, input=stdin, capture_output=True,
                           timeout=timeout, env=env,
                           stdin=None if stdin is not None
                           else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{shlex.join(argv)} ran over {timeout}s")
    return (p.returncode, p.stdout.decode(errors="replace"),
            p.stderr.decode(errors="replace"))


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in MANAGER_VARS}
    env.update(extra or {})
    return env


# JOURNAL_STREAM=JOURNAL_SELF: the device:inode of the process's own
# stderr file, as systemd sets it when stderr is the journal.
JOURNAL_SELF = "<stderr>"


class EnvProcess(h.Process):
    """harness.Process with an environment of its own."""

    def __init__(self, argv, name, env):
        self.name = name
        self.argv = argv
        self.stderr_path = h.tmpfile(name + "-stderr")
        self.stderr_seen = 0
        with open(self.stderr_path, "wb") as err:
            if env.get("JOURNAL_STREAM") == JOURNAL_SELF:
                st = os.fstat(err.fileno())
                env = dict(env, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, env=env)
        self.stopped = False
        h._live.append(self)


class NotifySocket:
    """A fake NOTIFY_SOCKET: receives what systemd's manager would."""

    def __init__(self):
        d = tempfile.mkdtemp(prefix="notify-", dir=h.tmpdir())
        self.path = os.path.join(d, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.received = []  # every datagram so far, in order

    def expect(self, state, timeout=NOTIFY_TIMEOUT, process=None):
        """The datagrams up to and including the first holding the line
        state (e.g. "READY=1"); fails early when process dies."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no {state} on NOTIFY_SOCKET within {timeout}s; "
                    f"received {got!r}")
            self.sock.settimeout(min(left, 0.1))
            try:
                msg = self.sock.recv(4096).decode(errors="replace")
            except socket.timeout:
                if process is not None and not process.alive():
                    raise AssertionError(
                        f"fanoutd {h.describe_exit(process.proc.returncode)} "
                        f"before {state}; received {got!r}: "
                        f"{process.stderr()[-600:]}")
                continue
            got.append(msg)
            self.received.append(msg)
            if state in msg.split("\n"):
                return got

    def drain(self):
        """Datagrams waiting now, without blocking."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(self.sock.recv(4096).decode(errors="replace"))
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        self.received += out
        return out

    def close(self):
        self.sock.close()


def states(messages):
    """["READY=1", "RELOADING=1\\nX=1"] -> ["READY=1", "RELOADING=1", "X=1"]"""
    return [line for m in messages for line in m.split("\n") if line]


class ServiceDaemon(h.Daemon):
    """fanoutd started as a service manager would: a clean environment
    plus env, optionally with a fake NOTIFY_SOCKET (ready on READY=1) or
    behind systemd-socket-activate (the config's own port is another
    one).  config is a dict merged over SERVICE_CONFIG, or a function
    port -> config text."""

    def __init__(self, config=None, env=None, notify=None, activate=False,
                 attempts=5):
        self.host = "127.0.0.1"
        self.notify = notify
        self.config = config
        full_env = clean_env(env)
        if notify is not None:
            full_env["NOTIFY_SOCKET"] = notify.path
        problem = None
        for _ in range(attempts):
            self.port = h.free_port()
            self.listen_port = self.port
            if activate:
                while self.listen_port == self.port:
                    self.listen_port = h.free_port()
            self.config_path = h.tmpfile("fanoutd-conf")
            self.write_config(config)
            argv = [h.env("FANOUTD_BIN"), "-c", self.config_path]
            if activate:
                argv = [tool("systemd-socket-activate", "systemd"), "-l",
                        f"127.0.0.1:{self.port}"] + argv
            self.process = EnvProcess(argv, "fanoutd", full_env)
            try:
                self._wait_ready()
                h._private.add(self)
                return
            except AssertionError as e:
                problem = e
                err = self.process.stderr()
                self.process.stop()
                if "in use" not in err.lower():
                    raise AssertionError(f"fanoutd did not start: {e}; "
                                         f"stderr: {err[-800:]}")
        raise AssertionError(f"fanoutd did not start on {attempts} ports: "
                             f"{problem}")

    def write_config(self, config):
        """(Re)write the config file; the listen port stays."""
        if callable(config):
            text = config(self.listen_port)
        else:
            text = h.render_config(h.merge(
                h.merge(SERVICE_CONFIG, config),
                {"listen": {"address": self.host, "port": self.listen_port}}))
        with open(self.config_path, "w") as f:
            f.write(text)

    def _wait_ready(self):
        if self.notify is None:
            h.wait_for(self._healthy, h.START_TIMEOUT, "GET /healthz")
            return
        got = self.notify.expect("READY=1", h.START_TIMEOUT, self.process)
        eq(states(got), ["READY=1"], "notifications before READY=1")
        # READY=1 means listening: /healthz answers at once, no polling.
        try:
            r = self.request("GET", "/healthz", timeout=2)
        except OSError as e:
            raise AssertionError(f"/healthz right after READY=1: {e}")
        eq(r.status, 200, "/healthz right after READY=1")

    def signal(self, sig):
        os.kill(self.process.pid, sig)

    def reload(self, what="reload"):
        """SIGHUP, and wait for RELOADING=1 then READY=1."""
        check(self.notify is not None, "reload() needs a NotifySocket")
        self.signal(signal.SIGHUP)
        got = self.notify.expect("READY=1", NOTIFY_TIMEOUT, self.process)
        eq(states(got), ["RELOADING=1", "READY=1"],
           f"notifications on SIGHUP ({what})")

    def wait_exit(self, timeout=EXIT_TIMEOUT):
        """The daemon was told to stop: its exit status, after at most
        timeout seconds; it then counts as stopped."""
        try:
            rc = self.process.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"fanoutd still running {timeout}s after "
                                 "the signal")
        finally:
            self.process.stopped = self.process.proc.poll() is not None
            if self.process.stopped and self.process in h._live:
                h._live.remove(self.process)
        return rc


class Endpoint(h.Daemon):
    """The request helpers of harness.Daemon for a server started
    elsewhere."""

    def __init__(self, host, port):
        self.host, self.port = host, port


def access_lines(text):
    """The access-log lines of stderr text, as dicts of their fields."""
    out = []
    for line in text.splitlines():
        i = line.find("access client=")
        if i >= 0:
            fields = dict(re.findall(r"(\w+)=(\S*)", line[i:]))
            fields["_line"] = line
            out.append(fields)
    return out


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)$")


def parse_metrics(text):
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m is not None, f"/metrics: not a sample line: {line!r}")
        out[m.group(1)] = float(m.group(2))
    return out


def get_metrics(d, headers=None):
    r = d.request("GET", "/metrics", headers=headers)
    eq(r.status, 200, f"GET /metrics status ({r.text[:200]!r})")
    return r, parse_metrics(r.text)


def fetch_thread(d, payload, headers=None):
    """POST /fetch on a thread; returns (thread, outcome dict)."""
    outcome = {}

    def body():
        try:
            hdrs = {"Content-Type": "application/json"}
            hdrs.update(headers or {})
            outcome["r"] = d.request("POST", "/fetch", json.dumps(payload),
                                     hdrs, timeout=15)
        except Exception as e:  # noqa: B902 - reported by the test
            outcome["e"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, outcome


def children(pid):
    """PIDs whose parent is pid."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(entry))
    return out


def stop_pids(pids, timeout=5.0):
    """SIGTERM, a bounded wait, SIGKILL: for processes that are not our
    children (strace's), so that none outlives its test."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def refused(host, port):
    """True when a TCP connect is refused."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


# ------------------------------------------------------------ systemd units

def unit_lines(text):
    """[(section, key, value)] of a unit file, repeated keys kept."""
    out, section = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def unit_values(lines, section, key):
    return [v for s, k, v in lines if s == section and k == key]


def make_units():
    """The units as make substitutes them, with real paths: sbindir is the
    built binary's directory, sysconfdir a temp dir with a copy of
    conf/fanoutd.conf.  Returns the directory holding both units."""
    binary = os.path.abspath(h.env("FANOUTD_BIN"))
    eq(os.path.basename(binary), "fanoutd", "FANOUTD_BIN's name")
    d = tempfile.mkdtemp(prefix="units-", dir=h.tmpdir())
    etc = os.path.join(d, "etc")
    os.mkdir(etc)
    shutil.copy(srcpath("conf", "fanoutd.conf"),
                os.path.join(etc, "fanoutd.conf"))
    with open(srcpath("systemd", "fanoutd.service.in")) as f:
        text = f.read()
    text = (text.replace("@sbindir@", os.path.dirname(binary))
            .replace("@sysconfdir@", etc))
    left = re.findall(r"@\w+@", text)
    check(not left, f"fanoutd.service.in: placeholders make does not "
                    f"substitute: {left}")
    with open(os.path.join(d, "fanoutd.service"), "w") as f:
        f.write(text)
    shutil.copy(srcpath("systemd", "fanoutd.socket"),
                os.path.join(d, "fanoutd.socket"))
    return d


def test_unit_verify_clean():
    analyze = tool("systemd-analyze", "systemd")
    d = make_units()
    units = [os.path.join(d, name)
             for name in ("fanoutd.socket", "fanoutd.service")]
    env = clean_env()
    args = [analyze, "verify"]
    if shutil.which("man"):
        # Documentation=man:... is checked against the man pages of the tree.
        mandir = os.path.join(d, "man")
        for sec, page in (("8", "fanoutd.8"), ("5", "fanoutd.conf.5")):
            src = srcpath("man", page)
            check(os.path.isfile(src), f"man/{page} is missing")
            os.makedirs(os.path.join(mandir, "man" + sec), exist_ok=True)
            shutil.copy(src, os.path.join(mandir, "man" + sec, page))
        env["MANPATH"] = mandir
    else:
        args.append("--man=no")
    rc, out, err = run_cmd(args + units, env=env)
    lines = [l for l in (out + err).splitlines() if l.strip()]
    about = [l for l in lines if "fanoutd" in l or d in l]
    check(not about, f"systemd-analyze verify: {about}")
    eq(rc, 0, f"systemd-analyze verify status (output {lines[:10]})")
    # The check the unit runs before starting works with real paths.
    with open(units[1]) as f:
        lines = unit_lines(f.read())
    pre = unit_values(lines, "Service", "ExecStartPre")
    eq(len(pre), 1, "ExecStartPre lines")
    rc, out, err = run_cmd(shlex.split(pre[0]))
    eq(rc, 0, f"ExecStartPre {pre[0]!r}: {out}{err}")


def test_unit_security_exposure():
    analyze = tool("systemd-analyze", "systemd")
    d = make_units()
    rc, out, err = run_cmd([analyze, "security", "--offline=true",
                            "--no-pager", os.path.join(d, "fanoutd.service")])
    m = re.search(r"Overall exposure level for fanoutd\.service:\s*"
                  r"([0-9]+\.[0-9]+)", out + err)
    check(m is not None, f"no exposure level in: {(out + err)[-600:]}")
    level = float(m.group(1))
    check(level <= 1.5, f"exposure {level} > 1.5; the ✗ lines: " + "; ".join(
        l.strip() for l in out.splitlines() if l.lstrip().startswith("✗")))
    eq(rc, 0, f"systemd-analyze security status: {err[-300:]}")


def test_unit_keeps_the_service_working():
    """What the hardening must leave: the unit cannot run here, so check
    the lines that would break it."""
    with open(os.path.join(make_units(), "fanoutd.service")) as f:
        lines = unit_lines(f.read())
    eq(unit_values(lines, "Service", "Type"), ["notify"], "Type=")
    # A reload checks the file before it signals: systemd stops at the
    # first ExecReload= that fails, so a broken file fails the reload and
    # the daemon keeps its config (the nspawn test proves it for real).
    reload = unit_values(lines, "Service", "ExecReload")
    eq(len(reload), 2, f"ExecReload= lines: {reload}")
    eq(reload[0], unit_values(lines, "Service", "ExecStartPre")[0],
       "the first ExecReload= is not the ExecStartPre= check")
    check("-t" in shlex.split(reload[0]), f"ExecReload= {reload[0]!r}")
    check("HUP" in reload[1] and "$MAINPID" in reload[1],
          f"the last ExecReload= does not send SIGHUP: {reload[1]!r}")
    families = " ".join(unit_values(lines, "Service",
                                    "RestrictAddressFamilies")).split()
    for fam in ("AF_INET", "AF_INET6", "AF_UNIX"):
        check(fam in families, f"RestrictAddressFamilies lacks {fam}: "
                               f"{families}")
    check("yes" not in unit_values(lines, "Service", "PrivateNetwork"),
          "PrivateNetwork=yes cuts the daemon off the network")
    deny = " ".join(unit_values(lines, "Service", "IPAddressDeny")).split()
    allow = unit_values(lines, "Service", "IPAddressAllow")
    check("any" not in deny or allow,
          "IPAddressDeny=any without IPAddressAllow= blocks every fetch")
    filters = unit_values(lines, "Service", "SystemCallFilter")
    check(filters and "@system-service" in filters[0].split(),
          f"SystemCallFilter does not start from @system-service: {filters}")
    check(unit_values(lines, "Service", "LimitNOFILE"), "no LimitNOFILE")
    with open(srcpath("systemd", "fanoutd.socket")) as f:
        sock = unit_lines(f.read())
    check(unit_values(sock, "Socket", "ListenStream"),
          "fanoutd.socket has no ListenStream")


def syscall_group(analyze, name, seen):
    """The syscalls of a systemd-analyze syscall-filter group, recursively."""
    if name in seen:
        return set()
    seen.add(name)
    rc, out, err = run_cmd([analyze, "syscall-filter", "--no-pager", name])
    eq(rc, 0, f"systemd-analyze syscall-filter {name}: {err}")
    names = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            names |= syscall_group(analyze, line, seen)
        else:
            names.add(line)
    return names


def sanitized(binary):
    with open(binary, "rb") as f:
        data = f.read()
    return any(m in data for m in (b"__asan_init", b"__tsan_init",
                                   b"__ubsan_handle"))


def test_unit_syscall_filter_allows_the_daemon():
    """Every system call and socket family the daemon uses under a real
    workload (fetches, a host name, TLS, a reload, a stop) passes the
    unit's SystemCallFilter= and RestrictAddressFamilies=."""
    analyze = tool("systemd-analyze", "systemd")
    strace = tool("strace", "strace")
    if sanitized(h.env("FANOUTD_BIN")):
        raise h.Skip("a sanitizer build makes calls the unit's binary "
                     "does not")
    with open(os.path.join(make_units(), "fanoutd.service")) as f:
        lines = unit_lines(f.read())
    allowed, denied = set(), set()
    for value in unit_values(lines, "Service", "SystemCallFilter"):
        deny = value.startswith("~")
        for name in value.lstrip("~").split():
            group = (syscall_group(analyze, name, set())
                     if name.startswith("@") else {name})
            (denied if deny else allowed).update(group)
    allowed -= denied
    families = set(" ".join(unit_values(lines, "Service",
                                        "RestrictAddressFamilies")).split())

    u = h.upstream()
    trace = h.tmpfile("strace")
    config = h.render_config(h.merge(SERVICE_CONFIG, {
        "listen": {"address": "127.0.0.1", "port": h.free_port()}}))
    conf = h.tmpfile("conf")
    with open(conf, "w") as f:
        f.write(config)
    notify = NotifySocket()
    proc = EnvProcess([strace, "-f", "-qq", "-o", trace, h.env("FANOUTD_BIN"),
                       "-c", conf], "strace-fanoutd",
                      clean_env({"NOTIFY_SOCKET": notify.path}))
    kids = []
    try:
        notify.expect("READY=1", 20, proc)
        kids = children(proc.pid)  # signals go to fanoutd, not strace
        eq(len(kids), 1, "strace's children")
        port = int(re.search(r"port = (\d+);", config).group(1))
        d = Endpoint("127.0.0.1", port)
        hp = f"localhost:{u.port}"
        urls = [u.url("/status/200"), f"http://{hp}/delay/10",
                f"https://127.0.0.1:{u.port}/", u.url("/redirects/2"),
                u.url("/bytes/200000")]
        ans = d.fetch_ok(urls, timeout=20)
        eq([r["status"] for r in ans["results"]], [200, 200, None, 200, 200],
           "statuses under strace")
        get_metrics(d)
        os.kill(kids[0], signal.SIGHUP)
        notify.expect("READY=1", NOTIFY_TIMEOUT, proc)
        os.kill(kids[0], signal.SIGTERM)
        proc.proc.wait(timeout=20)
        eq(proc.proc.returncode, 0, "exit status under strace")
    finally:
        kids += [k for k in children(proc.pid) if k not in kids]
        proc.stop()
        stop_pids(kids)
        notify.close()
    with open(trace, errors="replace") as f:
        text = f.read()
    used = set(re.findall(r"^\d+\s+([a-z0-9_]+)\(", text, re.M))
    check(len(used) > 20, f"strace saw only {sorted(used)}")
    blocked = sorted(used - allowed)
    check(not blocked, f"SystemCallFilter= blocks calls the daemon makes: "
                       f"{blocked}")
    socket_families = set(re.findall(r"\bsocket\((AF_[A-Z0-9]+)", text))
    # glibc's getaddrinfo probes AF_NETLINK and copes when it is refused.
    extra = sorted(socket_families - families - {"AF_NETLINK"})
    check(not extra, f"RestrictAddressFamilies= refuses {extra}")


# ------------------------------------------------------ notify, activation

def test_notify_protocol():
    notify = NotifySocket()
    try:
        d = ServiceDaemon(notify=notify)  # READY=1 first, then /healthz
        with d:
            d.reload()
            eq(d.request("GET", "/healthz").status, 200,
               "/healthz after reload")
            d.signal(signal.SIGTERM)
            got = notify.expect("STOPPING=1", NOTIFY_TIMEOUT, d.process)
            eq(states(got), ["STOPPING=1"], "notifications on SIGTERM")
            eq(d.wait_exit(), 0, "exit status")
            eq(notify.drain(), [], "notifications after STOPPING=1")
    finally:
        notify.close()


def test_socket_activation():
    u = h.upstream()
    with ServiceDaemon(activate=True) as d:
        check(d.listen_port != d.port, "the config's port must differ")
        r = d.request("GET", "/healthz")
        eq(r.status, 200, "/healthz on the passed socket")
        urls = [u.url("/status/200"), u.url("/delay/20")]
        ans = d.fetch_ok(urls)
        eq([x["status"] for x in ans["results"]], [200, 200], "statuses")
        check(refused("127.0.0.1", d.listen_port),
              f"the config's port {d.listen_port} is listening: the passed "
              "socket should be used instead")
        check("passed socket" in d.process.stderr(),
              f"no start-up line about the passed socket: "
              f"{d.process.stderr()[-400:]}")
        d.signal(signal.SIGTERM)
        eq(d.wait_exit(), 0, "exit status")


# ------------------------------------------------------------------ reload

RELOAD_V1 = {
    "workers": {"threads": 4, "queue_limit": 100},
    "limits": {"max_urls": 2},
    "fetch": {"timeout_ms": 5000},
    "log": {"level": "warn", "access_log": True},
}
RELOAD_TOKEN = "reload-T0ken-4c2f9e"
RELOAD_V2 = {
    "workers": {"threads": 8, "queue_limit": 100},
    "limits": {"max_urls": 5},
    "fetch": {"timeout_ms": 300},
    "log": {"level": "info", "access_log": True},
    "security": {"auth_token": RELOAD_TOKEN},
}
BEARER = {"Authorization": f"Bearer {RELOAD_TOKEN}"}


def fetch_with(d, urls, headers=None):
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    return d.request("POST", "/fetch", json.dumps(urls), hdrs)


def check_v2(d, u, what):
    """The daemon behaves as RELOAD_V2 says."""
    three = [u.url(f"/status/200?r={i}") for i in range(3)]
    h.error_body(fetch_with(d, three), 401, "unauthorized")
    r = fetch_with(d, three, BEARER)
    eq(r.status, 200, f"{what}: 3 URLs with max_urls 5 ({r.text[:200]})")
    h.error_body(fetch_with(d, three * 2, BEARER), 413, "too_many_urls")
    start = time.monotonic()
    r = fetch_with(d, [u.url("/delay/1500")], BEARER)
    eq(r.status, 200, f"{what}: status")
    err = r.json()["results"][0]["error"] or {}
    eq(err.get("code"), "timeout",
       f"{what}: /delay/1500 with fetch.timeout_ms 300")
    check(time.monotonic() - start < 1.2,
          f"{what}: timeout_ms 300 not applied")
    _, m = get_metrics(d, BEARER)
    eq(m.get("fanoutd_worker_threads_max"), 8.0,
       f"{what}: fanoutd_worker_threads_max")


def test_reload_applies_new_config():
    u = h.upstream()
    notify = NotifySocket()
    try:
        with ServiceDaemon(RELOAD_V1, notify=notify) as d:
            three = [u.url(f"/status/200?r={i}") for i in range(3)]
            h.error_body(fetch_with(d, three), 413, "too_many_urls")
            r = fetch_with(d, [u.url("/delay/600")])
            eq(r.status, 200, "v1 status")
            eq(r.json()["results"][0]["status"], 200,
               "/delay/600 within fetch.timeout_ms 5000")
            _, m = get_metrics(d)
            eq(m.get("fanoutd_worker_threads_max"), 4.0,
               "fanoutd_worker_threads_max before")
            eq(access_lines(d.process.stderr()), [],
               "access lines at level warn")

            d.write_config(RELOAD_V2)
            d.reload()
            check_v2(d, u, "after reload")
            check(access_lines(d.process.new_stderr()),
                  "no access lines after the reload to level info")
            check(d.process.alive(), "fanoutd exited on reload")
    finally:
        notify.close()


# A valid head that would change things if it applied, then a broken
# tail: (what, tail, the line of the tail that the error names).
BROKEN_HEAD = 'limits = { max_urls = 1; };\nsecurity = { auth_token = ""; };\n'
BROKEN_TAILS = [
    ("value out of range", "fetch = { timeout_ms = 0; };\n", 1),
    ("wrong type", 'workers = {\n  threads = "many";\n};\n', 2),
    ("syntax error", "fetch = { timeout_ms = ; };\n", 1),
]


def test_reload_broken_file_keeps_config():
    u = h.upstream()
    notify = NotifySocket()
    try:
        with ServiceDaemon(RELOAD_V2, notify=notify) as d:
            check_v2(d, u, "before")
            with open(d.config_path) as f:
                good = f.read()
            for name, tail, line in BROKEN_TAILS:
                with open(d.config_path, "w") as f:
                    f.write(BROKEN_HEAD + tail)
                bad_line = BROKEN_HEAD.count("\n") + line
                d.process.new_stderr()
                d.reload(name)
                err = d.process.new_stderr()
                check(f"{d.config_path}:{bad_line}:" in err,
                      f"{name}: the log does not name "
                      f"{d.config_path}:{bad_line}: {err[-600:]!r}")
                check(d.process.alive(), f"fanoutd exited on a {name}")
                check_v2(d, u, f"after a {name}")
            # A good file still reloads afterwards.
            with open(d.config_path, "w") as f:
                f.write(good.replace("max_urls = 5", "max_urls = 2"))
            d.reload("good again")
            three = [u.url(f"/status/200?r={i}") for i in range(3)]
            h.error_body(fetch_with(d, three, BEARER), 413, "too_many_urls")
    finally:
        notify.close()


# ----------------------------------------------------------- graceful stop

def graceful_stop(sig):
    u = h.upstream()
    notify = NotifySocket()
    try:
        with ServiceDaemon({"workers": {"threads": 4}}, notify=notify) as d:
            urls = [u.url(f"/delay/1000?stop={int(sig)}&n={i}")
                    for i in range(2)]
            t, outcome = fetch_thread(d, urls)
            h.wait_for(lambda: get_metrics(d)[1].get(
                "fanoutd_inflight_requests") == 1.0, 5,
                "the fan-out in flight")
            sent = time.monotonic()
            d.signal(sig)
            got = notify.expect("STOPPING=1", NOTIFY_TIMEOUT, d.process)
            eq(states(got), ["STOPPING=1"], "notifications on the signal")
            h.wait_for(lambda: refused(d.host, d.port), 2,
                       "new connections to be refused")
            t.join(10)
            check(not t.is_alive(), "the fan-out in flight never finished")
            check("e" not in outcome,
                  f"the fan-out in flight failed: {outcome.get('e')!r}")
            r = outcome["r"]
            eq(r.status, 200,
               f"status of the fan-out in flight ({r.text[:300]})")
            ans = r.json()
            eq([x["status"] for x in ans["results"]], [200, 200],
               "statuses of the fan-out in flight")
            eq(ans["summary"]["ok"], 2, "summary.ok")
            eq(d.wait_exit(), 0, "exit status")
            took = time.monotonic() - sent
            check(took < 4, f"exit {took:.1f}s after the signal")
    finally:
        notify.close()


def test_sigterm_finishes_inflight_and_exits_0():
    graceful_stop(signal.SIGTERM)


def test_sigint_finishes_inflight_and_exits_0():
    graceful_stop(signal.SIGINT)


# ----------------------------------------------------------------- logging

def exercise(d, u):
    """Requests of several kinds; [(method, path, status, id, urls, ok,
    failed)] as the access log must record them."""
    closed = h.free_port()
    calls = []

    def call(method, path, body=None, headers=None, urls=0, ok=0, failed=0):
        r = d.request(method, path, body, headers)
        rid = r.header("X-Request-Id")
        check(rid, f"{method} {path}: no X-Request-Id in the answer")
        calls.append((method, path, str(r.status), rid, urls, ok, failed))
        return r

    call("GET", "/healthz")
    urls = [u.url("/status/200"), u.url("/delay/10"),
            f"http://127.0.0.1:{closed}/"]
    r = call("POST", "/fetch", json.dumps(urls),
             {"Content-Type": "application/json", "X-Request-Id": "probe-42"},
             urls=3, ok=2, failed=1)
    eq(r.status, 200, "fetch status")
    eq(r.header("X-Request-Id"), "probe-42", "X-Request-Id echoed")
    call("GET", "/no/such/path")
    call("DELETE", "/fetch")
    # An id that is too long or not plain is replaced by one of fanoutd's.
    for bad in ("x" * 100, "a b", "id;rm"):
        r = call("GET", "/healthz", headers={"X-Request-Id": bad})
        check(r.header("X-Request-Id") != bad,
              f"X-Request-Id {bad!r} echoed as it came")
    check(len({c[3] for c in calls}) == len(calls),
          f"request ids repeat: {[c[3] for c in calls]}")
    return calls


def check_access_log(text, calls):
    lines = access_lines(text)
    eq(len(lines), len(calls),
       f"access lines, one per request: {[l['_line'] for l in lines]}")
    by_id = {l.get("id"): l for l in lines}
    for method, path, status, rid, urls, ok, failed in calls:
        line = by_id.get(rid)
        check(line is not None, f"no access line with id={rid}: {text[-800:]}")
        for key, want in (("client", "127.0.0.1"), ("method", method),
                          ("path", path), ("status", status),
                          ("urls", str(urls)), ("ok", str(ok)),
                          ("failed", str(failed))):
            eq(line.get(key), want, f"{key}= in {line['_line']!r}")
        check(re.fullmatch(r"\d+(\.\d+)?", line.get("elapsed_ms", "")),
              f"elapsed_ms= in {line['_line']!r}")
    return lines


def test_log_plain_prefix_and_access_lines():
    u = h.upstream()
    with ServiceDaemon() as d:
        d.process.new_stderr()  # past the start-up /healthz probes
        calls = exercise(d, u)
        lines = check_access_log(d.process.new_stderr(), calls)
        text = d.process.stderr()
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
        for l in lines:
            check(re.match(stamp + "fanoutd: info: access ", l["_line"]),
                  f"access line prefix: {l['_line']!r}")
        for line in text.splitlines():
            check(re.match(stamp + r"fanoutd: (error|warn|info|debug): ",
                           line),
                  f"line without the 'TIME fanoutd: LEVEL: ' prefix: "
                  f"{line!r}")
        check(not re.search(r"^<\d>", text, re.M),
              "<N> prefixes without JOURNAL_STREAM")


def test_log_journal_prefixes():
    u = h.upstream()
    with ServiceDaemon(env={"JOURNAL_STREAM": JOURNAL_SELF}) as d:
        d.process.new_stderr()  # past the start-up /healthz probes
        calls = exercise(d, u)
        lines = check_access_log(d.process.new_stderr(), calls)
        text = d.process.stderr()
        for l in lines:
            check(l["_line"].startswith("<6>access "),
                  f"access line in the journal: {l['_line']!r}")
        for line in text.splitlines():
            check(re.match(r"<[0-7]>", line),
                  f"a line without its <N> priority: {line!r}")
        check("fanoutd: info:" not in text, "plain prefixes in the journal")


def test_log_journal_prefix_on_every_line_of_a_reload_error():
    """journald splits stderr at newlines: a line without <N> loses its
    priority (it becomes info)."""
    notify = NotifySocket()
    try:
        with ServiceDaemon(env={"JOURNAL_STREAM": JOURNAL_SELF},
                           notify=notify) as d:
            with open(d.config_path, "a") as f:
                f.write('workers = { threads = 0; };\n'
                        'limits = { max_urls = "x"; };\n')
            d.reload("broken file")
            text = d.process.stderr()
            check(f"{d.config_path}:" in text, f"no FILE:LINE: {text[-600:]}")
            for line in text.splitlines():
                check(re.match(r"<[0-7]>", line),
                      f"a line without its <N> priority: {line!r}")
            warn = [l for l in text.splitlines() if d.config_path in l]
            check(all(l[:3] in ("<3>", "<4>") for l in warn),
                  f"the config errors are not logged as warnings: {warn}")
    finally:
        notify.close()


def test_token_never_logged():
    u = h.upstream()
    token, wrong = "t0k-Secret-81f3", "guess-Wrong-7a0c"
    new = "n3w-Secret-55e1"
    notify = NotifySocket()
    try:
        with ServiceDaemon({"log": {"level": "debug", "access_log": True},
                            "security": {"auth_token": token}},
                           notify=notify) as d:
            url = [u.url("/status/200")]
            eq(fetch_with(d, url, {"Authorization": f"Bearer {token}"}).status,
               200, "right token")
            eq(fetch_with(d, url, {"Authorization": f"Bearer {wrong}"}).status,
               401, "wrong token")
            eq(fetch_with(d, url, {"Authorization": token}).status, 401,
               "token without Bearer")
            eq(fetch_with(d, url).status, 401, "no token")
            get_metrics(d, {"Authorization": f"Bearer {token}"})
            # A reload to a new token, then a broken file holding a token.
            d.write_config({"log": {"level": "debug", "access_log": True},
                            "security": {"auth_token": new}})
            d.reload("new token")
            eq(fetch_with(d, url, {"Authorization": f"Bearer {new}"}).status,
               200, "new token")
            eq(fetch_with(d, url, {"Authorization": f"Bearer {token}"}).status,
               401, "old token after the reload")
            for broken in (f'security = {{ auth_token = "{wrong}"; '
                           f'allow_clients = 5; }};\n',
                           f'security = {{ auth_token = "{wrong}" }}; x\n'):
                with open(d.config_path, "w") as f:
                    f.write(broken)
                d.reload("broken file")
            text = d.process.stderr()
            check(access_lines(text), "no access lines at level debug")
            for secret in (token, wrong, new):
                at = text.find(secret)
                check(at < 0, f"a token is in the log: "
                              f"{text[max(0, at - 200):at + 200]!r}")
    finally:
        notify.close()


# ----------------------------------------------------------------- metrics

def promtool_check(body):
    promtool = tool("promtool", "prometheus")
    rc, out, err = run_cmd([promtool, "check", "metrics"], stdin=body)
    eq(rc, 0, f"promtool check metrics: {(out + err)[-800:]}")
    eq((out + err).strip(), "", "promtool check metrics output")


def test_metrics_valid_and_counting():
    u = h.upstream()
    with ServiceDaemon({"limits": {"max_urls": 3},
                        "workers": {"threads": 4}}) as d:
        r, before = get_metrics(d)
        ctype = r.header("Content-Type") or ""
        check(ctype.startswith("text/plain"), f"Content-Type {ctype!r}")
        promtool_check(r.body)

        urls = [u.url("/status/200"), u.url("/delay/10"),
                {"url": u.url("/hang"), "timeout_ms": 300}]
        ans = d.fetch_ok(urls)
        eq(ans["summary"]["ok"], 2, "summary.ok")
        eq(ans["summary"]["error_counts"], {"timeout": 1}, "error_counts")
        h.error_body(d.fetch([u.url("/status/200")] * 4), 413, "too_many_urls")
        r, after = get_metrics(d)
        promtool_check(r.body)

        def delta(name):
            check(name in after, f"/metrics lacks {name}")
            return after[name] - before.get(name, 0.0)

        eq(delta('fanoutd_fetches_total{result="ok"}'), 2.0, "ok fetches")
        eq(delta('fanoutd_fetches_total{result="failed"}'), 1.0,
           "failed fetches")
        eq(delta('fanoutd_fetch_errors_total{code="timeout"}'), 1.0,
           "timeout errors")
        for name in after:
            if name.startswith("fanoutd_fetch_errors_total") and \
                    'code="timeout"' not in name:
                eq(delta(name), 0.0, name)
        check(delta('fanoutd_requests_total{code="200"}') >= 1,
              "requests_total{code=200} did not grow")
        eq(delta('fanoutd_requests_total{code="413"}'), 1.0,
           "requests_total{code=413}")
        eq(delta("fanoutd_fetch_duration_seconds_count"), 3.0,
           "histogram _count")
        check(delta("fanoutd_fetch_duration_seconds_sum") >= 0.25,
              "histogram _sum did not grow by the 300 ms timeout")
        buckets = sorted(
            ((float(re.search(r'le="([^"]+)"', k).group(1)), v)
             for k, v in after.items()
             if k.startswith("fanoutd_fetch_duration_seconds_bucket")))
        check(buckets and buckets[-1][0] == float("inf"), "no +Inf bucket")
        check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])),
              f"buckets not cumulative: {buckets}")
        eq(buckets[-1][1], after["fanoutd_fetch_duration_seconds_count"],
           "+Inf bucket vs _count")

        rc, out, _ = run_cmd([h.env("FANOUTD_BIN"), "--version"])
        version = out.split()[-1]
        eq(after.get(f'fanoutd_build_info{{version="{version}"}}'), 1.0,
           "fanoutd_build_info")
        for g in ("fanoutd_queue_depth", "fanoutd_queue_parked",
                  "fanoutd_busy_workers",
                  "fanoutd_inflight_requests", "fanoutd_worker_threads",
                  "fanoutd_worker_threads_max"):
            check(g in after, f"/metrics lacks {g}")

        # The gauges while a fan-out runs, and after it.
        t, outcome = fetch_thread(d, [u.url("/delay/800")])
        h.wait_for(lambda: get_metrics(d)[1].get(
            "fanoutd_inflight_requests") == 1.0, 5, "inflight_requests 1")
        r, during = get_metrics(d)
        promtool_check(r.body)
        check(during["fanoutd_busy_workers"] >= 1,
              f"busy_workers {during['fanoutd_busy_workers']} during a fetch")
        t.join(10)
        eq(outcome.get("r") and outcome["r"].status, 200, "the slow fan-out")
        _, done = get_metrics(d)
        eq(done["fanoutd_inflight_requests"], 0.0, "inflight_requests after")
        eq(done["fanoutd_busy_workers"], 0.0, "busy_workers after")


# The process collector of the Prometheus client libraries: name, type.
PROCESS_FAMILIES = [
    ("process_cpu_seconds_total", "counter"),
    ("process_open_fds", "gauge"),
    ("process_max_fds", "gauge"),
    ("process_virtual_memory_bytes", "gauge"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_start_time_seconds", "gauge"),
]


def proc_start_time(pid):
    """pid's start in seconds since the epoch as the client libraries
    compute it: /proc/stat's btime plus field 22 of /proc/PID/stat."""
    with open("/proc/stat") as f:
        btime = next(int(line.split()[1]) for line in f
                     if line.startswith("btime "))
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()  # from field 3
    return btime + int(fields[22 - 3]) / os.sysconf("SC_CLK_TCK")


def soft_nofile(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return float(line.split()[3])
    raise AssertionError(f"/proc/{pid}/limits has no Max open files")


def test_metrics_process():
    u = h.upstream()
    launched = time.time()
    with ServiceDaemon({"workers": {"threads": 4}}) as d:
        ready = time.time()
        pid = d.process.pid
        r, m = get_metrics(d)
        promtool_check(r.body)
        for name, kind in PROCESS_FAMILIES:
            check(f"\n# TYPE {name} {kind}\n" in r.text,
                  f"/metrics lacks # TYPE {name} {kind}")
            check(name in m, f"/metrics lacks {name}")
        rss = m["process_resident_memory_bytes"]
        check(rss > 1e6, f"process_resident_memory_bytes {rss}")
        check(m["process_virtual_memory_bytes"] >= rss,
              f"virtual memory {m['process_virtual_memory_bytes']} "
              f"below resident {rss}")
        fds, max_fds = m["process_open_fds"], m["process_max_fds"]
        check(3 < fds <= max_fds, f"process_open_fds {fds}, max {max_fds}")
        eq(max_fds, soft_nofile(pid), "process_max_fds vs /proc/PID/limits")
        seen = len(os.listdir(f"/proc/{pid}/fd"))  # the scrape has ended
        check(abs(fds - seen) <= 2,
              f"process_open_fds {fds}, /proc/{pid}/fd lists {seen}")
        start = m["process_start_time_seconds"]
        check(time.time() - 3600 < start <= time.time(),
              f"process_start_time_seconds {start} not in the last hour")
        # btime is whole seconds, so the start can read up to 1 s early.
        check(launched - 1.01 <= start <= ready,
              f"process_start_time_seconds {start}, launched at "
              f"{launched:.3f}, ready at {ready:.3f}")
        check(abs(start - proc_start_time(pid)) < 1e-3,
              f"process_start_time_seconds {start} vs btime + start tick "
              f"{proc_start_time(pid)}")
        cpu = m["process_cpu_seconds_total"]
        check(cpu >= 0, f"process_cpu_seconds_total {cpu}")

        def busier():
            d.fetch_ok([u.url(f"/bytes/200000?n={i}") for i in range(8)])
            return get_metrics(d)[1]["process_cpu_seconds_total"] > cpu
        h.wait_for(busier, 30, "process_cpu_seconds_total to grow with work")
        _, later = get_metrics(d)
        eq(later["process_start_time_seconds"], start,
           "process_start_time_seconds changed between scrapes")


RELOAD_OK = "fanoutd_config_last_reload_successful"
RELOAD_AT = "fanoutd_config_last_reload_success_timestamp_seconds"


def test_metrics_reload_gauges():
    """The start-up load counts as a successful one; a failed reload sets
    0 and keeps the time of the last good load; a good one sets 1 and a
    newer time."""
    notify = NotifySocket()
    try:
        launched = time.time()
        with ServiceDaemon(RELOAD_V1, notify=notify) as d:
            ready = time.time()
            r, m = get_metrics(d)
            for name in (RELOAD_OK, RELOAD_AT):
                check(f"\n# TYPE {name} gauge\n" in r.text,
                      f"/metrics lacks # TYPE {name} gauge")
            eq(m.get(RELOAD_OK), 1.0, f"{RELOAD_OK} after start-up")
            first = m.get(RELOAD_AT)
            check(first is not None and launched <= first <= ready,
                  f"{RELOAD_AT} {first} not between launch ({launched:.3f}) "
                  f"and ready ({ready:.3f})")
            with open(d.config_path) as f:
                good = f.read()
            for name, tail, _ in BROKEN_TAILS:
                with open(d.config_path, "w") as f:
                    f.write(BROKEN_HEAD + tail)
                d.reload(name)
                r, m = get_metrics(d)
                promtool_check(r.body)
                eq(m.get(RELOAD_OK), 0.0, f"{RELOAD_OK} after a {name}")
                eq(m.get(RELOAD_AT), first, f"{RELOAD_AT} after a {name}")
            with open(d.config_path, "w") as f:
                f.write(good)
            sent = time.time()
            d.reload("good again")
            _, m = get_metrics(d)
            eq(m.get(RELOAD_OK), 1.0, f"{RELOAD_OK} after a good reload")
            at = m.get(RELOAD_AT)
            check(at > first and sent <= at <= time.time(),
                  f"{RELOAD_AT} {at} after a good reload sent at {sent:.3f} "
                  f"(start-up load at {first})")
    finally:
        notify.close()


WAIT = "fanoutd_queue_wait_seconds"


def wait_buckets(m):
    """[(le, cumulative count)] of the queue-wait histogram, in order."""
    return sorted((float(re.search(r'le="([^"]+)"', k).group(1)), v)
                  for k, v in m.items() if k.startswith(WAIT + "_bucket"))


def test_metrics_queue_wait_histogram():
    """Each fetch of a fan-out adds one observation of its wait for a
    worker; items refused before the queue add none.  One worker and
    /delay/150 make the waits known: the k-th fetch waits >= k * 150 ms."""
    u = h.upstream()
    with ServiceDaemon({"workers": {"threads": 1}}) as d:
        _, before = get_metrics(d)
        urls = [u.url(f"/delay/150?k={k}") for k in range(4)]
        # An item without a URL fails as the request is read: no fetch.
        ans = d.fetch_ok(urls + [{"id": "no url"}])
        eq([x["status"] for x in ans["results"]], [200] * 4 + [None],
           "statuses")
        eq(ans["results"][4]["error"]["code"], "invalid_url",
           "the item without a URL")
        r, after = get_metrics(d)
        promtool_check(r.body)

        def delta(name):
            check(name in after, f"/metrics lacks {name}")
            return after[name] - before.get(name, 0.0)

        eq(delta(f"{WAIT}_count"), 4.0, "queue-wait observations")
        eq(delta(f'{WAIT}_bucket{{le="+Inf"}}'), 4.0, "+Inf bucket")
        total = delta(f"{WAIT}_sum")
        check(total >= 0.85, f"{WAIT}_sum grew by {total:.3f}, less than "
                             f"0.15 + 0.30 + 0.45 s")
        check(delta(f'{WAIT}_bucket{{le="0.1"}}') <= 1,
              "more than the first fetch waited under 100 ms")
        check(delta(f'{WAIT}_bucket{{le="0.25"}}') <= 2,
              "more than two fetches waited under 250 ms")
        buckets = wait_buckets(after)
        eq(buckets[0][0], 0.0001, "smallest queue-wait bound")
        eq(buckets[-1][0], float("inf"), "last queue-wait bound")
        check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])),
              f"buckets not cumulative: {buckets}")
        eq(buckets[-1][1], after[f"{WAIT}_count"], "+Inf bucket vs _count")

        # Without waiting: N fetches, N observations.
        n = 7
        d.fetch_ok([u.url(f"/status/200?i={i}") for i in range(n)])
        _, again = get_metrics(d)
        eq(again[f"{WAIT}_count"] - after[f"{WAIT}_count"], float(n),
           f"queue-wait observations of a fan-out of {n}")


# ----------------------------------------------------------------- install

def make_var(builddir, name):
    """A variable of the build's Makefile, fully expanded."""
    printer = h.tmpfile("print.mk")
    with open(printer, "w") as f:
        f.write("print-%:\n\t@echo '$($*)'\n")
    rc, out, err = run_cmd(["make", "-s", "--no-print-directory", "-C",
                            builddir, "-f", "Makefile", "-f", printer,
                            f"print-{name}"])
    eq(rc, 0, f"make print-{name}: {err}")
    return out.strip()


def test_make_install():
    builddir = os.path.dirname(os.path.dirname(
        os.path.abspath(h.env("FANOUTD_BIN"))))
    check(os.path.isfile(os.path.join(builddir, "Makefile")),
          f"no Makefile in {builddir} (FANOUTD_BIN's build tree)")
    dest = tempfile.mkdtemp(prefix="destdir-", dir=h.tmpdir())
    rc, out, err = run_cmd(["make", "-s", "-C", builddir, "install",
                            f"DESTDIR={dest}"], timeout=120)
    eq(rc, 0, f"make install: {(out + err)[-800:]}")
    dirs = {v: make_var(builddir, v) for v in
            ("sbindir", "sysconfdir", "mandir", "systemdsystemunitdir")}
    for v, path in dirs.items():
        check(path.startswith("/"), f"{v} is {path!r}, not an absolute path")
    pc = run_cmd(["pkg-config", "--variable=systemdsystemunitdir", "systemd"])
    with open(os.path.join(builddir, "config.status")) as f:
        given = "--with-systemdsystemunitdir" in f.read()
    if pc[0] == 0 and pc[1].strip() and not given:
        eq(dirs["systemdsystemunitdir"], pc[1].strip(),
           "systemdsystemunitdir vs pkg-config systemd")
    want = {
        "sbin/fanoutd": os.path.join(dirs["sbindir"], "fanoutd"),
        "fanoutd.conf": os.path.join(dirs["sysconfdir"], "fanoutd.conf"),
        "fanoutd.service": os.path.join(dirs["systemdsystemunitdir"],
                                        "fanoutd.service"),
        "fanoutd.socket": os.path.join(dirs["systemdsystemunitdir"],
                                       "fanoutd.socket"),
        "fanoutd(8)": os.path.join(dirs["mandir"], "man8", "fanoutd.8"),
        "fanoutd.conf(5)": os.path.join(dirs["mandir"], "man5",
                                        "fanoutd.conf.5"),
    }
    installed = sorted(os.path.relpath(os.path.join(r, f), dest)
                       for r, _, fs in os.walk(dest) for f in fs)
    missing = [f"{what} ({path})" for what, path in want.items()
               if not os.path.isfile(dest + path)]
    check(not missing, f"not installed: {missing}; installed: {installed}")
    check(os.access(dest + want["sbin/fanoutd"], os.X_OK),
          "installed fanoutd is not executable")
    with open(dest + want["fanoutd.service"]) as f:
        unit = f.read()
    check(not re.search(r"@\w+@", unit), "placeholders left in the unit")
    eq(unit_values(unit_lines(unit), "Service", "ExecStart"),
       [f"{want['sbin/fanoutd']} -c {want['fanoutd.conf']}"], "ExecStart")
    rc, out, err = run_cmd([dest + want["sbin/fanoutd"], "-t", "-c",
                            dest + want["fanoutd.conf"]])
    eq(rc, 0, f"installed fanoutd -t on the installed config: {out}{err}")


test_make_install.timeout = 180
test_unit_syscall_filter_allows_the_daemon.timeout = 90

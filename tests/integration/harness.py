"""Fixtures of the integration suite: the real upstream and the real daemon.

Every process is started here and stopped here, by PID: SIGTERM, a bounded
wait, then SIGKILL.  Ports come from binding port 0 (the upstream reports
its own through --portfile; the daemon gets one we found free, and is
started again on another if it loses the race).  Nothing sleeps blindly:
start-up waits poll the port file or GET /healthz.

A daemon's stderr goes to a file.  After every test the runner asks
check_processes() whether a daemon died, exited non-zero, or wrote a
sanitizer report; any of these fails the test.

The environment names the binaries: FANOUTD_BIN, UPSTREAM_BIN, and
FANOUTD_SRCDIR (the source tree, for conf/).
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from urllib.parse import quote

SANITIZER_MARKS = (
    "ERROR: AddressSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "LeakSanitizer",
)

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 15.0

_tmpdir = None
_live = []  # every Process not yet stopped


class Skip(Exception):
    """Raised by a test that cannot run here (counted as skipped)."""


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set")
    return value


def tmpdir():
    global _tmpdir
    if _tmpdir is None:
        _tmpdir = tempfile.mkdtemp(prefix="fanoutd-it-")
    return _tmpdir


def remove_tmpdir():
    global _tmpdir
    if _tmpdir is not None:
        shutil.rmtree(_tmpdir, ignore_errors=True)
        _tmpdir = None


def tmpfile(stem):
    fd, path = tempfile.mkstemp(prefix=stem + "-", dir=tmpdir())
    os.close(fd)
    return path


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def hostport(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Process:
    """A child process with its stderr in a file."""

    def __init__(self, argv, name):
        self.name = name
        self.argv = argv
        self.stderr_path = tmpfile(name + "-stderr")
        self.stderr_seen = 0
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err
            )
        self.stopped = False
        _live.append(self)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stderr(self):
        with open(self.stderr_path, "r", errors="replace") as f:
            return f.read()

    def new_stderr(self):
        """The stderr written since the last call."""
        with open(self.stderr_path, "r", errors="replace") as f:
            f.seek(self.stderr_seen)
            text = f.read()
            self.stderr_seen = f.tell()
        return text

    def stop(self):
        """SIGTERM, wait, SIGKILL; returns a problem string or None."""
        if self.stopped:
            return None
        self.stopped = True
        if self in _live:
            _live.remove(self)
        problem = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
                problem = f"{self.name} ignored SIGTERM for {STOP_TIMEOUT}s"
        rc = self.proc.returncode
        if problem is None and rc != 0:
            problem = f"{self.name} {describe_exit(rc)} on SIGTERM"
        return problem


def cpu_ticks(pid):
    """utime + stime of every thread of pid, dead ones included, in clock
    ticks (os.sysconf("SC_CLK_TCK") a second): a figure other load on the
    machine disturbs far less than wall time."""
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()  # fields[0] is field 3
    return int(fields[11]) + int(fields[12])


def describe_exit(rc):
    if rc < 0:
        try:
            return f"died of {signal.Signals(-rc).name}"
        except ValueError:
            return f"died of signal {-rc}"
    return f"exited {rc}"


def kill_all():
    """Stop every process still running (end of run, timeouts)."""
    for p in list(_live):
        try:
            p.stop()
        except Exception:
            pass


def wait_for(predicate, timeout, what):
    """Poll predicate (no fixed sleeps beyond a short back-off)."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


class Response:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage
        self.body = body
        self.elapsed = elapsed

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError(
                f"status {self.status}: body is not JSON ({e}): {self.text[:300]!r}"
            )

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return f"<{self.status} {self.text[:200]!r}>"


def http_request(host, port, method, path, body=None, headers=None,
                 timeout=HTTP_TIMEOUT):
    """One request on a fresh connection; every call has a timeout."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    start = time.monotonic()
    try:
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, resp.headers, data,
                        time.monotonic() - start)
    finally:
        conn.close()


class Upstream:
    """tests/upstream: see the endpoint list at the top of upstream.c."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        # A fresh directory each time: a stale port file is never read.
        portfile = os.path.join(
            tempfile.mkdtemp(prefix="upstream-", dir=tmpdir()), "port")
        self.process = Process(
            [env("UPSTREAM_BIN"), "--port", "0", "--portfile", portfile,
             "--address", host], "upstream")
        try:
            self.port = wait_for(lambda: self._read_port(portfile),
                                 START_TIMEOUT, "the upstream's port file")
        except AssertionError:
            self.process.stop()
            raise AssertionError(
                f"upstream did not start: {self.process.stderr()[-500:]}")

    def _read_port(self, portfile):
        if not self.process.alive():
            raise AssertionError(
                f"upstream {describe_exit(self.process.proc.returncode)}: "
                f"{self.process.stderr()[-500:]}")
        try:
            with open(portfile) as f:
                return int(f.read())
        except (FileNotFoundError, ValueError):
            return None

    def url(self, path):
        return f"http://{hostport(self.host, self.port)}{path}"

    def get(self, path):
        return http_request(self.host, self.port, "GET", path, timeout=5)

    def hits(self, prefix=""):
        """How many requests the upstream logged with a path under prefix."""
        q = "/hits?path=" + urlquote(prefix) if prefix else "/hits"
        return self.get(q).json()["hits"]

    def last(self, prefix):
        """The last logged request under prefix: method, uri, headers."""
        r = self.get("/hits/last?path=" + urlquote(prefix))
        return r.json() if r.status == 200 else None

    def reset_hits(self):
        assert self.get("/hits/reset").status == 200

    def stop(self):
        return self.process.stop()


class RawServer:
    """A loopback TCP server that reads each connection once and answers
    with one fixed reply, whatever was asked, then closes it; it counts
    the connections (accepted) and keeps what each sent (received)."""

    REPLY = b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\nproxied\n"

    def __init__(self, reply=REPLY, host="127.0.0.1"):
        self.reply = reply
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.received = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append(conn.recv(4096))
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def url(self, path="/"):
        return f"http://{hostport(self.host, self.port)}{path}"

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def urlquote(s):
    return quote(s, safe="")


def render_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # libconfig strings escape as JSON's do
    if isinstance(v, dict):
        return "{ " + " ".join(f"{k} = {render_value(x)};"
                               for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        # An array holds scalars of one type; anything else is a list.
        kinds = {type(x) for x in v}
        if len(kinds) <= 1 and not kinds & {dict, list, tuple}:
            return "[ " + ", ".join(render_value(x) for x in v) + " ]"
        return "( " + ", ".join(render_value(x) for x in v) + " )"
    raise TypeError(f"cannot render {v!r}")


def render_config(settings):
    """{"listen": {"port": 1}} -> libconfig text, one group per line; a
    top-level list ({"modules": [{...}]}) is written as a list."""
    lines = []
    for group, keys in settings.items():
        lines.append(f"{group} = {render_value(keys)};")
    return "\n".join(lines) + "\n"


def merge(base, extra):
    """extra's groups merged key by key over base's; a top-level list
    (modules) is replaced whole."""
    out = {g: dict(keys) if isinstance(keys, dict) else keys
           for g, keys in base.items()}
    for group, keys in (extra or {}).items():
        if isinstance(keys, dict):
            out.setdefault(group, {}).update(keys)
        else:
            out[group] = keys
    return out


# Test defaults: quiet logs, defaults otherwise.
BASE_CONFIG = {
    "log": {"level": "warn", "access_log": False},
}


class Daemon:
    """fanoutd -c CONF on a port of host the kernel picks (listen.port = 0,
    read back from --port-file), ready when /healthz is 200.  wrap, when
    given, turns the daemon's argv into the argv to run (a command that
    sets something up and then execs it, keeping the PID)."""

    def __init__(self, config=None, host="127.0.0.1", wrap=None):
        self.host = host
        self.config = merge(BASE_CONFIG, config)
        self.config_path = tmpfile("fanoutd-conf")
        self._write_config()
        port_file = tmpfile("fanoutd-port")
        argv = [env("FANOUTD_BIN"), "-c", self.config_path,
                "--port-file", port_file]
        self.process = Process(wrap(argv) if wrap else argv, "fanoutd")
        try:
            self.port = wait_for(lambda: self._read_port(port_file),
                                 START_TIMEOUT, "the daemon's port file")
            wait_for(self._healthy, START_TIMEOUT, "GET /healthz")
        except AssertionError as e:
            problem = self.process.stop()
            raise AssertionError(f"fanoutd did not start ({e}; {problem}): "
                                 f"{self.process.stderr()[-800:]}")

    def _write_config(self):
        full = merge(self.config, {"listen": {"address": self.host,
                                              "port": 0}})
        with open(self.config_path, "w") as f:
            f.write(render_config(full))

    def _read_port(self, path):
        if not self.process.alive():
            raise AssertionError(
                f"fanoutd {describe_exit(self.process.proc.returncode)}")
        try:
            with open(path) as f:
                return int(f.read())
        except (FileNotFoundError, ValueError):
            return None

    def _healthy(self):
        if not self.process.alive():
            raise AssertionError(
                f"fanoutd {describe_exit(self.process.proc.returncode)}")
        try:
            return self.request("GET", "/healthz", timeout=1).status == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None,
                timeout=HTTP_TIMEOUT):
        return http_request(self.host, self.port, method, path, body,
                            headers, timeout)

    def reload(self, extra=None, settings=None, timeout=10):
        """Rewrite the config file and SIGHUP; wait for the log line of
        the reload or of its failure, and return True when it reloaded.
        settings replaces the config (over BASE_CONFIG), extra is merged
        over it; neither rewrites the same file."""
        if settings is not None:
            self.config = merge(BASE_CONFIG, settings)
        if extra is not None:
            self.config = merge(self.config, extra)
        self._write_config()

        def counts():
            text = self.process.stderr()
            return text.count("reloaded"), text.count("reload failed")

        ok, failed = counts()
        os.kill(self.process.pid, signal.SIGHUP)
        wait_for(lambda: sum(counts()) > ok + failed, timeout,
                 "the daemon to log the reload")
        return counts()[0] > ok

    def fetch(self, payload, content_type="application/json",
              timeout=HTTP_TIMEOUT):
        """POST /fetch; payload is JSON-encoded unless bytes or str."""
        if isinstance(payload, (bytes, str)):
            body = payload
        else:
            body = json.dumps(payload)
        headers = {} if content_type is None else {"Content-Type": content_type}
        return self.request("POST", "/fetch", body, headers, timeout)

    def fetch_ok(self, payload, **kw):
        """POST /fetch expecting 200; returns the decoded answer."""
        r = self.fetch(payload, **kw)
        if r.status != 200:
            raise AssertionError(f"POST /fetch answered {r.status}: {r.text[:500]}")
        return r.json()

    def problems(self):
        """Sanitizer reports written since the last call, or a death."""
        out = []
        text = self.process.new_stderr()
        for mark in SANITIZER_MARKS:
            if mark in text:
                i = text.index(mark)
                out.append(f"fanoutd stderr has {mark!r}: "
                           f"{text[max(0, i - 200):i + 600]}")
                break
        if not self.process.stopped and not self.process.alive():
            out.append(
                f"fanoutd {describe_exit(self.process.proc.returncode)} "
                f"unexpectedly: {self.process.stderr()[-800:]}")
        return out

    def stop(self):
        """Stop and return every problem (exit status, sanitizer reports)."""
        out = []
        if not self.process.stopped and not self.process.alive():
            out.append(
                f"fanoutd {describe_exit(self.process.proc.returncode)} "
                "before it was stopped")
            self.process.stopped = True
            if self.process in _live:
                _live.remove(self.process)
        else:
            problem = self.process.stop()
            if problem:
                out.append(problem)
        out += self.problems()
        return out

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        _private.discard(self)
        problems = self.stop()
        if problems and exc_type is None:
            raise AssertionError("; ".join(problems))
        return False


def run_daemon(config=None, host="127.0.0.1"):
    """A private daemon for one test; use it with `with`."""
    d = Daemon(config, host)
    _private.add(d)
    return d


# Shared fixtures: one upstream per run, one daemon per module and config.
_upstream = None
_shared = {}
_private = set()


def upstream():
    global _upstream
    if _upstream is None or not _upstream.process.alive():
        _upstream = Upstream()
    return _upstream


def daemon(config=None):
    """The module's shared daemon for this config (started on first use)."""
    key = json.dumps(config or {}, sort_keys=True)
    d = _shared.get(key)
    if d is None or d.process.stopped or not d.process.alive():
        d = Daemon(config)
        _shared[key] = d
    return d


def check_processes():
    """After a test: problems of every daemon still around."""
    out = []
    for key, d in list(_shared.items()):
        p = d.problems()
        if p:
            out += p
            d.stop()
            del _shared[key]
    for d in list(_private):
        out += d.problems()
    if _upstream is not None and not _upstream.process.alive():
        out.append(f"upstream {describe_exit(_upstream.process.proc.returncode)}")
    return out


def end_module():
    """Stop the module's daemons; a daemon must still be healthy and exit 0."""
    out = []
    for key, d in list(_shared.items()):
        del _shared[key]
        if d.process.alive():
            try:
                r = d.request("GET", "/healthz", timeout=5)
                if r.status != 200:
                    out.append(f"/healthz answered {r.status} at the end")
            except OSError as e:
                out.append(f"/healthz failed at the end: {e}")
        out += d.stop()
    for d in list(_private):
        _private.discard(d)
        out += d.stop()
    return out


def end_run():
    out = end_module()
    global _upstream
    if _upstream is not None:
        problem = _upstream.stop()
        if problem:
            out.append(problem)
        _upstream = None
    kill_all()
    return out


def after_timeout():
    """A test overran: stop everything so the next test starts clean."""
    global _upstream
    for d in list(_shared.values()) + list(_private):
        d.stop()
    _shared.clear()
    _private.clear()
    kill_all()
    _upstream = None


# Assertions with useful messages.

def eq(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def error_body(r, status, code):
    """r is status with a JSON {"error": {"code", "message"}} of code."""
    eq(r.status, status, f"status (body {r.text[:300]!r})")
    ctype = r.header("Content-Type") or ""
    check(ctype.startswith("application/json"),
          f"Content-Type of a {status} is {ctype!r}")
    body = r.json()
    check(isinstance(body, dict) and isinstance(body.get("error"), dict),
          f"error body shape: {body!r}")
    err = body["error"]
    if isinstance(code, tuple):
        check(err.get("code") in code,
              f"error.code: expected one of {code!r}, got {err.get('code')!r}")
    else:
        eq(err.get("code"), code, "error.code")
    check(isinstance(err.get("message"), str) and err["message"],
          f"error.message should be a non-empty string: {err!r}")
    return err


def read_raw_answer(s):
    """Bytes from s until EOF, a reset, or one complete answer (by its
    Content-Length).  socket.timeout propagates to the caller."""
    buf = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            head, sep, body = buf.partition(b"\r\n\r\n")
            if sep:
                length = _content_length(head)
                if length is not None and len(body) >= length:
                    break
    except ConnectionResetError:
        pass
    return buf


def raw_exchange(host, port, data, timeout=HTTP_TIMEOUT):
    """Send raw bytes, read one answer; tolerates the server closing
    early (an over-limit body).  Returns (status, headers, body)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = read_raw_answer(s)
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        raise AssertionError(f"no HTTP answer: {buf[:200]!r}")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def _content_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


# A resolver the test controls: nothing the suite does may reach a real
# one.  DnsServer answers NXDOMAIN to every query on a loopback address,
# port 53, and keeps the queries; resolver_argv() wraps a command so that
# it runs in a private mount namespace whose /etc/resolv.conf names only
# that server (and whose /etc/nsswitch.conf is "hosts: files dns", so no
# other NSS module answers).  unshare(1) without --fork execs, and so does
# the sh it runs, so the wrapped process keeps the PID we started: signals
# reach it as they would the bare command.  Needs root (unshare -m, port
# 53); resolver_skip_reason() says why it cannot be had here.

import random  # noqa: E402
import struct  # noqa: E402

DNS_TYPES = {1: "A", 28: "AAAA", 5: "CNAME", 12: "PTR", 33: "SRV",
             65: "HTTPS"}


def _dns_question(packet):
    """(id, flags, qname, qtype, end of the question) of a query."""
    qid, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount < 1:
        raise ValueError("no question")
    labels, i = [], 12
    while packet[i] != 0:
        n = packet[i]
        if n & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(packet[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype = struct.unpack("!H", packet[i + 1:i + 3])[0]
    return qid, flags, ".".join(labels), qtype, i + 5


class DnsServer:
    """UDP DNS on 127.53.x.y:53: NXDOMAIN to everything, except the names
    in answers ({"name": "IPv4 address"}, matched without case), which get
    that A record (and no AAAA).  Queries are kept as (name, type) in
    .queries, each name in the case it was asked in."""

    def __init__(self, answers=None):
        self.answers = {k.lower().rstrip("."): socket.inet_aton(v)
                        for k, v in (answers or {}).items()}
        self.queries = []
        self._lock = threading.Lock()
        self._stop = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(20):
            self.host = "127.53.%d.%d" % (random.randint(0, 255),
                                          random.randint(1, 254))
            try:
                self.sock.bind((self.host, 53))
                break
            except OSError as e:
                last = e
        else:
            self.sock.close()
            raise Skip(f"cannot bind a loopback DNS server on port 53: {last}")
        self.sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop:
            try:
                packet, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                qid, flags, name, qtype, end = _dns_question(packet)
            except (ValueError, IndexError, struct.error):
                continue
            with self._lock:
                self.queries.append((name, DNS_TYPES.get(qtype, str(qtype))))
            try:
                self.sock.sendto(self._answer(qid, flags, name, qtype,
                                              packet[12:end]), peer)
            except OSError:
                pass

    def _answer(self, qid, flags, name, qtype, question):
        addr = self.answers.get(name.lower().rstrip("."))
        # QR, the query's opcode and RD, RA; RCODE 3 is NXDOMAIN.
        rflags = 0x8000 | (flags & 0x7900) | 0x0080 | (0 if addr else 3)
        records = b""
        if addr is not None and qtype == 1:
            # The name by a pointer to the question's, A, IN, TTL 0.
            records = struct.pack("!HHHIH", 0xC00C, 1, 1, 0, 4) + addr
        return (struct.pack("!HHHHHH", qid, rflags, 1, 1 if records else 0,
                            0, 0) + question + records)

    def names(self):
        with self._lock:
            return [name for name, _ in self.queries]

    def reset(self):
        with self._lock:
            self.queries.clear()

    def stop(self):
        self._stop = True
        self._thread.join(timeout=STOP_TIMEOUT)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        return False


def _resolver_files(host):
    """resolv.conf and nsswitch.conf naming only host; their paths."""
    resolv = tmpfile("resolv.conf")
    with open(resolv, "w") as f:
        # One try, one second: a lost answer fails the test quickly.
        f.write(f"nameserver {host}\noptions timeout:1 attempts:1\n")
    nss = tmpfile("nsswitch.conf")
    with open(nss, "w") as f:
        f.write("hosts: files dns\n")
    return resolv, nss


_RESOLVER_SH = ('mount --bind "$1" /etc/resolv.conf && '
                'mount --bind "$2" /etc/nsswitch.conf && shift 2 && '
                'exec "$@"')


def resolver_argv(argv, dns):
    """argv run with dns (a DnsServer, or its address) as its only
    resolver (same PID, see above)."""
    resolv, nss = _resolver_files(getattr(dns, "host", dns))
    return ["unshare", "-m", "sh", "-c", _RESOLVER_SH, "sh", resolv, nss,
            *argv]


_resolver_reason = None


def resolver_skip_reason():
    """None when resolver_argv works here, else why not (cached)."""
    global _resolver_reason
    if _resolver_reason is not None:
        return _resolver_reason or None
    reason = ""
    if os.geteuid() != 0:
        reason = "a private resolver needs root (unshare -m, port 53)"
    elif shutil.which("unshare") is None:
        reason = "unshare(1) is not installed"
    else:
        try:
            p = subprocess.run(
                resolver_argv(["cat", "/etc/resolv.conf"], "127.53.0.1"),
                stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
            if p.returncode != 0 or b"127.53.0.1" not in p.stdout:
                reason = ("unshare -m with a bind mount is not permitted "
                          f"here: {p.stderr.decode(errors='replace')[-300:]}")
        except (OSError, subprocess.TimeoutExpired) as e:
            reason = f"unshare -m failed: {e}"
    _resolver_reason = reason
    return reason or None


def require_private_resolver():
    reason = resolver_skip_reason()
    if reason:
        raise Skip(reason)


class ResolverDaemon(Daemon):
    """A Daemon whose process runs with dns as its only resolver."""

    def __init__(self, dns, config=None, host="127.0.0.1"):
        require_private_resolver()
        self.dns = dns
        super().__init__(config, host,
                         wrap=lambda argv: resolver_argv(argv, dns))


def run_daemon_with_resolver(dns, config=None, host="127.0.0.1"):
    """A private daemon for one test whose every lookup goes to dns; use
    it with `with`.  Raises Skip when that cannot be arranged here."""
    d = ResolverDaemon(dns, config, host)
    _private.add(d)
    return d


def use_tmpdir(path):
    """Keep this run's files (configs, stderr) in path, an existing
    directory, instead of a fresh one; remove_tmpdir() removes it."""
    global _tmpdir
    _tmpdir = path

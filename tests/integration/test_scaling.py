"""Scaling out as conf/ shows it: two fanoutd instances with
conf/fanoutd-scaled.conf behind nginx with conf/nginx-fanoutd.conf.

The example files are used as they are, with only their ports and log
path substituted: each daemon gets fanoutd-scaled.conf with its own port,
and nginx includes nginx-fanoutd.conf from a minimal main config of the
test's own (pid file, error log and temp paths in a temp dir).  nginx
runs in the foreground and is stopped by PID, as the daemons are.
nginx is Debian's nginx package (scripts/lib.sh installs it).
"""

import http.client
import json
import os
import re
import tempfile
import threading
import time

import harness as h
import test_service as svc
from harness import check, eq

FANOUTS = 20


def example(name):
    with open(svc.srcpath("conf", name)) as f:
        return f.read()


def substitute(text, old, new, what):
    eq(text.count(old), 1, f"{old!r} in {what}")
    return text.replace(old, new)


def instance_config(port):
    text, n = re.subn(r"(?m)^(\s*port\s*=\s*)8081;", rf"\g<1>{port};",
                      example("fanoutd-scaled.conf"))
    eq(n, 1, "listen port 8081 lines in fanoutd-scaled.conf")
    return text


class Nginx:
    """nginx -p DIR -c DIR/nginx.conf in the foreground, in front of the
    instances on ports; ready when /healthz answers through it."""

    def __init__(self, ports, attempts=5):
        self.binary = svc.tool("nginx", "nginx")
        self.dir = tempfile.mkdtemp(prefix="nginx-", dir=h.tmpdir())
        self.access_log = os.path.join(self.dir, "access.log")
        self.error_log = os.path.join(self.dir, "error.log")
        self.host = "127.0.0.1"
        for _ in range(attempts):
            self.port = h.free_port()
            self.conf = self._write_config(ports)
            self._run(["-t"])
            self.process = h.Process(self._argv(), "nginx")
            try:
                h.wait_for(self._healthy, h.START_TIMEOUT,
                           "GET /healthz through nginx")
                return
            except AssertionError as e:
                self.process.stop()
                if "in use" not in self.errors():
                    raise AssertionError(f"nginx did not start: {e}: "
                                         f"{self.errors()[-800:]}")
        raise AssertionError(f"nginx did not start on {attempts} ports")

    def _write_config(self, ports):
        site = example("nginx-fanoutd.conf")
        what = "nginx-fanoutd.conf"
        site = substitute(site, "server 127.0.0.1:8081;",
                          f"server 127.0.0.1:{ports[0]};", what)
        site = substitute(site, "server 127.0.0.1:8082;",
                          f"server 127.0.0.1:{ports[1]};", what)
        site = substitute(site, "listen 127.0.0.1:8080;",
                          f"listen 127.0.0.1:{self.port};", what)
        site = substitute(site, "/var/log/nginx/fanoutd.access.log",
                          self.access_log, what)
        site_path = os.path.join(self.dir, "fanoutd.conf")
        with open(site_path, "w") as f:
            f.write(site)
        d = self.dir
        main = f"""\
daemon off;
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {d}/nginx.pid;
error_log {self.error_log} info;
events {{ worker_connections 512; }}
http {{
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    access_log off;
    include {site_path};
}}
"""
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(main)
        return path

    def _argv(self, extra=()):
        return [self.binary, *extra, "-p", self.dir + "/", "-e",
                self.error_log, "-c", self.conf]

    def _run(self, extra):
        rc, out, err = svc.run_cmd(self._argv(extra), timeout=20)
        eq(rc, 0, f"nginx {' '.join(extra)}: {out}{err}")

    def _healthy(self):
        if not self.process.alive():
            raise AssertionError(
                f"nginx {h.describe_exit(self.process.proc.returncode)}")
        try:
            return self.request("GET", "/healthz", timeout=1).status == 200
        except OSError:
            return False

    def errors(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return self.process.stderr()

    def read_access_log(self):
        try:
            with open(self.access_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def request(self, method, path, body=None, headers=None, timeout=15):
        return h.http_request(self.host, self.port, method, path, body,
                              headers, timeout)

    def stop(self):
        problem = self.process.stop()
        check(problem is None, f"stopping nginx: {problem}")


def fanout(n, urls, rid=None):
    headers = {"Content-Type": "application/json"}
    if rid is not None:
        headers["X-Request-Id"] = rid
    return n.request("POST", "/fetch", json.dumps(urls), headers)


def fetch_lines(d):
    return [l for l in svc.access_lines(d.process.stderr())
            if l.get("path") == "/fetch"]


def check_complete(r, urls, what):
    eq(r.status, 200, f"{what}: status ({r.text[:300]!r})")
    ans = r.json()
    eq([x["url"] for x in ans["results"]], urls, f"{what}: results")
    eq([x["status"] for x in ans["results"]], [200] * len(urls),
       f"{what}: statuses")
    eq(ans["summary"]["ok"], len(urls), f"{what}: summary.ok")


def test_example_configs_agree():
    """The limits the two example files must share."""
    scaled = example("fanoutd-scaled.conf")
    site = example("nginx-fanoutd.conf")
    rc, out, err = svc.run_cmd([h.env("FANOUTD_BIN"), "-t", "-c",
                                svc.srcpath("conf", "fanoutd-scaled.conf")])
    eq(rc, 0, f"fanoutd -t -c conf/fanoutd-scaled.conf: {out}{err}")
    body = int(re.search(r"max_request_bytes\s*=\s*(\d+)", scaled).group(1))
    m = re.search(r"client_max_body_size\s+(\d+)([kKmM]?);", site)
    check(m is not None, "no client_max_body_size in nginx-fanoutd.conf")
    scale = {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    eq(int(m.group(1)) * scale, body,
       "client_max_body_size vs limits.max_request_bytes")
    deadline = int(re.search(r"request_timeout_ms\s*=\s*(\d+)",
                             scaled).group(1))
    read = int(re.search(r"proxy_read_timeout\s+(\d+)s;", site).group(1))
    check(read * 1000 > deadline,
          f"proxy_read_timeout {read}s <= request_timeout_ms {deadline}")
    check(re.search(r"proxy_buffering\s+off;", site), "proxy_buffering on")
    check(re.search(r"^\s*keepalive\s+\d+;", site, re.M),
          "no upstream keepalive")
    idle = int(re.search(r"keepalive_timeout\s+(\d+)s;", site).group(1))
    cut = int(re.search(r"client_timeout_ms\s*=\s*(\d+)", scaled).group(1))
    check(idle * 1000 < cut, f"upstream keepalive_timeout {idle}s >= "
                             f"client_timeout_ms {cut}: nginx may reuse a "
                             "connection fanoutd is closing")


def test_two_instances_behind_nginx():
    u = h.upstream()
    with svc.ServiceDaemon(instance_config) as a, \
            svc.ServiceDaemon(instance_config) as b:
        n = Nginx([a.port, b.port])
        try:
            # 20 fan-outs at once, each with its own request id.
            answers = {}

            def one(i):
                urls = [u.url(f"/delay/300?i={i}"),
                        u.url(f"/status/200?i={i}")]
                try:
                    answers[i] = (urls, fanout(n, urls, f"scale-{i}"))
                except Exception as e:  # noqa: B902 - reported below
                    answers[i] = (urls, e)

            threads = [threading.Thread(target=one, args=(i,), daemon=True)
                       for i in range(FANOUTS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(20)
            eq(sorted(answers), list(range(FANOUTS)), "fan-outs answered")
            for i, (urls, r) in answers.items():
                check(not isinstance(r, Exception), f"fan-out {i}: {r!r}")
                check_complete(r, urls, f"fan-out {i}")
                eq(r.header("X-Request-Id"), f"scale-{i}", "X-Request-Id")

            la, lb = fetch_lines(a), fetch_lines(b)
            check(la and lb, f"one instance served everything: "
                             f"{len(la)} and {len(lb)}")
            ids = sorted(l["id"] for l in la + lb)
            eq(ids, sorted(f"scale-{i}" for i in range(FANOUTS)),
               "request ids in the instances' access logs")

            # No X-Request-Id: nginx's own, logged by the instance.
            r = fanout(n, [u.url("/status/200")])
            check_complete(r, [u.url("/status/200")], "without an id")
            rid = r.header("X-Request-Id") or ""
            check(re.fullmatch(r"[0-9a-f]{32}", rid),
                  f"X-Request-Id {rid!r} is not nginx's $request_id")
            check(any(l["id"] == rid for l in fetch_lines(a) + fetch_lines(b)),
                  f"{rid} in no instance's access log")
            # nginx logs a request after it has answered it.
            h.wait_for(lambda: f"id={rid}" in n.read_access_log(), 5,
                       f"{rid} in nginx's access log")

            # Streaming passes each line on as it comes.
            urls = [u.url("/delay/50"), u.url("/delay/1200")]
            conn = http.client.HTTPConnection(n.host, n.port, timeout=10)
            try:
                start = time.monotonic()
                conn.request("POST", "/fetch?stream=1", json.dumps(urls),
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                eq(resp.status, 200, "streaming status")
                first = json.loads(resp.readline())
                first_at = time.monotonic() - start
                rest = [json.loads(l) for l in resp.read().splitlines() if l]
                done_at = time.monotonic() - start
            finally:
                conn.close()
            eq(first.get("url"), urls[0], f"first line: {first!r}")
            check(first_at < 0.9,
                  f"first line after {first_at:.2f}s: nginx buffered it")
            check(done_at >= 1.1, f"stream done after {done_at:.2f}s")
            check(len(rest) == 2, f"rest of the stream: {rest!r}")

            # A body over client_max_body_size stops at nginx.
            r = n.request("POST", "/fetch", b"x" * (1024 * 1024 + 1),
                          {"Content-Type": "text/plain"})
            eq(r.status, 413, "a body over 1 MiB")

            errors = [l for l in n.errors().splitlines()
                      if re.search(r"\[(error|crit|alert|emerg)\]", l)]
            check(not errors or all("client intended to send too large body"
                                    in l for l in errors),
                  f"nginx errors: {errors[:5]}")

            # One instance stops: the other serves everything.
            eq(b.process.stop(), None, "stopping instance b")
            before = len(fetch_lines(a))
            for i in range(4):
                urls = [u.url(f"/status/200?down={i}")]
                check_complete(fanout(n, urls), urls, f"with b down, {i}")
            eq(len(fetch_lines(a)) - before, 4, "served by a with b down")
        finally:
            n.stop()


def start_on(port, reuse):
    """fanoutd on 127.0.0.1:port (no retry: the port is the point)."""
    path = h.tmpfile("fanoutd-reuse")
    with open(path, "w") as f:
        f.write(h.render_config(h.merge(h.BASE_CONFIG, {
            "listen": {"address": "127.0.0.1", "port": port,
                       "reuse_port": reuse},
            "log": {"level": "info", "access_log": True}})))
    return h.Process([h.env("FANOUTD_BIN"), "-c", path], "fanoutd")


def test_reuse_port_lets_instances_share_a_port():
    u = h.upstream()
    port = h.free_port()
    a = start_on(port, True)
    b = None
    try:
        h.wait_for(lambda: "listening" in a.stderr(), 10, "first instance")
        b = start_on(port, True)
        h.wait_for(lambda: "listening" in b.stderr(), 10, "second instance")
        for _ in range(40):
            r = h.http_request("127.0.0.1", port, "POST", "/fetch",
                               json.dumps([u.url("/status/200")]),
                               {"Content-Type": "application/json"})
            eq(r.status, 200, "a fan-out on the shared port")
        served = [p.stderr().count("path=/fetch") for p in (a, b)]
        eq(sum(served), 40, f"access lines per instance {served}")
        check(a.alive() and b.alive(), "both instances still run")
    finally:
        for p in (a, b):
            if p is not None:
                p.stop()


def test_without_reuse_port_a_second_instance_cannot_bind():
    port = h.free_port()
    a = start_on(port, False)
    try:
        h.wait_for(lambda: "listening" in a.stderr(), 10, "first instance")
        b = start_on(port, False)
        h.wait_for(lambda: not b.alive(), 10, "the second instance to exit")
        check(b.proc.returncode != 0, "the second instance failed")
        check("cannot listen" in b.stderr(), b.stderr()[-300:])
        b.stop()
    finally:
        a.stop()

"""Issue 3, who may be fetched and who may ask: the target policy (deny and
allow lists, every spelling of an address, every redirect hop), schemes,
URL and header validation, custom headers kept from other hosts, proxy
variables ignored, the client gate and the bearer token.

Loopback only (test_default_deny_list names 169.254.169.254 and other
non-loopback addresses, which the default policy refuses before any
connect(): if that test fails, a connection was attempted; look at why
before running it again).  Linux routes all of 127/8 to lo, so a second
upstream on 127.0.0.2 is "another host" that a policy can deny; its hit
log proves that a denied target never received a request.  A RawServer
(harness) counts raw TCP connections, for schemes that do not speak HTTP.
Each test that counts hits starts its own upstreams, so no other test's
traffic shows.
"""

import contextlib
import json
import os
import threading
import time

import harness as h
from harness import check, eq
from test_api import check_result, code_of, results_of

OTHER = "127.0.0.2"  # a second loopback address: "another host"
DENY_OTHER = {"security": {"deny_targets": [f"{OTHER}/32"]}}
ALLOW_ONE = {"security": {"allow_targets": ["127.0.0.1/32"]}}
TOKEN = "t0ken-Zq9-sEcReT"
LOUD = {"level": "debug", "access_log": True}  # log all there is


# Fixtures of this module.

@contextlib.contextmanager
def upstream_at(host="127.0.0.1"):
    """A private upstream on host, stopped (and checked) at the end."""
    u = h.Upstream(host)
    try:
        yield u
    except BaseException:
        u.stop()
        raise
    eq(u.stop(), None, f"upstream on {host} stop")


class GatedDaemon(h.Daemon):
    """A daemon that may refuse us: ready when /healthz answers at all
    (403 from the client gate counts), not only with 200."""

    def _healthy(self):
        if not self.process.alive():
            raise AssertionError(
                f"fanoutd {h.describe_exit(self.process.proc.returncode)}")
        try:
            return self.request("GET", "/healthz", timeout=1).status in (
                200, 401, 403)
        except OSError:
            return False


def set_environment(values):
    """Set each variable to its value, or unset it for None."""
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextlib.contextmanager
def environment(**values):
    """Set environment variables (None: unset) for processes started
    inside; restored after.  Tests run one at a time, so this is safe."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        set_environment(values)
        yield
    finally:
        set_environment(saved)


def redirect_to(u, target):
    return u.url("/redirect?to=" + h.urlquote(target))


def lower_keys(headers):
    return {k.lower(): v for k, v in headers.items()}


def blocked(r):
    eq(code_of(r), "blocked", f"error for {r['url']}: {r['error']}")


def no_passwd(r):
    check(b"root:" not in r.body, f"/etc/passwd leaked: {r.text[:500]}")


# Which targets may be fetched.

def test_deny_target_direct():
    with upstream_at() as u1, upstream_at(OTHER) as u2:
        with h.run_daemon(DENY_OTHER) as d:
            urls = [u2.url("/status/200"), u1.url("/status/200")]
            res = results_of(d.fetch_ok(urls), urls)
            eq(code_of(res[0]), "blocked", f"a denied target: {res[0]}")
            eq(res[0]["status"], None, "status of a blocked fetch")
            eq(res[0]["ok"], False, "ok")
            eq(res[1]["status"], 200, "the allowed sibling")
            eq(u2.hits(), 0, "requests that reached the denied upstream")
            eq(u1.hits("/status/200"), 1, "hits on the allowed upstream")


def test_deny_checked_after_dns():
    """A host name is matched by the address it resolves to.  "localhost"
    libcurl resolves itself; "LocalHost." (not in /etc/hosts as spelled,
    so glibc asks DNS) and a made-up name are answered 127.0.0.1 by the
    test's own loopback resolver, the daemon's only one: no lookup leaves
    the machine, and each must still be refused."""
    h.require_private_resolver()
    names = {"LocalHost": "127.0.0.1", "fanoutd-denied.test": "127.0.0.1"}
    with upstream_at() as u, h.DnsServer(names) as dns:
        deny = {"security": {"deny_targets": ["127.0.0.1/32", "::1/128"]}}
        with h.run_daemon_with_resolver(dns, deny) as d:
            urls = [f"http://localhost:{u.port}/status/200",
                    f"http://LocalHost.:{u.port}/status/200",
                    f"http://fanoutd-denied.test:{u.port}/status/200"]
            res = results_of(d.fetch_ok(urls), urls)
            for r in res:
                blocked(r)
            eq(u.hits(), 0, "requests that reached the denied address")
        eq(sorted(set(dns.names())), ["LocalHost", "fanoutd-denied.test"],
           f"names looked up ({dns.queries})")


def test_deny_target_via_redirect():
    """Allowed first hop, denied second: blocked, and zero hits there."""
    with upstream_at() as u1, upstream_at(OTHER) as u2:
        with h.run_daemon(DENY_OTHER) as d:
            hp2 = h.hostport(OTHER, u2.port)
            urls = [redirect_to(u1, u2.url("/status/200")),
                    redirect_to(u1, f"//{hp2}/status/200"),  # scheme-relative
                    redirect_to(u1, f"http://2130706434:{u2.port}/status/200"),
                    u1.url("/redirect?to=" + h.urlquote(
                        redirect_to(u1, u2.url("/status/200"))))]  # 2nd hop
            res = results_of(d.fetch_ok(urls), urls)
            for r in res:
                blocked(r)
                check(r["redirects"] >= 1,
                      f"the allowed hop was not followed: {r}")
            eq(u2.hits(), 0, "requests that reached the denied upstream")
            eq(u1.hits("/redirect"), 5, "hops on the allowed upstream")


# Every spelling of 127.0.0.2 that libcurl resolves to it.  The first
# daemon (empty deny list) proves that each one really reaches the second
# upstream; the second (127.0.0.2/32 denied) that none of them does.
SPELLINGS = [
    ("decimal", "2130706434"),
    ("octal", "0177.0.0.2"),
    ("hex", "0x7f000002"),
    ("hex dotted", "0x7f.0.0.2"),
    ("short a.b", "127.2"),
    ("short a.b.c", "127.0.2"),
    ("v4-mapped", "[::ffff:127.0.0.2]"),
    ("v4-mapped hex", "[::ffff:7f00:2]"),
    ("plain", "127.0.0.2"),
]


def test_deny_target_every_spelling():
    with upstream_at(OTHER) as u2:
        urls = [f"http://{host}:{u2.port}/status/200?{i}"
                for i, (_, host) in enumerate(SPELLINGS)]
        with h.run_daemon({"security": {"deny_targets": []}}) as d:
            res = results_of(d.fetch_ok(urls), urls)
            reached = [r["url"] for r in res if r["status"] == 200]
        eq(u2.hits(), len(reached), "control: hits without a deny list")
        check(len(reached) >= len(SPELLINGS) - 2,
              f"control: only {reached} reach {OTHER}; the spellings "
              "test nothing")
        u2.reset_hits()
        with h.run_daemon(DENY_OTHER) as d:
            res = results_of(d.fetch_ok(urls), urls)
            for (name, _), r in zip(SPELLINGS, res):
                check(code_of(r) in ("blocked", "invalid_url"),
                      f"{name} spelling {r['url']}: {r['error']} "
                      f"(status {r['status']})")
                if r["url"] in reached:
                    eq(code_of(r), "blocked", f"{name} spelling {r['url']}")
            eq(u2.hits(), 0, "requests that reached the denied upstream")


def test_deny_ipv4_embedding_ipv6():
    """NAT64, IPv4-compatible and 6to4 addresses carrying a denied IPv4
    address are matched as it: blocked, not a connect error."""
    if not h.ipv6_available():
        raise h.Skip("no IPv6 here")
    with h.run_daemon(DENY_OTHER) as d:
        urls = ["http://[64:ff9b::127.0.0.2]:9/", "http://[::127.0.0.2]:9/",
                "http://[2002:7f00:2::1]:9/"]
        start = time.monotonic()
        res = results_of(d.fetch_ok(urls), urls)
        for r in res:
            blocked(r)
        check(time.monotonic() - start < 1,
              "a connection was attempted before the refusal")


def test_allow_targets_only():
    with upstream_at() as u1, upstream_at(OTHER) as u2:
        with h.run_daemon(ALLOW_ONE) as d:
            urls = [u1.url("/status/200"), u2.url("/status/200"),
                    redirect_to(u1, u2.url("/status/200")),
                    f"http://[::ffff:127.0.0.2]:{u2.port}/status/200",
                    f"http://2130706434:{u2.port}/status/200"]
            res = results_of(d.fetch_ok(urls), urls)
            eq(res[0]["status"], 200, f"the allowed target: {res[0]}")
            for r in res[1:]:
                blocked(r)
            eq(u2.hits(), 0, "requests outside allow_targets")
            eq(u1.hits(), 2, "hits on the allowed upstream")


def test_reload_policy_drops_pooled_connections():
    """A connection pooled under the old policy never carries a request
    once a reload (SIGHUP) denies its address."""
    with upstream_at(OTHER) as u2:
        cfg = {"workers": {"threads": 1}, "security": {"deny_targets": []},
               "log": {"level": "info"}}
        with h.run_daemon(cfg) as d:
            url = u2.url("/status/200")
            for i in range(2):
                res = results_of(d.fetch_ok([url]), [url])[0]
                eq(res["status"], 200, "before the reload")
            eq(res["time_ms"]["connect"], 0,
               f"control: the second fetch did not reuse the connection "
               f"({res['time_ms']})")
            check(d.reload({"security": {"deny_targets": [f"{OTHER}/32"]}}),
                  "the reload failed")
            res = results_of(d.fetch_ok([url]), [url])[0]
            blocked(res)
            eq(u2.hits(), 2, "requests that reached the upstream")


# Issue 9, item 1: every spelling of the unspecified address, which Linux
# connects to the local host.
UNSPECIFIED_V4 = ["0.0.0.0", "0", "%30", "0x0", "00000", "0.0",
                  "[::ffff:0.0.0.0]"]
UNSPECIFIED_V6 = ["[::]", "[::0.0.0.0]", "[0:0:0:0:0:0:0:0]"]
DENY_LOOPBACK = {"security": {"deny_targets": ["127.0.0.1/32", "::1/128"]}}


def unspecified_urls(port, spellings):
    return [f"http://{host}:{port}/status/200?{i}"
            for i, host in enumerate(spellings)]


def assert_none_reached(res, *upstreams):
    for r in res:
        check(code_of(r) in ("blocked", "invalid_url"),
              f"{r['url']}: {r['error']} (status {r['status']})")
        eq(r["status"], None, f"status for {r['url']}")
        eq(r["remote_ip"], None, f"remote_ip for {r['url']}")
    for u in upstreams:
        eq(u.hits(), 0, f"requests that reached {u.host}")


def test_unspecified_address_never_fetched():
    """0.0.0.0 in every spelling (and :: for IPv6) reaches loopback on
    Linux: with loopback denied, none of them may get through, directly
    or by redirect."""
    v6 = h.ipv6_available()
    with upstream_at() as u4, upstream_at(OTHER) as hop:
        u6 = h.Upstream("::1") if v6 else None
        try:
            urls = unspecified_urls(u4.port, UNSPECIFIED_V4)
            if v6:
                urls += unspecified_urls(u6.port, UNSPECIFIED_V6)
            urls += [redirect_to(hop, url) for url in list(urls)]
            with h.run_daemon(DENY_LOOPBACK) as d:
                res = results_of(d.fetch_ok(urls), urls)
                assert_none_reached(res, u4, *([u6] if v6 else []))
                check(sum(code_of(r) == "blocked" for r in res)
                      >= len(res) - 2,
                      f"most spellings should parse and be blocked: "
                      f"{[(r['url'], code_of(r)) for r in res]}")
        finally:
            if u6 is not None:
                eq(u6.stop(), None, "upstream on ::1 stop")


def test_unspecified_address_blocked_whatever_the_lists():
    """No deny list at all, or an allow list of everything: 0.0.0.0 and
    :: are still never fetched."""
    with upstream_at() as u4:
        urls = unspecified_urls(u4.port, ["0.0.0.0", "0", "[::ffff:0.0.0.0]"])
        if h.ipv6_available():
            urls += [f"http://[::]:{u4.port}/status/200"]
        for sec in ({"deny_targets": []},
                    {"deny_targets": [], "allow_targets": ["0.0.0.0/0",
                                                           "::/0"]}):
            with h.run_daemon({"security": sec}) as d:
                assert_none_reached(results_of(d.fetch_ok(urls), urls), u4)
        control = u4.url("/status/200")
        with h.run_daemon({"security": {"deny_targets": []}}) as d:
            eq(results_of(d.fetch_ok([control]), [control])[0]["status"],
               200, "control: 127.0.0.1 itself is allowed")


def test_reload_tightening_policy_reaches_nothing_new():
    """Issue 9, item 2.  A fan-out admitted before a reload that denies
    a target may open a connection to it under the old policy; nothing
    admitted after the reload may reach that target, even on a pooled
    connection.  One worker, so that connections are shared."""
    with upstream_at() as u1, upstream_at(OTHER) as u2:
        cfg = {"workers": {"threads": 1}, "security": {"deny_targets": []},
               "log": {"level": "info"}}
        with h.run_daemon(cfg) as d:
            old = [u1.url("/delay/600"), u2.url("/status/201")]
            box = {}
            t = threading.Thread(target=lambda: box.update(
                a=d.fetch_ok(old, timeout=20)))
            t.start()
            h.wait_for(lambda: u1.hits("/delay") == 1, 5,
                       "the old fan-out's first fetch to start")
            check(d.reload({"security": {"deny_targets": [f"{OTHER}/32"]}}),
                  "the reload failed")
            new = [u2.url("/status/202"), u2.url("/status/202?again")]
            res = results_of(d.fetch_ok(new, timeout=20), new)
            t.join(20)
            check(not t.is_alive(), "the old fan-out did not finish")
            for r in res:
                blocked(r)
            olds = results_of(box["a"], old)
            eq(olds[1]["status"], 201,
               "the fetch admitted before the reload keeps its policy")
            eq(u2.hits("/status/201"), 1, "control: the old fetch's hit")
            eq(u2.hits("/status/202"), 0,
               "requests admitted after the reload that reached the "
               "newly denied target")


# Issue 9, item 3: headers that frame the message or steer the connection.
FRAMING_HEADERS = ["Content-Length", "Transfer-Encoding", "Connection",
                   "Upgrade", "TE", "Trailer", "Expect", "Keep-Alive",
                   "Proxy-Authorization", "proxy-connection",
                   "content-length"]


def test_framing_headers_refused_per_item():
    with upstream_at() as u:
        items = [{"url": u.url("/headers"), "headers": {name: "20"},
                  "id": name} for name in FRAMING_HEADERS]
        items.append({"url": u.url("/headers"), "id": "fine",
                      "headers": {"X-Fine": "1", "Host-Ish": "2"}})
        res = h.daemon().fetch_ok(items)["results"]
        for name, r in zip(FRAMING_HEADERS, res):
            eq(code_of(r), "invalid_url", f"item with {name}")
            check(name.lower().split("-")[0] in r["error"]["message"].lower(),
                  f"the message names {name}: {r['error']['message']!r}")
        eq(res[-1]["status"], 200, "the valid sibling")
        eq(u.hits(), 1, "fetches made (only the valid item)")


def test_framing_headers_refused_per_request():
    with upstream_at() as u:
        d = h.daemon()
        for name in FRAMING_HEADERS:
            r = d.fetch({"urls": [u.url("/headers")],
                         "headers": {name: "20"}})
            err = h.error_body(r, 400, "invalid_request")
            check(name.lower().split("-")[0] in err["message"].lower(),
                  f"the message names {name}: {err['message']!r}")
        eq(u.hits(), 0, "fetches made for refused requests")


def test_default_deny_list():
    """The default deny list (no security keys) refuses the cloud metadata
    address in every spelling, and link-local IPv6, before connecting."""
    with h.run_daemon() as d:
        urls = ["http://169.254.169.254/latest/meta-data/",
                "http://0xa9fea9fe/latest/meta-data/",
                "http://2852039166/latest/meta-data/",
                "http://0251.0376.0251.0376/latest/meta-data/",
                "http://169.254.43518/latest/meta-data/"]
        if h.ipv6_available():
            urls += ["http://[::ffff:169.254.169.254]/latest/meta-data/",
                     "http://[fd00:ec2::254]/latest/meta-data/",
                     "http://[fe80::1]:9/"]
        start = time.monotonic()
        res = results_of(d.fetch_ok(urls), urls)
        for r in res:
            blocked(r)
            eq(r["status"], None, f"status for {r['url']}")
        check(time.monotonic() - start < 1.5,
              "refusals took long: was a connection attempted?")


# Schemes.

def test_schemes_refused_directly():
    with h.RawServer() as lst, upstream_at() as u:
        hp = f"127.0.0.1:{lst.port}"
        urls = ["file:///etc/passwd", "FILE:///etc/passwd",
                "file://localhost/etc/passwd", f"gopher://{hp}/_GET%20/",
                f"dict://{hp}/d:x", f"ftp://{hp}/x", f"scp://{hp}/x",
                f"sftp://{hp}/x", f"telnet://{hp}/", f"ldap://{hp}/",
                f"tftp://{hp}/x", f"smtp://{hp}/", f"imap://{hp}/",
                f"pop3://{hp}/", f"rtsp://{hp}/", f"mqtt://{hp}/x",
                f"smb://{hp}/x", u.url("/status/200").replace("http", "HTTP")]
        r = d_fetch(urls)
        no_passwd(r)
        res = results_of(r.json(), urls)
        for x in res[:-1]:
            check(code_of(x) in ("unsupported_scheme", "invalid_url"),
                  f"error for {x['url']}: {x['error']} (status {x['status']})")
            eq(x["bytes"], 0, f"bytes for {x['url']}")
        eq(res[-1]["status"], 200, "HTTP:// in capitals is http")
        time.sleep(0.05)  # a connection made would have been accepted
        eq(lst.accepted, 0, "connections to the non-http targets")


def d_fetch(urls):
    """POST urls to the module's default daemon, expecting 200."""
    r = h.daemon().fetch(urls)
    eq(r.status, 200, f"status ({r.text[:300]})")
    return r


def test_schemes_refused_on_redirect():
    with h.RawServer() as lst, upstream_at() as u:
        hp = f"127.0.0.1:{lst.port}"
        targets = ["file:///etc/passwd", "FILE:///etc/passwd",
                   f"gopher://{hp}/_GET%20/", f"dict://{hp}/d:x",
                   f"ftp://{hp}/x", f"telnet://{hp}/", f"ldap://{hp}/"]
        urls = [redirect_to(u, t) for t in targets]
        r = d_fetch(urls)
        no_passwd(r)
        for x in results_of(r.json(), urls):
            eq(code_of(x), "unsupported_scheme",
               f"error for {x['url']}: {x['error']}")
            eq(x["ok"], False, "ok")
        time.sleep(0.05)
        eq(lst.accepted, 0, "connections to the non-http targets")
        eq(u.hits(), len(urls), "upstream hits besides the redirects")


# URL and header validation.

def test_url_validation():
    with upstream_at() as u:
        good = u.url("/status/200")
        base = u.url("/status/200")
        long_ok = base + "?" + "a" * (8192 - len(base) - 1)
        items = [base + "\r\nX-Injected: 1", base + "\nX-Injected: 1",
                 base + "\rX-Injected: 1", base + "\x00/x",
                 f"http://user:password@127.0.0.1:{u.port}/status/200",
                 f"http://user@127.0.0.1:{u.port}/status/200",
                 f"http://:password@127.0.0.1:{u.port}/status/200",
                 long_ok + "a", good, long_ok]
        eq(len(long_ok), 8192, "test setup: URL of exactly 8 KiB")
        ans = h.daemon().fetch_ok(items)
        res = ans["results"]
        eq(len(res), len(items), "number of results")
        for i, (r, url) in enumerate(zip(res, items)):
            # a URL holding NUL is echoed as null (a C string cannot hold it)
            check_result(r, i, None if "\x00" in url and r["url"] is None
                         else url)
        for r in res[:-2]:
            eq(code_of(r), "invalid_url",
               f"error for {str(r['url'])[:80]!r}: {r['error']}")
            eq(r["effective_url"], None,
               f"effective_url of {str(r['url'])[:80]!r}")
        eq(res[-2]["status"], 200, "the valid sibling")
        eq(res[-1]["status"], 200, "a URL of exactly 8192 bytes")
        eq(u.hits(), 2, "upstream hits (only the valid URLs)")
        last = u.last("/status/200")
        check("x-injected" not in lower_keys(last["headers"]),
              f"header injected: {last}")


def test_redirect_to_userinfo_refused():
    with upstream_at() as u1, upstream_at(OTHER) as u2:
        url = redirect_to(u1, f"http://user:pw@{OTHER}:{u2.port}/status/200")
        res = results_of(h.daemon().fetch_ok([url]), [url])
        eq(code_of(res[0]), "invalid_url", f"error: {res[0]['error']}")
        eq(u2.hits(), 0, "hits on the userinfo target")


BAD_HEADERS = [
    {"X-A": "a\r\nX-Injected: 1"},
    {"X-A": "a\nX-Injected: 1"},
    {"X-A": "a\rb"},
    {"X-A": "a\u0000b"},
    {"X-A\r\nX-Injected": "1"},
    {"Bad Name": "v"},
    {"X:A": "v"},
    {"": "v"},
    {"X(A)": "v"},
    {"X-\u00e4": "v"},
    {"X-A": 5},
    {"X-A": None},
]


def test_request_header_validation():
    """A bad request-level header fails the whole request: 400."""
    with upstream_at() as u:
        d = h.daemon()
        for hdrs in BAD_HEADERS:
            r = d.fetch({"urls": [u.url("/headers")], "headers": hdrs})
            h.error_body(r, 400, "invalid_request")
        eq(u.hits(), 0, "fetches made for rejected requests")
        r = d.fetch_ok({"urls": [u.url("/headers")],
                        "headers": {"X-Fine": "a value; with: punctuation"}})
        eq(r["results"][0]["status"], 200, "control: a valid header")
        eq(lower_keys(u.last("/headers")["headers"]).get("x-fine"),
           "a value; with: punctuation", "control: the header sent")


def test_item_header_validation():
    """A bad item header fails that item (invalid_url) and nothing else."""
    with upstream_at() as u:
        items = [{"url": u.url("/headers"), "headers": hdrs, "id": i}
                 for i, hdrs in enumerate(BAD_HEADERS)]
        items.append({"url": u.url("/headers"), "headers": {"X-Ok": "1"},
                      "id": "good"})
        ans = h.daemon().fetch_ok(items)
        res = ans["results"]
        eq(len(res), len(items), "number of results")
        for hdrs, r in zip(BAD_HEADERS, res[:-1]):
            eq(code_of(r), "invalid_url", f"error for headers {hdrs!r}")
        eq(res[-1]["status"], 200, "the valid sibling")
        eq(res[-1].get("id"), "good", "id of the valid sibling")
        eq(u.hits(), 1, "fetches made (only the valid item)")
        seen = lower_keys(u.last("/headers")["headers"])
        check("x-injected" not in seen, f"header injected: {seen}")
        eq(seen.get("x-ok"), "1", "the valid item's header")


SECRETS = {"X-Secret": "s3cret", "Authorization": "Bearer s3cret",
           "Cookie": "sid=s3cret"}


def test_headers_not_sent_to_another_host():
    with upstream_at() as u1, upstream_at(OTHER) as u2:
        d = h.daemon()
        hp2 = h.hostport(OTHER, u2.port)
        targets = [redirect_to(u1, u2.url("/headers")),
                   redirect_to(u1, f"//{hp2}/headers"),
                   u1.url("/redirect?to=" + h.urlquote(
                       redirect_to(u1, u2.url("/headers"))))]
        for i, url in enumerate(targets):
            for payload in ([{"url": url, "headers": SECRETS}],
                            {"urls": [url], "headers": SECRETS}):
                u2.reset_hits()
                res = results_of(d.fetch_ok(payload), [url])[0]
                eq(res["status"], 200, f"status via {url}: {res}")
                last = u2.last("/headers")
                check(last is not None, f"{OTHER} was not reached: {res}")
                seen = lower_keys(last["headers"])
                for name in SECRETS:
                    check(name.lower() not in seen,
                          f"{name} leaked to {OTHER} via {url} "
                          f"({json.dumps(payload)[:60]}...): {seen}")
                check("s3cret" not in json.dumps(last),
                      f"secret leaked to {OTHER}: {last}")
        # the first hop, at the origin the client named, did get them
        first = lower_keys(u1.last("/redirect")["headers"])
        eq(first.get("x-secret"), "s3cret", "headers sent to the origin")


def test_headers_kept_on_same_origin_redirect():
    with upstream_at() as u:
        url = u.url("/redirect?to=/headers")
        absolute = redirect_to(u, u.url("/headers"))
        for target in (url, absolute):
            res = results_of(h.daemon().fetch_ok(
                [{"url": target, "headers": {"X-Secret": "s3cret"}}]),
                [target])[0]
            eq(res["status"], 200, f"status: {res}")
            eq(res["redirects"], 1, "redirects")
            seen = lower_keys(u.last("/headers")["headers"])
            eq(seen.get("x-secret"), "s3cret",
               f"same-origin redirect {target} dropped the header")


def test_proxy_environment_ignored():
    with h.RawServer() as proxy, upstream_at() as u:
        purl = f"http://127.0.0.1:{proxy.port}"
        env = {k: purl for k in ("http_proxy", "HTTP_PROXY", "https_proxy",
                                 "HTTPS_PROXY", "ALL_PROXY", "all_proxy")}
        env.update(no_proxy=None, NO_PROXY=None)
        with environment(**env):
            d = h.run_daemon()
        with d:
            urls = [u.url("/bytes/17"), redirect_to(u, u.url("/bytes/18"))]
            res = results_of(d.fetch_ok(urls), urls)
            eq([r["status"] for r in res], [200, 200], "statuses")
            eq([r["bytes"] for r in res], [17, 18], "bytes (not the proxy's)")
            eq(res[0]["remote_ip"], "127.0.0.1", "remote_ip")
            eq(proxy.accepted, 0, "connections to the environment's proxy")
            eq(u.hits("/bytes/"), 2, "direct hits on the upstream")


# Who may ask.

def forbidden_everywhere(d):
    for method, path, body in (("POST", "/fetch", "[]"),
                               ("GET", "/healthz", None),
                               ("GET", "/metrics", None),
                               ("GET", "/nope", None),
                               ("PUT", "/fetch", "[]")):
        hdrs = {"Content-Type": "application/json"} if body else {}
        r = d.request(method, path, body, hdrs)
        h.error_body(r, 403, "forbidden")


def test_allow_clients_refuses_others():
    with upstream_at() as u:
        with GatedDaemon({"security": {"allow_clients": ["10.0.0.0/8"]}}) as d:
            forbidden_everywhere(d)
            r = d.fetch([u.url("/status/200")])
            h.error_body(r, 403, "forbidden")
        with GatedDaemon({"security": {"allow_clients": ["::1/128"]}}) as d:
            forbidden_everywhere(d)
        eq(u.hits(), 0, "fetches made for refused clients")
        with GatedDaemon(
                {"security": {"allow_clients": ["127.0.0.1/32"]}}) as d:
            eq(d.request("GET", "/healthz").status, 200, "control: allowed")


def test_allow_clients_ipv6_client():
    if not h.ipv6_available():
        raise h.Skip("no IPv6 here")
    with GatedDaemon({"security": {"allow_clients": ["127.0.0.0/8"]}},
                     host="::1") as d:
        forbidden_everywhere(d)


def test_client_gate_before_token():
    with GatedDaemon({"security": {"allow_clients": ["10.0.0.0/8"],
                                   "auth_token": TOKEN}}) as d:
        r = d.request("POST", "/fetch", "[]",
                      {"Authorization": f"Bearer {TOKEN}",
                       "Content-Type": "application/json"})
        h.error_body(r, 403, "forbidden")


def wrong_auth(token):
    """Authorization values that must not pass for token."""
    return [None, "", "Bearer", "Bearer ", "Bearer wrong",
            f"Bearer {token[:-1]}", f"Bearer {token}x",
            f"Basic {token}", token, f"Bearer {token.upper()}",
            f"Bearer {token}, Bearer {token}"]


def check_token_gate(d, token, u):
    fetch = json.dumps([u.url("/status/200")])
    for path, method, body in (("/fetch", "POST", fetch),
                               ("/metrics", "GET", None)):
        for auth in wrong_auth(token):
            hdrs = {"Content-Type": "application/json"}
            if auth is not None:
                hdrs["Authorization"] = auth
            r = d.request(method, path, body, hdrs)
            h.error_body(r, 401, "unauthorized")
            www = r.header("WWW-Authenticate") or ""
            check(www.lower().startswith("bearer"),
                  f"{path} 401 WWW-Authenticate: {www!r}")
        hdrs = {"Content-Type": "application/json",
                "Authorization": f"Bearer {token}"}
        r = d.request(method, path, body, hdrs)
        eq(r.status, 200, f"{method} {path} with the token ({r.text[:200]})")
    eq(u.hits(), 1, "fetches made (only the authorized request)")
    r = d.request("GET", "/healthz")
    eq(r.status, 200, "/healthz without a token")


def test_auth_token():
    with upstream_at() as u:
        with h.run_daemon({"security": {"auth_token": TOKEN},
                           "log": LOUD}) as d:
            check_token_gate(d, TOKEN, u)
            log = d.process.stderr()
            check("/fetch" in log, f"no access log to check: {log[-300:]!r}")
            check(TOKEN not in log and TOKEN[:-1] not in log,
                  f"the token is in the daemon's log: {log[-800:]!r}")


def test_auth_token_file():
    token = "file-t0ken-Wq7"
    path = h.tmpfile("token")
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    with upstream_at() as u:
        with h.run_daemon({"security": {"auth_token_file": path},
                           "log": LOUD}) as d:
            check_token_gate(d, token, u)
            log = d.process.stderr()
            check(token not in log,
                  f"the token is in the daemon's log: {log[-800:]!r}")

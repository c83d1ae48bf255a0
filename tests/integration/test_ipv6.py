"""IPv6: the daemon listens on ::1 and fetches from an IPv6 upstream.
Skipped (not passed) where ::1 cannot be bound."""

import harness as h
from harness import eq
from test_api import results_of


def need_ipv6():
    if not h.ipv6_available():
        raise h.Skip("::1 is not available here")


def test_listen_ipv6():
    need_ipv6()
    u = h.upstream()
    with h.run_daemon(host="::1") as d:
        r = d.request("GET", "/healthz")
        eq(r.status, 200, "GET /healthz on [::1]")
        eq(r.json(), {"status": "ok"}, "body")
        urls = [u.url("/status/200")]
        res = results_of(d.fetch_ok(urls), urls)
        eq(res[0]["status"], 200, "fetch through an IPv6 listener")


def test_fetch_ipv6_target():
    need_ipv6()
    u6 = h.Upstream("::1")
    try:
        d = h.daemon()
        urls = [u6.url("/status/200"), u6.url("/redirects/1")]
        res = results_of(d.fetch_ok(urls), urls)
        eq([r["status"] for r in res], [200, 200], "statuses")
        eq(res[0]["remote_ip"], "::1", "remote_ip")
        eq(res[1]["effective_url"], u6.url("/redirects/0"), "effective_url")
    finally:
        problem = u6.stop()
    eq(problem, None, "IPv6 upstream stop")

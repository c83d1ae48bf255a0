"""POST /fetch and GET /healthz against one daemon with the default config.

Every test talks to the real daemon, which fetches from the real upstream
(tests/upstream.c).  The module shares one daemon: its config is the
default one throughout.
"""

import json
import struct
import threading
import time

import harness as h
from harness import check, eq

RESULT_KEYS = ("index", "url", "status", "ok", "error", "bytes", "redirects",
               "effective_url", "remote_ip", "time_ms", "http_version",
               "tls")
PHASES = ("queue", "dns", "connect", "tls", "ttfb", "transfer", "total")
SUMMARY_KEYS = ("total", "ok", "failed", "status_counts", "error_counts",
                "elapsed_ms", "earliest_cert_expiry")


def setup():
    u = h.upstream()
    u.reset_hits()
    return h.daemon(), u


def is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_result(r, index, url):
    """Every field present with its type; consistent with itself."""
    where = f"result {index}"
    check(isinstance(r, dict), f"{where} is not an object: {r!r}")
    missing = [k for k in RESULT_KEYS if k not in r]
    check(not missing, f"{where} lacks {missing}: {r!r}")
    eq(r["index"], index, f"{where} index")
    eq(r["url"], url, f"{where} url")
    check(isinstance(r["ok"], bool), f"{where} ok is not a bool: {r!r}")
    check(r["status"] is None or type(r["status"]) is int,
          f"{where} status type: {r!r}")
    check(type(r["bytes"]) is int and r["bytes"] >= 0, f"{where} bytes: {r!r}")
    check(type(r["redirects"]) is int and r["redirects"] >= 0,
          f"{where} redirects: {r!r}")
    check(r["effective_url"] is None or isinstance(r["effective_url"], str),
          f"{where} effective_url: {r!r}")
    check(r["remote_ip"] is None or isinstance(r["remote_ip"], str),
          f"{where} remote_ip: {r!r}")
    t = r["time_ms"]
    check(isinstance(t, dict), f"{where} time_ms: {r!r}")
    for phase in PHASES:
        check(phase in t and is_number(t[phase]) and t[phase] >= 0,
              f"{where} time_ms.{phase} missing or negative: {t!r}")
    keys = list(r)
    eq(keys[keys.index("time_ms"):keys.index("time_ms") + 4],
       ["time_ms", "http_version", "tls", "attempts"],
       f"{where} the keys after time_ms")
    check(type(r["attempts"]) is int and r["attempts"] >= 1,
          f"{where} attempts: {r!r}")
    check(is_number(t.get("retry_wait")) and t["retry_wait"] >= 0,
          f"{where} time_ms.retry_wait: {t!r}")
    check(r["http_version"] in ("1.0", "1.1", "2") if r["status"] else
          r["http_version"] is None, f"{where} http_version: {r!r}")
    if url is not None and url.startswith("http://"):
        eq(r["tls"], None, f"{where} tls of plain http")
    if r["error"] is None:
        check(type(r["status"]) is int, f"{where} no error but no status: {r!r}")
        eq(r["ok"], 200 <= r["status"] < 400, f"{where} ok for {r['status']}")
    else:
        e = r["error"]
        check(isinstance(e, dict) and isinstance(e.get("code"), str)
              and isinstance(e.get("message"), str),
              f"{where} error shape: {e!r}")
        eq(r["ok"], False, f"{where} ok with an error")
    return r


def results_of(answer, urls):
    """answer's results, checked in shape and order against urls."""
    check(isinstance(answer, dict) and "results" in answer
          and "summary" in answer, f"answer shape: {str(answer)[:300]}")
    res = answer["results"]
    eq(len(res), len(urls), "number of results")
    for i, (r, url) in enumerate(zip(res, urls)):
        check_result(r, i, url)
    return res


def code_of(r):
    return r["error"]["code"] if r["error"] else None


def closed_port():
    return h.free_port()


def test_healthz():
    d, _ = setup()
    r = d.request("GET", "/healthz")
    eq(r.status, 200, "status")
    check((r.header("Content-Type") or "").startswith("application/json"),
          f"Content-Type {r.header('Content-Type')!r}")
    eq(r.json(), {"status": "ok"}, "body")


def test_json_array_of_strings():
    d, u = setup()
    urls = [u.url("/status/200"), u.url("/status/201"), u.url("/bytes/1234")]
    res = results_of(d.fetch_ok(urls), urls)
    eq([r["status"] for r in res], [200, 201, 200], "statuses")
    eq([r["ok"] for r in res], [True, True, True], "ok")
    eq(res[2]["bytes"], 1234, "bytes of /bytes/1234")
    eq(u.hits(), 3, "upstream hits")


def test_json_object_form():
    d, u = setup()
    urls = [u.url("/status/200"), u.url("/status/202")]
    res = results_of(d.fetch_ok({"urls": urls}), urls)
    eq([r["status"] for r in res], [200, 202], "statuses")


def test_item_objects_echo_id():
    d, u = setup()
    ids = ["a", 7, 2.5, {"k": [1, "x"]}, [], True, None]
    items = [{"url": u.url(f"/status/{200 + i}"), "id": v}
             for i, v in enumerate(ids)]
    items.append({"url": u.url("/status/200")})  # no id
    urls = [it["url"] for it in items]
    res = results_of(d.fetch_ok(items), urls)
    for i, v in enumerate(ids):
        check("id" in res[i], f"result {i} lacks id: {res[i]!r}")
        eq(res[i]["id"], v, f"result {i} id")
    check(res[-1].get("id") is None, f"id invented: {res[-1]!r}")
    eq([r["status"] for r in res[:3]], [200, 201, 202], "statuses")


def test_number_ids_echo_exactly():
    """Every number in an id reads back as the same double (or integer)."""
    d, u = setup()
    literals = ["123456789012.5", "1.2345678901234567", "0.1", "1e300",
                "5e-324", "-0.0", "1.0", "0.30000000000000004",
                "9007199254740993", "-9223372036854775808",
                "[2.5e-8, {\"k\": 1.7976931348623157e308}]"]
    url = u.url("/status/200")
    body = "[" + ",".join(f'{{"url": "{url}", "id": {lit}}}'
                          for lit in literals) + "]"
    res = results_of(d.fetch_ok(body), [url] * len(literals))

    def same(a, b):
        if isinstance(a, float):
            return isinstance(b, float) and \
                struct.pack(">d", a) == struct.pack(">d", b)
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and \
                all(same(x, y) for x, y in zip(a, b))
        if isinstance(a, dict):
            return isinstance(b, dict) and a.keys() == b.keys() and \
                all(same(a[k], b[k]) for k in a)
        return type(a) is type(b) and a == b

    for i, lit in enumerate(literals):
        want = json.loads(lit)
        check(same(res[i]["id"], want),
              f"id {lit} came back as {res[i]['id']!r}")


def test_request_timeout_ms():
    d, u = setup()
    start = time.monotonic()
    ans = d.fetch_ok({"urls": [u.url("/hang")], "timeout_ms": 200})
    wall = time.monotonic() - start
    r = results_of(ans, [u.url("/hang")])[0]
    eq(code_of(r), "timeout", "error code")
    eq(r["status"], None, "status")
    check(wall < 3, f"a 200 ms timeout took {wall:.2f}s")
    check(150 <= r["time_ms"]["total"] < 2500,
          f"time_ms.total {r['time_ms']['total']} for a 200 ms timeout")


def test_item_timeout_overrides_request():
    d, u = setup()
    items = [
        {"url": u.url("/delay/400"), "timeout_ms": 5000},
        u.url("/hang"),
        {"url": u.url("/hang"), "timeout_ms": 100, "id": "short"},
    ]
    start = time.monotonic()
    ans = d.fetch_ok({"urls": items, "timeout_ms": 250})
    wall = time.monotonic() - start
    res = results_of(ans, [u.url("/delay/400"), u.url("/hang"), u.url("/hang")])
    eq(res[0]["status"], 200, "item timeout 5000 over request 250")
    eq(code_of(res[1]), "timeout", "request timeout 250 inherited")
    eq(code_of(res[2]), "timeout", "item timeout 100")
    check(res[2]["time_ms"]["total"] < res[1]["time_ms"]["total"],
          f"item timeout 100 ran longer than 250: {res[2]['time_ms']} "
          f"vs {res[1]['time_ms']}")
    check(wall < 3, f"took {wall:.2f}s")


def test_request_timeout_overrides_config():
    # config timeout_ms is 10000: a request of 300 must end a hang early
    d, u = setup()
    start = time.monotonic()
    d.fetch_ok({"urls": [u.url("/hang")], "timeout_ms": 300})
    check(time.monotonic() - start < 3, "request timeout_ms not applied")


def test_follow_redirects_false():
    d, u = setup()
    url = u.url("/redirects/2")
    r = results_of(d.fetch_ok({"urls": [url], "follow_redirects": False}),
                   [url])[0]
    eq(r["status"], 302, "status")
    eq(r["ok"], True, "ok of a 302")
    eq(r["error"], None, "error")
    eq(r["redirects"], 0, "redirects")
    eq(r["effective_url"], url, "effective_url")
    eq(u.hits("/redirects/"), 1, "hops fetched")


def test_method_head():
    d, u = setup()
    url = u.url("/bytes/1000")
    r = results_of(d.fetch_ok({"urls": [url], "method": "HEAD"}), [url])[0]
    eq(r["status"], 200, "status")
    eq(r["bytes"], 0, "bytes of a HEAD")
    eq(u.last("/bytes/1000")["method"], "HEAD", "method seen upstream")


def test_item_method_overrides_request():
    d, u = setup()
    items = [{"url": u.url("/bytes/1000"), "method": "GET"},
             u.url("/bytes/2000")]
    res = results_of(d.fetch_ok({"urls": items, "method": "HEAD"}),
                     [u.url("/bytes/1000"), u.url("/bytes/2000")])
    eq(res[0]["bytes"], 1000, "item GET over request HEAD")
    eq(res[1]["bytes"], 0, "request HEAD")
    eq(u.last("/bytes/1000")["method"], "GET", "item method upstream")
    eq(u.last("/bytes/2000")["method"], "HEAD", "request method upstream")


def seen_header(u, path, name):
    last = u.last(path)
    check(last is not None, f"upstream never saw {path}")
    for k, v in last["headers"].items():
        if k.lower() == name.lower():
            return v
    return None


def test_request_headers_sent():
    d, u = setup()
    url = u.url("/headers")
    res = d.fetch_ok({"urls": [url],
                      "headers": {"X-Fanout-Test": "hello world"}})
    eq(results_of(res, [url])[0]["status"], 200, "status")
    eq(seen_header(u, "/headers", "X-Fanout-Test"), "hello world",
       "header seen upstream")


def test_item_headers_override_request():
    d, u = setup()
    url = u.url("/headers")
    item = {"url": url, "headers": {"X-Fanout-B": "item"}}
    d.fetch_ok({"urls": [item], "headers": {"X-Fanout-B": "request"}})
    eq(seen_header(u, "/headers", "X-Fanout-B"), "item", "item header wins")


def test_default_user_agent():
    d, u = setup()
    d.fetch_ok([u.url("/headers")])
    ua = seen_header(u, "/headers", "User-Agent") or ""
    check(ua.startswith("fanoutd/"), f"User-Agent {ua!r}")


def test_text_plain_lines():
    d, u = setup()
    a, b, c, e = (u.url(p) for p in
                  ("/status/200", "/status/201", "/status/500", "/status/202"))
    body = f"# targets\r\n{a}\r\n\r\n{b}\n#{c}\n\n{e}"
    res = results_of(d.fetch_ok(body, content_type="text/plain"), [a, b, e])
    eq([r["status"] for r in res], [200, 201, 202], "statuses")
    eq(u.hits("/status/500"), 0, "commented-out URL fetched")


def test_text_plain_trailing_crlf():
    d, u = setup()
    a = u.url("/status/200")
    res = results_of(d.fetch_ok(f"{a}\r\n{a}\r\n", content_type="text/plain"),
                     [a, a])
    eq([r["ok"] for r in res], [True, True], "ok")


def test_charset_parameter_accepted():
    d, u = setup()
    a = u.url("/status/200")
    for ctype, body in (("application/json; charset=utf-8", json.dumps([a])),
                        ("application/json;charset=UTF-8", json.dumps([a])),
                        ("text/plain; charset=utf-8", a + "\n")):
        r = d.fetch(body, content_type=ctype)
        eq(r.status, 200, f"status for {ctype!r} ({r.text[:200]})")
        results_of(r.json(), [a])


def test_media_type_case_insensitive():
    d, u = setup()
    a = u.url("/status/200")
    r = d.fetch(json.dumps([a]), content_type="Application/JSON")
    eq(r.status, 200, f"status ({r.text[:200]})")
    results_of(r.json(), [a])


def sniff_cases(u):
    a, b = u.url("/status/200"), u.url("/status/201")
    # (body, urls it must be read as)
    return [
        (json.dumps([a, b]), [a, b]),  # JSON array
        ("\n \t" + json.dumps([a, b]), [a, b]),  # after blanks
        (json.dumps({"urls": [a, b]}), [a, b]),  # JSON object
        (f"{a}\n{b}\n", [a, b]),  # lines
        (f"# list\n{a}\r\n{b}", [a, b]),  # lines with a comment
    ]


def test_sniff_without_content_type():
    d, u = setup()
    for body, urls in sniff_cases(u):
        r = d.fetch(body, content_type=None)
        eq(r.status, 200, f"status for body {body[:40]!r} ({r.text[:200]})")
        results_of(r.json(), urls)


def test_sniff_form_urlencoded():
    d, u = setup()
    for body, urls in sniff_cases(u):
        r = d.fetch(body, content_type="application/x-www-form-urlencoded")
        eq(r.status, 200, f"status for body {body[:40]!r} ({r.text[:200]})")
        results_of(r.json(), urls)


def test_json_type_is_not_sniffed_as_text():
    d, u = setup()
    r = d.fetch(u.url("/status/200") + "\n", content_type="application/json")
    h.error_body(r, 400, "invalid_json")


def test_text_type_is_not_sniffed_as_json():
    d, u = setup()
    body = json.dumps([u.url("/status/200")])
    r = d.fetch(body, content_type="text/plain")
    eq(r.status, 200, f"status ({r.text[:200]})")
    res = results_of(r.json(), [body])
    check(code_of(res[0]) in ("invalid_url", "unsupported_scheme"),
          f"a JSON line read as a URL: {res[0]['error']!r}")
    eq(u.hits(), 0, "upstream hits")


def test_concurrency_20_delays():
    d, u = setup()
    urls = [u.url(f"/delay/300?n={i}") for i in range(20)]
    start = time.monotonic()
    ans = d.fetch_ok(urls)
    wall = time.monotonic() - start
    res = results_of(ans, urls)
    eq([r["status"] for r in res], [200] * 20, "statuses")
    check(wall < 0.9, f"20 x 300 ms took {wall:.3f}s: not concurrent")
    check(ans["summary"]["elapsed_ms"] < 900,
          f"elapsed_ms {ans['summary']['elapsed_ms']}")
    eq(u.hits("/delay/300"), 20, "upstream hits")


def test_order_preserved_mixed_delays():
    d, u = setup()
    delays = [300, 0, 200, 100, 250, 50]
    urls = [u.url(f"/delay/{ms}") for ms in delays]
    start = time.monotonic()
    res = results_of(d.fetch_ok(urls), urls)
    wall = time.monotonic() - start
    eq([r["status"] for r in res], [200] * len(delays), "statuses")
    for r, ms in zip(res, delays):
        check(r["time_ms"]["total"] >= ms * 0.98,
              f"{r['url']}: total {r['time_ms']['total']} < {ms}")
    check(wall < 0.9, f"took {wall:.3f}s")


def test_timings_plausible():
    d, u = setup()
    urls = [u.url("/delay/200"), u.url("/status/200"), u.url("/bytes/100000")]
    ans = d.fetch_ok(urls)
    res = results_of(ans, urls)
    for r in res:
        t = r["time_ms"]
        check(r["ok"], f"{r['url']} failed: {r!r}")
        check(t["total"] >= t["ttfb"], f"total < ttfb: {t}")
        parts = t["dns"] + t["connect"] + t["tls"] + t["ttfb"] + t["transfer"]
        check(parts <= t["total"] + 1.0,
              f"phases add up to {parts:.3f} > total {t['total']}: {t}")
        eq(t["tls"], 0, f"tls time of plain http ({t})")
        check(t["total"] < 5000, f"total {t['total']} for a local fetch")
    slow = res[0]["time_ms"]
    check(slow["total"] >= 199, f"total {slow['total']} < the 200 ms delay")
    check(slow["ttfb"] >= 190,
          f"ttfb {slow['ttfb']}: the server's 200 ms belong to ttfb ({slow})")
    check(slow["transfer"] < 150, f"transfer {slow['transfer']} ({slow})")
    elapsed = ans["summary"]["elapsed_ms"]
    check(is_number(elapsed) and elapsed >= slow["total"] - 1,
          f"elapsed_ms {elapsed} < the slowest total {slow['total']}")


def test_result_fields():
    d, u = setup()
    urls = [u.url("/bytes/1234"), f"http://127.0.0.1:{closed_port()}/x"]
    res = results_of(d.fetch_ok(urls), urls)
    ok, bad = res
    eq(ok["status"], 200, "status")
    eq(ok["ok"], True, "ok")
    eq(ok["error"], None, "error")
    eq(ok["bytes"], 1234, "bytes")
    eq(ok["redirects"], 0, "redirects")
    eq(ok["effective_url"], urls[0], "effective_url")
    eq(ok["remote_ip"], "127.0.0.1", "remote_ip")
    eq(bad["status"], None, "status without a response")
    eq(bad["ok"], False, "ok")
    eq(bad["bytes"], 0, "bytes")
    check(bad["error"]["message"], "empty error message")


def test_summary_counts():
    d, u = setup()
    urls = [u.url("/status/200"), u.url("/status/200"), u.url("/status/404"),
            u.url("/status/500"), u.url("/hang"),
            f"http://127.0.0.1:{closed_port()}/", "not a url"]
    ans = d.fetch_ok({"urls": urls, "timeout_ms": 300})
    results_of(ans, urls)
    s = ans["summary"]
    missing = [k for k in SUMMARY_KEYS if k not in s]
    check(not missing, f"summary lacks {missing}: {s!r}")
    eq(s["total"], 7, "summary.total")
    eq(s["ok"], 2, "summary.ok")
    eq(s["failed"], 5, "summary.failed")
    eq(s["status_counts"], {"200": 2, "404": 1, "500": 1},
       "summary.status_counts")
    eq(s["error_counts"], {"timeout": 1, "connect": 1, "invalid_url": 1},
       "summary.error_counts")
    check(is_number(s["elapsed_ms"]) and s["elapsed_ms"] >= 290,
          f"summary.elapsed_ms {s['elapsed_ms']} with a 300 ms timeout")


def test_http_error_status_is_not_ok():
    d, u = setup()
    codes = [200, 204, 299, 399, 400, 404, 500, 503]
    urls = [u.url(f"/status/{c}") for c in codes]
    res = results_of(d.fetch_ok(urls), urls)
    for r, c in zip(res, codes):
        eq(r["status"], c, "status")
        eq(r["error"], None, f"error for {c}")
        eq(r["ok"], c < 400, f"ok for {c}")


def test_timeout_error():
    d, u = setup()
    start = time.monotonic()
    r = d.fetch_ok({"urls": [{"url": u.url("/hang"), "timeout_ms": 200}]})
    check(time.monotonic() - start < 3, "timeout not quick")
    r = r["results"][0]
    eq(code_of(r), "timeout", "error code")
    eq(r["ok"], False, "ok")


def test_connection_refused():
    d, _ = setup()
    url = f"http://127.0.0.1:{closed_port()}/"
    r = results_of(d.fetch_ok([url]), [url])[0]
    eq(code_of(r), "connect", "error code")
    eq(r["status"], None, "status")


def test_reset_by_upstream():
    d, u = setup()
    url = u.url("/reset")
    res = results_of(d.fetch_ok([url, url]), [url, url])
    for r in res:
        check(code_of(r) in ("connect", "other"),
              f"error for a reset connection: {r['error']!r}")
        eq(r["status"], None, "status")
    eq(d.request("GET", "/healthz").status, 200, "healthz after resets")


def test_dns_failure():
    """A name that does not resolve is a "dns" error.  The daemon's only
    resolver is a loopback one the test runs (NXDOMAIN to everything), so
    the lookup never leaves the machine, and the test sees it arrive."""
    h.require_private_resolver()
    url = "http://nonexistent.invalid/"
    with h.DnsServer() as dns:
        with h.run_daemon_with_resolver(dns) as d:
            r = results_of(d.fetch_ok([url]), [url])[0]
            eq(code_of(r), "dns", "error code")
            eq(r["status"], None, "status")
        names = dns.names()
    check(names, "no query reached the test's resolver: the daemon asked "
                 "another one")
    eq(sorted({n.lower() for n in names}), ["nonexistent.invalid"],
       f"names looked up ({dns.queries})")


def test_redirects_followed():
    d, u = setup()
    target = u.url("/status/201")
    urls = [u.url("/redirects/3"),
            u.url("/redirect?to=" + h.urlquote(target))]
    res = results_of(d.fetch_ok(urls), urls)
    eq(res[0]["status"], 200, "status after 3 redirects")
    eq(res[0]["redirects"], 3, "redirects")
    eq(res[0]["effective_url"], u.url("/redirects/0"), "effective_url")
    eq(res[1]["status"], 201, "status after /redirect")
    eq(res[1]["redirects"], 1, "redirects")
    eq(res[1]["effective_url"], target, "effective_url")


def test_redirect_limit():
    # default max_redirects is 5
    d, u = setup()
    urls = [u.url("/redirects/5")]
    res = results_of(d.fetch_ok(urls), urls)
    eq(res[0]["status"], 200, "5 redirects are allowed")
    eq(res[0]["redirects"], 5, "redirects")
    u.reset_hits()
    urls = [u.url("/redirects/10")]
    r = results_of(d.fetch_ok(urls), urls)[0]
    eq(code_of(r), "redirect_limit", "error code")
    eq(r["ok"], False, "ok")
    check(u.hits("/redirects/") <= 6,
          f"{u.hits('/redirects/')} hops fetched with max_redirects 5")


def no_passwd(r):
    check(b"root:" not in r.body, f"/etc/passwd leaked: {r.text[:500]}")


def test_file_scheme_refused():
    d, _ = setup()
    urls = ["file:///etc/passwd", "FILE:///etc/passwd",
            "file://localhost/etc/passwd"]
    r = d.fetch(urls)
    eq(r.status, 200, "status")
    no_passwd(r)
    for res in results_of(r.json(), urls):
        eq(code_of(res), "unsupported_scheme", f"error for {res['url']}")
        eq(res["bytes"], 0, "bytes")


def test_redirect_to_file_refused():
    d, u = setup()
    url = u.url("/redirect?to=" + h.urlquote("file:///etc/passwd"))
    r = d.fetch([url])
    eq(r.status, 200, "status")
    no_passwd(r)
    res = results_of(r.json(), [url])[0]
    eq(code_of(res), "unsupported_scheme", "error code")
    eq(res["ok"], False, "ok")


def test_other_schemes_unsupported():
    d, u = setup()
    hp = h.hostport(u.host, u.port)
    urls = [f"gopher://{hp}/x", f"dict://{hp}/d:x", f"ftp://{hp}/x",
            f"telnet://{hp}/", f"ldap://{hp}/", f"smb://{hp}/x",
            f"tftp://{hp}/x", f"scp://{hp}/x"]
    res = results_of(d.fetch_ok(urls), urls)
    for r in res:
        eq(code_of(r), "unsupported_scheme", f"error for {r['url']}")
    redirects = [u.url("/redirect?to=" + h.urlquote(f"gopher://{hp}/x")),
                 u.url("/redirect?to=" + h.urlquote(f"dict://{hp}/d:x"))]
    for r in results_of(d.fetch_ok(redirects), redirects):
        eq(code_of(r), "unsupported_scheme", f"error for {r['url']}")
    eq(u.hits(), 2, "upstream saw more than the two redirects")


def test_invalid_items():
    d, u = setup()
    good = u.url("/status/200")
    items = [1, None, {"id": "no-url"}, {"url": 5}, "not a url", "", True,
             [], {"url": None}, good]
    ans = d.fetch_ok(items)
    res = ans["results"]
    eq(len(res), len(items), "number of results")
    for i, r in enumerate(res[:-1]):
        check_result(r, i, r["url"])
        eq(code_of(r), "invalid_url", f"error for item {items[i]!r}")
        eq(r["status"], None, "status")
    eq(res[2].get("id"), "no-url", "id of an item without url")
    eq(res[4]["url"], "not a url", "url echoed")
    check_result(res[-1], len(items) - 1, good)
    eq(res[-1]["status"], 200, "the valid sibling")
    eq(u.hits(), 1, "upstream hits")
    eq(ans["summary"]["error_counts"], {"invalid_url": len(items) - 1},
       "error_counts")


def test_empty_list():
    d, _ = setup()
    for body, ctype in (("[]", "application/json"),
                        ('{"urls": []}', "application/json"),
                        ("", "text/plain"),
                        ("# nothing\n\n", "text/plain")):
        r = d.fetch(body, content_type=ctype)
        eq(r.status, 200, f"status for {body!r} ({r.text[:200]})")
        ans = r.json()
        eq(ans.get("results"), [], f"results for {body!r}")
        s = ans.get("summary") or {}
        eq((s.get("total"), s.get("ok"), s.get("failed")), (0, 0, 0),
           f"summary for {body!r}: {s!r}")


def test_concurrent_clients():
    d, u = setup()
    answers = {}

    def client(n):
        urls = [u.url(f"/status/{200 + n}"), u.url(f"/delay/{100 + 10 * n}"),
                u.url(f"/bytes/{n * 100}")]
        try:
            answers[n] = (urls, d.fetch_ok(urls, timeout=20))
        except Exception as e:  # reported below
            answers[n] = (urls, e)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    eq(len(answers), 10, "answers")
    for n, (urls, ans) in sorted(answers.items()):
        if isinstance(ans, Exception):
            raise AssertionError(f"client {n}: {ans}")
        res = results_of(ans, urls)
        eq([r["status"] for r in res], [200 + n, 200, 200], f"client {n}")
        eq(res[2]["bytes"], n * 100, f"client {n} bytes")


def test_deep_nesting_rejected():
    d, _ = setup()
    r = d.fetch("[" * 100000 + "]" * 100000)
    eq(r.status, 400, f"status ({r.text[:200]})")
    eq(d.request("GET", "/healthz").status, 200, "healthz afterwards")


def test_still_serving():
    d, u = setup()
    eq(d.request("GET", "/healthz").status, 200, "healthz")
    urls = [u.url("/status/200")]
    results_of(d.fetch_ok(urls), urls)

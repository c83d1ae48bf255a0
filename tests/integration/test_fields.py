"""The item fields of issue 11, end to end: expect, capture and
capture_headers, methods with bodies, retries, resolve and ip_version,
and config modules.  Each field is proven at request level, per item (the
item wins) and through a module, with the bad inputs the issue lists.

The target is the real upstream (tests/upstream.c); /respond/NAME answers
with the status, status sequence, headers and body its query asks for,
and the upstream's log tells what a fetch sent (method, headers, body).
Its hit counter matches paths by prefix, so every test fetches paths of
its own (fresh()).  Timing asserts are lower bounds only (a sleep cannot
be shorter than asked), or bounds an order of magnitude wide, so the
module passes on a loaded 2-core machine.
"""

import base64
import itertools
import json
import re
import subprocess
import time
from urllib.parse import quote

import harness as h
from harness import check, eq

_names = itertools.count()

# The module shared by most tests; "pinned" needs the upstream's port and
# is added by config().
MODULES = [
    {"name": "http_2xx", "expect": {"status": ["2xx"]}, "timeout_ms": 5000},
    {"name": "body_ok", "expect": {"status": [200, "3xx"],
                                   "body_contains": ["OK"]},
     "capture": 16, "capture_headers": ["X-Version"]},
    {"name": "post_json", "method": "POST", "body": "{}",
     "content_type": "application/json", "headers": {"X-From-Module": "m"}},
    {"name": "retry", "retries": 2, "retry_backoff_ms": 0},
    {"name": "slow_ok", "expect": {"max_ms": 60000.5}},
    {"name": "short", "timeout_ms": 200, "follow_redirects": False},
    {"name": "insecure", "verify_tls": False},
]


def config(u, extra=None):
    modules = MODULES + [
        {"name": "pinned", "resolve": [f"svc.test:{u.port}:127.0.0.1"],
         "ip_version": "4"},
        {"name": "metadata",
         "resolve": [f"svc.test:{u.port}:169.254.169.254"]},
    ]
    return h.merge({"modules": modules}, extra)


def setup(extra=None):
    u = h.upstream()
    return h.daemon(config(u, extra)), u


def fresh(tag):
    """A path of this test's own under /respond/."""
    return f"/respond/{tag}-{next(_names)}"


def respond(u, path, status=None, seq=None, headers=(), body=None,
            body_bytes=None, pad=None):
    """The URL of u's /respond path answering as asked."""
    q = []
    if status is not None:
        q.append(f"status={status}")
    if seq is not None:
        q.append("seq=" + ",".join(str(s) for s in seq))
    for hd in headers:
        q.append("header=" + quote(hd, safe=""))
    if pad is not None:
        q.append(f"pad={pad}")
    if body is not None:
        q.append("body=" + quote(body, safe=""))
    if body_bytes is not None:
        q.append("body_hex=" + body_bytes.hex())
    return u.url(path + ("?" + "&".join(q) if q else ""))


def answer(d, payload, status=200):
    """POST /fetch: the answer, checked to be JSON of the right shape."""
    r = d.fetch(payload)
    eq(r.status, status, f"status of POST /fetch ({r.text[:400]!r})")
    body = r.json()
    check(isinstance(body.get("results"), list)
          and isinstance(body.get("summary"), dict), f"shape: {body!r}")
    return body


def one(d, item, **fields):
    """The one result of a one-item fan-out with request fields."""
    return answer(d, dict({"urls": [item]}, **fields))["results"][0]


def refused(d, payload, *words):
    """A 400 invalid_request whose message has every one of words."""
    err = h.error_body(d.fetch(payload), 400, "invalid_request")
    for w in words:
        check(w in err["message"], f"{w!r} not in {err['message']!r}")
    return err["message"]


def invalid_item(d, item, *words):
    """The item fails alone with invalid_url and a message with words."""
    r = one(d, item)
    eq((r["ok"], r["status"], r["error"] and r["error"]["code"]),
       (False, None, "invalid_url"), f"item {item!r}: {r!r}")
    for w in words:
        check(w in r["error"]["message"],
              f"{w!r} not in {r['error']['message']!r}")
    return r["error"]["message"]


def passed(r, what, status=200):
    """r completed with status and passed its expect."""
    eq((r["status"], r["ok"], r["error"]), (status, True, None),
       f"{what}: outcome ({r!r})")
    eq(r.get("failed_checks"), [], f"{what}: failed_checks")


def failed(r, what, message, checks):
    """r failed its expect: check_failed with message and checks."""
    eq(r["ok"], False, f"{what}: ok ({r!r})")
    eq(r["error"], {"code": "check_failed", "message": message},
       f"{what}: error")
    eq(r["failed_checks"], checks, f"{what}: failed_checks")


def metric(d, name, label):
    text = d.request("GET", "/metrics").text
    m = re.search(r"^%s\{code=\"%s\"\} (\d+)$" % (re.escape(name), label),
                  text, re.M)
    return int(m.group(1)) if m else 0


# 1. expect


def test_expect_status_codes_classes_and_ranges():
    d, u = setup()
    cases = [  # (status answered, expect.status, passes)
        (200, [200], True),
        (204, ["2xx"], True),
        (301, ["2xx"], False),
        (404, ["200-299", 404], True),
        (500, [500], True),
        (503, ["4xx"], False),
        (302, [201, "3xx", "500-502"], True),
        (502, [201, "3xx", "500-502"], True),
        (503, [201, "3xx", "500-502"], False),
        (299, ["299"], True),
    ]
    items = [{"url": respond(u, fresh("st"), status=s), "id": i,
              "expect": {"status": want}}
             for i, (s, want, _) in enumerate(cases)]
    res = answer(d, items)["results"]
    for (status, want, ok), r in zip(cases, res):
        what = f"{status} against {want}"
        eq(r["redirects"], 0, f"{what}: a redirect without Location")
        if ok:
            passed(r, what, status)
            continue
        words = ", ".join(str(w) for w in want)
        failed(r, what, f"status {status} not in [{words}]",
               [{"check": "status", "expected": want, "actual": status}])
    eq(res[2]["error"]["message"], "status 301 not in [2xx]",
       "the issue's example message")


def test_expect_status_default_is_200_to_399():
    d, u = setup()
    urls = [respond(u, fresh("def"), status=s) for s in (200, 399, 404, 199)]
    urls[3] = respond(u, fresh("def"), status=500)
    res = answer(d, {"urls": urls, "expect": {}})["results"]
    passed(res[0], "200, no expect.status", 200)
    passed(res[1], "399, no expect.status", 399)
    failed(res[2], "404", "status 404 not in [200-399]",
           [{"check": "status", "expected": ["200-399"], "actual": 404}])
    failed(res[3], "500", "status 500 not in [200-399]",
           [{"check": "status", "expected": ["200-399"], "actual": 500}])


def test_failed_checks_absent_without_expect():
    d, u = setup()
    urls = [respond(u, fresh("noexp"), status=404), respond(u, fresh("noexp"))]
    res = answer(d, urls)["results"]
    for r in res:
        check("failed_checks" not in r, f"failed_checks without expect: {r!r}")
    eq((res[0]["ok"], res[0]["error"]), (False, None), "404 without expect")
    eq((res[1]["ok"], res[1]["error"]), (True, None), "200 without expect")


def test_expect_status_bad_entries():
    d, u = setup()
    url = respond(u, fresh("bad"))
    for status in ([99], [1000], ["2xxx"], ["299-200"], ["abc"], [],
                   "2xx", [True], ["0xx"], [200.5], ["20-299"]):
        refused(d, {"urls": [url], "expect": {"status": status}},
                '"expect"', "status")
        invalid_item(d, {"url": url, "expect": {"status": status}},
                     '"expect"', "status")


def test_expect_body_contains_and_not_contains():
    d, u = setup()
    body = "service OK version 1.2 (DEGRADED: disk)"
    url = respond(u, fresh("body"), body=body)
    cases = [
        ({"body_contains": "OK"}, None),
        ({"body_contains": ["OK", "version 1.2"]}, None),
        ({"body_contains": ["OK", "HEALTHY", "gone"]},
         ('body does not contain "HEALTHY"',
          [{"check": "body_contains", "expected": "HEALTHY"},
           {"check": "body_contains", "expected": "gone"}])),
        ({"body_not_contains": "ERROR"}, None),
        ({"body_not_contains": ["ERROR", "DEGRADED"]},
         ('body contains "DEGRADED"',
          [{"check": "body_not_contains", "expected": "DEGRADED"}])),
        ({"body_contains": "ok"}, ('body does not contain "ok"',
                                   [{"check": "body_contains",
                                     "expected": "ok"}])),
    ]
    items = [{"url": url, "expect": e} for e, _ in cases]
    res = answer(d, items)["results"]
    for (e, want), r in zip(cases, res):
        if want is None:
            passed(r, f"{e}")
        else:
            failed(r, f"{e}", *want)


def test_expect_body_text_across_read_chunks():
    """Substrings are searched as the body arrives: a needle cut by the
    seam of two reads is still found (or, for not_contains, still
    caught), at any offset around curl's 16 KiB reads."""
    d, u = setup()
    pads = [16379, 16381, 16383, 16384, 16385, 32766, 65535, 100001]
    items = []
    for pad in pads:
        url = respond(u, fresh("seam"), pad=pad, body="<NEEDLE-42>")
        items.append({"url": url, "expect": {"body_contains": "<NEEDLE-42>"}})
        items.append({"url": url,
                      "expect": {"body_not_contains": ["EDLE-4", "zzz"]}})
    res = answer(d, items)["results"]
    for i, pad in enumerate(pads):
        passed(res[2 * i], f"contains after {pad} bytes")
        failed(res[2 * i + 1], f"not_contains after {pad} bytes",
               'body contains "EDLE-4"',
               [{"check": "body_not_contains", "expected": "EDLE-4"}])
        eq(res[2 * i]["bytes"], pad + 11, f"bytes after {pad}")


def test_expect_body_regex_and_not_regex():
    d, u = setup()
    url = respond(u, fresh("re"), body="status: up\nversion 1.20\nFATAL x")
    cases = [
        ({"body_regex": r"version [0-9]+\.[0-9]+"}, None),
        ({"body_regex": r"(?m)^status: up$"}, None),
        ({"body_regex": "^DEGRADED"},
         ("body does not match /^DEGRADED/",
          [{"check": "body_regex", "expected": "^DEGRADED"}])),
        ({"body_not_regex": "ERROR|PANIC"}, None),
        ({"body_not_regex": "ERROR|FATAL"},
         ("body matches /ERROR|FATAL/",
          [{"check": "body_not_regex", "expected": "ERROR|FATAL"}])),
        ({"body_regex": "nope", "body_not_regex": "up"},
         ("body does not match /nope/",
          [{"check": "body_regex", "expected": "nope"},
           {"check": "body_not_regex", "expected": "up"}])),
    ]
    res = answer(d, [{"url": url, "expect": e} for e, _ in cases])["results"]
    for (e, want), r in zip(cases, res):
        if want is None:
            passed(r, f"{e}")
        else:
            failed(r, f"{e}", *want)


def test_expect_regex_on_any_bytes_and_long_bodies():
    """A body that is not UTF-8 is still matched (PCRE2's invalid-UTF
    mode); a pattern sees the whole body, far past the first read."""
    d, u = setup()
    binary = respond(u, fresh("rebin"), body_bytes=b"\xc3(\xff\x00 state=OK")
    long = respond(u, fresh("relong"), pad=200000, body="TAIL-7")
    res = answer(d, [
        {"url": binary, "expect": {"body_regex": "state=OK$"}},
        {"url": binary, "expect": {"body_not_regex": "state=O."}},
        {"url": long, "expect": {"body_regex": r"x{1000}TAIL-\d$"}},
        {"url": long, "expect": {"body_regex": "^x+$"}},
    ])["results"]
    passed(res[0], "regex on invalid UTF-8")
    failed(res[1], "not_regex on invalid UTF-8", "body matches /state=O./",
           [{"check": "body_not_regex", "expected": "state=O."}])
    passed(res[2], "regex at the end of 200 kB")
    failed(res[3], "anchored regex over 200 kB", "body does not match /^x+$/",
           [{"check": "body_regex", "expected": "^x+$"}])


def test_expect_regex_match_limit_fails_the_check():
    """A pattern that backtracks without end stops at PCRE2's match
    limit: the check fails and says why, and the worker is free again."""
    d, u = setup()
    url = respond(u, fresh("redos"), body="a" * 40 + "!")
    start = time.monotonic()
    r = one(d, {"url": url, "expect": {"body_regex": "^(a|a?)+$"}})
    eq(r["error"]["code"], "check_failed", f"outcome: {r!r}")
    check("(match limit)" in r["error"]["message"],
          f"message: {r['error']['message']!r}")
    eq(r["failed_checks"], [{"check": "body_regex",
                             "expected": "^(a|a?)+$"}], "failed_checks")
    check(time.monotonic() - start < 20, "the match limit did not stop it")


def test_expect_bad_regex_is_an_input_error():
    d, u = setup()
    url = respond(u, fresh("badre"))
    for member in ("body_regex", "body_not_regex"):
        msg = refused(d, {"urls": [url], "expect": {member: "(("}},
                      '"expect"', member, "bad regular expression")
        check("offset" in msg, f"no offset in {msg!r}")
        invalid_item(d, {"url": url, "expect": {member: "a[z"}},
                     '"expect"', member, "bad regular expression")
        refused(d, {"urls": [url], "expect": {member: 5}}, member,
                "not a string")
    refused(d, {"urls": [url], "expect": {"headers": {"X-A": "*"}}},
            '"expect"', "headers", "bad regular expression")
    invalid_item(d, {"url": url, "expect": {"headers": {"X-A": "(?<"}}},
                 "headers", "bad regular expression")
    eq(u.hits(url[url.index("/respond"):]), 0, "a bad item was fetched")


def test_expect_headers():
    d, u = setup()
    url = respond(u, fresh("hdr"), headers=["X-Version: 1.2.3",
                                            "X-Dup: first", "X-Dup: second"])
    cases = [
        ({"X-Version": r"^1\."}, None),
        ({"x-version": "^1.2.3$"}, None),
        ({"X-Dup": "^second$"}, None),
        ({"X-Version": "^2"},
         ('header X-Version: "1.2.3" does not match /^2/',
          [{"check": "headers", "expected": {"X-Version": "^2"},
            "actual": "1.2.3"}])),
        ({"X-Dup": "^first$"},
         ('header X-Dup: "second" does not match /^first$/',
          [{"check": "headers", "expected": {"X-Dup": "^first$"},
            "actual": "second"}])),
        ({"X-Missing": ".*", "X-Version": "1"},
         ("header X-Missing is missing",
          [{"check": "headers", "expected": {"X-Missing": ".*"},
            "actual": None}])),
    ]
    res = answer(d, [{"url": url, "expect": {"headers": e}}
                     for e, _ in cases])["results"]
    for (e, want), r in zip(cases, res):
        if want is None:
            passed(r, f"headers {e}")
        else:
            failed(r, f"headers {e}", *want)


def test_expect_judges_the_last_hop():
    """After a redirect, the checks see the last response only: its
    status, headers and body, not the redirect's."""
    d, u = setup()
    target = fresh("hop")
    url = respond(u, fresh("hop"), status=302,
                  headers=["Location: " + target, "X-Hop: first"],
                  body="REDIRECT BODY")
    r = one(d, {"url": url, "expect": {"status": [200],
                                       "headers": {"X-Hop": "."},
                                       "body_not_contains": "REDIRECT"}})
    eq(r["redirects"], 1, "followed")
    failed(r, "the redirect's header is not the answer's",
           "header X-Hop is missing",
           [{"check": "headers", "expected": {"X-Hop": "."},
             "actual": None}])
    r = one(d, {"url": url, "follow_redirects": False,
                "expect": {"status": ["3xx"], "body_contains": "REDIRECT",
                           "headers": {"X-Hop": "^first$"}}})
    passed(r, "the redirect itself, not followed", 302)


def test_expect_max_ms():
    d, u = setup()
    res = answer(d, [
        {"url": u.url("/delay/300"), "expect": {"max_ms": 50}},
        {"url": respond(u, fresh("fast")), "expect": {"max_ms": 30000}},
    ])["results"]
    r = res[0]
    eq((r["status"], r["ok"]), (200, False), f"slow: {r!r}")
    eq(r["error"]["code"], "check_failed", "slow: code")
    check(re.fullmatch(r"total [0-9.]+ ms is above max_ms 50",
                       r["error"]["message"]), f"message {r['error']!r}")
    eq(len(r["failed_checks"]), 1, "one failed check")
    f = r["failed_checks"][0]
    eq((f["check"], f["expected"]), ("max_ms", 50), "max_ms check")
    check(f["actual"] >= 250 and f["actual"] == r["time_ms"]["total"],
          f"actual {f['actual']} vs time_ms {r['time_ms']}")
    passed(res[1], "fast under 30 s")


def test_expect_cert_days_left():
    """The leaf must be valid for at least cert_days_left more days: the
    nginx fixture's 'expiring' leaf has 5 left, 'valid' 365; plain http
    has no certificate and nothing to fail."""
    import pki
    p, ng = pki.get(), pki.nginx()
    u = h.upstream()
    d = h.daemon(config(u, {"tls": {"ca_file": p.ca_file}}))
    res = answer(d, [
        {"url": ng.url("expiring"), "expect": {"cert_days_left": 30}},
        {"url": ng.url("expiring"), "expect": {"cert_days_left": 3}},
        {"url": ng.url("valid"), "expect": {"cert_days_left": 30}},
        {"url": respond(u, fresh("plaincert")),
         "expect": {"cert_days_left": 30}},
    ])["results"]
    failed(res[0], "5 days < 30", "certificate valid for 5 more days, "
           "fewer than 30",
           [{"check": "cert_days_left", "expected": 30, "actual": 5}])
    eq(res[0]["tls"]["cert"]["days_left"], 5, "tls.cert.days_left")
    passed(res[1], "5 days >= 3")
    passed(res[2], "365 days >= 30")
    passed(res[3], "plain http")
    r = one(d, ng.url("self_signed"))
    eq(r["error"]["code"], "tls", "a self-signed leaf, verified")
    r = one(d, {"url": ng.url("self_signed"), "module": "insecure"})
    eq((r["status"], r["tls"]["verified"]), (200, False),
       "verify_tls false from a module")


def test_expect_failures_are_all_listed_in_order():
    d, u = setup()
    url = respond(u, fresh("all"), status=503, headers=["X-V: 0"],
                  body="DOWN")
    r = one(d, {"url": url, "expect": {
        "max_ms": 0, "headers": {"X-V": "^1$"}, "body_not_regex": "DOWN",
        "body_regex": "UP", "body_not_contains": "DOWN",
        "body_contains": "UP", "status": ["2xx"]}})
    eq(r["error"], {"code": "check_failed",
                    "message": "status 503 not in [2xx]"}, "the first one")
    eq([f["check"] for f in r["failed_checks"]],
       ["status", "body_contains", "body_not_contains", "body_regex",
        "body_not_regex", "headers", "max_ms"], "every check, in order")
    for f in r["failed_checks"]:
        eq("actual" in f, not f["check"].startswith("body_"),
           f"actual present for {f['check']} (omitted for body checks)")


def test_check_failed_in_summary_and_metrics():
    d, u = setup()
    before = metric(d, "fanoutd_fetch_errors_total", "check_failed")
    items = [{"url": respond(u, fresh("sum"), status=s),
              "expect": {"status": [200, 201]}} for s in (200, 404, 500, 201)]
    items.append(respond(u, fresh("sum"), status=404))
    ans = answer(d, items)
    s = ans["summary"]
    eq((s["total"], s["ok"], s["failed"]), (5, 2, 3), "summary counts")
    eq(s["error_counts"], {"check_failed": 2}, "summary.error_counts")
    eq(s["status_counts"], {"200": 1, "201": 1, "404": 2, "500": 1},
       "summary.status_counts")
    h.wait_for(lambda: metric(d, "fanoutd_fetch_errors_total",
                              "check_failed") == before + 2, 5,
               "fanoutd_fetch_errors_total{code=\"check_failed\"} += 2")


def test_checks_and_captures_in_a_stream():
    """?stream=1 writes the same fields, one valid JSON line a result."""
    d, u = setup()
    url = respond(u, fresh("ndjson"), status=503, body="é DOWN",
                  headers=["X-V: 1"])
    r = d.request("POST", "/fetch?stream=1", body=json.dumps({
        "urls": [url, {"url": url, "expect": {}}],
        "expect": {"status": ["2xx"], "body_contains": "UP"},
        "capture": 4, "capture_headers": ["X-V"]}),
        headers={"Content-Type": "application/json"})
    eq(r.status, 200, f"status ({r.text[:300]!r})")
    lines = [json.loads(line) for line in r.text.splitlines()]
    eq(len(lines), 3, "two results and the summary")
    res = sorted(lines[:2], key=lambda x: x["index"])
    eq(res[0]["failed_checks"], [
        {"check": "status", "expected": ["2xx"], "actual": 503},
        {"check": "body_contains", "expected": "UP"}], "failed_checks")
    eq(res[1]["failed_checks"], [
        {"check": "status", "expected": ["200-399"], "actual": 503}],
       "the item's own expect")
    for x in res:
        eq((x["body"], x["body_truncated"], x["headers"]),
           ("é D", True, {"X-V": "1"}), "capture in a stream")
    eq(lines[2]["summary"]["error_counts"], {"check_failed": 2}, "summary")


def test_expect_wrong_shapes_name_the_member():
    d, u = setup()
    url = respond(u, fresh("shape"))
    cases = [
        ([], '"expect" is not an object'),
        ("2xx", '"expect" is not an object'),
        ({"body_contains": 5}, "body_contains is not a string"),
        ({"body_contains": []}, "body_contains is not a string"),
        ({"body_not_contains": [""]}, "body_not_contains: a text must be"),
        ({"headers": []}, "headers is not an object"),
        ({"headers": {"X-A": 1}}, "headers is not an object"),
        ({"headers": {"bad name": "x"}}, "headers is not an object"),
        ({"max_ms": -1}, "max_ms is not a number >= 0"),
        ({"max_ms": "10"}, "max_ms is not a number >= 0"),
        ({"cert_days_left": "30"}, "cert_days_left is not a number"),
        ({"statuses": [200]}, 'unknown member "statuses"'),
    ]
    for expect, words in cases:
        refused(d, {"urls": [url], "expect": expect}, words)
        invalid_item(d, {"url": url, "expect": expect}, words)


def test_expect_item_replaces_the_request_expect():
    """An item's expect replaces the request's whole (it is not merged):
    the item below has no status rule of its own, so 200-399 holds."""
    d, u = setup()
    url = respond(u, fresh("repl"), body="fine")
    res = answer(d, {"urls": [url, {"url": url,
                                    "expect": {"body_contains": "fine"}}],
                     "expect": {"status": [201]}})["results"]
    failed(res[0], "request-level expect", "status 200 not in [201]",
           [{"check": "status", "expected": [201], "actual": 200}])
    passed(res[1], "the item's own expect")


# 2. capture


def test_capture_body_text_binary_and_truncation():
    d, u = setup()
    text = "héllo wörld"
    raw = text.encode()
    urls = {
        "text": respond(u, fresh("cap"), body=text),
        "binary": respond(u, fresh("cap"), body_bytes=b"\xc3(\xff\x00ok"),
        "nul": respond(u, fresh("cap"), body_bytes=b"a\x00b"),
    }
    res = answer(d, [
        {"url": urls["text"], "capture": 100},
        {"url": urls["text"], "capture": len(raw)},
        {"url": urls["text"], "capture": 5},
        {"url": urls["text"], "capture": 2},   # cuts the é in two
        {"url": urls["binary"], "capture": 100},
        {"url": urls["nul"], "capture": 3},
        {"url": urls["text"], "capture": 0},
        {"url": urls["text"]},
        {"url": urls["text"], "capture": 100, "method": "HEAD"},
    ])["results"]

    def body_of(r):
        keys = [k for k in ("body", "body_base64") if k in r]
        eq(len(keys), 1, f"one of body/body_base64: {r!r}")
        return keys[0], r[keys[0]], r["body_truncated"]

    eq(body_of(res[0]), ("body", text, False), "whole text")
    eq(body_of(res[1]), ("body", text, False), "exactly its length")
    eq(body_of(res[2]), ("body", "héll", True), "5 bytes")
    eq(body_of(res[3]), ("body_base64", base64.b64encode(raw[:2]).decode(),
                         True), "half a character is not text")
    eq(body_of(res[4]), ("body_base64",
                         base64.b64encode(b"\xc3(\xff\x00ok").decode(),
                         False), "invalid UTF-8")
    eq(body_of(res[5]), ("body_base64", base64.b64encode(b"a\x00b").decode(),
                         False), "a NUL byte")
    for r, what in ((res[6], "capture 0"), (res[7], "no capture")):
        check(not {"body", "body_base64", "body_truncated"} & set(r),
              f"{what}: a body field: {r!r}")
    eq(body_of(res[8]), ("body", "", False), "HEAD has no body")


def test_capture_is_the_last_hop_and_bounded_by_the_limit():
    d, u = setup()
    target = fresh("caphop")
    url = respond(u, fresh("caphop"), status=302,
                  headers=["Location: " + target + "?body=final"],
                  body="redirect")
    r = one(d, {"url": url, "capture": 64})
    eq((r["redirects"], r["body"], r["body_truncated"]), (1, "final", False),
       "the last hop's body")
    big = u.url("/bytes/70000")
    r = one(d, {"url": big, "capture": 65536})
    eq((len(r["body"]), set(r["body"]), r["body_truncated"]),
       (65536, {"x"}, True), "limits.max_capture_bytes (65536) bytes")
    eq(r["bytes"], 70000, "the whole body was still read")
    r = one(d, big, capture=1000)
    eq((len(r["body"]), r["body_truncated"]), (1000, True),
       "request-level capture")


def test_capture_above_max_capture_bytes_is_refused():
    d, u = setup()
    url = respond(u, fresh("capmax"))
    for bad in (65537, -1, "10", 1.5, True):
        refused(d, {"urls": [url], "capture": bad}, '"capture"',
                "from 0 to 65536")
        invalid_item(d, {"url": url, "capture": bad}, '"capture"')
    # without the modules: body_ok captures 16, which a limit of 10
    # refuses at load (test_capture_limit_applies_to_modules)
    with h.run_daemon({"limits": {"max_capture_bytes": 10}}) as d2:
        refused(d2, {"urls": [url], "capture": 11}, '"capture"',
                "from 0 to 10")
        r = one(d2, {"url": respond(u, fresh("capmax"), body="0123456789AB"),
                     "capture": 10})
        eq((r["body"], r["body_truncated"]), ("0123456789", True),
           "capture at a configured max_capture_bytes")


def test_capture_limit_applies_to_modules():
    """A module that captures more than limits.max_capture_bytes is a
    config error (checked at load, as a request would be)."""
    u = h.upstream()
    path = h.tmpfile("capture-module-conf")
    with open(path, "w") as f:
        f.write(h.render_config(h.merge(h.BASE_CONFIG, config(
            u, {"limits": {"max_capture_bytes": 10}}))))
    p = subprocess.run([h.env("FANOUTD_BIN"), "-t", "-c", path],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=20)
    check(p.returncode != 0 and 'modules: body_ok: "capture" is not an '
          'integer from 0 to 10' in p.stderr, f"fanoutd -t: {p.stderr!r}")


def test_capture_headers():
    d, u = setup()
    url = respond(u, fresh("caph"), headers=[
        "X-Version: 2.4.1", "X-Dup: one", "X-Dup: two",
        "Content-Type: text/x-test"])
    r = one(d, {"url": url, "capture_headers": [
        "X-Version", "x-dup", "X-Absent", "content-type"]})
    eq(r["headers"], {"X-Version": "2.4.1", "x-dup": "two", "X-Absent": None,
                      "content-type": "text/x-test"},
       "values by the names as asked; the last of a repeated header")
    check("body" not in r, "capture_headers alone captures no body")
    r = one(d, url, capture_headers=["X-Version"])
    eq(r["headers"], {"X-Version": "2.4.1"}, "request-level")
    r = one(d, respond(u, fresh("caph")), capture_headers=["X-Version"])
    eq(r["headers"], {"X-Version": None}, "absent: null")
    target = fresh("caph")
    r = one(d, {"url": respond(u, fresh("caph"), status=301,
                               headers=["Location: " + target,
                                        "X-Version: redirect"]),
                "capture_headers": ["X-Version", "Location"]})
    eq(r["headers"], {"X-Version": None, "Location": None},
       "the last hop's headers only")
    for bad in ("X-Version", [1], ["a b"], ["X"] * 33, {"X": 1}):
        refused(d, {"urls": [url], "capture_headers": bad},
                '"capture_headers"')
        invalid_item(d, {"url": url, "capture_headers": bad},
                     '"capture_headers"')


# 3. methods and bodies


def sent(u, path):
    """What the upstream got last on path: method, headers, body bytes."""
    hit = u.last(path)
    check(hit is not None, f"the upstream saw nothing on {path}")
    headers = {k.lower(): v for k, v in hit["headers"].items()}
    return hit["method"], headers, bytes.fromhex(hit["body_hex"])


def test_methods_send_their_body_and_content_type():
    d, u = setup()
    items, paths = [], []
    for m in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        path = fresh("m-" + m)
        paths.append((m, path))
        items.append({"url": respond(u, path), "method": m,
                      "body": f"payload of {m} é",
                      "content_type": "application/x-test; charset=utf-8"})
    for m in ("GET", "HEAD"):
        path = fresh("m-" + m)
        paths.append((m, path))
        items.append({"url": respond(u, path), "method": m})
    res = answer(d, items)["results"]
    for (m, path), r in zip(paths, res):
        eq((r["status"], r["ok"]), (200, True), f"{m}: {r!r}")
        method, headers, body = sent(u, path)
        eq(method, m, f"{m}: the method sent")
        if m in ("GET", "HEAD"):
            eq(body, b"", f"{m}: no body")
            check("content-type" not in headers and
                  "content-length" not in headers,
                  f"{m}: framing headers {headers!r}")
            continue
        eq(body, f"payload of {m} é".encode(), f"{m}: the body sent")
        eq(headers.get("content-type"), "application/x-test; charset=utf-8",
           f"{m}: Content-Type")
        eq(headers.get("content-length"), str(len(body)),
           f"{m}: Content-Length")
        check("expect" not in headers, f"{m}: Expect: {headers!r}")


def test_body_base64_any_bytes_and_no_content_type():
    d, u = setup()
    raw = bytes(range(256)) + b"\x00\xff"
    p1, p2, p3 = fresh("b64"), fresh("b64"), fresh("b64")
    answer(d, {"urls": [
        {"url": respond(u, p1), "method": "PUT",
         "body_base64": base64.b64encode(raw).decode()},
        {"url": respond(u, p2), "method": "POST", "body": ""},
        {"url": respond(u, p3), "method": "POST"},
    ]})
    method, headers, body = sent(u, p1)
    eq((method, body), ("PUT", raw), "body_base64: the bytes sent")
    check("content-type" not in headers,
          f"no content_type: no Content-Type (not curl's form type): "
          f"{headers!r}")
    for p in (p2, p3):
        method, headers, body = sent(u, p)
        eq((method, body, headers.get("content-length")), ("POST", b"", "0"),
           f"an empty POST on {p}")
        check("content-type" not in headers,
              f"an empty POST on {p} claims a type: {headers!r}")


def test_body_at_request_level_and_from_the_item():
    d, u = setup()
    p1, p2 = fresh("rb"), fresh("rb")
    answer(d, {"method": "PUT", "body": "shared", "content_type": "text/a",
               "urls": [respond(u, p1),
                        {"url": respond(u, p2), "body": "own",
                         "method": "PATCH"}]})
    eq(sent(u, p1)[0::2], ("PUT", b"shared"), "the request's body")
    eq(sent(u, p1)[1]["content-type"], "text/a", "the request's type")
    eq(sent(u, p2)[0::2], ("PATCH", b"own"), "the item's body and method")
    eq(sent(u, p2)[1]["content-type"], "text/a",
       "content_type from the request")


def test_body_on_get_or_head_is_refused():
    d, u = setup()
    url = respond(u, fresh("bodyget"))
    for fields in ({"body": "x"}, {"method": "GET", "body": "x"},
                   {"method": "HEAD", "body": "x"},
                   {"method": "HEAD", "body_base64": "eA=="}):
        m = fields.get("method", "GET")
        refused(d, dict({"urls": [url]}, **fields), '"body"',
                f"a {m} request sends no body")
        invalid_item(d, dict({"url": url}, **fields), '"body"', m)
    # the item's method makes the request's body wrong for it alone
    res = answer(d, {"method": "POST", "body": "x",
                     "urls": [url, {"url": url, "method": "HEAD"}]})
    eq(res["results"][0]["status"], 200, "POST with the body")
    eq(res["results"][1]["error"]["code"], "invalid_url", "HEAD with it")
    eq(u.hits(url[url.index("/respond"):]), 1, "only the POST was sent")


def test_method_and_body_wrong_values():
    d, u = setup()
    url = respond(u, fresh("mbad"))
    cases = [
        ({"method": "FROB"}, '"method" is not one of GET, HEAD, POST'),
        ({"method": "post"}, '"method" is not one of'),
        ({"method": 1}, '"method" is not one of'),
        ({"method": "POST", "body": 5}, '"body" is not a string'),
        ({"method": "POST", "body_base64": "!!!!"}, '"body_base64" is not '
         'base64'),
        ({"method": "POST", "body_base64": "eA"}, '"body_base64" is not'),
        ({"method": "POST", "body_base64": 1}, '"body_base64" is not a'),
        ({"method": "POST", "body": "x", "content_type": "a\nb"},
         '"content_type" is not a string without control characters'),
        ({"method": "POST", "body": "x", "content_type": 1},
         '"content_type" is not a string'),
    ]
    for fields, words in cases:
        refused(d, dict({"urls": [url]}, **fields), words)
        invalid_item(d, dict({"url": url}, **fields), words)


def test_redirects_301_302_303_turn_into_get_without_the_body():
    d, u = setup()
    for status in (301, 302, 303):
        for m in ("POST", "PUT", "DELETE"):
            target = fresh(f"r{status}")
            url = respond(u, fresh(f"r{status}"), status=status,
                          headers=["Location: " + target])
            r = one(d, {"url": url, "method": m, "body": "secret",
                        "content_type": "text/x"})
            eq((r["status"], r["redirects"]), (200, 1),
               f"{m} then {status}: {r!r}")
            method, headers, body = sent(u, target)
            eq((method, body), ("GET", b""), f"{m} then {status}: sent")
            check("content-type" not in headers,
                  f"{m} then {status}: Content-Type went along: {headers!r}")
    target = fresh("rhead")
    url = respond(u, fresh("rhead"), status=302,
                  headers=["Location: " + target])
    one(d, {"url": url, "method": "HEAD"})
    eq(sent(u, target)[0], "HEAD", "HEAD stays HEAD")


def test_redirects_307_308_keep_method_and_body_to_the_same_origin():
    d, u = setup()
    for status in (307, 308):
        for m in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            target = fresh(f"r{status}")
            url = respond(u, fresh(f"r{status}"), status=status,
                          headers=["Location: " + target])
            r = one(d, {"url": url, "method": m, "body": "kept " + m,
                        "content_type": "text/x"})
            eq((r["status"], r["redirects"]), (200, 1),
               f"{m} then {status}: {r!r}")
            method, headers, body = sent(u, target)
            eq((method, body, headers.get("content-type")),
               (m, ("kept " + m).encode(), "text/x"),
               f"{m} then {status}: sent again")


def test_redirect_307_with_a_body_stops_at_another_origin():
    """A body never goes to another origin: a 307/308 elsewhere is not
    followed, and the answer is the redirect itself.  A bodiless GET is
    followed there (without the caller's headers)."""
    d, u = setup()
    other = h.Upstream()
    try:
        for status in (307, 308):
            target = fresh("xorigin")
            url = respond(u, fresh("xorigin"), status=status,
                          headers=["Location: " + other.url(target)])
            r = one(d, {"url": url, "method": "POST", "body": "secret"})
            eq((r["status"], r["redirects"], r["effective_url"], r["error"]),
               (status, 0, url, None), f"POST then {status} elsewhere")
            r = one(d, {"url": url, "method": "POST", "body": "secret",
                        "expect": {"status": ["2xx"]}})
            eq(r["error"]["message"], f"status {status} not in [2xx]",
               "an expect catches the stop")
            eq(other.hits(target), 0, "the other origin got the body")
            r = one(d, {"url": url, "headers": {"X-Secret": "s"}})
            eq((r["status"], r["redirects"]), (200, 1), "GET follows")
            method, headers, body = sent(other, target)
            eq((method, body), ("GET", b""), "GET to the other origin")
            check("x-secret" not in headers,
                  f"the caller's header went to another origin: {headers!r}")
    finally:
        eq(other.stop(), None, "second upstream stop")


def test_body_over_max_request_bytes_is_413():
    u = h.upstream()
    with h.run_daemon(config(u, {"limits": {"max_request_bytes": 4096}})) as d:
        path = fresh("big")
        url = respond(u, path)
        r = d.fetch({"urls": [url], "method": "POST", "body": "b" * 5000})
        eq(r.status, 413, f"a body over max_request_bytes ({r.text[:200]!r})")
        r = d.fetch({"urls": [{"url": url, "method": "PUT",
                               "body_base64": "QUJD" * 1100}]})
        eq(r.status, 413, "a body_base64 over it")
        eq(u.hits(path), 0, "nothing was fetched")
        one(d, {"url": url, "method": "POST", "body": "b" * 3000})
        eq(sent(u, path)[2], b"b" * 3000, "a body under the limit")


# 4. retries


def test_retries_on_429_502_503_504():
    d, u = setup()
    items, paths = [], []
    for s in (429, 502, 503, 504):
        paths.append(fresh(f"rt{s}"))
        items.append({"url": respond(u, paths[-1], seq=[s, s, 200]),
                      "retries": 2, "retry_backoff_ms": 0})
    res = answer(d, items)["results"]
    for p, r in zip(paths, res):
        eq((r["status"], r["ok"], r["attempts"]), (200, True, 3),
           f"{p}: {r!r}")
        eq(u.hits(p), 3, f"{p}: requests sent")


def test_no_retry_on_other_statuses_or_without_retries():
    d, u = setup()
    items, paths = [], []
    for s in (500, 404, 501):
        paths.append(fresh(f"nort{s}"))
        items.append({"url": respond(u, paths[-1], seq=[s, 200]),
                      "retries": 3, "retry_backoff_ms": 0})
    paths.append(fresh("nort503"))
    items.append(respond(u, paths[-1], seq=[503, 200]))  # retries 0
    res = answer(d, items)["results"]
    for p, r in zip(paths, res):
        eq((r["attempts"], r["time_ms"]["retry_wait"]), (1, 0.0),
           f"{p}: {r!r}")
        eq(u.hits(p), 1, f"{p}: requests sent")
    eq(res[3]["status"], 503, "no retries by default")


def test_retries_exhausted_and_backoff_doubles():
    d, u = setup()
    path = fresh("exh")
    start = time.monotonic()
    r = one(d, {"url": respond(u, path, seq=[503]), "retries": 3,
                "retry_backoff_ms": 100})
    wall = time.monotonic() - start
    eq((r["status"], r["ok"], r["attempts"]), (503, False, 4), f"{r!r}")
    eq(u.hits(path), 4, "requests sent")
    # backoff 100, 200, 400 ms, each at least half of it (jitter)
    wait = r["time_ms"]["retry_wait"]
    check(wait >= 350, f"retry_wait {wait} below 50+100+200 ms")
    check(wall * 1000 >= wait, f"retry_wait {wait} ms above the wall time")


def test_retries_on_connect_errors():
    d, u = setup()
    url = f"http://127.0.0.1:{h.free_port()}/x"
    r = one(d, {"url": url, "retries": 2, "retry_backoff_ms": 40})
    eq((r["error"]["code"], r["attempts"]), ("connect", 3), f"{r!r}")
    check(r["time_ms"]["retry_wait"] >= 20 + 40,
          f"retry_wait {r['time_ms']['retry_wait']}")


def test_retries_on_dns_errors():
    """Each attempt looks the name up again: the test's own resolver
    (NXDOMAIN to all) sees three A queries for two retries."""
    h.require_private_resolver()
    with h.DnsServer() as dns:
        with h.run_daemon_with_resolver(dns) as d:
            r = one(d, {"url": "http://nx.test/", "retries": 2,
                        "retry_backoff_ms": 10})
            eq((r["error"]["code"], r["attempts"]), ("dns", 3), f"{r!r}")
            r = one(d, {"url": "http://nx2.test/"})
            eq((r["error"]["code"], r["attempts"]), ("dns", 1), "no retries")
        names = [n for n, t in dns.queries if t == "A"]
    eq(names.count("nx.test"), 3, f"A queries: {dns.queries}")
    eq(names.count("nx2.test"), 1, f"A queries: {dns.queries}")


def test_retry_after_is_honoured():
    d, u = setup()
    path = fresh("ra")
    r = one(d, {"url": respond(u, path, seq=[503, 200],
                               headers=["Retry-After: 1"]),
                "retries": 1, "retry_backoff_ms": 0})
    eq((r["status"], r["attempts"]), (200, 2), f"{r!r}")
    check(r["time_ms"]["retry_wait"] >= 990,
          f"Retry-After: 1 but retry_wait {r['time_ms']['retry_wait']}")
    check(r["time_ms"]["total"] < r["time_ms"]["retry_wait"],
          f"time_ms.total covers more than the last attempt: {r['time_ms']}")


def test_retry_after_beyond_the_deadline_ends_the_fetch():
    """A Retry-After past timeout_ms ends the fetch with the answer it
    has.  18446744074 s once overflowed, in nanoseconds, into a wait of
    0.29 s, and the fetch was retried at once."""
    d, u = setup()
    for after in ("30", "18446744074"):
        path = fresh("ra")
        start = time.monotonic()
        r = one(d, {"url": respond(u, path, seq=[503, 200],
                                   headers=["Retry-After: " + after]),
                    "retries": 2, "timeout_ms": 2000})
        eq((r["status"], r["attempts"], r["time_ms"]["retry_wait"]),
           (503, 1, 0.0), f"Retry-After: {after}: {r!r}")
        check(time.monotonic() - start < 10, f"waited for {after}")
        eq(u.hits(path), 1, f"Retry-After: {after}: requests sent")


def test_a_timeout_is_not_retried_past_the_deadline():
    """timeout_ms bounds every attempt together: a timeout leaves no time
    for another one."""
    d, u = setup()
    start = time.monotonic()
    r = one(d, {"url": u.url("/hang"), "retries": 3, "timeout_ms": 300})
    eq((r["error"]["code"], r["attempts"]), ("timeout", 1), f"{r!r}")
    check(time.monotonic() - start < 5, "retries went past timeout_ms")


def test_retries_only_for_idempotent_methods():
    d, u = setup()
    url = respond(u, fresh("idem"))
    for m in ("POST", "PATCH"):
        refused(d, {"urls": [url], "method": m, "retries": 1}, '"retries"',
                f"a {m} is not idempotent")
        invalid_item(d, {"url": url, "method": m, "retries": 2},
                     '"retries"', m)
    res = answer(d, {"urls": [url, {"url": url, "method": "POST"}],
                     "retries": 1})["results"]
    eq(res[0]["status"], 200, "GET with retries")
    eq(res[1]["error"]["code"], "invalid_url", "POST with the request's")
    items = []
    for m in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS"):
        path = fresh("idem" + m)
        items.append({"url": respond(u, path, seq=[503, 204]), "method": m,
                      "retries": 1, "retry_backoff_ms": 0,
                      "body": "x" if m in ("PUT", "DELETE") else None})
        if items[-1]["body"] is None:
            del items[-1]["body"]
    for r in answer(d, items)["results"]:
        eq((r["status"], r["attempts"]), (204, 2), f"{r['url']}: {r!r}")


def test_retries_bad_values():
    d, u = setup()
    url = respond(u, fresh("rtbad"))
    for v in (6, -1, "1", 1.5, None):
        refused(d, {"urls": [url], "retries": v}, '"retries"',
                "from 0 to 5")
        invalid_item(d, {"url": url, "retries": v}, '"retries"')
    for v in (-1, 60001, "200"):
        refused(d, {"urls": [url], "retry_backoff_ms": v},
                '"retry_backoff_ms"', "from 0 to 60000")
    r = one(d, {"url": url, "retries": 5, "retry_backoff_ms": 60000})
    eq((r["status"], r["attempts"]), (200, 1), "the largest values")


# 5. resolve and ip_version


def test_resolve_pins_a_name_to_an_address():
    d, u = setup()
    path = fresh("pin")
    url = f"http://svc.test:{u.port}{path}"
    res = answer(d, {"urls": [url, {"url": url, "resolve": [
        f"svc.test:{u.port}:127.0.0.1"]}],
        "resolve": {f"svc.test:{u.port}": "127.0.0.1"}})["results"]
    for r in res:
        eq((r["status"], r["remote_ip"]), (200, "127.0.0.1"), f"{r!r}")
    eq(sent(u, path)[1]["host"], f"svc.test:{u.port}",
       "the Host is the URL's name")


def test_resolve_sends_no_dns_query():
    """The test's resolver sees no query for a pinned name, and one for
    a name that is not pinned."""
    h.require_private_resolver()
    u = h.upstream()
    with h.DnsServer() as dns:
        with h.run_daemon_with_resolver(dns, config(u)) as d:
            r = one(d, {"url": f"http://svc.test:{u.port}{fresh('nodns')}",
                        "resolve": {f"svc.test:{u.port}": "127.0.0.1"}})
            eq(r["status"], 200, f"pinned: {r!r}")
            r = one(d, {"url": f"http://svc.test:{u.port}{fresh('nodns')}",
                        "module": "pinned"})
            eq(r["status"], 200, f"pinned by the module: {r!r}")
            eq(dns.names(), [], "queries for pinned names")
            r = one(d, {"url": f"http://other.test:{u.port}/",
                        "resolve": {f"svc.test:{u.port}": "127.0.0.1"}})
            eq(r["error"]["code"], "dns", "a name not pinned")
        eq(sorted(set(dns.names())), ["other.test"], "queries")


def test_resolve_item_wins_over_the_request():
    d, u = setup()
    url = f"http://svc.test:{u.port}{fresh('rwin')}"
    res = answer(d, {"urls": [url, {"url": url, "resolve": {
        f"svc.test:{u.port}": "127.0.0.1"}}],
        "resolve": {f"svc.test:{u.port}": "169.254.169.254"}})["results"]
    eq(res[0]["error"]["code"], "blocked", "the request's (denied) address")
    eq(res[1]["status"], 200, "the item's")


def test_resolve_cannot_reach_a_denied_address():
    d, u = setup()
    port = u.port
    for addr in ("169.254.169.254", "::ffff:169.254.169.254", "0.0.0.0",
                 "0.1.2.3", "::", "fe80::1", "fd00:ec2::254"):
        start = time.monotonic()
        r = one(d, {"url": f"http://svc.test:{port}/x",
                    "resolve": {f"svc.test:{port}": addr}})
        eq((r["status"], r["error"]["code"], r["remote_ip"]),
           (None, "blocked", None), f"resolve to {addr}: {r!r}")
        check("refused by the target policy" in r["error"]["message"],
              f"{addr}: message {r['error']['message']!r}")
        check(time.monotonic() - start < 5, f"{addr}: a connect was tried")
    r = one(d, {"url": f"http://svc.test:{port}/x", "module": "metadata"})
    eq(r["error"]["code"], "blocked", "through a module")


def test_resolve_obeys_the_configured_policy():
    u = h.upstream()
    path = fresh("pol")
    with h.run_daemon(config(u, {"security": {
            "allow_targets": ["127.0.0.1/32"]}})) as d:
        r = one(d, {"url": f"http://svc.test:{u.port}{path}",
                    "resolve": {f"svc.test:{u.port}": "127.0.0.2"}})
        eq(r["error"]["code"], "blocked", "outside allow_targets")
        r = one(d, {"url": f"http://svc.test:{u.port}{path}",
                    "resolve": {f"svc.test:{u.port}": "127.0.0.1"}})
        eq(r["status"], 200, "inside allow_targets")
    with h.run_daemon(config(u, {"security": {
            "deny_targets": ["127.0.0.0/8"]}})) as d:
        r = one(d, {"url": f"http://svc.test:{u.port}{path}",
                    "resolve": {f"svc.test:{u.port}": "127.0.0.1"}})
        eq(r["error"]["code"], "blocked", "a denied loopback")
    eq(u.hits(path), 1, "only the allowed fetch arrived")


def test_resolve_bad_values():
    d, u = setup()
    url = respond(u, fresh("resbad"))
    cases = [
        ("svc.test:80=127.0.0.1", "is not an object of 1 to 16"),
        ({}, "is not an object of 1 to 16"),
        ([], "is not an object of 1 to 16"),
        ({f"h{i}.test:80": "127.0.0.1" for i in range(17)},
         "is not an object of 1 to 16"),
        ({"svc.test": "127.0.0.1"}, "a key is not"),
        ({"svc.test:0": "127.0.0.1"}, "port is not 1 to 65535"),
        ({"svc.test:65536": "127.0.0.1"}, "port is not 1 to 65535"),
        ({"svc.test:80": "localhost"}, "not an IPv4 or IPv6 address"),
        ({"svc.test:80": 1}, "not an IPv4 or IPv6 address"),
        ({"a b:80": "127.0.0.1"}, "a key is not"),
        (["svc.test:80"], "is not \"host:port:address\""),
        (["svc.test:80:999.1.1.1"], "not an IPv4 or IPv6 address"),
        ([1], "not a \"host:port:address\" string"),
    ]
    for value, words in cases:
        refused(d, {"urls": [url], "resolve": value}, '"resolve"', words)
        invalid_item(d, {"url": url, "resolve": value}, '"resolve"', words)


def need_ipv6():
    if not h.ipv6_available():
        raise h.Skip("::1 is not available here")


def test_ip_version():
    need_ipv6()
    d, u = setup()
    u6 = h.Upstream("::1")
    try:
        v4, v6 = respond(u, fresh("ipv")), respond(u6, fresh("ipv"))
        res = answer(d, [
            {"url": v4, "ip_version": "4"}, {"url": v4, "ip_version": "any"},
            {"url": v6, "ip_version": "6"}, {"url": v6, "ip_version": "any"},
            {"url": v4, "ip_version": "6"}, {"url": v6, "ip_version": "4"},
        ])["results"]
        for r in res[:4]:
            eq(r["status"], 200, f"{r['url']}: {r!r}")
        eq([r["remote_ip"] for r in res[:4]],
           ["127.0.0.1", "127.0.0.1", "::1", "::1"], "addresses")
        for r in res[4:]:
            eq((r["status"], r["ok"]), (None, False), f"{r!r}")
            check(r["error"]["code"] in ("connect", "dns"),
                  f"the other family: {r['error']!r}")
        # a name pinned to ::1, at request level, asked for over IPv6
        url = f"http://svc6.test:{u6.port}{fresh('ipv')}"
        r = one(d, url, ip_version="6",
                resolve={f"svc6.test:{u6.port}": "::1"})
        eq((r["status"], r["remote_ip"]), (200, "::1"), f"{r!r}")
    finally:
        eq(u6.stop(), None, "IPv6 upstream stop")


def test_resolve_and_ip_version_must_agree():
    """A pinned address of the family ip_version rules out would make
    curl drop the pin and ask DNS: refused as an input error."""
    d, u = setup()
    url = f"http://svc.test:{u.port}{fresh('agree')}"
    refused(d, {"urls": [url], "ip_version": "6",
                "resolve": {f"svc.test:{u.port}": "127.0.0.1"}},
            '"resolve"', "maps to an IPv4 address", '"ip_version" is "6"')
    invalid_item(d, {"url": url, "ip_version": "4",
                     "resolve": [f"svc.test:{u.port}:[::1]"]},
                 '"resolve"', "maps to an IPv6 address")
    invalid_item(d, {"url": url, "module": "pinned", "ip_version": "6"},
                 '"resolve"', "maps to an IPv4 address")
    for bad in ("5", 4, "v4", "", None):
        refused(d, {"urls": [url], "ip_version": bad}, '"ip_version"',
                'is not "4", "6" or "any"')


# 7. modules


def test_module_at_request_level():
    d, u = setup()
    url = respond(u, fresh("mreq"), status=301)
    r = one(d, url, module="http_2xx")
    failed(r, "module http_2xx", "status 301 not in [2xx]",
           [{"check": "status", "expected": ["2xx"], "actual": 301}])
    r = one(d, url)
    eq((r["ok"], "failed_checks" in r), (True, False), "without the module")


def test_module_per_item():
    d, u = setup()
    ok = respond(u, fresh("mitem"), body="all OK here",
                 headers=["X-Version: 3.1"])
    bad = respond(u, fresh("mitem"), body="DEGRADED")
    res = answer(d, [{"url": ok, "module": "body_ok"},
                     {"url": bad, "module": "body_ok"}, ok])["results"]
    passed(res[0], "body_ok on OK")
    eq((res[0]["body"], res[0]["body_truncated"], res[0]["headers"]),
       ("all OK here", False, {"X-Version": "3.1"}),
       "the module's capture and capture_headers")
    failed(res[1], "body_ok on DEGRADED", 'body does not contain "OK"',
           [{"check": "body_contains", "expected": "OK"}])
    check("body" not in res[2] and "failed_checks" not in res[2],
          f"an item without the module: {res[2]!r}")


def test_module_sends_its_method_body_and_headers():
    d, u = setup()
    p1, p2, p3 = fresh("mpost"), fresh("mpost"), fresh("mpost")
    answer(d, {"urls": [
        {"url": respond(u, p1), "module": "post_json"},
        {"url": respond(u, p2), "module": "post_json", "body": "[1]",
         "headers": {"X-Item": "i"}},
        {"url": respond(u, p3), "module": "post_json", "method": "PUT",
         "headers": {"X-From-Module": "item"}},
    ], "headers": {"X-Request": "r"}})
    method, headers, body = sent(u, p1)
    eq((method, body, headers.get("content-type")),
       ("POST", b"{}", "application/json"), "the module's request")
    eq((headers.get("x-from-module"), headers.get("x-request")), ("m", "r"),
       "module and request headers merge")
    method, headers, body = sent(u, p2)
    eq((method, body, headers.get("x-item"), headers.get("x-from-module")),
       ("POST", b"[1]", "i", "m"), "the item's body over the module's")
    method, headers, body = sent(u, p3)
    eq((method, body, headers.get("x-from-module")), ("PUT", b"{}", "item"),
       "the item's method and header over the module's")


def test_module_fields_are_overridden_by_the_object_and_the_item():
    """Levels, each over the one before: the config, the request's
    module, the request, the item's module, the item."""
    d, u = setup()
    url = respond(u, fresh("mlev"), status=301)
    # the request's own expect over its module's
    r = one(d, url, module="http_2xx", expect={"status": [301]})
    passed(r, "request expect over request module", 301)
    # the item's module over the request's fields
    r = one(d, {"url": url, "module": "http_2xx"}, expect={"status": [301]})
    eq(r["error"]["message"], "status 301 not in [2xx]",
       "item module over request expect")
    # the item's own field over its module
    r = one(d, {"url": url, "module": "http_2xx", "expect": {}})
    passed(r, "item expect over item module", 301)
    # retries: from the request's module, kept by an item module that
    # does not set them, dropped by an item that does
    p1, p2 = fresh("mlev"), fresh("mlev")
    res = answer(d, {"module": "retry", "urls": [
        {"url": respond(u, p1, seq=[503, 200]), "module": "slow_ok"},
        {"url": respond(u, p2, seq=[503, 200]), "retries": 0}]})["results"]
    eq((res[0]["status"], res[0]["attempts"]), (200, 2),
       "the request module's retries under an item module")
    eq((res[1]["status"], res[1]["attempts"]), (503, 1), "the item's 0")


def test_module_timeout_and_follow_redirects():
    d, u = setup()
    start = time.monotonic()
    r = one(d, {"url": u.url("/hang"), "module": "short"})
    eq(r["error"]["code"], "timeout", f"the module's timeout_ms: {r!r}")
    check(time.monotonic() - start < 5, "timeout_ms 200 took seconds")
    url = respond(u, fresh("mshort"), status=302,
                  headers=["Location: " + fresh("mshort")])
    r = one(d, url, module="short")
    eq((r["status"], r["redirects"]), (302, 0), "not followed")
    r = one(d, {"url": url, "module": "short", "follow_redirects": True})
    eq((r["status"], r["redirects"]), (200, 1), "the item's over it")


def test_module_unknown_or_not_a_string():
    d, u = setup()
    url = respond(u, fresh("munk"))
    refused(d, {"urls": [url], "module": "nope"}, 'unknown module "nope"')
    invalid_item(d, {"url": url, "module": "nope"}, 'unknown module "nope"')
    refused(d, {"urls": [url], "module": 1}, '"module" is not a string')
    invalid_item(d, {"url": url, "module": ["http_2xx"]},
                 '"module" is not a string')
    eq(u.hits(url[url.index("/respond"):]), 0, "fetched")


def module_conf(u, modules, extra=None):
    return h.merge({"log": {"level": "info"}, "modules": modules}, extra)


def test_modules_reload_on_sighup():
    u = h.upstream()
    url = respond(u, fresh("mhup"), status=201, body="v2")
    first = [{"name": "check", "expect": {"status": [200]}}]
    with h.run_daemon(module_conf(u, first)) as d:
        r = one(d, url, module="check")
        eq(r["error"]["message"], "status 201 not in [200]", "before")
        refused(d, {"urls": [url], "module": "later"}, "unknown module")
        check(d.reload(settings=module_conf(u, [
            {"name": "check", "expect": {"status": ["2xx"],
                                         "body_contains": "v2"}},
            {"name": "later", "capture": 8}])), "the reload failed")
        passed(one(d, url, module="check"), "the changed module", 201)
        r = one(d, url, module="later")
        eq(r["body"], "v2", "a module added by the reload")
        check(d.reload(settings=module_conf(u, [])), "the reload failed")
        refused(d, {"urls": [url], "module": "check"},
                'unknown module "check"')


def test_module_with_a_bad_field():
    """A module whose fields are wrong is reported at load (fanoutd -t,
    start-up, SIGHUP) by the code that checks a request; a reload to it
    keeps the running modules."""
    u = h.upstream()
    settings = module_conf(u, [{"name": "broken", "retries": 9},
                               {"name": "fine", "retries": 1}])
    path = h.tmpfile("bad-module-conf")
    with open(path, "w") as f:
        f.write(h.render_config(h.merge(h.BASE_CONFIG, settings)))
    p = subprocess.run([h.env("FANOUTD_BIN"), "-t", "-c", path],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=20)
    check(p.returncode != 0, "fanoutd -t accepted a bad module")
    check(re.search(r":\d+: modules: broken: \"retries\" is not an "
                    r"integer from 0 to 5", p.stderr),
          f"fanoutd -t: {p.stderr!r}")
    check("fine" not in p.stderr, f"a good module reported: {p.stderr}")
    with h.run_daemon(module_conf(u, [{"name": "fine", "capture": 4}])) as d:
        check(not d.reload(settings=settings), "a bad module was loaded")
        check("modules: broken:" in d.process.stderr(),
              "the reload's error names the module")
        r = one(d, respond(u, fresh("mkeep"), body="kept"), module="fine")
        eq(r.get("body"), "kept", "the running module still applies")


# Every field: unknown fields and wrong types.


def test_unknown_field_is_named():
    d, u = setup()
    url = respond(u, fresh("unk"))
    for name in ("frob", "expects", "Method", "retry"):
        refused(d, {"urls": [url], name: 1}, f'unknown field "{name}"')
        invalid_item(d, {"url": url, name: 1}, f'unknown field "{name}"')
    eq(u.hits(url[url.index("/respond"):]), 0, "fetched")


WRONG_TYPES = [
    ("timeout_ms", "100"), ("follow_redirects", "yes"), ("method", 1),
    ("headers", ["X-A: 1"]), ("verify_tls", 1), ("expect", [200]),
    ("capture", "10"), ("capture_headers", "X-A"), ("body", 1),
    ("body_base64", 1), ("content_type", 1), ("retries", "1"),
    ("retry_backoff_ms", "1"), ("resolve", "svc.test:80:127.0.0.1"),
    ("ip_version", 4), ("module", 1),
]


def test_wrong_types_name_the_field():
    d, u = setup()
    url = respond(u, fresh("types"))
    for name, value in WRONG_TYPES:
        fields = {name: value}
        if name in ("body", "body_base64", "content_type"):
            fields["method"] = "POST"
        refused(d, dict({"urls": [url]}, **fields), f'"{name}"')
        invalid_item(d, dict({"url": url}, **fields), f'"{name}"')
    eq(u.hits(url[url.index("/respond"):]), 0, "fetched")

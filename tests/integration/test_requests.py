"""Whole-request errors: every status the daemon answers instead of 200.

Scenarios are data (relayd's regress args-*.pl, curl's tests/data): a
request and the answer it must get.  All run against one daemon with small
limits so that the limits are cheap to cross.
"""

import json
import re

import harness as h
from harness import check, eq

MAX_URLS = 10
MAX_BODY = 4096
CONFIG = {"limits": {"max_urls": MAX_URLS, "max_request_bytes": MAX_BODY}}

JSON = "application/json"
ANY_400 = ("invalid_json", "invalid_request")
REFUSED = "http://127.0.0.1:1/"


def sized_body(n):
    """A valid empty JSON array exactly n bytes long."""
    return "[" + " " * (n - 2) + "]"


def urls(n, url=REFUSED):
    return json.dumps([url] * n)


SCENARIOS = [
    # 400: malformed JSON, with line and column
    dict(name="malformed_json_line_column",
         body='[\n  "http://127.0.0.1:1/",\n  oops\n]',
         status=400, code="invalid_json",
         message=[r"line\D{0,3}3\b", r"col"]),
    dict(name="truncated_json", body='["http://127.0.0.1:1/"',
         status=400, code="invalid_json"),
    dict(name="empty_json_body", body="", status=400, code=ANY_400),
    dict(name="trailing_garbage", body='[] []', status=400, code="invalid_json"),
    # 400: wrong shapes
    dict(name="top_level_string", body='"http://127.0.0.1:1/"',
         status=400, code=ANY_400),
    dict(name="top_level_number", body="42", status=400, code=ANY_400),
    dict(name="top_level_null", body="null", status=400, code=ANY_400),
    dict(name="urls_not_array", body='{"urls": "http://127.0.0.1:1/"}',
         status=400, code="invalid_request"),
    dict(name="urls_missing", body='{"timeout_ms": 100}',
         status=400, code="invalid_request"),
    dict(name="timeout_ms_not_int", body='{"urls": [], "timeout_ms": "fast"}',
         status=400, code="invalid_request"),
    dict(name="follow_redirects_not_bool",
         body='{"urls": [], "follow_redirects": "yes"}',
         status=400, code="invalid_request"),
    dict(name="method_not_string", body='{"urls": [], "method": 1}',
         status=400, code="invalid_request"),
    dict(name="method_not_known", body='{"urls": [], "method": "FROB"}',
         status=400, code="invalid_request"),
    dict(name="headers_not_object", body='{"urls": [], "headers": ["X-A: 1"]}',
         status=400, code="invalid_request"),
    dict(name="header_value_not_string",
         body='{"urls": [], "headers": {"X-A": 1}}',
         status=400, code="invalid_request"),
    # 413: too many URLs, body too large
    dict(name="max_urls_accepted", body=lambda u: urls(
        MAX_URLS, u.url("/status/200")), status=200, results=MAX_URLS),
    dict(name="too_many_urls_json", body=urls(MAX_URLS + 1),
         status=413, code="too_many_urls"),
    dict(name="too_many_urls_object",
         body=json.dumps({"urls": [REFUSED] * (MAX_URLS + 1)}),
         status=413, code="too_many_urls"),
    dict(name="too_many_urls_text", ctype="text/plain",
         body="\n".join([REFUSED] * (MAX_URLS + 1)),
         status=413, code="too_many_urls"),
    dict(name="body_at_limit", body=sized_body(MAX_BODY), status=200,
         results=0),
    dict(name="body_one_byte_over", body=sized_body(MAX_BODY + 1),
         status=413, raw=True),
    dict(name="body_far_over", body=sized_body(1 << 20), status=413, raw=True),
    # 404
    dict(name="unknown_path_get", method="GET", path="/nope", ctype=None,
         status=404, code="not_found"),
    dict(name="unknown_path_post", path="/nope", body="[]",
         status=404, code="not_found"),
    dict(name="root_path", method="GET", path="/", ctype=None,
         status=404, code="not_found"),
    dict(name="fetch_subpath", path="/fetch/x", body="[]",
         status=404, code="not_found"),
    # 405 with Allow
    dict(name="get_fetch", method="GET", path="/fetch", ctype=None,
         status=405, code="method_not_allowed", allow="POST"),
    dict(name="put_fetch", method="PUT", path="/fetch", body="[]",
         status=405, code="method_not_allowed", allow="POST"),
    dict(name="delete_fetch", method="DELETE", path="/fetch", ctype=None,
         status=405, code="method_not_allowed", allow="POST"),
    dict(name="patch_fetch", method="PATCH", path="/fetch", body="[]",
         status=405, code="method_not_allowed", allow="POST"),
    dict(name="post_healthz", method="POST", path="/healthz", body="[]",
         status=405, code="method_not_allowed", allow="GET"),
    dict(name="delete_healthz", method="DELETE", path="/healthz", ctype=None,
         status=405, code="method_not_allowed", allow="GET"),
    # 415
    dict(name="type_xml", ctype="application/xml", body="<a/>",
         status=415, code="unsupported_media_type"),
    dict(name="type_html", ctype="text/html", body="<p>",
         status=415, code="unsupported_media_type"),
    dict(name="type_multipart", ctype="multipart/form-data; boundary=x",
         body="--x--", status=415, code="unsupported_media_type"),
    dict(name="type_json_prefix", ctype="application/jsonx", body="[]",
         status=415, code="unsupported_media_type"),
    dict(name="type_text_prefix", ctype="text/plainx", body="",
         status=415, code="unsupported_media_type"),
]


def scenario(s):
    d = h.daemon(CONFIG)
    u = h.upstream()
    method = s.get("method", "POST")
    path = s.get("path", "/fetch")
    body = s.get("body")
    if callable(body):
        body = body(u)
    ctype = s.get("ctype", JSON)
    headers = {} if ctype is None else {"Content-Type": ctype}

    if s.get("raw"):
        # The daemon may answer and close before it has read the body.
        data = body.encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n").encode()
        status, _, resp = h.raw_exchange(d.host, d.port, head + data)
        eq(status, s["status"], f"status (body {resp[:200]!r})")
    else:
        r = d.request(method, path, body, headers)
        if "code" in s:
            err = h.error_body(r, s["status"], s["code"])
            for pattern in s.get("message", []):
                check(re.search(pattern, err["message"], re.I),
                      f"message {err['message']!r} lacks /{pattern}/")
        else:
            eq(r.status, s["status"], f"status ({r.text[:300]})")
        if "allow" in s:
            allow = [m.strip() for m in (r.header("Allow") or "").split(",")]
            check(s["allow"] in allow,
                  f"Allow header {r.header('Allow')!r} lacks {s['allow']}")
        if "results" in s:
            eq(len(r.json()["results"]), s["results"], "number of results")
    eq(d.request("GET", "/healthz").status, 200, "healthz afterwards")

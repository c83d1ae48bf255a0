"""Streaming answers: POST /fetch?stream=1 or Accept: application/x-ndjson.

One result object per line in completion order, then one summary line;
request errors are still plain JSON; a pause between lines longer than
limits.client_timeout_ms does not cut the stream.
"""

import http.client
import json
import time

import harness as h
from harness import check, eq
from test_api import check_result


def read_stream(d, path, urls, headers=None, timeout=10):
    """POST urls; return (status, content type, [(seconds, line)])."""
    conn = http.client.HTTPConnection(d.host, d.port, timeout=timeout)
    start = time.monotonic()
    try:
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        conn.request("POST", path, body=json.dumps(urls), headers=hdrs)
        resp = conn.getresponse()
        lines = []
        while True:
            line = resp.readline()
            if not line:
                break
            lines.append((time.monotonic() - start, line.decode()))
        return resp.status, resp.headers.get("Content-Type"), lines
    finally:
        conn.close()


def check_ndjson(urls, lines):
    """Every line is one JSON object: each index once, summary last."""
    docs = [json.loads(text) for _, text in lines]
    eq(len(docs), len(urls) + 1, "lines: one per URL plus the summary")
    check(set(docs[-1]) == {"summary"}, f"last line: {docs[-1]!r}")
    seen = sorted(doc["index"] for doc in docs[:-1])
    eq(seen, list(range(len(urls))), "every index exactly once")
    for doc in docs[:-1]:
        check_result(doc, doc["index"], urls[doc["index"]])
    eq(docs[-1]["summary"]["total"], len(urls), "summary.total")
    return docs


def test_stream_lines_come_in_completion_order():
    u = h.upstream()
    d = h.daemon()
    urls = [u.url("/delay/600"), u.url("/delay/0"), u.url("/delay/300")]
    status, ctype, lines = read_stream(d, "/fetch?stream=1", urls)
    eq(status, 200, "status")
    check((ctype or "").startswith("application/x-ndjson"),
          f"Content-Type {ctype!r}")
    docs = check_ndjson(urls, lines)
    eq([doc["index"] for doc in docs[:-1]], [1, 2, 0], "completion order")
    # The fast answer arrived long before the slow one: really streamed.
    check(lines[0][0] < 0.45, f"first line after {lines[0][0]:.2f}s")
    check(lines[-2][0] >= 0.55, f"last result after {lines[-2][0]:.2f}s")


def test_stream_by_accept_header():
    u = h.upstream()
    d = h.daemon()
    urls = [u.url("/status/200"), u.url("/status/404"), "ftp://x/"]
    status, ctype, lines = read_stream(
        d, "/fetch", urls, {"Accept": "application/x-ndjson"})
    eq(status, 200, "status")
    docs = check_ndjson(urls, lines)
    s = docs[-1]["summary"]
    eq((s["ok"], s["failed"]), (1, 2), "summary ok/failed")
    eq(s["error_counts"], {"unsupported_scheme": 1}, "error_counts")


def test_stream_of_invalid_items_only_and_of_nothing():
    d = h.daemon()
    status, _, lines = read_stream(d, "/fetch?stream=1", [1, None])
    eq(status, 200, "status")
    check_ndjson([None, None], lines)
    status, _, lines = read_stream(d, "/fetch?stream=1", [])
    eq(status, 200, "status of an empty stream")
    eq([json.loads(t) for _, t in lines],
       [{"summary": {"total": 0, "ok": 0, "failed": 0, "status_counts": {},
                     "error_counts": {},
                     "elapsed_ms": json.loads(lines[0][1])["summary"][
                         "elapsed_ms"],
                     "earliest_cert_expiry": None}}],
       "an empty stream is one summary line")


def test_stream_request_errors_are_plain_json():
    d = h.daemon()
    r = d.request("POST", "/fetch?stream=1", "[1,", {
        "Content-Type": "application/json"})
    h.error_body(r, 400, "invalid_json")
    r = d.request("POST", "/fetch?stream=1", "x", {"Content-Type": "image/png"})
    h.error_body(r, 415, "unsupported_media_type")


def test_stream_survives_pauses_longer_than_the_client_timeout():
    u = h.upstream()
    with h.run_daemon({"limits": {"client_timeout_ms": 400}}) as d:
        urls = [u.url("/delay/50"), u.url("/delay/1200")]
        status, _, lines = read_stream(d, "/fetch?stream=1", urls)
        eq(status, 200, "status")
        docs = check_ndjson(urls, lines)
        eq(docs[-1]["summary"]["ok"], 2, "both fetches finished")

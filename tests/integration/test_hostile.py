"""Issue 3, hostile clients: limits enforced while reading, slow clients,
clients that leave, overload, the request deadline, and the rule that one
client's bad request never costs another client its answer.

Raw sockets send what http.client will not (half requests, lies in
Content-Length, junk); every socket has a timeout and every wait a bound.
Tests that count upstream hits use a private upstream.
"""

import json
import os
import socket
import threading
import time

import harness as h
from harness import check, eq
from test_api import code_of, results_of
from test_security import upstream_at


# Raw-socket helpers.

def connect(d, timeout=5.0):
    s = socket.create_connection((d.host, d.port), timeout=timeout)
    s.settimeout(timeout)
    return s


def post_head(length=None, ctype="application/json", extra=""):
    head = "POST /fetch HTTP/1.1\r\nHost: fanoutd\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    return (head + extra + "\r\n").encode()


def send_quietly(s, data):
    """sendall that treats the peer closing as an answer; True if sent."""
    try:
        s.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def read_answer(s, timeout):
    """Read until EOF, a complete answer, or timeout.  Returns (status or
    None for a close without an answer, raw bytes); raises on timeout."""
    s.settimeout(timeout)
    try:
        buf = h.read_raw_answer(s)
    except socket.timeout:
        raise AssertionError(f"no answer and no close within {timeout}s")
    if not buf.startswith(b"HTTP/"):
        return None, buf
    return int(buf.split(None, 2)[1]), buf


def refused(status, what):
    """A refusal: an HTTP error status or the connection closed."""
    check(status is None or 400 <= status < 500,
          f"{what}: expected a 4xx or a close, got {status}")


def healthy(d, what="after"):
    r = d.request("GET", "/healthz", timeout=5)
    eq(r.status, 200, f"/healthz {what}")


def padded_body(urls, size):
    """A JSON array of urls padded with spaces to exactly size bytes."""
    body = json.dumps(urls).encode()
    check(len(body) <= size, "test setup: body larger than the limit")
    return body + b" " * (size - len(body))


def metric(d, name, labels):
    """A counter's value from /metrics (0 when absent)."""
    text = d.request("GET", "/metrics", timeout=5).text
    want = name + "{" + labels + "}"
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[1])
    return 0.0


def canceled(d):
    return metric(d, "fanoutd_fetch_errors_total", 'code="canceled"')


def background(fn):
    """Run fn in a thread; returns (thread, box with "r" or "e")."""
    box = {}

    def run():
        try:
            box["r"] = fn()
        except BaseException as e:  # noqa: B902 - reported by joined()
            box["e"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def joined(t, box, timeout, what):
    t.join(timeout)
    check(not t.is_alive(), f"{what} did not finish within {timeout}s")
    if "e" in box:
        raise AssertionError(f"{what}: {box['e']}")
    return box["r"]


# Limits on what a client sends.

def test_body_limit_exact_and_one_over():
    limit = 2048
    with upstream_at() as u, \
            h.run_daemon({"limits": {"max_request_bytes": limit}}) as d:
        urls = [u.url("/status/200")]
        body = padded_body(urls, limit)
        r = d.fetch(body)
        eq(r.status, 200, f"a body of exactly {limit} bytes ({r.text[:200]})")
        results_of(r.json(), urls)
        with connect(d) as s:
            send_quietly(s, post_head(limit + 1) + body + b" ")
            status, raw = read_answer(s, 5)
        eq(status, 413, f"a body one byte over ({raw[:200]!r})")
        eq(u.hits(), 1, "fetches made (only the body within the limit)")
        healthy(d)


def test_huge_body_refused_without_reading_it():
    """Content-Length 10 MB over a 64 KiB limit: refused once the head is
    in, not after 10 MB.  Only 1 MB is ever sent, so a daemon that waited
    for the whole body would never answer."""
    with h.run_daemon({"limits": {"max_request_bytes": 65536}}) as d:
        with connect(d) as s:
            start = time.monotonic()
            sent = 0
            if send_quietly(s, post_head(10_000_000)):
                chunk = b"[" + b" " * 65535
                while sent < 1_000_000 and send_quietly(s, chunk):
                    sent += len(chunk)
            status, raw = read_answer(s, 3)
            took = time.monotonic() - start
        refused(status, f"10 MB body ({raw[:200]!r})")
        check(status in (None, 413), f"status {status}")
        check(took < 3, f"refusal took {took:.2f}s")
        healthy(d)


def chunked(data, size):
    out = b""
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def test_chunked_body_limit():
    limit = 4096
    with upstream_at() as u, \
            h.run_daemon({"limits": {"max_request_bytes": limit}}) as d:
        urls = [u.url("/status/200")]
        te = "Transfer-Encoding: chunked\r\n"
        with connect(d) as s:  # control: a chunked body within the limit
            send_quietly(s, post_head(extra=te) +
                         chunked(padded_body(urls, limit), 1000))
            status, raw = read_answer(s, 5)
        eq(status, 200, f"chunked body of exactly the limit ({raw[:300]!r})")
        with connect(d) as s:
            # 40 times the limit and no last chunk: a daemon that waited
            # for the end of the body before counting would never answer
            big = chunked(padded_body(urls, limit * 40), 1000)[:-5]
            send_quietly(s, post_head(extra=te) + big)
            status, raw = read_answer(s, 3)
        refused(status, f"chunked body over the limit ({raw[:200]!r})")
        check(status in (None, 413), f"status {status}")
        eq(u.hits(), 1, "fetches made (only the body within the limit)")
        healthy(d)


def test_max_urls():
    with upstream_at() as u, h.run_daemon({"limits": {"max_urls": 5}}) as d:
        urls = [u.url(f"/status/200?{i}") for i in range(5)]
        results_of(d.fetch_ok(urls), urls)
        six = urls + [u.url("/status/200?5")]
        for payload, ctype in ((six, "application/json"),
                               ({"urls": six}, "application/json"),
                               ("\n".join(six), "text/plain")):
            r = d.fetch(payload, content_type=ctype)
            h.error_body(r, 413, "too_many_urls")
        eq(u.hits(), 5, "fetches made for refused requests")


def test_deep_nesting():
    d = h.daemon()
    n = 100_000
    bodies = ["[" * n + "]" * n,
              '{"a":' * n + "1" + "}" * n,
              '{"urls": [{"url": "http://127.0.0.1:9/", "id": '
              + "[" * n + "]" * n + "}]}"]
    for body in bodies:
        r = d.fetch(body)
        h.error_body(r, 400, ("invalid_json", "invalid_request"))
        healthy(d, "after 100,000-deep nesting")
    eq(d.fetch_ok([]).get("results"), [], "a good request afterwards")


def test_invalid_utf8():
    d = h.daemon()
    bodies = [b'["http://127.0.0.1:9/\xff"]', b'["\xc0\xaf"]',
              b'["\xed\xa0\x80"]', b'["\xf4\x90\x80\x80"]', b'["abc\x80"]',
              b'["\xe2\x82"]', b'{"urls": [], "\xff": 1}',
              b'["http://127.0.0.1:9/\\ud800"]']
    for body in bodies:
        r = d.fetch(body)
        err = h.error_body(r, 400, "invalid_json")
        check(r.json()["error"]["message"].isprintable(),
              f"message: {err!r}")
    healthy(d)


def raw_request(d, data, timeout=5):
    with connect(d) as s:
        send_quietly(s, data)
        return read_answer(s, timeout)


def test_huge_headers():
    d = h.daemon()
    big = "X-Big: " + "a" * 70_000 + "\r\n"
    many = "".join(f"X-H{i}: {'v' * 30}\r\n" for i in range(3000))
    for name, extra in (("one 70 kB header", big), ("3000 headers", many)):
        status, raw = raw_request(d, ("GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                      + extra + "\r\n").encode())
        refused(status, f"{name} ({raw[:200]!r})")
        healthy(d, f"after {name}")
    ok = "X-Ok: " + "a" * 8000 + "\r\n"
    status, raw = raw_request(d, ("GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                  + ok + "\r\n").encode())
    eq(status, 200, "control: an 8 kB header")


# Timeouts.

def test_item_timeout_capped_by_config():
    with upstream_at() as u, \
            h.run_daemon({"fetch": {"timeout_ms": 300}}) as d:
        hang = u.url("/hang")
        for payload in ([{"url": hang, "timeout_ms": 10000}],
                        {"urls": [hang], "timeout_ms": 10000}):
            start = time.monotonic()
            r = results_of(d.fetch_ok(payload), [hang])[0]
            took = time.monotonic() - start
            eq(code_of(r), "timeout", f"error for {json.dumps(payload)}")
            check(took < 2, f"timeout_ms 10000 not capped at 300: {took:.2f}s")


def test_request_deadline():
    with upstream_at() as u, \
            h.run_daemon({"limits": {"request_timeout_ms": 500},
                          "fetch": {"timeout_ms": 10000}}) as d:
        urls = [u.url("/hang"), u.url("/status/200"), u.url("/hang"),
                u.url("/delay/50")]
        start = time.monotonic()
        ans = d.fetch_ok(urls, timeout=5)
        took = time.monotonic() - start
        res = results_of(ans, urls)
        check(0.45 <= took < 2, f"answer after {took:.2f}s, deadline 0.5s")
        for r in (res[0], res[2]):
            check(code_of(r) in ("canceled", "timeout"),
                  f"an unfinished fetch at the deadline: {r['error']}")
        eq([res[1]["status"], res[3]["status"]], [200, 200],
           "fetches that finished in time")
        eq(ans["summary"]["total"], 4, "summary.total")
        eq(ans["summary"]["ok"], 2, "summary.ok")
        healthy(d)


# Slow clients.

def test_slowloris():
    """50 connections dripping a byte every 0.5 s (half in the head, half
    in the body) do not delay another client's fan-out."""
    with upstream_at() as u:
        d = h.daemon()
        socks, stop = [], threading.Event()
        payloads = []
        for i in range(50):
            s = connect(d)
            socks.append(s)
            if i % 2:
                payloads.append(b"POST /fetch HTTP/1.1\r\nHost: slow\r\n"
                                b"X-Slow: " + b"z" * 1000)
            else:
                s.sendall(post_head(1000))
                payloads.append(b"[" + b" " * 999)

        def drip():
            pos = 0
            while not stop.is_set() and pos < 1000:
                for s, p in zip(socks, payloads):
                    try:
                        s.send(p[pos:pos + 1])
                    except OSError:
                        pass
                pos += 1
                stop.wait(0.5)

        t = threading.Thread(target=drip, daemon=True)
        t.start()
        try:
            time.sleep(0.6)  # let the slow clients get going
            urls = [u.url(f"/delay/100?{i}") for i in range(5)]
            for round_ in range(3):
                start = time.monotonic()
                res = results_of(d.fetch_ok(urls, timeout=5), urls)
                took = time.monotonic() - start
                eq([r["status"] for r in res], [200] * 5, "statuses")
                check(took < 1, f"round {round_}: a 100 ms fan-out took "
                      f"{took:.2f}s beside 50 slow clients")
        finally:
            stop.set()
            t.join(2)
            for s in socks:
                s.close()
        healthy(d)


# Clients that leave.

def open_fanout(d, urls, path="/fetch"):
    s = connect(d)
    body = json.dumps(urls).encode()
    s.sendall(post_head(len(body)).replace(b"/fetch", path.encode(), 1)
              + body)
    return s


def check_pool_freed(d, u, before, n, what):
    urls = [u.url(f"/delay/50?{i}") for i in range(4)]
    start = time.monotonic()
    res = results_of(d.fetch_ok(urls, timeout=10), urls)
    took = time.monotonic() - start
    eq([r["status"] for r in res], [200] * 4, f"{what}: the next request")
    check(took < 2.5, f"{what}: the next request took {took:.2f}s; "
          "the pool was not freed")
    h.wait_for(lambda: canceled(d) >= before + n, 3,
               f"{what}: canceled counter to rise by {n} from {before}")
    healthy(d)


def test_disconnect_aborts_running_fetches():
    with upstream_at() as u, \
            h.run_daemon({"workers": {"threads": 4,
                                      "max_per_request": 4}}) as d:
        before = canceled(d)
        s = open_fanout(d, [u.url(f"/hang?{i}") for i in range(4)])
        h.wait_for(lambda: u.hits("/hang") == 4, 5,
                   "the 4 /hang fetches to reach the upstream")
        time.sleep(0.3)
        s.close()
        check_pool_freed(d, u, before, 4, "running fetches")


def test_disconnect_drops_queued_fetches():
    """1 worker: one /hang running, three queued behind it."""
    with upstream_at() as u, \
            h.run_daemon({"workers": {"threads": 1}}) as d:
        before = canceled(d)
        s = open_fanout(d, [u.url(f"/hang?{i}") for i in range(4)])
        h.wait_for(lambda: u.hits("/hang") == 1, 5,
                   "the first /hang fetch to reach the upstream")
        s.close()
        urls = [u.url("/delay/50")]
        start = time.monotonic()
        res = results_of(d.fetch_ok(urls, timeout=10), urls)
        took = time.monotonic() - start
        eq(res[0]["status"], 200, "the next request")
        check(took < 2.5, f"the next request took {took:.2f}s")
        eq(u.hits("/hang"), 1, "queued fetches of a gone client were run")
        h.wait_for(lambda: canceled(d) >= before + 4, 3,
                   "canceled counter to rise by 4")


def test_disconnect_while_streaming():
    with upstream_at() as u, \
            h.run_daemon({"workers": {"threads": 4,
                                      "max_per_request": 4}}) as d:
        before = canceled(d)
        s = open_fanout(d, [u.url(f"/hang?{i}") for i in range(4)],
                        path="/fetch?stream=1")
        h.wait_for(lambda: u.hits("/hang") == 4, 5,
                   "the 4 /hang fetches to reach the upstream")
        s.close()
        check_pool_freed(d, u, before, 4, "streaming")


# Overload.

# One client cannot hold the whole pool (issue 9, item 4).

def starve(d, u, hanging, small_requests=3):
    """Client A's fan-out of `hanging` /hang URLs holds every worker it
    may; meanwhile client B's one-URL requests must be answered at once.
    Returns B's slowest answer in seconds."""
    s = open_fanout(d, [u.url(f"/hang?{i}") for i in range(hanging)])
    try:
        h.wait_for(lambda: u.hits("/hang") >= 4, 10,
                   "client A's hanging fetches to start")
        time.sleep(0.2)  # let A take every worker it is allowed
        worst = 0.0
        for i in range(small_requests):
            url = u.url(f"/status/200?b{i}")
            start = time.monotonic()
            res = results_of(d.fetch_ok([url], timeout=20), [url])[0]
            worst = max(worst, time.monotonic() - start)
            eq(res["status"], 200, "client B's fetch")
        return worst
    finally:
        s.close()


def test_one_request_cannot_hold_every_worker():
    """32 hanging URLs on 8 threads made another client wait 7.7 s."""
    with upstream_at() as u, \
            h.run_daemon({"workers": {"threads": 8}}) as d:
        worst = starve(d, u, 32)
        check(worst < 1.0, f"client B waited {worst:.2f}s behind client A")
        eq(u.hits("/hang") <= 7, True,
           f"client A ran {u.hits('/hang')} of 8 workers at once")


test_one_request_cannot_hold_every_worker.timeout = 40


def test_one_request_cannot_hold_every_worker_defaults():
    """With the default config (256 threads), 400 hanging URLs."""
    with upstream_at() as u, h.run_daemon() as d:
        worst = starve(d, u, 400)
        check(worst < 1.0, f"client B waited {worst:.2f}s behind client A")
        check(u.hits("/hang") < 256,
              f"client A held {u.hits('/hang')} workers at once")


test_one_request_cannot_hold_every_worker_defaults.timeout = 60


def test_request_concurrency_field():
    """"concurrency" lowers one request's share: 6 fetches of 200 ms at
    concurrency 2 take three rounds; a value that is not an integer
    >= 1 is a 400."""
    with upstream_at() as u, \
            h.run_daemon({"workers": {"threads": 8}}) as d:
        urls = [u.url(f"/delay/200?{i}") for i in range(6)]
        ans = d.fetch_ok({"urls": urls, "concurrency": 2})
        queued = sorted(r["time_ms"]["queue"] for r in ans["results"])
        check(queued[1] < 150 and queued[2] >= 150 and queued[4] >= 350,
              f"queue times {queued} at concurrency 2")
        for bad in (0, -1, 1.5, "2", None, True):
            r = d.fetch({"urls": urls[:1], "concurrency": bad})
            err = h.error_body(r, 400, "invalid_request")
            check("concurrency" in err["message"], err["message"])


def test_overload_503_then_recovery():
    cfg = {"workers": {"threads": 8, "queue_limit": 4},
           "limits": {"max_urls": 4}}
    with upstream_at() as u, h.run_daemon(cfg) as d:
        slow = [u.url(f"/delay/1500?{i}") for i in range(4)]
        t, box = background(lambda: d.fetch(slow, timeout=10))
        h.wait_for(lambda: u.hits("/delay/1500") == 4, 5,
                   "request A's fetches to reach the upstream")
        r = d.fetch([u.url("/status/201")], timeout=5)
        err = h.error_body(r, 503, "overloaded")
        retry = r.header("Retry-After")
        check(retry is not None and retry.strip().isdigit(),
              f"Retry-After: {retry!r} ({err})")
        check(r.elapsed < 0.5, f"the 503 took {r.elapsed:.2f}s")
        a = joined(t, box, 10, "request A")
        eq(a.status, 200, f"request A ({a.text[:200]})")
        eq([x["status"] for x in results_of(a.json(), slow)], [200] * 4,
           "request A's results")
        eq(u.hits("/status/201"), 0, "the refused request was fetched")
        urls = [u.url("/status/202")]
        res = results_of(d.fetch_ok(urls), urls)
        eq(res[0]["status"], 202, "request C after recovery")


# One client's bad request never costs another's answer.

def garbage_senders(d, u):
    """Callables, each one hostile client doing its thing once."""
    hang = json.dumps([u.url("/hang?bad"), u.url("/hang?bad2")]).encode()

    def raw(data, read=True):
        with connect(d, timeout=3) as s:
            if send_quietly(s, data) and read:
                try:
                    read_answer(s, 3)
                except AssertionError:
                    pass

    return [
        lambda: raw(post_head(9) + b'["http://'),          # malformed JSON
        lambda: raw(os.urandom(4096), read=False),          # binary junk
        lambda: raw(b"GET / HTTP/1.1\r\nX: " + b"a" * 80_000 + b"\r\n\r\n"),
        lambda: raw(post_head(1000) + b'["ht', read=False),  # half, then gone
        lambda: raw(post_head(len(hang)) + hang, read=False),  # then leaves
        lambda: raw(post_head(200_001) + b"[" * 100_000 + b"]" * 100_001),
        lambda: raw(post_head(4) + b'["\xff"]'),
        lambda: raw(post_head(5, extra="Transfer-Encoding: chunked\r\n")
                    + b"zz\r\n"),
        lambda: raw(b"FROB /fetch HTTP/1.1\r\n\r\n"),
        lambda: raw(b"GET /\r\n\r\n"),
        lambda: raw(b"\r\n" * 1000, read=False),
    ]


def good_request(d, u, i):
    urls = [u.url(f"/delay/{50 + i}?good={i}"),
            u.url(f"/status/{200 + i % 5}"), u.url(f"/bytes/{1000 + i}")]
    r = d.fetch({"urls": urls, "headers": {"X-Good": str(i)}}, timeout=10)
    eq(r.status, 200, f"good request {i} ({r.text[:200]})")
    res = results_of(r.json(), urls)
    eq([x["status"] for x in res], [200, 200 + i % 5, 200],
       f"good request {i} statuses")
    eq(res[2]["bytes"], 1000 + i, f"good request {i} bytes")
    eq(r.json()["summary"]["ok"], 3, f"good request {i} summary.ok")
    return True


def test_bad_clients_do_not_cost_good_answers():
    with upstream_at() as u:
        d = h.daemon()
        stop = threading.Event()
        errors, done = [], []
        senders = garbage_senders(d, u)

        def hostile(k):
            n = k
            while not stop.is_set():
                try:
                    senders[n % len(senders)]()
                except OSError:
                    pass
                except Exception as e:  # noqa: B902
                    errors.append(repr(e))
                done.append(n % len(senders))
                n += 1

        bad = [threading.Thread(target=hostile, args=(k,), daemon=True)
               for k in range(8)]
        for t in bad:
            t.start()
        try:
            time.sleep(0.2)
            good = [background(lambda i=i: good_request(d, u, i))
                    for i in range(20)]
            for i, (t, box) in enumerate(good):
                joined(t, box, 15, f"good request {i}")
        finally:
            stop.set()
            for t in bad:
                t.join(5)
        check(not errors, f"hostile clients' own errors: {errors[:3]}")
        check(len(set(done)) == len(senders),
              f"only {len(done)} hostile requests made: the test is weak")
        healthy(d)

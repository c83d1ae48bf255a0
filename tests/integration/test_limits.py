"""Config keys that take effect, and the pool's bounds: each test runs its
own daemon with the config it needs."""

import json
import threading
import time

import harness as h
from harness import check, eq
from test_api import code_of, results_of
from test_hostile import canceled, connect, post_head


def test_max_response_bytes():
    u = h.upstream()
    with h.run_daemon({"limits": {"max_response_bytes": 10000}}) as d:
        urls = [u.url("/bytes/10000"), u.url("/bytes/10001"),
                u.url("/bytes/50000000")]
        start = time.monotonic()
        res = results_of(d.fetch_ok(urls), urls)
        wall = time.monotonic() - start
        eq(res[0]["error"], None, "a body of exactly the limit")
        eq(res[0]["bytes"], 10000, "bytes")
        eq(code_of(res[1]), "too_large", "one byte over the limit")
        eq(code_of(res[2]), "too_large", "50 MB over a 10 kB limit")
        eq(res[2]["ok"], False, "ok")
        check(res[2]["bytes"] <= 10000 + 65536,
              f"bytes {res[2]['bytes']} read past the limit")
        check(wall < 5, f"took {wall:.2f}s: the transfer was not aborted")


def test_max_redirects_config():
    u = h.upstream()
    with h.run_daemon({"fetch": {"max_redirects": 2}}) as d:
        urls = [u.url("/redirects/2"), u.url("/redirects/3")]
        res = results_of(d.fetch_ok(urls), urls)
        eq(res[0]["status"], 200, "2 redirects with max_redirects 2")
        eq(res[0]["redirects"], 2, "redirects")
        eq(code_of(res[1]), "redirect_limit", "3 redirects")


def test_follow_redirects_config():
    u = h.upstream()
    with h.run_daemon({"fetch": {"follow_redirects": False}}) as d:
        url = u.url("/redirects/1")
        r = results_of(d.fetch_ok([url]), [url])[0]
        eq(r["status"], 302, "config follow_redirects false")
        r = results_of(d.fetch_ok({"urls": [url], "follow_redirects": True}),
                       [url])[0]
        eq(r["status"], 200, "request follow_redirects true over config")
        eq(r["redirects"], 1, "redirects")


def test_timeout_config():
    u = h.upstream()
    with h.run_daemon({"fetch": {"timeout_ms": 300}}) as d:
        start = time.monotonic()
        r = results_of(d.fetch_ok([u.url("/hang")]), [u.url("/hang")])[0]
        eq(code_of(r), "timeout", "error code")
        check(time.monotonic() - start < 3, "config timeout_ms not applied")


def test_user_agent_config():
    u = h.upstream()
    u.reset_hits()
    with h.run_daemon({"fetch": {"user_agent": "probe/1.0"}}) as d:
        d.fetch_ok([u.url("/headers")])
        last = u.last("/headers")
        ua = {k.lower(): v for k, v in last["headers"].items()}.get("user-agent")
        eq(ua, "probe/1.0", "User-Agent seen upstream")


def test_threads_bound_concurrency():
    # 2 workers, 4 fetches of 300 ms: two of them wait in the queue
    # (max_per_request lets one request use both workers)
    u = h.upstream()
    with h.run_daemon({"workers": {"threads": 2, "queue_limit": 100,
                                   "max_per_request": 2},
                       "limits": {"max_urls": 100}}) as d:
        urls = [u.url(f"/delay/300?n={i}") for i in range(4)]
        ans = d.fetch_ok(urls)
        res = results_of(ans, urls)
        eq([r["status"] for r in res], [200] * 4, "statuses")
        queued = sorted(r["time_ms"]["queue"] for r in res)
        check(queued[1] < 150, f"queue times {queued}: two should start at once")
        check(queued[2] >= 250, f"queue times {queued}: two should wait ~300 ms")
        check(ans["summary"]["elapsed_ms"] >= 590,
              f"elapsed_ms {ans['summary']['elapsed_ms']} with 2 threads")


QUEUE = {"workers": {"threads": 4, "queue_limit": 4, "max_per_request": 4},
         "limits": {"max_urls": 4}}


def background_fetch(d, urls):
    """POST urls in a thread; returns (thread, box with the response)."""
    box = {}

    def run():
        try:
            box["r"] = d.fetch(urls, timeout=20)
        except Exception as e:
            box["e"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def finished(t, box):
    t.join(20)
    check(not t.is_alive(), "the first request did not finish")
    if "e" in box:
        raise AssertionError(f"first request: {box['e']}")
    return box["r"]


def test_queue_overflow_503():
    u = h.upstream()
    u.reset_hits()
    with h.run_daemon(QUEUE) as d:
        slow = [u.url(f"/delay/1000?n={i}") for i in range(4)]
        t, box = background_fetch(d, slow)
        h.wait_for(lambda: u.hits("/delay/1000") == 4, 5,
                   "the 4 slow fetches to reach the upstream")
        r = d.fetch([u.url("/status/201")])
        err = h.error_body(r, 503, "overloaded")
        check(r.header("Retry-After"), f"no Retry-After: {dict(r.headers)}")
        check(r.elapsed < 0.5, f"the 503 took {r.elapsed:.2f}s")
        check(err["message"], "message")
        first = finished(t, box)
        eq(first.status, 200, f"the admitted request ({first.text[:200]})")
        eq([x["status"] for x in first.json()["results"]], [200] * 4,
           "statuses of the admitted request")
        eq(u.hits("/status/201"), 0, "the refused request was fetched")
        r = d.fetch([u.url("/status/202")])
        eq(r.status, 200, f"after the pool drained ({r.text[:200]})")


def test_queue_admits_whole_or_nothing():
    u = h.upstream()
    u.reset_hits()
    with h.run_daemon(QUEUE) as d:
        slow = [u.url(f"/delay/1000?n={i}") for i in range(3)]
        t, box = background_fetch(d, slow)
        h.wait_for(lambda: u.hits("/delay/1000") == 3, 5,
                   "the 3 slow fetches to reach the upstream")
        r = d.fetch([u.url("/status/203"), u.url("/status/204")])
        h.error_body(r, 503, "overloaded")
        check(r.header("Retry-After"), "no Retry-After")
        eq(u.hits("/status/20"), 0, "part of a refused request was fetched")
        r = d.fetch([u.url("/status/205")])
        eq(r.status, 200, f"one fetch fits the room left ({r.text[:200]})")
        eq(finished(t, box).status, 200, "the first request")


def test_reloads_with_fewer_threads_never_strand_fetches():
    """Issue 9, item 5: lowering workers.threads on reload while fetches
    are queued once left no worker at all (1 reload in 10), and the
    request hung until another came.  Every one of many fan-outs, each
    interrupted by a reload to fewer threads, must answer in time."""
    u = h.upstream()
    with h.run_daemon({"workers": {"threads": 8, "max_per_request": 8,
                                   "idle_ms": 50},
                       "log": {"level": "info"}}) as d:
        for i in range(40):
            urls = [u.url(f"/delay/{5 + i % 7}?r{i}n{j}") for j in range(24)]
            box = {}
            t = threading.Thread(target=lambda: box.update(
                r=d.fetch_ok({"urls": urls, "timeout_ms": 2000},
                             timeout=10)))
            t.start()
            d.reload({"workers": {"threads": 1 + i % 3,
                                        "max_per_request": 0}})
            t.join(10)
            check(not t.is_alive(), f"round {i}: the fan-out hung")
            res = box["r"]["results"]
            eq(sum(r["status"] == 200 for r in res), 24,
               f"round {i}: fetches answered 200")
            d.reload({"workers": {"threads": 8, "max_per_request": 8,
                                        "idle_ms": 50}})


test_reloads_with_fewer_threads_never_strand_fetches.timeout = 180


def metric_value(d, name):
    """An unlabelled sample's value from /metrics (None when absent)."""
    for line in d.request("GET", "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_max_per_host_caps_one_host_across_requests():
    """fetch.max_per_host = 2: two hanging fetches hold the host, the
    third item and another client's item for the host wait (their wait
    is their queue time), and a second host is not held up."""
    u = h.upstream()
    other = h.Upstream()
    try:
        with h.run_daemon({"workers": {"threads": 8, "max_per_request": 8},
                           "fetch": {"max_per_host": 2}}) as d:
            u.reset_hits()
            first = {"urls": [u.url("/hang?c=1"), u.url("/hang?c=2"),
                              u.url("/status/200?c=3")],
                     "timeout_ms": 4000}
            t, box = background_fetch(d, first)
            h.wait_for(lambda: u.hits("/hang") == 2, 10, "two hangs")
            # another client's fetch of the same host waits too
            t2, box2 = background_fetch(d, [u.url("/status/204?c=4")])
            # a second host is served at once, the first one's cap aside
            eq(d.fetch_ok([other.url("/status/200")])["summary"]["ok"], 1,
               "the other host's fetch")
            time.sleep(0.3)
            eq(u.hits("/hang"), 2, "hangs started, under the cap of 2")
            eq(u.hits("/status"), 0, "fetches past the cap started early")
            eq(metric_value(d, "fanoutd_queue_parked"), 2.0,
               "fetches waiting for the host, in /metrics")
            check(t.is_alive() and t2.is_alive(), "capped requests ended")
            res = results_of(finished(t, box).json(), first["urls"])
            eq([r["error"]["code"] if r["error"] else r["status"]
                for r in res], ["timeout", "timeout", 200], "first request")
            check(res[2]["time_ms"]["queue"] >= 1000,
                  f"the third waited {res[2]['time_ms']['queue']} ms")
            r2 = finished(t2, box2).json()["results"][0]
            eq(r2["status"], 204, "the other client's status")
            check(r2["time_ms"]["queue"] >= 1000,
                  f"the other client waited {r2['time_ms']['queue']} ms")
    finally:
        other.stop()


def test_a_client_gone_stops_waiting_for_a_capped_host():
    """Items parked behind a host's cap end as canceled as soon as their
    client goes away, not when the host frees up."""
    u = h.upstream()
    with h.run_daemon({"workers": {"threads": 8, "max_per_request": 8},
                       "fetch": {"max_per_host": 2}}) as d:
        u.reset_hits()
        hold = {"urls": [u.url("/hang?g=1"), u.url("/hang?g=2")],
                "timeout_ms": 8000}
        t, box = background_fetch(d, hold)
        h.wait_for(lambda: u.hits("/hang") == 2, 10, "two hangs")
        before = canceled(d)
        body = json.dumps([u.url(f"/status/200?g={i}") for i in range(3)])
        s = connect(d)
        s.sendall(post_head(len(body)) + body.encode())
        h.wait_for(lambda: metric_value(d, "fanoutd_queue_parked") == 3,
                   10, "the second fan-out's items parked")
        s.close()
        h.wait_for(lambda: canceled(d) >= before + 3, 3,
                   "the parked items canceled")
        check(t.is_alive(), "the hanging request ended first")
        eq(u.hits("/status"), 0, "parked items were fetched")
        res = results_of(finished(t, box).json(), hold["urls"])
        eq([r["error"]["code"] for r in res], ["timeout"] * 2, "hangs")

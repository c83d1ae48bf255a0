"""GET /probe: blackbox_exporter's metrics for one or many targets.

Every 200 answer is read by a parser that refuses a family twice, a
sample outside its family or an unknown line, and is then validated by
`promtool check metrics` (Debian's prometheus package).  The scrape
config the README shows (conf/prometheus-probe.yml) is checked by
`promtool check config`, and then run by a real Prometheus server
against a real daemon, so that its relabelling is proved, not only its
syntax.
"""

import os
import re
import threading
import urllib.parse

import harness as h
import pki
from harness import check, eq
from test_security import GatedDaemon
from test_service import promtool_check, run_cmd, srcpath, tool

CTYPE = "text/plain; version=0.0.4; charset=utf-8"
# Every family, in the order fanoutd writes them (blackbox's: by name).
FAMILIES = ["probe_dns_lookup_time_seconds", "probe_duration_seconds",
            "probe_failed_due_to_regex", "probe_http_content_length",
            "probe_http_duration_seconds", "probe_http_redirects",
            "probe_http_ssl", "probe_http_status_code", "probe_http_version",
            "probe_ip_protocol", "probe_ssl_earliest_cert_expiry",
            "probe_success"]
PHASES = ["resolve", "connect", "tls", "processing", "transfer"]
MODULES = {"modules": [
    {"name": "only_2xx", "expect": {"status": ["2xx"]}},
    {"name": "body_ok", "expect": {"body_contains": "no such text"}},
    {"name": "fast", "timeout_ms": 300},
]}

HEADER = re.compile(r"# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$")
SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def unescape(value):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n"
                  else m.group(1), value)


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        check(m is not None, f"bad labels {text!r} at {pos}")
        labels[m.group(1)] = unescape(m.group(2))
        pos = m.end()
    return labels


def parse(text):
    """{family: {"help", "type", "samples": [(labels, value)]}}, in
    order; each family once, its samples right after its header."""
    families, current = {}, None
    for line in text.split("\n")[:-1]:
        m = HEADER.match(line)
        if m:
            kind, name, rest = m.groups()
            if kind == "HELP":
                check(name not in families, f"family {name} twice")
                families[name] = {"help": rest, "samples": []}
                current = name
            else:
                eq((name, rest), (current, "gauge"), "TYPE after its HELP")
                families[name]["type"] = rest
            continue
        m = SAMPLE.match(line)
        check(m is not None, f"not a sample line: {line!r}")
        name, labels, value = m.groups()
        eq(name, current, f"sample outside its family: {line!r}")
        families[name]["samples"].append(
            (parse_labels(labels or ""), float(value)))
    check(text.endswith("\n"), "the text does not end with a newline")
    return families


def probe_path(targets, module=None, extra=""):
    q = [("target", t) for t in targets]
    if module is not None:
        q.append(("module", module))
    return "/probe?" + urllib.parse.urlencode(q, quote_via=urllib.parse.quote,
                                              safe="") + extra


def probe(d, targets, module=None, headers=None):
    """GET /probe expecting 200: the parsed families, promtool-checked."""
    r = d.request("GET", probe_path(targets, module), headers=headers)
    eq(r.status, 200, f"GET /probe ({r.text[:300]!r})")
    eq(r.header("Content-Type"), CTYPE, "Content-Type")
    check(r.header("X-Request-Id"), "no X-Request-Id")
    promtool_check(r.body)
    return parse(r.text)


def one(families, name, **labels):
    """The value of the one sample of name with exactly these labels."""
    found = [v for ls, v in families[name]["samples"] if ls == labels]
    eq(len(found), 1, f"samples of {name}{labels}")
    return found[0]


def by_target(families, name):
    """{target: value} of a family without other labels."""
    out = {}
    for labels, value in families[name]["samples"]:
        eq(set(labels), {"target"}, f"labels of {name}")
        check(labels["target"] not in out, f"{name}: a target twice")
        out[labels["target"]] = value
    return out


def check_phases(families, **target):
    total = one(families, "probe_duration_seconds", **target)
    for phase in PHASES:
        v = one(families, "probe_http_duration_seconds", phase=phase,
                **target)
        check(0 <= v <= total + 1e-6,
              f"phase {phase} {v} not within 0..{total} ({target})")


def test_probe_one_target_has_no_target_label():
    u = h.upstream()
    d = h.daemon()
    url = u.url("/redirect?to=" + h.urlquote(u.url("/bytes/100")))
    f = probe(d, [url])
    eq(list(f), [x for x in FAMILIES if x != "probe_ssl_earliest_cert_expiry"],
       "families of a plain http probe")
    for name, fam in f.items():
        for labels, _ in fam["samples"]:
            check("target" not in labels, f"{name} has a target label")
    eq(f["probe_success"]["help"],
       "Displays whether or not the probe was a success", "a HELP text")
    eq(one(f, "probe_success"), 1, "probe_success")
    eq(one(f, "probe_http_status_code"), 200, "status code")
    eq(one(f, "probe_http_redirects"), 1, "redirects")
    eq(one(f, "probe_http_content_length"), 100, "content length")
    eq(one(f, "probe_http_version"), 1.1, "http version")
    eq(one(f, "probe_http_ssl"), 0, "ssl")
    eq(one(f, "probe_ip_protocol"), 4, "ip protocol")
    eq(one(f, "probe_failed_due_to_regex"), 0, "failed due to regex")
    check(one(f, "probe_duration_seconds") > 0, "duration is 0")
    eq([ls["phase"] for ls, _ in f["probe_http_duration_seconds"]["samples"]],
       PHASES, "phases")
    check_phases(f)
    eq(one(f, "probe_dns_lookup_time_seconds"),
       one(f, "probe_http_duration_seconds", phase="resolve"),
       "the dns lookup is the resolve phase")
    # The same fetch through POST /fetch says the same.
    r = d.fetch_ok([url])["results"][0]
    eq((r["status"], r["redirects"], r["bytes"]), (200, 1, 100),
       "POST /fetch of the same URL")


def test_probe_several_targets_label_every_sample():
    u = h.upstream()
    d = h.daemon()
    targets = [u.url("/status/200"), u.url("/bytes/10?a=1&b=2"),
               u.url("/status/503"), u.url("/redirects/3")]
    f = probe(d, targets)
    for name, fam in f.items():
        per = {}
        for labels, _ in fam["samples"]:
            check("target" in labels, f"{name} sample without target")
            per[labels["target"]] = per.get(labels["target"], 0) + 1
        eq(sorted(per), sorted(targets), f"targets of {name}")
        want = len(PHASES) if name == "probe_http_duration_seconds" else 1
        eq(set(per.values()), {want}, f"samples per target of {name}")
    eq(by_target(f, "probe_http_status_code"),
       dict(zip(targets, [200, 200, 503, 200])), "status codes")
    eq(by_target(f, "probe_success"), dict(zip(targets, [1, 1, 0, 1])),
       "probe_success")
    eq(by_target(f, "probe_http_redirects"), dict(zip(targets, [0, 0, 0, 3])),
       "redirects")
    eq(by_target(f, "probe_http_content_length")[targets[1]], 10,
       "the query string reached the upstream: /bytes/10")
    for t in targets:
        check_phases(f, target=t)


def test_probe_target_labels_are_escaped():
    d = h.daemon()
    weird = ['http://127.0.0.1:1/a"b\\c', "http://127.0.0.1:1/x\ny",
             "http://127.0.0.1:1/caf\u00e9"]
    f = probe(d, weird)
    eq(by_target(f, "probe_success"), {t: 0 for t in weird},
       "each target, its label read back unescaped")
    r = d.request("GET", probe_path(weird))
    check('target="http://127.0.0.1:1/a\\"b\\\\c"' in r.text
          and 'target="http://127.0.0.1:1/x\\ny"' in r.text,
          f"the escapes as written: {r.text[:600]!r}")


def test_probe_unreachable_target_is_success_0():
    d = h.daemon()
    closed = f"http://127.0.0.1:{h.free_port()}/"
    f = probe(d, [closed])
    eq(one(f, "probe_success"), 0, "probe_success of a closed port")
    eq(one(f, "probe_http_status_code"), 0, "status code")
    eq(one(f, "probe_http_version"), 0, "http version")
    eq(one(f, "probe_http_content_length"), 0, "content length")
    check_phases(f)
    # A target that is no URL at all is a failed probe too, not a 400.
    for bad in ("not a url", "", "ftp://127.0.0.1/", "http://%zz"):
        f = probe(d, [bad])
        eq(one(f, "probe_success"), 0, f"probe_success of {bad!r}")


def test_probe_module_selects_expectations():
    u = h.upstream()
    d = h.daemon(MODULES)
    moved, ok = u.url("/status/301"), u.url("/status/200")
    f = probe(d, [moved])
    eq(one(f, "probe_success"), 1, "301 without a module: 200-399 is ok")
    f = probe(d, [moved], module="only_2xx")
    eq(one(f, "probe_success"), 0, "301 under expect status 2xx")
    eq(one(f, "probe_http_status_code"), 301, "its status")
    eq(one(f, "probe_failed_due_to_regex"), 0, "a status is not a regex")
    f = probe(d, [ok, moved], module="only_2xx")
    eq(by_target(f, "probe_success"), {ok: 1, moved: 0},
       "the module applies to every target")
    f = probe(d, [ok], module="body_ok")
    eq(one(f, "probe_success"), 0, "a body check that fails")
    eq(one(f, "probe_failed_due_to_regex"), 1, "failed due to the body")
    f = probe(d, [u.url("/delay/2000")], module="fast")
    eq(one(f, "probe_success"), 0, "timeout_ms 300 of the module")
    check(one(f, "probe_duration_seconds") < 1.5,
          "the module's timeout was not applied")


def test_probe_request_errors():
    u = h.upstream()
    d = h.daemon(MODULES)
    target = u.url("/status/200")
    err = h.error_body(d.request("GET", probe_path([target], "nope")), 400,
                       "invalid_request")
    check('"nope"' in err["message"], f"module not named: {err}")
    for path, what in (("/probe", "no query"),
                       ("/probe?module=only_2xx", "no target"),
                       ("/probe?target", "no '='"),
                       (probe_path([target], extra="&tagret=x"),
                        "an unknown parameter"),
                       (probe_path([target], "only_2xx", "&module=fast"),
                        "two modules")):
        err = h.error_body(d.request("GET", path), 400, "invalid_request")
        check(err["message"], what)
    r = d.request("POST", probe_path([target]), "")
    h.error_body(r, 405, "method_not_allowed")
    eq(r.header("Allow"), "GET, HEAD", "Allow")
    u.reset_hits()
    r = d.request("HEAD", probe_path([target]))
    eq((r.status, r.header("Content-Type"), r.body), (200, CTYPE, b""),
       "HEAD /probe")
    eq(u.hits("/status/200"), 1, "HEAD probed the target")


def test_probe_too_many_targets_is_413():
    u = h.upstream()
    d = h.daemon({"limits": {"max_urls": 2}})
    urls = [u.url("/status/200")] * 3
    err = h.error_body(d.request("GET", probe_path(urls)), 413,
                       "too_many_urls")
    eq(err, h.error_body(d.fetch(urls), 413, "too_many_urls"),
       "the same answer as POST /fetch")
    probe(d, urls[:2])


def test_probe_needs_the_token():
    u = h.upstream()
    d = h.daemon({"security": {"auth_token": "s3cret-probe"}})
    path = probe_path([u.url("/status/200")])
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = d.request("GET", path, headers=headers)
        h.error_body(r, 401, "unauthorized")
        eq(r.header("WWW-Authenticate"), "Bearer", "WWW-Authenticate")
    f = probe(d, [u.url("/status/200")],
              headers={"Authorization": "Bearer s3cret-probe"})
    eq(one(f, "probe_success"), 1, "with the token")


def test_probe_client_gate():
    u = h.upstream()
    u.reset_hits()
    with GatedDaemon({"security": {"allow_clients": ["10.0.0.0/8"]}}) as d:
        r = d.request("GET", probe_path([u.url("/status/200")]))
        h.error_body(r, 403, "forbidden")
    eq(u.hits("/status/200"), 0, "a refused client's target was fetched")


def test_probe_pool_full_is_503():
    u = h.upstream()
    u.reset_hits()
    with h.run_daemon({"workers": {"threads": 2, "queue_limit": 2,
                                   "max_per_request": 2},
                       "limits": {"max_urls": 2}}) as d:
        slow = [u.url(f"/delay/1000?n={i}") for i in range(2)]
        box = {}

        def run():
            box["r"] = d.fetch(slow, timeout=20)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        h.wait_for(lambda: u.hits("/delay/1000") == 2, 5,
                   "the slow fetches to reach the upstream")
        r = d.request("GET", probe_path([u.url("/status/200")]))
        h.error_body(r, 503, "overloaded")
        check(r.header("Retry-After"), "no Retry-After")
        t.join(20)
        eq(box["r"].status, 200, "the admitted request")
        eq(u.hits("/status/200"), 0, "the refused probe was fetched")
        probe(d, [u.url("/status/200")])


def test_probe_is_counted_in_metrics():
    u = h.upstream()
    with h.run_daemon() as d:
        def counts():
            """fanoutd_requests_total by code (this GET counts after)."""
            out = {}
            for line in d.request("GET", "/metrics").text.splitlines():
                m = re.match(r'fanoutd_requests_total\{code="(\d+)"\} (\S+)$',
                             line)
                if m:
                    out[m.group(1)] = float(m.group(2))
            return out

        before = counts()
        probe(d, [u.url("/status/200"), u.url("/status/500")])
        d.request("GET", "/probe")
        after = counts()
        eq(after.get("200", 0) - before.get("200", 0), 2,
           "200s counted: the probe and the first GET /metrics")
        eq(after.get("400", 0) - before.get("400", 0), 1, "the 400 counted")


def test_probe_https_certificate_expiry():
    p, ng = pki.get(), pki.nginx()
    d = h.daemon({"tls": {"ca_file": p.ca_file}})
    f = probe(d, [ng.url("valid")])
    eq(one(f, "probe_success"), 1, "probe_success")
    eq(one(f, "probe_http_ssl"), 1, "probe_http_ssl")
    eq(one(f, "probe_ssl_earliest_cert_expiry"),
       p.valid.not_after_dt.timestamp(), "the leaf's notAfter (openssl's)")
    check(one(f, "probe_http_duration_seconds", phase="tls") > 0,
          "no tls phase")
    plain = h.upstream().url("/status/200")
    targets = [ng.url("expiring"), ng.url("h2"), plain]
    f = probe(d, targets)
    eq(by_target(f, "probe_ssl_earliest_cert_expiry"),
       {targets[0]: p.expiring.not_after_dt.timestamp(),
        targets[1]: ng.cert("h2").not_after_dt.timestamp()},
       "an expiry for each https target, none for http")
    eq(by_target(f, "probe_http_version"), dict(zip(targets, [1.1, 2, 1.1])),
       "http versions")
    eq(by_target(f, "probe_http_ssl"), dict(zip(targets, [1, 1, 0])), "ssl")


SCRAPE_CONFIG = "conf/prometheus-probe.yml"


def test_probe_scrape_config_is_valid():
    promtool = tool("promtool", "prometheus")
    rc, out, err = run_cmd([promtool, "check", "config",
                            srcpath(SCRAPE_CONFIG)])
    eq(rc, 0, f"promtool check config: {(out + err)[-800:]}")
    check("SUCCESS" in out + err, f"promtool said: {(out + err)[-400:]}")


def scrape_config_for(d, targets):
    """The README's file, aimed at d and targets, scraped every second."""
    with open(srcpath(SCRAPE_CONFIG)) as f:
        text = f.read()
    for marker in ("scrape_interval: 60s", "127.0.0.1:8080",
                   "- https://www.example.com/"):
        check(marker in text, f"{SCRAPE_CONFIG} lacks {marker!r}")
    text = text.replace("scrape_interval: 60s", "scrape_interval: 1s")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{d.port}")
    lines = [line for line in text.split("\n")
             if not re.match(r"\s+- https?://", line)]
    at = lines.index("      - targets:") + 1
    lines[at:at] = [f"          - {t}" for t in targets]
    path = h.tmpfile("prometheus") + ".yml"
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def prometheus_query(port, query, ready=True):
    """The query's result; None while Prometheus is starting (503),
    unless it must be ready."""
    r = h.http_request("127.0.0.1", port, "GET",
                       "/api/v1/query?query=" + h.urlquote(query), timeout=5)
    if r.status == 503 and not ready:
        return None
    eq(r.status, 200, f"prometheus query {query} ({r.text[:200]})")
    return r.json()["data"]["result"]


def test_probe_scrape_config_scrapes_through_fanoutd():
    """A real Prometheus with the README's relabelling: each target is
    probed through fanoutd and stored with instance=URL."""
    u = h.upstream()
    d = h.daemon()
    good, bad = u.url("/status/200"), u.url("/status/500")
    config = scrape_config_for(d, [good, bad])
    port = h.free_port()
    prom = h.Process([tool("prometheus", "prometheus"),
                      f"--config.file={config}",
                      f"--storage.tsdb.path={os.path.dirname(config)}/tsdb-"
                      f"{port}",
                      f"--web.listen-address=127.0.0.1:{port}",
                      "--log.level=warn"], "prometheus")
    try:
        def scraped():
            if not prom.alive():
                raise AssertionError(
                    f"prometheus {h.describe_exit(prom.proc.returncode)}: "
                    f"{prom.stderr()[-800:]}")
            try:
                res = prometheus_query(port, "probe_success", ready=False)
            except OSError:
                return None
            return res if res is not None and len(res) == 2 else None

        res = h.wait_for(scraped, 30, "two probe_success series")
        got = {x["metric"]["instance"]: (x["metric"]["job"], x["value"][1])
               for x in res}
        eq(got, {good: ("fanoutd_probe", "1"), bad: ("fanoutd_probe", "0")},
           "probe_success by instance")
        res = prometheus_query(port, "probe_http_status_code")
        eq({x["metric"]["instance"]: x["value"][1] for x in res},
           {good: "200", bad: "500"}, "probe_http_status_code by instance")
        check(all("target" not in x["metric"] for x in res),
              "one target per scrape: no target label")
    finally:
        problem = prom.stop()
    eq(problem, None, "prometheus stop")


test_probe_scrape_config_scrapes_through_fanoutd.timeout = 90

"""HTTPS targets as they are (issue 10), against real nginx on loopback
with a CA the run makes (pki.py): trust through tls.ca_file and
tls.ca_path, what each bad certificate is reported as, client
certificates, a SIGHUP that rotates the CA, verify_tls per request and
per item, HTTP versions, warm connections counted in nginx's access log,
the timings of failed handshakes and reused connections, and the config
errors of -t.

The facts a result must show are read back by `openssl x509` (pki.Cert),
never taken from what fanoutd says.  Tests that count nginx's log take a
mark() first: the nginx is shared by the run.
"""

import datetime
import ipaddress
import os
import shutil
import subprocess

import harness as h
import pki
from harness import check, eq

RUN_TIMEOUT = 30
INFO = {"log": {"level": "info"}}


def ca_config(p, **tls):
    """A config trusting the run's root CA, with more tls keys."""
    return {"tls": dict({"ca_file": p.ca_file}, **tls)}


def fetch_one(d, item, **fields):
    """The one result of a one-item fan-out."""
    body = dict({"urls": [item]}, **fields)
    return d.fetch_ok(body)["results"][0]


def san_of(cert):
    """The SAN entries as the API lists them: names and addresses."""
    out = []
    for entry in cert.san:
        kind, _, value = entry.partition(":")
        out.append(str(ipaddress.ip_address(value.strip()))
                   if kind == "IP Address" else value)
    return out


def days_left_now(cert):
    return cert.days_left(datetime.datetime.now(datetime.timezone.utc))


def check_cert(got, cert, what):
    """got (a result's tls.cert) says what openssl says of cert."""
    check(isinstance(got, dict), f"{what}: cert is {got!r}")
    eq(list(got), ["subject", "issuer", "serial", "not_before", "not_after",
                   "days_left", "san"], f"{what}: cert keys")
    eq(got["subject"], cert.subject_rfc2253, f"{what}: subject")
    eq(got["issuer"], cert.issuer_rfc2253, f"{what}: issuer")
    eq(got["serial"], cert.serial, f"{what}: serial")
    eq(got["not_before"], cert.not_before, f"{what}: not_before")
    eq(got["not_after"], cert.not_after, f"{what}: not_after")
    now = days_left_now(cert)
    check(got["days_left"] in (now, now + 1),
          f"{what}: days_left {got['days_left']}, openssl says {now}")
    eq(got["san"], san_of(cert), f"{what}: san")


def check_verified(r, cert, http_version, what):
    """An ok result on a verified TLS connection serving cert."""
    eq((r["status"], r["ok"], r["error"]), (200, True, None),
       f"{what}: outcome")
    keys = list(r)
    eq(keys[keys.index("time_ms") + 1:keys.index("time_ms") + 3],
       ["http_version", "tls"], f"{what}: the new keys after time_ms")
    eq(r["http_version"], http_version, f"{what}: http_version")
    tls = r["tls"]
    eq(list(tls), ["version", "cipher", "verified", "cert"],
       f"{what}: tls keys")
    check(tls["version"] in ("TLSv1.2", "TLSv1.3"),
          f"{what}: version {tls['version']!r}")
    check(isinstance(tls["cipher"], str) and tls["cipher"],
          f"{what}: cipher {tls['cipher']!r}")
    eq(tls["verified"], True, f"{what}: verified")
    check_cert(tls["cert"], cert, what)


def test_tls_ca_file_trusts_a_private_ca():
    p, ng = pki.get(), pki.nginx()
    d = h.daemon(ca_config(p))
    kinds = ["valid", "valid_b", "h2", "expiring"]
    answer = d.fetch_ok([ng.url(k) for k in kinds])
    for kind, r in zip(kinds, answer["results"]):
        check_verified(r, ng.cert(kind), "2" if kind == "h2" else "1.1",
                       kind)
    eq(answer["results"][3]["tls"]["cert"]["days_left"], 5,
       "the expiring leaf: 5 days left, and still ok")
    eq(answer["summary"]["earliest_cert_expiry"], p.expiring.not_after,
       "summary.earliest_cert_expiry: the expiring leaf's not_after")
    if h.ipv6_available():
        r = fetch_one(d, ng.url("valid", host="::1"))
        check_verified(r, p.valid, "1.1", "https://[::1]")


def test_tls_system_bundle_plus_a_private_ca():
    """The bundle's CA certificates are kept as DER and decoded when a
    handshake first asks for their subject: the root, after the
    intermediate nginx sends; the intermediate itself for no_chain once
    it is in the file too; an unrelated root is still refused."""
    p, ng = pki.get(), pki.nginx()
    if p.ca_bundle_system is None:
        raise h.Skip(f"no {pki.SYSTEM_BUNDLE}")
    d = h.daemon({"tls": {"ca_file": p.ca_bundle_system}})
    results = d.fetch_ok([ng.url("valid"), ng.url("h2"), ng.url("no_chain"),
                          ng.url("other_ca"), ng.url("valid_b")])["results"]
    check_verified(results[0], p.valid, "1.1", "valid with the bundle")
    check_verified(results[1], p.valid, "2", "h2 with the bundle")
    eq(results[2]["error"]["reason"], "untrusted", "no_chain with the bundle")
    eq(results[3]["error"]["reason"], "untrusted", "other_ca with the bundle")
    check_verified(results[4], p.valid, "1.1", "valid_b with the bundle")
    both = pki.concat(h.tmpfile("bundle-and-intermediate"),
                      p.ca_bundle_system, p.intermediate.cert)
    d = h.daemon({"tls": {"ca_file": both}})
    check_verified(fetch_one(d, ng.url("no_chain")), p.valid, "1.1",
                   "no_chain with the intermediate in the file")


def test_tls_ca_path_trusts_a_hashed_directory():
    p, ng = pki.get(), pki.nginx()
    d = h.daemon({"tls": {"ca_path": p.ca_dir}})
    check_verified(fetch_one(d, ng.url("valid")), p.valid, "1.1",
                   "valid with ca_path")
    r = fetch_one(d, ng.url("other_ca"))
    eq((r["error"]["code"], r["error"]["reason"]), ("tls", "untrusted"),
       "other_ca with ca_path of the main root")
    d = h.daemon({"tls": {"ca_path": p.ca_dir_other}})
    check_verified(fetch_one(d, ng.url("other_ca")), p.other_ca, "1.1",
                   "other_ca with ca_path of its root")


BAD = (
    ("expired", "expired", "certificate has expired"),
    ("not_yet_valid", "not_yet_valid", "certificate is not yet valid"),
    ("wrong_host", "hostname", "no alternative certificate subject name"),
    ("self_signed", "untrusted", "self-signed certificate"),
    ("other_ca", "untrusted", "unable to get local issuer certificate"),
    ("no_chain", "untrusted", "unable to get local issuer certificate"),
)


def test_tls_bad_certificates_have_a_reason_and_a_cert():
    """Each refused certificate keeps the code tls, says why in
    error.reason, and still shows the leaf: an expired one its
    not_after.  The failed handshake has its connect and tls phases."""
    p, ng = pki.get(), pki.nginx()
    d = h.daemon(ca_config(p))
    answer = d.fetch_ok([ng.url(kind) for kind, _, _ in BAD])
    for (kind, reason, message), r in zip(BAD, answer["results"]):
        what = f"{kind}: "
        eq((r["status"], r["ok"]), (None, False), what + "outcome")
        eq(list(r["error"]), ["code", "message", "reason"],
           what + "error keys")
        eq(r["error"]["code"], "tls", what + "code")
        eq(r["error"]["reason"], reason, what + "reason")
        check(message in r["error"]["message"],
              what + f"message {r['error']['message']!r}")
        eq(r["http_version"], None, what + "http_version")
        tls = r["tls"]
        eq((tls["version"], tls["cipher"], tls["verified"]),
           (None, None, False), what + "tls")
        check_cert(tls["cert"], ng.cert(kind), kind)
        t = r["time_ms"]
        check(t["connect"] > 0 and t["tls"] > 0,
              what + f"connect and tls phases: {t}")
        check(t["ttfb"] == 0 and t["transfer"] == 0, what + f"{t}")
        phases = t["dns"] + t["connect"] + t["tls"]
        check(t["total"] * 0.5 <= phases <= t["total"] + 0.01,
              what + f"the phases add up to the total: {t}")
    expired = answer["results"][0]["tls"]["cert"]
    eq(expired["not_after"], p.expired.not_after, "expired: not_after")
    check(expired["days_left"] < 0, f"expired: days_left {expired}")
    eq(answer["summary"]["error_counts"], {"tls": len(BAD)},
       "error_counts")
    eq(answer["summary"]["earliest_cert_expiry"], p.expired.not_after,
       "earliest_cert_expiry counts refused certificates too")


def test_tls_plain_http_and_http_versions():
    p, ng = pki.get(), pki.nginx()
    d = h.daemon(ca_config(p))
    mark = ng.mark()
    results = d.fetch_ok([ng.url("plain"), ng.url("valid"),
                          ng.url("h2")])["results"]
    eq([r["http_version"] for r in results], ["1.1", "1.1", "2"],
       "http_version of plain, h1-only and h2 ports")
    eq(results[0]["tls"], None, "tls of plain http")
    eq(results[0]["time_ms"]["tls"], 0, "no tls phase for plain http")
    entries = ng.wait_entries(3, since=mark)
    eq(sorted(e.http for e in entries),
       ["HTTP/1.1", "HTTP/1.1", "HTTP/2.0"], "what nginx logged")
    r = d.fetch_ok([ng.url("valid", "/status/418")])["results"][0]
    eq((r["status"], r["http_version"], r["tls"]["verified"]),
       (418, "1.1", True), "a response of any status has its version")


def test_tls_client_certificate():
    """The mTLS port answers 400 to a client without a certificate, and
    200 to one with tls.client_cert (and its key, apart or in one
    file); nginx's log says whom it verified."""
    p, ng = pki.get(), pki.nginx()
    url = ng.url("mtls", "/client")
    mark = ng.mark()
    r = fetch_one(h.daemon(ca_config(p)), url)
    eq((r["status"], r["ok"]), (400, False), "without a client certificate")
    r = fetch_one(h.daemon(ca_config(p, client_cert=p.client.cert,
                                     client_key=p.client.key)), url)
    eq((r["status"], r["ok"]), (200, True), "with client_cert and its key")
    r = fetch_one(h.daemon(ca_config(p, client_cert=p.client.combined)), url)
    eq((r["status"], r["ok"]), (200, True), "with both in one file")
    r = fetch_one(h.daemon(ca_config(p,
                                     client_cert=p.client_other.combined)),
                  url)
    eq((r["status"], r["ok"]), (400, False), "with an untrusted one")
    entries = ng.wait_entries(4, since=mark)
    verdicts = [e.client_verify for e in entries]
    eq(verdicts[:3], ["NONE", "SUCCESS", "SUCCESS"], "$ssl_client_verify")
    check(verdicts[3].startswith("FAILED"), f"untrusted: {verdicts[3]!r}")


def test_tls_sighup_rotates_the_ca_file():
    """New connections use the new trust, and a connection opened under
    the old one is not reused (one worker: it holds a warm connection to
    the valid port when the CA rotates).  A reload that changes nothing
    keeps warm connections; a reload with a bad CA file keeps the
    running config."""
    p, ng = pki.get(), pki.nginx()
    ca = h.tmpfile("rotating-ca")
    shutil.copy(p.ca_file, ca)
    config = h.merge(INFO, {"workers": {"threads": 1},
                            "tls": {"ca_file": ca}})
    with h.run_daemon(config) as d:
        mark = ng.mark()
        check_verified(fetch_one(d, ng.url("valid")), p.valid, "1.1",
                       "before any reload")
        d.reload(settings=config)  # the same bytes: connections are kept
        r = fetch_one(d, ng.url("valid"))
        eq(r["ok"], True, "after a reload that changed nothing")
        eq(r["time_ms"]["connect"], 0, "the warm connection was reused")
        entries = ng.wait_entries(2, since=mark)
        eq(len({e.connection for e in entries}), 1, "nginx saw one "
           "connection across a reload that changed nothing")
        shutil.copy(p.other_root.cert, ca)
        d.reload()
        r = fetch_one(d, ng.url("valid"))
        eq((r["error"] or {}).get("reason"), "untrusted",
           f"the old CA is gone, and its connection too: {r['error']}")
        check_verified(fetch_one(d, ng.url("other_ca")), p.other_ca, "1.1",
                       "the new CA")
        with open(ca, "w"):
            pass  # empty: the reload fails, the running trust stays
        d.reload()
        err = d.process.stderr()
        check("reload failed, keeping the running config" in err and
              f"tls.ca_file: {ca}: is empty" in err,
              f"the failed reload names the file: {err[-600:]}")
        check_verified(fetch_one(d, ng.url("other_ca")), p.other_ca, "1.1",
                       "after a failed reload")


def test_tls_verify_off_is_isolated():
    """verify_tls false for one fetch never leaks into another: on one
    worker, a connection opened without verification is not reused by
    a fetch that verifies (nginx counts two connections)."""
    p, ng = pki.get(), pki.nginx()
    with h.run_daemon(h.merge(ca_config(p),
                              {"workers": {"threads": 1}})) as d:
        mark = ng.mark()
        r = fetch_one(d, ng.url("valid_b"), verify_tls=False)
        eq((r["ok"], r["tls"]["verified"]), (True, False),
           "request-level verify_tls false")
        check_cert(r["tls"]["cert"], p.valid, "unverified, still described")
        r = fetch_one(d, ng.url("valid_b"))
        eq((r["ok"], r["tls"]["verified"]), (True, True),
           "the next fetch verifies")
        check(r["time_ms"]["tls"] > 0, "on a new connection")
        ng.wait_entries(2, since=mark)
        eq(ng.connections("valid_b", since=mark), 2,
           "the unverified connection was not reused")
        results = d.fetch_ok([
            {"url": ng.url("expired"), "verify_tls": False},
            ng.url("expired"),
            {"url": ng.url("expired"), "verify_tls": False}])["results"]
        eq((results[0]["ok"], results[0]["tls"]["verified"]), (True, False),
           "item-level verify_tls false")
        check_cert(results[0]["tls"]["cert"], p.expired, "expired, unverified")
        eq(results[1]["error"]["reason"], "expired", "its verifying sibling")
        eq(results[2]["ok"], True, "and the one after")
        r = d.fetch_ok({"urls": [{"url": ng.url("expired"),
                                  "verify_tls": True}],
                        "verify_tls": False})["results"][0]
        eq(r["error"]["reason"], "expired", "the item wins over the request")


def test_tls_verify_tls_must_be_a_boolean():
    p, ng = pki.get(), pki.nginx()
    d = h.daemon(ca_config(p))
    for bad in ("no", 0, None, [], {}):
        err = h.error_body(d.fetch({"urls": [ng.url("valid")],
                                    "verify_tls": bad}),
                           400, "invalid_request")
        check("verify_tls" in err["message"], f"message: {err}")
    results = d.fetch_ok([{"url": ng.url("valid"), "verify_tls": "false"},
                          ng.url("valid")])["results"]
    eq(results[0]["error"]["code"], "invalid_url", "item-level non-boolean")
    check("verify_tls" in results[0]["error"]["message"],
          f"message: {results[0]['error']}")
    eq(results[0]["tls"], None, "nothing was fetched")
    eq(results[1]["ok"], True, "its sibling")


def test_tls_warm_connections_are_reused():
    """After an 8-URL fan-out, 8 one-URL fan-outs in a row to the same
    host open no new connection; 10 one-URL fan-outs in a row open one.
    Each reused connection has no dns, connect or tls phase."""
    p, ng = pki.get(), pki.nginx()
    with h.run_daemon(h.merge(ca_config(p),
                              {"workers": {"threads": 16}})) as d:
        for kind in ("valid", "h2"):
            mark = ng.mark()
            d.fetch_ok([ng.url(kind, f"/ok?n={i}") for i in range(8)])
            ng.wait_entries(8, since=mark)
            first = ng.connections(kind, since=mark)
            for i in range(8):
                r = fetch_one(d, ng.url(kind, f"/ok?again={i}"))
                eq(r["ok"], True, f"{kind}: one-URL fan-out {i}")
                t = r["time_ms"]
                eq((t["dns"], t["connect"], t["tls"]), (0, 0, 0),
                   f"{kind}: a reused connection has no such phase: {t}")
                check(r["tls"]["verified"] and r["tls"]["cert"],
                      f"{kind}: a reused connection is described: {r}")
            ng.wait_entries(16, since=mark)
            eq(ng.connections(kind, since=mark), first,
               f"{kind}: the 8 one-URL fan-outs opened no connection")
        mark = ng.mark()
        for i in range(10):
            eq(fetch_one(d, ng.url("valid_b", f"/ok?n={i}"))["ok"], True,
               f"valid_b fan-out {i}")
        ng.wait_entries(10, since=mark)
        eq(ng.connections("valid_b", since=mark), 1,
           "10 one-URL fan-outs in a row: one connection")
        # Two hosts in turn: each goes to the worker holding its
        # connection, not to whichever idled last (each worker keeps
        # one connection, so that would open a new one every time).
        mark = ng.mark()
        for i in range(6):
            for kind in ("valid", "valid_b"):
                eq(fetch_one(d, ng.url(kind, f"/ok?turn={i}"))["ok"], True,
                   f"{kind} in turn {i}")
        ng.wait_entries(12, since=mark)
        eq((ng.connections("valid", since=mark),
            ng.connections("valid_b", since=mark)), (1, 1),
           "two hosts in turn reuse a connection each")


def test_tls_startup_logs_the_trust():
    p = pki.get()
    with h.run_daemon(h.merge(INFO, ca_config(p))) as d:
        err = d.process.stderr()
        check(f"tls: trusting 1 CA certificate from {p.ca_file}" in err,
              f"the trust source is logged: {err[-400:]}")
        check("tls.verify is false" not in err, "no warning")
    with h.run_daemon(h.merge(INFO, {"tls": {"verify": False}})) as d:
        err = d.process.stderr()
        check("(libcurl's default)" in err,
              f"libcurl's default bundle is named: {err[-400:]}")
        check("warn: tls.verify is false" in err,
              f"a warning when verification is off: {err[-400:]}")
    with h.run_daemon(h.merge(INFO, {"fetch": {"verify_tls": False},
                                     "tls": {"ca_file": p.ca_file}})) as d:
        ng = pki.nginx()
        r = fetch_one(d, ng.url("expired"))
        eq((r["ok"], r["tls"]["verified"]), (True, False),
           "fetch.verify_tls = false still works, as tls.verify")
        check("tls.verify is false" in d.process.stderr(), "warned")


def run_t(text):
    """fanoutd -t on a config text: (exit status, output, config path)."""
    path = h.tmpfile("tls-conf")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([h.env("FANOUTD_BIN"), "-t", "-c", path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT)
    return r.returncode, r.stdout.decode(errors="replace"), path


def config_errors():
    p = pki.get()
    missing = os.path.join(p.dir, "missing.pem")
    return [
        (f'tls = {{\n  ca_file = "{missing}";\n}};',
         f":2: tls.ca_file: {missing}: No such file or directory"),
        (f'tls = {{ ca_file = "{p.empty_file}"; }};',
         f":1: tls.ca_file: {p.empty_file}: is empty"),
        (f'tls = {{ ca_file = "{p.not_pem_file}"; }};',
         f":1: tls.ca_file: {p.not_pem_file}: holds no PEM certificate"),
        (f'tls = {{ ca_file = "{p.ca_der_file}"; }};',
         f":1: tls.ca_file: {p.ca_der_file}: is not PEM (DER?"),
        (f'tls = {{ ca_path = "{p.dir}"; }};',
         f":1: tls.ca_path: {p.dir}: holds no hashed certificate file"),
        (f'tls = {{\n\n  client_key = "{p.client.key}"; }};',
         ":3: tls.client_key: is set without tls.client_cert"),
        (f'tls = {{ client_cert = "{p.client.cert}";\n'
         f'  client_key = "{p.client_bad_key}"; }};',
         f":2: tls.client_key: {p.client_bad_key}: the private key does "
         f"not match the certificate in {p.client.cert}"),
        (f'tls = {{ client_cert = "{p.client.cert}"; }};',
         f":1: tls.client_cert: {p.client.cert}: holds no PEM private key"),
        (f'tls = {{ client_cert = "{p.client.key}";\n'
         f'  client_key = "{p.client.key}"; }};',
         f":1: tls.client_cert: {p.client.key}: holds no PEM certificate"),
        ('fetch = { verify_tls = true; };\ntls = { verify = false; };',
         ":1: fetch.verify_tls: is the old name of tls.verify, which is "
         "set otherwise (line 2)"),
        ('tls = { verify = "no"; };',
         ":1: tls.verify: expected a boolean, got a string"),
    ]


def test_tls_config_errors_name_file_and_line():
    """-t, and start-up, refuse each bad tls file with FILE:LINE, the
    key, the file and what is wrong with it; nothing crashes."""
    for text, suffix in config_errors():
        rc, out, path = run_t(text)
        eq(rc, 1, f"-t exit status for {text!r} ({out})")
        check(f"{path}{suffix}" in out, f"want {path}{suffix!r} in {out!r}")
        for mark in h.SANITIZER_MARKS:
            check(mark not in out, f"sanitizer report: {out[:800]}")
    text, suffix = config_errors()[1]
    rc, out, path = run_t(text)
    r = subprocess.run([h.env("FANOUTD_BIN"), "-c", path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT)
    eq(r.returncode, 1, "start-up exit status with an empty CA file")
    check(f"{path}{suffix}" in r.stdout.decode(),
          f"start-up names it too: {r.stdout!r}")


def test_tls_config_ok():
    p = pki.get()
    text = (f'tls = {{ ca_file = "{p.ca_file}"; ca_path = "{p.ca_dir}";\n'
            f'  client_cert = "{p.client.cert}"; '
            f'client_key = "{p.client.key}"; verify = true; }};\n')
    rc, out, path = run_t(text)
    eq((rc, out.strip()), (0, f"{path}: configuration OK"), "-t with every "
       "tls key")
    rc, out, path = run_t(f'tls = {{ client_cert = "{p.client.combined}"; '
                          '};\n')
    eq(rc, 0, f"-t with a combined client file ({out})")


_NO_CERTS_SH = 'mount --bind "$1" /etc/ssl/certs && shift && exec "$@"'


def test_tls_without_a_system_bundle_http_still_works():
    """A host without ca-certificates: with no tls key set, the daemon
    starts, warns that it trusts no CA, serves http, and fails every https
    target's verification as untrusted (it never trusts by accident)."""
    reason = h.resolver_skip_reason()  # the same need: unshare -m, a bind
    if reason:
        raise h.Skip(reason)
    empty = os.path.join(h.tmpdir(), "no-certs")
    os.makedirs(empty, exist_ok=True)
    u, ng = h.upstream(), pki.nginx()
    d = h.Daemon(INFO, wrap=lambda argv: ["unshare", "-m", "sh", "-c",
                                          _NO_CERTS_SH, "sh", empty, *argv])
    h._private.add(d)
    with d:
        err = d.process.stderr()
        check("warn: tls: no CA certificates: libcurl's default "
              "/etc/ssl/certs/ca-certificates.crt is missing" in err,
              f"the warning: {err[-400:]}")
        eq(fetch_one(d, u.url("/status/200?nocerts"))["status"], 200,
           "http without a bundle")
        r = fetch_one(d, ng.url("valid"))
        eq((r["ok"], r["error"]["code"], r["error"].get("reason")),
           (False, "tls", "untrusted"), "https without a bundle")

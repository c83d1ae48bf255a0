"""The HTTPS fixtures (pki.py) proved against the curl command line, not
fanoutd: each certificate is what its name says, each nginx port serves
what it should, and the access log counts connections and resumptions.
A fanoutd TLS test that fails while these pass points at fanoutd.

Loopback only; one shared nginx (pki.nginx()), so each test that counts
log entries takes a mark() first.
"""

import datetime
import socket
import ssl
import subprocess

import harness as h
import pki
from harness import check, eq

CURL_TIMEOUT = 10.0


def curl(*args):
    """curl -q (no ~/.curlrc), no proxy, bounded: (exit, stdout, stderr)."""
    argv = ["curl", "-q", "-sS", "--noproxy", "*", "--max-time", "5"]
    r = subprocess.run(argv + list(args), capture_output=True, text=True,
                       timeout=CURL_TIMEOUT)
    return r.returncode, r.stdout, r.stderr.strip()


def curl_ok(*args):
    rc, out, err = curl(*args)
    eq(rc, 0, f"curl {' '.join(args)} exit ({err})")
    return out


def test_pki_facts():
    p = pki.get()
    now = datetime.datetime.now(datetime.timezone.utc)
    for name, serial in pki.SERIALS.items():
        cert = getattr(p, name)
        eq(cert.serial, serial, f"{name} serial")
        check(cert.not_before.endswith("Z") and "T" in cert.not_before,
              f"{name} not_before is RFC 3339: {cert.not_before!r}")
    eq(p.valid.issuer, p.intermediate.subject, "valid leaf's issuer")
    eq(p.valid.subject, "O = fanoutd tests, OU = valid, CN = localhost",
       "valid leaf's subject")
    eq(p.valid.subject_rfc2253, "CN=localhost,OU=valid,O=fanoutd tests",
       "valid leaf's subject, RFC 2253")
    eq(p.valid.san_dns, ["localhost"], "valid SAN names")
    eq(p.valid.san_ip, ["127.0.0.1", "::1"], "valid SAN addresses")
    eq(p.intermediate.issuer, p.root.subject, "intermediate's issuer")
    eq(p.self_signed.issuer, p.self_signed.subject, "self-signed issuer")
    eq(p.other_ca.issuer, p.other_root.subject, "other CA leaf's issuer")
    eq(p.client.issuer, p.client_root.subject, "client's issuer")
    eq(p.wrong_host.san, ["DNS:wrong.example"], "wrong_host SAN")
    check(p.expired.not_after_dt < now, f"expired: {p.expired.not_after}")
    check(p.not_yet_valid.not_before_dt > now,
          f"not yet valid: {p.not_yet_valid.not_before}")
    eq(p.expiring.days_left(), 5, "days left of the expiring leaf")
    eq(p.valid.days_left(), 364, "days left of the valid leaf")
    # openssl verifies the chain nginx serves with the root alone.
    out = subprocess.run(
        ["openssl", "verify", "-CAfile", p.ca_file, "-untrusted",
         p.valid.chain, p.valid.cert], capture_output=True, text=True,
        timeout=CURL_TIMEOUT)
    eq(out.returncode, 0, f"openssl verify: {out.stdout} {out.stderr}")


def test_pki_valid_ports():
    p, ng = pki.get(), pki.nginx()
    eq(curl_ok("--cacert", p.ca_file, ng.url("valid", "/ok")), "ok\n",
       "/ok with the root as CA file")
    eq(curl_ok("--cacert", p.ca_file, ng.url("valid_b", "/body")),
       pki.BODY, "/body on the second port")
    eq(curl_ok("--cacert", p.ca_file, ng.url("expiring")), "ok\n",
       "5 days left is still valid")
    eq(curl_ok("--cacert", p.ca_file,
               ng.url("valid", host="localhost")), "ok\n", "by name")
    eq(curl_ok("--capath", p.ca_dir,
               ng.url("valid")), "ok\n", "hashed CA directory")
    eq(curl_ok("--cacert", p.ca_both, ng.url("valid")), "ok\n",
       "root + other root")
    code = curl_ok("--cacert", p.ca_file, "-o", "/dev/null", "-w",
                   "%{http_code}", ng.url("valid", "/status/418"))
    eq(code, "418", "/status/418")
    code = curl_ok("--cacert", p.ca_file, "-o", "/dev/null", "-w",
                   "%{http_code} %{redirect_url}",
                   ng.url("valid", "/status/301"))
    eq(code, f"301 {ng.url('valid', '/ok')}", "/status/301")
    if p.ca_bundle_system is None:
        raise h.Skip(f"no {pki.SYSTEM_BUNDLE}")
    eq(curl_ok("--cacert", p.ca_bundle_system, ng.url("valid")), "ok\n",
       "system bundle + root")


BAD_PORTS = (
    ("expired", "SSL certificate problem: certificate has expired"),
    ("not_yet_valid", "SSL certificate problem: certificate is not yet valid"),
    ("wrong_host", "SSL: no alternative certificate subject name matches "
                   "target host name '127.0.0.1'"),
    ("self_signed", "SSL certificate problem: self-signed certificate"),
    ("other_ca", "SSL certificate problem: unable to get local issuer "
                 "certificate"),
    ("no_chain", "SSL certificate problem: unable to get local issuer "
                 "certificate"),
)


def test_pki_bad_ports():
    p, ng = pki.get(), pki.nginx()
    eq(ng.cert("expired"), p.expired, "the Cert of the expired port")
    eq(ng.cert("h2"), p.valid, "the Cert of the h2 port")
    for kind, message in BAD_PORTS:
        rc, out, err = curl("--cacert", p.ca_file, ng.url(kind))
        eq(rc, 60, f"curl exit on {kind} ({err})")
        check(message in err, f"{kind}: expected {message!r} in {err!r}")
        eq(out, "", f"{kind}: no body")
    # Each bad certificate is bad for its one reason only.
    port = ng.port("wrong_host")
    eq(curl_ok("--cacert", p.ca_file, "--resolve",
               f"wrong.example:{port}:127.0.0.1",
               f"https://wrong.example:{port}/ok"), "ok\n",
       "wrong_host by the name it has")
    eq(curl_ok("--cacert", p.self_signed.cert, ng.url("self_signed")),
       "ok\n", "self-signed, trusted as itself")
    eq(curl_ok("--capath", p.ca_dir_other,
               ng.url("other_ca")), "ok\n", "other_ca with its own root")
    eq(curl_ok("--cacert", p.ca_both, ng.url("other_ca")), "ok\n",
       "other_ca with both roots")
    eq(curl_ok("--cacert", concat_chain(p), ng.url("no_chain")), "ok\n",
       "no_chain with the intermediate trusted too")
    for kind in ("expired", "not_yet_valid"):
        eq(curl_ok("-k", ng.url(kind)), "ok\n", f"{kind} unverified")


def concat_chain(p):
    path = p.path("root-and-intermediate.pem")
    return pki.concat(path, p.root.cert, p.intermediate.cert)


def test_pki_bad_trust_files():
    p, ng = pki.get(), pki.nginx()
    for path in (p.empty_file, p.not_pem_file, p.ca_der_file):
        rc, _, err = curl("--cacert", path, ng.url("valid"))
        eq(rc, 77, f"curl exit with --cacert {path} ({err})")
        check("error setting certificate" in err, f"curl said {err!r}")


def test_pki_mtls():
    p, ng = pki.get(), pki.nginx()
    mark = ng.mark()
    url = ng.url("mtls", "/client")
    out = curl_ok("--cacert", p.ca_file, "--cert", p.client.cert,
                  "--key", p.client.key, url)
    eq(out.strip(), p.client.subject_rfc2253, "client DN nginx saw")
    out = curl_ok("--cacert", p.ca_file, "--cert", p.client.combined, url)
    eq(out.strip(), p.client.subject_rfc2253, "combined cert + key")
    for what, args in (("no client certificate", ()),
                       ("an untrusted client", ("--cert",
                                                p.client_other.combined))):
        out = curl_ok("--cacert", p.ca_file, "-o", "/dev/null", "-w",
                      "%{http_code}", *args, url)
        eq(out, "400", f"mtls port with {what}")
    rc, _, err = curl("--cacert", p.ca_file, "--cert", p.client.cert,
                      "--key", p.client_bad_key, url)
    eq(rc, 58, f"curl exit with a key not matching the cert ({err})")
    ng.wait_entries(4, since=mark)
    verdicts = [e.client_verify for e in ng.log_entries(since=mark)]
    eq(len(verdicts), 4, "requests logged (the bad key sends none)")
    eq(verdicts[:3], ["SUCCESS", "SUCCESS", "NONE"], "$ssl_client_verify")
    check(verdicts[3].startswith("FAILED"), f"untrusted: {verdicts[3]!r}")


def test_pki_http_versions():
    p, ng = pki.get(), pki.nginx()
    mark = ng.mark()
    fmt = ("-o", "/dev/null", "-w", "%{http_version}")
    eq(curl_ok("--cacert", p.ca_file, "--http2", *fmt, ng.url("h2")), "2",
       "h2 port with --http2")
    eq(curl_ok("--cacert", p.ca_file, "--http2", *fmt, ng.url("valid")),
       "1.1", "HTTP/1.1-only port with --http2")
    eq(curl_ok("--cacert", p.ca_file, "--http1.1", *fmt, ng.url("h2")),
       "1.1", "h2 port with --http1.1")
    eq(curl_ok(*fmt, ng.url("plain")), "1.1", "plain port")
    entries = ng.wait_entries(4, since=mark)
    eq([(e.port, e.http) for e in entries],
       [(ng.port("h2"), "HTTP/2.0"), (ng.port("valid"), "HTTP/1.1"),
        (ng.port("h2"), "HTTP/1.1"), (ng.port("plain"), "HTTP/1.1")],
       "ports and protocols logged")
    eq(entries[3].tls, None, "no TLS on the plain port")
    check(entries[0].tls in ("TLSv1.3", "TLSv1.2"), f"TLS: {entries[0]}")


def test_pki_connection_reuse():
    p, ng = pki.get(), pki.nginx()
    for kind in ("valid", "h2"):
        mark = ng.mark()
        out = curl_ok("--cacert", p.ca_file, "-w", "%{num_connects}\n",
                      ng.url(kind, "/ok"), ng.url(kind, "/body"))
        eq(out, "ok\n1\n" + pki.BODY + "0\n", f"{kind}: curl's connects")
        entries = ng.wait_entries(2, since=mark)
        eq([(e.uri, e.requests) for e in entries],
           [("/ok", 1), ("/body", 2)], f"{kind}: one connection's requests")
        eq(ng.connections(kind, since=mark), 1, f"{kind}: connections")
        eq(ng.connections(since=mark), 1, f"{kind}: on all ports")
    mark = ng.mark()
    for _ in range(2):
        curl_ok("--cacert", p.ca_file, ng.url("valid_b"))
    ng.wait_entries(2, since=mark)
    eq(ng.connections("valid_b", since=mark), 2, "two curl runs")
    eq(ng.resumed("valid_b", since=mark), 0, "curl runs share no session")
    ng.reset()
    eq(ng.log_entries(), [], "nothing after reset()")


def tls_get(ctx, port, session=None):
    """GET /ok on a new TLS connection; (session, reused)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost",
                             session=session) as s:
            s.sendall(b"GET /ok HTTP/1.1\r\nHost: localhost\r\n"
                      b"Connection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            check(data.startswith(b"HTTP/1.1 200"), f"answer {data[:80]!r}")
            return s.session, s.session_reused


def test_pki_resumption_logged():
    p, ng = pki.get(), pki.nginx()
    ctx = ssl.create_default_context(cafile=p.ca_file)
    mark = ng.mark()
    session, reused = tls_get(ctx, ng.port("valid"))
    eq(reused, False, "first connection resumed")
    _, reused = tls_get(ctx, ng.port("valid"), session)
    eq(reused, True, "second connection resumed (client side)")
    ng.wait_entries(2, since=mark)
    eq(ng.connections("valid", since=mark), 2, "connections")
    eq(ng.resumed("valid", since=mark), 1, "resumptions nginx logged")


def test_pki_slow_and_ipv6():
    p, ng = pki.get(), pki.nginx()
    rc, _, err = curl("--cacert", p.ca_file, "--max-time", "0.5",
                      ng.url("valid", "/slow"))
    eq(rc, 28, f"/slow within 0.5s ({err})")
    if not h.ipv6_available():
        raise h.Skip("::1 is not available here")
    eq(curl_ok("--cacert", p.ca_file, ng.url("valid", host="::1")), "ok\n",
       "https://[::1]")


def test_pki_nginx_start_failure():
    p = pki.get()

    class Broken:  # a PKI whose expired leaf is not a certificate
        def __getattr__(self, name):
            return getattr(p, name)

    broken = Broken()
    bad = type("Leaf", (), {"cert": p.not_pem_file,
                            "fullchain": p.not_pem_file, "key": p.valid.key})
    broken.leaves = dict(p.leaves, expired=bad)
    try:
        ng = pki.Nginx(broken, attempts=1)
    except AssertionError as e:
        check("not-pem.pem" in str(e) and "emerg" in str(e),
              f"the error log is in the message: {str(e)[-300:]}")
    else:
        ng.stop()
        raise AssertionError("nginx started with a non-PEM certificate")


def test_pki_nginx_master():
    p = pki.get()
    with pki.Nginx(p, master=True) as ng:
        eq(curl_ok("--cacert", p.ca_file, "--http2", ng.url("h2")), "ok\n",
           "master + worker")
        eq(ng.wait_entries(1)[0].http, "HTTP/2.0", "logged by the worker")

"""Fixtures for HTTPS targets: a throw-away PKI and a real nginx.

The PKI is made with the openssl command line (OpenSSL 3.0 on Debian 12)
once per run, under harness.tmpdir(), and cached: get() returns it.  Every
key is EC P-256 (fast to make).  Certificates are issued with `openssl ca`
because OpenSSL 3.0's x509 and req have no option for a notBefore other
than now; `ca -startdate/-enddate` takes any date, so the expired and the
not-yet-valid leaves are made the same way as the good ones.  Dates are
whole seconds relative to the moment the PKI is made; serial numbers are
fixed (SERIALS), so only the keys differ from run to run.

The facts a test compares against (subject, issuer, serial, dates, SAN,
fingerprint) are read back with `openssl x509 -noout`, so a test compares
fanoutd's answer with what openssl itself says, not with what this file
meant to write.  `subject` and `issuer` use -nameopt oneline, the format of
libcurl's CURLINFO_CERTINFO ("O = fanoutd tests, OU = valid, CN = localhost").

Layout (main PKI): root CA -> intermediate CA -> server leaves.  nginx
serves leaf + intermediate (fullchain), so trusting the root alone
(ca_file) verifies; the "no_chain" port serves the valid leaf alone.

Nginx runs the Debian nginx binary (never its service) on its own config,
pid file, logs and temp paths in a temp dir, one port per kind (KINDS), on
127.0.0.1 and, where it can be bound, ::1.  Its access log has one
tab-separated line per request (LOG_FIELDS), so tests can count the TLS
connections and resumptions a client made on each port.
"""

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import namedtuple

import harness as h

OPENSSL_TIMEOUT = 30.0
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

DAY = 86400
HOUR = 3600

# Serial numbers (hex as openssl prints them); none has its top bit set, so
# openssl's and libcurl's spellings differ only in case.
SERIALS = {
    "root": "1000", "intermediate": "1001", "other_root": "1002",
    "client_root": "1003",
    "valid": "2001", "expired": "2002", "not_yet_valid": "2003",
    "wrong_host": "2004", "self_signed": "2005", "expiring": "2006",
    "other_ca": "2007", "client": "3001", "client_other": "3002",
}

# (not_before, not_after) in seconds from the moment the PKI is made.
# "expiring" ends 5 days and 12 hours from now, so days_left is 5 for the
# next 12 hours whatever rounding down a test or fanoutd does.
SPANS = {
    "ca": (-DAY, 3650 * DAY),
    "valid": (-HOUR, 365 * DAY),
    "expired": (-400 * DAY, -35 * DAY),
    "not_yet_valid": (30 * DAY, 395 * DAY),
    "expiring": (-HOUR, 5 * DAY + 12 * HOUR),
}

LOCAL_SAN = "DNS:localhost, IP:127.0.0.1, IP:::1"

CA_CONFIG = """\
[ ca ]
default_ca = ca_default

[ ca_default ]
database = {db}/index.txt
serial = {db}/serial
new_certs_dir = {db}/new
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
preserve = yes
copy_extensions = none

[ policy_any ]
organizationName = optional
organizationalUnitName = optional
commonName = supplied

[ req ]
distinguished_name = req_dn
prompt = no

[ req_dn ]
CN = unused

[ root_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ intermediate_ext ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = $ENV::FIXTURE_SAN

[ self_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = $ENV::FIXTURE_SAN

[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


def openssl(*args, env=None):
    """Run openssl; its output, or an AssertionError with its stderr.

    The default trust store is pointed at nothing: none of these commands
    verifies anything, and `openssl x509` would otherwise parse the whole
    system bundle first (some 50 ms of CPU a call)."""
    argv = ["openssl"] + list(args)
    env = dict(env or os.environ, SSL_CERT_FILE=os.devnull,
               SSL_CERT_DIR=os.devnull)
    r = subprocess.run(argv, capture_output=True, text=True,
                       timeout=OPENSSL_TIMEOUT, env=env)
    if r.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def asn1_time(epoch):
    """YYYYMMDDHHMMSSZ, the form `openssl ca -startdate` takes."""
    t = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return t.strftime("%Y%m%d%H%M%SZ")


def rfc3339(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def concat(path, *parts):
    with open(path, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                data = f.read()
            out.write(data if data.endswith(b"\n") else data + b"\n")
    return path


class Cert:
    """One certificate: its files and what `openssl x509` says of it
    (read once, when the Cert is made).

    cert       the certificate alone (PEM)
    key        its private key (PEM, unencrypted)
    chain      the intermediates a server sends after it (or None)
    fullchain  cert + chain, what nginx serves
    combined   cert + key in one file (curl's --cert accepts it)
    subject, issuer            -nameopt oneline (libcurl's CERTINFO form)
    subject_rfc2253, issuer_rfc2253
    serial     hex, upper case, as openssl prints it ("2001")
    not_before, not_after      RFC 3339 UTC strings ("2025-01-31T12:00:00Z")
    not_before_dt, not_after_dt   the same as aware datetimes
    san        the SAN entries as openssl prints them
               ("DNS:localhost", "IP Address:127.0.0.1", ...)
    san_dns, san_ip   the names and the addresses (compressed: "::1")
    sha256     the fingerprint, colon-separated upper-case hex
    """

    def __init__(self, name, cert, key, chain=None):
        self.name = name
        self.cert = cert
        self.key = key
        self.chain = chain
        base = cert[:-len(".pem")]
        if chain:
            self.fullchain = concat(base + "-fullchain.pem", cert, chain)
        else:
            self.fullchain = cert
        self.combined = concat(base + "-combined.pem", cert, key)
        self._read_facts()

    def _read_facts(self):
        text = openssl("x509", "-in", self.cert, "-noout", "-subject",
                       "-issuer", "-serial", "-startdate", "-enddate",
                       "-dateopt", "iso_8601", "-nameopt", "oneline",
                       "-fingerprint", "-sha256", "-ext", "subjectAltName")
        rfc = openssl("x509", "-in", self.cert, "-noout", "-subject",
                      "-issuer", "-nameopt", "RFC2253")
        lines = text.splitlines()
        f = dict(line.split("=", 1) for line in lines
                 if "=" in line and not line.startswith(" "))
        self.subject = f["subject"]
        self.issuer = f["issuer"]
        self.serial = f["serial"]
        self.sha256 = f["sha256 Fingerprint"]
        self.not_before_dt = parse_iso(f["notBefore"])
        self.not_after_dt = parse_iso(f["notAfter"])
        self.not_before = rfc3339(self.not_before_dt)
        self.not_after = rfc3339(self.not_after_dt)
        f = dict(line.split("=", 1) for line in rfc.splitlines())
        self.subject_rfc2253 = f["subject"]
        self.issuer_rfc2253 = f["issuer"]
        self.san = []
        for i, line in enumerate(lines):
            if line.startswith("X509v3 Subject Alternative Name"):
                self.san = [s.strip() for s in lines[i + 1].split(",")]
        self.san_dns = [s[4:] for s in self.san if s.startswith("DNS:")]
        self.san_ip = [str(ipaddress.ip_address(s.split(":", 1)[1]))
                       for s in self.san if s.startswith("IP Address:")]

    def days_left(self, now=None):
        """Whole days until not_after (negative once expired), rounded
        down, as of now (a datetime; default: the current time)."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return int((self.not_after_dt - now).total_seconds() // DAY)

    def facts(self):
        return {
            "subject": self.subject, "issuer": self.issuer,
            "serial": self.serial, "not_before": self.not_before,
            "not_after": self.not_after, "san": list(self.san),
            "sha256": self.sha256,
        }

    def __repr__(self):
        return f"<Cert {self.name} {self.cert}>"


def parse_iso(text):
    """openssl's -dateopt iso_8601 ("2025-01-31 12:00:00Z")."""
    dt = datetime.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%SZ")
    return dt.replace(tzinfo=datetime.timezone.utc)


class PKI:
    """Everything a TLS test needs, made in directory (which must not
    exist yet, or be empty).

    Authorities (Cert, key included):
      root          the private root CA; trust this one (ca_file)
      intermediate  issued by root; issues the main leaves
      other_root    an unrelated CA ("untrusted", CA rotation)
      client_root   the CA nginx's mTLS port trusts
    Server leaves (self.leaves[kind], also attributes), SAN localhost,
    127.0.0.1 and ::1 unless said otherwise:
      valid, expired, not_yet_valid, expiring (5 days left),
      wrong_host    SAN DNS:wrong.example only, CN wrong.example
      self_signed   issued by itself (CA:FALSE)
      other_ca      issued by other_root
    Client side:
      client        issued by client_root (clientAuth); client.combined
      client_other  issued by other_root: a client nginx does not trust
      client_bad_key   a key that does not match client.cert
    Trust-store files:
      ca_file       root only (one certificate)
      ca_both       root + other_root (rotation: old and new together)
      ca_bundle_system   the system bundle + root
      ca_dir        a hashed directory (openssl rehash) with root
      ca_dir_other  a hashed directory with other_root only
      empty_file, not_pem_file (text), ca_der_file (root in DER)
    """

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.epoch = int(time.time())
        self._config = os.path.join(directory, "ca.cnf")
        with open(self._config, "w") as f:
            # One database per signer, named by FIXTURE_DB at each call.
            f.write(CA_CONFIG.replace(
                "{db}", self.path("db-$ENV::FIXTURE_DB")))
        self._make_authorities()
        self._make_leaves()
        self._make_clients()
        self._make_trust_files()

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    # Issuing.

    def _db(self, signer):
        """A fresh `openssl ca` database for signer (one per CA)."""
        db = self.path("db-" + signer)
        if not os.path.isdir(db):
            os.makedirs(os.path.join(db, "new"))
            with open(os.path.join(db, "index.txt"), "w"):
                pass
        return db

    def _issue(self, name, subject, ext, span, signer=None, san=LOCAL_SAN):
        """Key + CSR + `openssl ca`; signer is a Cert, or None for a
        self-signed certificate.  Returns (cert path, key path)."""
        key, csr, cert = (self.path(name + s) for s in
                          ("-key.pem", ".csr", ".pem"))
        db_name = signer.name if signer else name
        db = self._db(db_name)
        with open(os.path.join(db, "serial"), "w") as f:
            f.write(SERIALS[name] + "\n")
        env = dict(os.environ, FIXTURE_SAN=san, FIXTURE_DB=db_name)
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-subj", subject, "-config", self._config, "-out", csr,
                env=env)
        argv = ["ca", "-batch", "-notext", "-config", self._config,
                "-in", csr, "-out", cert, "-extensions", ext,
                "-startdate", asn1_time(self.epoch + span[0]),
                "-enddate", asn1_time(self.epoch + span[1])]
        if signer is None:
            argv += ["-selfsign", "-keyfile", key]
        else:
            argv += ["-cert", signer.cert, "-keyfile", signer.key]
        openssl(*argv, env=env)
        return cert, key

    def _ca(self, name, cn, signer=None, ext="root_ext"):
        cert, key = self._issue(name, f"/O=fanoutd tests/CN={cn}", ext,
                                SPANS["ca"], signer)
        return Cert(name, cert, key)

    def _leaf(self, name, signer, span="valid", san=LOCAL_SAN,
              cn="localhost", ext="server_ext"):
        subject = f"/O=fanoutd tests/OU={name}/CN={cn}"
        cert, key = self._issue(name, subject, ext, SPANS[span], signer, san)
        chain = None
        if signer is not None and signer.name == "intermediate":
            chain = self.intermediate.cert
        return Cert(name, cert, key, chain)

    def _make_authorities(self):
        self.root = self._ca("root", "fanoutd test root CA")
        self.intermediate = self._ca("intermediate",
                                     "fanoutd test intermediate CA",
                                     self.root, "intermediate_ext")
        self.other_root = self._ca("other_root", "fanoutd other root CA")
        self.client_root = self._ca("client_root", "fanoutd client CA")

    def _make_leaves(self):
        mid = self.intermediate
        self.leaves = {
            "valid": self._leaf("valid", mid),
            "expired": self._leaf("expired", mid, "expired"),
            "not_yet_valid": self._leaf("not_yet_valid", mid,
                                        "not_yet_valid"),
            "expiring": self._leaf("expiring", mid, "expiring"),
            "wrong_host": self._leaf("wrong_host", mid,
                                     san="DNS:wrong.example",
                                     cn="wrong.example"),
            "self_signed": self._leaf("self_signed", None, ext="self_ext"),
            "other_ca": self._leaf("other_ca", self.other_root),
        }
        for kind, cert in self.leaves.items():
            setattr(self, kind, cert)

    def _make_clients(self):
        self.client = self._leaf("client", self.client_root,
                                 cn="fanoutd test client", ext="client_ext")
        self.client_other = self._leaf("client_other", self.other_root,
                                       cn="fanoutd other client",
                                       ext="client_ext")
        self.client_bad_key = self.path("client-bad-key.pem")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-out", self.client_bad_key)

    def _make_trust_files(self):
        self.ca_file = concat(self.path("ca-root.pem"), self.root.cert)
        self.ca_both = concat(self.path("ca-both.pem"), self.root.cert,
                              self.other_root.cert)
        self.ca_bundle_system = None
        if os.path.exists(SYSTEM_BUNDLE):
            self.ca_bundle_system = concat(
                self.path("ca-system-plus-root.pem"), SYSTEM_BUNDLE,
                self.root.cert)
        self.ca_dir = self._hashed_dir("ca-dir", self.root.cert)
        self.ca_dir_other = self._hashed_dir("ca-dir-other",
                                             self.other_root.cert)
        self.empty_file = self.path("empty.pem")
        with open(self.empty_file, "w"):
            pass
        self.not_pem_file = self.path("not-pem.pem")
        with open(self.not_pem_file, "w") as f:
            f.write("this is not a certificate\n")
        self.ca_der_file = self.path("ca-root.der")
        openssl("x509", "-in", self.root.cert, "-outform", "DER",
                "-out", self.ca_der_file)

    def _hashed_dir(self, name, *certs):
        d = self.path(name)
        os.makedirs(d)
        for c in certs:
            shutil.copy(c, d)
        openssl("rehash", d)
        return d


_pki = None
_pki_lock = threading.Lock()


def get():
    """The run's PKI, made on first use under harness.tmpdir()."""
    global _pki
    with _pki_lock:
        if _pki is None or not os.path.isdir(_pki.dir):
            _pki = PKI(os.path.join(h.tmpdir(), "pki"))
        return _pki


# nginx.

# Ports of an Nginx, by kind: (certificate, listen flags, extra directives).
# "valid" and "valid_b" are two HTTP/1.1-only ports with the same leaf (two
# targets); "h2" offers HTTP/2 by ALPN.
KINDS = ("plain", "valid", "valid_b", "h2", "no_chain", "expired",
         "not_yet_valid", "wrong_host", "self_signed", "expiring",
         "other_ca", "mtls")

LOG_FIELDS = ("connection", "requests", "reused", "tls", "port", "uri",
              "status", "http", "method", "client_verify")
LOG_FORMAT = "\\t".join((
    "$connection", "$connection_requests", "$ssl_session_reused",
    "$ssl_protocol", "$server_port", "$request_uri", "$status",
    "$server_protocol", "$request_method", "$ssl_client_verify"))

Entry = namedtuple("Entry", LOG_FIELDS)

BODY = "fanoutd nginx fixture body\n"
STATUSES = (200, 201, 204, 301, 302, 400, 401, 403, 404, 418, 429, 500,
            502, 503, 504)
SLOW_BYTES = 24576  # at SLOW_RATE (bytes/s): 3 seconds
SLOW_RATE = 8192


def _locations():
    out = [
        'location = /ok { return 200 "ok\\n"; }',
        f'location = /body {{ return 200 "{BODY.strip()}\\n"; }}',
        'location = /client { return 200 "$ssl_client_s_dn\\n"; }',
        "location = /slow { alias %(www)s/slow.bin; "
        f"limit_rate {SLOW_RATE}; }}",
        'location / { return 404 "not found\\n"; }',
    ]
    for code in STATUSES:
        if 300 <= code < 400:
            out.append(f"location = /status/{code} {{ return {code} /ok; }}")
        else:
            out.append(f'location = /status/{code} {{ return {code} '
                       f'"{code}\\n"; }}')
    return "\n        ".join(out)


NGINX_CONF = """\
daemon off;
master_process %(master)s;
%(user)s
worker_processes 1;
pid %(dir)s/nginx.pid;
lock_file %(dir)s/nginx.lock;
error_log %(dir)s/error.log info;

events { worker_connections 1024; }

http {
    default_type text/plain;
    server_tokens off;
    log_format fixture '%(log_format)s';
    access_log %(dir)s/access.log fixture;
    client_body_temp_path %(dir)s/tmp/body;
    proxy_temp_path %(dir)s/tmp/proxy;
    fastcgi_temp_path %(dir)s/tmp/fastcgi;
    uwsgi_temp_path %(dir)s/tmp/uwsgi;
    scgi_temp_path %(dir)s/tmp/scgi;
    keepalive_timeout 75s;
    keepalive_requests 100000;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:fixture:1m;
    ssl_session_timeout 10m;

%(servers)s
}
"""


class Nginx:
    """A private nginx serving every KIND on a port of its own.

        ng = Nginx(pki.get())
        ng.url("valid", "/ok")   # https://127.0.0.1:PORT/ok
        mark = ng.mark()
        ...                      # requests
        ng.wait_entries(2, since=mark)
        ng.connections("valid", since=mark)
        ng.stop()

    master=True runs a master and one worker (as root, the worker stays
    root: the temp dir is private).
    """

    def __init__(self, pki=None, master=False, attempts=5):
        self.pki = pki or get()
        self.master = master
        self.ipv6 = h.ipv6_available()
        self._mark = 0
        last = None
        for _ in range(attempts):
            self.dir = tempfile.mkdtemp(prefix="nginx-", dir=h.tmpdir())
            os.makedirs(os.path.join(self.dir, "tmp"))
            self.ports = {kind: h.free_port() for kind in KINDS}
            self._write_config()
            self.access_log = os.path.join(self.dir, "access.log")
            self.error_log = os.path.join(self.dir, "error.log")
            self.process = h.Process(
                ["nginx", "-p", self.dir, "-c", self.conf, "-e",
                 self.error_log], "nginx")
            try:
                h.wait_for(self._ready, h.START_TIMEOUT, "nginx's ports")
                return
            except AssertionError as e:
                last = e
                text = self.errors()
                self.process.stop()
                if "Address already in use" not in text:
                    raise AssertionError(f"nginx did not start ({e}): "
                                         f"{text[-1500:]}")
        raise AssertionError(f"nginx did not start after {attempts} tries: "
                             f"{last}")

    def _write_config(self):
        www = os.path.join(self.dir, "www")
        os.makedirs(www)
        with open(os.path.join(www, "slow.bin"), "wb") as f:
            f.write(b"s" * (SLOW_BYTES - 1) + b"\n")
        servers = "\n".join(self._server(kind) for kind in KINDS)
        user = ""
        if self.master and os.geteuid() == 0:
            user = "user root root;"
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF % {
                "master": "on" if self.master else "off", "user": user,
                "dir": self.dir, "log_format": LOG_FORMAT,
                "servers": servers})

    def _server(self, kind):
        port = self.ports[kind]
        flags = "" if kind == "plain" else " ssl"
        if kind == "h2":
            flags += " http2"
        lines = [f"listen 127.0.0.1:{port}{flags};"]
        if self.ipv6:
            lines.append(f"listen [::1]:{port}{flags};")
        if kind != "plain":
            lines += self._tls_lines(kind)
        lines.append(_locations() % {"www": os.path.join(self.dir, "www")})
        body = "\n        ".join(lines)
        return f"    server {{  # {kind}\n        {body}\n    }}"

    def cert(self, kind):
        """The Cert a TLS port serves (valid_b, h2, no_chain and mtls
        serve the valid leaf)."""
        if kind == "plain":
            raise ValueError("the plain port has no certificate")
        return self.pki.leaves.get(kind, self.pki.valid)

    def _tls_lines(self, kind):
        p = self.pki
        leaf = self.cert(kind)
        cert = leaf.cert if kind == "no_chain" else leaf.fullchain
        lines = [f"ssl_certificate {cert};",
                 f"ssl_certificate_key {leaf.key};"]
        if kind == "mtls":
            lines += [f"ssl_client_certificate {p.client_root.cert};",
                      "ssl_verify_client on;", "ssl_verify_depth 2;"]
        return lines

    def _ready(self):
        if not self.process.alive():
            raise AssertionError(
                f"nginx {h.describe_exit(self.process.proc.returncode)}")
        for port in self.ports.values():
            try:
                with socket.create_connection(("127.0.0.1", port),
                                              timeout=1):
                    pass
            except OSError:
                return False
        return True

    def errors(self):
        """nginx's error log and stderr (start-up errors go to either)."""
        text = ""
        for path in (self.error_log, self.process.stderr_path):
            try:
                with open(path, errors="replace") as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        return text

    def alive(self):
        return self.process.alive()

    def port(self, kind):
        return self.ports[kind]

    def url(self, kind, path="/ok", host="127.0.0.1"):
        scheme = "http" if kind == "plain" else "https"
        return f"{scheme}://{h.hostport(host, self.ports[kind])}{path}"

    # The access log.

    def mark(self):
        """A position in the access log: pass it as since= later."""
        try:
            return os.path.getsize(self.access_log)
        except FileNotFoundError:
            return 0

    def reset(self):
        """From now on, since= defaults to here."""
        self._mark = self.mark()

    def log_entries(self, since=None):
        """Entries (LOG_FIELDS) logged after since (default: the reset)."""
        since = self._mark if since is None else since
        try:
            with open(self.access_log, "rb") as f:
                f.seek(since)
                data = f.read()
        except FileNotFoundError:
            return []
        text = data.decode("latin-1")
        if not text.endswith("\n"):  # a line being written: not yet
            text = text[:text.rfind("\n") + 1]
        return [parse_entry(line) for line in text.splitlines() if line]

    def wait_entries(self, count, since=None, timeout=5.0):
        """The entries once at least count are logged (nginx logs a
        request after it answered it, so a client can be first)."""
        def enough():
            entries = self.log_entries(since)
            return entries if len(entries) >= count else None

        return h.wait_for(enough, timeout,
                          f"{count} nginx access log entries")

    def _select(self, port, since):
        entries = self.log_entries(since)
        if port is None:
            return entries
        if isinstance(port, str):
            port = self.ports[port]
        return [e for e in entries if e.port == port]

    def connections(self, port=None, since=None):
        """Distinct connections that carried a request (port: a kind or
        a number; None: all ports)."""
        return len({e.connection for e in self._select(port, since)})

    def resumed(self, port=None, since=None):
        """Distinct connections whose TLS session was resumed."""
        return len({e.connection for e in self._select(port, since)
                    if e.reused})

    def requests(self, port=None, since=None):
        return len(self._select(port, since))

    def stop(self):
        """Stop by PID; a problem string (non-zero exit...) or None."""
        return self.process.stop()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        problem = self.stop()
        if problem and exc_type is None:
            raise AssertionError(problem)
        return False


def parse_entry(line):
    parts = line.split("\t")
    if len(parts) != len(LOG_FIELDS):
        raise AssertionError(f"nginx access log line: {line!r}")
    f = dict(zip(LOG_FIELDS, parts))
    f["connection"] = int(f["connection"])
    f["requests"] = int(f["requests"])
    f["reused"] = f["reused"] == "r"
    f["port"] = int(f["port"])
    f["status"] = int(f["status"])
    for k in ("tls", "client_verify"):
        if f[k] in ("-", ""):
            f[k] = None
    return Entry(**f)


_nginx = None
_nginx_lock = threading.Lock()


def nginx():
    """The run's shared nginx (started again if it died).  Tests that
    count connections take a mark() first: others use it too."""
    global _nginx
    with _nginx_lock:
        if _nginx is None or not _nginx.alive():
            _nginx = Nginx(get())
        return _nginx

"""TLS done properly: certificates chosen by SNI, RSA and ECDSA side by side,
the legacy (TLS 1.0) profile only for rule-matched networks, implicit TLS
sniffed on the STARTTLS ports, certificate renewal by SIGHUP (and a broken
renewal keeping the old certificate), the certificate audit of
`mailshim --check-config`, and verification of the backend's certificate.

Every certificate and key is generated here, with the openssl CLI, into a
temporary directory (signed by the lab CA in $LAB/ca.pem + ca.key, or by a CA
made here); nothing secret is committed. Scenarios that need another config
run an extra mailshim from a copy of $LAB/mailshim.toml whose listeners are
moved by +20 ... +120 (upstreams unchanged); each is stopped by its test.
Standard library + openssl CLI; loopback only."""

import atexit
import imaplib
import json
import os
import poplib
import re
import secrets
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
import warnings

import harness as h
from harness import LAB, LEGACY, MODERN

ALICE, ALICE_PW = h.USERS["alice"]
BOB, BOB_PW = h.USERS["bob"]
CA = os.path.join(LAB, "ca.pem")
CA_KEY = os.path.join(LAB, "ca.key")
LAB_TOML = os.path.join(LAB, "mailshim.toml")
LAB_SANS = "DNS:mail.example.test, DNS:localhost, IP:127.0.0.1"  # what scripts/lab-lib/certs.sh issues
MS = h.Mailshim()
LISTENER_PORTS = ("smtp", "smtps", "imap", "imaps", "pop3", "pop3s")

TMP = tempfile.mkdtemp(prefix="mailshim-tls-test-")
atexit.register(shutil.rmtree, TMP, True)

warnings.filterwarnings("ignore", category=DeprecationWarning)  # ssl.TLSVersion.TLSv1 on purpose


# ---- openssl CLI helpers -------------------------------------------------------

def openssl(*args, input=None, check=True, timeout=30):
    r = subprocess.run(["openssl", *args], input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r


def new_serial():
    # 61 bits, leading hex digit 1: prints the same in openssl and Python ("1A2B...").
    return "%X" % (secrets.randbits(60) | (1 << 60))


def new_key(path, kind="rsa"):
    if kind == "rsa":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    else:
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    os.chmod(path, 0o600)
    return path


class Cert:
    def __init__(self, cert, key, serial, cn):
        self.cert, self.key, self.serial, self.cn = cert, key, serial, cn


def issue(tag, cn, sans, kind="rsa", ca=CA, ca_key=CA_KEY, days=90, is_ca=False, key=None):
    """A certificate for `cn`/`sans` signed by `ca`, in TMP/<tag>.{pem,key}."""
    base = os.path.join(TMP, tag)
    key = key or new_key(base + ".key", kind)
    ext = base + ".ext"
    with open(ext, "w") as f:
        if is_ca:
            f.write("[v3]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n"
                    "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid, issuer\n")
        else:
            usage = "digitalSignature, keyEncipherment" if kind == "rsa" else "digitalSignature"
            f.write(f"[v3]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, {usage}\n"
                    f"extendedKeyUsage = serverAuth\nsubjectAltName = {sans}\nsubjectKeyIdentifier = hash\n"
                    "authorityKeyIdentifier = keyid, issuer\n")
    openssl("req", "-new", "-key", key, "-subj", f"/O=mailshim tls test/CN={cn}", "-out", base + ".csr")
    serial = new_serial()
    openssl("x509", "-req", "-in", base + ".csr", "-CA", ca, "-CAkey", ca_key, "-set_serial", "0x" + serial,
            "-sha256", "-days", str(days), "-extfile", ext, "-extensions", "v3", "-out", base + ".pem")
    return Cert(base + ".pem", key, serial, cn)


def self_signed(tag, cn, sans, is_ca=False):
    base = os.path.join(TMP, tag)
    key = new_key(base + ".key")
    serial = new_serial()
    exts = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"] \
        if is_ca else ["-addext", f"subjectAltName={sans}", "-addext", "basicConstraints=critical,CA:FALSE"]
    openssl("req", "-x509", "-new", "-key", key, "-sha256", "-days", "365", "-set_serial", "0x" + serial,
            "-subj", f"/O=mailshim tls test/CN={cn}", *exts, "-out", base + ".pem")
    return Cert(base + ".pem", key, serial, cn)


def issue_expired(tag, cn, sans):
    """A certificate whose validity ended in the past, via `openssl ca` (3.0 x509 has no -not_after)."""
    d = os.path.join(TMP, tag + "-ca")
    os.makedirs(os.path.join(d, "new"), exist_ok=True)
    open(os.path.join(d, "index.txt"), "w").close()
    serial = new_serial()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write(serial + "\n")
    cnf = os.path.join(d, "ca.cnf")
    with open(cnf, "w") as f:
        f.write(f"[ca]\ndefault_ca = lab\n[lab]\ndir = {d}\ndatabase = {d}/index.txt\nnew_certs_dir = {d}/new\n"
                f"serial = {d}/serial\ncertificate = {CA}\nprivate_key = {CA_KEY}\ndefault_md = sha256\n"
                "policy = pol\nunique_subject = no\nemail_in_dn = no\n"
                "[pol]\norganizationName = optional\ncommonName = supplied\n"
                "[v3]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\n"
                f"extendedKeyUsage = serverAuth\nsubjectAltName = {sans}\n")
    base = os.path.join(TMP, tag)
    key = new_key(base + ".key")
    openssl("req", "-new", "-key", key, "-subj", f"/O=mailshim tls test/CN={cn}", "-out", base + ".csr")
    openssl("ca", "-batch", "-config", cnf, "-in", base + ".csr", "-out", base + ".pem", "-notext",
            "-startdate", "20240101000000Z", "-enddate", "20240401000000Z", "-extensions", "v3")
    return Cert(base + ".pem", key, serial, cn)


def cert_info(pem_text):
    """(serial, subject CN, key algorithm) of a PEM certificate."""
    out = openssl("x509", "-noout", "-serial", "-subject", "-nameopt", "RFC2253", "-text", input=pem_text).stdout
    serial = re.search(r"^serial=([0-9A-F]+)$", out, re.M).group(1)
    cn = re.search(r"^subject=.*?CN=([^,\n]+)", out, re.M).group(1)
    alg = "ECDSA" if "id-ecPublicKey" in out else ("RSA" if "rsaEncryption" in out else "?")
    return serial, cn, alg


def file_serial(path):
    with open(path) as f:
        return cert_info(f.read())[0]


LAB_SERIAL = file_serial(os.path.join(LAB, "fullchain.pem"))


def s_client(port, servername=None, args=(), timeout=20):
    """Handshakes with openssl s_client; returns (serial, cn, key alg, output) or (None, .., output)."""
    cmd = ["s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", CA]
    cmd += ["-servername", servername] if servername else ["-noservername"]
    r = subprocess.run(["openssl", *cmd, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    out = r.stdout + r.stderr
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", r.stdout, re.S)
    if not pem:
        return None, None, None, out
    return (*cert_info(pem.group(0) + "\n"), out)


def py_served(port, server_hostname):
    """Handshakes with Python ssl (lab CA, name checked when given); returns (serial, CN)."""
    ctx = ssl.create_default_context(cafile=CA)
    ctx.check_hostname = server_hostname is not None
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=server_hostname) as t:
            cert = t.getpeercert()
    cn = dict(x[0] for x in cert["subject"])["commonName"]
    return cert["serialNumber"], cn


def tls10_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


# ---- config copies --------------------------------------------------------------

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(json.dumps(x) for x in v) + "]"
    return json.dumps(v)


def edit(text, header, name=None, **keys):
    """Sets `keys` in the table `header` ("[tls]", "[[listener]]"...), the one whose
    name = `name` for arrays of tables; keys not there yet are added."""
    lines = text.split("\n")
    blocks, cur = [], []
    for line in lines:
        if re.match(r"^\[\[?[A-Za-z_.]+\]?\]\s*$", line):
            blocks.append(cur)
            cur = []
        cur.append(line)
    blocks.append(cur)
    found = False
    for b in blocks:
        if not b or b[0].strip() != header:
            continue
        if name is not None and not any(re.match(r'^name = "%s"$' % re.escape(name), l) for l in b):
            continue
        found = True
        for k, v in keys.items():
            rx = re.compile(r"^%s\s*=" % re.escape(k))
            idx = next((i for i, l in enumerate(b) if rx.match(l)), None)
            if idx is None:
                b.insert(1, f"{k} = {toml_value(v)}")
            else:
                b[idx] = f"{k} = {toml_value(v)}"
    assert found, f"no {header} {name or ''} in the config"
    return "\n".join("\n".join(b) for b in blocks if b)


def add_certificate(text, cert):
    return text.rstrip("\n") + f"\n\n[[certificate]]\ncert_file = {json.dumps(cert.cert)}\nkey_file = {json.dumps(cert.key)}\n"


def shift_listeners(text, delta):
    """Moves every `port = N` inside [[listener]] blocks by `delta`; upstreams keep theirs."""
    out, in_listener = [], False
    for line in text.split("\n"):
        if re.match(r"^\[", line):
            in_listener = line.strip() == "[[listener]]"
        if in_listener:
            line = re.sub(r"^port = (\d+)$", lambda m: "port = %d" % (int(m.group(1)) + delta), line)
        out.append(line)
    return "\n".join(out)


def lab_config():
    with open(LAB_TOML) as f:
        return f.read()


def write_config(name, text):
    path = os.path.join(TMP, name + ".toml")
    with open(path, "w") as f:
        f.write(text)
    return path


class Extra:
    """An extra mailshim from a modified copy of the lab config, listeners moved by `delta`.
    Ports are registered as "<name>_<listener>" (e.g. "tls-sni_imaps")."""

    def __init__(self, name, delta, text):
        self.name = name
        for p in LISTENER_PORTS:
            h.PORTS[f"{name}_{p}"] = h.port(p) + delta
        self.path = write_config(name, shift_listeners(text, delta))
        self.ms = h.Mailshim(self.path, name=name)

    def port(self, p):
        return h.port(f"{self.name}_{p}")

    def __enter__(self):
        self.ms.start(wait_ports=tuple(f"{self.name}_{p}" for p in LISTENER_PORTS))
        return self

    def __exit__(self, exc_type, exc, tb):
        rc = self.ms.stop()
        if exc_type is None:
            assert rc == 0, f"{self.name} exited {rc}:\n{self.ms.log_text()[-4000:]}"
        else:
            print(f"---- {self.name} log ----\n{self.ms.log_text()[-4000:]}", flush=True)
        return False


def check_config(name, text):
    path = write_config(name, text)
    r = subprocess.run([h.BIN, "--check-config", path], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def marker():
    return "mailshim-tls-" + uuid.uuid4().hex[:12]


# ---- SNI and certificate selection ---------------------------------------------

def test_sni_selects_the_certificate():
    imap_cert = issue("imap-sni", "imap.example.test", "DNS:imap.example.test")
    with Extra("tls-sni", 20, add_certificate(lab_config(), imap_cert)) as x:
        port = x.port("imaps")
        serial, cn, alg, out = s_client(port, "imap.example.test", ["-verify_return_error"])
        assert serial == imap_cert.serial and cn == "imap.example.test", out
        assert "Verify return code: 0 (ok)" in out, out
        assert py_served(port, "imap.example.test") == (imap_cert.serial, "imap.example.test")
        # Matching is case-insensitive (DNS names are).
        assert s_client(port, "IMAP.Example.Test")[0] == imap_cert.serial
        # No SNI, an unknown name, or the default's own name: the [tls] certificate.
        for name in (None, "unknown.example.test", "mail.example.test"):
            serial, cn, _, out = s_client(port, name)
            assert serial == LAB_SERIAL and cn == "mail.example.test", (name, out)
        assert py_served(port, None) == (LAB_SERIAL, "mail.example.test")
        assert py_served(port, "mail.example.test") == (LAB_SERIAL, "mail.example.test")
        # The same selection on a sniffed STARTTLS port.
        assert py_served(x.port("imap"), "imap.example.test")[0] == imap_cert.serial
        # And the log says which name the client asked for.
        h.log_contains(x.ms.log_path, r"tls session=\S+ rip=127\.0\.0\.1 side=downstream cipher=\"TLSv1\.3 [^\"]+\" "
                                      r"sni=imap\.example\.test profile=modern")


def test_rsa_and_ecdsa_side_by_side():
    ec = issue("mail-ecdsa", "mail.example.test", LAB_SANS, kind="ec")
    with Extra("tls-ecdsa", 40, add_certificate(lab_config(), ec)) as x:
        port = x.port("imaps")
        ecdsa_only = (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
                      ["-tls1_2", "-sigalgs", "ECDSA+SHA256"],
                      ["-tls1_3", "-sigalgs", "ECDSA+SHA256"])
        rsa_only = (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
                    ["-tls1_2", "-sigalgs", "RSA+SHA256:RSA-PSS+SHA256"],
                    ["-tls1_3", "-sigalgs", "RSA-PSS+SHA256"])
        for args in ecdsa_only:
            serial, cn, alg, out = s_client(port, "mail.example.test", args)
            assert (serial, alg) == (ec.serial, "ECDSA"), (args, out)
            assert "Verify return code: 0 (ok)" in out, out
        for args in rsa_only:
            serial, cn, alg, out = s_client(port, "mail.example.test", args)
            assert (serial, alg) == (LAB_SERIAL, "RSA"), (args, out)
        # Without SNI too (the [tls] certificate's group holds both).
        assert s_client(port, None, ecdsa_only[0])[0] == ec.serial
        assert s_client(port, None, rsa_only[0])[0] == LAB_SERIAL


def test_ecdsa_certificate_for_fewer_names_is_served_or_flagged():
    # A typical certbot pair: RSA for mail.example.test + more names, ECDSA for
    # mail.example.test only. An ECDSA-only client asking for mail.example.test
    # must get the ECDSA certificate -- or --check-config must say that this
    # [[certificate]] will never be served for that name.
    ec = issue("mail-ecdsa-one", "mail.example.test", "DNS:mail.example.test", kind="ec")
    text = add_certificate(lab_config(), ec)
    rc, out = check_config("ecdsa-one", text)
    with Extra("tls-ecdsa-one", 100, text) as x:
        serial, _, alg, sout = s_client(x.port("imaps"), "mail.example.test",
                                        ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])
        flagged = ec.cert in out and re.search(r"(warning|error): ", out)
        assert serial == ec.serial or flagged, (
            "ECDSA [[certificate]] for mail.example.test is neither served to an ECDSA-only client "
            f"(handshake: {sout.strip().splitlines()[:2]}) nor flagged by --check-config (rc={rc}: {out.strip()})")


# ---- profiles: TLS 1.0 only for the legacy network -----------------------------

def test_tls10_only_from_the_legacy_network():
    watch = h.LogWatch(MS.log_path)
    greetings = {"smtps": "220 ", "imaps": "* OK", "pop3s": "+OK"}
    for name, greeting in greetings.items():
        with socket.create_connection(("127.0.0.1", h.port(name)), timeout=10, source_address=(LEGACY, 0)) as s:
            with tls10_context().wrap_socket(s) as t:
                assert t.version() == "TLSv1", t.version()
                data = b""
                while b"\n" not in data:
                    data += t.recv(4096)
                assert data.decode().startswith(greeting), (name, data)
        with socket.create_connection(("127.0.0.1", h.port(name)), timeout=10, source_address=(MODERN, 0)) as s:
            try:
                with tls10_context().wrap_socket(s) as t:
                    raise AssertionError(f"{name}: TLSv1 from the modern network succeeded: {t.version()}")
            except ssl.SSLError as e:
                assert "PROTOCOL_VERSION" in str(e).upper() or "ALERT" in str(e).upper(), e
    # openssl s_client -tls1 from 127.0.0.1 fails the same way.
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{h.port('imaps')}", "-tls1", "-cipher",
                        "DEFAULT:@SECLEVEL=0", "-noservername"], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=20)
    assert r.returncode != 0 and "BEGIN CERTIFICATE" not in r.stdout, r.stdout + r.stderr
    watch.wait(r"tls session=\S+ rip=127\.0\.0\.1 side=downstream result=failed offered=TLSv1 sni=- "
               r"reason=\"client offered only TLSv1; rule 'modern' requires TLSv1\.2")
    assert len(watch.lines(r"rip=127\.0\.0\.1 side=downstream result=failed offered=TLSv1 .*"
                           r"rule 'modern' requires TLSv1\.2")) >= 4, watch.text()
    watch.wait(r"quirk session=\S+ rip=127\.0\.0\.2 quirk=tls\.legacy_protocols rule=legacy-lan "
               r"detail=\"negotiated TLSv1 ")
    assert len(watch.lines(r"rip=127\.0\.0\.2 quirk=tls\.legacy_protocols")) == 3, watch.text()
    assert watch.lines(r"rip=127\.0\.0\.2 side=downstream cipher=\"TLSv1 \S+\" sni=- profile=legacy")


def test_modern_client_from_the_legacy_network_still_gets_tls13():
    # The legacy profile widens what is accepted; it does not lower what is negotiated.
    with socket.create_connection(("127.0.0.1", h.port("imaps")), timeout=10, source_address=(LEGACY, 0)) as s:
        with h.tls_context().wrap_socket(s, server_hostname="mail.example.test") as t:
            assert t.version() == "TLSv1.3", t.version()


# ---- tls = "auto": implicit TLS sniffed on the STARTTLS ports ------------------

def test_implicit_tls_sniffed_on_starttls_ports():
    watch = h.LogWatch(MS.log_path)
    ctx = h.tls_context()
    # SMTP: TLS first on 587, then a real submission inside it.
    m = marker()
    with smtplib.SMTP_SSL("127.0.0.1", h.port("smtp"), local_hostname="outlook.example.test", context=ctx,
                          timeout=60) as s:
        code, caps = s.ehlo()
        assert code == 250 and b"AUTH PLAIN LOGIN" in caps and b"STARTTLS" not in caps, caps
        s.login(ALICE, ALICE_PW)
        s.sendmail(ALICE, [BOB], f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: {m}\r\n\r\nimplicit TLS on 587\r\n")
    h.wait_for_message(BOB, m)
    # IMAP: greeting inside TLS, LOGIN + NOOP.
    with imaplib.IMAP4_SSL("127.0.0.1", h.port("imap"), ssl_context=ctx, timeout=60) as c:
        assert c.welcome.startswith(b"* OK") and b"STARTTLS" not in c.welcome, c.welcome
        assert c.login(ALICE, ALICE_PW)[0] == "OK"
        assert c.noop()[0] == "OK"
        c.logout()
    # POP3: greeting inside TLS, USER/PASS + STAT.
    p = poplib.POP3_SSL("127.0.0.1", h.port("pop3"), context=ctx, timeout=60)
    try:
        assert p.getwelcome().startswith(b"+OK"), p.getwelcome()
        p.user(ALICE)
        assert p.pass_(ALICE_PW).startswith(b"+OK")
        p.stat()
    finally:
        p.quit()
    for listener in ("submission", "imap", "pop3"):
        watch.wait(r"quirk session=\S+ rip=127\.0\.0\.1 quirk=tls\.implicit_on_starttls_port rule=modern "
                   r"detail=\"TLS ClientHello before the greeting on %s port %d" % (listener, h.port(
                       {"submission": "smtp", "imap": "imap", "pop3": "pop3"}[listener])))


def test_waiting_client_gets_the_plaintext_greeting_after_the_sniff_window():
    for name, greeting in (("smtp", b"220 "), ("imap", b"* OK"), ("pop3", b"+OK")):
        with socket.create_connection(("127.0.0.1", h.port(name)), timeout=10) as s:
            t0 = time.monotonic()
            data = s.recv(4096)
            elapsed = time.monotonic() - t0
            assert data.startswith(greeting), (name, data)
            assert 0.15 <= elapsed < 2.0, f"{name}: greeting after {elapsed:.3f}s (sniff_timeout_ms = 200)"
            if name == "imap":
                assert b"STARTTLS" in data, data  # plaintext session: STARTTLS offered


def test_client_that_talks_first_in_plaintext():
    cases = (("smtp", b"EHLO x\r\n", b"220 ", b"250-STARTTLS"),
             ("imap", b"a1 CAPABILITY\r\n", b"* OK", b"a1 OK"),
             ("pop3", b"CAPA\r\n", b"+OK", b"STLS"))
    for name, first, greeting, reply in cases:
        with socket.create_connection(("127.0.0.1", h.port(name)), timeout=10) as s:
            s.sendall(first)
            data = b""
            deadline = time.time() + 5
            while reply not in data and time.time() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            assert data.startswith(greeting) and reply in data, (name, data)


# ---- reload: renewed certificate, broken certificate ----------------------------

def test_reload_renewed_certificate_and_broken_one_keeps_the_old():
    live = os.path.join(TMP, "live")
    os.makedirs(live)
    chain, key = os.path.join(live, "fullchain.pem"), os.path.join(live, "privkey.pem")
    first = issue("live-1", "mail.example.test", LAB_SANS)
    shutil.copy(first.cert, chain)
    shutil.copy(first.key, key)
    text = edit(lab_config(), "[tls]", cert_file=chain, key_file=key)
    with Extra("tls-reload", 60, text) as x:
        port = x.port("imaps")
        assert s_client(port, "mail.example.test")[0] == first.serial
        # A client session to resume after the renewal (tickets survive reloads).
        resume_ctx = h.tls_context()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            with resume_ctx.wrap_socket(s, server_hostname="mail.example.test") as t:
                t.recv(4096)  # the greeting; the TLS 1.3 ticket arrives with it
                t.sendall(b"a1 NOOP\r\n")
                t.recv(4096)
                saved = t.session
        # An open, logged-in session (and a pre-login SMTPS one) across the reloads.
        imap = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=h.tls_context(), timeout=60)
        assert imap.login(ALICE, ALICE_PW)[0] == "OK"
        smtps = smtplib.SMTP_SSL("127.0.0.1", x.port("smtps"), local_hostname="t.example.test",
                                 context=h.tls_context(), timeout=30)
        assert smtps.ehlo()[0] == 250
        try:
            # Renewal: new key, new serial, same names, same file names (certbot).
            renewed = issue("live-2", "mail.example.test", LAB_SANS)
            shutil.copy(renewed.key, key)
            shutil.copy(renewed.cert, chain)
            watch = h.LogWatch(x.ms.log_path)
            x.ms.signal(signal.SIGHUP)
            watch.wait(r"reload result=ok")
            assert imap.noop()[0] == "OK"
            assert smtps.noop()[0] == 250
            assert s_client(port, "mail.example.test")[0] == renewed.serial
            assert py_served(port, "mail.example.test")[0] == renewed.serial
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                with resume_ctx.wrap_socket(s, server_hostname="mail.example.test", session=saved) as t:
                    assert t.recv(4096).startswith(b"* OK")
                    assert t.session_reused, "a session from before the reload was not resumed"

            # Broken 1: garbage where the certificate should be.
            with open(chain, "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
            watch = h.LogWatch(x.ms.log_path)
            x.ms.signal(signal.SIGHUP)
            watch.wait(r"reload result=\"failed, keeping the running configuration\"")
            assert watch.lines(r"reload error=.*fullchain\.pem"), watch.text()
            assert not watch.lines(r"reload result=ok"), watch.text()
            assert s_client(port, "mail.example.test")[0] == renewed.serial
            assert imap.noop()[0] == "OK"

            # Broken 2: a valid certificate that does not match the key on disk.
            other = issue("live-3", "mail.example.test", LAB_SANS)
            shutil.copy(other.cert, chain)
            watch = h.LogWatch(x.ms.log_path)
            x.ms.signal(signal.SIGHUP)
            watch.wait(r"reload result=\"failed, keeping the running configuration\"")
            assert watch.lines(r"reload error=.*does not match"), watch.text()
            assert s_client(port, "mail.example.test")[0] == renewed.serial
            assert py_served(port, "mail.example.test")[0] == renewed.serial
            assert imap.noop()[0] == "OK"
            assert smtps.noop()[0] == 250
        finally:
            imap.logout()
            smtps.quit()


# ---- mailshim --check-config: the certificate audit -----------------------------

def test_check_config_audit_errors():
    base = lab_config()
    rc, out = check_config("audit-ok", base)
    assert rc == 0 and "configuration OK" in out, out

    # Key does not match.
    stray = new_key(os.path.join(TMP, "stray.key"))
    rc, out = check_config("audit-key", edit(base, "[tls]", key_file=stray))
    assert rc == 1 and re.search(r"error: .*stray\.key: private key does not match certificate", out), out

    # Chain not in order: CA first, then the leaf.
    ca_first = os.path.join(TMP, "ca-first.pem")
    with open(ca_first, "w") as f:
        f.write(open(CA).read() + open(os.path.join(LAB, "fullchain.pem")).read())
    rc, out = check_config("audit-order", edit(base, "[tls]", cert_file=ca_first))
    assert rc == 1 and re.search(r"error: .*ca-first\.pem: chain not in order", out), out

    # Chain incomplete: leaf signed by an intermediate that is not in the file.
    root = self_signed("root2", "mailshim test root", None, is_ca=True)
    inter = issue("inter2", "mailshim test intermediate", None, ca=root.cert, ca_key=root.key, is_ca=True)
    leaf = issue("leaf2", "mail.example.test", LAB_SANS, ca=inter.cert, ca_key=inter.key)
    full = os.path.join(TMP, "leaf2-full.pem")
    with open(full, "w") as f:
        f.write(open(leaf.cert).read() + open(inter.cert).read())
    rc, out = check_config("audit-complete", edit(base, "[tls]", cert_file=full, key_file=leaf.key,
                                                  audit_ca_file=root.cert))
    assert rc == 0 and "configuration OK" in out, out  # control: leaf + intermediate verifies
    rc, out = check_config("audit-incomplete", edit(base, "[tls]", cert_file=leaf.cert, key_file=leaf.key,
                                                    audit_ca_file=root.cert))
    assert rc == 1 and re.search(r"error: .*leaf2\.pem: chain incomplete", out), out
    assert "intermediate" in out and "issuer" in out and "fullchain.pem" in out, out

    # Expired.
    old = issue_expired("expired", "mail.example.test", LAB_SANS)
    rc, out = check_config("audit-expired", edit(base, "[tls]", cert_file=old.cert, key_file=old.key))
    assert rc == 1 and re.search(r"error: .*expired\.pem: certificate \(.*mail\.example\.test\) has expired", out), out

    # A server_names entry no certificate covers.
    rc, out = check_config("audit-names", edit(base, "[[listener]]", "imaps",
                                               server_names=["mail.example.test", "imap.example.test"]))
    assert rc == 1 and re.search(r"error: listener 'imaps': server_names entry 'imap\.example\.test' is not "
                                 r"covered by any certificate", out), out
    # An upstream client certificate whose key does not match.
    rc, out = check_config("audit-client-cert", edit(base, "[[upstream]]", "dovecot-imap",
                                                     client_cert_file=os.path.join(LAB, "fullchain.pem"),
                                                     client_key_file=stray))
    assert rc == 1 and re.search(r"error: .*upstream 'dovecot-imap': .*stray\.key.*(does not match|mismatch)", out), out
    rc, out = check_config("audit-client-cert-ok", edit(base, "[[upstream]]", "dovecot-imap",
                                                        client_cert_file=os.path.join(LAB, "fullchain.pem"),
                                                        client_key_file=os.path.join(LAB, "privkey.pem")))
    assert rc == 0, out

    # ... and one that a [[certificate]] covers is fine.
    imap_cert = issue("imap-audit", "imap.example.test", "DNS:imap.example.test")
    rc, out = check_config("audit-names-ok", add_certificate(edit(
        base, "[[listener]]", "imaps", server_names=["mail.example.test", "imap.example.test"]), imap_cert))
    assert rc == 0, out


def test_check_config_audit_warnings():
    base = lab_config()
    soon = issue("soon", "mail.example.test", LAB_SANS, days=10)
    rc, out = check_config("audit-soon", edit(base, "[tls]", cert_file=soon.cert, key_file=soon.key))
    assert rc == 0 and re.search(r"warning: .*soon\.pem: certificate \(.*\) expires in (9|10) days", out), out

    own = self_signed("selfsigned", "mail.example.test", LAB_SANS)
    rc, out = check_config("audit-self", edit(edit(base, "[tls]", cert_file=own.cert, key_file=own.key),
                                              "[[listener]]", "submission", address="0.0.0.0"))
    assert rc == 0 and re.search(r"warning: .*selfsigned\.pem: self-signed certificate on listener 'submission' "
                                 r"\(0\.0\.0\.0\)", out), out
    assert "listener 'imaps'" not in out, out  # 127.0.0.1 listeners are not reachable from outside

    rc, out = check_config("audit-noverify", edit(base, "[[upstream]]", "dovecot-imap", verify=False))
    assert rc == 0 and re.search(r"warning: .*dovecot-imap'?: verify = false", out), out


# ---- upstream certificate verification -----------------------------------------

def test_upstream_certificate_name_is_verified():
    text = edit(lab_config(), "[[upstream]]", "dovecot-imap", verify_name="wrong.example.test")
    # The same wrong name with verify = false: accepted, and warned about at start.
    text = edit(text, "[[upstream]]", "dovecot-pop3", verify_name="wrong.example.test", verify=False)
    with Extra("tls-upstream", 80, text) as x:
        h.log_contains(x.ms.log_path, r"config upstream=dovecot-pop3 warning=\"verify = false\"")
        p = poplib.POP3_SSL("127.0.0.1", x.port("pop3s"), context=h.tls_context(), timeout=60)
        try:
            p.user(ALICE)
            assert p.pass_(ALICE_PW).startswith(b"+OK")
        finally:
            p.quit()
        watch = h.LogWatch(x.ms.log_path)
        with socket.create_connection(("127.0.0.1", x.port("imaps")), timeout=30) as s:
            with h.tls_context().wrap_socket(s, server_hostname="mail.example.test") as t:
                f = t.makefile("rb")
                assert f.readline().startswith(b"* OK")
                t.sendall(f"a1 LOGIN {ALICE} {ALICE_PW}\r\n".encode())
                lines = []
                while True:
                    line = f.readline()
                    if not line:
                        break
                    lines.append(line.decode().rstrip())
                    if line.startswith(b"a1 ") or line.startswith(b"* BYE"):
                        break
        assert lines and (lines[-1].startswith("a1 NO") or lines[-1].startswith("* BYE [UNAVAILABLE]")), lines
        assert not any(l.startswith("a1 OK") for l in lines), lines
        m = watch.wait(r"upstream session=\S+ rip=127\.0\.0\.1 user=\S+ upstream=dovecot-imap error=\"TLS handshake "
                       r"with backend failed: [^\"]*certificate verify failed")
        # The log should say what is wrong with the certificate, not only that it failed.
        assert re.search(r"hostname mismatch|wrong\.example\.test", watch.text()), (
            "upstream TLS failure logged without the reason (expected 'hostname mismatch' / the name):\n"
            + "\n".join(watch.lines(r"upstream|login")))


def test_upstream_tls_session_is_resumed():
    # The client context keeps the last session toward each upstream; Postfix
    # resumes TLS sessions (Dovecot's lab config does not), so use submission.
    text = edit(lab_config(), "[server]", log_level="debug")
    with Extra("tls-resume", 120, text) as x:
        watch = h.LogWatch(x.ms.log_path)
        for _ in range(3):
            with smtplib.SMTP_SSL("127.0.0.1", x.port("smtps"), local_hostname="t.example.test",
                                  context=h.tls_context(), timeout=60) as s:
                s.ehlo()
                s.login(ALICE, ALICE_PW)
        watch.wait(r"(?s)(side=upstream.*){3}")
        lines = watch.lines(r"tls session=\S+ .*side=upstream")
        assert len(lines) == 3, lines
        assert any("resumed=yes" in l for l in lines[1:]), (
            "no upstream TLS session was resumed (Postfix resumes: openssl s_client -sess_out/-sess_in "
            f"shows 'Reused'):\n" + "\n".join(lines))


def test_tls13_resumption_hands_out_a_fresh_ticket_each_time():
    """TLS 1.3 clients use a ticket once (RFC 8446 C.4). A resumed session
    must bring a new ticket, or a client resumes only as many times as its
    last full handshake gave it tickets (bench/run saw 67 % resumed, the
    peers 99 %). Five connections in a row, each resuming the previous
    one's session: all resumed, each with a new ticket (OpenSSL names a
    client session after its ticket's SHA-256)."""
    ctx = h.tls_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    session, ids, reused = None, [], []
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", h.port("imaps")), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="mail.example.test", session=session) as t:
                assert t.recv(4096).startswith(b"* OK")  # the ticket comes with the greeting
                t.sendall(b"a1 NOOP\r\n")
                assert b"a1 OK" in t.recv(4096)
                reused.append(t.session_reused)
                session = t.session
                ids.append(session.id)
    assert reused == [False, True, True, True, True], reused
    assert len(set(ids)) == 5, "a resumed connection brought no new ticket"


def test_handshake_failure_reasons_are_readable():
    watch = h.LogWatch(MS.log_path)
    # Plaintext on an implicit-TLS port.
    with socket.create_connection(("127.0.0.1", h.port("smtps")), timeout=10) as s:
        s.sendall(b"EHLO x\r\n")
        try:
            s.recv(100)
        except OSError:
            pass
    # No shared cipher: static-RSA key exchange only (not offered by the modern profile).
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{h.port('imaps')}", "-tls1_2", "-cipher",
                        "AES128-SHA", "-noservername"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=20)
    assert r.returncode != 0, r.stdout
    watch.wait(r"tls session=\S+ rip=127\.0\.0\.1 side=downstream result=failed offered=- sni=- "
               r"reason=\"client did not start TLS \(plaintext on an implicit-TLS port\?\)")
    watch.wait(r"side=downstream result=failed offered=\"TLSv1\.2 [^\"]*\" sni=- reason=\"[^\"]*no shared cipher")
    # The reason is OpenSSL's error queue; libevent's SSL_get_error() code must not pose as an error.
    noise = watch.lines(r"error:00000001:lib\(0\)::reason\(1\)")
    assert not noise, "bogus 'error:00000001:lib(0)::reason(1)' in TLS failure reasons:\n" + "\n".join(noise)


if __name__ == "__main__":
    h.run([
        test_sni_selects_the_certificate,
        test_rsa_and_ecdsa_side_by_side,
        test_ecdsa_certificate_for_fewer_names_is_served_or_flagged,
        test_tls10_only_from_the_legacy_network,
        test_modern_client_from_the_legacy_network_still_gets_tls13,
        test_implicit_tls_sniffed_on_starttls_ports,
        test_waiting_client_gets_the_plaintext_greeting_after_the_sniff_window,
        test_client_that_talks_first_in_plaintext,
        test_reload_renewed_certificate_and_broken_one_keeps_the_old,
        test_check_config_audit_errors,
        test_check_config_audit_warnings,
        test_upstream_certificate_name_is_verified,
        test_upstream_tls_session_is_resumed,
        test_tls13_resumption_hands_out_a_fresh_ticket_each_time,
        test_handshake_failure_reasons_are_readable,
    ], mailshim=MS)

#!/usr/bin/python3
"""tests/integration/lab_smoke.py — prove the lab backends are strict and correct.

Talks to the lab's Postfix and Dovecot DIRECTLY (not through mailshim) and checks
the iRedMail-strict behaviour mailshim has to live with: STARTTLS-only AUTH on
submission, TLS >= 1.2, no plaintext IMAP/POP3 login from an untrusted address,
delivery through LMTP into the Maildirs, and the two trust lines for mailshim
(Postfix XCLIENT and Dovecot login_trusted_networks, both only for 127.0.0.10).

Run with the lab env exported (Python 3 stdlib only, no I/O outside the lab):
    scripts/lab start && eval "$(scripts/lab env)"
    /usr/bin/python3 tests/integration/lab_smoke.py
Prints one line per check and ends with "N passed, M failed"; exit 1 on failure.
"""
import base64
import imaplib
import os
import poplib
import re
import smtplib
import socket
import ssl
import sys
import time
import traceback
import uuid
import warnings

# The TLS 1.0/1.1 check uses deprecated enum values on purpose.
warnings.filterwarnings("ignore", category=DeprecationWarning)

LAB = os.environ.get("MAILSHIM_LAB_DIR", "/tmp/mailshim-lab")
HOST = "127.0.0.1"
SERVER_NAME = "mail.example.test"
CA = os.path.join(LAB, "ca.pem")
MAILSHIM_ADDR = "127.0.0.10"  # the one address the backends trust
LEGACY_ADDR = "127.0.0.2"     # an untrusted "LAN client"


def port(name, base):
    if name in os.environ:
        return int(os.environ[name])
    return base + int(os.environ.get("MAILSHIM_LAB_PORT_OFFSET", "0"))


SMTP_PORT = port("LAB_SMTP_PORT", 20587)
SMTPS_PORT = port("LAB_SMTPS_PORT", 20465)
IMAP_PORT = port("LAB_IMAP_PORT", 20143)
IMAPS_PORT = port("LAB_IMAPS_PORT", 20993)
POP3_PORT = port("LAB_POP3_PORT", 20110)
POP3S_PORT = port("LAB_POP3S_PORT", 20995)

USERS = {
    "alice@example.test": "Alice-Secret-1",   # {SSHA512}
    "taro@example.test": "Taro-Secret-1",     # {CRYPT}$1$... (MD5-crypt)
    "bob@example.test": 'b0b pa"ss\\wd',      # space, double quote, backslash
}
TIMEOUT = 10
# Dovecot's auth penalty (anvil, per remote IP) delays a failed login 2 s, then
# up to 15 s for repeated failures within ~30 s; each wrong-password check uses
# its own source address and a longer timeout so repeated runs stay reliable.
FAIL_TIMEOUT = 25
RUN = uuid.uuid4().hex[:12]

results = []
notes = []


def note(text):
    """Detail printed under the check's ok/FAIL line (reply texts, log lines)."""
    notes.append(text)


def check(name):
    def deco(fn):
        results.append((name, fn))
        return fn
    return deco


def tls_ctx():
    ctx = ssl.create_default_context(cafile=CA)
    return ctx


def maildir_new(user):
    local, domain = user.split("@")
    return os.path.join(LAB, "maildirs", domain, local, "Maildir", "new")


def wait_for_file_containing(directory, token, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isdir(directory):
            for fn in os.listdir(directory):
                try:
                    with open(os.path.join(directory, fn), "rb") as f:
                        if token.encode() in f.read():
                            return os.path.join(directory, fn)
                except OSError:
                    pass
        time.sleep(0.2)
    return None


def wait_for_log(path, pattern, start_offset, timeout=10.0):
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            f.seek(start_offset)
            for line in f.read().decode("utf-8", "replace").splitlines():
                if rx.search(line):
                    return line
        time.sleep(0.2)
    return None


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def message(sender, rcpt, subject):
    return (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@example.test>\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
            f"\r\nlab smoke test {subject}\r\n")


def plain_b64(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


class Line:
    """Minimal CRLF line client over a socket that can be upgraded to TLS."""

    def __init__(self, port, source):
        self.sock = socket.create_connection((HOST, port), timeout=TIMEOUT,
                                             source_address=(source, 0))
        self.buf = b""

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def readline(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise EOFError("connection closed; partial=%r" % self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def smtp_reply(self):
        lines = []
        while True:
            line = self.readline()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def imap_until(self, tag):
        lines = []
        while True:
            line = self.readline()
            lines.append(line)
            if line.startswith(tag + " "):
                return lines

    def starttls(self):
        assert not self.buf, "plaintext left over before TLS: %r" % self.buf
        self.sock = tls_ctx().wrap_socket(self.sock, server_hostname=SERVER_NAME)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class IMAP4SSLFrom(imaplib.IMAP4_SSL):
    """IMAP4_SSL bound to a chosen local source address."""

    def __init__(self, source, *args, **kwargs):
        self._source = source
        super().__init__(*args, **kwargs)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


# ---------------------------------------------------------------- SMTP ----

@check("smtp 587: EHLO (plaintext, from 127.0.0.1) offers STARTTLS, no AUTH, no XCLIENT")
def _():
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=TIMEOUT, source_address=(HOST, 0)) as s:
        code, _ = s.ehlo("client.example.test")
        expect(code == 250, f"EHLO {code}")
        expect(s.has_extn("starttls"), f"no STARTTLS in {s.esmtp_features}")
        expect(not s.has_extn("auth"), f"AUTH offered before TLS: {s.esmtp_features}")
        expect(not s.has_extn("xclient"), "XCLIENT offered to 127.0.0.1")
        expect(not s.has_extn("chunking"), "CHUNKING not discarded")
        expect(not s.has_extn("smtputf8"), "SMTPUTF8 offered")


@check("smtp 587: AUTH before STARTTLS -> 530")
def _():
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=TIMEOUT, source_address=(HOST, 0)) as s:
        s.ehlo("client.example.test")
        code, text = s.docmd("AUTH", "PLAIN " + plain_b64("alice@example.test", USERS["alice@example.test"]))
        expect(code == 530, f"got {code} {text!r}")
        note(f"530 text: {text.decode()!r}")


@check("smtp 587: MAIL before STARTTLS -> 530")
def _():
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=TIMEOUT, source_address=(HOST, 0)) as s:
        s.ehlo("client.example.test")
        code, text = s.docmd("MAIL", "FROM:<alice@example.test>")
        expect(code == 530, f"got {code} {text!r}")


@check("smtp 587: STARTTLS (verified), AUTH alice, send to bob, lands in bob's Maildir/new")
def _():
    subject = f"smoke-587-{RUN}"
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=TIMEOUT, source_address=(HOST, 0)) as s:
        s.ehlo("client.example.test")
        s.starttls(context=tls_ctx())
        s.ehlo("client.example.test")
        expect(s.has_extn("auth"), "no AUTH after STARTTLS")
        auth = s.esmtp_features.get("auth", "")
        expect(set(auth.upper().split()) == {"PLAIN", "LOGIN"}, f"AUTH mechanisms {auth!r}")
        expect(not s.has_extn("xclient"), "XCLIENT offered to 127.0.0.1 after TLS")
        code, text = s.login("alice@example.test", USERS["alice@example.test"])
        expect(code == 235, f"AUTH {code} {text!r}")
        refused = s.sendmail("alice@example.test", ["bob@example.test"],
                             message("alice@example.test", "bob@example.test", subject))
        expect(not refused, f"refused {refused}")
    path = wait_for_file_containing(maildir_new("bob@example.test"), subject)
    expect(path is not None, f"message {subject} not in {maildir_new('bob@example.test')} within 10 s")


@check("smtp 587: wrong password -> 535 (from 127.0.0.3)")
def _():
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=FAIL_TIMEOUT, source_address=("127.0.0.3", 0)) as s:
        s.ehlo("client.example.test")
        s.starttls(context=tls_ctx())
        s.ehlo("client.example.test")
        code, text = s.docmd("AUTH", "PLAIN " + plain_b64("alice@example.test", "wrong"))
        expect(code == 535, f"got {code} {text!r}")
        note(f"535 text: {text.decode()!r}")


@check("smtp 587: AUTH LOGIN challenges and bob's password with space/quote/backslash")
def _():
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=TIMEOUT, source_address=(HOST, 0)) as s:
        s.ehlo("client.example.test")
        s.starttls(context=tls_ctx())
        s.ehlo("client.example.test")
        code, text = s.docmd("AUTH", "LOGIN")
        expect(code == 334 and base64.b64decode(text) == b"Username:", f"{code} {text!r}")
        code, text = s.docmd(base64.b64encode(b"bob@example.test").decode())
        expect(code == 334 and base64.b64decode(text) == b"Password:", f"{code} {text!r}")
        code, text = s.docmd(base64.b64encode(USERS["bob@example.test"].encode()).decode())
        expect(code == 235, f"got {code} {text!r}")


@check("smtp 587: authenticated but unknown local sender -> 550 (reject_unlisted_sender)")
def _():
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=TIMEOUT, source_address=(HOST, 0)) as s:
        s.ehlo("client.example.test")
        s.starttls(context=tls_ctx())
        s.ehlo("client.example.test")
        s.login("alice@example.test", USERS["alice@example.test"])
        s.docmd("MAIL", "FROM:<nobody@example.test>")
        code, text = s.docmd("RCPT", "TO:<bob@example.test>")
        expect(code == 550, f"got {code} {text!r}")
        note(f"550 text: {text.decode()!r}")


@check("smtp 465: implicit TLS, AUTH taro (MD5-CRYPT), send to alice, delivered")
def _():
    subject = f"smoke-465-{RUN}"
    with smtplib.SMTP_SSL(HOST, SMTPS_PORT, timeout=TIMEOUT, context=tls_ctx(),
                          source_address=(HOST, 0)) as s:
        s.ehlo("client.example.test")
        code, _ = s.login("taro@example.test", USERS["taro@example.test"])
        expect(code == 235, f"AUTH {code}")
        refused = s.sendmail("taro@example.test", ["alice@example.test"],
                             message("taro@example.test", "alice@example.test", subject))
        expect(not refused, f"refused {refused}")
    path = wait_for_file_containing(maildir_new("alice@example.test"), subject)
    expect(path is not None, f"message {subject} not delivered to alice")


@check("smtp 587 XCLIENT: offered to 127.0.0.10, ADDR=127.0.0.2 accepted, logged as [127.0.0.2]")
def _():
    subject = f"smoke-xclient-{RUN}"
    log = os.path.join(LAB, "postfix.log")
    start = log_size(log)
    c = Line(SMTP_PORT, MAILSHIM_ADDR)
    try:
        code, _ = c.smtp_reply()
        expect(code == 220, f"banner {code}")
        c.send("EHLO mailshim.example.test")
        c.smtp_reply()
        c.send("STARTTLS")
        code, lines = c.smtp_reply()
        expect(code == 220, f"STARTTLS {lines}")
        c.starttls()
        c.send("EHLO mailshim.example.test")
        code, lines = c.smtp_reply()
        expect(any(l[4:].upper().startswith("XCLIENT") for l in lines), f"no XCLIENT in {lines}")
        note(f"EHLO: {' | '.join(l[4:] for l in lines[1:])}")
        c.send("XCLIENT ADDR=127.0.0.2 PORT=4711 HELO=[127.0.0.2] PROTO=ESMTP")
        code, lines = c.smtp_reply()
        expect(code == 220, f"XCLIENT -> {lines}")
        note(f"XCLIENT -> {lines[-1]!r}")
        c.send("EHLO [127.0.0.2]")
        code, lines = c.smtp_reply()
        expect(code == 250, f"EHLO after XCLIENT {lines}")
        expect(not any(l[4:].upper().startswith("STARTTLS") for l in lines), "STARTTLS offered again")
        c.send("AUTH PLAIN " + plain_b64("alice@example.test", USERS["alice@example.test"]))
        code, lines = c.smtp_reply()
        expect(code == 235, f"AUTH {lines}")
        c.send("MAIL FROM:<alice@example.test>")
        expect(c.smtp_reply()[0] == 250, "MAIL")
        c.send("RCPT TO:<bob@example.test>")
        expect(c.smtp_reply()[0] == 250, "RCPT")
        c.send("DATA")
        expect(c.smtp_reply()[0] == 354, "DATA")
        c.sock.sendall(message("alice@example.test", "bob@example.test", subject).encode() + b".\r\n")
        code, lines = c.smtp_reply()
        expect(code == 250, f"end of DATA {lines}")
        c.send("QUIT")
        c.smtp_reply()
    finally:
        c.close()
    line = wait_for_log(log, r"client=[^,\s]*\[127\.0\.0\.2\]", start)
    expect(line is not None, "postfix.log has no client=...[127.0.0.2] line")
    note(f"log: {line.split(': ', 1)[-1]}")
    expect(wait_for_file_containing(maildir_new("bob@example.test"), subject) is not None,
           "XCLIENT message not delivered")


@check("smtp 587: XCLIENT from 127.0.0.1 (after TLS) -> 550, not offered")
def _():
    c = Line(SMTP_PORT, HOST)
    try:
        c.smtp_reply()
        c.send("EHLO client.example.test")
        c.smtp_reply()
        c.send("STARTTLS")
        c.smtp_reply()
        c.starttls()
        c.send("EHLO client.example.test")
        code, lines = c.smtp_reply()
        expect(not any(l[4:].upper().startswith("XCLIENT") for l in lines), "XCLIENT offered")
        c.send("XCLIENT ADDR=127.0.0.2")
        code, lines = c.smtp_reply()
        expect(code >= 500, f"XCLIENT accepted from 127.0.0.1: {lines}")
        note(f"XCLIENT -> {lines[-1]!r}")
    finally:
        c.close()


# ---------------------------------------------------------------- IMAP ----

@check("imap 993: LOGIN as alice, taro (MD5-CRYPT) and bob (quoted password); bob sees the message")
def _():
    for user, password in USERS.items():
        with imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=tls_ctx(), timeout=TIMEOUT) as m:
            typ, data = m.login(user, password)
            expect(typ == "OK", f"{user}: {typ} {data}")
            typ, data = m.select("INBOX")
            expect(typ == "OK", f"{user}: SELECT {typ} {data}")
            if user.startswith("bob"):
                typ, data = m.search(None, "SUBJECT", f'"smoke-587-{RUN}"')
                expect(typ == "OK" and data[0].split(), f"bob: message not found: {data}")
                typ, caps = m.capability()
                note(f"post-login CAPABILITY: {caps[0].decode()}")
            m.logout()


@check("imap 993: wrong password -> NO [AUTHENTICATIONFAILED] (from 127.0.0.4)")
def _():
    with IMAP4SSLFrom("127.0.0.4", HOST, IMAPS_PORT, ssl_context=tls_ctx(), timeout=FAIL_TIMEOUT) as m:
        try:
            m.login("alice@example.test", "wrong")
        except imaplib.IMAP4.error as exc:
            expect("AUTHENTICATIONFAILED" in str(exc), str(exc))
            note(f"reply: {exc}")
            return
        raise AssertionError("wrong password accepted")


@check("imap 143 from 127.0.0.2: LOGINDISABLED, plaintext LOGIN refused with PRIVACYREQUIRED")
def _():
    c = Line(IMAP_PORT, LEGACY_ADDR)
    try:
        greet = c.readline()
        expect(greet.startswith("* OK"), greet)
        expect("LOGINDISABLED" in greet and "STARTTLS" in greet, f"greeting {greet}")
        expect("AUTH=" not in greet, f"SASL mechanisms advertised: {greet}")
        c.send("a LOGIN alice@example.test Alice-Secret-1")
        lines = c.imap_until("a")
        expect(lines[-1].startswith("a NO") and "PRIVACYREQUIRED" in lines[-1], f"{lines}")
        for l in lines:
            note(f"S: {l}")
        c.send("b AUTHENTICATE PLAIN")
        lines = c.imap_until("b")
        expect(lines[-1].startswith("b NO"), f"{lines}")
        note(f"S: {lines[-1]}")
    finally:
        c.close()


@check("imap 143 from 127.0.0.10 (trusted): ID x-originating-ip + plaintext LOGIN ok, logged rip=127.0.0.2")
def _():
    log = os.path.join(LAB, "dovecot.log")
    start = log_size(log)
    c = Line(IMAP_PORT, MAILSHIM_ADDR)
    try:
        greet = c.readline()
        expect("LOGINDISABLED" not in greet, f"trusted source still LOGINDISABLED: {greet}")
        c.send('a ID ("x-originating-ip" "127.0.0.2" "x-originating-port" "4711" "name" "lab_smoke")')
        lines = c.imap_until("a")
        expect(lines[-1].startswith("a OK"), f"{lines}")
        c.send("b LOGIN alice@example.test Alice-Secret-1")
        lines = c.imap_until("b")
        expect(lines[-1].startswith("b OK"), f"{lines}")
        c.send("c LOGOUT")
        c.imap_until("c")
    finally:
        c.close()
    line = wait_for_log(log, r"imap-login: Info: Login: user=<alice@example.test>.*rip=127\.0\.0\.2", start)
    expect(line is not None, "dovecot.log has no Login ... rip=127.0.0.2 line")
    note(f"log: {line}")


@check("imap 993: TLS 1.0 and TLS 1.1 handshakes are refused, TLS 1.2 works")
def _():
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(CA)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let OpenSSL 3 offer old versions at all
        ctx.minimum_version = version
        ctx.maximum_version = version
        s = socket.create_connection((HOST, IMAPS_PORT), timeout=TIMEOUT)
        try:
            ctx.wrap_socket(s, server_hostname=SERVER_NAME)
        except (ssl.SSLError, OSError) as exc:
            note(f"{version.name}: refused ({exc.__class__.__name__}: {exc})")
        else:
            raise AssertionError(f"{version.name} handshake succeeded")
        finally:
            s.close()
    ctx = tls_ctx()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((HOST, IMAPS_PORT), timeout=TIMEOUT) as s:
        with ctx.wrap_socket(s, server_hostname=SERVER_NAME) as t:
            expect(t.version() == "TLSv1.2", t.version())
            note(f"TLSv1.2 cipher: {t.cipher()[0]}")


# ---------------------------------------------------------------- POP3 ----

@check("pop3 995: USER/PASS alice and bob (STAT works)")
def _():
    for user in ("alice@example.test", "bob@example.test"):
        p = poplib.POP3_SSL(HOST, POP3S_PORT, context=tls_ctx(), timeout=TIMEOUT)
        try:
            p.user(user)
            resp = p.pass_(USERS[user])
            expect(resp.startswith(b"+OK"), f"{user}: {resp!r}")
            count, size = p.stat()
            expect(count >= 1, f"{user}: empty mailbox")
        finally:
            p.quit()


@check("pop3 995 from 127.0.0.10 (trusted): [XCLIENT] greeting, XCLIENT ADDR=127.0.0.2, logged rip=127.0.0.2")
def _():
    log = os.path.join(LAB, "dovecot.log")
    start = log_size(log)
    c = Line(POP3S_PORT, MAILSHIM_ADDR)
    try:
        c.sock = tls_ctx().wrap_socket(c.sock, server_hostname=SERVER_NAME)
        greet = c.readline()
        expect(greet.startswith("+OK [XCLIENT]"), f"greeting {greet!r}")
        c.send("XCLIENT ADDR=127.0.0.2 PORT=4711")
        line = c.readline()
        expect(line.startswith("+OK"), f"XCLIENT -> {line!r}")
        note(f"XCLIENT -> {line!r}")
        c.send("USER taro@example.test")
        expect(c.readline().startswith("+OK"), "USER")
        c.send("PASS " + USERS["taro@example.test"])
        line = c.readline()
        expect(line.startswith("+OK"), f"PASS -> {line!r}")
        c.send("QUIT")
        c.readline()
    finally:
        c.close()
    line = wait_for_log(log, r"pop3-login: Info: Login: user=<taro@example.test>.*rip=127\.0\.0\.2", start)
    expect(line is not None, "dovecot.log has no pop3 Login ... rip=127.0.0.2 line")
    note(f"log: {line}")


@check("pop3 110 from 127.0.0.2: USER refused without TLS")
def _():
    c = Line(POP3_PORT, LEGACY_ADDR)
    try:
        greet = c.readline()
        expect(greet.startswith("+OK"), greet)
        c.send("USER alice@example.test")
        line = c.readline()
        expect(line.startswith("-ERR"), line)
        note(f"S: {line}")
    finally:
        c.close()


def main():
    if not os.path.exists(CA):
        print(f"no {CA}: run scripts/lab start first (and export its env)", file=sys.stderr)
        return 2
    print(f"lab {LAB}: smtp {SMTP_PORT} smtps {SMTPS_PORT} imap {IMAP_PORT} imaps {IMAPS_PORT} "
          f"pop3 {POP3_PORT} pop3s {POP3S_PORT}")
    passed = failed = 0
    for name, fn in results:
        notes.clear()
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 — report every failure, keep going
            failed += 1
            print(f"FAIL {name}: {exc.__class__.__name__}: {exc}")
            for text in notes:
                print(f"       {text}")
            notes.clear()
            if os.environ.get("LAB_SMOKE_VERBOSE"):
                traceback.print_exc()
        else:
            passed += 1
            print(f"ok   {name}")
        for text in notes:
            print(f"       {text}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

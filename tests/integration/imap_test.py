"""IMAP through the real mailshim binary to the real strict lab Dovecot, with
real clients (Python imaplib, curl) and scripted raw sessions for literals,
SASL, the legacy/modern rules, STARTTLS injection, IDLE, a 20 MB APPEND,
pipelining and the error paths. Messages are submitted through mailshim's
own submission port and read back through its IMAP ports."""

import base64
import hashlib
import imaplib
import os
import re
import socket
import subprocess
import time
import uuid

import harness as h
from harness import LAB, LEGACY, MODERN, Raw

ALICE, ALICE_PW = h.USERS["alice"]
BOB, BOB_PW = h.USERS["bob"]
TARO, TARO_PW = h.USERS["taro"]
CA = os.path.join(LAB, "ca.pem")
DOVECOT_LOG = os.path.join(LAB, "dovecot.log")
MS = h.Mailshim()
LOGIN_TIMEOUT = 60  # Dovecot's auth penalty can delay a reply by up to 15 s

# Capabilities only Dovecot has after login; mailshim never offers them before.
BACKEND_ONLY = ("IDLE", "MOVE", "COMPRESS=DEFLATE")


def marker():
    return "mailshim-" + uuid.uuid4().hex[:12]


def plain_b64(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


class IMAP4(imaplib.IMAP4):
    """imaplib.IMAP4 connecting from a chosen local address."""

    def __init__(self, port, source=MODERN, timeout=LOGIN_TIMEOUT):
        self.source = source
        super().__init__("127.0.0.1", port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


class IMAP4_SSL(imaplib.IMAP4_SSL):
    """imaplib.IMAP4_SSL (lab CA, name checked) connecting from a chosen local address."""

    def __init__(self, port, source=MODERN, timeout=LOGIN_TIMEOUT):
        self.source = source
        super().__init__("127.0.0.1", port, ssl_context=h.tls_context(), timeout=timeout)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def caps_of(text):
    m = re.search(r"\[CAPABILITY ([^\]]*)\]", text) or re.search(r"^\* CAPABILITY (.*)$", text, re.M)
    assert m, f"no capability list in {text!r}"
    return m.group(1).upper().split()


def raw_login_ok(c, tag, lines):
    assert lines[-1].startswith(tag + " OK"), lines
    return lines


def read_literal_response(c, tag, timeout=120):
    """Reads until the tagged reply, handling {n} literals in untagged lines."""
    c.sock.settimeout(timeout)
    out = b""
    while True:
        while b"\r\n" not in c.buf:
            chunk = c.sock.recv(1 << 20)
            if not chunk:
                raise EOFError(out[-300:] + c.buf[-300:])
            c.buf += chunk
        line, c.buf = c.buf.split(b"\r\n", 1)
        out += line + b"\r\n"
        m = re.search(rb"\{(\d+)\}$", line)
        if m:
            n = int(m.group(1))
            while len(c.buf) < n:
                chunk = c.sock.recv(1 << 20)
                if not chunk:
                    raise EOFError("closed inside a literal")
                c.buf += chunk
            out += c.buf[:n]
            c.buf = c.buf[n:]
            continue
        if line.startswith(tag.encode() + b" "):
            return out


# ---- setup -------------------------------------------------------------------

SEEDED = {}


def test_check_config_and_seed_mailboxes():
    out = subprocess.run([h.BIN, "--check-config", os.path.join(LAB, "mailshim.toml")], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "6 listeners" in out.stdout, out.stdout
    # One message for every user, submitted through mailshim, so that every
    # INBOX has something to FETCH.
    for key, (user, _) in h.USERS.items():
        m = marker()
        h.submit(ALICE, ALICE_PW, user, m)
        SEEDED[key] = m
    for key, (user, _) in h.USERS.items():
        h.wait_for_message(user, SEEDED[key])


# ---- real clients --------------------------------------------------------------

def check_session(M, who):
    user, password = h.USERS[who]
    pre = [c.decode() if isinstance(c, bytes) else c for c in M.capabilities]
    for cap in BACKEND_ONLY:
        assert cap not in pre, f"pre-login capability {cap} is not mailshim's own: {pre}"
    typ, data = M.login(user, password)  # imaplib quotes bob's '"' and '\'
    assert typ == "OK", (typ, data)
    ok_caps = caps_of(data[0].decode())
    typ, data = M.capability()
    assert typ == "OK", (typ, data)
    post = data[0].decode().upper().split()
    for cap in BACKEND_ONLY:
        assert cap in ok_caps, f"{cap} missing from the login OK: {ok_caps}"
        assert cap in post, f"{cap} missing from post-login CAPABILITY: {post}"
    typ, data = M.select("INBOX")
    assert typ == "OK" and int(data[0]) >= 1, (typ, data)
    typ, data = M.search(None, "SUBJECT", SEEDED[who])
    assert typ == "OK" and data[0].split(), (typ, data, SEEDED[who])
    num = data[0].split()[-1]
    typ, data = M.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and SEEDED[who].encode() in data[0][1], (typ, data)
    typ, data = M.logout()
    assert typ == "BYE", (typ, data)


def test_imaplib_imaps_all_users():
    for who in ("alice", "taro", "bob"):  # SSHA512, MD5-CRYPT, password with space/quote/backslash
        M = IMAP4_SSL(h.port("imaps"))
        check_session(M, who)


def test_imaplib_starttls_all_users():
    for who in ("alice", "taro", "bob"):
        M = IMAP4(h.port("imap"))
        pre = [c.decode() if isinstance(c, bytes) else c for c in M.capabilities]
        assert "STARTTLS" in pre and "LOGINDISABLED" in pre, pre
        assert not any(c.startswith("AUTH=") for c in pre), pre
        M.starttls(ssl_context=h.tls_context())
        tls_caps = [c.decode() if isinstance(c, bytes) else c for c in M.capabilities]
        assert "AUTH=PLAIN" in tls_caps and "STARTTLS" not in tls_caps and "LOGINDISABLED" not in tls_caps, tls_caps
        check_session(M, who)


def test_imaplib_logout_reply_arrives_on_both_listeners():
    # The backend's "* BYE" + tagged OK must reach the client before the close.
    for name in ("imaps", "imap"):
        c = Raw(name, tls=(name == "imaps"), timeout=LOGIN_TIMEOUT)
        c.line()
        if name == "imap":
            c.send("s STARTTLS\r\n")
            assert c.line().startswith("s OK")
            c.starttls()
        c.send(f"l LOGIN {ALICE} {ALICE_PW}\r\n")
        raw_login_ok(c, "l", c.until_tagged("l"))
        c.send("z LOGOUT\r\n")
        lines = c.until_tagged("z")
        assert lines[0].startswith("* BYE") and lines[-1].startswith("z OK"), (name, lines)
        c.close()


def test_bob_password_as_synchronizing_literal():
    c = Raw("imaps", tls=True, timeout=LOGIN_TIMEOUT)
    c.line()
    pw = BOB_PW.encode()
    c.send(f"a LOGIN {{{len(BOB)}}}\r\n")
    assert c.line().startswith("+"), "no continuation for the user literal"
    c.send(BOB + f" {{{len(pw)}}}\r\n")
    assert c.line().startswith("+"), "no continuation for the password literal"
    c.send(pw + b"\r\n")
    caps = caps_of(raw_login_ok(c, "a", c.until_tagged("a"))[-1])
    assert "IDLE" in caps, caps
    c.send("b SELECT INBOX\r\n")
    assert c.until_tagged("b")[-1].startswith("b OK")
    c.send("c LOGOUT\r\n")
    assert c.until_tagged("c")[-1].startswith("c OK")
    c.close()


def test_bob_password_as_non_synchronizing_literal():
    c = Raw("imaps", tls=True, timeout=LOGIN_TIMEOUT)
    c.line()
    pw = BOB_PW.encode()
    c.send(b"a LOGIN " + BOB.encode() + b" {%d+}\r\n" % len(pw) + pw + b"\r\n")  # one write
    lines = c.until_tagged("a")
    assert not any(l.startswith("+") for l in lines), lines
    raw_login_ok(c, "a", lines)
    c.send("b SELECT INBOX\r\n")
    assert c.until_tagged("b")[-1].startswith("b OK")
    c.close()


def test_bob_authenticate_plain_sasl_ir_and_continuation():
    c = Raw("imaps", tls=True, timeout=LOGIN_TIMEOUT)
    c.line()
    c.send(f"a AUTHENTICATE PLAIN {plain_b64(BOB, BOB_PW)}\r\n")
    caps = caps_of(raw_login_ok(c, "a", c.until_tagged("a"))[-1])
    assert "MOVE" in caps, caps
    c.send("b SELECT INBOX\r\n")
    assert c.until_tagged("b")[-1].startswith("b OK")
    c.close()
    # Without SASL-IR: "+ " continuation, then the response line.
    c = Raw("imaps", tls=True, timeout=LOGIN_TIMEOUT)
    c.line()
    c.send("a AUTHENTICATE PLAIN\r\n")
    assert c.line().startswith("+")
    c.send(plain_b64(BOB, BOB_PW) + "\r\n")
    raw_login_ok(c, "a", c.until_tagged("a"))
    c.close()


def curl(*args, timeout=90):
    return subprocess.run(["curl", "-sS", "--max-time", "60", "--cacert", CA, *args],
                          capture_output=True, text=True, timeout=timeout)


def test_curl_imaps_inbox():
    out = curl(f"imaps://127.0.0.1:{h.port('imaps')}/INBOX", "--user", f"{BOB}:{BOB_PW}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "INBOX" in out.stdout, out.stdout
    # Fetch bob's seeded message by searching for it.
    out = curl(f"imaps://127.0.0.1:{h.port('imaps')}/INBOX", "--user", f"{BOB}:{BOB_PW}",
               "-X", f"SEARCH SUBJECT {SEEDED['bob']}")
    assert out.returncode == 0 and re.search(r"\* SEARCH \d", out.stdout), out.stdout + out.stderr
    num = out.stdout.split()[-1]
    out = curl(f"imaps://127.0.0.1:{h.port('imaps')}/INBOX;MAILINDEX={num}", "--user", f"{BOB}:{BOB_PW}")
    assert out.returncode == 0 and SEEDED["bob"] in out.stdout, out.stdout + out.stderr


def test_curl_imap_starttls_ssl_reqd():
    out = curl("--ssl-reqd", f"imap://127.0.0.1:{h.port('imap')}/INBOX", "--user", f"{TARO}:{TARO_PW}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "INBOX" in out.stdout, out.stdout
    out = curl("--ssl-reqd", f"imap://127.0.0.1:{h.port('imap')}/INBOX", "--user", f"{TARO}:{TARO_PW}",
               "-X", f"SEARCH SUBJECT {SEEDED['taro']}")
    assert out.returncode == 0 and re.search(r"\* SEARCH \d", out.stdout), out.stdout + out.stderr


# ---- failures, rules, attacks ----------------------------------------------------

def test_wrong_password_then_correct_login_same_session():
    M = IMAP4_SSL(h.port("imaps"), source="127.0.0.4")
    t0 = time.time()
    try:
        M.login(ALICE, "wrong-password")
        raise AssertionError("login with a wrong password succeeded")
    except imaplib.IMAP4.error as e:
        assert "[AUTHENTICATIONFAILED]" in str(e), e
    assert time.time() - t0 >= 1.0, "no auth penalty: did the backend see the attempt?"
    typ, data = M.login(ALICE, ALICE_PW)  # same session
    assert typ == "OK", (typ, data)
    assert M.select("INBOX")[0] == "OK"
    M.logout()
    # Raw: the exact tagged NO, then a correct LOGIN on the same connection.
    c = Raw("imaps", source="127.0.0.4", tls=True, timeout=LOGIN_TIMEOUT)
    c.line()
    c.send(f"a LOGIN {TARO} not-the-password\r\n")
    lines = c.until_tagged("a")
    assert lines[-1].startswith("a NO [AUTHENTICATIONFAILED]"), lines
    c.send(f"b LOGIN {TARO} {TARO_PW}\r\n")
    raw_login_ok(c, "b", c.until_tagged("b"))
    c.close()


def test_legacy_lan_plaintext_login_and_rip_via_id():
    dlog = h.LogWatch(DOVECOT_LOG)
    c = Raw("imap", source=LEGACY, timeout=LOGIN_TIMEOUT)
    greeting = c.line()
    caps = caps_of(greeting)
    assert "AUTH=PLAIN" in caps and "LOGINDISABLED" not in caps, greeting
    c.send("a CAPABILITY\r\n")
    lines = c.until_tagged("a")
    caps = caps_of("\r\n".join(lines))
    assert "AUTH=PLAIN" in caps and "LOGINDISABLED" not in caps and "STARTTLS" in caps, lines
    c.send(f"b LOGIN {ALICE} {ALICE_PW}\r\n")
    raw_login_ok(c, "b", c.until_tagged("b"))
    c.send("c SELECT INBOX\r\n")
    assert c.until_tagged("c")[-1].startswith("c OK")
    c.send("d LOGOUT\r\n")
    c.until_tagged("d")
    c.close()
    login = dlog.wait(r"imap-login: Info: Login: user=<alice@example\.test>[^\n]*").group(0)
    assert re.search(r"\brip=127\.0\.0\.2\b", login), f"client address not passed on (ID): {login}"
    h.log_contains(MS.log_path, r"quirk .*rip=127\.0\.0\.2.*quirk=plaintext_auth")


def test_rip_forwarded_via_id_on_imaps():
    dlog = h.LogWatch(DOVECOT_LOG)
    M = IMAP4_SSL(h.port("imaps"), source=LEGACY)
    M.login(TARO, TARO_PW)
    M.logout()
    login = dlog.wait(r"imap-login: Info: Login: user=<taro@example\.test>[^\n]*").group(0)
    assert re.search(r"\brip=127\.0\.0\.2\b", login), f"client address not passed on (ID): {login}"


def test_modern_plaintext_login_refused_and_not_forwarded():
    dlog = h.LogWatch(DOVECOT_LOG)
    c = Raw("imap", source=MODERN, timeout=LOGIN_TIMEOUT)
    rport = c.sock.getsockname()[1]
    greeting = c.line()
    caps = caps_of(greeting)
    assert "LOGINDISABLED" in caps and "STARTTLS" in caps, greeting
    assert not any(x.startswith("AUTH=") for x in caps), greeting
    c.send(f"a LOGIN {ALICE} {ALICE_PW}\r\n")
    lines = c.until_tagged("a")
    assert lines[-1].startswith("a NO [PRIVACYREQUIRED]"), lines
    c.send(f"b AUTHENTICATE PLAIN {plain_b64(ALICE, ALICE_PW)}\r\n")
    lines = c.until_tagged("b")
    assert lines[-1].startswith("b NO [PRIVACYREQUIRED]"), lines
    c.send(f"c LOGIN {ALICE} {{{len(ALICE_PW)}}}\r\n")  # never solicit a password literal
    line = c.line()
    assert line.startswith("c NO [PRIVACYREQUIRED]"), line
    c.send("d NOOP\r\n")
    assert c.until_tagged("d")[-1].startswith("d OK")
    c.close()
    sid = h.session_id(MS, rport)
    time.sleep(1.0)
    session_lines = [l for l in MS.log_text().splitlines() if f"session={sid}" in l]
    assert not any(re.search(r"\blogin session=", l) for l in session_lines), session_lines
    assert not any("user=" in l for l in session_lines), session_lines
    assert not any("side=upstream" in l for l in session_lines), session_lines
    dc = dlog.lines(r"imap-login")
    assert not dc, f"credentials reached Dovecot: {dc}"


def test_starttls_command_injection_is_never_executed():
    c = Raw("imap", source=MODERN)
    c.line()
    c.send("a STARTTLS\r\nb CAPABILITY\r\n")  # one write
    line = c.line()
    assert line.startswith("a OK"), line
    assert c.buf == b"", f"more after the STARTTLS OK in plaintext: {c.buf!r}"
    c.starttls()
    assert c.pending(0.7) == b"", "unsolicited reply inside TLS: the injected command was executed"
    c.send("c NOOP\r\n")
    lines = c.until_tagged("c")
    assert not any(l.startswith("b ") or l.startswith("* CAPABILITY") for l in lines), lines
    assert lines[-1].startswith("c OK"), lines
    c.send(f"d LOGIN {ALICE} {ALICE_PW}\r\n")
    lines = c.until_tagged("d")
    assert not any(l.startswith("b ") for l in lines), lines
    raw_login_ok(c, "d", lines)
    c.close()
    h.log_contains(MS.log_path, r"discarded \d+ bytes pipelined after STARTTLS")


def test_idle_sees_new_message():
    c = Raw("imaps", tls=True, timeout=LOGIN_TIMEOUT)
    c.line()
    c.send(f"a LOGIN {TARO} {TARO_PW}\r\n")
    raw_login_ok(c, "a", c.until_tagged("a"))
    c.send("b SELECT INBOX\r\n")
    lines = c.until_tagged("b")
    exists = max(int(m.group(1)) for l in lines if (m := re.match(r"\* (\d+) EXISTS", l)))
    c.send("c IDLE\r\n")
    assert c.line().startswith("+"), "no IDLE continuation"
    m = marker()
    h.submit(ALICE, ALICE_PW, TARO, m)
    c.sock.settimeout(15.0)
    deadline = time.time() + 15
    seen = None
    while time.time() < deadline and seen is None:
        line = c.line()
        n = re.match(r"\* (\d+) EXISTS", line)
        if n and int(n.group(1)) > exists:
            seen = line
    assert seen, "no EXISTS within 15 s"
    c.send("DONE\r\n")
    assert c.until_tagged("c")[-1].startswith("c OK")
    c.close()


def test_append_and_fetch_20_mb_message():
    m = marker()
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/0123456789ab\r\n"  # 78 bytes
    head = (f"From: {ALICE}\r\nTo: {ALICE}\r\nSubject: {m}\r\nMessage-ID: <{m}@example.test>\r\n\r\n").encode()
    body = line * ((20 * 1024 * 1024) // len(line) + 1)
    msg = head + body
    want = hashlib.sha256(msg).hexdigest()
    box = "Big-" + m
    M = IMAP4_SSL(h.port("imaps"), timeout=180)
    M.login(ALICE, ALICE_PW)
    try:
        assert M.create(box)[0] == "OK"
        typ, data = M.append(box, None, None, msg)  # synchronizing literal
        assert typ == "OK", (typ, data)
        uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
        M.select(box, readonly=True)
        typ, data = M.uid("FETCH", uid, "(BODY.PEEK[])")
        assert typ == "OK", (typ, data[:1])
        got = data[0][1]
        assert len(got) == len(msg), (len(got), len(msg))
        assert hashlib.sha256(got).hexdigest() == want
    finally:
        try:
            M.close()
        except imaplib.IMAP4.error:
            pass
        M.delete(box)
        M.logout()


def test_pipelined_id_authenticate_capability_like_new_outlook():
    dlog = h.LogWatch(DOVECOT_LOG)
    c = Raw("imaps", tls=True, timeout=LOGIN_TIMEOUT)
    c.line()
    c.send('1 ID ("name" "Microsoft Office 365" "version" "15.20.9160.4" "vendor" "Microsoft Corporation" '
           '"support-url" "https://support.microsoft.com/")\r\n'
           f"2 AUTHENTICATE PLAIN {plain_b64(ALICE, ALICE_PW)}\r\n"
           "3 CAPABILITY\r\n")  # one write
    lines = c.until_tagged("1")
    assert lines[0].startswith("* ID ") and lines[-1].startswith("1 OK"), lines
    lines = c.until_tagged("2")
    raw_login_ok(c, "2", lines)
    lines = c.until_tagged("3")
    assert lines[-1].startswith("3 OK"), lines
    caps = caps_of("\r\n".join(lines))
    for cap in BACKEND_ONLY:
        assert cap in caps, f"3 CAPABILITY was not answered by the backend: {lines}"
    c.send("4 LOGOUT\r\n")
    c.until_tagged("4")
    c.close()
    # The client's own ID fields reach Dovecot next to x-originating-ip.
    dlog.wait(r"imap-login: Info: ID sent: x-originating-ip=127\.0\.0\.1\b.*name=Microsoft Office 365")


def test_backend_down_gives_bye_unavailable_at_once():
    down = h.down_mailshim("mailshim-imap-down")
    down.start(wait_ports=("imap_down",))
    try:
        for name, tls in (("imaps_down", True), ("imap_down", False)):
            c = Raw(name, source=LEGACY, tls=tls)
            assert c.line().startswith("* OK")
            t0 = time.time()
            c.send(f"a LOGIN {ALICE} {ALICE_PW}\r\n")
            line = c.line()
            elapsed = time.time() - t0
            assert line.startswith("* BYE [UNAVAILABLE]"), line
            assert c.closed(3.0), "connection not closed after BYE"
            assert elapsed < 5.0, f"BYE took {elapsed:.1f}s"
            c.close()
    finally:
        assert down.stop() == 0, down.log_text()


def test_overlong_line_gets_bad_and_session_continues():
    c = Raw("imaps", tls=True, timeout=LOGIN_TIMEOUT)
    c.line()
    c.send("a NOOP " + "x" * 10240 + "\r\n")
    line = c.line()
    assert re.match(r"(a|\*) BAD", line), line
    c.send("b NOOP\r\n")
    lines = c.until_tagged("b")
    assert lines[-1].startswith("b OK"), lines
    c.send(f"c LOGIN {ALICE} {ALICE_PW}\r\n")
    raw_login_ok(c, "c", c.until_tagged("c"))
    c.close()


def test_huge_literal_announcement_gets_bad_without_hang():
    c = Raw("imaps", tls=True, timeout=10)
    c.line()
    t0 = time.time()
    c.send("a LOGIN {2147483648}\r\n")
    line = c.line()
    assert line.startswith("a BAD"), line
    assert time.time() - t0 < 5.0
    c.send("b NOOP\r\n")
    lines = c.until_tagged("b")
    assert lines[-1].startswith("b OK"), lines
    c.close()


if __name__ == "__main__":
    h.run([
        test_check_config_and_seed_mailboxes,
        test_imaplib_imaps_all_users,
        test_imaplib_starttls_all_users,
        test_imaplib_logout_reply_arrives_on_both_listeners,
        test_bob_password_as_synchronizing_literal,
        test_bob_password_as_non_synchronizing_literal,
        test_bob_authenticate_plain_sasl_ir_and_continuation,
        test_curl_imaps_inbox,
        test_curl_imap_starttls_ssl_reqd,
        test_legacy_lan_plaintext_login_and_rip_via_id,
        test_rip_forwarded_via_id_on_imaps,
        test_modern_plaintext_login_refused_and_not_forwarded,
        test_starttls_command_injection_is_never_executed,
        test_idle_sees_new_message,
        test_append_and_fetch_20_mb_message,
        test_pipelined_id_authenticate_capability_like_new_outlook,
        test_overlong_line_gets_bad_and_session_continues,
        test_huge_literal_announcement_gets_bad_without_hang,
        test_backend_down_gives_bye_unavailable_at_once,
        test_wrong_password_then_correct_login_same_session,
    ], mailshim=MS)

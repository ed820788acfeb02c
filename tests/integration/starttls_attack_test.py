"""STARTTLS / NO STARTTLS attack suite: every case of client-quirks.md
section 6, numbered as there (S6.<n>-<protocol>-<variant>).

(S) cases drive mailshim's STARTTLS listeners with a scripted client.
(C) cases put mailshim in front of evil_backend.py (a scripted malicious
backend) and check that mailshim never sends credentials outside a verified
TLS leg, ignores everything the backend injected in plaintext, and gives the
client a clear temporary failure when TLS toward the backend is impossible.
Results are tabulated in docs/security/starttls.md.
"""

import base64
import os
import socket
import ssl
import time

import evil_backend as eb
import harness as h
from harness import Raw

LABX = eb.Lab(delta=141)
MS = eb.evil_mailshim(LABX, "atk", 140)
SMTP, IMAP, POP3 = LABX.backends["smtp"], LABX.backends["imap"], LABX.backends["pop3"]
CERT = LABX.certs.ctx
USER, PW = eb.VICTIM
SECRETS = eb.secret_forms(USER, PW)
PLAIN_B64 = base64.b64encode(("\0%s\0%s" % (USER, PW)).encode()).decode()
ATTACKER_B64 = base64.b64encode(b"\0attacker@example.test\0attacker-pw").decode()

CASES, case = eb.case_registry()


# ---- assertions ------------------------------------------------------------------

def no_secret_outside_tls(conn):
    plain = conn.data(tls=False)
    for s in SECRETS:
        assert s not in plain, "credential form %r reached the backend in plaintext" % s
    for verb in (rb"(?mi)^\S* ?AUTH", rb"(?mi)^\S+ (LOGIN|AUTHENTICATE)", rb"(?mi)^(USER|PASS|APOP) "):
        assert not conn.saw(verb, tls=False), "login command in plaintext: %r" % plain


def no_secret_at_all(conn):
    everything = conn.data()
    for s in SECRETS:
        assert s not in everything, "credential form %r reached the backend" % s
    assert not conn.saw(rb"(?mi)^(\S+ )?(AUTH|AUTHENTICATE|LOGIN|USER|PASS|APOP)\b"), \
        "a login command reached the backend: %r" % everything


def nothing_pipelined(conn):
    assert conn.after_starttls == b"", "mailshim wrote %r behind its STARTTLS" % conn.after_starttls


def clean_client_text(text, *words):
    for w in words:
        assert w.lower() not in text.lower(), "client saw %r: %r" % (w, text)


# ---- clients (through mailshim's implicit-TLS listeners) ---------------------------

def read_all(r, until=None, wait=0.2):
    """Lines until one matches `until` (or EOF / quiet)."""
    lines = []
    while True:
        try:
            r.sock.settimeout(wait if until is None else 8.0)
            line = r.line()
        except (EOFError, socket.timeout, TimeoutError, ssl.SSLError, ConnectionResetError):
            return lines
        finally:
            r.sock.settimeout(10.0)
        lines.append(line)
        if until and until(line):
            return lines


def smtp_login(mech="plain"):
    r = Raw("smtps_atk", tls=True)
    assert r.smtp_reply()[0] == 220
    r.send("EHLO client.example.test\r\n")
    assert r.smtp_reply()[0] == 250
    if mech == "plain":
        r.send("AUTH PLAIN %s\r\n" % PLAIN_B64)
    else:
        r.send("AUTH LOGIN\r\n")
        assert r.line() == "334 VXNlcm5hbWU6"
        r.send(base64.b64encode(USER.encode()) + b"\r\n")
        assert r.line() == "334 UGFzc3dvcmQ6"
        r.send(base64.b64encode(PW.encode()) + b"\r\n")
    code, lines = r.smtp_reply()
    return r, code, lines


def imap_login():
    r = Raw("imaps_atk", tls=True)
    greeting = r.line()
    assert greeting.startswith("* OK"), greeting
    r.send('a LOGIN "%s" "%s"\r\n' % (USER, PW))
    lines = [greeting] + read_all(r, until=lambda x: x.startswith("a "))
    return r, lines


def pop3_login():
    r = Raw("pop3s_atk", tls=True)
    greeting = r.line()
    assert greeting.startswith("+OK"), greeting
    r.send("USER %s\r\n" % USER)
    u = r.line()
    r.send("PASS %s\r\n" % PW)
    lines = [greeting, u] + read_all(r, until=lambda x: x.startswith(("+OK", "-ERR")))
    return r, lines


def login(proto):
    """Logs the victim in through mailshim; returns (ok, tempfail, client text)."""
    if proto == "smtp":
        r, code, lines = smtp_login()
        r.close()
        text = "\n".join(lines)
        return code == 235, code in (421, 454) and lines[-1][4:5] == "4", text
    if proto == "imap":
        r, lines = imap_login()
        r.close()
        text = "\n".join(lines)
        last = lines[-1] if lines else ""
        return last.startswith("a OK"), "[UNAVAILABLE]" in text and not last.startswith("a OK"), text
    r, lines = pop3_login()
    r.close()
    text = "\n".join(lines)
    return lines[-1].startswith("+OK"), lines[-1].startswith("-ERR [SYS/TEMP]"), text


BACKEND = {"smtp": SMTP, "imap": IMAP, "pop3": POP3}
GOOD = {"smtp": lambda **kw: eb.smtp_script(CERT["good"], **kw),
        "imap": lambda **kw: eb.imap_script(CERT["good"], **kw),
        "pop3": lambda **kw: eb.pop3_script(CERT["good"], **kw)}


def expect_ok(proto, script, *hidden):
    """The attack is absorbed: login works over the verified TLS leg, the
    credentials never crossed in plaintext, the client saw none of `hidden`."""
    be = BACKEND[proto]
    be.use(script)
    ok, _, text = login(proto)
    conn = be.wait_done()
    assert ok, "login failed: %s (backend: %s)" % (text, conn.error)
    no_secret_outside_tls(conn)
    nothing_pipelined(conn)
    clean_client_text(text, *hidden)
    return conn, text


def expect_tempfail(proto, script, log_pattern=None, *hidden):
    """mailshim refuses: the client gets a temporary failure, the backend no credentials."""
    be = BACKEND[proto]
    watch = h.LogWatch(MS.log_path)
    be.use(script)
    ok, tempfail, text = login(proto)
    conn = be.wait_done()
    assert not ok and tempfail, "expected a temporary failure, client got: %s" % text
    no_secret_at_all(conn)
    clean_client_text(text, *hidden)
    watch.wait(r"(login .*result=tempfail|upstream .*error=)", timeout=3)
    if log_pattern:
        watch.wait(log_pattern)
    return conn, text


# =====================================================================================
# A. Command injection across STARTTLS (downstream, (S))
# =====================================================================================

def smtp_plain(source=h.MODERN):
    r = Raw("smtp_atk", source=source)
    assert r.smtp_reply()[0] == 220
    return r


def assert_quiet_then_tls(r, go_ahead_prefix):
    """6.A 13: after its go-ahead mailshim writes nothing until the handshake."""
    assert r.buf == b"", "bytes after the %s go-ahead: %r" % (go_ahead_prefix, r.buf)
    assert r.pending(0.15) == b"", "mailshim wrote after its go-ahead"
    r.starttls()
    assert r.pending(0.2) == b"", "unsolicited data inside TLS"


@case("S6.1-smtp-ehlo-injected-after-starttls")
def s6_1():
    SMTP.use(GOOD["smtp"]())
    r = smtp_plain()
    r.send("EHLO t\r\n")
    assert r.smtp_reply()[0] == 250
    r.send("STARTTLS\r\nEHLO commandinjectiontester\r\n")
    assert r.line().startswith("220 ")
    assert_quiet_then_tls(r, "220")
    r.send("FAKE t\r\n")
    code, lines = r.smtp_reply()
    assert 500 <= code < 600, lines
    r.close()
    assert SMTP.conns == [], "a backend connection was made"


@case("S6.2-smtp-auth-mail-injected-after-starttls")
def s6_2():
    SMTP.use(GOOD["smtp"]())
    r = smtp_plain()
    r.send("EHLO t\r\n")
    r.smtp_reply()
    r.send("STARTTLS\r\nAUTH PLAIN %s\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<attacker@x.example>\r\nDATA\r\n"
           % ATTACKER_B64)
    assert r.line().startswith("220 ")
    assert_quiet_then_tls(r, "220")
    r.send("EHLO victim.example.test\r\n")
    code, lines = r.smtp_reply()
    assert code == 250 and any("AUTH" in x for x in lines), lines
    r.send("MAIL FROM:<a@x.example>\r\n")
    code, lines = r.smtp_reply()
    assert code == 530, "session is not unauthenticated after STARTTLS: %s" % lines
    r.close()
    time.sleep(0.1)
    assert SMTP.conns == [], "the injected AUTH reached the backend"


@case("S6.3-imap-tagged-noop-injected-after-starttls")
def s6_3():
    r = Raw("imap_atk")
    assert r.line().startswith("* OK")
    r.send("A STARTTLS\r\nRND7713 NOOP\r\n")
    lines = r.until_tagged("A")
    assert lines[-1].startswith("A OK"), lines
    assert_quiet_then_tls(r, "A OK")
    r.send("C NOOP\r\n")
    lines = r.until_tagged("C")
    assert not any("RND7713" in x for x in lines), lines
    assert r.pending(0.15) == b""
    r.close()


@case("S6.4-pop3-capa-injected-after-stls")
def s6_4():
    r = Raw("pop3_atk")
    assert r.line().startswith("+OK")
    r.send("STLS\r\nCAPA\r\n")
    assert r.line().startswith("+OK")
    assert_quiet_then_tls(r, "+OK")
    r.send("USER %s\r\n" % USER)
    first = r.line()
    rest = r.pending(0.2)
    assert first.startswith("+OK") and b"TOP" not in rest and rest == b"", (first, rest)
    r.close()


def split_timing(port_name, first_reply, starttls, rset):
    r = Raw(port_name)
    first_reply(r)
    r.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    r.send(starttls)
    r.send(rset)  # a second segment before the go-ahead arrives
    go = r.line()
    assert go.startswith(("220 ", "A OK", "+OK")), go
    assert r.buf == b"", "reply after the go-ahead in plaintext: %r" % r.buf
    try:
        r.starttls()
    except (ssl.SSLError, OSError, EOFError):
        return "dropped"  # the bytes broke the handshake: connection dropped
    # Handshake worked: the RSET must have been discarded, never answered.
    assert r.pending(0.3) == b"", "the injected command was answered inside TLS"
    r.close()
    return "discarded"


@case("S6.5-smtp-split-segment-before-220")
def s6_5_smtp():
    split_timing("smtp_atk", lambda r: r.smtp_reply(), "STARTTLS\r\n", "RSET\r\n")


@case("S6.5-imap-split-segment-before-ok")
def s6_5_imap():
    split_timing("imap_atk", lambda r: r.line(), "A STARTTLS\r\n", "B NOOP\r\n")


@case("S6.5-pop3-split-segment-before-ok")
def s6_5_pop3():
    split_timing("pop3_atk", lambda r: r.line(), "STLS\r\n", "NOOP\r\n")


@case("S6.6-smtp-pipelined-ehlo-starttls")
def s6_6():
    r = smtp_plain()
    r.send("EHLO t\r\nSTARTTLS\r\n")
    code, lines = r.smtp_reply()
    assert code == 250 and "250-STARTTLS" in lines and not any("AUTH" in x for x in lines), lines
    assert r.line().startswith("220 ")
    r.starttls()
    r.send("EHLO t\r\n")
    code, lines = r.smtp_reply()
    assert code == 250 and any(x.startswith("250-AUTH") or x.startswith("250 AUTH") for x in lines), lines
    r.close()


@case("S6.6-imap-pipelined-capability-starttls")
def s6_6_imap():
    r = Raw("imap_atk")
    r.line()
    r.send("a CAPABILITY\r\nb STARTTLS\r\n")
    lines = r.until_tagged("a") + r.until_tagged("b")
    assert lines[-1].startswith("b OK"), lines
    r.starttls()
    r.send("c CAPABILITY\r\n")
    lines = r.until_tagged("c")
    assert any("AUTH=PLAIN" in x for x in lines) and not any("STARTTLS" in x for x in lines), lines
    r.close()


@case("S6.7-smtp-upstream-starttls-never-pipelined")
def s6_7_smtp():
    conn, _ = expect_ok("smtp", GOOD["smtp"]())
    assert conn.saw(rb"(?m)^AUTH PLAIN ", tls=True) and conn.saw(rb"(?m)^EHLO ", tls=True)


@case("S6.7-imap-upstream-starttls-never-pipelined")
def s6_7_imap():
    conn, _ = expect_ok("imap", GOOD["imap"]())
    assert conn.saw(rb"(?m)^\S+ AUTHENTICATE PLAIN", tls=True)


@case("S6.7-pop3-upstream-stls-never-pipelined")
def s6_7_pop3():
    conn, _ = expect_ok("pop3", GOOD["pop3"]())
    assert conn.saw(rb"(?m)^AUTH PLAIN ", tls=True)


# =====================================================================================
# B. Response injection / buffering (upstream, (C))
# =====================================================================================

@case("S6.8-smtp-B1-ehlo-injected-after-220")
def s6_8():
    conn, _ = expect_ok("smtp", GOOD["smtp"](
        starttls_reply="220 Ready to start TLS\r\n250-example.org\r\n250 AUTH LOGIN\r\n",
        ehlo_tls="250-evil.example.test\r\n250 AUTH PLAIN\r\n"))
    # A fresh EHLO inside TLS; only its keywords count (PLAIN, not the injected LOGIN).
    assert conn.saw(rb"(?m)^EHLO ", tls=True) and conn.saw(rb"(?m)^AUTH PLAIN ", tls=True)
    assert not conn.saw(rb"AUTH LOGIN")


@case("S6.8-smtp-injection-in-separate-segment-before-handshake")
def s6_8b():
    expect_tempfail("smtp", GOOD["smtp"](after_goahead="250 AUTH LOGIN\r\n"),
                    r"upstream .*TLS handshake with backend failed")


@case("S6.9-imap-B1-capability-injected-after-ok")
def s6_9():
    conn, _ = expect_ok("imap", GOOD["imap"](
        starttls_reply="{tag} OK begin STARTTLS now.\r\n* CAPABILITY IMAP4REV1 AUTH=PLAIN AUTH=LOGIN\r\n"
                       "2 OK capability done.\r\n"))
    assert conn.saw(rb"(?m)^\S+ CAPABILITY", tls=True), "CAPABILITY not re-issued inside TLS"


@case("S6.10-imap-B2-alert-prefix")
def s6_10a():
    expect_ok("imap", GOOD["imap"](starttls_reply="* OK [ALERT] prefix.\r\n{tag} OK begin TLS.\r\n"), "ALERT")


@case("S6.10-imap-B2-alert-suffix")
def s6_10b():
    expect_ok("imap", GOOD["imap"](starttls_reply="{tag} OK begin TLS.\r\n* OK [ALERT] suffix.\r\n"), "ALERT")


@case("S6.10-imap-B2-alert-response-after-tls")
def s6_10c():
    expect_ok("imap", GOOD["imap"](after_tls_greet="* OK [ALERT] response_after_tls.\r\n"), "ALERT")


@case("S6.11-imap-B3-bye-after-ok")
def s6_11():
    expect_ok("imap", GOOD["imap"](starttls_reply="{tag} OK begin STARTTLS now.\r\n"
                                                  "* BYE close the connection please.\r\n"), "close the connection")


@case("S6.12-pop3-B1-capa-injected-after-ok")
def s6_12a():
    conn, _ = expect_ok("pop3", GOOD["pop3"](
        stls_reply="+OK Begin fake TLS negotiation now.\r\n+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"))
    assert conn.saw(rb"(?m)^CAPA", tls=True), "CAPA not re-issued inside TLS"


@case("S6.12-pop3-B2-garbage-after-ok")
def s6_12b():
    expect_ok("pop3", GOOD["pop3"](stls_reply="+OK Begin TLS negotiation now.\r\n\x00garbage\xff\x16\x03\x01junk"))


@case("S6.12-pop3-garbage-in-separate-segment-before-handshake")
def s6_12c():
    expect_tempfail("pop3", GOOD["pop3"](after_goahead="+OK\r\nUSER\r\n.\r\n"),
                    r"upstream .*TLS handshake with backend failed")


@case("S6.13-smtp-nothing-after-own-220")
def s6_13():
    r = smtp_plain()
    r.send("EHLO t\r\nSTARTTLS\r\nNOOP\r\n")
    r.smtp_reply()
    assert r.line().startswith("220 ")
    assert_quiet_then_tls(r, "220")
    r.close()


# =====================================================================================
# C. STARTTLS stripping / negotiation tampering
# =====================================================================================

@case("S6.14-smtp-O1-starttls-not-advertised")
def s6_14():
    expect_tempfail("smtp", GOOD["smtp"](ehlo_plain="250-evil.example.test\r\n250 AUTH PLAIN LOGIN\r\n"),
                    r"does not offer STARTTLS")


@case("S6.15-smtp-O2-starttls-502")
def s6_15a():
    expect_tempfail("smtp", GOOD["smtp"](starttls_reply="502 5.5.1 Command not implemented\r\n"),
                    r"refused STARTTLS")


@case("S6.15-smtp-O3-starttls-454")
def s6_15b():
    expect_tempfail("smtp", GOOD["smtp"](starttls_reply="454 4.7.0 TLS not available due to temporary reason\r\n"),
                    r"refused STARTTLS", "TLS not available")


@case("S6.15-smtp-O4-starttls-354")
def s6_15c():
    expect_tempfail("smtp", GOOD["smtp"](starttls_reply="354 do something else\r\n"), r"refused STARTTLS")


@case("S6.16-smtp-D1-helo-only")
def s6_16():
    expect_tempfail("smtp", GOOD["smtp"](helo_only=True), r"refused EHLO")


def no_starttls_caps(caps):
    return caps.replace(" STARTTLS", "")


@case("S6.17-imap-O1-bad-without-capability")
def s6_17a():
    expect_tempfail("imap", GOOD["imap"](caps_plain=no_starttls_caps(eb.IMAP_CAPS_PLAIN) + " AUTH=PLAIN",
                                         starttls_reply="{tag} BAD STARTTLS not supported.\r\n"),
                    r"does not offer STARTTLS")


@case("S6.17-imap-O2-no")
def s6_17b():
    expect_tempfail("imap", GOOD["imap"](starttls_reply="{tag} NO do not begin TLS now.\r\n"), r"refused STARTTLS")


@case("S6.17-imap-O3-bad")
def s6_17c():
    expect_tempfail("imap", GOOD["imap"](starttls_reply="{tag} BAD do not begin TLS now.\r\n"), r"refused STARTTLS")


@case("S6.17-imap-O4-continuation")
def s6_17d():
    expect_tempfail("imap", GOOD["imap"](starttls_reply="+ continue with something.\r\n"), r"continuation")


@case("S6.17-imap-D1-no-capability-at-all")
def s6_17e():
    expect_tempfail("imap", GOOD["imap"](greeting="* OK evil ready.\r\n",
                                         capability_reply="{tag} OK no capabilities.\r\n"),
                    r"does not offer STARTTLS")


@case("S6.17-imap-D2-imap4-only")
def s6_17f():
    expect_tempfail("imap", GOOD["imap"](caps_plain="IMAP4 AUTH=PLAIN"), r"does not offer STARTTLS")


@case("S6.18-pop3-O1-err-with-stls-in-capa")
def s6_18a():
    expect_tempfail("pop3", GOOD["pop3"](stls_reply="-ERR STARTTLS not supported.\r\n"), r"refused STLS")


@case("S6.18-pop3-O2-err-without-stls-in-capa")
def s6_18b():
    expect_tempfail("pop3", GOOD["pop3"](capa_plain="+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n",
                                         stls_reply="-ERR STARTTLS not supported.\r\n"), r"does not offer STLS")


@case("S6.18-pop3-O3-capa-hidden")
def s6_18c():
    expect_tempfail("pop3", GOOD["pop3"](capa_plain="-ERR Unknown command.\r\n"), r"does not offer STLS")


@case("S6.18-pop3-O4-apop-banner")
def s6_18d():
    expect_tempfail("pop3", GOOD["pop3"](greeting="+OK POP3 ready <1234.123456789@example.org>\r\n",
                                         capa_plain="+OK\r\nUSER\r\n.\r\n"), r"does not offer STLS")


@case("S6.19-smtp-no-auth-before-tls")
def s6_19_smtp():
    SMTP.use(GOOD["smtp"]())
    r = smtp_plain()
    r.send("EHLO t\r\n")
    code, lines = r.smtp_reply()
    assert code == 250 and not any("AUTH" in x for x in lines), lines
    r.send("AUTH PLAIN %s\r\n" % PLAIN_B64)
    code, lines = r.smtp_reply()
    assert code == 530, lines
    r.send("AUTH LOGIN\r\n")
    code, lines = r.smtp_reply()
    assert code == 530, lines
    r.close()
    time.sleep(0.1)
    assert SMTP.conns == [], "credentials sent in clear were forwarded"


@case("S6.19-imap-logindisabled-before-tls")
def s6_19_imap():
    IMAP.use(GOOD["imap"]())
    r = Raw("imap_atk")
    g = r.line()
    assert "AUTH=" not in g and "LOGINDISABLED" in g, g
    r.send("a CAPABILITY\r\n")
    lines = r.until_tagged("a")
    caps = " ".join(lines)
    assert "LOGINDISABLED" in caps and "AUTH=" not in caps and "STARTTLS" in caps, lines
    r.send('b LOGIN "%s" "%s"\r\n' % (USER, PW))
    lines = r.until_tagged("b")
    assert lines[-1].startswith("b NO [PRIVACYREQUIRED]"), lines
    r.send("c AUTHENTICATE PLAIN %s\r\n" % PLAIN_B64)
    lines = r.until_tagged("c")
    assert lines[-1].startswith(("c NO", "c BAD")), lines
    r.close()
    time.sleep(0.1)
    assert IMAP.conns == [], "credentials sent in clear were forwarded"


@case("S6.19-pop3-no-user-before-tls")
def s6_19_pop3():
    POP3.use(GOOD["pop3"]())
    r = Raw("pop3_atk")
    r.line()
    r.send("CAPA\r\n")
    capa = []
    while True:
        x = r.line()
        capa.append(x)
        if x == ".":
            break
    assert "STLS" in capa and "USER" not in capa and not any(x.startswith("SASL") for x in capa), capa
    r.send("USER %s\r\n" % USER)
    assert r.line().startswith("-ERR")
    r.send("PASS %s\r\n" % PW)
    assert r.line().startswith("-ERR")
    r.send("AUTH PLAIN %s\r\n" % PLAIN_B64)
    assert r.line().startswith("-ERR")
    r.close()
    time.sleep(0.1)
    assert POP3.conns == [], "credentials sent in clear were forwarded"


@case("S6.20-smtp-client-ehlo-forgotten-after-tls")
def s6_20_smtp_s():
    r = smtp_plain()
    r.send("EHLO t\r\nSTARTTLS\r\n")
    r.smtp_reply()
    r.line()
    r.starttls()
    r.send("AUTH PLAIN %s\r\n" % ATTACKER_B64)  # no EHLO inside TLS yet
    code, lines = r.smtp_reply()
    assert code == 503, "pre-TLS EHLO still counted: %s" % lines
    r.close()


@case("S6.20-imap-client-id-forgotten-after-tls")
def s6_20_imap_s():
    IMAP.use(GOOD["imap"]())
    r = Raw("imap_atk")
    r.line()
    r.send('a ID ("name" "pre-tls-name")\r\nb STARTTLS\r\n')
    r.until_tagged("a")
    r.until_tagged("b")
    r.starttls()
    r.send('c LOGIN "%s" "%s"\r\n' % (USER, PW))
    lines = r.until_tagged("c")
    assert lines[-1].startswith("c OK"), lines
    watch = h.LogWatch(MS.log_path)
    r.send("d LOGOUT\r\n")
    r.until_tagged("d")
    r.close()
    conn = IMAP.wait_done()
    assert conn.saw(rb"x-originating-ip", tls=True), "no ID sent upstream"
    assert not conn.saw(rb"pre-tls-name"), "an ID field learned before STARTTLS was forwarded"
    line = watch.wait(r"disconnect .*").group(0)
    assert "pre-tls-name" not in line, "the session fingerprint kept a pre-TLS ID field: " + line


@case("S6.20-smtp-upstream-caps-requeried")
def s6_20_smtp():
    conn, _ = expect_ok("smtp", GOOD["smtp"](
        ehlo_plain="250-evil\r\n250-STARTTLS\r\n250-AUTH LOGIN\r\n250 XCLIENT NAME ADDR PORT PROTO HELO\r\n",
        ehlo_tls="250-evil\r\n250 AUTH PLAIN\r\n"))
    assert not conn.saw(rb"XCLIENT"), "XCLIENT sent although only the pre-TLS EHLO offered it"
    assert conn.saw(rb"(?m)^AUTH PLAIN ", tls=True) and not conn.saw(rb"AUTH LOGIN")


@case("S6.20-imap-upstream-caps-requeried")
def s6_20_imap():
    conn, _ = expect_ok("imap", GOOD["imap"](caps_plain="IMAP4rev1 SASL-IR ID STARTTLS AUTH=PLAIN",
                                             caps_tls="IMAP4rev1 AUTH=PLAIN"))
    lines = conn.lines(tls=True)
    assert any(x.endswith(b"AUTHENTICATE PLAIN") for x in lines), "SASL-IR used from pre-TLS caps: %r" % lines
    assert not conn.saw(rb"(?m)^\S+ ID "), "ID sent although only the pre-TLS list offered it"


@case("S6.20-pop3-upstream-capa-requeried")
def s6_20_pop3():
    conn, _ = expect_ok("pop3", GOOD["pop3"](capa_plain="+OK\r\nSTLS\r\nSASL PLAIN\r\n.\r\n",
                                             capa_tls="+OK\r\nUSER\r\n.\r\n"))
    assert conn.saw(rb"(?m)^USER ", tls=True) and not conn.saw(rb"(?m)^AUTH ")


# =====================================================================================
# D. IMAP PREAUTH and referrals
# =====================================================================================

@case("S6.21-imap-P-preauth-greeting-with-caps")
def s6_21a():
    conn, _ = expect_tempfail("imap", GOOD["imap"](
        greeting="* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] IMAP server ready.\r\n"),
        r"PREAUTH", "PREAUTH")
    assert conn.data() == b"", "mailshim talked to a PREAUTH backend: %r" % conn.data()


@case("S6.21-imap-P-preauth-greeting-bare")
def s6_21b():
    expect_tempfail("imap", GOOD["imap"](greeting="* PREAUTH IMAP server ready.\r\n"), r"PREAUTH", "PREAUTH")


@case("S6.22-imap-never-emits-preauth")
def s6_22():
    for name, tls in (("imap_atk", False), ("imaps_atk", True)):
        r = Raw(name, tls=tls)
        g = r.line()
        assert g.startswith("* OK") and "PREAUTH" not in g, g
        r.close()


@case("S6.23-imap-L1-login-referral")
def s6_23():
    expect_ok_fail = GOOD["imap"](
        login_reply="{tag} NO [REFERRAL IMAP://;AUTH=*@attacker.example.org:243/] try another server.\r\n")
    IMAP.use(expect_ok_fail)
    r, lines = imap_login()
    r.close()
    conn = IMAP.wait_done()
    text = "\n".join(lines)
    assert lines[-1].startswith("a NO [AUTHENTICATIONFAILED]"), lines
    clean_client_text(text, "REFERRAL", "attacker")
    no_secret_outside_tls(conn)


# =====================================================================================
# E. Tampering before TLS
# =====================================================================================

@case("S6.24-imap-untagged-data-before-starttls-ok")
def s6_24a():
    expect_ok("imap", GOOD["imap"](starttls_reply=(
        "* 54321 EXISTS\r\n* 7 RECENT\r\n* FLAGS (\\Evil)\r\n* LIST () \"/\" evil\r\n* STATUS evil (MESSAGES 9)\r\n"
        "* SEARCH 1 2\r\n* 3 EXPUNGE\r\n* 1 FETCH (FLAGS (\\Seen))\r\n* CAPABILITY IDLE\r\n"
        "{tag} OK ready for starttls\r\n")), "54321", "evil", "IDLE")


@case("S6.24-imap-capability-idle-after-greeting")
def s6_24b():
    expect_ok("imap", GOOD["imap"](greeting="* OK [CAPABILITY {caps}] evil ready.\r\n* CAPABILITY IDLE\r\n"),
              "IDLE")


@case("S6.25-imap-greeting-alert")
def s6_25a():
    expect_ok("imap", GOOD["imap"](greeting="* OK [ALERT] Your account is compromised, call us.\r\n"), "ALERT",
              "compromised")


@case("S6.25-imap-greeting-badcharset-parse")
def s6_25b():
    expect_ok("imap", GOOD["imap"](greeting="* OK [BADCHARSET (evil)] [PARSE] evil greeting\r\n"), "BADCHARSET",
              "PARSE")


@case("S6.25-imap-greeting-no-alert")
def s6_25c():
    expect_tempfail("imap", GOOD["imap"](greeting="* NO [ALERT] Go to http://attacker.example.org\r\n"),
                    r"unexpected backend greeting", "ALERT", "attacker")


@case("S6.25-imap-alert-in-starttls-ok")
def s6_25d():
    expect_ok("imap", GOOD["imap"](starttls_reply="{tag} OK [ALERT] trust me, TLS is on.\r\n"), "ALERT", "trust me")


# =====================================================================================
# F. Certificates, ports, framing
# =====================================================================================

CERT_CASES = {"T1-wrong-name": ("wrong", r"hostname mismatch"),
              "T2-self-signed": ("self", r"self.signed"),
              "T3-expired": ("expired", r"expired"),
              "T4-untrusted-ca": ("rogue", r"unable to get local issuer")}


def cert_case(proto, variant):
    ctx_name, why = CERT_CASES[variant]

    def fn():
        expect_tempfail(proto, {"smtp": eb.smtp_script, "imap": eb.imap_script, "pop3": eb.pop3_script}[proto](
            CERT[ctx_name]), r"upstream .*certificate: [^\n]*" + why)
    return fn


for _proto in ("smtp", "imap", "pop3"):
    for _variant in CERT_CASES:
        case("S6.26-%s-%s" % (_proto, _variant))(cert_case(_proto, _variant))


@case("S6.26-smtp-good-cert-still-works-after-bad-ones")
def s6_26_good():
    expect_ok("smtp", GOOD["smtp"]())


@case("S6.27-smtp-clienthello-on-starttls-port")
def s6_27():
    for name, ok in (("smtp_atk", "220 "), ("imap_atk", "* OK"), ("pop3_atk", "+OK")):
        r = Raw(name, tls=True)  # TLS straight away on a STARTTLS (auto) port
        assert r.line().startswith(ok)
        r.close()
    # And on the SMTP one, the session is a real TLS session (AUTH offered).
    r = Raw("smtp_atk", tls=True)
    r.smtp_reply()
    r.send("EHLO t\r\n")
    assert any("AUTH" in x for x in r.smtp_reply()[1])
    r.close()


@case("S6.28-plaintext-on-implicit-tls-ports")
def s6_28():
    for be in (SMTP, IMAP, POP3):
        be.use(None)
    for name, cmd in (("smtps_atk", "EHLO x\r\nAUTH PLAIN %s\r\n" % PLAIN_B64),
                      ("imaps_atk", 'a LOGIN "%s" "%s"\r\n' % (USER, PW)),
                      ("pop3s_atk", "USER %s\r\nPASS %s\r\n" % (USER, PW))):
        r = Raw(name)
        r.send(cmd)
        got = b""
        r.sock.settimeout(5)
        try:
            while True:
                d = r.sock.recv(4096)
                if not d:
                    break
                got += d
        except (ConnectionResetError, socket.timeout):
            pass
        assert not got.startswith((b"2", b"3", b"*", b"+", b"-")), "plaintext reply on %s: %r" % (name, got)
        r.close()
    time.sleep(0.1)
    assert SMTP.conns == IMAP.conns == POP3.conns == [], "something reached a backend"


def smtp_data(body):
    SMTP.use(GOOD["smtp"]())
    r, code, lines = smtp_login()
    assert code == 235, lines
    r.send("MAIL FROM:<%s>\r\n" % USER)
    assert r.smtp_reply()[0] == 250
    r.send("RCPT TO:<alice@example.test>\r\n")
    assert r.smtp_reply()[0] == 250
    r.send("DATA\r\n")
    assert r.smtp_reply()[0] == 354
    r.send(body)
    code, lines = r.smtp_reply()
    r.close()
    return code, lines


@case("S6.29-smtp-smuggling-bare-lf-dot")
def s6_29():
    for sep in (b"\n.\n", b"\r.\r", b"\n.\r\n"):
        body = (b"From: <victim@example.test>\r\nSubject: s\r\n\r\nline" + sep +
                b"MAIL FROM:<smuggled@attacker.example>\r\nRCPT TO:<x@y>\r\nDATA\r\nevil\r\n.\r\n")
        code, lines = smtp_data(body)
        time.sleep(0.2)
        conn = SMTP.conns[-1]
        sent_lines = conn.lines(tls=True)
        assert not any(x.startswith(b"MAIL FROM:<smuggled") for x in sent_lines), \
            "smuggled command reached the backend as a command (%r)" % sep
        assert code == 550 and "5.6.11" in lines[-1], (sep, lines)


@case("S6.30-smtp-login-challenges-byte-exact")
def s6_30():
    SMTP.use(GOOD["smtp"]())
    r, code, lines = smtp_login(mech="login")  # asserts the exact 334 lines
    r.close()
    assert code == 235, lines


def raw_case(proto, data):
    def fn():
        expect_tempfail(proto, eb.raw_after_tls(GOOD[proto](), data), r"upstream ")
    return fn


case("S6.F-smtp-plaintext-after-handshake")(raw_case("smtp", b"250-evil\r\n250 AUTH PLAIN\r\n"))
case("S6.F-imap-plaintext-after-handshake")(raw_case("imap", b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"))
case("S6.F-pop3-plaintext-after-handshake")(raw_case("pop3", b"+OK\r\nUSER\r\n.\r\n"))
case("S6.F-smtp-forged-tls-record")(raw_case("smtp", b"\x17\x03\x03\x00\x20" + os.urandom(32)))
case("S6.F-smtp-oversized-tls-record")(raw_case("smtp", b"\x17\x03\x03\xff\xff" + b"\0" * 64))


@case("S6.F-smtp-handshake-in-1-byte-segments")
def s6_f4():
    expect_ok("smtp", GOOD["smtp"](dribble=True))


@case("S6.F-smtp-ehlo-reply-in-many-tls-records")
def s6_f5():
    expect_ok("smtp", GOOD["smtp"](reply_segments=64))


if __name__ == "__main__":
    try:
        h.run(CASES, mailshim=MS)
    finally:
        LABX.stop()

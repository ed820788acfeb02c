"""The quirk engine end to end: each legacy client's exact bytes (see
/work/shared/client-quirks.md sections 1-4) through the real mailshim binary
to the strict lab Postfix/Dovecot, the same bytes straight at the backend (which
refuses them, as in the field), display names, client fingerprints, and the
retirement of a client population (sunset, message, overdue counts, `mailshim
report` and `mailshim explain`).

Lab rules (scripts/lab-lib/mailshim_toml.sh): 127.0.0.2 "legacy-lan" (plaintext
AUTH, HELO fixes, TLS 1.0, AUTH=, HELO-only, quoted RCPT, bare LF, sender
alignment), 127.0.0.3 "retired-lan" (sunset 2026-01-31 passed, refuse, English
message), everyone else "modern" (smtp.display_name only)."""

import base64
import csv
import email
import email.header
import email.policy
import hashlib
import imaplib
import io
import json
import os
import re
import ssl
import subprocess
import uuid
import warnings

import harness as h
from harness import LAB, LEGACY, MODERN, Raw

RETIRED = "127.0.0.3"
ALICE, ALICE_PW = h.USERS["alice"]
BOB, BOB_PW = h.USERS["bob"]
TARO, TARO_PW = h.USERS["taro"]
MS = h.Mailshim(name="mailshim-quirks")
SHIFT = 80  # listener offset of the copied configs
WLM_MAILER = "Microsoft Windows Live Mail 16.4.3528.331"
RETIRED_EN = ("Plain-text login was retired on 2026-01-31. Set your mail program to SSL/TLS "
              "(ports 465, 993, 995): https://mail.example.test/help")
RETIRED_JA = ("平文ログインは2026年1月31日で終了しました。メールソフトの設定をSSL/TLS（ポート995）に変更してください: "
              "https://mail.example.test/help")


# ---- helpers ------------------------------------------------------------------

def marker():
    return "quirks-" + uuid.uuid4().hex[:12]


def b64(s):
    return base64.b64encode(s.encode()).decode()


def raw_line(c):
    """One line as raw bytes (CRLF stripped), for byte-exact UTF-8 checks."""
    while b"\n" not in c.buf:
        chunk = c.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed; got %r" % c.buf)
        c.buf += chunk
    line, c.buf = c.buf.split(b"\n", 1)
    return line.rstrip(b"\r")


def smtp_login(c, helo, user, pw, cmd="EHLO"):
    assert c.smtp_reply()[0] == 220
    c.send(f"{cmd} {helo}\r\n")
    code, lines = c.smtp_reply()
    assert code == 250, lines
    c.send("AUTH LOGIN\r\n")
    assert c.line() == "334 VXNlcm5hbWU6"
    c.send(b64(user) + "\r\n")
    assert c.line() == "334 UGFzc3dvcmQ6"
    c.send(b64(pw) + "\r\n")
    code, lines = c.smtp_reply()
    assert code == 235, lines
    return lines


def smtp_send(c, mail_from, rcpt, data, expect_data=250):
    """MAIL/RCPT/DATA on a logged-in session; `data` is sent as is, then '.'."""
    c.send(f"MAIL FROM:<{mail_from}>\r\n")
    code, lines = c.smtp_reply()
    assert code == 250, lines
    c.send(f"RCPT TO:<{rcpt}>\r\n")
    code, lines = c.smtp_reply()
    assert code == 250, lines
    c.send("DATA\r\n")
    assert c.smtp_reply()[0] == 354
    c.send(data + ".\r\n")
    code, lines = c.smtp_reply()
    assert code == expect_data, lines
    return lines


def quit_smtp(c):
    c.send("QUIT\r\n")
    assert c.smtp_reply()[0] == 221
    c.close()


def imap_fetch(user, pw, subject):
    """The whole message with this Subject, read back over IMAPS through mailshim (CRLF line ends)."""
    with imaplib.IMAP4_SSL("127.0.0.1", h.port("imaps"), ssl_context=h.tls_context(), timeout=20) as m:
        m.login(user, pw)
        m.select("INBOX", readonly=True)
        typ, data = m.uid("SEARCH", None, "HEADER", "Subject", subject)
        uids = data[0].split()
        assert typ == "OK" and uids, (typ, data)
        typ, data = m.uid("FETCH", uids[-1], "(BODY.PEEK[])")
        assert typ == "OK", data
        return data[0][1]


def strip_trace(msg):
    """Drops the trace headers delivery adds (Return-Path, Delivered-To, Received, with folds)."""
    head, sep, body = msg.partition(b"\r\n\r\n")
    out, skip = [], False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not skip:
                out.append(line)
            continue
        skip = line.split(b":", 1)[0].lower() in (b"return-path", b"delivered-to", b"received")
        if not skip:
            out.append(line)
    return b"\r\n".join(out) + sep + body


def body_of(msg):
    return msg.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1]


def shifted_config(name, edit):
    """A copy of the lab config with every listener moved by SHIFT (upstreams unchanged)
    and `edit(text) -> text` applied. Registers "<port>_s" in h.PORTS."""
    with open(os.path.join(LAB, "mailshim.toml"), encoding="utf-8") as f:
        cfg = f.read()
    listener_ports = {h.port(p) for p in ("smtp", "smtps", "imap", "imaps", "pop3", "pop3s")}
    cfg = re.sub(r"(?m)^port = (\d+)$",
                 lambda m: "port = %d" % (int(m.group(1)) + (SHIFT if int(m.group(1)) in listener_ports else 0)),
                 cfg)
    for p in ("smtp", "smtps", "imap", "imaps", "pop3", "pop3s"):
        h.PORTS[p + "_s"] = h.port(p) + SHIFT
    new = edit(cfg)
    assert new != cfg, "config edit changed nothing"
    path = os.path.join(LAB, f"{name}.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(new)
    return h.Mailshim(path, name=name, wait_ports=("smtp_s",))


def legacy_tls10_context():
    """What Windows 7 SChannel offers: TLS 1.0 only, CBC-SHA suites."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(LAB, "ca.pem"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deliberately TLS 1.0
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def tls10_raw(port_name, source):
    c = Raw(port_name, source=source)
    c.sock = legacy_tls10_context().wrap_socket(c.sock, server_hostname="mail.example.test")
    assert c.sock.version() == "TLSv1", c.sock.version()
    return c


# ---- Windows Live Mail 2012 (127.0.0.2) ---------------------------------------

def test_wlm2012_pop3_imap_smtp_plaintext_via_mailshim():
    w = h.LogWatch(MS.log_path)
    c = Raw("pop3", source=LEGACY)
    assert c.line().startswith("+OK")
    c.send(f"USER {ALICE}\r\n")
    assert c.line().startswith("+OK")
    c.send(f"PASS {ALICE_PW}\r\n")
    assert c.line().startswith("+OK"), "POP3 PASS refused"
    c.send("STAT\r\n")
    assert c.line().startswith("+OK ")
    c.send("QUIT\r\n")
    assert c.line().startswith("+OK")
    c.close()

    c = Raw("imap", source=LEGACY)
    assert c.line().startswith("* OK")
    c.send(f"a1 LOGIN {ALICE} {ALICE_PW}\r\n")
    lines = c.until_tagged("a1")
    assert lines[-1].startswith("a1 OK"), lines
    c.send("a2 LOGOUT\r\n")
    c.until_tagged("a2")
    c.close()

    m = marker()
    c = Raw("smtp", source=LEGACY)
    smtp_login(c, "WIN7-PC", ALICE, ALICE_PW)
    smtp_send(c, ALICE, BOB, f"From: \"Alice Liddell\" <{ALICE}>\r\nTo: <{BOB}>\r\nSubject: {m}\r\n"
                             f"X-Mailer: {WLM_MAILER}\r\nMIME-Version: 1.0\r\n\r\nfrom WLM 2012\r\n")
    quit_smtp(c)
    h.wait_for_message(BOB, m)
    w.wait(r"quirk .*rip=127\.0\.0\.2 .*quirk=plaintext_auth .*POP3")
    w.wait(r"quirk .*rip=127\.0\.0\.2 .*quirk=plaintext_auth .*IMAP")
    w.wait(r"quirk .*rip=127\.0\.0\.2 .*quirk=smtp\.helo_normalize .*WIN7-PC")
    w.wait(r"disconnect .*rip=127\.0\.0\.2 user=alice@example\.test .*fingerprint=\"?Windows Live Mail 2012")


def test_wlm2012_tls10_on_implicit_ports():
    c = tls10_raw("pop3s", LEGACY)
    assert c.line().startswith("+OK")
    c.send(f"USER {ALICE}\r\nPASS {ALICE_PW}\r\n")
    assert c.line().startswith("+OK")
    assert c.line().startswith("+OK"), "POP3 login over TLS 1.0 failed"
    c.send("QUIT\r\n")
    c.line()
    c.close()
    c = tls10_raw("imaps", LEGACY)
    assert c.line().startswith("* OK")
    c.send(f"a1 LOGIN {ALICE} {ALICE_PW}\r\n")
    assert c.until_tagged("a1")[-1].startswith("a1 OK")
    c.close()
    c = tls10_raw("smtps", LEGACY)
    smtp_login(c, "WIN7-PC", ALICE, ALICE_PW)
    quit_smtp(c)
    h.log_contains(MS.log_path, r"quirk .*rip=127\.0\.0\.2 .*quirk=tls\.legacy_protocols")
    # The same TLS 1.0 client from the modern network is refused at the handshake.
    try:
        tls10_raw("pop3s", MODERN)
        raise AssertionError("TLS 1.0 accepted from the modern network")
    except (ssl.SSLError, ConnectionError, EOFError):
        pass


def test_wlm2012_transcripts_fail_straight_at_backend():
    src = h.SPARE_SOURCES[0]
    c = Raw("lab_pop3", source=src)
    assert c.line().startswith("+OK")
    c.send(f"USER {ALICE}\r\n")
    line = c.line()
    assert line.startswith("-ERR [AUTH] Plaintext authentication disallowed"), line
    c.close()

    c = Raw("lab_imap", source=src)
    greeting = c.line()
    assert "LOGINDISABLED" in greeting, greeting
    c.send(f"a1 LOGIN {ALICE} {ALICE_PW}\r\n")
    line = c.until_tagged("a1")[-1]
    assert line.startswith("a1 NO [PRIVACYREQUIRED]"), line
    c.close()

    c = Raw("lab_smtp", source=src)
    assert c.smtp_reply()[0] == 220
    c.send("EHLO WIN7-PC\r\n")
    code, lines = c.smtp_reply()
    assert code == 250 and not any("AUTH" in l for l in lines), lines
    c.send("AUTH LOGIN\r\n")
    code, lines = c.smtp_reply()
    assert lines == ["530 5.7.0 Must issue a STARTTLS command first"], lines
    c.close()


# ---- Outlook 2019 (127.0.0.1) ---------------------------------------------------

def outlook_submit(user, pw, from_header, subject, body):
    """Outlook 2019 with "SSL/TLS" on 587: ClientHello before the greeting, EHLO <NetBIOS>, AUTH LOGIN."""
    c = Raw("smtp", source=MODERN)
    c.starttls()  # TLS handshake before any greeting was read
    smtp_login(c, "DESKTOP-E0U2VS3", user, pw)
    data = (f"From: {from_header}\r\nTo: <{user}>\r\nSubject: {subject}\r\n"
            f"Date: Sat, 28 Nov 2026 10:00:00 +0900\r\nMessage-ID: <{subject}@DESKTOP-E0U2VS3>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n"
            f"Content-Transfer-Encoding: 8bit\r\nX-Mailer: Microsoft Outlook 16.0\r\n"
            f"Thread-Index: AdtBxyz0123456789\r\n\r\n{body}")
    smtp_send(c, user, user, data)
    quit_smtp(c)


def test_outlook2019_ssl_on_587_and_display_names():
    body = "こんにちは。\r\nFrom: not a header\r\n  indented line\r\n\r\nend.\r\n"
    m1, m2 = marker(), marker()
    w = h.LogWatch(MS.log_path)
    outlook_submit(ALICE, ALICE_PW, ALICE, m1, body)
    outlook_submit(TARO, TARO_PW, f"<{TARO}>", m2, body)
    w.wait(r"quirk .*rip=127\.0\.0\.1 .*quirk=tls\.implicit_on_starttls_port")
    w.wait(r"quirk .*user=alice@example\.test .*quirk=smtp\.display_name")
    h.wait_for_message(ALICE, m1)
    h.wait_for_message(TARO, m2)
    got = imap_fetch(ALICE, ALICE_PW, m1)
    froms = [l for l in got.split(b"\r\n\r\n")[0].split(b"\r\n") if l.lower().startswith(b"from:")]
    assert froms == [b"From: Alice Liddell <alice@example.test>"], froms
    assert hashlib.sha256(body_of(got)).hexdigest() == hashlib.sha256(body.encode().replace(b"\r\n", b"\n")).hexdigest()
    assert got.split(b"\r\n\r\n", 1)[1] == body.encode()  # CRLF body over IMAP: byte-identical
    got = imap_fetch(TARO, TARO_PW, m2)
    msg = email.message_from_bytes(got, policy=email.policy.compat32)
    raw_from = msg["From"]
    assert "=?" in raw_from and "<taro@example.test>" in raw_from, raw_from  # RFC 2047 encoded
    name = "".join(p.decode(cs or "ascii") if isinstance(p, bytes) else p
                   for p, cs in email.header.decode_header(raw_from.split("<")[0].strip()))
    assert name == "山田 太郎", (raw_from, name)
    assert got.split(b"\r\n\r\n", 1)[1] == body.encode()


# ---- Outlook Express (AUTH=) and Outlook 2003 (quoted RCPT) ---------------------

def test_outlook_express_auth_equals_only_for_legacy_lan():
    c = Raw("smtp", source=LEGACY)
    assert c.smtp_reply()[0] == 220
    c.send("EHLO OE6-PC\r\n")
    code, lines = c.smtp_reply()
    assert "250-AUTH PLAIN LOGIN" in lines and "250-AUTH=PLAIN LOGIN" in lines, lines
    quit_smtp(c)
    c = Raw("smtp", source=MODERN)
    assert c.smtp_reply()[0] == 220
    c.send("EHLO OE6-PC\r\n")
    code, lines = c.smtp_reply()
    assert not any("AUTH" in l for l in lines), lines
    c.send("STARTTLS\r\n")
    assert c.smtp_reply()[0] == 220
    c.starttls()
    c.send("EHLO OE6-PC\r\n")
    code, lines = c.smtp_reply()
    assert "250-AUTH PLAIN LOGIN" in lines and not any(l.startswith("250-AUTH=") for l in lines), lines
    quit_smtp(c)
    h.log_contains(MS.log_path, r"quirk .*rip=127\.0\.0\.2 .*quirk=smtp\.auth_equals")


def outlook2003_session(c, m, sender, pw):
    smtp_login(c, "OFFICE2003-PC", sender, pw)
    c.send(f"MAIL FROM:<{sender}>\r\n")
    assert c.smtp_reply()[0] == 250
    c.send(f"RCPT TO:<'{BOB}'>\r\n")
    return c.smtp_reply()


def test_outlook2003_quoted_rcpt():
    m = marker()
    c = Raw("smtp", source=LEGACY)
    code, lines = outlook2003_session(c, m, ALICE, ALICE_PW)
    assert code == 250, lines
    c.send("DATA\r\n")
    assert c.smtp_reply()[0] == 354
    c.send(f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: {m}\r\nX-Mailer: Microsoft Office Outlook, Build 11.0.5510\r\n"
           "\r\nquoted rcpt\r\n.\r\n")
    assert c.smtp_reply()[0] == 250
    quit_smtp(c)
    h.wait_for_message(BOB, m)
    h.log_contains(MS.log_path, r"quirk .*rip=127\.0\.0\.2 .*quirk=smtp\.rcpt_strip_quotes .*bob@example\.test")
    # From the modern network (TLS login) the quoted RCPT goes to Postfix unchanged.
    m2 = marker()
    c = Raw("smtps", source=MODERN, tls=True)
    code, lines = outlook2003_session(c, m2, TARO, TARO_PW)
    MODERN_RCPT_RESULT.append(lines)
    # The lab Postfix has iRedMail's smtpd_command_filter (command_filter.pcre), which
    # strips the quotes itself, so the stock server accepts it too (see report).
    assert code == 250, lines
    c.send("DATA\r\n")
    assert c.smtp_reply()[0] == 354
    c.send(f"From: {TARO}\r\nTo: {BOB}\r\nSubject: {m2}\r\nX-Mailer: Microsoft Office Outlook, Build 11.0.5510\r\n"
           "\r\nquoted rcpt, modern\r\n.\r\n")
    assert c.smtp_reply()[0] == 250
    quit_smtp(c)
    h.wait_for_message(BOB, m2)


MODERN_RCPT_RESULT = []


# ---- scanner: HELO only + fixed sender ------------------------------------------

def scanner_session(port_name, m):
    c = Raw(port_name, source=LEGACY)
    assert c.smtp_reply()[0] == 220
    c.send("HELO NPI8C2F31\r\n")
    code, lines = c.smtp_reply()
    assert code == 250, lines
    c.send("AUTH LOGIN\r\n")
    code, lines = c.smtp_reply()
    return c, code, lines


def test_scanner_helo_only_sender_align():
    m = marker()
    c, code, lines = scanner_session("smtp", m)
    assert lines == ["334 VXNlcm5hbWU6"], lines
    c.send(b64(ALICE) + "\r\n")
    assert c.line() == "334 UGFzc3dvcmQ6"
    c.send(b64(ALICE_PW) + "\r\n")
    assert c.smtp_reply()[0] == 235
    smtp_send(c, "noreply@example.test", BOB,
              f"From: Scanner <noreply@example.test>\r\nTo: {BOB}\r\nSubject: {m}\r\n\r\nscan attached\r\n")
    quit_smtp(c)
    msg = h.wait_for_message(BOB, m)
    assert msg.startswith(b"Return-Path: <alice@example.test>"), msg[:200]
    assert b"From: Scanner <noreply@example.test>" in msg  # header left alone
    h.log_contains(MS.log_path, r"quirk .*quirk=smtp\.sender_align .*noreply@example\.test.*-> <alice@example\.test>")
    h.log_contains(MS.log_path, r"quirk .*rip=127\.0\.0\.2 .*quirk=smtp\.helo_only")


def strip_scanner_quirks(cfg):
    return cfg.replace('"smtp.helo_only", ', "").replace(', "smtp.sender_align"', "")


def ja_message(cfg):
    return re.sub(r'(?m)^message = "Plain-text login was retired[^\n]*$', 'message = "%s"' % RETIRED_JA, cfg)


def test_scanner_refused_without_helo_only_and_sender_align():
    alt = shifted_config("mailshim-quirks-alt", lambda cfg: ja_message(strip_scanner_quirks(cfg)))
    alt.start()
    try:
        c, code, lines = scanner_session("smtp_s", marker())
        assert code == 503 and lines[0].startswith("503 5.5.1"), lines  # AUTH after HELO: EHLO first
        c.close()
        # Even after EHLO + login, the fixed sender is refused by the strict Postfix.
        c = Raw("smtp_s", source=LEGACY)
        smtp_login(c, "NPI8C2F31", ALICE, ALICE_PW)
        c.send("MAIL FROM:<noreply@example.test>\r\n")
        code, lines = c.smtp_reply()
        if code == 250:
            c.send(f"RCPT TO:<{BOB}>\r\n")
            code, lines = c.smtp_reply()
        SCANNER_RESULT.append(lines)
        assert code == 550 and "Sender address rejected" in lines[0], lines
        quit_smtp(c)
        # The Japanese retirement message, byte-exact in UTF-8.
        c = Raw("pop3_s", source=RETIRED)
        assert c.line().startswith("+OK")
        c.send(f"USER {ALICE}\r\n")
        got = raw_line(c)
        assert got == ("-ERR [AUTH] " + RETIRED_JA).encode("utf-8"), got
        c.close()
    finally:
        assert alt.stop() == 0, alt.log_text()


SCANNER_RESULT = []


# ---- bare LF ----------------------------------------------------------------------

def test_bare_lf_refused_from_modern_network():
    m_bad, m_good = marker(), marker()
    c = Raw("smtps", source=MODERN, tls=True)
    assert c.smtp_reply()[0] == 220
    c.send("EHLO laptop.example.test\r\n")
    c.smtp_reply()
    c.send("AUTH PLAIN " + base64.b64encode(f"\0{ALICE}\0{ALICE_PW}".encode()).decode() + "\r\n")
    assert c.smtp_reply()[0] == 235
    c.send(f"MAIL FROM:<{ALICE}>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n")
    assert [c.smtp_reply()[0] for _ in range(3)] == [250, 250, 354]
    c.send(f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: {m_bad}\r\n\r\nline one\nline two\r\n.\r\n")
    reply = c.pending(2.0)  # the refusal, then mailshim closes the session (CloseReason client_error)
    c.close()
    h.log_contains(MS.log_path, r"note .*bare LF in message content: message not forwarded")
    # A clean message from the same client afterwards is delivered; the refused one never is.
    c = Raw("smtps", source=MODERN, tls=True)
    assert c.smtp_reply()[0] == 220
    c.send("EHLO laptop.example.test\r\n")
    c.smtp_reply()
    c.send("AUTH PLAIN " + base64.b64encode(f"\0{ALICE}\0{ALICE_PW}".encode()).decode() + "\r\n")
    assert c.smtp_reply()[0] == 235
    smtp_send(c, ALICE, BOB, f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: {m_good}\r\n\r\nfine\r\n")
    quit_smtp(c)
    h.wait_for_message(BOB, m_good)
    assert not any(m_bad.encode() in msg for msg in h.maildir_messages(BOB)), "refused message was delivered"
    assert reply.startswith(b"550 5.6.11 Bare CR or LF in message content"), \
        "client got %r instead of the 550 5.6.11 refusal" % reply


def test_bare_lf_normalized_for_legacy_lan():
    m = marker()
    c = Raw("smtp", source=LEGACY)
    smtp_login(c, "WIN7-PC", ALICE, ALICE_PW)
    smtp_send(c, ALICE, ALICE, f"From: {ALICE}\nTo: {ALICE}\nSubject: {m}\n\nline one\nline two\r\nline three\n")
    quit_smtp(c)
    h.wait_for_message(ALICE, m)
    got = imap_fetch(ALICE, ALICE_PW, m)
    assert got.endswith(b"\r\n\r\nline one\r\nline two\r\nline three\r\n"), got[-80:]
    assert re.search(rb"[^\r]\n", got) is None, got  # every line end is CRLF
    assert b"\r" not in h.wait_for_message(ALICE, m).replace(b"\r\n", b"")  # no stray CR in the Maildir copy
    h.log_contains(MS.log_path, r"quirk .*rip=127\.0\.0\.2 .*quirk=smtp\.bare_lf")


# ---- Thunderbird: nothing changes ---------------------------------------------------

def test_thunderbird_message_unchanged():
    m = marker()
    original = (f"Message-ID: <{m}@example.test>\r\nDate: Sat, 28 Nov 2026 15:00:00 +0900\r\n"
                "MIME-Version: 1.0\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) "
                "Gecko/20100101 Thunderbird/128.3.1\r\nContent-Language: en-US\r\n"
                f"To: <{ALICE}>\r\nFrom: Alice Liddell <{ALICE}>\r\nSubject: {m}\r\n"
                "Content-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n"
                "\r\nHi,\r\n\r\n-- \r\nAlice\r\n")
    c = Raw("smtp", source=MODERN)
    assert c.smtp_reply()[0] == 220
    c.send("EHLO [127.0.0.1]\r\n")
    c.smtp_reply()
    c.send("STARTTLS\r\n")
    assert c.smtp_reply()[0] == 220
    c.starttls()
    c.send("EHLO [127.0.0.1]\r\n")
    c.smtp_reply()
    c.send("AUTH PLAIN " + base64.b64encode(f"\0{ALICE}\0{ALICE_PW}".encode()).decode() + "\r\n")
    assert c.smtp_reply()[0] == 235
    smtp_send(c, ALICE, ALICE, original)
    quit_smtp(c)
    h.wait_for_message(ALICE, m)
    got = imap_fetch(ALICE, ALICE_PW, m)
    assert strip_trace(got) == original.encode(), (strip_trace(got), original)


# ---- retired-lan (127.0.0.3) -------------------------------------------------------

def test_retired_lan_gets_english_message_and_is_overdue():
    w = h.LogWatch(MS.log_path)
    c = Raw("smtp", source=RETIRED)
    assert c.smtp_reply()[0] == 220
    c.send("EHLO WIN7-PC\r\n")
    code, lines = c.smtp_reply()
    assert not any("AUTH" in l for l in lines), lines
    c.send("AUTH LOGIN\r\n")
    code, lines = c.smtp_reply()
    assert lines == ["530 5.7.0 " + RETIRED_EN], lines
    quit_smtp(c)
    c = Raw("imap", source=RETIRED)
    assert c.line().startswith("* OK")
    c.send(f"a1 LOGIN {ALICE} {ALICE_PW}\r\n")
    assert c.until_tagged("a1") == ["a1 NO [PRIVACYREQUIRED] " + RETIRED_EN]
    c.close()
    c = Raw("pop3", source=RETIRED)
    assert c.line().startswith("+OK")
    c.send(f"USER {ALICE}\r\n")
    assert c.line() == "-ERR [AUTH] " + RETIRED_EN
    c.close()
    for proto in ("SMTP|AUTH", "IMAP", "POP3"):
        w.wait(r"quirk .*rip=127\.0\.0\.3 .*quirk=plaintext_auth .*rule=retired-lan .*retired: .*(%s).* overdue=2026-01-31" % proto)


def test_explain_retired_lan():
    out = subprocess.run([h.BIN, "explain", "--config", os.path.join(LAB, "mailshim.toml"), "--client", RETIRED,
                          "--listener", "pop3"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    EXPLAIN_OUT.append(out.stdout)
    t = out.stdout
    assert re.search(r"(?m)^rule: +retired-lan$", t), t
    assert re.search(r"(?m)^retired: +.*plaintext_auth", t), t
    assert re.search(r"(?m)^sunset: +2026-01-31 \(passed \d+ days ago: refuse\)$", t), t
    assert re.search(r"(?m)^message: +" + re.escape(RETIRED_EN) + "$", t), t


EXPLAIN_OUT = []


# ---- the retirement report after a restart ------------------------------------------

def report(fmt):
    out = subprocess.run([h.BIN, "report", "--config", os.path.join(LAB, "mailshim.toml"), "--format", fmt],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_report_after_restart():
    assert MS.stop() == 0, MS.log_text()  # exit flushes retirement.tsv
    MS.start()  # a restart: the new process loads the counts
    text = report("csv")
    REPORT_OUT.append(text)
    rows = list(csv.DictReader(io.StringIO(text)))
    js = json.loads(report("json"))
    assert len(js) == len(rows), (len(js), len(rows))

    def find(**kw):
        return [r for r in rows if all(str(r[k]).startswith(v) if k == "fingerprint" else r[k] == v
                                       for k, v in kw.items())]

    assert find(quirk="plaintext_auth", user=ALICE, client=LEGACY, rule="legacy-lan",
                fingerprint="Windows Live Mail 2012"), text
    assert find(quirk="smtp.helo_normalize", user=ALICE, client=LEGACY, fingerprint="Windows Live Mail 2012"), text
    assert find(quirk="tls.legacy_protocols", client=LEGACY, rule="legacy-lan"), text
    assert find(quirk="smtp.auth_equals", client=LEGACY), text
    assert find(quirk="smtp.rcpt_strip_quotes", user=ALICE, client=LEGACY, fingerprint="Outlook 2003"), text
    assert find(quirk="smtp.sender_align", user=ALICE, client=LEGACY), text
    assert find(quirk="smtp.helo_only", user=ALICE, client=LEGACY), text
    assert find(quirk="smtp.bare_lf", user=ALICE, client=LEGACY), text
    assert find(quirk="smtp.display_name", user=ALICE, client=MODERN, rule="modern", fingerprint="Outlook 16.0"), text
    assert find(quirk="smtp.display_name", user=TARO, client=MODERN, rule="modern"), text
    assert find(quirk="tls.implicit_on_starttls_port", client=MODERN, fingerprint="Outlook 16.0"), text
    retired = find(quirk="plaintext_auth", client=RETIRED, rule="retired-lan")
    assert retired and all(int(r["overdue"]) >= 1 and r["sunset"] == "2026-01-31" and int(r["days_left"]) < 0
                           for r in retired), text
    assert sum(int(r["overdue"]) for r in retired) >= 3, text
    # No overdue uses outside the retired rule.
    assert all(int(r["overdue"]) == 0 for r in rows if r["rule"] != "retired-lan"), text
    j = [e for e in js if e["client"] == RETIRED]
    assert j and all(e["rule"] == "retired-lan" and e["overdue"] >= 1 and e["sunset"] == "2026-01-31" for e in j), js


REPORT_OUT = []


if __name__ == "__main__":
    try:
        h.run([
            test_wlm2012_transcripts_fail_straight_at_backend,
            test_wlm2012_pop3_imap_smtp_plaintext_via_mailshim,
            test_wlm2012_tls10_on_implicit_ports,
            test_outlook2019_ssl_on_587_and_display_names,
            test_outlook_express_auth_equals_only_for_legacy_lan,
            test_outlook2003_quoted_rcpt,
            test_scanner_helo_only_sender_align,
            test_scanner_refused_without_helo_only_and_sender_align,
            test_bare_lf_refused_from_modern_network,
            test_bare_lf_normalized_for_legacy_lan,
            test_thunderbird_message_unchanged,
            test_retired_lan_gets_english_message_and_is_overdue,
            test_explain_retired_lan,
            test_report_after_restart,
        ], mailshim=MS)
    finally:
        if os.environ.get("QUIRKS_TEST_VERBOSE"):
            print("modern quoted RCPT:", MODERN_RCPT_RESULT)
            print("scanner without quirks:", SCANNER_RESULT)
            print("".join(EXPLAIN_OUT))
            print("".join(REPORT_OUT))

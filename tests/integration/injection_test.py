"""Injection into the protocol lines mailshim composes itself.

Every value a client controls that mailshim writes into a line toward the
backend (XCLIENT NAME/ADDR/HELO/PROTO, the EHLO after XCLIENT, IMAP ID fields,
POP3 XCLIENT, login names) or into its log is fed CR, LF, NUL, spaces,
over-long and non-UTF-8 input. evil_backend.py records every byte mailshim
sends; none of it may carry such a byte raw, no extra command may appear, and
the log (run at debug level here, so the per-field `client` lines are
written too) must stay one clean line per event.
"""

import base64
import re
import socket
import ssl

import evil_backend as eb
import harness as h
from harness import Raw

LABX = eb.Lab(delta=146)
MS = eb.evil_mailshim(LABX, "inj", 145)
with open(MS.config) as _f:
    _cfg = _f.read().replace('log_level = "info"', 'log_level = "debug"')
with open(MS.config, "w") as _f:
    _f.write(_cfg)
SMTP, IMAP, POP3 = LABX.backends["smtp"], LABX.backends["imap"], LABX.backends["pop3"]
GOOD = LABX.certs.ctx["good"]
USER, PW = eb.VICTIM
CASES, case = eb.case_registry()


def b64(s):
    return base64.b64encode(s if isinstance(s, bytes) else s.encode("latin-1")).decode()


# ---- what reached the backend ----------------------------------------------------

def wire_lines(data, imap=False):
    """(kind, bytes) items: "line" for protocol lines, "literal" for IMAP
    literal payloads (which may legitimately hold any octet but CR/LF/NUL here)."""
    out = []
    while data:
        i = data.find(b"\r\n")
        if i < 0:
            out.append(("tail", data))
            break
        line, data = data[:i], data[i + 2:]
        out.append(("line", line))
        m = re.search(rb"\{(\d+)\+?\}$", line) if imap else None
        if m:
            n = int(m.group(1))
            out.append(("literal", data[:n]))
            data = data[n:]
    return out


def assert_wire_clean(conn, imap=False, max_line=998):
    items = wire_lines(conn.data(), imap)
    for kind, x in items:
        assert kind != "tail", "unterminated bytes sent to the backend: %r" % x
        assert b"\r" not in x and b"\n" not in x and b"\0" not in x, "CR/LF/NUL sent to the backend: %r" % x
        if kind == "line":
            assert all(0x20 <= c < 0x7f for c in x), "non-printable byte in a composed line: %r" % x
            assert len(x) <= max_line, "over-long line (%d) sent to the backend" % len(x)
        else:
            assert all(c >= 0x20 or c == 0x09 for c in x), "control byte in a literal: %r" % x
    return [x for k, x in items if k == "line"]


def xtext_decode(v):
    return re.sub(rb"\+([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), v)


# ---- SMTP ------------------------------------------------------------------------

def smtp_session(helo, auth_line=None, expect_auth=235):
    """EHLO `helo` (bytes), then AUTH; a refused EHLO is followed by a plain one."""
    SMTP.use(eb.smtp_script(GOOD))
    r = Raw("smtps_inj", tls=True)
    assert r.smtp_reply()[0] == 220
    r.send(b"EHLO " + helo + b"\r\n")
    code, lines = r.smtp_reply()
    if code != 250:
        r.send("EHLO fallback.example.test\r\n")
        assert r.smtp_reply()[0] == 250
    r.send(auth_line or "AUTH PLAIN %s\r\n" % b64("\0%s\0%s" % (USER, PW)))
    code, lines = r.smtp_reply()
    assert code == expect_auth or (expect_auth != 235 and code >= 500), (code, lines)
    r.send("QUIT\r\n")
    try:
        r.smtp_reply()
    except (EOFError, OSError, ssl.SSLError):
        pass
    r.close()
    if code == 235:
        return SMTP.wait_done()
    return SMTP.conns[-1] if SMTP.conns else None


def check_smtp(conn, forbidden=()):
    lines = assert_wire_clean(conn)
    xcl = [x for x in lines if x.startswith(b"XCLIENT ")]
    assert xcl, "no XCLIENT sent: %r" % lines
    attrs = dict(a.split(b"=", 1) for a in xcl[0].split(b" ")[1:])
    assert attrs.get(b"ADDR") == b"127.0.0.1", attrs
    assert set(attrs) <= {b"ADDR", b"PORT", b"NAME", b"HELO", b"PROTO"}, attrs
    if b"HELO" in attrs:
        helo = xtext_decode(attrs[b"HELO"])
        assert not re.search(rb"[\r\n\0]", helo), helo
    ehlos = [x for x in lines if x.startswith(b"EHLO ")]
    assert all(len(x.split(b" ")) == 2 for x in ehlos), "EHLO with more than one argument: %r" % ehlos
    for f in forbidden:
        assert not any(f in x for x in lines), "%r reached the backend: %r" % (f, lines)
    return attrs


HELOS = {
    "spaces": b"a b\tc",
    "nul": b"laptop\0XCLIENT ADDR=6.6.6.6",
    "bare-cr": b"laptop\rXCLIENT ADDR=6.6.6.6",
    "xtext-specials": b"a+b=c",
    "non-utf8": b"\xff\xfe\xc0.example",
    "300-bytes": b"h" * 300,
    "5000-bytes": b"h" * 5000,
}


def helo_case(name, helo):
    def fn():
        conn = smtp_session(helo)
        attrs = check_smtp(conn, forbidden=(b"6.6.6.6", b"hhhhhhhhhh" * 30))
        if name == "xtext-specials":
            assert attrs.get(b"HELO") == b"a+2Bb+3Dc", attrs
    return fn


for _n, _v in HELOS.items():
    case("inj-smtp-helo-" + _n)(helo_case(_n, _v))


@case("inj-smtp-auth-plain-user-crlf")
def smtp_user_crlf():
    conn = smtp_session(b"ok.example.test", "AUTH PLAIN %s\r\n" % b64("\0victim@example.test\r\nRSET\0pw"),
                        expect_auth=535)
    if conn:
        assert_wire_clean(conn)
        assert not conn.saw(rb"RSET") and not conn.saw(rb"(?m)^AUTH")


@case("inj-smtp-auth-plain-extra-nul")
def smtp_user_nul():
    conn = smtp_session(b"ok.example.test", "AUTH PLAIN %s\r\n" % b64("\0vic\0tim\0pw"), expect_auth=535)
    if conn:
        assert not conn.saw(rb"(?m)^AUTH")


@case("inj-smtp-auth-login-user-crlf")
def smtp_login_crlf():
    SMTP.use(eb.smtp_script(GOOD))
    r = Raw("smtps_inj", tls=True)
    r.smtp_reply()
    r.send("EHLO ok.example.test\r\nAUTH LOGIN\r\n")
    r.smtp_reply()
    assert r.line() == "334 VXNlcm5hbWU6"
    r.send(b64("victim@example.test\r\nQUIT") + "\r\n")
    code, lines = r.smtp_reply()
    if code == 334:  # refused only with the password
        assert lines == ["334 UGFzc3dvcmQ6"], lines
        r.send(b64("pw") + "\r\n")
        code, lines = r.smtp_reply()
    assert code >= 500, lines
    r.close()
    for c in SMTP.conns:
        assert not c.saw(rb"QUIT") and not c.saw(rb"(?m)^AUTH")


@case("inj-smtp-auth-user-non-utf8-and-long")
def smtp_user_odd():
    for user in (b"\xff\xfe@example.test", b"u" * 700 + b"@example.test"):
        conn = smtp_session(b"ok.example.test", "AUTH PLAIN %s\r\n" % b64(b"\0" + user + b"\0" + PW.encode()))
        lines = assert_wire_clean(conn)
        assert not any(user in x for x in lines), "login name sent raw"


# ---- IMAP ------------------------------------------------------------------------

def imap_session(id_cmd=None, login=None, expect_ok=True):
    """Sends raw command pieces; a piece ending in {n} waits for the '+'."""
    IMAP.use(eb.imap_script(GOOD))
    r = Raw("imaps_inj", tls=True)
    r.line()
    for cmd, tag in ((id_cmd, "i"), (login or ('l LOGIN "%s" "%s"\r\n' % (USER, PW)).encode(), "l")):
        if cmd is None:
            continue
        pieces = cmd if isinstance(cmd, list) else [cmd]
        for p in pieces:
            r.send(p)
            if re.search(rb"\{\d+\}\r\n$", p):
                cont = r.line()
                if not cont.startswith("+"):
                    lines = [cont]
                    break
        else:
            lines = r.until_tagged(tag)
        if tag == "l":
            assert lines[-1].startswith("l OK") == expect_ok, lines
    r.send("z LOGOUT\r\n")
    try:
        r.until_tagged("z")
    except (EOFError, OSError, ssl.SSLError):
        pass
    r.close()
    return IMAP.wait_done() if expect_ok else (IMAP.conns[-1] if IMAP.conns else None)


def id_fields(conn):
    lines = conn.data(tls=True)
    m = re.search(rb"(?m)^\S+ ID \((.*)\)\r\n", lines, re.S)
    assert m, "no ID sent: %r" % lines
    return m.group(1)


@case("inj-imap-id-spoofed-x-originating-ip")
def imap_id_spoof():
    conn = imap_session(b'i ID ("x-originating-ip" "6.6.6.6" "x-session-ext-id" "evil" "name" "ok")\r\n')
    assert_wire_clean(conn, imap=True)
    f = id_fields(conn)
    assert b"6.6.6.6" not in f and b'"evil"' not in f and b'"x-originating-ip" "127.0.0.1"' in f, f
    assert b'"name" "ok"' in f, f


@case("inj-imap-id-quote-backslash-spaces")
def imap_id_quote():
    conn = imap_session(b'i ID ("name" "a\\"b\\\\c d" "version" "1 2")\r\n')
    assert_wire_clean(conn, imap=True)
    f = id_fields(conn)
    assert b'"name" "a\\"b\\\\c d"' in f or b'"name" {' in f, f


@case("inj-imap-id-literal-crlf")
def imap_id_crlf():
    payload = b"x\r\nm9 LOGOUT"
    conn = imap_session([b'i ID ("name" {%d}\r\n' % len(payload), payload + b' "os" "ok")\r\n'])
    assert_wire_clean(conn, imap=True)
    assert not conn.saw(rb"(?m)^m9 LOGOUT"), "a command was injected through an ID value"


@case("inj-imap-id-literal-nul-and-non-utf8")
def imap_id_nul():
    for payload in (b"a\0b", b"\xff\xfe\xc0bad", b"\x1b[31mred"):
        conn = imap_session([b'i ID ("name" {%d}\r\n' % len(payload), payload + b")\r\n"])
        assert_wire_clean(conn, imap=True)
        f = id_fields(conn)
        assert b"\0" not in f and b"\x1b" not in f, f
        assert not re.search(rb"[\x80-\xff]", f) or valid_utf8(f), "invalid UTF-8 forwarded in ID: %r" % f


def valid_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@case("inj-imap-id-key-injection")
def imap_id_key():
    key = b'name" "x'
    conn = imap_session([b'i ID ({%d}\r\n' % len(key), key + b' "v" "os" "ok")\r\n'])
    assert_wire_clean(conn, imap=True)
    f = id_fields(conn)
    assert b'"x"' not in f and b'"os" "ok"' in f, f


@case("inj-imap-id-over-long")
def imap_id_long():
    conn = imap_session(b'i ID ("name" "' + b"n" * 3000 + b'")\r\n')
    lines = assert_wire_clean(conn, imap=True, max_line=8192)
    idl = [x for x in lines if b" ID (" in x]
    assert idl and len(idl[0]) < 1200, "ID value not bounded: %d bytes" % len(idl[0])


@case("inj-imap-login-literal-crlf-user")
def imap_login_crlf():
    user = b"victim@example.test\r\nm9 LOGOUT"
    conn = imap_session(login=[b"l LOGIN {%d}\r\n" % len(user), user + b' "pw"\r\n'], expect_ok=False)
    if conn:
        assert not conn.saw(rb"(?m)^m9 LOGOUT") and not conn.saw(rb"AUTHENTICATE|LOGIN")


@case("inj-imap-login-password-specials")
def imap_login_specials():
    pw = 'b0b pa"ss\\wd'
    conn = imap_session(login=b'l LOGIN "%s" "b0b pa\\"ss\\\\wd"\r\n' % USER.encode())
    assert_wire_clean(conn, imap=True)
    m = re.search(rb"AUTHENTICATE PLAIN (\S+)", conn.data(tls=True))
    assert m and base64.b64decode(m.group(1)) == b"\0" + USER.encode() + b"\0" + pw.encode(), conn.data(True)


@case("inj-imap-login-non-utf8-user")
def imap_login_8bit():
    user = b"\xff\xfe@example.test"
    conn = imap_session(login=[b"l LOGIN {%d}\r\n" % len(user), user + b' "pw"\r\n'])
    lines = assert_wire_clean(conn, imap=True)
    assert not any(user in x for x in lines)
    # A backend without AUTH=PLAIN would need LOGIN with the name as a raw literal: refused.
    IMAP.use(eb.imap_script(GOOD, caps_tls="IMAP4rev1 LITERAL+ ID"))
    r = Raw("imaps_inj", tls=True)
    r.line()
    r.send(b"l LOGIN {%d+}\r\n" % len(user) + user + b' "pw"\r\n')
    lines = r.until_tagged("l")
    assert lines[-1].startswith("l NO"), lines
    r.close()
    conn = IMAP.conns[-1]
    assert not conn.saw(user) and not conn.saw(rb"(?m)^\S+ LOGIN"), conn.data()


# ---- POP3 ------------------------------------------------------------------------

def pop3_session(user_line, pass_line=None, expect_ok=True, script=None):
    POP3.use(script or eb.pop3_script(GOOD))
    r = Raw("pop3s_inj", tls=True)
    r.line()
    r.send(user_line)
    first = r.line()
    last = first
    if first.startswith("+OK") and pass_line is not None:
        r.send(pass_line)
        last = r.line()
    if expect_ok is not None:
        assert last.startswith("+OK") == expect_ok, (first, last)
    r.send("QUIT\r\n")
    try:
        r.line()
    except (EOFError, OSError, ssl.SSLError):
        pass
    r.close()
    if expect_ok or (expect_ok is None and POP3.conns):
        return POP3.wait_done()
    return POP3.conns[-1] if POP3.conns else None


def check_pop3(conn):
    lines = assert_wire_clean(conn)
    xcl = [x for x in lines if x.startswith(b"XCLIENT")]
    assert xcl and re.fullmatch(rb"XCLIENT ADDR=127\.0\.0\.1 PORT=\d+ SESSION=[A-Za-z0-9]+", xcl[0]), xcl
    return lines


@case("inj-pop3-user-nul")
def pop3_nul():
    conn = pop3_session(b"USER vic\0tim@example.test\r\n", b"PASS %s\r\n" % PW.encode(), expect_ok=False)
    if conn:
        assert not conn.saw(rb"(?m)^(AUTH|USER|PASS)")


@case("inj-pop3-user-bare-cr")
def pop3_cr():
    conn = pop3_session(b"USER victim@example.test\rQUIT\r\n", b"PASS %s\r\n" % PW.encode(), expect_ok=False)
    if conn:
        assert not conn.saw(rb"(?m)^(AUTH|USER|PASS|QUIT)")


@case("inj-pop3-user-spaces-sasl")
def pop3_spaces():
    conn = pop3_session(b"USER victim@example.test x y\r\n", b"PASS a b c\r\n")
    check_pop3(conn)
    m = re.search(rb"AUTH PLAIN (\S+)", conn.data(tls=True))
    assert m and base64.b64decode(m.group(1)) == b"\0victim@example.test x y\0a b c", conn.data(True)


@case("inj-pop3-user-non-utf8-user-only-backend")
def pop3_8bit():
    script = eb.pop3_script(GOOD, capa_tls="+OK\r\nUSER\r\n.\r\n")
    conn = pop3_session(b"USER \xff\xfe@example.test\r\n", b"PASS %s\r\n" % PW.encode(), script=script,
                        expect_ok=False)
    check_pop3(conn)
    assert not conn.saw(rb"(?m)^(USER|PASS|AUTH)"), conn.data()


@case("inj-pop3-user-over-long")
def pop3_long():
    conn = pop3_session(b"USER " + b"u" * 5000 + b"\r\n", b"PASS x\r\n", expect_ok=False)
    if conn:
        assert not conn.saw(rb"u" * 100)


# ---- the log ---------------------------------------------------------------------

@case("inj-log-one-clean-line-per-event")
def log_clean():
    with open(MS.log_path, "rb") as f:
        data = f.read()
    assert data, "empty log"
    for i, line in enumerate(data.split(b"\n")[:-1]):
        assert re.match(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} ", line), \
            "log line %d does not start with a timestamp (forged or split line?): %r" % (i, line[:200])
        assert all(0x20 <= c < 0x7f for c in line), "raw control or 8-bit byte in log line %d: %r" % (i, line[:300])
    text = data.decode("ascii")
    # The spoofed address may appear only as what the client claimed (its ID
    # field, escaped HELO), never as the session's address.
    assert not re.search(r"(rip|addr)=6\.6\.6\.6", text), "spoofed client address in the log"
    assert re.search(r"\\xff", text), "the non-UTF-8 inputs were expected in the log, escaped"


if __name__ == "__main__":
    try:
        h.run(CASES, mailshim=MS)
    finally:
        LABX.stop()

"""POP3 through the real mailshim binary to the real strict lab Dovecot, with
real clients (Python poplib, curl, fetchmail) and scripted raw sessions for
SASL, the legacy/modern rules, STLS injection and the error paths. Messages
are submitted through mailshim's own submission port first."""

import base64
import os
import poplib
import re
import socket
import subprocess
import tempfile
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


def marker():
    return "mailshim-" + uuid.uuid4().hex[:12]


def plain_b64(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


class POP3(poplib.POP3):
    def __init__(self, port, source=MODERN, timeout=LOGIN_TIMEOUT):
        self.source = source
        super().__init__("127.0.0.1", port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


class POP3_SSL(poplib.POP3_SSL):
    def __init__(self, port, source=MODERN, timeout=LOGIN_TIMEOUT):
        self.source = source
        super().__init__("127.0.0.1", port, timeout=timeout, context=h.tls_context())

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))
        return self.context.wrap_socket(sock, server_hostname=self.host)


def multiline(c):
    """Reads a POP3 multi-line body after its +OK line; returns the lines."""
    out = []
    while True:
        line = c.line()
        if line == ".":
            return out
        out.append(line[1:] if line.startswith("..") else line)


def find_message(p, m):
    """Number of the message whose headers contain marker m (poplib)."""
    count, _ = p.stat()
    for n in range(count, 0, -1):
        _, lines, _ = p.top(n, 0)
        if any(m.encode() in l for l in lines):
            return n
    raise AssertionError(f"message {m} not in the maildrop ({count} messages)")


SEEDED = {}


def test_seed_mailboxes_through_mailshim_smtp():
    for key, (user, _) in h.USERS.items():
        m = marker()
        h.submit(ALICE, ALICE_PW, user, m, body=f"POP3 body line for {key}\r\n.leading dot line\r\n")
        SEEDED[key] = m
    for key, (user, _) in h.USERS.items():
        h.wait_for_message(user, SEEDED[key])


def check_alice(p):
    caps = p.capa()
    assert "USER" in caps, caps
    assert p.user(ALICE).startswith(b"+OK")
    assert p.pass_(ALICE_PW).startswith(b"+OK")
    count, size = p.stat()
    assert count >= 1 and size > 0, (count, size)
    n = find_message(p, SEEDED["alice"])
    resp, lines, _ = p.retr(n)
    assert resp.startswith(b"+OK"), resp
    text = b"\r\n".join(lines)
    assert SEEDED["alice"].encode() in text and b"\r\n.leading dot line" in text, text
    assert p.quit().startswith(b"+OK")


def test_poplib_pop3s_user_pass_stat_retr():
    check_alice(POP3_SSL(h.port("pop3s")))


def test_poplib_stls_user_pass_stat_retr():
    p = POP3(h.port("pop3"))
    caps = p.capa()
    assert "STLS" in caps and "USER" not in caps, caps
    p.stls(context=h.tls_context())
    check_alice(p)


def test_poplib_taro_md5_crypt():
    p = POP3_SSL(h.port("pop3s"))
    p.user(TARO)
    p.pass_(TARO_PW)
    n = find_message(p, SEEDED["taro"])
    assert SEEDED["taro"].encode() in b"\r\n".join(p.retr(n)[1])
    p.quit()


def test_quit_reply_arrives_on_both_listeners():
    for name in ("pop3s", "pop3"):
        c = Raw(name, tls=(name == "pop3s"), timeout=LOGIN_TIMEOUT)
        c.line()
        if name == "pop3":
            c.send("STLS\r\n")
            assert c.line().startswith("+OK")
            c.starttls()
        c.send(f"USER {ALICE}\r\n")
        assert c.line().startswith("+OK")
        c.send(f"PASS {ALICE_PW}\r\n")
        assert c.line().startswith("+OK")
        c.send("QUIT\r\n")
        line = c.line()
        assert line.startswith("+OK"), (name, line)
        c.close()


def test_auth_plain_raw_bob():
    c = Raw("pop3s", tls=True, timeout=LOGIN_TIMEOUT)
    assert c.line().startswith("+OK")
    c.send(f"AUTH PLAIN {plain_b64(BOB, BOB_PW)}\r\n")  # initial response
    line = c.line()
    assert line.startswith("+OK"), line
    c.send("STAT\r\n")
    assert re.match(r"\+OK \d+ \d+", c.line())
    c.send("QUIT\r\n")
    assert c.line().startswith("+OK")
    c.close()
    c = Raw("pop3s", tls=True, timeout=LOGIN_TIMEOUT)
    c.line()
    c.send("AUTH PLAIN\r\n")  # continuation
    assert c.line().startswith("+")
    c.send(plain_b64(BOB, BOB_PW) + "\r\n")
    line = c.line()
    assert line.startswith("+OK"), line
    c.send("UIDL\r\n")
    assert c.line().startswith("+OK")
    assert multiline(c)
    c.close()


def curl(*args, timeout=90):
    return subprocess.run(["curl", "-sS", "--max-time", "60", "--cacert", CA, *args],
                          capture_output=True, text=True, timeout=timeout)


def test_curl_pop3s_list_and_retr():
    out = curl(f"pop3s://127.0.0.1:{h.port('pop3s')}/", "--user", f"{BOB}:{BOB_PW}")
    assert out.returncode == 0, out.stdout + out.stderr
    nums = [int(l.split()[0]) for l in out.stdout.splitlines() if re.match(r"\d+ \d+", l)]
    assert nums, out.stdout
    found = False
    for n in reversed(nums):
        out = curl(f"pop3s://127.0.0.1:{h.port('pop3s')}/{n}", "--user", f"{BOB}:{BOB_PW}")
        assert out.returncode == 0, out.stdout + out.stderr
        if SEEDED["bob"] in out.stdout:
            found = True
            break
    assert found, "bob's seeded message not retrieved by curl"


def test_curl_pop3_stls_ssl_reqd():
    out = curl("--ssl-reqd", f"pop3://127.0.0.1:{h.port('pop3')}/", "--user", f"{TARO}:{TARO_PW}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"(?m)^\d+ \d+", out.stdout), out.stdout


def fetchmail(implicit):
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o700)
        mbox = os.path.join(d, "out.mbox")
        rc = os.path.join(d, "fetchmailrc")
        # fetchmail strings have no \" escape: single quotes, backslash doubled.
        assert "'" not in BOB_PW
        pw = BOB_PW.replace("\\", "\\\\")
        port_name = "pop3s" if implicit else "pop3"
        tls = "ssl" if implicit else "sslproto 'tls1.2+'"
        with open(rc, "w") as f:
            f.write("set no syslog\n"
                    f"poll 127.0.0.1 service {h.port(port_name)} protocol pop3 timeout 60\n"
                    f"  user \"{BOB}\" password '{pw}' is root here\n"
                    f"  {tls} sslcertck sslcertfile \"{CA}\" sslcommonname mail.example.test\n"
                    "  keep fetchall no rewrite\n"
                    f"  mda \"/bin/sh -c 'cat >> {mbox}'\"\n")
        os.chmod(rc, 0o600)
        env = dict(os.environ, FETCHMAILHOME=d, HOME=d)
        out = subprocess.run(["fetchmail", "-f", rc, "--idfile", os.path.join(d, "ids"), "-v", "--nodetach"],
                             capture_output=True, text=True, timeout=180, env=env)
        got = open(mbox).read() if os.path.exists(mbox) else ""
    return out, got


def test_fetchmail_pop3s():
    out, got = fetchmail(implicit=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert SEEDED["bob"] in got, out.stdout + out.stderr


def test_fetchmail_stls():
    out, got = fetchmail(implicit=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "STLS" in out.stdout + out.stderr, out.stdout + out.stderr
    assert SEEDED["bob"] in got, out.stdout + out.stderr


def test_legacy_lan_plaintext_user_pass_and_rip_via_xclient():
    dlog = h.LogWatch(DOVECOT_LOG)
    c = Raw("pop3", source=LEGACY, timeout=LOGIN_TIMEOUT)
    assert c.line().startswith("+OK")
    c.send("CAPA\r\n")
    assert c.line().startswith("+OK")
    caps = multiline(c)
    assert "USER" in caps and "STLS" in caps, caps
    c.send(f"USER {ALICE}\r\n")
    assert c.line().startswith("+OK")
    c.send(f"PASS {ALICE_PW}\r\n")
    line = c.line()
    assert line.startswith("+OK"), line
    c.send("STAT\r\n")
    assert re.match(r"\+OK \d+ \d+", c.line())
    c.send("QUIT\r\n")
    c.close()
    h.log_contains(MS.log_path, r"quirk .*rip=127\.0\.0\.2.*quirk=plaintext_auth")
    login = dlog.wait(r"pop3-login: Info: Login: user=<alice@example\.test>[^\n]*").group(0)
    assert re.search(r"\brip=127\.0\.0\.2\b", login), f"client address not passed on (XCLIENT): {login}"


def test_modern_plaintext_user_refused_and_not_forwarded():
    dlog = h.LogWatch(DOVECOT_LOG)
    c = Raw("pop3", source=MODERN, timeout=LOGIN_TIMEOUT)
    rport = c.sock.getsockname()[1]
    assert c.line().startswith("+OK")
    c.send("CAPA\r\n")
    assert c.line().startswith("+OK")
    caps = multiline(c)
    assert "USER" not in caps and "STLS" in caps, caps
    assert not any(l.startswith("SASL ") for l in caps), caps
    c.send(f"USER {ALICE}\r\n")
    line = c.line()
    assert line.startswith("-ERR"), line
    c.send(f"PASS {ALICE_PW}\r\n")
    line = c.line()
    assert line.startswith("-ERR"), line
    c.send(f"AUTH PLAIN {plain_b64(ALICE, ALICE_PW)}\r\n")
    line = c.line()
    assert line.startswith("-ERR"), line
    c.send("CAPA\r\n")
    assert c.line().startswith("+OK")
    multiline(c)
    c.send("QUIT\r\n")
    assert c.line().startswith("+OK")
    c.close()
    sid = h.session_id(MS, rport)
    time.sleep(1.0)
    session_lines = [l for l in MS.log_text().splitlines() if f"session={sid}" in l]
    assert not any(re.search(r"\blogin session=", l) for l in session_lines), session_lines
    assert not any("user=" in l for l in session_lines), session_lines
    dc = dlog.lines(r"pop3-login")
    assert not dc, f"credentials reached Dovecot: {dc}"


def test_stls_command_injection_is_never_executed():
    c = Raw("pop3", source=MODERN)
    assert c.line().startswith("+OK")
    c.send("STLS\r\nCAPA\r\n")  # one write
    line = c.line()
    assert line.startswith("+OK"), line
    assert c.buf == b"", f"more after the STLS +OK in plaintext: {c.buf!r}"
    c.starttls()
    assert c.pending(0.7) == b"", "unsolicited reply inside TLS: the injected CAPA was executed"
    c.send(f"USER {ALICE}\r\n")
    line = c.line()
    assert line.startswith("+OK") and "TOP" not in line, line
    assert c.pending(0.3) == b""
    c.send(f"PASS {ALICE_PW}\r\n")
    assert c.line().startswith("+OK")
    c.close()
    h.log_contains(MS.log_path, r"discarded \d+ .*after STARTTLS|discarded \d+ .*after STLS")


def test_overlong_line_gets_err_and_session_continues():
    c = Raw("pop3s", tls=True, timeout=LOGIN_TIMEOUT)
    c.line()
    c.send("USER " + "x" * 10240 + "\r\n")
    line = c.line()
    assert line.startswith("-ERR"), line
    c.send("CAPA\r\n")
    assert c.line().startswith("+OK")
    multiline(c)
    c.send(f"USER {ALICE}\r\n")
    assert c.line().startswith("+OK")
    c.send(f"PASS {ALICE_PW}\r\n")
    assert c.line().startswith("+OK")
    c.close()


def test_backend_down_gives_sys_temp_at_once():
    down = h.down_mailshim("mailshim-pop3-down")
    down.start(wait_ports=("pop3_down",))
    try:
        for name, tls in (("pop3s_down", True), ("pop3_down", False)):
            c = Raw(name, source=LEGACY, tls=tls)
            assert c.line().startswith("+OK")
            c.send(f"USER {ALICE}\r\n")
            assert c.line().startswith("+OK")
            t0 = time.time()
            c.send(f"PASS {ALICE_PW}\r\n")
            line = c.line()
            elapsed = time.time() - t0
            assert line.startswith("-ERR [SYS/TEMP]"), line
            assert c.closed(3.0), "connection not closed after -ERR [SYS/TEMP]"
            assert elapsed < 5.0, f"-ERR took {elapsed:.1f}s"
            c.close()
    finally:
        assert down.stop() == 0, down.log_text()


def test_wrong_password_then_correct_login_same_session():
    # Own client address: Dovecot's auth penalty is per (forwarded) client IP.
    p = POP3_SSL(h.port("pop3s"), source="127.0.0.5")
    p.user(ALICE)
    t0 = time.time()
    try:
        p.pass_("wrong-password")
        raise AssertionError("login with a wrong password succeeded")
    except poplib.error_proto as e:
        assert str(e).startswith("b'-ERR [AUTH]"), e
    assert time.time() - t0 >= 1.0, "no auth penalty: did the backend see the attempt?"
    p.user(ALICE)
    assert p.pass_(ALICE_PW).startswith(b"+OK")
    assert p.stat()[0] >= 1
    p.quit()


if __name__ == "__main__":
    h.run([
        test_seed_mailboxes_through_mailshim_smtp,
        test_poplib_pop3s_user_pass_stat_retr,
        test_poplib_stls_user_pass_stat_retr,
        test_poplib_taro_md5_crypt,
        test_quit_reply_arrives_on_both_listeners,
        test_auth_plain_raw_bob,
        test_curl_pop3s_list_and_retr,
        test_curl_pop3_stls_ssl_reqd,
        test_fetchmail_pop3s,
        test_fetchmail_stls,
        test_legacy_lan_plaintext_user_pass_and_rip_via_xclient,
        test_modern_plaintext_user_refused_and_not_forwarded,
        test_stls_command_injection_is_never_executed,
        test_overlong_line_gets_err_and_session_continues,
        test_backend_down_gives_sys_temp_at_once,
        test_wrong_password_then_correct_login_same_session,
    ], mailshim=MS)

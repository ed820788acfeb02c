"""SMTP submission through the real mailshim binary to the real strict lab
Postfix, with real clients (swaks, msmtp, curl, Python smtplib) and scripted
raw sessions for the legacy and attack cases. Messages are found in the
recipient's Maildir (delivered by Postfix -> Dovecot LMTP)."""

import base64
import os
import re
import shutil
import smtplib
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
MS = h.Mailshim()


def marker():
    return "mailshim-" + uuid.uuid4().hex[:12]


def message(frm, to, subject, body="Hello from the mailshim integration tests.\r\n"):
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.test>\r\n\r\n{body}")


def test_swaks_starttls_587():
    m = marker()
    out = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(h.port("smtp")), "--tls", "--tls-ca-path", CA,
         "--tls-verify", "--tls-sni", "mail.example.test",
         "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", ALICE_PW,
         "--from", ALICE, "--to", BOB, "--header", f"Subject: {m}", "--body", "via swaks",
         "--ehlo", "workstation.example.test"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "235 2.7.0" in out.stdout, out.stdout
    h.wait_for_message(BOB, m)


def test_msmtp_implicit_tls_465():
    m = marker()
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "msmtprc")
        with open(conf, "w") as f:
            f.write(f"account lab\nhost 127.0.0.1\nport {h.port('smtps')}\ntls on\ntls_starttls off\n"
                    f"tls_trust_file {CA}\ntls_host_override mail.example.test\nauth login\n"
                    f"user {TARO}\npassword {TARO_PW}\nfrom {TARO}\ndomain workstation.example.test\n"
                    "account default : lab\n")
        os.chmod(conf, 0o600)
        out = subprocess.run(["msmtp", "-C", conf, BOB], input=message(TARO, BOB, m), capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
    h.wait_for_message(BOB, m)


def test_curl_starttls_required():
    m = marker()
    with tempfile.NamedTemporaryFile("w", suffix=".eml", delete=False) as f:
        f.write(message(ALICE, TARO, m))
        path = f.name
    try:
        out = subprocess.run(
            ["curl", "-sS", "--ssl-reqd", "--cacert", CA, f"smtp://127.0.0.1:{h.port('smtp')}",
             "--mail-from", ALICE, "--mail-rcpt", TARO, "--upload-file", path, "--user", f"{ALICE}:{ALICE_PW}"],
            capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        os.unlink(path)
    h.wait_for_message(TARO, m)


def test_smtplib_starttls_and_bob_password():
    m = marker()
    with smtplib.SMTP("127.0.0.1", h.port("smtp"), local_hostname="laptop.example.test", timeout=30) as s:
        code, caps = s.ehlo()
        assert code == 250
        assert b"STARTTLS" in caps and b"AUTH" not in caps, caps  # no AUTH before TLS
        s.starttls(context=h.tls_context())
        code, caps = s.ehlo()
        assert b"AUTH PLAIN LOGIN" in caps and b"STARTTLS" not in caps, caps
        s.login(BOB, BOB_PW)  # space, quote and backslash in the password
        s.sendmail(BOB, [ALICE], message(BOB, ALICE, m))
    h.wait_for_message(ALICE, m)


def test_wrong_password_gets_backend_535_and_session_continues():
    with smtplib.SMTP("127.0.0.1", h.port("smtp"), local_hostname="laptop.example.test", timeout=30) as s:
        s.starttls(context=h.tls_context())
        s.ehlo()
        try:
            s.login(ALICE, "wrong-password")
            raise AssertionError("login with a wrong password succeeded")
        except smtplib.SMTPAuthenticationError as e:
            assert e.smtp_code == 535, e
        s.login(ALICE, ALICE_PW)  # a retry on the same session works
        assert s.noop()[0] == 250


def test_legacy_lan_plaintext_auth_login_with_netbios_helo():
    m = marker()
    c = Raw("smtp", source=LEGACY)
    assert c.smtp_reply()[0] == 220
    c.send("EHLO WIN7-PC\r\n")
    code, lines = c.smtp_reply()
    assert code == 250 and "250-AUTH PLAIN LOGIN" in lines, lines
    c.send("AUTH LOGIN\r\n")
    assert c.line() == "334 VXNlcm5hbWU6"
    c.send(base64.b64encode(ALICE.encode()).decode() + "\r\n")
    assert c.line() == "334 UGFzc3dvcmQ6"
    c.send(base64.b64encode(ALICE_PW.encode()).decode() + "\r\n")
    code, lines = c.smtp_reply()
    assert code == 235, lines
    c.send(f"MAIL FROM:<{ALICE}>\r\n")
    assert c.smtp_reply()[0] == 250
    c.send(f"RCPT TO:<{BOB}>\r\n")
    assert c.smtp_reply()[0] == 250
    c.send("DATA\r\n")
    assert c.smtp_reply()[0] == 354
    c.send(message(ALICE, BOB, m) + ".\r\n")
    code, lines = c.smtp_reply()
    assert code == 250, lines
    c.send("QUIT\r\n")
    assert c.smtp_reply()[0] == 221
    c.close()
    h.wait_for_message(BOB, m)
    # The quirks were logged, with the original HELO, and Postfix saw the real client.
    h.log_contains(MS.log_path, r"quirk .*rip=127\.0\.0\.2.*quirk=smtp\.helo_normalize.*WIN7-PC")
    h.log_contains(MS.log_path, r"quirk .*rip=127\.0\.0\.2.*quirk=plaintext_auth")
    h.log_contains(os.path.join(LAB, "postfix.log"), r"client=\S*\[127\.0\.0\.2\]")


def test_modern_network_gets_no_auth_before_tls():
    c = Raw("smtp", source=MODERN)
    assert c.smtp_reply()[0] == 220
    c.send("EHLO WIN7-PC\r\n")
    code, lines = c.smtp_reply()
    assert code == 250 and not any("AUTH" in l for l in lines), lines
    assert "250-STARTTLS" in lines, lines
    c.send("AUTH LOGIN\r\n")
    code, lines = c.smtp_reply()
    assert code == 530 and "5.7.0" in lines[0], lines
    c.send("AUTH PLAIN " + base64.b64encode(f"\0{ALICE}\0{ALICE_PW}".encode()).decode() + "\r\n")
    assert c.smtp_reply()[0] == 530
    c.send(f"MAIL FROM:<{ALICE}>\r\n")
    assert c.smtp_reply()[0] == 530
    c.send("QUIT\r\n")
    assert c.smtp_reply()[0] == 221
    c.close()


def test_starttls_command_injection_is_never_executed():
    c = Raw("smtp", source=MODERN)
    assert c.smtp_reply()[0] == 220
    c.send("EHLO t.example.test\r\n")
    assert c.smtp_reply()[0] == 250
    c.send("STARTTLS\r\nNOOP\r\nEHLO commandinjectiontester\r\n")  # one write
    code, lines = c.smtp_reply()
    assert code == 220, lines
    c.starttls()
    assert c.pending(0.5) == b"", "unsolicited reply inside TLS: injected command was executed"
    c.send("FAKE t\r\n")
    code, _ = c.smtp_reply()
    assert code == 502
    c.send("AUTH LOGIN\r\n")  # state from before TLS is forgotten: EHLO needed again
    assert c.smtp_reply()[0] == 503
    c.send("EHLO t.example.test\r\n")
    code, lines = c.smtp_reply()
    assert code == 250 and "250-AUTH PLAIN LOGIN" in lines
    c.close()


def test_pipelined_transaction_and_dot_stuffing_preserved():
    m = marker()
    body = ("line one\r\n..a line that starts with a dot (stuffed)\r\n...\r\n"
            "trailing spaces   \r\n\tTAB line\r\n")
    c = Raw("smtps", source=MODERN, tls=True)
    assert c.smtp_reply()[0] == 220
    c.send("EHLO t.example.test\r\n")
    assert c.smtp_reply()[0] == 250
    plain = base64.b64encode(f"\0{ALICE}\0{ALICE_PW}".encode()).decode()
    c.send(f"AUTH PLAIN {plain}\r\nMAIL FROM:<{ALICE}>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n")  # pipelined
    assert c.smtp_reply()[0] == 235
    assert c.smtp_reply()[0] == 250
    assert c.smtp_reply()[0] == 250
    assert c.smtp_reply()[0] == 354
    c.send(f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: {m}\r\n\r\n" + body + ".\r\n")
    code, lines = c.smtp_reply()
    assert code == 250 and "queued as" in lines[0], lines
    c.send("QUIT\r\n")
    assert c.smtp_reply()[0] == 221
    c.close()
    msg = h.wait_for_message(BOB, m)
    expected = body.replace("\r\n..", "\r\n.").replace("\r\n", "\n")
    # Dovecot stores LF line ends; un-stuffed exactly once.
    assert expected.encode() in msg.replace(b"\r\n", b"\n"), msg
    h.log_contains(MS.log_path, r"message accepted")


def test_implicit_tls_port_rejects_plaintext():
    c = Raw("smtps", source=MODERN)
    c.send("EHLO plain.example.test\r\n")
    assert c.closed(5.0), "plaintext on the implicit-TLS port was not closed"
    c.close()


def test_backend_down_gives_421_at_once():
    # A second mailshim whose upstream port has nothing listening.
    with open(os.path.join(LAB, "mailshim.toml")) as f:
        cfg = f.read()
    # Every port +7: the listeners move aside and the upstreams point at nothing.
    cfg = re.sub(r"(?m)^port = (\d+)$", lambda m: f"port = {int(m.group(1)) + 7}", cfg)
    path = os.path.join(LAB, "mailshim-down.toml")
    with open(path, "w") as f:
        f.write(cfg)
    down = h.Mailshim(path, name="mailshim-down")
    h.PORTS["smtp_down"] = h.port("smtp") + 7
    down.start(wait_ports=("smtp_down",))
    try:
        c = Raw("smtp_down", source=LEGACY)
        assert c.smtp_reply()[0] == 220
        c.send("EHLO WIN7-PC\r\n")
        assert c.smtp_reply()[0] == 250
        t0 = time.time()
        c.send("AUTH PLAIN " + base64.b64encode(f"\0{ALICE}\0{ALICE_PW}".encode()).decode() + "\r\n")
        code, lines = c.smtp_reply()
        elapsed = time.time() - t0
        assert code == 421 and "4.3.2" in lines[0], lines
        assert c.closed(3.0)
        assert elapsed < 5.0, f"421 took {elapsed:.1f}s"
        c.close()
    finally:
        assert down.stop() == 0, down.log_text()


def test_check_config_accepts_lab_config():
    out = subprocess.run([h.BIN, "--check-config", os.path.join(LAB, "mailshim.toml")], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "configuration OK" in out.stdout


if __name__ == "__main__":
    h.run([
        test_check_config_accepts_lab_config,
        test_swaks_starttls_587,
        test_msmtp_implicit_tls_465,
        test_curl_starttls_required,
        test_smtplib_starttls_and_bob_password,
        test_wrong_password_gets_backend_535_and_session_continues,
        test_legacy_lan_plaintext_auth_login_with_netbios_helo,
        test_modern_network_gets_no_auth_before_tls,
        test_starttls_command_injection_is_never_executed,
        test_pipelined_transaction_and_dot_stuffing_preserved,
        test_implicit_tls_port_rejects_plaintext,
        test_backend_down_gives_421_at_once,
    ], mailshim=MS)

"""The real client address end to end, and scale-out behind a load balancer:

* mailshim -> backend with a PROXY v2 header (client_address = "proxy-v2"):
  Postfix (smtpd_upstream_proxy_protocol = haproxy) logs client=...[127.0.0.2],
  Dovecot (haproxy = yes) logs rip=127.0.0.2.
* real HAProxy (send-proxy-v2) in front of two mailshim processes whose
  listeners trust it: the client's address reaches mailshim's rules (the legacy
  LAN's plaintext_auth applies) and the backend's logs.
* a PROXY header from an address that is not a trusted proxy is refused; a
  trusted proxy that sends no header is cut off after the header timeout.
* XCLIENT values: a HELO with xtext specials reaches Postfix decoded, a HELO
  with a NUL never reaches it.
"""

import base64
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import harness as h
from harness import LAB, LEGACY, MODERN, Raw

ALICE, ALICE_PW = h.USERS["alice"]
BOB, BOB_PW = h.USERS["bob"]
OFF = h.OFFSET
LAB_SMTP_PROXY = 20588 + OFF
LAB_IMAP_PROXY = 20144 + OFF
LAB_POP3_PROXY = 20111 + OFF


def lab_config():
    with open(os.path.join(LAB, "mailshim.toml")) as f:
        return f.read()


def shift_listeners(cfg, delta):
    """Moves every [[listener]] port by `delta` (upstreams untouched)."""
    out, in_listener = [], False
    for line in cfg.splitlines():
        if line.startswith("[["):
            in_listener = line.strip() == "[[listener]]"
        m = re.match(r"^port = (\d+)$", line)
        if in_listener and m:
            line = "port = %d" % (int(m.group(1)) + delta)
        out.append(line)
    return "\n".join(out) + "\n"


def set_in_block(cfg, block_name, key, value):
    """Sets `key = value` inside the [[...]] block whose name = block_name."""
    lines = cfg.splitlines()
    out, inside = [], False
    for line in lines:
        if line.startswith("[") :
            inside = False
        if line == f'name = "{block_name}"':
            inside = True
        if inside and line.startswith(key + " = "):
            line = f"{key} = {value}"
        out.append(line)
    return "\n".join(out) + "\n"


def add_to_listeners(cfg, text):
    return cfg.replace('upstream = "', text + '\nupstream = "')


def write(name, cfg):
    path = os.path.join(LAB, name + ".toml")
    with open(path, "w") as f:
        f.write(cfg)
    return path


def smtp_legacy_send(port_name, source, helo="WIN7-PC"):
    """Plaintext AUTH LOGIN + one message, like Windows Live Mail from the legacy LAN."""
    m = "mailshim-" + uuid.uuid4().hex[:12]
    c = Raw(port_name, source=source)
    code, lines = c.smtp_reply()
    assert code == 220, lines
    c.send(f"EHLO {helo}\r\n")
    code, lines = c.smtp_reply()
    assert code == 250 and "250-AUTH PLAIN LOGIN" in lines, lines
    c.send("AUTH PLAIN " + base64.b64encode(f"\0{ALICE}\0{ALICE_PW}".encode()).decode() + "\r\n")
    code, lines = c.smtp_reply()
    assert code == 235, lines
    c.send(f"MAIL FROM:<{ALICE}>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n")
    assert c.smtp_reply()[0] == 250
    assert c.smtp_reply()[0] == 250
    assert c.smtp_reply()[0] == 354
    c.send(f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: {m}\r\n\r\nvia {port_name}\r\n.\r\n")
    code, lines = c.smtp_reply()
    assert code == 250, lines
    c.send("QUIT\r\n")
    c.smtp_reply()
    c.close()
    return m


def test_proxy_v2_toward_postfix_and_dovecot():
    cfg = shift_listeners(lab_config(), 30)
    cfg = set_in_block(cfg, "postfix-submission", "port", str(LAB_SMTP_PROXY))
    cfg = set_in_block(cfg, "postfix-submission", "client_address", '"proxy-v2"')
    cfg = set_in_block(cfg, "dovecot-imap", "port", str(LAB_IMAP_PROXY))
    cfg = set_in_block(cfg, "dovecot-imap", "client_address", '"proxy-v2"')
    cfg = set_in_block(cfg, "dovecot-pop3", "port", str(LAB_POP3_PROXY))
    cfg = set_in_block(cfg, "dovecot-pop3", "client_address", '"proxy-v2"')
    ms = h.Mailshim(write("mailshim-pp2", cfg), name="mailshim-pp2")
    for p in ("smtp", "imaps", "pop3s"):
        h.PORTS[p + "_pp2"] = h.port(p) + 30
    postfix_log = h.LogWatch(os.path.join(LAB, "postfix.log"))
    dovecot_log = h.LogWatch(os.path.join(LAB, "dovecot.log"))
    ms.start(wait_ports=("smtp_pp2",))
    try:
        m = smtp_legacy_send("smtp_pp2", LEGACY)
        h.wait_for_message(BOB, m)
        postfix_log.wait(r"postfix/submission-proxy/smtpd\[\d+\]: \w+: client=\S*\[127\.0\.0\.2\]")
        # IMAPS: the SSL TLV tells Dovecot the client leg was TLS.
        c = Raw("imaps_pp2", source=LEGACY, tls=True)
        assert c.line().startswith("* OK")
        c.send(f'a LOGIN {ALICE} "{ALICE_PW}"\r\n')
        lines = c.until_tagged("a")
        assert lines[-1].startswith("a OK"), lines
        c.send("b LOGOUT\r\n")
        c.until_tagged("b")
        c.close()
        dovecot_log.wait(r"imap-login: (Info: )?Login: user=<alice@example\.test>.*rip=127\.0\.0\.2")
        c = Raw("pop3s_pp2", source=LEGACY, tls=True)
        assert c.line().startswith("+OK")
        c.send(f"USER {ALICE}\r\n")
        assert c.line().startswith("+OK")
        c.send(f"PASS {ALICE_PW}\r\n")
        assert c.line().startswith("+OK"), "POP3 login through proxy-v2 failed"
        c.send("QUIT\r\n")
        c.line()
        c.close()
        dovecot_log.wait(r"pop3-login: (Info: )?Login: user=<alice@example\.test>.*rip=127\.0\.0\.2")
    finally:
        assert ms.stop() == 0, ms.log_text()


def test_haproxy_in_front_of_two_mailshims():
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    assert os.path.exists(haproxy), "haproxy not installed (scripts/install-deps installs it)"
    base = lab_config()
    trust = 'trusted_proxies = ["127.0.0.1/32"]\nproxy_header_timeout_ms = 1000'
    instances = []
    for i, delta in enumerate((40, 50)):
        cfg = add_to_listeners(shift_listeners(base, delta), trust)
        instances.append(h.Mailshim(write(f"mailshim-lb{i}", cfg), name=f"mailshim-lb{i}"))
        h.PORTS[f"smtp_lb{i}"] = h.port("smtp") + delta
    front = h.port("smtp") + 60
    h.PORTS["smtp_haproxy"] = front
    d = tempfile.mkdtemp()
    conf = os.path.join(d, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write(f"""global
    maxconn 200
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend submission
    bind 127.0.0.1:{front}
    default_backend mailshims
backend mailshims
    balance roundrobin
    server ms0 127.0.0.1:{h.port('smtp_lb0')} send-proxy-v2
    server ms1 127.0.0.1:{h.port('smtp_lb1')} send-proxy-v2
""")
    proc = None
    postfix_log = h.LogWatch(os.path.join(LAB, "postfix.log"))
    try:
        for i, ms in enumerate(instances):
            ms.start(wait_ports=(f"smtp_lb{i}",))
        proc = subprocess.Popen([haproxy, "-f", conf, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        h.wait_for(lambda: _listening(front), timeout=10, what="haproxy listening")
        # Two sessions from the legacy LAN through HAProxy: round robin puts
        # one on each mailshim; each sees the real client and applies its rule.
        for _ in range(4):
            m = smtp_legacy_send("smtp_haproxy", LEGACY)
            h.wait_for_message(BOB, m)
        for ms in instances:
            h.log_contains(ms.log_path, r"connect session=\S+ .*rip=127\.0\.0\.2 .*rule=legacy-lan .*proxy=127\.0\.0\.1")
        postfix_log.wait(r"client=\S*\[127\.0\.0\.2\]")
        assert not postfix_log.lines(r"client=\S*\[127\.0\.0\.1[01]?\]"), "backend saw a proxy address"
        # A modern client through HAProxy still gets no AUTH before TLS.
        c = Raw("smtp_haproxy", source=MODERN)
        assert c.smtp_reply()[0] == 220
        c.send("EHLO laptop.example.test\r\n")
        code, lines = c.smtp_reply()
        assert code == 250 and not any("AUTH" in l for l in lines), lines
        c.close()
        # Directly from the trusted address but without a header: cut off.
        c = Raw("smtp_lb0", source=MODERN)
        t0 = time.time()
        assert c.closed(5.0), "no PROXY header from a trusted proxy was not cut off"
        assert time.time() - t0 < 4.0
        c.close()
        h.log_contains(instances[0].log_path, r"proxy session=\S+ from=127\.0\.0\.1 error=\"no PROXY header within 1000 ms\"")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=10)
        for ms in instances:
            assert ms.stop() == 0, ms.log_text()
        shutil.rmtree(d, ignore_errors=True)


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_proxy_header_from_untrusted_address_is_refused():
    # The lab listeners trust no proxy: a PROXY header claiming a legacy address is refused.
    for port_name, first in (("smtp", b"PROXY TCP4 127.0.0.2 127.0.0.1 4000 10587\r\n"),
                             ("pop3", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x02\x7f\x00\x00\x01\x0f\xa0\x27\x6f")):
        c = Raw(port_name, source=MODERN)
        c.send(first)  # before the greeting: the listener is tls = "auto" and sniffs
        assert c.closed(5.0), f"{port_name}: PROXY header from an untrusted client was accepted"
        c.close()
    h.log_contains(MS.log_path, r"proxy session=\S+ rip=127\.0\.0\.1 error=\"PROXY header from an address not in trusted_proxies")


def test_xclient_values_are_encoded():
    postfix_log = h.LogWatch(os.path.join(LAB, "postfix.log"))
    # xtext specials in the HELO ('+' and '=' must be hex-escaped in XCLIENT
    # HELO=): from the modern network the name is passed on as the client sent it.
    import smtplib
    m = "mailshim-" + uuid.uuid4().hex[:12]
    with smtplib.SMTP("127.0.0.1", h.port("smtp"), local_hostname="host+name=x.example.test", timeout=30) as s:
        s.starttls(context=h.tls_context())
        s.login(ALICE, ALICE_PW)
        s.sendmail(ALICE, [BOB], f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: {m}\r\n\r\nx\r\n")
    msg = h.wait_for_message(BOB, m)
    # Postfix's Received: header shows the HELO it got through XCLIENT, decoded.
    assert b"Received: from host+name=x.example.test (unknown [127.0.0.1])" in msg, msg[:600]
    # A NUL in the HELO never reaches Postfix: mailshim answers it itself.
    c = Raw("smtp", source=LEGACY)
    assert c.smtp_reply()[0] == 220
    c.send(b"EHLO evil\x00host.example.test\r\n")
    code, lines = c.smtp_reply()
    assert code in (500, 501), lines
    c.close()
    assert not postfix_log.lines(r"evil"), postfix_log.lines(r"evil")


MS = h.Mailshim()

if __name__ == "__main__":
    h.run([
        test_proxy_header_from_untrusted_address_is_refused,
        test_xclient_values_are_encoded,
        test_proxy_v2_toward_postfix_and_dovecot,
        test_haproxy_in_front_of_two_mailshims,
    ], mailshim=MS)

"""Single-shot hostile inputs (issue 9, part 5): each gets a clear reply or a
close within a bound, never a crash, and mailshim keeps serving. SMTP, IMAP
and POP3, on tls = "auto" listeners and on extra tls = "starttls" listeners:
an over-long line, a 2 GB IMAP literal announcement (synchronizing and not),
an integer-overflowing literal, 1,000 pipelined commands, 64 KiB of garbage
bytes, NUL bytes in a command, a TLS ClientHello on a plaintext
(tls = "starttls") port, and an abrupt RST in the middle of a command.
Loopback only, bounded (about 10 s)."""

import os
import random
import re
import socket
import ssl
import struct
import time

import harness as h
from harness import LAB

PLAIN = {"smtp": h.port("smtp") + 80, "imap": h.port("imap") + 80, "pop3": h.port("pop3") + 80}
UPSTREAM = {"smtp": "postfix-submission", "imap": "dovecot-imap", "pop3": "dovecot-pop3"}
for _p, _n in PLAIN.items():
    h.PORTS[f"{_p}_starttls"] = _n
SRC = "127.0.0.11"  # its own address: max_errors closes and auth penalties stay here


def config():
    with open(os.path.join(LAB, "mailshim.toml")) as f:
        cfg = f.read()
    for proto, port in PLAIN.items():
        cfg += f"""
[[listener]]
name = "{proto}-starttls-only"
protocol = "{proto}"
address = "127.0.0.1"
port = {port}
tls = "starttls"
upstream = "{UPSTREAM[proto]}"
server_names = ["mail.example.test"]
"""
    path = os.path.join(LAB, "mailshim-hostile.toml")
    with open(path, "w") as f:
        f.write(cfg)
    return path


MS = h.Mailshim(config(), name="mailshim-hostile", wait_ports=("smtp", "imap", "pop3", "smtp_starttls"))


def connect(port_name, timeout=10.0):
    return h.Raw(port_name, source=SRC, timeout=timeout)


def read_all(raw, limit_s=8.0, quiet_s=None):
    """Everything until the server closes, or `limit_s`, or (with `quiet_s`)
    until nothing more came for quiet_s after a reply: (bytes, closed)."""
    raw.sock.settimeout(0.3)
    data = raw.buf
    raw.buf = b""
    deadline = time.time() + limit_s
    last = time.time()
    while time.time() < deadline:
        try:
            chunk = raw.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            if quiet_s is not None and data and time.time() - last >= quiet_s:
                return data, False
            continue
        except (ConnectionResetError, ssl.SSLError):
            return data, True
        if not chunk:
            return data, True
        data += chunk
        last = time.time()
    return data, False


def still_serving():
    """mailshim alive: a fresh connection on every protocol gets its greeting."""
    assert MS.proc.poll() is None, "mailshim exited"
    for name, want in (("smtp", "220 "), ("imap", "* OK"), ("pop3", "+OK")):
        r = h.Raw(name, source="127.0.0.12")
        try:
            line = r.line()
            assert line.startswith(want), (name, line)
        finally:
            r.close()


def greeted(port_name, want):
    r = connect(port_name)
    line = r.line()
    assert line.startswith(want), line
    return r


# --- over-long lines --------------------------------------------------------------

def test_smtp_overlong_line_refused():
    for port_name in ("smtp", "smtp_starttls"):
        r = greeted(port_name, "220 ")
        r.send(b"EHLO " + b"a" * 200000 + b"\r\n")
        data, closed = read_all(r, 5, quiet_s=0.6)
        assert data == b"500 5.5.0 Error: line too long\r\n", data[:300]
        r.send(b"NOOP\r\n")  # the session goes on: the rest of the long line was discarded
        assert r.smtp_reply()[0] == 250
        r.close()
    still_serving()


def test_imap_pop3_overlong_line_refused():
    r = greeted("imap", "* OK")
    r.send(b"a1 LOGIN " + b"x" * 100000 + b"\r\n")
    data, _ = read_all(r, 5, quiet_s=0.6)
    assert data == b"a1 BAD Command line too long.\r\n", data[:300]
    r.close()
    r = greeted("pop3", "+OK")
    r.send(b"USER " + b"x" * 100000 + b"\r\n")
    data, _ = read_all(r, 5, quiet_s=0.6)
    assert data == b"-ERR Command line too long.\r\n", data[:300]
    r.close()
    still_serving()


# --- IMAP literals -----------------------------------------------------------------

def test_imap_2gb_literal_announcement():
    # Synchronizing: never "+ Ready" (we would be asked to send 2 GB), a tagged BAD instead.
    r = greeted("imap", "* OK")
    r.send(b"a1 LOGIN {2147483648}\r\n")
    line = r.line()
    assert line.startswith("a1 BAD") or line.startswith("a1 NO"), line
    assert not line.startswith("+"), line
    r.send(b"a2 NOOP\r\n")  # the session goes on
    assert r.until_tagged("a2")[-1].startswith("a2 OK")
    r.close()
    # Non-synchronizing (RFC 7888): the octets are already on the way, so a BAD and a close.
    r = greeted("imap", "* OK")
    r.send(b"a1 LOGIN {2147483648+}\r\n" + b"y" * 65536)
    data, closed = read_all(r, 5)
    assert b"a1 BAD" in data and b"* BYE" in data, data[:300]
    assert closed
    r.close()
    # An announced size that does not fit in 64 bits.
    r = greeted("imap", "* OK")
    r.send(b"a1 LOGIN {99999999999999999999999}\r\n")
    line = r.line()
    assert line.startswith("a1 BAD") or line.startswith("* BYE"), line
    r.close()
    still_serving()


# --- pipelining -------------------------------------------------------------------------

def test_1000_pipelined_commands():
    r = greeted("smtp", "220 ")
    r.send(b"NOOP\r\n" * 1000)
    n = 0
    deadline = time.time() + 10
    while n < 1000 and time.time() < deadline:
        code, _ = r.smtp_reply()
        assert code == 250, code
        n += 1
    assert n == 1000
    r.send(b"QUIT\r\n")
    assert r.smtp_reply()[0] == 221
    r.close()
    r = greeted("imap", "* OK")
    r.send(b"".join(b"p%d NOOP\r\n" % i for i in range(1000)))
    lines = r.until_tagged("p999")
    assert sum(1 for x in lines if re.match(r"p\d+ OK", x)) == 1000, lines[-3:]
    r.close()
    r = greeted("pop3", "+OK")
    r.send(b"NOOP\r\n" * 1000)
    data, _ = read_all(r, 3)
    replies = data.split(b"\r\n")[:-1]
    # NOOP is a TRANSACTION-state command: every one gets a clear -ERR (and
    # max_errors may end the session), none is silently dropped before the close.
    assert replies and all(x.startswith(b"-ERR") for x in replies), replies[:5]
    r.close()
    still_serving()


# --- garbage ---------------------------------------------------------------------------------

def test_garbage_bytes():
    rng = random.Random(9)
    blob = bytes(rng.getrandbits(8) for _ in range(65536))
    for port_name, want in (("smtp", b"220 "), ("imap", b"* OK"), ("pop3", b"+OK"), ("smtp_starttls", b"220 "),
                            ("imap_starttls", b"* OK"), ("pop3_starttls", b"+OK")):
        r = connect(port_name)
        first = r.line().encode()
        assert first.startswith(want), first
        r.send(blob)
        data, closed = read_all(r, 8)
        assert closed, (port_name, data[:200])  # max_errors or the line limit ends it
        assert data, port_name  # ...with a reply, not silently
        r.close()
    # NUL bytes in a command line.
    r = greeted("smtp", "220 ")
    r.send(b"EHLO a\x00b\r\n")
    code, _ = r.smtp_reply()
    assert 500 <= code < 600, code
    r.close()
    still_serving()


# --- TLS on a plaintext port -------------------------------------------------------------

def client_hello():
    """The first flight of a real TLS client (a ClientHello record), captured
    from Python's ssl module through a memory BIO."""
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="mail.example.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    assert hello[0] == 0x16, hello[:5]
    return hello


def test_tls_record_on_plaintext_port():
    hello = client_hello()
    for port_name, want in (("smtp_starttls", b"220 "), ("imap_starttls", b"* OK"), ("pop3_starttls", b"+OK")):
        # tls = "starttls": the greeting comes first; the ClientHello is a bad command.
        r = connect(port_name)
        data, closed = b"", False
        first = r.line().encode()
        assert first.startswith(want), first
        r.send(hello)
        data, closed = read_all(r, 6, quiet_s=0.6)
        assert data or closed, port_name
        # One protocol error per "line" of the binary record (Postfix does the same), never a TLS answer.
        # The ClientHello is random: a "line" of it can start with a word,
        # which is an unknown command (502 5.5.2) rather than bad syntax.
        replies = data.split(b"\r\n")[:-1]
        assert replies and all(re.match(rb"^(50[02] 5\.5\.2 |\* BAD |-ERR )", x) for x in replies), (port_name, data[:200])
        r.close()
    # A TLS client that does not wait for the greeting on a STARTTLS-only
    # port: the greeting, then a reply (or close) for the binary bytes.
    r = connect("smtp_starttls")
    r.send(hello)
    data, closed = read_all(r, 6, quiet_s=0.6)
    assert data.startswith(b"220 ") and b"\r\n500 5.5.2 " in data, data[:100]
    r.close()
    still_serving()


def test_rst_mid_command_and_mid_handshake():
    for port_name in ("smtp", "imaps", "pop3", "smtps"):
        s = socket.create_connection(("127.0.0.1", h.port(port_name)), source_address=(SRC, 0))
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" if port_name.endswith("s") else b"EHLO half-a-li")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    still_serving()


if __name__ == "__main__":
    h.run([test_smtp_overlong_line_refused, test_imap_pop3_overlong_line_refused, test_imap_2gb_literal_announcement,
           test_1000_pipelined_commands, test_garbage_bytes, test_tls_record_on_plaintext_port,
           test_rst_mid_command_and_mid_handshake], mailshim=MS)

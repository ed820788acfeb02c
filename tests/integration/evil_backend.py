"""A scripted, malicious mail backend for the STARTTLS attack and injection
tests (client-quirks.md section 6, roles "(C)").

mailshim is pointed at it (see `evil_mailshim()`): a second mailshim from the
lab config with its listeners moved and its three upstreams aimed at the three
ports of this backend. Each test case sets the backend's *script* — an async
function that plays one backend session — then drives a client through
mailshim and inspects what the backend recorded:

* `Conn.received`  every byte mailshim sent, as (tls, bytes) chunks: plaintext
  before STARTTLS, decrypted data after it;
* `Conn.after_starttls` bytes mailshim sent between its STARTTLS/STLS line and
  the moment the backend answered it (must be empty: no pipelining);
* `Conn.error`     how the backend's script ended (None if it finished).

asyncio + ssl only. TLS is done by hand with `ssl.MemoryBIO` so a script
controls every byte on the wire: it can write plaintext after its go-ahead,
dribble the handshake in one-byte segments, or write a forged record.
"""

import asyncio
import base64
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time

import harness as h

# A victim account that exists only in these tests; its password must never
# reach the evil backend outside a verified TLS leg, nor any log.
VICTIM = ("victim@example.test", "Victim-Secret-9")


def secret_forms(user, password):
    """The password as it can appear on the wire: plain, in an AUTH PLAIN blob
    (with and without authzid), and as an AUTH LOGIN answer."""
    forms = {password.encode()}
    for blob in ("\0%s\0%s" % (user, password), "%s\0%s\0%s" % (user, user, password)):
        forms.add(base64.b64encode(blob.encode()))
    forms.add(base64.b64encode(password.encode()))
    return forms


class Conn:
    """One backend session as seen by the evil backend."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.buf = b""            # application bytes received, not yet consumed
        self.received = []        # (tls, bytes) chunks of everything mailshim sent
        self.raw = b""            # every byte off the socket (ciphertext included)
        self.tls = False
        self.sslobj = None
        self.inc = self.out = None
        self.after_starttls = None
        self.handshake_error = None
        self.error = None
        self.closed_by_peer = False
        self.done = False

    # -- what mailshim sent --------------------------------------------------
    def data(self, tls=None):
        return b"".join(d for t, d in self.received if tls is None or t == tls)

    def lines(self, tls=None):
        return [x for x in self.data(tls).split(b"\r\n") if x]

    def saw(self, pattern, tls=None):
        return re.search(pattern, self.data(tls)) is not None

    # -- I/O -------------------------------------------------------------------
    async def _read_raw(self):
        data = await self.reader.read(65536)
        if not data:
            self.closed_by_peer = True
            raise EOFError("mailshim closed the backend connection")
        self.raw += data
        return data

    async def _flush(self, dribble=False):
        if self.out is None:
            return
        data = self.out.read()
        if not data:
            return
        if dribble:
            for i in range(len(data)):
                self.writer.write(data[i:i + 1])
                await self.writer.drain()
                await asyncio.sleep(0)
        else:
            self.writer.write(data)
            await self.writer.drain()

    async def _fill(self):
        if not self.tls:
            data = await self._read_raw()
            self.buf += data
            self.received.append((False, data))
            return
        while True:
            try:
                data = self.sslobj.read(65536)
                if not data:
                    raise EOFError("TLS close_notify from mailshim")
                self.buf += data
                self.received.append((True, data))
                return
            except ssl.SSLWantReadError:
                await self._flush()
                self.inc.write(await self._read_raw())
            except ssl.SSLZeroReturnError:
                raise EOFError("TLS close_notify from mailshim")

    async def readline(self):
        while b"\n" not in self.buf:
            await self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    async def readexact(self, n):
        while len(self.buf) < n:
            await self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    async def quiet_bytes(self, wait=0.08):
        """Whatever mailshim sends within `wait` seconds (plaintext leg only)."""
        got = self.buf
        self.buf = b""
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), wait)
                if not data:
                    break
                self.raw += data
                self.received.append((self.tls, data))
                got += data
        except asyncio.TimeoutError:
            pass
        return got

    async def send(self, data, segments=None, delay=0.0):
        """Sends `data` (str or bytes) through the current leg; `segments`
        splits it into that many TCP writes (TLS: records) `delay` apart."""
        data = data.encode() if isinstance(data, str) else data
        parts = [data]
        if segments:
            step = max(1, -(-len(data) // segments))
            parts = [data[i:i + step] for i in range(0, len(data), step)]
        for p in parts:
            if self.tls:
                self.sslobj.write(p)
                await self._flush()
            else:
                self.writer.write(p)
                await self.writer.drain()
            if delay:
                await asyncio.sleep(delay)

    async def send_raw(self, data):
        """Bytes straight onto the socket, bypassing TLS."""
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def check_starttls_alone(self):
        """Called right after reading the STARTTLS/STLS line and before the
        go-ahead: records anything mailshim pipelined behind it (6.A 7)."""
        self.after_starttls = await self.quiet_bytes(0.05) if not self.buf else self.buf

    async def starttls(self, ctx, dribble=False):
        """Server side of the handshake; raises on failure (recorded)."""
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.sslobj = ctx.wrap_bio(self.inc, self.out, server_side=True)
        self.inc.write(self.buf)
        self.buf = b""
        try:
            while True:
                try:
                    self.sslobj.do_handshake()
                    await self._flush(dribble)
                    break
                except ssl.SSLWantReadError:
                    await self._flush(dribble)
                    self.inc.write(await self._read_raw())
        except (ssl.SSLError, EOFError, ConnectionError) as e:
            self.handshake_error = repr(e)
            raise
        self.tls = True

    def close(self):
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001
            pass


class EvilBackend:
    """One listening port; runs the current script for every connection."""

    def __init__(self, port):
        self.port = port
        self.script = None
        self.conns = []
        self.loop = None
        self.server = None

    def start(self, loop):
        self.loop = loop

        async def serve():
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
        return self

    async def _handle(self, reader, writer):
        conn = Conn(reader, writer)
        self.conns.append(conn)
        try:
            if self.script is not None:
                await asyncio.wait_for(self.script(conn), 15)
        except Exception as e:  # noqa: BLE001 - a script ends by any error; record it
            conn.error = repr(e)
        finally:
            conn.done = True
            conn.close()

    def use(self, script):
        self.script = script
        self.conns = []

    def wait_done(self, timeout=5.0):
        h.wait_for(lambda: self.conns and all(c.done for c in self.conns), timeout=timeout,
                   what="backend session end")
        return self.conns[-1]


class Lab:
    """The three evil backends (SMTP, IMAP, POP3) on one background loop."""

    def __init__(self, delta=141):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.ports = {"smtp": h.port("lab_smtp") + delta, "imap": h.port("lab_imap") + delta,
                      "pop3": h.port("lab_pop3") + delta}
        self.backends = {p: EvilBackend(port).start(self.loop) for p, port in self.ports.items()}
        self.certs = Certs()

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.certs.cleanup()


# ---- certificates ---------------------------------------------------------------

class Certs:
    """Server contexts: the lab's good certificate, and bad ones made with the
    openssl CLI in a temporary directory (wrong name, self-signed, expired,
    signed by an unknown CA)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="evil-certs-")
        self._make()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.dir)

    def _make(self):
        d = self.dir
        ext = os.path.join(d, "ext.cnf")
        with open(ext, "w") as f:
            f.write("[good]\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                    "subjectAltName=DNS:mail.example.test\n"
                    "[wrong]\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                    "subjectAltName=DNS:evil.attacker.test\n"
                    "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        # Self-signed leaf for the right name.
        self._run("req", "-x509", *ec, "-keyout", "self.key", "-out", "self.pem", "-days", "30",
                  "-subj", "/CN=mail.example.test", "-addext", "subjectAltName=DNS:mail.example.test")
        # An unknown CA and a leaf for the right name it signed.
        self._run("req", "-x509", *ec, "-keyout", "rogue-ca.key", "-out", "rogue-ca.pem", "-days", "30",
                  "-subj", "/CN=rogue CA", "-extensions", "ca", "-config", self._req_cnf("ca"))
        self._leaf("rogue", "mail.example.test", "rogue-ca.pem", "rogue-ca.key", "good")
        # Lab CA, wrong name.
        self._leaf("wrong", "evil.attacker.test", os.path.join(h.LAB, "ca.pem"), os.path.join(h.LAB, "ca.key"),
                   "wrong")
        # Lab CA, right name, expired (openssl ca can set past dates).
        self._run("req", "-new", *ec, "-keyout", "expired.key", "-out", "expired.csr",
                  "-subj", "/CN=mail.example.test")
        os.makedirs(os.path.join(d, "db"), exist_ok=True)
        open(os.path.join(d, "db", "index.txt"), "w").close()
        with open(os.path.join(d, "db", "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write(f"[ca]\ndefault_ca=lab\n[lab]\ndir={d}/db\ndatabase={d}/db/index.txt\n"
                    f"new_certs_dir={d}/db\ncertificate={h.LAB}/ca.pem\nprivate_key={h.LAB}/ca.key\n"
                    f"serial={d}/db/serial\ndefault_md=sha256\npolicy=any\nunique_subject=no\n"
                    "copy_extensions=none\nx509_extensions=good\n[any]\ncommonName=supplied\n"
                    "[good]\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                    "subjectAltName=DNS:mail.example.test\n")
        self._run("ca", "-batch", "-config", "ca.cnf", "-in", "expired.csr", "-out", "expired.pem",
                  "-startdate", "20200101000000Z", "-enddate", "20210101000000Z", "-notext")
        self.ctx = {
            "good": self._ctx(os.path.join(h.LAB, "fullchain.pem"), os.path.join(h.LAB, "privkey.pem")),
        }
        for name in ("self", "rogue", "wrong", "expired"):
            self.ctx[name] = self._ctx(os.path.join(d, name + ".pem"), os.path.join(d, name + ".key"))

    def _req_cnf(self, section):
        path = os.path.join(self.dir, "req.cnf")
        with open(path, "w") as f:
            f.write("[req]\ndistinguished_name=dn\n[dn]\n[ca]\nbasicConstraints=critical,CA:TRUE\n"
                    "keyUsage=critical,keyCertSign,cRLSign\n")
        return path

    def _leaf(self, name, cn, ca, ca_key, ext):
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        self._run("req", "-new", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        self._run("x509", "-req", "-in", name + ".csr", "-CA", ca, "-CAkey", ca_key, "-days", "30",
                  "-set_serial", str(int(time.time() * 1000)), "-extfile", "ext.cnf", "-extensions", ext,
                  "-out", name + ".pem")

    @staticmethod
    def _ctx(cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx


# ---- protocol behaviour: a well-behaved backend with hooks ----------------------

SMTP_EHLO_PLAIN = "250-evil.example.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
SMTP_EHLO_TLS = ("250-evil.example.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n"
                 "250-XCLIENT NAME ADDR PORT PROTO HELO LOGIN\r\n250 8BITMIME\r\n")


def smtp_script(ctx=None, greeting="220 evil.example.test ESMTP\r\n", ehlo_plain=SMTP_EHLO_PLAIN,
                ehlo_tls=SMTP_EHLO_TLS, starttls_reply="220 2.0.0 Ready to start TLS\r\n", after_goahead=None,
                dribble=False, reply_segments=None, helo_only=False, auth_reply=None):
    """A Postfix-like submission backend. Hooks:
    after_goahead: bytes written in plaintext after the go-ahead, before the
      handshake (a separate TCP write, `await`ed 50 ms later);
    reply_segments: split every post-TLS reply into this many TLS records."""

    async def script(c):
        await c.send(greeting)
        while True:
            line = await c.readline()
            verb = line.split(b" ", 1)[0].upper()
            if verb == b"EHLO":
                if helo_only:
                    await c.send("502 5.5.2 Error: command not recognized\r\n")
                else:
                    await c.send(ehlo_tls if c.tls else ehlo_plain, segments=reply_segments if c.tls else None)
            elif verb == b"HELO":
                await c.send("250 evil.example.test\r\n")
            elif verb == b"STARTTLS":
                await c.check_starttls_alone()
                await c.send(starttls_reply)
                if not starttls_reply.startswith("220"):
                    continue
                if after_goahead:
                    await asyncio.sleep(0.05)
                    await c.send(after_goahead)
                await c.starttls(ctx, dribble=dribble)
            elif verb == b"XCLIENT":
                await c.send("220 evil.example.test ESMTP\r\n")
            elif verb == b"AUTH":
                parts = line.split(b" ")
                mech = parts[1].upper() if len(parts) > 1 else b""
                if mech == b"LOGIN":
                    await c.send("334 VXNlcm5hbWU6\r\n")
                    await c.readline()
                    await c.send("334 UGFzc3dvcmQ6\r\n")
                    await c.readline()
                elif mech == b"PLAIN" and len(parts) == 2:
                    await c.send("334 \r\n")
                    await c.readline()
                await c.send(auth_reply or "235 2.7.0 Authentication successful\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                await c.send("250 2.0.0 Ok\r\n")
            elif verb == b"DATA":
                await c.send("354 End data with <CR><LF>.<CR><LF>\r\n")
                while await c.readline() != b".":
                    pass
                await c.send("250 2.0.0 Ok: queued as EVIL\r\n")
            elif verb == b"QUIT":
                await c.send("221 2.0.0 Bye\r\n")
                return
            else:
                await c.send("502 5.5.2 Error: command not recognized\r\n")
    return script


IMAP_CAPS_PLAIN = "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE STARTTLS LOGINDISABLED"
IMAP_CAPS_TLS = "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE AUTH=PLAIN AUTH=LOGIN"


async def imap_command(c, continuation=b"+ OK\r\n"):
    """Reads one IMAP command line with its literals folded in; returns
    (tag, verb, whole-command bytes)."""
    line = await c.readline()
    whole = line
    while True:
        m = re.search(rb"\{(\d+)(\+?)\}$", line)
        if not m:
            break
        if not m.group(2):
            await c.send(continuation)
        whole += b"\r\n" + await c.readexact(int(m.group(1)))
        line = await c.readline()
        whole += line
    parts = whole.split(b" ", 2)
    tag = parts[0].decode("latin-1")
    verb = parts[1].upper() if len(parts) > 1 else b""
    return tag, verb, whole


def imap_script(ctx=None, greeting="* OK [CAPABILITY {caps}] evil ready.\r\n", caps_plain=IMAP_CAPS_PLAIN,
                caps_tls=IMAP_CAPS_TLS, starttls_reply="{tag} OK Begin TLS negotiation now.\r\n",
                capability_reply=None, after_tls_greet=None, login_reply="{tag} OK [CAPABILITY IMAP4rev1] Logged in\r\n",
                id_reply="* ID NIL\r\n{tag} OK ID completed.\r\n"):
    """A Dovecot-like IMAP backend. `{tag}` and `{caps}` are filled in.
    capability_reply: replaces the whole reply to a pre-TLS CAPABILITY.
    after_tls_greet: bytes the backend writes (inside TLS) right after the handshake."""

    async def script(c):
        await c.send(greeting.format(caps=caps_plain))
        while True:
            tag, verb, whole = await imap_command(c)
            if verb == b"CAPABILITY":
                if not c.tls and capability_reply is not None:
                    await c.send(capability_reply.format(tag=tag))
                else:
                    await c.send("* CAPABILITY %s\r\n%s OK Pre-login capabilities listed.\r\n"
                                 % (caps_tls if c.tls else caps_plain, tag))
            elif verb == b"STARTTLS":
                await c.check_starttls_alone()
                reply = starttls_reply.format(tag=tag)
                await c.send(reply)
                if not re.match(r"^(\* [^\r]*\r\n)*%s OK" % re.escape(tag), reply):
                    continue
                await c.starttls(ctx)
                if after_tls_greet:
                    await c.send(after_tls_greet)
            elif verb == b"ID":
                await c.send(id_reply.format(tag=tag))
            elif verb == b"AUTHENTICATE":
                if len(whole.split(b" ")) < 4:
                    await c.send("+ \r\n")
                    await c.readline()
                await c.send(login_reply.format(tag=tag))
            elif verb == b"LOGIN":
                await c.send(login_reply.format(tag=tag))
            elif verb == b"LOGOUT":
                await c.send("* BYE Logging out\r\n%s OK Logout completed.\r\n" % tag)
                return
            else:
                await c.send("%s OK %s completed.\r\n" % (tag, verb.decode("latin-1")))
    return script


POP3_CAPA_PLAIN = "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nSTLS\r\nSASL PLAIN LOGIN\r\n.\r\n"
POP3_CAPA_TLS = "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n"


def pop3_script(ctx=None, greeting="+OK [XCLIENT] evil ready.\r\n", capa_plain=POP3_CAPA_PLAIN,
                capa_tls=POP3_CAPA_TLS, stls_reply="+OK Begin TLS negotiation now.\r\n", after_goahead=None,
                login_reply="+OK Logged in.\r\n"):
    async def script(c):
        await c.send(greeting)
        while True:
            line = await c.readline()
            verb = line.split(b" ", 1)[0].upper()
            if verb == b"CAPA":
                await c.send(capa_tls if c.tls else capa_plain)
            elif verb == b"STLS":
                await c.check_starttls_alone()
                await c.send(stls_reply)
                if not stls_reply.startswith("+OK"):
                    continue
                if after_goahead:
                    await asyncio.sleep(0.05)
                    await c.send(after_goahead)
                await c.starttls(ctx)
            elif verb == b"XCLIENT":
                await c.send("+OK\r\n")
            elif verb == b"AUTH":
                if len(line.split(b" ")) < 3:
                    await c.send("+ \r\n")
                    await c.readline()
                await c.send(login_reply)
            elif verb in (b"USER",):
                await c.send("+OK\r\n")
            elif verb == b"PASS":
                await c.send(login_reply)
            elif verb == b"QUIT":
                await c.send("+OK Logging out.\r\n")
                return
            else:
                await c.send("+OK\r\n")
    return script


def raw_after_tls(script, data):
    """`script`, but right after its TLS handshake the backend writes `data`
    straight onto the socket (plaintext or forged records, not TLS records)."""

    async def wrapped(c):
        orig = c.starttls

        async def starttls(ctx, dribble=False):
            await orig(ctx, dribble)
            await c.send_raw(data)
        c.starttls = starttls
        await script(c)
    return wrapped


# ---- mailshim in front of the evil backends -------------------------------------

def evil_mailshim(lab, name, delta):
    """A mailshim from the lab config: listeners moved by `delta` (registered
    as "<listener>_<name>" in harness.PORTS), upstreams on the evil backends."""
    with open(os.path.join(h.LAB, "mailshim.toml")) as f:
        cfg = f.read()
    upstream_ports = {h.port("lab_smtp"): lab.ports["smtp"], h.port("lab_imap"): lab.ports["imap"],
                      h.port("lab_pop3"): lab.ports["pop3"]}
    out, section = [], ""
    for line in cfg.splitlines():
        if line.startswith("["):
            section = line.strip()
        m = re.match(r"^port = (\d+)$", line)
        if m and section == "[[listener]]":
            line = "port = %d" % (int(m.group(1)) + delta)
        elif m and section == "[[upstream]]":
            line = "port = %d" % upstream_ports[int(m.group(1))]
        elif section == "[[upstream]]" and line.startswith("connect_timeout_ms"):
            line = "connect_timeout_ms = 3000"
        out.append(line)
    for p in ("smtp", "smtps", "imap", "imaps", "pop3", "pop3s"):
        h.PORTS[p + "_" + name] = h.port(p) + delta
    path = os.path.join(h.LAB, f"mailshim-{name}.toml")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return h.Mailshim(path, name=name, wait_ports=(f"smtp_{name}", f"imaps_{name}", f"pop3s_{name}"))


def case_registry():
    """The attack and injection suites' case list, and a decorator that gives
    a test function its case id and appends it to the list."""
    cases = []

    def case(name):
        def deco(fn):
            fn.__name__ = name
            cases.append(fn)
            return fn
        return deco
    return cases, case

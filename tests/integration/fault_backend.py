"""A scripted SMTP submission backend that injects faults (issue 9, part 4).

It speaks what mailshim's upstream login and relay use of Postfix: greeting,
EHLO, STARTTLS (certificate signed by the lab CA), XCLIENT, AUTH PLAIN/LOGIN,
MAIL, RCPT, DATA, RSET, NOOP, QUIT. Every message that reaches its end of data
is *stored* like a queue would store it: one line "<X-Fault-Id> <sha256 of the
content> <bytes>" appended to the store file and flushed to the kernel BEFORE
the 250 is sent, so a SIGKILL of this process after the store keeps the record
(as a queue file would survive), and a fault "after storing but before 250"
leaves a stored message whose client never saw 250.

Faults
  * per listening port (mailshim connects before it knows anything else):
      normal, greet_close (FIN before the greeting), greet_rst (RST before the
      greeting), greet_hang (no greeting at all: mailshim's backend timeout),
      tls_close (close right after the STARTTLS go-ahead, mid-handshake)
  * per session, from the login name "<fault>.<n>@<domain>" (AUTH):
      ok, auth_close, auth_rst, auth_delay (235 after 300 ms), auth_535,
      mail_close, rcpt_451, data_close / data_rst (mid-DATA, after the first
      content bytes), store_close / store_rst (message stored, connection
      dropped before the 250), store_delay (250 after 800 ms), store_hang
      (stored, never answered), eod_451, eod_554 (not stored, refused).

Standard library only. Loopback only. Run as a module (FaultBackend) or as a
process: python3 fault_backend.py --cert C --key K --store FILE --port P:mode...
"""

import argparse
import asyncio
import base64
import hashlib
import os
import signal
import socket
import ssl
import struct
import sys

NAME = "fault.example.test"
PASSWORD = "Fault-Secret-1"
PORT_MODES = ("normal", "greet_close", "greet_rst", "greet_hang", "tls_close")
SESSION_FAULTS = ("ok", "auth_close", "auth_rst", "auth_delay", "auth_535", "mail_close", "rcpt_451",
                  "data_close", "data_rst", "store_close", "store_rst", "store_delay", "store_hang",
                  "eod_451", "eod_554")
MAX_LINE = 8192
MAX_MESSAGE = 20 * 1024 * 1024


class Drop(Exception):
    """Ends the session; `rst` chooses RST (SO_LINGER 0) over FIN."""

    def __init__(self, rst=False):
        super().__init__("drop")
        self.rst = rst


def rst_close(writer):
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class Store:
    """The 'queue': an append-only file, one line per stored message."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "ab", buffering=0)  # every write goes straight to the kernel

    def put(self, msg_id, digest, size):
        self.f.write(b"%s %s %d\n" % (msg_id, digest.encode(), size))

    @staticmethod
    def read(path):
        """{id: [(sha256, size), ...]} of everything stored so far."""
        out = {}
        try:
            with open(path, "rb") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 3:
                        out.setdefault(parts[0].decode(), []).append((parts[1].decode(), int(parts[2])))
        except FileNotFoundError:
            pass
        return out


def fault_of(user):
    local = user.split("@", 1)[0]
    fault = local.split(".", 1)[0]
    return fault if fault in SESSION_FAULTS else "ok"


class Session:
    def __init__(self, backend, reader, writer, mode):
        self.b, self.r, self.w, self.mode = backend, reader, writer, mode
        self.tls = False
        self.fault = "ok"
        self.authed = False

    async def send(self, text):
        self.w.write(text.encode() if isinstance(text, str) else text)
        await self.w.drain()

    async def line(self):
        data = await self.r.readline()
        if not data:
            raise Drop()
        if len(data) > MAX_LINE:
            await self.send("500 5.5.0 line too long\r\n")
            raise Drop()
        return data

    async def run(self):
        if self.mode == "greet_close":
            raise Drop()
        if self.mode == "greet_rst":
            raise Drop(rst=True)
        if self.mode == "greet_hang":
            await asyncio.sleep(3600)
        await self.send(f"220 {NAME} ESMTP fault backend\r\n")
        while True:
            raw = await self.line()
            text = raw.rstrip(b"\r\n").decode("latin-1")
            verb = text.split(" ", 1)[0].upper()
            arg = text[len(verb) + 1:] if " " in text else ""
            if verb in ("EHLO", "HELO"):
                caps = ["PIPELINING", "SIZE %d" % MAX_MESSAGE]
                if not self.tls:
                    caps.append("STARTTLS")
                caps.append("XCLIENT NAME ADDR PROTO HELO LOGIN PORT DESTADDR DESTPORT")
                if self.tls:
                    caps.append("AUTH PLAIN LOGIN")
                caps += ["ENHANCEDSTATUSCODES", "8BITMIME", "DSN"]
                out = f"250-{NAME}\r\n" + "".join(f"250-{c}\r\n" for c in caps[:-1]) + f"250 {caps[-1]}\r\n"
                await self.send(out)
            elif verb == "STARTTLS" and not self.tls:
                await self.send("220 2.0.0 Ready to start TLS\r\n")
                if self.mode == "tls_close":
                    raise Drop()
                await self.w.start_tls(self.b.ssl_ctx)
                self.tls = True
            elif verb == "XCLIENT":
                self.b.xclient_seen += 1
                await self.send(f"220 {NAME} ESMTP fault backend\r\n")
            elif verb == "AUTH":
                await self.auth(arg)
            elif verb == "MAIL" and self.authed:
                if self.fault == "mail_close":
                    raise Drop()
                await self.send("250 2.1.0 Ok\r\n")
            elif verb == "RCPT" and self.authed:
                if self.fault == "rcpt_451":
                    await self.send("451 4.3.0 <rcpt>: Temporary lookup failure\r\n")
                else:
                    await self.send("250 2.1.5 Ok\r\n")
            elif verb == "DATA" and self.authed:
                await self.send("354 End data with <CR><LF>.<CR><LF>\r\n")
                await self.data()
            elif verb == "RSET":
                await self.send("250 2.0.0 Ok\r\n")
            elif verb == "NOOP":
                await self.send("250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                await self.send("221 2.0.0 Bye\r\n")
                raise Drop()
            else:
                await self.send("502 5.5.2 Error: command not recognized\r\n")

    async def auth(self, arg):
        parts = arg.split()
        mech = parts[0].upper() if parts else ""
        if not self.tls:
            await self.send("530 5.7.0 Must issue a STARTTLS command first\r\n")
            return
        if mech == "PLAIN":
            ir = parts[1] if len(parts) > 1 else None
            if ir is None:
                await self.send("334 \r\n")
                ir = (await self.line()).strip().decode("latin-1")
            try:
                _, user, pw = base64.b64decode(ir).split(b"\0")
            except ValueError:
                await self.send("501 5.5.2 bad PLAIN\r\n")
                return
        elif mech == "LOGIN":
            await self.send("334 VXNlcm5hbWU6\r\n")
            user = base64.b64decode((await self.line()).strip())
            await self.send("334 UGFzc3dvcmQ6\r\n")
            pw = base64.b64decode((await self.line()).strip())
        else:
            await self.send("504 5.5.4 unsupported mechanism\r\n")
            return
        self.fault = fault_of(user.decode("utf-8", "replace"))
        if self.fault == "auth_close":
            raise Drop()
        if self.fault == "auth_rst":
            raise Drop(rst=True)
        if self.fault == "auth_delay":
            await asyncio.sleep(0.3)
        if self.fault == "auth_535" or pw.decode("utf-8", "replace") != PASSWORD:
            await self.send("535 5.7.8 Error: authentication failed: authentication failure\r\n")
            return
        self.authed = True
        await self.send("235 2.7.0 Authentication successful\r\n")

    async def data(self):
        content = bytearray()
        first = True
        while True:
            chunk = await self.r.readline()
            if not chunk:
                raise Drop()  # connection lost mid-DATA: nothing stored
            if first and self.fault in ("data_close", "data_rst"):
                raise Drop(rst=self.fault == "data_rst")
            first = False
            if chunk == b".\r\n":
                break
            content += chunk
            if len(content) > MAX_MESSAGE:
                raise Drop()
        if self.fault == "eod_451":
            await self.send("451 4.3.0 Error: queue file write error\r\n")
            return
        if self.fault == "eod_554":
            await self.send("554 5.7.1 Error: message content rejected\r\n")
            return
        msg_id = b"-"
        for hl in bytes(content).split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
            if hl.lower().startswith(b"x-fault-id:"):
                msg_id = hl.split(b":", 1)[1].strip()
                break
        digest = hashlib.sha256(content).hexdigest()
        self.b.store.put(msg_id, digest, len(content))
        self.b.stored += 1
        if self.fault in ("store_close", "store_rst"):
            raise Drop(rst=self.fault == "store_rst")
        if self.fault == "store_hang":
            await asyncio.sleep(3600)
        if self.fault == "store_delay":
            await asyncio.sleep(0.8)
        self.b.queue_id += 1
        await self.send("250 2.0.0 Ok: queued as F%08X\r\n" % self.b.queue_id)


class FaultBackend:
    def __init__(self, cert, key, store_path, host="127.0.0.1"):
        self.host = host
        self.ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl_ctx.load_cert_chain(cert, key)
        self.store = Store(store_path)
        self.servers = []
        self.stored = 0
        self.queue_id = 0
        self.xclient_seen = 0
        self.sessions = 0

    async def start(self, ports):
        """ports: {port: mode}."""
        for port, mode in ports.items():
            srv = await asyncio.start_server(lambda r, w, m=mode: self.handle(r, w, m), self.host, port,
                                             reuse_address=True, backlog=1024, limit=MAX_LINE * 2)
            self.servers.append(srv)

    async def handle(self, reader, writer, mode):
        self.sessions += 1
        s = Session(self, reader, writer, mode)
        try:
            await s.run()
            writer.close()
        except Drop as d:
            if d.rst:
                rst_close(writer)
            else:
                writer.close()
        except (ConnectionError, ssl.SSLError, OSError, asyncio.IncompleteReadError, ValueError):
            writer.transport.abort()
        except asyncio.CancelledError:
            writer.transport.abort()
            raise

    def close(self):
        for srv in self.servers:
            srv.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", action="append", required=True, help="PORT:MODE")
    a = ap.parse_args()
    ports = {}
    for p in a.port:
        num, mode = p.split(":", 1)
        assert mode in PORT_MODES, mode
        ports[int(num)] = mode

    async def serve():
        fb = FaultBackend(a.cert, a.key, a.store, a.host)
        await fb.start(ports)
        print("ready", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        fb.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()

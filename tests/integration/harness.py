"""Integration-test harness: the real mailshim binary in front of the real lab
Postfix/Dovecot (started by `scripts/lab start` as a ctest fixture).

Each test module calls `run(tests)`; the harness starts mailshim with the lab's
generated mailshim.toml (plus optional overrides), runs every test function,
prints one line per test and a closing `N passed, M failed` line, stops
mailshim with SIGTERM and fails if it did not exit 0 (under ASan that catches
leaks and memory errors too). Standard library only; loopback only.
"""

import glob
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import traceback

SRC = os.environ.get("MAILSHIM_SRC", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
LAB = os.environ.get("MAILSHIM_LAB_DIR", "/tmp/mailshim-lab")
OFFSET = int(os.environ.get("MAILSHIM_LAB_PORT_OFFSET") or 0)
BIN = os.environ.get("MAILSHIM_BIN", os.path.join(SRC, "build", "proxy", "mailshim"))

PORTS = {
    "lab_smtp": 20587, "lab_smtps": 20465, "lab_imap": 20143, "lab_imaps": 20993,
    "lab_pop3": 20110, "lab_pop3s": 20995,
    "smtp": 10587, "smtps": 10465, "imap": 10143, "imaps": 10993, "pop3": 10110, "pop3s": 10995,
}
PORTS = {k: v + OFFSET for k, v in PORTS.items()}

USERS = {
    "alice": ("alice@example.test", "Alice-Secret-1"),
    "taro": ("taro@example.test", "Taro-Secret-1"),
    "bob": ("bob@example.test", 'b0b pa"ss\\wd'),
}
MODERN = "127.0.0.1"
LEGACY = "127.0.0.2"


def port(name):
    return PORTS[name]


def tls_context():
    ctx = ssl.create_default_context(cafile=os.path.join(LAB, "ca.pem"))
    ctx.check_hostname = True
    return ctx


class Mailshim:
    """A running mailshim process with its own log file."""

    def __init__(self, config=None, name="mailshim", wait_ports=("smtp",)):
        self.config = config or os.path.join(LAB, "mailshim.toml")
        self.wait_ports = wait_ports
        self.log_path = os.path.join(LAB, f"{name}-test.log")
        self.proc = None

    def start(self, wait_ports=None):
        wait_ports = wait_ports or self.wait_ports
        self.log = open(self.log_path, "wb")  # one run per file: checks never see older runs
        self.log_offset = self.log.tell()
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = subprocess.Popen([BIN, "--config", self.config], stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 20
        for p in wait_ports:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mailshim exited with {self.proc.returncode}:\n{self.log_text()}")
                try:
                    socket.create_connection(("127.0.0.1", port(p)), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise RuntimeError(f"mailshim did not listen on {port(p)}:\n{self.log_text()}")
                    time.sleep(0.05)
        return self

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise RuntimeError("mailshim did not stop within %ss after SIGTERM" % timeout)
        self.log.close()
        return rc


def wait_for(predicate, timeout=15.0, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def maildir_messages(user):
    local, domain = user.split("@")
    base = os.path.join(LAB, "maildirs", domain, local, "Maildir")
    files = glob.glob(os.path.join(base, "new", "*")) + glob.glob(os.path.join(base, "cur", "*"))
    out = []
    for path in files:
        try:
            with open(path, "rb") as f:
                out.append(f.read())
        except OSError:
            pass
    return out


def wait_for_message(user, marker, timeout=20.0):
    marker = marker.encode() if isinstance(marker, str) else marker
    return wait_for(lambda: next((m for m in maildir_messages(user) if marker in m), None),
                    timeout=timeout, what=f"message {marker!r} in {user}'s Maildir")


def log_contains(path, pattern, timeout=10.0):
    rx = re.compile(pattern)

    def check():
        try:
            with open(path, "r", encoding="utf-8", errors="replace") as f:
                return rx.search(f.read())
        except OSError:
            return None

    return wait_for(check, timeout=timeout, what=f"/{pattern}/ in {path}")


class Raw:
    """A raw line-oriented client socket, optionally bound to a source address."""

    def __init__(self, port_name, source=MODERN, timeout=10.0, tls=False):
        self.sock = socket.create_connection(("127.0.0.1", port(port_name)), timeout=timeout,
                                             source_address=(source, 0))
        if tls:
            self.sock = tls_context().wrap_socket(self.sock, server_hostname="mail.example.test")
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def starttls(self, server_hostname="mail.example.test"):
        self.sock = tls_context().wrap_socket(self.sock, server_hostname=server_hostname)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; got %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def smtp_reply(self):
        """Reads one (possibly multi-line) SMTP reply, returns (code, [lines])."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def until_tagged(self, tag):
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + " "):
                return lines

    def pending(self, wait=0.3):
        """Whatever arrives within `wait` seconds (b'' if nothing)."""
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
        except (socket.timeout, ssl.SSLError, TimeoutError):
            pass
        finally:
            self.sock.settimeout(10.0)
        data, self.buf = self.buf, b""
        return data

    def closed(self, wait=3.0):
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
            return data == b""
        except (ConnectionResetError, ssl.SSLError):
            return True
        except (socket.timeout, TimeoutError):
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def run(tests, mailshim=None):
    """Runs test functions; prints per-test results and the closing summary."""
    passed = failed = 0
    ms = mailshim
    try:
        if ms is not None:
            ms.start()
        for fn in tests:
            name = fn.__name__
            t0 = time.time()
            try:
                fn()
                passed += 1
                print(f"PASS {name} ({time.time() - t0:.2f}s)", flush=True)
            except Exception:  # noqa: BLE001 - report every failure, keep going
                failed += 1
                print(f"FAIL {name} ({time.time() - t0:.2f}s)", flush=True)
                traceback.print_exc()
                if ms is not None:
                    print("---- mailshim log (this run) ----\n" + ms.log_text()[-6000:], flush=True)
    finally:
        if ms is not None:
            try:
                rc = ms.stop()
                if rc != 0:
                    failed += 1
                    print(f"FAIL mailshim_exit_status (exit {rc})\n{ms.log_text()[-6000:]}", flush=True)
                else:
                    passed += 1
                    print("PASS mailshim_exit_status (SIGTERM -> exit 0)", flush=True)
            except Exception:  # noqa: BLE001
                failed += 1
                traceback.print_exc()
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


# ---- helpers shared by the IMAP/POP3 tests ------------------------------------

# Free client addresses that match the lab's "modern" rule. Dovecot's auth
# penalty (2-15 s per failed login) is keyed on the client address mailshim
# passes on, so every test that fails a login on purpose uses its own address.
SPARE_SOURCES = ["127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"]


class LogWatch:
    """Looks only at what a log file gained after the watch was created."""

    def __init__(self, path):
        self.path = path
        try:
            self.offset = os.path.getsize(path)
        except OSError:
            self.offset = 0

    def text(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait(self, pattern, timeout=10.0):
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.text()), timeout=timeout,
                        what=f"/{pattern}/ in the new part of {self.path}")

    def lines(self, pattern):
        rx = re.compile(pattern)
        return [line for line in self.text().splitlines() if rx.search(line)]


def session_id(ms, rport, timeout=5.0):
    """The mailshim session id of the connection from local port `rport`."""
    rx = re.compile(r"connect session=(\S+) .*\brport=%d\b" % rport)
    m = wait_for(lambda: rx.search(ms.log_text()), timeout=timeout, what=f"connect line for rport={rport}")
    return m.group(1)


def submit(frm, password, to, subject, body="Hello from the mailshim integration tests.\r\n", timeout=60):
    """Submits one message through mailshim's submission port (STARTTLS, AUTH)."""
    import smtplib
    msg = (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject}@example.test>\r\n\r\n{body}")
    with smtplib.SMTP("127.0.0.1", port("smtp"), local_hostname="laptop.example.test", timeout=timeout) as s:
        s.starttls(context=tls_context())
        s.login(frm, password)
        s.sendmail(frm, [to], msg)
    return msg


def down_mailshim(name, delta=7):
    """A second mailshim from the lab config with every listener moved by
    `delta` and every upstream pointed at a port where nothing listens.
    Registers "<listener>_down" in PORTS; returns the (unstarted) Mailshim."""
    with open(os.path.join(LAB, "mailshim.toml")) as f:
        cfg = f.read()
    moves = {}
    for p in ("smtp", "smtps", "imap", "imaps", "pop3", "pop3s", "lab_smtp", "lab_imap", "lab_pop3"):
        moves[port(p)] = port(p) + delta
    for p in ("smtp", "smtps", "imap", "imaps", "pop3", "pop3s"):
        PORTS[p + "_down"] = port(p) + delta
    cfg = re.sub(r"(?m)^port = (\d+)$", lambda m: "port = %d" % moves.get(int(m.group(1)), int(m.group(1))), cfg)
    path = os.path.join(LAB, f"{name}.toml")
    with open(path, "w") as f:
        f.write(cfg)
    return Mailshim(path, name=name)

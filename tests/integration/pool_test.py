"""Backend pools: health checks, user affinity, failover, all-down.

Two "Dovecot backends" stand in front of the one lab Dovecot: two TCP
forwarders this test controls (connecting from 127.0.0.10, the address the
lab Dovecot trusts, so ID forwarding still works). mailshim's IMAP listeners
point at a [[pool]] of both with affinity = "user".
"""

import os
import re
import select
import socket
import threading
import time

import harness as h
from harness import LAB, MODERN, Raw

ALICE, ALICE_PW = h.USERS["alice"]
TARO, TARO_PW = h.USERS["taro"]


class Forwarder:
    """A stoppable TCP forwarder 127.0.0.1:port -> the lab Dovecot IMAP port."""

    def __init__(self, port, target):
        self.port, self.target = port, target
        self.sock = None
        self.conns = []
        self.stop_flag = threading.Event()

    def start(self):
        self.stop_flag.clear()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.stop_flag.set()
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        self.conns = []

    def _accept(self):
        while not self.stop_flag.is_set():
            try:
                self.sock.settimeout(0.2)
                client, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5,
                                                    source_address=("127.0.0.10", 0))
            except OSError:
                client.close()
                continue
            self.conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a, b):
        try:
            while not self.stop_flag.is_set():
                r, _, _ = select.select([a, b], [], [], 0.2)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            pass
        finally:
            a.close()
            b.close()


A_PORT = h.port("lab_imap") + 90
B_PORT = h.port("lab_imap") + 91
FWD = {"dovecot-a": Forwarder(A_PORT, h.port("lab_imap")), "dovecot-b": Forwarder(B_PORT, h.port("lab_imap"))}


def pool_config():
    with open(os.path.join(LAB, "mailshim.toml")) as f:
        cfg = f.read()
    # Listeners +70, IMAP listeners on the pool, two extra upstreams and the pool.
    out, in_listener = [], False
    for line in cfg.splitlines():
        if line.startswith("[["):
            in_listener = line.strip() == "[[listener]]"
        m = re.match(r"^port = (\d+)$", line)
        if in_listener and m:
            line = "port = %d" % (int(m.group(1)) + 70)
        if in_listener and line == 'upstream = "dovecot-imap"':
            line = 'upstream = "dovecots"'
        out.append(line)
    cfg = "\n".join(out) + "\n"
    block = ""
    for name, port in (("dovecot-a", A_PORT), ("dovecot-b", B_PORT)):
        block += (f'\n[[upstream]]\nname = "{name}"\nprotocol = "imap"\nhost = "127.0.0.1"\nport = {port}\n'
                  f'tls = "starttls"\nca_file = "{LAB}/ca.pem"\nverify_name = "mail.example.test"\n'
                  f'client_address = "imap-id"\nsource_address = "127.0.0.10"\nconnect_timeout_ms = 2000\n')
    block += ('\n[[pool]]\nname = "dovecots"\nprotocol = "imap"\nupstreams = ["dovecot-a", "dovecot-b"]\n'
              'affinity = "user"\nhealth_interval_ms = 300\nhealth_timeout_ms = 500\nrise = 1\nfall = 1\n')
    # Pools must follow their upstreams: put both before the first [[rule]].
    i = cfg.index("[[rule]]")
    cfg = cfg[:i] + block.lstrip("\n") + "\n" + cfg[i:]
    path = os.path.join(LAB, "mailshim-pool.toml")
    with open(path, "w") as f:
        f.write(cfg)
    return path


h.PORTS["imaps_pool"] = h.port("imaps") + 70
MS = h.Mailshim(pool_config(), name="mailshim-pool", wait_ports=("imaps_pool",))


def login(user, password):
    """IMAPS login through the pool; returns the upstream mailshim logged for it."""
    c = Raw("imaps_pool", source=MODERN, tls=True)
    first = c.line()
    assert first.startswith("* OK"), first
    c.send(f'a LOGIN {user} "{password}"\r\n')
    lines = c.until_tagged("a")
    ok = lines[-1].startswith("a OK")
    if ok:
        c.send("b LOGOUT\r\n")
        c.until_tagged("b")
    c.close()
    return ok, lines


def upstream_of_last_login(user, timeout=5.0):
    rx = re.compile(r"login session=\S+ rip=\S+ user=%s result=ok upstream=(\S+)" % re.escape(user))
    found = h.wait_for(lambda: rx.findall(MS.log_text()), timeout=timeout, what=f"login line for {user}")
    return found[-1]


def test_same_user_same_backend_while_both_up():
    seen = set()
    for _ in range(3):
        ok, lines = login(ALICE, ALICE_PW)
        assert ok, lines
        seen.add(upstream_of_last_login(ALICE))
    assert len(seen) == 1, f"alice landed on {seen}"
    ok, lines = login(TARO, TARO_PW)
    assert ok, lines
    print(f"  alice -> {seen.pop()}, taro -> {upstream_of_last_login(TARO)}")


def test_backend_down_new_sessions_go_to_the_other():
    ok, _ = login(ALICE, ALICE_PW)
    home = upstream_of_last_login(ALICE)
    other = "dovecot-b" if home == "dovecot-a" else "dovecot-a"
    FWD[home].stop()
    try:
        # Within the health-check interval (300 ms, fall = 1) the pool notices;
        # a session arriving earlier fails over on its own connect error.
        h.wait_for(lambda: re.search(r"upstream-health upstream=%s state=down" % home, MS.log_text()), timeout=5,
                   what=f"{home} marked down")
        ok, lines = login(ALICE, ALICE_PW)
        assert ok, lines
        assert upstream_of_last_login(ALICE) == other
    finally:
        FWD[home].start()
    h.wait_for(lambda: re.search(r"upstream-health upstream=%s state=up" % home, MS.log_text()), timeout=5,
               what=f"{home} marked up")
    ok, _ = login(ALICE, ALICE_PW)
    assert ok and upstream_of_last_login(ALICE) == home, "alice did not return to her backend"


def test_all_backends_down_immediate_bye():
    for f in FWD.values():
        f.stop()
    try:
        for name in FWD:
            h.wait_for(lambda: re.search(r"upstream-health upstream=%s state=down" % name, MS.log_text()),
                       timeout=5, what=f"{name} marked down")
        t0 = time.time()
        c = Raw("imaps_pool", source=MODERN, tls=True)
        assert c.line().startswith("* OK")
        c.send(f'a LOGIN {ALICE} "{ALICE_PW}"\r\n')
        line = c.line()
        assert line.startswith("* BYE [UNAVAILABLE]"), line
        assert time.time() - t0 < 3.0
        c.close()
    finally:
        for f in FWD.values():
            f.start()


if __name__ == "__main__":
    for f in FWD.values():
        f.start()
    try:
        h.run([test_same_user_same_backend_while_both_up, test_backend_down_new_sessions_go_to_the_other,
               test_all_backends_down_immediate_bye], mailshim=MS)
    finally:
        for f in FWD.values():
            f.stop()

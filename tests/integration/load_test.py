"""Worker threads under a bounded concurrent load: 2,000 IMAPS sessions
(TLS, LOGIN, NOOP, LOGOUT) from 32 concurrent clients over the real lab
Dovecot finish without a single error, and the disconnect counters show the
sessions spread over every worker (SO_REUSEPORT). Loopback only; bounded in
count and time."""

import concurrent.futures
import os
import re
import socket
import ssl
import time
import urllib.request

import harness as h
from harness import LAB

# The full 2,000 on the plain build; a smaller bounded load under the
# sanitizers (same code paths, 5-20x slower per session).
_SANITIZED = any(k in h.BIN.lower() for k in ("asan", "tsan"))
SESSIONS = int(os.environ.get("MAILSHIM_LOAD_SESSIONS", "500" if _SANITIZED else "2000"))
CONCURRENCY = 32
DEADLINE_S = 240
METRICS_PORT = h.port("smtp") + 96
ALICE, ALICE_PW = h.USERS["alice"]


def config():
    with open(os.path.join(LAB, "mailshim.toml")) as f:
        cfg = f.read()
    cfg = cfg.replace("[limits]", f'[metrics]\naddress = "127.0.0.1"\nport = {METRICS_PORT}\n\n[limits]', 1)
    cfg = cfg.replace("[server]\n", "[server]\nworkers = 2\n", 1)
    path = os.path.join(LAB, "mailshim-load.toml")
    with open(path, "w") as f:
        f.write(cfg)
    return path


CTX = h.tls_context()


def one_session(i):
    s = socket.create_connection(("127.0.0.1", h.port("imaps")), timeout=30,
                                 source_address=(h.SPARE_SOURCES[i % len(h.SPARE_SOURCES)], 0))
    t = CTX.wrap_socket(s, server_hostname="mail.example.test")
    f = t.makefile("rb")
    try:
        if not f.readline().startswith(b"* OK"):
            return "greeting"
        t.sendall(f'a LOGIN {ALICE} "{ALICE_PW}"\r\nb NOOP\r\nc LOGOUT\r\n'.encode())
        tags = {b"a": None, b"b": None, b"c": None}
        while any(v is None for v in tags.values()):
            line = f.readline()
            if not line:
                return "eof"
            tag = line.split(b" ", 1)[0]
            if tag in tags:
                tags[tag] = line.split(b" ", 2)[1]
        return None if all(v == b"OK" for v in tags.values()) else f"reply {tags}"
    finally:
        f.close()
        t.close()


def test_2000_sessions_no_errors_spread_over_workers():
    t0 = time.time()
    errors = {}
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        for err in pool.map(one_session, range(SESSIONS), timeout=DEADLINE_S):
            if err:
                errors[err] = errors.get(err, 0) + 1
    elapsed = time.time() - t0
    print(f"  {SESSIONS} sessions in {elapsed:.1f}s ({SESSIONS / elapsed:.0f}/s), errors: {errors or 'none'}")
    assert not errors, errors
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5) as r:
        text = r.read().decode()
    per_worker = {int(w): int(n) for w, n in re.findall(r'^mailshim_worker_sessions_total\{worker="(\d+)"\} (\d+)$', text, re.M)}
    print(f"  sessions per worker: {per_worker}")
    assert len(per_worker) == 2 and all(n > SESSIONS * 0.1 for n in per_worker.values()), per_worker
    assert sum(per_worker.values()) >= SESSIONS


if __name__ == "__main__":
    h.run([test_2000_sessions_no_errors_spread_over_workers],
          mailshim=h.Mailshim(config(), name="mailshim-load", wait_ports=("imaps",)))

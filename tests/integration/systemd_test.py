"""systemd integration without systemd: mailshim's sd_notify messages are
received on a NOTIFY_SOCKET datagram socket this test creates (READY=1 after
the listeners are up, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on
SIGTERM), a bad config on reload keeps the old one, and the unit file passes
`systemd-analyze verify` when that tool is available."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile

import harness as h
from harness import LAB


def recv_all(sock, want, timeout=10.0):
    """Collects datagrams until one contains `want`."""
    sock.settimeout(timeout)
    seen = []
    while True:
        data = sock.recv(4096).decode()
        seen.append(data)
        if want in data:
            return seen


def test_notify_ready_reload_stopping():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    cfg = os.path.join(d, "mailshim.toml")
    shutil.copy(os.path.join(LAB, "mailshim.toml"), cfg)
    os.environ["NOTIFY_SOCKET"] = path
    ms = h.Mailshim(cfg, name="mailshim-notify")
    try:
        ms.start()
        # READY=1 comes after the listeners accept connections.
        recv_all(sock, "READY=1")
        socket.create_connection(("127.0.0.1", h.port("smtp")), timeout=2).close()
        ms.signal(signal.SIGHUP)
        seen = recv_all(sock, "READY=1")
        assert any("RELOADING=1" in s for s in seen), seen
        h.log_contains(ms.log_path, r"reload result=ok")
        # A broken config on reload keeps the running one.
        with open(cfg, "a") as f:
            f.write("\n[bogus]\nkey = 1\n")
        ms.signal(signal.SIGHUP)
        recv_all(sock, "READY=1")
        h.log_contains(ms.log_path, r"unknown key 'bogus'")
        h.log_contains(ms.log_path, r"keeping the running configuration")
        socket.create_connection(("127.0.0.1", h.port("smtp")), timeout=2).close()
        ms.signal(signal.SIGTERM)
        recv_all(sock, "STOPPING=1")
        assert ms.proc.wait(timeout=15) == 0
    finally:
        del os.environ["NOTIFY_SOCKET"]
        ms.stop()
        sock.close()
        shutil.rmtree(d, ignore_errors=True)


def test_unit_file_verifies():
    tool = shutil.which("systemd-analyze")
    if not tool:
        print("  (systemd-analyze not installed; unit checked for required directives only)")
    unit = os.path.join(h.SRC, "systemd", "mailshim.service")
    text = open(unit).read()
    for needle in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
                   "ProtectSystem=strict", "NoNewPrivileges=yes", "SystemCallFilter=@system-service"):
        assert needle in text, needle
    if tool:
        # verify needs the binary at ExecStart's path; check syntax with a copy pointing at ours.
        d = tempfile.mkdtemp()
        try:
            copy = os.path.join(d, "mailshim.service")
            with open(copy, "w") as f:
                f.write(text.replace("/usr/sbin/mailshim", h.BIN))
            out = subprocess.run([tool, "verify", copy], capture_output=True, text=True, timeout=60)
            problems = [l for l in (out.stdout + out.stderr).splitlines()
                        if "mailshim.service" in l and "Failed to" not in l and "not found" not in l]
            assert out.returncode == 0 or not problems, out.stdout + out.stderr
        finally:
            shutil.rmtree(d, ignore_errors=True)


def test_security_exposure_is_ok():
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze missing (scripts/install-deps installs systemd)"
    unit = os.path.join(h.SRC, "systemd", "mailshim.service")
    out = subprocess.run([tool, "security", "--offline=true", unit], capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for mailshim.service: ([0-9.]+) (\w+)", out.stdout + out.stderr)
    assert m, out.stdout[-2000:] + out.stderr[-2000:]
    print(f"  exposure {m.group(1)} {m.group(2)}")
    assert float(m.group(1)) <= 2.0, m.group(0)  # systemd calls <= 2.0 "OK"


def test_check_config_reports_errors():
    d = tempfile.mkdtemp()
    try:
        bad = os.path.join(d, "bad.toml")
        with open(os.path.join(LAB, "mailshim.toml")) as f:
            text = f.read()
        with open(bad, "w") as f:
            f.write(text.replace('networks = ["127.0.0.2/32"]', 'networks = ["127.0.0.2/40"]')
                    + '\n[[rule]]\nname = "x"\nnetworks = ["10.0.0.0/8"]\nquirks = ["no.such.quirk"]\n')
        out = subprocess.run([h.BIN, "--check-config", bad], capture_output=True, text=True, timeout=30)
        assert out.returncode == 1, out.stdout + out.stderr
        assert "127.0.0.2/40" in out.stderr and "unknown quirk 'no.such.quirk'" in out.stderr, out.stderr
        assert "bad.toml:" in out.stderr
        # A key that does not match its certificate.
        mism = os.path.join(d, "mismatch.toml")
        key = os.path.join(d, "other.key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key],
                       check=True, capture_output=True)
        with open(mism, "w") as f:
            f.write(text.replace(os.path.join(LAB, "privkey.pem"), key))
        out = subprocess.run([h.BIN, "--check-config", mism], capture_output=True, text=True, timeout=30)
        assert out.returncode == 1 and "does not match" in out.stderr, out.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    h.run([test_check_config_reports_errors, test_notify_ready_reload_stopping, test_unit_file_verifies,
           test_security_exposure_is_ok])

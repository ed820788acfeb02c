"""The admin console on its Unix socket, driven with the real client
(`mailshim ctl` and the `mailshimctl` name), against mailshim in front of
the real lab: SHOW STATS|SESSIONS|UPSTREAMS|RULES|CLIENTS, KILL, RELOAD (good
and refused), SO_PEERCRED refusal, bad commands, SHUTDOWN GRACEFUL."""

import imaplib
import os
import re
import subprocess
import urllib.request

import harness as h
from harness import LAB, LEGACY, Raw

ALICE, ALICE_PW = h.USERS["alice"]
SOCK = os.path.join(LAB, "admin.sock")
CFG = os.path.join(LAB, "admin.toml")
METRICS_PORT = h.port("smtp") + 94


def write_config(extra=""):
    with open(os.path.join(LAB, "mailshim.toml")) as f:
        cfg = f.read()
    # mode 0666: anyone may connect, so the SO_PEERCRED check is what refuses.
    cfg = cfg.replace("[limits]", f'[admin]\nsocket = "{SOCK}"\nmode = 0o666\n\n'
                                  f'[metrics]\naddress = "127.0.0.1"\nport = {METRICS_PORT}\n\n[limits]', 1)
    with open(CFG, "w") as f:
        f.write(cfg + extra)


write_config()
MS = h.Mailshim(CFG, name="admin", wait_ports=("smtp", "imaps"))


def ctl(*words, via="ctl", user=None):
    if via == "ctl":
        cmd = [h.BIN, "ctl", "--socket", SOCK, *words]
    else:  # the mailshimctl name, socket path read from the config
        link = os.path.join(LAB, "mailshimctl")
        if not os.path.islink(link):
            os.symlink(h.BIN, link)
        cmd = [link, "--config", CFG, *words]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]  # numeric ids
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout


def test_show_stats_uses_the_metrics_names():
    rc, out = ctl("SHOW", "STATS")
    assert rc == 0 and out.endswith("OK\n"), (rc, out[-200:])
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5) as r:
        prom = r.read().decode()
    names = lambda text, prefix: {re.split(r"[{ ]", l[len(prefix):])[0] for l in text.splitlines()
                                  if l and not l.startswith("#") and l.startswith(prefix)}
    console = names(out.replace("OK\n", ""), "")
    metrics = names(prom, "mailshim_")
    assert "sessions_accepted_total" in console
    assert console <= metrics, console - metrics  # one declaration, two renderings


def test_show_sessions_and_kill():
    m = imaplib.IMAP4_SSL("127.0.0.1", h.port("imaps"), ssl_context=h.tls_context())
    m.login(ALICE, ALICE_PW)
    legacy = Raw("smtp", source=LEGACY)
    assert legacy.smtp_reply()[0] == 220
    rc, out = ctl("show", "sessions")
    assert rc == 0, out
    assert re.search(r"^ID\s+WORKER\s+LISTENER\s+PROTO\s+STATE\s+CLIENT\s+USER", out, re.M), out
    row = next(l for l in out.splitlines() if " alice@example.test " in l)
    assert re.search(r"\bimaps\s+imap\s+relay\s+127\.0\.0\.1\s+alice@example\.test\s+modern\b", row), row
    assert re.search(r"\bsubmission\s+smtp\s+preauth\s+127\.0\.0\.2\s+-\s+legacy-lan\b", out), out
    assert re.search(r"^OK \d+ sessions$", out, re.M)
    sid = row.split()[0]
    rc, out = ctl("KILL", sid)
    assert (rc, out) == (0, f"OK killed {sid}\n"), (rc, out)
    # The client gets IMAP's own notice, then the connection closes.
    data = b""
    m.sock.settimeout(5)
    while b"BYE" not in data:
        chunk = m.sock.recv(4096)
        if not chunk:
            break
        data += chunk
    assert b"* BYE Connection closed by the administrator." in data, data
    rc, out = ctl("KILL", sid)
    assert rc == 1 and out.startswith("ERR no session"), (rc, out)
    assert f"kill session={sid} by=admin" in MS.log_text()
    legacy.close()


def test_show_upstreams_rules_clients():
    rc, out = ctl("SHOW", "UPSTREAMS")
    assert rc == 0
    assert re.search(r"^postfix-submission\s+smtp\s+127\.0\.0\.1:\d+\s+starttls\s+xclient\b", out, re.M), out
    rc, out = ctl("SHOW", "RULES")
    assert rc == 0
    assert re.search(r"^1\s+legacy-lan\s+127\.0\.0\.2/32\b", out, re.M), out
    assert re.search(r"retired-lan.*2026-01-31\(overdue_refuse\)", out), out
    assert out.rstrip().endswith("rules, first match wins")
    held = Raw("smtp", source="127.0.0.6")
    held.smtp_reply()
    rc, out = ctl("SHOW", "CLIENTS")
    assert rc == 0 and re.search(r"^127\.0\.0\.6\s+1\s+0\b", out, re.M), out
    held.close()


def test_reload_good_and_refused():
    rc, out = ctl("RELOAD", via="mailshimctl")
    assert (rc, out) == (0, f"OK reloaded {CFG}\n"), (rc, out)
    write_config('\n[[rule]]\nname = "broken"\nnetworks = ["not-a-network"]\n')
    try:
        rc, out = ctl("RELOAD")
        assert rc == 1 and out.startswith("ERR reload refused, running configuration kept:"), (rc, out)
        assert "not-a-network" in out
    finally:
        write_config()
    # Still serving with the old configuration.
    r = Raw("smtp")
    assert r.smtp_reply()[0] == 220
    r.close()


def test_bad_commands_and_foreign_users():
    for words in (["DROP", "TABLE"], ["SHOW"], ["KILL", "../etc"], ["SHUTDOWN", "NOW"]):
        rc, out = ctl(*words)
        assert rc == 1 and out.startswith("ERR "), (words, rc, out)
    rc, out = ctl("HELP")
    assert rc == 0 and "SHUTDOWN [GRACEFUL]" in out
    rc, out = ctl("SHOW", "STATS", user="65534")
    assert rc == 1 and out == "ERR permission denied\n", (rc, out)
    assert re.search(r"admin result=refused uid=65534", MS.log_text())


def test_shutdown_graceful_drains():
    m = imaplib.IMAP4_SSL("127.0.0.1", h.port("imaps"), ssl_context=h.tls_context())
    m.login(ALICE, ALICE_PW)
    rc, out = ctl("SHUTDOWN", "GRACEFUL")
    assert (rc, out) == (0, "OK draining\n"), (rc, out)
    # New connections are no longer accepted; the open session still works.
    h.wait_for(lambda: subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{h.port('smtp')}"],
                                      capture_output=True).returncode != 0, timeout=5, what="listeners closed")
    assert m.noop()[0] == "OK"
    m.logout()
    assert MS.proc.wait(timeout=15) == 0


if __name__ == "__main__":
    h.run([
        test_show_stats_uses_the_metrics_names,
        test_show_sessions_and_kill,
        test_show_upstreams_rules_clients,
        test_reload_good_and_refused,
        test_bad_commands_and_foreign_users,
        test_shutdown_graceful_drains,
    ], mailshim=MS)

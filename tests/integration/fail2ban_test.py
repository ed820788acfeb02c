"""fail2ban filter (contrib/fail2ban/filter.d/mailshim.conf) against real
mailshim log lines: the real mailshim in front of the real lab Postfix takes
3 failed SMTP logins from 127.0.0.5 and 1 successful one from 127.0.0.6;
`fail2ban-regex` on mailshim's log must then find exactly the 3 failures,
all for host 127.0.0.5, in the file format (spdlog's ISO timestamp) and in
the syslog/journal shape ("host mailshim[PID]: ..."). No password may appear
in the log. Each failure waits for Dovecot's auth penalty (2-15 s)."""

import base64
import os
import re
import shutil
import smtplib
import subprocess
import tempfile

import harness as h

ALICE, ALICE_PW = h.USERS["alice"]
BAD_PW = "Wrong-Passw0rd-f2b"
ATTACKER = "127.0.0.5"
GOOD_CLIENT = "127.0.0.6"
FILTER = os.path.join(h.SRC, "contrib", "fail2ban", "filter.d", "mailshim.conf")
JAIL = os.path.join(h.SRC, "contrib", "fail2ban", "jail.d", "mailshim.conf")
MS = h.Mailshim(name="mailshim-fail2ban")
STATE = {}


def smtp_login(source, password):
    """One SMTP session from `source`: STARTTLS, exactly one AUTH PLAIN, QUIT.
    Returns the AUTH reply code (smtplib.login would retry with LOGIN)."""
    with smtplib.SMTP("127.0.0.1", h.port("smtp"), local_hostname="pc.example.test", timeout=60,
                      source_address=(source, 0)) as s:
        s.starttls(context=h.tls_context())
        s.ehlo("pc.example.test")
        s.user, s.password = ALICE, password
        try:
            code, _ = s.auth("PLAIN", s.auth_plain)
        except smtplib.SMTPAuthenticationError as e:
            code = e.smtp_code
        return code


def fail2ban_regex(path, out=None, extra=()):
    cmd = ["fail2ban-regex", "-r", *extra]
    if out:
        cmd += ["-o", out]
    cmd += [path, FILTER]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_tools_present():
    assert shutil.which("fail2ban-regex"), "fail2ban-regex missing: scripts/install-deps installs fail2ban"
    assert os.path.exists(FILTER) and os.path.exists(JAIL)
    jail = open(JAIL).read()
    for needle in ("filter   = mailshim", "port     = smtp,submission,submissions,imap,imaps,pop3,pop3s",
                   "maxretry = 5", "findtime = 10m", "bantime  = 1h"):
        assert needle in jail, needle
    flt = open(FILTER).read()
    assert "journalmatch = _SYSTEMD_UNIT=mailshim.service" in flt


def test_three_failures_one_success():
    watch = h.LogWatch(MS.log_path)
    for _ in range(3):
        assert smtp_login(ATTACKER, BAD_PW) == 535
    assert smtp_login(GOOD_CLIENT, ALICE_PW) == 235
    watch.wait(r"login session=\S+ rip=127\.0\.0\.6 .*result=ok", timeout=20)
    failed = watch.lines(r"login session=\S+ rip=127\.0\.0\.5 .*result=failed")
    assert len(failed) == 3, watch.text()
    STATE["text"] = watch.text()


def write_log(lines, name):
    d = STATE.setdefault("dir", tempfile.mkdtemp(prefix="mailshim-f2b."))
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def check_matches(path, extra=()):
    ips = [line.strip() for line in fail2ban_regex(path, out="<ip>", extra=extra).splitlines() if line.strip()]
    assert ips == [ATTACKER] * 3, ips
    summary = fail2ban_regex(path, extra=extra)
    m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", summary)
    assert m and int(m.group(3)) == 3, summary
    # The success and every other event line stay unmatched.
    assert int(m.group(1)) == int(m.group(3)) + int(m.group(4)), summary
    return summary


def test_filter_matches_exactly_the_failures_in_the_log_file():
    lines = STATE["text"].splitlines()
    assert any(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} warning mailshim: login ", x) for x in lines), lines
    summary = check_matches(write_log(lines, "mailshim.log"))
    # The date comes from spdlog's timestamp, not from a fallback pattern.
    assert "Year-Month-DayT24hour:Minute:Second" in summary, summary


def test_filter_matches_syslog_shape():
    # What rsyslog writes from the journal.
    lines = ["Nov 28 14:06:00 mx1 mailshim[4242]: " + x for x in STATE["text"].splitlines()]
    check_matches(write_log(lines, "syslog"))


def test_filter_matches_journal_shape():
    # fail2ban's systemd backend matches "HOSTNAME mailshim[PID]: MESSAGE" and
    # takes the time from the journal, not from the line ({NONE}).
    lines = ["mx1 mailshim[4242]: " + x for x in STATE["text"].splitlines()]
    check_matches(write_log(lines, "journal"), extra=("-d", "{NONE}"))


def test_no_password_in_log():
    text = MS.log_text()
    for secret in (BAD_PW, ALICE_PW):
        assert secret not in text
        for s in (base64.b64encode(f"\0{ALICE}\0{secret}".encode()).decode(),
                  base64.b64encode(secret.encode()).decode()):
            assert s not in text


def test_cleanup():
    shutil.rmtree(STATE.get("dir", ""), ignore_errors=True)


if __name__ == "__main__":
    h.run([
        test_tools_present,
        test_three_failures_one_success,
        test_filter_matches_exactly_the_failures_in_the_log_file,
        test_filter_matches_syslog_shape,
        test_filter_matches_journal_shape,
        test_no_password_in_log,
        test_cleanup,
    ], MS)

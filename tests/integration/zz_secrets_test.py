"""Runs LAST in the integration run (its name sorts last; tests/CMakeLists.txt
also makes it DEPEND on every other integration test): scans every log the
run left in $MAILSHIM_LAB_DIR for the lab passwords in every form they travel
in, and finds none.

Scanned: mailshim's logs (*-test.log), the /metrics bodies metrics_test.py
scraped (metrics-scrape.txt), mailshim's state dir, and the lab Postfix and
Dovecot logs (a password there would mean mailshim put it in a field that
gets logged, e.g. a login name). Forms: the password itself, its base64 (an
AUTH LOGIN answer), the AUTH PLAIN blobs \\0user\\0pass and user\\0user\\0pass
(base64), the same blobs escaped as mailshim's logSafe() would write them,
and the IMAP-quoted form.
"""

import base64
import glob
import os

import evil_backend as eb
import harness as h

ACCOUNTS = list(h.USERS.values()) + [eb.VICTIM, ("attacker@example.test", "attacker-pw")]


def log_safe(b):
    return "".join(chr(c) if 0x20 <= c < 0x7f and c != 0x5C else "\\x%02x" % c for c in b).encode()


def forms(user, password):
    pw = password.encode()
    out = {pw, base64.b64encode(pw), log_safe(pw), log_safe(pw).replace(b'"', b'\\"'),
           pw.replace(b"\\", b"\\\\").replace(b'"', b'\\"')}
    for blob in (b"\0" + user.encode() + b"\0" + pw, user.encode() + b"\0" + user.encode() + b"\0" + pw):
        out.add(base64.b64encode(blob))
        out.add(log_safe(blob))
    return out


def files():
    found = sorted(set(glob.glob(os.path.join(h.LAB, "*-test.log")) +
                       glob.glob(os.path.join(h.LAB, "metrics-scrape*.txt")) +
                       glob.glob(os.path.join(h.LAB, "mailshim-state", "*")) +
                       [p for p in (os.path.join(h.LAB, "postfix.log"), os.path.join(h.LAB, "dovecot.log"))
                        if os.path.exists(p)]))
    return [p for p in found if os.path.isfile(p)]


def scan(paths):
    hits, total = [], 0
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        total += len(data)
        for user, pw in ACCOUNTS:
            for form in forms(user, pw):
                i = data.find(form)
                if i >= 0:
                    hits.append("%s: %s's password as %r near %r" % (os.path.basename(path), user, form,
                                                                      data[max(0, i - 80):i + 20]))
    return hits, total


def test_scan_finds_planted_leaks():
    # The scanner itself works: every way a password could be written is found.
    import tempfile
    user, pw = h.USERS["bob"]
    with tempfile.TemporaryDirectory() as d:
        leaks = {
            "kv": b'note text="pass=b0b pa\\"ss\\x5cwd"\n',
            "plain-blob": b"AUTH PLAIN " + base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode()) + b"\n",
            "login-answer": base64.b64encode(pw.encode()) + b"\n",
            "imap-quoted": b'a LOGIN "bob" "b0b pa\\"ss\\\\wd"\n',
        }
        for name, line in leaks.items():
            path = os.path.join(d, name + "-test.log")
            with open(path, "wb") as f:
                f.write(b"2026-01-01T00:00:00.000 info mailshim: " + line)
            hits, _ = scan([path])
            assert hits, "the scanner missed a %s leak: %r" % (name, line)
    clean, _ = scan([])
    assert clean == []


def test_no_secret_in_any_log():
    paths = files()
    mailshim_logs = [p for p in paths if p.endswith("-test.log")]
    assert mailshim_logs, "no mailshim log in %s: nothing to check (run after the other tests)" % h.LAB
    hits, total = scan(paths)
    print("scanned %d files, %d bytes: %s" % (len(paths), total, ", ".join(os.path.basename(p) for p in paths)),
          flush=True)
    assert not hits, "secrets in logs:\n" + "\n".join(hits)


if __name__ == "__main__":
    h.run([test_scan_finds_planted_leaks, test_no_secret_in_any_log])

"""Fault injection with nothing lost (issue 9, part 4), fast version: ~1,000
SMTP submission sessions through mailshim with the backend failing at every
point (before the greeting, during the backend STARTTLS, during AUTH, at MAIL
and RCPT, mid-DATA, after storing the message but before the 250, delays and
hangs), the backend process SIGKILLed once mid-run, the client disconnecting
(FIN or RST) at each of those points, and ~10% of the sessions through a
fault-injecting TCP relay in front of the real lab Postfix. The tally must
show: every 250 is stored exactly once with the content the client sent, no
message stored twice, nothing stored that the client did not finish, every
other attempt got 4xx/5xx or a close, mailshim alive with its active sessions
back to 0 and its RSS back near the baseline. See fault_driver.py; the
10,000-session version runs from scripts/soak."""

import os

import harness as h
import fault_driver as fd

_SANITIZED = any(k in h.BIN.lower() for k in ("asan", "tsan"))
SESSIONS = int(os.environ.get("MAILSHIM_FAULT_SESSIONS", "300" if _SANITIZED else "1000"))
# Under the sanitizers the allocator keeps freed memory (quarantine, shadow):
# RSS is reported, not judged.
RSS_SLACK_KB = None if _SANITIZED else 16 * 1024


def test_faulted_sessions_nothing_lost():
    run = fd.Run(SESSIONS, concurrency=48, seed=int(os.environ.get("MAILSHIM_FAULT_SEED", "1")), real_share=0.1,
                 kills=1, timeout=30.0, rss_slack_kb=RSS_SLACK_KB)
    ok = run.execute(MS)
    print(run.table())
    print("  " + run.summary())
    for line in run.violations[:40]:
        print("  VIOLATION " + line)
    assert ok, f"{len(run.violations)} violations"
    acked = sum(1 for r in run.results if r.outcome == "ok250")
    # The 250 path was exercised, not just failures (~34 % without
    # sanitizers; a ThreadSanitizer mailshim is slow enough that more
    # sessions run into the backend's injected delays and time out).
    assert acked > SESSIONS * (0.15 if _SANITIZED else 0.3), acked
    assert run.figures["backend_kills"] == 1


MS = h.Mailshim(fd.write_config(), name="mailshim-fault", wait_ports=())

if __name__ == "__main__":
    h.PORTS["fault_normal"] = fd.MS_PORT["normal"]
    MS.wait_ports = ("fault_normal",)
    h.run([test_faulted_sessions_nothing_lost], mailshim=MS)

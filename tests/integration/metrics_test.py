"""The Prometheus endpoint: GET /metrics on the [metrics] address answers with
every counter declared in proxy/stats.h, labelled quirk uses and close
reasons, per-worker sessions and upstream health; other paths get 404."""

import os
import re
import urllib.error
import urllib.request

import harness as h
from harness import LAB, LEGACY, Raw

METRICS_PORT = h.port("smtp") + 95  # 10682 + offset


def config():
    with open(os.path.join(LAB, "mailshim.toml")) as f:
        cfg = f.read()
    cfg = cfg.replace("[limits]", f'[metrics]\naddress = "127.0.0.1"\nport = {METRICS_PORT}\n\n[limits]', 1)
    path = os.path.join(LAB, "mailshim-metrics.toml")
    with open(path, "w") as f:
        f.write(cfg)
    return path


SCRAPES = os.path.join(LAB, "metrics-scrape.txt")  # zz_secrets_test.py checks it


def scrape():
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        body = r.read().decode()
    with open(SCRAPES, "a") as f:
        f.write(body)
    return body


def value(text, series):
    m = re.search(r"^" + re.escape(series) + r" (\d+)$", text, re.M)
    assert m, f"{series} missing from /metrics"
    return int(m.group(1))


def test_metrics_counts_a_legacy_session():
    before = scrape()
    c = Raw("smtp", source=LEGACY)
    assert c.smtp_reply()[0] == 220
    c.send("EHLO WIN7-PC\r\n")
    assert c.smtp_reply()[0] == 250
    c.send("QUIT\r\n")
    assert c.smtp_reply()[0] == 221
    c.close()
    after = h.wait_for(lambda: (lambda t: t if value(t, 'mailshim_sessions_closed_total{reason="client_quit"}')
                                > value(before, 'mailshim_sessions_closed_total{reason="client_quit"}') else None)(scrape()),
                       timeout=5, what="close counted")
    assert value(after, "mailshim_sessions_accepted_total") > value(before, "mailshim_sessions_accepted_total")
    assert value(after, 'mailshim_quirk_uses_total{quirk="smtp.helo_normalize"}') >= 1
    assert "# TYPE mailshim_sessions_active gauge" in after
    assert re.search(r"^mailshim_workers \d+$", after, re.M)
    assert re.search(r'^mailshim_worker_sessions_total\{worker="\d+"\} \d+$', after, re.M)
    # Nothing secret, nothing user-identifying in the metrics.
    assert "alice" not in after and "Secret" not in after


def test_labelled_families_and_histograms():
    """A full IMAPS login and a legacy SMTP session show up in the labelled
    families: sessions by listener and state, handshakes by version, auth
    results, quirk uses by rule, bytes, and the backend latency histograms."""
    import imaplib
    user, pw = h.USERS["alice"]
    with imaplib.IMAP4_SSL("127.0.0.1", h.port("imaps"), ssl_context=h.tls_context()) as m:
        m.login(user, pw)
        # The OK can reach the client a moment before the worker thread
        # moves the session to "relay" (replies are written at once), and
        # the scrape is served by another thread: wait for the gauge.
        relay = re.compile(r'^mailshim_sessions\{listener="imaps",state="relay"\} [1-9]', re.M)
        h.wait_for(lambda: relay.search(scrape()), timeout=5, what="relay gauge during the session")
        m.logout()
    c = Raw("smtp", source=LEGACY)
    c.smtp_reply()
    c.send("EHLO WIN7-PC\r\n")
    c.smtp_reply()
    c.send("QUIT\r\n")
    c.smtp_reply()
    c.close()
    t = h.wait_for(lambda: (lambda t: t if 'state="relay"} 0' in t else None)(scrape()), timeout=5,
                   what="relay gauge back to 0")
    assert value(t, 'mailshim_listener_sessions_total{listener="imaps"}') >= 1
    assert value(t, 'mailshim_tls_handshakes_total{listener="imaps",version="TLSv1.3"}') >= 1
    assert value(t, 'mailshim_auth_results_total{listener="imaps",result="ok"}') >= 1
    assert value(t, 'mailshim_quirk_rule_uses_total{quirk="smtp.helo_normalize",rule="legacy-lan"}') >= 1
    assert value(t, 'mailshim_bytes_relayed_total{listener="imaps",direction="from_backend"}') > 0
    assert re.search(r'^mailshim_upstream_login_seconds_count\{upstream="[^"]+"\} [1-9]', t, re.M)
    assert re.search(r'^mailshim_upstream_connect_seconds_bucket\{upstream="[^"]+",le="\+Inf"\} [1-9]', t, re.M)
    assert "# HELP mailshim_sessions_refused_address_limit_total " in t
    assert "# TYPE mailshim_upstream_login_seconds histogram" in t
    # Every sample line is well-formed exposition text.
    for line in t.splitlines():
        if line and not line.startswith("#"):
            assert re.match(r'^mailshim_[a-z_]+(\{[a-z_]+="[^"\n]*"(,[a-z_]+="[^"\n]*")*\})? -?[0-9.e+-]+$', line), line


def test_other_paths_are_404():
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/", timeout=5)
        raise AssertionError("/ answered")
    except urllib.error.HTTPError as e:
        assert e.code == 404


if __name__ == "__main__":
    open(SCRAPES, "w").close()  # this run's scrapes only
    h.run([test_metrics_counts_a_legacy_session, test_labelled_families_and_histograms, test_other_paths_are_404],
          mailshim=h.Mailshim(config(), name="mailshim-metrics"))

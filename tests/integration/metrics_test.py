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


def test_other_paths_are_404():
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/", timeout=5)
        raise AssertionError("/ answered")
    except urllib.error.HTTPError as e:
        assert e.code == 404


if __name__ == "__main__":
    open(SCRAPES, "w").close()  # this run's scrapes only
    h.run([test_metrics_counts_a_legacy_session, test_other_paths_are_404], mailshim=h.Mailshim(config(), name="mailshim-metrics"))

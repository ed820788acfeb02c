#!/usr/bin/python3
"""scripts/lab-lib/probe.py — check that lab ports answer with their greeting.

Usage: probe.py CAFILE NAME:PORT:plain|tls:EXPECT ...
For each spec, connects to 127.0.0.1:PORT (TLS from the first byte for "tls",
verified against CAFILE for mail.example.test), reads the first line and
checks that it starts with EXPECT. Prints "NAME PORT ok" or
"NAME PORT FAIL reason" per spec; exits 0 only if every spec is ok.
Used by `scripts/lab start` (readiness wait) and `scripts/lab status`.
"""
import socket
import ssl
import sys


def probe(cafile: str, port: int, mode: str, expect: str) -> str:
    """Returns "" when the port greets as expected, else the reason."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
            sock = raw
            if mode == "tls":
                ctx = ssl.create_default_context(cafile=cafile)
                sock = ctx.wrap_socket(raw, server_hostname="mail.example.test")
            line = sock.makefile("rb").readline(512).decode("utf-8", "replace").rstrip("\r\n")
            if sock is not raw:
                sock.close()
    except (OSError, ssl.SSLError) as exc:
        return str(exc)
    if not line.startswith(expect):
        return f"unexpected greeting {line!r}"
    return ""


def main() -> int:
    cafile, specs = sys.argv[1], sys.argv[2:]
    rc = 0
    for spec in specs:
        name, port, mode, expect = spec.split(":", 3)
        reason = probe(cafile, int(port), mode, expect)
        if reason:
            rc = 1
            print(f"{name} 127.0.0.1:{port} FAIL {reason}")
        else:
            print(f"{name} 127.0.0.1:{port} ok")
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""Run inside a test container: what another host on the network sees of a Director or Transporter.

    probe.py HOST CA_FILE TLS_PORT[,TLS_PORT...] CLOSED_PORT[,CLOSED_PORT...] [OPEN_PORT[,OPEN_PORT...]]

Prints one JSON object: for each TLS port whether a TLS handshake verified against CA_FILE (with
HOST as the name) completed and the server certificate's SANs; for each closed and open port
whether a TCP connection got through within 3 s (a closed one must not: the firewall drops it).
"""

from __future__ import annotations

import json
import socket
import ssl
import sys


def tls(host: str, port: int, ca: str) -> dict[str, object]:
    ctx = ssl.create_default_context(cafile=ca)
    try:
        with socket.create_connection((host, port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
            cert = s.getpeercert() or {}
            sans = [name for _kind, name in cert.get("subjectAltName", ())]
            return {"ok": True, "version": s.version(), "sans": sans}
    except (OSError, ssl.SSLError) as exc:
        return {"ok": False, "error": str(exc)}


def tcp(host: str, port: int) -> dict[str, object]:
    try:
        with socket.create_connection((host, port), timeout=3):
            return {"reachable": True}
    except TimeoutError:
        return {"reachable": False, "error": "timed out (dropped)"}
    except OSError as exc:
        return {"reachable": False, "error": str(exc)}


def main() -> None:
    host, ca, tls_ports, closed_ports = sys.argv[1:5]
    open_ports = sys.argv[5] if len(sys.argv) > 5 else ""
    print(
        json.dumps(
            {
                "tls": {p: tls(host, int(p), ca) for p in tls_ports.split(",") if p},
                "closed": {p: tcp(host, int(p)) for p in closed_ports.split(",") if p},
                "open": {p: tcp(host, int(p)) for p in open_ports.split(",") if p},
            }
        )
    )


if __name__ == "__main__":
    main()

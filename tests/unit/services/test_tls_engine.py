"""The TLS engine over memory BIOs: two real engines (server and client), real certificates, no socket."""

from __future__ import annotations

import os
from pathlib import Path

from tenantry.common import pki
from tenantry.protocol import tls
from tenantry.protocol.tlsengine import TLSEngine


def _engines(tmp: Path) -> tuple[TLSEngine, TLSEngine]:
    ca = pki.new_ca("test CA")
    pki.write_keypair(ca, tmp / "ca.crt", tmp / "ca.key")
    pki.write_keypair(pki.issue(ca, "server", ips=["127.0.0.1"]), tmp / "s.crt", tmp / "s.key")
    server = TLSEngine(tls.server_context(tmp / "s.crt", tmp / "s.key", client_ca=None), server_side=True)
    client = TLSEngine(tls.client_context(ca=tmp / "ca.crt"), server_side=False, server_hostname="127.0.0.1")
    for _ in range(10):
        done = client.handshake()
        server.feed(client.outgoing())
        done = server.handshake() and done
        client.feed(server.outgoing())
        if done and client.handshake():
            break
    assert server.secure and client.secure
    return server, client


def test_everything_decryptable_comes_out_of_one_read_in_order(tmp_path: Path) -> None:
    """Far more than the scratch buffer holds (3 MiB of records fed at once) comes out whole and in order."""
    server, client = _engines(tmp_path)
    data, eof = server.read()
    assert (data, eof) == (b"", "")  # nothing yet (session tickets are no application data)
    sent = [os.urandom(n) for n in (1, 5000, 16384, 70000, 3 << 20, 7)]
    for piece in sent:
        client.write(piece)
    server.feed(client.outgoing())
    data, eof = server.read()
    assert eof == "" and data == b"".join(sent)
    client.write(b"more")
    client.shutdown()
    server.feed(client.outgoing())
    assert server.read() == (b"more", "peer closed TLS")

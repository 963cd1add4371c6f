"""Garbage, malformed HTTP and HTTP/2, oversized bodies and frames: refused, and everyone else is served."""

from __future__ import annotations

import socket
import ssl
import struct

import pytest
from services_harness import ApiError, DirectorProc, TransporterProc

pytestmark = pytest.mark.integration


def _closed_after(sock: socket.socket, payload: bytes) -> bytes:
    sock.settimeout(10)
    sock.sendall(payload)
    chunks = []
    try:
        while data := sock.recv(65536):
            chunks.append(data)
    except (ConnectionResetError, ssl.SSLError):
        pass
    return b"".join(chunks)


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def test_garbage_and_malformed_input(director: DirectorProc, two_online: tuple[TransporterProc, ...]) -> None:
    a, _b = two_online
    # Plain-text garbage on the uplink port: the TLS handshake fails, the connection is closed.
    with socket.create_connection(("127.0.0.1", director.uplink_port)) as s:
        _closed_after(s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 5000)
    # TLS without a client certificate on the uplink port: refused.
    ctx = ssl.create_default_context(cafile=str(director.state / "ca.crt"))
    with (
        socket.create_connection(("127.0.0.1", director.uplink_port)) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s,
    ):
        assert _closed_after(s, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == b""
    # Garbage on the setup port (not TLS at all), and malformed HTTP inside TLS.
    with socket.create_connection(("127.0.0.1", director.setup_port)) as s:
        _closed_after(s, b"\x16\x03\x01garbage" * 100)
    with (
        socket.create_connection(("127.0.0.1", director.setup_port)) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s,
    ):
        answer = _closed_after(s, b"NOT HTTP AT ALL\r\n\x00\x01\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    # Oversized and malformed JSON bodies get a status and a message.
    with (
        socket.create_connection(("127.0.0.1", director.setup_port)) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s,
    ):
        head = (
            f"POST /api/v1/tenants HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer {director.token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 2097152\r\n\r\n"
        )
        s.settimeout(10)
        s.sendall(head.encode() + b"{")
        assert s.recv(65536).startswith(b"HTTP/1.1 413")
    with pytest.raises(ApiError) as exc:
        director.api("POST", "/api/v1/tenants", raw=b'{"name": 5')
    assert exc.value.status == 422
    with pytest.raises(ApiError) as exc:
        director.api("POST", "/api/v1/tenants", {"name": "Not A Valid Name!"})
    assert exc.value.status == 422 and "name" in exc.value.detail
    with pytest.raises(ApiError) as exc:
        director.api("POST", "/api/v1/enroll", {"tenant_id": "x", "token": "y"}, auth=False)
    assert exc.value.status == 422 and "csr_pem" in exc.value.detail
    # A valid tenant certificate speaking broken HTTP/2: an oversized frame, then a malformed one.
    for bad in (_frame(0x0, 0, 1, b"x" * 20000), b"\xff" * 64):
        mtls = ssl.create_default_context(cafile=str(director.state / "ca.crt"))
        mtls.load_cert_chain(a.state / "client.crt", a.state / "client.key")
        with (
            socket.create_connection(("127.0.0.1", director.uplink_port)) as raw,
            mtls.wrap_socket(raw, server_hostname="127.0.0.1") as s,
        ):
            s.settimeout(10)
            s.sendall(_frame(0x4, 0, 0, b"") + bad)  # SETTINGS, then the bad bytes
            _closed_after(s, b"")
    # Through all of it the Director kept serving the other tenant.
    assert director.online("tenant-b")
    assert director.api("GET", "/api/v1/health", auth=False)["status"] == "ok"

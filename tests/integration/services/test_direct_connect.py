"""Direct Connect: the Director reaches allow-listed client resources through the Transporter's TLS port."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from services_harness import ApiError, DirectorProc, TransporterProc, free_port, wait_for

pytestmark = pytest.mark.integration


def _roundtrip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def _dc_up(port: int) -> bool:
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    return True


def test_direct_connect_with_certificates(
    director: DirectorProc, make_transporter: Callable[..., TransporterProc], echo_port: int
) -> None:
    dc_port = free_port()
    t = make_transporter("client-c")
    created = director.create_tenant(
        "client-c", direct_connect={"address": f"127.0.0.1:{dc_port}", "auth": "certificate"}
    )
    assert t.enroll(director, created["credentials"]["enrollment_key"]).returncode == 0
    # Direct Connect only: no uplink session at all.
    t.start(
        "--no-uplink",
        "--direct-connect",
        "--direct-connect-host",
        "127.0.0.1",
        "--direct-connect-port",
        str(dc_port),
        "--allow",
        f"127.0.0.1:{echo_port}",
    )
    wait_for(lambda: _dc_up(dc_port), 20, "Direct Connect listener")
    assert not director.online("client-c")
    tunnel = director.api(
        "POST", "/api/v1/tenants/client-c/tunnels", {"target": f"127.0.0.1:{echo_port}", "via": "direct"}
    )
    assert tunnel["host"] == "127.0.0.1" and tunnel["via"] == "direct"
    payload = bytes(range(256)) * 4096  # 1 MiB, both ways
    assert _roundtrip(tunnel["port"], payload) == payload
    # Two tunnels' connections at once, each its own stream.
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(_roundtrip(tunnel["port"], b"x" * 100_000))) for _ in range(3)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    assert results == [b"x" * 100_000] * 3
    # Each connection's bytes went on its own TLS connection (authorised on the channel), not HTTP/2.
    (listed,) = director.api("GET", "/api/v1/tenants/client-c/tunnels")
    assert listed["connections"] == 4 and listed["raw_connections"] == 4
    # A target off the allow-list is refused, with the reason.
    with pytest.raises(ApiError) as exc:
        director.api("POST", "/api/v1/tenants/client-c/tunnels", {"target": "127.0.0.1:22", "via": "direct"})
    assert exc.value.status == 403 and "allow-list" in exc.value.detail
    assert director.api("DELETE", f"/api/v1/tenants/client-c/tunnels/{tunnel['id']}")["id"] == tunnel["id"]
    with pytest.raises(OSError):
        _roundtrip(tunnel["port"], b"gone")


def test_direct_connect_refuses_a_peer_that_is_another_tenant(
    director: DirectorProc, make_transporter: Callable[..., TransporterProc], echo_port: int
) -> None:
    dc_port = free_port()
    t = make_transporter("real")
    created = director.create_tenant("real")
    assert t.enroll(director, created["credentials"]["enrollment_key"]).returncode == 0
    t.start(
        "--no-uplink",
        "--direct-connect",
        "--direct-connect-host",
        "127.0.0.1",
        "--direct-connect-port",
        str(dc_port),
        "--allow",
        f"127.0.0.1:{echo_port}",
    )
    wait_for(lambda: _dc_up(dc_port), 20, "Direct Connect listener")
    # Another tenant's record points at that listener (spoofed address): the certificate says who it is.
    director.create_tenant("other", direct_connect={"address": f"127.0.0.1:{dc_port}"})
    with pytest.raises(ApiError) as exc:
        director.api("POST", "/api/v1/tenants/other/tunnels", {"target": f"127.0.0.1:{echo_port}", "via": "direct"})
    assert exc.value.status == 502 and "is not tenant 'other'" in exc.value.detail


def test_direct_connect_with_a_pre_shared_key(
    director: DirectorProc, make_transporter: Callable[..., TransporterProc], echo_port: int, tmp_path: Path
) -> None:
    dc_port = free_port()
    psk = "correct horse battery staple 42"
    psk_file = tmp_path / "dc.psk"
    psk_file.write_text(psk)
    psk_file.chmod(0o600)
    t = make_transporter("psk-site")  # never enrolled: PSK mode needs no certificate from the Director
    t.start(
        "--no-uplink",
        "--direct-connect",
        "--direct-connect-host",
        "127.0.0.1",
        "--direct-connect-port",
        str(dc_port),
        "--direct-connect-auth",
        "psk",
        "--psk-file",
        str(psk_file),
        "--allow",
        f"127.0.0.1:{echo_port}",
    )
    wait_for(lambda: _dc_up(dc_port), 20, "Direct Connect listener")
    director.create_tenant("psk-site", direct_connect={"address": f"127.0.0.1:{dc_port}", "auth": "psk", "psk": psk})
    got = director.api("GET", "/api/v1/tenants/psk-site")
    assert got["direct_connect"] == {"address": f"127.0.0.1:{dc_port}", "auth": "psk", "psk_set": True}
    tunnel = director.api(
        "POST", "/api/v1/tenants/psk-site/tunnels", {"target": f"127.0.0.1:{echo_port}", "via": "direct"}
    )
    assert _roundtrip(tunnel["port"], b"hello through psk") == b"hello through psk"
    # PSK mode too: the raw connection pins the certificate the PSK proof was bound to; more than the
    # pre-proof byte budget (64 KiB) may arrive before the token is redeemed.
    payload = bytes(range(256)) * 8192  # 2 MiB, both ways
    assert _roundtrip(tunnel["port"], payload) == payload
    (listed,) = director.api("GET", "/api/v1/tenants/psk-site/tunnels")
    assert listed["raw_connections"] == 2
    with pytest.raises(ApiError) as exc:
        director.api("POST", "/api/v1/tenants/psk-site/tunnels", {"target": "127.0.0.1:1", "via": "direct"})
    assert exc.value.status == 403
    # A wrong key is refused by the Transporter; the Director says so.
    director.api("DELETE", f"/api/v1/tenants/psk-site/tunnels/{tunnel['id']}")
    director.create_tenant(
        "psk-wrong",
        direct_connect={"address": f"127.0.0.1:{dc_port}", "auth": "psk", "psk": "a wrong key of enough length"},
    )
    with pytest.raises(ApiError) as exc:
        director.api("POST", "/api/v1/tenants/psk-wrong/tunnels", {"target": f"127.0.0.1:{echo_port}", "via": "direct"})
    assert exc.value.status == 502 and "pre-shared-key" in exc.value.detail
    for text in (director.log(), t.log()):
        assert psk not in text


def test_tunnel_over_the_uplink(
    director: DirectorProc, two_online: tuple[TransporterProc, ...], echo_port: int
) -> None:
    # B allows 127.0.0.1:9 only; restart it with the echo server allowed as well.
    _a, b = two_online
    b.stop()
    b.start("--allow", f"127.0.0.1:{echo_port}")
    wait_for(lambda: director.online("tenant-b"), 20, "tenant-b back")
    tunnel = director.api("POST", "/api/v1/tenants/tenant-b/tunnels", {"target": f"127.0.0.1:{echo_port}"})
    assert _roundtrip(tunnel["port"], b"via uplink" * 1000) == b"via uplink" * 1000

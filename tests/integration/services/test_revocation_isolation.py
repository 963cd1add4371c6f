"""Revocation closes live sessions; one tenant can never reach another's session, streams or tunnels."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from services_harness import ApiError, DirectorProc, TransporterProc, wait_for

from tenantry.common import pki
from tenantry.protocol.channel import Channel, ChannelClosed
from tenantry.protocol.identity import tenant_uri
from tenantry.transporter.config import StateDir, TransporterConfig
from tenantry.transporter.site import Guard, Site

pytestmark = pytest.mark.integration


def test_revoke_closes_the_session_and_refuses_new_handshakes(
    director: DirectorProc, two_online: tuple[TransporterProc, ...]
) -> None:
    a, _b = two_online
    director.api("POST", "/api/v1/tenants/tenant-a/revoke")
    wait_for(lambda: director.status("tenant-a")["state"] == "revoked", 10, "session closed within 10 s")
    # It keeps knocking (forever), and each handshake is refused.
    wait_for(lambda: "refused: tenant revoked" in a.log(), 15, "Transporter told it is revoked")
    wait_for(
        lambda: len(director.api("GET", "/api/v1/events?kind=handshake_refused&tenant=tenant-a")) >= 1,
        10,
        "refused handshake recorded",
    )
    assert not director.online("tenant-a") and director.online("tenant-b")
    kinds = [e["kind"] for e in director.api("GET", "/api/v1/events?tenant=tenant-a&limit=1000")]
    assert "tenant_revoked" in kinds
    # DELETE revokes and removes.
    director.api("DELETE", "/api/v1/tenants/tenant-b")
    with pytest.raises(ApiError) as exc:
        director.api("GET", "/api/v1/tenants/tenant-b")
    assert exc.value.status == 404
    wait_for(lambda: director.api("GET", "/api/v1/health", auth=False)["tenants_online"] == 0, 10, "B gone")


def _site(root: Path, tenant_id: str) -> Site:
    cfg = TransporterConfig(state_dir=root)
    return Site(cfg, StateDir(root), tenant_id, None)


async def _connect(
    director: DirectorProc, cert: Path, key: Path, site: Site | None = None, h2_client: bool = False
) -> Channel:
    ctx = ssl.create_default_context(cafile=str(director.state / "ca.crt"))
    ctx.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    handler = (lambda s: site.handle(s, Guard(kind="uplink"))) if site else None
    _t, ch = await loop.create_connection(
        lambda: Channel(ctx, server_side=False, h2_client=h2_client, server_hostname="127.0.0.1", handler=handler),
        "127.0.0.1",
        director.uplink_port,
    )
    await ch.ready
    return ch


def test_spoofed_tenant_ids_reach_nothing(
    director: DirectorProc, two_online: tuple[TransporterProc, ...], tmp_path: Path
) -> None:
    a, _b = two_online
    ids = {t["name"]: t["id"] for t in director.api("GET", "/api/v1/tenants")}
    b_addr = director.status("tenant-b")["address"]

    async def spoof() -> None:
        # A's certificate, but the site claims to be B: identity comes from the certificate alone.
        ch = await _connect(director, a.state / "client.crt", a.state / "client.key", _site(tmp_path, ids["tenant-b"]))
        wait_ok = await asyncio.to_thread(
            wait_for, lambda: director.status("tenant-a")["address"] != a_addr, 10, "A's session replaced"
        )
        assert wait_ok
        assert director.status("tenant-b")["address"] == b_addr  # B's real session untouched
        dash = await asyncio.to_thread(director.api, "GET", "/api/v1/tenants/tenant-b/dashboard")
        assert dash["site"]["tenant_id"] == ids["tenant-b"]
        ch.close("done")
        # A tries to open a stream towards the Director: a protocol violation, the connection dies.
        ch2 = await _connect(director, a.state / "client.crt", a.state / "client.key", h2_client=True)
        stream = ch2.open_stream(
            [(":method", "GET"), (":path", "/api/v1/tenants"), (":scheme", "https"), (":authority", "director")],
            end_stream=True,
        )
        with pytest.raises(ChannelClosed):
            await asyncio.wait_for(asyncio.shield(stream.response_headers), 10)

    a_addr = director.status("tenant-a")["address"]
    asyncio.run(spoof())
    # A certificate for B signed by another CA fails the handshake.
    other = pki.new_ca("evil CA")
    forged = pki.issue(other, "tenant-b", uris=[tenant_uri(ids["tenant-b"])], server=False, client=True)
    pki.write_keypair(forged, tmp_path / "forged.crt", tmp_path / "forged.key")
    # A certificate for B from the right CA but never issued (unknown serial), and an expired one.
    ca = pki.load_keypair(director.state / "ca.crt", director.state / "ca.key")
    unknown = pki.issue(ca, "tenant-b", uris=[tenant_uri(ids["tenant-b"])], server=False, client=True)
    pki.write_keypair(unknown, tmp_path / "unknown.crt", tmp_path / "unknown.key")
    expired_key = pki.new_key()
    expired = pki.sign(
        ca,
        expired_key.public_key(),
        "tenant-b",
        uris=[tenant_uri(ids["tenant-b"])],
        server=False,
        client=True,
        valid_for=-dt.timedelta(minutes=2),
    )
    pki.write_keypair(pki.KeyPair(cert=expired, key=expired_key), tmp_path / "expired.crt", tmp_path / "expired.key")

    async def refused(name: str) -> str:
        try:
            ch = await _connect(
                director, tmp_path / f"{name}.crt", tmp_path / f"{name}.key", _site(tmp_path, ids["tenant-b"])
            )
        except (ChannelClosed, OSError) as exc:
            return str(exc)
        reason = await asyncio.wait_for(ch.closed, 10)
        return reason + " " + ch.goaway_data.decode()

    assert asyncio.run(refused("forged"))
    assert "unknown" in asyncio.run(refused("unknown"))
    assert asyncio.run(refused("expired"))
    assert director.status("tenant-b")["address"] == b_addr
    wait_for(lambda: director.online("tenant-a"), 20, "real A back after the spoofer left")
    assert serialization  # imported for key handling helpers


def test_tunnel_of_one_tenant_cannot_reach_another(
    director: DirectorProc, two_online: tuple[TransporterProc, ...]
) -> None:
    # 127.0.0.1:9 is on B's allow-list only.
    with pytest.raises(ApiError) as exc:
        director.api("POST", "/api/v1/tenants/tenant-a/tunnels", {"target": "127.0.0.1:9"})
    assert exc.value.status == 403 and "allow-list" in exc.value.detail
    tunnel = director.api("POST", "/api/v1/tenants/tenant-b/tunnels", {"target": "127.0.0.1:9"})
    with pytest.raises(ApiError) as exc:
        director.api("DELETE", f"/api/v1/tenants/tenant-a/tunnels/{tunnel['id']}")
    assert exc.value.status == 404
    assert director.api("GET", "/api/v1/tenants/tenant-a/tunnels") == []
    assert [t["id"] for t in director.api("GET", "/api/v1/tenants/tenant-b/tunnels")] == [tunnel["id"]]
    with socket.create_connection(("127.0.0.1", tunnel["port"]), timeout=5):
        pass

"""A compromised client site attacks its repository through the uplink: every removal or rewrite is refused.

Real pieces: the TLS + HTTP/2 uplink channel (both ends), the Director's carriers and REST server,
the Transporter's loopback relay, and real restic at the "client site" doing what an attacker with
the site's credentials would do (forget, prune, remove keys and locks) plus raw requests for
another tenant's repository.  Afterwards the MSP's own restic finds the repository intact.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from tenantry.common import pki
from tenantry.director.repository.carrier import Carriers
from tenantry.director.repository.files import RepositoryDir
from tenantry.director.repository.rest import RestSession
from tenantry.protocol import tls
from tenantry.protocol.channel import Channel, ChannelLimits, H2Stream
from tenantry.transporter.backup.relay import Relay

pytestmark = pytest.mark.integration

PASSWORD = "tenant-a-repository-key"


def _restic(repo: str, *args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RESTIC_PASSWORD": PASSWORD, "RESTIC_REPOSITORY": repo, "RESTIC_CACHE_DIR": "/nonexistent"}
    return subprocess.run(
        ["restic", "--no-cache", *args],
        input=stdin.decode("latin-1") if stdin else None,
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


async def _uplink(tmp: Path, handler: object) -> tuple[Channel, Channel, asyncio.Server]:
    ca = pki.new_ca("test CA")
    pki.write_keypair(ca, tmp / "ca.crt", tmp / "ca.key")
    pki.write_keypair(pki.issue(ca, "director", ips=["127.0.0.1"]), tmp / "s.crt", tmp / "s.key")
    pki.write_keypair(pki.issue(ca, "site", server=False, client=True), tmp / "c.crt", tmp / "c.key")
    server_ctx = tls.server_context(tmp / "s.crt", tmp / "s.key", client_ca=tmp / "ca.crt")
    client_ctx = tls.client_context(ca=tmp / "ca.crt", cert=tmp / "c.crt", key=tmp / "c.key")
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Channel] = loop.create_future()

    def factory() -> Channel:
        ch = Channel(server_ctx, server_side=True, h2_client=True, limits=ChannelLimits(stream_window=256 << 10))
        if not accepted.done():
            accepted.set_result(ch)
        return ch

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _t, site = await loop.create_connection(
        lambda: Channel(
            client_ctx,
            server_side=False,
            h2_client=False,
            server_hostname="127.0.0.1",
            handler=handler,  # type: ignore[arg-type]
            limits=ChannelLimits(max_frame_size=1 << 20, stream_window=4 << 20, connection_window=16 << 20),
        ),
        "127.0.0.1",
        port,
    )
    await site.ready
    director = await accepted
    await director.ready
    return director, site, server


def test_a_compromised_site_can_add_but_not_remove(tmp_path: Path) -> None:
    repos = tmp_path / "repositories"
    a, b = repos / "tenant-a", repos / "tenant-b"
    for root in (a, b):
        _restic(str(root), "init", "--repository-version", "2")
        _restic(
            str(root), "backup", "--stdin", "--stdin-filename", "disk.img", "--host", "vm1", stdin=os.urandom(1 << 20)
        )
    b_config = (b / "config").read_bytes()
    snaps_a = json.loads(_restic(str(a), "snapshots", "--json").stdout)
    victim = snaps_a[0]["id"]
    files_before = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and "locks" not in p.parts)

    relay = Relay("0123456789abcdef")

    async def handler(stream: H2Stream) -> None:
        await relay.carry(stream)

    async def main() -> None:
        director, site, server = await _uplink(tmp_path, handler)
        session = RestSession(RepositoryDir(a), "job-token-abcdefghijkl")
        port = await relay.start()
        carriers = Carriers(director, "0123456789abcdef", session)
        carriers.start()
        url = session.url("127.0.0.1", port)
        try:
            # Adding works: the site may back up.
            added = await asyncio.to_thread(
                _restic,
                url,
                "backup",
                "--stdin",
                "--stdin-filename",
                "disk.img",
                "--host",
                "vm1",
                stdin=os.urandom(1 << 20),
            )
            assert "snapshot" in added.stdout + added.stderr
            # Removing does not: restic's own forget (it retries each refused DELETE for a while, then gives up).
            result = await asyncio.to_thread(_restic, url, "forget", victim, check=False)
            assert result.returncode != 0, (result.stdout, result.stderr)
            assert "403" in result.stderr or "Forbidden" in result.stderr, result.stderr
            # Raw requests, through the same relay: another tenant's repository is not addressable.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            auth = base64.b64encode(b"tenantry:job-token-abcdefghijkl").decode()
            answers = []
            key = next((a / "keys").iterdir()).name
            data = next(p for p in (a / "data").rglob("*") if p.is_file()).name
            for method, target in (
                ("DELETE", f"/snapshots/{victim}"),
                ("DELETE", f"/keys/{key}"),
                ("DELETE", f"/data/{data}"),
                ("GET", "/../tenant-b/config"),
                ("GET", "/tenant-b/config"),
                ("POST", "/config"),
            ):
                head_lines = [f"{method} {target} HTTP/1.1", "host: r", f"authorization: Basic {auth}"]
                head_lines.append("content-length: 0")
                writer.write(("\r\n".join(head_lines) + "\r\n\r\n").encode())
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split()[1])
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                body = await reader.readexactly(length)
                answers.append((method, target, status, body))
                if b"connection: close" in head.lower():
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            assert [a[2] for a in answers] == [403, 403, 403, 404, 404, 403], answers
            assert all(b_config not in a[3] for a in answers)
            assert session.refused, "the refusals are recorded for the Director's log"
        finally:
            await carriers.close()
            await relay.close()
            director.close("done")
            site.close("done")
            server.close()

    asyncio.run(main())

    # The MSP's own view: every file that was there is still there, the victim snapshot too,
    # one snapshot more, and restic check passes.
    files_after = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    assert set(files_before) <= files_after
    ids = [s["id"] for s in json.loads(_restic(str(a), "snapshots", "--json").stdout)]
    assert victim in ids and len(ids) == 2
    _restic(str(a), "check")
    assert (b / "config").read_bytes() == b_config

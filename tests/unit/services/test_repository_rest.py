"""The repository's REST protocol and the MSP's rules, over a real loopback TCP connection (no mocks).

What a compromised client site could send is sent here byte for byte: deletes, rewrites, another
tenant's path, uploads past the quota.  The same server code runs on the uplink's carrier streams.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import h11
import pytest

from tenantry.director.repository.files import RepositoryDir
from tenantry.director.repository.rest import V2, RestSession, StreamPipe, serve

TOKEN = "t0ken-for-this-job-only-xyz"


def _layout(root: Path) -> None:
    for d in ("data", "index", "keys", "locks", "snapshots"):
        (root / d).mkdir(parents=True)
    (root / "config").write_bytes(b"encrypted config")


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h11.Connection(h11.CLIENT)

    async def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        *,
        auth: str | None = TOKEN,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        hdrs = [("host", "repo")]
        if auth is not None:
            hdrs.append(("authorization", "Basic " + base64.b64encode(f"tenantry:{auth}".encode()).decode()))
        if body is not None:
            hdrs.append(("content-length", str(len(body))))
        hdrs += list((headers or {}).items())
        self.writer.write(self.conn.send(h11.Request(method=method, target=target, headers=hdrs)))
        if body:
            self.writer.write(self.conn.send(h11.Data(data=body)))
        self.writer.write(self.conn.send(h11.EndOfMessage()))
        await self.writer.drain()
        status, got, data = 0, {}, b""
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.reader.read(65536))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                got = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                data += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return status, got, data


def _run(
    tmp: Path,
    test: Callable[[Client, RepositoryDir, RestSession, Callable[[], Awaitable[Client]]], Awaitable[None]],
    quota: int | None = None,
) -> None:
    root = tmp / "tenant-a"
    _layout(root)
    repo = RepositoryDir(root, quota_bytes=quota)
    session = RestSession(repo, TOKEN)

    async def main() -> None:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await serve(StreamPipe(r, w), session)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        async def connect() -> Client:
            return Client(*await asyncio.open_connection("127.0.0.1", port))

        try:
            await test(await connect(), repo, session, connect)
        finally:
            server.close()

    asyncio.run(main())


def _blob(data: bytes) -> tuple[str, bytes]:
    return hashlib.sha256(data).hexdigest(), data


def test_authentication_and_listing(tmp_path: Path) -> None:
    async def t(c: Client, repo: RepositoryDir, s: RestSession, connect: Callable[[], Awaitable[Client]]) -> None:
        assert (await c.request("GET", "/config", auth=None))[0] == 401
        c2 = await connect()
        assert (await c2.request("GET", "/config", auth="wrong"))[0] == 401
        c3 = await connect()
        assert (await c3.request("HEAD", "/config"))[0] == 200
        name, data = _blob(os.urandom(1000))
        status, _h, _b = await c3.request("POST", f"/snapshots/{name}", data)
        assert status == 200
        status, headers, body = await c3.request("GET", "/snapshots/", headers={"accept": V2})
        assert status == 200 and headers["content-type"] == V2
        assert json.loads(body) == [{"name": name, "size": 1000}]
        status, _h, body = await c3.request("GET", "/snapshots/")
        assert json.loads(body) == [name]

    _run(tmp_path, t)


def test_uploads_are_verified_and_never_rewritten(tmp_path: Path) -> None:
    async def t(c: Client, repo: RepositoryDir, s: RestSession, connect: Callable[[], Awaitable[Client]]) -> None:
        name, data = _blob(os.urandom(5000))
        assert (await c.request("POST", f"/data/{name}", data))[0] == 200
        stored = tmp_path / "tenant-a" / "data" / name[:2] / name
        assert stored.read_bytes() == data
        # Rewrite with other bytes under the same name: refused, the original stays.
        status, _h, body = await c.request("POST", f"/data/{name}", os.urandom(5000))
        assert status == 400 and b"does not match" in body
        c = await connect()
        assert stored.read_bytes() == data
        # The same bytes again (a retried upload): accepted, nothing changes.
        assert (await c.request("POST", f"/data/{name}", data))[0] == 200
        # A snapshot file whose name is not its content's hash: refused, nothing written.
        assert (await c.request("POST", "/snapshots/" + "0" * 64, b"forged"))[0] == 400
        c = await connect()
        assert not (tmp_path / "tenant-a" / "snapshots" / ("0" * 64)).exists()
        assert not list((tmp_path / "tenant-a" / ".incoming").iterdir())

    _run(tmp_path, t)


def test_append_only_deletes(tmp_path: Path) -> None:
    async def t(c: Client, repo: RepositoryDir, s: RestSession, connect: Callable[[], Awaitable[Client]]) -> None:
        snap, data = _blob(b"a snapshot")
        assert (await c.request("POST", f"/snapshots/{snap}", data))[0] == 200
        for target in (f"/snapshots/{snap}", "/config", "/", f"/data/{snap}", f"/index/{snap}", f"/keys/{snap}"):
            status, _h, _b = await c.request("DELETE", target)
            assert status in (403, 404), target
            assert status == 403 or target != f"/snapshots/{snap}"
        assert (tmp_path / "tenant-a" / "snapshots" / snap).exists()
        assert (tmp_path / "tenant-a" / "config").exists()
        # Its own lock: removable; the MSP's lock (written at the MSP, not by this tenant): not.
        own, lock = _blob(b"tenant lock")
        assert (await c.request("POST", f"/locks/{own}", lock))[0] == 200
        msp, msp_lock = _blob(b"msp exclusive lock")
        (tmp_path / "tenant-a" / "locks" / msp).write_bytes(msp_lock)
        assert (await c.request("DELETE", f"/locks/{msp}"))[0] == 403
        assert (tmp_path / "tenant-a" / "locks" / msp).exists()
        assert (await c.request("DELETE", f"/locks/{own}"))[0] == 200
        assert not (tmp_path / "tenant-a" / "locks" / own).exists()
        # Creating or replacing the repository's configuration: refused.
        assert (await c.request("POST", "/config", b"new config"))[0] == 403
        c = await connect()
        assert (tmp_path / "tenant-a" / "config").read_bytes() == b"encrypted config"
        assert (await c.request("POST", "/?create=true"))[0] == 200  # exists already: fine, nothing done

    _run(tmp_path, t)


def test_no_path_leaves_the_repository(tmp_path: Path) -> None:
    other = tmp_path / "tenant-b"
    _layout(other)
    (other / "config").write_bytes(b"other tenant's config")

    async def t(c: Client, repo: RepositoryDir, s: RestSession, connect: Callable[[], Awaitable[Client]]) -> None:
        for target in (
            "/tenant-b/config",
            "/../tenant-b/config",
            "/%2e%2e/tenant-b/config",
            "/data/../../tenant-b/config",
            "//tenant-b/config",
            "/tenant-b/",
            "/data/..%2f..%2ftenant-b%2fconfig",
        ):
            status, _h, body = await c.request("GET", target)
            assert status in (400, 404), (target, status)
            assert b"other tenant" not in body
            if status == 400:
                c = await connect()

    _run(tmp_path, t)


def test_quota_refuses_before_writing(tmp_path: Path) -> None:
    hits: list[str] = []

    async def t(c: Client, repo: RepositoryDir, s: RestSession, connect: Callable[[], Awaitable[Client]]) -> None:
        s.on_quota = hits.append
        small, data = _blob(os.urandom(200_000))
        assert (await c.request("POST", f"/data/{small}", data))[0] == 200
        big, data = _blob(os.urandom(900_000))
        status, _h, body = await c.request("POST", f"/data/{big}", data)
        assert status == 507
        assert b"quota of 1.0 MiB exceeded" in body
        assert not (tmp_path / "tenant-a" / "data" / big[:2] / big).exists()
        assert repo.usage < 1 << 20

    _run(tmp_path, t, quota=1 << 20)
    assert hits and "quota" in hits[0]


def test_ranges(tmp_path: Path) -> None:
    async def t(c: Client, repo: RepositoryDir, s: RestSession, connect: Callable[[], Awaitable[Client]]) -> None:
        name, data = _blob(os.urandom(3 << 20))
        assert (await c.request("POST", f"/data/{name}", data))[0] == 200
        status, headers, body = await c.request("GET", f"/data/{name}", headers={"range": "bytes=1000-2999999"})
        assert status == 206 and body == data[1000:3000000]
        assert headers["content-range"] == f"bytes 1000-2999999/{len(data)}"
        status, headers, body = await c.request("GET", f"/data/{name}", headers={"range": "bytes=3145000-"})
        assert status == 206 and body == data[3145000:]
        status, headers, _b = await c.request("HEAD", f"/data/{name}")
        assert status == 200 and headers["content-length"] == str(len(data))
        assert (await c.request("GET", "/data/" + "1" * 64))[0] == 404

    _run(tmp_path, t)


@pytest.mark.parametrize("quota", [None])
def test_usage_counts_what_is_stored(tmp_path: Path, quota: int | None) -> None:
    async def t(c: Client, repo: RepositoryDir, s: RestSession, connect: Callable[[], Awaitable[Client]]) -> None:
        before = repo.usage
        name, data = _blob(os.urandom(12345))
        await c.request("POST", f"/index/{name}", data)
        assert repo.usage == before + 12345 == repo.recount()

    _run(tmp_path, t, quota=quota)


def test_pipelined_uploads_on_one_connection(tmp_path: Path) -> None:
    """Upload bodies are read past h11: a body's end and the next request's start in one read both count."""

    async def t(c: Client, repo: RepositoryDir, s: RestSession, connect: Callable[[], Awaitable[Client]]) -> None:
        blobs = [_blob(os.urandom(n)) for n in (70_000, 1, 300_000)]
        raw = b""
        for name, data in blobs:
            raw += c.conn.send(
                h11.Request(
                    method="POST",
                    target=f"/data/{name}",
                    headers=[
                        ("host", "repo"),
                        ("authorization", "Basic " + base64.b64encode(f"tenantry:{TOKEN}".encode()).decode()),
                        ("content-length", str(len(data))),
                    ],
                )
            )
            raw += c.conn.send(h11.Data(data=data)) + c.conn.send(h11.EndOfMessage())
            c.conn = h11.Connection(h11.CLIENT)  # the next request is framed anew (they go out at once)
        c.writer.write(raw)  # all three in one write: bodies end inside the server's reads
        await c.writer.drain()
        reader = h11.Connection(h11.CLIENT)  # parses the three answers (a request per answer, never sent)
        statuses = []
        for _ in blobs:
            reader.send(h11.Request(method="POST", target="/", headers=[("host", "r"), ("content-length", "0")]))
            reader.send(h11.EndOfMessage())
            while True:
                event = reader.next_event()
                if event is h11.NEED_DATA:
                    reader.receive_data(await c.reader.read(65536))
                    continue
                if isinstance(event, h11.Response):
                    statuses.append(event.status_code)
                if isinstance(event, h11.EndOfMessage):
                    break
            reader.start_next_cycle()
        assert statuses == [200, 200, 200]
        for name, data in blobs:
            assert (tmp_path / "tenant-a" / "data" / name[:2] / name).read_bytes() == data
        # A refused upload whose body was read whole leaves the connection usable.
        c = await connect()
        assert (await c.request("POST", "/data/" + "1" * 64, b"not its hash"))[0] == 400
        name, data = _blob(b"after a refusal")
        assert (await c.request("POST", f"/snapshots/{name}", data))[0] == 200

    _run(tmp_path, t)

"""restic's REST backend protocol (v2), served over any byte pipe with h11 for HTTP/1.1.

The pipe is usually a *carrier*: an HTTP/2 stream the Director opened on the tenant's uplink,
whose other end the Transporter joined to a connection that restic made to its loopback
endpoint (see :mod:`tenantry.director.repository.carrier`).  The repository served is the one
the session belongs to: the request's path can only ever address files inside it (the
repository's own path is ``/``; anything else is 404), so a Transporter has no way to name
another tenant's repository.

Protocol reference: restic's ``doc/REST_backend.rst`` (``{path}/config``, ``{path}/{type}/``,
``{path}/{type}/{name}``; API v2 lists ``[{"name", "size"}]`` when the client accepts
``application/vnd.x.restic.rest.v2``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
import os
import re
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import h11

from tenantry.director.repository.files import QuotaExceeded, RepositoryDir, RepositoryError

log = logging.getLogger(__name__)

V2 = "application/vnd.x.restic.rest.v2"
_READ_CHUNK = 1 << 20
_WRITE_BATCH = 4 << 20  # request body bytes received ahead of the upload's worker thread, at most
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_USER = "tenantry"


class Pipe(Protocol):
    """A bidirectional byte stream (an :class:`~tenantry.protocol.channel.H2Stream` is one)."""

    async def read(self) -> bytes: ...  # b"" at end of stream

    async def write(self, data: bytes) -> None: ...

    def end(self) -> None: ...


@dataclass
class RestSession:
    """What one job may do with one tenant's repository, and what it did."""

    repo: RepositoryDir
    token: str
    on_quota: Callable[[str], None] | None = None
    bytes_in: int = 0  # request body bytes received (backups: what crossed the uplink to the MSP)
    bytes_out: int = 0  # response body bytes sent (restores)
    files_written: int = 0
    requests: int = 0
    locks: list[str] = field(default_factory=list)  # lock files this session created
    refused: list[str] = field(default_factory=list)

    def authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (ValueError, binascii.Error):
            return False
        return user == _USER and hmac.compare_digest(password.encode(), self.token.encode())

    def url(self, host: str, port: int) -> str:
        """The repository URL restic is given (token inside; passed in the environment, never argv)."""
        return f"rest:http://{_USER}:{self.token}@{host}:{port}/"


@dataclass
class _After:
    """A request whose body was read past h11; ``rest`` arrived after it (the next request's start)."""

    rest: bytes


class _Reply:
    def __init__(self, status: int, body: bytes = b"", content_type: str = "text/plain", **headers: str) -> None:
        self.status = status
        self.body = body
        self.headers = [("content-type", content_type), *headers.items()]


async def serve(pipe: Pipe, session: RestSession) -> None:
    """Serve HTTP/1.1 requests from ``pipe`` until the peer closes it."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16384)
    try:
        while True:
            event = await _next(conn, pipe)
            if isinstance(event, h11.ConnectionClosed):
                return
            if not isinstance(event, h11.Request):
                return
            keep = await _handle(conn, pipe, session, event)
            if not keep or conn.our_state is h11.MUST_CLOSE:
                return
            if isinstance(keep, _After):
                # The request's body was read past h11 (an upload): the next request starts a new
                # HTTP/1.1 state, fed with what arrived after that body.
                conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16384)
                if keep.rest:
                    conn.receive_data(keep.rest)
                continue
            conn.start_next_cycle()
    except h11.RemoteProtocolError as exc:
        log.info("repository connection: bad HTTP from the client: %s", exc)
        with contextlib.suppress(Exception):
            await _send(conn, pipe, _Reply(400, f"bad request: {exc}".encode()))
    finally:
        with contextlib.suppress(Exception):
            pipe.end()


async def _next(conn: h11.Connection, pipe: Pipe) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await pipe.read())
            continue
        return event


async def _send(conn: h11.Connection, pipe: Pipe, reply: _Reply, *, head: bool = False) -> None:
    headers = [*reply.headers, ("content-length", str(len(reply.body)))]
    await pipe.write(conn.send(h11.Response(status_code=reply.status, headers=headers)))
    if reply.body and not head:
        await pipe.write(conn.send(h11.Data(data=reply.body)))
    await pipe.write(conn.send(h11.EndOfMessage()))


async def _handle(conn: h11.Connection, pipe: Pipe, session: RestSession, req: h11.Request) -> bool | _After:
    """One request; ``False`` when the connection must close (a request body left unread).

    An :class:`_After` (true) when the request's body was read past h11: the caller starts a new
    HTTP/1.1 state with it.
    """
    session.requests += 1
    method = req.method.decode("ascii", "replace")
    target = req.target.decode("ascii", "replace")
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in req.headers}
    raw_path, _, query = target.partition("?")  # a request target is a path: "//host/..." is not a URL here
    path = urllib.parse.unquote(raw_path)
    if "content-length" not in headers and "transfer-encoding" not in headers:
        await _body_done(conn, pipe)  # a request without a body: its end is already there
    parts = path.split("/")
    try:
        if not session.authorized(headers.get("authorization")):
            raise RepositoryError(401, "authentication required")
        if path == "/":
            return await _root(conn, pipe, session, method, query)
        if len(parts) == 2 and parts[1] == "config":
            return await _file(conn, pipe, session, method, "config", "config", headers)
        if len(parts) == 3 and parts[2] == "" and method == "GET":
            return await _list(conn, pipe, session, parts[1], headers)
        if len(parts) == 3 and parts[2]:
            return await _file(conn, pipe, session, method, parts[1], parts[2], headers)
        raise RepositoryError(404, "not a file of this repository")
    except RepositoryError as exc:
        return await _refused(conn, pipe, session, method, path, exc)


async def _refused(
    conn: h11.Connection,
    pipe: Pipe,
    session: RestSession,
    method: str,
    path: str,
    exc: RepositoryError,
    *,
    body_read: bool = False,
) -> bool:
    """Answer a refused request; ``False`` when the connection must close.

    ``body_read``: the request's body was read whole past h11 (h11 does not know it).
    """
    if exc.status in (403, 507):
        session.refused.append(f"{method} {path[:80]}: {exc.message}")
        log.warning("repository %s: refused %s %s: %s", session.repo.root.name, method, path[:80], exc.message)
    if isinstance(exc, QuotaExceeded) and session.on_quota is not None:
        session.on_quota(exc.message)
    if conn.our_state is not h11.SEND_RESPONSE:
        return False  # the answer had started: all we can do is close
    reply = _Reply(exc.status, exc.message.encode())
    if exc.status == 401:
        reply.headers.append(("www-authenticate", 'Basic realm="repository"'))
    done = body_read or conn.their_state is h11.DONE
    if not done:
        # The body of a refused upload is not read: the connection closes instead.
        reply.headers.append(("connection", "close"))
    await _send(conn, pipe, reply)
    return done


async def _body_done(conn: h11.Connection, pipe: Pipe) -> None:
    if conn.their_state is h11.DONE:
        return
    event = await _next(conn, pipe)
    if not isinstance(event, h11.EndOfMessage):
        raise RepositoryError(400, "unexpected request body")


async def _root(conn: h11.Connection, pipe: Pipe, session: RestSession, method: str, query: str) -> bool:
    if method == "POST" and urllib.parse.parse_qs(query).get("create") == ["true"]:
        await _body_done(conn, pipe)
        if session.repo.initialized:
            await _send(conn, pipe, _Reply(200))  # "200 OK if ... already exists"
            return True
        raise RepositoryError(403, "repositories are created by the MSP, not by a Transporter")
    if method == "DELETE":
        raise RepositoryError(403, "a repository is never deleted through this endpoint")
    raise RepositoryError(405, f"{method} / is not served")


async def _list(conn: h11.Connection, pipe: Pipe, session: RestSession, kind: str, headers: dict[str, str]) -> bool:
    await _body_done(conn, pipe)
    files = await asyncio.to_thread(session.repo.listing, kind)
    if V2 in headers.get("accept", ""):
        body = json.dumps([{"name": n, "size": s} for n, s in files]).encode()
        await _send(conn, pipe, _Reply(200, body, V2))
    else:
        await _send(conn, pipe, _Reply(200, json.dumps([n for n, _s in files]).encode(), "application/json"))
    return True


async def _file(
    conn: h11.Connection, pipe: Pipe, session: RestSession, method: str, kind: str, name: str, headers: dict[str, str]
) -> bool | _After:
    repo = session.repo
    if method in ("GET", "HEAD"):
        await _body_done(conn, pipe)
        return await _read(conn, pipe, session, kind, name, headers, head=method == "HEAD")
    if method == "POST":
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            raise RepositoryError(400, "bad Content-Length")
        upload = repo.begin_upload(kind, name, int(length) if length else None)
        writing: asyncio.Future[None] | None = None
        pending: list[bytes | bytearray | memoryview] = []
        pending_bytes = 0
        after: _After | None = None
        refused: RepositoryError | None = None
        try:
            # Hashing and writing happen in a worker thread behind the network: a slow disk stalls
            # this upload only, never the event loop (every tenant's uplink).  What arrives while a
            # write is in progress is handed over in one batch when it is done (one thread hop per
            # batch, not per HTTP/2 frame), at most _WRITE_BATCH bytes ahead of the disk.
            body = _RawBody(conn, pipe, int(length)) if length is not None else _h11_body(conn, pipe)
            async for data in body:
                session.bytes_in += len(data)
                pending.append(data)  # a buffer of its own (the pipe's or h11's): kept as it is
                pending_bytes += len(data)
                if writing is not None and (writing.done() or pending_bytes >= _WRITE_BATCH):
                    await writing
                    writing = None
                if writing is None:
                    writing = asyncio.ensure_future(asyncio.to_thread(upload.write_many, pending))
                    pending, pending_bytes = [], 0
            if isinstance(body, _RawBody):
                after = _After(body.rest)
            if writing is not None:
                await writing
                writing = None
            if pending:
                await asyncio.to_thread(upload.write_many, pending)
            await asyncio.to_thread(upload.sync)
            if await asyncio.to_thread(upload.commit):
                session.files_written += 1
                if kind == "locks":
                    session.locks.append(name)
        except RepositoryError as exc:
            if after is None:
                raise
            refused = exc  # the body was read whole: the connection can carry the next request
        finally:
            if writing is not None:
                with contextlib.suppress(BaseException):
                    await writing
            upload.abort()
        if refused is not None:
            keep = await _refused(conn, pipe, session, method, f"/{kind}/{name}", refused, body_read=True)
            return after if keep and after is not None else False
        await _send(conn, pipe, _Reply(200))
        return after or True
    if method == "DELETE":
        await _body_done(conn, pipe)
        repo.delete(kind, name, by_tenant=True)
        await _send(conn, pipe, _Reply(200))
        return True
    raise RepositoryError(405, f"{method} is not served for files")


async def _h11_body(conn: h11.Connection, pipe: Pipe) -> AsyncIterator[bytes | bytearray]:
    """A request body h11 frames (chunked, no Content-Length): its pieces until the end of the message."""
    while True:
        event = await _next(conn, pipe)
        if isinstance(event, h11.Data):
            yield event.data  # h11 hands out a new buffer per event
        elif isinstance(event, h11.EndOfMessage):
            return
        else:
            raise RepositoryError(400, "request body ended early")


class _RawBody:
    """A body of a known length read straight from the pipe, past h11.

    h11 copies every body byte three times (into its receive buffer, then two slices out of it);
    an upload's body is most of what a backup sends, so it is taken here as the pipe hands it out
    (what h11 had already received of it first).  Only the piece that holds the end of the body and
    the start of the next request is cut; :attr:`rest` is that start, for a new h11 state.
    """

    def __init__(self, conn: h11.Connection, pipe: Pipe, length: int) -> None:
        self._conn = conn
        self._pipe = pipe
        self._left = length
        self.rest = b""

    def __aiter__(self) -> AsyncIterator[bytes | memoryview]:
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[bytes | memoryview]:
        data, closed = self._conn.trailing_data  # received with the request's head, not parsed yet
        while True:
            if data:
                if len(data) > self._left:
                    view = memoryview(data)
                    self.rest = bytes(view[self._left :])
                    self._left = 0
                    yield view[: len(view) - len(self.rest)]
                    return
                self._left -= len(data)
                yield data
            if self._left <= 0:
                return
            if closed:
                raise RepositoryError(400, "request body ended early")
            data = await self._pipe.read()
            closed = not data


async def _read(
    conn: h11.Connection,
    pipe: Pipe,
    session: RestSession,
    kind: str,
    name: str,
    headers: dict[str, str],
    *,
    head: bool,
) -> bool:
    path = session.repo.path_of(kind, name)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise RepositoryError(404, f"{kind}/{name[:12]} not found") from None
    try:
        size = os.fstat(fd).st_size
        start, end, status = 0, size, 200
        wanted = headers.get("range")
        if wanted:
            match = _RANGE.match(wanted.strip())
            if not match:
                raise RepositoryError(416, "only one byte range (bytes=a-b) is served")
            start = int(match.group(1))
            end = min(size, int(match.group(2)) + 1) if match.group(2) else size
            if start >= size or start >= end:
                raise RepositoryError(416, f"range outside the file ({size} bytes)")
            status = 206
        out = [("content-type", "application/octet-stream"), ("content-length", str(end - start))]
        if status == 206:
            out.append(("content-range", f"bytes {start}-{end - 1}/{size}"))
        await pipe.write(conn.send(h11.Response(status_code=status, headers=out)))
        if not head:
            # Read one chunk ahead in a worker thread while the previous one is sent.
            offset = start
            ahead = asyncio.ensure_future(asyncio.to_thread(os.pread, fd, min(_READ_CHUNK, end - offset), offset))
            try:
                while offset < end:
                    chunk = await ahead
                    if not chunk:
                        raise RepositoryError(500, "file shrank while being read")
                    offset += len(chunk)
                    if offset < end:
                        size = min(_READ_CHUNK, end - offset)
                        ahead = asyncio.ensure_future(asyncio.to_thread(os.pread, fd, size, offset))
                    session.bytes_out += len(chunk)
                    await pipe.write(conn.send(h11.Data(data=chunk)))
            finally:
                # The read in flight finishes before the descriptor closes (a thread cannot be cancelled).
                with contextlib.suppress(BaseException):
                    await asyncio.shield(ahead)
        await pipe.write(conn.send(h11.EndOfMessage()))
        return True
    finally:
        os.close(fd)


class StreamPipe:
    """An asyncio TCP connection as a :class:`Pipe` (tests and the MSP's loopback tools)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self) -> bytes:
        return await self.reader.read(1 << 18)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def end(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()

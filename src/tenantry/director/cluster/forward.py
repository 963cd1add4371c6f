"""Serving a request from the Director that holds the tenant's session: forwarding between Directors.

A route that needs a live session (dashboard, commands, renewal, a tunnel over the uplink; a
console page of the portal likewise) asks the Director for it; when the session lives on
another Director that raises :class:`~tenantry.director.errors.SessionElsewhere`, which the
app answers ``421 Misdirected Request`` with the owner's id.  :class:`Forwarding`, wrapped around
the app on the setup port, holds each request's body (at most 1 MiB, the API's limit), catches
that answer before anything was sent, and makes the same request to the owner instead:
HTTPS with mutual TLS to the owner's *peer port*, where only a certificate of the Director CA
carrying ``urn:tenantry:director`` is accepted (:class:`PeerMark` marks those requests as
forwarded, so they are never forwarded again).  The caller's own ``Authorization`` and cookies
go along: the owner authorizes the request exactly as the first Director would have.

Why an HTTPS call and not LISTEN/NOTIFY: a forwarded request needs its answer, carries bodies
up to 1 MiB and may run for an hour (a command); NOTIFY has none of that.  NOTIFY carries the
invalidations (``bus.py``); the registry in the database says where each session is.
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import json
import logging
import ssl
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OWNER_HEADER = b"x-tenantry-owner"
CLIENT_HEADER = "x-tenantry-client"
ORIGIN_HEADER = "x-tenantry-origin"
FORWARDED = "tenantry.forwarded"  # scope key set by PeerMark
MAX_BODY = 1 << 20
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}
_NOT_BACK = _HOP | {"server", "date"}


class Forwarding:
    """ASGI middleware of the setup port: a 421 with an owner becomes the owner's answer."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        director_id: Callable[[], str],
        peer_url: Callable[[str], str | None],
        client_context: Callable[[], ssl.SSLContext],
        timeout: float = 3700.0,
        threads: int = 32,
    ) -> None:
        self.app = app
        self._director_id = director_id
        self._peer_url = peer_url
        self._ctx = client_context
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="forward")
        self.forwarded = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(FORWARDED):
            await self.app(scope, receive, send)
            return
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                await _json(send, 413, {"detail": f"request body larger than {MAX_BODY} bytes"})
                return
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        owner: str | None = None

        async def capture(message: Message) -> None:
            nonlocal owner
            if message["type"] == "http.response.start" and message["status"] == 421:
                for key, value in message.get("headers", []):
                    if key.lower() == OWNER_HEADER:
                        owner = value.decode("latin-1")
                        return
            if owner is None:
                await send(message)

        await self.app(scope, replay, capture)
        if owner is not None:
            await self._forward(owner, scope, body, send)

    async def _forward(self, owner: str, scope: Scope, body: bytes, send: Send) -> None:
        url = self._peer_url(owner)
        if url is None:
            await _json(send, 503, {"detail": "the Director holding this session is gone; retry in a few seconds"})
            return
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope.get("headers", [])
            if k.decode("latin-1").lower() not in _HOP and not k.lower().startswith(b"x-tenantry-")
        ]
        client = scope.get("client")
        if client and _is_ip(str(client[0])):
            headers.append((CLIENT_HEADER, str(client[0])))
        headers.append((ORIGIN_HEADER, self._director_id()))
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        loop = asyncio.get_running_loop()
        try:
            status, answer_headers, answer = await loop.run_in_executor(
                self._pool, self._call, url, scope["method"], target.decode("latin-1"), headers, body
            )
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            log.warning("forwarding %s %s to %s failed: %s", scope["method"], scope["path"], url, exc)
            await _json(send, 502, {"detail": f"the Director holding this session did not answer: {exc}"})
            return
        self.forwarded += 1
        if status == 421:  # the session moved again meanwhile: never forward twice
            await _json(send, 409, {"detail": "the tenant's session is moving between Directors; retry"})
            return
        out = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer_headers if k.lower() not in _NOT_BACK
        ]
        out.append((b"content-length", str(len(answer)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": answer})

    def _call(
        self, url: str, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPSConnection(
            parts.hostname or "", parts.port or 4444, context=self._ctx(), timeout=self._timeout
        )
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", parts.netloc)
            for key, value in headers:
                conn.putheader(key, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read(64 << 20)
        finally:
            conn.close()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class PeerMark:
    """ASGI middleware of the peer port: requests there come from another Director (mutual TLS checked).

    They are marked forwarded (never forwarded again) and carry the original client's address.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = dict(scope)
            scope[FORWARDED] = True
            for key, value in scope.get("headers", []):
                if key == CLIENT_HEADER.encode():
                    address = value.decode("latin-1").strip()
                    if _is_ip(address):
                        scope["client"] = (address, 0)
        await self.app(scope, receive, send)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})

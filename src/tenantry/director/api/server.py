"""The HTTPS server of the setup port: uvicorn serving the API app behind a request body limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from tenantry.director.api import create_app
from tenantry.director.errors import DirectorError
from tenantry.director.service import Director

MAX_BODY = 1 << 20

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413: declared ones at once, streamed ones when read.

    A streamed body that grows past the limit raises :class:`DirectorError` inside the
    route that reads it, so the app's own error handler answers (no response has started).
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body larger than {self.limit} bytes"
        for key, value in scope.get("headers", []):
            if key == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await _send_json(send, 413, {"detail": too_large})
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise DirectorError(413, too_large)
            return message

        await self.app(scope, limited, send)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the Director owns SIGTERM/SIGINT."""

    def capture_signals(self) -> Any:
        return contextlib.nullcontext()


class ApiServer:
    def __init__(self, director: Director) -> None:
        self.director = director
        self.app = BodyLimit(create_app(director))
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=self.director.config.access_log,
            lifespan="off",
            timeout_keep_alive=5,
            timeout_graceful_shutdown=5,
            server_header=False,
            backlog=1024,
        )
        config.load()
        config.ssl = self.director.api_ctx
        self._server = _Server(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("API server stopped during start-up")
            await asyncio.sleep(0.01)
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task

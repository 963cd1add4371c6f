"""The MSP console and the tenant portal, served by the Director on the setup port beside the REST API.

Server-rendered pages (Jinja2, ``templates/``), one small script and one stylesheet served by the
Director (``static/``, nothing from a CDN), forms with CSRF tokens, server-side sessions
(``director/accounts``).  ``mount(app)`` adds the pages, their REST routes and the security headers
to the API's FastAPI app.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from tenantry.director.api.deps import SESSION_COOKIE, principal
from tenantry.director.errors import DirectorError
from tenantry.director.web import api, console, pages, portal
from tenantry.director.web.render import page

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"strict-transport-security", b"max-age=31536000"),
]


class SecurityHeaders:
    """Headers on every answer of the setup port; a Content-Security-Policy on pages (no inline script)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # FastAPI's interactive API docs (/docs, /redoc) load their viewer from a CDN: they keep working
        # as before, without the console's policy.
        strict = not str(scope.get("path", "")).startswith(("/docs", "/redoc"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _v in headers}
                headers += [(k, v) for k, v in _HEADERS if k not in names]
                if strict and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _is_page(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith(("/api/", "/metrics", "/openapi", "/docs", "/redoc")))


def mount(app: FastAPI) -> None:
    """Add the console, the portal and their REST routes to the Director's app."""
    json_handler = app.exception_handlers[DirectorError]

    async def director_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DirectorError)
        if not _is_page(request):
            answer = json_handler(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        if exc.status == 401:
            expired = "&expired=1" if request.cookies.get(SESSION_COOKIE) else ""
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response = RedirectResponse(f"/login?next={quote(target)}{expired}", status_code=303)
            if expired:
                response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
            return response
        who = principal(request)
        return page(request, "error.html", who, http_status=exc.status, status_code=exc.status, message=exc.message)

    app.add_exception_handler(DirectorError, director_error)
    for module in (pages, console, portal, api):
        app.include_router(module.router)
    app.add_middleware(SecurityHeaders)

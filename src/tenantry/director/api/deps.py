"""What every route depends on: the Director, who is asking (admin token or a console/portal session),
the one authorization check, CSRF, JSON bodies, uplink calls."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from pydantic import BaseModel, ValidationError

from tenantry.director.accounts import Principal, authorize
from tenantry.director.errors import DirectorError
from tenantry.director.service import Director
from tenantry.protocol.channel import ChannelClosed, Response, StreamError
from tenantry.protocol.messages import bad_fields

M = TypeVar("M", bound=BaseModel)


class UnauthorizedError(Exception):
    """No or wrong admin credentials (answered 401 with a WWW-Authenticate challenge)."""


def _director(request: Request) -> Director:
    director: Director = request.app.state.director
    return director


SESSION_COOKIE = "__Host-tenantry-session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
TOKEN_PRINCIPAL = Principal(kind="token", username="admin-token", role="admin")


def _token_ok(request: Request, authorization: str) -> bool:
    """Bearer <token>, or basic auth as ``admin`` with the token as password (constant-time compare)."""
    token: str = request.app.state.director.admin_token
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.strip().encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (ValueError, binascii.Error):
            return False
        return user == "admin" and hmac.compare_digest(password.encode(), token.encode())
    return False


def principal(request: Request) -> Principal | None:
    """Who asks: the admin token (``Authorization``), a session cookie, or nobody (cached per request)."""
    if hasattr(request.state, "principal"):
        found: Principal | None = request.state.principal
        return found
    director: Director = request.app.state.director
    authorization = request.headers.get("authorization")
    if authorization:
        who: Principal | None = TOKEN_PRINCIPAL if _token_ok(request, authorization) else None
        request.state.token_refused = who is None
    else:
        who = director.accounts.resolve(request.cookies.get(SESSION_COOKIE))
    request.state.principal = who
    return who


async def check_csrf(request: Request, who: Principal) -> None:
    """A session's state-changing request carries its CSRF token (header or form field) and is same-origin."""
    if request.method in SAFE_METHODS or who.kind != "user":
        return
    if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
        raise DirectorError(403, "cross-site request refused")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not request.app.state.director.accounts.csrf_ok(who, sent):
        raise DirectorError(403, "CSRF token missing or wrong: reload the page and try again")


class Allowed:
    """Dependency: the principal, if it may do ``action`` (the same check for a page, its form and its API)."""

    def __init__(self, action: str) -> None:
        self.action = action

    async def __call__(self, request: Request) -> Principal:
        who = principal(request)
        if who is None and getattr(request.state, "token_refused", False):
            raise UnauthorizedError
        authorize(who, self.action)
        assert who is not None
        await check_csrf(request, who)
        return who


def admin_action(request: Request) -> str:
    """The action an admin REST route needs: reads are fleet.read, the operator's tenant actions
    tenants.operate, everything else admin."""
    if request.method in SAFE_METHODS:
        return "fleet.read"
    if request.method == "POST" and request.url.path.rstrip("/").rsplit("/", 1)[-1] in (
        "credentials",
        "revoke",
        "renew",
    ):
        return "tenants.operate"
    if request.url.path.startswith("/api/v1/settings"):
        return "settings.write"
    return "admin"


async def _admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """The admin REST API: the admin token, or a console session whose role allows the route."""
    who = principal(request)
    if who is None:
        raise UnauthorizedError
    authorize(who, admin_action(request))
    await check_csrf(request, who)


DirectorDep = Annotated[Director, Depends(_director)]
Admin = Annotated[None, Depends(_admin)]
Who = Annotated[Principal | None, Depends(principal)]


async def json_body(request: Request, *, allow_scalar: bool = False) -> Any:
    """The request body as JSON; 400 when it is not JSON, 422 when an object was expected."""
    raw = await request.body()
    try:
        data = json.loads(raw)
    except ValueError:
        raise DirectorError(400, "request body is not valid JSON") from None
    except RecursionError:
        raise DirectorError(400, "request body JSON is nested too deeply") from None
    if not allow_scalar and not isinstance(data, dict):
        raise DirectorError(422, "expected a JSON object of setting: value")
    return data


async def uplink(call: Awaitable[Response]) -> Response:
    """An uplink request; a lost channel or reset stream becomes 502."""
    try:
        return await call
    except (ChannelClosed, StreamError) as exc:
        raise DirectorError(502, f"uplink request failed: {exc}") from None


def transporter_answer(model: type[M], resp: Response) -> M:
    """The Transporter's answer as ``model``; anything else is 502 (its fields named, its values not)."""
    try:
        return model.model_validate_json(resp.body)
    except ValidationError as exc:
        raise DirectorError(502, f"the Transporter sent a malformed {model.__name__} ({bad_fields(exc)})") from None


def transporter_error(body: bytes, status: int) -> dict[str, Any]:
    """The Transporter's ``{"error": ...}`` as ``{"detail": ...}``."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and "error" in data:
            return {"detail": str(data["error"])[:1000]}
    except ValueError:
        pass
    return {"detail": f"Transporter answered HTTP {status}"}

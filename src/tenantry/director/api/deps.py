"""What every route depends on: the Director, admin authentication, JSON bodies, uplink calls."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from pydantic import BaseModel, ValidationError

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


def _admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """Bearer <token>, or basic auth as ``admin`` with the token as password (constant-time compare)."""
    token: str = request.app.state.director.admin_token
    ok = False
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            ok = hmac.compare_digest(value.strip().encode(), token.encode())
        elif scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (ValueError, binascii.Error):
                user, password = "", ""
            ok = user == "admin" and hmac.compare_digest(password.encode(), token.encode())
    if not ok:
        raise UnauthorizedError


DirectorDep = Annotated[Director, Depends(_director)]
Admin = Annotated[None, Depends(_admin)]


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

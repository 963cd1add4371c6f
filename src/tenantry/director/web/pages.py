"""Logging in and out, the home redirect, static files."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from tenantry.director.accounts import Principal
from tenantry.director.api.deps import SESSION_COOKIE, Allowed, DirectorDep, Who
from tenantry.director.errors import DirectorError
from tenantry.director.web.render import STATIC, page

router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "__Host-tenantry-login"
_STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}


def home_of(who: Principal) -> str:
    return "/portal" if who.role == "tenant" else "/console"


def _safe_next(target: str | None, who: Principal) -> str:
    """Only a path on this site (never //host or a scheme), and one the user's role has."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return home_of(who)
    if who.role == "tenant" and not target.startswith("/portal"):
        return home_of(who)
    if who.role != "tenant" and target.startswith("/portal"):
        return home_of(who)
    return target


@router.get("/")
async def root(who: Who) -> RedirectResponse:
    return RedirectResponse(home_of(who) if who is not None and who.kind == "user" else "/login", status_code=303)


def _login_page(request: Request, message: str = "", username: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        None,
        http_status=status,
        message=message,
        username=username,
        login_token=token,
        next=request.query_params.get("next", ""),
        expired=request.query_params.get("expired") == "1",
    )
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, secure=True, samesite="strict", path="/", max_age=3600)
    return response


@router.get("/login")
async def login_form(request: Request, who: Who) -> Response:
    if who is not None and who.kind == "user":
        return RedirectResponse(home_of(who), status_code=303)
    return _login_page(request)


@router.post("/login")
async def login(
    request: Request,
    director: DirectorDep,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    login_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), login_token.encode()):
        return _login_page(request, "The login form expired: please log in again.", username, status=403)
    source = request.client.host if request.client else "?"
    try:
        info = await director.accounts.login(username, password, source)
    except DirectorError as exc:
        return _login_page(request, exc.message, username, status=exc.status)
    response = RedirectResponse(_safe_next(next, info.principal), status_code=303)
    max_age = int(director.settings.session_absolute_timeout)
    response.set_cookie(
        SESSION_COOKIE, info.token, httponly=True, secure=True, samesite="strict", path="/", max_age=max_age
    )
    response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.post("/logout")
async def logout(director: DirectorDep, who: Annotated[Principal, Depends(Allowed("session"))]) -> Response:
    director.accounts.logout(who)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in _STATIC:
        raise DirectorError(404, "not found")
    return FileResponse(STATIC / name, media_type=_STATIC[name], headers={"Cache-Control": "public, max-age=300"})

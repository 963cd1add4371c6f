"""Server-rendered pages: one Jinja2 environment (autoescaped), filters for times and sizes."""

from __future__ import annotations

import hashlib
import time
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from tenantry.director.accounts import Principal, may

WEB = Path(str(resources.files("tenantry.director.web")))
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"


def _ts(value: Any) -> str:
    if not value:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(value)))


def _ago(value: Any, now: float | None = None) -> str:
    if not value:
        return "-"
    seconds = max(0.0, (now or time.time()) - float(value))
    if seconds < 60:  # minutes at most: a live fragment stays the same (304) between two polls
        return "<1 min"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def _until(value: Any) -> str:
    if not value:
        return "-"
    days = (float(value) - time.time()) / 86400
    return "expired" if days <= 0 else f"{days:.0f} days"


def _size(value: Any) -> str:
    if value in (None, ""):
        return "-"
    n = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(value)


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} s"


ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(ts=_ts, ago=_ago, until=_until, size=_size, seconds=_seconds)


def page(
    request: Request, template: str, who: Principal | None, *, http_status: int = 200, **context: Any
) -> HTMLResponse:
    """Render ``template`` for ``who`` (navigation by what it may do; its CSRF token in every form)."""
    html = ENV.get_template(template).render(
        who=who,
        may=(lambda action: may(who, action)),
        csrf=(who.csrf if who is not None and who.csrf else ""),
        path=request.url.path,
        now=time.time(),
        **context,
    )
    return HTMLResponse(html, status_code=http_status, headers={"Cache-Control": "no-store"})


def fragment(request: Request, template: str, who: Principal | None, **context: Any) -> Response:
    """Part of a page for live updates, with an ETag of its HTML: a poll costs 304 while nothing changed."""
    html = ENV.get_template(template).render(
        who=who,
        may=(lambda action: may(who, action)),
        csrf=(who.csrf if who is not None and who.csrf else ""),
        path=request.url.path,
        now=time.time(),
        **context,
    )
    tag = '"' + hashlib.sha256(html.encode()).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    return HTMLResponse(html, headers=headers)

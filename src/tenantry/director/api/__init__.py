"""The Director's HTTPS API on the setup port (default 4443): REST API, OpenAPI document, enrollment.

Admin endpoints (``/api/v1/tenants``, ``/settings``, ``/events``, ``/status``)
need the admin token: ``Authorization: Bearer <token>`` or HTTP basic auth
with user ``admin`` and the token as password.  Enrollment endpoints
(``/api/v1/enroll*``) authenticate with the one-time credentials instead.
Routes are grouped by resource (``tenants``, ``tunnels``, ``settings``,
``status``, ``enrollment``); docs/director-api.md describes every request and answer.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

import tenantry
from tenantry.director.api import backups, enrollment, settings, status, tenants, tunnels
from tenantry.director.api.deps import UnauthorizedError
from tenantry.director.errors import DirectorError, SessionElsewhere
from tenantry.director.service import Director


async def _director_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DirectorError)
    headers = {"Retry-After": "60"} if exc.status == 429 else None
    if isinstance(exc, SessionElsewhere):
        headers = {"x-tenantry-owner": exc.owner}
    return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        problems.append(f"{loc or 'body'}: {err.get('msg')}")
    return JSONResponse({"detail": "invalid request: " + "; ".join(problems)}, status_code=422)


async def _unauthorized(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": "admin authentication required (Bearer token or basic auth as admin)"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="tenantry", Basic realm="tenantry"'},
    )


def create_app(director: Director) -> FastAPI:
    app = FastAPI(
        title="tenantry Director API",
        version=tenantry.__version__,
        description="Tenants, enrollment, Expert Settings, status, events and tunnels. See docs/director-api.md.",
    )
    app.state.director = director
    app.add_exception_handler(DirectorError, _director_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(UnauthorizedError, _unauthorized)
    for module in (enrollment, tenants, tunnels, settings, status, backups):
        app.include_router(module.router)
    from tenantry.director import web  # the console and portal: pages and their routes, same app and TLS

    web.mount(app)
    return app

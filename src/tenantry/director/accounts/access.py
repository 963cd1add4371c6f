"""Who may do what: one table, one function (:func:`authorize`).

A page, the form it posts and the API route behind both call ``authorize`` with the same action,
so the three can never disagree.  A tenant user may only act on its own tenant: for it, the tenant
is taken from its account, and any other tenant answers 404 (so nothing tells it that a tenant
exists).
"""

from __future__ import annotations

from dataclasses import dataclass

from tenantry.director.errors import DirectorError

ROLES = ("admin", "operator", "readonly", "tenant")
MSP_ROLES = ("admin", "operator", "readonly")

# action -> roles allowed.  Keep docs/console.md's table in step (a test compares them).
ACTIONS: dict[str, tuple[str, ...]] = {
    "session": ROLES,  # log out, see one's own account
    # the MSP console
    "fleet.read": ("admin", "operator", "readonly"),  # fleet, tenant pages, events, runs, alarms, settings
    "tenants.operate": ("admin", "operator"),  # issue credentials, revoke, renew, run jobs for a tenant
    "alarms.ack": ("admin", "operator"),
    "audit.run": ("admin", "operator"),
    "settings.write": ("admin",),
    "users.manage": ("admin",),
    "admin": ("admin",),  # the rest of the REST API (create and remove tenants, tunnels, commands)
    # the tenant portal: always the user's own tenant
    "portal.read": ("tenant",),
    "portal.run": ("tenant",),
}


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a console/portal user (session) or the admin token (API only)."""

    kind: str  # "user" | "token"
    username: str
    role: str
    user_id: int | None = None
    tenant_id: str | None = None
    tenant_name: str | None = None
    session_id: str | None = None
    csrf: str | None = None

    @property
    def is_msp(self) -> bool:
        return self.role in MSP_ROLES

    @property
    def label(self) -> str:
        return "admin token" if self.kind == "token" else self.username


def may(principal: Principal | None, action: str) -> bool:
    if principal is None:
        return False
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    return principal.role in ACTIONS[action]


def authorize(principal: Principal | None, action: str, tenant_id: str | None = None) -> Principal:
    """``principal`` if it may do ``action`` (on ``tenant_id``), else DirectorError 401/403/404."""
    if principal is None:
        raise DirectorError(401, "log in first")
    if not may(principal, action):
        raise DirectorError(403, f"{principal.label} ({principal.role}) may not do this ({action})")
    if principal.role == "tenant" and tenant_id is not None and tenant_id != principal.tenant_id:
        raise DirectorError(404, "not found")
    return principal

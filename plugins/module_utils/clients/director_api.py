# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Client of the Director's REST API (docs/director-api.md) that knows nothing of AnsibleModule.

HTTP goes through ``ansible.module_utils.urls.open_url``.  Every failure is one of
the typed errors below with a message that says what was wrong and what to do;
the admin token never appears in a message or a ``repr``.  The pure helpers at
the end (``settings_changes``, ``tenant_changes``...) compare current and desired
state for the modules and are unit-tested on their own.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

# Tenant fields the API lets a client set and change (name and kind are fixed at creation).
TENANT_FIELDS = ("description", "contact", "workload_quota")
SECRET_MASK = "********"


class DirectorApiError(Exception):
    """Base of every error this client raises; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionFailed(DirectorApiError):
    """The Director could not be reached, or its TLS certificate was refused."""


class AuthenticationFailed(DirectorApiError):
    """HTTP 401: the admin token is missing or wrong."""


class NotFound(DirectorApiError):
    """HTTP 404: no such tenant or setting."""


class Conflict(DirectorApiError):
    """HTTP 409: a name exists, a port is in use, or the tenant is offline."""


class Refused(DirectorApiError):
    """HTTP 4xx/5xx other than the above, typically 422 with what is allowed."""


@dataclass(frozen=True)
class ConnectionParams:
    """Where the Director is and how to authenticate.  ``token`` is never part of ``repr``."""

    url: str
    token: str = field(repr=False)
    validate_certs: bool = True
    ca_file: str | None = None
    timeout: int = 30


_ERRORS: dict[int, type[DirectorApiError]] = {401: AuthenticationFailed, 404: NotFound, 409: Conflict}


class DirectorClient:
    """Typed calls for the admin API; each method is one HTTP request."""

    def __init__(self, params: ConnectionParams) -> None:
        url = params.url.rstrip("/")
        if not url.startswith(("https://", "http://")):
            raise DirectorApiError(
                "director_url %r must start with https:// (for example https://director:4443)" % params.url
            )
        self.params = params
        self.base = url

    # ------------------------------------------------------------------ transport
    def request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        """One request; the decoded JSON answer (``None`` when empty) or a typed error."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = "Bearer " + self.params.token
        where = "%s %s%s" % (method, self.base, path)
        try:
            resp = open_url(
                self.base + path,
                data=data,
                headers=headers,
                method=method,
                timeout=self.params.timeout,
                validate_certs=self.params.validate_certs,
                ca_path=self.params.ca_file,
                follow_redirects="none",
                use_netrc=False,
            )
            raw = resp.read()
        except HTTPError as exc:
            raise self._http_error(exc, where) from None
        except URLError as exc:
            raise self._connection_error(exc.reason, where) from None
        except (ssl.SSLError, socket.timeout, ConnectionError, OSError, UrlsConnectionError) as exc:
            raise self._connection_error(exc, where) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise DirectorApiError("%s: the answer is not JSON; is %s a Director?" % (where, self.base)) from None

    def _http_error(self, exc: HTTPError, where: str) -> DirectorApiError:
        try:
            detail = json.loads(exc.read() or b"{}").get("detail") or exc.reason
        except (ValueError, AttributeError, OSError):
            detail = exc.reason
        if exc.code == 401:
            message = (
                "%s: the Director refused the admin token (HTTP 401); give admin_token (or TENANTRY_DIRECTOR_TOKEN) "
                "with the contents of the Director's admin.token" % where
            )
        else:
            message = "%s: HTTP %d: %s" % (where, exc.code, detail)
        return _ERRORS.get(exc.code, Refused)(message, exc.code)

    def _connection_error(self, reason: Any, where: str) -> ConnectionFailed:
        if isinstance(reason, ssl.SSLCertVerificationError):
            return ConnectionFailed(
                "%s: the Director's TLS certificate could not be verified (%s); give ca_file with the Director's "
                "ca.crt (and a URL whose host is one of its server names), or validate_certs=false in a lab"
                % (where, reason.verify_message or reason)
            )
        if "certificate" in str(reason).lower() and "verif" in str(reason).lower():
            return ConnectionFailed(
                "%s: the Director's TLS certificate could not be verified (%s); give ca_file with the Director's "
                "ca.crt, or validate_certs=false in a lab" % (where, reason)
            )
        return ConnectionFailed("%s: cannot reach the Director: %s" % (where, reason))

    # ------------------------------------------------------------------ public
    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/v1/health", auth=False)
        return result

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/v1/status")
        return result

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict[str, Any]:
        """``{"values": {...}, "registry": {key: definition}}``."""
        result: dict[str, Any] = self.request("GET", "/api/v1/settings")
        return result

    def put_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """All-or-nothing change; ``{"values", "changed", "restart_required"}``."""
        result: dict[str, Any] = self.request("PUT", "/api/v1/settings", dict(changes))
        return result

    # ------------------------------------------------------------------ tenants
    def tenants(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/v1/tenants")
        return result

    def tenant(self, name: str) -> dict[str, Any] | None:
        """The tenant called ``name``, or ``None`` (one request, no 404 round trip)."""
        found = self.request("GET", "/api/v1/tenants?name=" + quote(name, safe=""))
        return found[0] if found else None

    def create_tenant(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """``{"tenant": TenantOut, "credentials": Credentials | None}``; credentials come only here."""
        result: dict[str, Any] = self.request("POST", "/api/v1/tenants", dict(spec))
        return result

    def update_tenant(self, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PATCH", "/api/v1/tenants/" + _segment(name), dict(changes))
        return result

    def delete_tenant(self, name: str) -> dict[str, Any]:
        """Revoke every certificate of the tenant, close its session, remove it."""
        result: dict[str, Any] = self.request("DELETE", "/api/v1/tenants/" + _segment(name))
        return result

    def revoke_tenant(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/api/v1/tenants/%s/revoke" % _segment(name))
        return result

    def new_credentials(self, name: str) -> dict[str, Any]:
        """New one-time credentials; the old unused ones stop working."""
        result: dict[str, Any] = self.request("POST", "/api/v1/tenants/%s/credentials" % _segment(name))
        return result

    # ------------------------------------------------------------------ backups (docs/backup.md)
    def backup_repository(self, tenant: str) -> dict[str, Any] | None:
        """The tenant's backup repository settings and usage, or ``None`` when it has none."""
        try:
            result: dict[str, Any] = self.request("GET", "/api/v1/tenants/%s/backup-repository" % _segment(tenant))
        except NotFound as exc:
            if "no backup repository" in str(exc):
                return None
            raise
        return result

    def put_backup_repository(self, tenant: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PUT", "/api/v1/tenants/%s/backup-repository" % _segment(tenant), dict(spec)
        )
        return result

    def repository_action(self, tenant: str, action: str) -> dict[str, Any]:
        """Start a check, retention or copy run at the MSP; the run."""
        result: dict[str, Any] = self.request(
            "POST", "/api/v1/tenants/%s/backup-repository/%s" % (_segment(tenant), _segment(action))
        )
        return result

    def backup_jobs(self, tenant: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/v1/tenants/%s/backup-jobs" % _segment(tenant))
        return result

    def put_backup_job(self, tenant: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PUT", "/api/v1/tenants/%s/backup-jobs/%s" % (_segment(tenant), _segment(name)), dict(spec)
        )
        return result

    def delete_backup_job(self, tenant: str, name: str) -> None:
        self.request("DELETE", "/api/v1/tenants/%s/backup-jobs/%s" % (_segment(tenant), _segment(name)))

    def run_backup_job(self, tenant: str, name: str, vms: list[str] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST",
            "/api/v1/tenants/%s/backup-jobs/%s/run" % (_segment(tenant), _segment(name)),
            {"vms": vms} if vms else None,
        )
        return result

    def restore(self, tenant: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/api/v1/tenants/%s/restores" % _segment(tenant), dict(spec))
        return result

    def backup_run(self, run_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/v1/backup-runs/%d" % int(run_id))
        return result

    def backup_runs(self, tenant: str, limit: int = 20) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request(
            "GET", "/api/v1/tenants/%s/backup-runs?limit=%d" % (_segment(tenant), int(limit))
        )
        return result

    def backups(self, tenant: str, vm: str | None = None) -> list[dict[str, Any]]:
        query = "?vm=" + quote(vm, safe="") if vm else ""
        result: list[dict[str, Any]] = self.request("GET", "/api/v1/tenants/%s/backups%s" % (_segment(tenant), query))
        return result

    # ------------------------------------------------------------------ console users
    def user(self, username: str) -> dict[str, Any] | None:
        """The console/portal user called ``username``, or ``None``."""
        found = self.request("GET", "/api/v1/users?name=" + quote(username, safe=""))
        return found[0] if found else None

    def create_user(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/api/v1/users", dict(spec))
        return result

    def update_user(self, username: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PATCH", "/api/v1/users/" + _segment(username), dict(changes))
        return result

    def delete_user(self, username: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("DELETE", "/api/v1/users/" + _segment(username))
        return result


USER_FIELDS = ("role", "tenant", "full_name", "email", "disabled")


def user_view(user: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the module compares and shows in its diff (the password never: it is write-only)."""
    if not user:
        return {}
    return {k: user.get(k) for k in ("username", *USER_FIELDS)}


def user_changes(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The given fields that differ from the Director's (None means not managed)."""
    return {k: desired[k] for k in USER_FIELDS if desired.get(k) is not None and desired[k] != current.get(k)}


def _segment(name: str) -> str:
    return quote(name, safe="")


# ---------------------------------------------------------------------- pure helpers
class InvalidSettings(DirectorApiError):
    """Desired Expert Settings name unknown keys or values of the wrong type."""


def coerce_setting(key: str, value: Any, definition: Mapping[str, Any]) -> Any:
    """``value`` in the registry type of ``key`` (inventory values are often strings)."""
    kind = definition.get("type")
    try:
        if kind == "integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "number":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "boolean":
            if isinstance(value, str):
                if value.lower() in ("true", "yes", "on", "1"):
                    return True
                if value.lower() in ("false", "no", "off", "0"):
                    return False
                raise ValueError
            return bool(value)
        if kind == "string":
            return str(value)
    except (TypeError, ValueError):
        raise InvalidSettings("Expert Setting %s=%r is not a valid %s" % (key, value, kind)) from None
    return value


def settings_changes(
    values: Mapping[str, Any], registry: Mapping[str, Mapping[str, Any]], desired: Mapping[str, Any]
) -> dict[str, Any]:
    """The subset of ``desired`` (coerced) that differs from ``values``; unknown keys raise."""
    unknown = sorted(set(desired) - set(registry))
    if unknown:
        raise InvalidSettings(
            "unknown Expert Setting(s) %s; allowed settings: %s" % (", ".join(unknown), ", ".join(sorted(registry)))
        )
    changes: dict[str, Any] = {}
    for key, raw in desired.items():
        value = coerce_setting(key, raw, registry[key])
        if registry[key].get("secret"):
            # Write-only: the Director shows only whether one is set, so a set secret is left as it is
            # (clear it with "" to replace it); an unset one is sent.
            if bool(value) != bool(values.get(key)):
                changes[key] = value
        elif values.get(key) != value:
            changes[key] = value
    return changes


def masked(values: Mapping[str, Any], registry: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``values`` with every write-only setting shown as the Director shows it."""
    return {k: (SECRET_MASK if v else "") if registry.get(k, {}).get("secret") else v for k, v in values.items()}


def tenant_create_spec(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The POST body for a new tenant from module-style options (``None`` means not given)."""
    spec: dict[str, Any] = {"name": desired["name"], "kind": desired.get("kind") or "remote"}
    for key in TENANT_FIELDS:
        if desired.get(key) is not None:
            spec[key] = desired[key]
    dc = desired.get("direct_connect")
    if dc:
        spec["direct_connect"] = {k: v for k, v in dc.items() if v is not None}
    return spec


def tenant_changes(current: Mapping[str, Any], desired: Mapping[str, Any], update_psk: bool = False) -> dict[str, Any]:
    """The PATCH body that takes ``current`` (TenantOut) to ``desired``; empty when nothing differs.

    Options left ``None`` are not managed.  ``direct_connect: {}`` (or ``{"address": None}``)
    removes Direct Connect.  The PSK is write-only at the API, so it is sent only when none is
    stored yet, or always with ``update_psk``.
    """
    changes: dict[str, Any] = {}
    for key in TENANT_FIELDS:
        if desired.get(key) is not None and current.get(key) != desired[key]:
            changes[key] = desired[key]
    if "direct_connect" in desired and desired["direct_connect"] is not None:
        want = {k: v for k, v in desired["direct_connect"].items() if v is not None}
        have = current.get("direct_connect")
        if not want.get("address"):
            if have is not None:
                changes["direct_connect"] = None
        else:
            want.setdefault("auth", "certificate")
            same = have is not None and have.get("address") == want["address"] and have.get("auth") == want["auth"]
            psk_needed = want["auth"] == "psk" and "psk" in want and (update_psk or not (have or {}).get("psk_set"))
            if not same or psk_needed:
                body = {"address": want["address"], "auth": want["auth"]}
                if want["auth"] == "psk" and "psk" in want:
                    body["psk"] = want["psk"]
                changes["direct_connect"] = body
    return changes


def tenant_view(tenant: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a diff shows of a tenant: the declarative fields, never status or secrets."""
    if not tenant:
        return {}
    view = {key: tenant.get(key) for key in ("name", "kind", *TENANT_FIELDS)}
    dc = tenant.get("direct_connect")
    view["direct_connect"] = (
        None
        if dc is None
        else {"address": dc.get("address"), "auth": dc.get("auth"), "psk_set": bool(dc.get("psk_set"))}
    )
    view["revoked"] = tenant.get("revoked_at") is not None
    return view


def apply_view(view: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``view`` after a PATCH with ``changes`` (for the diff in check mode); PSKs shown as set, not as text."""
    after = dict(view)
    for key, value in changes.items():
        if key == "direct_connect":
            after[key] = (
                None
                if value is None
                else {
                    "address": value["address"],
                    "auth": value["auth"],
                    "psk_set": bool(value.get("psk")) or bool((view.get("direct_connect") or {}).get("psk_set")),
                }
            )
        else:
            after[key] = value
    return after

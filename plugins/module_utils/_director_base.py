# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Binds the Director API client to an AnsibleModule, and the modules' logic.

Every module follows one flow: read current state → build the desired state →
compare → apply only when not in check mode; ``changed`` comes from the
comparison.  Any API error becomes one clean ``fail_json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tenantry.msp.plugins.module_utils.argument_spec import director_argument_spec
from ansible_collections.tenantry.msp.plugins.module_utils.clients.director_api import (
    ConnectionParams,
    DirectorApiError,
    DirectorClient,
    apply_view,
    masked,
    settings_changes,
    tenant_changes,
    tenant_create_spec,
    tenant_view,
    user_changes,
    user_view,
)

T = TypeVar("T")


def director_module(argument_spec: dict[str, Any], **kwargs: Any) -> AnsibleModule:
    """An AnsibleModule with the shared Director connection options merged in."""
    spec = director_argument_spec()
    spec.update(argument_spec)
    return AnsibleModule(argument_spec=spec, **kwargs)


def connection_params(params: dict[str, Any]) -> ConnectionParams:
    return ConnectionParams(
        url=params["director_url"],
        token=params["admin_token"],
        validate_certs=params["validate_certs"],
        ca_file=params.get("ca_file"),
        timeout=params["timeout"],
    )


def run(module: AnsibleModule, work: Callable[[DirectorClient], T]) -> T:
    """Call ``work(client)``; any API error becomes one clean ``fail_json`` naming what to do."""
    try:
        return work(DirectorClient(connection_params(module.params)))
    except DirectorApiError as exc:
        module.fail_json(msg=str(exc), status=exc.status)
    raise AssertionError("unreachable: fail_json exits")  # pragma: no cover


# ---------------------------------------------------------------------- expert_settings
SETTINGS_ARGUMENT_SPEC: dict[str, Any] = {"settings": {"type": "dict", "required": True}}


class SettingsRun:
    """Declare some Expert Settings; the result of ``tenantry.msp.expert_settings``."""

    def __init__(self, desired: dict[str, Any], check_mode: bool) -> None:
        self.desired = desired
        self.check_mode = check_mode

    def __call__(self, client: DirectorClient) -> dict[str, Any]:
        current = client.settings()
        values, registry = current["values"], current["registry"]
        changes = settings_changes(values, registry, self.desired)
        after = dict(values, **changes)
        if changes and not self.check_mode:
            after = client.put_settings(changes)["values"]
        restart = {key for key in changes if registry[key].get("applies") == "restart"}
        # A restart-only setting stored earlier but not yet in force (a run stopped before the restart).
        if client.status().get("setup_port") != after.get("setup_port"):
            restart.add("setup_port")
        keys = sorted(self.desired)
        after = masked(after, registry)
        return {
            "changed": bool(changes),
            "values": after,
            "changed_keys": sorted(changes),
            "restart_required": sorted(restart),
            "diff": {"before": {k: values.get(k) for k in keys}, "after": {k: after.get(k) for k in keys}},
        }


# ---------------------------------------------------------------------- tenant
TENANT_ARGUMENT_SPEC: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "kind": {"type": "str", "choices": ["remote", "local"], "default": "remote"},
    "description": {"type": "str"},
    "contact": {"type": "str"},
    "workload_quota": {"type": "int"},
    "direct_connect": {
        "type": "dict",
        "options": {
            "address": {"type": "str"},
            "auth": {"type": "str", "choices": ["certificate", "psk"], "default": "certificate"},
            "psk": {"type": "str", "no_log": True},
        },
    },
    "update_psk": {"type": "str", "choices": ["always", "on_create"], "default": "on_create"},
    "regenerate_credentials": {"type": "bool", "default": False},
    "state": {"type": "str", "choices": ["present", "absent", "revoked"], "default": "present"},
}

_NEW_TENANT_VIEW: dict[str, Any] = {
    "description": "",
    "contact": "",
    "workload_quota": 0,
    "direct_connect": None,
    "revoked": False,
}


class TenantRun:
    """Declare one tenant; the result of ``tenantry.msp.tenant``."""

    def __init__(self, params: dict[str, Any], check_mode: bool) -> None:
        self.params = params
        self.check_mode = check_mode
        self.result: dict[str, Any] = {"changed": False, "tenant": {}}
        self.before: dict[str, Any] = {}
        self.after: dict[str, Any] = {}

    def __call__(self, client: DirectorClient) -> dict[str, Any]:
        name = self.params["name"]
        current = client.tenant(name)
        self.before = tenant_view(current)
        self.after = dict(self.before)
        self.result["tenant"] = current or {}
        state = self.params["state"]
        if state == "absent":
            self._absent(client, current)
        elif state == "revoked":
            if current is None:
                raise DirectorApiError("no tenant named %r to revoke" % name)
            self._revoked(client, current)
        elif current is None:
            self._create(client)
        else:
            self._update(client, current)
        self.result["diff"] = {"before": self.before, "after": self.after}
        return self.result

    def _absent(self, client: DirectorClient, current: dict[str, Any] | None) -> None:
        if current is None:
            return
        self.result["changed"] = True
        self.after = {}
        if not self.check_mode:
            client.delete_tenant(current["name"])
            self.result["tenant"] = {}

    def _revoked(self, client: DirectorClient, current: dict[str, Any]) -> None:
        if current.get("revoked_at") is not None:
            return
        self.result["changed"] = True
        self.after["revoked"] = True
        if not self.check_mode:
            self.result["tenant"] = client.revoke_tenant(current["name"])

    def _create(self, client: DirectorClient) -> None:
        spec = tenant_create_spec(self.params)
        self.result["changed"] = True
        new = dict(_NEW_TENANT_VIEW, name=spec["name"], kind=spec["kind"])
        self.after = apply_view(new, {k: v for k, v in spec.items() if k not in ("name", "kind")})
        if self.check_mode:
            return
        created = client.create_tenant(spec)
        self.result["tenant"] = created["tenant"]
        if created.get("credentials"):
            self.result["credentials"] = created["credentials"]

    def _update(self, client: DirectorClient, current: dict[str, Any]) -> None:
        if current.get("kind") != self.params["kind"]:
            raise DirectorApiError(
                "tenant %r exists as a %s tenant and kind cannot change; remove it with state=absent (which "
                "revokes its certificates) and create it again" % (current["name"], current.get("kind"))
            )
        changes = tenant_changes(current, self.params, update_psk=self.params["update_psk"] == "always")
        regenerate = bool(self.params["regenerate_credentials"]) and current.get("kind") == "remote"
        if not changes and not regenerate:
            return
        self.result["changed"] = True
        self.after = apply_view(self.before, changes)
        if self.check_mode:
            return
        if changes:
            self.result["tenant"] = client.update_tenant(current["name"], changes)
        if regenerate:
            self.result["credentials"] = client.new_credentials(current["name"])
            self.result["tenant"] = client.tenant(current["name"]) or self.result["tenant"]


# ---------------------------------------------------------------------- tenant_info
TENANT_INFO_ARGUMENT_SPEC: dict[str, Any] = {"name": {"type": "str"}}


def tenants_info(client: DirectorClient, name: str | None) -> dict[str, Any]:
    """Tenants (one, or all sorted by name) with their connection status."""
    if name is not None:
        tenant = client.tenant(name)
        tenants = [tenant] if tenant else []
    else:
        tenants = client.tenants()
    return {
        "changed": False,
        "tenants": tenants,
        "online": sorted(t["name"] for t in tenants if (t.get("status") or {}).get("online")),
    }


# ---------------------------------------------------------------------- director_user
USER_ARGUMENT_SPEC: dict[str, Any] = {
    "username": {"type": "str", "required": True, "aliases": ["name"]},
    "role": {"type": "str", "choices": ["admin", "operator", "readonly", "tenant"]},
    "tenant": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "update_password": {"type": "str", "choices": ["always", "on_create"], "default": "on_create"},
    "full_name": {"type": "str"},
    "email": {"type": "str"},
    "disabled": {"type": "bool"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
}
PASSWORD_SET = "********"


class UserRun:
    """Declare one console or portal user; the result of ``tenantry.msp.director_user``."""

    def __init__(self, params: dict[str, Any], check_mode: bool) -> None:
        self.params = dict(params, username=str(params["username"]).lower())
        self.check_mode = check_mode

    def __call__(self, client: DirectorClient) -> dict[str, Any]:
        p = self.params
        current = client.user(p["username"])
        before = user_view(current)
        result: dict[str, Any] = {"changed": False, "user": current or {}}
        if p["state"] == "absent":
            if current is not None:
                result.update(changed=True, user={})
                if not self.check_mode:
                    client.delete_user(p["username"])
            result["diff"] = {"before": before, "after": {}}
            return result
        if current is None:
            if not p["role"] or not p["password"]:
                raise DirectorApiError("creating user %r needs role and password" % p["username"])
            spec = {k: p[k] for k in ("username", "role", "tenant", "password", "full_name", "email", "disabled")}
            spec = {k: v for k, v in spec.items() if v is not None}
            after = dict(user_view(dict(spec, disabled=bool(p["disabled"]))), password=PASSWORD_SET)
            result.update(changed=True, diff={"before": {}, "after": after})
            if not self.check_mode:
                result["user"] = client.create_user(spec)
            return result
        changes = user_changes(current, p)
        if p["password"] and p["update_password"] == "always":
            changes["password"] = p["password"]
        after = dict(before, **{k: v for k, v in changes.items() if k != "password"})
        if "password" in changes:
            before = dict(before, password=PASSWORD_SET)
            after["password"] = PASSWORD_SET + " (new)"
        result["diff"] = {"before": before, "after": after}
        if changes:
            result["changed"] = True
            if not self.check_mode:
                result["user"] = client.update_user(p["username"], changes)
        return result

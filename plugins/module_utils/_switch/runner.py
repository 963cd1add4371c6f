# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Binds the ARP-lock backends to an AnsibleModule: options, one flow, clean ``fail_json``.

Both modules follow the resource-module contract: ``rendered`` and ``parsed`` touch no device;
``gathered`` reads; ``merged`` / ``replaced`` / ``overridden`` / ``deleted`` read the current
state, build the desired one, compare, and apply only when something differs and not in check
mode.  Results carry ``before``, ``commands`` and ``after`` (and ``added`` / ``removed``
bindings); diff mode shows the bindings before and after as text.
"""

from __future__ import annotations

import json
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._switch import ios, nftables
from ansible_collections.tenantry.msp.plugins.module_utils._switch.bindings import (
    ACTION_STATES,
    HAS_NETADDR,
    NETADDR_IMPORT_ERROR,
    SOURCE_GUARD_MODES,
    VIOLATIONS,
    BindingError,
    LockConfig,
    build_config,
    changes,
    linux_port,
)

STATES = (*ACTION_STATES, "rendered", "parsed", "gathered")

_BINDING_OPTIONS: dict[str, Any] = {
    "tenant": {"type": "str"},
    "port": {"type": "str", "required": True},
    "mac": {"type": "str"},
    "ip": {"type": "str"},
    "network": {"type": "str"},
    "vlan": {"type": "int"},
}


def _config_options(ios_only: bool) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bindings": {"type": "list", "elements": "dict", "options": _BINDING_OPTIONS, "default": []},
        "tenants": {"type": "list", "elements": "str", "default": []},
        "arp_rate": {"type": "int", "default": 15},
    }
    if ios_only:
        options.update(
            uplinks={"type": "list", "elements": "str", "default": []},
            violation={"type": "str", "choices": list(VIOLATIONS), "default": "restrict"},
            source_guard={"type": "str", "choices": list(SOURCE_GUARD_MODES), "default": "port-security"},
        )
    return options


# The options of ``tenantry.msp.ios_arp_lock`` and ``tenantry.msp.bridge_arp_lock``; O(config) is documented
# once for both in plugins/doc_fragments/arp_lock.py.
IOS_ARGUMENT_SPEC: dict[str, Any] = {
    "config": {"type": "dict", "options": _config_options(ios_only=True)},
    "running_config": {"type": "str"},
    "state": {"type": "str", "choices": list(STATES), "default": "merged"},
}

BRIDGE_ARGUMENT_SPEC: dict[str, Any] = {
    "config": {"type": "dict", "options": _config_options(ios_only=False)},
    "table": {"type": "str", "default": nftables.DEFAULT_TABLE},
    "netns": {"type": "str"},
    "bridge": {"type": "str"},
    "running_config": {"type": "str"},
    "state": {"type": "str", "choices": list(STATES), "default": "merged"},
}


REQUIRED_IF = [
    ("state", "parsed", ["running_config"]),
    ("state", "rendered", ["config"]),
    ("state", "merged", ["config"]),
    ("state", "replaced", ["config"]),
    ("state", "overridden", ["config"]),
]


def _require_netaddr(module: AnsibleModule) -> None:
    if not HAS_NETADDR:
        module.fail_json(msg=missing_required_lib("netaddr"), exception=str(NETADDR_IMPORT_ERROR))


def _want(module: AnsibleModule, backend: str) -> LockConfig:
    """The given config, validated; any problem fails the task before the device is touched."""
    state = module.params["state"]
    raw = module.params.get("config") or {}
    try:
        config = build_config(
            raw,
            port_name=ios.interface_name if backend == "ios" else linux_port,
            require_vlan=backend == "ios",
            complete=state != "deleted",
        )
    except BindingError as exc:
        module.fail_json(msg="Refusing the ARP lock bindings: %s" % exc, errors=exc.errors)
    if state in ("merged", "replaced", "overridden", "rendered") and not config.bindings:
        module.fail_json(msg="config.bindings must not be empty for state %s (use state deleted to remove)" % state)
    return config


def _action_result(backend: str, lines: list[str], before: LockConfig, after: LockConfig) -> dict[str, Any]:
    added, removed = changes(before, after)
    result: dict[str, Any] = {
        "changed": bool(lines),
        "commands": lines,
        "before": before.as_dict(backend),
        "after": after.as_dict(backend),
        "added": added,
        "removed": removed,
        "diff": {"before": before.describe(backend), "after": after.describe(backend)},
    }
    return result


# --------------------------------------------------------------------------- Cisco IOS


def run_ios(module: AnsibleModule) -> None:
    """The whole flow of ``tenantry.msp.ios_arp_lock``; exits the module."""
    _require_netaddr(module)
    state = module.params["state"]
    if state == "parsed":
        config = ios.to_config(ios.parse_running_config(module.params["running_config"]))
        module.exit_json(changed=False, parsed=config.as_dict("ios"))
    want = _want(module, "ios")
    if state == "rendered":
        try:
            module.exit_json(changed=False, rendered=ios.render(want))
        except BindingError as exc:
            module.fail_json(msg="Refusing the ARP lock bindings: %s" % exc, errors=exc.errors)
    connection = _ios_connection(module)
    running = _ios_call(module, connection, "get_config")
    if state == "gathered":
        module.exit_json(changed=False, gathered=ios.to_config(ios.parse_running_config(running)).as_dict("ios"))
    try:
        lines, before, after = ios.plan(running, want, state)
    except BindingError as exc:
        module.fail_json(msg="Refusing the ARP lock bindings: %s" % exc, errors=exc.errors)
    if lines and not module.check_mode:
        _ios_call(module, connection, "edit_config", candidate=lines)
        after = ios.to_config(ios.parse_running_config(_ios_call(module, connection, "get_config")))
    exit_result(module, _action_result("ios", lines, before, after))


def _ios_connection(module: AnsibleModule) -> Any:
    from ansible.module_utils.connection import Connection

    if not module._socket_path:
        module.fail_json(
            msg="state %s talks to the switch: run it with ansible_connection=ansible.netcommon.network_cli "
            "and ansible_network_os=cisco.ios.ios (states rendered and parsed need no switch)" % module.params["state"]
        )
    return Connection(module._socket_path)


def _ios_call(module: AnsibleModule, connection: Any, method: str, **kwargs: Any) -> Any:
    from ansible.module_utils.connection import ConnectionError as AnsibleConnectionError

    try:
        return getattr(connection, method)(**kwargs)
    except AnsibleConnectionError as exc:
        module.fail_json(msg="Talking to the switch failed (%s): %s" % (method, exc))
    raise AssertionError("unreachable: fail_json exits")  # pragma: no cover


# --------------------------------------------------------------------------- Linux bridge (nftables)


class _Nft:
    """Runs ``nft`` (inside a network namespace when asked) for one table; never touches another."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.table = module.params["table"]
        netns = module.params.get("netns")
        ip = module.get_bin_path("ip", required=True)
        self.prefix = [ip, "netns", "exec", netns] if netns else []
        self.ip = [ip, "-n", netns] if netns else [ip]
        self.nft = module.get_bin_path("nft", required=True)

    def run(self, *args: str, data: str | None = None) -> str:
        rc, out, err = self.module.run_command([*self.prefix, self.nft, *args], data=data, binary_data=True)
        if rc != 0:
            hint = " (the nftables ARP lock needs root: use become)" if "Operation not permitted" in err else ""
            self.module.fail_json(msg="nft %s failed: %s%s" % (" ".join(args[:3]), err.strip(), hint), rc=rc)
        return str(out)

    def read(self) -> nftables.TableState:
        tables = json.loads(self.run("-j", "list", "tables", "bridge"))["nftables"]
        if not any(o.get("table", {}).get("name") == self.table for o in tables):
            return nftables.TableState()
        return nftables.parse_listing(self.run("-j", "list", "table", "bridge", self.table), self.table)

    def apply(self, lines: list[str]) -> None:
        self.run("-f", "-", data="\n".join(lines) + "\n")

    def bridge_ports(self, bridge: str) -> set[str]:
        rc, out, err = self.module.run_command([*self.ip, "-j", "link", "show", "master", bridge])
        if rc != 0:
            self.module.fail_json(msg="bridge %s: %s" % (bridge, err.strip()))
        return {link["ifname"] for link in json.loads(out or "[]")}


def run_bridge(module: AnsibleModule) -> None:
    """The whole flow of ``tenantry.msp.bridge_arp_lock``; exits the module."""
    _require_netaddr(module)
    state = module.params["state"]
    try:
        table = nftables.valid_table(module.params["table"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if state == "parsed":
        try:
            parsed = nftables.parse_listing(module.params["running_config"], table)
        except ValueError as exc:
            module.fail_json(msg="running_config: %s" % exc)
        module.exit_json(changed=False, parsed=nftables.to_config(parsed).as_dict("linux_bridge"))
    want = _want(module, "linux_bridge")
    if state == "rendered":
        try:
            module.exit_json(changed=False, rendered=nftables.render(want, table))
        except BindingError as exc:
            module.fail_json(msg="Refusing the ARP lock bindings: %s" % exc, errors=exc.errors)
    nft = _Nft(module)
    current = nft.read()
    if state == "gathered":
        module.exit_json(
            changed=False, gathered=nftables.to_config(current).as_dict("linux_bridge"), counters=current.counters
        )
    try:
        plan = nftables.plan(current, want, state, table)
    except BindingError as exc:
        module.fail_json(msg="Refusing the ARP lock bindings: %s" % exc, errors=exc.errors)
    bridge = module.params.get("bridge")
    if bridge and state != "deleted":
        members = nft.bridge_ports(bridge)
        missing = sorted(b.port for b in plan.after.bindings if b.port not in members)
        if missing:
            module.fail_json(
                msg="port %s is not a port of bridge %s (its ports: %s)"
                % (", ".join(missing), bridge, ", ".join(sorted(members)) or "none")
            )
    counters = current.counters
    after = plan.after
    if plan.lines and not module.check_mode:
        nft.apply(plan.lines)
        now = nft.read()
        after, counters = nftables.to_config(now), now.counters
    exit_result(module, dict(_action_result("linux_bridge", plan.lines, plan.before, after), counters=counters))

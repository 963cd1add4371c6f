# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Cisco IOS ARP lock: running-config <-> device data <-> bindings, and the commands between two states.

Pure functions, no device and no Ansible: :func:`plan` takes the switch's running-config text,
the wanted :class:`LockConfig` and a state, and returns the commands plus the bindings before and
after.  What the lock owns on a switch:

- interfaces whose description is ``tenantry tenant=<name> [network=<cidr>]`` (tenant ports): access
  VLAN, port security, ARP inspection rate limit, IP source guard;
- trust (DHCP snooping and ARP inspection) on the uplinks;
- ARP access lists named ``TENANTRY-ARP-V<vlan>`` and their ``ip arp inspection filter`` lines;
- ``ip source binding`` lines of tenant ports, and the tenant VLANs in DHCP snooping and ARP
  inspection (a VLAN is released only when the last tenant port in it goes).

Commands are ordered so that protection never has a hole and never blocks legitimate traffic:
uplinks are trusted and access lists exist before a VLAN is inspected; a VLAN stops being inspected
before its access list goes.
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._switch.bindings import (
    Binding,
    LockConfig,
    check,
    desired,
)
from ansible_collections.tenantry.msp.plugins.module_utils._switch.ios_templates import (
    ACL_LINE,
    DESCRIPTION_MARK,
    DESCRIPTION_RE,
    INTERFACE_LINE,
    Parser,
    default,
    interface_name,
    parsers,
)

Device = dict[str, dict[str, Any]]
ACL_PREFIX = "TENANTRY-ARP-"
_TRUST_KEYS = ("dhcp_snooping_trust", "arp_inspection_trust")
_LOCK_KEYS = (
    "description",
    "access_vlan",
    "port_security",
    "port_security_maximum",
    "port_security_violation",
    "port_security_macs",
    "arp_inspection_limit",
    "ip_verify_source",
)

# Phases order the commands of one change (see the module docstring).
_UPLINK_TRUST, _ACL_EDIT, _FILTER_ADD, _SOURCE_DEL, _SOURCE_ADD = 10, 20, 30, 40, 45
_PORTS, _VLAN_ADD, _VLAN_DEL, _FILTER_DEL, _ACL_DEL, _UPLINK_UNTRUST = 50, 60, 70, 80, 90, 100
_GLOBAL_PHASES = {  # key: (phase of lines added, phase of lines removed)
    "dhcp_snooping": (_VLAN_ADD, _VLAN_DEL),
    "dhcp_snooping_vlans": (_VLAN_ADD, _VLAN_DEL),
    "arp_inspection_vlans": (_VLAN_ADD, _VLAN_DEL),
    "arp_inspection_filters": (_FILTER_ADD, _FILTER_DEL),
    "source_bindings": (_SOURCE_ADD, _SOURCE_DEL),
}


def acl_name(vlan: int) -> str:
    return "%sV%d" % (ACL_PREFIX, vlan)


def empty_device() -> Device:
    return {"global": {}, "interfaces": {}, "acls": {}}


# --------------------------------------------------------------------------- parsing


def parse_running_config(text: str) -> Device:
    """Device data from ``show running-config`` text, or from a flat list of commands (what
    ``rendered`` returns): a line that is no sub-command of the current block ends the block."""
    device = empty_device()
    scope, name = "global", ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("!"):
            scope, name = "global", ""
            continue
        match = INTERFACE_LINE.match(line)
        if match:
            try:
                name = interface_name(match.group("name"))
            except ValueError:
                name = match.group("name")  # Vlan210, Loopback0: kept, never managed
            scope = "interface"
            device["interfaces"].setdefault(name, {})
            continue
        match = ACL_LINE.match(line)
        if match:
            scope, name = "acl", match.group("name")
            device["acls"].setdefault(name, {})
            continue
        if scope != "global":
            if _store(parsers(scope), line, device["interfaces" if scope == "interface" else "acls"][name]):
                continue
            if raw[:1].isspace():
                continue  # a sub-command the lock does not manage
            scope, name = "global", ""
        _store(parsers("global"), line, device["global"])
    return device


def _store(candidates: tuple[Parser, ...], line: str, data: dict[str, Any]) -> bool:
    for parser in candidates:
        match = parser.getval.match(line)
        if match:
            value = parser.value(match)
            if parser.kind == "set":
                data.setdefault(parser.key, set()).update(value)
            else:
                data[parser.key] = value
            return True
    return False


def effective(data: dict[str, Any], key: str) -> Any:
    value = data.get(key)
    return default(data, key) if value is None else value


# --------------------------------------------------------------------------- device <-> bindings


def to_config(device: Device) -> LockConfig:
    """The bindings, uplinks and settings a device holds.  A tenant port counts when its
    description carries the tenantry mark and it has a port-security MAC, an IP (source binding or
    ARP ACL entry) and an access VLAN."""
    sources = sorted(device["global"].get("source_bindings", ()))
    acl_ip = {
        mac: ip
        for name, acl in device["acls"].items()
        if name.startswith(ACL_PREFIX)
        for ip, mac in acl.get("entries", ())
    }
    bindings: list[Binding] = []
    violations: Counter[str] = Counter()
    rates: Counter[int] = Counter()
    guards: Counter[str] = Counter()
    for name, data in sorted(device["interfaces"].items()):
        mark = DESCRIPTION_RE.match(data.get("description") or "")
        macs = sorted(data.get("port_security_macs", ()))
        if not mark or not macs:
            continue
        mac = macs[0]
        source = [s for s in sources if s[3] == name and s[0] == mac]
        ip = source[0][2] if source else acl_ip.get(mac)
        vlan = data.get("access_vlan") or (source[0][1] if source else None)
        if ip is None or vlan is None:
            continue
        bindings.append(
            Binding(port=name, mac=mac, ip=ip, tenant=mark.group("tenant"), network=mark.group("network"), vlan=vlan)
        )
        violations[effective(data, "port_security_violation")] += 1
        rates[effective(data, "arp_inspection_limit")] += 1
        guards[data.get("ip_verify_source") or "none"] += 1
    uplinks = [
        name
        for name, data in device["interfaces"].items()
        if any(data.get(k) for k in _TRUST_KEYS) and not data.get("port_security")
    ]
    settings: dict[str, Any] = {}
    if violations:
        settings = {
            "violation": _most_common(violations),
            "arp_rate": _most_common(rates),
            "source_guard": _most_common(guards),
        }
    return LockConfig(bindings=tuple(bindings), uplinks=tuple(uplinks), **settings)


def _most_common(counter: Counter[Any]) -> Any:
    best = max(counter.values())
    return sorted((k for k, n in counter.items() if n == best), key=str)[0]


def build_want(have: Device, have_config: LockConfig, target: LockConfig, *, lock: bool = True) -> Device:
    """``have`` with everything the lock owns rewritten for ``target``; what it does not own is
    copied untouched.  ``lock=False`` (state deleted) leaves the remaining tenant ports as they are."""
    want = copy.deepcopy(have)
    interfaces = want["interfaces"]
    target_ports = target.by_port()
    for binding in have_config.bindings:
        if binding.port not in target_ports:
            for key in _LOCK_KEYS:
                interfaces[binding.port].pop(key, None)
    if lock:
        for binding in target.bindings:
            _lock(interfaces.setdefault(binding.port, {}), binding, target)
    for name in set(have_config.uplinks) - set(target.uplinks):
        for key in _TRUST_KEYS:
            interfaces[name].pop(key, None)
    for name in target.uplinks:
        interfaces.setdefault(name, {}).update(dict.fromkeys(_TRUST_KEYS, True))

    glob = want["global"]
    vlans = {b.vlan for b in target.bindings if b.vlan is not None}
    released = {b.vlan for b in have_config.bindings if b.vlan is not None} - vlans
    for key in ("dhcp_snooping_vlans", "arp_inspection_vlans"):
        glob[key] = (set(glob.get(key, ())) - released) | vlans
    if target.bindings:
        glob["dhcp_snooping"] = True
    glob["arp_inspection_filters"] = {
        f for f in glob.get("arp_inspection_filters", ()) if not f[0].startswith(ACL_PREFIX)
    } | {(acl_name(v), v, True) for v in vlans}
    ports = set(have_config.by_port()) | set(target_ports)
    glob["source_bindings"] = {s for s in glob.get("source_bindings", ()) if s[3] not in ports} | {
        (b.mac, b.vlan, b.ip, b.port) for b in target.bindings
    }
    want["acls"] = {n: acl for n, acl in want["acls"].items() if not n.startswith(ACL_PREFIX)}
    for vlan in sorted(vlans):
        want["acls"][acl_name(vlan)] = {"entries": {(b.ip, b.mac) for b in target.bindings if b.vlan == vlan}}
    return want


def _lock(data: dict[str, Any], binding: Binding, config: LockConfig) -> None:
    description = "%s tenant=%s" % (DESCRIPTION_MARK, binding.tenant)
    if binding.network:
        description += " network=%s" % binding.network
    for key in _TRUST_KEYS:
        data.pop(key, None)
    data.update(
        description=description,
        mode="access",
        access_vlan=binding.vlan,
        port_security=True,
        port_security_maximum=1,
        port_security_violation=config.violation,
        port_security_macs={binding.mac},
        arp_inspection_limit=config.arp_rate,
        ip_verify_source=config.source_guard,
    )


# --------------------------------------------------------------------------- commands


def _diff(
    candidates: tuple[Parser, ...], have: dict[str, Any], want: dict[str, Any], explicit: bool = False
) -> tuple[list[str], list[str]]:
    """(removals, additions) that turn ``have`` into ``want``; removals in reverse parser order.

    ``explicit`` writes values even where they equal the IOS default (for ``rendered``)."""
    removals: list[list[str]] = []
    additions: list[str] = []
    for parser in candidates:
        old, new = have.get(parser.key), want.get(parser.key)
        gone: list[str] = []
        if parser.kind == "flag":
            if new and not old:
                additions.append(parser.render(True))
            elif old and not new:
                gone.append(parser.render(True, remove=True))
        elif parser.kind == "scalar":
            if new is None:
                if old is not None and old != default(want, parser.key):
                    gone.append(parser.render(old, remove=True))
            elif new != (old if explicit else effective(have, parser.key)):
                additions.append(parser.render(new))
        else:
            old_set, new_set = set(old or ()), set(new or ())
            gone += [parser.render(v, remove=True) for v in sorted(old_set - new_set)]
            additions += [parser.render(v) for v in sorted(new_set - old_set)]
        removals.append(gone)
    return [line for group in reversed(removals) for line in group], additions


def commands(have: Device, want: Device, explicit: bool = False) -> list[str]:
    """IOS configuration commands that turn ``have`` into ``want``, in a safe order."""
    phases: dict[int, list[str]] = defaultdict(list)
    for name in sorted(set(have["interfaces"]) | set(want["interfaces"])):
        old, new = have["interfaces"].get(name, {}), want["interfaces"].get(name, {})
        removals, additions = _diff(parsers("interface"), old, new, explicit)
        if not (removals or additions):
            continue
        if any(new.get(k) for k in _TRUST_KEYS):
            phase = _UPLINK_TRUST
        elif any(old.get(k) for k in _TRUST_KEYS) and not (new.get("port_security") or old.get("port_security")):
            phase = _UPLINK_UNTRUST
        else:
            phase = _PORTS
        phases[phase] += ["interface " + name, *removals, *additions]
    for parser in parsers("global"):
        removals, additions = _diff((parser,), have["global"], want["global"])
        add_phase, remove_phase = _GLOBAL_PHASES[parser.key]
        phases[remove_phase] += removals
        phases[add_phase] += additions
    for name in sorted(set(have["acls"]) | set(want["acls"])):
        if name not in want["acls"]:
            phases[_ACL_DEL].append("no arp access-list " + name)
            continue
        removals, additions = _diff(parsers("acl"), have["acls"].get(name, {}), want["acls"][name])
        if removals or additions:
            phases[_ACL_EDIT] += ["arp access-list " + name, *additions, *removals]
    return [line for phase in sorted(phases) for line in phases[phase]]


def render(config: LockConfig) -> list[str]:
    """Commands that configure ``config`` on a switch that has none of it (state ``rendered``)."""
    check(config)
    return commands(empty_device(), build_want(empty_device(), LockConfig(), config), explicit=True)


def plan(running_config: str, want: LockConfig, state: str) -> tuple[list[str], LockConfig, LockConfig]:
    """(commands, before, after) for ``state`` on a switch whose running-config is given.

    Raises :class:`BindingError` when the result would break a rule (one MAC or IP on two ports).
    """
    have = parse_running_config(running_config)
    before = to_config(have)
    target = desired(before, want, state)
    check(target)
    want_device = build_want(have, before, target, lock=state != "deleted")
    return commands(have, want_device), before, to_config(want_device)

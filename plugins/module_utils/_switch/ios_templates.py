# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Cisco IOS parser and template pairs, one group per ARP-lock feature (the resource-module model).

Each :class:`Parser` reads one kind of line into one key of the device data (``getval`` +
``value``) and renders that key back into a command (``setval``; ``negate`` removes it).  The
device data is plain dictionaries::

    {"global":     {key: value},                   # top-level lines
     "interfaces": {name: {key: value}},           # lines under ``interface <name>``
     "acls":       {name: {key: value}}}           # lines under ``arp access-list <name>``

``kind`` says how a key holds its value: ``flag`` (True when the line is present), ``scalar``
(one value; absent means the IOS default) or ``set`` (a set of values, one line each).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._switch.bindings import normalize_mac

with contextlib.suppress(ImportError):  # the modules report a missing netaddr before using it
    from netaddr import EUI, mac_cisco

DESCRIPTION_MARK = "tenantry"
DESCRIPTION_RE = re.compile(r"^tenantry tenant=(?P<tenant>\S+)(?: network=(?P<network>\S+))?$")

_CISCO_MAC = r"(?P<mac>[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})"
INTERFACE_LINE = re.compile(r"^interface\s+(?P<name>\S+)\s*$")
ACL_LINE = re.compile(r"^arp\s+access-list\s+(?P<name>\S+)\s*$")

# Long names IOS prints in running-config, by the prefixes people type.
_INTERFACE_PREFIXES = (
    ("twentyfivegige", "TwentyFiveGigE"),
    ("twe", "TwentyFiveGigE"),
    ("twogigabitethernet", "TwoGigabitEthernet"),
    ("tw", "TwoGigabitEthernet"),
    ("fivegigabitethernet", "FiveGigabitEthernet"),
    ("fi", "FiveGigabitEthernet"),
    ("tengigabitethernet", "TenGigabitEthernet"),
    ("te", "TenGigabitEthernet"),
    ("fortygigabitethernet", "FortyGigabitEthernet"),
    ("fo", "FortyGigabitEthernet"),
    ("hundredgige", "HundredGigE"),
    ("hu", "HundredGigE"),
    ("gigabitethernet", "GigabitEthernet"),
    ("gi", "GigabitEthernet"),
    ("fastethernet", "FastEthernet"),
    ("fa", "FastEthernet"),
    ("ethernet", "Ethernet"),
    ("et", "Ethernet"),
    ("port-channel", "Port-channel"),
    ("po", "Port-channel"),
)
_INTERFACE_RE = re.compile(r"^(?P<kind>[A-Za-z-]+)\s*(?P<num>\d+(?:/\d+)*(?:\.\d+)?)$")


def interface_name(name: str) -> str:
    """``GigabitEthernet1/0/10`` from ``Gi1/0/10``, ``gi 1/0/10`` or the long form."""
    match = _INTERFACE_RE.match(str(name).strip())
    if match:
        kind = match.group("kind").lower()
        for prefix, long_name in _INTERFACE_PREFIXES:
            if long_name.lower().startswith(kind) and kind.startswith(prefix):
                return long_name + match.group("num")
    raise ValueError("%r is not an IOS Ethernet or port-channel interface (e.g. GigabitEthernet1/0/10)" % (name,))


def cisco_mac(mac: str) -> str:
    """``0050.5600.6503``, the notation IOS prints."""
    return str(EUI(mac, dialect=mac_cisco)).lower()


def vlan_list(text: str) -> list[int]:
    """``[210, 220, 221, 222]`` from ``210,220-222``."""
    vlans: list[int] = []
    for part in text.split(","):
        low, _dash, high = part.strip().partition("-")
        vlans.extend(range(int(low), int(high or low) + 1))
    return vlans


@dataclass(frozen=True)
class Parser:
    """One kind of line: how to read it (``getval``/``value``) and write it (``setval``/``negate``)."""

    feature: str
    scope: str  # global | interface | acl
    key: str
    kind: str  # flag | scalar | set
    getval: re.Pattern[str]
    setval: Callable[[Any], str]
    value: Callable[[re.Match[str]], Any] = lambda m: True
    negate: Callable[[Any], str] | None = None

    def render(self, value: Any, *, remove: bool = False) -> str:
        if remove:
            return self.negate(value) if self.negate else "no " + self.setval(value)
        return self.setval(value)


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace(" ", r"\s+"))


def _macs(m: re.Match[str]) -> list[str]:
    return [normalize_mac(m.group("mac"))]


# Order inside a scope is the order commands are added in; removals run in reverse.
PARSERS: tuple[Parser, ...] = (
    # ---- access: the port's tenant marker and VLAN
    Parser(
        "access",
        "interface",
        "description",
        "scalar",
        _re(r"^description (?P<text>.+?)$"),
        setval="description {}".format,
        value=lambda m: m.group("text"),
        negate=lambda v: "no description",
    ),
    Parser(
        "access",
        "interface",
        "mode",
        "scalar",
        _re(r"^switchport mode (?P<mode>access|trunk|dynamic \S+)$"),
        setval="switchport mode {}".format,
        value=lambda m: m.group("mode"),
        negate=lambda v: "no switchport mode",
    ),
    Parser(
        "access",
        "interface",
        "access_vlan",
        "scalar",
        _re(r"^switchport access vlan (?P<vlan>\d+)$"),
        setval="switchport access vlan {}".format,
        value=lambda m: int(m.group("vlan")),
        negate=lambda v: "no switchport access vlan",
    ),
    # ---- port security: maximum 1, the static MAC, violation restrict|shutdown
    Parser(
        "port_security",
        "interface",
        "port_security",
        "flag",
        _re(r"^switchport port-security$"),
        setval=lambda v: "switchport port-security",
    ),
    Parser(
        "port_security",
        "interface",
        "port_security_maximum",
        "scalar",
        _re(r"^switchport port-security maximum (?P<max>\d+)(?: vlan \S+)?$"),
        setval="switchport port-security maximum {}".format,
        value=lambda m: int(m.group("max")),
        negate=lambda v: "no switchport port-security maximum",
    ),
    Parser(
        "port_security",
        "interface",
        "port_security_violation",
        "scalar",
        _re(r"^switchport port-security violation (?P<mode>protect|restrict|shutdown)$"),
        setval="switchport port-security violation {}".format,
        value=lambda m: m.group("mode"),
        negate=lambda v: "no switchport port-security violation",
    ),
    Parser(
        "port_security",
        "interface",
        "port_security_macs",
        "set",
        _re(r"^switchport port-security mac-address " + _CISCO_MAC + r"(?: vlan \S+)?$"),
        setval=lambda mac: "switchport port-security mac-address %s" % cisco_mac(mac),
        value=_macs,
    ),
    # ---- DHCP snooping: on for the tenant VLANs, uplinks trusted, server messages dropped elsewhere
    Parser(
        "dhcp_snooping",
        "global",
        "dhcp_snooping",
        "flag",
        _re(r"^ip dhcp snooping$"),
        setval=lambda v: "ip dhcp snooping",
    ),
    Parser(
        "dhcp_snooping",
        "global",
        "dhcp_snooping_vlans",
        "set",
        _re(r"^ip dhcp snooping vlan (?P<vlans>[\d,-]+)$"),
        setval="ip dhcp snooping vlan {}".format,
        value=lambda m: vlan_list(m.group("vlans")),
    ),
    Parser(
        "dhcp_snooping",
        "interface",
        "dhcp_snooping_trust",
        "flag",
        _re(r"^ip dhcp snooping trust$"),
        setval=lambda v: "ip dhcp snooping trust",
    ),
    # ---- dynamic ARP inspection: per-VLAN ARP access list of the bindings (static), rate limit, trust
    Parser(
        "arp_inspection",
        "acl",
        "entries",
        "set",
        _re(r"^permit ip host (?P<ip>\d+\.\d+\.\d+\.\d+) mac host " + _CISCO_MAC + r"(?: log)?$"),
        setval=lambda e: "permit ip host %s mac host %s" % (e[0], cisco_mac(e[1])),
        value=lambda m: [(m.group("ip"), normalize_mac(m.group("mac")))],
    ),
    Parser(
        "arp_inspection",
        "global",
        "arp_inspection_filters",
        "set",
        _re(r"^ip arp inspection filter (?P<acl>\S+) vlan (?P<vlans>[\d,-]+)(?P<static> static)?$"),
        setval=lambda f: "ip arp inspection filter %s vlan %d%s" % (f[0], f[1], " static" if f[2] else ""),
        value=lambda m: [(m.group("acl"), v, bool(m.group("static"))) for v in vlan_list(m.group("vlans"))],
        negate=lambda f: "no ip arp inspection filter %s vlan %d" % (f[0], f[1]),
    ),
    Parser(
        "arp_inspection",
        "global",
        "arp_inspection_vlans",
        "set",
        _re(r"^ip arp inspection vlan (?P<vlans>[\d,-]+)$"),
        setval="ip arp inspection vlan {}".format,
        value=lambda m: vlan_list(m.group("vlans")),
    ),
    Parser(
        "arp_inspection",
        "interface",
        "arp_inspection_trust",
        "flag",
        _re(r"^ip arp inspection trust$"),
        setval=lambda v: "ip arp inspection trust",
    ),
    Parser(
        "arp_inspection",
        "interface",
        "arp_inspection_limit",
        "scalar",
        _re(r"^ip arp inspection limit (?:rate (?P<rate>\d+)(?: burst interval \d+)?|(?P<none>none))$"),
        setval=lambda v: "ip arp inspection limit none" if v == 0 else "ip arp inspection limit rate %d" % v,
        value=lambda m: 0 if m.group("none") else int(m.group("rate")),
        negate=lambda v: "no ip arp inspection limit",
    ),
    # ---- IP source guard: static source bindings, filtering on IP and MAC
    Parser(
        "ip_source_guard",
        "global",
        "source_bindings",
        "set",
        _re(
            r"^ip source binding "
            + _CISCO_MAC
            + r" vlan (?P<vlan>\d+) (?P<ip>\d+\.\d+\.\d+\.\d+) interface (?P<iface>\S+)$"
        ),
        setval=lambda s: "ip source binding %s vlan %d %s interface %s" % (cisco_mac(s[0]), s[1], s[2], s[3]),
        value=lambda m: [
            (normalize_mac(m.group("mac")), int(m.group("vlan")), m.group("ip"), interface_name(m.group("iface")))
        ],
    ),
    Parser(
        "ip_source_guard",
        "interface",
        "ip_verify_source",
        "scalar",
        _re(r"^ip verify source(?: vlan dhcp-snooping)?(?: (?P<mode>port-security|mac-check))?$"),
        setval=lambda v: "ip verify source" if v == "ip" else "ip verify source %s" % v,
        value=lambda m: m.group("mode") or "ip",
        negate=lambda v: "no ip verify source",
    ),
)

FEATURES = ("access", "port_security", "dhcp_snooping", "arp_inspection", "ip_source_guard")


def parsers(scope: str, features: Iterable[str] = FEATURES) -> tuple[Parser, ...]:
    wanted = set(features)
    return tuple(p for p in PARSERS if p.scope == scope and p.feature in wanted)


# IOS prints nothing for these defaults; a parser that finds no line means the default.
def default(scope_data: dict[str, Any], key: str) -> Any:
    if key == "port_security_maximum":
        return 1 if scope_data.get("port_security") else None
    if key == "port_security_violation":
        return "shutdown" if scope_data.get("port_security") else None
    if key == "arp_inspection_limit":
        return 0 if scope_data.get("arp_inspection_trust") else 15
    return None

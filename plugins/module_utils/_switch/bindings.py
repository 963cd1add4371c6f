# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Tenant port bindings: the data every ARP-lock backend takes, its validation, and what each state means.

A binding says: on this switch port only this MAC, and from it only this IP (inside the tenant
network), may speak.  Backends translate a :class:`LockConfig` into device configuration; this
module knows nothing of devices or of Ansible, and raises :class:`BindingError` listing every
problem, each naming the port(s) concerned, before anything is pushed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

try:
    from netaddr import EUI, AddrFormatError, IPAddress, IPNetwork, mac_unix_expanded

    HAS_NETADDR = True
    NETADDR_IMPORT_ERROR: Exception | None = None
except ImportError as exc:  # pragma: no cover - reported by the modules through missing_required_lib
    HAS_NETADDR = False
    NETADDR_IMPORT_ERROR = exc

BACKENDS = ("ios", "linux_bridge")
VIOLATIONS = ("restrict", "shutdown")
SOURCE_GUARD_MODES = ("port-security", "mac-check")
ACTION_STATES = ("merged", "replaced", "overridden", "deleted")
DEFAULT_ARP_RATE = 15  # pps; Cisco DAI's default on untrusted ports
MAX_ARP_RATE = 2048  # Cisco's upper bound for `ip arp inspection limit rate`

_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_LINUX_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:@+-]{1,15}$")
_MAC_RE = re.compile(
    r"^(?:[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}"  # 00:50:56:00:65:03, 00-50-56-00-65-03
    r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}"  # 0050.5600.6503 (Cisco)
    r"|[0-9A-Fa-f]{12})$"
)


class BindingError(ValueError):
    """Every problem found in a set of bindings, each message naming the port(s) concerned."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


@dataclass(frozen=True, order=True)
class Binding:
    """One locked port.  Fields other than ``port`` are ``None`` only when read back from a device
    that does not carry them (a port locked by hand, without the tenantry description)."""

    port: str
    mac: str | None = None
    ip: str | None = None
    tenant: str | None = None
    network: str | None = None
    vlan: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "port": self.port,
            "mac": self.mac,
            "ip": self.ip,
            "network": self.network,
            "vlan": self.vlan,
        }

    def describe(self) -> str:
        """One line for diffs and messages."""
        parts = [self.port, self.mac or "-", self.ip or "-"]
        if self.tenant:
            parts.append("tenant=%s" % self.tenant)
        if self.network:
            parts.append("network=%s" % self.network)
        if self.vlan is not None:
            parts.append("vlan=%d" % self.vlan)
        return " ".join(parts)


@dataclass(frozen=True)
class LockConfig:
    """The whole lock of one switch or bridge: bindings sorted by port, trusted uplinks, settings."""

    bindings: tuple[Binding, ...] = ()
    uplinks: tuple[str, ...] = ()
    violation: str = "restrict"
    arp_rate: int = DEFAULT_ARP_RATE
    source_guard: str = "port-security"
    tenants: tuple[str, ...] = field(default=(), compare=False)  # deletion scope only

    def __post_init__(self) -> None:
        object.__setattr__(self, "bindings", tuple(sorted(self.bindings)))
        object.__setattr__(self, "uplinks", tuple(sorted(set(self.uplinks))))

    def by_port(self) -> dict[str, Binding]:
        return {b.port: b for b in self.bindings}

    def as_dict(self, backend: str) -> dict[str, Any]:
        data: dict[str, Any] = {"bindings": [b.as_dict() for b in self.bindings], "arp_rate": self.arp_rate}
        if backend == "ios":
            data.update(uplinks=list(self.uplinks), violation=self.violation, source_guard=self.source_guard)
        return data

    def describe(self, backend: str) -> str:
        """Text for ``diff``: settings, then one line per binding."""
        lines = ["arp_rate: %d" % self.arp_rate]
        if backend == "ios":
            lines += [
                "violation: %s" % self.violation,
                "source_guard: %s" % self.source_guard,
                "uplinks: %s" % " ".join(self.uplinks),
            ]
        lines += ["binding: %s" % b.describe() for b in self.bindings]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- normalising values


def normalize_mac(value: str) -> str:
    """``00:50:56:00:65:03`` from colons, dashes, Cisco dots or bare hex (all 12 digits)."""
    text = str(value).strip()
    if not _MAC_RE.match(text):
        raise ValueError("%r is not a MAC address (write 00:50:56:00:65:03)" % (value,))
    try:
        mac = EUI(text, dialect=mac_unix_expanded)
    except (AddrFormatError, ValueError, TypeError) as exc:
        raise ValueError("%r is not a MAC address" % (value,)) from exc
    if mac.version != 48:
        raise ValueError("%r is not a 48-bit MAC address" % (value,))
    return str(mac).lower()


def is_unicast_mac(mac: str) -> bool:
    first = int(mac.split(":")[0], 16)
    return not first & 1 and mac != "00:00:00:00:00:00"


def linux_port(name: str) -> str:
    """A Linux interface name (at most 15 characters, no spaces or slashes)."""
    name = str(name).strip()
    if not _LINUX_IFNAME_RE.match(name):
        raise ValueError("%r is not a Linux interface name (1-15 characters, no '/' or spaces)" % (name,))
    return name


# --------------------------------------------------------------------------- building and checking


def build_config(
    raw: Mapping[str, Any],
    *,
    port_name: Callable[[str], str],
    require_vlan: bool,
    complete: bool = True,
) -> LockConfig:
    """A :class:`LockConfig` from module options, or :class:`BindingError` with every problem found.

    ``complete=False`` (state deleted) needs only the port of each binding.
    """
    errors: list[str] = []
    bindings: list[Binding] = []
    for index, item in enumerate(raw.get("bindings") or []):
        binding = _build_binding(item, index, port_name, require_vlan, complete, errors)
        if binding is not None:
            bindings.append(binding)
    uplinks: list[str] = []
    for uplink in raw.get("uplinks") or []:
        try:
            uplinks.append(port_name(uplink))
        except ValueError as exc:
            errors.append("uplink %s: %s" % (uplink, exc))
    tenants = []
    for tenant in raw.get("tenants") or []:
        if not _TENANT_RE.match(str(tenant)):
            errors.append("tenant %r: use letters, digits, '.', '_' and '-'" % (tenant,))
        tenants.append(str(tenant))
    violation = raw.get("violation") or "restrict"
    if violation not in VIOLATIONS:
        errors.append("violation %r: choose one of %s" % (violation, ", ".join(VIOLATIONS)))
    source_guard = raw.get("source_guard") or "port-security"
    if source_guard not in SOURCE_GUARD_MODES:
        errors.append("source_guard %r: choose one of %s" % (source_guard, ", ".join(SOURCE_GUARD_MODES)))
    arp_rate = raw.get("arp_rate")
    arp_rate = DEFAULT_ARP_RATE if arp_rate is None else arp_rate
    if not isinstance(arp_rate, int) or isinstance(arp_rate, bool) or not 1 <= arp_rate <= MAX_ARP_RATE:
        errors.append("arp_rate %r: give packets per second between 1 and %d" % (arp_rate, MAX_ARP_RATE))
        arp_rate = DEFAULT_ARP_RATE
    errors += _port_conflicts(bindings, uplinks)
    if errors:
        raise BindingError(errors)
    return LockConfig(
        bindings=tuple(bindings),
        uplinks=tuple(uplinks),
        violation=violation,
        arp_rate=arp_rate,
        source_guard=source_guard,
        tenants=tuple(tenants),
    )


def _build_binding(
    item: Mapping[str, Any],
    index: int,
    port_name: Callable[[str], str],
    require_vlan: bool,
    complete: bool,
    errors: list[str],
) -> Binding | None:
    raw_port = item.get("port")
    if not raw_port:
        errors.append("binding #%d (tenant %s): no port given" % (index + 1, item.get("tenant") or "?"))
        return None
    try:
        port = port_name(str(raw_port))
    except ValueError as exc:
        errors.append("port %s: %s" % (raw_port, exc))
        return None
    own: list[str] = []
    tenant = item.get("tenant")
    if tenant is not None and not _TENANT_RE.match(str(tenant)):
        own.append("tenant %r: use letters, digits, '.', '_' and '-'" % (tenant,))
    mac = _field(item.get("mac"), normalize_mac, "mac", own)
    if mac is not None and not is_unicast_mac(mac):
        own.append("mac %s is not a unicast address" % mac)
    ip = _field(item.get("ip"), _ipv4, "ip", own)
    network = _field(item.get("network"), _ipv4_network, "network", own)
    vlan = item.get("vlan")
    if vlan is not None and (isinstance(vlan, bool) or not isinstance(vlan, int) or not 1 <= vlan <= 4094):
        own.append("vlan %r is outside 1-4094" % (vlan,))
        vlan = None
    if complete:
        needed = {"tenant": tenant, "mac": item.get("mac"), "ip": item.get("ip"), "network": item.get("network")}
        if require_vlan:
            needed["vlan"] = item.get("vlan")
        own += ["%s is required" % key for key, value in needed.items() if value in (None, "")]
    if ip is not None and network is not None:
        net = IPNetwork(network)
        if IPAddress(ip) not in net:
            own.append("ip %s is outside the tenant network %s" % (ip, network))
        elif net.prefixlen < 31 and IPAddress(ip) in (net.network, net.broadcast):
            own.append("ip %s is the network or broadcast address of %s" % (ip, network))
    errors += ["port %s: %s" % (port, problem) for problem in own]
    # returned even when refused, so that one MAC or IP on two ports is reported too
    return Binding(
        port=port, mac=mac, ip=ip, tenant=str(tenant) if tenant is not None else None, network=network, vlan=vlan
    )


def _field(value: Any, convert: Callable[[str], str], name: str, errors: list[str]) -> str | None:
    if value in (None, ""):
        return None
    try:
        return convert(str(value))
    except ValueError as exc:
        errors.append("%s: %s" % (name, exc))
        return None


def _ipv4(value: str) -> str:
    try:
        address = IPAddress(value.strip())
    except (AddrFormatError, ValueError) as exc:
        raise ValueError("%r is not an IPv4 address" % value) from exc
    if address.version != 4:
        raise ValueError("%r is not an IPv4 address" % value)
    return str(address)


def _ipv4_network(value: str) -> str:
    try:
        net = IPNetwork(value.strip())
    except (AddrFormatError, ValueError) as exc:
        raise ValueError("%r is not an IPv4 network in CIDR notation" % value) from exc
    if net.version != 4 or "/" not in value:
        raise ValueError("%r is not an IPv4 network in CIDR notation" % value)
    if net.ip != net.network:
        raise ValueError("%s has host bits set (the network is %s)" % (value, net.cidr))
    return str(net.cidr)


def _port_conflicts(bindings: Iterable[Binding], uplinks: Iterable[str]) -> list[str]:
    """Two bindings on one port, one MAC or one IP on two ports, a tenant port that is also an uplink."""
    errors: list[str] = []
    seen_port: dict[str, Binding] = {}
    seen_mac: dict[str, str] = {}
    seen_ip: dict[str, str] = {}
    for binding in bindings:
        if binding.port in seen_port:
            errors.append("port %s is given twice" % binding.port)
            continue
        seen_port[binding.port] = binding
        if binding.mac is not None:
            if binding.mac in seen_mac:
                errors.append("ports %s and %s both claim MAC %s" % (seen_mac[binding.mac], binding.port, binding.mac))
            else:
                seen_mac[binding.mac] = binding.port
        if binding.ip is not None:
            if binding.ip in seen_ip:
                errors.append("ports %s and %s both claim IP %s" % (seen_ip[binding.ip], binding.port, binding.ip))
            else:
                seen_ip[binding.ip] = binding.port
    errors += ["port %s is both a tenant port and a trusted uplink" % p for p in sorted(set(uplinks) & set(seen_port))]
    return errors


def check(config: LockConfig) -> None:
    """Cross-port checks on a whole (desired) lock: raises :class:`BindingError`."""
    errors = _port_conflicts(config.bindings, config.uplinks)
    if errors:
        raise BindingError(errors)


# --------------------------------------------------------------------------- states


def desired(have: LockConfig, want: LockConfig, state: str) -> LockConfig:
    """What the lock should hold after ``state`` is applied to ``have`` with ``want``.

    - merged: the given bindings are added or updated (by port), the given uplinks trusted; nothing removed.
    - replaced: each tenant named in ``want`` holds exactly its given bindings; ports given are taken
      over; other tenants are untouched; given uplinks are trusted.
    - overridden: exactly ``want``; every other binding and trusted uplink is removed.
    - deleted: bindings on the given ports and of the given tenants are removed, given uplinks
      untrusted; with nothing given, every binding is removed (uplinks stay trusted).
    """
    if state == "merged":
        merged = have.by_port()
        merged.update(want.by_port())
        return replace(want, bindings=tuple(merged.values()), uplinks=have.uplinks + want.uplinks)
    if state == "replaced":
        tenants = {b.tenant for b in want.bindings}
        taken = set(want.by_port())
        kept = [b for b in have.bindings if b.port not in taken and b.tenant not in tenants]
        return replace(want, bindings=tuple(kept) + want.bindings, uplinks=have.uplinks + want.uplinks)
    if state == "overridden":
        return want
    if state == "deleted":
        if not (want.bindings or want.tenants or want.uplinks):
            return replace(have, bindings=())
        gone = set(want.by_port())
        tenants = set(want.tenants)
        kept = [b for b in have.bindings if b.port not in gone and b.tenant not in tenants]
        return replace(have, bindings=tuple(kept), uplinks=tuple(u for u in have.uplinks if u not in want.uplinks))
    raise ValueError("unknown state %r" % state)


def changes(before: LockConfig, after: LockConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Bindings added and removed between two locks (a changed binding is both)."""
    old, new = set(before.bindings), set(after.bindings)
    return [b.as_dict() for b in sorted(new - old)], [b.as_dict() for b in sorted(old - new)]

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Deterministic MAC and IP allocation for nested replication targets.

Every tenant owns a fixed *slot* derived from its id alone: ``slot = id - 1``, of
``width`` targets (the site's ``max_targets_per_tenant``).  Target ``index`` (1-based)
of a tenant therefore always gets the same addresses, no matter which other tenants
exist: adding or removing a tenant never moves anybody else's allocation, and two
targets never share one (distinct (id, index) pairs map to distinct offsets).

Each target has two static MACs, one per vNIC: ``management`` (vNIC 0, reserved in
DHCP) and ``tenant`` (vNIC 1, bound by the ARP lock on the tenant's switch port).
"""

from __future__ import annotations

from typing import Any

try:
    import netaddr

    HAS_NETADDR = True
except ImportError:  # pragma: no cover - reported by the callers
    netaddr = None
    HAS_NETADDR = False

# VMware's range for manually assigned MACs.
VMWARE_MANUAL_MACS = "00:50:56:00:00:00-00:50:56:3F:FF:FF"
NIC_KINDS = ("management", "tenant")


class AllocationError(ValueError):
    """An allocation does not fit its pool, or a pool is malformed."""


def parse_range(text: str, what: str) -> tuple[int, int]:
    """``a-b`` or a CIDR (IPv4) or ``aa:bb:..-cc:dd:..`` (MAC) into inclusive integer bounds."""
    text = str(text).strip()
    try:
        if "/" in text:
            net = netaddr.IPNetwork(text)
            first, last = net.first, net.last
            if net.version == 4 and net.prefixlen < 31:
                first, last = first + 1, last - 1  # leave out network and broadcast
            return first, last
        start, sep, end = text.partition("-")
        if not sep:
            raise ValueError("expected START-END or a CIDR")
        if ":" in start:
            lo, hi = int(netaddr.EUI(start.strip())), int(netaddr.EUI(end.strip()))
        else:
            lo, hi = int(netaddr.IPAddress(start.strip())), int(netaddr.IPAddress(end.strip()))
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise AllocationError("%s %r is not a valid range: %s" % (what, text, exc)) from exc
    if lo > hi:
        raise AllocationError("%s %r starts after it ends" % (what, text))
    return lo, hi


def _offset(tenant_id: int, index: int, width: int) -> int:
    if not 1 <= index <= width:
        raise AllocationError(
            "target index %d is outside 1-%d (max_targets_per_tenant) for tenant id %d" % (index, width, tenant_id)
        )
    if tenant_id < 1:
        raise AllocationError("tenant id %d must be 1 or more" % tenant_id)
    return (tenant_id - 1) * width + (index - 1)


def target_mac(
    tenant_id: int, index: int, kind: str = "management", pool: str = VMWARE_MANUAL_MACS, width: int = 16
) -> str:
    """The static MAC of vNIC ``kind`` of target ``index`` of tenant ``tenant_id``, ``00:50:56:..`` form."""
    if kind not in NIC_KINDS:
        raise AllocationError("NIC kind %r is not one of %s" % (kind, ", ".join(NIC_KINDS)))
    lo, hi = parse_range(pool, "mac_pool")
    manual_lo, manual_hi = parse_range(VMWARE_MANUAL_MACS, "VMware manual MAC range")
    if lo < manual_lo or hi > manual_hi:
        raise AllocationError("mac_pool %r is outside VMware's manual range %s" % (pool, VMWARE_MANUAL_MACS))
    value = lo + _offset(tenant_id, index, width) * len(NIC_KINDS) + NIC_KINDS.index(kind)
    if value > hi:
        capacity = (hi - lo + 1) // (len(NIC_KINDS) * width)
        raise AllocationError(
            "MAC pool %s exhausted: tenant id %d target %d needs offset %d, the pool holds tenant ids 1-%d"
            % (pool, tenant_id, index, value - lo, capacity)
        )
    return str(netaddr.EUI(value, dialect=netaddr.mac_unix_expanded)).lower()


def target_ip(tenant_id: int, index: int, pool: str, width: int = 16) -> str:
    """The management IP reserved for target ``index`` of tenant ``tenant_id`` in the provider pool."""
    lo, hi = parse_range(pool, "management pool")
    value = lo + _offset(tenant_id, index, width)
    if value > hi:
        capacity = (hi - lo + 1) // width
        raise AllocationError(
            "management pool %s exhausted: tenant id %d target %d needs address #%d, the pool holds tenant ids 1-%d"
            % (pool, tenant_id, index, value - lo + 1, capacity)
        )
    return str(netaddr.IPAddress(value))


def nth_address(pool: str, index: int, what: str = "pool") -> str:
    """The ``index``-th (1-based) address of ``pool`` (a range or a CIDR without network/broadcast)."""
    lo, hi = parse_range(pool, what)
    if index < 1 or lo + index - 1 > hi:
        raise AllocationError("%s %s has %d addresses; address #%d does not fit" % (what, pool, hi - lo + 1, index))
    return str(netaddr.IPAddress(lo + index - 1))


def range_set(text: str, what: str) -> Any:
    """A netaddr ``IPSet`` of an address range or CIDR, for overlap checks."""
    lo, hi = parse_range(text, what)
    return netaddr.IPSet(netaddr.IPRange(lo, hi))

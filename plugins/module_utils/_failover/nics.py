# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""A VM's NICs across a move: what is recorded of them, how they are matched, and the device changes.

Every NIC rule of a run lives here, so that changing them is one edit:

- ``recorded``: what the journal (and the VM's ``tenantry.origin.networks`` tag) keeps of each NIC
  on the replication target: device key, label, MAC, type, address type and the target network.
- ``pair``: a registration's NICs matched with the recorded ones by label, then device key, then
  order; **never by MAC**: a test copy answered "copied" gets new generated MACs, and vSphere
  regenerates them in other cases too.
- ``to_move``: failover and test: every NIC of the registration onto one portgroup (the
  destination VLAN's, or the isolated one); ``missing``: recorded NICs the registration lacks
  (vSphere registers a ``.vmx`` with its NICs: a NIC is never added).
- ``to_restore``: failback: each NIC back on the network it had on the target; ``unplaceable``:
  the preflight's reasons why a NIC cannot be put back.
- ``device_changes``: the vSphere device specs (edits only).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover.sites import VMRow
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import vim

RECORDED_KEYS = ("key", "label", "mac", "type", "address_type", "network")


def recorded(row: VMRow) -> list[dict[str, Any]]:
    """What the journal keeps of a VM's NICs on its replication target."""
    return [{k: nic.get(k) for k in RECORDED_KEYS} for nic in row.nics]


def tag(nics: Sequence[Mapping[str, Any]]) -> str:
    """The ``tenantry.origin.networks`` value: each NIC's key, label and target network (compact JSON)."""
    return json.dumps(
        [{"key": n.get("key"), "label": n.get("label"), "network": n.get("network")} for n in nics],
        sort_keys=True,
        separators=(",", ":"),
    )


def from_tag(value: str | None) -> list[dict[str, Any]]:
    """The NICs a ``tenantry.origin.networks`` tag records (``[]`` when absent or unreadable)."""
    try:
        data = json.loads(value or "[]")
    except ValueError:
        return []
    return [dict(n) for n in data if isinstance(n, dict)] if isinstance(data, list) else []


def label(nic: Mapping[str, Any]) -> str:
    """How a message names a NIC: its label and MAC."""
    name = str(nic.get("label") or "NIC key %s" % nic.get("key"))
    return "'%s' (%s)" % (name, nic["mac"]) if nic.get("mac") else "'%s'" % name


def pair(
    current: Sequence[dict[str, Any]], recorded_nics: Sequence[Mapping[str, Any]]
) -> list[tuple[dict[str, Any], Mapping[str, Any] | None]]:
    """Each current NIC with its recorded one (``None``: none), matched by label, device key, then order.

    The label ("Network adapter 2") follows the NIC's place in the ``.vmx`` (``ethernet1``) across
    registrations; a device key is only stable within one registration.
    """
    free = list(recorded_nics)
    matched: dict[int, Mapping[str, Any]] = {}
    for field in ("label", "key"):
        for index, nic in enumerate(current):
            if index in matched or nic.get(field) in (None, ""):
                continue
            found = next((r for r in free if r.get(field) == nic.get(field)), None)
            if found is not None:
                matched[index] = found
                free.remove(found)
    for index in range(len(current)):
        if index not in matched and free:
            matched[index] = free.pop(0)
    return [(nic, matched.get(index)) for index, nic in enumerate(current)]


def missing(row: VMRow, recorded_nics: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Recorded NICs the registration lacks."""
    paired = [id(r) for _nic, r in pair(row.nics, recorded_nics) if r is not None]
    return [r for r in recorded_nics if id(r) not in paired]


def to_move(row: VMRow, portgroup: str) -> list[tuple[dict[str, Any], str]]:
    """Failover and test: ``(NIC, portgroup)`` for every NIC of the registration not on ``portgroup``."""
    return [(nic, portgroup) for nic in row.nics if nic.get("network") != portgroup]


def to_restore(row: VMRow, recorded_nics: Sequence[Mapping[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Failback: ``(NIC, network)`` for every NIC not on the network it had on the target."""
    return [
        (nic, str(rec["network"]))
        for nic, rec in pair(row.nics, recorded_nics)
        if rec is not None and rec.get("network") and nic.get("network") != rec["network"]
    ]


def unplaceable(row: VMRow, recorded_nics: Sequence[Mapping[str, Any]], networks: Iterable[str]) -> list[str]:
    """Failback: why each NIC of ``row`` cannot be put back on a network of the target (empty: all can)."""
    known = set(networks)
    problems = []
    for nic, rec in pair(row.nics, recorded_nics):
        if rec is None or not rec.get("network"):
            problems.append("NIC %s has no network recorded on the replication target" % label(nic))
        elif rec["network"] not in known and nic.get("network") != rec["network"]:
            problems.append(
                "NIC %s goes back to network %s, which the replication target does not have"
                % (label(nic), rec["network"])
            )
    return problems


def device_changes(moves: Sequence[tuple[dict[str, Any], str]], networks: Mapping[str, Any]) -> list[Any]:
    """The ``VirtualDeviceSpec`` edits that put each NIC of ``moves`` on its network (objects by name)."""
    specs: list[Any] = []
    for nic, network in moves:
        device = nic["device"]
        device.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
            deviceName=network, network=networks.get(network)
        )
        specs.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=device))
    return specs


def describe(moves: Sequence[tuple[dict[str, Any], str]]) -> list[str]:
    return ["NIC %s: %s -> %s" % (label(nic), nic.get("network") or "none", network) for nic, network in moves]


def moved(row: VMRow, moves: Sequence[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
    """The registration's NICs once ``moves`` are made (the plan's projection)."""
    target = {id(nic): network for nic, network in moves}
    return [dict(nic, network=target[id(nic)]) if id(nic) in target else nic for nic in row.nics]

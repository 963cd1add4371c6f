# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""A VM's NICs across a move: what is recorded of them, what must change, and the device changes.

Every NIC rule of a run lives here, so that changing them is one edit:

- ``recorded``: what the journal keeps of a VM's NICs on its replication target (MAC and type).
- ``to_change``: which NICs must change so that every recorded NIC is on one portgroup
  (failover: the destination VLAN's; test: the isolated one).  Failback leaves NICs as they are.
- ``device_changes``: the vSphere device specs for those changes.
- ``after``: the NICs once changed (the plan's projection).

The simulator workaround: a recorded NIC the registered VM lacks is *added* with its MAC and
``addressType`` manual, because the simulator registers a ``.vmx`` with default hardware and no
NICs; on vSphere the NICs come back with the VM and are only edited.  Issue 12 (the simulator
reading the ``.vmx``; failback putting each NIC back on its network on the target) changes this
module, not the flows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover.sites import VMRow
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import vim

ADD, MOVE = "add", "move"


def recorded(row: VMRow) -> list[dict[str, Any]]:
    """What the journal keeps of a VM's NICs on its replication target."""
    return [{"mac": n["mac"], "type": n["type"]} for n in row.nics]


def _wanted(row: VMRow, nics: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded NICs (with a MAC); with none recorded, the VM's own."""
    return [n for n in nics if n.get("mac")] or [
        {"mac": n["mac"], "type": n["type"], "address_type": n["address_type"]} for n in row.nics
    ]


def to_change(row: VMRow, nics: Sequence[dict[str, Any]], portgroup: str) -> list[tuple[str, dict[str, Any]]]:
    """``(ADD, recorded NIC)`` for a NIC the VM lacks, ``(MOVE, its NIC)`` for one on another network."""
    current = {n["mac"]: n for n in row.nics if n["mac"]}
    changes: list[tuple[str, dict[str, Any]]] = []
    for nic in _wanted(row, nics):
        mine = current.get(nic["mac"])
        if mine is None:
            changes.append((ADD, nic))  # the simulator workaround (see the module docstring)
        elif mine["network"] != portgroup:
            changes.append((MOVE, mine))
    return changes


def device_changes(changes: Sequence[tuple[str, dict[str, Any]]], portgroup: str, network: Any) -> list[Any]:
    """The ``VirtualDeviceSpec`` list that makes ``changes`` (from ``to_change``)."""
    specs: list[Any] = []
    for kind, nic in changes:
        backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=portgroup, network=network)
        if kind == ADD:
            device = nic_type(str(nic.get("type") or "VirtualVmxnet3"))(
                key=-100 - len(specs),
                macAddress=nic["mac"],
                addressType="manual",
                backing=backing,
                connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=True),
            )
            specs.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=device))
        else:
            device = nic["device"]
            device.backing = backing
            specs.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=device))
    return specs


def describe(changes: Sequence[tuple[str, dict[str, Any]]], portgroup: str) -> list[str]:
    return [
        "add NIC %s on %s" % (nic["mac"], portgroup)
        if kind == ADD
        else "NIC %s: %s -> %s" % (nic["mac"], nic["network"] or "none", portgroup)
        for kind, nic in changes
    ]


def after(row: VMRow, nics: Sequence[dict[str, Any]], portgroup: str) -> list[dict[str, Any]]:
    """The VM's NICs once every recorded one is on ``portgroup``."""
    return [dict(n, network=portgroup) for n in (nics or row.nics)]


def nic_type(name: str) -> Any:
    """The pyVmomi device class for a recorded NIC type name (vmxnet3 when unknown)."""
    return getattr(vim.vm.device, name, None) or vim.vm.device.VirtualVmxnet3

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""A tenant's VMs, read live: what its replication targets hold, and what runs in its production folder.

Used by ``tenantry.msp.failover_info`` (``list_vms``) for the tenant portal.  Reads only.  As in a
failover, the production vCenter is read through the tenant's own folder (looked up by inventory
path, never by listing siblings), so no other tenant's object is named; a replication target
belongs to its tenant and is read whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import (
    ConnectionParams,
    VSphereClient,
    VSphereError,
    fault_message,
    vim,
    vmodl,
)

PROPERTIES = (
    "name",
    "parent",
    "config.template",
    "config.files.vmPathName",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "runtime.powerState",
)


def _disk_bytes(devices: Sequence[Any]) -> int:
    total = 0
    for device in devices or []:
        if isinstance(device, vim.vm.device.VirtualDisk):
            total += int(device.capacityInBytes or (device.capacityInKB or 0) * 1024)
    return total


def _vm(row: Mapping[str, Any], where: str, target: str | None) -> dict[str, Any]:
    return {
        "name": str(row.get("name", "")),
        "where": where,
        "target": target,
        "power_state": str(row.get("runtime.powerState") or "poweredOff"),
        "cpus": int(row.get("config.hardware.numCPU") or 0),
        "memory_mb": int(row.get("config.hardware.memoryMB") or 0),
        "disk_bytes": _disk_bytes(row.get("config.hardware.device") or []),
        "vmx": str(row.get("config.files.vmPathName") or ""),
    }


def _inventory_path(*parts: str) -> str:
    return "/".join(p.replace("%", "%25").replace("/", "%2f") for p in parts)


def _read(params: ConnectionParams, work: Any) -> tuple[list[dict[str, Any]], str | None]:
    try:
        with VSphereClient(params) as client:
            return work(client), None
    except VSphereError as exc:
        return [], str(exc)
    except vmodl.MethodFault as exc:
        return [], "vSphere refused the request: %s" % fault_message(exc)


def target_vms(name: str, params: ConnectionParams) -> tuple[list[dict[str, Any]], str | None]:
    """Every VM registered on one replication target (templates aside)."""

    def work(client: VSphereClient) -> list[dict[str, Any]]:
        rows = client.retrieve(vim.VirtualMachine, PROPERTIES)
        return [_vm(r, "target", name) for r in rows if not r.get("config.template")]

    return _read(params, work)


def production_vms(
    params: ConnectionParams, datacenter: str, folder: str, test_folder: str
) -> tuple[list[dict[str, Any]], str | None]:
    """The tenant's VMs in production (its folder) and its test copies (its test-failover folder)."""

    def work(client: VSphereClient) -> list[dict[str, Any]]:
        index = client.content.searchIndex
        root = index.FindByInventoryPath(_inventory_path(datacenter, "vm", *folder.split("/")))
        if root is None:
            return []
        test = index.FindByInventoryPath(_inventory_path(datacenter, "vm", *test_folder.split("/")))
        out = []
        for row in client.retrieve(vim.VirtualMachine, PROPERTIES, root=root):
            parent = row.get("parent")
            moid = parent._moId if parent is not None else None
            if moid == root._moId:
                out.append(_vm(row, "production", None))
            elif test is not None and moid == test._moId:
                out.append(_vm(row, "test copy", None))
        return out

    return _read(params, work)


def list_vms(
    targets: Sequence[Mapping[str, Any]],
    production: Mapping[str, Any] | None,
    folder: str,
    test_folder: str,
) -> dict[str, Any]:
    """``{"vms": [...], "errors": [...]}``: the targets' VMs and the tenant's production ``folder``, by name."""
    vms: list[dict[str, Any]] = []
    errors: list[str] = []
    for target in targets:
        params = ConnectionParams(
            hostname=target["hostname"],
            username=target["username"],
            password=target["password"],
            port=int(target.get("port") or 443),
            validate_certs=bool(target.get("validate_certs", True)),
            ca_file=target.get("ca_file"),
            timeout=int(target.get("timeout") or 60),
        )
        found, error = target_vms(target["name"], params)
        vms.extend(found)
        if error:
            errors.append("%s: %s" % (target["name"], error))
    if production and production.get("hostname"):
        params = ConnectionParams(
            hostname=production["hostname"],
            username=production["username"],
            password=production["password"],
            port=int(production.get("port") or 443),
            validate_certs=bool(production.get("validate_certs", True)),
            ca_file=production.get("ca_file"),
            timeout=int(production.get("timeout") or 60),
        )
        found, error = production_vms(params, str(production.get("datacenter") or ""), folder, test_folder)
        vms.extend(found)
        if error:
            errors.append("production: %s" % error)
    vms.sort(key=lambda v: (v["name"], v["where"]))
    return {"vms": vms, "errors": errors}

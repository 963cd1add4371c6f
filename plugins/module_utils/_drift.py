# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Read-only checks of a provider site for the drift audit (``tenantry.msp.drift_info``).

Each finding is ``{"check", "key", "tenant", "subject", "message"}``; ``key`` names the condition so
that the Director raises one alarm per finding and clears it when a later audit lacks it.

* ``vmx_registered_twice``: one ``.vmx`` registered by two VMs (in production, on the replication
  targets, or across them) while none of the tenant's runs is in progress;
* ``mac_shared``: one MAC address on two vNICs;
* ``mac_outside_manual_range``: a static (``manual``) MAC outside VMware's manual range
  00:50:56:00:00:00-00:50:56:3F:FF:FF;
* ``nfs_still_mounted``: a tenant's NFS datastore mounted on a production host with no run of the
  tenant in progress (a failover unmounts it at its end).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import Journal, JournalError
from ansible_collections.tenantry.msp.plugins.module_utils.argument_spec import targets_argument_spec
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import (
    ConnectionParams,
    VSphereClient,
    retrieve_objects,
    vim,
)

# The options of ``tenantry.msp.drift_info`` (besides the connection options).
ARGUMENT_SPEC: dict[str, Any] = {
    "datacenter": {"type": "str", "required": True},
    "tenants": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {"name": {"type": "str", "required": True}, "datastore": {"type": "str", "required": True}},
    },
    "targets": targets_argument_spec(tenant={"type": "str", "required": True}),
    "journal_dir": {"type": "path"},
}

MANUAL_LOW = 0x005056000000
MANUAL_HIGH = 0x0050563FFFFF
PROPERTIES = ("name", "config.template", "config.files.vmPathName", "config.hardware.device")


def _mac_int(mac: str) -> int | None:
    digits = mac.replace(":", "").replace("-", "").replace(".", "").lower()
    try:
        return int(digits, 16) if len(digits) == 12 else None
    except ValueError:
        return None


def vm_rows(client: VSphereClient, where: str) -> list[dict[str, Any]]:
    """Every VM with its .vmx path and vNICs (one bulk read)."""
    out = []
    for row in client.retrieve(vim.VirtualMachine, PROPERTIES):
        nics = [
            {
                "mac": (d.macAddress or "").lower(),
                "type": d.addressType or "",
                "label": d.deviceInfo.label if d.deviceInfo else "",
            }
            for d in row.get("config.hardware.device") or []
            if isinstance(d, vim.vm.device.VirtualEthernetCard)
        ]
        out.append(
            {
                "name": str(row.get("name", "")),
                "where": where,
                "vmx": str(row.get("config.files.vmPathName") or ""),
                "template": bool(row.get("config.template")),
                "nics": nics,
            }
        )
    return out


def active_tenants(journal_dir: str | None, tenants: Sequence[str]) -> set[str]:
    """The tenants with a failover, test or failback run in progress (their journal says so)."""
    if not journal_dir:
        return set()
    out = set()
    for tenant in tenants:
        try:
            if Journal.active(journal_dir, tenant) is not None:
                out.add(tenant)
        except (JournalError, OSError, ValueError):
            out.add(tenant)  # an unreadable journal: do not accuse the tenant of drift
    return out


def _tenant_of_vmx(vmx: str, datastores: Mapping[str, str]) -> str | None:
    if vmx.startswith("[") and "]" in vmx:
        return datastores.get(vmx[1 : vmx.index("]")])
    return None


def check(
    production: list[dict[str, Any]],
    targets: Mapping[str, list[dict[str, Any]]],
    target_tenants: Mapping[str, str],
    nfs_mounts: Mapping[str, list[str]],
    datastores: Mapping[str, str],
    busy: set[str],
) -> list[dict[str, Any]]:
    """The findings, from what was read (pure: unit-testable without a vCenter).

    ``targets``: VMs per target name; ``target_tenants``: target -> tenant; ``nfs_mounts``: tenant ->
    production hosts mounting its NFS datastore; ``datastores``: NFS datastore name -> tenant.
    """
    findings: list[dict[str, Any]] = []
    every = [dict(vm, site="production") for vm in production] + [
        dict(vm, site=name, tenant=target_tenants.get(name)) for name, vms in targets.items() for vm in vms
    ]
    by_vmx: dict[str, list[dict[str, Any]]] = {}
    for vm in every:
        if vm["vmx"] and not vm["template"]:
            by_vmx.setdefault(vm["vmx"], []).append(vm)
    for vmx, vms in sorted(by_vmx.items()):
        if len(vms) < 2:
            continue
        tenant = next((v.get("tenant") for v in vms if v.get("tenant")), None) or _tenant_of_vmx(vmx, datastores)
        if tenant in busy:
            continue  # a run registers on the new side before it unregisters from the old one
        where = ", ".join("%s on %s" % (v["name"], v["site"]) for v in vms)
        findings.append(
            {
                "check": "vmx_registered_twice",
                "key": "vmx:%s" % vmx,
                "tenant": tenant,
                "subject": vmx,
                "message": "%s is registered twice: %s" % (vmx, where),
            }
        )
    by_mac: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for vm in every:
        for nic in vm["nics"]:
            if nic["mac"]:
                by_mac.setdefault(nic["mac"], []).append((vm, nic))
            value = _mac_int(nic["mac"])
            if nic["type"] == "manual" and value is not None and not MANUAL_LOW <= value <= MANUAL_HIGH:
                findings.append(
                    {
                        "check": "mac_outside_manual_range",
                        "key": "manual-mac:%s" % nic["mac"],
                        "tenant": vm.get("tenant"),
                        "subject": vm["name"],
                        "message": "%s (%s on %s) has the static MAC %s, outside VMware's manual range "
                        "00:50:56:00:00:00-00:50:56:3f:ff:ff" % (vm["name"], nic["label"], vm["site"], nic["mac"]),
                    }
                )
    for mac, users in sorted(by_mac.items()):
        distinct = {(vm["site"], vm["name"], nic["label"]) for vm, nic in users}
        vmxs = {vm["vmx"] for vm, _nic in users}
        tenants = {vm.get("tenant") or _tenant_of_vmx(vm["vmx"], datastores) for vm, _nic in users}
        if len(distinct) < 2 or (len(vmxs) == 1 and tenants & busy):
            continue
        findings.append(
            {
                "check": "mac_shared",
                "key": "mac:%s" % mac,
                "tenant": next((t for t in tenants if t), None),
                "subject": mac,
                "message": "MAC %s is on %d vNICs: %s"
                % (mac, len(distinct), ", ".join("%s %s on %s" % (n, lbl, s) for s, n, lbl in sorted(distinct))),
            }
        )
    for tenant, hosts in sorted(nfs_mounts.items()):
        if hosts and tenant not in busy:
            findings.append(
                {
                    "check": "nfs_still_mounted",
                    "key": "nfs:%s" % tenant,
                    "tenant": tenant,
                    "subject": tenant,
                    "message": "the NFS datastore of tenant %s is mounted on %s with no run of the tenant in progress"
                    % (tenant, ", ".join(sorted(hosts))),
                }
            )
    return findings


def nfs_mounts(client: VSphereClient, datacenter: str, tenants: Sequence[Mapping[str, str]]) -> dict[str, list[str]]:
    """Per tenant, the production hosts that mount its NFS datastore (looked up by name)."""
    index = client.content.searchIndex
    dc = index.FindByInventoryPath(datacenter)
    if dc is None:
        raise LookupError("datacenter %s not found in the production vCenter" % datacenter)
    folder = retrieve_objects(client, [dc], ["datastoreFolder"])[0]["datastoreFolder"]
    out: dict[str, list[str]] = {}
    for tenant in tenants:
        ds = index.FindChild(folder, tenant["datastore"])
        if ds is None:
            out[tenant["name"]] = []
            continue
        mounts = retrieve_objects(client, [ds], ["host"])[0].get("host") or []
        hosts = [m.key for m in mounts if m.key is not None]
        names = retrieve_objects(client, hosts, ["name"]) if hosts else []
        out[tenant["name"]] = [str(r.get("name")) for r in names]
    return out


def audit(
    production: ConnectionParams,
    datacenter: str,
    tenants: Sequence[Mapping[str, str]],
    targets: Sequence[Mapping[str, Any]],
    journal_dir: str | None,
) -> dict[str, Any]:
    """Read production and every given target; the findings and what could not be read."""
    errors: list[str] = []
    with VSphereClient(production) as client:
        prod_vms = vm_rows(client, "production")
        mounts = nfs_mounts(client, datacenter, tenants)
    target_vms: dict[str, list[dict[str, Any]]] = {}
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
        try:
            with VSphereClient(params) as client:
                target_vms[target["name"]] = vm_rows(client, target["name"])
        except Exception as exc:  # one unreachable target must not hide the others' drift
            errors.append("%s: %s" % (target["name"], exc))
    names = [t["name"] for t in tenants]
    busy = active_tenants(journal_dir, names)
    findings = check(
        prod_vms,
        target_vms,
        {t["name"]: str(t.get("tenant") or "") for t in targets},
        mounts,
        {t["datastore"]: t["name"] for t in tenants},
        busy,
    )
    return {
        "findings": findings,
        "errors": errors,
        "busy_tenants": sorted(busy),
        "read": {"production_vms": len(prod_vms), "targets": len(target_vms)},
    }

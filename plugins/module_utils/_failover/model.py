# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The state of one run as plain data: its VMs, its choices and the tenant's production side.

Every part of a run reads this model; the flows' rules decide from it, their effects change it
(on a projection for the plan and check mode, on the live model after a step succeeded), and
the actions bring it back in line with what vCenter says after they acted.  Nothing here does
I/O: the live objects stay with the sites (``sites.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover import nics as nic_rules
from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import Tenant
from ansible_collections.tenantry.msp.plugins.module_utils._failover.sites import (
    COPIED_ANSWER,
    MOVED_ANSWER,
    TAG_ORIGIN_NETWORKS,
    TAG_ORIGIN_TARGET,
    TAG_ORIGIN_VMX,
    TAG_TENANT,
    TAG_TEST_RUN,
    VMRow,
)
from ansible_collections.tenantry.msp.plugins.module_utils._tenant_role import PRODUCTION_ROLE_NAME

NOT_MOUNTED = "nfs"  # stands for the NFS datastore's moid while production does not have it (plans)


@dataclass
class Request:
    """What was asked: the module's options, or any other caller's."""

    mode: str = "failover"
    vms: list[str] = field(default_factory=list)
    destination_vlan: int | None = None
    production_host: str | None = None
    datastores: list[str] = field(default_factory=list)
    datacenter: str = "provider"
    cluster: str = "production"
    production_role: str = PRODUCTION_ROLE_NAME
    allow_admin_role: bool = False
    check_account: bool = True
    max_parallel: int = 16
    vcenter_max_parallel: int = 32  # shared by every run on this machine toward the same vCenter (0: none)
    retries: int = 1
    retry_delay: float = 0.5
    journal_dir: str = "~/.local/state/tenantry/failover/journal"
    report_dir: str = "~/.local/state/tenantry/failover/reports"
    attempt_id: str | None = None


# The module's options that are fields of ``Request`` (the others are the connection and the tenant).
REQUEST_OPTIONS = (
    "mode",
    "vms",
    "destination_vlan",
    "production_host",
    "datastores",
    "datacenter",
    "cluster",
    "production_role",
    "allow_admin_role",
    "check_account",
    "max_parallel",
    "vcenter_max_parallel",
    "retries",
    "journal_dir",
    "report_dir",
    "attempt_id",
)


@dataclass
class VM:
    """One VM of the run: what was recorded of it, and where it is registered now."""

    name: str
    origin: str | None = None  # the replication target it came from / goes back to
    vmx: str = ""  # its .vmx on the tenant NFS datastore
    memory_mb: int = 0
    disk_bytes: int = 0
    nics: list[dict[str, Any]] = field(default_factory=list)  # recorded on the target (nics.RECORDED_KEYS)
    target: VMRow | None = None  # its registration on its origin target
    prod: VMRow | None = None  # its production registration (test and cleanup: its copy)
    permission: bool | None = None  # the account holds its role on it (None: unknown)
    copied: bool = False  # test: its files were copied in this attempt
    vmx_back: str | None = None  # failback: its .vmx on the NFS datastore once relocated there
    failed: str | None = None  # the step and error that made it drop out

    def record(self) -> dict[str, Any]:
        """What the journal keeps of this VM (a resumed run starts from it)."""
        facts: dict[str, Any] = {
            "origin": self.origin,
            "vmx": self.vmx,
            "memory_mb": self.memory_mb,
            "disk_bytes": self.disk_bytes,
            "nics": [{k: n.get(k) for k in nic_rules.RECORDED_KEYS} for n in self.nics],
        }
        if self.prod is not None and self.prod.moid:
            facts["production_moid"] = self.prod.moid
        if self.vmx_back:
            facts["vmx_back"] = self.vmx_back
        return facts


@dataclass
class Choices:
    """What the preflight chose; a resumed run keeps the journaled choices."""

    destination_vlan: int | None = None
    portgroup: str | None = None  # the destination portgroup (test: the isolated one)
    network: Any = None  # the portgroup's managed object (never journaled)
    production_host: str | None = None
    host_moid: str | None = None
    datastores: dict[str, str] | None = None  # failover: VM -> production datastore
    test_datastore: str | None = None  # test and cleanup: where the copies live
    role_name: str | None = None  # the production role
    role_id: int | None = None  # its id, once it exists (never journaled)
    role_privileges: list[str] | None = None  # the collection's role: its privileges (None: another role)
    principal: dict[str, Any] | None = None  # the account as the directory knows it (never journaled)

    def plain(self) -> dict[str, Any]:
        """The choices as returned and journaled (names only, no object references)."""
        values = {
            "destination_vlan": self.destination_vlan,
            "portgroup": self.portgroup,
            "production_host": self.production_host,
            "datastores": self.datastores,
            "test_datastore": self.test_datastore,
        }
        return {k: v for k, v in values.items() if v is not None}


@dataclass
class Production:
    """The tenant's production side as the run sees it (refreshed by the actions after they act)."""

    hosts: dict[str, str] = field(default_factory=dict)  # the cluster's hosts: moid -> name
    nfs: str | None = None  # the tenant NFS datastore's moid, while production has it
    mounted_on: set[str] = field(default_factory=set)  # hosts mounting it
    isolated_on: set[str] = field(default_factory=set)  # hosts with the tenant's isolated portgroup
    test_folder: bool = False  # the tenant's test folder exists
    test_dir: bool = False  # the copies' directory exists on the test datastore
    datastores: dict[str, str] = field(default_factory=dict)  # usable production datastores: name -> moid
    vms: dict[str, VMRow] = field(default_factory=dict)  # the tenant's production VMs, as last read
    copies: dict[str, VMRow] = field(default_factory=dict)  # its test copies, as last read

    @property
    def nfs_key(self) -> str:
        """The NFS datastore's moid, or a stand-in while it is not in production (so plans can say it)."""
        return self.nfs or NOT_MOUNTED

    def host_name(self, moid: str | None) -> str:
        return self.hosts.get(moid or "", moid or "")


@dataclass
class Run:
    """One run: the tenant, the flow it runs, its VMs (in order), the choices and production."""

    tenant: Tenant
    mode: str
    flow: str  # the steps that run: rollback runs failback's (of a failover) or cleanup's (of a test)
    vms: dict[str, VM]
    order: list[str]
    choices: Choices = field(default_factory=Choices)
    production: Production = field(default_factory=Production)
    run_id: str = "planned"  # test copies carry the run that made them

    @property
    def testing(self) -> bool:
        """Test and cleanup act on copies in the tenant's test folder, not on the VMs themselves."""
        return self.flow in ("test", "cleanup")

    def live(self) -> list[VM]:
        """The VMs still in the run (not dropped out after a failed step), in order."""
        return [self.vms[n] for n in self.order if not self.vms[n].failed]

    def projection(self) -> Run:
        """A copy the plan may change freely (effects assign new values, never mutate shared ones)."""
        vms = {
            name: replace(
                vm,
                prod=replace(vm.prod) if vm.prod is not None else None,
                target=replace(vm.target) if vm.target is not None else None,
            )
            for name, vm in self.vms.items()
        }
        production = replace(
            self.production, mounted_on=set(self.production.mounted_on), isolated_on=set(self.production.isolated_on)
        )
        return replace(self, vms=vms, choices=replace(self.choices), production=production)

    # ------------------------------------------------------------------ tags
    def tags(self, vm: VM) -> dict[str, str]:
        """The ``tenantry.*`` extraConfig keys that say whose VM this is and where it came from."""
        tags = {TAG_TENANT: self.tenant.name, TAG_ORIGIN_VMX: vm.vmx}
        if self.flow == "test":
            tags[TAG_TEST_RUN] = self.run_id
        else:
            tags[TAG_ORIGIN_TARGET] = vm.origin or ""
            if any(n.get("network") for n in vm.nics):
                tags[TAG_ORIGIN_NETWORKS] = nic_rules.tag(vm.nics)
        return tags

    def tags_to_write(self, vm: VM) -> dict[str, str]:
        """The tags its registration lacks or has wrong (a copy keeps the run that made it)."""
        if vm.prod is None:
            return {}
        current = vm.prod.extra
        return {
            key: value
            for key, value in self.tags(vm).items()
            if current.get(key) != value and not (key == TAG_TEST_RUN and current.get(key))
        }

    @property
    def answer(self) -> tuple[str, str]:
        """How a power-on answers vSphere's "moved or copied?": a test copy was copied, else moved."""
        return COPIED_ANSWER if self.flow == "test" else MOVED_ANSWER

    # ------------------------------------------------------------- placement
    def placement(self) -> dict[str, dict[str, Any]]:
        """Where each VM is, as the diff shows it (before and after)."""
        names = {moid: name for name, moid in self.production.datastores.items()}
        if self.production.nfs:
            names[self.production.nfs] = self.tenant.datastore
        names[NOT_MOUNTED] = self.tenant.datastore
        folder = self.tenant.test_folder if self.testing else self.tenant.folder
        out: dict[str, dict[str, Any]] = {}
        for name in self.order:
            vm = self.vms[name]
            prod = vm.prod
            out[name] = {
                "replication_target": vm.origin if vm.target is not None else None,
                "production": None
                if prod is None
                else {
                    "folder": folder,
                    "host": self.production.host_name(prod.host) if prod.host else self.choices.production_host,
                    "power": prod.power,
                    "datastores": sorted(names.get(d, d) for d in prod.datastores),
                    "networks": sorted({n.get("network", "") for n in prod.nics}),
                },
            }
        return out


def projected_row(vm: VM, vmx: str, host: str | None, datastores: list[str]) -> VMRow:
    """A registration the plan expects: powered off, nothing set yet, its NICs as recorded (from its .vmx)."""
    nics = [dict(n) for n in vm.nics]
    return VMRow(vm.name, None, "", vmx, "poweredOff", vm.memory_mb, vm.disk_bytes, nics, {}, host, datastores, None)

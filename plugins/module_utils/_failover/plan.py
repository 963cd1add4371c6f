# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The choices a run makes, decided from what was read: tenant fields, input checks, choices.

No I/O here: every function takes plain data and returns plain data, so the rules
(which VLAN, which VMs, which host, which datastore, which boot wave) are unit tested
without a vCenter.  The steps of each flow are in ``flows.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MODES = ("failover", "test", "failback", "rollback", "cleanup")


class BadInput(ValueError):
    """The request cannot be planned; every message names what was wrong."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True)
class Wave:
    vms: tuple[str, ...]
    delay: int  # seconds to wait after this wave is powered on, before the next


@dataclass(frozen=True)
class Tenant:
    """The fields of a tenant spec (``tenantry_tenant_spec``) a failover uses."""

    name: str
    id: int
    datastore: str
    nfs_server: str
    nfs_path: str
    account: str
    folder: str
    resource_pool: str
    destinations: dict[int, str] = field(default_factory=dict)
    boot_order: tuple[tuple[tuple[str, ...], int], ...] = ()

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Tenant:
        """Read a normalised tenant spec (as the tenants inventory plugin yields it)."""
        errors: list[str] = []

        def get(path: str) -> Any:
            node: Any = spec
            for part in path.split("."):
                if not isinstance(node, Mapping) or node.get(part) in (None, ""):
                    errors.append("tenant spec has no %s" % path)
                    return None
                node = node[part]
            return node

        name, tenant_id = get("name"), get("id")
        nfs = (get("nfs.datastore"), get("nfs.server"), get("nfs.path"))
        production = (get("production.account"), get("production.folder"), get("production.resource_pool"))
        failover = spec.get("failover") or {}
        destinations: dict[int, str] = {}
        named = (spec.get("portgroups") or {}).get("destinations") or {}
        for vlan in failover.get("destination_vlans") or []:
            destinations[int(vlan)] = str(named.get(str(vlan)) or "tenant-%s-vlan%d" % (name, int(vlan)))
        boot = tuple(
            (tuple(str(v) for v in wave.get("vms") or []), int(wave.get("delay") or 0))
            for wave in failover.get("boot_order") or []
        )
        if errors:
            raise BadInput(errors)
        return cls(
            name=str(name),
            id=int(tenant_id),
            datastore=str(nfs[0]),
            nfs_server=str(nfs[1]),
            nfs_path=str(nfs[2]),
            account=str(production[0]),
            folder=str(production[1]).strip("/"),
            resource_pool=str(production[2]),
            destinations=destinations,
            boot_order=boot,
        )

    # Names of the tenant's own production objects (one place for them).
    @property
    def test_folder(self) -> str:
        return self.folder + "/test-failover"

    @property
    def isolated_portgroup(self) -> str:
        return "tenant-%s-isolated" % self.name

    @property
    def isolated_vswitch(self) -> str:
        return "tenantry-iso-%d" % self.id  # vSwitch names are limited to 32 characters

    @property
    def test_directory(self) -> str:
        return "tenantry-test-%s" % self.name


def destination(tenant: Tenant, vlan: int | None) -> tuple[int, str]:
    """The destination VLAN and its portgroup; refuses a VLAN the tenant file does not allow."""
    allowed = sorted(tenant.destinations)
    if not allowed:
        raise BadInput(
            ["tenant %s allows no destination VLAN: set failover.destination_vlans in its tenant file" % tenant.name]
        )
    if not vlan:
        if len(allowed) == 1:
            return allowed[0], tenant.destinations[allowed[0]]
        raise BadInput(
            [
                "tenant %s allows several destination VLANs (%s): choose one with destination_vlan"
                % (tenant.name, ", ".join(map(str, allowed)))
            ]
        )
    if vlan not in tenant.destinations:
        raise BadInput(
            [
                "destination VLAN %d is not allowed for tenant %s; allowed: %s"
                % (vlan, tenant.name, ", ".join(map(str, allowed)))
            ]
        )
    return vlan, tenant.destinations[vlan]


def select_vms(requested: Sequence[str], available: Iterable[str], where: str) -> list[str]:
    """The VMs a run acts on: ``requested`` (all of ``available`` when empty), refusing unknown names."""
    known = sorted(set(available))
    if not requested:
        if not known:
            raise BadInput(["no VMs found on %s" % where])
        return known
    missing = [name for name in requested if name not in known]
    if missing:
        raise BadInput(
            [
                "VM%s %s not on %s (found there: %s)"
                % ("s" if len(missing) > 1 else "", ", ".join(missing), where, ", ".join(known) or "none")
            ]
        )
    unique: list[str] = []
    for name in requested:
        if name not in unique:
            unique.append(name)
    return unique


def boot_waves(tenant: Tenant, vms: Sequence[str]) -> list[Wave]:
    """Power-on waves: the tenant's boot order (only the selected VMs), then every other VM at once."""
    selected = list(vms)
    placed: set[str] = set()
    waves: list[Wave] = []
    for names, delay in tenant.boot_order:
        wave = tuple(n for n in names if n in selected and n not in placed)
        placed.update(wave)
        if wave:
            waves.append(Wave(wave, delay))
    rest = tuple(n for n in selected if n not in placed)
    if rest:
        waves.append(Wave(rest, 0))
    return waves


@dataclass(frozen=True)
class HostInfo:
    name: str
    connected: bool
    maintenance: bool
    memory_free_mb: int
    has_portgroup: bool


def choose_host(hosts: Sequence[HostInfo], need_mb: int, requested: str | None, portgroup: str) -> str:
    """The production host: ``requested`` if usable, else the usable host with most free memory."""

    def problems(h: HostInfo) -> list[str]:
        found = []
        if not h.connected:
            found.append("not connected")
        if h.maintenance:
            found.append("in maintenance mode")
        if not h.has_portgroup:
            found.append("has no portgroup %s" % portgroup)
        if h.memory_free_mb < need_mb:
            found.append("has %d MB free memory, the VMs need %d MB" % (h.memory_free_mb, need_mb))
        return found

    if requested:
        match = [h for h in hosts if h.name == requested]
        if not match:
            raise BadInput(
                [
                    "production host %s is not in the cluster (hosts: %s)"
                    % (requested, ", ".join(sorted(h.name for h in hosts)) or "none")
                ]
            )
        issues = problems(match[0])
        if issues:
            raise BadInput(["production host %s %s" % (requested, "; ".join(issues))])
        return requested
    usable = [h for h in hosts if not problems(h)]
    if not usable:
        detail = "; ".join("%s %s" % (h.name, ", ".join(problems(h))) for h in sorted(hosts, key=lambda h: h.name))
        raise BadInput(["no production host can take the VMs: %s" % (detail or "the cluster has no hosts")])
    return sorted(usable, key=lambda h: (-h.memory_free_mb, h.name))[0].name


def assign_datastores(sizes: Mapping[str, int], free: Mapping[str, int]) -> dict[str, str]:
    """Place each VM (``sizes`` in bytes) on the datastore with most room left, biggest VMs first."""
    if not free:
        raise BadInput(["no production datastore to relocate the VMs to"])
    room = dict(free)
    placement: dict[str, str] = {}
    for vm in sorted(sizes, key=lambda v: (-sizes[v], v)):
        best = sorted(room, key=lambda d: (-room[d], d))[0]
        if room[best] < sizes[vm]:
            total = sum(sizes.values())
            raise BadInput(
                [
                    "production datastores %s have %s free in all, the VMs need %s (VM %s needs %s, "
                    "at most %s is left on one datastore)"
                    % (
                        ", ".join(sorted(free)),
                        human_bytes(sum(free.values())),
                        human_bytes(total),
                        vm,
                        human_bytes(sizes[vm]),
                        human_bytes(room[best]),
                    )
                ]
            )
        room[best] -= sizes[vm]
        placement[vm] = best
    return placement


def human_bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (size, unit)
        size /= 1024
    return "%d B" % value  # pragma: no cover - the loop always returns


@dataclass
class Check:
    """One preflight check: what was checked, whether it passed, and the detail."""

    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}

    def line(self) -> str:
        return "%s %s: %s" % ("ok  " if self.ok else "FAIL", self.name, self.detail)


def plan_lines(mode: str, tenant: str, plan: Sequence[Mapping[str, Any]]) -> list[str]:
    """The plan as text: one line per step with the VMs it acts on and those it skips."""
    lines = ["%s plan for tenant %s:" % (mode, tenant)]
    for index, step in enumerate(plan, 1):
        act, skip = step.get("act") or [], step.get("skip") or {}
        if step.get("per_vm", True):
            what = "%d VM%s" % (len(act), "" if len(act) == 1 else "s")
            if act:
                what += ": " + _short_list(act)
        else:
            what = step.get("detail") or ("yes" if act else "nothing to do")
        line = "  %d. %-11s %s" % (index, step["step"], what)
        if skip:
            line += "  (skip %d: %s)" % (len(skip), _short_list(sorted(skip)))
        lines.append(line)
    return lines


def _short_list(names: Sequence[str], limit: int = 6) -> str:
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return "%s ... %s (%d)" % (", ".join(names[: limit - 1]), names[-1], len(names))

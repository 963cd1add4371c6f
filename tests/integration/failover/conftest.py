"""Fixtures for the failover tests: one tenant = its own nested target (ESX simulator) + the shared vCenter.

Each tenant gets a unique name, id and VLANs, so tests share the session's provider vCenter (and its
three production hosts) without seeing each other's objects, as tenants do on a real site.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import failoverlab as fl
import pytest
from failoverlab import LabTenant

from tenantry.lab import Endpoint

_ids = itertools.count(1)


@pytest.fixture
def lab_tenant(
    vcenter: Endpoint,
    esx_factory: Callable[..., Endpoint],
    vsphere_connect: Callable[[Endpoint], Any],
    tmp_path: Path,
) -> Callable[..., LabTenant]:
    """``lab_tenant(prefix, vms=3, **tenant_fields)`` -> a tenant with ``vms`` replicas on its own target."""
    vc_si = vsphere_connect(vcenter)

    def make(prefix: str = "t", vms: int | Sequence[str] = 3, build: bool = True, **fields: Any) -> LabTenant:
        index = next(_ids)
        name = f"{prefix}{index}"
        tenant_id = 600 + index
        vlan = 1000 + index
        fields.setdefault("destination_vlans", [2000 + index])
        if "boot_order" in fields:  # VM names may say {name} for the tenant's name
            fields["boot_order"] = [
                dict(wave, vms=[v.format(name=name) for v in wave["vms"]]) for wave in fields["boot_order"]
            ]
        data = fl.tenant_data(name, tenant_id, vlan, **fields)
        spec = fl.tenant_spec(name, tenant_id, vlan, **fields)
        names = [f"{name}-vm{i:02d}" for i in range(1, vms + 1)] if isinstance(vms, int) else list(vms)
        endpoint = esx_factory(name)
        target_si = vsphere_connect(endpoint)
        if build:
            fl.build_target(target_si, spec, names)
        fl.add_portgroups(vc_si, spec)
        folder = tmp_path / name
        folder.mkdir()
        return LabTenant(name, data, spec, endpoint, target_si, vcenter, vc_si, names, folder)

    return make

"""Stand-in for replication: put a tenant's VMs on its NFS datastore on a nested target.

In production the tenant's backup/replication product writes replicas there; the lab creates
small powered-off VMs instead, so that a (test) failover has something to move.  Idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tenantry.lab.errors import LabError
from tenantry.lab.simulator import Endpoint


def seed(endpoint: Endpoint, datastore: str, vms: Sequence[str], network: str = "tenant") -> list[str]:
    """Create the missing ``vms`` on ``datastore`` of the ESX instance at ``endpoint``; returns those created."""
    from pyVim.connect import Disconnect, SmartConnect
    from pyVim.task import WaitForTasks
    from pyVmomi import vim

    si = SmartConnect(
        host=endpoint.hostname,
        port=endpoint.port,
        user=endpoint.username,
        pwd=endpoint.password,
        sslContext=endpoint.ssl_context(),
    )
    try:
        dc = si.RetrieveContent().rootFolder.childEntity[0]
        compute = dc.hostFolder.childEntity[0]
        host = compute.host[0]
        if datastore not in [d.name for d in host.datastore]:
            raise LabError(f"datastore {datastore} is not mounted on {endpoint.url}: onboard the tenant first")
        existing = {vm.name for vm in dc.vmFolder.childEntity if isinstance(vm, vim.VirtualMachine)}
        portgroups = {n.name for n in host.network}
        backing = network if network in portgroups else "VM Network"
        missing = [name for name in vms if name not in existing]
        tasks: list[Any] = []
        for name in missing:
            nic = vim.vm.device.VirtualDeviceSpec(
                operation="add",
                device=vim.vm.device.VirtualVmxnet3(
                    key=-1,
                    backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=backing),
                    addressType="generated",
                ),
            )
            config = vim.vm.ConfigSpec(
                name=name,
                memoryMB=64,
                numCPUs=1,
                guestId="otherGuest64",
                files=vim.vm.FileInfo(vmPathName=f"[{datastore}]"),
                deviceChange=[nic],
            )
            tasks.append(dc.vmFolder.CreateVM_Task(config, compute.resourcePool, host))
        if tasks:
            WaitForTasks(tasks, si=si)
        return missing
    finally:
        Disconnect(si)


def production_portgroups(
    endpoint: Endpoint, portgroups: Sequence[tuple[str, int]], cluster: str = "production"
) -> list[str]:
    """Stand-in for the tenant's network setup: each (name, VLAN) portgroup on vSwitch0 of every host of
    ``cluster`` in the provider vCenter (a failover's destination).  Idempotent; returns what it added."""
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim

    si = SmartConnect(
        host=endpoint.hostname,
        port=endpoint.port,
        user=endpoint.username,
        pwd=endpoint.password,
        sslContext=endpoint.ssl_context(),
    )
    try:
        content = si.RetrieveContent()
        found = [
            c
            for dc in content.rootFolder.childEntity
            if isinstance(dc, vim.Datacenter)
            for c in dc.hostFolder.childEntity
            if isinstance(c, vim.ClusterComputeResource) and c.name == cluster
        ]
        if not found:
            raise LabError(f"no cluster {cluster} in {endpoint.url}")
        added = []
        host: Any
        for host in found[0].host:
            existing = {pg.spec.name for pg in host.config.network.portgroup}
            for name, vlan in portgroups:
                if name not in existing:
                    host.configManager.networkSystem.AddPortGroup(
                        portgrp=vim.host.PortGroup.Specification(
                            name=name, vlanId=vlan, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy()
                        )
                    )
                    added.append(f"{name}@{host.name}")
        return added
    finally:
        Disconnect(si)

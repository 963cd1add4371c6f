# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The tenant's roles: on its nested replication target, and on production after a failover.

THE privilege lists, each privilege with the reason it is there.

``nested_host`` creates the role from it (``tenant_access.privileges`` defaults to it), the
``nested_esxi_target`` role defers to the module, and the tests import it.  docs/nested-targets.md
lists the same privileges with the same reasons and cites where they come from (Veeam Backup &
Replication's documented vSphere permissions for replication); a unit test keeps the two in step.

Each privilege is needed by a step of a replication job on the target host, and the integration
test tests/integration/plugins/modules/test_tenant_role.py performs every step logged in as the
tenant.  No ``Host.*`` privilege: the tenant never configures the host.
"""

from __future__ import annotations

#: (privilege id, the replication step that needs it on the target host)
TENANT_ROLE: tuple[tuple[str, str], ...] = (
    ("Datastore.AllocateSpace", "create the replica VM and take its snapshots on the tenant datastore"),
    ("Datastore.Browse", "list the replica's folder and download its files"),
    ("Datastore.FileManagement", "upload the replica's disk files (datastore HTTP PUT, make directory)"),
    ("Datastore.DeleteFile", "delete replica files that are no longer needed"),
    ("Resource.AssignVMToPool", "put a created or re-registered replica in the host's resource pool"),
    ("VirtualMachine.Inventory.Create", "create the replica VM"),
    ("VirtualMachine.Inventory.Register", "register the replica again from its .vmx (after a rescan or failback)"),
    ("VirtualMachine.Inventory.Unregister", "unregister the replica (the failover takes it to production)"),
    ("VirtualMachine.Inventory.Delete", "delete a replica that is no longer protected"),
    ("VirtualMachine.Config.AddExistingDisk", "attach the uploaded disk files to the replica"),
    ("VirtualMachine.State.CreateSnapshot", "keep a restore point as a snapshot"),
    ("VirtualMachine.State.RevertToSnapshot", "go back to a restore point"),
    ("VirtualMachine.State.RemoveSnapshot", "remove a restore point past retention"),
    ("VirtualMachine.Interact.PowerOn", "power a replica on (a failover to the replica on its target)"),
    ("VirtualMachine.Interact.PowerOff", "power a replica off again"),
)

#: The privilege ids alone, sorted: the default of ``nested_host``'s ``tenant_access.privileges``.
TENANT_PRIVILEGES: list[str] = sorted(entry[0] for entry in TENANT_ROLE)


#: The collection-managed role the tenant's production account gets on each of its VMs after a
#: failover (and on its test copies): operate and console its own VMs, and their snapshots.
#: Nothing on hosts, networks, datastores, folders or other tenants: the permission is set on the
#: tenant's VMs only, and no privilege here changes a VM's hardware, network or placement.
#: ``tenantry.msp.failover`` creates the role with exactly these privileges (and puts them back when
#: they were changed); docs/failover.md lists the same privileges with the same reasons (a unit test
#: keeps them in step) and tests/integration/failover/test_production_role.py proves them logged in as
#: the tenant's production account on the strict simulator.
PRODUCTION_ROLE_NAME = "tenantry-tenant-production"

#: (privilege id, what the tenant does with it on its production VMs)
PRODUCTION_ROLE: tuple[tuple[str, str], ...] = (
    ("VirtualMachine.Interact.PowerOn", "power its VMs on"),
    ("VirtualMachine.Interact.PowerOff", "power them off"),
    ("VirtualMachine.Interact.Reset", "reset a VM that hangs"),
    ("VirtualMachine.Interact.AnswerQuestion", "answer a question a VM asks when it powers on"),
    ("VirtualMachine.Interact.ConsoleInteract", "open a VM's console (console ticket)"),
    ("VirtualMachine.State.CreateSnapshot", "take a snapshot before a change"),
    ("VirtualMachine.State.RevertToSnapshot", "go back to a snapshot"),
    ("VirtualMachine.State.RemoveSnapshot", "remove a snapshot"),
    ("VirtualMachine.State.RenameSnapshot", "rename a snapshot"),
)

#: The privilege ids alone, sorted (vSphere adds ``System.Anonymous``, ``System.View`` and
#: ``System.Read`` to every role).
PRODUCTION_PRIVILEGES: list[str] = sorted(entry[0] for entry in PRODUCTION_ROLE)

#: Privileges vSphere puts in every role; a role is compared without them.
SYSTEM_PRIVILEGES = frozenset({"System.Anonymous", "System.View", "System.Read"})

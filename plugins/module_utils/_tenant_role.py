# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The tenant's restricted role on its nested replication target: THE privilege list.

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
TENANT_PRIVILEGES: list[str] = sorted(privilege for privilege, _ in TENANT_ROLE)

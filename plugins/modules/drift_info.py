#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: drift_info
short_description: Read-only drift checks of a provider site (for playbooks/audit.yml)
version_added: 0.2.0
description:
  - Reads the provider vCenter (one bulk read of its VMs) and, when given, each tenant's replication targets, and
    reports what should not be there.
  - V(vmx_registered_twice) - one C(.vmx) registered by two VMs (in production, on the targets, or across them)
    while no run of the tenant is in progress (a failover registers on the new side before it unregisters from
    the old one, so a running tenant is not accused).
  - V(mac_shared) - one MAC address on two vNICs. V(mac_outside_manual_range) - a static MAC outside VMware's
    manual range C(00:50:56:00:00:00)-C(00:50:56:3f:ff:ff).
  - V(nfs_still_mounted) - a tenant's NFS datastore mounted on a production host with no run of the tenant in
    progress (the failover journals under O(journal_dir) say which runs are).
  - Reads only; changes nothing.
author:
  - tenantry maintainers (@tenantry)
options:
  datacenter:
    description: The production datacenter (its datastore folder holds the tenants' NFS datastores).
    type: str
    required: true
  tenants:
    description: The tenants to check, each with its C(name) and the C(datastore) of its NFS export.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The tenant's name.
        type: str
        required: true
      datastore:
        description: The name of the tenant's NFS datastore.
        type: str
        required: true
  targets:
    description: Replication targets to read too (their own APIs); a target that cannot be read is reported, not fatal.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The target's inventory name.
        type: str
        required: true
      tenant:
        description: The target's tenant.
        type: str
        required: true
      hostname:
        description: Host name or IP address of the target's API.
        type: str
        required: true
      port:
        description: HTTPS port of the target's API.
        type: int
        default: 443
      username:
        description: User to log in as.
        type: str
        required: true
      password:
        description: Password of O(targets[].username). Never logged.
        type: str
        required: true
      validate_certs:
        description: Verify the target's TLS certificate.
        type: bool
        default: true
      ca_file:
        description: PEM file of the CA that signed the target's certificate.
        type: path
      timeout:
        description: Seconds to wait for the connection.
        type: int
        default: 60
  journal_dir:
    description: Where M(tenantry.msp.failover) keeps its run journals (which tenants have a run in progress).
    type: path
extends_documentation_fragment:
  - tenantry.msp.vsphere
  - tenantry.msp.attributes
  - tenantry.msp.attributes.info_module
"""

EXAMPLES = r"""
- name: Drift of the provider site
  tenantry.msp.drift_info:
    datacenter: provider
    tenants:
      - {name: acme, datastore: nfs-acme}
    journal_dir: /var/lib/tenantry/failover/journal
  register: drift
"""

RETURN = r"""
findings:
  description: What was found, each with C(check), C(key) (one per condition), C(tenant), C(subject) and C(message).
  returned: always
  type: list
  elements: dict
  sample: [{check: mac_shared, key: "mac:00:50:56:00:0c:80", tenant: acme, subject: "00:50:56:00:0c:80",
            message: "MAC 00:50:56:00:0c:80 is on 2 vNICs: ..."}]
errors:
  description: Targets that could not be read, and why.
  returned: always
  type: list
  elements: str
busy_tenants:
  description: Tenants with a run in progress (not accused of registration or mount drift).
  returned: always
  type: list
  elements: str
read:
  description: How much was read.
  returned: always
  type: dict
"""

from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._drift import ARGUMENT_SPEC, audit
from ansible_collections.tenantry.msp.plugins.module_utils._vsphere_base import connection_params, vsphere_module
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import VSphereError, fault_message, vmodl


def main() -> None:
    module = vsphere_module(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = audit(connection_params(p), p["datacenter"], p["tenants"], p["targets"], p["journal_dir"])
    except (VSphereError, LookupError) as exc:
        module.fail_json(msg=str(exc))
    except vmodl.MethodFault as exc:
        module.fail_json(msg="vSphere refused the request: %s" % fault_message(exc))
    exit_result(module, {"changed": False, **result})


if __name__ == "__main__":
    main()

"""Stand-in for replication, for the failover scenario: the tenant's replicas on its nested target.

    seed.py STATE_DIR TENANT_FILE VM...

With the failover tests' own helpers (tests/integration/failover/failoverlab.py): mounts the tenant's NFS
datastore on its target 01 (the lab instance's ESX simulator) and creates the VMs there, powered off, and
adds the tenant's destination portgroups to the production hosts of the vCenter (what the tenant's
onboarding does).  Creates only what is missing; prints "changed" or "unchanged".
"""

from __future__ import annotations

import json
import ssl
import sys
from pathlib import Path
from typing import Any

import failoverlab as fl
import yaml
from pyVim.connect import Disconnect, SmartConnect

from ansible_collections.tenantry.msp.plugins.module_utils._tenant_model import validate_tenant


def connect(path: Path) -> Any:
    ep = json.loads(path.read_text())
    context = ssl.create_default_context(cafile=ep["ca_file"])
    return SmartConnect(
        host=ep["hostname"], port=ep["port"], user=ep["username"], pwd=ep["password"], sslContext=context
    )


def main(argv: list[str]) -> int:
    state, tenant_file, *vms = argv
    path = Path(tenant_file)
    spec = validate_tenant(yaml.safe_load(path.read_text()), path.name)
    target = connect(Path(state) / "esx" / f"{spec['name']}-target-01.json")
    vcenter = connect(Path(state) / "vcenter.json")
    try:
        missing = [vm for vm in vms if vm not in fl.vms_of(target)]
        if missing:
            fl.build_target(target, spec, missing)
        fl.add_portgroups(vcenter, spec)
    finally:
        Disconnect(target)
        Disconnect(vcenter)
    print("changed" if missing else "unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

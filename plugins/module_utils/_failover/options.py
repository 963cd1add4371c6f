# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The options of ``tenantry.msp.failover`` and ``tenantry.msp.failover_info``, apart from the library.

Their action plugins validate them in Ansible's own process, which should not load the library (and
pyVmomi) to do so; and the library, run as a detached job, loads no option specs (nor Ansible's
module_utils that they bring).
"""

from __future__ import annotations

from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import MODES
from ansible_collections.tenantry.msp.plugins.module_utils._tenant_role import PRODUCTION_ROLE_NAME
from ansible_collections.tenantry.msp.plugins.module_utils.argument_spec import (
    endpoint_argument_spec,
    targets_argument_spec,
)

# The options of ``tenantry.msp.failover`` (besides the connection options); model.REQUEST_OPTIONS go to ``Request``.
ARGUMENT_SPEC: dict[str, Any] = {
    "mode": {"type": "str", "choices": list(MODES), "default": "failover"},
    "tenant": {"type": "dict", "required": True},
    "vms": {"type": "list", "elements": "str", "default": []},
    "destination_vlan": {"type": "int"},
    "production_host": {"type": "str"},
    "datastores": {"type": "list", "elements": "str", "default": []},
    "datacenter": {"type": "str", "required": True},
    "cluster": {"type": "str", "required": True},
    "production_role": {"type": "str", "default": PRODUCTION_ROLE_NAME},
    "allow_admin_role": {"type": "bool", "default": False},
    "check_account": {"type": "bool", "default": True},
    "targets": targets_argument_spec(),
    "max_parallel": {"type": "int", "default": 16},
    "vcenter_max_parallel": {"type": "int", "default": 32},
    "retries": {"type": "int", "default": 1},
    "journal_dir": {"type": "path", "default": "~/.local/state/tenantry/failover/journal"},
    "report_dir": {"type": "path", "default": "~/.local/state/tenantry/failover/reports"},
    "attempt_id": {"type": "str"},
}

# The options of ``tenantry.msp.failover_info`` (its module and its action plugin share them).
INFO_ARGUMENT_SPEC: dict[str, Any] = {
    "tenant": {"type": "str", "required": True},
    "journal_dir": {"type": "path", "default": "~/.local/state/tenantry/failover/journal"},
    "report_dir": {"type": "path", "default": "~/.local/state/tenantry/failover/reports"},
    "run_id": {"type": "str"},
    "attempt_id": {"type": "str"},
    "wait_for": {"type": "str"},
    "job_file": {"type": "path"},
    "remove_job_file": {"type": "bool", "default": False},
    "timeout": {"type": "int", "default": 3600},
    # The tenant portal's VM listing (read live from vCenter: only the module does it, with pyVmomi).
    "list_vms": {"type": "bool", "default": False},
    "spec": {"type": "dict"},
    "targets": targets_argument_spec(),
    # The production vCenter: an endpoint without a timeout of its own, and its datacenter.
    "production": {
        "type": "dict",
        "options": {
            **{k: v for k, v in endpoint_argument_spec().items() if k != "timeout"},
            "datacenter": {"type": "str", "required": True},
        },
    },
}
INFO_REQUIRED_IF = [("list_vms", True, ("spec",))]

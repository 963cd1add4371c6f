# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The options of ``tenantry.msp.failover``, apart from the library: its action plugin validates them in
Ansible's own process, which should not load the library (and pyVmomi) to do so."""

from __future__ import annotations

from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import MODES
from ansible_collections.tenantry.msp.plugins.module_utils._tenant_role import PRODUCTION_ROLE_NAME
from ansible_collections.tenantry.msp.plugins.module_utils.argument_spec import targets_argument_spec

# The options of ``tenantry.msp.failover`` (besides the connection options); REQUEST_OPTIONS go to ``Request``.
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

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin for tenantry.msp.failover_info: read and follow a run's journal on the controller.

The failover runs with a local connection and keeps its journal on the controller, so following
it needs no module process: each loop item of the role's "follow" task costs a fork of the
worker, not a Python start, an AnsiballZ payload and its imports (0.3-0.4 CPU-s each, nine per
run; they dominated the CPU cost of 20 tenants failing over at once).  With any other connection
the module runs where the connection goes, as usual.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

# Only the journal reader: importing the whole library (pyVmomi) would cost the controller 0.25 s.
from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import JournalError
from ansible_collections.tenantry.msp.plugins.module_utils._failover.options import INFO_ARGUMENT_SPEC, INFO_REQUIRED_IF
from ansible_collections.tenantry.msp.plugins.module_utils._failover.status import FollowError, follow, query_of


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible-core ships no types
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        # Listing VMs reads vCenter with pyVmomi: the module does that, not the controller's worker.
        if getattr(self._connection, "transport", None) != "local" or self._task.args.get("list_vms"):
            result.update(self._execute_module(task_vars=task_vars))
            return result
        _validation, args = self.validate_argument_spec(argument_spec=INFO_ARGUMENT_SPEC, required_if=INFO_REQUIRED_IF)
        try:
            remove = args["remove_job_file"] and not self._task.check_mode
            result.update(
                follow(query_of(args), args["wait_for"], args["job_file"], args["timeout"], remove_job_file=remove)
            )
        except (FollowError, JournalError) as exc:
            result.update(failed=True, msg=str(exc))
        return result

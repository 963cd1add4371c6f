# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin for tenantry.msp.failover: run the failover on the controller without a module process.

The failover talks to vSphere APIs from the controller (the role runs it on a local connection), so
its module process only costs time: Ansible builds its payload, and with ``async`` also
``async_wrapper``'s, and starts Python twice or three times (about 1.2 s before the run begins, and
as many CPU-seconds for each of 20 tenants failing over at once).  With a local connection this
plugin validates the options with the module's own argument spec and

- without ``async``: calls the failover in the worker (``_failover/call.py``);
- with ``async``: starts it as a detached job that writes Ansible's ``results_file`` itself
  (``_failover/job.py``), which ``async_status`` and ``failover_info`` read as usual.

The result is the module's, secrets masked as ``AnsibleModule`` masks them.  With any other
connection the module runs where the connection goes, as usual.
"""

from __future__ import annotations

import json
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.tenantry.msp.plugins.module_utils._failover import job
from ansible_collections.tenantry.msp.plugins.module_utils._failover.options import ARGUMENT_SPEC
from ansible_collections.tenantry.msp.plugins.module_utils.argument_spec import vsphere_argument_spec


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible-core ships no types
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        asynchronous = bool(self._task.async_val)
        if getattr(self._connection, "transport", None) != "local":
            result.update(self._execute_module(task_vars=task_vars, wrap_async=asynchronous))
            if not asynchronous:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        validation, tagged = self.validate_argument_spec(argument_spec=dict(vsphere_argument_spec(), **ARGUMENT_SPEC))
        # Plain data, as a module process gets it: pyVmomi refuses Ansible's tagged strings.
        params = json.loads(json.dumps(tagged))
        call_args = {
            "params": params,
            "check_mode": bool(self._task.check_mode),
            "diff": bool(self._task.diff),
            "no_log_values": set(validation._no_log_values),
        }
        if asynchronous:
            async_dir = self.get_shell_option("async_dir", default="~/.ansible_async")
            try:
                result.update(job.start(call_args, async_dir, int(self._task.async_val)))
            except job.JobError as exc:
                raise AnsibleActionFail(str(exc)) from exc
            return result
        # Imported here: the library brings pyVmomi, which a job started above loads in its own process.
        from ansible_collections.tenantry.msp.plugins.module_utils._failover.call import call, task_result

        result.update(task_result(call(params, call_args["check_mode"]), call_args["diff"], call_args["no_log_values"]))
        return result

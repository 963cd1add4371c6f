# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""One failover call from the options of ``tenantry.msp.failover``, already validated.

The module (``AnsibleModule`` validates, then ``call``), its action plugin (the controller validates,
then ``call`` in the worker, or in a detached job: ``_failover/job.py``) and tests all go through
``call``: it connects, plans or runs, logs out, and turns every refusal or failure into the result's
``failed`` and ``msg`` (and what the caller needs with it), so each caller only reports the dict.
"""

from __future__ import annotations

from http.client import HTTPException
from ssl import SSLError
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._diff import masked
from ansible_collections.tenantry.msp.plugins.module_utils._failover import api
from ansible_collections.tenantry.msp.plugins.module_utils._failover.model import REQUEST_OPTIONS
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import (
    HAS_PYVMOMI,
    VSphereError,
    close_all,
    connect_all,
    connection_params,
    fault_message,
    target_params,
    vmodl,
)


def call(p: dict[str, Any], check_mode: bool, hooks: api.Hooks | None = None) -> dict[str, Any]:
    """Plan (``check_mode``) or run the failover of ``p`` (the module's validated options).

    Returns the module's result; a refused or failed call has ``failed: true`` and ``msg`` (a refusal
    before any change also ``refused: true``).  ``hooks`` is for the fault tests (never set by Ansible).
    """
    if not HAS_PYVMOMI:
        return _failed("the failover needs pyVmomi in the Python that runs it (the controller's): pip install pyVmomi")
    if p["mode"] != "cleanup" and not p["targets"]:
        return _failed("targets is required for mode %s: give the tenant's replication targets" % p["mode"])
    if p["max_parallel"] < 1 or p["retries"] < 0 or p["vcenter_max_parallel"] < 0:
        return _failed("max_parallel must be 1 or more, vcenter_max_parallel and retries 0 or more")
    try:
        tenant = api.Tenant.from_spec(p["tenant"])
    except api.BadInput as exc:
        return _failed("invalid tenant: %s" % exc)
    request = api.Request(**{name: p[name] for name in REQUEST_OPTIONS})
    endpoints = [("", connection_params(p))]
    endpoints += [("replication target %s" % t["name"], target_params(t)) for t in p["targets"]]
    try:
        production, *others = connect_all(endpoints)
        targets = {t["name"]: client for t, client in zip(p["targets"], others, strict=True)}
        try:
            if check_mode:
                return api.plan(tenant, request, production, targets)
            return api.run(tenant, request, production, targets, hooks=hooks)
        finally:
            close_all([production, *others])
    except api.BadInput as exc:
        return _failed("refused before any change: %s" % exc, refused=True)
    except api.PreflightFailed as exc:
        return _failed(
            str(exc),
            refused=True,
            preflight=[c.as_dict() for c in exc.checks],
            preflight_lines=["preflight:"] + ["  " + c.line() for c in exc.checks],
        )
    except api.RunFailed as exc:
        return _failed(str(exc), **exc.result)
    except (api.JournalError, VSphereError) as exc:
        return _failed(str(exc))
    except vmodl.MethodFault as exc:
        return _failed("vSphere refused the request: %s" % fault_message(exc))
    except (ConnectionError, TimeoutError, HTTPException, SSLError) as exc:
        return _failed(
            "lost the connection to vSphere (%s: %s); a started run is journaled: run the same mode again to "
            "resume it" % (type(exc).__name__, exc)
        )


def task_result(result: dict[str, Any], diff: bool, no_log_values: set[str]) -> dict[str, Any]:
    """``result`` as a task returns it when no module process ran (the action plugin, the detached
    job): the ``diff`` only in diff mode, and every secret masked (each ``no_log`` value, also inside
    longer text), as ``AnsibleModule.exit_json`` does."""
    out = dict(result)
    if not diff:
        out.pop("diff", None)
    return masked(out, no_log_values)  # type: ignore[no-any-return]


def _failed(msg: str, **extra: Any) -> dict[str, Any]:
    out = dict(extra)
    out.update(failed=True, msg=msg)
    return out

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Binds the vSphere client to an AnsibleModule: options in, clean ``fail_json`` out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.tenantry.msp.plugins.module_utils.argument_spec import vsphere_argument_spec
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import (
    HAS_PYVMOMI,
    PYVMOMI_IMPORT_ERROR,
    VSphereClient,
    VSphereError,
    connection_params,
    fault_message,
    vmodl,
)
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere_inventory import KINDS

T = TypeVar("T")

# The options of ``tenantry.msp.vsphere_info`` (besides the connection options).
VSPHERE_INFO_ARGUMENT_SPEC: dict[str, Any] = {
    "gather": {"type": "list", "elements": "str", "choices": list(KINDS), "default": list(KINDS)},
    "folder": {"type": "str"},
}


def vsphere_module(argument_spec: dict[str, Any], **kwargs: Any) -> AnsibleModule:
    """An AnsibleModule with the shared connection options merged in; fails early without pyVmomi."""
    spec = vsphere_argument_spec()
    spec.update(argument_spec)
    module = AnsibleModule(argument_spec=spec, **kwargs)
    if not HAS_PYVMOMI:
        module.fail_json(msg=missing_required_lib("pyVmomi"), exception=str(PYVMOMI_IMPORT_ERROR))
    return module


def run(module: AnsibleModule, work: Callable[[VSphereClient], T]) -> T:
    """Connect, call ``work(client)``, log out; any vSphere error becomes one clean ``fail_json``."""
    try:
        with VSphereClient(connection_params(module.params)) as client:
            return work(client)
    except VSphereError as exc:
        module.fail_json(msg=str(exc))
    except vmodl.MethodFault as exc:
        module.fail_json(msg="vSphere refused the request: %s" % fault_message(exc))
    raise AssertionError("unreachable: fail_json exits")  # pragma: no cover

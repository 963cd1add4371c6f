# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters over the deterministic allocation in module_utils/_allocation.py (one place for the math)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.tenantry.msp.plugins.module_utils._allocation import (
    VMWARE_MANUAL_MACS,
    AllocationError,
    target_ip,
    target_mac,
)


def _target_mac(
    tenant_id: int, index: int, kind: str = "management", pool: str = VMWARE_MANUAL_MACS, width: int = 16
) -> str:
    try:
        return target_mac(int(tenant_id), int(index), kind, pool, int(width))
    except AllocationError as exc:
        raise AnsibleFilterError("target_mac: %s" % exc) from exc


def _target_ip(tenant_id: int, index: int, pool: str, width: int = 16) -> str:
    try:
        return target_ip(int(tenant_id), int(index), pool, int(width))
    except AllocationError as exc:
        raise AnsibleFilterError("target_ip: %s" % exc) from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"target_mac": _target_mac, "target_ip": _target_ip}

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters for DHCP reservations (documented in the sidecar files dhcp_*.yml)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.tenantry.msp.plugins.module_utils._dhcp import (
    ReservationError,
    dnsmasq_lines,
    kea_dhcp4_config,
    validate,
)


def _refuse(exc: ReservationError) -> AnsibleFilterError:
    return AnsibleFilterError("Refusing the DHCP reservations: %s" % exc)


def dhcp_reservations(reservations: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> list[dict[str, str]]:
    """The reservations checked against the server settings and normalised, sorted by IP."""
    try:
        reserved, _conf = validate(reservations, settings)
    except ReservationError as exc:
        raise _refuse(exc) from exc
    return [r.as_dict() for r in reserved]


def dhcp_dnsmasq_config(
    reservations: Sequence[Mapping[str, Any]], settings: Mapping[str, Any], dns: bool = False
) -> str:
    """dnsmasq configuration lines (without the managed-by header)."""
    try:
        return "\n".join(dnsmasq_lines(reservations, settings, dns=dns)) + "\n"
    except ReservationError as exc:
        raise _refuse(exc) from exc


def dhcp_kea_config(reservations: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> dict[str, Any]:
    """A kea-dhcp4 configuration as data (render it with to_nice_json)."""
    try:
        return kea_dhcp4_config(reservations, settings)
    except ReservationError as exc:
        raise _refuse(exc) from exc


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "dhcp_reservations": dhcp_reservations,
            "dhcp_dnsmasq_config": dhcp_dnsmasq_config,
            "dhcp_kea_config": dhcp_kea_config,
        }
